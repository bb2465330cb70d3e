/*
 * test_edhoc.c - EDHOC against RFC 9529: traces 1 (method 0, suite 0,
 * X.509 by x5t, Ed25519/X25519) and 2 (method 3, suite 2, P-256, CCS by
 * kid, with the cipher-suite negotiation round trip) byte for byte, with the
 * ephemeral keys injected through the test-only hook; the OSCORE context of
 * Appendix A.1, the exporter and key update; the 15 invalid messages of
 * RFC 9529 section 4; and negatives (tampering, wrong credential, unknown
 * credential, critical EAD, truncation, replayed / out-of-order messages).
 */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

#include "cloister/cbor.h"
#include "cloister/crypto_openssl.h"
#include "cloister/edhoc.h"

static cl_crypto_t crypto;
static cJSON *vectors;

/* ---- one side of a trace: its config, credentials and the peer it expects ---- */

typedef struct side {
    cl_edhoc_config_t cfg;
    cl_edhoc_auth_t auth;
    int suites[4];
    /* what the peer callback returns */
    const uint8_t *peer_id_cred;
    size_t peer_id_cred_len;
    const uint8_t *peer_cred;
    size_t peer_cred_len;
    cl_key_t peer_key;
    uint8_t peer_pub[65];
    size_t peer_pub_len;
    int calls;
    bool unknown; /* pretend we do not know the referenced credential */
} side_t;

static cl_status_t peer_cred(void *arg, cl_edhoc_role_t role, const uint8_t *id_cred, size_t len,
                             cl_edhoc_peer_t *peer)
{
    (void)role;
    side_t *sd = arg;
    sd->calls++;
    if (sd->unknown || len != sd->peer_id_cred_len || memcmp(id_cred, sd->peer_id_cred, len) != 0)
        return CL_ERR_NOT_FOUND;
    peer->cred = sd->peer_cred;
    peer->cred_len = sd->peer_cred_len;
    peer->key = sd->peer_key;
    memcpy(peer->pub, sd->peer_pub, sd->peer_pub_len);
    peer->pub_len = sd->peer_pub_len;
    return CL_OK;
}

static cl_key_t import_priv(cl_key_type_t type, uint32_t usage, const uint8_t *k, size_t len)
{
    cl_key_t h;
    assert_int_equal(crypto.ops->key_import_private(crypto.self, type, usage, k, len, &h), CL_OK);
    return h;
}

static cl_key_t import_pub(cl_key_type_t type, const uint8_t *k, size_t len)
{
    cl_key_t h;
    assert_int_equal(crypto.ops->key_import_public(crypto.self, type, k, len, &h), CL_OK);
    return h;
}

static const cJSON *trace(const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(vectors, name);
}

static const cJSON *vals(const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(trace(name), "values");
}

/* Trace 1: method 0, suite 0; both sign with Ed25519, X.509 by x5t. */
static void setup_trace1(side_t *ini, side_t *res)
{
    const cJSON *v = vals("trace_1");
    size_t n;
    memset(ini, 0, sizeof *ini);
    memset(res, 0, sizeof *res);
    ini->suites[0] = res->suites[0] = 0;

    uint8_t *sk_i = tu_hexm(v, "sk_i", &n);
    ini->auth.key = import_priv(CL_KEY_ED25519, CL_KEY_USAGE_SIGN, sk_i, n);
    ini->auth.type = CL_KEY_ED25519;
    ini->auth.id_cred = tu_hexm(v, "id_cred_i", &ini->auth.id_cred_len);
    ini->auth.cred = tu_hexm(v, "cred_i_cbor", &ini->auth.cred_len);
    uint8_t *sk_r = tu_hexm(v, "sk_r", &n);
    res->auth.key = import_priv(CL_KEY_ED25519, CL_KEY_USAGE_SIGN, sk_r, n);
    res->auth.type = CL_KEY_ED25519;
    res->auth.id_cred = tu_hexm(v, "id_cred_r", &res->auth.id_cred_len);
    res->auth.cred = tu_hexm(v, "cred_r_cbor", &res->auth.cred_len);

    ini->peer_id_cred = res->auth.id_cred;
    ini->peer_id_cred_len = res->auth.id_cred_len;
    ini->peer_cred = res->auth.cred;
    ini->peer_cred_len = res->auth.cred_len;
    uint8_t *pk_r = tu_hexm(v, "pk_r", &n);
    ini->peer_key = import_pub(CL_KEY_ED25519, pk_r, n);
    res->peer_id_cred = ini->auth.id_cred;
    res->peer_id_cred_len = ini->auth.id_cred_len;
    res->peer_cred = ini->auth.cred;
    res->peer_cred_len = ini->auth.cred_len;
    uint8_t *pk_i = tu_hexm(v, "pk_i", &n);
    res->peer_key = import_pub(CL_KEY_ED25519, pk_i, n);
}

