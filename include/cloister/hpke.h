/*
 * cloister/hpke.h - HPKE, Hybrid Public Key Encryption (RFC 9180).
 *
 * What the Key Vault needs: a smart meter encrypts readings to a stream's
 * public key, and the vault wraps a stream private key to an attested
 * consumer. Supported:
 *
 *   modes  base (0), psk (1), auth (2), auth_psk (3)
 *   KEMs   DHKEM(P-256, HKDF-SHA256) 0x0010, DHKEM(X25519, HKDF-SHA256) 0x0020
 *   KDF    HKDF-SHA256 0x0001
 *   AEADs  AES-128-GCM 0x0001, ChaCha20-Poly1305 0x0003, export-only 0xFFFF
 *
 * Everything goes through the crypto provider table (cl_crypto_t): ECDH,
 * ephemeral key generation, HKDF, and the AEAD, whose key is imported into
 * the provider as a handle when a context is set up. Private keys are
 * handles (cl_key_t) and never bytes: the recipient's skR and, in the auth
 * modes, the sender's skS must be ECDH keys of the KEM's curve. Public keys
 * and enc are bytes in the KEM's encoding: P-256 65-byte uncompressed SEC1
 * (0x04 || x || y; no compressed forms), X25519 32 bytes.
 *
 * Validation (RFC 9180 7.1.4): pkR, enc (pkE) and pkS must have the exact
 * length and form above and are checked by the provider (P-256: coordinates
 * in range and on the curve; the point at infinity has no 65-byte encoding);
 * an X25519 result that is all zero (a low-order peer key) is refused here
 * as well, in constant time, whatever the provider does. All of these are
 * CL_ERR_BAD_INPUT. Suite or mode identifiers this file does not implement
 * are CL_ERR_UNSUPPORTED; inconsistent PSK inputs (5.1), a PSK shorter than
 * 32 bytes, a missing sender key in an auth mode or a key of the wrong type
 * are CL_ERR_INVALID_ARG; info, psk, psk_id, exporter_context and ikm longer
 * than CL_HPKE_MAX_INPUT are CL_ERR_LIMIT.
 *
 * Contexts are caller-allocated (no heap, no globals). A context holds the
 * AEAD key handle, base_nonce, the sequence number and exporter_secret;
 * cl_hpke_ctx_free destroys the key and wipes it, and a setup that fails
 * leaves the context freed. Every other secret (DH outputs, shared_secret,
 * the key schedule's secret, the AEAD key bytes) lives on the stack of one
 * call and is wiped on every path. Seal and open advance the sequence
 * number only on success; when it would overflow (2^96 - 1 messages, 5.2)
 * they answer CL_ERR_SEQ_EXHAUSTED. A sender context cannot open and a
 * recipient context cannot seal (CL_ERR_STATE); an export-only context can
 * only export (CL_ERR_UNSUPPORTED).
 *
 * Writers follow the provider conventions: (out, out_size, *out_len),
 * nothing written when the buffer is too small (CL_ERR_BUFFER_TOO_SMALL),
 * ciphertext = AEAD ciphertext || 16-byte tag, seal and open may work in
 * place (out == in), a failed open wipes the output (CL_ERR_AUTH).
 */
#ifndef CLOISTER_HPKE_H
#define CLOISTER_HPKE_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/crypto.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Modes (RFC 9180 Table 1). */
#define CL_HPKE_MODE_BASE 0x00
#define CL_HPKE_MODE_PSK 0x01
#define CL_HPKE_MODE_AUTH 0x02
#define CL_HPKE_MODE_AUTH_PSK 0x03

/* Algorithm identifiers (RFC 9180 Tables 2, 3, 5). */
#define CL_HPKE_KEM_P256_SHA256 0x0010   /**< DHKEM(P-256, HKDF-SHA256) */
#define CL_HPKE_KEM_X25519_SHA256 0x0020 /**< DHKEM(X25519, HKDF-SHA256) */
#define CL_HPKE_KDF_HKDF_SHA256 0x0001
#define CL_HPKE_AEAD_AES_128_GCM 0x0001
#define CL_HPKE_AEAD_CHACHA20_POLY1305 0x0003
#define CL_HPKE_AEAD_EXPORT_ONLY 0xFFFF

#define CL_HPKE_MAX_ENC 65                           /**< Nenc: 65 (P-256), 32 (X25519) */
#define CL_HPKE_TAG_LEN 16                           /**< Nt of both AEADs */
#define CL_HPKE_NONCE_LEN 12                         /**< Nn of both AEADs */
#define CL_HPKE_HASH_LEN 32                          /**< Nh of HKDF-SHA256 */
#define CL_HPKE_MAX_EXPORT (255u * CL_HPKE_HASH_LEN) /**< largest Export length L */

