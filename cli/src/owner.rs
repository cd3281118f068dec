//! `l2x settle deposit | force-withdraw | withdraw-claim | freeze | refund-queued | escape |
//! queue | mint-test-usd | advance-time`: what account owners and anyone else do with the
//! vault on L1, without the operator (docs/SETTLEMENT.md, "Command line"). The flags; the
//! bodies are [`l2x_node::owner`].
//!
//! ```text
//!  deposit        --account N|insurance --amount USDC [--gift] CHAIN [--key-env V]
//!  force-withdraw --account N --amount USDC CHAIN [--key-env V]      (the owner)
//!  withdraw-claim CHAIN [--key-env V]                                (pays the key's address)
//!  freeze         CHAIN [--key-env V]                                (anyone, once overdue)
//!  refund-queued  [--count N] CHAIN [--key-env V]                    (anyone, once frozen)
//!  escape         --account N|insurance|fees [--batches DIR] CHAIN [--key-env V]
//!                                       (proof from the chain alone, or from batch files)
//!  queue          CHAIN [--from I] [--limit N] [--json]              (read only, no key)
//!  owner          --account N CHAIN                                  (read only, no key)
//!  mint-test-usd  --to ADDR --amount USDC CHAIN [--key-env V]        (the test token only)
//!  advance-time   --chain-dir DIR --seconds S                        (the embedded chain only)
//! ```
//!
//! The key is read from the environment variable `--key-env` names (default `L2X_KEY`);
//! its address is who sends, on a node (it signs) and on the embedded chain (which signs
//! nothing) alike. A node's transaction's hash is printed on stderr as soon as it is sent
//! (`sent tx 0x… (waiting for its receipt)`). Amounts are USDC as exact decimals, turned into token base units
//! (micro-USDC) here.

use std::io::Write;
use std::path::PathBuf;

use alloy_primitives::Address;
use anyhow::{Context, Result};
use l2x_node::chain::ChainSpec;
use l2x_node::owner::{self, Access, ProofSource, QueueOptions};
use l2x_settlement::chain::{L1User, address_of};

use crate::args::{OWNER_KEY_ENV, holder, key_from_env, non_empty_path, ranged, usdc};
use crate::settle::ChainArgs;

/// The chain and the key of a command that sends.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Sender {
    #[command(flatten)]
    chain: ChainArgs,
    /// The environment variable holding the sender's private key (hex); its address sends,
    /// on a node and on the embedded chain alike.
    #[arg(long, default_value = OWNER_KEY_ENV)]
    key_env: String,
}

/// `settle deposit`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Deposit {
    /// The account to deposit to, or `insurance` (the insurance fund).
    #[arg(long, value_parser = holder)]
    account: u64,
    /// USDC, an exact decimal with at most 6 decimals (`1000`, `0.5`).
    #[arg(long, value_parser = usdc)]
    amount: u64,
    /// Deposit even if the account is owned by another address (the deposit is then a
    /// gift to that owner).
    #[arg(long)]
    gift: bool,
    #[command(flatten)]
    sender: Sender,
}

/// `settle owner`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct OwnerOf {
    /// The account.
    #[arg(long)]
    account: u64,
    #[command(flatten)]
    chain: ChainArgs,
}

/// `settle force-withdraw`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct ForceWithdraw {
    /// The account (the key must be its owner on L1).
    #[arg(long)]
    account: u64,
    /// USDC, an exact decimal with at most 6 decimals.
    #[arg(long, value_parser = usdc)]
    amount: u64,
    #[command(flatten)]
    sender: Sender,
}

/// `settle refund-queued`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct RefundQueued {
    /// The most queue entries to go through (1 to 100,000).
    #[arg(long, default_value_t = 1_000, value_parser = ranged(1, 100_000))]
    count: u64,
    #[command(flatten)]
    sender: Sender,
}

/// `settle escape`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Escape {
    /// The account to escape with, or `fees` / `insurance` (their recipients, after the
    /// insurance exit delay).
    #[arg(long, value_parser = holder)]
    account: u64,
    /// The batch files the proof is rebuilt from (they must hold the chain's last batch);
    /// without it, the proof is rebuilt from the chain alone.
    #[arg(long, value_parser = non_empty_path)]
    batches: Option<PathBuf>,
    #[command(flatten)]
    sender: Sender,
}

/// `settle queue`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct Queue {
    #[command(flatten)]
    chain: ChainArgs,
    /// The first entry to list.
    #[arg(long, default_value_t = 1, value_parser = ranged(1, u64::MAX))]
    from: u64,
    /// The most entries to list (1 to 100,000).
    #[arg(long, default_value_t = 1_000, value_parser = ranged(1, 100_000))]
    limit: u64,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// `settle mint-test-usd`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct MintTestUsd {
    /// Who receives the tokens.
    #[arg(long)]
    to: Address,
    /// USDC, an exact decimal with at most 6 decimals.
    #[arg(long, value_parser = usdc)]
    amount: u64,
    #[command(flatten)]
    chain: ChainArgs,
    /// With --rpc-url: the environment variable holding the key that sends the mint (on the
    /// embedded chain the genesis's deployer sends it, and no key is read).
    #[arg(long, default_value = OWNER_KEY_ENV)]
    key_env: String,
}

