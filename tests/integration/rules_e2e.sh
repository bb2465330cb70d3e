#!/usr/bin/env bash
# tests/integration/rules_e2e.sh - rules, actions and scenarios end to end on
# loopback, with the simulated TEE (docs/model.md):
#
#   cloisterd (CoAP and HTTP) -> owner init -> provision -> three devices
#   enrolled (phone, planner, valve; the valve in group "valves") ->
#   publisher key, `scenario sign` -> a tampered copy is refused
#   (bad-signature) -> `scenario install` of examples/scenarios/vacant-home-eco.json
#   -> `device listen --count 1` for the valve (CoAP Observe) -> the phone
#   reports it is away, the planner that nobody is home -> the valve prints
#   an eco action -> the phone comes home -> the valve (HTTP long poll this
#   time) prints a comfort action
#
# plus the rules commands on a rule of our own: action types with a schema,
# `rule validate` (a sample event, a file not installed), create-only and
# --replace --if-version conflicts, show, disable/enable, remove; a device
# may not add rules (forbidden); scenario list/remove.
#
# The template is written on its own; what this script assumes of it is in
# the variables below (parameter names, what the events carry, the words in
# the actions) and can be changed from the environment.
#
# usage: rules_e2e.sh CLOISTERD CLOISTER [CORE_IMAGE]   (CL_RUNTIME=process
# runs the core in its own process). Exit 0 when every step behaves.
set -u

CLOISTERD=${1:?usage: rules_e2e.sh CLOISTERD CLOISTER [CORE_IMAGE]}
CLOISTER=${2:?usage: rules_e2e.sh CLOISTERD CLOISTER [CORE_IMAGE]}
IMAGE=${3:-}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE_SRC=${TEMPLATE_SRC:-$HERE/../../examples/scenarios/vacant-home-eco.json}
# What the template is expected to take and to react to.
PARAM_PHONE=${PARAM_PHONE:-phone}       # a "client" parameter: the phone
PARAM_PLANNER=${PARAM_PLANNER:-planner} # a "client" parameter: the presence planner
PARAM_VALVES=${PARAM_VALVES:-valves}    # a "group" parameter: the valves
WIFI_TYPE=${WIFI_TYPE:-wifi.status}
PRESENCE_TYPE=${PRESENCE_TYPE:-planner.presence}
read -r -a WIFI_AWAY <<<"${WIFI_AWAY:---prop connected=false --prop ssid=none}"
read -r -a WIFI_HOME <<<"${WIFI_HOME:---prop connected=true --prop ssid=home}"
read -r -a NOBODY_HOME <<<"${NOBODY_HOME:---prop someone_home=false}"
WIFI_AWAY_JSON=${WIFI_AWAY_JSON:-'{"connected": false, "ssid": "none"}'} # WIFI_AWAY for validate
ECO_WORD=${ECO_WORD:-eco}
COMFORT_WORD=${COMFORT_WORD:-comfort}

# shellcheck source-path=SCRIPTDIR source=e2e_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/e2e_lib.sh"
e2e_init cl_rules_e2e
export CLOISTER_COAP_TIMEOUT_MS=500 # fail fast when the daemon is gone

LISTEN_PID=''
# Also stop a listener still running when the script ends.
cleanup() {
    [ -n "$LISTEN_PID" ] && kill "$LISTEN_PID" 2>/dev/null
    e2e_cleanup
}
trap cleanup EXIT

[ -f "$TEMPLATE_SRC" ] || e2e_fail "no template at $TEMPLATE_SRC"
for p in "$PARAM_PHONE" "$PARAM_PLANNER" "$PARAM_VALVES"; do
    grep -q "\"$p\"" "$TEMPLATE_SRC" || e2e_fail "the template has no parameter \"$p\""
done

IMAGE_ARGS=()
DAEMON_IMAGE_ARGS=()
if [ -n "$IMAGE" ]; then
    IMAGE_ARGS=(--image "$IMAGE")
    DAEMON_IMAGE_ARGS=(--core-image "$IMAGE")
