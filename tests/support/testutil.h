/*
 * testutil.h - shared helpers for the cmocka tests: hex decoding, loading
 * the JSON test-vector files (tests/vectors/, path given by the build as
 * CL_VECTOR_DIR), and a ready crypto provider.
 */
#ifndef CLOISTER_TESTUTIL_H
#define CLOISTER_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <cjson/cJSON.h>

#include "cloister/crypto.h"

/** Decodes lowercase/uppercase hex into out; returns the byte count or fails the test. */
size_t tu_hex(const char *hex, uint8_t *out, size_t out_size);
/** Decodes hex into a heap buffer (freed automatically at exit); *len set. */
uint8_t *tu_hex_alloc(const char *hex, size_t *len);
/** Loads tests/vectors/<name> as a cJSON tree (fails the test if missing). */
cJSON *tu_load_vectors(const char *name);
/** String member of a JSON object (fails the test when absent / not a string). */
const char *tu_str(const cJSON *obj, const char *key);
/** Like tu_str but returns NULL when the member is absent or JSON null. */
const char *tu_str_opt(const cJSON *obj, const char *key);
/** Hex member decoded into a heap buffer (freed at exit). NULL + len 0 when JSON null. */
uint8_t *tu_hexm(const cJSON *obj, const char *key, size_t *len);
/** Asserts that two byte strings are equal, printing both in hex on mismatch. */
#define tu_assert_bytes(a, alen, b, blen)                                                          \
    tu_assert_bytes_((a), (alen), (b), (blen), __FILE__, __LINE__)
void tu_assert_bytes_(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                      const char *file, int line);
/** A fresh OpenSSL provider (fastpath on/off); free with cl_crypto_openssl_free. */
void tu_crypto(cl_crypto_t *c, unsigned flags);

#endif
