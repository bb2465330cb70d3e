/*
 * test_sim_loader.c - measurement, signature files and loading of core
 * images (tee/sim/loader.c, sign_tool.c) with the two stand-in images built
 * from test_image.c and signed at build time by cl_sim_sign_image: the
 * identities (MRENCLAVE differs, MRSIGNER the same), a byte flipped in a
 * loadable segment refused, a byte outside the segments ignored, missing /
 * garbled / mismatched signature files refused, malformed ELF refused, and
 * the cloister-sim-sign command line. Copies live in a temporary directory.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloister/tee_sim.h"

typedef struct fx {
    char dir[64];
} fx_t;

static const char *const scratch[] = {"img.so", "img.so.sig", "out.sig", "out2.sig", "bad.conf",
                                      "junk", "junk.sig"};

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/cl-simld-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    char p[256];
    for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", f->dir, scratch[i]);
        (void)unlink(p);
    }
    (void)rmdir(f->dir);
    free(f);
    return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *b;
    long n;
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void copy(const char *from, const char *to)
{
    size_t n;
    uint8_t *b = slurp(from, &n);
    spit(to, b, n);
    free(b);
}

static void path_in(const fx_t *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

/* MRSIGNER expected for the shipped signer key: SHA-256 of its 65-byte public point. */
static void signer_mrsigner(uint8_t out[32])
{
    FILE *fp = fopen(CL_SIM_SIGNER_KEY, "r");
    EVP_PKEY *k;
    uint8_t pub[65];
    size_t n = 0;
    assert_non_null(fp);
    k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, 65, &n), 1);
    assert_int_equal(n, 65);
    assert_int_equal(EVP_Digest(pub, 65, out, NULL, EVP_sha256(), NULL), 1);
    EVP_PKEY_free(k);
}

static void test_load_identities(void **state)
{
    cl_sim_enclave_t *a = NULL, *b = NULL;
    const cl_sim_identity_t *ia, *ib;
    const cl_core_ecalls_t *t;
    uint8_t mre[32], mrs[32];
    (void)state;

    assert_int_equal(cl_sim_enclave_load(CL_TEST_IMAGE_1, &a), CL_OK);
    assert_int_equal(cl_sim_enclave_load(CL_TEST_IMAGE_2, &b), CL_OK);
    t = cl_sim_enclave_ecalls(a);
    assert_non_null(t);
    assert_int_equal(t->version, CL_CORE_API_VERSION);
    assert_int_equal(t->tick(0, 0), CL_ERR_UNSUPPORTED);
    ia = cl_sim_enclave_identity(a);
    ib = cl_sim_enclave_identity(b);
    assert_int_equal(cl_sim_measure(CL_TEST_IMAGE_1, mre), CL_OK);
    assert_memory_equal(ia->mr_enclave, mre, 32);
    assert_memory_not_equal(ia->mr_enclave, ib->mr_enclave, 32);
    signer_mrsigner(mrs);
    assert_memory_equal(ia->mr_signer, mrs, 32);
    assert_memory_equal(ib->mr_signer, mrs, 32);
    /* from test_enclave.conf */
    assert_int_equal(ia->isv_prod_id, 7);
    assert_int_equal(ia->isv_svn, 3);
    assert_true(ia->attr_flags ==
                (CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT | CL_SGX_FLAGS_DEBUG));
    assert_true(ia->attr_xfrm == 3);
    assert_memory_equal(ia->cpu_svn, CL_SIM_CPU_SVN, 16);
    cl_sim_enclave_unload(a);
    cl_sim_enclave_unload(b);
    cl_sim_enclave_unload(NULL);
    assert_null(cl_sim_enclave_ecalls(NULL));
}

/* Returns the file offset of a byte in the middle of the executable PT_LOAD segment. */
static size_t exec_segment_byte(const uint8_t *img, size_t len)
{
    uint64_t phoff;
    uint16_t phnum;
    assert_true(len > 64);
    memcpy(&phoff, img + 32, 8);
    memcpy(&phnum, img + 56, 2);
    for (uint16_t i = 0; i < phnum; i++) {
        const uint8_t *ph = img + phoff + (size_t)i * 56;
        uint32_t type, flags;
        uint64_t off, filesz;
        memcpy(&type, ph, 4);
        memcpy(&flags, ph + 4, 4);
        memcpy(&off, ph + 8, 8);
        memcpy(&filesz, ph + 32, 8);
        if (type == 1 && (flags & 1) && filesz > 16)
            return (size_t)(off + filesz / 2);
    }
    fail_msg("no executable segment");
    return 0;
}

