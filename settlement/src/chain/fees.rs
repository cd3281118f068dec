//! When a commit is sent again, at what price, and when the wait for it ends: the rules
//! of [`RpcChain`](super::RpcChain)'s sending, as a state machine with no I/O and no
//! clock (the driver passes the time elapsed since the wait began and what the node said).
//!
//! ```text
//!          ┌──────────── wants_price() = Some(why) ─────────────┐
//!          ▼                                                    │
//!  price(now, base, blob_base) ── None: a base fee above its    │
//!          │            cap, or no outbidding within it: wait   │
//!          ▼ Some(fees)                                         │
//!  driver sends ──▶ sent(Accepted | Underpriced | Failed)       │
//!          ▼                                                    │
//!  driver looks ──▶ observe(Confirmed | InBlock | Pending{newest_known} | NonceUsed | Failed)
//!          │          Confirmed ──▶ Done                        │
//!          │          pending, newest version unknown 3 looks ──▶ Dropped ─┤
//!          │          pending, known, unmined ≥ replace_after ──▶ Replace ─┘
//!          │          NonceUsed 3 looks and ≥ poll ──▶ GiveUp(NonceUsed)
//!          │          elapsed ≥ give_up_after ──▶ GiveUp(Deadline)
//!          ▼
//!  pause() ── 10 ms after a send, doubling up to `poll`
//! ```
//!
//! Blob transactions (batch data in EIP-4844 blobs) carry a third fee, the blob fee cap
//! (`max_fee_per_blob_gas`): priced at twice the blob base fee, never above
//! `max_fee_per_blob_gas`, and while the blob base fee alone is above that cap nothing is
//! sent. Pools hold blob transactions to a stricter replacement rule — geth's and reth's
//! blob pools take a replacement only at twice each of the three fees of the one it
//! replaces — so every bump of a blob transaction is at least [`BLOB_BUMP_PERCENT`], on all
//! three fees.
//!
//! Pricing: the first version pays the caller's price ([`first_price`], which already
//! outbids a pending transaction of ours) or the moment's, whichever is higher; a
//! replacement of a stuck version pays the moment's price or the last version's plus
//! `bump_percent`, whichever is higher; a dropped version is sent again at the higher of
//! its price and the moment's. No version pays more than `max_fee_per_gas`; while the base
//! fee alone is above it (a spike), nothing is sent and the commit waits. A node that
//! turns a version down as underpriced holds one of ours at a price we did not know: the
//! next version outbids the refused one.
//!
//! Known limitation: the node's word "underpriced" is recognised by its text (geth, anvil
//! and others word it alike; JSON-RPC gives it no code).

use std::time::Duration;

/// How the submitter's transactions are priced, replaced when stuck, and waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendPolicy {
    /// How often a pending commit is looked at (receipt, still in the pool, confirmations),
    /// once it has been pending a while (the first looks come sooner).
    pub poll: Duration,
    /// A commit not in a block this long after it was sent is replaced: the same nonce at a
    /// higher fee.
    pub replace_after: Duration,
    /// Each replacement pays at least this much more than the one it replaces, in percent,
    /// on both the fee cap and the tip (nodes require 10 %).
    pub bump_percent: u128,
    /// The most the submitter pays per gas (wei): a spike above it waits instead of paying.
    pub max_fee_per_gas: u128,
    /// The most the submitter pays per blob gas (wei), for batch data in blobs: a spike of
    /// the blob base fee above it waits instead of paying.
    pub max_fee_per_blob_gas: u128,
    /// A commit not confirmed this long after it was first sent fails with
    /// [`ChainError::Timeout`](super::ChainError::Timeout) (its transaction may still
    /// land: the next commit replaces it or finds the batch on chain).
    pub give_up_after: Duration,
}

impl Default for SendPolicy {
    /// For Ethereum mainnet: look every second, replace after three slots unmined, bump by
    /// 12.5 % (100 % for a blob transaction), never above 500 gwei per gas nor 500 gwei per
    /// blob gas, give up (for now) after ten minutes.
    fn default() -> SendPolicy {
        SendPolicy {
            poll: Duration::from_secs(1),
            replace_after: Duration::from_secs(36),
            bump_percent: 25 / 2,
            max_fee_per_gas: 500_000_000_000,
            max_fee_per_blob_gas: 500_000_000_000,
            give_up_after: super::RpcChain::CONFIRMATION_TIMEOUT,
        }
    }
}

/// The least bump of a blob transaction's replacement, on each of its three fees: blob
/// pools (geth's, reth's) take nothing less.
pub(super) const BLOB_BUMP_PERCENT: u128 = 100;

/// EIP-1559 fees of a transaction, wei per gas, and for a blob transaction its blob fee
/// cap, wei per blob gas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fees {
    /// The fee cap.
    pub(super) max_fee: u128,
    /// The priority fee.
    pub(super) tip: u128,
    /// The blob fee cap (`max_fee_per_blob_gas`); `None` for a transaction without blobs.
    pub(super) blob: Option<u128>,
}

