/*
 * mcu/plat_crypto.h - the platform API the MCU firmware links against: the
 * crypto primitives and the radio/network link. A device supplies these
 * functions from its crypto library or secure element (a PSA Crypto
 * implementation, a vendor HAL, a CryptoCell...) and its network stack.
 *
 * The crypto functions are PSA-Crypto-shaped: one call per operation, keys
 * are opaque handles (PSA key ids) kept by the platform, and private keys
 * never leave it. Each has exactly the signature of its slot in the provider
 * table (include/cloister/crypto.h), so mcu/plat_crypto_table.c is the whole
 * crypto provider on our side: a const table of these symbols.
 *
 * In this repository they are resolved only by mcu/sizing_shim.c, which
 * contains NO cryptography (every call returns CL_ERR_UNSUPPORTED): it exists
 * so that the image links and the footprint of OUR code can be measured.
 * scripts/mcu-footprint.sh checks that these names are the only symbols the
 * firmware needs besides the libc memory/string functions and libgcc.
 */
#ifndef CLOISTER_MCU_PLAT_CRYPTO_H
#define CLOISTER_MCU_PLAT_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/crypto.h"
#include "cloister/status.h"

/* ---- crypto (slot by slot, see cl_crypto_ops_t) ---- */
cl_status_t plat_crypto_random(void *self, uint8_t *out, size_t len);
cl_status_t plat_crypto_sha256(void *self, const cl_buf_t *parts, size_t n, uint8_t out[32]);
cl_status_t plat_crypto_hmac_sha256(void *self, const uint8_t *key, size_t key_len,
                                    const cl_buf_t *parts, size_t n, uint8_t out[32]);
cl_status_t plat_crypto_hkdf_extract(void *self, const uint8_t *salt, size_t salt_len,
                                     const uint8_t *ikm, size_t ikm_len, uint8_t prk[32]);
cl_status_t plat_crypto_hkdf_expand(void *self, const uint8_t *prk, size_t prk_len,
                                    const uint8_t *info, size_t info_len, uint8_t *out,
                                    size_t out_len);
cl_status_t plat_crypto_aead_import(void *self, cl_aead_alg_t alg, const uint8_t *key,
                                    size_t key_len, cl_key_t *out);
cl_status_t plat_crypto_aead_encrypt(void *self, cl_key_t key, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                     const uint8_t *pt, size_t pt_len, uint8_t *out,
                                     size_t out_size, size_t *out_len);
cl_status_t plat_crypto_aead_decrypt(void *self, cl_key_t key, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                     const uint8_t *in, size_t in_len, uint8_t *out,
                                     size_t out_size, size_t *out_len);
cl_status_t plat_crypto_key_generate(void *self, cl_key_type_t type, uint32_t usage, cl_key_t *out,
                                     uint8_t *pub, size_t pub_size, size_t *pub_len);
cl_status_t plat_crypto_key_import_private(void *self, cl_key_type_t type, uint32_t usage,
                                           const uint8_t *priv, size_t priv_len, cl_key_t *out);
cl_status_t plat_crypto_key_import_public(void *self, cl_key_type_t type, const uint8_t *pub,
                                          size_t pub_len, cl_key_t *out);
cl_status_t plat_crypto_key_export_public(void *self, cl_key_t key, uint8_t *pub, size_t pub_size,
                                          size_t *pub_len);
cl_status_t plat_crypto_ecdh(void *self, cl_key_t priv, const uint8_t *peer_pub, size_t peer_len,
                             uint8_t *secret, size_t secret_size, size_t *secret_len);
cl_status_t plat_crypto_sign(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                             size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len);
cl_status_t plat_crypto_verify(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                               size_t msg_len, const uint8_t *sig, size_t sig_len);
void plat_crypto_key_destroy(void *self, cl_key_t key);

/** The provider table made of the functions above (mcu/plat_crypto_table.c). */
extern const cl_crypto_ops_t plat_crypto_ops;

/* ---- link (the radio / UDP driver) ---- */

/** cl_mcu_transport_t.exchange for the device's network stack. */
cl_status_t plat_coap_exchange(void *arg, const uint8_t *req, size_t req_len, uint8_t *resp,
                               size_t resp_size, size_t *resp_len);

/* ---- key store ---- */

/** Handle of the device's provisioned static DH key (a persistent PSA key id). */
#define PLAT_KEY_DEVICE_STATIC_DH ((cl_key_t)0x00010001u)

#endif