static void test_modified_image(void **state)
{
    fx_t *f = *state;
    char img[256], sig[256];
    cl_sim_enclave_t *e = NULL;
    cl_sim_identity_t id;
    uint8_t *b, m1[32], m2[32];
    size_t n, at;

    path_in(f, "img.so", img, sizeof img);
    path_in(f, "img.so.sig", sig, sizeof sig);
    copy(CL_TEST_IMAGE_1, img);
    copy(CL_TEST_IMAGE_1 ".sig", sig);
    assert_int_equal(cl_sim_read_sigstruct(img, &id), CL_OK);
    assert_int_equal(cl_sim_enclave_load(img, &e), CL_OK);
    cl_sim_enclave_unload(e);
    e = NULL;

    b = slurp(img, &n);
    assert_int_equal(cl_sim_measure(img, m1), CL_OK);
    /* a byte outside every loadable segment (section headers at the end) does not count */
    b[n - 1] ^= 0x01;
    spit(img, b, n);
    assert_int_equal(cl_sim_measure(img, m2), CL_OK);
    assert_memory_equal(m1, m2, 32);
    b[n - 1] ^= 0x01;
    /* a byte of code does */
    at = exec_segment_byte(b, n);
    b[at] ^= 0x40;
    spit(img, b, n);
    assert_int_equal(cl_sim_measure(img, m2), CL_OK);
    assert_memory_not_equal(m1, m2, 32);
    assert_int_equal(cl_sim_read_sigstruct(img, &id), CL_ERR_AUTH);
    assert_int_equal(cl_sim_enclave_load(img, &e), CL_ERR_AUTH);
    assert_null(e);
    /* the other variant's signature does not fit this image either */
    b[at] ^= 0x40;
    spit(img, b, n);
    copy(CL_TEST_IMAGE_2 ".sig", sig);
    assert_int_equal(cl_sim_enclave_load(img, &e), CL_ERR_AUTH);
    free(b);
}

static void test_bad_sig(void **state)
{
    fx_t *f = *state;
    char img[256], sig[256];
    cl_sim_enclave_t *e = NULL;
    cl_sim_identity_t id;
    uint8_t *good;
    size_t n;

    path_in(f, "img.so", img, sizeof img);
    path_in(f, "img.so.sig", sig, sizeof sig);
    copy(CL_TEST_IMAGE_1, img);
    /* missing */
    assert_int_equal(cl_sim_enclave_load(img, &e), CL_ERR_NOT_FOUND);
    good = slurp(CL_TEST_IMAGE_1 ".sig", &n);
    assert_int_equal(n, CL_SIM_SIG_LEN);
    /* every byte matters */
    for (size_t i = 0; i < n; i++) {
        cl_status_t rc;
        good[i] ^= 0x04;
        spit(sig, good, n);
        rc = cl_sim_read_sigstruct(img, &id);
        if (rc != CL_ERR_AUTH && rc != CL_ERR_BAD_INPUT)
            fail_msg("sig byte %zu: %s", i, cl_status_str(rc));
        good[i] ^= 0x04;
    }
    /* truncated, extended, empty */
    spit(sig, good, n - 1);
    assert_int_equal(cl_sim_enclave_load(img, &e), CL_ERR_BAD_INPUT);
    {
        uint8_t big[CL_SIM_SIG_LEN + 1];
        memcpy(big, good, n);
        big[n] = 0;
        spit(sig, big, sizeof big);
        assert_int_equal(cl_sim_enclave_load(img, &e), CL_ERR_BAD_INPUT);
    }
    spit(sig, good, 0);
    assert_int_equal(cl_sim_enclave_load(img, &e), CL_ERR_BAD_INPUT);
    assert_null(e);
    spit(sig, good, n);
    assert_int_equal(cl_sim_enclave_load(img, &e), CL_OK);
    cl_sim_enclave_unload(e);
    free(good);
}

