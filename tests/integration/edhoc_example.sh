#!/usr/bin/env bash
#
# edhoc_example.sh SERVER CLIENT - end-to-end test of examples/edhoc over
# loopback UDP (registered with ctest as example_edhoc_udp).
#
# Builds a small PKI with the openssl command line in a fresh temporary
# directory (umask 077: every key file is 0600): a P-256 root CA; server
# certificates for P-256 (signature + keyAgreement), Ed25519 and X25519; client
# certificates for P-256 signature, P-256 keyAgreement, Ed25519 and X25519;
# an expired client certificate, a revoked one (in the CA's CRL) and one from
# another CA; and, when SoftHSM2 is installed, a client whose P-256 key is
# generated inside a token the script initialises itself (the certificate is
# issued for the public key that edhoc-client --export-pub reads out of the
# token). Then it starts two servers on free ports (--port 0) and asserts:
#   - method 0, suite 2, x5t both ways: handshake, GET /hello greets the
#     client certificate's subject, POST /echo echoes, all over OSCORE;
#   - methods 1, 2, 3 (static DH with the P-256 keys of the certificates);
#   - suite 0 with Ed25519 (method 0) and X25519 (method 3) certificates;
#   - x5chain from the client; x5chain + message_4 from the second server,
#     which the client validates without knowing its certificate beforehand;
#   - suite negotiation: a client preferring suite 6 gets error 2 and
#     completes with suite 2;
#   - refusals, each with an EDHOC error and nothing kept: expired, revoked,
#     other-CA client (x5chain: error 1; x5t unknown: error 3), and a client
#     that does not trust the server (it sends the server an error);
#   - a half-open session expires; a retransmitted message_1 gets the same
#     message_2 again (deduplication);
#   - PKCS#11 (if /usr/lib/softhsm/libsofthsm2.so exists): the token key
#     signs (method 0) and does static DH (method 3) inside the token; URI,
#     flag and environment forms of the key/PIN all work; the PIN appears in
#     no output;
#   - the logs hold no payloads; both servers exit 0 on SIGTERM (under ASan:
#     no leaks).
set -uo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 EDHOC_SERVER EDHOC_CLIENT" >&2
    exit 2
fi
SERVER=$1
CLIENT=$2
SOFTHSM_MODULE=/usr/lib/softhsm/libsofthsm2.so
umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/cl-edhoc-example.XXXXXX")
pids=()
failures=0
checks=0

cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
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
die() {
    fail "$@"
    echo "FAILED: cannot continue"
    exit 1
}

# ------------------------------------------------------------------- the PKI
pki=$work/pki
mkdir -p "$pki/known-clients" "$pki/known-servers" "$pki/newcerts"
cat >"$pki/ext.cnf" <<'EOF'
[sig]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
[dh]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyAgreement
[both]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyAgreement
EOF
# `openssl ca` only for what needs its database: past validity dates, revocation, the CRL.
cat >"$pki/ca.cnf" <<EOF
[ca]
default_ca = test_ca
[test_ca]
database = $pki/index.txt
new_certs_dir = $pki/newcerts
serial = $pki/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
default_crl_days = 30
[policy_any]
commonName = supplied
EOF
: >"$pki/index.txt"
echo 1000 >"$pki/serial"
serial=100

