//! Execution-report streams: the engine's events turned into each account's sequenced
//! reports (docs/PROTOCOL.md, "Sequencing").
//!
//! ```text
//!  batch (events of one command) ──▶ Streams::on_batch ──▶ (account, seq, report) …
//!                                     next seq per account, cumulative fill per order,
//!                                     every report kept for replay
//! ```
//!
//! The mapping is a pure function of the event stream, so a server that restarts rebuilds
//! every account's stream by replaying the journal: the same reports with the same
//! sequence numbers. Only the two gateway timestamps (`gateway_in_ns`, `engine_out_ns`) are
//! not reproducible; rebuilt reports carry 0 there.
//!
//! | event | reports |
//! |---|---|
//! | `accepted` | `Accepted` to the order's account |
//! | `rejected` (of an account's command: an order's, a withdraw request's, an operator `withdraw`'s) | `Rejected` (a withdraw request's carries its request id as cid; an operator withdraw's cid 0) |
//! | `amended` | `Amended` |
//! | `cancelled` | `Cancelled` |
//! | `trade` | a `Fill` to the maker's account (liquidity maker) and one to the taker's (taker), each with its fee and the order's cumulative quantity |
//! | `withdrawn` (an account's own withdrawal honoured) | `Withdrawn`, with the collateral after it |
//!
//! Other risk events (positions, balances, funding, liquidations) have no report of their
//! own yet: a liquidation shows as the account's cancels and fills (a liquidation order's
//! fills carry client order id 0).

use std::collections::BTreeMap;

use l2x_types::{AccountId, CommandKind, DetMap, Event, OrderId, Qty};

use l2x_protocol::codec::{Liquidity, Report, ReportHeader};

/// A report with its place in its account's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequenced {
    /// Header: seq and timestamps.
    pub header: ReportHeader,
    /// The report.
    pub report: Report,
}

/// Reports per storage chunk: a stream grows a chunk at a time, never by copying what it
/// has (a doubling vector of millions of reports would stall the gateway for milliseconds
/// each time it grew).
const CHUNK: usize = 4096;

/// One account's reports, in chunks of [`CHUNK`].
#[derive(Debug, Default)]
struct Stream {
    chunks: Vec<Vec<Sequenced>>,
    len: u64,
}

impl Stream {
    fn get(&self, seq: u64) -> Option<&Sequenced> {
        let i = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn push(&mut self, s: Sequenced) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(s),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(s);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }
}

/// Every account's report stream.
#[derive(Debug, Default)]
pub struct Streams {
    streams: BTreeMap<AccountId, Stream>,
    cum: DetMap<OrderId, Qty>,
}

impl Streams {
    /// Empty streams.
    pub fn new() -> Streams {
        Streams::default()
    }

    /// The sequence number the account's next report will carry (1 for a new account).
    pub fn next_seq(&self, account: AccountId) -> u64 {
        self.streams.get(&account).map_or(1, |s| s.len + 1)
    }

    /// The account's report with this sequence number, if it has one.
    pub fn get(&self, account: AccountId, seq: u64) -> Option<&Sequenced> {
        self.streams.get(&account)?.get(seq)
    }

