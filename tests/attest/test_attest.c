/*
 * test_attest.c - the verifier (tee/verify): quotes in, reasons out.
 *
 * Two sources of quotes:
 *   - the simulated platform (tee/sim): a platform directory in a mkdtemp
 *     dir, an identity bound, EREPORT for the QE, cl_sim_qe_quote -> a real
 *     simulated quote v3 chained to the shipped sim root;
 *   - a tiny test quoting enclave in this file (tqe_*): its own attestation
 *     key and a PCK chain made with testca (root -> intermediate -> PCK),
 *     producing v3, v4 and v5 quotes and every malformed variant we want.
 * Then: the valid cases (OK_SIMULATED, never OK), one bit flipped in every
 * field range with the reason the table below expects, truncation at every
 * length and oversize, wrong root, expired / not yet valid PCK, wrong report
 * data and nonce, DEBUG, identity policies, the core's evidence map, and the
 * EAR JSON.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "testca.h"
#include "testutil.h"

#include "cloister/attest.h"
#include "cloister/cbor.h"
#include "cloister/crypto.h"
#include "cloister/tee.h"
#include "cloister/tee_sim.h"

#define QMAX CL_ATTEST_MAX_QUOTE_LEN

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void sha256(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_non_null(md);
    assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
    assert_int_equal(EVP_DigestUpdate(md, a, alen), 1);
    if (blen > 0)
        assert_int_equal(EVP_DigestUpdate(md, b, blen), 1);
    assert_int_equal(EVP_DigestFinal_ex(md, out, NULL), 1);
    EVP_MD_CTX_free(md);
}

/* ECDSA P-256 / SHA-256, raw r || s. */
static void sign_raw(EVP_PKEY *k, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t der_len = sizeof(der);
    const uint8_t *p = der;
    ECDSA_SIG *s;

    assert_non_null(md);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
    assert_int_equal(EVP_DigestSign(md, der, &der_len, msg, len), 1);
    EVP_MD_CTX_free(md);
    s = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    assert_non_null(s);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 32), 32);
    assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 32, 32), 32);
    ECDSA_SIG_free(s);
}

static EVP_PKEY *p256_new(uint8_t pub[65])
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    size_t n = 0;
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_octet_string_param(k, "encoded-pub-key", pub, 65, &n), 1);
    assert_int_equal(n, 65);
    return k;
}

/* DER certificate -> canonical PEM appended at out + *len. */
static void der_to_pem(const uint8_t *der, size_t der_len, char *out, size_t size, size_t *len)
{
    const uint8_t *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;

    assert_non_null(x);
    assert_non_null(b);
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    n = BIO_get_mem_data(b, &data);
    assert_true(n > 0 && *len + (size_t)n < size);
    memcpy(out + *len, data, (size_t)n);
    *len += (size_t)n;
    out[*len] = '\0';
    BIO_free(b);
    X509_free(x);
}

/* The sim QE's MRSIGNER as tee/sim documents it. */
static void sim_qe_mrsigner(uint8_t out[32])
{
    static const char label[] = "CLOISTER SIM QE MRSIGNER v1";
    sha256(label, sizeof(label) - 1, NULL, 0, out);
}

/* ------------------------------------------------------------------ */
/* The simulated platform                                              */
/* ------------------------------------------------------------------ */

static struct {
    char dir[64];
    cl_sim_platform_t *plat;
    /* test QE */
    EVP_PKEY *ak, *pck;
    uint8_t ak_pub[64];
    testca_t *root, *inter;
    char root_pem[2048];
    char chain[4096]; /* PCK leaf || intermediate */
    size_t chain_len;
    char chain_with_root[6144];
    size_t chain_with_root_len;
} S;

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rm_tree(path);
    }
    closedir(d);
    rmdir(dir);
}

static const uint8_t MRE[32] = {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x12};
static const uint8_t MRS[32] = {0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
                                0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
                                0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x23};
#define PRODID 7
#define SVN 3

static cl_sim_identity_t identity(bool debug)
{
    cl_sim_identity_t id;
    memset(&id, 0, sizeof(id));
    memcpy(id.mr_enclave, MRE, 32);
    memcpy(id.mr_signer, MRS, 32);
    id.isv_prod_id = PRODID;
    id.isv_svn = SVN;
    id.attr_flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT | (debug ? CL_SGX_FLAGS_DEBUG : 0);
    id.attr_xfrm = 3;
    memcpy(id.cpu_svn, CL_SIM_CPU_SVN, 16);
    return id;
}

static void report_data(uint8_t rd[64], uint8_t seed)
{
    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(seed + i);
}

/* A real simulated quote v3 for the identity and report data. */
static void sim_quote(const cl_sim_identity_t *id, const uint8_t rd[64], uint8_t *q, size_t *len)
{
    const cl_tee_platform_t *t = NULL;
    uint8_t report[CL_SGX_REPORT_LEN];

    assert_int_equal(cl_sim_platform_bind(S.plat, id, &t), CL_OK);
    assert_int_equal(t->get_report(t->self, NULL, rd, report), CL_OK);
    assert_int_equal(cl_sim_qe_quote(S.plat, report, sizeof(report), q, QMAX, len), CL_OK);
}

static cl_attest_policy_t policy_mre(void)
{
    cl_attest_policy_t p;
    memset(&p, 0, sizeof(p));
    memcpy(p.mr_enclave[0], MRE, 32);
    p.n_mr_enclave = 1;
    p.allow_simulated = true;
    return p;
}

/* ------------------------------------------------------------------ */
/* The test quoting enclave                                            */
/* ------------------------------------------------------------------ */

typedef struct qopt {
    uint16_t version;
    uint16_t key_type;
    uint32_t tee_type;
    uint16_t body_type;  /* v5 */
    uint32_t body_size;  /* v5 */
    const uint8_t *vendor;
    const char *magic;
    uint16_t outer_type; /* v4/v5 */
    uint16_t cert_type;
    size_t auth_len;
    bool bad_binding;
    bool qe_wrong_signer;
    bool qe_debug;
    const char *chain;
    size_t chain_len;
    uint64_t flags; /* enclave attributes */
} qopt_t;

static qopt_t qopt(uint16_t version)
{
    qopt_t o;
    memset(&o, 0, sizeof(o));
    o.version = version;
    o.key_type = 2;
    o.body_type = 1;
    o.body_size = 384;
    o.vendor = CL_ATTEST_SIM_QE_VENDOR_ID;
    o.magic = "SIM!";
    o.outer_type = 6;
    o.cert_type = 5;
    o.auth_len = 32;
    o.chain = S.chain;
    o.chain_len = S.chain_len;
    o.flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT;
    return o;
}

