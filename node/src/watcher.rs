//! The L1 watcher: the vault's queue, read from the chain once it is confirmed, sequenced
//! entry by entry as the commands that carry their queue index (docs/SETTLEMENT.md, "In
//! `l2x serve`").
//!
//! ```text
//!  every settlement.l1_poll_ms (a thread of its own, like the ticker):
//!    chain (embedded: reopened read-only each pass, the submitter holds the writer;
//!           rpc: a read-only connection of the watcher's own)
//!      confirmed_block(confirmations)           None: nothing is confirmed yet
//!      queue_length(block)                      < cursor − 1: the queue shrank ─▶ error
//!      prev = queue_hash(cursor − 1, block)     ≠ the hash this watcher last sequenced
//!                                               after: history rewritten ─▶ error
//!      for i in cursor ..= min(length, cursor − 1 + MAX_PER_PASS):
//!        entry(i, block)                        a kind the contract does not have ─▶ error
//!        entry.next_hash(prev) == queue_hash(i, block)?   no ─▶ error
//!        from ≠ 0x00…00, the amount fits i64 ─▶ Entry::command()   no ─▶ error
//!        Control::submit(command); cursor = i + 1; prev = queue_hash(i)
//! ```
//!
//! # Exactly once, in order
//!
//! The cursor starts at the recovered state's next queue index (`RecoveryReport::l1`) and
//! moves on with each entry submitted. The engine takes an entry only in its turn
//! (engine/src/state/l1.rs): whatever the watcher submits twice — after a restart, say — is
//! rejected `queue_out_of_order` and changes nothing. So the watcher never needs to know
//! whether an entry it submitted was journaled before a crash.
//!
//! # Reorgs
//!
//! Every read of a pass is at one block, `confirmations` deep: an entry is sequenced only
//! once the chain has built that many blocks on the one that holds it, so a deposit that a
//! reorg removes before then is never seen. A reorg deeper than that can rewrite what was
//! already credited; the watcher notices when the queue is shorter than what it sequenced
//! or the hash after the last entry it sequenced changed (checked every pass, new entries or
//! not), and then stops crediting — [`WatcherError::Halted`] every pass, the metric
//! `l2x_l1_watcher_failing` at 1 — until the node restarts: an operator must look, since
//! the L2 state may hold credits L1 no longer has. After a restart the watcher knows no hash
//! (it resumes from the journal's next index); a rewrite while the node was down is then
//! caught by the contract, which refuses the next batch's queue hash (`WrongQueueHash`: the
//! submitter stops).
//!
//! # Failures
//!
//! A failed pass — the RPC, a queue that shrank, an entry that does not chain to the hash the
//! contract stores, an entry the engine cannot represent — is a [`WatcherError`]: logged
//! (warn, once per new error), kept in the [`WatchStatus`] (the metric
//! `l2x_l1_watcher_failing`), nothing credited past it, retried on the next poll. Trading
//! goes on.

use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use alloy_primitives::B256;
use l2x_gateway::server::Control;
use l2x_sequencer::pipeline::SubmitError;
use l2x_settlement::chain::{ChainError, QueueReader, RpcChain};
use l2x_settlement::embedded::EmbeddedChain;
use l2x_types::Command;

/// The most entries one pass sequences (the rest wait for the next pass, so that a long
/// queue neither holds a pass for long nor floods the input ring at once).
pub const MAX_PER_PASS: u64 = 256;

