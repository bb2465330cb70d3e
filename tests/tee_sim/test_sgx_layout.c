/*
 * test_sgx_layout.c - the SGX structure layouts of tee.h / tee_sim.h
 * (tee/common/sgx_layout.c): every size and offset against Intel's headers
 * (sgx_report.h, sgx_key.h, sgx_tseal.h, sgx_quote_3.h as summarized in
 * ../shared/reference/sgx-dcap.md), and encode/decode round trips with
 * hand-checked byte positions.
 */
#include "testutil.h"

#include <string.h>

#include "cloister/tee.h"
#include "cloister/tee_sim.h"

/* Sizes: quote header 48, report body 384, header+body 432, sig data at 436,
 * key request / target info 512, sealed data header 560. */
_Static_assert(48 + CL_SGX_REPORT_BODY_LEN == 432, "quote: header || body is 432 bytes");
_Static_assert(CL_SGX_REPORT_BODY_LEN == 384, "sgx_report_body_t");
_Static_assert(CL_SGX_REPORT_LEN == 432, "sgx_report_t");
_Static_assert(48 + CL_SGX_REPORT_BODY_LEN + 4 == 436, "quote signature data offset");
_Static_assert(CL_SGX_KEY_REQUEST_LEN == 512, "sgx_key_request_t");
_Static_assert(CL_SGX_TARGET_INFO_LEN == 512, "sgx_target_info_t");
_Static_assert(CL_SGX_SEALED_HDR_LEN == 560, "sgx_sealed_data_t header");
_Static_assert(CL_SGX_SEALED_HDR_LEN == CL_SGX_SD_TAG + 16, "tag is the last header field");
/* report body */
_Static_assert(CL_SGX_RB_CPUSVN == 0 && CL_SGX_RB_MISCSELECT == 16, "cpusvn, miscselect");
_Static_assert(CL_SGX_RB_ISVEXTPRODID == 32 && CL_SGX_RB_ATTRIBUTES == 48, "extprodid, attributes");
_Static_assert(CL_SGX_RB_MRENCLAVE == 64 && CL_SGX_RB_MRSIGNER == 128, "mrenclave, mrsigner");
_Static_assert(CL_SGX_RB_CONFIGID == 192 && CL_SGX_RB_ISVPRODID == 256, "configid, prodid");
_Static_assert(CL_SGX_RB_ISVSVN == 258 && CL_SGX_RB_CONFIGSVN == 260, "isvsvn, configsvn");
_Static_assert(CL_SGX_RB_ISVFAMILYID == 304 && CL_SGX_RB_REPORTDATA == 320, "family, reportdata");
_Static_assert(CL_SGX_RB_REPORTDATA + CL_SGX_REPORT_DATA_LEN == CL_SGX_REPORT_BODY_LEN, "end");
_Static_assert(CL_SGX_REPORT_KEYID == 384 && CL_SGX_REPORT_MAC == 416, "report key id, mac");
/* target info */
_Static_assert(CL_SGX_TI_MRENCLAVE == 0 && CL_SGX_TI_ATTRIBUTES == 32, "ti");
_Static_assert(CL_SGX_TI_CONFIGSVN == 48 && CL_SGX_TI_MISCSELECT == 52, "ti");
_Static_assert(CL_SGX_TI_CONFIGID == 64, "ti");
/* key request */
_Static_assert(CL_SGX_KR_KEY_NAME == 0 && CL_SGX_KR_KEY_POLICY == 2 && CL_SGX_KR_ISVSVN == 4,
               "kr");
_Static_assert(CL_SGX_KR_CPUSVN == 8 && CL_SGX_KR_ATTRIBUTE_MASK == 24 && CL_SGX_KR_KEY_ID == 40,
               "kr");
_Static_assert(CL_SGX_KR_MISC_MASK == 72 && CL_SGX_KR_CONFIGSVN == 76, "kr");
_Static_assert(CL_SGX_KR_RESERVED2 + 434 == CL_SGX_KEY_REQUEST_LEN, "434 reserved bytes");
/* sealed data */
_Static_assert(CL_SGX_SD_PLAIN_TEXT_OFFSET == 512 && CL_SGX_SD_RESERVED == 516, "sd");
_Static_assert(CL_SGX_SD_PAYLOAD_SIZE == 528 && CL_SGX_SD_AES_RESERVED == 532, "sd");
_Static_assert(CL_SGX_SD_TAG == 544, "sd");
_Static_assert(CL_SEAL_ENVELOPE_LEN == 30, "magic 8, backend 2, policy 2, purpose 2, epoch 8, ctr 8");
/* simulated SIGSTRUCT */
_Static_assert(CL_SIM_SIG_BODY_LEN + 64 == CL_SIM_SIG_LEN, "sim sig file");
_Static_assert(CL_SGX_KEYSELECT_SEAL == 4 && CL_SGX_KEYSELECT_REPORT == 3, "key names");
_Static_assert(CL_SEAL_MISC_MASK == 0xF0000000u, "TSEAL_DEFAULT_MISCMASK");

