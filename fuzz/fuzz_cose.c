/*
 * fuzz_cose.c - libFuzzer harness for COSE_Encrypt0 / COSE_Sign1 (lib/cose.c).
 *
 * The input is parsed as both message types. For an accepted message the
 * harness checks (abort() on failure) that the parts point into the input,
 * that header lookups return one well-formed item inside the bucket, that the
 * Enc_structure / Sig_structure builders size exactly what they write and
 * that what they write decodes back to its inputs, and that re-building the
 * message through encrypt0_encrypt / sign1_sign parses back to the same
 * headers and content. Cryptography is a deterministic stand-in provider
 * (XOR "cipher" with a checksum tag, checksum "signature") so the harness
 * exercises the COSE code and not OpenSSL, and needs no keys; decrypting or
 * verifying the fuzzed message itself must fail cleanly or succeed, never crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/cose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define FAKE_TAG 8

/* 64-bit FNV-1a, chained over two buffers; seed varies the output. */
static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void put64(uint8_t *out, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)v;
        v >>= 8;
    }
}

static cl_status_t fake_encrypt(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                                size_t pt_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    (void)self;
    (void)key;
    if (out_size < pt_len + FAKE_TAG)
        return CL_ERR_BUFFER_TOO_SMALL;
    for (size_t i = 0; i < pt_len; i++)
        out[i] = pt[i] ^ 0x5a;
    uint64_t h = fnv(fnv(fnv(0xcbf29ce484222325ull, nonce, nonce_len), aad, aad_len), out, pt_len);
    put64(out + pt_len, h);
    *out_len = pt_len + FAKE_TAG;
    return CL_OK;
}

static cl_status_t fake_decrypt(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                const uint8_t *aad, size_t aad_len, const uint8_t *in,
                                size_t in_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t tag[FAKE_TAG];
    (void)self;
    (void)key;
    if (in_len < FAKE_TAG)
        return CL_ERR_AUTH;
    if (out_size < in_len - FAKE_TAG)
        return CL_ERR_BUFFER_TOO_SMALL;
    uint64_t h =
        fnv(fnv(fnv(0xcbf29ce484222325ull, nonce, nonce_len), aad, aad_len), in, in_len - FAKE_TAG);
    put64(tag, h);
    if (memcmp(tag, in + in_len - FAKE_TAG, FAKE_TAG) != 0)
        return CL_ERR_AUTH;
    for (size_t i = 0; i < in_len - FAKE_TAG; i++)
        out[i] = in[i] ^ 0x5a;
    *out_len = in_len - FAKE_TAG;
    return CL_OK;
}

static void fake_sig(cl_sig_alg_t alg, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    uint64_t h = fnv(0xcbf29ce484222325ull ^ (uint64_t)(int64_t)alg, msg, len);
    for (int i = 0; i < 8; i++) {
        put64(sig + 8 * i, h);
        h = fnv(h, sig + 8 * i, 8);
    }
}

static cl_status_t fake_sign(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                             size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len)
{
    (void)self;
    (void)priv;
    if (sig_size < 64)
        return CL_ERR_BUFFER_TOO_SMALL;
    fake_sig(alg, msg, msg_len, sig);
    *sig_len = 64;
    return CL_OK;
}

static cl_status_t fake_verify(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                               size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    uint8_t want[64];
    (void)self;
    (void)pub;
    if (sig_len != 64)
        return CL_ERR_AUTH;
    fake_sig(alg, msg, msg_len, want);
    return memcmp(want, sig, 64) == 0 ? CL_OK : CL_ERR_AUTH;
}

static const cl_crypto_ops_t fake_ops = {
    .version = CL_CRYPTO_OPS_VERSION,
    .name = "fuzz-fake",
    .aead_encrypt = fake_encrypt,
    .aead_decrypt = fake_decrypt,
    .sign = fake_sign,
    .verify = fake_verify,
};

