# Every Rust unit, property and integration test in the workspace.
set -euo pipefail
cargo test --workspace --all-features --no-fail-fast
