/*
 * cloister/coap.h - CoAP message codec (RFC 7252, Observe RFC 7641, Block RFC 7959).
 *
 * Pure codec, no sockets: the parser works in place and hands back pointers
 * into the caller's datagram; the builder writes into a caller buffer. The
 * parser is strict: a message that RFC 7252 calls a "message format error"
 * is CL_ERR_BAD_INPUT (version != 1, token length 9..15, option delta or
 * length nibble 15 outside the payload marker, option numbers above 65535,
 * option data beyond the end, a payload marker followed by no payload, an
 * Empty message (0.00) with token, options or payload). More options than
 * CL_COAP_MAX_OPTIONS is CL_ERR_LIMIT.
 */
#ifndef CLOISTER_COAP_H
#define CLOISTER_COAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/config.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message types */
#define CL_COAP_CON 0
#define CL_COAP_NON 1
#define CL_COAP_ACK 2
#define CL_COAP_RST 3

/* Codes: class.detail */
#define CL_COAP_CODE(c, dd) ((uint8_t)(((c) << 5) | (dd)))
#define CL_COAP_CLASS(code) ((uint8_t)((code) >> 5))
#define CL_COAP_DETAIL(code) ((uint8_t)((code)&0x1f))
#define CL_COAP_EMPTY CL_COAP_CODE(0, 0)
#define CL_COAP_GET CL_COAP_CODE(0, 1)
#define CL_COAP_POST CL_COAP_CODE(0, 2)
#define CL_COAP_PUT CL_COAP_CODE(0, 3)
#define CL_COAP_DELETE CL_COAP_CODE(0, 4)
#define CL_COAP_FETCH CL_COAP_CODE(0, 5)
#define CL_COAP_PATCH CL_COAP_CODE(0, 6)
#define CL_COAP_IPATCH CL_COAP_CODE(0, 7)
#define CL_COAP_CREATED CL_COAP_CODE(2, 1)
#define CL_COAP_DELETED CL_COAP_CODE(2, 2)
#define CL_COAP_VALID CL_COAP_CODE(2, 3)
#define CL_COAP_CHANGED CL_COAP_CODE(2, 4)
#define CL_COAP_CONTENT CL_COAP_CODE(2, 5)
#define CL_COAP_CONTINUE CL_COAP_CODE(2, 31)
#define CL_COAP_BAD_REQUEST CL_COAP_CODE(4, 0)
#define CL_COAP_UNAUTHORIZED CL_COAP_CODE(4, 1)
#define CL_COAP_BAD_OPTION CL_COAP_CODE(4, 2)
#define CL_COAP_FORBIDDEN CL_COAP_CODE(4, 3)
#define CL_COAP_NOT_FOUND CL_COAP_CODE(4, 4)
#define CL_COAP_METHOD_NOT_ALLOWED CL_COAP_CODE(4, 5)
#define CL_COAP_NOT_ACCEPTABLE CL_COAP_CODE(4, 6)
#define CL_COAP_REQUEST_INCOMPLETE CL_COAP_CODE(4, 8)
#define CL_COAP_PRECONDITION_FAILED CL_COAP_CODE(4, 12)
#define CL_COAP_REQUEST_TOO_LARGE CL_COAP_CODE(4, 13)
#define CL_COAP_UNSUPPORTED_FORMAT CL_COAP_CODE(4, 15)
#define CL_COAP_INTERNAL_ERROR CL_COAP_CODE(5, 0)
#define CL_COAP_NOT_IMPLEMENTED CL_COAP_CODE(5, 1)
#define CL_COAP_SERVICE_UNAVAILABLE CL_COAP_CODE(5, 3)

