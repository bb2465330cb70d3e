/*
 * bench_edhoc.c - EDHOC (RFC 9528) handshakes per second on one core, side by
 * side with the raw asymmetric operations they need, measured in the same run.
 *
 * Handshake cases, for cipher suites 0 (X25519, Ed25519) and 2 (P-256, ES256)
 * and methods 0 (signature / signature) and 3 (static DH / static DH), with
 * CCS credentials referenced by kid (compact ID_CRED), and for method 0 also
 * with X.509 certificates referenced by x5t:
 *
 *   hs_*     all steps of BATCH sessions, run step by step: every initiator
 *            message_1, then every responder process_message_1, then every
 *            responder message_2, ... Each step of each batch is timed on its
 *            own, so the responder's time is the sum of its steps alone (init,
 *            process_message_1, message_2, process_message_3, free) and the
 *            initiator's messages are made outside it. message_4 is timed as
 *            its own step (reported separately: it is optional).
 *   full_*   both sides of BATCH sessions back to back on one core (init,
 *            message_1 .. process_message_3, free), timed as one block.
 *
 * Credentials: keys are generated at start-up inside the providers (one
 * provider instance per side). The peer-credential callback is a table
 * lookup keyed on the received ID_CRED that returns CRED and a key handle
 * imported once at start-up (signature keys) or the static DH public key
 * bytes - a server that knows its peers. Certificates are issued at
 * start-up by a P-256 test CA made here with libcrypto; a certificate found
 * in the table counts as validated (validated when it was added).
 *
 * Baselines, same process, same rounds:
 *
 *   raw_*    OpenSSL called directly with everything prepared once (EC_GROUP,
 *            BN_CTX, contexts, the peer's long-term key): P-256 key
 *            generation (random scalar + fixed-base multiplication +
 *            encoding), point decompression of an x-only key, ECDH with an
 *            already decoded point and with an x-only key, ES256 sign and
 *            verify (SHA-256 + EVP_PKEY_sign/verify on a kept context);
 *            X25519 key generation and ECDH (fresh peer key / kept peer key),
 *            Ed25519 sign and verify.
 *   prov_*   the same operations through the cloister OpenSSL provider
 *            (key_generate + key_destroy, ecdh, sign, verify by handle).
 *   seq_*    the responder's raw operations one handshake's set after the
 *            other, in handshake order: what mixing them costs against the
 *            sum of each measured alone (caches, branch predictors).
 *   raw_sha256, raw_hkdf_expand_md, prov_sha256, prov_hkdf_*, prov_aead_once
 *            the symmetric work around the primitives (SHA-256, HKDF - raw:
 *            HMAC on a kept EVP_MD_CTX -, one-time AEAD key + encrypt).
 *
 * The provider calls of one responder handshake are counted (untimed)
 * through a wrapper of the provider table; with the per-call costs above
 * they split the responder's time into asymmetric, symmetric and the rest.
 *
 * The raw baseline of a configuration is the responder's asymmetric work
 * done at raw cost: 1 keygen + 1 ECDH with the x-only G_X + 1 sign + 1 verify
 * (method 0), 1 keygen + 1 ECDH with the x-only G_X + 2 ECDH with decoded
 * points (method 3: G_RX reuses the decoded G_X, G_IY the initiator's
 * static key, decoded when it was stored). Baseline handshakes/s = 1 / sum;
 * EDHOC / baseline is reported in %. The initiator does the same set of
 * operations, so the full-handshake baseline is half of it.
 *
 * Method: each case gets a warm-up, then --reps rounds in which every case
 * runs >= --min-time seconds of timed work, cases interleaved round by round
 * (a load change hits handshakes and baselines alike); median and min..max
 * over the rounds. CLOCK_MONOTONIC around each batch (BATCH sessions, or
 * OP_BATCH operations). Before timing: the raw operations are checked
 * against the provider (same keys, same results), and a handshake of every
 * suite x method x credential type completes with both sides agreeing on
 * PRK_out and the exporter - those handshakes also give the message sizes.
 * OpenSSL heap allocations inside timed regions are counted through
 * CRYPTO_set_mem_functions. The core clock is estimated with a dependent-add
 * chain to give cycles.
 */
#define _GNU_SOURCE /* sched_setaffinity */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "bench_common.h"
#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/crypto.h"
#include "cloister/crypto_openssl.h"
#include "cloister/edhoc.h"

#ifndef CL_BENCH_BUILD
#define CL_BENCH_BUILD "unknown build"
#endif

#define BATCH 16    /* sessions per batch */
#define OP_BATCH 32 /* raw operations per batch */
#define POOL 16     /* distinct peer keys / messages the raw operations cycle through */
#define MSG_MAX 1200
#define ID_CRED_MAX 600
#define CRED_MAX 600
#define CCS_MAX 200
#define SIG_MSG_LEN 192 /* bytes signed by the raw sign/verify (an EDHOC Sig_structure is ~150-250) */
#define ES_DER_MAX 72
#define MAX_REPS 64
#define MAX_CASES 64

#define NOINLINE __attribute__((noinline))

/* ------------------------------------------------------------------ */
/* Credentials and parties                                             */
/* ------------------------------------------------------------------ */

enum { R_I, R_R, N_ROLES };
enum { K_ED25519, K_P256_SIG, K_X25519, K_P256_DH, N_KINDS };
enum { C_KID, C_KCCS, C_X5T, C_X5CHAIN, N_CREDS };

static const char *const role_name[N_ROLES] = {"I", "R"};
static const char *const kind_name[N_KINDS] = {"ed25519", "p256-sig", "x25519", "p256-dh"};
static const cl_key_type_t kind_type[N_KINDS] = {CL_KEY_ED25519, CL_KEY_P256, CL_KEY_X25519,
                                                  CL_KEY_P256};
static const char *const cred_name[N_CREDS] = {"kid", "kccs", "x5t", "x5chain"};
static const char *const cred_desc[N_CREDS] = {
    "kid -> CCS (compact ID_CRED)", "kccs (CCS by value)", "x5t (SHA-256/64) -> X.509",
    "x5chain (one X.509 cert)"};

/* One-byte kids that encode an int (sent compact, RFC 9528 3.5.3.2), as in the test matrix. */
static const uint8_t kids[N_ROLES][N_KINDS] = {{0x0a, 0x2b, 0x0c, 0x2c}, {0x32, 0x05, 0x06, 0x33}};
static const uint8_t cid_i[1] = {0x2d}; /* C_I = -14 */
static const uint8_t cid_r[1] = {0x27}; /* C_R = -8 */

#define N_SUITES 2
static const int suite_ids[N_SUITES] = {0, 2};

typedef struct cred {
    uint8_t id_cred[ID_CRED_MAX]; /* ID_CRED_x (map form) */
    size_t id_cred_len;
    uint8_t cred[CRED_MAX]; /* CRED_x */
    size_t cred_len;
} cred_t;

typedef struct keyset {
    cl_key_t priv; /* in the owner's provider */
    uint8_t pub[CL_PUB_MAX];
    size_t pub_len;
    uint8_t *cert; /* DER, issued by the bench CA */
    size_t cert_len;
    uint8_t ccs[CCS_MAX];
    size_t ccs_len;
    cred_t c[N_CREDS];
} keyset_t;

/* What one role knows about the other: looked up by the received ID_CRED. */
typedef struct peer_entry {
    const uint8_t *id_cred;
    size_t id_cred_len;
    const uint8_t *cred;
    size_t cred_len;
    cl_key_t key; /* signature keys: imported once into this role's provider */
    uint8_t pub[CL_PUB_MAX];
    size_t pub_len; /* static DH keys: the public key bytes */
} peer_entry_t;

typedef struct trust {
    peer_entry_t e[N_KINDS * N_CREDS];
    size_t n;
} trust_t;

typedef struct party {
    cl_edhoc_config_t cfg;
    cl_edhoc_auth_t auth[N_KINDS];
    int suites[N_SUITES];
} party_t;

/* One session pair and its messages. */
typedef struct hs {
    cl_edhoc_t i, r;
    size_t len[4];
    uint8_t m[4][MSG_MAX];
} hs_t;

/* The configuration the handshake steps run. */
typedef struct hs_cfg {
    const party_t *pi, *pr;
    int suite, method, ct;
} hs_cfg_t;

/* ------------------------------------------------------------------ */
/* Raw OpenSSL state                                                   */
/* ------------------------------------------------------------------ */

typedef struct raw {
    EC_GROUP *g;
    BN_CTX *bn;
    const BIGNUM *order;
    BIGNUM *d; /* our ECDH scalar (constant-time flag) */
    BIGNUM *k; /* key generation scratch scalar */
    BIGNUM *x;
    EC_POINT *q, *r;
    EC_POINT *peer[POOL];       /* decoded peer points */
    uint8_t peer_x[POOL][32];   /* the same, x-only (EDHOC G_X) */
    uint8_t peer_enc[POOL][65]; /* the same, uncompressed (a CCS key) */
    uint8_t msg[POOL][SIG_MSG_LEN];

    EVP_MD *sha256;
    EVP_MD_CTX *md;
    EVP_PKEY *es_key, *es_pub; /* ES256 key pair; its public half alone (a peer's key) */
    EVP_PKEY_CTX *es_sign, *es_verify;
    uint8_t es_sig[POOL][ES_DER_MAX];
    size_t es_sig_len[POOL];
    uint8_t es_raw[POOL][64]; /* the same signatures as r || s (COSE form) */

    EVP_PKEY_CTX *x_gen, *x_import, *x_derive;
    EVP_PKEY *x_priv;
    EVP_PKEY *x_peer_pk[POOL];
    uint8_t x_peer[POOL][32];

    EVP_PKEY *ed_key, *ed_pub;
    EVP_MD_CTX *ed_sign, *ed_verify;
    uint8_t ed_sig[POOL][64];

    /* the same keys in the responder's provider */
    cl_key_t p_eph, p_es, p_es_pub, p_x, p_ed, p_ed_pub;
} raw_t;

/* ------------------------------------------------------------------ */
/* Global state                                                        */
/* ------------------------------------------------------------------ */

typedef struct bench {
    cl_crypto_t crypto[N_ROLES];
    keyset_t ks[N_ROLES][N_KINDS];
    trust_t trust[N_ROLES];
    party_t resp[N_CREDS];            /* responder: suites 0 and 2 */
    party_t init[N_CREDS][N_SUITES]; /* initiator: one suite each */
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    hs_cfg_t cur;
    hs_t hs[BATCH];
    raw_t raw;
    unsigned j; /* pool index of the raw operations */
    uint64_t sum; /* consumes outputs so that no work can be dropped */
} bench_t;

static bench_t g;

static void die(const char *what, int st)
{
    fprintf(stderr, "bench_edhoc: %s failed (%d %s)\n", what, st,
            st <= 0 ? cl_status_str((cl_status_t)st) : "");
    ERR_print_errors_fp(stderr);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------------ */
/* Test CA (libcrypto), CCS and ID_CRED encodings                      */
/* ------------------------------------------------------------------ */

static EVP_PKEY *pub_pkey(cl_key_type_t type, const uint8_t *pub, size_t len)
{
    EVP_PKEY *pk = NULL;
    if (type != CL_KEY_P256)
        return EVP_PKEY_new_raw_public_key_ex(NULL, type == CL_KEY_X25519 ? "X25519" : "ED25519",
                                              NULL, pub, len);
    char group[] = "prime256v1";
    uint8_t copy[CL_PUB_MAX];
    memcpy(copy, pub, len);
    OSSL_PARAM params[3] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, copy, len),
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

/*
 * A v3 certificate (CN, serial, one year, one extension), signed by the CA
 * key (issuer NULL: self-signed). Re-signed until the ECDSA signature's DER
 * is 72 bytes, so certificate and message sizes are the same on every run.
 */
static X509 *make_cert(EVP_PKEY *subject_key, const char *cn, long serial, X509 *issuer,
                       const char *ext_basic, const char *ext_usage)
{
    X509 *x = X509_new();
    bool ok = x != NULL && X509_set_version(x, 2) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(x), -3600) != NULL &&
              X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400) != NULL &&
              X509_set_pubkey(x, subject_key) == 1 &&
              X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                         (const unsigned char *)cn, -1, -1, 0) == 1;
    if (ok)
        ok = X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)) == 1;
    if (ok && ext_basic != NULL)
        ok = add_ext(x, issuer != NULL ? issuer : x, NID_basic_constraints, ext_basic) == 1;
    if (ok && ext_usage != NULL)
        ok = add_ext(x, issuer != NULL ? issuer : x, NID_key_usage, ext_usage) == 1;
    for (int i = 0; ok && i < 64; i++) {
        const ASN1_BIT_STRING *sig;
        ok = X509_sign(x, g.ca_key, EVP_sha256()) > 0;
        X509_get0_signature(&sig, NULL, x);
        if (ok && ASN1_STRING_length(sig) == ES_DER_MAX)
            return x;
    }
    X509_free(x);
    return NULL;
}

