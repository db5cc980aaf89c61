# The Kotlin bindings on a plain JVM, and the bindings drift check.
#
#  1. Sets up the toolchain when missing: kotlinc (and kotlinx-coroutines)
#     from the npm package kotlin-compiler at an exact version, JNA from
#     Debian's libjna-java. Java must be on the machine. Fails, never skips,
#     when any of it cannot be set up.
#  2. Builds the cdylib, the testkit, the registry and the workspace's
#     uniffi-bindgen.
#  3. Regenerates bindings/kotlin and bindings/swift from the built library
#     and fails if they differ from the tree (commit the regenerated files).
#  4. Starts a real `tessera-registry serve` on a free loopback port with a
#     temporary SQLite file.
#  5. Compiles the generated Kotlin with the suite in
#     bindings/kotlin/src/test/kotlin (and the demo app's plain-Kotlin logic
#     and its tests, android-demo/app/src/{main,test}/kotlin/tessera/demo)
#     and runs it with -Djna.library.path.
set -euo pipefail

KOTLIN_VERSION=2.2.21   # exact; kotlinc 2.2.21 with JDK 17 is known to work here
UNIFFI_VERSION=0.32.2   # must equal the pins in bindings/Cargo.toml and bindings/uniffi-bindgen/Cargo.toml

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
fail() { echo "kotlin: $*" >&2; exit 1; }

# --- toolchain -----------------------------------------------------------------
command -v java >/dev/null 2>&1 || fail "java is not installed (the machine provides a JDK; apt-get install default-jdk-headless)"

JNA_JAR=/usr/share/java/jna.jar
if [[ ! -f $JNA_JAR ]]; then
  echo "kotlin: installing libjna-java with apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q libjna-java >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q libjna-java >/dev/null; } \
    || fail "could not install libjna-java"
  [[ -f $JNA_JAR ]] || fail "libjna-java installed but $JNA_JAR is missing"
fi

KOTLIN_HOME="${TESSERA_TOOLS:-$HOME/.cache/tessera}/kotlin-$KOTLIN_VERSION/node_modules/kotlin-compiler"
if [[ ! -x $KOTLIN_HOME/bin/kotlinc ]]; then
  command -v npm >/dev/null 2>&1 || fail "npm is needed to install kotlin-compiler@$KOTLIN_VERSION"
  echo "kotlin: installing kotlin-compiler@$KOTLIN_VERSION with npm"
  mkdir -p "$(dirname "$(dirname "$KOTLIN_HOME")")"
  npm install --no-audit --no-fund --loglevel=error --prefix "$(dirname "$(dirname "$KOTLIN_HOME")")" \
    "kotlin-compiler@$KOTLIN_VERSION" >/dev/null || fail "npm could not install kotlin-compiler@$KOTLIN_VERSION"
fi
KOTLINC=$KOTLIN_HOME/bin/kotlinc
COROUTINES_JAR=$KOTLIN_HOME/lib/kotlinx-coroutines-core-jvm.jar
STDLIB_JAR=$KOTLIN_HOME/lib/kotlin-stdlib.jar
for f in "$KOTLINC" "$COROUTINES_JAR" "$STDLIB_JAR"; do [[ -e $f ]] || fail "$f is missing from kotlin-compiler@$KOTLIN_VERSION"; done
"$KOTLINC" -version 2>&1 | grep -q "kotlinc-jvm $KOTLIN_VERSION" || fail "kotlinc is not version $KOTLIN_VERSION: $("$KOTLINC" -version 2>&1)"

for toml in bindings/Cargo.toml bindings/uniffi-bindgen/Cargo.toml; do
  grep -q "^uniffi = { version = \"=$UNIFFI_VERSION\"" "$toml" || fail "$toml does not pin uniffi =$UNIFFI_VERSION"
done

# --- build ---------------------------------------------------------------------
# Every binary with the workspace's features, resolved as `cargo test`
# resolves them (`--tests` turns the dev-dependencies' features on too):
# the artifacts section rust built. Without `--tests`, tessera-core and
# everything above it were compiled a second time.
# The cdylib comes with tessera-ffi's library unit.
cargo build -q --workspace --all-features --lib --bins --tests
LIB_DIR=$CARGO_TARGET_DIR/debug
LIB=$LIB_DIR/libtessera_ffi.so
TESTKIT=$LIB_DIR/tessera-ffi-testkit
BINDGEN=$LIB_DIR/uniffi-bindgen
REGISTRY=$LIB_DIR/tessera-registry
[[ -f $LIB ]] || fail "$LIB was not built"

