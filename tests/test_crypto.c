/*
 * test_crypto.c - the OpenSSL crypto provider against published vectors
 * (AES-CCM RFC 3610 / NIST CAVP / COSE examples, AES-GCM from RFC 9180,
 * HKDF RFC 5869, RFC 4231 HMAC, RFC 8032 Ed25519, RFC 7748 X25519, the
 * EDHOC traces of RFC 9529 for P-256/X25519 ECDH and Ed25519), plus the
 * negative cases of the contract: tampered ciphertexts, invalid points,
 * low-order keys, usage flags, stale handles, short buffers.
 *
 * AEAD tests run on two instances, with and without the AES-NI fast path,
 * so both CCM implementations see every vector.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "cloister/crypto_openssl.h"
#include "testutil.h"

#define SENTINEL 0xa5

/* ---------------------------------------------------------------- helpers */

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static int all_byte(const uint8_t *p, size_t n, uint8_t b)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != b)
            return 0;
    return 1;
}

static const cJSON *member(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (v == NULL)
        fail_msg("vector member '%s' missing", k);
    return v;
}

/* Two providers: [0] with the fast path when the CPU has it, [1] EVP only. */
typedef struct provs {
    cl_crypto_t c[2];
} provs_t;

static int setup_provs(void **state)
{
    provs_t *p = calloc(1, sizeof *p);
    assert_non_null(p);
    tu_crypto(&p->c[0], 0);
    tu_crypto(&p->c[1], CL_CRYPTO_OPENSSL_NO_FASTPATH);
    *state = p;
    return 0;
}

static int teardown_provs(void **state)
{
    provs_t *p = *state;
    cl_crypto_openssl_free(&p->c[0]);
    cl_crypto_openssl_free(&p->c[1]);
    free(p);
    return 0;
}

/*
 * One AEAD known answer: encrypt byte for byte (separate buffer and in
 * place), decrypt back (both ways), and a flipped bit in tag / ciphertext /
 * AAD / nonce gives CL_ERR_AUTH with the output wiped.
 */
static void aead_kat(const cl_crypto_t *c, cl_aead_alg_t alg, const uint8_t *key, size_t key_len,
                     const uint8_t *nonce, size_t nonce_len, const uint8_t *aad, size_t aad_len,
                     const uint8_t *pt, size_t pt_len, const uint8_t *ct, size_t ct_len)
{
    cl_key_t k = CL_KEY_NONE;
    uint8_t out[512], buf[512], n2[16], a2[256];
    size_t ol = 0;

    assert_true(ct_len <= sizeof out && aad_len <= sizeof a2 && nonce_len <= sizeof n2);
    assert_int_equal(cl_aead_import(c, alg, key, key_len, &k), CL_OK);
    assert_int_not_equal(k, CL_KEY_NONE);

    memset(out, SENTINEL, sizeof out);
    assert_int_equal(
        cl_aead_encrypt(c, k, nonce, nonce_len, aad, aad_len, pt, pt_len, out, ct_len, &ol), CL_OK);
    tu_assert_bytes(out, ol, ct, ct_len);
    assert_int_equal(out[ct_len], SENTINEL);

    /* In place. */
    memset(buf, SENTINEL, sizeof buf);
    if (pt_len != 0)
        memcpy(buf, pt, pt_len);
    assert_int_equal(
        cl_aead_encrypt(c, k, nonce, nonce_len, aad, aad_len, buf, pt_len, buf, ct_len, &ol),
        CL_OK);
    tu_assert_bytes(buf, ol, ct, ct_len);

    memset(out, SENTINEL, sizeof out);
    assert_int_equal(
        cl_aead_decrypt(c, k, nonce, nonce_len, aad, aad_len, ct, ct_len, out, pt_len, &ol), CL_OK);
    tu_assert_bytes(out, ol, pt, pt_len);
    assert_int_equal(out[pt_len], SENTINEL);

    assert_int_equal(
        cl_aead_decrypt(c, k, nonce, nonce_len, aad, aad_len, buf, ct_len, buf, ct_len, &ol),
        CL_OK);
    tu_assert_bytes(buf, ol, pt, pt_len);

    /* Flipped bits: one per region, each must fail and leave zeros. */
    for (int what = 0; what < 4; what++) {
        size_t nl = nonce_len;
        memcpy(buf, ct, ct_len);
        memcpy(n2, nonce, nonce_len);
        if (aad_len != 0)
            memcpy(a2, aad, aad_len);
        switch (what) {
        case 0: buf[ct_len - 1] ^= 0x01; break; /* tag */
        case 1:                                 /* ciphertext */
            if (pt_len == 0)
                continue;
            buf[pt_len / 2] ^= 0x80;
            break;
        case 2: /* aad */
            if (aad_len == 0)
                continue;
            a2[aad_len - 1] ^= 0x10;
            break;
        default: n2[nl - 1] ^= 0x04; break; /* nonce */
        }
        memset(out, SENTINEL, sizeof out);
        ol = 777;
        assert_int_equal(cl_aead_decrypt(c, k, n2, nl, aad_len ? a2 : aad, aad_len, buf, ct_len,
                                         out, sizeof out, &ol),
                         CL_ERR_AUTH);
        assert_true(all_zero(out, pt_len));
        assert_int_equal(out[pt_len], SENTINEL);
        assert_int_equal(ol, 777);
        assert_int_equal(ERR_peek_error(), 0);
        /* In place too. */
        assert_int_equal(cl_aead_decrypt(c, k, n2, nl, aad_len ? a2 : aad, aad_len, buf, ct_len,
                                         buf, ct_len, &ol),
                         CL_ERR_AUTH);
        assert_true(all_zero(buf, pt_len));
    }
    cl_key_destroy(c, k);
}

/* ------------------------------------------------------------------- AEAD */

static void run_ccm_entries(provs_t *p, const cJSON *list, cl_aead_alg_t alg, int *ran)
{
    const cJSON *v;
    cJSON_ArrayForEach(v, list)
    {
        size_t kl, nl, al, pl, cl;
        uint8_t *key = tu_hexm(v, "key", &kl), *nonce = tu_hexm(v, "nonce", &nl);
        uint8_t *aad = tu_hexm(v, "aad", &al), *pt = tu_hexm(v, "plaintext", &pl);
        uint8_t *ct = tu_hexm(v, "ciphertext_and_tag", &cl);
        for (int i = 0; i < 2; i++)
            aead_kat(&p->c[i], alg, key, kl, nonce, nl, aad, al, pt, pl, ct, cl);
        (*ran)++;
    }
}

static void test_ccm_rfc3610(void **state)
{
    provs_t *p = *state;
    cJSON *j = tu_load_vectors("aes-ccm-rfc3610.json");
    const cJSON *m = member(j, "aes_ccm_16_64_128");
    const cJSON *v;
    int ran = 0, skipped = 0;

    run_ccm_entries(p, member(m, "rfc3610_packet_vectors"), CL_AEAD_AES_CCM_16_64_128, &ran);
    run_ccm_entries(p, member(m, "nist_cavp"), CL_AEAD_AES_CCM_16_64_128, &ran);
    assert_int_equal(ran, 13);

    /* SP 800-38C examples: only 13-byte nonce with an 8- or 16-byte tag fits the API. */
    cJSON_ArrayForEach(v, member(member(j, "other_parameters"), "sp800_38c_examples"))
    {
        int tl = member(v, "tag_length")->valueint, nl = member(v, "nonce_length")->valueint;
        if (nl == 13 && (tl == 8 || tl == 16) && tu_str_opt(v, "aad") != NULL) {
            size_t kl, n, al, pl, cl;
            uint8_t *key = tu_hexm(v, "key", &kl), *nonce = tu_hexm(v, "nonce", &n);
            uint8_t *aad = tu_hexm(v, "aad", &al), *pt = tu_hexm(v, "plaintext", &pl);
            uint8_t *ct = tu_hexm(v, "ciphertext_and_tag", &cl);
            for (int i = 0; i < 2; i++)
                aead_kat(&p->c[i], tl == 8 ? CL_AEAD_AES_CCM_16_64_128 : CL_AEAD_AES_CCM_16_128_128,
                         key, kl, nonce, n, aad, al, pt, pl, ct, cl);
            ran++;
        } else {
            skipped++;
        }
    }
    print_message("AES-CCM RFC 3610 file: %d vectors run (x2 paths), %d skipped "
                  "(nonce/tag sizes outside the API)\n",
                  ran, skipped);
    cJSON_Delete(j);
}

