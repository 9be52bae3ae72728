//! The host functions the capability wrappers call.
//!
//! In a plugin these are the generated component-model imports. In the SDK's
//! own unit tests they are an in-memory fake with the same signatures, so
//! the wrappers' logic (error mapping, parsing, CBOR, log formatting) runs
//! natively without a wasm host.

pub(crate) use crate::bindings::wasmplug::host::log::Level as HostLevel;
pub(crate) use crate::bindings::wasmplug::host::types::Error as HostError;
pub(crate) use crate::bindings::wasmplug::host::http::{
    HttpError as HostHttpError, Request as HostRequest, Response as HostResponse,
};

#[cfg(not(test))]
pub(crate) use crate::bindings::wasmplug::host::{config, http, kv, log};

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
pub(crate) use fake::{config, http, kv, log};
