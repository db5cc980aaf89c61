# Issue 7's evidence harnesses (docs/security.md): every fuzz target for a
# few seconds. The adversarial model (10,000 cases), the secrets tests and
# crash injection are ordinary tests of tessera-core and run once, in
# section rust.
# Fails when a harness fails or cannot be built; never skips.
set -euo pipefail
section_start=$(date +%s)

# Fuzzing on the stable toolchain (--sanitizer none), unoptimised build,
# without the p2p codec target (its libp2p TLS build alone takes longer
# than this whole section; scripts/fuzz.sh runs it by default).
# The instrumented build goes to a directory of its own that is removed
# afterwards: it shares nothing with the test builds, and keeping it would
# only fill the disk (scripts/fuzz.sh keeps its own under target/fuzz).
fuzz_start=$(date +%s)
fuzz_target=$(mktemp -d "${TMPDIR:-/tmp}/tessera-fuzz-target.XXXXXX")
trap 'rm -rf "$fuzz_target"' EXIT
FUZZ_TARGET_DIR="$fuzz_target" FUZZ_FEATURES="" FUZZ_DEV=1 bash scripts/fuzz.sh "${PROOF_FUZZ_SECONDS:-10}"
rm -rf "$fuzz_target"
echo "fuzzing took $(( $(date +%s) - fuzz_start ))s"

echo "proof section took $(( $(date +%s) - section_start ))s"
