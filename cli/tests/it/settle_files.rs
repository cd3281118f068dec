//! Damaged, renamed, duplicated and foreign batch files through the real binary (issue 14,
//! "Settlement files"): every `l2x settle` command refuses a batch set it cannot trust,
//! naming the file and the field, before it answers anything; `prove` says what it proved
//! and against what; a chain that disagrees with the files is exit 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn l2x(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_l2x")).args(args).stdin(Stdio::null()).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A scenario's journal settled on an embedded chain, one epoch per command.
struct Settled {
    dir: tempfile::TempDir,
    journal: PathBuf,
    batches: PathBuf,
    chain: PathBuf,
}

impl Settled {
    /// A scenario's journal, its commands 1 ms apart (epochs of 1 ms close every second
    /// command), in a new directory; no batch files yet.
    fn journal(scenario: &str) -> Settled {
        let dir = tempfile::tempdir().unwrap();
        let (journal, batches, chain) =
            (dir.path().join("journal"), dir.path().join("batches"), dir.path().join("chain"));
        let input = dir.path().join("timed.jsonl");
        std::fs::write(&input, crate::scenario_1ms_apart(scenario)).unwrap();
        let run = l2x(&["match", "--input", s(&input), "--journal", s(&journal)]);
        assert!(run.status.success(), "{}", stderr(&run));
        Settled { dir, journal, batches, chain }
    }

    fn new(scenario: &str) -> Settled {
        let set = Settled::journal(scenario);
        let (journal, batches, chain) = (&set.journal, &set.batches, &set.chain);
        let submit = l2x(&[
            "settle",
            "submit",
            "--journal",
            s(journal),
            "--batches",
            s(batches),
            "--chain-dir",
            s(chain),
            "--epoch-ms",
            "1",
        ]);
        assert!(submit.status.success(), "{}", stderr(&submit));
        set
    }

    /// The batch files of a scenario's journal (epochs of 1 ms as [`Settled::new`]), written
    /// without a chain: for scenarios whose L1 queue entries are made up, which no vault
    /// holds (the contract refuses their batches).
    fn files_only(scenario: &str) -> Settled {
        let set = Settled::journal(scenario);
        let (journal, batches) = (&set.journal, &set.batches);
        let policy = l2x_settlement::epoch::Policy { max_ms: 1, max_fills: 0 };
        let ledger = l2x_risk::Ledger::default();
        std::fs::create_dir(batches).unwrap();
        for e in l2x_settlement::epoch::from_journal(journal, policy, &ledger).unwrap() {
            l2x_settlement::batch::Batch::of(&e).write(batches).unwrap();
        }
        set
    }

    /// The number of batch files.
    fn count(&self) -> u64 {
        std::fs::read_dir(&self.batches).unwrap().count() as u64
    }

    /// A copy of the batch files in a new directory.
    fn copy(&self, name: &str) -> PathBuf {
        let to = self.dir.path().join(name);
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&self.batches).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
        to
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn file(dir: &Path, index: u64) -> PathBuf {
    dir.join(l2x_settlement::batch::Batch::file_name(index))
}

fn flip(path: &Path, offset: usize, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= mask;
    std::fs::write(path, bytes).unwrap();
}

/// The command failed with exit 1, printed nothing on stdout, and its message names every
/// one of `words`.
fn refused(o: &Output, words: &[&str]) {
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(o), stderr(o));
    assert!(stdout(o).is_empty(), "an answer printed from damaged files: {}", stdout(o));
    for w in words {
        assert!(stderr(o).contains(w), "{w:?} not in: {}", stderr(o));
    }
}

#[test]
fn prove_refuses_batch_with_damaged_header_index() {
    let set = Settled::new("liquidation_insurance.jsonl");
    let name = l2x_settlement::batch::Batch::file_name(1);
    // Byte 19 is the low byte of the header's index (bytes 12-19): 1 becomes 0, or 3.
    for mask in [0x01, 0x02] {
        let damaged = set.copy(&format!("damaged-{mask}"));
        flip(&file(&damaged, 1), 19, mask);
        let alone = l2x(&["settle", "prove", "--batches", s(&damaged), "--account", "5"]);
        refused(&alone, &[&name, "index"]);
        let with_chain =
            l2x(&["settle", "prove", "--batches", s(&damaged), "--account", "5", "--chain-dir", s(&set.chain)]);
        refused(&with_chain, &[&name, "index"]);
    }
}

#[test]
fn verify_names_a_damaged_batch_1_instead_of_calling_it_missing() {
    let set = Settled::new("liquidation_insurance.jsonl");
    let damaged = set.copy("damaged");
    flip(&file(&damaged, 1), 19, 0x02);
    let v = l2x(&["settle", "verify", "--journal", s(&set.journal), "--batches", s(&damaged), "--epoch-ms", "1"]);
    refused(&v, &[&l2x_settlement::batch::Batch::file_name(1), "header field index"]);
    assert!(!stderr(&v).contains("missing"), "{}", stderr(&v));
}

