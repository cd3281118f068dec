//! `l2x settle`: deploy the contract, commit a journal's batches, verify roots
//! (docs/SETTLEMENT.md). The flags; the bodies are [`l2x_node::settle`].
//!
//! ```text
//!  settle deploy --rpc-url U [--key-env V] (--token A | --test-token) [vault options]
//!                  → the contract's address (and the test token's)
//!  settle submit --journal J --batches B CHAIN [--key-env V]
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
//!  settle rebuild CHAIN
//!                  every account's leaf and value, and the root, from the chain alone (no
//!                  journal, no batch files), as JSON; exit 1 naming the batch that does
//!                  not rebuild
//!  settle deposit | force-withdraw | withdraw-claim | freeze | refund-queued | escape |
//!         queue | mint-test-usd | advance-time
//!                  what owners and anyone do with the vault on L1 (crate::owner)
//!  settle test-owner --account N
//!                  the public test key and address owning account N on embedded demo
//!                  chains (computed; reads nothing)
//!
//!  CHAIN = --chain-dir D (the embedded chain kept in D: `l2x serve` keeps its own in
//!          DATA_DIR/chain)  |  --rpc-url U --contract A (a node)
//! ```
//!
//! Keys come from the environment, never the command line: `--key-env V` names the variable
//! (default `L2X_SUBMITTER_KEY` for the submitter).
//!
//! Exit codes: docs/SETTLEMENT.md, "Command line".

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use alloy_primitives::Address;
use anyhow::Result;
use l2x_node::chain::ChainSpec;
use l2x_node::config::{MAX_CONFIRMATIONS, MAX_EPOCH_FILLS, MAX_EPOCH_MS};
use l2x_node::settle::{self, SubmitOptions, Verdict};
use l2x_settlement::chain::{Da, WEEK};
use l2x_settlement::epoch::Policy;

use crate::args::{SUBMITTER_KEY_ENV, key_from_env, non_empty_path, ranged};
use crate::owner;

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
    /// The chain named, if one was.
    pub(crate) fn spec(&self) -> Option<ChainSpec> {
        match (&self.chain_dir, &self.rpc_url, &self.contract) {
            (Some(dir), _, _) => Some(ChainSpec::Embedded { dir: dir.clone() }),
            (None, Some(url), Some(contract)) => Some(ChainSpec::Rpc { url: url.clone(), contract: contract.clone() }),
            _ => None,
        }
    }
}

/// The vault's parameters, fixed at deployment (docs/SETTLEMENT.md, "Contract").
#[derive(Clone, Debug, clap::Args)]
pub(crate) struct VaultArgs {
    /// The collateral token's address (an ERC-20 with 6 decimals).
    #[arg(long, required_unless_present = "test_token", conflicts_with = "test_token")]
    token: Option<Address>,
    /// Deploy l2x's test token (anyone may mint it: tests and demos only) and use it.
    #[arg(long)]
    test_token: bool,
    /// The least a deposit may be, in token base units (at least 1).
    #[arg(long, default_value_t = 1, value_parser = ranged(1, u64::MAX))]
    min_deposit: u64,
    /// Seconds from a claim's last credit until it can be paid.
    #[arg(long, default_value_t = 0, value_parser = ranged(0, MAX_DELAY))]
    claim_delay: u64,
    /// Seconds a queue entry may wait before anyone may freeze the contract.
    #[arg(long, default_value_t = WEEK, value_parser = ranged(1, MAX_DELAY))]
    forced_deadline: u64,
    /// Where the fee account is paid (default: the submitter).
    #[arg(long)]
    fee_recipient: Option<Address>,
    /// Where the insurance fund is paid when it escapes (default: the submitter).
    #[arg(long)]
    insurance_recipient: Option<Address>,
    /// Seconds after a freeze before the insurance fund may escape.
    #[arg(long, default_value_t = WEEK, value_parser = ranged(0, MAX_DELAY))]
    insurance_exit_delay: u64,
}

/// The longest delay the contract takes (2^32 − 1 seconds).
const MAX_DELAY: u64 = u32::MAX as u64;

