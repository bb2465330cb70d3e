/*
 * test_oscore.c - OSCORE against RFC 8613 Appendix C byte for byte, and the
 * behaviour around it: replay window, B.1.1 sequence-number persistence,
 * B.1.2 Echo recovery, B.2 re-derivation, Observe, section 8 errors, the
 * HTTP header mapping, and tampering / truncation / wrong-context negatives.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cloister/coap.h"
#include "cloister/crypto_openssl.h"
#include "cloister/oscore.h"

static cl_crypto_t crypto;

/* True when needle occurs in hay (memmem is not in C11/POSIX). */
static bool has_bytes(const void *hay, size_t hay_len, const void *needle, size_t n)
{
    const uint8_t *h = hay;
    for (size_t i = 0; n <= hay_len && i + n <= hay_len; i++)
        if (memcmp(h + i, needle, n) == 0)
            return true;
    return false;
}
static cJSON *vectors;

static const cJSON *find_vec(const char *section, const char *id)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(vectors, section);
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
    {
        if (strcmp(tu_str(v, "id"), id) == 0)
            return v;
    }
    fail_msg("vector %s not found", id);
    return NULL;
}

/* Derives the context of a key_derivation vector (C.1.1 ... C.3.2). */
static void ctx_from_vector(cl_oscore_ctx_t *ctx, const char *id, uint64_t ssn)
{
    const cJSON *v = find_vec("key_derivation", id);
    size_t ms_len, salt_len, sid_len, rid_len, idc_len;
    uint8_t *ms = tu_hexm(v, "master_secret", &ms_len);
    uint8_t *salt = tu_hexm(v, "master_salt", &salt_len);
    uint8_t *sid = tu_hexm(v, "sender_id", &sid_len);
    uint8_t *rid = tu_hexm(v, "recipient_id", &rid_len);
    uint8_t *idc = tu_hexm(v, "id_context", &idc_len);
    cl_oscore_params_t p = {
        .master_secret = ms,
        .master_secret_len = ms_len,
        .master_salt = salt,
        .master_salt_len = salt_len,
        .sender_id = sid,
        .sender_id_len = sid_len,
        .recipient_id = rid,
        .recipient_id_len = rid_len,
        .id_context = idc,
        .id_context_len = idc_len,
        .initial_ssn = ssn,
        .send_kid_context = idc != NULL,
    };
    memset(ctx, 0, sizeof *ctx);
    assert_int_equal(cl_oscore_ctx_init(ctx, &crypto, &p), CL_OK);
}

/* Encrypts a probe with `handle` and with `expected_key` imported fresh: equal means same key. */
static void assert_same_key(cl_key_t handle, const uint8_t *expected_key, size_t len)
{
    cl_key_t k;
    uint8_t nonce[13] = {1, 2, 3}, probe[16] = "probe-plaintext", a[32], b[32];
    size_t alen, blen;
    assert_int_equal(cl_aead_import(&crypto, CL_AEAD_AES_CCM_16_64_128, expected_key, len, &k),
                     CL_OK);
    assert_int_equal(
        cl_aead_encrypt(&crypto, handle, nonce, 13, NULL, 0, probe, 16, a, sizeof a, &alen), CL_OK);
    assert_int_equal(cl_aead_encrypt(&crypto, k, nonce, 13, NULL, 0, probe, 16, b, sizeof b, &blen),
                     CL_OK);
    tu_assert_bytes(a, alen, b, blen);
    cl_key_destroy(&crypto, k);
}

static void test_key_derivation(void **state)
{
    (void)state;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(vectors, "key_derivation");
    const cJSON *v;
    int n = 0;
    cJSON_ArrayForEach(v, arr)
    {
        cl_oscore_ctx_t ctx;
        size_t len, iv_len;
        ctx_from_vector(&ctx, tu_str(v, "id"), 0);
        uint8_t *iv = tu_hexm(v, "common_iv", &iv_len);
        tu_assert_bytes(ctx.common_iv, ctx.nonce_len, iv, iv_len);
        uint8_t *sk = tu_hexm(v, "sender_key", &len);
        assert_same_key(ctx.sender_key, sk, len);
        uint8_t *rk = tu_hexm(v, "recipient_key", &len);
        assert_same_key(ctx.recipient_key, rk, len);
        cl_oscore_ctx_free(&ctx);
        n++;
    }
    assert_int_equal(n, 6);
}

/* Server contexts matching the client contexts of C.4-C.6. */
static const char *server_of(const char *client_ctx)
{
    if (strcmp(client_ctx, "C.1.1") == 0)
        return "C.1.2";
    if (strcmp(client_ctx, "C.2.1") == 0)
        return "C.2.2";
    return "C.3.2";
}

static void test_request_vectors(void **state)
{
    (void)state;
    static const char *ids[] = {"C.4", "C.5", "C.6"};
    for (size_t i = 0; i < 3; i++) {
        const cJSON *v = find_vec("message_protection", ids[i]);
        cl_oscore_ctx_t client, server;
        cl_oscore_req_t creq, sreq;
        size_t plain_len, exp_len, out_len;
        uint8_t out[256], back[256];
        ctx_from_vector(&client, tu_str(v, "security_context"),
                        (uint64_t)cJSON_GetObjectItem(v, "sender_sequence_number")->valuedouble);
        uint8_t *plain = tu_hexm(v, "unprotected_coap_request", &plain_len);
        uint8_t *exp = tu_hexm(v, "protected_coap_request", &exp_len);
        assert_int_equal(
            cl_oscore_protect_request(&client, plain, plain_len, out, sizeof out, &out_len, &creq),
            CL_OK);
        tu_assert_bytes(out, out_len, exp, exp_len);

        /* The server recovers the original request exactly. */
        ctx_from_vector(&server, server_of(tu_str(v, "security_context")), 0);
        cl_oscore_ctx_t *list[] = {&server};
        cl_oscore_ctx_list_t l = {list, 1};
        cl_oscore_ctx_t *found;
        size_t back_len;
        assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, out, out_len, back,
                                                     sizeof back, &back_len, &found, &sreq),
                         CL_OK);
        assert_ptr_equal(found, &server);
        tu_assert_bytes(back, back_len, plain, plain_len);
        assert_int_equal(sreq.kid_len, creq.kid_len);
        tu_assert_bytes(sreq.piv, sreq.piv_len, creq.piv, creq.piv_len);
        cl_oscore_ctx_free(&client);
        cl_oscore_ctx_free(&server);
    }
}