/* Trace 2: method 3, suite 2 (initiator prefers 6); static DH P-256, CCS by kid. */
static void setup_trace2(side_t *ini, side_t *res)
{
    const cJSON *v = vals("trace_2");
    size_t n, nx, ny;
    memset(ini, 0, sizeof *ini);
    memset(res, 0, sizeof *res);
    ini->suites[0] = 6;
    ini->suites[1] = 2;
    res->suites[0] = 2;

    uint8_t *sk_i = tu_hexm(v, "sk_i", &n);
    ini->auth.key = import_priv(CL_KEY_P256, CL_KEY_USAGE_ECDH, sk_i, n);
    ini->auth.type = CL_KEY_P256;
    ini->auth.static_dh = true;
    ini->auth.id_cred = tu_hexm(v, "id_cred_i", &ini->auth.id_cred_len);
    ini->auth.cred = tu_hexm(v, "cred_i", &ini->auth.cred_len);
    uint8_t *sk_r = tu_hexm(v, "sk_r", &n);
    res->auth.key = import_priv(CL_KEY_P256, CL_KEY_USAGE_ECDH, sk_r, n);
    res->auth.type = CL_KEY_P256;
    res->auth.static_dh = true;
    res->auth.id_cred = tu_hexm(v, "id_cred_r", &res->auth.id_cred_len);
    res->auth.cred = tu_hexm(v, "cred_r", &res->auth.cred_len);

    ini->peer_id_cred = res->auth.id_cred;
    ini->peer_id_cred_len = res->auth.id_cred_len;
    ini->peer_cred = res->auth.cred;
    ini->peer_cred_len = res->auth.cred_len;
    uint8_t *x = tu_hexm(v, "pk_r_x", &nx), *y = tu_hexm(v, "pk_r_y", &ny);
    ini->peer_pub[0] = 0x04;
    memcpy(ini->peer_pub + 1, x, nx);
    memcpy(ini->peer_pub + 1 + nx, y, ny);
    ini->peer_pub_len = 1 + nx + ny;
    res->peer_id_cred = ini->auth.id_cred;
    res->peer_id_cred_len = ini->auth.id_cred_len;
    res->peer_cred = ini->auth.cred;
    res->peer_cred_len = ini->auth.cred_len;
    x = tu_hexm(v, "pk_i_x", &nx);
    y = tu_hexm(v, "pk_i_y", &ny);
    res->peer_pub[0] = 0x04;
    memcpy(res->peer_pub + 1, x, nx);
    memcpy(res->peer_pub + 1 + nx, y, ny);
    res->peer_pub_len = 1 + nx + ny;
}

static void side_config(side_t *sd, size_t n_suites)
{
    sd->cfg.crypto = &crypto;
    sd->cfg.suites = sd->suites;
    sd->cfg.n_suites = n_suites;
    sd->cfg.auth = &sd->auth;
    sd->cfg.n_auth = 1;
    sd->cfg.peer_cred = peer_cred;
    sd->cfg.peer_cred_arg = sd;
}

static void side_free(side_t *sd)
{
    cl_key_destroy(&crypto, sd->auth.key);
    cl_key_destroy(&crypto, sd->peer_key);
}

/* Starts a session with the trace's connection id and ephemeral key injected. */
static void start(cl_edhoc_t *s, side_t *sd, cl_edhoc_role_t role, const cJSON *v,
                  const char *cid_key, const char *eph_key, cl_key_type_t eph_type)
{
    size_t cid_len, eph_len;
    uint8_t *cid = tu_hexm(v, cid_key, &cid_len);
    uint8_t *eph = tu_hexm(v, eph_key, &eph_len);
    assert_int_equal(cl_edhoc_init(s, &sd->cfg, role, cid, cid_len), CL_OK);
    assert_int_equal(
        cl_edhoc_test_set_ephemeral(s, import_priv(eph_type, CL_KEY_USAGE_ECDH, eph, eph_len)),
        CL_OK);
}

static void expect_hex(const uint8_t *got, size_t len, const cJSON *v, const char *key)
{
    size_t n;
    uint8_t *exp = tu_hexm(v, key, &n);
    tu_assert_bytes(got, len, exp, n);
}

