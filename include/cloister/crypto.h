/*
 * cloister/crypto.h - the crypto provider table.
 *
 * Everything in lib/ that needs cryptography calls through one versioned table
 * of function pointers (cl_crypto_ops_t), so the same protocol code runs on
 * OpenSSL (host, simulated enclave), a PKCS#11 token (secure element, HSM)
 * or an MCU library. Keys are handles (cl_key_t): private and AEAD keys are
 * imported or generated once and then only referred to; a provider may keep
 * them somewhere the caller cannot read (a token, an enclave). Per-key
 * state (e.g. an expanded AES schedule or a reusable cipher context) lives
 * behind the handle, so per-message cost is the cipher itself.
 *
 * Conventions: every writer takes (out, out_size, *out_len) and writes
 * nothing when the buffer is too small; AEAD output is ciphertext || tag;
 * AEAD encrypt/decrypt may run in place (out == in); a failed decrypt wipes
 * the output; verify/decrypt return CL_ERR_AUTH on a bad tag or signature.
 * A provider instance is not thread-safe; use one per thread.
 *
 * Algorithm identifiers are the COSE ones (RFC 9053) so that they can be
 * copied from messages directly.
 */
#ifndef CLOISTER_CRYPTO_H
#define CLOISTER_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/config.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Key handle; 0 is "no key". Meaning is private to the provider. */
typedef uint32_t cl_key_t;
#define CL_KEY_NONE ((cl_key_t)0)

/** AEAD algorithms (COSE algorithm values). */
typedef enum cl_aead_alg {
    CL_AEAD_A128GCM = 1,             /**< AES-128-GCM, 12-byte nonce, 16-byte tag */
    CL_AEAD_AES_CCM_16_64_128 = 10,  /**< AES-128-CCM, 13-byte nonce, 8-byte tag */
    CL_AEAD_AES_CCM_16_128_128 = 30, /**< AES-128-CCM, 13-byte nonce, 16-byte tag */
    CL_AEAD_CHACHA20_POLY1305 = 24,  /**< RFC 8439, 32-byte key, 12-byte nonce, 16-byte tag */
} cl_aead_alg_t;

/** Signature algorithms (COSE values). */
typedef enum cl_sig_alg {
    CL_SIG_ES256 = -7, /**< ECDSA P-256 SHA-256; signature is raw r || s (64 bytes) */
    CL_SIG_EDDSA = -8, /**< Ed25519 (64-byte signature) */
} cl_sig_alg_t;

/** Asymmetric key types (COSE curve values). */
typedef enum cl_key_type {
    CL_KEY_P256 = 1,    /**< NIST P-256: ECDH and/or ES256 */
    CL_KEY_X25519 = 4,  /**< X25519 ECDH */
    CL_KEY_ED25519 = 6, /**< Ed25519 signatures */
} cl_key_type_t;

/** Key usage flags (a key is generated/imported for these and refuses others). */
#define CL_KEY_USAGE_ECDH 0x1u
#define CL_KEY_USAGE_SIGN 0x2u
#define CL_KEY_USAGE_VERIFY 0x4u

/** Public key encodings produced/accepted (see key_export_public). */
#define CL_PUB_MAX 65 /**< P-256 uncompressed 0x04||x||y */
#define CL_SIG_MAX 64
#define CL_ECDH_MAX 32
#define CL_SHA256_LEN 32

/** One part of a message given as a list of parts (hash / HMAC inputs). */
typedef struct cl_buf {
    const uint8_t *p;
    size_t len;
} cl_buf_t;

#define CL_CRYPTO_OPS_VERSION 1

/**
 * The provider table. Add slots only at the end and bump the version.
 * `self` is the provider's private state (cl_crypto_t.impl).
 */
