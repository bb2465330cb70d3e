/*
 * core_client.h - a protocol peer of the trusted core for tests: CoAP
 * requests handed to a runtime (sim or process) as batches, the
 * attestation fetch with Block2, an EDHOC initiator (suite 2, method 0)
 * and OSCORE requests. Real protocol code (lib/), no shortcuts: the core
 * cannot tell it from the CLI.
 */
#ifndef CL_TEST_CORE_CLIENT_H
#define CL_TEST_CORE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/cbor.h"
#include "cloister/crypto.h"
#include "cloister/edhoc.h"
#include "cloister/oscore.h"
#include "cloister/runtime.h"

typedef struct cc_peer {
    cl_crypto_t crypto;
    cl_key_t key;
    uint8_t pub[65];
    /* our EDHOC credential */
    uint8_t id_cred[2200];
    size_t id_cred_len;
    uint8_t cred[2200];
    size_t cred_len;
    /* the core's identity certificate (to resolve its x5t) */
    uint8_t core_cert[2048];
    size_t core_cert_len;
    uint8_t cb_cred[2100];
    cl_key_t cb_key;
    int suites[1];
    cl_edhoc_auth_t auth;
    cl_edhoc_config_t cfg;
    cl_oscore_ctx_t osc;
    bool have_osc;
    uint16_t mid;
    uint64_t peer_id;
} cc_peer_t;

/** A peer with a fresh P-256 key. */
void cc_init(cc_peer_t *p, uint64_t peer_id);
void cc_free(cc_peer_t *p);
/** Our credential: x5chain with one certificate, x5t of it, or a kccs raw key. */
void cc_cred_x5chain(cc_peer_t *p, const uint8_t *der, size_t len);
void cc_cred_x5t(cc_peer_t *p, const uint8_t *der, size_t len);
void cc_cred_kccs(cc_peer_t *p);
void cc_set_core_cert(cc_peer_t *p, const uint8_t *der, size_t len);

/** One plain CoAP request; returns the response code, body in out. */
int cc_plain(cc_peer_t *p, cl_runtime_t *rt, uint8_t code, const char *path, const uint8_t *payload,
             size_t len, uint8_t *out, size_t out_size, size_t *out_len);
/** GET /attestation?nonce=... with Block2; the whole evidence map. Returns the code. */
int cc_evidence(cc_peer_t *p, cl_runtime_t *rt, const uint8_t *nonce, size_t nonce_len,
                uint8_t *out, size_t out_size, size_t *out_len);
/** EDHOC handshake; CL_OK when an OSCORE context was derived. */
cl_status_t cc_connect(cc_peer_t *p, cl_runtime_t *rt);
/** OSCORE request; returns the inner response code, or -1 / -(outer code) on failure. */
int cc_request(cc_peer_t *p, cl_runtime_t *rt, uint8_t code, const char *path,
               const uint8_t *payload, size_t len, uint8_t *out, size_t out_size, size_t *out_len);

/**
 * OSCORE GET with Uri-Queries ("a=1&b=2", or NULL) and inner Block2: all blocks
 * reassembled into out; *blocks = the number of exchanges. Returns the code.
 */
int cc_get(cc_peer_t *p, cl_runtime_t *rt, const char *path, const char *query, uint8_t *out,
           size_t out_size, size_t *out_len, unsigned *blocks);

/** ES256 signing through the peer's key (cl_pki_sign_fn). */
/**
 * GET path with Observe = observe (0 register, 1 deregister): the response's
 * code, payload and whether it carried Observe; *oreq is what notifications
 * are checked against.
 */
int cc_observe(cc_peer_t *p, cl_runtime_t *rt, const char *path, uint32_t observe,
               cl_oscore_req_t *oreq, uint8_t *out, size_t out_size, size_t *out_len,
               bool *has_observe);
/** Decrypts a notification (a message the core sent); its CoAP type in *type. */
int cc_notification(cc_peer_t *p, cl_oscore_req_t *oreq, const uint8_t *msg, size_t len,
                    uint8_t *out, size_t out_size, size_t *out_len, uint8_t *type);

cl_status_t cc_sign(void *peer, const uint8_t *tbs, size_t tbs_len, uint8_t sig[64]);

/** Looks up a text key in a CBOR map body (helpers for assertions). */
/** Positions d at the value of text key `key` of the top-level map. */
bool cc_map_find(const uint8_t *p, size_t len, const char *key, cl_cbor_dec_t *d);
bool cc_map_bstr(const uint8_t *p, size_t len, const char *key, const uint8_t **v, size_t *vl);
bool cc_map_tstr(const uint8_t *p, size_t len, const char *key, const char **v, size_t *vl);
bool cc_map_uint(const uint8_t *p, size_t len, const char *key, uint64_t *v);

#endif