/* Builds a quote of the test QE; returns its length. */
static size_t tqe_quote(const qopt_t *o, const uint8_t rd[64], uint8_t *out)
{
    cl_sgx_report_body_t b;
    uint8_t auth[256], h[32];
    size_t off, signed_len, siglen_off, sig_off, outer_off = 0, qe_start, qe_off;

    assert_true(o->auth_len <= sizeof(auth));
    memset(out, 0, QMAX);
    put16(out, o->version);
    put16(out + 2, o->key_type);
    put32(out + 4, o->tee_type);
    put16(out + 8, 1);
    put16(out + 10, 1);
    memcpy(out + 12, o->vendor, 16);
    memset(out + 28, 0xab, 16);
    memcpy(out + 44, o->magic, 4);
    off = 48;
    if (o->version == 5) {
        put16(out + off, o->body_type);
        put32(out + off + 2, o->body_size);
        off += 6;
    }
    memset(&b, 0, sizeof(b));
    memcpy(b.cpu_svn, CL_SIM_CPU_SVN, 16);
    b.attr_flags = o->flags;
    b.attr_xfrm = 3;
    memcpy(b.mr_enclave, MRE, 32);
    memcpy(b.mr_signer, MRS, 32);
    b.isv_prod_id = PRODID;
    b.isv_svn = SVN;
    memcpy(b.report_data, rd, 64);
    cl_sgx_report_body_encode(&b, out + off);
    off += o->version == 5 ? o->body_size : 384;
    signed_len = off;
    siglen_off = off;
    off += 4;
    sig_off = off;
    off += 64;
    memcpy(out + off, S.ak_pub, 64);
    off += 64;
    if (o->version != 3) {
        outer_off = off;
        off += 6;
    }
    qe_start = off;
    /* QE report */
    for (size_t i = 0; i < o->auth_len; i++)
        auth[i] = (uint8_t)(0x80 + i);
    sha256(S.ak_pub, 64, auth, o->auth_len, h);
    if (o->bad_binding)
        h[5] ^= 1;
    memset(&b, 0, sizeof(b));
    memcpy(b.cpu_svn, CL_SIM_CPU_SVN, 16);
    b.attr_flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT | (o->qe_debug ? CL_SGX_FLAGS_DEBUG : 0);
    b.attr_xfrm = 3;
    sim_qe_mrsigner(b.mr_signer);
    if (o->qe_wrong_signer)
        b.mr_signer[31] ^= 0x40;
    b.isv_prod_id = 1;
    b.isv_svn = 1;
    memcpy(b.report_data, h, 32);
    qe_off = off;
    cl_sgx_report_body_encode(&b, out + off);
    off += 384;
    sign_raw(S.pck, out + qe_off, 384, out + off);
    off += 64;
    put16(out + off, (uint16_t)o->auth_len);
    memcpy(out + off + 2, auth, o->auth_len);
    off += 2 + o->auth_len;
    put16(out + off, o->cert_type);
    put32(out + off + 2, (uint32_t)o->chain_len);
    memcpy(out + off + 6, o->chain, o->chain_len);
    off += 6 + o->chain_len;
    if (o->version != 3) {
        put16(out + outer_off, o->outer_type);
        put32(out + outer_off + 2, (uint32_t)(off - qe_start));
    }
    put32(out + siglen_off, (uint32_t)(off - siglen_off - 4));
    sign_raw(S.ak, out, signed_len, out + sig_off);
    assert_true(off <= QMAX + 16);
    return off;
}

static int group_setup(void **state)
{
    uint8_t pub[65];
    testca_leaf_t leaf;
    const uint8_t *der;
    uint8_t *leaf_der;
    size_t der_len, n = 0;

    (void)state;
    /* simulated platform */
    strcpy(S.dir, "/tmp/cl-attest-XXXXXX");
    if (mkdtemp(S.dir) == NULL)
        return -1;
    if (cl_sim_platform_open(S.dir, &S.plat) != CL_OK)
        return -1;
    /* test QE: attestation key, PCK key, root -> intermediate -> PCK */
    S.ak = p256_new(pub);
    memcpy(S.ak_pub, pub + 1, 64);
    S.pck = p256_new(pub);
    S.root = testca_root_new("Test attestation root", 1);
    S.inter = testca_intermediate_new(S.root, "Test PCK platform CA", 2);
    if (S.root == NULL || S.inter == NULL)
        return -1;
    memset(&leaf, 0, sizeof(leaf));
    leaf.subject = "Test SGX PCK Certificate";
    leaf.type = CL_KEY_P256;
    leaf.pub = pub;
    leaf.pub_len = 65;
    leaf.serial = 3;
    leaf.not_before = -3600;
    leaf.not_after = 86400;
    leaf_der = testca_issue(S.inter, &leaf, &der_len);
    if (leaf_der == NULL)
        return -1;
    der_to_pem(leaf_der, der_len, S.chain, sizeof(S.chain), &S.chain_len);
    testca_free(leaf_der);
    der = testca_cert(S.inter, &der_len);
    der_to_pem(der, der_len, S.chain, sizeof(S.chain), &S.chain_len);
    der = testca_cert(S.root, &der_len);
    der_to_pem(der, der_len, S.root_pem, sizeof(S.root_pem), &n);
    memcpy(S.chain_with_root, S.chain, S.chain_len);
    memcpy(S.chain_with_root + S.chain_len, S.root_pem, n + 1);
    S.chain_with_root_len = S.chain_len + n;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cl_sim_platform_close(S.plat);
    rm_tree(S.dir);
    EVP_PKEY_free(S.ak);
    EVP_PKEY_free(S.pck);
    testca_destroy(S.inter);
    testca_destroy(S.root);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Results and constants                                               */
/* ------------------------------------------------------------------ */

static const cl_attest_result_t ALL_RESULTS[] = {
    CL_ATTEST_OK,               CL_ATTEST_OK_SIMULATED,       CL_ATTEST_ERR_MALFORMED,
    CL_ATTEST_ERR_VERSION,      CL_ATTEST_ERR_KEY_TYPE,       CL_ATTEST_ERR_TEE_TYPE,
    CL_ATTEST_ERR_CERT_TYPE,    CL_ATTEST_ERR_QUOTE_SIG,      CL_ATTEST_ERR_QE_BINDING,
    CL_ATTEST_ERR_QE_REPORT_SIG, CL_ATTEST_ERR_CHAIN,         CL_ATTEST_ERR_CERT_EXPIRED,
    CL_ATTEST_ERR_UNKNOWN_VENDOR, CL_ATTEST_ERR_QE_IDENTITY,  CL_ATTEST_ERR_SIMULATED,
    CL_ATTEST_ERR_DEBUG,        CL_ATTEST_ERR_ATTRIBUTES,     CL_ATTEST_ERR_MRENCLAVE,
    CL_ATTEST_ERR_MRSIGNER,     CL_ATTEST_ERR_PRODID,         CL_ATTEST_ERR_SVN,
    CL_ATTEST_ERR_REPORT_DATA,  CL_ATTEST_ERR_POLICY,         CL_ATTEST_ERR_BACKEND,
    CL_ATTEST_ERR_NONCE,
};
#define N_RESULTS (sizeof(ALL_RESULTS) / sizeof(ALL_RESULTS[0]))

static void test_result_strings(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_RESULTS; i++) {
        const char *s = cl_attest_result_str(ALL_RESULTS[i]);
        const char *t = cl_attest_result_text(ALL_RESULTS[i]);
        assert_non_null(s);
        assert_non_null(t);
        assert_string_not_equal(s, "unknown");
        assert_true(strlen(t) > 10);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, cl_attest_result_str(ALL_RESULTS[j]));
    }
    assert_string_equal(cl_attest_result_str((cl_attest_result_t)999), "unknown");
    assert_string_equal(cl_attest_result_str(CL_ATTEST_OK_SIMULATED), "ok-simulated");
    assert_non_null(strstr(cl_attest_result_text(CL_ATTEST_OK_SIMULATED), "SIMULATED"));
}

/* The verifier's copies of the simulator's constants agree with tee/sim. */
static void test_sim_constants(void **state)
{
    cl_sim_identity_t qe;
    uint8_t mrs[32];

    (void)state;
    assert_memory_equal(CL_ATTEST_SIM_QE_VENDOR_ID, CL_SIM_VENDOR_ID, 16);
    assert_memory_equal(CL_ATTEST_SIM_MAGIC, CL_SIM_USER_DATA_MAGIC, 4);
    assert_memory_not_equal(CL_ATTEST_SIM_QE_VENDOR_ID, CL_ATTEST_INTEL_QE_VENDOR_ID, 16);
    cl_sim_qe_identity(&qe);
    sim_qe_mrsigner(mrs);
    assert_memory_equal(qe.mr_signer, mrs, 32);
    assert_int_equal(qe.isv_prod_id, 1);
    assert_true(qe.isv_svn >= 1);
    assert_int_equal(qe.attr_flags & CL_SGX_FLAGS_DEBUG, 0);
}

/* ------------------------------------------------------------------ */
/* Valid simulated quotes                                              */
/* ------------------------------------------------------------------ */