/* COSE Encrypt0 examples: alg 10 and 30 (16-byte tag) run; the other CCM variants are skipped. */
static void test_ccm_cose_examples(void **state)
{
    provs_t *p = *state;
    cJSON *j = tu_load_vectors("cose-examples.json");
    const cJSON *v;
    int ran = 0, ran30 = 0, skipped = 0;

    cJSON_ArrayForEach(v, member(j, "examples"))
    {
        int alg;
        size_t kl, nl, al, pl, cl;
        uint8_t *key, *nonce, *aad, *pt, *ct;
        if (strcmp(tu_str(v, "type"), "COSE_Encrypt0") != 0)
            continue;
        alg = member(v, "alg")->valueint;
        if (alg != CL_AEAD_AES_CCM_16_64_128 && alg != CL_AEAD_AES_CCM_16_128_128) {
            skipped++;
            continue;
        }
        key = tu_hexm(member(v, "key"), "k", &kl);
        nonce = tu_hexm(v, "iv", &nl);
        aad = tu_hexm(v, "enc_structure", &al);
        pt = tu_hexm(v, "plaintext_hex", &pl);
        ct = tu_hexm(v, "ciphertext", &cl);
        for (int i = 0; i < 2; i++)
            aead_kat(&p->c[i], (cl_aead_alg_t)alg, key, kl, nonce, nl, aad, al, pt, pl, ct, cl);
        ran++;
        ran30 += alg == CL_AEAD_AES_CCM_16_128_128;
    }
    assert_true(ran >= 4);
    assert_true(ran30 >= 1);
    print_message("COSE AES-CCM examples: %d run (%d with 16-byte tag), %d skipped "
                  "(7-byte nonce or 256-bit key)\n",
                  ran, ran30, skipped);
    cJSON_Delete(j);
}

/* AES-128-GCM from the RFC 9180 encryptions (aead_id 1). */
static void test_gcm_hpke(void **state)
{
    provs_t *p = *state;
    cJSON *j = tu_load_vectors("hpke-rfc9180.json");
    const cJSON *v, *e;
    int ran = 0;

    cJSON_ArrayForEach(v, member(j, "vectors"))
    {
        size_t kl;
        uint8_t *key;
        if (member(v, "aead_id")->valueint != 1)
            continue;
        key = tu_hexm(v, "key", &kl);
        cJSON_ArrayForEach(e, member(v, "encryptions"))
        {
            size_t nl, al, pl, cl;
            uint8_t *nonce = tu_hexm(e, "nonce", &nl), *aad = tu_hexm(e, "aad", &al);
            uint8_t *pt = tu_hexm(e, "pt", &pl), *ct = tu_hexm(e, "ct", &cl);
            for (int i = 0; i < 2; i++)
                aead_kat(&p->c[i], CL_AEAD_A128GCM, key, kl, nonce, nl, aad, al, pt, pl, ct, cl);
            ran++;
        }
    }
    assert_true(ran >= 12);
    print_message("AES-128-GCM (RFC 9180): %d encryptions\n", ran);
    cJSON_Delete(j);
}

/* Empty plaintext and/or AAD: the tag alone must authenticate, on every path. */
static void test_aead_empty(void **state)
{
    provs_t *p = *state;
    static const cl_aead_alg_t algs[] = {CL_AEAD_AES_CCM_16_64_128, CL_AEAD_AES_CCM_16_128_128,
                                         CL_AEAD_A128GCM};
    uint8_t key[16], nonce[13], aad[5] = {1, 2, 3, 4, 5};
    uint8_t ct[2][16], out[16];
    size_t ol = 0, tl = 0, nl = 0;

    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)(i * 7);
    memset(nonce, 0x42, sizeof nonce);
    for (size_t a = 0; a < 3; a++) {
        assert_int_equal(cl_aead_params(algs[a], NULL, &nl, &tl), CL_OK);
        for (int withaad = 0; withaad < 2; withaad++) {
            for (int i = 0; i < 2; i++) {
                cl_key_t k;
                assert_int_equal(cl_aead_import(&p->c[i], algs[a], key, 16, &k), CL_OK);
                assert_int_equal(cl_aead_encrypt(&p->c[i], k, nonce, nl, withaad ? aad : NULL,
                                                 withaad ? sizeof aad : 0, NULL, 0, ct[i], tl, &ol),
                                 CL_OK);
                assert_int_equal(ol, tl);
                assert_int_equal(cl_aead_decrypt(&p->c[i], k, nonce, nl, withaad ? aad : NULL,
                                                 withaad ? sizeof aad : 0, ct[i], tl, NULL, 0, &ol),
                                 CL_OK);
                assert_int_equal(ol, 0);
                ct[i][0] ^= 1;
                assert_int_equal(cl_aead_decrypt(&p->c[i], k, nonce, nl, withaad ? aad : NULL,
                                                 withaad ? sizeof aad : 0, ct[i], tl, out,
                                                 sizeof out, &ol),
                                 CL_ERR_AUTH);
                ct[i][0] ^= 1;
                cl_key_destroy(&p->c[i], k);
            }
            /* Both CCM implementations (and GCM twice through EVP) agree. */
            tu_assert_bytes(ct[0], tl, ct[1], tl);
        }
    }
}

/* Fast path and EVP path give the same bytes on assorted sizes, both directions. */
static void test_aead_paths_agree(void **state)
{
    provs_t *p = *state;
    uint8_t key[16], nonce[13], aad[40], pt[200], c0[216], c1[216], back[200];
    size_t o0 = 0, o1 = 0;
    cl_key_t k0, k1;

    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)(i * 31 + 5);
    for (size_t i = 0; i < sizeof aad; i++)
        aad[i] = (uint8_t)(i ^ 0x5a);
    for (int tagalg = 0; tagalg < 2; tagalg++) {
        cl_aead_alg_t alg = tagalg ? CL_AEAD_AES_CCM_16_128_128 : CL_AEAD_AES_CCM_16_64_128;
        assert_int_equal(cl_random(&p->c[0], key, sizeof key), CL_OK);
        assert_int_equal(cl_aead_import(&p->c[0], alg, key, 16, &k0), CL_OK);
        assert_int_equal(cl_aead_import(&p->c[1], alg, key, 16, &k1), CL_OK);
        for (size_t pl = 0; pl <= sizeof pt; pl += 7) {
            size_t al = (pl * 3) % (sizeof aad + 1);
            assert_int_equal(cl_random(&p->c[0], nonce, sizeof nonce), CL_OK);
            assert_int_equal(
                cl_aead_encrypt(&p->c[0], k0, nonce, 13, aad, al, pt, pl, c0, sizeof c0, &o0),
                CL_OK);
            assert_int_equal(
                cl_aead_encrypt(&p->c[1], k1, nonce, 13, aad, al, pt, pl, c1, sizeof c1, &o1),
                CL_OK);
            tu_assert_bytes(c0, o0, c1, o1);
            assert_int_equal(
                cl_aead_decrypt(&p->c[1], k1, nonce, 13, aad, al, c0, o0, back, sizeof back, &o1),
                CL_OK);
            tu_assert_bytes(back, o1, pt, pl);
        }
        cl_key_destroy(&p->c[0], k0);
        cl_key_destroy(&p->c[1], k1);
    }
}

