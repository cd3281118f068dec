//! The config's first deposits, made for real on the embedded chain: each funded account's
//! test owner is minted the test token, approves the vault and deposits through its L1
//! queue, and the node's L1 watcher credits what the queue holds.
//!
//! ```text
//!  a new journal, settlement.chain = "embedded" (the chain opened for writing, before the
//!  submitter takes it):
//!    for each key's account, in the keys' order, once, if the config funds it
//!      owner = owner_of(account)
//!      token.mint(owner, usdc × 10⁶)            (the test token's open mint, by the deployer)
//!      owner: token.approve(vault, usdc × 10⁶)
//!      owner: vault.deposit(account, usdc × 10⁶)  ─▶ queue entry (binds the account to owner)
//! ```
//!
//! # The owners
//!
//! An account's test owner is the address of a **public test key**,
//! `keccak256("l2x-embedded-owner" ‖ account as 8 bytes big-endian)` ([`owner_key`]; hashed
//! again in the negligible case that it is not a valid secp256k1 key): deterministic, so a
//! test, an operator or the account's user can compute it and act as the owner with the
//! `l2x settle` owner commands (which take a key from the environment), as the demo's public
//! API keys let anyone trade. The first deposit binds the account to it on L1, so the vault
//! pays the account's withdrawals, claims and escape to that address. These keys are public:
//! an embedded chain is for tests, demos and a node that settles alone.
//!
//! With `chain = "rpc"` the config may not fund anything (`Config::check`): owners deposit on
//! L1 themselves. With `chain = "none"` the node credits the config's deposits itself
//! (`Command::Deposit`), as before the vault.
//!
//! # Once, whatever fails
//!
//! The deposits are made before anything is journaled, and only for accounts the vault does
//! not know yet (`owners(account)` is zero): a start that fails or crashes half-way (a
//! deposit refused, the process killed) leaves a new journal, and the next start makes
//! only the deposits still missing. An account someone else already owns on the embedded
//! chain is skipped with a warning (its owner deposits for it).

use std::collections::BTreeSet;

use alloy_primitives::{Address, U256, keccak256};
use alloy_sol_types::SolCall;
use l2x_gateway::auth::Keys;
use l2x_settlement::chain::abi::{L2xSettlement as Vault, L2xTestUSD as Token};
use l2x_settlement::chain::submitter_of;
use l2x_settlement::embedded::EmbeddedChain;
use l2x_types::AccountId;

use crate::config::Config;
use crate::error::{NodeError, Result};

/// Token base units per USDC (the test token has 6 decimals).
const MICRO: u64 = 1_000_000;

/// The public test key (hex) of `account`'s owner on the embedded chain, and its address
/// (see the module docs).
pub fn owner_key(account: AccountId) -> (String, Address) {
    let mut seed = b"l2x-embedded-owner".to_vec();
    seed.extend_from_slice(&account.0.to_be_bytes());
    let mut secret = keccak256(&seed);
    loop {
        let key = secret.to_string();
        // Zero or at least the curve's order: not a key (probability 2^-128).
        match submitter_of(&key) {
            Ok(address) => return (key, address),
            Err(_) => secret = keccak256(secret),
        }
    }
}

/// The test owner of `account` on the embedded chain: the address of [`owner_key`].
pub fn owner_of(account: AccountId) -> Address {
    owner_key(account).1
}

/// The accounts a new journal funds and their first deposits in token base units: every
/// key's account once, in the keys' order, if the config gives it more than 0.
///
/// # Errors
/// [`NodeError::DepositTooLarge`] if a deposit's base units do not fit the ledger's `i64`.
pub fn first_deposits(config: &Config, keys: &Keys) -> Result<Vec<(AccountId, i64)>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for key in keys.iter() {
        let usdc = config.accounts.deposit_for(key.account.0);
        if seen.insert(key.account) && usdc > 0 {
            let micro = i64::try_from(usdc.saturating_mul(MICRO)).map_err(NodeError::DepositTooLarge)?;
            out.push((key.account, micro));
        }
    }
    Ok(out)
}

/// Makes the config's first deposits not made yet on `chain` through the vault (see the
/// module docs); returns how many it made.
///
/// # Errors
/// [`NodeError::Funding`] naming the account whose mint, approval or deposit the chain
/// refused; as [`first_deposits`].
pub fn deposit_on_embedded(chain: &mut EmbeddedChain, config: &Config, keys: &Keys) -> Result<usize> {
    let (vault, token) = (chain.address(), chain.token());
    let deposits = first_deposits(config, keys)?;
    let mut made = 0;
    for &(account, micro) in &deposits {
        let owner = owner_of(account);
        let owned = Vault::ownersCall { account: account.0 };
        let current = chain.call(vault, owned.abi_encode()).and_then(|out| {
            Vault::ownersCall::abi_decode_returns(&out).map_err(|e| l2x_settlement::chain::ChainError::Decode {
                what: "reading an account's owner",
                source: Box::new(e),
            })
        });
        match current.map_err(|source| NodeError::Funding { account, owner, source })? {
            Address::ZERO => {}
            already if already == owner => continue,
            other => {
                tracing::warn!(account = account.0, %other, "not funding an account another address owns on L1");
                continue;
            }
        }
        let amount = micro.cast_unsigned();
        let funding = |source| NodeError::Funding { account, owner, source };
        chain.mint_test_usd(owner, U256::from(amount)).map_err(funding)?;
        let approve = Token::approveCall { spender: vault, amount: U256::from(amount) };
        chain.transact(owner, token, approve.abi_encode()).map_err(funding)?;
        let deposit = Vault::depositCall { account: account.0, amount };
        chain.transact(owner, vault, deposit.abi_encode()).map_err(funding)?;
        made += 1;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented derivation: the key is the hash itself (a valid key for these
    /// accounts), the owner its address, and each account has its own.
    #[test]
    fn an_owner_is_the_address_of_its_public_test_key() {
        let (key, owner) = owner_key(AccountId(1));
        let seed = [b"l2x-embedded-owner".as_slice(), &1u64.to_be_bytes()].concat();
        assert_eq!(key, format!("{:#x}", keccak256(&seed)));
        assert_eq!(submitter_of(&key).ok(), Some(owner));
        assert_eq!(owner_of(AccountId(1)), owner);
        assert_ne!(owner_of(AccountId(2)), owner);
    }
}
