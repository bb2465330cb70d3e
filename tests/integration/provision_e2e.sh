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

# shellcheck source-path=SCRIPTDIR source=e2e_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_init cl_e2e
export CLOISTER_COAP_TIMEOUT_MS=500 # fail fast when the daemon is gone

IMAGE_ARGS=()
DAEMON_IMAGE_ARGS=()
if [ -n "$IMAGE" ]; then
    IMAGE_ARGS=(--image "$IMAGE")
    DAEMON_IMAGE_ARGS=(--core-image "$IMAGE")
fi

# ---------------------------------------------------------------- the daemon
# TODO(lead): adjust flags to cloisterd's final interface (runtime, platform dir).
e2e_start_daemon "$CLOISTERD" --data "$WORK/data" --platform-dir "$WORK/platform" \
    --runtime "${CL_RUNTIME:-sim}" "${DAEMON_IMAGE_ARGS[@]}"
echo "cloisterd at $SERVER"

# ---------------------------------------------------------------- owner
e2e_run owner_init 0 "$CLOISTER" owner init --dir "$WORK/owner" --name "E2E owner"
[ "$(stat -c %a "$WORK/owner/owner.key")" = 600 ] || e2e_fail "owner.key is not 0600"
e2e_run owner_init_again 2 "$CLOISTER" owner init --dir "$WORK/owner"

