/*
 * test_coap_block.c - block-wise slicing and bounded reassembly, and OSCORE
 * over outer Block1/Block2 (RFC 8613 4.1.3.4.2): a protected message cut
 * into unprotected blocks by a "proxy", reassembled, then unprotected.
 */
#include <string.h>

#include "testutil.h"

#include "cloister/coap_block.h"
#include "cloister/crypto_openssl.h"
#include "cloister/oscore.h"

static cl_crypto_t crypto;

static size_t make_post(uint8_t *buf, size_t size, const uint8_t *payload, size_t len)
{
    cl_coap_builder_t b;
    size_t n;
    const uint8_t tok[2] = {0xab, 0xcd};
    cl_coap_build_init(&b, buf, size, CL_COAP_CON, CL_COAP_POST, 0x0101, tok, 2);
    cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)"h", 1);
    cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"events", 6);
    cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR);
    cl_coap_build_payload(&b, payload, len);
    assert_int_equal(cl_coap_build_finish(&b, &n), CL_OK);
    return n;
}

/* Slices msg into blocks of 2^(szx+4) and stores them in blocks[]. */
static size_t slice_all(const uint8_t *msg, size_t len, uint8_t szx, uint8_t blocks[][128],
                        size_t *blen)
{
    cl_coap_msg_t m;
    bool more = true;
    uint32_t num = 0;
    assert_int_equal(cl_coap_parse(&m, msg, len), CL_OK);
    while (more) {
        assert_int_equal(cl_coap_block_slice(&m, CL_COAP_OPT_BLOCK1, num, szx, blocks[num], 128,
                                             &blen[num], &more),
                         CL_OK);
        num++;
    }
    return num;
}

static void test_slice_reassemble(void **state)
{
    (void)state;
    uint8_t payload[300], msg[512], blocks[32][128], buf[400], out[512];
    size_t blen[32], out_len;
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 7);
    size_t len = make_post(msg, sizeof msg, payload, sizeof payload);
    size_t n = slice_all(msg, len, 2 /* 64 bytes */, blocks, blen);
    assert_int_equal(n, 5); /* 4 full blocks + 44 bytes */
    cl_coap_reasm_t r;
    cl_coap_reasm_init(&r, buf, sizeof buf);
    cl_coap_msg_t m;
    bool done = false;
    for (size_t i = 0; i < n; i++) {
        assert_false(done);
        assert_int_equal(cl_coap_parse(&m, blocks[i], blen[i]), CL_OK);
        assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_OK);
    }
    assert_true(done);
    assert_int_equal(cl_coap_reasm_finish(&r, &m, out, sizeof out, &out_len), CL_OK);
    tu_assert_bytes(out, out_len, msg, len);

    /* Out of order (skip block 1), other token, limit exceeded: refused and reset. */
    cl_coap_reasm_init(&r, buf, sizeof buf);
    assert_int_equal(cl_coap_parse(&m, blocks[0], blen[0]), CL_OK);
    assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_OK);
    assert_int_equal(cl_coap_parse(&m, blocks[2], blen[2]), CL_OK);
    assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_ERR_BAD_INPUT);
    assert_false(r.active);
    assert_int_equal(cl_coap_parse(&m, blocks[1], blen[1]), CL_OK);
    assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_ERR_BAD_INPUT);

    cl_coap_reasm_init(&r, buf, 100); /* MAX_UNFRAGMENTED_SIZE 100 */
    assert_int_equal(cl_coap_parse(&m, blocks[0], blen[0]), CL_OK);
    assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_OK);
    assert_int_equal(cl_coap_parse(&m, blocks[1], blen[1]), CL_OK);
    assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_ERR_LIMIT);

    cl_coap_reasm_init(&r, buf, sizeof buf);
    assert_int_equal(cl_coap_parse(&m, blocks[0], blen[0]), CL_OK);
    assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_OK);
    uint8_t other[128];
    memcpy(other, blocks[1], blen[1]);
    other[4] ^= 1; /* token byte */
    assert_int_equal(cl_coap_parse(&m, other, blen[1]), CL_OK);
    assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_ERR_BAD_INPUT);

    /* A short intermediate block (M=1 but not full) is malformed. */
    cl_coap_reasm_init(&r, buf, sizeof buf);
    assert_int_equal(cl_coap_parse(&m, blocks[0], blen[0] - 1), CL_OK);
    assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_ERR_BAD_INPUT);

    /* Slicing past the end and already-fragmented input are refused. */
    bool more;
    assert_int_equal(cl_coap_parse(&m, msg, len), CL_OK);
    assert_int_equal(
        cl_coap_block_slice(&m, CL_COAP_OPT_BLOCK1, 5, 2, out, sizeof out, &out_len, &more),
        CL_ERR_INVALID_ARG);
    assert_int_equal(cl_coap_parse(&m, blocks[0], blen[0]), CL_OK);
    assert_int_equal(
        cl_coap_block_slice(&m, CL_COAP_OPT_BLOCK1, 0, 2, out, sizeof out, &out_len, &more),
        CL_ERR_INVALID_ARG);
}

