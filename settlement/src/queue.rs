//! The L1 queue as a batch sees it: the rolling hash of the entries the state machine took,
//! the withdrawals that left the ledger, and the entries it refused (docs/SETTLEMENT.md,
//! "The L1 queue in a batch").
//!
//! # The rolling hash
//!
//! ```text
//!  h_0 = 0x00…00
//!  h_i = keccak256(abi.encodePacked(h_{i-1}, uint8 kind, uint64 i, uint64 account,
//!                                   uint64 amount, address from, uint64 requestedAt))
//!        32 + 1 + 8 + 8 + 8 + 20 + 8 = 85 bytes, integers big-endian
//!  kind 0  a deposit to an account          account = its id
//!       1  a deposit to the insurance fund  account = 2^64 − 1 (the fund's leaf key)
//!       2  a forced withdrawal              account = its id
//! ```
//!
//! This is the hash the vault contract keeps as it queues entries, so a batch that states
//! `(queue_count, queue_hash)` states exactly which entries it consumed: one it invented
//! or skipped gives another hash.
//!
//! # From the journal alone
//!
//! The L1 commands carry every hashed field, and the state machine says, by index, which it
//! took in turn (`l1_credited`, `l1_refunded`, `forced_withdrawn`, `forced_rejected`). An
//! L1 command out of turn (`queue_out_of_order`) is no entry: it changes nothing and says
//! nothing of the queue. So [`entry_of`] reads an entry from a command and its events, and
//! a replay of the journal gives the hash the live node gave.
//!
//! # Withdrawals
//!
//! Everything that leaves the ledger becomes a claim on L1. A forced withdrawal is a queue
//! entry: the contract pays its amount to the account's owner when a batch consumes it and
//! does not list it among the refused (`forced_withdrawn`). Every other withdrawal was asked
//! on L2, and the batch lists it, in sequence order ([`withdrawal_of`]): an operator
//! `withdraw` or an account's own (asked over the wire: `WithdrawRequest`) that succeeded
//! (the engine reports either by the account's `balance` event; a refused one gives
//! `rejected`).

use alloy_primitives::{B256, keccak256};
use l2x_types::{AccountId, Amount, Command, Event, Holder, L1Address};

use crate::leaf;

/// What a queue entry is (the contract's `Kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A deposit to a trading account (in a hand-made journal, also a refunded one to a
    /// reserved id: the contract refuses those).
    Deposit = 0,
    /// A deposit to the insurance fund.
    InsuranceDeposit = 1,
    /// A forced withdrawal.
    ForcedWithdrawal = 2,
}

/// One queue entry, as hashed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What it is.
    pub kind: Kind,
    /// Its queue index, from 1.
    pub index: u64,
    /// The leaf key it is for (the fund's for an insurance deposit).
    pub account: u64,
    /// The amount, as the contract queued it (a positive `uint64`).
    pub amount: u64,
    /// The depositor or owner on L1.
    pub from: [u8; 20],
    /// When the contract queued it (L1 block time, seconds).
    pub requested_at: u64,
}

/// Bytes of one packed entry with the hash before it.
pub const PACKED_LEN: usize = 32 + 1 + 8 + 8 + 8 + 20 + 8;

impl Entry {
    /// `abi.encodePacked(prev, kind, index, account, amount, from, requestedAt)`.
    pub fn packed(&self, prev: B256) -> [u8; PACKED_LEN] {
        let mut out = [0u8; PACKED_LEN];
        out[..32].copy_from_slice(prev.as_slice());
        out[32] = self.kind as u8;
        out[33..41].copy_from_slice(&self.index.to_be_bytes());
        out[41..49].copy_from_slice(&self.account.to_be_bytes());
        out[49..57].copy_from_slice(&self.amount.to_be_bytes());
        out[57..77].copy_from_slice(&self.from);
        out[77..85].copy_from_slice(&self.requested_at.to_be_bytes());
        out
    }

    /// The rolling hash after this entry, `prev` the hash before it.
    pub fn next_hash(&self, prev: B256) -> B256 {
        keccak256(self.packed(prev))
    }
}

impl Kind {
    /// The kind the contract numbers `n` (its `Kind` enum), if any.
    pub fn from_u8(n: u8) -> Option<Kind> {
        match n {
            0 => Some(Kind::Deposit),
            1 => Some(Kind::InsuranceDeposit),
            2 => Some(Kind::ForcedWithdrawal),
            _ => None,
        }
    }
}

