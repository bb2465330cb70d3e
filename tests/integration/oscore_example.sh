#!/usr/bin/env bash
#
# oscore_example.sh SERVER CLIENT - end-to-end test of examples/oscore over
# loopback UDP (registered with ctest as example_oscore_udp).
#
# Starts oscore-server on a free loopback port (--port 0, the port is read
# from its log) with all state in a fresh temporary directory, so parallel
# ctest runs and ASan builds do not interfere, then asserts:
#   - GET /hello and POST /echo through OSCORE (first request after start-up
#     passes the Appendix B.1.2 Echo challenge), Content-Format echoed;
#   - 4.04 / 4.05, unprotected requests refused ("OSCORE required"), ping;
#   - a replayed protected request is refused with 4.01 "Replay detected";
#   - a wrong master secret gives an error exit ("Decryption failed") and the
#     server keeps serving; garbage datagrams do not kill it;
#   - retransmission: with the server stopped the client times out, and the
#     queued retransmissions are answered gracefully once it continues;
#   - restart: the server's sequence number continues from its persisted
#     ceiling (the Echo response's Partial IV is >= the old ceiling, the new
#     ceiling is above it) and the client passes the Echo challenge;
#   - start-up errors: corrupt seq_file, bad config line (file:line), a
#     seq_file in use by another process, a non-loopback address;
#   - the server log holds no payloads, paths or keys; the server exits 0
#     on SIGTERM (under ASan: no leaks, no errors).
set -uo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 OSCORE_SERVER OSCORE_CLIENT" >&2
    exit 2
