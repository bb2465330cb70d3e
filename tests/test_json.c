/*
 * test_json.c - the JSON <-> CBOR converter (lib/json.c) and its refusals.
 *
 * Positive cases are data: a JSON text and the hex of the CBOR it must
 * become (size query, exact buffer, larger buffer all agree). Negative cases
 * are data too: a text, the expected status and the byte offset reported.
 * Then the properties: every proper prefix of a valid document fails at its
 * end, every output buffer one byte short fails and writes nothing, the
 * depth limit at its exact boundary in both directions, CBOR -> JSON for
 * each supported type and each refusal, floats against libc (strtod and
 * printf are the references here; lib/ may not call them) and the round
 * trip JSON -> CBOR -> JSON -> CBOR over fixed and generated documents.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cloister/cbor.h"
#include "cloister/json.h"

#define BIG 8192

/* JSON -> CBOR with the size query first; asserts both calls agree. */
static cl_status_t j2c(const char *json, size_t len, uint8_t *out, size_t size, size_t *out_len,
                       size_t *off)
{
    size_t need = 0, off1 = 12345, off2 = 12345;
    cl_status_t q = cl_json_to_cbor(json, len, NULL, 0, &need, &off1);
    cl_status_t st = cl_json_to_cbor(json, len, out, size, out_len, &off2);

    if (q != CL_OK) {
        assert_int_equal(st, q);
        assert_int_equal(off1, off2);
    } else if (st == CL_OK) {
        assert_int_equal(*out_len, need);
    }
    if (off != NULL)
        *off = off2;
    return st;
}

static void expect_cbor(const char *json, const char *hex)
{
    uint8_t want[BIG], got[BIG];
    size_t wlen = tu_hex(hex, want, sizeof want), len = 0, off = 0;
    cl_status_t st = j2c(json, strlen(json), got, sizeof got, &len, &off);

    if (st != CL_OK)
        fail_msg("%s: status %d at %zu", json, st, off);
    tu_assert_bytes(got, len, want, wlen);
}

/* CBOR -> JSON into a static buffer; asserts the size query agrees. */
static cl_status_t c2j(const uint8_t *cbor, size_t len, char *out, size_t size, size_t *out_len)
{
    size_t need = 0;
    cl_status_t q = cl_cbor_to_json(cbor, len, NULL, 0, &need);
    cl_status_t st = cl_cbor_to_json(cbor, len, out, size, out_len);

    if (q != CL_OK)
        assert_int_equal(st, q);
    else if (st == CL_OK)
        assert_int_equal(*out_len, need);
    if (st == CL_OK)
        assert_int_equal(strlen(out), *out_len);
    return st;
}

static void expect_json_hex(const char *hex, const char *json)
{
    uint8_t in[BIG];
    char out[BIG];
    size_t n = tu_hex(hex, in, sizeof in), len = 0;
    cl_status_t st = c2j(in, n, out, sizeof out, &len);

    if (st != CL_OK)
        fail_msg("%s: status %d", hex, st);
    assert_string_equal(out, json);
}

static void expect_refused_hex(const char *hex, cl_status_t want)
{
    uint8_t in[BIG];
    char out[BIG];
    size_t n = tu_hex(hex, in, sizeof in), len = 0;

    out[0] = 'X';
    assert_int_equal(c2j(in, n, out, sizeof out, &len), want);
    assert_int_equal(out[0], 'X'); /* nothing written */
}

/* JSON -> CBOR -> JSON: the compact JSON text. */
static void canonical(const char *json, char *out, size_t size)
{
    uint8_t cbor[BIG];
    size_t n = 0, off = 0, jl = 0;

    if (j2c(json, strlen(json), cbor, sizeof cbor, &n, &off) != CL_OK)
        fail_msg("%s: refused at %zu", json, off);
    assert_int_equal(c2j(cbor, n, out, size, &jl), CL_OK);
}

/* ------------------------------------------------------------------ */
/* JSON -> CBOR                                                        */
/* ------------------------------------------------------------------ */

