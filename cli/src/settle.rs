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
//!  settle status --batches B [CHAIN]                       last local and on-chain batch, lag
//!  settle prove --batches B --account N [--batch K] [CHAIN]
//!                  the leaf and its proof as JSON, from the batch files alone; checked
//!                  locally and, with a chain, by the contract
//!
//!  CHAIN = --chain-dir D (the embedded chain kept in D: `l2x serve` keeps its own in
//!          DATA_DIR/chain)  |  --rpc-url U --contract A (a node)
//! ```

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use alloy::primitives::B256;
use anyhow::{Context, Result};
use l2x_risk::Ledger;
use l2x_settlement::batch::Batch;
use l2x_settlement::chain::{Chain, RpcChain};
use l2x_settlement::embedded::EmbeddedChain;
use l2x_settlement::epoch::{self, Policy};
use l2x_settlement::submitter::{self, Submitter};

use crate::config::{MAX_CONFIRMATIONS, MAX_EPOCH_FILLS, MAX_EPOCH_MS, non_empty_path, ranged};

/// How epochs close (must be what the submitter used).
#[derive(Clone, Copy, Debug, clap::Args)]
pub(crate) struct EpochArgs {
    /// An epoch closes at the first command this many ms (sequenced time) after its first
    /// (1 to 86,400,000).
    #[arg(long, default_value_t = Policy::default().max_ms, value_parser = ranged(1, MAX_EPOCH_MS))]
    epoch_ms: u64,
    /// … or at the command that brings its trades to this many (0: no limit; at most
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
pub(crate) fn address(text: &str) -> Result<alloy::primitives::Address> {
    text.parse().with_context(|| format!("--contract {text:?} is not an address"))
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
        SettleCmd::Status { batches, chain } => {
            let files = submitter::read_batches(&batches)?;
            let local = files.last().map(|b| b.header);
            match local {
                Some(h) => writeln!(
                    out,
                    "local: {} batches, last {} (seq {}–{}, root {})",
                    files.len(),
                    h.index,
                    h.first_seq,
                    h.last_seq,
                    h.new_root
                )?,
                None => writeln!(out, "local: no batches in {}", batches.display())?,
            }
            if let Some(mut chain) = chain.reader()? {
                let (index, root) = chain.last_committed()?;
                writeln!(out, "chain: last committed {index} (root {root})")?;
                let local_index = local.map_or(0, |h| h.index);
                writeln!(out, "lag: {} batches", local_index.saturating_sub(index))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        SettleCmd::Prove { batches, account, batch, chain } => {
            let files = submitter::read_batches(&batches)?;
            let upto = batch.or(files.last().map(|b| b.header.index)).context("no batches to prove against")?;
            anyhow::ensure!(
                files.iter().any(|b| b.header.index == upto),
                "batch {upto} is not among the batch files in {}",
                batches.display()
            );
            let (tree, leaves) = l2x_settlement::batch::state_at(&files, upto)?;
            let proof = tree.prove(account);
            let leaf = leaves.get(&account);
            let verified = proof.verify(tree.root(), account, leaf.map(l2x_settlement::leaf::AccountLeaf::hash));
            anyhow::ensure!(verified, "the proof does not verify against the rebuilt root (a bug)");
            let on_chain = match (chain.reader()?, leaf) {
                (Some(mut chain), Some(leaf)) => Some(chain.verify_leaf(upto, leaf, &proof.siblings)?),
                _ => None,
            };
            let json = serde_json::json!({
                "batch": upto,
                "root": tree.root().to_string(),
                "account": account,
                "leaf": leaf.map(|l| serde_json::json!({
                    "collateral": l.collateral,
                    "positions": l.positions.iter().map(|p| serde_json::json!({
                        "instrument": p.instrument,
                        "size": p.size,
                        "cost": p.cost.to_string(),
                        "funding_index": p.fundingIndex.to_string(),
                    })).collect::<Vec<_>>(),
                    "abi": format!("0x{}", alloy::hex::encode(l.encode())),
                    "hash": l.hash().to_string(),
                })),
                "siblings": proof.siblings.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "absent_other_leaf": proof.other.map(|(k, v)| serde_json::json!({"key": k, "value": v.to_string()})),
                "verified": verified,
                "verified_by_contract": on_chain,
            });
            writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
            Ok(if on_chain == Some(false) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        SettleCmd::Verify { journal, batches, chain, epochs } => verify(&journal, batches, &chain, epochs),
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
    let computed: Vec<Batch> = epoch::from_journal(journal, epochs.policy(), &Ledger::default())
        .with_context(|| format!("replaying {}", journal.display()))?
        .iter()
        .map(Batch::of)
        .collect();
    writeln!(out, "{} epochs recomputed from {}", computed.len(), journal.display())?;
    let mut failed = false;
    // The data each batch was posted with: its file's when there is one that says
    // what the journal says (the chain's data hash binds those bytes; recompressing
    // with another zstd could give others).
    let mut posted: Vec<B256> = computed.iter().map(|b| b.header.data_hash).collect();
    if let Some(dir) = batches {
        let files = submitter::read_batches(&dir)?;
        // Files by their own index: a missing one is named, not blamed on the next.
        let mut problem = None;
        for (expected, f) in (1u64..).zip(&files) {
            let index = f.header.index;
            let why = if index != expected {
                Some(format!("batch {expected}: missing from {}", dir.display()))
            } else {
                match computed.get(usize::try_from(index - 1)?) {
                    None => Some(format!(
                        "batch {index}: a batch file, but the journal closes only {} epochs",
                        computed.len()
                    )),
                    Some(mine) if !f.same_content(mine) => {
                        Some(format!("batch {index}: the batch file is not what the journal gives"))
                    }
                    Some(_) => {
                        posted[usize::try_from(index - 1)?] = f.header.data_hash;
                        None
                    }
                }
            };
            if why.is_some() {
                problem = why;
                break;
            }
        }
        if let Some(why) = problem {
            writeln!(out, "{why}")?;
            failed = true;
        } else {
            if files.len() < computed.len() {
                // Not a mismatch: the submitter has not written them yet.
                writeln!(out, "{} epochs have no batch file yet", computed.len() - files.len())?;
            }
            writeln!(out, "{} batch files match", files.len())?;
        }
    }
    if let Some(mut chain) = chain.reader()? {
        let (last, _) = chain.last_committed()?;
        let mut bad = None;
        for index in 1..=last {
            let Some(mine) = computed.get(usize::try_from(index - 1)?).map(|b| b.header) else {
                bad = Some(format!("batch {index}: on chain, but the journal closes only {} epochs", computed.len()));
                break;
            };
            let (root, data_hash) = chain.committed(index)?;
            if root != mine.new_root {
                bad = Some(format!("batch {index}: the chain has root {root}, the journal gives {}", mine.new_root));
                break;
            }
            let ours = posted[usize::try_from(index - 1)?];
            if data_hash != ours {
                bad = Some(format!(
                    "batch {index}: the chain has data hash {data_hash}, the batch data hashes to {ours}"
                ));
                break;
            }
        }
        match bad {
            Some(why) => {
                writeln!(out, "{why}")?;
                failed = true;
            }
            None => writeln!(out, "{last} committed roots match")?,
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
