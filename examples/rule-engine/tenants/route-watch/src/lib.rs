//! Rule-engine tenant `route-watch`: delay streaks and delay rates per route, and
//! cancellations per carrier.
//!
//! Capability used: `kv` only. All state lives in the host's key-value store, CBOR
//! encoded, so it survives the host replacing this instance:
//!
//! - `route/{origin}-{dest}`: [`RouteStats`] of the departures seen on that route;
//! - `cancelled/{carrier}`: the number of the carrier's cancelled flights (a `u32`).
//!
//! A failing kv call is a bug in the deployment (kv not granted, quota too small): it
//! is reported as a `kv-error` alert rather than silently dropping state.

use serde::{Deserialize, Serialize};
use wasmplug_guest::{kv, Error};

wasmplug_guest::generate!({ path: "../../wit", world: "tenant" });

wasmplug_guest::manifest! {
    kv: "keeps per-route delay statistics and per-carrier cancellation counts between calls",
}

use crate::wasmplug_examples::rule_engine::types::Severity;

/// A departure delayed by at least this many minutes counts as delayed.
const DELAYED_MIN: i32 = 60;
/// Every this many departures on a route, its delay rate is checked.
const RATE_EVERY: u32 = 500;
/// The rate alert fires when at least this percentage of departures were delayed.
const RATE_PERCENT: u64 = 25;
/// Every this many cancellations of a carrier raise an alert.
const CANCELLATIONS_EVERY: u32 = 100;

/// What the tenant remembers about one route.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct RouteStats {
    /// Departures seen (cancelled flights excluded).
    seen: u32,
    /// Of those, departures delayed by [`DELAYED_MIN`] minutes or more.
    delayed: u32,
    /// Consecutive delayed departures up to the latest one.
    streak: u32,
}

impl RouteStats {
    /// Accounts for one departure delayed by `dep_delay` minutes.
    fn record(&mut self, dep_delay: i32) {
        self.seen = self.seen.saturating_add(1);
        if dep_delay >= DELAYED_MIN {
            self.delayed = self.delayed.saturating_add(1);
            self.streak = self.streak.saturating_add(1);
        } else {
            self.streak = 0;
        }
    }
}

fn alert(rule: &str, severity: Severity, message: String) -> Alert {
    Alert {
        rule: rule.to_string(),
        severity,
        message,
    }
}

fn departed(route: &str, dep_delay: i32) -> Result<Vec<Alert>, Error> {
    let key = format!("route/{route}");
    let mut stats: RouteStats = kv::get_cbor(&key)?.unwrap_or_default();
    stats.record(dep_delay);
    kv::set_cbor(&key, &stats)?;

    let mut alerts = Vec::new();
    match stats.streak {
        3 => alerts.push(alert(
            "delay-streak",
            Severity::Warning,
            format!("{route}: 3 delayed departures in a row"),
        )),
        5 => alerts.push(alert(
            "delay-streak",
            Severity::Critical,
            format!("{route}: 5 delayed departures in a row"),
        )),
        _ => {}
    }
    if stats.seen % RATE_EVERY == 0
        && u64::from(stats.delayed) * 100 >= RATE_PERCENT * u64::from(stats.seen)
    {
        alerts.push(alert(
            "route-delay-rate",
            Severity::Info,
            format!(
                "{route}: {} of {} departures delayed",
                stats.delayed, stats.seen
            ),
        ));
    }
    Ok(alerts)
}

fn cancelled(carrier: &str) -> Result<Vec<Alert>, Error> {
    let key = format!("cancelled/{carrier}");
    let count = kv::get_cbor::<u32>(&key)?.unwrap_or(0).saturating_add(1);
    kv::set_cbor(&key, &count)?;
    if count % CANCELLATIONS_EVERY == 0 {
        return Ok(vec![alert(
            "carrier-cancellations",
            Severity::Warning,
            format!("{carrier}: {count} cancellations"),
        )]);
    }
    Ok(Vec::new())
}

struct RouteWatch;

impl Guest for RouteWatch {
    fn setup() -> Result<TenantInfo, SetupError> {
        // Fail early and clearly when the host did not grant kv.
        kv::list_keys("route/")
            .map_err(|err| SetupError::Other(format!("kv is unusable: {err}")))?;
        Ok(TenantInfo {
            name: "route-watch".to_string(),
            rules: vec![
                format!(
                    "delay-streak: 3 (warning) or 5 (critical) departures in a row on a route \
                     delayed >= {DELAYED_MIN} min"
                ),
                format!(
                    "route-delay-rate: every {RATE_EVERY} departures on a route, >= \
                     {RATE_PERCENT}% of them delayed >= {DELAYED_MIN} min"
                ),
                format!(
                    "carrier-cancellations: every {CANCELLATIONS_EVERY} cancellations of a carrier"
                ),
            ],
        })
    }

    fn evaluate_batch(flights: Vec<Flight>) -> Vec<Vec<Alert>> {
        flights.into_iter().map(Self::evaluate).collect()
    }

    fn evaluate(flight: Flight) -> Vec<Alert> {
        let outcome = match flight.dep_delay {
            Some(dep_delay) => departed(&format!("{}-{}", flight.origin, flight.dest), dep_delay),
            None => cancelled(&flight.carrier),
        };
        outcome.unwrap_or_else(|err| vec![alert("kv-error", Severity::Critical, err.to_string())])
    }
}

export!(RouteWatch);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delayed_departure_extends_the_streak_and_an_on_time_one_ends_it() {
        let mut stats = RouteStats::default();
        for delay in [60, 200, 59, 60] {
            stats.record(delay);
        }
        assert_eq!(
            stats,
            RouteStats {
                seen: 4,
                delayed: 3,
                streak: 1
            }
        );
    }

    #[test]
    fn stats_round_trip_through_cbor_as_a_map_with_field_names() {
        let stats = RouteStats {
            seen: 500,
            delayed: 125,
            streak: 3,
        };
        let bytes = wasmplug_guest::cbor::to_vec(&stats).expect("encodes");
        // A CBOR map of 3 pairs whose first key is the text "seen".
        assert_eq!(&bytes[..6], &[0xa3, 0x64, b's', b'e', b'e', b'n']);
        let back: RouteStats = wasmplug_guest::cbor::from_slice(&bytes).expect("decodes");
        assert_eq!(back, stats);
    }
}
