/*
 * cloister/attest.h - the verifier: SGX evidence in, claims out, then a
 * backend-neutral appraisal against the relying party's policy
 * (tee/verify/, ../shared/reference/sgx-dcap.md sections 2 and 7.4).
 *
 * Two layers, as in RATS:
 *   cl_attest_verify_evidence  per backend: parse the quote (v3, v4 and v5
 *                              with an SGX body), check the signature chain
 *                              (quote signature by the attestation key, QE
 *                              report binding of that key, QE report
 *                              signature by the PCK key, PCK chain to the
 *                              given root, validity at `now`) -> claims
 *   cl_attest_appraise         the policy: identity (MRENCLAVE allowlist, or
 *                              MRSIGNER + ISVPRODID + minimum ISVSVN), debug
 *                              off, INITTED/MODE64BIT, report data binding
 *                              (constant time), simulated evidence refused
 *                              unless allowed, then CL_ATTEST_OK_SIMULATED
 *
 * Every refusal has its own reason code and a short stable string, so a test
 * (and an operator) can tell a wrong nonce from a flipped signature bit.
 * Only the DCAP backend (Intel root, collateral) is missing here: it slots
 * in as another cl_attest_verify_evidence backend.
 */
#ifndef CLOISTER_ATTEST_H
#define CLOISTER_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"
#include "cloister/tee.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cl_attest_result {
    CL_ATTEST_OK = 0,           /**< real hardware evidence, policy satisfied */
    CL_ATTEST_OK_SIMULATED = 1, /**< simulated evidence, allowed by policy: NO security */
    /* parsing */
    CL_ATTEST_ERR_MALFORMED = 10,     /**< truncated, oversized, inconsistent lengths */
    CL_ATTEST_ERR_VERSION = 11,       /**< quote version not 3, 4 or 5 */
    CL_ATTEST_ERR_KEY_TYPE = 12,      /**< att_key_type not ECDSA-P256 */
    CL_ATTEST_ERR_TEE_TYPE = 13,      /**< not an SGX quote (e.g. TDX body) */
    CL_ATTEST_ERR_CERT_TYPE = 14,     /**< certification data type not allowed */
    /* signatures and chain */
    CL_ATTEST_ERR_QUOTE_SIG = 20,     /**< quote signature by the attestation key bad */
    CL_ATTEST_ERR_QE_BINDING = 21,    /**< QE report data != SHA-256(AK || auth data) */
    CL_ATTEST_ERR_QE_REPORT_SIG = 22, /**< QE report signature by the PCK key bad */
    CL_ATTEST_ERR_CHAIN = 23,         /**< PCK chain does not lead to the trusted root */
    CL_ATTEST_ERR_CERT_EXPIRED = 24,  /**< a certificate not valid at `now` */
    CL_ATTEST_ERR_UNKNOWN_VENDOR = 25, /**< QE vendor id neither Intel's nor the sim's */
    CL_ATTEST_ERR_QE_IDENTITY = 26,   /**< QE report is not the expected quoting enclave */
    /* appraisal */
    CL_ATTEST_ERR_SIMULATED = 30,     /**< simulated evidence and the policy does not allow it */
    CL_ATTEST_ERR_DEBUG = 31,         /**< DEBUG attribute set */
    CL_ATTEST_ERR_ATTRIBUTES = 32,    /**< INITTED/MODE64BIT missing or PROVISION/EINITTOKEN set */
    CL_ATTEST_ERR_MRENCLAVE = 33,     /**< measurement not in the allowlist */
    CL_ATTEST_ERR_MRSIGNER = 34,      /**< signer differs */
    CL_ATTEST_ERR_PRODID = 35,        /**< ISVPRODID differs */
    CL_ATTEST_ERR_SVN = 36,           /**< ISVSVN below the minimum */
    CL_ATTEST_ERR_REPORT_DATA = 37,   /**< report data does not bind the expected value (nonce, keys) */
    CL_ATTEST_ERR_POLICY = 38,        /**< policy names no identity at all */
    CL_ATTEST_ERR_BACKEND = 39,       /**< no backend for this evidence (e.g. Intel DCAP not built) */
    CL_ATTEST_ERR_NONCE = 40,         /**< core evidence echoes a different nonce than ours */
} cl_attest_result_t;

/** Short stable name of a result ("ok", "ok-simulated", "wrong-nonce"...). */
const char *cl_attest_result_str(cl_attest_result_t r);
/** One sentence an operator can act on. */
const char *cl_attest_result_text(cl_attest_result_t r);

/** Normalized claims from verified evidence. */
typedef struct cl_attest_claims {
    uint16_t quote_version;
    cl_sgx_report_body_t body; /**< the attested enclave's report body */
    uint8_t qe_vendor_id[16];
    bool is_simulated; /**< sim vendor id + magic + sim root */
    bool is_debug;
    char backend[16];  /**< "sim-dcap-v3", "sim-dcap-v4", "sim-dcap-v5" */
    uint16_t qe_isv_svn; /**< ISVSVN of the quoting enclave (from its report) */
} cl_attest_claims_t;