static void test_not_elf(void **state)
{
    fx_t *f = *state;
    char junk[256];
    uint8_t m[32], *b;
    size_t n;

    path_in(f, "junk", junk, sizeof junk);
    spit(junk, (const uint8_t *)"not an ELF file at all, not at all, really not one ok", 52);
    assert_int_equal(cl_sim_measure(junk, m), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_sim_measure("/nonexistent/cl-image.so", m), CL_ERR_NOT_FOUND);
    b = slurp(CL_TEST_IMAGE_1, &n);
    /* truncations cut program headers or segments */
    spit(junk, b, 63);
    assert_int_equal(cl_sim_measure(junk, m), CL_ERR_BAD_INPUT);
    spit(junk, b, 200);
    assert_int_equal(cl_sim_measure(junk, m), CL_ERR_BAD_INPUT);
    /* lying header fields: phoff beyond the file, phentsize, class */
    {
        uint8_t save[8];
        memcpy(save, b + 32, 8);
        memset(b + 32, 0xff, 8);
        spit(junk, b, n);
        assert_int_equal(cl_sim_measure(junk, m), CL_ERR_BAD_INPUT);
        memcpy(b + 32, save, 8);
        b[54] = 40;
        spit(junk, b, n);
        assert_int_equal(cl_sim_measure(junk, m), CL_ERR_BAD_INPUT);
        b[54] = 56;
        b[4] = 1; /* ELFCLASS32 */
        spit(junk, b, n);
        assert_int_equal(cl_sim_measure(junk, m), CL_ERR_BAD_INPUT);
        b[4] = 2;
    }
    free(b);
}

static int run_sign(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s 2>/dev/null", CL_SIM_SIGN_TOOL, args);
    return system(cmd);
}

static void test_sign_tool(void **state)
{
    fx_t *f = *state;
    char img[256], out[256], out2[256], conf[256], args[1536];
    uint8_t *built, *o1, *o2, body[CL_SIM_SIG_LEN];
    size_t nb, n1, n2;
    cl_sim_identity_t id;

    path_in(f, "img.so", img, sizeof img);
    path_in(f, "out.sig", out, sizeof out);
    path_in(f, "out2.sig", out2, sizeof out2);
    path_in(f, "bad.conf", conf, sizeof conf);
    copy(CL_TEST_IMAGE_1, img);
    snprintf(args, sizeof args, "--key %s --config %s --image %s --out %s", CL_SIM_SIGNER_KEY,
             CL_TEST_ENCLAVE_CONF, img, out);
    assert_int_equal(run_sign(args), 0);
    snprintf(args, sizeof args, "--key %s --config %s --image %s --out %s", CL_SIM_SIGNER_KEY,
             CL_TEST_ENCLAVE_CONF, img, out2);
    assert_int_equal(run_sign(args), 0);
    /* stable: the signed body is the same each run and as at build time */
    built = slurp(CL_TEST_IMAGE_1 ".sig", &nb);
    o1 = slurp(out, &n1);
    o2 = slurp(out2, &n2);
    assert_int_equal(n1, CL_SIM_SIG_LEN);
    assert_int_equal(n2, CL_SIM_SIG_LEN);
    assert_memory_equal(o1, o2, CL_SIM_SIG_BODY_LEN);
    assert_memory_equal(o1, built, CL_SIM_SIG_BODY_LEN);
    assert_int_equal(cl_sim_sign(img, CL_SIM_SIGNER_KEY, 7, 3, true, body), CL_OK);
    assert_memory_equal(o1, body, CL_SIM_SIG_BODY_LEN);
    /* the default output name is <image>.sig, and it verifies */
    snprintf(args, sizeof args, "--key %s --config %s --image %s", CL_SIM_SIGNER_KEY,
             CL_TEST_ENCLAVE_CONF, img);
    assert_int_equal(run_sign(args), 0);
    assert_int_equal(cl_sim_read_sigstruct(img, &id), CL_OK);
    assert_int_equal(id.isv_svn, 3);
    free(built);
    free(o1);
    free(o2);
    /* errors: bad config, missing argument, missing key */
    spit(conf, (const uint8_t *)"isv_prod_id = 1\nisv_svn = x\ndebug = 0\n", 38);
    snprintf(args, sizeof args, "--key %s --config %s --image %s --out %s", CL_SIM_SIGNER_KEY,
             conf, img, out);
    assert_int_not_equal(run_sign(args), 0);
    spit(conf, (const uint8_t *)"isv_prod_id = 1\ndebug = 2\nisv_svn = 1\n", 38);
    assert_int_not_equal(run_sign(args), 0);
    spit(conf, (const uint8_t *)"isv_prod_id = 1\n# no svn\ndebug = 0\n", 35);
    assert_int_not_equal(run_sign(args), 0);
    snprintf(args, sizeof args, "--key %s --image %s", CL_SIM_SIGNER_KEY, img);
    assert_int_not_equal(run_sign(args), 0);
    snprintf(args, sizeof args, "--key %s/nokey.pem --config %s --image %s --out %s", f->dir,
             CL_TEST_ENCLAVE_CONF, img, out);
    assert_int_not_equal(run_sign(args), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load_identities, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modified_image, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_sig, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_elf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_tool, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
