/*
 * test_hpke.c - HPKE (lib/hpke.c) against RFC 9180 Appendix A, and the
 * ChaCha20-Poly1305 AEAD of the OpenSSL provider it needs.
 *
 * Vectors: every vector of tests/vectors/hpke-rfc9180.json (A.1 X25519 /
 * AES-128-GCM, A.2 X25519 / ChaCha20-Poly1305, A.3 P-256 / AES-128-GCM; all
 * four modes) and of hpke-rfc9180-extra.json (A.5 P-256 / ChaCha20-Poly1305,
 * A.7 X25519 / export-only). For each: the imported skEm / skRm / skSm give
 * pkEm / pkRm / pkSm; DeriveKeyPair(ikmE / ikmR / ikmS) gives the same public
 * keys and keys that work like the vector's; the sender (with skEm fixed)
 * produces enc byte for byte; both contexts hold the vector's base_nonce and
 * exporter_secret, and an AEAD key that encrypts like the vector's key;
 * every listed ciphertext is produced and opened at its sequence number
 * (the numbers in between are used up with other messages); every export
 * value is reproduced on both sides; the single-shot open of the first
 * ciphertext succeeds with the derived recipient key. shared_secret is
 * checked through everything derived from it.
 *
 * Negative cases: tampered ciphertext / AAD / info / psk, wrong enc,
 * wrong recipient key, wrong sender key or mode in auth, truncation,
 * reordering, sequence-number exhaustion, invalid P-256 points (off the
 * curve, coordinate >= p, other encodings), low-order X25519 points, an
 * all-zero DH output from a provider that lets it through, unsupported
 * suite and mode ids, inconsistent PSK inputs, limits, key handles of the
 * wrong type, short buffers, role misuse; a provider fault injected at
 * every call of every setup path must leave no key behind and the context
 * zeroed. Round trips with fresh keys run every KEM x AEAD x mode.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cloister/crypto_openssl.h"
#include "cloister/hpke.h"

static cl_crypto_t crypto;  /* default instance (AES-NI CCM fast path when available) */
static cl_crypto_t crypto2; /* CL_CRYPTO_OPENSSL_NO_FASTPATH */

static const uint8_t info_default[] = "Cloister HPKE test info";

/* ----------------------------------------------------------- helpers */

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

static int all_byte(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static cl_hpke_suite_t suite_of(uint16_t kem, uint16_t aead)
{
    cl_hpke_suite_t s = {kem, CL_HPKE_KDF_HKDF_SHA256, aead};
    return s;
}

static cl_key_type_t key_type_of(uint16_t kem)
{
    return kem == CL_HPKE_KEM_P256_SHA256 ? CL_KEY_P256 : CL_KEY_X25519;
}

static cl_aead_alg_t aead_alg_of(uint16_t aead)
{
    return aead == CL_HPKE_AEAD_AES_128_GCM ? CL_AEAD_A128GCM : CL_AEAD_CHACHA20_POLY1305;
}

static cl_key_t gen_key(const cl_crypto_t *c, uint16_t kem, uint8_t *pub, size_t *pub_len)
{
    cl_key_t k = CL_KEY_NONE;
    size_t l = 0;
    assert_int_equal(
        c->ops->key_generate(c->self, key_type_of(kem), CL_KEY_USAGE_ECDH, &k, pub, CL_PUB_MAX, &l),
        CL_OK);
    if (pub_len != NULL)
        *pub_len = l;
    return k;
}

static cl_key_t import_priv(const cl_crypto_t *c, uint16_t kem, const uint8_t *sk, size_t len)
{
    cl_key_t k = CL_KEY_NONE;
    assert_int_equal(
        c->ops->key_import_private(c->self, key_type_of(kem), CL_KEY_USAGE_ECDH, sk, len, &k),
        CL_OK);
    return k;
}

static void assert_pub(const cl_crypto_t *c, cl_key_t k, const uint8_t *want, size_t want_len)
{
    uint8_t pub[CL_PUB_MAX];
    size_t l = 0;
    assert_int_equal(c->ops->key_export_public(c->self, k, pub, sizeof pub, &l), CL_OK);
    tu_assert_bytes(pub, l, want, want_len);
}

/* Encrypts a probe with `handle` and with `want` imported fresh: equal output means equal keys. */
static void assert_same_key(const cl_crypto_t *c, cl_key_t handle, cl_aead_alg_t alg,
                            const uint8_t *want, size_t len)
{
    static const uint8_t nonce[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    static const uint8_t probe[16] = "probe-plaintext";
    uint8_t a[32], b[32];
    size_t alen = 0, blen = 0;
    cl_key_t k = CL_KEY_NONE;

    assert_int_equal(cl_aead_import(c, alg, want, len, &k), CL_OK);
    assert_int_equal(cl_aead_encrypt(c, handle, nonce, 12, NULL, 0, probe, 16, a, sizeof a, &alen),
                     CL_OK);
    assert_int_equal(cl_aead_encrypt(c, k, nonce, 12, NULL, 0, probe, 16, b, sizeof b, &blen),
                     CL_OK);
    tu_assert_bytes(a, alen, b, blen);
    cl_key_destroy(c, k);
}

/* A context set up on both sides for quick negative tests. */
typedef struct pair {
    const cl_crypto_t *c;
    cl_hpke_params_t p;
    cl_key_t sk_r, sk_s;
    uint8_t pk_r[CL_PUB_MAX], pk_s[CL_PUB_MAX];
    size_t pk_r_len, pk_s_len;
    uint8_t enc[CL_HPKE_MAX_ENC];
    size_t enc_len;
    cl_hpke_ctx_t s, r;
} pair_t;

static void pair_init(pair_t *x, const cl_crypto_t *c, uint16_t kem, uint16_t aead, uint8_t mode)
{
    static const uint8_t psk[32] = "0123456789abcdef0123456789abcdef";
    static const uint8_t psk_id[] = "psk-id";

    memset(x, 0, sizeof *x);
    x->c = c;
    x->sk_r = gen_key(c, kem, x->pk_r, &x->pk_r_len);
    x->sk_s = gen_key(c, kem, x->pk_s, &x->pk_s_len);
    x->p.suite = suite_of(kem, aead);
    x->p.mode = mode;
    x->p.info = info_default;
    x->p.info_len = sizeof info_default - 1;
    if (mode == CL_HPKE_MODE_PSK || mode == CL_HPKE_MODE_AUTH_PSK) {
        x->p.psk = psk;
        x->p.psk_len = sizeof psk;
        x->p.psk_id = psk_id;
        x->p.psk_id_len = sizeof psk_id - 1;
    }
    if (mode == CL_HPKE_MODE_AUTH || mode == CL_HPKE_MODE_AUTH_PSK) {
        x->p.sender_key = x->sk_s;
        x->p.sender_pub = x->pk_s;
        x->p.sender_pub_len = x->pk_s_len;
    }
    assert_int_equal(
        cl_hpke_setup_s(&x->s, c, &x->p, x->pk_r, x->pk_r_len, x->enc, sizeof x->enc, &x->enc_len),
        CL_OK);
    assert_int_equal(x->enc_len, cl_hpke_enc_len(kem));
    assert_int_equal(cl_hpke_setup_r(&x->r, c, &x->p, x->sk_r, x->enc, x->enc_len), CL_OK);
}

static void pair_free(pair_t *x)
{
    cl_hpke_ctx_free(&x->s);
    cl_hpke_ctx_free(&x->r);
    cl_key_destroy(x->c, x->sk_r);
    cl_key_destroy(x->c, x->sk_s);
}

/* ------------------------------------------------------------ vectors */

typedef struct counts {
    int vectors, encryptions, exports;
} counts_t;

static const char *suite_name(uint16_t kem, uint16_t aead)
{
    if (kem == CL_HPKE_KEM_X25519_SHA256)
        return aead == CL_HPKE_AEAD_AES_128_GCM         ? "X25519/AES-128-GCM"
               : aead == CL_HPKE_AEAD_CHACHA20_POLY1305 ? "X25519/ChaCha20Poly1305"
                                                        : "X25519/export-only";
    return aead == CL_HPKE_AEAD_AES_128_GCM ? "P-256/AES-128-GCM" : "P-256/ChaCha20Poly1305";
}

/* Checks a context's secrets against the vector. */
static void check_ctx(const cl_crypto_t *c, const cl_hpke_ctx_t *ctx, const cJSON *v, uint16_t aead)
{
    size_t key_len, bn_len, es_len;
    uint8_t *key = tu_hexm(v, "key", &key_len);
    uint8_t *bn = tu_hexm(v, "base_nonce", &bn_len);
    uint8_t *es = tu_hexm(v, "exporter_secret", &es_len);

    tu_assert_bytes(ctx->exporter_secret, sizeof ctx->exporter_secret, es, es_len);
    if (aead == CL_HPKE_AEAD_EXPORT_ONLY) {
        assert_int_equal(key_len, 0);
        assert_int_equal(bn_len, 0);
        assert_int_equal(ctx->key, CL_KEY_NONE);
        assert_true(all_zero(ctx->base_nonce, sizeof ctx->base_nonce));
        return;
    }
    tu_assert_bytes(ctx->base_nonce, sizeof ctx->base_nonce, bn, bn_len);
    assert_same_key(c, ctx->key, aead_alg_of(aead), key, key_len);
}

static void run_vector(const cl_crypto_t *c, const cJSON *v, counts_t *n)
{
    uint16_t kem = (uint16_t)cJSON_GetObjectItemCaseSensitive(v, "kem_id")->valueint;
    uint16_t kdf = (uint16_t)cJSON_GetObjectItemCaseSensitive(v, "kdf_id")->valueint;
    uint16_t aead = (uint16_t)cJSON_GetObjectItemCaseSensitive(v, "aead_id")->valueint;
    uint8_t mode = (uint8_t)cJSON_GetObjectItemCaseSensitive(v, "mode")->valueint;
    int auth = mode == CL_HPKE_MODE_AUTH || mode == CL_HPKE_MODE_AUTH_PSK;
    size_t l_info, l_psk, l_pskid, l_ske, l_pke, l_skr, l_pkr, l_sks, l_pks, l_enc;
    size_t l_ikme, l_ikmr, l_ikms;
    uint8_t *info = tu_hexm(v, "info", &l_info);
    uint8_t *psk = tu_hexm(v, "psk", &l_psk);
    uint8_t *psk_id = tu_hexm(v, "psk_id", &l_pskid);
    uint8_t *ske = tu_hexm(v, "skEm", &l_ske);
    uint8_t *pke = tu_hexm(v, "pkEm", &l_pke);
    uint8_t *skr = tu_hexm(v, "skRm", &l_skr);
    uint8_t *pkr = tu_hexm(v, "pkRm", &l_pkr);
    uint8_t *sks = tu_hexm(v, "skSm", &l_sks);
    uint8_t *pks = tu_hexm(v, "pkSm", &l_pks);
    uint8_t *enc_v = tu_hexm(v, "enc", &l_enc);
    uint8_t *ikme = tu_hexm(v, "ikmE", &l_ikme);
    uint8_t *ikmr = tu_hexm(v, "ikmR", &l_ikmr);
    uint8_t *ikms = tu_hexm(v, "ikmS", &l_ikms);
    const cJSON *encs = cJSON_GetObjectItemCaseSensitive(v, "encryptions");
    const cJSON *exps = cJSON_GetObjectItemCaseSensitive(v, "exports");
    cl_key_t k_e, k_r, k_s = CL_KEY_NONE, d_e, d_r, d_s = CL_KEY_NONE;
    cl_hpke_params_t p;
    cl_hpke_ctx_t s, r, s2;
    uint8_t enc[CL_HPKE_MAX_ENC], pub[CL_PUB_MAX], buf[512], out[512];
    size_t enc_len = 0, pub_len = 0, len = 0, olen = 0;
    const cJSON *e;
    int next_seq = 0;

    assert_int_equal(kdf, CL_HPKE_KDF_HKDF_SHA256);
    assert_int_equal(l_enc, cl_hpke_enc_len(kem));

    /* Keys: imported, and derived from ikm (DeriveKeyPair). */
    k_e = import_priv(c, kem, ske, l_ske);
    k_r = import_priv(c, kem, skr, l_skr);
    assert_pub(c, k_e, pke, l_pke);
    assert_pub(c, k_r, pkr, l_pkr);
    assert_int_equal(cl_hpke_derive_key_pair(c, kem, ikme, l_ikme, &d_e, pub, sizeof pub, &pub_len),
                     CL_OK);
    tu_assert_bytes(pub, pub_len, pke, l_pke);
    assert_int_equal(cl_hpke_derive_key_pair(c, kem, ikmr, l_ikmr, &d_r, pub, sizeof pub, &pub_len),
                     CL_OK);
    tu_assert_bytes(pub, pub_len, pkr, l_pkr);
    if (auth) {
        k_s = import_priv(c, kem, sks, l_sks);
        assert_pub(c, k_s, pks, l_pks);
        assert_int_equal(
            cl_hpke_derive_key_pair(c, kem, ikms, l_ikms, &d_s, pub, sizeof pub, &pub_len), CL_OK);
        tu_assert_bytes(pub, pub_len, pks, l_pks);
    }

    memset(&p, 0, sizeof p);
    p.suite = suite_of(kem, aead);
    p.mode = mode;
    p.info = info;
    p.info_len = l_info;
    p.psk = psk;
    p.psk_len = l_psk;
    p.psk_id = psk_id;
    p.psk_id_len = l_pskid;
    p.sender_key = k_s;
    p.sender_pub = auth ? pks : NULL;
    p.sender_pub_len = auth ? l_pks : 0;

    /* Sender with skEm fixed: enc byte for byte; recipient from enc. */
    assert_int_equal(cl_hpke_test_setup_s(&s, c, &p, pkr, l_pkr, k_e, enc, sizeof enc, &enc_len),
                     CL_OK);
    tu_assert_bytes(enc, enc_len, enc_v, l_enc);
    check_ctx(c, &s, v, aead);
    assert_int_equal(cl_hpke_setup_r(&r, c, &p, k_r, enc_v, l_enc), CL_OK);
    check_ctx(c, &r, v, aead);

    /* The same with the derived keys (DeriveKeyPair's private halves work like the vector's). */
    p.sender_key = d_s;
    assert_int_equal(cl_hpke_test_setup_s(&s2, c, &p, pkr, l_pkr, d_e, enc, sizeof enc, &enc_len),
                     CL_OK);
    tu_assert_bytes(enc, enc_len, enc_v, l_enc);
    check_ctx(c, &s2, v, aead);
    cl_hpke_ctx_free(&s2);
    p.sender_key = k_s;

    /* Every listed encryption at its sequence number, in order. */
    cJSON_ArrayForEach(e, encs)
    {
        int seq = cJSON_GetObjectItemCaseSensitive(e, "sequence_number")->valueint;
        size_t l_aad, l_pt, l_ct;
        uint8_t *aad = tu_hexm(e, "aad", &l_aad);
        uint8_t *pt = tu_hexm(e, "pt", &l_pt);
        uint8_t *ct = tu_hexm(e, "ct", &l_ct);

        assert_true(seq >= next_seq);
        for (; next_seq < seq; next_seq++) {
            /* Sequence numbers the RFC does not print: one message each, both sides. */
            uint8_t filler = (uint8_t)next_seq;
            assert_int_equal(cl_hpke_seal(&s, NULL, 0, &filler, 1, buf, sizeof buf, &len), CL_OK);
            assert_int_equal(cl_hpke_open(&r, NULL, 0, buf, len, out, sizeof out, &olen), CL_OK);
            assert_int_equal(olen, 1);
            assert_int_equal(out[0], filler);
        }
        assert_int_equal(cl_hpke_seal(&s, aad, l_aad, pt, l_pt, buf, sizeof buf, &len), CL_OK);
        tu_assert_bytes(buf, len, ct, l_ct);
        assert_int_equal(cl_hpke_open(&r, aad, l_aad, ct, l_ct, out, sizeof out, &olen), CL_OK);
        tu_assert_bytes(out, olen, pt, l_pt);
        next_seq++;
        n->encryptions++;
    }
    if (aead == CL_HPKE_AEAD_EXPORT_ONLY) {
        assert_int_equal(cl_hpke_seal(&s, NULL, 0, NULL, 0, buf, sizeof buf, &len),
                         CL_ERR_UNSUPPORTED);
        assert_int_equal(cl_hpke_open(&r, NULL, 0, buf, 16, out, sizeof out, &olen),
                         CL_ERR_UNSUPPORTED);
    }

    /* Every export, on both sides. */
    cJSON_ArrayForEach(e, exps)
    {
        size_t l_ctx, l_val;
        uint8_t *ectx = tu_hexm(e, "exporter_context", &l_ctx);
        uint8_t *val = tu_hexm(e, "exported_value", &l_val);
        size_t L = (size_t)cJSON_GetObjectItemCaseSensitive(e, "L")->valueint;

        assert_int_equal(L, l_val);
        assert_int_equal(cl_hpke_export(&s, ectx, l_ctx, buf, L), CL_OK);
        tu_assert_bytes(buf, L, val, l_val);
        assert_int_equal(cl_hpke_export(&r, ectx, l_ctx, buf, L), CL_OK);
        tu_assert_bytes(buf, L, val, l_val);
        n->exports++;
    }

    /* Single-shot open of the first ciphertext with the derived recipient key. */
    if (aead != CL_HPKE_AEAD_EXPORT_ONLY) {
        const cJSON *e0 = cJSON_GetArrayItem(encs, 0);
        size_t l_aad, l_pt, l_ct;
        uint8_t *aad = tu_hexm(e0, "aad", &l_aad);
        uint8_t *pt = tu_hexm(e0, "pt", &l_pt);
        uint8_t *ct = tu_hexm(e0, "ct", &l_ct);
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(e0, "sequence_number")->valueint, 0);
        assert_int_equal(cl_hpke_open_once(c, &p, d_r, enc_v, l_enc, aad, l_aad, ct, l_ct, out,
                                           sizeof out, &olen),
                         CL_OK);
        tu_assert_bytes(out, olen, pt, l_pt);
    }

    cl_hpke_ctx_free(&s);
    cl_hpke_ctx_free(&r);
    cl_key_destroy(c, k_e);
    cl_key_destroy(c, k_r);
    cl_key_destroy(c, k_s);
    cl_key_destroy(c, d_e);
    cl_key_destroy(c, d_r);
    cl_key_destroy(c, d_s);
    n->vectors++;
}

/* Runs every vector of a file; returns per-suite/mode counts through *total. */
static void run_file(const char *name, counts_t *total, int want_vectors)
{
    static const char *const modes[4] = {"base", "psk", "auth", "auth_psk"};
    cJSON *doc = tu_load_vectors(name);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "vectors");
    const cJSON *v;

    cJSON_ArrayForEach(v, arr)
    {
        uint16_t kem = (uint16_t)cJSON_GetObjectItemCaseSensitive(v, "kem_id")->valueint;
        uint16_t aead = (uint16_t)cJSON_GetObjectItemCaseSensitive(v, "aead_id")->valueint;
        int mode = cJSON_GetObjectItemCaseSensitive(v, "mode")->valueint;
        counts_t one = {0, 0, 0};
        cl_hpke_suite_t su = suite_of(kem, aead);

        /* Every suite in these files is one this implementation supports. */
        assert_int_equal(cl_hpke_suite_supported(&su), CL_OK);
        run_vector(&crypto, v, &one);
        run_vector(&crypto2, v, &one); /* the provider without the CCM fast path agrees */
        print_message("  %-24s %-14s %-9s %d encryptions, %d exports: pass\n",
                      tu_str(v, "rfc_section") + sizeof "RFC 9180 " - 1, suite_name(kem, aead),
                      modes[mode & 3], one.encryptions / 2, one.exports / 2);
        total->vectors += one.vectors / 2;
        total->encryptions += one.encryptions / 2;
        total->exports += one.exports / 2;
    }
    assert_int_equal(total->vectors, want_vectors);
    cJSON_Delete(doc);
}

