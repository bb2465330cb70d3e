#!/usr/bin/env bash
# scripts/bench-daemon.sh - the daemon figures of BENCHMARKS.md ("Daemon: events
# over CoAP + OSCORE"): cloisterd on loopback driven by `cloister bench`.
#
#   1. builds cloisterd, cloister, the core image and cloister-core
#      (RelWithDebInfo, no sanitizers) in --build DIR;
#   2. per runtime (sim, process): starts cloisterd on 127.0.0.1 with a fresh
#      data directory (its default storage backends), `cloister owner init` +
#      `provision --allow-simulated`, then `cloister bench` REPS times in each
#      of three modes, interleaved (secure, plain, transport, secure, ...):
#      secure = OSCORE POST /events from EDHOC-established devices, archived;
#      plain = the baseline: the daemon started with --bench-plain-events
#      archives unprotected POST /events itself through the same storage and
#      commit path (the same work minus the security); transport =
#      unprotected POST /events refused 4.01 by the core (nothing archived);
#      the secure runs pass --rss-pid for cloisterd and (process runtime) its
#      cloister-core child, so RSS is read before and after the N sessions exist;
#   3. stops the daemon and writes bench/results/daemon-latest.txt: machine,
#      build flags, runtime, storage backend, load before/after, every run,
#      median and min..max, the ratios secure/plain and secure/transport,
#      rows per group commit, handshakes/s and the memory per session (from
#      the secure runs, each on a fresh daemon).
#
# usage: scripts/bench-daemon.sh [--build DIR] [--runtimes "sim process"]
#            [--devices 1000] [--seconds 10] [--window 1000] [--reps 3]
#            [--out FILE] [--no-build] [--keep] [--perf]
#   --perf  afterwards, one more secure run per runtime with `perf record
#           --call-graph dwarf` on the daemon (and the core child): the setup
#           (enrollment + handshakes) and 5 s of the load profiled apart;
#           the top inclusive user-space symbols go to
#           bench/results/daemon-perf.txt (perf distorts the timing: these
#           runs are not part of the figures).
# Environment: nothing required. Needs python3 for the summary.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build-daemon-bench
RUNTIMES="sim process"
DEVICES=1000
SECONDS_=10
WINDOW=1000 # one request in flight per device (the issue's 1,000 devices)
REPS=3
OUT=$ROOT/bench/results/daemon-latest.txt
DO_BUILD=1
KEEP_=0
PERF=0

while [ $# -gt 0 ]; do
    case $1 in
    --build) BUILD=$2; shift 2 ;;
    --runtimes) RUNTIMES=$2; shift 2 ;;
    --devices) DEVICES=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --reps) REPS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-build) DO_BUILD=0; shift ;;
    --keep) KEEP_=1; shift ;;
    --perf) PERF=1; shift ;;
    -h | --help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "bench-daemon.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done

command -v python3 >/dev/null || { echo "bench-daemon.sh: python3 is needed" >&2; exit 2; }

if [ "$DO_BUILD" = 1 ]; then
    echo "== build ($BUILD, RelWithDebInfo)"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCL_SANITIZE=OFF \
        -DCL_BUILD_TESTS=OFF -DCL_BUILD_EXAMPLES=OFF -DCL_BUILD_BENCH=OFF >/dev/null || exit 2
    cmake --build "$BUILD" -j"$(nproc)" --target cloisterd cloister cloister_core_image \
        cloister-core >/dev/null || exit 2
fi
CLOISTERD=$BUILD/host/cloisterd
CLOISTER=$BUILD/cli/cloister
IMAGE=$(ls "$BUILD"/core/libcloister_core.so 2>/dev/null)
for f in "$CLOISTERD" "$CLOISTER" "$IMAGE"; do
    [ -x "$f" ] || [ -f "$f" ] || { echo "bench-daemon.sh: missing $f (build first)" >&2; exit 2; }
done

# shellcheck source-path=SCRIPTDIR source=../tests/integration/e2e_lib.sh
. "$ROOT/tests/integration/e2e_lib.sh"
# The work directory must be on a real disk (fsync is what we measure), not tmpfs.
TMPDIR=${TMPDIR:-/var/tmp}
e2e_init cl_bench_daemon
[ "$KEEP_" = 1 ] && KEEP=1
RES=$WORK/results
mkdir -p "$RES"