#[test]
fn status_refuses_damaged_header_values() {
    let set = Settled::new("liquidation_insurance.jsonl");
    let last = set.count();
    let name = l2x_settlement::batch::Batch::file_name(last);
    for (offset, field) in [
        (36, "epoch_ts"),
        (43, "epoch_ts"),
        (35, "last_seq"),
        (20, "first_seq"),
        (90, "new_root"),
        (150, "fills"),
        (170, "raw_len"),
    ] {
        let damaged = set.copy(&format!("damaged-{offset}"));
        flip(&file(&damaged, last), offset, 0x01);
        let status = l2x(&["settle", "status", "--batches", s(&damaged)]);
        refused(&status, &[&name, field]);
    }
}

#[test]
fn a_copy_of_batch_1_saved_as_the_next_batch_is_refused_by_status_and_prove() {
    let set = Settled::new("liquidation_insurance.jsonl");
    let next = set.count() + 1;
    let copied = set.copy("copied");
    std::fs::copy(file(&copied, 1), file(&copied, next)).unwrap();
    let name = l2x_settlement::batch::Batch::file_name(next);
    refused(
        &l2x(&["settle", "status", "--batches", s(&copied)]),
        &[&name, "the header says 1, but the file name says"],
    );
    refused(&l2x(&["settle", "prove", "--batches", s(&copied), "--account", "2"]), &[&name, "index"]);
    refused(
        &l2x(&["settle", "prove", "--batches", s(&copied), "--account", "2", "--chain-dir", s(&set.chain)]),
        &[&name],
    );
}

#[test]
fn the_last_batch_renamed_one_index_up_fails_verify() {
    let set = Settled::new("liquidation_insurance.jsonl");
    let last = set.count();
    let renamed = set.copy("renamed");
    std::fs::rename(file(&renamed, last), file(&renamed, last + 1)).unwrap();
    let v = l2x(&["settle", "verify", "--journal", s(&set.journal), "--batches", s(&renamed), "--epoch-ms", "1"]);
    refused(&v, &[&format!("batch {last} is missing"), &l2x_settlement::batch::Batch::file_name(last + 1)]);
}

/// A proof for an account with no leaf, with a chain named: the output says it is a proof
/// of absence, checked off chain against the root the chain committed (the contract checks
/// inclusion only), exit 0.
#[test]
fn prove_says_what_was_proven_for_an_absent_account_with_a_chain() {
    let set = Settled::new("liquidation_insurance.jsonl");
    let proof =
        l2x(&["settle", "prove", "--batches", s(&set.batches), "--account", "999", "--chain-dir", s(&set.chain)]);
    assert!(proof.status.success(), "{}", stderr(&proof));
    let json: serde_json::Value = serde_json::from_slice(&proof.stdout).unwrap();
    assert_eq!(json["proof"], "absence");
    assert_eq!(json["leaf"], serde_json::Value::Null);
    assert_eq!(json["chain_root"], json["root"], "checked against the committed root");
    assert_eq!(json["verified_by_contract"], serde_json::Value::Null);
    assert_eq!(json["disagreement"], serde_json::Value::Null);
    let summary = json["summary"].as_str().unwrap();
    assert!(summary.contains("proof of absence") && summary.contains("checked off chain"), "{summary}");
    // Without a chain it says nothing was checked against one.
    let alone = l2x(&["settle", "prove", "--batches", s(&set.batches), "--account", "999"]);
    let json: serde_json::Value = serde_json::from_slice(&alone.stdout).unwrap();
    assert_eq!(json["chain_root"], serde_json::Value::Null);
    assert!(json["summary"].as_str().unwrap().contains("no chain was named"), "{json}");
    // An account with a leaf: the contract's verifyLeaf, and the leaf valued at the
    // batch's market state.
    let included =
        l2x(&["settle", "prove", "--batches", s(&set.batches), "--account", "2", "--chain-dir", s(&set.chain)]);
    let json: serde_json::Value = serde_json::from_slice(&included.stdout).unwrap();
    assert_eq!(
        (json["proof"].as_str(), json["verified_by_contract"].as_bool()),
        (Some("inclusion"), Some(true)),
        "{json}"
    );
    assert!(json["leaf"]["equity"].is_string() && json["leaf"]["funding_owed"].is_string(), "{json}");
}