impl Entry {
    /// The command that sequences this entry: an `l1_deposit` (to the insurance fund for
    /// [`Kind::InsuranceDeposit`]) or a `forced_withdrawal`, carrying every hashed field.
    /// `None` if the amount does not fit the ledger's `i64` (the contract never queues
    /// one: it bounds what it holds by 2^62).
    pub fn command(&self) -> Option<Command> {
        let amount = Amount(i64::try_from(self.amount).ok()?);
        let (index, from, requested_at) = (self.index, L1Address(self.from), self.requested_at);
        Some(match self.kind {
            Kind::Deposit => {
                Command::L1Deposit { index, to: Holder::Account(AccountId(self.account)), amount, from, requested_at }
            }
            Kind::InsuranceDeposit => Command::L1Deposit { index, to: Holder::Insurance, amount, from, requested_at },
            Kind::ForcedWithdrawal => {
                Command::ForcedWithdrawal { index, account: AccountId(self.account), amount, from, requested_at }
            }
        })
    }
}

/// A withdrawal a batch lists: the amount left the account's collateral, to be paid on L1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    /// The account (leaf key).
    pub account: u64,
    /// The amount, positive.
    pub amount: u64,
}

/// The queue entry a command was, if the state machine took it in turn, and whether it was
/// refused (a deposit refunded, a forced withdrawal rejected).
pub fn entry_of(cmd: &Command, events: &[Event]) -> Option<(Entry, bool)> {
    let (index, refused) = events.iter().find_map(|ev| match *ev {
        Event::L1Credited { index, .. } | Event::ForcedWithdrawn { index, .. } => Some((index, false)),
        Event::L1Refunded { index, .. } | Event::ForcedRejected { index, .. } => Some((index, true)),
        _ => None,
    })?;
    let entry = match *cmd {
        Command::L1Deposit { index: i, to, amount, from, requested_at } if i == index => Entry {
            kind: if to == Holder::Insurance { Kind::InsuranceDeposit } else { Kind::Deposit },
            index,
            account: leaf::key(to),
            amount: amount.0.cast_unsigned(),
            from: from.0,
            requested_at,
        },
        Command::ForcedWithdrawal { index: i, account, amount, from, requested_at } if i == index => Entry {
            kind: Kind::ForcedWithdrawal,
            index,
            account: account.0,
            amount: amount.0.cast_unsigned(),
            from: from.0,
            requested_at,
        },
        _ => return None,
    };
    Some((entry, refused))
}

