/*
 * verify.c - the verifier: quote -> claims (per backend), claims -> appraisal.
 *
 * What: cl_attest_verify_evidence parses a quote (quote.c), picks the backend
 * from the QE vendor id (Intel's -> CL_ATTEST_ERR_BACKEND, because the Intel
 * DCAP backend with collateral is not built; the simulation's, with "SIM!"
 * in user_data -> the sim backend), then checks, in this order:
 *   1. the PCK certification data (type 5, canonical PEM) builds a chain to
 *      the caller's root at `now` (X509_verify_cert), and every certificate
 *      in it is part of that chain;
 *   2. the QE report is signed by the PCK leaf key;
 *   3. the QE report is the simulated quoting enclave (MRSIGNER, ISVPRODID,
 *      no DEBUG);
 *   4. its report data binds the attestation key:
 *      SHA-256(attest_pub_key || qe_auth_data) || 32 zero bytes;
 *   5. the quote signature by the attestation key over the signed bytes.
 * Then cl_attest_appraise applies the relying party's policy, backend-neutral.
 *
 * Why this order: each step only trusts what the previous one proved, and
 * each failure gets its own reason code (a flipped bit in the QE report is
 * a bad QE report signature, not a bad binding). Evidence from the sim
 * backend is always is_simulated, so the best result it can ever get is
 * CL_ATTEST_OK_SIMULATED; CL_ATTEST_OK is reserved for a hardware backend.
 *
 * No file or network I/O (certificates are parsed from memory BIOs) and no
 * global mutable state, so this can run inside the trusted core. OpenSSL
 * objects live for one call.
 */
#include "cloister/attest.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "cloister/crypto.h"
#include "verify_internal.h"

/* Most certificates accepted in the PCK certification data (leaf, CAs, root). */
#define MAX_CHAIN 4

/* ---------------------------------------------------------------- */
/* Result names                                                      */
/* ---------------------------------------------------------------- */

const char *cl_attest_result_str(cl_attest_result_t r)
{
    switch (r) {
    case CL_ATTEST_OK: return "ok";
    case CL_ATTEST_OK_SIMULATED: return "ok-simulated";
    case CL_ATTEST_ERR_MALFORMED: return "malformed";
    case CL_ATTEST_ERR_VERSION: return "bad-version";
    case CL_ATTEST_ERR_KEY_TYPE: return "bad-key-type";
    case CL_ATTEST_ERR_TEE_TYPE: return "not-sgx";
    case CL_ATTEST_ERR_CERT_TYPE: return "bad-cert-type";
    case CL_ATTEST_ERR_QUOTE_SIG: return "bad-quote-signature";
    case CL_ATTEST_ERR_QE_BINDING: return "bad-qe-binding";
    case CL_ATTEST_ERR_QE_REPORT_SIG: return "bad-qe-report-signature";
    case CL_ATTEST_ERR_CHAIN: return "untrusted-chain";
    case CL_ATTEST_ERR_CERT_EXPIRED: return "cert-expired";
    case CL_ATTEST_ERR_UNKNOWN_VENDOR: return "unknown-vendor";
    case CL_ATTEST_ERR_QE_IDENTITY: return "wrong-qe";
    case CL_ATTEST_ERR_SIMULATED: return "simulated";
    case CL_ATTEST_ERR_DEBUG: return "debug-enclave";
    case CL_ATTEST_ERR_ATTRIBUTES: return "bad-attributes";
    case CL_ATTEST_ERR_MRENCLAVE: return "wrong-mrenclave";
    case CL_ATTEST_ERR_MRSIGNER: return "wrong-mrsigner";
    case CL_ATTEST_ERR_PRODID: return "wrong-prodid";
    case CL_ATTEST_ERR_SVN: return "svn-too-low";
    case CL_ATTEST_ERR_REPORT_DATA: return "wrong-report-data";
    case CL_ATTEST_ERR_POLICY: return "empty-policy";
    case CL_ATTEST_ERR_BACKEND: return "no-backend";
    case CL_ATTEST_ERR_NONCE: return "wrong-nonce";
    }
    return "unknown";
}

