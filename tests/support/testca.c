/*
 * testca.c - the X.509 test CA and chain verifier of testca.h.
 *
 * Built on OpenSSL's X509 APIs because that is what the core uses to
 * validate chains to the owner's root; the EDHOC library itself never sees
 * a certificate except as the opaque CRED bytes. Every function cleans up
 * through one exit label; failures return NULL / a status, never abort, so
 * the calling test asserts with its own context.
 */
#include "testca.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_REVOKED 32
#define SIG_TRIES 256
#define ECDSA_DER_MAX 72 /* SEQUENCE { INTEGER(33), INTEGER(33) } */

struct testca {
    EVP_PKEY *key;
    X509 *cert;
    uint8_t *der;
    size_t der_len;
    long revoked[MAX_REVOKED];
    size_t n_revoked;
};

struct testca_verifier {
    X509_STORE *store;
};

void testca_free(void *der)
{
    free(der);
}

/* DER of an X509 or X509_CRL on the heap. */
static uint8_t *to_der_x509(X509 *x, size_t *len)
{
    int n = i2d_X509(x, NULL);
    uint8_t *out = NULL, *p;
    if (n <= 0 || (out = malloc((size_t)n)) == NULL)
        return NULL;
    p = out;
    if (i2d_X509(x, &p) != n) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

static uint8_t *to_der_crl(X509_CRL *c, size_t *len)
{
    int n = i2d_X509_CRL(c, NULL);
    uint8_t *out = NULL, *p;
    if (n <= 0 || (out = malloc((size_t)n)) == NULL)
        return NULL;
    p = out;
    if (i2d_X509_CRL(c, &p) != n) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

static EVP_PKEY *p256_generate(void)
{
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (c == NULL || EVP_PKEY_keygen_init(c) != 1 || EVP_PKEY_CTX_set_group_name(c, "P-256") != 1 ||
        EVP_PKEY_generate(c, &pk) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(c);
    return pk;
}

/* A public-only EVP_PKEY from provider-format bytes. */
static EVP_PKEY *pub_to_pkey(cl_key_type_t type, const uint8_t *pub, size_t len)
{
    EVP_PKEY *pk = NULL;
    if (type == CL_KEY_ED25519 || type == CL_KEY_X25519) {
        if (len != 32)
            return NULL;
        return EVP_PKEY_new_raw_public_key(
            type == CL_KEY_ED25519 ? EVP_PKEY_ED25519 : EVP_PKEY_X25519, NULL, pub, len);
    }
    if (type != CL_KEY_P256 || len != 65)
        return NULL;
    char group[] = "P-256";
    uint8_t copy[65];
    memcpy(copy, pub, sizeof copy);
    OSSL_PARAM params[3] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, copy, sizeof copy),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (c == NULL || EVP_PKEY_fromdata_init(c) != 1 ||
        EVP_PKEY_fromdata(c, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(c);
    return pk;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ex;
    int ok;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ex == NULL)
        return 0;
    ok = X509_add_ext(cert, ex, -1);
    X509_EXTENSION_free(ex);
    return ok;
}

static int set_cn(X509_NAME *name, const char *cn)
{
    return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                      0);
}

/* Signs until the ECDSA signature's DER is 72 bytes (stable certificate sizes). */
static int sign_stable(X509 *x, EVP_PKEY *key)
{
    for (int i = 0; i < SIG_TRIES; i++) {
        const ASN1_BIT_STRING *sig;
        if (X509_sign(x, key, EVP_sha256()) <= 0)
            return 0;
        X509_get0_signature(&sig, NULL, x);
        if (ASN1_STRING_length(sig) == ECDSA_DER_MAX)
            return 1;
    }
    return 0;
}

/*
 * A v3 certificate for subject_key, signed by issuer_key (issuer_cert NULL:
 * self-signed). ext_* are OpenSSL config strings (NULL: omitted).
 */
static X509 *make_cert(EVP_PKEY *subject_key, const char *cn, long serial, long not_before,
                       long not_after, X509 *issuer_cert, EVP_PKEY *issuer_key, const char *basic,
                       const char *usage)
{
    X509 *x = X509_new();
    bool ok = x != NULL && X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(x), not_before) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(x), not_after) != NULL &&
              X509_set_pubkey(x, subject_key) == 1 && set_cn(X509_get_subject_name(x), cn) == 1;
    if (ok)
        ok = X509_set_issuer_name(x, issuer_cert != NULL ? X509_get_subject_name(issuer_cert)
                                                         : X509_get_subject_name(x)) == 1;
    if (ok && basic != NULL)
        ok = add_ext(x, issuer_cert != NULL ? issuer_cert : x, NID_basic_constraints, basic) == 1;
    if (ok && usage != NULL)
        ok = add_ext(x, issuer_cert != NULL ? issuer_cert : x, NID_key_usage, usage) == 1;
    if (ok)
        ok = sign_stable(x, issuer_key) == 1;
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

static testca_t *ca_new(testca_t *parent, const char *cn, long serial)
{
    testca_t *ca = calloc(1, sizeof *ca);
    if (ca == NULL)
        return NULL;
    if ((ca->key = p256_generate()) == NULL)
        goto fail;
    ca->cert =
        make_cert(ca->key, cn, serial, -3600, 10L * 365 * 86400,
                  parent != NULL ? parent->cert : NULL, parent != NULL ? parent->key : ca->key,
                  parent != NULL ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE",
                  "critical,keyCertSign,cRLSign");
    if (ca->cert == NULL || (ca->der = to_der_x509(ca->cert, &ca->der_len)) == NULL)
        goto fail;
    return ca;
fail:
    testca_destroy(ca);
    ERR_clear_error();
    return NULL;
}

testca_t *testca_root_new(const char *cn, long serial)
{
    return ca_new(NULL, cn, serial);
}

testca_t *testca_intermediate_new(testca_t *parent, const char *cn, long serial)
{
    return parent == NULL ? NULL : ca_new(parent, cn, serial);
}

void testca_destroy(testca_t *ca)
{
    if (ca == NULL)
        return;
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free(ca->der);
    free(ca);
}

const uint8_t *testca_cert(const testca_t *ca, size_t *der_len)
{
    *der_len = ca->der_len;
    return ca->der;
}

uint8_t *testca_issue(testca_t *ca, const testca_leaf_t *leaf, size_t *der_len)
{
    uint8_t *out = NULL;
    X509 *x = NULL;
    EVP_PKEY *pk = pub_to_pkey(leaf->type, leaf->pub, leaf->pub_len);
    if (pk == NULL || (leaf->key_agreement && leaf->type == CL_KEY_ED25519) ||
        (!leaf->key_agreement && leaf->type == CL_KEY_X25519))
        goto done;
    x = make_cert(pk, leaf->subject, leaf->serial, leaf->not_before, leaf->not_after, ca->cert,
                  ca->key, NULL,
                  leaf->key_agreement ? "critical,keyAgreement" : "critical,digitalSignature");
    if (x != NULL)
        out = to_der_x509(x, der_len);
done:
    X509_free(x);
    EVP_PKEY_free(pk);
    ERR_clear_error();
    return out;
}

void testca_revoke(testca_t *ca, long serial)
{
    if (ca->n_revoked < MAX_REVOKED)
        ca->revoked[ca->n_revoked++] = serial;
}

uint8_t *testca_crl(testca_t *ca, size_t *der_len)
{
    uint8_t *out = NULL;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = X509_gmtime_adj(NULL, -3600), *next = X509_gmtime_adj(NULL, 30L * 86400);
    bool ok = crl != NULL && last != NULL && next != NULL && X509_CRL_set_version(crl, 1) == 1 &&
              X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) == 1 &&
              X509_CRL_set1_lastUpdate(crl, last) == 1 && X509_CRL_set1_nextUpdate(crl, next) == 1;
    for (size_t i = 0; ok && i < ca->n_revoked; i++) {
        X509_REVOKED *r = X509_REVOKED_new();
        ASN1_INTEGER *sn = ASN1_INTEGER_new();
        ok = r != NULL && sn != NULL && ASN1_INTEGER_set(sn, ca->revoked[i]) == 1 &&
             X509_REVOKED_set_serialNumber(r, sn) == 1 &&
             X509_REVOKED_set_revocationDate(r, last) == 1 && X509_CRL_add0_revoked(crl, r) == 1;
        ASN1_INTEGER_free(sn);
        if (!ok)
            X509_REVOKED_free(r);
    }
    if (ok)
        ok = X509_CRL_sort(crl) == 1 && X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0;
    if (ok)
        out = to_der_crl(crl, der_len);
    X509_CRL_free(crl);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    ERR_clear_error();
    return out;
}