fi

# listen_start NAME ARGS...: `cloister device listen ARGS` in the background
# (output in $WORK/NAME.out); returns once it waits for actions.
listen_start() {
    local name=$1
    shift
    "$CLOISTER" device listen "$@" >"$WORK/$name.out" 2>&1 &
    LISTEN_PID=$!
    for _ in $(seq 1 100); do
        grep -q "waiting for actions" "$WORK/$name.out" && return 0
        kill -0 "$LISTEN_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$WORK/$name.out" >&2
    e2e_fail "$name: the listener did not start"
}

# listen_wait NAME EXPECTED_EXIT: waits for the listener and checks its exit status.
listen_wait() {
    local name=$1 want=$2 rc
    wait "$LISTEN_PID"
    rc=$?
    LISTEN_PID=''
    echo "== $name (exit $rc)"
    sed 's/^/   /' "$WORK/$name.out"
    [ "$rc" = "$want" ] || e2e_fail "$name: exit $rc, expected $want"
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
HTTP_SERVER="http://127.0.0.1:$(cat "$WORK/http_port")"
echo "cloisterd at $SERVER and $HTTP_SERVER"

# ---------------------------------------------------------------- owner and core
OWNER=$WORK/owner
e2e_run owner_init 0 "$CLOISTER" owner init --dir "$OWNER" --name "Rules owner"
e2e_run measure 0 "$CLOISTER" measure "${IMAGE_ARGS[@]}"
MRENCLAVE=$(awk '$1 == "mrenclave" {print $2}' "$WORK/measure.out")
[ ${#MRENCLAVE} = 64 ] || e2e_fail "measure printed no MRENCLAVE"
e2e_run provision 0 "$CLOISTER" provision --server "$SERVER" --owner "$OWNER" \
    --expect-mrenclave "$MRENCLAVE" --allow-simulated

# ---------------------------------------------------------------- three devices
# enroll_device NAME: token, enrollment into $WORK/NAME; sets ID_NAME (e.g. ID_phone).
enroll_device() {
    local name=$1 token id
    e2e_run "token_$name" 0 "$CLOISTER" token create --owner "$OWNER" --role device --ttl 10m \
        --name "$name" --json
    token=$(sed -n 's/.*"token": "\([0-9a-f]*\)".*/\1/p' "$WORK/token_$name.out")
    [ ${#token} = 32 ] || e2e_fail "no token for $name"
    e2e_run "enroll_$name" 0 "$CLOISTER" enroll --server "$SERVER" --token "$token" \
        --dir "$WORK/$name" --name "$name" --owner-cert "$OWNER/owner.pem" \
        --ca "$OWNER/core-ca.pem"
    e2e_run "whoami_$name" 0 "$CLOISTER" whoami --dir "$WORK/$name"
    id=$(awk '$1 == "id" {print $2}' "$WORK/whoami_$name.out")
    [ -n "$id" ] || e2e_fail "no id for $name"
    printf -v "ID_$name" '%s' "$id"
}
enroll_device phone
enroll_device planner
enroll_device valve
# shellcheck disable=SC2154 # set by enroll_device through printf -v
echo "phone $ID_phone, planner $ID_planner, valve $ID_valve"

e2e_run groups 0 "$CLOISTER" client groups "$ID_valve" valves --owner "$OWNER"
e2e_run groups_bad 2 "$CLOISTER" client groups "$ID_valve" "bad/name" --owner "$OWNER"
e2e_run client_list 0 "$CLOISTER" client list --owner "$OWNER"
grep -E "^$ID_valve .*valves" "$WORK/client_list.out" >/dev/null ||
    e2e_fail "client list does not show the valve in group valves"
e2e_run client_list_json 0 "$CLOISTER" client list --owner "$OWNER" --json
grep -q '"groups": \["valves"\]' "$WORK/client_list_json.out" || e2e_fail "groups in --json"

# ---------------------------------------------------------------- our own rule
cat >"$WORK/setpoint.schema.json" <<'EOF'
{"type": "object",
 "properties": {"mode": {"enum": ["eco", "comfort"]}, "celsius": {"type": "number"}},
 "required": ["mode"]}
EOF
e2e_run acttype_add 0 "$CLOISTER" action-type add e2e.setpoint --description "test setpoint" \
    --schema "$WORK/setpoint.schema.json" --owner "$OWNER"
e2e_run acttype_list 0 "$CLOISTER" action-type list --owner "$OWNER"
grep -E "^e2e.setpoint +[0-9]+ +yes" "$WORK/acttype_list.out" >/dev/null ||
    e2e_fail "action-type list does not show e2e.setpoint with its schema"
e2e_run evtype_add 0 "$CLOISTER" event-type add e2e.temp --owner "$OWNER" \
    --schema "$WORK/setpoint.schema.json"
e2e_run evtype_unused 0 "$CLOISTER" event-type add e2e.unused --owner "$OWNER"
e2e_run evtype_remove 0 "$CLOISTER" event-type remove e2e.unused --owner "$OWNER"
e2e_run evtype_list 0 "$CLOISTER" event-type list --owner "$OWNER"
grep -q "^e2e.unused " "$WORK/evtype_list.out" && e2e_fail "a removed event type is still listed"

cat >"$WORK/sample-rule.json" <<EOF
{
  "name": "e2e.cold",
  "description": "a test rule: cold means comfort for the valve",
  "on": ["e2e.temp"],
  "when": {"all": [{"prop": "celsius", "op": "lt", "value": 18}]},
  "then": [{"action": "e2e.setpoint", "target": $ID_valve,
            "properties": {"mode": "comfort", "celsius": "{{event.properties.celsius}}"}}]
}
EOF
printf '{"name": "e2e.broken",\n  "on": ["e2e.temp"]\n  "then": []}\n' >"$WORK/broken-rule.json"
e2e_run rule_broken_json 2 "$CLOISTER" rule add "$WORK/broken-rule.json" --owner "$OWNER"
grep -q "broken-rule.json line 3, column" "$WORK/rule_broken_json.out" ||
    e2e_fail "a JSON error is not reported with its line"

# validate without installing: a matching and a non-matching event
e2e_run validate_file 0 "$CLOISTER" rule validate --file "$WORK/sample-rule.json" \
    --type e2e.temp --props '{"mode": "eco", "celsius": 16.5}' --owner "$OWNER"
grep -q "matched  yes" "$WORK/validate_file.out" || e2e_fail "validate: not matched"
grep -q "e2e.setpoint -> $ID_valve" "$WORK/validate_file.out" ||
    e2e_fail "validate does not show the action"
grep -q '"celsius": 16.5' "$WORK/validate_file.out" || e2e_fail "validate: placeholder not filled"
e2e_run validate_nomatch 0 "$CLOISTER" rule validate --file "$WORK/sample-rule.json" \
    --type e2e.temp --props '{"mode": "eco", "celsius": 21}' --owner "$OWNER"
grep -q "matched  no" "$WORK/validate_nomatch.out" || e2e_fail "validate: matched a warm event"

# a device may not add rules
e2e_run rule_add_device 1 "$CLOISTER" rule add "$WORK/sample-rule.json" --dir "$WORK/phone"
grep -q "forbidden" "$WORK/rule_add_device.out" || e2e_fail "a device added a rule"

# create only, then replace under a version condition
e2e_run rule_add 0 "$CLOISTER" rule add "$WORK/sample-rule.json" --owner "$OWNER"
grep -q "rule 'e2e.cold' created (version 1)" "$WORK/rule_add.out" || e2e_fail "rule add"
e2e_run rule_add_again 1 "$CLOISTER" rule add "$WORK/sample-rule.json" --owner "$OWNER"
grep -q "exists already (version 1)" "$WORK/rule_add_again.out" ||
    e2e_fail "a second rule add did not explain the conflict"
e2e_run rule_replace 0 "$CLOISTER" rule add "$WORK/sample-rule.json" --replace --if-version 1 \
    --owner "$OWNER"
e2e_run rule_replace_stale 1 "$CLOISTER" rule add "$WORK/sample-rule.json" --replace \
    --if-version 1 --owner "$OWNER"
grep -q "is at version 2, not 1" "$WORK/rule_replace_stale.out" ||
    e2e_fail "a stale --if-version was not explained"
echo '{"type": "e2e.temp", "properties": {"mode": "eco", "celsius": 10}}' >"$WORK/cold.json"
e2e_run validate_installed 0 "$CLOISTER" rule validate e2e.cold --event "$WORK/cold.json" \
    --source "$ID_phone" --owner "$OWNER"
grep -q "matched  yes" "$WORK/validate_installed.out" || e2e_fail "validate NAME"
e2e_run rule_disable 0 "$CLOISTER" rule disable e2e.cold --owner "$OWNER"
e2e_run rule_show 0 "$CLOISTER" rule show e2e.cold --owner "$OWNER"
grep -q "enabled  no" "$WORK/rule_show.out" || e2e_fail "rule show after disable"
grep -q '"name": "e2e.cold"' "$WORK/rule_show.out" || e2e_fail "rule show lacks the document"
e2e_run rule_enable 0 "$CLOISTER" rule enable e2e.cold --owner "$OWNER"

# The rule at work: a cold reading from the phone reaches the valve, over CoAP Observe
# and over HTTP long poll.
listen_start listen_cold --dir "$WORK/valve" --count 1 --timeout 30
e2e_run publish_cold 0 "$CLOISTER" device publish --dir "$WORK/phone" --type e2e.temp \
    --prop mode=eco --prop celsius=16
listen_wait listen_cold 0
grep -q 'e2e.setpoint  *{"mode": "comfort", "celsius": 16}  rule e2e.cold' \
    "$WORK/listen_cold.out" || e2e_fail "the valve did not get the rule's action"
listen_start listen_cold_http --dir "$WORK/valve" --server "$HTTP_SERVER" --count 1 \
    --timeout 30 --json
e2e_run publish_colder 0 "$CLOISTER" device publish --dir "$WORK/phone" --type e2e.temp \
    --prop mode=eco --prop celsius=12.5
listen_wait listen_cold_http 0
grep -q '"celsius": 12.5' "$WORK/listen_cold_http.out" ||
    e2e_fail "the valve did not get the rule's action over HTTP"
e2e_run publish_warm 0 "$CLOISTER" device publish --dir "$WORK/phone" --type e2e.temp \
    --prop mode=eco --prop celsius=21
e2e_run listen_warm 1 "$CLOISTER" device listen --dir "$WORK/valve" --count 1 --timeout 2
grep -q "timed out after 2 s: 0 of 1 action arrived" "$WORK/listen_warm.out" ||
    e2e_fail "a warm reading caused an action, or an acknowledged one came again"
e2e_run rule_list_user 0 "$CLOISTER" rule list --owner "$OWNER"
grep -E "^e2e.cold +[0-9]+ +yes +ok" "$WORK/rule_list_user.out" >/dev/null ||
    e2e_fail "rule list does not show e2e.cold enabled and ok"
e2e_run acttype_in_use 1 "$CLOISTER" action-type remove e2e.setpoint --owner "$OWNER"
e2e_run rule_remove 0 "$CLOISTER" rule remove e2e.cold --owner "$OWNER"
e2e_run rule_show_gone 1 "$CLOISTER" rule show e2e.cold --owner "$OWNER"
e2e_run acttype_remove 0 "$CLOISTER" action-type remove e2e.setpoint --owner "$OWNER"

# ---------------------------------------------------------------- the publisher
TEMPLATE=$WORK/vacant-home-eco.json
cp "$TEMPLATE_SRC" "$TEMPLATE"
PUBLISHER=$(sed -n 's/^[[:space:]]*"publisher"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' \
    "$TEMPLATE" | head -n 1)
[ -n "$PUBLISHER" ] || e2e_fail "the template names no publisher"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/publisher.key" \
    2>/dev/null || e2e_fail "openssl genpkey"
chmod 600 "$WORK/publisher.key"
e2e_run sign 0 "$CLOISTER" scenario sign "$TEMPLATE" --key "$WORK/publisher.key" \
    --publisher "$PUBLISHER" --pub-out "$WORK/publisher.pem"
[ -s "$TEMPLATE.sig" ] || e2e_fail "scenario sign wrote no $TEMPLATE.sig"
FINGERPRINT=$(awk '$1 == "key" && $2 == "fingerprint" {print $3}' "$WORK/sign.out")
e2e_run publisher_add 0 "$CLOISTER" publisher add "$PUBLISHER" --key "$WORK/publisher.pem" \
    --owner "$OWNER"
e2e_run publisher_list 0 "$CLOISTER" publisher list --owner "$OWNER"
grep -q "$FINGERPRINT" "$WORK/publisher_list.out" || e2e_fail "publisher list: fingerprint"
e2e_run publisher_again 1 "$CLOISTER" publisher add "$PUBLISHER" --key "$WORK/publisher.pem" \
    --owner "$OWNER"

PARAMS=(--param "$PARAM_PHONE=$ID_phone" --param "$PARAM_PLANNER=$ID_planner"
    --param "$PARAM_VALVES=valves")

# A copy changed after signing (one space more: still the same JSON) is refused, and
# nothing is created.
cp "$TEMPLATE" "$WORK/tampered.json"
printf ' \n' >>"$WORK/tampered.json"
cmp -s "$TEMPLATE" "$WORK/tampered.json" && e2e_fail "could not tamper with the template"
cp "$TEMPLATE.sig" "$WORK/tampered.json.sig"
e2e_run install_tampered 1 "$CLOISTER" scenario install "$WORK/tampered.json" --name tampered \
    "${PARAMS[@]}" --owner "$OWNER"
grep -q "bad-signature" "$WORK/install_tampered.out" || e2e_fail "tampering not detected"
# A signature by another key for the same publisher name is refused too.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/mallory.key" \
    2>/dev/null || e2e_fail "openssl genpkey"
chmod 600 "$WORK/mallory.key"
e2e_run sign_mallory 0 "$CLOISTER" scenario sign "$TEMPLATE" --key "$WORK/mallory.key" \
    --publisher "$PUBLISHER" --out "$WORK/mallory.sig"
e2e_run install_mallory 1 "$CLOISTER" scenario install "$TEMPLATE" --name mallory \
    --signature "$WORK/mallory.sig" "${PARAMS[@]}" --owner "$OWNER"
grep -q "bad-signature" "$WORK/install_mallory.out" || e2e_fail "a foreign key was accepted"
e2e_run scenario_list_empty 0 "$CLOISTER" scenario list --owner "$OWNER"
grep -qE "^(tampered|mallory) " "$WORK/scenario_list_empty.out" &&
    e2e_fail "a refused scenario was installed"

# ---------------------------------------------------------------- the scenario
e2e_run install 0 "$CLOISTER" scenario install "$TEMPLATE" --name home "${PARAMS[@]}" \
    --owner "$OWNER"
grep -q "signed by   $PUBLISHER" "$WORK/install.out" || e2e_fail "install: not signed by $PUBLISHER"
grep -q "rule  *home\." "$WORK/install.out" || e2e_fail "install created no rule"
e2e_run install_twice 1 "$CLOISTER" scenario install "$TEMPLATE" --name home "${PARAMS[@]}" \
    --owner "$OWNER"
e2e_run scenario_list 0 "$CLOISTER" scenario list --owner "$OWNER"
grep -qE "^home +[^ ]+ +[^ ]+ +$PUBLISHER" "$WORK/scenario_list.out" ||
    e2e_fail "scenario list does not show home signed by $PUBLISHER"
e2e_run rule_list 0 "$CLOISTER" rule list --owner "$OWNER"
RULE=$(awk '$1 ~ /^home\./ {print $1; exit}' "$WORK/rule_list.out")
[ -n "$RULE" ] || e2e_fail "rule list shows no rule of the scenario"

# rule validate on a sample event: runs, prints whether it matched
e2e_run validate_scenario_rule 0 "$CLOISTER" rule validate "$RULE" --type "$WIFI_TYPE" \
    --props "$WIFI_AWAY_JSON" --source "$ID_phone" --owner "$OWNER"
grep -q "^matched  " "$WORK/validate_scenario_rule.out" || e2e_fail "rule validate output"
e2e_run validate_json 0 "$CLOISTER" rule validate "$RULE" --type "$WIFI_TYPE" \
    --props "$WIFI_AWAY_JSON" --source "$ID_phone" --owner "$OWNER" --json
grep -q '"matched": ' "$WORK/validate_json.out" || e2e_fail "rule validate --json"

# ---------------------------------------------------------------- away: eco (CoAP Observe)
listen_start listen_eco --dir "$WORK/valve" --count 1 --timeout 60
e2e_run wifi_away 0 "$CLOISTER" device publish --dir "$WORK/phone" --type "$WIFI_TYPE" \
    "${WIFI_AWAY[@]}"
e2e_run nobody_home 0 "$CLOISTER" device publish --dir "$WORK/planner" --type "$PRESENCE_TYPE" \
    "${NOBODY_HOME[@]}"
listen_wait listen_eco 0
grep -qi "$ECO_WORD" "$WORK/listen_eco.out" || e2e_fail "the valve got no $ECO_WORD action"
grep -q "rule home\." "$WORK/listen_eco.out" || e2e_fail "the action does not name its rule"

# ---------------------------------------------------------------- home again: comfort (HTTP)
listen_start listen_comfort --dir "$WORK/valve" --server "$HTTP_SERVER" --count 1 --timeout 60 \
    --json
e2e_run wifi_home 0 "$CLOISTER" device publish --dir "$WORK/phone" --type "$WIFI_TYPE" \
    "${WIFI_HOME[@]}"
listen_wait listen_comfort 0
grep -qi "$COMFORT_WORD" "$WORK/listen_comfort.out" ||
    e2e_fail "the valve got no $COMFORT_WORD action"
grep -q '^{.*"action": ' "$WORK/listen_comfort.out" || e2e_fail "listen --json: not one object a line"

# Acknowledged actions do not come again.
ECO_ID=$(sed -n 's/.*rule home\.[^ ]* (id \([0-9]*\)).*/\1/p' "$WORK/listen_eco.out" | head -n 1)
COMFORT_ID=$(sed -n 's/^{.*"id": \([0-9]*\).*/\1/p' "$WORK/listen_comfort.out" | head -n 1)
if [ -z "$ECO_ID" ] || [ -z "$COMFORT_ID" ]; then
    e2e_fail "no action ids printed"
fi
e2e_run listen_again 0 "$CLOISTER" device listen --dir "$WORK/valve" --timeout 3 --json
grep -qE "\"id\": ($ECO_ID|$COMFORT_ID)[,}]" "$WORK/listen_again.out" &&
    e2e_fail "an acknowledged action came again"

# ---------------------------------------------------------------- removal
e2e_run scenario_remove 0 "$CLOISTER" scenario remove home --owner "$OWNER"
grep -q "rule  *home\." "$WORK/scenario_remove.out" || e2e_fail "scenario remove lists no rule"
e2e_run rule_list_after 0 "$CLOISTER" rule list --owner "$OWNER"
grep -q "^home\." "$WORK/rule_list_after.out" && e2e_fail "the scenario's rules are still there"
e2e_run scenario_remove_again 1 "$CLOISTER" scenario remove home --owner "$OWNER"

e2e_stop_daemon TERM || e2e_fail "cloisterd did not stop cleanly"
echo "PASS: rules_e2e"
