//! The demo's money through L1: after the trading, a maker withdraws over the wire; after
//! the stop, its owner claims the withdrawal from the vault on the embedded chain, and the
//! summary prints the token movements.
//!
//! ```text
//!  node running:  account 1 (a maker, 1,000,000 USDC): Withdraw 1,000 USDC ─▶ Withdrawn
//!                 (the collateral after it); a second later a tick is sequenced, so the
//!                 epoch holding the withdrawal closes (its time limit is a second)
//!  Node::stop:    the last settlement pass commits that epoch's batch; the vault credits
//!                 the withdrawal to the account's L1 owner (claim delay 0 on this chain)
//!  after it:      the chain opened for writing · deposits read from the vault's queue ·
//!                 the vault's balance and books (l2Total, pendingDeposits, totalClaimable)
//!                 · owner: claim() · the owner's token balance after it
//! ```
//!
//! The demo fails unless the vault holds exactly `l2Total + pendingDeposits +
//! totalClaimable` before the claim and the claim pays the owner exactly the withdrawn
//! amount (a withdrawal left out of the committed batches has nothing to claim).

#![allow(clippy::disallowed_methods, reason = "the demo waits a wall-clock second for the withdrawal's epoch to close")]

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use alloy_primitives::{Address, U256};
use alloy_sol_types::SolCall;
use l2x_gateway::server::Control;
use l2x_protocol::client::{Client, Options as ClientOptions};
use l2x_protocol::codec::{ClientMsg, Report, ServerMsg};
use l2x_settlement::chain::abi::{L2xSettlement as Vault, L2xTestUSD as Token};
use l2x_settlement::chain::{ChainError, QueueReader};
use l2x_settlement::embedded::EmbeddedChain;
use l2x_settlement::queue::Kind;
use l2x_types::{AccountId, Amount, Command};

use super::DemoError;
use crate::funding::owner_of;
use crate::keys::demo_key;

/// The account (and key) that withdraws: maker 1, with far more free margin than it uses.
pub(super) const WITHDRAWER: u8 = 1;
/// What it withdraws, micro-USDC (1,000 USDC).
pub(super) const WITHDRAWN: i64 = 1_000 * 1_000_000;
/// The withdrawal's request id.
const REQUEST_ID: u64 = 1;

/// A withdrawal the engine accepted.
#[derive(Clone, Copy, Debug)]
pub(super) struct Withdrawal {
    pub(super) account: AccountId,
    /// Micro-USDC.
    pub(super) amount: i64,
    /// The account's collateral after it, micro-USDC.
    pub(super) collateral: i64,
}

/// Account [`WITHDRAWER`] withdraws [`WITHDRAWN`] over the wire and gets its `Withdrawn`;
/// then, a second later, a tick through `control` closes the epoch holding it (an epoch
/// closes at the first command a second after it opened), so the node's last settlement
/// pass commits it.
///
/// # Errors
/// [`DemoError::WithdrawalRefused`]; the session or the pipeline fails.
pub(super) fn withdraw(addr: SocketAddr, control: &Control) -> Result<Withdrawal, DemoError> {
    let mut client = Client::connect(addr, &demo_key(WITHDRAWER), ClientOptions::default())?;
    client.send(&ClientMsg::Withdraw { request_id: REQUEST_ID, amount: Amount(WITHDRAWN) })?;
    let collateral = loop {
        let ServerMsg::Report { report, .. } = client.recv()? else { continue };
        match report {
            Report::Withdrawn { request_id: REQUEST_ID, collateral, .. } => break collateral.0,
            Report::Rejected { cid, reason, .. } if cid.0 == REQUEST_ID => {
                return Err(DemoError::WithdrawalRefused { reason });
            }
            _ => {}
        }
    };
    client.logout()?;
    std::thread::sleep(Duration::from_millis(1_100));
    control.submit(Command::Tick)?;
    Ok(Withdrawal { account: AccountId(u64::from(WITHDRAWER)), amount: WITHDRAWN, collateral })
}

/// The vault's token balance and its books.
struct Books {
    balance: U256,
    l2_total: U256,
    pending_deposits: U256,
    total_claimable: U256,
}

