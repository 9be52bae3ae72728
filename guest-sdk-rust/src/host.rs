//! The host functions the capability wrappers call.
//!
//! In a plugin these are the generated component-model imports. In the SDK's
//! own unit tests they are an in-memory fake with the same signatures, so
//! the wrappers' logic (error mapping, parsing, CBOR, log formatting) runs
//! natively without a wasm host.

pub(crate) use crate::bindings::wasmplug::host::http::{
    HttpError as HostHttpError, HttpRequest as HostRequest, HttpResponse as HostResponse,
};
pub(crate) use crate::bindings::wasmplug::host::log::Level as HostLevel;
pub(crate) use crate::bindings::wasmplug::host::types::Error as HostError;

#[cfg(not(test))]
pub(crate) use crate::bindings::wasmplug::host::{config, http, kv, log};

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
pub(crate) use fake::{config, http, kv, log};
