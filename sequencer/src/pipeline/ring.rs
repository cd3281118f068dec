//! The pipeline's bounded rings and how threads wait on them.
//!
//! A [`Ring`] is a crossbeam [`ArrayQueue`] (bounded, lock-free, a slot array with a stamp per
//! slot and cache-padded head and tail) plus what the queue does not have: a `closed` flag
//! (no more pushes will come), a `gone` flag (the consumer is gone: pushes are discarded),
//! a count of the times a producer found it full, and two [`Signal`]s, one for a consumer
//! waiting for an item and one for producers waiting for space.
//!
//! # Waiting
//!
//! A [`Signal`] waits with the configured [`WaitStrategy`]. Only [`WaitStrategy::Park`] ever
//! blocks in the kernel, so only then does a notifier have anything to do: it issues a
//! `SeqCst` fence and reads the number of sleepers, and takes the lock and signals the
//! condition variable only when someone sleeps. The sleeper registers (under the lock) and
//! fences before it checks its condition one last time, so either the notifier sees the
//! sleeper or the sleeper sees the change: no wake-up is lost (the Dekker pattern; the
//! condition variable's lock closes the gap between the last check and the sleep). With the
//! other strategies notifying costs nothing at all.
//!
//! A consumer that also waits on something else (the gateway's event loop waits on sockets)
//! cannot sleep in a [`Signal`]. It gives the signal a *waker* instead and *arms* it before it
//! sleeps elsewhere: the same Dekker pattern with an `armed` flag in place of the sleeper
//! count (the consumer sets it, fences and checks its condition; the notifier changes the
//! condition, fences and takes the flag). The notifier calls the waker only when the flag was
//! set, so a consumer that is busy costs it one load.
//!
//! `Park` first behaves like `SpinThenYield` for [`PARK_AFTER`]: a futex wake-up costs
//! 10–20 µs on a virtual machine, which at 100k commands per second (10 µs apart) would be
//! paid on every command by a thread that slept at the first gap.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use crossbeam::queue::ArrayQueue;
use crossbeam::utils::{Backoff, CachePadded};

/// How long [`WaitStrategy::Park`] spins and yields before it sleeps.
pub const PARK_AFTER: Duration = Duration::from_micros(50);

/// How a pipeline thread waits for work, for space in a full ring, or for the durable
/// watermark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WaitStrategy {
    /// Spin on the condition (`spin_loop` hint) and never give up the core. Lowest latency
    /// with a core per thread; on a machine with fewer cores than pipeline threads it starves
    /// whichever thread shares the core with a spinner.
    BusySpin,
    /// Spin briefly with exponential backoff, then `yield` to the scheduler on every further
    /// check. Gives the core to other runnable threads, but an idle thread still wakes up all
    /// the time and keeps its core busy.
    SpinThenYield,
    /// Spin, then yield for up to [`PARK_AFTER`] (50 µs), then sleep on a condition variable
    /// until notified. A thread idle for longer costs nothing; a wake-up from the sleep costs
    /// a futex call on both sides (10–20 µs on the development VM), paid only when the
    /// waiter actually slept, so only when commands come further apart than 50 µs.
    /// The default: a 2-core machine cannot afford idle threads that keep a core busy.
    #[default]
    Park,
}

/// A function that wakes a consumer sleeping somewhere else than in a [`Signal`].
pub(crate) type Waker = Arc<dyn Fn() + Send + Sync>;

/// Something a thread can wait on, and be woken from.
pub(crate) struct Signal {
    strategy: WaitStrategy,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
    /// The external waker, once set.
    waker: OnceLock<Waker>,
    /// The consumer is about to sleep elsewhere: call the waker.
    armed: AtomicBool,
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("strategy", &self.strategy)
            .field("sleepers", &self.sleepers)
            .field("has_waker", &self.waker.get().is_some())
            .field("armed", &self.armed)
            .finish_non_exhaustive()
    }
}

impl Signal {
    pub(crate) fn new(strategy: WaitStrategy) -> Signal {
        Signal {
            strategy,
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cv: Condvar::new(),
            waker: OnceLock::new(),
            armed: AtomicBool::new(false),
        }
    }

    /// Sets the external waker (once; `false` if one was set already).
    pub(crate) fn set_waker(&self, waker: Waker) -> bool {
        self.waker.set(waker).is_ok()
    }

