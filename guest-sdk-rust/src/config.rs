//! Read-only configuration from the host (`wasmplug:host/config`).
//!
//! The host sets string values per plugin (per tenant, in a multi-tenant
//! host). Use [`get`] for the raw string, [`get_parsed`] for any type that
//! implements [`FromStr`].
//!
//! ```no_run
//! # // no_run: the import only exists inside a wasm host.
//! use wasmplug_guest::{config, Error};
//!
//! fn threshold() -> Result<i32, Error> {
//!     // Missing key: use a default. Malformed value: Error::Parse names the key.
//!     Ok(config::get_parsed::<i32>("delay-threshold-min")?.unwrap_or(15))
//! }
//! ```

use std::fmt::Display;
use std::str::FromStr;

use crate::host;
use crate::Error;

/// Returns the value the host set for `key`, or `None` when it set no such
/// key.
///
/// # Errors
///
/// [`Error::Denied`] when the host did not grant configuration (or this
/// key); [`Error::Invalid`] when it rejects the key.
pub fn get(key: &str) -> Result<Option<String>, Error> {
    host::config::get(key).map_err(Error::from)
}

/// Returns every key the host set, sorted.
///
/// # Errors
///
/// [`Error::Denied`] when the host did not grant configuration.
pub fn keys() -> Result<Vec<String>, Error> {
    host::config::keys().map_err(Error::from)
}

/// Returns the value of `key` parsed as a `T`, or `None` when the host set no
/// such key.
///
/// The value is parsed as it is, without trimming whitespace.
///
/// # Errors
///
/// [`Error::Parse`] naming `key` and carrying the `FromStr` error's message
/// when the value does not parse; otherwise as [`get`].
pub fn get_parsed<T>(key: &str) -> Result<Option<T>, Error>
where
    T: FromStr,
    T::Err: Display,
{
    get(key)?.map(|value| parse_value(key, &value)).transpose()
}

/// Parses the value of configuration key `key`.
fn parse_value<T>(key: &str, value: &str) -> Result<T, Error>
where
    T: FromStr,
    T::Err: Display,
{
    value.parse().map_err(|e: T::Err| Error::Parse {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake;
    use crate::log::Level;

    fn set_config(pairs: &[(&str, &str)]) {
        fake::reset();
        fake::with_state(|state| {
            for (k, v) in pairs {
                state.config.insert(k.to_string(), v.to_string());
            }
        });
    }

    #[test]
    fn get_returns_the_value_or_none() {
        set_config(&[("region", "us-east")]);
        assert_eq!(get("region"), Ok(Some("us-east".to_string())));
        assert_eq!(get("missing"), Ok(None));
    }

    #[test]
    fn keys_lists_what_the_host_set() {
        set_config(&[("b", "2"), ("a", "1")]);
        assert_eq!(keys(), Ok(vec!["a".to_string(), "b".to_string()]));
    }

    #[test]
    fn get_parsed_parses_numbers_booleans_and_levels() {
        set_config(&[
            ("threshold", "-15"),
            ("ratio", "0.25"),
            ("strict", "true"),
            ("verbosity", "debug"),
        ]);
        assert_eq!(get_parsed::<i32>("threshold"), Ok(Some(-15)));
        assert_eq!(get_parsed::<f64>("ratio"), Ok(Some(0.25)));
        assert_eq!(get_parsed::<bool>("strict"), Ok(Some(true)));
        assert_eq!(get_parsed::<Level>("verbosity"), Ok(Some(Level::Debug)));
        assert_eq!(get_parsed::<u8>("missing"), Ok(None));
    }

    #[test]
    fn malformed_values_name_the_key_and_the_reason() {
        set_config(&[("threshold", "fifteen"), ("small", "300"), ("padded", " 5")]);
        assert_eq!(
            get_parsed::<i32>("threshold"),
            Err(Error::Parse {
                key: "threshold".into(),
                reason: "invalid digit found in string".into(),
            })
        );
        assert_eq!(
            get_parsed::<u8>("small"),
            Err(Error::Parse {
                key: "small".into(),
                reason: "number too large to fit in target type".into(),
            })
        );
        assert!(matches!(
            get_parsed::<u32>("padded"),
            Err(Error::Parse { key, .. }) if key == "padded"
        ));
        let message = get_parsed::<i32>("threshold").unwrap_err().to_string();
        assert_eq!(
            message,
            "config key `threshold` is malformed: invalid digit found in string"
        );
    }

    #[test]
    fn a_denial_reaches_the_caller() {
        set_config(&[("threshold", "1")]);
        fake::with_state(|state| state.denied.insert("config"));
        let denied = Error::Denied("config is not granted".into());
        assert_eq!(get("threshold"), Err(denied.clone()));
        assert_eq!(get_parsed::<i32>("threshold"), Err(denied.clone()));
        assert_eq!(keys(), Err(denied));
    }
}
