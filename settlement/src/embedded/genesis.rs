//! The embedded chain's genesis: block 0, a list of contract deployments sent by one
//! deployer at fixed nonces, so that every build puts every contract at the same address
//! and the code there is exactly its committed artifact's.
//!
//! | nonce | contract | creation code | address |
//! |---:|---|---|---|
//! | 0 | `L2xTestUSD` | [`test_usd_creation_code`] | [`token_address`] = `DEPLOYER.create(0)` |
//! | 1 | `L2xSettlement` | [`settlement_creation_code`]`(SUBMITTER, token)` | [`settlement_address`] = `DEPLOYER.create(1)` |
//!
//! The settlement contract's parameters are `Config::local`'s but for the fee account's and
//! the insurance fund's recipient: the address of a **public test key**, [`recipient_key`]
//! (`keccak256("l2x-embedded-recipient")`), so that after a freeze those two leaves can
//! escape from the command line too and an embedded vault can end empty. (The submitter has
//! no key: embedded transactions are not signed.)
//!
//! The token comes first so that the settlement contract's constructor can be given its
//! address (contract v2 holds it as its collateral).
//!
//! # Why genesis is rebuilt on every open
//!
//! The state file keeps no code: opening a chain runs the genesis again, in a fresh revm
//! state, and takes each contract's code from it. A file whose contracts have other code
//! hashes than this build's genesis gives them was written by another build: it is
//! refused (`StateError::OtherBuild`), never run with code it was not made with. The
//! genesis runs at the chain's genesis timestamp, kept in the file, so a constructor that
//! derives an immutable from `block.timestamp` rebuilds the same code.
//!
//! # Known limitation
//!
//! Only genesis's contracts have code: a transaction that would create another contract
//! is refused (the file could not restore its code).

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, Bytes, keccak256};
use revm::bytecode::Bytecode;
use revm::context::result::{ExecutionResult, Output};
use revm::database::DatabaseCommit;
use revm::primitives::{KECCAK_EMPTY, TxKind};
use revm::state::AccountInfo;

use super::evm::{self, Db, Header};
use super::state_file::ChainState;
use super::{SUBMITTER, StateError};
use crate::chain::{ChainError, Config, Result, address_of, creation_code, test_usd_creation_code};

/// The address that deploys the genesis's contracts. No key exists for it, and nothing
/// after the genesis depends on its nonce.
pub const DEPLOYER: Address = Address::new(*b"l2x-embedded-deploy\x01");

/// The settlement contract's creation code on the embedded chain: the one place that
/// chooses its constructor's arguments, from the submitter and the test token's address.
///
/// # Errors
/// [`ChainError::Artifact`] if the artifact is broken (a broken build).
pub fn settlement_creation_code(submitter: Address, token: Address) -> Result<Vec<u8>> {
    let (_, recipient) = recipient_key();
    creation_code(&Config { feeRecipient: recipient, insuranceRecipient: recipient, ..Config::local(submitter, token) })
}

/// The public test key (hex) of the embedded vault's fee and insurance recipient,
/// `keccak256("l2x-embedded-recipient")`, and its address. Public: for the embedded chain of
/// tests and demos only.
pub fn recipient_key() -> (String, Address) {
    let key = keccak256(b"l2x-embedded-recipient").to_string();
    // A valid secp256k1 key (checked by `the_recipient_key_is_a_key`).
    let address = address_of(&key).unwrap_or(Address::ZERO);
    (key, address)
}

/// The test token's address on every embedded chain (the deployer's nonce 0).
pub fn token_address() -> Address {
    DEPLOYER.create(0)
}

/// The settlement contract's address on every embedded chain (the deployer's nonce 1).
pub fn settlement_address() -> Address {
    DEPLOYER.create(1)
}

/// One contract of the genesis: what deploying it is called (in errors) and its creation
/// code with the constructor's arguments.
struct Deployment {
    what: &'static str,
    code: Vec<u8>,
}

/// The genesis's deployments in nonce order: the deployer's nonce `i` sends the `i`-th.
fn deployments() -> Result<Vec<Deployment>> {
    Ok(vec![
        Deployment { what: "deploying L2xTestUSD at genesis", code: test_usd_creation_code()? },
        Deployment {
            what: "deploying L2xSettlement at genesis",
            code: settlement_creation_code(SUBMITTER, token_address())?,
        },
    ])
}

/// What an opened chain keeps of its genesis: where the contracts are and the code each
/// account with code must have.
#[derive(Debug)]
pub(super) struct Genesis {
    /// Block 0's timestamp.
    pub(super) timestamp: u64,
    /// Each account the genesis gives code, and its code hash.
    code_hashes: BTreeMap<Address, B256>,
    /// The code behind each of those hashes.
    code: BTreeMap<B256, Bytecode>,
}