    /// Arms the external waker, then checks `ready()`: `true` means the caller may sleep
    /// (the waker will be called after the next change), `false` that it is ready now.
    pub(crate) fn arm(&self, ready: impl FnOnce() -> bool) -> bool {
        self.armed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if ready() {
            self.armed.store(false, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Tells waiters that their condition may have changed. Free unless the strategy parks
    /// or an external waker is set.
    #[inline]
    pub(crate) fn notify(&self) {
        let waker = self.waker.get();
        if self.strategy != WaitStrategy::Park && waker.is_none() {
            return;
        }
        fence(Ordering::SeqCst);
        // Read again after the fence: a waker set just now is seen with the armed flag.
        let waker = waker.or_else(|| self.waker.get());
        if let Some(wake) = waker
            && self.armed.load(Ordering::Relaxed)
            && self.armed.swap(false, Ordering::AcqRel)
        {
            wake();
        }
        if self.strategy == WaitStrategy::Park && self.sleepers.load(Ordering::Relaxed) > 0 {
            let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
            self.cv.notify_all();
        }
    }

    /// Returns once `ready()` is true (it is checked before any waiting).
    pub(crate) fn wait_until(&self, mut ready: impl FnMut() -> bool) {
        if ready() {
            return;
        }
        let backoff = Backoff::new();
        match self.strategy {
            WaitStrategy::BusySpin => loop {
                std::hint::spin_loop();
                if ready() {
                    return;
                }
            },
            WaitStrategy::SpinThenYield => loop {
                backoff.snooze();
                if ready() {
                    return;
                }
            },
            WaitStrategy::Park => {
                let since = crate::clock::now();
                while !backoff.is_completed() || since.elapsed() < PARK_AFTER {
                    backoff.snooze();
                    if ready() {
                        return;
                    }
                }
                let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
                self.sleepers.fetch_add(1, Ordering::SeqCst);
                loop {
                    fence(Ordering::SeqCst);
                    if ready() {
                        break;
                    }
                    guard = self.cv.wait(guard).unwrap_or_else(PoisonError::into_inner);
                }
                self.sleepers.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

/// A bounded ring between pipeline threads.
#[derive(Debug)]
pub(crate) struct Ring<T> {
    pub(crate) queue: ArrayQueue<T>,
    /// No more pushes will come (set by the producing side).
    pub(crate) closed: CachePadded<AtomicBool>,
    /// The consumer is gone: pushes are discarded instead of waiting for space forever.
    pub(crate) gone: AtomicBool,
    /// Times a producer found the ring full and had to wait.
    pub(crate) full_waits: CachePadded<AtomicU64>,
    /// The consumer waits here for an item (or, for outputs, for the durable watermark).
    pub(crate) not_empty: Signal,
    /// Producers wait here for space.
    pub(crate) not_full: Signal,
}

impl<T> Ring<T> {
    pub(crate) fn new(capacity: usize, strategy: WaitStrategy) -> Ring<T> {
        Ring {
            queue: ArrayQueue::new(capacity),
            closed: CachePadded::new(AtomicBool::new(false)),
            gone: AtomicBool::new(false),
            full_waits: CachePadded::new(AtomicU64::new(0)),
            not_empty: Signal::new(strategy),
            not_full: Signal::new(strategy),
        }
    }

    /// Occupancy now: (items, capacity, times a producer found it full).
    pub(crate) fn occupancy(&self) -> RingStats {
        RingStats {
            len: self.queue.len(),
            capacity: self.queue.capacity(),
            full_waits: self.full_waits.load(Ordering::Relaxed),
        }
    }
}

/// How full a ring is, and how often it was full.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Items in the ring when it was read.
    pub len: usize,
    /// Its capacity.
    pub capacity: usize,
    /// Times a producer found it full and waited (backpressure).
    pub full_waits: u64,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Two threads hand a counter back and forth through parked waits: no wake-up is lost
    /// (a lost one would hang the test).
    #[test]
    fn parked_waits_are_always_woken() {
        let ring: Arc<Ring<u32>> = Arc::new(Ring::new(1, WaitStrategy::Park));
        let consumer = {
            let ring = Arc::clone(&ring);
            std::thread::spawn(move || {
                let mut sum = 0u64;
                for _ in 0..20_000 {
                    let mut got = None;
                    ring.not_empty.wait_until(|| {
                        got = ring.queue.pop();
                        got.is_some()
                    });
                    ring.not_full.notify();
                    sum += u64::from(got.unwrap());
                }
                sum
            })
        };
        for i in 0..20_000u32 {
            let mut item = Some(i);
            ring.not_full.wait_until(|| match ring.queue.push(item.take().unwrap()) {
                Ok(()) => true,
                Err(back) => {
                    item = Some(back);
                    false
                }
            });
            ring.not_empty.notify();
        }
        assert_eq!(consumer.join().unwrap(), (0..20_000u64).sum::<u64>());
    }
}
