/*
 * test_pki.c - core/pki: the owner hierarchy built with keys of the OpenSSL
 * crypto provider, cross-checked with OpenSSL's own chain verification, and
 * every refusal of the parser and the issuance checks.
 *
 * Hierarchy: owner root -> core intermediate (pathlen 0) -> device leaf
 * (OU "role:device"), and owner root -> core identity leaf. Foreign
 * certificates (RSA, P-384, SHA-384, v1, Ed25519, a 64-character CN, a CA
 * under a pathlen-0 intermediate, a certificate "issued" by a leaf) are made
 * here with OpenSSL's X509_sign.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "testca.h"

#include "cloister/crypto_openssl.h"
#include "pki.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define T0 1767225600LL      /* 2026-01-01T00:00:00Z */
#define YEAR (365LL * 86400) /* seconds */
#define NOW (T0 + 86400)

/* ---- signers ---- */

typedef struct prov_signer {
    cl_crypto_t *c;
    cl_key_t key;
    int mode; /* 0 sign, 1 fail, 2 flip a bit of the signature */
} prov_signer_t;

static cl_status_t prov_sign(void *arg, const uint8_t *tbs, size_t tbs_len, uint8_t sig[64])
{
    prov_signer_t *s = arg;
    size_t n = 0;
    cl_status_t rc;

    if (s->mode == 1)
        return CL_ERR_CRYPTO;
    rc = s->c->ops->sign(s->c->self, s->key, CL_SIG_ES256, tbs, tbs_len, sig, 64, &n);
    if (rc == CL_OK && n != 64)
        rc = CL_ERR_CRYPTO;
    if (s->mode == 2)
        sig[40] ^= 1;
    return rc;
}

typedef struct keyed {
    cl_key_t key;
    uint8_t pub[CL_PKI_P256_PUB_LEN];
} keyed_t;

static void gen(cl_crypto_t *c, keyed_t *k)
{
    size_t n = 0;
    assert_int_equal(c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &k->key, k->pub,
                                          sizeof k->pub, &n),
                     CL_OK);
    assert_int_equal(n, CL_PKI_P256_PUB_LEN);
}

/* A certificate made by make_cert, signed by signer's key. */
typedef struct cert {
    uint8_t der[CL_PKI_MAX_CERT];
    size_t len;
} cert_t;

static cl_status_t make(cl_crypto_t *c, cl_key_t signer, cl_pki_kind_t kind, const char *cn,
                        const char *ou, const uint8_t *pub, uint64_t serial, int64_t nb, int64_t na,
                        const cert_t *issuer, cert_t *out)
{
    prov_signer_t s = {c, signer, 0};
    cl_pki_cert_req_t req = {
        kind, cn, ou, pub, serial, nb, na, issuer ? issuer->der : NULL, issuer ? issuer->len : 0};
    return cl_pki_make_cert(&req, prov_sign, &s, out->der, sizeof out->der, &out->len);
}

/* ---- OpenSSL helpers ---- */

static X509 *x509_of(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    assert_ptr_equal(p, der + len);
    return x;
}

/* OpenSSL's verdict on leaf -> [inter] -> root at time now (X509_V_OK or an error). */
static int ossl_verify(const cert_t *root, const cert_t *inter, const cert_t *leaf, int64_t now)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509 *r = x509_of(root->der, root->len), *l = x509_of(leaf->der, leaf->len), *i = NULL;
    X509_VERIFY_PARAM *param;
    int ok, err;

    assert_non_null(st);
    assert_non_null(ctx);
    assert_non_null(untrusted);
    assert_int_equal(X509_STORE_add_cert(st, r), 1);
    if (inter != NULL) {
        i = x509_of(inter->der, inter->len);
        assert_true(sk_X509_push(untrusted, i) > 0);
    }
    assert_int_equal(X509_STORE_CTX_init(ctx, st, l, untrusted), 1);
    param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)now);
    assert_int_equal(X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_ANY), 1);
    assert_int_equal(X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT), 1);
    ok = X509_verify_cert(ctx);
    err = X509_STORE_CTX_get_error(ctx);
    if (ok != 1 && err == X509_V_OK)
        err = -1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(r);
    X509_free(l);
    return ok == 1 ? X509_V_OK : err;
}

