/*
 * cloister/tee.h - the TEE platform as the trusted core sees it, the SGX
 * structure layouts it produces (reports, key requests, sealed blobs), and
 * the sealing library the core links (tee/common/seal.c).
 *
 * On real SGX the platform table is the SGX SDK's trusted runtime: read_rand
 * is sgx_read_rand (RDRAND), get_report is EREPORT (sgx_create_report),
 * get_key is EGETKEY (sgx_get_key). Here the simulated platform (tee/sim)
 * implements the same three calls with the same byte layouts, so the core
 * and everything that parses its output does not change when the platform
 * does. The simulated platform gives NO security (its secrets live in a file
 * the host can read) and says so in every quote it produces.
 *
 * All multi-byte integers in the SGX structures are little-endian; layouts
 * and offsets follow Intel's sgx_report.h / sgx_key.h / sgx_tseal.h
 * (see ../shared/reference/sgx-dcap.md); the tests assert every offset.
 */
#ifndef CLOISTER_TEE_H
#define CLOISTER_TEE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- sizes (sgx_report.h, sgx_key.h, sgx_tseal.h) ---- */
#define CL_SGX_REPORT_BODY_LEN 384 /**< sgx_report_body_t */
#define CL_SGX_REPORT_LEN 432      /**< sgx_report_t: body 384 + key_id 32 + mac 16 */
#define CL_SGX_TARGET_INFO_LEN 512 /**< sgx_target_info_t */
#define CL_SGX_KEY_REQUEST_LEN 512 /**< sgx_key_request_t */
#define CL_SGX_SEALED_HDR_LEN 560  /**< sgx_sealed_data_t without payload */
#define CL_SGX_REPORT_DATA_LEN 64
#define CL_SGX_HASH_LEN 32 /**< MRENCLAVE / MRSIGNER */
#define CL_SGX_CPUSVN_LEN 16
#define CL_SGX_KEY_LEN 16 /**< EGETKEY output (128-bit) */

/* Offsets inside sgx_report_body_t. */
#define CL_SGX_RB_CPUSVN 0
#define CL_SGX_RB_MISCSELECT 16
#define CL_SGX_RB_ISVEXTPRODID 32
#define CL_SGX_RB_ATTRIBUTES 48 /**< flags u64 then xfrm u64 */
#define CL_SGX_RB_MRENCLAVE 64
#define CL_SGX_RB_MRSIGNER 128
#define CL_SGX_RB_CONFIGID 192
#define CL_SGX_RB_ISVPRODID 256
#define CL_SGX_RB_ISVSVN 258
#define CL_SGX_RB_CONFIGSVN 260
#define CL_SGX_RB_ISVFAMILYID 304
#define CL_SGX_RB_REPORTDATA 320
/* Offsets inside sgx_report_t (after the body). */
#define CL_SGX_REPORT_KEYID 384
#define CL_SGX_REPORT_MAC 416
/* Offsets inside sgx_target_info_t. */
#define CL_SGX_TI_MRENCLAVE 0
#define CL_SGX_TI_ATTRIBUTES 32
#define CL_SGX_TI_CONFIGSVN 48
#define CL_SGX_TI_MISCSELECT 52
#define CL_SGX_TI_CONFIGID 64
/* Offsets inside sgx_key_request_t. */
#define CL_SGX_KR_KEY_NAME 0
#define CL_SGX_KR_KEY_POLICY 2
#define CL_SGX_KR_ISVSVN 4
#define CL_SGX_KR_CPUSVN 8
#define CL_SGX_KR_ATTRIBUTE_MASK 24 /**< flags u64 then xfrm u64 */
#define CL_SGX_KR_KEY_ID 40
#define CL_SGX_KR_MISC_MASK 72
#define CL_SGX_KR_CONFIGSVN 76

/* Offsets inside sgx_sealed_data_t (then the payload at CL_SGX_SEALED_HDR_LEN). */
#define CL_SGX_SD_KEY_REQUEST 0
#define CL_SGX_SD_PLAIN_TEXT_OFFSET 512 /**< u32: length of the encrypted text */
#define CL_SGX_SD_RESERVED 516          /**< 12 bytes, zero */
#define CL_SGX_SD_PAYLOAD_SIZE 528      /**< u32: encrypted + additional MAC text */
#define CL_SGX_SD_AES_RESERVED 532      /**< 12 bytes, zero */
#define CL_SGX_SD_TAG 544               /**< 16-byte AES-GCM tag */

