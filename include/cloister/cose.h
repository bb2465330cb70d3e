/*
 * cloister/cose.h - COSE (RFC 9052 / RFC 9053): what OSCORE and EDHOC need.
 *
 * Builders for the Enc_structure and Sig_structure (the AAD and the signed
 * bytes), and COSE_Encrypt0 / COSE_Sign1 message encode/decode on top of the
 * crypto provider. Header maps are passed as already-encoded CBOR (the
 * protected header is a bstr-wrapped map, the unprotected one a map); parsing
 * returns pointers into the caller's buffer. Header parameter lookup helpers
 * cover the labels Cloister uses (alg, kid, IV, Partial IV, x5t, x5chain).
 */
#ifndef CLOISTER_COSE_H
#define CLOISTER_COSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/crypto.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CBOR tags */
#define CL_COSE_TAG_ENCRYPT0 16
#define CL_COSE_TAG_SIGN1 18

/* Header labels (RFC 9052 section 3.1, RFC 9360) */
#define CL_COSE_HDR_ALG 1
#define CL_COSE_HDR_CRIT 2
#define CL_COSE_HDR_CONTENT_TYPE 3
#define CL_COSE_HDR_KID 4
#define CL_COSE_HDR_IV 5
#define CL_COSE_HDR_PARTIAL_IV 6
#define CL_COSE_HDR_KID_CONTEXT 10
#define CL_COSE_HDR_X5CHAIN 33
#define CL_COSE_HDR_X5T 34

/**
 * Enc_structure = ["Encrypt0", protected, external_aad] (context must be
 * "Encrypt0", "Encrypt" or an "Enc_Recipient"/"Mac_Recipient"/"Rec_Recipient"
 * string). protected is the *content* of the protected bstr (an encoded map or
 * empty). out may be NULL to size.
 */
cl_status_t cl_cose_enc_structure(uint8_t *out, size_t out_size, size_t *out_len,
                                  const char *context, const uint8_t *protected_hdr,
                                  size_t protected_len, const uint8_t *external_aad,
                                  size_t external_aad_len) CL_MUST_CHECK;

/**
 * Sig_structure = ["Signature1", body_protected, external_aad, payload]
 * (for "Signature1"; "Signature" adds sign_protected and is not needed here).
 */
cl_status_t cl_cose_sig_structure(uint8_t *out, size_t out_size, size_t *out_len,
                                  const uint8_t *protected_hdr, size_t protected_len,
                                  const uint8_t *external_aad, size_t external_aad_len,
                                  const uint8_t *payload, size_t payload_len) CL_MUST_CHECK;

/** A decoded COSE_Encrypt0 / COSE_Sign1: pointers into the message. */
typedef struct cl_cose_msg {
    bool tagged;
    const uint8_t *protected_hdr; /**< bstr content (encoded map or empty) */
    size_t protected_len;
    const uint8_t *unprotected; /**< encoded map */
    size_t unprotected_len;
    const uint8_t *content; /**< ciphertext (Encrypt0) or payload (Sign1); NULL if nil */
    size_t content_len;
    const uint8_t *signature; /**< Sign1 only */
    size_t signature_len;
} cl_cose_msg_t;

/** Parses COSE_Encrypt0 (tag 16 optional). */
cl_status_t cl_cose_encrypt0_parse(cl_cose_msg_t *m, const uint8_t *buf, size_t len) CL_MUST_CHECK;
/** Parses COSE_Sign1 (tag 18 optional). */
cl_status_t cl_cose_sign1_parse(cl_cose_msg_t *m, const uint8_t *buf, size_t len) CL_MUST_CHECK;

/**
 * Finds an int-labelled parameter in an encoded header map; returns its
 * encoded value (pointer into map). CL_ERR_NOT_FOUND when absent,
 * CL_ERR_BAD_INPUT when the map is malformed or has duplicate labels.
 */
cl_status_t cl_cose_header_find(const uint8_t *map, size_t map_len, int64_t label,
                                const uint8_t **value, size_t *value_len) CL_MUST_CHECK;
/** alg from protected (preferred) or unprotected header. */
cl_status_t cl_cose_header_alg(const cl_cose_msg_t *m, int64_t *alg) CL_MUST_CHECK;

/**
 * Encrypts into a complete COSE_Encrypt0: [protected, unprotected, ciphertext],
 * tagged when `tag` is true. protected_hdr is the map to wrap in a bstr (may
 * be empty); unprotected is an encoded map (NULL: empty map a0).
 */
cl_status_t cl_cose_encrypt0_encrypt(const cl_crypto_t *c, cl_key_t key, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *protected_hdr,
                                     size_t protected_len, const uint8_t *unprotected,
                                     size_t unprotected_len, const uint8_t *external_aad,
                                     size_t external_aad_len, const uint8_t *pt, size_t pt_len,
                                     bool tag, uint8_t *out, size_t out_size,
                                     size_t *out_len) CL_MUST_CHECK;

/** Decrypts a parsed COSE_Encrypt0 with this key and nonce; CL_ERR_AUTH on a bad tag. */
cl_status_t cl_cose_encrypt0_decrypt(const cl_crypto_t *c, cl_key_t key, const uint8_t *nonce,
                                     size_t nonce_len, const cl_cose_msg_t *m,
                                     const uint8_t *external_aad, size_t external_aad_len,
                                     uint8_t *out, size_t out_size, size_t *out_len) CL_MUST_CHECK;

/** Signs into a complete COSE_Sign1 (payload attached). */
cl_status_t cl_cose_sign1_sign(const cl_crypto_t *c, cl_key_t key, cl_sig_alg_t alg,
                               const uint8_t *protected_hdr, size_t protected_len,
                               const uint8_t *unprotected, size_t unprotected_len,
                               const uint8_t *external_aad, size_t external_aad_len,
                               const uint8_t *payload, size_t payload_len, bool tag, uint8_t *out,
                               size_t out_size, size_t *out_len) CL_MUST_CHECK;

/**
 * Verifies a parsed COSE_Sign1 with a public key handle. The alg in the
 * protected header must equal `alg` (CL_ERR_AUTH otherwise); detached
 * payloads are passed in payload/payload_len (NULL: use the attached one).
 */
cl_status_t cl_cose_sign1_verify(const cl_crypto_t *c, cl_key_t key, cl_sig_alg_t alg,
                                 const cl_cose_msg_t *m, const uint8_t *external_aad,
                                 size_t external_aad_len, const uint8_t *payload,
                                 size_t payload_len) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
