# NFC presentation through the real stack: pcscd with the vsmartcard-vpcd
# reader driver, a wallet as a virtual card (tessera-vcard) connected to vpcd
# on 127.0.0.1:35963, and the real tessera-gate binary reaching it through
# nfc1/libnfc with a `pcsc:` connstring. Fails (never skips) when the stack
# cannot start.
set -euo pipefail

need=()
for pkg in pcscd vsmartcard-vpcd libpcsclite-dev libclang-dev cmake; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [[ ${#need[@]} -gt 0 ]]; then
  echo "installing ${need[*]}"
  apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Every binary with the workspace's features, resolved as `cargo test`
# resolves them (`--tests` turns the dev-dependencies' features on too):
# the artifacts section rust built. Without `--tests`, tessera-core and
# everything above it were compiled a second time.
cargo build -q --workspace --all-features --lib --bins --tests
bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug"
work=$(mktemp -d)
pcscd_pid="" card_pid="" registry_pid="" gate_pid=""
cleanup() {
  [[ -n "$card_pid" ]] && kill "$card_pid" 2>/dev/null || true
  [[ -n "$gate_pid" ]] && kill "$gate_pid" 2>/dev/null || true
  [[ -n "$registry_pid" ]] && kill "$registry_pid" 2>/dev/null || true
  [[ -n "$pcscd_pid" ]] && kill "$pcscd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

vpcd_listening() { ss -ltn 2>/dev/null | grep -q ':35963 '; }
if ! vpcd_listening; then
  # A stale pid file (a pcscd that died) would stop a new one from starting.
  if [[ -f /run/pcscd/pcscd.pid ]] && ! kill -0 "$(cat /run/pcscd/pcscd.pid)" 2>/dev/null; then
    rm -f /run/pcscd/pcscd.pid /run/pcscd/pcscd.comm
  fi
  pcscd --foreground >"$work/pcscd.log" 2>&1 &
  pcscd_pid=$!
  for _ in $(seq 1 50); do vpcd_listening && break; sleep 0.2; done
  vpcd_listening || { echo "pcscd did not start vpcd on 127.0.0.1:35963" >&2; cat "$work/pcscd.log" >&2; exit 1; }
fi
conn="pcsc:Virtual PCD 00 00"
# pcscd opens vpcd's port before it lists the reader; give it a moment.
for _ in $(seq 1 50); do
  readers=$("$bin/tessera-gate" --dir "$work/g" readers)
  grep -qx "$conn" <<<"$readers" && break
  sleep 0.2
done
grep -qx "$conn" <<<"$readers" || { echo "libnfc does not see $conn; it sees: $readers" >&2; exit 1; }

# A venue: an entrance gate, a coupon kiosk, and a gate the registry never certified.
gate_key=$("$bin/tessera-gate" --dir "$work/g" init --event final-2026 --zone north)
kiosk_key=$("$bin/tessera-gate" --dir "$work/k" init --event final-2026 --zone north --instruction punch)
"$bin/tessera-gate" --dir "$work/rogue" init --event final-2026 --zone north >/dev/null
"$bin/tessera-vcard" setup --dir "$work/v" --gate-key "$gate_key" --gate-key "$kiosk_key"
for g in g k rogue; do
  "$bin/tessera-gate" --dir "$work/$g" pin-registry "$(cat "$work/v/registry.pub")"
  "$bin/tessera-gate" --dir "$work/$g" install-trust-list "$work/v/trust-list.bin" >/dev/null
  "$bin/tessera-gate" --dir "$work/$g" install-deny-list "$work/v/deny-list.bin"
done
id_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/${venue:-v}/ids.json" "$1"; }

passed=0 failed=0
# remove_card: the phone leaves the field. pcscd learns that only at its next
# presence poll (every 400 ms); a card that comes sooner is taken for the one
# that left, and its tap fails half-way. A second covers a slow machine.
remove_card() {
  kill "$card_pid" 2>/dev/null || true
  wait "$card_pid" 2>/dev/null || true
  card_pid=""
  sleep 1
}
# tap GATE WALLET [--choose ID]: one tap; prints the gate's JSON line.
tap() {
  local gate=$1 wallet=$2; shift 2
  "$bin/tessera-vcard" serve --wallet "$work/${venue:-v}/$wallet" "$@" >"$work/card.log" 2>&1 &
  card_pid=$!
  local out
  out=$("$bin/tessera-gate" --dir "$work/$gate" run --connstring "$conn" --taps 1 --wait-secs 20 --json) || {
    echo "tessera-gate failed; card log:" >&2; cat "$work/card.log" >&2; kill "$card_pid"; card_pid=""; return 1; }
  remove_card
  echo "$out" | tail -n 1
}
# check NAME JSON PYTHON-EXPRESSION-ON-j
check() {
  if python3 -c 'import json,sys; j=json.loads(sys.argv[1]); sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3"; then
    echo "ok   $1"; passed=$((passed + 1))
  else
    echo "FAIL $1: $2 does not satisfy $3"; failed=$((failed + 1))
  fi
}
show() { "$bin/tessera-vcard" show --wallet "$work/${venue:-v}/$1" --id "$(id_of "$1")"; }

r=$(tap g valid);                         check "valid ticket admitted" "$r" 'j["admitted"] and j["seat"] == "Row 12 Seat 7" and j["confirmed"]'
check "wallet logged the admission" "$(show valid)" 'j["exam_counter"] == 1 and j["uses_left"] == 0 and j["counters"] == [1] and j["instructions"] == ["enter"]'
r=$(tap g valid --choose "$(id_of valid)"); check "used ticket refused" "$r" 'j["reason"] == "already-used"'
check "refusal changed nothing in the wallet" "$(show valid)" 'j["exam_counter"] == 1 and j["examinations"] == 1'
r=$(tap g forged);                        check "forged ticket refused" "$r" 'j["reason"] == "forged"'
r=$(tap g expired);                       check "expired ticket refused" "$r" 'j["reason"] == "expired"'
check "expired: wallet unchanged" "$(show expired)" 'j["exam_counter"] == 0 and j["uses_left"] == 1'
r=$(tap g revoked);                       check "revoked ticket refused" "$r" 'j["reason"] == "revoked"'
r=$(tap g zone --choose "$(id_of zone)"); check "wrong-zone ticket refused" "$r" 'j["reason"] == "wrong-zone"'
r=$(tap g zone);                          check "wallet finds no ticket for this zone" "$r" 'j["reason"] == "no-matching-ticket" and j["status_word"] == "6A88"'
r=$(tap g bob);                           check "first holder of a double transfer admitted" "$r" 'j["admitted"]'
r=$(tap g carol);                         check "double-transferred ticket refused with proof" "$r" 'j["reason"] == "double-transfer" and j["double_transfer_signer"]'
check "double transfer: second wallet unchanged" "$(show carol)" 'j["exam_counter"] == 0 and j["uses_left"] == 1'
r=$(tap k coupon);                        check "coupon punched" "$r" 'j["admitted"] and j["uses_left"] == 2 and j["instruction"] == "punch"'
r=$(tap k coupon);                        check "coupon punched again" "$r" 'j["admitted"] and j["uses_left"] == 1'
check "wallet's coupon log and counter match" "$(show coupon)" 'j["exam_counter"] == 2 and j["uses_left"] == 1 and j["counters"] == [1, 2]'
r=$(tap rogue valid --choose "$(id_of valid)"); check "uncertified gate refused by the wallet" "$r" 'j["reason"] == "gate-not-trusted-by-wallet" and j["status_word"] == "6982"'
check "gate log holds every decision" "$("$bin/tessera-gate" --dir "$work/g" log --limit 100 | wc -l | python3 -c 'import sys; print(sys.stdin.read().strip())')" 'j == 8'

# One gate run, phones one after another, as at a real entrance. The gate is
# up before the first phone (a PC/SC reader opens only with a card in the
# field), and it reopens the reader for each new phone (a PC/SC handle is
# bound to the card it was opened with and fails once that card has left).
"$bin/tessera-gate" --dir "$work/g" run --connstring "$conn" --taps 3 --wait-secs 20 --json >"$work/run.out" 2>"$work/run.err" &
gate_pid=$!
for _ in $(seq 1 100); do grep -q '^gate ' "$work/run.out" && break; sleep 0.1; done
r=$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$(head -n 1 "$work/run.out")")
check "the gate shows its screen before any phone comes" "$r" 'j.startswith("gate ") and "event final-2026" in j'
n=0
for w in forged expired revoked; do
  n=$((n + 1))
  "$bin/tessera-vcard" serve --wallet "$work/v/$w" >"$work/card.log" 2>&1 &
  card_pid=$!
  for _ in $(seq 1 200); do
    [[ $(grep -c '^{' "$work/run.out") -ge $n ]] && break
    kill -0 "$gate_pid" 2>/dev/null || break
    sleep 0.1
  done
  remove_card
done
gate_rc=0; wait "$gate_pid" || gate_rc=$?; gate_pid=""
r=$(grep '^{' "$work/run.out" | python3 -c 'import json,sys; print(json.dumps({"rc": int(sys.argv[1]), "reasons": [json.loads(l)["reason"] for l in sys.stdin]}))' "$gate_rc")
check "one gate run serves phones one after another" "$r" 'j == {"rc": 0, "reasons": ["forged", "expired", "revoked"]}'
[[ $gate_rc -eq 0 ]] || grep -v -E '^ +([0-9]+: |at )' "$work/run.err" >&2
# A reader name pcscd does not list (a typo) is an error at once, not a wait.
if "$bin/tessera-gate" --dir "$work/g" run --connstring "pcsc:No Such Reader 00 00" --taps 1 --wait-secs 20 >"$work/run.out" 2>&1; then
  r='{"refused": false}'
else
  r=$(python3 -c 'import json,sys; print(json.dumps({"refused": True, "said": open(sys.argv[1]).read()}))' "$work/run.out")
fi
check "a reader pcscd does not list is refused" "$r" 'j["refused"] and "no reader pcsc:No Such Reader 00 00" in j["said"] and "no phone presented" not in j["said"]'

# Phone to phone through the same stack: the giver's phone is the reader
# (tessera-phone, nfc1 with the pcsc: connstring), the receiver's the card
# (tessera-vcard on vpcd, receive screen open). One tap moves the ticket.
"$bin/tessera-vcard" serve --wallet "$work/v/receiver" --accept-gifts >"$work/card.log" 2>&1 &
card_pid=$!
r=$("$bin/tessera-phone" give --wallet "$work/v/giver" --id "$(id_of receiver)" --connstring "$conn" --wait-secs 20) || {
  echo "tessera-phone failed; card log:" >&2; cat "$work/card.log" >&2; exit 1; }
remove_card
check "phone to phone: gift completed in one tap" "$r" "j['completed'] and j['sent'] == ['$(id_of receiver)'] and j['round_trips'] >= 3"
check "phone to phone: the ticket is in the receiving wallet" "$(show receiver)" 'j["holding"] == "held" and j["sequence"] == 1'
check "phone to phone: the ticket is gone from the sender" "$(show giver)" 'j["holding"] == "gone"'
r=$(tap g receiver); check "phone to phone: the received ticket is admitted at the gate" "$r" 'j["admitted"]'
r=$(tap g giver --choose "$(id_of giver)"); check "phone to phone: the sender cannot present it any more" "$r" 'j["status_word"] == "6985"'

# Two taps: the receiving phone's user answers on screen between them
# (tessera-vcard --on-screen, the card stays in the field); the sender's
# second tap (tessera-phone collect) picks the answer up. First a decline:
# nothing moves; then the same ticket offered again and accepted.
phone() { "$bin/tessera-phone" "$@" --connstring "$conn" --wait-secs 20; }
two_taps() {
  local answer=$1
  "$bin/tessera-vcard" serve --wallet "$work/v/receiver2" --on-screen "$answer" >"$work/card.log" 2>&1 &
  card_pid=$!
  first=$(phone give --wallet "$work/v/giver2" --id "$(id_of receiver2)") || { cat "$work/card.log" >&2; exit 1; }
  sleep 0.5
  second=$(phone collect --wallet "$work/v/giver2") || { cat "$work/card.log" >&2; exit 1; }
  remove_card
}
two_taps decline
check "two taps: the first tap leaves the offer with the receiver's user" "$first" 'not j["completed"] and j["awaiting_peer"]'
check "two taps: a decline on screen ends the exchange at the second tap" "$second" 'j["declined"] == "declined on screen" and not j["completed"] and not j["awaiting_peer"]'
check "two taps, declined: the giver holds the ticket again" "$(show giver2)" 'j["holding"] == "held" and j["sequence"] == 0'
two_taps accept
check "two taps: an acceptance on screen completes the gift at the second tap" "$second" "j['completed'] and j['sent'] == ['$(id_of receiver2)']"
check "two taps, accepted: the ticket is in the receiving wallet" "$(show receiver2)" 'j["holding"] == "held" and j["sequence"] == 1'
check "two taps, accepted: the ticket is gone from the giver" "$(show giver2)" 'j["holding"] == "gone"'

# The offline policy (DESIGN §2), set by the operator: the gift above made
# receiver2's ticket one hop from its genesis, unreconciled.
check "offline policy: defaults" "$("$bin/tessera-gate" --dir "$work/g" offline-policy)" 'j == {"max_hops": 8, "max_note_value": 10000}'
"$bin/tessera-gate" --dir "$work/g" offline-policy --max-hops 0 >/dev/null
r=$(tap g receiver2 --choose "$(id_of receiver2)"); check "offline policy: a chain over the hop limit is refused" "$r" 'j["reason"] == "over-offline-limit"'
check "offline policy: the refusal changed nothing in the wallet" "$(show receiver2)" 'j["exam_counter"] == 0 and j["uses_left"] == 1'
if "$bin/tessera-gate" --dir "$work/g" offline-policy --max-hops 65 >/dev/null 2>&1; then r='{"refused": false}'; else r='{"refused": true}'; fi
check "offline policy: more hops than a chain can have is refused" "$r" 'j["refused"]'
check "offline policy: a refused setting changes nothing" "$("$bin/tessera-gate" --dir "$work/g" offline-policy)" 'j == {"max_hops": 0, "max_note_value": 10000}'
"$bin/tessera-gate" --dir "$work/g" offline-policy --max-hops 1 >/dev/null
r=$(tap g receiver2); check "offline policy: within the limit the ticket is admitted" "$r" 'j["admitted"]'

# Gate ↔ registry over HTTP, against a real `tessera-registry serve`: sync
# (trust list, event, deny list incrementally), admit offline with the
# registry down, then bags: settled, the same bag again answered with its
# original settlement, another bag under a used number refused with its
# reason, and the settlement report.
python3 -c 'import secrets; print(secrets.token_hex(32))' >"$work/registry.key"
# start_registry: a registry on a free loopback port; sets $url.
start_registry() {
  "$bin/tessera-registry" serve --listen 127.0.0.1:0 --print-addr --database "sqlite:$work/registry.db" \
    --key-file "$work/registry.key" >"$work/registry.out" 2>"$work/registry.log" &
  registry_pid=$!
  for _ in $(seq 1 100); do [[ -s "$work/registry.out" ]] && break; sleep 0.1; done
  [[ -s "$work/registry.out" ]] || { echo "tessera-registry did not start" >&2; cat "$work/registry.log" >&2; exit 1; }
  url="http://$(head -n 1 "$work/registry.out")"
}
stop_registry() { kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true; registry_pid=""; : >"$work/registry.out"; }
start_registry
rg_key=$("$bin/tessera-gate" --dir "$work/rg" init --event final-2026 --zone north)
"$bin/tessera-vcard" enrol --registry "$url" --operator-key-file "$work/registry.key" --dir "$work/rv" --gate-key "$rg_key"
"$bin/tessera-gate" --dir "$work/rg" pin-registry "$(cat "$work/rv/registry.pub")"
venue=rv
r=$("$bin/tessera-gate" --dir "$work/rg" sync --registry "$url" --json)
check "sync installs trust list, event and deny list" "$r" \
  "j['trust_version_before'] is None and j['trust_version'] >= 2 and j['event'] == 'final-2026' and j['warnings'] == [] and j['newly_denied'] == ['$(id_of revoked)'] and j['deny_version'] >= 1"
r=$("$bin/tessera-gate" --dir "$work/rg" sync --registry "$url" --json)
check "second sync: deny list unchanged, nothing new" "$r" 'j["newly_denied"] == [] and j["deny_version"] == j["deny_version_before"]'
stop_registry
if "$bin/tessera-gate" --dir "$work/rg" sync --registry "$url" >/dev/null 2>&1; then r='{"offline": false}'; else r='{"offline": true}'; fi
check "registry down: sync fails" "$r" 'j["offline"]'
r=$(tap rg valid);   check "offline: registry-issued ticket admitted" "$r" 'j["admitted"] and j["seat"] == "Row 3 Seat 9"'
r=$(tap rg revoked); check "offline: ticket revoked at the registry refused (synced deny list)" "$r" 'j["reason"] == "revoked"'
start_registry
# A copy of the gate (same key, same records) packs its own bag 1 a
# second later: another bag under the same number.
cp -r "$work/rg" "$work/rg-copy"
"$bin/tessera-gate" --dir "$work/rg" pack-bag --out "$work/bag-1.bin" >/dev/null
sleep 1.1
"$bin/tessera-gate" --dir "$work/rg-copy" pack-bag --out "$work/bag-1-other.bin" >/dev/null
r=$("$bin/tessera-gate" --dir "$work/rg" upload --registry "$url" --json)
check "bag uploaded and settled" "$r" 'j["bag"] == 1 and j["settled"] and j["admitted"] == 1 and j["refused"] == 1 and not j["replayed"]'
r=$("$bin/tessera-gate" --dir "$work/rg" upload --registry "$url" --json --file "$work/bag-1.bin")
check "the same bag again (answer lost): its original settlement, replayed" "$r" 'j["bag"] == 1 and j["settled"] and j["replayed"] and j["admitted"] == 1 and j["refused"] == 1'
r=$("$bin/tessera-gate" --dir "$work/rg" upload --registry "$url" --json --file "$work/bag-1-other.bin")
check "another bag under a used number refused with its reason" "$r" 'j["bag"] == 1 and not j["settled"] and j["reason"] == "bag_reused" and j["status"] == 409'
r=$("$bin/tessera-gate" --dir "$work/rg" settlement --registry "$url" --json)
check "settlement report" "$r" "j['gate'] == '$rg_key' and j['bags'] == 1 and j['admitted'] == 1 and j['refused'] == 1"
r=$(python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' "$url/instruments/$(id_of valid)")
check "the registry applied the admission (uses left 0)" "$r" 'j["uses_left"] == 0'
check "gate lists the bag as settled" "$("$bin/tessera-gate" --dir "$work/rg" bags | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read().split()))')" 'j[0:4] == ["bag", "1", "2", "records"] and j[4] == "settled"'
stop_registry
venue=v

echo "tessera-tests: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