/* ATTRIBUTES.flags bits (sgx_attributes.h). */
#define CL_SGX_FLAGS_INITTED 0x1ull
#define CL_SGX_FLAGS_DEBUG 0x2ull
#define CL_SGX_FLAGS_MODE64BIT 0x4ull
#define CL_SGX_FLAGS_PROVISION_KEY 0x10ull
#define CL_SGX_FLAGS_EINITTOKEN_KEY 0x20ull
#define CL_SGX_FLAGS_KSS 0x80ull

/* Key names and policies (sgx_key.h). */
#define CL_SGX_KEYSELECT_REPORT 3
#define CL_SGX_KEYSELECT_SEAL 4
#define CL_SGX_KEYPOLICY_MRENCLAVE 0x1
#define CL_SGX_KEYPOLICY_MRSIGNER 0x2

/** A decoded sgx_report_body_t (the fields the project uses). */
typedef struct cl_sgx_report_body {
    uint8_t cpu_svn[CL_SGX_CPUSVN_LEN];
    uint32_t misc_select;
    uint64_t attr_flags;
    uint64_t attr_xfrm;
    uint8_t mr_enclave[CL_SGX_HASH_LEN];
    uint8_t mr_signer[CL_SGX_HASH_LEN];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint16_t config_svn;
    uint8_t report_data[CL_SGX_REPORT_DATA_LEN];
} cl_sgx_report_body_t;

/** Decodes the 384-byte report body (reserved fields ignored). */
void cl_sgx_report_body_decode(const uint8_t in[CL_SGX_REPORT_BODY_LEN], cl_sgx_report_body_t *out);
/** Encodes a report body; reserved and KSS fields are written as zeros. */
void cl_sgx_report_body_encode(const cl_sgx_report_body_t *in, uint8_t out[CL_SGX_REPORT_BODY_LEN]);

/** A decoded sgx_key_request_t (EGETKEY input). */
typedef struct cl_sgx_key_request {
    uint16_t key_name;   /**< CL_SGX_KEYSELECT_* */
    uint16_t key_policy; /**< CL_SGX_KEYPOLICY_* bits */
    uint16_t isv_svn;
    uint8_t cpu_svn[CL_SGX_CPUSVN_LEN];
    uint64_t attr_mask_flags;
    uint64_t attr_mask_xfrm;
    uint8_t key_id[32];
    uint32_t misc_mask;
    uint16_t config_svn;
} cl_sgx_key_request_t;

/** Offset of the first reserved byte after config_svn (reserved up to 512). */
#define CL_SGX_KR_RESERVED2 78
/** Key policy bit NOISVPRODID (sgx_key.h). */
#define CL_SGX_KEYPOLICY_NOISVPRODID 0x4
/**
 * Attribute mask of sgx_seal_data(): TSEAL_DEFAULT_FLAGSMASK binds INITTED,
 * DEBUG and KSS (a debug enclave cannot unseal production data), not
 * MODE64BIT / PROVISION_KEY / EINITTOKEN_KEY; XFRM is not bound.
 */
#define CL_SEAL_ATTR_MASK_FLAGS (CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_DEBUG | CL_SGX_FLAGS_KSS)
#define CL_SEAL_ATTR_MASK_XFRM 0x0ull
/** Misc mask of sgx_seal_data() (TSEAL_DEFAULT_MISCMASK). */
#define CL_SEAL_MISC_MASK 0xF0000000u

/** Encodes a 512-byte key request; reserved bytes are zeros. */
void cl_sgx_key_request_encode(const cl_sgx_key_request_t *in,
                               uint8_t out[CL_SGX_KEY_REQUEST_LEN]);
/** Decodes a key request; CL_ERR_BAD_INPUT when a reserved byte is not zero. */
cl_status_t cl_sgx_key_request_decode(const uint8_t in[CL_SGX_KEY_REQUEST_LEN],
                                      cl_sgx_key_request_t *out) CL_MUST_CHECK;

#define CL_TEE_PLATFORM_VERSION 1

/** Platform backends (also the backend id in the sealing envelope). */
#define CL_TEE_BACKEND_SIM 1
#define CL_TEE_BACKEND_SGX 2

/**
 * The platform services of the enclave: randomness, reports and keys. The
 * table and its `self` belong to the runtime; the core only calls through it.
 */
