//! The gate's benchmark figures, shared by `tessera bench` and this
//! crate's `cargo bench` entry points (`benches/tap.rs`, `benches/mesh.rs`):
//! see `tessera_core::bench` for the figure type and docs/benchmarks.md for
//! the results.

#[cfg(feature = "mesh")]
pub mod mesh;
pub mod tap;