/// An account whose code is not the one genesis gives it (the state file's error names it).
#[derive(Debug)]
pub(super) struct ForeignCode {
    pub(super) address: Address,
    /// Its code hash (`None`: no code).
    pub(super) code_hash: Option<B256>,
    /// The code hash genesis gives it (`None`: no code).
    pub(super) ours: Option<B256>,
}

impl From<ForeignCode> for StateError {
    fn from(f: ForeignCode) -> StateError {
        StateError::OtherBuild { address: f.address, code_hash: f.code_hash, ours: f.ours }
    }
}

fn code_of(hash: B256) -> Option<B256> {
    (hash != KECCAK_EMPTY).then_some(hash)
}

impl Genesis {
    /// Runs the genesis at `timestamp`: its state (as the file would keep it) and what to
    /// check other states against.
    ///
    /// # Errors
    /// A broken artifact, or a deployment that failed (a broken build).
    pub(super) fn build(timestamp: u64) -> Result<(Genesis, ChainState)> {
        let mut db = Db::default();
        db.insert_account_info(DEPLOYER, AccountInfo::default());
        let header = Header { number: 0, timestamp };
        for (nonce, d) in (0u64..).zip(deployments()?) {
            let tx = evm::tx(DEPLOYER, nonce, TxKind::Create, Bytes::from(d.code))?;
            let run = evm::run(&mut db, header, tx)?;
            let expected = DEPLOYER.create(nonce);
            match &run.result {
                ExecutionResult::Success { output: Output::Create(_, Some(at)), .. } if *at == expected => {
                    db.commit(run.state);
                }
                _ => return Err(ChainError::EvmFailed { what: d.what, outcome: Box::new(run.result) }),
            }
        }
        let state = ChainState::of(&db, 0, timestamp, timestamp);
        let code_hashes: BTreeMap<Address, B256> = state
            .accounts
            .iter()
            .filter_map(|(address, a)| code_of(a.code_hash).map(|hash| (*address, hash)))
            .collect();
        let code =
            code_hashes.values().filter_map(|hash| db.cache.contracts.get(hash).map(|c| (*hash, c.clone()))).collect();
        Ok((Genesis { timestamp, code_hashes, code }, state))
    }

    /// Checks that in `state` exactly the genesis's accounts have code, each the code the
    /// genesis gives it (the first account found otherwise, in address order).
    pub(super) fn check(&self, state: &ChainState) -> Result<(), ForeignCode> {
        let theirs = state.accounts.iter().filter_map(|(address, a)| code_of(a.code_hash).map(|h| (*address, h)));
        for (address, hash) in theirs {
            let ours = self.code_hashes.get(&address).copied();
            if ours != Some(hash) {
                return Err(ForeignCode { address, code_hash: Some(hash), ours });
            }
        }
        for (address, ours) in &self.code_hashes {
            let code_hash = state.accounts.get(address).and_then(|a| code_of(a.code_hash));
            if code_hash != Some(*ours) {
                return Err(ForeignCode { address: *address, code_hash, ours: Some(*ours) });
            }
        }
        Ok(())
    }

    /// A revm state holding exactly `state`, code taken from the genesis. `state` must have
    /// passed [`Genesis::check`] (an account whose code the genesis lacks gets none).
    pub(super) fn restore(&self, state: &ChainState) -> Db {
        let mut db = Db::default();
        for (address, a) in &state.accounts {
            let code = self.code.get(&a.code_hash).cloned().unwrap_or_default();
            db.insert_account_info(*address, AccountInfo::new(a.balance, a.nonce, a.code_hash, code));
            let storage = a.storage.iter().map(|(slot, value)| (*slot, *value)).collect();
            // The empty database behind the cache cannot fail (its error type is uninhabited).
            db.replace_account_storage(*address, storage).unwrap_or_else(|e| match e {});
        }
        db
    }
}

#[cfg(test)]
impl Genesis {
    /// Gives `address` `code` as if the genesis had deployed it: for tests of what a
    /// contract sees, with code of their own. Returns its code hash.
    pub(super) fn adopt(&mut self, address: Address, code: Bytecode) -> B256 {
        let hash = code.hash_slow();
        self.code_hashes.insert(address, hash);
        self.code.insert(hash, code);
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recipient_key_is_a_key() {
        let (key, address) = recipient_key();
        assert_eq!(address_of(&key).ok(), Some(address));
        assert_ne!(address, Address::ZERO);
    }
}