/// Batch files of one journal against the chain of another: `status` and `prove` say
/// the chain disagrees and exit 1.
#[test]
fn status_and_prove_exit_1_when_the_chain_disagrees_with_the_files() {
    let ours = Settled::new("liquidation_insurance.jsonl");
    let theirs = Settled::new("funding.jsonl");
    let status = l2x(&["settle", "status", "--batches", s(&ours.batches), "--chain-dir", s(&theirs.chain)]);
    assert_eq!(status.status.code(), Some(1), "{}{}", stdout(&status), stderr(&status));
    assert!(stdout(&status).contains("the chain has root"), "{}", stdout(&status));
    let proof = l2x(&[
        "settle",
        "prove",
        "--batches",
        s(&ours.batches),
        "--account",
        "2",
        "--batch",
        "2",
        "--chain-dir",
        s(&theirs.chain),
    ]);
    assert_eq!(proof.status.code(), Some(1), "{}{}", stdout(&proof), stderr(&proof));
    let json: serde_json::Value = serde_json::from_slice(&proof.stdout).unwrap();
    assert!(json["disagreement"].as_str().unwrap().contains("batch 2: the chain has root"), "{json}");
}

/// Every byte of a batch file flipped, each through `settle status` (which loads and checks
/// the whole set): exit 1 naming the file, every time.
#[test]
fn every_flipped_byte_of_a_batch_file_is_refused_by_settle_status() {
    let set = Settled::new("liquidation_insurance.jsonl");
    let path = file(&set.batches, 2);
    let good = std::fs::read(&path).unwrap();
    let name = l2x_settlement::batch::Batch::file_name(2);
    for offset in 0..good.len() {
        for mask in [0x01, 0x80] {
            flip(&path, offset, mask);
            refused(&l2x(&["settle", "status", "--batches", s(&set.batches)]), &[&name]);
            flip(&path, offset, mask);
        }
    }
    assert!(l2x(&["settle", "status", "--batches", s(&set.batches)]).status.success());
}

/// Issue 16: the same on the L1 queue's golden scenario, whose batches carry queue
/// entries, withdrawals and refused entries: every byte of each batch with a non-empty
/// withdrawal or refused list flipped, through `settle status`.
#[test]
fn every_flipped_byte_of_a_batch_with_l1_queue_sections_is_refused_by_settle_status() {
    let set = Settled::files_only("l1_queue.jsonl");
    let loaded = l2x_settlement::batch_set::BatchSet::load(&set.batches).unwrap();
    let mut picked = Vec::new();
    for kind in [0, 1] {
        let found = loaded.batches().iter().find(|b| {
            let c = b.contents().unwrap();
            b.header.queue_count > 0 && if kind == 0 { !c.withdrawals.is_empty() } else { !c.rejected.is_empty() }
        });
        picked.push(found.unwrap_or_else(|| panic!("no batch with section {kind}")).header.index);
    }
    picked.dedup();
    for index in picked {
        let path = file(&set.batches, index);
        let good = std::fs::read(&path).unwrap();
        let name = l2x_settlement::batch::Batch::file_name(index);
        for offset in 0..good.len() {
            flip(&path, offset, 0x01);
            refused(&l2x(&["settle", "status", "--batches", s(&set.batches)]), &[&name]);
            flip(&path, offset, 0x01);
        }
    }
    assert!(l2x(&["settle", "status", "--batches", s(&set.batches)]).status.success());
}

/// Every truncation of a batch file, and bytes appended to it, through `settle status`:
/// exit 1 naming the file.
#[test]
fn every_truncation_of_a_batch_file_is_refused_by_settle_status() {
    let set = Settled::new("liquidation_insurance.jsonl");
    let path = file(&set.batches, 3);
    let good = std::fs::read(&path).unwrap();
    let name = l2x_settlement::batch::Batch::file_name(3);
    for n in 0..good.len() {
        std::fs::write(&path, &good[..n]).unwrap();
        refused(&l2x(&["settle", "status", "--batches", s(&set.batches)]), &[&name]);
    }
    std::fs::write(&path, [&good[..], b"x"].concat()).unwrap();
    refused(&l2x(&["settle", "status", "--batches", s(&set.batches)]), &[&name, "data_len"]);
}

