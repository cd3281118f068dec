//! How a message's layout is written once: as one walk over its fields in wire order,
//! which encoding, decoding and measuring all run.
//!
//! ```text
//!  ClientMsg::walk(w)   w.field(cid) · w.field(instrument) · w.field(side) · … · w.zeros(7) · …
//!        │
//!        ├─ Put      appends each field's little-endian bytes            (encode)
//!        ├─ Get      reads and checks each field, writes it into the msg (decode)
//!        └─ Measure  adds up the fields' sizes                           (the block length)
//! ```
//!
//! A message type implements [`Layout`]: its `walk`. A field is a [`Field`]: an integer, an
//! id or a price, an enum code (checked when read), a flags byte ([`Flags`], unknown bits
//! refused). Padding is [`Walk::zeros`]. A value that a flag announces is
//! [`Walk::announced`] (zero on the wire when absent). Decoding starts from the template's
//! blank message (every field zero) and overwrites it field by field, so one walk reads a
//! block into the same message it would have written it from.
//!
//! The walks are generic over the direction: each direction is monomorphised, with no
//! dynamic dispatch, and `Put` and `Measure` cannot fail (their error type is
//! [`Infallible`]), so encoding carries no error paths. The small functions here are
//! `#[inline(always)]`: left to itself, LLVM kept some of them out of line in the decoder and
//! a `NewOrder` cost 10 ns more.

use core::convert::Infallible;

use l2x_types::bytes::{DecodeError, Reader};
use l2x_types::{
    Amount, ClientOrderId, InstrumentId, OrderId, OrderType, Price, Qty, Side, StpMode, TimeInForce, Timestamp,
};

use crate::order_entry::Liquidity;

/// A message whose block is described by a walk over its fields in wire order: its layout,
/// written once.
pub(crate) trait Layout {
    /// Walks the message's fields in wire order: writing, reading or measuring them.
    ///
    /// # Errors
    /// Reading: the first field out of range.
    fn walk<W: Walk>(&mut self, w: &mut W) -> Result<(), W::Error>;

    /// Its block's length, bytes.
    #[inline(always)]
    fn block_len(&mut self) -> usize {
        let mut m = Measure::default();
        let Ok(()) = self.walk(&mut m);
        m.0
    }
}

/// A fixed-size little-endian field of a block.
pub(crate) trait Field: Copy + PartialEq {
    /// Its size on the wire, bytes.
    const LEN: usize;
    /// The value whose bytes are all zero.
    const ZERO: Self;
    /// Appends its bytes.
    fn put(self, out: &mut Vec<u8>);
    /// Reads it, and checks it (an enum's code, a flag byte's bits).
    ///
    /// # Errors
    /// Not enough bytes, or a value out of range.
    fn get(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError>;
}

/// One pass over a block's fields, in wire order.
pub(crate) trait Walk {
    /// What a field can do wrong: a [`DecodeError`] when reading, nothing otherwise.
    type Error;