static void test_rfc9180_vectors(void **state)
{
    counts_t t = {0, 0, 0};
    (void)state;
    run_file("hpke-rfc9180.json", &t, 12);
    assert_int_equal(t.encryptions, 12 * 6);
    assert_int_equal(t.exports, 12 * 3);
    print_message("hpke-rfc9180.json: %d vectors, %d encryptions, %d exports\n", t.vectors,
                  t.encryptions, t.exports);
}

static void test_rfc9180_extra_vectors(void **state)
{
    counts_t t = {0, 0, 0};
    (void)state;
    run_file("hpke-rfc9180-extra.json", &t, 8);
    assert_int_equal(t.encryptions, 4 * 6);
    assert_int_equal(t.exports, 8 * 3);
    print_message("hpke-rfc9180-extra.json: %d vectors, %d encryptions, %d exports\n", t.vectors,
                  t.encryptions, t.exports);
}

/* ------------------------------------------- ChaCha20-Poly1305 provider */

/* The AEAD alone, on the key / nonce / ciphertexts of RFC 9180 A.2.1 (RFC 8439 ChaCha20-Poly1305).
 */
static void chacha_kat(const cl_crypto_t *c)
{
    cJSON *doc = tu_load_vectors("hpke-rfc9180.json");
    const cJSON *v;
    int n = 0;

    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc, "vectors"))
    {
        const cJSON *e;
        size_t kl;
        uint8_t *key = tu_hexm(v, "key", &kl);
        cl_key_t k = CL_KEY_NONE;
        if (cJSON_GetObjectItemCaseSensitive(v, "aead_id")->valueint != 3)
            continue;
        assert_int_equal(cl_aead_import(c, CL_AEAD_CHACHA20_POLY1305, key, kl, &k), CL_OK);
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(v, "encryptions"))
        {
            size_t al, pl, nl, cl;
            uint8_t *aad = tu_hexm(e, "aad", &al);
            uint8_t *pt = tu_hexm(e, "pt", &pl);
            uint8_t *nonce = tu_hexm(e, "nonce", &nl);
            uint8_t *ct = tu_hexm(e, "ct", &cl);
            uint8_t buf[128], back[128];
            size_t l = 0, bl = 0;

            assert_int_equal(cl_aead_encrypt(c, k, nonce, nl, aad, al, pt, pl, buf, sizeof buf, &l),
                             CL_OK);
            tu_assert_bytes(buf, l, ct, cl);
            assert_int_equal(
                cl_aead_decrypt(c, k, nonce, nl, aad, al, ct, cl, back, sizeof back, &bl), CL_OK);
            tu_assert_bytes(back, bl, pt, pl);
            /* In place both ways. */
            memcpy(buf, pt, pl);
            assert_int_equal(
                cl_aead_encrypt(c, k, nonce, nl, aad, al, buf, pl, buf, sizeof buf, &l), CL_OK);
            tu_assert_bytes(buf, l, ct, cl);
            assert_int_equal(
                cl_aead_decrypt(c, k, nonce, nl, aad, al, buf, l, buf, sizeof buf, &bl), CL_OK);
            tu_assert_bytes(buf, bl, pt, pl);
            /* A flipped bit anywhere (ciphertext, tag, AAD, nonce): CL_ERR_AUTH, output wiped. */
            for (size_t i = 0; i < cl; i++) {
                memcpy(buf, ct, cl);
                buf[i] ^= 0x20;
                memset(back, 0xa5, sizeof back);
                assert_int_equal(
                    cl_aead_decrypt(c, k, nonce, nl, aad, al, buf, cl, back, sizeof back, &bl),
                    CL_ERR_AUTH);
                assert_true(all_zero(back, pl));
            }
            aad[0] ^= 1;
            assert_int_equal(
                cl_aead_decrypt(c, k, nonce, nl, aad, al, ct, cl, back, sizeof back, &bl),
                CL_ERR_AUTH);
            aad[0] ^= 1;
            nonce[11] ^= 1;
            assert_int_equal(
                cl_aead_decrypt(c, k, nonce, nl, aad, al, ct, cl, back, sizeof back, &bl),
                CL_ERR_AUTH);
            nonce[11] ^= 1;
            /* Too short to hold a tag; wrong nonce length; short output buffers. */
            assert_int_equal(
                cl_aead_decrypt(c, k, nonce, nl, aad, al, ct, 15, back, sizeof back, &bl),
                CL_ERR_AUTH);
            assert_int_equal(
                cl_aead_decrypt(c, k, nonce, 13, aad, al, ct, cl, back, sizeof back, &bl),
                CL_ERR_INVALID_ARG);
            assert_int_equal(cl_aead_encrypt(c, k, nonce, nl, aad, al, pt, pl, buf, pl + 15, &l),
                             CL_ERR_BUFFER_TOO_SMALL);
            assert_int_equal(cl_aead_decrypt(c, k, nonce, nl, aad, al, ct, cl, back, pl - 1, &bl),
                             CL_ERR_BUFFER_TOO_SMALL);
            n++;
        }
        /* Empty plaintext and AAD: a bare tag that verifies. */
        {
            static const uint8_t nz[12] = {0};
            uint8_t tag[16], none[1];
            size_t l = 0, bl = 7;
            assert_int_equal(cl_aead_encrypt(c, k, nz, 12, NULL, 0, NULL, 0, tag, sizeof tag, &l),
                             CL_OK);
            assert_int_equal(l, 16);
            assert_int_equal(cl_aead_decrypt(c, k, nz, 12, NULL, 0, tag, 16, none, 0, &bl), CL_OK);
            assert_int_equal(bl, 0);
            tag[3] ^= 1;
            assert_int_equal(cl_aead_decrypt(c, k, nz, 12, NULL, 0, tag, 16, none, 0, &bl),
                             CL_ERR_AUTH);
        }
        /* Longer than AES-CCM allows (2^16 - 1 with a 13-byte nonce): no such limit here. */
        {
            static const uint8_t nz[12] = {9};
            const size_t big = 100000;
            uint8_t *in = malloc(big), *out = malloc(big + 16);
            size_t l = 0, bl = 0;
            assert_non_null(in);
            assert_non_null(out);
            for (size_t i = 0; i < big; i++)
                in[i] = (uint8_t)(i * 31);
            assert_int_equal(cl_aead_encrypt(c, k, nz, 12, NULL, 0, in, big, out, big + 16, &l),
                             CL_OK);
            assert_int_equal(l, big + 16);
            assert_int_equal(cl_aead_decrypt(c, k, nz, 12, NULL, 0, out, l, out, big + 16, &bl),
                             CL_OK);
            assert_int_equal(bl, big);
            assert_memory_equal(out, in, big);
            free(in);
            free(out);
        }
        cl_key_destroy(c, k);
        /* A 16-byte key is not a ChaCha20 key. */
        assert_int_equal(cl_aead_import(c, CL_AEAD_CHACHA20_POLY1305, key, 16, &k),
                         CL_ERR_INVALID_ARG);
    }
    assert_int_equal(n, 4 * 6);
    cJSON_Delete(doc);
}

