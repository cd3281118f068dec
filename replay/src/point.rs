//! Points and periods in sequenced time as a desk types them: `--until-time` and `--every`
//! of `l2x replay` (docs/REPLAY.md).
//!
//! ```text
//!  duration   1500 (ns) · 250ms · 1.5s · 90s · 2m · 1h · 1d     exact: a whole number of ns
//!  point      +DURATION          after the journal's first command  → Until::Elapsed
//!             2026-11-21T12:30:00.5Z   UTC, proleptic Gregorian     → Until::Time
//!             1795264200500000000      nanoseconds since 1970       → Until::Time
//! ```
//!
//! Sequenced time is nanoseconds since 1970 in 64 bits: anything outside is refused as out
//! of range, and the error gives the range.

use l2x_types::{Decimal, Timestamp};

use crate::Until;

/// What fits a time in nanoseconds (a u64), as errors say it.
const NS_RANGE: &str = "times are at most 18446744073709551615 ns (about 584 years) after 1970-01-01T00:00:00Z";

/// The UTC times a point may be, as errors say it.
const UTC_RANGE: &str =
    "UTC times run from 1970-01-01T00:00:00Z to 2554-07-21T23:34:33.709551615Z (nanoseconds since 1970 in 64 bits)";

/// Why a text is not a time. Each message quotes the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PointError {
    /// Not a number, with or without a unit.
    #[error("{text:?} is not a time (e.g. 1500000000, 1.5s, 90s, 2m)")]
    NotATime {
        /// The text.
        text: String,
    },
    /// Negative, or a fraction of a nanosecond.
    #[error("{text:?}: not a whole, non-negative number of nanoseconds")]
    NotWhole {
        /// The text.
        text: String,
    },
    /// More nanoseconds than a u64 holds.
    #[error("{text:?} is out of range: {NS_RANGE}")]
    OutOfRange {
        /// The text.
        text: String,
    },
    /// Not a real UTC date and time in the one form accepted.
    #[error("{text:?} is not a UTC time like 2026-11-21T12:30:00Z")]
    NotUtc {
        /// The text.
        text: String,
    },
    /// A UTC time before 1970 or past the last nanosecond a u64 holds.
    #[error("{text:?} is out of range: {UTC_RANGE}")]
    UtcOutOfRange {
        /// The text.
        text: String,
    },
    /// A UTC time with more than 9 decimals of seconds.
    #[error("{text:?}: a UTC time to the nanosecond at most (9 decimals of seconds)")]
    TooPrecise {
        /// The text.
        text: String,
    },
}

/// A duration or instant in nanoseconds: a bare integer, or a decimal with a unit (`ns`,
/// `us`, `ms`, `s`, `m`, `h`, `d`).
///
/// # Errors
/// [`PointError`]: not a number, not a whole non-negative number of nanoseconds, or more
/// than a u64 holds.
pub fn parse_time(text: &str) -> Result<u64, PointError> {
    let text = text.trim();
    let units: [(&str, u64); 7] = [
        ("ns", 1),
        ("us", 1_000),
        ("ms", 1_000_000),
        ("s", 1_000_000_000),
        ("m", 60_000_000_000),
        ("h", 3_600_000_000_000),
        ("d", 86_400_000_000_000),
    ];
    let (number, unit) =
        units.iter().find_map(|(suffix, ns)| text.strip_suffix(suffix).map(|n| (n, *ns))).unwrap_or((text, 1));
    let value: Decimal = number.parse().map_err(|_| PointError::NotATime { text: text.into() })?;
    let ns = value.checked_mul(Decimal::from(unit));
    match ns {
        Some(v) if v.is_sign_negative() || !v.fract().is_zero() => Err(PointError::NotWhole { text: text.into() }),
        Some(v) => u64::try_from(v).map_err(|_| PointError::OutOfRange { text: text.into() }),
        None => Err(PointError::OutOfRange { text: text.into() }),
    }
}

