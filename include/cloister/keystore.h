/*
 * cloister/keystore.h - the software keystore: private keys in PEM files.
 *
 * A device or client without a secure element keeps its static key in a
 * PEM file readable by its owner only. cl_keystore_file_load reads such a
 * file (PKCS#8 "PRIVATE KEY" for P-256, X25519 and Ed25519; also SEC1
 * "EC PRIVATE KEY" for P-256), checks that nobody but the owner can read it,
 * and imports the key into a crypto provider, which from then on holds it
 * behind a handle; every copy of the key bytes made on the way is wiped.
 * cl_keystore_file_generate creates such a file; cl_keystore_file_public
 * reads the public key of one.
 *
 * File rules (as OpenSSH applies to its identity files): the path must name
 * a regular file (a symlink to one is fine), owned by the effective user or
 * root, with no permission bit for group or others (0600, 0400). A file
 * that breaks a rule is refused before any byte of it is parsed.
 *
 * Errors: CL_ERR_NOT_FOUND the file does not exist; CL_ERR_STATE the file
 * exists but may not be used (permissions, owner, not a regular file) or,
 * when generating, exists already; CL_ERR_BAD_INPUT not a parsable PEM
 * private key; CL_ERR_UNSUPPORTED a well-formed key of another type or
 * curve, or an encrypted PEM; CL_ERR_PERSIST an I/O error reading or
 * writing. Every function takes an optional (err, err_size) buffer that
 * receives one line for humans naming the file and the reason; it never
 * contains key material.
 *
 * Lives in keystore/ (it does file I/O): never linked into the trusted core.
 */
#ifndef CLOISTER_KEYSTORE_H
#define CLOISTER_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Largest key file read (bytes); a PEM private key of the supported types is < 1 KiB. */
#define CL_KEYSTORE_FILE_MAX 16384
/** Suggested size of the human error buffer. */
#define CL_KEYSTORE_ERR_SIZE 256

/**
 * Loads the private key in the PEM file at path into provider c (through
 * c->ops->key_import_private) and returns its handle in *out. usage is
 * passed to the provider; 0 means every usage the key type allows (P-256:
 * ECDH | SIGN | VERIFY, X25519: ECDH, Ed25519: SIGN | VERIFY). *type (may be
 * NULL) receives the key type found in the file.
 */
cl_status_t cl_keystore_file_load(const cl_crypto_t *c, const char *path, uint32_t usage,
                                  cl_key_t *out, cl_key_type_t *type, char *err,
                                  size_t err_size) CL_MUST_CHECK;

/**
 * Generates a new key of the given type with OpenSSL and writes it to path
 * as PKCS#8 PEM: the file is created with O_CREAT | O_EXCL (never
 * overwrites, never follows a symlink) and mode 0600, written, fsync'ed,
 * and so is its directory. On failure no file is left behind. pub (may be
 * NULL) receives the public key: P-256 65-byte uncompressed SEC1, X25519 /
 * Ed25519 32 bytes.
 */
cl_status_t cl_keystore_file_generate(const char *path, cl_key_type_t type, uint8_t *pub,
                                      size_t pub_size, size_t *pub_len, char *err,
                                      size_t err_size) CL_MUST_CHECK;

/**
 * Public key of the private key in the PEM file at path (same file rules and
 * errors as load; same encoding as generate). *type (may be NULL) receives
 * the key type.
 */
cl_status_t cl_keystore_file_public(const char *path, cl_key_type_t *type, uint8_t *pub,
                                    size_t pub_size, size_t *pub_len, char *err,
                                    size_t err_size) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