/* Full trace run: messages byte for byte, then the exporter / OSCORE / key update values. */
static void run_trace(const char *name, side_t *ini, side_t *res, cl_key_type_t dh, int method,
                      int suite)
{
    const cJSON *v = vals(name);
    cl_edhoc_t i, r;
    uint8_t m[1024];
    size_t len;

    start(&i, ini, CL_EDHOC_INITIATOR, v, "c_i", "x", dh);
    start(&r, res, CL_EDHOC_RESPONDER, v, "c_r", "y", dh);
    assert_int_equal(cl_edhoc_message_1(&i, method, suite, NULL, 0, m, sizeof m, &len), CL_OK);
    expect_hex(m, len, v, "message_1");
    assert_int_equal(cl_edhoc_process_message_1(&r, m, len), CL_OK);
    assert_int_equal(cl_edhoc_message_2(&r, NULL, 0, m, sizeof m, &len), CL_OK);
    expect_hex(m, len, v, "message_2");
    assert_int_equal(cl_edhoc_process_message_2(&i, m, len), CL_OK);
    assert_int_equal(cl_edhoc_message_3(&i, NULL, 0, m, sizeof m, &len), CL_OK);
    expect_hex(m, len, v, "message_3");
    assert_int_equal(cl_edhoc_process_message_3(&r, m, len), CL_OK);
    assert_int_equal(cl_edhoc_message_4(&r, NULL, 0, m, sizeof m, &len), CL_OK);
    expect_hex(m, len, v, "message_4");
    assert_int_equal(cl_edhoc_process_message_4(&i, m, len), CL_OK);

    /* PRK_out and PRK_exporter on both sides. */
    expect_hex(i.prk_out, 32, v, "prk_out");
    expect_hex(r.prk_out, 32, v, "prk_out");
    expect_hex(r.prk_exporter, 32, v, "prk_exporter");

    /* Appendix A.1 OSCORE parameters. */
    uint8_t ms_i[16], salt_i[8], ms_r[16], salt_r[8];
    cl_oscore_params_t pi, pr;
    assert_int_equal(cl_edhoc_oscore_params(&i, ms_i, salt_i, &pi), CL_OK);
    assert_int_equal(cl_edhoc_oscore_params(&r, ms_r, salt_r, &pr), CL_OK);
    expect_hex(ms_i, 16, v, "oscore_master_secret");
    expect_hex(salt_i, 8, v, "oscore_master_salt");
    tu_assert_bytes(ms_r, 16, ms_i, 16);
    expect_hex(pi.sender_id, pi.sender_id_len, v, "oscore_client_sender_id");
    expect_hex(pr.sender_id, pr.sender_id_len, v, "oscore_server_sender_id");
    /* The derived OSCORE contexts talk to each other. */
    cl_oscore_ctx_t oc, os;
    memset(&oc, 0, sizeof oc);
    memset(&os, 0, sizeof os);
    assert_int_equal(cl_oscore_ctx_init(&oc, &crypto, &pi), CL_OK);
    assert_int_equal(cl_oscore_ctx_init(&os, &crypto, &pr), CL_OK);
    const uint8_t get[] = {0x40, 0x01, 0x00, 0x01, 0xb5, 'h', 'e', 'l', 'l', 'o'};
    uint8_t prot[128], back[128];
    size_t prot_len, back_len;
    cl_oscore_req_t creq, sreq;
    assert_int_equal(
        cl_oscore_protect_request(&oc, get, sizeof get, prot, sizeof prot, &prot_len, &creq),
        CL_OK);
    cl_oscore_ctx_t *list[] = {&os};
    cl_oscore_ctx_list_t l = {list, 1};
    cl_oscore_ctx_t *found;
    assert_int_equal(cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, prot, prot_len, back,
                                                 sizeof back, &back_len, &found, &sreq),
                     CL_OK);
    tu_assert_bytes(back, back_len, get, sizeof get);
    cl_oscore_ctx_free(&oc);
    cl_oscore_ctx_free(&os);

    /* EDHOC_KeyUpdate with the trace's context. */
    size_t ctx_len;
    uint8_t *kctx = tu_hexm(v, "key_update_context", &ctx_len);
    assert_int_equal(cl_edhoc_key_update(&i, kctx, ctx_len), CL_OK);
    assert_int_equal(cl_edhoc_key_update(&r, kctx, ctx_len), CL_OK);
    expect_hex(i.prk_out, 32, v, "key_update_prk_out");
    expect_hex(r.prk_exporter, 32, v, "key_update_prk_exporter");
    assert_int_equal(cl_edhoc_oscore_params(&r, ms_r, salt_r, &pr), CL_OK);
    expect_hex(ms_r, 16, v, "key_update_oscore_master_secret");
    expect_hex(salt_r, 8, v, "key_update_oscore_master_salt");

    /* A finished session refuses further protocol steps. */
    assert_int_equal(cl_edhoc_message_2(&r, NULL, 0, m, sizeof m, &len), CL_ERR_STATE);
    cl_edhoc_free(&i);
    cl_edhoc_free(&r);
}

static void test_trace_1(void **state)
{
    (void)state;
    side_t ini, res;
    setup_trace1(&ini, &res);
    side_config(&ini, 1);
    side_config(&res, 1);
    run_trace("trace_1", &ini, &res, CL_KEY_X25519, 0, 0);
    side_free(&ini);
    side_free(&res);
}

static void test_trace_2_with_negotiation(void **state)
{
    (void)state;
    side_t ini, res;
    const cJSON *neg = cJSON_GetObjectItemCaseSensitive(trace("trace_2"), "negotiation");
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(neg, "first_message_1");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(neg, "error");
    setup_trace2(&ini, &res);
    side_config(&ini, 2);
    side_config(&res, 1);
    /*
     * Suite 6 uses X25519: for method 3 the initiator needs an X25519 static
     * key too (the trace does not give one; it never gets used).
     */
    cl_edhoc_auth_t auths[2] = {ini.auth, ini.auth};
    uint8_t pub[32];
    size_t pub_len;
    auths[1].type = CL_KEY_X25519;
    assert_int_equal(crypto.ops->key_generate(crypto.self, CL_KEY_X25519, CL_KEY_USAGE_ECDH,
                                              &auths[1].key, pub, sizeof pub, &pub_len),
                     CL_OK);
    ini.cfg.auth = auths;
    ini.cfg.n_auth = 2;

    /* First attempt: the initiator selects its preferred suite 6 (X25519). */
    cl_edhoc_t i, r;
    uint8_t m[256];
    size_t len;
    start(&i, &ini, CL_EDHOC_INITIATOR, first, "c_i", "x", CL_KEY_X25519);
    assert_int_equal(cl_edhoc_message_1(&i, 3, 6, NULL, 0, m, sizeof m, &len), CL_OK);
    /*
     * RFC 9529 3.1 prints a P-256 G_X for this suite-6 message_1 (X25519 is
     * suite 6's curve), so only METHOD, SUITES_I, the G_X length and C_I can be
     * compared; the responder below is fed the RFC's exact bytes.
     */
    size_t first_len;
    uint8_t *first_m1 = tu_hexm(first, "message_1", &first_len);
    assert_int_equal(len, first_len);
    tu_assert_bytes(m, 4, first_m1, 4);                           /* 03 06 58 20 */
    tu_assert_bytes(m + len - 1, 1, first_m1 + first_len - 1, 1); /* C_I 0e */
    assert_int_equal(cl_edhoc_init(&r, &res.cfg, CL_EDHOC_RESPONDER, (const uint8_t *)"\x27", 1),
                     CL_OK);
    assert_int_equal(cl_edhoc_process_message_1(&r, first_m1, first_len), CL_ERR_UNSUPPORTED);
    assert_int_equal(cl_edhoc_error_message(&r, CL_ERR_UNSUPPORTED, m, sizeof m, &len), CL_OK);
    expect_hex(m, len, err, "error_message");
    cl_edhoc_free(&r);
    /* The initiator learns SUITES_R from the error... */
    assert_true(cl_edhoc_is_error(m, len));
    assert_int_equal(cl_edhoc_process_message_2(&i, m, len), CL_ERR_PEER_ERROR);
    assert_int_equal(i.peer_err, CL_EDHOC_ERR_WRONG_SUITE);
    assert_int_equal(i.n_suites_peer, 1);
    assert_int_equal(i.suites_peer[0], 2);
    /* ...and the restarted session selects suite 2 with SUITES_I = [6, 2] (suite -1). */
    const cJSON *v = vals("trace_2");
    assert_int_equal(cl_edhoc_restart(&i), CL_OK);
    size_t x_len, cid_len;
    uint8_t *cid = tu_hexm(v, "c_i", &cid_len); /* the trace picks a new C_I for the retry */
    assert_int_equal(cl_edhoc_set_cid(&i, cid, cid_len), CL_OK);
    uint8_t *x = tu_hexm(v, "x", &x_len);
    assert_int_equal(
        cl_edhoc_test_set_ephemeral(&i, import_priv(CL_KEY_P256, CL_KEY_USAGE_ECDH, x, x_len)),
        CL_OK);
    assert_int_equal(cl_edhoc_message_1(&i, 3, -1, NULL, 0, m, sizeof m, &len), CL_OK);
    expect_hex(m, len, v, "message_1");
    cl_edhoc_free(&i);

    /* The whole trace 2 byte for byte. */
    run_trace("trace_2", &ini, &res, CL_KEY_P256, 3, 2);
    cl_key_destroy(&crypto, auths[1].key);
    side_free(&ini);
    side_free(&res);
}