static void test_scalars(void **state)
{
    (void)state;
    expect_cbor("true", "f5");
    expect_cbor("false", "f4");
    expect_cbor("null", "f6");
    expect_cbor("0", "00");
    expect_cbor("-0", "00"); /* an integer literal: the integer 0 */
    expect_cbor("1", "01");
    expect_cbor("-1", "20");
    expect_cbor("23", "17");
    expect_cbor("24", "1818");
    expect_cbor("-25", "3818");
    expect_cbor("1000000", "1a000f4240");
    expect_cbor("9223372036854775807", "1b7fffffffffffffff");
    expect_cbor("-9223372036854775808", "3b7fffffffffffffff");
    expect_cbor("\"\"", "60");
    expect_cbor("\"abc\"", "63616263");
    expect_cbor("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "69c3a9e282acf09f9880");
    expect_cbor("\"\x7f\"", "617f"); /* DEL is not a control character in JSON */
}

static void test_floats(void **state)
{
    (void)state;
    expect_cbor("1.5", "f93e00");
    expect_cbor("1.0", "f93c00"); /* a fraction makes a float, even when integral */
    expect_cbor("1e2", "f95640");
    expect_cbor("1E2", "f95640");
    expect_cbor("1e+2", "f95640");
    expect_cbor("-0.0", "f98000");
    expect_cbor("-0e0", "f98000");
    expect_cbor("0.1", "fb3fb999999999999a");
    expect_cbor("-2.5e-3", "fbbf647ae147ae147b");
    expect_cbor("1e300", "fb7e37e43c8800759c");
    expect_cbor("0.30000000000000004", "fb3fd3333333333334");
    expect_cbor("1.7976931348623157e308", "fb7fefffffffffffff");
    expect_cbor("2.2250738585072014e-308", "fb0010000000000000");
    expect_cbor("5e-324", "fb0000000000000001");
    /* half the smallest subnormal rounds to even (zero), a hair more rounds up */
    expect_cbor("2.4703282292062327e-324", "f90000");
    expect_cbor("2.4703282292062328e-324", "fb0000000000000001");
    expect_cbor("1e-400", "f90000");
    expect_cbor("-1e-400", "f98000");
    expect_cbor("65504.0", "f97bff");
    expect_cbor("100000.0", "fa47c35000");
}

static void test_large_integers_become_floats(void **state)
{
    (void)state;
    expect_cbor("9223372036854775808", "fa5f000000");          /* 2^63 */
    expect_cbor("-9223372036854775809", "fadf000000");         /* -2^63 - 1 rounds to -2^63 */
    expect_cbor("18446744073709551615", "fa5f800000");         /* UINT64_MAX -> 2^64 */
    expect_cbor("18446744073709551616", "fa5f800000");         /* 2^64 */
    expect_cbor("99999999999999999999", "fb4415af1d78b58c40"); /* 1e20 */
    expect_cbor("123456789012345678901234567890", "fb45f8ee90ff6c373e");
}

/* Exactly halfway between 1 and the next double, then one unit more in digit 950. */
static void test_float_ties_beyond_800_digits(void **state)
{
    static const char half[] = "1.00000000000000011102230246251565404236316680908203125";
    char text[1200];
    size_t n;

    (void)state;
    expect_cbor(half, "f93c00"); /* tie: even mantissa, 1.0 */
    n = (size_t)snprintf(text, sizeof text, "%s", half);
    memset(text + n, '0', 900);
    text[n + 900] = '1';
    text[n + 901] = '\0';
    expect_cbor(text, "fb3ff0000000000001"); /* above the tie: up */
    text[n + 900] = '0';
    expect_cbor(text, "f93c00");
    /* 1200 significant digits of 1/3 */
    text[0] = '0';
    text[1] = '.';
    memset(text + 2, '3', 1195);
    text[1197] = '\0';
    expect_cbor(text, "fb3fd5555555555555");
}

static void test_escapes(void **state)
{
    (void)state;
    expect_cbor("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "68225c2f080c0a0d09");
    expect_cbor("\"\\u0041\\u00e9\\u00E9\\u20ac\\u0000\"", "6941c3a9c3a9e282ac00");
    expect_cbor("\"\\ud83d\\ude00\"", "64f09f9880"); /* surrogate pair -> 4-byte UTF-8 */
    expect_cbor("\"\\uD800\\uDC00\"", "64f0908080"); /* U+10000 */
    expect_cbor("\"\\udbff\\udfff\"", "64f48fbfbf"); /* U+10FFFF */
}

static void test_escapes_mixed(void **state)
{
    (void)state;
    /* raw runs and escapes interleaved: "abc" "\n" "d" */
    expect_cbor("\"a\\u0062c\\nd\"", "656162630a64");
    expect_cbor("\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"", "6b7fc280dfbfe0a080efbfbf");
}

static void test_containers(void **state)
{
    (void)state;
    expect_cbor("[]", "80");
    expect_cbor("{}", "a0");
    expect_cbor("[[]]", "8180");
    expect_cbor("[{}]", "81a0");
    expect_cbor("{\"a\":{}}", "a16161a0");
    expect_cbor("[1,[2,[3,[]]]]", "82018202820380");
    expect_cbor("{\"a\":1,\"b\":[2,3]}", "a26161016162820203");
    expect_cbor("[true,false,null,\"x\",-1.5]", "85f5f4f66178f9be00");
    expect_cbor(" \t\n\r[ 1 ,\n{ \"a\" : [ ] } ]\r\n ", "8201a1616180");
    /* keys that only look alike are distinct; nested objects have their own keys */
    expect_cbor("{\"a\":{\"a\":1},\"b\":{\"a\":2},\"ab\":3}", "a36161a16161016162a161610262616203");
}

/* Heads of 1, 2 and 3 bytes: the writing pass slides contents up by each. */
static void test_long_containers(void **state)
{
    static char json[BIG * 8];
    static uint8_t want[BIG * 8], got[BIG * 8];
    size_t counts[] = {23, 24, 255, 256, 1000};
    (void)state;

    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        size_t n = counts[c], jl = 0, wl = 0, gl = 0, off = 0;
        cl_cbor_enc_t e;

        cl_cbor_enc_init(&e, want, sizeof want);
        (void)cl_cbor_enc_array(&e, 2);
        (void)cl_cbor_enc_map(&e, n);
        jl += (size_t)snprintf(json + jl, sizeof json - jl, "[{");
        for (size_t i = 0; i < n; i++) {
            char key[24];
            (void)snprintf(key, sizeof key, "k%zu", i);
            (void)cl_cbor_enc_tstr_z(&e, key);
            (void)cl_cbor_enc_array(&e, i % 30);
            jl += (size_t)snprintf(json + jl, sizeof json - jl, "%s\"%s\":[", i ? "," : "", key);
            for (size_t k = 0; k < i % 30; k++) {
                (void)cl_cbor_enc_uint(&e, k);
                jl += (size_t)snprintf(json + jl, sizeof json - jl, "%s%zu", k ? "," : "", k);
            }
            jl += (size_t)snprintf(json + jl, sizeof json - jl, "]");
        }
        (void)cl_cbor_enc_array(&e, n);
        jl += (size_t)snprintf(json + jl, sizeof json - jl, "},[");
        for (size_t i = 0; i < n; i++) {
            (void)cl_cbor_enc_tstr_z(&e, "\xe2\x82\xac");
            jl += (size_t)snprintf(json + jl, sizeof json - jl, "%s\"\\u20ac\"", i ? "," : "");
        }
        jl += (size_t)snprintf(json + jl, sizeof json - jl, "]]");
        assert_true(jl < sizeof json - 1);
        assert_int_equal(cl_cbor_enc_finish(&e, &wl), CL_OK);
        assert_int_equal(j2c(json, jl, got, sizeof got, &gl, &off), CL_OK);
        tu_assert_bytes(got, gl, want, wl);
    }
}

static void test_long_strings(void **state)
{
    static char json[70010];
    static uint8_t got[70010];
    size_t lens[] = {23, 24, 255, 256, 65535, 65536};
    (void)state;

    for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++) {
        size_t n = lens[c], gl = 0, off = 0;
        cl_cbor_dec_t d;
        const char *s;
        size_t sl;

        json[0] = '"';
        memset(json + 1, 'x', n);
        json[n + 1] = '"';
        /* one escape so that the decoded-length path is used as well */
        json[n] = '\\';
        memcpy(json + n + 1, "n\"", 2);
        assert_int_equal(j2c(json, n + 3, got, sizeof got, &gl, &off), CL_OK);
        assert_int_equal(gl, cl_cbor_head_size(n) + n);
        cl_cbor_dec_init(&d, got, gl);
        assert_int_equal(cl_cbor_dec_tstr(&d, &s, &sl), CL_OK);
        assert_int_equal(sl, n);
        assert_int_equal(s[n - 1], '\n');
        assert_true(cl_cbor_dec_at_end(&d));
    }
}

struct bad_case {
    const char *json;
    size_t len; /* 0: strlen */
    size_t off;
};

static void test_refusals(void **state)
{
    static const struct bad_case cases[] = {
        /* structure */
        {"", 0, 0},
        {"   ", 0, 3},
        {"[1,2,]", 0, 5},
        {"{\"a\":1,}", 0, 7},
        {"[,1]", 0, 1},
        {"{,}", 0, 1},
        {"[1 2]", 0, 3},
        {"{\"a\" 1}", 0, 5},
        {"{\"a\":}", 0, 5},
        {"{1:2}", 0, 1},
        {"{\"a\":1 \"b\":2}", 0, 7},
        {"[1}", 0, 2},
        {"{\"a\":1]", 0, 6},
        {"]", 0, 0},
        {"1 2", 0, 2},
        {"{}{}", 0, 2},
        {"[] []", 0, 3},
        {"1,", 0, 1},
        /* numbers */
        {"01", 0, 1},
        {"-01", 0, 2},
        {"[00]", 0, 2},
        {"+1", 0, 0},
        {".5", 0, 0},
        {"[.5]", 0, 1},
        {"1.", 0, 2},
        {"1.e5", 0, 2},
        {"-", 0, 1},
        {"-a", 0, 1},
        {"[-]", 0, 2},
        {"1e", 0, 2},
        {"1e+", 0, 3},
        {"1.5e-x", 0, 5},
        {"0x10", 0, 1},
        {"1_000", 0, 1},
        {"NaN", 0, 0},
        {"Infinity", 0, 0},
        {"-Infinity", 0, 1},
        {"[nan]", 0, 2},
        {"1e999", 0, 0},
        {"[1, -1e309]", 0, 4},
        {"1.8e308", 0, 0},
        /* literals */
        {"tru", 0, 3},
        {"trUe", 0, 2},
        {"True", 0, 0},
        {"nul", 0, 3},
        {"NULL", 0, 0},
        {"falsey", 0, 5},
        {"[truefalse]", 0, 5},
        /* quotes, comments, bytes outside strings */
        {"'a'", 0, 0},
        {"['a']", 0, 1},
        {"{'a':1}", 0, 1},
        {"[1 /* c */]", 0, 3},
        {"// c\n1", 0, 0},
        {"1 // c", 0, 2},
        {"# c\n1", 0, 0},
        {"\xef\xbb\xbf{}", 0, 0}, /* BOM */
        {"\xc3\xa9", 0, 0},
        {"[1,\0]", 5, 3},
        {"1\0", 2, 1},
        {"\"a\"\0", 4, 3},
        /* strings */
        {"\"a\tb\"", 0, 2},
        {"\"a\nb\"", 0, 2},
        {"\"\x01\"", 0, 1},
        {"\"\x1f\"", 0, 1},
        {"\"a\0\"", 4, 2},
        {"\"\\x\"", 0, 1},
        {"\"\\U0041\"", 0, 1},
        {"\"\\u12g4\"", 0, 1},
        {"\"\\u\"", 0, 1},
        {"\"\\'\"", 0, 1},
        /* lone and misordered surrogates */
        {"\"\\ud800\"", 0, 1},
        {"\"\\udbff\"", 0, 1},
        {"\"\\udc00\"", 0, 1},
        {"\"\\udfff\\ud800\"", 0, 1},
        {"\"\\ud800\\u0041\"", 0, 1},
        {"\"\\ud800\\ud800\"", 0, 1},
        {"\"\\ud800x\"", 0, 1},
        {"\"\\ud800\\n\"", 0, 1},
        {"\"ab\\ud83dc\"", 0, 3},
        /* invalid UTF-8 */
        {"\"\xff\"", 0, 1},
        {"\"\x80\"", 0, 1},
        {"\"\xc0\xaf\"", 0, 1},         /* overlong '/' */
        {"\"\xc1\xbf\"", 0, 1},         /* overlong */
        {"\"\xe0\x80\xaf\"", 0, 1},     /* overlong */
        {"\"\xf0\x80\x80\xaf\"", 0, 1}, /* overlong */
        {"\"\xed\xa0\x80\"", 0, 1},     /* encoded surrogate U+D800 */
        {"\"\xf4\x90\x80\x80\"", 0, 1}, /* above U+10FFFF */
        {"\"\xf5\x80\x80\x80\"", 0, 1},
        {"\"a\xc3(\"", 0, 2},   /* continuation byte missing */
        {"\"\xe2\x82\"", 0, 1}, /* sequence cut by the quote */
        {"\"abc\xf0\x9f\x98\"", 0, 4},
        /* duplicate keys: the offset of the repeated key */
        {"{\"a\":1,\"a\":2}", 0, 7},
        {"{\"a\":1,\"b\":2,\"a\":3}", 0, 13},
        {"{\"a\":1,\"\\u0061\":2}", 0, 7},
        {"{\"\\u00e9\":1,\"\xc3\xa9\":2}", 0, 12},
        {"{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}", 0, 18},
        {"{\"a\":\"}\\\",{\",\"b\":[{\"a\":1},\"]\"],\"c\":{\"b\":2},\"b\":0}", 0, 43},
        {"[{\"x\":[],\"x\":[]}]", 0, 9},
        {"{\"\":1,\"\":2}", 0, 6},
    };
    (void)state;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad_case *c = &cases[i];
        size_t len = c->len ? c->len : strlen(c->json), off = 999, n = 0;
        uint8_t out[256];
        cl_status_t st;

        memset(out, 0xaa, sizeof out);
        st = j2c(c->json, len, out, sizeof out, &n, &off);
        if (st != CL_ERR_BAD_INPUT || off != c->off)
            fail_msg("case %zu (%.*s): status %d offset %zu, want %d at %zu", i, (int)len, c->json,
                     st, off, CL_ERR_BAD_INPUT, c->off);
        for (size_t k = 0; k < sizeof out; k++)
            assert_int_equal(out[k], 0xaa); /* nothing written */
    }
}