static bool inside(const uint8_t *p, size_t n, const uint8_t *base, size_t size)
{
    if (p == NULL)
        return n == 0;
    return p >= base && p <= base + size && n <= (size_t)(base + size - p);
}

static bool same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Header lookups in one bucket: a found value is one item inside the map. */
static void check_bucket(const uint8_t *map, size_t len, const uint8_t *data, size_t size)
{
    static const int64_t labels[] = {1, 2, 3, 4, 5, 6, 10, 33, 34, -1, 0, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        const uint8_t *v = NULL;
        size_t vlen = 0, cnt = 0;
        cl_status_t rc = cl_cose_header_find(map, len, labels[i], &v, &vlen);
        CHECK(rc == CL_OK || rc == CL_ERR_NOT_FOUND || rc == CL_ERR_BAD_INPUT ||
              rc == CL_ERR_UNSUPPORTED);
        if (rc != CL_OK)
            continue;
        CHECK(inside(v, vlen, map, len) && inside(v, vlen, data, size));
        CHECK(cl_cbor_validate_seq(v, vlen, &cnt) == CL_OK && cnt == 1);
    }
}

/* The builders: counted size == written size, and the output decodes to its inputs. */
static void check_structures(const cl_cose_msg_t *m, const uint8_t *aad, size_t aad_len)
{
    uint8_t *buf;
    size_t need = 0, len = 0, n;
    cl_cbor_dec_t d;
    const uint8_t *p;
    const char *s;
    const uint8_t *prot = m->protected_hdr;
    size_t prot_len = m->protected_len;
    const uint8_t *payload = m->content;
    size_t payload_len = m->content_len;

    if (prot_len == 1 && prot[0] == 0xa0)
        prot_len = 0; /* h'a0' is carried as h'' */

    CHECK(cl_cose_enc_structure(NULL, 0, &need, "Encrypt0", m->protected_hdr, m->protected_len, aad,
                                aad_len) == CL_OK);
    buf = malloc(need);
    CHECK(buf != NULL);
    if (need > 0)
        CHECK(cl_cose_enc_structure(buf, need - 1, &len, "Encrypt0", m->protected_hdr,
                                    m->protected_len, aad, aad_len) == CL_ERR_BUFFER_TOO_SMALL);
    CHECK(cl_cose_enc_structure(buf, need, &len, "Encrypt0", m->protected_hdr, m->protected_len,
                                aad, aad_len) == CL_OK);
    CHECK(len == need);
    cl_cbor_dec_init(&d, buf, len);
    CHECK(cl_cbor_dec_array(&d, &n) == CL_OK && n == 3);
    CHECK(cl_cbor_dec_tstr(&d, &s, &n) == CL_OK && n == 8 && memcmp(s, "Encrypt0", 8) == 0);
    CHECK(cl_cbor_dec_bstr(&d, &p, &n) == CL_OK && same(p, n, prot, prot_len));
    CHECK(cl_cbor_dec_bstr(&d, &p, &n) == CL_OK && same(p, n, aad, aad_len));
    CHECK(cl_cbor_dec_at_end(&d));
    free(buf);

    CHECK(cl_cose_sig_structure(NULL, 0, &need, m->protected_hdr, m->protected_len, aad, aad_len,
                                payload, payload_len) == CL_OK);
    buf = malloc(need);
    CHECK(buf != NULL);
    CHECK(cl_cose_sig_structure(buf, need, &len, m->protected_hdr, m->protected_len, aad, aad_len,
                                payload, payload_len) == CL_OK);
    CHECK(len == need);
    cl_cbor_dec_init(&d, buf, len);
    CHECK(cl_cbor_dec_array(&d, &n) == CL_OK && n == 4);
    CHECK(cl_cbor_dec_tstr(&d, &s, &n) == CL_OK && n == 10 && memcmp(s, "Signature1", 10) == 0);
    CHECK(cl_cbor_dec_bstr(&d, &p, &n) == CL_OK && same(p, n, prot, prot_len));
    CHECK(cl_cbor_dec_bstr(&d, &p, &n) == CL_OK && same(p, n, aad, aad_len));
    CHECK(cl_cbor_dec_bstr(&d, &p, &n) == CL_OK && same(p, n, payload, payload_len));
    CHECK(cl_cbor_dec_at_end(&d));
    free(buf);
}

