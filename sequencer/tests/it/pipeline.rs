//! The sequencer pipeline on real files and real threads: what comes out equals applying the
//! same commands, in the order of their assigned sequence numbers, to a state machine
//! directly; both durability modes; nothing released before the durable watermark;
//! backpressure loses nothing; restart continues the sequence; snapshots replay.
//!
//! No sleeps and no timing: every wait is for a condition that must become true.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::thread;

use l2x_engine::{StateHash, StateMachine};
use l2x_risk::Ledger;
use l2x_sequencer::journal::{self, snapshot};
use l2x_sequencer::pipeline::{
    CommandEvents, Config, Cores, Durability, InputHandle, Mode, Pipeline, PipelineError, Receiver, SubmitError,
    Summary, Tag, TryRecvError, WaitStrategy,
};
use l2x_types::{Command, Event, Sequenced};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use l2x_engine::testing::orders::{Generator, Profile};

/// Commands of every kind (book-heavy, then risk-heavy), without their sequence numbers:
/// the pipeline assigns those.
fn commands(book: usize, risk: usize) -> Vec<Command> {
    let mut generator = Generator::new(Profile::CROSSING);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut cmds: Vec<Command> = generator.setup().into_iter().map(|c| c.cmd).collect();
    cmds.extend((0..book).map(|_| generator.next(&mut rng).cmd));
    cmds.extend(l2x_engine::testing::risk::stream(3, risk).into_iter().map(|c| c.cmd));
    cmds
}

/// What one receiver saw: each batch, and whether it was released before the watermark.
#[derive(Debug, Default)]
struct Seen {
    batches: Vec<CommandEvents>,
    /// Batches received while the durable watermark was below their sequence number.
    early: Vec<u64>,
}

/// Drains a receiver to the end of its stream on a new thread.
fn drain(mut rx: Receiver, check_watermark: bool) -> thread::JoinHandle<Seen> {
    thread::spawn(move || {
        let mut seen = Seen::default();
        while let Some(batch) = rx.recv() {
            if check_watermark && batch.durable_seq() < batch.seq.0 {
                seen.early.push(batch.seq.0);
            }
            seen.batches.push(batch.to_command_events());
        }
        seen
    })
}

