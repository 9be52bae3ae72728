//! Logging through the host (`wasmplug:host/log`).
//!
//! Records go to the host's Python `logging`, tagged with the plugin's
//! identity. Most code uses the macros [`trace!`](crate::trace),
//! [`debug!`](crate::debug), [`info!`](crate::info), [`warn!`](crate::warn)
//! and [`error!`](crate::error), which take `format!` arguments and ignore a
//! denial, so logging never changes what a plugin does. They first ask the
//! host whether it keeps records of their level ([`enabled`]): a message the
//! host would drop is never formatted nor sent. Call [`log()`] to see the
//! host's answer.
//!
//! ```no_run
//! # // no_run: the import only exists inside a wasm host.
//! use wasmplug_guest::log::{self, Level};
//!
//! let delay = 42;
//! wasmplug_guest::info!("departure delayed by {delay} min");
//! wasmplug_guest::warn!("unknown carrier {:?}", "ZZ");
//!
//! if let Err(e) = log::log(Level::Error, "audit trail unavailable") {
//!     // e.g. Error::Denied when the host did not grant logging
//!     let _ = e;
//! }
//! ```

use std::fmt;
use std::str::FromStr;

use crate::host::{self, HostLevel};
use crate::Error;

/// Severity of a log record, from least to most severe. The host maps these
/// to Python's logging levels (`trace` below `DEBUG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Very detailed tracing, usually disabled on the host.
    Trace,
    /// Information useful when debugging the plugin.
    Debug,
    /// Normal operation worth recording.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A failure.
    Error,
}

impl Level {
    /// Every level, from least to most severe.
    pub const ALL: [Level; 5] = [
        Level::Trace,
        Level::Debug,
        Level::Info,
        Level::Warn,
        Level::Error,
    ];

    /// The level's WIT name: `"trace"`, `"debug"`, `"info"`, `"warn"` or
    /// `"error"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing a [`Level`] from a string that names no level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLevelError(String);

impl fmt::Display for ParseLevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown log level {:?} (expected trace, debug, info, warn or error)",
            self.0
        )
    }
}

impl std::error::Error for ParseLevelError {}

/// Parses a level name, ignoring ASCII case (`"info"`, `"WARN"`), so a
/// plugin can read its verbosity with
/// [`config::get_parsed::<Level>`](crate::config::get_parsed).
impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseLevelError(s.to_owned()))
    }
}

impl From<Level> for HostLevel {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => HostLevel::Trace,
            Level::Debug => HostLevel::Debug,
            Level::Info => HostLevel::Info,
            Level::Warn => HostLevel::Warn,
            Level::Error => HostLevel::Error,
        }
    }
}

/// Emits one log record at `level`.
///
/// # Errors
///
/// [`Error::Denied`] when the host did not grant logging.
pub fn log(level: Level, message: &str) -> Result<(), Error> {
    host::log::log(level.into(), message).map_err(Error::from)
}

/// Whether the host keeps records at `level`: logging is granted and the
/// host's logger for this plugin is enabled for that level. Never a denial.
///
/// The host answers each time (its level can change while the plugin runs);
/// asking costs one host call with no string, far less than formatting and
/// sending a record the host would drop.
pub fn enabled(level: Level) -> bool {
    host::log::enabled(level.into())
}

/// Formats and emits a record if the host keeps its level, ignoring the
/// host's answer. The logging macros expand to this; it is not part of the
/// API.
#[doc(hidden)]
pub fn __log_args(level: Level, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let _ignored = match args.as_str() {
        Some(message) => log(level, message),
        None => log(level, &fmt::format(args)),
    };
}

/// Logs a [`Level::Trace`] record; takes `format!` arguments. A denial is
/// ignored.
///
/// ```no_run
/// # // no_run: the import only exists inside a wasm host.
/// wasmplug_guest::trace!("entering evaluate for flight {}", 1545);
/// ```
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log::__log_args($crate::log::Level::Trace, ::core::format_args!($($arg)+))
    };
}

/// Logs a [`Level::Debug`] record; takes `format!` arguments. A denial is
/// ignored.
///
/// ```no_run
/// # // no_run: the import only exists inside a wasm host.
/// let rules = ["late-departure", "high-wind"];
/// wasmplug_guest::debug!("loaded {} rules: {rules:?}", rules.len());
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::__log_args($crate::log::Level::Debug, ::core::format_args!($($arg)+))
    };
}

