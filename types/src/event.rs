//! Events: what applying a command did, in the order it happened. Execution reports,
//! market data, settlement deltas and the scenario runner's output are all views of these.

use crate::command::CommandKind;
use crate::ids::{AccountId, ClientOrderId, Holder, InstrumentId, OrderId, TradeId};
use crate::l1::L1Address;
use crate::num::{Amount, Ppb, Price, Qty};
use crate::reason::{CancelReason, RejectReason, Side};

/// One effect of a command. `Copy` and fixed-size: the state machine writes these into a
/// reused buffer, never allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An instrument was listed.
    InstrumentListed {
        /// Its id.
        instrument: InstrumentId,
    },
    /// A valid new order entered the engine (it then trades, rests or is cancelled).
    Accepted {
        /// Owner.
        account: AccountId,
        /// Client id.
        cid: ClientOrderId,
        /// Assigned order id.
        order_id: OrderId,
        /// Instrument.
        instrument: InstrumentId,
        /// Side.
        side: Side,
        /// Effective limit price (a market order's protection price).
        price: Price,
        /// Quantity.
        qty: Qty,
    },
    /// A command was refused; nothing changed.
    Rejected {
        /// What kind of command.
        kind: CommandKind,
        /// The account, for commands that have one.
        account: Option<AccountId>,
        /// The client order id, for commands that have one (a withdraw request: its
        /// request id).
        cid: Option<ClientOrderId>,
        /// Why.
        reason: RejectReason,
    },
    /// An amend took effect (always before any trade it causes).
    Amended {
        /// Owner.
        account: AccountId,
        /// Client id.
        cid: ClientOrderId,
        /// Order id (unchanged).
        order_id: OrderId,
        /// Instrument.
        instrument: InstrumentId,
        /// New limit price.
        price: Price,
        /// New open quantity.
        qty: Qty,
        /// `true` if the order kept its place in the queue.
        priority_kept: bool,
    },
    /// A match between a resting maker and an incoming taker.
    Trade(Trade),
    /// (Part of) an order was cancelled.
    Cancelled {
        /// Owner.
        account: AccountId,
        /// Client id.
        cid: ClientOrderId,
        /// Order id.
        order_id: OrderId,
        /// Instrument.
        instrument: InstrumentId,
        /// Side.
        side: Side,
        /// Quantity cancelled.
        qty: Qty,
        /// Open quantity left afterwards (non-zero only after a self-trade decrement).
        leaves: Qty,
        /// Why.
        reason: CancelReason,
    },
    /// A position after it changed (a fill, a takeover, an ADL close).
    Position {
        /// Whose position (trading account or insurance fund).
        holder: Holder,
        /// Instrument.
        instrument: InstrumentId,
        /// Signed size after the change.
        size: Qty,
        /// Signed entry notional of the open size, quote micro-units.
        cost: i128,
        /// Realised PnL on this instrument so far, quote micro-units.
        realised: i128,
    },
    /// A holder's collateral after it changed (deposit, withdrawal, fee, funding, PnL).
    Balance {
        /// Whose collateral.
        holder: Holder,
        /// Collateral after the change.
        collateral: Amount,
    },
    /// An account's wire withdrawal ([`crate::Command::WithdrawRequest`]) was honoured: the
    /// amount left its collateral (to be paid on L1); the `balance` event follows.
    Withdrawn {
        /// The account debited.
        account: AccountId,
        /// The request's id.
        request_id: u64,
        /// The amount.
        amount: Amount,
        /// The account's collateral after it (the `balance` event's, repeated so that the
        /// answer to the request is one event).
        collateral: Amount,
    },
    /// A funding tick.
    Funding {
        /// Instrument.
        instrument: InstrumentId,
        /// The rate of this tick (longs pay when positive).
        rate: Ppb,
        /// The cumulative index after it, quote micro-units per lot.
        index: i128,
    },
    /// A fill of a liquidation order.
    Liquidation {
        /// The account being liquidated.
        account: AccountId,
        /// Instrument.
        instrument: InstrumentId,
        /// Side of the liquidation order.
        side: Side,
        /// Filled quantity.
        qty: Qty,
        /// Fill price.
        price: Price,
        /// Liquidation fee paid to the insurance fund, quote micro-units.
        fee: i128,
    },
    /// The insurance fund took over (part of) a position the book could not absorb, at the
    /// bankruptcy price.
    Takeover {
        /// The account being liquidated.
        account: AccountId,
        /// Instrument.
        instrument: InstrumentId,
        /// Side the account traded (the fund took the other side).
        side: Side,
        /// Quantity taken over.
        qty: Qty,
        /// Bankruptcy price.
        price: Price,
    },
    /// The insurance fund's collateral changed (liquidation fees, deposits).
    Insurance {
        /// The change, quote micro-units.
        delta: i128,
        /// The fund's collateral after it.
        balance: Amount,
    },
    /// Auto-deleveraging closed a counterparty's position against a liquidated account at
    /// the bankruptcy price.
    Adl {
        /// The account being liquidated.
        account: AccountId,
        /// The deleveraged counterparty.
        counterparty: AccountId,
        /// Instrument.
        instrument: InstrumentId,
        /// Side the liquidated account traded.
        side: Side,
        /// Quantity closed.
        qty: Qty,
        /// Bankruptcy price.
        price: Price,
    },
    /// Neither the book, the insurance fund nor auto-deleveraging could absorb this much of
    /// a liquidated position; it stays with the account.
    LiquidationIncomplete {
        /// The account being liquidated.
        account: AccountId,
        /// Instrument.
        instrument: InstrumentId,
        /// Quantity left.
        qty: Qty,
    },
    /// A price level's net change over one command (`qty` zero: the level is gone).
    Book {
        /// Instrument.
        instrument: InstrumentId,
        /// Side of the level.
        side: Side,
        /// Level price.
        price: Price,
        /// Total open quantity at the level now.
        qty: Qty,
        /// Orders at the level now.
        orders: u32,
    },
    /// L1 queue entry `index`, a deposit, was credited; the `balance` (or `insurance`) event
    /// with the new collateral follows.
    L1Credited {
        /// The queue index.
        index: u64,
        /// Who was credited.
        holder: Holder,
        /// The amount.
        amount: Amount,
    },
    /// L1 queue entry `index`, a deposit, was consumed without crediting anything: it is
    /// refunded to its depositor on L1.
    L1Refunded {
        /// The queue index.
        index: u64,
        /// Who it was for.
        holder: Holder,
        /// The amount.
        amount: Amount,
        /// Why it could not be credited: `reserved_account` (the fee account or a reserved
        /// id) or `bad_amount` (not positive, or the collateral would overflow).
        reason: RejectReason,
    },
    /// L1 queue entry `index`, a forced withdrawal, was honoured: the amount leaves the
    /// account (to be paid on L1); the `balance` event follows.
    ForcedWithdrawn {
        /// The queue index.
        index: u64,
        /// The account debited.
        account: AccountId,
        /// The amount.
        amount: Amount,
    },
    /// L1 queue entry `index`, a forced withdrawal, was consumed and refused: nothing moved.
    ForcedRejected {
        /// The queue index.
        index: u64,
        /// The account.
        account: AccountId,
        /// The amount asked.
        amount: Amount,
        /// Why, as for a withdrawal: `insufficient_margin` or `bad_amount`.
        reason: RejectReason,
    },
    /// The journal was bound to an L1 vault.
    L1Bound {
        /// The chain's EIP-155 id.
        chain_id: u64,
        /// The settlement (vault) contract.
        contract: L1Address,
        /// The collateral token.
        token: L1Address,
    },
}

