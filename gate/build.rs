//! libnfc's PC/SC driver calls into pcsc-lite, which the vendored build does
//! not link by itself.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_NFC").is_some() {
        println!("cargo:rustc-link-lib=pcsclite");
    }
}
