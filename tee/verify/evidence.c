/*
 * evidence.c - the core's attestation evidence (GET /attestation, the
 * `attest` ecall; docs/core-protocol.md): decoding the CBOR map and checking
 * it end to end against our nonce, the trusted root and the policy.
 *
 * Why strict: the map arrives through the untrusted host. Exactly one map,
 * nothing after it; text keys only; a known key twice is refused (a
 * duplicate could make two readers see two different maps); every known
 * value must have its type and its length (keys 65 bytes uncompressed,
 * owner 32, nonce 16..64); unknown text keys are skipped so the map can grow.
 * The binding REPORTDATA = SHA-256(identity_pub || ca_pub || owner || nonce)
 * || 0^32 is what makes the keys and the owner in the map the ones inside
 * the enclave; the nonce makes the evidence fresh.
 */
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/crypto.h"
#include "verify_internal.h"

enum {
    K_V,
    K_BACKEND,
    K_STATE,
    K_QUOTE,
    K_IDENTITY_PUB,
    K_CA_PUB,
    K_OWNER,
    K_NONCE,
    K_CA_CERT,
    K_IDENTITY_CERT,
    K_COUNT
};

static const char *const key_names[K_COUNT] = {
    "v",     "backend", "state", "quote",   "identity_pub",
    "ca_pub", "owner",  "nonce", "ca_cert", "identity_cert",
};

#define REQUIRED_KEYS                                                                              \
    ((1u << K_V) | (1u << K_BACKEND) | (1u << K_STATE) | (1u << K_QUOTE) |                        \
     (1u << K_IDENTITY_PUB) | (1u << K_CA_PUB) | (1u << K_OWNER) | (1u << K_NONCE))

/* Max size of a certificate in the map. */
#define MAX_CERT_LEN 4096u

static bool text_is(const char *p, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(p, s, len) == 0;
}

static int key_index(const char *p, size_t len)
{
    for (int i = 0; i < K_COUNT; i++)
        if (text_is(p, len, key_names[i]))
            return i;
    return -1;
}

/* A bstr of a length in [min, max]. */
static cl_status_t get_bstr(cl_cbor_dec_t *d, const uint8_t **p, size_t *len, size_t min,
                            size_t max)
{
    if (cl_cbor_dec_bstr(d, p, len) != CL_OK || *len < min || *len > max)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return CL_OK;
}

static cl_status_t get_tstr(cl_cbor_dec_t *d, const char **p, size_t *len)
{
    if (cl_cbor_dec_tstr(d, p, len) != CL_OK || !cl_cbor_utf8_valid((const uint8_t *)*p, *len))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return CL_OK;
}

static cl_status_t get_value(cl_cbor_dec_t *d, int k, cl_attest_core_evidence_t *ev)
{
    size_t n;

    switch (k) {
    case K_V: return cl_cbor_dec_uint(d, &ev->v) == CL_OK ? CL_OK : CL_FAIL(CL_ERR_BAD_INPUT);
    case K_BACKEND: return get_tstr(d, &ev->backend, &ev->backend_len);
    case K_STATE: return get_tstr(d, &ev->state, &ev->state_len);
    case K_QUOTE: return get_bstr(d, &ev->quote, &ev->quote_len, 1, CL_ATTEST_MAX_QUOTE_LEN);
    case K_IDENTITY_PUB: return get_bstr(d, &ev->identity_pub, &n, 65, 65);
    case K_CA_PUB: return get_bstr(d, &ev->ca_pub, &n, 65, 65);
    case K_OWNER: return get_bstr(d, &ev->owner, &n, 32, 32);
    case K_NONCE:
        return get_bstr(d, &ev->nonce, &ev->nonce_len, CL_ATTEST_NONCE_MIN, CL_ATTEST_NONCE_MAX);
    case K_CA_CERT: return get_bstr(d, &ev->ca_cert, &ev->ca_cert_len, 1, MAX_CERT_LEN);
    case K_IDENTITY_CERT:
        return get_bstr(d, &ev->identity_cert, &ev->identity_cert_len, 1, MAX_CERT_LEN);
    default: return CL_FAIL(CL_ERR_BAD_INPUT);
    }
}