static void test_sim_quote_valid(void **state)
{
    static uint8_t q[QMAX + 16];
    size_t len = 0;
    uint8_t rd[64];
    cl_sim_identity_t id = identity(false);
    cl_attest_claims_t c;
    cl_attest_policy_t p = policy_mre();
    cl_attest_quote_t pq;

    (void)state;
    report_data(rd, 1);
    sim_quote(&id, rd, q, &len);
    assert_int_equal(cl_attest_quote_parse(q, len, &pq), CL_ATTEST_OK);
    assert_int_equal(pq.version, 3);
    assert_int_equal(pq.cert_type, 5);
    assert_int_equal(pq.signed_len, 432);

    assert_int_equal(cl_attest_verify_evidence(q, len, cl_sim_root_pem(), time(NULL), &c),
                     CL_ATTEST_OK);
    assert_true(c.is_simulated);
    assert_false(c.is_debug);
    assert_int_equal(c.quote_version, 3);
    assert_string_equal(c.backend, "sim-dcap-v3");
    assert_memory_equal(c.body.mr_enclave, MRE, 32);
    assert_memory_equal(c.body.mr_signer, MRS, 32);
    assert_int_equal(c.body.isv_prod_id, PRODID);
    assert_int_equal(c.body.isv_svn, SVN);
    assert_memory_equal(c.body.report_data, rd, 64);
    assert_memory_equal(c.qe_vendor_id, CL_SIM_VENDOR_ID, 16);
    assert_int_equal(c.qe_isv_svn, CL_SIM_QE_SVN);

    /* allowed -> OK_SIMULATED (never OK); not allowed -> SIMULATED */
    assert_int_equal(cl_attest_verify(q, len, cl_sim_root_pem(), time(NULL), &p, rd, &c),
                     CL_ATTEST_OK_SIMULATED);
    p.allow_simulated = false;
    assert_int_equal(cl_attest_verify(q, len, cl_sim_root_pem(), time(NULL), &p, rd, &c),
                     CL_ATTEST_ERR_SIMULATED);
    /* claims may be NULL */
    p.allow_simulated = true;
    assert_int_equal(cl_attest_verify(q, len, cl_sim_root_pem(), time(NULL), &p, rd, NULL),
                     CL_ATTEST_OK_SIMULATED);
    /* the sim root given twice (a bundle) is fine */
    {
        char two[4096];
        snprintf(two, sizeof(two), "%s%s", cl_sim_root_pem(), S.root_pem);
        assert_int_equal(cl_attest_verify(q, len, two, time(NULL), &p, rd, NULL),
                         CL_ATTEST_OK_SIMULATED);
    }
}

/* ------------------------------------------------------------------ */
/* One bit flipped in every field                                      */
/* ------------------------------------------------------------------ */

#define EXPECT_VERSION_FLIP (-1)   /* VERSION, or MALFORMED when it becomes another 3..5 */
#define EXPECT_BODY_TYPE_FLIP (-2) /* v5 body_type: TEE_TYPE for 2/3, else MALFORMED */

typedef struct region {
    size_t off, len;
    int expect;
    const char *name;
} region_t;

/* The table: every byte of the quote belongs to exactly one range. */
static size_t regions(const uint8_t *q, size_t len, region_t *r)
{
    cl_attest_quote_t pq;
    size_t n = 0, b, s;
    static const struct {
        size_t off, len;
        const char *name;
    } body[] = {
        {0, 16, "body.cpusvn"},        {16, 4, "body.miscselect"},  {20, 12, "body.reserved1"},
        {32, 16, "body.isvextprodid"}, {48, 16, "body.attributes"}, {64, 32, "body.mrenclave"},
        {96, 32, "body.reserved2"},    {128, 32, "body.mrsigner"},  {160, 32, "body.reserved3"},
        {192, 64, "body.configid"},    {256, 2, "body.isvprodid"},  {258, 2, "body.isvsvn"},
        {260, 2, "body.configsvn"},    {262, 42, "body.reserved4"}, {304, 16, "body.isvfamilyid"},
        {320, 64, "body.reportdata"},
    };
#define ADD(o, l, e, nm) (r[n++] = (region_t){(o), (l), (e), (nm)})

    assert_int_equal(cl_attest_quote_parse(q, len, &pq), CL_ATTEST_OK);
    ADD(0, 2, EXPECT_VERSION_FLIP, "header.version");
    ADD(2, 2, CL_ATTEST_ERR_KEY_TYPE, "header.att_key_type");
    ADD(4, 4, CL_ATTEST_ERR_TEE_TYPE, "header.tee_type/att_key_data_0");
    ADD(8, 4, CL_ATTEST_ERR_QUOTE_SIG, "header.qe_svn/pce_svn");
    ADD(12, 16, CL_ATTEST_ERR_UNKNOWN_VENDOR, "header.vendor_id");
    ADD(28, 16, CL_ATTEST_ERR_QUOTE_SIG, "header.user_data.qe_id");
    ADD(44, 4, CL_ATTEST_ERR_UNKNOWN_VENDOR, "header.user_data.magic");
    if (pq.version == 5) {
        ADD(48, 2, EXPECT_BODY_TYPE_FLIP, "v5.body_type");
        ADD(50, 4, CL_ATTEST_ERR_MALFORMED, "v5.body_size");
    }
    b = (size_t)(pq.body - q);
    for (size_t i = 0; i < sizeof(body) / sizeof(body[0]); i++)
        ADD(b + body[i].off, body[i].len, CL_ATTEST_ERR_QUOTE_SIG, body[i].name);
    ADD(b + 384, 4, CL_ATTEST_ERR_MALFORMED, "signature_data_len");
    s = (size_t)(pq.sig - q);
    ADD(s, 64, CL_ATTEST_ERR_QUOTE_SIG, "sig");
    ADD(s + 64, 64, CL_ATTEST_ERR_QE_BINDING, "attest_pub_key");
    if (pq.version != 3) {
        ADD(s + 128, 2, CL_ATTEST_ERR_CERT_TYPE, "outer cert type (6)");
        ADD(s + 130, 4, CL_ATTEST_ERR_MALFORMED, "outer cert size");
    }
    ADD((size_t)(pq.qe_report - q), 384, CL_ATTEST_ERR_QE_REPORT_SIG, "qe_report");
    ADD((size_t)(pq.qe_report_sig - q), 64, CL_ATTEST_ERR_QE_REPORT_SIG, "qe_report_sig");
    ADD((size_t)(pq.qe_auth - q) - 2, 2, CL_ATTEST_ERR_MALFORMED, "qe_auth_data.size");
    ADD((size_t)(pq.qe_auth - q), pq.qe_auth_len, CL_ATTEST_ERR_QE_BINDING, "qe_auth_data");
    ADD((size_t)(pq.cert_data - q) - 6, 2, CL_ATTEST_ERR_CERT_TYPE, "cert type (5)");
    ADD((size_t)(pq.cert_data - q) - 4, 4, CL_ATTEST_ERR_MALFORMED, "cert size");
    ADD((size_t)(pq.cert_data - q), pq.cert_len, CL_ATTEST_ERR_CHAIN, "cert data (PEM chain)");
#undef ADD
    /* contiguous, complete */
    for (size_t i = 0, at = 0; i < n; i++) {
        assert_int_equal(r[i].off, at);
        at += r[i].len;
        if (i == n - 1)
            assert_int_equal(at, len);
    }
    return n;
}

/*
 * Flips bits and checks each reason: all 8 bits of every byte when all_bits
 * (except in the PEM text, one bit per byte, rotating, to keep the run short),
 * else one bit per byte everywhere.
 */
static void flip_all(uint8_t *q, size_t len, const char *root, bool all_bits)
{
    region_t r[64];
    size_t n = regions(q, len, r);
    int64_t now = time(NULL);
    size_t count = 0;

    for (size_t i = 0; i < n; i++) {
        for (size_t at = r[i].off; at < r[i].off + r[i].len; at++) {
            for (unsigned bit = 0; bit < 8; bit++) {
                cl_attest_claims_t c;
                cl_attest_result_t got;
                int want = r[i].expect;

                bool every = all_bits && r[i].expect != CL_ATTEST_ERR_CHAIN;
                if (!every && bit != at % 8)
                    continue;
                q[at] ^= (uint8_t)(1u << bit);
                if (want == EXPECT_VERSION_FLIP) {
                    uint16_t v = get16(q);
                    want = v >= 3 && v <= 5 ? CL_ATTEST_ERR_MALFORMED : CL_ATTEST_ERR_VERSION;
                } else if (want == EXPECT_BODY_TYPE_FLIP) {
                    uint16_t t = get16(q + 48);
                    want = t == 2 || t == 3 ? CL_ATTEST_ERR_TEE_TYPE : CL_ATTEST_ERR_MALFORMED;
                }
                got = cl_attest_verify_evidence(q, len, root, now, &c);
                q[at] ^= (uint8_t)(1u << bit);
                if ((int)got != want)
                    fail_msg("flip %s byte %zu (+%zu) bit %u: got %s, want %s", r[i].name, at,
                             at - r[i].off, bit, cl_attest_result_str(got),
                             cl_attest_result_str((cl_attest_result_t)want));
                assert_int_equal(c.quote_version, 0); /* claims cleared on refusal */
                count++;
            }
        }
    }
    assert_int_equal(cl_attest_verify_evidence(q, len, root, now, NULL), CL_ATTEST_OK);
    print_message("    %zu flips in %zu ranges refused with the expected reason\n", count, n);
}

