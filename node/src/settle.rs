//! Settlement from the outside: deploy the contract, commit a journal's batches, and verify
//! roots — the bodies of `l2x settle deploy|submit|status|prove|verify` and of
//! `l2x replay --verify-roots` (docs/SETTLEMENT.md, "Command line"; docs/REPLAY.md).
//!
//! ```text
//!  deploy(url, key)                          → the contract's address
//!  submit(journal, batches, chain, key)      recompute the epochs, write/check batch
//!                                            files, commit what the chain lacks
//!  verify(journal, [batches], [chain])       recompute every root; compare with the batch
//!                                            files and the chain; Differs naming the first
//!                                            batch that differs
//!  status(batches, [chain])                  last local and on-chain batch, lag; Differs
//!                                            if the chain's copy of the last batch both
//!                                            have differs
//!  prove(batches, account, [batch], [chain]) the leaf (or its absence) and its proof as
//!                                            JSON, from the batch files alone; checked
//!                                            against the chain's committed root and, for a
//!                                            leaf, by the contract; Differs if the chain
//!                                            disagrees
//! ```
//!
//! Every command that reads batch files loads the whole directory through
//! [`BatchSet::load`] first (every file and their sequence checked, errors naming the file
//! and the field); the checks themselves are in `l2x_settlement::audit`: this module runs
//! them and writes what they found. The command line maps a [`Verdict`] to its exit code.

use std::io::Write;
use std::path::Path;

use alloy_primitives::Address;
use l2x_risk::Ledger;
use l2x_settlement::audit;
use l2x_settlement::batch_set::BatchSet;
use l2x_settlement::chain::{Chain, Config, Da, RpcChain};
use l2x_settlement::epoch::Policy;
use l2x_settlement::submitter::Submitter;
use serde_json::json;

use crate::chain::{self, ChainSpec};
use crate::error::{NodeError, Result};

/// What a check found: everything compared agrees, or something differs (and was said).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything compared agrees.
    Agrees,
    /// Something differs; what, was written.
    Differs,
}

impl Verdict {
    fn of(agrees: bool) -> Verdict {
        if agrees { Verdict::Agrees } else { Verdict::Differs }
    }

    /// Whether everything agreed.
    pub fn agrees(self) -> bool {
        self == Verdict::Agrees
    }
}

/// What `settle deploy` fixes in the contract besides its submitter (the contract's
/// `Config`, docs/SETTLEMENT.md "Contract").
#[derive(Clone, Copy, Debug)]
pub struct Deployment {
    /// The collateral token; `None`: deploy the test token first and use it.
    pub token: Option<Address>,
    /// The least deposit, in base units.
    pub min_deposit: u64,
    /// Seconds from a claim's last credit until it can be paid.
    pub claim_delay: u64,
    /// Seconds a queue entry may wait before anyone may freeze the contract.
    pub forced_deadline: u64,
    /// Where the fee account is paid (`None`: the submitter).
    pub fee_recipient: Option<Address>,
    /// Where the insurance fund escapes to (`None`: the submitter).
    pub insurance_recipient: Option<Address>,
    /// Seconds after a freeze before the insurance fund may escape.
    pub insurance_exit_delay: u64,
}

/// `settle deploy`: deploys the settlement contract (the committed artifact) with `key`
/// as its only submitter, over `deployment.token` or a fresh test token; writes the
/// contract's address, then `token ADDRESS` for a test token it deployed.
///
/// # Errors
/// The node refused or could not be reached (a token without 6 decimals makes the
/// constructor revert); writing failed.
pub fn deploy(out: &mut dyn Write, rpc_url: &str, key: &str, deployment: &Deployment) -> Result<()> {
    let submitter = l2x_settlement::chain::submitter_of(key)?;
    let (token, deployed_token) = match deployment.token {
        Some(token) => (token, false),
        None => (RpcChain::deploy_test_usd(rpc_url, key)?, true),
    };
    let config = Config {
        submitter,
        token,
        minDeposit: deployment.min_deposit,
        claimDelay: deployment.claim_delay,
        forcedDeadline: deployment.forced_deadline,
        feeRecipient: deployment.fee_recipient.unwrap_or(submitter),
        insuranceRecipient: deployment.insurance_recipient.unwrap_or(submitter),
        insuranceExitDelay: deployment.insurance_exit_delay,
    };
    let address = RpcChain::deploy(rpc_url, key, &config)?;
    writeln!(out, "{address}")?;
    if deployed_token {
        writeln!(out, "token {token}")?;
    }
    Ok(())
}

