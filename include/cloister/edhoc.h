/*
 * cloister/edhoc.h - EDHOC (RFC 9528): ephemeral Diffie-Hellman over COSE.
 *
 * Initiator and responder in one caller-allocated state (cl_edhoc_t: 248
 * bytes on x86-64 with the default config.h limits, printed by the tests; no
 * heap; each call also uses up to about 6 KiB of stack for work buffers sized
 * by CL_EDHOC_MAX_CRED). Every message is written into a caller
 * buffer and every received message is parsed in place. Keys are provider
 * handles: the ephemeral key is generated in the provider (a PKCS#11 token
 * on a device), and the authentication key (signature or static DH) is a
 * handle from the caller's keystore, so ECDH and signing happen wherever the
 * provider keeps its keys.
 *
 * Methods 0..3 (signature / static DH for each side), cipher suites 0, 1, 2,
 * 3 and 6, suite negotiation with the error message (ERR_CODE 2), the other
 * error messages, connection identifiers as int or bstr (section 3.3.2),
 * ID_CRED by x5t / x5chain / kid / kccs (compact kid encoding, 3.5.3.2),
 * EAD items handed to a hook (unknown critical items abort), message_4,
 * EDHOC_Exporter, EDHOC_KeyUpdate, the OSCORE context of Appendix A.1, and
 * the CoAP framing of Appendix A.2 (`true` / C_R prefixes).
 *
 * Credentials: the application decides what it trusts. It gives its own
 * credential(s) in the config, and a callback receives the peer's ID_CRED
 * (always in map form) and returns CRED (the CBOR item that enters the
 * transcript) and the public key, after whatever validation it wants (chain
 * to the owner's root with OpenSSL in the core; pinned keys on an MCU).
 */
#ifndef CLOISTER_EDHOC_H
#define CLOISTER_EDHOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/config.h"
#include "cloister/crypto.h"
#include "cloister/oscore.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef CL_EDHOC_MAX_CID
#define CL_EDHOC_MAX_CID 7 /**< connection identifiers become OSCORE IDs (<= 7 bytes) */
#endif
#ifndef CL_EDHOC_MAX_SUITES
#define CL_EDHOC_MAX_SUITES 8
#endif
#ifndef CL_EDHOC_MAX_CRED
#define CL_EDHOC_MAX_CRED 1024 /**< largest ID_CRED + CRED + EAD handled in one message */
#endif

/* Methods (section 3.2): bit 0 = responder static DH, bit 1 = initiator static DH. */
#define CL_EDHOC_METHOD_SIG_SIG 0
#define CL_EDHOC_METHOD_SIG_STAT 1
#define CL_EDHOC_METHOD_STAT_SIG 2
#define CL_EDHOC_METHOD_STAT_STAT 3

/* Error codes (section 6). */
#define CL_EDHOC_ERR_UNSPECIFIED 1
#define CL_EDHOC_ERR_WRONG_SUITE 2
#define CL_EDHOC_ERR_UNKNOWN_CRED 3

/* EDHOC exporter labels (Appendix A.1). */
#define CL_EDHOC_EXPORT_OSCORE_SECRET 0
#define CL_EDHOC_EXPORT_OSCORE_SALT 1

/* Content-Formats and media types (RFC 9528 sections 10.8, 10.9): the same
 * framing is used over CoAP and, POSTed to /.well-known/edhoc, over HTTP. */
#define CL_EDHOC_CF_EDHOC_CBOR_SEQ 64
#define CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ 65
#define CL_EDHOC_MEDIA_TYPE "application/edhoc+cbor-seq"
#define CL_EDHOC_CID_MEDIA_TYPE "application/cid-edhoc+cbor-seq"
#define CL_EDHOC_WELL_KNOWN "/.well-known/edhoc"

typedef enum cl_edhoc_role {
    CL_EDHOC_INITIATOR = 1,
    CL_EDHOC_RESPONDER = 2,
} cl_edhoc_role_t;

