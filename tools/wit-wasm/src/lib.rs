//! wasmplug's WIT parser: the official `wit-parser` / `wit-component` crates
//! behind a small (pointer, length) ABI, built as a wasm32-wasip1 reactor
//! module that wasmplug runs in its own sandbox.
//!
//! # ABI
//!
//! * `alloc(len) -> ptr`: reserves `len` bytes for a request; the host writes
//!   the request there.
//! * `parse_path(ptr, len) -> resp` parses the WIT at the UTF-8 path in the
//!   request (a `.wit` file, or a directory with `deps/`) with
//!   [`Resolve::push_path`]; the host preopens that directory, read-only.
//! * `decode(ptr, len) -> resp` decodes the WebAssembly binary in the request:
//!   a component ([`wit_component::decode`]) or a core module carrying a
//!   `component-type` custom section ([`wit_component::metadata::decode`]).
//! * `custom_sections(ptr, len) -> resp` finds the custom sections of one name
//!   in a WebAssembly binary, at any depth (a component's nested core modules
//!   and components included), with [`wasmparser::Parser::parse_all`]. The
//!   request is the section name in UTF-8, a NUL byte, then the binary.
//!
//! `resp` points at three little-endian `u32`s: a status (0: success,
//! 1: error), and the pointer and length of the response bytes. On success
//! the response is a JSON document:
//!
//! ```json
//! {"format": 1, "package": 0, "world": null, "kind": null, "wit": null,
//!  "resolve": {"worlds": [], "interfaces": [], "types": [], "packages": []}}
//! ```
//!
//! where `resolve` is `wit-parser`'s serialization of [`Resolve`], `package`
//! the index of the main package, `world` the index of the decoded world
//! (`decode` only), `kind` `"component"`, `"core-module"` or `"wit-package"`
//! (`decode` only) and `wit` the WIT text of the world's package (`decode`
//! only). `custom_sections` answers
//! `{"format": 1, "sections": [{"depth": 1, "hex": "7b7d"}]}`: one entry per
//! section found, in binary order, with its nesting depth (0: the outermost
//! binary; 1: a module nested in a component) and its contents in lowercase
//! hex. On error the response is the UTF-8 error message.
//!
//! If the parser panics (a bug in it: the module aborts, which traps), the
//! host may call `panic_message() -> resp` on the same instance to get the
//! panic's message as an error response.
//!
//! Each instance serves one request: the host instantiates afresh each time,
//! so nothing here is ever freed.

use std::path::Path;

use anyhow::{bail, Context, Result};
use wit_component::{DecodedWasm, WitPrinter};
use wit_parser::{PackageId, ParseError, Resolve, ResolveError, SourceMap, WorldId};

/// The response slot: status, pointer, length.
static mut RESPONSE: [u32; 3] = [0; 3];

/// The message of the last panic, if any, for [`panic_message`].
static mut PANIC: Option<String> = None;

fn catch_panics() {
    std::panic::set_hook(Box::new(|info| {
        let slot = std::ptr::addr_of_mut!(PANIC);
        // SAFETY: single-threaded module; nothing else holds a reference.
        unsafe { *slot = Some(format!("the WIT parser panicked: {info}")) };
    }));
}

/// Returns the message of the panic that aborted the last request, as an
/// error response (status 1); status 2 and no message when there was none.
#[no_mangle]
pub extern "C" fn panic_message() -> *const u32 {
    let slot = std::ptr::addr_of_mut!(PANIC);
    // SAFETY: single-threaded module; nothing else holds a reference.
    match unsafe { (*slot).take() } {
        Some(message) => respond(Err(message)),
        None => respond_status(2, Vec::new()),
    }
}

/// Reserves `len` bytes for a request and returns their address.
#[no_mangle]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    let mut buf = Vec::<u8>::with_capacity(len.max(1));
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

/// Parses the WIT at the path in the request; see the crate docs.
///
/// # Safety
///
/// `ptr` and `len` must describe memory returned by [`alloc`].
#[no_mangle]
pub unsafe extern "C" fn parse_path(ptr: *const u8, len: usize) -> *const u32 {
    // SAFETY: the caller passes a buffer it filled through `alloc`.
    let request = unsafe { std::slice::from_raw_parts(ptr, len) };
    catch_panics();
    respond(match std::str::from_utf8(request) {
        Ok(path) => parse(path),
        Err(_) => Err("the path is not UTF-8".to_owned()),
    })
}

/// Decodes the WebAssembly binary in the request; see the crate docs.
///
/// # Safety
///
/// `ptr` and `len` must describe memory returned by [`alloc`].
#[no_mangle]
pub unsafe extern "C" fn decode(ptr: *const u8, len: usize) -> *const u32 {
    // SAFETY: the caller passes a buffer it filled through `alloc`.
    let request = unsafe { std::slice::from_raw_parts(ptr, len) };
    catch_panics();
    respond(decode_binary(request).map_err(|e| render_error(&e, None)))
}