/// A point in time: `+DURATION` from the journal's start, a UTC time, or epoch nanoseconds.
///
/// # Errors
/// [`PointError`], as [`parse_time`] for durations and nanoseconds; a UTC time that is not
/// a real date and time, is out of range, or is more precise than a nanosecond.
pub fn parse_point(text: &str) -> Result<Until, PointError> {
    let text = text.trim();
    if let Some(d) = text.strip_prefix('+') {
        return parse_time(d).map(Until::Elapsed);
    }
    if text.contains('T') {
        return parse_utc(text).map(|ns| Until::Time(Timestamp(ns)));
    }
    parse_time(text).map(|ns| Until::Time(Timestamp(ns)))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` as nanoseconds since the Unix epoch.
fn parse_utc(text: &str) -> Result<u64, PointError> {
    let bad = || PointError::NotUtc { text: text.into() };
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = body.split_once('T').ok_or_else(bad)?;
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 {
        return Err(bad());
    }
    let (y, m, day) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (hh, mm) = (num(t[0])?, num(t[1])?);
    let secs: Decimal = t[2].parse().map_err(|_| bad())?;
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = match m {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    // Nanoseconds since 1970 fit a u64 until 2554-07-21T23:34:33.709551615Z.
    if !(1970..=2554).contains(&y) {
        return Err(PointError::UtcOutOfRange { text: text.into() });
    }
    let real_date = (1..=12).contains(&m) && (1..=days_in_month).contains(&day);
    if !real_date
        || !(0..=23).contains(&hh)
        || !(0..=59).contains(&mm)
        || secs.is_sign_negative()
        || secs >= Decimal::from(61)
    {
        return Err(bad());
    }
    let whole = Decimal::from(days_from_civil(y, m, day) * 86_400 + hh * 3_600 + mm * 60) + secs;
    let ns = whole.checked_mul(Decimal::from(1_000_000_000u64)).ok_or_else(bad)?;
    if !ns.fract().is_zero() {
        return Err(PointError::TooPrecise { text: text.into() });
    }
    u64::try_from(ns).map_err(|_| PointError::UtcOutOfRange { text: text.into() })
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm), proleptic Gregorian.
fn days_from_civil(y: i64, m: i64, day: i64) -> i64 {
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::{parse_point, parse_time};

    #[test]
    fn times_with_and_without_units() {
        assert_eq!(parse_time("1500"), Ok(1500));
        assert_eq!(parse_time("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_time("2m"), Ok(120_000_000_000));
        assert_eq!(parse_time("250ms"), Ok(250_000_000));
        assert_eq!(parse_time("1h"), Ok(3_600_000_000_000));
        for bad in ["", "s", "-1s", "1.5ns", "abc", "1x", "99999999999999999999d"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn points_in_time() {
        use crate::Until;
        use l2x_types::Timestamp;
        assert_eq!(parse_point("+90s"), Ok(Until::Elapsed(90_000_000_000)));
        assert_eq!(parse_point("1970-01-01T00:00:01Z"), Ok(Until::Time(Timestamp(1_000_000_000))));
        // `date -u -d 2026-11-21T12:30:00Z +%s` = 1795264200.
        assert_eq!(parse_point("2026-11-21T12:30:00.5Z"), Ok(Until::Time(Timestamp(1_795_264_200_500_000_000))));
        assert_eq!(parse_point("2000-02-29T00:00:00Z"), Ok(Until::Time(Timestamp(951_782_400_000_000_000))));
        for bad in [
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-21T12:30:-1Z",
            "999999999999-01-01T00:00:00Z",
            "2026-11-21T12:30:00",
            "2026-11-21 12:30:00Z",
            "+",
            "+x",
        ] {
            assert!(parse_point(bad).is_err(), "{bad}");
        }
    }

    /// Regression: a UTC time past the nanosecond range (which REPLAY.md said was accepted)
    /// was called "not a UTC time"; it is out of range, and the range is given.
    #[test]
    fn until_time_past_the_nanosecond_range_says_so() {
        use crate::Until;
        use l2x_types::Timestamp;
        let last = parse_point("2554-07-21T23:34:33.709551615Z");
        assert_eq!(last, Ok(Until::Time(Timestamp(u64::MAX))));
        for late in
            ["2554-07-21T23:34:33.709551616Z", "2554-12-31T23:59:59Z", "2555-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]
        {
            let e = parse_point(late).unwrap_err().to_string();
            assert!(e.contains("is out of range") && e.contains("2554-07-21T23:34:33.709551615Z"), "{late}: {e}");
        }
        let e = parse_point("18446744073709551616").unwrap_err().to_string();
        assert!(e.contains("out of range") && e.contains("18446744073709551615 ns"), "{e}");
        assert!(parse_point("2026-13-01T00:00:00Z").unwrap_err().to_string().contains("is not a UTC time like"));
        assert!(parse_point("2026-11-21T12:30:00.0000000001Z").unwrap_err().to_string().contains("to the nanosecond"));
    }
}
