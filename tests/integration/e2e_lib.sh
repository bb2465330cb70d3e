# shellcheck shell=bash
# tests/integration/e2e_lib.sh - shared helpers for the end-to-end scripts
# that start cloisterd on loopback and drive it (provision_e2e.sh,
# owner_pkcs11_e2e.sh, canary.sh, cloisterd_smoke.sh). Sourced, not run:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
#
# Variables
#   WORK        the work directory (set by e2e_init); removed at exit unless KEEP=1
#   KEEP        (read) 1 keeps $WORK and prints its path at exit
#   DAEMON_LOG  (read) where e2e_start_daemon sends the daemon's stdout and
#               stderr, and what e2e_fail shows the tail of; default
#               $WORK/cloisterd.log (set it before e2e_start_daemon to change it)
#   DAEMON_PID  the running daemon's pid, empty when none (set by
#               e2e_start_daemon, cleared by e2e_stop_daemon)
#   PORT        the daemon's UDP port, SERVER coap://127.0.0.1:$PORT (set by
#               e2e_start_daemon)
#
# Functions
#   e2e_init PREFIX
#       makes WORK=$(mktemp -d ${TMPDIR:-/tmp}/PREFIX.XXXXXX) (exit 1 if it
#       cannot) and traps EXIT to e2e_cleanup; HUP, INT and TERM end the script
#       with exit 129, 130, 143, so the EXIT trap runs on those too. A script
#       with more to clean up sets its own EXIT trap that calls e2e_cleanup.
#   e2e_cleanup
#       stops the daemon if one runs (e2e_stop_daemon) and removes $WORK, or
#       with KEEP=1 prints "kept $WORK". Does not change the exit status.
#   e2e_fail MSG...
#       prints "FAIL: MSG" and the last 40 lines of $DAEMON_LOG (if there is
#       one) to stderr, then exit 1 (the EXIT trap cleans up).
#   e2e_run NAME EXPECTED_EXIT CMD...
#       runs CMD with stdout and stderr in $WORK/NAME.out, prints
#       "== NAME (exit N)" and the output indented; e2e_fail unless CMD exited
#       EXPECTED_EXIT.
#   e2e_start_daemon CLOISTERD [FLAG...]
#       starts CLOISTERD --listen 127.0.0.1:0 --print-port-file $WORK/port
#       FLAG... in the background (output to $DAEMON_LOG), waits up to 10 s for
#       the port file; sets DAEMON_PID, PORT, SERVER. e2e_fail if the daemon
#       exits first or writes no port.
#   e2e_stop_daemon [SIGNAL]
#       sends SIGNAL (default TERM) to $DAEMON_PID, waits for it (KILL after
#       10 s), clears DAEMON_PID and returns the daemon's exit status (0 when
#       no daemon runs).

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    echo "e2e_lib.sh is sourced by the test scripts, not run" >&2
    exit 2
fi

# Empty until e2e_init and e2e_start_daemon set them.
WORK=''
DAEMON_PID=''
PORT=''
SERVER=''

e2e_init() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX") || {
        echo "FAIL: cannot make a work directory" >&2
        exit 1
    }
    trap e2e_cleanup EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

e2e_cleanup() {
    e2e_stop_daemon TERM
    if [ "${KEEP:-}" = 1 ]; then
        echo "kept $WORK"
    elif [ -n "$WORK" ]; then
        rm -rf "$WORK"
    fi
}

e2e_fail() {
    local log=${DAEMON_LOG:-$WORK/cloisterd.log}
    echo "FAIL: $*" >&2
    if [ -f "$log" ]; then
        echo "--- ${log##*/} (last 40 lines)" >&2
        tail -n 40 "$log" >&2
    fi
    exit 1
}

e2e_run() {
    local name=$1 want=$2
    shift 2
    "$@" >"$WORK/$name.out" 2>&1
    local got=$?
    echo "== $name (exit $got)"
    sed 's/^/   /' "$WORK/$name.out"
    [ "$got" = "$want" ] || e2e_fail "$name: exit $got, expected $want"
}

e2e_start_daemon() {
    local daemon=$1
    shift
    rm -f "$WORK/port"
    # CL_COAPD_FLAGS: extra daemon flags from the environment (e.g. --coap-stack libcoap)
    # shellcheck disable=SC2086
    "$daemon" --listen 127.0.0.1:0 --print-port-file "$WORK/port" "$@" ${CL_COAPD_FLAGS:-} \
        >"${DAEMON_LOG:-$WORK/cloisterd.log}" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 1 100); do
        [ -s "$WORK/port" ] && break
        kill -0 "$DAEMON_PID" 2>/dev/null || e2e_fail "${daemon##*/} exited at start"
        sleep 0.1
    done
    [ -s "$WORK/port" ] || e2e_fail "${daemon##*/} did not write its port"
    PORT=$(cat "$WORK/port")
    # shellcheck disable=SC2034 # SERVER is for the scripts that source this file
    SERVER="coap://127.0.0.1:$PORT"
}

e2e_stop_daemon() {
    local pid=$DAEMON_PID rc
    [ -n "$pid" ] || return 0
    DAEMON_PID=
    kill "-${1:-TERM}" "$pid" 2>/dev/null
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    return "$rc"
}