impl Fees {
    /// The larger of each.
    pub(super) fn max(self, other: Fees) -> Fees {
        let blob = match (self.blob, other.blob) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Fees { max_fee: self.max_fee.max(other.max_fee), tip: self.tip.max(other.tip), blob }
    }

    /// Each raised by `percent` (and by at least 1 wei).
    pub(super) fn bumped(self, percent: u128) -> Fees {
        let up = |x: u128| x.saturating_add((x.saturating_mul(percent) / 100).max(1));
        Fees { max_fee: up(self.max_fee), tip: up(self.tip), blob: self.blob.map(up) }
    }

    /// Whether these fees replace `previous` in a pool: each at least `percent` higher.
    fn outbid(self, previous: Fees, percent: u128) -> bool {
        let needed = previous.bumped(percent);
        let blob = needed.blob.is_none_or(|n| self.blob.is_some_and(|b| b >= n));
        self.max_fee >= needed.max_fee && self.tip >= needed.tip && blob
    }

    /// The least bump that replaces a transaction with these fees: `percent`, or
    /// [`BLOB_BUMP_PERCENT`] for a blob transaction if that is more.
    fn bump(self, percent: u128) -> u128 {
        if self.blob.is_some() { percent.max(BLOB_BUMP_PERCENT) } else { percent }
    }
}

/// A commit transaction sent and not known to be in a block yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct InFlight {
    /// Its nonce.
    pub(super) nonce: u64,
    /// What it pays.
    pub(super) fees: Fees,
}

/// What the first version of a commit at `nonce` pays, given the moment's price `now`:
/// when a transaction of ours is pending at that nonce (`ours_pending`) it must be
/// outbid — by `bump_percent` over the one this process sent (`in_flight`), or, sent
/// before a restart at a fee we do not know, generously (twice the moment's; a node that
/// still finds it underpriced says so, and the price goes up).
pub(super) fn first_price(
    now: Fees,
    ours_pending: bool,
    in_flight: Option<InFlight>,
    nonce: u64,
    policy: &SendPolicy,
) -> Fees {
    if !ours_pending {
        return now;
    }
    match in_flight.filter(|f| f.nonce == nonce) {
        Some(previous) => now.max(previous.fees.bumped(now.bump(policy.bump_percent))),
        None => now.bumped(100),
    }
}

/// Looks in a row that must find a sent version unknown before it counts as dropped (a
/// load-balanced endpoint may not know a transaction for a moment after it was sent); also
/// how many looks must find the nonce used by none of ours before that is concluded.
const UNKNOWN_LOOKS: u32 = 3;

/// Why a version is (re)sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Resend {
    /// First, or replacing one stuck in the pool: must outbid it.
    Replace,
    /// The pool lost it: the same price will do.
    Dropped,
}

/// What became of sending a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sent {
    /// The node took it.
    Accepted,
    /// The node holds a transaction of ours with this nonce that this price does not beat.
    Underpriced,
    /// Any other failure: the wait ends if no version was taken yet.
    Failed,
    /// No answer in time: try again next turn.
    NoAnswer,
}

/// What a look at the chain found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Seen {
    /// A version in a block with the configured confirmations.
    Confirmed,
    /// A version in a block with fewer.
    InBlock,
    /// None in a block; whether the node knows the newest version sent (`None`: not
    /// asked, because a resend is due anyway, or the question failed).
    Pending {
        /// The node's answer.
        newest_known: Option<bool>,
    },
    /// The nonce used by a transaction that is none of our versions.
    NonceUsed,
    /// The look failed (the node briefly unreachable): look again next turn.
    Failed,
}

/// What the driver does after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Go on: price or look again after [`Resender::pause`].
    Continue,
    /// A version is confirmed: return its receipt.
    Done,
    /// Stop waiting.
    GiveUp(GiveUp),
    /// The first version could not be sent: return the error that said so.
    Abort,
}

/// Why the wait ends without a confirmed version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum GiveUp {
    /// The nonce was used by another transaction, seen long enough to be sure.
    NonceUsed,
    /// `give_up_after` has passed since the wait began.
    Deadline,
}

/// The send-and-replace rules for one commit (see the module docs). Times are durations
/// since the wait began, as the driver measures them.
#[derive(Clone, Debug)]
pub(super) struct Resender {
    policy: SendPolicy,
    /// The caller's price for the first version.
    first: Fees,
    /// The price of the last version the node took or turned down as underpriced.
    last: Option<Fees>,
    /// Whether the node took any version (any may still land).
    sent_any: bool,
    /// When the last version was taken.
    last_sent: Duration,
    /// A (re)send due, and why.
    want: Option<Resend>,
    /// Looks in a row that found the newest version unknown to the node.
    unknown_looks: u32,
    /// When the nonce was first seen used by none of our versions, and looks since (a
    /// node may mine a transaction a moment before it serves its receipt: a conclusion
    /// must last).
    nonce_used_since: Option<(Duration, u32)>,
    /// The next pause between turns.
    pause: Duration,
}

impl Resender {
    /// A wait whose first version pays at least `first`.
    pub(super) fn new(policy: SendPolicy, first: Fees) -> Resender {
        Resender {
            policy,
            first,
            last: None,
            sent_any: false,
            last_sent: Duration::ZERO,
            want: Some(Resend::Replace),
            unknown_looks: 0,
            nonce_used_since: None,
            pause: Resender::first_pause(&policy),
        }
    }