static uint8_t *cert_der(X509 *x, size_t *len)
{
    int n = i2d_X509(x, NULL);
    uint8_t *der = n > 0 ? malloc((size_t)n) : NULL, *p = der;
    if (der == NULL || i2d_X509(x, &p) != n)
        die("i2d_X509", 1);
    *len = (size_t)n;
    return der;
}

static void ca_init(void)
{
    g.ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (g.ca_key == NULL)
        die("CA key", 1);
    g.ca_cert =
        make_cert(g.ca_key, "Cloister Bench CA", 1, NULL, "critical,CA:TRUE", "critical,keyCertSign");
    if (g.ca_cert == NULL)
        die("CA certificate", 1);
}

static size_t enc_done(cl_cbor_enc_t *e, const char *what)
{
    size_t n;
    if (cl_cbor_enc_finish(e, &n) != CL_OK)
        die(what, 1);
    return n;
}

/* {2: subject, 8: {1: COSE_Key}} with COSE_Key {1: kty, 2: kid, -1: crv, -2: x, (-3: y)}. */
static size_t make_ccs(uint8_t *out, size_t size, const char *subject, cl_key_type_t type,
                       const uint8_t *pub, size_t pub_len, uint8_t kid)
{
    cl_cbor_enc_t e;
    bool ec2 = type == CL_KEY_P256;
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_uint(&e, 2); /* sub */
    cl_cbor_enc_tstr_z(&e, subject);
    cl_cbor_enc_uint(&e, 8); /* cnf */
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 1); /* COSE_Key */
    cl_cbor_enc_map(&e, ec2 ? 5 : 4);
    cl_cbor_enc_uint(&e, 1);
    cl_cbor_enc_uint(&e, ec2 ? 2 : 1); /* kty EC2 / OKP */
    cl_cbor_enc_uint(&e, 2);
    cl_cbor_enc_bstr(&e, &kid, 1);
    cl_cbor_enc_int(&e, -1);
    cl_cbor_enc_uint(&e, (uint64_t)type); /* crv: 1 P-256, 4 X25519, 6 Ed25519 */
    cl_cbor_enc_int(&e, -2);
    if (ec2) {
        cl_cbor_enc_bstr(&e, pub + 1, 32);
        cl_cbor_enc_int(&e, -3);
        cl_cbor_enc_bstr(&e, pub + 33, 32);
    } else {
        cl_cbor_enc_bstr(&e, pub, pub_len);
    }
    return enc_done(&e, "CCS encoding");
}

static void make_creds(keyset_t *k, uint8_t kid)
{
    cl_cbor_enc_t e;
    cred_t *c = k->c;
    uint8_t h[32];
    unsigned hl = 0;

    /* kid -> CCS: ID_CRED {4: kid}, CRED the CCS. */
    cl_cbor_enc_init(&e, c[C_KID].id_cred, ID_CRED_MAX);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, CL_COSE_HDR_KID);
    cl_cbor_enc_bstr(&e, &kid, 1);
    c[C_KID].id_cred_len = enc_done(&e, "kid");
    memcpy(c[C_KID].cred, k->ccs, k->ccs_len);
    c[C_KID].cred_len = k->ccs_len;
    /* kccs: ID_CRED {14: CCS}, CRED the CCS. */
    cl_cbor_enc_init(&e, c[C_KCCS].id_cred, ID_CRED_MAX);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 14);
    cl_cbor_enc_raw(&e, k->ccs, k->ccs_len);
    c[C_KCCS].id_cred_len = enc_done(&e, "kccs");
    memcpy(c[C_KCCS].cred, k->ccs, k->ccs_len);
    c[C_KCCS].cred_len = k->ccs_len;
    /* x5t: {34: [-15, SHA-256/64(DER)]}, CRED bstr(DER). */
    if (EVP_Digest(k->cert, k->cert_len, h, &hl, EVP_sha256(), NULL) != 1 || hl != 32)
        die("SHA-256 of a certificate", 1);
    cl_cbor_enc_init(&e, c[C_X5T].id_cred, ID_CRED_MAX);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, CL_COSE_HDR_X5T);
    cl_cbor_enc_array(&e, 2);
    cl_cbor_enc_int(&e, -15);
    cl_cbor_enc_bstr(&e, h, 8);
    c[C_X5T].id_cred_len = enc_done(&e, "x5t");
    cl_cbor_enc_init(&e, c[C_X5T].cred, CRED_MAX);
    cl_cbor_enc_bstr(&e, k->cert, k->cert_len);
    c[C_X5T].cred_len = enc_done(&e, "certificate bstr");
    /* x5chain with one certificate: {33: bstr(DER)}, CRED bstr(DER). */
    cl_cbor_enc_init(&e, c[C_X5CHAIN].id_cred, ID_CRED_MAX);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, CL_COSE_HDR_X5CHAIN);
    cl_cbor_enc_bstr(&e, k->cert, k->cert_len);
    c[C_X5CHAIN].id_cred_len = enc_done(&e, "x5chain");
    memcpy(c[C_X5CHAIN].cred, c[C_X5T].cred, c[C_X5T].cred_len);
    c[C_X5CHAIN].cred_len = c[C_X5T].cred_len;
}

static void make_keyset(int role, int kind)
{
    keyset_t *k = &g.ks[role][kind];
    const cl_crypto_t *c = &g.crypto[role];
    bool dh = kind >= K_X25519;
    char cn[32];
    cl_status_t st;

    st = c->ops->key_generate(c->self, kind_type[kind], dh ? CL_KEY_USAGE_ECDH : CL_KEY_USAGE_SIGN,
                              &k->priv, k->pub, sizeof k->pub, &k->pub_len);
    if (st != CL_OK)
        die("key_generate (credential key)", st);
    snprintf(cn, sizeof cn, "%s-%s", role_name[role], kind_name[kind]);
    EVP_PKEY *pk = pub_pkey(kind_type[kind], k->pub, k->pub_len);
    X509 *x = pk != NULL ? make_cert(pk, cn, 100 + 10 * role + kind, g.ca_cert, NULL,
                                     dh ? "critical,keyAgreement" : "critical,digitalSignature")
                         : NULL;
    if (x == NULL)
        die("leaf certificate", 1);
    k->cert = cert_der(x, &k->cert_len);
    X509_free(x);
    EVP_PKEY_free(pk);
    k->ccs_len =
        make_ccs(k->ccs, sizeof k->ccs, cn, kind_type[kind], k->pub, k->pub_len, kids[role][kind]);
    make_creds(k, kids[role][kind]);
}

/* Role `role` learns every credential of the other role; signature keys are imported once. */
static void make_trust(int role)
{
    trust_t *t = &g.trust[role];
    const cl_crypto_t *c = &g.crypto[role];
    int peer = 1 - role;
    for (int k = 0; k < N_KINDS; k++) {
        const keyset_t *s = &g.ks[peer][k];
        cl_key_t key = CL_KEY_NONE;
        bool dh = k >= K_X25519;
        if (!dh) {
            cl_status_t st =
                c->ops->key_import_public(c->self, kind_type[k], s->pub, s->pub_len, &key);
            if (st != CL_OK)
                die("key_import_public (peer key)", st);
        }
        for (int ct = 0; ct < N_CREDS; ct++) {
            peer_entry_t *e = &t->e[t->n++];
            e->id_cred = s->c[ct].id_cred;
            e->id_cred_len = s->c[ct].id_cred_len;
            e->cred = s->c[ct].cred;
            e->cred_len = s->c[ct].cred_len;
            e->key = key;
            if (dh) {
                memcpy(e->pub, s->pub, s->pub_len);
                e->pub_len = s->pub_len;
            }
        }
    }
}

/* The peer-credential callback: a table lookup returning cached key material. */
static cl_status_t lookup_peer(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                               size_t len, cl_edhoc_peer_t *peer)
{
    const trust_t *t = arg;
    (void)own_role;
    for (size_t i = 0; i < t->n; i++) {
        const peer_entry_t *e = &t->e[i];
        if (e->id_cred_len == len && memcmp(e->id_cred, id_cred, len) == 0) {
            peer->cred = e->cred;
            peer->cred_len = e->cred_len;
            peer->key = e->key;
            if (e->pub_len != 0)
                memcpy(peer->pub, e->pub, e->pub_len);
            peer->pub_len = e->pub_len;
            return CL_OK;
        }
    }
    return CL_ERR_NOT_FOUND;
}

static void party_init(party_t *p, int role, int ct, const int *suites, size_t n_suites)
{
    memset(p, 0, sizeof *p);
    for (int k = 0; k < N_KINDS; k++) {
        const keyset_t *s = &g.ks[role][k];
        p->auth[k].id_cred = s->c[ct].id_cred;
        p->auth[k].id_cred_len = s->c[ct].id_cred_len;
        p->auth[k].cred = s->c[ct].cred;
        p->auth[k].cred_len = s->c[ct].cred_len;
        p->auth[k].key = s->priv;
        p->auth[k].type = kind_type[k];
        p->auth[k].static_dh = k >= K_X25519;
    }
    memcpy(p->suites, suites, n_suites * sizeof *suites);
    p->cfg.crypto = &g.crypto[role];
    p->cfg.suites = p->suites;
    p->cfg.n_suites = n_suites;
    p->cfg.auth = p->auth;
    p->cfg.n_auth = N_KINDS;
    p->cfg.peer_cred = lookup_peer;
    p->cfg.peer_cred_arg = &g.trust[role];
}

static void setup_credentials(void)
{
    ca_init();
    for (int r = 0; r < N_ROLES; r++)
        for (int k = 0; k < N_KINDS; k++)
            make_keyset(r, k);
    make_trust(R_I);
    make_trust(R_R);
    for (int ct = 0; ct < N_CREDS; ct++) {
        party_init(&g.resp[ct], R_R, ct, suite_ids, N_SUITES);
        for (int s = 0; s < N_SUITES; s++)
            party_init(&g.init[ct][s], R_I, ct, &suite_ids[s], 1);
    }
}

static int suite_index(int suite)
{
    return suite == 0 ? 0 : 1;
}

static void set_cfg(int suite, int method, int ct)
{
    g.cur.pi = &g.init[ct][suite_index(suite)];
    g.cur.pr = &g.resp[ct];
    g.cur.suite = suite;
    g.cur.method = method;
    g.cur.ct = ct;
}

/* ------------------------------------------------------------------ */
/* Handshake steps (noinline: the profilers select timed_r_* / timed_*) */
/* ------------------------------------------------------------------ */

static void hs_check(cl_status_t st, const char *what)
{
    if (st != CL_OK) {
        char buf[160];
        snprintf(buf, sizeof buf, "%s (suite %d, method %d, %s)", what, g.cur.suite, g.cur.method,
                 cred_name[g.cur.ct]);
        die(buf, st);
    }
}

NOINLINE static void timed_i_init(void)
{
    for (size_t n = 0; n < BATCH; n++)
        hs_check(cl_edhoc_init(&g.hs[n].i, &g.cur.pi->cfg, CL_EDHOC_INITIATOR, cid_i, 1),
                 "initiator init");
}

NOINLINE static void timed_r_init(void)
{
    for (size_t n = 0; n < BATCH; n++)
        hs_check(cl_edhoc_init(&g.hs[n].r, &g.cur.pr->cfg, CL_EDHOC_RESPONDER, cid_r, 1),
                 "responder init");
}

NOINLINE static void timed_i_message_1(void)
{
    for (size_t n = 0; n < BATCH; n++) {
        hs_t *h = &g.hs[n];
        hs_check(cl_edhoc_message_1(&h->i, g.cur.method, g.cur.suite, NULL, 0, h->m[0], MSG_MAX,
                                    &h->len[0]),
                 "message_1");
    }
}

NOINLINE static void timed_r_process_message_1(void)
{
    for (size_t n = 0; n < BATCH; n++) {
        hs_t *h = &g.hs[n];
        hs_check(cl_edhoc_process_message_1(&h->r, h->m[0], h->len[0]), "process_message_1");
    }
}

NOINLINE static void timed_r_message_2(void)
{
    for (size_t n = 0; n < BATCH; n++) {
        hs_t *h = &g.hs[n];
        hs_check(cl_edhoc_message_2(&h->r, NULL, 0, h->m[1], MSG_MAX, &h->len[1]), "message_2");
    }
}

NOINLINE static void timed_i_process_message_2(void)
{
    for (size_t n = 0; n < BATCH; n++) {
        hs_t *h = &g.hs[n];
        hs_check(cl_edhoc_process_message_2(&h->i, h->m[1], h->len[1]), "process_message_2");
    }
}