/**
 * Longest info, psk, psk_id, exporter_context and DeriveKeyPair ikm. They are
 * prefixed with HPKE's labels in a stack buffer of about this size; RFC 9180
 * 7.2.1 recommends that implementations accept at least 64 bytes.
 */
#ifndef CL_HPKE_MAX_INPUT
#define CL_HPKE_MAX_INPUT 256
#endif

/** A ciphersuite: (KEM, KDF, AEAD) identifiers. */
typedef struct cl_hpke_suite {
    uint16_t kem_id;
    uint16_t kdf_id;
    uint16_t aead_id;
} cl_hpke_suite_t;

/**
 * Inputs of a setup besides the keys. Byte strings are read during the call
 * only. Unused fields must be zero/NULL: psk and psk_id are required in the
 * psk modes and refused in the others (both or neither, RFC 9180 5.1).
 */
typedef struct cl_hpke_params {
    cl_hpke_suite_t suite;
    uint8_t mode; /**< CL_HPKE_MODE_* */
    const uint8_t *info;
    size_t info_len;
    const uint8_t *psk; /**< psk modes: at least 32 bytes */
    size_t psk_len;
    const uint8_t *psk_id;
    size_t psk_id_len;
    /** Auth modes, sender side: skS, an ECDH key of the KEM's curve (ignored by the recipient). */
    cl_key_t sender_key;
    /** Auth modes, recipient side: pkSm, the sender's public key (ignored by the sender). */
    const uint8_t *sender_pub;
    size_t sender_pub_len;
} cl_hpke_params_t;

/** An encryption context (RFC 9180 5.2); see cl_hpke_setup_s / cl_hpke_setup_r. */
typedef struct cl_hpke_ctx {
    const cl_crypto_t *crypto;
    cl_key_t key; /**< AEAD key handle; CL_KEY_NONE when export-only or not set up */
    cl_hpke_suite_t suite;
    uint8_t role; /**< 0 not set up / freed, 1 sender, 2 recipient */
    uint8_t mode;
    uint8_t base_nonce[CL_HPKE_NONCE_LEN];
    uint8_t seq[CL_HPKE_NONCE_LEN]; /**< sequence number, big-endian, as wide as the nonce */
    uint8_t exporter_secret[CL_HPKE_HASH_LEN];
} cl_hpke_ctx_t;

/** CL_OK when this implementation supports the suite, else CL_ERR_UNSUPPORTED. */
cl_status_t cl_hpke_suite_supported(const cl_hpke_suite_t *suite) CL_MUST_CHECK;
/** Nenc (= Npk) of a KEM: 65 for P-256, 32 for X25519, 0 when unknown. */
size_t cl_hpke_enc_len(uint16_t kem_id);

/**
 * Sender setup (SetupBaseS, SetupPSKS, SetupAuthS, SetupAuthPSKS by
 * p->mode): encapsulates to the recipient public key pk_r with a fresh
 * ephemeral key and writes enc (Nenc bytes). ctx is overwritten: free a
 * context before setting it up again.
 */
cl_status_t cl_hpke_setup_s(cl_hpke_ctx_t *ctx, const cl_crypto_t *c, const cl_hpke_params_t *p,
                            const uint8_t *pk_r, size_t pk_r_len, uint8_t *enc, size_t enc_size,
                            size_t *enc_len) CL_MUST_CHECK;

/**
 * Recipient setup (SetupBaseR ... SetupAuthPSKR by p->mode) from enc and the
 * recipient private key handle sk_r. A wrong key, enc, info, psk or sender
 * key is not detected here (HPKE has no key confirmation) but by the first
 * open (CL_ERR_AUTH); an invalid enc or pkS is CL_ERR_BAD_INPUT.
 */
cl_status_t cl_hpke_setup_r(cl_hpke_ctx_t *ctx, const cl_crypto_t *c, const cl_hpke_params_t *p,
                            cl_key_t sk_r, const uint8_t *enc, size_t enc_len) CL_MUST_CHECK;

/** SetupBaseS: cl_hpke_setup_s in mode base. */
cl_status_t cl_hpke_setup_base_s(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_suite_t *suite, const uint8_t *pk_r, size_t pk_r_len,
                                 const uint8_t *info, size_t info_len, uint8_t *enc,
                                 size_t enc_size, size_t *enc_len) CL_MUST_CHECK;
/** SetupBaseR: cl_hpke_setup_r in mode base. */
cl_status_t cl_hpke_setup_base_r(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_suite_t *suite, cl_key_t sk_r, const uint8_t *enc,
                                 size_t enc_len, const uint8_t *info,
                                 size_t info_len) CL_MUST_CHECK;
