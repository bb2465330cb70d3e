/*
 * test_aesni_ccm.c - the AES-NI AES-CCM against OpenSSL's EVP AES-CCM.
 *
 * OpenSSL is the reference: thousands of random (key, nonce, AAD, payload)
 * inputs with 8- and 16-byte tags, every payload and AAD length from 0 to 48
 * (all block-boundary cases), the long-AAD length encodings (0xfffe || 32
 * bits) and the 65535-byte payload limit; both directions, in place and
 * not, and tampering. Inputs come from a fixed-seed generator so a failure
 * is reproducible; the seed is printed. Skipped when the CPU has no AES-NI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cloister/aes_ccm_aesni.h"
#include "testutil.h"

#define SEED 0x5eed00c1c0ffee11ull

/* splitmix64: small, seedable, good enough to spread test inputs. */
static uint64_t rng_state = SEED;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rng();
}

static size_t rng_below(size_t n)
{
    return (size_t)(rng() % n);
}

/* Reference AES-128-CCM encryption with a fresh EVP context: out = ct || tag. */
static void ref_encrypt(const uint8_t key[16], const uint8_t nonce[13], size_t tag_len,
                        const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                        uint8_t *out)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    uint8_t dummy[1] = {0};
    int l = 0;

    assert_non_null(c);
    assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_128_ccm(), NULL, NULL, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, 13, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, (int)tag_len, NULL), 1);
    assert_int_equal(EVP_EncryptInit_ex(c, NULL, NULL, key, nonce), 1);
    assert_int_equal(EVP_EncryptUpdate(c, NULL, &l, NULL, (int)pt_len), 1);
    if (aad_len != 0)
        assert_int_equal(EVP_EncryptUpdate(c, NULL, &l, aad, (int)aad_len), 1);
    assert_int_equal(
        EVP_EncryptUpdate(c, pt_len ? out : dummy, &l, pt_len ? pt : dummy, (int)pt_len), 1);
    assert_int_equal(EVP_EncryptFinal_ex(c, dummy, &l), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, (int)tag_len, out + pt_len), 1);
    EVP_CIPHER_CTX_free(c);
}

/*
 * One case: AES-NI encrypt == reference, decrypt back, both in place too,
 * and (when tamper) a flipped bit in ct/tag, AAD or nonce is refused with
 * the output wiped.
 */
static void check_case(const uint8_t key[16], const uint8_t nonce[13], size_t tag_len,
                       const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
                       int tamper)
{
    cl_aesni_ccm_t k;
    size_t n = pt_len + tag_len;
    uint8_t *ref = malloc(n + 1), *out = malloc(n + 1), *buf = malloc(n + 1);
    uint8_t n2[13];

    assert_true(ref != NULL && out != NULL && buf != NULL);
    assert_int_equal(cl_aesni_ccm_init(&k, key, tag_len), CL_OK);
    ref_encrypt(key, nonce, tag_len, aad, aad_len, pt, pt_len, ref);

    out[n] = 0x77;
    assert_int_equal(cl_aesni_ccm_encrypt(&k, nonce, aad, aad_len, pt, pt_len, out), CL_OK);
    tu_assert_bytes(out, n, ref, n);
    assert_int_equal(out[n], 0x77); /* no write past ct || tag */

    if (pt_len != 0)
        memcpy(buf, pt, pt_len);
    assert_int_equal(cl_aesni_ccm_encrypt(&k, nonce, aad, aad_len, buf, pt_len, buf), CL_OK);
    tu_assert_bytes(buf, n, ref, n);

    out[pt_len] = 0x77;
    assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, aad, aad_len, ref, n, out), CL_OK);
    tu_assert_bytes(out, pt_len, pt, pt_len);
    assert_int_equal(out[pt_len], 0x77); /* writes pt_len bytes only */

    assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, aad, aad_len, buf, n, buf), CL_OK);
    tu_assert_bytes(buf, pt_len, pt, pt_len);

    if (tamper) {
        int what = (int)rng_below(3);
        memcpy(buf, ref, n);
        memcpy(n2, nonce, 13);
        if (what == 0 || aad_len == 0) {
            buf[rng_below(n)] ^= (uint8_t)(1u << rng_below(8));
            assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, aad, aad_len, buf, n, out),
                             CL_ERR_AUTH);
        } else if (what == 1) {
            uint8_t *a2 = malloc(aad_len);
            assert_non_null(a2);
            memcpy(a2, aad, aad_len);
            a2[rng_below(aad_len)] ^= (uint8_t)(1u << rng_below(8));
            assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, a2, aad_len, buf, n, out),
                             CL_ERR_AUTH);
            free(a2);
        } else {
            n2[rng_below(13)] ^= (uint8_t)(1u << rng_below(8));
            assert_int_equal(cl_aesni_ccm_decrypt(&k, n2, aad, aad_len, buf, n, out), CL_ERR_AUTH);
        }
        for (size_t i = 0; i < pt_len; i++)
            assert_int_equal(out[i], 0);
        /* In place: the ciphertext area is wiped too. */
        memcpy(buf, ref, n);
        buf[n - 1] ^= 0x80;
        assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, aad, aad_len, buf, n, buf), CL_ERR_AUTH);
        for (size_t i = 0; i < pt_len; i++)
            assert_int_equal(buf[i], 0);
    }
    cl_aesni_ccm_clear(&k);
    free(ref);
    free(out);
    free(buf);
}

