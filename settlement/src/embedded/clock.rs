//! Where the embedded chain's blocks get their time: the one source of time the chain
//! reads, chosen by whoever opens it.
//!
//! A new block's timestamp is `max(chain time + 1, clock.now())`: strictly after the block
//! before (and after any `advance_time`), and never behind the clock. `l2x serve` and the
//! demo give the chain the [`WallClock`]; tests give it a [`FixedClock`], and move time with
//! `EmbeddedChain::advance_time` alone, so every timestamp they see is exact.

/// A source of the time in seconds since the Unix epoch.
pub trait Clock: Send + std::fmt::Debug {
    /// The time now, in seconds.
    fn now(&self) -> u64;
}

/// The machine's clock (what a real chain's blocks follow).
#[derive(Clone, Copy, Debug, Default)]
pub struct WallClock;

impl Clock for WallClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "the wall clock is the source serve and the demo choose for the chain"
    )]
    fn now(&self) -> u64 {
        // Before 1970 (a clock set wrong) counts as 0: blocks then follow the chain's time.
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }
}

/// A clock that stands still at its start: a chain's time then moves by one second per
/// block and by `advance_time`, nothing else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl FixedClock {
    /// The tests' start: 2023-11-14 22:13:20 UTC.
    pub const TESTS: FixedClock = FixedClock(1_700_000_000);
}

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0
    }
}
