/*
 * test_cose.c - COSE_Encrypt0 / COSE_Sign1 against the cose-wg examples, and refusals.
 *
 * One generic function runs every entry of tests/vectors/cose-examples.json:
 * Encrypt0 entries are parsed, their Enc_structure rebuilt, then (when the
 * provider implements the AEAD) re-encrypted byte for byte from the key,
 * decrypted, and tampered with; Sign1 entries are parsed, their ToBeSigned
 * rebuilt, the signature verified with the imported public key (negative
 * entries must not verify), and EdDSA signatures reproduced byte for byte
 * from the private key. Ed448 and AEADs the provider lacks are skipped and
 * counted. Then hand-written tests for the parser and header rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/crypto_openssl.h"

struct counts {
    size_t enc_ok, enc_skipped, sign_ok, sign_neg, sign_reproduced, sign_skipped;
};

/* The bucket as the builders see it: h'a0' means "no protected attributes". */
static void assert_structures_use(const cl_cose_msg_t *m, const uint8_t *prot, size_t prot_len)
{
    tu_assert_bytes(m->protected_hdr, m->protected_len, prot, prot_len);
}

static void encrypt0_vector(const cJSON *v, const cl_crypto_t *c, struct counts *cnt)
{
    const char *id = tu_str(v, "id");
    size_t msg_len, prot_len, ct_len, encs_len, iv_len, k_len, pt_len, aad_len, piv_len;
    uint8_t *msg = tu_hexm(v, "expected_output", &msg_len);
    uint8_t *prot = tu_hexm(v, "protected", &prot_len);
    uint8_t *ct = tu_hexm(v, "ciphertext", &ct_len);
    uint8_t *encs = tu_hexm(v, "enc_structure", &encs_len);
    uint8_t *iv = tu_hexm(v, "iv", &iv_len);
    uint8_t *pt = tu_hexm(v, "plaintext_hex", &pt_len);
    uint8_t *aad = tu_hexm(v, "external_aad", &aad_len);
    uint8_t *piv = tu_hexm(v, "partial_iv", &piv_len);
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(v, "key");
    uint8_t *k = tu_hexm(key, "k", &k_len);
    int alg = cJSON_GetObjectItemCaseSensitive(v, "alg")->valueint;
    cl_cose_msg_t m;
    uint8_t buf[256], out[256];
    size_t len = 0;
    const uint8_t *val;
    size_t val_len;
    int64_t a;
    cl_cbor_dec_t d;
    const uint8_t *p;
    size_t n;

    /* parse: tagged, the three parts where the example says */
    assert_int_equal(cl_cose_encrypt0_parse(&m, msg, msg_len), CL_OK);
    assert_true(m.tagged);
    assert_structures_use(&m, prot, prot_len);
    tu_assert_bytes(m.content, m.content_len, ct, ct_len);
    assert_null(m.signature);
    assert_int_equal(cl_cose_sign1_parse(&m, msg, msg_len), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_cose_encrypt0_parse(&m, msg, msg_len), CL_OK);
    assert_int_equal(cl_cose_header_alg(&m, &a), CL_OK);
    assert_int_equal(a, alg);

    /* the IV (or Partial IV) in the unprotected bucket */
    int64_t label = piv != NULL ? CL_COSE_HDR_PARTIAL_IV : CL_COSE_HDR_IV;
    assert_int_equal(cl_cose_header_find(m.unprotected, m.unprotected_len, label, &val, &val_len),
                     CL_OK);
    cl_cbor_dec_init(&d, val, val_len);
    assert_int_equal(cl_cbor_dec_bstr(&d, &p, &n), CL_OK);
    if (piv != NULL)
        tu_assert_bytes(p, n, piv, piv_len);
    else
        tu_assert_bytes(p, n, iv, iv_len);

    /* Enc_structure: sized, then written */
    size_t need = 0;
    assert_int_equal(cl_cose_enc_structure(NULL, 0, &need, "Encrypt0", m.protected_hdr,
                                           m.protected_len, aad, aad_len),
                     CL_OK);
    assert_int_equal(need, encs_len);
    assert_int_equal(cl_cose_enc_structure(buf, encs_len - 1, &len, "Encrypt0", m.protected_hdr,
                                           m.protected_len, aad, aad_len),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(cl_cose_enc_structure(buf, sizeof buf, &len, "Encrypt0", m.protected_hdr,
                                           m.protected_len, aad, aad_len),
                     CL_OK);
    tu_assert_bytes(buf, len, encs, encs_len);

    /* crypto, when the provider has this AEAD */
    cl_key_t kh = CL_KEY_NONE;
    cl_status_t rc = cl_aead_import(c, (cl_aead_alg_t)alg, k, k_len, &kh);
    if (rc == CL_ERR_UNSUPPORTED) {
        printf("SKIP %s: AEAD alg %d not in the provider\n", id, alg);
        cnt->enc_skipped++;
        return;
    }
    assert_int_equal(rc, CL_OK);

    /* re-encrypt from the key: the example byte for byte */
    assert_int_equal(cl_cose_encrypt0_encrypt(c, kh, iv, iv_len, prot, prot_len, m.unprotected,
                                              m.unprotected_len, aad, aad_len, pt, pt_len, true,
                                              out, sizeof out, &len),
                     CL_OK);
    tu_assert_bytes(out, len, msg, msg_len);
    /* an exact buffer works, one byte less does not (and leaves nothing behind) */
    assert_int_equal(cl_cose_encrypt0_encrypt(c, kh, iv, iv_len, prot, prot_len, m.unprotected,
                                              m.unprotected_len, aad, aad_len, pt, pt_len, true,
                                              out, msg_len, &len),
                     CL_OK);
    tu_assert_bytes(out, len, msg, msg_len);
    size_t len2 = 777;
    assert_int_equal(cl_cose_encrypt0_encrypt(c, kh, iv, iv_len, prot, prot_len, m.unprotected,
                                              m.unprotected_len, aad, aad_len, pt, pt_len, true,
                                              out, msg_len - 1, &len2),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len2, 777);
    for (size_t i = 0; i < msg_len - 1; i++)
        assert_int_equal(out[i], 0);
    /* untagged */
    assert_int_equal(cl_cose_encrypt0_encrypt(c, kh, iv, iv_len, prot, prot_len, m.unprotected,
                                              m.unprotected_len, aad, aad_len, pt, pt_len, false,
                                              out, sizeof out, &len),
                     CL_OK);
    tu_assert_bytes(out, len, msg + 1, msg_len - 1);

    /* decrypt */
    uint8_t dec[256];
    size_t dlen = 0;
    assert_int_equal(
        cl_cose_encrypt0_decrypt(c, kh, iv, iv_len, &m, aad, aad_len, dec, sizeof dec, &dlen),
        CL_OK);
    tu_assert_bytes(dec, dlen, pt, pt_len);

    /* tampering: a bit of the tag, of the ciphertext, of the protected bucket, the aad */
    size_t flips[3];
    flips[0] = msg_len - 1;                                    /* last tag byte */
    flips[1] = (size_t)(m.content - msg);                      /* first ciphertext byte */
    flips[2] = (size_t)(m.protected_hdr - msg) + prot_len - 1; /* alg value */
    for (size_t f = 0; f < 3; f++) {
        uint8_t bad[256];
        cl_cose_msg_t mb;
        memcpy(bad, msg, msg_len);
        bad[flips[f]] ^= 0x01;
        assert_int_equal(cl_cose_encrypt0_parse(&mb, bad, msg_len), CL_OK);
        dlen = 5;
        assert_int_equal(
            cl_cose_encrypt0_decrypt(c, kh, iv, iv_len, &mb, aad, aad_len, dec, sizeof dec, &dlen),
            CL_ERR_AUTH);
    }
    assert_int_equal(cl_cose_encrypt0_decrypt(c, kh, iv, iv_len, &m, (const uint8_t *)"x", 1, dec,
                                              sizeof dec, &dlen),
                     CL_ERR_AUTH);
    cl_key_destroy(c, kh);
    cnt->enc_ok++;
}

static void sign1_vector(const cJSON *v, const cl_crypto_t *c, struct counts *cnt)
{
    const char *id = tu_str(v, "id");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(v, "key");
    const char *crv = tu_str(key, "crv");
    bool expect = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "expect_success"));
    int alg = cJSON_GetObjectItemCaseSensitive(v, "alg")->valueint;
    size_t msg_len, tbs_len, tbsi_len, aad_len, x_len, y_len, d_len, pl_len, prot_len;
    uint8_t *msg = tu_hexm(v, "expected_output", &msg_len);
    uint8_t *tbs = tu_hexm(v, "to_be_signed_from_message", &tbs_len);
    uint8_t *tbsi = tu_hexm(v, "to_be_signed_intermediate", &tbsi_len);
    uint8_t *aad = tu_hexm(v, "external_aad", &aad_len);
    uint8_t *pl = tu_hexm(v, "payload_hex", &pl_len);
    uint8_t *prot = tu_hexm(v, "protected", &prot_len);
    uint8_t *x = tu_hexm(key, "x", &x_len);
    uint8_t *y = tu_hexm(key, "y", &y_len);
    uint8_t *dk = tu_hexm(key, "d", &d_len);
    cl_cose_msg_t m;
    uint8_t buf[512], out[512];
    size_t len = 0;
    cl_key_t pub = CL_KEY_NONE, priv = CL_KEY_NONE;
    cl_key_type_t kt;
    cl_status_t rc;

    if (strcmp(crv, "Ed448") == 0) {
        printf("SKIP %s: Ed448 is not a Cloister algorithm\n", id);
        cnt->sign_skipped++;
        return;
    }
    assert_true(alg == CL_SIG_ES256 || alg == CL_SIG_EDDSA);
    kt = alg == CL_SIG_ES256 ? CL_KEY_P256 : CL_KEY_ED25519;

    rc = cl_cose_sign1_parse(&m, msg, msg_len);
    if (rc != CL_OK) {
        /* sign-fail-01: a tag other than 18 is not a COSE_Sign1 */
        assert_false(expect);
        printf("negative %s: refused by the parser (%s)\n", id, cl_status_str(rc));
        cnt->sign_neg++;
        return;
    }
    tu_assert_bytes(m.protected_hdr, m.protected_len, prot, prot_len);
    if (expect) /* sign-fail-02 changes the payload */
        tu_assert_bytes(m.content, m.content_len, pl, pl_len);

    /* ToBeSigned from the message; for the positive entries also the example's intermediate */
    size_t need = 0;
    assert_int_equal(cl_cose_sig_structure(NULL, 0, &need, m.protected_hdr, m.protected_len, aad,
                                           aad_len, m.content, m.content_len),
                     CL_OK);
    assert_int_equal(need, tbs_len);
    assert_int_equal(cl_cose_sig_structure(buf, sizeof buf, &len, m.protected_hdr, m.protected_len,
                                           aad, aad_len, m.content, m.content_len),
                     CL_OK);
    tu_assert_bytes(buf, len, tbs, tbs_len);
    if (expect)
        tu_assert_bytes(buf, len, tbsi, tbsi_len);

    /* public key: P-256 as 0x04 || x || y, Ed25519 as x */
    uint8_t pk[CL_PUB_MAX];
    size_t pk_len = 0;
    if (kt == CL_KEY_P256) {
        assert_int_equal(x_len, 32);
        assert_int_equal(y_len, 32);
        pk[0] = 0x04;
        memcpy(pk + 1, x, 32);
        memcpy(pk + 33, y, 32);
        pk_len = 65;
    } else {
        assert_int_equal(x_len, 32);
        memcpy(pk, x, 32);
        pk_len = 32;
    }
    assert_int_equal(c->ops->key_import_public(c->self, kt, pk, pk_len, &pub), CL_OK);

    rc = cl_cose_sign1_verify(c, pub, (cl_sig_alg_t)alg, &m, aad, aad_len, NULL, 0);
    if (!expect) {
        if (rc == CL_OK)
            fail_msg("%s: a negative example verified", id);
        printf("negative %s: refused by verify (%s)\n", id, cl_status_str(rc));
        cnt->sign_neg++;
        cl_key_destroy(c, pub);
        return;
    }
    assert_int_equal(rc, CL_OK);

    /* the same message with one signature bit flipped, or another aad, or alg expectation */
    uint8_t bad[512];
    cl_cose_msg_t mb;
    memcpy(bad, msg, msg_len);
    bad[msg_len - 1] ^= 0x80;
    assert_int_equal(cl_cose_sign1_parse(&mb, bad, msg_len), CL_OK);
    assert_int_equal(cl_cose_sign1_verify(c, pub, (cl_sig_alg_t)alg, &mb, aad, aad_len, NULL, 0),
                     CL_ERR_AUTH);
    assert_int_equal(
        cl_cose_sign1_verify(c, pub, (cl_sig_alg_t)alg, &m, (const uint8_t *)"x", 1, NULL, 0),
        CL_ERR_AUTH);
    cl_sig_alg_t other = alg == CL_SIG_ES256 ? CL_SIG_EDDSA : CL_SIG_ES256;
    assert_int_equal(cl_cose_sign1_verify(c, pub, other, &m, aad, aad_len, NULL, 0), CL_ERR_AUTH);
    /* detached: the same payload given separately verifies, another one does not */
    assert_int_equal(cl_cose_sign1_verify(c, pub, (cl_sig_alg_t)alg, &m, aad, aad_len, pl, pl_len),
                     CL_OK);
    assert_int_equal(
        cl_cose_sign1_verify(c, pub, (cl_sig_alg_t)alg, &m, aad, aad_len, pl, pl_len - 1),
        CL_ERR_AUTH);

    /* sign with the private key */
    assert_int_equal(d_len, 32);
    assert_int_equal(c->ops->key_import_private(c->self, kt, CL_KEY_USAGE_SIGN, dk, d_len, &priv),
                     CL_OK);
    assert_int_equal(cl_cose_sign1_sign(c, priv, (cl_sig_alg_t)alg, m.protected_hdr,
                                        m.protected_len, m.unprotected, m.unprotected_len, aad,
                                        aad_len, m.content, m.content_len, m.tagged, out,
                                        sizeof out, &len),
                     CL_OK);
    if (alg == CL_SIG_EDDSA) {
        /* Ed25519 is deterministic: the example byte for byte */
        tu_assert_bytes(out, len, msg, msg_len);
        cnt->sign_reproduced++;
    } else {
        /* ECDSA is randomized: the same length, and it verifies */
        assert_int_equal(len, msg_len);
    }
    cl_cose_msg_t m2;
    assert_int_equal(cl_cose_sign1_parse(&m2, out, len), CL_OK);
    assert_int_equal(cl_cose_sign1_verify(c, pub, (cl_sig_alg_t)alg, &m2, aad, aad_len, NULL, 0),
                     CL_OK);
    /* a too-small buffer: refused before signing, nothing written */
    memset(out, 0xee, sizeof out);
    size_t len2 = 777;
    assert_int_equal(cl_cose_sign1_sign(c, priv, (cl_sig_alg_t)alg, m.protected_hdr,
                                        m.protected_len, m.unprotected, m.unprotected_len, aad,
                                        aad_len, m.content, m.content_len, m.tagged, out,
                                        msg_len - 1, &len2),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len2, 777);
    assert_int_equal(out[0], 0xee);
    /* a protected alg that is not the one used is refused */
    static const uint8_t wrong_alg[] = {0xa1, 0x01, 0x38, 0x22}; /* {1: -35} */
    assert_int_equal(cl_cose_sign1_sign(c, priv, (cl_sig_alg_t)alg, wrong_alg, sizeof wrong_alg,
                                        NULL, 0, NULL, 0, pl, pl_len, true, out, sizeof out, &len),
                     CL_ERR_INVALID_ARG);

    cl_key_destroy(c, priv);
    cl_key_destroy(c, pub);
    cnt->sign_ok++;
}

