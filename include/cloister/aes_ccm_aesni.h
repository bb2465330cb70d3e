/*
 * cloister/aes_ccm_aesni.h - constant-time AES-128-CCM with AES-NI (x86-64).
 *
 * A fast path used by crypto providers when the CPU supports AES-NI: the key
 * schedule is expanded once; every block operation is an AES instruction, so
 * there are no table lookups and no secret-dependent branches. Supports
 * 13-byte nonces (L = 2) and 8- or 16-byte tags (AES-CCM-16-64-128 and
 * AES-CCM-16-128-128); messages up to 65535 bytes.
 */
#ifndef CLOISTER_AES_CCM_AESNI_H
#define CLOISTER_AES_CCM_AESNI_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cl_aesni_ccm {
    _Alignas(16) uint8_t rk[11 * 16]; /**< expanded AES-128 encryption keys */
    uint8_t tag_len;                  /**< 8 or 16 */
} cl_aesni_ccm_t;

/** True when the CPU supports AES-NI (and the fast path was compiled in). */
int cl_aesni_available(void);
/** Expands a 16-byte key; tag_len 8 or 16. */
cl_status_t cl_aesni_ccm_init(cl_aesni_ccm_t *k, const uint8_t key[16], size_t tag_len) CL_MUST_CHECK;
/** out = ct || tag (pt_len + tag_len bytes); out may equal pt. */
cl_status_t cl_aesni_ccm_encrypt(const cl_aesni_ccm_t *k, const uint8_t nonce[13],
                                 const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                                 size_t pt_len, uint8_t *out) CL_MUST_CHECK;
/** in = ct || tag; writes in_len - tag_len bytes; CL_ERR_AUTH (out wiped) on a bad tag. */
cl_status_t cl_aesni_ccm_decrypt(const cl_aesni_ccm_t *k, const uint8_t nonce[13],
                                 const uint8_t *aad, size_t aad_len, const uint8_t *in,
                                 size_t in_len, uint8_t *out) CL_MUST_CHECK;
/** Wipes the key schedule. */
void cl_aesni_ccm_clear(cl_aesni_ccm_t *k);

#ifdef __cplusplus
}
#endif
#endif