typedef struct cl_crypto_ops {
    uint32_t version; /**< CL_CRYPTO_OPS_VERSION */
    const char *name; /**< e.g. "openssl", "openssl+aesni", "pkcs11" */

    /** Cryptographically secure random bytes. */
    cl_status_t (*random)(void *self, uint8_t *out, size_t len);

    /** SHA-256 of the concatenation of parts[0..n). */
    cl_status_t (*sha256)(void *self, const cl_buf_t *parts, size_t n, uint8_t out[32]);
    /** HMAC-SHA-256(key, concatenation of parts). */
    cl_status_t (*hmac_sha256)(void *self, const uint8_t *key, size_t key_len,
                               const cl_buf_t *parts, size_t n, uint8_t out[32]);
    /** HKDF-Extract (RFC 5869) with SHA-256; empty salt = 32 zero bytes. */
    cl_status_t (*hkdf_extract)(void *self, const uint8_t *salt, size_t salt_len,
                                const uint8_t *ikm, size_t ikm_len, uint8_t prk[32]);
    /** HKDF-Expand with SHA-256; out_len <= 255 * 32. */
    cl_status_t (*hkdf_expand)(void *self, const uint8_t *prk, size_t prk_len, const uint8_t *info,
                               size_t info_len, uint8_t *out, size_t out_len);

    /** Imports a symmetric AEAD key; the provider copies (and owns) it. */
    cl_status_t (*aead_import)(void *self, cl_aead_alg_t alg, const uint8_t *key, size_t key_len,
                               cl_key_t *out);
    /** out = ciphertext || tag; *out_len = pt_len + tag length. out may equal pt. */
    cl_status_t (*aead_encrypt)(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                                size_t pt_len, uint8_t *out, size_t out_size, size_t *out_len);
    /** in = ciphertext || tag; CL_ERR_AUTH (output wiped) on a bad tag. out may equal in. */
    cl_status_t (*aead_decrypt)(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                const uint8_t *aad, size_t aad_len, const uint8_t *in,
                                size_t in_len, uint8_t *out, size_t out_size, size_t *out_len);

    /**
     * Generates a key pair inside the provider. pub receives the public key
     * (P-256: 65-byte uncompressed SEC1; X25519/Ed25519: 32 bytes); pub may be NULL.
     */
    cl_status_t (*key_generate)(void *self, cl_key_type_t type, uint32_t usage, cl_key_t *out,
                                uint8_t *pub, size_t pub_size, size_t *pub_len);
    /**
     * Imports a private key (P-256: 32-byte scalar; X25519/Ed25519: 32 bytes).
     * Used by software keystores and by test vectors that fix ephemeral keys.
     */
    cl_status_t (*key_import_private)(void *self, cl_key_type_t type, uint32_t usage,
                                      const uint8_t *priv, size_t priv_len, cl_key_t *out);
    /**
     * Imports a public key for verification (validated once here).
     * P-256: 65-byte uncompressed, 33-byte compressed, or 32-byte x-only
     * (EDHOC compact form; the even-y point is taken). X25519/Ed25519: 32 bytes.
     */
    cl_status_t (*key_import_public)(void *self, cl_key_type_t type, const uint8_t *pub,
                                     size_t pub_len, cl_key_t *out);
    /** Public part of a key (format as key_generate). */
    cl_status_t (*key_export_public)(void *self, cl_key_t key, uint8_t *pub, size_t pub_size,
                                     size_t *pub_len);
    /**
     * ECDH between our private key and a peer public key given as bytes
     * (formats as key_import_public). Output is the shared x-coordinate /
     * X25519 output (32 bytes). Invalid or low-order peer keys: CL_ERR_BAD_INPUT.
     */
    cl_status_t (*ecdh)(void *self, cl_key_t priv, const uint8_t *peer_pub, size_t peer_len,
                        uint8_t *secret, size_t secret_size, size_t *secret_len);
    /** Signs msg with a private key (ES256: raw r || s; EdDSA: 64 bytes). */
    cl_status_t (*sign)(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                        size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len);
    /** Verifies a signature with a public (or private) key handle; CL_ERR_AUTH if bad. */
    cl_status_t (*verify)(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                          size_t msg_len, const uint8_t *sig, size_t sig_len);
    /** Destroys a key (wipes it); CL_KEY_NONE and unknown handles are ignored. */
    void (*key_destroy)(void *self, cl_key_t key);
} cl_crypto_ops_t;