    /// The account's reports with sequence numbers `from..` (those it has), in order.
    pub fn from(&self, account: AccountId, from: u64) -> impl Iterator<Item = &Sequenced> + '_ {
        let stream = self.streams.get(&account);
        (from.max(1)..).map_while(move |seq| stream?.get(seq))
    }

    /// Turns one command's events into reports, appending each to its account's stream and
    /// to `out` as (account, sequence number).
    pub fn on_batch(
        &mut self,
        events: &[Event],
        engine_in_ns: u64,
        gateway_in_ns: u64,
        engine_out_ns: u64,
        out: &mut Vec<(AccountId, u64)>,
    ) {
        for ev in events {
            match *ev {
                Event::Accepted { account, cid, order_id, instrument, side, price, qty } => {
                    self.cum.insert(order_id, Qty::ZERO);
                    let report = Report::Accepted { cid, order_id, instrument, side, price, qty };
                    self.push(account, report, engine_in_ns, gateway_in_ns, engine_out_ns, out);
                }
                // A reject of a command no session sent — an L1 queue entry (`queue_out_of_order`:
                // the node's watcher sent an entry twice or early), an operator's deposit
                // (`l1_only`, `reserved_account`, `bad_amount`) — answers no request of the
                // account's: no report (PROTOCOL.md lists those codes as never sent). An
                // operator's `withdraw` refused does make one (cid 0), as it always has: the
                // streams are rebuilt from the journal, and filtering it now would renumber
                // every later report of an existing journal's account.
                Event::Rejected { account: Some(account), cid, reason, kind }
                    if !kind.is_l1() && kind != CommandKind::Deposit =>
                {
                    let report =
                        Report::Rejected { cid: cid.unwrap_or_default(), reason: reason.code(), retry_after_ms: 0 };
                    self.push(account, report, engine_in_ns, gateway_in_ns, engine_out_ns, out);
                }
                Event::Amended { account, cid, order_id, price, qty, priority_kept, .. } => {
                    let report = Report::Amended { cid, order_id, price, qty, priority_kept };
                    self.push(account, report, engine_in_ns, gateway_in_ns, engine_out_ns, out);
                }
                Event::Cancelled { account, cid, order_id, qty, leaves, reason, .. } => {
                    if leaves == Qty::ZERO {
                        self.cum.remove(&order_id);
                    }
                    let report = Report::Cancelled { cid, order_id, qty, leaves, reason: reason.code() };
                    self.push(account, report, engine_in_ns, gateway_in_ns, engine_out_ns, out);
                }
                Event::Trade(t) => {
                    let sides = [
                        (t.maker_account, t.maker_cid, t.maker_order_id, t.maker_leaves, t.maker_fee, Liquidity::Maker),
                        (t.taker_account, t.taker_cid, t.taker_order_id, t.taker_leaves, t.taker_fee, Liquidity::Taker),
                    ];
                    for (account, cid, order_id, leaves, fee, liquidity) in sides {
                        let cum = self.cum.entry(order_id).or_insert(Qty::ZERO);
                        cum.0 += t.qty.0;
                        let cum_qty = *cum;
                        if leaves == Qty::ZERO {
                            self.cum.remove(&order_id);
                        }
                        let report = Report::Fill {
                            cid,
                            order_id,
                            match_id: t.trade_id.0,
                            price: t.price,
                            qty: t.qty,
                            leaves,
                            cum_qty,
                            fee,
                            liquidity,
                        };
                        self.push(account, report, engine_in_ns, gateway_in_ns, engine_out_ns, out);
                    }
                }
                Event::Withdrawn { account, request_id, amount, collateral } => {
                    let report = Report::Withdrawn { request_id, amount, collateral };
                    self.push(account, report, engine_in_ns, gateway_in_ns, engine_out_ns, out);
                }
                // The L1 queue's events (l1_credited, l1_refunded, forced_withdrawn,
                // forced_rejected, l1_bound) have no report on the wire: they answer no
                // request of a session. Balances are not reported either.
                _ => {}
            }
        }
    }

    fn push(
        &mut self,
        account: AccountId,
        report: Report,
        engine_in_ns: u64,
        gateway_in_ns: u64,
        engine_out_ns: u64,
        out: &mut Vec<(AccountId, u64)>,
    ) {
        let stream = self.streams.entry(account).or_default();
        let seq = stream.len + 1;
        stream.push(Sequenced { header: ReportHeader { seq, gateway_in_ns, engine_in_ns, engine_out_ns }, report });
        out.push((account, seq));
    }
}

#[cfg(test)]
mod tests {
    use l2x_types::{
        Amount, CancelReason, ClientOrderId, CommandKind, InstrumentId, Price, RejectReason, Side, Trade, TradeId,
    };

    use super::*;

    const A: AccountId = AccountId(1);
    const B: AccountId = AccountId(2);

    fn accepted(account: AccountId, cid: u64, id: u64, qty: i64) -> Event {
        Event::Accepted {
            account,
            cid: ClientOrderId(cid),
            order_id: OrderId(id),
            instrument: InstrumentId(0),
            side: Side::Buy,
            price: Price(100),
            qty: Qty(qty),
        }
    }

