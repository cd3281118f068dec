//! Steps 1 and 2 of a line: the typed command a line parses to ([`Parsed`], what
//! `parse_line` returns), and its exact conversion to the instrument's units against the
//! state ([`convert`]) — or the `rejected` event the edge answers with.

use l2x_engine::StateMachine;
use l2x_types::{
    AccountId, Amend, Amount, Cancel, ClientOrderId, Command, CommandKind, Decimal, Event, Holder, InstrumentSpec,
    L1Address, MassCancel, NewOrder, OrderType, RejectReason, Side, StpMode, Symbol, TimeInForce, Timestamp,
};

/// A well-formed command, typed but not yet converted to the instrument's units.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// `instrument`.
    Instrument {
        /// Symbol as written.
        symbol: String,
        /// Decimal fields in the order of [`InstrumentSpec`], defaults applied.
        values: [Decimal; 13],
    },
    /// `deposit`.
    Deposit {
        /// Account, or the insurance fund or fee account.
        to: Holder,
        /// Amount.
        amount: Decimal,
    },
    /// `withdraw`.
    Withdraw {
        /// Account.
        account: u64,
        /// Amount.
        amount: Decimal,
        /// Given: the account's own withdrawal, as the gateway sequences a wire `Withdraw`
        /// ([`Command::WithdrawRequest`]); absent: the operator's ([`Command::Withdraw`]).
        request_id: Option<u64>,
    },
    /// `funding`.
    Funding {
        /// Symbol.
        symbol: String,
    },
    /// `tick`: time passes.
    Tick,
    /// `oracle`.
    Oracle {
        /// Symbol.
        symbol: String,
        /// Price.
        price: Decimal,
    },
    /// `new`.
    New {
        /// Account.
        account: u64,
        /// Client order id.
        cid: u64,
        /// Symbol.
        symbol: String,
        /// Side.
        side: Side,
        /// Type.
        order_type: OrderType,
        /// Price, if given.
        price: Option<Decimal>,
        /// Quantity.
        qty: Decimal,
        /// Time in force.
        tif: TimeInForce,
        /// Expiry, if given.
        expire_ts: Option<u64>,
        /// Post-only.
        post_only: bool,
        /// Reduce-only.
        reduce_only: bool,
        /// Self-trade prevention.
        stp: StpMode,
    },
    /// `amend`.
    Amend {
        /// Account.
        account: u64,
        /// Client order id.
        cid: u64,
        /// New price.
        price: Option<Decimal>,
        /// New open quantity.
        qty: Option<Decimal>,
    },
    /// `cancel`.
    Cancel {
        /// Account.
        account: u64,
        /// Client order id.
        cid: u64,
        /// A gateway's cancel-on-disconnect (reason `disconnect`).
        on_disconnect: bool,
    },
    /// `l1_deposit`.
    L1Deposit {
        /// Queue index.
        index: u64,
        /// Account, or the insurance fund or fee account.
        to: Holder,
        /// Amount.
        amount: Decimal,
        /// Depositor.
        from: L1Address,
        /// When the contract queued it.
        requested_at: u64,
    },
    /// `forced_withdrawal`.
    ForcedWithdrawal {
        /// Queue index.
        index: u64,
        /// Account.
        account: u64,
        /// Amount.
        amount: Decimal,
        /// The owner who asked.
        from: L1Address,
        /// When the contract queued it.
        requested_at: u64,
    },
    /// `l1_bind`.
    L1Bind {
        /// Chain id.
        chain_id: u64,
        /// Contract.
        contract: L1Address,
        /// Token.
        token: L1Address,
    },
    /// `mass_cancel`.
    MassCancel {
        /// Account.
        account: u64,
        /// Narrow to this symbol.
        symbol: Option<String>,
        /// Narrow to this side.
        side: Option<Side>,
    },
}

pub(crate) fn rejected(kind: CommandKind, account: Option<u64>, cid: Option<u64>, reason: RejectReason) -> Event {
    Event::Rejected { kind, account: account.map(AccountId), cid: cid.map(ClientOrderId), reason }
}

