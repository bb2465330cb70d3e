/*
 * test_cbor.c - the CBOR codec against RFC 8949 Appendix A, and its refusals.
 *
 * Appendix A examples are data: each is a hex encoding plus the sequence of
 * codec calls ("ops") that produce it. One generic function runs the ops on
 * the encoder (counting mode, exact buffer, short buffers) and on the
 * decoder, byte for byte. Examples that need indefinite lengths are checked
 * to be refused; bignums are plain tag + bstr to the codec and are included.
 * Then one test per rejection rule of cloister/cbor.h, truncation of a nested
 * item at every offset, the depth limit at its exact boundary, floats in
 * preferred serialization and the UTF-8 validator.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cloister/cbor.h"

/* ------------------------------------------------------------------ */
/* Appendix A as data                                                  */
/* ------------------------------------------------------------------ */

typedef enum op_kind {
    T_END = 0,
    T_UINT,   /* u */
    T_INT,    /* i */
    T_NRAW,   /* -1 - u, beyond int64 */
    T_BSTR,   /* s = hex of the content */
    T_TSTR,   /* s = text */
    T_ARRAY,  /* u = count */
    T_MAP,    /* u = pairs */
    T_TAG,    /* u */
    T_BOOL,   /* u = 0/1 */
    T_NULL,   /* */
    T_UNDEF,  /* */
    T_SIMPLE, /* u */
    T_DOUBLE, /* d */
} op_kind_t;

struct op {
    op_kind_t k;
    uint64_t u;
    int64_t i;
    double d;
    const char *s;
};

#define MAX_OPS 30

struct example {
    const char *diag;
    const char *hex;
    bool decode_only; /* not what our (preferred) encoder emits */
    struct op ops[MAX_OPS];
};

#define U(v)                                                                                       \
    {                                                                                              \
        .k = T_UINT, .u = (v)                                                                      \
    }
#define I(v)                                                                                       \
    {                                                                                              \
        .k = T_INT, .i = (v)                                                                       \
    }
#define NRAW(v)                                                                                    \
    {                                                                                              \
        .k = T_NRAW, .u = (v)                                                                      \
    }
#define BS(h)                                                                                      \
    {                                                                                              \
        .k = T_BSTR, .s = (h)                                                                      \
    }
#define TS(t)                                                                                      \
    {                                                                                              \
        .k = T_TSTR, .s = (t)                                                                      \
    }
#define ARR(n)                                                                                     \
    {                                                                                              \
        .k = T_ARRAY, .u = (n)                                                                     \
    }
#define MAP(n)                                                                                     \
    {                                                                                              \
        .k = T_MAP, .u = (n)                                                                       \
    }
#define TAG(n)                                                                                     \
    {                                                                                              \
        .k = T_TAG, .u = (n)                                                                       \
    }
#define BOOL(v)                                                                                    \
    {                                                                                              \
        .k = T_BOOL, .u = (v)                                                                      \
    }
#define NUL                                                                                        \
    {                                                                                              \
        .k = T_NULL                                                                                \
    }
#define UNDEF                                                                                      \
    {                                                                                              \
        .k = T_UNDEF                                                                               \
    }
#define SIMPLE(v)                                                                                  \
    {                                                                                              \
        .k = T_SIMPLE, .u = (v)                                                                    \
    }
#define D(v)                                                                                       \
    {                                                                                              \
        .k = T_DOUBLE, .d = (v)                                                                    \
    }

/* RFC 8949 Appendix A, Table 6, minus the indefinite-length rows (see below). */
static const struct example examples[] = {
    {"0", "00", false, {U(0)}},
    {"1", "01", false, {U(1)}},
    {"10", "0a", false, {U(10)}},
    {"23", "17", false, {U(23)}},
    {"24", "1818", false, {U(24)}},
    {"25", "1819", false, {U(25)}},
    {"100", "1864", false, {U(100)}},
    {"1000", "1903e8", false, {U(1000)}},
    {"1000000", "1a000f4240", false, {U(1000000)}},
    {"1000000000000", "1b000000e8d4a51000", false, {U(1000000000000ull)}},
    {"18446744073709551615", "1bffffffffffffffff", false, {U(UINT64_MAX)}},
    {"18446744073709551616 (bignum)",
     "c249010000000000000000",
     false,
     {TAG(2), BS("010000000000000000")}},
    {"-18446744073709551616", "3bffffffffffffffff", false, {NRAW(UINT64_MAX)}},
    {"-18446744073709551617 (bignum)",
     "c349010000000000000000",
     false,
     {TAG(3), BS("010000000000000000")}},
    {"-1", "20", false, {I(-1)}},
    {"-10", "29", false, {I(-10)}},
    {"-100", "3863", false, {I(-100)}},
    {"-1000", "3903e7", false, {I(-1000)}},
    {"0.0", "f90000", false, {D(0.0)}},
    {"-0.0", "f98000", false, {D(-0.0)}},
    {"1.0", "f93c00", false, {D(1.0)}},
    {"1.1", "fb3ff199999999999a", false, {D(1.1)}},
    {"1.5", "f93e00", false, {D(1.5)}},
    {"65504.0", "f97bff", false, {D(65504.0)}},
    {"100000.0", "fa47c35000", false, {D(100000.0)}},
    {"3.4028234663852886e+38", "fa7f7fffff", false, {D(3.4028234663852886e+38)}},
    {"1.0e+300", "fb7e37e43c8800759c", false, {D(1.0e+300)}},
    {"5.960464477539063e-8", "f90001", false, {D(5.960464477539063e-8)}},
    {"0.00006103515625", "f90400", false, {D(0.00006103515625)}},
    {"-4.0", "f9c400", false, {D(-4.0)}},
    {"-4.1", "fbc010666666666666", false, {D(-4.1)}},
    {"Infinity", "f97c00", false, {D(INFINITY)}},
    {"NaN", "f97e00", false, {D(NAN)}},
    {"-Infinity", "f9fc00", false, {D(-INFINITY)}},
    {"Infinity (f32)", "fa7f800000", true, {D(INFINITY)}},
    {"NaN (f32)", "fa7fc00000", true, {D(NAN)}},
    {"-Infinity (f32)", "faff800000", true, {D(-INFINITY)}},
    {"Infinity (f64)", "fb7ff0000000000000", true, {D(INFINITY)}},
    {"NaN (f64)", "fb7ff8000000000000", true, {D(NAN)}},
    {"-Infinity (f64)", "fbfff0000000000000", true, {D(-INFINITY)}},
    {"false", "f4", false, {BOOL(0)}},
    {"true", "f5", false, {BOOL(1)}},
    {"null", "f6", false, {NUL}},
    {"undefined", "f7", false, {UNDEF}},
    {"simple(16)", "f0", false, {SIMPLE(16)}},
    {"simple(255)", "f8ff", false, {SIMPLE(255)}},
    {"0(\"2013-03-21T20:04:00Z\")",
     "c074323031332d30332d32315432303a30343a30305a",
     false,
     {TAG(0), TS("2013-03-21T20:04:00Z")}},
    {"1(1363896240)", "c11a514b67b0", false, {TAG(1), U(1363896240)}},
    {"1(1363896240.5)", "c1fb41d452d9ec200000", false, {TAG(1), D(1363896240.5)}},
    {"23(h'01020304')", "d74401020304", false, {TAG(23), BS("01020304")}},
    {"24(h'6449455446')", "d818456449455446", false, {TAG(24), BS("6449455446")}},
    {"32(\"http://www.example.com\")",
     "d82076687474703a2f2f7777772e6578616d706c652e636f6d",
     false,
     {TAG(32), TS("http://www.example.com")}},
    {"h''", "40", false, {BS("")}},
    {"h'01020304'", "4401020304", false, {BS("01020304")}},
    {"\"\"", "60", false, {TS("")}},
    {"\"a\"", "6161", false, {TS("a")}},
    {"\"IETF\"", "6449455446", false, {TS("IETF")}},
    {"\"\\\"\\\\\"", "62225c", false, {TS("\"\\")}},
    {"\"\\u00fc\"", "62c3bc", false, {TS("\xc3\xbc")}},
    {"\"\\u6c34\"", "63e6b0b4", false, {TS("\xe6\xb0\xb4")}},
    {"\"\\ud800\\udd51\"", "64f0908591", false, {TS("\xf0\x90\x85\x91")}},
    {"[]", "80", false, {ARR(0)}},
    {"[1, 2, 3]", "83010203", false, {ARR(3), U(1), U(2), U(3)}},
    {"[1, [2, 3], [4, 5]]",
     "8301820203820405",
     false,
     {ARR(3), U(1), ARR(2), U(2), U(3), ARR(2), U(4), U(5)}},
    {"[1, ..., 25]",
     "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
     false,
     {ARR(25), U(1),  U(2),  U(3),  U(4),  U(5),  U(6),  U(7),  U(8),  U(9),  U(10), U(11), U(12),
      U(13),   U(14), U(15), U(16), U(17), U(18), U(19), U(20), U(21), U(22), U(23), U(24), U(25)}},
    {"{}", "a0", false, {MAP(0)}},
    {"{1: 2, 3: 4}", "a201020304", false, {MAP(2), U(1), U(2), U(3), U(4)}},
    {"{\"a\": 1, \"b\": [2, 3]}",
     "a26161016162820203",
     false,
     {MAP(2), TS("a"), U(1), TS("b"), ARR(2), U(2), U(3)}},
    {"[\"a\", {\"b\": \"c\"}]",
     "826161a161626163",
     false,
     {ARR(2), TS("a"), MAP(1), TS("b"), TS("c")}},
    {"{\"a\": \"A\", ..., \"e\": \"E\"}",
     "a56161614161626142616361436164614461656145",
     false,
     {MAP(5), TS("a"), TS("A"), TS("b"), TS("B"), TS("c"), TS("C"), TS("d"), TS("D"), TS("e"),
      TS("E")}},
};