/* ---- RFC 9529 section 4: invalid messages ---- */

static void test_invalid_traces(void **state)
{
    (void)state;
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(vectors, "invalid_traces"), "cases");
    side_t ini, res;
    setup_trace2(&ini, &res);
    side_config(&ini, 2);
    /* The responder supports suites 0 and 2 so that X25519 and P-256 inputs reach the crypto. */
    res.suites[0] = 2;
    res.suites[1] = 0;
    side_config(&res, 2);
    cl_edhoc_auth_t auths[2] = {res.auth, res.auth};
    auths[1].type = CL_KEY_X25519; /* a second (unused) credential so suite 0 is acceptable */
    res.cfg.auth = auths;
    res.cfg.n_auth = 2;
    const cJSON *v2 = vals("trace_2");
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const char *item = tu_str(c, "invalid_item");
        const char *name = tu_str(c, "name");
        size_t len;
        uint8_t *bytes = tu_hexm(c, "hex", &len);
        cl_status_t st;
        if (strcmp(item, "message_1") == 0) {
            cl_edhoc_t r;
            assert_int_equal(
                cl_edhoc_init(&r, &res.cfg, CL_EDHOC_RESPONDER, (const uint8_t *)"\x27", 1), CL_OK);
            st = cl_edhoc_process_message_1(&r, bytes, len);
            if (st == CL_OK) /* point errors surface when G_X is used */
                st = cl_edhoc_message_2(&r, NULL, 0, (uint8_t[512]){0}, 512, &len);
            cl_edhoc_free(&r);
        } else {
            /* message_2 / PLAINTEXT_2: the trace 2 initiator receives it. */
            cl_edhoc_t i;
            uint8_t m[256], m2[256];
            size_t mlen;
            start(&i, &ini, CL_EDHOC_INITIATOR, v2, "c_i", "x", CL_KEY_P256);
            i.suites_peer[0] = 2;
            i.n_suites_peer = 1;
            assert_int_equal(cl_edhoc_message_1(&i, 3, -1, NULL, 0, m, sizeof m, &mlen), CL_OK);
            if (strcmp(item, "message_2") == 0) {
                st = cl_edhoc_process_message_2(&i, bytes, len);
            } else {
                /* Encrypt the invalid PLAINTEXT_2 with the trace's TH_2 / PRK_2e keystream. */
                size_t g_len, th_len, prk_len;
                uint8_t *g_y = tu_hexm(v2, "g_y", &g_len);
                uint8_t *th2 = tu_hexm(v2, "th_2", &th_len);
                uint8_t *prk = tu_hexm(v2, "prk_2e", &prk_len);
                uint8_t info[64], ks[64];
                cl_cbor_enc_t e;
                size_t info_len;
                cl_cbor_enc_init(&e, info, sizeof info);
                cl_cbor_enc_uint(&e, 0);
                cl_cbor_enc_bstr(&e, th2, th_len);
                cl_cbor_enc_uint(&e, len);
                assert_int_equal(cl_cbor_enc_finish(&e, &info_len), CL_OK);
                assert_int_equal(cl_hkdf_expand(&crypto, prk, prk_len, info, info_len, ks, len),
                                 CL_OK);
                cl_cbor_enc_init(&e, m2, sizeof m2);
                cl_cbor_enc_bstr_head(&e, g_len + len);
                cl_cbor_enc_raw(&e, g_y, g_len);
                size_t head;
                assert_int_equal(cl_cbor_enc_finish(&e, &head), CL_OK);
                for (size_t k = 0; k < len; k++)
                    m2[head + k] = (uint8_t)(bytes[k] ^ ks[k]);
                st = cl_edhoc_process_message_2(&i, m2, head + len);
            }
            cl_edhoc_free(&i);
        }
        printf("  invalid trace '%s' (%s): %s\n", name, item, cl_status_str(st));
        assert_int_not_equal(st, CL_OK);
        /* Suite 24 is not implemented: "wrong selected suite" is the right answer. */
        if (strstr(name, "length of ephemeral key") != NULL)
            assert_int_equal(st, CL_ERR_UNSUPPORTED);
        else if (strstr(name, "length of MAC") != NULL)
            assert_true(st == CL_ERR_AUTH || st == CL_ERR_BAD_INPUT);
        else
            assert_int_equal(st, CL_ERR_BAD_INPUT);
        n++;
    }
    assert_int_equal(n, 15);
    side_free(&ini);
    side_free(&res);
}

