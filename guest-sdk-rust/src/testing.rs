//! An in-memory fake of the wasmplug host, for a plugin's native unit tests
//! (feature `fake-host`).
//!
//! Natively (`cargo test`) there is no wasm host: the capability imports do
//! not exist. With the `fake-host` feature the [`log`](crate::log),
//! [`config`](crate::config), [`kv`](crate::kv) and [`http`](crate::http)
//! wrappers call this fake instead, so a plugin's functions run unchanged in
//! a unit test. Enable it for tests only:
//!
//! ```toml
//! [dev-dependencies]
//! wasmplug-guest = { path = "...", features = ["fake-host"] }
//! ```
//!
//! State is per thread (the test harness runs each test on its own thread):
//! start a test with [`reset`], set the configuration and denials it needs,
//! call the plugin's functions, then look at what they logged and stored.
//!
//! ```
//! use wasmplug_guest::{config, kv, log::Level, testing};
//!
//! testing::reset();
//! testing::set_config("greeting", "Hi");
//! assert_eq!(config::get("greeting").unwrap().as_deref(), Some("Hi"));
//!
//! kv::set("seen", b"1").unwrap();
//! assert_eq!(testing::kv_entries()["seen"], b"1");
//!
//! wasmplug_guest::info!("hello");
//! assert_eq!(testing::logged(), [(Level::Info, "hello".to_owned())]);
//!
//! testing::deny("kv");
//! assert!(matches!(kv::get("seen"), Err(wasmplug_guest::Error::Denied(_))));
//! ```
//!
//! A world's own host interfaces (functions the host implements for the
//! plugin) are not faked: calling one natively panics.

use std::collections::BTreeMap;

use crate::host::{fake, HostLevel};
use crate::log::Level;

/// The capabilities [`deny`] knows.
const CAPABILITIES: [&str; 4] = ["log", "config", "kv", "http"];

/// Clears this thread's fake host: nothing logged, no configuration, an
/// empty key-value namespace without quota, every capability granted, and
/// HTTP requests answered with a 200 echoing the request body.
pub fn reset() {
    fake::reset();
}

/// Sets configuration value `key` (what [`config::get`](crate::config::get)
/// returns).
pub fn set_config(key: &str, value: &str) {
    fake::with_state(|state| state.config.insert(key.to_owned(), value.to_owned()));
}

/// Denies a capability: `"log"`, `"config"`, `"kv"` or `"http"`. Its
/// wrappers then return [`Error::Denied`](crate::Error::Denied), as under a
/// host that did not grant it.
///
/// # Panics
///
/// When `capability` is none of those four.
pub fn deny(capability: &str) {
    let known = CAPABILITIES
        .into_iter()
        .find(|c| *c == capability)
        .unwrap_or_else(|| panic!("unknown capability {capability:?}; known: {CAPABILITIES:?}"));
    fake::with_state(|state| state.denied.insert(known));
}

/// Limits the key-value namespace to `bytes` (keys plus values plus 64
/// bytes per entry, as the host counts), or lifts the limit with `None`. A
/// `kv::set` past it returns [`Error::QuotaExceeded`](crate::Error::QuotaExceeded).
pub fn set_kv_quota(bytes: Option<usize>) {
    fake::with_state(|state| state.kv_quota_bytes = bytes);
}

/// Everything in the key-value namespace, by key.
pub fn kv_entries() -> BTreeMap<String, Vec<u8>> {
    fake::with_state(|state| state.kv.clone())
}

/// Every record logged since the last [`reset`], in order, with its level.
pub fn logged() -> Vec<(Level, String)> {
    fake::with_state(|state| {
        state
            .records
            .iter()
            .map(|(level, message)| {
                let level = match level {
                    HostLevel::Trace => Level::Trace,
                    HostLevel::Debug => Level::Debug,
                    HostLevel::Info => Level::Info,
                    HostLevel::Warn => Level::Warn,
                    HostLevel::Error => Level::Error,
                };
                (level, message.clone())
            })
            .collect()
    })
}

/// The URLs of the HTTP requests sent since the last [`reset`], in order.
pub fn http_urls() -> Vec<String> {
    fake::with_state(|state| state.requests.iter().map(|r| r.url.clone()).collect())
}
