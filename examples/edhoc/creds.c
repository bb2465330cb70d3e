/*
 * creds.c - X.509 credentials for the EDHOC examples.
 *
 * What: our certificate turned into EDHOC's ID_CRED / CRED, and the peer's
 * certificate resolved (x5chain by value, x5t by hash among known
 * certificates) and validated with OpenSSL's X509_verify_cert against the
 * CA file (chain, signatures, validity period, CRL when one is given),
 * then checked against what the EDHOC session needs from it (key type for
 * the suite, keyUsage for signature vs static DH). The library calls
 * peer_cred_cb from cl_edhoc_process_message_2/_3 and only sees CRED and
 * the public key; the trust decision stays here, in host code.
 *
 * Why these refusal codes: an x5t we have never seen is CL_ERR_NOT_FOUND,
 * which the library answers with EDHOC error 3 (unknown credential, so the
 * peer may retry with x5chain); a certificate that is known but does not
 * validate (expired, revoked, another CA, wrong key usage) is CL_ERR_AUTH,
 * answered with error 1. `why` keeps the reason for the log: certificate
 * names and OpenSSL's verify message, nothing secret.
 */
#include "creds.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "keysrc.h"

#define FILE_MAX (64 * 1024) /* certificate / CA files read whole */
#define COSE_ALG_SHA256_64 (-15)
#define COSE_ALG_SHA256 (-16)

static void fmt_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fmt_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

void cert_name(X509 *x, bool issuer, char *out, size_t out_size)
{
    BIO *b = BIO_new(BIO_s_mem());
    int n = 0;

    if (b != NULL &&
        X509_NAME_print_ex(b, issuer ? X509_get_issuer_name(x) : X509_get_subject_name(x), 0,
                           XN_FLAG_RFC2253) >= 0)
        n = BIO_read(b, out, (int)out_size - 1);
    out[n > 0 ? n : 0] = '\0';
    BIO_free(b);
}

/* Key type and public key bytes (P-256: 65-byte uncompressed) of a certificate. */
static bool cert_pub(X509 *x, cl_key_type_t *type, uint8_t pub[CL_PUB_MAX], size_t *pub_len)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    BIGNUM *bx = NULL, *by = NULL;
    bool ok = false;

    if (pk == NULL)
        return false;
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_EC: {
        char group[32];
        if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            NULL) ||
            strcmp(group, "prime256v1") != 0)
            break;
        if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_X, &bx) ||
            !EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_EC_PUB_Y, &by) ||
            BN_bn2binpad(bx, pub + 1, 32) != 32 || BN_bn2binpad(by, pub + 33, 32) != 32)
            break;
        pub[0] = 0x04;
        *pub_len = 65;
        *type = CL_KEY_P256;
        ok = true;
        break;
    }
    case EVP_PKEY_ED25519:
    case EVP_PKEY_X25519:
        *pub_len = 32;
        ok = EVP_PKEY_get_raw_public_key(pk, pub, pub_len) == 1 && *pub_len == 32;
        *type = EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 ? CL_KEY_ED25519 : CL_KEY_X25519;
        break;
    default: break;
    }
    BN_free(bx);
    BN_free(by);
    ERR_clear_error();
    return ok;
}

/* What the certificate's keyUsage allows (absent extension: anything). */
static void cert_usage(X509 *x, cl_key_type_t type, bool *can_sign, bool *can_dh)
{
    uint32_t ku = X509_get_key_usage(x);

    *can_sign = (type == CL_KEY_P256 || type == CL_KEY_ED25519) && (ku & KU_DIGITAL_SIGNATURE);
    *can_dh = (type == CL_KEY_P256 || type == CL_KEY_X25519) && (ku & KU_KEY_AGREEMENT);
}

/* Reads a whole (small) file. */
static bool read_file(const char *path, uint8_t *buf, size_t size, size_t *len, char *err,
                      size_t err_size)
{
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        fmt_err(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    *len = fread(buf, 1, size, f);
    bool too_big = *len == size;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || too_big) {
        fmt_err(err, err_size, "cannot read %s: %s", path, bad ? "read error" : "file too large");
        return false;
    }
    return true;
}

/* One certificate from PEM or DER bytes. */
static X509 *parse_cert(const uint8_t *buf, size_t len)
{
    BIO *b = BIO_new_mem_buf(buf, (int)len);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

    BIO_free(b);
    if (x == NULL) {
        const uint8_t *p = buf;
        x = d2i_X509(NULL, &p, (long)len);
        if (x != NULL && p != buf + len) { /* trailing bytes: not one DER certificate */
            X509_free(x);
            x = NULL;
        }
    }
    ERR_clear_error();
    return x;
}