static cl_status_t decode(const uint8_t *map, size_t len, cl_attest_core_evidence_t *ev)
{
    cl_cbor_dec_t d;
    size_t pairs;
    uint32_t seen = 0;
    bool provisioned;

    cl_cbor_dec_init(&d, map, len);
    if (cl_cbor_dec_map(&d, &pairs) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < pairs; i++) {
        const char *key;
        size_t key_len;
        int k;

        if (cl_cbor_dec_tstr(&d, &key, &key_len) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        k = key_index(key, key_len);
        if (k < 0) {
            if (cl_cbor_dec_skip(&d) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            continue;
        }
        if (seen & (1u << k))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        seen |= 1u << k;
        if (get_value(&d, k, ev) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (!cl_cbor_dec_at_end(&d) || (seen & REQUIRED_KEYS) != REQUIRED_KEYS)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (ev->v != CL_ATTEST_EVIDENCE_VERSION)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (ev->identity_pub[0] != 0x04 || ev->ca_pub[0] != 0x04)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (!text_is(ev->backend, ev->backend_len, "sim") &&
        !text_is(ev->backend, ev->backend_len, "sgx"))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    provisioned = text_is(ev->state, ev->state_len, "provisioned");
    if (!provisioned && !text_is(ev->state, ev->state_len, "fresh") &&
        !text_is(ev->state, ev->state_len, "claimed"))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    /* Both certificates exactly once provisioned. */
    if (((seen >> K_CA_CERT) & 1u) != (provisioned ? 1u : 0u) ||
        ((seen >> K_IDENTITY_CERT) & 1u) != (provisioned ? 1u : 0u))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return CL_OK;
}

cl_status_t cl_attest_core_evidence_decode(const uint8_t *map, size_t len,
                                           cl_attest_core_evidence_t *out)
{
    cl_status_t rc;

    if (out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    memset(out, 0, sizeof(*out));
    if (map == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    rc = decode(map, len, out);
    if (rc != CL_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}

cl_status_t cl_attest_core_report_data(const cl_attest_core_evidence_t *ev,
                                       uint8_t report_data[64])
{
    const uint8_t *parts[4];
    size_t lens[4] = {65, 65, 32, 0};

    if (ev == NULL || report_data == NULL || ev->identity_pub == NULL || ev->ca_pub == NULL ||
        ev->owner == NULL || ev->nonce == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    parts[0] = ev->identity_pub;
    parts[1] = ev->ca_pub;
    parts[2] = ev->owner;
    parts[3] = ev->nonce;
    lens[3] = ev->nonce_len;
    memset(report_data, 0, 64);
    if (!cl_attest_sha256(parts, lens, 4, report_data))
        return CL_FAIL(CL_ERR_CRYPTO);
    return CL_OK;
}

cl_attest_result_t cl_attest_core_evidence_verify(const cl_attest_core_evidence_t *ev,
                                                  const uint8_t *nonce, size_t nonce_len,
                                                  const char *root_pem, int64_t now,
                                                  const cl_attest_policy_t *policy,
                                                  cl_attest_claims_t *claims)
{
    cl_attest_claims_t local;
    cl_attest_claims_t *c = claims != NULL ? claims : &local;
    uint8_t rd[64];
    cl_attest_result_t res;

    memset(c, 0, sizeof(*c));
    if (ev == NULL || ev->quote == NULL || ev->backend == NULL)
        return CL_ATTEST_ERR_MALFORMED;
    if (nonce == NULL || nonce_len != ev->nonce_len || ev->nonce == NULL ||
        cl_ct_memcmp(nonce, ev->nonce, nonce_len) != 0)
        return CL_ATTEST_ERR_NONCE;
    if (cl_attest_core_report_data(ev, rd) != CL_OK)
        return CL_ATTEST_ERR_MALFORMED;
    res = cl_attest_verify(ev->quote, ev->quote_len, root_pem, now, policy, rd, c);
    if (res != CL_ATTEST_OK && res != CL_ATTEST_OK_SIMULATED)
        return res;
    /* The label must tell the truth about the quote. */
    if (text_is(ev->backend, ev->backend_len, "sim") != c->is_simulated) {
        memset(c, 0, sizeof(*c));
        return CL_ATTEST_ERR_BACKEND;
    }
    return res;
}
