/*
 * creds.h - X.509 credentials of the EDHOC examples: our own certificate
 * (ID_CRED and CRED for EDHOC), and the validation of the peer's
 * certificate against a CA file with OpenSSL (cl_edhoc_cred_fn).
 *
 * Own credential: a DER (or PEM) certificate plus a private key handle.
 * CRED_x is the DER certificate as a CBOR byte string (RFC 9528 3.5.2);
 * ID_CRED_x is {34: [-15, SHA-256/64 of the DER]} (x5t) or {33: bstr DER}
 * (x5chain, by value). Its keyUsage decides which EDHOC authentications it
 * may serve: digitalSignature -> signature methods, keyAgreement -> static
 * DH (no keyUsage extension: both, as far as the key type allows).
 *
 * Peer credential: x5chain (leaf, optionally followed by intermediates) or
 * x5t (SHA-256/64 or SHA-256) looked up among "known" certificates loaded
 * from a directory or file. The leaf must chain to the CA file
 * (X509_verify_cert: signatures, validity period, optional CRL), have a
 * keyUsage allowing the way it authenticates, and a key type that fits the
 * selected cipher suite.
 */
#ifndef CL_EXAMPLE_EDHOC_CREDS_H
#define CL_EXAMPLE_EDHOC_CREDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "cloister/edhoc.h"

#define CERT_DER_MAX 1000 /**< largest certificate we send or accept (EDHOC limits apply) */
#define SUBJECT_MAX 160   /**< RFC 2253 subject text */
#define KNOWN_MAX 64      /**< certificates for x5t lookup */
#define OWN_MAX 4         /**< own credentials (server: one per key type / method) */

/** One of our certificates with its key. */
typedef struct own_cred {
    uint8_t der[CERT_DER_MAX];
    size_t der_len;
    uint8_t cred[CERT_DER_MAX + 3]; /**< bstr(DER) */
    size_t cred_len;
    uint8_t id_cred[CERT_DER_MAX + 8];
    size_t id_cred_len;
    bool x5chain;
    cl_key_type_t type;
    bool can_sign, can_dh; /**< keyUsage (and key type) */
    cl_key_t key;
    char subject[SUBJECT_MAX];
    char file[256];
} own_cred_t;

/**
 * Reads the certificate at cert_path (DER or PEM), fills ID_CRED (x5t or
 * x5chain) and CRED. The key is loaded separately; own_cred_check_key then
 * checks that it is the certificate's.
 */
bool own_cred_load(own_cred_t *oc, const char *cert_path, bool x5chain, char *err, size_t err_size);

/** True when `key` (in c) holds the private half of the certificate's public key. */
bool own_cred_check_key(const own_cred_t *oc, const cl_crypto_t *c, cl_key_t key, char *err,
                        size_t err_size);

/**
 * Appends cl_edhoc_auth_t entries for oc to auth[] (signature and/or static
 * DH per keyUsage and key type); returns how many were added.
 */
size_t own_cred_auth(const own_cred_t *oc, cl_edhoc_auth_t *auth, size_t room);

/** What we trust: the CA, an optional CRL, and certificates for x5t lookup. */
typedef struct trust {
    X509_STORE *store;
    struct known {
        X509 *x;
        uint8_t sha256[32];
    } known[KNOWN_MAX];
    size_t n_known;
} trust_t;

/**
 * Loads the CA file (PEM, may hold several certificates), the CRL (PEM,
 * optional: then revocation is checked for the leaf) and the known
 * certificates (a directory of .der/.pem/.crt files, or one file; optional).
 */
bool trust_load(trust_t *t, const char *ca_file, const char *crl_file, const char *known, char *err,
                size_t err_size);
void trust_free(trust_t *t);

/**
 * The state of cl_edhoc_cred_fn peer_cred_cb. Before each
 * cl_edhoc_process_message_2 / _3 call set `session` (its method and suite
 * decide what the peer's key must be able to do); afterwards call
 * peer_release to destroy the imported key. After success, subject/how
 * describe the peer; after a refusal, `why` says why (no secrets).
 */
typedef struct peer_ctx {
    const trust_t *trust;
    const cl_crypto_t *crypto;
    const cl_edhoc_t *session;
    uint8_t cred[CERT_DER_MAX + 3];
    size_t cred_len;
    cl_key_t key;
    char subject[SUBJECT_MAX];
    char issuer[SUBJECT_MAX];
    const char *how; /**< "x5t" or "x5chain" */
    cl_key_type_t type;
    char why[200];
} peer_ctx_t;

/** cl_edhoc_cred_fn over a peer_ctx_t. */
cl_status_t peer_cred_cb(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                         size_t id_cred_len, cl_edhoc_peer_t *peer);

/** Destroys the key imported by the last callback. */
void peer_release(peer_ctx_t *p);

/** RFC 2253 text of a certificate's subject (or issuer) into out. */
void cert_name(X509 *x, bool issuer, char *out, size_t out_size);

#endif
