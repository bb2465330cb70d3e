/*
 * test_edhoc_matrix.c - EDHOC interoperability matrix between our initiator
 * and our responder.
 *
 * Every method (0..3) x cipher suite (0, 1, 2, 3, 6) x credential type of
 * each side (x5t with SHA-256/64, x5chain with one certificate, x5chain
 * [leaf, intermediate], kid referring to a CCS the peer already has, kccs
 * carrying the CCS by value): 4 x 5 x 5 x 5 = 500 full handshakes
 * (message_1..message_4). Each checks that both sides agree on PRK_out and on
 * exporter output, that each side's callback resolved exactly the credential
 * the other side sent, and that the OSCORE contexts of Appendix A.1
 * interoperate (a protected request/response in each direction).
 *
 * The peer-credential callback does the work a real node does: x5t is looked
 * up by hash (computed here with cl_sha256) in a table of known
 * certificates, which are then validated; x5chain is parsed out of ID_CRED
 * and validated to the test root with CRLs (support/testca.c, OpenSSL
 * X509_verify_cert); kid is looked up in a CCS table; kccs keys are pinned by
 * an allowlist. CRED is the DER certificate as a bstr for X.509 and the CCS
 * map itself for CCS (RFC 9528 3.5.2).
 *
 * Connection identifiers (every ordered pair of int / empty / 1..7-byte
 * bstr values, in every suite) and kid encodings at the edges of the compact
 * form get their own handshakes. The bytes on the wire of message_1..4 per
 * method and credential type are printed and, when CL_EDHOC_SIZES_OUT names
 * a file, written there as Markdown for BENCHMARKS.md.
 *
 * Negatives: expired, revoked and foreign-CA certificates; unknown kid / x5t
 * and unpinned kccs; signatures and MACs made with a key other than the
 * credential's; suite mismatch and negotiation; a method the responder has no
 * credential for; static DH keys on the wrong curve for the suite.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testca.h"
#include "testutil.h"

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/crypto_openssl.h"
#include "cloister/edhoc.h"
#include "cloister/oscore.h"

static cl_crypto_t crypto;

/* ---- the credentials of both roles, in every form ---- */

enum { R_I, R_R, N_ROLES };
enum { K_ED25519, K_P256_SIG, K_X25519, K_P256_DH, N_KINDS };
enum { C_X5T, C_X5CHAIN, C_X5CHAIN2, C_KID, C_KCCS, N_CREDS };

static const char *const role_name[N_ROLES] = {"I", "R"};
static const char *const kind_name[N_KINDS] = {"ed25519", "p256-sig", "x25519", "p256-dh"};
static const cl_key_type_t kind_type[N_KINDS] = {CL_KEY_ED25519, CL_KEY_P256, CL_KEY_X25519,
                                                 CL_KEY_P256};
static const char *const cred_name[N_CREDS] = {"x5t", "x5chain", "x5chain[2]", "kid", "kccs"};
static const int all_suites[] = {0, 1, 2, 3, 6};
#define N_SUITES (sizeof all_suites / sizeof all_suites[0])
static const char *const method_name[4] = {"0 (sig/sig)", "1 (sig/dh)", "2 (dh/sig)", "3 (dh/dh)"};

/*
 * kids of the matrix: one byte that encodes an int (sent as that one byte,
 * 3.5.3.2), as deployments choose them; other kid encodings are in
 * test_kid_encodings.
 */
static const uint8_t kids[N_ROLES][N_KINDS][1] = {
    {{0x0a}, {0x2b}, {0x0c}, {0x2c}},
    {{0x32}, {0x05}, {0x06}, {0x33}},
};
static const size_t kid_lens[N_ROLES][N_KINDS] = {{1, 1, 1, 1}, {1, 1, 1, 1}};

#define ID_CRED_MAX 1100
#define CRED_MAX 700
#define CCS_MAX 200
#define MSG_MAX 1500

typedef struct cred {
    uint8_t id_cred[ID_CRED_MAX]; /* ID_CRED_x (map) */
    size_t id_cred_len;
    uint8_t cred[CRED_MAX]; /* CRED_x */
    size_t cred_len;
} cred_t;

/* One authentication key of one role, with its certificates, CCS and all ID_CRED forms. */
typedef struct keyset {
    cl_key_t priv;
    uint8_t pub[CL_PUB_MAX];
    size_t pub_len;
    uint8_t *cert; /* issued by the root: x5t and x5chain */
    size_t cert_len;
    uint8_t *cert2; /* issued by the intermediate: x5chain [leaf, intermediate] */
    size_t cert2_len;
    uint8_t ccs[CCS_MAX];
    size_t ccs_len;
    cred_t c[N_CREDS];
} keyset_t;

static keyset_t ks[N_ROLES][N_KINDS];
static testca_t *root, *inter, *foreign;
static testca_verifier_t *verifier;

/* Extra certificates for the negatives (initiator p256-sig key, responder ed25519 key). */
static uint8_t *cert_expired_i, *cert_revoked_i, *cert_foreign_i, *cert_revoked2_i;
static size_t cert_expired_i_len, cert_revoked_i_len, cert_foreign_i_len, cert_revoked2_i_len;
static uint8_t *cert_expired_r;
static size_t cert_expired_r_len;

/* What a role knows about its peers. */
typedef struct trust {
    const uint8_t *certs[16]; /* known certificates, looked up by x5t */
    size_t cert_len[16];
    size_t n_certs;
    const uint8_t *inters[2]; /* known intermediate CA certificates (chain building for x5t) */
    size_t inter_len[2];
    size_t n_inters;
    struct {
        const uint8_t *kid, *ccs;
        size_t kid_len, ccs_len;
    } ccs[8]; /* CCS by kid */
    size_t n_ccs;
    testca_pub_t pins[8]; /* keys accepted in kccs */
    size_t n_pins;
    const testca_verifier_t *v;
} trust_t;

static trust_t trust[N_ROLES];

/* ---- one side of a handshake ---- */

typedef struct party {
    cl_edhoc_config_t cfg;
    cl_edhoc_auth_t auth[N_KINDS];
    int suites[CL_EDHOC_MAX_SUITES];
    const trust_t *trust;
    /* what the callback saw and did */
    int calls;
    cl_status_t status;
    int x509_err;
    uint8_t seen[ID_CRED_MAX];
    size_t seen_len;
    uint8_t cred[CRED_MAX];
    size_t cred_len;
    cl_key_t imported;
} party_t;

/* The key kind a side authenticates with for this suite. */
static int kind_for(int suite, bool static_dh)
{
    cl_edhoc_suite_t su;
    assert_int_equal(cl_edhoc_suite(suite, &su), CL_OK);
    if (static_dh)
        return su.dh == CL_KEY_X25519 ? K_X25519 : K_P256_DH;
    return su.sig_key == CL_KEY_ED25519 ? K_ED25519 : K_P256_SIG;
}

/* ---- CCS (CWT Claims Set) encoding and parsing ---- */

/* {2: subject, 8: {1: COSE_Key}} with COSE_Key {1: kty, 2: kid, -1: crv, -2: x, (-3: y)}. */
static size_t make_ccs(uint8_t *out, size_t size, const char *subject, cl_key_type_t type,
                       const uint8_t *pub, size_t pub_len, const uint8_t *kid, size_t kid_len)
{
    cl_cbor_enc_t e;
    size_t n;
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
    cl_cbor_enc_bstr(&e, kid, kid_len);
    cl_cbor_enc_int(&e, -1);
    cl_cbor_enc_uint(&e, (uint64_t)type); /* crv: 1 P-256, 4 X25519, 6 Ed25519 */
    cl_cbor_enc_int(&e, -2);
    if (ec2) {
        assert_int_equal(pub_len, 65);
        cl_cbor_enc_bstr(&e, pub + 1, 32);
        cl_cbor_enc_int(&e, -3);
        cl_cbor_enc_bstr(&e, pub + 33, 32);
    } else {
        cl_cbor_enc_bstr(&e, pub, pub_len);
    }
    assert_int_equal(cl_cbor_enc_finish(&e, &n), CL_OK);
    return n;
}

static cl_status_t map_int(const uint8_t *map, size_t len, int64_t label, int64_t *v)
{
    const uint8_t *p;
    size_t n;
    cl_cbor_dec_t d;
    if (cl_cose_header_find(map, len, label, &p, &n) != CL_OK)
        return CL_ERR_BAD_INPUT;
    cl_cbor_dec_init(&d, p, n);
    return cl_cbor_dec_int(&d, v) == CL_OK ? CL_OK : CL_ERR_BAD_INPUT;
}

static cl_status_t map_bstr(const uint8_t *map, size_t len, int64_t label, const uint8_t **v,
                            size_t *vlen)
{
    const uint8_t *p;
    size_t n;
    cl_cbor_dec_t d;
    if (cl_cose_header_find(map, len, label, &p, &n) != CL_OK)
        return CL_ERR_BAD_INPUT;
    cl_cbor_dec_init(&d, p, n);
    return cl_cbor_dec_bstr(&d, v, vlen) == CL_OK ? CL_OK : CL_ERR_BAD_INPUT;
}

