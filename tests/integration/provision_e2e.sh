#!/usr/bin/env bash
# tests/integration/provision_e2e.sh - the quickstart path end to end on
# loopback, with the simulated TEE:
#
#   cloisterd (random port) -> owner init -> measure -> verify
#   --allow-simulated -> provision -> token create -> enroll -> whoami ->
#   device publish -> client list -> client revoke -> whoami fails
#
# plus the negatives that need a running core: verify without
# --allow-simulated refuses (exit 1), a wrong --expect-mrenclave refuses,
# provisioning by a second owner is "claimed by someone else" (exit 1), a
# used token does not enroll twice.
#
# usage: provision_e2e.sh CLOISTERD CLOISTER [CORE_IMAGE]
# (ctest passes $<TARGET_FILE:cloisterd> $<TARGET_FILE:cloister>
#  $<TARGET_FILE:cloister_core_image>). Exit 0 when every step behaves.
set -u

CLOISTERD=${1:?usage: provision_e2e.sh CLOISTERD CLOISTER [CORE_IMAGE]}
CLOISTER=${2:?usage: provision_e2e.sh CLOISTERD CLOISTER [CORE_IMAGE]}
IMAGE=${3:-}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cl_e2e.XXXXXX")
DAEMON_PID=
export CLOISTER_COAP_TIMEOUT_MS=500 # fail fast when the daemon is gone

