/*
 * mcu/plat_crypto_table.c - the firmware's crypto provider: a const
 * cl_crypto_ops_t (in flash) whose slots are the platform functions of
 * plat_crypto.h. This table is all the provider code of ours on the device;
 * the primitives behind it belong to the platform's crypto library.
 */
#include "plat_crypto.h"

const cl_crypto_ops_t plat_crypto_ops = {
    .version = CL_CRYPTO_OPS_VERSION,
    .name = "platform",
    .random = plat_crypto_random,
    .sha256 = plat_crypto_sha256,
    .hmac_sha256 = plat_crypto_hmac_sha256,
    .hkdf_extract = plat_crypto_hkdf_extract,
    .hkdf_expand = plat_crypto_hkdf_expand,
    .aead_import = plat_crypto_aead_import,
    .aead_encrypt = plat_crypto_aead_encrypt,
    .aead_decrypt = plat_crypto_aead_decrypt,
    .key_generate = plat_crypto_key_generate,
    .key_import_private = plat_crypto_key_import_private,
    .key_import_public = plat_crypto_key_import_public,
    .key_export_public = plat_crypto_key_export_public,
    .ecdh = plat_crypto_ecdh,
    .sign = plat_crypto_sign,
    .verify = plat_crypto_verify,
    .key_destroy = plat_crypto_key_destroy,
};