/* ---- The quote format (sgx-dcap.md section 1) ---- */

#define CL_ATTEST_MAX_QUOTE_LEN 16384 /**< larger quotes are CL_ATTEST_ERR_MALFORMED */
#define CL_ATTEST_QUOTE_HEADER_LEN 48
#define CL_ATTEST_ATT_KEY_ECDSA_P256 2
#define CL_ATTEST_TEE_TYPE_SGX 0x00u
#define CL_ATTEST_TEE_TYPE_TDX 0x81u
#define CL_ATTEST_CERT_PCK_CHAIN 5 /**< PEM chain PCK leaf || intermediate(s) [|| root] */
#define CL_ATTEST_CERT_QE_REPORT 6 /**< v4/v5 outer certification data (QE report) */
#define CL_ATTEST_V5_BODY_SGX 1
#define CL_ATTEST_V5_BODY_TDX10 2
#define CL_ATTEST_V5_BODY_TDX15 3

/** Intel's QE vendor id 939A7233-F79C-4CA9-940A-0DB3957F0607. */
extern const uint8_t CL_ATTEST_INTEL_QE_VENDOR_ID[16];
/** The simulated QE's vendor id (equal to tee_sim.h's CL_SIM_VENDOR_ID; duplicated
 *  here because the verifier must not link the host-side simulator). */
extern const uint8_t CL_ATTEST_SIM_QE_VENDOR_ID[16];
/** "SIM!" in the last 4 bytes of user_data marks simulated quotes. */
#define CL_ATTEST_SIM_MAGIC "SIM!"

/**
 * A quote split into its parts: every pointer points into the caller's
 * buffer (no copy), every length has been checked against the input.
 */
typedef struct cl_attest_quote {
    uint16_t version;      /**< 3, 4 or 5 */
    uint16_t att_key_type; /**< 2 */
    uint32_t tee_type;     /**< v3: att_key_data_0 (must be 0); v4/v5: tee_type */
    const uint8_t *vendor_id;  /**< 16 bytes */
    const uint8_t *user_data;  /**< 20 bytes */
    const uint8_t *body;       /**< the enclave's 384-byte report body */
    const uint8_t *signed_data; /**< what the attestation key signed */
    size_t signed_len;          /**< 432 (v3/v4) or 438 (v5) */
    const uint8_t *sig;         /**< 64 bytes r || s, big-endian */
    const uint8_t *attest_pub;  /**< 64 bytes x || y, big-endian */
    const uint8_t *qe_report;   /**< 384-byte report body of the QE */
    const uint8_t *qe_report_sig; /**< 64 bytes, by the PCK key */
    const uint8_t *qe_auth;       /**< QE authentication data */
    size_t qe_auth_len;
    uint16_t cert_type;         /**< innermost certification data type (5) */
    const uint8_t *cert_data;
    size_t cert_len;
} cl_attest_quote_t;

/**
 * Parses a quote v3, v4 or v5 with an SGX body (no cryptography): every
 * length against the remaining input, exact sizes, nothing trailing, at most
 * CL_ATTEST_MAX_QUOTE_LEN. Results: OK, MALFORMED, VERSION, KEY_TYPE,
 * TEE_TYPE (TDX), CERT_TYPE (anything but a PCK chain, type 5, inside type 6
 * for v4/v5). out is zeroed on failure.
 */
cl_attest_result_t cl_attest_quote_parse(const uint8_t *quote, size_t len, cl_attest_quote_t *out);

/**
 * Verifies evidence (a quote) up to claims. root_pem: the trusted root
 * certificate(s) (the sim root for simulated evidence; Intel's SGX Root CA
 * for real DCAP evidence, not supported yet -> CL_ATTEST_ERR_BACKEND).
 * now: Unix seconds for certificate validity.
 */
cl_attest_result_t cl_attest_verify_evidence(const uint8_t *quote, size_t len,
                                             const char *root_pem, int64_t now,
                                             cl_attest_claims_t *claims);

#define CL_ATTEST_MAX_MRENCLAVES 8

/** The relying party's policy. Zero-initialize, then fill. */
typedef struct cl_attest_policy {
    uint8_t mr_enclave[CL_ATTEST_MAX_MRENCLAVES][32]; /**< allowlist ... */
    size_t n_mr_enclave;
    bool use_signer;       /**< ... or: MRSIGNER + ISVPRODID + min ISVSVN */
    uint8_t mr_signer[32];
    uint16_t isv_prod_id;
    uint16_t min_isv_svn;
    bool allow_debug;      /**< default false */
    bool allow_simulated;  /**< default false */
} cl_attest_policy_t;

/**
 * Appraises verified claims: identity, attributes, simulated/debug, and
 * report_data == expected_report_data (64 bytes, constant-time compare).
 */