/* A document with every construct; none of its proper prefixes is a document. */
static const char every_construct[] =
    "{\"name\": \"r\\u00e9gle \xe2\x82\xac \\ud83d\\ude00\",\n"
    " \"n\": [0, -12, 3.25, -1.5e-3, 6E+2, 9223372036854775807, 1e400000000000],\n"
    " \"esc\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\",\n"
    " \"lit\": [true, false, null],\n"
    " \"nest\": {\"a\": [[], {}, [{\"b\": \"\xf0\x9f\x98\x80\"}]]}\t}\r\n";

static void test_truncated_prefixes(void **state)
{
    const char *doc;
    size_t len, n = 0, off = 0;
    uint8_t out[1024];
    char fixed[sizeof every_construct];

    (void)state;
    /* the 1e400000000000 above is out of range: use the document without it first */
    memcpy(fixed, every_construct, sizeof fixed);
    memcpy(strstr(fixed, "1e400000000000"), "1e-40000000000", 14);
    doc = fixed;
    len = strlen(doc);
    assert_int_equal(j2c(doc, len, out, sizeof out, &n, &off), CL_OK);
    for (size_t cut = 0; cut < len; cut++) {
        cl_status_t st = j2c(doc, cut, out, sizeof out, &n, &off);
        /* trailing whitespace removed is still the whole document */
        if (strspn(doc + cut, " \t\r\n") == len - cut) {
            assert_int_equal(st, CL_OK);
            continue;
        }
        if (st != CL_ERR_BAD_INPUT || off != cut)
            fail_msg("prefix of %zu bytes: status %d at %zu", cut, st, off);
    }
    /* the original, with a number beyond the double range: refused where the number starts */
    doc = every_construct;
    assert_int_equal(j2c(doc, strlen(doc), out, sizeof out, &n, &off), CL_ERR_BAD_INPUT);
    assert_int_equal(off, (size_t)(strstr(doc, "1e400000000000") - doc));
}

