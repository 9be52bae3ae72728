//! An in-memory stand-in for the wasmplug host, for the SDK's unit tests.
//!
//! Its functions have the signatures of the generated imports. State is per
//! thread (the test harness runs each test on its own thread); tests call
//! [`reset`] first and then adjust it with [`with_state`].

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use super::{HostError, HostHttpError, HostLevel, HostRequest, HostResponse};

/// Bytes each kv entry counts against the quota besides its key and value (the
/// host's bookkeeping; `wasmplug._kv.ENTRY_OVERHEAD` on the host).
const KV_ENTRY_OVERHEAD: usize = 64;

/// What the fake host holds and how it is configured.
#[derive(Default)]
pub(crate) struct State {
    /// Every record logged, in order.
    pub(crate) records: Vec<(HostLevel, String)>,
    /// The plugin's configuration.
    pub(crate) config: BTreeMap<String, String>,
    /// The plugin's key-value namespace.
    pub(crate) kv: BTreeMap<String, Vec<u8>>,
    /// Capabilities ("log", "config", "kv") the host denies.
    pub(crate) denied: BTreeSet<&'static str>,
    /// Byte quota of the key-value namespace: keys plus values plus
    /// [`KV_ENTRY_OVERHEAD`] per entry, as the host counts it.
    pub(crate) kv_quota_bytes: Option<usize>,
    /// The least severe level the host keeps (`None`: every level).
    pub(crate) min_level: Option<HostLevel>,
    /// How often `log::enabled` was asked.
    pub(crate) enabled_queries: usize,
    /// Every HTTP request sent, in order.
    pub(crate) requests: Vec<HostRequest>,
    /// The answer to the next HTTP request (`None`: a 200 echoing the body).
    pub(crate) http_answer: Option<Result<HostResponse, HostHttpError>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Clears all state: nothing logged, no config, an empty namespace,
/// everything granted, no quota.
pub(crate) fn reset() {
    STATE.with(|state| *state.borrow_mut() = State::default());
}

/// Runs `f` on this thread's state.
pub(crate) fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with(|state| f(&mut state.borrow_mut()))
}

fn check(state: &State, capability: &'static str) -> Result<(), HostError> {
    if state.denied.contains(capability) {
        Err(HostError::Denied(format!("{capability} is not granted")))
    } else {
        Ok(())
    }
}

fn check_key(key: &str) -> Result<(), HostError> {
    if key.is_empty() {
        Err(HostError::Invalid("empty key".into()))
    } else {
        Ok(())
    }
}

pub(crate) mod log {
    use super::*;

    pub(crate) fn log(level: HostLevel, message: &str) -> Result<(), HostError> {
        with_state(|state| {
            check(state, "log")?;
            state.records.push((level, message.to_owned()));
            Ok(())
        })
    }

    pub(crate) fn enabled(level: HostLevel) -> bool {
        with_state(|state| {
            state.enabled_queries += 1;
            check(state, "log").is_ok()
                && state.min_level.is_none_or(|min| level as u8 >= min as u8)
        })
    }
}

pub(crate) mod config {
    use super::*;

    pub(crate) fn get(key: &str) -> Result<Option<String>, HostError> {
        with_state(|state| {
            check(state, "config")?;
            Ok(state.config.get(key).cloned())
        })
    }

    pub(crate) fn keys() -> Result<Vec<String>, HostError> {
        with_state(|state| {
            check(state, "config")?;
            Ok(state.config.keys().cloned().collect())
        })
    }
}

pub(crate) mod kv {
    use super::*;

    pub(crate) fn get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
        with_state(|state| {
            check(state, "kv")?;
            check_key(key)?;
            Ok(state.kv.get(key).cloned())
        })
    }

    pub(crate) fn set(key: &str, value: &[u8]) -> Result<(), HostError> {
        with_state(|state| {
            check(state, "kv")?;
            check_key(key)?;
            if let Some(quota) = state.kv_quota_bytes {
                let others: usize = state
                    .kv
                    .iter()
                    .filter(|(k, _)| k.as_str() != key)
                    .map(|(k, v)| KV_ENTRY_OVERHEAD + k.len() + v.len())
                    .sum();
                if others + KV_ENTRY_OVERHEAD + key.len() + value.len() > quota {
                    return Err(HostError::QuotaExceeded(format!(
                        "kv namespace over {quota} bytes"
                    )));
                }
            }
            state.kv.insert(key.to_owned(), value.to_vec());
            Ok(())
        })
    }

    pub(crate) fn delete(key: &str) -> Result<bool, HostError> {
        with_state(|state| {
            check(state, "kv")?;
            check_key(key)?;
            Ok(state.kv.remove(key).is_some())
        })
    }

    pub(crate) fn list_keys(prefix: &str) -> Result<Vec<String>, HostError> {
        with_state(|state| {
            check(state, "kv")?;
            Ok(state
                .kv
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect())
        })
    }
}

pub(crate) mod http {
    use super::*;

    pub(crate) fn send(req: &HostRequest) -> Result<HostResponse, HostHttpError> {
        with_state(|state| {
            if state.denied.contains("http") {
                return Err(HostHttpError::Denied("http is not granted".into()));
            }
            state.requests.push(req.clone());
            state.http_answer.take().unwrap_or_else(|| {
                Ok(HostResponse {
                    status: 200,
                    headers: vec![("content-type".into(), "text/plain".into())],
                    body: req.body.clone(),
                })
            })
        })
    }
}
