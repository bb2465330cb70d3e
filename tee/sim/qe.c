/*
 * qe.c - the simulated quoting enclave (HOST SIDE, INSECURE BY DESIGN).
 *
 * What: turns a 432-byte report targeted at the QE into a DCAP quote v3,
 * byte for byte as Intel's QE3 lays it out (sgx_quote_3.h; offsets in
 * ../shared/reference/sgx-dcap.md 1.1):
 *
 *   0    header: version 3, att_key_type 2 (ECDSA P-256), att_key_data_0 0,
 *        qe_svn, pce_svn, vendor_id CL_SIM_VENDOR_ID, user_data = QE-ID || "SIM!"
 *   48   the enclave's report body (copied)
 *   432  u32 signature_data_len
 *   436  sig (attestation key over [0,432)) || attest_pub_key || QE report
 *        body (report_data = SHA-256(attest_pub_key || auth data) || 0^32)
 *        || qe_report_sig (PCK key) || u16 32 || auth data || u16 5 || u32 n
 *        || PEM chain PCK leaf || sim intermediate || sim root
 *
 * Why the MAC check first: like EREPORT/EGETKEY on SGX, only a report made
 * on this platform for the QE verifies with the QE's report key, so a report
 * invented by the host (or made on another machine) is refused before
 * anything is signed. The keys that sign live here, on the host: the
 * simulation proves nothing, and every quote says so (vendor id, magic,
 * root CN).
 */
#include <string.h>

#include <openssl/evp.h>

#include "cloister/bytes.h"
#include "cloister/crypto.h"
#include "sim_internal.h"

#define HDR_LEN 48
#define SIGNED_LEN (HDR_LEN + CL_SGX_REPORT_BODY_LEN) /* 432 */
#define SIGDATA_OFF (SIGNED_LEN + 4)                  /* 436 */
#define AUTH_LEN 32
#define CERT_TYPE_PCK_CHAIN 5

cl_status_t cl_sim_qe_quote(cl_sim_platform_t *p, const uint8_t *report, size_t report_len,
                            uint8_t *quote, size_t size, size_t *len)
{
    uint8_t key[CL_SGX_KEY_LEN], mac[16], auth[AUTH_LEN], h[32];
    cl_sim_identity_t qe;
    cl_sgx_report_body_t qe_body;
    size_t sig_len, total;
    uint8_t *s;
    EVP_MD_CTX *md = NULL;
    cl_status_t rc;

    if (len != NULL)
        *len = 0;
    if (p == NULL || report == NULL || quote == NULL || len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (report_len != CL_SGX_REPORT_LEN)
        return CL_FAIL(CL_ERR_BAD_INPUT);

    /* the report must carry the MAC of the QE's report key on this platform */
    cl_sim_qe_identity(&qe);
    rc = sim_report_key(p, qe.mr_enclave, qe.attr_flags, qe.attr_xfrm, 0, 0,
                        report + CL_SGX_REPORT_KEYID, key);
    if (rc == CL_OK)
        rc = sim_cmac(key, report, CL_SGX_REPORT_BODY_LEN, mac);
    cl_wipe(key, sizeof key);
    if (rc != CL_OK)
        return rc;
    if (cl_ct_memcmp(mac, report + CL_SGX_REPORT_MAC, sizeof mac) != 0)
        return CL_FAIL(CL_ERR_AUTH);

    sig_len = 64 + 64 + CL_SGX_REPORT_BODY_LEN + 64 + 2 + AUTH_LEN + 2 + 4 + p->chain_len;
    total = SIGDATA_OFF + sig_len;
    if (size < total)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);

    memset(quote, 0, SIGDATA_OFF);
    /* header */
    cl_put_le16(quote + 0, 3);
    cl_put_le16(quote + 2, 2);
    cl_put_le32(quote + 4, 0);
    cl_put_le16(quote + 8, CL_SIM_QE_SVN);
    cl_put_le16(quote + 10, CL_SIM_PCE_SVN);
    memcpy(quote + 12, CL_SIM_VENDOR_ID, 16);
    memcpy(quote + 28, p->qe_id, 16);
    memcpy(quote + 44, CL_SIM_USER_DATA_MAGIC, 4);
    /* the attested enclave's body, as reported */
    memcpy(quote + HDR_LEN, report, CL_SGX_REPORT_BODY_LEN);
    cl_put_le32(quote + SIGNED_LEN, (uint32_t)sig_len);

    s = quote + SIGDATA_OFF;
    rc = sim_ecdsa_sign(p->ak, quote, SIGNED_LEN, s);
    if (rc != CL_OK)
        goto done;
    memcpy(s + 64, p->ak_pub, 64);
    /* QE report: binds the attestation key (and auth data) to the QE */
    for (size_t i = 0; i < AUTH_LEN; i++)
        auth[i] = (uint8_t)i;
    md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(md, p->ak_pub, 64) != 1 || EVP_DigestUpdate(md, auth, AUTH_LEN) != 1 ||
        EVP_DigestFinal_ex(md, h, NULL) != 1) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    memset(&qe_body, 0, sizeof qe_body);
    memcpy(qe_body.cpu_svn, qe.cpu_svn, 16);
    qe_body.attr_flags = qe.attr_flags;
    qe_body.attr_xfrm = qe.attr_xfrm;
    memcpy(qe_body.mr_enclave, qe.mr_enclave, 32);
    memcpy(qe_body.mr_signer, qe.mr_signer, 32);
    qe_body.isv_prod_id = qe.isv_prod_id;
    qe_body.isv_svn = qe.isv_svn;
    memcpy(qe_body.report_data, h, 32);
    cl_sgx_report_body_encode(&qe_body, s + 128);
    rc = sim_ecdsa_sign(p->pck, s + 128, CL_SGX_REPORT_BODY_LEN, s + 512);
    if (rc != CL_OK)
        goto done;
    cl_put_le16(s + 576, AUTH_LEN);
    memcpy(s + 578, auth, AUTH_LEN);
    cl_put_le16(s + 578 + AUTH_LEN, CERT_TYPE_PCK_CHAIN);
    cl_put_le32(s + 580 + AUTH_LEN, (uint32_t)p->chain_len);
    memcpy(s + 584 + AUTH_LEN, p->chain_pem, p->chain_len);
    *len = total;
done:
    EVP_MD_CTX_free(md);
    if (rc != CL_OK)
        memset(quote, 0, total);
    return rc;
}