/* The key in a CCS's cnf claim, with the uses its curve allows. */
static cl_status_t ccs_key(const uint8_t *ccs, size_t len, testca_pub_t *key)
{
    const uint8_t *v, *cnf, *ck, *x, *y;
    size_t vlen, cnf_len, ck_len, x_len, y_len;
    int64_t kty, crv;
    cl_cbor_dec_t d;
    const char *sub;
    size_t sub_len;

    cl_cbor_dec_init(&d, ccs, len);
    if (cl_cbor_dec_skip(&d) != CL_OK || !cl_cbor_dec_at_end(&d))
        return CL_ERR_BAD_INPUT;
    if (cl_cose_header_find(ccs, len, 2, &v, &vlen) != CL_OK) /* a subject is required */
        return CL_ERR_BAD_INPUT;
    cl_cbor_dec_init(&d, v, vlen);
    if (cl_cbor_dec_tstr(&d, &sub, &sub_len) != CL_OK)
        return CL_ERR_BAD_INPUT;
    if (cl_cose_header_find(ccs, len, 8, &cnf, &cnf_len) != CL_OK ||
        cl_cose_header_find(cnf, cnf_len, 1, &ck, &ck_len) != CL_OK ||
        map_int(ck, ck_len, 1, &kty) != CL_OK || map_int(ck, ck_len, -1, &crv) != CL_OK ||
        map_bstr(ck, ck_len, -2, &x, &x_len) != CL_OK || x_len != 32)
        return CL_ERR_BAD_INPUT;
    memset(key, 0, sizeof *key);
    if (kty == 2 && crv == CL_KEY_P256) {
        if (map_bstr(ck, ck_len, -3, &y, &y_len) != CL_OK || y_len != 32)
            return CL_ERR_BAD_INPUT;
        key->type = CL_KEY_P256;
        key->pub[0] = 0x04;
        memcpy(key->pub + 1, x, 32);
        memcpy(key->pub + 33, y, 32);
        key->pub_len = 65;
        key->sign = key->agree = true; /* a CCS does not restrict the use of a P-256 key */
        return CL_OK;
    }
    if (kty == 1 && (crv == CL_KEY_X25519 || crv == CL_KEY_ED25519)) {
        key->type = (cl_key_type_t)crv;
        memcpy(key->pub, x, 32);
        key->pub_len = 32;
        key->sign = crv == CL_KEY_ED25519;
        key->agree = crv == CL_KEY_X25519;
        return CL_OK;
    }
    return CL_ERR_UNSUPPORTED;
}

/* ---- the peer-credential callback ---- */

static cl_status_t use_key(party_t *p, const testca_pub_t *key, const uint8_t *cred,
                           size_t cred_len, cl_edhoc_peer_t *peer)
{
    cl_status_t st = testca_peer_key(&crypto, key, peer);
    if (st != CL_OK)
        return st;
    p->imported = peer->key;
    peer->cred = cred;
    peer->cred_len = cred_len;
    return CL_OK;
}

/* Validates an X.509 leaf (+ intermediates); CRED = bstr(leaf). */
static cl_status_t use_x509(party_t *p, const uint8_t *leaf, size_t leaf_len,
                            const uint8_t *const *inter_der, const size_t *inter_len,
                            size_t n_inter, cl_edhoc_peer_t *peer)
{
    testca_pub_t key;
    cl_cbor_enc_t e;
    cl_status_t st = testca_verify(p->trust->v, leaf, leaf_len, inter_der, inter_len, n_inter, &key,
                                   &p->x509_err);
    if (st != CL_OK)
        return st;
    cl_cbor_enc_init(&e, p->cred, sizeof p->cred);
    cl_cbor_enc_bstr(&e, leaf, leaf_len);
    if (cl_cbor_enc_finish(&e, &p->cred_len) != CL_OK)
        return CL_ERR_LIMIT;
    return use_key(p, &key, p->cred, p->cred_len, peer);
}

/* x5t = [alg, hash]: a known certificate whose hash matches, then validated. */
static cl_status_t resolve_x5t(party_t *p, const uint8_t *v, size_t vlen, cl_edhoc_peer_t *peer)
{
    cl_cbor_dec_t d;
    size_t n, hash_len;
    int64_t alg;
    const uint8_t *hash;
    cl_cbor_dec_init(&d, v, vlen);
    if (cl_cbor_dec_array(&d, &n) != CL_OK || n != 2 || cl_cbor_dec_int(&d, &alg) != CL_OK ||
        cl_cbor_dec_bstr(&d, &hash, &hash_len) != CL_OK)
        return CL_ERR_BAD_INPUT;
    if (!((alg == -15 && hash_len == 8) || (alg == -16 && hash_len == 32)))
        return CL_ERR_NOT_FOUND; /* a hash we cannot match against */
    for (size_t i = 0; i < p->trust->n_certs; i++) {
        uint8_t h[CL_SHA256_LEN];
        cl_buf_t part = {p->trust->certs[i], p->trust->cert_len[i]};
        assert_int_equal(cl_sha256(&crypto, &part, 1, h), CL_OK);
        if (memcmp(h, hash, hash_len) == 0)
            return use_x509(p, p->trust->certs[i], p->trust->cert_len[i], p->trust->inters,
                            p->trust->inter_len, p->trust->n_inters, peer);
    }
    return CL_ERR_NOT_FOUND;
}

/* x5chain = bstr / [2* bstr], leaf first. */
static cl_status_t resolve_x5chain(party_t *p, const uint8_t *v, size_t vlen, cl_edhoc_peer_t *peer)
{
    const uint8_t *der[4];
    size_t der_len[4], n = 1;
    cl_cbor_dec_t d;
    cl_cbor_type_t t;
    cl_cbor_dec_init(&d, v, vlen);
    if (cl_cbor_dec_peek(&d, &t) != CL_OK)
        return CL_ERR_BAD_INPUT;
    if (t == CL_CBOR_ARRAY &&
        (cl_cbor_dec_array(&d, &n) != CL_OK || n < 2 || n > sizeof der / sizeof der[0]))
        return CL_ERR_BAD_INPUT;
    for (size_t i = 0; i < n; i++)
        if (cl_cbor_dec_bstr(&d, &der[i], &der_len[i]) != CL_OK)
            return CL_ERR_BAD_INPUT;
    return use_x509(p, der[0], der_len[0], der + 1, der_len + 1, n - 1, peer);
}

static cl_status_t resolve_kid(party_t *p, const uint8_t *v, size_t vlen, cl_edhoc_peer_t *peer)
{
    const uint8_t *kid;
    size_t kid_len;
    cl_cbor_dec_t d;
    testca_pub_t key;
    cl_status_t st;
    cl_cbor_dec_init(&d, v, vlen);
    if (cl_cbor_dec_bstr(&d, &kid, &kid_len) != CL_OK)
        return CL_ERR_BAD_INPUT;
    for (size_t i = 0; i < p->trust->n_ccs; i++) {
        if (p->trust->ccs[i].kid_len != kid_len || memcmp(p->trust->ccs[i].kid, kid, kid_len) != 0)
            continue;
        if ((st = ccs_key(p->trust->ccs[i].ccs, p->trust->ccs[i].ccs_len, &key)) != CL_OK)
            return st;
        return use_key(p, &key, p->trust->ccs[i].ccs, p->trust->ccs[i].ccs_len, peer);
    }
    return CL_ERR_NOT_FOUND;
}

/* kccs: the CCS travels by value; only pinned keys are accepted. CRED = the CCS. */
static cl_status_t resolve_kccs(party_t *p, const uint8_t *v, size_t vlen, cl_edhoc_peer_t *peer)
{
    testca_pub_t key;
    cl_status_t st = ccs_key(v, vlen, &key);
    if (st != CL_OK)
        return st;
    for (size_t i = 0; i < p->trust->n_pins; i++) {
        const testca_pub_t *pin = &p->trust->pins[i];
        if (pin->type == key.type && pin->pub_len == key.pub_len &&
            memcmp(pin->pub, key.pub, key.pub_len) == 0) {
            if (vlen > sizeof p->cred)
                return CL_ERR_LIMIT;
            memcpy(p->cred, v, vlen);
            p->cred_len = vlen;
            return use_key(p, &key, p->cred, p->cred_len, peer);
        }
    }
    return CL_ERR_AUTH; /* well-formed, but not a key we trust */
}

static cl_status_t resolve(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred, size_t len,
                           cl_edhoc_peer_t *peer)
{
    party_t *p = arg;
    const uint8_t *v;
    size_t vlen;
    cl_status_t st;
    (void)own_role;
    p->calls++;
    p->x509_err = 0;
    assert_true(len <= sizeof p->seen);
    memcpy(p->seen, id_cred, len);
    p->seen_len = len;
    cl_key_destroy(&crypto, p->imported);
    p->imported = CL_KEY_NONE;
    if (cl_cose_header_find(id_cred, len, CL_COSE_HDR_X5T, &v, &vlen) == CL_OK)
        st = resolve_x5t(p, v, vlen, peer);
    else if (cl_cose_header_find(id_cred, len, CL_COSE_HDR_X5CHAIN, &v, &vlen) == CL_OK)
        st = resolve_x5chain(p, v, vlen, peer);
    else if (cl_cose_header_find(id_cred, len, CL_COSE_HDR_KID, &v, &vlen) == CL_OK)
        st = resolve_kid(p, v, vlen, peer);
    else if (cl_cose_header_find(id_cred, len, 14, &v, &vlen) == CL_OK) /* kccs */
        st = resolve_kccs(p, v, vlen, peer);
    else
        st = CL_ERR_NOT_FOUND;
    p->status = st;
    return st;
}

/* Our credentials of type ct for every key kind; select_auth picks by method and suite. */
static void party_init(party_t *p, int role, int ct, const int *suites, size_t n_suites)
{
    memset(p, 0, sizeof *p);
    for (int k = 0; k < N_KINDS; k++) {
        const keyset_t *s = &ks[role][k];
        p->auth[k].id_cred = s->c[ct].id_cred;
        p->auth[k].id_cred_len = s->c[ct].id_cred_len;
        p->auth[k].cred = s->c[ct].cred;
        p->auth[k].cred_len = s->c[ct].cred_len;
        p->auth[k].key = s->priv;
        p->auth[k].type = kind_type[k];
        p->auth[k].static_dh = k >= K_X25519;
    }
    assert_true(n_suites <= CL_EDHOC_MAX_SUITES);
    memcpy(p->suites, suites, n_suites * sizeof *suites);
    p->cfg.crypto = &crypto;
    p->cfg.suites = p->suites;
    p->cfg.n_suites = n_suites;
    p->cfg.auth = p->auth;
    p->cfg.n_auth = N_KINDS;
    p->cfg.peer_cred = resolve;
    p->cfg.peer_cred_arg = p;
    p->trust = &trust[role];
}

static void party_done(party_t *p)
{
    cl_key_destroy(&crypto, p->imported);
    p->imported = CL_KEY_NONE;
}

/* ---- building the credentials ---- */

static size_t enc_bstr(uint8_t *out, size_t size, const uint8_t *p, size_t len)
{
    cl_cbor_enc_t e;
    size_t n;
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_bstr(&e, p, len);
    assert_int_equal(cl_cbor_enc_finish(&e, &n), CL_OK);
    return n;
}