NOINLINE static void timed_i_message_3(void)
{
    for (size_t n = 0; n < BATCH; n++) {
        hs_t *h = &g.hs[n];
        hs_check(cl_edhoc_message_3(&h->i, NULL, 0, h->m[2], MSG_MAX, &h->len[2]), "message_3");
    }
}

NOINLINE static void timed_r_process_message_3(void)
{
    for (size_t n = 0; n < BATCH; n++) {
        hs_t *h = &g.hs[n];
        hs_check(cl_edhoc_process_message_3(&h->r, h->m[2], h->len[2]), "process_message_3");
        g.sum += h->r.prk_out[0];
    }
}

NOINLINE static void timed_r_message_4(void)
{
    for (size_t n = 0; n < BATCH; n++) {
        hs_t *h = &g.hs[n];
        hs_check(cl_edhoc_message_4(&h->r, NULL, 0, h->m[3], MSG_MAX, &h->len[3]), "message_4");
    }
}

NOINLINE static void timed_i_process_message_4(void)
{
    for (size_t n = 0; n < BATCH; n++) {
        hs_t *h = &g.hs[n];
        hs_check(cl_edhoc_process_message_4(&h->i, h->m[3], h->len[3]), "process_message_4");
        g.sum += h->i.prk_out[0];
    }
}

NOINLINE static void timed_r_free(void)
{
    for (size_t n = 0; n < BATCH; n++)
        cl_edhoc_free(&g.hs[n].r);
}

NOINLINE static void timed_i_free(void)
{
    for (size_t n = 0; n < BATCH; n++)
        cl_edhoc_free(&g.hs[n].i);
}

enum step {
    STEP_I_INIT,
    STEP_R_INIT,
    STEP_I_M1,
    STEP_R_PM1,
    STEP_R_M2,
    STEP_I_PM2,
    STEP_I_M3,
    STEP_R_PM3,
    STEP_R_M4,
    STEP_I_PM4,
    STEP_R_FREE,
    STEP_I_FREE,
    N_STEPS
};

static const struct {
    const char *name;
    bool responder;
    void (*fn)(void);
} steps[N_STEPS] = {
    {"I init", false, timed_i_init},
    {"R init", true, timed_r_init},
    {"I message_1", false, timed_i_message_1},
    {"R process_message_1", true, timed_r_process_message_1},
    {"R message_2", true, timed_r_message_2},
    {"I process_message_2", false, timed_i_process_message_2},
    {"I message_3", false, timed_i_message_3},
    {"R process_message_3", true, timed_r_process_message_3},
    {"R message_4", true, timed_r_message_4},
    {"I process_message_4", false, timed_i_process_message_4},
    {"R free", true, timed_r_free},
    {"I free", false, timed_i_free},
};

/* Both sides back to back, message_1 .. process_message_3 (no message_4). */
NOINLINE static void timed_full(void)
{
    for (size_t n = 0; n < BATCH; n++) {
        hs_t *h = &g.hs[n];
        hs_check(cl_edhoc_init(&h->i, &g.cur.pi->cfg, CL_EDHOC_INITIATOR, cid_i, 1), "init");
        hs_check(cl_edhoc_init(&h->r, &g.cur.pr->cfg, CL_EDHOC_RESPONDER, cid_r, 1), "init");
        hs_check(cl_edhoc_message_1(&h->i, g.cur.method, g.cur.suite, NULL, 0, h->m[0], MSG_MAX,
                                    &h->len[0]),
                 "message_1");
        hs_check(cl_edhoc_process_message_1(&h->r, h->m[0], h->len[0]), "process_message_1");
        hs_check(cl_edhoc_message_2(&h->r, NULL, 0, h->m[1], MSG_MAX, &h->len[1]), "message_2");
        hs_check(cl_edhoc_process_message_2(&h->i, h->m[1], h->len[1]), "process_message_2");
        hs_check(cl_edhoc_message_3(&h->i, NULL, 0, h->m[2], MSG_MAX, &h->len[2]), "message_3");
        hs_check(cl_edhoc_process_message_3(&h->r, h->m[2], h->len[2]), "process_message_3");
        g.sum += h->r.prk_out[0];
        cl_edhoc_free(&h->r);
        cl_edhoc_free(&h->i);
    }
}

/* ------------------------------------------------------------------ */
/* Raw operations: OpenSSL directly                                    */
/* ------------------------------------------------------------------ */

static void op_fail(const char *what)
{
    die(what, 1);
}

static unsigned next_j(void)
{
    return g.j++ % POOL;
}

static void sha256(const uint8_t *msg, size_t len, uint8_t h[32])
{
    unsigned l = 0;
    if (EVP_DigestInit_ex2(g.raw.md, g.raw.sha256, NULL) != 1 ||
        EVP_DigestUpdate(g.raw.md, msg, len) != 1 || EVP_DigestFinal_ex(g.raw.md, h, &l) != 1 ||
        l != 32)
        op_fail("SHA-256");
}

/* P-256 key generation: random scalar, fixed-base multiplication, public encoding. */
static void p256_keygen(void)
{
    raw_t *r = &g.raw;
    uint8_t pub[65];
    if (BN_priv_rand_range_ex(r->k, r->order, 0, r->bn) != 1 ||
        EC_POINT_mul(r->g, r->q, r->k, NULL, NULL, r->bn) != 1 ||
        EC_POINT_point2oct(r->g, r->q, POINT_CONVERSION_UNCOMPRESSED, pub, 65, r->bn) != 65)
        op_fail("P-256 keygen");
    g.sum += pub[64];
}

/* Decompression (and so validation) of an x-only key into g.raw.q. */
static void decode_x(const uint8_t x[32])
{
    uint8_t enc[33];
    enc[0] = 0x02; /* x-only: the point with even y (RFC 9528 Appendix B) */
    memcpy(enc + 1, x, 32);
    if (EC_POINT_oct2point(g.raw.g, g.raw.q, enc, sizeof enc, g.raw.bn) != 1)
        op_fail("P-256 decompression");
}

/* ECDH with a decoded point: x(d * P). */
static void p256_mul_x(const EC_POINT *p)
{
    raw_t *r = &g.raw;
    uint8_t z[32];
    if (EC_POINT_mul(r->g, r->r, NULL, p, r->d, r->bn) != 1 ||
        EC_POINT_get_affine_coordinates(r->g, r->r, r->x, NULL, r->bn) != 1 ||
        BN_bn2binpad(r->x, z, 32) != 32)
        op_fail("P-256 ECDH");
    g.sum += z[31];
}

static void p256_ecdh_xonly(void)
{
    decode_x(g.raw.peer_x[next_j()]);
    p256_mul_x(g.raw.q);
}

static void es256_sign(void)
{
    uint8_t h[32], der[ES_DER_MAX];
    size_t l = sizeof der;
    sha256(g.raw.msg[next_j()], SIG_MSG_LEN, h);
    if (EVP_PKEY_sign(g.raw.es_sign, der, &l, h, sizeof h) != 1)
        op_fail("ES256 sign");
    g.sum += der[l - 1];
}

static void es256_verify(void)
{
    uint8_t h[32];
    unsigned j = next_j();
    sha256(g.raw.msg[j], SIG_MSG_LEN, h);
    if (EVP_PKEY_verify(g.raw.es_verify, g.raw.es_sig[j], g.raw.es_sig_len[j], h, sizeof h) != 1)
        op_fail("ES256 verify");
    g.sum++;
}

static void x25519_keygen(void)
{
    uint8_t pub[32];
    EVP_PKEY *k = NULL;
    size_t l = sizeof pub;
    if (EVP_PKEY_generate(g.raw.x_gen, &k) != 1 || EVP_PKEY_get_raw_public_key(k, pub, &l) != 1)
        op_fail("X25519 keygen");
    EVP_PKEY_free(k);
    g.sum += pub[31];
}

static void x25519_derive(EVP_PKEY *peer)
{
    uint8_t z[32];
    size_t l = sizeof z;
    if (EVP_PKEY_derive_set_peer_ex(g.raw.x_derive, peer, 0) != 1 ||
        EVP_PKEY_derive(g.raw.x_derive, z, &l) != 1 || l != 32)
        op_fail("X25519 derive");
    g.sum += z[31];
}

/* X25519 with a peer key received as bytes (built with a kept fromdata context). */
static void x25519_ecdh(void)
{
    uint8_t copy[32];
    EVP_PKEY *pk = NULL;
    memcpy(copy, g.raw.x_peer[next_j()], 32);
    OSSL_PARAM params[2] = {
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, copy, 32),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_PKEY_fromdata(g.raw.x_import, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        op_fail("X25519 peer key");
    x25519_derive(pk);
    EVP_PKEY_free(pk);
}

static void ed25519_sign(void)
{
    uint8_t sig[64];
    size_t l = sizeof sig;
    if (EVP_DigestSign(g.raw.ed_sign, sig, &l, g.raw.msg[next_j()], SIG_MSG_LEN) != 1)
        op_fail("Ed25519 sign");
    g.sum += sig[63];
}

static void ed25519_verify(void)
{
    unsigned j = next_j();
    if (EVP_DigestVerify(g.raw.ed_verify, g.raw.ed_sig[j], 64, g.raw.msg[j], SIG_MSG_LEN) != 1)
        op_fail("Ed25519 verify");
    g.sum++;
}

NOINLINE static void raw_p256_keygen(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        p256_keygen();
}

NOINLINE static void raw_p256_decompress(void)
{
    for (int i = 0; i < OP_BATCH; i++) {
        decode_x(g.raw.peer_x[next_j()]);
        g.sum++;
    }
}

/* ECDH with a point decoded earlier (a stored peer key, or G_X already decoded). */
NOINLINE static void raw_p256_ecdh_point(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        p256_mul_x(g.raw.peer[next_j()]);
}

/* ECDH with an x-only key: decompression + multiplication. */
NOINLINE static void raw_p256_ecdh_xonly(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        p256_ecdh_xonly();
}

NOINLINE static void raw_es256_sign(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        es256_sign();
}

NOINLINE static void raw_es256_verify(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        es256_verify();
}

NOINLINE static void raw_x25519_keygen(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        x25519_keygen();
}

NOINLINE static void raw_x25519_ecdh(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        x25519_ecdh();
}

/* X25519 with a peer EVP_PKEY built earlier (a stored static key, or G_X already built). */
NOINLINE static void raw_x25519_ecdh_cached(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        x25519_derive(g.raw.x_peer_pk[next_j()]);
}

NOINLINE static void raw_ed25519_sign(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        ed25519_sign();
}

NOINLINE static void raw_ed25519_verify(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        ed25519_verify();
}

/*
 * The responder's raw operations one handshake after the other, in the
 * order the handshake does them (one "op" = one handshake's set): shows
 * what running different operations back to back costs against the sum of
 * each alone (caches, predictors).
 */
NOINLINE static void seq_s2_m0(void)
{
    for (int i = 0; i < OP_BATCH; i++) {
        p256_keygen();
        p256_ecdh_xonly();
        es256_sign();
        es256_verify();
    }
}

NOINLINE static void seq_s2_m3(void)
{
    for (int i = 0; i < OP_BATCH; i++) {
        p256_keygen();
        p256_ecdh_xonly();
        p256_mul_x(g.raw.q);
        p256_mul_x(g.raw.peer[next_j()]);
    }
}

NOINLINE static void seq_s0_m0(void)
{
    for (int i = 0; i < OP_BATCH; i++) {
        x25519_keygen();
        x25519_ecdh();
        ed25519_sign();
        ed25519_verify();
    }
}

NOINLINE static void seq_s0_m3(void)
{
    for (int i = 0; i < OP_BATCH; i++) {
        x25519_keygen();
        x25519_ecdh();
        x25519_derive(g.raw.x_peer_pk[next_j()]);
        x25519_derive(g.raw.x_peer_pk[next_j()]);
    }
}

/* ------------------------------------------------------------------ */
/* The same operations through the provider (responder's instance)     */
/* ------------------------------------------------------------------ */

static void prov_check(cl_status_t st, const char *what)
{
    if (st != CL_OK)
        die(what, st);
}

static void prov_keygen(cl_key_type_t type)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    uint8_t pub[CL_PUB_MAX];
    for (int i = 0; i < OP_BATCH; i++) {
        cl_key_t h;
        size_t n;
        prov_check(c->ops->key_generate(c->self, type, CL_KEY_USAGE_ECDH, &h, pub, sizeof pub, &n),
                   "provider key_generate");
        c->ops->key_destroy(c->self, h);
        g.sum += pub[n - 1];
    }
}

NOINLINE static void prov_p256_keygen(void)
{
    prov_keygen(CL_KEY_P256);
}

