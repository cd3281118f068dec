//! Little-endian byte reading with errors that name the offset: the one decoder under the
//! journal records, the canonical-state snapshots and the wire protocol. Every read is
//! bounds-checked; nothing here panics on input.

use rust_decimal::Decimal;

/// What was wrong with some bytes, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: {what}")]
pub struct DecodeError {
    /// Offset of the field that failed, from the start of the buffer.
    pub offset: usize,
    /// What was expected.
    pub what: &'static str,
}

/// A cursor over a byte slice.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

/// The position and the length, not the bytes (a snapshot is megabytes).
impl core::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reader").field("pos", &self.pos).field("len", &self.buf.len()).finish()
    }
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// The current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error at the current offset.
    pub fn err(&self, what: &'static str) -> DecodeError {
        DecodeError { offset: self.pos, what }
    }

    /// The next `N` bytes.
    ///
    /// # Errors
    /// Fewer than `N` bytes left.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let end = self.pos.checked_add(N).filter(|&e| e <= self.buf.len()).ok_or(self.err(what))?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.pos..end]);
        self.pos = end;
        Ok(out)
    }

    /// Reads a `u8`.
    ///
    /// # Errors
    /// Not enough bytes left.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a little-endian `u16`.
    ///
    /// # Errors
    /// Not enough bytes left.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u32`.
    ///
    /// # Errors
    /// Not enough bytes left.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `u64`.
    ///
    /// # Errors
    /// Not enough bytes left.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `i64`.
    ///
    /// # Errors
    /// Not enough bytes left.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    /// Reads a little-endian `i128`.
    ///
    /// # Errors
    /// Not enough bytes left.
    pub fn i128(&mut self, what: &'static str) -> Result<i128, DecodeError> {
        Ok(i128::from_le_bytes(self.array(what)?))
    }

    /// Reads a `u8` that must be 0 or 1.
    ///
    /// # Errors
    /// Not enough bytes, or another value.
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError { offset: self.pos - 1, what }),
        }
    }

    /// A count that must fit in what is left, at `min_item` bytes per item.
    ///
    /// # Errors
    /// A count the remaining bytes cannot hold.
    pub fn count(&mut self, min_item: usize, what: &'static str) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = self.u64(what)?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n.checked_mul(min_item).is_some_and(|b| b <= self.remaining()))
            .ok_or(DecodeError { offset: at, what })
    }

    /// Zero bytes (padding, reserved fields).
    ///
    /// # Errors
    /// Not enough bytes, or a non-zero one.
    pub fn zeros(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        let at = self.pos;
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(self.err(what))?;
        if self.buf[at..end].iter().any(|&b| b != 0) {
            return Err(DecodeError { offset: at, what });
        }
        self.pos = end;
        Ok(())
    }

    /// A `rust_decimal` in its 16-byte `serialize()` form, validated (flags: scale ≤ 28, only
    /// the sign bit).
    ///
    /// # Errors
    /// Not enough bytes, or invalid flags.
    pub fn decimal(&mut self, what: &'static str) -> Result<Decimal, DecodeError> {
        let at = self.pos;
        let b: [u8; 16] = self.array(what)?;
        if b[0] != 0 || b[1] != 0 || b[2] > 28 || (b[3] & 0x7f) != 0 {
            return Err(DecodeError { offset: at, what });
        }
        Ok(Decimal::deserialize(b))
    }

    /// Fails unless every byte was read.
    ///
    /// # Errors
    /// Bytes left over.
    pub fn finish(&self, what: &'static str) -> Result<(), DecodeError> {
        if self.remaining() == 0 { Ok(()) } else { Err(self.err(what)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked_and_name_the_offset() {
        let mut r = Reader::new(&[1, 0, 0, 0, 2]);
        assert_eq!(r.u32("a"), Ok(1));
        assert_eq!(r.u32("b"), Err(DecodeError { offset: 4, what: "b" }));
        assert_eq!(r.bool("c"), Err(DecodeError { offset: 4, what: "c" }));
        let mut r = Reader::new(&[0xff; 8]);
        assert_eq!(r.count(1, "n"), Err(DecodeError { offset: 0, what: "n" }));
    }

    #[test]
    fn decimals_are_validated() {
        let good = Decimal::new(-12_345, 3).serialize();
        assert_eq!(Reader::new(&good).decimal("d"), Ok(Decimal::new(-12_345, 3)));
        let mut bad = good;
        bad[2] = 29;
        assert!(Reader::new(&bad).decimal("d").is_err());
        bad = good;
        bad[0] = 1;
        assert!(Reader::new(&bad).decimal("d").is_err());
    }
}