/* Runs C.4 through client and server; leaves both contexts and request states ready. */
static void c4_exchange(cl_oscore_ctx_t *client, cl_oscore_ctx_t *server, cl_oscore_req_t *creq,
                        cl_oscore_req_t *sreq)
{
    const cJSON *v = find_vec("message_protection", "C.4");
    size_t plain_len, out_len, back_len;
    uint8_t out[256], back[256];
    ctx_from_vector(client, "C.1.1", 20);
    ctx_from_vector(server, "C.1.2", 0);
    uint8_t *plain = tu_hexm(v, "unprotected_coap_request", &plain_len);
    assert_int_equal(
        cl_oscore_protect_request(client, plain, plain_len, out, sizeof out, &out_len, creq),
        CL_OK);
    cl_oscore_ctx_t *list[] = {server};
    cl_oscore_ctx_list_t l = {list, 1};
    cl_oscore_ctx_t *found;
    assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, out, out_len, back,
                                                 sizeof back, &back_len, &found, sreq),
                     CL_OK);
}

static void test_response_vectors(void **state)
{
    (void)state;
    static const char *ids[] = {"C.7", "C.8"};
    for (size_t i = 0; i < 2; i++) {
        const cJSON *v = find_vec("message_protection", ids[i]);
        cl_oscore_ctx_t client, server;
        cl_oscore_req_t creq, sreq;
        size_t plain_len, exp_len, out_len, back_len;
        uint8_t out[256], back[256];
        c4_exchange(&client, &server, &creq, &sreq);
        uint8_t *plain = tu_hexm(v, "unprotected_coap_response", &plain_len);
        uint8_t *exp = tu_hexm(v, "protected_coap_response", &exp_len);
        cl_oscore_resp_opts_t opts = {.new_piv = i == 1};
        assert_int_equal(cl_oscore_protect_response(&server, &sreq, &opts, plain, plain_len, out,
                                                    sizeof out, &out_len),
                         CL_OK);
        tu_assert_bytes(out, out_len, exp, exp_len);
        assert_int_equal(cl_oscore_unprotect_response(&client, &creq, out, out_len, back,
                                                      sizeof back, &back_len),
                         CL_OK);
        tu_assert_bytes(back, back_len, plain, plain_len);
        cl_oscore_ctx_free(&client);
        cl_oscore_ctx_free(&server);
    }
}

/* ---- a small fixture: a client/server pair on fresh random-free keys ---- */

typedef struct pair {
    cl_oscore_ctx_t client, server;
    cl_oscore_ctx_t *list[1];
    cl_oscore_ctx_list_t l;
} pair_t;

static const uint8_t MS[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                               0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
static const uint8_t SALT[8] = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
static const uint8_t CID[1] = {0x01}, SID[1] = {0x02};

static void pair_init(pair_t *p, bool echo_on_boot)
{
    cl_oscore_params_t c = {.master_secret = MS,
                            .master_secret_len = 16,
                            .master_salt = SALT,
                            .master_salt_len = 8,
                            .sender_id = CID,
                            .sender_id_len = 1,
                            .recipient_id = SID,
                            .recipient_id_len = 1};
    cl_oscore_params_t s = c;
    s.sender_id = SID;
    s.recipient_id = CID;
    s.echo_on_boot = echo_on_boot;
    memset(p, 0, sizeof *p);
    assert_int_equal(cl_oscore_ctx_init(&p->client, &crypto, &c), CL_OK);
    assert_int_equal(cl_oscore_ctx_init(&p->server, &crypto, &s), CL_OK);
    p->list[0] = &p->server;
    p->l.ctx = p->list;
    p->l.n = 1;
}

static void pair_free(pair_t *p)
{
    cl_oscore_ctx_free(&p->client);
    cl_oscore_ctx_free(&p->server);
}

/* CON GET /hello with token 0x4a, mid 0x1234. */
static size_t make_get(uint8_t *buf, size_t size, const char *path, bool observe)
{
    cl_coap_builder_t b;
    size_t n;
    uint8_t tok[1] = {0x4a};
    cl_coap_build_init(&b, buf, size, CL_COAP_CON, CL_COAP_GET, 0x1234, tok, 1);
    cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)"cloister", 8);
    if (observe)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, 0);
    cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)path, strlen(path));
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    return n;
}

static size_t make_content(uint8_t *buf, size_t size, const char *payload, bool observe,
                           uint32_t obs)
{
    cl_coap_builder_t b;
    size_t n;
    uint8_t tok[1] = {0x4a};
    cl_coap_build_init(&b, buf, size, CL_COAP_ACK, CL_COAP_CONTENT, 0x1234, tok, 1);
    if (observe)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, obs);
    cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_TEXT);
    cl_coap_build_payload(&b, (const uint8_t *)payload, strlen(payload));
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    return n;
}

static cl_status_t server_open(pair_t *p, uint8_t *msg, size_t len, cl_oscore_req_t *sreq,
                               uint8_t *out, size_t *out_len)
{
    cl_oscore_ctx_t *found;
    return cl_oscore_unprotect_request(cl_oscore_lookup_list, &p->l, msg, len, out, 512, out_len,
                                       &found, sreq);
}

