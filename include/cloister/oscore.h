/*
 * cloister/oscore.h - OSCORE (RFC 8613): Object Security for CoAP.
 *
 * Security contexts are caller-allocated (cl_oscore_ctx_t, <= 256 bytes, no
 * heap); keys live in the crypto provider and the context holds handles.
 * Messages go in and out as serialized CoAP messages, so the same calls
 * serve CoAP/UDP and the HTTP mapping of section 11 (the host turns HTTP
 * into CoAP bytes first; see cl_oscore_http_header_*).
 *
 * Client:  protect_request  -> ... -> unprotect_response (with the request's
 *          cl_oscore_req_t, which binds the response to the request)
 * Server:  unprotect_request (context looked up by kid / kid context through
 *          a callback) -> protect_response (same cl_oscore_req_t)
 *
 * Unprotect results are never a bool: CL_OK; CL_ERR_REPLAY (duplicate or
 * too old: drop, never process); CL_ERR_AUTH (tag failed); CL_ERR_BAD_INPUT
 * (undecodable COSE / OSCORE option); CL_ERR_NOT_FOUND (no context for the
 * kid); CL_ERR_ECHO_REQUIRED (B.1.2: the request verified but the replay
 * window is not yet initialized; answer with cl_oscore_build_echo_response
 * and do not process it). cl_oscore_build_error builds the unprotected
 * section 8 error response for the others.
 *
 * Option classes (section 4.1): Uri-Host, Uri-Port, Proxy-Scheme, Proxy-Uri,
 * Hop-Limit and EDHOC are Outer (class U); Observe is both (inner value per
 * 4.1.3.5); every other option, including unknown ones, is Inner (class E).
 * Requests carrying Observe use outer code FETCH, notifications 2.05; other
 * messages POST / 2.04. Class I is empty (none defined).
 *
 * Nonces (section 5.2) use the Sender ID of the endpoint that generated the
 * Partial IV: a response with its own Partial IV but no kid is protected and
 * verified with the *server's* Sender ID, not the request's kid.
 */
#ifndef CLOISTER_OSCORE_H
#define CLOISTER_OSCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/config.h"
#include "cloister/crypto.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest Sender Sequence Number (section 7.2.1: < 2^40). */
#define CL_OSCORE_SSN_MAX ((UINT64_C(1) << 40) - 1)
/** OSCORE overhead on a request beyond the plain message, worst case without kid context. */
#define CL_OSCORE_MAX_OPTION (1 + 5 + 1 + CL_OSCORE_MAX_ID_CONTEXT + CL_OSCORE_MAX_ID)

struct cl_oscore_ctx;

/**
 * B.1.1 persistence hook: called *before* a Sender Sequence Number >= the
 * last stored ceiling is used, with the new ceiling (ssn + K). Must return
 * only once `ceiling` is durable; after a reboot pass the stored ceiling as
 * cl_oscore_params_t.initial_ssn. Failure aborts the protect (CL_ERR_PERSIST)
 * and no sequence number is consumed.
 */
typedef cl_status_t (*cl_oscore_persist_fn)(void *arg, const struct cl_oscore_ctx *ctx,
                                            uint64_t ceiling);

/** Inputs of a security context (section 3.2). Byte strings are copied. */
typedef struct cl_oscore_params {
    const uint8_t *master_secret;
    size_t master_secret_len; /**< 1..CL_OSCORE_MAX_MASTER_SECRET */
    const uint8_t *master_salt;
    size_t master_salt_len; /**< 0 = absent (empty salt) */
    const uint8_t *sender_id;
    size_t sender_id_len; /**< 0..CL_OSCORE_MAX_ID (nonce length - 6) */
    const uint8_t *recipient_id;
    size_t recipient_id_len;
    const uint8_t *id_context; /**< NULL = absent (CBOR nil in the info) */
    size_t id_context_len;
    cl_aead_alg_t aead;           /**< 0 = AES-CCM-16-64-128 */
    uint32_t replay_window;       /**< 0 = default 32; at most CL_OSCORE_REPLAY_WINDOW */
    uint64_t initial_ssn;         /**< first Sender Sequence Number (B.1.1 restore) */
    bool echo_on_boot;            /**< B.1.2: prove freshness with Echo before accepting */
    bool send_kid_context;        /**< client: put the ID Context in requests as 'kid context' */
    cl_oscore_persist_fn persist; /**< B.1.1 hook, NULL = no persistence */
    void *persist_arg;
    uint32_t persist_k; /**< 0 = CL_OSCORE_SEQ_PERSIST_K */
} cl_oscore_params_t;

