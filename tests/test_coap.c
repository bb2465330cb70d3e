/*
 * test_coap.c - CoAP codec (lib/coap.c): byte-exact examples, RFC 8613
 * messages from the vector file, Observe/Block round trips, every message
 * format error of RFC 7252 section 3, truncation at every offset, limits,
 * and the writers' "nothing written when it does not fit" rule.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cloister/coap.h"

#define CANARY 0xA5

/* Parses hex, re-serializes it and checks both writers give the same bytes. */
static void assert_roundtrip(const uint8_t *buf, size_t len)
{
    cl_coap_msg_t m;
    uint8_t out[2048];
    size_t n = 0;

    assert_true(len <= sizeof out);
    assert_int_equal(cl_coap_parse(&m, buf, len), CL_OK);
    assert_int_equal(cl_coap_serialize(&m, NULL, 0, &n), CL_OK);
    assert_int_equal(n, len);
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_OK);
    tu_assert_bytes(out, n, buf, len);

    cl_coap_builder_t b;
    memset(out, 0, sizeof out);
    cl_coap_build_init(&b, out, sizeof out, m.type, m.code, m.mid, m.token, m.tkl);
    for (size_t i = 0; i < m.n_options; i++)
        assert_int_equal(
            cl_coap_build_option(&b, m.options[i].number, m.options[i].value, m.options[i].len),
            CL_OK);
    assert_int_equal(cl_coap_build_payload(&b, m.payload, m.payload_len), CL_OK);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    tu_assert_bytes(out, n, buf, len);
}

static void assert_parse_fails(const char *hex, cl_status_t want)
{
    uint8_t buf[512];
    cl_coap_msg_t m;
    size_t len = tu_hex(hex, buf, sizeof buf);
    /* Exact-size heap copy so that ASan sees any read past the datagram. */
    uint8_t *exact = malloc(len ? len : 1);
    assert_non_null(exact);
    memcpy(exact, buf, len);
    cl_status_t rc = cl_coap_parse(&m, exact, len);
    if (rc != want)
        fail_msg("parse(%s) = %d, want %d", hex, (int)rc, (int)want);
    assert_int_equal(m.n_options, 0); /* fail closed */
    free(exact);
}

/* Appends hex to buf at offset k; returns the new offset. */
static size_t put_hex(uint8_t *buf, size_t k, const char *hex)
{
    return k + tu_hex(hex, buf + k, 64);
}

static bool opt_eq(const cl_coap_option_t *o, uint16_t number, const char *s)
{
    size_t n = strlen(s);
    return o != NULL && o->number == number && o->len == n &&
           (n == 0 || memcmp(o->value, s, n) == 0);
}

/* ---------------------------------------------------------------- */
/* Byte-exact examples                                               */
/* ---------------------------------------------------------------- */

/* RFC 8613 Appendix C.4: the unprotected request GET coap://localhost/tv1. */
static void test_rfc8613_c4_request(void **state)
{
    (void)state;
    static const uint8_t msg[] = {
        0x44,                                            /* ver 1, CON, tkl 4 */
        0x01,                                            /* 0.01 GET */
        0x5d, 0x1f,                                      /* message id */
        0x00, 0x00, 0x39, 0x74,                          /* token */
        0x39,                                            /* delta 3 (Uri-Host), len 9 */
        'l',  'o',  'c',  'a',  'l', 'h', 'o', 's', 't', /* "localhost" */
        0x83,                                            /* delta 8 (Uri-Path 11), len 3 */
        't',  'v',  '1',                                 /* "tv1" */
    };
    uint8_t hex[64];
    size_t hl = tu_hex("44015d1f00003974396c6f63616c686f737483747631", hex, sizeof hex);
    tu_assert_bytes(msg, sizeof msg, hex, hl);

    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, msg, sizeof msg), CL_OK);
    assert_int_equal(m.type, CL_COAP_CON);
    assert_int_equal(m.code, CL_COAP_GET);
    assert_int_equal(m.mid, 0x5d1f);
    tu_assert_bytes(m.token, m.tkl, (const uint8_t *)"\x00\x00\x39\x74", 4);
    assert_int_equal(m.n_options, 2);
    assert_true(opt_eq(cl_coap_msg_get(&m, CL_COAP_OPT_URI_HOST), 3, "localhost"));
    assert_true(opt_eq(cl_coap_msg_get(&m, CL_COAP_OPT_URI_PATH), 11, "tv1"));
    assert_null(m.payload);
    assert_int_equal(m.payload_len, 0);
    /* Pointers into the datagram, no copies. */
    assert_ptr_equal(m.token, msg + 4);
    assert_ptr_equal(m.options[0].value, msg + 9);

    char path[16];
    assert_int_equal(cl_coap_uri_path(&m, path, sizeof path), CL_OK);
    assert_string_equal(path, "/tv1");
    assert_roundtrip(msg, sizeof msg);

    /* And from scratch with the builder. */
    uint8_t out[64];
    size_t n;
    cl_coap_builder_t b;
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_CON, CL_COAP_GET, 0x5d1f, msg + 4, 4);
    assert_int_equal(
        cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)"localhost", 9), CL_OK);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"tv1", 3),
                     CL_OK);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    tu_assert_bytes(out, n, msg, sizeof msg);

    /* And by filling a struct, in the wrong order, then sorting. */
    cl_coap_msg_t w;
    memset(&w, 0, sizeof w);
    w.type = CL_COAP_CON;
    w.code = CL_COAP_GET;
    w.mid = 0x5d1f;
    w.tkl = 4;
    w.token = msg + 4;
    assert_int_equal(cl_coap_msg_set_uri_path(&w, "/tv1"), CL_OK);
    assert_int_equal(
        cl_coap_msg_add_option(&w, CL_COAP_OPT_URI_HOST, (const uint8_t *)"localhost", 9), CL_OK);
    assert_int_equal(cl_coap_serialize(&w, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(n, 0);
    cl_coap_sort_options(&w);
    assert_int_equal(cl_coap_serialize(&w, out, sizeof out, &n), CL_OK);
    tu_assert_bytes(out, n, msg, sizeof msg);
}

/* Every CoAP message of the RFC 8613 C.4-C.8 vectors (plain and with the OSCORE option). */
static void test_rfc8613_vectors_roundtrip(void **state)
{
    (void)state;
    static const char *const keys[] = {"unprotected_coap_request", "protected_coap_request",
                                       "unprotected_coap_response", "protected_coap_response"};
    cJSON *root = tu_load_vectors("oscore-rfc8613.json");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "message_protection");
    const cJSON *v;
    size_t seen = 0, with_oscore = 0;
    cJSON_ArrayForEach(v, list)
    {
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            if (tu_str_opt(v, keys[k]) == NULL)
                continue;
            uint8_t msg[256];
            size_t len = tu_hex(tu_str(v, keys[k]), msg, sizeof msg);
            assert_roundtrip(msg, len);
            cl_coap_msg_t m;
            assert_int_equal(cl_coap_parse(&m, msg, len), CL_OK);
            if (cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) != NULL)
                with_oscore++;
            seen++;
        }
    }
    assert_int_equal(seen, 10);
    assert_int_equal(with_oscore, 5);
    cJSON_Delete(root);
}

