#!/usr/bin/env bash
#
# bench.sh - builds the benchmarks (Release, -O2) in build-bench/ and runs the
# OSCORE benchmark, then the EDHOC benchmark, each pinned to one core; the full
# reports (machine, conditions, Markdown tables, CSV lines) go to stdout and to
# bench/results/latest-oscore.txt and bench/results/latest-edhoc.txt.
#
# Usage: scripts/bench.sh [--callgrind | --perf] [bench_oscore options...]
#        scripts/bench.sh --edhoc [bench_edhoc options...]
#        scripts/bench.sh --edhoc-perf | --edhoc-callgrind [bench_edhoc options...]
#   e.g. scripts/bench.sh --reps 7 --min-time 0.5
#        scripts/bench.sh --callgrind     instructions/op at 64 B under valgrind
#                                         (bench/results/latest-callgrind.txt)
#        scripts/bench.sh --perf          time per function (perf cpu-clock samples)
#                                         at PERF_SIZE (64) B (bench/results/latest-perf.txt)
#        scripts/bench.sh --edhoc         the EDHOC benchmark alone
#        scripts/bench.sh --edhoc-perf    where the responder's time goes, per configuration
#                                         (perf cpu-clock samples with call chains;
#                                         bench/results/latest-edhoc-perf.txt)
#        scripts/bench.sh --edhoc-callgrind  instructions per responder handshake, per
#                                         function (bench/results/latest-edhoc-callgrind.txt)
# Environment: BENCH_CPU (default 0) - the core to pin to; CC (default gcc);
#              EDHOC_ARGS - options for bench_edhoc in the default (both) run;
#              EDHOC_CASES - the configurations the EDHOC profilers look at
#              (default hs_s2_m0_kid hs_s2_m3_kid hs_s0_m0_kid hs_s0_m3_kid).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CPU=${BENCH_CPU:-0}
CC=${CC:-gcc}
OUT=bench/results
mkdir -p "$OUT"

cmake -S . -B build-bench -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DCL_BUILD_TESTS=OFF -DCL_BUILD_EXAMPLES=OFF -DCL_BUILD_BENCH=ON >/dev/null
cmake --build build-bench -j "$(nproc)" --target bench_oscore bench_edhoc >/dev/null
BIN=build-bench/bench/bench_oscore
EBIN=build-bench/bench/bench_edhoc
EDHOC_CASES=${EDHOC_CASES:-hs_s2_m0_kid hs_s2_m3_kid hs_s0_m0_kid hs_s0_m3_kid}

machine() {
    echo "## Machine"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
    echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(nproc) online CPUs"
    if command -v lscpu >/dev/null; then
        echo "- $(lscpu | grep -E '^Hypervisor vendor' | tr -s ' ' || echo 'no hypervisor reported')"
        echo "- caches: $(lscpu | grep -E '^L[123][di ]* cache' | tr -s ' ' | paste -sd';' -)"
    fi
    echo "- kernel: $(uname -sr)"
    local gov=/sys/devices/system/cpu/cpu$CPU/cpufreq/scaling_governor
    echo "- cpufreq governor: $([ -r "$gov" ] && cat "$gov" || echo 'not exposed')"
    local nt=/sys/devices/system/cpu/intel_pstate/no_turbo boost=/sys/devices/system/cpu/cpufreq/boost
    if [ -r "$nt" ]; then
        echo "- intel_pstate no_turbo: $(cat "$nt")"
    elif [ -r "$boost" ]; then
        echo "- cpufreq boost: $(cat "$boost")"
    else
        echo "- turbo/boost control: not exposed"
    fi
    echo "- load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- compiler: $($CC --version | head -1); flags: -O2 -DNDEBUG -std=c11 (CMake Release, overridden to -O2)"
    echo "- OpenSSL: $(openssl version 2>/dev/null || echo '?')"
    echo
}

