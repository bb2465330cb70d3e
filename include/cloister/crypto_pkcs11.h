/*
 * cloister/crypto_pkcs11.h - a crypto provider whose private keys live in a
 * PKCS#11 token (secure element, HSM, SoftHSM2 in tests).
 *
 * The provider implements the whole cl_crypto_ops_t table (name "pkcs11"),
 * so EDHOC and OSCORE run on it unchanged:
 *
 * - key_generate creates the key pair INSIDE the token as session objects
 *   (ephemeral keys: gone when the provider is freed), private half
 *   CKA_SENSITIVE=TRUE, CKA_EXTRACTABLE=FALSE, CKA_DERIVE only for ECDH
 *   usage, CKA_SIGN only for signing usage. cl_crypto_pkcs11_generate_key
 *   does the same as token objects with a CKA_LABEL (static keys), and
 *   cl_crypto_pkcs11_find_key finds such a key again by its label.
 * - ecdh and sign with a token key run in the token (CKM_ECDH1_DERIVE with
 *   CKD_NULL; CKM_ECDSA over a SHA-256 computed outside, CKM_EDDSA). The ECDH
 *   *output* (the shared secret) does leave the token, because the provider
 *   table returns it as bytes and EDHOC's HKDF runs outside; see
 *   docs/keystores.md for what stays in the token and what a token with
 *   CKM_HKDF_DERIVE (PKCS#11 3.0) would change.
 * - everything else - random, SHA-256, HMAC, HKDF, AEAD keys, public keys,
 *   verify, and key_import_private (the bytes were in host memory already)
 *   - is delegated to an OpenSSL provider created inside the instance.
 *
 * Key types: P-256 needs CKM_EC_KEY_PAIR_GEN (+ CKM_ECDH1_DERIVE /
 * CKM_ECDSA or CKM_ECDSA_SHA256). Ed25519 needs CKM_EC_EDWARDS_KEY_PAIR_GEN +
 * CKM_EDDSA. X25519 needs CKM_EC_MONTGOMERY_KEY_PAIR_GEN (PKCS#11 3.0) or,
 * SoftHSM2 2.6's variant, CKM_EC_EDWARDS_KEY_PAIR_GEN accepting the X25519
 * curve; both with CKM_ECDH1_DERIVE. A type the token cannot do gives
 * CL_ERR_UNSUPPORTED (and cl_crypto_pkcs11_last_error says which mechanism
 * is missing); cl_crypto_pkcs11_caps tells beforehand.
 *
 * The module is loaded with dlopen and initialised once per process
 * (reference-counted across instances; the PKCS#11 library is told to use
 * OS locking). An instance holds one read-write session on the token whose
 * label was given, logged in as the user. Like every provider, an instance
 * is not thread-safe: use one per thread.
 *
 * The PIN is handed to C_Login and nowhere else: it is never copied into
 * the instance, logged or put into an error message.
 *
 * This lives in keystore/ (libcloister_keystore), not lib/: it does I/O
 * (dlopen, the token) and is never linked into the trusted core.
 */
#ifndef CLOISTER_CRYPTO_PKCS11_H
#define CLOISTER_CRYPTO_PKCS11_H

#include <stdbool.h>
#include <stddef.h>

#include "cloister/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest token label (PKCS#11 CK_TOKEN_INFO.label is 32 bytes, space padded). */
#define CL_PKCS11_TOKEN_LABEL_MAX 32
/** Longest key label accepted by generate_key / find_key (bytes, without NUL). */
#define CL_PKCS11_KEY_LABEL_MAX 64

/* Capabilities found in the token's mechanism list (cl_crypto_pkcs11_caps). */
#define CL_PKCS11_CAP_P256_ECDH 0x01u    /**< CKM_EC_KEY_PAIR_GEN + CKM_ECDH1_DERIVE */
#define CL_PKCS11_CAP_P256_ECDSA 0x02u   /**< CKM_EC_KEY_PAIR_GEN + CKM_ECDSA or _SHA256 */
#define CL_PKCS11_CAP_ECDSA_SHA256 0x04u /**< CKM_ECDSA_SHA256 (hashing in the token) */
#define CL_PKCS11_CAP_ED25519 0x08u      /**< CKM_EC_EDWARDS_KEY_PAIR_GEN + CKM_EDDSA */
#define CL_PKCS11_CAP_X25519 0x10u       /**< X25519 key generation + CKM_ECDH1_DERIVE */
#define CL_PKCS11_CAP_X25519_MONTGOMERY 0x20u /**< ...as CKK_EC_MONTGOMERY (PKCS#11 3.0) */
#define CL_PKCS11_CAP_HKDF 0x40u         /**< CKM_HKDF_DERIVE (PKCS#11 3.0) */
#define CL_PKCS11_CAP_RANDOM 0x80u       /**< token has an RNG (CKF_RNG) */

