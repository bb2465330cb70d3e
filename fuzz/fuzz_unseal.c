/*
 * fuzz_unseal.c - libFuzzer harness for cl_unseal (tee/common/seal.c): the
 * sealed blobs (sgx_sealed_data_t + the project envelope) that come back
 * from the untrusted host, unsealed with a real simulated platform
 * (sim_fuzz_common.h: one platform directory per process, fixed identity).
 *
 * Input: byte 0 = flags (bit 0: seal policy MRSIGNER instead of MRENCLAVE,
 * bits 1-2: output buffer 0 = exact, 1 = one byte short, 2 = empty,
 * 3 = large), bytes 1-2 = the bit to flip (big-endian, modulo the blob's
 * bits), byte 3 = extra AAD length (modulo CL_SEAL_MAX_EXTRA_AAD + 1),
 * bytes 4-21 = purpose (2), epoch (8), counter (8); the rest is both the
 * raw blob and the plaintext/extra AAD of the round trip.
 *
 * Invariants checked with abort():
 * - raw blob: cl_unseal never succeeds on a blob cl_unsealed_size() calls
 *   malformed (unless it is a well-formed empty payload), succeeds only with
 *   pt_len == cl_unsealed_size() <= pt_size and a sane envelope, and on
 *   failure sets *pt_len = 0 and leaves no plaintext in pt (untouched or
 *   wiped); the status is one of the documented ones;
 * - round trip: cl_seal of the input's bytes has the size cl_seal_size says,
 *   unseals to the same plaintext and envelope, and a blob with any one bit
 *   flipped never unseals (CL_ERR_BAD_INPUT or CL_ERR_AUTH), nor does a blob
 *   truncated or extended by one byte.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/tee.h"
#include "sim_fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define FILL 0xa5

static bool env_eq(const cl_seal_envelope_t *a, const cl_seal_envelope_t *b)
{
    return a->purpose == b->purpose && a->epoch == b->epoch && a->counter == b->counter &&
           a->extra_len == b->extra_len && memcmp(a->extra, b->extra, a->extra_len) == 0;
}

/* Unseals blob into a pt buffer of pt_size (+1 guard byte); checks the failure contract. */
static cl_status_t unseal_checked(const cl_tee_platform_t *p, const uint8_t *blob, size_t len,
                                  size_t pt_size, uint8_t **pt_out, size_t *pt_len,
                                  cl_seal_envelope_t *env)
{
    uint8_t *pt = malloc(pt_size + 1);
    CHECK(pt != NULL);
    memset(pt, FILL, pt_size + 1);
    *pt_len = 12345;
    cl_status_t st = cl_unseal(p, blob, len, pt_size ? pt : NULL, pt_size, pt_len, env);
    CHECK(pt[pt_size] == FILL); /* nothing past pt_size */
    size_t expect = cl_unsealed_size(blob, len);
    if (st == CL_OK) {
        CHECK(*pt_len == expect && *pt_len <= pt_size);
        CHECK(env->extra_len <= CL_SEAL_MAX_EXTRA_AAD);
        CHECK(len == CL_SGX_SEALED_HDR_LEN + *pt_len + CL_SEAL_ENVELOPE_LEN + env->extra_len);
    } else {
        CHECK(st == CL_ERR_BAD_INPUT || st == CL_ERR_AUTH || st == CL_ERR_BUFFER_TOO_SMALL);
        CHECK(*pt_len == 0);
        if (expect == 0 && st != CL_ERR_BAD_INPUT) /* a failed layout is BAD_INPUT... */
            CHECK(len >= CL_SGX_SEALED_HDR_LEN); /* ...unless the layout was fine (empty pt) */
        /* no plaintext left behind: pt is untouched or wiped */
        bool untouched = true, wiped = true;
        for (size_t i = 0; i < pt_size; i++) {
            untouched = untouched && pt[i] == FILL;
            wiped = wiped && (pt[i] == 0 || i >= expect);
        }
        CHECK(untouched || wiped);
    }
    if (pt_out != NULL && st == CL_OK)
        *pt_out = pt;
    else
        free(pt);
    return st;
}