static void test_aead_args(void **state)
{
    provs_t *p = *state;
    uint8_t key[16] = {0}, nonce[13] = {0}, pt[20] = {0}, out[64], back[64];
    size_t ol;

    for (int i = 0; i < 2; i++) {
        const cl_crypto_t *c = &p->c[i];
        cl_key_t k, g;
        /* Import: key length and algorithm. */
        assert_int_equal(cl_aead_import(c, CL_AEAD_AES_CCM_16_64_128, key, 15, &k),
                         CL_ERR_INVALID_ARG);
        assert_int_equal(cl_aead_import(c, CL_AEAD_AES_CCM_16_64_128, key, 32, &k),
                         CL_ERR_INVALID_ARG);
        assert_int_equal(cl_aead_import(c, (cl_aead_alg_t)11, key, 32, &k), CL_ERR_UNSUPPORTED);
        assert_int_equal(cl_aead_import(c, CL_AEAD_AES_CCM_16_64_128, NULL, 16, &k),
                         CL_ERR_INVALID_ARG);
        assert_int_equal(cl_aead_import(c, CL_AEAD_AES_CCM_16_64_128, key, 16, &k), CL_OK);
        assert_int_equal(cl_aead_import(c, CL_AEAD_A128GCM, key, 16, &g), CL_OK);

        /* Nonce length. */
        assert_int_equal(cl_aead_encrypt(c, k, nonce, 12, NULL, 0, pt, 20, out, sizeof out, &ol),
                         CL_ERR_INVALID_ARG);
        assert_int_equal(cl_aead_encrypt(c, g, nonce, 13, NULL, 0, pt, 20, out, sizeof out, &ol),
                         CL_ERR_INVALID_ARG);
        assert_int_equal(cl_aead_encrypt(c, g, nonce, 12, NULL, 0, pt, 20, out, sizeof out, &ol),
                         CL_OK);
        assert_int_equal(ol, 36);

        /* Buffer too small: nothing written, length untouched. */
        memset(out, SENTINEL, sizeof out);
        ol = 999;
        assert_int_equal(cl_aead_encrypt(c, k, nonce, 13, NULL, 0, pt, 20, out, 27, &ol),
                         CL_ERR_BUFFER_TOO_SMALL);
        assert_true(all_byte(out, sizeof out, SENTINEL));
        assert_int_equal(ol, 999);
        assert_int_equal(cl_aead_encrypt(c, k, nonce, 13, NULL, 0, pt, 20, out, 28, &ol), CL_OK);
        assert_int_equal(ol, 28);
        memset(back, SENTINEL, sizeof back);
        assert_int_equal(cl_aead_decrypt(c, k, nonce, 13, NULL, 0, out, 28, back, 19, &ol),
                         CL_ERR_BUFFER_TOO_SMALL);
        assert_true(all_byte(back, sizeof back, SENTINEL));
        assert_int_equal(cl_aead_decrypt(c, k, nonce, 13, NULL, 0, out, 28, back, 20, &ol), CL_OK);

        /* Shorter than the tag: not authentic. */
        assert_int_equal(cl_aead_decrypt(c, k, nonce, 13, NULL, 0, out, 7, back, sizeof back, &ol),
                         CL_ERR_AUTH);
        assert_int_equal(cl_aead_decrypt(c, g, nonce, 12, NULL, 0, out, 15, back, sizeof back, &ol),
                         CL_ERR_AUTH);
        /* CCM with L = 2: at most 65535 bytes of payload. */
        assert_int_equal(cl_aead_encrypt(c, k, nonce, 13, NULL, 0, pt, 65536, out, SIZE_MAX, &ol),
                         CL_ERR_INVALID_ARG);
        /* NULL with a length. */
        assert_int_equal(cl_aead_encrypt(c, k, nonce, 13, NULL, 3, pt, 20, out, sizeof out, &ol),
                         CL_ERR_INVALID_ARG);
        assert_int_equal(cl_aead_encrypt(c, k, NULL, 13, NULL, 0, pt, 20, out, sizeof out, &ol),
                         CL_ERR_INVALID_ARG);

        /* Handles: 0, garbage, wrong kind. */
        assert_int_equal(
            cl_aead_encrypt(c, CL_KEY_NONE, nonce, 13, NULL, 0, pt, 20, out, sizeof out, &ol),
            CL_ERR_NOT_FOUND);
        assert_int_equal(
            cl_aead_encrypt(c, 0xffffffffu, nonce, 13, NULL, 0, pt, 20, out, sizeof out, &ol),
            CL_ERR_NOT_FOUND);
        assert_int_equal(cl_aead_decrypt(c, k ^ 0x00010000u, nonce, 13, NULL, 0, out, 28, back,
                                         sizeof back, &ol),
                         CL_ERR_NOT_FOUND);
        cl_key_destroy(c, k);
        cl_key_destroy(c, g);
    }
}

/* ------------------------------------------------------------ hash / KDF */

