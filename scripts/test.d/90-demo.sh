# The README's main job must run and tell its whole story.
set -euo pipefail
out=$(cargo run --quiet --bin tessera -- demo 2>&1) || { echo "$out"; exit 1; }
echo "$out"
for expected in "verified" "rejected" "equivocation proof" "demo complete"; do
  if ! grep -qi -- "$expected" <<<"$out"; then
    echo "demo output lacks '$expected'" >&2
    exit 1
  fi
done
