#!/usr/bin/env bash
#
# test-all.sh - the project's test command (README, .ci/run): installs what is
# missing, then runs every stage and prints which ones failed.
#
# Stages (default: all, in this order):
#   unit     gcc RelWithDebInfo build in build/, whole ctest suite
#   asan     gcc Debug ASan+UBSan build in build-asan/, whole ctest suite,
#            leaks detected, first error aborts
#   fuzz     clang libFuzzer build in build-fuzz/: every committed corpus
#            fuzz/corpus/<harness>/ replayed through the libFuzzer binary, then
#            each harness fuzzed for FUZZ_SECONDS (default 12) into a temp dir
#   symbols  scripts/check-symbols.sh --self-test, then the symbol check of
#            lib/ (and later core/) on build/ - DESIGN.md rule 1
#   clang    clang -Werror build of everything in build-clang/, ctest, and the
#            symbol check on clang's objects
#   web      the browser client's protocol library (web/): npm ci, then npm test
#            (tsc strict, the RFC vectors, unit tests, the browser bundle, and
#            the interop test against cloisterd + the cloister CLI of build/
#            when the unit stage configured it, else of build-web/)
#   mcu      lib/ and the minimal EDHOC + OSCORE client firmware cross-compiled
#            for Cortex-M4 and M0+ (arm-none-eabi-gcc -Os, -Werror) in
#            build-mcu*/, the image checked to need nothing but the platform
#            crypto API and libc memory/string functions, the same client run
#            on the host against a real responder; prints the size table
#            (scripts/mcu-footprint.sh; the report goes to build-mcu/)
#
# Usage: scripts/test-all.sh [STAGE...]      e.g. scripts/test-all.sh unit asan
# Environment: FUZZ_SECONDS (per harness, default 12; 0 = replay only),
#              CL_SKIP_DEPS=1 (do not run scripts/install-deps.sh)
# Exit status: 0 when every selected stage passed, 1 otherwise, 2 on bad usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ALL_STAGES=(unit asan fuzz symbols clang mcu web)
JOBS=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-12}

usage() {
    awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------- stages
# Each stage runs in a subshell with `set -e`: the first failing command ends
# the stage, not the script, so the remaining stages still run.

ctest_all() {
    ctest --test-dir "$1" --output-on-failure --no-tests=error -j "$JOBS"
}

stage_unit() {
    cmake -S . -B build -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_FLAGS=-Werror
    cmake --build build -j "$JOBS"
    ctest_all build
}

stage_asan() {
    cmake -S . -B build-asan -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DCL_SANITIZE=ON
    cmake --build build-asan -j "$JOBS"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest_all build-asan
}

stage_fuzz() {
    local harnesses=() f h
    for f in fuzz/fuzz_*.c; do
        [ -e "$f" ] && harnesses+=("$(basename "$f" .c)")
    done
    if [ "${#harnesses[@]}" -eq 0 ]; then
        echo "fuzz: no harnesses (fuzz/fuzz_*.c) found"
        return 1
    fi
    echo "fuzz: harnesses: ${harnesses[*]}; ${FUZZ_SECONDS} s of fuzzing each"

    cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCL_FUZZ=ON -DCL_BUILD_BENCH=OFF -DCL_BUILD_EXAMPLES=OFF
    # fuzz/CMakeLists.txt registers a ctest "<harness>_corpus" for every harness it builds
    local registered
    registered=$(ctest --test-dir build-fuzz -N)
    for h in "${harnesses[@]}"; do
        if ! grep -Eq ": ${h}_corpus\$" <<<"$registered"; then
            echo "fuzz: fuzz/$h.c has no build target: add $h to CL_FUZZ_HARNESSES in fuzz/CMakeLists.txt"
            return 1
        fi
    done
    cmake --build build-fuzz -j "$JOBS" --target "${harnesses[@]}"

    # New inputs and artifacts go to a temp dir, never into the repository;
    # crashing inputs are copied to build-fuzz/crashes/ to be reproduced.
    local failed=()
    work=$(mktemp -d) # global: the EXIT trap runs after this function returned
    trap 'rm -rf "$work"' EXIT # this stage runs in its own subshell
    # fail on the first UBSan report too (the fuzz build's UBSan is recoverable)
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    for h in "${harnesses[@]}"; do
        local bin="build-fuzz/fuzz/$h" corpus="fuzz/corpus/$h" rc=0
        mkdir -p "$work/$h/new" "$work/$h/artifacts"
        if [ ! -d "$corpus" ] || [ -z "$(find "$corpus" -type f -print -quit)" ]; then
            echo "fuzz: $h: no committed corpus in $corpus/"
            failed+=("$h(no corpus)")
            continue
        fi
        echo "---- $h: replaying $(find "$corpus" -type f | wc -l) corpus inputs"
        "$bin" -runs=0 -artifact_prefix="$work/$h/artifacts/" "$corpus" >"$work/$h/replay.log" 2>&1 || rc=$?
        if [ "$rc" -ne 0 ]; then
            tail -n 60 "$work/$h/replay.log"
            echo "fuzz: $h: corpus replay FAILED (exit $rc)"
            failed+=("$h(replay)")
            report_artifacts "$h" "$work/$h/artifacts"
            continue
        fi
        grep -E '^(INFO: seed corpus|#[0-9]+[[:space:]]+INITED)' "$work/$h/replay.log" || true
        if [ "$FUZZ_SECONDS" -gt 0 ]; then
            echo "---- $h: fuzzing for ${FUZZ_SECONDS} s"
            "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$work/$h/artifacts/" \
                "$work/$h/new" "$corpus" >"$work/$h/fuzz.log" 2>&1 || rc=$?
            if [ "$rc" -ne 0 ]; then
                tail -n 80 "$work/$h/fuzz.log"
                echo "fuzz: $h: fuzzing FAILED (exit $rc)"
                failed+=("$h(fuzzing)")
                report_artifacts "$h" "$work/$h/artifacts"
                continue
            fi
            grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done )' "$work/$h/fuzz.log" || true
        fi
    done
    if [ "${#failed[@]}" -ne 0 ]; then
        echo "fuzz: FAILED: ${failed[*]}"
        return 1
    fi
    echo "fuzz: all ${#harnesses[@]} harnesses clean"
}