/// Finds the custom sections of one name in the binary in the request; see
/// the crate docs.
///
/// # Safety
///
/// `ptr` and `len` must describe memory returned by [`alloc`].
#[no_mangle]
pub unsafe extern "C" fn custom_sections(ptr: *const u8, len: usize) -> *const u32 {
    // SAFETY: the caller passes a buffer it filled through `alloc`.
    let request = unsafe { std::slice::from_raw_parts(ptr, len) };
    catch_panics();
    respond(find_custom_sections(request).map_err(|e| render_error(&e, None)))
}

fn find_custom_sections(request: &[u8]) -> Result<String> {
    let split = request
        .iter()
        .position(|&b| b == 0)
        .context("the request has no NUL byte after the section name")?;
    let name = std::str::from_utf8(&request[..split]).context("the section name is not UTF-8")?;
    let wasm = &request[split + 1..];
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        bail!("not WebAssembly: the magic bytes \\0asm are missing");
    }
    let mut depth = 0usize;
    let mut sections = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload? {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth = depth.saturating_sub(1),
            wasmparser::Payload::CustomSection(section) if section.name() == name => {
                let hex: String = section.data().iter().map(|b| format!("{b:02x}")).collect();
                sections.push(serde_json::json!({"depth": depth - 1, "hex": hex}));
            }
            _ => {}
        }
    }
    Ok(serde_json::json!({"format": 1, "sections": sections}).to_string())
}

fn respond(result: Result<String, String>) -> *const u32 {
    match result {
        Ok(json) => respond_status(0, json.into_bytes()),
        Err(message) => respond_status(1, message.into_bytes()),
    }
}

fn respond_status(status: u32, bytes: Vec<u8>) -> *const u32 {
    let bytes = bytes.leak();
    let slot = std::ptr::addr_of_mut!(RESPONSE);
    // SAFETY: single-threaded module, one request per instance; the pointer is
    // a wasm32 address, so it fits in a u32.
    unsafe {
        *slot = [status, bytes.as_ptr() as u32, bytes.len() as u32];
        slot as *const u32
    }
}

/// Every message of the error chain, outermost first, one per paragraph;
/// parse and resolve errors rendered with their `--> file:line:col` location
/// when `source_map` is given.
fn render_error(e: &anyhow::Error, source_map: Option<&SourceMap>) -> String {
    e.chain()
        .map(|layer| match source_map {
            Some(map) => {
                if let Some(re) = layer.downcast_ref::<ResolveError>() {
                    re.render(map)
                } else if let Some(pe) = layer.downcast_ref::<ParseError>() {
                    pe.render(map)
                } else {
                    layer.to_string()
                }
            }
            None => layer.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn parse(path: &str) -> Result<String, String> {
    let mut resolve = Resolve::default();
    match resolve.push_path(Path::new(path)) {
        Ok((package, _sources)) => {
            document(&resolve, package, None, None, None).map_err(|e| render_error(&e, None))
        }
        Err(e) => Err(render_error(&e, Some(&resolve.source_map))),
    }
}

fn decode_binary(wasm: &[u8]) -> Result<String> {
    if wasm.len() < 8 || &wasm[..4] != b"\0asm" {
        bail!("not WebAssembly: the magic bytes \\0asm are missing");
    }
    // Bytes 4..8: version and layer; layer 0 is a core module.
    if wasm[6..8] == [0, 0] {
        let (stripped, bindgen) = wit_component::metadata::decode(wasm)?;
        if stripped.is_none() {
            bail!("the core module has no component-type custom section");
        }
        let world = bindgen.world;
        let package = world_package(&bindgen.resolve, world)?;
        let wit = print(&bindgen.resolve, package)?;
        return document(
            &bindgen.resolve,
            package,
            Some(world),
            Some("core-module"),
            Some(wit),
        );
    }
    match wit_component::decode(wasm)? {
        DecodedWasm::Component(resolve, world) => {
            let package = world_package(&resolve, world)?;
            let wit = print(&resolve, package)?;
            document(&resolve, package, Some(world), Some("component"), Some(wit))
        }
        DecodedWasm::WitPackage(resolve, package) => {
            let wit = print(&resolve, package)?;
            document(&resolve, package, None, Some("wit-package"), Some(wit))
        }
    }
}

fn world_package(resolve: &Resolve, world: WorldId) -> Result<PackageId> {
    resolve.worlds[world]
        .package
        .context("the decoded world belongs to no package")
}

fn print(resolve: &Resolve, package: PackageId) -> Result<String> {
    let mut printer = WitPrinter::default();
    printer.print(resolve, package, &[])?;
    Ok(printer.output.into())
}

fn document(
    resolve: &Resolve,
    package: PackageId,
    world: Option<WorldId>,
    kind: Option<&str>,
    wit: Option<String>,
) -> Result<String> {
    // Written by hand around the resolve so that its maps keep wit-parser's
    // (source) order; serde_json's own maps would sort the keys.
    Ok(format!(
        "{{\"format\":1,\"package\":{},\"world\":{},\"kind\":{},\"wit\":{},\"resolve\":{}}}",
        package.index(),
        serde_json::to_string(&world.map(|w| w.index()))?,
        serde_json::to_string(&kind)?,
        serde_json::to_string(&wit)?,
        serde_json::to_string(resolve)?,
    ))
}
