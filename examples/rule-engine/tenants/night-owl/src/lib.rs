//! Rule-engine tenant `night-owl`: overnight arrivals, implausibly fast flights, very
//! early arrivals, and flights into far time zones or to airports the host's directory
//! does not know.
//!
//! Capability used: `log` only, plus the host's own `airports` interface. Every alert
//! is also logged at info level, and a debug line reports progress every
//! [`PROGRESS_EVERY`] flights this instance evaluated (the counter lives in guest
//! memory, so it restarts when the host replaces the instance). Airport lookups are
//! cached in guest memory too: about one host call per distinct airport per instance.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmplug_guest::{debug, info};

wasmplug_guest::generate!({ path: "../../wit", world: "tenant" });

wasmplug_guest::manifest! {
    log: "logs every alert at info level and its progress at debug level",
}

use crate::wasmplug_examples::rule_engine::airports::{self, Airport};
use crate::wasmplug_examples::rule_engine::types::Severity;

/// Average ground speed above which a flight is reported, miles per hour.
const FAST_MPH: u64 = 550;
/// Arriving at least this many minutes early is reported.
const EARLY_MIN: i32 = 60;
/// A progress line is logged every this many evaluated flights.
const PROGRESS_EVERY: u64 = 10_000;
/// Landing this many hours (standard time) behind the origin or more is reported.
const FAR_TZ_HOURS: i32 = 4;

static EVALUATED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The host's answers so far, by FAA code.
    static AIRPORTS: RefCell<HashMap<String, Option<Rc<Airport>>>> = RefCell::new(HashMap::new());
}

/// Looks an airport up through the host, once per code per instance.
fn lookup(faa: &str) -> Option<Rc<Airport>> {
    AIRPORTS.with(|cache| {
        if let Some(known) = cache.borrow().get(faa) {
            return known.clone();
        }
        let answer = airports::lookup(faa).map(Rc::new);
        cache.borrow_mut().insert(faa.to_string(), answer.clone());
        answer
    })
}

fn rules(flight: &Flight, lookup: impl Fn(&str) -> Option<Rc<Airport>>) -> Vec<Alert> {
    let cf = format!("{}{}", flight.carrier, flight.flight);
    let (origin, dest) = (&flight.origin, &flight.dest);
    let mut alerts = Vec::new();

    if let (Some(dep), Some(arr)) = (flight.dep_time, flight.arr_time) {
        if arr < dep {
            alerts.push(Alert {
                rule: "overnight-arrival".to_string(),
                severity: Severity::Info,
                message: format!("{cf} {origin}->{dest} lands the next day at {arr:04}"),
            });
        }
    }
    if let Some(air_time) = flight.air_time.filter(|&t| t > 0).map(u64::from) {
        let distance = u64::from(flight.distance);
        if distance * 60 > FAST_MPH * air_time {
            alerts.push(Alert {
                rule: "fast-flight".to_string(),
                severity: Severity::Warning,
                message: format!(
                    "{cf} {origin}->{dest} averaged {} mph",
                    distance * 60 / air_time
                ),
            });
        }
    }
    if let Some(delay) = flight.arr_delay.filter(|&d| d <= -EARLY_MIN) {
        alerts.push(Alert {
            rule: "early-arrival".to_string(),
            severity: Severity::Info,
            message: format!("{cf} arrived {} min early", -i64::from(delay)),
        });
    }
    match (lookup(origin), lookup(dest)) {
        (Some(from), Some(to)) if i32::from(from.tz) - i32::from(to.tz) >= FAR_TZ_HOURS => {
            alerts.push(Alert {
                rule: "far-time-zone".to_string(),
                severity: Severity::Info,
                message: format!(
                    "{cf} {origin}->{dest} lands {} h behind, in {}",
                    i32::from(from.tz) - i32::from(to.tz),
                    to.tzone.as_deref().unwrap_or("an unknown time zone")
                ),
            });
        }
        (_, None) => alerts.push(Alert {
            rule: "unknown-airport".to_string(),
            severity: Severity::Warning,
            message: format!("{cf} {origin}->{dest}: {dest} is not in the airport directory"),
        }),
        _ => {}
    }
    alerts
}

struct NightOwl;