static void test_chacha20_poly1305(void **state)
{
    size_t k = 0, nn = 0, t = 0;
    (void)state;
    assert_int_equal(cl_aead_params(CL_AEAD_CHACHA20_POLY1305, &k, &nn, &t), CL_OK);
    assert_int_equal(k, 32);
    assert_int_equal(nn, 12);
    assert_int_equal(t, 16);
    chacha_kat(&crypto);
    chacha_kat(&crypto2);
}

/* ----------------------------------------------------------- round trips */

static void round_trip(const cl_crypto_t *c, uint16_t kem, uint16_t aead, uint8_t mode)
{
    static const size_t sizes[] = {0, 1, 64, 1000};
    pair_t x;
    uint8_t pt[1000], ct[1100], back[1100], e1[64], e2[64], enc[CL_HPKE_MAX_ENC];
    size_t l = 0, bl = 0, el = 0;

    for (size_t i = 0; i < sizeof pt; i++)
        pt[i] = (uint8_t)(i * 7 + 3);
    pair_init(&x, c, kem, aead, mode);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t aad[8] = {'a', 'a', 'd', (uint8_t)i};
        assert_int_equal(
            cl_hpke_seal(&x.s, aad, i == 0 ? 0 : sizeof aad, pt, sizes[i], ct, sizeof ct, &l),
            CL_OK);
        assert_int_equal(l, sizes[i] + CL_HPKE_TAG_LEN);
        assert_int_equal(
            cl_hpke_open(&x.r, aad, i == 0 ? 0 : sizeof aad, ct, l, back, sizeof back, &bl), CL_OK);
        tu_assert_bytes(back, bl, pt, sizes[i]);
    }
    /* In place on both sides. */
    memcpy(back, pt, 100);
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, back, 100, back, sizeof back, &l), CL_OK);
    assert_int_equal(cl_hpke_open(&x.r, NULL, 0, back, l, back, sizeof back, &bl), CL_OK);
    tu_assert_bytes(back, bl, pt, 100);
    /* Both sides export the same secrets; different contexts or lengths differ. */
    assert_int_equal(cl_hpke_export(&x.s, (const uint8_t *)"ctx", 3, e1, sizeof e1), CL_OK);
    assert_int_equal(cl_hpke_export(&x.r, (const uint8_t *)"ctx", 3, e2, sizeof e2), CL_OK);
    assert_memory_equal(e1, e2, sizeof e1);
    assert_int_equal(cl_hpke_export(&x.r, (const uint8_t *)"ctY", 3, e2, sizeof e2), CL_OK);
    assert_memory_not_equal(e1, e2, sizeof e1);
    assert_int_equal(cl_hpke_export(&x.r, NULL, 0, e2, 0), CL_OK);
    /* Single-shot, both ways. */
    assert_int_equal(cl_hpke_seal_once(c, &x.p, x.pk_r, x.pk_r_len, (const uint8_t *)"A", 1, pt,
                                       333, enc, sizeof enc, &el, ct, sizeof ct, &l),
                     CL_OK);
    assert_int_equal(el, cl_hpke_enc_len(kem));
    assert_int_equal(l, 333 + CL_HPKE_TAG_LEN);
    assert_int_equal(cl_hpke_open_once(c, &x.p, x.sk_r, enc, el, (const uint8_t *)"A", 1, ct, l,
                                       back, sizeof back, &bl),
                     CL_OK);
    tu_assert_bytes(back, bl, pt, 333);
    /* Two encryptions of the same message differ (fresh ephemeral keys). */
    assert_memory_not_equal(enc, x.enc, el);
    pair_free(&x);
}

static void test_round_trips(void **state)
{
    static const uint16_t kems[2] = {CL_HPKE_KEM_P256_SHA256, CL_HPKE_KEM_X25519_SHA256};
    static const uint16_t aeads[2] = {CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_AEAD_CHACHA20_POLY1305};
    int n = 0;
    (void)state;
    for (int k = 0; k < 2; k++)
        for (int a = 0; a < 2; a++)
            for (uint8_t m = 0; m < 4; m++) {
                round_trip(&crypto, kems[k], aeads[a], m);
                round_trip(&crypto2, kems[k], aeads[a], m);
                n++;
            }
    assert_int_equal(n, 16);
}

/* The RFC-named wrappers (base and auth) interoperate with the general calls. */
static void test_named_setups(void **state)
{
    static const uint16_t kems[2] = {CL_HPKE_KEM_P256_SHA256, CL_HPKE_KEM_X25519_SHA256};
    (void)state;
    for (int k = 0; k < 2; k++) {
        cl_hpke_suite_t su = suite_of(kems[k], CL_HPKE_AEAD_CHACHA20_POLY1305);
        uint8_t pk_r[CL_PUB_MAX], pk_s[CL_PUB_MAX], enc[CL_HPKE_MAX_ENC], ct[64], pt[64];
        size_t pk_r_len, pk_s_len, el = 0, l = 0, pl = 0;
        cl_key_t sk_r = gen_key(&crypto, kems[k], pk_r, &pk_r_len);
        cl_key_t sk_s = gen_key(&crypto, kems[k], pk_s, &pk_s_len);
        cl_hpke_ctx_t s, r;

        assert_int_equal(cl_hpke_setup_base_s(&s, &crypto, &su, pk_r, pk_r_len, info_default, 5,
                                              enc, sizeof enc, &el),
                         CL_OK);
        assert_int_equal(cl_hpke_seal(&s, NULL, 0, (const uint8_t *)"hello", 5, ct, sizeof ct, &l),
                         CL_OK);
        assert_int_equal(cl_hpke_setup_base_r(&r, &crypto, &su, sk_r, enc, el, info_default, 5),
                         CL_OK);
        assert_int_equal(cl_hpke_open(&r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_OK);
        assert_memory_equal(pt, "hello", 5);
        cl_hpke_ctx_free(&s);
        cl_hpke_ctx_free(&r);

        assert_int_equal(cl_hpke_setup_auth_s(&s, &crypto, &su, pk_r, pk_r_len, NULL, 0, sk_s, enc,
                                              sizeof enc, &el),
                         CL_OK);
        assert_int_equal(cl_hpke_seal(&s, NULL, 0, (const uint8_t *)"hello", 5, ct, sizeof ct, &l),
                         CL_OK);
        assert_int_equal(
            cl_hpke_setup_auth_r(&r, &crypto, &su, sk_r, enc, el, NULL, 0, pk_s, pk_s_len), CL_OK);
        assert_int_equal(cl_hpke_open(&r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_OK);
        assert_memory_equal(pt, "hello", 5);
        cl_hpke_ctx_free(&r);
        /* The auth message does not open as base mode (the sender's key is in the KEM). */
        assert_int_equal(cl_hpke_setup_base_r(&r, &crypto, &su, sk_r, enc, el, NULL, 0), CL_OK);
        assert_int_equal(cl_hpke_open(&r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_ERR_AUTH);
        cl_hpke_ctx_free(&r);
        cl_hpke_ctx_free(&s);
        assert_int_equal(
            cl_hpke_setup_base_s(&s, &crypto, NULL, pk_r, pk_r_len, NULL, 0, enc, sizeof enc, &el),
            CL_ERR_INVALID_ARG);
        cl_key_destroy(&crypto, sk_r);
        cl_key_destroy(&crypto, sk_s);
    }
}

/* --------------------------------------------------- negative: messages */

static void test_tampering(void **state)
{
    static const uint16_t kems[2] = {CL_HPKE_KEM_P256_SHA256, CL_HPKE_KEM_X25519_SHA256};
    static const uint8_t msg[] = "meter 42: 1234.5 kWh";
    static const uint8_t aad[] = "stream 7";
    (void)state;

    for (int k = 0; k < 2; k++) {
        pair_t x;
        uint8_t ct[64], bad[64], pt[64];
        size_t l = 0, pl = 0, mlen = sizeof msg - 1;

        pair_init(&x, &crypto, kems[k],
                  k == 0 ? CL_HPKE_AEAD_AES_128_GCM : CL_HPKE_AEAD_CHACHA20_POLY1305,
                  CL_HPKE_MODE_BASE);
        assert_int_equal(cl_hpke_seal(&x.s, aad, sizeof aad - 1, msg, mlen, ct, sizeof ct, &l),
                         CL_OK);
        /* Every byte of ciphertext and tag. */
        for (size_t i = 0; i < l; i++) {
            memcpy(bad, ct, l);
            bad[i] ^= 0x01;
            memset(pt, 0xa5, sizeof pt);
            assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad - 1, bad, l, pt, sizeof pt, &pl),
                             CL_ERR_AUTH);
            assert_true(all_zero(pt, mlen));
        }
        /* AAD changed, missing, longer. */
        assert_int_equal(
            cl_hpke_open(&x.r, (const uint8_t *)"stream 8", 8, ct, l, pt, sizeof pt, &pl),
            CL_ERR_AUTH);
        assert_int_equal(cl_hpke_open(&x.r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_ERR_AUTH);
        assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad, ct, l, pt, sizeof pt, &pl),
                         CL_ERR_AUTH);
        /* Truncated: nothing, less than a tag, a bare tag, one byte short; one byte too many. */
        assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad - 1, ct, 0, pt, sizeof pt, &pl),
                         CL_ERR_AUTH);
        assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad - 1, ct, 15, pt, sizeof pt, &pl),
                         CL_ERR_AUTH);
        assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad - 1, ct, 16, pt, sizeof pt, &pl),
                         CL_ERR_AUTH);
        assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad - 1, ct + 1, l - 1, pt, sizeof pt, &pl),
                         CL_ERR_AUTH);
        assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad - 1, ct, l - 1, pt, sizeof pt, &pl),
                         CL_ERR_AUTH);
        memcpy(bad, ct, l);
        bad[l] = 0;
        assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad - 1, bad, l + 1, pt, sizeof pt, &pl),
                         CL_ERR_AUTH);
        /* None of that consumed a sequence number: the real one opens now. */
        assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad - 1, ct, l, pt, sizeof pt, &pl), CL_OK);
        tu_assert_bytes(pt, pl, msg, mlen);
        /* ...and only once: a replay uses the next nonce. */
        assert_int_equal(cl_hpke_open(&x.r, aad, sizeof aad - 1, ct, l, pt, sizeof pt, &pl),
                         CL_ERR_AUTH);
        pair_free(&x);
    }
}

