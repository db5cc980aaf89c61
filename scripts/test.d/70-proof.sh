# Issue 7's evidence harnesses (docs/security.md): every fuzz target for a
# few seconds, the adversarial model at 10,000 cases, the secrets tests and
# crash injection.
# Fails when a harness fails or cannot be built; never skips.
set -euo pipefail
section_start=$(date +%s)

# Fuzzing on the stable toolchain (--sanitizer none), unoptimised build,
# without the p2p codec target (its libp2p TLS build alone takes longer
# than this whole section; scripts/fuzz.sh runs it by default).
fuzz_start=$(date +%s)
FUZZ_FEATURES="" FUZZ_DEV=1 bash scripts/fuzz.sh "${PROOF_FUZZ_SECONDS:-10}"
echo "fuzzing took $(( $(date +%s) - fuzz_start ))s"

# The adversarial model: 10,000 cases, release build (a case is a handful
# of wallets on SQLite in memory; the debug build would take minutes).
model_start=$(date +%s)
ADVERSARIAL_CASES="${PROOF_ADVERSARIAL_CASES:-10000}" \
  cargo test --release -p tessera-core --test adversarial --test secrets --test crash
echo "adversarial model, secrets and crash injection took $(( $(date +%s) - model_start ))s"

echo "proof section took $(( $(date +%s) - section_start ))s"
