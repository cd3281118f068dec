//! The demo's trading clients, each a thread with its own session over TCP (the protocol
//! crate's blocking client), and what they count.
//!
//! ```text
//!  maker (keys 1, 2)     a bid and an ask on each instrument a few ticks around the oracle,
//!                        cancelled and replaced every turn
//!  taker (keys 3, 4)     IOC orders 8 ticks through the oracle, either side
//!  leveraged (keys 5-10) IOC buys of BTC-PERP until a target position or until the margin
//!                        check refuses more; then logs out (the position stays)
//! ```
//!
//! A `throttled` reject makes the client wait as long as the reject says, as a
//! well-behaved client does (one that keeps sending is logged out). Order-to-ack is
//! measured from the send to the order's first answer.

#![allow(
    clippy::disallowed_methods,
    reason = "the demo measures order-to-ack in wall-clock time; nothing here is state"
)]

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use l2x_protocol::client::{Client, Options as ClientOptions};
use l2x_protocol::codec::{ClientMsg, Report, ServerMsg, WireOrder};
use l2x_types::{ClientOrderId, InstrumentId, Price, Qty, RejectReason, Side, TimeInForce};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{DemoError, LEVERAGED};
use crate::keys::demo_key;

/// What a client's thread ends with.
pub(super) type Outcome<T = ()> = Result<T, DemoError>;

/// What the clients did, shared with the status line.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub(super) orders: AtomicU64,
    pub(super) rejects: AtomicU64,
    /// `throttled` rejects (the per-session rate limit; the client waited and went on).
    pub(super) throttled: AtomicU64,
    pub(super) fills: AtomicU64,
    /// Order-to-ack, ns.
    pub(super) ack: Mutex<Option<Histogram<u64>>>,
}

impl Stats {
    /// Empty counts and an order-to-ack histogram from 1 ns to a minute.
    pub(super) fn new() -> Stats {
        Stats { ack: Mutex::new(Histogram::new_with_bounds(1, 60_000_000_000, 3).ok()), ..Stats::default() }
    }

    fn record_ack(&self, ns: u64) {
        let mut h = self.ack.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = h.as_mut() {
            h.saturating_record(ns);
        }
    }

    /// (p50, p99) order-to-ack in µs.
    pub(super) fn ack_us(&self) -> (u64, u64) {
        let h = self.ack.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        h.as_ref().map_or((0, 0), |h| (h.value_at_quantile(0.5) / 1_000, h.value_at_quantile(0.99) / 1_000))
    }
}

/// What the leveraged longs did: lots bought by each (keys 5-10 in order), and how many are
/// done buying.
#[derive(Debug, Default)]
pub(super) struct Longs {
    pub(super) bought: [AtomicI64; 6],
    pub(super) done: AtomicU64,
}

/// Nanoseconds since `since`, saturated.
fn ns_since(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Sends `msg` and reads until the report about `cid` that answers it; counts fills met on
/// the way. Returns whether it was accepted.
fn send_and_wait(client: &mut Client, msg: &ClientMsg, cid: ClientOrderId, stats: &Stats) -> Outcome<bool> {
    let sent = Instant::now();
    client.send(msg)?;
    loop {
        let ServerMsg::Report { report, .. } = client.recv()? else { continue };
        match report {
            Report::Fill { .. } => {
                stats.fills.fetch_add(1, Ordering::Relaxed);
            }
            Report::Accepted { cid: c, .. } if c == cid => {
                if matches!(msg, ClientMsg::NewOrder(_)) {
                    stats.record_ack(ns_since(sent));
                }
                return Ok(true);
            }
            Report::Rejected { cid: c, reason, retry_after_ms } if c == cid => {
                // A cancel that finds its order already filled is no reject worth counting.
                if matches!(msg, ClientMsg::NewOrder(_)) {
                    rejected(stats, reason, retry_after_ms);
                }
                return Ok(false);
            }
            Report::Cancelled { cid: c, .. } if c == cid && matches!(msg, ClientMsg::Cancel { .. }) => {
                return Ok(true);
            }
            _ => {}
        }
    }
}

/// Counts a reject of an order; for a `throttled` one waits as long as it says before the
/// client sends again, as a well-behaved client does (one that keeps sending is logged out).
fn rejected(stats: &Stats, reason: u16, retry_after_ms: u32) {
    if reason == l2x_protocol::codes::SessionReject::Throttled.code() {
        stats.throttled.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(u64::from(retry_after_ms.max(1))));
    } else {
        stats.rejects.fetch_add(1, Ordering::Relaxed);
    }
}

/// The instrument id of position `i` in the listing.
fn instrument(i: usize) -> InstrumentId {
    InstrumentId(u32::try_from(i).unwrap_or(u32::MAX))
}

