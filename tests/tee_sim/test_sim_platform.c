/*
 * test_sim_platform.c - the simulated platform directory and quoting
 * enclave (tee/sim/platform.c, qe.c): files created with private modes and
 * reused, refusal of readable secrets, report MACs checked by the QE (and a
 * report of another platform refused), and the DCAP quote v3 bytes: header,
 * body, attestation-key signature over [0,432), QE report binding, PCK
 * signature, certification data type 5 chaining to cl_sim_root_pem().
 * Signatures are checked here with OpenSSL directly, not with the code under
 * test.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "cloister/tee.h"
#include "cloister/tee_sim.h"

static const char *const files[] = {"platform.secret", "attestation.key", "pck.key", "pck.pem"};

typedef struct fx {
    char dir[64];
    char plat[96];
} fx_t;

static void rm_plat(const char *plat)
{
    char p[256];
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", plat, files[i]);
        (void)unlink(p);
    }
    (void)rmdir(plat);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/cl-simp-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->plat, sizeof f->plat, "%s/a/plat", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    char p[128];
    rm_plat(f->plat);
    snprintf(p, sizeof p, "%s/b", f->dir);
    rm_plat(p);
    snprintf(p, sizeof p, "%s/env", f->dir);
    rm_plat(p);
    snprintf(p, sizeof p, "%s/a", f->dir);
    (void)rmdir(p);
    (void)rmdir(f->dir);
    free(f);
    return 0;
}

static cl_sim_identity_t ident(void)
{
    cl_sim_identity_t id;
    memset(&id, 0, sizeof id);
    memset(id.mr_enclave, 0xe1, 32);
    memset(id.mr_signer, 0x51, 32);
    id.isv_prod_id = 1;
    id.isv_svn = 4;
    id.attr_flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT;
    id.attr_xfrm = 3;
    memcpy(id.cpu_svn, CL_SIM_CPU_SVN, 16);
    return id;
}

static mode_t mode_of(const char *dir, const char *name)
{
    char p[256];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    assert_int_equal(stat(p, &st), 0);
    return st.st_mode & 07777;
}

static void test_dir_created(void **state)
{
    fx_t *f = *state;
    cl_sim_platform_t *p = NULL, *q = NULL;
    char path[256];
    struct stat st;
    const cl_tee_platform_t *t1, *t2;
    cl_sim_identity_t id = ident();
    cl_seal_envelope_t env = {.purpose = CL_SEAL_PURPOSE_TEST};
    uint8_t blob[700], pt[16];
    size_t len, pl;

    assert_int_equal(cl_sim_platform_open(f->plat, &p), CL_OK);
    assert_int_equal(stat(f->plat, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0700);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(mode_of(f->plat, files[i]), 0600);
    snprintf(path, sizeof path, "%s/platform.secret", f->plat);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 16);
    /* reopening reuses the secret: a blob sealed before unseals after */
    assert_int_equal(cl_sim_platform_bind(p, &id, &t1), CL_OK);
    assert_int_equal(cl_seal(t1, CL_SGX_KEYPOLICY_MRENCLAVE, &env, (const uint8_t *)"x", 1, blob,
                             sizeof blob, &len),
                     CL_OK);
    cl_sim_platform_close(p);
    assert_int_equal(cl_sim_platform_open(f->plat, &q), CL_OK);
    assert_int_equal(cl_sim_platform_bind(q, &id, &t2), CL_OK);
    assert_int_equal(cl_unseal(t2, blob, len, pt, sizeof pt, &pl, &env), CL_OK);
    assert_int_equal(pl, 1);
    cl_sim_platform_close(q);
    cl_sim_platform_close(NULL);
}

