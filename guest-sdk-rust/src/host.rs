//! The host functions the capability wrappers call.
//!
//! In a plugin these are the generated component-model imports. In the SDK's
//! own unit tests they are an in-memory fake with the same signatures, so
//! the wrappers' logic (error mapping, parsing, CBOR, log formatting) runs
//! natively without a wasm host. The `fake-host` feature gives plugins the
//! same fake for their own native tests (see [`crate::testing`]).

pub(crate) use crate::bindings::wasmplug::host::http::{
    HttpError as HostHttpError, HttpRequest as HostRequest, HttpResponse as HostResponse,
};
pub(crate) use crate::bindings::wasmplug::host::log::Level as HostLevel;
pub(crate) use crate::bindings::wasmplug::host::types::Error as HostError;

#[cfg(not(any(test, feature = "fake-host")))]
pub(crate) use crate::bindings::wasmplug::host::{config, http, kv, log};

#[cfg(any(test, feature = "fake-host"))]
// Parts of the fake only the SDK's own tests read.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod fake;
#[cfg(any(test, feature = "fake-host"))]
pub(crate) use fake::{config, http, kv, log};
