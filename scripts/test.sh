#!/usr/bin/env bash
# Runs Tessera's checks. Installs what they need first when it is missing.
#
#   scripts/test.sh            every section, in order
#   scripts/test.sh rust e2e   only the named sections
#   scripts/test.sh --list     the section names
#
# Each section is one file, scripts/test.d/NN-name.sh, run with bash from the
# repository root. A section fails the run by exiting non-zero; a section
# that cannot set up what it needs fails too (it never skips silently).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export ROOT

sections=()
for f in scripts/test.d/[0-9][0-9]-*.sh; do
  name=$(basename "$f" .sh)
  sections+=("${name#[0-9][0-9]-}")
done

if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${sections[@]}"
  exit 0
fi

wanted=("$@")
[[ ${#wanted[@]} -eq 0 ]] && wanted=("${sections[@]}")
for w in "${wanted[@]}"; do
  if [[ ! " ${sections[*]} " == *" $w "* ]]; then
    echo "unknown section '$w'; sections: ${sections[*]}" >&2
    exit 2
  fi
done

# Rust comes from rustup on the machine; everything else a section installs.
if ! command -v cargo >/dev/null 2>&1; then
  [[ -f "$HOME/.cargo/env" ]] && . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }

# System packages every section may need (nfc1's libnfc is built by clippy
# and the tests too, since they enable every feature).
bash scripts/install-deps.sh || { echo "installing the test dependencies failed" >&2; exit 1; }

# One build, shared by every section: no incremental caches (a clean run
# never reuses them, and they doubled the target directory), and sections
# that build (registry, nfc, kotlin) ask for the same workspace-wide feature
# set as the tests, so cargo reuses those artifacts instead of compiling a
# second copy of each dependency.
export CARGO_INCREMENTAL=0

log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT
passed_sections=() failed_sections=()
for f in scripts/test.d/[0-9][0-9]-*.sh; do
  name=$(basename "$f" .sh); name=${name#[0-9][0-9]-}
  [[ " ${wanted[*]} " == *" $name "* ]] || continue
  echo "==== section $name ===="
  start=$(date +%s)
  if bash "$f" 2>&1 | tee "$log_dir/$name.log"; then
    passed_sections+=("$name")
    echo "==== section $name passed in $(( $(date +%s) - start ))s ===="
  else
    failed_sections+=("$name")
    echo "==== section $name FAILED in $(( $(date +%s) - start ))s ===="
  fi
done

# Totals over every test runner's closing lines (cargo test and the rest).
passed=0 failed=0
while read -r p f; do
  passed=$((passed + p)); failed=$((failed + f))
done < <(cat "$log_dir"/*.log 2>/dev/null | sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p; s/^tessera-tests: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')

# A failed section's last lines again, next to the totals: CI shows only the
# tail of a run, and a section that stops early says why only there.
for name in "${failed_sections[@]}"; do
  echo
  echo "---- section $name failed; its last lines (backtrace frames left out):"
  grep -v -E '^ +([0-9]+: |at )' "$log_dir/$name.log" | tail -n 30
done

echo
echo "sections passed: ${passed_sections[*]:-none}"
echo "sections failed: ${failed_sections[*]:-none}"
if [[ ${#failed_sections[@]} -gt 0 && $failed -eq 0 ]]; then failed=${#failed_sections[@]}; fi
echo "tests: $passed passed, $failed failed"
[[ ${#failed_sections[@]} -eq 0 ]]
