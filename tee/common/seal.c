/*
 * seal.c - sealing inside the trusted core: sgx_sealed_data_t blobs with the
 * project envelope (include/cloister/tee.h).
 *
 * Layout (sgx_tseal.h): 512-byte key request (SEAL key, the caller's policy,
 * the enclave's own ISVSVN/CPUSVN from a self report, sgx_seal_data()'s
 * attribute and misc masks, a fresh random key_id), u32 plain_text_offset,
 * 12 reserved, u32 payload_size, 12 reserved, 16-byte GCM tag, then
 * ciphertext || additional MAC text. The additional MAC text is the
 * envelope: "CLSEAL01" || u16 backend || u16 policy || u16 purpose ||
 * u64 epoch || u64 counter || extra (little-endian), authenticated as GCM
 * AAD and not encrypted, so the host can see which record it holds but not
 * change it.
 *
 * Why AES-128-GCM with a zero IV is safe: every blob draws a new key_id, so
 * every blob is encrypted under a key used exactly once (as the SDK does).
 *
 * The blob comes back from the untrusted host: cl_unseal checks every length
 * and every reserved byte (they are not covered by the tag) before it uses
 * any of them, lets EGETKEY refuse an ISVSVN/CPUSVN newer than the running
 * enclave's, and wipes the plaintext and the key on every failure path.
 * Linked into the core: no I/O, no malloc of its own, no state; only
 * OpenSSL EVP and the platform table.
 */
#include <limits.h>
#include <string.h>

#include <openssl/evp.h>

#include "cloister/bytes.h"
#include "cloister/crypto.h"
#include "cloister/tee.h"

#define GCM_TAG_LEN 16
#define GCM_IV_LEN 12
#define ENV_OFF_BACKEND 8
#define ENV_OFF_POLICY 10
#define ENV_OFF_PURPOSE 12
#define ENV_OFF_EPOCH 14
#define ENV_OFF_COUNTER 22
#define MAX_AAD_LEN (CL_SEAL_ENVELOPE_LEN + CL_SEAL_MAX_EXTRA_AAD)

static bool policy_ok(uint16_t policy)
{
    return policy == CL_SGX_KEYPOLICY_MRENCLAVE || policy == CL_SGX_KEYPOLICY_MRSIGNER;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

size_t cl_seal_size(const cl_seal_envelope_t *env, size_t pt_len)
{
    size_t aad;

    if (env == NULL || env->extra_len > CL_SEAL_MAX_EXTRA_AAD)
        return 0;
    aad = CL_SEAL_ENVELOPE_LEN + env->extra_len;
    /* payload_size is a u32 */
    if (pt_len > (size_t)UINT32_MAX - aad)
        return 0;
    return CL_SGX_SEALED_HDR_LEN + pt_len + aad;
}

/*
 * Structural checks shared by cl_unseal and cl_unsealed_size: total length,
 * reserved bytes, payload_size == what follows the header, plain_text_offset
 * inside the payload, additional MAC text long enough for the envelope and
 * not longer than the envelope plus CL_SEAL_MAX_EXTRA_AAD.
 */
static cl_status_t parse_layout(const uint8_t *blob, size_t len, size_t *ct_len, size_t *aad_len)
{
    uint32_t pt_off, payload;

    if (blob == NULL || len < CL_SGX_SEALED_HDR_LEN)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (!all_zero(blob + CL_SGX_SD_RESERVED, 12) || !all_zero(blob + CL_SGX_SD_AES_RESERVED, 12))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    pt_off = cl_get_le32(blob + CL_SGX_SD_PLAIN_TEXT_OFFSET);
    payload = cl_get_le32(blob + CL_SGX_SD_PAYLOAD_SIZE);
    if ((size_t)payload != len - CL_SGX_SEALED_HDR_LEN || pt_off > payload)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (payload - pt_off < CL_SEAL_ENVELOPE_LEN || payload - pt_off > MAX_AAD_LEN)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *ct_len = pt_off;
    *aad_len = payload - pt_off;
    return CL_OK;
}

size_t cl_unsealed_size(const uint8_t *blob, size_t len)
{
    size_t ct_len, aad_len;

    if (parse_layout(blob, len, &ct_len, &aad_len) != CL_OK)
        return 0;
    return ct_len;
}

/* One-shot AES-128-GCM with the all-zero IV; decrypt fails with CL_ERR_AUTH on a bad tag. */
static cl_status_t gcm(bool enc, const uint8_t key[CL_SGX_KEY_LEN], const uint8_t *aad,
                       size_t aad_len, const uint8_t *in, size_t in_len, uint8_t *out,
                       uint8_t tag[GCM_TAG_LEN])
{
    static const uint8_t iv[GCM_IV_LEN] = {0};
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    cl_status_t rc = CL_ERR_CRYPTO;
    uint8_t fin[16]; /* GCM's final step writes nothing; never out + len (out may be NULL) */
    int n = 0;

    if (ctx == NULL || in_len > INT_MAX || aad_len > INT_MAX)
        goto done;
    if (EVP_CipherInit_ex2(ctx, EVP_aes_128_gcm(), key, iv, enc ? 1 : 0, NULL) != 1)
        goto done;
    if (EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1)
        goto done;
    if (in_len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)in_len) != 1)
        goto done;
    if (enc) {
        if (EVP_CipherFinal_ex(ctx, fin, &n) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN, tag) != 1)
            goto done;
    } else {
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN, tag) != 1)
            goto done;
        /* the GCM tag comparison inside OpenSSL is constant-time (CRYPTO_memcmp) */
        if (EVP_CipherFinal_ex(ctx, fin, &n) != 1) {
            rc = CL_FAIL(CL_ERR_AUTH);
            goto done;
        }
    }
    rc = CL_OK;
