/*
 * hpke.c - HPKE (RFC 9180): DHKEM(P-256 / X25519, HKDF-SHA256), HKDF-SHA256,
 * AES-128-GCM / ChaCha20-Poly1305 / export-only; modes base, psk, auth,
 * auth_psk; contexts, single-shot calls, secret export, DeriveKeyPair.
 *
 * What: the RFC's pseudocode over the crypto provider table. LabeledExtract
 * and LabeledExpand build "HPKE-v1" || suite_id || label || input in a stack
 * buffer and call the provider's hkdf_extract / hkdf_expand, so a provider
 * that keeps HKDF somewhere else sees the RFC's exact KDF calls. The DHKEM
 * uses the KEM's suite_id ("KEM" || kem_id), the key schedule and Export
 * the ciphersuite's ("HPKE" || kem_id || kdf_id || aead_id).
 *
 * Keys: the recipient's and the sender's static keys are provider handles;
 * their public halves (pkRm, pkSm in kem_context) come from
 * key_export_public, whose length and form also tell whether the handle is a
 * key of the KEM's curve (a P-256 handle exports 65 bytes, an X25519 one 32;
 * an Ed25519 handle exports 32 but has no ECDH usage and is refused by the
 * provider's ecdh). The ephemeral key is generated in the provider and
 * destroyed before setup returns. The AEAD key is imported into the provider
 * and the context keeps the handle.
 *
 * Validation: public keys must be exactly Npk bytes, P-256 ones start with
 * 0x04 (the provider would otherwise also accept its compressed and x-only
 * forms, which HPKE's DeserializePublicKey does not); the provider's ecdh
 * decodes them and refuses points off the curve or out of range. The
 * all-zero X25519 output is refused here too, with a branch only on the
 * OR of all bytes (RFC 9180 7.1.4; the OpenSSL provider refuses it as well,
 * other providers may not).
 *
 * Secrets on the stack (DH outputs, shared_secret, secret, the AEAD key
 * bytes, the label buffers that held DH outputs, PSKs or ikm, per-message
 * nonces, DeriveKeyPair scalars) are wiped on every path; a setup that
 * fails frees the context it was given.
 */
#include "cloister/hpke.h"

#include <string.h>

#define ROLE_NONE 0
#define ROLE_S 1
#define ROLE_R 2

#define NDH 32     /* Ndh of both DH groups */
#define NSECRET 32 /* Nsecret of both KEMs */
#define NSK 32     /* Nsk of both KEMs */
#define PSK_MIN 32 /* RFC 9180 5.1.2: at least 32 bytes of entropy */
#define KEM_SID_LEN 5
#define HPKE_SID_LEN 10
#define VERSION_LEN 7 /* "HPKE-v1" */
#define LABEL_MAX 13  /* "shared_secret" */

_Static_assert(CL_HPKE_MAX_INPUT >= 32, "CL_HPKE_MAX_INPUT must allow 32-byte PSKs and ikm");

/* Largest ikm of LabeledExtract: a caller input or the auth modes' two DH outputs. */
#define EXTRACT_IN_MAX (CL_HPKE_MAX_INPUT > 2 * NDH ? CL_HPKE_MAX_INPUT : 2 * NDH)
/* Largest info of LabeledExpand: exporter_context or kem_context (enc || pkRm || pkSm). */
#define EXPAND_IN_MAX                                                                              \
    (CL_HPKE_MAX_INPUT > 3 * CL_HPKE_MAX_ENC ? CL_HPKE_MAX_INPUT : 3 * CL_HPKE_MAX_ENC)

static const uint8_t version_label[VERSION_LEN] = {'H', 'P', 'K', 'E', '-', 'v', '1'};

/* Order of the P-256 group, big-endian (RFC 9180 7.1.3). */
static const uint8_t p256_order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};

typedef struct kem_info {
    uint16_t id;
    cl_key_type_t type;
    uint8_t npk; /* Npk = Nenc */
} kem_info_t;

static const kem_info_t kems[] = {
    {CL_HPKE_KEM_P256_SHA256, CL_KEY_P256, 65},
    {CL_HPKE_KEM_X25519_SHA256, CL_KEY_X25519, 32},
};

static const kem_info_t *kem_of(uint16_t id)
{
    for (size_t i = 0; i < sizeof kems / sizeof kems[0]; i++)
        if (kems[i].id == id)
            return &kems[i];
    return NULL;
}

