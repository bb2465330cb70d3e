/*
 * edhoc_fuzz_common.h - shared pieces of the EDHOC fuzz harnesses
 * (fuzz_edhoc_messages.c, fuzz_edhoc_responder.c) and of the corpus
 * generator gen_edhoc_corpus.c.
 *
 * Everything is `static inline` so that each file includes what it uses
 * without unused-function warnings. Holds:
 *
 *  - a checking crypto provider wrapped around the OpenSSL one: it counts the
 *    live key handles (every input must end with exactly the handles it
 *    started with, so a key leaked or destroyed twice by an error path is
 *    caught even though the slot table is still reachable for LeakSanitizer),
 *    injects a CL_ERR_CRYPTO at the n-th provider call when asked (to drive
 *    the error paths), and makes key_generate deterministic (keys derived
 *    from a per-input counter) so every input replays identically;
 *  - the credentials: RFC 9529 trace 1 (Ed25519 signatures, X.509 by x5t)
 *    and trace 2 (P-256 static DH, CCS by kid) for both sides, plus four of
 *    our own (X25519 static DH and P-256 signature for each side, by kid and
 *    by value, kccs) so that every method works in suites 0 and 2;
 *  - the configurations: a responder supporting suites 0 and 2 with all four
 *    responder credentials, and initiators with eight suite preference lists;
 *  - the peer-credential callback (which can be told to answer "unknown",
 *    "untrusted", a wrong key, an oversized or a missing CRED) and the EAD
 *    hook, with a reference model of EAD processing;
 *  - the trace descriptors, the byte-mutation records shared by the
 *    structured modes, the encryption of a chosen PLAINTEXT_2/3/4 with the
 *    trace keys, and the checks every failed step must pass.
 *
 * Not a harness (no fuzz_ prefix): CI treats every fuzz/fuzz_*.c as one.
 */
#ifndef CLOISTER_EDHOC_FUZZ_COMMON_H
#define CLOISTER_EDHOC_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/crypto_openssl.h"
#include "cloister/edhoc.h"

#include "edhoc_fuzz_vectors.h"

#define EF_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* -DEF_DEBUG: print every protocol call and its status (to follow a corpus input) */
#ifdef EF_DEBUG
#define EF_TRACE(what, st) fprintf(stderr, "  %-70.70s -> %s\n", what, cl_status_str(st))
#else
#define EF_TRACE(what, st) ((void)0)
#endif

#define EF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static inline bool ef_eq(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

static inline bool ef_all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* ------------------------------------------------------------------ */
/* The checking provider                                               */
/* ------------------------------------------------------------------ */

#define EF_MAX_LIVE 256

typedef struct ef_prov {
    cl_crypto_t real;          /* OpenSSL */
    cl_crypto_t pub;           /* what the library sees: the wrapper */
    cl_key_t live[EF_MAX_LIVE];
    size_t n_live;
    size_t baseline;           /* live handles owned by the fixed setup */
    uint32_t n_ops, fail_at;   /* while armed, provider call number fail_at fails */
    bool armed, fired;
    uint32_t gen;              /* key_generate counter, reset per input */
} ef_prov_t;

static inline ef_prov_t *ef_p(void)
{
    static ef_prov_t p;
    return &p;
}

static inline bool ef_fault(ef_prov_t *p)
{
    if (!p->armed || p->fail_at == 0)
        return false;
    if (++p->n_ops == p->fail_at) {
        p->fired = true;
        return true;
    }
    return false;
}

static inline void ef_live_add(ef_prov_t *p, cl_key_t k)
{
    EF_CHECK(k != CL_KEY_NONE);
    for (size_t i = 0; i < p->n_live; i++)
        EF_CHECK(p->live[i] != k); /* the provider handed out a live handle twice */
    EF_CHECK(p->n_live < EF_MAX_LIVE); /* keys are leaking */
    p->live[p->n_live++] = k;
}

static inline bool ef_live_del(ef_prov_t *p, cl_key_t k)
{
    for (size_t i = 0; i < p->n_live; i++) {
        if (p->live[i] == k) {
            p->live[i] = p->live[--p->n_live];
            return true;
        }
    }
    return false;
}

static inline cl_status_t ef_random(void *self, uint8_t *out, size_t len)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    /* deterministic too: the library only uses randomness through key_generate */
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(0x5a ^ (p->gen * 31u + i));
    return CL_OK;
}

static inline cl_status_t ef_sha256(void *self, const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->sha256(p->real.self, parts, n, out);
}

static inline cl_status_t ef_hmac(void *self, const uint8_t *key, size_t key_len,
                                  const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->hmac_sha256(p->real.self, key, key_len, parts, n, out);
}

static inline cl_status_t ef_extract(void *self, const uint8_t *salt, size_t salt_len,
                                     const uint8_t *ikm, size_t ikm_len, uint8_t prk[32])
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->hkdf_extract(p->real.self, salt, salt_len, ikm, ikm_len, prk);
}

static inline cl_status_t ef_expand(void *self, const uint8_t *prk, size_t prk_len,
                                    const uint8_t *info, size_t info_len, uint8_t *out,
                                    size_t out_len)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->hkdf_expand(p->real.self, prk, prk_len, info, info_len, out, out_len);
}

static inline cl_status_t ef_aead_import(void *self, cl_aead_alg_t alg, const uint8_t *key,
                                         size_t key_len, cl_key_t *out)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    cl_status_t st = p->real.ops->aead_import(p->real.self, alg, key, key_len, out);
    if (st == CL_OK)
        ef_live_add(p, *out);
    return st;
}

static inline cl_status_t ef_aead_encrypt(void *self, cl_key_t key, const uint8_t *nonce,
                                          size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                          const uint8_t *pt, size_t pt_len, uint8_t *out,
                                          size_t out_size, size_t *out_len)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->aead_encrypt(p->real.self, key, nonce, nonce_len, aad, aad_len, pt, pt_len,
                                     out, out_size, out_len);
}

static inline cl_status_t ef_aead_decrypt(void *self, cl_key_t key, const uint8_t *nonce,
                                          size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                          const uint8_t *in, size_t in_len, uint8_t *out,
                                          size_t out_size, size_t *out_len)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->aead_decrypt(p->real.self, key, nonce, nonce_len, aad, aad_len, in, in_len,
                                     out, out_size, out_len);
}

static inline cl_status_t ef_key_import_private(void *self, cl_key_type_t type, uint32_t usage,
                                                const uint8_t *priv, size_t priv_len,
                                                cl_key_t *out)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    cl_status_t st =
        p->real.ops->key_import_private(p->real.self, type, usage, priv, priv_len, out);
    if (st == CL_OK)
        ef_live_add(p, *out);
    return st;
}