static void test_cose_examples(void **state)
{
    (void)state;
    cJSON *root = tu_load_vectors("cose-examples.json");
    const cJSON *examples = cJSON_GetObjectItemCaseSensitive(root, "examples");
    const cJSON *v;
    cl_crypto_t c;
    struct counts cnt = {0};
    size_t total = 0;

    tu_crypto(&c, 0);
    cJSON_ArrayForEach(v, examples)
    {
        const char *type = tu_str(v, "type");
        total++;
        if (strcmp(type, "COSE_Encrypt0") == 0)
            encrypt0_vector(v, &c, &cnt);
        else if (strcmp(type, "COSE_Sign1") == 0)
            sign1_vector(v, &c, &cnt);
        else
            fail_msg("unknown example type %s", type);
    }
    printf("cose-examples: %zu entries: Encrypt0 %zu ok, %zu skipped; Sign1 %zu ok "
           "(%zu reproduced byte for byte), %zu negatives refused, %zu skipped\n",
           total, cnt.enc_ok, cnt.enc_skipped, cnt.sign_ok, cnt.sign_reproduced, cnt.sign_neg,
           cnt.sign_skipped);
    assert_int_equal(total,
                     cnt.enc_ok + cnt.enc_skipped + cnt.sign_ok + cnt.sign_neg + cnt.sign_skipped);
    assert_true(cnt.enc_ok >= 4);      /* alg 10 and 30 entries */
    assert_int_equal(cnt.sign_neg, 6); /* sign-fail-01..07 without 05 */
    assert_true(cnt.sign_reproduced >= 1);
    assert_true(cnt.sign_skipped <= 1); /* Ed448 only */
    cl_crypto_openssl_free(&c);
    cJSON_Delete(root);
}

