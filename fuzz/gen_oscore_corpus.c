/*
 * gen_oscore_corpus.c - writes the seed corpora of fuzz_oscore_request and
 * fuzz_oscore_response (fuzz/corpus/fuzz_oscore_{request,response}/).
 *
 * Not built by CMake (and not a harness: no fuzz_ prefix). Build and run by
 * hand, see fuzz/README.md:
 *
 *   cmake --build build --target cloister_lib cloister_crypto_openssl
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Ifuzz fuzz/gen_oscore_corpus.c \
 *      build/lib/libcloister_crypto_openssl.a build/lib/libcloister_lib.a -lcrypto \
 *      -o /tmp/gen_oscore_corpus
 *   /tmp/gen_oscore_corpus fuzz/corpus
 *
 * Deterministic: the contexts are the harnesses' (oscore_fuzz_common.h) and
 * protection involves no randomness. Every raw seed is checked against the
 * same fresh contexts the harness uses, with the status it is meant to
 * reach (a valid request really decrypts, a malformed one fails where
 * intended); the generator exits non-zero if one does not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "oscore_fuzz_common.h"

static char g_dir[4096];

static void put(const char *name, const uint8_t *p, size_t n)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "gen: cannot write %s\n", path);
        exit(1);
    }
}

static size_t unhex(const char *h, uint8_t *out)
{
    size_t n = 0;
    for (; h[0] && h[1]; h += 2) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1)
            exit(1);
        out[n++] = (uint8_t)v;
    }
    return n;
}

static void expect_status(const char *name, cl_status_t got, cl_status_t want)
{
    if (got != want) {
        fprintf(stderr, "gen: %s: got %s, wanted %s\n", name, cl_status_str(got),
                cl_status_str(want));
        exit(1);
    }
}

/* A message rebuilt: OSCORE option value replaced or doubled, no / short payload, other code. */
enum { RB_VALUE, RB_DOUBLE, RB_NO_PAYLOAD, RB_CODE, RB_SHORT_PAYLOAD };
static size_t rebuild(const uint8_t *msg, size_t len, int how, const uint8_t *val, size_t vlen,
                      uint8_t arg, uint8_t *out, size_t out_size)
{
    cl_coap_msg_t m;
    size_t n;
    FZ_CHECK(cl_coap_parse(&m, msg, len) == CL_OK);
    for (size_t i = 0; i < m.n_options; i++) {
        if (m.options[i].number != CL_COAP_OPT_OSCORE)
            continue;
        if (how == RB_VALUE) {
            m.options[i].value = vlen ? val : NULL;
            m.options[i].len = (uint16_t)vlen;
        } else if (how == RB_DOUBLE) {
            FZ_CHECK(cl_coap_msg_add_option(&m, CL_COAP_OPT_OSCORE, m.options[i].value,
                                            m.options[i].len) == CL_OK);
            cl_coap_sort_options(&m);
            break;
        }
    }
    if (how == RB_NO_PAYLOAD) {
        m.payload = NULL;
        m.payload_len = 0;
    } else if (how == RB_CODE) {
        m.code = arg;
    } else if (how == RB_SHORT_PAYLOAD) {
        m.payload_len = arg;
    }
    FZ_CHECK(cl_coap_serialize(&m, out, out_size, &n) == CL_OK);
    return n;
}

/* ------------------------------------------------------------------ */
/* fuzz_oscore_request                                                 */
/* ------------------------------------------------------------------ */

static fz_pair_t g_req_pairs[FZ_N_SERVERS];   /* pristine, as in the harness */
static fz_pair_t g_req_clients[FZ_N_SERVERS]; /* the clients that make the seeds */