{
    echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "cpu_family_model=$(awk -F': ' '/^cpu family/ {f=$2} /^model\t/ {m=$2} END {print f "/" m}' /proc/cpuinfo)"
    echo "cores=$(nproc)"
    echo "kernel=$(uname -sr)"
    echo "compiler=$(${CC:-cc} --version | head -1)"
    echo "openssl=$(openssl version 2>/dev/null)"
    echo "build_type=$(awk -F= '/^CMAKE_BUILD_TYPE:/ {print $2}' "$BUILD/CMakeCache.txt")"
    echo "c_flags=$(awk -F= '/^CMAKE_C_FLAGS:/ {print $2}' "$BUILD/CMakeCache.txt") $(awk -F= '/^CMAKE_C_FLAGS_RELWITHDEBINFO:/ {print $2}' "$BUILD/CMakeCache.txt")"
    echo "sanitize=$(awk -F= '/^CL_SANITIZE:/ {print $2}' "$BUILD/CMakeCache.txt")"
    echo "commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null) (working tree: $(git -C "$ROOT" status --porcelain 2>/dev/null | wc -l) files changed)"
    echo "fs=$(df -T "$WORK" | awk 'NR == 2 {print $2 " on " $1}')"
    echo "devices=$DEVICES seconds=$SECONDS_ window=$WINDOW reps=$REPS"
} >"$RES/machine.txt"

snapshot_load() { # name
    {
        echo "uptime_$1=$(uptime | sed 's/.*load average: //')"
        echo "top_$1=$(ps -eo pcpu=,comm= --sort=-pcpu | head -6 | awk '{printf "%s(%s%%) ", $2, $1}')"
    } >>"$RES/machine.txt"
}

cpu_ticks() { # PID... -> utime+stime of each, space separated
    local p out=()
    for p in "$@"; do out+=("$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)"); done
    echo "${out[*]}"
}

# One run on a fresh daemon (fresh data directory, owner init, provision):
# run_one RUNTIME MODE I. Every secure run therefore sees exactly --devices
# enrolled clients and an empty session table; the daemon's endpoint totals
# (datagrams, batches) and CPU time are those of this run (+ its setup).
run_one() {
    local rt=$1 mode=$2 i=$3 tag="$1-$2-$3" pids=() c
    DAEMON_LOG=$WORK/cloisterd-$tag.log
    rm -rf "$WORK/data" "$WORK/platform" "$WORK/owner"
    local extra=()
    [ "$mode" = plain ] && extra=(--bench-plain-events)
    e2e_start_daemon "$CLOISTERD" --data "$WORK/data" --platform-dir "$WORK/platform" \
        --runtime "$rt" --core-image "$IMAGE" "${extra[@]}"
    pids=("$DAEMON_PID")
    if [ "$rt" = process ]; then
        sleep 0.3
        for c in $(pgrep -P "$DAEMON_PID"); do pids+=("$c"); done
    fi
    e2e_run "owner-$tag" 0 "$CLOISTER" owner init --dir "$WORK/owner" --name "bench owner" >/dev/null
    e2e_run "provision-$tag" 0 "$CLOISTER" provision --server "$SERVER" --owner "$WORK/owner" \
        --image "$IMAGE" --allow-simulated >/dev/null
    grep -m1 'msg="storage open"' "$DAEMON_LOG" | sed "s/.*msg=\"storage open\" /storage_$rt=/" \
        >>"$RES/machine.txt"
    local args=(--server "$SERVER" --seconds "$SECONDS_" --window "$WINDOW" --json)
    if [ "$mode" = secure ]; then
        args+=(--owner "$WORK/owner" --devices "$DEVICES")
        for c in "${pids[@]}"; do args+=(--rss-pid "$c"); done
    else
        args+=(--baseline)
    fi
    local t0 t1
    t0=$(cpu_ticks "${pids[@]}")
    "$CLOISTER" bench "${args[@]}" >"$RES/$tag.json" 2>"$RES/$tag.err"
    local rc=$?
    t1=$(cpu_ticks "${pids[@]}")
    echo "cpu_ticks_$tag=$t0 / $t1 / pids ${pids[*]}" >>"$RES/machine.txt"
    e2e_stop_daemon TERM
    grep -m1 'msg="endpoint totals"' "$DAEMON_LOG" | sed "s/.*msg=\"endpoint totals\" /totals_$tag=/" \
        >>"$RES/machine.txt"
    grep -m1 'msg="archive commit totals"' "$DAEMON_LOG" |
        sed "s/.*msg=\"archive commit totals\" /commits_$tag=/" >>"$RES/machine.txt"
    echo "-- $tag: exit $rc $(cut -c1-200 "$RES/$tag.json") $(head -c 300 "$RES/$tag.err")"
}

