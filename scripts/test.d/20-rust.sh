# Every Rust unit, property and integration test in the workspace.
# The adversarial model (core/tests/adversarial.rs) runs its CI size here,
# 10,000 cases, in the same debug build as everything else (its signature
# crates are optimised even in debug): a separate release build for it cost
# CI more time and disk than the cases themselves.
set -euo pipefail
ADVERSARIAL_CASES="${PROOF_ADVERSARIAL_CASES:-10000}" cargo test --workspace --all-features --no-fail-fast
