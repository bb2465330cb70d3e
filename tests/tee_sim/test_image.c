/*
 * test_image.c - a tiny stand-in for the trusted core image, loaded by
 * test_sim_loader through the simulated loader. It exports cl_core_entry
 * with a table whose calls all answer CL_ERR_UNSUPPORTED. Built twice with a
 * different CL_TEST_IMAGE_VARIANT so the code (and MRENCLAVE) differs while
 * the signer (MRSIGNER) is the same.
 */
#include "cloister/core.h"

#ifndef CL_TEST_IMAGE_VARIANT
#define CL_TEST_IMAGE_VARIANT 1
#endif

/* Differs between the variants: part of the measured code. */
__attribute__((visibility("default"))) int cl_test_image_variant(void);
int cl_test_image_variant(void)
{
    return CL_TEST_IMAGE_VARIANT * 1000 + 7;
}

static cl_status_t t_open(const cl_tee_platform_t *platform, const cl_host_ops_t *host,
                          const cl_core_config_t *cfg, cl_core_handle_t *out)
{
    (void)platform;
    (void)host;
    (void)cfg;
    (void)out;
    return CL_ERR_UNSUPPORTED;
}

static cl_status_t t_handle(cl_core_handle_t core, const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t out_size, size_t *out_len)
{
    (void)core;
    (void)in;
    (void)in_len;
    (void)out;
    (void)out_size;
    (void)out_len;
    return CL_ERR_UNSUPPORTED;
}

static cl_status_t t_tick(cl_core_handle_t core, int64_t now_ms)
{
    (void)core;
    (void)now_ms;
    return CL_ERR_UNSUPPORTED;
}

static cl_status_t t_attest(cl_core_handle_t core, const uint8_t *nonce, size_t nonce_len,
                            uint8_t *out, size_t out_size, size_t *out_len)
{
    (void)core;
    (void)nonce;
    (void)nonce_len;
    (void)out;
    (void)out_size;
    (void)out_len;
    return CL_ERR_UNSUPPORTED;
}

static void t_close(cl_core_handle_t core)
{
    (void)core;
}

static const cl_core_ecalls_t table = {
    .version = CL_CORE_API_VERSION,
    .open = t_open,
    .handle = t_handle,
    .tick = t_tick,
    .attest = t_attest,
    .close = t_close,
};

const cl_core_ecalls_t *cl_core_entry(void)
{
    return &table;
}