/* ---- negatives on a working trace-1 setup ---- */

typedef struct run {
    side_t ini, res;
    cl_edhoc_t i, r;
    uint8_t m1[256], m2[512], m3[512];
    size_t m1_len, m2_len, m3_len;
} run_t;

static void run_to_m3(run_t *t)
{
    setup_trace1(&t->ini, &t->res);
    side_config(&t->ini, 1);
    side_config(&t->res, 1);
    assert_int_equal(
        cl_edhoc_init(&t->i, &t->ini.cfg, CL_EDHOC_INITIATOR, (const uint8_t *)"\x2d", 1), CL_OK);
    assert_int_equal(
        cl_edhoc_init(&t->r, &t->res.cfg, CL_EDHOC_RESPONDER, (const uint8_t *)"\x18", 1), CL_OK);
    assert_int_equal(cl_edhoc_message_1(&t->i, 0, 0, NULL, 0, t->m1, sizeof t->m1, &t->m1_len),
                     CL_OK);
    assert_int_equal(cl_edhoc_process_message_1(&t->r, t->m1, t->m1_len), CL_OK);
    assert_int_equal(cl_edhoc_message_2(&t->r, NULL, 0, t->m2, sizeof t->m2, &t->m2_len), CL_OK);
    assert_int_equal(cl_edhoc_process_message_2(&t->i, t->m2, t->m2_len), CL_OK);
    assert_int_equal(cl_edhoc_message_3(&t->i, NULL, 0, t->m3, sizeof t->m3, &t->m3_len), CL_OK);
}

static void run_free(run_t *t)
{
    cl_edhoc_free(&t->i);
    cl_edhoc_free(&t->r);
    side_free(&t->ini);
    side_free(&t->res);
}

static void test_tampered_messages(void **state)
{
    (void)state;
    /* Every flipped byte of message_2 and message_3 makes the session fail. */
    for (int which = 2; which <= 3; which++) {
        run_t base;
        run_to_m3(&base);
        size_t len = which == 2 ? base.m2_len : base.m3_len;
        run_free(&base);
        for (size_t pos = 0; pos < len; pos++) {
            run_t t;
            run_to_m3(&t);
            if (which == 2) {
                cl_edhoc_t i2;
                assert_int_equal(
                    cl_edhoc_init(&i2, &t.ini.cfg, CL_EDHOC_INITIATOR, (const uint8_t *)"\x2d", 1),
                    CL_OK);
                uint8_t m1[256];
                size_t l1;
                /* fresh initiator and responder pair for message_2 tampering */
                cl_edhoc_t r2;
                assert_int_equal(
                    cl_edhoc_init(&r2, &t.res.cfg, CL_EDHOC_RESPONDER, (const uint8_t *)"\x18", 1),
                    CL_OK);
                assert_int_equal(cl_edhoc_message_1(&i2, 0, 0, NULL, 0, m1, sizeof m1, &l1), CL_OK);
                assert_int_equal(cl_edhoc_process_message_1(&r2, m1, l1), CL_OK);
                uint8_t m2[512];
                size_t l2;
                assert_int_equal(cl_edhoc_message_2(&r2, NULL, 0, m2, sizeof m2, &l2), CL_OK);
                m2[pos % l2] ^= 0x01;
                assert_int_not_equal(cl_edhoc_process_message_2(&i2, m2, l2), CL_OK);
                /* and the aborted session refuses to continue */
                assert_int_equal(cl_edhoc_message_3(&i2, NULL, 0, m2, sizeof m2, &l2),
                                 CL_ERR_STATE);
                cl_edhoc_free(&i2);
                cl_edhoc_free(&r2);
            } else {
                t.m3[pos] ^= 0x01;
                assert_int_not_equal(cl_edhoc_process_message_3(&t.r, t.m3, t.m3_len), CL_OK);
            }
            run_free(&t);
        }
    }
}

static void test_wrong_and_unknown_credentials(void **state)
{
    (void)state;
    /* The responder expects a different key for the initiator's credential: auth failure. */
    run_t t;
    run_to_m3(&t);
    uint8_t other[32];
    memset(other, 0x42, sizeof other);
    cl_key_t wrong = import_priv(CL_KEY_ED25519, CL_KEY_USAGE_SIGN, other, 32);
    uint8_t pub[32];
    size_t pub_len;
    assert_int_equal(crypto.ops->key_export_public(crypto.self, wrong, pub, sizeof pub, &pub_len),
                     CL_OK);
    cl_key_destroy(&crypto, t.res.peer_key);
    t.res.peer_key = import_pub(CL_KEY_ED25519, pub, pub_len);
    cl_key_destroy(&crypto, wrong);
    assert_int_equal(cl_edhoc_process_message_3(&t.r, t.m3, t.m3_len), CL_ERR_AUTH);
    run_free(&t);

    /* An unknown credential reference: CL_ERR_NOT_FOUND and error code 3 (true). */
    run_to_m3(&t);
    t.res.unknown = true;
    assert_int_equal(cl_edhoc_process_message_3(&t.r, t.m3, t.m3_len), CL_ERR_NOT_FOUND);
    uint8_t err[64];
    size_t err_len;
    assert_int_equal(cl_edhoc_error_message(&t.r, CL_ERR_NOT_FOUND, err, sizeof err, &err_len),
                     CL_OK);
    const uint8_t expect[] = {0x03, 0xf5};
    tu_assert_bytes(err, err_len, expect, sizeof expect);
    run_free(&t);

    /* Other failures give ERR_CODE 1 with a short diagnostic string. */
    assert_int_equal(cl_edhoc_error_message(NULL, CL_ERR_AUTH, err, sizeof err, &err_len), CL_OK);
    assert_int_equal(err[0], 0x01);
    assert_int_equal(err[1] >> 5, 3); /* tstr */
}