/* The Appendix A rows that use indefinite lengths: refused as unsupported. */
static const char *const indefinite_examples[] = {
    "5f42010243030405ff",
    "7f657374726561646d696e67ff",
    "9fff",
    "9f018202039f0405ffff",
    "9f01820203820405ff",
    "83018202039f0405ff",
    "83019f0203ff820405",
    "9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff",
    "bf61610161629f0203ffff",
    "826161bf61626163ff",
    "bf6346756ef563416d7421ff",
};

static void run_encoder(const struct op *ops, cl_cbor_enc_t *e)
{
    uint8_t tmp[64];
    size_t n;

    for (const struct op *o = ops; o->k != T_END; o++) {
        switch (o->k) {
        case T_UINT: (void)cl_cbor_enc_uint(e, o->u); break;
        case T_INT: (void)cl_cbor_enc_int(e, o->i); break;
        case T_NRAW: (void)cl_cbor_enc_nint_raw(e, o->u); break;
        case T_BSTR:
            n = tu_hex(o->s, tmp, sizeof tmp);
            (void)cl_cbor_enc_bstr(e, tmp, n);
            break;
        case T_TSTR:
            /* both forms must agree; use the length form for odd ops */
            if ((o - ops) % 2)
                (void)cl_cbor_enc_tstr(e, o->s, strlen(o->s));
            else
                (void)cl_cbor_enc_tstr_z(e, o->s);
            break;
        case T_ARRAY: (void)cl_cbor_enc_array(e, (size_t)o->u); break;
        case T_MAP: (void)cl_cbor_enc_map(e, (size_t)o->u); break;
        case T_TAG: (void)cl_cbor_enc_tag(e, o->u); break;
        case T_BOOL: (void)cl_cbor_enc_bool(e, o->u != 0); break;
        case T_NULL: (void)cl_cbor_enc_null(e); break;
        case T_UNDEF: (void)cl_cbor_enc_undefined(e); break;
        case T_SIMPLE: (void)cl_cbor_enc_simple(e, (uint8_t)o->u); break;
        case T_DOUBLE: (void)cl_cbor_enc_double(e, o->d); break;
        case T_END: break;
        }
    }
}

static bool same_double(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return memcmp(&a, &b, sizeof a) == 0; /* tells -0.0 from 0.0 */
}