/* ACK 2.05 with Content-Format, Max-Age and a payload. */
static void test_content_response(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x62,                      /* ver 1, ACK, tkl 2 */
        0x45,                      /* 2.05 Content */
        0xbe, 0xef,                /* message id */
        0xca, 0xfe,                /* token */
        0xc0,                      /* delta 12 (Content-Format), len 0: text/plain (0) */
        0x21, 0x3c,                /* delta 2 (Max-Age 14), len 1: 60 */
        0xff,                      /* payload marker */
        'h',  'e',  'l', 'l', 'o', /* "hello" */
    };
    uint8_t out[64];
    size_t n;
    cl_coap_builder_t b;
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_ACK, CL_COAP_CONTENT, 0xbeef, want + 4, 2);
    assert_int_equal(cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_TEXT),
                     CL_OK);
    assert_int_equal(cl_coap_build_option_uint(&b, CL_COAP_OPT_MAX_AGE, 60), CL_OK);
    assert_int_equal(cl_coap_build_payload(&b, (const uint8_t *)"hello", 5), CL_OK);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    tu_assert_bytes(out, n, want, sizeof want);

    cl_coap_msg_t m;
    uint32_t v = 99;
    assert_int_equal(cl_coap_parse(&m, want, sizeof want), CL_OK);
    assert_int_equal(m.code, CL_COAP_CONTENT);
    assert_int_equal(cl_coap_opt_uint(cl_coap_msg_get(&m, CL_COAP_OPT_CONTENT_FORMAT), &v), CL_OK);
    assert_int_equal(v, 0);
    assert_int_equal(cl_coap_opt_uint(cl_coap_msg_get(&m, CL_COAP_OPT_MAX_AGE), &v), CL_OK);
    assert_int_equal(v, 60);
    tu_assert_bytes(m.payload, m.payload_len, (const uint8_t *)"hello", 5);
    assert_ptr_equal(m.payload, want + 10);
    assert_roundtrip(want, sizeof want);

    /* 0xFF inside an option value is data, not a payload marker. */
    static const uint8_t ff_in_value[] = {
        0x40, 0x01, 0x00, 0x01, /* CON GET mid 1, no token */
        0x42, 0xff, 0xff,       /* delta 4 (ETag), len 2: ff ff */
    };
    assert_int_equal(cl_coap_parse(&m, ff_in_value, sizeof ff_in_value), CL_OK);
    assert_int_equal(m.n_options, 1);
    assert_int_equal(m.payload_len, 0);
    assert_roundtrip(ff_in_value, sizeof ff_in_value);
}

/* Extended delta and length: nibble 13 (+13, 1 byte) and 14 (+269, 2 bytes). */
static void test_extended_forms(void **state)
{
    (void)state;
    static uint8_t want[4 + 2 + 3 + 13 + 2 + 4 + 300 + 3];
    size_t k = 0;
    k = put_hex(want, k, "40021234"); /* CON POST mid 0x1234, no token */
    k = put_hex(want, k, "b178");     /* delta 11 (Uri-Path), len 1: "x" */
    k = put_hex(want, k, "dde400");   /* delta 13+0xe4 = 241 -> 252 (Echo); len 13+0x00 = 13 */
    for (int i = 0; i < 13; i++)
        want[k++] = (uint8_t)i;
    k = put_hex(want, k, "611a"); /* delta 6 -> 258 (No-Response), len 1: 0x1a */
    /* delta 13+0x15 = 34 -> 292 (Request-Tag); len 269+0x1f = 300 */
    k = put_hex(want, k, "de15001f");
    for (int i = 0; i < 300; i++)
        want[k++] = (uint8_t)(i * 7);
    k = put_hex(want, k, "e0fbb7"); /* delta 269+0xfbb7 = 64708 -> 65000, len 0 */
    assert_int_equal(k, sizeof want);

    static uint8_t echo[13], tag[300];
    for (int i = 0; i < 13; i++)
        echo[i] = (uint8_t)i;
    for (int i = 0; i < 300; i++)
        tag[i] = (uint8_t)(i * 7);

    uint8_t out[512];
    size_t n;
    cl_coap_builder_t b;
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_CON, CL_COAP_POST, 0x1234, NULL, 0);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"x", 1),
                     CL_OK);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_ECHO, echo, sizeof echo), CL_OK);
    assert_int_equal(cl_coap_build_option_uint(&b, CL_COAP_OPT_NO_RESPONSE, 0x1a), CL_OK);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_REQUEST_TAG, tag, sizeof tag), CL_OK);
    assert_int_equal(cl_coap_build_option(&b, 65000, NULL, 0), CL_OK);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    tu_assert_bytes(out, n, want, sizeof want);

    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, want, sizeof want), CL_OK);
    assert_int_equal(m.n_options, 5);
    assert_int_equal(m.options[1].number, CL_COAP_OPT_ECHO);
    tu_assert_bytes(m.options[1].value, m.options[1].len, echo, sizeof echo);
    assert_int_equal(m.options[2].number, CL_COAP_OPT_NO_RESPONSE);
    assert_int_equal(m.options[3].number, CL_COAP_OPT_REQUEST_TAG);
    tu_assert_bytes(m.options[3].value, m.options[3].len, tag, sizeof tag);
    assert_int_equal(m.options[4].number, 65000);
    assert_int_equal(m.options[4].len, 0);
    assert_null(m.options[4].value);
    assert_roundtrip(want, sizeof want);
}