impl Books {
    fn read(chain: &EmbeddedChain) -> Result<Books, ChainError> {
        let vault = chain.address();
        Ok(Books {
            balance: balance(chain, vault)?,
            l2_total: view(chain, vault, &Vault::l2TotalCall {})?,
            pending_deposits: view(chain, vault, &Vault::pendingDepositsCall {})?,
            total_claimable: view(chain, vault, &Vault::totalClaimableCall {})?,
        })
    }

    /// Whether the vault holds exactly what it owes.
    fn balanced(&self) -> bool {
        self.l2_total
            .checked_add(self.pending_deposits)
            .and_then(|s| s.checked_add(self.total_claimable))
            .is_some_and(|owed| owed == self.balance)
    }
}

/// Opens the embedded chain in `chain_dir` (the node stopped), prints the deposits, the
/// withdrawal and the vault's books, claims the withdrawal from the account's owner and
/// prints the owner's balance after it. Returns whether the vault held exactly what it
/// owes and the claim paid exactly the withdrawn amount.
///
/// # Errors
/// [`DemoError::L1`] if the chain cannot be opened or read, or the claim is refused.
pub(super) fn claim(out: &mut dyn Write, chain_dir: &Path, w: &Withdrawal) -> Result<bool, DemoError> {
    let mut chain = EmbeddedChain::open(chain_dir).map_err(DemoError::L1)?;
    let (count, deposited) = deposits(&mut chain).map_err(DemoError::L1)?;
    writeln!(out, "\nmoney through L1 (the test token, USDC, on the embedded chain):")?;
    writeln!(
        out,
        "  deposited through the vault: {} USDC in {count} deposits, credited from its queue",
        usdc(deposited)
    )?;
    writeln!(
        out,
        "  account {} withdrew {} USDC over the wire: Withdrawn, collateral {} USDC after",
        w.account.0,
        Amount(w.amount),
        Amount(w.collateral)
    )?;
    let books = Books::read(&chain).map_err(DemoError::L1)?;
    let balanced = books.balanced();
    writeln!(
        out,
        "  vault before the claim: holds {} USDC; l2Total {} + pendingDeposits {} + totalClaimable {} {}",
        usdc(books.balance),
        usdc(books.l2_total),
        usdc(books.pending_deposits),
        usdc(books.total_claimable),
        if balanced { "(balanced)" } else { "(MISMATCH: the vault does not hold what it owes)" },
    )?;
    let owner = owner_of(w.account);
    let before = balance(&chain, owner).map_err(DemoError::L1)?;
    chain.transact(owner, chain.address(), Vault::claimCall {}.abi_encode()).map_err(DemoError::L1)?;
    let after = balance(&chain, owner).map_err(DemoError::L1)?;
    let paid = after.checked_sub(before).unwrap_or_default();
    let exact = paid == U256::from(w.amount.unsigned_abs());
    writeln!(
        out,
        "  owner {owner} of account {} claimed: its balance {} → {} USDC{}",
        w.account.0,
        usdc(before),
        usdc(after),
        if exact { "" } else { " (MISMATCH: not the withdrawn amount)" },
    )?;
    Ok(balanced && exact)
}

/// How many deposits the vault's queue holds and their total, micro-USDC.
fn deposits(chain: &mut EmbeddedChain) -> Result<(u64, U256), ChainError> {
    let block = chain.block();
    let (mut count, mut total) = (0, U256::ZERO);
    for index in 1..=chain.queue_length(block)? {
        let entry = chain.entry(index, block)?;
        if entry.kind == Kind::Deposit {
            count += 1;
            total += U256::from(entry.amount);
        }
    }
    Ok((count, total))
}

fn view<C: SolCall>(chain: &EmbeddedChain, to: Address, call: &C) -> Result<C::Return, ChainError> {
    let out = chain.call(to, call.abi_encode())?;
    C::abi_decode_returns(&out).map_err(|e| ChainError::Decode { what: "reading the vault", source: Box::new(e) })
}

fn balance(chain: &EmbeddedChain, holder: Address) -> Result<U256, ChainError> {
    view(chain, chain.token(), &Token::balanceOfCall { holder })
}

/// Micro-USDC as an exact decimal string.
fn usdc(micro: U256) -> String {
    i128::try_from(micro).map_or_else(|_| format!("{micro} micro-USDC"), Amount::format_micro)
}