static void test_roundtrip_and_class_u(void **state)
{
    (void)state;
    pair_t p;
    pair_init(&p, false);
    uint8_t plain[128], prot[256], back[512];
    size_t plain_len = make_get(plain, sizeof plain, "hello", false), prot_len, back_len;
    cl_oscore_req_t creq, sreq;
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    /* Outer message: POST, Uri-Host stays outer, Uri-Path does not appear in clear. */
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, prot, prot_len), CL_OK);
    assert_int_equal(m.code, CL_COAP_POST);
    assert_non_null(cl_coap_msg_get(&m, CL_COAP_OPT_URI_HOST));
    assert_null(cl_coap_msg_get(&m, CL_COAP_OPT_URI_PATH));
    assert_false(has_bytes(prot, prot_len, "hello", 5));
    assert_int_equal(server_open(&p, prot, prot_len, &sreq, back, &back_len), CL_OK);
    tu_assert_bytes(back, back_len, plain, plain_len);

    uint8_t resp[128], rprot[256], rback[512];
    size_t resp_len = make_content(resp, sizeof resp, "world", false, 0), rprot_len, rback_len;
    assert_int_equal(cl_oscore_protect_response(&p.server, &sreq, NULL, resp, resp_len, rprot,
                                                sizeof rprot, &rprot_len),
                     CL_OK);
    assert_int_equal(cl_coap_parse(&m, rprot, rprot_len), CL_OK);
    assert_int_equal(m.code, CL_COAP_CHANGED);
    assert_int_equal(cl_oscore_unprotect_response(&p.client, &creq, rprot, rprot_len, rback,
                                                  sizeof rback, &rback_len),
                     CL_OK);
    tu_assert_bytes(rback, rback_len, resp, resp_len);
    /* A second response under the request nonce is refused by the client... */
    assert_int_equal(cl_oscore_protect_response(&p.server, &sreq, NULL, resp, resp_len, rprot,
                                                sizeof rprot, &rprot_len),
                     CL_OK);
    /* ...and the server never reuses the request nonce: it switched to its own PIV. */
    cl_oscore_option_t o;
    assert_int_equal(cl_coap_parse(&m, rprot, rprot_len), CL_OK);
    const cl_coap_option_t *oo = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
    assert_int_equal(cl_oscore_option_decode(&o, oo->value, oo->len), CL_OK);
    assert_true(o.piv_len > 0);
    pair_free(&p);
}

static void test_tampering(void **state)
{
    (void)state;
    pair_t p;
    uint8_t plain[128], prot[256], work[256], back[512];
    size_t plain_len, prot_len, back_len;
    cl_oscore_req_t creq, sreq;
    pair_init(&p, false);
    plain_len = make_get(plain, sizeof plain, "hello", false);
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, prot, prot_len), CL_OK);
    size_t payload_off = (size_t)(m.payload - prot);
    const cl_coap_option_t *oo = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
    size_t opt_off = (size_t)(oo->value - prot);

    /* Every single-bit flip in the ciphertext+tag is an authentication failure. */
    for (size_t i = payload_off; i < prot_len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(work, prot, prot_len);
            work[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(server_open(&p, work, prot_len, &sreq, back, &back_len), CL_ERR_AUTH);
        }
    }
    /* Flipping the PIV byte changes the nonce and AAD: auth failure (not replay). */
    memcpy(work, prot, prot_len);
    work[opt_off + 1] ^= 0x40;
    assert_int_equal(server_open(&p, work, prot_len, &sreq, back, &back_len), CL_ERR_AUTH);
    /* Flipping the kid names a context that does not exist. */
    memcpy(work, prot, prot_len);
    work[opt_off + oo->len - 1] ^= 0x80;
    assert_int_equal(server_open(&p, work, prot_len, &sreq, back, &back_len), CL_ERR_NOT_FOUND);
    /* Reserved flag bits are a decode error. */
    memcpy(work, prot, prot_len);
    work[opt_off] |= 0x20;
    assert_int_equal(server_open(&p, work, prot_len, &sreq, back, &back_len), CL_ERR_BAD_INPUT);
    /* PIV length 6 is reserved. */
    memcpy(work, prot, prot_len);
    work[opt_off] = (uint8_t)((work[opt_off] & ~7) | 6);
    assert_int_equal(server_open(&p, work, prot_len, &sreq, back, &back_len), CL_ERR_BAD_INPUT);
    /* The untampered message still verifies afterwards (failures left no state). */
    memcpy(work, prot, prot_len);
    assert_int_equal(server_open(&p, work, prot_len, &sreq, back, &back_len), CL_OK);
    tu_assert_bytes(back, back_len, plain, plain_len);
    pair_free(&p);
}

static void test_truncation_and_sizes(void **state)
{
    (void)state;
    pair_t p;
    uint8_t plain[128], prot[256], work[256], back[512];
    size_t plain_len, prot_len, back_len;
    cl_oscore_req_t creq, sreq;
    pair_init(&p, false);
    plain_len = make_get(plain, sizeof plain, "hello", false);
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    for (size_t n = 0; n < prot_len; n++) {
        memcpy(work, prot, n);
        cl_status_t st = server_open(&p, work, n, &sreq, back, &back_len);
        assert_true(st == CL_ERR_BAD_INPUT || st == CL_ERR_AUTH);
    }
    /* Output buffer too small for the protected request: clean failure. */
    for (size_t n = 0; n < prot_len; n++) {
        size_t l;
        cl_oscore_req_t r;
        memset(work, 0xee, sizeof work);
        assert_int_equal(cl_oscore_protect_request(&p.client, plain, plain_len, work, n, &l, &r),
                         CL_ERR_BUFFER_TOO_SMALL);
        /* no plaintext payload bytes were left behind */
        assert_false(has_bytes(work, n, "hello", 5));
    }
    /* Output too small for the decrypted request: refused, and replay state not consumed. */
    cl_oscore_ctx_t *found;
    memcpy(work, prot, prot_len);
    assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &p.l, work, prot_len, back,
                                                 plain_len - 1, &back_len, &found, &sreq),
                     CL_ERR_BUFFER_TOO_SMALL);
    memcpy(work, prot, prot_len);
    assert_int_equal(server_open(&p, work, prot_len, &sreq, back, &back_len), CL_OK);
    /* An OSCORE request with no payload at all is malformed. */
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, prot, prot_len), CL_OK);
    size_t no_payload = (size_t)(m.payload - prot) - 1;
    memcpy(work, prot, no_payload);
    assert_int_equal(server_open(&p, work, no_payload, &sreq, back, &back_len), CL_ERR_BAD_INPUT);
    pair_free(&p);
}