/* Each boundary of the delta/length forms, and the header size it needs. */
static void test_extended_boundaries(void **state)
{
    (void)state;
    static const struct {
        uint32_t v;
        uint8_t nib;
        size_t ext;
    } cases[] = {
        {0, 0, 0},    {12, 12, 0},   {13, 13, 1},    {268, 13, 1},
        {269, 14, 2}, {1000, 14, 2}, {65535, 14, 2},
    };
    static uint8_t value[65535 + 269];
    static uint8_t out[65535 + 269 + 16];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t v = cases[i].v;
        /* As an option number (first option: delta == number). */
        cl_coap_builder_t b;
        size_t n;
        cl_coap_build_init(&b, out, sizeof out, CL_COAP_NON, CL_COAP_GET, 7, NULL, 0);
        assert_int_equal(cl_coap_build_option(&b, (uint16_t)v, NULL, 0), CL_OK);
        assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
        assert_int_equal(n, 4 + 1 + cases[i].ext);
        assert_int_equal(out[4], (uint8_t)(cases[i].nib << 4));
        assert_roundtrip(out, n);
        /* As a value length. */
        cl_coap_build_init(&b, out, sizeof out, CL_COAP_NON, CL_COAP_GET, 7, NULL, 0);
        assert_int_equal(cl_coap_build_option(&b, 1, value, v), CL_OK);
        assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
        assert_int_equal(n, 4 + 1 + cases[i].ext + v);
        assert_int_equal(out[4], (uint8_t)(0x10 | cases[i].nib));
        cl_coap_msg_t m;
        assert_int_equal(cl_coap_parse(&m, out, n), CL_OK);
        assert_int_equal(m.options[0].len, v);
    }
    /* The largest length the format can express: 269 + 0xffff. */
    cl_coap_builder_t b;
    size_t n;
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_NON, CL_COAP_GET, 7, NULL, 0);
    assert_int_equal(cl_coap_build_option(&b, 1, value, sizeof value), CL_OK);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    assert_int_equal(n, 4 + 3 + sizeof value);
    tu_assert_bytes(out, 7, (const uint8_t *)"\x50\x01\x00\x07\x1e\xff\xff", 7);
    /* Well-formed, but longer than cl_coap_option_t.len can hold. */
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, out, n), CL_ERR_LIMIT);
    /* One more does not exist on the wire. */
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_NON, CL_COAP_GET, 7, NULL, 0);
    assert_int_equal(cl_coap_build_option(&b, 1, value, sizeof value + 1), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(n, 0);
}

/* Observe (RFC 7641): registration and a notification. */
static void test_observe(void **state)
{
    (void)state;
    static const uint8_t reg[] = {
        0x41, 0x01, 0x00, 0x10,      /* CON GET mid 16, tkl 1 */
        0x7a,                        /* token */
        0x60,                        /* delta 6 (Observe), len 0: register (0) */
        0x54, 't',  'e',  'm',  'p', /* delta 5 (Uri-Path 11), len 4 */
    };
    uint8_t out[64];
    size_t n;
    cl_coap_builder_t b;
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_CON, CL_COAP_GET, 16, reg + 4, 1);
    assert_int_equal(cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, 0), CL_OK);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"temp", 4),
                     CL_OK);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    tu_assert_bytes(out, n, reg, sizeof reg);
    assert_roundtrip(reg, sizeof reg);

    static const uint8_t note[] = {
        0x51, 0x45, 0x00, 0x20, /* NON 2.05 mid 32, tkl 1 */
        0x7a,                   /* token */
        0x63, 0x12, 0x34, 0x56, /* delta 6 (Observe), len 3: 0x123456 */
        0x60,                   /* delta 6 (Content-Format 12), len 0 */
        0xff, '2',  '1',        /* payload */
    };
    cl_coap_msg_t m;
    uint32_t v;
    assert_int_equal(cl_coap_parse(&m, note, sizeof note), CL_OK);
    assert_int_equal(cl_coap_opt_uint(cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE), &v), CL_OK);
    assert_int_equal(v, 0x123456);
    assert_roundtrip(note, sizeof note);
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_NON, CL_COAP_CONTENT, 32, note + 4, 1);
    assert_int_equal(cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, 0x123456), CL_OK);
    assert_int_equal(cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, 0), CL_OK);
    assert_int_equal(cl_coap_build_payload(&b, (const uint8_t *)"21", 2), CL_OK);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    tu_assert_bytes(out, n, note, sizeof note);
}

/* Block1 on a PUT and Block2 on its response (RFC 7959). */
static void test_block_messages(void **state)
{
    (void)state;
    uint8_t body[32];
    memset(body, 'B', sizeof body);
    cl_coap_block_t blk = {.num = 2, .more = true, .szx = 1}; /* 32-byte blocks */
    uint8_t bv[3];
    size_t bl;
    assert_int_equal(cl_coap_block_encode(&blk, bv, &bl), CL_OK);
    tu_assert_bytes(bv, bl, (const uint8_t *)"\x29", 1); /* num 2 | M | szx 1 */

    uint8_t out[128];
    size_t n;
    cl_coap_builder_t b;
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_CON, CL_COAP_PUT, 0x0102,
                       (const uint8_t *)"\x01", 1);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"fw", 2),
                     CL_OK);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_BLOCK1, bv, bl), CL_OK);
    assert_int_equal(cl_coap_build_option_uint(&b, CL_COAP_OPT_SIZE1, 1000), CL_OK);
    assert_int_equal(cl_coap_build_payload(&b, body, sizeof body), CL_OK);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    static const uint8_t head[] = {
        0x41, 0x03, 0x01, 0x02, 0x01, /* CON PUT mid 0x0102, token 01 */
        0xb2, 'f',  'w',              /* delta 11 (Uri-Path), len 2 */
        0xd1, 0x03, 0x29,             /* delta 13+3 = 16 -> 27 (Block1), len 1 */
        0xd2, 0x14, 0x03, 0xe8,       /* delta 13+20 = 33 -> 60 (Size1), len 2: 1000 */
        0xff,                         /* payload marker */
    };
    assert_int_equal(n, sizeof head + sizeof body);
    tu_assert_bytes(out, sizeof head, head, sizeof head);
    assert_roundtrip(out, n);

    cl_coap_msg_t m;
    cl_coap_block_t got;
    uint32_t size1;
    assert_int_equal(cl_coap_parse(&m, out, n), CL_OK);
    assert_int_equal(cl_coap_block_decode(cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK1), &got), CL_OK);
    assert_int_equal(got.num, 2);
    assert_true(got.more);
    assert_int_equal(got.szx, 1);
    assert_int_equal(cl_coap_opt_uint(cl_coap_msg_get(&m, CL_COAP_OPT_SIZE1), &size1), CL_OK);
    assert_int_equal(size1, 1000);

    /* Block2 response: 2.05, Block2 num 0x12345 (3 bytes), last block. */
    blk = (cl_coap_block_t){.num = 0x12345, .more = false, .szx = 6};
    assert_int_equal(cl_coap_block_encode(&blk, bv, &bl), CL_OK);
    tu_assert_bytes(bv, bl, (const uint8_t *)"\x12\x34\x56", 3);
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_ACK, CL_COAP_CONTENT, 0x0102,
                       (const uint8_t *)"\x01", 1);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_BLOCK2, bv, bl), CL_OK);
    assert_int_equal(cl_coap_build_payload(&b, body, 1), CL_OK);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    static const uint8_t resp[] = {
        0x61, 0x45, 0x01, 0x02, 0x01, /* ACK 2.05 mid 0x0102, token 01 */
        0xd3, 0x0a, 0x12, 0x34, 0x56, /* delta 13+10 = 23 (Block2), len 3 */
        0xff, 'B',                    /* payload */
    };
    tu_assert_bytes(out, n, resp, sizeof resp);
    assert_roundtrip(resp, sizeof resp);
    assert_int_equal(cl_coap_parse(&m, resp, sizeof resp), CL_OK);
    assert_int_equal(cl_coap_block_decode(cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK2), &got), CL_OK);
    assert_int_equal(got.num, 0x12345);
    assert_false(got.more);
    assert_int_equal(got.szx, 6);
}

