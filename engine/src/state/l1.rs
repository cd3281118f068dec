//! The L1 queue: deposits and forced withdrawals the vault contract queued, and the binding
//! of the journal to that contract (docs/RISK.md, "Deposits and withdrawals through L1").
//!
//! # Exactly once, in queue order
//!
//! The state keeps the next queue index it will apply ([`L1State::next`], from 1). An L1
//! command carrying any other index — a duplicate, an entry after a gap, a reordering — is
//! rejected `queue_out_of_order` and changes nothing, not even the index: it is applied when
//! it arrives again in its turn. So whatever the node's watcher does (resubmit after a
//! restart, race itself), the replayable state machine applies each entry exactly once and
//! in order, and the journal proves it.
//!
//! # Consumed, whatever the outcome
//!
//! An entry in its turn always advances the index and always says what became of it, by
//! its index, so that a batch can list processed and refused entries from the events alone:
//!
//! | entry | outcome | events |
//! |---|---|---|
//! | deposit, creditable | credited | `l1_credited`, then `balance` (`insurance` for the fund) |
//! | deposit to the fee account or a reserved id | refunded on L1 | `l1_refunded` (`reserved_account`) |
//! | deposit not positive, or overflowing the collateral | refunded on L1 | `l1_refunded` (`bad_amount`) |
//! | forced withdrawal passing `withdraw`'s checks | debited, paid on L1 | `forced_withdrawn`, then `balance` |
//! | forced withdrawal failing them | refused, nothing moves | `forced_rejected` (the reason) |
//!
//! # Binding
//!
//! `l1_bind` records the vault once (a second is rejected `l1_already_bound`); from then on
//! an operator-credited `deposit` is rejected `l1_only`. The L1 commands themselves do not
//! need a binding: tests of the engine alone use them unbound.

use l2x_types::{AccountId, Amount, CommandKind, Event, Holder, L1Address, L1Binding, RejectReason};

use super::{StateMachine, reject};

impl StateMachine {
    /// Takes queue entry `index` if it is the next one: advances the index and returns
    /// `true`; otherwise writes the `queue_out_of_order` reject and returns `false`.
    fn take_queue_entry(
        &mut self,
        index: u64,
        kind: CommandKind,
        account: Option<AccountId>,
        out: &mut Vec<Event>,
    ) -> bool {
        // An index of u64::MAX can never be taken: the next one would not fit.
        match self.l1.next.checked_add(1) {
            Some(after) if index == self.l1.next => {
                self.l1.next = after;
                true
            }
            _ => {
                out.push(reject(kind, account, None, RejectReason::QueueOutOfOrder));
                false
            }
        }
    }

    pub(super) fn l1_deposit(&mut self, index: u64, to: Holder, amount: Amount, out: &mut Vec<Event>) {
        let account = match to {
            Holder::Account(a) => Some(a),
            _ => None,
        };
        if !self.take_queue_entry(index, CommandKind::L1Deposit, account, out) {
            return;
        }
        let reserved = match to {
            Holder::Account(a) => a.is_reserved(),
            Holder::Insurance => false,
            Holder::Fees => true,
        };
        if reserved {
            return out.push(Event::L1Refunded { index, holder: to, amount, reason: RejectReason::ReservedAccount });
        }
        match self.ledger.deposit(to, amount) {
            Ok((_, collateral)) => {
                out.push(Event::L1Credited { index, holder: to, amount });
                out.push(match to {
                    Holder::Insurance => Event::Insurance { delta: i128::from(amount.0), balance: Amount(collateral) },
                    holder => Event::Balance { holder, collateral: Amount(collateral) },
                });
            }
            Err(_) => out.push(Event::L1Refunded { index, holder: to, amount, reason: RejectReason::BadAmount }),
        }
    }

    pub(super) fn forced_withdrawal(&mut self, index: u64, account: AccountId, amount: Amount, out: &mut Vec<Event>) {
        if !self.take_queue_entry(index, CommandKind::ForcedWithdrawal, Some(account), out) {
            return;
        }
        match self.ledger.withdraw(account, amount) {
            Ok((_, collateral)) => {
                out.push(Event::ForcedWithdrawn { index, account, amount });
                out.push(Event::Balance { holder: Holder::Account(account), collateral: Amount(collateral) });
            }
            Err(reason) => out.push(Event::ForcedRejected { index, account, amount, reason }),
        }
    }

    pub(super) fn l1_bind(&mut self, chain_id: u64, contract: L1Address, token: L1Address, out: &mut Vec<Event>) {
        if self.l1.binding.is_some() {
            return out.push(reject(CommandKind::L1Bind, None, None, RejectReason::L1AlreadyBound));
        }
        self.l1.binding = Some(L1Binding { chain_id, contract, token });
        out.push(Event::L1Bound { chain_id, contract, token });
    }

    /// `true` once the journal is bound to a vault: operator deposits are refused.
    pub(super) fn l1_only(&self) -> bool {
        self.l1.binding.is_some()
    }
}
