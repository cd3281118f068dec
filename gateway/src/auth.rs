//! Logon authentication on the server: the API keys of the accounts file, and the checks
//! around a logon's signature (docs/PROTOCOL.md, "Authentication").
//!
//! A logon is refused if its key is unknown, its timestamp is more than `max_skew` from the
//! server's clock, its signature does not verify ([`Key::verify`], constant time), or its
//! nonce was seen for that key within the nonce window. The signature itself is the
//! protocol's (`l2x_protocol::logon`); the server passes its clock in: nothing here reads
//! time.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use l2x_protocol::codec::Logon;
use l2x_protocol::codes::Refusal;
use l2x_protocol::logon::Key;
use l2x_types::AccountId;
use serde::Deserialize;

/// Why an accounts file is invalid; the message names the entry and the field.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not valid TOML, or not the expected shape.
    #[error("accounts file: {0}")]
    Toml(#[source] toml::de::Error),
    /// An entry with a bad field.
    #[error("accounts file, key #{index} (id {id}): {problem}")]
    Entry {
        /// 1-based position of the `[[key]]` entry.
        index: usize,
        /// Its id.
        id: u64,
        /// What is wrong.
        problem: EntryProblem,
    },
}

/// What is wrong with one `[[key]]` entry of an accounts file.
#[derive(Debug, thiserror::Error)]
pub enum EntryProblem {
    /// The secret is not hexadecimal.
    #[error("secret is not hexadecimal")]
    NotHex(#[source] hex::FromHexError),
    /// The secret is not 32 bytes.
    #[error("secret must be 32 bytes (64 hex characters)")]
    SecretLength {
        /// How many bytes it has.
        bytes: usize,
    },
    /// Another entry has the same key id.
    #[error("duplicate key id")]
    DuplicateId,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    key: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: u64,
    account: u64,
    secret: String,
}

/// The API keys of an accounts file.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    by_id: BTreeMap<u64, Key>,
}

impl Keys {
    /// Keys from a list.
    ///
    /// # Errors
    /// A duplicate id.
    pub fn from_keys(keys: impl IntoIterator<Item = Key>) -> Result<Keys, AccountsError> {
        let mut by_id = BTreeMap::new();
        for (i, k) in keys.into_iter().enumerate() {
            let id = k.id;
            if by_id.insert(id, k).is_some() {
                return Err(AccountsError::Entry { index: i + 1, id, problem: EntryProblem::DuplicateId });
            }
        }
        Ok(Keys { by_id })
    }

