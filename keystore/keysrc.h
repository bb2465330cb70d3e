/*
 * keysrc.h - where a program's private keys come from (the examples, the CLI): a PEM file,
 * or a key inside a PKCS#11 token (SoftHSM2, a secure element, an HSM).
 *
 * A key is named on the command line either as a file path or as a small
 * RFC 7512-like URI, `pkcs11:token=LABEL;object=KEYLABEL`, with optional
 * query attributes `?module-path=...&pin-source=file:...`. The module and
 * PIN may also come from flags (--pkcs11-module, --token-label, --key-label,
 * --pin-file) or the environment (CLOISTER_PKCS11_MODULE,
 * CLOISTER_PKCS11_PIN). The PIN is read when the token is opened, handed to
 * the provider, and wiped; it is never printed or kept.
 *
 * A program opens exactly one crypto provider: the OpenSSL one, or, when a
 * key lives in a token, the PKCS#11 one (which keeps token keys in the token
 * and delegates the rest to OpenSSL), so EDHOC's ephemeral keys are then
 * generated in the token too.
 */
#ifndef CLOISTER_KEYSTORE_KEYSRC_H
#define CLOISTER_KEYSTORE_KEYSRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/crypto.h"

#define KEYSRC_PATH_MAX 1024
#define KEYSRC_LABEL_MAX 64

/** Token settings gathered from flags, the environment and URIs. */
typedef struct pkcs11_opts {
    char module[KEYSRC_PATH_MAX];     /**< "" = CLOISTER_PKCS11_MODULE or the SoftHSM2 default */
    char token[KEYSRC_LABEL_MAX + 1]; /**< token label */
    char key_label[KEYSRC_LABEL_MAX + 1]; /**< --key-label: the key when --key is absent */
    char pin_file[KEYSRC_PATH_MAX];       /**< "" = CLOISTER_PKCS11_PIN */
} pkcs11_opts_t;

/** One private key. */
typedef struct keysrc {
    bool pkcs11;                /**< token key (object label in `object`) */
    char file[KEYSRC_PATH_MAX]; /**< PEM file (pkcs11 == false) */
    char object[KEYSRC_LABEL_MAX + 1];
} keysrc_t;

/** Text for --help. */
extern const char keysrc_flags_help[];

/**
 * If argv[*i] is a token flag (--pkcs11-module, --token-label, --key-label,
 * --pin-file), records it, advances *i and returns 1; 0 if it is not one;
 * -1 (message in err) when its value is missing or too long.
 */
int keysrc_take_flag(pkcs11_opts_t *o, int argc, char **argv, int *i, char *err, size_t err_size);

/**
 * Parses a --key value: a file path, or a pkcs11: URI whose token, module
 * and PIN source update *o (a URI's values win over earlier flags).
 */
bool keysrc_parse(keysrc_t *k, pkcs11_opts_t *o, const char *arg, char *err, size_t err_size);

/** A key named only by --key-label (token key, no --key). */
void keysrc_from_label(keysrc_t *k, const pkcs11_opts_t *o);

/**
 * Opens the provider: PKCS#11 on o's token when `token` is true (module and
 * PIN resolved here; the PIN is wiped after login), OpenSSL otherwise.
 * *what names it for the log ("openssl", "pkcs11 token 'x' via module y").
 */
bool provider_open(cl_crypto_t *c, bool token, const pkcs11_opts_t *o, char *what, size_t what_size,
                   char *err, size_t err_size);

/** Frees the provider opened by provider_open (every key in it is destroyed). */
void provider_close(cl_crypto_t *c, bool token);

/**
 * Loads the private key k into provider c as a handle for `usage`
 * (CL_KEY_USAGE_SIGN and/or _ECDH, 0 = whatever the type allows; token keys
 * keep the usage they were generated with). *type receives the key's type. A token key's public key
 * says P-256 (65 bytes) but not Ed25519 vs X25519 (32 bytes): `hint` (the
 * certificate's key type, or 0) decides those.
 */
bool key_load(const cl_crypto_t *c, const keysrc_t *k, uint32_t usage, cl_key_type_t hint,
              cl_key_t *key, cl_key_type_t *type, char *err, size_t err_size);

/**
 * Generates a key pair labelled k->object inside the token if there is no
 * such key yet (*created tells). type: CL_KEY_P256 (sign + ECDH),
 * CL_KEY_ED25519 or CL_KEY_X25519.
 */
bool key_generate_in_token(const cl_crypto_t *c, const keysrc_t *k, cl_key_type_t type,
                           bool *created, char *err, size_t err_size);

/** Writes the public key of `key` (type `type`) to `path` as a PEM SubjectPublicKeyInfo. */
bool pubkey_write_pem(const cl_crypto_t *c, cl_key_t key, cl_key_type_t type, const char *path,
                      char *err, size_t err_size);

/** "P-256", "Ed25519", "X25519". */
const char *key_type_name(cl_key_type_t t);

#endif
