/*
 * util.c - provider-independent crypto helpers: AEAD parameters,
 * constant-time comparison and wiping.
 *
 * cl_ct_memcmp accumulates differences with OR so its running time depends
 * only on len; cl_wipe is a memset followed by a compiler barrier (an asm
 * statement that "uses" the memory), so the store cannot be removed as dead.
 */
#include <string.h>

#include "cloister/crypto.h"

cl_status_t cl_aead_params(cl_aead_alg_t alg, size_t *key_len, size_t *nonce_len, size_t *tag_len)
{
    size_t k, n, t;
    switch (alg) {
    case CL_AEAD_A128GCM:
        k = 16;
        n = 12;
        t = 16;
        break;
    case CL_AEAD_AES_CCM_16_64_128:
        k = 16;
        n = 13;
        t = 8;
        break;
    case CL_AEAD_AES_CCM_16_128_128:
        k = 16;
        n = 13;
        t = 16;
        break;
    case CL_AEAD_CHACHA20_POLY1305:
        k = 32;
        n = 12;
        t = 16;
        break;
    default: return CL_FAIL(CL_ERR_UNSUPPORTED);
    }
    if (key_len != NULL)
        *key_len = k;
    if (nonce_len != NULL)
        *nonce_len = n;
    if (tag_len != NULL)
        *tag_len = t;
    return CL_OK;
}

uint32_t cl_key_usages(cl_key_type_t type)
{
    switch (type) {
    case CL_KEY_P256: return CL_KEY_USAGE_ECDH | CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY;
    case CL_KEY_X25519: return CL_KEY_USAGE_ECDH;
    case CL_KEY_ED25519: return CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY;
    }
    return 0;
}

size_t cl_key_pub_len(cl_key_type_t type)
{
    return type == CL_KEY_P256 ? 65 : 32;
}

int cl_ct_memcmp(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t acc = 0;
    for (size_t i = 0; i < len; i++)
        acc |= (uint8_t)(x[i] ^ y[i]);
    /* 0 when equal, 1 otherwise, without a data-dependent branch. */
    return (int)((acc + 0xffu) >> 8);
}

void cl_wipe(void *p, size_t len)
{
    if (p == NULL || len == 0)
        return;
#if defined(__GNUC__)
    /* memset at full speed, then a barrier telling the compiler the memory is used. */
    memset(p, 0, len);
    __asm__ __volatile__("" : : "r"(p) : "memory");
#else
    volatile uint8_t *v = p;
    for (size_t i = 0; i < len; i++)
        v[i] = 0;
#endif
}