/// Issue 14 review: `l2x match` numbers commands by input line, so blank and bad lines leave
/// gaps in the journal's sequence numbers. Batches used to take their first command's seq
/// as `first_seq` and require `commands = last_seq − first_seq + 1`: `settle submit`
/// committed batches that every command then refused to load. A batch's range now starts
/// after the batch before it, and `commands` counts what is in it.
#[test]
fn a_journal_with_sequence_gaps_settles_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, batches, chain) = (dir.path().join("journal"), dir.path().join("batches"), dir.path().join("chain"));
    let lines = crate::scenario_1ms_apart("liquidation_insurance.jsonl");
    let lines: Vec<&str> = lines.lines().collect();
    // A blank first line (batch 1 starts at seq 1 all the same), then blank and bad lines
    // inside epochs and between them.
    let mut gappy = vec![""];
    for (i, line) in lines.iter().enumerate() {
        gappy.push(line);
        match i {
            1 => gappy.push("not json"),
            4 => gappy.extend(["", ""]),
            7 => gappy.push(r#"{"cmd":"no_such_command"}"#),
            _ => {}
        }
    }
    let input = dir.path().join("gappy.jsonl");
    std::fs::write(&input, gappy.join("\n") + "\n").unwrap();
    let run = l2x(&["match", "--input", s(&input), "--journal", s(&journal)]);
    assert_eq!(run.status.code(), Some(2), "bad lines are reported: {}", stderr(&run));
    let (j, b, c) = (s(&journal), s(&batches), s(&chain));
    let ok = |args: &[&str]| {
        let o = l2x(args);
        assert!(o.status.success(), "{args:?}: {}{}", stdout(&o), stderr(&o));
        stdout(&o)
    };
    let submit = ["settle", "submit", "--journal", j, "--batches", b, "--chain-dir", c, "--epoch-ms", "1"];
    let first = ok(&submit);
    assert!(first.contains("the chain had 0"), "{first}");
    let again = ok(&submit);
    assert!(again.contains("committed 0"), "{again}");
    let verify = ok(&["settle", "verify", "--journal", j, "--batches", b, "--chain-dir", c, "--epoch-ms", "1"]);
    assert!(verify.contains("batch files match") && verify.contains("committed roots match"), "{verify}");
    ok(&["settle", "status", "--batches", b, "--chain-dir", c]);
    ok(&["replay", j, "--verify-roots", "--batches", b, "--chain-dir", c, "--epoch-ms", "1"]);
    ok(&["settle", "prove", "--batches", b, "--account", "2", "--chain-dir", c]);
    // The ranges run on from seq 1 without gaps; some hold fewer commands than numbers.
    let headers: Vec<_> = (1..)
        .map(|i| file(&batches, i))
        .take_while(|p| p.exists())
        .map(|p| l2x_settlement::batch::Batch::read(&p).unwrap().header)
        .collect();
    assert!(headers.len() > 2, "{headers:?}");
    assert_eq!(headers[0].first_seq, 1);
    assert!(headers.windows(2).all(|w| w[1].first_seq == w[0].last_seq + 1), "{headers:?}");
    assert!(headers.iter().any(|h| h.commands < h.last_seq - h.first_seq + 1), "{headers:?}");
}

/// Issue 14 review: `settle prove` valued a leaf with unchecked `i128` products on values
/// read from the batch files: a crafted but hash-consistent set made it panic (debug build)
/// or print a wrapped equity (release). It is an error naming the batch and the account,
/// with nothing on stdout.
#[test]
fn prove_refuses_a_leaf_whose_value_does_not_fit_naming_the_batch_and_account() {
    use l2x_settlement::batch::Batch;
    use l2x_settlement::epoch::Epoch;
    use l2x_settlement::leaf::{AccountLeaf, Position};
    use l2x_settlement::market::Market;

    let dir = tempfile::tempdir().unwrap();
    let batches = dir.path().join("batches");
    std::fs::create_dir_all(&batches).unwrap();
    let position = Position { instrument: 0, size: i64::MAX, cost: 0, fundingIndex: 0 };
    let changes = vec![AccountLeaf { account: 5, collateral: 0, positions: vec![position] }];
    let root = l2x_settlement::tree::Tree::new().update(changes.iter().map(|l| (l.account, Some(l.hash()))));
    let epoch = Epoch {
        index: 1,
        first_seq: 1,
        last_seq: 1,
        ts: 1,
        commands: 1,
        fills: 0,
        prev_root: alloy::primitives::B256::ZERO,
        root,
        markets: vec![Market { instrument: 0, mark: i64::MAX, fundingIndex: 0, tickValue: i64::MAX }],
        changes,
        queue_count: 0,
        queue_hash: alloy::primitives::B256::ZERO,
        withdrawals: Vec::new(),
        rejected: Vec::new(),
    };
    Batch::of(&epoch).write(&batches).unwrap();
    // The set itself loads: status answers.
    let status = l2x(&["settle", "status", "--batches", s(&batches)]);
    assert!(status.status.success(), "{}", stderr(&status));
    let prove = l2x(&["settle", "prove", "--batches", s(&batches), "--account", "5"]);
    refused(&prove, &["batch 1", "account 5", "instrument 0", "size × mark × tickValue", "does not fit in 128 bits"]);
    // Another account of the same batch is proven as before.
    let absent = l2x(&["settle", "prove", "--batches", s(&batches), "--account", "6"]);
    assert!(absent.status.success(), "{}", stderr(&absent));
}
