//! `l2x settle`: deploy the contract, commit a journal's batches, verify roots
//! (docs/SETTLEMENT.md).
//!
//! ```text
//!  settle deploy --rpc-url U --key K                       → the contract's address
//!  settle submit --journal J --batches B CHAIN [--key K]
//!                  recompute the epochs, write/check batch files, commit what the chain lacks
//!  settle verify --journal J [--batches B] [CHAIN]
//!                  recompute every root; compare with the batch files and the chain;
//!                  exit 1 naming the first batch that differs
//!  settle status --batches B [CHAIN]                       last local and on-chain batch, lag;
//!                  exit 1 if the chain's copy of the last batch both have differs
//!  settle prove --batches B --account N [--batch K] [CHAIN]
//!                  the leaf (or its absence) and its proof as JSON, from the batch files
//!                  alone; checked against the chain's committed root and, for a leaf, by
//!                  the contract; exit 1 if the chain disagrees
//!
//!  CHAIN = --chain-dir D (the embedded chain kept in D: `l2x serve` keeps its own in
//!          DATA_DIR/chain)  |  --rpc-url U --contract A (a node)
//! ```
//!
//! Every command that reads batch files loads the whole directory through
//! `BatchSet::load` first (every file and their sequence checked, errors naming the file
//! and the field); the checks themselves are in `l2x_settlement::audit`: this module
//! parses and prints. Exit codes: docs/SETTLEMENT.md, "Command line".

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use l2x_risk::Ledger;
use l2x_settlement::audit;
use l2x_settlement::batch_set::BatchSet;
use l2x_settlement::chain::{Chain, RpcChain};
use l2x_settlement::embedded::EmbeddedChain;
use l2x_settlement::epoch::Policy;
use l2x_settlement::submitter::Submitter;

use l2x_node::config::{MAX_CONFIRMATIONS, MAX_EPOCH_FILLS, MAX_EPOCH_MS};

use crate::args::{non_empty_path, ranged};

/// How epochs close (must be what the submitter used).
#[derive(Clone, Copy, Debug, clap::Args)]
pub(crate) struct EpochArgs {
    /// An epoch is due at the first command this many ms (sequenced time) after its first;
    /// it becomes a batch once it has changed a leaf or the market state (1 to 86,400,000).
    #[arg(long, default_value_t = Policy::default().max_ms, value_parser = ranged(1, MAX_EPOCH_MS))]
    epoch_ms: u64,
    /// … or at the command whose trades bring it to this many or more (0: no limit; at most
    /// 1,000,000,000).
    #[arg(long, default_value_t = Policy::default().max_fills, value_parser = ranged(0, MAX_EPOCH_FILLS))]
    epoch_fills: u64,
}

impl EpochArgs {
    pub(crate) fn policy(self) -> Policy {
        Policy { max_ms: self.epoch_ms, max_fills: self.epoch_fills }
    }
}

/// The chain a command reads or settles on: the embedded one in a directory, or a node's.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct ChainArgs {
    /// The embedded chain kept in this directory (`l2x serve` keeps its own in
    /// DATA_DIR/chain).
    #[arg(long, conflicts_with = "rpc_url", value_parser = non_empty_path)]
    chain_dir: Option<PathBuf>,
    /// A node's JSON-RPC endpoint (with --contract).
    #[arg(long, requires = "contract")]
    rpc_url: Option<String>,
    /// The settlement contract's address on that node (`l2x settle deploy`).
    #[arg(long, requires = "rpc_url")]
    contract: Option<String>,
}

impl ChainArgs {
    /// Whether a chain was named.
    pub(crate) fn is_named(&self) -> bool {
        self.chain_dir.is_some() || self.rpc_url.is_some()
    }

    /// The chain to read, if one was named.
    fn reader(&self) -> Result<Option<Box<dyn Chain>>> {
        Ok(match (&self.chain_dir, &self.rpc_url, &self.contract) {
            (Some(dir), _, _) => Some(Box::new(EmbeddedChain::read_only(dir)?)),
            (None, Some(url), Some(contract)) => Some(Box::new(RpcChain::read_only(url, address(contract)?)?)),
            _ => None,
        })
    }

    /// The chain to commit to: the embedded one (created if the directory holds none), or
    /// the node's with the submitter's key.
    fn writer(&self, key: Option<&str>, confirmations: u64) -> Result<Box<dyn Chain>> {
        match (&self.chain_dir, &self.rpc_url, &self.contract) {
            (Some(dir), _, _) => Ok(Box::new(EmbeddedChain::open(dir)?)),
            (None, Some(url), Some(contract)) => {
                let key = key.context("--rpc-url needs --key: the submitter's private key")?;
                Ok(Box::new(RpcChain::connect(url, key, address(contract)?, confirmations)?))
            }
            _ => anyhow::bail!("name a chain: --chain-dir DIR, or --rpc-url URL --contract ADDRESS"),
        }
    }
}