static void fill_body(cl_sgx_report_body_t *b)
{
    memset(b, 0, sizeof *b);
    for (int i = 0; i < 16; i++)
        b->cpu_svn[i] = (uint8_t)(0x10 + i);
    b->misc_select = 0x11223344;
    b->attr_flags = 0x0102030405060708ull;
    b->attr_xfrm = 0xa1a2a3a4a5a6a7a8ull;
    for (int i = 0; i < 32; i++) {
        b->mr_enclave[i] = (uint8_t)(0x40 + i);
        b->mr_signer[i] = (uint8_t)(0x80 + i);
    }
    b->isv_prod_id = 0xbeef;
    b->isv_svn = 0x1234;
    b->config_svn = 0x5678;
    for (int i = 0; i < 64; i++)
        b->report_data[i] = (uint8_t)(0xc0 ^ i);
}

static void test_report_body_bytes(void **state)
{
    cl_sgx_report_body_t in, out;
    uint8_t buf[CL_SGX_REPORT_BODY_LEN];
    (void)state;

    fill_body(&in);
    memset(buf, 0xee, sizeof buf);
    cl_sgx_report_body_encode(&in, buf);
    assert_int_equal(buf[0], 0x10);                     /* cpusvn[0] */
    assert_int_equal(buf[16], 0x44);                    /* miscselect, little-endian */
    assert_int_equal(buf[19], 0x11);
    for (int i = 20; i < 48; i++)                        /* reserved1 + ISVEXTPRODID */
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[48], 0x08);                    /* attributes.flags LE */
    assert_int_equal(buf[56], 0xa8);                    /* attributes.xfrm LE */
    assert_int_equal(buf[64], 0x40);                    /* MRENCLAVE */
    assert_int_equal(buf[96], 0);                       /* reserved2 */
    assert_int_equal(buf[128], 0x80);                   /* MRSIGNER */
    assert_int_equal(buf[192], 0);                      /* CONFIGID */
    assert_int_equal(buf[256], 0xef);                   /* ISVPRODID LE */
    assert_int_equal(buf[257], 0xbe);
    assert_int_equal(buf[258], 0x34);                   /* ISVSVN */
    assert_int_equal(buf[260], 0x78);                   /* CONFIGSVN */
    for (int i = 262; i < 320; i++)                      /* reserved4 + ISVFAMILYID */
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[320], 0xc0);                   /* REPORTDATA */
    assert_int_equal(buf[383], 0xc0 ^ 63);
    memset(&out, 0, sizeof out); /* padding compares equal */
    cl_sgx_report_body_decode(buf, &out);
    assert_memory_equal(&in, &out, sizeof in);
}

static void test_key_request(void **state)
{
    cl_sgx_key_request_t in, out;
    uint8_t buf[CL_SGX_KEY_REQUEST_LEN];
    (void)state;

    memset(&in, 0, sizeof in);
    in.key_name = CL_SGX_KEYSELECT_SEAL;
    in.key_policy = CL_SGX_KEYPOLICY_MRSIGNER;
    in.isv_svn = 0x0102;
    for (int i = 0; i < 16; i++)
        in.cpu_svn[i] = (uint8_t)i;
    in.attr_mask_flags = CL_SEAL_ATTR_MASK_FLAGS;
    in.attr_mask_xfrm = 0x77;
    for (int i = 0; i < 32; i++)
        in.key_id[i] = (uint8_t)(0xa0 + i);
    in.misc_mask = CL_SEAL_MISC_MASK;
    in.config_svn = 0x0304;
    cl_sgx_key_request_encode(&in, buf);
    assert_int_equal(buf[0], 4);
    assert_int_equal(buf[2], 2);
    assert_int_equal(buf[4], 0x02);
    assert_int_equal(buf[5], 0x01);
    assert_int_equal(buf[8 + 15], 15);
    assert_int_equal(buf[24], CL_SEAL_ATTR_MASK_FLAGS & 0xff);
    assert_int_equal(buf[32], 0x77);
    assert_int_equal(buf[40], 0xa0);
    assert_int_equal(buf[75], 0xf0);
    assert_int_equal(buf[76], 0x04);
    for (int i = CL_SGX_KR_RESERVED2; i < CL_SGX_KEY_REQUEST_LEN; i++)
        assert_int_equal(buf[i], 0);
    memset(&out, 0, sizeof out);
    assert_int_equal(cl_sgx_key_request_decode(buf, &out), CL_OK);
    assert_memory_equal(&in, &out, sizeof in);
    /* a reserved byte set is refused */
    buf[6] = 1;
    assert_int_equal(cl_sgx_key_request_decode(buf, &out), CL_ERR_BAD_INPUT);
    buf[6] = 0;
    buf[511] = 0x80;
    assert_int_equal(cl_sgx_key_request_decode(buf, &out), CL_ERR_BAD_INPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_body_bytes),
        cmocka_unit_test(test_key_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