static void test_reordering(void **state)
{
    pair_t x;
    uint8_t c0[32], c1[32], pt[32];
    size_t l0 = 0, l1 = 0, pl = 0;
    (void)state;

    pair_init(&x, &crypto, CL_HPKE_KEM_X25519_SHA256, CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_BASE);
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"zero", 4, c0, sizeof c0, &l0),
                     CL_OK);
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"one!", 4, c1, sizeof c1, &l1),
                     CL_OK);
    assert_int_equal(cl_hpke_open(&x.r, NULL, 0, c1, l1, pt, sizeof pt, &pl), CL_ERR_AUTH);
    assert_int_equal(cl_hpke_open(&x.r, NULL, 0, c0, l0, pt, sizeof pt, &pl), CL_OK);
    assert_memory_equal(pt, "zero", 4);
    assert_int_equal(cl_hpke_open(&x.r, NULL, 0, c1, l1, pt, sizeof pt, &pl), CL_OK);
    assert_memory_equal(pt, "one!", 4);
    pair_free(&x);
}

/* Wrong enc, recipient key, info, PSK, sender key, mode: setup succeeds, open fails. */
static void test_wrong_inputs(void **state)
{
    static const uint16_t kems[2] = {CL_HPKE_KEM_P256_SHA256, CL_HPKE_KEM_X25519_SHA256};
    (void)state;

    for (int k = 0; k < 2; k++) {
        pair_t x, y;
        cl_hpke_params_t q;
        cl_hpke_ctx_t r;
        uint8_t ct[64], pt[64], pub[CL_PUB_MAX];
        size_t l = 0, pl = 0, publ = 0;
        cl_key_t other;
        static const uint8_t psk2[32] = "0123456789abcdef0123456789abcdeX";

        pair_init(&x, &crypto, kems[k], CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_AUTH_PSK);
        pair_init(&y, &crypto, kems[k], CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_AUTH_PSK);
        assert_int_equal(
            cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"reading", 7, ct, sizeof ct, &l), CL_OK);
        /* The right recipient opens it. */
        assert_int_equal(cl_hpke_open(&x.r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_OK);

#define OPEN_FAILS(params, key, e, el)                                                             \
    do {                                                                                           \
        assert_int_equal(cl_hpke_setup_r(&r, &crypto, (params), (key), (e), (el)), CL_OK);         \
        assert_int_equal(cl_hpke_open(&r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_ERR_AUTH);       \
        cl_hpke_ctx_free(&r);                                                                      \
    } while (0)

        /* Another (valid) enc. */
        OPEN_FAILS(&x.p, x.sk_r, y.enc, y.enc_len);
        /* Another recipient key. */
        other = gen_key(&crypto, kems[k], pub, &publ);
        OPEN_FAILS(&x.p, other, x.enc, x.enc_len);
        cl_key_destroy(&crypto, other);
        /* Another info. */
        q = x.p;
        q.info_len--;
        OPEN_FAILS(&q, x.sk_r, x.enc, x.enc_len);
        /* Another PSK, another PSK id. */
        q = x.p;
        q.psk = psk2;
        OPEN_FAILS(&q, x.sk_r, x.enc, x.enc_len);
        q = x.p;
        q.psk_id_len--;
        OPEN_FAILS(&q, x.sk_r, x.enc, x.enc_len);
        /* Another sender public key (the recipient expects y's sender). */
        q = x.p;
        q.sender_pub = y.pk_s;
        OPEN_FAILS(&q, x.sk_r, x.enc, x.enc_len);
        /* Another mode: psk only (same PSK), auth only (no PSK). */
        q = x.p;
        q.mode = CL_HPKE_MODE_PSK;
        OPEN_FAILS(&q, x.sk_r, x.enc, x.enc_len);
        q = x.p;
        q.mode = CL_HPKE_MODE_AUTH;
        q.psk = q.psk_id = NULL;
        q.psk_len = q.psk_id_len = 0;
        OPEN_FAILS(&q, x.sk_r, x.enc, x.enc_len);
        /* Another suite id (same KEM and key, so the KEM agrees: the key schedule differs). */
        q = x.p;
        q.suite.aead_id = CL_HPKE_AEAD_CHACHA20_POLY1305;
        assert_int_equal(cl_hpke_setup_r(&r, &crypto, &q, x.sk_r, x.enc, x.enc_len), CL_OK);
        assert_int_equal(cl_hpke_open(&r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_ERR_AUTH);
        cl_hpke_ctx_free(&r);
#undef OPEN_FAILS

        /* A sender using another private key than the recipient expects. */
        {
            cl_hpke_ctx_t s;
            uint8_t enc[CL_HPKE_MAX_ENC];
            size_t el = 0;
            q = x.p;
            q.sender_key = y.sk_s;
            assert_int_equal(
                cl_hpke_setup_s(&s, &crypto, &q, x.pk_r, x.pk_r_len, enc, sizeof enc, &el), CL_OK);
            assert_int_equal(
                cl_hpke_seal(&s, NULL, 0, (const uint8_t *)"forged", 6, ct, sizeof ct, &l), CL_OK);
            assert_int_equal(cl_hpke_setup_r(&r, &crypto, &x.p, x.sk_r, enc, el), CL_OK);
            assert_int_equal(cl_hpke_open(&r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_ERR_AUTH);
            cl_hpke_ctx_free(&r);
            cl_hpke_ctx_free(&s);
        }
        pair_free(&x);
        pair_free(&y);
    }
}

static void test_sequence(void **state)
{
    pair_t x;
    uint8_t ct[32], pt[32];
    size_t l = 0, pl = 0;
    (void)state;

    pair_init(&x, &crypto, CL_HPKE_KEM_P256_SHA256, CL_HPKE_AEAD_CHACHA20_POLY1305,
              CL_HPKE_MODE_BASE);
    /* Carry across bytes: 0x00ff -> 0x0100. */
    memset(x.s.seq, 0, sizeof x.s.seq);
    x.s.seq[11] = 0xff;
    memcpy(x.r.seq, x.s.seq, sizeof x.s.seq);
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"a", 1, ct, sizeof ct, &l),
                     CL_OK);
    assert_int_equal(x.s.seq[10], 1);
    assert_int_equal(x.s.seq[11], 0);
    assert_int_equal(cl_hpke_open(&x.r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_OK);
    assert_memory_equal(x.r.seq, x.s.seq, sizeof x.s.seq);

    /* The last usable sequence number is 2^96 - 2 (IncrementSeq refuses to reach 2^96 - 1). */
    memset(x.s.seq, 0xff, sizeof x.s.seq);
    x.s.seq[11] = 0xfe;
    memcpy(x.r.seq, x.s.seq, sizeof x.s.seq);
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"last", 4, ct, sizeof ct, &l),
                     CL_OK);
    assert_true(all_byte(x.s.seq, sizeof x.s.seq, 0xff));
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"more", 4, pt, sizeof pt, &pl),
                     CL_ERR_SEQ_EXHAUSTED);
    assert_true(all_byte(x.s.seq, sizeof x.s.seq, 0xff));
    assert_int_equal(cl_hpke_open(&x.r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_OK);
    assert_memory_equal(pt, "last", 4);
    assert_int_equal(cl_hpke_open(&x.r, NULL, 0, ct, l, pt, sizeof pt, &pl), CL_ERR_SEQ_EXHAUSTED);
    /* Export still works on an exhausted context. */
    assert_int_equal(cl_hpke_export(&x.s, NULL, 0, pt, 16), CL_OK);
    pair_free(&x);
}

/* ---------------------------------------------- negative: public keys */

/* P-256 encodings that are not a valid uncompressed point (x || y split over two lines). */
static const char *const bad_p256[] = {
    /* the on-curve point (0, y) with x given as p + 0: coordinate out of range */
    ("04ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"
     "66485c780e2f83d72433bd5d84a06bb6541c2af31dae871728bf856a174f93f4"),
    /* (0, 0): off the curve */
    ("040000000000000000000000000000000000000000000000000000000000000000"
     "0000000000000000000000000000000000000000000000000000000000000000"),
    /* the generator with y + 1: off the curve */
    ("046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
     "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f6"),
    /* the generator's x with y = p: coordinate out of range */
    ("046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
     "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"),
};