    /// Looks come quickly after a send (a node that mines at once has the receipt within
    /// milliseconds), then slow down to `poll`.
    fn first_pause(policy: &SendPolicy) -> Duration {
        Duration::from_millis(10).min(policy.poll)
    }

    /// Whether a version is due to be sent (then the driver asks the node's fees).
    pub(super) fn wants_price(&self) -> bool {
        self.want.is_some()
    }

    /// Whether a pending look should ask the node if it knows the newest version.
    pub(super) fn wants_newest_known(&self) -> bool {
        self.want.is_none()
    }

    /// Whether a failure to price or send ends the wait: only before any version was
    /// taken (one already taken may still land).
    pub(super) fn failure_ends_wait(&self) -> bool {
        !self.sent_any
    }

    /// The price to send the due version at, given the moment's fees, next base fee and
    /// blob base fee (ignored for a transaction without blobs); `None` when nothing is to
    /// be sent this turn (not due, a base fee above its cap, or no price within the caps
    /// outbids the version in the pool).
    pub(super) fn price(&self, now: Fees, base: u128, blob_base: u128) -> Option<Fees> {
        let why = self.want?;
        let policy = &self.policy;
        let bump = self.first.bump(policy.bump_percent);
        let wanted = match (self.last, why) {
            (None, _) => self.first.max(now),
            (Some(previous), Resend::Dropped) => now.max(previous),
            (Some(previous), Resend::Replace) => now.max(previous.bumped(bump)),
        };
        let price = Fees {
            max_fee: wanted.max_fee.min(policy.max_fee_per_gas),
            tip: wanted.tip.min(policy.max_fee_per_gas),
            blob: wanted.blob.map(|b| b.min(policy.max_fee_per_blob_gas)),
        };
        // A replacement must beat the version the pool holds; a re-sent dropped version has
        // nothing to beat.
        let outbids = why == Resend::Dropped || self.last.is_none_or(|p| price.outbid(p, bump));
        let affordable = base <= price.max_fee && price.blob.is_none_or(|b| blob_base <= b);
        (affordable && outbids).then_some(price)
    }

    /// What became of sending a version at `price` at time `at`.
    pub(super) fn sent(&mut self, price: Fees, outcome: Sent, at: Duration) -> Next {
        match outcome {
            Sent::Accepted => {
                self.sent_any = true;
                self.last = Some(price);
                self.last_sent = at;
                self.want = None;
                self.unknown_looks = 0;
                self.pause = Resender::first_pause(&self.policy);
                Next::Continue
            }
            // A transaction of ours with this nonce is in the pool at a price we did not
            // know: outbid it on the next turn.
            Sent::Underpriced => {
                self.last = Some(price);
                self.want = Some(Resend::Replace);
                Next::Continue
            }
            Sent::Failed if !self.sent_any => Next::Abort,
            // A version already sent may still land; try again next turn.
            Sent::Failed | Sent::NoAnswer => Next::Continue,
        }
    }

    /// What a look at time `at` found.
    pub(super) fn observe(&mut self, seen: Seen, at: Duration) -> Next {
        if seen != Seen::NonceUsed {
            self.nonce_used_since = None;
        }
        let next = match seen {
            Seen::Confirmed => return Next::Done,
            Seen::InBlock => {
                self.want = None;
                self.unknown_looks = 0;
                Next::Continue
            }
            Seen::Pending { newest_known } if self.want.is_none() => {
                self.pending(newest_known, at);
                Next::Continue
            }
            Seen::Pending { .. } | Seen::Failed => Next::Continue,
            Seen::NonceUsed => {
                let (since, looks) = self.nonce_used_since.get_or_insert((at, 0));
                *looks += 1;
                if *looks >= UNKNOWN_LOOKS && at.saturating_sub(*since) >= self.policy.poll {
                    Next::GiveUp(GiveUp::NonceUsed)
                } else {
                    Next::Continue
                }
            }
        };
        if next == Next::Continue && at >= self.policy.give_up_after {
            return Next::GiveUp(GiveUp::Deadline);
        }
        next
    }

    /// A look found no version in a block and none due: dropped, or stuck long enough?
    fn pending(&mut self, newest_known: Option<bool>, at: Duration) {
        match newest_known {
            Some(false) => {
                self.unknown_looks += 1;
                if self.unknown_looks >= UNKNOWN_LOOKS {
                    self.want = Some(Resend::Dropped);
                }
            }
            Some(true) => {
                self.unknown_looks = 0;
                if at.saturating_sub(self.last_sent) >= self.policy.replace_after {
                    self.want = Some(Resend::Replace);
                }
            }
            None => {}
        }
    }

    /// How long to wait before the next turn (and the one after: twice as long, up to
    /// `poll`).
    pub(super) fn pause(&mut self) -> Duration {
        let pause = self.pause;
        self.pause = (pause * 2).min(self.policy.poll);
        pause
    }
}

#[cfg(test)]
mod tests;