const char *cl_attest_result_text(cl_attest_result_t r)
{
    switch (r) {
    case CL_ATTEST_OK:
        return "The evidence verified and satisfies the policy.";
    case CL_ATTEST_OK_SIMULATED:
        return "SIMULATED evidence verified and allowed by policy: it proves nothing, "
               "do not use it to protect real data.";
    case CL_ATTEST_ERR_MALFORMED:
        return "The quote is truncated, oversized or has inconsistent lengths.";
    case CL_ATTEST_ERR_VERSION:
        return "The quote version is not 3, 4 or 5.";
    case CL_ATTEST_ERR_KEY_TYPE:
        return "The attestation key type is not ECDSA P-256.";
    case CL_ATTEST_ERR_TEE_TYPE:
        return "The quote is not an SGX enclave quote (for example a TDX quote).";
    case CL_ATTEST_ERR_CERT_TYPE:
        return "The quote's certification data is not a PCK certificate chain.";
    case CL_ATTEST_ERR_QUOTE_SIG:
        return "The quote signature by the attestation key does not verify: the quote was "
               "altered.";
    case CL_ATTEST_ERR_QE_BINDING:
        return "The quoting enclave's report does not bind the attestation key.";
    case CL_ATTEST_ERR_QE_REPORT_SIG:
        return "The quoting enclave's report is not signed by the PCK key of the chain.";
    case CL_ATTEST_ERR_CHAIN:
        return "The PCK certificate chain does not lead to the trusted root (wrong root, or "
               "altered certificates).";
    case CL_ATTEST_ERR_CERT_EXPIRED:
        return "A certificate of the PCK chain is expired or not yet valid at the given time.";
    case CL_ATTEST_ERR_UNKNOWN_VENDOR:
        return "The quoting enclave vendor is neither Intel nor the Cloister simulation.";
    case CL_ATTEST_ERR_QE_IDENTITY:
        return "The quote was not made by the expected quoting enclave.";
    case CL_ATTEST_ERR_SIMULATED:
        return "The evidence is SIMULATED and the policy does not allow simulated evidence "
               "(--allow-simulated).";
    case CL_ATTEST_ERR_DEBUG:
        return "The enclave runs in DEBUG mode: its memory is readable by the host.";
    case CL_ATTEST_ERR_ATTRIBUTES:
        return "The enclave attributes are not acceptable (INITTED/MODE64BIT missing or a "
               "provisioning key allowed).";
    case CL_ATTEST_ERR_MRENCLAVE:
        return "The enclave measurement (MRENCLAVE) is not in the allowlist: different code.";
    case CL_ATTEST_ERR_MRSIGNER:
        return "The enclave signer (MRSIGNER) is not the expected one.";
    case CL_ATTEST_ERR_PRODID:
        return "The enclave product id (ISVPRODID) is not the expected one.";
    case CL_ATTEST_ERR_SVN:
        return "The enclave security version (ISVSVN) is below the minimum.";
    case CL_ATTEST_ERR_REPORT_DATA:
        return "The report data does not bind the expected keys and nonce.";
    case CL_ATTEST_ERR_POLICY:
        return "The policy names no enclave identity (MRENCLAVE or MRSIGNER) or no report "
               "data to check.";
    case CL_ATTEST_ERR_BACKEND:
        return "No verifier backend for this evidence (Intel DCAP is not built in), or the "
               "evidence's backend label does not match its quote.";
    case CL_ATTEST_ERR_NONCE:
        return "The evidence answers a different nonce: stale or replayed.";
    }
    return "Unknown attestation result.";
}

/* ---------------------------------------------------------------- */
/* ECDSA P-256 with raw keys and signatures                          */
/* ---------------------------------------------------------------- */

/* P-256 public key from x || y (64 bytes, big-endian); NULL if not a curve point. */
static EVP_PKEY *p256_from_raw(const uint8_t xy[64])
{
    uint8_t pt[65];
    char group[] = "prime256v1";
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pk = NULL;

    pt[0] = 0x04;
    memcpy(pt + 1, xy, 64);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt));
    params[2] = OSSL_PARAM_construct_end();
    if (pc == NULL || EVP_PKEY_fromdata_init(pc) != 1 ||
        EVP_PKEY_fromdata(pc, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(pk);
        pk = NULL;
    }
    EVP_PKEY_CTX_free(pc);
    return pk;
}

static bool is_p256(const EVP_PKEY *pk)
{
    char name[32];
    size_t n = 0;

    if (pk == NULL || !EVP_PKEY_is_a(pk, "EC"))
        return false;
    if (EVP_PKEY_get_group_name(pk, name, sizeof(name), &n) != 1)
        return false;
    return strcmp(name, "prime256v1") == 0;
}