/**
 * Loads the PKCS#11 module at module_path, opens a read-write session on the
 * token labelled token_label and logs in with the user PIN. pin NULL: log in
 * through the reader's PIN pad when the token has a protected authentication
 * path (CKF_PROTECTED_AUTHENTICATION_PATH), else do not log in (for tokens
 * that allow key use without one).
 *
 * Errors (with a one-line human explanation in err when err is not NULL;
 * the PIN never appears in it):
 * CL_ERR_NOT_FOUND   no module file / not a PKCS#11 module / no such token
 *                    (the message lists the labels present);
 * CL_ERR_AUTH        wrong PIN or PIN locked;
 * CL_ERR_INVALID_ARG NULL arguments, labels too long;
 * CL_ERR_CRYPTO      any other module failure (message names the CKR_ code).
 * On failure *c is zeroed and cl_crypto_pkcs11_free(c) is a no-op.
 *
 * PKCS#11 login state belongs to the process, not the session: while another
 * instance (or other code) of this process is logged in to the token, the
 * token answers CKR_USER_ALREADY_LOGGED_IN without checking the PIN, and so
 * this call succeeds whatever PIN it is given. The PIN protects the token
 * from other processes and other machines, not from code in this one.
 */
cl_status_t cl_crypto_pkcs11_new(cl_crypto_t *c, const char *module_path,
                                 const char *token_label, const char *pin, char *err,
                                 size_t err_size) CL_MUST_CHECK;

/** Closes the session (session keys vanish with it) and unloads the module; zeroed-safe. */
void cl_crypto_pkcs11_free(cl_crypto_t *c);

/** CL_PKCS11_CAP_* bits found when the instance was created (0 for a foreign provider). */
unsigned cl_crypto_pkcs11_caps(const cl_crypto_t *c);

/**
 * Human explanation of the instance's last failed token operation (e.g.
 * "C_DeriveKey: CKR_KEY_TYPE_INCONSISTENT"); "" when none. Never sensitive.
 */
const char *cl_crypto_pkcs11_last_error(const cl_crypto_t *c);

/**
 * Generates a key pair inside the token as TOKEN objects (persistent) with
 * CKA_LABEL = label on both halves; the private half sensitive and not
 * extractable. pub (may be NULL) receives the public key as key_generate.
 * CL_ERR_STATE when a private key with that label exists already.
 */
cl_status_t cl_crypto_pkcs11_generate_key(const cl_crypto_t *c, cl_key_type_t type,
                                          uint32_t usage, const char *label, cl_key_t *out,
                                          uint8_t *pub, size_t pub_size,
                                          size_t *pub_len) CL_MUST_CHECK;

/**
 * Finds the private key with CKA_LABEL = label (and its public key object of
 * the same label, if there is one) and returns a handle to it. Type and
 * usage are read from the token (CKA_KEY_TYPE, CKA_EC_PARAMS, CKA_DERIVE,
 * CKA_SIGN). CL_ERR_NOT_FOUND if there is none, CL_ERR_STATE if the label is
 * ambiguous, CL_ERR_UNSUPPORTED for a key type this provider cannot use.
 * Destroying the handle forgets it; the token object stays.
 */
cl_status_t cl_crypto_pkcs11_find_key(const cl_crypto_t *c, const char *label,
                                      cl_key_t *out) CL_MUST_CHECK;

/** Deletes a token key (both objects) permanently and forgets the handle. */
cl_status_t cl_crypto_pkcs11_delete_key(const cl_crypto_t *c, cl_key_t key) CL_MUST_CHECK;

/**
 * Test-visible: asks the token whether the private key of `key` could leave
 * it. *extractable is true when CKA_EXTRACTABLE is TRUE or CKA_SENSITIVE is
 * FALSE (either lets the key value out, wrapped or in clear).
 * CL_ERR_INVALID_ARG for a key that is not a token key.
 */
cl_status_t cl_crypto_pkcs11_key_is_extractable(const cl_crypto_t *c, cl_key_t key,
                                                bool *extractable) CL_MUST_CHECK;

/**
 * Test-visible: the PKCS#11 object handle (CK_OBJECT_HANDLE) of a token
 * key's private half, so that tests can query the token directly.
 */
cl_status_t cl_crypto_pkcs11_key_object(const cl_crypto_t *c, cl_key_t key,
                                        unsigned long *object) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