static void test_sha256_hmac(void **state)
{
    provs_t *p = *state;
    const cl_crypto_t *c = &p->c[0];
    uint8_t h[32], e[32], key[131], h2[32];
    static const uint8_t abc[] = "abc";
    static const char jefe_msg[] = "what do ya want for nothing?";
    static const char tc6_msg[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    cl_buf_t parts[3] = {{abc, 1}, {NULL, 0}, {abc + 1, 2}};
    cl_buf_t whole = {abc, 3};

    /* FIPS 180-2 "abc", split in parts with an empty one in the middle. */
    tu_hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", e, sizeof e);
    assert_int_equal(cl_sha256(c, parts, 3, h), CL_OK);
    tu_assert_bytes(h, 32, e, 32);
    assert_int_equal(cl_sha256(c, &whole, 1, h), CL_OK);
    tu_assert_bytes(h, 32, e, 32);
    /* Empty message. */
    tu_hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", e, sizeof e);
    assert_int_equal(cl_sha256(c, NULL, 0, h), CL_OK);
    tu_assert_bytes(h, 32, e, 32);
    assert_int_equal(cl_sha256(c, NULL, 2, h), CL_ERR_INVALID_ARG);

    /* RFC 4231 test case 2, message in two parts. */
    {
        cl_buf_t m[2] = {{(const uint8_t *)jefe_msg, 10},
                         {(const uint8_t *)jefe_msg + 10, sizeof jefe_msg - 11}};
        tu_hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", e, sizeof e);
        assert_int_equal(cl_hmac_sha256(c, (const uint8_t *)"Jefe", 4, m, 2, h), CL_OK);
        tu_assert_bytes(h, 32, e, 32);
        /* Twice in a row: no state carried over. */
        assert_int_equal(cl_hmac_sha256(c, (const uint8_t *)"Jefe", 4, m, 2, h), CL_OK);
        tu_assert_bytes(h, 32, e, 32);
    }
    /* RFC 4231 test case 6: key longer than the block. */
    {
        cl_buf_t m = {(const uint8_t *)tc6_msg, sizeof tc6_msg - 1};
        memset(key, 0xaa, sizeof key);
        tu_hex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", e, sizeof e);
        assert_int_equal(cl_hmac_sha256(c, key, sizeof key, &m, 1, h), CL_OK);
        tu_assert_bytes(h, 32, e, 32);
    }
    /* Empty key = 32 zero bytes (zero padding), with and without a pointer. */
    memset(key, 0, 32);
    assert_int_equal(cl_hmac_sha256(c, NULL, 0, &whole, 1, h), CL_OK);
    assert_int_equal(cl_hmac_sha256(c, key, 32, &whole, 1, h2), CL_OK);
    tu_assert_bytes(h, 32, h2, 32);
    assert_int_equal(cl_hmac_sha256(c, key, 0, &whole, 1, h2), CL_OK);
    tu_assert_bytes(h, 32, h2, 32);
    assert_int_equal(cl_hmac_sha256(c, NULL, 5, &whole, 1, h2), CL_ERR_INVALID_ARG);
}

static void test_hkdf_rfc5869(void **state)
{
    provs_t *p = *state;
    cJSON *j = tu_load_vectors("hkdf-rfc5869.json");
    const cJSON *v;
    uint8_t prk[32], okm[255 * 32 + 1];
    int ran = 0;

    cJSON_ArrayForEach(v, member(j, "test_cases"))
    {
        size_t il, sl, nl, pl, ol;
        uint8_t *ikm = tu_hexm(v, "ikm", &il), *salt = tu_hexm(v, "salt", &sl);
        uint8_t *info = tu_hexm(v, "info", &nl), *eprk = tu_hexm(v, "prk", &pl);
        uint8_t *eokm = tu_hexm(v, "okm", &ol);
        size_t l = (size_t)member(v, "l")->valueint;
        assert_int_equal(l, ol);
        for (int i = 0; i < 2; i++) {
            const cl_crypto_t *c = &p->c[i];
            assert_int_equal(cl_hkdf_extract(c, salt, sl, ikm, il, prk), CL_OK);
            tu_assert_bytes(prk, 32, eprk, pl);
            if (sl == 0) {
                /* Empty salt given as NULL. */
                assert_int_equal(cl_hkdf_extract(c, NULL, 0, ikm, il, prk), CL_OK);
                tu_assert_bytes(prk, 32, eprk, pl);
            }
            memset(okm, SENTINEL, sizeof okm);
            assert_int_equal(cl_hkdf_expand(c, eprk, pl, info, nl, okm, l), CL_OK);
            tu_assert_bytes(okm, l, eokm, ol);
            assert_int_equal(okm[l], SENTINEL);
            /* A prefix of the output is the output of a shorter expand. */
            memset(okm, SENTINEL, sizeof okm);
            assert_int_equal(cl_hkdf_expand(c, eprk, pl, info, nl, okm, 33), CL_OK);
            tu_assert_bytes(okm, 33, eokm, 33);
        }
        ran++;
    }
    assert_int_equal(ran, 3);
    /* Length limit: 255 * HashLen. */
    assert_int_equal(cl_hkdf_expand(&p->c[0], prk, 32, NULL, 0, okm, 255 * 32), CL_OK);
    memset(okm, SENTINEL, sizeof okm);
    assert_int_equal(cl_hkdf_expand(&p->c[0], prk, 32, NULL, 0, okm, 255 * 32 + 1),
                     CL_ERR_INVALID_ARG);
    assert_true(all_byte(okm, sizeof okm, SENTINEL));
    assert_int_equal(cl_hkdf_expand(&p->c[0], prk, 32, NULL, 0, okm, 0), CL_OK);
    cJSON_Delete(j);
}

/* ------------------------------------------------------------ signatures */

static const char P256_N[] = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

static void test_es256(void **state)
{
    provs_t *p = *state;
    const cl_crypto_t *c = &p->c[0];
    static const uint8_t msg[] = "attack at dawn";
    uint8_t pub[65], pub2[65], sig[64], bad[64], cmp[33];
    size_t pl = 0, pl2 = 0, sl = 0;
    cl_key_t k, other, v65, v33, vx;

    assert_int_equal(c->ops->key_generate(c->self, CL_KEY_P256,
                                          CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY, &k, pub,
                                          sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(pl, 65);
    assert_int_equal(pub[0], 0x04);
    assert_int_equal(c->ops->key_export_public(c->self, k, pub2, sizeof pub2, &pl2), CL_OK);
    tu_assert_bytes(pub2, pl2, pub, pl);

    assert_int_equal(c->ops->sign(c->self, k, CL_SIG_ES256, msg, sizeof msg, sig, sizeof sig, &sl),
                     CL_OK);
    assert_int_equal(sl, 64);
    assert_int_equal(c->ops->verify(c->self, k, CL_SIG_ES256, msg, sizeof msg, sig, 64), CL_OK);
    /* Through imported public keys in all three forms (x-only only when y is even). */
    cmp[0] = (uint8_t)(0x02 | (pub[64] & 1));
    memcpy(cmp + 1, pub + 1, 32);
    assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_P256, pub, 65, &v65), CL_OK);
    assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_P256, cmp, 33, &v33), CL_OK);
    assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_P256, pub + 1, 32, &vx), CL_OK);
    assert_int_equal(c->ops->verify(c->self, v65, CL_SIG_ES256, msg, sizeof msg, sig, 64), CL_OK);
    assert_int_equal(c->ops->verify(c->self, v33, CL_SIG_ES256, msg, sizeof msg, sig, 64), CL_OK);
    assert_int_equal(c->ops->verify(c->self, vx, CL_SIG_ES256, msg, sizeof msg, sig, 64),
                     (pub[64] & 1) ? CL_ERR_AUTH : CL_OK);
    /* A compressed import exports uncompressed. */
    assert_int_equal(c->ops->key_export_public(c->self, v33, pub2, sizeof pub2, &pl2), CL_OK);
    tu_assert_bytes(pub2, pl2, pub, pl);

    /* Wrong message, signature, key, length. */
    assert_int_equal(c->ops->verify(c->self, v65, CL_SIG_ES256, msg, sizeof msg - 1, sig, 64),
                     CL_ERR_AUTH);
    memcpy(bad, sig, 64);
    bad[10] ^= 0x01;
    assert_int_equal(c->ops->verify(c->self, v65, CL_SIG_ES256, msg, sizeof msg, bad, 64),
                     CL_ERR_AUTH);
    assert_int_equal(c->ops->verify(c->self, v65, CL_SIG_ES256, msg, sizeof msg, sig, 63),
                     CL_ERR_AUTH);
    memset(bad, 0, 64); /* r = s = 0 */
    assert_int_equal(c->ops->verify(c->self, v65, CL_SIG_ES256, msg, sizeof msg, bad, 64),
                     CL_ERR_AUTH);
    memcpy(bad, sig, 32); /* s = n */
    tu_hex(P256_N, bad + 32, 32);
    assert_int_equal(c->ops->verify(c->self, v65, CL_SIG_ES256, msg, sizeof msg, bad, 64),
                     CL_ERR_AUTH);
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_VERIFY, &other, NULL, 0, NULL),
        CL_OK);
    assert_int_equal(c->ops->verify(c->self, other, CL_SIG_ES256, msg, sizeof msg, sig, 64),
                     CL_ERR_AUTH);
    assert_int_equal(ERR_peek_error(), 0);
    /* Signatures are randomized, and each verifies. */
    assert_int_equal(c->ops->sign(c->self, k, CL_SIG_ES256, msg, sizeof msg, bad, sizeof bad, &sl),
                     CL_OK);
    assert_memory_not_equal(bad, sig, 64);
    assert_int_equal(c->ops->verify(c->self, v65, CL_SIG_ES256, msg, sizeof msg, bad, 64), CL_OK);
    /* Empty message. */
    assert_int_equal(c->ops->sign(c->self, k, CL_SIG_ES256, NULL, 0, sig, sizeof sig, &sl), CL_OK);
    assert_int_equal(c->ops->verify(c->self, v65, CL_SIG_ES256, NULL, 0, sig, 64), CL_OK);
    /* Wrong algorithm for the key / unknown algorithm. */
    assert_int_equal(c->ops->sign(c->self, k, CL_SIG_EDDSA, msg, sizeof msg, sig, sizeof sig, &sl),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(c->ops->sign(c->self, k, (cl_sig_alg_t)-35, msg, 1, sig, sizeof sig, &sl),
                     CL_ERR_UNSUPPORTED);

    for (cl_key_t *h = (cl_key_t[]){k, other, v65, v33, vx, 0}; *h != 0; h++)
        cl_key_destroy(c, *h);
}

