/*
 * openssl.c - the OpenSSL 3 crypto provider (cl_crypto_ops_t).
 *
 * What: random, SHA-256, HMAC-SHA-256, HKDF (RFC 5869), the AEADs of
 * OSCORE/EDHOC/HPKE (AES-CCM-16-64-128, AES-CCM-16-128-128, A128GCM,
 * ChaCha20-Poly1305), and P-256 (ECDH, ES256), X25519 and Ed25519 behind
 * key handles. ChaCha20-Poly1305 is optional: an OpenSSL without it (e.g. a
 * FIPS-only configuration) still gives an instance, whose aead_import
 * answers CL_ERR_UNSUPPORTED for that algorithm.
 *
 * Why it is shaped this way: protocol code calls the provider per message
 * (OSCORE) and several times per handshake (EDHOC), so everything that can
 * be done once is done once. Algorithms, the P-256 group and parameters
 * template, the HMAC context and the key generation / import contexts are
 * fetched when the instance is created (never per call). Each key slot
 * keeps its keyed state:
 *  - AEAD: for AES-CCM on a CPU with AES-NI, the constant-time schedule of
 *    aes_ccm_aesni.c; otherwise two EVP_CIPHER_CTX (one per direction, see
 *    evp_aead_ctx) given the key at import, so that per message only the
 *    nonce and the data are passed (EVP_*Init_ex2 with a NULL cipher and a
 *    NULL key keeps the expanded key: measured, re-keying would add ~70 ns
 *    to a 300 ns message).
 *  - P-256 private keys: the scalar. Key generation is one fixed-base
 *    multiplication and ECDH one EC_POINT_mul with the peer point decoded
 *    on the instance's group (the on-curve check is the whole validation
 *    for a cofactor-1 curve): no EVP_PKEY per peer, no second validation.
 *    The EVP_PKEY needed by ES256 is built on the first sign/verify.
 *  - Other keys: the EVP_PKEY plus sign/verify/derive contexts created on
 *    first use and reused; public keys are validated once, at import.
 *  - The public encoding, cached.
 *
 * Handles: the low 16 bits are slot index + 1 (so 0 is never valid), the
 * high 16 bits the slot generation XOR a random per-instance salt. Destroying
 * a key bumps the generation, so stale handles are refused; free slots are
 * reused first-in first-out, so a generation only comes round again after
 * many reuses; a handle of another instance matches only if the salts
 * collide (2^-16). At most 65535 live keys per instance.
 *
 * Errors and choices: a nonce or key of the wrong length is a programming
 * error (CL_ERR_INVALID_ARG); a peer public key that is malformed or not on
 * the curve, a low-order X25519 key or a private key outside the group
 * order is CL_ERR_BAD_INPUT; decrypting an input that cannot be an
 * authentic ciphertext (shorter than the tag, longer than CCM allows)
 * gives CL_ERR_AUTH like a bad tag, so callers have one answer for "not
 * authentic". An operation the key's usage does not allow, or an algorithm
 * that does not match the key, is CL_ERR_INVALID_ARG. When a call fails,
 * the OpenSSL errors it raised (bad signature, bad point...) are cleared from
 * the thread's error queue so they do not surface in unrelated code (e.g. a
 * TLS stack on the same thread); nothing is printed.
 */
#include "cloister/crypto_openssl.h"

#include <limits.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "cloister/aes_ccm_aesni.h"

#define SLOT_MAX 0xffffu /* index + 1 must fit the low 16 bits of a handle */
#define SLOT_FIRST 16u
#define HKDF_MAX_OUT (255u * CL_SHA256_LEN)
#define CCM_MAX_PT 0xffffu /* 13-byte nonce: L = 2 */
#define P256_LEN 32
#define ECDSA_DER_MAX 72

enum slot_kind { SLOT_FREE = 0, SLOT_AEAD = 1, SLOT_PKEY = 2 };

typedef struct aead_key {
    cl_aesni_ccm_t ni;    /* AES-NI schedule (fast path); first for its alignment */
    EVP_CIPHER_CTX *ectx; /* keyed once at import for encryption (EVP path) */
    EVP_CIPHER_CTX *dctx; /* ...and once for decryption: see evp_aead_ctx() */
    cl_aead_alg_t alg;
    uint8_t nonce_len;
    uint8_t tag_len;
    uint8_t fast;
} aead_key_t;

typedef struct pkey_key {
    EVP_PKEY *pkey;       /* P-256 private: made on first sign/verify */
    BIGNUM *d;            /* P-256 private scalar */
    EVP_PKEY_CTX *derive; /* X25519; created on first use */
    EVP_PKEY_CTX *sign;   /* P-256 */
    EVP_PKEY_CTX *verify; /* P-256 */
    EVP_MD_CTX *dsign;    /* Ed25519 */
    EVP_MD_CTX *dverify;  /* Ed25519 */
    cl_key_type_t type;
    uint32_t usage;
    uint8_t has_priv;
    uint8_t pub_len; /* 0 until the public encoding is cached */
    uint8_t pub[CL_PUB_MAX];
} pkey_key_t;

typedef struct slot {
    union {
        aead_key_t aead;
        pkey_key_t pk;
    } u;
    uint32_t next_free; /* index + 1 of the next free slot, 0 = end */
    uint16_t gen;
    uint8_t kind;
} slot_t;

typedef struct prov {
    void *table_mem; /* allocation behind slots (over-allocated for alignment) */
    size_t table_size;
    slot_t *slots;
    uint32_t cap;
    uint32_t free_head; /* index + 1, 0 = none */
    uint32_t free_tail;
    uint16_t salt;
    uint8_t fast;

    EVP_MD *sha256;
    EVP_MD_CTX *md;
    EVP_MAC *hmac;
    EVP_MAC_CTX *mac;
    EVP_CIPHER *ccm;
    EVP_CIPHER *gcm;
    EVP_CIPHER *chacha; /* ChaCha20-Poly1305; NULL when this OpenSSL lacks it */
    EC_GROUP *p256;
    BN_CTX *bn;
    EVP_PKEY *p256_tmpl; /* P-256 parameters only: cloned for public keys */
    EVP_PKEY_CTX *gen_x25519;
    EVP_PKEY_CTX *gen_ed25519;
    EVP_PKEY_CTX *ec_import;     /* fromdata context for P-256 key pairs */
    EVP_PKEY_CTX *x25519_import; /* fromdata context for X25519 peer keys */
} prov_t;

/* A fixed, non-secret key used where a zero-length key is meant (same HMAC key). */
static const uint8_t zero_key[CL_SHA256_LEN];

/* ------------------------------------------------------------------ slots */

static cl_key_t make_handle(const prov_t *p, uint32_t idx)
{
    return (cl_key_t)((uint32_t)(uint16_t)(p->slots[idx].gen ^ p->salt) << 16 | (idx + 1));
}

/* The slot of a live handle, or NULL (0, stale, destroyed, out of range, foreign). */
static slot_t *find_slot(const prov_t *p, cl_key_t h)
{
    uint32_t idx = h & 0xffffu;
    slot_t *s;

    if (idx == 0 || idx > p->cap)
        return NULL;
    s = &p->slots[idx - 1];
    if (s->kind == SLOT_FREE || (uint16_t)(s->gen ^ p->salt) != (uint16_t)(h >> 16))
        return NULL;
    return s;
}