/// Converts a parsed command with the state's instruments. `Err` is the `rejected` event
/// the edge answers with.
///
/// # Errors
/// The `rejected` event for a command that cannot be converted exactly.
pub fn convert(state: &StateMachine, parsed: Parsed) -> Result<Command, Event> {
    Ok(match parsed {
        Parsed::Instrument { symbol, values } => {
            let reject = || rejected(CommandKind::Instrument, None, None, RejectReason::BadInstrument);
            let symbol = Symbol::try_new(&symbol).map_err(|_| reject())?;
            Command::ListInstrument(Box::new(InstrumentSpec::from_decimals(symbol, values)))
        }
        Parsed::Deposit { to, amount } => {
            let account = match to {
                Holder::Account(a) => Some(a.0),
                _ => None,
            };
            let reject = || rejected(CommandKind::Deposit, account, None, RejectReason::BadAmount);
            Command::Deposit { to, amount: Amount::from_decimal(amount).map_err(|_| reject())? }
        }
        Parsed::Withdraw { account, amount, request_id: None } => {
            let reject = || rejected(CommandKind::Withdraw, Some(account), None, RejectReason::BadAmount);
            Command::Withdraw {
                account: AccountId(account),
                amount: Amount::from_decimal(amount).map_err(|_| reject())?,
            }
        }
        Parsed::Withdraw { account, amount, request_id: Some(request_id) } => {
            let cid = Some(request_id);
            let reject = || rejected(CommandKind::WithdrawRequest, Some(account), cid, RejectReason::BadAmount);
            Command::WithdrawRequest {
                account: AccountId(account),
                amount: Amount::from_decimal(amount).map_err(|_| reject())?,
                request_id,
            }
        }
        Parsed::Funding { symbol } => {
            let inst = state
                .instrument_by_symbol(&symbol)
                .ok_or_else(|| rejected(CommandKind::Funding, None, None, RejectReason::UnknownSymbol))?;
            Command::Funding { instrument: inst.id }
        }
        Parsed::Tick => Command::Tick,
        Parsed::Oracle { symbol, price } => {
            let reject = |r| rejected(CommandKind::Oracle, None, None, r);
            let inst = state.instrument_by_symbol(&symbol).ok_or_else(|| reject(RejectReason::UnknownSymbol))?;
            let price = inst.price_from_decimal(price).map_err(|_| reject(RejectReason::BadOraclePrice))?;
            Command::Oracle { instrument: inst.id, price }
        }
        order @ (Parsed::New { .. } | Parsed::Amend { .. } | Parsed::Cancel { .. } | Parsed::MassCancel { .. }) => {
            return convert_order(state, order);
        }
        l1 @ (Parsed::L1Deposit { .. } | Parsed::ForcedWithdrawal { .. } | Parsed::L1Bind { .. }) => {
            return convert_l1(state, l1);
        }
    })
}

/// [`convert`] for the L1 commands (no instrument units: amounts are quote).
fn convert_l1(state: &StateMachine, parsed: Parsed) -> Result<Command, Event> {
    Ok(match parsed {
        Parsed::L1Deposit { index, to, amount, from, requested_at } => {
            let account = match to {
                Holder::Account(a) => Some(a.0),
                _ => None,
            };
            let reject = || rejected(CommandKind::L1Deposit, account, None, RejectReason::BadAmount);
            Command::L1Deposit {
                index,
                to,
                amount: Amount::from_decimal(amount).map_err(|_| reject())?,
                from,
                requested_at,
            }
        }
        Parsed::ForcedWithdrawal { index, account, amount, from, requested_at } => {
            let reject = || rejected(CommandKind::ForcedWithdrawal, Some(account), None, RejectReason::BadAmount);
            Command::ForcedWithdrawal {
                index,
                account: AccountId(account),
                amount: Amount::from_decimal(amount).map_err(|_| reject())?,
                from,
                requested_at,
            }
        }
        Parsed::L1Bind { chain_id, contract, token } => Command::L1Bind { chain_id, contract, token },
        // Never reached: `convert` passes only the three L1 commands.
        other => return convert(state, other),
    })
}

/// [`convert`] for the commands about orders.
fn convert_order(state: &StateMachine, parsed: Parsed) -> Result<Command, Event> {
    Ok(match parsed {
        Parsed::New {
            account,
            cid,
            symbol,
            side,
            order_type,
            price,
            qty,
            tif,
            expire_ts,
            post_only,
            reduce_only,
            stp,
        } => {
            let reject = |r| rejected(CommandKind::New, Some(account), Some(cid), r);
            let inst = state.instrument_by_symbol(&symbol).ok_or_else(|| reject(RejectReason::UnknownSymbol))?;
            let price =
                price.map(|p| inst.price_from_decimal(p).map_err(|_| reject(RejectReason::BadPrice))).transpose()?;
            let qty = inst.qty_from_decimal(qty).map_err(|_| reject(RejectReason::BadQty))?;
            Command::NewOrder(NewOrder {
                account: AccountId(account),
                cid: ClientOrderId(cid),
                instrument: inst.id,
                side,
                order_type,
                price,
                qty,
                tif,
                expire_ts: expire_ts.map(Timestamp),
                post_only,
                reduce_only,
                stp,
            })
        }
        Parsed::Amend { account, cid, price, qty } => {
            let reject = |r| rejected(CommandKind::Amend, Some(account), Some(cid), r);
            let (account, cid) = (AccountId(account), ClientOrderId(cid));
            let inst = state
                .live_order_instrument(account, cid)
                .and_then(|id| state.instrument(id))
                .ok_or_else(|| reject(RejectReason::UnknownOrder))?;
            let instrument = inst.id;
            let price =
                price.map(|p| inst.price_from_decimal(p).map_err(|_| reject(RejectReason::BadPrice))).transpose()?;
            let qty = qty.map(|q| inst.qty_from_decimal(q).map_err(|_| reject(RejectReason::BadQty))).transpose()?;
            Command::Amend(Amend { account, cid, instrument, price, qty })
        }
        Parsed::Cancel { account, cid, on_disconnect } => {
            Command::Cancel(Cancel { account: AccountId(account), cid: ClientOrderId(cid), on_disconnect })
        }
        Parsed::MassCancel { account, symbol, side } => {
            let instrument = match symbol {
                Some(s) => Some(
                    state
                        .instrument_by_symbol(&s)
                        .ok_or_else(|| {
                            rejected(CommandKind::MassCancel, Some(account), None, RejectReason::UnknownSymbol)
                        })?
                        .id,
                ),
                None => None,
            };
            Command::MassCancel(MassCancel { account: AccountId(account), instrument, side })
        }
        other => return convert(state, other),
    })
}
