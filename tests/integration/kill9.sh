#!/usr/bin/env bash
# tests/integration/kill9.sh - no acknowledged data is lost when cloisterd
# dies at a random moment (kill -9), with the archive in SQLite or in
# PostgreSQL (a throw-away server from pg_server.sh, which then also holds
# the sealed log and snapshot).
#
#   cloisterd -> owner init -> provision -> token create (x2) -> enroll
#   ROUNDS times: `cloister device publish --count BIG` in the background,
#                 kill -9 cloisterd after a random 0.3-2.5 s, count the
#                 events the CLI reported as accepted ("published N events"),
#                 restart cloisterd on the same data (same port), count the
#                 archive rows: rows >= rows before + every acknowledged event
#   model changes: a token created and acknowledged right before a kill -9
#                 enrolls after the restart; the token created before the
#                 rounds too; `client list` still shows the enrolled device.
#
# The archive is counted directly (the history query GET /events is not
# there yet): sqlite3 on archive.sqlite, psql on cloister_events.
#
# usage: kill9.sh CLOISTERD CLOISTER CORE_IMAGE sqlite|pg [ROUNDS]
# exit 0 pass, 1 fail, 77 skip (pg: PostgreSQL not installed; sqlite: no
# sqlite3 CLI)
set -u
CLOISTERD=${1:?} CLOISTER=${2:?} IMAGE=${3:?} KIND=${4:?} ROUNDS=${5:-${CL_KILL9_ROUNDS:-4}}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=e2e_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_init cl_kill9
export CLOISTER_COAP_TIMEOUT_MS=500 # the CLI gives up fast when the daemon is gone

CL_PG_DIR=
CL_TEST_PG_CONNINFO=
PUB_PID=
cleanup_all() {
    [ -n "$PUB_PID" ] && kill "$PUB_PID" 2>/dev/null && wait "$PUB_PID" 2>/dev/null
    e2e_cleanup
    [ -n "$CL_PG_DIR" ] && bash "$HERE/pg_server.sh" stop "$CL_PG_DIR"
}
trap cleanup_all EXIT

STORE_ARGS=()
case "$KIND" in
sqlite)
    command -v sqlite3 >/dev/null || { echo "SKIP: no sqlite3 CLI (Debian package sqlite3)"; exit 77; }
    STORE_ARGS=(--archive sqlite --log files)
    count_rows() { sqlite3 "$WORK/data/archive.sqlite" "SELECT count(*) FROM events"; }
    ;;
pg)
    command -v psql >/dev/null || { echo "SKIP: no psql"; exit 77; }
    out=$(bash "$HERE/pg_server.sh" start)
    rc=$?
    [ "$rc" = 77 ] && { echo "SKIP: PostgreSQL server not installed"; exit 77; }
    [ "$rc" = 0 ] || e2e_fail "cannot start PostgreSQL"
    eval "$out"
    STORE_ARGS=(--archive pg --log pg --pg "$CL_TEST_PG_CONNINFO")
    count_rows() { psql "$CL_TEST_PG_CONNINFO" -AtXqc "SELECT count(*) FROM cloister_events"; }
    ;;
*)
    echo "usage: kill9.sh CLOISTERD CLOISTER CORE_IMAGE sqlite|pg [ROUNDS]" >&2
    exit 2
    ;;
esac

DAEMON_ARGS=(--data "$WORK/data" --platform-dir "$WORK/platform" --runtime sim
    --core-image "$IMAGE" "${STORE_ARGS[@]}")
n_start=0
start_daemon() {
    n_start=$((n_start + 1))
    DAEMON_LOG="$WORK/cloisterd.$n_start.log"
    if [ -n "$PORT" ]; then
        e2e_start_daemon "$CLOISTERD" "${DAEMON_ARGS[@]}" --listen "127.0.0.1:$PORT"
    else
        e2e_start_daemon "$CLOISTERD" "${DAEMON_ARGS[@]}"
    fi
    # the pg conninfo (it could hold a password) must never reach the log
    if [ "$KIND" = pg ] && grep -qF -- "$CL_TEST_PG_CONNINFO" "$DAEMON_LOG"; then
        e2e_fail "the PostgreSQL conninfo was logged"
    fi
}

