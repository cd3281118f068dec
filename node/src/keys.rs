//! The node's API keys: the accounts file the config names, or the public demo keys.
//!
//! The demo keys are documented (docs/PROTOCOL.md: key `n`'s secret is 32 bytes each of
//! value `n`), so anyone can log on with them: they are accepted only when both trading
//! ports are on loopback. A new journal deposits to every key's account, so a key on a
//! reserved account, or a deposit for an account no key trades, is refused before anything
//! starts ([`check_accounts`]).

use l2x_gateway::auth::Keys;
use l2x_protocol::logon::Key;
use l2x_types::AccountId;

use crate::config::{Config, ConfigError, Result, read_small_file};

/// Public demo key `id` (1–4 by default): key id and account `id`, secret 32 bytes each equal to `id`.
pub fn demo_key(id: u8) -> Key {
    Key::new(u64::from(id), AccountId(u64::from(id)), [id; 32])
}

/// The public demo keys used when no accounts file is given.
pub fn demo_keys() -> Keys {
    Keys::from_keys((1..=4u8).map(demo_key)).unwrap_or_default()
}

/// The config's keys: its accounts file, or the demo keys — which are public, so only on
/// loopback addresses.
///
/// # Errors
/// The accounts file cannot be read or parsed (the error names it); no accounts file and a
/// trading port off loopback.
pub fn keys(config: &Config) -> Result<Keys> {
    match &config.accounts.keys_file {
        Some(path) => {
            let in_file = |source| ConfigError::KeysFile { path: path.clone(), source: Box::new(source) };
            let text = read_small_file(path, Config::MAX_FILE_BYTES).map_err(in_file)?;
            Keys::parse(&text).map_err(|e| in_file(ConfigError::Accounts(e)))
        }
        None => {
            let ports = [config.ports.order_entry, config.ports.market_data];
            match ports.into_iter().find(|a| !a.ip().is_loopback()) {
                Some(addr) => Err(ConfigError::DemoKeysOffLoopback { addr }),
                None => Ok(demo_keys()),
            }
        }
    }
}

/// The keys' accounts and the config's deposits agree: no key on a reserved account (a new
/// journal deposits to every key's account), and no deposit for an account without a key
/// (it would be dropped silently).
///
/// # Errors
/// [`ConfigError::KeyOnReserved`], [`ConfigError::NotAnAccount`],
/// [`ConfigError::DepositWithoutKey`].
pub fn check_accounts(config: &Config, keys: &Keys) -> Result<()> {
    let file = || config.accounts.keys_file.as_ref().map_or("the demo keys".to_string(), |p| p.display().to_string());
    if let Some(key) = keys.iter().find(|k| k.account.is_reserved()) {
        return Err(ConfigError::KeyOnReserved { file: file(), key: key.id, account: key.account });
    }
    for account in config.accounts.deposits.keys() {
        let id = crate::config::sections::deposit_account(account)?;
        if !keys.iter().any(|k| k.account.0 == id) {
            return Err(ConfigError::DepositWithoutKey { id, file: file() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/PROTOCOL.md tells a client written from it alone what the demo keys are: key
    /// `n`'s secret is 32 bytes each of value `n`, and its signature example is demo key 1's.
    #[test]
    fn the_demo_keys_are_what_protocol_md_says() {
        let (timestamp_ns, nonce) = (1_700_000_000_000_000_000, 7);
        for n in 1..=4u8 {
            let key = demo_key(n);
            assert_eq!((key.id, key.account), (u64::from(n), AccountId(u64::from(n))));
            let described = l2x_protocol::logon::sign(&[n; 32], u64::from(n), timestamp_ns, nonce);
            assert_eq!(key.sign(timestamp_ns, nonce), described, "key {n}");
        }
        let doc = include_str!("../../docs/PROTOCOL.md");
        let signature: String = demo_key(1).sign(timestamp_ns, nonce).iter().map(|b| format!("{b:02x}")).collect();
        assert!(doc.lines().any(|l| l == format!("signature    = {signature}")), "{signature}");
        assert!(doc.contains("key `n`'s secret is 32 bytes each of value `n`"));
    }
}