/* ---- verification ---- */

static X509 *parse_cert(const uint8_t *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x != NULL && p != der + len) { /* trailing bytes: not one certificate */
        X509_free(x);
        x = NULL;
    }
    return x;
}

testca_verifier_t *testca_verifier_new(const uint8_t *root, size_t root_len)
{
    testca_verifier_t *v = calloc(1, sizeof *v);
    X509 *r = parse_cert(root, root_len);
    if (v == NULL || r == NULL || (v->store = X509_STORE_new()) == NULL ||
        X509_STORE_add_cert(v->store, r) != 1 ||
        X509_STORE_set_flags(v->store, X509_V_FLAG_CRL_CHECK) != 1) {
        testca_verifier_free(v);
        v = NULL;
    }
    X509_free(r); /* the store holds its own reference */
    ERR_clear_error();
    return v;
}

cl_status_t testca_verifier_add_crl(testca_verifier_t *v, const uint8_t *crl, size_t crl_len)
{
    const unsigned char *p = crl;
    X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)crl_len);
    cl_status_t st = CL_OK;
    if (c == NULL || p != crl + crl_len || X509_STORE_add_crl(v->store, c) != 1)
        st = CL_ERR_BAD_INPUT;
    X509_CRL_free(c);
    ERR_clear_error();
    return st;
}