static void test_block_values(void **state)
{
    (void)state;
    static const struct {
        uint32_t num;
        bool more;
        uint8_t szx;
        const char *hex;
    } ok[] = {
        {0, false, 0, ""}, /* all zero: empty value */
        {0, true, 0, "08"},
        {0, false, 6, "06"},
        {15, true, 6, "fe"},
        {16, false, 0, "0100"},
        {4095, true, 2, "fffa"},
        {4096, false, 0, "010000"},
        {0xfffff, true, 6, "fffffe"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cl_coap_block_t blk = {.num = ok[i].num, .more = ok[i].more, .szx = ok[i].szx}, got;
        uint8_t want[3], out[3];
        size_t wl = tu_hex(ok[i].hex, want, sizeof want), n = 99;
        assert_int_equal(cl_coap_block_encode(&blk, out, &n), CL_OK);
        tu_assert_bytes(out, n, want, wl);
        cl_coap_option_t o = {
            .number = CL_COAP_OPT_BLOCK2, .len = (uint16_t)wl, .value = wl ? want : NULL};
        assert_int_equal(cl_coap_block_decode(&o, &got), CL_OK);
        assert_int_equal(got.num, ok[i].num);
        assert_int_equal(got.more, ok[i].more);
        assert_int_equal(got.szx, ok[i].szx);
    }
    /* Leading zeros are tolerated on input. */
    cl_coap_block_t got;
    cl_coap_option_t o = {
        .number = CL_COAP_OPT_BLOCK1, .len = 2, .value = (const uint8_t *)"\x00\x1e"};
    assert_int_equal(cl_coap_block_decode(&o, &got), CL_OK);
    assert_int_equal(got.num, 1);
    /* SZX 7 is reserved; more than 3 bytes cannot be a block value. */
    o.len = 1;
    o.value = (const uint8_t *)"\x17";
    assert_int_equal(cl_coap_block_decode(&o, &got), CL_ERR_BAD_INPUT);
    o.len = 4;
    o.value = (const uint8_t *)"\x00\x00\x00\x10";
    assert_int_equal(cl_coap_block_decode(&o, &got), CL_ERR_BAD_INPUT);
    /* Encoder: num >= 2^20 and szx > 6 are caller errors, *len = 0. */
    uint8_t out[3];
    size_t n = 99;
    cl_coap_block_t bad = {.num = 1u << 20, .more = false, .szx = 0};
    assert_int_equal(cl_coap_block_encode(&bad, out, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(n, 0);
    bad = (cl_coap_block_t){.num = 0, .more = false, .szx = 7};
    n = 99;
    assert_int_equal(cl_coap_block_encode(&bad, out, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(n, 0);
}

static void test_uint_values(void **state)
{
    (void)state;
    static const struct {
        uint32_t v;
        const char *hex;
    } cases[] = {
        {0, ""},
        {1, "01"},
        {255, "ff"},
        {256, "0100"},
        {65535, "ffff"},
        {65536, "010000"},
        {0x1000000, "01000000"},
        {0xffffffff, "ffffffff"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t want[4], out[4];
        size_t wl = tu_hex(cases[i].hex, want, sizeof want);
        size_t n = cl_coap_uint_encode(out, cases[i].v);
        tu_assert_bytes(out, n, want, wl);
        cl_coap_option_t o = {
            .number = CL_COAP_OPT_MAX_AGE, .len = (uint16_t)wl, .value = wl ? want : NULL};
        uint32_t v = 12345;
        assert_int_equal(cl_coap_opt_uint(&o, &v), CL_OK);
        assert_int_equal(v, cases[i].v);
    }
    uint32_t v;
    cl_coap_option_t o = {
        .number = CL_COAP_OPT_MAX_AGE, .len = 3, .value = (const uint8_t *)"\x00\x00\x3c"};
    assert_int_equal(cl_coap_opt_uint(&o, &v), CL_OK);
    assert_int_equal(v, 60);
    o.len = 5;
    o.value = (const uint8_t *)"\x00\x00\x00\x00\x01";
    assert_int_equal(cl_coap_opt_uint(&o, &v), CL_ERR_BAD_INPUT);
}

/* Empty messages: ACK, RST, and the CON "ping". */
static void test_empty_messages(void **state)
{
    (void)state;
    static const struct {
        uint8_t type;
        const char *hex;
    } cases[] = {
        {CL_COAP_ACK, "6000abcd"}, /* ver 1, ACK, tkl 0 | 0.00 | mid */
        {CL_COAP_RST, "7000abcd"}, /* ver 1, RST, tkl 0 | 0.00 | mid */
        {CL_COAP_CON, "4000abcd"}, /* ver 1, CON, tkl 0 | 0.00 | mid */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t want[4], out[8];
        size_t n;
        tu_hex(cases[i].hex, want, sizeof want);
        cl_coap_builder_t b;
        cl_coap_build_init(&b, out, sizeof out, cases[i].type, CL_COAP_EMPTY, 0xabcd, NULL, 0);
        assert_int_equal(cl_coap_build_payload(&b, NULL, 0), CL_OK);
        assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
        tu_assert_bytes(out, n, want, 4);
        cl_coap_msg_t m;
        assert_int_equal(cl_coap_parse(&m, want, 4), CL_OK);
        assert_int_equal(m.type, cases[i].type);
        assert_int_equal(m.code, CL_COAP_EMPTY);
        assert_int_equal(m.mid, 0xabcd);
        assert_null(m.token);
        assert_roundtrip(want, 4);
    }
    /* The writers refuse to put anything into an Empty message. */
    uint8_t out[16];
    size_t n;
    cl_coap_builder_t b;
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_ACK, CL_COAP_EMPTY, 1, (const uint8_t *)"t", 1);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_ERR_INVALID_ARG);
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_ACK, CL_COAP_EMPTY, 1, NULL, 0);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_ETAG, NULL, 0), CL_ERR_INVALID_ARG);
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_ACK, CL_COAP_EMPTY, 1, NULL, 0);
    assert_int_equal(cl_coap_build_payload(&b, (const uint8_t *)"x", 1), CL_ERR_INVALID_ARG);

    cl_coap_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = CL_COAP_RST;
    m.tkl = 1;
    m.token = (const uint8_t *)"t";
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    m.tkl = 0;
    m.payload = (const uint8_t *)"x";
    m.payload_len = 1;
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    m.payload = NULL;
    m.payload_len = 0;
    assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_ETAG, NULL, 0), CL_OK);
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
}