    /// Writes, reads or counts one field.
    ///
    /// # Errors
    /// Reading: the field's.
    fn field<F: Field>(&mut self, v: &mut F, what: &'static str) -> Result<(), Self::Error>;

    /// `n` reserved bytes, zero.
    ///
    /// # Errors
    /// Reading: a byte that is not zero.
    fn zeros(&mut self, n: usize, what: &'static str) -> Result<(), Self::Error>;

    /// The offset of the next field in the block.
    fn at(&self) -> usize;

    /// When reading, refuses the block unless `ok` (a rule between fields, checked at
    /// `at`); writing and measuring check nothing: the message is what it is.
    ///
    /// # Errors
    /// Reading: `!ok`.
    fn check(&mut self, ok: bool, at: usize, what: &'static str) -> Result<(), Self::Error>;

    /// A flags byte: the given bits (writing), or the bits read (reading; unknown bits
    /// refused).
    ///
    /// # Errors
    /// Reading: a bit beyond `N`.
    #[inline(always)]
    fn flags<const N: usize>(&mut self, bits: [bool; N], what: &'static str) -> Result<[bool; N], Self::Error> {
        let mut f = Flags(bits);
        self.field(&mut f, what)?;
        Ok(f.0)
    }

    /// A field its flag announces: `Some` when `present`, and zero on the wire otherwise.
    ///
    /// # Errors
    /// Reading: the field's, or a value its flag does not announce.
    #[inline(always)]
    fn announced<F: Field>(&mut self, v: &mut Option<F>, present: bool, what: &'static str) -> Result<(), Self::Error> {
        let at = self.at();
        let mut raw = v.unwrap_or(F::ZERO);
        self.field(&mut raw, what)?;
        self.check(present || raw == F::ZERO, at, what)?;
        *v = present.then_some(raw);
        Ok(())
    }
}

/// Encoding: appends every field.
#[derive(Debug)]
pub(crate) struct Put<'a>(pub(crate) &'a mut Vec<u8>);

impl Walk for Put<'_> {
    type Error = Infallible;

    #[inline(always)]
    fn field<F: Field>(&mut self, v: &mut F, _: &'static str) -> Result<(), Infallible> {
        v.put(self.0);
        Ok(())
    }

    #[inline(always)]
    fn zeros(&mut self, n: usize, _: &'static str) -> Result<(), Infallible> {
        self.0.resize(self.0.len() + n, 0);
        Ok(())
    }

    #[inline(always)]
    fn at(&self) -> usize {
        self.0.len()
    }

    #[inline(always)]
    fn check(&mut self, _: bool, _: usize, _: &'static str) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Decoding: reads every field into the message.
pub(crate) struct Get<'a>(pub(crate) Reader<'a>);

impl Walk for Get<'_> {
    type Error = DecodeError;

    #[inline(always)]
    fn field<F: Field>(&mut self, v: &mut F, what: &'static str) -> Result<(), DecodeError> {
        *v = F::get(&mut self.0, what)?;
        Ok(())
    }

    #[inline(always)]
    fn zeros(&mut self, n: usize, what: &'static str) -> Result<(), DecodeError> {
        self.0.zeros(n, what)
    }

    #[inline(always)]
    fn at(&self) -> usize {
        self.0.pos()
    }

    #[inline(always)]
    fn check(&mut self, ok: bool, at: usize, what: &'static str) -> Result<(), DecodeError> {
        if ok { Ok(()) } else { Err(DecodeError { offset: at, what }) }
    }
}

/// Measuring: adds up the fields' sizes.
#[derive(Debug, Default)]
pub(crate) struct Measure(pub(crate) usize);

impl Walk for Measure {
    type Error = Infallible;

    #[inline(always)]
    fn field<F: Field>(&mut self, _: &mut F, _: &'static str) -> Result<(), Infallible> {
        self.0 += F::LEN;
        Ok(())
    }

    #[inline(always)]
    fn zeros(&mut self, n: usize, _: &'static str) -> Result<(), Infallible> {
        self.0 += n;
        Ok(())
    }

    #[inline(always)]
    fn at(&self) -> usize {
        self.0
    }

    #[inline(always)]
    fn check(&mut self, _: bool, _: usize, _: &'static str) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A flags byte of `N` bits, bit 0 first; the other bits must be zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flags<const N: usize>(pub(crate) [bool; N]);

impl<const N: usize> Field for Flags<N> {
    const LEN: usize = 1;
    const ZERO: Self = Flags([false; N]);

    #[inline(always)]
    fn put(self, out: &mut Vec<u8>) {
        out.push(self.0.iter().rev().fold(0u8, |byte, &bit| byte << 1 | u8::from(bit)));
    }

    #[inline(always)]
    fn get(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        let at = r.pos();
        let byte = r.u8(what)?;
        if u32::from(byte) >> N != 0 {
            return Err(DecodeError { offset: at, what });
        }
        let mut bits = [false; N];
        for (i, bit) in bits.iter_mut().enumerate() {
            *bit = byte >> i & 1 != 0;
        }
        Ok(Flags(bits))
    }
}

/// Integers, as they are.
macro_rules! integer_fields {
    ($($t:ty => $read:ident),+ $(,)?) => {$(
        impl Field for $t {
            const LEN: usize = size_of::<$t>();
            const ZERO: Self = 0;

            #[inline(always)]
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }

            #[inline(always)]
            fn get(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
                r.$read(what)
            }
        }
    )+};
}

integer_fields!(u8 => u8, u16 => u16, u32 => u32, u64 => u64, i64 => i64);

/// Ids, prices, quantities and amounts: newtypes over an integer field.
macro_rules! newtype_fields {
    ($($t:ident($inner:ty)),+ $(,)?) => {$(
        impl Field for $t {
            const LEN: usize = <$inner as Field>::LEN;
            const ZERO: Self = $t(0);

            #[inline(always)]
            fn put(self, out: &mut Vec<u8>) {
                self.0.put(out);
            }

            #[inline(always)]
            fn get(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
                <$inner as Field>::get(r, what).map($t)
            }
        }
    )+};
}

newtype_fields!(ClientOrderId(u64), OrderId(u64), InstrumentId(u32), Price(i64), Qty(i64), Timestamp(u64), Amount(i64),);

/// Enums with `u8` codes: a code the enum does not have is refused.
macro_rules! code_fields {
    ($($t:ident => $zero:expr),+ $(,)?) => {$(
        impl Field for $t {
            const LEN: usize = 1;
            const ZERO: Self = $zero;

            #[inline(always)]
            fn put(self, out: &mut Vec<u8>) {
                out.push(self.code());
            }

            #[inline(always)]
            fn get(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
                let at = r.pos();
                $t::from_code(r.u8(what)?).ok_or(DecodeError { offset: at, what })
            }
        }
    )+};
}

code_fields!(
    Side => Side::Buy,
    OrderType => OrderType::Limit,
    TimeInForce => TimeInForce::Gtc,
    StpMode => StpMode::CancelTaker,
    Liquidity => Liquidity::Maker,
);

/// A `u8` that must be 0 or 1.
impl Field for bool {
    const LEN: usize = 1;
    const ZERO: Self = false;

