//! Small enums with stable numeric codes: sides, order types, time in force, self-trade
//! prevention modes, and the reject and cancel reason codes.
//!
//! Codes are part of the journal and wire formats: a code is never reused or renumbered.
//! Each enum has `code()` / `from_code()` for the binary formats and `as_str()` /
//! `from_name()` for JSON (snake_case).

macro_rules! coded_enum {
    (
        $(#[$doc:meta])*
        $name:ident: $repr:ty {
            $( $(#[$vdoc:meta])* $variant:ident = $code:literal => $text:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr($repr)]
        pub enum $name {
            $( $(#[$vdoc])* $variant = $code, )+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable numeric code.
            #[inline]
            pub const fn code(self) -> $repr {
                self as $repr
            }

            /// The value with this code, if any.
            pub const fn from_code(code: $repr) -> Option<$name> {
                match code {
                    $( $code => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// The snake_case name used in JSON.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            /// The value with this snake_case name, if any.
            pub fn from_name(name: &str) -> Option<$name> {
                match name {
                    $( $text => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

coded_enum! {
    /// The side of an order.
    Side: u8 {
        /// Bid.
        Buy = 0 => "buy",
        /// Ask.
        Sell = 1 => "sell",
    }
}

impl Side {
    /// The other side.
    #[inline]
    pub const fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

coded_enum! {
    /// How an order is priced.
    OrderType: u8 {
        /// At a limit price.
        Limit = 0 => "limit",
        /// At the instrument's protection price: mark · (1 ± band), rounded to the tick
        /// towards the mark; never rests.
        Market = 1 => "market",
    }
}

coded_enum! {
    /// How long an order may rest.
    TimeInForce: u8 {
        /// Good till cancelled.
        Gtc = 0 => "gtc",
        /// Immediate or cancel: trades what it can, the remainder is cancelled.
        Ioc = 1 => "ioc",
        /// Fill or kill: trades its whole quantity at once or nothing.
        Fok = 2 => "fok",
        /// Good till date: rests until the sequenced time reaches its `expire_ts`.
        Gtd = 3 => "gtd",
    }
}

impl TimeInForce {
    /// `true` if an order with this time in force may rest on the book.
    #[inline]
    pub const fn may_rest(self) -> bool {
        matches!(self, TimeInForce::Gtc | TimeInForce::Gtd)
    }
}

coded_enum! {
    /// Self-trade prevention: what happens when a taker meets a resting order of its own
    /// account. The taker's mode governs.
    StpMode: u8 {
        /// The taker's remainder is cancelled; the resting order stays.
        CancelTaker = 0 => "cancel_taker",
        /// The resting order is cancelled and matching goes on.
        CancelMaker = 1 => "cancel_maker",
        /// The resting order, then the taker's remainder, are cancelled.
        CancelBoth = 2 => "cancel_both",
        /// Both are reduced by the smaller open quantity without a trade; matching goes on
        /// while the taker has quantity.
        Decrement = 3 => "decrement",
    }
}

coded_enum! {
    /// Why a command was refused. Bands: 1xx validation, 2xx risk, 3xx matching,
    /// 4xx session (gateway).
    RejectReason: u16 {
        /// No instrument with that symbol or id is listed.
        UnknownSymbol = 100 => "unknown_symbol",
        /// Price missing, not positive, off the tick grid, or given where none is allowed.
        BadPrice = 101 => "bad_price",
        /// Quantity missing, not positive, or off the lot grid.
        BadQty = 102 => "bad_qty",
        /// The account already has a live order with that client order id.
        DuplicateCid = 103 => "duplicate_cid",
        /// A limit price outside mark · (1 ± price band).
        PriceOutOfBand = 104 => "price_out_of_band",
        /// The instrument has no oracle price yet.
        NoMarkPrice = 105 => "no_mark_price",
        /// Quantity above the instrument's maximum order quantity.
        MaxOrderQty = 106 => "max_order_qty",
        /// `expire_ts` missing on a GTD order, not after the current time, or given on
        /// another time in force.
        BadExpiry = 107 => "bad_expiry",
        /// A combination of type, time in force and flags that cannot be honoured
        /// (post-only with IOC, FOK or market; market with GTD).
        BadFlags = 108 => "bad_flags",
        /// A deposit or withdrawal amount that is not positive.
        BadAmount = 109 => "bad_amount",
        /// An instrument listing with an invalid specification.
        BadInstrument = 110 => "bad_instrument",
        /// An instrument listing whose symbol is already listed.
        DuplicateSymbol = 111 => "duplicate_symbol",
        /// An oracle price that is not positive.
        BadOraclePrice = 112 => "bad_oracle_price",
        /// A deposit to one of the two highest account ids, reserved for the state tree's
        /// insurance-fund and fee-account leaves.
        ReservedAccount = 113 => "reserved_account",
        /// An L1 queue entry whose index is not the next the state expects (a duplicate, a
        /// gap or a reordering): nothing changes but sequenced time, the entry is applied
        /// when its turn comes.
        QueueOutOfOrder = 114 => "queue_out_of_order",
        /// An operator-credited deposit in a journal bound to an L1 vault: collateral enters
        /// only through the L1 queue.
        L1Only = 115 => "l1_only",
        /// A second L1 binding: a journal is bound to one vault, once.
        L1AlreadyBound = 116 => "l1_already_bound",
        /// An account's own withdrawal (over the wire) in a journal bound to no L1 vault:
        /// the vault pays a batch's withdrawals only to accounts with an L1 owner, so one
        /// listed for an account funded without the vault would stop settlement for good.
        NoVault = 117 => "no_vault",
        /// Equity would fall below the initial margin requirement.
        InsufficientMargin = 200 => "insufficient_margin",
        /// The position would exceed the instrument's maximum position.
        MaxPosition = 201 => "max_position",
        /// A reduce-only order that cannot reduce the position.
        ReduceOnlyWouldIncrease = 202 => "reduce_only_would_increase",
        /// Cancel or amend of an order that is not live.
        UnknownOrder = 300 => "unknown_order",
        /// A post-only order (or amend) that would take liquidity.
        PostOnlyWouldCross = 301 => "post_only_would_cross",
        /// The session exceeded its throttle.
        Throttled = 400 => "throttled",
        /// The session may not act for that account.
        NotAuthorized = 401 => "not_authorized",
    }
}

coded_enum! {
    /// Why (part of) an order left the book or never reached it.
    CancelReason: u8 {
        /// The account cancelled it.
        User = 1 => "user",
        /// A mass cancel covered it.
        MassCancel = 2 => "mass_cancel",
        /// The unfilled part of an IOC order.
        IocRemainder = 3 => "ioc_remainder",
        /// An FOK order that could not fill completely (cancelled whole, no trade).
        FokUnfilled = 4 => "fok_unfilled",
        /// The unfilled part of a market order.
        MarketRemainder = 5 => "market_remainder",
        /// Self-trade prevention.
        SelfTrade = 6 => "self_trade",
        /// A GTD order whose expiry time the sequenced time reached.
        Expired = 7 => "expired",
        /// The account is being liquidated.
        Liquidation = 8 => "liquidation",
        /// Cancel-on-disconnect of the session that entered it.
        Disconnect = 9 => "disconnect",
        /// A reduce-only order that would no longer reduce the position.
        ReduceOnly = 10 => "reduce_only",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for &r in RejectReason::ALL {
            assert_eq!(RejectReason::from_code(r.code()), Some(r));
            assert_eq!(RejectReason::from_name(r.as_str()), Some(r));
        }
        for &c in CancelReason::ALL {
            assert_eq!(CancelReason::from_code(c.code()), Some(c));
            assert_eq!(CancelReason::from_name(c.as_str()), Some(c));
        }
        assert_eq!(RejectReason::from_code(0), None);
        assert_eq!(StpMode::from_name("decrement"), Some(StpMode::Decrement));
    }

    #[test]
    fn reject_codes_stay_in_their_bands() {
        for &r in RejectReason::ALL {
            let band = r.code() / 100;
            let expected = match r {
                RejectReason::InsufficientMargin
                | RejectReason::MaxPosition
                | RejectReason::ReduceOnlyWouldIncrease => 2,
                RejectReason::UnknownOrder | RejectReason::PostOnlyWouldCross => 3,
                RejectReason::Throttled | RejectReason::NotAuthorized => 4,
                _ => 1,
            };
            assert_eq!(band, expected, "{r}");
        }
    }
}