static void check_encrypt0(const cl_cose_msg_t *m, const uint8_t *data, size_t size,
                           const cl_crypto_t *c)
{
    static const uint8_t nonce[13] = {1, 2, 3};
    const uint8_t *aad = data;
    size_t aad_len = size < 7 ? size : 7;
    size_t cap = size + 64, len = 0, ptlen = 0;
    uint8_t *out = malloc(cap), *pt = malloc(cap);
    cl_cose_msg_t m2;
    cl_status_t rc;

    CHECK(out != NULL && pt != NULL);
    /* the fuzzed message itself: succeeds or fails cleanly */
    rc = cl_cose_encrypt0_decrypt(c, 1, nonce, sizeof nonce, m, aad, aad_len, pt, cap, &ptlen);
    CHECK(rc == CL_OK || rc == CL_ERR_AUTH || rc == CL_ERR_UNSUPPORTED || rc == CL_ERR_LIMIT);
    if (rc == CL_OK)
        CHECK(ptlen + FAKE_TAG == m->content_len);

    /* rebuild it around the same headers; it parses back to them */
    rc = cl_cose_encrypt0_encrypt(c, 1, nonce, sizeof nonce, m->protected_hdr, m->protected_len,
                                  m->unprotected, m->unprotected_len, aad, aad_len, m->content,
                                  m->content_len, m->tagged, out, cap, &len);
    if (rc == CL_OK) {
        CHECK(len <= cap);
        CHECK(cl_cose_encrypt0_parse(&m2, out, len) == CL_OK);
        CHECK(m2.tagged == m->tagged);
        CHECK(same(m2.protected_hdr, m2.protected_len, m->protected_hdr, m->protected_len));
        CHECK(same(m2.unprotected, m2.unprotected_len, m->unprotected, m->unprotected_len));
        CHECK(m2.content_len == m->content_len + FAKE_TAG);
        CHECK(cl_cose_encrypt0_decrypt(c, 1, nonce, sizeof nonce, &m2, aad, aad_len, pt, cap,
                                       &ptlen) == CL_OK);
        CHECK(same(pt, ptlen, m->content, m->content_len));
        /* a flipped bit in the protected bucket or the ciphertext is caught */
        if (m2.content_len > 0) {
            out[len - 1] ^= 1;
            CHECK(cl_cose_encrypt0_decrypt(c, 1, nonce, sizeof nonce, &m2, aad, aad_len, pt, cap,
                                           &ptlen) == CL_ERR_AUTH);
        }
        /* too small an output buffer is refused */
        size_t len2 = 0;
        CHECK(cl_cose_encrypt0_encrypt(c, 1, nonce, sizeof nonce, m->protected_hdr,
                                       m->protected_len, m->unprotected, m->unprotected_len, aad,
                                       aad_len, m->content, m->content_len, m->tagged, out, len - 1,
                                       &len2) == CL_ERR_BUFFER_TOO_SMALL);
    } else {
        CHECK(rc == CL_ERR_LIMIT || rc == CL_ERR_INVALID_ARG);
    }
    free(out);
    free(pt);
}

