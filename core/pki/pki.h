/*
 * core/pki/pki.h - X.509 for the owner's PKI: build certificates whose
 * signature comes from a key handle (a token, the core's CA key), and check
 * certificates and issuance. I/O-free (checked by scripts/check-symbols.sh):
 * certificates are DER bytes in memory; linked by the trusted core (its CA)
 * and by the `cloister` CLI (the owner's root and the provisioning step).
 *
 * The hierarchy (DESIGN.md "PKI and the owner"):
 *   owner root (self-signed, CA, key in a file or a PKCS#11 token)
 *     -> core intermediate CA (CA, pathlen 0; key generated in the core)
 *          -> client certificates (leaf; role in the subject OU "role:<r>")
 *     -> core identity (leaf, the core's EDHOC key)
 * All keys are P-256, all signatures ECDSA with SHA-256.
 */
#ifndef CLOISTER_CORE_PKI_H
#define CLOISTER_CORE_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"

#define CL_PKI_MAX_CERT 2048 /**< largest DER certificate accepted or produced */
#define CL_PKI_MAX_NAME 64   /**< CN / OU text, NUL included */
#define CL_PKI_P256_PUB_LEN 65

/** What a certificate is for. */
typedef enum cl_pki_kind {
    CL_PKI_ROOT_CA = 1,         /**< self-signed, CA:TRUE, keyCertSign|cRLSign */
    CL_PKI_INTERMEDIATE_CA = 2, /**< CA:TRUE pathlen 0, keyCertSign|cRLSign */
    CL_PKI_LEAF = 3,            /**< CA:FALSE, digitalSignature, EKU clientAuth+serverAuth */
} cl_pki_kind_t;

/** Signs tbs (the DER TBSCertificate) with ES256: raw r || s (64 bytes). */
typedef cl_status_t (*cl_pki_sign_fn)(void *arg, const uint8_t *tbs, size_t tbs_len,
                                      uint8_t sig[64]);

typedef struct cl_pki_cert_req {
    cl_pki_kind_t kind;
    const char *cn;     /**< subject CN (required) */
    const char *ou;     /**< subject OU or NULL (e.g. "role:device") */
    const uint8_t *pub; /**< subject public key, 65-byte uncompressed P-256 */
    uint64_t serial;    /**< > 0 */
    int64_t not_before; /**< Unix seconds */
    int64_t not_after;
    const uint8_t *issuer; /**< issuer certificate DER; NULL for CL_PKI_ROOT_CA */
    size_t issuer_len;
} cl_pki_cert_req_t;

/**
 * Builds a certificate: TBS with OpenSSL, signature through sign(), then the
 * assembled DER is parsed back and its signature verified with the issuer's
 * public key (the subject's own for a root) before it is returned.
 *
 * Profile: v3; issuer name = the issuer's subject (the subject for a root);
 * subject OU (if any) then CN, UTF8String; validity in UTCTime up to 2049,
 * GeneralizedTime after; basicConstraints critical, keyUsage critical,
 * extendedKeyUsage clientAuth+serverAuth (leaves only), subjectKeyIdentifier
 * (SHA-1 of the point) and authorityKeyIdentifier (the issuer's SKI).
 * The result passes cl_pki_verify_issued (cl_pki_check_root for a root)
 * with now = 0. Nothing is written to out unless CL_OK; *out_len is 0 then.
 *
 * Errors: CL_ERR_INVALID_ARG for a bad request (NULLs, serial 0, empty or
 * non-UTF-8 CN/OU, not_before < 0, not_after before it or after year 9999,
 * issuer given for a root or missing otherwise, an issuer that may not issue
 * this kind: not a CA with keyCertSign, or pathlen 0 for a sub-CA);
 * CL_ERR_LIMIT when CN or OU has CL_PKI_MAX_NAME bytes or more, or the
 * certificate would exceed CL_PKI_MAX_CERT; CL_ERR_BAD_INPUT when pub is not
 * an uncompressed point on P-256, or the issuer certificate does not parse
 * (its cl_pki_cert_parse status); sign()'s own error unchanged;
 * CL_ERR_AUTH when the signature does not verify with the issuer's key (sign()
 * used another key); CL_ERR_BUFFER_TOO_SMALL.
 */