NOINLINE static void prov_x25519_keygen(void)
{
    prov_keygen(CL_KEY_X25519);
}

static void prov_ecdh(cl_key_t key, const uint8_t *peer, size_t len)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    uint8_t z[32];
    size_t n;
    prov_check(c->ops->ecdh(c->self, key, peer, len, z, sizeof z, &n), "provider ecdh");
    g.sum += z[31];
}

NOINLINE static void prov_p256_ecdh_xonly(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        prov_ecdh(g.raw.p_eph, g.raw.peer_x[next_j()], 32);
}

NOINLINE static void prov_p256_ecdh_full(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        prov_ecdh(g.raw.p_eph, g.raw.peer_enc[next_j()], 65);
}

NOINLINE static void prov_x25519_ecdh(void)
{
    for (int i = 0; i < OP_BATCH; i++)
        prov_ecdh(g.raw.p_x, g.raw.x_peer[next_j()], 32);
}

static void prov_sign(cl_key_t key, cl_sig_alg_t alg)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    uint8_t sig[CL_SIG_MAX];
    for (int i = 0; i < OP_BATCH; i++) {
        size_t n;
        prov_check(c->ops->sign(c->self, key, alg, g.raw.msg[next_j()], SIG_MSG_LEN, sig,
                                sizeof sig, &n),
                   "provider sign");
        g.sum += sig[63];
    }
}

NOINLINE static void prov_es256_sign(void)
{
    prov_sign(g.raw.p_es, CL_SIG_ES256);
}

NOINLINE static void prov_ed25519_sign(void)
{
    prov_sign(g.raw.p_ed, CL_SIG_EDDSA);
}

NOINLINE static void prov_es256_verify(void)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    for (int i = 0; i < OP_BATCH; i++) {
        unsigned j = next_j();
        prov_check(c->ops->verify(c->self, g.raw.p_es_pub, CL_SIG_ES256, g.raw.msg[j],
                                  SIG_MSG_LEN, g.raw.es_raw[j], 64),
                   "provider verify");
        g.sum++;
    }
}

NOINLINE static void prov_ed25519_verify(void)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    for (int i = 0; i < OP_BATCH; i++) {
        unsigned j = next_j();
        prov_check(c->ops->verify(c->self, g.raw.p_ed_pub, CL_SIG_EDDSA, g.raw.msg[j],
                                  SIG_MSG_LEN, g.raw.ed_sig[j], 64),
                   "provider verify");
        g.sum++;
    }
}

/* ------------------------------------------------------------------ */
/* Symmetric work around the primitives (transcript, KDF, AEAD)        */
/* ------------------------------------------------------------------ */

#define KDF_INFO_LEN 37 /* EDHOC_KDF info: label, bstr(TH), length */
#define AEAD_PT_LEN 80  /* about PLAINTEXT_3 with a kid and a signature */

static const uint8_t prk_bytes[32] = {0x5a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                      16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

NOINLINE static void prov_sha256(void)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    uint8_t h[32];
    for (int i = 0; i < OP_BATCH; i++) {
        cl_buf_t part = {g.raw.msg[next_j()], SIG_MSG_LEN};
        prov_check(c->ops->sha256(c->self, &part, 1, h), "provider sha256");
        g.sum += h[31];
    }
}

NOINLINE static void prov_hkdf_extract(void)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    uint8_t prk[32];
    for (int i = 0; i < OP_BATCH; i++) {
        prov_check(c->ops->hkdf_extract(c->self, prk_bytes, 32, g.raw.msg[next_j()], 32, prk),
                   "provider hkdf_extract");
        g.sum += prk[31];
    }
}

NOINLINE static void prov_hkdf_expand(void)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    uint8_t out[32];
    for (int i = 0; i < OP_BATCH; i++) {
        prov_check(c->ops->hkdf_expand(c->self, prk_bytes, 32, g.raw.msg[next_j()], KDF_INFO_LEN,
                                       out, sizeof out),
                   "provider hkdf_expand");
        g.sum += out[31];
    }
}

/* What seal()/open_ct() do per message: import a one-time AEAD key, encrypt, destroy. */
NOINLINE static void prov_aead_once(void)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    uint8_t out[AEAD_PT_LEN + 16], nonce[13] = {0};
    for (int i = 0; i < OP_BATCH; i++) {
        cl_key_t k;
        size_t n;
        unsigned j = next_j();
        prov_check(c->ops->aead_import(c->self, CL_AEAD_AES_CCM_16_64_128, g.raw.msg[j], 16, &k),
                   "provider aead_import");
        prov_check(c->ops->aead_encrypt(c->self, k, nonce, sizeof nonce, g.raw.msg[j] + 16, 45,
                                        g.raw.msg[j] + 64, AEAD_PT_LEN, out, sizeof out, &n),
                   "provider aead_encrypt");
        c->ops->key_destroy(c->self, k);
        g.sum += out[n - 1];
    }
}

NOINLINE static void raw_sha256(void)
{
    uint8_t h[32];
    for (int i = 0; i < OP_BATCH; i++) {
        sha256(g.raw.msg[next_j()], SIG_MSG_LEN, h);
        g.sum += h[31];
    }
}

/*
 * HKDF-Expand with one output block = HMAC-SHA-256(PRK, info || 0x01), done
 * on the kept EVP_MD_CTX: inner hash over K ^ ipad, info, counter; outer hash
 * over K ^ opad and the inner hash.
 */
static void hmac_md(const uint8_t key[32], const uint8_t *msg, size_t len, uint8_t ctr,
                    uint8_t out[32])
{
    uint8_t pad[64], inner[32];
    unsigned l = 0;
    EVP_MD_CTX *m = g.raw.md;
    for (int i = 0; i < 64; i++)
        pad[i] = (uint8_t)((i < 32 ? key[i] : 0) ^ 0x36);
    if (EVP_DigestInit_ex2(m, g.raw.sha256, NULL) != 1 || EVP_DigestUpdate(m, pad, 64) != 1 ||
        EVP_DigestUpdate(m, msg, len) != 1 || EVP_DigestUpdate(m, &ctr, 1) != 1 ||
        EVP_DigestFinal_ex(m, inner, &l) != 1)
        op_fail("HMAC inner");
    for (int i = 0; i < 64; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    if (EVP_DigestInit_ex2(m, g.raw.sha256, NULL) != 1 || EVP_DigestUpdate(m, pad, 64) != 1 ||
        EVP_DigestUpdate(m, inner, 32) != 1 || EVP_DigestFinal_ex(m, out, &l) != 1)
        op_fail("HMAC outer");
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
}

NOINLINE static void raw_hkdf_expand_md(void)
{
    uint8_t out[32];
    for (int i = 0; i < OP_BATCH; i++) {
        hmac_md(prk_bytes, g.raw.msg[next_j()], KDF_INFO_LEN, 1, out);
        g.sum += out[31];
    }
}

/* ------------------------------------------------------------------ */
/* Provider calls per responder handshake (counted once, untimed)      */
/* ------------------------------------------------------------------ */

enum {
    CNT_SHA256,
    CNT_HMAC,
    CNT_EXTRACT,
    CNT_EXPAND,
    CNT_AEAD_IMPORT,
    CNT_AEAD_ENC,
    CNT_AEAD_DEC,
    CNT_KEYGEN,
    CNT_ECDH,
    CNT_SIGN,
    CNT_VERIFY,
    CNT_EXPORT,
    CNT_DESTROY,
    CNT_N
};
static const char *const cnt_name[CNT_N] = {
    "sha256", "hmac",   "hkdf_extract", "hkdf_expand",       "aead_import", "aead_encrypt",
    "aead_decrypt", "key_generate", "ecdh", "sign", "verify", "key_export_public", "key_destroy"};

static unsigned g_cnt[CNT_N];
static const cl_crypto_ops_t *g_real;
static cl_crypto_ops_t g_counting;

static cl_status_t c_sha256(void *self, const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    g_cnt[CNT_SHA256]++;
    return g_real->sha256(self, parts, n, out);
}

static cl_status_t c_hmac(void *self, const uint8_t *key, size_t key_len, const cl_buf_t *parts,
                          size_t n, uint8_t out[32])
{
    g_cnt[CNT_HMAC]++;
    return g_real->hmac_sha256(self, key, key_len, parts, n, out);
}

static cl_status_t c_extract(void *self, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                             size_t ikm_len, uint8_t prk[32])
{
    g_cnt[CNT_EXTRACT]++;
    return g_real->hkdf_extract(self, salt, salt_len, ikm, ikm_len, prk);
}

static cl_status_t c_expand(void *self, const uint8_t *prk, size_t prk_len, const uint8_t *info,
                            size_t info_len, uint8_t *out, size_t out_len)
{
    g_cnt[CNT_EXPAND]++;
    return g_real->hkdf_expand(self, prk, prk_len, info, info_len, out, out_len);
}

static cl_status_t c_aead_import(void *self, cl_aead_alg_t alg, const uint8_t *key, size_t key_len,
                                 cl_key_t *out)
{
    g_cnt[CNT_AEAD_IMPORT]++;
    return g_real->aead_import(self, alg, key, key_len, out);
}

static cl_status_t c_aead_encrypt(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                  const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                                  size_t pt_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    g_cnt[CNT_AEAD_ENC]++;
    return g_real->aead_encrypt(self, key, nonce, nonce_len, aad, aad_len, pt, pt_len, out,
                                out_size, out_len);
}

static cl_status_t c_aead_decrypt(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                  const uint8_t *aad, size_t aad_len, const uint8_t *in,
                                  size_t in_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    g_cnt[CNT_AEAD_DEC]++;
    return g_real->aead_decrypt(self, key, nonce, nonce_len, aad, aad_len, in, in_len, out,
                                out_size, out_len);
}

static cl_status_t c_keygen(void *self, cl_key_type_t type, uint32_t usage, cl_key_t *out,
                            uint8_t *pub, size_t pub_size, size_t *pub_len)
{
    g_cnt[CNT_KEYGEN]++;
    return g_real->key_generate(self, type, usage, out, pub, pub_size, pub_len);
}

static cl_status_t c_export(void *self, cl_key_t key, uint8_t *pub, size_t pub_size,
                            size_t *pub_len)
{
    g_cnt[CNT_EXPORT]++;
    return g_real->key_export_public(self, key, pub, pub_size, pub_len);
}

static cl_status_t c_ecdh(void *self, cl_key_t priv, const uint8_t *peer_pub, size_t peer_len,
                          uint8_t *secret, size_t secret_size, size_t *secret_len)
{
    g_cnt[CNT_ECDH]++;
    return g_real->ecdh(self, priv, peer_pub, peer_len, secret, secret_size, secret_len);
}

static cl_status_t c_sign(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                          size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len)
{
    g_cnt[CNT_SIGN]++;
    return g_real->sign(self, priv, alg, msg, msg_len, sig, sig_size, sig_len);
}

static cl_status_t c_verify(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                            size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    g_cnt[CNT_VERIFY]++;
    return g_real->verify(self, pub, alg, msg, msg_len, sig, sig_len);
}

static void c_destroy(void *self, cl_key_t key)
{
    g_cnt[CNT_DESTROY]++;
    g_real->key_destroy(self, key);
}

/* The responder's provider calls in one handshake (init .. process_message_3 .. free). */
static void count_responder(int suite, int method, int ct, unsigned counts[CNT_N])
{
    hs_t *h = &g.hs[0];
    cl_crypto_t *rc = &g.crypto[R_R];

    set_cfg(suite, method, ct);
    g_real = rc->ops;
    g_counting = *g_real;
    g_counting.sha256 = c_sha256;
    g_counting.hmac_sha256 = c_hmac;
    g_counting.hkdf_extract = c_extract;
    g_counting.hkdf_expand = c_expand;
    g_counting.aead_import = c_aead_import;
    g_counting.aead_encrypt = c_aead_encrypt;
    g_counting.aead_decrypt = c_aead_decrypt;
    g_counting.key_generate = c_keygen;
    g_counting.key_export_public = c_export;
    g_counting.ecdh = c_ecdh;
    g_counting.sign = c_sign;
    g_counting.verify = c_verify;
    g_counting.key_destroy = c_destroy;
    memset(g_cnt, 0, sizeof g_cnt);
    hs_check(cl_edhoc_init(&h->i, &g.cur.pi->cfg, CL_EDHOC_INITIATOR, cid_i, 1), "init");
    hs_check(cl_edhoc_message_1(&h->i, method, suite, NULL, 0, h->m[0], MSG_MAX, &h->len[0]),
             "message_1");
    rc->ops = &g_counting;
    hs_check(cl_edhoc_init(&h->r, &g.cur.pr->cfg, CL_EDHOC_RESPONDER, cid_r, 1), "init");
    hs_check(cl_edhoc_process_message_1(&h->r, h->m[0], h->len[0]), "process_message_1");
    hs_check(cl_edhoc_message_2(&h->r, NULL, 0, h->m[1], MSG_MAX, &h->len[1]), "message_2");
    rc->ops = g_real;
    hs_check(cl_edhoc_process_message_2(&h->i, h->m[1], h->len[1]), "process_message_2");
    hs_check(cl_edhoc_message_3(&h->i, NULL, 0, h->m[2], MSG_MAX, &h->len[2]), "message_3");
    rc->ops = &g_counting;
    hs_check(cl_edhoc_process_message_3(&h->r, h->m[2], h->len[2]), "process_message_3");
    cl_edhoc_free(&h->r);
    rc->ops = g_real;
    cl_edhoc_free(&h->i);
    memcpy(counts, g_cnt, sizeof g_cnt);
}

/* ------------------------------------------------------------------ */
/* Raw state setup and cross-checks against the provider               */
/* ------------------------------------------------------------------ */

static void es_der_to_raw(const uint8_t *der, size_t len, uint8_t raw[64])
{
    const uint8_t *p = der;
    ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)len);
    const BIGNUM *r, *sv;
    if (s == NULL)
        op_fail("d2i_ECDSA_SIG");
    ECDSA_SIG_get0(s, &r, &sv);
    if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(sv, raw + 32, 32) != 32)
        op_fail("ECDSA r||s");
    ECDSA_SIG_free(s);
}