static cl_status_t grow_table(prov_t *p)
{
    cl_status_t rc = CL_OK;
    uint32_t ncap;
    size_t nsize;
    void *mem;
    slot_t *ns;

    if (p->cap >= SLOT_MAX) {
        rc = CL_FAIL(CL_ERR_FULL);
        goto done;
    }
    ncap = p->cap == 0 ? SLOT_FIRST : p->cap * 2;
    if (ncap > SLOT_MAX)
        ncap = SLOT_MAX;
    /* Slots hold 16-byte aligned AES-NI schedules; malloc only promises 8 on some allocators. */
    nsize = (size_t)ncap * sizeof(slot_t) + 15;
    mem = OPENSSL_zalloc(nsize);
    if (mem == NULL) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    ns = (slot_t *)(((uintptr_t)mem + 15) & ~(uintptr_t)15);
    if (p->cap != 0)
        memcpy(ns, p->slots, (size_t)p->cap * sizeof(slot_t));
    /* The old table holds key schedules: clear it as it goes. */
    OPENSSL_clear_free(p->table_mem, p->table_size);
    p->table_mem = mem;
    p->table_size = nsize;
    p->slots = ns;
    for (uint32_t i = p->cap; i < ncap; i++) {
        ns[i].kind = SLOT_FREE;
        ns[i].next_free = 0;
        if (p->free_tail != 0)
            ns[p->free_tail - 1].next_free = i + 1;
        else
            p->free_head = i + 1;
        p->free_tail = i + 1;
    }
    p->cap = ncap;

done:
    return rc;
}

/* Takes a free slot (growing the table if needed); *idx receives its index. */
static cl_status_t alloc_slot(prov_t *p, uint32_t *idx)
{
    cl_status_t rc = CL_OK;
    slot_t *s;

    if (p->free_head == 0 && (rc = grow_table(p)) != CL_OK)
        goto done;
    *idx = p->free_head - 1;
    s = &p->slots[*idx];
    p->free_head = s->next_free;
    if (p->free_head == 0)
        p->free_tail = 0;
    s->next_free = 0;
    memset(&s->u, 0, sizeof s->u);

done:
    return rc;
}

/* Returns a slot to the tail of the free list; the caller has released its contents. */
static void release_slot(prov_t *p, uint32_t idx)
{
    slot_t *s = &p->slots[idx];

    cl_wipe(&s->u, sizeof s->u);
    s->kind = SLOT_FREE;
    s->gen++;
    s->next_free = 0;
    if (p->free_tail != 0)
        p->slots[p->free_tail - 1].next_free = idx + 1;
    else
        p->free_head = idx + 1;
    p->free_tail = idx + 1;
}

static void free_slot_contents(slot_t *s)
{
    if (s->kind == SLOT_AEAD) {
        cl_aesni_ccm_clear(&s->u.aead.ni);
        /* The provider's freectx clears the key schedule. */
        EVP_CIPHER_CTX_free(s->u.aead.ectx);
        EVP_CIPHER_CTX_free(s->u.aead.dctx);
    } else if (s->kind == SLOT_PKEY) {
        EVP_PKEY_CTX_free(s->u.pk.derive);
        EVP_PKEY_CTX_free(s->u.pk.sign);
        EVP_PKEY_CTX_free(s->u.pk.verify);
        EVP_MD_CTX_free(s->u.pk.dsign);
        EVP_MD_CTX_free(s->u.pk.dverify);
        EVP_PKEY_free(s->u.pk.pkey); /* private scalars live in cleared memory */
        BN_clear_free(s->u.pk.d);
    }
}

static void key_destroy(void *self, cl_key_t key)
{
    prov_t *p = self;
    slot_t *s;

    if (p == NULL || (s = find_slot(p, key)) == NULL)
        return;
    free_slot_contents(s);
    release_slot(p, (uint32_t)(s - p->slots));
}

/* The slot of an AEAD key handle. */
static cl_status_t get_aead(prov_t *p, cl_key_t h, aead_key_t **out)
{
    slot_t *s = p != NULL ? find_slot(p, h) : NULL;

    if (s == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (s->kind != SLOT_AEAD)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = &s->u.aead;
    return CL_OK;
}

/* The slot of an asymmetric key handle that allows `usage`. */
static cl_status_t get_pkey(prov_t *p, cl_key_t h, uint32_t usage, pkey_key_t **out)
{
    slot_t *s = p != NULL ? find_slot(p, h) : NULL;

    if (s == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (s->kind != SLOT_PKEY || (s->u.pk.usage & usage) != usage ||
        ((usage & (CL_KEY_USAGE_ECDH | CL_KEY_USAGE_SIGN)) != 0 && !s->u.pk.has_priv))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = &s->u.pk;
    return CL_OK;
}

/* -------------------------------------------------------- random, hashes */

static cl_status_t op_random(void *self, uint8_t *out, size_t len)
{
    cl_status_t rc = CL_OK;
    size_t done_len = 0;

    if (self == NULL || (out == NULL && len != 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    while (done_len < len) {
        size_t n = len - done_len > INT_MAX ? INT_MAX : len - done_len;
        if (RAND_bytes(out + done_len, (int)n) != 1) {
            cl_wipe(out, len);
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        done_len += n;
    }

done:
    return rc;
}

static int parts_ok(const cl_buf_t *parts, size_t n)
{
    if (parts == NULL)
        return n == 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i].p == NULL && parts[i].len != 0)
            return 0;
    return 1;
}

static cl_status_t op_sha256(void *self, const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    prov_t *p = self;
    cl_status_t rc = CL_OK;
    uint8_t h[CL_SHA256_LEN];
    unsigned int hl = 0;

    if (p == NULL || out == NULL || !parts_ok(parts, n)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (EVP_DigestInit_ex2(p->md, p->sha256, NULL) != 1) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len != 0 && EVP_DigestUpdate(p->md, parts[i].p, parts[i].len) != 1) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
    }
    if (EVP_DigestFinal_ex(p->md, h, &hl) != 1 || hl != CL_SHA256_LEN) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    memcpy(out, h, sizeof h);

done:
    cl_wipe(h, sizeof h);
    return rc;
}

/*
 * Keys the instance's HMAC context. HMAC pads keys with zeros to the block
 * size, so an empty key equals 32 zero bytes; OpenSSL 3.0 mishandles
 * zero-length keys (it leaks its key copy), so they never reach it.
 */
static cl_status_t mac_key(prov_t *p, const uint8_t *key, size_t key_len)
{
    if (key_len == 0) {
        key = zero_key;
        key_len = sizeof zero_key;
    }
    if (EVP_MAC_init(p->mac, key, key_len, NULL) != 1)
        return CL_FAIL(CL_ERR_CRYPTO);
    return CL_OK;
}

/* Re-keys the HMAC context with a public key so no key-derived state stays behind. */
static void mac_scrub(prov_t *p)
{
    (void)EVP_MAC_init(p->mac, zero_key, sizeof zero_key, NULL);
}

static cl_status_t mac_parts(prov_t *p, const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    size_t ol = 0;

    for (size_t i = 0; i < n; i++)
        if (parts[i].len != 0 && EVP_MAC_update(p->mac, parts[i].p, parts[i].len) != 1)
            return CL_FAIL(CL_ERR_CRYPTO);
    if (EVP_MAC_final(p->mac, out, &ol, CL_SHA256_LEN) != 1 || ol != CL_SHA256_LEN)
        return CL_FAIL(CL_ERR_CRYPTO);
    return CL_OK;
}

static cl_status_t op_hmac_sha256(void *self, const uint8_t *key, size_t key_len,
                                  const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    prov_t *p = self;
    cl_status_t rc = CL_OK;
    uint8_t t[CL_SHA256_LEN];

    if (p == NULL || out == NULL || (key == NULL && key_len != 0) || !parts_ok(parts, n)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if ((rc = mac_key(p, key, key_len)) != CL_OK || (rc = mac_parts(p, parts, n, t)) != CL_OK)
        goto done;
    memcpy(out, t, sizeof t);

done:
    if (p != NULL)
        mac_scrub(p);
    cl_wipe(t, sizeof t);
    return rc;
}

static cl_status_t op_hkdf_extract(void *self, const uint8_t *salt, size_t salt_len,
                                   const uint8_t *ikm, size_t ikm_len, uint8_t prk[32])
{
    cl_buf_t part = {ikm, ikm_len};

    /* Empty salt = HashLen zero bytes (RFC 5869 2.2), which op_hmac_sha256 maps to. */
    return op_hmac_sha256(self, salt, salt_len, &part, 1, prk);
}

static cl_status_t op_hkdf_expand(void *self, const uint8_t *prk, size_t prk_len,
                                  const uint8_t *info, size_t info_len, uint8_t *out,
                                  size_t out_len)
{
    prov_t *p = self;
    cl_status_t rc = CL_OK;
    uint8_t t[CL_SHA256_LEN];
    size_t pos = 0;

    if (p == NULL || (prk == NULL && prk_len != 0) || (info == NULL && info_len != 0) ||
        (out == NULL && out_len != 0) || out_len > HKDF_MAX_OUT) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (out_len == 0)
        goto done;
    if ((rc = mac_key(p, prk, prk_len)) != CL_OK)
        goto done;
    for (unsigned i = 1; pos < out_len; i++) {
        uint8_t ctr = (uint8_t)i;
        cl_buf_t parts[3] = {{t, i > 1 ? sizeof t : 0}, {info, info_len}, {&ctr, 1}};
        size_t take = out_len - pos < sizeof t ? out_len - pos : sizeof t;
        /* Same key again: a NULL key re-initialises from the kept pad states. */
        if (i > 1 && EVP_MAC_init(p->mac, NULL, 0, NULL) != 1) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        if ((rc = mac_parts(p, parts, 3, t)) != CL_OK)
            goto done;
        memcpy(out + pos, t, take);
        pos += take;
    }

done:
    if (rc != CL_OK && pos != 0)
        cl_wipe(out, pos);
    if (p != NULL && out_len != 0)
        mac_scrub(p);
    cl_wipe(t, sizeof t);
    return rc;
}

/* ------------------------------------------------------------------ AEAD */

/*
 * A cipher context keyed once for one direction. Per message, EVP_*Init_ex2
 * with a NULL cipher and a NULL key only sets the nonce: OpenSSL 3.0 resets
 * the context when a cipher is passed, and re-expands the key only when a
 * key is passed. The direction must be fixed, though: the CCM provider
 * chooses its encrypt or decrypt stream routine (and captures the tag and
 * length-field sizes) when the key is set, so a context keyed for
 * encryption computes wrong tags when used to decrypt. Hence one context per
 * direction. Nonce and tag lengths are set before the key for that reason.
 */
static EVP_CIPHER_CTX *evp_aead_ctx(const EVP_CIPHER *cipher, int enc, size_t nonce_len,
                                    size_t tag_len, const uint8_t *key)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int ccm = EVP_CIPHER_get_mode(cipher) == EVP_CIPH_CCM_MODE;

    if (c != NULL &&
        (EVP_CipherInit_ex2(c, cipher, NULL, NULL, enc, NULL) != 1 ||
         EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, (int)nonce_len, NULL) != 1 ||
         (ccm && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, (int)tag_len, NULL) != 1) ||
         EVP_CipherInit_ex2(c, NULL, key, NULL, enc, NULL) != 1)) {
        EVP_CIPHER_CTX_free(c);
        c = NULL;
    }
    return c;
}