/// Submits `cmds[i]` tagged with correlation `i` from `producers` threads (producer `k`
/// takes every index `≡ k` modulo `producers`), waiting while the input is full.
fn produce(input: &InputHandle, cmds: &Arc<Vec<Command>>, offset: usize, producers: usize) {
    let handles: Vec<_> = (0..producers)
        .map(|k| {
            let input = input.clone();
            let cmds = Arc::clone(cmds);
            thread::spawn(move || {
                for i in (k..cmds.len()).step_by(producers) {
                    let tag = Tag { session: k as u64, correlation: (offset + i) as u64 };
                    input.submit_wait(tag, cmds[i].clone()).expect("the input is open");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// Replays the batches' commands (looked up by correlation) in sequence order on `state`,
/// checking each batch's events and the market-data batches against them. Returns the
/// sequenced commands.
fn check_against_direct(
    state: &mut StateMachine,
    all: &[Command],
    reports: &[CommandEvents],
    market: &[CommandEvents],
) -> Vec<Sequenced> {
    let mut market: BTreeMap<u64, &CommandEvents> = market.iter().map(|b| (b.seq.0, b)).collect();
    let mut sequenced = Vec::new();
    let mut events = Vec::new();
    for pair in reports.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "reports out of sequence order");
        assert!(pair[0].ts <= pair[1].ts, "sequenced time went backwards");
    }
    for batch in reports {
        let cmd = Sequenced { seq: batch.seq, ts: batch.ts, cmd: all[batch.tag.correlation as usize].clone() };
        events.clear();
        state.apply(&cmd, &mut events);
        assert_eq!(batch.events, events, "events of seq {}", batch.seq);
        let public: Vec<Event> =
            events.iter().filter(|e| matches!(e, Event::Book { .. } | Event::Trade(_))).copied().collect();
        match market.remove(&batch.seq.0) {
            Some(md) => {
                assert_eq!(md.events, public, "market data of seq {}", batch.seq);
                assert_eq!((md.ts, md.tag), (batch.ts, batch.tag));
            }
            None => assert!(public.is_empty(), "seq {} has market data that was not published", batch.seq),
        }
        sequenced.push(cmd);
    }
    assert!(market.is_empty(), "market data for commands with no report: {:?}", market.keys());
    sequenced
}

/// One run: start (recovering `dir`), submit `cmds` from three producers, drain both
/// outputs, shut down.
fn run(config: Config, dir: &Path, cmds: &Arc<Vec<Command>>, offset: usize) -> (Summary, Seen, Seen, u64) {
    let check = config.durability == Durability::Fsync;
    let (mut pipeline, report) = Pipeline::start(config, dir).unwrap();
    let reports = drain(pipeline.reports().unwrap(), check);
    let market = drain(pipeline.market_data().unwrap(), check);
    let input = pipeline.input();
    produce(&input, cmds, offset, 3);
    drop(input);
    let summary = pipeline.shutdown().unwrap();
    (summary, reports.join().unwrap(), market.join().unwrap(), report.last_seq)
}

fn journal_hash(dir: &Path) -> StateHash {
    let (sm, _) = journal::replay(dir, None, &Ledger::default()).unwrap();
    sm.canonical().hash()
}

fn same_as_direct_application(durability: Durability, wait: WaitStrategy) {
    let all = Arc::new(commands(1_200, 800));
    let dir = tempfile::tempdir().unwrap();
    let config = Config { durability, wait, input_capacity: 64, reports_capacity: 64, ..Config::default() };
    let (summary, reports, market, recovered) = run(config, dir.path(), &all, 0);
    assert_eq!(recovered, 0);
    assert_eq!(reports.batches.len(), all.len(), "one report batch per command");
    assert_eq!(summary.sequenced, all.len() as u64);
    assert_eq!(summary.last_seq, all.len() as u64);
    // Every command exactly once, numbered 1..=n.
    let mut correlations: Vec<u64> = reports.batches.iter().map(|b| b.tag.correlation).collect();
    correlations.sort_unstable();
    assert_eq!(correlations, (0..all.len() as u64).collect::<Vec<_>>());
    assert_eq!(reports.batches.last().unwrap().seq.0, all.len() as u64);
    let mut direct = StateMachine::new();
    let sequenced = check_against_direct(&mut direct, &all, &reports.batches, &market.batches);
    assert!(market.batches.iter().any(|b| b.events.iter().any(|e| matches!(e, Event::Trade(_)))));
    assert_eq!(summary.state_hash, direct.canonical().hash());
    summary.state.check_invariants().unwrap();
    // The journal holds exactly the sequenced commands.
    let mut journaled = Vec::new();
    journal::scan(dir.path(), |c| {
        journaled.push(c);
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(journaled, sequenced);
    assert_eq!(journal_hash(dir.path()), summary.state_hash);
    if durability == Durability::Fsync {
        assert!(summary.fsyncs > 0);
        assert_eq!(reports.early, Vec::<u64>::new(), "reports released before the watermark");
        assert_eq!(market.early, Vec::<u64>::new(), "market data released before the watermark");
    }
}

#[test]
fn pipeline_os_gives_the_events_and_hash_of_direct_application() {
    same_as_direct_application(Durability::Os, WaitStrategy::Park);
}

#[test]
fn pipeline_fsync_releases_nothing_before_the_watermark_and_matches_direct_application() {
    same_as_direct_application(Durability::Fsync, WaitStrategy::Park);
}

#[test]
fn pipeline_with_spin_then_yield_matches_direct_application() {
    same_as_direct_application(Durability::Fsync, WaitStrategy::SpinThenYield);
}

#[test]
fn pipeline_backpressure_tiny_rings_and_a_slow_consumer_lose_nothing() {
    let all = Arc::new(commands(400, 0));
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        durability: Durability::Fsync,
        input_capacity: 2,
        reports_capacity: 2,
        market_data_capacity: 1,
        ..Config::default()
    };
    let (mut pipeline, _) = Pipeline::start(config, dir.path()).unwrap();
    let mut reports = pipeline.reports().unwrap();
    let mut market = pipeline.market_data().unwrap();
    let input = pipeline.input();
    // Nobody consumes yet: the output rings fill and the sequencer waits for space (for
    // good: nobody will make room), then the input ring fills.
    let tag = |i: usize| Tag { session: 0, correlation: i as u64 };
    let mut submitted = 0usize;
    loop {
        let stats = pipeline.stats();
        if stats.input.len == 2 && stats.reports.full_waits + stats.market_data.full_waits >= 1 {
            break;
        }
        match input.submit(tag(submitted), all[submitted].clone()) {
            Ok(()) => submitted += 1,
            Err(SubmitError::Full(_)) => thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
        // At most two runs in the reports ring, one run waiting to be pushed (a run is at
        // most 64 commands) and two inputs.
        assert!(submitted <= 3 * 64 + 2, "the rings should have filled by now");
    }
    // Now a non-blocking submit is refused, and gives the command back.
    match input.submit(tag(submitted), all[submitted].clone()) {
        Err(SubmitError::Full(cmd)) => assert_eq!(cmd, all[submitted]),
        other => panic!("expected a full input ring, got {other:?}"),
    }
    let stats = pipeline.stats();
    assert_eq!((stats.input.len, stats.input.capacity), (2, 2));
    assert!(stats.reports.len <= 2 && stats.market_data.len <= 1, "{stats:?}");
    // The rest from a producer thread, while the consumers are slow (they yield before
    // every batch).
    let producer = {
        let all = Arc::clone(&all);
        thread::spawn(move || {
            for (i, cmd) in all.iter().enumerate().skip(submitted) {
                input.submit_wait(Tag { session: 0, correlation: i as u64 }, cmd.clone()).unwrap();
            }
        })
    };
    let md = thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            thread::yield_now();
            match market.try_recv() {
                Ok(b) => got.push(b.to_command_events()),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Closed) => return got,
            }
        }
    });
    let mut got = Vec::new();
    while let Some(b) = reports.recv() {
        thread::yield_now();
        assert!(b.durable_seq() >= b.seq.0);
        got.push(b.to_command_events());
    }
    producer.join().unwrap();
    let summary = pipeline.shutdown().unwrap();
    let md = md.join().unwrap();
    assert_eq!(got.len(), all.len());
    let mut direct = StateMachine::new();
    check_against_direct(&mut direct, &all, &got, &md);
    assert_eq!(summary.state_hash, direct.canonical().hash());
}

#[test]
fn pipeline_dropping_every_input_handle_drains_and_ends_the_streams() {
    let all = Arc::new(commands(300, 0));
    let dir = tempfile::tempdir().unwrap();
    let (mut pipeline, _) = Pipeline::start(Config::default(), dir.path()).unwrap();
    drop(pipeline.market_data());
    let mut reports = pipeline.reports().unwrap();
    let input = pipeline.input();
    for (i, cmd) in all.iter().enumerate() {
        input.submit_wait(Tag { session: 9, correlation: i as u64 }, cmd.clone()).unwrap();
    }
    drop(input);
    // Without a shutdown call: every batch, then the end of the stream.
    let mut n = 0u64;
    while let Some(b) = reports.recv() {
        n += 1;
        assert_eq!(b.seq.0, n);
    }
    assert_eq!(n, all.len() as u64);
    assert!(matches!(pipeline.input().submit(Tag::default(), all[0].clone()), Err(SubmitError::Closed(_))));
    let summary = pipeline.shutdown().unwrap();
    assert_eq!(summary.last_seq, n);
    assert_eq!(journal_hash(dir.path()), summary.state_hash);
}

#[test]
fn pipeline_restart_recovers_and_continues_the_sequence() {
    let all = Arc::new(commands(600, 600));
    let split = all.len() / 2;
    let first = Arc::new(all[..split].to_vec());
    let second = Arc::new(all[split..].to_vec());
    let dir = tempfile::tempdir().unwrap();
    let config = Config { durability: Durability::Fsync, ..Config::default() };
    let (s1, r1, m1, recovered) = run(config.clone(), dir.path(), &first, 0);
    assert_eq!(recovered, 0);
    assert_eq!(s1.last_seq, split as u64);
    // Restart: recovery reports where the journal ended; numbering continues after it.
    let (s2, r2, m2, recovered) = run(config, dir.path(), &second, split);
    assert_eq!(recovered, s1.last_seq);
    assert_eq!(r2.batches.first().unwrap().seq.0, s1.last_seq + 1);
    assert_eq!(s2.last_seq, all.len() as u64);
    assert!(r1.batches.last().unwrap().ts <= r2.batches.first().unwrap().ts);
    let mut direct = StateMachine::new();
    check_against_direct(&mut direct, &all, &r1.batches, &m1.batches);
    assert_eq!(direct.canonical().hash(), s1.state_hash);
    check_against_direct(&mut direct, &all, &r2.batches, &m2.batches);
    assert_eq!(direct.canonical().hash(), s2.state_hash);
    assert_eq!(journal_hash(dir.path()), s2.state_hash);
}

#[test]
fn pipeline_snapshots_are_written_and_replay_from_them_gives_the_same_hash() {
    let all = Arc::new(commands(900, 900));
    let dir = tempfile::tempdir().unwrap();
    let every = 150u64;
    let config = Config { snapshot_every: every, segment_bytes: 1 << 16, ..Config::default() };
    let (summary, reports, market, _) = run(config, dir.path(), &all, 0);
    let expected = all.len() as u64 / every;
    assert_eq!(summary.snapshot_pauses_ns.len() as u64, expected);
    assert_eq!(summary.snapshots.len() as u64 + summary.snapshots_skipped, expected);
    assert!(!summary.snapshots.is_empty());
    assert_eq!(summary.snapshot_errors, Vec::new());
    // Each snapshot is the state after its command.
    let mut direct = StateMachine::new();
    let mut events = Vec::new();
    let sequenced = check_against_direct(&mut StateMachine::new(), &all, &reports.batches, &market.batches);
    let mut at = 0;
    for (seq, path) in &summary.snapshots {
        assert_eq!(seq % every, 0);
        while at < sequenced.len() && sequenced[at].seq.0 <= *seq {
            events.clear();
            direct.apply(&sequenced[at], &mut events);
            at += 1;
        }
        let (header, restored) = snapshot::read(path, Ledger::default()).unwrap();
        assert_eq!(header.point.seq, *seq);
        assert_eq!(header.journal, summary.journal, "snapshots are bound to their journal");
        assert_eq!(restored.canonical().hash(), direct.canonical().hash(), "snapshot at {seq}");
    }
    // Replay starts from the newest snapshot and reaches the final state.
    let (sm, report) = journal::replay(dir.path(), None, &Ledger::default()).unwrap();
    let newest = summary.snapshots.last().unwrap();
    assert_eq!(report.snapshot.as_ref().map(|(s, _)| *s), Some(newest.0));
    assert_eq!(report.replayed, summary.last_seq - newest.0);
    assert_eq!(sm.canonical().hash(), summary.state_hash);
}

#[test]
fn pipeline_pins_its_threads_and_refuses_a_core_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let cores = Cores { sequencer: Some(0), group_commit: Some(0), snapshot: Some(0) };
    let config = Config { durability: Durability::Fsync, cores, ..Config::default() };
    let (mut pipeline, _) = Pipeline::start(config, dir.path()).unwrap();
    let reports = drain(pipeline.reports().unwrap(), true);
    drop(pipeline.market_data());
    let input = pipeline.input();
    for (i, cmd) in commands(50, 0).into_iter().enumerate() {
        input.submit_wait(Tag { session: 1, correlation: i as u64 }, cmd).unwrap();
    }
    drop(input);
    let summary = pipeline.shutdown().unwrap();
    assert_eq!(reports.join().unwrap().batches.len() as u64, summary.last_seq);

    let dir = tempfile::tempdir().unwrap();
    let cores = Cores { group_commit: Some(100_000), ..Cores::default() };
    match Pipeline::start(Config { durability: Durability::Fsync, cores, ..Config::default() }, dir.path()) {
        Err(PipelineError::Pin { thread: "group-commit", source }) if source.core == 100_000 => {}
        other => panic!("expected a pinning error, got {:?}", other.map(|(_, r)| r)),
    }
}

/// A consumer that sleeps elsewhere (an event loop) arms the receiver's waker: every batch
/// wakes it, in both durability modes, and `arm` refuses to let it sleep while a batch is
/// ready. A lost wake-up would hang the test on the channel.
#[test]
fn pipeline_receiver_waker_wakes_a_consumer_that_sleeps_elsewhere() {
    for durability in [Durability::Os, Durability::Fsync] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { durability, ..Config::default() };
        let (mut pipeline, _) = Pipeline::start(config, dir.path()).unwrap();
        let mut rx = pipeline.reports().unwrap();
        drop(pipeline.market_data());
        let (woke, wakes) = std::sync::mpsc::channel::<()>();
        assert!(rx.set_waker(move || {
            let _ = woke.send(());
        }));
        assert!(!rx.set_waker(|| {}), "a second waker is refused");
        let input = pipeline.input();
        let cmds = commands(300, 0);
        for (i, cmd) in cmds.iter().enumerate() {
            assert!(rx.arm(), "nothing is ready before the command is submitted");
            input.submit_wait(Tag { session: 1, correlation: i as u64 }, cmd.clone()).unwrap();
            // Sleep "elsewhere" until woken, then the batch must be there.
            wakes.recv().unwrap();
            loop {
                match rx.try_recv() {
                    Ok(batch) => {
                        assert_eq!(batch.tag.correlation, i as u64);
                        break;
                    }
                    // Woken by the publish before the watermark moved (fsync): arm again.
                    Err(TryRecvError::Empty) => {
                        if rx.arm() {
                            wakes.recv().unwrap();
                        }
                    }
                    Err(TryRecvError::Closed) => panic!("closed early"),
                }
            }
            assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        }
        // A batch that is ready when the consumer arms: no sleep.
        input.submit_wait(Tag::default(), cmds[0].clone()).unwrap();
        while rx.arm() {
            wakes.recv().unwrap();
        }
        assert!(rx.try_recv().is_ok());
        drop(input);
        let summary = pipeline.shutdown().unwrap();
        assert_eq!(summary.sequenced, cmds.len() as u64 + 1);
    }
}