/// What `settle submit` needs besides the chain.
#[derive(Clone, Copy, Debug)]
pub struct SubmitOptions<'a> {
    /// The submitter's private key (hex), for a node.
    pub key: Option<&'a str>,
    /// Confirmations to wait for after each commit, on a node.
    pub confirmations: u64,
    /// How epochs close.
    pub policy: Policy,
    /// Where each batch's data is posted (`--da`).
    pub da: Da,
}

/// `settle submit`: recomputes the journal's epochs, writes their batch files into
/// `batches`, commits what `chain` lacks; writes what it did.
///
/// # Errors
/// [`NodeError::NoChain`], [`NodeError::NoKey`]; the chain, the journal or the batch files
/// refused.
pub fn submit(
    out: &mut dyn Write,
    journal: &Path,
    batches: &Path,
    chain: Option<&ChainSpec>,
    options: SubmitOptions<'_>,
) -> Result<()> {
    let mut chain = chain.ok_or(NodeError::NoChain)?.writer(options.key, options.confirmations)?;
    let mut sub = Submitter::new(journal.to_path_buf(), batches.to_path_buf(), options.policy, Ledger::default())
        .posting(options.da);
    let synced = sub.sync(chain.as_mut())?;
    writeln!(
        out,
        "{} epochs; the chain had {}, committed {}; last root {}",
        synced.epochs, synced.committed_before, synced.committed, synced.root
    )?;
    Ok(())
}

/// The batch files of `dir`, every one checked ([`BatchSet::load`]).
fn load(dir: &Path) -> Result<BatchSet> {
    // Every error names the file (or the directory, for a missing batch).
    Ok(BatchSet::load(dir)?)
}

/// `settle status`: the last local batch and the last one on chain, and the lag between
/// them. [`Verdict::Differs`] if the chain's copy of the last batch both have differs.
///
/// # Errors
/// The batch files do not load; the chain cannot be read; writing failed.
pub fn status(out: &mut dyn Write, batches: &Path, chain: Option<&ChainSpec>) -> Result<Verdict> {
    let set = load(batches)?;
    let mut reader = chain::reader(chain)?;
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
    let Some(c) = status.chain else { return Ok(Verdict::Agrees) };
    writeln!(out, "chain: last committed {} (root {})", c.last, c.root)?;
    let local = status.local.map_or(0, |h| h.index);
    if c.last > local {
        writeln!(out, "lag: none; the chain has {} batches the files do not", c.last - local)?;
    } else {
        writeln!(out, "lag: {} batches", local - c.last)?;
    }
    match c.checked {
        Ok(0) => Ok(Verdict::Agrees),
        Ok(k) => {
            writeln!(out, "batch {k}: the chain's root and commitment are the batch file's")?;
            Ok(Verdict::Agrees)
        }
        Err(d) => {
            writeln!(out, "{d}")?;
            Ok(Verdict::Differs)
        }
    }
}

/// `settle prove`: `account`'s leaf and its proof at `batch` (default: the last), as JSON,
/// rebuilt from the batch files. [`Verdict::Differs`] if a chain was named and disagrees.
///
/// # Errors
/// The batch files do not load; no such batch; the chain cannot be read; the proof does
/// not verify against its own root (a bug); a value that does not fit.
pub fn prove(
    out: &mut dyn Write,
    batches: &Path,
    account: u64,
    batch: Option<u64>,
    chain: Option<&ChainSpec>,
) -> Result<Verdict> {
    let set = load(batches)?;
    let mut reader = chain::reader(chain)?;
    let proven = audit::prove(&set, account, batch, reader.as_deref_mut().map(|c| c as &mut dyn Chain))?;
    if !proven.verified() {
        return Err(NodeError::ProofDoesNotVerify);
    }
    // A value that does not fit is an error, before anything is printed.
    let value = proven.value()?;
    let json = prove_json(&proven, value);
    writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
    Ok(Verdict::of(proven.chain.as_ref().is_none_or(|c| c.agrees.is_ok())))
}

