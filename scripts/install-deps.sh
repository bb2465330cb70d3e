#!/usr/bin/env bash
#
# install-deps.sh - installs the Debian 12 (bookworm) packages that building,
# testing and running the demo need.
#
# Idempotent and fast on a re-run: every package is checked with dpkg-query
# first, and apt-get (including `apt-get update`) runs only when something is
# missing, so a machine that already has everything never touches the network.
# As root it installs directly; otherwise it uses sudo when available, and
# without sudo it prints the missing packages and fails.
#
# Usage: scripts/install-deps.sh           install what is missing
#        scripts/install-deps.sh --check   only report; exit 1 if anything is missing
#        scripts/install-deps.sh --list    print the package list
set -euo pipefail

# Needed now: compilers, build system, libFuzzer + sanitizer runtimes, crypto,
# unit-test framework and JSON (test vectors), nm for the symbol check.
PACKAGES=(
    build-essential
    cmake
    pkg-config
    clang
    llvm                 # llvm-symbolizer: readable sanitizer/libFuzzer stack traces
    libclang-rt-14-dev   # clang's libFuzzer and sanitizer runtimes
    libssl-dev
    openssl
    libcmocka-dev
    libcjson-dev
    binutils             # nm, ar (scripts/check-symbols.sh)
    libp11-kit-dev       # <p11-kit/pkcs11.h>: the PKCS#11 header of keystore/pkcs11.c
    softhsm2             # SoftHSM2 token (libsofthsm2.so) the PKCS#11 tests create and use
    libmicrohttpd-dev    # host/ HTTP endpoint: OSCORE over HTTP, EDHOC, /healthz, /metrics
    libsqlite3-dev       # host/ default archive backend
    libpq-dev            # host/ PostgreSQL backends (archive, sealed log)
    postgresql           # the server the PostgreSQL tests start on loopback themselves
    python3              # scripts/bench-daemon.sh: medians and spreads of the runs
    sqlite3              # sqlite3 CLI: the kill -9 test and the canary count archive.sqlite rows
    duktape-dev          # core/js: the JS sandbox, built from /usr/share/duktape at build time
    libcurl4-openssl-dev # host/ngsi: HTTP notifications of the NGSI-v2 facade (libcurl multi)
    gcc-arm-none-eabi    # mcu/: lib/ and the client firmware cross-compiled for Cortex-M (issue 9)
    binutils-arm-none-eabi   # arm-none-eabi-size / nm / objdump: scripts/mcu-footprint.sh
    libnewlib-arm-none-eabi  # newlib-nano (nano.specs, libc_nano.a) the firmware links
    nodejs               # web/: the browser client's protocol library is tested in Node (>= 18)
)
# npm for web/: Debian packages it apart from nodejs; a nodejs that brings its own npm
# (e.g. a NodeSource build, which conflicts with Debian's npm) needs nothing more.
if ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(npm)
fi

# Known for later issues - add them to PACKAGES in the change that first needs them:
#   libcoap3-dev        host/ CoAP endpoint (issue 5)

mode=install
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    --list) printf '%s\n' "${PACKAGES[@]}"; exit 0 ;;
    -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
    *) echo "install-deps: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [ "$mode" = check ]; then
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: not root and no sudo; as root, run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi

apt_env=(env DEBIAN_FRONTEND=noninteractive)
"${as_root[@]}" "${apt_env[@]}" apt-get update -q
"${as_root[@]}" "${apt_env[@]}" apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}"

# Verify: a package name apt resolved to something else would otherwise pass silently.
still=()
for pkg in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || still+=("$pkg")
done
if [ "${#still[@]}" -ne 0 ]; then
    echo "install-deps: still missing after apt-get: ${still[*]}" >&2
    exit 1
fi
echo "install-deps: installed ${missing[*]}"