static void test_oscore_outer_block(void **state)
{
    (void)state;
    static const uint8_t ms[16] = "0123456789abcdef";
    const uint8_t a = 0xa1, b = 0xb2;
    cl_oscore_params_t pc = {.master_secret = ms,
                             .master_secret_len = 16,
                             .sender_id = &a,
                             .sender_id_len = 1,
                             .recipient_id = &b,
                             .recipient_id_len = 1};
    cl_oscore_params_t ps = pc;
    ps.sender_id = &b;
    ps.recipient_id = &a;
    cl_oscore_ctx_t client, server;
    memset(&client, 0, sizeof client);
    memset(&server, 0, sizeof server);
    assert_int_equal(cl_oscore_ctx_init(&client, &crypto, &pc), CL_OK);
    assert_int_equal(cl_oscore_ctx_init(&server, &crypto, &ps), CL_OK);

    uint8_t payload[700], plain[800], prot[900], blocks[32][128], whole[900], back[900];
    size_t blen[32], prot_len, whole_len, back_len;
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i ^ 0x5a);
    size_t plain_len = make_post(plain, sizeof plain, payload, sizeof payload);
    cl_oscore_req_t creq, sreq;
    assert_int_equal(
        cl_oscore_protect_request(&client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    /* The "proxy" fragments the OSCORE message with outer Block1 (unprotected). */
    size_t n = slice_all(prot, prot_len, 2, blocks, blen);
    assert_true(n > 10);
    uint8_t buf[1024];
    cl_coap_reasm_t r;
    cl_coap_reasm_init(&r, buf, sizeof buf);
    cl_coap_msg_t m;
    bool done = false;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(cl_coap_parse(&m, blocks[i], blen[i]), CL_OK);
        assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_OK);
    }
    assert_true(done);
    assert_int_equal(cl_coap_reasm_finish(&r, &m, whole, sizeof whole, &whole_len), CL_OK);
    tu_assert_bytes(whole, whole_len, prot, prot_len);
    cl_oscore_ctx_t *list[] = {&server};
    cl_oscore_ctx_list_t l = {list, 1};
    cl_oscore_ctx_t *found;
    assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, whole, whole_len, back,
                                                 sizeof back, &back_len, &found, &sreq),
                     CL_OK);
    tu_assert_bytes(back, back_len, plain, plain_len);

    /* A block whose payload was altered by the proxy: reassembles, then fails authentication. */
    assert_int_equal(
        cl_oscore_protect_request(&client, plain, plain_len, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    n = slice_all(prot, prot_len, 2, blocks, blen);
    blocks[3][blen[3] - 1] ^= 0x01;
    cl_coap_reasm_init(&r, buf, sizeof buf);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(cl_coap_parse(&m, blocks[i], blen[i]), CL_OK);
        assert_int_equal(cl_coap_reasm_feed(&r, &m, CL_COAP_OPT_BLOCK1, &done), CL_OK);
    }
    assert_int_equal(cl_coap_reasm_finish(&r, &m, whole, sizeof whole, &whole_len), CL_OK);
    assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, whole, whole_len, back,
                                                 sizeof back, &back_len, &found, &sreq),
                     CL_ERR_AUTH);
    cl_oscore_ctx_free(&client);
    cl_oscore_ctx_free(&server);
}

static int setup(void **state)
{
    (void)state;
    tu_crypto(&crypto, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cl_crypto_openssl_free(&crypto);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slice_reassemble),
        cmocka_unit_test(test_oscore_outer_block),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