/* Status of the harness's raw mode for this datagram (fresh server contexts). */
static cl_status_t server_status(const uint8_t *msg, size_t len)
{
    fz_pair_t work[FZ_N_SERVERS];
    cl_oscore_ctx_t *list[FZ_N_SERVERS], *found;
    cl_oscore_ctx_list_t l = {list, FZ_N_SERVERS};
    cl_oscore_req_t sreq;
    uint8_t copy[2048], out[4096];
    size_t out_len;
    memcpy(work, g_req_pairs, sizeof work);
    for (size_t i = 0; i < FZ_N_SERVERS; i++)
        list[i] = &work[i].server;
    FZ_CHECK(len <= sizeof copy);
    memcpy(copy, msg, len);
    return cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, copy, len, out, sizeof out,
                                       &out_len, &found, &sreq);
}

static void raw_req(const char *name, const uint8_t *msg, size_t len, cl_status_t want)
{
    expect_status(name, server_status(msg, len), want);
    put(name, msg, len);
}

static size_t protect_req(int pair, const uint8_t *plain, size_t plain_len, uint8_t *out,
                          size_t out_size)
{
    cl_oscore_req_t creq;
    size_t n;
    FZ_CHECK(cl_oscore_protect_request(&g_req_clients[pair].client, plain, plain_len, out, out_size,
                                       &n, &creq) == CL_OK);
    return n;
}

/* Structured seed: prefix bytes then a plain message. */
static void structured(const char *name, const uint8_t *prefix, size_t prefix_len,
                       const uint8_t *plain, size_t plain_len)
{
    uint8_t buf[2048];
    FZ_CHECK(prefix_len + plain_len <= sizeof buf);
    memcpy(buf, prefix, prefix_len);
    memcpy(buf + prefix_len, plain, plain_len);
    put(name, buf, prefix_len + plain_len);
}