/* ---------------------------------------------------------------- */
/* Message format errors (RFC 7252 section 3)                        */
/* ---------------------------------------------------------------- */

static void test_format_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                           /* nothing */
        "40",                         /* header cut short */
        "4001",                       /* header cut short */
        "400100",                     /* header cut short */
        "00010001",                   /* version 0 */
        "80010001",                   /* version 2 */
        "c0010001",                   /* version 3 */
        "49010001010203040506070809", /* tkl 9 */
        "4f010001",                   /* tkl 15 */
        "44010001010203",             /* token runs past the end */
        "41010001",                   /* token missing */
        "40200001",                   /* code 1.00: reserved class */
        "403f0001",                   /* code 1.31: reserved class */
        "40c00001",                   /* code 6.00: reserved class */
        "40ff0001",                   /* code 7.31: reserved class */
        "61000001aa",                 /* Empty with a token */
        "6000000160",                 /* Empty with an option */
        "60000001ff00",               /* Empty with a payload */
        "6000000100",                 /* Empty with a trailing byte */
        "40010001ff",                 /* payload marker, no payload */
        "40010001b161ff",             /* option then marker, no payload */
        "40010001f0",                 /* delta nibble 15 without being the marker */
        "40010001f1aa",               /* delta nibble 15, length 1 */
        "400100010f",                 /* length nibble 15 */
        "400100011faa",               /* length nibble 15 after delta 1 */
        "40010001d0",                 /* delta 13: extension byte missing */
        "40010001e0",                 /* delta 14: both extension bytes missing */
        "40010001e000",               /* delta 14: one extension byte missing */
        "400100010d",                 /* length 13: extension byte missing */
        "400100010e00",               /* length 14: one extension byte missing */
        "40010001dd00",               /* delta 13 present, length 13 extension missing */
        "40010001ee0000",             /* delta 14 present, length 14 extension missing */
        "40010001e0fef3",             /* delta 269+0xfef3 = 65536: option number > 65535 */
        "40010001e0ffff",             /* delta 65804 */
        "40010001e0fef210",           /* option 65535, then delta 1 -> 65536 */
        "40010001b3616263e0fee8",     /* option 11, then delta 269+0xfee8 = 65525 -> 65536 */
        "40010001b2aa",               /* option value runs past the end */
        "40010001d1ff",               /* delta 13 ext, value missing */
        "400100010d00aaaaaaaaaaaaaaaaaaaaaaaa", /* length 13: one byte short */
        "400100010e0000",                       /* length 269: value missing */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_parse_fails(bad[i], CL_ERR_BAD_INPUT);
    /* The neighbours of these errors are fine. */
    static const char *const good[] = {
        "60000001",                               /* Empty ACK */
        "48010001010203040506070c",               /* tkl 8 */
        "40400001",                               /* code 2.00 */
        "40800001",                               /* code 4.00 */
        "40a00001",                               /* code 5.00 */
        "40010001e0fef2",                         /* option 65535 */
        "40010001e0fef200",                       /* option 65535 repeated (delta 0) */
        "4001000100",                             /* option 0 with length 0 */
        "40010001ff00",                           /* payload of one zero byte */
        "4001000101ff",                           /* option 0 holding ff, no payload */
        "400100010d00aaaaaaaaaaaaaaaaaaaaaaaaaa", /* length 13 exactly */
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint8_t buf[64];
        size_t len = tu_hex(good[i], buf, sizeof buf);
        assert_roundtrip(buf, len);
    }
    /* Every code class: 1, 6 and 7 are reserved. */
    for (unsigned c = 0; c < 8; c++) {
        uint8_t buf[] = {0x40, CL_COAP_CODE(c, 1), 0, 1};
        cl_coap_msg_t m;
        cl_status_t want = (c == 1 || c >= 6) ? CL_ERR_BAD_INPUT : CL_OK;
        assert_int_equal(cl_coap_parse(&m, buf, sizeof buf), want);
    }
}

/* A message with a token, every option form and a payload, cut at every length. */
static void test_truncation(void **state)
{
    (void)state;
    uint8_t full[600];
    size_t len;
    cl_coap_builder_t b;
    static uint8_t big[300];
    memset(big, 0xff, sizeof big); /* 0xff everywhere it could be mistaken for a marker */
    cl_coap_build_init(&b, full, sizeof full, CL_COAP_CON, CL_COAP_POST, 0xffff,
                       (const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)"h", 1);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, 0xffffff);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, (const uint8_t *)"\x09\x14\xff", 3);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"a", 1);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, big, 20);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_BLOCK1, 0xfffffe);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_ECHO, big, 8);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_REQUEST_TAG, big, 270);
    (void)cl_coap_build_option(&b, 2000, NULL, 0);
    (void)cl_coap_build_payload(&b, big, 4);
    assert_int_equal(cl_coap_build_finish(&b, &len), CL_OK);
    assert_roundtrip(full, len);

    size_t valid_prefixes = 0;
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *p = malloc(cut ? cut : 1);
        assert_non_null(p);
        memcpy(p, full, cut);
        cl_coap_msg_t m;
        cl_status_t rc = cl_coap_parse(&m, p, cut);
        if (rc == CL_OK) {
            /* A shorter valid message (cut at an option boundary, or inside the payload). */
            uint8_t out[600];
            size_t n;
            assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_OK);
            tu_assert_bytes(out, n, p, cut);
            valid_prefixes++;
        } else {
            assert_int_equal(rc, CL_ERR_BAD_INPUT);
        }
        free(p);
    }
    /* header+token, after each of the 9 options, and 3 shorter payloads */
    assert_int_equal(valid_prefixes, 1 + 9 + 3);
}