/** A provider instance: its table and its private state. */
typedef struct cl_crypto {
    const cl_crypto_ops_t *ops;
    void *self;
} cl_crypto_t;

/* Thin inline wrappers so call sites read naturally. */
static inline cl_status_t cl_random(const cl_crypto_t *c, uint8_t *out, size_t len)
{
    return c->ops->random(c->self, out, len);
}
static inline cl_status_t cl_sha256(const cl_crypto_t *c, const cl_buf_t *parts, size_t n,
                                    uint8_t out[32])
{
    return c->ops->sha256(c->self, parts, n, out);
}
static inline cl_status_t cl_hmac_sha256(const cl_crypto_t *c, const uint8_t *key, size_t key_len,
                                         const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    return c->ops->hmac_sha256(c->self, key, key_len, parts, n, out);
}
static inline cl_status_t cl_hkdf_extract(const cl_crypto_t *c, const uint8_t *salt,
                                          size_t salt_len, const uint8_t *ikm, size_t ikm_len,
                                          uint8_t prk[32])
{
    return c->ops->hkdf_extract(c->self, salt, salt_len, ikm, ikm_len, prk);
}
static inline cl_status_t cl_hkdf_expand(const cl_crypto_t *c, const uint8_t *prk, size_t prk_len,
                                         const uint8_t *info, size_t info_len, uint8_t *out,
                                         size_t out_len)
{
    return c->ops->hkdf_expand(c->self, prk, prk_len, info, info_len, out, out_len);
}
static inline cl_status_t cl_aead_import(const cl_crypto_t *c, cl_aead_alg_t alg,
                                         const uint8_t *key, size_t key_len, cl_key_t *out)
{
    return c->ops->aead_import(c->self, alg, key, key_len, out);
}
static inline cl_status_t cl_aead_encrypt(const cl_crypto_t *c, cl_key_t key, const uint8_t *nonce,
                                          size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                          const uint8_t *pt, size_t pt_len, uint8_t *out,
                                          size_t out_size, size_t *out_len)
{
    return c->ops->aead_encrypt(c->self, key, nonce, nonce_len, aad, aad_len, pt, pt_len, out,
                                out_size, out_len);
}
CL_MUST_CHECK static inline cl_status_t
cl_aead_decrypt(const cl_crypto_t *c, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                const uint8_t *aad, size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out,
                size_t out_size, size_t *out_len)
{
    return c->ops->aead_decrypt(c->self, key, nonce, nonce_len, aad, aad_len, in, in_len, out,
                                out_size, out_len);
}
static inline void cl_key_destroy(const cl_crypto_t *c, cl_key_t key)
{
    if (c != NULL && c->ops != NULL)
        c->ops->key_destroy(c->self, key);
}

/** Key length, nonce length and tag length of an AEAD; CL_ERR_UNSUPPORTED if unknown. */
cl_status_t cl_aead_params(cl_aead_alg_t alg, size_t *key_len, size_t *nonce_len,
                           size_t *tag_len) CL_MUST_CHECK;

/** Usages a key type supports (CL_KEY_USAGE_*); 0 for an unknown type. */
uint32_t cl_key_usages(cl_key_type_t type);
/** Length of a public key as providers export it: 65 (P-256 uncompressed) or 32. */
size_t cl_key_pub_len(cl_key_type_t type);

/** Constant-time comparison: 0 when equal. Never branches on the contents. */
int cl_ct_memcmp(const void *a, const void *b, size_t len);
/** Wipes memory in a way the compiler may not elide. */
void cl_wipe(void *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif
