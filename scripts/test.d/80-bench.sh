# `tessera bench --quick`: every figure of docs/benchmarks.md measured once,
# on small samples, from the debug build the other sections already made
# (no build of its own: `cargo build` below finds everything up to date).
# Prints the table; fails only when a measurement fails, never on a missed
# target (a debug build's figures are not the targets' figures: those come
# from `cargo run --release --bin tessera -- bench`, docs/benchmarks.md).
set -euo pipefail

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
cargo build -q --workspace --all-features --lib --bins --tests
"$CARGO_TARGET_DIR/debug/tessera" bench --quick