/* ------------------------------------------------------------------ */
/* Parser and header rules (no crypto)                                 */
/* ------------------------------------------------------------------ */

static void test_parse_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        bool sign1;
        cl_status_t rc;
        const char *why;
    } cases[] = {
        {"", false, CL_ERR_BAD_INPUT, "empty"},
        {"d08340a040", false, CL_OK, "minimal Encrypt0"},
        {"8340a040", false, CL_OK, "untagged"},
        {"8341a0a040", false, CL_OK, "protected h'a0'"},
        {"8340a0f6", false, CL_OK, "detached ciphertext"},
        {"d28340a040", false, CL_ERR_BAD_INPUT, "Sign1 tag on Encrypt0"},
        {"d18340a040", false, CL_ERR_BAD_INPUT, "MAC0 tag"},
        {"d8108340a040", false, CL_ERR_BAD_INPUT, "tag 16 in non-shortest form"},
        {"d0d08340a040", false, CL_ERR_BAD_INPUT, "two tags"},
        {"8240a0", false, CL_ERR_BAD_INPUT, "2 elements"},
        {"8440a04040", false, CL_ERR_BAD_INPUT, "4 elements for Encrypt0"},
        {"8340a04000", false, CL_ERR_BAD_INPUT, "trailing byte"},
        {"83a0a040", false, CL_ERR_BAD_INPUT, "protected not wrapped in a bstr"},
        {"8341a1a040", false, CL_ERR_BAD_INPUT, "protected bstr holds a truncated map"},
        {"834101a040", false, CL_ERR_BAD_INPUT, "protected bstr holds an int"},
        {"8342a000a040", false, CL_ERR_BAD_INPUT, "protected bstr: map + trailing"},
        {"834180a040", false, CL_ERR_BAD_INPUT, "protected bstr holds an array"},
        {"8340f640", false, CL_ERR_BAD_INPUT, "unprotected is nil"},
        {"83408040", false, CL_ERR_BAD_INPUT, "unprotected is an array"},
        {"8340a001", false, CL_ERR_BAD_INPUT, "content is an int"},
        {"8340a060", false, CL_ERR_BAD_INPUT, "content is a tstr"},
        {"9f40a040ff", false, CL_ERR_UNSUPPORTED, "indefinite array"},
        {"8340bfff40", false, CL_ERR_UNSUPPORTED, "indefinite unprotected map"},
        {"8340a0", false, CL_ERR_BAD_INPUT, "truncated"},
        {"d28440a04040", true, CL_OK, "minimal Sign1"},
        {"8440a0f640", true, CL_OK, "detached payload"},
        {"d08440a04040", true, CL_ERR_BAD_INPUT, "Encrypt0 tag on Sign1"},
        {"8340a040", true, CL_ERR_BAD_INPUT, "3 elements for Sign1"},
        {"8440a04040f6", true, CL_ERR_BAD_INPUT, "trailing nil"},
        {"8440a040f6", true, CL_ERR_BAD_INPUT, "nil signature"},
        {"8540a0404040", true, CL_ERR_BAD_INPUT, "5 elements"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[64];
        size_t n = tu_hex(cases[i].hex, buf, sizeof buf);
        cl_cose_msg_t m;
        memset(&m, 0x55, sizeof m);
        cl_status_t rc =
            cases[i].sign1 ? cl_cose_sign1_parse(&m, buf, n) : cl_cose_encrypt0_parse(&m, buf, n);
        if (rc != cases[i].rc)
            fail_msg("%s (%s): got %s, wanted %s", cases[i].why, cases[i].hex, cl_status_str(rc),
                     cl_status_str(cases[i].rc));
    }
    /* the parts of a detached Sign1 */
    uint8_t det[] = {0x84, 0x41, 0xa0, 0xa0, 0xf6, 0x41, 0x07};
    cl_cose_msg_t m;
    assert_int_equal(cl_cose_sign1_parse(&m, det, sizeof det), CL_OK);
    assert_false(m.tagged);
    assert_ptr_equal(m.protected_hdr, det + 2);
    assert_int_equal(m.protected_len, 1);
    assert_ptr_equal(m.unprotected, det + 3);
    assert_int_equal(m.unprotected_len, 1);
    assert_null(m.content);
    assert_int_equal(m.content_len, 0);
    assert_ptr_equal(m.signature, det + 6);
    assert_int_equal(m.signature_len, 1);
    assert_int_equal(cl_cose_sign1_parse(NULL, det, sizeof det), CL_ERR_INVALID_ARG);
}