static void test_replay_and_order(void **state)
{
    (void)state;
    run_t t;
    run_to_m3(&t);
    assert_int_equal(cl_edhoc_process_message_3(&t.r, t.m3, t.m3_len), CL_OK);
    /* message_3 replayed to the finished session: refused. */
    assert_int_equal(cl_edhoc_process_message_3(&t.r, t.m3, t.m3_len), CL_ERR_STATE);
    /* message_3 of this session sent to another session (other ephemeral keys): refused. */
    run_t u;
    run_to_m3(&u);
    assert_int_not_equal(cl_edhoc_process_message_3(&u.r, t.m3, t.m3_len), CL_OK);
    run_free(&u);
    /* Out of order: message_2 before message_1 on a responder; message_3 before message_2. */
    cl_edhoc_t r, i;
    assert_int_equal(cl_edhoc_init(&r, &t.res.cfg, CL_EDHOC_RESPONDER, NULL, 0), CL_OK);
    uint8_t m[512];
    size_t len;
    assert_int_equal(cl_edhoc_message_2(&r, NULL, 0, m, sizeof m, &len), CL_ERR_STATE);
    assert_int_equal(cl_edhoc_process_message_3(&r, t.m3, t.m3_len), CL_ERR_STATE);
    assert_int_equal(cl_edhoc_init(&i, &t.ini.cfg, CL_EDHOC_INITIATOR, NULL, 0), CL_OK);
    assert_int_equal(cl_edhoc_process_message_2(&i, t.m2, t.m2_len), CL_ERR_STATE);
    assert_int_equal(cl_edhoc_message_3(&i, NULL, 0, m, sizeof m, &len), CL_ERR_STATE);
    /* Wrong role. */
    assert_int_equal(cl_edhoc_process_message_1(&i, t.m1, t.m1_len), CL_ERR_STATE);
    cl_edhoc_free(&r);
    cl_edhoc_free(&i);
    run_free(&t);
}

static void test_truncated_and_oversized(void **state)
{
    (void)state;
    run_t t;
    run_to_m3(&t);
    /* Every truncation of message_1 is refused by a fresh responder. */
    for (size_t n = 0; n < t.m1_len; n++) {
        cl_edhoc_t r;
        assert_int_equal(cl_edhoc_init(&r, &t.res.cfg, CL_EDHOC_RESPONDER, NULL, 0), CL_OK);
        assert_int_not_equal(cl_edhoc_process_message_1(&r, t.m1, n), CL_OK);
        cl_edhoc_free(&r);
    }
    /* Every truncation of message_3 is refused. */
    for (size_t n = 0; n < t.m3_len; n++) {
        run_t u;
        run_to_m3(&u);
        assert_int_not_equal(cl_edhoc_process_message_3(&u.r, u.m3, n), CL_OK);
        run_free(&u);
    }
    /* Trailing bytes after message_1's items are an EAD that must parse: garbage fails. */
    uint8_t big[300];
    memcpy(big, t.m1, t.m1_len);
    big[t.m1_len] = 0xff;
    cl_edhoc_t r;
    assert_int_equal(cl_edhoc_init(&r, &t.res.cfg, CL_EDHOC_RESPONDER, NULL, 0), CL_OK);
    assert_int_not_equal(cl_edhoc_process_message_1(&r, big, t.m1_len + 1), CL_OK);
    cl_edhoc_free(&r);
    /* Output buffers too small are reported, not overrun. */
    cl_edhoc_t i;
    assert_int_equal(cl_edhoc_init(&i, &t.ini.cfg, CL_EDHOC_INITIATOR, NULL, 0), CL_OK);
    uint8_t m[8];
    size_t len;
    assert_int_equal(cl_edhoc_message_1(&i, 0, 0, NULL, 0, m, sizeof m, &len),
                     CL_ERR_BUFFER_TOO_SMALL);
    cl_edhoc_free(&i);
    run_free(&t);
}

/* EAD: padding ignored, known items delivered, unknown critical items abort. */
static int ead_seen;
static cl_status_t ead_hook(void *arg, int message, int64_t label, const uint8_t *value, size_t len,
                            bool has_value)
{
    (void)arg;
    (void)value;
    (void)len;
    (void)has_value;
    if (label == 42 || label == -42) {
        ead_seen = message;
        return CL_OK;
    }
    return CL_ERR_NOT_FOUND;
}