/// Logs a [`Level::Info`] record; takes `format!` arguments. A denial is
/// ignored.
///
/// ```no_run
/// # // no_run: the import only exists inside a wasm host.
/// wasmplug_guest::info!("tenant ready");
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::__log_args($crate::log::Level::Info, ::core::format_args!($($arg)+))
    };
}

/// Logs a [`Level::Warn`] record; takes `format!` arguments. A denial is
/// ignored.
///
/// ```no_run
/// # // no_run: the import only exists inside a wasm host.
/// let key = "threshold";
/// wasmplug_guest::warn!("config key {key:?} missing, using 15");
/// ```
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::__log_args($crate::log::Level::Warn, ::core::format_args!($($arg)+))
    };
}

/// Logs a [`Level::Error`] record; takes `format!` arguments. A denial is
/// ignored.
///
/// ```no_run
/// # // no_run: the import only exists inside a wasm host.
/// let e = "quota exceeded";
/// wasmplug_guest::error!("cannot save state: {e}");
/// ```
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::__log_args($crate::log::Level::Error, ::core::format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake;

    fn records() -> Vec<(HostLevel, String)> {
        fake::with_state(|state| state.records.clone())
    }

    #[test]
    fn log_sends_level_and_message() {
        fake::reset();
        log(Level::Warn, "careful").unwrap();
        assert_eq!(records(), [(HostLevel::Warn, "careful".to_string())]);
    }

    #[test]
    fn log_reports_a_denial() {
        fake::reset();
        fake::with_state(|state| state.denied.insert("log"));
        assert_eq!(
            log(Level::Info, "hello"),
            Err(Error::Denied("log is not granted".into()))
        );
    }

    #[test]
    fn macros_format_their_arguments_at_their_level() {
        fake::reset();
        let flight = 1545;
        let carrier = "UA";
        crate::trace!("t {}", 1);
        crate::debug!("d {flight}");
        crate::info!("plain text, no arguments");
        crate::warn!("w {carrier:?} {:>4}", 7);
        crate::error!("e {}{}", carrier, flight,);
        assert_eq!(
            records(),
            [
                (HostLevel::Trace, "t 1".to_string()),
                (HostLevel::Debug, "d 1545".to_string()),
                (HostLevel::Info, "plain text, no arguments".to_string()),
                (HostLevel::Warn, "w \"UA\"    7".to_string()),
                (HostLevel::Error, "e UA1545".to_string()),
            ]
        );
    }

    #[test]
    fn macros_skip_levels_the_host_drops_without_formatting() {
        struct Panics;
        impl fmt::Display for Panics {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                panic!("formatted a message the host drops");
            }
        }
        fake::reset();
        fake::with_state(|state| state.min_level = Some(HostLevel::Warn));
        crate::debug!("{}", Panics);
        crate::info!("{}", Panics);
        crate::warn!("kept {}", 1);
        assert_eq!(records(), [(HostLevel::Warn, "kept 1".to_string())]);
        assert_eq!(fake::with_state(|state| state.enabled_queries), 3);
        assert!(!enabled(Level::Info));
        assert!(enabled(Level::Error));
    }

    #[test]
    fn macros_ignore_a_denial() {
        fake::reset();
        fake::with_state(|state| state.denied.insert("log"));
        crate::info!("dropped {}", 1);
        crate::error!("dropped too");
        assert!(records().is_empty());
    }

    #[test]
    fn levels_convert_to_the_host_enum_in_order() {
        let host: Vec<HostLevel> = Level::ALL.into_iter().map(HostLevel::from).collect();
        assert_eq!(
            host,
            [
                HostLevel::Trace,
                HostLevel::Debug,
                HostLevel::Info,
                HostLevel::Warn,
                HostLevel::Error,
            ]
        );
        assert!(Level::ALL.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn levels_parse_from_their_names() {
        for level in Level::ALL {
            assert_eq!(level.as_str().parse::<Level>(), Ok(level));
            assert_eq!(level.to_string().to_uppercase().parse::<Level>(), Ok(level));
        }
        let err = "verbose".parse::<Level>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown log level \"verbose\" (expected trace, debug, info, warn or error)"
        );
    }
}
