//! Benchmark plugin for raw wasmtime: the `benchcalls` functions behind a
//! hand-written ABI of `i32` pointers and lengths, no component model, no
//! imports. It is what a host that drives wasmtime's core API by hand would
//! call, and the floor the benchmark suite measures wasmplug against.
//!
//! Protocol: the host asks for the input buffer once (`input_buffer`), copies
//! its bytes there and passes their length. Outputs go to one output buffer
//! (`output_buffer`); a function returning bytes returns their length. Both
//! buffers hold `BUFFER_BYTES` bytes and live as long as the instance.

use std::cell::RefCell;

/// Capacity of the input and of the output buffer, bytes.
const BUFFER_BYTES: usize = 1 << 20;

thread_local! {
    static INPUT: RefCell<Vec<u8>> = RefCell::new(vec![0; BUFFER_BYTES]);
    static OUTPUT: RefCell<Vec<u8>> = RefCell::new(vec![0; BUFFER_BYTES]);
}

/// Address of the input buffer in linear memory.
#[no_mangle]
pub extern "C" fn input_buffer() -> *mut u8 {
    INPUT.with(|b| b.borrow_mut().as_mut_ptr())
}

/// Address of the output buffer in linear memory.
#[no_mangle]
pub extern "C" fn output_buffer() -> *mut u8 {
    OUTPUT.with(|b| b.borrow_mut().as_mut_ptr())
}

/// Capacity of each buffer, bytes.
#[no_mangle]
pub extern "C" fn buffer_bytes() -> u32 {
    BUFFER_BYTES as u32
}

/// Wrapping `u32` addition (as `i32` bits).
#[no_mangle]
pub extern "C" fn add(a: u32, b: u32) -> u32 {
    a.wrapping_add(b)
}

/// Does nothing.
#[no_mangle]
pub extern "C" fn noop() {}

/// Sum of the first `len` input bytes (their count is `len` itself).
#[no_mangle]
pub extern "C" fn blob_sum(len: u32) -> u64 {
    INPUT.with(|b| {
        let b = b.borrow();
        let len = (len as usize).min(b.len());
        b[..len].iter().map(|&x| u64::from(x)).sum()
    })
}

/// Copies the first `len` input bytes to the output buffer; returns `len`.
#[no_mangle]
pub extern "C" fn echo(len: u32) -> u32 {
    INPUT.with(|i| {
        OUTPUT.with(|o| {
            let len = (len as usize).min(BUFFER_BYTES);
            o.borrow_mut()[..len].copy_from_slice(&i.borrow()[..len]);
            len as u32
        })
    })
}