static void x509_der(X509 *x, cert_t *out)
{
    unsigned char *p = out->der;
    int n = i2d_X509(x, NULL);
    assert_true(n > 0 && (size_t)n <= sizeof out->der);
    assert_int_equal(i2d_X509(x, &p), n);
    out->len = (size_t)n;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *e;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/*
 * A certificate for key made by OpenSSL: self-signed when issuer is NULL,
 * otherwise issued by (issuer, issuer_key). ca adds CA extensions; v1 makes
 * a version 1 certificate without extensions.
 */
static void ossl_cert(EVP_PKEY *key, const char *cn, const EVP_MD *md, const cert_t *issuer,
                      EVP_PKEY *issuer_key, bool ca, bool v1, cert_t *out)
{
    X509 *x = X509_new(), *iss = issuer ? x509_of(issuer->der, issuer->len) : NULL;
    X509_NAME *name;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, v1 ? X509_VERSION_1 : X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 77), 1);
    name = X509_get_subject_name(x);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_set_issuer_name(x, iss ? X509_get_subject_name(iss) : name), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)T0));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(T0 + YEAR)));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    if (!v1) {
        add_ext(x, iss ? iss : x, NID_basic_constraints,
                ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
        add_ext(x, iss ? iss : x, NID_key_usage,
                ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
        add_ext(x, iss ? iss : x, NID_subject_key_identifier, "hash");
        add_ext(x, iss ? iss : x, NID_authority_key_identifier, "keyid:always");
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, md) > 0);
    x509_der(x, out);
    X509_free(x);
    X509_free(iss);
}

static EVP_PKEY *ossl_p256(uint8_t pub[CL_PKI_P256_PUB_LEN])
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    size_t n = 0;
    assert_non_null(k);
    if (pub != NULL) {
        assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub,
                                                         CL_PKI_P256_PUB_LEN, &n),
                         1);
        assert_int_equal(n, CL_PKI_P256_PUB_LEN);
    }
    return k;
}

/* ---- the owner hierarchy ---- */

typedef struct pki {
    cl_crypto_t c;
    keyed_t root_k, inter_k, leaf_k, id_k;
    cert_t root, inter, leaf, id;
} pki_t;

static int setup(void **state)
{
    pki_t *p = calloc(1, sizeof *p);
    assert_non_null(p);
    tu_crypto(&p->c, 0);
    gen(&p->c, &p->root_k);
    gen(&p->c, &p->inter_k);
    gen(&p->c, &p->leaf_k);
    gen(&p->c, &p->id_k);
    assert_int_equal(make(&p->c, p->root_k.key, CL_PKI_ROOT_CA, "Owner root", NULL, p->root_k.pub,
                          1, T0, T0 + 20 * YEAR, NULL, &p->root),
                     CL_OK);
    assert_int_equal(make(&p->c, p->root_k.key, CL_PKI_INTERMEDIATE_CA, "Core CA", NULL,
                          p->inter_k.pub, 2, T0, T0 + 5 * YEAR, &p->root, &p->inter),
                     CL_OK);
    assert_int_equal(make(&p->c, p->inter_k.key, CL_PKI_LEAF, "thermostat-1", "role:device",
                          p->leaf_k.pub, 0x1122334455667788ULL, T0, T0 + YEAR, &p->inter, &p->leaf),
                     CL_OK);
    assert_int_equal(make(&p->c, p->root_k.key, CL_PKI_LEAF, "Core identity", NULL, p->id_k.pub, 3,
                          T0, T0 + 5 * YEAR, &p->root, &p->id),
                     CL_OK);
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    pki_t *p = *state;
    cl_crypto_openssl_free(&p->c);
    free(p);
    return 0;
}