/// Why a pass of the watcher stopped (nothing after the entry it names was sequenced).
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    /// The chain could not be read (or the embedded chain's directory opened).
    #[error("reading the L1 queue")]
    Chain(#[from] ChainError),
    /// The queue holds fewer entries than the watcher has sequenced.
    #[error(
        "the L1 queue has {length} entries at block {block}, but {sequenced} were sequenced \
         (a reorg deeper than the confirmations?)"
    )]
    Shrunk {
        /// The confirmed block read.
        block: u64,
        /// The queue's length there.
        length: u64,
        /// Entries sequenced so far.
        sequenced: u64,
    },
    /// The hash after the last sequenced entry is not the one it was when it was sequenced.
    #[error(
        "the L1 queue's hash after entry {index} is {now} at block {block}, it was {was} when the entry \
         was sequenced (a reorg deeper than the confirmations?)"
    )]
    Rewritten {
        /// The entry.
        index: u64,
        /// The confirmed block read.
        block: u64,
        /// The hash then.
        was: B256,
        /// The hash now.
        now: B256,
    },
    /// An entry whose hash, chained from the one before, is not the one the contract stores.
    #[error(
        "L1 queue entry {index} at block {block} does not chain: it hashes to {computed}, the contract stores {stored}"
    )]
    Unchained {
        /// The entry.
        index: u64,
        /// The confirmed block read.
        block: u64,
        /// What the contract stores after it.
        stored: B256,
        /// What the entry read hashes to.
        computed: B256,
    },
    /// An entry the engine cannot take as it is.
    #[error("L1 queue entry {index}: {why}")]
    BadEntry {
        /// The entry.
        index: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The pipeline is shutting down.
    #[error("submitting an L1 entry")]
    Closed(#[source] SubmitError),
    /// An earlier pass found the queue shrunk or rewritten: the L2 state may hold credits
    /// that L1 no longer has, and the watcher credits nothing more until the node restarts.
    #[error("the L1 watcher stopped crediting: {0}; restart the node once an operator has looked")]
    Halted(String),
}

/// What the watcher has done so far (shared with the metrics endpoint).
#[derive(Clone, Debug, Default)]
pub struct WatchStatus {
    /// The next queue index it will sequence.
    pub next: u64,
    /// Entries it has sequenced since the node started.
    pub sequenced: u64,
    /// The confirmed block its last pass read.
    pub block: Option<u64>,
    /// The last pass's error, if it failed (the next pass retries).
    pub error: Option<String>,
}

/// Where the watcher reads the queue.
pub enum Source {
    /// The embedded chain in this directory, reopened read-only each pass.
    Embedded(std::path::PathBuf),
    /// A read-only connection to the vault on a JSON-RPC node (boxed: it is large).
    Rpc(Box<RpcChain>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Embedded(dir) => f.debug_tuple("Embedded").field(dir).finish(),
            Source::Rpc(chain) => f.debug_tuple("Rpc").field(&chain.address()).finish(),
        }
    }
}

/// The queue's cursor and what it reads from: one pass at a time ([`Watch::pass`]), on the
/// watcher thread or once synchronously at a new journal's start.
#[derive(Debug)]
pub struct Watch {
    source: Source,
    confirmations: u64,
    /// The next index to sequence.
    cursor: u64,
    /// The queue's hash after `cursor − 1`, as it was when that entry was sequenced (unknown
    /// for the entries of an earlier run).
    known: Option<B256>,
    /// Set by a shrunk or rewritten queue: every later pass fails with it.
    halted: Option<String>,
    /// The newest confirmed block a pass read: a pass whose confirmed block is older (a
    /// head that went back) reads nothing.
    floor: u64,
    status: Arc<Mutex<WatchStatus>>,
}

impl Watch {
    /// A watcher of `source` that sequences from queue index `next` (the recovered state's)
    /// once an entry has `confirmations`.
    pub fn new(source: Source, confirmations: u64, next: u64) -> Watch {
        let status = WatchStatus { next, ..WatchStatus::default() };
        Watch {
            source,
            confirmations,
            cursor: next,
            known: None,
            halted: None,
            floor: 0,
            status: Arc::new(Mutex::new(status)),
        }
    }

    /// The status, shared.
    pub fn status_handle(&self) -> Arc<Mutex<WatchStatus>> {
        Arc::clone(&self.status)
    }

    /// One pass: every confirmed entry from the cursor on (at most [`MAX_PER_PASS`]) given
    /// to `submit` (the node's: the gateway's [`Control::submit`]); the status updated, a
    /// new error logged. Returns how many were submitted.
    ///
    /// # Errors
    /// [`WatcherError`]: the entries before the failure were submitted, none after.
    pub fn pass(&mut self, submit: &mut dyn FnMut(Command) -> Result<(), SubmitError>) -> Result<u64, WatcherError> {
        let mut submitted = 0;
        let result = match &self.halted {
            Some(why) => Err(WatcherError::Halted(why.clone())),
            None => self.read_source(&mut submitted, submit),
        };
        if let Err(e @ (WatcherError::Shrunk { .. } | WatcherError::Rewritten { .. })) = &result {
            self.halted = Some(e.to_string());
        }
        self.report(&result, submitted);
        result.map(|_| submitted)
    }

