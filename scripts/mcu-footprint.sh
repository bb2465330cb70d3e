#!/usr/bin/env bash
#
# mcu-footprint.sh - footprint of the portable library and of a minimal EDHOC
# initiator + OSCORE client firmware on Cortex-M (issue 9, item 4; mcu/README.md).
#
# Cross-compiles lib/ and mcu/ with arm-none-eabi-gcc (-Os, Thumb, -Werror)
# for cortex-m4 and cortex-m0plus, each with the default config.h limits and
# with the "small" profile, into build-mcu*/; runs the same client code on the
# host against a real responder (build-mcu-host*/, OpenSSL provider, ASan);
# then writes the full report (flash/RAM per module, the client image split
# into library / app / crypto provider / libc+libgcc, sizeof of the contexts,
# deepest stack chains, the portability check) and prints a Markdown summary
# for BENCHMARKS.md. Crypto primitives are NOT included (mcu/sizing_shim.c).
#
# Fails if a build fails (warnings are errors), if the host check fails, or
# if the firmware needs a symbol other than the platform API of
# mcu/plat_crypto.h, the libc memory/string functions lib/ may use
# (scripts/symbol-allowlists/protocol-lib.txt) and libgcc helpers.
#
# Usage: scripts/mcu-footprint.sh [--out FILE] [--jobs N] [--no-host]
#   --out FILE   the report (default bench/results/mcu-footprint.txt)
#   --jobs N     parallel build jobs (default 2)
#   --no-host    skip the host run of the client
# Needs: gcc-arm-none-eabi, libnewlib-arm-none-eabi, cmake, python3 (and for
# the host check gcc + libssl-dev): scripts/install-deps.sh installs them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

out=bench/results/mcu-footprint.txt
jobs=2
host=1
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=${2:?--out needs a file}; shift 2 ;;
        --jobs) jobs=${2:?--jobs needs a number}; shift 2 ;;
        --no-host) host=0; shift ;;
        -h|--help) awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; exit 0 ;;
        *) echo "mcu-footprint: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

for tool in arm-none-eabi-gcc arm-none-eabi-size arm-none-eabi-nm arm-none-eabi-objdump cmake python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "mcu-footprint: $tool not found: run scripts/install-deps.sh" >&2
        exit 1
    fi
done
if ! arm-none-eabi-gcc -print-file-name=nano.specs | grep -q /; then
    echo "mcu-footprint: newlib-nano (nano.specs) not found: run scripts/install-deps.sh" >&2
    exit 1
fi

# dir cpu profile
CROSS=(
    "build-mcu cortex-m4 default"
    "build-mcu-small cortex-m4 small"
    "build-mcu-m0plus cortex-m0plus default"
    "build-mcu-m0plus-small cortex-m0plus small"
)
HOST=(
    "build-mcu-host default"
    "build-mcu-host-small small"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

builds=()
for c in "${CROSS[@]}"; do
    read -r dir cpu profile <<<"$c"
    echo "mcu-footprint: $dir: $cpu, $profile limits"
    cmake -S mcu -B "$dir" -DCMAKE_TOOLCHAIN_FILE="$ROOT/mcu/toolchain-arm-none-eabi.cmake" \
        -DCL_MCU_CPU="$cpu" -DCL_MCU_PROFILE="$profile" >"$tmp/configure.log" 2>&1 \
        || { cat "$tmp/configure.log"; echo "mcu-footprint: $dir: configure FAILED"; exit 1; }
    cmake --build "$dir" -j "$jobs" >"$tmp/build.log" 2>&1 \
        || { cat "$tmp/build.log"; echo "mcu-footprint: $dir: build FAILED"; exit 1; }
    builds+=(--build "$dir")
done

: >"$tmp/host.txt"
if [ "$host" -eq 1 ]; then
    for h in "${HOST[@]}"; do
        read -r dir profile <<<"$h"
        echo "mcu-footprint: $dir: the client on the host, $profile limits"
        cmake -S mcu -B "$dir" -DCMAKE_C_COMPILER=gcc -DCL_MCU_PROFILE="$profile" \
            >"$tmp/configure.log" 2>&1 \
            || { cat "$tmp/configure.log"; echo "mcu-footprint: $dir: configure FAILED"; exit 1; }
        cmake --build "$dir" -j "$jobs" >"$tmp/build.log" 2>&1 \
            || { cat "$tmp/build.log"; echo "mcu-footprint: $dir: build FAILED"; exit 1; }
        {
            echo "Host check ($profile limits): mcu/client.c against a real responder (mcu/host_check.c)"
            ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
                "$dir/mcu-host-check" 2>&1
        } >"$tmp/host-$profile.txt" || { cat "$tmp/host-$profile.txt"; echo "mcu-footprint: host check FAILED"; exit 1; }
        cat "$tmp/host-$profile.txt"
        cat "$tmp/host-$profile.txt" >>"$tmp/host.txt"
    done
fi

mkdir -p "$(dirname "$out")"
rc=0
python3 mcu/footprint.py "${builds[@]}" --extra "$tmp/host.txt" --out "$out" \
    --markdown "$tmp/summary.md" || rc=$?
if [ "$rc" -eq 2 ] || [ ! -s "$tmp/summary.md" ]; then
    echo "mcu-footprint: the analysis FAILED"
    exit 1
fi
echo
cat "$tmp/summary.md"
echo
grep -E '^(Portability probe|Library objects before)' "$out" | sed 's/^/mcu-footprint: /'
if [ "$rc" -ne 0 ]; then
    echo "mcu-footprint: FAILED: a symbol outside the platform API and the allowed libc/libgcc functions (see above)"
    exit 1
fi
echo "mcu-footprint: full report in $out"