static void check_raw(const cl_tee_platform_t *p, const uint8_t *blob, size_t len, unsigned mode)
{
    size_t n = cl_unsealed_size(blob, len), pt_size, pt_len;
    cl_seal_envelope_t env;
    switch (mode) {
    case 0: pt_size = n; break;
    case 1: pt_size = n ? n - 1 : 0; break;
    case 2: pt_size = 0; break;
    default: pt_size = len + 64; break;
    }
    cl_status_t st = unseal_checked(p, blob, len, pt_size, NULL, &pt_len, &env);
    if (pt_size < n)
        CHECK(st != CL_OK);
}

static void check_round_trip(const cl_tee_platform_t *p, const uint8_t *data, size_t size)
{
    cl_seal_envelope_t env, got;
    uint16_t policy = (data[0] & 1) ? CL_SGX_KEYPOLICY_MRSIGNER : CL_SGX_KEYPOLICY_MRENCLAVE;
    size_t flip = (size_t)data[1] << 8 | data[2];
    memset(&env, 0, sizeof env);
    env.extra_len = data[3] % (CL_SEAL_MAX_EXTRA_AAD + 1);
    env.purpose = (uint16_t)(data[4] | data[5] << 8);
    for (int k = 0; k < 8; k++) {
        env.epoch = env.epoch << 8 | data[6 + k];
        env.counter = env.counter << 8 | data[14 + k];
    }
    const uint8_t *pt = data + 22;
    size_t pt_len = size - 22;
    if (env.extra_len > pt_len)
        env.extra_len = pt_len;
    memcpy(env.extra, pt, env.extra_len);

    size_t total = cl_seal_size(&env, pt_len), out_len = 0, got_len = 0;
    CHECK(total == CL_SGX_SEALED_HDR_LEN + pt_len + CL_SEAL_ENVELOPE_LEN + env.extra_len);
    uint8_t *blob = malloc(total + 1);
    CHECK(blob != NULL);
    /* one byte short: refused */
    CHECK(cl_seal(p, policy, &env, pt, pt_len, blob, total - 1, &out_len) ==
              CL_ERR_BUFFER_TOO_SMALL &&
          out_len == 0);
    CHECK(cl_seal(p, policy, &env, pt, pt_len, blob, total, &out_len) == CL_OK);
    CHECK(out_len == total && cl_unsealed_size(blob, total) == pt_len);

    uint8_t *back = NULL;
    memset(&got, 0, sizeof got);
    CHECK(unseal_checked(p, blob, total, pt_len, &back, &got_len, &got) == CL_OK);
    CHECK(got_len == pt_len && (pt_len == 0 || memcmp(back, pt, pt_len) == 0));
    CHECK(env_eq(&env, &got));
    free(back);

    /* any one flipped bit: refused */
    size_t bit = flip % (total * 8);
    blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    CHECK(unseal_checked(p, blob, total, total, NULL, &got_len, &got) != CL_OK);
    blob[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    /* truncated and extended: refused */
    CHECK(unseal_checked(p, blob, total - 1, total, NULL, &got_len, &got) != CL_OK);
    blob[total] = data[0];
    CHECK(unseal_checked(p, blob, total + 1, total + 1, NULL, &got_len, &got) != CL_OK);
    /* and untouched it still unseals */
    CHECK(unseal_checked(p, blob, total, pt_len, NULL, &got_len, &got) == CL_OK);
    free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const cl_tee_platform_t *p = sf_platform();
    if (size < 22)
        return 0;
    /* the whole input as a blob, and the input after the header as a blob */
    check_raw(p, data, size, (data[0] >> 1) & 3);
    check_raw(p, data + 22, size - 22, (data[0] >> 1) & 3);
    check_round_trip(p, data, size);
    return 0;
}