static void test_sim_quote_bitflips(void **state)
{
    static uint8_t q[QMAX + 16];
    size_t len = 0;
    uint8_t rd[64];
    cl_sim_identity_t id = identity(false);

    (void)state;
    report_data(rd, 2);
    sim_quote(&id, rd, q, &len);
    flip_all(q, len, cl_sim_root_pem(), true);
}

static void test_tqe_bitflips(void **state)
{
    static uint8_t q[QMAX + 16];
    uint8_t rd[64];

    (void)state;
    report_data(rd, 3);
    for (uint16_t v = 3; v <= 5; v++) {
        qopt_t o = qopt(v);
        size_t len = tqe_quote(&o, rd, q);
        flip_all(q, len, S.root_pem, false);
    }
}

/* ------------------------------------------------------------------ */
/* Truncation, oversize                                                */
/* ------------------------------------------------------------------ */

static void test_truncated_and_oversized(void **state)
{
    static uint8_t q[QMAX + 16];
    size_t len = 0;
    uint8_t rd[64];
    cl_sim_identity_t id = identity(false);
    cl_attest_quote_t pq;

    (void)state;
    report_data(rd, 4);
    sim_quote(&id, rd, q, &len);
    for (size_t n = 0; n < len; n++) {
        /* a heap copy of exactly n bytes so ASan sees any overread */
        uint8_t *t = malloc(n ? n : 1);
        assert_non_null(t);
        memcpy(t, q, n);
        assert_int_equal(cl_attest_quote_parse(t, n, &pq), CL_ATTEST_ERR_MALFORMED);
        if (n % 97 == 0 || n > len - 8)
            assert_int_equal(cl_attest_verify_evidence(t, n, cl_sim_root_pem(), time(NULL), NULL),
                             CL_ATTEST_ERR_MALFORMED);
        free(t);
    }
    /* one trailing byte */
    q[len] = 0;
    assert_int_equal(cl_attest_quote_parse(q, len + 1, &pq), CL_ATTEST_ERR_MALFORMED);
    /* over the maximum, even if consistent */
    assert_int_equal(cl_attest_quote_parse(q, QMAX + 1, &pq), CL_ATTEST_ERR_MALFORMED);
    assert_int_equal(cl_attest_verify_evidence(NULL, 0, cl_sim_root_pem(), 0, NULL),
                     CL_ATTEST_ERR_MALFORMED);
    /* lengths of a v3 grown to the maximum + 1: sig len and cert len consistent */
    {
        qopt_t o = qopt(3);
        static char big[QMAX];
        size_t l;
        memcpy(big, S.chain, S.chain_len);
        memset(big + S.chain_len, '\n', sizeof(big) - S.chain_len);
        o.chain = big;
        o.chain_len = QMAX - 1052 + 1;
        l = tqe_quote(&o, rd, q);
        assert_true(l > QMAX);
        assert_int_equal(cl_attest_quote_parse(q, l, &pq), CL_ATTEST_ERR_MALFORMED);
        o.chain_len -= l - QMAX; /* exactly the maximum: parses, chain is not canonical */
        l = tqe_quote(&o, rd, q);
        assert_int_equal(l, QMAX);
        assert_int_equal(cl_attest_quote_parse(q, l, &pq), CL_ATTEST_OK);
        assert_int_equal(cl_attest_verify_evidence(q, l, S.root_pem, time(NULL), NULL),
                         CL_ATTEST_ERR_CHAIN);
    }
}

/* ------------------------------------------------------------------ */
/* Chain: roots and time                                               */
/* ------------------------------------------------------------------ */

/* Seconds from now to the PCK leaf's notBefore / notAfter in a quote. */
static void pck_validity(const uint8_t *q, size_t len, int64_t *nb, int64_t *na)
{
    cl_attest_quote_t pq;
    BIO *b;
    X509 *x;
    int days, secs;
    int64_t now = time(NULL);

    assert_int_equal(cl_attest_quote_parse(q, len, &pq), CL_ATTEST_OK);
    b = BIO_new_mem_buf(pq.cert_data, (int)pq.cert_len);
    x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    assert_non_null(x);
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notBefore(x)), 1);
    *nb = now + (int64_t)days * 86400 + secs;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)), 1);
    *na = now + (int64_t)days * 86400 + secs;
    X509_free(x);
    BIO_free(b);
}

static void test_chain_roots_and_time(void **state)
{
    static uint8_t q[QMAX + 16];
    size_t len = 0;
    uint8_t rd[64];
    cl_sim_identity_t id = identity(false);
    testca_t *fake;
    const uint8_t *der;
    size_t der_len, n = 0;
    char fake_pem[2048];
    int64_t nb, na;

    (void)state;
    report_data(rd, 5);
    sim_quote(&id, rd, q, &len);
    /* a freshly generated self-signed root, even with the sim root's name */
    fake = testca_root_new(CL_SIM_ROOT_CN, 0x5349);
    assert_non_null(fake);
    der = testca_cert(fake, &der_len);
    der_to_pem(der, der_len, fake_pem, sizeof(fake_pem), &n);
    assert_int_equal(cl_attest_verify_evidence(q, len, fake_pem, time(NULL), NULL),
                     CL_ATTEST_ERR_CHAIN);
    testca_destroy(fake);
    /* the test QE's root for a sim quote and vice versa */
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, time(NULL), NULL),
                     CL_ATTEST_ERR_CHAIN);
    /* no root at all, garbage root */
    assert_int_equal(cl_attest_verify_evidence(q, len, NULL, time(NULL), NULL), CL_ATTEST_ERR_CHAIN);
    assert_int_equal(cl_attest_verify_evidence(q, len, "", time(NULL), NULL), CL_ATTEST_ERR_CHAIN);
    assert_int_equal(cl_attest_verify_evidence(q, len, "-----BEGIN CERTIFICATE-----\nAAAA\n", time(NULL), NULL),
                     CL_ATTEST_ERR_CHAIN);
    /* the intermediate as trust anchor is not the root: refused (no partial chains) */
    assert_int_equal(cl_attest_verify_evidence(q, len, cl_sim_intermediate_pem(), time(NULL), NULL),
                     CL_ATTEST_ERR_CHAIN);

    /* time: just inside, after the PCK's notAfter, before its notBefore */
    pck_validity(q, len, &nb, &na);
    assert_int_equal(cl_attest_verify_evidence(q, len, cl_sim_root_pem(), na - 10, NULL),
                     CL_ATTEST_OK);
    assert_int_equal(cl_attest_verify_evidence(q, len, cl_sim_root_pem(), na + 10, NULL),
                     CL_ATTEST_ERR_CERT_EXPIRED);
    assert_int_equal(cl_attest_verify_evidence(q, len, cl_sim_root_pem(), nb - 10, NULL),
                     CL_ATTEST_ERR_CERT_EXPIRED);
    /* the test QE's PCK lives one day */
    {
        qopt_t o = qopt(4);
        len = tqe_quote(&o, rd, q);
        assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, time(NULL) + 2 * 86400, NULL),
                         CL_ATTEST_ERR_CERT_EXPIRED);
    }
}