# report_artifacts HARNESS DIR: keep crash/leak/timeout inputs and show them in the log.
report_artifacts() {
    local h=$1 dir=$2 a
    mkdir -p build-fuzz/crashes
    for a in "$dir"/*; do
        [ -e "$a" ] || continue
        cp "$a" "build-fuzz/crashes/$h-$(basename "$a")"
        echo "fuzz: $h: input saved as build-fuzz/crashes/$h-$(basename "$a") ($(wc -c <"$a") bytes):"
        od -An -tx1 -v "$a" | head -n 16
        echo "fuzz: reproduce: build-fuzz/fuzz/$h build-fuzz/crashes/$h-$(basename "$a");" \
            "once fixed, add the input to fuzz/corpus/$h/ so it is replayed forever"
    done
}

stage_symbols() {
    bash scripts/check-symbols.sh --self-test
    bash scripts/check-symbols.sh --build-dir build
}

stage_clang() {
    cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_FLAGS=-Werror
    cmake --build build-clang -j "$JOBS"
    ctest_all build-clang
    bash scripts/check-symbols.sh --build-dir build-clang --no-build
}

stage_mcu() {
    # the committed bench/results/mcu-footprint.txt is refreshed by running the
    # script by hand; the test run keeps its report in the build directory
    bash scripts/mcu-footprint.sh --jobs "$JOBS" --out build-mcu/mcu-footprint.txt
}

stage_web() {
    # The C side the interop test runs: reuse build/ (the unit stage's) when it is
    # configured, else build-web/; only the three targets the test needs.
    local b=build-web
    [ -f build/CMakeCache.txt ] && b=build
    [ -f "$b/CMakeCache.txt" ] || cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$b" -j "$JOBS" --target cloisterd cloister cloister_core_image
    if ! command -v npm >/dev/null 2>&1; then
        echo "web: npm is missing (scripts/install-deps.sh installs nodejs and npm)"
        return 1
    fi
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    if [ "$major" -lt 18 ]; then
        echo "web: Node.js >= 18 is needed, found $(node --version)"
        return 1
    fi
    echo "web: node $(node --version), npm $(npm --version), cloisterd from $b/"
    cd web
    npm ci --no-audit --no-fund
    CLOISTER_BUILD_DIR="$ROOT/$b" CLOISTER_INTEROP_REQUIRED=1 npm test
}

# ---------------------------------------------------------------- driver

stages=()
for arg in "$@"; do
    case "$arg" in
        -h|--help) usage; exit 0 ;;
        all) stages+=("${ALL_STAGES[@]}") ;;
        *)
            known=0
            for s in "${ALL_STAGES[@]}"; do [ "$s" = "$arg" ] && known=1; done
            if [ "$known" -eq 0 ]; then
                echo "test-all: unknown stage '$arg' (stages: ${ALL_STAGES[*]})" >&2
                exit 2
            fi
            stages+=("$arg")
            ;;
    esac
done
[ "${#stages[@]}" -gt 0 ] || stages=("${ALL_STAGES[@]}")
case "$FUZZ_SECONDS" in ''|*[!0-9]*) echo "test-all: FUZZ_SECONDS must be a number" >&2; exit 2 ;; esac

if [ "${CL_SKIP_DEPS:-0}" != 1 ]; then
    if ! bash scripts/install-deps.sh; then
        echo "test-all: FAILED: scripts/install-deps.sh could not install the build dependencies"
        exit 1
    fi
fi
echo "test-all: stages: ${stages[*]}; $JOBS jobs; $(gcc --version | head -n 1); $(clang --version | head -n 1); $(cmake --version | head -n 1)"

names=() codes=() times=()
t0=$SECONDS
for s in "${stages[@]}"; do
    echo
    echo "==================== stage $s ===================="
    start=$SECONDS
    set +e
    (
        set -euo pipefail
        "stage_$s"
    )
    rc=$?
    set -e
    names+=("$s") codes+=("$rc") times+=($((SECONDS - start)))
    if [ "$rc" -eq 0 ]; then
        echo "==================== stage $s: PASS ($((SECONDS - start)) s)"
    else
        echo "==================== stage $s: FAIL (exit $rc, $((SECONDS - start)) s)"
    fi
done

echo
echo "==================== test-all summary ===================="
failed=()
for i in "${!names[@]}"; do
    if [ "${codes[$i]}" -eq 0 ]; then verdict=PASS; else verdict=FAIL; failed+=("${names[$i]}"); fi
    printf '  %-8s %s %5d s\n' "${names[$i]}" "$verdict" "${times[$i]}"
done
printf '  %-8s      %5d s\n' total $((SECONDS - t0))
if [ "${#failed[@]}" -ne 0 ]; then
    echo "test-all: FAILED stages: ${failed[*]} (see the '==== stage NAME' sections above)"
    exit 1
fi
echo "test-all: all stages passed"