cleanup() {
    if [ -n "$DAEMON_PID" ]; then
        kill "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
    fi
    if [ "${KEEP:-}" = 1 ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    if [ -f "$WORK/cloisterd.log" ]; then
        echo "--- cloisterd log (last 40 lines)" >&2
        tail -n 40 "$WORK/cloisterd.log" >&2
    fi
    exit 1
}

# run NAME EXPECTED_EXIT CMD...: runs a step, keeps its output in $WORK/NAME.out
run() {
    local name=$1 want=$2
    shift 2
    "$@" >"$WORK/$name.out" 2>&1
    local got=$?
    echo "== $name (exit $got)"
    sed 's/^/   /' "$WORK/$name.out"
    [ "$got" = "$want" ] || fail "$name: exit $got, expected $want"
}

IMAGE_ARGS=()
if [ -n "$IMAGE" ]; then
    IMAGE_ARGS=(--image "$IMAGE")
fi
DAEMON_IMAGE_ARGS=()
if [ -n "$IMAGE" ]; then
    DAEMON_IMAGE_ARGS=(--core-image "$IMAGE")
fi

# ---------------------------------------------------------------- the daemon
# TODO(lead): adjust flags to cloisterd's final interface (runtime, platform dir).
"$CLOISTERD" --listen 127.0.0.1:0 --data "$WORK/data" --platform-dir "$WORK/platform" \
    --runtime "${CL_RUNTIME:-sim}" "${DAEMON_IMAGE_ARGS[@]}" \
    --print-port-file "$WORK/port" >"$WORK/cloisterd.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 1 100); do
    [ -s "$WORK/port" ] && break
    kill -0 "$DAEMON_PID" 2>/dev/null || fail "cloisterd exited at start"
    sleep 0.1
done
[ -s "$WORK/port" ] || fail "cloisterd did not write its port"
SERVER="coap://127.0.0.1:$(cat "$WORK/port")"
echo "cloisterd at $SERVER"

# ---------------------------------------------------------------- owner
run owner_init 0 "$CLOISTER" owner init --dir "$WORK/owner" --name "E2E owner"
[ "$(stat -c %a "$WORK/owner/owner.key")" = 600 ] || fail "owner.key is not 0600"
run owner_init_again 2 "$CLOISTER" owner init --dir "$WORK/owner"

run measure 0 "$CLOISTER" measure "${IMAGE_ARGS[@]}"
MRENCLAVE=$(awk '$1 == "mrenclave" {print $2}' "$WORK/measure.out")
[ ${#MRENCLAVE} = 64 ] || fail "measure printed no MRENCLAVE"

# ---------------------------------------------------------------- attestation
run verify_no_sim 1 "$CLOISTER" verify --server "$SERVER" --expect-mrenclave "$MRENCLAVE"
run verify_wrong_mr 1 "$CLOISTER" verify --server "$SERVER" --allow-simulated \
    --expect-mrenclave 0000000000000000000000000000000000000000000000000000000000000000
run verify 0 "$CLOISTER" verify --server "$SERVER" --expect-mrenclave "$MRENCLAVE" --allow-simulated
grep -q "SIMULATED - NO SECURITY" "$WORK/verify.out" || fail "simulated result not labelled"
run verify_json 0 "$CLOISTER" verify --server "$SERVER" --expect-mrenclave "$MRENCLAVE" \
    --allow-simulated --json
grep -q '"verdict": "simulated"' "$WORK/verify_json.out" || fail "JSON verdict"

# ---------------------------------------------------------------- provision
run provision 0 "$CLOISTER" provision --server "$SERVER" --owner "$WORK/owner" \
    --expect-mrenclave "$MRENCLAVE" --allow-simulated
for f in core-ca.pem core-identity.pem core.conf; do
    [ -f "$WORK/owner/$f" ] || fail "provision did not write $f"
done
run verify_owner 0 "$CLOISTER" verify --server "$SERVER" --expect-mrenclave "$MRENCLAVE" \
    --allow-simulated --owner "$WORK/owner"
run owner_whoami 0 "$CLOISTER" whoami --dir "$WORK/owner"
grep -q "role  owner" "$WORK/owner_whoami.out" || fail "owner whoami"

# A second owner finds the core claimed by someone else.
run mallory_init 0 "$CLOISTER" owner init --dir "$WORK/mallory"
run mallory_provision 1 "$CLOISTER" provision --server "$SERVER" --owner "$WORK/mallory" \
    --expect-mrenclave "$MRENCLAVE" --allow-simulated
grep -q "claimed by someone else" "$WORK/mallory_provision.out" || fail "claim not detected"

# ---------------------------------------------------------------- enrollment
run token 0 "$CLOISTER" token create --owner "$WORK/owner" --role device --ttl 10m \
    --name sensor-1 --json
TOKEN=$(sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p' "$WORK/token.out")
[ ${#TOKEN} = 32 ] || fail "no token"

run enroll 0 "$CLOISTER" enroll --server "$SERVER" --token "$TOKEN" --dir "$WORK/dev1" \
    --name sensor-1 --owner-cert "$WORK/owner/owner.pem" --ca "$WORK/owner/core-ca.pem"
for f in client.pem chain.pem client.conf client.key; do
    [ -f "$WORK/dev1/$f" ] || fail "enroll did not write $f"
done
run enroll_reuse 1 "$CLOISTER" enroll --server "$SERVER" --token "$TOKEN" --dir "$WORK/dev2" \
    --name sensor-2 --owner-cert "$WORK/owner/owner.pem"
[ ! -e "$WORK/dev2/client.key" ] || fail "a refused enrollment left a key behind"

run dev_whoami 0 "$CLOISTER" whoami --dir "$WORK/dev1"
grep -q "role  device" "$WORK/dev_whoami.out" || fail "device whoami"
DEV_ID=$(awk '$1 == "id" {print $2}' "$WORK/dev_whoami.out")

run publish 0 "$CLOISTER" device publish --dir "$WORK/dev1" --type temperature \
    --prop celsius=21.5 --prop room=kitchen --prop ok=true --count 3
grep -q "published 3 events" "$WORK/publish.out" || fail "publish"

# ---------------------------------------------------------------- revocation
run list 0 "$CLOISTER" client list --owner "$WORK/owner"
grep -q "sensor-1" "$WORK/list.out" || fail "client list lacks sensor-1"
run revoke 0 "$CLOISTER" client revoke "$DEV_ID" --owner "$WORK/owner"
run dev_whoami_revoked 1 "$CLOISTER" whoami --dir "$WORK/dev1"
run list_after 0 "$CLOISTER" client list --owner "$WORK/owner" --json
grep -q '"revoked": true' "$WORK/list_after.out" || fail "revocation not listed"

echo "PASS: provision_e2e"
