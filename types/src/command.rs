//! Commands: every input that changes state, in the form the sequencer orders, the journal
//! stores and the state machine applies. The state after sequence N is a pure function of
//! commands 1..N.

use crate::ids::{AccountId, ClientOrderId, Holder, InstrumentId, Seq, Timestamp};
use crate::instrument::InstrumentSpec;
use crate::l1::L1Address;
use crate::num::{Amount, Price, Qty};
use crate::reason::{OrderType, Side, StpMode, TimeInForce};

/// A command with the sequence number and time the sequencer gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequenced {
    /// Strictly increasing along the journal (gaps allowed: a scenario line that does not
    /// parse keeps its number).
    pub seq: Seq,
    /// Sequenced time, non-decreasing.
    pub ts: Timestamp,
    /// The command.
    pub cmd: Command,
}

/// An input that changes state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// List a new instrument (boxed: rare and large).
    ListInstrument(Box<InstrumentSpec>),
    /// Credit collateral to an account (creating it), the insurance fund (seeding it) or the
    /// fee account.
    Deposit {
        /// Who is credited.
        to: Holder,
        /// The amount, positive.
        amount: Amount,
    },
    /// Debit collateral from a trading account, if it stays above its initial requirement.
    Withdraw {
        /// The account debited.
        account: AccountId,
        /// The amount, positive.
        amount: Amount,
    },
    /// An account's own withdrawal, asked over the wire (`Withdraw`, docs/PROTOCOL.md):
    /// applied exactly as [`Command::Withdraw`] (the same checks, the same `balance` event),
    /// and answered with a `withdrawn` event carrying the request id, or a reject whose
    /// client order id is the request id.
    WithdrawRequest {
        /// The account debited (the session's).
        account: AccountId,
        /// The amount, positive.
        amount: Amount,
        /// The client's id for the request, echoed in its answer (any value; not checked
        /// for uniqueness).
        request_id: u64,
    },
    /// A funding tick: compute the instrument's funding rate now and add it to its index.
    Funding {
        /// The instrument.
        instrument: InstrumentId,
    },
    /// A new oracle (index) price for an instrument.
    Oracle {
        /// The instrument.
        instrument: InstrumentId,
        /// The price, positive, on the tick grid.
        price: Price,
    },
    /// Enter an order.
    NewOrder(NewOrder),
    /// Change a live order's price and/or open quantity.
    Amend(Amend),
    /// Cancel a live order.
    Cancel(Cancel),
    /// Cancel many of an account's live orders.
    MassCancel(MassCancel),
    /// Time passes: the sequenced time advances with no other input. GTD orders whose expiry
    /// it reaches expire, and settlement epochs can close on time. The node sequences one when
    /// nothing else has been sequenced for a while, so an idle exchange still moves its clock.
    Tick,
    /// Entry `index` (from 1) of the L1 contract's priority queue: a deposit to an account or
    /// to the insurance fund. Applied only when `index` is the next the state expects.
    L1Deposit {
        /// The queue index.
        index: u64,
        /// Who is credited.
        to: Holder,
        /// The amount (the contract accepts only positive amounts; anything else is refunded).
        amount: Amount,
        /// The depositor on L1 (refunds go there).
        from: L1Address,
        /// When the contract queued it (L1 block time, seconds).
        requested_at: u64,
    },
    /// Entry `index` of the L1 queue: an account's owner asks to withdraw on L1, bypassing
    /// the operator. Applied only when `index` is the next the state expects.
    ForcedWithdrawal {
        /// The queue index.
        index: u64,
        /// The account debited.
        account: AccountId,
        /// The amount.
        amount: Amount,
        /// The owner who asked.
        from: L1Address,
        /// When the contract queued it (L1 block time, seconds).
        requested_at: u64,
    },
    /// Binds the journal to one vault contract: sequenced once, first, by a node with a
    /// vault. Afterwards collateral enters only through the queue ([`Command::Deposit`] is
    /// refused `l1_only`).
    L1Bind {
        /// The chain's EIP-155 id.
        chain_id: u64,
        /// The settlement (vault) contract.
        contract: L1Address,
        /// The collateral token.
        token: L1Address,
    },
}

/// A new order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewOrder {
    /// The account entering it.
    pub account: AccountId,
    /// The client's id, unique among the account's live orders.
    pub cid: ClientOrderId,
    /// The instrument.
    pub instrument: InstrumentId,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub order_type: OrderType,
    /// The limit price; required for limit orders, absent for market orders.
    pub price: Option<Price>,
    /// The quantity, positive.
    pub qty: Qty,
    /// Time in force.
    pub tif: TimeInForce,
    /// Expiry (sequenced time) for GTD orders only.
    pub expire_ts: Option<Timestamp>,
    /// Reject instead of taking liquidity.
    pub post_only: bool,
    /// May only shrink the account's position.
    pub reduce_only: bool,
    /// Self-trade prevention mode (governs when this order is the taker).
    pub stp: StpMode,
}