static void test_replay_window(void **state)
{
    (void)state;
    pair_t p;
    uint8_t plain[128], prot[40][128], work[128], back[512];
    size_t plain_len, prot_len[40], back_len;
    cl_oscore_req_t creq, sreq;
    pair_init(&p, false);
    plain_len = make_get(plain, sizeof plain, "x", false);
    for (int i = 0; i < 40; i++)
        assert_int_equal(cl_oscore_protect_request(&p.client, plain, plain_len, prot[i], 128,
                                                   &prot_len[i], &creq),
                         CL_OK);
    /* Deliver 5 first, then 0 (out of order, inside the window): both fine. */
    memcpy(work, prot[5], prot_len[5]);
    assert_int_equal(server_open(&p, work, prot_len[5], &sreq, back, &back_len), CL_OK);
    memcpy(work, prot[0], prot_len[0]);
    assert_int_equal(server_open(&p, work, prot_len[0], &sreq, back, &back_len), CL_OK);
    /* Same sequence number again: duplicate. */
    memcpy(work, prot[5], prot_len[5]);
    assert_int_equal(server_open(&p, work, prot_len[5], &sreq, back, &back_len), CL_ERR_REPLAY);
    memcpy(work, prot[0], prot_len[0]);
    assert_int_equal(server_open(&p, work, prot_len[0], &sreq, back, &back_len), CL_ERR_REPLAY);
    /* Jump to 39: 6 is still inside the default 32 window, 1 is too old. */
    memcpy(work, prot[39], prot_len[39]);
    assert_int_equal(server_open(&p, work, prot_len[39], &sreq, back, &back_len), CL_OK);
    memcpy(work, prot[8], prot_len[8]);
    assert_int_equal(server_open(&p, work, prot_len[8], &sreq, back, &back_len), CL_OK);
    memcpy(work, prot[1], prot_len[1]);
    assert_int_equal(server_open(&p, work, prot_len[1], &sreq, back, &back_len), CL_ERR_REPLAY);
    /* A replayed message with a tampered tag is still refused (as replay or auth). */
    memcpy(work, prot[39], prot_len[39]);
    work[prot_len[39] - 1] ^= 1;
    assert_int_not_equal(server_open(&p, work, prot_len[39], &sreq, back, &back_len), CL_OK);
    pair_free(&p);
}

static void test_wrong_context(void **state)
{
    (void)state;
    pair_t p;
    uint8_t plain[128], prot[256], back[512];
    size_t plain_len, prot_len, back_len;
    cl_oscore_req_t creq, sreq;
    pair_init(&p, false);
    /* A server context with the same IDs but another master secret. */
    uint8_t other_ms[16];
    memcpy(other_ms, MS, 16);
    other_ms[0] ^= 1;
    cl_oscore_params_t s = {.master_secret = other_ms,
                            .master_secret_len = 16,
                            .sender_id = SID,
                            .sender_id_len = 1,
                            .recipient_id = CID,
                            .recipient_id_len = 1};
    cl_oscore_ctx_t wrong;
    memset(&wrong, 0, sizeof wrong);
    assert_int_equal(cl_oscore_ctx_init(&wrong, &crypto, &s), CL_OK);
    cl_oscore_ctx_t *list[] = {&wrong};
    cl_oscore_ctx_list_t l = {list, 1};
    plain_len = make_get(plain, sizeof plain, "hello", false);
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    cl_oscore_ctx_t *found;
    assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, prot, prot_len, back,
                                                 sizeof back, &back_len, &found, &sreq),
                     CL_ERR_AUTH);
    /* A response verified against the wrong request (other PIV) fails too. */
    cl_oscore_req_t creq2;
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    assert_int_equal(server_open(&p, prot, prot_len, &sreq, back, &back_len), CL_OK);
    assert_int_equal(cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot,
                                               &prot_len, &creq2),
                     CL_OK);
    uint8_t resp[128], rprot[256];
    size_t resp_len = make_content(resp, sizeof resp, "w", false, 0), rprot_len;
    assert_int_equal(cl_oscore_protect_response(&p.server, &sreq, NULL, resp, resp_len, rprot,
                                                sizeof rprot, &rprot_len),
                     CL_OK);
    assert_int_equal(cl_oscore_unprotect_response(&p.client, &creq2, rprot, rprot_len, back,
                                                  sizeof back, &back_len),
                     CL_ERR_AUTH);
    /* Wrong role: the client context cannot open a request meant for the server. */
    cl_oscore_ctx_t *clist[] = {&p.client};
    cl_oscore_ctx_list_t cl = {clist, 1};
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &cl, prot, prot_len, back,
                                                 sizeof back, &back_len, &found, &sreq),
                     CL_ERR_NOT_FOUND);
    cl_oscore_ctx_free(&wrong);
    pair_free(&p);
}

/* ---- B.1.1: sequence number persistence ---- */

typedef struct store {
    uint64_t ceiling;
    int calls;
    bool fail;
} store_t;

static cl_status_t persist(void *arg, const cl_oscore_ctx_t *ctx, uint64_t ceiling)
{
    (void)ctx;
    store_t *s = arg;
    s->calls++;
    if (s->fail)
        return CL_ERR_PERSIST;
    s->ceiling = ceiling;
    return CL_OK;
}

static void test_seq_persistence(void **state)
{
    (void)state;
    store_t st = {0};
    cl_oscore_params_t c = {.master_secret = MS,
                            .master_secret_len = 16,
                            .sender_id = CID,
                            .sender_id_len = 1,
                            .recipient_id = SID,
                            .recipient_id_len = 1,
                            .persist = persist,
                            .persist_arg = &st,
                            .persist_k = 10};
    cl_oscore_ctx_t ctx;
    uint8_t plain[64], prot[128];
    size_t plain_len = make_get(plain, sizeof plain, "a", false), prot_len;
    cl_oscore_req_t req;
    memset(&ctx, 0, sizeof ctx);
    assert_int_equal(cl_oscore_ctx_init(&ctx, &crypto, &c), CL_OK);
    uint64_t highest = 0;
    for (int i = 0; i < 25; i++) {
        assert_int_equal(
            cl_oscore_protect_request(&ctx, plain, plain_len, prot, sizeof prot, &prot_len, &req),
            CL_OK);
        uint64_t piv = 0;
        for (int j = 0; j < req.piv_len; j++)
            piv = piv << 8 | req.piv[j];
        assert_true(piv < st.ceiling); /* never used beyond what is durable */
        highest = piv;
    }
    assert_int_equal(st.calls, 3); /* at 0, 10, 20 */
    assert_int_equal(st.ceiling, 30);
    cl_oscore_ctx_free(&ctx);

    /* "Reboot": restore from the stored ceiling; the next PIV is above all used ones. */
    c.initial_ssn = st.ceiling;
    memset(&ctx, 0, sizeof ctx);
    assert_int_equal(cl_oscore_ctx_init(&ctx, &crypto, &c), CL_OK);
    assert_int_equal(
        cl_oscore_protect_request(&ctx, plain, plain_len, prot, sizeof prot, &prot_len, &req),
        CL_OK);
    assert_int_equal(req.piv_len, 1);
    assert_true(req.piv[0] > highest);
    /* A failing store aborts the protect and burns nothing. */
    st.fail = true;
    uint64_t before = ctx.ssn;
    ctx.ssn = ctx.ssn_ceiling; /* force the next use to need a store */
    before = ctx.ssn;
    assert_int_equal(
        cl_oscore_protect_request(&ctx, plain, plain_len, prot, sizeof prot, &prot_len, &req),
        CL_ERR_PERSIST);
    assert_int_equal(ctx.ssn, before);
    /* Sequence number space exhausted. */
    ctx.persist = NULL;
    ctx.ssn = CL_OSCORE_SSN_MAX + 1;
    assert_int_equal(
        cl_oscore_protect_request(&ctx, plain, plain_len, prot, sizeof prot, &prot_len, &req),
        CL_ERR_SEQ_EXHAUSTED);
    cl_oscore_ctx_free(&ctx);
}