static void test_output_buffer_every_size(void **state)
{
    static const char doc[] =
        "{\"k\":[1,\"two\\n\",3.5,{\"x\":null}],\"\xc3\xa9\":[[[]]],\"z\":-7}";
    uint8_t out[256], ref[256];
    size_t need = 0, n = 0, off = 0;

    (void)state;
    assert_int_equal(cl_json_to_cbor(doc, strlen(doc), NULL, 0, &need, &off), CL_OK);
    /* the size query ignores out_size when there is no buffer */
    assert_int_equal(cl_json_to_cbor(doc, strlen(doc), NULL, 5, &n, &off), CL_OK);
    assert_int_equal(n, need);
    assert_int_equal(cl_json_to_cbor(doc, strlen(doc), ref, need, &n, &off), CL_OK);
    assert_int_equal(n, need);
    for (size_t size = 0; size < need; size++) {
        memset(out, 0x5a, sizeof out);
        n = 0;
        assert_int_equal(cl_json_to_cbor(doc, strlen(doc), out, size, &n, &off),
                         CL_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(n, need); /* the size it would take */
        for (size_t k = 0; k < sizeof out; k++)
            assert_int_equal(out[k], 0x5a);
    }
    memset(out, 0x5a, sizeof out);
    assert_int_equal(cl_json_to_cbor(doc, strlen(doc), out, need + 10, &n, &off), CL_OK);
    tu_assert_bytes(out, n, ref, need);
    for (size_t k = need; k < sizeof out; k++)
        assert_int_equal(out[k], 0x5a);
}

static void test_depth_limit(void **state)
{
    static char deep[100001];
    uint8_t out[512];
    char text[512];
    size_t n = 0, off = 0, jl = 0;
    (void)state;

    /* 32 levels of arrays: fine; 33: CL_ERR_LIMIT at the 33rd bracket */
    memset(deep, '[', 32);
    memset(deep + 32, ']', 32);
    assert_int_equal(j2c(deep, 64, out, sizeof out, &n, &off), CL_OK);
    assert_int_equal(n, 32);
    /* CBOR -> JSON takes the 32 levels back (more than CL_CBOR_MAX_DEPTH) */
    assert_int_equal(c2j(out, n, text, sizeof text, &jl), CL_OK);
    assert_int_equal(jl, 64);
    assert_memory_equal(text, deep, 64);
    memset(deep, '[', 33);
    memset(deep + 33, ']', 33);
    assert_int_equal(j2c(deep, 66, out, sizeof out, &n, &off), CL_ERR_LIMIT);
    assert_int_equal(off, 32);
    /* the same with objects, and mixed */
    jl = 0;
    for (int i = 0; i < 32; i++)
        jl += (size_t)snprintf(deep + jl, sizeof deep - jl, i % 2 ? "{\"a\":" : "[");
    jl += (size_t)snprintf(deep + jl, sizeof deep - jl, "1");
    for (int i = 31; i >= 0; i--)
        jl += (size_t)snprintf(deep + jl, sizeof deep - jl, i % 2 ? "}" : "]");
    assert_int_equal(j2c(deep, jl, out, sizeof out, &n, &off), CL_OK);
    jl = 0;
    for (int i = 0; i < 33; i++)
        jl += (size_t)snprintf(deep + jl, sizeof deep - jl, "{\"a\":");
    assert_int_equal(j2c(deep, jl, out, sizeof out, &n, &off), CL_ERR_LIMIT);
    assert_int_equal(off, 32 * 5);
    /* an empty container at level 33 is level 33 */
    memset(deep, '[', 32);
    memcpy(deep + 32, "{}", 2);
    memset(deep + 34, ']', 32);
    assert_int_equal(j2c(deep, 66, out, sizeof out, &n, &off), CL_ERR_LIMIT);
    assert_int_equal(off, 32);
    /* 100000 brackets cost nothing: iterative, stops at the limit */
    memset(deep, '[', 100000);
    assert_int_equal(j2c(deep, 100000, out, sizeof out, &n, &off), CL_ERR_LIMIT);
    assert_int_equal(off, 32);

    /* CBOR -> JSON: 33 nested arrays (and maps) are CL_ERR_LIMIT */
    memset(out, 0x81, 33);
    out[32] = 0x80;
    assert_int_equal(c2j(out, 33, text, sizeof text, &jl), CL_ERR_LIMIT);
    out[31] = 0x80;
    assert_int_equal(c2j(out, 32, text, sizeof text, &jl), CL_OK);
    for (int i = 0; i < 33; i++)
        memcpy(out + 3 * i, "\xa1\x61\x61", 3);
    out[99] = 0x01;
    assert_int_equal(c2j(out, 100, text, sizeof text, &jl), CL_ERR_LIMIT);
}

static void test_invalid_arguments(void **state)
{
    uint8_t out[8];
    char text[8];
    size_t n = 0, off = 0;
    (void)state;

    assert_int_equal(cl_json_to_cbor("1", 1, out, sizeof out, NULL, &off), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_json_to_cbor(NULL, 1, out, sizeof out, &n, &off), CL_ERR_INVALID_ARG);
    /* NULL text of length 0 is an empty document; err_off is optional */
    assert_int_equal(cl_json_to_cbor(NULL, 0, out, sizeof out, &n, &off), CL_ERR_BAD_INPUT);
    assert_int_equal(off, 0);
    assert_int_equal(cl_json_to_cbor("[", 1, out, sizeof out, &n, NULL), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_json_to_cbor("7", 1, out, sizeof out, &n, NULL), CL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(cl_cbor_to_json(out, 1, text, sizeof text, NULL), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cbor_to_json(NULL, 1, text, sizeof text, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cbor_to_json(NULL, 0, text, sizeof text, &n), CL_ERR_BAD_INPUT);
}

/* ------------------------------------------------------------------ */
/* CBOR -> JSON                                                        */
/* ------------------------------------------------------------------ */

static void test_cbor_to_json_types(void **state)
{
    (void)state;
    expect_json_hex("00", "0");
    expect_json_hex("17", "23");
    expect_json_hex("1818", "24");
    expect_json_hex("1bffffffffffffffff", "18446744073709551615");
    expect_json_hex("20", "-1");
    expect_json_hex("3b7fffffffffffffff", "-9223372036854775808");
    expect_json_hex("3b8000000000000000", "-9223372036854775809");
    expect_json_hex("3bffffffffffffffff", "-18446744073709551616");
    expect_json_hex("f4", "false");
    expect_json_hex("f5", "true");
    expect_json_hex("f6", "null");
    /* byte strings: base64url, no padding (RFC 4648 section 10 vectors) */
    expect_json_hex("40", "\"\"");
    expect_json_hex("4166", "\"Zg\"");
    expect_json_hex("42666f", "\"Zm8\"");
    expect_json_hex("43666f6f", "\"Zm9v\"");
    expect_json_hex("44666f6f62", "\"Zm9vYg\"");
    expect_json_hex("46666f6f626172", "\"Zm9vYmFy\"");
    expect_json_hex("42fbff", "\"-_8\"");
    /* text: quote, backslash and controls escaped; '/', DEL and UTF-8 as they are */
    expect_json_hex("60", "\"\"");
    expect_json_hex("6d011f225c2f080c0a0d097fc3a9",
                    "\"\\u0001\\u001f\\\"\\\\/\\b\\f\\n\\r\\t\x7f\xc3\xa9\"");
    expect_json_hex("6100", "\"\\u0000\"");
    expect_json_hex("64f09f9880", "\"\xf0\x9f\x98\x80\"");
    /* floats of every width; always with a '.' or an exponent */
    expect_json_hex("f93e00", "1.5");
    expect_json_hex("f93c00", "1.0");
    expect_json_hex("f98000", "-0.0");
    expect_json_hex("f90000", "0.0");
    expect_json_hex("f97bff", "65504.0");
    expect_json_hex("f90001", "5.960464477539063e-8");
    expect_json_hex("fa3dcccccd", "0.10000000149011612");
    expect_json_hex("fb3fb999999999999a", "0.1");
    expect_json_hex("fb3ff0000000000000", "1.0"); /* not preferred, still read */
    expect_json_hex("fbbf647ae147ae147b", "-0.0025");
    expect_json_hex("fb7e37e43c8800759c", "1e300");
    expect_json_hex("fb0000000000000001", "5e-324");
    expect_json_hex("fb7fefffffffffffff", "1.7976931348623157e308");
    expect_json_hex("fb444b1ae4d6e2ef50", "1e21");
    expect_json_hex("fb4415af1d78b58c40", "100000000000000000000.0");
    expect_json_hex("fb3eb0c6f7a0b5ed8d", "0.000001");
    expect_json_hex("fb3e7ad7f29abcaf48", "1e-7");
    expect_json_hex("fb3fd3333333333334", "0.30000000000000004");
    expect_json_hex("fa5f000000", "9223372036854776000.0");
    expect_json_hex("fb45f8ee90ff6c373e", "1.2345678901234568e29");
    /* containers */
    expect_json_hex("80", "[]");
    expect_json_hex("a0", "{}");
    expect_json_hex("8301820203820405", "[1,[2,3],[4,5]]");
    expect_json_hex("a26161016162820203", "{\"a\":1,\"b\":[2,3]}");
    expect_json_hex("a161618180", "{\"a\":[[]]}");
    expect_json_hex("82a0a0", "[{},{}]");
    /* keys that differ only in length are not duplicates */
    expect_json_hex("a261610162616102", "{\"a\":1,\"aa\":2}");
}

static void test_cbor_to_json_refusals(void **state)
{
    (void)state;
    /* valid CBOR without a JSON form */
    expect_refused_hex("c100", CL_ERR_UNSUPPORTED);               /* tag */
    expect_refused_hex("8201c24100", CL_ERR_UNSUPPORTED);         /* bignum tag in an array */
    expect_refused_hex("f7", CL_ERR_UNSUPPORTED);                 /* undefined */
    expect_refused_hex("f0", CL_ERR_UNSUPPORTED);                 /* simple(16) */
    expect_refused_hex("f8ff", CL_ERR_UNSUPPORTED);               /* simple(255) */
    expect_refused_hex("f97e00", CL_ERR_UNSUPPORTED);             /* NaN */
    expect_refused_hex("f97c00", CL_ERR_UNSUPPORTED);             /* Infinity */
    expect_refused_hex("fbfff0000000000000", CL_ERR_UNSUPPORTED); /* -Infinity */
    expect_refused_hex("a10102", CL_ERR_UNSUPPORTED);             /* integer key */
    expect_refused_hex("a1416101", CL_ERR_UNSUPPORTED);           /* byte-string key */
    expect_refused_hex("a18001", CL_ERR_UNSUPPORTED);             /* array key */
    expect_refused_hex("a1f601", CL_ERR_UNSUPPORTED);             /* null key */
    expect_refused_hex("9f01ff", CL_ERR_UNSUPPORTED);             /* indefinite length */
    /* invalid or malformed */
    expect_refused_hex("", CL_ERR_BAD_INPUT);
    expect_refused_hex("61ff", CL_ERR_BAD_INPUT);           /* text that is not UTF-8 */
    expect_refused_hex("a161ff01", CL_ERR_BAD_INPUT);       /* key that is not UTF-8 */
    expect_refused_hex("63eda080", CL_ERR_BAD_INPUT);       /* encoded surrogate */
    expect_refused_hex("a2616101616102", CL_ERR_BAD_INPUT); /* duplicate keys */
    expect_refused_hex("a3616101616281818101616102", CL_ERR_BAD_INPUT);
    expect_refused_hex("0101", CL_ERR_BAD_INPUT); /* two items */
    expect_refused_hex("8201", CL_ERR_BAD_INPUT); /* truncated */
    expect_refused_hex("1817", CL_ERR_BAD_INPUT); /* not shortest */
    expect_refused_hex("f814", CL_ERR_BAD_INPUT); /* two-byte simple below 32 */
    expect_refused_hex("fc", CL_ERR_BAD_INPUT);   /* reserved */
    expect_refused_hex("ff", CL_ERR_BAD_INPUT);   /* break */
    expect_refused_hex("f93c", CL_ERR_BAD_INPUT); /* truncated float */
    expect_refused_hex("62c3", CL_ERR_BAD_INPUT); /* string beyond the input */
}

static void test_cbor_to_json_buffer_every_size(void **state)
{
    uint8_t in[128];
    char out[256];
    size_t n = tu_hex("a3616183f93e00412a6574c3a978746162a0617a3bffffffffffffffff", in, sizeof in);
    size_t need = 0, len = 0;
    static const char want[] =
        "{\"a\":[1.5,\"Kg\",\"t\xc3\xa9xt\"],\"b\":{},\"z\":-18446744073709551616}";
    (void)state;

    assert_int_equal(cl_cbor_to_json(in, n, NULL, 0, &need), CL_OK);
    assert_int_equal(need, strlen(want));
    for (size_t size = 0; size <= need; size++) {
        memset(out, 'Q', sizeof out);
        len = 0;
        assert_int_equal(cl_cbor_to_json(in, n, out, size, &len), CL_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(len, need);
        for (size_t k = 0; k < sizeof out; k++)
            assert_int_equal(out[k], 'Q');
    }
    memset(out, 'Q', sizeof out);
    assert_int_equal(cl_cbor_to_json(in, n, out, need + 1, &len), CL_OK);
    assert_int_equal(len, need);
    assert_string_equal(out, want);
    assert_int_equal(out[need + 1], 'Q');
}

/* ------------------------------------------------------------------ */
/* Floats against libc, round trips                                    */
/* ------------------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double cbor_number(const uint8_t *p, size_t n)
{
    cl_cbor_dec_t d;
    double v = 0;
    int64_t i = 0;

    cl_cbor_dec_init(&d, p, n);
    if (cl_cbor_dec_double(&d, &v) == CL_OK)
        return v;
    assert_int_equal(cl_cbor_dec_int(&d, &i), CL_OK);
    return (double)i;
}

/* Our parsing equals strtod's, our printing reads back with strtod and is shortest. */
static void test_floats_against_libc(void **state)
{
    (void)state;
    for (int it = 0; it < 20000; it++) {
        char text[64], back[64], ref[64];
        uint8_t cbor[16];
        uint64_t bits = next_random();
        size_t n = 0, off = 0, jl = 0;
        double v, got, expect;
        int shortest, ours = 0;
        bool started = false;

        switch (it % 3) {
        case 0:
            memcpy(&v, &bits, sizeof v);
            if (!isfinite(v))
                continue;
            (void)snprintf(text, sizeof text, "%.17g", v);
            break;
        case 1:
            (void)snprintf(text, sizeof text, "%llu.%llue%d", (unsigned long long)(bits % 100000),
                           (unsigned long long)(bits >> 20), (int)(next_random() % 660) - 330);
            break;
        default:
            memcpy(&v, &bits, sizeof v);
            if (!isfinite(v))
                continue;
            (void)snprintf(text, sizeof text, "%.*e", (int)(next_random() % 20), v);
            break;
        }
        expect = strtod(text, NULL);
        if (!isfinite(expect)) {
            assert_int_equal(j2c(text, strlen(text), cbor, sizeof cbor, &n, &off),
                             CL_ERR_BAD_INPUT);
            continue;
        }
        if (j2c(text, strlen(text), cbor, sizeof cbor, &n, &off) != CL_OK)
            fail_msg("%s refused at %zu", text, off);
        if (strpbrk(text, ".eE") == NULL) {
            /* an integer literal: a CBOR integer when it fits int64 */
            got = cbor_number(cbor, n);
            assert_true(got == expect);
            continue;
        }
        got = cbor_number(cbor, n);
        if (memcmp(&got, &expect, sizeof got) != 0)
            fail_msg("%s: got %.17g, strtod %.17g", text, got, expect);

        assert_int_equal(c2j(cbor, n, back, sizeof back, &jl), CL_OK);
        v = strtod(back, NULL);
        if (memcmp(&v, &got, sizeof v) != 0)
            fail_msg("%.17g printed as %s", got, back);
        assert_true(strchr(back, '.') != NULL || strchr(back, 'e') != NULL);
        /* libc's shortest: the fewest %.*e digits that read back */
        for (shortest = 1; shortest < 17; shortest++) {
            (void)snprintf(ref, sizeof ref, "%.*e", shortest - 1, fabs(got));
            if (strtod(ref, NULL) == fabs(got))
                break;
        }
        for (const char *q = back; *q != '\0' && *q != 'e'; q++) {
            if (*q >= '1' && *q <= '9')
                started = true;
            if (started && *q >= '0' && *q <= '9')
                ours++;
        }
        /* trailing zeros of an integral plain number (and its ".0") are not significant */
        if (strchr(back, 'e') == NULL)
            for (const char *q = back + strlen(back) - 1; q > back && (*q == '0' || *q == '.'); q--)
                ours -= *q == '0';
        if (got != 0 && ours > shortest)
            fail_msg("%.17g printed as %s, %d digits suffice", got, back, shortest);
    }
}

/* The other neighbour counts: at a power of two the interval below is half as wide. */
static void test_float_shortest_at_powers_of_two(void **state)
{
    (void)state;
    /* 2^-1074, 2^-1022, 2^-44, 2^53, 2^1023 as Python's repr prints them */
    expect_json_hex("fb0000000000000001", "5e-324");
    expect_json_hex("fb0010000000000000", "2.2250738585072014e-308");
    expect_json_hex("fb3d30000000000000", "5.684341886080802e-14");
    expect_json_hex("fb4340000000000000", "9007199254740992.0");
    expect_json_hex("fb7fe0000000000000", "8.98846567431158e307");
    for (int e = -1074; e <= 1023; e++) {
        char out[64];
        uint8_t cbor[16];
        cl_cbor_enc_t enc;
        size_t n = 0, jl = 0, m = 0, off = 0;
        double v = ldexp(1.0, e);

        cl_cbor_enc_init(&enc, cbor, sizeof cbor);
        (void)cl_cbor_enc_double(&enc, v);
        assert_int_equal(cl_cbor_enc_finish(&enc, &n), CL_OK);
        assert_int_equal(c2j(cbor, n, out, sizeof out, &jl), CL_OK);
        assert_true(strtod(out, NULL) == v);
        /* and our parser reads our text back to the same CBOR */
        uint8_t again[16];
        assert_int_equal(j2c(out, jl, again, sizeof again, &m, &off), CL_OK);
        tu_assert_bytes(again, m, cbor, n);
    }
}

/* JSON -> CBOR -> JSON -> CBOR: the same CBOR; the second JSON is a fixed point. */
static void round_trip(const char *json, size_t len)
{
    static uint8_t c1[BIG * 4], c2[BIG * 4];
    static char j1[BIG * 8], j2[BIG * 8];
    size_t n1 = 0, n2 = 0, l1 = 0, l2 = 0, off = 0;

    if (j2c(json, len, c1, sizeof c1, &n1, &off) != CL_OK)
        fail_msg("refused at %zu: %.*s", off, (int)(len > 300 ? 300 : len), json);
    assert_int_equal(c2j(c1, n1, j1, sizeof j1, &l1), CL_OK);
    if (j2c(j1, l1, c2, sizeof c2, &n2, &off) != CL_OK)
        fail_msg("our own JSON refused at %zu: %s", off, j1);
    tu_assert_bytes(c2, n2, c1, n1);
    assert_int_equal(c2j(c2, n2, j2, sizeof j2, &l2), CL_OK);
    assert_string_equal(j2, j1);
}

static void test_round_trip_documents(void **state)
{
    const char *docs[] = {
        "0",
        "-0",
        "-0.0",
        "0.1",
        "1e300",
        "-2.5e-3",
        "5e-324",
        "1.7976931348623157e308",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551616",
        "123456789012345678901234567890",
        "1e-7",
        "1e21",
        "1e20",
        "[]",
        "{}",
        "\"\"",
        "true",
        "false",
        "null",
        "\"\\u0000\\u001f\\\"\\\\\\/\\b\\f\\n\\r\\t\\u007f\\u2028\\ud83d\\ude00\"",
        "{\"a\":{\"b\":{\"c\":[1,2,{\"d\":[]}]}},\"e\":\"\xc3\xa9\"}",
        " [ 1 , 2.5 , -3e-10 , \"x\" , { } , [ ] , null ] ",
        "{\"rule\":{\"on\":[\"motion\"],\"when\":{\"all\":[{\"prop\":\"lux\",\"lt\":12.5}]},"
        "\"then\":[{\"action\":\"light.on\",\"target\":\"@hall\",\"properties\":{\"level\":0.8}}]}"
        "}",
        NULL, /* every_construct, without its out-of-range number */
    };
    char fixed[sizeof every_construct];
    (void)state;

    memcpy(fixed, every_construct, sizeof fixed);
    memcpy(strstr(fixed, "1e400000000000"), "1e-40000000000", 14);
    docs[sizeof docs / sizeof docs[0] - 1] = fixed;
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++)
        round_trip(docs[i], strlen(docs[i]));

    /* compact documents in our layout come back byte for byte */
    static const char *compact[] = {
        "{\"a\":[1,-2,0.5,\"x\"],\"b\":null,\"c\":true}",
        "[1.0,-0.0,1e-7,1e21,0.000001]",
        "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\"",
        "[[[[]]],{}]",
    };
    for (size_t i = 0; i < sizeof compact / sizeof compact[0]; i++) {
        char out[256];
        canonical(compact[i], out, sizeof out);
        assert_string_equal(out, compact[i]);
    }
}

/* Random documents: nesting, escapes (chosen at random), numbers of every kind. */
static void gen_value(char *out, size_t *o, size_t cap, int depth);

static void gen_put(char *out, size_t *o, size_t cap, const char *s)
{
    size_t n = strlen(s);
    assert_true(*o + n < cap);
    memcpy(out + *o, s, n);
    *o += n;
}

static void gen_ws(char *out, size_t *o, size_t cap)
{
    static const char *ws[] = {"", "", "", " ", "\n  ", "\t", "\r\n"};
    gen_put(out, o, cap, ws[next_random() % 7]);
}

static void gen_string(char *out, size_t *o, size_t cap)
{
    static const char *pieces[] = {"a",
                                   "Z",
                                   "0",
                                   " ",
                                   "\xc3\xa9",
                                   "\xe2\x82\xac",
                                   "\xf0\x9f\x98\x80",
                                   "\\n",
                                   "\\\"",
                                   "\\\\",
                                   "\\/",
                                   "\\t",
                                   "\\u0001",
                                   "\\u00e9",
                                   "\\u20AC",
                                   "\\ud83d\\ude00",
                                   "\\u0000",
                                   "\x7f",
                                   "{",
                                   "]",
                                   ","};
    size_t n = next_random() % 8;
    gen_put(out, o, cap, "\"");
    for (size_t i = 0; i < n; i++)
        gen_put(out, o, cap, pieces[next_random() % (sizeof pieces / sizeof pieces[0])]);
    gen_put(out, o, cap, "\"");
}

static void gen_number(char *out, size_t *o, size_t cap)
{
    char t[64];
    uint64_t r = next_random();
    double v;

    switch (r % 6) {
    case 0: (void)snprintf(t, sizeof t, "%lld", (long long)(next_random() >> (r % 64))); break;
    case 1:
        (void)snprintf(t, sizeof t, "-%llu", (unsigned long long)(next_random() >> (r % 64)));
        break;
    case 2: (void)snprintf(t, sizeof t, "%.3f", (double)(int)(next_random() % 200000) / 7.0); break;
    case 3:
        r = next_random();
        memcpy(&v, &r, sizeof v);
        if (!isfinite(v))
            v = 1.0;
        (void)snprintf(t, sizeof t, "%.17g", v);
        break;
    case 4:
        (void)snprintf(t, sizeof t, "%llue%d", (unsigned long long)(next_random() % 1000),
                       (int)(next_random() % 80) - 40);
        break;
    default: (void)snprintf(t, sizeof t, "%llu", (unsigned long long)next_random()); break;
    }
    gen_put(out, o, cap, t);
}

static void gen_value(char *out, size_t *o, size_t cap, int depth)
{
    uint64_t r = next_random() % (depth >= 6 ? 6 : 8);
    size_t n;

    gen_ws(out, o, cap);
    switch (r) {
    case 0: gen_put(out, o, cap, "true"); break;
    case 1: gen_put(out, o, cap, "false"); break;
    case 2: gen_put(out, o, cap, "null"); break;
    case 3:
    case 4: gen_number(out, o, cap); break;
    case 5: gen_string(out, o, cap); break;
    case 6:
        n = next_random() % 5;
        gen_put(out, o, cap, "[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                gen_put(out, o, cap, ",");
            gen_value(out, o, cap, depth + 1);
        }
        gen_ws(out, o, cap);
        gen_put(out, o, cap, "]");
        break;
    default:
        n = next_random() % 5;
        gen_put(out, o, cap, "{");
        for (size_t i = 0; i < n; i++) {
            char key[48];
            /* distinct keys, sometimes spelled with escapes */
            (void)snprintf(key, sizeof key, i % 2 ? "%s\"k\\u00e9%zu\"" : "%s\"k\xc3\xa9%zu\"",
                           i ? "," : "", i);
            gen_put(out, o, cap, key);
            gen_ws(out, o, cap);
            gen_put(out, o, cap, ":");
            gen_value(out, o, cap, depth + 1);
        }
        gen_ws(out, o, cap);
        gen_put(out, o, cap, "}");
        break;
    }
    gen_ws(out, o, cap);
}

static void test_round_trip_generated(void **state)
{
    static char doc[BIG * 4];
    (void)state;

    for (int i = 0; i < 2000; i++) {
        size_t n = 0;
        gen_value(doc, &n, sizeof doc, 0);
        round_trip(doc, n);
    }
}

/* Many keys: the duplicate check is quadratic but must stay correct. */
static void test_many_keys(void **state)
{
    static char doc[65536];
    uint8_t *out = malloc(sizeof doc);
    size_t o = 0, n = 0, off = 0, dup_at;
    (void)state;

    assert_non_null(out);
    doc[o++] = '{';
    for (int i = 0; i < 1000; i++)
        o += (size_t)snprintf(doc + o, sizeof doc - o, "%s\"key%d\":[%d,{\"key%d\":0}]",
                              i ? "," : "", i, i, i + 1);
    dup_at = o + 1;
    memcpy(doc + o, "}", 2);
    assert_int_equal(j2c(doc, o + 1, out, sizeof doc, &n, &off), CL_OK);
    o += (size_t)snprintf(doc + o, sizeof doc - o, ",\"key500\":1}");
    assert_int_equal(j2c(doc, o, out, sizeof doc, &n, &off), CL_ERR_BAD_INPUT);
    assert_int_equal(off, dup_at);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_floats),
        cmocka_unit_test(test_large_integers_become_floats),
        cmocka_unit_test(test_float_ties_beyond_800_digits),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_escapes_mixed),
        cmocka_unit_test(test_containers),
        cmocka_unit_test(test_long_containers),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_output_buffer_every_size),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_cbor_to_json_types),
        cmocka_unit_test(test_cbor_to_json_refusals),
        cmocka_unit_test(test_cbor_to_json_buffer_every_size),
        cmocka_unit_test(test_floats_against_libc),
        cmocka_unit_test(test_float_shortest_at_powers_of_two),
        cmocka_unit_test(test_round_trip_documents),
        cmocka_unit_test(test_round_trip_generated),
        cmocka_unit_test(test_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