/* ECDSA-P256/SHA-256 over msg with a raw r || s signature; true when valid. */
static bool verify_raw_sig(EVP_PKEY *pk, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *ss = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    int der_len = -1;
    EVP_MD_CTX *md = NULL;
    bool ok = false;

    if (s == NULL || r == NULL || ss == NULL || ECDSA_SIG_set0(s, r, ss) != 1) {
        BN_free(r);
        BN_free(ss);
        goto out;
    }
    der_len = i2d_ECDSA_SIG(s, &der);
    if (der_len <= 0)
        goto out;
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) != 1)
        goto out;
    ok = EVP_DigestVerify(md, der, (size_t)der_len, msg, len) == 1;
out:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(s);
    ERR_clear_error();
    return ok;
}

bool cl_attest_sha256(const uint8_t *const *parts, const size_t *lens, size_t n, uint8_t out[32])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int olen = 0;
    bool ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;

    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(md, parts[i], lens[i]) == 1;
    ok = ok && EVP_DigestFinal_ex(md, out, &olen) == 1 && olen == 32;
    EVP_MD_CTX_free(md);
    return ok;
}

/* ---------------------------------------------------------------- */
/* PCK chain                                                         */
/* ---------------------------------------------------------------- */

/* Reads every certificate of a PEM text; false if anything else is in it. */
static bool read_pem_certs(const void *pem, size_t len, STACK_OF(X509) *out, size_t max)
{
    BIO *b;
    bool ok = true;

    if (len == 0 || len > CL_ATTEST_MAX_QUOTE_LEN)
        return false;
    b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL)
        return false;
    for (;;) {
        X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (x == NULL)
            break;
        if ((size_t)sk_X509_num(out) >= max || sk_X509_push(out, x) <= 0) {
            X509_free(x);
            ok = false;
            break;
        }
    }
    /* Stopped cleanly only at the end of the input. */
    if (ok && (BIO_ctrl_pending(b) != 0 || sk_X509_num(out) == 0))
        ok = false;
    BIO_free(b);
    ERR_clear_error();
    return ok;
}

/*
 * The certification data must be exactly the canonical PEM of its
 * certificates (as PEM_write_bio_X509 writes them), optionally followed by
 * one NUL: a bit flipped anywhere in it then changes a certificate, never
 * just the unused bits of a base64 character or a line break.
 */
static bool pem_is_canonical(const STACK_OF(X509) *certs, const uint8_t *pem, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    const char *data = NULL;
    long n;
    bool ok = b != NULL;

    for (int i = 0; ok && i < sk_X509_num(certs); i++)
        ok = PEM_write_bio_X509(b, sk_X509_value(certs, i)) == 1;
    if (ok) {
        n = BIO_get_mem_data(b, &data);
        if (len > 0 && pem[len - 1] == 0)
            len--;
        ok = n >= 0 && (size_t)n == len && memcmp(data, pem, len) == 0;
    }
    BIO_free(b);
    return ok;
}

/*
 * Verifies the chain in the certification data against root_pem at `now`
 * and returns the leaf's public key (a new reference) in *leaf_key.
 */
