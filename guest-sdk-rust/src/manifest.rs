//! The plugin's side of a two-party grant: what it needs, and why.
//!
//! A host grants each plugin capabilities in a policy. With [`manifest!`](crate::manifest!)
//! the plugin states, at build time, which capabilities it needs and the
//! reason for each; the host compares that request with its policy when it
//! loads the plugin, reports the difference by name, and (in strict mode)
//! refuses a plugin that asks for more than it is granted. The manifest is
//! a declaration, never a grant: the host's policy alone decides what the
//! plugin gets.
//!
//! ```
//! wasmplug_guest::manifest! {
//!     log: "reports rules it cannot evaluate",
//!     config ["min-delay", "watch-dests"]: "thresholds of the delay rules",
//!     kv: "remembers the last flights of each route",
//!     files ["/data" read]: "reads the airport table",
//!     env ["TZ"]: "formats local times",
//!     http ["https://api.example.com/*" GET]: "fetches weather observations",
//! }
//! # fn main() {
//! #     let json = std::str::from_utf8(&__wasmplug_manifest::BYTES).unwrap();
//! #     assert!(json.starts_with(r#"{"wasmplug-manifest":1,"needs":[{"capability":"log""#));
//! # }
//! ```
//!
//! # Needs
//!
//! Each entry is `capability [items]: "reason"`. The reason is required and
//! must not be empty: it is what the host's operator reads in the load-time
//! report. A capability may appear more than once, each time with other
//! items and its own reason.
//!
//! | capability | items | access words | host grant compared with |
//! |---|---|---|---|
//! | `log` | none | | `Grants.log` |
//! | `config` | key names | none | `Grants.config` keys |
//! | `kv` | none | | `Grants.kv` |
//! | `files` | absolute guest paths | `read`, `write` (at least one) | `Grants.files` (`Preopen.guest_path`, `writable`) |
//! | `env` | variable names | none | `Grants.env` names |
//! | `stdio` | none | | `Grants.stdio` |
//! | `http` | URL patterns (`http://` or `https://`, `*` as wildcard) | HTTP methods in capitals; none means any | the host's HTTP allow-list |
//!
//! A mistake (an unknown capability, items where none belong, an unknown
//! access word, an empty reason) is a compile error naming it.
//!
//! # Encoding
//!
//! The manifest is JSON, UTF-8, in a custom section named
//! [`SECTION`] of the plugin's core module (a `wasm32-wasip2` component
//! carries it in the core module it nests):
//!
//! ```json
//! {"wasmplug-manifest": 1, "needs": [
//!   {"capability": "files", "items": [{"name": "/data", "access": ["read"]}],
//!    "reason": "reads the airport table"}]}
//! ```
//!
//! `"wasmplug-manifest"` is the format version ([`FORMAT`]); `items` is
//! always present (empty for `log`, `kv`, `stdio`). Invoke [`manifest!`](crate::manifest!)
//! once per plugin: the linker concatenates sections of one name, and the
//! host refuses a section that holds two manifests.

/// The name of the custom section that holds the manifest.
pub const SECTION: &str = "wasmplug-manifest";

/// The version of the encoding written by this SDK.
pub const FORMAT: u32 = 1;

/// One need of a plugin: a capability, the items of it the plugin uses, and
/// why. Built by [`manifest!`](crate::manifest!); not usually written by hand.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    /// The capability's name (`"log"`, `"config"`, `"files"` ...).
    pub capability: &'static str,
    /// The items it needs (config keys, guest paths ...), empty for a
    /// capability without items.
    pub items: &'static [Item],
    /// Why the plugin needs it, for the host's operator.
    pub reason: &'static str,
}

/// One item of a [`Need`]: a name and the access wanted.
#[derive(Debug, Clone, Copy)]
pub struct Item {
    /// The item's name: a config key, a guest path, a variable name, a URL
    /// pattern.
    pub name: &'static str,
    /// Access words: `read`/`write` for files, HTTP methods for `http`.
    pub access: &'static [&'static str],
}

