/*
 * fuzz_cbor.c - libFuzzer harness for the CBOR codec (lib/cbor.c).
 *
 * The input is read as a CBOR sequence. Invariants checked with abort():
 * - cl_cbor_validate_seq() agrees with walking the sequence item by item
 *   with cl_cbor_dec_raw() (same verdict, same count), and dec_raw returns
 *   exactly the bytes it consumed, which validate again as one item;
 * - every accepted item decodes with the typed readers and re-encodes to the
 *   very same bytes (the decoder accepts deterministic heads only); items
 *   holding floats may shrink (any width is read, the shortest is written)
 *   but re-encoding is then a fixed point; counting mode gives the same size;
 * - every typed reader leaves the position unchanged when it fails;
 * - the encoder round-trips integers and doubles built from the input bits;
 * - cl_cbor_utf8_valid() agrees with an independent code-point decoder.
 * Recursion below is bounded: it only walks items validate_seq accepted,
 * which are at most CL_CBOR_MAX_DEPTH deep.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* UTF-8 by decoding code points, written differently from the library's table. */
static bool ref_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i], cp, min;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static bool same_double(double a, double b)
{
    if (a != a || b != b)
        return a != a && b != b;
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Decodes one validated item with the typed readers and re-encodes it into e. */
static void walk(cl_cbor_dec_t *d, cl_cbor_enc_t *e, int depth, bool *had_float)
{
    cl_cbor_type_t t;
    uint64_t u;
    int64_t i;
    const uint8_t *p;
    const char *s;
    size_t n;
    uint8_t sv;
    bool b;
    double v;

    CHECK(depth <= CL_CBOR_MAX_DEPTH);
    CHECK(cl_cbor_dec_peek(d, &t) == CL_OK);
    switch (t) {
    case CL_CBOR_UINT:
        CHECK(cl_cbor_dec_uint(d, &u) == CL_OK);
        (void)cl_cbor_enc_uint(e, u);
        break;
    case CL_CBOR_NINT:
        if (cl_cbor_dec_int(d, &i) == CL_OK) {
            CHECK(i < 0);
            (void)cl_cbor_enc_int(e, i);
        } else {
            /* below INT64_MIN: only the 8-byte form can hold it */
            CHECK(cl_cbor_dec_raw(d, &p, &n) == CL_OK);
            CHECK(n == 9 && p[0] == 0x3b && p[1] >= 0x80);
            u = 0;
            for (size_t k = 1; k < 9; k++)
                u = u << 8 | p[k];
            (void)cl_cbor_enc_nint_raw(e, u);
        }
        break;
    case CL_CBOR_BSTR:
        CHECK(cl_cbor_dec_bstr(d, &p, &n) == CL_OK);
        (void)cl_cbor_enc_bstr(e, p, n);
        break;
    case CL_CBOR_TSTR:
        CHECK(cl_cbor_dec_tstr(d, &s, &n) == CL_OK);
        CHECK(cl_cbor_utf8_valid((const uint8_t *)s, n) == ref_utf8((const uint8_t *)s, n));
        (void)cl_cbor_enc_tstr(e, s, n);
        break;
    case CL_CBOR_ARRAY:
        CHECK(cl_cbor_dec_array(d, &n) == CL_OK);
        (void)cl_cbor_enc_array(e, n);
        for (size_t k = 0; k < n; k++)
            walk(d, e, depth + 1, had_float);
        break;
    case CL_CBOR_MAP:
        CHECK(cl_cbor_dec_map(d, &n) == CL_OK);
        (void)cl_cbor_enc_map(e, n);
        for (size_t k = 0; k < 2 * n; k++)
            walk(d, e, depth + 1, had_float);
        break;
    case CL_CBOR_TAG:
        CHECK(cl_cbor_dec_tag(d, &u) == CL_OK);
        (void)cl_cbor_enc_tag(e, u);
        walk(d, e, depth + 1, had_float);
        break;
    case CL_CBOR_SIMPLE:
        if (cl_cbor_dec_bool(d, &b) == CL_OK) {
            (void)cl_cbor_enc_bool(e, b);
        } else if (cl_cbor_dec_null(d) == CL_OK) {
            (void)cl_cbor_enc_null(e);
        } else if (cl_cbor_dec_undefined(d) == CL_OK) {
            (void)cl_cbor_enc_undefined(e);
        } else if (cl_cbor_dec_simple(d, &sv) == CL_OK) {
            CHECK(sv < 20 || sv >= 32);
            CHECK(cl_cbor_enc_simple(e, sv) == e->status);
        } else {
            CHECK(cl_cbor_dec_double(d, &v) == CL_OK);
            (void)cl_cbor_enc_double(e, v);
            *had_float = true;
        }
        break;
    }
}

/* Re-encodes the single item item[0..len) into out (capacity len) or counts it. */
static size_t reencode(const uint8_t *item, size_t len, uint8_t *out, bool *had_float)
{
    cl_cbor_dec_t d;
    cl_cbor_enc_t e;
    size_t n = 0;

    cl_cbor_dec_init(&d, item, len);
    cl_cbor_enc_init(&e, out, len);
    walk(&d, &e, 0, had_float);
    CHECK(cl_cbor_dec_at_end(&d));
    /* nothing we emit is longer than what the strict decoder accepted */
    CHECK(cl_cbor_enc_finish(&e, &n) == CL_OK);
    CHECK(n <= len);
    return n;
}

static void check_item(const uint8_t *item, size_t len)
{
    uint8_t *out = malloc(len), *again = malloc(len);
    bool had_float = false, f2 = false, f3 = false;
    size_t n, n2, cnt = 0;

    CHECK(out != NULL && again != NULL);
    CHECK(cl_cbor_validate_seq(item, len, &cnt) == CL_OK && cnt == 1);
    n = reencode(item, len, out, &had_float);
    CHECK(reencode(item, len, NULL, &f2) == n); /* counting mode */
    if (!had_float) {
        CHECK(n == len && memcmp(out, item, len) == 0);
    } else {
        /* floats are read in any width; writing the shortest form is a fixed point */
        CHECK(cl_cbor_validate_seq(out, n, &cnt) == CL_OK && cnt == 1);
        n2 = reencode(out, n, again, &f3);
        CHECK(n2 == n && memcmp(again, out, n) == 0);
    }
    free(out);
    free(again);
}

/* The typed readers at the start of the input: no advance on failure, sane advance on success. */
static void check_readers(const uint8_t *data, size_t size)
{
    cl_cbor_dec_t d;
    uint64_t u;
    int64_t i;
    const uint8_t *p;
    const char *s;
    size_t n, raw_len = 0;
    bool b;
    uint8_t sv;
    double v;
    cl_cbor_type_t t;
    bool have_raw;

    cl_cbor_dec_init(&d, data, size);
    have_raw = cl_cbor_dec_raw(&d, &p, &raw_len) == CL_OK;
    if (!have_raw)
        CHECK(d.cur == data);

#define READER(call, scalar)                                                                       \
    do {                                                                                           \
        cl_cbor_dec_init(&d, data, size);                                                          \
        if ((call) != CL_OK) {                                                                     \
            CHECK(d.cur == data);                                                                  \
        } else {                                                                                   \
            CHECK(d.cur > data && d.cur <= data + size);                                           \
            if ((scalar) && have_raw)                                                              \
                CHECK((size_t)(d.cur - data) == raw_len);                                          \
        }                                                                                          \
    } while (0)

    READER(cl_cbor_dec_uint(&d, &u), true);
    READER(cl_cbor_dec_int(&d, &i), true);
    READER(cl_cbor_dec_bstr(&d, &p, &n), true);
    READER(cl_cbor_dec_tstr(&d, &s, &n), true);
    READER(cl_cbor_dec_array(&d, &n), false);
    READER(cl_cbor_dec_map(&d, &n), false);
    READER(cl_cbor_dec_tag(&d, &u), false);
    READER(cl_cbor_dec_bool(&d, &b), true);
    READER(cl_cbor_dec_null(&d), true);
    READER(cl_cbor_dec_undefined(&d), true);
    READER(cl_cbor_dec_simple(&d, &sv), true);
    READER(cl_cbor_dec_double(&d, &v), true);
    READER(cl_cbor_dec_skip(&d), true);
#undef READER

    /* peek agrees with the readers on the major type */
    cl_cbor_dec_init(&d, data, size);
    if (cl_cbor_dec_peek(&d, &t) != CL_OK) {
        CHECK(!have_raw);
        return;
    }
    /* each reader on a fresh decoder at the first item */
#define AGREES(call, cond)                                                                         \
    do {                                                                                           \
        cl_cbor_dec_init(&d, data, size);                                                          \
        if ((call) == CL_OK)                                                                       \
            CHECK(cond);                                                                           \
    } while (0)
    AGREES(cl_cbor_dec_array(&d, &n), t == CL_CBOR_ARRAY && n <= size);
    AGREES(cl_cbor_dec_map(&d, &n), t == CL_CBOR_MAP && n <= size / 2);
    AGREES(cl_cbor_dec_tag(&d, &u), t == CL_CBOR_TAG);
    AGREES(cl_cbor_dec_int(&d, &i), t == (i < 0 ? CL_CBOR_NINT : CL_CBOR_UINT));
    AGREES(cl_cbor_dec_bstr(&d, &p, &n), t == CL_CBOR_BSTR);
    AGREES(cl_cbor_dec_tstr(&d, &s, &n), t == CL_CBOR_TSTR);
    AGREES(cl_cbor_dec_double(&d, &v), t == CL_CBOR_SIMPLE);
    AGREES(cl_cbor_dec_simple(&d, &sv), t == CL_CBOR_SIMPLE);
#undef AGREES
}

/* Encoder round trips of values taken from the input bits. */
static void check_encoder(const uint8_t *data, size_t size)
{
    uint64_t bits = 0;
    uint8_t out[CL_CBOR_MAX_HEAD * 4];
    cl_cbor_enc_t e;
    cl_cbor_dec_t d;
    size_t n = 0, counted = 0;
    uint64_t u;
    int64_t i;
    double v, r;

    for (size_t k = 0; k < 8 && k < size; k++)
        bits = bits << 8 | data[k];
    memcpy(&v, &bits, sizeof v);
    memcpy(&i, &bits, sizeof i);

    cl_cbor_enc_init(&e, out, sizeof out);
    (void)cl_cbor_enc_uint(&e, bits);
    (void)cl_cbor_enc_int(&e, i);
    (void)cl_cbor_enc_nint_raw(&e, bits >> 1);
    (void)cl_cbor_enc_double(&e, v);
    CHECK(cl_cbor_enc_finish(&e, &n) == CL_OK);
    cl_cbor_enc_init(&e, NULL, 0);
    (void)cl_cbor_enc_uint(&e, bits);
    (void)cl_cbor_enc_int(&e, i);
    (void)cl_cbor_enc_nint_raw(&e, bits >> 1);
    (void)cl_cbor_enc_double(&e, v);
    CHECK(cl_cbor_enc_finish(&e, &counted) == CL_OK && counted == n);

    cl_cbor_dec_init(&d, out, n);
    CHECK(cl_cbor_dec_uint(&d, &u) == CL_OK && u == bits);
    int64_t j;
    CHECK(cl_cbor_dec_int(&d, &j) == CL_OK && j == i);
    CHECK(cl_cbor_dec_int(&d, &j) == CL_OK && j == -1 - (int64_t)(bits >> 1));
    CHECK(cl_cbor_dec_double(&d, &r) == CL_OK && same_double(r, v));
    CHECK(cl_cbor_dec_at_end(&d));
    CHECK(cl_cbor_head_size(bits) == cl_cbor_head_size(u));

    /* a buffer one byte short fails, with the error kept for finish */
    for (size_t cap = 0; cap < n; cap += 1 + cap / 2) {
        cl_cbor_enc_init(&e, out, cap);
        (void)cl_cbor_enc_uint(&e, bits);
        (void)cl_cbor_enc_int(&e, i);
        (void)cl_cbor_enc_nint_raw(&e, bits >> 1);
        (void)cl_cbor_enc_double(&e, v);
        CHECK(cl_cbor_enc_finish(&e, &counted) == CL_ERR_BUFFER_TOO_SMALL);
        CHECK(e.len <= cap);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cl_cbor_dec_t d;
    size_t count = 0, walked = 0;
    cl_status_t verdict = cl_cbor_validate_seq(data, size, &count);
    bool ok = true;

    cl_cbor_dec_init(&d, data, size);
    while (!cl_cbor_dec_at_end(&d)) {
        const uint8_t *start = d.cur, *p = NULL;
        size_t len = 0;
        cl_status_t rc = cl_cbor_dec_raw(&d, &p, &len);
        if (rc != CL_OK) {
            CHECK(d.cur == start);
            CHECK(rc == verdict);
            ok = false;
            break;
        }
        CHECK(p == start && len > 0 && len == (size_t)(d.cur - start));
        CHECK(d.cur <= data + size);
        check_item(p, len);
        walked++;
    }
    if (ok)
        CHECK(verdict == CL_OK && count == walked);
    else
        CHECK(verdict != CL_OK);

    check_readers(data, size);
    check_encoder(data, size);
    CHECK(cl_cbor_utf8_valid(data, size) == ref_utf8(data, size));
    return 0;
}
