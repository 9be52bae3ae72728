//! The plugin's key-value namespace on the host (`wasmplug:host/kv`).
//!
//! Values are bytes; [`get_cbor`] and [`set_cbor`] store any serde type as
//! CBOR (see [`cbor`]), which the Python host reads back with
//! `cbor2`. The host enforces a byte quota over keys and values together.
//!
//! ```no_run
//! # // no_run: the import only exists inside a wasm host.
//! use serde::{Deserialize, Serialize};
//! use wasmplug_guest::{kv, Error};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Stats {
//!     flights_seen: u64,
//! }
//!
//! fn count_flight() -> Result<u64, Error> {
//!     let mut stats: Stats = kv::get_cbor("stats")?.unwrap_or_default();
//!     stats.flights_seen += 1;
//!     kv::set_cbor("stats", &stats)?; // Error::QuotaExceeded past the quota
//!     Ok(stats.flights_seen)
//! }
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{cbor, host, Error};

/// Returns the bytes stored under `key`, or `None` when there are none.
///
/// # Errors
///
/// [`Error::Denied`] when the host did not grant the key-value store;
/// [`Error::Invalid`] when it rejects the key (for example an empty key).
pub fn get(key: &str) -> Result<Option<Vec<u8>>, Error> {
    host::kv::get(key).map_err(Error::from)
}

/// Stores `value` under `key`, replacing any previous value.
///
/// # Errors
///
/// [`Error::QuotaExceeded`] when the namespace would grow past its quota
/// (keys and values both count, in bytes); otherwise as [`get`].
pub fn set(key: &str, value: &[u8]) -> Result<(), Error> {
    host::kv::set(key, value).map_err(Error::from)
}

/// Removes `key`; returns whether it existed.
///
/// # Errors
///
/// As [`get`].
pub fn delete(key: &str) -> Result<bool, Error> {
    host::kv::delete(key).map_err(Error::from)
}

/// Returns the keys that start with `prefix`, sorted. An empty prefix lists
/// every key.
///
/// # Errors
///
/// As [`get`].
pub fn list_keys(prefix: &str) -> Result<Vec<String>, Error> {
    host::kv::list_keys(prefix).map_err(Error::from)
}

/// Returns the CBOR value stored under `key` decoded as a `T`, or `None`
/// when there is none.
///
/// # Errors
///
/// [`Error::Decode`] (naming the key) when the stored bytes are not a CBOR
/// encoding of a `T`; otherwise as [`get`].
pub fn get_cbor<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

/// Stores `value` under `key` encoded as CBOR, replacing any previous value.
///
/// # Errors
///
/// [`Error::Encode`] (naming the key) when the value cannot be encoded;
/// otherwise as [`set`].
pub fn set_cbor<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    set(key, &encode(key, value)?)
}

/// Decodes the value of `key`, naming the key in the error.
fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, Error> {
    cbor::from_slice(bytes).map_err(|e| match e {
        Error::Decode(reason) => Error::Decode(format!("kv key `{key}`: {reason}")),
        other => other,
    })
}

/// Encodes the value for `key`, naming the key in the error.
fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<Vec<u8>, Error> {
    cbor::to_vec(value).map_err(|e| match e {
        Error::Encode(reason) => Error::Encode(format!("kv key `{key}`: {reason}")),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::host::fake;

    #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
    struct Stats {
        flights_seen: u64,
        worst_delay_min: Option<i32>,
        by_carrier: BTreeMap<String, u32>,
    }

    #[test]
    fn bytes_round_trip() {
        fake::reset();
        assert_eq!(get("k"), Ok(None));
        set("k", b"\x00\xffraw").unwrap();
        assert_eq!(get("k"), Ok(Some(b"\x00\xffraw".to_vec())));
        assert_eq!(delete("k"), Ok(true));
        assert_eq!(delete("k"), Ok(false));
        assert_eq!(get("k"), Ok(None));
    }

    #[test]
    fn list_keys_filters_by_prefix() {
        fake::reset();
        for key in ["stats/ua", "stats/aa", "seen"] {
            set(key, b"").unwrap();
        }
        assert_eq!(
            list_keys("stats/"),
            Ok(vec!["stats/aa".to_string(), "stats/ua".to_string()])
        );
        assert_eq!(list_keys("").unwrap().len(), 3);
    }

    #[test]
    fn typed_values_round_trip_as_cbor() {
        fake::reset();
        let stats = Stats {
            flights_seen: 336_776,
            worst_delay_min: Some(1301),
            by_carrier: BTreeMap::from([("UA".into(), 58_665), ("HA".into(), 342)]),
        };
        set_cbor("stats", &stats).unwrap();
        assert_eq!(get_cbor::<Stats>("stats"), Ok(Some(stats.clone())));
        // What the host stores is plain CBOR.
        let stored = fake::with_state(|state| state.kv["stats"].clone());
        assert_eq!(cbor::from_slice::<Stats>(&stored), Ok(stats));
        assert_eq!(get_cbor::<Stats>("missing"), Ok(None));
    }

    #[test]
    fn unsized_values_can_be_stored() {
        fake::reset();
        set_cbor("name", "tenant-a").unwrap();
        set_cbor("ids", &[1u16, 2, 3][..]).unwrap();
        assert_eq!(get_cbor::<String>("name"), Ok(Some("tenant-a".into())));
        assert_eq!(get_cbor::<Vec<u16>>("ids"), Ok(Some(vec![1, 2, 3])));
    }

    #[test]
    fn decode_errors_name_the_key() {
        fake::reset();
        set("stats", b"\xff\xff").unwrap();
        match get_cbor::<Stats>("stats") {
            Err(Error::Decode(message)) => {
                assert!(message.starts_with("kv key `stats`: "), "{message}")
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    #[test]
    fn encode_errors_name_the_key() {
        struct Unencodable;
        impl Serialize for Unencodable {
            fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(serde::ser::Error::custom("refused"))
            }
        }
        fake::reset();
        match set_cbor("bad", &Unencodable) {
            Err(Error::Encode(message)) => {
                assert!(message.starts_with("kv key `bad`: "), "{message}");
                assert!(message.contains("refused"), "{message}");
            }
            other => panic!("expected an encode error, got {other:?}"),
        }
        assert_eq!(get("bad"), Ok(None), "nothing is stored on failure");
    }

    #[test]
    fn host_errors_map_to_sdk_errors() {
        fake::reset();
        assert_eq!(get(""), Err(Error::Invalid("empty key".into())));
        // One entry of 64 bytes of bookkeeping, a 1-byte key and a 7-byte value.
        fake::with_state(|state| state.kv_quota_bytes = Some(72));
        assert_eq!(set("k", b"1234567"), Ok(()));
        assert_eq!(
            set_cbor("other", &0u8),
            Err(Error::QuotaExceeded("kv namespace over 72 bytes".into()))
        );
        fake::with_state(|state| state.denied.insert("kv"));
        let denied = Error::Denied("kv is not granted".into());
        assert_eq!(get("k"), Err(denied.clone()));
        assert_eq!(get_cbor::<u8>("k"), Err(denied.clone()));
        assert_eq!(delete("k"), Err(denied.clone()));
        assert_eq!(list_keys(""), Err(denied));
    }
}
