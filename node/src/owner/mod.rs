//! What account owners and anyone else do with the vault on L1, without the operator: the
//! bodies of `l2x settle deposit | force-withdraw | withdraw-claim | freeze | refund-queued |
//! escape | queue`, and the test chain's tools `mint-test-usd` and `advance-time`
//! (docs/SETTLEMENT.md, "Command line"; docs/OPERATIONS.md, "For account owners").
//!
//! ```text
//!  open(chain, key, access) ─▶ L1User (settlement::chain): the key's address sends, on a node
//!                              signed by it, on the embedded chain unsigned
//!  deposit         balance ≥ amount? the contract would take it (minimum, frozen, cap)?
//!                  owned by another address (a gift: only with --gift)? ─▶ approve if the
//!                  allowance is short ─▶ deposit / depositInsurance ─▶ its queue entry
//!                  (Queued, checked against what was sent)
//!  force_withdraw  requestForcedWithdrawal ─▶ its queue entry and the deadline
//!  withdraw_claim  claim() ─▶ what was paid (Claimed) and the token balance after it
//!  freeze          freeze() ─▶ the entry that waited too long (Frozen)
//!  refund_queued   refundQueued(count) ─▶ what was credited back (Credited)
//!  escape          proof (escape::ProofSource) against the chain's last root ─▶ escape()
//!                  ─▶ equity and what was credited (Escaped)
//!  queue           the queue, its entries and the freeze's clock (queue module), read only
//!  owner           owners(account), read only
//! ```
//!
//! | module | job |
//! |---|---|
//! | this one | opening the chain as a user, the transactions, what they print |
//! | `escape` | [`EscapeProof`] and where it comes from ([`ProofSource`]), checked against the chain |
//! | `queue` | the queue as the chain holds it ([`queue`]) |
//!
//! # Design
//!
//! Every transaction is tried first (a dry run on a node; on the embedded chain a refusal
//! changes nothing anyway), so a refusal costs nothing and comes back with the contract's
//! reason, as [`OwnerError::Refused`]. A deposit checks what it can before its approval, so
//! that a deposit the contract would refuse spends nothing on an approval. Amounts are
//! token base units (micro-USDC) here; the command line parses decimal USDC exactly.
//! What is printed is read from the transaction's events, not assumed.

mod escape;
mod queue;

use std::io::Write;
use std::path::{Path, PathBuf};

use alloy_primitives::{Address, U256, hex};
use alloy_sol_types::SolEvent;
use l2x_settlement::chain::abi::{L2xSettlement as Vault, L2xTestUSD as Token};
use l2x_settlement::chain::{ChainError, L1User, Sent, address_of};
use l2x_settlement::embedded::{EmbeddedChain, STATE_FILE};
use l2x_types::Amount;

pub use self::escape::{EscapeError, EscapeProof, ProofSource};
pub use self::queue::{QueueOptions, queue};
use crate::chain::ChainSpec;
use crate::config::address;
use crate::error::{NodeError, Result};

/// The fee account's leaf key (`FEE_ACCOUNT`): nobody deposits to it.
pub const FEE_ACCOUNT: u64 = u64::MAX - 1;
/// The insurance fund's leaf key (`INSURANCE_ACCOUNT`): `depositInsurance` deposits to it.
pub const INSURANCE_ACCOUNT: u64 = u64::MAX;

