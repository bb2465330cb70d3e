/*
 * cloister/crypto_openssl.h - the OpenSSL 3 crypto provider.
 *
 * Keys live in a slot table owned by the provider; a handle carries a slot
 * index and a generation so a stale handle is refused. AEAD slots keep their
 * EVP_CIPHER_CTX keyed once, and (unless CL_CRYPTO_OPENSSL_NO_FASTPATH) AES-CCM
 * keys take the constant-time AES-NI path when the CPU has AES-NI.
 * Asymmetric slots keep their EVP_PKEY (and a reusable derive/sign context).
 */
#ifndef CLOISTER_CRYPTO_OPENSSL_H
#define CLOISTER_CRYPTO_OPENSSL_H

#include "cloister/crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Do not use the AES-NI CCM fast path (always go through EVP). */
#define CL_CRYPTO_OPENSSL_NO_FASTPATH 0x1u

/** Creates a provider instance in *c. Free with cl_crypto_openssl_free. */
cl_status_t cl_crypto_openssl_new(cl_crypto_t *c, unsigned flags) CL_MUST_CHECK;
/** Destroys every key (wiped) and the instance; safe on a zeroed cl_crypto_t. */
void cl_crypto_openssl_free(cl_crypto_t *c);
/** True when this instance uses the AES-NI CCM fast path. */
int cl_crypto_openssl_has_fastpath(const cl_crypto_t *c);

#ifdef __cplusplus
}
#endif
#endif