/* Chain shapes: root included, a foreign root included, reordered, non-canonical PEM. */
static void test_chain_shapes(void **state)
{
    static uint8_t q[QMAX + 16];
    static char buf[8192];
    uint8_t rd[64];
    qopt_t o = qopt(3);
    size_t len, n = 0;
    const char *second;
    testca_t *other;
    const uint8_t *der;
    size_t der_len;
    int64_t now = time(NULL);

    (void)state;
    report_data(rd, 6);
    /* leaf || inter || root: accepted */
    o.chain = S.chain_with_root;
    o.chain_len = S.chain_with_root_len;
    len = tqe_quote(&o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_OK);
    /* ... with one trailing NUL (Intel's chains may carry one): accepted */
    memcpy(buf, S.chain_with_root, S.chain_with_root_len);
    buf[S.chain_with_root_len] = '\0';
    o.chain = buf;
    o.chain_len = S.chain_with_root_len + 1;
    len = tqe_quote(&o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_OK);
    /* ... two NULs: not canonical */
    buf[S.chain_with_root_len + 1] = '\0';
    o.chain_len = S.chain_with_root_len + 2;
    len = tqe_quote(&o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_ERR_CHAIN);
    /* leaf || inter || another root: the extra certificate is not in the chain */
    other = testca_root_new("Another root", 9);
    assert_non_null(other);
    der = testca_cert(other, &der_len);
    memcpy(buf, S.chain, S.chain_len);
    n = S.chain_len;
    der_to_pem(der, der_len, buf, sizeof(buf), &n);
    o.chain = buf;
    o.chain_len = n;
    len = tqe_quote(&o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_ERR_CHAIN);
    testca_destroy(other);
    /* inter || leaf: the first certificate must be the PCK leaf */
    second = strstr(S.chain + 1, "-----BEGIN CERTIFICATE-----");
    assert_non_null(second);
    n = S.chain_len - (size_t)(second - S.chain);
    memcpy(buf, second, n);
    memcpy(buf + n, S.chain, (size_t)(second - S.chain));
    o.chain = buf;
    o.chain_len = S.chain_len;
    len = tqe_quote(&o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_ERR_CHAIN);
    /* leaf only: the intermediate is missing */
    o.chain = S.chain;
    o.chain_len = (size_t)(second - S.chain);
    len = tqe_quote(&o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_ERR_CHAIN);
    /* CRLF line ends, text before the first certificate, empty data: not canonical */
    n = 0;
    for (size_t i = 0; i < S.chain_len; i++) {
        if (S.chain[i] == '\n')
            buf[n++] = '\r';
        buf[n++] = S.chain[i];
    }
    o.chain = buf;
    o.chain_len = n;
    len = tqe_quote(&o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_ERR_CHAIN);
    n = (size_t)snprintf(buf, sizeof(buf), "subject=x\n%s", S.chain);
    o.chain_len = n;
    len = tqe_quote(&o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_ERR_CHAIN);
    o.chain_len = 0;
    len = tqe_quote(&o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_ERR_CHAIN);
}

/* ------------------------------------------------------------------ */
/* v4, v5, header and QE refusals with the test QE                     */
/* ------------------------------------------------------------------ */

static void test_v3_v4_v5(void **state)
{
    static uint8_t q[QMAX + 16];
    uint8_t rd[64];
    cl_attest_claims_t c;
    cl_attest_quote_t pq;
    cl_attest_policy_t p = policy_mre();
    int64_t now = time(NULL);
    static const char *const names[] = {"sim-dcap-v3", "sim-dcap-v4", "sim-dcap-v5"};

    (void)state;
    report_data(rd, 7);
    for (uint16_t v = 3; v <= 5; v++) {
        qopt_t o = qopt(v);
        size_t len = tqe_quote(&o, rd, q);
        assert_int_equal(cl_attest_quote_parse(q, len, &pq), CL_ATTEST_OK);
        assert_int_equal(pq.version, v);
        assert_int_equal(pq.signed_len, v == 5 ? 438 : 432);
        assert_int_equal(pq.qe_auth_len, 32);
        assert_int_equal(cl_attest_verify(q, len, S.root_pem, now, &p, rd, &c),
                         CL_ATTEST_OK_SIMULATED);
        assert_int_equal(c.quote_version, v);
        assert_string_equal(c.backend, names[v - 3]);
        assert_memory_equal(c.body.mr_enclave, MRE, 32);
        /* the sim root does not anchor the test QE */
        assert_int_equal(cl_attest_verify_evidence(q, len, cl_sim_root_pem(), now, NULL),
                         CL_ATTEST_ERR_CHAIN);
        /* empty and large QE auth data */
        o.auth_len = 0;
        len = tqe_quote(&o, rd, q);
        assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_OK);
        o.auth_len = 200;
        len = tqe_quote(&o, rd, q);
        assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, now, NULL), CL_ATTEST_OK);
    }
}

static void expect_tqe(const qopt_t *o, cl_attest_result_t want)
{
    static uint8_t q[QMAX + 16];
    uint8_t rd[64];
    size_t len;
    cl_attest_claims_t c;

    report_data(rd, 8);
    len = tqe_quote(o, rd, q);
    assert_int_equal(cl_attest_verify_evidence(q, len, S.root_pem, time(NULL), &c), want);
    if (want != CL_ATTEST_OK)
        assert_int_equal(c.quote_version, 0);
}

static void test_format_refusals(void **state)
{
    static const uint8_t other_vendor[16] = {1, 2, 3};
    qopt_t o;

    (void)state;
    for (uint16_t v = 3; v <= 5; v++) {
        o = qopt(v);
        o.tee_type = CL_ATTEST_TEE_TYPE_TDX;
        expect_tqe(&o, CL_ATTEST_ERR_TEE_TYPE);
        o = qopt(v);
        o.key_type = 3; /* P-384 */
        expect_tqe(&o, CL_ATTEST_ERR_KEY_TYPE);
        o = qopt(v);
        o.vendor = CL_ATTEST_INTEL_QE_VENDOR_ID;
        expect_tqe(&o, CL_ATTEST_ERR_BACKEND); /* no Intel DCAP backend built */
        o = qopt(v);
        o.vendor = other_vendor;
        expect_tqe(&o, CL_ATTEST_ERR_UNKNOWN_VENDOR);
        o = qopt(v);
        o.magic = "MIS!"; /* sim vendor without the magic */
        expect_tqe(&o, CL_ATTEST_ERR_UNKNOWN_VENDOR);
        for (uint16_t t = 0; t <= 7; t++) {
            if (t == 5)
                continue;
            o = qopt(v);
            o.cert_type = t;
            expect_tqe(&o, CL_ATTEST_ERR_CERT_TYPE);
        }
        o = qopt(v);
        o.qe_wrong_signer = true;
        expect_tqe(&o, CL_ATTEST_ERR_QE_IDENTITY);
        o = qopt(v);
        o.qe_debug = true;
        expect_tqe(&o, CL_ATTEST_ERR_QE_IDENTITY);
        o = qopt(v);
        o.bad_binding = true;
        expect_tqe(&o, CL_ATTEST_ERR_QE_BINDING);
    }
    /* v4/v5: the outer certification data must be type 6 */
    for (uint16_t v = 4; v <= 5; v++)
        for (uint16_t t = 1; t <= 7; t++) {
            if (t == 6)
                continue;
            o = qopt(v);
            o.outer_type = t;
            expect_tqe(&o, CL_ATTEST_ERR_CERT_TYPE);
        }
    /* versions */
    for (uint16_t v = 0; v < 8; v++) {
        if (v >= 3 && v <= 5)
            continue;
        o = qopt(3);
        o.version = v;
        expect_tqe(&o, CL_ATTEST_ERR_VERSION);
    }
    /* v5 body types: TDX 1.0 (584) and 1.5 (648) are TEE_TYPE, even with an SGX tee_type;
     * unknown types and SGX bodies of another size are malformed */
    o = qopt(5);
    o.body_type = 2;
    o.body_size = 584;
    expect_tqe(&o, CL_ATTEST_ERR_TEE_TYPE);
    o.tee_type = CL_ATTEST_TEE_TYPE_TDX;
    expect_tqe(&o, CL_ATTEST_ERR_TEE_TYPE);
    o = qopt(5);
    o.body_type = 3;
    o.body_size = 648;
    expect_tqe(&o, CL_ATTEST_ERR_TEE_TYPE);
    o = qopt(5);
    o.body_type = 4;
    expect_tqe(&o, CL_ATTEST_ERR_MALFORMED);
    o = qopt(5);
    o.body_type = 0;
    expect_tqe(&o, CL_ATTEST_ERR_MALFORMED);
    o = qopt(5);
    o.body_size = 400;
    expect_tqe(&o, CL_ATTEST_ERR_MALFORMED);
}