static int is_ccm(cl_aead_alg_t alg)
{
    return alg == CL_AEAD_AES_CCM_16_64_128 || alg == CL_AEAD_AES_CCM_16_128_128;
}

static cl_status_t op_aead_import(void *self, cl_aead_alg_t alg, const uint8_t *key, size_t key_len,
                                  cl_key_t *out)
{
    prov_t *p = self;
    cl_status_t rc = CL_OK;
    size_t kl = 0, nl = 0, tl = 0;
    uint32_t idx = 0;
    int have_slot = 0;
    aead_key_t *a;

    if (p == NULL || out == NULL || key == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if ((rc = cl_aead_params(alg, &kl, &nl, &tl)) != CL_OK)
        goto done;
    if (key_len != kl) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if ((rc = alloc_slot(p, &idx)) != CL_OK)
        goto done;
    have_slot = 1;
    a = &p->slots[idx].u.aead;
    a->alg = alg;
    a->nonce_len = (uint8_t)nl;
    a->tag_len = (uint8_t)tl;

    if (is_ccm(alg) && p->fast) {
        if ((rc = cl_aesni_ccm_init(&a->ni, key, tl)) != CL_OK)
            goto done;
        a->fast = 1;
    } else {
        const EVP_CIPHER *cipher = p->chacha;
        if (is_ccm(alg))
            cipher = p->ccm;
        else if (alg == CL_AEAD_A128GCM)
            cipher = p->gcm;
        if (cipher == NULL) {
            rc = CL_FAIL(CL_ERR_UNSUPPORTED);
            goto done;
        }
        a->ectx = evp_aead_ctx(cipher, 1, nl, tl, key);
        a->dctx = evp_aead_ctx(cipher, 0, nl, tl, key);
        if (a->ectx == NULL || a->dctx == NULL) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
    }
    p->slots[idx].kind = SLOT_AEAD;
    *out = make_handle(p, idx);

done:
    if (rc != CL_OK && have_slot) {
        p->slots[idx].kind = SLOT_AEAD;
        free_slot_contents(&p->slots[idx]);
        release_slot(p, idx);
    }
    return rc;
}

/* AES-CCM through EVP. A zero-length payload still needs non-NULL pointers (else no tag). */
static int evp_ccm_encrypt(const aead_key_t *a, const uint8_t *nonce, const uint8_t *aad,
                           size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out)
{
    uint8_t dummy[1] = {0};
    int l = 0;

    EVP_CIPHER_CTX *c = a->ectx;

    return EVP_EncryptInit_ex2(c, NULL, NULL, nonce, NULL) == 1 &&
           EVP_EncryptUpdate(c, NULL, &l, NULL, (int)pt_len) == 1 &&
           (aad_len == 0 || EVP_EncryptUpdate(c, NULL, &l, aad, (int)aad_len) == 1) &&
           EVP_EncryptUpdate(c, pt_len != 0 ? out : dummy, &l, pt_len != 0 ? pt : dummy,
                             (int)pt_len) == 1 &&
           EVP_EncryptFinal_ex(c, dummy, &l) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, a->tag_len, out + pt_len) == 1;
}

/*
 * AES-GCM and ChaCha20-Poly1305 through EVP: the same flow (nonce, AAD,
 * data, final, tag), and both keep their key when only a nonce is given.
 */
static int evp_gcm_encrypt(const aead_key_t *a, const uint8_t *nonce, const uint8_t *aad,
                           size_t aad_len, const uint8_t *pt, size_t pt_len, uint8_t *out)
{
    uint8_t dummy[16];
    int l = 0;

    EVP_CIPHER_CTX *c = a->ectx;

    return EVP_EncryptInit_ex2(c, NULL, NULL, nonce, NULL) == 1 &&
           (aad_len == 0 || EVP_EncryptUpdate(c, NULL, &l, aad, (int)aad_len) == 1) &&
           (pt_len == 0 || EVP_EncryptUpdate(c, out, &l, pt, (int)pt_len) == 1) &&
           EVP_EncryptFinal_ex(c, dummy, &l) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, a->tag_len, out + pt_len) == 1;
}