static size_t es_raw_to_der(const uint8_t raw[64], uint8_t der[ES_DER_MAX])
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *sv = BN_bin2bn(raw + 32, 32, NULL);
    uint8_t *p = der;
    int n;
    if (s == NULL || r == NULL || sv == NULL || ECDSA_SIG_set0(s, r, sv) != 1)
        op_fail("ECDSA_SIG");
    n = i2d_ECDSA_SIG(s, &p);
    ECDSA_SIG_free(s);
    if (n <= 0 || n > ES_DER_MAX)
        op_fail("i2d_ECDSA_SIG");
    return (size_t)n;
}

static cl_key_t prov_import_priv(cl_key_type_t type, uint32_t usage, const uint8_t priv[32])
{
    const cl_crypto_t *c = &g.crypto[R_R];
    cl_key_t h;
    prov_check(c->ops->key_import_private(c->self, type, usage, priv, 32, &h),
               "provider key_import_private");
    return h;
}

static cl_key_t prov_import_pub(cl_key_type_t type, const uint8_t *pub, size_t len)
{
    const cl_crypto_t *c = &g.crypto[R_R];
    cl_key_t h;
    prov_check(c->ops->key_import_public(c->self, type, pub, len, &h), "provider key_import_public");
    return h;
}

static void raw_setup(void)
{
    raw_t *r = &g.raw;
    const cl_crypto_t *c = &g.crypto[R_R];
    uint8_t buf[65], z1[32], z2[32];
    size_t n;

    r->g = EC_GROUP_new_by_curve_name_ex(NULL, NULL, NID_X9_62_prime256v1);
    r->bn = BN_CTX_new();
    r->d = BN_new();
    r->k = BN_new();
    r->x = BN_new();
    if (r->g == NULL || r->bn == NULL || r->d == NULL || r->k == NULL || r->x == NULL)
        op_fail("EC setup");
    BN_set_flags(r->d, BN_FLG_CONSTTIME);
    BN_set_flags(r->k, BN_FLG_CONSTTIME);
    r->order = EC_GROUP_get0_order(r->g);
    r->q = EC_POINT_new(r->g);
    r->r = EC_POINT_new(r->g);
    if (r->q == NULL || r->r == NULL || BN_priv_rand_range_ex(r->d, r->order, 0, r->bn) != 1)
        op_fail("EC setup");
    for (int i = 0; i < POOL; i++) {
        r->peer[i] = EC_POINT_new(r->g);
        if (r->peer[i] == NULL || BN_priv_rand_range_ex(r->k, r->order, 0, r->bn) != 1 ||
            EC_POINT_mul(r->g, r->peer[i], r->k, NULL, NULL, r->bn) != 1 ||
            EC_POINT_point2oct(r->g, r->peer[i], POINT_CONVERSION_UNCOMPRESSED, r->peer_enc[i], 65,
                               r->bn) != 65)
            op_fail("peer points");
        memcpy(r->peer_x[i], r->peer_enc[i] + 1, 32);
        for (int j = 0; j < SIG_MSG_LEN; j++)
            r->msg[i][j] = (uint8_t)(i * 31 + j * 7 + 1);
    }

    r->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    r->md = EVP_MD_CTX_new();
    r->es_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (r->sha256 == NULL || r->md == NULL || r->es_key == NULL ||
        EVP_PKEY_get_octet_string_param(r->es_key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf,
                                        sizeof buf, &n) != 1 ||
        n != 65)
        op_fail("ES256 key");
    r->es_pub = pub_pkey(CL_KEY_P256, buf, 65);
    r->es_sign = EVP_PKEY_CTX_new_from_pkey(NULL, r->es_key, NULL);
    r->es_verify = EVP_PKEY_CTX_new_from_pkey(NULL, r->es_pub, NULL);
    if (r->es_pub == NULL || r->es_sign == NULL || r->es_verify == NULL ||
        EVP_PKEY_sign_init(r->es_sign) != 1 || EVP_PKEY_verify_init(r->es_verify) != 1)
        op_fail("ES256 contexts");
    r->p_es_pub = prov_import_pub(CL_KEY_P256, buf, 65);
    for (int i = 0; i < POOL; i++) {
        uint8_t h[32];
        sha256(r->msg[i], SIG_MSG_LEN, h);
        r->es_sig_len[i] = sizeof r->es_sig[i];
        if (EVP_PKEY_sign(r->es_sign, r->es_sig[i], &r->es_sig_len[i], h, 32) != 1)
            op_fail("ES256 sign (setup)");
        es_der_to_raw(r->es_sig[i], r->es_sig_len[i], r->es_raw[i]);
    }

    r->x_gen = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    r->x_import = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    r->x_priv = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
    if (r->x_gen == NULL || r->x_import == NULL || r->x_priv == NULL ||
        EVP_PKEY_keygen_init(r->x_gen) != 1 || EVP_PKEY_fromdata_init(r->x_import) != 1)
        op_fail("X25519 setup");
    r->x_derive = EVP_PKEY_CTX_new_from_pkey(NULL, r->x_priv, NULL);
    if (r->x_derive == NULL || EVP_PKEY_derive_init(r->x_derive) != 1)
        op_fail("X25519 derive context");
    for (int i = 0; i < POOL; i++) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        n = 32;
        if (k == NULL || EVP_PKEY_get_raw_public_key(k, r->x_peer[i], &n) != 1)
            op_fail("X25519 peer keys");
        EVP_PKEY_free(k);
        r->x_peer_pk[i] = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, r->x_peer[i], 32);
        if (r->x_peer_pk[i] == NULL)
            op_fail("X25519 peer keys");
    }

    r->ed_key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    n = 32;
    if (r->ed_key == NULL || EVP_PKEY_get_raw_public_key(r->ed_key, buf, &n) != 1)
        op_fail("Ed25519 key");
    r->ed_pub = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, buf, 32);
    r->ed_sign = EVP_MD_CTX_new();
    r->ed_verify = EVP_MD_CTX_new();
    if (r->ed_pub == NULL || r->ed_sign == NULL || r->ed_verify == NULL ||
        EVP_DigestSignInit_ex(r->ed_sign, NULL, NULL, NULL, NULL, r->ed_key, NULL) != 1 ||
        EVP_DigestVerifyInit_ex(r->ed_verify, NULL, NULL, NULL, NULL, r->ed_pub, NULL) != 1)
        op_fail("Ed25519 contexts");
    r->p_ed_pub = prov_import_pub(CL_KEY_ED25519, buf, 32);
    for (int i = 0; i < POOL; i++) {
        n = 64;
        if (EVP_DigestSign(r->ed_sign, r->ed_sig[i], &n, r->msg[i], SIG_MSG_LEN) != 1 || n != 64)
            op_fail("Ed25519 sign (setup)");
    }

    /* The same private keys in the provider. */
    uint8_t priv[32];
    BIGNUM *bn = NULL;
    if (BN_bn2binpad(r->d, priv, 32) != 32)
        op_fail("scalar");
    r->p_eph = prov_import_priv(CL_KEY_P256, CL_KEY_USAGE_ECDH, priv);
    if (EVP_PKEY_get_bn_param(r->es_key, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1 ||
        BN_bn2binpad(bn, priv, 32) != 32)
        op_fail("ES256 private key");
    BN_clear_free(bn);
    r->p_es = prov_import_priv(CL_KEY_P256, CL_KEY_USAGE_SIGN, priv);
    n = 32;
    if (EVP_PKEY_get_raw_private_key(r->x_priv, priv, &n) != 1)
        op_fail("X25519 private key");
    r->p_x = prov_import_priv(CL_KEY_X25519, CL_KEY_USAGE_ECDH, priv);
    n = 32;
    if (EVP_PKEY_get_raw_private_key(r->ed_key, priv, &n) != 1)
        op_fail("Ed25519 private key");
    r->p_ed = prov_import_priv(CL_KEY_ED25519, CL_KEY_USAGE_SIGN, priv);
    OPENSSL_cleanse(priv, sizeof priv);

    /* Cross-checks: the raw operations compute what the provider computes. */
    for (int i = 0; i < POOL; i++) {
        uint8_t sig[64], der[ES_DER_MAX], h[32];
        size_t dl;
        decode_x(r->peer_x[i]);
        if (EC_POINT_mul(r->g, r->r, NULL, r->q, r->d, r->bn) != 1 ||
            EC_POINT_get_affine_coordinates(r->g, r->r, r->x, NULL, r->bn) != 1 ||
            BN_bn2binpad(r->x, z1, 32) != 32)
            op_fail("check: P-256 ECDH");
        prov_check(c->ops->ecdh(c->self, r->p_eph, r->peer_x[i], 32, z2, 32, &n), "check: ecdh");
        if (memcmp(z1, z2, 32) != 0)
            op_fail("check: P-256 ECDH x-only differs from the provider's");
        prov_check(c->ops->ecdh(c->self, r->p_eph, r->peer_enc[i], 65, z2, 32, &n), "check: ecdh");
        if (memcmp(z1, z2, 32) != 0)
            op_fail("check: P-256 ECDH with the full point differs");
        if (EC_POINT_mul(r->g, r->r, NULL, r->peer[i], r->d, r->bn) != 1 ||
            EC_POINT_get_affine_coordinates(r->g, r->r, r->x, NULL, r->bn) != 1 ||
            BN_bn2binpad(r->x, z2, 32) != 32 || memcmp(z1, z2, 32) != 0)
            op_fail("check: P-256 ECDH with the decoded point differs");
        prov_check(c->ops->verify(c->self, r->p_es_pub, CL_SIG_ES256, r->msg[i], SIG_MSG_LEN,
                                  r->es_raw[i], 64),
                   "check: provider verifies a raw ES256 signature");
        prov_check(c->ops->sign(c->self, r->p_es, CL_SIG_ES256, r->msg[i], SIG_MSG_LEN, sig,
                                sizeof sig, &n),
                   "check: provider ES256 sign");
        dl = es_raw_to_der(sig, der);
        sha256(r->msg[i], SIG_MSG_LEN, h);
        if (EVP_PKEY_verify(r->es_verify, der, dl, h, 32) != 1)
            op_fail("check: raw verify of a provider ES256 signature");
        prov_check(c->ops->sign(c->self, r->p_ed, CL_SIG_EDDSA, r->msg[i], SIG_MSG_LEN, sig,
                                sizeof sig, &n),
                   "check: provider Ed25519 sign");
        if (memcmp(sig, r->ed_sig[i], 64) != 0)
            op_fail("check: Ed25519 signatures differ");
        prov_check(c->ops->verify(c->self, r->p_ed_pub, CL_SIG_EDDSA, r->msg[i], SIG_MSG_LEN,
                                  r->ed_sig[i], 64),
                   "check: provider Ed25519 verify");
        n = 32;
        if (EVP_PKEY_derive_set_peer_ex(r->x_derive, r->x_peer_pk[i], 0) != 1 ||
            EVP_PKEY_derive(r->x_derive, z1, &n) != 1)
            op_fail("check: X25519");
        prov_check(c->ops->ecdh(c->self, r->p_x, r->x_peer[i], 32, z2, 32, &n), "check: ecdh");
        if (memcmp(z1, z2, 32) != 0)
            op_fail("check: X25519 differs from the provider's");
    }
    /* A tampered signature must fail both ways. */
    uint8_t bad[64];
    memcpy(bad, r->es_raw[0], 64);
    bad[10] ^= 1;
    if (c->ops->verify(c->self, r->p_es_pub, CL_SIG_ES256, r->msg[0], SIG_MSG_LEN, bad, 64) !=
        CL_ERR_AUTH)
        op_fail("check: tampered ES256 signature accepted");
}