static void run_decoder(const struct example *ex, const uint8_t *buf, size_t len)
{
    cl_cbor_dec_t d;
    uint8_t tmp[64];
    const uint8_t *p;
    const char *t;
    size_t n, cnt;
    uint64_t u;
    int64_t i;
    double dv;
    bool b;
    uint8_t sv;
    cl_cbor_type_t type;

    cl_cbor_dec_init(&d, buf, len);
    for (const struct op *o = ex->ops; o->k != T_END; o++) {
        assert_int_equal(cl_cbor_dec_peek(&d, &type), CL_OK);
        switch (o->k) {
        case T_UINT:
            assert_int_equal(type, CL_CBOR_UINT);
            assert_int_equal(cl_cbor_dec_uint(&d, &u), CL_OK);
            assert_true(u == o->u);
            break;
        case T_INT:
            assert_int_equal(cl_cbor_dec_int(&d, &i), CL_OK);
            assert_true(i == o->i);
            break;
        case T_NRAW:
            assert_int_equal(type, CL_CBOR_NINT);
            /* below INT64_MIN: dec_int refuses, the item is still well-formed */
            assert_int_equal(cl_cbor_dec_int(&d, &i), CL_ERR_BAD_INPUT);
            assert_int_equal(cl_cbor_dec_skip(&d), CL_OK);
            break;
        case T_BSTR:
            n = tu_hex(o->s, tmp, sizeof tmp);
            assert_int_equal(cl_cbor_dec_bstr(&d, &p, &cnt), CL_OK);
            tu_assert_bytes(p, cnt, tmp, n);
            break;
        case T_TSTR:
            assert_int_equal(cl_cbor_dec_tstr(&d, &t, &cnt), CL_OK);
            tu_assert_bytes((const uint8_t *)t, cnt, (const uint8_t *)o->s, strlen(o->s));
            assert_true(cl_cbor_utf8_valid((const uint8_t *)t, cnt));
            break;
        case T_ARRAY:
            assert_int_equal(cl_cbor_dec_array(&d, &cnt), CL_OK);
            assert_true(cnt == o->u);
            break;
        case T_MAP:
            assert_int_equal(cl_cbor_dec_map(&d, &cnt), CL_OK);
            assert_true(cnt == o->u);
            break;
        case T_TAG:
            assert_int_equal(cl_cbor_dec_tag(&d, &u), CL_OK);
            assert_true(u == o->u);
            break;
        case T_BOOL:
            assert_int_equal(cl_cbor_dec_bool(&d, &b), CL_OK);
            assert_int_equal(b, o->u != 0);
            break;
        case T_NULL: assert_int_equal(cl_cbor_dec_null(&d), CL_OK); break;
        case T_UNDEF: assert_int_equal(cl_cbor_dec_undefined(&d), CL_OK); break;
        case T_SIMPLE:
            assert_int_equal(cl_cbor_dec_simple(&d, &sv), CL_OK);
            assert_int_equal(sv, o->u);
            break;
        case T_DOUBLE:
            assert_int_equal(type, CL_CBOR_SIMPLE);
            assert_int_equal(cl_cbor_dec_double(&d, &dv), CL_OK);
            if (!same_double(dv, o->d))
                fail_msg("%s: decoded %.17g, expected %.17g", ex->diag, dv, o->d);
            break;
        case T_END: break;
        }
    }
    assert_true(cl_cbor_dec_at_end(&d));
    assert_int_equal(cl_cbor_dec_remaining(&d), 0);
}

static void test_appendix_a(void **state)
{
    (void)state;
    size_t encoded = 0, decoded = 0;

    for (size_t k = 0; k < sizeof examples / sizeof examples[0]; k++) {
        const struct example *ex = &examples[k];
        uint8_t want[64], out[64];
        size_t wlen = tu_hex(ex->hex, want, sizeof want);
        size_t counted = 0, len = 0, cnt = 0;
        cl_cbor_enc_t e;
        cl_cbor_dec_t d;
        const uint8_t *raw;
        size_t rawlen;

        /* decode: value by value, then the item as a whole */
        run_decoder(ex, want, wlen);
        assert_int_equal(cl_cbor_validate_seq(want, wlen, &cnt), CL_OK);
        assert_int_equal(cnt, 1);
        cl_cbor_dec_init(&d, want, wlen);
        assert_int_equal(cl_cbor_dec_raw(&d, &raw, &rawlen), CL_OK);
        assert_ptr_equal(raw, want);
        assert_int_equal(rawlen, wlen);
        decoded++;
        if (ex->decode_only)
            continue;

        /* encode: counting mode, exact buffer, then every shorter buffer */
        cl_cbor_enc_init(&e, NULL, 0);
        run_encoder(ex->ops, &e);
        assert_int_equal(cl_cbor_enc_finish(&e, &counted), CL_OK);
        assert_int_equal(counted, wlen);

        cl_cbor_enc_init(&e, out, wlen);
        run_encoder(ex->ops, &e);
        assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
        if (len != wlen || memcmp(out, want, wlen) != 0)
            fprintf(stderr, "example %s\n", ex->diag);
        tu_assert_bytes(out, len, want, wlen);

        for (size_t cap = 0; cap < wlen; cap++) {
            len = 12345;
            cl_cbor_enc_init(&e, out, cap);
            run_encoder(ex->ops, &e);
            assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_ERR_BUFFER_TOO_SMALL);
            assert_int_equal(len, 12345); /* untouched on error */
            assert_true(e.len <= cap);
        }
        encoded++;
    }
    printf("Appendix A: %zu decoded, %zu encoded byte for byte, %zu indefinite refused\n", decoded,
           encoded, sizeof indefinite_examples / sizeof indefinite_examples[0]);
}

static void test_appendix_a_indefinite_refused(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof indefinite_examples / sizeof indefinite_examples[0]; k++) {
        uint8_t buf[64];
        size_t n = tu_hex(indefinite_examples[k], buf, sizeof buf);
        cl_cbor_dec_t d;
        assert_int_equal(cl_cbor_validate_seq(buf, n, NULL), CL_ERR_UNSUPPORTED);
        cl_cbor_dec_init(&d, buf, n);
        assert_int_equal(cl_cbor_dec_skip(&d), CL_ERR_UNSUPPORTED);
        assert_ptr_equal(d.cur, buf);
    }
}

/* ------------------------------------------------------------------ */
/* Decoder refusals                                                    */
/* ------------------------------------------------------------------ */

/* Asserts that hex is refused with `want` by validate, skip and raw, without advancing. */
static void assert_refused(const char *hex, cl_status_t want)
{
    uint8_t buf[64];
    size_t n = tu_hex(hex, buf, sizeof buf);
    cl_cbor_dec_t d;
    const uint8_t *p = NULL;
    size_t len = 0;
    cl_status_t rc = cl_cbor_validate_seq(buf, n, NULL);

    if (rc != want)
        fail_msg("%s: validate_seq gave %d (%s), wanted %d", hex, rc, cl_status_str(rc), want);
    cl_cbor_dec_init(&d, buf, n);
    assert_int_equal(cl_cbor_dec_skip(&d), want);
    assert_ptr_equal(d.cur, buf);
    assert_int_equal(cl_cbor_dec_raw(&d, &p, &len), want);
    assert_ptr_equal(d.cur, buf);
}

static void test_reserved_additional_info(void **state)
{
    (void)state;
    /* additional information 28, 29, 30 in every major type */
    for (unsigned major = 0; major < 8; major++) {
        for (unsigned ai = 28; ai <= 30; ai++) {
            char hex[8];
            snprintf(hex, sizeof hex, "%02x00", major << 5 | ai);
            assert_refused(hex, CL_ERR_BAD_INPUT);
        }
    }
}

