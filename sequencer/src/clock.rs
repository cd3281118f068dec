//! The clock seam: the one place outside the benchmarks where l2x reads a clock.
//!
//! State code never reads a clock (clippy.toml bans `SystemTime::now` and `Instant::now`):
//! time reaches the state machine inside each sequenced command. The pipeline's sequencer
//! stamps commands with [`wall_clock_ns`], and the node's threads measure durations and
//! deadlines with [`now`]. Both carry the only item-level exemptions from the ban, so a
//! reader sees every clock read by looking for callers of these two functions.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (0 if the clock is before it): the sequenced time's
/// source.
#[allow(clippy::disallowed_methods, reason = "the clock seam: the sequenced timestamp is read here")]
pub fn wall_clock_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().saturating_mul(1_000_000_000).saturating_add(u64::from(d.subsec_nanos())))
}

/// A monotonic instant, for durations and deadlines (never for state).
#[allow(clippy::disallowed_methods, reason = "the clock seam: durations and deadlines are measured from here")]
#[inline]
pub fn now() -> Instant {
    Instant::now()
}