static void gen_request(void)
{
    uint8_t msg[2048], plain[1024], bad[2048], big[700];
    size_t n, pn, bn;
    cl_coap_builder_t b;
    const uint8_t tok2[2] = {0x7a, 0x01}, tok8[8] = {1, 2, 3, 4, 5, 6, 7, 8};

    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)('a' + i % 26);
    for (size_t i = 0; i < FZ_N_SERVERS; i++) {
        FZ_CHECK(fz_pair_init(&g_req_pairs[i], fz_provider(), FZ_SERVER_SPECS[i]) == CL_OK);
        FZ_CHECK(fz_pair_init(&g_req_clients[i], fz_provider(), FZ_SERVER_SPECS[i]) == CL_OK);
    }

    /* RFC 8613 C.4-C.6 protected requests (tests/vectors/oscore-rfc8613.json). */
    uint8_t c4[64];
    size_t c4_len =
        unhex("44025d1f00003974396c6f63616c686f7374620914ff612f1092f1776f1c1668b3825e", c4);
    raw_req("raw_rfc_c4", c4, c4_len, CL_OK);
    n = unhex("440271c30000b932396c6f63616c686f737463091400ff4ed339a5a379b0b8bc731fffb0", msg);
    raw_req("raw_rfc_c5", msg, n, CL_OK);
    n = unhex("44022f8eef9bbf7a396c6f63616c686f73746b19140837cbf3210017a2d3ff72cd7273fd331ac45cffbe"
              "55c3",
              msg);
    raw_req("raw_rfc_c6_kid_context", msg, n, CL_OK);

    /* Our contexts. */
    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_GET, 0x1001, tok2, 2);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)"cloister.local", 14);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"sensors", 7);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"temp", 4);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_ACCEPT, CL_COAP_CF_JSON);
    FZ_CHECK(cl_coap_build_finish(&b, &pn) == CL_OK);
    n = protect_req(FZ_P_A, plain, pn, msg, sizeof msg);
    raw_req("raw_a_get_uri_host", msg, n, CL_OK);

    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_GET, 0x1002, tok2, 2);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, 0);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"alarms", 6);
    FZ_CHECK(cl_coap_build_finish(&b, &pn) == CL_OK);
    n = protect_req(FZ_P_A, plain, pn, msg, sizeof msg);
    raw_req("raw_a_observe_fetch", msg, n, CL_OK);

    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_POST, 0x2001, tok8, 8);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"data", 4);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR);
    (void)cl_coap_build_payload(&b, big, 64);
    FZ_CHECK(cl_coap_build_finish(&b, &pn) == CL_OK);
    n = protect_req(FZ_P_B, plain, pn, msg, sizeof msg);
    raw_req("raw_b_post_kid_context_64", msg, n, CL_OK);

    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_NON, CL_COAP_PUT, 0x2002, NULL, 0);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"fw", 2);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_BLOCK1, 0x0e); /* num 0, M, 1024 */
    (void)cl_coap_build_payload(&b, big, 600);
    FZ_CHECK(cl_coap_build_finish(&b, &pn) == CL_OK);
    n = protect_req(FZ_P_B, plain, pn, msg, sizeof msg);
    raw_req("raw_b_non_put_600", msg, n, CL_OK);

    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_GET, 0x3001, tok2, 2);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"boot", 4);
    FZ_CHECK(cl_coap_build_finish(&b, &pn) == CL_OK);
    n = protect_req(FZ_P_E, plain, pn, msg, sizeof msg);
    raw_req("raw_e_echo_required", msg, n, CL_ERR_ECHO_REQUIRED);

    static const char puri[] = "coap://example.com:5683/a/b%20c?x=1&y";
    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_GET, 0x1003, tok2, 2);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_PROXY_URI, (const uint8_t *)puri, strlen(puri));
    FZ_CHECK(cl_coap_build_finish(&b, &pn) == CL_OK);
    size_t proxy_plain_len = pn;
    uint8_t proxy_plain[128];
    memcpy(proxy_plain, plain, pn);
    n = protect_req(FZ_P_A, plain, pn, msg, sizeof msg);
    raw_req("raw_a_proxy_uri", msg, n, CL_OK);

    static const uint8_t echo8[8] = {0xe0, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7};
    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_IPATCH, 0x1004, tok2, 1);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)"h", 1);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_URI_PORT, 5684);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_HOP_LIMIT, 16);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_EDHOC, NULL, 0);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_PROXY_SCHEME, (const uint8_t *)"coap", 4);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_ECHO, echo8, sizeof echo8);
    (void)cl_coap_build_option(&b, 2049, (const uint8_t *)"x", 1);
    (void)cl_coap_build_payload(&b, big, 3);
    FZ_CHECK(cl_coap_build_finish(&b, &pn) == CL_OK);
    n = protect_req(FZ_P_A, plain, pn, msg, sizeof msg);
    raw_req("raw_a_class_u_echo_unknown", msg, n, CL_OK);

    /* Malformed, from C.4. */
    static const uint8_t v_reserved[2] = {0x29, 0x14};
    bn = rebuild(c4, c4_len, RB_VALUE, v_reserved, 2, 0, bad, sizeof bad);
    raw_req("bad_reserved_flag_bits", bad, bn, CL_ERR_BAD_INPUT);
    static const uint8_t v_piv6[7] = {0x0e, 1, 2, 3, 4, 5, 6};
    bn = rebuild(c4, c4_len, RB_VALUE, v_piv6, 7, 0, bad, sizeof bad);
    raw_req("bad_piv_len6", bad, bn, CL_ERR_BAD_INPUT);
    static const uint8_t v_trunc[6] = {0x19, 0x14, 0x08, 0x37, 0xcb, 0xf3};
    bn = rebuild(c4, c4_len, RB_VALUE, v_trunc, 6, 0, bad, sizeof bad);
    raw_req("bad_truncated_kid_context", bad, bn, CL_ERR_BAD_INPUT);
    bn = rebuild(c4, c4_len, RB_NO_PAYLOAD, NULL, 0, 0, bad, sizeof bad);
    raw_req("bad_no_payload", bad, bn, CL_ERR_BAD_INPUT);
    bn = rebuild(c4, c4_len, RB_DOUBLE, NULL, 0, 0, bad, sizeof bad);
    raw_req("bad_duplicate_oscore", bad, bn, CL_ERR_BAD_INPUT);
    static const uint8_t v_kid77[3] = {0x09, 0x14, 0x77};
    bn = rebuild(c4, c4_len, RB_VALUE, v_kid77, 3, 0, bad, sizeof bad);
    raw_req("bad_unknown_kid", bad, bn, CL_ERR_NOT_FOUND);
    memcpy(bad, c4, c4_len);
    bad[c4_len - 1] ^= 0x01;
    raw_req("bad_tag_flipped", bad, c4_len, CL_ERR_AUTH);
    bn = rebuild(c4, c4_len, RB_SHORT_PAYLOAD, NULL, 0, 8, bad, sizeof bad);
    raw_req("bad_ciphertext_shorter_than_tag", bad, bn, CL_ERR_BAD_INPUT);

    /* Structured: [mode/flags][pair params][ssn][pos hi][pos lo][xor] plain. */
    static const uint8_t s_a[4] = {0x00, 0x00, 0x00, 0x00};
    static const uint8_t s_rfc3_ct[4] = {0x06, 0xff, 0xff, 0x01}; /* C.3, XOR near the end */
    structured("st_rfc3_mutate_tail", s_rfc3_ct, sizeof s_rfc3_ct, FZ_C4_PLAIN, sizeof FZ_C4_PLAIN);
    static const uint8_t s_b_mid[4] = {0x05, 0x00, 0x02, 0x55}; /* B, XOR the message id */
    structured("st_b_mutate_mid", s_b_mid, sizeof s_b_mid, FZ_C4_PLAIN, sizeof FZ_C4_PLAIN);
    /* clang-format off */
    static const uint8_t s_params[] = {
        0x03,                               /* own pair, no mutation */
        0x32, 0x0f, 0x04, 0x1a, 0x05, 0x0a, /* GCM+ctx+send, ms 16, salt 4, IDs 2/3, ctx 5, w 10 */
        'm', 's', '-', 'f', 'r', 'o', 'm', '-', 'i', 'n', 'p', 'u', 't', '-', '-', '!',
        0x51, 0x52, 0x53, 0x54,             /* salt */
        0xc5, 0xc6, 0x5e, 0x5f, 0x60,       /* client and server IDs */
        0x1d, 0x1e, 0x1f, 0x20, 0x21,       /* ID Context */
        0x05,                               /* B.1.1 hook that succeeds, K = 1, due now */
        0x09, 'R', '2', 'R', '3',           /* B.2: re-derive with ID Context "R2R3" */
        0x01, 0x03, 0x10,                   /* pos != 0: short-buffer checks */
    };
    /* clang-format on */
    structured("st_params_gcm_kid_context", s_params, sizeof s_params, FZ_C4_PLAIN,
               sizeof FZ_C4_PLAIN);
    static const uint8_t s_last[4] = {0x28, 0x01, 0x01, 0x00}; /* ssn 2^40-1, short buffers */
    structured("st_ssn_last_proxy_uri", s_last, sizeof s_last, proxy_plain, proxy_plain_len);
    static const uint8_t s_forced[] = {0x08, 0x42, 0x00, 0x00, 0x00, /* ssn 0x42 */
                                       0x9d, 0x04, 0x12, 0x34, 0xab, 0xcd, 0xef, 0x01, /* hdr */
                                       0x05, 0x01, 0x03, 'h',  'o',  's',  't',  0x03, 0x02, 0x00,
                                       0x0f, 0x03, 'c',  'o',  'a',  0x12, 0xf1, 0x00, 0xfe, 0x30,
                                       0x0a, 0x05, 'e',  'c',  'h',  'o',  '!',  'p',  'a',  'y'};
    put("st_forced_bytes", s_forced, sizeof s_forced);
    uint8_t nested[64];
    memcpy(nested, c4, c4_len); /* a protected request given as plain: protect refuses */
    nested[1] = CL_COAP_GET;
    structured("st_nested_oscore", s_a, sizeof s_a, nested, c4_len);

    /* B.1.2 Echo flow; the second one first tries a wrong Echo (NON request). */
    static const uint8_t e2[2] = {0x91, 0x30};
    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_NON, CL_COAP_POST, 0x3002, tok2, 2);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"cfg", 3);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_ECHO, echo8, 4);
    (void)cl_coap_build_payload(&b, big, 20);
    FZ_CHECK(cl_coap_build_finish(&b, &pn) == CL_OK);
    structured("echo_flow_wrong_echo_first", e2, 2, plain, pn);

    /* Replay window: [C0|flags][window][ssn][n][gaps...][deliveries...] */
    static const uint8_t w1[] = {0xc0, 0x05, 0x00, 0x85, 0xc1, 0xf5, 0x00, 0xff, 0x90, 0x00,
                                 0x01, 0x02, 0x01, 0x06, 0x03, 0x05, 0x04, 0x00, 0x02};
    put("seq_replay_window_a", w1, sizeof w1);
    static const uint8_t w2[] = {0xcf, 0x02, 0x01, 0xfe, 0x03, 0x00, 0x81, 0x82, 0x00,
                                 0xe0, 0x04, 0x02, 0x01, 0x00, 0x03, 0x04, 0x00};
    put("seq_replay_window_b_w3", w2, sizeof w2);

    /* Authentic plaintext from the input: [E0|pair|ssn sel][ssn][Uri-Host?] plaintext */
    static const uint8_t i1[] = {0xe0, 0x01, 0x01, 0xb1, 'x', 0xd1, 0x02, 0x07, 0xff, 'h', 'i'};
    put("inner_a_plaintext", i1, sizeof i1);
    static const uint8_t i2[] = {0xe5, 0x07, 0x00, 0x01, 0x11, 0x00, 0xf0, 0xff};
    put("inner_b_bad_options", i2, sizeof i2);
    static const uint8_t i3[] = {0xe7, 0x05, 0x00, 0x02, 0xb3, 'c', 'f', 'g'};
    put("inner_e_echo_required", i3, sizeof i3);
    printf("fuzz_oscore_request: done\n");
}