static void raw_free(void)
{
    raw_t *r = &g.raw;
    for (int i = 0; i < POOL; i++) {
        EC_POINT_free(r->peer[i]);
        EVP_PKEY_free(r->x_peer_pk[i]);
    }
    EC_POINT_free(r->q);
    EC_POINT_free(r->r);
    BN_clear_free(r->d);
    BN_clear_free(r->k);
    BN_free(r->x);
    BN_CTX_free(r->bn);
    EC_GROUP_free(r->g);
    EVP_MD_free(r->sha256);
    EVP_MD_CTX_free(r->md);
    EVP_PKEY_CTX_free(r->es_sign);
    EVP_PKEY_CTX_free(r->es_verify);
    EVP_PKEY_free(r->es_key);
    EVP_PKEY_free(r->es_pub);
    EVP_PKEY_CTX_free(r->x_gen);
    EVP_PKEY_CTX_free(r->x_import);
    EVP_PKEY_CTX_free(r->x_derive);
    EVP_PKEY_free(r->x_priv);
    EVP_MD_CTX_free(r->ed_sign);
    EVP_MD_CTX_free(r->ed_verify);
    EVP_PKEY_free(r->ed_key);
    EVP_PKEY_free(r->ed_pub);
}

/* ------------------------------------------------------------------ */
/* Message sizes (and the correctness check of every configuration)   */
/* ------------------------------------------------------------------ */

static size_t g_sizes[N_SUITES][4][N_CREDS][4];

/* One complete handshake (message_1..message_4); checks both sides agree. */
static void check_handshake(int suite, int method, int ct, size_t sizes[4])
{
    static const uint8_t ctx[] = "bench";
    uint8_t ei[32], er[32];
    hs_t *h = &g.hs[0];

    set_cfg(suite, method, ct);
    hs_check(cl_edhoc_init(&h->i, &g.cur.pi->cfg, CL_EDHOC_INITIATOR, cid_i, 1), "init");
    hs_check(cl_edhoc_init(&h->r, &g.cur.pr->cfg, CL_EDHOC_RESPONDER, cid_r, 1), "init");
    hs_check(cl_edhoc_message_1(&h->i, method, suite, NULL, 0, h->m[0], MSG_MAX, &h->len[0]),
             "message_1");
    hs_check(cl_edhoc_process_message_1(&h->r, h->m[0], h->len[0]), "process_message_1");
    hs_check(cl_edhoc_message_2(&h->r, NULL, 0, h->m[1], MSG_MAX, &h->len[1]), "message_2");
    hs_check(cl_edhoc_process_message_2(&h->i, h->m[1], h->len[1]), "process_message_2");
    hs_check(cl_edhoc_message_3(&h->i, NULL, 0, h->m[2], MSG_MAX, &h->len[2]), "message_3");
    hs_check(cl_edhoc_process_message_3(&h->r, h->m[2], h->len[2]), "process_message_3");
    hs_check(cl_edhoc_message_4(&h->r, NULL, 0, h->m[3], MSG_MAX, &h->len[3]), "message_4");
    hs_check(cl_edhoc_process_message_4(&h->i, h->m[3], h->len[3]), "process_message_4");
    if (h->i.method != method || h->r.method != method || h->i.suite != suite ||
        h->r.suite != suite)
        die("check: negotiated method / suite", 1);
    if (memcmp(h->i.prk_out, h->r.prk_out, sizeof h->i.prk_out) != 0)
        die("check: PRK_out differs between initiator and responder", 1);
    hs_check(cl_edhoc_exporter(&h->i, 40000, ctx, sizeof ctx - 1, ei, sizeof ei), "exporter");
    hs_check(cl_edhoc_exporter(&h->r, 40000, ctx, sizeof ctx - 1, er, sizeof er), "exporter");
    if (memcmp(ei, er, sizeof ei) != 0)
        die("check: exporter output differs", 1);
    for (int m = 0; m < 4; m++)
        sizes[m] = h->len[m];
    cl_edhoc_free(&h->r);
    cl_edhoc_free(&h->i);
}

static void all_sizes(void)
{
    for (int s = 0; s < N_SUITES; s++)
        for (int method = 0; method < 4; method++)
            for (int ct = 0; ct < N_CREDS; ct++)
                check_handshake(suite_ids[s], method, ct, g_sizes[s][method][ct]);
}

static void print_sizes(void)
{
    static const char *const mname[4] = {"0 (sig/sig)", "1 (sig/DH)", "2 (DH/sig)", "3 (DH/DH)"};
    printf("## Bytes on the wire (EDHOC messages, no EAD, 1-byte C_I / C_R)\n\n");
    printf("Both sides use the credential type of the row. message_2 carries ID_CRED_R, message_3 "
           "ID_CRED_I; a CoAP transport adds its `true` / C_R prefix (1 byte here).\n\n");
    printf("| suite | method | credential | message_1 | message_2 | message_3 | message_4 | "
           "message_1..3 |\n");
    printf("|---:|---|---|---:|---:|---:|---:|---:|\n");
    for (int s = 0; s < N_SUITES; s++)
        for (int method = 0; method < 4; method++)
            for (int ct = 0; ct < N_CREDS; ct++) {
                const size_t *z = g_sizes[s][method][ct];
                printf("| %d | %s | %s | %zu | %zu | %zu | %zu | %zu |\n", suite_ids[s],
                       mname[method], cred_desc[ct], z[0], z[1], z[2], z[3], z[0] + z[1] + z[2]);
            }
    printf("\nCredential sizes: ");
    for (int k = 0; k < N_KINDS; k++)
        printf("%s%s CCS %zu B, certificate %zu B", k ? "; " : "", kind_name[k],
               g.ks[R_R][k].ccs_len, g.ks[R_R][k].cert_len);
    printf(" (responder's; the initiator's differ by at most a byte).\n\n");
}

/* ------------------------------------------------------------------ */
/* Cases, rounds                                                       */
/* ------------------------------------------------------------------ */

typedef enum case_kind { CASE_HS, CASE_FULL, CASE_OP } case_kind_t;

typedef struct bcase {
    char id[48];
    case_kind_t kind;
    int suite, method, ct;
    void (*fn)(void);
    const char *desc;
    int nrep;
    double ns[MAX_REPS];                /* OP: ns/op; FULL: ns/handshake; HS: responder ns */
    double step_ns[MAX_REPS][N_STEPS]; /* HS: ns per handshake and step */
    unsigned long long allocs, count;  /* OP/FULL: allocations and ops in timed work */
    unsigned long long step_allocs[N_STEPS];
} bcase_t;

static bcase_t g_cases[MAX_CASES];
static size_t g_ncases;

typedef struct options {
    double min_time, warmup;
    int reps;
    int cpu;
    unsigned long batches; /* nonzero: fixed work per repetition (profilers) */
    char only[256];
} options_t;

static bool selected(const options_t *o, const char *id)
{
    char buf[256];
    if (o->only[0] == '\0')
        return true;
    snprintf(buf, sizeof buf, "%s", o->only);
    for (char *t = strtok(buf, ","); t != NULL; t = strtok(NULL, ","))
        if (strncmp(id, t, strlen(t)) == 0)
            return true;
    return false;
}

static void add_hs(const options_t *o, int suite, int method, int ct)
{
    for (int kind = CASE_HS; kind <= CASE_FULL; kind++) {
        bcase_t *c = &g_cases[g_ncases];
        snprintf(c->id, sizeof c->id, "%s_s%d_m%d_%s", kind == CASE_HS ? "hs" : "full", suite,
                 method, cred_name[ct]);
        if (!selected(o, c->id))
            continue;
        c->kind = (case_kind_t)kind;
        c->suite = suite;
        c->method = method;
        c->ct = ct;
        g_ncases++;
    }
}

static void add_op(const options_t *o, const char *id, void (*fn)(void), const char *desc)
{
    bcase_t *c = &g_cases[g_ncases];
    if (!selected(o, id))
        return;
    snprintf(c->id, sizeof c->id, "%s", id);
    c->kind = CASE_OP;
    c->fn = fn;
    c->desc = desc;
    g_ncases++;
}

/* One repetition of a case: runs batches until min_time of timed work (or `batches` batches). */
static void run_rep(bcase_t *c, double min_time, unsigned long batches, bool record)
{
    uint64_t t = 0, min_ns = (uint64_t)(min_time * 1e9);
    uint64_t step_t[N_STEPS] = {0};
    unsigned long long step_a[N_STEPS] = {0}, n = 0, allocs = 0;
    unsigned long nb = 0;

    if (c->kind != CASE_OP)
        set_cfg(c->suite, c->method, c->ct);
    while (batches ? nb < batches : t < min_ns) {
        if (c->kind == CASE_HS) {
            for (int s = 0; s < N_STEPS; s++) {
                unsigned long long a0 = bench_allocs;
                uint64_t t0 = now_ns();
                steps[s].fn();
                uint64_t dt = now_ns() - t0;
                step_t[s] += dt;
                step_a[s] += bench_allocs - a0;
                t += dt;
            }
            n += BATCH;
        } else {
            unsigned long long a0 = bench_allocs;
            uint64_t t0 = now_ns();
            if (c->kind == CASE_FULL)
                timed_full();
            else
                c->fn();
            t += now_ns() - t0;
            allocs += bench_allocs - a0;
            n += c->kind == CASE_FULL ? BATCH : OP_BATCH;
        }
        nb++;
    }
    if (!record)
        return;
    if (c->kind == CASE_HS) {
        double resp = 0;
        for (int s = 0; s < N_STEPS; s++) {
            c->step_ns[c->nrep][s] = (double)step_t[s] / (double)n;
            c->step_allocs[s] += step_a[s];
            if (steps[s].responder && s != STEP_R_M4)
                resp += c->step_ns[c->nrep][s];
        }
        c->ns[c->nrep] = resp;
    } else {
        c->ns[c->nrep] = (double)t / (double)n;
        c->allocs += allocs;
    }
    c->count += n;
    c->nrep++;
}

