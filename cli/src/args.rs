//! Argument types shared by the subcommands: checked numbers and paths, `--durability`,
//! and private keys read from the environment (`--key-env`).
//!
//! clap refuses a bad value before anything runs, naming the flag and what it must be
//! (exit 2); the ranges themselves are the node's (`l2x_node::config::limits`), so a flag
//! and the config key that set the same thing agree.

use std::path::PathBuf;

/// A command-line number within `min..=max` (clap names the flag and the range when it is
/// not).
pub(crate) fn ranged(min: u64, max: u64) -> clap::builder::RangedU64ValueParser<u64> {
    clap::builder::RangedU64ValueParser::new().range(min..=max)
}

/// A command-line path that is not empty (an empty one names nothing, and fails later with
/// an OS error that does not say which flag).
pub(crate) fn non_empty_path(text: &str) -> Result<PathBuf, String> {
    if text.is_empty() { Err("must not be empty".into()) } else { Ok(PathBuf::from(text)) }
}

/// `--durability`'s values (the config's `pipeline.durability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DurabilityName {
    /// A result leaves once its command is in the page cache (survives a killed process).
    Os,
    /// Once an fsync covers it (survives a failed machine).
    Fsync,
}

/// The environment variable that holds the submitter's key unless `--key-env` names another
/// (the same default as the config's `settlement.rpc.key_env`).
pub(crate) const SUBMITTER_KEY_ENV: &str = "L2X_SUBMITTER_KEY";

/// A private key (hex) from the environment variable `var`. Keys never go on the command
/// line, where process listings and shell histories would show them; `whose` says in the
/// error which key was missing.
///
/// # Errors
/// `var` is not set, is empty, or is not valid Unicode.
pub(crate) fn key_from_env(var: &str, whose: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(key) if !key.trim().is_empty() => Ok(key.trim().to_string()),
        Ok(_) => anyhow::bail!("the environment variable {var} ({whose}'s private key, hex) is empty"),
        Err(std::env::VarError::NotPresent) => {
            anyhow::bail!("the environment variable {var} ({whose}'s private key, hex) is not set")
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            anyhow::bail!("the environment variable {var} ({whose}'s private key, hex) is not valid UTF-8")
        }
    }
}

/// The environment variable that holds the key of an owner, a depositor or anyone sending
/// to the vault (`settle deposit`, `escape`, …) unless `--key-env` names another.
pub(crate) const OWNER_KEY_ENV: &str = "L2X_KEY";

/// `--amount`: a positive USDC amount as an exact decimal (`1000`, `0.5`, at most 6
/// decimals), in token base units (micro-USDC). No float is involved.
/// Only `DIGITS` or `DIGITS.DIGITS` with 1 to 6 decimals (no sign, `_`, exponent, spaces,
/// nor a leading or trailing point).
pub(crate) fn usdc(text: &str) -> Result<u64, String> {
    let wrong = || format!("{text:?} is not a positive USDC amount with at most 6 decimals (e.g. 1000 or 0.25)");
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let well_formed = match text.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction) && fraction.len() <= 6,
        None => digits(text),
    };
    if !well_formed {
        return Err(wrong());
    }
    let decimal = l2x_types::Decimal::from_str_exact(text).map_err(|_| wrong())?;
    let amount = l2x_types::Amount::from_decimal(decimal).map_err(|_| wrong())?;
    u64::try_from(amount.0).ok().filter(|&units| units > 0).ok_or_else(wrong)
}

/// `--account`: an account id, or `insurance` / `fees` (the fund's and the fee account's
/// leaf keys, 2^64 − 1 and 2^64 − 2).
pub(crate) fn holder(text: &str) -> Result<u64, String> {
    match text {
        "insurance" => Ok(u64::MAX),
        "fees" => Ok(u64::MAX - 1),
        _ => text.parse().map_err(|_| format!("{text:?} is not an account id (0 to 2^64 − 1), `insurance` or `fees`")),
    }
}

/// `text` with every URL in it (`http://`, `https://`, `ws://`, `wss://`) cut to its scheme
/// and host: an RPC URL often carries an API key in its user, path or query, and the
/// transport's errors repeat the whole URL (`error sending request for url (…)`). Every
/// error l2x prints goes through this.
pub(crate) fn without_url_secrets(text: &str) -> String {
    const SCHEMES: [&str; 4] = ["https://", "http://", "wss://", "ws://"];
    let ends_token = |c: char| c.is_whitespace() || matches!(c, ')' | '"' | '\'' | ',' | '>' | ']');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, scheme)) =
        SCHEMES.iter().filter_map(|s| rest.find(s).map(|at| (at, *s))).min_by_key(|&(at, s)| (at, usize::MAX - s.len()))
    {
        out.push_str(&rest[..at]);
        out.push_str(scheme);
        let url = &rest[at + scheme.len()..];
        let token_end = url.find(ends_token).unwrap_or(url.len());
        let token = &url[..token_end];
        let authority = &token[..token.find(['/', '?', '#']).unwrap_or(token.len())];
        out.push_str(authority.rsplit('@').next().unwrap_or_default());
        rest = &url[token_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (errors printed the whole RPC URL, API key included).
    #[test]
    fn urls_in_errors_keep_only_scheme_and_host() {
        let error = "reading the contract's code: error sending request for url \
                     (https://user:SECRET@node.example:8545/v3/SECRET?apikey=SECRET#SECRET): refused, \
                     ws://h/SECRET and http://plain";
        let shown = without_url_secrets(error);
        assert_eq!(
            shown,
            "reading the contract's code: error sending request for url (https://node.example:8545): refused, \
             ws://h and http://plain"
        );
        assert_eq!(without_url_secrets("no url here: 0x12"), "no url here: 0x12");
    }

    #[test]
    fn usdc_amounts_are_exact_positive_and_six_decimals_at_most() {
        assert_eq!(usdc("1000"), Ok(1_000_000_000));
        assert_eq!(usdc("0.000001"), Ok(1));
        assert_eq!(usdc("12.5"), Ok(12_500_000));
        for bad in ["0", "-1", "0.0000001", "1e3", "abc", "", "9223372036854.775808", "1.5 USDC"] {
            assert!(usdc(bad).is_err(), "{bad:?}");
        }
        assert_eq!(usdc("9223372036854.775807"), Ok(i64::MAX.cast_unsigned()));
    }

    #[test]
    fn usdc_parser_refuses_underscores_signs_and_bare_points() {
        for bad in ["1_000", "1__0", "+5", ".5", "5.", " 5", "5 ", "1.2.3", "0x10", "5.0000000", "١"] {
            assert!(usdc(bad).is_err(), "{bad:?}");
        }
        assert_eq!(usdc("007.100000"), Ok(7_100_000));
    }

    #[test]
    fn holders_are_ids_or_the_two_reserved_names() {
        assert_eq!(holder("7"), Ok(7));
        assert_eq!(holder("insurance"), Ok(u64::MAX));
        assert_eq!(holder("fees"), Ok(u64::MAX - 1));
        assert!(holder("-1").is_err() && holder("alice").is_err());
    }
}
