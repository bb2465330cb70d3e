#!/usr/bin/env bash
# cloisterd_smoke.sh - starts cloisterd on loopback (port 0 + --print-port-file),
# talks CoAP to it with coap_probe and stops it with SIGTERM.
#
#   cloisterd_smoke.sh FAKE_DAEMON PROBE [REAL_DAEMON CORE_IMAGE]
#
# FAKE_DAEMON is cloisterd linked against tests/host/fake_runtime.c (an echo
# "core"): it checks flags, config file, exit codes, ping, dedup, logging
# hygiene and clean shutdown. With REAL_DAEMON and CORE_IMAGE (the lead's
# cloister_core_image) it also fetches GET /attestation from the real core on
# both runtimes; without them that part is skipped with a note.
set -u
FAKE=$1 PROBE=$2 REAL=${3:-} IMAGE=${4:-}
T=$(mktemp -d /tmp/cl-smoke-XXXXXX)
PID=
fail() { echo "FAIL: $*"; [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null; echo "--- daemon log"; cat "$T"/log* 2>/dev/null | tail -40; rm -rf "$T"; exit 1; }
cleanup() { [ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
NONCE=00112233445566778899aabbccddeeff

# start DAEMON LOGFILE ARGS... -> sets PID and PORT
start() {
  local d=$1 log=$2; shift 2
  rm -f "$T/port"
  "$d" --listen 127.0.0.1:0 --print-port-file "$T/port" "$@" 2>"$log" &
  PID=$!
  for _ in $(seq 100); do [ -s "$T/port" ] && break; kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
  [ -s "$T/port" ] || fail "no port file from $d $*"
  PORT=$(cat "$T/port")
}
stop() {
  kill -TERM "$PID"; wait "$PID"; local rc=$?; PID=
  [ "$rc" -eq 0 ] || fail "exit code $rc after SIGTERM"
}

# --- usage and exit codes
"$FAKE" --help | grep -q -- "--print-port-file" || fail "--help"
"$FAKE" --no-such-flag 2>/dev/null; [ $? -eq 2 ] || fail "bad flag must exit 2"
"$FAKE" --core-image x --runtime tdx 2>/dev/null; [ $? -eq 2 ] || fail "bad runtime must exit 2"
"$FAKE" --core-image x --data "$T/d0" --listen 0.0.0.0:0 2>/dev/null
[ $? -eq 2 ] || fail "non-loopback without --bind-any must exit 2"
printf 'listen = 127.0.0.1:0\nbogus = 1\n' >"$T/bad.conf"
"$FAKE" --config "$T/bad.conf" 2>/dev/null; [ $? -eq 2 ] || fail "bad config key must exit 2"
touch "$T/notadir"
"$FAKE" --core-image x --data "$T/notadir/sub" 2>/dev/null; [ $? -eq 1 ] || fail "bad data dir must exit 1"

# --- the fake core, options from a config file overridden by flags
printf '# smoke\ndata = %s/data\nlog-level = debug\ncore-image = /nonexistent\nlisten = 127.0.0.1:1\n' "$T" >"$T/c.conf"
start "$FAKE" "$T/log.fake" --config "$T/c.conf"
out=$("$PROBE" 127.0.0.1 "$PORT" --path /attestation --query "nonce=$NONCE") || fail "probe: $out"
echo "$out" | grep -q "type=ACK code=2.05 .*payload_len=9" || fail "unexpected response: $out"
out=$("$PROBE" 127.0.0.1 "$PORT" --ping) || fail "ping: $out"
echo "$out" | grep -q "type=RST code=0.00" || fail "ping answer: $out"
out=$("$PROBE" 127.0.0.1 "$PORT" --mid 777 --repeat 3) || fail "retransmission: $out"
[ "$(echo "$out" | sort -u | wc -l)" -eq 1 ] || fail "retransmissions answered differently: $out"
out=$("$PROBE" 127.0.0.1 "$PORT" --non --mid 778) || fail "NON: $out"
echo "$out" | grep -q "type=NON code=2.05" || fail "NON answer: $out"
stop
grep -q 'msg="stopped" exit=0' "$T/log.fake" || fail "no clean stop line"
grep -q 'dedup_hits=2' "$T/log.fake" || fail "dedup not counted"
grep -q 'msg="core" line="fake core closed' "$T/log.fake" || fail "runtime not closed before exit"
grep -Eq '^ts=[0-9T:.-]+Z level=(info|warn|debug|error) msg="' "$T/log.fake" || fail "log format"
if grep -v '^ts=.* level=[a-z]* msg="' "$T/log.fake" | grep -q .; then fail "unstructured log line"; fi
# Never payloads, tokens or nonces in the log.
if grep -Eqi "fake-core|$NONCE|c1057e42" "$T/log.fake"; then fail "payload/token/nonce in log"; fi
[ "$(stat -c %a "$T/data")" = 700 ] || fail "data dir mode"
ls "$T/data/log/"*.rec >/dev/null 2>&1 || fail "no log records written"
[ "$(stat -c %a "$(ls "$T/data/log/"*.rec | head -1)")" = 600 ] || fail "record mode"

# Restart on the same data: boots from the log; a second daemon on it is refused.
start "$FAKE" "$T/log.fake2" --data "$T/data" --core-image /nonexistent
"$FAKE" --data "$T/data" --core-image /nonexistent --listen 127.0.0.1:0 2>"$T/log.dup"
[ $? -eq 1 ] || fail "second daemon on the same data dir must exit 1"
kill -INT "$PID"; wait "$PID"; [ $? -eq 0 ] || fail "SIGINT exit code"; PID=

# --- the real core
if [ -n "$REAL" ] && [ -n "$IMAGE" ] && [ -x "$REAL" ] && [ -f "$IMAGE" ]; then
  for rt in sim process; do
    start "$REAL" "$T/log.$rt" --runtime "$rt" --core-image "$IMAGE" --data "$T/data-$rt" \
      --platform-dir "$T/platform"
    out=$("$PROBE" 127.0.0.1 "$PORT" --path /attestation --query "nonce=$NONCE" --timeout 5000) ||
      fail "$rt: attestation: $out"
    echo "$out" | grep -q "type=ACK code=2.05" || fail "$rt: attestation answer: $out"
    stop
  done
  echo "PASS (fake core + real core on sim and process)"
else
  echo "PASS (fake core; real core part skipped: cloisterd or cloister_core_image not built)"
fi