for rt in $RUNTIMES; do
    echo "== runtime $rt"
    snapshot_load "before_$rt"
    for i in $(seq 1 "$REPS"); do
        run_one "$rt" secure "$i"
        run_one "$rt" plain "$i"
        run_one "$rt" transport "$i"
    done
    snapshot_load "after_$rt"
done
echo "clk_tck=$(getconf CLK_TCK)" >>"$RES/machine.txt"

# perf_top FILE: inclusive share of the user-space symbols (>= 1 %)
perf_top() {
    perf report -i "$1" --children --stdio -g none --sort symbol --percent-limit 1 2>/dev/null |
        grep -v '^#' | grep -v '^$' | grep -v '\[k\]' | grep -v '0x0000' | head -60
}

profile_one() { # RUNTIME
    local rt=$1 tag="$1-perf" pids=() c plist
    DAEMON_LOG=$WORK/cloisterd-$tag.log
    rm -rf "$WORK/data" "$WORK/platform" "$WORK/owner" "$WORK/ready"
    e2e_start_daemon "$CLOISTERD" --data "$WORK/data" --platform-dir "$WORK/platform" \
        --runtime "$rt" --core-image "$IMAGE"
    pids=("$DAEMON_PID")
    if [ "$rt" = process ]; then
        sleep 0.3
        for c in $(pgrep -P "$DAEMON_PID"); do pids+=("$c"); done
    fi
    plist=$(IFS=,; echo "${pids[*]}")
    e2e_run "owner-$tag" 0 "$CLOISTER" owner init --dir "$WORK/owner" --name "bench owner" >/dev/null
    e2e_run "provision-$tag" 0 "$CLOISTER" provision --server "$SERVER" --owner "$WORK/owner" \
        --image "$IMAGE" --allow-simulated >/dev/null
    perf record -F 999 --call-graph dwarf,16384 -p "$plist" -o "$WORK/$tag-setup.data" \
        >/dev/null 2>&1 &
    local perf_pid=$!
    sleep 0.5
    "$CLOISTER" bench --server "$SERVER" --owner "$WORK/owner" --devices "$DEVICES" \
        --seconds 8 --window "$WINDOW" --ready-file "$WORK/ready" >"$RES/$tag.out" 2>&1 &
    local bench_pid=$!
    while [ ! -e "$WORK/ready" ] && kill -0 "$bench_pid" 2>/dev/null; do sleep 0.05; done
    kill -INT "$perf_pid"
    wait "$perf_pid"
    sleep 1
    perf record -F 999 --call-graph dwarf,16384 -p "$plist" -o "$WORK/$tag-load.data" \
        -- sleep 5 >/dev/null 2>&1
    wait "$bench_pid"
    e2e_stop_daemon TERM
    {
        echo "## runtime $rt ($DEVICES devices, window $WINDOW; pids $plist)"
        echo
        sed 's/^/    /' "$RES/$tag.out"
        echo
        echo "### setup (enrollment + x5t handshakes): inclusive share of samples"
        perf_top "$WORK/$tag-setup.data"
        echo
        echo "### load (5 s of the secure load): inclusive share of samples"
        perf_top "$WORK/$tag-load.data"
        echo
    } >>"$PERF_OUT"
}

if [ "$PERF" = 1 ]; then
    PERF_OUT=$(dirname "$OUT")/daemon-perf.txt
    {
        echo "# cloisterd profile (scripts/bench-daemon.sh --perf): perf record -F 999 --call-graph"
        echo "# dwarf on the daemon (and the core child); 'children' = share of the samples in which the"
        echo "# symbol is on the stack. Samples are on-CPU only: time blocked in fdatasync is not here."
        echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
        echo
    } >"$PERF_OUT"
    for rt in $RUNTIMES; do
        echo "== perf, runtime $rt"
        profile_one "$rt"
    done
    echo "== wrote $PERF_OUT"
fi

mkdir -p "$(dirname "$OUT")"
python3 - "$RES" "$RUNTIMES" "$REPS" >"$OUT" <<'EOF'
import json, os, re, statistics, sys
res, runtimes, reps = sys.argv[1], sys.argv[2].split(), int(sys.argv[3])
machine = {}
for l in open(os.path.join(res, "machine.txt")):
    if "=" in l:
        k, v = l.rstrip("\n").split("=", 1)
        machine.setdefault(k, v)
