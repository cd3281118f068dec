//! Exact integer helpers: every division says which way it rounds.
//!
//! # Performance
//!
//! `i128` division is a call into compiler-builtins (`__divti3`, and `__modti3` for the
//! remainder `div_euclid` needs): about 100 instructions each. These helpers divide once
//! (the remainder is `a − q·b`) and take a hardware 64-bit division when both operands fit
//! `i64`, which they do for every margin figure of realistic positions; the results are the
//! same either way (tested below against `div_euclid`).

/// `(a / b, a % b)`, truncating, for `b > 0`: one hardware division when both fit `i64`.
#[inline(always)]
fn div_rem(a: i128, b: i128) -> (i128, i128) {
    if let (Ok(a64), Ok(b64)) = (i64::try_from(a), i64::try_from(b)) {
        // b > 0, so a64 / b64 cannot overflow.
        (i128::from(a64 / b64), i128::from(a64 % b64))
    } else {
        let q = a / b;
        (q, a - q * b)
    }
}

/// ⌈a / b⌉ for `b > 0`.
#[inline]
pub(crate) fn ceil_div(a: i128, b: i128) -> i128 {
    let (q, r) = div_rem(a, b);
    if r > 0 { q + 1 } else { q }
}

/// ⌊a / b⌋ for `b > 0`.
#[inline]
pub(crate) fn floor_div(a: i128, b: i128) -> i128 {
    let (q, r) = div_rem(a, b);
    if r < 0 { q - 1 } else { q }
}

/// `a / b` rounded towards zero, for `b > 0`.
#[inline]
pub(crate) fn trunc_div(a: i128, b: i128) -> i128 {
    div_rem(a, b).0
}

/// Saturates an `i128` into `i64`.
#[inline]
pub(crate) fn saturate(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_directions() {
        assert_eq!(ceil_div(7, 2), 4);
        assert_eq!(ceil_div(-7, 2), -3);
        assert_eq!(floor_div(7, 2), 3);
        assert_eq!(floor_div(-7, 2), -4);
        assert_eq!(trunc_div(-7, 2), -3);
        assert_eq!(ceil_div(6, 2), 3);
        assert_eq!(saturate(i128::MAX), i64::MAX);
        assert_eq!(saturate(i128::MIN), i64::MIN);
    }

    /// The one-division forms agree with `div_euclid` on both sides of the `i64` fast path.
    #[test]
    fn rounding_matches_div_euclid_in_and_beyond_i64() {
        let big = i128::from(i64::MAX);
        let values = [0, 1, -1, 2, -2, 7, -7, 999_999, -1_000_001, big, -big, big + 1, -big - 2, big * 3 + 1];
        let divisors = [1, 2, 3, 1_000_000, 1_000_003, big, big + 5, big * 7];
        for &a in &values {
            for &b in &divisors {
                assert_eq!(floor_div(a, b), a.div_euclid(b), "floor {a} / {b}");
                assert_eq!(ceil_div(a, b), -((-a).div_euclid(b)), "ceil {a} / {b}");
                assert_eq!(trunc_div(a, b), a / b, "trunc {a} / {b}");
            }
        }
    }
}