bool own_cred_load(own_cred_t *oc, const char *cert_path, bool x5chain, char *err, size_t err_size)
{
    uint8_t *file = NULL, *p, hash[32];
    size_t file_len;
    unsigned int hash_len = 0;
    uint8_t pub[CL_PUB_MAX];
    size_t pub_len;
    X509 *x = NULL;
    cl_cbor_enc_t e;
    bool ok = false;

    memset(oc, 0, sizeof *oc);
    snprintf(oc->file, sizeof oc->file, "%s", cert_path);
    oc->x5chain = x5chain;
    if ((file = OPENSSL_malloc(FILE_MAX)) == NULL) {
        fmt_err(err, err_size, "out of memory");
        goto done;
    }
    if (!read_file(cert_path, file, FILE_MAX, &file_len, err, err_size))
        goto done;
    if ((x = parse_cert(file, file_len)) == NULL) {
        fmt_err(err, err_size, "%s is not a certificate (DER or PEM)", cert_path);
        goto done;
    }
    int n = i2d_X509(x, NULL);
    if (n <= 0 || (size_t)n > sizeof oc->der) {
        fmt_err(err, err_size, "%s: certificate too large for EDHOC here (%d bytes, at most %zu)",
                cert_path, n, sizeof oc->der);
        goto done;
    }
    p = oc->der;
    oc->der_len = (size_t)i2d_X509(x, &p);
    if (!cert_pub(x, &oc->type, pub, &pub_len)) {
        fmt_err(err, err_size, "%s: the certificate's key is not P-256, Ed25519 or X25519",
                cert_path);
        goto done;
    }
    cert_usage(x, oc->type, &oc->can_sign, &oc->can_dh);
    if (!oc->can_sign && !oc->can_dh) {
        fmt_err(err, err_size, "%s: keyUsage allows neither digitalSignature nor keyAgreement",
                cert_path);
        goto done;
    }
    cert_name(x, false, oc->subject, sizeof oc->subject);

    /* CRED = bstr(DER) */
    cl_cbor_enc_init(&e, oc->cred, sizeof oc->cred);
    cl_cbor_enc_bstr(&e, oc->der, oc->der_len);
    if (cl_cbor_enc_finish(&e, &oc->cred_len) != CL_OK)
        goto too_big;
    /* ID_CRED = {34: [-15, h'SHA-256/64']} or {33: bstr(DER)} */
    cl_cbor_enc_init(&e, oc->id_cred, sizeof oc->id_cred);
    cl_cbor_enc_map(&e, 1);
    if (x5chain) {
        cl_cbor_enc_uint(&e, CL_COSE_HDR_X5CHAIN);
        cl_cbor_enc_bstr(&e, oc->der, oc->der_len);
    } else {
        if (!X509_digest(x, EVP_sha256(), hash, &hash_len) || hash_len != 32) {
            fmt_err(err, err_size, "%s: cannot hash the certificate", cert_path);
            goto done;
        }
        cl_cbor_enc_uint(&e, CL_COSE_HDR_X5T);
        cl_cbor_enc_array(&e, 2);
        cl_cbor_enc_int(&e, COSE_ALG_SHA256_64);
        cl_cbor_enc_bstr(&e, hash, 8);
    }
    if (cl_cbor_enc_finish(&e, &oc->id_cred_len) != CL_OK)
        goto too_big;
    ok = true;
    goto done;
too_big:
    fmt_err(err, err_size, "%s: certificate too large", cert_path);
done:
    X509_free(x);
    OPENSSL_free(file);
    return ok;
}

bool own_cred_check_key(const own_cred_t *oc, const cl_crypto_t *c, cl_key_t key, char *err,
                        size_t err_size)
{
    uint8_t want[CL_PUB_MAX], got[CL_PUB_MAX];
    size_t want_len = 0, got_len = 0;
    cl_key_type_t type;
    const uint8_t *p = oc->der;
    X509 *x = d2i_X509(NULL, &p, (long)oc->der_len);
    bool ok = x != NULL && cert_pub(x, &type, want, &want_len);

    X509_free(x);
    if (ok && c->ops->key_export_public(c->self, key, got, sizeof got, &got_len) != CL_OK)
        ok = false;
    if (!ok || got_len != want_len || memcmp(got, want, want_len) != 0) {
        fmt_err(err, err_size, "the private key does not belong to the certificate %s", oc->file);
        return false;
    }
    return true;
}