static inline cl_status_t ef_key_export_public(void *self, cl_key_t key, uint8_t *pub,
                                               size_t pub_size, size_t *pub_len)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->key_export_public(p->real.self, key, pub, pub_size, pub_len);
}

/* Deterministic: the private key is SHA-256("cloister edhoc fuzz" || type || counter). */
static inline cl_status_t ef_key_generate(void *self, cl_key_type_t type, uint32_t usage,
                                          cl_key_t *out, uint8_t *pub, size_t pub_size,
                                          size_t *pub_len)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    cl_status_t st = CL_ERR_CRYPTO;
    for (int tries = 0; tries < 4; tries++) {
        uint8_t seed[24] = "cloister edhoc fuzz", priv[32];
        uint32_t g = p->gen++;
        seed[19] = (uint8_t)type;
        seed[20] = (uint8_t)(g >> 24);
        seed[21] = (uint8_t)(g >> 16);
        seed[22] = (uint8_t)(g >> 8);
        seed[23] = (uint8_t)g;
        cl_buf_t part = {seed, sizeof seed};
        if ((st = p->real.ops->sha256(p->real.self, &part, 1, priv)) != CL_OK)
            return st;
        st = p->real.ops->key_import_private(p->real.self, type, usage, priv, sizeof priv, out);
        if (st == CL_OK)
            break;
    }
    if (st != CL_OK)
        return st;
    if (pub != NULL) {
        if ((st = p->real.ops->key_export_public(p->real.self, *out, pub, pub_size, pub_len)) !=
            CL_OK) {
            p->real.ops->key_destroy(p->real.self, *out);
            return st;
        }
    }
    ef_live_add(p, *out);
    return CL_OK;
}

static inline cl_status_t ef_key_import_public(void *self, cl_key_type_t type, const uint8_t *pub,
                                               size_t pub_len, cl_key_t *out)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    cl_status_t st = p->real.ops->key_import_public(p->real.self, type, pub, pub_len, out);
    if (st == CL_OK)
        ef_live_add(p, *out);
    return st;
}

static inline cl_status_t ef_ecdh(void *self, cl_key_t priv, const uint8_t *peer_pub,
                                  size_t peer_len, uint8_t *secret, size_t secret_size,
                                  size_t *secret_len)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->ecdh(p->real.self, priv, peer_pub, peer_len, secret, secret_size,
                             secret_len);
}

static inline cl_status_t ef_sign(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                                  size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->sign(p->real.self, priv, alg, msg, msg_len, sig, sig_size, sig_len);
}

static inline cl_status_t ef_verify(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                                    size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    ef_prov_t *p = self;
    if (ef_fault(p))
        return CL_ERR_CRYPTO;
    return p->real.ops->verify(p->real.self, pub, alg, msg, msg_len, sig, sig_len);
}

static inline void ef_key_destroy(void *self, cl_key_t key)
{
    ef_prov_t *p = self;
    if (key == CL_KEY_NONE)
        return;
    if (!ef_live_del(p, key)) {
        fprintf(stderr, "edhoc fuzz: destroy of handle %#x that is not live (double destroy?)\n",
                (unsigned)key);
        abort();
    }
    p->real.ops->key_destroy(p->real.self, key);
}

static inline const cl_crypto_t *ef_provider(void)
{
    static const cl_crypto_ops_t ops = {
        .version = CL_CRYPTO_OPS_VERSION,
        .name = "openssl+edhoc-fuzz",
        .random = ef_random,
        .sha256 = ef_sha256,
        .hmac_sha256 = ef_hmac,
        .hkdf_extract = ef_extract,
        .hkdf_expand = ef_expand,
        .aead_import = ef_aead_import,
        .aead_encrypt = ef_aead_encrypt,
        .aead_decrypt = ef_aead_decrypt,
        .key_generate = ef_key_generate,
        .key_import_private = ef_key_import_private,
        .key_import_public = ef_key_import_public,
        .key_export_public = ef_key_export_public,
        .ecdh = ef_ecdh,
        .sign = ef_sign,
        .verify = ef_verify,
        .key_destroy = ef_key_destroy,
    };
    ef_prov_t *p = ef_p();
    if (p->pub.ops == NULL) {
        EF_CHECK(cl_crypto_openssl_new(&p->real, 0) == CL_OK);
        p->pub.ops = &ops;
        p->pub.self = p;
    }
    return &p->pub;
}

/** Starts an input: no fault armed yet (fail_at 0 = never), generator counter reset. */
static inline void ef_input_begin(uint32_t fail_at)
{
    ef_prov_t *p = ef_p();
    p->n_ops = 0;
    p->fail_at = fail_at;
    p->armed = false;
    p->fired = false;
    p->gen = 0;
}

static inline void ef_arm(bool on)
{
    ef_p()->armed = on;
}

/** Ends an input: every key created while processing it must have been destroyed. */
static inline void ef_input_end(void)
{
    ef_prov_t *p = ef_p();
    p->armed = false;
    if (p->n_live != p->baseline) {
        fprintf(stderr, "edhoc fuzz: %zu key handle(s) leaked by this input\n",
                p->n_live - p->baseline);
        abort();
    }
}

/** Imports a private key that the setup (not the library) owns; must succeed. */
static inline cl_key_t ef_import_priv(cl_key_type_t type, uint32_t usage, const uint8_t *k,
                                      size_t len)
{
    const cl_crypto_t *c = ef_provider();
    cl_key_t h;
    EF_CHECK(c->ops->key_import_private(c->self, type, usage, k, len, &h) == CL_OK);
    return h;
}

/* ------------------------------------------------------------------ */
/* Credentials and configurations                                      */
/* ------------------------------------------------------------------ */

/* Initiator credentials first, then the responder ones in the same order (k ^ 4 is the
 * same kind on the other side). */
enum {
    EF_T1_I, /* trace 1: Ed25519 signature, X.509 by x5t */
    EF_T2_I, /* trace 2: P-256 static DH, CCS by kid 0x2b */
    EF_S_IX, /* ours: X25519 static DH, CCS by kid h'0b0c' */
    EF_S_IP, /* ours: P-256 signature, CCS by kid h'07' (compact: the int 7) */
    EF_T1_R,
    EF_T2_R,
    EF_S_RX, /* ours: X25519 static DH, CCS by kid h'a1' (compact: bstr) */
    EF_S_RP, /* ours: P-256 signature, CCS by value (kccs) */
    EF_N_CREDS
};

