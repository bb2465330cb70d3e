/*
 * test_seal.c - sealing (tee/common/seal.c) on the simulated platform
 * (tee/sim/platform.c EGETKEY): round trips, a bit flip in every byte of a
 * blob, truncated / oversized / lying lengths, the key policies across
 * "upgrades" (other MRENCLAVE same signer, other signer), ISVSVN rollback,
 * other platform secret, other backend, DEBUG binding, and EGETKEY's own
 * refusals. Every case uses its own temporary platform directory.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloister/tee.h"
#include "cloister/tee_sim.h"

typedef struct fx {
    char dir[64];
    char dir2[64];
    cl_sim_platform_t *plat;
    cl_sim_platform_t *plat2;
} fx_t;

static void rm_dir(const char *dir)
{
    static const char *const names[] = {"platform.secret", "attestation.key", "pck.key", "pck.pem"};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/plat/%s", dir, names[i]);
        (void)unlink(p);
    }
    snprintf(p, sizeof p, "%s/plat", dir);
    (void)rmdir(p);
    (void)rmdir(dir);
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    char p[128];
    assert_non_null(f);
    strcpy(f->dir, "/tmp/cl-seal-XXXXXX");
    strcpy(f->dir2, "/tmp/cl-seal-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_non_null(mkdtemp(f->dir2));
    snprintf(p, sizeof p, "%s/plat", f->dir);
    assert_int_equal(cl_sim_platform_open(p, &f->plat), CL_OK);
    snprintf(p, sizeof p, "%s/plat", f->dir2);
    assert_int_equal(cl_sim_platform_open(p, &f->plat2), CL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    cl_sim_platform_close(f->plat);
    cl_sim_platform_close(f->plat2);
    rm_dir(f->dir);
    rm_dir(f->dir2);
    free(f);
    return 0;
}

/* An enclave identity: MRENCLAVE from `code`, MRSIGNER from `signer`. */
static cl_sim_identity_t ident(uint8_t code, uint8_t signer, uint16_t svn)
{
    cl_sim_identity_t id;
    memset(&id, 0, sizeof id);
    memset(id.mr_enclave, code, sizeof id.mr_enclave);
    memset(id.mr_signer, signer, sizeof id.mr_signer);
    id.isv_prod_id = 1;
    id.isv_svn = svn;
    id.attr_flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT;
    id.attr_xfrm = 3;
    memcpy(id.cpu_svn, CL_SIM_CPU_SVN, 16);
    return id;
}

static const cl_tee_platform_t *bind(cl_sim_platform_t *p, cl_sim_identity_t id)
{
    const cl_tee_platform_t *t = NULL;
    assert_int_equal(cl_sim_platform_bind(p, &id, &t), CL_OK);
    assert_non_null(t);
    assert_int_equal(t->backend, CL_TEE_BACKEND_SIM);
    assert_string_equal(t->name, "sim");
    return t;
}

static const uint8_t msg[] = "the model: clients, event types, rules";

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

static cl_seal_envelope_t envelope(void)
{
    cl_seal_envelope_t e;
    memset(&e, 0, sizeof e);
    e.purpose = CL_SEAL_PURPOSE_TEST;
    e.epoch = 0x0102030405060708ull;
    e.counter = 42;
    memcpy(e.extra, "chainhash", 9);
    e.extra_len = 9;
    return e;
}

static size_t seal(const cl_tee_platform_t *t, uint16_t policy, uint8_t *out, size_t size)
{
    cl_seal_envelope_t e = envelope();
    size_t len = 0;
    assert_int_equal(cl_seal(t, policy, &e, msg, sizeof msg, out, size, &len), CL_OK);
    assert_int_equal(len, cl_seal_size(&e, sizeof msg));
    return len;
}

static cl_status_t unseal(const cl_tee_platform_t *t, const uint8_t *blob, size_t len)
{
    uint8_t pt[256];
    size_t pt_len = 99;
    cl_seal_envelope_t e;
    cl_status_t rc;

    memset(pt, 0xaa, sizeof pt);
    rc = cl_unseal(t, blob, len, pt, sizeof pt, &pt_len, &e);
    if (rc == CL_OK) {
        assert_int_equal(pt_len, sizeof msg);
        assert_memory_equal(pt, msg, sizeof msg);
    } else {
        assert_int_equal(pt_len, 0);
        /* no plaintext left behind on failure */
        for (size_t i = 0; i + 8 <= sizeof pt; i++)
            assert_true(memcmp(pt + i, "the mode", 8) != 0);
    }
    return rc;
}

