//! `settle queue`: the vault's L1 queue as the chain holds it — its entries, how far the
//! committed batches consumed it, and the freeze's clock — read only, no key.
//!
//! ```text
//!  the latest block (number, time), read once; at that block: token, queueLength,
//!         processed, refunded, frozen, frozenAt, forcedDeadline, entries(from ..= from + limit − 1)
//!  oldest waiting = entry processed + 1, if any:  due at requestedAt + forcedDeadline
//!  freeze possible now ⇔ not frozen ∧ an entry waits ∧ latest block time > due
//!                        (the contract's rule, block.timestamp > dueAt, at the time
//!                        `settle freeze`'s try runs: the latest block's)
//! ```
//!
//! Each entry's state: `consumed` (a committed batch took it: credited, paid or refused
//! and refunded), `waiting`; once frozen, a deposit not consumed is `refunded` (through
//! `refunded()`) or `to_refund`, a forced withdrawal not consumed `void` (nothing more is
//! committed). The JSON's entries carry the scenario format's `l1_deposit` and
//! `forced_withdrawal` fields (docs/SCENARIOS.md), spelled the same.

use std::io::Write;

use alloy_primitives::{Address, U256};
use l2x_settlement::chain::abi::{L2xSettlement as Vault, L2xTestUSD as Token};
use l2x_settlement::chain::{Head, L1User, entry_of};
use l2x_settlement::queue::{Entry, Kind};
use serde_json::{Value, json};

use super::{holder_name, lower, usdc};
use crate::error::Result;

/// What `settle queue` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// The first entry to list (from 1).
    pub from: u64,
    /// The most entries to list.
    pub limit: u64,
    /// One JSON object instead of text.
    pub json: bool,
}

/// The queue's state, as read.
struct Books {
    chain_id: u64,
    token: Address,
    time: u64,
    length: u64,
    processed: u64,
    refunded: u64,
    frozen: bool,
    frozen_at: u64,
    deadline: u64,
    /// The oldest entry not consumed and when it was queued.
    oldest: Option<(u64, u64)>,
    /// What the vault holds for L2 (`l2Total`), for queued deposits (`pendingDeposits`) and
    /// for claims (`totalClaimable`), and its token balance.
    held: U256,
    pending: U256,
    claimable: U256,
    balance: U256,
}

impl Books {
    /// The books at `head` (every read at that one block).
    fn read(user: &L1User, head: Head) -> Result<Books> {
        let vault = user.vault();
        let processed = user.view_at(head, vault, &Vault::processedCall {})?;
        let token = user.view_at(head, vault, &Vault::tokenCall {})?;
        let length = user.view_at(head, vault, &Vault::queueLengthCall {})?;
        let oldest = if processed < length {
            let index = processed.saturating_add(1);
            Some((index, user.view_at(head, vault, &Vault::entriesCall { index })?.requestedAt))
        } else {
            None
        };
        Ok(Books {
            chain_id: user.chain_id()?,
            token,
            time: head.time,
            length,
            processed,
            refunded: user.view_at(head, vault, &Vault::refundedCall {})?,
            frozen: user.view_at(head, vault, &Vault::frozenCall {})?,
            frozen_at: user.view_at(head, vault, &Vault::frozenAtCall {})?,
            deadline: user.view_at(head, vault, &Vault::forcedDeadlineCall {})?,
            oldest,
            held: user.view_at(head, vault, &Vault::l2TotalCall {})?,
            pending: user.view_at(head, vault, &Vault::pendingDepositsCall {})?,
            claimable: user.view_at(head, vault, &Vault::totalClaimableCall {})?,
            balance: user.view_at(head, token, &Token::balanceOfCall { holder: vault })?,
        })
    }

    /// When the oldest waiting entry is due (the freeze is allowed after it).
    fn due(&self) -> Option<u64> {
        self.oldest.map(|(_, at)| at.saturating_add(self.deadline))
    }

    /// What `settle freeze` sent now does: its try runs at the latest block's time, and the
    /// contract freezes only when `block.timestamp > dueAt`.
    fn freeze_possible(&self) -> bool {
        !self.frozen && self.due().is_some_and(|due| self.time > due)
    }

    fn state(&self, e: &Entry) -> &'static str {
        match (e.index <= self.processed, self.frozen, e.kind) {
            (true, _, _) => "consumed",
            (false, false, _) => "waiting",
            (false, true, Kind::ForcedWithdrawal) => "void",
            (false, true, _) if e.index <= self.refunded => "refunded",
            (false, true, _) => "to_refund",
        }
    }
}