/** One of our own authentication credentials. */
typedef struct cl_edhoc_auth {
    const uint8_t *id_cred; /**< ID_CRED_x: an encoded COSE header map ({34: x5t}, {33: x5chain},
                               {4: kid}, {14: kccs}) */
    size_t id_cred_len;
    const uint8_t *cred; /**< CRED_x as one CBOR item: bstr(DER certificate), or the CCS map */
    size_t cred_len;
    cl_key_t key;       /**< private key handle: signature key, or static DH key */
    cl_key_type_t type; /**< CL_KEY_P256, CL_KEY_ED25519 (signature) or CL_KEY_X25519 */
    bool static_dh;     /**< authenticates with static DH (methods 1..3) instead of a signature */
} cl_edhoc_auth_t;

/**
 * The peer's credential, filled in by the application's callback. `key` stays
 * owned by the application (EDHOC never destroys it); keep it cached with the
 * credential or destroy it after the processing call returns.
 */
typedef struct cl_edhoc_peer {
    const uint8_t *cred; /**< CRED_x (CBOR item); must stay valid until the call returns */
    size_t cred_len;
    cl_key_t key; /**< public key handle for signature verification (signature methods) */
    uint8_t pub[CL_PUB_MAX]; /**< static DH public key bytes (static DH methods) */
    size_t pub_len;
    cl_key_type_t expected; /**< set by EDHOC before the call: the key type the
                                 selected method and suite need (the callback
                                 should refuse a credential of another type) */
} cl_edhoc_peer_t;

/**
 * Resolves a received ID_CRED (map form; compact kid already expanded) into
 * the peer's credential, after validating it. Return CL_ERR_NOT_FOUND for an
 * unknown reference (error 3 is then sent), CL_ERR_AUTH for an untrusted,
 * expired or revoked credential, CL_OK otherwise.
 */
typedef cl_status_t (*cl_edhoc_cred_fn)(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                                        size_t id_cred_len, cl_edhoc_peer_t *peer);

/**
 * EAD hook: called once per received EAD item (padding, label 0, is skipped).
 * Return CL_OK when the item was understood and accepted, CL_ERR_NOT_FOUND
 * when not understood (fatal only for critical items, label < 0), anything
 * else to abort the session.
 */
typedef cl_status_t (*cl_edhoc_ead_fn)(void *arg, int message, int64_t label, const uint8_t *value,
                                       size_t value_len, bool has_value);

/** Long-lived configuration shared by many sessions. */
typedef struct cl_edhoc_config {
    const cl_crypto_t *crypto;
    const int *suites; /**< initiator: in order of preference; responder: supported */
    size_t n_suites;
    const cl_edhoc_auth_t *auth; /**< our credentials; the first matching method + suite is used */
    size_t n_auth;
    cl_edhoc_cred_fn peer_cred; /**< required */
    void *peer_cred_arg;
    cl_edhoc_ead_fn ead; /**< optional */
    void *ead_arg;
} cl_edhoc_config_t;

/**
 * Session state; all-zero is "unused", cl_edhoc_free is safe on it. The
 * fields are readable (method, suite, c_i / c_r, peer_err, suites_peer);
 * change them only through the API.
 */
typedef struct cl_edhoc {
    const cl_edhoc_config_t *cfg;
    const cl_edhoc_auth_t *own; /**< our credential selected for this session */
    cl_key_t eph;               /**< our ephemeral key */
    uint8_t role;
    uint8_t state;
    uint8_t method;
    int8_t suite; /**< selected cipher suite */
    uint8_t c_i_len;
    uint8_t c_r_len;
    uint8_t n_suites_peer; /**< initiator: SUITES_R received in an error 2 */
    int8_t suites_peer[CL_EDHOC_MAX_SUITES];
    int16_t peer_err; /**< ERR_CODE received, 0 if none */
    uint8_t c_i[CL_EDHOC_MAX_CID];
    uint8_t c_r[CL_EDHOC_MAX_CID];
    uint8_t g_peer[32]; /**< responder: G_X until message_2 is written */
    uint8_t th[32];     /**< current transcript hash */
    uint8_t prk_3e2m[32];
    uint8_t prk_4e3m[32];
    uint8_t prk_out[32];
    uint8_t prk_exporter[32];
} cl_edhoc_t;