static void test_refuses_readable(void **state)
{
    fx_t *f = *state;
    cl_sim_platform_t *p = NULL;
    char path[256];
    FILE *fp;

    assert_int_equal(cl_sim_platform_open(f->plat, &p), CL_OK);
    cl_sim_platform_close(p);
    snprintf(path, sizeof path, "%s/platform.secret", f->plat);
    assert_int_equal(chmod(path, 0644), 0);
    p = (cl_sim_platform_t *)1;
    assert_int_equal(cl_sim_platform_open(f->plat, &p), CL_ERR_STATE);
    assert_null(p);
    assert_int_equal(chmod(path, 0600), 0);
    snprintf(path, sizeof path, "%s/attestation.key", f->plat);
    assert_int_equal(chmod(path, 0640), 0);
    assert_int_equal(cl_sim_platform_open(f->plat, &p), CL_ERR_STATE);
    assert_int_equal(chmod(path, 0600), 0);
    /* a group-readable directory */
    assert_int_equal(chmod(f->plat, 0750), 0);
    assert_int_equal(cl_sim_platform_open(f->plat, &p), CL_ERR_STATE);
    assert_int_equal(chmod(f->plat, 0700), 0);
    /* a secret of the wrong size */
    snprintf(path, sizeof path, "%s/platform.secret", f->plat);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs("short", fp);
    fclose(fp);
    assert_int_equal(cl_sim_platform_open(f->plat, &p), CL_ERR_BAD_INPUT);
}

static void test_env_dir(void **state)
{
    fx_t *f = *state;
    cl_sim_platform_t *p = NULL;
    char dir[128];
    struct stat st;

    snprintf(dir, sizeof dir, "%s/env", f->dir);
    assert_int_equal(setenv("CLOISTER_SIM_DIR", dir, 1), 0);
    assert_int_equal(cl_sim_platform_open(NULL, &p), CL_OK);
    assert_int_equal(unsetenv("CLOISTER_SIM_DIR"), 0);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(mode_of(dir, "platform.secret"), 0600);
    cl_sim_platform_close(p);
}

/* ---- quote checks with OpenSSL only ---- */

static uint16_t g16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t g32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static EVP_PKEY *pub_from_xy(const uint8_t xy[64])
{
    uint8_t pt[65];
    char group[] = "prime256v1";
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;

    pt[0] = 4;
    memcpy(pt + 1, xy, 64);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt);
    params[2] = OSSL_PARAM_construct_end();
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params), 1);
    EVP_PKEY_CTX_free(ctx);
    return k;
}

static int verify_raw(EVP_PKEY *k, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    unsigned char *der = NULL;
    int der_len, ok;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    assert_int_equal(ECDSA_SIG_set0(s, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)), 1);
    der_len = i2d_ECDSA_SIG(s, &der);
    assert_true(der_len > 0);
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
    ok = EVP_DigestVerify(md, der, (size_t)der_len, msg, len);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(s);
    ERR_clear_error();
    return ok;
}

static void cn_of(X509 *c, char *out, size_t size)
{
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(c), NID_commonName, out,
                                          (int)size) > 0);
}