/// `l2x settle` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum SettleCmd {
    /// Deploy the settlement contract (the committed artifact); prints its address.
    Deploy {
        /// JSON-RPC endpoint.
        #[arg(long)]
        rpc_url: String,
        /// The submitter's private key (hex); it becomes the contract's only submitter.
        #[arg(long)]
        key: String,
    },
    /// Recompute the journal's epochs, write their batch files, commit what the chain lacks.
    Submit {
        /// The journal directory.
        #[arg(long, value_parser = non_empty_path)]
        journal: PathBuf,
        /// Where batch files go.
        #[arg(long, value_parser = non_empty_path)]
        batches: PathBuf,
        #[command(flatten)]
        chain: ChainArgs,
        /// With --rpc-url: the submitter's private key (hex).
        #[arg(long)]
        key: Option<String>,
        /// With --rpc-url: confirmations to wait for after each commit (1 to 1,000).
        #[arg(long, default_value_t = 1, value_parser = ranged(1, MAX_CONFIRMATIONS))]
        confirmations: u64,
        #[command(flatten)]
        epochs: EpochArgs,
    },
    /// The last local batch and the last one on chain, and the lag between them.
    Status {
        /// The batch files.
        #[arg(long, value_parser = non_empty_path)]
        batches: PathBuf,
        /// The chain to compare with.
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// An account's leaf and its proof at a batch, as JSON, rebuilt from the batch files.
    Prove {
        /// The batch files.
        #[arg(long, value_parser = non_empty_path)]
        batches: PathBuf,
        /// The account id.
        #[arg(long)]
        account: u64,
        /// The batch (default: the last one).
        #[arg(long)]
        batch: Option<u64>,
        /// Check the proof against the contract on this chain too.
        #[command(flatten)]
        chain: ChainArgs,
    },
    /// Recompute every root from the journal and compare with the batch files and the chain.
    Verify {
        /// The journal directory.
        #[arg(long, value_parser = non_empty_path)]
        journal: PathBuf,
        /// Batch files to compare with.
        #[arg(long, value_parser = non_empty_path)]
        batches: Option<PathBuf>,
        /// Compare with the roots committed on this chain too.
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        epochs: EpochArgs,
    },
}

/// `--contract`'s address.
fn address(text: &str) -> Result<alloy::primitives::Address> {
    Ok(l2x_node::config::address(text)?)
}

pub(crate) fn settle(cmd: SettleCmd) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match cmd {
        SettleCmd::Deploy { rpc_url, key } => {
            let address = RpcChain::deploy(&rpc_url, &key)?;
            writeln!(out, "{address}")?;
            Ok(ExitCode::SUCCESS)
        }
        SettleCmd::Submit { journal, batches, chain, key, confirmations, epochs } => {
            let mut chain = chain.writer(key.as_deref(), confirmations)?;
            let mut sub = Submitter::new(journal, batches, epochs.policy(), Ledger::default());
            let synced = sub.sync(chain.as_mut())?;
            writeln!(
                out,
                "{} epochs; the chain had {}, committed {}; last root {}",
                synced.epochs, synced.committed_before, synced.committed, synced.root
            )?;
            Ok(ExitCode::SUCCESS)
        }
        SettleCmd::Status { batches, chain } => status(&mut out, &batches, &chain),
        SettleCmd::Prove { batches, account, batch, chain } => prove(&mut out, &batches, account, batch, &chain),
        SettleCmd::Verify { journal, batches, chain, epochs } => verify(&journal, batches, &chain, epochs),
    }
}

/// The batch files of `dir`, every one checked ([`BatchSet::load`]).
fn load(dir: &Path) -> Result<BatchSet> {
    // Every error names the file (or the directory, for a missing batch).
    Ok(BatchSet::load(dir)?)
}