    /// One read of the source (the embedded chain reopened).
    fn read_source(
        &mut self,
        submitted: &mut u64,
        submit: &mut dyn FnMut(Command) -> Result<(), SubmitError>,
    ) -> Result<Option<u64>, WatcherError> {
        let (cursor, known, floor) = (&mut self.cursor, &mut self.known, &mut self.floor);
        match &mut self.source {
            Source::Embedded(dir) => {
                let mut chain = EmbeddedChain::read_only(dir)?;
                read(&mut chain, self.confirmations, cursor, known, floor, submitted, submit)
            }
            Source::Rpc(chain) => read(chain.as_mut(), self.confirmations, cursor, known, floor, submitted, submit),
        }
    }

    /// Updates the shared status after a pass; logs a new error once, and a recovery.
    fn report(&self, result: &Result<Option<u64>, WatcherError>, submitted: u64) {
        let mut status = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        status.next = self.cursor;
        status.sequenced += submitted;
        match result {
            Ok(block) => {
                if status.error.take().is_some() {
                    tracing::info!(next = self.cursor, "the L1 watcher reads the queue again");
                }
                status.block = *block;
            }
            Err(e) => {
                let text = crate::error_chain(e);
                if status.error.as_ref() != Some(&text) {
                    tracing::warn!(error = %text, next = self.cursor, "the L1 watcher's pass failed");
                }
                status.error = Some(text);
            }
        }
        if submitted > 0 {
            tracing::debug!(submitted, next = self.cursor, "L1 queue entries sequenced");
        }
    }
}

/// A pass over `chain` (see the module docs); returns the confirmed block read. `cursor`,
/// `known` and `submitted` move with each entry submitted, so an error keeps what came
/// before it.
fn read(
    chain: &mut dyn QueueReader,
    confirmations: u64,
    cursor: &mut u64,
    known: &mut Option<B256>,
    floor: &mut u64,
    submitted: &mut u64,
    submit: &mut dyn FnMut(Command) -> Result<(), SubmitError>,
) -> Result<Option<u64>, WatcherError> {
    let Some(block) = chain.confirmed_block(confirmations)? else { return Ok(None) };
    // A head that went back (another node behind a load balancer, a resyncing one): that
    // block may predate what was sequenced; skip the pass rather than call it a reorg.
    if block < *floor {
        return Ok(None);
    }
    *floor = block;
    let length = chain.queue_length(block)?;
    let sequenced = cursor.saturating_sub(1);
    if length < sequenced {
        return Err(WatcherError::Shrunk { block, length, sequenced });
    }
    if length == sequenced && known.is_none() {
        return Ok(Some(block));
    }
    // Checked even when nothing new is queued: a reorg can replace the last sequenced entry
    // and keep the length.
    let mut prev = chain.queue_hash(sequenced, block)?;
    if let Some(was) = *known
        && was != prev
    {
        return Err(WatcherError::Rewritten { index: sequenced, block, was, now: prev });
    }
    let last = length.min(sequenced.saturating_add(MAX_PER_PASS));
    for index in *cursor..=last {
        let entry = chain.entry(index, block)?;
        let stored = chain.queue_hash(index, block)?;
        let computed = entry.next_hash(prev);
        if computed != stored {
            return Err(WatcherError::Unchained { index, block, stored, computed });
        }
        if entry.from == [0; 20] {
            return Err(WatcherError::BadEntry { index, why: "from the zero address" });
        }
        let command: Command =
            entry.command().ok_or(WatcherError::BadEntry { index, why: "the amount does not fit the ledger's i64" })?;
        submit(command).map_err(WatcherError::Closed)?;
        (*cursor, *known, prev) = (index + 1, Some(stored), stored);
        *submitted += 1;
    }
    Ok(Some(block))
}

/// The watcher thread: a [`Watch::pass`] every `every` until stopped.
#[derive(Debug)]
pub(crate) struct Watcher {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Watcher {
    /// Starts the thread.
    pub(crate) fn start(mut watch: Watch, every: Duration, control: Control) -> std::io::Result<Watcher> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("l2x-l1-watcher".into()).spawn(move || {
            while matches!(stopped.recv_timeout(every), Err(mpsc::RecvTimeoutError::Timeout)) {
                if let Err(WatcherError::Closed(_)) = watch.pass(&mut |cmd| control.submit(cmd)) {
                    return; // the pipeline is shutting down
                }
            }
        })?;
        Ok(Watcher { stop, thread })
    }

