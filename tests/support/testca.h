/*
 * testca.h - a small X.509 test CA for the EDHOC tests, on OpenSSL's libcrypto.
 *
 * Creates a P-256 root CA (self-signed, CA:TRUE) and intermediates, issues
 * leaf certificates for a public key given as the crypto provider exports it
 * (P-256 for signature or key agreement, Ed25519, X25519 - the CA signs the
 * X25519 key, which cannot sign itself), with chosen serial numbers and
 * validity (so expired certificates can be made), and CRLs listing revoked
 * serials. Everything leaves as DER bytes on the heap, freed with
 * testca_free.
 *
 * The verifier side is what a peer-credential callback does with a received
 * chain: X509_verify_cert against the trusted root with CRL checking
 * (X509_V_FLAG_CRL_CHECK, so every issuing CA needs a CRL in the verifier),
 * then the leaf's public key in the shape cl_edhoc_peer_t wants.
 *
 * ECDSA signatures have a DER length of 70..72 bytes depending on the random
 * nonce; certificates are re-signed until it is 72 so that certificate (and
 * EDHOC message) sizes are the same on every run.
 *
 * Test code only: heap, OpenSSL objects, no constant-time concerns.
 */
#ifndef CLOISTER_TESTCA_H
#define CLOISTER_TESTCA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/crypto.h"
#include "cloister/edhoc.h"
#include "cloister/status.h"

/** A certificate authority: its P-256 key, its certificate and its revocation list. */
typedef struct testca testca_t;
/** A trust store: one root certificate plus CRLs. */
typedef struct testca_verifier testca_verifier_t;

/** What a leaf certificate certifies. */
typedef struct testca_leaf {
    const char *subject; /**< subject CN */
    cl_key_type_t type;  /**< CL_KEY_P256, CL_KEY_ED25519 or CL_KEY_X25519 */
    const uint8_t *pub;  /**< P-256: 65-byte uncompressed SEC1; others: 32 bytes */
    size_t pub_len;
    bool key_agreement; /**< keyUsage keyAgreement (static DH) instead of digitalSignature */
    long serial;
    long not_before; /**< seconds relative to now (negative: in the past) */
    long not_after;  /**< seconds relative to now */
} testca_leaf_t;

/** A leaf's public key after validation. */
typedef struct testca_pub {
    cl_key_type_t type;
    uint8_t pub[CL_PUB_MAX]; /**< P-256: 65-byte uncompressed; X25519/Ed25519: 32 bytes */
    size_t pub_len;
    bool sign;  /**< usable for signatures (keyUsage digitalSignature, signature algorithm) */
    bool agree; /**< usable for static DH (keyUsage keyAgreement, ECDH curve) */
} testca_pub_t;

/** New self-signed P-256 root (CA:TRUE, keyCertSign | cRLSign). NULL on failure. */
testca_t *testca_root_new(const char *cn, long serial);
/** New P-256 intermediate CA (CA:TRUE, pathlen 0) signed by parent. NULL on failure. */
testca_t *testca_intermediate_new(testca_t *parent, const char *cn, long serial);
/** Frees a CA (NULL is fine). */
void testca_destroy(testca_t *ca);
/** The CA's own certificate (DER, owned by the CA). */
const uint8_t *testca_cert(const testca_t *ca, size_t *der_len);

/** Issues a leaf certificate; DER on the heap (testca_free), NULL on failure. */
uint8_t *testca_issue(testca_t *ca, const testca_leaf_t *leaf, size_t *der_len);
/** Adds a serial number to the CA's revocation list (seen by later testca_crl calls). */
void testca_revoke(testca_t *ca, long serial);
/** The CA's current CRL (v2, valid from an hour ago for 30 days); DER on the heap. */
uint8_t *testca_crl(testca_t *ca, size_t *der_len);
/** Frees DER bytes returned by this module. */
void testca_free(void *der);

/** A verifier trusting one root certificate (DER). NULL on failure. */
testca_verifier_t *testca_verifier_new(const uint8_t *root, size_t root_len);
/** Adds a CRL (DER); returns CL_OK or CL_ERR_BAD_INPUT. */
cl_status_t testca_verifier_add_crl(testca_verifier_t *v, const uint8_t *crl, size_t crl_len);
void testca_verifier_free(testca_verifier_t *v);

/**
 * Validates a leaf (with n_inter intermediates, leaf's issuer first) against
 * the verifier's root, honouring validity and the CRLs. CL_OK and *key filled
 * on success; CL_ERR_AUTH when the chain does not verify (untrusted, expired,
 * revoked...; *x509_err, when non-NULL, gets the X509_V_ERR_* code);
 * CL_ERR_BAD_INPUT for undecodable DER; CL_ERR_UNSUPPORTED for a key type
 * EDHOC cannot use.
 */
cl_status_t testca_verify(const testca_verifier_t *v, const uint8_t *leaf, size_t leaf_len,
                          const uint8_t *const *inter, const size_t *inter_len, size_t n_inter,
                          testca_pub_t *key, int *x509_err);
/** Human-readable X509_V_ERR_* text. */
const char *testca_error_string(int x509_err);
/** X509_V_ERR_* codes the tests assert on (kept here so tests need no OpenSSL headers). */
int testca_err_expired(void);
int testca_err_revoked(void);
int testca_err_untrusted(void);

/**
 * Fills peer->key (a verification key imported through crypto->ops->key_import_public,
 * which the caller destroys) when key->sign, and peer->pub / pub_len when key->agree.
 * peer->cred is left to the caller.
 */
cl_status_t testca_peer_key(const cl_crypto_t *crypto, const testca_pub_t *key,
                            cl_edhoc_peer_t *peer);

#endif
