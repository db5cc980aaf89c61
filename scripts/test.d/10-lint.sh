# Formatting, lints with warnings denied, and docs with warnings denied.
set -euo pipefail
# Cargo.lock is committed and must be complete: a build that would change it
# (a dependency added without its lock entry) fails here, not silently.
cargo metadata --locked --format-version 1 >/dev/null \
  || { echo "Cargo.lock is out of date: run cargo build, commit Cargo.lock" >&2; exit 1; }
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features