static void assert_info(const cert_t *c, const char *cn, const char *ou, uint64_t serial,
                        int64_t nb, int64_t na, const uint8_t *pub, bool ca, int pathlen,
                        bool self_issued)
{
    cl_pki_cert_info_t i;
    uint8_t md[32], tp[8];
    memset(&i, 0xa5, sizeof i);
    assert_int_equal(cl_pki_cert_parse(c->der, c->len, &i), CL_OK);
    assert_string_equal(i.cn, cn);
    assert_string_equal(i.ou, ou ? ou : "");
    assert_true(i.serial == serial);
    assert_true(i.not_before == nb);
    assert_true(i.not_after == na);
    tu_assert_bytes(i.pub, sizeof i.pub, pub, CL_PKI_P256_PUB_LEN);
    assert_int_equal(i.is_ca, ca);
    assert_int_equal(i.pathlen, pathlen);
    assert_int_equal(i.self_issued, self_issued);
    assert_int_equal(EVP_Digest(c->der, c->len, md, NULL, EVP_sha256(), NULL), 1);
    tu_assert_bytes(i.sha256, 32, md, 32);
    assert_int_equal(cl_pki_thumbprint(c->der, c->len, tp), CL_OK);
    tu_assert_bytes(tp, 8, md, 8);
}

static void test_hierarchy_fields(void **state)
{
    pki_t *p = *state;
    assert_info(&p->root, "Owner root", NULL, 1, T0, T0 + 20 * YEAR, p->root_k.pub, true, -1, true);
    assert_info(&p->inter, "Core CA", NULL, 2, T0, T0 + 5 * YEAR, p->inter_k.pub, true, 0, false);
    assert_info(&p->leaf, "thermostat-1", "role:device", 0x1122334455667788ULL, T0, T0 + YEAR,
                p->leaf_k.pub, false, -1, false);
    assert_info(&p->id, "Core identity", NULL, 3, T0, T0 + 5 * YEAR, p->id_k.pub, false, -1, false);
}

static void test_hierarchy_verifies(void **state)
{
    pki_t *p = *state;
    assert_int_equal(cl_pki_check_root(p->root.der, p->root.len, NOW), CL_OK);
    assert_int_equal(cl_pki_check_root(p->root.der, p->root.len, 0), CL_OK);
    assert_int_equal(
        cl_pki_verify_issued(p->inter.der, p->inter.len, p->root.der, p->root.len, NOW), CL_OK);
    assert_int_equal(
        cl_pki_verify_issued(p->leaf.der, p->leaf.len, p->inter.der, p->inter.len, NOW), CL_OK);
    assert_int_equal(cl_pki_verify_issued(p->id.der, p->id.len, p->root.der, p->root.len, NOW),
                     CL_OK);
    assert_int_equal(cl_pki_verify_issued(p->root.der, p->root.len, p->root.der, p->root.len, NOW),
                     CL_OK);
    /* the wrong issuer: names do not chain */
    assert_int_equal(cl_pki_verify_issued(p->leaf.der, p->leaf.len, p->root.der, p->root.len, NOW),
                     CL_ERR_AUTH);
    assert_int_equal(
        cl_pki_verify_issued(p->inter.der, p->inter.len, p->inter.der, p->inter.len, NOW),
        CL_ERR_AUTH);
}