static void test_round_trip(void **state)
{
    fx_t *f = *state;
    const cl_tee_platform_t *t = bind(f->plat, ident(0xa1, 0x51, 2));
    uint8_t blob[1024], pt[256];
    cl_seal_envelope_t e0 = envelope(), e;
    size_t len, pt_len;

    for (int pol = 1; pol <= 2; pol++) {
        len = seal(t, (uint16_t)pol, blob, sizeof blob);
        assert_int_equal(len, CL_SGX_SEALED_HDR_LEN + sizeof msg + CL_SEAL_ENVELOPE_LEN + 9);
        /* layout: SEAL key request with the policy, sizes, envelope in clear */
        assert_int_equal(blob[0], CL_SGX_KEYSELECT_SEAL);
        assert_int_equal(blob[2], pol);
        assert_int_equal(blob[4], 2); /* isv_svn of the enclave */
        assert_memory_equal(blob + 8, CL_SIM_CPU_SVN, 16);
        assert_int_equal(blob[24], CL_SEAL_ATTR_MASK_FLAGS);
        assert_int_equal(blob[75], 0xf0);
        assert_int_equal(blob[512], sizeof msg);
        assert_int_equal(blob[528], sizeof msg + CL_SEAL_ENVELOPE_LEN + 9);
        assert_memory_equal(blob + 560 + sizeof msg, CL_SEAL_MAGIC, 8);
        assert_int_equal(blob[560 + sizeof msg + 8], CL_TEE_BACKEND_SIM);
        assert_int_equal(blob[560 + sizeof msg + 10], pol);
        assert_int_equal(blob[560 + sizeof msg + 12], CL_SEAL_PURPOSE_TEST);
        assert_false(contains(blob, len, msg, sizeof msg - 1)); /* encrypted */
        assert_int_equal(cl_unsealed_size(blob, len), sizeof msg);
        assert_int_equal(cl_unseal(t, blob, len, pt, sizeof pt, &pt_len, &e), CL_OK);
        assert_int_equal(pt_len, sizeof msg);
        assert_memory_equal(pt, msg, sizeof msg);
        assert_int_equal(e.purpose, e0.purpose);
        assert_true(e.epoch == e0.epoch && e.counter == e0.counter);
        assert_int_equal(e.extra_len, 9);
        assert_memory_equal(e.extra, "chainhash", 9);
        /* short output buffer */
        assert_int_equal(cl_unseal(t, blob, len, pt, sizeof msg - 1, &pt_len, &e),
                         CL_ERR_BUFFER_TOO_SMALL);
    }
    /* two seals of the same data differ (fresh key_id) */
    {
        uint8_t b2[1024];
        size_t l2 = seal(t, CL_SGX_KEYPOLICY_MRENCLAVE, b2, sizeof b2);
        len = seal(t, CL_SGX_KEYPOLICY_MRENCLAVE, blob, sizeof blob);
        assert_int_equal(l2, len);
        assert_memory_not_equal(blob + CL_SGX_KR_KEY_ID, b2 + CL_SGX_KR_KEY_ID, 32);
        assert_memory_not_equal(blob + 560, b2 + 560, sizeof msg);
    }
    /* empty plaintext, no extra */
    memset(&e0, 0, sizeof e0);
    e0.purpose = CL_SEAL_PURPOSE_LOG;
    assert_int_equal(cl_seal(t, CL_SGX_KEYPOLICY_MRSIGNER, &e0, NULL, 0, blob, sizeof blob, &len),
                     CL_OK);
    assert_int_equal(len, 560 + CL_SEAL_ENVELOPE_LEN);
    assert_int_equal(cl_unseal(t, blob, len, NULL, 0, &pt_len, &e), CL_OK);
    assert_int_equal(pt_len, 0);
    assert_int_equal(e.purpose, CL_SEAL_PURPOSE_LOG);
    assert_int_equal(e.extra_len, 0);
}

