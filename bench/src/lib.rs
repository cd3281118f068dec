//! Load generators and benchmarks for l2x. Every figure carries its method: seeded data,
//! setup outside the timed part, HDR percentiles up to p99.99 and max, the machine and the
//! pinning stated. Results are kept in `docs/BENCHMARKS.md`.
//!
//! # Method (`l2x bench engine`)
//!
//! ```text
//!  seed ─▶ workload::Workload::generate ─▶ setup │ prefill │ warm-up │ measured commands
//!            (shadow StateMachine tracks            └──── untimed ───┘        │
//!             live orders from the events)                                   ▼
//!                                      fresh StateMachine ─▶ tight loop   (max throughput)
//!                                      fresh StateMachine ─▶ open loop at each offered rate
//!                                                              (completion − due, HDR histogram)
//! ```
//!
//! 1. **Workload** ([`workload`]): one instrument, one oracle price, enough accounts and
//!    collateral that margin is never a concern. A mix fixes the share of each command kind
//!    (exchange-core's 9 % GTC / 3 % IOC / 6 % cancel / 82 % amend, or a mix heavier on new
//!    orders and trades). The generator runs every command through a shadow state machine and
//!    tracks live orders from the events, so every cancel and amend targets a live order and
//!    every price is set against the book as it is. ChaCha8 with a fixed seed: the same
//!    commands every run.
//! 2. **Replay**: each timed run starts from a fresh state machine with setup, prefill and
//!    warm-up applied untimed (caches, branch predictors and the engine's pools are warm),
//!    then applies exactly the commands the generator made, so it goes through the same
//!    states.
//! 3. **Max throughput**: a tight loop, one reused `Vec<Event>` cleared per command, the
//!    clock read before and after. Best of several runs.
//! 4. **Latency at an offered rate**: an open-loop schedule (command `i` is due at
//!    `t0 + i/rate`); `completion − due` goes into an HDR histogram, so a command queued
//!    behind a slow one is charged its wait (the coordinated-omission correction); the
//!    service time `completion − start` is kept alongside for comparison. p50, p90, p99,
//!    p99.9, p99.99 and max.
//! 5. **The clock's cost**: the cost of one `Instant` read, back-to-back read differences,
//!    and the open-loop harness running no work at each offered rate: the floor under every
//!    latency figure.
//!
//! # `l2x bench risk`
//!
//! A liquidation cascade ([`risk`]): leveraged long accounts built through ordinary commands,
//! bids below the mark, a seeded insurance fund; the timed part is the one oracle command
//! that shocks the price and liquidates them all. Verified afterwards: nobody with a
//! position is below maintenance, and every invariant holds.
//!
//! # `l2x bench settlement`
//!
//! The state tree under an epoch's load ([`settlement`]): leaf updates per second and the
//! root time of an epoch touching 100,000 of 1,000,000 accounts.
//!
//! # `l2x bench wire`
//!
//! Order-to-ack latency through the gateway over loopback TCP ([`wire`]), open loop over
//! several sessions, next to a raw TCP ping-pong of the same message sizes.
//!
//! The clock is read only here: state code gets time from the sequenced command.

#![allow(
    clippy::disallowed_methods,
    reason = "a benchmark reads the wall clock (Instant::now); the state machine it times never does"
)]

pub mod engine;
pub mod machine;
pub mod peers;
pub mod pipeline;
pub mod replay;
pub mod risk;
pub mod settlement;
pub mod wire;
pub mod workload;

/// A count or size flag within `min..=max`: clap refuses any other value, naming the flag and
/// the range (a huge `--commands` or `--capacity` would otherwise fail an allocation and
/// abort).
pub fn ranged<T>(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<T>
where
    T: TryFrom<u64> + Clone + Send + Sync + 'static,
{
    clap::builder::RangedU64ValueParser::new().range(min..=max)
}