static void test_non_shortest_heads(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "1805",               /* 5 in one extra byte */
        "1817",               /* 23: largest value of the short form */
        "1900ff",             /* 255 in two bytes */
        "1a0000ffff",         /* 65535 in four bytes */
        "1b00000000ffffffff", /* 2^32 - 1 in eight bytes */
        "1b0000000000000000", /* 0 in eight bytes */
        "3800",               /* -1 in one extra byte */
        "39000a",             /* -11 in two bytes */
        "580161",             /* bstr length 1 in one extra byte */
        "78016161",           /* tstr length 1 */
        "980100",             /* array of 1 */
        "b8010101",           /* map of 1 */
        "d80100",             /* tag 1 */
        "d9000100",           /* tag 1 in two bytes */
    };
    static const char *const good[] = {
        "1818", "190100", "1a00010000", "1b0000000100000000", "3818", "d81800",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_refused(bad[i], CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint8_t buf[16];
        size_t n = tu_hex(good[i], buf, sizeof buf), cnt = 0;
        assert_int_equal(cl_cbor_validate_seq(buf, n, &cnt), CL_OK);
        assert_int_equal(cnt, 1);
    }
    /* a non-shortest head is refused by the typed readers as well */
    uint8_t b[] = {0x18, 0x05};
    cl_cbor_dec_t d;
    uint64_t u;
    cl_cbor_type_t t;
    cl_cbor_dec_init(&d, b, sizeof b);
    assert_int_equal(cl_cbor_dec_uint(&d, &u), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_cbor_dec_peek(&d, &t), CL_ERR_BAD_INPUT);
    assert_ptr_equal(d.cur, b);
}

static void test_indefinite_and_break(void **state)
{
    (void)state;
    assert_refused("5f40ff", CL_ERR_UNSUPPORTED);
    assert_refused("7f60ff", CL_ERR_UNSUPPORTED);
    assert_refused("9fff", CL_ERR_UNSUPPORTED);
    assert_refused("bfff", CL_ERR_UNSUPPORTED);
    assert_refused("8201bfff", CL_ERR_UNSUPPORTED); /* nested */
    /* additional information 31 where no indefinite form exists, and the break byte */
    assert_refused("1f", CL_ERR_BAD_INPUT);
    assert_refused("3f", CL_ERR_BAD_INPUT);
    assert_refused("df00", CL_ERR_BAD_INPUT);
    assert_refused("ff", CL_ERR_BAD_INPUT);
    assert_refused("81ff", CL_ERR_BAD_INPUT);
    assert_refused("a101ff", CL_ERR_BAD_INPUT);

    uint8_t brk = 0xff;
    cl_cbor_dec_t d;
    uint8_t sv;
    double dv;
    cl_cbor_type_t t;
    cl_cbor_dec_init(&d, &brk, 1);
    assert_int_equal(cl_cbor_dec_peek(&d, &t), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_cbor_dec_simple(&d, &sv), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_cbor_dec_double(&d, &dv), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_cbor_dec_null(&d), CL_ERR_BAD_INPUT);
    assert_ptr_equal(d.cur, &brk);
}

static void test_lengths_beyond_input(void **state)
{
    (void)state;
    assert_refused("450102", CL_ERR_BAD_INPUT);
    assert_refused("6261", CL_ERR_BAD_INPUT);
    assert_refused("5818", CL_ERR_BAD_INPUT);
    /* 64-bit lengths that would wrap a pointer if added before comparing */
    assert_refused("5bffffffffffffffff00", CL_ERR_BAD_INPUT);
    assert_refused("5bfffffffffffffff700", CL_ERR_BAD_INPUT);
    assert_refused("7b800000000000000000", CL_ERR_BAD_INPUT);
    assert_refused("5affffffff00", CL_ERR_BAD_INPUT);
    /* element counts that cannot fit in the remaining bytes */
    assert_refused("9bffffffffffffffff00", CL_ERR_BAD_INPUT);
    assert_refused("bbffffffffffffffff0000", CL_ERR_BAD_INPUT);
    assert_refused("bb800000000000000000", CL_ERR_BAD_INPUT);
    assert_refused("830102", CL_ERR_BAD_INPUT);
    assert_refused("a2010201", CL_ERR_BAD_INPUT);

    uint8_t b[] = {0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
    cl_cbor_dec_t d;
    size_t n;
    const uint8_t *p;
    cl_cbor_dec_init(&d, b, sizeof b);
    assert_int_equal(cl_cbor_dec_array(&d, &n), CL_ERR_BAD_INPUT);
    assert_ptr_equal(d.cur, b);
    uint8_t s[] = {0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0x00};
    cl_cbor_dec_init(&d, s, sizeof s);
    assert_int_equal(cl_cbor_dec_bstr(&d, &p, &n), CL_ERR_BAD_INPUT);
    assert_ptr_equal(d.cur, s);
    /* a map whose pair count fits the bytes only when counted as items */
    uint8_t m[] = {0xa2, 0x01, 0x02, 0x03};
    cl_cbor_dec_init(&d, m, sizeof m);
    assert_int_equal(cl_cbor_dec_map(&d, &n), CL_ERR_BAD_INPUT);
    /* a tag with nothing after it */
    uint8_t t[] = {0xc1};
    uint64_t tag;
    cl_cbor_dec_init(&d, t, sizeof t);
    assert_int_equal(cl_cbor_dec_tag(&d, &tag), CL_ERR_BAD_INPUT);
}

static void test_two_byte_simple_values(void **state)
{
    (void)state;
    /* 0xf8 followed by a value < 32 is not well-formed (RFC 8949 section 3.3) */
    assert_refused("f800", CL_ERR_BAD_INPUT);
    assert_refused("f813", CL_ERR_BAD_INPUT);
    assert_refused("f814", CL_ERR_BAD_INPUT);
    assert_refused("f818", CL_ERR_BAD_INPUT);
    assert_refused("f81f", CL_ERR_BAD_INPUT);
    assert_refused("f8", CL_ERR_BAD_INPUT);

    uint8_t ok[] = {0xf8, 0x20};
    cl_cbor_dec_t d;
    uint8_t v;
    cl_cbor_dec_init(&d, ok, sizeof ok);
    assert_int_equal(cl_cbor_dec_simple(&d, &v), CL_OK);
    assert_int_equal(v, 32);

    /* the encoder refuses 20..31 (20..23 have their own calls, 24..31 do not exist) */
    for (unsigned s = 20; s < 32; s++) {
        cl_cbor_enc_t e;
        size_t len;
        cl_cbor_enc_init(&e, NULL, 0);
        assert_int_equal(cl_cbor_enc_simple(&e, (uint8_t)s), CL_ERR_INVALID_ARG);
        assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_ERR_INVALID_ARG);
    }
    uint8_t out[2];
    size_t len = 0;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, out, sizeof out);
    assert_int_equal(cl_cbor_enc_simple(&e, 19), CL_OK);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    tu_assert_bytes(out, len, (const uint8_t *)"\xf3", 1);
    cl_cbor_enc_init(&e, out, sizeof out);
    assert_int_equal(cl_cbor_enc_simple(&e, 32), CL_OK);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    tu_assert_bytes(out, len, (const uint8_t *)"\xf8\x20", 2);
}

