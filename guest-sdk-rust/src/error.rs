//! The SDK's error type.

use crate::host::{HostError, HostHttpError};

/// Everything that can go wrong when a plugin uses a host capability.
///
/// The first three variants come from the host: a capability the host did
/// not grant, a quota it enforces, or arguments it rejected. They are
/// ordinary values, never traps, so a plugin can handle them (for example
/// fall back to a default when configuration is denied). The other variants
/// are raised inside the plugin by the SDK's typed helpers.
///
/// [`http`](crate::http) adds three more host outcomes: [`Error::TooLarge`],
/// [`Error::Timeout`] and [`Error::Connection`]; its denials (naming what the
/// host would have to grant) are [`Error::Denied`].
///
/// The enum is `#[non_exhaustive]`: new capabilities will add variants, so a
/// `match` needs a `_` arm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host did not grant this capability, or this key, to the plugin.
    /// The payload is the host's explanation of what was denied.
    #[error("denied by the host: {0}")]
    Denied(String),

    /// The call would exceed a quota the host set, such as the key-value
    /// namespace's byte quota. The payload says which quota.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),

    /// The host rejected the arguments, for example an empty key.
    #[error("rejected by the host as invalid: {0}")]
    Invalid(String),

    /// An HTTP request body, or its response, is larger than the host
    /// allows. The payload gives the cap in bytes.
    #[error("too large: {0}")]
    TooLarge(String),

    /// An HTTP request ran out of time: the host's timeout for it, which
    /// never outlasts the call's deadline.
    #[error("timed out: {0}")]
    Timeout(String),

    /// An HTTP request could not be completed: the name did not resolve, or
    /// connecting, TLS or the exchange failed.
    #[error("connection failed: {0}")]
    Connection(String),

    /// A value could not be decoded from CBOR into the requested type. The
    /// payload names the value (the key-value key, when there is one) and
    /// the decoder's reason.
    #[error("cannot decode CBOR: {0}")]
    Decode(String),

    /// A value could not be encoded as CBOR.
    #[error("cannot encode CBOR: {0}")]
    Encode(String),

    /// A configuration value is present but does not parse as the requested
    /// type (see [`config::get_parsed`](crate::config::get_parsed)).
    #[error("config key `{key}` is malformed: {reason}")]
    Parse {
        /// The configuration key whose value was malformed.
        key: String,
        /// Why it did not parse (the type's own `FromStr` error message).
        reason: String,
    },
}

impl From<HostError> for Error {
    fn from(error: HostError) -> Self {
        match error {
            HostError::Denied(what) => Error::Denied(what),
            HostError::QuotaExceeded(which) => Error::QuotaExceeded(which),
            HostError::Invalid(why) => Error::Invalid(why),
        }
    }
}

impl From<HostHttpError> for Error {
    fn from(error: HostHttpError) -> Self {
        match error {
            HostHttpError::Denied(what) => Error::Denied(what),
            HostHttpError::TooLarge(what) => Error::TooLarge(what),
            HostHttpError::Timeout(what) => Error::Timeout(what),
            HostHttpError::Connection(what) => Error::Connection(what),
            HostHttpError::Invalid(why) => Error::Invalid(why),
        }
    }
}

/// Lets `?` turn an [`Error`] into a `String`, the error type of many plugin
/// exports (`result<T, string>` in WIT). The string is the error's `Display`.
impl From<Error> for String {
    fn from(error: Error) -> Self {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_map_to_the_matching_variant() {
        let cases = [
            (HostError::Denied("kv".into()), Error::Denied("kv".into())),
            (
                HostError::QuotaExceeded("kv bytes".into()),
                Error::QuotaExceeded("kv bytes".into()),
            ),
            (
                HostError::Invalid("empty key".into()),
                Error::Invalid("empty key".into()),
            ),
        ];
        for (host, expected) in cases {
            assert_eq!(Error::from(host), expected);
        }
    }

    #[test]
    fn display_messages_say_what_happened() {
        assert_eq!(
            Error::Denied("config".into()).to_string(),
            "denied by the host: config"
        );
        assert_eq!(
            Error::QuotaExceeded("kv namespace over 1024 bytes".into()).to_string(),
            "quota exceeded: kv namespace over 1024 bytes"
        );
        assert_eq!(
            Error::Invalid("empty key".into()).to_string(),
            "rejected by the host as invalid: empty key"
        );
        assert_eq!(
            Error::Decode("kv key `a`: unexpected end".into()).to_string(),
            "cannot decode CBOR: kv key `a`: unexpected end"
        );
        assert_eq!(
            Error::Encode("map key is not a string".into()).to_string(),
            "cannot encode CBOR: map key is not a string"
        );
        let parse = Error::Parse {
            key: "threshold".into(),
            reason: "invalid digit found in string".into(),
        };
        assert_eq!(
            parse.to_string(),
            "config key `threshold` is malformed: invalid digit found in string"
        );
    }

    #[test]
    fn question_mark_converts_to_string_errors() {
        fn export() -> Result<(), String> {
            Err(Error::Denied("log".into()))?;
            Ok(())
        }
        assert_eq!(export(), Err("denied by the host: log".to_string()));
    }
}