/* Option numbers (RFC 7252, 7641, 7959, 8613, 9175, 9528) */
#define CL_COAP_OPT_IF_MATCH 1
#define CL_COAP_OPT_URI_HOST 3
#define CL_COAP_OPT_ETAG 4
#define CL_COAP_OPT_IF_NONE_MATCH 5
#define CL_COAP_OPT_OBSERVE 6
#define CL_COAP_OPT_URI_PORT 7
#define CL_COAP_OPT_LOCATION_PATH 8
#define CL_COAP_OPT_OSCORE 9
#define CL_COAP_OPT_URI_PATH 11
#define CL_COAP_OPT_CONTENT_FORMAT 12
#define CL_COAP_OPT_MAX_AGE 14
#define CL_COAP_OPT_URI_QUERY 15
#define CL_COAP_OPT_HOP_LIMIT 16
#define CL_COAP_OPT_ACCEPT 17
#define CL_COAP_OPT_Q_BLOCK1 19
#define CL_COAP_OPT_LOCATION_QUERY 20
#define CL_COAP_OPT_EDHOC 21
#define CL_COAP_OPT_BLOCK2 23
#define CL_COAP_OPT_BLOCK1 27
#define CL_COAP_OPT_SIZE2 28
#define CL_COAP_OPT_Q_BLOCK2 31
#define CL_COAP_OPT_PROXY_URI 35
#define CL_COAP_OPT_PROXY_SCHEME 39
#define CL_COAP_OPT_SIZE1 60
#define CL_COAP_OPT_ECHO 252
#define CL_COAP_OPT_NO_RESPONSE 258
#define CL_COAP_OPT_REQUEST_TAG 292

/* Content-Formats */
#define CL_COAP_CF_TEXT 0
#define CL_COAP_CF_LINK_FORMAT 40
#define CL_COAP_CF_JSON 50
#define CL_COAP_CF_CBOR 60
#define CL_COAP_CF_EDHOC_CBOR_SEQ 64
#define CL_COAP_CF_CBOR_SEQ 63
#define CL_COAP_CF_OSCORE 10001

/** Option properties (RFC 7252 section 5.4.6): critical = odd number. */
#define CL_COAP_OPT_IS_CRITICAL(n) (((n)&1u) != 0)
#define CL_COAP_OPT_IS_UNSAFE(n) (((n)&2u) != 0)

/** Max header bytes for one option: 1 + 2 (delta) + 2 (length). */
#define CL_COAP_MAX_OPT_HEAD 5

typedef struct cl_coap_option {
    uint16_t number;
    uint16_t len;
    const uint8_t *value; /**< points into the parsed datagram (or caller data) */
} cl_coap_option_t;

/** A parsed (or to-be-serialized) message. All pointers reference caller memory. */
typedef struct cl_coap_msg {
    uint8_t type;         /**< CL_COAP_CON.. */
    uint8_t code;         /**< CL_COAP_CODE(c, dd) */
    uint16_t mid;         /**< message id */
    uint8_t tkl;          /**< token length 0..8 */
    const uint8_t *token; /**< tkl bytes */
    size_t n_options;     /**< options, sorted by number, repeats in order */
    cl_coap_option_t options[CL_COAP_MAX_OPTIONS];
    const uint8_t *payload; /**< NULL when payload_len == 0 */
    size_t payload_len;
} cl_coap_msg_t;

/** Parses datagram buf[0..len) in place into *m. */
cl_status_t cl_coap_parse(cl_coap_msg_t *m, const uint8_t *buf, size_t len) CL_MUST_CHECK;

/**
 * Serializes *m (options must be sorted by number; use cl_coap_sort_options)
 * into out; out may be NULL (out_size 0) to compute *out_len only.
 */
cl_status_t cl_coap_serialize(const cl_coap_msg_t *m, uint8_t *out, size_t out_size,
                              size_t *out_len) CL_MUST_CHECK;

/** Stable sort of m->options by number (keeps the order of repeated options). */
void cl_coap_sort_options(cl_coap_msg_t *m);

/** Adds an option to *m (not sorted); CL_ERR_LIMIT when the array is full. */
cl_status_t cl_coap_msg_add_option(cl_coap_msg_t *m, uint16_t number, const uint8_t *value,
                                   size_t len) CL_MUST_CHECK;

/**
 * Finds the first option >= index *pos with this number and sets *pos to its
 * index (pos++ continues after it); NULL and *pos = n_options if none.
 */