static void test_quote(void **state)
{
    fx_t *f = *state;
    cl_sim_platform_t *p = NULL;
    const cl_tee_platform_t *t;
    cl_sim_identity_t id = ident(), qe;
    uint8_t rd[64], report[CL_SGX_REPORT_LEN], quote[CL_CORE_MAX_QUOTE], h[32], auth_h_in[96];
    size_t qlen = 0, sdl;
    const uint8_t *sd;
    cl_sgx_report_body_t body;
    EVP_PKEY *ak;
    uint16_t auth_len;
    uint32_t cert_len;

    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(i * 3);
    assert_int_equal(cl_sim_platform_open(f->plat, &p), CL_OK);
    assert_int_equal(cl_sim_platform_bind(p, &id, &t), CL_OK);
    assert_int_equal(t->get_report(t->self, NULL, rd, report), CL_OK);
    cl_sgx_report_body_decode(report, &body);
    assert_memory_equal(body.mr_enclave, id.mr_enclave, 32);
    assert_memory_equal(body.report_data, rd, 64);
    assert_int_equal(body.isv_svn, 4);

    assert_int_equal(cl_sim_qe_quote(p, report, sizeof report, quote, 1000, &qlen),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(cl_sim_qe_quote(p, report, sizeof report - 1, quote, sizeof quote, &qlen),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(cl_sim_qe_quote(p, report, sizeof report, quote, sizeof quote, &qlen), CL_OK);
    assert_true(qlen >= 1020 && qlen <= CL_CORE_MAX_QUOTE);
    /* header */
    assert_int_equal(g16(quote + 0), 3);
    assert_int_equal(g16(quote + 2), 2);
    assert_int_equal(g32(quote + 4), 0);
    assert_int_equal(g16(quote + 8), CL_SIM_QE_SVN);
    assert_int_equal(g16(quote + 10), CL_SIM_PCE_SVN);
    assert_memory_equal(quote + 12, CL_SIM_VENDOR_ID, 16);
    {
        static const uint8_t intel[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                          0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};
        assert_memory_not_equal(quote + 12, intel, 16);
    }
    assert_memory_equal(quote + 44, CL_SIM_USER_DATA_MAGIC, 4);
    /* body copied */
    assert_memory_equal(quote + 48, report, CL_SGX_REPORT_BODY_LEN);
    sdl = g32(quote + 432);
    assert_int_equal(sdl, qlen - 436);
    sd = quote + 436;
    /* signature by the attestation key over [0,432) */
    ak = pub_from_xy(sd + 64);
    assert_int_equal(verify_raw(ak, quote, 432, sd), 1);
    quote[100] ^= 1;
    assert_int_equal(verify_raw(ak, quote, 432, sd), 0);
    quote[100] ^= 1;
    EVP_PKEY_free(ak);
    /* QE report: its identity, report_data = SHA-256(ak || auth) || 0^32 */
    cl_sgx_report_body_decode(sd + 128, &body);
    cl_sim_qe_identity(&qe);
    assert_memory_equal(body.mr_enclave, qe.mr_enclave, 32);
    assert_memory_equal(body.mr_signer, qe.mr_signer, 32);
    assert_int_equal(body.isv_prod_id, CL_SIM_QE_PROD_ID);
    auth_len = g16(sd + 576);
    assert_int_equal(auth_len, 32);
    memcpy(auth_h_in, sd + 64, 64);
    memcpy(auth_h_in + 64, sd + 578, 32);
    assert_int_equal(EVP_Digest(auth_h_in, 96, h, NULL, EVP_sha256(), NULL), 1);
    assert_memory_equal(body.report_data, h, 32);
    for (int i = 32; i < 64; i++)
        assert_int_equal(body.report_data[i], 0);
    /* certification data: type 5, PEM chain leaf || intermediate || root */
    assert_int_equal(g16(sd + 578 + 32), 5);
    cert_len = g32(sd + 580 + 32);
    assert_int_equal(584 + 32 + cert_len, sdl);
    {
        BIO *b = BIO_new_mem_buf(sd + 616, (int)cert_len);
        BIO *rb = BIO_new_mem_buf(cl_sim_root_pem(), -1);
        X509 *leaf = PEM_read_bio_X509(b, NULL, NULL, NULL);
        X509 *inter = PEM_read_bio_X509(b, NULL, NULL, NULL);
        X509 *root_in_quote = PEM_read_bio_X509(b, NULL, NULL, NULL);
        X509 *root = PEM_read_bio_X509(rb, NULL, NULL, NULL);
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        STACK_OF(X509) *untrusted = sk_X509_new_null();
        char cn[128];

        assert_non_null(leaf);
        assert_non_null(inter);
        assert_non_null(root_in_quote);
        assert_non_null(root);
        assert_int_equal(X509_cmp(root, root_in_quote), 0);
        cn_of(root, cn, sizeof cn);
        assert_string_equal(cn, CL_SIM_ROOT_CN);
        cn_of(inter, cn, sizeof cn);
        assert_string_equal(cn, "INSECURE SIMULATED PCK PLATFORM CA - DO NOT TRUST");
        cn_of(leaf, cn, sizeof cn);
        assert_string_equal(cn, "INSECURE SIMULATED SGX PCK Certificate - DO NOT TRUST");
        assert_int_equal(X509_STORE_add_cert(store, root), 1);
        assert_true(sk_X509_push(untrusted, inter) > 0);
        assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
        assert_int_equal(X509_verify_cert(ctx), 1);
        /* the QE report is signed by the PCK key of the leaf */
        assert_int_equal(verify_raw(X509_get0_pubkey(leaf), sd + 128, 384, sd + 512), 1);
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        sk_X509_free(untrusted);
        X509_free(leaf);
        X509_free(inter);
        X509_free(root_in_quote);
        X509_free(root);
        BIO_free(b);
        BIO_free(rb);
    }
    /* the embedded root is the shipped file */
    {
        FILE *fp = fopen(CL_SIM_PKI_DIR "/root.pem", "rb");
        char buf[4096];
        size_t n;
        assert_non_null(fp);
        n = fread(buf, 1, sizeof buf - 1, fp);
        fclose(fp);
        buf[n] = 0;
        assert_string_equal(buf, cl_sim_root_pem());
        assert_non_null(strstr(cl_sim_intermediate_pem(), "BEGIN CERTIFICATE"));
    }
    cl_sim_platform_close(p);
}

static void test_report_mac(void **state)
{
    fx_t *f = *state;
    cl_sim_platform_t *p = NULL, *other = NULL;
    const cl_tee_platform_t *t, *t2;
    cl_sim_identity_t id = ident();
    uint8_t rd[64] = {1}, report[CL_SGX_REPORT_LEN], quote[CL_CORE_MAX_QUOTE], ti[512];
    size_t qlen;
    char dir2[128];

    snprintf(dir2, sizeof dir2, "%s/b", f->dir);
    assert_int_equal(cl_sim_platform_open(f->plat, &p), CL_OK);
    assert_int_equal(cl_sim_platform_open(dir2, &other), CL_OK);
    assert_int_equal(cl_sim_platform_bind(p, &id, &t), CL_OK);
    assert_int_equal(cl_sim_platform_bind(other, &id, &t2), CL_OK);
    assert_int_equal(t->get_report(t->self, NULL, rd, report), CL_OK);
    /* every byte of body, key id and MAC matters */
    for (size_t i = 0; i < CL_SGX_REPORT_LEN; i += 7) {
        report[i] ^= 0x20;
        assert_int_equal(cl_sim_qe_quote(p, report, sizeof report, quote, sizeof quote, &qlen),
                         CL_ERR_AUTH);
        report[i] ^= 0x20;
    }
    report[CL_SGX_REPORT_LEN - 1] ^= 1;
    assert_int_equal(cl_sim_qe_quote(p, report, sizeof report, quote, sizeof quote, &qlen),
                     CL_ERR_AUTH);
    report[CL_SGX_REPORT_LEN - 1] ^= 1;
    assert_int_equal(cl_sim_qe_quote(p, report, sizeof report, quote, sizeof quote, &qlen), CL_OK);
    /* a report made on another platform, or for another target, is not the QE's */
    assert_int_equal(cl_sim_qe_quote(other, report, sizeof report, quote, sizeof quote, &qlen),
                     CL_ERR_AUTH);
    assert_int_equal(t2->get_report(t2->self, NULL, rd, report), CL_OK);
    assert_int_equal(cl_sim_qe_quote(p, report, sizeof report, quote, sizeof quote, &qlen),
                     CL_ERR_AUTH);
    memset(ti, 0, sizeof ti);
    memcpy(ti, id.mr_enclave, 32); /* targeted at the enclave itself */
    ti[CL_SGX_TI_ATTRIBUTES] = (uint8_t)id.attr_flags;
    ti[CL_SGX_TI_ATTRIBUTES + 8] = (uint8_t)id.attr_xfrm;
    assert_int_equal(t->get_report(t->self, ti, rd, report), CL_OK);
    assert_int_equal(cl_sim_qe_quote(p, report, sizeof report, quote, sizeof quote, &qlen),
                     CL_ERR_AUTH);
    /* ...which the enclave itself verifies with EGETKEY(REPORT) */
    {
        cl_sgx_key_request_t kr;
        uint8_t req[512], key[16], mac[16];
        size_t ml = 0;
        EVP_MAC *m = EVP_MAC_fetch(NULL, "CMAC", NULL);
        EVP_MAC_CTX *c = EVP_MAC_CTX_new(m);
        char cipher[] = "AES-128-CBC";
        OSSL_PARAM prm[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
                            OSSL_PARAM_construct_end()};
        memset(&kr, 0, sizeof kr);
        kr.key_name = CL_SGX_KEYSELECT_REPORT;
        memcpy(kr.key_id, report + CL_SGX_REPORT_KEYID, 32);
        cl_sgx_key_request_encode(&kr, req);
        assert_int_equal(t->get_key(t->self, req, key), CL_OK);
        assert_int_equal(EVP_MAC_init(c, key, 16, prm), 1);
        assert_int_equal(EVP_MAC_update(c, report, 384), 1);
        assert_int_equal(EVP_MAC_final(c, mac, &ml, 16), 1);
        assert_memory_equal(mac, report + CL_SGX_REPORT_MAC, 16);
        EVP_MAC_CTX_free(c);
        EVP_MAC_free(m);
    }
    cl_sim_platform_close(p);
    cl_sim_platform_close(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dir_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_readable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_mac, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