/* The provider AEAD of an HPKE AEAD id; *alg = 0 for export-only. */
static cl_status_t aead_of(uint16_t id, cl_aead_alg_t *alg)
{
    switch (id) {
    case CL_HPKE_AEAD_AES_128_GCM: *alg = CL_AEAD_A128GCM; break;
    case CL_HPKE_AEAD_CHACHA20_POLY1305: *alg = CL_AEAD_CHACHA20_POLY1305; break;
    case CL_HPKE_AEAD_EXPORT_ONLY: *alg = (cl_aead_alg_t)0; break;
    default: return CL_FAIL(CL_ERR_UNSUPPORTED);
    }
    return CL_OK;
}

cl_status_t cl_hpke_suite_supported(const cl_hpke_suite_t *suite)
{
    cl_aead_alg_t alg;

    if (suite == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (kem_of(suite->kem_id) == NULL || suite->kdf_id != CL_HPKE_KDF_HKDF_SHA256)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    return aead_of(suite->aead_id, &alg);
}

size_t cl_hpke_enc_len(uint16_t kem_id)
{
    const kem_info_t *k = kem_of(kem_id);
    return k != NULL ? k->npk : 0;
}

/* ------------------------------------------------------------ labeled KDF */

static void kem_suite_id(uint8_t sid[KEM_SID_LEN], uint16_t kem_id)
{
    sid[0] = 'K';
    sid[1] = 'E';
    sid[2] = 'M';
    sid[3] = (uint8_t)(kem_id >> 8);
    sid[4] = (uint8_t)kem_id;
}

static void hpke_suite_id(uint8_t sid[HPKE_SID_LEN], const cl_hpke_suite_t *s)
{
    sid[0] = 'H';
    sid[1] = 'P';
    sid[2] = 'K';
    sid[3] = 'E';
    sid[4] = (uint8_t)(s->kem_id >> 8);
    sid[5] = (uint8_t)s->kem_id;
    sid[6] = (uint8_t)(s->kdf_id >> 8);
    sid[7] = (uint8_t)s->kdf_id;
    sid[8] = (uint8_t)(s->aead_id >> 8);
    sid[9] = (uint8_t)s->aead_id;
}

/* Appends "HPKE-v1" || suite_id || label to buf at *n. */
static void put_labels(uint8_t *buf, size_t *n, const uint8_t *sid, size_t sid_len,
                       const char *label)
{
    size_t ll = strlen(label);

    memcpy(buf + *n, version_label, VERSION_LEN);
    *n += VERSION_LEN;
    memcpy(buf + *n, sid, sid_len);
    *n += sid_len;
    memcpy(buf + *n, label, ll);
    *n += ll;
}

/* LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm). */
static cl_status_t labeled_extract(const cl_crypto_t *c, const uint8_t *sid, size_t sid_len,
                                   const uint8_t *salt, size_t salt_len, const char *label,
                                   const uint8_t *ikm, size_t ikm_len,
                                   uint8_t prk[CL_HPKE_HASH_LEN])
{
    uint8_t buf[VERSION_LEN + HPKE_SID_LEN + LABEL_MAX + EXTRACT_IN_MAX];
    size_t n = 0;
    cl_status_t rc;

    if (ikm_len > EXTRACT_IN_MAX || strlen(label) > LABEL_MAX || sid_len > HPKE_SID_LEN)
        return CL_FAIL(CL_ERR_LIMIT);
    put_labels(buf, &n, sid, sid_len, label);
    if (ikm_len != 0)
        memcpy(buf + n, ikm, ikm_len);
    n += ikm_len;
    rc = cl_hkdf_extract(c, salt, salt_len, buf, n, prk);
    cl_wipe(buf, n);
    return rc;
}

/*
 * LabeledExpand(prk, label, info, L) =
 *   Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L).
 */
static cl_status_t labeled_expand(const cl_crypto_t *c, const uint8_t *sid, size_t sid_len,
                                  const uint8_t prk[CL_HPKE_HASH_LEN], const char *label,
                                  const uint8_t *info, size_t info_len, uint8_t *out, size_t len)
{
    uint8_t buf[2 + VERSION_LEN + HPKE_SID_LEN + LABEL_MAX + EXPAND_IN_MAX];
    size_t n = 2;
    cl_status_t rc;

    if (info_len > EXPAND_IN_MAX || strlen(label) > LABEL_MAX || sid_len > HPKE_SID_LEN)
        return CL_FAIL(CL_ERR_LIMIT);
    if (len > CL_HPKE_MAX_EXPORT)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    buf[0] = (uint8_t)(len >> 8);
    buf[1] = (uint8_t)len;
    put_labels(buf, &n, sid, sid_len, label);
    if (info_len != 0)
        memcpy(buf + n, info, info_len);
    n += info_len;
    rc = cl_hkdf_expand(c, prk, CL_HPKE_HASH_LEN, buf, n, out, len);
    cl_wipe(buf, n);
    return rc;
}

/* ------------------------------------------------------------------ DHKEM */

/* Checks the form of a serialized public key (DeserializePublicKey, 7.1.1). */
static cl_status_t check_pub(const kem_info_t *kem, const uint8_t *pub, size_t len)
{
    if (pub == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (len != kem->npk || (kem->type == CL_KEY_P256 && pub[0] != 0x04))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return CL_OK;
}

/* SerializePublicKey(pk(sk)) of one of our handles; a handle of another type is INVALID_ARG. */
static cl_status_t own_pub(const cl_crypto_t *c, const kem_info_t *kem, cl_key_t sk,
                           uint8_t pub[CL_HPKE_MAX_ENC])
{
    size_t l = 0;
    cl_status_t rc;

    if (sk == CL_KEY_NONE)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = c->ops->key_export_public(c->self, sk, pub, CL_HPKE_MAX_ENC, &l)) != CL_OK)
        return rc;
    if (l != kem->npk || (kem->type == CL_KEY_P256 && pub[0] != 0x04))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return CL_OK;
}

