/*
 * cloister/cbor.h - zero-allocation CBOR (RFC 8949) encoder and in-place decoder.
 *
 * Encoder: writes into a caller buffer; with buf == NULL it only counts, so a
 * caller can size a buffer first. Errors are sticky: after the first failure
 * every call is a no-op and cl_cbor_enc_finish() reports the first error, so a
 * sequence of encoder calls needs one check at the end. What we emit is
 * deterministic (RFC 8949 section 4.2.1): shortest-form heads, definite
 * lengths only; floats in preferred (shortest exact) serialization.
 *
 * Decoder: works in place; strings are returned as pointers into the input.
 * It is strict, because EDHOC and COSE (RFC 9528 section 3.1) use
 * deterministically encoded CBOR and a lenient decoder makes messages
 * malleable: truncation, reserved additional-info values (28..30), heads that
 * are not in shortest form, lengths beyond the input, and nesting beyond
 * CL_CBOR_MAX_DEPTH are CL_ERR_BAD_INPUT; indefinite-length items are
 * CL_ERR_UNSUPPORTED. Reading an item of the wrong major type
 * returns CL_ERR_BAD_INPUT and does not advance. A decoder positioned on a
 * CBOR sequence (RFC 8742) simply reads item after item until
 * cl_cbor_dec_at_end().
 *
 * Arrays and maps are read "flat": cl_cbor_dec_array() returns the item count
 * and leaves the decoder on the first element; the caller reads that many
 * items (2 per map entry) or skips them with cl_cbor_dec_skip().
 */
#ifndef CLOISTER_CBOR_H
#define CLOISTER_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/config.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Major types (RFC 8949 section 3.1). */
typedef enum cl_cbor_type {
    CL_CBOR_UINT = 0,
    CL_CBOR_NINT = 1,
    CL_CBOR_BSTR = 2,
    CL_CBOR_TSTR = 3,
    CL_CBOR_ARRAY = 4,
    CL_CBOR_MAP = 5,
    CL_CBOR_TAG = 6,
    CL_CBOR_SIMPLE = 7, /**< false/true/null/undefined/simple/floats */
} cl_cbor_type_t;

/** Maximum size of an encoded head (1 + 8 bytes). */
#define CL_CBOR_MAX_HEAD 9

/* ------------------------------------------------------------------ */
/* Encoder                                                             */
/* ------------------------------------------------------------------ */

typedef struct cl_cbor_enc {
    uint8_t *buf;       /**< NULL: count only */
    size_t size;        /**< capacity of buf */
    size_t len;         /**< bytes written (or counted) so far */
    cl_status_t status; /**< first error, sticky */
} cl_cbor_enc_t;

/** Starts encoding into buf[0..size). buf may be NULL (size ignored) to count. */
void cl_cbor_enc_init(cl_cbor_enc_t *e, uint8_t *buf, size_t size);
/** Returns the sticky status; on CL_OK stores the encoded length in *len. */
cl_status_t cl_cbor_enc_finish(const cl_cbor_enc_t *e, size_t *len) CL_MUST_CHECK;

cl_status_t cl_cbor_enc_uint(cl_cbor_enc_t *e, uint64_t v);
/** Any int64 (major type 0 or 1). */
cl_status_t cl_cbor_enc_int(cl_cbor_enc_t *e, int64_t v);
/** Negative integer -1 - n (covers the whole major type 1 range). */
cl_status_t cl_cbor_enc_nint_raw(cl_cbor_enc_t *e, uint64_t n);
cl_status_t cl_cbor_enc_bstr(cl_cbor_enc_t *e, const uint8_t *p, size_t len);
cl_status_t cl_cbor_enc_tstr(cl_cbor_enc_t *e, const char *p, size_t len);
/** Text string from a NUL-terminated C string. */
cl_status_t cl_cbor_enc_tstr_z(cl_cbor_enc_t *e, const char *s);
/** Only the head of a byte string of len bytes (caller appends the content). */
cl_status_t cl_cbor_enc_bstr_head(cl_cbor_enc_t *e, size_t len);
cl_status_t cl_cbor_enc_array(cl_cbor_enc_t *e, size_t count);
cl_status_t cl_cbor_enc_map(cl_cbor_enc_t *e, size_t pairs);
cl_status_t cl_cbor_enc_tag(cl_cbor_enc_t *e, uint64_t tag);
cl_status_t cl_cbor_enc_bool(cl_cbor_enc_t *e, bool v);
cl_status_t cl_cbor_enc_null(cl_cbor_enc_t *e);
cl_status_t cl_cbor_enc_undefined(cl_cbor_enc_t *e);
/** Simple value 0..19 or 32..255 (20..31 are CL_ERR_INVALID_ARG). */
cl_status_t cl_cbor_enc_simple(cl_cbor_enc_t *e, uint8_t v);
/** Double in preferred serialization: shortest of f16/f32/f64 that is exact. */
cl_status_t cl_cbor_enc_double(cl_cbor_enc_t *e, double v);
/** Appends already-encoded CBOR bytes verbatim (caller vouches for them). */
cl_status_t cl_cbor_enc_raw(cl_cbor_enc_t *e, const uint8_t *p, size_t len);

