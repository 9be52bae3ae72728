//! Guest SDK for wasmplug plugins written in Rust.
//!
//! A wasmplug host (a Python application) defines the interface its plugins
//! implement as a WIT world, and grants each plugin a set of *capabilities*:
//! logging, configuration, a key-value namespace. This crate gives a plugin
//! idiomatic access to those capabilities and generates the bindings for the
//! host's world:
//!
//! - [`generate!`] turns the host's WIT world into a `Guest` trait and an
//!   `export!` macro, sharing the host-capability bindings with this crate;
//! - [`log`] (with the [`info!`] family of macros), [`config`] and [`kv`]
//!   wrap the capabilities with `Result`s of one [`Error`] type;
//! - [`cbor`] encodes serde values the way the host expects schemaless data;
//! - [`manifest!`] declares the capabilities the plugin needs, each with a
//!   reason, in the built plugin: the host compares them with its policy at
//!   load time (see [`mod@manifest`]);
//! - `testing` (feature `fake-host`) is an in-memory fake host for a
//!   plugin's native unit tests.
//!
//! A capability the host did not grant is an [`Error::Denied`] value, never
//! a trap: handle it or pass it on with `?`.
//!
//! # A plugin
//!
//! The host's world includes `wasmplug:host/capabilities@0.1.0` (its WIT
//! lives in the plugin's `wit/` directory, with the host capabilities under
//! `wit/deps/`); the plugin implements the exports. This example inlines a
//! small world instead:
//!
//! ```
//! wasmplug_guest::generate!({
//!     inline: r#"
//!         package example:greeter@0.1.0;
//!
//!         world greeter {
//!             include wasmplug:host/capabilities@0.1.0;
//!             export greet: func(name: string) -> result<string, string>;
//!         }
//!     "#,
//!     // The directory holding the `wasmplug:host` package.
//!     path: "wit",
//! });
//!
//! use wasmplug_guest::{config, kv};
//!
//! struct Greeter;
//!
//! impl Guest for Greeter {
//!     fn greet(name: String) -> Result<String, String> {
//!         let greeting = config::get("greeting")?.unwrap_or_else(|| "Hello".into());
//!         let count: u64 = kv::get_cbor("count")?.unwrap_or(0) + 1;
//!         kv::set_cbor("count", &count)?;
//!         wasmplug_guest::info!("greeting #{count} for {name}");
//!         Ok(format!("{greeting}, {name}!"))
//!     }
//! }
//!
//! export!(Greeter);
//! # fn main() {}
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2`; the result is a component
//! that imports only the capabilities it calls.
//!
//! # Calling the host's own functions
//!
//! A host usually gives its plugins an API of its own: an interface of the
//! host's package that the world imports. [`generate!`] binds it beside the
//! capabilities, as plain functions in a module named after the package and
//! interface; the host implements it in Python per plugin (the `imports`
//! argument of `wasmplug.load`, or a generated `Protocol`).
//!
//! ```
//! wasmplug_guest::generate!({
//!     inline: r#"
//!         package example:rules@0.1.0;
//!
//!         interface airports {
//!             record airport { faa: string, tz: s8 }
//!             lookup: func(faa: string) -> option<airport>;
//!         }
//!
//!         world tenant {
//!             include wasmplug:host/capabilities@0.1.0;
//!             import airports;
//!             export hours-behind: func(origin: string, dest: string) -> option<s32>;
//!         }
//!     "#,
//!     path: "wit",
//! });
//!
//! use example::rules::airports;
//!
//! struct Tenant;
//!
//! impl Guest for Tenant {
//!     fn hours_behind(origin: String, dest: String) -> Option<i32> {
//!         // Each lookup is a call into the host's Python implementation.
//!         let (from, to) = (airports::lookup(&origin)?, airports::lookup(&dest)?);
//!         Some(i32::from(from.tz) - i32::from(to.tz))
//!     }
//! }
//!
//! export!(Tenant);
//! # fn main() {}
//! ```
//!
//! The rule-engine example's `night-owl` tenant does this with the host's
//! airport directory, caching answers in guest memory.
//!
//! # Using a host resource
//!
//! A resource of an imported interface is an object that lives on the host (an
//! instance of the Python class the host gives for it). The plugin holds a
//! handle: constructing one calls the class, each method call runs on the
//! host, and dropping the handle lets the host close the object.
//!
//! ```
//! wasmplug_guest::generate!({
//!     inline: r#"
//!         package example:docs@0.1.0;
//!
//!         interface store {
//!             resource document {
//!                 constructor(name: string);
//!                 append: func(text: string);
//!                 len: func() -> u32;
//!             }
//!         }
//!
//!         world writer {
//!             include wasmplug:host/capabilities@0.1.0;
//!             import store;
//!             export write: func(name: string, lines: list<string>) -> u32;
//!         }
//!     "#,
//!     path: "wit",
//! });
//!
//! use example::docs::store::Document;
//!
//! struct Writer;
//!
//! impl Guest for Writer {
//!     fn write(name: String, lines: Vec<String>) -> u32 {
//!         let doc = Document::new(&name); // the host's `Document(name)`
//!         for line in &lines {
//!             doc.append(line);
//!         }
//!         doc.len()
//!     } // `doc` is dropped here: the host closes its object
//! }
//!
//! export!(Writer);
//! # fn main() {}
//! ```
//!
//! `tests/fixtures/resources` in the wasmplug repository uses host resources
//! (and exports one) end to end.
#![deny(missing_docs)]