static void check_sign1(const cl_cose_msg_t *m, const uint8_t *data, size_t size,
                        const cl_crypto_t *c)
{
    size_t cap = size + 128, len = 0;
    uint8_t *out = malloc(cap);
    cl_cose_msg_t m2;
    cl_status_t rc;
    int64_t alg = CL_SIG_EDDSA;
    cl_sig_alg_t sa;

    (void)data;
    CHECK(out != NULL);
    if (cl_cose_header_alg(m, &alg) != CL_OK)
        alg = CL_SIG_EDDSA;
    sa = alg == CL_SIG_ES256 ? CL_SIG_ES256 : CL_SIG_EDDSA;

    rc = cl_cose_sign1_verify(c, 1, sa, m, NULL, 0, NULL, 0);
    CHECK(rc == CL_OK || rc == CL_ERR_AUTH || rc == CL_ERR_BAD_INPUT || rc == CL_ERR_LIMIT);
    if (m->content == NULL)
        CHECK(rc != CL_OK);

    rc = cl_cose_sign1_sign(c, 1, sa, m->protected_hdr, m->protected_len, m->unprotected,
                            m->unprotected_len, NULL, 0, m->content, m->content_len, m->tagged, out,
                            cap, &len);
    if (rc == CL_OK) {
        CHECK(cl_cose_sign1_parse(&m2, out, len) == CL_OK);
        CHECK(m2.tagged == m->tagged);
        CHECK(same(m2.protected_hdr, m2.protected_len, m->protected_hdr, m->protected_len));
        CHECK(same(m2.unprotected, m2.unprotected_len, m->unprotected, m->unprotected_len));
        CHECK(same(m2.content, m2.content_len, m->content, m->content_len));
        CHECK(m2.signature_len == 64);
        rc = cl_cose_sign1_verify(c, 1, sa, &m2, NULL, 0, NULL, 0);
        /* only a message that names the algorithm verifies */
        int64_t a2;
        if (cl_cose_header_alg(&m2, &a2) == CL_OK)
            CHECK(rc == CL_OK);
        else
            CHECK(rc != CL_OK);
        /* the other algorithm never verifies */
        CHECK(cl_cose_sign1_verify(c, 1, sa == CL_SIG_ES256 ? CL_SIG_EDDSA : CL_SIG_ES256, &m2,
                                   NULL, 0, NULL, 0) != CL_OK);
        /* nor does another external_aad */
        CHECK(cl_cose_sign1_verify(c, 1, sa, &m2, (const uint8_t *)"x", 1, NULL, 0) != CL_OK);
    } else {
        CHECK(rc == CL_ERR_LIMIT || rc == CL_ERR_INVALID_ARG);
    }
    free(out);
}

static void check_msg(const cl_cose_msg_t *m, const uint8_t *data, size_t size, bool sign1,
                      const cl_crypto_t *c)
{
    int64_t alg;
    cl_status_t rc;

    CHECK(inside(m->protected_hdr, m->protected_len, data, size));
    CHECK(inside(m->unprotected, m->unprotected_len, data, size));
    CHECK(inside(m->content, m->content_len, data, size));
    CHECK(inside(m->signature, m->signature_len, data, size));
    CHECK(m->unprotected != NULL && m->unprotected_len > 0);
    CHECK(sign1 == (m->signature != NULL));
    check_bucket(m->protected_hdr, m->protected_len, data, size);
    check_bucket(m->unprotected, m->unprotected_len, data, size);
    rc = cl_cose_header_alg(m, &alg);
    CHECK(rc == CL_OK || rc == CL_ERR_NOT_FOUND || rc == CL_ERR_BAD_INPUT ||
          rc == CL_ERR_UNSUPPORTED);
    check_structures(m, data, size < 5 ? size : 5);
    if (sign1)
        check_sign1(m, data, size, c);
    else
        check_encrypt0(m, data, size, c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cl_crypto_t c = {.ops = &fake_ops, .self = NULL};
    cl_cose_msg_t m;

    if (cl_cose_encrypt0_parse(&m, data, size) == CL_OK)
        check_msg(&m, data, size, false, &c);
    if (cl_cose_sign1_parse(&m, data, size) == CL_OK)
        check_msg(&m, data, size, true, &c);
    /* the header lookup on raw input, as a standalone map parser */
    check_bucket(data, size, data, size);
    return 0;
}