static double median(const double *v, int n)
{
    double s[MAX_REPS];
    if (n <= 0)
        return 0;
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double vmax(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

static const bcase_t *find_case(const char *id)
{
    for (size_t i = 0; i < g_ncases; i++)
        if (strcmp(g_cases[i].id, id) == 0 && g_cases[i].nrep > 0)
            return &g_cases[i];
    return NULL;
}

/* Median ns of an operation case, < 0 when it did not run. */
static double op_ns(const char *id)
{
    const bcase_t *c = find_case(id);
    return c != NULL ? median(c->ns, c->nrep) : -1;
}

/* Median over rounds of the per-round sum of the given steps. */
static double steps_ns(const bcase_t *c, bool responder, bool with_m4, bool all)
{
    double v[MAX_REPS];
    for (int r = 0; r < c->nrep; r++) {
        v[r] = 0;
        for (int s = 0; s < N_STEPS; s++) {
            if (s == STEP_R_M4 || s == STEP_I_PM4) {
                if (!with_m4 || (!all && s == STEP_I_PM4))
                    continue;
            }
            if (all || steps[s].responder == responder)
                v[r] += c->step_ns[r][s];
        }
    }
    return median(v, c->nrep);
}

/* ------------------------------------------------------------------ */
/* Baselines                                                           */
/* ------------------------------------------------------------------ */

typedef struct baseline {
    const char *what;
    const char *ops[4];
} baseline_t;

/* [suite index][method 0 / 3][raw / provider] */
static const baseline_t baselines[N_SUITES][2][2] = {
    {
        {{"X25519 keygen + X25519 (G_X as bytes) + Ed25519 sign + Ed25519 verify",
          {"raw_x25519_keygen", "raw_x25519_ecdh", "raw_ed25519_sign", "raw_ed25519_verify"}},
         {"provider: key_generate/destroy + ecdh + sign + verify",
          {"prov_x25519_keygen", "prov_x25519_ecdh", "prov_ed25519_sign", "prov_ed25519_verify"}}},
        {{"X25519 keygen + X25519 (G_X as bytes) + 2 X25519 with kept keys (G_RX, G_IY)",
          {"raw_x25519_keygen", "raw_x25519_ecdh", "raw_x25519_ecdh_cached",
           "raw_x25519_ecdh_cached"}},
         {"provider: key_generate/destroy + 3 ecdh",
          {"prov_x25519_keygen", "prov_x25519_ecdh", "prov_x25519_ecdh", "prov_x25519_ecdh"}}},
    },
    {
        {{"P-256 keygen + ECDH (x-only G_X) + ES256 sign + ES256 verify",
          {"raw_p256_keygen", "raw_p256_ecdh_xonly", "raw_es256_sign", "raw_es256_verify"}},
         {"provider: key_generate/destroy + ecdh (x-only) + sign + verify",
          {"prov_p256_keygen", "prov_p256_ecdh_xonly", "prov_es256_sign", "prov_es256_verify"}}},
        {{"P-256 keygen + ECDH (x-only G_X) + 2 ECDH with decoded points (G_RX, G_IY)",
          {"raw_p256_keygen", "raw_p256_ecdh_xonly", "raw_p256_ecdh_point",
           "raw_p256_ecdh_point"}},
         {"provider: key_generate/destroy + 2 ecdh (x-only G_X) + ecdh (65-byte G_I)",
          {"prov_p256_keygen", "prov_p256_ecdh_xonly", "prov_p256_ecdh_xonly",
           "prov_p256_ecdh_full"}}},
    },
};

/* ns of the responder's asymmetric work at raw (prov = 0) or provider (1) cost; < 0 if unknown. */
static double baseline_ns(int suite, int method, int prov)
{
    const baseline_t *b = &baselines[suite_index(suite)][method == 3][prov];
    double sum = 0;
    for (int i = 0; i < 4; i++) {
        double v = op_ns(b->ops[i]);
        if (v < 0)
            return -1;
        sum += v;
    }
    return sum;
}

/* ------------------------------------------------------------------ */
/* Reporting                                                           */
/* ------------------------------------------------------------------ */

static double g_ghz;

static void print_ops(void)
{
    static const struct {
        const char *raw, *prov, *name;
    } rows[] = {
        {"raw_p256_keygen", "prov_p256_keygen", "P-256 key generation (prov.: + key_destroy)"},
        {"raw_p256_decompress", NULL, "P-256 decompression of an x-only key"},
        {"raw_p256_ecdh_point", "prov_p256_ecdh_full",
         "P-256 ECDH, decoded point (prov.: 65-byte key)"},
        {"raw_p256_ecdh_xonly", "prov_p256_ecdh_xonly", "P-256 ECDH, x-only key"},
        {"raw_es256_sign", "prov_es256_sign", "ES256 sign (SHA-256 of 192 B)"},
        {"raw_es256_verify", "prov_es256_verify", "ES256 verify (SHA-256 of 192 B)"},
        {"raw_x25519_keygen", "prov_x25519_keygen", "X25519 key generation (prov.: + key_destroy)"},
        {"raw_x25519_ecdh", "prov_x25519_ecdh", "X25519, peer key as bytes"},
        {"raw_x25519_ecdh_cached", NULL, "X25519, peer EVP_PKEY kept"},
        {"raw_ed25519_sign", "prov_ed25519_sign", "Ed25519 sign (192 B)"},
        {"raw_ed25519_verify", "prov_ed25519_verify", "Ed25519 verify (192 B)"},
        {"raw_sha256", "prov_sha256", "SHA-256 of 192 B"},
        {"raw_hkdf_expand_md", "prov_hkdf_expand",
         "HKDF-Expand, 32 B out, 37 B info (raw: HMAC on a kept EVP_MD_CTX)"},
        {NULL, "prov_hkdf_extract", "HKDF-Extract, 32 B salt and IKM"},
        {NULL, "prov_aead_once", "AEAD key import + AES-CCM encrypt 80 B + key destroy"},
    };
    printf("## Raw operations (same run)\n\n");
    printf("| operation | OpenSSL direct ops/s | us/op | min..max ops/s | allocs/op | provider "
           "ops/s | us/op | provider - raw us | allocs/op |\n");
    printf("|---|---:|---:|---|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const bcase_t *r = rows[i].raw != NULL ? find_case(rows[i].raw) : NULL;
        const bcase_t *p = rows[i].prov != NULL ? find_case(rows[i].prov) : NULL;
        char rs[96] = " |  |  | ", ps[96] = " |  |  | ";
        if (r != NULL) {
            double m = median(r->ns, r->nrep);
            snprintf(rs, sizeof rs, "%.0f | %.*f | %.0f..%.0f | %.1f", 1e9 / m, m < 1e4 ? 2 : 1,
                     m / 1e3,
                     1e9 / vmax(r->ns, r->nrep), 1e9 / vmin(r->ns, r->nrep),
                     (double)r->allocs / (double)r->count);
        }
        if (p != NULL) {
            double m = median(p->ns, p->nrep);
            char diff[32] = "";
            if (r != NULL)
                snprintf(diff, sizeof diff, "%+.*f", m < 1e4 ? 2 : 1,
                         (m - median(r->ns, r->nrep)) / 1e3);
            snprintf(ps, sizeof ps, "%.0f | %.*f | %s | %.1f", 1e9 / m, m < 1e4 ? 2 : 1, m / 1e3,
                     diff,
                     (double)p->allocs / (double)p->count);
        }
        if (r == NULL && p == NULL)
            continue;
        printf("| %s | %s | %s |\n", rows[i].name, rs, ps);
    }
    printf("\n");
}

static void print_baselines(void)
{
    printf("## Baselines: the responder's asymmetric work\n\n");
    printf("raw = the sum of the operations' medians, each measured alone (the baseline); in "
           "order = the same operations run one handshake's set after the other (seq_* cases), "
           "what mixing them costs; provider = the same through the provider, as EDHOC calls it "
           "(method 3: G_X decoded twice, G_I as 65 bytes).\n\n");
    printf("| suite | method | operations | raw us | raw baseline hs/s | in order us | in order "
           "hs/s | provider us | provider hs/s |\n");
    printf("|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for (int s = 0; s < N_SUITES; s++)
        for (int m = 0; m < 2; m++) {
            int method = m ? 3 : 0;
            char id[32];
            double raw = baseline_ns(suite_ids[s], method, 0);
            double prov = baseline_ns(suite_ids[s], method, 1);
            snprintf(id, sizeof id, "seq_s%d_m%d", suite_ids[s], method);
            double seq = op_ns(id);
            if (raw < 0 && prov < 0)
                continue;
            printf("| %d | %d | %s | %.1f | %.0f | %.1f | %.0f | %.1f | %.0f |\n", suite_ids[s],
                   method, baselines[s][m][0].what, raw / 1e3, raw > 0 ? 1e9 / raw : 0, seq / 1e3,
                   seq > 0 ? 1e9 / seq : 0, prov / 1e3, prov > 0 ? 1e9 / prov : 0);
        }
    printf("\n");
}

/* Where the responder's time goes: asymmetric and symmetric work at provider cost, and the rest. */
static void print_decomposition(void)
{
    double sha = op_ns("prov_sha256"), ext = op_ns("prov_hkdf_extract"),
           exp = op_ns("prov_hkdf_expand"), aead = op_ns("prov_aead_once"),
           lean = op_ns("raw_hkdf_expand_md"), rsha = op_ns("raw_sha256");
    printf("## Provider calls per responder handshake, and where the time goes\n\n");
    printf("Calls counted in one untimed handshake (responder init .. process_message_3 .. free) "
           "through a counting wrapper of the provider table. Time split (estimate): "
           "asymmetric = the provider-ops baseline; symmetric = calls x the per-call provider "
           "cost measured above (every hkdf_expand at the cost of a 32-byte output); rest = "
           "responder time - both (CBOR, copies, wipes, state). lean = the symmetric calls at "
           "the raw cost (HMAC on a kept EVP_MD_CTX for extract/expand, raw SHA-256).\n\n");
    printf("| suite | method | credential |");
    for (int i = 0; i < CNT_N; i++)
        printf(" %s |", cnt_name[i]);
    printf(" responder us | asymmetric us | symmetric us | rest us | symmetric, lean us |\n|---:|---:|---|");
    for (int i = 0; i < CNT_N + 5; i++)
        printf("---:|");
    printf("\n");
    for (size_t i = 0; i < g_ncases; i++) {
        const bcase_t *c = &g_cases[i];
        unsigned n[CNT_N];
        if (c->kind != CASE_HS || c->nrep == 0)
            continue;
        count_responder(c->suite, c->method, c->ct, n);
        printf("| %d | %d | %s |", c->suite, c->method, cred_name[c->ct]);
        for (int k = 0; k < CNT_N; k++)
            printf(" %u |", n[k]);
        double r = median(c->ns, c->nrep), asym = baseline_ns(c->suite, c->method, 1);
        if (sha < 0 || ext < 0 || exp < 0 || aead < 0 || asym < 0 || lean < 0 || rsha < 0) {
            printf(" %.1f | | | | |\n", r / 1e3);
            continue;
        }
        double sym = n[CNT_SHA256] * sha + n[CNT_EXTRACT] * ext + n[CNT_EXPAND] * exp +
                     n[CNT_HMAC] * ext + n[CNT_AEAD_IMPORT] * aead;
        double slim = n[CNT_SHA256] * rsha + (n[CNT_EXTRACT] + n[CNT_EXPAND] + n[CNT_HMAC]) * lean +
                      n[CNT_AEAD_IMPORT] * aead;
        printf(" %.1f | %.1f | %.1f | %.1f | %.1f |\n", r / 1e3, asym / 1e3, sym / 1e3,
               (r - asym - sym) / 1e3, slim / 1e3);
    }
    printf("\n");
}

static void print_handshakes(void)
{
    printf("## Handshakes per second, one core\n\n");
    printf("responder = init + process_message_1 + message_2 + process_message_3 + free, its "
           "steps timed alone; full = both sides back to back (message_1..process_message_3). "
           "raw / provider baseline: the responder's asymmetric operations alone (table "
           "above); the full handshake's baseline is half the responder's (the initiator does "
           "the same operations).\n\n");
    printf("| suite | method | credential | responder hs/s | us/hs | min..max hs/s | Mcycles | "
           "raw baseline hs/s | EDHOC / raw | provider baseline hs/s | EDHOC / provider | "
           "responder + message_4 hs/s | full hs/s | min..max | full / raw | allocs/hs (R) |\n");
    printf("|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|\n");
    for (size_t i = 0; i < g_ncases; i++) {
        const bcase_t *c = &g_cases[i], *f;
        char id[64];
        if (c->kind != CASE_HS || c->nrep == 0)
            continue;
        double r = median(c->ns, c->nrep);
        double r4 = steps_ns(c, true, true, false);
        double raw = baseline_ns(c->suite, c->method, 0), prov = baseline_ns(c->suite, c->method, 1);
        unsigned long long ra = 0;
        for (int s = 0; s < N_STEPS; s++)
            if (steps[s].responder && s != STEP_R_M4)
                ra += c->step_allocs[s];
        char fs[96] = "| | |";
        snprintf(id, sizeof id, "full_s%d_m%d_%s", c->suite, c->method, cred_name[c->ct]);
        if ((f = find_case(id)) != NULL) {
            double fm = median(f->ns, f->nrep);
            char ratio[16] = "";
            if (raw > 0)
                snprintf(ratio, sizeof ratio, "%.1f %%", 100 * 2 * raw / fm);
            snprintf(fs, sizeof fs, "%.0f | %.0f..%.0f | %s", 1e9 / fm, 1e9 / vmax(f->ns, f->nrep),
                     1e9 / vmin(f->ns, f->nrep), ratio);
        }
        char raws[48] = "| ", provs[48] = "| ";
        if (raw > 0)
            snprintf(raws, sizeof raws, "%.0f | %.1f %%", 1e9 / raw, 100 * raw / r);
        if (prov > 0)
            snprintf(provs, sizeof provs, "%.0f | %.1f %%", 1e9 / prov, 100 * prov / r);
        printf("| %d | %d | %s | **%.0f** | %.1f | %.0f..%.0f | %.2f | %s | %s | %.0f | %s | %.1f "
               "|\n",
               c->suite, c->method, cred_name[c->ct], 1e9 / r, r / 1e3, 1e9 / vmax(c->ns, c->nrep),
               1e9 / vmin(c->ns, c->nrep), g_ghz > 0 ? g_ghz * r / 1e6 : 0, raws, provs, 1e9 / r4,
               fs, (double)ra / (double)c->count);
    }
    printf("\n");
}

static void print_steps(void)
{
    printf("## Time per step (us per handshake, median over rounds)\n\n");
    printf("| suite | method | credential |");
    for (int s = 0; s < N_STEPS; s++)
        printf(" %s |", steps[s].name);
    printf(" responder | initiator | all steps |\n|---:|---:|---|");
    for (int s = 0; s < N_STEPS + 3; s++)
        printf("---:|");
    printf("\n");
    for (size_t i = 0; i < g_ncases; i++) {
        const bcase_t *c = &g_cases[i];
        if (c->kind != CASE_HS || c->nrep == 0)
            continue;
        printf("| %d | %d | %s |", c->suite, c->method, cred_name[c->ct]);
        for (int s = 0; s < N_STEPS; s++) {
            double v[MAX_REPS];
            for (int r = 0; r < c->nrep; r++)
                v[r] = c->step_ns[r][s];
            printf(" %.1f |", median(v, c->nrep) / 1e3);
        }
        printf(" %.1f | %.1f | %.1f |\n", steps_ns(c, true, false, false) / 1e3,
               steps_ns(c, false, false, false) / 1e3, steps_ns(c, false, true, true) / 1e3);
    }
    printf("\nallocations per handshake and step (OpenSSL heap):\n\n| suite | method | credential |");
    for (int s = 0; s < N_STEPS; s++)
        printf(" %s |", steps[s].name);
    printf("\n|---:|---:|---|");
    for (int s = 0; s < N_STEPS; s++)
        printf("---:|");
    printf("\n");
    for (size_t i = 0; i < g_ncases; i++) {
        const bcase_t *c = &g_cases[i];
        if (c->kind != CASE_HS || c->nrep == 0)
            continue;
        printf("| %d | %d | %s |", c->suite, c->method, cred_name[c->ct]);
        for (int s = 0; s < N_STEPS; s++)
            printf(" %.1f |", (double)c->step_allocs[s] / (double)c->count);
        printf("\n");
    }
    printf("\n");
}

static void print_verdict(void)
{
    const bcase_t *c = find_case("hs_s2_m0_kid");
    printf("## Verdict\n\n");
    if (c == NULL) {
        printf("hs_s2_m0_kid did not run.\n\n");
        return;
    }
    double r = median(c->ns, c->nrep), raw = baseline_ns(2, 0, 0);
    printf("- suite 2, method 0, CCS by kid: %.0f responder handshakes/s (min %.0f): >= 4000/s "
           "%s\n",
           1e9 / r, 1e9 / vmax(c->ns, c->nrep), 1e9 / r >= 4000 ? "MET" : "NOT MET");
    if (raw > 0)
        printf("- EDHOC / raw baseline: %.1f %% (baseline %.0f hs/s): >= 85 %% %s\n", 100 * raw / r,
               1e9 / raw, raw / r >= 0.85 ? "MET" : "NOT MET");
    for (size_t i = 0; i < g_ncases; i++) {
        const bcase_t *h = &g_cases[i];
        double b;
        if (h->kind != CASE_HS || h->nrep == 0 || (b = baseline_ns(h->suite, h->method, 0)) < 0)
            continue;
        double m = median(h->ns, h->nrep);
        printf("- %s: %.0f hs/s, %.1f %% of raw baseline (%s 85 %%)\n", h->id, 1e9 / m,
               100 * b / m, b / m >= 0.85 ? ">=" : "<");
    }
    printf("\n");
}

static void print_csv(void)
{
    printf("csv,case,kind,suite,method,credential,ns_median,ns_min,ns_max,per_second_median,"
           "allocs_per_unit,units\n");
    for (size_t i = 0; i < g_ncases; i++) {
        const bcase_t *c = &g_cases[i];
        if (c->nrep == 0)
            continue;
        double m = median(c->ns, c->nrep);
        double allocs = (double)c->allocs;
        if (c->kind == CASE_HS) {
            allocs = 0;
            for (int s = 0; s < N_STEPS; s++)
                if (steps[s].responder && s != STEP_R_M4)
                    allocs += (double)c->step_allocs[s];
        }
        printf("csv,%s,%s,%d,%d,%s,%.0f,%.0f,%.0f,%.1f,%.2f,%llu\n", c->id,
               c->kind == CASE_HS ? "responder" : c->kind == CASE_FULL ? "full" : "op",
               c->kind == CASE_OP ? -1 : c->suite, c->kind == CASE_OP ? -1 : c->method,
               c->kind == CASE_OP ? "" : cred_name[c->ct], m, vmin(c->ns, c->nrep),
               vmax(c->ns, c->nrep), 1e9 / m, allocs / (double)c->count, c->count);
    }
}

/* Core clock estimate: a chain of dependent adds retires one per cycle (see bench_oscore.c). */
static double estimate_ghz(void)
{
#if defined(__x86_64__)
    uint64_t x = 0;
    const long iters = 20000000;
    double best = 0;
    for (int r = 0; r < 3; r++) {
        uint64_t t0 = now_ns();
        for (long i = 0; i < iters; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                             : "+r"(x));
        double ghz = 16.0 * (double)iters / (double)(now_ns() - t0);
        if (ghz > best)
            best = ghz;
    }
    g.sum += x;
    return best;
#else
    return 0;
#endif
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_edhoc [--min-time S] [--reps N] [--warmup S] [--cpu N|-1]\n"
            "                   [--only PREFIX[,PREFIX...]] [--batches N]\n"
            "  cases: hs_s{0,2}_m{0,3}_{kid,x5t}  (responder steps timed alone, all steps)\n"
            "         full_s{0,2}_m{0,3}_{kid,x5t} (both sides back to back)\n"
            "         raw_* (OpenSSL directly), prov_* (through the provider)\n"
            "  --only hs_s2_m0 selects by prefix; --batches N: fixed work (N batches of %d\n"
            "  sessions / %d operations per repetition, no warm-up), for the profilers\n",
            BATCH, OP_BATCH);
    exit(2);
}

static void parse_args(options_t *o, int argc, char **argv)
{
    o->min_time = 0.3;
    o->warmup = 0.1;
    o->reps = 5;
    o->cpu = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(a, "--min-time") == 0)
            o->min_time = atof(v);
        else if (strcmp(a, "--warmup") == 0)
            o->warmup = atof(v);
        else if (strcmp(a, "--reps") == 0) {
            o->reps = atoi(v);
            if (o->reps < 1 || o->reps > MAX_REPS)
                usage();
        } else if (strcmp(a, "--cpu") == 0)
            o->cpu = atoi(v);
        else if (strcmp(a, "--batches") == 0)
            o->batches = strtoul(v, NULL, 10);
        else if (strcmp(a, "--only") == 0)
            snprintf(o->only, sizeof o->only, "%s", v);
        else
            usage();
    }
    if (o->min_time <= 0 && !o->batches)
        usage();
}