/* {34: [alg, hash]} with SHA-256/64 (alg -15) or SHA-256 (alg -16). */
static size_t enc_x5t(uint8_t *out, size_t size, const uint8_t *der, size_t der_len, int alg)
{
    uint8_t h[CL_SHA256_LEN];
    cl_buf_t part = {der, der_len};
    cl_cbor_enc_t e;
    size_t n;
    assert_int_equal(cl_sha256(&crypto, &part, 1, h), CL_OK);
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, CL_COSE_HDR_X5T);
    cl_cbor_enc_array(&e, 2);
    cl_cbor_enc_int(&e, alg);
    cl_cbor_enc_bstr(&e, h, alg == -15 ? 8 : 32);
    assert_int_equal(cl_cbor_enc_finish(&e, &n), CL_OK);
    return n;
}

/* {33: bstr} for one certificate, {33: [bstr, bstr]} for leaf + intermediate. */
static size_t enc_x5chain(uint8_t *out, size_t size, const uint8_t *leaf, size_t leaf_len,
                          const uint8_t *int_der, size_t int_len)
{
    cl_cbor_enc_t e;
    size_t n;
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, CL_COSE_HDR_X5CHAIN);
    if (int_der != NULL)
        cl_cbor_enc_array(&e, 2);
    cl_cbor_enc_bstr(&e, leaf, leaf_len);
    if (int_der != NULL)
        cl_cbor_enc_bstr(&e, int_der, int_len);
    assert_int_equal(cl_cbor_enc_finish(&e, &n), CL_OK);
    return n;
}

static size_t enc_kid(uint8_t *out, size_t size, const uint8_t *kid, size_t kid_len)
{
    cl_cbor_enc_t e;
    size_t n;
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, CL_COSE_HDR_KID);
    cl_cbor_enc_bstr(&e, kid, kid_len);
    assert_int_equal(cl_cbor_enc_finish(&e, &n), CL_OK);
    return n;
}

static size_t enc_kccs(uint8_t *out, size_t size, const uint8_t *ccs, size_t ccs_len)
{
    cl_cbor_enc_t e;
    size_t n;
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 14);
    cl_cbor_enc_raw(&e, ccs, ccs_len);
    assert_int_equal(cl_cbor_enc_finish(&e, &n), CL_OK);
    return n;
}

static uint8_t *issue(testca_t *ca, const char *cn, cl_key_type_t type, const uint8_t *pub,
                      size_t pub_len, bool dh, long serial, long nb, long na, size_t *len)
{
    testca_leaf_t leaf = {cn, type, pub, pub_len, dh, serial, nb, na};
    uint8_t *der = testca_issue(ca, &leaf, len);
    assert_non_null(der);
    return der;
}

#define YEAR (365L * 86400)

static void make_keyset(int role, int kind)
{
    keyset_t *k = &ks[role][kind];
    bool dh = kind >= K_X25519;
    char cn[32];
    size_t int_len;
    const uint8_t *int_der = testca_cert(inter, &int_len);
    long serial = 100 + 10 * role + kind;

    assert_int_equal(crypto.ops->key_generate(crypto.self, kind_type[kind],
                                              dh ? CL_KEY_USAGE_ECDH : CL_KEY_USAGE_SIGN, &k->priv,
                                              k->pub, sizeof k->pub, &k->pub_len),
                     CL_OK);
    snprintf(cn, sizeof cn, "%s-%s", role_name[role], kind_name[kind]);
    k->cert =
        issue(root, cn, kind_type[kind], k->pub, k->pub_len, dh, serial, -3600, YEAR, &k->cert_len);
    k->cert2 = issue(inter, cn, kind_type[kind], k->pub, k->pub_len, dh, serial + 1000, -3600, YEAR,
                     &k->cert2_len);
    k->ccs_len = make_ccs(k->ccs, sizeof k->ccs, cn, kind_type[kind], k->pub, k->pub_len,
                          kids[role][kind], kid_lens[role][kind]);

    cred_t *c = k->c;
    c[C_X5T].id_cred_len = enc_x5t(c[C_X5T].id_cred, ID_CRED_MAX, k->cert, k->cert_len, -15);
    c[C_X5T].cred_len = enc_bstr(c[C_X5T].cred, CRED_MAX, k->cert, k->cert_len);
    c[C_X5CHAIN].id_cred_len =
        enc_x5chain(c[C_X5CHAIN].id_cred, ID_CRED_MAX, k->cert, k->cert_len, NULL, 0);
    c[C_X5CHAIN].cred_len = enc_bstr(c[C_X5CHAIN].cred, CRED_MAX, k->cert, k->cert_len);
    c[C_X5CHAIN2].id_cred_len =
        enc_x5chain(c[C_X5CHAIN2].id_cred, ID_CRED_MAX, k->cert2, k->cert2_len, int_der, int_len);
    c[C_X5CHAIN2].cred_len = enc_bstr(c[C_X5CHAIN2].cred, CRED_MAX, k->cert2, k->cert2_len);
    c[C_KID].id_cred_len =
        enc_kid(c[C_KID].id_cred, ID_CRED_MAX, kids[role][kind], kid_lens[role][kind]);
    memcpy(c[C_KID].cred, k->ccs, k->ccs_len);
    c[C_KID].cred_len = k->ccs_len;
    c[C_KCCS].id_cred_len = enc_kccs(c[C_KCCS].id_cred, ID_CRED_MAX, k->ccs, k->ccs_len);
    memcpy(c[C_KCCS].cred, k->ccs, k->ccs_len);
    c[C_KCCS].cred_len = k->ccs_len;
}

static void trust_add_cert(trust_t *t, const uint8_t *der, size_t len)
{
    assert_true(t->n_certs < sizeof t->certs / sizeof t->certs[0]);
    t->certs[t->n_certs] = der;
    t->cert_len[t->n_certs++] = len;
}

static void add_crl(testca_t *ca)
{
    size_t len;
    uint8_t *crl = testca_crl(ca, &len);
    assert_non_null(crl);
    assert_int_equal(testca_verifier_add_crl(verifier, crl, len), CL_OK);
    testca_free(crl);
}

static int setup(void **state)
{
    (void)state;
    size_t len;
    tu_crypto(&crypto, 0);
    root = testca_root_new("Cloister Test Root", 1);
    assert_non_null(root);
    inter = testca_intermediate_new(root, "Cloister Test Sub", 2);
    assert_non_null(inter);
    foreign = testca_root_new("Other Root", 1);
    assert_non_null(foreign);
    for (int r = 0; r < N_ROLES; r++)
        for (int k = 0; k < N_KINDS; k++)
            make_keyset(r, k);

    /* Certificates for the negatives. */
    const keyset_t *ip = &ks[R_I][K_P256_SIG], *re = &ks[R_R][K_ED25519];
    cert_expired_i = issue(root, "I-p256-sig", CL_KEY_P256, ip->pub, ip->pub_len, false, 900,
                           -2 * 86400, -86400, &cert_expired_i_len);
    cert_revoked_i = issue(root, "I-p256-sig", CL_KEY_P256, ip->pub, ip->pub_len, false, 901, -3600,
                           YEAR, &cert_revoked_i_len);
    cert_revoked2_i = issue(inter, "I-p256-sig", CL_KEY_P256, ip->pub, ip->pub_len, false, 902,
                            -3600, YEAR, &cert_revoked2_i_len);
    cert_foreign_i = issue(foreign, "I-p256-sig", CL_KEY_P256, ip->pub, ip->pub_len, false, 903,
                           -3600, YEAR, &cert_foreign_i_len);
    cert_expired_r = issue(root, "R-ed25519", CL_KEY_ED25519, re->pub, re->pub_len, false, 904,
                           -2 * 86400, -86400, &cert_expired_r_len);
    testca_revoke(root, 901);
    testca_revoke(inter, 902);

    /* The trust store: the root, and a CRL from each CA (CRL checking needs one per issuer). */
    const uint8_t *root_der = testca_cert(root, &len);
    verifier = testca_verifier_new(root_der, len);
    assert_non_null(verifier);
    add_crl(root);
    add_crl(inter);

    /* Each role knows the other role's certificates, CCSs and keys (plus a few decoys). */
    for (int r = 0; r < N_ROLES; r++) {
        trust_t *t = &trust[r];
        int peer = 1 - r;
        memset(t, 0, sizeof *t);
        t->v = verifier;
        t->inters[0] = testca_cert(inter, &t->inter_len[0]);
        t->n_inters = 1;
        for (int k = 0; k < N_KINDS; k++) {
            const keyset_t *s = &ks[peer][k];
            trust_add_cert(t, s->cert, s->cert_len);
            t->ccs[k].kid = kids[peer][k];
            t->ccs[k].kid_len = kid_lens[peer][k];
            t->ccs[k].ccs = s->ccs;
            t->ccs[k].ccs_len = s->ccs_len;
            assert_int_equal(ccs_key(s->ccs, s->ccs_len, &t->pins[k]), CL_OK);
        }
        t->n_ccs = N_KINDS;
        t->n_pins = N_KINDS;
    }
    /* Known by hash but not valid: x5t must still validate what it finds. */
    trust_add_cert(&trust[R_R], cert_expired_i, cert_expired_i_len);
    trust_add_cert(&trust[R_R], cert_revoked_i, cert_revoked_i_len);
    trust_add_cert(&trust[R_R], cert_revoked2_i, cert_revoked2_i_len);
    trust_add_cert(&trust[R_R], cert_foreign_i, cert_foreign_i_len);
    trust_add_cert(&trust[R_I], cert_expired_r, cert_expired_r_len);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int r = 0; r < N_ROLES; r++) {
        for (int k = 0; k < N_KINDS; k++) {
            cl_key_destroy(&crypto, ks[r][k].priv);
            testca_free(ks[r][k].cert);
            testca_free(ks[r][k].cert2);
        }
    }
    testca_free(cert_expired_i);
    testca_free(cert_revoked_i);
    testca_free(cert_revoked2_i);
    testca_free(cert_foreign_i);
    testca_free(cert_expired_r);
    testca_verifier_free(verifier);
    testca_destroy(root);
    testca_destroy(inter);
    testca_destroy(foreign);
    cl_crypto_openssl_free(&crypto);
    return 0;
}

/* ---- a handshake between two parties ---- */

typedef struct pair {
    party_t pi, pr;
    cl_edhoc_t i, r;
    uint8_t m[4][MSG_MAX];
    size_t len[4];
} pair_t;

