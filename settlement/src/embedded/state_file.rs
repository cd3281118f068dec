//! The embedded chain's state file, `chain.l2xc`, format 2: every account of the EVM
//! state, in one canonical encoding, checksummed, replaced whole on every block.
//!
//! ```text
//!  offset  size  field
//!       0     8  magic "L2XCHAIN"
//!       8     4  version u32 = 2
//!      12     8  block u64              the latest block's number (0: the genesis alone)
//!      20     8  timestamp u64          the chain's time: the latest block's timestamp,
//!                                        moved on by advance_time since (seconds)
//!      28     8  genesis timestamp u64  block 0's (the genesis is rebuilt at it)
//!      36     4  accounts u32
//!      40        account × accounts, strictly ascending by address:
//!                  address 20 ‖ nonce u64 ‖ balance u256 ‖ code hash 32 ‖ slots u32
//!                  ‖ (slot 32 ‖ value 32) × slots, strictly ascending by slot
//!  end−32    32  keccak-256 of every byte before it
//! ```
//!
//! All integers are big-endian, like the EVM's words.
//!
//! # Canonical form
//!
//! One chain state has exactly one file: accounts and slots sorted (never a hash map's
//! order), a slot whose value is zero left out (the EVM reads it as zero), an empty account
//! (EIP-161: nonce 0, balance 0, no code, no storage) left out. A file that breaks any of
//! these is refused even with a good checksum, so that [`ChainState::decode`] followed by
//! [`ChainState::encode`] gives the same bytes.
//!
//! # What is not here
//!
//! Code: the genesis is rebuilt on open and gives every contract its code; the file's code
//! hashes must be the genesis's (the parent module checks that). Events, receipts and old
//! blocks: the chain keeps its state, not its history.
//!
//! # Errors, in the order they are looked for
//!
//! Too short for the fixed fields and the checksum; not the magic; another version
//! (format 1, the chain of the settlement contract alone, is not migrated); a checksum that
//! does not match; then, in a file whose checksum matches (one written wrong, not damaged),
//! a field cut short, accounts or slots out of order, a zero slot, an empty account, bytes
//! after the last account, a timestamp before `genesis timestamp + block` (each block is at
//! least a second after the one before). Each names its offset and field.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use alloy::primitives::{Address, B256, U256, keccak256};
use revm::primitives::KECCAK_EMPTY;

use super::evm::Db;
use super::state_error;
use crate::chain::Result;

/// The state file's name inside the chain directory.
pub const STATE_FILE: &str = "chain.l2xc";

/// The state file's format version this build writes and reads.
pub const VERSION: u32 = 2;

const MAGIC: &[u8; 8] = b"L2XCHAIN";
/// Magic, version, block, timestamp, genesis timestamp, account count.
const FIXED: usize = 8 + 4 + 8 + 8 + 8 + 4;
const CHECKSUM: usize = 32;

/// Everything the embedded chain is, besides the code its genesis gives it: what its state
/// file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainState {
    /// The latest block's number (0: the genesis alone).
    pub block: u64,
    /// The chain's time in seconds: the latest block's timestamp, moved on by
    /// `advance_time` since. Views run at it; the next block is at least a second later.
    pub timestamp: u64,
    /// Block 0's timestamp.
    pub genesis_timestamp: u64,
    /// Every account that is not empty, by address.
    pub accounts: BTreeMap<Address, AccountState>,
}

/// One account of the EVM state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountState {
    /// Transactions sent (contracts: 1 plus contracts created).
    pub nonce: u64,
    /// Wei.
    pub balance: U256,
    /// keccak-256 of its code (`KECCAK_EMPTY`: none).
    pub code_hash: B256,
    /// Every storage slot whose value is not zero.
    pub storage: BTreeMap<U256, U256>,
}

impl AccountState {
    /// Empty in EIP-161's sense (and without storage): an account the state leaves out.
    pub fn is_empty(&self) -> bool {
        self.nonce == 0 && self.balance.is_zero() && self.code_hash == KECCAK_EMPTY && self.storage.is_empty()
    }
}

