//! Benchmark plugin for the Extism Python SDK (`extism` on PyPI).
//!
//! The same work as the `benchcalls` component (tests/fixtures/benchcalls) and
//! the rule-engine tenant `ops-thresholds`, over Extism's bytes-in, bytes-out
//! calls:
//!
//! | export        | input                              | output                                   |
//! |---------------|------------------------------------|------------------------------------------|
//! | `add`         | two `u32`, little-endian (8 bytes) | their wrapping sum, `u32` LE             |
//! | `noop`        | nothing                            | nothing                                  |
//! | `blob_stats`  | bytes                              | length `u32` LE, then byte sum `u64` LE  |
//! | `echo_bytes`  | bytes                              | the same bytes                           |
//! | `echo_string` | UTF-8 text (checked)               | the same text                            |
//! | `evaluate`    | one flight as JSON                 | its alerts as a JSON list                |
//!
//! The same work again under wasmplug's Extism calling convention (JSON in, JSON
//! out, `docs/extism.md`), as the exported interface `json` of `wit/bench.wit`:
//! `json_add`, `json_noop`, `json_blob_stats`, `json_echo_bytes`,
//! `json_echo_string` and `json_evaluate`. The benchmark suite calls them with
//! `Plugin.call` (the column `wasmplug_extism`), so that running this plugin under
//! wasmplug can be compared with the bare SDK on the same module.
//!
//! `evaluate` applies ops-thresholds' four rules with the thresholds read from
//! the plugin's Extism config (the same keys and values the rule engine grants
//! that tenant), parsed once per instance.

use std::sync::OnceLock;

use extism_pdk::{config, plugin_fn, FnResult, Json, WithReturnCode};
use serde::{Deserialize, Serialize};

/// Wrapping `u32` addition of the two little-endian `u32`s in `input`.
#[plugin_fn]
pub fn add(input: Vec<u8>) -> FnResult<Vec<u8>> {
    if input.len() != 8 {
        return Err(WithReturnCode::new(
            extism_pdk::Error::msg(format!("add: expected 8 bytes, got {}", input.len())),
            1,
        ));
    }
    let a = u32::from_le_bytes([input[0], input[1], input[2], input[3]]);
    let b = u32::from_le_bytes([input[4], input[5], input[6], input[7]]);
    Ok(a.wrapping_add(b).to_le_bytes().to_vec())
}

/// Does nothing.
#[plugin_fn]
pub fn noop() -> FnResult<Vec<u8>> {
    Ok(Vec::new())
}

/// Length (`u32` LE) and byte sum (`u64` LE) of the input.
#[plugin_fn]
pub fn blob_stats(input: Vec<u8>) -> FnResult<Vec<u8>> {
    let sum: u64 = input.iter().map(|&b| u64::from(b)).sum();
    let mut out = (input.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// Returns its input.
#[plugin_fn]
pub fn echo_bytes(input: Vec<u8>) -> FnResult<Vec<u8>> {
    Ok(input)
}

/// Returns its input, which must be UTF-8 (as a WIT `string` must).
#[plugin_fn]
pub fn echo_string(input: String) -> FnResult<String> {
    Ok(input)
}

/// Weather at the origin (the rule engine's `weather` record).
#[derive(Deserialize)]
#[allow(dead_code)] // parsed in full, as the component path lowers it in full
struct Weather {
    temp: Option<f64>,
    wind_speed: Option<f64>,
    wind_gust: Option<f64>,
    precip: f64,
    visib: f64,
}

/// One flight (the rule engine's `flight` record, snake_case keys).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Flight {
    year: u16,
    month: u8,
    day: u8,
    dep_time: Option<u16>,
    sched_dep_time: u16,
    dep_delay: Option<i32>,
    arr_time: Option<u16>,
    sched_arr_time: u16,
    arr_delay: Option<i32>,
    carrier: String,
    flight: u32,
    tailnum: Option<String>,
    origin: String,
    dest: String,
    air_time: Option<u32>,
    distance: u32,
    time_hour: String,
    weather: Option<Weather>,
}

/// One alert; `severity` is `info`, `warning` or `critical`.
#[derive(Serialize)]
struct Alert {
    rule: &'static str,
    severity: &'static str,
    message: String,
}

/// ops-thresholds' configuration, parsed.
struct Thresholds {
    min_dep_delay: i32,
    min_arr_delay: i32,
    min_visibility: f64,
    watch_dests: Vec<String>,
}

fn required(key: &str) -> Result<String, String> {
    match config::get(key) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(format!("{key}: missing")),
        Err(err) => Err(format!("{key}: {err}")),
    }
}