    fn trade(id: u64, qty: i64, maker: (u64, i64), taker: (u64, i64)) -> Event {
        Event::Trade(Trade {
            trade_id: TradeId(id),
            instrument: InstrumentId(0),
            price: Price(100),
            qty: Qty(qty),
            maker_account: A,
            maker_cid: ClientOrderId(1),
            maker_order_id: OrderId(maker.0),
            maker_leaves: Qty(maker.1),
            maker_fee: -1,
            taker_account: B,
            taker_cid: ClientOrderId(9),
            taker_order_id: OrderId(taker.0),
            taker_leaves: Qty(taker.1),
            taker_fee: 5,
            taker_side: Side::Sell,
            liquidation: false,
        })
    }

    #[test]
    fn each_account_gets_its_own_sequence_and_cumulative_fills() {
        let mut s = Streams::new();
        let mut out = Vec::new();
        s.on_batch(&[accepted(A, 1, 1, 10)], 5, 4, 6, &mut out);
        s.on_batch(
            &[accepted(B, 9, 2, 7), trade(1, 3, (1, 7), (2, 4)), trade(2, 4, (1, 3), (2, 0))],
            8,
            7,
            9,
            &mut out,
        );
        assert_eq!(out, vec![(A, 1), (B, 1), (A, 2), (B, 2), (A, 3), (B, 3)]);
        assert_eq!((s.next_seq(A), s.next_seq(B), s.next_seq(AccountId(3))), (4, 4, 1));
        let fills: Vec<(i64, i64, i64)> = s
            .from(A, 2)
            .map(|r| match r.report {
                Report::Fill { qty, leaves, cum_qty, .. } => (qty.0, leaves.0, cum_qty.0),
                _ => panic!("{r:?}"),
            })
            .collect();
        assert_eq!(fills, vec![(3, 7, 3), (4, 3, 7)]);
        match s.get(B, 3).unwrap().report {
            Report::Fill { cum_qty, fee, liquidity, .. } => {
                assert_eq!((cum_qty, fee, liquidity), (Qty(7), 5, Liquidity::Taker))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.get(B, 1).unwrap().header,
            ReportHeader { seq: 1, gateway_in_ns: 7, engine_in_ns: 8, engine_out_ns: 9 }
        );
        assert_eq!(s.from(A, 99).count(), 0);
        assert_eq!(s.from(A, 0).count(), 3, "from 0 is from 1");
        assert!(s.get(A, 0).is_none() && s.get(A, 4).is_none());
    }

    #[test]
    fn rejects_and_cancels_reach_their_account_and_others_are_ignored() {
        let mut s = Streams::new();
        let mut out = Vec::new();
        let events = [
            Event::Rejected {
                kind: CommandKind::Oracle,
                account: None,
                cid: None,
                reason: RejectReason::BadOraclePrice,
            },
            Event::Rejected {
                kind: CommandKind::New,
                account: Some(A),
                cid: Some(ClientOrderId(3)),
                reason: RejectReason::InsufficientMargin,
            },
            Event::Cancelled {
                account: B,
                cid: ClientOrderId(4),
                order_id: OrderId(8),
                instrument: InstrumentId(0),
                side: Side::Buy,
                qty: Qty(2),
                leaves: Qty(0),
                reason: CancelReason::Liquidation,
            },
            Event::Balance { holder: l2x_types::Holder::Fees, collateral: l2x_types::Amount(1) },
        ];
        s.on_batch(&events, 1, 0, 0, &mut out);
        assert_eq!(out, vec![(A, 1), (B, 1)]);
        assert_eq!(
            s.get(A, 1).unwrap().report,
            Report::Rejected { cid: ClientOrderId(3), reason: 200, retry_after_ms: 0 }
        );
        assert_eq!(
            s.get(B, 1).unwrap().report,
            Report::Cancelled { cid: ClientOrderId(4), order_id: OrderId(8), qty: Qty(2), leaves: Qty(0), reason: 8 }
        );
    }

    /// Rejects of commands no session sent (L1 queue entries, operator deposits) make no
    /// report: they answer no request, and PROTOCOL.md lists their codes as never sent.
    #[test]
    fn rejects_of_commands_no_session_sent_make_no_report() {
        let mut s = Streams::new();
        let mut out = Vec::new();
        let reject = |kind, reason| Event::Rejected { kind, account: Some(A), cid: None, reason };
        let events = [
            reject(CommandKind::L1Deposit, RejectReason::QueueOutOfOrder),
            reject(CommandKind::ForcedWithdrawal, RejectReason::QueueOutOfOrder),
            reject(CommandKind::Deposit, RejectReason::L1Only),
            reject(CommandKind::Deposit, RejectReason::BadAmount),
        ];
        s.on_batch(&events, 1, 0, 0, &mut out);
        assert_eq!(out, vec![]);
        assert_eq!(s.next_seq(A), 1, "nothing numbered");
    }

    /// An operator `withdraw` refused makes a `Rejected` with cid 0 in the account's stream,
    /// as it did before accounts could withdraw over the wire: an existing journal rebuilds
    /// the same numbering (the report after it keeps its number).
    #[test]
    fn a_refused_operator_withdraw_still_makes_a_report() {
        let mut s = Streams::new();
        let mut out = Vec::new();
        let reason = RejectReason::InsufficientMargin;
        let events = [Event::Rejected { kind: CommandKind::Withdraw, account: Some(A), cid: None, reason }];
        s.on_batch(&events, 1, 0, 0, &mut out);
        assert_eq!(out, vec![(A, 1)]);
        let report = Report::Rejected { cid: ClientOrderId(0), reason: reason.code(), retry_after_ms: 0 };
        assert_eq!(s.get(A, 1).unwrap().report, report);
        let events = [Event::Withdrawn { account: A, request_id: 9, amount: Amount(1), collateral: Amount(2) }];
        s.on_batch(&events, 2, 0, 0, &mut out);
        assert_eq!(out, vec![(A, 1), (A, 2)], "the next report is numbered after it");
    }

    /// An account's own withdrawal is answered in its stream: `Withdrawn` with the
    /// collateral after it (the balance event that follows makes no report), or `Rejected`
    /// with the request id as cid. An operator's honoured or a forced one makes none.
    #[test]
    fn a_withdraw_request_is_answered_in_the_accounts_stream() {
        let mut s = Streams::new();
        let mut out = Vec::new();
        let balance = |collateral| Event::Balance { holder: l2x_types::Holder::Account(A), collateral };
        let (amount, collateral) = (l2x_types::Amount(3), l2x_types::Amount(7));
        let events = [
            Event::Withdrawn { account: A, request_id: 11, amount, collateral },
            balance(collateral),
            Event::Rejected {
                kind: CommandKind::WithdrawRequest,
                account: Some(A),
                cid: Some(ClientOrderId(12)),
                reason: RejectReason::BadAmount,
            },
            Event::ForcedWithdrawn { index: 1, account: A, amount },
            balance(collateral),
        ];
        s.on_batch(&events, 5, 4, 6, &mut out);
        assert_eq!(out, vec![(A, 1), (A, 2)]);
        assert_eq!(s.get(A, 1).unwrap().report, Report::Withdrawn { request_id: 11, amount, collateral });
        assert_eq!(
            s.get(A, 1).unwrap().header,
            ReportHeader { seq: 1, gateway_in_ns: 4, engine_in_ns: 5, engine_out_ns: 6 }
        );
        assert_eq!(
            s.get(A, 2).unwrap().report,
            Report::Rejected { cid: ClientOrderId(12), reason: RejectReason::BadAmount.code(), retry_after_ms: 0 }
        );
    }

    /// Streams longer than a storage chunk: every sequence number is found, in order.
    #[test]
    fn streams_span_chunks() {
        let mut s = Streams::new();
        let mut out = Vec::new();
        for i in 0..10_000u64 {
            s.on_batch(&[accepted(A, i, i, 1)], i, 0, 0, &mut out);
        }
        assert_eq!(s.next_seq(A), 10_001);
        for seq in [1, 4095, 4096, 4097, 8192, 8193, 10_000] {
            assert_eq!(s.get(A, seq).unwrap().header.seq, seq);
        }
        assert!(s.get(A, 10_001).is_none());
        let seqs: Vec<u64> = s.from(A, 4000).map(|r| r.header.seq).collect();
        assert_eq!(seqs, (4000..=10_000).collect::<Vec<_>>());
    }
}