/// What a proof says, as JSON (docs/SETTLEMENT.md, "Command line").
fn prove_json(p: &audit::Proven, value: Option<audit::Value>) -> serde_json::Value {
    let batch = p.state.index;
    let markets = &p.state.markets;
    let leaf = p.leaf.as_ref().map(|l| {
        json!({
            "collateral": l.collateral,
            "positions": positions_json(l),
            "abi": format!("0x{}", alloy_primitives::hex::encode(l.encode())),
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
        "markets": markets_json(markets),
        "siblings": p.proof.siblings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "absent_other_leaf": p.proof.other.map(|(k, v)| json!({"key": k, "value": v.to_string()})),
        "verified": p.verified(),
        "chain_root": p.chain.as_ref().map(|c| c.root.to_string()),
        "verified_by_contract": p.chain.as_ref().and_then(|c| c.by_contract),
        "disagreement": p.chain.as_ref().and_then(|c| c.agrees.as_ref().err()).map(ToString::to_string),
        "summary": prove_summary(p),
    })
}

/// A leaf's positions as JSON (`instrument`, `size`, `cost`, `funding_index`): the same in
/// `prove` and `rebuild` (docs/SETTLEMENT.md, "Command line").
pub(crate) fn positions_json(leaf: &l2x_settlement::leaf::AccountLeaf) -> serde_json::Value {
    let positions = leaf.positions.iter().map(|p| {
        json!({
            "instrument": p.instrument,
            "size": p.size,
            "cost": p.cost.to_string(),
            "funding_index": p.fundingIndex.to_string(),
        })
    });
    serde_json::Value::Array(positions.collect())
}

/// A market state as JSON (`instrument`, `mark`, `funding_index`, `tick_value`), as
/// `prove` and `rebuild` print it.
pub(crate) fn markets_json(markets: &[l2x_settlement::market::Market]) -> serde_json::Value {
    let markets = markets.iter().map(|m| {
        json!({
            "instrument": m.instrument,
            "mark": m.mark,
            "funding_index": m.fundingIndex.to_string(),
            "tick_value": m.tickValue,
        })
    });
    serde_json::Value::Array(markets.collect())
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

/// `l2x replay DIR --verify-roots`: [`verify`] with the batch files in `batches`, or by
/// default in `DIR/batches` if that is a directory (the node's own place for them).
///
/// # Errors
/// As [`verify`].
pub fn verify_roots(
    out: &mut dyn Write,
    journal: &Path,
    batches: Option<&Path>,
    chain: Option<&ChainSpec>,
    policy: Policy,
) -> Result<Verdict> {
    let default = journal.join("batches");
    let batches = batches.or_else(|| default.is_dir().then_some(default.as_path()));
    verify(out, journal, batches, chain, policy)
}

/// Root verification — `settle verify`, and `replay --verify-roots`: recomputes every epoch
/// of the journal under `policy` and compares with the batch files and the chain.
/// [`Verdict::Differs`] naming (in what it writes) the first batch that differs.
///
/// # Errors
/// The batch files do not load; the chain cannot be read; the journal cannot be replayed;
/// writing failed.
pub fn verify(
    out: &mut dyn Write,
    journal: &Path,
    batches: Option<&Path>,
    chain: Option<&ChainSpec>,
    policy: Policy,
) -> Result<Verdict> {
    let set = batches.map(load).transpose()?;
    let mut reader = chain::reader(chain)?;
    let v = audit::verify(
        journal,
        policy,
        &Ledger::default(),
        set.as_ref(),
        reader.as_deref_mut().map(|c| c as &mut dyn Chain),
    )
    .map_err(|source| NodeError::Verify { journal: journal.to_path_buf(), source })?;
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
    Ok(Verdict::of(v.agrees()))
}