impl Guest for NightOwl {
    fn setup() -> Result<TenantInfo, SetupError> {
        Ok(TenantInfo {
            name: "night-owl".to_string(),
            rules: vec![
                "overnight-arrival: arrival clock time earlier than departure clock time"
                    .to_string(),
                format!("fast-flight: average speed over {FAST_MPH} mph"),
                format!("early-arrival: arrived {EARLY_MIN} min early or more"),
                format!("far-time-zone: lands {FAR_TZ_HOURS} h or more behind the origin"),
                "unknown-airport: destination not in the host's airport directory".to_string(),
            ],
        })
    }

    fn evaluate_batch(flights: Vec<Flight>) -> Vec<Vec<Alert>> {
        flights.into_iter().map(Self::evaluate).collect()
    }

    fn evaluate(flight: Flight) -> Vec<Alert> {
        let alerts = rules(&flight, lookup);
        for alert in &alerts {
            info!("{}: {}", alert.rule, alert.message);
        }
        let evaluated = EVALUATED.fetch_add(1, Ordering::Relaxed) + 1;
        if evaluated % PROGRESS_EVERY == 0 {
            debug!("evaluated {evaluated} flights");
        }
        alerts
    }
}

export!(NightOwl);

#[cfg(test)]
mod tests {
    use super::*;

    fn flight() -> Flight {
        Flight {
            year: 2013,
            month: 1,
            day: 1,
            dep_time: Some(2330),
            sched_dep_time: 2330,
            dep_delay: Some(0),
            arr_time: Some(45),
            sched_arr_time: 200,
            arr_delay: Some(-75),
            carrier: "B6".to_string(),
            flight: 1,
            tailnum: None,
            origin: "JFK".to_string(),
            dest: "BOS".to_string(),
            air_time: Some(20),
            distance: 187,
            time_hour: "2013-01-02T04:00:00Z".to_string(),
            weather: None,
        }
    }

    fn airport(faa: &str, tz: i8, tzone: &str) -> Airport {
        Airport {
            faa: faa.to_string(),
            name: format!("{faa} airport"),
            lat: 0.0,
            lon: 0.0,
            alt: 0,
            tz,
            tzone: Some(tzone.to_string()),
        }
    }

    /// A fake directory: JFK, BOS and HNL.
    fn directory(faa: &str) -> Option<Rc<Airport>> {
        match faa {
            "JFK" => Some(airport("JFK", -5, "America/New_York")),
            "BOS" => Some(airport("BOS", -5, "America/New_York")),
            "HNL" => Some(airport("HNL", -10, "Pacific/Honolulu")),
            _ => None,
        }
        .map(Rc::new)
    }

    #[test]
    fn rules_fire_in_order_with_their_messages() {
        let alerts: Vec<(String, String)> = rules(&flight(), directory)
            .into_iter()
            .map(|a| (a.rule, a.message))
            .collect();
        let expected = [
            (
                "overnight-arrival",
                "B61 JFK->BOS lands the next day at 0045",
            ),
            ("fast-flight", "B61 JFK->BOS averaged 561 mph"),
            ("early-arrival", "B61 arrived 75 min early"),
        ];
        assert_eq!(
            alerts,
            expected.map(|(r, m)| (r.to_string(), m.to_string()))
        );
    }

    #[test]
    fn a_zero_air_time_or_a_cancelled_flight_raises_nothing() {
        let mut f = flight();
        f.air_time = Some(0);
        f.arr_delay = None;
        f.arr_time = None;
        assert!(rules(&f, directory).is_empty());
    }

    #[test]
    fn far_time_zones_and_unknown_destinations_use_the_directory() {
        let mut f = flight();
        f.dep_time = None;
        f.arr_time = None;
        f.arr_delay = None;
        f.air_time = None;
        f.dest = "HNL".to_string();
        let alerts: Vec<(String, String)> = rules(&f, directory)
            .into_iter()
            .map(|a| (a.rule, a.message))
            .collect();
        assert_eq!(
            alerts,
            [(
                "far-time-zone".to_string(),
                "B61 JFK->HNL lands 5 h behind, in Pacific/Honolulu".to_string()
            )]
        );
        f.dest = "SJU".to_string();
        let rules: Vec<String> = rules(&f, directory).into_iter().map(|a| a.rule).collect();
        assert_eq!(rules, ["unknown-airport"]);
    }
}