static void test_seal_args(void **state)
{
    fx_t *f = *state;
    const cl_tee_platform_t *t = bind(f->plat, ident(0xa1, 0x51, 2));
    cl_seal_envelope_t e = envelope();
    uint8_t blob[1024];
    size_t len = 7, need = cl_seal_size(&e, sizeof msg);

    assert_int_equal(cl_seal(t, CL_SGX_KEYPOLICY_MRENCLAVE, &e, msg, sizeof msg, blob, need - 1,
                             &len),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 0);
    assert_int_equal(cl_seal(t, 0, &e, msg, sizeof msg, blob, sizeof blob, &len),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_seal(t, 3, &e, msg, sizeof msg, blob, sizeof blob, &len),
                     CL_ERR_INVALID_ARG);
    e.extra_len = CL_SEAL_MAX_EXTRA_AAD + 1;
    assert_int_equal(cl_seal_size(&e, 1), 0);
    assert_int_equal(cl_seal(t, CL_SGX_KEYPOLICY_MRENCLAVE, &e, msg, sizeof msg, blob,
                             sizeof blob, &len),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_seal_size(NULL, 1), 0);
    e.extra_len = CL_SEAL_MAX_EXTRA_AAD; /* the maximum is fine */
    assert_int_equal(cl_seal(t, CL_SGX_KEYPOLICY_MRENCLAVE, &e, msg, sizeof msg, blob,
                             sizeof blob, &len),
                     CL_OK);
    assert_int_equal(unseal(t, blob, len), CL_OK);
}

/* A flipped bit anywhere (each byte, a different bit each time) is refused. */
static void test_tamper_every_byte(void **state)
{
    fx_t *f = *state;
    const cl_tee_platform_t *t = bind(f->plat, ident(0xa1, 0x51, 2));
    uint8_t blob[1024];
    size_t len = seal(t, CL_SGX_KEYPOLICY_MRSIGNER, blob, sizeof blob);

    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += (i < 560 ? 3 : 7)) {
            cl_status_t rc;
            blob[i] ^= (uint8_t)(1u << bit);
            rc = unseal(t, blob, len);
            if (rc != CL_ERR_AUTH && rc != CL_ERR_BAD_INPUT)
                fail_msg("byte %zu bit %d: %s", i, bit, cl_status_str(rc));
            blob[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(unseal(t, blob, len), CL_OK);
}

static void put32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void test_lengths(void **state)
{
    fx_t *f = *state;
    const cl_tee_platform_t *t = bind(f->plat, ident(0xa1, 0x51, 2));
    uint8_t blob[1024], bad[1024];
    size_t len = seal(t, CL_SGX_KEYPOLICY_MRENCLAVE, blob, sizeof blob - 8);
    const size_t aad = CL_SEAL_ENVELOPE_LEN + 9;

    /* every truncation */
    for (size_t n = 0; n < len; n++) {
        assert_int_equal(unseal(t, blob, n), CL_ERR_BAD_INPUT);
        assert_int_equal(cl_unsealed_size(blob, n), 0);
    }
    /* oversized: trailing bytes */
    memset(blob + len, 0, 8);
    assert_int_equal(unseal(t, blob, len + 1), CL_ERR_BAD_INPUT);
    assert_int_equal(unseal(t, blob, len + 8), CL_ERR_BAD_INPUT);
    /* lying payload_size: larger than the blob, huge, smaller */
    static const uint32_t payloads[] = {0xffffffffu, 0x80000000u, 0, 1, CL_SEAL_ENVELOPE_LEN};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        memcpy(bad, blob, len);
        put32le(bad + CL_SGX_SD_PAYLOAD_SIZE, payloads[i]);
        assert_int_equal(unseal(t, bad, len), CL_ERR_BAD_INPUT);
        assert_int_equal(cl_unsealed_size(bad, len), 0);
    }
    /* lying plain_text_offset: beyond the payload, leaving too little or too much AAD */
    static const uint32_t offs[] = {0xffffffffu, (uint32_t)(sizeof msg + aad + 1),
                                    (uint32_t)(sizeof msg + aad),
                                    (uint32_t)(sizeof msg + aad - CL_SEAL_ENVELOPE_LEN + 1), 0};
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        cl_status_t rc;
        memcpy(bad, blob, len);
        put32le(bad + CL_SGX_SD_PLAIN_TEXT_OFFSET, offs[i]);
        rc = unseal(t, bad, len);
        assert_true(rc == CL_ERR_BAD_INPUT || rc == CL_ERR_AUTH);
    }
    /* consistent but lying: claims a bigger payload and is that big (garbage appended) */
    memcpy(bad, blob, len);
    memset(bad + len, 0, 4);
    put32le(bad + CL_SGX_SD_PAYLOAD_SIZE, (uint32_t)(sizeof msg + aad + 4));
    assert_int_equal(unseal(t, bad, len + 4), CL_ERR_AUTH); /* AAD changed */
    /* AAD longer than the envelope allows */
    {
        size_t big = len + CL_SEAL_MAX_EXTRA_AAD;
        memcpy(bad, blob, len);
        memset(bad + len, 0, CL_SEAL_MAX_EXTRA_AAD);
        put32le(bad + CL_SGX_SD_PAYLOAD_SIZE, (uint32_t)(big - 560));
        assert_int_equal(unseal(t, bad, big), CL_ERR_BAD_INPUT);
        assert_int_equal(cl_unsealed_size(bad, big), 0);
    }
    /* NULL arguments */
    {
        uint8_t pt[8];
        size_t pl;
        cl_seal_envelope_t e;
        assert_int_equal(cl_unseal(NULL, blob, len, pt, sizeof pt, &pl, &e), CL_ERR_INVALID_ARG);
        assert_int_equal(cl_unseal(t, NULL, len, pt, sizeof pt, &pl, &e), CL_ERR_INVALID_ARG);
        assert_int_equal(cl_unsealed_size(NULL, 0), 0);
    }
}