static void test_header_find(void **state)
{
    (void)state;
    uint8_t map[64];
    const uint8_t *v;
    size_t vlen, n;

    /* {1: -7, "x": 5, 4: h'3131', -1: [1, 2], 33: 24} */
    n = tu_hex("a5012661780504423131208201021821"
               "1818",
               map, sizeof map);
    assert_int_equal(cl_cose_header_find(map, n, CL_COSE_HDR_ALG, &v, &vlen), CL_OK);
    tu_assert_bytes(v, vlen, (const uint8_t *)"\x26", 1);
    assert_int_equal(cl_cose_header_find(map, n, CL_COSE_HDR_KID, &v, &vlen), CL_OK);
    tu_assert_bytes(v, vlen, (const uint8_t *)"\x42\x31\x31", 3);
    assert_int_equal(cl_cose_header_find(map, n, -1, &v, &vlen), CL_OK);
    tu_assert_bytes(v, vlen, (const uint8_t *)"\x82\x01\x02", 3);
    assert_int_equal(cl_cose_header_find(map, n, CL_COSE_HDR_X5CHAIN, &v, &vlen), CL_OK);
    tu_assert_bytes(v, vlen, (const uint8_t *)"\x18\x18", 2);
    /* the text label "x" is skipped, not matched to anything */
    assert_int_equal(cl_cose_header_find(map, n, 5, &v, &vlen), CL_ERR_NOT_FOUND);
    assert_int_equal(cl_cose_header_find(map, n, 24, &v, &vlen), CL_ERR_NOT_FOUND);
    assert_int_equal(cl_cose_header_find(map, n, INT64_MIN, &v, &vlen), CL_ERR_NOT_FOUND);
    assert_int_equal(cl_cose_header_find(NULL, 0, 1, &v, &vlen), CL_ERR_NOT_FOUND);

    static const struct {
        const char *hex;
        int64_t label;
        cl_status_t rc;
        const char *why;
    } cases[] = {
        {"a2010a010b", 1, CL_ERR_BAD_INPUT, "duplicate of the label looked for"},
        {"a2040a040b", 1, CL_ERR_BAD_INPUT, "duplicate of another label"},
        {"a3200a01002029", 1, CL_ERR_BAD_INPUT, "duplicate negative label"},
        {"a2617801617802", 1, CL_ERR_NOT_FOUND, "text labels are not checked"},
        {"a1010a00", 1, CL_ERR_BAD_INPUT, "trailing byte"},
        {"a201", 1, CL_ERR_BAD_INPUT, "truncated"},
        {"a1011805", 1, CL_ERR_BAD_INPUT, "non-shortest value"},
        {"820102", 1, CL_ERR_BAD_INPUT, "not a map"},
        {"bf010aff", 1, CL_ERR_UNSUPPORTED, "indefinite map"},
        {"a11b80000000000000000a", 1, CL_ERR_NOT_FOUND, "label beyond int64"},
        {"a23b7fffffffffffffff013b7fffffffffffffff02", INT64_MIN, CL_ERR_BAD_INPUT,
         "duplicate INT64_MIN"},
        {"a13b7fffffffffffffff01", INT64_MIN, CL_OK, "INT64_MIN"},
        {"a11b7fffffffffffffff01", INT64_MAX, CL_OK, "INT64_MAX"},
        {"a0", 1, CL_ERR_NOT_FOUND, "empty map"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        n = tu_hex(cases[i].hex, map, sizeof map);
        cl_status_t rc = cl_cose_header_find(map, n, cases[i].label, &v, &vlen);
        if (rc != cases[i].rc)
            fail_msg("%s (%s): got %s, wanted %s", cases[i].why, cases[i].hex, cl_status_str(rc),
                     cl_status_str(cases[i].rc));
    }
}

static void test_header_alg(void **state)
{
    (void)state;
    static const struct {
        const char *prot, *unprot;
        cl_status_t rc;
        int64_t alg;
    } cases[] = {
        {"a10126", "a0", CL_OK, -7},
        {"", "a10127", CL_OK, -8},                 /* unprotected only */
        {"a0", "a10127", CL_OK, -8},               /* empty map in the protected bucket */
        {"a10126", "a10126", CL_ERR_BAD_INPUT, 0}, /* in both buckets */
        {"a10126", "a10127", CL_ERR_BAD_INPUT, 0},
        {"", "a0", CL_ERR_NOT_FOUND, 0},
        {"a101654553323536", "a0", CL_ERR_UNSUPPORTED, 0},     /* "ES256" as text */
        {"a10140", "a0", CL_ERR_BAD_INPUT, 0},                 /* bstr alg */
        {"a1013b8000000000000000", "a0", CL_ERR_BAD_INPUT, 0}, /* beyond int64 */
        {"a201260126", "a0", CL_ERR_BAD_INPUT, 0},             /* duplicate */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t p[32], u[32];
        cl_cose_msg_t m;
        int64_t alg = 99;
        memset(&m, 0, sizeof m);
        m.protected_len = tu_hex(cases[i].prot, p, sizeof p);
        m.protected_hdr = m.protected_len ? p : NULL;
        m.unprotected_len = tu_hex(cases[i].unprot, u, sizeof u);
        m.unprotected = u;
        cl_status_t rc = cl_cose_header_alg(&m, &alg);
        if (rc != cases[i].rc)
            fail_msg("case %zu: got %s, wanted %s", i, cl_status_str(rc),
                     cl_status_str(cases[i].rc));
        if (rc == CL_OK)
            assert_int_equal(alg, cases[i].alg);
        else
            assert_int_equal(alg, 99);
    }
}

static void test_structures(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t len = 0, need = 0;
    static const uint8_t prot[] = {0xa1, 0x01, 0x0a};
    static const uint8_t empty_map[] = {0xa0};

    /* OSCORE's AAD: ["Encrypt0", h'', external_aad] */
    assert_int_equal(cl_cose_enc_structure(out, sizeof out, &len, "Encrypt0", NULL, 0,
                                           (const uint8_t *)"\x01\x02", 2),
                     CL_OK);
    tu_assert_bytes(out, len,
                    (const uint8_t *)"\x83\x68"
                                     "Encrypt0"
                                     "\x40\x42\x01\x02",
                    14);
    /* h'a0' is "no protected attributes": h'' in the structure */
    assert_int_equal(
        cl_cose_enc_structure(out, sizeof out, &len, "Encrypt0", empty_map, 1, NULL, 0), CL_OK);
    tu_assert_bytes(out, len,
                    (const uint8_t *)"\x83\x68"
                                     "Encrypt0"
                                     "\x40\x40",
                    12);
    assert_int_equal(cl_cose_sig_structure(out, sizeof out, &len, empty_map, 1, NULL, 0, NULL, 0),
                     CL_OK);
    tu_assert_bytes(out, len,
                    (const uint8_t *)"\x84\x6a"
                                     "Signature1"
                                     "\x40\x40\x40",
                    15);
    /* the other contexts */
    static const char *const ok[] = {"Encrypt", "Enc_Recipient", "Mac_Recipient", "Rec_Recipient"};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(cl_cose_enc_structure(NULL, 0, &need, ok[i], prot, sizeof prot, NULL, 0),
                         CL_OK);
        assert_int_equal(need, 1 + 1 + strlen(ok[i]) + 1 + sizeof prot + 1);
    }
    static const char *const bad[] = {"Signature1", "encrypt0", "", "Encrypt0 "};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(cl_cose_enc_structure(NULL, 0, &need, bad[i], NULL, 0, NULL, 0),
                         CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cose_enc_structure(NULL, 0, &need, NULL, NULL, 0, NULL, 0),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cose_enc_structure(NULL, 0, NULL, "Encrypt0", NULL, 0, NULL, 0),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_cose_sig_structure(NULL, 0, &need, NULL, 3, NULL, 0, NULL, 0),
                     CL_ERR_INVALID_ARG);
    /* too small: an error, and out_len untouched */
    len = 4242;
    assert_int_equal(cl_cose_sig_structure(out, 10, &len, prot, sizeof prot, NULL, 0, NULL, 0),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 4242);
}