tck = int(machine.get("clk_tck", "100"))

def load(rt, mode):
    out = []
    for i in range(1, reps + 1):
        try:
            out.append(json.loads(open(os.path.join(res, f"{rt}-{mode}-{i}.json")).read().strip().splitlines()[-1]))
        except Exception:
            out.append(None)
    return out

def spread(vals, fmt="{:.0f}"):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    return (fmt + " (min " + fmt + " .. max " + fmt + ", n={})").format(
        statistics.median(vals), min(vals), max(vals), len(vals))

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None

def cpu_s(tag):  # daemon (+ core child) CPU seconds during the bench command (setup included)
    v = machine.get("cpu_ticks_" + tag)
    if not v:
        return None
    t0, t1, _ = v.split(" / ")
    return [(int(b) - int(a)) / tck for a, b in zip(t0.split(), t1.split())]

def per_commit(tag):
    v = machine.get("commits_" + tag, "")
    c = re.search(r"\bcommits=(\d+)", v)
    r = re.search(r"\brows=(\d+)", v)
    return int(r.group(1)) / int(c.group(1)) if c and r and int(c.group(1)) else None

def batch(tag):
    v = machine.get("totals_" + tag, "")
    rx = re.search(r"\brx=(\d+)", v)
    bt = re.search(r"\bbatches=(\d+)", v)
    return int(rx.group(1)) / int(bt.group(1)) if rx and bt and int(bt.group(1)) else None

print("# cloisterd: events over CoAP + OSCORE (scripts/bench-daemon.sh)")
print()
for k in ("date_utc", "cpu", "cpu_family_model", "cores", "kernel", "compiler", "openssl",
          "build_type", "c_flags", "sanitize", "commit", "fs", "devices"):
    print(f"{k:18} {machine.get(k, '')}")