/// Why an owner's command did nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// The contract (or its token) refused the transaction; nothing changed.
    #[error("{what}: the {by} refused: {reason}")]
    Refused {
        /// The transaction (`deposit`, `claim`, …).
        what: &'static str,
        /// `contract` or `token`.
        by: &'static str,
        /// Its reason, in words (`ClaimNotYet(availableAt 1700000000)`).
        reason: String,
    },
    /// A deposit the contract would refuse; nothing was sent (not even the approval).
    #[error("deposit: the contract would refuse it: {reason}; nothing was sent")]
    WouldRefuse {
        /// The contract's reason, as it would give it.
        reason: String,
    },
    /// A deposit to an account bound to another address (it would be credited to that
    /// owner), without `--gift`; nothing was sent.
    #[error(
        "deposit: account {account} is owned by {owner}; a deposit to it is a gift to that owner: pass --gift to \
         send it anyway; nothing was sent"
    )]
    Gift {
        /// The account.
        account: u64,
        /// Its owner on L1.
        owner: Address,
    },
    /// A transaction whose event says something else than what was sent (not the l2x
    /// contract, or a bug).
    #[error("{what}: the transaction's event is not what was sent: {got}")]
    WrongEvent {
        /// The transaction.
        what: &'static str,
        /// What the event said.
        got: String,
    },
    /// The sender holds fewer tokens than it deposits; nothing was sent.
    #[error(
        "deposit: {holder} holds {balance} USDC of the vault's token {token}, less than {amount} USDC; nothing was sent"
    )]
    ShortBalance {
        /// The sender.
        holder: Address,
        /// The token.
        token: Address,
        /// Its balance, USDC.
        balance: String,
        /// The amount, USDC.
        amount: String,
    },
    /// A command that moves an owner's money, on a directory without an embedded chain.
    #[error(
        "{}: no embedded chain here (`l2x serve` or `l2x settle submit` creates one; a directory is \
         not created for a deposit, a claim or an escape, so that a mistyped one moves nothing)",
        dir.display()
    )]
    NoEmbeddedChain {
        /// The directory.
        dir: PathBuf,
    },
    /// `mint-test-usd` on a vault whose token is not l2x's test token.
    #[error(
        "the vault's token {token} is not l2x's test token (its code is not L2xTestUSD's): only the test token can be minted"
    )]
    NotTestToken {
        /// The vault's token.
        token: Address,
    },
    /// A transaction that succeeded without the event it must emit (not the l2x contract).
    #[error("{what}: the transaction succeeded but emitted no {event} event of the vault")]
    NoEvent {
        /// The transaction.
        what: &'static str,
        /// The event.
        event: &'static str,
    },
    /// An escape whose proof cannot be made, or does not match the chain; nothing was sent.
    #[error("escape: {0}; nothing was sent")]
    Escape(#[from] EscapeError),
}

/// What a command does with the chain it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads only (`queue`): an embedded chain is opened read-only, beside a node holding it.
    Read,
    /// Sends an owner's or anyone's transaction: an embedded chain must exist.
    Send,
    /// A test chain's tool (`mint-test-usd`, `advance-time`): an embedded chain is created if
    /// the directory holds none, as `settle submit` does.
    Test,
}

/// The vault on `chain` as the holder of `key` (`None`: read only; on a node, a key is
/// needed to send).
///
/// # Errors
/// [`OwnerError::NoEmbeddedChain`] for [`Access::Send`] on a directory without a chain;
/// a key that does not parse; the chain cannot be opened or is not the contract.
pub fn open(chain: &ChainSpec, key: Option<&str>, access: Access) -> Result<L1User> {
    let sender = key.map(address_of).transpose()?;
    match chain {
        ChainSpec::Rpc { url, contract } => Ok(L1User::rpc(url, address(contract)?, key)?),
        ChainSpec::Embedded { dir } => {
            let embedded = |source| NodeError::EmbeddedChain { dir: dir.clone(), source };
            let opened = match access {
                Access::Read => EmbeddedChain::read_only(dir).map_err(embedded)?,
                Access::Send if !dir.join(STATE_FILE).is_file() => {
                    return Err(OwnerError::NoEmbeddedChain { dir: dir.clone() }.into());
                }
                Access::Send | Access::Test => EmbeddedChain::open(dir).map_err(embedded)?,
            };
            Ok(L1User::embedded(opened, sender))
        }
    }
}

/// A chain's refusal as [`OwnerError::Refused`] naming the transaction; other errors as
/// they are.
fn refused(user: &L1User, what: &'static str) -> impl FnOnce(ChainError) -> NodeError + use<> {
    let vault = user.vault();
    move |e| match e {
        ChainError::Reverted { to, reason, .. } => {
            let by = if to == vault { "contract" } else { "token" };
            OwnerError::Refused { what, by, reason }.into()
        }
        other => other.into(),
    }
}

