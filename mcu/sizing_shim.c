/*
 * mcu/sizing_shim.c - SIZING SHIM, NOT CRYPTOGRAPHY.
 *
 * Resolves the platform API of plat_crypto.h so that the firmware image
 * links and the footprint of our code (lib/, the client, the provider table)
 * can be measured. It contains no cryptographic primitive and no driver:
 * every function fails with CL_ERR_UNSUPPORTED (key_destroy does nothing), so
 * this image cannot run a handshake. A device replaces this file with its
 * crypto library (P-256 ECDH, SHA-256/HMAC/HKDF, AES-CCM, a DRBG) and its
 * network driver, whose size is NOT included in the figures of
 * scripts/mcu-footprint.sh. Each function is kept out of line (noinline,
 * not LTO'd) so the compiler cannot see the failure and drop our code.
 */
#include "plat_crypto.h"

#define UNSUPPORTED __attribute__((noinline)) cl_status_t

UNSUPPORTED plat_crypto_random(void *self, uint8_t *out, size_t len)
{
    (void)self, (void)out, (void)len;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_sha256(void *self, const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    (void)self, (void)parts, (void)n, (void)out;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_hmac_sha256(void *self, const uint8_t *key, size_t key_len,
                                    const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    (void)self, (void)key, (void)key_len, (void)parts, (void)n, (void)out;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_hkdf_extract(void *self, const uint8_t *salt, size_t salt_len,
                                     const uint8_t *ikm, size_t ikm_len, uint8_t prk[32])
{
    (void)self, (void)salt, (void)salt_len, (void)ikm, (void)ikm_len, (void)prk;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_hkdf_expand(void *self, const uint8_t *prk, size_t prk_len,
                                    const uint8_t *info, size_t info_len, uint8_t *out,
                                    size_t out_len)
{
    (void)self, (void)prk, (void)prk_len, (void)info, (void)info_len, (void)out, (void)out_len;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_aead_import(void *self, cl_aead_alg_t alg, const uint8_t *key,
                                    size_t key_len, cl_key_t *out)
{
    (void)self, (void)alg, (void)key, (void)key_len, (void)out;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_aead_encrypt(void *self, cl_key_t key, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                     const uint8_t *pt, size_t pt_len, uint8_t *out,
                                     size_t out_size, size_t *out_len)
{
    (void)self, (void)key, (void)nonce, (void)nonce_len, (void)aad, (void)aad_len, (void)pt;
    (void)pt_len, (void)out, (void)out_size, (void)out_len;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_aead_decrypt(void *self, cl_key_t key, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                     const uint8_t *in, size_t in_len, uint8_t *out,
                                     size_t out_size, size_t *out_len)
{
    (void)self, (void)key, (void)nonce, (void)nonce_len, (void)aad, (void)aad_len, (void)in;
    (void)in_len, (void)out, (void)out_size, (void)out_len;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_key_generate(void *self, cl_key_type_t type, uint32_t usage, cl_key_t *out,
                                     uint8_t *pub, size_t pub_size, size_t *pub_len)
{
    (void)self, (void)type, (void)usage, (void)out, (void)pub, (void)pub_size, (void)pub_len;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_key_import_private(void *self, cl_key_type_t type, uint32_t usage,
                                           const uint8_t *priv, size_t priv_len, cl_key_t *out)
{
    (void)self, (void)type, (void)usage, (void)priv, (void)priv_len, (void)out;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_key_import_public(void *self, cl_key_type_t type, const uint8_t *pub,
                                          size_t pub_len, cl_key_t *out)
{
    (void)self, (void)type, (void)pub, (void)pub_len, (void)out;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_key_export_public(void *self, cl_key_t key, uint8_t *pub, size_t pub_size,
                                          size_t *pub_len)
{
    (void)self, (void)key, (void)pub, (void)pub_size, (void)pub_len;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_ecdh(void *self, cl_key_t priv, const uint8_t *peer_pub, size_t peer_len,
                             uint8_t *secret, size_t secret_size, size_t *secret_len)
{
    (void)self, (void)priv, (void)peer_pub, (void)peer_len, (void)secret, (void)secret_size;
    (void)secret_len;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_sign(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                             size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len)
{
    (void)self, (void)priv, (void)alg, (void)msg, (void)msg_len, (void)sig, (void)sig_size;
    (void)sig_len;
    return CL_ERR_UNSUPPORTED;
}

UNSUPPORTED plat_crypto_verify(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                               size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    (void)self, (void)pub, (void)alg, (void)msg, (void)msg_len, (void)sig, (void)sig_len;
    return CL_ERR_UNSUPPORTED;
}

__attribute__((noinline)) void plat_crypto_key_destroy(void *self, cl_key_t key)
{
    (void)self, (void)key;
}

UNSUPPORTED plat_coap_exchange(void *arg, const uint8_t *req, size_t req_len, uint8_t *resp,
                               size_t resp_size, size_t *resp_len)
{
    (void)arg, (void)req, (void)req_len, (void)resp, (void)resp_size, (void)resp_len;
    return CL_ERR_UNSUPPORTED;
}