/* ------------------------------------------------------------------ */
/* Verify rules with a stand-in provider                               */
/* ------------------------------------------------------------------ */

/* "Signature" = the first 64 bytes of the message, padded: checks what verify feeds in. */
static cl_status_t stub_sign(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                             size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len)
{
    (void)self;
    (void)priv;
    (void)alg;
    assert_true(sig_size >= 64);
    memset(sig, 0, 64);
    memcpy(sig, msg, msg_len < 64 ? msg_len : 64);
    *sig_len = 64;
    return CL_OK;
}

static int verify_calls;

static cl_status_t stub_verify(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                               size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    uint8_t want[64];
    size_t n = 0;
    verify_calls++;
    assert_int_equal(stub_sign(self, pub, alg, msg, msg_len, want, sizeof want, &n), CL_OK);
    return sig_len == 64 && memcmp(want, sig, 64) == 0 ? CL_OK : CL_ERR_AUTH;
}

static void test_verify_alg_rules(void **state)
{
    (void)state;
    static const cl_crypto_ops_t ops = {
        .version = CL_CRYPTO_OPS_VERSION, .name = "stub", .sign = stub_sign, .verify = stub_verify};
    cl_crypto_t c = {.ops = &ops, .self = NULL};
    static const uint8_t es256[] = {0xa1, 0x01, 0x26};
    static const uint8_t unknown[] = {0xa1, 0x01, 0x39, 0x03, 0xe6}; /* {1: -999} */
    static const uint8_t payload[] = "payload";
    uint8_t out[256];
    size_t len = 0;
    cl_cose_msg_t m;

    /* signed without alg in any bucket: verify refuses (nothing binds the algorithm) */
    assert_int_equal(cl_cose_sign1_sign(&c, 1, CL_SIG_ES256, NULL, 0, NULL, 0, NULL, 0, payload,
                                        sizeof payload, true, out, sizeof out, &len),
                     CL_OK);
    assert_int_equal(cl_cose_sign1_parse(&m, out, len), CL_OK);
    verify_calls = 0;
    assert_int_equal(cl_cose_sign1_verify(&c, 1, CL_SIG_ES256, &m, NULL, 0, NULL, 0), CL_ERR_AUTH);
    assert_int_equal(verify_calls, 0);

    /* with alg in the protected bucket */
    assert_int_equal(cl_cose_sign1_sign(&c, 1, CL_SIG_ES256, es256, sizeof es256, NULL, 0, NULL, 0,
                                        payload, sizeof payload, false, out, sizeof out, &len),
                     CL_OK);
    assert_int_equal(cl_cose_sign1_parse(&m, out, len), CL_OK);
    assert_false(m.tagged);
    assert_int_equal(cl_cose_sign1_verify(&c, 1, CL_SIG_ES256, &m, NULL, 0, NULL, 0), CL_OK);
    assert_int_equal(cl_cose_sign1_verify(&c, 1, CL_SIG_EDDSA, &m, NULL, 0, NULL, 0), CL_ERR_AUTH);
    assert_int_equal(cl_cose_sign1_verify(&c, 1, (cl_sig_alg_t)-35, &m, NULL, 0, NULL, 0),
                     CL_ERR_UNSUPPORTED);

    /* an unknown alg in the message never verifies */
    assert_int_equal(cl_cose_sign1_sign(&c, 1, CL_SIG_ES256, unknown, sizeof unknown, NULL, 0, NULL,
                                        0, payload, sizeof payload, true, out, sizeof out, &len),
                     CL_ERR_INVALID_ARG);
    uint8_t msg[] = {0x84, 0x45, 0xa1, 0x01, 0x39, 0x03, 0xe6, 0xa0, 0x40, 0x58, 0x40};
    uint8_t full[sizeof msg + 64];
    memcpy(full, msg, sizeof msg);
    memset(full + sizeof msg, 0, 64);
    assert_int_equal(cl_cose_sign1_parse(&m, full, sizeof full), CL_OK);
    verify_calls = 0;
    assert_int_equal(cl_cose_sign1_verify(&c, 1, CL_SIG_ES256, &m, NULL, 0, NULL, 0), CL_ERR_AUTH);
    assert_int_equal(verify_calls, 0);

    /* detached payload */
    uint8_t det[] = {0x84, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0xf6, 0x58, 0x40};
    uint8_t dfull[sizeof det + 64];
    size_t tbs_len = 0;
    memcpy(dfull, det, sizeof det);
    assert_int_equal(cl_cose_sig_structure(out, sizeof out, &tbs_len, es256, sizeof es256, NULL, 0,
                                           payload, sizeof payload),
                     CL_OK);
    memset(dfull + sizeof det, 0, 64);
    memcpy(dfull + sizeof det, out, tbs_len < 64 ? tbs_len : 64);
    assert_int_equal(cl_cose_sign1_parse(&m, dfull, sizeof dfull), CL_OK);
    assert_null(m.content);
    assert_int_equal(cl_cose_sign1_verify(&c, 1, CL_SIG_ES256, &m, NULL, 0, NULL, 0),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(
        cl_cose_sign1_verify(&c, 1, CL_SIG_ES256, &m, NULL, 0, payload, sizeof payload), CL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cose_examples), cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_header_find),   cmocka_unit_test(test_header_alg),
        cmocka_unit_test(test_structures),    cmocka_unit_test(test_verify_alg_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