static cl_attest_result_t verify_chain(const uint8_t *pem, size_t len, const char *root_pem,
                                       int64_t now, EVP_PKEY **leaf_key)
{
    STACK_OF(X509) *certs = sk_X509_new_null();
    STACK_OF(X509) *roots = sk_X509_new_null();
    STACK_OF(X509) *untrusted = NULL;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    cl_attest_result_t res = CL_ATTEST_ERR_CHAIN;
    STACK_OF(X509) *built;

    *leaf_key = NULL;
    if (certs == NULL || roots == NULL || store == NULL || ctx == NULL || root_pem == NULL)
        goto out;
    if (!read_pem_certs(pem, len, certs, MAX_CHAIN) || !pem_is_canonical(certs, pem, len))
        goto out;
    if (!read_pem_certs(root_pem, strlen(root_pem), roots, 16))
        goto out;
    for (int i = 0; i < sk_X509_num(roots); i++)
        if (X509_STORE_add_cert(store, sk_X509_value(roots, i)) != 1)
            goto out;
    untrusted = sk_X509_dup(certs);
    if (untrusted == NULL)
        goto out;
    (void)sk_X509_shift(untrusted); /* the leaf */
    if (X509_STORE_CTX_init(ctx, store, sk_X509_value(certs, 0), untrusted) != 1)
        goto out;
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)now);
    X509_VERIFY_PARAM_set_depth(X509_STORE_CTX_get0_param(ctx), MAX_CHAIN);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        if (err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID)
            res = CL_ATTEST_ERR_CERT_EXPIRED;
        goto out;
    }
    /* Every certificate the quote carries is, in order, part of the chain built. */
    built = X509_STORE_CTX_get0_chain(ctx);
    if (built == NULL || sk_X509_num(built) < sk_X509_num(certs))
        goto out;
    for (int i = 0; i < sk_X509_num(certs); i++)
        if (X509_cmp(sk_X509_value(certs, i), sk_X509_value(built, i)) != 0)
            goto out;
    *leaf_key = X509_get_pubkey(sk_X509_value(certs, 0));
    if (*leaf_key == NULL)
        goto out;
    res = CL_ATTEST_OK;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_free(untrusted);
    sk_X509_pop_free(certs, X509_free);
    sk_X509_pop_free(roots, X509_free);
    ERR_clear_error();
    return res;
}

/* ---------------------------------------------------------------- */
/* Evidence -> claims                                                */
/* ---------------------------------------------------------------- */

/* Steps 2..5 (see the file comment) once the chain gave us the PCK key. */
static cl_attest_result_t verify_sigs(const cl_attest_quote_t *q, EVP_PKEY *pck,
                                      cl_sgx_report_body_t *qe)
{
    static const uint8_t zeros[32] = {0};
    uint8_t h[32];
    const uint8_t *parts[2] = {q->attest_pub, q->qe_auth};
    size_t lens[2] = {64, q->qe_auth_len};
    EVP_PKEY *ak;
    bool ok;

    if (!is_p256(pck) || !verify_raw_sig(pck, q->qe_report, CL_SGX_REPORT_BODY_LEN,
                                         q->qe_report_sig))
        return CL_ATTEST_ERR_QE_REPORT_SIG;
    cl_sgx_report_body_decode(q->qe_report, qe);
    if (cl_attest_sim_qe_check(qe) != CL_ATTEST_OK)
        return CL_ATTEST_ERR_QE_IDENTITY;
    if (!cl_attest_sha256(parts, lens, 2, h))
        return CL_ATTEST_ERR_QE_BINDING;
    if (cl_ct_memcmp(h, qe->report_data, 32) != 0 ||
        cl_ct_memcmp(zeros, qe->report_data + 32, 32) != 0)
        return CL_ATTEST_ERR_QE_BINDING;
    ak = p256_from_raw(q->attest_pub);
    ok = ak != NULL && verify_raw_sig(ak, q->signed_data, q->signed_len, q->sig);
    EVP_PKEY_free(ak);
    ERR_clear_error();
    return ok ? CL_ATTEST_OK : CL_ATTEST_ERR_QUOTE_SIG;
}

cl_attest_result_t cl_attest_verify_evidence(const uint8_t *quote, size_t len,
                                             const char *root_pem, int64_t now,
                                             cl_attest_claims_t *claims)
{
    cl_attest_quote_t q;
    cl_sgx_report_body_t qe;
    cl_attest_result_t res;
    EVP_PKEY *pck = NULL;
    static const char *const names[] = {"sim-dcap-v3", "sim-dcap-v4", "sim-dcap-v5"};

    if (claims != NULL)
        memset(claims, 0, sizeof(*claims));
    res = cl_attest_quote_parse(quote, len, &q);
    if (res != CL_ATTEST_OK)
        return res;
    /* Backend selection. */
    if (memcmp(q.vendor_id, CL_ATTEST_INTEL_QE_VENDOR_ID, 16) == 0)
        return CL_ATTEST_ERR_BACKEND; /* Intel DCAP (collateral, Intel root): not built */
    if (memcmp(q.vendor_id, CL_ATTEST_SIM_QE_VENDOR_ID, 16) != 0 ||
        memcmp(q.user_data + 16, CL_ATTEST_SIM_MAGIC, 4) != 0)
        return CL_ATTEST_ERR_UNKNOWN_VENDOR;

    res = verify_chain(q.cert_data, q.cert_len, root_pem, now, &pck);
    if (res == CL_ATTEST_OK)
        res = verify_sigs(&q, pck, &qe);
    EVP_PKEY_free(pck);
    if (res != CL_ATTEST_OK)
        return res;
    if (claims != NULL) {
        claims->quote_version = q.version;
        cl_sgx_report_body_decode(q.body, &claims->body);
        memcpy(claims->qe_vendor_id, q.vendor_id, 16);
        claims->is_simulated = true; /* the only backend built is the simulation */
        claims->is_debug = (claims->body.attr_flags & CL_SGX_FLAGS_DEBUG) != 0;
        memcpy(claims->backend, names[q.version - 3], strlen(names[q.version - 3]) + 1);
        claims->qe_isv_svn = qe.isv_svn;
    }
    return CL_ATTEST_OK;
}