    #[inline(always)]
    fn put(self, out: &mut Vec<u8>) {
        out.push(u8::from(self));
    }

    #[inline(always)]
    fn get(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        r.bool(what)
    }
}

/// Bytes as they are (a signature, a symbol).
impl<const N: usize> Field for [u8; N] {
    const LEN: usize = N;
    const ZERO: Self = [0; N];

    #[inline(always)]
    fn put(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self);
    }

    #[inline(always)]
    fn get(r: &mut Reader<'_>, what: &'static str) -> Result<Self, DecodeError> {
        r.array(what)
    }
}

/// The zero value of a field: what a blank message holds before it is read into.
#[inline(always)]
pub(crate) const fn zero<F: Field>() -> F {
    F::ZERO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_refuse_unknown_bits_and_keep_their_order() {
        let mut out = Vec::new();
        Flags([true, false, true]).put(&mut out);
        assert_eq!(out, [0b101]);
        assert_eq!(Flags::<3>::get(&mut Reader::new(&[0b101]), "f"), Ok(Flags([true, false, true])));
        assert_eq!(Flags::<3>::get(&mut Reader::new(&[0b1000]), "f"), Err(DecodeError { offset: 0, what: "f" }));
        assert_eq!(
            Flags::<1>::get(&mut Reader::new(&[2]), "f").map(|f| f.0),
            Err(DecodeError { offset: 0, what: "f" })
        );
    }

    #[test]
    fn an_announced_field_is_zero_when_its_flag_is_not_set() {
        let walk = |bytes: &[u8], present: bool| {
            let mut v: Option<Price> = None;
            Get(Reader::new(bytes)).announced(&mut v, present, "price").map(|()| v)
        };
        let seven = 7i64.to_le_bytes();
        assert_eq!(walk(&seven, true), Ok(Some(Price(7))));
        assert_eq!(walk(&[0; 8], true), Ok(Some(Price(0))));
        assert_eq!(walk(&[0; 8], false), Ok(None));
        assert_eq!(walk(&seven, false), Err(DecodeError { offset: 0, what: "price" }));
        let mut out = Vec::new();
        let Ok(()) = Put(&mut out).announced(&mut None::<Price>, false, "price");
        assert_eq!(out, [0; 8]);
        let mut m = Measure::default();
        let Ok(()) = m.announced(&mut Some(Price(1)), true, "price");
        assert_eq!(m.0, 8);
    }

    #[test]
    fn enum_codes_are_checked() {
        assert_eq!(Side::get(&mut Reader::new(&[1]), "side"), Ok(Side::Sell));
        assert_eq!(Side::get(&mut Reader::new(&[2]), "side"), Err(DecodeError { offset: 0, what: "side" }));
        assert_eq!(bool::get(&mut Reader::new(&[2]), "b"), Err(DecodeError { offset: 0, what: "b" }));
    }
}