/* Returns 1 when authentic; the caller wipes out otherwise. */
static int evp_ccm_decrypt(const aead_key_t *a, const uint8_t *nonce, const uint8_t *aad,
                           size_t aad_len, const uint8_t *in, size_t pt_len, uint8_t *out)
{
    uint8_t tag[CL_AEAD_MAX_TAG];
    uint8_t dummy[1] = {0};
    int l = 0;

    EVP_CIPHER_CTX *c = a->dctx;

    memcpy(tag, in + pt_len, a->tag_len);
    return EVP_DecryptInit_ex2(c, NULL, NULL, nonce, NULL) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, a->tag_len, tag) == 1 &&
           EVP_DecryptUpdate(c, NULL, &l, NULL, (int)pt_len) == 1 &&
           (aad_len == 0 || EVP_DecryptUpdate(c, NULL, &l, aad, (int)aad_len) == 1) &&
           /* CCM checks the tag in this call. */
           EVP_DecryptUpdate(c, pt_len != 0 ? out : dummy, &l, pt_len != 0 ? in : tag,
                             (int)pt_len) == 1;
}

static int evp_gcm_decrypt(const aead_key_t *a, const uint8_t *nonce, const uint8_t *aad,
                           size_t aad_len, const uint8_t *in, size_t pt_len, uint8_t *out)
{
    uint8_t tag[CL_AEAD_MAX_TAG];
    uint8_t dummy[16];
    int l = 0;

    EVP_CIPHER_CTX *c = a->dctx;

    memcpy(tag, in + pt_len, a->tag_len);
    return EVP_DecryptInit_ex2(c, NULL, NULL, nonce, NULL) == 1 &&
           (aad_len == 0 || EVP_DecryptUpdate(c, NULL, &l, aad, (int)aad_len) == 1) &&
           (pt_len == 0 || EVP_DecryptUpdate(c, out, &l, in, (int)pt_len) == 1) &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, a->tag_len, tag) == 1 &&
           EVP_DecryptFinal_ex(c, dummy, &l) == 1;
}

static size_t max_pt(const aead_key_t *a)
{
    return is_ccm(a->alg) ? CCM_MAX_PT : (size_t)INT_MAX - CL_AEAD_MAX_TAG;
}

static cl_status_t op_aead_encrypt(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                   const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                                   size_t pt_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    prov_t *p = self;
    cl_status_t rc;
    aead_key_t *a = NULL;
    int ok;

    if ((rc = get_aead(p, key, &a)) != CL_OK)
        goto done;
    if (nonce == NULL || nonce_len != a->nonce_len || (aad == NULL && aad_len != 0) ||
        (pt == NULL && pt_len != 0) || out == NULL || pt_len > max_pt(a) ||
        (!a->fast && aad_len > INT_MAX)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (out_size < pt_len + a->tag_len) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    if (a->fast) {
        if ((rc = cl_aesni_ccm_encrypt(&a->ni, nonce, aad, aad_len, pt, pt_len, out)) != CL_OK)
            goto done;
    } else {
        ok = is_ccm(a->alg) ? evp_ccm_encrypt(a, nonce, aad, aad_len, pt, pt_len, out)
                            : evp_gcm_encrypt(a, nonce, aad, aad_len, pt, pt_len, out);
        if (!ok) {
            ERR_clear_error();
            cl_wipe(out, pt_len + a->tag_len);
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
    }
    if (out_len != NULL)
        *out_len = pt_len + a->tag_len;

done:
    return rc;
}

static cl_status_t op_aead_decrypt(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                   const uint8_t *aad, size_t aad_len, const uint8_t *in,
                                   size_t in_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    prov_t *p = self;
    cl_status_t rc;
    aead_key_t *a = NULL;
    size_t pt_len;
    int ok;

    if ((rc = get_aead(p, key, &a)) != CL_OK)
        goto done;
    if (nonce == NULL || nonce_len != a->nonce_len || (aad == NULL && aad_len != 0) ||
        (in == NULL && in_len != 0) || (!a->fast && aad_len > INT_MAX)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (in_len < a->tag_len || in_len - a->tag_len > max_pt(a)) {
        rc = CL_FAIL(CL_ERR_AUTH); /* cannot be authentic: see the top of the file */
        goto done;
    }
    pt_len = in_len - a->tag_len;
    if (out == NULL && pt_len != 0) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (out_size < pt_len) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    if (a->fast) {
        if ((rc = cl_aesni_ccm_decrypt(&a->ni, nonce, aad, aad_len, in, in_len, out)) != CL_OK)
            goto done;
    } else {
        ok = is_ccm(a->alg) ? evp_ccm_decrypt(a, nonce, aad, aad_len, in, pt_len, out)
                            : evp_gcm_decrypt(a, nonce, aad, aad_len, in, pt_len, out);
        if (!ok) {
            ERR_clear_error();
            if (pt_len != 0)
                cl_wipe(out, pt_len);
            rc = CL_FAIL(CL_ERR_AUTH);
            goto done;
        }
    }
    if (out_len != NULL)
        *out_len = pt_len;

done:
    return rc;
}

/* ----------------------------------------------------------- asymmetric */

/*
 * Canonical SEC1 encoding of a P-256 public key given in one of the accepted
 * forms: 65-byte uncompressed, 33-byte compressed, 32-byte x-only (EDHOC;
 * taken as compressed with even y). Only the prefix and length are checked
 * here; the point itself is checked when OpenSSL decodes it.
 */
static cl_status_t p256_sec1(const uint8_t *pub, size_t len, uint8_t enc[65], size_t *enc_len)
{
    if (len == 65 && pub[0] == 0x04) {
        memcpy(enc, pub, 65);
        *enc_len = 65;
    } else if (len == 33 && (pub[0] == 0x02 || pub[0] == 0x03)) {
        memcpy(enc, pub, 33);
        *enc_len = 33;
    } else if (len == 32) {
        enc[0] = 0x02;
        memcpy(enc + 1, pub, 32);
        *enc_len = 33;
    } else {
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    return CL_OK;
}

/*
 * EVP_PKEY of a P-256 public key (any accepted form), for verification.
 * Built from a parameters-only template (EVP_PKEY_dup + encoded public key:
 * about a third of the cost of EVP_PKEY_fromdata, which rebuilds the group
 * from its name each time). Decoding checks the point is on the curve.
 */
static cl_status_t p256_public_pkey(prov_t *p, const uint8_t *pub, size_t len, EVP_PKEY **out)
{
    cl_status_t rc;
    uint8_t enc[65];
    size_t enc_len = 0;
    EVP_PKEY *k = NULL;

    if ((rc = p256_sec1(pub, len, enc, &enc_len)) != CL_OK)
        goto done;
    if ((k = EVP_PKEY_dup(p->p256_tmpl)) == NULL) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    if (EVP_PKEY_set1_encoded_public_key(k, enc, enc_len) != 1) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    *out = k;
    k = NULL;

done:
    EVP_PKEY_free(k);
    return rc;
}

/* Q = d*G as 65-byte uncompressed SEC1 (constant-time fixed-base multiplication). */
static cl_status_t p256_pub_from_d(prov_t *p, const BIGNUM *d, uint8_t pub65[65])
{
    cl_status_t rc = CL_OK;
    EC_POINT *q = EC_POINT_new(p->p256);

    if (q == NULL || EC_POINT_mul(p->p256, q, d, NULL, NULL, p->bn) != 1 ||
        EC_POINT_point2oct(p->p256, q, POINT_CONVERSION_UNCOMPRESSED, pub65, 65, p->bn) != 65)
        rc = CL_FAIL(CL_ERR_CRYPTO);
    EC_POINT_free(q);
    return rc;
}

/* A fresh secret scalar BIGNUM (secure heap when available, constant-time flag set). */
static BIGNUM *p256_new_scalar(void)
{
    BIGNUM *d = BN_secure_new();

    if (d != NULL)
        BN_set_flags(d, BN_FLG_CONSTTIME);
    return d;
}

/*
 * The EVP_PKEY of a P-256 private key, made on first use by sign/verify.
 * P-256 private keys are kept as the scalar (ECDH multiplies with it
 * directly, key generation is one fixed-base multiplication), so keys that
 * only do ECDH - EDHOC ephemerals - never pay for an EVP_PKEY.
 */
static cl_status_t p256_ensure_pkey(prov_t *p, pkey_key_t *k)
{
    cl_status_t rc = CL_OK;
    uint8_t be[P256_LEN], native[P256_LEN];
    char group[] = "prime256v1";
    char form[] = "uncompressed";
    OSSL_PARAM params[5];
    const uint16_t one = 1;
    int little = *(const uint8_t *)&one == 1;

    if (k->pkey != NULL)
        goto done;
    if (BN_bn2binpad(k->d, be, P256_LEN) != P256_LEN) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    /* OSSL_PARAM BIGNUMs are native-endian. */
    for (size_t i = 0; i < P256_LEN; i++)
        native[i] = little ? be[P256_LEN - 1 - i] : be[i];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, k->pub, 65);
    params[2] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, native, sizeof native);
    params[3] =
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, form, 0);
    params[4] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_fromdata(p->ec_import, &k->pkey, EVP_PKEY_KEYPAIR, params) != 1) {
        k->pkey = NULL;
        rc = CL_FAIL(CL_ERR_CRYPTO);
    }

done:
    cl_wipe(be, sizeof be);
    cl_wipe(native, sizeof native);
    return rc;
}