/* [1, {"A": h'0102', -5: [true, 1.5]}, 18("xyz"), 100000] */
static const char nested_hex[] = "8401a2614142010224"
                                 "82f5f93e00d263787978"
                                 "1a000186a0";

static void test_truncation_every_offset(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = tu_hex(nested_hex, buf, sizeof buf), cnt = 0;

    assert_int_equal(cl_cbor_validate_seq(buf, n, &cnt), CL_OK);
    assert_int_equal(cnt, 1);
    for (size_t cut = 0; cut < n; cut++) {
        /* an exact-size heap copy so that ASan sees any read past the end */
        uint8_t *p = malloc(cut ? cut : 1);
        cl_cbor_dec_t d;
        assert_non_null(p);
        memcpy(p, buf, cut);
        cl_cbor_dec_init(&d, p, cut);
        assert_int_equal(cl_cbor_dec_skip(&d), CL_ERR_BAD_INPUT);
        assert_ptr_equal(d.cur, p);
        if (cut > 0)
            assert_int_equal(cl_cbor_validate_seq(p, cut, NULL), CL_ERR_BAD_INPUT);
        free(p);
    }
    /* and one byte too many is a sequence of two, or garbage */
    buf[n] = 0xff;
    assert_int_equal(cl_cbor_validate_seq(buf, n + 1, NULL), CL_ERR_BAD_INPUT);
    buf[n] = 0x00;
    assert_int_equal(cl_cbor_validate_seq(buf, n + 1, &cnt), CL_OK);
    assert_int_equal(cnt, 2);
}

static void test_flat_reading(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = tu_hex(nested_hex, buf, sizeof buf), cnt, len;
    cl_cbor_dec_t d;
    uint64_t u;
    int64_t i;
    const uint8_t *p;
    const char *t;
    bool b;
    double dv;

    cl_cbor_dec_init(&d, buf, n);
    assert_int_equal(cl_cbor_dec_array(&d, &cnt), CL_OK);
    assert_int_equal(cnt, 4);
    assert_int_equal(cl_cbor_dec_uint(&d, &u), CL_OK);
    assert_int_equal(u, 1);
    /* skip the map as one item, returning its bytes */
    assert_int_equal(cl_cbor_dec_raw(&d, &p, &len), CL_OK);
    assert_ptr_equal(p, buf + 2);
    assert_int_equal(len, 12);
    /* then read it again, flat */
    cl_cbor_dec_t m;
    cl_cbor_dec_init(&m, p, len);
    assert_int_equal(cl_cbor_dec_map(&m, &cnt), CL_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(cl_cbor_dec_tstr(&m, &t, &cnt), CL_OK);
    assert_memory_equal(t, "A", 1);
    assert_int_equal(cl_cbor_dec_bstr(&m, &p, &cnt), CL_OK);
    assert_int_equal(cnt, 2);
    assert_int_equal(cl_cbor_dec_int(&m, &i), CL_OK);
    assert_int_equal(i, -5);
    assert_int_equal(cl_cbor_dec_array(&m, &cnt), CL_OK);
    assert_int_equal(cl_cbor_dec_bool(&m, &b), CL_OK);
    assert_true(b);
    assert_int_equal(cl_cbor_dec_double(&m, &dv), CL_OK);
    assert_true(dv == 1.5);
    assert_true(cl_cbor_dec_at_end(&m));

    assert_int_equal(cl_cbor_dec_tag(&d, &u), CL_OK);
    assert_int_equal(u, 18);
    assert_int_equal(cl_cbor_dec_tstr(&d, &t, &cnt), CL_OK);
    assert_int_equal(cnt, 3);
    assert_int_equal(cl_cbor_dec_uint(&d, &u), CL_OK);
    assert_int_equal(u, 100000);
    assert_true(cl_cbor_dec_at_end(&d));
    assert_int_equal(cl_cbor_dec_remaining(&d), 0);

    /* peek / read at the end */
    cl_cbor_type_t ty;
    assert_int_equal(cl_cbor_dec_peek(&d, &ty), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_cbor_dec_skip(&d), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_cbor_validate_seq(NULL, 0, &cnt), CL_OK);
    assert_int_equal(cnt, 0);
}

static void test_wrong_major_type_does_not_advance(void **state)
{
    (void)state;
    /* -1, h'01', "a", [], {}, 1(0), false, null, 1.5, 0 */
    static const uint8_t items[] = {0x20, 0x41, 0x01, 0x61, 0x61, 0x80, 0xa0, 0xc1,
                                    0x00, 0xf4, 0xf6, 0xf9, 0x3e, 0x00, 0x00};
    cl_cbor_dec_t d;
    uint64_t u;
    int64_t i;
    const uint8_t *p;
    const char *t;
    size_t n;
    bool b;
    uint8_t s;
    double dv;

#define REFUSE(call)                                                                               \
    do {                                                                                           \
        const uint8_t *before = d.cur;                                                             \
        assert_int_equal((call), CL_ERR_BAD_INPUT);                                                \
        assert_ptr_equal(d.cur, before);                                                           \
    } while (0)

    cl_cbor_dec_init(&d, items, sizeof items);
    /* -1 */
    REFUSE(cl_cbor_dec_uint(&d, &u));
    REFUSE(cl_cbor_dec_bstr(&d, &p, &n));
    REFUSE(cl_cbor_dec_double(&d, &dv));
    assert_int_equal(cl_cbor_dec_int(&d, &i), CL_OK);
    /* h'01' */
    REFUSE(cl_cbor_dec_tstr(&d, &t, &n));
    REFUSE(cl_cbor_dec_int(&d, &i));
    REFUSE(cl_cbor_dec_array(&d, &n));
    assert_int_equal(cl_cbor_dec_bstr(&d, &p, &n), CL_OK);
    /* "a" */
    REFUSE(cl_cbor_dec_bstr(&d, &p, &n));
    assert_int_equal(cl_cbor_dec_tstr(&d, &t, &n), CL_OK);
    /* [] */
    REFUSE(cl_cbor_dec_map(&d, &n));
    REFUSE(cl_cbor_dec_tag(&d, &u));
    assert_int_equal(cl_cbor_dec_array(&d, &n), CL_OK);
    /* {} */
    REFUSE(cl_cbor_dec_array(&d, &n));
    assert_int_equal(cl_cbor_dec_map(&d, &n), CL_OK);
    /* 1(0) */
    REFUSE(cl_cbor_dec_uint(&d, &u));
    assert_int_equal(cl_cbor_dec_tag(&d, &u), CL_OK);
    assert_int_equal(cl_cbor_dec_uint(&d, &u), CL_OK);
    /* false */
    REFUSE(cl_cbor_dec_null(&d));
    REFUSE(cl_cbor_dec_undefined(&d));
    REFUSE(cl_cbor_dec_double(&d, &dv));
    assert_int_equal(cl_cbor_dec_bool(&d, &b), CL_OK);
    assert_false(b);
    /* null */
    REFUSE(cl_cbor_dec_bool(&d, &b));
    assert_int_equal(cl_cbor_dec_null(&d), CL_OK);
    /* 1.5 */
    REFUSE(cl_cbor_dec_simple(&d, &s));
    REFUSE(cl_cbor_dec_bool(&d, &b));
    REFUSE(cl_cbor_dec_uint(&d, &u));
    assert_int_equal(cl_cbor_dec_double(&d, &dv), CL_OK);
    /* 0 */
    REFUSE(cl_cbor_dec_double(&d, &dv));
    REFUSE(cl_cbor_dec_tag(&d, &u));
    assert_int_equal(cl_cbor_dec_uint(&d, &u), CL_OK);
    assert_true(cl_cbor_dec_at_end(&d));
#undef REFUSE
}

static void test_int_range(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        cl_status_t rc;
        int64_t v;
    } cases[] = {
        {"1b7fffffffffffffff", CL_OK, INT64_MAX},
        {"1b8000000000000000", CL_ERR_BAD_INPUT, 0},
        {"1bffffffffffffffff", CL_ERR_BAD_INPUT, 0},
        {"3b7fffffffffffffff", CL_OK, INT64_MIN},
        {"3b7ffffffffffffffe", CL_OK, INT64_MIN + 1},
        {"3b8000000000000000", CL_ERR_BAD_INPUT, 0},
        {"3bffffffffffffffff", CL_ERR_BAD_INPUT, 0},
        {"20", CL_OK, -1},
        {"00", CL_OK, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t buf[16], out[16];
        size_t n = tu_hex(cases[k].hex, buf, sizeof buf), len = 0;
        cl_cbor_dec_t d;
        int64_t v = 42;
        cl_cbor_dec_init(&d, buf, n);
        assert_int_equal(cl_cbor_dec_int(&d, &v), cases[k].rc);
        if (cases[k].rc != CL_OK) {
            assert_ptr_equal(d.cur, buf);
            continue;
        }
        assert_true(v == cases[k].v);
        /* and back */
        cl_cbor_enc_t e;
        cl_cbor_enc_init(&e, out, sizeof out);
        assert_int_equal(cl_cbor_enc_int(&e, v), CL_OK);
        assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
        tu_assert_bytes(out, len, buf, n);
    }
    /* the whole major-type-1 range through nint_raw */
    uint8_t out[16];
    size_t len = 0;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, out, sizeof out);
    assert_int_equal(cl_cbor_enc_nint_raw(&e, 0), CL_OK);
    assert_int_equal(cl_cbor_enc_nint_raw(&e, 23), CL_OK);
    assert_int_equal(cl_cbor_enc_nint_raw(&e, 24), CL_OK);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    tu_assert_bytes(out, len, (const uint8_t *)"\x20\x37\x38\x18", 4);
}