/* OpenSSL, strict mode, agrees: every certificate chains to the root, purposes hold. */
static void test_openssl_agrees(void **state)
{
    pki_t *p = *state;
    X509 *leaf, *id, *inter;

    assert_int_equal(ossl_verify(&p->root, NULL, &p->root, NOW), X509_V_OK);
    assert_int_equal(ossl_verify(&p->root, NULL, &p->inter, NOW), X509_V_OK);
    assert_int_equal(ossl_verify(&p->root, &p->inter, &p->leaf, NOW), X509_V_OK);
    assert_int_equal(ossl_verify(&p->root, NULL, &p->id, NOW), X509_V_OK);
    assert_int_equal(ossl_verify(&p->root, &p->inter, &p->leaf, T0 + 2 * YEAR),
                     X509_V_ERR_CERT_HAS_EXPIRED);

    leaf = x509_of(p->leaf.der, p->leaf.len);
    id = x509_of(p->id.der, p->id.len);
    inter = x509_of(p->inter.der, p->inter.len);
    assert_int_equal(X509_check_purpose(leaf, X509_PURPOSE_SSL_CLIENT, 0), 1);
    assert_int_equal(X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0), 1);
    assert_int_equal(X509_check_purpose(id, X509_PURPOSE_SSL_SERVER, 0), 1);
    assert_int_equal(X509_check_ca(leaf), 0);
    assert_int_equal(X509_check_ca(inter), 1);
    assert_int_equal(X509_get_pathlen(inter), 0);
    assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_get_extension_flags(leaf) & EXFLAG_BCONS_CRITICAL, EXFLAG_BCONS_CRITICAL);
    assert_true((X509_get_key_usage(inter) & (KU_KEY_CERT_SIGN | KU_CRL_SIGN)) ==
                (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    assert_true(X509_get_key_usage(leaf) == KU_DIGITAL_SIGNATURE);
    assert_int_equal(ASN1_STRING_type(X509_get0_notBefore(leaf)), V_ASN1_UTCTIME);
    X509_free(leaf);
    X509_free(id);
    X509_free(inter);
}

/* Certificates made by OpenSSL's X509_sign (the EDHOC test CA) pass the same checks. */
static void test_foreign_p256_accepted(void **state)
{
    testca_t *root = testca_root_new("Test root", 1);
    testca_t *inter;
    uint8_t pub[CL_PKI_P256_PUB_LEN];
    EVP_PKEY *k = ossl_p256(pub);
    testca_leaf_t lr = {"leaf", CL_KEY_P256, pub, sizeof pub, false, 9, -60, 3600};
    const uint8_t *rd, *id;
    uint8_t *ld;
    size_t rl, il, ll;
    cl_pki_cert_info_t info;

    (void)state;
    assert_non_null(root);
    inter = testca_intermediate_new(root, "Test inter", 2);
    assert_non_null(inter);
    rd = testca_cert(root, &rl);
    id = testca_cert(inter, &il);
    ld = testca_issue(inter, &lr, &ll);
    assert_non_null(ld);
    assert_int_equal(cl_pki_check_root(rd, rl, 0), CL_OK);
    assert_int_equal(cl_pki_verify_issued(id, il, rd, rl, 0), CL_OK);
    assert_int_equal(cl_pki_verify_issued(ld, ll, id, il, 0), CL_OK);
    assert_int_equal(cl_pki_cert_parse(ld, ll, &info), CL_OK);
    assert_string_equal(info.cn, "leaf");
    assert_true(info.serial == 9);
    tu_assert_bytes(info.pub, sizeof info.pub, pub, sizeof pub);
    testca_free(ld);
    testca_destroy(inter);
    testca_destroy(root);
    EVP_PKEY_free(k);
}

static void test_other_root_refused(void **state)
{
    pki_t *p = *state;
    keyed_t other_k;
    cert_t other, leaf2;

    gen(&p->c, &other_k);
    /* same name, other key: the signature (and the key identifiers) do not match */
    assert_int_equal(make(&p->c, other_k.key, CL_PKI_ROOT_CA, "Owner root", NULL, other_k.pub, 1,
                          T0, T0 + YEAR, NULL, &other),
                     CL_OK);
    assert_int_equal(make(&p->c, other_k.key, CL_PKI_LEAF, "Core identity", NULL, p->id_k.pub, 3,
                          T0, T0 + YEAR, &other, &leaf2),
                     CL_OK);
    assert_int_equal(cl_pki_verify_issued(leaf2.der, leaf2.len, other.der, other.len, NOW), CL_OK);
    assert_int_equal(cl_pki_verify_issued(leaf2.der, leaf2.len, p->root.der, p->root.len, NOW),
                     CL_ERR_AUTH);
    assert_int_equal(cl_pki_verify_issued(p->id.der, p->id.len, other.der, other.len, NOW),
                     CL_ERR_AUTH);
    assert_int_not_equal(ossl_verify(&p->root, NULL, &leaf2, NOW), X509_V_OK);
    p->c.ops->key_destroy(p->c.self, other_k.key);
}

static void test_validity(void **state)
{
    pki_t *p = *state;
    cert_t late;

    /* leaf valid [T0, T0 + 1y]; the intermediate [T0, T0 + 5y] */
    assert_int_equal(cl_pki_verify_issued(p->leaf.der, p->leaf.len, p->inter.der, p->inter.len, T0),
                     CL_OK);
    assert_int_equal(
        cl_pki_verify_issued(p->leaf.der, p->leaf.len, p->inter.der, p->inter.len, T0 + YEAR),
        CL_OK);
    assert_int_equal(
        cl_pki_verify_issued(p->leaf.der, p->leaf.len, p->inter.der, p->inter.len, T0 + YEAR + 1),
        CL_ERR_STATE);
    assert_int_equal(
        cl_pki_verify_issued(p->leaf.der, p->leaf.len, p->inter.der, p->inter.len, T0 - 1),
        CL_ERR_STATE);
    assert_int_equal(cl_pki_check_root(p->root.der, p->root.len, T0 - 1), CL_ERR_STATE);
    assert_int_equal(cl_pki_check_root(p->root.der, p->root.len, T0 + 20 * YEAR + 1), CL_ERR_STATE);
    /* a child valid now under an expired issuer */
    assert_int_equal(make(&p->c, p->inter_k.key, CL_PKI_LEAF, "late", NULL, p->leaf_k.pub, 5,
                          T0 + 5 * YEAR, T0 + 6 * YEAR, &p->inter, &late),
                     CL_OK);
    assert_int_equal(
        cl_pki_verify_issued(late.der, late.len, p->inter.der, p->inter.len, T0 + 5 * YEAR + 10),
        CL_ERR_STATE);
    assert_int_equal(cl_pki_verify_issued(late.der, late.len, p->inter.der, p->inter.len, 0),
                     CL_OK);
}

/* Times around the UTCTime / GeneralizedTime switch and far ones round-trip exactly. */
static void test_time_encodings(void **state)
{
    pki_t *p = *state;
    static const int64_t times[][2] = {
        {0, 1},                     /* 1970 */
        {951782400, 951868799},     /* 2000-02-29 (leap day) */
        {2524607999, 2524608000},   /* 2049-12-31T23:59:59Z, 2050-01-01 (GeneralizedTime) */
        {4107542400, 253402300799}, /* 2100-03-01, 9999-12-31T23:59:59Z */
    };
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        cert_t c;
        cl_pki_cert_info_t info;
        assert_int_equal(make(&p->c, p->root_k.key, CL_PKI_ROOT_CA, "t", NULL, p->root_k.pub, 1,
                              times[i][0], times[i][1], NULL, &c),
                         CL_OK);
        assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_OK);
        assert_true(info.not_before == times[i][0]);
        assert_true(info.not_after == times[i][1]);
    }
}

