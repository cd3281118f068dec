//! Integer identifiers and the fixed-size instrument symbol.

use core::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($raw:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[repr(transparent)]
        pub struct $name(pub $raw);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

id_type!(
    /// A trading account. Chosen by the operator (the scenario, the accounts file).
    AccountId(u64)
);
id_type!(
    /// An order, assigned by the state machine in acceptance order, starting at 1.
    OrderId(u64)
);

impl AccountId {
    /// Trading account ids stop below this: the two highest ids are the state tree's keys
    /// of the insurance fund and the fee account (docs/SETTLEMENT.md), and a deposit to
    /// them is refused `reserved_account`.
    pub const RESERVED_FROM: u64 = u64::MAX - 1;

    /// Whether this id is one of the reserved ones.
    pub const fn is_reserved(self) -> bool {
        self.0 >= Self::RESERVED_FROM
    }
}
id_type!(
    /// The client's own order id, unique among an account's live orders.
    ClientOrderId(u64)
);
id_type!(
    /// A listed instrument: its index in listing order, starting at 0.
    InstrumentId(u32)
);

impl InstrumentId {
    /// Its index in every per-instrument table (ids are dense, in listing order).
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}
id_type!(
    /// A trade (match), assigned in execution order, starting at 1; both sides share it.
    TradeId(u64)
);
id_type!(
    /// The sequence number the sequencer gave a command.
    Seq(u64)
);
id_type!(
    /// Sequenced time in nanoseconds; non-decreasing along the sequence.
    Timestamp(u64)
);

/// Who holds a balance: a trading account, the insurance fund, or the fee account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Holder {
    /// A trading account.
    Account(AccountId),
    /// The insurance fund: collects liquidation fees, takes over positions the book cannot
    /// absorb.
    Insurance,
    /// The fee account: collects trading fees, pays maker rebates.
    Fees,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Account(a) => fmt::Display::fmt(a, f),
            Holder::Insurance => f.write_str("insurance"),
            Holder::Fees => f.write_str("fees"),
        }
    }
}

/// An instrument symbol: 1 to 16 bytes of `A-Z a-z 0-9 - _ . /`, stored inline so that
/// commands and events stay fixed-size.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Symbol {
    len: u8,
    bytes: [u8; Symbol::MAX_LEN],
}

/// A string that is not a valid [`Symbol`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("symbol {0:?} must be 1 to 16 characters of A-Z a-z 0-9 - _ . /")]
pub struct SymbolError(pub String);

impl Symbol {
    /// Longest symbol, in bytes.
    pub const MAX_LEN: usize = 16;

    /// Validates and stores a symbol.
    ///
    /// # Errors
    /// [`SymbolError`] if `text` is empty, longer than 16 bytes or has another character.
    pub fn try_new(text: &str) -> Result<Symbol, SymbolError> {
        let ok_char = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/');
        if text.is_empty() || text.len() > Self::MAX_LEN || !text.bytes().all(ok_char) {
            return Err(SymbolError(text.to_string()));
        }
        let mut bytes = [0u8; Self::MAX_LEN];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        #[allow(clippy::cast_possible_truncation, reason = "len <= 16 checked above")]
        Ok(Symbol { len: text.len() as u8, bytes })
    }

    /// The symbol text.
    pub fn as_str(&self) -> &str {
        // Always ASCII by construction; the fallback is unreachable but keeps this total.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("?")
    }

    /// The 16 stored bytes, zero-padded (the journal and wire form).
    pub fn to_bytes(&self) -> [u8; Self::MAX_LEN] {
        self.bytes
    }

    /// The inverse of [`Symbol::to_bytes`]: `None` unless `bytes` are a valid symbol
    /// followed only by zeros.
    pub fn from_bytes(bytes: [u8; Self::MAX_LEN]) -> Option<Symbol> {
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(Self::MAX_LEN);
        let symbol = Symbol::try_new(core::str::from_utf8(&bytes[..len]).ok()?).ok()?;
        (symbol.bytes == bytes).then_some(symbol)
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({:?})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_validate() {
        assert_eq!(Symbol::try_new("BTC-PERP").unwrap().as_str(), "BTC-PERP");
        assert_eq!(Symbol::try_new("ABCDEFGHIJKLMNOP").unwrap().as_str().len(), 16);
        assert!(Symbol::try_new("").is_err());
        assert!(Symbol::try_new("ABCDEFGHIJKLMNOPQ").is_err());
        assert!(Symbol::try_new("BTC PERP").is_err());
        assert!(Symbol::try_new("BTC\u{e9}").is_err());
        let btc = Symbol::try_new("BTC-PERP").unwrap();
        assert_eq!(Symbol::from_bytes(btc.to_bytes()), Some(btc));
        let full = Symbol::try_new("ABCDEFGHIJKLMNOP").unwrap();
        assert_eq!(Symbol::from_bytes(full.to_bytes()), Some(full));
        let mut trailing = btc.to_bytes();
        trailing[10] = b'X';
        assert_eq!(Symbol::from_bytes(trailing), None, "bytes after the terminating zero");
        assert_eq!(Symbol::from_bytes([0; 16]), None, "empty");
        let mut bad = btc.to_bytes();
        bad[3] = b' ';
        assert_eq!(Symbol::from_bytes(bad), None, "invalid character");
    }
}