/* n nested arrays around 0, or n tags around 0 */
static size_t nest(uint8_t *buf, size_t n, uint8_t wrapper)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = wrapper;
    buf[n] = 0x00;
    return n + 1;
}

static void test_depth_limit(void **state)
{
    (void)state;
    uint8_t buf[2 * CL_CBOR_MAX_DEPTH + 8];
    size_t n, cnt;
    cl_cbor_dec_t d;
    static const uint8_t wrappers[] = {0x81 /* [x] */, 0xc1 /* 1(x) */, 0xa1 /* {x: ...} */};

    for (size_t w = 0; w < 2; w++) {
        n = nest(buf, CL_CBOR_MAX_DEPTH, wrappers[w]);
        assert_int_equal(cl_cbor_validate_seq(buf, n, &cnt), CL_OK);
        assert_int_equal(cnt, 1);
        n = nest(buf, CL_CBOR_MAX_DEPTH + 1, wrappers[w]);
        assert_int_equal(cl_cbor_validate_seq(buf, n, NULL), CL_ERR_BAD_INPUT);
        cl_cbor_dec_init(&d, buf, n);
        assert_int_equal(cl_cbor_dec_skip(&d), CL_ERR_BAD_INPUT);
        assert_ptr_equal(d.cur, buf);
    }
    /* an empty container at the first level beyond the limit is still too deep */
    n = nest(buf, CL_CBOR_MAX_DEPTH, 0x81);
    buf[CL_CBOR_MAX_DEPTH] = 0x80;
    assert_int_equal(cl_cbor_validate_seq(buf, n, NULL), CL_ERR_BAD_INPUT);
    n = nest(buf, CL_CBOR_MAX_DEPTH - 1, 0x81);
    buf[CL_CBOR_MAX_DEPTH - 1] = 0x80;
    assert_int_equal(cl_cbor_validate_seq(buf, n, NULL), CL_OK);
    /* maps: {0: {0: ... 0}} with the key before each level */
    size_t k = 0;
    for (size_t i = 0; i < CL_CBOR_MAX_DEPTH; i++) {
        buf[k++] = wrappers[2];
        buf[k++] = 0x00;
    }
    buf[k++] = 0x00;
    assert_int_equal(cl_cbor_validate_seq(buf, k, NULL), CL_OK);
    /* mixed: tags count as levels inside arrays */
    n = nest(buf, CL_CBOR_MAX_DEPTH + 1, 0x81);
    for (size_t i = 0; i < CL_CBOR_MAX_DEPTH + 1; i += 2)
        buf[i] = 0xc1;
    assert_int_equal(cl_cbor_validate_seq(buf, n, NULL), CL_ERR_BAD_INPUT);
    /* a wide (not deep) item is fine: [[0], [0], ...] many times */
    uint8_t wide[1 + 23 * 2];
    wide[0] = 0x97;
    for (size_t i = 0; i < 23; i++) {
        wide[1 + 2 * i] = 0x81;
        wide[2 + 2 * i] = 0x00;
    }
    assert_int_equal(cl_cbor_validate_seq(wide, sizeof wide, &cnt), CL_OK);
    assert_int_equal(cnt, 1);
}

static void test_deep_input_is_iterative(void **state)
{
    (void)state;
    /* 100000 nested arrays: refused at the limit, no recursion into them */
    size_t n = 100000;
    uint8_t *buf = malloc(n + 1);
    assert_non_null(buf);
    nest(buf, n, 0x81);
    assert_int_equal(cl_cbor_validate_seq(buf, n + 1, NULL), CL_ERR_BAD_INPUT);
    free(buf);
}

