#!/bin/sh
# make-sim-pki.sh - generates the INSECURE test PKI of the simulated TEE
# (tee/sim/pki/). Run ONCE by a developer; its output is committed and never
# regenerated at build time, so that simulated quotes made on any machine
# chain to the same "INSECURE SIMULATED TEE ROOT - DO NOT TRUST".
#
# Everything here is public test material: the private keys are in the
# repository on purpose. Trusting this root proves nothing.
#
#   root.pem / root.key                  self-signed sim root (P-256, 30 years)
#   intermediate.pem / intermediate.key  sim PCK platform CA, issued by the root
#   signer.key                           sim enclave signer (cloister-sim-sign)
#
# Usage: tee/sim/pki/make-sim-pki.sh [--force]   (needs the openssl CLI, 3.x)
set -eu
cd "$(dirname "$0")"
if [ -e root.pem ] && [ "${1:-}" != "--force" ]; then
    echo "make-sim-pki.sh: root.pem exists; pass --force to replace the shipped PKI" >&2
    exit 1
fi
DAYS=10957 # 30 years
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/ext.cnf" <<'CNF'
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[inter]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out root.key
openssl req -new -x509 -key root.key -sha256 -days "$DAYS" -set_serial 0x5349 \
    -subj "/O=Cloister (simulation)/CN=INSECURE SIMULATED TEE ROOT - DO NOT TRUST" \
    -config "$tmp/ext.cnf" -extensions root -out root.pem

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out intermediate.key
openssl req -new -key intermediate.key -sha256 \
    -subj "/O=Cloister (simulation)/CN=INSECURE SIMULATED PCK PLATFORM CA - DO NOT TRUST" \
    -out "$tmp/inter.csr"
openssl x509 -req -in "$tmp/inter.csr" -CA root.pem -CAkey root.key -sha256 -days "$DAYS" \
    -set_serial 0x534950 -extfile "$tmp/ext.cnf" -extensions inter -out intermediate.pem

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out signer.key

chmod 0644 root.pem intermediate.pem
chmod 0600 root.key intermediate.key signer.key
openssl verify -CAfile root.pem intermediate.pem
