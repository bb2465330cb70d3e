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
# shellcheck source-path=SCRIPTDIR source=e2e_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_init cl-smoke
NONCE=00112233445566778899aabbccddeeff

# --- usage and exit codes
"$FAKE" --help | grep -q -- "--print-port-file" || e2e_fail "--help"
"$FAKE" --no-such-flag 2>/dev/null; [ $? -eq 2 ] || e2e_fail "bad flag must exit 2"
"$FAKE" --core-image x --runtime tdx 2>/dev/null; [ $? -eq 2 ] || e2e_fail "bad runtime must exit 2"
"$FAKE" --core-image x --data "$WORK/d0" --listen 0.0.0.0:0 2>/dev/null
[ $? -eq 2 ] || e2e_fail "non-loopback without --bind-any must exit 2"
printf 'listen = 127.0.0.1:0\nbogus = 1\n' >"$WORK/bad.conf"
"$FAKE" --config "$WORK/bad.conf" 2>/dev/null; [ $? -eq 2 ] || e2e_fail "bad config key must exit 2"
touch "$WORK/notadir"
"$FAKE" --core-image x --data "$WORK/notadir/sub" 2>/dev/null; [ $? -eq 1 ] ||
  e2e_fail "bad data dir must exit 1"

# --- the fake core, options from a config file overridden by flags
printf '# smoke\ndata = %s/data\nlog-level = debug\ncore-image = /nonexistent\nlisten = 127.0.0.1:1\n' "$WORK" >"$WORK/c.conf"
DAEMON_LOG=$WORK/log.fake
e2e_start_daemon "$FAKE" --config "$WORK/c.conf"
out=$("$PROBE" 127.0.0.1 "$PORT" --path /attestation --query "nonce=$NONCE") ||
  e2e_fail "probe: $out"
echo "$out" | grep -q "type=ACK code=2.05 .*payload_len=9" || e2e_fail "unexpected response: $out"
out=$("$PROBE" 127.0.0.1 "$PORT" --ping) || e2e_fail "ping: $out"
echo "$out" | grep -q "type=RST code=0.00" || e2e_fail "ping answer: $out"
out=$("$PROBE" 127.0.0.1 "$PORT" --mid 777 --repeat 3) || e2e_fail "retransmission: $out"
[ "$(echo "$out" | sort -u | wc -l)" -eq 1 ] ||
  e2e_fail "retransmissions answered differently: $out"
out=$("$PROBE" 127.0.0.1 "$PORT" --non --mid 778) || e2e_fail "NON: $out"
echo "$out" | grep -q "type=NON code=2.05" || e2e_fail "NON answer: $out"
e2e_stop_daemon TERM || e2e_fail "exit code $? after SIGTERM"
grep -q 'msg="stopped" exit=0' "$WORK/log.fake" || e2e_fail "no clean stop line"
grep -q 'dedup_hits=2' "$WORK/log.fake" || e2e_fail "dedup not counted"
grep -q 'msg="core" line="fake core closed' "$WORK/log.fake" ||
  e2e_fail "runtime not closed before exit"
grep -Eq '^ts=[0-9T:.-]+Z level=(info|warn|debug|error) msg="' "$WORK/log.fake" ||
  e2e_fail "log format"
if grep -v '^ts=.* level=[a-z]* msg="' "$WORK/log.fake" | grep -q .; then
  e2e_fail "unstructured log line"
fi
# Never payloads, tokens or nonces in the log.
if grep -Eqi "fake-core|$NONCE|c1057e42" "$WORK/log.fake"; then
  e2e_fail "payload/token/nonce in log"
fi
[ "$(stat -c %a "$WORK/data")" = 700 ] || e2e_fail "data dir mode"
ls "$WORK/data/log/"*.rec >/dev/null 2>&1 || e2e_fail "no log records written"
[ "$(stat -c %a "$(ls "$WORK/data/log/"*.rec | head -1)")" = 600 ] || e2e_fail "record mode"

# Restart on the same data: boots from the log; a second daemon on it is refused.
DAEMON_LOG=$WORK/log.fake2
e2e_start_daemon "$FAKE" --data "$WORK/data" --core-image /nonexistent
"$FAKE" --data "$WORK/data" --core-image /nonexistent --listen 127.0.0.1:0 2>"$WORK/log.dup"
[ $? -eq 1 ] || e2e_fail "second daemon on the same data dir must exit 1"
e2e_stop_daemon INT || e2e_fail "SIGINT exit code $?"

# --- the real core
if [ -n "$REAL" ] && [ -n "$IMAGE" ] && [ -x "$REAL" ] && [ -f "$IMAGE" ]; then
  for rt in sim process; do
    DAEMON_LOG=$WORK/log.$rt
    e2e_start_daemon "$REAL" --runtime "$rt" --core-image "$IMAGE" --data "$WORK/data-$rt" \
      --platform-dir "$WORK/platform"
    out=$("$PROBE" 127.0.0.1 "$PORT" --path /attestation --query "nonce=$NONCE" --timeout 5000) ||
      e2e_fail "$rt: attestation: $out"
    echo "$out" | grep -q "type=ACK code=2.05" || e2e_fail "$rt: attestation answer: $out"
    e2e_stop_daemon TERM || e2e_fail "exit code $? after SIGTERM"
  done
  echo "PASS (fake core + real core on sim and process)"
else
  echo "PASS (fake core; real core part skipped: cloisterd or cloister_core_image not built)"
fi
