//! The codes the gateway itself puts on the wire (docs/PROTOCOL.md, "Reason codes"): why a
//! session ends ([`LogoutReason`]), why the gateway refused a request itself
//! ([`SessionReject`]: `throttled`, `not_authorized` and the frame errors 403–406) and why a
//! logon was refused ([`Refusal`]). The engine's reject and cancel reasons are
//! `l2x_types::RejectReason` and `l2x_types::CancelReason`.
//!
//! Codes are part of the protocol: never reused or renumbered. A test reads the tables of
//! docs/PROTOCOL.md and compares them with [`LogoutReason::ALL`], [`SessionReject::ALL`],
//! [`Refusal::ALL`] and the engine's enums, so the document cannot lose a code.
//!
//! The wire carries these as plain integers (`Rejected.reason`, `Logout.reason`): a client
//! must read a code it does not know, so the decoded messages keep the number and
//! `from_code` says whether it is one of these.

/// An enum of stable wire codes with `ALL`, `code()`, `from_code()` and `as_str()` (its name
/// in docs/PROTOCOL.md and the logs).
macro_rules! wire_codes {
    (
        $(#[$doc:meta])*
        $vis:vis enum $name:ident: $repr:ty {
            $( $(#[$vdoc:meta])* $variant:ident = $code:literal => $text:literal, )+
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr($repr)]
        $vis enum $name {
            $( $(#[$vdoc])* $variant = $code, )+
        }

        impl $name {
            /// Every value, in code order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable numeric code.
            #[inline]
            pub const fn code(self) -> $repr {
                self as $repr
            }

            /// The value with this code, if any.
            #[inline]
            pub const fn from_code(code: $repr) -> Option<$name> {
                match code {
                    $( $code => Some($name::$variant), )+
                    _ => None,
                }
            }

            /// Its name in docs/PROTOCOL.md and the logs.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use wire_codes;

wire_codes! {
    /// Why the server ends a session: the reason of its `Logout`. (A client's `Logout` may
    /// carry any code; the server answers every one with [`LogoutReason::ClientRequest`].)
    pub enum LogoutReason: u16 {
        /// The client sent `Logout`.
        ClientRequest = 1 => "client_request",
        /// Nothing received for 3 heartbeat intervals.
        HeartbeatTimeout = 2 => "heartbeat_timeout",
        /// Kept sending while throttled.
        ThrottleExceeded = 3 => "throttle_exceeded",
        /// Did not read its reports: its unsent bytes passed the bound.
        SlowConsumer = 4 => "slow_consumer",
        /// A frame's length field above 1024.
        FrameTooLarge = 5 => "frame_too_large",
        /// A frame's length field below 4, or more than 100 malformed frames.
        Malformed = 6 => "malformed",
        /// Anything but a valid `Logon` first, or no logon within 5 seconds.
        NotLoggedIn = 7 => "not_logged_in",
        /// The server is stopping.
        ServerShutdown = 8 => "server_shutdown",
        /// The key logged on again on another connection.
        Superseded = 24 => "superseded",
    }
}

wire_codes! {
    /// Why the gateway refused a request itself, before the engine saw it: the 4xx band of
    /// `Rejected.reason`. Such a reject carries seq 0, goes only to the session that caused
    /// it, is never replayed, and the session goes on.
    pub enum SessionReject: u16 {
        /// The session's bucket for this request is empty (`retry_after_ms` says when to
        /// try again).
        Throttled = 400 => "throttled",
        /// A second `Logon` on a logged-on session.
        NotAuthorized = 401 => "not_authorized",
        /// No client message has this template id.
        UnknownTemplate = 403 => "unknown_template",
        /// The template exists, not in this schema version.
        UnsupportedVersion = 404 => "unsupported_version",
        /// The block is not the template's length.
        BadLength = 405 => "bad_length",
        /// A field out of range: an enum code, a flag, a reserved byte or header flag, a value
        /// its flag does not announce.
        BadField = 406 => "bad_field",
    }
}

wire_codes! {
    /// Why a logon was refused: the reason of a `LogonReject` (docs/PROTOCOL.md).
    pub enum Refusal: u16 {
        /// No such key.
        UnknownKey = 20 => "unknown_key",
        /// The signature does not verify.
        BadSignature = 21 => "bad_signature",
        /// The timestamp is more than 5 seconds from the server's clock.
        StaleTimestamp = 22 => "stale_timestamp",
        /// The nonce was used for this key within the last minute.
        ReplayedNonce = 23 => "replayed_nonce",
    }
}

impl std::error::Error for Refusal {}

#[cfg(test)]
mod tests {
    use l2x_types::RejectReason;

    use super::*;

    #[test]
    fn codes_round_trip_and_do_not_overlap_the_engines() {
        for &r in LogoutReason::ALL {
            assert_eq!(LogoutReason::from_code(r.code()), Some(r));
        }
        for &r in SessionReject::ALL {
            assert_eq!(SessionReject::from_code(r.code()), Some(r));
            match RejectReason::from_code(r.code()) {
                None => {}
                // `l2x_types::RejectReason` still lists the two session codes the gateway
                // sends; until it drops them they must be the same codes with the same names.
                Some(engine) => {
                    assert!(matches!(r, SessionReject::Throttled | SessionReject::NotAuthorized), "{r}");
                    assert_eq!(engine.as_str(), r.as_str());
                }
            }
        }
        for r in [
            SessionReject::UnknownTemplate,
            SessionReject::UnsupportedVersion,
            SessionReject::BadLength,
            SessionReject::BadField,
        ] {
            assert!(RejectReason::from_code(r.code()).is_none(), "{r}");
        }
        for &r in Refusal::ALL {
            assert_eq!(Refusal::from_code(r.code()), Some(r));
        }
        assert_eq!(LogoutReason::from_code(0), None);
    }
}