static void test_ead(void **state)
{
    (void)state;
    side_t ini, res;
    setup_trace1(&ini, &res);
    side_config(&ini, 1);
    side_config(&res, 1);
    res.cfg.ead = ead_hook;
    ini.cfg.ead = ead_hook;
    const uint8_t ead_ok[] = {0x00, 0x41, 0xe9, 0x18, 0x2a, 0x42, 0x01, 0x02}; /* pad, 42:h'0102' */
    const uint8_t ead_nc[] = {0x17};   /* 23: unknown, non-critical */
    const uint8_t ead_crit[] = {0x36}; /* -23: unknown critical */
    cl_edhoc_t i, r;
    uint8_t m[512];
    size_t len;
    for (int k = 0; k < 3; k++) {
        const uint8_t *ead = k == 0 ? ead_ok : k == 1 ? ead_nc : ead_crit;
        size_t ead_len = k == 0 ? sizeof ead_ok : 1;
        ead_seen = 0;
        assert_int_equal(cl_edhoc_init(&i, &ini.cfg, CL_EDHOC_INITIATOR, NULL, 0), CL_OK);
        assert_int_equal(
            cl_edhoc_init(&r, &res.cfg, CL_EDHOC_RESPONDER, (const uint8_t *)"\x01", 1), CL_OK);
        assert_int_equal(cl_edhoc_message_1(&i, 0, 0, ead, ead_len, m, sizeof m, &len), CL_OK);
        cl_status_t st = cl_edhoc_process_message_1(&r, m, len);
        assert_int_equal(st, k == 2 ? CL_ERR_CRITICAL : CL_OK);
        if (k == 0)
            assert_int_equal(ead_seen, 1);
        if (k < 2) {
            /* EAD_2 / EAD_3 / EAD_4 reach the hook too. */
            assert_int_equal(cl_edhoc_message_2(&r, ead_ok, sizeof ead_ok, m, sizeof m, &len),
                             CL_OK);
            ead_seen = 0;
            assert_int_equal(cl_edhoc_process_message_2(&i, m, len), CL_OK);
            assert_int_equal(ead_seen, 2);
            assert_int_equal(cl_edhoc_message_3(&i, ead_ok, sizeof ead_ok, m, sizeof m, &len),
                             CL_OK);
            assert_int_equal(cl_edhoc_process_message_3(&r, m, len), CL_OK);
            assert_int_equal(ead_seen, 3);
            assert_int_equal(cl_edhoc_message_4(&r, ead_ok, sizeof ead_ok, m, sizeof m, &len),
                             CL_OK);
            assert_int_equal(cl_edhoc_process_message_4(&i, m, len), CL_OK);
            assert_int_equal(ead_seen, 4);
        }
        cl_edhoc_free(&i);
        cl_edhoc_free(&r);
    }
    /* Malformed EAD to send is refused. */
    assert_int_equal(cl_edhoc_init(&i, &ini.cfg, CL_EDHOC_INITIATOR, NULL, 0), CL_OK);
    const uint8_t bad[] = {0x41, 0x00};
    assert_int_equal(cl_edhoc_message_1(&i, 0, 0, bad, sizeof bad, m, sizeof m, &len),
                     CL_ERR_INVALID_ARG);
    cl_edhoc_free(&i);
    side_free(&ini);
    side_free(&res);
}

/* A refused method is error 1 (not 2); C_R must differ from C_I (3.3.3). */
static void test_method_and_cid_rules(void **state)
{
    (void)state;
    side_t ini, res;
    setup_trace1(&ini, &res);
    side_config(&ini, 1);
    side_config(&res, 1);
    cl_edhoc_t i, r;
    uint8_t m[512];
    size_t len;
    /* The responder has only a signature credential; method 3 asks for static DH. */
    cl_edhoc_auth_t dh = ini.auth;
    uint8_t pub[32];
    size_t pub_len;
    dh.type = CL_KEY_X25519;
    dh.static_dh = true;
    assert_int_equal(crypto.ops->key_generate(crypto.self, CL_KEY_X25519, CL_KEY_USAGE_ECDH,
                                              &dh.key, pub, sizeof pub, &pub_len),
                     CL_OK);
    ini.cfg.auth = &dh;
    assert_int_equal(cl_edhoc_init(&i, &ini.cfg, CL_EDHOC_INITIATOR, (const uint8_t *)"\x05", 1),
                     CL_OK);
    assert_int_equal(cl_edhoc_init(&r, &res.cfg, CL_EDHOC_RESPONDER, (const uint8_t *)"\x06", 1),
                     CL_OK);
    assert_int_equal(cl_edhoc_message_1(&i, 3, 0, NULL, 0, m, sizeof m, &len), CL_OK);
    assert_int_equal(cl_edhoc_process_message_1(&r, m, len), CL_ERR_UNSUPPORTED);
    assert_int_equal(cl_edhoc_error_message(&r, CL_ERR_UNSUPPORTED, m, sizeof m, &len), CL_OK);
    assert_int_equal(m[0], CL_EDHOC_ERR_UNSPECIFIED);
    cl_edhoc_free(&i);
    cl_edhoc_free(&r);
    cl_key_destroy(&crypto, dh.key);
    ini.cfg.auth = &ini.auth;

    /* Same connection identifier on both sides: message_2 refuses until C_R is changed. */
    assert_int_equal(cl_edhoc_init(&i, &ini.cfg, CL_EDHOC_INITIATOR, (const uint8_t *)"\x07", 1),
                     CL_OK);
    assert_int_equal(cl_edhoc_init(&r, &res.cfg, CL_EDHOC_RESPONDER, (const uint8_t *)"\x07", 1),
                     CL_OK);
    assert_int_equal(cl_edhoc_message_1(&i, 0, 0, NULL, 0, m, sizeof m, &len), CL_OK);
    assert_int_equal(cl_edhoc_process_message_1(&r, m, len), CL_OK);
    assert_int_equal(cl_edhoc_message_2(&r, NULL, 0, m, sizeof m, &len), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_edhoc_set_cid(&r, (const uint8_t *)"\x08", 1), CL_OK);
    assert_int_equal(cl_edhoc_message_2(&r, NULL, 0, m, sizeof m, &len), CL_OK);
    assert_int_equal(cl_edhoc_process_message_2(&i, m, len), CL_OK);
    assert_int_equal(cl_edhoc_set_cid(&r, (const uint8_t *)"\x09", 1), CL_ERR_STATE);
    cl_edhoc_free(&i);
    cl_edhoc_free(&r);
    side_free(&ini);
    side_free(&res);
}