/** A security context. All-zero is a valid "unset" state; free is safe on it. */
typedef struct cl_oscore_ctx {
    const cl_crypto_t *crypto;
    cl_oscore_persist_fn persist;
    void *persist_arg;
    uint64_t ssn;         /**< next Sender Sequence Number */
    uint64_t ssn_ceiling; /**< first SSN not covered by the last persisted ceiling */
    uint64_t rw_top;      /**< highest accepted request PIV */
    uint64_t rw_bits;     /**< bit i set: rw_top - i accepted */
    cl_key_t sender_key;
    cl_key_t recipient_key;
    uint32_t persist_k;
    uint8_t alg; /**< cl_aead_alg_t */
    uint8_t nonce_len;
    uint8_t tag_len;
    uint8_t window; /**< replay window width */
    uint8_t flags;  /**< CL_OSCORE_F_* */
    uint8_t sender_id_len;
    uint8_t recipient_id_len;
    uint8_t id_context_len;
    uint8_t master_secret_len;
    uint8_t master_salt_len;
    uint8_t common_iv[CL_AEAD_MAX_NONCE];
    uint8_t sender_id[CL_OSCORE_MAX_ID];
    uint8_t recipient_id[CL_OSCORE_MAX_ID];
    uint8_t id_context[CL_OSCORE_MAX_ID_CONTEXT];
    uint8_t echo[CL_OSCORE_ECHO_LEN];                   /**< B.1.2 outstanding challenge */
    uint8_t master_secret[CL_OSCORE_MAX_MASTER_SECRET]; /**< kept for B.2 re-derivation */
    uint8_t master_salt[CL_OSCORE_MAX_MASTER_SALT];
} cl_oscore_ctx_t;

#define CL_OSCORE_F_VALID 0x01      /**< derived and usable */
#define CL_OSCORE_F_HAS_IDCTX 0x02  /**< ID Context present */
#define CL_OSCORE_F_SEND_IDCTX 0x04 /**< send 'kid context' in requests */
#define CL_OSCORE_F_RW_INIT 0x08    /**< replay window holds a value */
#define CL_OSCORE_F_NEED_ECHO 0x10  /**< B.1.2: window unknown, Echo required */
#define CL_OSCORE_F_ECHO_SENT 0x20  /**< B.1.2: challenge in ctx->echo outstanding */

/** What a response is bound to: the request's kid and Partial IV (section 7.1). */
typedef struct cl_oscore_req {
    uint8_t kid[CL_OSCORE_MAX_ID];
    uint8_t kid_len;
    uint8_t piv[5];
    uint8_t piv_len;
    bool observe;       /**< the request was an Observe registration */
    bool nonce_reused;  /**< a response/notification without PIV was accepted/sent */
    bool have_notif;    /**< client: notification number valid */
    uint64_t notif_num; /**< client: largest notification PIV (section 7.4.1) */
} cl_oscore_req_t;

/** Decoded OSCORE option value (section 6.1); pointers into the value. */
typedef struct cl_oscore_option {
    const uint8_t *piv;
    size_t piv_len; /**< 0 = absent */
    const uint8_t *kid_context;
    size_t kid_context_len;
    bool has_kid_context;
    const uint8_t *kid;
    size_t kid_len;
    bool has_kid;
} cl_oscore_option_t;

/**
 * Context lookup for the server: return the context whose Recipient ID is
 * kid (and ID Context is kid_context when has_kid_context), or NULL.
 * A lookup may derive a new context (B.2).
 */
typedef cl_oscore_ctx_t *(*cl_oscore_lookup_fn)(void *arg, const uint8_t *kid, size_t kid_len,
                                                const uint8_t *kid_context, size_t kid_context_len,
                                                bool has_kid_context);

/** Derives a context (section 3.2) and imports its keys into the provider. */
cl_status_t cl_oscore_ctx_init(cl_oscore_ctx_t *ctx, const cl_crypto_t *crypto,
                               const cl_oscore_params_t *p) CL_MUST_CHECK;
/**
 * B.2: derives ctx again from its own Master Secret/Salt and IDs with a new
 * ID Context (e.g. R2 || R3); resets sequence number and replay window.
 * May be called with dst == src.
 */
cl_status_t cl_oscore_ctx_rederive(cl_oscore_ctx_t *dst, const cl_oscore_ctx_t *src,
                                   const uint8_t *id_context, size_t id_context_len) CL_MUST_CHECK;
/** Destroys the keys and wipes the context; safe on a zeroed context. */
void cl_oscore_ctx_free(cl_oscore_ctx_t *ctx);
/** The argument of cl_oscore_lookup_list: an array of context pointers. */
typedef struct cl_oscore_ctx_list {
    cl_oscore_ctx_t **ctx;
    size_t n;
} cl_oscore_ctx_list_t;
/**
 * A ready cl_oscore_lookup_fn for small tables: linear search of a
 * cl_oscore_ctx_list_t (passed as arg). Without kid context, the first
 * context with that Recipient ID matches.
 */
cl_oscore_ctx_t *cl_oscore_lookup_list(void *list, const uint8_t *kid, size_t kid_len,
                                       const uint8_t *kid_context, size_t kid_context_len,
                                       bool has_kid_context);

/** Parses an OSCORE option value (section 6.1). Reserved bits / n = 6, 7: bad input. */
cl_status_t cl_oscore_option_decode(cl_oscore_option_t *o, const uint8_t *value,
                                    size_t len) CL_MUST_CHECK;
/** Encodes an OSCORE option value into out (max CL_OSCORE_MAX_OPTION bytes unless long kid
 * context). */