/// `Mode::Inline`: the holder of the handle sequences on its own thread, draining the
/// reports after each step; other threads' commands go through the same input; the result
/// equals applying the commands directly, and the journal replays to the same state.
#[test]
fn inline_mode_sequences_on_the_holders_thread_and_matches_direct_application() {
    let all = Arc::new(commands(400, 400));
    let dir = tempfile::tempdir().unwrap();
    let config = Config { mode: Mode::Inline, snapshot_every: 97, ..Config::default() };
    let (mut pipeline, _) = Pipeline::start(config, dir.path()).unwrap();
    let mut inline = pipeline.inline().expect("the inline handle");
    assert!(pipeline.inline().is_none(), "handed out once");
    let mut reports = pipeline.reports().unwrap();
    let mut market = pipeline.market_data().unwrap();
    // Half from this thread, half from another producer while this one steps.
    let (mine, theirs) = all.split_at(all.len() / 2);
    let input = pipeline.input();
    let other = {
        let input = pipeline.input();
        let theirs: Vec<Command> = theirs.to_vec();
        let offset = mine.len();
        thread::spawn(move || {
            for (i, cmd) in theirs.into_iter().enumerate() {
                input.submit_wait(Tag { session: 2, correlation: (offset + i) as u64 }, cmd).unwrap();
            }
        })
    };
    let (mut got, mut md) = (Vec::new(), Vec::new());
    let mut drain = |reports: &mut Receiver, market: &mut Receiver, got: &mut Vec<CommandEvents>| {
        while let Ok(b) = reports.try_recv() {
            got.push(b.to_command_events());
        }
        while let Ok(b) = market.try_recv() {
            md.push(b.to_command_events());
        }
    };
    for (i, cmd) in mine.iter().enumerate() {
        // Never waits: a full input is stepped empty first.
        let mut cmd = cmd.clone();
        while let Err(SubmitError::Full(back)) = input.submit(Tag { session: 1, correlation: i as u64 }, cmd) {
            cmd = back;
            inline.step();
            drain(&mut reports, &mut market, &mut got);
        }
        inline.step();
        drain(&mut reports, &mut market, &mut got);
    }
    while got.len() < all.len() {
        inline.step();
        drain(&mut reports, &mut market, &mut got);
    }
    other.join().unwrap();
    drop((input, reports, market));
    drop(inline);
    let summary = pipeline.shutdown().unwrap();
    assert_eq!(summary.last_seq, all.len() as u64);
    assert!(!summary.snapshots.is_empty(), "the snapshot thread runs in the inline mode too");
    let mut direct = StateMachine::new();
    check_against_direct(&mut direct, &all, &got, &md);
    assert_eq!(summary.state_hash, direct.canonical().hash());
    assert_eq!(journal_hash(dir.path()), summary.state_hash);
}