done:
    if (rc == CL_ERR_CRYPTO)
        rc = CL_FAIL(CL_ERR_CRYPTO);
    EVP_CIPHER_CTX_free(ctx); /* clears the expanded key */
    return rc;
}

cl_status_t cl_seal(const cl_tee_platform_t *p, uint16_t policy, const cl_seal_envelope_t *env,
                    const uint8_t *pt, size_t pt_len, uint8_t *out, size_t out_size,
                    size_t *out_len)
{
    uint8_t report[CL_SGX_REPORT_LEN];
    uint8_t zero_rd[CL_SGX_REPORT_DATA_LEN] = {0};
    uint8_t key[CL_SGX_KEY_LEN] = {0};
    cl_sgx_report_body_t self;
    cl_sgx_key_request_t kr;
    uint8_t *aad;
    size_t total, aad_len;
    cl_status_t rc;

    if (out_len != NULL)
        *out_len = 0;
    if (p == NULL || p->get_key == NULL || p->get_report == NULL || p->read_rand == NULL ||
        env == NULL || out == NULL || out_len == NULL || (pt == NULL && pt_len > 0) ||
        !policy_ok(policy) || env->extra_len > CL_SEAL_MAX_EXTRA_AAD)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    total = cl_seal_size(env, pt_len);
    if (total == 0)
        return CL_FAIL(CL_ERR_LIMIT);
    if (out_size < total)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    aad_len = CL_SEAL_ENVELOPE_LEN + env->extra_len;

    /* The key request names this enclave's current SVNs (from a self report). */
    rc = p->get_report(p->self, NULL, zero_rd, report);
    if (rc != CL_OK)
        goto done;
    cl_sgx_report_body_decode(report, &self);
    memset(&kr, 0, sizeof kr);
    kr.key_name = CL_SGX_KEYSELECT_SEAL;
    kr.key_policy = policy;
    kr.isv_svn = self.isv_svn;
    kr.config_svn = self.config_svn;
    memcpy(kr.cpu_svn, self.cpu_svn, sizeof kr.cpu_svn);
    kr.attr_mask_flags = CL_SEAL_ATTR_MASK_FLAGS;
    kr.attr_mask_xfrm = CL_SEAL_ATTR_MASK_XFRM;
    kr.misc_mask = CL_SEAL_MISC_MASK;
    rc = p->read_rand(p->self, kr.key_id, sizeof kr.key_id);
    if (rc != CL_OK)
        goto done;
    cl_sgx_key_request_encode(&kr, out + CL_SGX_SD_KEY_REQUEST);
    rc = p->get_key(p->self, out + CL_SGX_SD_KEY_REQUEST, key);
    if (rc != CL_OK)
        goto done;

    memset(out + CL_SGX_SD_PLAIN_TEXT_OFFSET, 0, CL_SGX_SEALED_HDR_LEN - CL_SGX_SD_PLAIN_TEXT_OFFSET);
    cl_put_le32(out + CL_SGX_SD_PLAIN_TEXT_OFFSET, (uint32_t)pt_len);
    cl_put_le32(out + CL_SGX_SD_PAYLOAD_SIZE, (uint32_t)(pt_len + aad_len));
    aad = out + CL_SGX_SEALED_HDR_LEN + pt_len;
    memcpy(aad, CL_SEAL_MAGIC, 8);
    cl_put_le16(aad + ENV_OFF_BACKEND, p->backend);
    cl_put_le16(aad + ENV_OFF_POLICY, policy);
    cl_put_le16(aad + ENV_OFF_PURPOSE, env->purpose);
    cl_put_le64(aad + ENV_OFF_EPOCH, env->epoch);
    cl_put_le64(aad + ENV_OFF_COUNTER, env->counter);
    if (env->extra_len > 0)
        memcpy(aad + CL_SEAL_ENVELOPE_LEN, env->extra, env->extra_len);
    rc = gcm(true, key, aad, aad_len, pt, pt_len, out + CL_SGX_SEALED_HDR_LEN, out + CL_SGX_SD_TAG);
    if (rc != CL_OK)
        goto done;
    *out_len = total;
done:
    cl_wipe(key, sizeof key);
    cl_wipe(&kr, sizeof kr);
    if (rc != CL_OK)
        cl_wipe(out, total);
    return rc;
}