cl_attest_result_t cl_attest_appraise(const cl_attest_claims_t *claims,
                                      const cl_attest_policy_t *policy,
                                      const uint8_t expected_report_data[64]);

/** Both steps. */
cl_attest_result_t cl_attest_verify(const uint8_t *quote, size_t len, const char *root_pem,
                                    int64_t now, const cl_attest_policy_t *policy,
                                    const uint8_t expected_report_data[64],
                                    cl_attest_claims_t *claims);


/* ---- The core's evidence (docs/core-protocol.md, GET /attestation) ---- */

#define CL_ATTEST_EVIDENCE_VERSION 1
#define CL_ATTEST_NONCE_MIN 16
#define CL_ATTEST_NONCE_MAX 64

/**
 * The decoded evidence map {v, backend, state, quote, identity_pub, ca_pub,
 * owner, nonce, ca_cert?, identity_cert?}. Pointers into the decoded input;
 * the optional certificates are NULL / 0 when absent.
 */
typedef struct cl_attest_core_evidence {
    uint64_t v;                  /**< 1 */
    const char *backend;         /**< "sim" or "sgx" (not NUL-terminated) */
    size_t backend_len;
    const char *state;           /**< "fresh", "claimed" or "provisioned" (not NUL-terminated) */
    size_t state_len;
    const uint8_t *quote;        /**< 1..CL_ATTEST_MAX_QUOTE_LEN bytes */
    size_t quote_len;
    const uint8_t *identity_pub; /**< 65 bytes, P-256 uncompressed (0x04 || x || y) */
    const uint8_t *ca_pub;       /**< 65 bytes, P-256 uncompressed */
    const uint8_t *owner;        /**< 32 bytes */
    const uint8_t *nonce;        /**< CL_ATTEST_NONCE_MIN..CL_ATTEST_NONCE_MAX bytes */
    size_t nonce_len;
    const uint8_t *ca_cert;      /**< DER, present (with identity_cert) once provisioned */
    size_t ca_cert_len;
    const uint8_t *identity_cert;
    size_t identity_cert_len;
} cl_attest_core_evidence_t;

/**
 * Decodes the evidence map strictly: exactly one CBOR map and nothing after
 * it, text keys only, a known key twice is refused, unknown text keys are
 * skipped, every known value of the right type and length, v == 1, backend
 * and state from their sets, ca_cert and identity_cert both present exactly
 * when the state is "provisioned". CL_ERR_BAD_INPUT otherwise (out zeroed),
 * CL_ERR_UNSUPPORTED for another v, CL_ERR_INVALID_ARG for NULL arguments.
 */
cl_status_t cl_attest_core_evidence_decode(const uint8_t *map, size_t len,
                                           cl_attest_core_evidence_t *out) CL_MUST_CHECK;

/**
 * REPORTDATA the core puts in its quote:
 * SHA-256(identity_pub || ca_pub || owner || nonce) || 32 zero bytes.
 */
cl_status_t cl_attest_core_report_data(const cl_attest_core_evidence_t *ev,
                                       uint8_t report_data[64]) CL_MUST_CHECK;

/**
 * Checks decoded core evidence end to end: ev->nonce equals our nonce
 * (constant time; else CL_ATTEST_ERR_NONCE), the quote verifies and is
 * appraised against policy with the report data above (cl_attest_verify),
 * and the evidence's backend label matches the quote ("sim" exactly for
 * simulated evidence; else CL_ATTEST_ERR_BACKEND). claims may be NULL.
 */
cl_attest_result_t cl_attest_core_evidence_verify(const cl_attest_core_evidence_t *ev,
                                                  const uint8_t *nonce, size_t nonce_len,
                                                  const char *root_pem, int64_t now,
                                                  const cl_attest_policy_t *policy,
                                                  cl_attest_claims_t *claims);

/* ---- Attestation result export ---- */

/**
 * Writes an EAR-shaped attestation result (draft-ietf-rats-ear, JSON form)
 * into buf as a NUL-terminated string: eat_profile, iat, ear_verifier_id,
 * eat_nonce (base64url, when nonce != NULL), and one submod "cloister-core"
 * with ear_status "affirming" (CL_ATTEST_OK), "warning" plus "simulated":
 * true (CL_ATTEST_OK_SIMULATED), or "contraindicated" with the reason
 * (cl_attest_result_str) for every refusal; claims (may be NULL on refusal)
 * add mrenclave/mrsigner/isvprodid/isvsvn/debug in hex. *len (may be NULL)
 * gets the length without the NUL. CL_ERR_BUFFER_TOO_SMALL when it does
 * not fit (buf then holds an empty string when size > 0).
 */
cl_status_t cl_attest_result_json(cl_attest_result_t r, const cl_attest_claims_t *claims,
                                  const uint8_t *nonce, size_t nonce_len, int64_t iat, char *buf,
                                  size_t size, size_t *len) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
