//! The base chain (L1) as the state machine sees it: 20-byte addresses, and the binding of a
//! journal to one vault contract.
//!
//! The contract keeps a priority queue of deposits and forced withdrawals; each entry has an
//! index (from 1). The node sequences every entry as a command carrying its index
//! ([`crate::Command::L1Deposit`], [`crate::Command::ForcedWithdrawal`]), and the state
//! machine applies an entry only when its index is the next one it expects (docs/RISK.md,
//! "Deposits and withdrawals through L1"). Nothing here talks to a chain.

use core::fmt;

/// A 20-byte L1 account or contract address. Displays as `0x` and 40 lowercase hex digits.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct L1Address(pub [u8; 20]);

/// A string that is not an [`L1Address`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an L1 address (\"0x\" and 40 hex digits)")]
pub struct L1AddressError(pub String);

impl L1Address {
    /// Parses `0x` followed by exactly 40 hex digits (either case).
    ///
    /// # Errors
    /// [`L1AddressError`] for anything else.
    pub fn from_hex(text: &str) -> Result<L1Address, L1AddressError> {
        let err = || L1AddressError(text.to_string());
        let digits = text.strip_prefix("0x").ok_or_else(err)?.as_bytes();
        if digits.len() != 40 {
            return Err(err());
        }
        let nibble = |c: u8| char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok());
        let mut out = [0u8; 20];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            out[i] = nibble(pair[0]).ok_or_else(err)? << 4 | nibble(pair[1]).ok_or_else(err)?;
        }
        Ok(L1Address(out))
    }
}

impl fmt::Display for L1Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for L1Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The vault a journal is bound to ([`crate::Command::L1Bind`]): once bound, collateral
/// enters only through the contract's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L1Binding {
    /// The chain's EIP-155 id.
    pub chain_id: u64,
    /// The settlement (vault) contract.
    pub contract: L1Address,
    /// The collateral token.
    pub token: L1Address,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_through_hex() {
        let text = "0x00112233445566778899aabbccddeeff0A1b2C3d";
        let a = L1Address::from_hex(text).unwrap();
        assert_eq!(a.0[0], 0x00);
        assert_eq!(a.0[19], 0x3d);
        assert_eq!(a.to_string(), text.to_lowercase());
        assert_eq!(format!("{a:?}"), text.to_lowercase());
        assert_eq!(L1Address::from_hex(&a.to_string()), Ok(a));
        for bad in [
            "",
            "0x",
            "00112233445566778899aabbccddeeff0a1b2c3d",
            "0x0011",
            "0xzz112233445566778899aabbccddeeff0a1b2c3d",
            "0x00112233445566778899aabbccddeeff0a1b2c3d00",
            "0x+0112233445566778899aabbccddeeff0a1b2c3d",
        ] {
            assert_eq!(L1Address::from_hex(bad), Err(L1AddressError(bad.to_string())), "{bad}");
        }
    }
}
