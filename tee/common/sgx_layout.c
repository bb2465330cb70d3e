/*
 * sgx_layout.c - encoders and decoders of the SGX structures the core and
 * the simulated platform exchange: the 384-byte report body and the
 * 512-byte key request.
 *
 * Why by hand and not by casting a packed struct: the bytes come from (or go
 * to) the untrusted host and other machines, so they are read and written
 * field by field in little-endian at the offsets of Intel's sgx_report.h /
 * sgx_key.h (CL_SGX_* in tee.h, asserted by tests/tee_sim/test_sgx_layout),
 * independent of the compiler's layout and the host's byte order.
 * Linked into the trusted core: no I/O, no allocation, no state.
 */
#include <string.h>

#include "cloister/bytes.h"
#include "cloister/tee.h"

void cl_sgx_report_body_decode(const uint8_t in[CL_SGX_REPORT_BODY_LEN], cl_sgx_report_body_t *out)
{
    memcpy(out->cpu_svn, in + CL_SGX_RB_CPUSVN, CL_SGX_CPUSVN_LEN);
    out->misc_select = cl_get_le32(in + CL_SGX_RB_MISCSELECT);
    out->attr_flags = cl_get_le64(in + CL_SGX_RB_ATTRIBUTES);
    out->attr_xfrm = cl_get_le64(in + CL_SGX_RB_ATTRIBUTES + 8);
    memcpy(out->mr_enclave, in + CL_SGX_RB_MRENCLAVE, CL_SGX_HASH_LEN);
    memcpy(out->mr_signer, in + CL_SGX_RB_MRSIGNER, CL_SGX_HASH_LEN);
    out->isv_prod_id = cl_get_le16(in + CL_SGX_RB_ISVPRODID);
    out->isv_svn = cl_get_le16(in + CL_SGX_RB_ISVSVN);
    out->config_svn = cl_get_le16(in + CL_SGX_RB_CONFIGSVN);
    memcpy(out->report_data, in + CL_SGX_RB_REPORTDATA, CL_SGX_REPORT_DATA_LEN);
}

void cl_sgx_report_body_encode(const cl_sgx_report_body_t *in, uint8_t out[CL_SGX_REPORT_BODY_LEN])
{
    memset(out, 0, CL_SGX_REPORT_BODY_LEN);
    memcpy(out + CL_SGX_RB_CPUSVN, in->cpu_svn, CL_SGX_CPUSVN_LEN);
    cl_put_le32(out + CL_SGX_RB_MISCSELECT, in->misc_select);
    cl_put_le64(out + CL_SGX_RB_ATTRIBUTES, in->attr_flags);
    cl_put_le64(out + CL_SGX_RB_ATTRIBUTES + 8, in->attr_xfrm);
    memcpy(out + CL_SGX_RB_MRENCLAVE, in->mr_enclave, CL_SGX_HASH_LEN);
    memcpy(out + CL_SGX_RB_MRSIGNER, in->mr_signer, CL_SGX_HASH_LEN);
    cl_put_le16(out + CL_SGX_RB_ISVPRODID, in->isv_prod_id);
    cl_put_le16(out + CL_SGX_RB_ISVSVN, in->isv_svn);
    cl_put_le16(out + CL_SGX_RB_CONFIGSVN, in->config_svn);
    memcpy(out + CL_SGX_RB_REPORTDATA, in->report_data, CL_SGX_REPORT_DATA_LEN);
}

void cl_sgx_key_request_encode(const cl_sgx_key_request_t *in, uint8_t out[CL_SGX_KEY_REQUEST_LEN])
{
    memset(out, 0, CL_SGX_KEY_REQUEST_LEN);
    cl_put_le16(out + CL_SGX_KR_KEY_NAME, in->key_name);
    cl_put_le16(out + CL_SGX_KR_KEY_POLICY, in->key_policy);
    cl_put_le16(out + CL_SGX_KR_ISVSVN, in->isv_svn);
    memcpy(out + CL_SGX_KR_CPUSVN, in->cpu_svn, CL_SGX_CPUSVN_LEN);
    cl_put_le64(out + CL_SGX_KR_ATTRIBUTE_MASK, in->attr_mask_flags);
    cl_put_le64(out + CL_SGX_KR_ATTRIBUTE_MASK + 8, in->attr_mask_xfrm);
    memcpy(out + CL_SGX_KR_KEY_ID, in->key_id, sizeof in->key_id);
    cl_put_le32(out + CL_SGX_KR_MISC_MASK, in->misc_mask);
    cl_put_le16(out + CL_SGX_KR_CONFIGSVN, in->config_svn);
}

cl_status_t cl_sgx_key_request_decode(const uint8_t in[CL_SGX_KEY_REQUEST_LEN],
                                      cl_sgx_key_request_t *out)
{
    uint8_t acc = 0;

    /* reserved1 (u16 at 6) and reserved2 (434 bytes from 78) must be zero */
    acc |= in[6] | in[7];
    for (size_t i = CL_SGX_KR_RESERVED2; i < CL_SGX_KEY_REQUEST_LEN; i++)
        acc |= in[i];
    if (acc != 0)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    out->key_name = cl_get_le16(in + CL_SGX_KR_KEY_NAME);
    out->key_policy = cl_get_le16(in + CL_SGX_KR_KEY_POLICY);
    out->isv_svn = cl_get_le16(in + CL_SGX_KR_ISVSVN);
    memcpy(out->cpu_svn, in + CL_SGX_KR_CPUSVN, CL_SGX_CPUSVN_LEN);
    out->attr_mask_flags = cl_get_le64(in + CL_SGX_KR_ATTRIBUTE_MASK);
    out->attr_mask_xfrm = cl_get_le64(in + CL_SGX_KR_ATTRIBUTE_MASK + 8);
    memcpy(out->key_id, in + CL_SGX_KR_KEY_ID, sizeof out->key_id);
    out->misc_mask = cl_get_le32(in + CL_SGX_KR_MISC_MASK);
    out->config_svn = cl_get_le16(in + CL_SGX_KR_CONFIGSVN);
    return CL_OK;
}
