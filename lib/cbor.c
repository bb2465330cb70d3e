/*
 * cbor.c - zero-allocation CBOR (RFC 8949) encoder and strict in-place decoder.
 *
 * What: an encoder that writes into a caller buffer (or, with buf == NULL,
 * only counts bytes) with a sticky first error, and a decoder that reads
 * items in place and hands back pointers into the caller's buffer. Arrays and
 * maps are read "flat" (the caller reads the announced number of items);
 * cl_cbor_dec_skip() and cl_cbor_validate_seq() walk whole nested items.
 *
 * Why it is strict: COSE and EDHOC sign and MAC encoded CBOR, and OSCORE
 * feeds it into AEAD additional data, so one value must have exactly one
 * encoding or messages become malleable. The encoder only emits the
 * deterministic form of RFC 8949 section 4.2.1 (shortest heads, definite
 * lengths, floats in preferred serialization with the canonical NaN
 * f9 7e 00), and the decoder rejects every head that is not in shortest
 * form, the reserved additional-information values 28..30, two-byte simple
 * values below 32, truncation, and lengths beyond the input
 * (CL_ERR_BAD_INPUT); indefinite lengths are CL_ERR_UNSUPPORTED. Float
 * widths are not checked on input: they are read as values (nothing Cloister
 * signs carries floats), so f32 Infinity decodes like f16 Infinity.
 *
 * Safety: lengths from the wire are 64-bit and are only ever compared with
 * the number of bytes left, never added to a pointer first, so a length near
 * 2^64 cannot wrap. Skipping nested items is iterative, with one counter of
 * pending items per open container in a CL_CBOR_MAX_DEPTH array on the
 * stack; arrays, maps and tags each count as one level. Every decoder leaves
 * the position unchanged when it fails. Floats are converted with integer
 * operations on their bit patterns (no libm: lib/ links against memcpy and
 * friends only).
 */
#include "cloister/cbor.h"

#include <string.h>

/* Initial-byte fields (RFC 8949 section 3). */
#define AI_MASK 0x1fu
#define AI_1BYTE 24u
#define AI_2BYTE 25u
#define AI_4BYTE 26u
#define AI_8BYTE 27u
#define AI_INDEF 31u

/* Major type 7 values (RFC 8949 section 3.3). */
#define SIMPLE_FALSE 20u
#define SIMPLE_TRUE 21u
#define SIMPLE_NULL 22u
#define SIMPLE_UNDEF 23u
#define IB_FALSE 0xf4u
#define IB_TRUE 0xf5u
#define IB_NULL 0xf6u
#define IB_UNDEF 0xf7u
#define IB_F16 0xf9u
#define IB_F32 0xfau
#define IB_F64 0xfbu

/** A decoded head: major type, additional information, argument, head length. */
struct head {
    unsigned major;
    unsigned ai;
    uint64_t arg;
    size_t len;
};

/* ------------------------------------------------------------------ */
/* Encoder                                                             */
/* ------------------------------------------------------------------ */

/* Appends n bytes (or counts them); the first failure sticks in e->status. */
static cl_status_t put(cl_cbor_enc_t *e, const uint8_t *p, size_t n)
{
    if (e->status != CL_OK)
        goto done;
    if (e->buf == NULL) {
        if (n > SIZE_MAX - e->len) {
            e->status = CL_FAIL(CL_ERR_LIMIT);
            goto done;
        }
    } else {
        if (n > e->size - e->len) {
            e->status = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
            goto done;
        }
        if (n > 0)
            memcpy(e->buf + e->len, p, n);
    }
    e->len += n;
done:
    return e->status;
}

/* Records a caller error in the sticky status (unless an earlier error is there). */
static cl_status_t enc_fail(cl_cbor_enc_t *e, cl_status_t s)
{
    if (e->status == CL_OK)
        e->status = s;
    return e->status;
}

/* Writes the shortest head for (major, arg) into h; returns its length. */
static size_t make_head(uint8_t h[CL_CBOR_MAX_HEAD], unsigned major, uint64_t arg)
{
    size_t n = cl_cbor_head_size(arg);
    uint8_t ib = (uint8_t)(major << 5);

    switch (n) {
    case 1: h[0] = (uint8_t)(ib | arg); break;
    case 2: h[0] = (uint8_t)(ib | AI_1BYTE); break;
    case 3: h[0] = (uint8_t)(ib | AI_2BYTE); break;
    case 5: h[0] = (uint8_t)(ib | AI_4BYTE); break;
    default: h[0] = (uint8_t)(ib | AI_8BYTE); break;
    }
    for (size_t i = n - 1; i >= 1; i--) {
        h[i] = (uint8_t)arg;
        arg >>= 8;
    }
    return n;
}