typedef struct cl_tee_platform {
    uint32_t version;  /**< CL_TEE_PLATFORM_VERSION */
    uint16_t backend;  /**< CL_TEE_BACKEND_* */
    const char *name;  /**< "sim" or "sgx" */
    void *self;
    /** RDRAND / sgx_read_rand. */
    cl_status_t (*read_rand)(void *self, uint8_t *out, size_t len);
    /**
     * EREPORT: a 432-byte report of the calling enclave carrying report_data,
     * MACed with the report key of the target enclave. target_info NULL = the
     * platform's quoting enclave (what a quote needs).
     */
    cl_status_t (*get_report)(void *self, const uint8_t *target_info,
                              const uint8_t report_data[CL_SGX_REPORT_DATA_LEN],
                              uint8_t report[CL_SGX_REPORT_LEN]);
    /**
     * EGETKEY for the calling enclave: a 16-byte key for a 512-byte key
     * request (SEAL or REPORT key name). CL_ERR_AUTH when the request asks for
     * an ISVSVN or CPUSVN above the current ones (a newer key than the
     * enclave may have); CL_ERR_BAD_INPUT for reserved bits or unknown names.
     */
    cl_status_t (*get_key)(void *self, const uint8_t key_request[CL_SGX_KEY_REQUEST_LEN],
                           uint8_t key[CL_SGX_KEY_LEN]);
} cl_tee_platform_t;

/* ---- Sealing (sgx_sealed_data_t + the project envelope) ---- */

#define CL_SEAL_MAGIC "CLSEAL01"           /**< first 8 bytes of the additional MAC text */
#define CL_SEAL_ENVELOPE_LEN (8 + 2 + 2 + 2 + 8 + 8) /**< magic, backend, policy, purpose, epoch, counter */
#define CL_SEAL_MAX_EXTRA_AAD 64

/** What a sealed blob is for (in the authenticated envelope). */
typedef enum cl_seal_purpose {
    CL_SEAL_PURPOSE_LOG = 1,      /**< a sealed log record */
    CL_SEAL_PURPOSE_SNAPSHOT = 2, /**< a state snapshot */
    CL_SEAL_PURPOSE_TEST = 99,
} cl_seal_purpose_t;

/** The authenticated, unencrypted envelope of a sealed blob. */
typedef struct cl_seal_envelope {
    uint16_t purpose; /**< cl_seal_purpose_t */
    uint64_t epoch;   /**< boot epoch of the writer */
    uint64_t counter; /**< record counter (log) or last counter included (snapshot) */
    uint8_t extra[CL_SEAL_MAX_EXTRA_AAD]; /**< caller data authenticated too (e.g. a chain hash) */
    size_t extra_len;
} cl_seal_envelope_t;

/** Size of a sealed blob for a payload of pt_len bytes and an envelope. */
size_t cl_seal_size(const cl_seal_envelope_t *env, size_t pt_len);

/**
 * Seals pt under the policy (CL_SGX_KEYPOLICY_MRENCLAVE or _MRSIGNER):
 * sgx_sealed_data_t with a fresh random key_id, AES-128-GCM with a zero IV
 * under EGETKEY(SEAL) (safe because every blob has a fresh key), additional
 * MAC text = magic || backend || policy || purpose || epoch || counter || extra.
 */
cl_status_t cl_seal(const cl_tee_platform_t *p, uint16_t policy, const cl_seal_envelope_t *env,
                    const uint8_t *pt, size_t pt_len, uint8_t *out, size_t out_size,
                    size_t *out_len) CL_MUST_CHECK;

/**
 * Unseals a blob: checks every length and the layout, derives the key from
 * the blob's key request (EGETKEY refuses a newer SVN), verifies the tag in
 * constant time and the envelope magic/backend. env receives the envelope;
 * the caller checks purpose/epoch/counter against what it expects.
 * CL_ERR_BAD_INPUT for a malformed blob, CL_ERR_AUTH for a wrong key or a
 * tampered blob (pt wiped), CL_ERR_BUFFER_TOO_SMALL when pt_size is short.
 */
cl_status_t cl_unseal(const cl_tee_platform_t *p, const uint8_t *blob, size_t len, uint8_t *pt,
                      size_t pt_size, size_t *pt_len, cl_seal_envelope_t *env) CL_MUST_CHECK;

/** Size of the plaintext inside a well-formed blob (no crypto), 0 if malformed. */
size_t cl_unsealed_size(const uint8_t *blob, size_t len);

#ifdef __cplusplus
}
#endif
#endif