size_t own_cred_auth(const own_cred_t *oc, cl_edhoc_auth_t *auth, size_t room)
{
    size_t n = 0;

    for (int dh = 0; dh <= 1; dh++) {
        if (!(dh ? oc->can_dh : oc->can_sign) || n == room)
            continue;
        memset(&auth[n], 0, sizeof auth[n]);
        auth[n].id_cred = oc->id_cred;
        auth[n].id_cred_len = oc->id_cred_len;
        auth[n].cred = oc->cred;
        auth[n].cred_len = oc->cred_len;
        auth[n].key = oc->key;
        auth[n].type = oc->type;
        auth[n].static_dh = dh != 0;
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------ trust */

static bool add_known(trust_t *t, X509 *x, const char *path, char *err, size_t err_size)
{
    unsigned int n = 0;

    if (t->n_known == KNOWN_MAX) {
        fmt_err(err, err_size, "%s: more than %d known certificates", path, KNOWN_MAX);
        return false;
    }
    if (!X509_digest(x, EVP_sha256(), t->known[t->n_known].sha256, &n) || n != 32) {
        fmt_err(err, err_size, "%s: cannot hash the certificate", path);
        return false;
    }
    t->known[t->n_known++].x = x;
    return true;
}

/* Every certificate of one file (PEM with one or more, or one DER). */
static bool load_known_file(trust_t *t, const char *path, uint8_t *buf, char *err, size_t err_size)
{
    size_t len;
    X509 *x;
    size_t before = t->n_known;

    if (!read_file(path, buf, FILE_MAX, &len, err, err_size))
        return false;
    BIO *b = BIO_new_mem_buf(buf, (int)len);
    while (b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        if (!add_known(t, x, path, err, err_size)) {
            X509_free(x);
            BIO_free(b);
            return false;
        }
    }
    BIO_free(b);
    ERR_clear_error();
    if (t->n_known == before) {
        if ((x = parse_cert(buf, len)) == NULL) {
            fmt_err(err, err_size, "%s holds no certificate (DER or PEM)", path);
            return false;
        }
        if (!add_known(t, x, path, err, err_size)) {
            X509_free(x);
            return false;
        }
    }
    return true;
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool load_known(trust_t *t, const char *known, char *err, size_t err_size)
{
    struct stat sb;
    uint8_t *buf = OPENSSL_malloc(FILE_MAX);
    bool ok = false;

    if (buf == NULL) {
        fmt_err(err, err_size, "out of memory");
        return false;
    }
    if (stat(known, &sb) != 0) {
        fmt_err(err, err_size, "cannot read %s: %s", known, strerror(errno));
        goto done;
    }
    if (!S_ISDIR(sb.st_mode)) {
        ok = load_known_file(t, known, buf, err, err_size);
        goto done;
    }
    DIR *d = opendir(known);
    if (d == NULL) {
        fmt_err(err, err_size, "cannot open the directory %s: %s", known, strerror(errno));
        goto done;
    }
    struct dirent *de;
    ok = true;
    while (ok && (de = readdir(d)) != NULL) {
        char path[2048];
        if (!has_suffix(de->d_name, ".der") && !has_suffix(de->d_name, ".pem") &&
            !has_suffix(de->d_name, ".crt"))
            continue;
        snprintf(path, sizeof path, "%s/%s", known, de->d_name);
        ok = load_known_file(t, path, buf, err, err_size);
    }
    closedir(d);
done:
    OPENSSL_free(buf);
    return ok;
}

bool trust_load(trust_t *t, const char *ca_file, const char *crl_file, const char *known, char *err,
                size_t err_size)
{
    memset(t, 0, sizeof *t);
    if (ca_file == NULL) {
        fmt_err(err, err_size,
                "--ca FILE is required: the CA that peers' certificates must "
                "chain to");
        return false;
    }
    if ((t->store = X509_STORE_new()) == NULL) {
        fmt_err(err, err_size, "out of memory");
        return false;
    }
    if (X509_STORE_load_file(t->store, ca_file) != 1) {
        fmt_err(err, err_size, "cannot load CA certificates from %s", ca_file);
        ERR_clear_error();
        return false;
    }
    if (crl_file != NULL) {
        if (X509_STORE_load_file(t->store, crl_file) != 1) {
            fmt_err(err, err_size, "cannot load the CRL %s", crl_file);
            ERR_clear_error();
            return false;
        }
        X509_STORE_set_flags(t->store, X509_V_FLAG_CRL_CHECK);
    }
    return known == NULL || load_known(t, known, err, err_size);
}

void trust_free(trust_t *t)
{
    X509_STORE_free(t->store);
    for (size_t i = 0; i < t->n_known; i++)
        X509_free(t->known[i].x);
    memset(t, 0, sizeof *t);
}

/* --------------------------------------------------------- peer callback */

static cl_status_t refuse(peer_ctx_t *p, cl_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static cl_status_t refuse(peer_ctx_t *p, cl_status_t st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
    return st;
}

/* Finds the known certificate whose SHA-256 starts with hash[0..len). */
static X509 *find_known(const trust_t *t, const uint8_t *hash, size_t len)
{
    for (size_t i = 0; i < t->n_known; i++)
        if (memcmp(t->known[i].sha256, hash, len) == 0)
            return t->known[i].x;
    return NULL;
}

/* x5chain value: one bstr (the leaf), or an array of bstr (leaf first). */
static cl_status_t parse_x5chain(peer_ctx_t *p, const uint8_t *v, size_t vlen, X509 **leaf,
                                 STACK_OF(X509) * *rest, const uint8_t **leaf_der,
                                 size_t *leaf_der_len)
{
    cl_cbor_dec_t d;
    cl_cbor_type_t t;
    size_t n = 1;

    cl_cbor_dec_init(&d, v, vlen);
    if (cl_cbor_dec_peek(&d, &t) != CL_OK)
        return refuse(p, CL_ERR_BAD_INPUT, "malformed x5chain");
    if (t == CL_CBOR_ARRAY && (cl_cbor_dec_array(&d, &n) != CL_OK || n < 2 || n > 4))
        return refuse(p, CL_ERR_BAD_INPUT, "x5chain array of 2..4 certificates expected");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *der, *q;
        size_t der_len;
        if (cl_cbor_dec_bstr(&d, &der, &der_len) != CL_OK)
            return refuse(p, CL_ERR_BAD_INPUT, "malformed x5chain");
        q = der;
        X509 *x = d2i_X509(NULL, &q, (long)der_len);
        ERR_clear_error();
        if (x == NULL || q != der + der_len) {
            X509_free(x);
            return refuse(p, CL_ERR_BAD_INPUT,
                          "x5chain holds something that is not a DER "
                          "certificate");
        }
        if (i == 0) {
            *leaf = x;
            *leaf_der = der;
            *leaf_der_len = der_len;
        } else if (!sk_X509_push(*rest, x)) {
            X509_free(x);
            return refuse(p, CL_ERR_CRYPTO, "out of memory");
        }
    }
    return cl_cbor_dec_at_end(&d) ? CL_OK : refuse(p, CL_ERR_BAD_INPUT, "malformed x5chain");
}

cl_status_t peer_cred_cb(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                         size_t id_cred_len, cl_edhoc_peer_t *peer)
{
    peer_ctx_t *p = arg;
    const uint8_t *v, *leaf_der = NULL;
    size_t vlen, leaf_der_len = 0;
    X509 *leaf = NULL;
    STACK_OF(X509) *rest = sk_X509_new_null();
    X509_STORE_CTX *ctx = NULL;
    uint8_t pub[CL_PUB_MAX], der[CERT_DER_MAX];
    size_t pub_len = 0;
    cl_key_type_t type;
    cl_edhoc_suite_t su;
    cl_status_t st;

    p->why[0] = p->subject[0] = p->issuer[0] = '\0';
    p->how = "?";
    p->cred_len = 0;
    if (p->session == NULL || rest == NULL || cl_edhoc_suite(p->session->suite, &su) != CL_OK) {
        st = refuse(p, CL_ERR_STATE, "internal: no session for the credential callback");
        goto done;
    }
    /* x5chain (by value) or x5t (by reference); nothing else is accepted here. */
    if (cl_cose_header_find(id_cred, id_cred_len, CL_COSE_HDR_X5CHAIN, &v, &vlen) == CL_OK) {
        p->how = "x5chain";
        if ((st = parse_x5chain(p, v, vlen, &leaf, &rest, &leaf_der, &leaf_der_len)) != CL_OK)
            goto done;
    } else if (cl_cose_header_find(id_cred, id_cred_len, CL_COSE_HDR_X5T, &v, &vlen) == CL_OK) {
        cl_cbor_dec_t d;
        size_t n;
        int64_t alg;
        const uint8_t *hash;
        size_t hash_len;
        p->how = "x5t";
        cl_cbor_dec_init(&d, v, vlen);
        if (cl_cbor_dec_array(&d, &n) != CL_OK || n != 2 || cl_cbor_dec_int(&d, &alg) != CL_OK ||
            cl_cbor_dec_bstr(&d, &hash, &hash_len) != CL_OK) {
            st = refuse(p, CL_ERR_BAD_INPUT, "malformed x5t");
            goto done;
        }
        if (!((alg == COSE_ALG_SHA256_64 && hash_len == 8) ||
              (alg == COSE_ALG_SHA256 && hash_len == 32))) {
            st = refuse(p, CL_ERR_NOT_FOUND, "x5t with hash algorithm %lld is not supported",
                        (long long)alg);
            goto done;
        }
        X509 *known = find_known(p->trust, hash, hash_len);
        if (known == NULL) {
            st = refuse(p, CL_ERR_NOT_FOUND, "x5t does not match any known certificate");
            goto done;
        }
        X509_up_ref(known);
        leaf = known;
        int n_der = i2d_X509(leaf, NULL);
        uint8_t *q = der;
        if (n_der <= 0 || (size_t)n_der > sizeof der) {
            st = refuse(p, CL_ERR_LIMIT, "known certificate too large");
            goto done;
        }
        leaf_der_len = (size_t)i2d_X509(leaf, &q);
        leaf_der = der;
    } else {
        st = refuse(p, CL_ERR_NOT_FOUND, "only X.509 credentials (x5t, x5chain) are accepted");
        goto done;
    }
    cert_name(leaf, false, p->subject, sizeof p->subject);
    cert_name(leaf, true, p->issuer, sizeof p->issuer);

    /* The chain to our CA: signatures, validity period, CRL if configured. */
    if ((ctx = X509_STORE_CTX_new()) == NULL ||
        !X509_STORE_CTX_init(ctx, p->trust->store, leaf, rest)) {
        st = refuse(p, CL_ERR_CRYPTO, "out of memory");
        goto done;
    }
    if (X509_verify_cert(ctx) != 1) {
        st = refuse(p, CL_ERR_AUTH, "certificate '%s' (issuer '%s') refused: %s", p->subject,
                    p->issuer, X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto done;
    }

    /* What this session needs the key for. */
    bool peer_static = own_role == CL_EDHOC_RESPONDER ? (p->session->method & 2) != 0
                                                      : (p->session->method & 1) != 0;
    bool can_sign, can_dh;
    if (!cert_pub(leaf, &type, pub, &pub_len)) {
        st = refuse(p, CL_ERR_AUTH, "certificate '%s': unsupported key type", p->subject);
        goto done;
    }
    cert_usage(leaf, type, &can_sign, &can_dh);
    cl_key_type_t need = peer_static ? su.dh : su.sig_key;
    if (type != need) {
        st = refuse(p, CL_ERR_AUTH, "certificate '%s' has a %s key; suite %d needs %s for %s",
                    p->subject, key_type_name(type), su.id, key_type_name(need),
                    peer_static ? "static DH" : "signatures");
        goto done;
    }
    if (peer_static ? !can_dh : !can_sign) {
        st = refuse(p, CL_ERR_AUTH, "certificate '%s': keyUsage does not allow %s", p->subject,
                    peer_static ? "keyAgreement (static DH)" : "digitalSignature");
        goto done;
    }
    if (leaf_der_len + 3 > sizeof p->cred) {
        st = refuse(p, CL_ERR_LIMIT, "certificate too large");
        goto done;
    }
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, p->cred, sizeof p->cred);
    cl_cbor_enc_bstr(&e, leaf_der, leaf_der_len);
    if ((st = cl_cbor_enc_finish(&e, &p->cred_len)) != CL_OK)
        goto done;
    if (!peer_static &&
        p->crypto->ops->key_import_public(p->crypto->self, type, pub, pub_len, &p->key) != CL_OK) {
        st = refuse(p, CL_ERR_AUTH, "certificate '%s': the provider refused its key", p->subject);
        goto done;
    }
    peer->cred = p->cred;
    peer->cred_len = p->cred_len;
    peer->key = p->key;
    memcpy(peer->pub, pub, pub_len);
    peer->pub_len = pub_len;
    p->type = type;
    st = CL_OK;
done:
    X509_STORE_CTX_free(ctx);
    X509_free(leaf);
    sk_X509_pop_free(rest, X509_free);
    ERR_clear_error();
    return st;
}

void peer_release(peer_ctx_t *p)
{
    if (p->key != CL_KEY_NONE)
        p->crypto->ops->key_destroy(p->crypto->self, p->key);
    p->key = CL_KEY_NONE;
}