/// `settle queue`: writes the queue's entries `from` on (at most `limit`), how far the
/// committed batches consumed it, the deadline, how long the oldest waiting entry has
/// waited, whether a freeze is possible now, and whether the vault is frozen.
///
/// # Errors
/// The chain cannot be read; an entry of a kind the contract does not have; writing failed.
pub fn queue(out: &mut dyn Write, user: &L1User, options: QueueOptions) -> Result<()> {
    let head = user.head()?;
    let books = Books::read(user, head)?;
    let from = options.from.max(1);
    let last = books.length.min(from.saturating_add(options.limit).saturating_sub(1));
    let mut entries = Vec::new();
    for index in from..=last {
        entries.push(entry_of(index, &user.view_at(head, user.vault(), &Vault::entriesCall { index })?)?);
    }
    let more = (last < books.length).then(|| last.saturating_add(1));
    if options.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&as_json(user, &books, &entries, more))?)?;
    } else {
        as_text(out, user, &books, &entries, more)?;
    }
    Ok(())
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Deposit => "deposit",
        Kind::InsuranceDeposit => "insurance_deposit",
        Kind::ForcedWithdrawal => "forced_withdrawal",
    }
}

fn as_json(user: &L1User, books: &Books, entries: &[Entry], more: Option<u64>) -> Value {
    let oldest = books.oldest.map(|(index, at)| {
        json!({
            "index": index,
            "requested_at": at,
            "waited": books.time.saturating_sub(at),
            "due_at": at.saturating_add(books.deadline),
        })
    });
    json!({
        "chain_id": books.chain_id,
        "contract": lower(user.vault()),
        "token": lower(books.token),
        "chain_time": books.time,
        "queue_length": books.length,
        "processed": books.processed,
        "forced_deadline": books.deadline,
        "oldest_waiting": oldest,
        "freeze_possible": books.freeze_possible(),
        "frozen": books.frozen,
        "frozen_at": books.frozen.then_some(books.frozen_at),
        "refunded": books.refunded,
        "held_for_l2": usdc(books.held),
        "pending_deposits": usdc(books.pending),
        "claimable": usdc(books.claimable),
        "balance": usdc(books.balance),
        "entries": entries.iter().map(|e| json!({
            "index": e.index,
            "kind": kind_name(e.kind),
            "account": if e.kind == Kind::InsuranceDeposit { json!("insurance") } else { json!(e.account) },
            "amount": usdc(U256::from(e.amount)),
            "from": lower(Address::from(e.from)),
            "requested_at": e.requested_at,
            "state": books.state(e),
        })).collect::<Vec<_>>(),
        "more_from": more,
    })
}

fn as_text(out: &mut dyn Write, user: &L1User, books: &Books, entries: &[Entry], more: Option<u64>) -> Result<()> {
    writeln!(
        out,
        "vault {} on chain {} (token {}); the latest block's time is {}",
        user.vault(),
        books.chain_id,
        books.token,
        books.time
    )?;
    writeln!(
        out,
        "queue: {} entries; the committed batches consumed {}; deadline {} s",
        books.length, books.processed, books.deadline
    )?;
    writeln!(
        out,
        "vault balance {} USDC: held for L2 {}, pending deposits {}, claimable {}",
        usdc(books.balance),
        usdc(books.held),
        usdc(books.pending),
        usdc(books.claimable)
    )?;
    match (books.oldest, books.due()) {
        (Some((index, at)), Some(due)) => writeln!(
            out,
            "oldest waiting: entry {index}, queued at {at}, waited {} s, due at {due}",
            books.time.saturating_sub(at)
        )?,
        _ => writeln!(out, "oldest waiting: none")?,
    }
    if books.frozen {
        writeln!(out, "frozen at {}; refundQueued went through entry {}", books.frozen_at, books.refunded)?;
    } else if books.freeze_possible() {
        writeln!(out, "not frozen; a freeze is possible now")?;
    } else {
        match books.due() {
            Some(due) => writeln!(out, "not frozen; a freeze is possible in a block after {due}")?,
            None => writeln!(out, "not frozen; no freeze is possible while nothing waits")?,
        }
    }
    for e in entries {
        let to =
            if e.kind == Kind::InsuranceDeposit { holder_name(e.account) } else { format!("account {}", e.account) };
        writeln!(
            out,
            "entry {}: {} {to}, {} USDC, from {}, queued at {}: {}",
            e.index,
            kind_name(e.kind),
            usdc(U256::from(e.amount)),
            Address::from(e.from),
            e.requested_at,
            books.state(e)
        )?;
    }
    if let Some(next) = more {
        writeln!(out, "(more entries: --from {next})")?;
    }
    Ok(())
}