/// Why the bytes of a state file are not a chain state (the first thing found wrong).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Shorter than the fixed fields and the checksum.
    #[error("{len} bytes: too short for a chain state (at least {} bytes)", FIXED + CHECKSUM)]
    TooShort {
        /// The file's length.
        len: usize,
    },
    /// Not `L2XCHAIN` at the start.
    #[error("not an l2x chain state (bad magic)")]
    BadMagic,
    /// A format version this build does not read.
    #[error("format version {found}, this build reads {VERSION} (no migration: start a new chain directory)")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// The keccak-256 at the end is not that of the rest.
    #[error("checksum mismatch: the file is damaged")]
    Checksum,
    /// The bytes end inside a field.
    #[error("truncated: the {field} at byte {at} is cut short")]
    Truncated {
        /// The field.
        field: &'static str,
        /// Where it starts.
        at: usize,
    },
    /// An account whose address is not above the one before.
    #[error("account {address} at byte {at} is out of order")]
    AccountOrder {
        /// Where its record starts.
        at: usize,
        /// Its address.
        address: Address,
    },
    /// An empty account (nonce 0, balance 0, no code, no storage), which a state leaves out.
    #[error("account {address} at byte {at} is empty")]
    EmptyAccount {
        /// Where its record starts.
        at: usize,
        /// Its address.
        address: Address,
    },
    /// A slot not above the one before it in its account.
    #[error("storage slot {slot:#x} of {address} at byte {at} is out of order")]
    SlotOrder {
        /// Where the slot starts.
        at: usize,
        /// The account.
        address: Address,
        /// The slot.
        slot: U256,
    },
    /// A slot whose value is zero, which a state leaves out.
    #[error("storage slot {slot:#x} of {address} at byte {at} holds zero")]
    ZeroSlot {
        /// Where the slot starts.
        at: usize,
        /// The account.
        address: Address,
        /// The slot.
        slot: U256,
    },
    /// Bytes between the last account and the checksum.
    #[error("{bytes} bytes after the last account, at byte {at}")]
    Trailing {
        /// Where they start.
        at: usize,
        /// How many.
        bytes: usize,
    },
    /// A chain time before the genesis timestamp plus a second per block.
    #[error("timestamp {timestamp} is before genesis timestamp {genesis_timestamp} + {block} blocks")]
    Clock {
        /// The latest block.
        block: u64,
        /// The chain's time.
        timestamp: u64,
        /// Block 0's timestamp.
        genesis_timestamp: u64,
    },
}

impl ChainState {
    /// The state held by `db` at `block`: every account that exists and is not empty,
    /// every slot that is not zero, sorted.
    pub(super) fn of(db: &Db, block: u64, timestamp: u64, genesis_timestamp: u64) -> ChainState {
        let accounts = db
            .cache
            .accounts
            .iter()
            .filter_map(|(address, a)| {
                let info = a.info()?;
                let storage = a.storage.iter().filter(|(_, v)| !v.is_zero()).map(|(k, v)| (*k, *v)).collect();
                let account =
                    AccountState { nonce: info.nonce, balance: info.balance, code_hash: info.code_hash, storage };
                (!account.is_empty()).then_some((*address, account))
            })
            .collect();
        ChainState { block, timestamp, genesis_timestamp, accounts }
    }