    /// Every key, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Key> {
        self.by_id.values()
    }

    /// Parses the TOML accounts file format (docs/PROTOCOL.md).
    ///
    /// # Errors
    /// [`AccountsError`] naming the entry and the field.
    pub fn parse(text: &str) -> Result<Keys, AccountsError> {
        let file: File = toml::from_str(text).map_err(AccountsError::Toml)?;
        let mut keys = Vec::with_capacity(file.key.len());
        for (i, e) in file.key.into_iter().enumerate() {
            let bad = |problem| AccountsError::Entry { index: i + 1, id: e.id, problem };
            let bytes = hex::decode(&e.secret).map_err(|source| bad(EntryProblem::NotHex(source)))?;
            let secret: [u8; 32] =
                bytes.try_into().map_err(|b: Vec<u8>| bad(EntryProblem::SecretLength { bytes: b.len() }))?;
            keys.push(Key::new(e.id, AccountId(e.account), secret));
        }
        Keys::from_keys(keys)
    }

    /// Reads and parses an accounts file.
    ///
    /// # Errors
    /// [`AccountsError`].
    pub fn load(path: &Path) -> Result<Keys, AccountsError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| AccountsError::Io { path: path.to_path_buf(), source })?;
        Keys::parse(&text)
    }

    /// The key with this id.
    pub fn get(&self, id: u64) -> Option<&Key> {
        self.by_id.get(&id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// `true` if there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Verifies logons and remembers recent nonces per key.
#[derive(Debug)]
pub struct Authenticator {
    keys: Keys,
    max_skew_ns: u64,
    nonce_window_ns: u64,
    seen: BTreeMap<u64, VecDeque<(u64, u64)>>,
}

impl Authenticator {
    /// Clock skew allowed by default: 5 s.
    pub const DEFAULT_SKEW_NS: u64 = 5_000_000_000;
    /// How long a nonce is remembered: 60 s.
    pub const NONCE_WINDOW_NS: u64 = 60_000_000_000;

    /// An authenticator over these keys.
    pub fn new(keys: Keys) -> Authenticator {
        Authenticator {
            keys,
            max_skew_ns: Self::DEFAULT_SKEW_NS,
            nonce_window_ns: Self::NONCE_WINDOW_NS,
            seen: BTreeMap::new(),
        }
    }

    /// The keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Verifies a logon at server time `now_ns`; returns the key.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn verify(&mut self, logon: &Logon, now_ns: u64) -> Result<&Key, Refusal> {
        let key = self.keys.get(logon.key_id).ok_or(Refusal::UnknownKey)?;
        if now_ns.abs_diff(logon.timestamp_ns) > self.max_skew_ns {
            return Err(Refusal::StaleTimestamp);
        }
        key.verify(logon)?;
        let seen = self.seen.entry(key.id).or_default();
        while seen.front().is_some_and(|&(t, _)| t + self.nonce_window_ns < now_ns) {
            seen.pop_front();
        }
        if seen.iter().any(|&(_, n)| n == logon.nonce) {
            return Err(Refusal::ReplayedNonce);
        }
        seen.push_back((now_ns, logon.nonce));
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn keys() -> Keys {
        Keys::parse(&format!("[[key]]\nid = 1\naccount = 7\nsecret = \"{SECRET}\"\n")).unwrap()
    }

    fn logon(key: &Key, ts: u64, nonce: u64) -> Logon {
        Logon {
            key_id: key.id,
            timestamp_ns: ts,
            nonce,
            signature: key.sign(ts, nonce),
            heartbeat_ms: 1000,
            cancel_on_disconnect: false,
            resume_from: 0,
        }
    }

    #[test]
    fn a_signed_logon_verifies_once() {
        let mut auth = Authenticator::new(keys());
        let key = auth.keys().get(1).unwrap().clone();
        assert_eq!(key.account, AccountId(7));
        let now = 1_000_000_000_000;
        assert_eq!(auth.verify(&logon(&key, now, 5), now).map(|k| k.id), Ok(1));
        assert_eq!(auth.verify(&logon(&key, now, 5), now + 1).map(|k| k.id), Err(Refusal::ReplayedNonce));
        // Outside the window the nonce may come back.
        let later = now + Authenticator::NONCE_WINDOW_NS + 1;
        assert_eq!(auth.verify(&logon(&key, later, 5), later).map(|k| k.id), Ok(1));
    }

    #[test]
    fn bad_logons_are_refused_with_their_reason() {
        let mut auth = Authenticator::new(keys());
        let key = auth.keys().get(1).unwrap().clone();
        let now = 1_000_000_000_000;
        let mut forged = logon(&key, now, 1);
        forged.signature[0] ^= 1;
        assert_eq!(auth.verify(&forged, now).err(), Some(Refusal::BadSignature));
        let mut other = logon(&key, now, 2);
        other.key_id = 9;
        assert_eq!(auth.verify(&other, now).err(), Some(Refusal::UnknownKey));
        let stale = logon(&key, now - Authenticator::DEFAULT_SKEW_NS - 1, 3);
        assert_eq!(auth.verify(&stale, now).err(), Some(Refusal::StaleTimestamp));
        // The signature covers the timestamp: moving it breaks the signature.
        let mut moved = logon(&key, now, 4);
        moved.timestamp_ns += 1;
        assert_eq!(auth.verify(&moved, now).err(), Some(Refusal::BadSignature));
    }

    #[test]
    fn accounts_files_are_validated() {
        assert!(
            Keys::parse("[[key]]\nid = 1\naccount = 7\nsecret = \"00\"\n")
                .unwrap_err()
                .to_string()
                .contains("key #1 (id 1): secret must be 32 bytes")
        );
        assert!(
            Keys::parse("[[key]]\nid = 1\naccount = 7\nsecret = \"zz\"\n")
                .unwrap_err()
                .to_string()
                .contains("not hexadecimal")
        );
        let dup = format!(
            "[[key]]\nid = 1\naccount = 7\nsecret = \"{SECRET}\"\n[[key]]\nid = 1\naccount = 8\nsecret = \"{SECRET}\"\n"
        );
        assert!(Keys::parse(&dup).unwrap_err().to_string().contains("key #2 (id 1): duplicate key id"));
        assert!(Keys::parse("[[key]]\nid = 1\naccount = 7\n").unwrap_err().to_string().contains("secret"));
        assert!(
            Keys::parse("[[key]]\nid = 1\naccount = 7\nsecret = \"00\"\ncolour = 1\n")
                .unwrap_err()
                .to_string()
                .contains("colour")
        );
        assert!(Keys::parse("").unwrap().is_empty());
    }

    /// The parser's and the hex decoder's errors stay reachable, typed, instead of being
    /// flattened into strings.
    #[test]
    fn accounts_file_errors_keep_their_cause() {
        let err = Keys::parse("[[key]]\nid = \"one\"\n").unwrap_err();
        assert!(matches!(err, AccountsError::Toml(_)));
        assert!(std::error::Error::source(&err).is_some());
        let err = Keys::parse("[[key]]\nid = 1\naccount = 7\nsecret = \"zz\"\n").unwrap_err();
        assert!(matches!(err, AccountsError::Entry { index: 1, id: 1, problem: EntryProblem::NotHex(_) }), "{err:?}");
        let err = Keys::parse("[[key]]\nid = 1\naccount = 7\nsecret = \"00\"\n").unwrap_err();
        assert!(
            matches!(err, AccountsError::Entry { problem: EntryProblem::SecretLength { bytes: 1 }, .. }),
            "{err:?}"
        );
        let missing = Keys::load(Path::new("/nonexistent/accounts.toml")).unwrap_err();
        assert!(missing.to_string().starts_with("/nonexistent/accounts.toml: "), "{missing}");
    }
}