static cl_status_t put_head(cl_cbor_enc_t *e, unsigned major, uint64_t arg)
{
    uint8_t h[CL_CBOR_MAX_HEAD];
    size_t n = make_head(h, major, arg);
    return put(e, h, n);
}

/* A head with a fixed-width argument (floats: the width carries meaning). */
static cl_status_t put_fixed(cl_cbor_enc_t *e, uint8_t ib, uint64_t bits, size_t width)
{
    uint8_t h[CL_CBOR_MAX_HEAD];

    h[0] = ib;
    for (size_t i = width; i >= 1; i--) {
        h[i] = (uint8_t)bits;
        bits >>= 8;
    }
    return put(e, h, width + 1);
}

void cl_cbor_enc_init(cl_cbor_enc_t *e, uint8_t *buf, size_t size)
{
    if (e == NULL)
        return;
    e->buf = buf;
    e->size = buf == NULL ? 0 : size;
    e->len = 0;
    e->status = CL_OK;
}

cl_status_t cl_cbor_enc_finish(const cl_cbor_enc_t *e, size_t *len)
{
    cl_status_t rc = CL_OK;

    if (e == NULL || len == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = e->status;
    if (rc == CL_OK)
        *len = e->len;
done:
    return rc;
}

size_t cl_cbor_head_size(uint64_t arg)
{
    if (arg < AI_1BYTE)
        return 1;
    if (arg <= 0xffu)
        return 2;
    if (arg <= 0xffffu)
        return 3;
    if (arg <= 0xffffffffu)
        return 5;
    return 9;
}

cl_status_t cl_cbor_enc_uint(cl_cbor_enc_t *e, uint64_t v)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put_head(e, CL_CBOR_UINT, v);
}

cl_status_t cl_cbor_enc_int(cl_cbor_enc_t *e, int64_t v)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (v >= 0)
        return put_head(e, CL_CBOR_UINT, (uint64_t)v);
    /* -1 - v without overflow: v + 1 is > INT64_MIN, so its negation fits. */
    return put_head(e, CL_CBOR_NINT, (uint64_t)(-(v + 1)));
}

cl_status_t cl_cbor_enc_nint_raw(cl_cbor_enc_t *e, uint64_t n)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put_head(e, CL_CBOR_NINT, n);
}

/* Head plus content of a byte or text string. */
static cl_status_t put_string(cl_cbor_enc_t *e, unsigned major, const void *p, size_t len)
{
    if (p == NULL && len > 0)
        return enc_fail(e, CL_FAIL(CL_ERR_INVALID_ARG));
    (void)put_head(e, major, len);
    return put(e, p, len);
}

cl_status_t cl_cbor_enc_bstr(cl_cbor_enc_t *e, const uint8_t *p, size_t len)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put_string(e, CL_CBOR_BSTR, p, len);
}

cl_status_t cl_cbor_enc_tstr(cl_cbor_enc_t *e, const char *p, size_t len)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put_string(e, CL_CBOR_TSTR, p, len);
}

cl_status_t cl_cbor_enc_tstr_z(cl_cbor_enc_t *e, const char *s)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (s == NULL)
        return enc_fail(e, CL_FAIL(CL_ERR_INVALID_ARG));
    return put_string(e, CL_CBOR_TSTR, s, strlen(s));
}

cl_status_t cl_cbor_enc_bstr_head(cl_cbor_enc_t *e, size_t len)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put_head(e, CL_CBOR_BSTR, len);
}

cl_status_t cl_cbor_enc_array(cl_cbor_enc_t *e, size_t count)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put_head(e, CL_CBOR_ARRAY, count);
}

cl_status_t cl_cbor_enc_map(cl_cbor_enc_t *e, size_t pairs)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put_head(e, CL_CBOR_MAP, pairs);
}

cl_status_t cl_cbor_enc_tag(cl_cbor_enc_t *e, uint64_t tag)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put_head(e, CL_CBOR_TAG, tag);
}

cl_status_t cl_cbor_enc_bool(cl_cbor_enc_t *e, bool v)
{
    uint8_t b = v ? IB_TRUE : IB_FALSE;
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put(e, &b, 1);
}

