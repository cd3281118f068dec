//! Per-session throttles: token buckets for orders (new and amend) and for cancels (cancel
//! and mass cancel, a larger bucket), and the disconnect threshold for a session that keeps
//! sending while throttled (docs/PROTOCOL.md, "Throttles").
//!
//! Integer arithmetic on nanoseconds the caller passes in; nothing here reads a clock. The
//! limits themselves are announced to the client in its `LogonAck`: they are the protocol's
//! ([`Limits`]).

use l2x_protocol::codec::Limits;

/// A token bucket: `rate` tokens per second, at most `burst` banked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    rate: u64,
    burst: u64,
    /// Tokens × 10⁹ (so that refills of a fraction of a token per nanosecond are exact).
    scaled: u64,
    last_ns: u64,
}

const NS: u64 = 1_000_000_000;

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_s: u32, burst: u32, now_ns: u64) -> TokenBucket {
        let burst = u64::from(burst.max(1));
        TokenBucket { rate: u64::from(rate_per_s), burst, scaled: burst * NS, last_ns: now_ns }
    }

    fn refill(&mut self, now_ns: u64) {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        self.last_ns = self.last_ns.max(now_ns);
        self.scaled = self.scaled.saturating_add(elapsed.saturating_mul(self.rate)).min(self.burst * NS);
    }

    /// Takes a token, or says in how many milliseconds one will be there.
    ///
    /// # Errors
    /// The wait in milliseconds (at least 1) when the bucket is empty.
    pub fn take(&mut self, now_ns: u64) -> Result<(), u32> {
        self.refill(now_ns);
        if self.scaled >= NS {
            self.scaled -= NS;
            return Ok(());
        }
        if self.rate == 0 {
            return Err(u32::MAX);
        }
        let wait_ns = (NS - self.scaled).div_ceil(self.rate);
        Err(u32::try_from(wait_ns.div_ceil(1_000_000)).unwrap_or(u32::MAX).max(1))
    }
}

/// What to do with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on.
    Pass,
    /// Reject it `throttled`, retry after this many ms.
    Throttled(u32),
    /// Reject it and log the session out: it keeps sending while throttled.
    Disconnect,
}

/// Which bucket a request draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bucket {
    /// New orders and amends.
    Orders,
    /// Cancels and mass cancels.
    Cancels,
}

/// A session's throttles.
#[derive(Clone, Debug)]
pub struct Throttle {
    orders: TokenBucket,
    cancels: TokenBucket,
    limit: u64,
    window_start: u64,
    throttled_in_window: u64,
}

impl Throttle {
    /// Fresh throttles for a session: the disconnect threshold is more throttled requests
    /// than twice the order burst within one second.
    pub fn new(limits: Limits, now_ns: u64) -> Throttle {
        Throttle {
            orders: TokenBucket::new(limits.order_rate, limits.order_burst, now_ns),
            cancels: TokenBucket::new(limits.cancel_rate, limits.cancel_burst, now_ns),
            limit: 2 * u64::from(limits.order_burst.max(1)),
            window_start: now_ns,
            throttled_in_window: 0,
        }
    }

    /// Judges one request.
    pub fn check(&mut self, bucket: Bucket, now_ns: u64) -> Verdict {
        let tokens = match bucket {
            Bucket::Orders => &mut self.orders,
            Bucket::Cancels => &mut self.cancels,
        };
        match tokens.take(now_ns) {
            Ok(()) => Verdict::Pass,
            Err(wait) => {
                if now_ns.saturating_sub(self.window_start) >= NS {
                    self.window_start = now_ns;
                    self.throttled_in_window = 0;
                }
                self.throttled_in_window += 1;
                if self.throttled_in_window > self.limit { Verdict::Disconnect } else { Verdict::Throttled(wait) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_spends_its_burst_then_refills_at_its_rate() {
        let mut b = TokenBucket::new(10, 3, 0);
        assert_eq!((b.take(0), b.take(0), b.take(0)), (Ok(()), Ok(()), Ok(())));
        // Empty: one token every 100 ms.
        assert_eq!(b.take(0), Err(100));
        assert_eq!(b.take(40_000_000), Err(60));
        assert_eq!(b.take(100_000_000), Ok(()));
        // Never more than the burst banked.
        assert_eq!(b.take(10 * NS), Ok(()));
        assert_eq!((b.take(10 * NS), b.take(10 * NS)), (Ok(()), Ok(())));
        assert!(b.take(10 * NS).is_err());
    }

    #[test]
    fn cancels_have_their_own_bucket_and_persistent_senders_are_cut_off() {
        let limits = Limits { order_rate: 1, order_burst: 2, cancel_rate: 1, cancel_burst: 5 };
        let mut t = Throttle::new(limits, 0);
        assert_eq!(t.check(Bucket::Orders, 0), Verdict::Pass);
        assert_eq!(t.check(Bucket::Orders, 0), Verdict::Pass);
        assert!(matches!(t.check(Bucket::Orders, 0), Verdict::Throttled(_)));
        // Cancels still pass.
        for _ in 0..5 {
            assert_eq!(t.check(Bucket::Cancels, 0), Verdict::Pass);
        }
        // Throttled requests beyond twice the burst (4) within a second disconnect.
        assert!(matches!(t.check(Bucket::Orders, 1), Verdict::Throttled(_)));
        assert!(matches!(t.check(Bucket::Orders, 2), Verdict::Throttled(_)));
        assert!(matches!(t.check(Bucket::Orders, 3), Verdict::Throttled(_)));
        assert_eq!(t.check(Bucket::Orders, 4), Verdict::Disconnect);
    }
}