fi
SERVER=$1
CLIENT=$2
CONF_DIR=$(cd "$(dirname "$0")/../../examples/oscore" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cl-oscore-example.XXXXXX")
server_pid=""
port=0
failures=0
checks=0

cleanup() {
    if [ -n "$server_pid" ]; then
        kill -CONT "$server_pid" 2>/dev/null
        kill -TERM "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

pass() { checks=$((checks + 1)); echo "ok   - $1"; }
fail() {
    checks=$((checks + 1))
    failures=$((failures + 1))
    echo "FAIL - $1"
    shift
    for f in "$@"; do
        [ -f "$f" ] && sed "s|^|       $(basename "$f"): |" "$f"
    done
    return 0
}

# start_server PORT: starts the server, waits for "listening on", sets $port.
start_server() {
    local before
    before=$(grep -c "listening on" "$work/server.log" 2>/dev/null)
    "$SERVER" -c "$CONF_DIR/server.conf" --seq-file "$work/server.seq" --port "$1" \
        2>>"$work/server.log" &
    server_pid=$!
    for _ in $(seq 1 300); do
        if [ "$(grep -c "listening on" "$work/server.log")" -gt "${before:-0}" ]; then
            port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log" |
                tail -n 1)
            return 0
        fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            wait "$server_pid" 2>/dev/null
            server_pid=""
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# stop_server: SIGTERM, expects exit status 0.
stop_server() {
    kill -TERM "$server_pid"
    wait "$server_pid"
    local rc=$?
    server_pid=""
    return $rc
}

# client ARGS...: runs the client with the test context; $rc, $work/out, $work/err.
client() {
    "$CLIENT" -c "$CONF_DIR/client.conf" --seq-file "$work/client.seq" --timeout-ms 500 "$@" \
        >"$work/out" 2>"$work/err"
    rc=$?
}

# expect NAME RC STDOUT_REGEX [STDERR_REGEX]: checks the last run ("" = empty stdout).
expect() {
    local name=$1 want_rc=$2 out_re=$3 err_re=${4:-}
    if [ "$rc" -ne "$want_rc" ]; then
        fail "$name: exit status $rc, expected $want_rc" "$work/out" "$work/err"
    elif [ -z "$out_re" ] && [ -s "$work/out" ]; then
        fail "$name: unexpected output on stdout" "$work/out" "$work/err"
    elif [ -n "$out_re" ] && ! grep -Eq -- "$out_re" "$work/out"; then
        fail "$name: stdout does not match /$out_re/" "$work/out" "$work/err"
    elif [ -n "$err_re" ] && ! grep -Eq -- "$err_re" "$work/err"; then
        fail "$name: stderr does not match /$err_re/" "$work/out" "$work/err"
    else
        pass "$name"
    fi
}

uri() { echo "coap://127.0.0.1:$port$1"; }

# ---------------------------------------------------------------- start-up
if ! start_server 0; then
    fail "server starts" "$work/server.log"
    echo "FAILED: server did not start"
    exit 1
fi
pass "server listens on 127.0.0.1:$port"
grep -q "server.seq not present" "$work/server.log" &&
    pass "fresh server starts at sequence number 0" ||
    fail "fresh server starts at sequence number 0" "$work/server.log"

# ------------------------------------------------------------ basic service
client -v GET "$(uri /hello)"
expect "GET /hello (first request passes the B.1.2 Echo challenge)" 0 \
    '^2\.05 Content: Hello World!$' 'protected 4\.01 with Echo'

client POST "$(uri /echo)" cloister
expect "POST /echo echoes the payload" 0 '^2\.04 Changed: cloister$'

client -v --content-format 50 POST "$(uri /echo)" '{"a":1}'
expect "POST /echo echoes the Content-Format" 0 '^2\.04 Changed: \{"a":1\}$' \
    'response Content-Format 50'

client GET "$(uri /nope)"
expect "unknown path gives 4.04" 1 '^4\.04 Not Found$'

client POST "$(uri /hello)"
expect "wrong method gives 4.05" 1 '^4\.05 Method Not Allowed$'

client --unprotected GET "$(uri /hello)"
expect "unprotected request refused" 1 \
    '^4\.01 Unauthorized \(unprotected\): OSCORE required$'

client PING "$(uri "")"
expect "CoAP ping answered with RST" 0 '^pong'

# ------------------------------------------------------------------ replay
client --replay-last POST "$(uri /echo)" cloister
expect "replayed request refused" 0 \
    '^replay: 4\.01 Unauthorized \(unprotected\): Replay detected$'
grep -q '^2\.04 Changed: cloister$' "$work/out" &&
    pass "the original of the replayed request was served" ||
    fail "the original of the replayed request was served" "$work/out"

# ------------------------------------------------------ hostile or broken peers
# A wrong key with sequence numbers above the window: the tag check fails.
echo 1000000 >"$work/wrong.seq"
"$CLIENT" -c "$CONF_DIR/client.conf" --seq-file "$work/wrong.seq" --timeout-ms 500 \
    --master-secret 0102030405060708090a0b0c0d0e0f11 GET "$(uri /hello)" \
    >"$work/out" 2>"$work/err"
rc=$?
expect "wrong master secret: error exit" 2 \
    '^4\.00 Bad Request \(unprotected\): Decryption failed$'

printf '\x40\x01' >"/dev/udp/127.0.0.1/$port"
printf '\x5f\xff\xff\xff\xff' >"/dev/udp/127.0.0.1/$port"
head -c 200 /dev/urandom >"/dev/udp/127.0.0.1/$port"
printf '\x42\x02\x00\x01\xaa\xbb\x92\x09\x00\xff\x00' >"/dev/udp/127.0.0.1/$port" # bad OSCORE
client GET "$(uri /hello)"
expect "server keeps serving after garbage and a wrong key" 0 '^2\.05 Content: Hello World!$'
kill -0 "$server_pid" 2>/dev/null && pass "server still running" ||
    fail "server still running" "$work/server.log"

# Retransmissions: no answer while the server is stopped; the queued copies
# are answered (the duplicates as replays) once it continues.
kill -STOP "$server_pid"
"$CLIENT" -c "$CONF_DIR/client.conf" --seq-file "$work/client.seq" --timeout-ms 40 -v \
    GET "$(uri /hello)" >"$work/out" 2>"$work/err"
rc=$?
kill -CONT "$server_pid"
expect "timeout after MAX_RETRANSMIT retransmissions" 2 "" \
    'no response from .* after 4 retransmissions'
client GET "$(uri /hello)"
expect "server serves after the retransmission burst" 0 '^2\.05 Content: Hello World!$'

# ----------------------------------------------------------------- restart
ceiling_before=$(cat "$work/server.seq")
client_ceiling_before=$(cat "$work/client.seq")
if stop_server; then pass "server exits 0 on SIGTERM"; else
    fail "server exits 0 on SIGTERM" "$work/server.log"
fi
old_port=$port
if ! start_server "$old_port"; then
    start_server 0 || { fail "server restarts" "$work/server.log"; exit 1; }
fi
grep -q "holds ceiling $ceiling_before; continuing" "$work/server.log" &&
    pass "restarted server restores ceiling $ceiling_before" ||
    fail "restarted server restores ceiling $ceiling_before" "$work/server.log"

client -v GET "$(uri /hello)"
expect "after restart: client passes the Echo challenge" 0 '^2\.05 Content: Hello World!$' \
    'protected 4\.01 with Echo \(server partial IV [0-9]+\)'
echo_piv=$(sed -n 's/.*4\.01 with Echo (server partial IV \([0-9]*\)).*/\1/p' "$work/err")
ceiling_after=$(cat "$work/server.seq")
if [ -n "$echo_piv" ] && [ "$echo_piv" -ge "$ceiling_before" ]; then
    pass "server sequence number $echo_piv continues from the ceiling $ceiling_before"
else
    fail "server sequence number '${echo_piv}' >= ceiling $ceiling_before" "$work/err"
fi
if [ "$ceiling_after" -gt "$ceiling_before" ]; then
    pass "new ceiling $ceiling_after persisted before use"
else
    fail "new ceiling $ceiling_after > $ceiling_before" "$work/server.log"
fi
client_ceiling_after=$(cat "$work/client.seq")
[ "$client_ceiling_after" -gt "$client_ceiling_before" ] &&
    pass "client sequence numbers persisted ($client_ceiling_before -> $client_ceiling_after)" ||
    fail "client ceiling grew ($client_ceiling_before -> $client_ceiling_after)"

# ---------------------------------------------------------- start-up errors
"$SERVER" -c "$CONF_DIR/server.conf" --seq-file "$work/server.seq" --port 0 \
    >"$work/out" 2>"$work/err"
rc=$?
expect "second server on the same seq_file refused" 1 "" 'in use by process'

echo "12x" >"$work/corrupt.seq"
"$SERVER" -c "$CONF_DIR/server.conf" --seq-file "$work/corrupt.seq" --port 0 \
    >"$work/out" 2>"$work/err"
rc=$?
expect "corrupt seq_file is a start-up error" 1 "" 'corrupt.seq is corrupt'

printf '# test\nmaster_secret = 0102\nsender_id = 0z\n' >"$work/bad.conf"
"$SERVER" -c "$work/bad.conf" --port 0 >"$work/out" 2>"$work/err"
rc=$?
expect "bad hex reported with file:line" 1 "" 'bad\.conf:3: sender_id: bad hex'

"$SERVER" -c "$CONF_DIR/server.conf" --seq-file "$work/other.seq" --listen 0.0.0.0 --port 0 \
    >"$work/out" 2>"$work/err"
rc=$?
expect "non-loopback address refused without --bind-any" 1 "" 'not a loopback address'

"$CLIENT" --seq-file "$work/c2.seq" --master-secret 01 --sender-id '' \
    --recipient-id 0102030405060708 GET "$(uri /hello)" >"$work/out" 2>"$work/err"
rc=$?
expect "client: overlong recipient_id flag refused" 2 "" \
    'recipient-id: recipient_id is 8 bytes; at most 7'

# ------------------------------------------------------------ shutdown, log
if kill -0 "$server_pid" 2>/dev/null && stop_server; then
    pass "server exits 0 on SIGTERM after restart"
else
    fail "server exits 0 on SIGTERM after restart" "$work/server.log"
fi
if grep -Eq 'stopping: .* [1-9][0-9]* malformed' "$work/server.log"; then
    pass "malformed datagrams were dropped and counted"
else
    fail "malformed datagrams were dropped and counted" "$work/server.log"
fi
# (lines naming the temporary directory are left out: its path is not ours to choose)
if grep -vF "$work" "$work/server.log" |
    grep -Eiq 'cloister|Hello World|/hello|/echo|0102030405060708|9e7ca922|"a":1'; then
    fail "server log holds no payloads, paths or keys" "$work/server.log"
else
    pass "server log holds no payloads, paths or keys"
fi

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
