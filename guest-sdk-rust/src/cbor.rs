//! CBOR (RFC 8949) encoding of serde values.
//!
//! WIT has no "any" type, so wasmplug's convention for schemaless data (a
//! key-value value, an event, a configuration blob) is CBOR in a `list<u8>`:
//! `cbor2` on the Python host, [`ciborium`] here. Structs become maps with
//! their field names as text keys, so the host sees a plain `dict`.
//!
//! [`kv::get_cbor`](crate::kv::get_cbor) and
//! [`kv::set_cbor`](crate::kv::set_cbor) use these functions; call them
//! directly for CBOR that crosses your own world's functions.
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Counter {
//!     name: String,
//!     hits: u64,
//! }
//!
//! let counter = Counter { name: "late-departure".into(), hits: 3 };
//! let bytes = wasmplug_guest::cbor::to_vec(&counter)?;
//! let back: Counter = wasmplug_guest::cbor::from_slice(&bytes)?;
//! assert_eq!(back, counter);
//! # Ok::<(), wasmplug_guest::Error>(())
//! ```

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Error;

/// Encodes `value` as one CBOR data item.
///
/// # Errors
///
/// [`Error::Encode`] when the value's `Serialize` implementation fails.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(value, &mut bytes).map_err(|e| Error::Encode(e.to_string()))?;
    Ok(bytes)
}

/// Decodes exactly one CBOR data item from `bytes` into a `T`.
///
/// # Errors
///
/// [`Error::Decode`] when the bytes are not well-formed CBOR, do not match
/// `T`, or carry trailing bytes after the item.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let mut rest = bytes;
    let value = ciborium::de::from_reader(&mut rest).map_err(|e| Error::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::Decode(format!(
            "{} trailing byte(s) after the CBOR item",
            rest.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Rule {
        name: String,
        threshold: Option<i32>,
        weights: Vec<f64>,
        tags: BTreeMap<String, bool>,
    }

    fn sample() -> Rule {
        Rule {
            name: "late-departure".into(),
            threshold: Some(-15),
            weights: vec![0.5, 1.25],
            tags: BTreeMap::from([("critical".into(), true)]),
        }
    }

    #[test]
    fn structs_round_trip() {
        let rule = sample();
        let bytes = to_vec(&rule).unwrap();
        assert_eq!(from_slice::<Rule>(&bytes).unwrap(), rule);
    }

    #[test]
    fn encoding_follows_rfc_8949() {
        // Known encodings from RFC 8949, appendix A.
        assert_eq!(to_vec(&0u8).unwrap(), [0x00]);
        assert_eq!(to_vec(&-1i32).unwrap(), [0x20]);
        assert_eq!(to_vec(&1000u32).unwrap(), [0x19, 0x03, 0xe8]);
        assert_eq!(to_vec("a").unwrap(), [0x61, 0x61]);
        assert_eq!(to_vec(&[1u8, 2, 3][..]).unwrap(), [0x83, 0x01, 0x02, 0x03]);
        assert_eq!(to_vec(&Option::<u8>::None).unwrap(), [0xf6]);
        assert_eq!(to_vec(&true).unwrap(), [0xf5]);
    }

    #[test]
    fn structs_are_maps_with_text_keys() {
        #[derive(Serialize)]
        struct Point {
            x: u8,
        }
        // {"x": 1}: a map of one pair, the key a one-character text string.
        assert_eq!(to_vec(&Point { x: 1 }).unwrap(), [0xa1, 0x61, b'x', 0x01]);
    }

    #[test]
    fn decodes_what_the_host_encodes() {
        // cbor2.dumps({"name": "n", "threshold": None, "weights": [], "tags": {}})
        let bytes = [
            0xa4, 0x64, b'n', b'a', b'm', b'e', 0x61, b'n', 0x69, b't', b'h', b'r', b'e', b's',
            b'h', b'o', b'l', b'd', 0xf6, 0x67, b'w', b'e', b'i', b'g', b'h', b't', b's', 0x80,
            0x64, b't', b'a', b'g', b's', 0xa0,
        ];
        let rule: Rule = from_slice(&bytes).unwrap();
        assert_eq!(
            rule,
            Rule {
                name: "n".into(),
                threshold: None,
                weights: vec![],
                tags: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn type_mismatch_is_a_decode_error() {
        let bytes = to_vec("not a number").unwrap();
        assert!(matches!(from_slice::<u32>(&bytes), Err(Error::Decode(_))));
    }

    #[test]
    fn truncated_input_is_a_decode_error() {
        let bytes = to_vec(&sample()).unwrap();
        let result = from_slice::<Rule>(&bytes[..bytes.len() - 3]);
        assert!(matches!(result, Err(Error::Decode(_))), "{result:?}");
    }

    #[test]
    fn trailing_bytes_are_a_decode_error() {
        let mut bytes = to_vec(&7u8).unwrap();
        bytes.push(0x00);
        assert_eq!(
            from_slice::<u8>(&bytes),
            Err(Error::Decode(
                "1 trailing byte(s) after the CBOR item".into()
            ))
        );
    }

    #[test]
    fn empty_input_is_a_decode_error() {
        assert!(matches!(from_slice::<u8>(&[]), Err(Error::Decode(_))));
    }
}