print()
print("Load generator `cloister bench` on the same machine: one UDP socket, CON requests,")
print("`window` requests in flight in total, round-robin over the devices, no retransmission")
print("(lost after 1 s). secure = OSCORE POST /events {type, properties:{seq}} from devices")
print("with EDHOC-established contexts, archived (tagged, encrypted) before the 2.04 {accepted: 1}.")
print("plain = the baseline: the same daemon with --bench-plain-events, unprotected POST /events")
print("whose payload the host archives as is through the same archive and commit path before")
print("its 2.04 (the same work minus the security). transport = unprotected POST /events that")
print("the core answers 4.01 without archiving anything (the transport ceiling, for reference).")
print("Every run has its own fresh daemon and data directory (owner init + provision first);")
print("the three modes alternate.")
for rt in runtimes:
    sec, base, tr = load(rt, "secure"), load(rt, "plain"), load(rt, "transport")
    print()
    print(f"## runtime {rt}")
    print(f"storage            {machine.get('storage_' + rt, '?')}")
    print(f"load before        {machine.get('uptime_before_' + rt, '')}   top: {machine.get('top_before_' + rt, '')}")
    print(f"load after         {machine.get('uptime_after_' + rt, '')}   top: {machine.get('top_after_' + rt, '')}")
    print()
    print("run  mode       events/s   p50 ms   p99 ms  p99.9 ms     sent       ok errors  lost  daemon CPU s  dgrams/batch  rows/commit")
    for i in range(reps):
        for mode, r in (("secure", sec[i]), ("plain", base[i]), ("transport", tr[i])):
            tag = f"{rt}-{mode}-{i+1}"
            if r is None:
                print(f"{i+1:3}  {mode:8}  (failed: see {tag}.err)")
                continue
            c = cpu_s(tag)
            cs = "+".join(f"{x:.2f}" for x in c) if c else "?"
            bs = batch(tag)
            pc = per_commit(tag)
            print(f"{i+1:3}  {mode:9} {r['events_per_s']:9.0f} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} "
                  f"{r['p999_ms']:9.3f} {r['sent']:8} {r['ok']:8} {r['errors']:6} {r['lost']:5}  {cs:>12}  "
                  f"{bs if bs is None else round(bs, 1):>12}  {pc if pc is None else round(pc, 1)}")
    print("(daemon CPU s: utime+stime of cloisterd [+ cloister-core] over the whole bench command,")
    print(" setup included; dgrams/batch: the daemon's endpoint totals rx/batches, setup included;")
    print(" rows/commit: archive rows per group commit of the commit pipeline)")
    bad = [r for r in base if r and r.get("baseline_archived", 0) == 0]
    if bad:
        print("WARNING: some plain runs archived nothing (daemon not in --bench-plain-events mode?)")
    print()
    ms = med([r and r["events_per_s"] for r in sec])
    mb = med([r and r["events_per_s"] for r in base])
    print("median (min..max over runs):")
    print(f"  secure   events/s {spread([r and r['events_per_s'] for r in sec])}")
    print(f"           p50 ms   {spread([r and r['p50_ms'] for r in sec], '{:.3f}')}")
    print(f"           p99 ms   {spread([r and r['p99_ms'] for r in sec], '{:.3f}')}")
    print(f"           p99.9 ms {spread([r and r['p999_ms'] for r in sec], '{:.3f}')}")
    mt = med([r and r["events_per_s"] for r in tr])
    print(f"  plain    events/s {spread([r and r['events_per_s'] for r in base])}")
    print(f"           p50 ms   {spread([r and r['p50_ms'] for r in base], '{:.3f}')}")
    print(f"           p99 ms   {spread([r and r['p99_ms'] for r in base], '{:.3f}')}")
    print(f"  transport events/s {spread([r and r['events_per_s'] for r in tr])}")
    print(f"           p50 ms   {spread([r and r['p50_ms'] for r in tr], '{:.3f}')}")
    print(f"           p99 ms   {spread([r and r['p99_ms'] for r in tr], '{:.3f}')}")
    if ms and mb:
        print(f"  ratio secure/plain (medians) {ms / mb * 100:.1f} %   (issue: >= 70 %)")
    if ms and mt:
        print(f"  ratio secure/transport (medians) {ms / mt * 100:.1f} %   (reference)")
    if ms:
        print(f"  target >= 50,000 events/s: {'met' if ms >= 50000 else 'NOT met (%.1f %% of it)' % (ms / 500)}")
    print(f"  errors (secure runs) {sum(r['errors'] for r in sec if r)}, lost {sum(r['lost'] for r in sec if r)}")
    st = [r["setup"] for r in sec if r]
    if st:
        print()
        print("setup (each secure run enrolls its own devices on its fresh daemon):")
        print(f"  enrollments/s (kccs EDHOC + POST /pki/enroll)  {spread([s['enroll_per_s'] for s in st])}")
        print(f"  EDHOC handshakes/s (x5t, through the daemon)   {spread([s['handshakes_per_s'] for s in st])}")
        print(f"  tokens {spread([s['tokens_s'] for s in st], '{:.2f}')} s; setup total {spread([s['total_s'] for s in st], '{:.2f}')} s; failures {sum(s['failures'] for s in st)}")
    runs = [r for r in sec if r and r.get("rss") and r["rss"]["start"]]
    if runs:
        print()
        print("memory (VmRSS from /proc/PID/status of each secure run's fresh daemon; median over runs):")
        names = ["cloisterd", "cloister-core (child)", "child 2", "child 3"]
        for j in range(len(runs[0]["rss"]["start"])):
            g = lambda r, k: r["rss"][k][j]["rss_kb"]
            n = runs[0]["setup"]["handshakes"]
            print(f"  {names[j]}: start {med([g(r, 'start') for r in runs]):.0f} KiB, after enrollment "
                  f"{med([g(r, 'enrolled') for r in runs]):.0f} KiB, after the sessions {med([g(r, 'sessions') for r in runs]):.0f} KiB, "
                  f"after the load {med([g(r, 'end') for r in runs]):.0f} KiB (VmHWM {med([r['rss']['end'][j]['hwm_kb'] for r in runs]):.0f} KiB)")
            print(f"    per established session (the x5t round, {n} sessions): "
                  f"{spread([(g(r, 'sessions') - g(r, 'enrolled')) * 1024 / max(r['setup']['handshakes'], 1) for r in runs])} B")
            print(f"    per enrolled device (its enrollee session, client record, token, log): "
                  f"{spread([(g(r, 'enrolled') - g(r, 'start')) * 1024 / max(r['setup']['enrolled'], 1) for r in runs])} B")
            print(f"    both rounds together per device: "
                  f"{spread([(g(r, 'sessions') - g(r, 'start')) * 1024 / max(r['setup']['enrolled'], 1) for r in runs])} B")
EOF
echo "== wrote $OUT"
cat "$OUT"