if [ "${1:-}" = "--callgrind" ]; then
    shift
    command -v valgrind >/dev/null || { echo "valgrind not installed"; exit 1; }
    report=$OUT/latest-callgrind.txt
    {
        machine
        echo "## Instructions per operation (callgrind, payload 64 B, batches of 256)"
        echo
        echo "Counted only inside the timed batch functions (--toggle-collect=timed_*)."
        echo
    } >"$report"
    batches=40
    set +o pipefail # `| head` may cut the annotate pipelines short
    # per_op DIVISOR SKIP: callgrind_annotate function lines as "instructions/op  name";
    # SKIP=1 drops everything up to the timed_* function (main, run_rep, ...).
    per_op() {
        awk -v div="$1" -v skip="$2" '
            /PROGRAM TOTALS/ { next }
            /^ *[0-9,]+ \(/ {
                c = $1; gsub(",", "", c); n = $NF
                if (n ~ /^\[/) n = $(NF - 1)
                sub(/^.*:/, "", n)
                if (!skip || seen) printf "%8.0f  %s\n", c / div, n
                if (n ~ /^timed_/) seen = 1
            }'
    }
    for op in ccm_encrypt ccm_decrypt protect_request unprotect_request protect_response \
        unprotect_response; do
        for crypto in aesni evp; do
            cg=$(mktemp /tmp/cg.XXXXXX)
            valgrind --tool=callgrind --callgrind-out-file="$cg" --collect-atstart=no \
                --toggle-collect='timed_*' "$BIN" --sizes 64 --reps 1 --batches "$batches" \
                --only "$op" --crypto "$crypto" --cpu -1 "$@" >/dev/null 2>&1 ||
                echo "bench_oscore failed under valgrind ($op / $crypto)" >&2
            # ccm_* run at both the request and the response plaintext length: 2 cases.
            cases=1
            case $op in ccm_*) cases=2 ;; esac
            total=$(callgrind_annotate "$cg" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
            total=${total:-0} # nothing collected: the case was skipped (see the bench output)
            per=$((batches * 256 * cases))
            {
                echo "### $op / $crypto: $((total / per)) instructions/op"
                echo
                echo '```'
                echo "inclusive (instructions/op, below the timed loop):"
                callgrind_annotate --inclusive=yes "$cg" | per_op "$per" 1 | head -16
                echo "self (instructions/op):"
                callgrind_annotate "$cg" | per_op "$per" 0 | head -10
                echo '```'
                echo
            } >>"$report"
            rm -f "$cg"
        done
    done
    cat "$report"
    exit 0
fi

if [ "${1:-}" = "--perf" ]; then
    shift
    perf record -q -e cpu-clock -o /dev/null true >/dev/null 2>&1 || { echo "perf cannot sample"; exit 1; }
    set +o pipefail # `| head` may cut the report pipelines short
    report=$OUT/latest-perf.txt
    size=${PERF_SIZE:-64}
    {
        machine
        echo "## Where the time goes (perf cpu-clock samples with DWARF call chains, payload $size B)"
        echo
        echo "Each operation alone, 8000 batches of 256; only samples whose call chain passes"
        echo "through the timed batch function count (the untimed preparation is left out)."
        echo "self = the function itself; incl = the function and what it calls."
        echo
    } >"$report"
    # perf script output -> self and inclusive shares among samples under timed_*
    shares() {
        awk 'BEGIN { RS = "" }
            {
                n = split($0, L, "\n")
                if (n < 2) next
                for (i = 2; i <= n; i++) if (L[i] ~ / timed_/) break
                if (i > n) next
                t++
                delete seen
                for (j = 2; j < i; j++) {
                    f = L[j]; sub(/^[ \t]*[0-9a-f]+ /, "", f); sub(/\+0x.*/, "", f); sub(/ \(.*/, "", f)
                    if (j == 2) self[f]++
                    if (!(f in seen)) { incl[f]++; seen[f] = 1 }
                }
            }
            END {
                printf "%d samples inside the timed batches\n", t
                print "  incl    self  function"
                for (f in incl)
                    printf "%5.1f%%  %5.1f%%  %s\n", 100 * incl[f] / t, 100 * self[f] / t, f | "sort -rn"
            }'
    }
    for op in protect_request unprotect_request protect_response unprotect_response; do
        for crypto in aesni evp; do
            data=$(mktemp /tmp/perf.XXXXXX)
            perf record -q -e cpu-clock -F 4000 --call-graph dwarf -o "$data" -- \
                taskset -c "$CPU" "$BIN" --sizes "$size" --reps 1 --batches 8000 --only "$op" \
                --crypto "$crypto" --cpu "$CPU" "$@" >/dev/null 2>&1 ||
                echo "perf record failed ($op / $crypto)" >&2
            {
                echo "### $op / $crypto"
                echo
                echo '```'
                perf script -i "$data" 2>/dev/null | shares | head -22
                echo '```'
                echo
            } >>"$report"
            rm -f "$data"
        done
    done
    cat "$report"
    exit 0
fi

# ---- EDHOC ----

# run_edhoc [bench_edhoc options]: pinned run, report in bench/results/latest-edhoc.txt.
run_edhoc() {
    local report=$OUT/latest-edhoc.txt
    local run=("$EBIN" --cpu "$CPU" "$@")
    if command -v taskset >/dev/null; then
        run=(taskset -c "$CPU" "${run[@]}")
    fi
    {
        machine
        echo "## Run: ${run[*]}"
        echo
        "${run[@]}"
        echo
        echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
    } | tee "$report.tmp"
    mv "$report.tmp" "$report"
    echo "report written to $report" >&2
}

if [ "${1:-}" = "--edhoc" ]; then
    shift
    run_edhoc "$@"
    exit 0
fi

if [ "${1:-}" = "--edhoc-perf" ]; then
    shift
    perf record -q -e cpu-clock -o /dev/null true >/dev/null 2>&1 || { echo "perf cannot sample"; exit 1; }
    set +o pipefail # `| head` may cut the report pipelines short
    report=$OUT/latest-edhoc-perf.txt
    batches=${EDHOC_PERF_BATCHES:-300}
    {
        machine
        echo "## Where the responder's time goes (perf cpu-clock samples at 2 kHz, DWARF call chains)"
        echo
        echo "Per configuration $batches batches of 16 sessions, every step run (the initiator's"
        echo "too); only samples whose call chain passes through a responder step (timed_r_*)"
        echo "count. incl = the function and what it calls; self = the function itself, with"
        echo "libcrypto's unnamed internal frames charged to the innermost named function above"
        echo "them (so EC_POINT_mul's self is the scalar multiplication)."
        echo
    } >"$report"
    # perf script output -> shares among the samples under timed_r_*
    edhoc_shares() {
        awk 'BEGIN { RS = "" }
            function fname(l) {
                sub(/^[ \t]*[0-9a-f]+ /, "", l); sub(/\+0x.*/, "", l); sub(/ \(.*/, "", l)
                return l
            }
            {
                n = split($0, L, "\n")
                if (n < 2) next
                for (i = 2; i <= n; i++) if (L[i] ~ / timed_r_/) break
                if (i > n) next
                t++
                step[fname(L[i])]++
                delete seen
                got = 0
                for (j = 2; j < i; j++) {
                    f = fname(L[j])
                    if (f == "[unknown]") continue
                    if (!got) { self[f]++; got = 1 }
                    if (!(f in seen)) { incl[f]++; seen[f] = 1 }
                }
            }
            END {
                printf "%d samples in the responder steps\n", t
                for (s in step) printf "  %5.1f%%  %s\n", 100 * step[s] / t, s | "sort -rn"
                close("sort -rn")
                print "  incl    self  function"
                for (f in incl)
                    printf "%5.1f%%  %5.1f%%  %s\n", 100 * incl[f] / t, 100 * self[f] / t, f | "sort -rn"
            }'
    }
    for c in $EDHOC_CASES; do
        data=$(mktemp /tmp/perf.XXXXXX)
        # 32 KiB of stack per sample: Ed25519 and the EC code keep large frames,
        # and with the default 8 KiB the unwinder loses their callers.
        perf record -q -e cpu-clock -F 2000 --call-graph dwarf,32768 -o "$data" -- \
            taskset -c "$CPU" "$EBIN" --only "$c" --reps 1 --batches "$batches" --cpu "$CPU" \
            "$@" >/dev/null 2>&1 || echo "perf record failed ($c)" >&2
        {
            echo "### $c"
            echo
            echo '```'
            perf script -i "$data" 2>/dev/null | edhoc_shares | head -45
            echo '```'
            echo
        } >>"$report"
        rm -f "$data"
    done
    cat "$report"
    exit 0
fi

if [ "${1:-}" = "--edhoc-callgrind" ]; then
    shift
    command -v valgrind >/dev/null || { echo "valgrind not installed"; exit 1; }
    set +o pipefail
    report=$OUT/latest-edhoc-callgrind.txt
    batches=${EDHOC_CG_BATCHES:-8}
    per=$((batches * 16))
    {
        machine
        echo "## Instructions per responder handshake (callgrind)"
        echo
        echo "Per configuration $batches batches of 16 sessions; counted only inside the responder"
        echo "steps (--toggle-collect='timed_r_*'), divided by the $per handshakes. Under valgrind"
        echo "OpenSSL may select other code paths than natively (CPUID as valgrind reports it):"
        echo "use these for the work around the primitives, perf for the time split."
        echo
    } >"$report"
    for c in $EDHOC_CASES; do
        cg=$(mktemp /tmp/cg.XXXXXX)
        valgrind --tool=callgrind --callgrind-out-file="$cg" --collect-atstart=no \
            --toggle-collect='timed_r_*' "$EBIN" --only "$c" --reps 1 --batches "$batches" \
            --cpu -1 "$@" >/dev/null 2>&1 || echo "bench_edhoc failed under valgrind ($c)" >&2
        total=$(callgrind_annotate "$cg" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
        total=${total:-0}
        {
            echo "### $c: $((total / per)) instructions per responder handshake"
            echo
            echo '```'
            echo "inclusive (instructions/handshake, below run_rep):"
            callgrind_annotate --inclusive=yes "$cg" | awk -v div="$per" '
                /PROGRAM TOTALS/ { next }
                /^ *[0-9,]+ \(/ {
                    c = $1; gsub(",", "", c); n = $NF
                    if (n ~ /^\[/) n = $(NF - 1)
                    sub(/^.*:/, "", n)
                    if (seen && n !~ /^0x/) printf "%9.0f  %s\n", c / div, n
                    if (n == "run_rep") seen = 1
                }' | head -45
            echo "self, named functions only (libcrypto's internal functions have no symbols):"
            callgrind_annotate "$cg" | awk -v div="$per" '
                /PROGRAM TOTALS/ { next }
                /^ *[0-9,]+ \(/ {
                    c = $1; gsub(",", "", c); n = $NF
                    if (n ~ /^\[/) n = $(NF - 1)
                    sub(/^.*:/, "", n)
                    if (n !~ /^0x/) printf "%9.0f  %s\n", c / div, n
                }' | head -20
            echo '```'
            echo
        } >>"$report"
        rm -f "$cg"
    done
    cat "$report"
    exit 0
fi

# ---- OSCORE, then EDHOC ----

report=$OUT/latest-oscore.txt
run=("$BIN" --cpu "$CPU" "$@")
if command -v taskset >/dev/null; then
    run=(taskset -c "$CPU" "${run[@]}")
fi
{
    machine
    echo "## Run: ${run[*]}"
    echo
    "${run[@]}"
    echo
    echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$report.tmp"
mv "$report.tmp" "$report"
echo "report written to $report" >&2
echo
read -r -a edhoc_args <<<"${EDHOC_ARGS:-}"
run_edhoc "${edhoc_args[@]}"