/* ---- B.1.2: Echo after a server reboot ---- */

static void test_echo_recovery(void **state)
{
    (void)state;
    pair_t p;
    uint8_t plain[128], prot[256], first[256], work[256], back[512], eprot[256];
    size_t plain_len, prot_len, first_len, back_len, eprot_len;
    cl_oscore_req_t creq, sreq;
    cl_oscore_ctx_t *found;
    pair_init(&p, true); /* server context restored after reboot: window unknown */
    plain_len = make_get(plain, sizeof plain, "hello", false);
    assert_int_equal(cl_oscore_protect_request(&p.client, plain, plain_len, first, sizeof first,
                                               &first_len, &creq),
                     CL_OK);
    memcpy(work, first, first_len);
    assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &p.l, work, first_len, back,
                                                 sizeof back, &back_len, &found, &sreq),
                     CL_ERR_ECHO_REQUIRED);
    assert_ptr_equal(found, &p.server);
    assert_int_equal(cl_oscore_build_echo_response(&p.server, &sreq, work, first_len, 0, eprot,
                                                   sizeof eprot, &eprot_len),
                     CL_OK);
    /* The client verifies the 4.01 (server PIV, no kid) and reads the Echo value. */
    assert_int_equal(cl_oscore_unprotect_response(&p.client, &creq, eprot, eprot_len, back,
                                                  sizeof back, &back_len),
                     CL_OK);
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, back, back_len), CL_OK);
    assert_int_equal(m.code, CL_COAP_UNAUTHORIZED);
    const cl_coap_option_t *echo = cl_coap_msg_get(&m, CL_COAP_OPT_ECHO);
    assert_non_null(echo);
    assert_int_equal(echo->len, CL_OSCORE_ECHO_LEN);
    uint8_t echo_val[CL_OSCORE_ECHO_LEN];
    memcpy(echo_val, echo->value, CL_OSCORE_ECHO_LEN);

    /* A request without the Echo is still not accepted. */
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    assert_int_equal(server_open(&p, prot, prot_len, &sreq, back, &back_len), CL_ERR_ECHO_REQUIRED);
    /* New challenge; retry with its Echo value inside (class E). */
    assert_int_equal(cl_oscore_build_echo_response(&p.server, &sreq, prot, prot_len, 0, eprot,
                                                   sizeof eprot, &eprot_len),
                     CL_OK);
    assert_int_equal(cl_oscore_unprotect_response(&p.client, &creq, eprot, eprot_len, back,
                                                  sizeof back, &back_len),
                     CL_OK);
    assert_int_equal(cl_coap_parse(&m, back, back_len), CL_OK);
    memcpy(echo_val, cl_coap_msg_get(&m, CL_COAP_OPT_ECHO)->value, CL_OSCORE_ECHO_LEN);
    cl_coap_builder_t b;
    uint8_t tok[1] = {0x4b};
    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_GET, 0x2000, tok, 1);
    cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"hello", 5);
    cl_coap_build_option(&b, CL_COAP_OPT_ECHO, echo_val, CL_OSCORE_ECHO_LEN);
    assert_int_equal(cl_coap_build_finish(&b, &plain_len), CL_OK);
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    assert_false(has_bytes(prot, prot_len, echo_val, CL_OSCORE_ECHO_LEN)); /* Echo is inner */
    assert_int_equal(server_open(&p, prot, prot_len, &sreq, back, &back_len), CL_OK);
    /* The pre-Echo request (lower PIV) is now below the window's lower limit. */
    memcpy(work, first, first_len);
    assert_int_equal(server_open(&p, work, first_len, &sreq, back, &back_len), CL_ERR_REPLAY);
    pair_free(&p);
}

/* ---- Observe ---- */

