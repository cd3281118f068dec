//! The send-and-replace rules without a node: the driver's inputs given by hand.

use std::time::Duration;

use super::*;

const GWEI: u128 = 1_000_000_000;

fn policy() -> SendPolicy {
    SendPolicy {
        poll: Duration::from_millis(200),
        replace_after: Duration::from_secs(2),
        bump_percent: 10,
        max_fee_per_gas: 100 * GWEI,
        max_fee_per_blob_gas: 100 * GWEI,
        give_up_after: Duration::from_secs(60),
    }
}

fn fees(max_fee: u128, tip: u128) -> Fees {
    Fees { max_fee: max_fee * GWEI, tip: tip * GWEI, blob: None }
}

fn at(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A resender whose first version (at `first`) the node took at time 0.
fn sent_at_zero(first: Fees) -> Resender {
    let mut r = Resender::new(policy(), first);
    let price = r.price(first, 0, 0).unwrap();
    assert_eq!(r.sent(price, Sent::Accepted, at(0)), Next::Continue);
    r
}

#[test]
fn the_first_version_pays_the_higher_of_the_callers_price_and_the_moments() {
    let r = Resender::new(policy(), fees(30, 2));
    assert!(r.wants_price());
    assert_eq!(r.price(fees(20, 3), GWEI, 0), Some(fees(30, 3)));
}

#[test]
fn a_stuck_version_is_replaced_after_replace_after_with_a_bump() {
    let mut r = sent_at_zero(fees(20, 2));
    assert!(!r.wants_price());
    assert!(r.wants_newest_known());
    assert_eq!(r.observe(Seen::Pending { newest_known: Some(true) }, at(1_999)), Next::Continue);
    assert!(!r.wants_price(), "not stuck yet");
    assert_eq!(r.observe(Seen::Pending { newest_known: Some(true) }, at(2_000)), Next::Continue);
    assert!(r.wants_price());
    // The moment's price is lower: the replacement pays the last one's plus 10 %.
    assert_eq!(r.price(fees(10, 1), GWEI, 0), Some(Fees { max_fee: 22 * GWEI, tip: 2_200_000_000, blob: None }));
    // The moment's is higher: it pays that.
    assert_eq!(r.price(fees(50, 5), GWEI, 0), Some(fees(50, 5)));
}

#[test]
fn a_replacement_is_capped_and_waits_when_the_cap_cannot_outbid_or_the_base_fee_is_above_it() {
    let mut r = sent_at_zero(fees(95, 2));
    r.observe(Seen::Pending { newest_known: Some(true) }, at(5_000));
    // 95 + 10 % is above the 100 gwei cap: capped at 100, which does not outbid 95 by 10 %.
    assert_eq!(r.price(fees(10, 1), GWEI, 0), None);
    // A spike: the base fee alone above the cap, nothing is sent.
    let mut fresh = Resender::new(policy(), fees(10, 1));
    assert_eq!(fresh.price(fees(300, 1), 150 * GWEI, 0), None);
    // Back under the cap: the first version goes out at the capped price.
    assert_eq!(fresh.price(fees(300, 1), 90 * GWEI, 0), Some(fees(100, 1)));
    assert_eq!(fresh.sent(fees(100, 1), Sent::Accepted, at(10)), Next::Continue);
}

#[test]
fn a_version_unknown_three_looks_in_a_row_is_resent_at_its_price() {
    let mut r = sent_at_zero(fees(20, 2));
    for t in [10, 30] {
        r.observe(Seen::Pending { newest_known: Some(false) }, at(t));
        assert!(!r.wants_price());
    }
    // A look that finds it known starts the count again.
    r.observe(Seen::Pending { newest_known: Some(true) }, at(50));
    r.observe(Seen::Pending { newest_known: Some(false) }, at(70));
    r.observe(Seen::Pending { newest_known: Some(false) }, at(90));
    assert!(!r.wants_price());
    r.observe(Seen::Pending { newest_known: Some(false) }, at(110));
    assert!(r.wants_price(), "dropped");
    // Dropped: the same price will do (no bump), or the moment's if higher.
    assert_eq!(r.price(fees(5, 1), GWEI, 0), Some(fees(20, 2)));
    assert_eq!(r.price(fees(25, 1), GWEI, 0), Some(fees(25, 2)));
}

#[test]
fn an_underpriced_refusal_is_outbid_on_the_next_turn() {
    let mut r = Resender::new(policy(), fees(20, 2));
    let price = r.price(fees(20, 2), GWEI, 0).unwrap();
    assert_eq!(r.sent(price, Sent::Underpriced, at(0)), Next::Continue);
    assert!(r.wants_price());
    assert_eq!(r.price(fees(20, 2), GWEI, 0), Some(Fees { max_fee: 22 * GWEI, tip: 2_200_000_000, blob: None }));
}

#[test]
fn a_failure_ends_the_wait_only_before_any_version_was_taken() {
    let mut r = Resender::new(policy(), fees(20, 2));
    assert!(r.failure_ends_wait());
    assert_eq!(r.sent(fees(20, 2), Sent::NoAnswer, at(0)), Next::Continue);
    assert_eq!(r.sent(fees(20, 2), Sent::Failed, at(0)), Next::Abort);
    let mut r = sent_at_zero(fees(20, 2));
    assert!(!r.failure_ends_wait());
    assert_eq!(r.sent(fees(22, 3), Sent::Failed, at(100)), Next::Continue);
}

#[test]
fn a_used_nonce_gives_up_only_after_three_looks_and_a_poll() {
    let mut r = sent_at_zero(fees(20, 2));
    assert_eq!(r.observe(Seen::NonceUsed, at(0)), Next::Continue);
    assert_eq!(r.observe(Seen::NonceUsed, at(50)), Next::Continue);
    assert_eq!(r.observe(Seen::NonceUsed, at(100)), Next::Continue, "three looks, not a poll");
    // Anything else seen in between starts over.
    assert_eq!(r.observe(Seen::InBlock, at(150)), Next::Continue);
    assert_eq!(r.observe(Seen::NonceUsed, at(300)), Next::Continue);
    assert_eq!(r.observe(Seen::NonceUsed, at(400)), Next::Continue);
    assert_eq!(r.observe(Seen::NonceUsed, at(500)), Next::GiveUp(GiveUp::NonceUsed));
}

#[test]
fn confirmation_ends_the_wait_and_the_deadline_gives_up() {
    let mut r = sent_at_zero(fees(20, 2));
    assert_eq!(r.observe(Seen::InBlock, at(10)), Next::Continue);
    assert!(!r.wants_price(), "in a block: nothing to replace");
    assert_eq!(r.observe(Seen::Failed, at(59_999)), Next::Continue);
    assert_eq!(r.observe(Seen::Failed, at(60_000)), Next::GiveUp(GiveUp::Deadline));
    assert_eq!(r.observe(Seen::Confirmed, at(60_000)), Next::Done);
}

#[test]
fn pauses_start_short_after_a_send_and_double_up_to_the_poll() {
    let mut r = Resender::new(policy(), fees(20, 2));
    let pauses: Vec<_> = (0..7).map(|_| r.pause().as_millis()).collect();
    assert_eq!(pauses, [10, 20, 40, 80, 160, 200, 200]);
    r.sent(fees(20, 2), Sent::Accepted, at(0));
    assert_eq!(r.pause(), at(10));
}

#[test]
fn the_first_price_outbids_our_own_pending_transaction() {
    let p = policy();
    let now = fees(20, 2);
    assert_eq!(first_price(now, false, None, 7, &p), now);
    // Sent by this process: its price plus the bump, or the moment's if higher.
    let ours = InFlight { nonce: 7, fees: fees(40, 4) };
    assert_eq!(first_price(now, true, Some(ours), 7, &p), Fees { max_fee: 44 * GWEI, tip: 4_400_000_000, blob: None });
    // Sent before a restart (or at another nonce): twice the moment's.
    assert_eq!(first_price(now, true, None, 7, &p), fees(40, 4));
    assert_eq!(first_price(now, true, Some(ours), 8, &p), fees(40, 4));
}

fn blob_fees(max_fee: u128, tip: u128, blob: u128) -> Fees {
    Fees { blob: Some(blob * GWEI), ..fees(max_fee, tip) }
}

/// A blob transaction's replacement doubles all three fees (blob pools take no less),
/// its blob fee never passes its cap, and a blob base fee above the cap sends nothing.
#[test]
fn a_blob_commit_is_replaced_at_twice_each_fee_and_waits_out_a_blob_fee_spike() {
    let mut r = sent_at_zero(blob_fees(20, 2, 3));
    assert_eq!(r.observe(Seen::Pending { newest_known: Some(true) }, at(2_000)), Next::Continue);
    assert!(r.wants_price());
    assert_eq!(r.price(blob_fees(10, 1, 1), GWEI, GWEI), Some(blob_fees(40, 4, 6)));
    // The moment's blob price above the doubled one wins; the cap holds it.
    assert_eq!(r.price(blob_fees(10, 1, 70), GWEI, GWEI), Some(blob_fees(40, 4, 70)));
    assert_eq!(r.price(blob_fees(10, 1, 300), GWEI, GWEI), Some(blob_fees(40, 4, 100)));
    // A blob base fee above the cap: nothing is sent.
    assert_eq!(r.price(blob_fees(10, 1, 300), GWEI, 101 * GWEI), None);
    // A doubled execution fee past its cap cannot outbid: wait.
    let mut high = sent_at_zero(blob_fees(60, 2, 3));
    high.observe(Seen::Pending { newest_known: Some(true) }, at(2_000));
    assert_eq!(high.price(blob_fees(10, 1, 1), GWEI, GWEI), None);
    // A blob commit outbidding our own pending one doubles too.
    let p = policy();
    let ours = InFlight { nonce: 7, fees: blob_fees(20, 2, 3) };
    assert_eq!(first_price(blob_fees(10, 1, 1), true, Some(ours), 7, &p), blob_fees(40, 4, 6));
}
