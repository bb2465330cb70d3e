#!/usr/bin/env bash
# tests/integration/http_e2e.sh - the quickstart path end to end over HTTP:
# cloisterd with both endpoints (CoAP/UDP and HTTP, --http-listen), the CLI
# with --server http://127.0.0.1:PORT everywhere:
#
#   owner init -> verify (GET /attestation, blocks joined by the host) ->
#   provision (POST /pki/owner, /pki/provision, EDHOC + OSCORE over HTTP) ->
#   token create -> enroll -> whoami -> event-type add -> device publish ->
#   client list -> client revoke -> whoami fails
#
# plus: the same client over CoAP on the same core, /healthz and /metrics
# (bash /dev/tcp, no curl), and the host's refusals (404, 405, 415, 413,
# bad OSCORE header) answered without reaching the core.
#
# usage: http_e2e.sh CLOISTERD CLOISTER [CORE_IMAGE]   (CL_RUNTIME=process
# runs the core in its own process). Exit 0 when every step behaves.
set -u

CLOISTERD=${1:?usage: http_e2e.sh CLOISTERD CLOISTER [CORE_IMAGE]}
CLOISTER=${2:?usage: http_e2e.sh CLOISTERD CLOISTER [CORE_IMAGE]}
IMAGE=${3:-}

# shellcheck source-path=SCRIPTDIR source=e2e_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_init cl_http_e2e
export CLOISTER_COAP_TIMEOUT_MS=500 # fail fast when the daemon is gone

IMAGE_ARGS=()
DAEMON_IMAGE_ARGS=()
if [ -n "$IMAGE" ]; then
    IMAGE_ARGS=(--image "$IMAGE")
    DAEMON_IMAGE_ARGS=(--core-image "$IMAGE")
fi

# http_raw NAME REQUEST: sends REQUEST (printf format already expanded) to the
# HTTP endpoint and stores the whole response in $WORK/NAME.http.
http_raw() {
    local name=$1 req=$2
    exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || e2e_fail "$name: cannot connect"
    printf '%b' "$req" >&3
    timeout 10 cat <&3 >"$WORK/$name.http"
    exec 3<&-
    echo "== $name: $(head -n 1 "$WORK/$name.http" | tr -d '\r')"
}

# http_expect NAME STATUS: the status line of $WORK/NAME.http has STATUS.
http_expect() {
    head -n 1 "$WORK/$1.http" | grep -q "^HTTP/1\.[01] $2 " ||
        e2e_fail "$1: expected HTTP $2, got '$(head -n 1 "$WORK/$1.http")'"
}

# ---------------------------------------------------------------- the daemon
e2e_start_daemon "$CLOISTERD" --data "$WORK/data" --platform-dir "$WORK/platform" \
    --runtime "${CL_RUNTIME:-sim}" "${DAEMON_IMAGE_ARGS[@]}" \
    --http-listen 127.0.0.1:0 --print-http-port-file "$WORK/http_port"
for _ in $(seq 1 50); do
    [ -s "$WORK/http_port" ] && break
    sleep 0.1
done
[ -s "$WORK/http_port" ] || e2e_fail "cloisterd did not write its HTTP port"
HTTP_PORT=$(cat "$WORK/http_port")
COAP_SERVER=$SERVER
HTTP_SERVER="http://127.0.0.1:$HTTP_PORT"
echo "cloisterd at $COAP_SERVER and $HTTP_SERVER"

# ---------------------------------------------------------------- health and metrics
http_raw healthz 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
http_expect healthz 200
tail -n 1 "$WORK/healthz.http" | grep -q '^ok$' || e2e_fail "healthz body"

# ---------------------------------------------------------------- host refusals
http_raw not_found 'GET /nothing-here HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
http_expect not_found 404
http_raw edhoc_get 'GET /.well-known/edhoc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
http_expect edhoc_get 405
http_raw edhoc_type 'POST /.well-known/edhoc HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx'
http_expect edhoc_type 415
http_raw too_large 'POST /.well-known/edhoc HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/edhoc+cbor-seq\r\nContent-Length: 100000\r\n\r\n'
http_expect too_large 413
http_raw oscore_bad 'POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/oscore\r\nOSCORE: *bad*\r\nContent-Length: 1\r\n\r\nx'
http_expect oscore_bad 400
http_raw oscore_type 'POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/cbor\r\nOSCORE: AA\r\nContent-Length: 1\r\n\r\nx'
http_expect oscore_type 415
# An OSCORE request nobody can decrypt reaches the core and comes back as an
# unprotected error (not 200, no OSCORE header).
http_raw oscore_junk 'POST /anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/oscore\r\nOSCORE: CSU\r\nContent-Length: 10\r\n\r\n0123456789'
grep -q '^HTTP/1\.[01] [45][0-9][0-9] ' "$WORK/oscore_junk.http" || e2e_fail "junk OSCORE not refused"
grep -qi '^OSCORE:' "$WORK/oscore_junk.http" && e2e_fail "junk OSCORE answered with an OSCORE header"