cl_status_t cl_unseal(const cl_tee_platform_t *p, const uint8_t *blob, size_t len, uint8_t *pt,
                      size_t pt_size, size_t *pt_len, cl_seal_envelope_t *env)
{
    uint8_t key[CL_SGX_KEY_LEN] = {0};
    uint8_t tag[GCM_TAG_LEN];
    cl_sgx_key_request_t kr;
    const uint8_t *aad;
    size_t ct_len = 0, aad_len = 0;
    bool wrote = false;
    cl_status_t rc;

    if (pt_len != NULL)
        *pt_len = 0;
    if (p == NULL || p->get_key == NULL || blob == NULL || pt_len == NULL || env == NULL ||
        (pt == NULL && pt_size > 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    rc = parse_layout(blob, len, &ct_len, &aad_len);
    if (rc != CL_OK)
        return rc;
    rc = cl_sgx_key_request_decode(blob + CL_SGX_SD_KEY_REQUEST, &kr);
    if (rc != CL_OK)
        goto done;
    /* only what cl_seal writes: a SEAL key under exactly one policy */
    if (kr.key_name != CL_SGX_KEYSELECT_SEAL || !policy_ok(kr.key_policy)) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    aad = blob + CL_SGX_SEALED_HDR_LEN + ct_len;
    if (memcmp(aad, CL_SEAL_MAGIC, 8) != 0) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (pt_size < ct_len) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    /* EGETKEY refuses an ISVSVN/CPUSVN newer than ours (CL_ERR_AUTH) */
    rc = p->get_key(p->self, blob + CL_SGX_SD_KEY_REQUEST, key);
    if (rc != CL_OK)
        goto done;
    memcpy(tag, blob + CL_SGX_SD_TAG, sizeof tag);
    wrote = true;
    rc = gcm(false, key, aad, aad_len, blob + CL_SGX_SEALED_HDR_LEN, ct_len, pt, tag);
    if (rc != CL_OK)
        goto done;
    /* Authentic from here on; still refuse a blob of another backend or policy mismatch. */
    if (cl_get_le16(aad + ENV_OFF_BACKEND) != p->backend) {
        rc = CL_FAIL(CL_ERR_AUTH);
        goto done;
    }
    if (cl_get_le16(aad + ENV_OFF_POLICY) != kr.key_policy) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    memset(env, 0, sizeof *env);
    env->purpose = cl_get_le16(aad + ENV_OFF_PURPOSE);
    env->epoch = cl_get_le64(aad + ENV_OFF_EPOCH);
    env->counter = cl_get_le64(aad + ENV_OFF_COUNTER);
    env->extra_len = aad_len - CL_SEAL_ENVELOPE_LEN;
    if (env->extra_len > 0)
        memcpy(env->extra, aad + CL_SEAL_ENVELOPE_LEN, env->extra_len);
    *pt_len = ct_len;
done:
    cl_wipe(key, sizeof key);
    cl_wipe(&kr, sizeof kr);
    if (rc != CL_OK && wrote && ct_len > 0)
        cl_wipe(pt, ct_len);
    return rc;
}
