//! The commands that are not orders: listing an instrument, deposits and withdrawals,
//! oracle prices (the mark, and the accounts it may put below maintenance), funding ticks.

use l2x_risk::{MarketParams, ParamsError};
use l2x_types::{
    AccountId, Amount, ClientOrderId, CommandKind, Event, Holder, Instrument, InstrumentId, InstrumentSpec, Price,
    RejectReason, Side, SpecError,
};

use super::{StateMachine, reject};

/// Why an instrument does not list (reject reason `duplicate_symbol` or `bad_instrument`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// The symbol is listed already.
    #[error("the symbol is listed already")]
    DuplicateSymbol,
    /// There are `u32::MAX` instruments already.
    #[error("too many instruments")]
    TooMany,
    /// The specification does not validate.
    #[error("bad specification")]
    Spec(#[source] SpecError),
    /// The risk parameters derived from it do not validate.
    #[error("bad risk parameters")]
    Params(#[source] ParamsError),
    /// The ledger gave its market another id.
    #[error("the ledger's market id disagrees")]
    MarketId,
}

impl ListingError {
    /// The reject reason of a listing command that fails this way.
    pub fn reason(&self) -> RejectReason {
        match self {
            ListingError::DuplicateSymbol => RejectReason::DuplicateSymbol,
            _ => RejectReason::BadInstrument,
        }
    }
}

impl StateMachine {
    pub(super) fn list_instrument(&mut self, spec: &InstrumentSpec, out: &mut Vec<Event>) {
        match self.list(spec) {
            Ok(instrument) => out.push(Event::InstrumentListed { instrument }),
            Err(e) => out.push(reject(CommandKind::Instrument, None, None, e.reason())),
        }
    }

    /// Lists an instrument: its book, its market in the ledger, its symbol.
    pub(super) fn list(&mut self, spec: &InstrumentSpec) -> Result<InstrumentId, ListingError> {
        if self.symbols.contains_key(&spec.symbol) {
            return Err(ListingError::DuplicateSymbol);
        }
        let id = u32::try_from(self.instruments.len()).map(InstrumentId).map_err(|_| ListingError::TooMany)?;
        let instrument = Instrument::try_new(id, spec).map_err(ListingError::Spec)?;
        let params = MarketParams::from_instrument(&instrument);
        params.validate().map_err(ListingError::Params)?;
        match self.ledger.add_market(params) {
            Ok(market) if market == id => {}
            Ok(_) => return Err(ListingError::MarketId),
            Err(e) => return Err(ListingError::Params(e)),
        }
        self.instruments.push(instrument);
        self.bands.push(None);
        self.symbols.insert(spec.symbol, id);
        self.books.add_instrument();
        Ok(id)
    }

    pub(super) fn deposit(&mut self, to: Holder, amount: Amount, out: &mut Vec<Event>) {
        if self.l1_only() {
            let account = match to {
                Holder::Account(a) => Some(a),
                _ => None,
            };
            return out.push(reject(CommandKind::Deposit, account, None, RejectReason::L1Only));
        }
        if let Holder::Account(a) = to
            && a.is_reserved()
        {
            return out.push(reject(CommandKind::Deposit, Some(a), None, RejectReason::ReservedAccount));
        }
        match self.ledger.deposit(to, amount) {
            Ok((_, collateral)) => out.push(match to {
                Holder::Insurance => Event::Insurance { delta: i128::from(amount), balance: Amount(collateral) },
                holder => Event::Balance { holder, collateral: Amount(collateral) },
            }),
            Err(_) => {
                let account = match to {
                    Holder::Account(a) => Some(a),
                    _ => None,
                };
                out.push(reject(CommandKind::Deposit, account, None, RejectReason::BadAmount));
            }
        }
    }

    pub(super) fn withdraw(&mut self, account: AccountId, amount: Amount, out: &mut Vec<Event>) {
        match self.ledger.withdraw(account, amount) {
            Ok((_, collateral)) => {
                out.push(Event::Balance { holder: Holder::Account(account), collateral: Amount(collateral) });
            }
            Err(reason) => out.push(reject(CommandKind::Withdraw, Some(account), None, reason)),
        }
    }

    /// An account's own withdrawal: `withdraw`'s checks and `balance` event, answered by
    /// `withdrawn` (before the `balance`) or by a reject carrying the request id as its cid.
    /// Refused `no_vault` first, before any other check, unless the journal is bound to a
    /// vault: the batch would list it, and the vault refuses for good (`NoOwner`) to pay an
    /// account no L1 deposit gave an owner, which stops settlement.
    pub(super) fn withdraw_request(
        &mut self,
        account: AccountId,
        amount: Amount,
        request_id: u64,
        out: &mut Vec<Event>,
    ) {
        let cid = Some(ClientOrderId(request_id));
        if !self.l1_only() {
            return out.push(reject(CommandKind::WithdrawRequest, Some(account), cid, RejectReason::NoVault));
        }
        match self.ledger.withdraw(account, amount) {
            Ok((_, collateral)) => {
                let collateral = Amount(collateral);
                out.push(Event::Withdrawn { account, request_id, amount, collateral });
                out.push(Event::Balance { holder: Holder::Account(account), collateral });
            }
            Err(reason) => out.push(reject(CommandKind::WithdrawRequest, Some(account), cid, reason)),
        }
    }

    pub(super) fn oracle(&mut self, instrument: InstrumentId, price: Price, out: &mut Vec<Event>) {
        let rej = |r| reject(CommandKind::Oracle, None, None, r);
        if self.instrument(instrument).is_none() {
            return out.push(rej(RejectReason::UnknownSymbol));
        }
        if !price.is_positive() {
            return out.push(rej(RejectReason::BadOraclePrice));
        }
        let mut suspects = core::mem::take(&mut self.suspects);
        self.ledger.set_mark(instrument, price, &mut suspects);
        self.suspects = suspects;
    }

    /// The price band of an instrument at its mark, `None` without a mark.
    #[inline]
    pub(super) fn band(&mut self, instrument: InstrumentId) -> Option<(Price, Price)> {
        let mark = self.ledger.mark(instrument)?;
        let i = instrument.index();
        match self.bands[i] {
            Some((at, band)) if at == mark => Some(band),
            _ => {
                let band = self.instruments[i].band(mark);
                self.bands[i] = Some((mark, band));
                Some(band)
            }
        }
    }

    pub(super) fn funding(&mut self, instrument: InstrumentId, out: &mut Vec<Event>) {
        let rej = |r| reject(CommandKind::Funding, None, None, r);
        if self.instrument(instrument).is_none() {
            return out.push(rej(RejectReason::UnknownSymbol));
        }
        let mut suspects = core::mem::take(&mut self.suspects);
        let tick = self.ledger.funding_tick(
            instrument,
            self.books.depth(instrument, Side::Buy),
            self.books.depth(instrument, Side::Sell),
            &mut suspects,
        );
        self.suspects = suspects;
        match tick {
            Some((rate, index)) => out.push(Event::Funding { instrument, rate, index }),
            None => out.push(rej(RejectReason::NoMarkPrice)),
        }
    }
}

#[cfg(test)]
mod tests {
    use l2x_types::L1Address;

    use super::super::test_support::*;

    #[test]
    fn deposits_to_the_reserved_account_ids_are_refused() {
        let mut ex = Exchange::new();
        for id in [u64::MAX, u64::MAX - 1] {
            let events = ex.apply(Command::Deposit { to: Holder::Account(AccountId(id)), amount: Amount(1) });
            assert_eq!(
                events,
                vec![Event::Rejected {
                    kind: CommandKind::Deposit,
                    account: Some(AccountId(id)),
                    cid: None,
                    reason: RejectReason::ReservedAccount,
                }]
            );
        }
        let last_trading = AccountId(AccountId::RESERVED_FROM - 1);
        assert!(!last_trading.is_reserved());
        assert_eq!(ex.apply(Command::Deposit { to: Holder::Account(last_trading), amount: Amount(1) }), vec![]);
    }

    /// The vault binding of the engine's tests: any chain, contract and token.
    fn bind() -> Command {
        Command::L1Bind { chain_id: 31_337, contract: L1Address([0xc0; 20]), token: L1Address([0x70; 20]) }
    }

    /// Unbound, a wire withdrawal is refused `no_vault` before any other check (even a bad
    /// amount, an unknown account) and changes nothing; the operator's is unchanged.
    #[test]
    fn a_withdraw_request_without_a_vault_is_refused_no_vault() {
        let mut ex = Exchange::new();
        const D: u64 = 20;
        ex.apply(Command::Deposit { to: Holder::Account(AccountId(D)), amount: Amount(1_000_000_000) });
        let before = ex.sm.canonical().hash();
        for (i, (account, amount)) in [(D, 1), (D, 0), (99, 1)].into_iter().enumerate() {
            let (account, request_id) = (AccountId(account), 7 + u64::try_from(i).unwrap());
            let events = ex.apply_all(Command::WithdrawRequest { account, amount: Amount(amount), request_id });
            let reject = Event::Rejected {
                kind: CommandKind::WithdrawRequest,
                account: Some(account),
                cid: Some(ClientOrderId(request_id)),
                reason: RejectReason::NoVault,
            };
            assert_eq!(events, vec![reject], "case {i}");
        }
        assert_eq!(ex.sm.canonical().hash(), before, "nothing moved");
        let events = ex.apply_all(Command::Withdraw { account: AccountId(D), amount: Amount(1) });
        let collateral = Amount(999_999_999);
        assert_eq!(events, vec![Event::Balance { holder: Holder::Account(AccountId(D)), collateral }]);
    }

    /// A wire withdrawal is an operator withdrawal with an answer: the same checks, the same
    /// `balance` event, the same state after it; a `withdrawn` event (with the request id and
    /// the collateral after) before the balance, or a reject whose cid is the request id.
    #[test]
    fn a_withdraw_request_applies_exactly_as_a_withdraw() {
        let (mut op, mut wire) = (Exchange::new(), Exchange::new());
        const D: u64 = 20;
        for ex in [&mut op, &mut wire] {
            ex.apply(Command::Deposit { to: Holder::Account(AccountId(D)), amount: Amount(1_000_000_000) });
            // 1 lot bid at 1000: an initial requirement of 5 % of 1000 USDC.
            ex.rest(D, 1, Buy, 1000, 1);
            // Bound after the operator's deposit (which a binding refuses): both, so that
            // the states compare.
            ex.apply(bind());
        }
        // (account, amount, the collateral after it or the reason it is refused)
        let cases = [
            (D, 0, Err(RejectReason::BadAmount)),
            (D, -5, Err(RejectReason::BadAmount)),
            (D, 950_000_001, Err(RejectReason::InsufficientMargin)),
            (99, 1, Err(RejectReason::InsufficientMargin)),
            (D, 900_000_000, Ok(100_000_000)),
            (D, 50_000_000, Ok(50_000_000)),
            (D, 1, Err(RejectReason::InsufficientMargin)),
        ];
        for (i, (account, amount, outcome)) in cases.into_iter().enumerate() {
            let (account, amount) = (AccountId(account), Amount(amount));
            let request_id = 1000 + u64::try_from(i).unwrap();
            let by_operator = op.apply_all(Command::Withdraw { account, amount });
            let by_wire = wire.apply_all(Command::WithdrawRequest { account, amount, request_id });
            assert_eq!(op.sm.canonical().hash(), wire.sm.canonical().hash(), "case {i}: the same state");
            match outcome {
                Ok(collateral) => {
                    let collateral = Amount(collateral);
                    let balance = Event::Balance { holder: Holder::Account(account), collateral };
                    assert_eq!(by_operator, vec![balance], "case {i}");
                    let withdrawn = Event::Withdrawn { account, request_id, amount, collateral };
                    assert_eq!(by_wire, vec![withdrawn, balance], "case {i}");
                }
                Err(reason) => {
                    let rej = |kind, cid| Event::Rejected { kind, account: Some(account), cid, reason };
                    assert_eq!(by_operator, vec![rej(CommandKind::Withdraw, None)], "case {i}");
                    let cid = Some(ClientOrderId(request_id));
                    assert_eq!(by_wire, vec![rej(CommandKind::WithdrawRequest, cid)], "case {i}");
                }
            }
        }
        assert_eq!(wire.sm.ledger().flows(), op.sm.ledger().flows());
    }
}