typedef struct ef_cred {
    cl_edhoc_auth_t auth;
    cl_key_t verify_key;     /* public key handle (signature credentials) */
    uint8_t pub[CL_PUB_MAX]; /* public key bytes (static DH credentials) */
    size_t pub_len;
    uint8_t id_buf[160], cred_buf[128]; /* our own credentials are built here */
} ef_cred_t;

/* Peer callback behaviours (ef_world_t.cb_mode). */
enum {
    EF_CB_NORMAL,    /* known credentials resolve, others are CL_ERR_NOT_FOUND */
    EF_CB_UNKNOWN,   /* everything is CL_ERR_NOT_FOUND (error 3) */
    EF_CB_UNTRUSTED, /* everything is CL_ERR_AUTH */
    EF_CB_WRONG_KEY, /* the right CRED with the key of another credential */
    EF_CB_HUGE_CRED, /* a CRED longer than CL_EDHOC_MAX_CRED */
    EF_CB_NO_CRED,   /* CL_OK but no CRED */
    EF_N_CB
};

/* Initiator suite preference lists (each an initiator configuration). */
#define EF_N_ILISTS 8
static const int EF_ILIST_0[] = {0};
static const int EF_ILIST_1[] = {6, 2};
static const int EF_ILIST_2[] = {2};
static const int EF_ILIST_3[] = {2, 0};
static const int EF_ILIST_4[] = {1, 0};
static const int EF_ILIST_5[] = {3, 2};
static const int EF_ILIST_6[] = {6};
static const int EF_ILIST_7[] = {1, 3, 6, 0, 2};
static const int EF_RESP_SUITES[] = {0, 2};
static const int EF_RESP_MIN_SUITES[] = {2};

typedef struct ef_world {
    ef_cred_t cred[EF_N_CREDS];
    cl_edhoc_auth_t i_auth[4], r_auth[4];
    cl_edhoc_config_t resp;               /* suites 0 and 2, the four responder credentials */
    cl_edhoc_config_t resp_min;           /* suite 2 and trace 2's credential (method 3) only */
    cl_edhoc_config_t init[EF_N_ILISTS];  /* EF_ILIST_n, the four initiator credentials */
    int cb_mode;
    unsigned cb_calls, ead_calls;
    uint8_t huge[CL_EDHOC_MAX_CRED + 8];
} ef_world_t;

static inline ef_world_t *ef_w(void)
{
    static ef_world_t w;
    return &w;
}

static inline cl_status_t ef_peer_cred(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                                       size_t id_cred_len, cl_edhoc_peer_t *peer)
{
    ef_world_t *w = arg;
    EF_CHECK(w == ef_w());
    EF_CHECK(own_role == CL_EDHOC_INITIATOR || own_role == CL_EDHOC_RESPONDER);
    /* the callback always gets ID_CRED in map form (compact kid expanded) */
    EF_CHECK(id_cred != NULL && id_cred_len > 0 && (id_cred[0] >> 5) == CL_CBOR_MAP);
    size_t count;
    EF_CHECK(cl_cbor_validate_seq(id_cred, id_cred_len, &count) == CL_OK && count == 1);
    w->cb_calls++;
    if (w->cb_mode == EF_CB_UNKNOWN)
        return CL_ERR_NOT_FOUND;
    if (w->cb_mode == EF_CB_UNTRUSTED)
        return CL_ERR_AUTH;
    size_t first = own_role == CL_EDHOC_INITIATOR ? EF_T1_R : EF_T1_I;
    for (size_t k = first; k < first + 4; k++) {
        const ef_cred_t *c = &w->cred[k];
        if (!ef_eq(id_cred, id_cred_len, c->auth.id_cred, c->auth.id_cred_len))
            continue;
        const ef_cred_t *key = w->cb_mode == EF_CB_WRONG_KEY ? &w->cred[k ^ 4] : c;
        peer->cred = c->auth.cred;
        peer->cred_len = c->auth.cred_len;
        peer->key = key->verify_key;
        memcpy(peer->pub, key->pub, key->pub_len);
        peer->pub_len = key->pub_len;
        if (w->cb_mode == EF_CB_HUGE_CRED) {
            peer->cred = w->huge;
            peer->cred_len = sizeof w->huge;
        } else if (w->cb_mode == EF_CB_NO_CRED) {
            peer->cred = NULL;
            peer->cred_len = 0;
        }
        return CL_OK;
    }
    return CL_ERR_NOT_FOUND;
}

/*
 * EAD hook: labels +-42 are understood and accepted, +-13 understood and
 * refused (the session aborts), everything else is not understood.
 */
static inline cl_status_t ef_ead_hook(void *arg, int message, int64_t label, const uint8_t *value,
                                      size_t value_len, bool has_value)
{
    ef_world_t *w = arg;
    EF_CHECK(w == ef_w());
    EF_CHECK(message >= 1 && message <= 4);
    EF_CHECK(label != 0); /* padding is skipped */
    EF_CHECK(has_value ? value != NULL : value_len == 0);
    w->ead_calls++;
    if (label == 42 || label == -42)
        return CL_OK;
    if (label == 13 || label == -13)
        return CL_ERR_AUTH;
    return CL_ERR_NOT_FOUND;
}

/* ---- reference model of EAD processing (strict deterministic CBOR, see cbor.h) ---- */

static inline bool ef_ref_head(const uint8_t *p, size_t n, size_t *i, int *major, uint64_t *arg)
{
    if (*i >= n)
        return false;
    uint8_t b = p[(*i)++];
    unsigned ai = b & 31u;
    *major = b >> 5;
    if (ai < 24) {
        *arg = ai;
        return true;
    }
    if (ai > 27)
        return false; /* reserved or indefinite */
    size_t len = (size_t)1 << (ai - 24);
    if (n - *i < len)
        return false;
    uint64_t v = 0;
    for (size_t k = 0; k < len; k++)
        v = v << 8 | p[(*i)++];
    static const uint64_t min[4] = {24, 0x100, 0x10000, 0x100000000ull};
    if (v < min[ai - 24])
        return false; /* not shortest */
    *arg = v;
    return true;
}