# ---- setup: owner, provision, two tokens, one device
start_daemon
e2e_run owner 0 "$CLOISTER" owner init --dir "$WORK/owner" --name "kill9 owner"
e2e_run provision 0 "$CLOISTER" provision --server "$SERVER" --owner "$WORK/owner" \
    --image "$IMAGE" --allow-simulated
# the core accepts only event types an admin created (when the CLI knows the command)
if "$CLOISTER" event-type add --help >/dev/null 2>&1; then
    e2e_run event_type 0 "$CLOISTER" event-type add kill9 --owner "$WORK/owner"
fi
token() { sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p' "$WORK/$1.out"; }
e2e_run token1 0 "$CLOISTER" token create --owner "$WORK/owner" --role device --ttl 1h \
    --name dev1 --json
e2e_run token2 0 "$CLOISTER" token create --owner "$WORK/owner" --role device --ttl 1h \
    --name dev2 --json
T1=$(token token1) T2=$(token token2)
if [ ${#T1} != 32 ] || [ ${#T2} != 32 ]; then e2e_fail "no token"; fi
e2e_run enroll1 0 "$CLOISTER" enroll --server "$SERVER" --token "$T1" --dir "$WORK/dev1" \
    --name dev1 --owner-cert "$WORK/owner/owner.pem"
e2e_run warmup 0 "$CLOISTER" device publish --dir "$WORK/dev1" --type kill9 --prop n=0 --count 3
BASE=$(count_rows) || e2e_fail "cannot count archive rows"
[ "$BASE" -ge 3 ] || e2e_fail "warm-up events not archived ($BASE rows)"

# ---- rounds: publish, kill -9 at a random moment, restart, count
ACKED=0
for r in $(seq 1 "$ROUNDS"); do
    "$CLOISTER" device publish --dir "$WORK/dev1" --type kill9 --prop "n=$r" --count 1000000 \
        >"$WORK/pub.$r.out" 2>&1 &
    PUB_PID=$!
    # 0.3 .. 2.5 s, random
    ms=$((300 + RANDOM % 2200))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    e2e_stop_daemon KILL
    wait "$PUB_PID"
    PUB_PID=
    acked=$(sed -n 's/^published \([0-9]*\) event.*/\1/p' "$WORK/pub.$r.out")
    acked=${acked:-0}
    ACKED=$((ACKED + acked))
    start_daemon
    rows=$(count_rows) || e2e_fail "cannot count archive rows after restart $r"
    found=$((rows - BASE))
    echo "round $r: killed after ${ms} ms; acknowledged $acked (total $ACKED), archived $found"
    [ "$found" -ge "$ACKED" ] || e2e_fail "round $r: $ACKED events acknowledged, only $found archived"
    [ "$acked" -gt 0 ] || echo "   (nothing acknowledged this round: killed before the first)"
done
[ "$ACKED" -gt 0 ] || e2e_fail "no event was acknowledged in $ROUNDS rounds"

# ---- model changes acknowledged right before a kill -9
e2e_run token3 0 "$CLOISTER" token create --owner "$WORK/owner" --role device --ttl 1h \
    --name dev3 --json
T3=$(token token3)
[ ${#T3} = 32 ] || e2e_fail "no token 3"
e2e_stop_daemon KILL
start_daemon
e2e_run list 0 "$CLOISTER" client list --owner "$WORK/owner"
grep -q "dev1" "$WORK/list.out" || e2e_fail "client list lost the enrolled device"
e2e_run enroll3 0 "$CLOISTER" enroll --server "$SERVER" --token "$T3" --dir "$WORK/dev3" \
    --name dev3 --owner-cert "$WORK/owner/owner.pem"
e2e_run enroll2 0 "$CLOISTER" enroll --server "$SERVER" --token "$T2" --dir "$WORK/dev2" \
    --name dev2 --owner-cert "$WORK/owner/owner.pem"
e2e_run after 0 "$CLOISTER" device publish --dir "$WORK/dev3" --type kill9 --prop n=99 --count 2
rows=$(count_rows)
[ "$((rows - BASE))" -ge "$((ACKED + 2))" ] || e2e_fail "events after the restarts missing"
e2e_stop_daemon TERM || e2e_fail "cloisterd did not stop cleanly"
echo "PASS: kill9 ($KIND): $ROUNDS kills, $ACKED events acknowledged, $((rows - BASE - 2)) archived" \
    "(>= acknowledged), model changes kept"
