/*
 * quote.c - the DCAP quote parser of the verifier: v3, v4 and v5 (SGX body).
 *
 * What: splits a quote into pointers to its parts (header fields, the
 * enclave's report body, the bytes the attestation key signed, the ECDSA
 * signature data, the QE report and its signature, QE authentication data,
 * the PCK certification data) without copying and without cryptography.
 * Layouts follow Intel's sgx_quote_3.h / _4.h / _5.h
 * (../shared/reference/sgx-dcap.md section 1).
 *
 * Why it is strict: the quote comes from an untrusted host. Every length is
 * read from the input and compared with what is left before anything is
 * taken; containers must be filled exactly (signature_data_len equals the
 * rest of the quote, the certification data size equals the rest of the
 * signature data), so no byte of a quote is outside the parsed structure and
 * two quotes that parse the same are the same bytes. Lengths are 32-bit and
 * are only compared with the remaining count, never added to a pointer first.
 * The result codes separate "not a quote at all" (MALFORMED) from "a quote,
 * but not one we verify" (VERSION, KEY_TYPE, TEE_TYPE, CERT_TYPE).
 */
#include "cloister/attest.h"
#include "cloister/bytes.h"

#include <string.h>

const uint8_t CL_ATTEST_INTEL_QE_VENDOR_ID[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                                  0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

#define HDR_LEN CL_ATTEST_QUOTE_HEADER_LEN
#define BODY_LEN CL_SGX_REPORT_BODY_LEN
#define SIG_LEN 64
#define PUB_LEN 64

/** A cursor over the remaining input. */
typedef struct rd {
    const uint8_t *p;
    size_t left;
} rd_t;

/* Takes n bytes; false (cursor unchanged) when fewer are left. */
static bool take(rd_t *r, size_t n, const uint8_t **out)
{
    if (n > r->left)
        return false;
    *out = r->p;
    r->p += n;
    r->left -= n;
    return true;
}

static bool take16(rd_t *r, uint16_t *v)
{
    const uint8_t *p;
    if (!take(r, 2, &p))
        return false;
    *v = cl_get_le16(p);
    return true;
}

static bool take32(rd_t *r, uint32_t *v)
{
    const uint8_t *p;
    if (!take(r, 4, &p))
        return false;
    *v = cl_get_le32(p);
    return true;
}

/*
 * QE report, its signature, the QE authentication data and the (inner)
 * certification data: the tail of the v3 signature data, and the payload of
 * the v4/v5 type-6 certification data. Must consume r exactly.
 */
static cl_attest_result_t parse_qe_part(rd_t *r, cl_attest_quote_t *q)
{
    uint16_t auth_len, cert_type;
    uint32_t cert_len;

    if (!take(r, BODY_LEN, &q->qe_report) || !take(r, SIG_LEN, &q->qe_report_sig) ||
        !take16(r, &auth_len) || !take(r, auth_len, &q->qe_auth))
        return CL_ATTEST_ERR_MALFORMED;
    q->qe_auth_len = auth_len;
    if (!take16(r, &cert_type) || !take32(r, &cert_len) || cert_len != r->left ||
        !take(r, cert_len, &q->cert_data))
        return CL_ATTEST_ERR_MALFORMED;
    q->cert_len = cert_len;
    q->cert_type = cert_type;
    /* Types 1..4 are valid DCAP but carry no chain we could verify. */
    if (cert_type != CL_ATTEST_CERT_PCK_CHAIN)
        return CL_ATTEST_ERR_CERT_TYPE;
    return CL_ATTEST_OK;
}

/* Signature data (sgx_ql_ecdsa_sig_data_t and its v4 form); must consume r exactly. */
static cl_attest_result_t parse_sig_data(rd_t *r, cl_attest_quote_t *q)
{
    uint16_t outer_type;
    uint32_t outer_len;
    rd_t inner;

    if (!take(r, SIG_LEN, &q->sig) || !take(r, PUB_LEN, &q->attest_pub))
        return CL_ATTEST_ERR_MALFORMED;
    if (q->version == 3)
        return parse_qe_part(r, q);
    /* v4/v5: certification data type 6 wrapping the QE report part. */
    if (!take16(r, &outer_type) || !take32(r, &outer_len) || outer_len != r->left)
        return CL_ATTEST_ERR_MALFORMED;
    if (outer_type != CL_ATTEST_CERT_QE_REPORT)
        return CL_ATTEST_ERR_CERT_TYPE;
    inner.p = r->p;
    inner.left = r->left;
    r->p += r->left;
    r->left = 0;
    return parse_qe_part(&inner, q);
}

cl_attest_result_t cl_attest_quote_parse(const uint8_t *quote, size_t len, cl_attest_quote_t *out)
{
    cl_attest_quote_t q;
    cl_attest_result_t res;
    rd_t r;
    const uint8_t *hdr;
    uint32_t sig_len;

    if (out == NULL)
        return CL_ATTEST_ERR_MALFORMED;
    memset(out, 0, sizeof(*out));
    memset(&q, 0, sizeof(q));
    if (quote == NULL || len > CL_ATTEST_MAX_QUOTE_LEN)
        return CL_ATTEST_ERR_MALFORMED;
    r.p = quote;
    r.left = len;
    if (!take(&r, HDR_LEN, &hdr))
        return CL_ATTEST_ERR_MALFORMED;
    q.version = cl_get_le16(hdr);
    q.att_key_type = cl_get_le16(hdr + 2);
    q.tee_type = cl_get_le32(hdr + 4);
    q.vendor_id = hdr + 12;
    q.user_data = hdr + 28;
    if (q.version < 3 || q.version > 5)
        return CL_ATTEST_ERR_VERSION;
    if (q.att_key_type != CL_ATTEST_ATT_KEY_ECDSA_P256)
        return CL_ATTEST_ERR_KEY_TYPE;
    /* v3: att_key_data_0, reserved, QVL requires 0; v4/v5: 0 = SGX, 0x81 = TDX. */
    if (q.tee_type != CL_ATTEST_TEE_TYPE_SGX)
        return CL_ATTEST_ERR_TEE_TYPE;

    if (q.version == 5) {
        uint16_t body_type;
        uint32_t body_size;
        if (!take16(&r, &body_type) || !take32(&r, &body_size))
            return CL_ATTEST_ERR_MALFORMED;
        if (body_type == CL_ATTEST_V5_BODY_TDX10 || body_type == CL_ATTEST_V5_BODY_TDX15)
            return CL_ATTEST_ERR_TEE_TYPE;
        if (body_type != CL_ATTEST_V5_BODY_SGX || body_size != BODY_LEN)
            return CL_ATTEST_ERR_MALFORMED;
    }
    if (!take(&r, BODY_LEN, &q.body))
        return CL_ATTEST_ERR_MALFORMED;
    q.signed_data = quote;
    q.signed_len = len - r.left;
    if (!take32(&r, &sig_len) || sig_len != r.left)
        return CL_ATTEST_ERR_MALFORMED;
    res = parse_sig_data(&r, &q);
    if (res != CL_ATTEST_OK)
        return res;
    if (r.left != 0)
        return CL_ATTEST_ERR_MALFORMED;
    *out = q;
    return CL_ATTEST_OK;
}