/* RFC 8152 C.2.1 / cose-wg ecdsa-sig-01: a fixed key and a signature made elsewhere. */
static void test_es256_cose_kat(void **state)
{
    provs_t *p = *state;
    const cl_crypto_t *c = &p->c[1];
    cJSON *j = tu_load_vectors("cose-examples.json");
    const cJSON *v, *found = NULL;
    size_t xl, yl, dl, tl, sl, pl = 0, ol = 0;
    uint8_t *x, *y, *d, *tbs, *sig, pub[65], exp[65], s2[64];
    cl_key_t kp, kd;

    cJSON_ArrayForEach(
        v, member(j, "examples")) if (strcmp(tu_str(v, "id"), "ecdsa-examples/ecdsa-sig-01.json") ==
                                      0) found = v;
    assert_non_null(found);
    x = tu_hexm(member(found, "key"), "x", &xl);
    y = tu_hexm(member(found, "key"), "y", &yl);
    d = tu_hexm(member(found, "key"), "d", &dl);
    tbs = tu_hexm(found, "to_be_signed_intermediate", &tl);
    sig = tu_hexm(found, "signature", &sl);
    exp[0] = 0x04;
    memcpy(exp + 1, x, 32);
    memcpy(exp + 33, y, 32);

    assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_P256, exp, 65, &kp), CL_OK);
    assert_int_equal(c->ops->verify(c->self, kp, CL_SIG_ES256, tbs, tl, sig, sl), CL_OK);
    tbs[tl - 1] ^= 1;
    assert_int_equal(c->ops->verify(c->self, kp, CL_SIG_ES256, tbs, tl, sig, sl), CL_ERR_AUTH);
    tbs[tl - 1] ^= 1;

    assert_int_equal(c->ops->key_import_private(
                         c->self, CL_KEY_P256, CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY, d, dl, &kd),
                     CL_OK);
    assert_int_equal(c->ops->key_export_public(c->self, kd, pub, sizeof pub, &pl), CL_OK);
    tu_assert_bytes(pub, pl, exp, 65);
    assert_int_equal(c->ops->sign(c->self, kd, CL_SIG_ES256, tbs, tl, s2, sizeof s2, &ol), CL_OK);
    assert_int_equal(c->ops->verify(c->self, kp, CL_SIG_ES256, tbs, tl, s2, ol), CL_OK);
    assert_int_equal(c->ops->verify(c->self, kd, CL_SIG_ES256, tbs, tl, sig, sl), CL_OK);
    cl_key_destroy(c, kp);
    cl_key_destroy(c, kd);

    /* One key for everything: ECDH first, then signing (its EVP_PKEY is made late). */
    {
        uint8_t z1[32], z2[32];
        size_t zl = 0;
        cl_key_t all, eph;
        assert_int_equal(
            c->ops->key_import_private(c->self, CL_KEY_P256,
                                       CL_KEY_USAGE_ECDH | CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY,
                                       d, dl, &all),
            CL_OK);
        assert_int_equal(c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &eph, pub,
                                              sizeof pub, &pl),
                         CL_OK);
        assert_int_equal(c->ops->ecdh(c->self, all, pub, pl, z1, sizeof z1, &zl), CL_OK);
        assert_int_equal(c->ops->ecdh(c->self, eph, exp, 65, z2, sizeof z2, &zl), CL_OK);
        tu_assert_bytes(z1, 32, z2, 32);
        assert_int_equal(c->ops->sign(c->self, all, CL_SIG_ES256, tbs, tl, s2, sizeof s2, &ol),
                         CL_OK);
        assert_int_equal(c->ops->verify(c->self, all, CL_SIG_ES256, tbs, tl, s2, ol), CL_OK);
        assert_int_equal(c->ops->verify(c->self, all, CL_SIG_ES256, tbs, tl, sig, sl), CL_OK);
        assert_int_equal(c->ops->ecdh(c->self, all, pub, pl, z1, sizeof z1, &zl), CL_OK);
        tu_assert_bytes(z1, 32, z2, 32);
        cl_key_destroy(c, all);
        cl_key_destroy(c, eph);
    }
    cJSON_Delete(j);
}

/* One Ed25519 known answer: the public key derives, the signature is reproduced and verifies. */
static void ed25519_kat(const cl_crypto_t *c, const uint8_t *sk, const uint8_t *pk,
                        const uint8_t *msg, size_t msg_len, const uint8_t *esig)
{
    uint8_t pub[32], sig[64];
    size_t pl = 0, sl = 0;
    cl_key_t k, v;

    assert_int_equal(
        c->ops->key_import_private(c->self, CL_KEY_ED25519, CL_KEY_USAGE_SIGN, sk, 32, &k), CL_OK);
    assert_int_equal(c->ops->key_export_public(c->self, k, pub, sizeof pub, &pl), CL_OK);
    tu_assert_bytes(pub, pl, pk, 32);
    assert_int_equal(c->ops->sign(c->self, k, CL_SIG_EDDSA, msg, msg_len, sig, sizeof sig, &sl),
                     CL_OK);
    tu_assert_bytes(sig, sl, esig, 64);
    /* Twice: the cached signing context is reusable. */
    assert_int_equal(c->ops->sign(c->self, k, CL_SIG_EDDSA, msg, msg_len, sig, sizeof sig, &sl),
                     CL_OK);
    tu_assert_bytes(sig, sl, esig, 64);
    assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_ED25519, pk, 32, &v), CL_OK);
    assert_int_equal(c->ops->verify(c->self, v, CL_SIG_EDDSA, msg, msg_len, esig, 64), CL_OK);
    assert_int_equal(c->ops->verify(c->self, v, CL_SIG_EDDSA, msg, msg_len, esig, 64), CL_OK);
    /* A sign-only key does not verify. */
    assert_int_equal(c->ops->verify(c->self, k, CL_SIG_EDDSA, msg, msg_len, esig, 64),
                     CL_ERR_INVALID_ARG);
    cl_key_destroy(c, k);
    cl_key_destroy(c, v);
}

static void test_ed25519(void **state)
{
    provs_t *p = *state;
    const cl_crypto_t *c = &p->c[0];
    uint8_t sk[32], pk[32], sig[64], bad[64], pub[32];
    size_t sl = 0, pl = 0;
    cl_key_t k, other;
    static const uint8_t msg[] = "hello";

    /* RFC 8032 7.1 TEST 1: secret key, public key, empty message, signature. */
    tu_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", sk, 32);
    tu_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pk, 32);
    tu_hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
           "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
           sig, 64);
    ed25519_kat(c, sk, pk, NULL, 0, sig);

    /* cose-wg eddsa-sig-01: same key, signature over the COSE ToBeSigned. */
    {
        cJSON *j = tu_load_vectors("cose-examples.json");
        const cJSON *v;
        int ran = 0;
        cJSON_ArrayForEach(v, member(j, "examples"))
        {
            size_t dl, xl, tl, gl;
            uint8_t *d, *x, *tbs, *s;
            if (strcmp(tu_str(v, "id"), "eddsa-examples/eddsa-sig-01.json") != 0)
                continue;
            d = tu_hexm(member(v, "key"), "d", &dl);
            x = tu_hexm(member(v, "key"), "x", &xl);
            tbs = tu_hexm(v, "to_be_signed_intermediate", &tl);
            s = tu_hexm(v, "signature", &gl);
            assert_int_equal(dl, 32);
            assert_int_equal(gl, 64);
            ed25519_kat(c, d, x, tbs, tl, s);
            ran++;
        }
        assert_int_equal(ran, 1);
        cJSON_Delete(j);
    }
    /* RFC 9529 trace 1: the Responder's signature_or_mac_2. */
    {
        cJSON *j = tu_load_vectors("edhoc-rfc9529.json");
        const cJSON *v = member(member(j, "trace_1"), "values");
        size_t a, b, m, s;
        uint8_t *skr = tu_hexm(v, "sk_r", &a), *pkr = tu_hexm(v, "pk_r", &b);
        uint8_t *tbs = tu_hexm(v, "message_to_be_signed_2", &m);
        uint8_t *sg = tu_hexm(v, "signature_or_mac_2", &s);
        assert_int_equal(s, 64);
        ed25519_kat(&p->c[1], skr, pkr, tbs, m, sg);
        cJSON_Delete(j);
    }

    /* Roundtrip with a generated key; wrong message / signature / key. */
    assert_int_equal(c->ops->key_generate(c->self, CL_KEY_ED25519,
                                          CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY, &k, pub,
                                          sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(pl, 32);
    assert_int_equal(c->ops->sign(c->self, k, CL_SIG_EDDSA, msg, sizeof msg, sig, sizeof sig, &sl),
                     CL_OK);
    assert_int_equal(c->ops->verify(c->self, k, CL_SIG_EDDSA, msg, sizeof msg, sig, 64), CL_OK);
    assert_int_equal(c->ops->verify(c->self, k, CL_SIG_EDDSA, msg, sizeof msg - 1, sig, 64),
                     CL_ERR_AUTH);
    memcpy(bad, sig, 64);
    bad[63] ^= 0x40;
    assert_int_equal(c->ops->verify(c->self, k, CL_SIG_EDDSA, msg, sizeof msg, bad, 64),
                     CL_ERR_AUTH);
    /* ...and the good one still verifies after a failure on the same context. */
    assert_int_equal(c->ops->verify(c->self, k, CL_SIG_EDDSA, msg, sizeof msg, sig, 64), CL_OK);
    assert_int_equal(c->ops->verify(c->self, k, CL_SIG_EDDSA, msg, sizeof msg, sig, 32),
                     CL_ERR_AUTH);
    assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_ED25519, pk, 32, &other), CL_OK);
    assert_int_equal(c->ops->verify(c->self, other, CL_SIG_EDDSA, msg, sizeof msg, sig, 64),
                     CL_ERR_AUTH);
    assert_int_equal(c->ops->verify(c->self, other, CL_SIG_ES256, msg, sizeof msg, sig, 64),
                     CL_ERR_INVALID_ARG);
    /* Public keys: only 32 bytes. */
    {
        cl_key_t t;
        assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_ED25519, pk, 31, &t),
                         CL_ERR_BAD_INPUT);
    }
    cl_key_destroy(c, k);
    cl_key_destroy(c, other);
}