cl_status_t cl_cbor_enc_null(cl_cbor_enc_t *e)
{
    static const uint8_t b = IB_NULL;
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put(e, &b, 1);
}

cl_status_t cl_cbor_enc_undefined(cl_cbor_enc_t *e)
{
    static const uint8_t b = IB_UNDEF;
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return put(e, &b, 1);
}

cl_status_t cl_cbor_enc_simple(cl_cbor_enc_t *e, uint8_t v)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    /* 20..23 have their own functions; 24..31 cannot be encoded at all. */
    if (v >= SIMPLE_FALSE && v < 32)
        return enc_fail(e, CL_FAIL(CL_ERR_INVALID_ARG));
    return put_head(e, CL_CBOR_SIMPLE, v);
}

/*
 * Preferred serialization (RFC 8949 section 4.1/4.2.2): the shortest of
 * binary16, binary32 and binary64 that represents v exactly, subnormals
 * included; every NaN becomes the canonical f9 7e 00.
 */
cl_status_t cl_cbor_enc_double(cl_cbor_enc_t *e, double v)
{
    uint64_t bits, sign, mant, full, out;
    unsigned sh;
    uint8_t ib = IB_F64;
    int exp;

    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    memcpy(&bits, &v, sizeof bits);
    out = bits;
    sign = bits >> 63;
    exp = (int)((bits >> 52) & 0x7ffu);
    mant = bits & 0xfffffffffffffull;

    if (exp == 0x7ff) {
        /* infinities keep their sign; every NaN is the canonical quiet NaN */
        ib = IB_F16;
        out = mant != 0 ? 0x7e00u : (sign << 15 | 0x7c00u);
        goto done;
    }
    if (exp == 0) {
        /* zeros fit binary16; binary64 subnormals are far below binary32 */
        if (mant == 0) {
            ib = IB_F16;
            out = sign << 15;
        }
        goto done;
    }
    exp -= 1023;
    full = mant | 1ull << 52; /* value = full * 2^(exp - 52) */
    if (exp >= -14 && exp <= 15 && (mant & ((1ull << 42) - 1)) == 0) {
        ib = IB_F16;
        out = sign << 15 | (uint64_t)(exp + 15) << 10 | mant >> 42;
        goto done;
    }
    if (exp >= -24 && exp < -14) {
        /* binary16 subnormal: value = m * 2^-24 with m = full >> (28 - exp) */
        sh = (unsigned)(28 - exp);
        if ((full & ((1ull << sh) - 1)) == 0) {
            ib = IB_F16;
            out = sign << 15 | full >> sh;
            goto done;
        }
    }
    if (exp >= -126 && exp <= 127 && (mant & ((1ull << 29) - 1)) == 0) {
        ib = IB_F32;
        out = sign << 31 | (uint64_t)(exp + 127) << 23 | mant >> 29;
        goto done;
    }
    if (exp >= -149 && exp < -126) {
        /* binary32 subnormal: value = m * 2^-149 with m = full >> (-97 - exp) */
        sh = (unsigned)(-97 - exp);
        if ((full & ((1ull << sh) - 1)) == 0) {
            ib = IB_F32;
            out = sign << 31 | full >> sh;
        }
    }
done:
    return put_fixed(e, ib, out, ib == IB_F16 ? 2 : ib == IB_F32 ? 4 : 8);
}

cl_status_t cl_cbor_enc_raw(cl_cbor_enc_t *e, const uint8_t *p, size_t len)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (p == NULL && len > 0)
        return enc_fail(e, CL_FAIL(CL_ERR_INVALID_ARG));
    return put(e, p, len);
}

/* ------------------------------------------------------------------ */
/* Decoder                                                             */
/* ------------------------------------------------------------------ */

/*
 * Reads and checks the head at p (p < end not required). Does not look at
 * string contents or container elements. Errors: truncated head, reserved
 * additional information, non-shortest argument, simple value < 32 in two
 * bytes (BAD_INPUT); indefinite-length strings/containers (UNSUPPORTED);
 * other uses of additional information 31, the break byte included
 * (BAD_INPUT).
 */
