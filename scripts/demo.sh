#!/usr/bin/env bash
#
# demo.sh - the README's "run" command: builds Cloister and walks the trusted
# core's first path on loopback, with the simulated TEE (which gives NO
# security and says so):
#
#   cloisterd (untrusted host; the core in its own process) ->
#   cloister owner init (owner key + self-signed root) ->
#   cloister measure / verify (DCAP-v3-shaped evidence, simulated) ->
#   cloister provision (claim, check the owner binding, sign the core's CA and
#   identity certificates) -> event type -> enroll two devices (EDHOC with a
#   raw key + one-time token; the core's CA issues their certificates), one of
#   them over HTTP -> publish events over EDHOC + OSCORE -> the archive
#   (SQLite) and the log hold no plaintext -> history -> revoke a device ->
#   restart cloisterd (unseal + replay the sealed log) -> clean shutdown
#
# Every step checks its result; the script stops with exit status 1 at the
# first unexpected one. Everything lives in a temporary directory that is
# removed at exit (KEEP=1 keeps it).
#
# Environment: CL_SKIP_DEPS=1 skips the installer; BUILD_DIR overrides build/;
# CL_RUNTIME=sim runs the core inside cloisterd instead of its own process.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD_DIR:-$root/build}
runtime=${CL_RUNTIME:-process}
work=$(mktemp -d "${TMPDIR:-/tmp}/cloister-demo.XXXXXX")
daemon_pid=""
step=0
steps=12

cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill -TERM "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
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
    if [ -f "$work/cloisterd.log" ]; then
        echo "    cloisterd log (last 20 lines):" >&2
        tail -n 20 "$work/cloisterd.log" | sed 's/^/      /' >&2
    fi
    exit 1
}

# cl NAME ARGS...: runs `cloister ARGS`, shows the command and its output.
cl() {
    local name=$1
    shift
    echo "    \$ cloister $*"
    if ! "$build/cli/cloister" "$@" >"$work/$name.out" 2>&1; then
        sed 's/^/      /' "$work/$name.out"
        return 1
    fi
    sed 's/^/      /' "$work/$name.out"
}

# start_daemon PORT (0: any free port; the restart reuses the first one, which
# the clients have in their configuration)
start_daemon() {
    rm -f "$work/port" "$work/http.port"
    echo "    \$ cloisterd --listen 127.0.0.1:$1 --http-listen 127.0.0.1:${2:-0} --runtime $runtime --data \$WORK/data --platform-dir \$WORK/platform"
    "$build/host/cloisterd" --listen "127.0.0.1:$1" --http-listen "127.0.0.1:${2:-0}" \
        --runtime "$runtime" --data "$work/data" --platform-dir "$work/platform" \
        --print-port-file "$work/port" --print-http-port-file "$work/http.port" \
        >>"$work/cloisterd.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 1 100); do
        [ -s "$work/port" ] && break
        kill -0 "$daemon_pid" 2>/dev/null || { daemon_pid=""; die "cloisterd exited at start"; }
        sleep 0.1
    done
    [ -s "$work/port" ] || die "cloisterd did not start"
    for _ in $(seq 1 50); do [ -s "$work/http.port" ] && break; sleep 0.1; done
    server="coap://127.0.0.1:$(cat "$work/port")"
    http_server="http://127.0.0.1:$(cat "$work/http.port")"
    [ -f "$work/port.first" ] || cp "$work/port" "$work/port.first"
    [ -f "$work/http.port.first" ] || cp "$work/http.port" "$work/http.port.first"
}

stop_daemon() {
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || die "cloisterd did not shut down cleanly"
    daemon_pid=""
}

heading "Dependencies"
if [ "${CL_SKIP_DEPS:-0}" = 1 ]; then
    echo "    skipped (CL_SKIP_DEPS=1)"
else
    bash "$root/scripts/install-deps.sh"
fi

heading "Build (RelWithDebInfo, ${build#"$root"/})"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)" \
    --target cloisterd cloister cloister-core cloister_core_image
ok "cloisterd, cloister, the core image (signed) and cloister-core built"

heading "Start cloisterd (untrusted host; core runtime: $runtime; simulated TEE)"
start_daemon 0 0
ok "CoAP/UDP on ${server#coap://}, HTTP on ${http_server#http://} (SQLite archive, files for the sealed log)"