e2e_run measure 0 "$CLOISTER" measure "${IMAGE_ARGS[@]}"
MRENCLAVE=$(awk '$1 == "mrenclave" {print $2}' "$WORK/measure.out")
[ ${#MRENCLAVE} = 64 ] || e2e_fail "measure printed no MRENCLAVE"

# ---------------------------------------------------------------- attestation
e2e_run verify_no_sim 1 "$CLOISTER" verify --server "$SERVER" --expect-mrenclave "$MRENCLAVE"
e2e_run verify_wrong_mr 1 "$CLOISTER" verify --server "$SERVER" --allow-simulated \
    --expect-mrenclave 0000000000000000000000000000000000000000000000000000000000000000
e2e_run verify 0 "$CLOISTER" verify --server "$SERVER" --expect-mrenclave "$MRENCLAVE" \
    --allow-simulated
grep -q "SIMULATED - NO SECURITY" "$WORK/verify.out" || e2e_fail "simulated result not labelled"
e2e_run verify_json 0 "$CLOISTER" verify --server "$SERVER" --expect-mrenclave "$MRENCLAVE" \
    --allow-simulated --json
grep -q '"verdict": "simulated"' "$WORK/verify_json.out" || e2e_fail "JSON verdict"

# ---------------------------------------------------------------- provision
e2e_run provision 0 "$CLOISTER" provision --server "$SERVER" --owner "$WORK/owner" \
    --expect-mrenclave "$MRENCLAVE" --allow-simulated
for f in core-ca.pem core-identity.pem core.conf; do
    [ -f "$WORK/owner/$f" ] || e2e_fail "provision did not write $f"
done
e2e_run verify_owner 0 "$CLOISTER" verify --server "$SERVER" --expect-mrenclave "$MRENCLAVE" \
    --allow-simulated --owner "$WORK/owner"
e2e_run owner_whoami 0 "$CLOISTER" whoami --dir "$WORK/owner"
grep -q "role  owner" "$WORK/owner_whoami.out" || e2e_fail "owner whoami"

# A second owner finds the core claimed by someone else.
e2e_run mallory_init 0 "$CLOISTER" owner init --dir "$WORK/mallory"
e2e_run mallory_provision 1 "$CLOISTER" provision --server "$SERVER" --owner "$WORK/mallory" \
    --expect-mrenclave "$MRENCLAVE" --allow-simulated
grep -q "claimed by someone else" "$WORK/mallory_provision.out" || e2e_fail "claim not detected"

# ---------------------------------------------------------------- enrollment
e2e_run token 0 "$CLOISTER" token create --owner "$WORK/owner" --role device --ttl 10m \
    --name sensor-1 --json
TOKEN=$(sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p' "$WORK/token.out")
[ ${#TOKEN} = 32 ] || e2e_fail "no token"

e2e_run enroll 0 "$CLOISTER" enroll --server "$SERVER" --token "$TOKEN" --dir "$WORK/dev1" \
    --name sensor-1 --owner-cert "$WORK/owner/owner.pem" --ca "$WORK/owner/core-ca.pem"
for f in client.pem chain.pem client.conf client.key; do
    [ -f "$WORK/dev1/$f" ] || e2e_fail "enroll did not write $f"
done
e2e_run enroll_reuse 1 "$CLOISTER" enroll --server "$SERVER" --token "$TOKEN" --dir "$WORK/dev2" \
    --name sensor-2 --owner-cert "$WORK/owner/owner.pem"
[ ! -e "$WORK/dev2/client.key" ] || e2e_fail "a refused enrollment left a key behind"

e2e_run dev_whoami 0 "$CLOISTER" whoami --dir "$WORK/dev1"
grep -q "role  device" "$WORK/dev_whoami.out" || e2e_fail "device whoami"
DEV_ID=$(awk '$1 == "id" {print $2}' "$WORK/dev_whoami.out")

e2e_run publish_unknown 1 "$CLOISTER" device publish --dir "$WORK/dev1" --type temperature \
    --prop celsius=21.5
grep -q "unknown-event-type" "$WORK/publish_unknown.out" || e2e_fail "unknown type not refused"
e2e_run evtype 0 "$CLOISTER" event-type add temperature --owner "$WORK/owner" \
    --description "room temperature" --history admin,user
e2e_run evtype_list 0 "$CLOISTER" event-type list --owner "$WORK/owner"
grep -q "temperature" "$WORK/evtype_list.out" || e2e_fail "event-type list"
e2e_run publish 0 "$CLOISTER" device publish --dir "$WORK/dev1" --type temperature \
    --prop celsius=21.5 --prop room=kitchen --prop ok=true --count 3
grep -q "published 3 events" "$WORK/publish.out" || e2e_fail "publish"
e2e_run history 0 "$CLOISTER" history --dir "$WORK/owner" --type temperature
grep -q "^3 events" "$WORK/history.out" || e2e_fail "history does not show the 3 events"
grep -q '"room": "kitchen"' "$WORK/history.out" || e2e_fail "history lacks the properties"
e2e_run history_device 1 "$CLOISTER" history --dir "$WORK/dev1" --type temperature
grep -q "forbidden" "$WORK/history_device.out" || e2e_fail "a device read the history"

# ---------------------------------------------------------------- permissions
e2e_run permit 0 "$CLOISTER" client permit "$DEV_ID" --publish humidity --owner "$WORK/owner"
e2e_run publish_not_permitted 1 "$CLOISTER" device publish --dir "$WORK/dev1" --type temperature \
    --prop celsius=22
grep -q "forbidden" "$WORK/publish_not_permitted.out" || e2e_fail "permissions not enforced"
e2e_run permit_back 0 "$CLOISTER" client permit "$DEV_ID" --publish "*" --owner "$WORK/owner"
e2e_run publish_permitted 0 "$CLOISTER" device publish --dir "$WORK/dev1" --type temperature \
    --prop celsius=22

# ---------------------------------------------------------------- revocation
e2e_run list 0 "$CLOISTER" client list --owner "$WORK/owner"
grep -q "sensor-1" "$WORK/list.out" || e2e_fail "client list lacks sensor-1"
e2e_run revoke 0 "$CLOISTER" client revoke "$DEV_ID" --owner "$WORK/owner"
e2e_run dev_whoami_revoked 1 "$CLOISTER" whoami --dir "$WORK/dev1"
e2e_run list_after 0 "$CLOISTER" client list --owner "$WORK/owner" --json
grep -q '"revoked": true' "$WORK/list_after.out" || e2e_fail "revocation not listed"

echo "PASS: provision_e2e"