static void add_cases(const options_t *o)
{
    for (int s = 0; s < N_SUITES; s++) {
        add_hs(o, suite_ids[s], 0, C_KID);
        add_hs(o, suite_ids[s], 0, C_X5T);
        add_hs(o, suite_ids[s], 3, C_KID);
    }
    add_op(o, "raw_p256_keygen", raw_p256_keygen, "");
    add_op(o, "raw_p256_decompress", raw_p256_decompress, "");
    add_op(o, "raw_p256_ecdh_point", raw_p256_ecdh_point, "");
    add_op(o, "raw_p256_ecdh_xonly", raw_p256_ecdh_xonly, "");
    add_op(o, "raw_es256_sign", raw_es256_sign, "");
    add_op(o, "raw_es256_verify", raw_es256_verify, "");
    add_op(o, "raw_x25519_keygen", raw_x25519_keygen, "");
    add_op(o, "raw_x25519_ecdh", raw_x25519_ecdh, "");
    add_op(o, "raw_x25519_ecdh_cached", raw_x25519_ecdh_cached, "");
    add_op(o, "raw_ed25519_sign", raw_ed25519_sign, "");
    add_op(o, "raw_ed25519_verify", raw_ed25519_verify, "");
    add_op(o, "prov_p256_keygen", prov_p256_keygen, "");
    add_op(o, "prov_p256_ecdh_xonly", prov_p256_ecdh_xonly, "");
    add_op(o, "prov_p256_ecdh_full", prov_p256_ecdh_full, "");
    add_op(o, "prov_es256_sign", prov_es256_sign, "");
    add_op(o, "prov_es256_verify", prov_es256_verify, "");
    add_op(o, "prov_x25519_keygen", prov_x25519_keygen, "");
    add_op(o, "prov_x25519_ecdh", prov_x25519_ecdh, "");
    add_op(o, "prov_ed25519_sign", prov_ed25519_sign, "");
    add_op(o, "prov_ed25519_verify", prov_ed25519_verify, "");
    add_op(o, "seq_s2_m0", seq_s2_m0, "");
    add_op(o, "seq_s2_m3", seq_s2_m3, "");
    add_op(o, "seq_s0_m0", seq_s0_m0, "");
    add_op(o, "seq_s0_m3", seq_s0_m3, "");
    add_op(o, "raw_sha256", raw_sha256, "");
    add_op(o, "raw_hkdf_expand_md", raw_hkdf_expand_md, "");
    add_op(o, "prov_sha256", prov_sha256, "");
    add_op(o, "prov_hkdf_extract", prov_hkdf_extract, "");
    add_op(o, "prov_hkdf_expand", prov_hkdf_expand, "");
    add_op(o, "prov_aead_once", prov_aead_once, "");
}

int main(int argc, char **argv)
{
    options_t o;
    char model[128], pinned[64];
    cl_status_t st;

    memset(&o, 0, sizeof o);
    /* Before anything touches OpenSSL, or the hooks are refused. */
    if (!bench_count_allocations())
        die("CRYPTO_set_mem_functions", 1);
    parse_args(&o, argc, argv);

    snprintf(pinned, sizeof pinned, "not pinned");
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) == 0)
            snprintf(pinned, sizeof pinned, "pinned to CPU %d", o.cpu);
        else
            snprintf(pinned, sizeof pinned, "not pinned (%s)", strerror(errno));
    }

    for (int r = 0; r < N_ROLES; r++)
        if ((st = cl_crypto_openssl_new(&g.crypto[r], 0)) != CL_OK)
            die("cl_crypto_openssl_new", st);
    setup_credentials();
    raw_setup();
    all_sizes(); /* every suite x method x credential completes and agrees */

    bench_cpu_model(model, sizeof model);
    printf("# bench_edhoc\n\n");
    printf("- CPU: %s; %s\n", model, pinned);
    printf("- build: %s; compiler: %s\n", CL_BENCH_BUILD, __VERSION__);
    printf("- OpenSSL: %s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("- provider: \"%s\", one instance per side; sizeof(cl_edhoc_t) = %zu bytes\n",
           g.crypto[R_R].ops->name, sizeof(cl_edhoc_t));
    if (o.batches)
        printf("- method: %lu batches per case and repetition (%d sessions / %d operations "
               "each), %d repetition(s), no warm-up\n",
               o.batches, BATCH, OP_BATCH, o.reps);
    else
        printf("- method: batches of %d sessions (handshakes, each step of a batch timed on its "
               "own) or %d operations (raw), CLOCK_MONOTONIC; every case gets a %.2f s warm-up, "
               "then %d rounds in which each case runs >= %.2f s of timed work (cases "
               "interleaved round by round); median, min..max over the rounds\n",
               BATCH, OP_BATCH, o.warmup, o.reps, o.min_time);
    printf("- credentials: keys generated in the providers at start-up; the peer-credential "
           "callback looks the received ID_CRED up in a table and returns CRED and a key handle "
           "imported once (static DH: the public key bytes); certificates from a P-256 CA made "
           "at start-up, validated when stored; C_I = -14, C_R = -8, no EAD\n\n");
    print_sizes();
    fflush(stdout);

    add_cases(&o);
    if (g_ncases == 0)
        usage();
    if (!o.batches) {
        g_ghz = estimate_ghz();
        if (g_ghz > 0)
            printf("- core clock while running (dependent-add chain): %.2f GHz; Mcycles = us x "
                   "this\n",
                   g_ghz);
        for (size_t i = 0; i < g_ncases; i++)
            run_rep(&g_cases[i], o.warmup, 0, false);
    }
    for (int rep = 0; rep < o.reps; rep++)
        for (size_t i = 0; i < g_ncases; i++)
            run_rep(&g_cases[i], o.min_time, o.batches, true);
    if (!o.batches && g_ghz > 0)
        printf("- core clock after the run: %.2f GHz\n", estimate_ghz());
    printf("\n");

    print_handshakes();
    print_steps();
    print_baselines();
    print_ops();
    print_decomposition();
    print_verdict();
    print_csv();
    printf("\nchecksum %016llx\n", (unsigned long long)g.sum);

    raw_free();
    for (int r = 0; r < N_ROLES; r++)
        for (int k = 0; k < N_KINDS; k++)
            free(g.ks[r][k].cert);
    X509_free(g.ca_cert);
    EVP_PKEY_free(g.ca_key);
    for (int r = 0; r < N_ROLES; r++)
        cl_crypto_openssl_free(&g.crypto[r]);
    return 0;
}
