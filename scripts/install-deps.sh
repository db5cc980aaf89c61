#!/usr/bin/env bash
# Installs the Debian packages the test sections build or run against, when
# missing. Rust itself comes from rustup. Idempotent; quiet when all is there.
#   libpcsclite-dev libclang-dev cmake  nfc1's vendored libnfc (clippy/tests build every feature)
#   pcscd vsmartcard-vpcd               the PC/SC stack the gate tests drive
#   postgresql                          the registry's PostgreSQL suite
#   libjna-java                         the Kotlin suite's JNA
set -euo pipefail
packages=(libpcsclite-dev libclang-dev cmake pcscd vsmartcard-vpcd postgresql libjna-java)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
echo "installing: ${missing[*]}"
SUDO=""
[[ $(id -u) -ne 0 ]] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