ossl() { # runs openssl quietly, keeping its messages for a failure report
    openssl "$@" >>"$pki/openssl.log" 2>&1 || die "openssl $1 failed" "$pki/openssl.log"
}
newkey() { # newkey NAME ALG: private key NAME.key (0600) and NAME.pub
    case $2 in
    p256) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$pki/$1.key" ;;
    *) ossl genpkey -algorithm "$2" -out "$pki/$1.key" ;;
    esac
    ossl pkey -in "$pki/$1.key" -pubout -out "$pki/$1.pub"
}
make_ca() { # make_ca NAME CN
    newkey "$1" p256
    ossl req -x509 -new -key "$pki/$1.key" -subj "/CN=$2" -days 30 -out "$pki/$1.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
issue() { # issue NAME CN EXT [CA]: NAME.der for NAME.pub, signed by CA (default ca)
    local ca=${4:-ca}
    serial=$((serial + 1))
    ossl x509 -new -force_pubkey "$pki/$1.pub" -subj "/CN=$2" -CA "$pki/$ca.crt" \
        -CAkey "$pki/$ca.key" -set_serial "$serial" -days 30 -extfile "$pki/ext.cnf" \
        -extensions "$3" -outform DER -out "$pki/$1.der"
}

make_ca ca "Cloister Test CA"
make_ca otherca "Other CA"
newkey server p256 && issue server edhoc-server both
newkey server-ed ed25519 && issue server-ed edhoc-server-ed sig
newkey server-x x25519 && issue server-x edhoc-server-x dh
newkey client p256 && issue client edhoc-client sig
newkey client-dh p256 && issue client-dh edhoc-client-dh dh
newkey client-ed ed25519 && issue client-ed edhoc-client-ed sig
newkey client-x x25519 && issue client-x edhoc-client-x dh
newkey client-other p256 && issue client-other edhoc-client-other sig otherca
newkey client-revoked p256 && issue client-revoked edhoc-client-revoked sig
# Expired: valid in January 2020 only.
newkey client-expired p256
ossl req -new -key "$pki/client-expired.key" -subj "/CN=edhoc-client-expired" \
    -out "$pki/client-expired.csr"
ossl ca -batch -config "$pki/ca.cnf" -cert "$pki/ca.crt" -keyfile "$pki/ca.key" -notext \
    -in "$pki/client-expired.csr" -out "$pki/client-expired.pem" \
    -startdate 20200101000000Z -enddate 20200201000000Z -extfile "$pki/ext.cnf" -extensions sig
ossl x509 -in "$pki/client-expired.pem" -outform DER -out "$pki/client-expired.der"
# Revoked, and the CRL the server checks.
ossl x509 -inform DER -in "$pki/client-revoked.der" -out "$pki/client-revoked.pem"
ossl ca -batch -config "$pki/ca.cnf" -cert "$pki/ca.crt" -keyfile "$pki/ca.key" \
    -revoke "$pki/client-revoked.pem"
ossl ca -batch -config "$pki/ca.cnf" -cert "$pki/ca.crt" -keyfile "$pki/ca.key" -gencrl \
    -out "$pki/ca.crl"

# ------------------------------------------------------- PKCS#11 (SoftHSM2)
have_token=no
PIN="cl-test-pin-4711"
if [ -e "$SOFTHSM_MODULE" ] && command -v softhsm2-util >/dev/null 2>&1; then
    mkdir -p "$work/tokens"
    printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
        "$work/tokens" >"$work/softhsm2.conf"
    export SOFTHSM2_CONF=$work/softhsm2.conf
    printf '%s\n' "$PIN" >"$pki/pin"
    if softhsm2-util --init-token --free --label cl-edhoc --pin "$PIN" --so-pin so-4711 \
        >"$work/softhsm.log" 2>&1; then
        # The key is generated inside the token; only its public key comes out.
        "$CLIENT" --key "pkcs11:token=cl-edhoc;object=device-key?module-path=$SOFTHSM_MODULE&pin-source=file:$pki/pin" \
            --generate-key p256 --export-pub "$pki/client-token.pub" >"$work/out" 2>"$work/err"
        if [ $? -eq 0 ] && grep -q "generated inside the token" "$work/out" &&
            [ -s "$pki/client-token.pub" ]; then
            pass "PKCS#11: P-256 key generated in a fresh SoftHSM2 token, public key exported"
            issue client-token edhoc-token-client both
            have_token=yes
        else
            fail "PKCS#11: key generation in the token" "$work/out" "$work/err"
        fi
    else
        fail "softhsm2-util --init-token" "$work/softhsm.log"
    fi
else
    echo "skip - PKCS#11 part: $SOFTHSM_MODULE or softhsm2-util not installed"
fi

for c in client client-dh client-ed client-x client-expired client-revoked client-token; do
    [ -f "$pki/$c.der" ] && cp "$pki/$c.der" "$pki/known-clients/"
done
for c in server server-ed server-x; do cp "$pki/$c.der" "$pki/known-servers/"; done
pass "test PKI created (keys mode $(stat -c %a "$pki/client.key"))"

# ------------------------------------------------------------------ servers
# start_server NAME ARGS...: starts a server logging to NAME.log, sets port_NAME.
start_server() {
    local name=$1
    shift
    "$SERVER" --port 0 "$@" 2>"$work/$name.log" &
    local pid=$!
    pids+=("$pid")
    eval "pid_$name=$pid"
    for _ in $(seq 1 300); do
        if grep -q "listening on" "$work/$name.log"; then
            eval "port_$name=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
                "$work/$name.log")"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

start_server main --cert "$pki/server.der" --key "$pki/server.key" \
    --cert "$pki/server-ed.der" --key "$pki/server-ed.key" \
    --cert "$pki/server-x.der" --key "$pki/server-x.key" \
    --ca "$pki/ca.crt" --crl "$pki/ca.crl" --known-certs "$pki/known-clients" ||
    die "main server starts" "$work/main.log"
pass "main server listens on 127.0.0.1:$port_main (suites $(sed -n 's/.*: suites \([0-9,]*\);.*/\1/p' "$work/main.log"))"
start_server second --cert "$pki/server.der" --key "$pki/server.key" --x5chain --message-4 \
    --ca "$pki/ca.crt" --half-open-timeout 2 ||
    die "second server (x5chain, message_4) starts" "$work/second.log"
pass "second server (x5chain, message_4) listens on 127.0.0.1:$port_second"
start_server third --cert "$pki/server-ed.der" --key "$pki/server-ed.key" --ca "$pki/ca.crt" \
    --known-certs "$pki/known-clients" || die "third server (Ed25519 only) starts" "$work/third.log"
pass "third server (Ed25519 signature key only, suite 0) listens on 127.0.0.1:$port_third"

# client NAME [ARGS...]: runs the client with NAME.der/NAME.key; $rc, $work/out, $work/err.
client() {
    local name=$1
    shift
    "$CLIENT" --cert "$pki/$name.der" --key "$pki/$name.key" --ca "$pki/ca.crt" \
        --known-certs "$pki/known-servers" --timeout-ms 1000 "$@" >"$work/out" 2>"$work/err"
    rc=$?
}

# expect NAME RC STDOUT_REGEX...: every regex must match a line of stdout.
expect() {
    local name=$1 want_rc=$2
    shift 2
    if [ "$rc" -ne "$want_rc" ]; then
        fail "$name: exit status $rc, expected $want_rc" "$work/out" "$work/err"
        return
    fi
    for re in "$@"; do
        if ! grep -Eq -- "$re" "$work/out"; then
            fail "$name: stdout does not match /$re/" "$work/out" "$work/err"
            return
        fi
    done
    pass "$name"
}

# log_has NAME LOG REGEX
log_has() {
    if grep -Eq -- "$3" "$work/$2.log"; then pass "$1"; else fail "$1" "$work/$2.log"; fi
}

main=coap://127.0.0.1:$port_main
second=coap://127.0.0.1:$port_second

# --------------------------------------------------------------- handshakes
client client "$main/hello" POST "$main/echo" cloister-payload-77
expect "method 0, suite 2, x5t: GET /hello and POST /echo over OSCORE" 0 \
    "^edhoc: method 0 \(signature/signature\), suite 2, C_I h'[0-9a-f]+': message_1 [0-9]+ bytes$" \
    "^edhoc: message_2 [0-9]+ bytes: server 'CN=edhoc-server' \(x5t, issuer 'CN=Cloister Test CA'\) verified, C_R h'[0-9a-f]+'$" \
    "^edhoc: done: suite 2, method 0, C_I h'[0-9a-f]*', C_R h'[0-9a-f]*'" \
    '^2\.05 Content: Hello, CN=edhoc-client!$' '^2\.04 Changed: cloister-payload-77$'
log_has "server log: client authenticated by x5t" main \
    "client 'CN=edhoc-client' \(x5t, issuer 'CN=Cloister Test CA'\) authenticated"

client client --x5chain "$main/hello"
expect "client sends its certificate by value (x5chain)" 0 \
    "sent as x5chain" '^2\.05 Content: Hello, CN=edhoc-client!$'
log_has "server log: client authenticated by x5chain" main "'CN=edhoc-client' \(x5chain,"

client client --method 1 "$main/hello"
expect "method 1 (server static DH, P-256 key of its certificate)" 0 \
    'done: suite 2, method 1' '^2\.05 Content: Hello, CN=edhoc-client!$'
client client-dh --method 2 "$main/hello"
expect "method 2 (client static DH)" 0 \
    'done: suite 2, method 2' '^2\.05 Content: Hello, CN=edhoc-client-dh!$'
client client-dh --method 3 POST "$main/echo" static-dh
expect "method 3 (static DH both ways, P-256 keys in certificates)" 0 \
    'done: suite 2, method 3' '^2\.04 Changed: static-dh$'

client client-ed --suite 0 "$main/hello"
expect "suite 0, method 0 with Ed25519 certificates" 0 \
    "server 'CN=edhoc-server-ed'" 'done: suite 0, method 0' \
    '^2\.05 Content: Hello, CN=edhoc-client-ed!$'
client client-x --suite 0 --method 3 "$main/hello"
expect "suite 0, method 3 with X25519 certificates" 0 \
    "server 'CN=edhoc-server-x'" 'done: suite 0, method 3' \
    '^2\.05 Content: Hello, CN=edhoc-client-x!$'

client client --suites 6,2 "$main/hello"
expect "suite negotiation: error 2 for suite 6, then suite 2" 0 \
    'refused message_1: EDHOC error 2 \(wrong cipher suite; the server supports 2, 0\)' \
    'done: suite 2, method 0' '^2\.05 Content: Hello, CN=edhoc-client!$'

"$CLIENT" --cert "$pki/client.der" --key "$pki/client.key" --ca "$pki/ca.crt" \
    --x5chain --timeout-ms 1000 GET "$second/hello" >"$work/out" 2>"$work/err"
rc=$?
expect "x5chain both ways + message_4; the client validates a server it did not know" 0 \
    "server 'CN=edhoc-server' \(x5chain, issuer 'CN=Cloister Test CA'\) verified" \
    'message_4 [0-9]+ bytes verified' '^2\.05 Content: Hello, CN=edhoc-client!$'

# ----------------------------------------------------------------- refusals
client client-expired --x5chain "$main/hello"
expect "expired client certificate refused with an EDHOC error" 3 \
    'the server refused message_3: EDHOC error 1 \("authentication failed"\)'
log_has "server log says why: certificate has expired" main \
    "'CN=edhoc-client-expired'.*refused: certificate has expired"

client client-revoked "$main/hello"
expect "revoked client certificate refused" 3 'the server refused message_3: EDHOC error 1'
log_has "server log says why: certificate revoked" main \
    "'CN=edhoc-client-revoked'.*refused: certificate revoked"

client client-other --x5chain "$main/hello"
expect "client certificate from another CA (x5chain) refused" 3 \
    'the server refused message_3: EDHOC error 1'
log_has "server log says why: no path to our CA" main \
    "'CN=edhoc-client-other' \(issuer 'CN=Other CA'\) refused: unable to get local issuer"

client client-other "$main/hello"
expect "unknown x5t refused with error 3 (unknown credential)" 3 \
    'the server refused message_3: EDHOC error 3 \(unknown credential\)'

"$CLIENT" --cert "$pki/client.der" --key "$pki/client.key" --ca "$pki/otherca.crt" \
    --known-certs "$pki/known-servers" --timeout-ms 1000 "$main/hello" >"$work/out" 2>"$work/err"
rc=$?
expect "client refuses a server it does not trust, and tells the server" 3 \
    "message_2 \([0-9]+ bytes\) refused: authentication failed: certificate 'CN=edhoc-server'.*unable to get local issuer" \
    'told the server'
log_has "server log: the client ended the session with an error" main \
    'the client ended session C_R .* with EDHOC error 1'

third=coap://127.0.0.1:$port_third
client client-ed --suite 0 --method 1 "$third/hello"
expect "a method the server has no credential for: error 1, not error 2" 3 \
    'refused message_1: EDHOC error 1 \("method 1 not supported"\)'
client client "$third/hello"
expect "no cipher suite in common: error 2, then the client gives up" 3 \
    'refused message_1: EDHOC error 2 \(wrong cipher suite; the server supports 0\)' \
    'no cipher suite in common'

client client-dh --method 0 "$main/hello"
expect "a keyAgreement-only certificate cannot sign (method 0)" 2
grep -q "cannot authenticate with method 0" "$work/err" &&
    pass "...and the client says why" || fail "...and the client says why" "$work/err"

# --------------------------------------------- expiry and deduplication
# A raw CON POST of `true` + message_1 (method 0, suite 2, G_X = the x
# coordinate of the P-256 generator, C_I = 14), sent twice with the same
# message ID, and no message_3 after it.
{
    printf '\x40\x02\x12\x34\xbb.well-known\x05edhoc\x11\x41\xff'
    printf '\xf5\x00\x02\x58\x20'
    printf '\x6b\x17\xd1\xf2\xe1\x2c\x42\x47\xf8\xbc\xe6\xe5\x63\xa4\x40\xf2'
    printf '\x77\x03\x7d\x81\x2d\xeb\x33\xa0\xf4\xa1\x39\x45\xd8\x98\xc2\x96'
    printf '\x0e'
} >"$work/m1.bin"
exec 3<>"/dev/udp/127.0.0.1/$port_second" &&
    cat "$work/m1.bin" >&3 && sleep 0.3 && cat "$work/m1.bin" >&3
exec 3>&-
sleep 0.5
log_has "a retransmitted message_1 gets the same message_2 (deduplication)" second \
    'retransmitted request \(message ID 4660\): response resent'
for _ in $(seq 1 40); do
    grep -q "expired (no message_3" "$work/second.log" && break
    sleep 0.25
done
log_has "a half-open session expires" second 'half-open session C_R .* expired \(no message_3 within 2 s\)'

# ---------------------------------------------------------------- PKCS#11
if [ "$have_token" = yes ]; then
    uri="pkcs11:token=cl-edhoc;object=device-key?module-path=$SOFTHSM_MODULE&pin-source=file:$pki/pin"
    "$CLIENT" --cert "$pki/client-token.der" --key "$uri" --ca "$pki/ca.crt" \
        --known-certs "$pki/known-servers" --timeout-ms 1000 "$main/hello" POST "$main/echo" \
        from-the-token >"$work/out" 2>"$work/err"
    rc=$?
    expect "PKCS#11: method 0, signature made inside the token (URI form)" 0 \
        "key in the token: device-key, provider pkcs11 token 'cl-edhoc'" \
        '^2\.05 Content: Hello, CN=edhoc-token-client!$' '^2\.04 Changed: from-the-token$'
    cat "$work/out" "$work/err" >"$work/token-output"

    "$CLIENT" --cert "$pki/client-token.der" --pkcs11-module "$SOFTHSM_MODULE" \
        --token-label cl-edhoc --key-label device-key --pin-file "$pki/pin" --method 3 \
        --ca "$pki/ca.crt" --known-certs "$pki/known-servers" --timeout-ms 1000 "$main/hello" \
        >"$work/out" 2>"$work/err"
    rc=$?
    expect "PKCS#11: method 3, static DH inside the token (flag form)" 0 \
        'done: suite 2, method 3' '^2\.05 Content: Hello, CN=edhoc-token-client!$'
    cat "$work/out" "$work/err" >>"$work/token-output"

    CLOISTER_PKCS11_MODULE=$SOFTHSM_MODULE CLOISTER_PKCS11_PIN=$PIN \
        "$CLIENT" --cert "$pki/client-token.der" --key "pkcs11:token=cl-edhoc;object=device-key" \
        --x5chain --ca "$pki/ca.crt" --timeout-ms 1000 "$second/hello" \
        >"$work/out" 2>"$work/err"
    rc=$?
    expect "PKCS#11: module and PIN from the environment, x5chain, message_4" 0 \
        'message_4 [0-9]+ bytes verified' '^2\.05 Content: Hello, CN=edhoc-token-client!$'
    cat "$work/out" "$work/err" >>"$work/token-output"

    # A server whose key is in the token as well: it signs (method 0) and does
    # static DH (method 1) there.
    suri="pkcs11:token=cl-edhoc;object=server-key?module-path=$SOFTHSM_MODULE&pin-source=file:$pki/pin"
    "$CLIENT" --key "$suri" --generate-key p256 --export-pub "$pki/server-token.pub" \
        >"$work/out" 2>"$work/err" || fail "PKCS#11: server key generation" "$work/out" "$work/err"
    issue server-token edhoc-token-server both
    cp "$pki/server-token.der" "$pki/known-servers/"
    if start_server token --cert "$pki/server-token.der" --key "$suri" --ca "$pki/ca.crt" \
        --known-certs "$pki/known-clients"; then
        client client "coap://127.0.0.1:$port_token/hello"
        expect "PKCS#11 server: method 0, the server signs inside the token" 0 \
            "server 'CN=edhoc-token-server'" '^2\.05 Content: Hello, CN=edhoc-client!$'
        client client --method 1 "coap://127.0.0.1:$port_token/hello"
        expect "PKCS#11 server: method 1, the server's static DH inside the token" 0 \
            'done: suite 2, method 1' '^2\.05 Content: Hello, CN=edhoc-client!$'
        log_has "PKCS#11 server: its log names the token key" token \
            "sent as x5t, key in the token: server-key"
    else
        fail "PKCS#11 server starts" "$work/token.log"
    fi

    printf 'wrong-pin\n' >"$pki/badpin"
    "$CLIENT" --cert "$pki/client-token.der" \
        --key "pkcs11:token=cl-edhoc;object=device-key?module-path=$SOFTHSM_MODULE&pin-source=file:$pki/badpin" \
        --ca "$pki/ca.crt" "$main/hello" >"$work/out" 2>"$work/err"
    rc=$?
    if [ $rc -eq 2 ] && grep -q "cannot open PKCS#11 token 'cl-edhoc'" "$work/err" &&
        ! grep -q "wrong-pin" "$work/out" "$work/err"; then
        pass "PKCS#11: a wrong PIN is refused (and not echoed)"
    else
        fail "PKCS#11: a wrong PIN is refused (and not echoed)" "$work/out" "$work/err"
    fi
    if grep -q -- "$PIN" "$work/token-output" "$work"/*.log; then
        fail "PKCS#11: the PIN appears in an output or log"
    else
        pass "PKCS#11: the PIN appears in no output or log"
    fi
fi

# ------------------------------------------------------------ log hygiene
if grep -Eq "cloister-payload-77|static-dh|from-the-token|Hello, CN" \
    "$work/main.log" "$work/second.log" "$work/third.log"; then
    fail "server logs hold no payloads" "$work/main.log"
else
    pass "server logs hold no payloads"
fi

# ---------------------------------------------------------------- shutdown
for name in main second third token; do
    eval "pid=\${pid_$name:-}"
    [ -n "$pid" ] || continue
    kill -TERM "$pid"
    wait "$pid"
    status=$?
    pids=("${pids[@]/$pid/}")
    if [ $status -eq 0 ] && grep -q "stopping:" "$work/$name.log"; then
        pass "$name server exits 0 on SIGTERM"
    else
        fail "$name server exits 0 on SIGTERM (status $status)" "$work/$name.log"
    fi
done
log_has "main server counted its handshakes" main 'stopping: .* [1-9][0-9]* handshakes'

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