/** Would process_ead accept ead[0..n) with ef_ead_hook? */
static inline bool ef_ref_ead_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        int major;
        uint64_t arg;
        if (!ef_ref_head(p, n, &i, &major, &arg) || major > 1 || arg > (uint64_t)INT64_MAX)
            return false;
        int64_t label = major == 0 ? (int64_t)arg : -1 - (int64_t)arg;
        if (i < n && (p[i] >> 5) == 2) {
            int m2;
            uint64_t len;
            if (!ef_ref_head(p, n, &i, &m2, &len) || len > n - i)
                return false;
            i += (size_t)len;
        }
        if (label == 0 || label == 42 || label == -42)
            continue;
        if (label == 13 || label == -13 || label < 0)
            return false;
    }
    return true;
}

/* Our own credential: a CCS {2: name, 8: {1: COSE_Key}} with the key's public part. */
static inline void ef_make_ccs(ef_cred_t *c, const char *name, cl_key_type_t type)
{
    const cl_crypto_t *cr = ef_provider();
    uint8_t pub[CL_PUB_MAX];
    size_t pub_len, len;
    cl_cbor_enc_t e;
    EF_CHECK(cr->ops->key_export_public(cr->self, c->auth.key, pub, sizeof pub, &pub_len) ==
             CL_OK);
    cl_cbor_enc_init(&e, c->cred_buf, sizeof c->cred_buf);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_uint(&e, 2);
    cl_cbor_enc_tstr_z(&e, name);
    cl_cbor_enc_uint(&e, 8);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 1);
    if (type == CL_KEY_P256) {
        EF_CHECK(pub_len == 65);
        cl_cbor_enc_map(&e, 4);
        cl_cbor_enc_uint(&e, 1);
        cl_cbor_enc_uint(&e, 2); /* EC2 */
        cl_cbor_enc_int(&e, -1);
        cl_cbor_enc_uint(&e, 1); /* P-256 */
        cl_cbor_enc_int(&e, -2);
        cl_cbor_enc_bstr(&e, pub + 1, 32);
        cl_cbor_enc_int(&e, -3);
        cl_cbor_enc_bstr(&e, pub + 33, 32);
    } else {
        EF_CHECK(pub_len == 32);
        cl_cbor_enc_map(&e, 3);
        cl_cbor_enc_uint(&e, 1);
        cl_cbor_enc_uint(&e, 1); /* OKP */
        cl_cbor_enc_int(&e, -1);
        cl_cbor_enc_uint(&e, 4); /* X25519 */
        cl_cbor_enc_int(&e, -2);
        cl_cbor_enc_bstr(&e, pub, 32);
    }
    EF_CHECK(cl_cbor_enc_finish(&e, &len) == CL_OK);
    c->auth.cred = c->cred_buf;
    c->auth.cred_len = len;
    if (c->auth.static_dh) {
        memcpy(c->pub, pub, pub_len);
        c->pub_len = pub_len;
    } else {
        EF_CHECK(cr->ops->key_import_public(cr->self, type, pub, pub_len, &c->verify_key) ==
                 CL_OK);
    }
}

static inline void ef_set_kid(ef_cred_t *c, const uint8_t *kid, size_t kid_len)
{
    cl_cbor_enc_t e;
    size_t len;
    cl_cbor_enc_init(&e, c->id_buf, sizeof c->id_buf);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 4);
    cl_cbor_enc_bstr(&e, kid, kid_len);
    EF_CHECK(cl_cbor_enc_finish(&e, &len) == CL_OK);
    c->auth.id_cred = c->id_buf;
    c->auth.id_cred_len = len;
}

static inline void ef_trace_cred(ef_cred_t *c, cl_key_type_t type, bool static_dh,
                                 const uint8_t *sk, const uint8_t *id, size_t id_len,
                                 const uint8_t *cred, size_t cred_len)
{
    c->auth.key = ef_import_priv(type, static_dh ? CL_KEY_USAGE_ECDH : CL_KEY_USAGE_SIGN, sk, 32);
    c->auth.type = type;
    c->auth.static_dh = static_dh;
    c->auth.id_cred = id;
    c->auth.id_cred_len = id_len;
    c->auth.cred = cred;
    c->auth.cred_len = cred_len;
}

static inline void ef_own_cred(ef_cred_t *c, cl_key_type_t type, bool static_dh, uint8_t seed,
                               const char *name)
{
    uint8_t sk[32];
    memset(sk, seed, sizeof sk);
    c->auth.key = ef_import_priv(type, static_dh ? CL_KEY_USAGE_ECDH : CL_KEY_USAGE_SIGN, sk, 32);
    c->auth.type = type;
    c->auth.static_dh = static_dh;
    ef_make_ccs(c, name, type);
}

