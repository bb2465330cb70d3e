#!/usr/bin/env bash
# cloisterd_delivery.sh - core-originated messages through the daemon (the
# `send` ocall), with cloisterd linked against fake_runtime.c:
#
#   cloisterd_delivery.sh FAKE_DAEMON PROBE
#
# - CoAP: a notification the core sends during handle() reaches the client
#   after the batch (routed by transport, held until the commit) and, being a
#   CON nobody ACKs, is retransmitted by the daemon's loop (same message id);
# - HTTP long poll: a request the core defers (CL_BATCH_F_DEFER) is answered
#   by the core's send at the next tick (200, OSCORE header, the body), and one
#   never answered gets 504 after --http-poll-timeout;
# - /metrics counts them; the log never carries their payloads.
set -u
FAKE=$1 PROBE=$2
# shellcheck source-path=SCRIPTDIR source=../integration/e2e_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/e2e_lib.sh"
e2e_init cl-delivery
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }

"$FAKE" --core-image x --http-poll-timeout 0 2>/dev/null
[ $? -eq 2 ] || e2e_fail "--http-poll-timeout 0 must exit 2"
"$FAKE" --core-image x --http-poll-timeout 5s 2>/dev/null
[ $? -eq 2 ] || e2e_fail "--http-poll-timeout 5s must exit 2"

DAEMON_LOG=$WORK/log
e2e_start_daemon "$FAKE" --data "$WORK/data" --core-image /nonexistent --log-level debug \
  --http-listen 127.0.0.1:0 --print-http-port-file "$WORK/http-port" --http-poll-timeout 2
for _ in $(seq 50); do [ -s "$WORK/http-port" ] && break; sleep 0.1; done
HPORT=$(cat "$WORK/http-port" 2>/dev/null) || e2e_fail "no http port file"

# --- CoAP: notification after the response, then retransmitted (never ACKed here)
out=$("$PROBE" 127.0.0.1 "$PORT" --path /notify --more 3600) || e2e_fail "probe: $out"
echo "$out"
[ "$(echo "$out" | head -1 | cut -d' ' -f1-2)" = "type=ACK code=2.05" ] ||
  e2e_fail "the response must come first: $out"
n=$(echo "$out" | grep -c "type=CON code=2.05 mid=20816 token_len=4 payload_len=17")
[ "$n" -eq 2 ] || e2e_fail "expected the notification and one retransmission, got $n: $out"

# --- HTTP long poll answered by the core's send at the next tick
post() { # post BODY -> prints "status seconds", body in $WORK/body, headers in $WORK/hdr
  curl -s -m 10 -o "$WORK/body" -D "$WORK/hdr" -w '%{http_code} %{time_total}' -X POST \
    -H 'Content-Type: application/oscore' -H 'OSCORE: AA' --data-binary "$1" \
    "http://127.0.0.1:$HPORT/"
}
res=$(post wait) || e2e_fail "curl wait: $res"
echo "wait: $res"
[ "${res%% *}" = 200 ] || e2e_fail "long poll: $res"
[ "$(cat "$WORK/body")" = fake-action ] || e2e_fail "long poll body"
grep -qi '^OSCORE: AA' "$WORK/hdr" || e2e_fail "long poll answer without the OSCORE header"

# --- HTTP long poll nobody answers: 504 after the poll timeout (2 s)
res=$(post wait-forever) || e2e_fail "curl wait-forever: $res"
echo "wait-forever: $res"
[ "${res%% *}" = 504 ] || e2e_fail "expired poll: $res"
awk -v t="${res#* }" 'BEGIN { exit !(t >= 1.5 && t < 6) }' || e2e_fail "poll timeout took ${res#* } s"
grep -q 'poll again' "$WORK/body" || e2e_fail "504 body"

m=$(curl -s -m 5 "http://127.0.0.1:$HPORT/metrics") || e2e_fail "metrics"
for want in 'cloister_http_polls_total{result="answered"} 1' \
            'cloister_http_polls_total{result="timeout"} 1' \
            'cloister_coap_notifications_sent_total 1' \
            'cloister_http_polls 0'; do
  echo "$m" | grep -qF "$want" || e2e_fail "metrics lack: $want"
done
# (still retransmitting: 1 or 2 by now, 4 at most, then given up)
echo "$m" | grep -Eq '^cloister_coap_notifications_retransmitted_total [1-4]$' ||
  e2e_fail "metrics: no retransmission counted"
e2e_stop_daemon TERM || e2e_fail "exit code $? after SIGTERM"
grep -Eq 'notify_sent=1 notify_retransmitted=[1-4] ' "$WORK/log" || e2e_fail "stats line"
grep -q 'polls_deferred=2 polls_answered=1 polls_timed_out=1' "$WORK/log" ||
  e2e_fail "http totals line"
if grep -Eq 'fake-action|fake-notification|wait-forever' "$WORK/log"; then
  e2e_fail "payload in the log"
fi
echo "PASS"