/** Starts a session. own_cid is our connection identifier (C_I or C_R). */
cl_status_t cl_edhoc_init(cl_edhoc_t *s, const cl_edhoc_config_t *cfg, cl_edhoc_role_t role,
                          const uint8_t *own_cid, size_t own_cid_len) CL_MUST_CHECK;
/** Destroys keys and wipes the state; safe on zeroed or failed states. */
void cl_edhoc_free(cl_edhoc_t *s);
/**
 * Initiator: starts a new session in place after a failed one, keeping the
 * config, C_I and the SUITES_R learnt from an error 2, so that
 * cl_edhoc_message_1(suite = -1) selects a suite both support.
 */
cl_status_t cl_edhoc_restart(cl_edhoc_t *s) CL_MUST_CHECK;
/**
 * Changes our connection identifier before it is sent: the initiator's C_I
 * before message_1, the responder's C_R until message_2 (e.g. when the C_I
 * received in message_1 equals the C_R chosen at init; message_2 refuses
 * C_R = C_I, RFC 9528 3.3.3).
 */
cl_status_t cl_edhoc_set_cid(cl_edhoc_t *s, const uint8_t *cid, size_t cid_len) CL_MUST_CHECK;

/**
 * TEST ONLY: use this (imported) key as our ephemeral key instead of
 * generating one, so RFC 9529 traces can be reproduced. Takes ownership.
 */
cl_status_t cl_edhoc_test_set_ephemeral(cl_edhoc_t *s, cl_key_t eph) CL_MUST_CHECK;

/* ---- Initiator ---- */

/**
 * Writes message_1 for `method` with the selected suite `suite` (which must
 * be in cfg->suites; SUITES_I lists every suite preferred over it, section
 * 5.2.2). suite < 0 selects the most preferred suite the responder announced
 * in an earlier error 2, else the first of cfg->suites.
 */
cl_status_t cl_edhoc_message_1(cl_edhoc_t *s, int method, int suite, const uint8_t *ead_1,
                               size_t ead_1_len, uint8_t *out, size_t out_size,
                               size_t *out_len) CL_MUST_CHECK;
/**
 * Processes message_2 (or an error message: CL_ERR_PEER_ERROR with
 * s->peer_err set; for ERR_CODE 2 the responder's suites are kept so the
 * next cl_edhoc_message_1 with suite -1 picks a common one).
 */
cl_status_t cl_edhoc_process_message_2(cl_edhoc_t *s, const uint8_t *msg, size_t len) CL_MUST_CHECK;
/** Writes message_3; after it PRK_out and the exporter are available. */
cl_status_t cl_edhoc_message_3(cl_edhoc_t *s, const uint8_t *ead_3, size_t ead_3_len, uint8_t *out,
                               size_t out_size, size_t *out_len) CL_MUST_CHECK;
/** Processes message_4 (key confirmation). */
cl_status_t cl_edhoc_process_message_4(cl_edhoc_t *s, const uint8_t *msg, size_t len) CL_MUST_CHECK;

/* ---- Responder ---- */

/**
 * Processes message_1. CL_ERR_UNSUPPORTED when the selected suite is not
 * acceptable (then cl_edhoc_error_message gives ERR_CODE 2 with SUITES_R).
 */
cl_status_t cl_edhoc_process_message_1(cl_edhoc_t *s, const uint8_t *msg, size_t len) CL_MUST_CHECK;
/** Writes message_2. */
cl_status_t cl_edhoc_message_2(cl_edhoc_t *s, const uint8_t *ead_2, size_t ead_2_len, uint8_t *out,
                               size_t out_size, size_t *out_len) CL_MUST_CHECK;