static int skip_without_aesni(void)
{
    if (!cl_aesni_available()) {
        print_message("no AES-NI on this CPU (or not an x86-64 build): skipped\n");
        return 1;
    }
    return 0;
}

static void test_random_inputs(void **state)
{
    uint8_t key[16], nonce[13], aad[64], pt[1100];
    int n = 0;
    (void)state;
    if (skip_without_aesni())
        skip();
    rng_state = SEED;
    print_message("seed %016llx\n", (unsigned long long)SEED);
    for (int i = 0; i < 2400; i++) {
        size_t tag = (i & 1) ? 16 : 8;
        size_t al = rng_below(sizeof aad + 1), pl = rng_below(sizeof pt + 1);
        rng_fill(key, sizeof key);
        rng_fill(nonce, sizeof nonce);
        rng_fill(aad, al);
        rng_fill(pt, pl);
        check_case(key, nonce, tag, aad, al, pt, pl, 1);
        n++;
    }
    print_message("%d random cases (tag 8 and 16, aad 0..64, payload 0..1100)\n", n);
}

/* Every payload and AAD length 0..48 (0-3 blocks, every partial size), both tags. */
static void test_block_boundaries(void **state)
{
    uint8_t key[16], nonce[13], aad[48], pt[48];
    int n = 0;
    (void)state;
    if (skip_without_aesni())
        skip();
    rng_state = SEED ^ 1;
    rng_fill(key, sizeof key);
    for (size_t tag = 8; tag <= 16; tag += 8)
        for (size_t al = 0; al <= sizeof aad; al++)
            for (size_t pl = 0; pl <= sizeof pt; pl++) {
                rng_fill(nonce, sizeof nonce);
                rng_fill(aad, al);
                rng_fill(pt, pl);
                check_case(key, nonce, tag, al ? aad : NULL, al, pl ? pt : NULL, pl,
                           (pl + al) % 5 == 0);
                n++;
            }
    print_message("%d boundary cases\n", n);
}

/* AAD length encodings: 2 bytes below 0xff00, 0xfffe || 4 bytes from 0xff00. */
static void test_long_aad(void **state)
{
    static const size_t lens[] = {0xfefe, 0xfeff, 0xff00, 0xff01, 0x10000, 70001};
    uint8_t key[16], nonce[13], pt[37];
    uint8_t *aad = malloc(70001);
    (void)state;
    if (skip_without_aesni()) {
        free(aad);
        skip();
    }
    assert_non_null(aad);
    rng_state = SEED ^ 2;
    rng_fill(key, sizeof key);
    rng_fill(aad, 70001);
    rng_fill(pt, sizeof pt);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        rng_fill(nonce, sizeof nonce);
        check_case(key, nonce, 8, aad, lens[i], pt, sizeof pt, 1);
        check_case(key, nonce, 16, aad, lens[i], pt, 16, 0);
    }
    free(aad);
}