/* ------------------------------------------------------------------ */
/* fuzz_oscore_response                                                */
/* ------------------------------------------------------------------ */

static fz_bindings_t g_bind;

/* Status the client of binding bi gives this datagram (fresh req state). */
static void raw_resp(const char *name, int bi, const uint8_t *msg, size_t len, cl_status_t want)
{
    cl_oscore_req_t creq = g_bind.creq[bi];
    uint8_t copy[2048], out[4096];
    size_t out_len;
    FZ_CHECK(len <= sizeof copy);
    memcpy(copy, msg, len);
    cl_status_t st = cl_oscore_unprotect_response(&g_bind.pair[FZ_BIND_PAIR[bi]].client, &creq,
                                                  copy, len, out, sizeof out, &out_len);
    expect_status(name, st, want);
    put(name, msg, len);
}

/* The server of binding bi protects plain (fresh req state, server SSN ssn). */
static size_t protect_resp(int bi, uint64_t ssn, bool new_piv, const uint8_t *kidctx,
                           size_t kidctx_len, const uint8_t *plain, size_t plain_len, uint8_t *out,
                           size_t out_size)
{
    cl_oscore_ctx_t server = g_bind.pair[FZ_BIND_PAIR[bi]].server;
    cl_oscore_req_t sreq = g_bind.sreq[bi];
    cl_oscore_resp_opts_t opts = {
        .new_piv = new_piv, .kid_context = kidctx, .kid_context_len = kidctx_len};
    size_t n;
    server.ssn = ssn;
    FZ_CHECK(cl_oscore_protect_response(&server, &sreq, &opts, plain, plain_len, out, out_size,
                                        &n) == CL_OK);
    return n;
}