/** Builds the credentials and configurations once; the live handles become the baseline. */
static inline ef_world_t *ef_world(void)
{
    static bool ready;
    ef_world_t *w = ef_w();
    if (ready)
        return w;
    const cl_crypto_t *cr = ef_provider();
    ef_cred_t *c = w->cred;

    ef_trace_cred(&c[EF_T1_I], CL_KEY_ED25519, false, EF_T1_SK_I, EF_T1_ID_CRED_I,
                  sizeof EF_T1_ID_CRED_I, EF_T1_CRED_I_CBOR, sizeof EF_T1_CRED_I_CBOR);
    EF_CHECK(cr->ops->key_import_public(cr->self, CL_KEY_ED25519, EF_T1_PK_I, sizeof EF_T1_PK_I,
                                        &c[EF_T1_I].verify_key) == CL_OK);
    ef_trace_cred(&c[EF_T1_R], CL_KEY_ED25519, false, EF_T1_SK_R, EF_T1_ID_CRED_R,
                  sizeof EF_T1_ID_CRED_R, EF_T1_CRED_R_CBOR, sizeof EF_T1_CRED_R_CBOR);
    EF_CHECK(cr->ops->key_import_public(cr->self, CL_KEY_ED25519, EF_T1_PK_R, sizeof EF_T1_PK_R,
                                        &c[EF_T1_R].verify_key) == CL_OK);
    ef_trace_cred(&c[EF_T2_I], CL_KEY_P256, true, EF_T2_SK_I, EF_T2_ID_CRED_I,
                  sizeof EF_T2_ID_CRED_I, EF_T2_CRED_I, sizeof EF_T2_CRED_I);
    c[EF_T2_I].pub[0] = 0x04;
    memcpy(c[EF_T2_I].pub + 1, EF_T2_PK_I_X, 32);
    memcpy(c[EF_T2_I].pub + 33, EF_T2_PK_I_Y, 32);
    c[EF_T2_I].pub_len = 65;
    ef_trace_cred(&c[EF_T2_R], CL_KEY_P256, true, EF_T2_SK_R, EF_T2_ID_CRED_R,
                  sizeof EF_T2_ID_CRED_R, EF_T2_CRED_R, sizeof EF_T2_CRED_R);
    c[EF_T2_R].pub[0] = 0x04;
    memcpy(c[EF_T2_R].pub + 1, EF_T2_PK_R_X, 32);
    memcpy(c[EF_T2_R].pub + 33, EF_T2_PK_R_Y, 32);
    c[EF_T2_R].pub_len = 65;

    ef_own_cred(&c[EF_S_IX], CL_KEY_X25519, true, 0x11, "fuzz initiator x25519");
    ef_set_kid(&c[EF_S_IX], (const uint8_t *)"\x0b\x0c", 2);
    ef_own_cred(&c[EF_S_IP], CL_KEY_P256, false, 0x22, "fuzz initiator p-256");
    ef_set_kid(&c[EF_S_IP], (const uint8_t *)"\x07", 1);
    ef_own_cred(&c[EF_S_RX], CL_KEY_X25519, true, 0x33, "fuzz responder x25519");
    ef_set_kid(&c[EF_S_RX], (const uint8_t *)"\xa1", 1);
    ef_own_cred(&c[EF_S_RP], CL_KEY_P256, false, 0x44, "fuzz responder p-256");
    {
        /* ID_CRED_R = {14: CCS}: the credential by value */
        ef_cred_t *rp = &c[EF_S_RP];
        cl_cbor_enc_t e;
        size_t len;
        cl_cbor_enc_init(&e, rp->id_buf, sizeof rp->id_buf);
        cl_cbor_enc_map(&e, 1);
        cl_cbor_enc_uint(&e, 14);
        cl_cbor_enc_raw(&e, rp->auth.cred, rp->auth.cred_len);
        EF_CHECK(cl_cbor_enc_finish(&e, &len) == CL_OK);
        rp->auth.id_cred = rp->id_buf;
        rp->auth.id_cred_len = len;
    }
    for (size_t k = 0; k < 4; k++) {
        w->i_auth[k] = c[k].auth;
        w->r_auth[k] = c[k + 4].auth;
    }
    memset(w->huge, 0x40, sizeof w->huge);

    w->resp.crypto = cr;
    w->resp.suites = EF_RESP_SUITES;
    w->resp.n_suites = EF_ARRAY_LEN(EF_RESP_SUITES);
    w->resp.auth = w->r_auth;
    w->resp.n_auth = 4;
    w->resp.peer_cred = ef_peer_cred;
    w->resp.peer_cred_arg = w;
    w->resp.ead = ef_ead_hook;
    w->resp.ead_arg = w;
    w->resp_min = w->resp;
    w->resp_min.suites = EF_RESP_MIN_SUITES;
    w->resp_min.n_suites = 1;
    w->resp_min.auth = &w->r_auth[EF_T2_R - 4];
    w->resp_min.n_auth = 1;
    static const int *const lists[EF_N_ILISTS] = {EF_ILIST_0, EF_ILIST_1, EF_ILIST_2,
                                                  EF_ILIST_3, EF_ILIST_4, EF_ILIST_5,
                                                  EF_ILIST_6, EF_ILIST_7};
    static const size_t lens[EF_N_ILISTS] = {
        EF_ARRAY_LEN(EF_ILIST_0), EF_ARRAY_LEN(EF_ILIST_1), EF_ARRAY_LEN(EF_ILIST_2),
        EF_ARRAY_LEN(EF_ILIST_3), EF_ARRAY_LEN(EF_ILIST_4), EF_ARRAY_LEN(EF_ILIST_5),
        EF_ARRAY_LEN(EF_ILIST_6), EF_ARRAY_LEN(EF_ILIST_7)};
    for (size_t k = 0; k < EF_N_ILISTS; k++) {
        w->init[k] = w->resp;
        w->init[k].suites = lists[k];
        w->init[k].n_suites = lens[k];
        w->init[k].auth = w->i_auth;
    }
    ef_p()->baseline = ef_p()->n_live;
    ready = true;
    return w;
}