static cl_status_t read_head(const uint8_t *p, const uint8_t *end, struct head *h)
{
    cl_status_t rc = CL_OK;
    size_t avail, n;

    if (p >= end) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    avail = (size_t)(end - p);
    h->major = p[0] >> 5;
    h->ai = p[0] & AI_MASK;
    if (h->ai < AI_1BYTE) {
        h->arg = h->ai;
        h->len = 1;
        goto done;
    }
    if (h->ai == AI_INDEF) {
        if (h->major >= CL_CBOR_BSTR && h->major <= CL_CBOR_MAP)
            rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        else
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (h->ai > AI_8BYTE) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    n = (size_t)1 << (h->ai - AI_1BYTE);
    if (avail - 1 < n) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    h->arg = 0;
    for (size_t i = 1; i <= n; i++)
        h->arg = h->arg << 8 | p[i];
    h->len = 1 + n;
    if (h->major == CL_CBOR_SIMPLE) {
        /* 0xf8 carries simple values 32..255 only; 0xf9..0xfb are floats of any bits. */
        if (h->ai == AI_1BYTE && h->arg < 32)
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if ((n == 1 && h->arg < AI_1BYTE) || (n == 2 && h->arg <= 0xffu) ||
        (n == 4 && h->arg <= 0xffffu) || (n == 8 && h->arg <= 0xffffffffu))
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
done:
    return rc;
}

/* Reads the head at the decoder position and requires major type `major`. */
static cl_status_t expect(const cl_cbor_dec_t *d, unsigned major, struct head *h)
{
    cl_status_t rc = read_head(d->cur, d->end, h);
    if (rc == CL_OK && h->major != major)
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
    return rc;
}

/* Bytes after a head of hlen bytes at d->cur (read_head guarantees hlen <= remaining). */
static size_t after_head(const cl_cbor_dec_t *d, const struct head *h)
{
    return (size_t)(d->end - d->cur) - h->len;
}

void cl_cbor_dec_init(cl_cbor_dec_t *d, const uint8_t *buf, size_t len)
{
    if (d == NULL)
        return;
    if (buf == NULL)
        len = 0;
    d->cur = buf;
    d->end = buf == NULL ? NULL : buf + len;
}

bool cl_cbor_dec_at_end(const cl_cbor_dec_t *d)
{
    return d == NULL || d->cur >= d->end;
}

size_t cl_cbor_dec_remaining(const cl_cbor_dec_t *d)
{
    if (d == NULL || d->cur >= d->end)
        return 0;
    return (size_t)(d->end - d->cur);
}

cl_status_t cl_cbor_dec_peek(const cl_cbor_dec_t *d, cl_cbor_type_t *type)
{
    cl_status_t rc;
    struct head h;

    if (d == NULL || type == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = read_head(d->cur, d->end, &h);
    if (rc == CL_OK)
        *type = (cl_cbor_type_t)h.major;
done:
    return rc;
}

cl_status_t cl_cbor_dec_uint(cl_cbor_dec_t *d, uint64_t *v)
{
    cl_status_t rc;
    struct head h;

    if (d == NULL || v == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = expect(d, CL_CBOR_UINT, &h);
    if (rc != CL_OK)
        goto done;
    *v = h.arg;
    d->cur += h.len;
done:
    return rc;
}

cl_status_t cl_cbor_dec_int(cl_cbor_dec_t *d, int64_t *v)
{
    cl_status_t rc;
    struct head h;

    if (d == NULL || v == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = read_head(d->cur, d->end, &h);
    if (rc != CL_OK)
        goto done;
    if ((h.major != CL_CBOR_UINT && h.major != CL_CBOR_NINT) || h.arg > (uint64_t)INT64_MAX) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    /* Major 1 encodes -1 - arg; arg <= INT64_MAX keeps it >= INT64_MIN. */
    *v = h.major == CL_CBOR_UINT ? (int64_t)h.arg : -1 - (int64_t)h.arg;
    d->cur += h.len;
done:
    return rc;
}

/* Byte or text string: pointer to the content and its length. */
static cl_status_t dec_string(cl_cbor_dec_t *d, unsigned major, const uint8_t **p, size_t *len)
{
    cl_status_t rc;
    struct head h;

    rc = expect(d, major, &h);
    if (rc != CL_OK)
        goto done;
    if (h.arg > after_head(d, &h)) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    *p = d->cur + h.len;
    *len = (size_t)h.arg;
    d->cur += h.len + (size_t)h.arg;
done:
    return rc;
}

cl_status_t cl_cbor_dec_bstr(cl_cbor_dec_t *d, const uint8_t **p, size_t *len)
{
    if (d == NULL || p == NULL || len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return dec_string(d, CL_CBOR_BSTR, p, len);
}

cl_status_t cl_cbor_dec_tstr(cl_cbor_dec_t *d, const char **p, size_t *len)
{
    cl_status_t rc;
    const uint8_t *q = NULL;

    if (d == NULL || p == NULL || len == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = dec_string(d, CL_CBOR_TSTR, &q, len);
    if (rc == CL_OK)
        *p = (const char *)q;
done:
    return rc;
}

/*
 * Array or map head; every element needs at least one byte, so a count
 * beyond the bytes left is rejected here already (and always fits size_t).
 */
static cl_status_t dec_container(cl_cbor_dec_t *d, unsigned major, size_t *count)
{
    cl_status_t rc;
    struct head h;
    size_t left;

    rc = expect(d, major, &h);
    if (rc != CL_OK)
        goto done;
    left = after_head(d, &h);
    if (major == CL_CBOR_MAP)
        left /= 2;
    if (h.arg > left) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    *count = (size_t)h.arg;
    d->cur += h.len;
done:
    return rc;
}

cl_status_t cl_cbor_dec_array(cl_cbor_dec_t *d, size_t *count)
{
    if (d == NULL || count == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return dec_container(d, CL_CBOR_ARRAY, count);
}

cl_status_t cl_cbor_dec_map(cl_cbor_dec_t *d, size_t *pairs)
{
    if (d == NULL || pairs == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return dec_container(d, CL_CBOR_MAP, pairs);
}

cl_status_t cl_cbor_dec_tag(cl_cbor_dec_t *d, uint64_t *tag)
{
    cl_status_t rc;
    struct head h;

    if (d == NULL || tag == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = expect(d, CL_CBOR_TAG, &h);
    if (rc != CL_OK)
        goto done;
    /* A tag must be followed by its content. */
    if (after_head(d, &h) == 0) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    *tag = h.arg;
    d->cur += h.len;
done:
    return rc;
}

/* Simple value (not a float) at the position: 0..23 or 32..255. */
static cl_status_t dec_simple_value(const cl_cbor_dec_t *d, struct head *h)
{
    cl_status_t rc = expect(d, CL_CBOR_SIMPLE, h);
    if (rc == CL_OK && h->ai > AI_1BYTE)
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
    return rc;
}

cl_status_t cl_cbor_dec_bool(cl_cbor_dec_t *d, bool *v)
{
    cl_status_t rc;
    struct head h;

    if (d == NULL || v == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = dec_simple_value(d, &h);
    if (rc != CL_OK)
        goto done;
    if (h.arg != SIMPLE_FALSE && h.arg != SIMPLE_TRUE) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    *v = h.arg == SIMPLE_TRUE;
    d->cur += h.len;
done:
    return rc;
}

/* Consumes the one-byte simple value `value` or fails without advancing. */
static cl_status_t dec_exact_simple(cl_cbor_dec_t *d, unsigned value)
{
    cl_status_t rc;
    struct head h;

    if (d == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = dec_simple_value(d, &h);
    if (rc != CL_OK)
        goto done;
    if (h.arg != value) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    d->cur += h.len;
done:
    return rc;
}

cl_status_t cl_cbor_dec_null(cl_cbor_dec_t *d)
{
    return dec_exact_simple(d, SIMPLE_NULL);
}

cl_status_t cl_cbor_dec_undefined(cl_cbor_dec_t *d)
{
    return dec_exact_simple(d, SIMPLE_UNDEF);
}

cl_status_t cl_cbor_dec_simple(cl_cbor_dec_t *d, uint8_t *v)
{
    cl_status_t rc;
    struct head h;

    if (d == NULL || v == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = dec_simple_value(d, &h);
    if (rc != CL_OK)
        goto done;
    *v = (uint8_t)h.arg;
    d->cur += h.len;
done:
    return rc;
}

/* binary16 bits to double, exactly (every binary16 value is a double). */
static double half_to_double(uint64_t h)
{
    uint64_t sign = (h >> 15) & 1u, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint64_t bits;
    double v;

    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24, exact in a double */
        v = (double)mant * 0x1p-24;
        return sign ? -v : v;
    }
    if (exp == 0x1f)
        bits = sign << 63 | 0x7ffull << 52 | mant << 42;
    else
        bits = sign << 63 | (exp - 15 + 1023) << 52 | mant << 42;
    memcpy(&v, &bits, sizeof v);
    return v;
}

cl_status_t cl_cbor_dec_double(cl_cbor_dec_t *d, double *v)
{
    cl_status_t rc;
    struct head h;

    if (d == NULL || v == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = expect(d, CL_CBOR_SIMPLE, &h);
    if (rc != CL_OK)
        goto done;
    if (h.ai == AI_2BYTE) {
        *v = half_to_double(h.arg);
    } else if (h.ai == AI_4BYTE) {
        uint32_t b32 = (uint32_t)h.arg;
        float f;
        memcpy(&f, &b32, sizeof f);
        *v = (double)f;
    } else if (h.ai == AI_8BYTE) {
        memcpy(v, &h.arg, sizeof *v);
    } else {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    d->cur += h.len;
done:
    return rc;
}

/*
 * Skips one complete item starting at *pp. Iterative: pending[i] counts the
 * items still to read in the i-th open container (a tag is a container of
 * one). Opening a container at depth CL_CBOR_MAX_DEPTH is an error.
 */
static cl_status_t skip_item(const uint8_t **pp, const uint8_t *end)
{
    cl_status_t rc = CL_OK;
    uint64_t pending[CL_CBOR_MAX_DEPTH];
    size_t depth = 0;
    const uint8_t *p = *pp;
    struct head h = {0, 0, 0, 0};
    size_t left;

    for (;;) {
        rc = read_head(p, end, &h);
        if (rc != CL_OK)
            goto done;
        left = (size_t)(end - p) - h.len;
        p += h.len;
        switch (h.major) {
        case CL_CBOR_BSTR:
        case CL_CBOR_TSTR:
            if (h.arg > left) {
                rc = CL_FAIL(CL_ERR_BAD_INPUT);
                goto done;
            }
            p += (size_t)h.arg;
            break;
        case CL_CBOR_ARRAY:
        case CL_CBOR_MAP:
        case CL_CBOR_TAG:
            if (depth == CL_CBOR_MAX_DEPTH) {
                rc = CL_FAIL(CL_ERR_BAD_INPUT);
                goto done;
            }
            if (h.major == CL_CBOR_TAG) {
                pending[depth++] = 1;
                continue;
            }
            if (h.arg > (h.major == CL_CBOR_MAP ? left / 2 : left)) {
                rc = CL_FAIL(CL_ERR_BAD_INPUT);
                goto done;
            }
            if (h.arg > 0) {
                pending[depth++] = h.major == CL_CBOR_MAP ? 2 * h.arg : h.arg;
                continue;
            }
            break;      /* an empty container is complete */
        default: break; /* integers and simple values are the head alone */
        }
        /* One item completed: close every container it completes. */
        while (depth > 0 && --pending[depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    *pp = p;
done:
    return rc;
}

cl_status_t cl_cbor_dec_skip(cl_cbor_dec_t *d)
{
    if (d == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return skip_item(&d->cur, d->end);
}

cl_status_t cl_cbor_dec_raw(cl_cbor_dec_t *d, const uint8_t **p, size_t *len)
{
    cl_status_t rc;
    const uint8_t *start;

    if (d == NULL || p == NULL || len == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    start = d->cur;
    rc = skip_item(&d->cur, d->end);
    if (rc != CL_OK)
        goto done;
    *p = start;
    *len = (size_t)(d->cur - start);
done:
    return rc;
}

cl_status_t cl_cbor_validate_seq(const uint8_t *buf, size_t len, size_t *count)
{
    cl_status_t rc = CL_OK;
    const uint8_t *p = buf, *end;
    size_t n = 0;

    if (buf == NULL && len > 0) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    end = buf == NULL ? NULL : buf + len;
    while (p < end) {
        rc = skip_item(&p, end);
        if (rc != CL_OK)
            goto done;
        n++;
    }
    if (count != NULL)
        *count = n;
done:
    return rc;
}

/*
 * UTF-8 as in RFC 3629 / Unicode table 3-7: the second byte's range depends
 * on the first so that overlongs (c0, c1, e0 80..9f, f0 80..8f), surrogates
 * (ed a0..bf) and code points above U+10FFFF (f4 90.., f5..ff) are refused.
 */
bool cl_cbor_utf8_valid(const uint8_t *p, size_t len)
{
    size_t i = 0;

    if (p == NULL)
        return len == 0;
    while (i < len) {
        uint8_t c = p[i];
        size_t n;
        uint8_t lo = 0x80, hi = 0xbf;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return false;
        }
        if (len - i - 1 < n)
            return false;
        if (p[i + 1] < lo || p[i + 1] > hi)
            return false;
        for (size_t k = 2; k <= n; k++)
            if (p[i + k] < 0x80 || p[i + k] > 0xbf)
                return false;
        i += n + 1;
    }
    return true;
}