/* ------------------------------------------------------------------ ECDH */

static void ecdh_expect(const cl_crypto_t *c, cl_key_t k, const uint8_t *peer, size_t peer_len,
                        const uint8_t *expect)
{
    uint8_t z[32];
    size_t zl = 0;
    assert_int_equal(c->ops->ecdh(c->self, k, peer, peer_len, z, sizeof z, &zl), CL_OK);
    tu_assert_bytes(z, zl, expect, 32);
}

static void ecdh_refused(const cl_crypto_t *c, cl_key_t k, const uint8_t *peer, size_t peer_len)
{
    uint8_t z[32];
    size_t zl = 555;
    memset(z, SENTINEL, sizeof z);
    assert_int_equal(c->ops->ecdh(c->self, k, peer, peer_len, z, sizeof z, &zl), CL_ERR_BAD_INPUT);
    assert_true(all_byte(z, sizeof z, SENTINEL));
    assert_int_equal(zl, 555);
    assert_int_equal(ERR_peek_error(), 0); /* no OpenSSL error left behind */
}

static void test_ecdh_p256(void **state)
{
    provs_t *p = *state;
    const cl_crypto_t *c = &p->c[0];
    uint8_t pa[65], pb[65], za[32], zb[32], cmp[33], bad[65];
    size_t la = 0, lb = 0, zl = 0;
    cl_key_t a, b, t;

    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &a, pa, sizeof pa, &la),
        CL_OK);
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &b, pb, sizeof pb, &lb),
        CL_OK);
    assert_int_equal(c->ops->ecdh(c->self, a, pb, lb, za, sizeof za, &zl), CL_OK);
    assert_int_equal(zl, 32);
    assert_int_equal(c->ops->ecdh(c->self, b, pa, la, zb, sizeof zb, &zl), CL_OK);
    tu_assert_bytes(za, 32, zb, 32);
    /* Compressed and x-only forms give the same x-coordinate (x-only: +-P share x). */
    cmp[0] = (uint8_t)(0x02 | (pb[64] & 1));
    memcpy(cmp + 1, pb + 1, 32);
    ecdh_expect(c, a, cmp, 33, za);
    ecdh_expect(c, a, pb + 1, 32, za);

    /* Invalid points and encodings. */
    memcpy(bad, pb, 65);
    bad[64] ^= 1; /* off the curve */
    ecdh_refused(c, a, bad, 65);
    memset(bad + 1, 0, 64); /* (0, 0) */
    ecdh_refused(c, a, bad, 65);
    memset(cmp + 1, 0, 32);
    cmp[32] = 1; /* x = 1: x^3 - 3x + b is not a square mod p */
    cmp[0] = 0x02;
    ecdh_refused(c, a, cmp, 33);
    ecdh_refused(c, a, cmp + 1, 32);
    memcpy(bad, pb, 65);
    bad[0] = 0x06; /* hybrid form: not accepted */
    ecdh_refused(c, a, bad, 65);
    bad[0] = 0x05;
    ecdh_refused(c, a, bad, 65);
    ecdh_refused(c, a, pb, 64);
    ecdh_refused(c, a, pb, 66);
    cmp[0] = 0x04;
    memcpy(cmp + 1, pb + 1, 32);
    ecdh_refused(c, a, cmp, 33);
    bad[0] = 0x04;
    bad[64] ^= 1;
    assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_P256, bad, 65, &t),
                     CL_ERR_BAD_INPUT);

    /* Small output buffer: nothing written. */
    memset(za, SENTINEL, sizeof za);
    assert_int_equal(c->ops->ecdh(c->self, a, pb, 65, za, 31, &zl), CL_ERR_BUFFER_TOO_SMALL);
    assert_true(all_byte(za, sizeof za, SENTINEL));
    cl_key_destroy(c, a);
    cl_key_destroy(c, b);

    /* Private scalars outside [1, n-1]. */
    memset(za, 0, 32);
    assert_int_equal(
        c->ops->key_import_private(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, za, 32, &t),
        CL_ERR_BAD_INPUT);
    tu_hex(P256_N, za, 32);
    assert_int_equal(
        c->ops->key_import_private(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, za, 32, &t),
        CL_ERR_BAD_INPUT);
    assert_int_equal(
        c->ops->key_import_private(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, za, 31, &t),
        CL_ERR_BAD_INPUT);
}

/* RFC 9529 trace 2: P-256 ephemeral and static keys, peers given x-only (one with odd y). */
static void test_ecdh_p256_edhoc(void **state)
{
    provs_t *p = *state;
    cJSON *j = tu_load_vectors("edhoc-rfc9529.json");
    const cJSON *v = member(member(j, "trace_2"), "values");
    size_t n;
    uint8_t *x = tu_hexm(v, "x", &n), *y = tu_hexm(v, "y", &n);
    uint8_t *gx = tu_hexm(v, "g_x", &n), *gy = tu_hexm(v, "g_y", &n);
    uint8_t *gxy_y = tu_hexm(v, "g_x_y_coordinate", &n);
    uint8_t *gxy = tu_hexm(v, "g_xy", &n), *grx = tu_hexm(v, "g_rx", &n);
    uint8_t *giy = tu_hexm(v, "g_iy", &n);
    uint8_t *skr = tu_hexm(v, "sk_r", &n), *ski = tu_hexm(v, "sk_i", &n);
    uint8_t pub[65], exp[65];
    size_t pl = 0;

    for (int i = 0; i < 2; i++) {
        const cl_crypto_t *c = &p->c[i];
        cl_key_t kx, ky, kr, ki;
        assert_int_equal(
            c->ops->key_import_private(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, x, 32, &kx), CL_OK);
        assert_int_equal(
            c->ops->key_import_private(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, y, 32, &ky), CL_OK);
        assert_int_equal(
            c->ops->key_import_private(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, skr, 32, &kr),
            CL_OK);
        assert_int_equal(
            c->ops->key_import_private(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, ski, 32, &ki),
            CL_OK);
        /* G_X = x * G, with the y-coordinate the trace lists. */
        assert_int_equal(c->ops->key_export_public(c->self, kx, pub, sizeof pub, &pl), CL_OK);
        exp[0] = 0x04;
        memcpy(exp + 1, gx, 32);
        memcpy(exp + 33, gxy_y, 32);
        tu_assert_bytes(pub, pl, exp, 65);

        ecdh_expect(c, kx, gy, 32, gxy);
        ecdh_expect(c, ky, gx, 32, gxy); /* G_X has odd y: x-only still gives G_XY */
        ecdh_expect(c, ky, exp, 65, gxy);
        ecdh_expect(c, kr, gx, 32, grx);
        ecdh_expect(c, ki, gy, 32, giy);
        /* The derive context is reused across peers. */
        ecdh_expect(c, kx, gy, 32, gxy);
        cl_key_destroy(c, kx);
        cl_key_destroy(c, ky);
        cl_key_destroy(c, kr);
        cl_key_destroy(c, ki);
    }
    cJSON_Delete(j);
}