static void test_observe(void **state)
{
    (void)state;
    pair_t p;
    uint8_t plain[128], prot[256], back[512], n[5][256], work[256];
    size_t plain_len, prot_len, back_len, n_len[5];
    cl_oscore_req_t creq, sreq;
    pair_init(&p, false);
    plain_len = make_get(plain, sizeof plain, "actions", true);
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    assert_true(creq.observe);
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, prot, prot_len), CL_OK);
    assert_int_equal(m.code, CL_COAP_FETCH);                   /* outer code for Observe requests */
    assert_non_null(cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE)); /* outer Observe for proxies */
    assert_int_equal(server_open(&p, prot, prot_len, &sreq, back, &back_len), CL_OK);
    assert_true(sreq.observe);
    tu_assert_bytes(back, back_len, plain, plain_len);

    /* Five notifications; the first may reuse the request nonce, the rest must not. */
    for (int i = 0; i < 5; i++) {
        uint8_t resp[128];
        char text[16];
        snprintf(text, sizeof text, "note %d", i);
        size_t resp_len = make_content(resp, sizeof resp, text, true, (uint32_t)(i + 2));
        assert_int_equal(cl_oscore_protect_response(&p.server, &sreq, NULL, resp, resp_len, n[i],
                                                    sizeof n[i], &n_len[i]),
                         CL_OK);
        assert_int_equal(cl_coap_parse(&m, n[i], n_len[i]), CL_OK);
        assert_int_equal(m.code, CL_COAP_CONTENT);
        const cl_coap_option_t *oo = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
        cl_oscore_option_t o;
        assert_int_equal(cl_oscore_option_decode(&o, oo->value, oo->len), CL_OK);
        assert_true(i == 0 ? o.piv_len == 0 : o.piv_len > 0);
    }
    /* Deliver 0, 2, then 1 (older than 2: refused), then 2 again (refused), then 4. */
    int order[] = {0, 2, 1, 2, 4};
    cl_status_t expect[] = {CL_OK, CL_OK, CL_ERR_REPLAY, CL_ERR_REPLAY, CL_OK};
    for (int k = 0; k < 5; k++) {
        int i = order[k];
        memcpy(work, n[i], n_len[i]);
        assert_int_equal(cl_oscore_unprotect_response(&p.client, &creq, work, n_len[i], back,
                                                      sizeof back, &back_len),
                         expect[k]);
        if (expect[k] == CL_OK) {
            assert_int_equal(cl_coap_parse(&m, back, back_len), CL_OK);
            assert_non_null(cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE));
            char text[16];
            snprintf(text, sizeof text, "note %d", i);
            tu_assert_bytes(m.payload, m.payload_len, (const uint8_t *)text, strlen(text));
        }
    }
    /* The nonce-reusing first notification is accepted at most once. */
    memcpy(work, n[0], n_len[0]);
    assert_int_equal(cl_oscore_unprotect_response(&p.client, &creq, work, n_len[0], back,
                                                  sizeof back, &back_len),
                     CL_ERR_REPLAY);
    /* A response carrying Observe to a non-Observe request is refused. */
    pair_t q;
    pair_init(&q, false);
    plain_len = make_get(plain, sizeof plain, "a", false);
    assert_int_equal(
        cl_oscore_protect_request(&q.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    assert_int_equal(server_open(&q, prot, prot_len, &sreq, back, &back_len), CL_OK);
    sreq.observe = true; /* a misbehaving server */
    uint8_t resp[128];
    size_t resp_len = make_content(resp, sizeof resp, "x", true, 5);
    assert_int_equal(cl_oscore_protect_response(&q.server, &sreq, NULL, resp, resp_len, prot,
                                                sizeof prot, &prot_len),
                     CL_OK);
    assert_int_equal(cl_oscore_unprotect_response(&q.client, &creq, prot, prot_len, back,
                                                  sizeof back, &back_len),
                     CL_ERR_BAD_INPUT);
    pair_free(&q);
    pair_free(&p);
}

/* ---- B.2: context re-derivation with a new ID Context ---- */

static void test_rederive(void **state)
{
    (void)state;
    pair_t p;
    uint8_t plain[128], prot[256], back[512];
    size_t plain_len, prot_len, back_len;
    cl_oscore_req_t creq, sreq;
    pair_init(&p, false);
    /* Step 1-2: client uses ID1 = R1; the server derives the same from the kid context. */
    uint8_t r1[8] = {1, 1, 1, 1, 1, 1, 1, 1}, r2[8] = {2, 2, 2, 2, 2, 2, 2, 2};
    cl_oscore_ctx_t c1, s1, s2, c2;
    memset(&c1, 0, sizeof c1);
    assert_int_equal(cl_oscore_ctx_rederive(&c1, &p.client, r1, 8), CL_OK);
    c1.flags |= CL_OSCORE_F_SEND_IDCTX;
    plain_len = make_get(plain, sizeof plain, "a", false);
    assert_int_equal(
        cl_oscore_protect_request(&c1, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    /* The old server context does not have ID1: lookup with kid context fails. */
    assert_int_equal(server_open(&p, prot, prot_len, &sreq, back, &back_len), CL_ERR_NOT_FOUND);
    assert_int_equal(cl_oscore_ctx_rederive(&s1, &p.server, r1, 8), CL_OK);
    cl_oscore_ctx_t *list[] = {&s1};
    cl_oscore_ctx_list_t l = {list, 1};
    cl_oscore_ctx_t *found;
    assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, prot, prot_len, back,
                                                 sizeof back, &back_len, &found, &sreq),
                     CL_OK);
    /* Server answers 4.01 protected with ID2 = R2 || ID1, sending R2 as kid context. */
    uint8_t id2[16];
    memcpy(id2, r2, 8);
    memcpy(id2 + 8, r1, 8);
    assert_int_equal(cl_oscore_ctx_rederive(&s2, &p.server, id2, 16), CL_OK);
    uint8_t resp[64];
    cl_coap_builder_t b;
    uint8_t tok[1] = {0x4a};
    cl_coap_build_init(&b, resp, sizeof resp, CL_COAP_ACK, CL_COAP_UNAUTHORIZED, 0x1234, tok, 1);
    size_t resp_len;
    assert_int_equal(cl_coap_build_finish(&b, &resp_len), CL_OK);
    cl_oscore_resp_opts_t opts = {.kid_context = r2, .kid_context_len = 8};
    uint8_t rprot[128];
    size_t rprot_len;
    assert_int_equal(cl_oscore_protect_response(&s2, &sreq, &opts, resp, resp_len, rprot,
                                                sizeof rprot, &rprot_len),
                     CL_OK);
    /* Client reads R2 from the option, derives ID2 and verifies. */
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, rprot, rprot_len), CL_OK);
    const cl_coap_option_t *oo = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
    cl_oscore_option_t o;
    assert_int_equal(cl_oscore_option_decode(&o, oo->value, oo->len), CL_OK);
    assert_true(o.has_kid_context);
    tu_assert_bytes(o.kid_context, o.kid_context_len, r2, 8);
    assert_int_equal(cl_oscore_ctx_rederive(&c2, &p.client, id2, 16), CL_OK);
    /* With the old context it does not verify; with ID2 it does. */
    uint8_t work[128];
    memcpy(work, rprot, rprot_len);
    assert_int_equal(
        cl_oscore_unprotect_response(&c1, &creq, work, rprot_len, back, sizeof back, &back_len),
        CL_ERR_AUTH);
    assert_int_equal(
        cl_oscore_unprotect_response(&c2, &creq, rprot, rprot_len, back, sizeof back, &back_len),
        CL_OK);
    /* In place re-derivation replaces the keys. */
    assert_int_equal(cl_oscore_ctx_rederive(&c2, &c2, r2, 8), CL_OK);
    assert_int_equal(c2.ssn, 0);
    cl_oscore_ctx_free(&c1);
    cl_oscore_ctx_free(&c2);
    cl_oscore_ctx_free(&s1);
    cl_oscore_ctx_free(&s2);
    pair_free(&p);
}

/* ---- 4.1.3.3: Proxy-Uri is split; path and query travel inside ---- */