/// Base units as USDC, exactly (`1000.5`); a figure past `i128` (no vault holds one) as
/// base units. The one formatter of the owners' commands (the queue's too).
fn usdc(units: U256) -> String {
    i128::try_from(units).map_or_else(|_| format!("{units} base units of"), Amount::format_micro)
}

/// Where a transaction is: `tx 0x…, block N` on a node, `block N` on the embedded chain.
fn place(sent: &Sent) -> String {
    match sent.tx_hash {
        Some(hash) => format!("tx {hash}, block {}", sent.block),
        None => format!("block {}", sent.block),
    }
}

/// The first event `E` the vault emitted in `sent`.
fn event<E: SolEvent>(user: &L1User, sent: &Sent, what: &'static str) -> Result<E> {
    sent.logs
        .iter()
        .filter(|log| log.address == user.vault())
        .find_map(|log| E::decode_log(log).ok().map(|decoded| decoded.data))
        .ok_or_else(|| {
            OwnerError::NoEvent { what, event: E::SIGNATURE.split('(').next().unwrap_or(E::SIGNATURE) }.into()
        })
}

/// Every event `E` the vault emitted in `sent`.
fn events<E: SolEvent>(user: &L1User, sent: &Sent) -> Vec<E> {
    sent.logs
        .iter()
        .filter(|log| log.address == user.vault())
        .filter_map(|log| E::decode_log(log).ok().map(|decoded| decoded.data))
        .collect()
}

fn sender(user: &L1User) -> Result<Address> {
    user.sender().ok_or_else(|| ChainError::Config("no key: this command sends a transaction".into()).into())
}

/// An account id as the commands print it: the number, or `the insurance fund` / `the fee
/// account`.
pub fn holder_name(account: u64) -> String {
    match account {
        INSURANCE_ACCOUNT => "the insurance fund".into(),
        FEE_ACCOUNT => "the fee account".into(),
        n => format!("account {n}"),
    }
}

/// `settle deposit`: deposits `amount` base units to `account` ([`INSURANCE_ACCOUNT`]: the
/// insurance fund, `depositInsurance`) from the sender, approving the vault first for the
/// amount if its allowance is short; writes the approval, the queue entry (from its
/// `Queued` event) and a first deposit's binding. An account bound to another address is
/// refused unless `gift` (the deposit would be credited to that owner); for an account not
/// bound yet, `notes` is told that this deposit binds it to the sender, before anything is
/// sent.
///
/// # Errors
/// [`OwnerError::ShortBalance`], [`OwnerError::WouldRefuse`] or [`OwnerError::Gift`] before
/// anything is sent; [`OwnerError::Refused`]; [`OwnerError::WrongEvent`] for a `Queued`
/// event that is not this deposit; the chain's errors.
pub fn deposit(
    out: &mut dyn Write,
    notes: &mut dyn Write,
    user: &mut L1User,
    account: u64,
    amount: u64,
    gift: bool,
) -> Result<()> {
    let (from, vault) = (sender(user)?, user.vault());
    let token = user.view(vault, &Vault::tokenCall {})?;
    let needed = U256::from(amount);
    let balance = user.view(token, &Token::balanceOfCall { holder: from })?;
    if balance < needed {
        let (balance, amount) = (usdc(balance), usdc(needed));
        return Err(OwnerError::ShortBalance { holder: from, token, balance, amount }.into());
    }
    check_deposit(user, account, amount)?;
    if account != INSURANCE_ACCOUNT {
        let owner = user.view(vault, &Vault::ownersCall { account })?;
        if owner == Address::ZERO {
            writeln!(
                notes,
                "account {account} has no owner on L1 yet: this deposit binds it to {from} (only it may ask a forced \
                 withdrawal for it, and its withdrawals and escape are paid to it)"
            )?;
        } else if owner != from && !gift {
            return Err(OwnerError::Gift { account, owner }.into());
        }
    }
    if user.view(token, &Token::allowanceCall { owner: from, spender: vault })? < needed {
        let sent = user
            .send(token, &Token::approveCall { spender: vault, amount: needed })
            .map_err(refused(user, "approve"))?;
        writeln!(
            out,
            "approved the vault {vault} to take {} USDC of {from}'s tokens ({})",
            usdc(needed),
            place(&sent)
        )?;
    }
    let sent = if account == INSURANCE_ACCOUNT {
        user.send(vault, &Vault::depositInsuranceCall { amount }).map_err(refused(user, "depositInsurance"))?
    } else {
        user.send(vault, &Vault::depositCall { account, amount }).map_err(refused(user, "deposit"))?
    };
    let queued: Vault::Queued = event(user, &sent, "deposit")?;
    let kind = if account == INSURANCE_ACCOUNT { Vault::Kind::InsuranceDeposit } else { Vault::Kind::Deposit };
    if (u8::from(queued.kind), queued.account, queued.amount, queued.from) != (u8::from(kind), account, amount, from) {
        return Err(OwnerError::WrongEvent {
            what: "deposit",
            got: format!(
                "{:?} of {} base units to leaf {} from {}",
                queued.kind, queued.amount, queued.account, queued.from
            ),
        }
        .into());
    }
    writeln!(
        out,
        "deposited {} USDC to {} from {}: queue entry {}, queued at {} ({})",
        usdc(U256::from(queued.amount)),
        holder_name(queued.account),
        queued.from,
        queued.index,
        queued_at(user, queued.index)?,
        place(&sent)
    )?;
    if let Some(bound) = events::<Vault::OwnerBound>(user, &sent).first() {
        writeln!(out, "account {} is now owned on L1 by {}", bound.account, bound.owner)?;
    }
    Ok(())
}