/* Leaves and pathlen-0 intermediates cannot issue (a leaf at all, the intermediate no CA). */
static void test_issuer_must_be_ca(void **state)
{
    pki_t *p = *state;
    uint8_t pub[CL_PKI_P256_PUB_LEN], pub2[CL_PKI_P256_PUB_LEN];
    EVP_PKEY *leaf_key = ossl_p256(pub), *sub_key = ossl_p256(pub2), *inter_key = ossl_p256(NULL);
    cert_t leaf, child, ca_under_inter, inter2, tmp;
    uint8_t ipub[CL_PKI_P256_PUB_LEN];
    size_t n = 0;

    /* make_cert refuses */
    assert_int_equal(
        make(&p->c, p->leaf_k.key, CL_PKI_LEAF, "x", NULL, pub, 9, T0, T0 + YEAR, &p->leaf, &tmp),
        CL_ERR_INVALID_ARG);
    assert_int_equal(make(&p->c, p->inter_k.key, CL_PKI_INTERMEDIATE_CA, "x", NULL, pub, 9, T0,
                          T0 + YEAR, &p->inter, &tmp),
                     CL_ERR_INVALID_ARG);

    /* a leaf whose key OpenSSL holds, then a certificate it "issues" */
    assert_int_equal(make(&p->c, p->inter_k.key, CL_PKI_LEAF, "leaf", NULL, pub, 10, T0, T0 + YEAR,
                          &p->inter, &leaf),
                     CL_OK);
    ossl_cert(sub_key, "child", EVP_sha256(), &leaf, leaf_key, false, false, &child);
    assert_int_equal(cl_pki_cert_parse(child.der, child.len, &(cl_pki_cert_info_t){0}), CL_OK);
    assert_int_equal(cl_pki_verify_issued(child.der, child.len, leaf.der, leaf.len, NOW),
                     CL_ERR_AUTH);
    assert_int_equal(cl_pki_check_root(leaf.der, leaf.len, NOW), CL_ERR_AUTH);
    assert_int_equal(cl_pki_check_root(p->inter.der, p->inter.len, NOW), CL_ERR_AUTH);
    assert_int_equal(cl_pki_check_root(p->id.der, p->id.len, NOW), CL_ERR_AUTH);

    /* an intermediate (pathlen 0) whose key OpenSSL holds, then a CA under it */
    assert_int_equal(EVP_PKEY_get_octet_string_param(inter_key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                                     ipub, sizeof ipub, &n),
                     1);
    assert_int_equal(make(&p->c, p->root_k.key, CL_PKI_INTERMEDIATE_CA, "Core CA 2", NULL, ipub, 11,
                          T0, T0 + YEAR, &p->root, &inter2),
                     CL_OK);
    ossl_cert(sub_key, "sub CA", EVP_sha256(), &inter2, inter_key, true, false, &ca_under_inter);
    assert_int_equal(
        cl_pki_verify_issued(ca_under_inter.der, ca_under_inter.len, inter2.der, inter2.len, NOW),
        CL_ERR_AUTH);
    /* while a leaf under it is fine */
    ossl_cert(sub_key, "leaf 2", EVP_sha256(), &inter2, inter_key, false, false, &child);
    assert_int_equal(cl_pki_verify_issued(child.der, child.len, inter2.der, inter2.len, NOW),
                     CL_OK);

    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(sub_key);
    EVP_PKEY_free(inter_key);
}