cl_status_t cl_oscore_option_encode(const cl_oscore_option_t *o, uint8_t *out, size_t out_size,
                                    size_t *out_len) CL_MUST_CHECK;

/**
 * Client: protects the CoAP request coap[0..coap_len) into out. *req receives
 * what the response must be verified against. A request carrying an OSCORE
 * option is refused (no nesting). A protect that fails after the sequence
 * number was taken (e.g. CL_ERR_BUFFER_TOO_SMALL) does not give it back:
 * numbers are never reused.
 */
cl_status_t cl_oscore_protect_request(cl_oscore_ctx_t *ctx, const uint8_t *coap, size_t coap_len,
                                      uint8_t *out, size_t out_size, size_t *out_len,
                                      cl_oscore_req_t *req) CL_MUST_CHECK;

/**
 * Server: verifies and decrypts the OSCORE request msg[0..len) (msg is
 * modified: the ciphertext is decrypted in place) and writes the plain CoAP
 * request into out. *ctx_out and *req are set whenever a context was found
 * (also on CL_ERR_AUTH / CL_ERR_REPLAY / CL_ERR_ECHO_REQUIRED).
 */
cl_status_t cl_oscore_unprotect_request(cl_oscore_lookup_fn lookup, void *lookup_arg, uint8_t *msg,
                                        size_t len, uint8_t *out, size_t out_size, size_t *out_len,
                                        cl_oscore_ctx_t **ctx_out,
                                        cl_oscore_req_t *req) CL_MUST_CHECK;

/** Response protection options. */
typedef struct cl_oscore_resp_opts {
    bool
        new_piv; /**< use (and send) a fresh Partial IV; forced for notifications after the first */
    const uint8_t *kid_context; /**< B.2: 'kid context' to send (e.g. R2), NULL = none */
    size_t kid_context_len;
} cl_oscore_resp_opts_t;

/** Server: protects the CoAP response coap[0..coap_len) to the request described by *req. */
cl_status_t cl_oscore_protect_response(cl_oscore_ctx_t *ctx, cl_oscore_req_t *req,
                                       const cl_oscore_resp_opts_t *opts, const uint8_t *coap,
                                       size_t coap_len, uint8_t *out, size_t out_size,
                                       size_t *out_len) CL_MUST_CHECK;

/**
 * Client: verifies and decrypts a response (msg modified in place) to the
 * request *req into out. Notifications are checked against and update
 * req->notif_num (section 7.4.1); an older or repeated one is CL_ERR_REPLAY.
 * At most one response without Partial IV is accepted per request. For a
 * non-Observe request, "only one response" (section 7.4) is the caller's
 * matching rule: forget *req once a response was accepted.
 */
cl_status_t cl_oscore_unprotect_response(cl_oscore_ctx_t *ctx, cl_oscore_req_t *req, uint8_t *msg,
                                         size_t len, uint8_t *out, size_t out_size,
                                         size_t *out_len) CL_MUST_CHECK;

/**
 * Section 8 error responses, unprotected: 4.02 "Failed to decode COSE"
 * (CL_ERR_BAD_INPUT), 4.01 "Security context not found" (CL_ERR_NOT_FOUND),
 * 4.00 "Decryption failed" (CL_ERR_AUTH), 4.01 "Replay detected"
 * (CL_ERR_REPLAY); Outer Max-Age 0. The request (raw bytes) supplies type,
 * message id and token: a CON request gets a piggybacked ACK, a NON request
 * a NON response with message id non_mid.
 */
cl_status_t cl_oscore_build_error(cl_status_t why, const uint8_t *request, size_t request_len,
                                  uint16_t non_mid, uint8_t *out, size_t out_size,
                                  size_t *out_len) CL_MUST_CHECK;

/**
 * B.1.2: after CL_ERR_ECHO_REQUIRED, builds the OSCORE-protected 4.01 with
 * only an Echo option (fresh random challenge, stored in ctx) and the
 * server's own Partial IV, answering the request whose raw bytes are given.
 */
cl_status_t cl_oscore_build_echo_response(cl_oscore_ctx_t *ctx, cl_oscore_req_t *req,
                                          const uint8_t *request, size_t request_len,
                                          uint16_t non_mid, uint8_t *out, size_t out_size,
                                          size_t *out_len) CL_MUST_CHECK;

/** Marks a context as freshly restored (B.1.2): the next request must prove freshness with Echo. */
void cl_oscore_ctx_require_echo(cl_oscore_ctx_t *ctx);

/**
 * Section 11: HTTP "OSCORE" header value from an OSCORE option value:
 * base64url without padding, "AA" for the empty value. out is NUL terminated.
 */
cl_status_t cl_oscore_http_header_encode(const uint8_t *option, size_t option_len, char *out,
                                         size_t out_size) CL_MUST_CHECK;
/** Inverse of the above; strict base64url (no padding, canonical trailing bits). */
cl_status_t cl_oscore_http_header_decode(const char *hdr, size_t hdr_len, uint8_t *out,
                                         size_t out_size, size_t *out_len) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