/* Fills the cached public encoding of a key (uncompressed SEC1 / raw 32 bytes). */
static cl_status_t cache_pub(prov_t *p, pkey_key_t *k)
{
    cl_status_t rc = CL_OK;
    size_t l = 0;
    EC_POINT *q = NULL;

    if (k->pub_len != 0)
        goto done;
    if (k->type == CL_KEY_P256) {
        if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, k->pub,
                                            sizeof k->pub, &l) != 1) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        if (l != 65 || k->pub[0] != 0x04) {
            /* Imported compressed: OpenSSL keeps that form; re-encode uncompressed. */
            q = EC_POINT_new(p->p256);
            if (q == NULL || EC_POINT_oct2point(p->p256, q, k->pub, l, p->bn) != 1 ||
                EC_POINT_point2oct(p->p256, q, POINT_CONVERSION_UNCOMPRESSED, k->pub, 65, p->bn) !=
                    65) {
                rc = CL_FAIL(CL_ERR_CRYPTO);
                goto done;
            }
            l = 65;
        }
    } else {
        l = 32;
        if (EVP_PKEY_get_raw_public_key(k->pkey, k->pub, &l) != 1 || l != 32) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
    }
    k->pub_len = (uint8_t)l;

done:
    if (rc != CL_OK)
        k->pub_len = 0;
    EC_POINT_free(q);
    return rc;
}

/*
 * Stores a new key in a fresh slot: an EVP_PKEY and/or (P-256 private) a
 * scalar, whose ownership passes to the slot (both freed on failure).
 */
static cl_status_t store_key(prov_t *p, EVP_PKEY *pkey, BIGNUM *d, cl_key_type_t type,
                             uint32_t usage, int has_priv, const uint8_t *pub, size_t pub_len,
                             cl_key_t *out)
{
    cl_status_t rc;
    uint32_t idx = 0;
    pkey_key_t *k;

    if ((rc = alloc_slot(p, &idx)) != CL_OK) {
        EVP_PKEY_free(pkey);
        BN_clear_free(d);
        goto done;
    }
    k = &p->slots[idx].u.pk;
    k->pkey = pkey;
    k->d = d;
    k->type = type;
    k->usage = usage;
    k->has_priv = (uint8_t)has_priv;
    if (pub != NULL) {
        memcpy(k->pub, pub, pub_len);
        k->pub_len = (uint8_t)pub_len;
    }
    p->slots[idx].kind = SLOT_PKEY;
    *out = make_handle(p, idx);

done:
    return rc;
}

static cl_status_t check_usage(cl_key_type_t type, uint32_t usage)
{
    uint32_t allowed = cl_key_usages(type);

    if (allowed == 0)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (usage == 0 || (usage & ~allowed) != 0)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return CL_OK;
}