static void test_check_root_refusals(void **state)
{
    pki_t *p = *state;
    cert_t bad = p->root;
    /* a self-issued root whose signature is broken */
    bad.der[bad.len - 5] ^= 0x01;
    assert_int_equal(cl_pki_check_root(bad.der, bad.len, NOW), CL_ERR_AUTH);
    assert_int_equal(cl_pki_check_root(p->leaf.der, p->leaf.len, 0), CL_ERR_AUTH);
}

/* Every proper prefix, trailing bytes, BER lengths: CL_ERR_BAD_INPUT from every entry point. */
static void test_malformed(void **state)
{
    pki_t *p = *state;
    cl_pki_cert_info_t info;
    uint8_t buf[CL_PKI_MAX_CERT + 8];
    const cert_t *all[] = {&p->root, &p->inter, &p->leaf, &p->id};

    for (size_t c = 0; c < 4; c++) {
        const cert_t *ct = all[c];
        for (size_t n = 0; n < ct->len; n++) {
            memcpy(buf, ct->der, n);
            assert_int_equal(cl_pki_cert_parse(buf, n, &info), CL_ERR_BAD_INPUT);
            assert_int_equal(cl_pki_check_root(buf, n, 0), CL_ERR_BAD_INPUT);
            assert_int_equal(cl_pki_verify_issued(buf, n, p->root.der, p->root.len, 0),
                             CL_ERR_BAD_INPUT);
            assert_int_equal(cl_pki_verify_issued(p->inter.der, p->inter.len, buf, n, 0),
                             CL_ERR_BAD_INPUT);
        }
        memcpy(buf, ct->der, ct->len);
        buf[ct->len] = 0;
        assert_int_equal(cl_pki_cert_parse(buf, ct->len + 1, &info), CL_ERR_BAD_INPUT);
        memcpy(buf + ct->len, ct->der, 8);
        assert_int_equal(cl_pki_cert_parse(buf, ct->len + 8, &info), CL_ERR_BAD_INPUT);
        assert_int_equal(cl_pki_check_root(buf, ct->len + 8, 0), CL_ERR_BAD_INPUT);
    }

    /* the outer length in a non-minimal (BER) form: 30 82 hi lo -> 30 83 00 hi lo */
    assert_true(p->leaf.der[1] == 0x82);
    buf[0] = 0x30;
    buf[1] = 0x83;
    buf[2] = 0x00;
    memcpy(buf + 3, p->leaf.der + 2, p->leaf.len - 2);
    assert_int_equal(cl_pki_cert_parse(buf, p->leaf.len + 1, &info), CL_ERR_BAD_INPUT);
    /* the same inside: the TBS SEQUENCE (30 82 ..) written 30 83 00 .., outer length fixed up */
    {
        size_t outer = (size_t)p->leaf.der[2] << 8 | p->leaf.der[3];
        assert_true(p->leaf.der[4] == 0x30 && p->leaf.der[5] == 0x82);
        buf[0] = 0x30;
        buf[1] = 0x82;
        buf[2] = (uint8_t)((outer + 1) >> 8);
        buf[3] = (uint8_t)(outer + 1);
        buf[4] = 0x30;
        buf[5] = 0x83;
        buf[6] = 0x00;
        memcpy(buf + 7, p->leaf.der + 6, p->leaf.len - 6);
        assert_int_equal(cl_pki_cert_parse(buf, p->leaf.len + 1, &info), CL_ERR_BAD_INPUT);
    }
    /* garbage */
    memset(buf, 0x30, 64);
    assert_int_equal(cl_pki_cert_parse(buf, 64, &info), CL_ERR_BAD_INPUT);
    buf[0] = 0x30;
    buf[1] = 0x80; /* indefinite length */
    buf[2] = buf[3] = 0;
    assert_int_equal(cl_pki_cert_parse(buf, 4, &info), CL_ERR_BAD_INPUT);
    /* too long for the API */
    memset(buf, 0, sizeof buf);
    assert_int_equal(cl_pki_cert_parse(buf, CL_PKI_MAX_CERT + 1, &info), CL_ERR_LIMIT);
    uint8_t tp[8];
    assert_int_equal(cl_pki_thumbprint(buf, CL_PKI_MAX_CERT + 1, tp), CL_ERR_LIMIT);
    assert_int_equal(cl_pki_thumbprint(buf, 0, tp), CL_ERR_BAD_INPUT);
}