/// The withdrawal a command made on L2, if it made one: an operator's or an account's own
/// withdraw the ledger accepted (its `balance` event; a refused one has none). A forced
/// withdrawal honoured is not one: the contract pays it from its queue entry (see the module
/// docs).
pub fn withdrawal_of(cmd: &Command, events: &[Event]) -> Option<Withdrawal> {
    events.iter().find_map(|ev| match (*ev, cmd) {
        // A withdraw the ledger accepted: its account's balance, and no reject (the engine
        // reports a refused one by its reject alone; the guard keeps a future balance event
        // of a refused withdraw from listing money that never left).
        (
            Event::Balance { holder: Holder::Account(a), .. },
            Command::Withdraw { account, amount } | Command::WithdrawRequest { account, amount, .. },
        ) if a == *account && !events.iter().any(|e| matches!(e, Event::Rejected { .. })) => {
            Some(Withdrawal { account: account.0, amount: amount.0.cast_unsigned() })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;
    use alloy_sol_types::{SolType, sol_data};
    use l2x_types::{AccountId, Amount, L1Address};

    use super::*;

    const FROM: [u8; 20] = [0xab; 20];

    fn entry(kind: Kind, index: u64, account: u64, amount: u64) -> Entry {
        Entry { kind, index, account, amount, from: FROM, requested_at: 1_700_000_000 + index }
    }

    /// The hash computed another way: alloy's packed ABI encoding of the same tuple.
    fn reference(prev: B256, e: &Entry) -> B256 {
        type Packed = (
            sol_data::FixedBytes<32>,
            sol_data::Uint<8>,
            sol_data::Uint<64>,
            sol_data::Uint<64>,
            sol_data::Uint<64>,
            sol_data::Address,
            sol_data::Uint<64>,
        );
        let packed = Packed::abi_encode_packed(&(
            prev,
            e.kind as u8,
            e.index,
            e.account,
            e.amount,
            Address::from(e.from),
            e.requested_at,
        ));
        assert_eq!(packed.len(), PACKED_LEN);
        keccak256(packed)
    }

    #[test]
    fn the_rolling_hash_is_the_packed_abi_encoding() {
        let entries = [
            entry(Kind::Deposit, 1, 7, 5_000_000),
            entry(Kind::InsuranceDeposit, 2, u64::MAX, 1),
            entry(Kind::ForcedWithdrawal, 3, 7, 2_000_000),
        ];
        let mut h = B256::ZERO;
        for e in &entries {
            let next = e.next_hash(h);
            assert_eq!(next, reference(h, e), "entry {}", e.index);
            h = next;
        }
        // A hand-checked vector: h_1 of a deposit of 5 USDC to account 7 (docs/SETTLEMENT.md).
        let p = entries[0].packed(B256::ZERO);
        assert_eq!(p[32], 0);
        assert_eq!(p[33..41], 1u64.to_be_bytes());
        assert_eq!(p[41..49], 7u64.to_be_bytes());
        assert_eq!(p[49..57], 5_000_000u64.to_be_bytes());
        assert_eq!(p[57..77], FROM);
        assert_eq!(p[77..85], 1_700_000_001u64.to_be_bytes());
    }

    #[test]
    fn entries_and_withdrawals_are_read_from_commands_and_events() {
        let from = L1Address(FROM);
        let dep = Command::L1Deposit { index: 4, to: Holder::Insurance, amount: Amount(9), from, requested_at: 3 };
        let credited = [Event::L1Credited { index: 4, holder: Holder::Insurance, amount: Amount(9) }];
        let (e, refused) = entry_of(&dep, &credited).unwrap_or_else(|| panic!("an entry"));
        assert!(!refused);
        assert_eq!(
            e,
            Entry { kind: Kind::InsuranceDeposit, index: 4, account: u64::MAX, amount: 9, from: FROM, requested_at: 3 }
        );
        assert_eq!(entry_of(&dep, &[]), None, "out of turn: no entry");
        assert_eq!(e.command(), Some(dep.clone()), "an entry's command is the one it was read from");
        let account = AccountId(7);
        let forced = Command::ForcedWithdrawal { index: 5, account, amount: Amount(2), from, requested_at: 3 };
        let withdrawn = [
            Event::ForcedWithdrawn { index: 5, account, amount: Amount(2) },
            Event::Balance { holder: Holder::Account(account), collateral: Amount(1) },
        ];
        let (e, refused) = entry_of(&forced, &withdrawn).unwrap_or_else(|| panic!("an entry"));
        assert_eq!((e.kind, refused, e.command()), (Kind::ForcedWithdrawal, false, Some(forced.clone())));
        assert_eq!(Entry { amount: 1 << 63, ..e }.command(), None, "past i64: no command");
        assert_eq!(
            (Kind::from_u8(0), Kind::from_u8(1), Kind::from_u8(2), Kind::from_u8(3)),
            (Some(Kind::Deposit), Some(Kind::InsuranceDeposit), Some(Kind::ForcedWithdrawal), None)
        );
        assert_eq!(withdrawal_of(&forced, &withdrawn), None, "the contract pays it from its queue entry");
        let op = Command::Withdraw { account, amount: Amount(3) };
        assert_eq!(withdrawal_of(&op, &withdrawn[1..]), Some(Withdrawal { account: 7, amount: 3 }));
        assert_eq!(withdrawal_of(&op, &[]), None);
    }

    /// An account's own withdrawal (over the wire) is listed exactly as the operator's: when
    /// the state machine honoured it, and not when it refused it.
    #[test]
    fn a_wire_withdrawal_is_listed_only_when_honoured() {
        use l2x_engine::StateMachine;
        use l2x_types::{Seq, Sequenced, Timestamp};

        let mut sm = StateMachine::new();
        let mut apply = |seq: u64, cmd: Command| {
            let mut events = Vec::new();
            sm.apply(&Sequenced { seq: Seq(seq), ts: Timestamp(seq), cmd: cmd.clone() }, &mut events);
            withdrawal_of(&cmd, &events)
        };
        let account = AccountId(7);
        let request = |amount, request_id| Command::WithdrawRequest { account, amount: Amount(amount), request_id };
        assert_eq!(apply(2, request(1, 1)), None, "no account yet: refused, not listed");
        assert_eq!(apply(3, Command::Deposit { to: Holder::Account(account), amount: Amount(10) }), None);
        assert_eq!(apply(4, request(4, 2)), None, "no vault: refused, not listed");
        let (contract, token) = (L1Address([0xc0; 20]), L1Address([0x70; 20]));
        assert_eq!(apply(4, Command::L1Bind { chain_id: 31_337, contract, token }), None);
        assert_eq!(apply(4, request(4, 2)), Some(Withdrawal { account: 7, amount: 4 }));
        assert_eq!(apply(5, request(7, 3)), None, "more than the collateral: refused, not listed");
        assert_eq!(apply(6, request(0, 4)), None, "bad amount: refused, not listed");
        assert_eq!(apply(7, request(-1, 5)), None, "bad amount: refused, not listed");
        assert_eq!(apply(8, request(6, 6)), Some(Withdrawal { account: 7, amount: 6 }), "all that is left");
        assert_eq!(sm.ledger().flows(), (10, 10), "everything listed left the ledger, nothing else");
    }
}