    /// Stops the thread (before the pipeline, like the ticker).
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        if self.thread.join().is_err() {
            tracing::warn!("the L1 watcher thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::Address;
    use l2x_settlement::queue::{Entry, Kind};

    use super::*;

    /// A queue in memory, every block the same: entries and the hashes stored after them.
    struct Queue {
        entries: Vec<Entry>,
        hashes: Vec<B256>,
        /// The confirmed block it answers.
        block: u64,
    }

    impl Queue {
        /// The queue of `entries` with the hashes the contract would store.
        fn of(entries: Vec<Entry>) -> Queue {
            let mut hashes = vec![B256::ZERO];
            for e in &entries {
                let prev = *hashes.last().unwrap_or(&B256::ZERO);
                hashes.push(e.next_hash(prev));
            }
            Queue { entries, hashes, block: 7 }
        }
    }

    impl QueueReader for Queue {
        fn binding(&mut self) -> Result<(u64, Address, Address), ChainError> {
            Ok((1, Address::ZERO, Address::ZERO))
        }
        fn confirmed_block(&mut self, _: u64) -> Result<Option<u64>, ChainError> {
            Ok(Some(self.block))
        }
        fn queue_length(&mut self, _: u64) -> Result<u64, ChainError> {
            Ok(self.entries.len() as u64)
        }
        fn queue_hash(&mut self, index: u64, _: u64) -> Result<B256, ChainError> {
            Ok(self.hashes[usize::try_from(index).unwrap_or(usize::MAX)])
        }
        fn entry(&mut self, index: u64, _: u64) -> Result<Entry, ChainError> {
            Ok(self.entries[usize::try_from(index - 1).unwrap_or(usize::MAX)])
        }
    }

    fn deposit(index: u64, amount: u64) -> Entry {
        Entry { kind: Kind::Deposit, index, account: 1, amount, from: [0x11; 20], requested_at: 9 }
    }

    /// One pass over `queue` from `cursor`: what it submitted, and its result.
    fn pass(queue: &mut Queue, cursor: u64) -> (Vec<u64>, Result<Option<u64>, WatcherError>) {
        let (mut cursor, mut known, mut submitted, mut indexes) = (cursor, None, 0, Vec::new());
        let result = read(queue, 1, &mut cursor, &mut known, &mut 0, &mut submitted, &mut |cmd| {
            if let Command::L1Deposit { index, .. } = cmd {
                indexes.push(index);
            }
            Ok(())
        });
        assert_eq!(submitted, indexes.len() as u64);
        (indexes, result)
    }

    #[test]
    fn entries_are_submitted_in_order_from_the_cursor() {
        let mut queue = Queue::of((1..=3).map(|i| deposit(i, 5)).collect());
        assert_eq!(pass(&mut queue, 1).0, [1, 2, 3]);
        assert_eq!(pass(&mut queue, 3).0, [3]);
        assert!(pass(&mut queue, 4).0.is_empty());
        let (none, shrunk) = pass(&mut queue, 6);
        assert!(none.is_empty());
        assert!(matches!(shrunk, Err(WatcherError::Shrunk { length: 3, sequenced: 5, .. })), "{shrunk:?}");
    }

    #[test]
    fn at_most_max_per_pass_entries_a_pass() {
        let n = MAX_PER_PASS + 3;
        let mut queue = Queue::of((1..=n).map(|i| deposit(i, 5)).collect());
        assert_eq!(pass(&mut queue, 1).0.len() as u64, MAX_PER_PASS);
        assert_eq!(pass(&mut queue, MAX_PER_PASS + 1).0, [n - 2, n - 1, n]);
    }

    /// Bad input from the chain: an entry that does not chain, one from the zero address,
    /// one whose amount does not fit an i64 — each an error naming it, nothing after it
    /// submitted, what came before it kept.
    #[test]
    fn a_bad_entry_stops_the_pass_at_it() {
        let mut unchained = Queue::of((1..=3).map(|i| deposit(i, 5)).collect());
        unchained.entries[1].amount = 6;
        let (before, e) = pass(&mut unchained, 1);
        assert_eq!(before, [1]);
        assert!(matches!(e, Err(WatcherError::Unchained { index: 2, block: 7, .. })), "{e:?}");

        let mut zero = vec![deposit(1, 5), deposit(2, 5)];
        zero[1].from = [0; 20];
        let (before, e) = pass(&mut Queue::of(zero), 1);
        assert_eq!(before, [1]);
        assert!(matches!(e, Err(WatcherError::BadEntry { index: 2, why: "from the zero address" })), "{e:?}");

        let (before, e) = pass(&mut Queue::of(vec![deposit(1, u64::MAX)]), 1);
        assert!(before.is_empty());
        let text = e.map_err(|e| e.to_string()).unwrap_err();
        assert_eq!(text, "L1 queue entry 1: the amount does not fit the ledger's i64");
    }

    /// A history rewritten under the watcher (a reorg deeper than its confirmations): the
    /// hash after its last entry changed, and it credits nothing more.
    #[test]
    fn a_rewritten_history_stops_the_watcher() {
        let mut queue = Queue::of(vec![deposit(1, 5)]);
        let (mut cursor, mut known, mut floor, mut submitted) = (1, None, 0, 0);
        let mut sink = |_| Ok(());
        read(&mut queue, 1, &mut cursor, &mut known, &mut floor, &mut submitted, &mut sink).unwrap();
        let mut other = Queue::of(vec![deposit(1, 6), deposit(2, 5)]);
        let e = read(&mut other, 1, &mut cursor, &mut known, &mut floor, &mut submitted, &mut sink).unwrap_err();
        assert!(matches!(e, WatcherError::Rewritten { index: 1, .. }), "{e:?}");
        assert_eq!((cursor, submitted), (2, 1));
    }

    /// Review of issue 16: a reorg that replaces the last sequenced entry and keeps the
    /// queue's length is caught too, and once caught the watcher stays halted — even when
    /// the chain looks fine again — until the node restarts.
    #[test]
    fn a_same_length_rewrite_halts_the_watcher_for_good() {
        let dir = tempfile::tempdir().unwrap();
        let mut watch = Watch::new(Source::Embedded(dir.path().join("none")), 1, 1);
        let mut queue = Queue::of(vec![deposit(1, 5)]);
        let mut sink = |_| Ok(());
        let (mut cursor, mut known, mut floor, mut submitted) = (1, None, 0, 0);
        read(&mut queue, 1, &mut cursor, &mut known, &mut floor, &mut submitted, &mut sink).unwrap();
        let mut same_length = Queue::of(vec![deposit(1, 6)]);
        let e = read(&mut same_length, 1, &mut cursor, &mut known, &mut floor, &mut submitted, &mut sink).unwrap_err();
        assert!(matches!(e, WatcherError::Rewritten { index: 1, .. }), "{e:?}");
        // The thread's view: a rewrite halts every later pass, whatever the chain says.
        watch.halted = Some(e.to_string());
        let again = watch.pass(&mut |_| panic!("nothing is submitted once halted")).unwrap_err();
        assert!(matches!(again, WatcherError::Halted(_)), "{again:?}");
        assert!(watch.status_handle().lock().unwrap().error.as_deref().unwrap().contains("stopped crediting"));
    }

    /// Review of issue 16: a head that went back (a node behind a load balancer that lags)
    /// shows an older block whose queue is shorter: that pass reads nothing, and it is
    /// neither an error nor a halt; the next pass at the newer block goes on.
    #[test]
    fn a_head_that_went_back_is_skipped_not_a_reorg() {
        let mut queue = Queue::of(vec![deposit(1, 5), deposit(2, 5)]);
        let (mut cursor, mut known, mut floor, mut submitted) = (1, None, 0, 0);
        let mut sink = |_| Ok(());
        assert_eq!(
            read(&mut queue, 1, &mut cursor, &mut known, &mut floor, &mut submitted, &mut sink).unwrap(),
            Some(7)
        );
        let mut behind = Queue { block: 5, ..Queue::of(vec![deposit(1, 5)]) };
        assert_eq!(read(&mut behind, 1, &mut cursor, &mut known, &mut floor, &mut submitted, &mut sink).unwrap(), None);
        let mut ahead = Queue { block: 8, ..Queue::of(vec![deposit(1, 5), deposit(2, 5), deposit(3, 5)]) };
        read(&mut ahead, 1, &mut cursor, &mut known, &mut floor, &mut submitted, &mut sink).unwrap();
        assert_eq!((cursor, submitted, floor), (4, 3, 8));
        // A shorter queue at a block not older than the last read is a reorg.
        let mut shrunk = Queue { block: 8, ..Queue::of(vec![deposit(1, 5)]) };
        let e = read(&mut shrunk, 1, &mut cursor, &mut known, &mut floor, &mut submitted, &mut sink).unwrap_err();
        assert!(matches!(e, WatcherError::Shrunk { .. }), "{e:?}");
    }
}