/// `settle status`: exit 1 if the chain's copy of the last batch both have differs.
fn status(out: &mut impl Write, batches: &Path, chain: &ChainArgs) -> Result<ExitCode> {
    let set = load(batches)?;
    let mut reader = chain.reader()?;
    let status = audit::status(&set, reader.as_deref_mut().map(|c| c as &mut dyn Chain))?;
    match status.local {
        Some(h) => writeln!(
            out,
            "local: {} batches, last {} (seq {}-{}, root {})",
            set.batches().len(),
            h.index,
            h.first_seq,
            h.last_seq,
            h.new_root
        )?,
        None => writeln!(out, "local: no batches in {}", batches.display())?,
    }
    let Some(c) = status.chain else { return Ok(ExitCode::SUCCESS) };
    writeln!(out, "chain: last committed {} (root {})", c.last, c.root)?;
    let local = status.local.map_or(0, |h| h.index);
    if c.last > local {
        writeln!(out, "lag: none; the chain has {} batches the files do not", c.last - local)?;
    } else {
        writeln!(out, "lag: {} batches", local - c.last)?;
    }
    match c.checked {
        Ok(0) => Ok(ExitCode::SUCCESS),
        Ok(k) => {
            writeln!(out, "batch {k}: the chain's root and data hash are the batch file's")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(d) => {
            writeln!(out, "{d}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `settle prove`: the proof as JSON; exit 1 if a chain was named and disagrees.
fn prove(
    out: &mut impl Write,
    batches: &Path,
    account: u64,
    batch: Option<u64>,
    chain: &ChainArgs,
) -> Result<ExitCode> {
    let set = load(batches)?;
    let mut reader = chain.reader()?;
    let proven = audit::prove(&set, account, batch, reader.as_deref_mut().map(|c| c as &mut dyn Chain))?;
    anyhow::ensure!(proven.verified(), "the proof does not verify against the rebuilt root (a bug)");
    // A value that does not fit is an error, before anything is printed.
    let value = proven.value()?;
    let json = prove_json(&proven, value);
    writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    let agrees = proven.chain.as_ref().is_none_or(|c| c.agrees.is_ok());
    Ok(if agrees { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// What a proof says, as JSON (docs/SETTLEMENT.md, "Command line").
fn prove_json(p: &audit::Proven, value: Option<audit::Value>) -> serde_json::Value {
    use serde_json::json;
    let batch = p.state.index;
    let markets = &p.state.markets;
    let leaf = p.leaf.as_ref().map(|l| {
        json!({
            "collateral": l.collateral,
            "positions": l.positions.iter().map(|p| json!({
                "instrument": p.instrument,
                "size": p.size,
                "cost": p.cost.to_string(),
                "funding_index": p.fundingIndex.to_string(),
            })).collect::<Vec<_>>(),
            "abi": format!("0x{}", alloy::hex::encode(l.encode())),
            "hash": l.hash().to_string(),
            "funding_owed": value.and_then(|v| v.funding_owed).map(|v| v.to_string()),
            "equity": value.and_then(|v| v.equity).map(|v| v.to_string()),
        })
    });
    json!({
        "batch": batch,
        "root": p.state.tree.root().to_string(),
        "account": p.account,
        "proof": if p.leaf.is_some() { "inclusion" } else { "absence" },
        "leaf": leaf,
        "markets": markets.iter().map(|m| json!({
            "instrument": m.instrument,
            "mark": m.mark,
            "funding_index": m.fundingIndex.to_string(),
            "tick_value": m.tickValue,
        })).collect::<Vec<_>>(),
        "siblings": p.proof.siblings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "absent_other_leaf": p.proof.other.map(|(k, v)| json!({"key": k, "value": v.to_string()})),
        "verified": p.verified(),
        "chain_root": p.chain.as_ref().map(|c| c.root.to_string()),
        "verified_by_contract": p.chain.as_ref().and_then(|c| c.by_contract),
        "disagreement": p.chain.as_ref().and_then(|c| c.agrees.as_ref().err()).map(ToString::to_string),
        "summary": prove_summary(p),
    })
}

/// One sentence saying what was proven, and against what.
fn prove_summary(p: &audit::Proven) -> String {
    let (account, batch) = (p.account, p.state.index);
    let what = match &p.leaf {
        Some(_) => format!("account {account} has this leaf in batch {batch} (proof of inclusion)"),
        None => format!("account {account} has no leaf in batch {batch} (proof of absence)"),
    };
    let local = "it verifies against the root rebuilt from the batch files";
    match (&p.chain, &p.leaf) {
        (None, _) => format!("{what}: {local}; no chain was named, so nothing here says that root was committed"),
        (Some(c), _) if c.agrees.is_err() => {
            format!(
                "{what}: {local}, but the chain disagrees: {}",
                c.agrees.as_ref().err().map(ToString::to_string).unwrap_or_default()
            )
        }
        (Some(_), Some(_)) => format!(
            "{what}: {local}, the chain committed that root for batch {batch}, and the contract's verifyLeaf accepts it"
        ),
        (Some(_), None) => format!(
            "{what}: {local}, which is the root the chain committed for batch {batch}; checked off chain \
             (the contract's verifyLeaf proves inclusion only)"
        ),
    }
}

/// Recomputes every epoch of the journal and compares with the batch files and the chain:
/// `settle verify`, and `replay --verify-roots`. Exit 1 naming the first batch that differs.
pub(crate) fn verify(
    journal: &std::path::Path,
    batches: Option<PathBuf>,
    chain: &ChainArgs,
    epochs: EpochArgs,
) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let set = batches.as_deref().map(load).transpose()?;
    let mut reader = chain.reader()?;
    let v = audit::verify(
        journal,
        epochs.policy(),
        &Ledger::default(),
        set.as_ref(),
        reader.as_deref_mut().map(|c| c as &mut dyn Chain),
    )
    .with_context(|| format!("verifying {}", journal.display()))?;
    writeln!(out, "{} epochs recomputed from {}", v.batches, journal.display())?;
    match &v.files {
        Some(Ok(n)) => {
            if *n < v.batches {
                // Not a disagreement: the submitter has not written them yet.
                writeln!(out, "{} epochs have no batch file yet", v.batches - n)?;
            }
            writeln!(out, "{n} batch files match")?;
        }
        Some(Err(d)) => writeln!(out, "{d}")?,
        None => {}
    }
    match &v.chain {
        Some(Ok(last)) => writeln!(out, "{last} committed roots match")?,
        Some(Err(d)) => writeln!(out, "{d}")?,
        None => {}
    }
    Ok(if v.agrees() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
