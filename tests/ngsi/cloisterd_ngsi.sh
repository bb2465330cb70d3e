#!/usr/bin/env bash
# cloisterd_ngsi.sh - the NGSI-v2 facade inside cloisterd (--ngsi-listen):
# flags and exit codes, an HpkeCiphertext entity created and read back over
# HTTP, durability across a restart, clean shutdown, structured logs without
# attribute values.
#
#   cloisterd_ngsi.sh DAEMON
#
# DAEMON is cloisterd linked against tests/host/fake_runtime.c (the facade
# does not need the core). HTTP is spoken with python3's standard library.
set -u
DAEMON=$1
# shellcheck source-path=SCRIPTDIR source=../integration/e2e_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/e2e_lib.sh"
e2e_init cl-ngsi
CT=AnJ7Zk9Xq_3aB-cD0123456789abcdefNGSIcanary

"$DAEMON" --help | grep -q -- "--ngsi-listen" || e2e_fail "--help lacks --ngsi-listen"
"$DAEMON" --core-image x --data "$WORK/d0" --ngsi-listen 127.0.0.1:0 --ngsi-store mongo \
    2>/dev/null
[ $? -eq 2 ] || e2e_fail "bad --ngsi-store must exit 2"
"$DAEMON" --core-image x --data "$WORK/d0" --ngsi-listen 127.0.0.1:0 --ngsi-store pg 2>/dev/null
[ $? -eq 2 ] || e2e_fail "--ngsi-store pg without --pg must exit 2"
"$DAEMON" --core-image x --data "$WORK/d0" --listen 127.0.0.1:0 --ngsi-listen 0.0.0.0:0 \
    >/dev/null 2>&1
[ $? -eq 2 ] || e2e_fail "non-loopback NGSI listener without --bind-any must exit 2"

start() {
    rm -f "$WORK/ngsi.port"
    e2e_start_daemon "$DAEMON" --core-image /nonexistent --data "$WORK/data" --log-level debug \
        --ngsi-listen 127.0.0.1:0 --print-ngsi-port-file "$WORK/ngsi.port"
    for _ in $(seq 1 100); do
        [ -s "$WORK/ngsi.port" ] && break
        sleep 0.1
    done
    [ -s "$WORK/ngsi.port" ] || e2e_fail "no NGSI port file"
    NPORT=$(cat "$WORK/ngsi.port")
}

# http METHOD PATH [BODY] -> prints "STATUS BODY"
http() {
    python3 - "$NPORT" "$@" <<'PY'
import http.client, sys
port, method, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
body = sys.argv[4] if len(sys.argv) > 4 else None
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
h = {"Fiware-Service": "meters", "Fiware-ServicePath": "/north"}
if body is not None:
    h["Content-Type"] = "application/json"
c.request(method, path, body=body, headers=h)
r = c.getresponse()
print(r.status, r.read().decode())
PY
}

DAEMON_LOG=$WORK/log1
start
out=$(http GET /version) || e2e_fail "GET /version"
case "$out" in "200 "*'"orion"'*) ;; *) e2e_fail "version: $out" ;; esac
body='{"id":"meter-1","type":"SmartMeter","consumption":{"type":"HpkeCiphertext","value":"'$CT'","metadata":{"kid":{"value":"stream-1"}}}}'
out=$(http POST /v2/entities "$body") || e2e_fail "POST"
[ "${out%% *}" = 201 ] || e2e_fail "create: $out"
out=$(http GET "/v2/entities/meter-1?options=keyValues") || e2e_fail "GET"
case "$out" in "200 "*"\"consumption\":\"$CT\""*) ;; *) e2e_fail "read back: $out" ;; esac
e2e_stop_daemon TERM || e2e_fail "exit code $? after SIGTERM"
grep -q 'msg="listening" transport=ngsi' "$WORK/log1" || e2e_fail "no ngsi listening line"
grep -q 'msg="ngsi facade totals"' "$WORK/log1" || e2e_fail "no facade totals at stop"
grep -q 'msg="stopped" exit=0' "$WORK/log1" || e2e_fail "no clean stop"
grep -q "$CT" "$WORK/log1" && e2e_fail "attribute value in the log"
grep -q 'stream-1' "$WORK/log1" && e2e_fail "metadata value in the log"
[ "$(stat -c %a "$WORK/data/ngsi.sqlite")" = 600 ] || e2e_fail "ngsi.sqlite mode"

# durable: a new daemon on the same data directory has it
DAEMON_LOG=$WORK/log2
start
out=$(http GET "/v2/entities/meter-1/attrs/consumption") || e2e_fail "GET after restart"
case "$out" in "200 "*"\"value\":\"$CT\""*) ;; *) e2e_fail "after restart: $out" ;; esac
e2e_stop_daemon TERM || e2e_fail "exit code $? after the second SIGTERM"
echo "cloisterd_ngsi: 1 passed, 0 failed"