pub mod cbor;
pub mod config;
pub mod http;
pub mod kv;
pub mod log;
pub mod manifest;
#[cfg(feature = "fake-host")]
pub mod testing;

#[doc(hidden)]
pub mod bindings;
mod error;
mod host;

pub use error::Error;

/// Implementation details used by [`generate!`]'s expansion. Not part of the
/// API: anything in here may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use wit_bindgen;
}

/// Generates the bindings for a plugin's WIT world: the `Guest` trait (and
/// one trait per exported interface) to implement, and the `export!` macro
/// that registers the implementation.
///
/// Takes the options of [`wit_bindgen::generate!`] (most often `path` and
/// `world`) and adds what the SDK needs:
///
/// - the `wasmplug:host/*@0.1.0` interfaces are not generated again but
///   remapped (`with`) to this crate's bindings, so the world's host types
///   are this crate's types and the [`log`], [`config`] and [`kv`] wrappers
///   serve the plugin;
/// - the runtime support comes from this crate's re-export of wit-bindgen,
///   so a plugin does not depend on `wit-bindgen` itself;
/// - `generate_all`: interfaces from other packages the world imports (such
///   as WASI) are generated too.
///
/// A plugin usually points it at its `wit/` directory and names the world,
/// `wasmplug_guest::generate!({ path: "wit", world: "tenant" });`, and
/// `generate!()` with no options reads `wit/` and picks its only world. The
/// world can also be inline, with `path` naming the directory that holds
/// the `wasmplug:host` package:
///
/// ```
/// wasmplug_guest::generate!({
///     inline: "
///         package example:counter@0.1.0;
///         world counter {
///             include wasmplug:host/capabilities@0.1.0;
///             export next: func() -> u64;
///         }
///     ",
///     path: "wit",
/// });
///
/// struct Counter;
///
/// impl Guest for Counter {
///     fn next() -> u64 {
///         let n = wasmplug_guest::kv::get_cbor::<u64>("n").ok().flatten().unwrap_or(0) + 1;
///         let _ = wasmplug_guest::kv::set_cbor("n", &n);
///         n
///     }
/// }
///
/// export!(Counter);
/// # fn main() {}
/// ```
///
/// # Requirements
///
/// - The world must include the capabilities, `include
///   wasmplug:host/capabilities@0.1.0;` (wit-bindgen rejects a remapping the
///   world does not use). This costs nothing: a built component imports only
///   the interfaces the plugin calls.
/// - The plugin must depend on this crate under its own name,
///   `wasmplug_guest` (the expansion refers to `::wasmplug_guest`).
/// - Call it once per plugin, at the crate root, or pass wit-bindgen's
///   `default_bindings_module` option when calling it in a module.
#[macro_export]
macro_rules! generate {
    () => {
        $crate::generate!({});
    };
    ({ $($options:tt)* }) => {
        $crate::__private::wit_bindgen::generate!({
            runtime_path: "::wasmplug_guest::__private::wit_bindgen::rt",
            generate_all,
            with: {
                "wasmplug:host/types@0.1.0": ::wasmplug_guest::bindings::wasmplug::host::types,
                "wasmplug:host/log@0.1.0": ::wasmplug_guest::bindings::wasmplug::host::log,
                "wasmplug:host/config@0.1.0": ::wasmplug_guest::bindings::wasmplug::host::config,
                "wasmplug:host/kv@0.1.0": ::wasmplug_guest::bindings::wasmplug::host::kv,
                "wasmplug:host/http@0.1.0": ::wasmplug_guest::bindings::wasmplug::host::http,
            },
            $($options)*
        });
    };
}

#[cfg(test)]
mod tests {
    /// Every `wasmplug:host/...@version` name written in this crate's source
    /// (the `with` remappings of [`generate!`], the world of the raw
    /// bindings) has the version of the one `host.wit` it is built from.
    #[test]
    fn host_names_carry_the_version_of_host_wit() {
        let wit = include_str!("../wit/host.wit");
        let version = wit
            .lines()
            .find_map(|line| line.strip_prefix("package wasmplug:host@"))
            .and_then(|rest| rest.strip_suffix(';'))
            .expect("host.wit declares `package wasmplug:host@<version>;`");
        let mut names = 0;
        let lib = include_str!("lib.rs");
        let lib = &lib[..lib.rfind("#[cfg(test)]").unwrap()]; // not this test itself
        for source in [lib, include_str!("bindings.rs")] {
            for (at, _) in source.match_indices("\"wasmplug:host/") {
                let name = &source[at + 1..];
                let name = &name[..name.find('"').unwrap()];
                assert!(
                    name.ends_with(&format!("@{version}")),
                    "{name} vs {version}"
                );
                names += 1;
            }
        }
        assert_eq!(names, 6);
    }
}