/** Processes message_3; after it PRK_out and the exporter are available. */
cl_status_t cl_edhoc_process_message_3(cl_edhoc_t *s, const uint8_t *msg, size_t len) CL_MUST_CHECK;
/** Writes message_4 (optional key confirmation). */
cl_status_t cl_edhoc_message_4(cl_edhoc_t *s, const uint8_t *ead_4, size_t ead_4_len, uint8_t *out,
                               size_t out_size, size_t *out_len) CL_MUST_CHECK;

/* ---- Errors ---- */

/**
 * The error message to send after a failed step that returned `why`:
 * ERR_CODE 2 + SUITES_R after CL_ERR_UNSUPPORTED in process_message_1,
 * ERR_CODE 3 (true) after CL_ERR_NOT_FOUND from the credential callback,
 * ERR_CODE 1 with a short non-sensitive diagnostic otherwise.
 */
cl_status_t cl_edhoc_error_message(const cl_edhoc_t *s, cl_status_t why, uint8_t *out,
                                   size_t out_size, size_t *out_len) CL_MUST_CHECK;
/** True when a received EDHOC message is an error message (starts with an int). */
bool cl_edhoc_is_error(const uint8_t *msg, size_t len);

/* ---- Results ---- */

/** EDHOC_Exporter (section 4.2.1). */
cl_status_t cl_edhoc_exporter(const cl_edhoc_t *s, uint64_t label, const uint8_t *context,
                              size_t context_len, uint8_t *out, size_t out_len) CL_MUST_CHECK;
/** EDHOC_KeyUpdate (Appendix H): new PRK_out and PRK_exporter from a context. */
cl_status_t cl_edhoc_key_update(cl_edhoc_t *s, const uint8_t *context,
                                size_t context_len) CL_MUST_CHECK;
/**
 * OSCORE security context parameters of Appendix A.1: Master Secret/Salt
 * into the caller's arrays, IDs from C_I / C_R per role, the suite's
 * application AEAD. p's pointers reference ms, salt and s.
 */
cl_status_t cl_edhoc_oscore_params(const cl_edhoc_t *s, uint8_t ms[16], uint8_t salt[8],
                                   cl_oscore_params_t *p) CL_MUST_CHECK;
/** Connection identifiers after the handshake (pointers into s). */
void cl_edhoc_cids(const cl_edhoc_t *s, const uint8_t **c_i, size_t *c_i_len, const uint8_t **c_r,
                   size_t *c_r_len);

/* ---- Transport (Appendix A.2) ---- */

/**
 * Encodes a connection identifier per section 3.3.2 (one-byte CBOR ints for
 * byte strings that are one, a bstr otherwise); cid == NULL writes `true`
 * (the prefix of message_1 in the forward flow).
 */
cl_status_t cl_edhoc_encode_cid(const uint8_t *cid, size_t cid_len, uint8_t *out, size_t out_size,
                                size_t *out_len) CL_MUST_CHECK;
/**
 * Splits a CoAP request payload: `true` + message_1 (*is_message_1 = true),
 * or C_R + message_2/3/error (cid receives the identifier as bytes).
 * *msg points into payload.
 */
cl_status_t cl_edhoc_split_request(const uint8_t *payload, size_t len, bool *is_message_1,
                                   uint8_t cid[CL_EDHOC_MAX_CID], size_t *cid_len,
                                   const uint8_t **msg, size_t *msg_len) CL_MUST_CHECK;

/** Cipher suite parameters (CL_ERR_UNSUPPORTED for suites we do not implement). */
typedef struct cl_edhoc_suite {
    int id;
    cl_aead_alg_t aead;     /**< EDHOC AEAD */
    size_t mac_len;         /**< EDHOC MAC length (static DH) */
    cl_key_type_t dh;       /**< key exchange curve */
    cl_sig_alg_t sig;       /**< signature algorithm */
    cl_key_type_t sig_key;  /**< key type of the signature algorithm */
    cl_aead_alg_t app_aead; /**< application AEAD (OSCORE) */
} cl_edhoc_suite_t;
cl_status_t cl_edhoc_suite(int id, cl_edhoc_suite_t *out) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