/* Policies across enclave versions and signers. */
static void test_policies(void **state)
{
    fx_t *f = *state;
    const cl_tee_platform_t *a = bind(f->plat, ident(0xa1, 0x51, 2));
    const cl_tee_platform_t *b = bind(f->plat, ident(0xb2, 0x51, 2)); /* new build, same signer */
    const cl_tee_platform_t *c = bind(f->plat, ident(0xc3, 0x52, 2)); /* other signer */
    uint8_t enc[1024], sig[1024];
    size_t le = seal(a, CL_SGX_KEYPOLICY_MRENCLAVE, enc, sizeof enc);
    size_t ls = seal(a, CL_SGX_KEYPOLICY_MRSIGNER, sig, sizeof sig);

    assert_int_equal(unseal(a, enc, le), CL_OK);
    assert_int_equal(unseal(a, sig, ls), CL_OK);
    assert_int_equal(unseal(b, enc, le), CL_ERR_AUTH);
    assert_int_equal(unseal(b, sig, ls), CL_OK);
    assert_int_equal(unseal(c, enc, le), CL_ERR_AUTH);
    assert_int_equal(unseal(c, sig, ls), CL_ERR_AUTH);
    /* another ISVPRODID of the same signer does not get MRSIGNER data either */
    {
        cl_sim_identity_t id = ident(0xa1, 0x51, 2);
        id.isv_prod_id = 2;
        assert_int_equal(unseal(bind(f->plat, id), sig, ls), CL_ERR_AUTH);
    }
    /* a DEBUG enclave with the same measurement cannot read production data */
    {
        cl_sim_identity_t id = ident(0xa1, 0x51, 2);
        id.attr_flags |= CL_SGX_FLAGS_DEBUG;
        assert_int_equal(unseal(bind(f->plat, id), enc, le), CL_ERR_AUTH);
        assert_int_equal(unseal(bind(f->plat, id), sig, ls), CL_ERR_AUTH);
    }
}

static void test_svn(void **state)
{
    fx_t *f = *state;
    const cl_tee_platform_t *v2 = bind(f->plat, ident(0xa1, 0x51, 2));
    const cl_tee_platform_t *v3 = bind(f->plat, ident(0xa3, 0x51, 3));
    uint8_t old_blob[1024], new_blob[1024];
    size_t lo = seal(v2, CL_SGX_KEYPOLICY_MRSIGNER, old_blob, sizeof old_blob);
    size_t ln = seal(v3, CL_SGX_KEYPOLICY_MRSIGNER, new_blob, sizeof new_blob);

    assert_int_equal(new_blob[CL_SGX_KR_ISVSVN], 3);
    assert_int_equal(unseal(v3, old_blob, lo), CL_OK);       /* upgrade reads old data */
    assert_int_equal(unseal(v2, new_blob, ln), CL_ERR_AUTH); /* rollback cannot read new */
    /* an older CPUSVN platform state cannot read data of the current one */
    {
        cl_sim_identity_t id = ident(0xa1, 0x51, 2);
        id.cpu_svn[0]--;
        assert_int_equal(unseal(bind(f->plat, id), old_blob, lo), CL_ERR_AUTH);
    }
}

