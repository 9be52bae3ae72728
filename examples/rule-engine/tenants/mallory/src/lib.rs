//! Rule-engine tenant `mallory`: a hostile plugin that attacks its sandbox.
//!
//! The host grants it logging, the configuration `mode = hostile`, a read-only
//! directory at `/public` and the environment variable `TENANT`; nothing else. What it
//! does depends on the flight number:
//!
//! | `flight % 1000` | attack                                                 | expected breach |
//! |-----------------|--------------------------------------------------------|-----------------|
//! | 7               | an infinite loop                                       | fuel / deadline |
//! | 8               | allocates and keeps 1 MiB chunks forever               | memory          |
//! | 9               | unbounded recursion                                    | trap            |
//!
//! and for every flight with `flight % 100 == 1` it probes for capabilities it was not
//! granted (files outside `/public`, writing to `/public`, host environment variables,
//! kv, unset config keys). A probe that gets something it should not raises an `escape`
//! alert: the host's tests require that this never happens. Otherwise it returns no
//! alerts.

use std::hint::black_box;

use wasmplug_guest::{config, debug, kv, warn};

wasmplug_guest::generate!({ path: "../../wit", world: "tenant" });

// Mallory is honest about what it reaches for, including what it only probes for:
// the host's policy, not this list, decides what it gets.
wasmplug_guest::manifest! {
    log: "reports what its probes got, at debug level",
    config ["mode"]: "must be `hostile` for setup to succeed",
    files ["/public" read]: "reads the message of the day",
    env ["TENANT"]: "checks which tenant it runs as",
    config ["secret"]: "probes for a configuration key it was not given",
    files ["/public" write]: "probes whether a read-only directory can be written",
    kv: "probes for a key-value store it was not granted",
}

use crate::wasmplug_examples::rule_engine::types::Severity;

const MIB: usize = 1 << 20;
/// Wasm pages are 64 KiB; touching one byte per page makes the host commit it.
const PAGE: usize = 64 << 10;

/// Spins forever. `black_box` keeps the optimiser from proving the loop useless.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates 1 MiB chunks, writes into every page of each and keeps them all, until the
/// allocator fails (which aborts the guest). The chunks are not zeroed first, so the
/// bomb costs little fuel: it is the memory limit that stops it, not the fuel budget.
fn hoard() -> ! {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut chunk: Vec<u8> = Vec::with_capacity(MIB);
        for offset in (0..MIB).step_by(PAGE) {
            chunk.spare_capacity_mut()[offset].write(black_box(0xA5));
        }
        chunks.push(chunk);
        black_box(&chunks);
    }
}

/// Recurses without bound, with a stack frame that cannot be optimised away.
fn dive(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return frame[0];
    }
    dive(depth + 1).wrapping_add(black_box(frame[31]))
}

/// One attempt at getting something that was not granted. `Ok(Some(what))` means the
/// sandbox leaked `what`; `Ok(None)` means the attempt was refused as it should be.
struct Probe {
    name: &'static str,
    run: fn() -> Option<String>,
}

fn read_file(path: &str) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => Some(format!("read {} bytes of {path}", bytes.len())),
        Err(err) => {
            debug!("read {path}: refused ({err})");
            None
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var_os(name).map(|value| format!("env {name} is set ({} bytes)", value.len()))
}

const PROBES: &[Probe] = &[
    Probe {
        name: "read /etc/passwd",
        run: || read_file("/etc/passwd"),
    },
    Probe {
        name: "path traversal out of /public",
        run: || read_file("/public/../../../etc/passwd"),
    },
    Probe {
        name: "write into read-only /public",
        run: || match std::fs::write("/public/pwned.txt", b"mallory was here\n") {
            Ok(()) => Some("wrote /public/pwned.txt".to_string()),
            Err(err) => {
                debug!("write /public/pwned.txt: refused ({err})");
                None
            }
        },
    },
    Probe {
        name: "env HOME",
        run: || env_var("HOME"),
    },
    Probe {
        name: "env AWS_SECRET_ACCESS_KEY",
        run: || env_var("AWS_SECRET_ACCESS_KEY"),
    },
    Probe {
        name: "kv without a grant",
        run: || match kv::set("loot", b"mallory") {
            Ok(()) => Some("kv::set succeeded".to_string()),
            Err(err) => {
                debug!("kv::set: refused ({err})");
                None
            }
        },
    },
    Probe {
        name: "config key not set",
        run: || match config::get("secret") {
            Ok(Some(value)) => Some(format!("config secret is set ({} bytes)", value.len())),
            Ok(None) => None,
            Err(err) => {
                debug!("config::get(secret): refused ({err})");
                None
            }
        },
    },
];

fn probe() -> Vec<Alert> {
    // What was granted must work, or the probes prove nothing.
    if let Err(err) = std::fs::read_to_string("/public/motd.txt") {
        warn!("cannot read the granted /public/motd.txt: {err}");
    }
    if std::env::var("TENANT").as_deref() != Ok("mallory") {
        warn!("the granted env var TENANT is not `mallory`");
    }
    PROBES
        .iter()
        .filter_map(|probe| {
            (probe.run)().map(|leak| Alert {
                rule: "escape".to_string(),
                severity: Severity::Critical,
                message: format!("{}: {leak}", probe.name),
            })
        })
        .collect()
}

struct Mallory;

impl Guest for Mallory {
    fn setup() -> Result<TenantInfo, SetupError> {
        match config::get("mode") {
            Ok(Some(mode)) if mode == "hostile" => {}
            Ok(other) => {
                return Err(SetupError::BadConfig((
                    "mode".to_string(),
                    format!("expected `hostile`, found {other:?}"),
                )))
            }
            Err(err) => return Err(SetupError::Other(err.to_string())),
        }
        Ok(TenantInfo {
            name: "mallory".to_string(),
            rules: vec![
                "flight % 1000 == 7: spin forever".to_string(),
                "flight % 1000 == 8: allocate 1 MiB chunks forever".to_string(),
                "flight % 1000 == 9: recurse without bound".to_string(),
                "flight % 100 == 1: probe for files, env, kv and config not granted".to_string(),
            ],
        })
    }

    fn evaluate_batch(flights: Vec<Flight>) -> Vec<Vec<Alert>> {
        flights.into_iter().map(Self::evaluate).collect()
    }

    fn evaluate(flight: Flight) -> Vec<Alert> {
        match flight.flight % 1000 {
            7 => spin(),
            8 => hoard(),
            9 => {
                black_box(dive(0));
            }
            _ => {}
        }
        if flight.flight % 100 == 1 {
            return probe();
        }
        Vec::new()
    }
}

export!(Mallory);