void testca_verifier_free(testca_verifier_t *v)
{
    if (v == NULL)
        return;
    X509_STORE_free(v->store);
    free(v);
}

/* The leaf's key in provider format, with the uses its keyUsage allows. */
static cl_status_t leaf_key(X509 *leaf, testca_pub_t *key)
{
    EVP_PKEY *pk = X509_get0_pubkey(leaf);
    uint32_t ku = X509_get_key_usage(leaf); /* UINT32_MAX when the extension is absent */
    bool ku_sign = (ku & KU_DIGITAL_SIGNATURE) != 0, ku_agree = (ku & KU_KEY_AGREEMENT) != 0;
    size_t n;
    if (pk == NULL)
        return CL_ERR_BAD_INPUT;
    memset(key, 0, sizeof *key);
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_EC: {
        char group[32];
        if (EVP_PKEY_get_group_name(pk, group, sizeof group, &n) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0))
            return CL_ERR_UNSUPPORTED;
        if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, key->pub,
                                            sizeof key->pub, &n) != 1 ||
            n != 65 || key->pub[0] != 0x04)
            return CL_ERR_BAD_INPUT;
        key->type = CL_KEY_P256;
        key->sign = ku_sign;
        key->agree = ku_agree;
        break;
    }
    case EVP_PKEY_ED25519:
        key->type = CL_KEY_ED25519;
        key->sign = ku_sign;
        n = 32;
        if (EVP_PKEY_get_raw_public_key(pk, key->pub, &n) != 1 || n != 32)
            return CL_ERR_BAD_INPUT;
        break;
    case EVP_PKEY_X25519:
        key->type = CL_KEY_X25519;
        key->agree = ku_agree;
        n = 32;
        if (EVP_PKEY_get_raw_public_key(pk, key->pub, &n) != 1 || n != 32)
            return CL_ERR_BAD_INPUT;
        break;
    default: return CL_ERR_UNSUPPORTED;
    }
    key->pub_len = n;
    return CL_OK;
}

cl_status_t testca_verify(const testca_verifier_t *v, const uint8_t *leaf, size_t leaf_len,
                          const uint8_t *const *inter, const size_t *inter_len, size_t n_inter,
                          testca_pub_t *key, int *x509_err)
{
    cl_status_t st = CL_ERR_BAD_INPUT;
    X509 *x = parse_cert(leaf, leaf_len);
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int err = X509_V_OK;

    if (x == NULL || untrusted == NULL || ctx == NULL)
        goto done;
    for (size_t i = 0; i < n_inter; i++) {
        X509 *c = parse_cert(inter[i], inter_len[i]);
        if (c == NULL)
            goto done;
        if (sk_X509_push(untrusted, c) <= 0) {
            X509_free(c);
            goto done;
        }
    }
    if (X509_STORE_CTX_init(ctx, v->store, x, untrusted) != 1) {
        st = CL_ERR_CRYPTO;
        goto done;
    }
    if (X509_verify_cert(ctx) != 1) {
        err = X509_STORE_CTX_get_error(ctx);
        st = CL_ERR_AUTH;
        goto done;
    }
    st = leaf_key(x, key);
done:
    if (x509_err != NULL)
        *x509_err = err;
    X509_STORE_CTX_free(ctx);
    sk_X509_pop_free(untrusted, X509_free);
    X509_free(x);
    ERR_clear_error();
    return st;
}

const char *testca_error_string(int x509_err)
{
    return X509_verify_cert_error_string(x509_err);
}

int testca_err_expired(void)
{
    return X509_V_ERR_CERT_HAS_EXPIRED;
}

int testca_err_revoked(void)
{
    return X509_V_ERR_CERT_REVOKED;
}

int testca_err_untrusted(void)
{
    return X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY;
}

cl_status_t testca_peer_key(const cl_crypto_t *crypto, const testca_pub_t *key,
                            cl_edhoc_peer_t *peer)
{
    cl_status_t st;
    peer->key = CL_KEY_NONE;
    peer->pub_len = 0;
    if (key->sign) {
        st = crypto->ops->key_import_public(crypto->self, key->type, key->pub, key->pub_len,
                                            &peer->key);
        if (st != CL_OK)
            return st;
    }
    if (key->agree) {
        memcpy(peer->pub, key->pub, key->pub_len);
        peer->pub_len = key->pub_len;
    }
    return CL_OK;
}