/* ------------------------------------------------------------------ */
/* Appraisal                                                           */
/* ------------------------------------------------------------------ */

static void test_appraise_sim(void **state)
{
    static uint8_t q[QMAX + 16];
    size_t len = 0;
    uint8_t rd[64], other[64];
    cl_sim_identity_t id = identity(false);
    cl_attest_policy_t p;
    int64_t now = time(NULL);
    const char *root = cl_sim_root_pem();

    (void)state;
    report_data(rd, 9);
    sim_quote(&id, rd, q, &len);
    /* report data: every byte matters */
    for (size_t i = 0; i < 64; i++) {
        memcpy(other, rd, 64);
        other[i] ^= 0x80;
        p = policy_mre();
        assert_int_equal(cl_attest_verify(q, len, root, now, &p, other, NULL),
                         CL_ATTEST_ERR_REPORT_DATA);
    }
    /* MRENCLAVE allowlist */
    p = policy_mre();
    p.mr_enclave[0][0] ^= 1;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_ERR_MRENCLAVE);
    memcpy(p.mr_enclave[3], MRE, 32);
    p.n_mr_enclave = 4;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_OK_SIMULATED);
    p.n_mr_enclave = CL_ATTEST_MAX_MRENCLAVES + 1;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_ERR_POLICY);
    /* MRSIGNER + ISVPRODID + min ISVSVN */
    memset(&p, 0, sizeof(p));
    p.allow_simulated = true;
    p.use_signer = true;
    memcpy(p.mr_signer, MRS, 32);
    p.isv_prod_id = PRODID;
    p.min_isv_svn = SVN;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_OK_SIMULATED);
    p.min_isv_svn = SVN + 1;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_ERR_SVN);
    p.min_isv_svn = 0;
    p.isv_prod_id = PRODID + 1;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_ERR_PRODID);
    p.isv_prod_id = PRODID;
    p.mr_signer[31] ^= 1;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_ERR_MRSIGNER);
    /* both set: both must hold */
    p.mr_signer[31] ^= 1;
    memcpy(p.mr_enclave[0], MRE, 32);
    p.n_mr_enclave = 1;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_OK_SIMULATED);
    p.mr_enclave[0][5] ^= 1;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_ERR_MRENCLAVE);
    /* a policy without identity, without report data */
    memset(&p, 0, sizeof(p));
    p.allow_simulated = true;
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, rd, NULL), CL_ATTEST_ERR_POLICY);
    p = policy_mre();
    assert_int_equal(cl_attest_verify(q, len, root, now, &p, NULL, NULL), CL_ATTEST_ERR_POLICY);
    assert_int_equal(cl_attest_verify(q, len, root, now, NULL, rd, NULL), CL_ATTEST_ERR_POLICY);
}

static void test_appraise_debug(void **state)
{
    static uint8_t q[QMAX + 16];
    size_t len = 0;
    uint8_t rd[64];
    cl_sim_identity_t id = identity(true);
    cl_attest_policy_t p = policy_mre();
    cl_attest_claims_t c;

    (void)state;
    report_data(rd, 10);
    sim_quote(&id, rd, q, &len);
    assert_int_equal(cl_attest_verify(q, len, cl_sim_root_pem(), time(NULL), &p, rd, &c),
                     CL_ATTEST_ERR_DEBUG);
    assert_true(c.is_debug);
    p.allow_debug = true;
    assert_int_equal(cl_attest_verify(q, len, cl_sim_root_pem(), time(NULL), &p, rd, &c),
                     CL_ATTEST_OK_SIMULATED);
    /* simulated refusal comes first */
    p.allow_simulated = false;
    assert_int_equal(cl_attest_verify(q, len, cl_sim_root_pem(), time(NULL), &p, rd, &c),
                     CL_ATTEST_ERR_SIMULATED);
}

/* Attributes and the OK / OK_SIMULATED split on hand-made claims (appraisal is backend-neutral). */
static void test_appraise_claims(void **state)
{
    cl_attest_claims_t c;
    cl_attest_policy_t p = policy_mre();
    uint8_t rd[64];
    static const uint64_t bad[] = {
        CL_SGX_FLAGS_MODE64BIT,
        CL_SGX_FLAGS_INITTED,
        CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT | CL_SGX_FLAGS_PROVISION_KEY,
        CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT | CL_SGX_FLAGS_EINITTOKEN_KEY,
    };

    (void)state;
    report_data(rd, 11);
    memset(&c, 0, sizeof(c));
    memcpy(c.body.mr_enclave, MRE, 32);
    memcpy(c.body.report_data, rd, 64);
    c.body.attr_flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT | CL_SGX_FLAGS_KSS;
    /* hardware evidence (a future DCAP backend) may get a plain OK */
    assert_int_equal(cl_attest_appraise(&c, &p, rd), CL_ATTEST_OK);
    c.is_simulated = true;
    assert_int_equal(cl_attest_appraise(&c, &p, rd), CL_ATTEST_OK_SIMULATED);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c.body.attr_flags = bad[i];
        assert_int_equal(cl_attest_appraise(&c, &p, rd), CL_ATTEST_ERR_ATTRIBUTES);
    }
    /* DEBUG in the flags counts even if is_debug was not set */
    c.body.attr_flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT | CL_SGX_FLAGS_DEBUG;
    assert_int_equal(cl_attest_appraise(&c, &p, rd), CL_ATTEST_ERR_DEBUG);
    assert_int_equal(cl_attest_appraise(NULL, &p, rd), CL_ATTEST_ERR_POLICY);
    assert_int_equal(cl_attest_appraise(&c, NULL, rd), CL_ATTEST_ERR_POLICY);
}

/* ------------------------------------------------------------------ */
/* The core's evidence map                                             */
/* ------------------------------------------------------------------ */

typedef struct evin {
    uint8_t identity_pub[65], ca_pub[65], owner[32], nonce[32];
    const char *backend, *state;
    uint64_t v;
    bool certs;
    bool dup_nonce, extra_key, int_key, trailing, short_nonce, pub_as_text;
} evin_t;

static evin_t evin(void)
{
    evin_t e;
    memset(&e, 0, sizeof(e));
    e.identity_pub[0] = 0x04;
    e.ca_pub[0] = 0x04;
    for (int i = 1; i < 65; i++) {
        e.identity_pub[i] = (uint8_t)i;
        e.ca_pub[i] = (uint8_t)(200 - i);
    }
    memset(e.owner, 0x0e, 32);
    for (int i = 0; i < 32; i++)
        e.nonce[i] = (uint8_t)(0xa0 + i);
    e.backend = "sim";
    e.state = "claimed";
    e.v = 1;
    return e;
}