/// The contract's cap on what the vault holds for the exchange (`MAX_HELD`, 2^62 base
/// units): `l2Total + pendingDeposits + amount` may not pass it.
pub const MAX_HELD: u64 = 1 << 62;

/// What the contract would refuse of a deposit before it pulls the tokens: a reserved
/// account, a frozen vault, an amount below the minimum, the cap (its own words).
fn check_deposit(user: &L1User, account: u64, amount: u64) -> Result<()> {
    let vault = user.vault();
    let reason = if account == FEE_ACCOUNT {
        Some(format!("ReservedAccount({account})"))
    } else if user.view(vault, &Vault::frozenCall {})? {
        Some("IsFrozen".to_owned())
    } else {
        let minimum = user.view(vault, &Vault::minDepositCall {})?;
        if amount < minimum {
            Some(format!("DepositTooSmall(minimum {minimum}, got {amount})"))
        } else {
            let held = user
                .view(vault, &Vault::l2TotalCall {})?
                .saturating_add(user.view(vault, &Vault::pendingDepositsCall {})?);
            (held.saturating_add(U256::from(amount)) > U256::from(MAX_HELD))
                .then(|| format!("DepositCapReached(held {held}, amount {amount})"))
        }
    };
    reason.map_or(Ok(()), |reason| Err(OwnerError::WouldRefuse { reason }.into()))
}

/// `settle owner`: who owns `account` on L1 (`owners(account)`), read only: the address
/// paid for it, or that the next deposit to it binds it.
///
/// # Errors
/// The chain's errors.
pub fn owner(out: &mut dyn Write, user: &L1User, account: u64) -> Result<()> {
    let owner = user.view(user.vault(), &Vault::ownersCall { account })?;
    if owner == Address::ZERO {
        writeln!(out, "account {account} has no owner on L1: the next deposit to it binds it to its sender")?;
    } else {
        writeln!(out, "account {account} is owned on L1 by {owner}")?;
    }
    Ok(())
}

/// When entry `index` was queued (its `requestedAt`).
fn queued_at(user: &L1User, index: u64) -> Result<u64> {
    Ok(user.view(user.vault(), &Vault::entriesCall { index })?.requestedAt)
}