static pair_t P;        /* big: static */
static char combo[128]; /* the combination under test, for failure messages */

#define CHECK(call, want)                                                                          \
    do {                                                                                           \
        cl_status_t st_ = (call);                                                                  \
        if (st_ != (want))                                                                         \
            fail_msg("%s: %s returned %s (%d), expected %s", combo, #call, cl_status_str(st_),     \
                     (int)st_, cl_status_str(want));                                               \
    } while (0)

/* Overrides one of a party's credentials (ID_CRED and CRED). */
static void set_cred(party_t *p, int kind, const uint8_t *id_cred, size_t id_cred_len,
                     const uint8_t *cred, size_t cred_len)
{
    p->auth[kind].id_cred = id_cred;
    p->auth[kind].id_cred_len = id_cred_len;
    p->auth[kind].cred = cred;
    p->auth[kind].cred_len = cred_len;
}

static uint8_t idc_buf[ID_CRED_MAX], cred_buf[CRED_MAX];

/* Connection identifiers: one-byte ints, the empty bstr, bstrs up to 7 bytes. */
static const struct {
    uint8_t b[CL_EDHOC_MAX_CID];
    size_t n;
} cids[] = {
    {{0x2d}, 1}, /* C_I = -14, the matrix's */
    {{0x27}, 1}, /* C_R = -8, the matrix's */
    {{0}, 0},
    {{0x18}, 1}, /* a one-byte bstr that is not an int encoding */
    {{0x0a, 0x0b}, 2},
    {{0x37}, 1},
    {{1, 2, 3, 4, 5, 6}, 6},
    {{0xf0, 1, 2, 3, 4, 5, 6}, 7}, /* AES-CCM only: 7 bytes exceed the GCM OSCORE ID limit */
};
#define N_CIDS (sizeof cids / sizeof cids[0])

static void pair_init(int ct_i, int ct_r, const int *si, size_t nsi, const int *sr, size_t nsr,
                      size_t cid_i, size_t cid_r)
{
    party_init(&P.pi, R_I, ct_i, si, nsi);
    party_init(&P.pr, R_R, ct_r, sr, nsr);
    CHECK(cl_edhoc_init(&P.i, &P.pi.cfg, CL_EDHOC_INITIATOR, cids[cid_i].b, cids[cid_i].n), CL_OK);
    CHECK(cl_edhoc_init(&P.r, &P.pr.cfg, CL_EDHOC_RESPONDER, cids[cid_r].b, cids[cid_r].n), CL_OK);
    memset(P.len, 0, sizeof P.len);
}

static void pair_free(void)
{
    cl_edhoc_free(&P.i);
    cl_edhoc_free(&P.r);
    party_done(&P.pi);
    party_done(&P.pr);
}

/* message_1 .. process_message_2: returns the status of process_message_2. */
static cl_status_t pair_to_m2(int method, int suite)
{
    CHECK(cl_edhoc_message_1(&P.i, method, suite, NULL, 0, P.m[0], MSG_MAX, &P.len[0]), CL_OK);
    CHECK(cl_edhoc_process_message_1(&P.r, P.m[0], P.len[0]), CL_OK);
    CHECK(cl_edhoc_message_2(&P.r, NULL, 0, P.m[1], MSG_MAX, &P.len[1]), CL_OK);
    return cl_edhoc_process_message_2(&P.i, P.m[1], P.len[1]);
}

/* message_3 .. process_message_3: returns the status of process_message_3. */
static cl_status_t pair_m3(void)
{
    CHECK(cl_edhoc_message_3(&P.i, NULL, 0, P.m[2], MSG_MAX, &P.len[2]), CL_OK);
    return cl_edhoc_process_message_3(&P.r, P.m[2], P.len[2]);
}

/* One protected request client -> server and its protected response. */
static void oscore_exchange(cl_oscore_ctx_t *client, cl_oscore_ctx_t *server, uint8_t mid)
{
    const uint8_t req[] = {0x42, 0x01, 0x00, mid, 0xab, 0xcd, 0xb4, 'm', 'a', 't', 'x'};
    const uint8_t resp[] = {0x62, 0x45, 0x00, mid, 0xab, 0xcd, 0xff, 'o', 'k'};
    uint8_t prot[128], back[128];
    size_t prot_len, back_len;
    cl_oscore_req_t creq, sreq;
    cl_oscore_ctx_t *list[] = {server}, *found = NULL;
    cl_oscore_ctx_list_t l = {list, 1};

    CHECK(cl_oscore_protect_request(client, req, sizeof req, prot, sizeof prot, &prot_len, &creq),
          CL_OK);
    CHECK(cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, prot, prot_len, back, sizeof back,
                                      &back_len, &found, &sreq),
          CL_OK);
    assert_ptr_equal(found, server);
    tu_assert_bytes(back, back_len, req, sizeof req);
    CHECK(cl_oscore_protect_response(server, &sreq, NULL, resp, sizeof resp, prot, sizeof prot,
                                     &prot_len),
          CL_OK);
    CHECK(cl_oscore_unprotect_response(client, &creq, prot, prot_len, back, sizeof back, &back_len),
          CL_OK);
    tu_assert_bytes(back, back_len, resp, sizeof resp);
}

/* After a complete handshake: same PRK_out / exporter output, working OSCORE both ways. */
static void check_agreement(void)
{
    static const uint8_t ctx[] = "matrix";
    uint8_t ei[32], er[32], ms_i[16], salt_i[8], ms_r[16], salt_r[8];
    cl_oscore_params_t pi, pr;
    cl_oscore_ctx_t oi, or_;

    assert_memory_equal(P.i.prk_out, P.r.prk_out, sizeof P.i.prk_out);
    CHECK(cl_edhoc_exporter(&P.i, 40000, ctx, sizeof ctx - 1, ei, sizeof ei), CL_OK);
    CHECK(cl_edhoc_exporter(&P.r, 40000, ctx, sizeof ctx - 1, er, sizeof er), CL_OK);
    assert_memory_equal(ei, er, sizeof ei);

    CHECK(cl_edhoc_oscore_params(&P.i, ms_i, salt_i, &pi), CL_OK);
    CHECK(cl_edhoc_oscore_params(&P.r, ms_r, salt_r, &pr), CL_OK);
    tu_assert_bytes(ms_i, 16, ms_r, 16);
    tu_assert_bytes(salt_i, 8, salt_r, 8);
    tu_assert_bytes(pi.sender_id, pi.sender_id_len, pr.recipient_id, pr.recipient_id_len);
    tu_assert_bytes(pr.sender_id, pr.sender_id_len, pi.recipient_id, pi.recipient_id_len);
    memset(&oi, 0, sizeof oi);
    memset(&or_, 0, sizeof or_);
    CHECK(cl_oscore_ctx_init(&oi, &crypto, &pi), CL_OK);
    CHECK(cl_oscore_ctx_init(&or_, &crypto, &pr), CL_OK);
    oscore_exchange(&oi, &or_, 1); /* initiator as client */
    oscore_exchange(&or_, &oi, 2); /* responder as client */
    cl_oscore_ctx_free(&oi);
    cl_oscore_ctx_free(&or_);
}

/*
 * Message sizes with the matrix's one-byte C_I / C_R and no EAD: message_1
 * and message_4 depend on (suite, method), message_2 also on the responder's
 * credential, message_3 on the initiator's. Each is recorded from the side
 * that writes it and must be the same in every combination.
 */
static size_t sz_m1[N_SUITES][4], sz_m2[N_SUITES][4][N_CREDS], sz_m3[N_SUITES][4][N_CREDS],
    sz_m4[N_SUITES][4];

static void record(size_t *slot, size_t len)
{
    if (len == 0)
        return; /* not written in this run */
    if (*slot != 0 && *slot != len)
        fail_msg("%s: message size %zu differs from %zu in another combination", combo, len, *slot);
    *slot = len;
}

/*
 * A full handshake between our initiator (credential type ct_i) and responder
 * (ct_r), then the agreement checks. Sending steps must succeed; the status
 * of the first receiving step that fails is returned (CL_OK: all done).
 */