impl VaultArgs {
    fn deployment(&self) -> settle::Deployment {
        settle::Deployment {
            token: self.token,
            min_deposit: self.min_deposit,
            claim_delay: self.claim_delay,
            forced_deadline: self.forced_deadline,
            fee_recipient: self.fee_recipient,
            insurance_recipient: self.insurance_recipient,
            insurance_exit_delay: self.insurance_exit_delay,
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
        /// The environment variable holding the submitter's private key (hex); its address
        /// becomes the contract's only submitter.
        #[arg(long, default_value = SUBMITTER_KEY_ENV)]
        key_env: String,
        #[command(flatten)]
        vault: VaultArgs,
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
        /// With --rpc-url: the environment variable holding the submitter's private key (hex).
        #[arg(long, default_value = SUBMITTER_KEY_ENV)]
        key_env: String,
        /// With --rpc-url: confirmations to wait for after each commit (1 to 1,000).
        #[arg(long, default_value_t = 1, value_parser = ranged(1, MAX_CONFIRMATIONS))]
        confirmations: u64,
        /// Where each batch's data is posted: `calldata` or `blobs` (EIP-4844).
        #[arg(long, default_value = "calldata", value_parser = str::parse::<Da>)]
        da: Da,
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
    /// Every account's leaf and value, and the root, rebuilt from the chain alone, as JSON.
    #[command(group(clap::ArgGroup::new("chain").args(["chain_dir", "rpc_url"]).required(true)))]
    Rebuild {
        /// The chain to rebuild from.
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
    /// Deposit USDC from the key's address to an account (or the insurance fund) through
    /// the vault's L1 queue, approving the vault first if needed.
    Deposit(owner::Deposit),
    /// As an account's owner, ask on L1 to withdraw USDC from it (the batches must honour
    /// or refuse it by the deadline, else anyone may freeze the vault).
    ForceWithdraw(owner::ForceWithdraw),
    /// Pay the key's address everything the vault credited to it (withdrawals, refunds,
    /// escapes).
    WithdrawClaim(owner::Sender),
    /// Freeze the vault (anyone, once a queue entry has waited past the deadline).
    Freeze(owner::Sender),
    /// Once frozen, credit the deposits no batch consumed back to their depositors.
    RefundQueued(owner::RefundQueued),
    /// Once frozen, leave with an account's equity at the last committed root, proven
    /// from the chain alone (or from batch files with --batches).
    Escape(owner::Escape),
    /// The vault's L1 queue: its entries, what the batches consumed, the freeze's clock.
    Queue(owner::Queue),
    /// Who owns an account on L1 (`owners(account)`): check before a first deposit.
    Owner(owner::OwnerOf),
    /// Mint the vault's token to an address, if it is l2x's test token (tests, demos).
    MintTestUsd(owner::MintTestUsd),
    /// Move the embedded chain's clock on (tests, the documented escape sequence).
    AdvanceTime(owner::AdvanceTime),
    /// The public test key and address that own an account on an embedded demo chain, or
    /// that the fee account and the insurance fund escape to (demos and tests only: anyone
    /// can compute them).
    TestOwner {
        /// The account, or `fees` / `insurance` (their recipient).
        #[arg(long, value_parser = crate::args::holder)]
        account: u64,
    },
}

/// Exit 0 when everything compared agrees, 1 when something differs.
pub(crate) fn exit(verdict: Verdict) -> ExitCode {
    if verdict.agrees() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

pub(crate) fn settle(cmd: SettleCmd) -> Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let verdict = match cmd {
        SettleCmd::Deploy { rpc_url, key_env, vault } => {
            let key = key_from_env(&key_env, "the submitter")?;
            settle::deploy(&mut out, &rpc_url, &key, &vault.deployment())?;
            Verdict::Agrees
        }
        SettleCmd::Submit { journal, batches, chain, key_env, confirmations, da, epochs } => {
            // Only a node needs a key: the embedded chain's transactions are not signed.
            let key = match chain.spec() {
                Some(ChainSpec::Rpc { .. }) => Some(key_from_env(&key_env, "the submitter")?),
                _ => None,
            };
            let options = SubmitOptions { key: key.as_deref(), confirmations, policy: epochs.policy(), da };
            settle::submit(&mut out, &journal, &batches, chain.spec().as_ref(), options)?;
            Verdict::Agrees
        }
        SettleCmd::Status { batches, chain } => settle::status(&mut out, &batches, chain.spec().as_ref())?,
        SettleCmd::Prove { batches, account, batch, chain } => {
            settle::prove(&mut out, &batches, account, batch, chain.spec().as_ref())?
        }
        SettleCmd::Rebuild { chain } => {
            let spec = chain.spec().ok_or(l2x_node::NodeError::NoChain)?;
            l2x_node::rebuild::rebuild(&mut out, &spec)?
        }
        SettleCmd::Verify { journal, batches, chain, epochs } => {
            settle::verify(&mut out, &journal, batches.as_deref(), chain.spec().as_ref(), epochs.policy())?
        }
        SettleCmd::Deposit(a) => owner::deposit(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::ForceWithdraw(a) => owner::force_withdraw(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::WithdrawClaim(a) => owner::withdraw_claim(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::Freeze(a) => owner::freeze(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::RefundQueued(a) => owner::refund_queued(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::Escape(a) => owner::escape(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::Queue(a) => owner::queue(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::Owner(a) => owner::owner(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::MintTestUsd(a) => owner::mint_test_usd(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::AdvanceTime(a) => owner::advance_time(&mut out, &a).map(|()| Verdict::Agrees)?,
        SettleCmd::TestOwner { account } if account >= u64::MAX - 1 => {
            let (key, address) = l2x_settlement::embedded::recipient_key();
            writeln!(out, "owner {address} key {key}")?;
            writeln!(
                out,
                "a public test key (keccak256(\"l2x-embedded-recipient\")): the fee account and the insurance fund \
                 escape to it on the embedded chain of l2x demos and tests only; never send real funds to it"
            )?;
            Verdict::Agrees
        }
        SettleCmd::TestOwner { account } => {
            let (key, address) = l2x_node::funding::owner_key(l2x_types::AccountId(account));
            writeln!(out, "owner {address} key {key}")?;
            writeln!(
                out,
                "a public test key (keccak256(\"l2x-embedded-owner\" || account as 8 bytes big-endian)): it owns \
                 account {account} on the embedded chain of l2x demos and tests only; never send real funds to it"
            )?;
            Verdict::Agrees
        }
    };
    Ok(exit(verdict))
}