/* Encodes the map; the quote binds the map's keys unless rd_override. */
static size_t ev_encode(const evin_t *e, const uint8_t *quote, size_t qlen, uint8_t *out,
                        size_t size)
{
    cl_cbor_enc_t enc;
    size_t n = 8 + (e->certs ? 2 : 0) + (e->dup_nonce ? 1 : 0) + (e->extra_key ? 1 : 0) +
               (e->int_key ? 1 : 0);
    size_t len = 0;
    static const uint8_t cert[] = {0x30, 0x03, 0x02, 0x01, 0x01};

    cl_cbor_enc_init(&enc, out, size);
    (void)cl_cbor_enc_map(&enc, n);
    if (e->extra_key) {
        (void)cl_cbor_enc_tstr_z(&enc, "future");
        (void)cl_cbor_enc_array(&enc, 2);
        (void)cl_cbor_enc_uint(&enc, 1);
        (void)cl_cbor_enc_tstr_z(&enc, "x");
    }
    (void)cl_cbor_enc_tstr_z(&enc, "v");
    (void)cl_cbor_enc_uint(&enc, e->v);
    (void)cl_cbor_enc_tstr_z(&enc, "backend");
    (void)cl_cbor_enc_tstr_z(&enc, e->backend);
    (void)cl_cbor_enc_tstr_z(&enc, "state");
    (void)cl_cbor_enc_tstr_z(&enc, e->state);
    (void)cl_cbor_enc_tstr_z(&enc, "quote");
    (void)cl_cbor_enc_bstr(&enc, quote, qlen);
    (void)cl_cbor_enc_tstr_z(&enc, "identity_pub");
    if (e->pub_as_text)
        (void)cl_cbor_enc_tstr(&enc, (const char *)e->identity_pub + 1, 64);
    else
        (void)cl_cbor_enc_bstr(&enc, e->identity_pub, 65);
    (void)cl_cbor_enc_tstr_z(&enc, "ca_pub");
    (void)cl_cbor_enc_bstr(&enc, e->ca_pub, 65);
    (void)cl_cbor_enc_tstr_z(&enc, "owner");
    (void)cl_cbor_enc_bstr(&enc, e->owner, 32);
    (void)cl_cbor_enc_tstr_z(&enc, "nonce");
    (void)cl_cbor_enc_bstr(&enc, e->nonce, e->short_nonce ? 15 : 32);
    if (e->dup_nonce) {
        (void)cl_cbor_enc_tstr_z(&enc, "nonce");
        (void)cl_cbor_enc_bstr(&enc, e->nonce, 32);
    }
    if (e->int_key) {
        (void)cl_cbor_enc_uint(&enc, 7);
        (void)cl_cbor_enc_uint(&enc, 7);
    }
    if (e->certs) {
        (void)cl_cbor_enc_tstr_z(&enc, "ca_cert");
        (void)cl_cbor_enc_bstr(&enc, cert, sizeof(cert));
        (void)cl_cbor_enc_tstr_z(&enc, "identity_cert");
        (void)cl_cbor_enc_bstr(&enc, cert, sizeof(cert));
    }
    if (e->trailing)
        (void)cl_cbor_enc_uint(&enc, 0);
    assert_int_equal(cl_cbor_enc_finish(&enc, &len), CL_OK);
    return len;
}

/* A sim quote whose report data binds e (as the core makes it). */
static void ev_quote(const evin_t *e, uint8_t *q, size_t *qlen)
{
    cl_attest_core_evidence_t ev;
    uint8_t rd[64];
    cl_sim_identity_t id = identity(false);

    memset(&ev, 0, sizeof(ev));
    ev.identity_pub = e->identity_pub;
    ev.ca_pub = e->ca_pub;
    ev.owner = e->owner;
    ev.nonce = e->nonce;
    ev.nonce_len = 32;
    assert_int_equal(cl_attest_core_report_data(&ev, rd), CL_OK);
    sim_quote(&id, rd, q, qlen);
}

static void test_core_evidence(void **state)
{
    static uint8_t q[QMAX + 16], map[QMAX + 512];
    size_t qlen = 0, mlen;
    evin_t e = evin();
    cl_attest_core_evidence_t ev;
    cl_attest_policy_t p = policy_mre();
    cl_attest_claims_t c;
    uint8_t rd[64], h[32], buf[65 + 65 + 32 + 32];
    int64_t now = time(NULL);
    const char *root = cl_sim_root_pem();

    (void)state;
    ev_quote(&e, q, &qlen);
    mlen = ev_encode(&e, q, qlen, map, sizeof(map));
    assert_int_equal(cl_attest_core_evidence_decode(map, mlen, &ev), CL_OK);
    assert_int_equal(ev.v, 1);
    assert_int_equal(ev.quote_len, qlen);
    assert_int_equal(ev.nonce_len, 32);
    assert_null(ev.ca_cert);
    /* the binding is the documented one */
    memcpy(buf, e.identity_pub, 65);
    memcpy(buf + 65, e.ca_pub, 65);
    memcpy(buf + 130, e.owner, 32);
    memcpy(buf + 162, e.nonce, 32);
    sha256(buf, sizeof(buf), NULL, 0, h);
    assert_int_equal(cl_attest_core_report_data(&ev, rd), CL_OK);
    assert_memory_equal(rd, h, 32);
    for (int i = 32; i < 64; i++)
        assert_int_equal(rd[i], 0);

    assert_int_equal(cl_attest_core_evidence_verify(&ev, e.nonce, 32, root, now, &p, &c),
                     CL_ATTEST_OK_SIMULATED);
    assert_true(c.is_simulated);
    /* our nonce differs (content, length) */
    {
        uint8_t n2[32];
        memcpy(n2, e.nonce, 32);
        n2[31] ^= 1;
        assert_int_equal(cl_attest_core_evidence_verify(&ev, n2, 32, root, now, &p, &c),
                         CL_ATTEST_ERR_NONCE);
        assert_int_equal(cl_attest_core_evidence_verify(&ev, e.nonce, 31, root, now, &p, &c),
                         CL_ATTEST_ERR_NONCE);
        assert_int_equal(cl_attest_core_evidence_verify(&ev, NULL, 0, root, now, &p, &c),
                         CL_ATTEST_ERR_NONCE);
    }
    /* simulated not allowed */
    p.allow_simulated = false;
    assert_int_equal(cl_attest_core_evidence_verify(&ev, e.nonce, 32, root, now, &p, NULL),
                     CL_ATTEST_ERR_SIMULATED);
    p.allow_simulated = true;
    /* a key, the owner or the nonce in the map replaced: report data no longer binds it */
    {
        evin_t e2 = e;
        e2.ca_pub[10] ^= 1;
        mlen = ev_encode(&e2, q, qlen, map, sizeof(map));
        assert_int_equal(cl_attest_core_evidence_decode(map, mlen, &ev), CL_OK);
        assert_int_equal(cl_attest_core_evidence_verify(&ev, e.nonce, 32, root, now, &p, NULL),
                         CL_ATTEST_ERR_REPORT_DATA);
        e2 = e;
        e2.owner[0] ^= 1;
        mlen = ev_encode(&e2, q, qlen, map, sizeof(map));
        assert_int_equal(cl_attest_core_evidence_decode(map, mlen, &ev), CL_OK);
        assert_int_equal(cl_attest_core_evidence_verify(&ev, e.nonce, 32, root, now, &p, NULL),
                         CL_ATTEST_ERR_REPORT_DATA);
        /* a replayed quote for an old nonce under a new nonce in the map */
        e2 = e;
        e2.nonce[0] ^= 1;
        mlen = ev_encode(&e2, q, qlen, map, sizeof(map));
        assert_int_equal(cl_attest_core_evidence_decode(map, mlen, &ev), CL_OK);
        assert_int_equal(cl_attest_core_evidence_verify(&ev, e2.nonce, 32, root, now, &p, NULL),
                         CL_ATTEST_ERR_REPORT_DATA);
        /* labelled "sgx" but simulated */
        e2 = e;
        e2.backend = "sgx";
        mlen = ev_encode(&e2, q, qlen, map, sizeof(map));
        assert_int_equal(cl_attest_core_evidence_decode(map, mlen, &ev), CL_OK);
        assert_int_equal(cl_attest_core_evidence_verify(&ev, e.nonce, 32, root, now, &p, &c),
                         CL_ATTEST_ERR_BACKEND);
        assert_int_equal(c.quote_version, 0);
        /* provisioned with both certificates; an unknown key is skipped */
        e2 = e;
        e2.state = "provisioned";
        e2.certs = true;
        e2.extra_key = true;
        mlen = ev_encode(&e2, q, qlen, map, sizeof(map));
        assert_int_equal(cl_attest_core_evidence_decode(map, mlen, &ev), CL_OK);
        assert_int_equal(ev.ca_cert_len, 5);
        assert_int_equal(ev.identity_cert_len, 5);
        assert_int_equal(cl_attest_core_evidence_verify(&ev, e.nonce, 32, root, now, &p, NULL),
                         CL_ATTEST_OK_SIMULATED);
        /* the quote in the map tampered with */
        mlen = ev_encode(&e, q, qlen, map, sizeof(map));
        assert_int_equal(cl_attest_core_evidence_decode(map, mlen, &ev), CL_OK);
        map[(size_t)(ev.quote - map) + 100] ^= 1;
        assert_int_equal(cl_attest_core_evidence_verify(&ev, e.nonce, 32, root, now, &p, NULL),
                         CL_ATTEST_ERR_QUOTE_SIG);
    }
}