/* The generator in forms the provider knows but HPKE does not accept. */
static const char *const bad_p256_forms[] = {
    "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296", /* compressed */
    "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",   /* x-only */
    /* hybrid prefix 0x06 */
    ("066b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
     "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
    "00", /* the point at infinity */
    "",
};

/*
 * X25519 u-coordinates whose product with any clamped scalar is the all-zero
 * output (small order on the curve or its twist; RFC 7748 section 6.1), as
 * canonical values, as non-canonical values >= p, and with the top bit set
 * (which X25519 masks, RFC 7748 section 5).
 */
static const char *const low_order_x25519[] = {
    "0000000000000000000000000000000000000000000000000000000000000000", /* 0 */
    "0100000000000000000000000000000000000000000000000000000000000000", /* 1 */
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", /* order 8 */
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", /* order 8 */
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p - 1 */
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p (= 0) */
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", /* p + 1 (= 1) */
    "0000000000000000000000000000000000000000000000000000000000000080", /* the same, top bit */
    "0100000000000000000000000000000000000000000000000000000000000080",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};

/* Every role that takes a public key refuses `bad` with `want`. */
static void refuse_pub(pair_t *x, const uint8_t *bad, size_t bad_len, cl_status_t want)
{
    cl_hpke_ctx_t ctx;
    cl_hpke_params_t q = x->p;
    uint8_t enc[CL_HPKE_MAX_ENC], ct[64], pt[8];
    size_t el = 0, l = 0;
    cl_status_t rc;

    memset(enc, 0xa5, sizeof enc);
    memset(ct, 0, sizeof ct);
    /* as pkR (sender), single-shot too */
    rc = cl_hpke_setup_s(&ctx, x->c, &q, bad, bad_len, enc, sizeof enc, &el);
    assert_int_equal(rc, want);
    assert_true(all_zero(&ctx, sizeof ctx));
    assert_true(all_byte(enc, sizeof enc, 0xa5));
    assert_int_equal(cl_hpke_seal_once(x->c, &q, bad, bad_len, NULL, 0, (const uint8_t *)"x", 1,
                                       enc, sizeof enc, &el, ct, sizeof ct, &l),
                     want);
    assert_true(all_byte(enc, sizeof enc, 0xa5));
    /* as enc (recipient), single-shot too */
    assert_int_equal(cl_hpke_setup_r(&ctx, x->c, &q, x->sk_r, bad, bad_len), want);
    assert_true(all_zero(&ctx, sizeof ctx));
    assert_int_equal(
        cl_hpke_open_once(x->c, &q, x->sk_r, bad, bad_len, NULL, 0, ct, 17, pt, sizeof pt, &l),
        want);
    /* as pkS (recipient in auth mode) */
    q.mode = CL_HPKE_MODE_AUTH;
    q.sender_key = x->sk_s;
    q.sender_pub = bad;
    q.sender_pub_len = bad_len;
    assert_int_equal(cl_hpke_setup_r(&ctx, x->c, &q, x->sk_r, x->enc, x->enc_len), want);
    assert_true(all_zero(&ctx, sizeof ctx));
}

static void test_invalid_public_keys(void **state)
{
    pair_t x;
    uint8_t b[80];
    size_t n;
    (void)state;

    pair_init(&x, &crypto, CL_HPKE_KEM_P256_SHA256, CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_BASE);
    for (size_t i = 0; i < sizeof bad_p256 / sizeof bad_p256[0]; i++) {
        n = tu_hex(bad_p256[i], b, sizeof b);
        assert_int_equal(n, 65);
        refuse_pub(&x, b, n, CL_ERR_BAD_INPUT);
    }
    for (size_t i = 0; i < sizeof bad_p256_forms / sizeof bad_p256_forms[0]; i++) {
        n = tu_hex(bad_p256_forms[i], b, sizeof b);
        refuse_pub(&x, n != 0 ? b : (const uint8_t *)"", n, CL_ERR_BAD_INPUT);
    }
    /* An X25519 key is no P-256 key, and a 66-byte string is not a point either. */
    refuse_pub(&x, x.pk_r, 32, CL_ERR_BAD_INPUT);
    memcpy(b, x.pk_r, 65);
    b[65] = 0;
    refuse_pub(&x, b, 66, CL_ERR_BAD_INPUT);
    /* Control: the in-range encoding of (0, y) is a valid point and is accepted. */
    {
        cl_hpke_ctx_t ctx;
        n = tu_hex("04000000000000000000000000000000000000000000000000000000000000000066485c780e2"
                   "f83d72433bd5d84a06bb6541c2af31dae871728bf856a174f93f4",
                   b, sizeof b);
        assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &x.p, x.sk_r, b, n), CL_OK);
        cl_hpke_ctx_free(&ctx);
    }
    pair_free(&x);

    pair_init(&x, &crypto, CL_HPKE_KEM_X25519_SHA256, CL_HPKE_AEAD_CHACHA20_POLY1305,
              CL_HPKE_MODE_BASE);
    for (size_t i = 0; i < sizeof low_order_x25519 / sizeof low_order_x25519[0]; i++) {
        n = tu_hex(low_order_x25519[i], b, sizeof b);
        refuse_pub(&x, b, n, CL_ERR_BAD_INPUT);
    }
    refuse_pub(&x, x.pk_r, 31, CL_ERR_BAD_INPUT);
    memcpy(b, x.pk_r, 32);
    b[32] = 0;
    refuse_pub(&x, b, 33, CL_ERR_BAD_INPUT);
    pair_free(&x);
}

/* -------------------------------------------- a provider to lie and fail */

/*
 * Wraps the OpenSSL provider: counts the key handles it hands out and gets
 * back and the calls made, can fail the n-th call (CL_ERR_CRYPTO), can
 * return an all-zero ECDH output (a provider that does not check for
 * low-order points), and can replace the output of the HKDF-Expand calls
 * that make DeriveKeyPair's P-256 candidates (to reach rejection sampling,
 * which real inputs hit with probability 2^-32).
 */
typedef struct wrap {
    cl_crypto_t inner;
    cl_key_t live[64];
    size_t n_live;
    long calls, fail_at, ecdh_calls;
    int zero_ecdh;
    const uint8_t (*cand)[32]; /* candidates to hand out instead of the real ones */
    size_t n_cand, cand_used;
    int cand_repeat; /* after the list: keep returning its last entry */
} wrap_t;

static wrap_t W;

static int w_fault(void)
{
    W.calls++;
    return W.fail_at != 0 && W.calls == W.fail_at;
}

static cl_status_t w_track(cl_status_t rc, const cl_key_t *k)
{
    if (rc == CL_OK) {
        assert_true(W.n_live < sizeof W.live / sizeof W.live[0]);
        W.live[W.n_live++] = *k;
    }
    return rc;
}

static cl_status_t w_random(void *self, uint8_t *out, size_t len)
{
    (void)self;
    return w_fault() ? CL_ERR_CRYPTO : W.inner.ops->random(W.inner.self, out, len);
}
static cl_status_t w_sha256(void *self, const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    (void)self;
    return w_fault() ? CL_ERR_CRYPTO : W.inner.ops->sha256(W.inner.self, parts, n, out);
}
static cl_status_t w_hmac(void *self, const uint8_t *key, size_t key_len, const cl_buf_t *parts,
                          size_t n, uint8_t out[32])
{
    (void)self;
    return w_fault() ? CL_ERR_CRYPTO
                     : W.inner.ops->hmac_sha256(W.inner.self, key, key_len, parts, n, out);
}
static cl_status_t w_extract(void *self, const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                             size_t ikm_len, uint8_t prk[32])
{
    (void)self;
    return w_fault() ? CL_ERR_CRYPTO
                     : W.inner.ops->hkdf_extract(W.inner.self, salt, salt_len, ikm, ikm_len, prk);
}
/* True when info is a LabeledExpand info with the label "candidate" (DeriveKeyPair, P-256). */
static int is_candidate(const uint8_t *info, size_t info_len)
{
    /* I2OSP(L, 2) || "HPKE-v1" || "KEM" || kem_id || label || counter */
    return info_len == 2 + 7 + 5 + 9 + 1 && memcmp(info + 14, "candidate", 9) == 0;
}
static cl_status_t w_expand(void *self, const uint8_t *prk, size_t prk_len, const uint8_t *info,
                            size_t info_len, uint8_t *out, size_t out_len)
{
    (void)self;
    if (w_fault())
        return CL_ERR_CRYPTO;
    if (W.n_cand != 0 && out_len == 32 && is_candidate(info, info_len) &&
        (W.cand_used < W.n_cand || W.cand_repeat)) {
        size_t i = W.cand_used < W.n_cand ? W.cand_used : W.n_cand - 1;
        /* The counter byte goes up by one per candidate. */
        assert_int_equal(info[info_len - 1], (uint8_t)W.cand_used);
        memcpy(out, W.cand[i], 32);
        W.cand_used++;
        return CL_OK;
    }
    return W.inner.ops->hkdf_expand(W.inner.self, prk, prk_len, info, info_len, out, out_len);
}
static cl_status_t w_aead_import(void *self, cl_aead_alg_t alg, const uint8_t *key, size_t key_len,
                                 cl_key_t *out)
{
    (void)self;
    if (w_fault())
        return CL_ERR_CRYPTO;
    return w_track(W.inner.ops->aead_import(W.inner.self, alg, key, key_len, out), out);
}
static cl_status_t w_aead_encrypt(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                  const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                                  size_t pt_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    (void)self;
    return w_fault() ? CL_ERR_CRYPTO
                     : W.inner.ops->aead_encrypt(W.inner.self, key, nonce, nonce_len, aad, aad_len,
                                                 pt, pt_len, out, out_size, out_len);
}
static cl_status_t w_aead_decrypt(void *self, cl_key_t key, const uint8_t *nonce, size_t nonce_len,
                                  const uint8_t *aad, size_t aad_len, const uint8_t *in,
                                  size_t in_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    (void)self;
    return w_fault() ? CL_ERR_CRYPTO
                     : W.inner.ops->aead_decrypt(W.inner.self, key, nonce, nonce_len, aad, aad_len,
                                                 in, in_len, out, out_size, out_len);
}
static cl_status_t w_key_generate(void *self, cl_key_type_t type, uint32_t usage, cl_key_t *out,
                                  uint8_t *pub, size_t pub_size, size_t *pub_len)
{
    (void)self;
    if (w_fault())
        return CL_ERR_CRYPTO;
    return w_track(
        W.inner.ops->key_generate(W.inner.self, type, usage, out, pub, pub_size, pub_len), out);
}
static cl_status_t w_import_private(void *self, cl_key_type_t type, uint32_t usage,
                                    const uint8_t *priv, size_t priv_len, cl_key_t *out)
{
    (void)self;
    if (w_fault())
        return CL_ERR_CRYPTO;
    return w_track(W.inner.ops->key_import_private(W.inner.self, type, usage, priv, priv_len, out),
                   out);
}
static cl_status_t w_import_public(void *self, cl_key_type_t type, const uint8_t *pub,
                                   size_t pub_len, cl_key_t *out)
{
    (void)self;
    if (w_fault())
        return CL_ERR_CRYPTO;
    return w_track(W.inner.ops->key_import_public(W.inner.self, type, pub, pub_len, out), out);
}
static cl_status_t w_export_public(void *self, cl_key_t key, uint8_t *pub, size_t pub_size,
                                   size_t *pub_len)
{
    (void)self;
    return w_fault() ? CL_ERR_CRYPTO
                     : W.inner.ops->key_export_public(W.inner.self, key, pub, pub_size, pub_len);
}
static cl_status_t w_ecdh(void *self, cl_key_t priv, const uint8_t *peer, size_t peer_len,
                          uint8_t *secret, size_t secret_size, size_t *secret_len)
{
    cl_status_t rc;
    (void)self;
    if (w_fault())
        return CL_ERR_CRYPTO;
    W.ecdh_calls++;
    rc = W.inner.ops->ecdh(W.inner.self, priv, peer, peer_len, secret, secret_size, secret_len);
    if (rc == CL_OK && W.zero_ecdh)
        memset(secret, 0, *secret_len);
    return rc;
}
static cl_status_t w_sign(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                          size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len)
{
    (void)self;
    return w_fault()
               ? CL_ERR_CRYPTO
               : W.inner.ops->sign(W.inner.self, priv, alg, msg, msg_len, sig, sig_size, sig_len);
}
static cl_status_t w_verify(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                            size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    (void)self;
    return w_fault() ? CL_ERR_CRYPTO
                     : W.inner.ops->verify(W.inner.self, pub, alg, msg, msg_len, sig, sig_len);
}
static void w_destroy(void *self, cl_key_t key)
{
    (void)self;
    for (size_t i = 0; i < W.n_live; i++) {
        if (W.live[i] == key) {
            W.live[i] = W.live[--W.n_live];
            break;
        }
    }
    W.inner.ops->key_destroy(W.inner.self, key);
}

