//! Exact integer helpers: every division says which way it rounds.

/// ⌈a / b⌉ for `b > 0`.
#[inline]
pub(crate) const fn ceil_div(a: i128, b: i128) -> i128 {
    -((-a).div_euclid(b))
}

/// ⌊a / b⌋ for `b > 0`.
#[inline]
pub(crate) const fn floor_div(a: i128, b: i128) -> i128 {
    a.div_euclid(b)
}

/// `a / b` rounded towards zero, for `b > 0`.
#[inline]
pub(crate) const fn trunc_div(a: i128, b: i128) -> i128 {
    a / b
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
}