cl_status_t cl_pki_make_cert(const cl_pki_cert_req_t *req, cl_pki_sign_fn sign, void *sign_arg,
                             uint8_t *out, size_t out_size, size_t *out_len) CL_MUST_CHECK;

/** What the project reads out of a certificate. */
typedef struct cl_pki_cert_info {
    char cn[CL_PKI_MAX_NAME];
    char ou[CL_PKI_MAX_NAME]; /**< "" when absent */
    uint64_t serial;          /**< 0 if it does not fit 64 bits */
    int64_t not_before, not_after;
    uint8_t pub[CL_PKI_P256_PUB_LEN]; /**< P-256 public key, uncompressed */
    bool is_ca;
    int pathlen;        /**< -1 when absent */
    bool self_issued;   /**< subject == issuer */
    uint8_t sha256[32]; /**< SHA-256 of the DER */
} cl_pki_cert_info_t;

/**
 * Parses a DER certificate strictly (no trailing bytes, v3, P-256 key,
 * ecdsa-with-SHA256). CL_ERR_BAD_INPUT otherwise, CL_ERR_UNSUPPORTED for
 * other key types or algorithms, CL_ERR_LIMIT when longer than CL_PKI_MAX_CERT.
 *
 * Strict means: DER only (definite minimal lengths, and OpenSSL's re-encoding
 * of the decoded certificate must equal the input), both signature algorithm
 * fields ecdsa-with-SHA256 without parameters, an uncompressed point on the
 * curve (compressed: CL_ERR_UNSUPPORTED), RFC 5280 times (YYMMDDHHMMSSZ for
 * 1950-2049, YYYYMMDDHHMMSSZ otherwise), extensions OpenSSL decodes without
 * error and no unknown critical one (CL_ERR_UNSUPPORTED), exactly one subject
 * CN and at most one OU, valid UTF-8 without NUL; a CN or OU of
 * CL_PKI_MAX_NAME bytes or more is refused with CL_ERR_LIMIT (never
 * truncated). CL_ERR_INVALID_ARG for NULL der or info. On failure *info is
 * zeroed.
 */
cl_status_t cl_pki_cert_parse(const uint8_t *der, size_t len,
                              cl_pki_cert_info_t *info) CL_MUST_CHECK;

/**
 * Checks that child was issued by issuer: names chain, issuer is a CA (with
 * keyCertSign), child's signature verifies with issuer's key, and both are
 * valid at now (Unix seconds; now <= 0 skips the time check). CL_ERR_AUTH
 * when the signature or the names do not match, CL_ERR_STATE when expired or
 * not yet valid, CL_ERR_BAD_INPUT for malformed input.
 *
 * Both certificates are parsed as by cl_pki_cert_parse (its errors returned
 * unchanged, the child's first). CL_ERR_AUTH also when the issuer is not a
 * CA with a keyUsage extension holding keyCertSign, when it has pathlen 0
 * and child is a CA that is not self-issued, or when OpenSSL's
 * X509_check_issued refuses the pair (e.g. the child's authorityKeyIdentifier
 * is not the issuer's subjectKeyIdentifier). Time is checked last.
 */
cl_status_t cl_pki_verify_issued(const uint8_t *child, size_t child_len, const uint8_t *issuer,
                                 size_t issuer_len, int64_t now) CL_MUST_CHECK;

/**
 * A self-signed root CA whose self-signature verifies (and is valid at now, if
 * > 0): exactly cl_pki_verify_issued(der, der). CL_ERR_AUTH when not
 * self-issued, not a CA with keyCertSign, or the signature does not verify.
 */
cl_status_t cl_pki_check_root(const uint8_t *der, size_t len, int64_t now) CL_MUST_CHECK;

/**
 * COSE x5t thumbprint: SHA-256/64, the first 8 bytes of SHA-256(DER) (COSE alg -15).
 * Hashes the bytes as given (no parsing): CL_ERR_BAD_INPUT when len is 0,
 * CL_ERR_LIMIT above CL_PKI_MAX_CERT.
 */
cl_status_t cl_pki_thumbprint(const uint8_t *der, size_t len, uint8_t out[8]) CL_MUST_CHECK;

#endif