/* DH(sk, pk): the provider's ECDH, plus the all-zero check for X25519 (7.1.4). */
static cl_status_t dh(const cl_crypto_t *c, const kem_info_t *kem, cl_key_t sk, const uint8_t *peer,
                      size_t peer_len, uint8_t out[NDH])
{
    size_t l = 0;
    unsigned acc = 0;
    cl_status_t rc;

    rc = c->ops->ecdh(c->self, sk, peer, peer_len, out, NDH, &l);
    if (rc == CL_OK && l != NDH)
        rc = CL_FAIL(CL_ERR_CRYPTO);
    if (rc == CL_OK && kem->type == CL_KEY_X25519) {
        for (size_t i = 0; i < NDH; i++)
            acc |= out[i];
        /* 1 when some byte is non-zero: the only branch is on that verdict. */
        if (((acc + 0xffu) >> 8) == 0)
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (rc != CL_OK)
        cl_wipe(out, NDH);
    return rc;
}

/* ExtractAndExpand(dh, kem_context) with the KEM's suite_id. */
static cl_status_t extract_and_expand(const cl_crypto_t *c, uint16_t kem_id, const uint8_t *dhv,
                                      size_t dh_len, const uint8_t *kem_ctx, size_t kem_ctx_len,
                                      uint8_t ss[NSECRET])
{
    uint8_t sid[KEM_SID_LEN];
    uint8_t prk[CL_HPKE_HASH_LEN];
    cl_status_t rc;

    kem_suite_id(sid, kem_id);
    rc = labeled_extract(c, sid, sizeof sid, NULL, 0, "eae_prk", dhv, dh_len, prk);
    if (rc == CL_OK)
        rc = labeled_expand(c, sid, sizeof sid, prk, "shared_secret", kem_ctx, kem_ctx_len, ss,
                            NSECRET);
    cl_wipe(prk, sizeof prk);
    return rc;
}

/* ----------------------------------------------------------- key schedule */

/*
 * Common checks of a setup: provider, suite, mode, lengths, VerifyPSKInputs.
 * *kem and *alg describe the suite on success.
 */
static cl_status_t check_params(const cl_crypto_t *c, const cl_hpke_params_t *p,
                                const kem_info_t **kem, cl_aead_alg_t *alg)
{
    cl_status_t rc;
    int got_psk, got_psk_id, psk_mode;

    if (c == NULL || c->ops == NULL || p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = cl_hpke_suite_supported(&p->suite)) != CL_OK)
        return rc;
    if (p->mode > CL_HPKE_MODE_AUTH_PSK)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if ((p->info == NULL && p->info_len != 0) || (p->psk == NULL && p->psk_len != 0) ||
        (p->psk_id == NULL && p->psk_id_len != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (p->info_len > CL_HPKE_MAX_INPUT || p->psk_len > CL_HPKE_MAX_INPUT ||
        p->psk_id_len > CL_HPKE_MAX_INPUT)
        return CL_FAIL(CL_ERR_LIMIT);
    /* VerifyPSKInputs (5.1); the default psk and psk_id are the empty strings. */
    got_psk = p->psk_len != 0;
    got_psk_id = p->psk_id_len != 0;
    psk_mode = p->mode == CL_HPKE_MODE_PSK || p->mode == CL_HPKE_MODE_AUTH_PSK;
    if (got_psk != got_psk_id || got_psk != psk_mode || (got_psk && p->psk_len < PSK_MIN))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *kem = kem_of(p->suite.kem_id);
    return aead_of(p->suite.aead_id, alg);
}

static int is_auth(uint8_t mode)
{
    return mode == CL_HPKE_MODE_AUTH || mode == CL_HPKE_MODE_AUTH_PSK;
}

/* KeySchedule<ROLE>: fills ctx (whose crypto is set) from shared_secret. */
static cl_status_t key_schedule(cl_hpke_ctx_t *ctx, const cl_hpke_params_t *p, cl_aead_alg_t alg,
                                const uint8_t ss[NSECRET], uint8_t role)
{
    const cl_crypto_t *c = ctx->crypto;
    uint8_t sid[HPKE_SID_LEN];
    uint8_t ksc[1 + 2 * CL_HPKE_HASH_LEN]; /* key_schedule_context */
    uint8_t secret[CL_HPKE_HASH_LEN];
    uint8_t key[CL_AEAD_MAX_KEY];
    size_t nk = 0, nn = 0, nt = 0;
    cl_status_t rc;

    hpke_suite_id(sid, &p->suite);
    ksc[0] = p->mode;
    if ((rc = labeled_extract(c, sid, sizeof sid, NULL, 0, "psk_id_hash", p->psk_id, p->psk_id_len,
                              ksc + 1)) != CL_OK ||
        (rc = labeled_extract(c, sid, sizeof sid, NULL, 0, "info_hash", p->info, p->info_len,
                              ksc + 1 + CL_HPKE_HASH_LEN)) != CL_OK ||
        (rc = labeled_extract(c, sid, sizeof sid, ss, NSECRET, "secret", p->psk, p->psk_len,
                              secret)) != CL_OK)
        goto done;
    if (p->suite.aead_id != CL_HPKE_AEAD_EXPORT_ONLY) {
        if ((rc = cl_aead_params(alg, &nk, &nn, &nt)) != CL_OK)
            goto done;
        if (nk > sizeof key || nn != CL_HPKE_NONCE_LEN || nt != CL_HPKE_TAG_LEN) {
            rc = CL_FAIL(CL_ERR_UNSUPPORTED);
            goto done;
        }
        if ((rc = labeled_expand(c, sid, sizeof sid, secret, "key", ksc, sizeof ksc, key, nk)) !=
                CL_OK ||
            (rc = labeled_expand(c, sid, sizeof sid, secret, "base_nonce", ksc, sizeof ksc,
                                 ctx->base_nonce, nn)) != CL_OK ||
            (rc = cl_aead_import(c, alg, key, nk, &ctx->key)) != CL_OK)
            goto done;
    }
    if ((rc = labeled_expand(c, sid, sizeof sid, secret, "exp", ksc, sizeof ksc,
                             ctx->exporter_secret, CL_HPKE_HASH_LEN)) != CL_OK)
        goto done;
    ctx->suite = p->suite;
    ctx->mode = p->mode;
    memset(ctx->seq, 0, sizeof ctx->seq);
    ctx->role = role;

done:
    cl_wipe(secret, sizeof secret);
    cl_wipe(key, sizeof key);
    return rc;
}

/* ------------------------------------------------------------------ setup */

static cl_status_t setup_s(cl_hpke_ctx_t *ctx, const cl_crypto_t *c, const cl_hpke_params_t *p,
                           const uint8_t *pk_r, size_t pk_r_len, cl_key_t fixed_eph, uint8_t *enc,
                           size_t enc_size, size_t *enc_len)
{
    const kem_info_t *kem = NULL;
    cl_aead_alg_t alg = (cl_aead_alg_t)0;
    cl_key_t eph = CL_KEY_NONE, made = CL_KEY_NONE;
    uint8_t dhv[2 * NDH];
    uint8_t kem_ctx[3 * CL_HPKE_MAX_ENC]; /* enc || pkRm || pkSm */
    uint8_t ss[NSECRET];
    size_t npk, n, l = 0;
    cl_status_t rc;

    if (ctx == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    memset(ctx, 0, sizeof *ctx);
    if ((rc = check_params(c, p, &kem, &alg)) != CL_OK)
        goto done;
    ctx->crypto = c;
    npk = kem->npk;
    if (enc == NULL || (is_auth(p->mode) && p->sender_key == CL_KEY_NONE)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (enc_size < npk) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    if ((rc = check_pub(kem, pk_r, pk_r_len)) != CL_OK)
        goto done;
    /* skE, pkE = GenerateKeyPair(); enc = SerializePublicKey(pkE) */
    if (fixed_eph != CL_KEY_NONE) {
        eph = fixed_eph;
        rc = own_pub(c, kem, eph, kem_ctx);
    } else {
        rc = c->ops->key_generate(c->self, kem->type, CL_KEY_USAGE_ECDH, &made, kem_ctx, npk, &l);
        eph = made;
        if (rc == CL_OK && l != npk)
            rc = CL_FAIL(CL_ERR_CRYPTO);
    }
    if (rc != CL_OK)
        goto done;
    memcpy(kem_ctx + npk, pk_r, npk);
    n = 2 * npk;
    if ((rc = dh(c, kem, eph, pk_r, npk, dhv)) != CL_OK)
        goto done;
    if (is_auth(p->mode)) {
        if ((rc = own_pub(c, kem, p->sender_key, kem_ctx + n)) != CL_OK ||
            (rc = dh(c, kem, p->sender_key, pk_r, npk, dhv + NDH)) != CL_OK)
            goto done;
        n += npk;
    }
    if ((rc = extract_and_expand(c, kem->id, dhv, is_auth(p->mode) ? 2 * NDH : NDH, kem_ctx, n,
                                 ss)) != CL_OK ||
        (rc = key_schedule(ctx, p, alg, ss, ROLE_S)) != CL_OK)
        goto done;
    memcpy(enc, kem_ctx, npk);
    if (enc_len != NULL)
        *enc_len = npk;

done:
    if (made != CL_KEY_NONE)
        cl_key_destroy(c, made);
    cl_wipe(dhv, sizeof dhv);
    cl_wipe(ss, sizeof ss);
    if (rc != CL_OK)
        cl_hpke_ctx_free(ctx);
    return rc;
}

cl_status_t cl_hpke_setup_s(cl_hpke_ctx_t *ctx, const cl_crypto_t *c, const cl_hpke_params_t *p,
                            const uint8_t *pk_r, size_t pk_r_len, uint8_t *enc, size_t enc_size,
                            size_t *enc_len)
{
    return setup_s(ctx, c, p, pk_r, pk_r_len, CL_KEY_NONE, enc, enc_size, enc_len);
}

cl_status_t cl_hpke_test_setup_s(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_params_t *p, const uint8_t *pk_r, size_t pk_r_len,
                                 cl_key_t sk_e, uint8_t *enc, size_t enc_size, size_t *enc_len)
{
    if (sk_e == CL_KEY_NONE) {
        if (ctx != NULL)
            memset(ctx, 0, sizeof *ctx);
        return CL_FAIL(CL_ERR_INVALID_ARG);
    }
    return setup_s(ctx, c, p, pk_r, pk_r_len, sk_e, enc, enc_size, enc_len);
}

cl_status_t cl_hpke_setup_r(cl_hpke_ctx_t *ctx, const cl_crypto_t *c, const cl_hpke_params_t *p,
                            cl_key_t sk_r, const uint8_t *enc, size_t enc_len)
{
    const kem_info_t *kem = NULL;
    cl_aead_alg_t alg = (cl_aead_alg_t)0;
    uint8_t dhv[2 * NDH];
    uint8_t kem_ctx[3 * CL_HPKE_MAX_ENC]; /* enc || pkRm || pkSm */
    uint8_t ss[NSECRET];
    size_t npk, n;
    cl_status_t rc;

    if (ctx == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    memset(ctx, 0, sizeof *ctx);
    if ((rc = check_params(c, p, &kem, &alg)) != CL_OK)
        goto done;
    ctx->crypto = c;
    npk = kem->npk;
    if (is_auth(p->mode) && p->sender_pub == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    /* pkE = DeserializePublicKey(enc) */
    if ((rc = check_pub(kem, enc, enc_len)) != CL_OK)
        goto done;
    if (is_auth(p->mode) && (rc = check_pub(kem, p->sender_pub, p->sender_pub_len)) != CL_OK)
        goto done;
    memcpy(kem_ctx, enc, npk);
    if ((rc = own_pub(c, kem, sk_r, kem_ctx + npk)) != CL_OK)
        goto done;
    n = 2 * npk;
    if ((rc = dh(c, kem, sk_r, enc, npk, dhv)) != CL_OK)
        goto done;
    if (is_auth(p->mode)) {
        memcpy(kem_ctx + n, p->sender_pub, npk);
        n += npk;
        if ((rc = dh(c, kem, sk_r, p->sender_pub, npk, dhv + NDH)) != CL_OK)
            goto done;
    }
    if ((rc = extract_and_expand(c, kem->id, dhv, is_auth(p->mode) ? 2 * NDH : NDH, kem_ctx, n,
                                 ss)) != CL_OK)
        goto done;
    rc = key_schedule(ctx, p, alg, ss, ROLE_R);

done:
    cl_wipe(dhv, sizeof dhv);
    cl_wipe(ss, sizeof ss);
    if (rc != CL_OK)
        cl_hpke_ctx_free(ctx);
    return rc;
}

cl_status_t cl_hpke_setup_base_s(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_suite_t *suite, const uint8_t *pk_r, size_t pk_r_len,
                                 const uint8_t *info, size_t info_len, uint8_t *enc,
                                 size_t enc_size, size_t *enc_len)
{
    cl_hpke_params_t p;

    memset(&p, 0, sizeof p);
    if (suite != NULL)
        p.suite = *suite;
    p.mode = CL_HPKE_MODE_BASE;
    p.info = info;
    p.info_len = info_len;
    return cl_hpke_setup_s(ctx, c, suite != NULL ? &p : NULL, pk_r, pk_r_len, enc, enc_size,
                           enc_len);
}

cl_status_t cl_hpke_setup_base_r(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_suite_t *suite, cl_key_t sk_r, const uint8_t *enc,
                                 size_t enc_len, const uint8_t *info, size_t info_len)
{
    cl_hpke_params_t p;

    memset(&p, 0, sizeof p);
    if (suite != NULL)
        p.suite = *suite;
    p.mode = CL_HPKE_MODE_BASE;
    p.info = info;
    p.info_len = info_len;
    return cl_hpke_setup_r(ctx, c, suite != NULL ? &p : NULL, sk_r, enc, enc_len);
}

cl_status_t cl_hpke_setup_auth_s(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_suite_t *suite, const uint8_t *pk_r, size_t pk_r_len,
                                 const uint8_t *info, size_t info_len, cl_key_t sk_s, uint8_t *enc,
                                 size_t enc_size, size_t *enc_len)
{
    cl_hpke_params_t p;

    memset(&p, 0, sizeof p);
    if (suite != NULL)
        p.suite = *suite;
    p.mode = CL_HPKE_MODE_AUTH;
    p.info = info;
    p.info_len = info_len;
    p.sender_key = sk_s;
    return cl_hpke_setup_s(ctx, c, suite != NULL ? &p : NULL, pk_r, pk_r_len, enc, enc_size,
                           enc_len);
}

cl_status_t cl_hpke_setup_auth_r(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_suite_t *suite, cl_key_t sk_r, const uint8_t *enc,
                                 size_t enc_len, const uint8_t *info, size_t info_len,
                                 const uint8_t *pk_s, size_t pk_s_len)
{
    cl_hpke_params_t p;

    memset(&p, 0, sizeof p);
    if (suite != NULL)
        p.suite = *suite;
    p.mode = CL_HPKE_MODE_AUTH;
    p.info = info;
    p.info_len = info_len;
    p.sender_pub = pk_s;
    p.sender_pub_len = pk_s_len;
    return cl_hpke_setup_r(ctx, c, suite != NULL ? &p : NULL, sk_r, enc, enc_len);
}

/* ---------------------------------------------------------------- context */

/* True when seq = 2^(8 Nn) - 1: IncrementSeq would overflow (5.2). Not secret. */
static int seq_exhausted(const cl_hpke_ctx_t *ctx)
{
    for (size_t i = 0; i < CL_HPKE_NONCE_LEN; i++)
        if (ctx->seq[i] != 0xff)
            return 0;
    return 1;
}

static void seq_increment(cl_hpke_ctx_t *ctx)
{
    for (size_t i = CL_HPKE_NONCE_LEN; i-- > 0;)
        if (++ctx->seq[i] != 0)
            break;
}

/* ComputeNonce(seq) = base_nonce XOR I2OSP(seq, Nn). */
static void compute_nonce(const cl_hpke_ctx_t *ctx, uint8_t nonce[CL_HPKE_NONCE_LEN])
{
    for (size_t i = 0; i < CL_HPKE_NONCE_LEN; i++)
        nonce[i] = (uint8_t)(ctx->base_nonce[i] ^ ctx->seq[i]);
}

/* Checks that ctx may run the AEAD in `role`. */
static cl_status_t aead_ready(const cl_hpke_ctx_t *ctx, uint8_t role)
{
    if (ctx == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (ctx->role != role || ctx->crypto == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (ctx->suite.aead_id == CL_HPKE_AEAD_EXPORT_ONLY)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (seq_exhausted(ctx))
        return CL_FAIL(CL_ERR_SEQ_EXHAUSTED);
    return CL_OK;
}

cl_status_t cl_hpke_seal(cl_hpke_ctx_t *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                         size_t pt_len, uint8_t *ct, size_t ct_size, size_t *ct_len)
{
    uint8_t nonce[CL_HPKE_NONCE_LEN];
    size_t l = 0;
    cl_status_t rc;

    if ((rc = aead_ready(ctx, ROLE_S)) != CL_OK)
        return rc;
    compute_nonce(ctx, nonce);
    rc = cl_aead_encrypt(ctx->crypto, ctx->key, nonce, sizeof nonce, aad, aad_len, pt, pt_len, ct,
                         ct_size, &l);
    cl_wipe(nonce, sizeof nonce);
    if (rc != CL_OK)
        return rc;
    seq_increment(ctx);
    if (ct_len != NULL)
        *ct_len = l;
    return CL_OK;
}

cl_status_t cl_hpke_open(cl_hpke_ctx_t *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                         size_t ct_len, uint8_t *pt, size_t pt_size, size_t *pt_len)
{
    uint8_t nonce[CL_HPKE_NONCE_LEN];
    size_t l = 0;
    cl_status_t rc;

    if ((rc = aead_ready(ctx, ROLE_R)) != CL_OK)
        return rc;
    compute_nonce(ctx, nonce);
    rc = cl_aead_decrypt(ctx->crypto, ctx->key, nonce, sizeof nonce, aad, aad_len, ct, ct_len, pt,
                         pt_size, &l);
    cl_wipe(nonce, sizeof nonce);
    if (rc != CL_OK)
        return rc;
    seq_increment(ctx);
    if (pt_len != NULL)
        *pt_len = l;
    return CL_OK;
}

cl_status_t cl_hpke_export(const cl_hpke_ctx_t *ctx, const uint8_t *exporter_context,
                           size_t exporter_context_len, uint8_t *out, size_t out_len)
{
    uint8_t sid[HPKE_SID_LEN];

    if (ctx == NULL || (exporter_context == NULL && exporter_context_len != 0) ||
        (out == NULL && out_len != 0) || out_len > CL_HPKE_MAX_EXPORT)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (ctx->role == ROLE_NONE || ctx->crypto == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (exporter_context_len > CL_HPKE_MAX_INPUT)
        return CL_FAIL(CL_ERR_LIMIT);
    hpke_suite_id(sid, &ctx->suite);
    return labeled_expand(ctx->crypto, sid, sizeof sid, ctx->exporter_secret, "sec",
                          exporter_context, exporter_context_len, out, out_len);
}

void cl_hpke_ctx_free(cl_hpke_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->key != CL_KEY_NONE && ctx->crypto != NULL)
        cl_key_destroy(ctx->crypto, ctx->key);
    cl_wipe(ctx, sizeof *ctx);
}

/* ------------------------------------------------------------ single-shot */

cl_status_t cl_hpke_seal_once(const cl_crypto_t *c, const cl_hpke_params_t *p, const uint8_t *pk_r,
                              size_t pk_r_len, const uint8_t *aad, size_t aad_len,
                              const uint8_t *pt, size_t pt_len, uint8_t *enc, size_t enc_size,
                              size_t *enc_len, uint8_t *ct, size_t ct_size, size_t *ct_len)
{
    cl_hpke_ctx_t ctx;
    uint8_t e[CL_HPKE_MAX_ENC];
    size_t el = 0, npk;
    cl_status_t rc;

    if (p == NULL || enc == NULL || ct == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = cl_hpke_suite_supported(&p->suite)) != CL_OK)
        return rc;
    if (p->suite.aead_id == CL_HPKE_AEAD_EXPORT_ONLY)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    npk = cl_hpke_enc_len(p->suite.kem_id);
    if (pt_len > SIZE_MAX - CL_HPKE_TAG_LEN)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (enc_size < npk || ct_size < pt_len + CL_HPKE_TAG_LEN)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    if ((rc = cl_hpke_setup_s(&ctx, c, p, pk_r, pk_r_len, e, sizeof e, &el)) != CL_OK)
        return rc;
    rc = cl_hpke_seal(&ctx, aad, aad_len, pt, pt_len, ct, ct_size, ct_len);
    cl_hpke_ctx_free(&ctx);
    if (rc != CL_OK)
        return rc;
    memcpy(enc, e, el);
    if (enc_len != NULL)
        *enc_len = el;
    return CL_OK;
}

cl_status_t cl_hpke_open_once(const cl_crypto_t *c, const cl_hpke_params_t *p, cl_key_t sk_r,
                              const uint8_t *enc, size_t enc_len, const uint8_t *aad,
                              size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *pt,
                              size_t pt_size, size_t *pt_len)
{
    cl_hpke_ctx_t ctx;
    cl_status_t rc;

    if (p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = cl_hpke_suite_supported(&p->suite)) != CL_OK)
        return rc;
    if (p->suite.aead_id == CL_HPKE_AEAD_EXPORT_ONLY)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (ct_len >= CL_HPKE_TAG_LEN && pt_size < ct_len - CL_HPKE_TAG_LEN)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    if ((rc = cl_hpke_setup_r(&ctx, c, p, sk_r, enc, enc_len)) != CL_OK)
        return rc;
    rc = cl_hpke_open(&ctx, aad, aad_len, ct, ct_len, pt, pt_size, pt_len);
    cl_hpke_ctx_free(&ctx);
    return rc;
}

/* --------------------------------------------------------- DeriveKeyPair */

/* 1 when 0 < x < order (big-endian), without branching on x. */
static unsigned p256_scalar_valid(const uint8_t x[32])
{
    unsigned borrow = 0, nz = 0;

    for (size_t i = 32; i-- > 0;) {
        unsigned d = (unsigned)x[i] - p256_order[i] - borrow;
        borrow = (d >> 8) & 1u; /* x - order borrows out of the top byte iff x < order */
        nz |= x[i];
    }
    return borrow & ((nz + 0xffu) >> 8);
}

cl_status_t cl_hpke_derive_key_pair(const cl_crypto_t *c, uint16_t kem_id, const uint8_t *ikm,
                                    size_t ikm_len, cl_key_t *out, uint8_t *pub, size_t pub_size,
                                    size_t *pub_len)
{
    const kem_info_t *kem = kem_of(kem_id);
    uint8_t sid[KEM_SID_LEN];
    uint8_t prk[CL_HPKE_HASH_LEN];
    uint8_t sk[NSK];
    cl_key_t k = CL_KEY_NONE;
    unsigned ok = 0;
    cl_status_t rc;

    if (c == NULL || c->ops == NULL || out == NULL || ikm == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (kem == NULL)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (ikm_len < NSK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (ikm_len > CL_HPKE_MAX_INPUT)
        return CL_FAIL(CL_ERR_LIMIT);
    if (pub != NULL && pub_size < kem->npk)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    kem_suite_id(sid, kem_id);
    if ((rc = labeled_extract(c, sid, sizeof sid, NULL, 0, "dkp_prk", ikm, ikm_len, prk)) != CL_OK)
        goto done;
    if (kem->type == CL_KEY_X25519) {
        /* Clamping is the X25519 function's (RFC 7748 decodeScalar25519). */
        if ((rc = labeled_expand(c, sid, sizeof sid, prk, "sk", NULL, 0, sk, NSK)) != CL_OK)
            goto done;
    } else {
        /* Rejection sampling; bitmask 0xFF for P-256, i.e. no masking. */
        for (unsigned counter = 0; counter <= 255 && !ok; counter++) {
            uint8_t ctr = (uint8_t)counter;
            if ((rc = labeled_expand(c, sid, sizeof sid, prk, "candidate", &ctr, 1, sk, NSK)) !=
                CL_OK)
                goto done;
            ok = p256_scalar_valid(sk);
        }
        if (!ok) {
            rc = CL_FAIL(CL_ERR_CRYPTO); /* DeriveKeyPairError: probability ~2^-8192 */
            goto done;
        }
    }
    if ((rc = c->ops->key_import_private(c->self, kem->type, CL_KEY_USAGE_ECDH, sk, NSK, &k)) !=
        CL_OK)
        goto done;
    if (pub != NULL &&
        (rc = c->ops->key_export_public(c->self, k, pub, pub_size, pub_len)) != CL_OK) {
        cl_key_destroy(c, k);
        goto done;
    }
    *out = k;

done:
    cl_wipe(prk, sizeof prk);
    cl_wipe(sk, sizeof sk);
    return rc;
}