/* ------------------------------------------------------------------ */
/* Encoder                                                             */
/* ------------------------------------------------------------------ */

static void test_encoder_sticky_and_small_buffers(void **state)
{
    (void)state;
    uint8_t out[8];
    size_t len = 99;
    cl_cbor_enc_t e;

    cl_cbor_enc_init(&e, out, 4);
    assert_int_equal(cl_cbor_enc_array(&e, 2), CL_OK);
    assert_int_equal(cl_cbor_enc_uint(&e, 100000), CL_ERR_BUFFER_TOO_SMALL); /* needs 5 */
    assert_int_equal(e.len, 1);
    /* later calls that would fit are no-ops now */
    assert_int_equal(cl_cbor_enc_uint(&e, 1), CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(cl_cbor_enc_null(&e), CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(e.len, 1);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 99);

    /* the first error wins */
    cl_cbor_enc_init(&e, out, sizeof out);
    assert_int_equal(cl_cbor_enc_bstr(&e, NULL, 3), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cbor_enc_raw(&e, out, 100), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_ERR_INVALID_ARG);

    /* empty strings may come with a NULL pointer */
    cl_cbor_enc_init(&e, out, sizeof out);
    assert_int_equal(cl_cbor_enc_bstr(&e, NULL, 0), CL_OK);
    assert_int_equal(cl_cbor_enc_tstr(&e, NULL, 0), CL_OK);
    assert_int_equal(cl_cbor_enc_raw(&e, NULL, 0), CL_OK);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    tu_assert_bytes(out, len, (const uint8_t *)"\x40\x60", 2);

    /* bstr_head + raw content = bstr */
    static const uint8_t content[3] = {1, 2, 3};
    cl_cbor_enc_init(&e, out, sizeof out);
    (void)cl_cbor_enc_bstr_head(&e, sizeof content);
    (void)cl_cbor_enc_raw(&e, content, sizeof content);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    tu_assert_bytes(out, len, (const uint8_t *)"\x43\x01\x02\x03", 4);

    /* counting mode ignores size and never runs out */
    cl_cbor_enc_init(&e, NULL, 1);
    (void)cl_cbor_enc_bstr_head(&e, 1000000);
    (void)cl_cbor_enc_uint(&e, UINT64_MAX);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_int_equal(len, 5 + 9);

    /* head sizes at every boundary */
    assert_int_equal(cl_cbor_head_size(0), 1);
    assert_int_equal(cl_cbor_head_size(23), 1);
    assert_int_equal(cl_cbor_head_size(24), 2);
    assert_int_equal(cl_cbor_head_size(255), 2);
    assert_int_equal(cl_cbor_head_size(256), 3);
    assert_int_equal(cl_cbor_head_size(65535), 3);
    assert_int_equal(cl_cbor_head_size(65536), 5);
    assert_int_equal(cl_cbor_head_size(0xffffffffu), 5);
    assert_int_equal(cl_cbor_head_size(0x100000000ull), 9);
}

static void test_encoder_counting_matches_writing(void **state)
{
    (void)state;
    /* a long mixed sequence: the counted size equals the written one */
    static uint8_t big[70000];
    uint8_t *out = malloc(sizeof big + 1024);
    size_t counted = 0, written = 0;
    assert_non_null(out);
    memset(big, 0x5a, sizeof big);
    for (int pass = 0; pass < 2; pass++) {
        cl_cbor_enc_t e;
        cl_cbor_enc_init(&e, pass ? out : NULL, sizeof big + 1024);
        (void)cl_cbor_enc_map(&e, 3);
        (void)cl_cbor_enc_int(&e, -70000);
        (void)cl_cbor_enc_bstr(&e, big, sizeof big);
        (void)cl_cbor_enc_tstr_z(&e, "key");
        (void)cl_cbor_enc_double(&e, 0.1);
        (void)cl_cbor_enc_uint(&e, 300);
        (void)cl_cbor_enc_tag(&e, 0x1000000000ull);
        (void)cl_cbor_enc_bstr(&e, big, 300);
        assert_int_equal(cl_cbor_enc_finish(&e, pass ? &written : &counted), CL_OK);
    }
    assert_int_equal(counted, written);
    size_t cnt = 0;
    assert_int_equal(cl_cbor_validate_seq(out, written, &cnt), CL_OK);
    assert_int_equal(cnt, 1);
    free(out);
}

/* ------------------------------------------------------------------ */
/* Floats                                                              */
/* ------------------------------------------------------------------ */

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void test_float_preferred_serialization(void **state)
{
    (void)state;
    static const struct {
        double v;
        const char *hex;
    } cases[] = {
        {0x1p-24, "f90001"},                   /* smallest binary16 subnormal */
        {0x3p-24, "f90003"},                   /* subnormal with two bits */
        {0x3ffp-24, "f903ff"},                 /* largest subnormal */
        {0x1p-14, "f90400"},                   /* smallest normal */
        {-0x1p-24, "f98001"},                  /* negative subnormal */
        {0x1.8p-24, "fa33c00000"},             /* between subnormals: not exact in f16 */
        {0x1p-25, "fa33000000"},               /* below the f16 range */
        {65504.0, "f97bff"},                   /* largest binary16 */
        {65505.0, "fa477fe100"},               /* not in f16 */
        {65536.0, "fa47800000"},               /* f16 exponent overflow */
        {0x1p-126, "fa00800000"},              /* smallest binary32 normal */
        {0x1p-149, "fa00000001"},              /* smallest binary32 subnormal */
        {0x1.8p-148, "fa00000003"},            /* binary32 subnormal, two bits */
        {0x1p-150, "fb3690000000000000"},      /* below binary32 */
        {0x1.000002p0, "fa3f800001"},          /* needs 23 mantissa bits */
        {0x1.0000001p0, "fb3ff0000001000000"}, /* needs more than 23 */
        {1.0 / 3.0, "fb3fd5555555555555"},
        {0x1p127, "fa7f000000"},
        {0x1p128, "fb47f0000000000000"},
        {-2.0, "f9c000"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t want[16], out[16];
        size_t n = tu_hex(cases[k].hex, want, sizeof want), len = 0;
        cl_cbor_enc_t e;
        cl_cbor_dec_t d;
        double v;
        cl_cbor_enc_init(&e, out, sizeof out);
        assert_int_equal(cl_cbor_enc_double(&e, cases[k].v), CL_OK);
        assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
        if (len != n || memcmp(out, want, n) != 0)
            fprintf(stderr, "case %zu: %a\n", k, cases[k].v);
        tu_assert_bytes(out, len, want, n);
        cl_cbor_dec_init(&d, out, len);
        assert_int_equal(cl_cbor_dec_double(&d, &v), CL_OK);
        assert_true(same_double(v, cases[k].v));
    }
    /* binary64 subnormals and every NaN (payload, sign) */
    static const struct {
        uint64_t bits;
        const char *hex;
    } raw[] = {
        {0x0000000000000001ull, "fb0000000000000001"},
        {0x800fffffffffffffull, "fb800fffffffffffff"},
        {0x7ff0000000000001ull, "f97e00"},
        {0xfff8000000000000ull, "f97e00"},
        {0x7ff8000000000123ull, "f97e00"},
        {0x7ff0000000000000ull, "f97c00"},
        {0x8000000000000000ull, "f98000"},
    };
    for (size_t k = 0; k < sizeof raw / sizeof raw[0]; k++) {
        uint8_t want[16], out[16];
        size_t n = tu_hex(raw[k].hex, want, sizeof want), len = 0;
        cl_cbor_enc_t e;
        cl_cbor_enc_init(&e, out, sizeof out);
        assert_int_equal(cl_cbor_enc_double(&e, from_bits(raw[k].bits)), CL_OK);
        assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
        tu_assert_bytes(out, len, want, n);
    }
    /* binary16 special values decode exactly */
    static const struct {
        const char *hex;
        double v;
    } dec[] = {
        {"f97bff", 65504.0},    {"f9fbff", -65504.0},     {"f90200", 0x1p-15},
        {"f93555", 0x1.554p-2}, {"fa00000001", 0x1p-149}, {"fa80000000", -0.0},
    };
    for (size_t k = 0; k < sizeof dec / sizeof dec[0]; k++) {
        uint8_t buf[16];
        size_t n = tu_hex(dec[k].hex, buf, sizeof buf);
        cl_cbor_dec_t d;
        double v;
        cl_cbor_dec_init(&d, buf, n);
        assert_int_equal(cl_cbor_dec_double(&d, &v), CL_OK);
        assert_true(same_double(v, dec[k].v));
    }
}

static void test_float_round_trip_random(void **state)
{
    (void)state;
    /* xorshift over raw bit patterns, plus patterns biased towards short forms */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int k = 0; k < 200000; k++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t bits = x;
        if (k % 3 == 1)
            bits &= 0xffffffffe0000000ull; /* binary32-looking mantissa */
        else if (k % 3 == 2)
            bits = (bits & 0x800003ffc0000000ull) | ((uint64_t)(1023 - 30 + (x >> 58)) << 52);
        double v = from_bits(bits), r;
        uint8_t out[16];
        size_t len = 0;
        cl_cbor_enc_t e;
        cl_cbor_dec_t d;
        cl_cbor_enc_init(&e, out, sizeof out);
        assert_int_equal(cl_cbor_enc_double(&e, v), CL_OK);
        assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
        assert_true(len == 3 || len == 5 || len == 9);
        cl_cbor_dec_init(&d, out, len);
        assert_int_equal(cl_cbor_dec_double(&d, &r), CL_OK);
        assert_true(cl_cbor_dec_at_end(&d));
        if (!same_double(r, v))
            fail_msg("%016llx did not round-trip", (unsigned long long)bits);
    }
}

/* ------------------------------------------------------------------ */
/* UTF-8                                                               */
/* ------------------------------------------------------------------ */

static void test_utf8(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "",       "41",       "7f",       "c280",     "c3bc",
        "dfbf",   "e0a080",   "e6b0b4",   "ed9fbf",   "ee8080",
        "efbfbf", "f0908080", "f0908591", "f48fbfbf", "41c3bce6b0b4f09085914a",
    };
    static const char *const invalid[] = {
        "80",                   /* lone continuation */
        "bf",                   /* lone continuation */
        "c080",                 /* overlong NUL */
        "c1bf",                 /* overlong */
        "e08080",               /* overlong */
        "e09fbf",               /* overlong */
        "eda080",               /* surrogate D800 */
        "edbfbf",               /* surrogate DFFF */
        "f0808080",             /* overlong */
        "f08fbfbf",             /* overlong */
        "f4908080",             /* above U+10FFFF */
        "f5808080",             /* never valid */
        "f8888080",             /* 5-byte form */
        "fe",       "ff", "c3", /* truncated */
        "e6b0",                 /* truncated */
        "f09085",               /* truncated */
        "c341",                 /* bad continuation */
        "e641b4",               /* bad continuation */
        "f09041",               /* bad continuation */
        "41c3",                 /* truncated at the end */
    };
    uint8_t buf[32];
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        size_t n = tu_hex(valid[i], buf, sizeof buf);
        if (!cl_cbor_utf8_valid(buf, n))
            fail_msg("%s should be valid UTF-8", valid[i]);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        size_t n = tu_hex(invalid[i], buf, sizeof buf);
        if (cl_cbor_utf8_valid(buf, n))
            fail_msg("%s should be invalid UTF-8", invalid[i]);
    }
    assert_true(cl_cbor_utf8_valid(NULL, 0));
}