/* Other key types and algorithms: well-formed but not ours. */
static void test_unsupported(void **state)
{
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *p256 = ossl_p256(NULL);
    cert_t c;
    cl_pki_cert_info_t info;
    char cn[CL_PKI_MAX_NAME + 1];

    (void)state;
    assert_non_null(rsa);
    assert_non_null(p384);
    assert_non_null(ed);
    ossl_cert(rsa, "rsa", EVP_sha256(), NULL, NULL, true, false, &c);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_ERR_UNSUPPORTED);
    assert_int_equal(cl_pki_check_root(c.der, c.len, 0), CL_ERR_UNSUPPORTED);
    ossl_cert(p384, "p384", EVP_sha384(), NULL, NULL, true, false, &c);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_ERR_UNSUPPORTED);
    ossl_cert(p384, "p384", EVP_sha256(), NULL, NULL, true, false, &c);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_ERR_UNSUPPORTED);
    ossl_cert(ed, "ed25519", NULL, NULL, NULL, true, false, &c);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_ERR_UNSUPPORTED);
    ossl_cert(p256, "p256 sha384", EVP_sha384(), NULL, NULL, true, false, &c);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_ERR_UNSUPPORTED);
    /* the same key with SHA-256 is fine; as v1 it is not */
    ossl_cert(p256, "p256", EVP_sha256(), NULL, NULL, true, false, &c);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_OK);
    assert_int_equal(cl_pki_check_root(c.der, c.len, 0), CL_OK);
    ossl_cert(p256, "p256 v1", EVP_sha256(), NULL, NULL, false, true, &c);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_ERR_BAD_INPUT);
    /* a 64-character CN (the X.520 upper bound) does not fit the info struct */
    memset(cn, 'a', CL_PKI_MAX_NAME);
    cn[CL_PKI_MAX_NAME] = '\0';
    ossl_cert(p256, cn, EVP_sha256(), NULL, NULL, true, false, &c);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_ERR_LIMIT);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(p256);
}