heading "The owner: a key and a self-signed root certificate"
cl owner_init owner init --dir "$work/owner" --name "Demo owner" || die "owner init"
ok "owner key (0600) and root certificate in \$WORK/owner"

heading "What runs in the TEE: measure the build, verify the core's evidence"
cl measure measure || die "measure"
mrenclave=$(awk '$1 == "mrenclave" {print $2}' "$work/measure.out")
[ ${#mrenclave} = 64 ] || die "no MRENCLAVE printed"
if "$build/cli/cloister" verify --server "$server" --expect-mrenclave "$mrenclave" \
    >"$work/verify_strict.out" 2>&1; then
    die "simulated evidence accepted without --allow-simulated"
fi
echo "    (without --allow-simulated the evidence is refused: $(tail -n 1 "$work/verify_strict.out"))"
cl verify verify --server "$server" --expect-mrenclave "$mrenclave" --allow-simulated ||
    die "verify"
grep -q "SIMULATED - NO SECURITY" "$work/verify.out" || die "simulated evidence not labelled"
ok "quote verified against the simulated root; the result says SIMULATED, never plain OK"

heading "Provision: claim the core, check the owner binding, sign its certificates"
cl provision provision --server "$server" --owner "$work/owner" --expect-mrenclave "$mrenclave" \
    --allow-simulated || die "provision"
cl owner_whoami whoami --dir "$work/owner" || die "owner whoami"
ok "the owner talks to the core over EDHOC + OSCORE"

heading "Enroll two devices with one-time tokens (they may publish temperature only)"
cl token token create --owner "$work/owner" --role device --ttl 10m --name kitchen \
    --publish temperature --json ||
    die "token create"
token=$(sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p' "$work/token.out")
[ ${#token} = 32 ] || die "no token"
cl enroll enroll --server "$server" --token "$token" --dir "$work/thermostat" \
    --name thermostat --owner-cert "$work/owner/owner.pem" || die "enroll"
if "$build/cli/cloister" enroll --server "$server" --token "$token" --dir "$work/thief" \
    --name thief --owner-cert "$work/owner/owner.pem" >"$work/reuse.out" 2>&1; then
    die "a used token enrolled a second client"
fi
echo "    (the same token again: $(tail -n 1 "$work/reuse.out"))"
cl token2 token create --owner "$work/owner" --role device --ttl 10m --name hall \
    --publish temperature --json || die "token create"
token2=$(sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p' "$work/token2.out")
echo "    (the second device speaks EDHOC + OSCORE over HTTP: the host relays, it cannot read)"
cl enroll2 enroll --server "$http_server" --token "$token2" --dir "$work/hall" \
    --name hall-sensor --owner-cert "$work/owner/owner.pem" || die "enroll over HTTP"
ok "two devices enrolled; their keys never left \$WORK/thermostat and \$WORK/hall"

heading "The device publishes events (EDHOC + OSCORE; the archive gets ciphertext)"
cl evtype event-type add temperature --owner "$work/owner" --description "room temperature" \
    --history admin,user || die "event-type add"
marker="kitchen-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')"
cl publish device publish --dir "$work/thermostat" --type temperature --prop celsius=21.5 \
    --prop "room=$marker" --count 3 || die "publish"
if grep -rlaF -- "$marker" "$work/data" "$work/cloisterd.log"; then # archive.sqlite and its WAL too
    die "the event's plaintext reached the host"
fi
ok "3 events archived; '$marker' appears nowhere in the host's files or log"
if "$build/cli/cloister" device publish --dir "$work/thermostat" --type door --prop open=true \
    >"$work/forbidden.out" 2>&1; then
    die "the device published an event type its token did not allow"
fi
echo "    (an event type the token did not allow: $(tail -n 1 "$work/forbidden.out"))"
cl publish2 device publish --dir "$work/hall" --type temperature --prop celsius=19 --count 2 ||
    die "publish over HTTP"
cl history history --dir "$work/owner" --type temperature || die "history"
grep -q "^5 events" "$work/history.out" || die "history did not return the 5 events"
ok "history: the core decrypted the archive rows (both devices) for the owner"

heading "Revoke the device"
dev_id=$(awk '$1 == "id" {print $2}' "$work/enroll.out" | head -n 1)
if [ -z "$dev_id" ]; then
    cl dev_whoami whoami --dir "$work/thermostat" || die "device whoami"
    dev_id=$(awk '$1 == "id" {print $2}' "$work/dev_whoami.out")
fi
cl revoke client revoke "$dev_id" --owner "$work/owner" || die "revoke"
if "$build/cli/cloister" whoami --dir "$work/thermostat" >"$work/revoked.out" 2>&1; then
    die "a revoked device still got in"
fi
echo "    (the device now: $(tail -n 1 "$work/revoked.out"))"
ok "revoked: its sessions dropped, new handshakes refused"

heading "A third-party scenario inside the core: vacant-home-eco (the valve reacts)"
# three devices: the phone says whether it is on the home Wi-Fi, the planner whether anybody
# is expected, the valve (group "valves") receives setpoints; the rules run in the core
for dev in phone:wifi.status planner:planner.presence valve:valve.report; do
    name=${dev%%:*}
    cl "token_$name" token create --owner "$work/owner" --role device --ttl 10m --name "$name" \
        --publish "${dev#*:}" --json >/dev/null || die "token create $name"
    tok=$(sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p' "$work/token_$name.out")
    [ ${#tok} = 32 ] || die "no token for $name"
    "$build/cli/cloister" enroll --server "$server" --token "$tok" --dir "$work/$name" \
        --name "$name" --owner-cert "$work/owner/owner.pem" >"$work/enroll_$name.out" 2>&1 ||
        die "enroll $name"
    "$build/cli/cloister" whoami --dir "$work/$name" >"$work/whoami_$name.out" 2>&1 ||
        die "whoami $name"
    eval "id_$name=\$(awk '\$1 == \"id\" {print \$2}' \"\$work/whoami_$name.out\")"
done
echo "    phone = client $id_phone, planner = client $id_planner, valve = client $id_valve"
cl groups client groups "$id_valve" valves --owner "$work/owner" || die "client groups"
cl scenario scenario install "$root/examples/scenarios/vacant-home-eco.json" --name home \
    --param "phone=$id_phone" --param "planner=$id_planner" --unsigned --owner "$work/owner" ||
    die "scenario install"
"$build/cli/cloister" device listen --dir "$work/valve" --count 1 --timeout 30 \
    >"$work/listen.out" 2>&1 &
listener=$!
for _ in $(seq 1 100); do
    grep -q "waiting for actions" "$work/listen.out" && break
    sleep 0.1
done
echo "    (the valve listens: CoAP Observe on /actions, notifications protected by OSCORE)"
cl away device publish --dir "$work/phone" --type wifi.status --prop connected=false \
    --prop ssid=home || die "publish wifi.status"
cl nobody device publish --dir "$work/planner" --type planner.presence \
    --prop someone_home=false || die "publish planner.presence"
wait "$listener" || { cat "$work/listen.out"; die "the valve received no action"; }
sed 's/^/    /' "$work/listen.out"
grep -q "eco" "$work/listen.out" || die "the valve's action is not eco"
if grep -rlaF -- "someone_home" "$work/data" "$work/cloisterd.log"; then
    die "event plaintext reached the host"
fi
ok "phone away + nobody planned: the core's rule sent the valve 'eco' (the host saw ciphertext)"

heading "Restart cloisterd: the core unseals its snapshot and replays the sealed log"
stop_daemon
start_daemon "$(cat "$work/port.first")" "$(cat "$work/http.port.first")"
cl owner_again whoami --dir "$work/owner" || die "owner after restart"
cl list client list --owner "$work/owner" || die "client list after restart"
grep -q "thermostat" "$work/list.out" || die "the client list did not survive the restart"
ok "state survived the restart; the device is still revoked"

heading "Done"
echo "    cloisterd log (one structured line per event; no payloads, keys or tokens):"
grep -E "core open|sealed|enrolled|revoked|listening" "$work/cloisterd.log" | head -n 12 |
    sed 's/^/      /' || true
stop_daemon
ok "cloisterd shut down cleanly (SIGTERM: the core wiped itself, storage closed, exit 0)"
ok "the trusted core demo completed"
