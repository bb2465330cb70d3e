#!/usr/bin/env bash
# tests/integration/canary.sh - the canary test of issue 4 / DESIGN.md
# "Storage": unique marker strings sent as event data (and as client and
# token names) must never appear in any file the host writes, in its log, or
# in the memory of the host process (cloisterd). Runs cloisterd with the
# chosen runtime (default: process, where the core is another process and
# the host's memory can be searched on its own).
#
# A positive control first proves the memory scanner finds a marker that
# IS in a process (a `sleep` holding it in its environment), so a scanner
# that silently reads nothing cannot pass the test.
#
# CANARY_STORE (environment) picks the storage: sqlite (default: files log + archive.sqlite and its
# -wal, searched like every other file), files (archive.dat) or pg (a
# throw-away PostgreSQL server from pg_server.sh holds log, snapshot and
# archive; its data directory is searched, and every cloister_* table is
# dumped with COPY ... (FORMAT binary) - raw bytes, so a value the server
# compressed or hex-encodes still shows - and searched too).
#
# usage: [CANARY_STORE=sqlite|files|pg] canary.sh CLOISTERD CLOISTER MEMSCAN CORE_IMAGE [sim|process]
# exit 0 pass, 1 fail, 77 skip (not permitted to read process memory; pg: no PostgreSQL)
set -u
CLOISTERD=${1:?} CLOISTER=${2:?} MEMSCAN=${3:?} IMAGE=${4:?} RUNTIME=${5:-process}
STORE=${CANARY_STORE:-sqlite}
# shellcheck source-path=SCRIPTDIR source=e2e_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_init cl_canary
export CLOISTER_COAP_TIMEOUT_MS=2000

# The positive control's process is stopped on every path too.
CONTROL_PID=
stop_control() {
    [ -n "$CONTROL_PID" ] && kill "$CONTROL_PID" 2>/dev/null && wait "$CONTROL_PID" 2>/dev/null
    CONTROL_PID=
}
CL_PG_DIR=
CL_TEST_PG_CONNINFO=
stop_pg() {
    [ -n "$CL_PG_DIR" ] && bash "$(dirname "${BASH_SOURCE[0]}")/pg_server.sh" stop "$CL_PG_DIR"
    CL_PG_DIR=
}
trap 'stop_control; e2e_cleanup; stop_pg' EXIT
STORE_ARGS=(--archive "$STORE")
if [ "$STORE" = pg ]; then
    out=$(bash "$(dirname "${BASH_SOURCE[0]}")/pg_server.sh" start)
    rc=$?
    [ "$rc" = 77 ] && { echo "SKIP: PostgreSQL server not installed"; exit 77; }
    [ "$rc" = 0 ] || e2e_fail "cannot start PostgreSQL"
    eval "$out"
    STORE_ARGS=(--archive pg --log pg --pg "$CL_TEST_PG_CONNINFO")
fi

RND=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
M_EVENT="CANARY-EVENT-$RND"
M_NAME="CANARY-NAME-$RND"
M_TOKEN="CANARY-TOKEN-$RND"

# ---- positive control: the scanner finds what is there
env "CL_CONTROL=$M_EVENT" sleep 300 &
CONTROL_PID=$!
sleep 0.2
"$MEMSCAN" "$CONTROL_PID" "$M_EVENT" >"$WORK/control.out" 2>&1
rc=$?
[ "$rc" = 77 ] && { echo "SKIP: not permitted to read process memory"; exit 77; }
if [ "$rc" != 1 ]; then
    cat "$WORK/control.out"
    e2e_fail "memscan does not find a marker that is there"
fi
stop_control

# ---- the system: daemon, owner, provisioning, enrollment, events
e2e_start_daemon "$CLOISTERD" --data "$WORK/data" --platform-dir "$WORK/platform" \
    --runtime "$RUNTIME" --core-image "$IMAGE" --log-level debug "${STORE_ARGS[@]}"
# The wire: with CANARY_UDPCAP (the udpcap relay) every client talks to the daemon through a
# relay that records each datagram both ways; the capture is searched like the files.
CAP_PID=
if [ -n "${CANARY_UDPCAP:-}" ]; then
    "$CANARY_UDPCAP" "$WORK/cap.port" "$PORT" "$WORK/wire.cap" 2>"$WORK/udpcap.log" &
    CAP_PID=$!
    for _ in $(seq 1 50); do [ -s "$WORK/cap.port" ] && break; sleep 0.1; done
    [ -s "$WORK/cap.port" ] || e2e_fail "udpcap did not start"
    SERVER="coap://127.0.0.1:$(cat "$WORK/cap.port")"
    trap 'stop_control; [ -n "$CAP_PID" ] && kill "$CAP_PID" 2>/dev/null; e2e_cleanup; stop_pg' EXIT
fi
e2e_run owner 0 "$CLOISTER" owner init --dir "$WORK/owner" --name "Canary owner"
e2e_run provision 0 "$CLOISTER" provision --server "$SERVER" --owner "$WORK/owner" \
    --image "$IMAGE" --allow-simulated
e2e_run token 0 "$CLOISTER" token create --owner "$WORK/owner" --role device --ttl 10m \
    --name "$M_TOKEN" --json