/** Whether the responder configuration accepts SUITES_I = list[0..sel]. */
static inline bool ef_resp_accepts(const int *list, size_t sel)
{
    for (size_t i = 0; i <= sel; i++) {
        bool supported = list[i] == 0 || list[i] == 2;
        if (supported != (i == sel))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* The two RFC 9529 traces                                             */
/* ------------------------------------------------------------------ */

typedef struct ef_trace {
    int method, suite;
    size_t ilist;          /* initiator configuration (suite list) */
    cl_key_type_t dh;      /* ephemeral key type */
    cl_buf_t x, y, g_x, g_y, c_i, c_r;
    cl_buf_t m[5];         /* message_1 .. message_4 at index 1..4 */
    cl_buf_t pt2, th2, prk2e, pt3, k3, iv3, a3, k4, iv4, a4;
    cl_buf_t prk_out, prk_exporter, ms, salt;
} ef_trace_t;

#define EF_B(a) {a, sizeof a}
/* clang-format off */
static const ef_trace_t EF_TRACES[2] = {
    {0, 0, 0, CL_KEY_X25519, EF_B(EF_T1_X), EF_B(EF_T1_Y), EF_B(EF_T1_G_X), EF_B(EF_T1_G_Y),
     EF_B(EF_T1_C_I), EF_B(EF_T1_C_R),
     {{NULL, 0}, EF_B(EF_T1_MESSAGE_1), EF_B(EF_T1_MESSAGE_2), EF_B(EF_T1_MESSAGE_3),
      EF_B(EF_T1_MESSAGE_4)},
     EF_B(EF_T1_PLAINTEXT_2), EF_B(EF_T1_TH_2), EF_B(EF_T1_PRK_2E), EF_B(EF_T1_PLAINTEXT_3),
     EF_B(EF_T1_K_3), EF_B(EF_T1_IV_3), EF_B(EF_T1_A_3), EF_B(EF_T1_K_4), EF_B(EF_T1_IV_4),
     EF_B(EF_T1_A_4), EF_B(EF_T1_PRK_OUT), EF_B(EF_T1_PRK_EXPORTER),
     EF_B(EF_T1_OSCORE_MASTER_SECRET), EF_B(EF_T1_OSCORE_MASTER_SALT)},
    {3, 2, 1, CL_KEY_P256, EF_B(EF_T2_X), EF_B(EF_T2_Y), EF_B(EF_T2_G_X), EF_B(EF_T2_G_Y),
     EF_B(EF_T2_C_I), EF_B(EF_T2_C_R),
     {{NULL, 0}, EF_B(EF_T2_MESSAGE_1), EF_B(EF_T2_MESSAGE_2), EF_B(EF_T2_MESSAGE_3),
      EF_B(EF_T2_MESSAGE_4)},
     EF_B(EF_T2_PLAINTEXT_2), EF_B(EF_T2_TH_2), EF_B(EF_T2_PRK_2E), EF_B(EF_T2_PLAINTEXT_3),
     EF_B(EF_T2_K_3), EF_B(EF_T2_IV_3), EF_B(EF_T2_A_3), EF_B(EF_T2_K_4), EF_B(EF_T2_IV_4),
     EF_B(EF_T2_A_4), EF_B(EF_T2_PRK_OUT), EF_B(EF_T2_PRK_EXPORTER),
     EF_B(EF_T2_OSCORE_MASTER_SECRET), EF_B(EF_T2_OSCORE_MASTER_SALT)},
};
/* clang-format on */

/* ------------------------------------------------------------------ */
/* Structured inputs                                                   */
/* ------------------------------------------------------------------ */

#define EF_MAX_RECORDS 16

/*
 * Applies byte-mutation records (op, pos, val), 3 bytes each, to buf[0..*len)
 * (capacity cap): op % 6 = 0 xor (val 0: no-op), 1 set, 2 insert, 3 delete,
 * 4 truncate to pos, 5 append val. Positions are taken modulo the length.
 */
static inline void ef_mutate(uint8_t *buf, size_t *len, size_t cap, const uint8_t *rec, size_t n)
{
    for (size_t r = 0; r + 3 <= n && r / 3 < EF_MAX_RECORDS; r += 3) {
        size_t l = *len, pos = rec[r + 1];
        uint8_t val = rec[r + 2];
        switch (rec[r] % 6) {
        case 0:
            if (l)
                buf[pos % l] ^= val;
            break;
        case 1:
            if (l)
                buf[pos % l] = val;
            break;
        case 2:
            if (l < cap) {
                pos %= l + 1;
                memmove(buf + pos + 1, buf + pos, l - pos);
                buf[pos] = val;
                *len = l + 1;
            }
            break;
        case 3:
            if (l) {
                pos %= l;
                memmove(buf + pos, buf + pos + 1, l - pos - 1);
                *len = l - 1;
            }
            break;
        case 4:
            *len = pos % (l + 1);
            break;
        default:
            if (l < cap)
                buf[(*len)++] = val;
            break;
        }
    }
}

/* EDHOC_KDF info = (label, bstr context, length). */
static inline size_t ef_info(uint8_t *info, size_t cap, int64_t label, const cl_buf_t *ctx,
                             size_t len)
{
    cl_cbor_enc_t e;
    size_t n;
    cl_cbor_enc_init(&e, info, cap);
    cl_cbor_enc_int(&e, label);
    cl_cbor_enc_bstr(&e, ctx->p, ctx->len);
    cl_cbor_enc_uint(&e, len);
    EF_CHECK(cl_cbor_enc_finish(&e, &n) == CL_OK);
    return n;
}

/*
 * message_2 of trace t carrying the plaintext pt: G_Y of the trace and
 * pt XOR KEYSTREAM_2 (from the trace's PRK_2e and TH_2, which depend on G_X
 * and G_Y only). Returns the length, 0 if it does not fit.
 */
static inline size_t ef_seal_m2(const ef_trace_t *t, const uint8_t *pt, size_t pt_len,
                                uint8_t *out, size_t cap)
{
    const cl_crypto_t *c = &ef_p()->real;
    uint8_t info[64], ks[2048];
    cl_cbor_enc_t e;
    size_t head, n;
    if (pt_len > sizeof ks)
        return 0;
    n = ef_info(info, sizeof info, 0, &t->th2, pt_len);
    if (pt_len > 0)
        EF_CHECK(cl_hkdf_expand(c, t->prk2e.p, t->prk2e.len, info, n, ks, pt_len) == CL_OK);
    cl_cbor_enc_init(&e, out, cap);
    cl_cbor_enc_bstr_head(&e, t->g_y.len + pt_len);
    cl_cbor_enc_raw(&e, t->g_y.p, t->g_y.len);
    if (cl_cbor_enc_finish(&e, &head) != CL_OK || cap - head < pt_len)
        return 0;
    for (size_t i = 0; i < pt_len; i++)
        out[head + i] = (uint8_t)(pt[i] ^ ks[i]);
    return head + pt_len;
}

/* message_3 (which = 3) or message_4 (which = 4) of trace t carrying plaintext pt. */
static inline size_t ef_seal_m34(const ef_trace_t *t, int which, const uint8_t *pt, size_t pt_len,
                                 uint8_t *out, size_t cap)
{
    const cl_crypto_t *c = &ef_p()->real;
    const cl_buf_t *k = which == 3 ? &t->k3 : &t->k4, *iv = which == 3 ? &t->iv3 : &t->iv4,
                   *a = which == 3 ? &t->a3 : &t->a4;
    cl_key_t key;
    size_t head = cl_cbor_head_size(pt_len + 8), ct_len;
    cl_cbor_enc_t e;
    if (cap < head + pt_len + 8)
        return 0;
    /* suites 0 and 2 both use AES-CCM-16-64-128 */
    EF_CHECK(cl_aead_import(c, CL_AEAD_AES_CCM_16_64_128, k->p, k->len, &key) == CL_OK);
    cl_status_t st = cl_aead_encrypt(c, key, iv->p, iv->len, a->p, a->len, pt, pt_len,
                                     out + head, cap - head, &ct_len);
    cl_key_destroy(c, key);
    EF_CHECK(st == CL_OK && ct_len == pt_len + 8);
    cl_cbor_enc_init(&e, out, head);
    cl_cbor_enc_bstr_head(&e, ct_len);
    EF_CHECK(cl_cbor_enc_finish(&e, &head) == CL_OK);
    return head + ct_len;
}

/* ------------------------------------------------------------------ */
/* Checks                                                              */
/* ------------------------------------------------------------------ */

/**
 * cl_edhoc_error_message after a failure `why`: succeeds, is a CBOR sequence
 * (ERR_CODE int, ERR_INFO) of the documented kind, and is refused (not
 * overrun) with a buffer one byte too small.
 */
static inline void ef_check_error_message(const cl_edhoc_t *s, cl_status_t why)
{
    uint8_t out[256];
    size_t len = 0, count;
    EF_CHECK(why != CL_OK);
    if (why == CL_ERR_PEER_ERROR) { /* never answer an error with an error (section 6) */
        EF_CHECK(cl_edhoc_error_message(s, why, out, sizeof out, &len) == CL_ERR_STATE);
        return;
    }
    EF_CHECK(cl_edhoc_error_message(s, why, out, sizeof out, &len) == CL_OK);
    EF_CHECK(len >= 2 && len <= sizeof out);
    EF_CHECK(cl_edhoc_is_error(out, len));
    EF_CHECK(cl_cbor_validate_seq(out, len, &count) == CL_OK && count == 2);
    cl_cbor_dec_t d;
    int64_t code;
    cl_cbor_dec_init(&d, out, len);
    EF_CHECK(cl_cbor_dec_int(&d, &code) == CL_OK);
    if (why == CL_ERR_NOT_FOUND) {
        EF_CHECK(len == 2 && out[0] == 0x03 && out[1] == 0xf5);
    } else if (why == CL_ERR_UNSUPPORTED && s != NULL && s->role == CL_EDHOC_RESPONDER &&
               s->suite < 0) {
        /* the selected suite was refused (a refused method leaves s->suite set: error 1) */
        EF_CHECK(code == CL_EDHOC_ERR_WRONG_SUITE);
        size_t n = 1;
        cl_cbor_type_t t;
        EF_CHECK(cl_cbor_dec_peek(&d, &t) == CL_OK);
        if (t == CL_CBOR_ARRAY)
            EF_CHECK(cl_cbor_dec_array(&d, &n) == CL_OK && n >= 2);
        EF_CHECK(n == s->cfg->n_suites);
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            EF_CHECK(cl_cbor_dec_int(&d, &v) == CL_OK && v == s->cfg->suites[i]);
        }
    } else {
        const char *txt;
        size_t txt_len;
        EF_CHECK(code == CL_EDHOC_ERR_UNSPECIFIED);
        EF_CHECK(cl_cbor_dec_tstr(&d, &txt, &txt_len) == CL_OK);
        EF_CHECK(ef_eq((const uint8_t *)txt, txt_len, (const uint8_t *)cl_status_str(why),
                       strlen(cl_status_str(why))));
    }
    /* one byte short: refused, nothing written past the end (ASan-sized buffer) */
    uint8_t *small = malloc(len - 1);
    size_t len2 = 0;
    EF_CHECK(small != NULL);
    EF_CHECK(cl_edhoc_error_message(s, why, small, len - 1, &len2) == CL_ERR_BUFFER_TOO_SMALL);
    free(small);
}

/**
 * After a failed step: the session is aborted. Its ephemeral key is gone,
 * its PRKs are wiped, no result is available, and every protocol call
 * (including the one that would have been valid next, with a genuine
 * message) is CL_ERR_STATE. `msg` is any message to offer to the process
 * calls (typically the genuine one for this step).
 */
static inline void ef_check_aborted(cl_edhoc_t *s, cl_status_t why, const uint8_t *msg,
                                    size_t msg_len)
{
    uint8_t out[512], ms[16], salt[8], exp[16];
    size_t len;
    cl_oscore_params_t op;
    static const uint8_t dummy[1] = {0x40};
    if (msg == NULL || msg_len == 0) {
        msg = dummy;
        msg_len = sizeof dummy;
    }
    EF_CHECK(why != CL_OK);
    EF_CHECK(s->eph == CL_KEY_NONE);
    EF_CHECK(ef_all_zero(s->prk_3e2m, sizeof s->prk_3e2m));
    EF_CHECK(ef_all_zero(s->prk_4e3m, sizeof s->prk_4e3m));
    EF_CHECK(ef_all_zero(s->prk_out, sizeof s->prk_out));
    EF_CHECK(ef_all_zero(s->prk_exporter, sizeof s->prk_exporter));
    ef_check_error_message(s, why);
    EF_CHECK(cl_edhoc_message_1(s, 0, 0, NULL, 0, out, sizeof out, &len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_process_message_1(s, msg, msg_len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_message_2(s, NULL, 0, out, sizeof out, &len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_process_message_2(s, msg, msg_len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_message_3(s, NULL, 0, out, sizeof out, &len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_process_message_3(s, msg, msg_len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_message_4(s, NULL, 0, out, sizeof out, &len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_process_message_4(s, msg, msg_len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_exporter(s, 0, NULL, 0, exp, sizeof exp) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_key_update(s, NULL, 0) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_oscore_params(s, ms, salt, &op) != CL_OK);
    EF_CHECK(cl_edhoc_set_cid(s, (const uint8_t *)"\x01", 1) == CL_ERR_STATE);
    EF_CHECK(s->eph == CL_KEY_NONE);
}

/**
 * The responder's message_2 refuses C_R = C_I without aborting (RFC 9528
 * 3.3.3): then pick another C_R with cl_edhoc_set_cid and ask again. Returns
 * the status of the (final) call; checks the refusal happens exactly then.
 */
static inline cl_status_t ef_message_2(cl_edhoc_t *s, const uint8_t *ead, size_t ead_len,
                                       uint8_t *out, size_t out_size, size_t *out_len)
{
    bool same = ef_eq(s->c_i, s->c_i_len, s->c_r, s->c_r_len);
    ef_arm(true);
    cl_status_t st = cl_edhoc_message_2(s, ead, ead_len, out, out_size, out_len);
    ef_arm(false);
    EF_TRACE("cl_edhoc_message_2", st);
    if (!same) {
        EF_CHECK(st != CL_ERR_INVALID_ARG);
        return st;
    }
    EF_CHECK(st == CL_ERR_INVALID_ARG); /* refused before anything happened */
    uint8_t other = s->c_i_len == 1 ? (uint8_t)(s->c_i[0] ^ 0x01) : 0x01;
    EF_CHECK(cl_edhoc_set_cid(s, &other, 1) == CL_OK);
    ef_arm(true);
    st = cl_edhoc_message_2(s, ead, ead_len, out, out_size, out_len);
    ef_arm(false);
    EF_CHECK(st != CL_ERR_INVALID_ARG);
    return st;
}

/**
 * After a completed handshake (responder: message_3 verified; initiator:
 * message_4 verified): the ephemeral key is gone and no protocol step but
 * the responder's optional message_4 is possible.
 */
static inline void ef_check_done(cl_edhoc_t *s, const uint8_t *msg, size_t msg_len)
{
    uint8_t out[512];
    size_t len;
    EF_CHECK(s->eph == CL_KEY_NONE);
    EF_CHECK(cl_edhoc_message_1(s, 0, 0, NULL, 0, out, sizeof out, &len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_process_message_1(s, msg, msg_len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_message_2(s, NULL, 0, out, sizeof out, &len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_process_message_2(s, msg, msg_len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_message_3(s, NULL, 0, out, sizeof out, &len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_process_message_3(s, msg, msg_len) == CL_ERR_STATE);
    EF_CHECK(cl_edhoc_process_message_4(s, msg, msg_len) == CL_ERR_STATE);
}

/* The status a genuine message gets when the callback refuses, or CL_OK. */
static inline cl_status_t ef_cb_status(void)
{
    switch (ef_w()->cb_mode) {
    case EF_CB_UNKNOWN:
        return CL_ERR_NOT_FOUND;
    case EF_CB_UNTRUSTED:
    case EF_CB_WRONG_KEY:
        return CL_ERR_AUTH;
    case EF_CB_HUGE_CRED:
    case EF_CB_NO_CRED:
        return CL_ERR_LIMIT;
    default:
        return CL_OK;
    }
}

/* A received error message: the code is recorded (and SUITES_R for code 2). */
static inline void ef_check_peer_error(const cl_edhoc_t *s, cl_status_t st, const uint8_t *msg,
                                       size_t len)
{
    if (!cl_edhoc_is_error(msg, len)) {
        EF_CHECK(st != CL_ERR_PEER_ERROR);
        return;
    }
    EF_CHECK(st == CL_ERR_PEER_ERROR || st == CL_ERR_BAD_INPUT || st == CL_ERR_STATE);
    if (st != CL_ERR_PEER_ERROR)
        return;
    cl_cbor_dec_t d;
    int64_t code;
    cl_cbor_dec_init(&d, msg, len);
    EF_CHECK(cl_cbor_dec_int(&d, &code) == CL_OK);
    EF_CHECK(code != 0 && s->peer_err == code);
    /* accepted error messages are exactly (ERR_CODE, ERR_INFO) with the typed ERR_INFO */
    size_t items;
    EF_CHECK(cl_cbor_validate_seq(msg, len, &items) == CL_OK && items == 2);
    if (code == CL_EDHOC_ERR_UNKNOWN_CRED)
        EF_CHECK(len == 2 && msg[1] == 0xf5);
    if (code != CL_EDHOC_ERR_WRONG_SUITE)
        return;
    int8_t ref[CL_EDHOC_MAX_SUITES];
    size_t n_ref = 0, n = 1;
    cl_cbor_type_t t;
    EF_CHECK(cl_cbor_dec_peek(&d, &t) == CL_OK);
    if (t == CL_CBOR_ARRAY)
        EF_CHECK(cl_cbor_dec_array(&d, &n) == CL_OK);
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        EF_CHECK(cl_cbor_dec_int(&d, &v) == CL_OK);
        if (n_ref < CL_EDHOC_MAX_SUITES && v >= INT8_MIN && v <= INT8_MAX)
            ref[n_ref++] = (int8_t)v;
    }
    EF_CHECK(s->n_suites_peer == n_ref);
    EF_CHECK(n_ref == 0 || memcmp(s->suites_peer, ref, n_ref) == 0);
}

/** The OSCORE parameters of two finished peers mirror each other. */
static inline void ef_check_pair(const cl_edhoc_t *i, const cl_edhoc_t *r)
{
    uint8_t ms_i[16], salt_i[8], ms_r[16], salt_r[8], e_i[24], e_r[24];
    cl_oscore_params_t pi, pr;
    EF_CHECK(cl_edhoc_oscore_params(i, ms_i, salt_i, &pi) == CL_OK);
    EF_CHECK(cl_edhoc_oscore_params(r, ms_r, salt_r, &pr) == CL_OK);
    EF_CHECK(memcmp(ms_i, ms_r, 16) == 0 && memcmp(salt_i, salt_r, 8) == 0);
    EF_CHECK(pi.aead == pr.aead);
    EF_CHECK(ef_eq(pi.sender_id, pi.sender_id_len, pr.recipient_id, pr.recipient_id_len));
    EF_CHECK(ef_eq(pi.recipient_id, pi.recipient_id_len, pr.sender_id, pr.sender_id_len));
    EF_CHECK(cl_edhoc_exporter(i, 77, (const uint8_t *)"ctx", 3, e_i, sizeof e_i) == CL_OK);
    EF_CHECK(cl_edhoc_exporter(r, 77, (const uint8_t *)"ctx", 3, e_r, sizeof e_r) == CL_OK);
    EF_CHECK(memcmp(e_i, e_r, sizeof e_i) == 0);
    EF_CHECK(memcmp(i->prk_out, r->prk_out, 32) == 0);
    const uint8_t *ci_i, *cr_i, *ci_r, *cr_r;
    size_t ci_i_len, cr_i_len, ci_r_len, cr_r_len;
    cl_edhoc_cids(i, &ci_i, &ci_i_len, &cr_i, &cr_i_len);
    cl_edhoc_cids(r, &ci_r, &ci_r_len, &cr_r, &cr_r_len);
    EF_CHECK(ef_eq(ci_i, ci_i_len, ci_r, ci_r_len) && ef_eq(cr_i, cr_i_len, cr_r, cr_r_len));
    EF_CHECK(!ef_eq(ci_i, ci_i_len, cr_i, cr_i_len)); /* RFC 9528 3.3.3 */
}

/** EDHOC_KeyUpdate on copies of two finished peers: they stay in agreement. */
static inline void ef_check_key_update(const cl_edhoc_t *i, const cl_edhoc_t *r)
{
    cl_edhoc_t ci = *i, cr = *r; /* finished sessions hold no key handle */
    uint8_t e_i[16], e_r[16];
    EF_CHECK(ci.eph == CL_KEY_NONE && cr.eph == CL_KEY_NONE);
    EF_CHECK(cl_edhoc_key_update(&ci, (const uint8_t *)"nonce", 5) == CL_OK);
    EF_CHECK(cl_edhoc_key_update(&cr, (const uint8_t *)"nonce", 5) == CL_OK);
    EF_CHECK(memcmp(ci.prk_out, cr.prk_out, 32) == 0 && memcmp(ci.prk_out, i->prk_out, 32) != 0);
    EF_CHECK(cl_edhoc_exporter(&ci, 0, NULL, 0, e_i, sizeof e_i) == CL_OK);
    EF_CHECK(cl_edhoc_exporter(&cr, 0, NULL, 0, e_r, sizeof e_r) == CL_OK);
    EF_CHECK(memcmp(e_i, e_r, sizeof e_i) == 0);
    cl_edhoc_free(&ci);
    cl_edhoc_free(&cr);
}

#endif
