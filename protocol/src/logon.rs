//! Logon signing: an API key and the HMAC-SHA256 signature a `Logon` carries
//! (docs/PROTOCOL.md, "Authentication").
//!
//! ```text
//! signature = HMAC-SHA256(secret, "l2x-logon-v1" ‖ u64 key_id ‖ u64 timestamp_ns ‖ u64 nonce)
//! ```
//!
//! The client signs ([`Key::sign`]); the server checks the signature in constant time
//! ([`Key::verify`]). What else the server checks — the timestamp against its clock, the
//! nonce against the ones it has seen, the key against its accounts file — is the server's
//! (`l2x_gateway::auth`): nothing here reads a clock or remembers anything.

use hmac::{Hmac, KeyInit, Mac};
use l2x_types::AccountId;
use sha2::Sha256;

use crate::codec::Logon;
use crate::codes::Refusal;

/// Domain separation of the signed bytes.
const CONTEXT: &[u8] = b"l2x-logon-v1";

/// One API key: its id, the account it acts for, and its 32-byte secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    /// Key id (what the client sends).
    pub id: u64,
    /// The account it acts for.
    pub account: AccountId,
    secret: [u8; 32],
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Key").field("id", &self.id).field("account", &self.account).field("secret", &"…").finish()
    }
}

impl Key {
    /// A key (tests and embedded configurations).
    pub fn new(id: u64, account: AccountId, secret: [u8; 32]) -> Key {
        Key { id, account, secret }
    }

    /// Signs a logon with this key (what the client library does).
    pub fn sign(&self, timestamp_ns: u64, nonce: u64) -> [u8; 32] {
        sign(&self.secret, self.id, timestamp_ns, nonce)
    }

    /// Checks a logon's signature against this key, in constant time. The logon's key id
    /// is signed too: a logon for another key never verifies.
    ///
    /// # Errors
    /// [`Refusal::BadSignature`].
    pub fn verify(&self, logon: &Logon) -> Result<(), Refusal> {
        mac(&self.secret, logon.key_id, logon.timestamp_ns, logon.nonce)
            .verify_slice(&logon.signature)
            .map_err(|_| Refusal::BadSignature)
    }
}

fn mac(secret: &[u8; 32], key_id: u64, timestamp_ns: u64, nonce: u64) -> Hmac<Sha256> {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(CONTEXT);
    m.update(&key_id.to_le_bytes());
    m.update(&timestamp_ns.to_le_bytes());
    m.update(&nonce.to_le_bytes());
    m
}

/// The logon signature a client computes.
pub fn sign(secret: &[u8; 32], key_id: u64, timestamp_ns: u64, nonce: u64) -> [u8; 32] {
    mac(secret, key_id, timestamp_ns, nonce).finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_signature_covers_the_key_the_timestamp_and_the_nonce() {
        let key = Key::new(1, AccountId(7), [3; 32]);
        assert_eq!(key.verify(&logon(&key, 10, 5)), Ok(()));
        let mut forged = logon(&key, 10, 5);
        forged.signature[0] ^= 1;
        assert_eq!(key.verify(&forged), Err(Refusal::BadSignature));
        for change in [|l: &mut Logon| l.key_id += 1, |l: &mut Logon| l.timestamp_ns += 1, |l: &mut Logon| l.nonce += 1]
        {
            let mut moved = logon(&key, 10, 5);
            change(&mut moved);
            assert_eq!(key.verify(&moved), Err(Refusal::BadSignature));
        }
        let other = Key::new(1, AccountId(7), [4; 32]);
        assert_eq!(other.verify(&logon(&key, 10, 5)), Err(Refusal::BadSignature));
    }
}