static void test_proxy_uri(void **state)
{
    (void)state;
    pair_t p;
    uint8_t plain[256], prot[512], back[512];
    size_t plain_len, prot_len, back_len;
    cl_oscore_req_t creq, sreq;
    pair_init(&p, false);
    const char *uri = "coap://example.com/res%41/x?q=1&secret=yes";
    cl_coap_builder_t b;
    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_GET, 9, NULL, 0);
    cl_coap_build_option(&b, CL_COAP_OPT_PROXY_URI, (const uint8_t *)uri, strlen(uri));
    assert_int_equal(cl_coap_build_finish(&b, &plain_len), CL_OK);
    assert_int_equal(
        cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    assert_false(has_bytes(prot, prot_len, "secret", 6));
    assert_false(has_bytes(prot, prot_len, "res", 3));
    cl_coap_msg_t m;
    assert_int_equal(cl_coap_parse(&m, prot, prot_len), CL_OK);
    const cl_coap_option_t *pu = cl_coap_msg_get(&m, CL_COAP_OPT_PROXY_URI);
    assert_non_null(pu);
    tu_assert_bytes(pu->value, pu->len, (const uint8_t *)"coap://example.com", 18);
    assert_int_equal(server_open(&p, prot, prot_len, &sreq, back, &back_len), CL_OK);
    assert_int_equal(cl_coap_parse(&m, back, back_len), CL_OK);
    char path[64];
    assert_int_equal(cl_coap_uri_path(&m, path, sizeof path), CL_OK);
    assert_string_equal(path, "/resA/x");
    size_t pos = 0;
    const cl_coap_option_t *q = cl_coap_msg_find(&m, CL_COAP_OPT_URI_QUERY, &pos);
    assert_non_null(q);
    tu_assert_bytes(q->value, q->len, (const uint8_t *)"q=1", 3);
    pos++;
    q = cl_coap_msg_find(&m, CL_COAP_OPT_URI_QUERY, &pos);
    assert_non_null(q);
    tu_assert_bytes(q->value, q->len, (const uint8_t *)"secret=yes", 10);
    /* Malformed Proxy-Uris are the caller's error. */
    const char *bad[] = {"coap://h/%4", "coap://h/a#frag", "no-scheme/a", "coap://h/%zz"};
    for (size_t i = 0; i < 4; i++) {
        cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_GET, 9, NULL, 0);
        cl_coap_build_option(&b, CL_COAP_OPT_PROXY_URI, (const uint8_t *)bad[i], strlen(bad[i]));
        assert_int_equal(cl_coap_build_finish(&b, &plain_len), CL_OK);
        assert_int_equal(cl_oscore_protect_request(&p.client, plain, plain_len, prot, sizeof prot,
                                                   &prot_len, &creq),
                         CL_ERR_INVALID_ARG);
    }
    pair_free(&p);
}

static void test_errors(void **state)
{
    (void)state;
    uint8_t req[64], out[128];
    size_t req_len = make_get(req, sizeof req, "x", false), out_len;
    struct {
        cl_status_t why;
        uint8_t code;
        const char *diag;
    } cases[] = {
        {CL_ERR_BAD_INPUT, CL_COAP_BAD_OPTION, "Failed to decode COSE"},
        {CL_ERR_NOT_FOUND, CL_COAP_UNAUTHORIZED, "Security context not found"},
        {CL_ERR_AUTH, CL_COAP_BAD_REQUEST, "Decryption failed"},
        {CL_ERR_REPLAY, CL_COAP_UNAUTHORIZED, "Replay detected"},
    };
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(
            cl_oscore_build_error(cases[i].why, req, req_len, 7, out, sizeof out, &out_len), CL_OK);
        cl_coap_msg_t m;
        assert_int_equal(cl_coap_parse(&m, out, out_len), CL_OK);
        assert_int_equal(m.type, CL_COAP_ACK);
        assert_int_equal(m.mid, 0x1234);
        assert_int_equal(m.code, cases[i].code);
        assert_int_equal(m.tkl, 1);
        assert_int_equal(m.token[0], 0x4a);
        const cl_coap_option_t *ma = cl_coap_msg_get(&m, CL_COAP_OPT_MAX_AGE);
        assert_non_null(ma);
        assert_int_equal(ma->len, 0);
        tu_assert_bytes(m.payload, m.payload_len, (const uint8_t *)cases[i].diag,
                        strlen(cases[i].diag));
    }
    assert_int_equal(
        cl_oscore_build_error(CL_ERR_CRYPTO, req, req_len, 7, out, sizeof out, &out_len),
        CL_ERR_INVALID_ARG);
    assert_int_equal(cl_oscore_build_error(CL_ERR_AUTH, req, 3, 7, out, sizeof out, &out_len),
                     CL_ERR_BAD_INPUT);
}

static void test_option_codec(void **state)
{
    (void)state;
    /* RFC 8613 section 6.3 examples. */
    struct {
        const char *value;
        const char *piv, *kid, *kidctx;
    } ex[] = {
        {"090525", "05", "25", NULL},
        {"0900", "00", "", NULL},
        {"19050544616c656b", "05", "", "44616c656b"},
        {"", NULL, NULL, NULL},
        {"0107", "07", NULL, NULL},
    };
    for (size_t i = 0; i < 5; i++) {
        uint8_t v[32], buf[32];
        size_t len = tu_hex(ex[i].value, v, sizeof v), out_len;
        cl_oscore_option_t o;
        assert_int_equal(cl_oscore_option_decode(&o, v, len), CL_OK);
        if (ex[i].piv) {
            size_t n = tu_hex(ex[i].piv, buf, sizeof buf);
            tu_assert_bytes(o.piv, o.piv_len, buf, n);
        } else {
            assert_int_equal(o.piv_len, 0);
        }
        assert_int_equal(o.has_kid, ex[i].kid != NULL);
        if (ex[i].kid) {
            size_t n = tu_hex(ex[i].kid, buf, sizeof buf);
            tu_assert_bytes(o.kid, o.kid_len, buf, n);
        }
        assert_int_equal(o.has_kid_context, ex[i].kidctx != NULL);
        if (ex[i].kidctx) {
            size_t n = tu_hex(ex[i].kidctx, buf, sizeof buf);
            tu_assert_bytes(o.kid_context, o.kid_context_len, buf, n);
        }
        assert_int_equal(cl_oscore_option_encode(&o, buf, sizeof buf, &out_len), CL_OK);
        tu_assert_bytes(buf, out_len, v, len);
    }
    /* Malformed: 0x00 not empty, reserved bits, n = 6/7, truncated PIV / kid context. */
    const char *bad[] = {"00", "20", "40", "80", "06", "07", "0201", "1901", "1905", "01"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t v[8];
        size_t len = tu_hex(bad[i], v, sizeof v);
        cl_oscore_option_t o;
        assert_int_equal(cl_oscore_option_decode(&o, v, len), CL_ERR_BAD_INPUT);
    }
}