/** SetupAuthS: cl_hpke_setup_s in mode auth with the sender's private key sk_s. */
cl_status_t cl_hpke_setup_auth_s(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_suite_t *suite, const uint8_t *pk_r, size_t pk_r_len,
                                 const uint8_t *info, size_t info_len, cl_key_t sk_s, uint8_t *enc,
                                 size_t enc_size, size_t *enc_len) CL_MUST_CHECK;
/** SetupAuthR: cl_hpke_setup_r in mode auth with the sender's public key pk_s. */
cl_status_t cl_hpke_setup_auth_r(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_suite_t *suite, cl_key_t sk_r, const uint8_t *enc,
                                 size_t enc_len, const uint8_t *info, size_t info_len,
                                 const uint8_t *pk_s, size_t pk_s_len) CL_MUST_CHECK;

/**
 * ContextS.Seal: ct = AEAD(key, base_nonce XOR seq, aad, pt) || tag
 * (pt_len + 16 bytes), then seq + 1. Sender contexts only.
 */
cl_status_t cl_hpke_seal(cl_hpke_ctx_t *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                         size_t pt_len, uint8_t *ct, size_t ct_size, size_t *ct_len) CL_MUST_CHECK;

/**
 * ContextR.Open: the plaintext of the ciphertext with the current sequence
 * number, then seq + 1. CL_ERR_AUTH (output wiped, seq unchanged) when it
 * is not authentic, including ct shorter than the tag. Recipient contexts only.
 */
cl_status_t cl_hpke_open(cl_hpke_ctx_t *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
                         size_t ct_len, uint8_t *pt, size_t pt_size, size_t *pt_len) CL_MUST_CHECK;

/**
 * Context.Export: out_len (<= CL_HPKE_MAX_EXPORT) bytes of
 * LabeledExpand(exporter_secret, "sec", exporter_context, L). Both roles.
 */
cl_status_t cl_hpke_export(const cl_hpke_ctx_t *ctx, const uint8_t *exporter_context,
                           size_t exporter_context_len, uint8_t *out, size_t out_len) CL_MUST_CHECK;

/** Destroys the AEAD key and wipes the context; safe on zeroed, failed or freed contexts. */
void cl_hpke_ctx_free(cl_hpke_ctx_t *ctx);

/**
 * Single-shot Seal<MODE> (RFC 9180 6.1): setup_s + one seal. Buffer sizes
 * (enc: Nenc, ct: pt_len + 16) are checked before any work.
 */
cl_status_t cl_hpke_seal_once(const cl_crypto_t *c, const cl_hpke_params_t *p, const uint8_t *pk_r,
                              size_t pk_r_len, const uint8_t *aad, size_t aad_len,
                              const uint8_t *pt, size_t pt_len, uint8_t *enc, size_t enc_size,
                              size_t *enc_len, uint8_t *ct, size_t ct_size,
                              size_t *ct_len) CL_MUST_CHECK;

/** Single-shot Open<MODE>: setup_r + one open. */
cl_status_t cl_hpke_open_once(const cl_crypto_t *c, const cl_hpke_params_t *p, cl_key_t sk_r,
                              const uint8_t *enc, size_t enc_len, const uint8_t *aad,
                              size_t aad_len, const uint8_t *ct, size_t ct_len, uint8_t *pt,
                              size_t pt_size, size_t *pt_len) CL_MUST_CHECK;

/**
 * DeriveKeyPair (RFC 9180 7.1.3) for a KEM: a deterministic ECDH key pair
 * from ikm (at least 32 bytes, at most CL_HPKE_MAX_INPUT), imported into the
 * provider with usage CL_KEY_USAGE_ECDH. P-256 uses the RFC's rejection
 * sampling (candidate range check in constant time). pub (may be NULL)
 * receives the public key in the KEM's encoding.
 */
cl_status_t cl_hpke_derive_key_pair(const cl_crypto_t *c, uint16_t kem_id, const uint8_t *ikm,
                                    size_t ikm_len, cl_key_t *out, uint8_t *pub, size_t pub_size,
                                    size_t *pub_len) CL_MUST_CHECK;

/**
 * TEST ONLY: cl_hpke_setup_s with the given ephemeral key sk_e (borrowed,
 * not destroyed) instead of a fresh one, so the RFC 9180 test vectors can be
 * reproduced. Reusing an ephemeral key reuses AEAD keys and nonces.
 */
cl_status_t cl_hpke_test_setup_s(cl_hpke_ctx_t *ctx, const cl_crypto_t *c,
                                 const cl_hpke_params_t *p, const uint8_t *pk_r, size_t pk_r_len,
                                 cl_key_t sk_e, uint8_t *enc, size_t enc_size,
                                 size_t *enc_len) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