/* Received error messages are (ERR_CODE, ERR_INFO) exactly, typed per code. */
static void test_error_message_parsing(void **state)
{
    (void)state;
    side_t ini, res;
    setup_trace1(&ini, &res);
    side_config(&ini, 1);
    struct {
        const char *hex;
        cl_status_t want;
        int code;
    } cases[] = {
        {"03f5", CL_ERR_PEER_ERROR, 3},     /* unknown credential, true */
        {"0161", CL_ERR_BAD_INPUT, 0},      /* truncated tstr */
        {"016161", CL_ERR_PEER_ERROR, 1},   /* "a" */
        {"01", CL_ERR_BAD_INPUT, 0},        /* no ERR_INFO */
        {"016161ff", CL_ERR_BAD_INPUT, 0},  /* trailing bytes */
        {"0300", CL_ERR_BAD_INPUT, 0},      /* code 3 needs true */
        {"0202", CL_ERR_PEER_ERROR, 2},     /* SUITES_R = 2 */
        {"02820200", CL_ERR_PEER_ERROR, 2}, /* SUITES_R = [2, 0] */
        {"028102", CL_ERR_BAD_INPUT, 0},    /* one-element array */
        {"0061", CL_ERR_BAD_INPUT, 0},      /* code 0 is reserved */
        {"20f6", CL_ERR_PEER_ERROR, -1},    /* unknown code, any ERR_INFO */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cl_edhoc_t i;
        uint8_t m[256], err[8];
        size_t len, err_len = tu_hex(cases[k].hex, err, sizeof err);
        assert_int_equal(cl_edhoc_init(&i, &ini.cfg, CL_EDHOC_INITIATOR, NULL, 0), CL_OK);
        assert_int_equal(cl_edhoc_message_1(&i, 0, 0, NULL, 0, m, sizeof m, &len), CL_OK);
        assert_true(cl_edhoc_is_error(err, err_len));
        assert_int_equal(cl_edhoc_process_message_2(&i, err, err_len), cases[k].want);
        assert_int_equal(i.peer_err, cases[k].code);
        /* an error is never answered with an error */
        if (cases[k].want == CL_ERR_PEER_ERROR)
            assert_int_equal(cl_edhoc_error_message(&i, CL_ERR_PEER_ERROR, m, sizeof m, &len),
                             CL_ERR_STATE);
        cl_edhoc_free(&i);
    }
    side_free(&ini);
    side_free(&res);
}

static void test_cid_and_framing(void **state)
{
    (void)state;
    uint8_t out[16], cid[CL_EDHOC_MAX_CID];
    size_t len, cid_len, msg_len;
    const uint8_t *msg;
    bool m1;
    /* 3.3.2 examples */
    struct {
        const char *cid, *enc;
    } ex[] = {{"21", "21"},   {"0d", "0d"},       {"18", "4118"},
              {"38", "4138"}, {"abcd", "42abcd"}, {"", "40"}};
    for (size_t k = 0; k < sizeof ex / sizeof ex[0]; k++) {
        uint8_t c[8], e[8];
        size_t cl = tu_hex(ex[k].cid, c, sizeof c), el = tu_hex(ex[k].enc, e, sizeof e);
        assert_int_equal(cl_edhoc_encode_cid(c, cl, out, sizeof out, &len), CL_OK);
        tu_assert_bytes(out, len, e, el);
        /* as a CoAP request prefix followed by a 1-byte message */
        out[len] = 0x58;
        assert_int_equal(cl_edhoc_split_request(out, len + 1, &m1, cid, &cid_len, &msg, &msg_len),
                         CL_OK);
        assert_false(m1);
        tu_assert_bytes(cid, cid_len, c, cl);
        assert_int_equal(msg_len, 1);
    }
    assert_int_equal(cl_edhoc_encode_cid(NULL, 0, out, sizeof out, &len), CL_OK);
    assert_int_equal(out[0], 0xf5);
    const uint8_t req[] = {0xf5, 0x03, 0x02};
    assert_int_equal(cl_edhoc_split_request(req, sizeof req, &m1, cid, &cid_len, &msg, &msg_len),
                     CL_OK);
    assert_true(m1);
    assert_int_equal(msg_len, 2);
    /* surplus bstr prefix, nothing after the prefix, empty payload */
    const uint8_t bad1[] = {0x41, 0x0e, 0x58}, bad2[] = {0xf5};
    assert_int_equal(cl_edhoc_split_request(bad1, sizeof bad1, &m1, cid, &cid_len, &msg, &msg_len),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(cl_edhoc_split_request(bad2, sizeof bad2, &m1, cid, &cid_len, &msg, &msg_len),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(cl_edhoc_split_request(bad2, 0, &m1, cid, &cid_len, &msg, &msg_len),
                     CL_ERR_BAD_INPUT);
    printf("sizeof(cl_edhoc_t) = %zu bytes\n", sizeof(cl_edhoc_t));
}

static int setup(void **state)
{
    (void)state;
    tu_crypto(&crypto, 0);
    vectors = tu_load_vectors("edhoc-rfc9529.json");
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
        cmocka_unit_test(test_trace_1),
        cmocka_unit_test(test_trace_2_with_negotiation),
        cmocka_unit_test(test_invalid_traces),
        cmocka_unit_test(test_tampered_messages),
        cmocka_unit_test(test_wrong_and_unknown_credentials),
        cmocka_unit_test(test_replay_and_order),
        cmocka_unit_test(test_truncated_and_oversized),
        cmocka_unit_test(test_ead),
        cmocka_unit_test(test_method_and_cid_rules),
        cmocka_unit_test(test_error_message_parsing),
        cmocka_unit_test(test_cid_and_framing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