# --- drift check -----------------------------------------------------------------
KOTLIN_SRC=bindings/kotlin/src/main/kotlin
SWIFT_GEN=$(mktemp -d)
WORK=$(mktemp -d)
REGISTRY_PID=
cleanup() {
  if [[ -n $REGISTRY_PID ]]; then kill "$REGISTRY_PID" 2>/dev/null || true; wait "$REGISTRY_PID" 2>/dev/null || true; fi
  rm -rf "$SWIFT_GEN" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$BINDGEN" generate --library "$LIB" --language kotlin --no-format --out-dir "$KOTLIN_SRC" >/dev/null
"$BINDGEN" generate --library "$LIB" --language swift --no-format --out-dir "$SWIFT_GEN" >/dev/null
# SwiftPM layout: the Swift source in the Tessera target, the C header and
# module map in the tesseraFFI target the Swift code imports.
mkdir -p bindings/swift/Sources/Tessera bindings/swift/Sources/tesseraFFI/include
cp "$SWIFT_GEN/tessera.swift" bindings/swift/Sources/Tessera/tessera.swift
cp "$SWIFT_GEN/tesseraFFI.h" bindings/swift/Sources/tesseraFFI/include/tesseraFFI.h
cp "$SWIFT_GEN/tesseraFFI.modulemap" bindings/swift/Sources/tesseraFFI/include/module.modulemap
drift=$(git status --porcelain --untracked-files=all -- bindings/kotlin/src/main bindings/swift/Sources)
if [[ -n $drift ]]; then
  git --no-pager diff --stat -- bindings/kotlin bindings/swift >&2 || true
  echo "$drift" >&2
  fail "the generated bindings differ from the tree: regenerate with this script and commit bindings/kotlin and bindings/swift"
fi
git diff --exit-code --quiet -- bindings/kotlin/src/main bindings/swift/Sources || fail "bindings drift"
echo "kotlin: Kotlin and Swift bindings match the library"

# --- the registry ----------------------------------------------------------------
# Port 0: the kernel picks a free loopback port; --print-addr says which.
mkfifo "$WORK/registry.addr"
TESSERA_LOG=warn "$REGISTRY" serve --listen 127.0.0.1:0 --print-addr \
  --database "sqlite:$WORK/registry.db" --key-file "$WORK/registry.key" >"$WORK/registry.addr" 2>"$WORK/registry.log" &
REGISTRY_PID=$!
ADDR=
if read -r -t 30 ADDR <"$WORK/registry.addr"; then :; fi
[[ $ADDR == 127.0.0.1:* ]] || { cat "$WORK/registry.log" >&2; fail "tessera-registry did not start (got '$ADDR')"; }
echo "kotlin: tessera-registry serving on $ADDR (pid $REGISTRY_PID)"

# --- compile and run the JVM suite ---------------------------------------------
CP="$JNA_JAR:$COROUTINES_JAR"
DEMO=android-demo/app/src
echo "kotlin: compiling the bindings, the suite and the demo's app logic with kotlinc $KOTLIN_VERSION"
"$KOTLINC" -nowarn -jvm-target 17 -cp "$CP" -d "$WORK/tests.jar" \
  "$KOTLIN_SRC/uniffi/tessera/tessera.kt" \
  $(find bindings/kotlin/src/test/kotlin -name '*.kt' | sort) \
  $(find "$DEMO/main/kotlin/tessera/demo/logic" "$DEMO/test/kotlin" -name '*.kt' 2>/dev/null | sort) 2>&1 | grep -v '^warning:' || true
[[ -f $WORK/tests.jar ]] || fail "kotlinc failed"

java -Djna.library.path="$LIB_DIR" -Dtessera.testkit="$TESTKIT" \
  -Dtessera.registry.url="http://$ADDR" -Dtessera.registry.keyfile="$WORK/registry.key" \
  -cp "$WORK/tests.jar:$CP:$STDLIB_JAR" tessera.tests.MainKt || { echo "--- registry log" >&2; tail -n 40 "$WORK/registry.log" >&2; exit 1; }
