/*
 * core/resources.h - what the resource handlers share (resources.c: PKI,
 * clients, events, history; model_resources.c: types, rules, actions,
 * scenarios): the request context and the payload helpers. Internal to
 * the core.
 */
#ifndef CLOISTER_CORE_RESOURCES_H
#define CLOISTER_CORE_RESOURCES_H

#include "core_internal.h"

typedef struct reqctx {
    cl_core_t *c;
    const cl_coap_msg_t *req;
    cl_session_t *x; /* NULL for unprotected requests */
    uint64_t peer;   /* the host's id of the requester's endpoint */
    uint16_t transport;
    char path[96];
    /* response being built */
    uint8_t code;
    uint8_t body[CL_CORE_MAX_MESSAGE];
    size_t body_len;
    uint8_t *big; /* a large body (heap), served block-wise instead of body */
    size_t big_len;
    int64_t observe; /* >= 0: the response carries Observe with this value */
    bool defer;      /* no answer now: a long poll held open (CL_BATCH_F_DEFER) */
    cl_oscore_req_t *oreq; /* what the response is bound to (observations keep a copy) */
    bool json_in;  /* the request body arrived as JSON (Content-Format 50), now CBOR */
    bool json_out; /* Accept: 50: the answer is converted to JSON */
    int64_t block1; /* >= 0: the encoded Block1 option value echoed in the answer */
} reqctx_t;

#define R(x) (1u << (x))
#define ADMINS (R(CL_ROLE_OWNER) | R(CL_ROLE_ADMIN))
#define MEMBERS (ADMINS | R(CL_ROLE_USER) | R(CL_ROLE_DEVICE) | R(CL_ROLE_SERVICE))
#define READERS (ADMINS | R(CL_ROLE_USER))

/** An answer {key: value}. */
cl_status_t cl_res_uint_answer(reqctx_t *r, uint8_t code, const char *key, uint64_t value);
/** 2.05 with the heap body an encoder wrote into `big` (freed on failure: 5.00). */
cl_status_t cl_res_big_answer(reqctx_t *r, const cl_cbor_enc_t *e, uint8_t *big);
/** An error response {"error": err, "message": msg}. */
cl_status_t cl_res_error(reqctx_t *r, uint8_t code, const char *err, const char *msg);
/** Positions d at the value of text key `key` in the top-level map of p (<= 32 keys). */
bool cl_res_map_find(const uint8_t *p, size_t len, const char *key, cl_cbor_dec_t *d);
bool cl_res_get_bstr(const uint8_t *p, size_t len, const char *key, const uint8_t **v,
                     size_t *vl);
bool cl_res_get_tstr(const uint8_t *p, size_t len, const char *key, const char **v, size_t *vl);
bool cl_res_get_uint(const uint8_t *p, size_t len, const char *key, uint64_t *v);
/** The value of Uri-Query "key=value" (first occurrence); false when absent. */
bool cl_res_get_query(const cl_coap_msg_t *m, const char *key, const char **v, size_t *vl);
/** A decimal integer query value (optional leading '-'); false when malformed. */
bool cl_res_parse_int(const char *v, size_t len, int64_t *out);
bool cl_res_role_in(const reqctx_t *r, unsigned mask);
/** A CoAP response to req (piggybacked on the ACK of a CON); observe < 0: none. */
cl_status_t cl_res_build_response(cl_core_t *c, const cl_coap_msg_t *req, uint8_t code,
                                  const uint8_t *body, size_t body_len, bool piggyback,
                                  uint8_t *out, size_t out_size, size_t *out_len);

/** The same with Observe (observe >= 0) and a Content-Format (60 CBOR, 50 JSON). */
cl_status_t cl_res_build_response_obs(cl_core_t *c, const cl_coap_msg_t *req, uint8_t code,
                                      const uint8_t *body, size_t body_len, bool piggyback,
                                      int64_t observe, int64_t block1, uint16_t cf,
                                      uint8_t *out, size_t out_size, size_t *out_len);

/* model_resources.c: the model's routes; CL_ERR_NOT_FOUND when the path is not one of them. */
cl_status_t cl_model_route(reqctx_t *r) CL_MUST_CHECK;
/** 4.12 version-conflict {"error", "message", "version": current}. */
cl_status_t cl_model_conflict(reqctx_t *r, uint64_t current);

#endif