fn parsed<T: std::str::FromStr>(key: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    required(key)?
        .parse()
        .map_err(|err| format!("{key}: {err}"))
}

impl Thresholds {
    fn from_config() -> Result<Self, String> {
        let min_visibility: f64 = parsed("min-visibility")?;
        if !min_visibility.is_finite() {
            return Err("min-visibility: not a finite number".to_string());
        }
        Ok(Self {
            min_dep_delay: parsed("min-dep-delay")?,
            min_arr_delay: parsed("min-arr-delay")?,
            min_visibility,
            watch_dests: required("watch-dests")?
                .split(',')
                .map(|d| d.trim().to_string())
                .collect(),
        })
    }

    fn get() -> &'static Result<Self, String> {
        static CACHE: OnceLock<Result<Thresholds, String>> = OnceLock::new();
        CACHE.get_or_init(Self::from_config)
    }
}

fn delay_severity(delay: i32, threshold: i32) -> &'static str {
    if i64::from(delay) >= 2 * i64::from(threshold) {
        "critical"
    } else {
        "warning"
    }
}

/// ops-thresholds' rules: late-departure, late-arrival, low-visibility,
/// cancelled-watched, in that order.
#[plugin_fn]
pub fn evaluate(Json(flight): Json<Flight>) -> FnResult<Json<Vec<Alert>>> {
    alerts(&flight).map(Json)
}

/// `add` with its arguments as a JSON array `[a, b]` and its sum as JSON.
#[plugin_fn]
pub fn json_add(Json((a, b)): Json<(u32, u32)>) -> FnResult<Json<u32>> {
    Ok(Json(a.wrapping_add(b)))
}

/// Does nothing (no input, no output: a WIT `func()`).
#[plugin_fn]
pub fn json_noop() -> FnResult<()> {
    Ok(())
}

/// Length and byte sum of a JSON array of bytes, as the JSON array `[len, sum]`.
#[plugin_fn]
pub fn json_blob_stats(Json(blob): Json<Vec<u8>>) -> FnResult<Json<(u32, u64)>> {
    let sum: u64 = blob.iter().map(|&b| u64::from(b)).sum();
    Ok(Json((blob.len() as u32, sum)))
}

/// Returns its JSON array of bytes.
#[plugin_fn]
pub fn json_echo_bytes(Json(blob): Json<Vec<u8>>) -> FnResult<Json<Vec<u8>>> {
    Ok(Json(blob))
}

/// Returns its JSON string.
#[plugin_fn]
pub fn json_echo_string(Json(text): Json<String>) -> FnResult<Json<String>> {
    Ok(Json(text))
}

/// `evaluate` under the `json` interface's name (the same JSON in and out).
#[plugin_fn]
pub fn json_evaluate(Json(flight): Json<Flight>) -> FnResult<Json<Vec<Alert>>> {
    alerts(&flight).map(Json)
}

/// The alerts ops-thresholds' rules raise for `flight`.
fn alerts(flight: &Flight) -> FnResult<Vec<Alert>> {
    let t = match Thresholds::get() {
        Ok(t) => t,
        Err(reason) => {
            return Err(WithReturnCode::new(
                extism_pdk::Error::msg(reason.clone()),
                1,
            ))
        }
    };
    let cf = format!("{}{}", flight.carrier, flight.flight);
    let (origin, dest) = (&flight.origin, &flight.dest);
    let mut alerts = Vec::new();
    if let Some(delay) = flight.dep_delay.filter(|&d| d >= t.min_dep_delay) {
        alerts.push(Alert {
            rule: "late-departure",
            severity: delay_severity(delay, t.min_dep_delay),
            message: format!("{cf} {origin}->{dest} departed {delay} min late"),
        });
    }
    if let Some(delay) = flight.arr_delay.filter(|&d| d >= t.min_arr_delay) {
        alerts.push(Alert {
            rule: "late-arrival",
            severity: delay_severity(delay, t.min_arr_delay),
            message: format!("{cf} {origin}->{dest} arrived {delay} min late"),
        });
    }
    if let Some(weather) = flight
        .weather
        .as_ref()
        .filter(|w| w.visib < t.min_visibility)
    {
        alerts.push(Alert {
            rule: "low-visibility",
            severity: "warning",
            message: format!(
                "{cf} departs {origin} with visibility {:.2} mi",
                weather.visib
            ),
        });
    }
    if flight.dep_time.is_none() && t.watch_dests.iter().any(|d| d == dest) {
        alerts.push(Alert {
            rule: "cancelled-watched",
            severity: "info",
            message: format!("{cf} to {dest} cancelled"),
        });
    }
    Ok(alerts)
}