static const cl_crypto_ops_t wrap_ops = {
    .version = CL_CRYPTO_OPS_VERSION,
    .name = "test-wrap",
    .random = w_random,
    .sha256 = w_sha256,
    .hmac_sha256 = w_hmac,
    .hkdf_extract = w_extract,
    .hkdf_expand = w_expand,
    .aead_import = w_aead_import,
    .aead_encrypt = w_aead_encrypt,
    .aead_decrypt = w_aead_decrypt,
    .key_generate = w_key_generate,
    .key_import_private = w_import_private,
    .key_import_public = w_import_public,
    .key_export_public = w_export_public,
    .ecdh = w_ecdh,
    .sign = w_sign,
    .verify = w_verify,
    .key_destroy = w_destroy,
};

/* An X25519 provider that lets an all-zero DH output through is caught by HPKE itself. */
static void test_zero_dh_output(void **state)
{
    cl_crypto_t wc = {&wrap_ops, NULL};
    pair_t x;
    cl_hpke_ctx_t ctx;
    uint8_t enc[CL_HPKE_MAX_ENC];
    size_t el = 0;
    (void)state;

    memset(&W, 0, sizeof W);
    W.inner = crypto;
    pair_init(&x, &wc, CL_HPKE_KEM_X25519_SHA256, CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_AUTH);
    W.zero_ecdh = 1;
    assert_int_equal(cl_hpke_setup_s(&ctx, &wc, &x.p, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
                     CL_ERR_BAD_INPUT);
    assert_true(all_zero(&ctx, sizeof ctx));
    assert_int_equal(cl_hpke_setup_r(&ctx, &wc, &x.p, x.sk_r, x.enc, x.enc_len), CL_ERR_BAD_INPUT);
    assert_true(all_zero(&ctx, sizeof ctx));
    W.zero_ecdh = 0;
    pair_free(&x);
    assert_int_equal(W.n_live, 0);
}

/*
 * Public keys of the wrong length or form are refused by HPKE itself, before
 * any provider call (the OpenSSL provider would accept P-256 compressed and
 * x-only forms); so are over-long inputs.
 */
static void test_refused_before_crypto(void **state)
{
    static uint8_t big[CL_HPKE_MAX_INPUT + 1];
    cl_crypto_t wc = {&wrap_ops, NULL};
    pair_t x;
    cl_hpke_ctx_t ctx;
    cl_hpke_params_t q;
    uint8_t b[80], enc[CL_HPKE_MAX_ENC];
    size_t n, el = 0;
    (void)state;

    memset(&W, 0, sizeof W);
    W.inner = crypto;
    pair_init(&x, &wc, CL_HPKE_KEM_P256_SHA256, CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_AUTH);
    for (size_t i = 0; i < sizeof bad_p256_forms / sizeof bad_p256_forms[0]; i++) {
        n = tu_hex(bad_p256_forms[i], b, sizeof b);
        W.calls = 0;
        assert_int_equal(cl_hpke_setup_r(&ctx, &wc, &x.p, x.sk_r, b, n), CL_ERR_BAD_INPUT);
        q = x.p;
        q.sender_pub = b;
        q.sender_pub_len = n;
        assert_int_equal(cl_hpke_setup_r(&ctx, &wc, &q, x.sk_r, x.enc, x.enc_len),
                         CL_ERR_BAD_INPUT);
        assert_int_equal(cl_hpke_setup_s(&ctx, &wc, &x.p, b, n, enc, sizeof enc, &el),
                         CL_ERR_BAD_INPUT);
        assert_int_equal(W.calls, 0);
    }
    /* A 65-byte string with another first byte (a provider might take 0x06 / 0x07 as hybrid). */
    memcpy(b, x.pk_r, 65);
    for (unsigned pfx = 0; pfx < 256; pfx++) {
        if (pfx == 0x04)
            continue;
        b[0] = (uint8_t)pfx;
        W.calls = 0;
        assert_int_equal(cl_hpke_setup_s(&ctx, &wc, &x.p, b, 65, enc, sizeof enc, &el),
                         CL_ERR_BAD_INPUT);
        assert_int_equal(cl_hpke_setup_r(&ctx, &wc, &x.p, x.sk_r, b, 65), CL_ERR_BAD_INPUT);
        assert_int_equal(W.calls, 0);
    }
    q = x.p;
    q.info = big;
    q.info_len = sizeof big;
    W.calls = 0;
    assert_int_equal(cl_hpke_setup_r(&ctx, &wc, &q, x.sk_r, x.enc, x.enc_len), CL_ERR_LIMIT);
    assert_int_equal(cl_hpke_setup_s(&ctx, &wc, &q, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
                     CL_ERR_LIMIT);
    assert_int_equal(W.calls, 0);
    /* Single-shot: impossible sizes and short buffers, before the KEM runs. */
    {
        uint8_t ct[64], pt[64];
        size_t l = 0;
        memset(ct, 0, sizeof ct);
        assert_int_equal(cl_hpke_seal_once(&wc, &x.p, x.pk_r, x.pk_r_len, NULL, 0, pt, SIZE_MAX - 8,
                                           enc, sizeof enc, &el, ct, sizeof ct, &l),
                         CL_ERR_INVALID_ARG);
        assert_int_equal(cl_hpke_seal_once(&wc, &x.p, x.pk_r, x.pk_r_len, NULL, 0, pt, 8, enc, 64,
                                           &el, ct, sizeof ct, &l),
                         CL_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(cl_hpke_seal_once(&wc, &x.p, x.pk_r, x.pk_r_len, NULL, 0, pt, 8, enc,
                                           sizeof enc, &el, ct, 23, &l),
                         CL_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(
            cl_hpke_open_once(&wc, &x.p, x.sk_r, x.enc, x.enc_len, NULL, 0, ct, 24, pt, 7, &l),
            CL_ERR_BUFFER_TOO_SMALL);
        assert_int_equal(W.calls, 0);
    }
    pair_free(&x);
    assert_int_equal(W.n_live, 0);
}

/*
 * DeriveKeyPair for P-256: rejection sampling of the candidates (RFC 9180
 * 7.1.3). Candidates 0, n and 2^256 - 1 are refused, n - 1 and 1 accepted;
 * 256 refused candidates are DeriveKeyPairError with no key left behind.
 */
static void test_derive_rejection_sampling(void **state)
{
    /* n - 1, the largest valid scalar */
    static const uint8_t n_1[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
                                    0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x50};
    /* G, and -G = (Gx, p - Gy) = (n - 1) G */
    static const char g_pub[] = "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                                "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";
    static const char minus_g_pub[] =
        "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
        "b01cbd1c01e58065711814b583f061e9d431cca994cea1313449bf97c840ae0a";
    uint8_t cands[5][32], pub[CL_PUB_MAX], want[CL_PUB_MAX], ikm[32] = {7};
    cl_crypto_t wc = {&wrap_ops, NULL};
    cl_key_t k = CL_KEY_NONE;
    size_t pl = 0, wl;
    (void)state;

    memset(&W, 0, sizeof W);
    W.inner = crypto;
    memset(cands[0], 0, 32);   /* 0 */
    memcpy(cands[1], n_1, 32); /* n */
    cands[1][31] = 0x51;
    memset(cands[2], 0xff, 32); /* 2^256 - 1 */
    memcpy(cands[3], n_1, 32);  /* n - 1 */
    memset(cands[4], 0, 32);    /* 1 */
    cands[4][31] = 1;

    /* The first valid candidate wins: n - 1 after three refused ones gives -G. */
    W.cand = (const uint8_t(*)[32])cands;
    W.n_cand = 5;
    assert_int_equal(cl_hpke_derive_key_pair(&wc, CL_HPKE_KEM_P256_SHA256, ikm, sizeof ikm, &k, pub,
                                             sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(W.cand_used, 4);
    wl = tu_hex(minus_g_pub, want, sizeof want);
    tu_assert_bytes(pub, pl, want, wl);
    cl_key_destroy(&wc, k);
    /* 1, accepted at once: G. */
    W.cand = (const uint8_t(*)[32])(cands + 4);
    W.n_cand = 1;
    W.cand_used = 0;
    assert_int_equal(cl_hpke_derive_key_pair(&wc, CL_HPKE_KEM_P256_SHA256, ikm, sizeof ikm, &k, pub,
                                             sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(W.cand_used, 1);
    wl = tu_hex(g_pub, want, sizeof want);
    tu_assert_bytes(pub, pl, want, wl);
    cl_key_destroy(&wc, k);
    /* Only refused candidates: counters 0..255 are tried, then DeriveKeyPairError. */
    W.cand = (const uint8_t(*)[32])(cands + 1);
    W.n_cand = 1;
    W.cand_repeat = 1;
    W.cand_used = 0;
    k = CL_KEY_NONE;
    assert_int_equal(cl_hpke_derive_key_pair(&wc, CL_HPKE_KEM_P256_SHA256, ikm, sizeof ikm, &k, pub,
                                             sizeof pub, &pl),
                     CL_ERR_CRYPTO);
    assert_int_equal(W.cand_used, 256);
    assert_int_equal(k, CL_KEY_NONE);
    assert_int_equal(W.n_live, 0);
    /* X25519 has no candidates: the override is not consulted. */
    W.cand_used = 0;
    assert_int_equal(cl_hpke_derive_key_pair(&wc, CL_HPKE_KEM_X25519_SHA256, ikm, sizeof ikm, &k,
                                             pub, sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(W.cand_used, 0);
    cl_key_destroy(&wc, k);
    assert_int_equal(W.n_live, 0);
    memset(&W, 0, sizeof W);
}

/*
 * A provider failure at each call of each entry point, in turn: the call
 * fails with that error, the context is zeroed, no key handle is left, and
 * the same call without a fault succeeds.
 */
static void test_provider_faults(void **state)
{
    static const uint16_t kems[2] = {CL_HPKE_KEM_P256_SHA256, CL_HPKE_KEM_X25519_SHA256};
    cl_crypto_t wc = {&wrap_ops, NULL};
    int total = 0;
    (void)state;

    for (int k = 0; k < 2; k++) {
        for (uint8_t mode = 0; mode < 4; mode++) {
            pair_t x;
            uint8_t ct0[64], ct[64], pt[64], enc[CL_HPKE_MAX_ENC], ikm[32] = {1, 2, 3};
            size_t l0 = 0, l = 0, pl = 0, el = 0, base_live;

            memset(&W, 0, sizeof W);
            W.inner = crypto;
            pair_init(&x, &wc, kems[k], CL_HPKE_AEAD_CHACHA20_POLY1305, mode);
            assert_int_equal(
                cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"m", 1, ct0, sizeof ct0, &l0), CL_OK);
            cl_hpke_ctx_free(&x.s);
            cl_hpke_ctx_free(&x.r);
            base_live = W.n_live; /* sk_r, sk_s */
            for (int entry = 0; entry < 5; entry++) {
                for (long f = 1;; f++) {
                    cl_hpke_ctx_t ctx;
                    cl_key_t dk = CL_KEY_NONE;
                    cl_status_t rc;

                    memset(&ctx, 0xa5, sizeof ctx);
                    W.calls = 0;
                    W.fail_at = f;
                    switch (entry) {
                    case 0:
                        rc = cl_hpke_setup_s(&ctx, &wc, &x.p, x.pk_r, x.pk_r_len, enc, sizeof enc,
                                             &el);
                        break;
                    case 1: rc = cl_hpke_setup_r(&ctx, &wc, &x.p, x.sk_r, x.enc, x.enc_len); break;
                    case 2:
                        memset(&ctx, 0, sizeof ctx);
                        rc = cl_hpke_seal_once(&wc, &x.p, x.pk_r, x.pk_r_len, NULL, 0,
                                               (const uint8_t *)"m", 1, enc, sizeof enc, &el, ct,
                                               sizeof ct, &l);
                        break;
                    case 3:
                        memset(&ctx, 0, sizeof ctx);
                        rc = cl_hpke_open_once(&wc, &x.p, x.sk_r, x.enc, x.enc_len, NULL, 0, ct0,
                                               l0, pt, sizeof pt, &pl);
                        break;
                    default:
                        memset(&ctx, 0, sizeof ctx);
                        rc = cl_hpke_derive_key_pair(&wc, kems[k], ikm, sizeof ikm, &dk, NULL, 0,
                                                     NULL);
                        break;
                    }
                    if (W.calls < f) {
                        /* No fault was injected: the whole call ran. */
                        assert_int_equal(rc, CL_OK);
                        if (entry <= 1)
                            cl_hpke_ctx_free(&ctx);
                        if (entry == 3)
                            assert_memory_equal(pt, "m", 1);
                        cl_key_destroy(&wc, dk);
                        assert_int_equal(W.n_live, base_live);
                        break;
                    }
                    assert_int_equal(rc, CL_ERR_CRYPTO);
                    assert_true(all_zero(&ctx, sizeof ctx));
                    assert_int_equal(W.n_live, base_live);
                    total++;
                }
            }
            W.fail_at = 0;
            pair_free(&x);
            assert_int_equal(W.n_live, 0);
        }
    }
    print_message("provider faults injected: %d\n", total);
    assert_true(total > 200);
}

/* ------------------------------------------------- negative: arguments */

static void test_unsupported(void **state)
{
    static const cl_hpke_suite_t bad[] = {
        {0x0011, 1, 1},      {0x0012, 1, 1}, {0x0021, 1, 1}, {0x0000, 1, 1},
        {0xffff, 1, 1},      {0x0010, 2, 1}, {0x0010, 3, 1}, {0x0020, 0, 1},
        {0x0020, 1, 0x0002}, {0x0020, 1, 0}, {0x0010, 1, 4}, {0x0010, 1, 0xfffe},
    };
    pair_t x;
    uint8_t enc[CL_HPKE_MAX_ENC], ct[64], pt[64], pub[CL_PUB_MAX], ikm[32] = {0};
    size_t el = 0, l = 0;
    cl_hpke_ctx_t ctx;
    cl_key_t k = CL_KEY_NONE;
    (void)state;

    memset(ct, 0, sizeof ct);

    pair_init(&x, &crypto, CL_HPKE_KEM_X25519_SHA256, CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_BASE);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cl_hpke_params_t q = x.p;
        q.suite = bad[i];
        assert_int_equal(cl_hpke_suite_supported(&bad[i]), CL_ERR_UNSUPPORTED);
        assert_int_equal(
            cl_hpke_setup_s(&ctx, &crypto, &q, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
            CL_ERR_UNSUPPORTED);
        assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &q, x.sk_r, x.enc, x.enc_len),
                         CL_ERR_UNSUPPORTED);
        assert_int_equal(cl_hpke_seal_once(&crypto, &q, x.pk_r, x.pk_r_len, NULL, 0, pt, 1, enc,
                                           sizeof enc, &el, ct, sizeof ct, &l),
                         CL_ERR_UNSUPPORTED);
        assert_int_equal(cl_hpke_open_once(&crypto, &q, x.sk_r, x.enc, x.enc_len, NULL, 0, ct, 17,
                                           pt, sizeof pt, &l),
                         CL_ERR_UNSUPPORTED);
    }
    /* Modes beyond auth_psk. */
    for (unsigned m = 4; m < 256; m += 60) {
        cl_hpke_params_t q = x.p;
        q.mode = (uint8_t)m;
        assert_int_equal(
            cl_hpke_setup_s(&ctx, &crypto, &q, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
            CL_ERR_UNSUPPORTED);
        assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &q, x.sk_r, x.enc, x.enc_len),
                         CL_ERR_UNSUPPORTED);
    }
    /* Export-only: no single-shot seal / open. */
    {
        cl_hpke_params_t q = x.p;
        q.suite.aead_id = CL_HPKE_AEAD_EXPORT_ONLY;
        assert_int_equal(cl_hpke_seal_once(&crypto, &q, x.pk_r, x.pk_r_len, NULL, 0, pt, 1, enc,
                                           sizeof enc, &el, ct, sizeof ct, &l),
                         CL_ERR_UNSUPPORTED);
        assert_int_equal(cl_hpke_open_once(&crypto, &q, x.sk_r, x.enc, x.enc_len, NULL, 0, ct, 17,
                                           pt, sizeof pt, &l),
                         CL_ERR_UNSUPPORTED);
    }
    assert_int_equal(
        cl_hpke_derive_key_pair(&crypto, 0x0011, ikm, sizeof ikm, &k, pub, sizeof pub, &el),
        CL_ERR_UNSUPPORTED);
    assert_int_equal(cl_hpke_enc_len(0x0011), 0);
    assert_int_equal(cl_hpke_enc_len(CL_HPKE_KEM_P256_SHA256), 65);
    assert_int_equal(cl_hpke_enc_len(CL_HPKE_KEM_X25519_SHA256), 32);
    pair_free(&x);
}

static void test_psk_inputs(void **state)
{
    static const uint8_t psk[33] = "0123456789abcdef0123456789abcdef";
    static const uint8_t id[] = "id";
    pair_t x;
    cl_hpke_ctx_t ctx;
    uint8_t enc[CL_HPKE_MAX_ENC];
    size_t el = 0;
    (void)state;

    pair_init(&x, &crypto, CL_HPKE_KEM_P256_SHA256, CL_HPKE_AEAD_AES_128_GCM,
              CL_HPKE_MODE_AUTH_PSK);
    struct {
        uint8_t mode;
        size_t psk_len, id_len;
        cl_status_t want;
    } cases[] = {
        {CL_HPKE_MODE_PSK, 32, 2, CL_OK},
        {CL_HPKE_MODE_PSK, 33, 2, CL_OK},
        {CL_HPKE_MODE_PSK, 32, 0, CL_ERR_INVALID_ARG},     /* psk without id */
        {CL_HPKE_MODE_PSK, 0, 2, CL_ERR_INVALID_ARG},      /* id without psk */
        {CL_HPKE_MODE_PSK, 0, 0, CL_ERR_INVALID_ARG},      /* missing */
        {CL_HPKE_MODE_PSK, 31, 2, CL_ERR_INVALID_ARG},     /* shorter than 32 */
        {CL_HPKE_MODE_AUTH_PSK, 0, 0, CL_ERR_INVALID_ARG}, /* missing */
        {CL_HPKE_MODE_AUTH_PSK, 32, 2, CL_OK},
        {CL_HPKE_MODE_BASE, 32, 2, CL_ERR_INVALID_ARG}, /* not needed */
        {CL_HPKE_MODE_AUTH, 32, 2, CL_ERR_INVALID_ARG}, /* not needed */
        {CL_HPKE_MODE_BASE, 0, 0, CL_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cl_hpke_params_t q = x.p;
        q.mode = cases[i].mode;
        q.psk = psk;
        q.psk_len = cases[i].psk_len;
        q.psk_id = id;
        q.psk_id_len = cases[i].id_len;
        assert_int_equal(
            cl_hpke_setup_s(&ctx, &crypto, &q, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
            cases[i].want);
        cl_hpke_ctx_free(&ctx);
        assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &q, x.sk_r, x.enc, x.enc_len),
                         cases[i].want);
        cl_hpke_ctx_free(&ctx);
    }
    /* NULL pointers with lengths. */
    {
        cl_hpke_params_t q = x.p;
        q.psk = NULL;
        assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &q, x.sk_r, x.enc, x.enc_len),
                         CL_ERR_INVALID_ARG);
        q = x.p;
        q.info = NULL;
        assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &q, x.sk_r, x.enc, x.enc_len),
                         CL_ERR_INVALID_ARG);
    }
    pair_free(&x);
}

static void test_keys_and_limits(void **state)
{
    static uint8_t big[CL_HPKE_MAX_INPUT + 1];
    pair_t x, y;
    cl_hpke_ctx_t ctx;
    cl_hpke_params_t q;
    uint8_t enc[CL_HPKE_MAX_ENC], pub[CL_PUB_MAX], out[CL_HPKE_MAX_EXPORT + 1];
    size_t el = 0, pl = 0;
    cl_key_t ed = CL_KEY_NONE, pubonly = CL_KEY_NONE, aeadk = CL_KEY_NONE, dk = CL_KEY_NONE;
    static const uint8_t key16[16] = {1};
    (void)state;

    pair_init(&x, &crypto, CL_HPKE_KEM_P256_SHA256, CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_AUTH);
    pair_init(&y, &crypto, CL_HPKE_KEM_X25519_SHA256, CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_AUTH);
    assert_int_equal(crypto.ops->key_generate(crypto.self, CL_KEY_ED25519, CL_KEY_USAGE_SIGN, &ed,
                                              pub, sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(
        crypto.ops->key_import_public(crypto.self, CL_KEY_X25519, y.pk_r, 32, &pubonly), CL_OK);
    assert_int_equal(cl_aead_import(&crypto, CL_AEAD_A128GCM, key16, 16, &aeadk), CL_OK);

    /* Recipient keys of the wrong type, or no private key at all. */
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &x.p, y.sk_r, x.enc, x.enc_len),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &y.p, x.sk_r, y.enc, y.enc_len),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &y.p, ed, y.enc, y.enc_len),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &y.p, pubonly, y.enc, y.enc_len),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &y.p, aeadk, y.enc, y.enc_len),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &y.p, CL_KEY_NONE, y.enc, y.enc_len),
                     CL_ERR_INVALID_ARG);
    assert_true(all_zero(&ctx, sizeof ctx));
    /* Sender keys of the wrong type, or none in an auth mode. */
    q = x.p;
    q.sender_key = y.sk_s;
    assert_int_equal(cl_hpke_setup_s(&ctx, &crypto, &q, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
                     CL_ERR_INVALID_ARG);
    q = y.p;
    q.sender_key = ed;
    assert_int_equal(cl_hpke_setup_s(&ctx, &crypto, &q, y.pk_r, y.pk_r_len, enc, sizeof enc, &el),
                     CL_ERR_INVALID_ARG);
    q.sender_key = CL_KEY_NONE;
    assert_int_equal(cl_hpke_setup_s(&ctx, &crypto, &q, y.pk_r, y.pk_r_len, enc, sizeof enc, &el),
                     CL_ERR_INVALID_ARG);
    q = y.p;
    q.sender_pub = NULL;
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &q, y.sk_r, y.enc, y.enc_len),
                     CL_ERR_INVALID_ARG);
    /* TEST ONLY ephemeral of the wrong type / none. */
    assert_int_equal(
        cl_hpke_test_setup_s(&ctx, &crypto, &x.p, x.pk_r, x.pk_r_len, y.sk_r, enc, sizeof enc, &el),
        CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_test_setup_s(&ctx, &crypto, &x.p, x.pk_r, x.pk_r_len, CL_KEY_NONE, enc,
                                          sizeof enc, &el),
                     CL_ERR_INVALID_ARG);

    /* Limits: CL_HPKE_MAX_INPUT bytes are fine, one more is CL_ERR_LIMIT. */
    q = x.p;
    q.info = big;
    q.info_len = CL_HPKE_MAX_INPUT;
    assert_int_equal(cl_hpke_setup_s(&ctx, &crypto, &q, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
                     CL_OK);
    assert_int_equal(cl_hpke_export(&ctx, big, CL_HPKE_MAX_INPUT, out, 32), CL_OK);
    assert_int_equal(cl_hpke_export(&ctx, big, CL_HPKE_MAX_INPUT + 1, out, 32), CL_ERR_LIMIT);
    assert_int_equal(cl_hpke_export(&ctx, NULL, 0, out, CL_HPKE_MAX_EXPORT), CL_OK);
    assert_int_equal(cl_hpke_export(&ctx, NULL, 0, out, CL_HPKE_MAX_EXPORT + 1),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_export(&ctx, NULL, 1, out, 32), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_export(&ctx, NULL, 0, NULL, 32), CL_ERR_INVALID_ARG);
    cl_hpke_ctx_free(&ctx);
    q.info_len = CL_HPKE_MAX_INPUT + 1;
    assert_int_equal(cl_hpke_setup_s(&ctx, &crypto, &q, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
                     CL_ERR_LIMIT);
    q = x.p;
    q.mode = CL_HPKE_MODE_AUTH_PSK;
    q.psk = big;
    q.psk_len = CL_HPKE_MAX_INPUT + 1;
    q.psk_id = big;
    q.psk_id_len = 1;
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &q, x.sk_r, x.enc, x.enc_len), CL_ERR_LIMIT);
    q.psk_len = 32;
    q.psk_id_len = CL_HPKE_MAX_INPUT + 1;
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &q, x.sk_r, x.enc, x.enc_len), CL_ERR_LIMIT);
    q.psk_len = CL_HPKE_MAX_INPUT;
    q.psk_id_len = CL_HPKE_MAX_INPUT;
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &q, x.sk_r, x.enc, x.enc_len), CL_OK);
    cl_hpke_ctx_free(&ctx);

    /* DeriveKeyPair arguments. */
    assert_int_equal(cl_hpke_derive_key_pair(&crypto, CL_HPKE_KEM_P256_SHA256, big, 31, &dk, pub,
                                             sizeof pub, &pl),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_derive_key_pair(&crypto, CL_HPKE_KEM_P256_SHA256, big,
                                             CL_HPKE_MAX_INPUT + 1, &dk, pub, sizeof pub, &pl),
                     CL_ERR_LIMIT);
    assert_int_equal(
        cl_hpke_derive_key_pair(&crypto, CL_HPKE_KEM_P256_SHA256, big, 32, &dk, pub, 64, &pl),
        CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(cl_hpke_derive_key_pair(&crypto, CL_HPKE_KEM_P256_SHA256, NULL, 32, &dk, pub,
                                             sizeof pub, &pl),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_derive_key_pair(&crypto, CL_HPKE_KEM_X25519_SHA256, big,
                                             CL_HPKE_MAX_INPUT, &dk, pub, sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(pl, 32);
    cl_key_destroy(&crypto, dk);

    cl_key_destroy(&crypto, ed);
    cl_key_destroy(&crypto, pubonly);
    cl_key_destroy(&crypto, aeadk);
    pair_free(&x);
    pair_free(&y);
}

static void test_buffers_and_roles(void **state)
{
    pair_t x;
    cl_hpke_ctx_t ctx;
    uint8_t enc[CL_HPKE_MAX_ENC], ct[64], pt[64], c2[64];
    size_t el = 0, l = 0, pl = 0, l2 = 0;
    cl_key_t old;
    static const uint8_t nonce[12];
    (void)state;

    pair_init(&x, &crypto, CL_HPKE_KEM_P256_SHA256, CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_MODE_BASE);
    /* enc buffer one byte short: nothing written, context freed. */
    memset(enc, 0xa5, sizeof enc);
    memset(&ctx, 0xa5, sizeof ctx);
    assert_int_equal(cl_hpke_setup_s(&ctx, &crypto, &x.p, x.pk_r, x.pk_r_len, enc, 64, &el),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_true(all_byte(enc, sizeof enc, 0xa5));
    assert_true(all_zero(&ctx, sizeof ctx));
    /* Seal into a buffer one byte short: nothing written, no sequence number used. */
    memset(ct, 0xa5, sizeof ct);
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"12345", 5, ct, 20, &l),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_true(all_byte(ct, sizeof ct, 0xa5));
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"12345", 5, ct, 21, &l), CL_OK);
    /* Open into a buffer one byte short: nothing written, no sequence number used. */
    memset(pt, 0xa5, sizeof pt);
    assert_int_equal(cl_hpke_open(&x.r, NULL, 0, ct, l, pt, 4, &pl), CL_ERR_BUFFER_TOO_SMALL);
    assert_true(all_byte(pt, sizeof pt, 0xa5));
    assert_int_equal(cl_hpke_open(&x.r, NULL, 0, ct, l, pt, 5, &pl), CL_OK);
    assert_memory_equal(pt, "12345", 5);
    /* Single-shot with short buffers: checked before any work, nothing written. */
    memset(enc, 0xa5, sizeof enc);
    memset(ct, 0xa5, sizeof ct);
    assert_int_equal(cl_hpke_seal_once(&crypto, &x.p, x.pk_r, x.pk_r_len, NULL, 0,
                                       (const uint8_t *)"12345", 5, enc, 64, &el, ct, sizeof ct,
                                       &l),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(cl_hpke_seal_once(&crypto, &x.p, x.pk_r, x.pk_r_len, NULL, 0,
                                       (const uint8_t *)"12345", 5, enc, sizeof enc, &el, ct, 20,
                                       &l),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_true(all_byte(enc, sizeof enc, 0xa5));
    assert_true(all_byte(ct, sizeof ct, 0xa5));
    assert_int_equal(cl_hpke_seal_once(&crypto, &x.p, x.pk_r, x.pk_r_len, NULL, 0,
                                       (const uint8_t *)"12345", 5, enc, sizeof enc, &el, ct, 21,
                                       &l),
                     CL_OK);
    assert_int_equal(cl_hpke_open_once(&crypto, &x.p, x.sk_r, enc, el, NULL, 0, ct, l, pt, 4, &pl),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(cl_hpke_open_once(&crypto, &x.p, x.sk_r, enc, el, NULL, 0, ct, l, pt, 5, &pl),
                     CL_OK);
    assert_int_equal(cl_hpke_seal_once(&crypto, &x.p, x.pk_r, x.pk_r_len, NULL, 0, pt, SIZE_MAX - 8,
                                       enc, sizeof enc, &el, ct, sizeof ct, &l),
                     CL_ERR_INVALID_ARG);

    /* Roles: a sender does not open, a recipient does not seal. */
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"x", 1, c2, sizeof c2, &l2),
                     CL_OK);
    assert_int_equal(cl_hpke_open(&x.s, NULL, 0, c2, l2, pt, sizeof pt, &pl), CL_ERR_STATE);
    assert_int_equal(cl_hpke_seal(&x.r, NULL, 0, (const uint8_t *)"x", 1, c2, sizeof c2, &l2),
                     CL_ERR_STATE);

    /* Free: the key is destroyed, the context zeroed; every call after it is CL_ERR_STATE. */
    old = x.s.key;
    cl_hpke_ctx_free(&x.s);
    assert_true(all_zero(&x.s, sizeof x.s));
    assert_int_equal(cl_aead_encrypt(&crypto, old, nonce, 12, NULL, 0, NULL, 0, c2, sizeof c2, &l2),
                     CL_ERR_NOT_FOUND);
    assert_int_equal(cl_hpke_seal(&x.s, NULL, 0, (const uint8_t *)"x", 1, c2, sizeof c2, &l2),
                     CL_ERR_STATE);
    assert_int_equal(cl_hpke_export(&x.s, NULL, 0, c2, 16), CL_ERR_STATE);
    cl_hpke_ctx_free(&x.s); /* twice is fine */
    cl_hpke_ctx_free(NULL);
    memset(&ctx, 0, sizeof ctx);
    cl_hpke_ctx_free(&ctx);
    assert_int_equal(cl_hpke_open(&ctx, NULL, 0, c2, l2, pt, sizeof pt, &pl), CL_ERR_STATE);

    /* NULL arguments. */
    assert_int_equal(cl_hpke_setup_s(NULL, &crypto, &x.p, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_s(&ctx, NULL, &x.p, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_s(&ctx, &crypto, NULL, x.pk_r, x.pk_r_len, enc, sizeof enc, &el),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_s(&ctx, &crypto, &x.p, NULL, 65, enc, sizeof enc, &el),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_s(&ctx, &crypto, &x.p, x.pk_r, x.pk_r_len, NULL, 65, &el),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_r(NULL, &crypto, &x.p, x.sk_r, x.enc, x.enc_len),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_setup_r(&ctx, &crypto, &x.p, x.sk_r, NULL, 65), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_seal(NULL, NULL, 0, pt, 1, ct, sizeof ct, &l), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_open(NULL, NULL, 0, ct, 17, pt, sizeof pt, &l), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_export(NULL, NULL, 0, pt, 1), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_suite_supported(NULL), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_hpke_seal_once(&crypto, NULL, x.pk_r, x.pk_r_len, NULL, 0, pt, 1, enc,
                                       sizeof enc, &el, ct, sizeof ct, &l),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(
        cl_hpke_open_once(&crypto, NULL, x.sk_r, enc, el, NULL, 0, ct, l, pt, sizeof pt, &pl),
        CL_ERR_INVALID_ARG);
    pair_free(&x);
}

/* The context holds no secret beyond what its fields document; check its size stays small. */
static void test_context_size(void **state)
{
    (void)state;
    print_message("sizeof(cl_hpke_ctx_t) = %zu\n", sizeof(cl_hpke_ctx_t));
    assert_true(sizeof(cl_hpke_ctx_t) <= 96);
}

static int setup(void **state)
{
    (void)state;
    tu_crypto(&crypto, 0);
    tu_crypto(&crypto2, CL_CRYPTO_OPENSSL_NO_FASTPATH);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cl_crypto_openssl_free(&crypto);
    cl_crypto_openssl_free(&crypto2);
    return 0;
}

int main(void)
{
    /* clang-format off */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc9180_vectors),
        cmocka_unit_test(test_rfc9180_extra_vectors),
        cmocka_unit_test(test_chacha20_poly1305),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_named_setups),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_reordering),
        cmocka_unit_test(test_wrong_inputs),
        cmocka_unit_test(test_sequence),
        cmocka_unit_test(test_invalid_public_keys),
        cmocka_unit_test(test_zero_dh_output),
        cmocka_unit_test(test_refused_before_crypto),
        cmocka_unit_test(test_derive_rejection_sampling),
        cmocka_unit_test(test_provider_faults),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_psk_inputs),
        cmocka_unit_test(test_keys_and_limits),
        cmocka_unit_test(test_buffers_and_roles),
        cmocka_unit_test(test_context_size),
    };
    /* clang-format on */
    return cmocka_run_group_tests(tests, setup, teardown);
}