/** Size of the head for (major type, argument): 1, 2, 3, 5 or 9. */
size_t cl_cbor_head_size(uint64_t arg);

/* ------------------------------------------------------------------ */
/* Decoder                                                             */
/* ------------------------------------------------------------------ */

typedef struct cl_cbor_dec {
    const uint8_t *cur; /**< next byte to read */
    const uint8_t *end; /**< one past the last byte */
} cl_cbor_dec_t;

void cl_cbor_dec_init(cl_cbor_dec_t *d, const uint8_t *buf, size_t len);
/** True when every byte has been consumed. */
bool cl_cbor_dec_at_end(const cl_cbor_dec_t *d);
/** Bytes left. */
size_t cl_cbor_dec_remaining(const cl_cbor_dec_t *d);

/** Major type of the next item, without consuming it. */
cl_status_t cl_cbor_dec_peek(const cl_cbor_dec_t *d, cl_cbor_type_t *type) CL_MUST_CHECK;

cl_status_t cl_cbor_dec_uint(cl_cbor_dec_t *d, uint64_t *v) CL_MUST_CHECK;
/** Major type 0 or 1 into int64; out-of-range values are CL_ERR_BAD_INPUT. */
cl_status_t cl_cbor_dec_int(cl_cbor_dec_t *d, int64_t *v) CL_MUST_CHECK;
cl_status_t cl_cbor_dec_bstr(cl_cbor_dec_t *d, const uint8_t **p, size_t *len) CL_MUST_CHECK;
/** Text string; content is not UTF-8 validated (use cl_cbor_utf8_valid). */
cl_status_t cl_cbor_dec_tstr(cl_cbor_dec_t *d, const char **p, size_t *len) CL_MUST_CHECK;
/** Enters an array: *count elements follow. */
cl_status_t cl_cbor_dec_array(cl_cbor_dec_t *d, size_t *count) CL_MUST_CHECK;
/** Enters a map: *pairs key/value pairs follow. */
cl_status_t cl_cbor_dec_map(cl_cbor_dec_t *d, size_t *pairs) CL_MUST_CHECK;
cl_status_t cl_cbor_dec_tag(cl_cbor_dec_t *d, uint64_t *tag) CL_MUST_CHECK;
cl_status_t cl_cbor_dec_bool(cl_cbor_dec_t *d, bool *v) CL_MUST_CHECK;
cl_status_t cl_cbor_dec_null(cl_cbor_dec_t *d) CL_MUST_CHECK;
cl_status_t cl_cbor_dec_undefined(cl_cbor_dec_t *d) CL_MUST_CHECK;
cl_status_t cl_cbor_dec_simple(cl_cbor_dec_t *d, uint8_t *v) CL_MUST_CHECK;
/** f16, f32 or f64 into a double. */
cl_status_t cl_cbor_dec_double(cl_cbor_dec_t *d, double *v) CL_MUST_CHECK;

/** Skips one complete item (nested up to CL_CBOR_MAX_DEPTH), validating it. */
cl_status_t cl_cbor_dec_skip(cl_cbor_dec_t *d) CL_MUST_CHECK;
/** Skips one complete item and returns its encoded bytes (pointer into input). */
cl_status_t cl_cbor_dec_raw(cl_cbor_dec_t *d, const uint8_t **p, size_t *len) CL_MUST_CHECK;

/** Checks that buf is a well-formed CBOR sequence; *count (may be NULL) = items. */
cl_status_t cl_cbor_validate_seq(const uint8_t *buf, size_t len, size_t *count) CL_MUST_CHECK;
/** True when p[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool cl_cbor_utf8_valid(const uint8_t *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif
