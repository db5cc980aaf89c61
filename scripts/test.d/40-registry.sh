# The registry (service provider) against a real PostgreSQL: a throwaway
# cluster made with initdb on a free loopback port, the store conformance
# suite and the concurrency tests run against it, the cluster removed on
# exit. Installs PostgreSQL with apt when it is missing; fails (never skips)
# when the cluster cannot start.
set -euo pipefail

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [[ -x "$dir/initdb" ]] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! PG=$(pg_bin); then
  echo "registry: installing postgresql with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q postgresql >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
  PG=$(pg_bin) || { echo "registry: PostgreSQL is not installed and could not be installed" >&2; exit 1; }
fi
id postgres >/dev/null 2>&1 || { echo "registry: no postgres system user" >&2; exit 1; }

# A free loopback port: a random high port nothing answers on.
PORT=
for _ in $(seq 1 50); do
  candidate=$(( 20000 + RANDOM % 40000 ))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then PORT=$candidate; break; fi
done
[[ -n "$PORT" ]] || { echo "registry: no free loopback port found" >&2; exit 1; }
CLUSTER=$(mktemp -d /tmp/tessera-registry-pg.XXXXXX)
chown postgres "$CLUSTER"
cleanup() {
  trap - EXIT INT TERM
  runuser -u postgres -- "$PG/pg_ctl" -D "$CLUSTER/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  # The postmaster's children may still be leaving files; retry briefly.
  for _ in 1 2 3 4 5; do
    rm -rf "$CLUSTER" 2>/dev/null && break
    sleep 1
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# initdb refuses to run as root; the cluster belongs to the postgres user.
runuser -u postgres -- "$PG/initdb" -D "$CLUSTER/data" -A trust -U postgres >"$CLUSTER/initdb.log" 2>&1 \
  || { cat "$CLUSTER/initdb.log" >&2; exit 1; }
runuser -u postgres -- "$PG/pg_ctl" -D "$CLUSTER/data" -l "$CLUSTER/server.log" -w -t 60 \
  -o "-p $PORT -k $CLUSTER -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" start >/dev/null \
  || { cat "$CLUSTER/server.log" >&2; exit 1; }
runuser -u postgres -- "$PG/pg_isready" -h 127.0.0.1 -p "$PORT" >/dev/null \
  || { echo "registry: PostgreSQL did not come up on port $PORT" >&2; exit 1; }

export TESSERA_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/postgres"
echo "registry: PostgreSQL $("$PG/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT"

# Every #[ignore]d test in the workspace is a registry test that needs
# PostgreSQL; they read the URL above and fail without it. Built with the
# workspace's features, the same artifacts as section rust.
cargo test --workspace --all-features -- --ignored