static void test_ecdh_x25519(void **state)
{
    provs_t *p = *state;
    const cl_crypto_t *c = &p->c[0];
    uint8_t a_sk[32], a_pk[32], b_sk[32], b_pk[32], k[32], pub[32], pa[32], pb[32], za[32], zb[32];
    size_t pl = 0, zl = 0;
    cl_key_t a, b, ga, gb;
    static const char *low_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000", /* 0 */
        "0100000000000000000000000000000000000000000000000000000000000000", /* 1 */
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", /* order 8 */
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", /* order 8 */
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p - 1 */
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p (= 0) */
    };

    /* RFC 7748 6.1. */
    tu_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a_sk, 32);
    tu_hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a", a_pk, 32);
    tu_hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b_sk, 32);
    tu_hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", b_pk, 32);
    tu_hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742", k, 32);
    for (int i = 0; i < 2; i++) {
        const cl_crypto_t *ci = &p->c[i];
        assert_int_equal(
            ci->ops->key_import_private(ci->self, CL_KEY_X25519, CL_KEY_USAGE_ECDH, a_sk, 32, &a),
            CL_OK);
        assert_int_equal(
            ci->ops->key_import_private(ci->self, CL_KEY_X25519, CL_KEY_USAGE_ECDH, b_sk, 32, &b),
            CL_OK);
        assert_int_equal(ci->ops->key_export_public(ci->self, a, pub, sizeof pub, &pl), CL_OK);
        tu_assert_bytes(pub, pl, a_pk, 32);
        assert_int_equal(ci->ops->key_export_public(ci->self, b, pub, sizeof pub, &pl), CL_OK);
        tu_assert_bytes(pub, pl, b_pk, 32);
        ecdh_expect(ci, a, b_pk, 32, k);
        ecdh_expect(ci, b, a_pk, 32, k);
        for (size_t l = 0; l < sizeof low_order / sizeof low_order[0]; l++) {
            uint8_t lo[32];
            tu_hex(low_order[l], lo, 32);
            ecdh_refused(ci, a, lo, 32);
        }
        ecdh_refused(ci, a, b_pk, 31);
        ecdh_refused(ci, a, b_pk, 33);
        cl_key_destroy(ci, a);
        cl_key_destroy(ci, b);
    }

    /* RFC 9529 trace 1. */
    {
        cJSON *j = tu_load_vectors("edhoc-rfc9529.json");
        const cJSON *v = member(member(j, "trace_1"), "values");
        size_t n;
        uint8_t *x = tu_hexm(v, "x", &n), *y = tu_hexm(v, "y", &n);
        uint8_t *gx = tu_hexm(v, "g_x", &n), *gy = tu_hexm(v, "g_y", &n);
        uint8_t *gxy = tu_hexm(v, "g_xy", &n);
        assert_int_equal(
            c->ops->key_import_private(c->self, CL_KEY_X25519, CL_KEY_USAGE_ECDH, x, 32, &a),
            CL_OK);
        assert_int_equal(
            c->ops->key_import_private(c->self, CL_KEY_X25519, CL_KEY_USAGE_ECDH, y, 32, &b),
            CL_OK);
        assert_int_equal(c->ops->key_export_public(c->self, a, pub, sizeof pub, &pl), CL_OK);
        tu_assert_bytes(pub, pl, gx, 32);
        ecdh_expect(c, a, gy, 32, gxy);
        ecdh_expect(c, b, gx, 32, gxy);
        cl_key_destroy(c, a);
        cl_key_destroy(c, b);
        cJSON_Delete(j);
    }

    /* Generated keys agree. */
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_X25519, CL_KEY_USAGE_ECDH, &ga, pa, sizeof pa, &pl),
        CL_OK);
    assert_int_equal(pl, 32);
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_X25519, CL_KEY_USAGE_ECDH, &gb, pb, sizeof pb, &pl),
        CL_OK);
    assert_int_equal(c->ops->ecdh(c->self, ga, pb, 32, za, sizeof za, &zl), CL_OK);
    assert_int_equal(c->ops->ecdh(c->self, gb, pa, 32, zb, sizeof zb, &zl), CL_OK);
    tu_assert_bytes(za, 32, zb, 32);
    /* An X25519 public key can be imported (and exported) but does nothing else. */
    {
        cl_key_t pk;
        assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_X25519, pa, 32, &pk), CL_OK);
        assert_int_equal(c->ops->key_export_public(c->self, pk, pub, sizeof pub, &pl), CL_OK);
        tu_assert_bytes(pub, pl, pa, 32);
        assert_int_equal(c->ops->ecdh(c->self, pk, pb, 32, za, sizeof za, &zl), CL_ERR_INVALID_ARG);
        cl_key_destroy(c, pk);
    }
    cl_key_destroy(c, ga);
    cl_key_destroy(c, gb);
}

/* --------------------------------------------------- usage, handles, misc */