static void test_http_header(void **state)
{
    (void)state;
    char hdr[64];
    uint8_t v[32];
    size_t n;
    assert_int_equal(cl_oscore_http_header_encode(NULL, 0, hdr, sizeof hdr), CL_OK);
    assert_string_equal(hdr, "AA");
    assert_int_equal(cl_oscore_http_header_decode("AA", 2, v, sizeof v, &n), CL_OK);
    assert_int_equal(n, 0);
    const uint8_t opt[] = {0x09, 0x14};
    assert_int_equal(cl_oscore_http_header_encode(opt, 2, hdr, sizeof hdr), CL_OK);
    assert_string_equal(hdr, "CRQ");
    assert_int_equal(cl_oscore_http_header_decode(hdr, strlen(hdr), v, sizeof v, &n), CL_OK);
    tu_assert_bytes(v, n, opt, 2);
    /* Round trips of every length up to 20 with bytes that use '-' and '_'. */
    for (size_t len = 1; len <= 20; len++) {
        uint8_t in[20];
        for (size_t i = 0; i < len; i++)
            in[i] = (uint8_t)(0xfb + i * 37);
        assert_int_equal(cl_oscore_http_header_encode(in, len, hdr, sizeof hdr), CL_OK);
        assert_null(strchr(hdr, '='));
        assert_int_equal(cl_oscore_http_header_decode(hdr, strlen(hdr), v, sizeof v, &n), CL_OK);
        tu_assert_bytes(v, n, in, len);
    }
    /* Strictness: padding, '+', '/', length 1 mod 4, non-zero trailing bits. */
    const char *bad[] = {"CRQ=", "C+Q", "C/Q", "A", "CRQAA", "CRR", "", "A A"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_not_equal(cl_oscore_http_header_decode(bad[i], strlen(bad[i]), v, sizeof v, &n),
                             CL_OK);
    /* Output too small. */
    assert_int_equal(cl_oscore_http_header_encode(opt, 2, hdr, 3), CL_ERR_BUFFER_TOO_SMALL);
}

static void test_params_validation(void **state)
{
    (void)state;
    cl_oscore_ctx_t ctx;
    uint8_t long_id[8] = {0};
    cl_oscore_params_t p = {.master_secret = MS,
                            .master_secret_len = 16,
                            .sender_id = CID,
                            .sender_id_len = 1,
                            .recipient_id = CID,
                            .recipient_id_len = 1};
    memset(&ctx, 0, sizeof ctx);
    /* Same Sender and Recipient ID. */
    assert_int_equal(cl_oscore_ctx_init(&ctx, &crypto, &p), CL_ERR_INVALID_ARG);
    /* ID longer than nonce length - 6. */
    p.recipient_id = long_id;
    p.recipient_id_len = 8;
    assert_int_equal(cl_oscore_ctx_init(&ctx, &crypto, &p), CL_ERR_INVALID_ARG);
    p.recipient_id_len = 7;
    assert_int_equal(cl_oscore_ctx_init(&ctx, &crypto, &p), CL_OK);
    cl_oscore_ctx_free(&ctx);
    p.master_secret_len = 0;
    assert_int_equal(cl_oscore_ctx_init(&ctx, &crypto, &p), CL_ERR_INVALID_ARG);
    p.master_secret_len = 16;
    p.replay_window = 65;
    assert_int_equal(cl_oscore_ctx_init(&ctx, &crypto, &p), CL_ERR_INVALID_ARG);
    p.replay_window = 0;
    p.aead = (cl_aead_alg_t)99;
    assert_int_equal(cl_oscore_ctx_init(&ctx, &crypto, &p), CL_ERR_UNSUPPORTED);
    /* Free is safe on zeroed and on freed contexts; a freed context refuses work. */
    cl_oscore_ctx_free(&ctx);
    cl_oscore_ctx_free(&ctx);
    uint8_t plain[64], out[128];
    size_t plain_len = make_get(plain, sizeof plain, "a", false), out_len;
    cl_oscore_req_t r;
    assert_int_equal(
        cl_oscore_protect_request(&ctx, plain, plain_len, out, sizeof out, &out_len, &r),
        CL_ERR_INVALID_ARG);
    /* Nested OSCORE is refused. */
    pair_t q;
    pair_init(&q, false);
    cl_coap_builder_t b;
    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_GET, 1, NULL, 0);
    cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, NULL, 0);
    assert_int_equal(cl_coap_build_finish(&b, &plain_len), CL_OK);
    assert_int_equal(
        cl_oscore_protect_request(&q.client, plain, plain_len, out, sizeof out, &out_len, &r),
        CL_ERR_INVALID_ARG);
    printf("sizeof(cl_oscore_ctx_t) = %zu bytes\n", sizeof(cl_oscore_ctx_t));
    assert_true(sizeof(cl_oscore_ctx_t) <= 256);
    pair_free(&q);
}

static int setup(void **state)
{
    (void)state;
    tu_crypto(&crypto, 0);
    vectors = tu_load_vectors("oscore-rfc8613.json");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cJSON_Delete(vectors);
    cl_crypto_openssl_free(&crypto);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_derivation),    cmocka_unit_test(test_request_vectors),
        cmocka_unit_test(test_response_vectors),  cmocka_unit_test(test_roundtrip_and_class_u),
        cmocka_unit_test(test_tampering),         cmocka_unit_test(test_truncation_and_sizes),
        cmocka_unit_test(test_replay_window),     cmocka_unit_test(test_wrong_context),
        cmocka_unit_test(test_seq_persistence),   cmocka_unit_test(test_echo_recovery),
        cmocka_unit_test(test_observe),           cmocka_unit_test(test_rederive),
        cmocka_unit_test(test_proxy_uri),         cmocka_unit_test(test_errors),
        cmocka_unit_test(test_option_codec),      cmocka_unit_test(test_http_header),
        cmocka_unit_test(test_params_validation),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