static void test_null_arguments(void **state)
{
    (void)state;
    cl_cbor_dec_t d;
    uint64_t u;
    size_t n;
    cl_cbor_dec_init(&d, (const uint8_t *)"\x01", 1);
    assert_int_equal(cl_cbor_dec_uint(NULL, &u), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cbor_dec_uint(&d, NULL), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cbor_dec_array(&d, NULL), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cbor_enc_uint(NULL, 1), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cbor_enc_finish(NULL, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cbor_validate_seq(NULL, 3, NULL), CL_ERR_INVALID_ARG);
    cl_cbor_dec_init(&d, NULL, 5);
    assert_true(cl_cbor_dec_at_end(&d));
    assert_int_equal(cl_cbor_dec_remaining(&d), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appendix_a),
        cmocka_unit_test(test_appendix_a_indefinite_refused),
        cmocka_unit_test(test_reserved_additional_info),
        cmocka_unit_test(test_non_shortest_heads),
        cmocka_unit_test(test_indefinite_and_break),
        cmocka_unit_test(test_lengths_beyond_input),
        cmocka_unit_test(test_two_byte_simple_values),
        cmocka_unit_test(test_truncation_every_offset),
        cmocka_unit_test(test_flat_reading),
        cmocka_unit_test(test_wrong_major_type_does_not_advance),
        cmocka_unit_test(test_int_range),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_deep_input_is_iterative),
        cmocka_unit_test(test_encoder_sticky_and_small_buffers),
        cmocka_unit_test(test_encoder_counting_matches_writing),
        cmocka_unit_test(test_float_preferred_serialization),
        cmocka_unit_test(test_float_round_trip_random),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_null_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