static void test_other_platform_and_backend(void **state)
{
    fx_t *f = *state;
    const cl_tee_platform_t *a = bind(f->plat, ident(0xa1, 0x51, 2));
    const cl_tee_platform_t *a2 = bind(f->plat2, ident(0xa1, 0x51, 2));
    cl_tee_platform_t sgx;
    uint8_t blob[1024];
    size_t len = seal(a, CL_SGX_KEYPOLICY_MRSIGNER, blob, sizeof blob);

    assert_int_equal(unseal(a2, blob, len), CL_ERR_AUTH); /* other platform secret */
    /* the same keys but a table claiming another backend: refused after authentication */
    sgx = *a;
    sgx.backend = CL_TEE_BACKEND_SGX;
    assert_int_equal(unseal(&sgx, blob, len), CL_ERR_AUTH);
}

static void test_egetkey(void **state)
{
    fx_t *f = *state;
    const cl_tee_platform_t *t = bind(f->plat, ident(0xa1, 0x51, 2));
    cl_sgx_key_request_t kr;
    uint8_t req[CL_SGX_KEY_REQUEST_LEN], k1[16], k2[16];

    memset(&kr, 0, sizeof kr);
    kr.key_name = CL_SGX_KEYSELECT_SEAL;
    kr.key_policy = CL_SGX_KEYPOLICY_MRENCLAVE;
    kr.isv_svn = 2;
    memcpy(kr.cpu_svn, CL_SIM_CPU_SVN, 16);
    kr.attr_mask_flags = CL_SEAL_ATTR_MASK_FLAGS;
    kr.misc_mask = CL_SEAL_MISC_MASK;
    cl_sgx_key_request_encode(&kr, req);
    assert_int_equal(t->get_key(t->self, req, k1), CL_OK);
    assert_int_equal(t->get_key(t->self, req, k2), CL_OK);
    assert_memory_equal(k1, k2, 16); /* deterministic */
    req[CL_SGX_KR_KEY_ID] ^= 1;
    assert_int_equal(t->get_key(t->self, req, k2), CL_OK);
    assert_memory_not_equal(k1, k2, 16);
    req[CL_SGX_KR_KEY_ID] ^= 1;
    req[100] = 1; /* reserved */
    assert_int_equal(t->get_key(t->self, req, k2), CL_ERR_BAD_INPUT);
    req[100] = 0;
    kr.key_policy = 0x8; /* KSS CONFIGID: not supported here */
    cl_sgx_key_request_encode(&kr, req);
    assert_int_equal(t->get_key(t->self, req, k2), CL_ERR_BAD_INPUT);
    kr.key_policy = CL_SGX_KEYPOLICY_MRENCLAVE;
    kr.key_name = 1; /* PROVISION */
    cl_sgx_key_request_encode(&kr, req);
    assert_int_equal(t->get_key(t->self, req, k2), CL_ERR_BAD_INPUT);
    kr.key_name = CL_SGX_KEYSELECT_SEAL;
    kr.isv_svn = 3;
    cl_sgx_key_request_encode(&kr, req);
    assert_int_equal(t->get_key(t->self, req, k2), CL_ERR_AUTH);
    kr.isv_svn = 1; /* older: allowed, another key */
    cl_sgx_key_request_encode(&kr, req);
    assert_int_equal(t->get_key(t->self, req, k2), CL_OK);
    assert_memory_not_equal(k1, k2, 16);
    kr.cpu_svn[15] = 0xff;
    cl_sgx_key_request_encode(&kr, req);
    assert_int_equal(t->get_key(t->self, req, k2), CL_ERR_AUTH);
    memcpy(kr.cpu_svn, CL_SIM_CPU_SVN, 16);
    kr.config_svn = 1;
    cl_sgx_key_request_encode(&kr, req);
    assert_int_equal(t->get_key(t->self, req, k2), CL_ERR_AUTH);
    /* randomness */
    assert_int_equal(t->read_rand(t->self, k1, sizeof k1), CL_OK);
    assert_int_equal(t->read_rand(t->self, k2, sizeof k2), CL_OK);
    assert_memory_not_equal(k1, k2, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lengths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_svn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_platform_and_backend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_egetkey, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
