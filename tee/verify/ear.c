/*
 * ear.c - an attestation result as EAR-shaped JSON (draft-ietf-rats-ear,
 * ../shared/reference/sgx-dcap.md section 2.4), for `cloister verify --json`.
 *
 * One submodule, "cloister-core": ear_status "affirming" for CL_ATTEST_OK,
 * "warning" for CL_ATTEST_OK_SIMULATED (with "simulated": true and the
 * hardware claim at the warning tier, because simulated evidence proves
 * nothing), "contraindicated" with the reason string for every refusal. The
 * trustworthiness vector puts the failing claim at the contraindicated tier
 * (96): hardware for signature/chain/vendor failures, executables for the
 * identity, configuration for debug/attributes, instance-identity for the
 * report data and nonce. Everything is written into the caller's buffer; the
 * only strings copied in are our own constants and hex/base64url, so nothing
 * needs JSON escaping.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cloister/attest.h"

#define EAR_PROFILE "tag:ietf.org,2026:rats/ear#03"
#define TIER_NONE 0
#define TIER_AFFIRMING 2
#define TIER_WARNING 32
#define TIER_CONTRA 96

typedef struct out {
    char *buf;
    size_t size;
    size_t len;
    bool overflow;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(out_t *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->overflow)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->size - o->len) {
        o->overflow = true;
        return;
    }
    o->len += (size_t)n;
}

static void put_hex(out_t *o, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++)
        put(o, "%c%c", hex[p[i] >> 4], hex[p[i] & 15]);
}

static void put_b64url(out_t *o, const uint8_t *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        size_t k = n - i >= 3 ? 3 : n - i;
        if (k > 1)
            v |= (uint32_t)p[i + 1] << 8;
        if (k > 2)
            v |= p[i + 2];
        put(o, "%c%c", tab[(v >> 18) & 63], tab[(v >> 12) & 63]);
        if (k > 1)
            put(o, "%c", tab[(v >> 6) & 63]);
        if (k > 2)
            put(o, "%c", tab[v & 63]);
    }
}

/* Which trustworthiness claim a refusal contradicts. */
enum { C_IDENTITY, C_CONFIG, C_EXEC, C_HARDWARE, C_COUNT };

static int contradicted(cl_attest_result_t r)
{
    switch (r) {
    case CL_ATTEST_ERR_DEBUG:
    case CL_ATTEST_ERR_ATTRIBUTES:
    case CL_ATTEST_ERR_POLICY: return C_CONFIG;
    case CL_ATTEST_ERR_MRENCLAVE:
    case CL_ATTEST_ERR_MRSIGNER:
    case CL_ATTEST_ERR_PRODID:
    case CL_ATTEST_ERR_SVN: return C_EXEC;
    case CL_ATTEST_ERR_REPORT_DATA:
    case CL_ATTEST_ERR_NONCE: return C_IDENTITY;
    default: return C_HARDWARE;
    }
}

cl_status_t cl_attest_result_json(cl_attest_result_t r, const cl_attest_claims_t *claims,
                                  const uint8_t *nonce, size_t nonce_len, int64_t iat, char *buf,
                                  size_t size, size_t *len)
{
    static const char *const names[C_COUNT] = {"instance-identity", "configuration",
                                               "executables", "hardware"};
    out_t o = {buf, size, 0, false};
    int tier[C_COUNT];
    const char *status;
    bool ok = r == CL_ATTEST_OK || r == CL_ATTEST_OK_SIMULATED;

    if (len != NULL)
        *len = 0;
    if (buf == NULL || size == 0 || (nonce == NULL && nonce_len != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    buf[0] = '\0';
    for (int i = 0; i < C_COUNT; i++)
        tier[i] = ok ? TIER_AFFIRMING : TIER_NONE;
    if (r == CL_ATTEST_OK) {
        status = "affirming";
    } else if (r == CL_ATTEST_OK_SIMULATED) {
        status = "warning";
        tier[C_HARDWARE] = TIER_WARNING;
    } else {
        status = "contraindicated";
        tier[contradicted(r)] = TIER_CONTRA;
    }

    put(&o, "{\"eat_profile\":\"%s\",\"iat\":%lld,", EAR_PROFILE, (long long)iat);
    put(&o, "\"ear_verifier_id\":{\"developer\":\"cloister\",\"build\":\"cloister-attest\"},");
    if (nonce != NULL) {
        put(&o, "\"eat_nonce\":\"");
        put_b64url(&o, nonce, nonce_len);
        put(&o, "\",");
    }
    put(&o, "\"submods\":{\"cloister-core\":{\"ear_status\":\"%s\",", status);
    put(&o, "\"ear_trustworthiness_vector\":{");
    for (int i = 0; i < C_COUNT; i++)
        put(&o, "%s\"%s\":%d", i ? "," : "", names[i], tier[i]);
    put(&o, "},\"cloister_result\":\"%s\"", cl_attest_result_str(r));
    if (r == CL_ATTEST_OK_SIMULATED || (claims != NULL && claims->is_simulated))
        put(&o, ",\"simulated\":true");
    if (claims != NULL && claims->quote_version != 0) {
        const cl_sgx_report_body_t *b = &claims->body;
        put(&o, ",\"backend\":\"%s\",\"sgx_mrenclave\":\"",
            memchr(claims->backend, 0, sizeof(claims->backend)) != NULL ? claims->backend : "");
        put_hex(&o, b->mr_enclave, 32);
        put(&o, "\",\"sgx_mrsigner\":\"");
        put_hex(&o, b->mr_signer, 32);
        put(&o, "\",\"sgx_isvprodid\":%u,\"sgx_isvsvn\":%u,\"sgx_debug\":%s",
            (unsigned)b->isv_prod_id, (unsigned)b->isv_svn, claims->is_debug ? "true" : "false");
    }
    put(&o, "}}}");
    if (o.overflow) {
        buf[0] = '\0';
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    }
    if (len != NULL)
        *len = o.len;
    return CL_OK;
}
