//! Rule-engine tenant `ops-thresholds`: flags late departures and arrivals, low
//! visibility at the origin and cancellations to watched destinations.
//!
//! Capability used: `config` only. Required keys:
//!
//! | key             | meaning                                    | example           |
//! |-----------------|--------------------------------------------|-------------------|
//! | `min-dep-delay` | departure delay that raises an alert, min  | `120`             |
//! | `min-arr-delay` | arrival delay that raises an alert, min    | `120`             |
//! | `min-visibility`| visibility below which to warn, miles      | `1.0`             |
//! | `watch-dests`   | destinations whose cancellations to report | `LAX,SFO,ORD,ATL` |
//!
//! The configuration is read lazily on the first `evaluate` of an instance and cached:
//! the host may call `evaluate` on a fresh instance that never ran `setup`.

use std::sync::OnceLock;

use wasmplug_guest::{config, Error};

wasmplug_guest::generate!({ path: "../../wit", world: "tenant" });

wasmplug_guest::manifest! {
    config ["min-dep-delay", "min-arr-delay", "min-visibility"]:
        "the delay (minutes) and visibility (miles) thresholds that raise alerts",
    config ["watch-dests"]: "the destinations whose cancellations to report",
}

use crate::wasmplug_examples::rule_engine::types::Severity;

/// The tenant's configuration, parsed.
struct Thresholds {
    min_dep_delay: i32,
    min_arr_delay: i32,
    min_visibility: f64,
    watch_dests: Vec<String>,
}

fn bad(key: &str, reason: impl Into<String>) -> SetupError {
    SetupError::BadConfig((key.to_string(), reason.into()))
}

/// Reads a required key and parses it, mapping every failure to `bad-config`.
fn required<T: std::str::FromStr>(key: &str) -> Result<T, SetupError>
where
    T::Err: std::fmt::Display,
{
    match config::get_parsed::<T>(key) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => Err(bad(key, "missing")),
        Err(Error::Parse { reason, .. }) => Err(bad(key, reason)),
        Err(err) => Err(bad(key, err.to_string())),
    }
}

impl Thresholds {
    fn from_config() -> Result<Self, SetupError> {
        let min_dep_delay: i32 = required("min-dep-delay")?;
        let min_arr_delay: i32 = required("min-arr-delay")?;
        let min_visibility: f64 = required("min-visibility")?;
        if !min_visibility.is_finite() {
            return Err(bad("min-visibility", "not a finite number"));
        }
        let dests = match config::get("watch-dests") {
            Ok(Some(value)) => value,
            Ok(None) => return Err(bad("watch-dests", "missing")),
            Err(err) => return Err(bad("watch-dests", err.to_string())),
        };
        let watch_dests: Vec<String> = dests.split(',').map(|d| d.trim().to_string()).collect();
        if watch_dests.iter().any(String::is_empty) {
            return Err(bad("watch-dests", "empty airport code"));
        }
        Ok(Self {
            min_dep_delay,
            min_arr_delay,
            min_visibility,
            watch_dests,
        })
    }

    /// The parsed configuration of this instance, read once.
    fn get() -> &'static Result<Self, SetupError> {
        static CACHE: OnceLock<Result<Thresholds, SetupError>> = OnceLock::new();
        CACHE.get_or_init(Self::from_config)
    }
}

/// `critical` at twice the threshold or more, `warning` from the threshold on.
fn delay_severity(delay: i32, threshold: i32) -> Severity {
    if i64::from(delay) >= 2 * i64::from(threshold) {
        Severity::Critical
    } else {
        Severity::Warning
    }
}

fn alert(rule: &str, severity: Severity, message: String) -> Alert {
    Alert {
        rule: rule.to_string(),
        severity,
        message,
    }
}

struct OpsThresholds;

impl Guest for OpsThresholds {
    fn setup() -> Result<TenantInfo, SetupError> {
        let t = Thresholds::get().as_ref().map_err(Clone::clone)?;
        Ok(TenantInfo {
            name: "ops-thresholds".to_string(),
            rules: vec![
                format!(
                    "late-departure: departure delay >= {} min (critical from {})",
                    t.min_dep_delay,
                    2 * i64::from(t.min_dep_delay)
                ),
                format!(
                    "late-arrival: arrival delay >= {} min (critical from {})",
                    t.min_arr_delay,
                    2 * i64::from(t.min_arr_delay)
                ),
                format!(
                    "low-visibility: visibility at the origin below {} mi",
                    t.min_visibility
                ),
                format!(
                    "cancelled-watched: cancellations to {}",
                    t.watch_dests.join(", ")
                ),
            ],
        })
    }

    fn evaluate_batch(flights: Vec<Flight>) -> Vec<Vec<Alert>> {
        flights.into_iter().map(Self::evaluate).collect()
    }

    fn evaluate(flight: Flight) -> Vec<Alert> {
        let t = match Thresholds::get() {
            Ok(t) => t,
            // `setup` reports this properly; an instance that skipped it still says why
            // it cannot judge the flight instead of staying silent.
            Err(SetupError::BadConfig((key, reason))) => {
                return vec![alert(
                    "config-error",
                    Severity::Critical,
                    format!("{key}: {reason}"),
                )]
            }
            Err(SetupError::Other(reason)) => {
                return vec![alert("config-error", Severity::Critical, reason.clone())]
            }
        };
        let cf = format!("{}{}", flight.carrier, flight.flight);
        let (origin, dest) = (&flight.origin, &flight.dest);
        let mut alerts = Vec::new();

        if let Some(delay) = flight.dep_delay.filter(|&d| d >= t.min_dep_delay) {
            alerts.push(alert(
                "late-departure",
                delay_severity(delay, t.min_dep_delay),
                format!("{cf} {origin}->{dest} departed {delay} min late"),
            ));
        }
        if let Some(delay) = flight.arr_delay.filter(|&d| d >= t.min_arr_delay) {
            alerts.push(alert(
                "late-arrival",
                delay_severity(delay, t.min_arr_delay),
                format!("{cf} {origin}->{dest} arrived {delay} min late"),
            ));
        }
        if let Some(weather) = flight
            .weather
            .as_ref()
            .filter(|w| w.visib < t.min_visibility)
        {
            alerts.push(alert(
                "low-visibility",
                Severity::Warning,
                format!(
                    "{cf} departs {origin} with visibility {:.2} mi",
                    weather.visib
                ),
            ));
        }
        if flight.dep_time.is_none() && t.watch_dests.iter().any(|d| d == dest) {
            alerts.push(alert(
                "cancelled-watched",
                Severity::Info,
                format!("{cf} to {dest} cancelled"),
            ));
        }
        alerts
    }
}

export!(OpsThresholds);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twice_the_threshold_is_critical() {
        assert!(matches!(delay_severity(120, 120), Severity::Warning));
        assert!(matches!(delay_severity(239, 120), Severity::Warning));
        assert!(matches!(delay_severity(240, 120), Severity::Critical));
        // No overflow for extreme thresholds.
        assert!(matches!(
            delay_severity(i32::MAX, i32::MAX),
            Severity::Warning
        ));
    }
}
