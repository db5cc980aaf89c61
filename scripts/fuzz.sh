#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for N seconds each (default 60) and
# prints executions, corpus size and the result per target.
#
#   scripts/fuzz.sh [--seeds] [seconds-per-target] [target ...]
#
# FUZZ_FEATURES (default "p2p") picks the fuzz crate's features: the p2p
# codec target needs `p2p`, which builds libp2p and its TLS C code (slow);
# FUZZ_FEATURES="" leaves that target out. FUZZ_DEV=1 builds unoptimised
# (but with the crypto and SQLite crates optimised), three times faster to
# build, for short runs such as CI's.
#
# Works on the stable toolchain the repository pins: `--sanitizer none`
# needs no -Z flag (the coverage instrumentation libFuzzer uses is stable);
# what it gives up is AddressSanitizer, which safe Rust (unsafe is forbidden
# in this workspace) needs least. Installs cargo-fuzz when missing.
#
# Corpora: fuzz/corpus/<target> (kept between runs, not committed), seeded
# at every run from docs/vectors/*.hex (each vector under the `wire`
# selector of its type) and from fuzz/seeds/<target> (recorded taps,
# transfers and registry bodies, committed; `scripts/fuzz.sh --seeds`
# rewrites them with the make_seeds binary). A crash leaves its input in
# fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
regenerate_seeds=0
if [[ ${1:-} == --seeds ]]; then
  regenerate_seeds=1
  shift
fi
seconds=${1:-60}
shift || true

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/fuzz}
# 16 codegen units build several times faster on two cores; the fuzzing
# loop loses a little speed, which a short run does not notice.
build_flags=(--sanitizer none --target-dir "$target_dir" --codegen-units "${FUZZ_CODEGEN_UNITS:-16}")
features=${FUZZ_FEATURES-p2p}
[[ -n $features ]] && build_flags+=(--features "$features")
[[ ${FUZZ_DEV:-0} == 1 ]] && build_flags+=(--dev)

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v -e '^tessera-fuzz$' -e '^make_seeds$')
  if [[ " $features " != *" p2p "* ]]; then
    # Its target needs the p2p feature (see above).
    mapfile -t targets < <(printf '%s\n' "${targets[@]}" | grep -v '^p2p_codec$')
  fi
fi

echo "building ${targets[*]}"
(cd fuzz && cargo fuzz build "${build_flags[@]}")

if [[ ${regenerate_seeds:-0} == 1 ]]; then
  rm -rf fuzz/seeds
  (cd fuzz && TESSERA_FUZZ_SEEDS="$PWD/seeds" cargo fuzz run "${build_flags[@]}" make_seeds -- -runs=1 >/dev/null 2>&1)
  echo "seeds written: $(find fuzz/seeds -type f | wc -l) files in fuzz/seeds"
fi

# The wire target's selector byte is the type's index in WIRE_TYPES.
mapfile -t wire_types < <(sed -n '/^pub const WIRE_TYPES/,/^];/p' fuzz/src/lib.rs | grep -o '"[^"]*"' | tr -d '"')
selector_of() {
  local i
  for i in "${!wire_types[@]}"; do
    [[ "${wire_types[$i]}" == "$1" ]] && { printf '%d' "$i"; return 0; }
  done
  return 1
}

seed_corpus() {
  local t=$1 dir=fuzz/corpus/$1
  mkdir -p "$dir"
  [[ -d fuzz/seeds/$t ]] && cp -f fuzz/seeds/"$t"/* "$dir"/
  if [[ $t == wire ]]; then
    local f type name sel
    for f in docs/vectors/*.hex; do
      name=$(basename "$f" .hex)
      type=$(sed -n 's/^# type: \([^ ]*\).*/\1/p' "$f" | head -n1)
      if [[ -z $type ]]; then
        case $name in
          nfc-bag) type='Signed<BagBody>' ;;
          nfc-challenge) type='Signed<ChallengeBody>' ;;
          nfc-examination) type='Signed<ExaminationBody>' ;;
          nfc-presentation) type='Presentation' ;;
          nfc-presentation-on-air) type='PresentationOnAir' ;;
          nfc-examination-on-air) type='CertificateOnAir' ;;
          used-after-transfer-proof) type='UsedAfterTransferProof' ;;
          *) echo "  vector $name names no type; not seeded" >&2; continue ;;
        esac
      fi
      sel=$(selector_of "$type") || { echo "  vector $name: type $type is not a wire target type" >&2; continue; }
      # Selector byte, then the vector's bytes (hex lines after the # header).
      perl -e 'my $s = shift; local $/; my $t = <STDIN>; $t =~ s/^#.*$//mg; $t =~ s/\s+//g;
               print chr($s), pack("H*", $t)' "$sel" <"$f" >"$dir/vector-$name"
    done
  fi
}

status=0
summary=()
for t in "${targets[@]}"; do
  seed_corpus "$t"
  mkdir -p "fuzz/artifacts/$t"
  log=$(mktemp)
  echo "== fuzzing $t for ${seconds}s"
  set +e
  (cd fuzz && cargo fuzz run "${build_flags[@]}" "$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="artifacts/$t/") >"$log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    result=ok
  else
    result="FAILED (exit $rc)"
    status=1
    tail -n 40 "$log"
  fi
  summary+=("$(printf '%-10s %12s execs %6s inputs  %s' "$t" "${execs:-?}" "$corpus" "$result")")
  rm -f "$log"
done

echo
echo "fuzz run: ${seconds}s per target, $(date -u +%Y-%m-%dT%H:%MZ), $(rustc --version)"
printf '%s\n' "${summary[@]}"
exit $status