static void test_make_refusals(void **state)
{
    pki_t *p = *state;
    prov_signer_t s = {&p->c, p->root_k.key, 0};
    cl_pki_cert_req_t req = {CL_PKI_LEAF, "x",       NULL,        p->leaf_k.pub, 7,
                             T0,          T0 + YEAR, p->root.der, p->root.len};
    cert_t c;
    char cn[CL_PKI_MAX_NAME + 1];
    uint8_t bad_pub[CL_PKI_P256_PUB_LEN];
    cl_pki_cert_info_t info;

    /* the signer fails, or signs with a wrong key / a corrupted signature */
    s.mode = 1;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_CRYPTO);
    assert_int_equal(c.len, 0);
    s.mode = 2;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_AUTH);
    s.mode = 0;
    s.key = p->inter_k.key;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_AUTH);
    s.key = p->root_k.key;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len), CL_OK);

    /* names: 63 bytes fit, 64 do not */
    memset(cn, 'n', sizeof cn);
    cn[CL_PKI_MAX_NAME - 1] = '\0';
    req.cn = cn;
    req.ou = cn;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len), CL_OK);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, &info), CL_OK);
    assert_string_equal(info.cn, cn);
    assert_string_equal(info.ou, cn);
    cn[CL_PKI_MAX_NAME - 1] = 'n';
    cn[CL_PKI_MAX_NAME] = '\0';
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_LIMIT);
    req.ou = "ok";
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_LIMIT);
    req.cn = "";
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_INVALID_ARG);
    req.cn = "\xff\xfe not UTF-8";
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_INVALID_ARG);
    req.cn = "x";

    /* arguments */
    req.serial = 0;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_INVALID_ARG);
    req.serial = 7;
    req.not_after = T0 - 1;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_INVALID_ARG);
    req.not_after = T0 + YEAR;
    req.kind = CL_PKI_ROOT_CA; /* with an issuer */
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_INVALID_ARG);
    req.kind = CL_PKI_LEAF;
    req.issuer = NULL; /* a leaf without one */
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_INVALID_ARG);
    req.issuer = p->root.der;
    req.issuer_len = p->root.len - 1;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_BAD_INPUT);
    req.issuer_len = p->root.len;
    assert_int_equal(cl_pki_make_cert(NULL, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_pki_make_cert(&req, NULL, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_INVALID_ARG);

    /* a subject key that is not a P-256 point */
    memcpy(bad_pub, p->leaf_k.pub, sizeof bad_pub);
    bad_pub[64] ^= 1;
    req.pub = bad_pub;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_BAD_INPUT);
    bad_pub[64] ^= 1;
    bad_pub[0] = 0x02;
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len),
                     CL_ERR_BAD_INPUT);
    req.pub = p->leaf_k.pub;

    /* output buffer: too small writes nothing, exactly enough works */
    assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, c.der, sizeof c.der, &c.len), CL_OK);
    {
        size_t need = c.len, got = 1;
        uint8_t small[CL_PKI_MAX_CERT];
        memset(small, 0xee, sizeof small);
        /* ECDSA DER varies by a byte or two; 60 bytes short is always too small */
        assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, small, need - 60, &got),
                         CL_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(got, 0);
        for (size_t i = 0; i < sizeof small; i++)
            assert_int_equal(small[i], 0xee);
        assert_int_equal(cl_pki_make_cert(&req, prov_sign, &s, small, need + 2, &got), CL_OK);
    }
    assert_int_equal(cl_pki_cert_parse(NULL, 10, &info), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_pki_cert_parse(c.der, c.len, NULL), CL_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hierarchy_fields),  cmocka_unit_test(test_hierarchy_verifies),
        cmocka_unit_test(test_openssl_agrees),    cmocka_unit_test(test_other_root_refused),
        cmocka_unit_test(test_validity),          cmocka_unit_test(test_time_encodings),
        cmocka_unit_test(test_issuer_must_be_ca), cmocka_unit_test(test_check_root_refusals),
        cmocka_unit_test(test_malformed),         cmocka_unit_test(test_make_refusals),
    };
    const struct CMUnitTest standalone[] = {
        cmocka_unit_test(test_foreign_p256_accepted),
        cmocka_unit_test(test_unsupported),
    };
    int rc = cmocka_run_group_tests_name("pki", tests, setup, teardown);
    return rc | cmocka_run_group_tests_name("pki_foreign", standalone, NULL, NULL);
}