/// How many items and which access words a capability takes.
#[derive(Clone, Copy)]
enum Shape {
    /// No items (`log`, `kv`, `stdio`).
    Plain,
    /// Named items without access words (`config`, `env`).
    Names,
    /// Guest paths with `read` and/or `write`.
    Paths,
    /// URL patterns with optional HTTP methods.
    Urls,
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn starts_with(a: &str, prefix: &str) -> bool {
    let (a, p) = (a.as_bytes(), prefix.as_bytes());
    if a.len() < p.len() {
        return false;
    }
    let mut i = 0;
    while i < p.len() {
        if a[i] != p[i] {
            return false;
        }
        i += 1;
    }
    true
}

const fn shape(capability: &str) -> Shape {
    if str_eq(capability, "log") || str_eq(capability, "kv") || str_eq(capability, "stdio") {
        Shape::Plain
    } else if str_eq(capability, "config") || str_eq(capability, "env") {
        Shape::Names
    } else if str_eq(capability, "files") {
        Shape::Paths
    } else if str_eq(capability, "http") {
        Shape::Urls
    } else {
        panic!("wasmplug manifest: unknown capability (expected log, config, kv, files, env, stdio or http)")
    }
}

const fn check_item(shape: Shape, item: &Item) {
    if item.name.is_empty() {
        panic!("wasmplug manifest: an item name is empty");
    }
    let mut i = 0;
    while i < item.access.len() {
        let word = item.access[i];
        match shape {
            Shape::Plain | Shape::Names => {
                panic!("wasmplug manifest: config keys and env names take no access words")
            }
            Shape::Paths => {
                if !str_eq(word, "read") && !str_eq(word, "write") {
                    panic!("wasmplug manifest: a files access word must be `read` or `write`");
                }
            }
            Shape::Urls => {
                let bytes = word.as_bytes();
                let mut j = 0;
                while j < bytes.len() {
                    if !bytes[j].is_ascii_uppercase() {
                        panic!("wasmplug manifest: an HTTP method is written in capitals (GET, POST ...)");
                    }
                    j += 1;
                }
            }
        }
        i += 1;
    }
    match shape {
        Shape::Paths => {
            if !starts_with(item.name, "/") {
                panic!("wasmplug manifest: a files path must be an absolute guest path");
            }
            if item.access.is_empty() {
                panic!("wasmplug manifest: a files path needs `read`, `write` or both");
            }
        }
        Shape::Urls => {
            if !starts_with(item.name, "http://") && !starts_with(item.name, "https://") {
                panic!("wasmplug manifest: an http item must start with http:// or https://");
            }
        }
        Shape::Plain | Shape::Names => {}
    }
}

const fn check(need: &Need) {
    let shape = shape(need.capability);
    if need.reason.is_empty() {
        panic!("wasmplug manifest: every need must give a reason");
    }
    match shape {
        Shape::Plain => {
            if !need.items.is_empty() {
                panic!("wasmplug manifest: log, kv and stdio take no items");
            }
        }
        _ => {
            if need.items.is_empty() {
                panic!("wasmplug manifest: config, env, files and http need a list of items");
            }
        }
    }
    let mut i = 0;
    while i < need.items.len() {
        check_item(shape, &need.items[i]);
        i += 1;
    }
}

/// A byte buffer filled in a `const` context; with `N == 0` it only counts.
struct Out<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Out<N> {
    const fn byte(mut self, b: u8) -> Self {
        if self.len < N {
            self.buf[self.len] = b;
        }
        self.len += 1;
        self
    }

    const fn raw(mut self, s: &str) -> Self {
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            self = self.byte(bytes[i]);
            i += 1;
        }
        self
    }

    /// A JSON string: quotes, `\"`, `\\` and `\u00XX` for control
    /// characters; other characters as their UTF-8 bytes.
    const fn string(mut self, s: &str) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self = self.byte(b'"');
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'"' || b == b'\\' {
                self = self.byte(b'\\').byte(b);
            } else if b < 0x20 {
                self = self
                    .raw("\\u00")
                    .byte(HEX[(b >> 4) as usize])
                    .byte(HEX[(b & 15) as usize]);
            } else {
                self = self.byte(b);
            }
            i += 1;
        }
        self.byte(b'"')
    }
}

const fn emit<const N: usize>(needs: &[Need]) -> Out<N> {
    let mut out = Out {
        buf: [0; N],
        len: 0,
    };
    out = out.raw("{\"wasmplug-manifest\":");
    out = out.byte(b'0' + FORMAT as u8).raw(",\"needs\":[");
    let mut i = 0;
    while i < needs.len() {
        let need = &needs[i];
        check(need);
        if i > 0 {
            out = out.byte(b',');
        }
        out = out
            .raw("{\"capability\":")
            .string(need.capability)
            .raw(",\"items\":[");
        let mut j = 0;
        while j < need.items.len() {
            let item = &need.items[j];
            if j > 0 {
                out = out.byte(b',');
            }
            out = out.raw("{\"name\":").string(item.name).raw(",\"access\":[");
            let mut k = 0;
            while k < item.access.len() {
                if k > 0 {
                    out = out.byte(b',');
                }
                out = out.string(item.access[k]);
                k += 1;
            }
            out = out.raw("]}");
            j += 1;
        }
        out = out.raw("],\"reason\":").string(need.reason).byte(b'}');
        i += 1;
    }
    out.raw("]}")
}

/// The length in bytes of the JSON encoding of `needs`.
///
/// # Panics
///
/// At compile time (in a `const`) when a need is invalid: see the module
/// docs.
pub const fn encoded_len(needs: &[Need]) -> usize {
    emit::<0>(needs).len
}