static size_t make_response(uint8_t *buf, size_t size, uint8_t type, uint8_t code, bool observe,
                            uint32_t obs, const uint8_t *payload, size_t payload_len)
{
    cl_coap_builder_t b;
    size_t n;
    uint8_t tok = 0xa1;
    cl_coap_build_init(&b, buf, size, type, code, 0x0a0b, &tok, 1);
    static const uint8_t etag[4] = {0xe7, 0xa9, 0x00, 0x01};
    if (payload_len > 100)
        (void)cl_coap_build_option(&b, CL_COAP_OPT_ETAG, etag, sizeof etag);
    if (observe)
        (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, obs);
    if (payload_len)
        (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_TEXT);
    if (payload_len > 100)
        (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_MAX_AGE, 30);
    (void)cl_coap_build_payload(&b, payload, payload_len);
    FZ_CHECK(cl_coap_build_finish(&b, &n) == CL_OK);
    return n;
}

static void gen_response(void)
{
    uint8_t msg[2048], plain[1024], bad[2048], big[700];
    size_t n, pn, bn;

    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)('A' + i % 26);
    fz_bindings_init(&g_bind, fz_provider());

    /* RFC 8613 C.7 (no Partial IV) and C.8 (Partial IV 0) to the C.4 request. */
    uint8_t c7[64], c8[64], c7_plain[64];
    size_t c7_len = unhex("64445d1f0000397490ffdbaad1e9a7e7b2a813d3c31524378303cdafae119106", c7);
    size_t c8_len =
        unhex("64445d1f00003974920100ff4d4c13669384b67354b2b6175ff4b8658c666a6cf88e", c8);
    size_t c7_plain_len = unhex("64455d1f00003974ff48656c6c6f20576f726c6421", c7_plain);
    raw_resp("raw_rfc_c7", FZ_R_RFC, c7, c7_len, CL_OK);
    raw_resp("raw_rfc_c8_piv", FZ_R_RFC, c8, c8_len, CL_OK);

    pn = make_response(plain, sizeof plain, CL_COAP_CON, CL_COAP_CONTENT, true, 3,
                       (const uint8_t *)"22.5 C", 6);
    n = protect_resp(FZ_R_A_OBS, 0x123456, true, NULL, 0, plain, pn, msg, sizeof msg);
    raw_resp("raw_a_notification_piv", FZ_R_A_OBS, msg, n, CL_OK);
    size_t notif_plain_len = pn;
    uint8_t notif_plain[64];
    memcpy(notif_plain, plain, pn);
    n = protect_resp(FZ_R_A_OBS, 0, false, NULL, 0, plain, pn, msg, sizeof msg);
    raw_resp("raw_a_notification_no_piv", FZ_R_A_OBS, msg, n, CL_OK);

    static const uint8_t r2[2] = {0x5a, 0x5b};
    pn = make_response(plain, sizeof plain, CL_COAP_ACK, CL_COAP_CHANGED, false, 0,
                       (const uint8_t *)"ok", 2);
    n = protect_resp(FZ_R_B, 7, true, r2, sizeof r2, plain, pn, msg, sizeof msg);
    raw_resp("raw_b_changed_kid_context_piv", FZ_R_B, msg, n, CL_OK);

    pn = make_response(plain, sizeof plain, CL_COAP_ACK, CL_COAP_CONTENT, false, 0, big, 700);
    n = protect_resp(FZ_R_B, 0, false, NULL, 0, plain, pn, msg, sizeof msg);
    raw_resp("raw_b_content_700", FZ_R_B, msg, n, CL_OK);

    pn = make_response(plain, sizeof plain, CL_COAP_NON, CL_COAP_NOT_FOUND, false, 0, NULL, 0);
    n = protect_resp(FZ_R_B_OBS, 0x10000, true, NULL, 0, plain, pn, msg, sizeof msg);
    raw_resp("raw_b_obs_final_404_piv", FZ_R_B_OBS, msg, n, CL_OK);

    pn = make_response(plain, sizeof plain, CL_COAP_ACK, CL_COAP_CONTENT, true, 9,
                       (const uint8_t *)"x", 1);
    n = protect_resp(FZ_R_B, 0, false, NULL, 0, plain, pn, msg, sizeof msg);
    raw_resp("bad_observe_to_plain_request", FZ_R_B, msg, n, CL_ERR_BAD_INPUT);

    /* Malformed, from C.7 / C.8. */
    static const uint8_t v_reserved[2] = {0x21, 0x00};
    bn = rebuild(c8, c8_len, RB_VALUE, v_reserved, 2, 0, bad, sizeof bad);
    raw_resp("bad_reserved_flag_bits", FZ_R_RFC, bad, bn, CL_ERR_BAD_INPUT);
    static const uint8_t v_piv6[7] = {0x06, 0, 0, 0, 0, 0, 0};
    bn = rebuild(c8, c8_len, RB_VALUE, v_piv6, 7, 0, bad, sizeof bad);
    raw_resp("bad_piv_len6", FZ_R_RFC, bad, bn, CL_ERR_BAD_INPUT);
    static const uint8_t v_trunc[4] = {0x11, 0x00, 0x05, 0xaa};
    bn = rebuild(c8, c8_len, RB_VALUE, v_trunc, 4, 0, bad, sizeof bad);
    raw_resp("bad_truncated_kid_context", FZ_R_RFC, bad, bn, CL_ERR_BAD_INPUT);
    bn = rebuild(c7, c7_len, RB_NO_PAYLOAD, NULL, 0, 0, bad, sizeof bad);
    raw_resp("bad_no_payload", FZ_R_RFC, bad, bn, CL_ERR_BAD_INPUT);
    bn = rebuild(c8, c8_len, RB_DOUBLE, NULL, 0, 0, bad, sizeof bad);
    raw_resp("bad_duplicate_oscore", FZ_R_RFC, bad, bn, CL_ERR_BAD_INPUT);
    static const uint8_t v_kid[3] = {0x09, 0x00, 0x77};
    bn = rebuild(c8, c8_len, RB_VALUE, v_kid, 3, 0, bad, sizeof bad);
    raw_resp("bad_kid_not_the_server", FZ_R_RFC, bad, bn, CL_ERR_NOT_FOUND);
    memcpy(bad, c7, c7_len);
    bad[c7_len - 1] ^= 0x01;
    raw_resp("bad_tag_flipped", FZ_R_RFC, bad, c7_len, CL_ERR_AUTH);
    bn = rebuild(c7, c7_len, RB_CODE, NULL, 0, CL_COAP_POST, bad, sizeof bad);
    raw_resp("bad_request_code", FZ_R_RFC, bad, bn, CL_ERR_BAD_INPUT);

    /* Structured: [flags][any-binding fields][ssn sel][ssn][obs x3][kid ctx][pos x2][xor] plain */
    static const uint8_t s_rfc[7] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    {
        uint8_t buf[256];
        memcpy(buf, s_rfc, 7);
        memcpy(buf + 7, c7_plain, c7_plain_len);
        put("st_rfc_c7_plain", buf, 7 + c7_plain_len);
        /* A notification with a new 3-byte Partial IV. */
        static const uint8_t s_obs[] = {0x05, 0x03, 0x12, 0x34, 0x56, 0x00,
                                        0x00, 0x05, 0x00, 0x00, 0x00};
        memcpy(buf, s_obs, sizeof s_obs);
        memcpy(buf + sizeof s_obs, notif_plain, notif_plain_len);
        put("st_a_obs_new_piv", buf, sizeof s_obs + notif_plain_len);
        /* Add an Observe to C.7's plain, no Partial IV, XOR the message id. */
        static const uint8_t s_nopiv[] = {0x19, 0x00, 0x00, 0x00, 0x07, 0x00, 0x03, 0x01};
        memcpy(buf, s_nopiv, sizeof s_nopiv);
        memcpy(buf + sizeof s_nopiv, c7_plain, c7_plain_len);
        put("st_a_obs_no_piv_mutate_mid", buf, sizeof s_nopiv + c7_plain_len);
        /* B, kid context, new PIV, XOR in the ciphertext. */
        static const uint8_t s_kc[] = {0x36, 0x01, 0x05, 0x00, 0x00, 0x00, 0x04,
                                       0x52, 0x32, 0x52, 0x33, 0xff, 0xf0, 0x04};
        memcpy(buf, s_kc, sizeof s_kc);
        memcpy(buf + sizeof s_kc, c7_plain, c7_plain_len);
        put("st_b_kid_context_mutate_ct", buf, sizeof s_kc + c7_plain_len);
        /* B Observe binding, SSN 2^40-1 (Observe = low 3 bytes), Observe added. */
        static const uint8_t s_max[] = {0x0f, 0x05, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00};
        memcpy(buf, s_max, sizeof s_max);
        memcpy(buf + sizeof s_max, c7_plain, c7_plain_len);
        put("st_b_obs_ssn_max", buf, sizeof s_max + c7_plain_len);
        /* Exhausted sequence numbers with a new Partial IV requested. */
        static const uint8_t s_exh[] = {0x07, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
        memcpy(buf, s_exh, sizeof s_exh);
        memcpy(buf + sizeof s_exh, c7_plain, c7_plain_len);
        put("st_ssn_exhausted", buf, sizeof s_exh + c7_plain_len);
    }
    /* Authentic plaintext from the input: [A0|binding|piv|kid|code][ssn] plaintext */
    static const uint8_t i1[] = {0xab, 0x02, 0x01, 0x02, 0x45, 0x61, 0x07, 0xff, 't'};
    put("inner_a_obs_notification_piv", i1, sizeof i1);
    static const uint8_t i2[] = {0xb4, 0x01, 0xb1, 'x'};
    put("inner_b_kid_request_code", i2, sizeof i2);

    /* Notification sequences: [80|flags][ssn][n][flags per notification][deliveries] */
    static const uint8_t q1[] = {0x80, 0x07, 0x00, 0x01, 0x83, 0x41, 0x01, 0x9f, 0x00, 0x01,
                                 0x00, 0x01, 0x03, 0x02, 0x04, 0x07, 0x05, 0x06, 0x00, 0x07};
    put("notif_seq_a", q1, sizeof q1);
    static const uint8_t q2[] = {0x85, 0xfe, 0xff, 0xff, 0x03, 0x01, 0x81,
                                 0xc1, 0x01, 0x03, 0x02, 0x01, 0x00, 0x03};
    put("notif_seq_b_wrap", q2, sizeof q2);

    /* Any binding: [C0|flags][kid len][kid][piv len][piv][ssn sel]... plain */
    {
        uint8_t buf[256];
        static const uint8_t s_any[] = {0xcd, 0x07, 1,    2,    3,    4,    5,    6,
                                        7,    0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                                        0x09, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00};
        memcpy(buf, s_any, sizeof s_any);
        memcpy(buf + sizeof s_any, notif_plain, notif_plain_len);
        put("any_binding_kid7_piv5", buf, sizeof s_any + notif_plain_len);
    }
    /* HTTP header values and the empty input. */
    put("hdr_AA", (const uint8_t *)"AA", 2);
    put("hdr_c6_option", (const uint8_t *)"GRQIN8vzIQAXotM", 15);
    put("empty", NULL, 0);
    printf("fuzz_oscore_response: done\n");
}

int main(int argc, char **argv)
{
    const char *root = argc > 1 ? argv[1] : "fuzz/corpus";
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_oscore_request", root);
    mkdir(g_dir, 0777);
    gen_request();
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_oscore_response", root);
    mkdir(g_dir, 0777);
    gen_response();
    return 0;
}