    /// The state file's bytes (the module docs give the layout).
    pub fn encode(&self) -> Vec<u8> {
        let slots: usize = self.accounts.values().map(|a| a.storage.len()).sum();
        let mut b = Vec::with_capacity(FIXED + self.accounts.len() * (20 + 8 + 32 + 32 + 4) + slots * 64 + CHECKSUM);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&VERSION.to_be_bytes());
        b.extend_from_slice(&self.block.to_be_bytes());
        b.extend_from_slice(&self.timestamp.to_be_bytes());
        b.extend_from_slice(&self.genesis_timestamp.to_be_bytes());
        b.extend_from_slice(&count(self.accounts.len()).to_be_bytes());
        for (address, a) in &self.accounts {
            b.extend_from_slice(address.as_slice());
            b.extend_from_slice(&a.nonce.to_be_bytes());
            b.extend_from_slice(&a.balance.to_be_bytes::<32>());
            b.extend_from_slice(a.code_hash.as_slice());
            b.extend_from_slice(&count(a.storage.len()).to_be_bytes());
            for (slot, value) in &a.storage {
                b.extend_from_slice(&slot.to_be_bytes::<32>());
                b.extend_from_slice(&value.to_be_bytes::<32>());
            }
        }
        let sum = keccak256(&b);
        b.extend_from_slice(sum.as_slice());
        b
    }

    /// Parses a state file, naming the first thing that is wrong (see the module docs for
    /// the order).
    ///
    /// # Errors
    /// [`FormatError`].
    pub fn decode(bytes: &[u8]) -> Result<ChainState, FormatError> {
        if bytes.len() < FIXED + CHECKSUM {
            return Err(FormatError::TooShort { len: bytes.len() });
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        let mut r = Reader { bytes: body, at: 0 };
        if &r.take::<8>("magic")? != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = r.u32("version")?;
        if version != VERSION {
            return Err(FormatError::Version { found: version });
        }
        if keccak256(body).as_slice() != sum {
            return Err(FormatError::Checksum);
        }
        let mut state = ChainState {
            block: r.u64("block number")?,
            timestamp: r.u64("timestamp")?,
            genesis_timestamp: r.u64("genesis timestamp")?,
            accounts: BTreeMap::new(),
        };
        let accounts = r.u32("account count")?;
        for _ in 0..accounts {
            let at = r.at;
            let (address, account) = r.account()?;
            if state.accounts.last_key_value().is_some_and(|(last, _)| *last >= address) {
                return Err(FormatError::AccountOrder { at, address });
            }
            if account.is_empty() {
                return Err(FormatError::EmptyAccount { at, address });
            }
            state.accounts.insert(address, account);
        }
        if r.at != body.len() {
            return Err(FormatError::Trailing { at: r.at, bytes: body.len() - r.at });
        }
        state.check_clock()?;
        Ok(state)
    }

    /// Each block is at least a second after the one before, and the clock only moves on.
    fn check_clock(&self) -> Result<(), FormatError> {
        match self.genesis_timestamp.checked_add(self.block) {
            Some(least) if self.timestamp >= least => Ok(()),
            _ => Err(FormatError::Clock {
                block: self.block,
                timestamp: self.timestamp,
                genesis_timestamp: self.genesis_timestamp,
            }),
        }
    }
}

/// A count the format writes as a `u32`. A chain does not reach 2^32 accounts or slots of
/// one account in memory; past that the file would be refused when read, never misread.
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A cursor over a state file's body that names the field it could not read.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], FormatError> {
        let chunk = self.bytes.get(self.at..).and_then(<[u8]>::first_chunk::<N>);
        let bytes = *chunk.ok_or(FormatError::Truncated { field, at: self.at })?;
        self.at += N;
        Ok(bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, FormatError> {
        self.take(field).map(u32::from_be_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, FormatError> {
        self.take(field).map(u64::from_be_bytes)
    }

    fn u256(&mut self, field: &'static str) -> Result<U256, FormatError> {
        self.take(field).map(U256::from_be_bytes::<32>)
    }

    /// One account record; its slots checked for order and zero values.
    fn account(&mut self) -> Result<(Address, AccountState), FormatError> {
        let address = Address::new(self.take("account address")?);
        let mut account = AccountState {
            nonce: self.u64("account nonce")?,
            balance: self.u256("account balance")?,
            code_hash: B256::new(self.take("account code hash")?),
            storage: BTreeMap::new(),
        };
        let slots = self.u32("slot count")?;
        for _ in 0..slots {
            let at = self.at;
            let slot = self.u256("storage slot")?;
            let value = self.u256("storage value")?;
            if account.storage.last_key_value().is_some_and(|(last, _)| *last >= slot) {
                return Err(FormatError::SlotOrder { at, address, slot });
            }
            if value.is_zero() {
                return Err(FormatError::ZeroSlot { at, address, slot });
            }
            account.storage.insert(slot, value);
        }
        Ok((address, account))
    }
}

/// Writes `bytes` as the state file in `dir` ([`atomic_write`]).
///
/// # Errors
/// [`ChainError::State`](crate::chain::ChainError::State) naming the file that could not
/// be written.
pub(super) fn write(dir: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write(dir, STATE_FILE, bytes)
}

/// Writes `bytes` as `dir/name`: to `dir/name.tmp`, synced, renamed over the old file, `dir`
/// synced. Either the old file or the new one is there after a crash, never a mix (the
/// state file and each batch data file are written so).
///
/// # Errors
/// [`ChainError::State`](crate::chain::ChainError::State) naming the file or directory
/// that could not be written.
pub(super) fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp).map_err(|e| state_error(&tmp, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| state_error(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| state_error(&path, e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| state_error(dir, e))
}

#[cfg(test)]
mod tests;