# ---------------------------------------------------------------- owner
e2e_run owner_init 0 "$CLOISTER" owner init --dir "$WORK/owner" --name "HTTP owner"
e2e_run measure 0 "$CLOISTER" measure "${IMAGE_ARGS[@]}"
MRENCLAVE=$(awk '$1 == "mrenclave" {print $2}' "$WORK/measure.out")
[ ${#MRENCLAVE} = 64 ] || e2e_fail "measure printed no MRENCLAVE"

# ---------------------------------------------------------------- attestation (GET /attestation)
e2e_run verify 0 "$CLOISTER" verify --server "$HTTP_SERVER" --expect-mrenclave "$MRENCLAVE" \
    --allow-simulated
grep -q "SIMULATED - NO SECURITY" "$WORK/verify.out" || e2e_fail "simulated result not labelled"
e2e_run verify_wrong_mr 1 "$CLOISTER" verify --server "$HTTP_SERVER" --allow-simulated \
    --expect-mrenclave 0000000000000000000000000000000000000000000000000000000000000000

# ---------------------------------------------------------------- provision over HTTP
e2e_run provision 0 "$CLOISTER" provision --server "$HTTP_SERVER" --owner "$WORK/owner" \
    --expect-mrenclave "$MRENCLAVE" --allow-simulated
grep -q "http://127.0.0.1:$HTTP_PORT" "$WORK/owner/core.conf" ||
    e2e_fail "core.conf does not remember the http:// server"
e2e_run owner_whoami 0 "$CLOISTER" whoami --dir "$WORK/owner"
grep -q "role  owner" "$WORK/owner_whoami.out" || e2e_fail "owner whoami"
# The same owner over CoAP, on the same core.
e2e_run owner_whoami_coap 0 "$CLOISTER" whoami --dir "$WORK/owner" --server "$COAP_SERVER"
grep -q "role  owner" "$WORK/owner_whoami_coap.out" || e2e_fail "owner whoami over CoAP"

# ---------------------------------------------------------------- enrollment
e2e_run token 0 "$CLOISTER" token create --owner "$WORK/owner" --role device --ttl 10m \
    --name sensor-1 --json
TOKEN=$(sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p' "$WORK/token.out")
[ ${#TOKEN} = 32 ] || e2e_fail "no token"
e2e_run enroll 0 "$CLOISTER" enroll --server "$HTTP_SERVER" --token "$TOKEN" \
    --dir "$WORK/dev1" --name sensor-1 --owner-cert "$WORK/owner/owner.pem" \
    --ca "$WORK/owner/core-ca.pem"
e2e_run enroll_reuse 1 "$CLOISTER" enroll --server "$HTTP_SERVER" --token "$TOKEN" \
    --dir "$WORK/dev2" --name sensor-2 --owner-cert "$WORK/owner/owner.pem"
e2e_run dev_whoami 0 "$CLOISTER" whoami --dir "$WORK/dev1"
grep -q "role  device" "$WORK/dev_whoami.out" || e2e_fail "device whoami"
DEV_ID=$(awk '$1 == "id" {print $2}' "$WORK/dev_whoami.out")

e2e_run evtype 0 "$CLOISTER" event-type add temperature --owner "$WORK/owner" \
    --description "room temperature" --history admin,user
e2e_run publish 0 "$CLOISTER" device publish --dir "$WORK/dev1" --type temperature \
    --prop celsius=21.5 --prop room=kitchen --count 3
grep -q "published 3 events" "$WORK/publish.out" || e2e_fail "publish"

# ---------------------------------------------------------------- revocation
e2e_run list 0 "$CLOISTER" client list --owner "$WORK/owner"
grep -q "sensor-1" "$WORK/list.out" || e2e_fail "client list lacks sensor-1"
e2e_run revoke 0 "$CLOISTER" client revoke "$DEV_ID" --owner "$WORK/owner"
e2e_run dev_whoami_revoked 1 "$CLOISTER" whoami --dir "$WORK/dev1"

# ---------------------------------------------------------------- metrics after the traffic
http_raw metrics 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
http_expect metrics 200
for m in 'cloister_requests_total{transport="http"}' 'cloister_requests_total{transport="coap"}' \
    'cloister_batches_total{transport="http"}' 'cloister_uptime_seconds' \
    'cloister_dropped_total{transport="http",reason="too_large"} 1'; do
    grep -qF "$m" "$WORK/metrics.http" || e2e_fail "metrics lack $m"
done
OSCORE_REQS=$(sed -n 's/^cloister_http_requests_total{route="oscore"} \([0-9]*\).*/\1/p' \
    "$WORK/metrics.http")
[ "${OSCORE_REQS:-0}" -ge 5 ] || e2e_fail "metrics count too few OSCORE requests ($OSCORE_REQS)"
# No payload-derived data: no token, no OSCORE header values.
grep -q "$TOKEN" "$WORK/metrics.http" && e2e_fail "metrics leak the token"
grep -q "$TOKEN" "$WORK/cloisterd.log" && e2e_fail "the daemon log leaks the token"

http_raw healthz_end 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
http_expect healthz_end 200

e2e_stop_daemon TERM || e2e_fail "cloisterd did not stop cleanly"
echo "PASS: http_e2e"