/// The JSON encoding of `needs`, `N` bytes long: `N` must be
/// [`encoded_len`]`(needs)`.
///
/// # Panics
///
/// When `N` is not the encoded length, or a need is invalid (at compile time
/// when evaluated in a `const` or `static`).
pub const fn encode<const N: usize>(needs: &[Need]) -> [u8; N] {
    let out = emit::<N>(needs);
    if out.len != N {
        panic!("wasmplug manifest: N is not the encoded length");
    }
    out.buf
}

/// Declares the capabilities the plugin needs, each with a reason, and
/// embeds them in the built plugin as the custom section [`SECTION`](crate::manifest::SECTION).
///
/// Syntax: comma-separated needs, `capability: "reason"` or
/// `capability [item access..., ...]: "reason"`, where an item is a string
/// literal and access words are bare identifiers (`read`, `write`, `GET`).
/// See [the module docs](mod@crate::manifest) for the capabilities, their items
/// and the encoding.
///
/// ```
/// wasmplug_guest::manifest! {
///     log: "warns about flights it cannot classify",
///     config ["min-dep-delay"]: "the departure delay that raises an alert",
///     files ["/public" read, "/scratch" read write]: "reads the schedule, keeps a work file",
/// }
/// # fn main() {
/// #     let json = std::str::from_utf8(&__wasmplug_manifest::BYTES).unwrap();
/// #     assert!(json.contains(r#"{"name":"/scratch","access":["read","write"]}"#));
/// # }
/// ```
///
/// Invoke it once, at the crate root of the plugin (it defines the module
/// `__wasmplug_manifest`, so a second invocation in the same module does not
/// compile). Its expansion is a `#[used]` static: the section is kept even
/// though nothing reads it.
///
/// A mistake is a compile error:
///
/// ```compile_fail
/// wasmplug_guest::manifest! { network: "no such capability" }
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// wasmplug_guest::manifest! { log: "" }
/// # fn main() {}
/// ```
///
/// ```compile_fail
/// wasmplug_guest::manifest! { files ["/data" execute]: "not an access word" }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! manifest {
    ($(
        $capability:ident
        $( [ $( $name:literal $( $access:ident )* ),* $(,)? ] )?
        : $reason:literal
    ),* $(,)?) => {
        /// The plugin's capability manifest (`wasmplug_guest::manifest!`).
        #[doc(hidden)]
        pub mod __wasmplug_manifest {
            const NEEDS: &[$crate::manifest::Need] = &[$(
                $crate::manifest::Need {
                    capability: ::core::stringify!($capability),
                    items: &[$($(
                        $crate::manifest::Item {
                            name: $name,
                            access: &[$( ::core::stringify!($access) ),*],
                        }
                    ),*)?],
                    reason: $reason,
                }
            ),*];
            const LEN: usize = $crate::manifest::encoded_len(NEEDS);
            /// The encoded manifest, in the custom section `wasmplug-manifest`
            /// of a wasm build.
            #[used]
            #[cfg_attr(target_family = "wasm", link_section = "wasmplug-manifest")]
            pub static BYTES: [u8; LEN] = $crate::manifest::encode::<LEN>(NEEDS);
        }
    };
}

#[cfg(test)]
mod tests {
    use super::{encode, encoded_len, Item, Need};

    const NEEDS: &[Need] = &[
        Need {
            capability: "config",
            items: &[
                Item {
                    name: "a\"b\\c",
                    access: &[],
                },
                Item {
                    name: "tab\there",
                    access: &[],
                },
            ],
            reason: "ünïcode reason",
        },
        Need {
            capability: "http",
            items: &[Item {
                name: "https://x.example/*",
                access: &["GET", "POST"],
            }],
            reason: "r",
        },
    ];

    /// The const encoder writes exactly the JSON the host parses, escapes
    /// included.
    #[test]
    fn encodes_json_with_escapes() {
        const LEN: usize = encoded_len(NEEDS);
        let bytes = encode::<LEN>(NEEDS);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"wasmplug-manifest":1,"needs":["#,
                r#"{"capability":"config","items":[{"name":"a\"b\\c","access":[]},"#,
                r#"{"name":"tab\u0009here","access":[]}],"reason":"ünïcode reason"},"#,
                r#"{"capability":"http","items":[{"name":"https://x.example/*","access":["GET","POST"]}],"reason":"r"}]}"#,
            )
        );
    }

    crate::manifest! {
        log: "because",
        files ["/d" read write, "/e" read]: "data",
    }

    /// The macro expands to a static holding the encoding of what it was given.
    #[test]
    fn macro_expands_to_the_encoding() {
        let text = std::str::from_utf8(&__wasmplug_manifest::BYTES).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"wasmplug-manifest":1,"needs":[{"capability":"log","items":[],"reason":"because"},"#,
                r#"{"capability":"files","items":[{"name":"/d","access":["read","write"]},"#,
                r#"{"name":"/e","access":["read"]}],"reason":"data"}]}"#,
            )
        );
    }
}