const cl_coap_option_t *cl_coap_msg_find(const cl_coap_msg_t *m, uint16_t number, size_t *pos);
/** First option with this number or NULL. */
const cl_coap_option_t *cl_coap_msg_get(const cl_coap_msg_t *m, uint16_t number);

/** Decodes a uint option value (0..4 bytes, leading zeros tolerated on input). */
cl_status_t cl_coap_opt_uint(const cl_coap_option_t *opt, uint32_t *v) CL_MUST_CHECK;
/** Minimal uint encoding into out[4]; returns the length (0 for value 0). */
size_t cl_coap_uint_encode(uint8_t out[4], uint32_t v);

/** Block1/Block2 option value (RFC 7959 section 2.2). */
typedef struct cl_coap_block {
    uint32_t num; /**< block number, < 2^20 */
    bool more;    /**< M bit */
    uint8_t szx;  /**< size exponent 0..6 (block size 2^(szx+4)); 7 is reserved */
} cl_coap_block_t;
cl_status_t cl_coap_block_decode(const cl_coap_option_t *opt, cl_coap_block_t *b) CL_MUST_CHECK;
/** Encodes a block value into out[3]; returns the length. CL_ERR_INVALID_ARG via *len=0 on bad
 * values. */
cl_status_t cl_coap_block_encode(const cl_coap_block_t *b, uint8_t out[3],
                                 size_t *len) CL_MUST_CHECK;

/**
 * Joins the Uri-Path options into "/a/b" (or "/" when none) in out, NUL terminated.
 * Segments containing '/' are CL_ERR_BAD_INPUT (they cannot be represented).
 */
cl_status_t cl_coap_uri_path(const cl_coap_msg_t *m, char *out, size_t out_size) CL_MUST_CHECK;
/** Adds one Uri-Path option per segment of path ("/a/b" or "a/b"), pointing into path. */
cl_status_t cl_coap_msg_set_uri_path(cl_coap_msg_t *m, const char *path) CL_MUST_CHECK;

/* ---- incremental builder: options must be added in non-decreasing order ---- */
typedef struct cl_coap_builder {
    uint8_t *buf;
    size_t size;
    size_t len;
    uint16_t last_opt;
    bool payload;       /**< payload started: no more options */
    cl_status_t status; /**< first error, sticky */
} cl_coap_builder_t;

void cl_coap_build_init(cl_coap_builder_t *b, uint8_t *buf, size_t size, uint8_t type, uint8_t code,
                        uint16_t mid, const uint8_t *token, size_t tkl);
cl_status_t cl_coap_build_option(cl_coap_builder_t *b, uint16_t number, const uint8_t *value,
                                 size_t len);
cl_status_t cl_coap_build_option_uint(cl_coap_builder_t *b, uint16_t number, uint32_t v);
/** Appends the payload marker and payload (nothing when len == 0). */
cl_status_t cl_coap_build_payload(cl_coap_builder_t *b, const uint8_t *p, size_t len);
cl_status_t cl_coap_build_finish(const cl_coap_builder_t *b, size_t *len) CL_MUST_CHECK;

/**
 * Encodes one option (header + value) following an option numbered `prev`
 * into out; *out_len = bytes written. Used for message bodies that are not
 * whole messages (the OSCORE plaintext). number < prev is CL_ERR_INVALID_ARG.
 */
cl_status_t cl_coap_option_encode(uint8_t *out, size_t out_size, size_t *out_len, uint16_t prev,
                                  uint16_t number, const uint8_t *value, size_t len) CL_MUST_CHECK;
/**
 * Parses the part of a message that follows the token (options, then an
 * optional payload marker and payload) into m->options / m->payload (other
 * fields untouched). Same strictness as cl_coap_parse.
 */
cl_status_t cl_coap_options_parse(cl_coap_msg_t *m, const uint8_t *buf, size_t len) CL_MUST_CHECK;

/** Name of a code ("2.05") into out[5]. */
void cl_coap_code_str(uint8_t code, char out[5]);

#ifdef __cplusplus
}
#endif
#endif