static void test_too_many_options(void **state)
{
    (void)state;
    uint8_t buf[4 + CL_COAP_MAX_OPTIONS + 8];
    size_t len = 0;
    buf[len++] = 0x40; /* CON, tkl 0 */
    buf[len++] = 0x01; /* GET */
    buf[len++] = 0x00;
    buf[len++] = 0x01;
    for (size_t i = 0; i < CL_COAP_MAX_OPTIONS; i++)
        buf[len++] = i == 0 ? 0x40 : 0x00; /* ETag (4), then repeats with delta 0 */
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, buf, len), CL_OK);
    assert_int_equal(m.n_options, CL_COAP_MAX_OPTIONS);
    assert_roundtrip(buf, len);

    buf[len++] = 0x00; /* one more */
    assert_int_equal(cl_coap_parse(&m, buf, len), CL_ERR_LIMIT);
    assert_int_equal(m.n_options, 0);
    buf[len++] = 0xff; /* ...with a payload */
    buf[len++] = 0x2a;
    assert_int_equal(cl_coap_parse(&m, buf, len), CL_ERR_LIMIT);
    /* Malformed after the limit is still BAD_INPUT, not LIMIT. */
    buf[len - 2] = 0xf0;
    assert_int_equal(cl_coap_parse(&m, buf, len), CL_ERR_BAD_INPUT);

    /* add_option and set_uri_path stop at the limit and add nothing on failure. */
    memset(&m, 0, sizeof m);
    for (size_t i = 0; i < CL_COAP_MAX_OPTIONS - 2; i++)
        assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_ETAG, NULL, 0), CL_OK);
    assert_int_equal(cl_coap_msg_set_uri_path(&m, "/a/b/c"), CL_ERR_LIMIT);
    assert_int_equal(m.n_options, CL_COAP_MAX_OPTIONS - 2);
    assert_int_equal(cl_coap_msg_set_uri_path(&m, "/a/b"), CL_OK);
    assert_int_equal(m.n_options, CL_COAP_MAX_OPTIONS);
    assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_ETAG, NULL, 0), CL_ERR_LIMIT);
}

/* An option longer than cl_coap_option_t can hold: valid CoAP, CL_ERR_LIMIT. */
static void test_long_option_limit(void **state)
{
    (void)state;
    static uint8_t buf[4 + 3 + 65536];
    memset(buf, 0, sizeof buf);
    buf[0] = 0x40; /* CON, tkl 0 */
    buf[1] = 0x02; /* POST */
    buf[2] = 0x00;
    buf[3] = 0x01;
    buf[4] = 0x1e; /* delta 1, length 14: 269 + 0xfef3 = 65536 */
    buf[5] = 0xfe;
    buf[6] = 0xf3;
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, buf, sizeof buf), CL_ERR_LIMIT);
    assert_int_equal(cl_coap_parse(&m, buf, sizeof buf - 1), CL_ERR_BAD_INPUT);
    buf[6] = 0xf2; /* 65535 bytes, then one payload marker... */
    buf[sizeof buf - 1] = 0xff;
    assert_int_equal(cl_coap_parse(&m, buf, sizeof buf), CL_ERR_BAD_INPUT); /* ...with no payload */
    assert_int_equal(cl_coap_parse(&m, buf, sizeof buf - 1), CL_OK);
    assert_int_equal(m.options[0].len, 65535);

    static uint8_t value[65536 + 269];
    memset(&m, 0, sizeof m);
    assert_int_equal(cl_coap_msg_add_option(&m, 1, value, 65535), CL_OK);
    assert_int_equal(cl_coap_msg_add_option(&m, 1, value, 65536), CL_ERR_LIMIT);
    assert_int_equal(cl_coap_msg_add_option(&m, 1, value, sizeof value), CL_ERR_INVALID_ARG);
    assert_int_equal(m.n_options, 1);
}

/* ---------------------------------------------------------------- */
/* Writers: ordering, sizes, misuse                                  */
/* ---------------------------------------------------------------- */

static void test_serialize_unsorted(void **state)
{
    (void)state;
    cl_coap_msg_t m;
    uint8_t out[64];
    size_t n = 99;
    memset(&m, 0, sizeof m);
    m.type = CL_COAP_NON;
    m.code = CL_COAP_GET;
    m.mid = 2;
    assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_URI_PATH, (const uint8_t *)"a", 1),
                     CL_OK);
    assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_URI_HOST, (const uint8_t *)"h", 1),
                     CL_OK);
    assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_URI_PATH, (const uint8_t *)"b", 1),
                     CL_OK);
    assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_ETAG, (const uint8_t *)"e", 1), CL_OK);
    assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_URI_PATH, (const uint8_t *)"c", 1),
                     CL_OK);
    memset(out, CANARY, sizeof out);
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(n, 0);
    assert_int_equal(cl_coap_serialize(&m, NULL, 0, &n), CL_ERR_INVALID_ARG);
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], CANARY);

    cl_coap_sort_options(&m);
    static const uint8_t want[] = {
        0x50, 0x01, 0x00, 0x02, /* NON GET mid 2 */
        0x31, 'h',              /* delta 3 (Uri-Host), len 1 */
        0x11, 'e',              /* delta 1 (ETag 4), len 1 */
        0x71, 'a',              /* delta 7 (Uri-Path 11), len 1 */
        0x01, 'b',              /* delta 0 (Uri-Path), len 1 */
        0x01, 'c',              /* delta 0 (Uri-Path), len 1 */
    };
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_OK);
    tu_assert_bytes(out, n, want, sizeof want); /* stable: a, b, c keep their order */

    /* The builder refuses a decreasing option number, and the error sticks. */
    cl_coap_builder_t b;
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_NON, CL_COAP_GET, 2, NULL, 0);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"a", 1),
                     CL_OK);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"b", 1),
                     CL_OK);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)"h", 1),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_build_option(&b, CL_COAP_OPT_ACCEPT, NULL, 0), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_build_payload(&b, (const uint8_t *)"p", 1), CL_ERR_INVALID_ARG);
    n = 99;
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(n, 0);
}

static void test_stable_sort(void **state)
{
    (void)state;
    cl_coap_msg_t m;
    memset(&m, 0, sizeof m);
    static const uint8_t vals[CL_COAP_MAX_OPTIONS] = {0};
    /* 32 options, numbers descending in groups, values tag the insertion order. */
    for (size_t i = 0; i < CL_COAP_MAX_OPTIONS; i++)
        assert_int_equal(cl_coap_msg_add_option(&m, (uint16_t)(40 - (i % 4) * 10), vals, i), CL_OK);
    cl_coap_sort_options(&m);
    for (size_t i = 1; i < m.n_options; i++) {
        assert_true(m.options[i - 1].number <= m.options[i].number);
        if (m.options[i - 1].number == m.options[i].number)
            assert_true(m.options[i - 1].len < m.options[i].len);
    }
    assert_int_equal(m.options[0].number, 10);
    assert_int_equal(m.options[0].len, 3);
}