/* L = 2: 65535 bytes is the largest payload; one more is refused. */
static void test_payload_limit(void **state)
{
    uint8_t key[16], nonce[13], aad[20];
    uint8_t *pt = malloc(65536 + 16), *out = malloc(65536 + 16);
    cl_aesni_ccm_t k;
    (void)state;
    if (skip_without_aesni()) {
        free(pt);
        free(out);
        skip();
    }
    assert_true(pt != NULL && out != NULL);
    rng_state = SEED ^ 3;
    rng_fill(key, sizeof key);
    rng_fill(nonce, sizeof nonce);
    rng_fill(aad, sizeof aad);
    rng_fill(pt, 65536);
    check_case(key, nonce, 8, aad, sizeof aad, pt, 65535, 1);
    check_case(key, nonce, 16, aad, sizeof aad, pt, 65535 - 16 * 7 - 3, 0);
    assert_int_equal(cl_aesni_ccm_init(&k, key, 8), CL_OK);
    assert_int_equal(cl_aesni_ccm_encrypt(&k, nonce, aad, sizeof aad, pt, 65536, out),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, aad, sizeof aad, pt, 65536 + 8, out),
                     CL_ERR_AUTH);
    cl_aesni_ccm_clear(&k);
    free(pt);
    free(out);
}

/* The RFC 3610 / CAVP vectors directly through this API. */
static void test_vectors(void **state)
{
    cJSON *j;
    const cJSON *v;
    int n = 0;
    (void)state;
    if (skip_without_aesni())
        skip();
    j = tu_load_vectors("aes-ccm-rfc3610.json");
    for (int list = 0; list < 2; list++) {
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j, "aes_ccm_16_64_128"),
            list ? "nist_cavp" : "rfc3610_packet_vectors");
        assert_non_null(arr);
        cJSON_ArrayForEach(v, arr)
        {
            size_t kl, nl, al, pl, cl;
            uint8_t *key = tu_hexm(v, "key", &kl), *nonce = tu_hexm(v, "nonce", &nl);
            uint8_t *aad = tu_hexm(v, "aad", &al), *pt = tu_hexm(v, "plaintext", &pl);
            uint8_t *ct = tu_hexm(v, "ciphertext_and_tag", &cl);
            uint8_t out[128];
            cl_aesni_ccm_t k;
            assert_true(kl == 16 && nl == 13 && cl == pl + 8 && cl <= sizeof out);
            assert_int_equal(cl_aesni_ccm_init(&k, key, 8), CL_OK);
            assert_int_equal(cl_aesni_ccm_encrypt(&k, nonce, aad, al, pt, pl, out), CL_OK);
            tu_assert_bytes(out, cl, ct, cl);
            assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, aad, al, ct, cl, out), CL_OK);
            tu_assert_bytes(out, pl, pt, pl);
            cl_aesni_ccm_clear(&k);
            n++;
        }
    }
    assert_int_equal(n, 13);
    cJSON_Delete(j);
}

static void test_api_edges(void **state)
{
    uint8_t key[16] = {0}, nonce[13] = {0}, buf[64] = {0};
    cl_aesni_ccm_t k;
    (void)state;
    if (skip_without_aesni())
        skip();
    assert_int_equal(cl_aesni_ccm_init(&k, key, 12), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aesni_ccm_init(&k, key, 0), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aesni_ccm_init(NULL, key, 8), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aesni_ccm_init(&k, NULL, 8), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aesni_ccm_init(&k, key, 16), CL_OK);
    /* Shorter than the tag: not authentic, nothing written. */
    memset(buf, 0x55, sizeof buf);
    assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, NULL, 0, buf, 15, buf + 32), CL_ERR_AUTH);
    assert_int_equal(buf[32], 0x55);
    assert_int_equal(cl_aesni_ccm_encrypt(&k, nonce, NULL, 3, buf, 0, buf), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aesni_ccm_encrypt(&k, NULL, NULL, 0, buf, 0, buf), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aesni_ccm_encrypt(&k, nonce, NULL, 0, NULL, 1, buf), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aesni_ccm_encrypt(&k, nonce, NULL, 0, NULL, 0, buf), CL_OK);
    /* Tag only, decrypting to no buffer at all. */
    assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, NULL, 0, buf, 16, NULL), CL_OK);
    /* A cleared key is refused. */
    cl_aesni_ccm_clear(&k);
    assert_int_equal(k.tag_len, 0);
    for (size_t i = 0; i < sizeof k.rk; i++)
        assert_int_equal(k.rk[i], 0);
    assert_int_equal(cl_aesni_ccm_encrypt(&k, nonce, NULL, 0, buf, 4, buf), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aesni_ccm_decrypt(&k, nonce, NULL, 0, buf, 20, buf), CL_ERR_INVALID_ARG);
    cl_aesni_ccm_clear(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),          cmocka_unit_test(test_random_inputs),
        cmocka_unit_test(test_block_boundaries), cmocka_unit_test(test_long_aad),
        cmocka_unit_test(test_payload_limit),    cmocka_unit_test(test_api_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