static void expect_decode(const evin_t *e, const uint8_t *q, size_t qlen, cl_status_t want)
{
    static uint8_t map[QMAX + 512];
    size_t mlen = ev_encode(e, q, qlen, map, sizeof(map));
    cl_attest_core_evidence_t ev;

    assert_int_equal(cl_attest_core_evidence_decode(map, mlen, &ev), want);
    if (want != CL_OK)
        assert_null(ev.quote);
}

static void test_core_evidence_decode_refusals(void **state)
{
    static uint8_t q[2000];
    static uint8_t map[4096];
    evin_t e;
    size_t mlen;
    cl_attest_core_evidence_t ev;

    (void)state;
    memset(q, 0x5a, sizeof(q));
    e = evin();
    expect_decode(&e, q, sizeof(q), CL_OK);
    e.dup_nonce = true;
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    e.int_key = true;
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    e.trailing = true;
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    e.short_nonce = true;
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    e.pub_as_text = true;
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    e.identity_pub[0] = 0x02; /* not uncompressed */
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    e.v = 2;
    expect_decode(&e, q, sizeof(q), CL_ERR_UNSUPPORTED);
    e = evin();
    e.backend = "tdx";
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    e.state = "owned";
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    e.state = "provisioned"; /* without certificates */
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    e.certs = true; /* certificates while claimed */
    expect_decode(&e, q, sizeof(q), CL_ERR_BAD_INPUT);
    e = evin();
    expect_decode(&e, q, 0, CL_ERR_BAD_INPUT); /* empty quote */
    /* truncated at every length, an array instead of a map, NULLs */
    e = evin();
    mlen = ev_encode(&e, q, 100, map, sizeof(map));
    for (size_t n = 0; n < mlen; n++) {
        uint8_t *t = malloc(n ? n : 1);
        assert_non_null(t);
        memcpy(t, map, n);
        assert_int_equal(cl_attest_core_evidence_decode(t, n, &ev), CL_ERR_BAD_INPUT);
        free(t);
    }
    map[0] = 0x80;
    assert_int_equal(cl_attest_core_evidence_decode(map, 1, &ev), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_attest_core_evidence_decode(NULL, 0, &ev), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_attest_core_evidence_decode(map, 1, NULL), CL_ERR_INVALID_ARG);
    /* missing key: drop "owner" by renaming it */
    e = evin();
    mlen = ev_encode(&e, q, 100, map, sizeof(map));
    {
        uint8_t *k = NULL;
        for (size_t i = 0; i + 5 < mlen; i++)
            if (memcmp(map + i, "owner", 5) == 0)
                k = map + i;
        assert_non_null(k);
        k[0] = 'O';
        assert_int_equal(cl_attest_core_evidence_decode(map, mlen, &ev), CL_ERR_BAD_INPUT);
    }
    assert_int_equal(cl_attest_core_evidence_verify(NULL, NULL, 0, NULL, 0, NULL, NULL),
                     CL_ATTEST_ERR_MALFORMED);
}

/* ------------------------------------------------------------------ */
/* EAR JSON                                                            */
/* ------------------------------------------------------------------ */

static void test_ear_json(void **state)
{
    static uint8_t q[QMAX + 16];
    size_t len = 0, jlen = 0;
    uint8_t rd[64], nonce[20];
    cl_sim_identity_t id = identity(false);
    cl_attest_policy_t p = policy_mre();
    cl_attest_claims_t c;
    cl_attest_result_t r;
    char json[2048];
    cJSON *root, *sub;

    (void)state;
    report_data(rd, 12);
    memset(nonce, 0xfb, sizeof(nonce));
    sim_quote(&id, rd, q, &len);
    r = cl_attest_verify(q, len, cl_sim_root_pem(), time(NULL), &p, rd, &c);
    assert_int_equal(r, CL_ATTEST_OK_SIMULATED);
    assert_int_equal(cl_attest_result_json(r, &c, nonce, sizeof(nonce), 1700000000, json,
                                           sizeof(json), &jlen),
                     CL_OK);
    assert_int_equal(jlen, strlen(json));
    root = cJSON_Parse(json);
    assert_non_null(root);
    assert_string_equal(cJSON_GetObjectItem(root, "eat_profile")->valuestring,
                        "tag:ietf.org,2026:rats/ear#03");
    assert_int_equal(cJSON_GetObjectItem(root, "iat")->valuedouble, 1700000000);
    assert_string_equal(cJSON_GetObjectItem(root, "eat_nonce")->valuestring,
                        "-_v7-_v7-_v7-_v7-_v7-_v7-_s");
    sub = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "submods"), "cloister-core");
    assert_non_null(sub);
    assert_string_equal(cJSON_GetObjectItem(sub, "ear_status")->valuestring, "warning");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(sub, "simulated")));
    assert_string_equal(cJSON_GetObjectItem(sub, "cloister_result")->valuestring, "ok-simulated");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(sub, "ear_trustworthiness_vector"),
                                         "hardware")->valueint,
                     32);
    assert_int_equal(strlen(cJSON_GetObjectItem(sub, "sgx_mrenclave")->valuestring), 64);
    assert_int_equal(cJSON_GetObjectItem(sub, "sgx_isvsvn")->valueint, SVN);
    cJSON_Delete(root);

    /* refusal: contraindicated, reason given; no claims */
    assert_int_equal(cl_attest_result_json(CL_ATTEST_ERR_MRENCLAVE, NULL, NULL, 0, 0, json,
                                           sizeof(json), NULL),
                     CL_OK);
    root = cJSON_Parse(json);
    assert_non_null(root);
    assert_null(cJSON_GetObjectItem(root, "eat_nonce"));
    sub = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "submods"), "cloister-core");
    assert_string_equal(cJSON_GetObjectItem(sub, "ear_status")->valuestring, "contraindicated");
    assert_string_equal(cJSON_GetObjectItem(sub, "cloister_result")->valuestring,
                        "wrong-mrenclave");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(sub, "ear_trustworthiness_vector"),
                                         "executables")->valueint,
                     96);
    assert_null(cJSON_GetObjectItem(sub, "simulated"));
    cJSON_Delete(root);

    /* hardware OK: affirming */
    c.is_simulated = false;
    assert_int_equal(cl_attest_result_json(CL_ATTEST_OK, &c, NULL, 0, 0, json, sizeof(json), NULL),
                     CL_OK);
    assert_non_null(strstr(json, "\"ear_status\":\"affirming\""));
    assert_null(strstr(json, "simulated"));

    /* too small: every size below the needed one */
    assert_int_equal(cl_attest_result_json(CL_ATTEST_OK_SIMULATED, &c, nonce, sizeof(nonce), 0,
                                           json, sizeof(json), &jlen),
                     CL_OK);
    for (size_t n = 1; n <= jlen; n++) {
        char small[2048];
        size_t l = 99;
        assert_int_equal(cl_attest_result_json(CL_ATTEST_OK_SIMULATED, &c, nonce, sizeof(nonce),
                                               0, small, n, &l),
                         CL_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(small[0], '\0');
        assert_int_equal(l, 0);
    }
    assert_int_equal(cl_attest_result_json(CL_ATTEST_OK, NULL, NULL, 0, 0, NULL, 10, NULL),
                     CL_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_strings),
        cmocka_unit_test(test_sim_constants),
        cmocka_unit_test(test_sim_quote_valid),
        cmocka_unit_test(test_sim_quote_bitflips),
        cmocka_unit_test(test_tqe_bitflips),
        cmocka_unit_test(test_truncated_and_oversized),
        cmocka_unit_test(test_chain_roots_and_time),
        cmocka_unit_test(test_chain_shapes),
        cmocka_unit_test(test_v3_v4_v5),
        cmocka_unit_test(test_format_refusals),
        cmocka_unit_test(test_appraise_sim),
        cmocka_unit_test(test_appraise_debug),
        cmocka_unit_test(test_appraise_claims),
        cmocka_unit_test(test_core_evidence),
        cmocka_unit_test(test_core_evidence_decode_refusals),
        cmocka_unit_test(test_ear_json),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