/// `settle advance-time`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct AdvanceTime {
    /// The embedded chain kept in this directory (a node's clock is its own).
    #[arg(long, value_parser = non_empty_path)]
    chain_dir: PathBuf,
    /// Seconds to move its time on by.
    #[arg(long, value_parser = ranged(0, u64::from(u32::MAX)))]
    seconds: u64,
}

/// The chain named, or a usage error (exit 2) saying how to name one.
fn chain(args: &ChainArgs) -> ChainSpec {
    args.spec().unwrap_or_else(|| {
        clap::Error::raw(
            clap::error::ErrorKind::MissingRequiredArgument,
            "name a chain: --chain-dir DIR, or --rpc-url URL --contract ADDRESS\n",
        )
        .exit()
    })
}

/// The vault as the holder of the key in `sender.key_env`.
fn user(sender: &Sender, whose: &str, access: Access) -> Result<L1User> {
    let spec = chain(&sender.chain);
    let key = key_from_env(&sender.key_env, whose)?;
    address_of(&key).with_context(|| format!("the environment variable {}", sender.key_env))?;
    let mut user = owner::open(&spec, Some(&key), access)?;
    tell_broadcasts(&mut user);
    Ok(user)
}

/// Each transaction's hash on stderr as soon as the node accepted it: if its receipt is
/// then not seen (exit 1), the transaction may still be mined, and this says which.
fn tell_broadcasts(user: &mut L1User) {
    user.on_broadcast(|tx| eprintln!("sent tx {tx} (waiting for its receipt)"));
}

pub(crate) fn deposit(out: &mut dyn Write, a: &Deposit) -> Result<()> {
    let mut user = user(&a.sender, "the depositor", Access::Send)?;
    Ok(owner::deposit(out, &mut std::io::stderr(), &mut user, a.account, a.amount, a.gift)?)
}

pub(crate) fn force_withdraw(out: &mut dyn Write, a: &ForceWithdraw) -> Result<()> {
    let mut user = user(&a.sender, "the owner", Access::Send)?;
    Ok(owner::force_withdraw(out, &mut user, a.account, a.amount)?)
}

pub(crate) fn withdraw_claim(out: &mut dyn Write, sender: &Sender) -> Result<()> {
    let mut user = user(sender, "the claimant", Access::Send)?;
    Ok(owner::withdraw_claim(out, &mut user)?)
}

pub(crate) fn freeze(out: &mut dyn Write, sender: &Sender) -> Result<()> {
    let mut user = user(sender, "the sender", Access::Send)?;
    Ok(owner::freeze(out, &mut user)?)
}

pub(crate) fn refund_queued(out: &mut dyn Write, a: &RefundQueued) -> Result<()> {
    let mut user = user(&a.sender, "the sender", Access::Send)?;
    Ok(owner::refund_queued(out, &mut user, a.count)?)
}

pub(crate) fn escape(out: &mut dyn Write, a: &Escape) -> Result<()> {
    let source = match &a.batches {
        Some(dir) => ProofSource::BatchFiles(dir.clone()),
        None => ProofSource::Chain(chain(&a.sender.chain)),
    };
    let mut user = user(&a.sender, "the owner", Access::Send)?;
    Ok(owner::escape(out, &mut user, a.account, &source)?)
}

pub(crate) fn queue(out: &mut dyn Write, a: &Queue) -> Result<()> {
    let user = owner::open(&chain(&a.chain), None, Access::Read)?;
    Ok(owner::queue(out, &user, QueueOptions { from: a.from, limit: a.limit, json: a.json })?)
}

pub(crate) fn owner(out: &mut dyn Write, a: &OwnerOf) -> Result<()> {
    let user = owner::open(&chain(&a.chain), None, Access::Read)?;
    Ok(owner::owner(out, &user, a.account)?)
}

pub(crate) fn mint_test_usd(out: &mut dyn Write, a: &MintTestUsd) -> Result<()> {
    let spec = chain(&a.chain);
    // Only a node needs a key: on the embedded chain the deployer mints.
    let key = match spec {
        ChainSpec::Rpc { .. } => Some(key_from_env(&a.key_env, "the sender")?),
        ChainSpec::Embedded { .. } => None,
    };
    if let Some(key) = &key {
        address_of(key).with_context(|| format!("the environment variable {}", a.key_env))?;
    }
    let mut user = owner::open(&spec, key.as_deref(), Access::Test)?;
    tell_broadcasts(&mut user);
    Ok(owner::mint_test_usd(out, &mut user, a.to, a.amount)?)
}

pub(crate) fn advance_time(out: &mut dyn Write, a: &AdvanceTime) -> Result<()> {
    Ok(owner::advance_time(out, &a.chain_dir, a.seconds)?)
}