TOKEN=$(sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p' "$WORK/token.out")
[ ${#TOKEN} = 32 ] || e2e_fail "no token"
e2e_run enroll 0 "$CLOISTER" enroll --server "$SERVER" --token "$TOKEN" --dir "$WORK/dev" \
    --name "$M_NAME" --owner-cert "$WORK/owner/owner.pem"
e2e_run evtype 0 "$CLOISTER" event-type add canary --owner "$WORK/owner" \
    --description "canary events"
e2e_run publish 0 "$CLOISTER" device publish --dir "$WORK/dev" --type canary \
    --prop "note=$M_EVENT" --prop level=3 --count 20
grep -q "published 20 events" "$WORK/publish.out" || e2e_fail "publish"
case "$STORE" in
files) [ "$(stat -c %s "$WORK/data/archive.dat")" -gt 0 ] || e2e_fail "nothing archived" ;;
sqlite)
    [ -s "$WORK/data/archive.sqlite" ] || e2e_fail "no archive.sqlite"
    if command -v sqlite3 >/dev/null; then
        [ "$(sqlite3 "$WORK/data/archive.sqlite" "SELECT count(*) FROM events")" -ge 20 ] ||
            e2e_fail "nothing archived"
    fi
    ;;
pg)
    [ "$(psql "$CL_TEST_PG_CONNINFO" -AtXqc "SELECT count(*) FROM cloister_events")" -ge 20 ] ||
        e2e_fail "nothing archived"
    # raw bytes of every table the host writes (binary COPY: bytea unescaped, decompressed)
    mkdir -p "$WORK/pgdump"
    for t in cloister_events cloister_log cloister_snapshot cloister_schema; do
        psql "$CL_TEST_PG_CONNINFO" -AtXqc "COPY $t TO STDOUT WITH (FORMAT binary)" \
            >"$WORK/pgdump/$t.bin" || e2e_fail "cannot dump $t"
    done
    [ -s "$WORK/pgdump/cloister_log.bin" ] || e2e_fail "nothing in the PostgreSQL log"
    # positive control: the same dump finds a marker that IS in a table
    psql "$CL_TEST_PG_CONNINFO" -AtXqc \
        "CREATE TABLE canary_control AS SELECT convert_to('CONTROL-$RND', 'UTF8') AS b" ||
        e2e_fail "control table"
    psql "$CL_TEST_PG_CONNINFO" -AtXqc "COPY canary_control TO STDOUT WITH (FORMAT binary)" \
        >"$WORK/control.bin"
    grep -qaF "CONTROL-$RND" "$WORK/control.bin" || e2e_fail "the binary dump hides bytea values"
    rm -f "$WORK/control.bin"
    ;;
esac

# ---- search: every file the host wrote, its log, its memory
if [ -n "$CAP_PID" ]; then
    kill "$CAP_PID" && wait "$CAP_PID" 2>/dev/null
    CAP_PID=
    cat "$WORK/udpcap.log"
    [ "$(stat -c %s "$WORK/wire.cap")" -gt 20000 ] || e2e_fail "the capture is too small to mean anything"
fi
hits=0
for m in "$M_EVENT" "$M_NAME" "$M_TOKEN"; do
    if grep -rlaF -D skip -- "$m" "$WORK/data" "$WORK/platform" "$WORK/cloisterd.log" \
        ${CL_PG_DIR:+"$CL_PG_DIR" "$WORK/pgdump"} \
        ${CANARY_UDPCAP:+"$WORK/wire.cap"}; then
        echo "marker $m found in host files" >&2
        hits=1
    fi
done
if [ "$RUNTIME" = process ] && grep -qa "__asan_init" "$CLOISTERD"; then
    # ASan reserves terabytes of shadow and allocator address space; reading it through
    # /proc/PID/mem would fault in zero pages for hours. The uninstrumented build's run of
    # this test (ctest stage "unit") does the memory scan.
    echo "sanitizer build: cloisterd's memory not searched here (see the unit stage)"
elif [ "$RUNTIME" = process ]; then
    "$MEMSCAN" "$DAEMON_PID" "$M_EVENT" "$M_NAME" "$M_TOKEN" >"$WORK/scan.out" 2>&1
    rc=$?
    cat "$WORK/scan.out"
    [ "$rc" = 77 ] && { echo "SKIP: not permitted to read cloisterd's memory"; exit 77; }
    [ "$rc" = 0 ] || hits=1
else
    # in-process runtime: the core lives in cloisterd's address space (the
    # simulation's documented limit), so only files and the log are searched
    echo "sim runtime: memory not searched (the core runs inside cloisterd)"
fi
[ "$hits" = 0 ] || e2e_fail "a marker reached the host"
where="host files or the log"
[ "$RUNTIME" = process ] && where="host files, the log, or cloisterd's memory"
[ "$STORE" = pg ] && where="$where, PostgreSQL's files ($(find "$CL_PG_DIR" -type f | wc -l)) and table dumps"
[ -n "${CANARY_UDPCAP:-}" ] && where="$where, and the recorded wire ($(stat -c %s "$WORK/wire.cap") bytes)"
echo "canary ($RUNTIME runtime, $STORE): no marker in $(find "$WORK/data" -type f | wc -l) $where"
