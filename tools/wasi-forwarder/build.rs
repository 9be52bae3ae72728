//! Link settings of the forwarder component.

fn main() {
    // The forwarder shares its Store's memory limits with the plugin: a 64 KiB stack
    // instead of Rust's 1 MiB keeps its linear memory near 128 KiB.
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg=-zstack-size=65536");
    }
}
