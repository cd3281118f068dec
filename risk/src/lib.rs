//! Accounts and their collateral, composed by the engine's state machine.
//!
//! # Scope today
//!
//! This crate holds the account directory and the collateral ledger: a deposit credits an
//! account, creating it. Positions, mark-to-market, margin requirements, pre-trade checks,
//! funding, liquidation, the insurance fund and auto-deleveraging arrive with the risk
//! engine and will live here, keyed by the same dense account slots.
//!
//! # Design
//!
//! Accounts are addressed by [`AccountId`] at the edges and by a dense [`AccountSlot`]
//! inside: the directory maps one to the other once, and every per-account table (here and
//! in the engine) is a `Vec` indexed by slot. Slots are assigned in first-use order, which is
//! deterministic because commands are sequenced. Nothing is iterated in hash order:
//! [`Ledger::accounts`] walks accounts in ascending id.

#![deny(clippy::float_arithmetic)]

use l2x_types::{AccountId, Amount, DetMap};

/// A dense index of an account in every per-account table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountSlot(pub u32);

impl AccountSlot {
    /// The slot as a `Vec` index.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Why a ledger operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The amount is not positive.
    #[error("amount must be positive")]
    NonPositiveAmount,
    /// The balance would overflow 64 bits.
    #[error("balance would overflow")]
    Overflow,
}

/// The account directory and collateral balances.
#[derive(Clone, Debug, Default)]
pub struct Ledger {
    slots: DetMap<AccountId, AccountSlot>,
    ids: Vec<AccountId>,
    collateral: Vec<Amount>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// The slot of an existing account.
    #[inline]
    pub fn slot(&self, account: AccountId) -> Option<AccountSlot> {
        self.slots.get(&account).copied()
    }

    /// The slot of an account, creating the account (with zero collateral) on first use.
    ///
    /// # Panics
    /// If more than `u32::MAX` accounts exist.
    pub fn slot_or_create(&mut self, account: AccountId) -> AccountSlot {
        if let Some(slot) = self.slot(account) {
            return slot;
        }
        let slot = AccountSlot(u32::try_from(self.ids.len()).expect("fewer than 2^32 accounts"));
        self.slots.insert(account, slot);
        self.ids.push(account);
        self.collateral.push(Amount(0));
        slot
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// `true` if no account exists yet.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of the account in `slot`.
    #[inline]
    pub fn id(&self, slot: AccountSlot) -> AccountId {
        self.ids[slot.index()]
    }

    /// Collateral of an account (zero if unknown).
    pub fn collateral(&self, account: AccountId) -> Amount {
        self.slot(account).map_or(Amount(0), |s| self.collateral[s.index()])
    }

    /// Credits collateral, creating the account on first deposit.
    ///
    /// # Errors
    /// [`LedgerError`] if the amount is not positive or the balance would overflow; nothing
    /// changes then.
    pub fn deposit(&mut self, account: AccountId, amount: Amount) -> Result<AccountSlot, LedgerError> {
        if amount.0 <= 0 {
            return Err(LedgerError::NonPositiveAmount);
        }
        let current = self.collateral(account);
        let new = current.0.checked_add(amount.0).ok_or(LedgerError::Overflow)?;
        let slot = self.slot_or_create(account);
        self.collateral[slot.index()] = Amount(new);
        Ok(slot)
    }

    /// Every account with its collateral, in ascending account id.
    pub fn accounts(&self) -> Vec<(AccountId, Amount)> {
        let mut all: Vec<_> = self.ids.iter().copied().zip(self.collateral.iter().copied()).collect();
        all.sort_unstable_by_key(|&(id, _)| id);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deposits_create_accounts_and_accumulate() {
        let mut l = Ledger::new();
        assert_eq!(l.deposit(AccountId(7), Amount(5)), Ok(AccountSlot(0)));
        assert_eq!(l.deposit(AccountId(3), Amount(1)), Ok(AccountSlot(1)));
        assert_eq!(l.deposit(AccountId(7), Amount(10)), Ok(AccountSlot(0)));
        assert_eq!(l.collateral(AccountId(7)), Amount(15));
        assert_eq!(l.accounts(), vec![(AccountId(3), Amount(1)), (AccountId(7), Amount(15))]);
    }

    #[test]
    fn bad_deposits_change_nothing() {
        let mut l = Ledger::new();
        assert_eq!(l.deposit(AccountId(1), Amount(0)), Err(LedgerError::NonPositiveAmount));
        assert_eq!(l.deposit(AccountId(1), Amount(-5)), Err(LedgerError::NonPositiveAmount));
        assert!(l.is_empty());
        l.deposit(AccountId(1), Amount(i64::MAX)).unwrap();
        assert_eq!(l.deposit(AccountId(1), Amount(1)), Err(LedgerError::Overflow));
        assert_eq!(l.collateral(AccountId(1)), Amount(i64::MAX));
    }
}