/// An amend: new price and/or new open quantity; the order keeps its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Amend {
    /// The owning account.
    pub account: AccountId,
    /// The order's client id.
    pub cid: ClientOrderId,
    /// The order's instrument (the price and quantity are in its units); an amend naming
    /// another instrument than the live order's is refused `unknown_order`.
    pub instrument: InstrumentId,
    /// The new limit price, if it changes.
    pub price: Option<Price>,
    /// The new open quantity, if it changes.
    pub qty: Option<Qty>,
}

/// A cancel of one order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancel {
    /// The owning account.
    pub account: AccountId,
    /// The order's client id.
    pub cid: ClientOrderId,
    /// Sent by the gateway because the session that entered the order disconnected with
    /// cancel-on-disconnect on: the order is cancelled with reason `disconnect`, not `user`.
    pub on_disconnect: bool,
}

/// A mass cancel: every live order of the account, optionally narrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MassCancel {
    /// The account.
    pub account: AccountId,
    /// Only this instrument, if given.
    pub instrument: Option<InstrumentId>,
    /// Only this side, if given.
    pub side: Option<Side>,
}

/// The kind of a [`Command`] ([`Command::kind`]): what a reject answers, for every command
/// (orders and the rest), and the `cmd` name in the scenario format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CommandKind {
    /// [`Command::ListInstrument`].
    Instrument = 1,
    /// [`Command::Deposit`].
    Deposit = 2,
    /// [`Command::Oracle`].
    Oracle = 3,
    /// [`Command::NewOrder`].
    New = 4,
    /// [`Command::Amend`].
    Amend = 5,
    /// [`Command::Cancel`].
    Cancel = 6,
    /// [`Command::MassCancel`].
    MassCancel = 7,
    /// [`Command::Withdraw`].
    Withdraw = 8,
    /// [`Command::Funding`].
    Funding = 9,
    /// [`Command::Tick`].
    Tick = 10,
    /// [`Command::L1Deposit`].
    L1Deposit = 11,
    /// [`Command::ForcedWithdrawal`].
    ForcedWithdrawal = 12,
    /// [`Command::L1Bind`].
    L1Bind = 13,
    /// [`Command::WithdrawRequest`].
    WithdrawRequest = 14,
}

impl CommandKind {
    /// The `cmd` name in the scenario format.
    pub const fn as_str(self) -> &'static str {
        match self {
            CommandKind::Instrument => "instrument",
            CommandKind::Deposit => "deposit",
            CommandKind::Oracle => "oracle",
            CommandKind::New => "new",
            CommandKind::Amend => "amend",
            CommandKind::Cancel => "cancel",
            CommandKind::MassCancel => "mass_cancel",
            CommandKind::Withdraw => "withdraw",
            CommandKind::Funding => "funding",
            CommandKind::Tick => "tick",
            CommandKind::L1Deposit => "l1_deposit",
            CommandKind::ForcedWithdrawal => "forced_withdrawal",
            CommandKind::L1Bind => "l1_bind",
            // The operator's and the account's withdrawals share the scenario line, told apart
            // by its `request_id` (as `cancel` and its `on_disconnect`).
            CommandKind::WithdrawRequest => "withdraw",
        }
    }

    /// `true` for the L1 queue's commands and the vault binding (sequenced by the node from
    /// the chain, never on behalf of a session).
    pub const fn is_l1(self) -> bool {
        matches!(self, CommandKind::L1Deposit | CommandKind::ForcedWithdrawal | CommandKind::L1Bind)
    }

    /// `true` for commands about orders (their rejects carry account and client id).
    pub const fn is_order(self) -> bool {
        matches!(self, CommandKind::New | CommandKind::Amend | CommandKind::Cancel | CommandKind::MassCancel)
    }
}

impl Command {
    /// Its kind.
    pub const fn kind(&self) -> CommandKind {
        match self {
            Command::ListInstrument(_) => CommandKind::Instrument,
            Command::Deposit { .. } => CommandKind::Deposit,
            Command::Oracle { .. } => CommandKind::Oracle,
            Command::NewOrder(_) => CommandKind::New,
            Command::Amend(_) => CommandKind::Amend,
            Command::Cancel(_) => CommandKind::Cancel,
            Command::MassCancel(_) => CommandKind::MassCancel,
            Command::Withdraw { .. } => CommandKind::Withdraw,
            Command::WithdrawRequest { .. } => CommandKind::WithdrawRequest,
            Command::Funding { .. } => CommandKind::Funding,
            Command::Tick => CommandKind::Tick,
            Command::L1Deposit { .. } => CommandKind::L1Deposit,
            Command::ForcedWithdrawal { .. } => CommandKind::ForcedWithdrawal,
            Command::L1Bind { .. } => CommandKind::L1Bind,
        }
    }
}