/// A market maker: a bid and an ask on each instrument around the oracle, replaced every
/// turn.
pub(super) fn maker(
    addr: SocketAddr,
    id: u8,
    seed: u64,
    fair: &[AtomicI64],
    stop: &AtomicBool,
    stats: &Stats,
) -> Outcome {
    let mut client = Client::connect(addr, &demo_key(id), ClientOptions::default())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ u64::from(id));
    let mut next_cid = 1u64;
    let mut resting: Vec<ClientOrderId> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        for cid in resting.drain(..) {
            send_and_wait(&mut client, &ClientMsg::Cancel { cid }, cid, stats)?;
        }
        for (i, f) in fair.iter().enumerate() {
            let mid = f.load(Ordering::Relaxed);
            for side in [Side::Buy, Side::Sell] {
                let away = rng.random_range(1..=6i64);
                let price = Price(if side == Side::Buy { mid - away } else { mid + away });
                let cid = ClientOrderId(next_cid);
                next_cid += 1;
                let order = WireOrder::limit(cid, instrument(i), side, price, Qty(rng.random_range(5..=40)));
                stats.orders.fetch_add(1, Ordering::Relaxed);
                if send_and_wait(&mut client, &ClientMsg::NewOrder(order), cid, stats)? {
                    resting.push(cid);
                }
            }
        }
    }
    client.logout()?;
    Ok(())
}

/// A leveraged long: IOC buys of BTC-PERP a few ticks through the oracle until it holds
/// `target` lots, or until the margin check refuses more; then it says so in `longs` and
/// logs out (the position stays).
pub(super) fn leveraged(
    addr: SocketAddr,
    id: u8,
    target: i64,
    fair: &[AtomicI64],
    longs: &Longs,
    stats: &Stats,
) -> Outcome {
    let held = buy_leveraged(addr, id, target, fair, stats);
    if let Some(b) = longs.bought.get(usize::from(id - LEVERAGED.start())) {
        b.store(*held.as_ref().unwrap_or(&0), Ordering::Relaxed);
    }
    longs.done.fetch_add(1, Ordering::Relaxed);
    held.map(|_| ())
}

fn buy_leveraged(addr: SocketAddr, id: u8, target: i64, fair: &[AtomicI64], stats: &Stats) -> Outcome<i64> {
    let mut client = Client::connect(addr, &demo_key(id), ClientOptions::default())?;
    let mut next_cid = 1u64;
    let mut held = 0i64;
    while held < target {
        let price = Price(fair[0].load(Ordering::Relaxed) + 8);
        let cid = ClientOrderId(next_cid);
        next_cid += 1;
        let mut order = WireOrder::limit(cid, InstrumentId(0), Side::Buy, price, Qty((target - held).min(50)));
        order.tif = TimeInForce::Ioc;
        stats.orders.fetch_add(1, Ordering::Relaxed);
        client.send(&ClientMsg::NewOrder(order))?;
        let sent = Instant::now();
        loop {
            let ServerMsg::Report { report, .. } = client.recv()? else { continue };
            match report {
                Report::Accepted { cid: c, .. } if c == cid => stats.record_ack(ns_since(sent)),
                Report::Fill { cid: c, qty, leaves, .. } if c == cid => {
                    stats.fills.fetch_add(1, Ordering::Relaxed);
                    held += qty.0;
                    if leaves == Qty::ZERO {
                        break;
                    }
                }
                // An IOC's rest is cancelled: the order is done.
                Report::Cancelled { cid: c, .. } if c == cid => break,
                Report::Rejected { cid: c, reason, retry_after_ms } if c == cid => {
                    rejected(stats, reason, retry_after_ms);
                    if reason == RejectReason::InsufficientMargin.code() {
                        client.logout()?;
                        return Ok(held);
                    }
                    break;
                }
                _ => {}
            }
        }
    }
    client.logout()?;
    Ok(held)
}

/// A taker: IOC orders a few ticks through the oracle, either side.
pub(super) fn taker(
    addr: SocketAddr,
    id: u8,
    seed: u64,
    fair: &[AtomicI64],
    stop: &AtomicBool,
    stats: &Stats,
) -> Outcome {
    let mut client = Client::connect(addr, &demo_key(id), ClientOptions::default())?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ u64::from(id));
    let mut next_cid = 1u64;
    while !stop.load(Ordering::Relaxed) {
        let i = rng.random_range(0..fair.len());
        let side = if rng.random_bool(0.5) { Side::Buy } else { Side::Sell };
        let mid = fair[i].load(Ordering::Relaxed);
        let price = Price(if side == Side::Buy { mid + 8 } else { mid - 8 });
        let cid = ClientOrderId(next_cid);
        next_cid += 1;
        let mut order = WireOrder::limit(cid, instrument(i), side, price, Qty(rng.random_range(1..=10)));
        order.tif = TimeInForce::Ioc;
        stats.orders.fetch_add(1, Ordering::Relaxed);
        send_and_wait(&mut client, &ClientMsg::NewOrder(order), cid, stats)?;
    }
    client.logout()?;
    Ok(())
}
