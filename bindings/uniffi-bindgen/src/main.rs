//! `uniffi-bindgen` built from the same uniffi version as `tessera-ffi`, so
//! bindings generated from the library always match its scaffolding.
//!
//! ```text
//! cargo run -p tessera-uniffi-bindgen --bin uniffi-bindgen -- \
//!     generate --library target/debug/libtessera_ffi.so --language kotlin --out-dir bindings/kotlin
//! ```

fn main() {
    uniffi::uniffi_bindgen_main()
}