static cl_status_t op_key_generate(void *self, cl_key_type_t type, uint32_t usage, cl_key_t *out,
                                   uint8_t *pub, size_t pub_size, size_t *pub_len)
{
    prov_t *p = self;
    cl_status_t rc = CL_OK;
    EVP_PKEY *pkey = NULL;
    BIGNUM *d = NULL;
    uint8_t q[65];
    cl_key_t h = CL_KEY_NONE;
    slot_t *s;

    if (p == NULL || out == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if ((rc = check_usage(type, usage)) != CL_OK)
        goto done;
    if (pub != NULL && pub_size < cl_key_pub_len(type)) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    if (type == CL_KEY_P256) {
        /* What OpenSSL's EC key generation does, minus building an EVP_PKEY. */
        if ((d = p256_new_scalar()) == NULL) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        do {
            if (BN_priv_rand_range_ex(d, EC_GROUP_get0_order(p->p256), 0, p->bn) != 1) {
                rc = CL_FAIL(CL_ERR_CRYPTO);
                goto done;
            }
        } while (BN_is_zero(d));
        if ((rc = p256_pub_from_d(p, d, q)) != CL_OK)
            goto done;
        rc = store_key(p, NULL, d, type, usage, 1, q, sizeof q, &h);
        d = NULL; /* owned by the slot, or freed */
        if (rc != CL_OK)
            goto done;
    } else {
        if (EVP_PKEY_generate(type == CL_KEY_X25519 ? p->gen_x25519 : p->gen_ed25519, &pkey) != 1) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        rc = store_key(p, pkey, NULL, type, usage, 1, NULL, 0, &h);
        pkey = NULL;
        if (rc != CL_OK)
            goto done;
    }
    if (pub != NULL) {
        s = find_slot(p, h);
        if ((rc = cache_pub(p, &s->u.pk)) != CL_OK) {
            key_destroy(p, h);
            goto done;
        }
        memcpy(pub, s->u.pk.pub, s->u.pk.pub_len);
        if (pub_len != NULL)
            *pub_len = s->u.pk.pub_len;
    }
    *out = h;

done:
    BN_clear_free(d);
    if (rc != CL_OK)
        ERR_clear_error();
    return rc;
}

static cl_status_t op_key_import_private(void *self, cl_key_type_t type, uint32_t usage,
                                         const uint8_t *priv, size_t priv_len, cl_key_t *out)
{
    prov_t *p = self;
    cl_status_t rc = CL_OK;
    EVP_PKEY *pkey = NULL;
    BIGNUM *d = NULL;
    uint8_t q[65];

    if (p == NULL || out == NULL || priv == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if ((rc = check_usage(type, usage)) != CL_OK)
        goto done;
    if (priv_len != 32) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (type == CL_KEY_P256) {
        if ((d = p256_new_scalar()) == NULL || BN_bin2bn(priv, P256_LEN, d) == NULL) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        if (BN_is_zero(d) || BN_cmp(d, EC_GROUP_get0_order(p->p256)) >= 0) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        if ((rc = p256_pub_from_d(p, d, q)) != CL_OK)
            goto done;
        rc = store_key(p, NULL, d, type, usage, 1, q, sizeof q, out);
        d = NULL;
    } else {
        pkey = EVP_PKEY_new_raw_private_key_ex(NULL, type == CL_KEY_X25519 ? "X25519" : "ED25519",
                                               NULL, priv, priv_len);
        if (pkey == NULL) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        rc = store_key(p, pkey, NULL, type, usage, 1, NULL, 0, out);
    }

done:
    BN_clear_free(d);
    if (rc != CL_OK)
        ERR_clear_error();
    return rc;
}

static cl_status_t op_key_import_public(void *self, cl_key_type_t type, const uint8_t *pub,
                                        size_t pub_len, cl_key_t *out)
{
    prov_t *p = self;
    cl_status_t rc = CL_OK;
    EVP_PKEY *pkey = NULL;
    uint32_t usage;

    if (p == NULL || out == NULL || pub == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (cl_key_usages(type) == 0) {
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto done;
    }
    /* A public key can only verify; an X25519 public key has no operation of its own. */
    usage = type == CL_KEY_X25519 ? 0 : CL_KEY_USAGE_VERIFY;
    if (type == CL_KEY_P256) {
        if ((rc = p256_public_pkey(p, pub, pub_len, &pkey)) != CL_OK)
            goto done;
    } else {
        if (pub_len != 32) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        pkey = EVP_PKEY_new_raw_public_key_ex(NULL, type == CL_KEY_X25519 ? "X25519" : "ED25519",
                                              NULL, pub, pub_len);
        if (pkey == NULL) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
    }
    rc = store_key(p, pkey, NULL, type, usage, 0, NULL, 0, out);

done:
    if (rc != CL_OK)
        ERR_clear_error();
    return rc;
}

static cl_status_t op_key_export_public(void *self, cl_key_t key, uint8_t *pub, size_t pub_size,
                                        size_t *pub_len)
{
    prov_t *p = self;
    cl_status_t rc;
    pkey_key_t *k = NULL;

    if ((rc = get_pkey(p, key, 0, &k)) != CL_OK)
        goto done;
    if (pub == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (pub_size < cl_key_pub_len(k->type)) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    if ((rc = cache_pub(p, k)) != CL_OK) {
        ERR_clear_error();
        goto done;
    }
    memcpy(pub, k->pub, k->pub_len);
    if (pub_len != NULL)
        *pub_len = k->pub_len;

done:
    return rc;
}

/*
 * P-256 ECDH: x(d * Q). The peer point is decoded on the instance's group
 * (on-curve check; P-256 has cofactor 1, so that is the whole validation)
 * and multiplied with the stored scalar - the same EC_POINT_mul that
 * OpenSSL's own ECDH performs (constant time for a BN_FLG_CONSTTIME
 * scalar), without building a peer EVP_PKEY.
 */
static cl_status_t p256_ecdh(prov_t *p, const BIGNUM *d, const uint8_t *peer, size_t peer_len,
                             uint8_t z[32])
{
    cl_status_t rc;
    uint8_t enc[65];
    size_t enc_len = 0;
    EC_POINT *q = EC_POINT_new(p->p256), *r = EC_POINT_new(p->p256);
    BIGNUM *x = BN_new();

    if ((rc = p256_sec1(peer, peer_len, enc, &enc_len)) != CL_OK)
        goto done;
    if (q == NULL || r == NULL || x == NULL) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    if (EC_POINT_oct2point(p->p256, q, enc, enc_len, p->bn) != 1) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (EC_POINT_mul(p->p256, r, NULL, q, d, p->bn) != 1 ||
        EC_POINT_get_affine_coordinates(p->p256, r, x, NULL, p->bn) != 1 ||
        BN_bn2binpad(x, z, 32) != 32) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }

done:
    EC_POINT_free(q);
    EC_POINT_clear_free(r);
    BN_clear_free(x);
    return rc;
}

/* X25519 through EVP; the peer key is built by the instance's fromdata context. */
static cl_status_t x25519_ecdh(prov_t *p, pkey_key_t *k, const uint8_t *peer, size_t peer_len,
                               uint8_t z[32])
{
    cl_status_t rc = CL_OK;
    EVP_PKEY *pk = NULL;
    OSSL_PARAM params[2];
    uint8_t copy[32];
    size_t zl = 32;

    if (peer_len != 32) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    memcpy(copy, peer, 32);
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, copy, 32);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_PKEY_fromdata(p->x25519_import, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        pk = NULL;
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (k->derive == NULL) {
        k->derive = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
        if (k->derive == NULL || EVP_PKEY_derive_init(k->derive) != 1) {
            EVP_PKEY_CTX_free(k->derive);
            k->derive = NULL;
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
    }
    /* No validation to skip for X25519: every 32-byte string is a u-coordinate. */
    if (EVP_PKEY_derive_set_peer_ex(k->derive, pk, 0) != 1) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    /* OpenSSL refuses an all-zero result (low-order peer point). */
    if (EVP_PKEY_derive(k->derive, z, &zl) != 1 || zl != 32) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }

done:
    EVP_PKEY_free(pk);
    return rc;
}

static cl_status_t op_ecdh(void *self, cl_key_t priv, const uint8_t *peer_pub, size_t peer_len,
                           uint8_t *secret, size_t secret_size, size_t *secret_len)
{
    prov_t *p = self;
    cl_status_t rc;
    pkey_key_t *k = NULL;
    uint8_t z[CL_ECDH_MAX];
    uint8_t acc = 0;

    if ((rc = get_pkey(p, priv, CL_KEY_USAGE_ECDH, &k)) != CL_OK)
        goto done;
    if (peer_pub == NULL || secret == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (secret_size < CL_ECDH_MAX) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    rc = k->type == CL_KEY_P256 ? p256_ecdh(p, k->d, peer_pub, peer_len, z)
                                : x25519_ecdh(p, k, peer_pub, peer_len, z);
    if (rc != CL_OK)
        goto done;
    for (size_t i = 0; i < sizeof z; i++)
        acc |= z[i];
    if (acc == 0) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT); /* low-order point, whatever OpenSSL did */
        goto done;
    }
    memcpy(secret, z, sizeof z);
    if (secret_len != NULL)
        *secret_len = sizeof z;

done:
    cl_wipe(z, sizeof z);
    if (rc != CL_OK)
        ERR_clear_error();
    return rc;
}

/* One DER INTEGER of a 32-byte unsigned big-endian value; returns its length. */
static size_t der_uint(uint8_t *o, const uint8_t v[32])
{
    size_t i = 0, n;

    while (i < 31 && v[i] == 0)
        i++;
    n = 32 - i;
    o[0] = 0x02;
    if (v[i] & 0x80) {
        o[1] = (uint8_t)(n + 1);
        o[2] = 0;
        memcpy(o + 3, v + i, n);
        return n + 3;
    }
    o[1] = (uint8_t)n;
    memcpy(o + 2, v + i, n);
    return n + 2;
}

/* raw r || s -> DER ECDSA-Sig-Value. */
static size_t ecdsa_raw_to_der(uint8_t der[ECDSA_DER_MAX], const uint8_t raw[64])
{
    size_t n = 2;

    n += der_uint(der + n, raw);
    n += der_uint(der + n, raw + 32);
    der[0] = 0x30;
    der[1] = (uint8_t)(n - 2);
    return n;
}

/* Parses one DER INTEGER into 32 right-aligned bytes; returns bytes consumed or 0. */
static size_t der_read_uint(const uint8_t *d, size_t len, uint8_t v[32])
{
    size_t n;
    const uint8_t *c;

    if (len < 2 || d[0] != 0x02 || d[1] == 0 || d[1] > 33 || (size_t)d[1] + 2 > len)
        return 0;
    n = d[1];
    c = d + 2;
    while (n > 32 && *c == 0) {
        c++;
        n--;
    }
    if (n > 32)
        return 0;
    memset(v, 0, 32 - n);
    memcpy(v + 32 - n, c, n);
    return (size_t)d[1] + 2;
}

static cl_status_t ecdsa_der_to_raw(uint8_t raw[64], const uint8_t *der, size_t len)
{
    size_t a, b;

    if (len < 2 || der[0] != 0x30 || der[1] >= 0x80 || (size_t)der[1] + 2 != len)
        return CL_FAIL(CL_ERR_CRYPTO);
    a = der_read_uint(der + 2, len - 2, raw);
    if (a == 0)
        return CL_FAIL(CL_ERR_CRYPTO);
    b = der_read_uint(der + 2 + a, len - 2 - a, raw + 32);
    if (b == 0 || 2 + a + b != len)
        return CL_FAIL(CL_ERR_CRYPTO);
    return CL_OK;
}

/* Checks the (alg, key type) pair. */
static cl_status_t sig_alg_matches(cl_sig_alg_t alg, cl_key_type_t type)
{
    if (alg != CL_SIG_ES256 && alg != CL_SIG_EDDSA)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if ((alg == CL_SIG_ES256) != (type == CL_KEY_P256) ||
        (alg == CL_SIG_EDDSA) != (type == CL_KEY_ED25519))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return CL_OK;
}

static cl_status_t sha256_one(prov_t *p, const uint8_t *msg, size_t msg_len, uint8_t out[32])
{
    unsigned int l = 0;

    if (EVP_DigestInit_ex2(p->md, p->sha256, NULL) != 1 ||
        (msg_len != 0 && EVP_DigestUpdate(p->md, msg, msg_len) != 1) ||
        EVP_DigestFinal_ex(p->md, out, &l) != 1 || l != CL_SHA256_LEN)
        return CL_FAIL(CL_ERR_CRYPTO);
    return CL_OK;
}

/* The key's Ed25519 sign or verify context, initialised on first use. */
static EVP_MD_CTX *ed_ctx(pkey_key_t *k, int sign, int fresh)
{
    EVP_MD_CTX **c = sign ? &k->dsign : &k->dverify;
    int ok;

    if (*c != NULL && !fresh)
        return *c;
    if (*c == NULL && (*c = EVP_MD_CTX_new()) == NULL)
        return NULL;
    if (fresh)
        EVP_MD_CTX_reset(*c);
    ok = sign ? EVP_DigestSignInit_ex(*c, NULL, NULL, NULL, NULL, k->pkey, NULL)
              : EVP_DigestVerifyInit_ex(*c, NULL, NULL, NULL, NULL, k->pkey, NULL);
    if (ok != 1) {
        EVP_MD_CTX_free(*c);
        *c = NULL;
    }
    return *c;
}

/* The key's ECDSA sign or verify context, initialised on first use. */
static EVP_PKEY_CTX *ec_ctx(prov_t *p, pkey_key_t *k, int sign)
{
    EVP_PKEY_CTX **c = sign ? &k->sign : &k->verify;

    if (*c != NULL)
        return *c;
    if (p256_ensure_pkey(p, k) != CL_OK)
        return NULL;
    *c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (*c != NULL && (sign ? EVP_PKEY_sign_init(*c) : EVP_PKEY_verify_init(*c)) != 1) {
        EVP_PKEY_CTX_free(*c);
        *c = NULL;
    }
    return *c;
}

static cl_status_t op_sign(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                           size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len)
{
    static const uint8_t empty[1] = {0};
    prov_t *p = self;
    cl_status_t rc;
    pkey_key_t *k = NULL;
    uint8_t h[CL_SHA256_LEN];
    uint8_t der[ECDSA_DER_MAX];
    uint8_t raw[CL_SIG_MAX];
    size_t l;

    if ((rc = get_pkey(p, priv, CL_KEY_USAGE_SIGN, &k)) != CL_OK ||
        (rc = sig_alg_matches(alg, k->type)) != CL_OK)
        goto done;
    if ((msg == NULL && msg_len != 0) || sig == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (sig_size < CL_SIG_MAX) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    if (msg_len == 0)
        msg = empty;
    if (alg == CL_SIG_ES256) {
        EVP_PKEY_CTX *c = ec_ctx(p, k, 1);
        l = sizeof der;
        if ((rc = sha256_one(p, msg, msg_len, h)) != CL_OK)
            goto done;
        if (c == NULL || EVP_PKEY_sign(c, der, &l, h, sizeof h) != 1) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        if ((rc = ecdsa_der_to_raw(raw, der, l)) != CL_OK)
            goto done;
    } else {
        EVP_MD_CTX *c = ed_ctx(k, 1, 0);
        l = sizeof raw;
        if (c == NULL || EVP_DigestSign(c, raw, &l, msg, msg_len) != 1) {
            /* Some OpenSSL versions refuse a second one-shot on a context: re-init once. */
            ERR_clear_error();
            l = sizeof raw;
            c = ed_ctx(k, 1, 1);
            if (c == NULL || EVP_DigestSign(c, raw, &l, msg, msg_len) != 1 || l != CL_SIG_MAX) {
                rc = CL_FAIL(CL_ERR_CRYPTO);
                goto done;
            }
        }
    }
    memcpy(sig, raw, CL_SIG_MAX);
    if (sig_len != NULL)
        *sig_len = CL_SIG_MAX;

done:
    cl_wipe(raw, sizeof raw);
    cl_wipe(der, sizeof der);
    if (rc != CL_OK)
        ERR_clear_error();
    return rc;
}

static cl_status_t op_verify(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                             size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    static const uint8_t empty[1] = {0};
    prov_t *p = self;
    cl_status_t rc;
    pkey_key_t *k = NULL;
    uint8_t h[CL_SHA256_LEN];
    uint8_t der[ECDSA_DER_MAX];
    size_t l;
    int r;

    if ((rc = get_pkey(p, pub, CL_KEY_USAGE_VERIFY, &k)) != CL_OK ||
        (rc = sig_alg_matches(alg, k->type)) != CL_OK)
        goto done;
    if ((msg == NULL && msg_len != 0) || (sig == NULL && sig_len != 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (sig_len != CL_SIG_MAX) {
        rc = CL_FAIL(CL_ERR_AUTH);
        goto done;
    }
    if (msg_len == 0)
        msg = empty;
    if (alg == CL_SIG_ES256) {
        EVP_PKEY_CTX *c = ec_ctx(p, k, 0);
        if (c == NULL) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        if ((rc = sha256_one(p, msg, msg_len, h)) != CL_OK)
            goto done;
        l = ecdsa_raw_to_der(der, sig);
        /* r, s outside [1, n-1] make OpenSSL return 0 or -1: both are "not authentic". */
        r = EVP_PKEY_verify(c, der, l, h, sizeof h);
    } else {
        EVP_MD_CTX *c = ed_ctx(k, 0, 0);
        r = c != NULL ? EVP_DigestVerify(c, sig, sig_len, msg, msg_len) : -1;
        if (r < 0) {
            /* An error rather than a verdict: retry once on a fresh context. */
            ERR_clear_error();
            c = ed_ctx(k, 0, 1);
            if (c == NULL) {
                rc = CL_FAIL(CL_ERR_CRYPTO);
                goto done;
            }
            r = EVP_DigestVerify(c, sig, sig_len, msg, msg_len);
        }
    }
    if (r != 1)
        rc = CL_FAIL(CL_ERR_AUTH);

done:
    if (rc != CL_OK)
        ERR_clear_error();
    return rc;
}

/* -------------------------------------------------------------- instance */

static const cl_crypto_ops_t ops_evp = {
    .version = CL_CRYPTO_OPS_VERSION,
    .name = "openssl",
    .random = op_random,
    .sha256 = op_sha256,
    .hmac_sha256 = op_hmac_sha256,
    .hkdf_extract = op_hkdf_extract,
    .hkdf_expand = op_hkdf_expand,
    .aead_import = op_aead_import,
    .aead_encrypt = op_aead_encrypt,
    .aead_decrypt = op_aead_decrypt,
    .key_generate = op_key_generate,
    .key_import_private = op_key_import_private,
    .key_import_public = op_key_import_public,
    .key_export_public = op_key_export_public,
    .ecdh = op_ecdh,
    .sign = op_sign,
    .verify = op_verify,
    .key_destroy = key_destroy,
};

static const cl_crypto_ops_t ops_aesni = {
    .version = CL_CRYPTO_OPS_VERSION,
    .name = "openssl+aesni",
    .random = op_random,
    .sha256 = op_sha256,
    .hmac_sha256 = op_hmac_sha256,
    .hkdf_extract = op_hkdf_extract,
    .hkdf_expand = op_hkdf_expand,
    .aead_import = op_aead_import,
    .aead_encrypt = op_aead_encrypt,
    .aead_decrypt = op_aead_decrypt,
    .key_generate = op_key_generate,
    .key_import_private = op_key_import_private,
    .key_import_public = op_key_import_public,
    .key_export_public = op_key_export_public,
    .ecdh = op_ecdh,
    .sign = op_sign,
    .verify = op_verify,
    .key_destroy = key_destroy,
};

static void prov_free(prov_t *p)
{
    if (p == NULL)
        return;
    for (uint32_t i = 0; i < p->cap; i++) {
        if (p->slots[i].kind != SLOT_FREE) {
            free_slot_contents(&p->slots[i]);
            p->slots[i].kind = SLOT_FREE;
        }
    }
    OPENSSL_clear_free(p->table_mem, p->table_size);
    EVP_MD_CTX_free(p->md);
    EVP_MD_free(p->sha256);
    EVP_MAC_CTX_free(p->mac);
    EVP_MAC_free(p->hmac);
    EVP_CIPHER_free(p->ccm);
    EVP_CIPHER_free(p->gcm);
    EVP_CIPHER_free(p->chacha);
    EC_GROUP_free(p->p256);
    BN_CTX_free(p->bn);
    EVP_PKEY_free(p->p256_tmpl);
    EVP_PKEY_CTX_free(p->gen_x25519);
    EVP_PKEY_CTX_free(p->gen_ed25519);
    EVP_PKEY_CTX_free(p->ec_import);
    EVP_PKEY_CTX_free(p->x25519_import);
    OPENSSL_clear_free(p, sizeof *p);
}

static EVP_PKEY_CTX *keygen_ctx(const char *name)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, name, NULL);

    if (c != NULL && EVP_PKEY_keygen_init(c) != 1) {
        EVP_PKEY_CTX_free(c);
        c = NULL;
    }
    return c;
}

/* A P-256 EVP_PKEY with the group parameters only. */
static EVP_PKEY *p256_template(void)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *k = NULL;

    if (c == NULL || EVP_PKEY_paramgen_init(c) != 1 ||
        EVP_PKEY_CTX_set_group_name(c, "P-256") != 1 || EVP_PKEY_paramgen(c, &k) != 1) {
        EVP_PKEY_free(k);
        k = NULL;
    }
    EVP_PKEY_CTX_free(c);
    return k;
}

cl_status_t cl_crypto_openssl_new(cl_crypto_t *c, unsigned flags)
{
    cl_status_t rc = CL_OK;
    prov_t *p = NULL;
    char digest[] = "SHA256";
    OSSL_PARAM params[2];

    if (c == NULL || (flags & ~CL_CRYPTO_OPENSSL_NO_FASTPATH) != 0) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    c->ops = NULL;
    c->self = NULL;
    p = OPENSSL_zalloc(sizeof *p);
    if (p == NULL) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    p->fast = (flags & CL_CRYPTO_OPENSSL_NO_FASTPATH) == 0 && cl_aesni_available();
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    p->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    p->md = EVP_MD_CTX_new();
    p->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    p->mac = p->hmac != NULL ? EVP_MAC_CTX_new(p->hmac) : NULL;
    p->ccm = EVP_CIPHER_fetch(NULL, "AES-128-CCM", NULL);
    p->gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    p->chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
    if (p->chacha == NULL)
        ERR_clear_error(); /* optional: aead_import refuses the algorithm */
    p->p256 = EC_GROUP_new_by_curve_name_ex(NULL, NULL, NID_X9_62_prime256v1);
    p->bn = BN_CTX_new();
    p->gen_x25519 = keygen_ctx("X25519");
    p->gen_ed25519 = keygen_ctx("ED25519");
    p->ec_import = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    p->x25519_import = EVP_PKEY_CTX_new_from_name(NULL, "X25519", NULL);
    p->p256_tmpl = p256_template();
    if (p->sha256 == NULL || p->md == NULL || p->mac == NULL || p->ccm == NULL || p->gcm == NULL ||
        p->p256 == NULL || p->bn == NULL || p->p256_tmpl == NULL || p->gen_x25519 == NULL ||
        p->gen_ed25519 == NULL || p->ec_import == NULL || p->x25519_import == NULL ||
        EVP_MAC_CTX_set_params(p->mac, params) != 1 || EVP_PKEY_fromdata_init(p->ec_import) != 1 ||
        EVP_PKEY_fromdata_init(p->x25519_import) != 1 ||
        RAND_bytes((uint8_t *)&p->salt, sizeof p->salt) != 1) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    mac_scrub(p); /* keys the context once so that every later init is a re-key */
    if ((rc = grow_table(p)) != CL_OK)
        goto done;
    c->ops = p->fast ? &ops_aesni : &ops_evp;
    c->self = p;
    p = NULL;

done:
    prov_free(p);
    if (rc != CL_OK)
        ERR_clear_error();
    return rc;
}

void cl_crypto_openssl_free(cl_crypto_t *c)
{
    if (c == NULL || (c->ops != &ops_evp && c->ops != &ops_aesni))
        return;
    prov_free(c->self);
    c->ops = NULL;
    c->self = NULL;
}

int cl_crypto_openssl_has_fastpath(const cl_crypto_t *c)
{
    return c != NULL && c->ops == &ops_aesni && c->self != NULL;
}
