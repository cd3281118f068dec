//! The L1 queue: deposits and forced withdrawals the vault contract queued, and the binding
//! of the journal to that contract (docs/RISK.md, "Deposits and withdrawals through L1").
//!
//! # Exactly once, in queue order
//!
//! The state keeps the next queue index it will apply ([`L1State::next`], from 1). An L1
//! command carrying any other index — a duplicate, an entry after a gap, a reordering — is
//! rejected `queue_out_of_order` and changes nothing but sequenced time (which passes with
//! every command, expiring GTD orders due by then), not even the index: it is applied when
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
//! | deposit not positive, overflowing the collateral, or raising what the ledger holds past [`MAX_HELD`] | refunded on L1 | `l1_refunded` (`bad_amount`) |
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

/// The most the ledger may hold through deposits, µUSDC: 2⁶² (about 4.6 × 10¹² USDC, far
/// above any real supply). Every balance stays far below `i64::MAX` — the ledger's credits
/// saturate there, which would break conservation silently — so an L1 deposit that would
/// raise deposits minus withdrawals above this is refunded. (Anyone can queue a deposit;
/// an open-mint test token could otherwise reach the limit.)
pub(crate) const MAX_HELD: i128 = 1 << 62;

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
        let (deposits, withdrawals) = self.ledger.flows();
        if deposits - withdrawals + i128::from(amount.0) > MAX_HELD {
            return out.push(Event::L1Refunded { index, holder: to, amount, reason: RejectReason::BadAmount });
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

#[cfg(test)]
mod tests {
    use l2x_types::{Command, Seq, Sequenced, Timestamp};

    use super::super::test_support::Exchange;
    use super::*;
    use crate::CanonicalState;

    const FROM: L1Address = L1Address([0x11; 20]);

    /// Applies one command to the state machine directly (every event, not only matching's).
    fn apply(ex: &mut Exchange, seq: u64, cmd: Command) -> Vec<Event> {
        let mut out = Vec::new();
        ex.sm.apply(&Sequenced { seq: Seq(seq), ts: Timestamp(0), cmd }, &mut out);
        ex.sm.check_invariants().unwrap();
        out
    }

    fn deposit(index: u64, to: Holder, amount: i64) -> Command {
        Command::L1Deposit { index, to, amount: Amount(amount), from: FROM, requested_at: 0 }
    }

    #[test]
    fn an_entry_out_of_turn_changes_nothing_and_one_in_turn_is_consumed_whatever_its_outcome() {
        let mut ex = Exchange::new();
        let before = ex.sm.canonical();
        for index in [0, 2, u64::MAX] {
            let events = apply(&mut ex, index, deposit(index, Holder::Insurance, 5));
            let account = None;
            assert_eq!(events, vec![reject(CommandKind::L1Deposit, account, None, RejectReason::QueueOutOfOrder)]);
        }
        assert_eq!(ex.sm.canonical(), before);
        assert!(ex.sm.l1().is_initial());
        assert_eq!(
            apply(&mut ex, 1, deposit(1, Holder::Fees, 5)),
            vec![Event::L1Refunded {
                index: 1,
                holder: Holder::Fees,
                amount: Amount(5),
                reason: RejectReason::ReservedAccount
            }]
        );
        let (fund, events) = (Holder::Insurance, apply(&mut ex, 2, deposit(2, Holder::Insurance, 5)));
        assert_eq!(events[0], Event::L1Credited { index: 2, holder: fund, amount: Amount(5) });
        assert_eq!(events[1], Event::Insurance { delta: 5, balance: Amount(5) });
        let big = Holder::Account(AccountId(1));
        let events = apply(&mut ex, 3, deposit(3, big, i64::MAX));
        assert_eq!(
            events,
            vec![Event::L1Refunded {
                index: 3,
                holder: big,
                amount: Amount(i64::MAX),
                reason: RejectReason::BadAmount
            }]
        );
        let forced = |index, amount| Command::ForcedWithdrawal {
            index,
            account: AccountId(1),
            amount: Amount(amount),
            from: FROM,
            requested_at: 0,
        };
        let events = apply(&mut ex, 4, forced(4, -1));
        assert_eq!(
            events,
            vec![Event::ForcedRejected {
                index: 4,
                account: AccountId(1),
                amount: Amount(-1),
                reason: RejectReason::BadAmount
            }]
        );
        let events = apply(&mut ex, 5, forced(5, 7));
        assert_eq!(events[0], Event::ForcedWithdrawn { index: 5, account: AccountId(1), amount: Amount(7) });
        let events = apply(&mut ex, 6, forced(5, 7));
        let out_of_turn = RejectReason::QueueOutOfOrder;
        assert_eq!(events, vec![reject(CommandKind::ForcedWithdrawal, Some(AccountId(1)), None, out_of_turn)]);
        assert_eq!(ex.sm.l1().next, 6);
    }

    /// Regression (review of the L1 queue): a deposit of about `i64::MAX` to the fund, queued
    /// by anyone, left a balance where the ledger's credits saturate: a later fee vanished
    /// without an error. What the ledger holds is bounded by `MAX_HELD`: the deposit that
    /// would pass it is refunded, one that reaches it exactly is credited.
    #[test]
    fn an_l1_deposit_past_what_the_ledger_may_hold_is_refunded() {
        let mut ex = Exchange::new();
        let (deposits, withdrawals) = ex.sm.ledger().flows();
        let room = i64::try_from(MAX_HELD - (deposits - withdrawals)).unwrap();
        let half = room / 2;
        apply(&mut ex, 1, deposit(1, Holder::Insurance, half));
        let rest = room - half;
        let holder = Holder::Account(AccountId(1));
        let over = apply(&mut ex, 2, deposit(2, holder, rest + 1));
        assert_eq!(
            over,
            vec![Event::L1Refunded { index: 2, holder, amount: Amount(rest + 1), reason: RejectReason::BadAmount }]
        );
        let exact = apply(&mut ex, 3, deposit(3, holder, rest));
        assert_eq!(exact[0], Event::L1Credited { index: 3, holder, amount: Amount(rest) });
        let (deposits, withdrawals) = ex.sm.ledger().flows();
        assert_eq!(deposits - withdrawals, MAX_HELD);
        assert_eq!(ex.sm.l1().next, 4);
    }

    #[test]
    fn binding_refuses_operator_deposits_and_a_second_binding() {
        let mut ex = Exchange::new();
        let bind = Command::L1Bind { chain_id: 1, contract: FROM, token: L1Address([2; 20]) };
        assert_eq!(
            apply(&mut ex, 1, bind.clone()),
            vec![Event::L1Bound { chain_id: 1, contract: FROM, token: L1Address([2; 20]) }]
        );
        let again = apply(&mut ex, 2, bind);
        assert_eq!(again, vec![reject(CommandKind::L1Bind, None, None, RejectReason::L1AlreadyBound)]);
        let events = apply(&mut ex, 3, Command::Deposit { to: Holder::Account(AccountId(1)), amount: Amount(1) });
        assert_eq!(events, vec![reject(CommandKind::Deposit, Some(AccountId(1)), None, RejectReason::L1Only)]);
        assert_eq!(
            apply(&mut ex, 4, deposit(1, Holder::Account(AccountId(1)), 1)).len(),
            2,
            "L1 deposits still credit"
        );
    }

    #[test]
    fn the_l1_trailer_is_absent_until_used_and_strictly_decoded() {
        let mut ex = Exchange::new();
        let plain = ex.sm.canonical().encode();
        apply(&mut ex, 1, deposit(9, Holder::Insurance, 1));
        assert_eq!(ex.sm.canonical().encode(), plain, "an entry out of turn adds no trailer");
        apply(&mut ex, 2, deposit(1, Holder::Insurance, 1));
        let state = ex.sm.canonical();
        let bytes = state.encode();
        // Total deposits changed too; the trailer is the last 58 bytes.
        assert_eq!(bytes.len(), plain.len() + 1 + 8 + 1 + 8 + 20 + 20);
        assert_eq!(CanonicalState::decode(&bytes).unwrap(), state);
        let trailer = bytes.len() - 58;
        let refused = |patch: &dyn Fn(&mut Vec<u8>)| {
            let mut b = bytes.clone();
            patch(&mut b);
            CanonicalState::decode(&b).unwrap_err().what
        };
        assert_eq!(refused(&|b| b[trailer] = 2), "L1 part tag");
        assert_eq!(
            refused(&|b| b[trailer + 1..trailer + 9].copy_from_slice(&1u64.to_le_bytes())),
            "L1 part (a next index of 0, or the initial state)"
        );
        assert_eq!(
            refused(&|b| b[trailer + 1..trailer + 9].fill(0)),
            "L1 part (a next index of 0, or the initial state)"
        );
        assert_eq!(refused(&|b| b[trailer + 20] = 1), "L1 binding bytes without a binding");
        assert_eq!(refused(&|b| b[trailer + 9] = 2), "L1 bound");
        assert_eq!(refused(&|b| b.push(0)), "trailing bytes");
        assert_eq!(refused(&|b| b.truncate(trailer + 30)), "L1 contract");
    }
}