/* ---------------------------------------------------------------- */
/* Appraisal                                                         */
/* ---------------------------------------------------------------- */

cl_attest_result_t cl_attest_appraise(const cl_attest_claims_t *claims,
                                      const cl_attest_policy_t *policy,
                                      const uint8_t expected_report_data[64])
{
    const cl_sgx_report_body_t *b;
    uint64_t f;

    if (claims == NULL || policy == NULL || expected_report_data == NULL ||
        policy->n_mr_enclave > CL_ATTEST_MAX_MRENCLAVES ||
        (policy->n_mr_enclave == 0 && !policy->use_signer))
        return CL_ATTEST_ERR_POLICY;
    b = &claims->body;
    f = b->attr_flags;
    if (claims->is_simulated && !policy->allow_simulated)
        return CL_ATTEST_ERR_SIMULATED;
    if ((claims->is_debug || (f & CL_SGX_FLAGS_DEBUG) != 0) && !policy->allow_debug)
        return CL_ATTEST_ERR_DEBUG;
    if ((f & CL_SGX_FLAGS_INITTED) == 0 || (f & CL_SGX_FLAGS_MODE64BIT) == 0 ||
        (f & (CL_SGX_FLAGS_PROVISION_KEY | CL_SGX_FLAGS_EINITTOKEN_KEY)) != 0)
        return CL_ATTEST_ERR_ATTRIBUTES;
    /* Identity: the allowlist and/or signer, product and minimum SVN (both when both set). */
    if (policy->n_mr_enclave > 0) {
        bool found = false;
        for (size_t i = 0; i < policy->n_mr_enclave; i++)
            found |= memcmp(b->mr_enclave, policy->mr_enclave[i], 32) == 0;
        if (!found)
            return CL_ATTEST_ERR_MRENCLAVE;
    }
    if (policy->use_signer) {
        if (memcmp(b->mr_signer, policy->mr_signer, 32) != 0)
            return CL_ATTEST_ERR_MRSIGNER;
        if (b->isv_prod_id != policy->isv_prod_id)
            return CL_ATTEST_ERR_PRODID;
        if (b->isv_svn < policy->min_isv_svn)
            return CL_ATTEST_ERR_SVN;
    }
    if (cl_ct_memcmp(b->report_data, expected_report_data, CL_SGX_REPORT_DATA_LEN) != 0)
        return CL_ATTEST_ERR_REPORT_DATA;
    return claims->is_simulated ? CL_ATTEST_OK_SIMULATED : CL_ATTEST_OK;
}

cl_attest_result_t cl_attest_verify(const uint8_t *quote, size_t len, const char *root_pem,
                                    int64_t now, const cl_attest_policy_t *policy,
                                    const uint8_t expected_report_data[64],
                                    cl_attest_claims_t *claims)
{
    cl_attest_claims_t local;
    cl_attest_claims_t *c = claims != NULL ? claims : &local;
    cl_attest_result_t res;

    /* A policy that could never pass is refused before any work. */
    if (policy == NULL || expected_report_data == NULL ||
        policy->n_mr_enclave > CL_ATTEST_MAX_MRENCLAVES ||
        (policy->n_mr_enclave == 0 && !policy->use_signer)) {
        memset(c, 0, sizeof(*c));
        return CL_ATTEST_ERR_POLICY;
    }
    res = cl_attest_verify_evidence(quote, len, root_pem, now, c);
    if (res != CL_ATTEST_OK)
        return res;
    return cl_attest_appraise(c, policy, expected_report_data);
}