/* Buffer too small at every size below the one needed: error, nothing written. */
static void test_buffer_too_small(void **state)
{
    (void)state;
    cl_coap_msg_t m;
    uint8_t full[128], out[128];
    size_t need;
    cl_coap_builder_t b;
    cl_coap_build_init(&b, full, sizeof full, CL_COAP_CON, CL_COAP_PUT, 9, (const uint8_t *)"tok",
                       3);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"sensors", 7);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_ECHO, (const uint8_t *)"0123456789abcdef", 16);
    (void)cl_coap_build_payload(&b, (const uint8_t *)"\xa1\x01\x02", 3);
    assert_int_equal(cl_coap_build_finish(&b, &need), CL_OK);
    assert_int_equal(cl_coap_parse(&m, full, need), CL_OK);

    for (size_t cap = 0; cap < need; cap++) {
        size_t n = 99;
        memset(out, CANARY, sizeof out);
        assert_int_equal(cl_coap_serialize(&m, cap ? out : NULL, cap, &n),
                         cap ? CL_ERR_BUFFER_TOO_SMALL : CL_OK);
        if (cap == 0) {
            assert_int_equal(n, need); /* counting mode */
        } else {
            assert_int_equal(n, 0);
        }
        for (size_t i = 0; i < sizeof out; i++)
            assert_int_equal(out[i], CANARY);

        /* The builder: each step writes all of itself or nothing; the error sticks. */
        cl_coap_build_init(&b, out, cap, m.type, m.code, m.mid, m.token, m.tkl);
        for (size_t i = 0; i < m.n_options; i++)
            (void)cl_coap_build_option(&b, m.options[i].number, m.options[i].value,
                                       m.options[i].len);
        (void)cl_coap_build_payload(&b, m.payload, m.payload_len);
        n = 99;
        assert_int_equal(cl_coap_build_finish(&b, &n), CL_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(n, 0);
        assert_true(b.len <= cap);
        for (size_t i = b.len; i < sizeof out; i++)
            assert_int_equal(out[i], CANARY);
    }
    size_t n;
    assert_int_equal(cl_coap_serialize(&m, out, need, &n), CL_OK);
    tu_assert_bytes(out, n, full, need);
}

static void test_writer_misuse(void **state)
{
    (void)state;
    cl_coap_msg_t m;
    uint8_t out[64];
    size_t n;
    cl_coap_builder_t b;

    memset(&m, 0, sizeof m);
    m.code = CL_COAP_GET;
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_OK);
    assert_int_equal(cl_coap_serialize(NULL, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, NULL), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_serialize(&m, NULL, 8, &n), CL_ERR_INVALID_ARG);
    m.type = 4;
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    m.type = CL_COAP_CON;
    m.tkl = 9;
    m.token = (const uint8_t *)"123456789";
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    m.tkl = 2;
    m.token = NULL;
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    m.tkl = 0;
    m.code = CL_COAP_CODE(7, 0);
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    m.code = CL_COAP_POST;
    m.payload_len = 3;
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    m.payload_len = 0;
    m.n_options = 1;
    m.options[0] = (cl_coap_option_t){.number = 4, .len = 2, .value = NULL};
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);
    m.n_options = CL_COAP_MAX_OPTIONS + 1;
    assert_int_equal(cl_coap_serialize(&m, out, sizeof out, &n), CL_ERR_INVALID_ARG);

    cl_coap_build_init(&b, out, sizeof out, CL_COAP_CON, CL_COAP_GET, 1,
                       (const uint8_t *)"123456789", 9);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_ERR_INVALID_ARG);
    cl_coap_build_init(&b, out, sizeof out, 4, CL_COAP_GET, 1, NULL, 0);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_ERR_INVALID_ARG);
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_CON, CL_COAP_CODE(1, 0), 1, NULL, 0);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_ERR_INVALID_ARG);
    cl_coap_build_init(&b, NULL, 0, CL_COAP_CON, CL_COAP_GET, 1, NULL, 0);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_ERR_BUFFER_TOO_SMALL);
    /* No option after the payload, and only one payload. */
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_CON, CL_COAP_POST, 1, NULL, 0);
    assert_int_equal(cl_coap_build_payload(&b, (const uint8_t *)"p", 1), CL_OK);
    assert_int_equal(cl_coap_build_option(&b, 60, NULL, 0), CL_ERR_INVALID_ARG);
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_CON, CL_COAP_POST, 1, NULL, 0);
    assert_int_equal(cl_coap_build_payload(&b, (const uint8_t *)"p", 1), CL_OK);
    assert_int_equal(cl_coap_build_payload(&b, (const uint8_t *)"q", 1), CL_ERR_INVALID_ARG);
    cl_coap_build_init(&b, out, sizeof out, CL_COAP_CON, CL_COAP_POST, 1, NULL, 0);
    assert_int_equal(cl_coap_build_option(&b, 4, NULL, 1), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_build_option(NULL, 4, NULL, 0), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_build_finish(NULL, &n), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_parse(NULL, out, 4), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_parse(&m, NULL, 4), CL_ERR_INVALID_ARG);
}

/* ---------------------------------------------------------------- */
/* Option lookup and Uri-Path                                        */
/* ---------------------------------------------------------------- */

static void test_find(void **state)
{
    (void)state;
    static const uint8_t msg[] = {
        0x40, 0x01, 0x00, 0x05, /* CON GET mid 5 */
        0xb1, 'a',              /* Uri-Path "a" */
        0x01, 'b',              /* Uri-Path "b" */
        0x41, '1',              /* delta 4 (Uri-Query 15), "1" */
        0x02, 'x',  'y',        /* Uri-Query "xy" */
    };
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, msg, sizeof msg), CL_OK);
    size_t pos = 0;
    const cl_coap_option_t *o;
    /* *pos is set to the index of the match; pos++ moves past it. */
    o = cl_coap_msg_find(&m, CL_COAP_OPT_URI_QUERY, &pos);
    assert_true(opt_eq(o, 15, "1"));
    assert_int_equal(pos, 2);
    assert_ptr_equal(cl_coap_msg_find(&m, CL_COAP_OPT_URI_QUERY, &pos), o); /* same again */
    pos++;
    o = cl_coap_msg_find(&m, CL_COAP_OPT_URI_QUERY, &pos);
    assert_true(opt_eq(o, 15, "xy"));
    assert_int_equal(pos, 3);
    pos++;
    assert_null(cl_coap_msg_find(&m, CL_COAP_OPT_URI_QUERY, &pos));
    assert_int_equal(pos, 4);
    /* The usual loop over a repeated option. */
    size_t seen = 0;
    for (pos = 0; (o = cl_coap_msg_find(&m, CL_COAP_OPT_URI_PATH, &pos)) != NULL; pos++)
        seen++;
    assert_int_equal(seen, 2);
    pos = 99; /* past the end: nothing, *pos clamped to n_options */
    assert_null(cl_coap_msg_find(&m, CL_COAP_OPT_URI_PATH, &pos));
    assert_int_equal(pos, 4);
    assert_null(cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE));
    assert_true(opt_eq(cl_coap_msg_get(&m, CL_COAP_OPT_URI_PATH), 11, "a"));
    assert_null(cl_coap_msg_get(NULL, 11));

    char path[8];
    assert_int_equal(cl_coap_uri_path(&m, path, sizeof path), CL_OK);
    assert_string_equal(path, "/a/b");
    /* Too small at every size below 5 ("/a/b" + NUL); nothing written. */
    for (size_t cap = 0; cap < 5; cap++) {
        memset(path, CANARY, sizeof path);
        assert_int_equal(cl_coap_uri_path(&m, path, cap), CL_ERR_BUFFER_TOO_SMALL);
        for (size_t i = 0; i < sizeof path; i++)
            assert_int_equal((uint8_t)path[i], CANARY);
    }
}