/// `settle force-withdraw`: the owner asks on L1 to withdraw `amount` base units of
/// `account`'s collateral; writes the queue entry and its deadline.
///
/// # Errors
/// [`OwnerError::Refused`] (`NotOwner`, `BadAmount`, `IsFrozen`); the chain's errors.
pub fn force_withdraw(out: &mut dyn Write, user: &mut L1User, account: u64, amount: u64) -> Result<()> {
    let (from, vault) = (sender(user)?, user.vault());
    let call = Vault::requestForcedWithdrawalCall { account, amount };
    let sent = user.send(vault, &call).map_err(refused(user, "requestForcedWithdrawal"))?;
    let queued: Vault::Queued = event(user, &sent, "requestForcedWithdrawal")?;
    let at = queued_at(user, queued.index)?;
    let deadline = user.view(vault, &Vault::forcedDeadlineCall {})?;
    writeln!(
        out,
        "asked to withdraw {} USDC of account {account} to its owner {from}: queue entry {}, queued at {at}; \
         the batches must consume it by {}, else anyone may freeze the vault from {} on ({})",
        usdc(U256::from(amount)),
        queued.index,
        at.saturating_add(deadline),
        at.saturating_add(deadline).saturating_add(1),
        place(&sent)
    )?;
    Ok(())
}

/// `settle withdraw-claim`: pays the sender everything it may claim (withdrawals, forced
/// withdrawals, refunds and escapes credited to its address); writes the amount and its
/// token balance after it.
///
/// # Errors
/// [`OwnerError::Refused`] (`NothingToClaim`, `ClaimNotYet`); the chain's errors.
pub fn withdraw_claim(out: &mut dyn Write, user: &mut L1User) -> Result<()> {
    let (to, vault) = (sender(user)?, user.vault());
    let sent = user.send(vault, &Vault::claimCall {}).map_err(refused(user, "claim"))?;
    let claimed: Vault::Claimed = event(user, &sent, "claim")?;
    let token = user.view(vault, &Vault::tokenCall {})?;
    let balance = user.view(token, &Token::balanceOfCall { holder: to })?;
    writeln!(
        out,
        "claimed {} USDC for {to}; its token balance is now {} USDC ({})",
        usdc(claimed.amount),
        usdc(balance),
        place(&sent)
    )?;
    Ok(())
}

/// `settle freeze`: freezes the vault (anyone, once a queue entry has waited past the
/// deadline); writes the entry that waited.
///
/// # Errors
/// [`OwnerError::Refused`] (`NotOverdue`, `IsFrozen`); the chain's errors.
pub fn freeze(out: &mut dyn Write, user: &mut L1User) -> Result<()> {
    let vault = user.vault();
    let sent = user.send(vault, &Vault::freezeCall {}).map_err(refused(user, "freeze"))?;
    let frozen: Vault::Frozen = event(user, &sent, "freeze")?;
    let at = user.view(vault, &Vault::frozenAtCall {})?;
    writeln!(
        out,
        "froze the vault at {at}: queue entry {} (queued at {}) waited past the deadline; no batch is committed \
         from now on, and every account leaves by escape ({})",
        frozen.oldestWaiting,
        frozen.requestedAt,
        place(&sent)
    )?;
    Ok(())
}

/// `settle refund-queued`: credits up to `count` more of the deposits no batch consumed
/// back to their depositors' claims (anyone, once frozen); writes how far it went and what
/// it credited.
///
/// # Errors
/// [`OwnerError::Refused`] (`NotFrozen`); the chain's errors.
pub fn refund_queued(out: &mut dyn Write, user: &mut L1User, count: u64) -> Result<()> {
    let vault = user.vault();
    let before = user.view(vault, &Vault::refundedCall {})?.max(user.view(vault, &Vault::processedCall {})?);
    let sent = user.send(vault, &Vault::refundQueuedCall { count }).map_err(refused(user, "refundQueued"))?;
    let after = user.view(vault, &Vault::refundedCall {})?;
    let credited = events::<Vault::Credited>(user, &sent);
    let total = credited.iter().fold(U256::ZERO, |sum, c| sum.saturating_add(U256::from(c.amount)));
    if after > before {
        writeln!(
            out,
            "went through queue entries {}-{after}: {} deposits refunded, {} USDC credited to their depositors' \
             claims ({})",
            before.saturating_add(1),
            credited.len(),
            usdc(total),
            place(&sent)
        )?;
    } else {
        writeln!(
            out,
            "nothing left to refund: every queue entry up to {after} was consumed or refunded ({})",
            place(&sent)
        )?;
    }
    Ok(())
}