impl Event {
    /// `true` for the events of the matching engine proper (listing, accepted, rejected,
    /// amended, trade, cancelled, book) as opposed to the risk engine's (position, balance,
    /// withdrawn, funding, liquidation, takeover, insurance, adl, liquidation_incomplete, and
    /// the L1 queue's l1_credited, l1_refunded, forced_withdrawn, forced_rejected, l1_bound).
    pub const fn is_matching(&self) -> bool {
        matches!(
            self,
            Event::InstrumentListed { .. }
                | Event::Accepted { .. }
                | Event::Rejected { .. }
                | Event::Amended { .. }
                | Event::Trade(_)
                | Event::Cancelled { .. }
                | Event::Book { .. }
        )
    }
}

/// A match. Both sides share `trade_id`; the price is always the maker's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trade {
    /// Shared match id.
    pub trade_id: TradeId,
    /// Instrument.
    pub instrument: InstrumentId,
    /// Execution price (the resting order's).
    pub price: Price,
    /// Executed quantity.
    pub qty: Qty,
    /// Resting side's account.
    pub maker_account: AccountId,
    /// Resting side's client id.
    pub maker_cid: ClientOrderId,
    /// Resting side's order id.
    pub maker_order_id: OrderId,
    /// Resting side's open quantity after the match.
    pub maker_leaves: Qty,
    /// Fee charged to the maker, quote micro-units (negative: a rebate).
    pub maker_fee: i64,
    /// Incoming side's account.
    pub taker_account: AccountId,
    /// Incoming side's client id.
    pub taker_cid: ClientOrderId,
    /// Incoming side's order id.
    pub taker_order_id: OrderId,
    /// Incoming side's open quantity after the match.
    pub taker_leaves: Qty,
    /// Fee charged to the taker, quote micro-units (for a liquidation order: the
    /// liquidation fee, paid to the insurance fund).
    pub taker_fee: i64,
    /// The taker's side.
    pub taker_side: Side,
    /// `true` if the taker is a liquidation order (its client id is meaningless).
    pub liquidation: bool,
}