static void test_usage_flags(void **state)
{
    provs_t *p = *state;
    const cl_crypto_t *c = &p->c[0];
    uint8_t pub[65], sig[64], z[32], key[16] = {0};
    size_t pl = 0, l = 0;
    cl_key_t s, e, v, aead;
    static const uint8_t msg[] = "m";

    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &s, pub, sizeof pub, &pl),
        CL_OK);
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &e, NULL, 0, NULL), CL_OK);
    assert_int_equal(c->ops->key_import_public(c->self, CL_KEY_P256, pub, pl, &v), CL_OK);
    /* Sign-only refuses ECDH and verify; ECDH-only refuses signing; public refuses both. */
    assert_int_equal(c->ops->ecdh(c->self, s, pub, pl, z, sizeof z, &l), CL_ERR_INVALID_ARG);
    assert_int_equal(c->ops->sign(c->self, s, CL_SIG_ES256, msg, 1, sig, sizeof sig, &l), CL_OK);
    assert_int_equal(c->ops->verify(c->self, s, CL_SIG_ES256, msg, 1, sig, 64), CL_ERR_INVALID_ARG);
    assert_int_equal(c->ops->verify(c->self, v, CL_SIG_ES256, msg, 1, sig, 64), CL_OK);
    assert_int_equal(c->ops->sign(c->self, e, CL_SIG_ES256, msg, 1, sig, sizeof sig, &l),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(c->ops->ecdh(c->self, e, pub, pl, z, sizeof z, &l), CL_OK);
    assert_int_equal(c->ops->sign(c->self, v, CL_SIG_ES256, msg, 1, sig, sizeof sig, &l),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(c->ops->ecdh(c->self, v, pub, pl, z, sizeof z, &l), CL_ERR_INVALID_ARG);

    /* Usage not allowed for the type, none at all, unknown type. */
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_X25519, CL_KEY_USAGE_SIGN, &s, NULL, 0, NULL),
        CL_ERR_INVALID_ARG);
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_ED25519, CL_KEY_USAGE_ECDH, &s, NULL, 0, NULL),
        CL_ERR_INVALID_ARG);
    assert_int_equal(c->ops->key_generate(c->self, CL_KEY_P256, 0, &s, NULL, 0, NULL),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(c->ops->key_generate(c->self, CL_KEY_P256, 0x80, &s, NULL, 0, NULL),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(
        c->ops->key_generate(c->self, (cl_key_type_t)2, CL_KEY_USAGE_ECDH, &s, NULL, 0, NULL),
        CL_ERR_UNSUPPORTED);
    assert_int_equal(
        c->ops->key_import_private(c->self, CL_KEY_X25519, CL_KEY_USAGE_VERIFY, z, 32, &s),
        CL_ERR_INVALID_ARG);

    /* Keys of the other family. */
    assert_int_equal(cl_aead_import(c, CL_AEAD_AES_CCM_16_64_128, key, 16, &aead), CL_OK);
    assert_int_equal(c->ops->sign(c->self, aead, CL_SIG_ES256, msg, 1, sig, sizeof sig, &l),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(c->ops->key_export_public(c->self, aead, pub, sizeof pub, &l),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_aead_encrypt(c, e, key, 13, NULL, 0, NULL, 0, sig, sizeof sig, &l),
                     CL_ERR_INVALID_ARG);
    cl_key_destroy(c, aead);
    cl_key_destroy(c, e);
    cl_key_destroy(c, v);
}

static void test_handles(void **state)
{
    provs_t *p = *state;
    const cl_crypto_t *c = &p->c[0];
    uint8_t key[16] = {1}, nonce[13] = {2}, out[32], pub[65];
    size_t l = 0;
    cl_key_t k, k2, keys[1000];
    cl_crypto_t other[2];

    /* 0 is never a key. */
    assert_int_equal(
        cl_aead_encrypt(c, CL_KEY_NONE, nonce, 13, NULL, 0, NULL, 0, out, sizeof out, &l),
        CL_ERR_NOT_FOUND);
    assert_int_equal(c->ops->key_export_public(c->self, CL_KEY_NONE, pub, sizeof pub, &l),
                     CL_ERR_NOT_FOUND);
    assert_int_equal(c->ops->sign(c->self, CL_KEY_NONE, CL_SIG_EDDSA, key, 1, pub, sizeof pub, &l),
                     CL_ERR_NOT_FOUND);
    assert_int_equal(c->ops->ecdh(c->self, CL_KEY_NONE, pub, 32, out, sizeof out, &l),
                     CL_ERR_NOT_FOUND);
    cl_key_destroy(c, CL_KEY_NONE); /* ignored */

    /* Stale after destroy, even when the slot is reused. */
    assert_int_equal(cl_aead_import(c, CL_AEAD_AES_CCM_16_64_128, key, 16, &k), CL_OK);
    assert_int_equal(cl_aead_encrypt(c, k, nonce, 13, NULL, 0, NULL, 0, out, sizeof out, &l),
                     CL_OK);
    cl_key_destroy(c, k);
    assert_int_equal(cl_aead_encrypt(c, k, nonce, 13, NULL, 0, NULL, 0, out, sizeof out, &l),
                     CL_ERR_NOT_FOUND);
    cl_key_destroy(c, k); /* twice: ignored */

    /* Many keys: the table grows, every handle is distinct and live, then all go stale. */
    for (int i = 0; i < 1000; i++) {
        key[1] = (uint8_t)i;
        assert_int_equal(cl_aead_import(c, CL_AEAD_AES_CCM_16_64_128, key, 16, &keys[i]), CL_OK);
        assert_int_not_equal(keys[i], k);
        for (int j = 0; j < i; j += 97)
            assert_int_not_equal(keys[i], keys[j]);
    }
    for (int i = 0; i < 1000; i += 111)
        assert_int_equal(
            cl_aead_encrypt(c, keys[i], nonce, 13, NULL, 0, NULL, 0, out, sizeof out, &l), CL_OK);
    for (int i = 0; i < 1000; i++)
        cl_key_destroy(c, keys[i]);
    for (int i = 0; i < 1000; i += 37)
        assert_int_equal(
            cl_aead_encrypt(c, keys[i], nonce, 13, NULL, 0, NULL, 0, out, sizeof out, &l),
            CL_ERR_NOT_FOUND);
    assert_int_equal(cl_aead_import(c, CL_AEAD_AES_CCM_16_64_128, key, 16, &k2), CL_OK);
    for (int i = 0; i < 1000; i++)
        assert_int_not_equal(k2, keys[i]);
    assert_int_not_equal(k2, k);

    /*
     * A handle of another instance: refused unless the two random salts
     * collide (2^-16), so two instances are tried (2^-32 to flake).
     */
    {
        int refused = 0;
        for (int i = 0; i < 2; i++) {
            cl_key_t mine;
            tu_crypto(&other[i], 0);
            assert_int_equal(cl_aead_import(&other[i], CL_AEAD_AES_CCM_16_64_128, key, 16, &mine),
                             CL_OK);
            refused += cl_aead_encrypt(&other[i], k2, nonce, 13, NULL, 0, NULL, 0, out, sizeof out,
                                       &l) == CL_ERR_NOT_FOUND;
            cl_crypto_openssl_free(&other[i]); /* destroys `mine` too */
        }
        assert_true(refused >= 1);
    }
    cl_key_destroy(c, k2);
}

static void test_short_buffers(void **state)
{
    provs_t *p = *state;
    const cl_crypto_t *c = &p->c[1];
    uint8_t pub[65], sig[64];
    size_t l = 4242;
    cl_key_t k, e;

    memset(pub, SENTINEL, sizeof pub);
    assert_int_equal(c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &k, pub, 64, &l),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_true(all_byte(pub, sizeof pub, SENTINEL));
    assert_int_equal(l, 4242);
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &k, NULL, 0, NULL), CL_OK);
    assert_int_equal(c->ops->key_export_public(c->self, k, pub, 64, &l), CL_ERR_BUFFER_TOO_SMALL);
    assert_true(all_byte(pub, sizeof pub, SENTINEL));
    memset(sig, SENTINEL, sizeof sig);
    assert_int_equal(c->ops->sign(c->self, k, CL_SIG_ES256, pub, 3, sig, 63, &l),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_true(all_byte(sig, sizeof sig, SENTINEL));
    assert_int_equal(l, 4242);
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_ED25519, CL_KEY_USAGE_SIGN, &e, pub, 31, &l),
        CL_ERR_BUFFER_TOO_SMALL);
    assert_true(all_byte(pub, sizeof pub, SENTINEL));
    assert_int_equal(
        c->ops->key_generate(c->self, CL_KEY_ED25519, CL_KEY_USAGE_SIGN, &e, pub, 32, &l), CL_OK);
    assert_int_equal(l, 32);
    assert_int_equal(c->ops->key_export_public(c->self, e, sig, 31, &l), CL_ERR_BUFFER_TOO_SMALL);
    cl_key_destroy(c, k);
    cl_key_destroy(c, e);
}

static void test_instance(void **state)
{
    provs_t *p = *state;
    cl_crypto_t z, t;
    uint8_t r1[32], r2[32];

    /* Name, version, fast path. */
    assert_int_equal(p->c[1].ops->version, CL_CRYPTO_OPS_VERSION);
    assert_string_equal(p->c[1].ops->name, "openssl");
    assert_false(cl_crypto_openssl_has_fastpath(&p->c[1]));
    if (cl_crypto_openssl_has_fastpath(&p->c[0]))
        assert_string_equal(p->c[0].ops->name, "openssl+aesni");
    else
        assert_string_equal(p->c[0].ops->name, "openssl");
    print_message("fast path: %s\n", p->c[0].ops->name);

    /* Free: zeroed, twice, NULL; a fresh instance with keys left in it. */
    memset(&z, 0, sizeof z);
    cl_crypto_openssl_free(&z);
    cl_crypto_openssl_free(NULL);
    assert_false(cl_crypto_openssl_has_fastpath(&z));
    tu_crypto(&t, 0);
    {
        cl_key_t k;
        uint8_t key[16] = {0};
        assert_int_equal(cl_aead_import(&t, CL_AEAD_A128GCM, key, 16, &k), CL_OK);
        assert_int_equal(
            t.ops->key_generate(t.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &k, NULL, 0, NULL), CL_OK);
    }
    cl_crypto_openssl_free(&t);
    assert_null(t.ops);
    assert_null(t.self);
    cl_crypto_openssl_free(&t);
    assert_int_equal(cl_crypto_openssl_new(&t, 0x80), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_crypto_openssl_new(NULL, 0), CL_ERR_INVALID_ARG);

    /* Random. */
    assert_int_equal(cl_random(&p->c[0], r1, sizeof r1), CL_OK);
    assert_int_equal(cl_random(&p->c[0], r2, sizeof r2), CL_OK);
    assert_memory_not_equal(r1, r2, sizeof r1);
    assert_int_equal(cl_random(&p->c[0], NULL, 0), CL_OK);
    assert_int_equal(cl_random(&p->c[0], NULL, 1), CL_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ccm_rfc3610),
        cmocka_unit_test(test_ccm_cose_examples),
        cmocka_unit_test(test_gcm_hpke),
        cmocka_unit_test(test_aead_empty),
        cmocka_unit_test(test_aead_paths_agree),
        cmocka_unit_test(test_aead_args),
        cmocka_unit_test(test_sha256_hmac),
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_es256),
        cmocka_unit_test(test_es256_cose_kat),
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_ecdh_p256),
        cmocka_unit_test(test_ecdh_p256_edhoc),
        cmocka_unit_test(test_ecdh_x25519),
        cmocka_unit_test(test_usage_flags),
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_short_buffers),
        cmocka_unit_test(test_instance),
    };
    return cmocka_run_group_tests(tests, setup_provs, teardown_provs);
}