static cl_status_t run_combo(size_t s, int method, int ct_i, int ct_r, size_t cid_i, size_t cid_r)
{
    int suite = all_suites[s], si[1] = {suite};
    int kind_i = kind_for(suite, (method & 2) != 0), kind_r = kind_for(suite, (method & 1) != 0);
    const cred_t *cred_i = &ks[R_I][kind_i].c[ct_i], *cred_r = &ks[R_R][kind_r].c[ct_r];
    bool sizes = cid_i == 0 && cid_r == 1;
    cl_status_t st;

    snprintf(combo, sizeof combo, "suite %d method %d I:%s/%s R:%s/%s C_I #%zu C_R #%zu", suite,
             method, cred_name[ct_i], kind_name[kind_i], cred_name[ct_r], kind_name[kind_r], cid_i,
             cid_r);
    pair_init(ct_i, ct_r, si, 1, all_suites, N_SUITES, cid_i, cid_r);
    st = pair_to_m2(method, suite);
    if (sizes) {
        record(&sz_m1[s][method], P.len[0]);
        record(&sz_m2[s][method][ct_r], P.len[1]);
    }
    if (st != CL_OK)
        goto done;
    /* The initiator's callback saw (in map form) exactly the ID_CRED_R that was sent. */
    assert_int_equal(P.pi.calls, 1);
    tu_assert_bytes(P.pi.seen, P.pi.seen_len, cred_r->id_cred, cred_r->id_cred_len);
    assert_ptr_equal(P.r.own, &P.pr.auth[kind_r]);
    st = pair_m3();
    if (sizes)
        record(&sz_m3[s][method][ct_i], P.len[2]);
    if (st != CL_OK)
        goto done;
    assert_int_equal(P.pr.calls, 1);
    tu_assert_bytes(P.pr.seen, P.pr.seen_len, cred_i->id_cred, cred_i->id_cred_len);
    assert_ptr_equal(P.i.own, &P.pi.auth[kind_i]);
    CHECK(cl_edhoc_message_4(&P.r, NULL, 0, P.m[3], MSG_MAX, &P.len[3]), CL_OK);
    if (sizes)
        record(&sz_m4[s][method], P.len[3]);
    CHECK(cl_edhoc_process_message_4(&P.i, P.m[3], P.len[3]), CL_OK);
    check_agreement();
done:
    pair_free();
    return st;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t matrix_runs, cid_runs;
static double matrix_secs, cid_secs;

/* Runs every combination in which (x5chain[2] is used) == chain2; returns how many were refused
 * with CL_ERR_LIMIT. */
static size_t run_matrix(bool chain2, bool tolerate_limit)
{
    size_t limited = 0;
    double t0 = now();
    for (size_t s = 0; s < N_SUITES; s++) {
        for (int method = 0; method < 4; method++) {
            for (int ct_i = 0; ct_i < N_CREDS; ct_i++) {
                for (int ct_r = 0; ct_r < N_CREDS; ct_r++) {
                    if ((ct_i == C_X5CHAIN2 || ct_r == C_X5CHAIN2) != chain2)
                        continue;
                    cl_status_t st = run_combo(s, method, ct_i, ct_r, 0, 1);
                    matrix_runs++;
                    if (st == CL_ERR_LIMIT && tolerate_limit) {
                        limited++;
                        continue;
                    }
                    if (st != CL_OK)
                        fail_msg("%s: handshake failed: %s", combo, cl_status_str(st));
                }
            }
        }
    }
    matrix_secs += now() - t0;
    return limited;
}

/* The 320 combinations without x5chain [leaf, intermediate]. */
static void test_matrix(void **state)
{
    (void)state;
    assert_int_equal(run_matrix(false, false), 0);
}

/*
 * x5chain [leaf, intermediate] on either side (ID_CRED of 610..659 bytes,
 * within CL_EDHOC_MAX_CRED), plus the chain-based negatives (revocation by
 * the intermediate's CRL, a foreign root in the chain).
 */
static void test_matrix_x5chain2(void **state)
{
    (void)state;
    static const int s2[] = {2};
    size_t int_len, fl, idl, cl;
    const uint8_t *int_der = testca_cert(inter, &int_len), *fder = testca_cert(foreign, &fl);
    cl_status_t st;
    size_t limited = run_matrix(true, true);

    /* Revoked by the intermediate, presented as [leaf, intermediate]. */
    snprintf(combo, sizeof combo, "revoked initiator certificate in x5chain [leaf, int]");
    pair_init(C_X5CHAIN2, C_X5CHAIN, s2, 1, s2, 1, 0, 1);
    idl = enc_x5chain(idc_buf, sizeof idc_buf, cert_revoked2_i, cert_revoked2_i_len, int_der,
                      int_len);
    cl = enc_bstr(cred_buf, sizeof cred_buf, cert_revoked2_i, cert_revoked2_i_len);
    set_cred(&P.pi, K_P256_SIG, idc_buf, idl, cred_buf, cl);
    CHECK(pair_to_m2(0, 2), CL_OK);
    st = pair_m3();
    assert_int_equal(st, CL_ERR_AUTH);
    assert_int_equal(P.pr.x509_err, testca_err_revoked());
    pair_free();

    /* A foreign leaf with the foreign root as "intermediate". */
    snprintf(combo, sizeof combo, "foreign leaf + foreign root in x5chain");
    pair_init(C_X5CHAIN2, C_X5CHAIN, s2, 1, s2, 1, 0, 1);
    idl = enc_x5chain(idc_buf, sizeof idc_buf, cert_foreign_i, cert_foreign_i_len, fder, fl);
    cl = enc_bstr(cred_buf, sizeof cred_buf, cert_foreign_i, cert_foreign_i_len);
    set_cred(&P.pi, K_P256_SIG, idc_buf, idl, cred_buf, cl);
    CHECK(pair_to_m2(0, 2), CL_OK);
    st = pair_m3();
    assert_int_equal(st, CL_ERR_AUTH);
    assert_int_not_equal(P.pr.x509_err, 0);
    pair_free();
    assert_int_equal(limited, 0); /* every two-certificate chain was accepted */
}

/* ---- negatives ---- */

/*
 * The error message `s` sends after a failure `why`: checks ERR_CODE (and
 * ERR_INFO for codes 1 and 3), then delivers it to the other side `to`,
 * which must report CL_ERR_PEER_ERROR with that code.
 */
static void error_round_trip(const cl_edhoc_t *s, cl_status_t why, int64_t want, cl_edhoc_t *to,
                             int to_step)
{
    uint8_t err[64];
    size_t n;
    int64_t code;
    cl_cbor_dec_t d;
    CHECK(cl_edhoc_error_message(s, why, err, sizeof err, &n), CL_OK);
    assert_true(cl_edhoc_is_error(err, n));
    cl_cbor_dec_init(&d, err, n);
    assert_int_equal(cl_cbor_dec_int(&d, &code), CL_OK);
    assert_int_equal(code, want);
    if (want == CL_EDHOC_ERR_UNSPECIFIED) {
        const char *diag_msg;
        size_t dl;
        assert_int_equal(cl_cbor_dec_tstr(&d, &diag_msg, &dl), CL_OK);
        assert_int_equal(dl, strlen(cl_status_str(why)));
        assert_memory_equal(diag_msg, cl_status_str(why), dl);
    } else if (want == CL_EDHOC_ERR_UNKNOWN_CRED) {
        bool t;
        assert_int_equal(cl_cbor_dec_bool(&d, &t), CL_OK);
        assert_true(t);
    }
    if (want != CL_EDHOC_ERR_WRONG_SUITE)
        assert_true(cl_cbor_dec_at_end(&d));
    if (to == NULL)
        return;
    /* The peer receives it where it expects the next message. */
    cl_status_t st = to_step == 2   ? cl_edhoc_process_message_2(to, err, n)
                     : to_step == 3 ? cl_edhoc_process_message_3(to, err, n)
                                    : cl_edhoc_process_message_4(to, err, n);
    assert_int_equal(st, CL_ERR_PEER_ERROR);
    assert_int_equal(to->peer_err, want);
}

/* The initiator (p256-sig key, method 0, suite 2) presents `der` as a single x5chain or by x5t. */
static cl_status_t initiator_presents(const uint8_t *der, size_t der_len, bool by_x5t)
{
    static const int s2[] = {2};
    pair_init(C_X5CHAIN, C_X5CHAIN, s2, 1, s2, 1, 0, 1);
    size_t idl = by_x5t ? enc_x5t(idc_buf, sizeof idc_buf, der, der_len, -15)
                        : enc_x5chain(idc_buf, sizeof idc_buf, der, der_len, NULL, 0);
    size_t cl = enc_bstr(cred_buf, sizeof cred_buf, der, der_len);
    set_cred(&P.pi, K_P256_SIG, idc_buf, idl, cred_buf, cl);
    CHECK(pair_to_m2(0, 2), CL_OK);
    return pair_m3();
}

static void test_expired_certificate(void **state)
{
    (void)state;
    snprintf(combo, sizeof combo, "expired initiator certificate (x5chain)");
    CHECK(initiator_presents(cert_expired_i, cert_expired_i_len, false), CL_ERR_AUTH);
    assert_int_equal(P.pr.x509_err, testca_err_expired());
    printf("  expired (x5chain): %s\n", testca_error_string(P.pr.x509_err));
    error_round_trip(&P.r, CL_ERR_AUTH, CL_EDHOC_ERR_UNSPECIFIED, &P.i, 4);
    pair_free();

    snprintf(combo, sizeof combo, "expired initiator certificate (x5t, known)");
    CHECK(initiator_presents(cert_expired_i, cert_expired_i_len, true), CL_ERR_AUTH);
    assert_int_equal(P.pr.x509_err, testca_err_expired());
    pair_free();

    /* The responder's certificate expired (suite 0, Ed25519, x5t): message_2 is refused. */
    static const int s0[] = {0};
    snprintf(combo, sizeof combo, "expired responder certificate (x5t)");
    pair_init(C_X5T, C_X5T, s0, 1, s0, 1, 0, 1);
    size_t idl = enc_x5t(idc_buf, sizeof idc_buf, cert_expired_r, cert_expired_r_len, -15);
    size_t cl = enc_bstr(cred_buf, sizeof cred_buf, cert_expired_r, cert_expired_r_len);
    set_cred(&P.pr, K_ED25519, idc_buf, idl, cred_buf, cl);
    CHECK(pair_to_m2(0, 0), CL_ERR_AUTH);
    assert_int_equal(P.pi.x509_err, testca_err_expired());
    error_round_trip(&P.i, CL_ERR_AUTH, CL_EDHOC_ERR_UNSPECIFIED, &P.r, 3);
    pair_free();
}

static void test_revoked_certificate(void **state)
{
    (void)state;
    snprintf(combo, sizeof combo, "revoked initiator certificate (root CRL)");
    CHECK(initiator_presents(cert_revoked_i, cert_revoked_i_len, false), CL_ERR_AUTH);
    assert_int_equal(P.pr.x509_err, testca_err_revoked());
    printf("  revoked (x5chain): %s\n", testca_error_string(P.pr.x509_err));
    error_round_trip(&P.r, CL_ERR_AUTH, CL_EDHOC_ERR_UNSPECIFIED, &P.i, 4);
    pair_free();

    snprintf(combo, sizeof combo, "revoked initiator certificate (x5t)");
    CHECK(initiator_presents(cert_revoked_i, cert_revoked_i_len, true), CL_ERR_AUTH);
    assert_int_equal(P.pr.x509_err, testca_err_revoked());
    pair_free();

    /*
     * Revoked by the intermediate (its CRL), referenced by x5t: the responder
     * knows the certificate and the intermediate and builds the chain itself.
     * (The same in x5chain [leaf, intermediate] form is in test_matrix_x5chain2.)
     */
    snprintf(combo, sizeof combo, "revoked initiator certificate (intermediate CRL, x5t)");
    CHECK(initiator_presents(cert_revoked2_i, cert_revoked2_i_len, true), CL_ERR_AUTH);
    assert_int_equal(P.pr.x509_err, testca_err_revoked());
    pair_free();
}

static void test_foreign_ca(void **state)
{
    (void)state;
    snprintf(combo, sizeof combo, "certificate from another CA (x5chain)");
    CHECK(initiator_presents(cert_foreign_i, cert_foreign_i_len, false), CL_ERR_AUTH);
    assert_int_equal(P.pr.x509_err, testca_err_untrusted());
    printf("  foreign CA (x5chain): %s\n", testca_error_string(P.pr.x509_err));
    error_round_trip(&P.r, CL_ERR_AUTH, CL_EDHOC_ERR_UNSPECIFIED, &P.i, 4);
    pair_free();

    /* Known by hash is not enough: the certificate must still chain to our root. */
    snprintf(combo, sizeof combo, "certificate from another CA (x5t, known)");
    CHECK(initiator_presents(cert_foreign_i, cert_foreign_i_len, true), CL_ERR_AUTH);
    assert_int_equal(P.pr.x509_err, testca_err_untrusted());
    pair_free();
    /* A foreign root presented in x5chain [leaf, root]: see test_matrix_x5chain2. */
}

static void test_unknown_credentials(void **state)
{
    (void)state;
    static const int s2[] = {2};
    static const uint8_t unknown_kid[] = {0x7f};

    /* kid nobody knows: CL_ERR_NOT_FOUND and error 3 (true), back to the initiator. */
    snprintf(combo, sizeof combo, "unknown kid");
    pair_init(C_KID, C_KID, s2, 1, s2, 1, 0, 1);
    size_t idl = enc_kid(idc_buf, sizeof idc_buf, unknown_kid, sizeof unknown_kid);
    set_cred(&P.pi, K_P256_SIG, idc_buf, idl, ks[R_I][K_P256_SIG].ccs, ks[R_I][K_P256_SIG].ccs_len);
    CHECK(pair_to_m2(0, 2), CL_OK);
    CHECK(pair_m3(), CL_ERR_NOT_FOUND);
    error_round_trip(&P.r, CL_ERR_NOT_FOUND, CL_EDHOC_ERR_UNKNOWN_CRED, &P.i, 4);
    pair_free();

    /* Responder's kid unknown to the initiator: refused at message_2, error 3 to the responder. */
    snprintf(combo, sizeof combo, "unknown responder kid");
    pair_init(C_KID, C_KID, s2, 1, s2, 1, 0, 1);
    idl = enc_kid(idc_buf, sizeof idc_buf, unknown_kid, sizeof unknown_kid);
    set_cred(&P.pr, K_P256_SIG, idc_buf, idl, ks[R_R][K_P256_SIG].ccs, ks[R_R][K_P256_SIG].ccs_len);
    CHECK(pair_to_m2(0, 2), CL_ERR_NOT_FOUND);
    error_round_trip(&P.i, CL_ERR_NOT_FOUND, CL_EDHOC_ERR_UNKNOWN_CRED, &P.r, 3);
    pair_free();

    /* x5t of a valid certificate the responder does not have (issued by the intermediate). */
    snprintf(combo, sizeof combo, "unknown x5t");
    pair_init(C_X5T, C_X5T, s2, 1, s2, 1, 0, 1);
    const keyset_t *k = &ks[R_I][K_P256_SIG];
    idl = enc_x5t(idc_buf, sizeof idc_buf, k->cert2, k->cert2_len, -15);
    size_t cl = enc_bstr(cred_buf, sizeof cred_buf, k->cert2, k->cert2_len);
    set_cred(&P.pi, K_P256_SIG, idc_buf, idl, cred_buf, cl);
    CHECK(pair_to_m2(0, 2), CL_OK);
    CHECK(pair_m3(), CL_ERR_NOT_FOUND);
    error_round_trip(&P.r, CL_ERR_NOT_FOUND, CL_EDHOC_ERR_UNKNOWN_CRED, &P.i, 4);
    pair_free();

    /* The same certificate by full SHA-256 x5t once the responder knows it: accepted. */
    snprintf(combo, sizeof combo, "x5t SHA-256 (alg -16)");
    trust_t saved = trust[R_R];
    trust_add_cert(&trust[R_R], k->cert2, k->cert2_len);
    pair_init(C_X5T, C_X5T, s2, 1, s2, 1, 0, 1);
    idl = enc_x5t(idc_buf, sizeof idc_buf, k->cert2, k->cert2_len, -16);
    set_cred(&P.pi, K_P256_SIG, idc_buf, idl, cred_buf, cl);
    CHECK(pair_to_m2(0, 2), CL_OK);
    CHECK(pair_m3(), CL_OK);
    pair_free();
    trust[R_R] = saved;

    /* kccs with a well-formed CCS whose key is not pinned: CL_ERR_AUTH (error 1). */
    snprintf(combo, sizeof combo, "unpinned kccs");
    static uint8_t ccs[CCS_MAX];
    const keyset_t *other = &ks[R_R][K_P256_SIG]; /* a key the responder does not accept from I */
    size_t ccs_len = make_ccs(ccs, sizeof ccs, "I-p256-sig", CL_KEY_P256, other->pub,
                              other->pub_len, kids[R_I][K_P256_SIG], 1);
    pair_init(C_KCCS, C_KCCS, s2, 1, s2, 1, 0, 1);
    idl = enc_kccs(idc_buf, sizeof idc_buf, ccs, ccs_len);
    set_cred(&P.pi, K_P256_SIG, idc_buf, idl, ccs, ccs_len);
    P.pi.auth[K_P256_SIG].key = other->priv; /* even with the matching private key */
    CHECK(pair_to_m2(0, 2), CL_OK);
    CHECK(pair_m3(), CL_ERR_AUTH);
    error_round_trip(&P.r, CL_ERR_AUTH, CL_EDHOC_ERR_UNSPECIFIED, &P.i, 4);
    pair_free();
}

static void test_wrong_key(void **state)
{
    (void)state;
    static const int s0[] = {0}, s2[] = {2};

    /* Initiator signs with a P-256 key other than its certificate's (x5chain). */
    snprintf(combo, sizeof combo, "initiator signature with another key");
    pair_init(C_X5CHAIN, C_X5CHAIN, s2, 1, s2, 1, 0, 1);
    P.pi.auth[K_P256_SIG].key = ks[R_R][K_P256_SIG].priv;
    CHECK(pair_to_m2(0, 2), CL_OK);
    CHECK(pair_m3(), CL_ERR_AUTH);
    assert_int_equal(P.pr.status, CL_OK); /* the credential itself was fine */
    error_round_trip(&P.r, CL_ERR_AUTH, CL_EDHOC_ERR_UNSPECIFIED, &P.i, 4);
    pair_free();

    /* Responder signs with an Ed25519 key other than its CCS's (kid). */
    snprintf(combo, sizeof combo, "responder signature with another key");
    pair_init(C_KID, C_KID, s0, 1, s0, 1, 0, 1);
    P.pr.auth[K_ED25519].key = ks[R_I][K_ED25519].priv;
    CHECK(pair_to_m2(0, 0), CL_ERR_AUTH);
    error_round_trip(&P.i, CL_ERR_AUTH, CL_EDHOC_ERR_UNSPECIFIED, &P.r, 3);
    pair_free();

    /* Static DH: MAC_2 / MAC_3 made with a key other than the credential's. */
    snprintf(combo, sizeof combo, "responder static DH with another key");
    pair_init(C_X5T, C_X5T, s2, 1, s2, 1, 0, 1);
    P.pr.auth[K_P256_DH].key = ks[R_I][K_P256_DH].priv;
    CHECK(pair_to_m2(1, 2), CL_ERR_AUTH);
    pair_free();
    snprintf(combo, sizeof combo, "initiator static DH with another key");
    pair_init(C_KCCS, C_KCCS, s0, 1, s0, 1, 0, 1);
    P.pi.auth[K_X25519].key = ks[R_R][K_X25519].priv;
    CHECK(pair_to_m2(2, 0), CL_OK);
    CHECK(pair_m3(), CL_ERR_AUTH);
    pair_free();
}

static void test_suite_mismatch(void **state)
{
    (void)state;
    static const int si[] = {2}, sr[] = {0};
    uint8_t err[32];
    size_t n;

    snprintf(combo, sizeof combo, "suites I [2] vs R [0]");
    pair_init(C_KID, C_KID, si, 1, sr, 1, 0, 1);
    CHECK(cl_edhoc_message_1(&P.i, 0, -1, NULL, 0, P.m[0], MSG_MAX, &P.len[0]), CL_OK);
    CHECK(cl_edhoc_process_message_1(&P.r, P.m[0], P.len[0]), CL_ERR_UNSUPPORTED);
    CHECK(cl_edhoc_error_message(&P.r, CL_ERR_UNSUPPORTED, err, sizeof err, &n), CL_OK);
    const uint8_t want[] = {0x02, 0x00}; /* ERR_CODE 2, SUITES_R 0 */
    tu_assert_bytes(err, n, want, sizeof want);
    CHECK(cl_edhoc_process_message_2(&P.i, err, n), CL_ERR_PEER_ERROR);
    assert_int_equal(P.i.peer_err, CL_EDHOC_ERR_WRONG_SUITE);
    assert_int_equal(P.i.n_suites_peer, 1);
    assert_int_equal(P.i.suites_peer[0], 0);
    /* Retry with the responder's suites (cl_edhoc_restart keeps SUITES_R): none in common. */
    CHECK(cl_edhoc_restart(&P.i), CL_OK);
    CHECK(cl_edhoc_message_1(&P.i, 0, -1, NULL, 0, P.m[0], MSG_MAX, &P.len[0]), CL_ERR_UNSUPPORTED);
    pair_free();
}

static void test_suite_negotiation(void **state)
{
    (void)state;
    static const int si[] = {6, 0, 2}, sr[] = {2, 0};
    uint8_t err[32];
    size_t n, sizes[4];

    snprintf(combo, sizeof combo, "suites I [6, 0, 2] vs R [2, 0]");
    pair_init(C_X5T, C_KCCS, si, 3, sr, 2, 0, 1);
    /* First attempt: the most preferred suite 6, which the responder does not support. */
    CHECK(cl_edhoc_message_1(&P.i, 3, -1, NULL, 0, P.m[0], MSG_MAX, &P.len[0]), CL_OK);
    assert_int_equal(P.m[0][1], 0x06); /* SUITES_I = 6 */
    CHECK(cl_edhoc_process_message_1(&P.r, P.m[0], P.len[0]), CL_ERR_UNSUPPORTED);
    CHECK(cl_edhoc_error_message(&P.r, CL_ERR_UNSUPPORTED, err, sizeof err, &n), CL_OK);
    const uint8_t want[] = {0x02, 0x82, 0x02, 0x00}; /* ERR_CODE 2, SUITES_R [2, 0] */
    tu_assert_bytes(err, n, want, sizeof want);
    CHECK(cl_edhoc_process_message_2(&P.i, err, n), CL_ERR_PEER_ERROR);
    assert_int_equal(P.i.peer_err, CL_EDHOC_ERR_WRONG_SUITE);

    /* Second attempt: suite 0 (the initiator's preference among SUITES_R), SUITES_I [6, 0]. */
    cl_edhoc_free(&P.r);
    CHECK(cl_edhoc_restart(&P.i), CL_OK);
    CHECK(cl_edhoc_init(&P.r, &P.pr.cfg, CL_EDHOC_RESPONDER, cids[1].b, cids[1].n), CL_OK);
    CHECK(cl_edhoc_message_1(&P.i, 3, -1, NULL, 0, P.m[0], MSG_MAX, &P.len[0]), CL_OK);
    const uint8_t head[] = {0x03, 0x82, 0x06, 0x00}; /* METHOD 3, SUITES_I [6, 0] */
    tu_assert_bytes(P.m[0], sizeof head, head, sizeof head);
    assert_int_equal(P.i.suite, 0);
    CHECK(cl_edhoc_process_message_1(&P.r, P.m[0], P.len[0]), CL_OK);
    CHECK(cl_edhoc_message_2(&P.r, NULL, 0, P.m[1], MSG_MAX, &P.len[1]), CL_OK);
    CHECK(cl_edhoc_process_message_2(&P.i, P.m[1], P.len[1]), CL_OK);
    CHECK(pair_m3(), CL_OK);
    CHECK(cl_edhoc_message_4(&P.r, NULL, 0, P.m[3], MSG_MAX, &P.len[3]), CL_OK);
    CHECK(cl_edhoc_process_message_4(&P.i, P.m[3], P.len[3]), CL_OK);
    assert_int_equal(P.r.suite, 0);
    check_agreement();
    memcpy(sizes, P.len, sizeof sizes);
    printf("  negotiated suite 0 after error 2: message_1 %zu bytes (SUITES_I [6, 0])\n", sizes[0]);
    pair_free();
}

static void test_method_without_credential(void **state)
{
    (void)state;
    static const int s2[] = {2};

    /*
     * The responder has signature credentials only; method 1 needs its static
     * DH key: CL_ERR_UNSUPPORTED, and the error is ERR_CODE 1 (not 2: the
     * suite was fine), which the initiator receives in place of message_2.
     */
    snprintf(combo, sizeof combo, "method 1 at a signature-only responder");
    pair_init(C_X5T, C_X5T, s2, 1, s2, 1, 0, 1);
    P.pr.cfg.n_auth = 2; /* ed25519 + p256-sig */
    CHECK(cl_edhoc_message_1(&P.i, 1, 2, NULL, 0, P.m[0], MSG_MAX, &P.len[0]), CL_OK);
    CHECK(cl_edhoc_process_message_1(&P.r, P.m[0], P.len[0]), CL_ERR_UNSUPPORTED);
    error_round_trip(&P.r, CL_ERR_UNSUPPORTED, CL_EDHOC_ERR_UNSPECIFIED, &P.i, 2);
    assert_int_equal(P.i.n_suites_peer, 0);
    pair_free();

    /* The same responder still serves method 0. */
    snprintf(combo, sizeof combo, "method 0 at a signature-only responder");
    pair_init(C_X5T, C_X5T, s2, 1, s2, 1, 0, 1);
    P.pr.cfg.n_auth = 2;
    CHECK(pair_to_m2(0, 2), CL_OK);
    CHECK(pair_m3(), CL_OK);
    pair_free();

    /* The initiator cannot start a method it has no credential for. */
    snprintf(combo, sizeof combo, "method 2 at a signature-only initiator");
    pair_init(C_X5T, C_X5T, s2, 1, s2, 1, 0, 1);
    P.pi.cfg.n_auth = 2;
    CHECK(cl_edhoc_message_1(&P.i, 2, 2, NULL, 0, P.m[0], MSG_MAX, &P.len[0]),
          CL_ERR_UNSUPPORTED);
    pair_free();
}

/* An X25519 key whose 32 bytes are (want_on_curve) / are not a valid P-256 x-coordinate. */
static void x25519_key_for_p256_test(bool want_on_curve, cl_key_t *priv, uint8_t pub[32])
{
    for (int tries = 0; tries < 200; tries++) {
        size_t n;
        cl_key_t probe;
        assert_int_equal(crypto.ops->key_generate(crypto.self, CL_KEY_X25519, CL_KEY_USAGE_ECDH,
                                                  priv, pub, 32, &n),
                         CL_OK);
        bool on = crypto.ops->key_import_public(crypto.self, CL_KEY_P256, pub, 32, &probe) == CL_OK;
        if (on)
            cl_key_destroy(&crypto, probe);
        if (on == want_on_curve)
            return;
        cl_key_destroy(&crypto, *priv);
    }
    fail_msg("no suitable X25519 key found");
}

static void test_static_dh_wrong_curve(void **state)
{
    (void)state;
    static const int s0[] = {0}, s2[] = {2};
    size_t idl;

    /*
     * Suite 0 (X25519), method 1: the responder's certificate (valid, from our
     * CA) carries a P-256 key-agreement key. The initiator's ECDH refuses the
     * 65-byte point: CL_ERR_BAD_INPUT.
     */
    snprintf(combo, sizeof combo, "suite 0, responder certificate with a P-256 DH key");
    pair_init(C_X5CHAIN, C_X5CHAIN, s0, 1, s0, 1, 0, 1);
    const keyset_t *rp = &ks[R_R][K_P256_DH];
    set_cred(&P.pr, K_X25519, rp->c[C_X5CHAIN].id_cred, rp->c[C_X5CHAIN].id_cred_len,
             rp->c[C_X5CHAIN].cred, rp->c[C_X5CHAIN].cred_len);
    CHECK(pair_to_m2(1, 0), CL_ERR_BAD_INPUT);
    assert_int_equal(P.pi.status, CL_OK); /* the callback accepted the (valid) certificate */
    error_round_trip(&P.i, CL_ERR_BAD_INPUT, CL_EDHOC_ERR_UNSPECIFIED, &P.r, 3);
    pair_free();

    /*
     * Suite 2 (P-256), method 3: the initiator's pinned CCS carries an X25519
     * key. cl_edhoc_peer_t has no key type and the provider takes 32 bytes as
     * a compact P-256 x-coordinate, so the outcome depends on the bytes:
     * not a P-256 x -> CL_ERR_BAD_INPUT; a valid x -> the ECDH runs on the
     * wrong curve and only the MAC check catches it (CL_ERR_AUTH).
     */
    for (int on_curve = 0; on_curve <= 1; on_curve++) {
        static uint8_t ccs[CCS_MAX];
        uint8_t xpub[32];
        cl_key_t xpriv;
        x25519_key_for_p256_test(on_curve != 0, &xpriv, xpub);
        snprintf(combo, sizeof combo, "suite 2, initiator CCS with an X25519 key (%s)",
                 on_curve ? "bytes are a P-256 x" : "bytes not a P-256 x");
        size_t ccs_len =
            make_ccs(ccs, sizeof ccs, "I-x25519", CL_KEY_X25519, xpub, 32, kids[R_I][K_X25519], 1);
        trust_t saved = trust[R_R];
        assert_int_equal(ccs_key(ccs, ccs_len, &trust[R_R].pins[trust[R_R].n_pins++]), CL_OK);
        pair_init(C_KCCS, C_KCCS, s2, 1, s2, 1, 0, 1);
        idl = enc_kccs(idc_buf, sizeof idc_buf, ccs, ccs_len);
        set_cred(&P.pi, K_P256_DH, idc_buf, idl, ccs, ccs_len);
        CHECK(pair_to_m2(3, 2), CL_OK);
        CHECK(pair_m3(), on_curve ? CL_ERR_AUTH : CL_ERR_BAD_INPUT);
        assert_int_equal(P.pr.status, CL_OK);
        pair_free();
        trust[R_R] = saved;
        cl_key_destroy(&crypto, xpriv);
    }

    /* Our own static DH key on the wrong curve: a responder with only X25519 DH, suite 2. */
    snprintf(combo, sizeof combo, "suite 2, responder with only an X25519 DH key");
    pair_init(C_X5T, C_X5T, s2, 1, s2, 1, 0, 1);
    P.pr.cfg.n_auth = 3; /* ed25519, p256-sig, x25519 */
    CHECK(cl_edhoc_message_1(&P.i, 1, 2, NULL, 0, P.m[0], MSG_MAX, &P.len[0]), CL_OK);
    CHECK(cl_edhoc_process_message_1(&P.r, P.m[0], P.len[0]), CL_ERR_UNSUPPORTED);
    pair_free();
}

/* ---- connection identifiers ---- */

static void test_cid_variants(void **state)
{
    (void)state;
    static const int cts[] = {C_X5T, C_X5CHAIN, C_KID, C_KCCS};
    size_t n = 0, idx = 0;
    double t0 = now();

    /* Every ordered pair of distinct identifiers, in every suite, rotating method and credentials.
     */
    for (size_t s = 0; s < N_SUITES; s++) {
        for (size_t ci = 0; ci < N_CIDS; ci++) {
            for (size_t cr = 0; cr < N_CIDS; cr++) {
                if (ci == cr)
                    continue;
                idx++;
                /* OSCORE IDs are at most nonce length - 6 bytes: 6 with A128GCM (suite 6). */
                if (all_suites[s] == 6 && (cids[ci].n == 7 || cids[cr].n == 7))
                    continue;
                cl_status_t st =
                    run_combo(s, (int)(idx % 4), cts[idx % 4], cts[(idx / 4) % 4], ci, cr);
                if (st != CL_OK)
                    fail_msg("%s: handshake failed: %s", combo, cl_status_str(st));
                n++;
            }
        }
    }
    cid_runs = n;
    cid_secs = now() - t0;

    /* Suite 6 with a 7-byte C_R: EDHOC completes, but OSCORE (A128GCM) cannot use the ID. */
    static const int s6[] = {6};
    uint8_t ms[16], salt[8];
    cl_oscore_params_t op;
    cl_oscore_ctx_t oc;
    snprintf(combo, sizeof combo, "suite 6 with a 7-byte C_R");
    pair_init(C_KID, C_KID, s6, 1, s6, 1, 0, N_CIDS - 1);
    CHECK(pair_to_m2(0, 6), CL_OK);
    CHECK(pair_m3(), CL_OK);
    CHECK(cl_edhoc_oscore_params(&P.i, ms, salt, &op), CL_OK);
    assert_int_equal(op.sender_id_len, 7);
    memset(&oc, 0, sizeof oc);
    cl_status_t st = cl_oscore_ctx_init(&oc, &crypto, &op);
    assert_int_not_equal(st, CL_OK);
    printf("  suite 6, 7-byte C_R: cl_oscore_ctx_init -> %s\n", cl_status_str(st));
    cl_oscore_ctx_free(&oc);
    pair_free();

    /* C_R = C_I is refused when writing message_2; cl_edhoc_set_cid picks another C_R. */
    snprintf(combo, sizeof combo, "C_R = C_I");
    static const int s0[] = {0};
    pair_init(C_KID, C_KID, s0, 1, s0, 1, 3, 3);
    CHECK(cl_edhoc_message_1(&P.i, 0, 0, NULL, 0, P.m[0], MSG_MAX, &P.len[0]), CL_OK);
    CHECK(cl_edhoc_process_message_1(&P.r, P.m[0], P.len[0]), CL_OK);
    CHECK(cl_edhoc_message_2(&P.r, NULL, 0, P.m[1], MSG_MAX, &P.len[1]), CL_ERR_INVALID_ARG);
    CHECK(cl_edhoc_set_cid(&P.r, cids[4].b, cids[4].n), CL_OK);
    CHECK(cl_edhoc_message_2(&P.r, NULL, 0, P.m[1], MSG_MAX, &P.len[1]), CL_OK);
    CHECK(cl_edhoc_process_message_2(&P.i, P.m[1], P.len[1]), CL_OK);
    CHECK(pair_m3(), CL_OK);
    check_agreement();
    pair_free();
    printf("  connection identifiers: %zu handshakes over %zu ordered pairs x %zu suites\n", n,
           N_CIDS * (N_CIDS - 1), N_SUITES);
}

/* ---- kid encodings ---- */

/*
 * kid values at the edges of the compact encoding (3.3.2 / 3.5.3.2): the
 * int-encoding bytes 0x17 and 0x37 travel as ints, 0x18 and 0x40 as a
 * one-byte bstr, then the empty kid and a 4-byte kid. Each is used once by
 * the initiator (method 0, suite 2, P-256 signature) and once by the
 * responder (method 3, suite 0, X25519 static DH).
 */
static void test_kid_encodings(void **state)
{
    (void)state;
    static const struct {
        uint8_t b[4];
        size_t n;
    } kv[] = {{{0x17}, 1}, {{0x37}, 1}, {{0x18}, 1}, {{0x40}, 1}, {{0}, 0}, {{1, 2, 3, 4}, 4}};
    static const int s0[] = {0}, s2[] = {2};
    static uint8_t ccs[CCS_MAX];
    for (size_t v = 0; v < sizeof kv / sizeof kv[0]; v++) {
        for (int role = 0; role < N_ROLES; role++) {
            int kind = role == R_I ? K_P256_SIG : K_X25519;
            const keyset_t *k = &ks[role][kind];
            trust_t *t = &trust[1 - role], saved = *t;
            size_t ccs_len = make_ccs(ccs, sizeof ccs, "kid-test", kind_type[kind], k->pub,
                                      k->pub_len, kv[v].b, kv[v].n);
            size_t idl = enc_kid(idc_buf, sizeof idc_buf, kv[v].b, kv[v].n);
            assert_true(t->n_ccs < sizeof t->ccs / sizeof t->ccs[0]);
            t->ccs[t->n_ccs].kid = kv[v].b;
            t->ccs[t->n_ccs].kid_len = kv[v].n;
            t->ccs[t->n_ccs].ccs = ccs;
            t->ccs[t->n_ccs++].ccs_len = ccs_len;
            snprintf(combo, sizeof combo, "%s kid #%zu", role_name[role], v);
            pair_init(C_KID, C_KID, role == R_I ? s2 : s0, 1, role == R_I ? s2 : s0, 1, 0, 1);
            set_cred(role == R_I ? &P.pi : &P.pr, kind, idc_buf, idl, ccs, ccs_len);
            CHECK(pair_to_m2(role == R_I ? 0 : 3, role == R_I ? 2 : 0), CL_OK);
            CHECK(pair_m3(), CL_OK);
            const party_t *rx = role == R_I ? &P.pr : &P.pi;
            tu_assert_bytes(rx->seen, rx->seen_len, idc_buf, idl);
            CHECK(cl_edhoc_message_4(&P.r, NULL, 0, P.m[3], MSG_MAX, &P.len[3]), CL_OK);
            CHECK(cl_edhoc_process_message_4(&P.i, P.m[3], P.len[3]), CL_OK);
            check_agreement();
            pair_free();
            *t = saved;
        }
    }
}

/* ---- the size report (BENCHMARKS.md) ---- */

static void print_size_table(FILE *f, const size_t *suite_idx, size_t n)
{
    fprintf(f, "| method | credential |");
    for (size_t s = 0; s < n; s++)
        fprintf(f, " suite %d: m1 / m2 / m3 / m4 |", all_suites[suite_idx[s]]);
    fprintf(f, "\n|---|---|");
    for (size_t s = 0; s < n; s++)
        fprintf(f, "---|");
    fprintf(f, "\n");
    for (int m = 0; m < 4; m++) {
        for (int c = 0; c < N_CREDS; c++) {
            fprintf(f, "| %s | %s |", method_name[m], cred_name[c]);
            for (size_t s = 0; s < n; s++) {
                size_t k = suite_idx[s];
                fprintf(f, " %zu / %zu / %zu / %zu |", sz_m1[k][m], sz_m2[k][m][c], sz_m3[k][m][c],
                        sz_m4[k][m]);
            }
            fprintf(f, "\n");
        }
    }
}

static void print_cred_table(FILE *f)
{
    size_t int_len;
    (void)testca_cert(inter, &int_len);
    fprintf(f, "| key | certificate | CCS | ID_CRED: x5t | x5chain | x5chain[2] | kid | kccs |\n"
               "|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < N_KINDS; k++) {
        const keyset_t *s = &ks[R_I][k];
        fprintf(f, "| %s | %zu | %zu |", kind_name[k], s->cert_len, s->ccs_len);
        for (int c = 0; c < N_CREDS; c++)
            fprintf(f, " %zu |", s->c[c].id_cred_len);
        fprintf(f, "\n");
    }
    fprintf(f,
            "\nIntermediate CA certificate: %zu bytes. Certificates are signed by a P-256 CA "
            "with 72-byte (DER) ECDSA signatures, so the sizes are reproducible. kid is "
            "sent as one byte (compact encoding, 3.5.3.2).\n",
            int_len);
}

static void print_report(FILE *f)
{
    static const size_t main_suites[] = {0, 2}, other_suites[] = {1, 3, 4}; /* 0, 2 | 1, 3, 6 */
    fprintf(f,
            "EDHOC interoperability matrix: %zu handshakes (methods 0-3 x suites 0, 1, 2, 3, "
            "6 x %d x %d credential types: x5t SHA-256/64, x5chain, x5chain [leaf, "
            "intermediate], kid -> CCS, kccs) in %.2f s",
            matrix_runs, N_CREDS, N_CREDS, matrix_secs);
    fprintf(f, "; plus %zu connection-identifier variants in %.2f s", cid_runs, cid_secs);
    fprintf(f, ".\n\nBytes on the wire per message (C_I and C_R one-byte ints, no EAD; "
               "message_2 carries the responder's credential, message_3 the initiator's; the "
               "key follows the suite: Ed25519/X25519 in suites 0 and 1, P-256 in 2 and 3, "
               "P-256 signatures and X25519 in 6):\n\n");
    print_size_table(f, main_suites, 2);
    fprintf(f, "\n");
    print_size_table(f, other_suites, 3);
    fprintf(f, "\nCredential sizes in bytes:\n\n");
    print_cred_table(f);
}

static void test_size_report(void **state)
{
    (void)state;
    /* Every size was seen (message_2 / message_3 are recorded from their writers). */
    for (size_t s = 0; s < N_SUITES; s++) {
        for (int m = 0; m < 4; m++) {
            assert_int_not_equal(sz_m1[s][m], 0);
            assert_int_not_equal(sz_m4[s][m], 0);
            for (int c = 0; c < N_CREDS; c++) {
                assert_int_not_equal(sz_m2[s][m][c], 0);
                assert_int_not_equal(sz_m3[s][m][c], 0);
            }
            /* by reference < by value; one certificate < two */
            assert_true(sz_m2[s][m][C_KID] < sz_m2[s][m][C_X5T]);
            assert_true(sz_m2[s][m][C_X5T] < sz_m2[s][m][C_KCCS]);
            assert_true(sz_m2[s][m][C_KCCS] < sz_m2[s][m][C_X5CHAIN]);
            assert_true(sz_m3[s][m][C_X5CHAIN] < sz_m3[s][m][C_X5CHAIN2]);
        }
    }
    printf("\n");
    print_report(stdout);
    const char *path = getenv("CL_EDHOC_SIZES_OUT");
    if (path != NULL && path[0] != '\0') {
        FILE *f = fopen(path, "w");
        if (f == NULL)
            fail_msg("cannot write %s", path);
        print_report(f);
        fclose(f);
        printf("(written to %s)\n", path);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_matrix_x5chain2),
        cmocka_unit_test(test_cid_variants),
        cmocka_unit_test(test_kid_encodings),
        cmocka_unit_test(test_expired_certificate),
        cmocka_unit_test(test_revoked_certificate),
        cmocka_unit_test(test_foreign_ca),
        cmocka_unit_test(test_unknown_credentials),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_suite_mismatch),
        cmocka_unit_test(test_suite_negotiation),
        cmocka_unit_test(test_method_without_credential),
        cmocka_unit_test(test_static_dh_wrong_curve),
        cmocka_unit_test(test_size_report),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
