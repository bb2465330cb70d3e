#!/usr/bin/env bash
#
# demo.sh - the README's "run" command: builds Cloister and shows the OSCORE
# example (examples/oscore) working over loopback UDP.
#
# Steps: install missing packages (scripts/install-deps.sh), configure and
# build build/ (RelWithDebInfo), start oscore-server with
# examples/oscore/server.conf (state in a temporary directory), then with
# oscore-client: GET /hello, POST /echo "cloister", a replayed request
# (refused), and a server restart after which the client transparently
# passes the Appendix B.1.2 Echo challenge and the server's sequence number
# continues from its persisted ceiling. Every step checks its result; the
# script stops with exit status 1 at the first unexpected one. The server is
# stopped on exit.
#
# Environment: CL_SKIP_DEPS=1 skips the installer; CL_DEMO_PORT picks the
# UDP port (default: any free port); BUILD_DIR overrides build/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
conf=$root/examples/oscore
state=$(mktemp -d "${TMPDIR:-/tmp}/cloister-demo.XXXXXX")
server_pid=""
port=${CL_DEMO_PORT:-0}
step=0
steps=7

cleanup() {
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$state"
}
trap cleanup EXIT

if [ -t 1 ]; then bold=$'\e[1m' green=$'\e[32m' red=$'\e[31m' off=$'\e[0m'; else
    bold="" green="" red="" off=""
fi
heading() {
    step=$((step + 1))
    printf '\n%s==> [%d/%d] %s%s\n' "$bold" "$step" "$steps" "$1" "$off"
}
ok() { printf '%s    ok: %s%s\n' "$green" "$1" "$off"; }
die() {
    printf '%s    FAILED: %s%s\n' "$red" "$1" "$off" >&2
    if [ -f "$state/server.log" ]; then
        echo "    server log:" >&2
        sed 's/^/      /' "$state/server.log" >&2
    fi
    exit 1
}

# Server log lines written since the last call, indented.
log_mark=0
show_server_log() {
    local n
    n=$(wc -l <"$state/server.log")
    if [ "$n" -gt "$log_mark" ]; then
        tail -n +"$((log_mark + 1))" "$state/server.log" | sed 's/^/    | /'
    fi
    log_mark=$n
}

start_server() {
    local before
    before=$(grep -c "listening on" "$state/server.log" 2>/dev/null || true)
    echo "    \$ oscore-server -c examples/oscore/server.conf --seq-file \$STATE/server.seq --port $1"
    "$build/examples/oscore-server" -c "$conf/server.conf" --seq-file "$state/server.seq" \
        --port "$1" 2>>"$state/server.log" &
    server_pid=$!
    for _ in $(seq 1 100); do
        if [ "$(grep -c "listening on" "$state/server.log")" -gt "${before:-0}" ]; then
            port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$state/server.log" |
                tail -n 1)
            show_server_log
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    server_pid=""
    die "oscore-server did not start"
}

# run_client EXPECTED_STDOUT ARGS...: runs the client, shows what it printed.
run_client() {
    local want=$1
    shift
    echo "    \$ oscore-client -c examples/oscore/client.conf $*"
    set +e
    "$build/examples/oscore-client" -c "$conf/client.conf" --seq-file "$state/client.seq" \
        "$@" >"$state/out" 2>"$state/err"
    client_rc=$?
    set -e
    sed 's/^/    /' "$state/out"
    sed 's/^/    (stderr) /' "$state/err"
    show_server_log
    grep -qxF -- "$want" "$state/out" || die "expected '$want' (exit status $client_rc)"
}

heading "Dependencies"
if [ "${CL_SKIP_DEPS:-0}" = 1 ]; then
    echo "    skipped (CL_SKIP_DEPS=1)"
elif [ -f "$root/scripts/install-deps.sh" ]; then
    bash "$root/scripts/install-deps.sh"
else
    echo "    scripts/install-deps.sh not present; assuming the build tools are installed"
fi

heading "Build (RelWithDebInfo, ${build#"$root"/})"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)" \
    --target oscore-server oscore-client
ok "oscore-server and oscore-client built"

heading "Start oscore-server (RFC 8613 C.1 context, echo_recovery on; state in $state)"
start_server "$port"
ok "listening on 127.0.0.1:$port"

heading "GET /hello (first request after start-up: Echo challenge, Appendix B.1.2)"
run_client "2.05 Content: Hello World!" -v GET "coap://127.0.0.1:$port/hello"
grep -q "protected 4.01 with Echo" "$state/err" || die "no Echo challenge seen"
ok "Hello World! after one Echo round trip"

heading "POST /echo \"cloister\""
run_client "2.04 Changed: cloister" POST "coap://127.0.0.1:$port/echo" cloister
ok "payload echoed"

heading "Replay: re-send a captured protected request verbatim"
run_client 'replay: 4.01 Unauthorized (unprotected): Replay detected' --replay-last \
    POST "coap://127.0.0.1:$port/echo" cloister
[ "$client_rc" -eq 0 ] || die "replay not refused"
ok "the server refused the replayed request"

heading "Restart the server; the client passes the Echo challenge again"
ceiling_before=$(cat "$state/server.seq")
echo "    persisted ceiling before the restart: $ceiling_before"
kill -TERM "$server_pid"
wait "$server_pid" || die "oscore-server did not exit cleanly"
server_pid=""
show_server_log
start_server "$port"
run_client "2.05 Content: Hello World!" -v GET "coap://127.0.0.1:$port/hello"
echo_piv=$(sed -n 's/.*4\.01 with Echo (server partial IV \([0-9]*\)).*/\1/p' "$state/err")
ceiling_after=$(cat "$state/server.seq")
echo "    server partial IV of the Echo challenge: ${echo_piv:-none}"
echo "    persisted ceiling after the restart:  $ceiling_after"
[ -n "$echo_piv" ] && [ "$echo_piv" -ge "$ceiling_before" ] ||
    die "server sequence number ${echo_piv:-?} did not continue from ceiling $ceiling_before"
[ "$ceiling_after" -gt "$ceiling_before" ] || die "ceiling did not advance"
ok "sequence number $echo_piv >= old ceiling $ceiling_before; new ceiling $ceiling_after"

printf '\n%sAll steps gave the expected result.%s\n' "$bold$green" "$off"