/// `settle escape`: `account` leaves with its equity at the chain's last root, proven from
/// `source`; writes the equity and what was credited to the payee's claim.
///
/// # Errors
/// [`OwnerError::Escape`] when the proof cannot be made or the chain's last batch is not
/// the source's (nothing sent); [`OwnerError::Refused`] (`NotFrozen`, `AlreadyEscaped`,
/// `NotOwner`, `InsuranceNotYet`, …); the chain's errors.
pub fn escape(out: &mut dyn Write, user: &mut L1User, account: u64, source: &ProofSource) -> Result<()> {
    let vault = user.vault();
    let last = user.view(vault, &Vault::lastIndexCall {})?;
    let root = user.view(vault, &Vault::lastRootCall {})?;
    let proof = source.proof(account, last, root)?;
    let call = Vault::escapeCall {
        leaf: (&proof.leaf).into(),
        siblings: proof.siblings.clone(),
        markets: proof.markets.iter().map(Vault::Market::from).collect(),
    };
    let sent = user.send(vault, &call).map_err(refused(user, "escape"))?;
    let escaped: Vault::Escaped = event(user, &sent, "escape")?;
    let equity = i128::try_from(escaped.equity).map_or_else(|_| escaped.equity.to_string(), Amount::format_micro);
    writeln!(
        out,
        "{} escaped at batch {} (root {root}): equity {equity} USDC, credited {} USDC to the claim of {}; \
         `l2x settle withdraw-claim` pays it ({})",
        holder_name(account),
        proof.batch,
        usdc(escaped.paid),
        escaped.payee,
        place(&sent)
    )?;
    Ok(())
}

/// `settle mint-test-usd`: mints `amount` base units of the vault's token to `to` — only
/// if it is l2x's test token (anyone may mint it); writes `to`'s balance after it. On the
/// embedded chain the genesis's deployer sends the mint; on a node, the key's holder.
///
/// # Errors
/// [`OwnerError::NotTestToken`]; [`OwnerError::Refused`]; the chain's errors.
pub fn mint_test_usd(out: &mut dyn Write, user: &mut L1User, to: Address, amount: u64) -> Result<()> {
    let token = user.view(user.vault(), &Vault::tokenCall {})?;
    if !user.is_test_token(token)? {
        return Err(OwnerError::NotTestToken { token }.into());
    }
    let value = U256::from(amount);
    let refuse = refused(user, "mint");
    let sent = match user.embedded_chain() {
        Some(chain) => {
            let receipt = chain.mint_test_usd(to, value).map_err(refuse)?;
            Sent { tx_hash: None, block: receipt.block, gas_used: receipt.gas_used, logs: receipt.logs }
        }
        None => user.send(token, &Token::mintCall { to, amount: value }).map_err(refuse)?,
    };
    let balance = user.view(token, &Token::balanceOfCall { holder: to })?;
    writeln!(
        out,
        "minted {} USDC of the test token {token} to {to}; its balance is now {} USDC ({})",
        usdc(value),
        usdc(balance),
        place(&sent)
    )?;
    Ok(())
}

/// `settle advance-time`: moves the embedded chain in `dir` on by `seconds` (tests and
/// the documented escape sequence; a node's clock is its own); writes its new time.
///
/// # Errors
/// The directory cannot be opened (another process holds it); the time would pass
/// `u64::MAX`.
pub fn advance_time(out: &mut dyn Write, dir: &Path, seconds: u64) -> Result<()> {
    let embedded = |source| NodeError::EmbeddedChain { dir: dir.to_path_buf(), source };
    let mut chain = EmbeddedChain::open(dir).map_err(embedded)?;
    let before = chain.timestamp();
    let now = chain.advance_time(seconds).map_err(embedded)?;
    writeln!(out, "the embedded chain's time moved from {before} to {now} (+{seconds} s); the next block is later")?;
    Ok(())
}

/// An L1 address as the queue prints it: `0x` and 40 lowercase hex digits (the scenario
/// format's spelling).
fn lower(address: Address) -> String {
    hex::encode_prefixed(address)
}