/// `Mode::Inline` runs with `durability = os` only; an untaken handle runs at the shutdown,
/// and a handle still held then is an error, not a hang.
#[test]
fn inline_mode_refuses_fsync_and_drains_at_the_shutdown_without_a_holder() {
    let dir = tempfile::tempdir().unwrap();
    let fsync = Config { mode: Mode::Inline, durability: Durability::Fsync, ..Config::default() };
    assert!(matches!(Pipeline::start(fsync, dir.path()), Err(PipelineError::InlineFsync)));
    let all = commands(50, 0);
    let (pipeline, _) = Pipeline::start(Config { mode: Mode::Inline, ..Config::default() }, dir.path()).unwrap();
    let input = pipeline.input();
    for (i, cmd) in all.iter().enumerate() {
        input.submit(Tag { session: 1, correlation: i as u64 }, cmd.clone()).unwrap();
    }
    drop(input);
    let summary = pipeline.shutdown().unwrap();
    assert_eq!(summary.last_seq, all.len() as u64);
    assert_eq!(journal_hash(dir.path()), summary.state_hash);

    let dir = tempfile::tempdir().unwrap();
    let (mut pipeline, _) = Pipeline::start(Config { mode: Mode::Inline, ..Config::default() }, dir.path()).unwrap();
    let held = pipeline.inline();
    assert!(matches!(pipeline.shutdown(), Err(PipelineError::InlineHeld)));
    drop(held);
}