static void test_uri_path_join(void **state)
{
    (void)state;
    static const struct {
        const char *segs[4];
        size_t n;
        const char *want; /* NULL: CL_ERR_BAD_INPUT */
    } cases[] = {
        {{NULL}, 0, "/"},      {{"a", "b"}, 2, "/a/b"},
        {{"a", ""}, 2, "/a/"}, {{"", "a"}, 2, "//a"},
        {{""}, 1, "/"},        {{".well-known", "core"}, 2, "/.well-known/core"},
        {{"a/b"}, 1, NULL},    {{"a", ".."}, 2, NULL},
        {{"."}, 1, NULL},      {{"..."}, 1, "/..."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cl_coap_msg_t m;
        memset(&m, 0, sizeof m);
        /* Uri-Path interleaved with other options: only Uri-Path counts. */
        assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_URI_HOST, (const uint8_t *)"h", 1),
                         CL_OK);
        for (size_t k = 0; k < cases[i].n; k++)
            assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_URI_PATH,
                                                    (const uint8_t *)cases[i].segs[k],
                                                    strlen(cases[i].segs[k])),
                             CL_OK);
        assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_URI_QUERY, (const uint8_t *)"q", 1),
                         CL_OK);
        char out[32];
        cl_status_t rc = cl_coap_uri_path(&m, out, sizeof out);
        if (cases[i].want == NULL) {
            assert_int_equal(rc, CL_ERR_BAD_INPUT);
        } else {
            assert_int_equal(rc, CL_OK);
            assert_string_equal(out, cases[i].want);
        }
    }
    /* A NUL byte in a segment cannot be represented in the C string. */
    cl_coap_msg_t m;
    char out[16];
    memset(&m, 0, sizeof m);
    assert_int_equal(cl_coap_msg_add_option(&m, CL_COAP_OPT_URI_PATH, (const uint8_t *)"a\0b", 3),
                     CL_OK);
    assert_int_equal(cl_coap_uri_path(&m, out, sizeof out), CL_ERR_BAD_INPUT);
}

static void test_uri_path_split(void **state)
{
    (void)state;
    static const struct {
        const char *path;
        const char *segs[4];
        size_t n;
    } cases[] = {
        {"", {NULL}, 0},  /* RFC 7252 6.4 step 8: empty path */
        {"/", {NULL}, 0}, /* ... or a single slash: no option */
        {"/a", {"a"}, 1},
        {"a", {"a"}, 1},
        {"/a/b", {"a", "b"}, 2},
        {"a/b", {"a", "b"}, 2},
        {"/a//b", {"a", "", "b"}, 3}, /* empty segments are zero-length options */
        {"/a/", {"a", ""}, 2},
        {"//", {"", ""}, 2},
        {"/.well-known/core", {".well-known", "core"}, 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cl_coap_msg_t m;
        memset(&m, 0, sizeof m);
        assert_int_equal(cl_coap_msg_set_uri_path(&m, cases[i].path), CL_OK);
        assert_int_equal(m.n_options, cases[i].n);
        for (size_t k = 0; k < cases[i].n; k++)
            assert_true(opt_eq(&m.options[k], CL_COAP_OPT_URI_PATH, cases[i].segs[k]));
    }
    /* Dot segments must be resolved by the caller; nothing is added. */
    static const char *const dots[] = {"/.", "/a/..", "./a", "/a/./b", ".."};
    for (size_t i = 0; i < sizeof dots / sizeof dots[0]; i++) {
        cl_coap_msg_t m;
        memset(&m, 0, sizeof m);
        assert_int_equal(cl_coap_msg_set_uri_path(&m, dots[i]), CL_ERR_INVALID_ARG);
        assert_int_equal(m.n_options, 0);
    }
    cl_coap_msg_t m;
    memset(&m, 0, sizeof m);
    assert_int_equal(cl_coap_msg_set_uri_path(&m, NULL), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_msg_set_uri_path(NULL, "/a"), CL_ERR_INVALID_ARG);
}

static void test_code_str(void **state)
{
    (void)state;
    char s[5];
    cl_coap_code_str(CL_COAP_CONTENT, s);
    assert_string_equal(s, "2.05");
    cl_coap_code_str(CL_COAP_EMPTY, s);
    assert_string_equal(s, "0.00");
    cl_coap_code_str(CL_COAP_NOT_FOUND, s);
    assert_string_equal(s, "4.04");
    cl_coap_code_str(CL_COAP_CONTINUE, s);
    assert_string_equal(s, "2.31");
    cl_coap_code_str(0xff, s);
    assert_string_equal(s, "7.31");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8613_c4_request),
        cmocka_unit_test(test_rfc8613_vectors_roundtrip),
        cmocka_unit_test(test_content_response),
        cmocka_unit_test(test_extended_forms),
        cmocka_unit_test(test_extended_boundaries),
        cmocka_unit_test(test_observe),
        cmocka_unit_test(test_block_messages),
        cmocka_unit_test(test_block_values),
        cmocka_unit_test(test_uint_values),
        cmocka_unit_test(test_empty_messages),
        cmocka_unit_test(test_format_errors),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_too_many_options),
        cmocka_unit_test(test_long_option_limit),
        cmocka_unit_test(test_serialize_unsorted),
        cmocka_unit_test(test_stable_sort),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_writer_misuse),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_uri_path_join),
        cmocka_unit_test(test_uri_path_split),
        cmocka_unit_test(test_code_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
