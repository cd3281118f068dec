//! The group-commit thread (`durability = fsync`): one `fsync` covers every command
//! appended before it.

use std::sync::atomic::Ordering;

use super::shared::Shared;
use crate::journal::{JournalError, JournalSyncer};

/// The group-commit loop: `fsync` whatever was appended since the last one, publish the
/// watermark, wake the receivers; until the sequencer is done and everything is durable.
pub(crate) fn run(shared: &Shared, mut syncer: JournalSyncer) -> Result<(), JournalError> {
    let mut durable = shared.durable.load(Ordering::Acquire);
    loop {
        let target = shared.appended.load(Ordering::Acquire);
        if target > durable {
            let started = crate::clock::now();
            if let Err(e) = syncer.sync() {
                shared.halt();
                return Err(e);
            }
            let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            shared.fsync_total_ns.fetch_add(took, Ordering::Relaxed);
            shared.fsync_max_ns.fetch_max(took, Ordering::Relaxed);
            durable = target;
            shared.durable.store(durable, Ordering::Release);
            shared.fsyncs.fetch_add(1, Ordering::Relaxed);
            shared.reports.not_empty.notify();
            shared.market.not_empty.notify();
            continue;
        }
        if shared.sequencer_done.load(Ordering::SeqCst) {
            if shared.appended.load(Ordering::Acquire) > durable {
                continue;
            }
            return Ok(());
        }
        shared.commit.wait_until(|| {
            shared.appended.load(Ordering::Acquire) > durable || shared.sequencer_done.load(Ordering::SeqCst)
        });
    }
}
