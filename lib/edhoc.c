/*
 * edhoc.c - EDHOC (RFC 9528) initiator and responder.
 *
 * The protocol is a transcript: TH_2 = H(G_Y, H(message_1)), TH_3 =
 * H(TH_2, PLAINTEXT_2, CRED_R), TH_4 = H(TH_3, PLAINTEXT_3, CRED_I), and a
 * chain of PRKs (PRK_2e -> PRK_3e2m -> PRK_4e3m -> PRK_out) where each static
 * DH authentication adds an ECDH secret. This file keeps only what the next
 * step needs in cl_edhoc_t (one transcript hash and the PRKs), builds each
 * message directly in the caller's buffer, and parses received messages in
 * place with the strict CBOR decoder (RFC 9528 requires deterministic CBOR,
 * so non-shortest or indefinite encodings are refused, as are the "surplus"
 * encodings of connection identifiers and compact ID_CRED of RFC 9529 s4).
 *
 * Secrets (PRKs, keystream, K_3/IV_3...) live on the stack or in the state
 * and are wiped on every path; AEAD keys are imported into the provider only
 * for the one operation that needs them. Every failure moves the session to
 * the ABORTED state: EDHOC errors are fatal (section 6).
 */
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/edhoc.h"

enum state {
    ST_NONE = 0,
    ST_START,   /* initialized */
    ST_WAIT_M2, /* I: message_1 sent */
    ST_HAVE_M2, /* I: message_2 verified */
    ST_WAIT_M4, /* I: message_3 sent (PRK_out ready) */
    ST_HAVE_M1, /* R: message_1 accepted */
    ST_WAIT_M3, /* R: message_2 sent */
    ST_DONE,    /* R: message_3 verified; I: message_4 verified */
    ST_ABORTED,
};

#define HASH_LEN 32
#define G_LEN 32 /* X25519 and compact P-256 coordinates */

/* Buffers sized for the largest credential material handled in one message. */
#define WORK_MAX (CL_EDHOC_MAX_CRED + 128)

static const cl_edhoc_suite_t suites[] = {
    {0, CL_AEAD_AES_CCM_16_64_128, 8, CL_KEY_X25519, CL_SIG_EDDSA, CL_KEY_ED25519,
     CL_AEAD_AES_CCM_16_64_128},
    {1, CL_AEAD_AES_CCM_16_128_128, 16, CL_KEY_X25519, CL_SIG_EDDSA, CL_KEY_ED25519,
     CL_AEAD_AES_CCM_16_64_128},
    {2, CL_AEAD_AES_CCM_16_64_128, 8, CL_KEY_P256, CL_SIG_ES256, CL_KEY_P256,
     CL_AEAD_AES_CCM_16_64_128},
    {3, CL_AEAD_AES_CCM_16_128_128, 16, CL_KEY_P256, CL_SIG_ES256, CL_KEY_P256,
     CL_AEAD_AES_CCM_16_64_128},
    {6, CL_AEAD_A128GCM, 16, CL_KEY_X25519, CL_SIG_ES256, CL_KEY_P256, CL_AEAD_A128GCM},
};

cl_status_t cl_edhoc_suite(int id, cl_edhoc_suite_t *out)
{
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if (suites[i].id == id) {
            if (out != NULL)
                *out = suites[i];
            return CL_OK;
        }
    }
    return CL_FAIL(CL_ERR_UNSUPPORTED);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

/* The selected suite's parameters (only called once s->suite is a supported suite). */
static const cl_edhoc_suite_t *suite_of(const cl_edhoc_t *s)
{
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        if (suites[i].id == s->suite)
            return &suites[i];
    return &suites[0]; /* unreachable: s->suite is validated when selected */
}

static cl_status_t abort_with(cl_edhoc_t *s, cl_status_t st)
{
    s->state = ST_ABORTED;
    cl_key_destroy(s->cfg->crypto, s->eph);
    s->eph = CL_KEY_NONE;
    cl_wipe(s->prk_3e2m, sizeof s->prk_3e2m);
    cl_wipe(s->prk_4e3m, sizeof s->prk_4e3m);
    cl_wipe(s->prk_out, sizeof s->prk_out);
    cl_wipe(s->prk_exporter, sizeof s->prk_exporter);
    return st;
}

static bool cfg_supports(const cl_edhoc_config_t *cfg, int suite)
{
    for (size_t i = 0; i < cfg->n_suites; i++)
        if (cfg->suites[i] == suite)
            return true;
    return false;
}

/* A byte string identifier that is the one-byte encoding of an int -24..23 (3.3.2). */
static bool is_int_byte(uint8_t b)
{
    return b <= 0x17 || (b >= 0x20 && b <= 0x37);
}

cl_status_t cl_edhoc_encode_cid(const uint8_t *cid, size_t cid_len, uint8_t *out, size_t out_size,
                                size_t *out_len)
{
    cl_cbor_enc_t e;
    if (out_len == NULL || cid_len > CL_EDHOC_MAX_CID || (cid_len > 0 && cid == NULL))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    cl_cbor_enc_init(&e, out, out_size);
    if (cid == NULL)
        cl_cbor_enc_bool(&e, true);
    else if (cid_len == 1 && is_int_byte(cid[0]))
        cl_cbor_enc_raw(&e, cid, 1);
    else
        cl_cbor_enc_bstr(&e, cid, cid_len);
    return cl_cbor_enc_finish(&e, out_len);
}

static void enc_id(cl_cbor_enc_t *e, const uint8_t *id, size_t len)
{
    if (len == 1 && is_int_byte(id[0]))
        cl_cbor_enc_raw(e, id, 1);
    else
        cl_cbor_enc_bstr(e, id, len);
}

/*
 * Decodes an identifier in the 3.3.2 representation: a one-byte int, or a
 * bstr that is not itself a one-byte int encoding ("surplus bstr").
 */
static cl_status_t dec_id(cl_cbor_dec_t *d, uint8_t *out, size_t max, size_t *len)
{
    cl_cbor_type_t t;
    cl_status_t st;
    if ((st = cl_cbor_dec_peek(d, &t)) != CL_OK)
        return st;
    if (t == CL_CBOR_UINT || t == CL_CBOR_NINT) {
        uint8_t b = *d->cur;
        if (!is_int_byte(b))
            return CL_FAIL(CL_ERR_BAD_INPUT); /* only -24..23 represent identifiers */
        d->cur++;
        out[0] = b;
        *len = 1;
        return CL_OK;
    }
    const uint8_t *p;
    size_t n;
    if ((st = cl_cbor_dec_bstr(d, &p, &n)) != CL_OK)
        return st;
    if (n > max || (n == 1 && is_int_byte(p[0])))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (n)
        memcpy(out, p, n);
    *len = n;
    return CL_OK;
}

/* H(parts) with the suite hash (SHA-256 for every suite we implement). */
static cl_status_t hash(const cl_edhoc_t *s, const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    return cl_sha256(s->cfg->crypto, parts, n, out);
}

/* Writes a bstr head for a 32-byte hash: 0x58 0x20. */
static const uint8_t BSTR32[2] = {0x58, 0x20};

/*
 * EDHOC_KDF(PRK, label, context, length) = HKDF-Expand(PRK, info, length)
 * with info = (label: int, context: bstr, length: uint).
 */
static cl_status_t kdf(const cl_edhoc_t *s, const uint8_t prk[32], int64_t label,
                       const uint8_t *ctx, size_t ctx_len, uint8_t *out, size_t len)
{
    uint8_t info[WORK_MAX + 16];
    cl_cbor_enc_t e;
    size_t n;
    cl_status_t st;

    cl_cbor_enc_init(&e, info, sizeof info);
    cl_cbor_enc_int(&e, label);
    cl_cbor_enc_bstr(&e, ctx, ctx_len);
    cl_cbor_enc_uint(&e, len);
    if ((st = cl_cbor_enc_finish(&e, &n)) != CL_OK)
        return st == CL_ERR_BUFFER_TOO_SMALL ? CL_FAIL(CL_ERR_LIMIT) : st;
    st = cl_hkdf_expand(s->cfg->crypto, prk, HASH_LEN, info, n, out, len);
    cl_wipe(info, n);
    return st;
}

/* ECDH with our key `priv` and a peer x-coordinate / key; 32-byte output. */
static cl_status_t ecdh(const cl_edhoc_t *s, cl_key_t priv, const uint8_t *pub, size_t pub_len,
                        uint8_t out[32])
{
    size_t n;
    cl_status_t st =
        s->cfg->crypto->ops->ecdh(s->cfg->crypto->self, priv, pub, pub_len, out, 32, &n);
    if (st == CL_OK && n != 32)
        st = CL_FAIL(CL_ERR_CRYPTO);
    return st;
}

/* Picks our credential for this method + suite. */
static const cl_edhoc_auth_t *select_auth(const cl_edhoc_config_t *cfg, bool static_dh,
                                          const cl_edhoc_suite_t *su)
{
    for (size_t i = 0; i < cfg->n_auth; i++) {
        const cl_edhoc_auth_t *a = &cfg->auth[i];
        if (a->static_dh != static_dh)
            continue;
        if (static_dh ? a->type == su->dh : a->type == su->sig_key)
            return a;
    }
    return NULL;
}

/*
 * ID_CRED in PLAINTEXT: {4: kid} travels as the kid alone in the 3.3.2
 * representation (3.5.3.2); any other map as is.
 */
static bool single_kid(const uint8_t *map, size_t len, const uint8_t **kid, size_t *kid_len)
{
    cl_cbor_dec_t d;
    size_t pairs;
    int64_t label;
    cl_cbor_dec_init(&d, map, len);
    if (cl_cbor_dec_map(&d, &pairs) != CL_OK || pairs != 1 ||
        cl_cbor_dec_int(&d, &label) != CL_OK || label != CL_COSE_HDR_KID ||
        cl_cbor_dec_bstr(&d, kid, kid_len) != CL_OK || !cl_cbor_dec_at_end(&d))
        return false;
    return true;
}

static void enc_id_cred(cl_cbor_enc_t *e, const uint8_t *id_cred, size_t len)
{
    const uint8_t *kid;
    size_t kid_len;
    if (single_kid(id_cred, len, &kid, &kid_len))
        enc_id(e, kid, kid_len);
    else
        cl_cbor_enc_raw(e, id_cred, len);
}

/*
 * Reads ID_CRED from a PLAINTEXT into map form in out: a map (which must not
 * be a lone kid), or a compact kid (int or bstr) expanded to {4: kid}.
 */
static cl_status_t dec_id_cred(cl_cbor_dec_t *d, uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_cbor_type_t t;
    cl_status_t st;
    if ((st = cl_cbor_dec_peek(d, &t)) != CL_OK)
        return st;
    if (t == CL_CBOR_MAP) {
        const uint8_t *raw, *kid;
        size_t raw_len, kid_len;
        if ((st = cl_cbor_dec_raw(d, &raw, &raw_len)) != CL_OK)
            return st;
        if (single_kid(raw, raw_len, &kid, &kid_len)) /* must have been compact */
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (raw_len > out_size)
            return CL_FAIL(CL_ERR_LIMIT);
        memcpy(out, raw, raw_len);
        *out_len = raw_len;
        return CL_OK;
    }
    uint8_t kid[64];
    size_t kid_len;
    if ((st = dec_id(d, kid, sizeof kid, &kid_len)) != CL_OK)
        return st;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, out, out_size);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, CL_COSE_HDR_KID);
    cl_cbor_enc_bstr(&e, kid, kid_len);
    return cl_cbor_enc_finish(&e, out_len);
}

/*
 * Validates the EAD items in ead[0..len) and hands them to the hook.
 * Items: (label: int, ? value: bstr); padding (0) is skipped; an unknown
 * critical item (label < 0) aborts with CL_ERR_CRITICAL.
 */
static cl_status_t process_ead(const cl_edhoc_t *s, int message, const uint8_t *ead, size_t len)
{
    cl_cbor_dec_t d;
    cl_status_t st;
    cl_cbor_dec_init(&d, ead, len);
    while (!cl_cbor_dec_at_end(&d)) {
        int64_t label;
        const uint8_t *v = NULL;
        size_t vlen = 0;
        bool has_value = false;
        cl_cbor_type_t t;
        if ((st = cl_cbor_dec_int(&d, &label)) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (!cl_cbor_dec_at_end(&d) && cl_cbor_dec_peek(&d, &t) == CL_OK && t == CL_CBOR_BSTR) {
            if ((st = cl_cbor_dec_bstr(&d, &v, &vlen)) != CL_OK)
                return st;
            has_value = true;
        }
        if (label == 0)
            continue; /* padding */
        st = CL_ERR_NOT_FOUND;
        if (s->cfg->ead != NULL)
            st = s->cfg->ead(s->cfg->ead_arg, message, label, v, vlen, has_value);
        if (st == CL_ERR_NOT_FOUND) {
            if (label < 0)
                return CL_FAIL(CL_ERR_CRITICAL);
            continue;
        }
        if (st != CL_OK)
            return st;
    }
    return CL_OK;
}

/* Checks that EAD to send is a well-formed EAD sequence. */
static cl_status_t check_ead_out(const uint8_t *ead, size_t len)
{
    cl_cbor_dec_t d;
    if (len == 0)
        return CL_OK;
    if (ead == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    cl_cbor_dec_init(&d, ead, len);
    while (!cl_cbor_dec_at_end(&d)) {
        int64_t label;
        cl_cbor_type_t t;
        const uint8_t *v;
        size_t n;
        if (cl_cbor_dec_int(&d, &label) != CL_OK)
            return CL_FAIL(CL_ERR_INVALID_ARG);
        if (!cl_cbor_dec_at_end(&d) && cl_cbor_dec_peek(&d, &t) == CL_OK && t == CL_CBOR_BSTR &&
            cl_cbor_dec_bstr(&d, &v, &n) != CL_OK)
            return CL_FAIL(CL_ERR_INVALID_ARG);
    }
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* MAC and Signature_or_MAC (sections 5.3.2 / 5.4.2)                   */
/* ------------------------------------------------------------------ */

/*
 * MAC_2 / MAC_3 and, for signature authentication, the bytes to sign:
 * context = << [C_R,] ID_CRED, TH, CRED, ? EAD >>, MAC = EDHOC_KDF(prk, label,
 * context, mac_len) (mac_len = the suite's MAC length for static DH, the hash
 * length otherwise); Sig_structure ["Signature1", << ID_CRED >>,
 * << TH, CRED, ? EAD >>, MAC] into buf's upper half (*tbs).
 */
static cl_status_t mac_and_tbs(const cl_edhoc_t *s, bool static_dh, int64_t label,
                               const uint8_t *c_r, size_t c_r_len, bool with_cr,
                               const uint8_t *id_cred, size_t id_cred_len, const uint8_t *cred,
                               size_t cred_len, const uint8_t *ead, size_t ead_len,
                               const uint8_t prk[32], uint8_t buf[WORK_MAX * 2],
                               uint8_t mac[HASH_LEN], size_t *mac_len, const uint8_t **tbs,
                               size_t *tbs_len)
{
    cl_cbor_enc_t e;
    size_t ctx_len, aad_off;
    cl_status_t st;

    *mac_len = static_dh ? suite_of(s)->mac_len : HASH_LEN;
    cl_cbor_enc_init(&e, buf, WORK_MAX);
    if (with_cr)
        enc_id(&e, c_r, c_r_len);
    cl_cbor_enc_raw(&e, id_cred, id_cred_len);
    aad_off = e.len;
    cl_cbor_enc_bstr(&e, s->th, HASH_LEN);
    cl_cbor_enc_raw(&e, cred, cred_len);
    cl_cbor_enc_raw(&e, ead, ead_len);
    if ((st = cl_cbor_enc_finish(&e, &ctx_len)) != CL_OK)
        return st == CL_ERR_BUFFER_TOO_SMALL ? CL_FAIL(CL_ERR_LIMIT) : st;
    if ((st = kdf(s, prk, label, buf, ctx_len, mac, *mac_len)) != CL_OK || static_dh)
        return st;
    st = cl_cose_sig_structure(buf + WORK_MAX, WORK_MAX, tbs_len, id_cred, id_cred_len,
                               buf + aad_off, ctx_len - aad_off, mac, *mac_len);
    *tbs = buf + WORK_MAX;
    return st == CL_ERR_BUFFER_TOO_SMALL ? CL_FAIL(CL_ERR_LIMIT) : st;
}

/* Signature_or_MAC of our own credential (sections 5.3.2 / 5.4.2) into out. */
static cl_status_t make_sig_or_mac(const cl_edhoc_t *s, bool static_dh, int64_t label,
                                   const uint8_t *c_r, size_t c_r_len, bool with_cr,
                                   const uint8_t *ead, size_t ead_len, const uint8_t prk[32],
                                   uint8_t out[CL_SIG_MAX], size_t *out_len)
{
    uint8_t buf[WORK_MAX * 2], mac[HASH_LEN];
    const uint8_t *tbs = NULL;
    size_t mac_len, tbs_len = 0;
    const cl_edhoc_auth_t *own = s->own;
    cl_status_t st;

    st = mac_and_tbs(s, static_dh, label, c_r, c_r_len, with_cr, own->id_cred, own->id_cred_len,
                     own->cred, own->cred_len, ead, ead_len, prk, buf, mac, &mac_len, &tbs,
                     &tbs_len);
    if (st != CL_OK)
        goto done;
    if (static_dh) {
        memcpy(out, mac, mac_len);
        *out_len = mac_len;
    } else {
        st = s->cfg->crypto->ops->sign(s->cfg->crypto->self, own->key, suite_of(s)->sig, tbs,
                                       tbs_len, out, CL_SIG_MAX, out_len);
    }
done:
    cl_wipe(mac, sizeof mac);
    return st;
}

/* Verifies a received Signature_or_MAC against the peer's credential. */
static cl_status_t check_sig_or_mac(const cl_edhoc_t *s, bool static_dh,
                                    const cl_edhoc_peer_t *peer, int64_t label, const uint8_t *c_r,
                                    size_t c_r_len, bool with_cr, const uint8_t *id_cred,
                                    size_t id_cred_len, const uint8_t *ead, size_t ead_len,
                                    const uint8_t prk[32], const uint8_t *got, size_t got_len)
{
    uint8_t buf[WORK_MAX * 2], mac[HASH_LEN];
    const uint8_t *tbs = NULL;
    size_t mac_len, tbs_len = 0;
    cl_status_t st;

    st = mac_and_tbs(s, static_dh, label, c_r, c_r_len, with_cr, id_cred, id_cred_len, peer->cred,
                     peer->cred_len, ead, ead_len, prk, buf, mac, &mac_len, &tbs, &tbs_len);
    if (st != CL_OK)
        goto done;
    if (static_dh)
        st = got_len == mac_len && cl_ct_memcmp(mac, got, mac_len) == 0 ? CL_OK
                                                                        : CL_FAIL(CL_ERR_AUTH);
    else if (s->cfg->crypto->ops->verify(s->cfg->crypto->self, peer->key, suite_of(s)->sig, tbs,
                                         tbs_len, got, got_len) != CL_OK)
        st = CL_FAIL(CL_ERR_AUTH);
done:
    cl_wipe(mac, sizeof mac);
    return st;
}

/*
 * COSE_Encrypt0 of message_3 / message_4 (protected h'', external_aad TH):
 * K = KDF(prk, label_k, TH), IV = KDF(prk, label_k + 1, TH); encrypts or
 * decrypts in[0..in_len) into out. A failed decryption is CL_ERR_AUTH.
 */
static cl_status_t crypt0(const cl_edhoc_t *s, bool encrypt, const uint8_t prk[32], int label_k,
                          const uint8_t *in, size_t in_len, uint8_t *out, size_t out_size,
                          size_t *out_len)
{
    uint8_t k[16], iv[CL_AEAD_MAX_NONCE], aad[16 + HASH_LEN];
    size_t key_len, iv_len, aad_len;
    cl_aead_alg_t alg = suite_of(s)->aead;
    cl_key_t key = CL_KEY_NONE;
    cl_status_t st;

    if ((st = cl_aead_params(alg, &key_len, &iv_len, NULL)) != CL_OK)
        return st;
    if ((st = kdf(s, prk, label_k, s->th, HASH_LEN, k, key_len)) != CL_OK)
        goto done;
    if ((st = kdf(s, prk, label_k + 1, s->th, HASH_LEN, iv, iv_len)) != CL_OK)
        goto done;
    if ((st = cl_cose_enc_structure(aad, sizeof aad, &aad_len, "Encrypt0", NULL, 0, s->th,
                                    HASH_LEN)) != CL_OK)
        goto done;
    if ((st = cl_aead_import(s->cfg->crypto, alg, k, key_len, &key)) != CL_OK)
        goto done;
    if (encrypt) {
        st = cl_aead_encrypt(s->cfg->crypto, key, iv, iv_len, aad, aad_len, in, in_len, out,
                             out_size, out_len);
    } else {
        st = cl_aead_decrypt(s->cfg->crypto, key, iv, iv_len, aad, aad_len, in, in_len, out,
                             out_size, out_len);
        if (st != CL_OK && st != CL_ERR_BUFFER_TOO_SMALL)
            st = CL_FAIL(CL_ERR_AUTH);
    }
done:
    cl_key_destroy(s->cfg->crypto, key);
    cl_wipe(k, sizeof k);
    cl_wipe(iv, sizeof iv);
    return st;
}

/* PRK_out = KDF(PRK_4e3m, 7, TH_4); PRK_exporter = KDF(PRK_out, 10, h''). */
static cl_status_t derive_out(cl_edhoc_t *s)
{
    cl_status_t st = kdf(s, s->prk_4e3m, 7, s->th, HASH_LEN, s->prk_out, HASH_LEN);
    if (st == CL_OK)
        st = kdf(s, s->prk_out, 10, NULL, 0, s->prk_exporter, HASH_LEN);
    return st;
}

/* ------------------------------------------------------------------ */
/* Session                                                             */
/* ------------------------------------------------------------------ */

cl_status_t cl_edhoc_init(cl_edhoc_t *s, const cl_edhoc_config_t *cfg, cl_edhoc_role_t role,
                          const uint8_t *own_cid, size_t own_cid_len)
{
    if (s == NULL || cfg == NULL || cfg->crypto == NULL || cfg->peer_cred == NULL ||
        cfg->n_suites == 0 || cfg->n_suites > CL_EDHOC_MAX_SUITES || cfg->suites == NULL ||
        own_cid_len > CL_EDHOC_MAX_CID || (own_cid_len > 0 && own_cid == NULL) ||
        (role != CL_EDHOC_INITIATOR && role != CL_EDHOC_RESPONDER))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    for (size_t i = 0; i < cfg->n_suites; i++)
        if (cl_edhoc_suite(cfg->suites[i], NULL) != CL_OK)
            return CL_FAIL(CL_ERR_UNSUPPORTED);
    memset(s, 0, sizeof *s);
    s->cfg = cfg;
    s->role = (uint8_t)role;
    s->state = ST_START;
    s->suite = -1;
    if (role == CL_EDHOC_INITIATOR) {
        if (own_cid_len)
            memcpy(s->c_i, own_cid, own_cid_len);
        s->c_i_len = (uint8_t)own_cid_len;
    } else {
        if (own_cid_len)
            memcpy(s->c_r, own_cid, own_cid_len);
        s->c_r_len = (uint8_t)own_cid_len;
    }
    return CL_OK;
}

void cl_edhoc_free(cl_edhoc_t *s)
{
    if (s == NULL)
        return;
    if (s->cfg != NULL && s->cfg->crypto != NULL)
        cl_key_destroy(s->cfg->crypto, s->eph);
    cl_wipe(s, sizeof *s);
}

cl_status_t cl_edhoc_restart(cl_edhoc_t *s)
{
    cl_edhoc_t keep;
    if (s == NULL || s->cfg == NULL || s->role != CL_EDHOC_INITIATOR)
        return CL_FAIL(CL_ERR_STATE);
    keep = *s;
    cl_key_destroy(s->cfg->crypto, s->eph);
    cl_wipe(s, sizeof *s);
    s->cfg = keep.cfg;
    s->role = keep.role;
    s->state = ST_START;
    s->suite = -1;
    memcpy(s->c_i, keep.c_i, sizeof s->c_i);
    s->c_i_len = keep.c_i_len;
    memcpy(s->suites_peer, keep.suites_peer, sizeof s->suites_peer);
    s->n_suites_peer = keep.n_suites_peer;
    cl_wipe(&keep, sizeof keep);
    return CL_OK;
}

cl_status_t cl_edhoc_set_cid(cl_edhoc_t *s, const uint8_t *cid, size_t cid_len)
{
    if (s == NULL || cid_len > CL_EDHOC_MAX_CID || (cid_len > 0 && cid == NULL))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (s->role == CL_EDHOC_RESPONDER && (s->state == ST_START || s->state == ST_HAVE_M1)) {
        if (cid_len)
            memcpy(s->c_r, cid, cid_len);
        s->c_r_len = (uint8_t)cid_len;
        return CL_OK;
    }
    if (s->role == CL_EDHOC_INITIATOR && s->state == ST_START) {
        if (cid_len)
            memcpy(s->c_i, cid, cid_len);
        s->c_i_len = (uint8_t)cid_len;
        return CL_OK;
    }
    return CL_FAIL(CL_ERR_STATE);
}

cl_status_t cl_edhoc_test_set_ephemeral(cl_edhoc_t *s, cl_key_t eph)
{
    if (s == NULL || s->state != ST_START || s->eph != CL_KEY_NONE)
        return CL_FAIL(CL_ERR_STATE);
    s->eph = eph;
    return CL_OK;
}

/* Generates our ephemeral key (unless a test injected one) and returns its x-coordinate. */
static cl_status_t ephemeral(cl_edhoc_t *s, cl_key_type_t type, uint8_t g[G_LEN])
{
    uint8_t pub[CL_PUB_MAX];
    size_t n;
    const cl_crypto_t *c = s->cfg->crypto;
    cl_status_t st;
    if (s->eph == CL_KEY_NONE) {
        if ((st = c->ops->key_generate(c->self, type, CL_KEY_USAGE_ECDH, &s->eph, pub, sizeof pub,
                                       &n)) != CL_OK)
            return st;
    } else if ((st = c->ops->key_export_public(c->self, s->eph, pub, sizeof pub, &n)) != CL_OK) {
        return st;
    }
    if (type == CL_KEY_P256 && n == 65 && pub[0] == 0x04)
        memcpy(g, pub + 1, G_LEN); /* compact representation: x only (Appendix B) */
    else if (type == CL_KEY_X25519 && n == G_LEN)
        memcpy(g, pub, G_LEN);
    else
        return CL_FAIL(CL_ERR_INVALID_ARG); /* (injected) key of the wrong curve */
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* Initiator                                                           */
/* ------------------------------------------------------------------ */

cl_status_t cl_edhoc_message_1(cl_edhoc_t *s, int method, int suite, const uint8_t *ead_1,
                               size_t ead_1_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t g_x[G_LEN];
    cl_edhoc_suite_t su;
    cl_cbor_enc_t e;
    size_t sel = SIZE_MAX, len;
    cl_status_t st;

    if (s == NULL || s->role != CL_EDHOC_INITIATOR || s->state != ST_START || out_len == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (method < 0 || method > 3 || check_ead_out(ead_1, ead_1_len) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (suite < 0) { /* after an error 2: most preferred suite the responder supports */
        for (size_t i = 0; i < s->cfg->n_suites && sel == SIZE_MAX; i++)
            for (size_t j = 0; j < s->n_suites_peer; j++)
                if (s->cfg->suites[i] == s->suites_peer[j])
                    sel = i;
        if (s->n_suites_peer == 0)
            sel = 0;
    } else {
        for (size_t i = 0; i < s->cfg->n_suites; i++)
            if (s->cfg->suites[i] == suite)
                sel = i;
    }
    if (sel == SIZE_MAX)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    s->suite = (int8_t)s->cfg->suites[sel];
    if ((st = cl_edhoc_suite(s->suite, &su)) != CL_OK)
        return st;
    s->method = (uint8_t)method;
    s->own = select_auth(s->cfg, (method & 2) != 0, &su);
    if (s->own == NULL)
        return CL_FAIL(CL_ERR_UNSUPPORTED); /* no credential for this method and suite */
    if ((st = ephemeral(s, su.dh, g_x)) != CL_OK)
        return abort_with(s, st);

    cl_cbor_enc_init(&e, out, out_size);
    cl_cbor_enc_uint(&e, (uint64_t)method);
    if (sel == 0) {
        cl_cbor_enc_int(&e, s->suite);
    } else {
        cl_cbor_enc_array(&e, sel + 1);
        for (size_t i = 0; i <= sel; i++)
            cl_cbor_enc_int(&e, s->cfg->suites[i]);
    }
    cl_cbor_enc_bstr(&e, g_x, G_LEN);
    enc_id(&e, s->c_i, s->c_i_len);
    cl_cbor_enc_raw(&e, ead_1, ead_1_len);
    if ((st = cl_cbor_enc_finish(&e, &len)) != CL_OK)
        return st; /* buffer too small: the caller may retry */
    cl_buf_t part = {out, len};
    if ((st = hash(s, &part, 1, s->th)) != CL_OK) /* H(message_1), kept for TH_2 */
        return abort_with(s, st);
    *out_len = len;
    s->state = ST_WAIT_M2;
    return CL_OK;
}

/* Parses an error message into s (initiator side or responder side). */
static cl_status_t take_error(cl_edhoc_t *s, const uint8_t *msg, size_t len)
{
    cl_cbor_dec_t d;
    int64_t code;
    cl_cbor_dec_init(&d, msg, len);
    if (cl_cbor_dec_int(&d, &code) != CL_OK || code == 0 || code < INT16_MIN || code > INT16_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    /* error = (ERR_CODE: int, ERR_INFO: any): exactly two items, typed per code. */
    if (code == CL_EDHOC_ERR_WRONG_SUITE) {
        cl_cbor_type_t t;
        int64_t v;
        size_t n = 1;
        uint8_t got = 0;
        int8_t list[CL_EDHOC_MAX_SUITES];
        if (cl_cbor_dec_peek(&d, &t) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (t == CL_CBOR_ARRAY && (cl_cbor_dec_array(&d, &n) != CL_OK || n < 2))
            return CL_FAIL(CL_ERR_BAD_INPUT); /* suites = [2* int] / int */
        for (size_t i = 0; i < n; i++) {
            if (cl_cbor_dec_int(&d, &v) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            if (got < CL_EDHOC_MAX_SUITES && v >= INT8_MIN && v <= INT8_MAX)
                list[got++] = (int8_t)v;
        }
        if (!cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        memcpy(s->suites_peer, list, got);
        s->n_suites_peer = got;
    } else if (code == CL_EDHOC_ERR_UNSPECIFIED) {
        const char *txt;
        size_t n;
        if (cl_cbor_dec_tstr(&d, &txt, &n) != CL_OK || !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
    } else if (code == CL_EDHOC_ERR_UNKNOWN_CRED) {
        bool b;
        if (cl_cbor_dec_bool(&d, &b) != CL_OK || !b || !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
    } else if (cl_cbor_dec_skip(&d) != CL_OK || !cl_cbor_dec_at_end(&d)) {
        return CL_FAIL(CL_ERR_BAD_INPUT); /* other codes: one ERR_INFO item of any type */
    }
    s->peer_err = (int16_t)code;
    return CL_FAIL(CL_ERR_PEER_ERROR);
}

bool cl_edhoc_is_error(const uint8_t *msg, size_t len)
{
    return len > 0 && (msg[0] >> 5) <= 1; /* major type 0 or 1: an int first */
}

cl_status_t cl_edhoc_process_message_2(cl_edhoc_t *s, const uint8_t *msg, size_t len)
{
    uint8_t pt[WORK_MAX], ks[WORK_MAX], g_xy[32], prk_2e[HASH_LEN], salt[HASH_LEN], g_rx[32];
    uint8_t id_cred[WORK_MAX], c_r[CL_EDHOC_MAX_CID];
    size_t ct_len = 0, id_cred_len, c_r_len;
    const uint8_t *body, *sig, *g_y;
    size_t body_len, sig_len;
    cl_edhoc_peer_t peer;
    cl_cbor_dec_t d;
    cl_status_t st;

    if (s == NULL || s->role != CL_EDHOC_INITIATOR || s->state != ST_WAIT_M2 || msg == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (cl_edhoc_is_error(msg, len)) {
        st = take_error(s, msg, len);
        return abort_with(s, st);
    }
    /* message_2 = (G_Y_CIPHERTEXT_2: bstr), exactly one item. */
    cl_cbor_dec_init(&d, msg, len);
    if ((st = cl_cbor_dec_bstr(&d, &body, &body_len)) != CL_OK || !cl_cbor_dec_at_end(&d) ||
        body_len <= G_LEN) {
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    g_y = body;
    ct_len = body_len - G_LEN;
    if (ct_len > sizeof pt) {
        st = CL_FAIL(CL_ERR_LIMIT);
        goto fail;
    }
    /* TH_2 = H(G_Y, H(message_1)) */
    uint8_t th_in[2 + G_LEN + 2 + HASH_LEN];
    memcpy(th_in, BSTR32, 2);
    memcpy(th_in + 2, g_y, G_LEN);
    memcpy(th_in + 2 + G_LEN, BSTR32, 2);
    memcpy(th_in + 4 + G_LEN, s->th, HASH_LEN);
    cl_buf_t part = {th_in, sizeof th_in};
    if ((st = hash(s, &part, 1, s->th)) != CL_OK)
        goto fail;
    /* PRK_2e = Extract(TH_2, G_XY); plaintext = ciphertext XOR KEYSTREAM_2. */
    if ((st = ecdh(s, s->eph, g_y, G_LEN, g_xy)) != CL_OK)
        goto fail;
    if ((st = cl_hkdf_extract(s->cfg->crypto, s->th, HASH_LEN, g_xy, 32, prk_2e)) != CL_OK)
        goto fail;
    if ((st = kdf(s, prk_2e, 0, s->th, HASH_LEN, ks, ct_len)) != CL_OK)
        goto fail;
    for (size_t i = 0; i < ct_len; i++)
        pt[i] = (uint8_t)(body[G_LEN + i] ^ ks[i]);

    /* PLAINTEXT_2 = (C_R, ID_CRED_R, Signature_or_MAC_2, ? EAD_2) */
    cl_cbor_dec_init(&d, pt, ct_len);
    if ((st = dec_id(&d, c_r, sizeof c_r, &c_r_len)) != CL_OK ||
        (st = dec_id_cred(&d, id_cred, sizeof id_cred, &id_cred_len)) != CL_OK ||
        (st = cl_cbor_dec_bstr(&d, &sig, &sig_len)) != CL_OK) {
        st = st == CL_ERR_LIMIT ? st : CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    const uint8_t *ead = d.cur;
    size_t ead_len = cl_cbor_dec_remaining(&d);
    if ((st = process_ead(s, 2, ead, ead_len)) != CL_OK)
        goto fail;
    if (c_r_len == s->c_i_len && memcmp(c_r, s->c_i, c_r_len) == 0) {
        st = CL_FAIL(CL_ERR_BAD_INPUT); /* C_R = C_I would give both the same OSCORE ID */
        goto fail;
    }
    memcpy(s->c_r, c_r, c_r_len);
    s->c_r_len = (uint8_t)c_r_len;

    /* CRED_R from the application, then PRK_3e2m (static DH responder). */
    memset(&peer, 0, sizeof peer);
    peer.expected = (s->method & 1) ? suite_of(s)->dh : suite_of(s)->sig_key;
    if ((st = s->cfg->peer_cred(s->cfg->peer_cred_arg, CL_EDHOC_INITIATOR, id_cred, id_cred_len,
                                &peer)) != CL_OK)
        goto fail;
    if (peer.cred == NULL || peer.cred_len > CL_EDHOC_MAX_CRED) {
        st = CL_FAIL(CL_ERR_LIMIT);
        goto fail;
    }
    bool r_static = (s->method & 1) != 0;
    if (r_static) {
        if ((st = kdf(s, prk_2e, 1, s->th, HASH_LEN, salt, HASH_LEN)) != CL_OK)
            goto fail; /* SALT_3e2m */
        if ((st = ecdh(s, s->eph, peer.pub, peer.pub_len, g_rx)) != CL_OK)
            goto fail;
        if ((st = cl_hkdf_extract(s->cfg->crypto, salt, HASH_LEN, g_rx, 32, s->prk_3e2m)) != CL_OK)
            goto fail;
    } else {
        memcpy(s->prk_3e2m, prk_2e, HASH_LEN);
    }
    if ((st = check_sig_or_mac(s, r_static, &peer, 2, c_r, c_r_len, true, id_cred, id_cred_len, ead,
                               ead_len, s->prk_3e2m, sig, sig_len)) != CL_OK)
        goto fail;

    /* TH_3 = H(TH_2, PLAINTEXT_2, CRED_R) */
    {
        uint8_t th2[2 + HASH_LEN];
        memcpy(th2, BSTR32, 2);
        memcpy(th2 + 2, s->th, HASH_LEN);
        cl_buf_t parts[3] = {{th2, sizeof th2}, {pt, ct_len}, {peer.cred, peer.cred_len}};
        if ((st = hash(s, parts, 3, s->th)) != CL_OK)
            goto fail;
    }
    /* PRK_4e3m: with a static DH initiator, G_IY = ECDH(I, G_Y). */
    if (s->method & 2) {
        uint8_t g_iy[32];
        if ((st = kdf(s, s->prk_3e2m, 5, s->th, HASH_LEN, salt, HASH_LEN)) != CL_OK)
            goto fail;
        st = ecdh(s, s->own->key, g_y, G_LEN, g_iy);
        if (st == CL_OK)
            st = cl_hkdf_extract(s->cfg->crypto, salt, HASH_LEN, g_iy, 32, s->prk_4e3m);
        cl_wipe(g_iy, sizeof g_iy);
        if (st != CL_OK)
            goto fail;
    } else {
        memcpy(s->prk_4e3m, s->prk_3e2m, HASH_LEN);
    }
    cl_key_destroy(s->cfg->crypto, s->eph); /* forward secrecy: X is no longer needed */
    s->eph = CL_KEY_NONE;
    s->state = ST_HAVE_M2;
    goto done;
fail:
    abort_with(s, st);
done:
    cl_wipe(pt, sizeof pt);
    cl_wipe(ks, sizeof ks);
    cl_wipe(g_xy, sizeof g_xy);
    cl_wipe(prk_2e, sizeof prk_2e);
    cl_wipe(salt, sizeof salt);
    cl_wipe(g_rx, sizeof g_rx);
    return st;
}

cl_status_t cl_edhoc_message_3(cl_edhoc_t *s, const uint8_t *ead_3, size_t ead_3_len, uint8_t *out,
                               size_t out_size, size_t *out_len)
{
    uint8_t pt[WORK_MAX], sig[CL_SIG_MAX];
    size_t sig_len, pt_len, ct_len, head;
    cl_cbor_enc_t e;
    cl_status_t st;

    if (s == NULL || s->role != CL_EDHOC_INITIATOR || s->state != ST_HAVE_M2 || out_len == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (check_ead_out(ead_3, ead_3_len) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    bool i_static = (s->method & 2) != 0;
    if ((st = make_sig_or_mac(s, i_static, 6, NULL, 0, false, ead_3, ead_3_len, s->prk_4e3m, sig,
                              &sig_len)) != CL_OK)
        goto fail;
    /* PLAINTEXT_3 = (ID_CRED_I, Signature_or_MAC_3, ? EAD_3) */
    cl_cbor_enc_init(&e, pt, sizeof pt);
    enc_id_cred(&e, s->own->id_cred, s->own->id_cred_len);
    cl_cbor_enc_bstr(&e, sig, sig_len);
    cl_cbor_enc_raw(&e, ead_3, ead_3_len);
    if ((st = cl_cbor_enc_finish(&e, &pt_len)) != CL_OK) {
        st = CL_FAIL(CL_ERR_LIMIT);
        goto fail;
    }
    /* message_3 = bstr(CIPHERTEXT_3); ciphertext written after the head. */
    size_t tag_len;
    if ((st = cl_aead_params(suite_of(s)->aead, NULL, NULL, &tag_len)) != CL_OK)
        goto fail;
    ct_len = pt_len + tag_len;
    head = cl_cbor_head_size(ct_len);
    if (out == NULL || out_size < head + ct_len)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL); /* retryable, state kept */
    cl_cbor_enc_init(&e, out, head);
    cl_cbor_enc_bstr_head(&e, ct_len);
    if ((st = crypt0(s, true, s->prk_3e2m, 3, pt, pt_len, out + head, out_size - head, &ct_len)) !=
        CL_OK)
        goto fail;
    /* TH_4 = H(TH_3, PLAINTEXT_3, CRED_I), then PRK_out. */
    {
        uint8_t th3[2 + HASH_LEN];
        memcpy(th3, BSTR32, 2);
        memcpy(th3 + 2, s->th, HASH_LEN);
        cl_buf_t parts[3] = {{th3, sizeof th3}, {pt, pt_len}, {s->own->cred, s->own->cred_len}};
        if ((st = hash(s, parts, 3, s->th)) != CL_OK)
            goto fail;
    }
    if ((st = derive_out(s)) != CL_OK)
        goto fail;
    cl_wipe(s->prk_3e2m, sizeof s->prk_3e2m);
    *out_len = head + ct_len;
    s->state = ST_WAIT_M4;
    goto done;
fail:
    abort_with(s, st);
done:
    cl_wipe(pt, sizeof pt);
    return st;
}

cl_status_t cl_edhoc_process_message_4(cl_edhoc_t *s, const uint8_t *msg, size_t len)
{
    uint8_t pt[WORK_MAX];
    const uint8_t *ct;
    size_t ct_len, pt_len = 0;
    cl_cbor_dec_t d;
    cl_status_t st;

    if (s == NULL || s->role != CL_EDHOC_INITIATOR || s->state != ST_WAIT_M4 || msg == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (cl_edhoc_is_error(msg, len))
        return abort_with(s, take_error(s, msg, len));
    cl_cbor_dec_init(&d, msg, len);
    if (cl_cbor_dec_bstr(&d, &ct, &ct_len) != CL_OK || !cl_cbor_dec_at_end(&d)) {
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    if ((st = crypt0(s, false, s->prk_4e3m, 8, ct, ct_len, pt, sizeof pt, &pt_len)) != CL_OK)
        goto fail;
    if ((st = process_ead(s, 4, pt, pt_len)) != CL_OK)
        goto fail;
    cl_wipe(s->prk_4e3m, sizeof s->prk_4e3m);
    s->state = ST_DONE;
    goto done;
fail:
    abort_with(s, st);
done:
    cl_wipe(pt, pt_len);
    return st;
}

/* ------------------------------------------------------------------ */
/* Responder                                                           */
/* ------------------------------------------------------------------ */

cl_status_t cl_edhoc_process_message_1(cl_edhoc_t *s, const uint8_t *msg, size_t len)
{
    cl_cbor_dec_t d;
    cl_cbor_type_t t;
    uint64_t method;
    int64_t list[CL_EDHOC_MAX_SUITES];
    size_t n = 1;
    const uint8_t *g_x;
    size_t g_len;
    cl_edhoc_suite_t su;
    cl_status_t st;

    if (s == NULL || s->role != CL_EDHOC_RESPONDER || s->state != ST_START || msg == NULL)
        return CL_FAIL(CL_ERR_STATE);
    cl_cbor_dec_init(&d, msg, len);
    /* METHOD : int */
    if (cl_cbor_dec_uint(&d, &method) != CL_OK || method > 3) {
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    /* SUITES_I : [2* int] / int */
    if (cl_cbor_dec_peek(&d, &t) != CL_OK) {
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    if (t == CL_CBOR_ARRAY) {
        if (cl_cbor_dec_array(&d, &n) != CL_OK || n < 2) {
            st = CL_FAIL(CL_ERR_BAD_INPUT); /* a one-element array must be an int */
            goto fail;
        }
        if (n > CL_EDHOC_MAX_SUITES) {
            st = CL_FAIL(CL_ERR_LIMIT);
            goto fail;
        }
    }
    size_t n_list = n;
    for (size_t i = 0; i < n_list; i++) {
        if (cl_cbor_dec_int(&d, &list[i]) != CL_OK) {
            st = CL_FAIL(CL_ERR_BAD_INPUT);
            goto fail;
        }
    }
    /* G_X : bstr, C_I, ? EAD_1 */
    if (cl_cbor_dec_bstr(&d, &g_x, &g_len) != CL_OK ||
        dec_id(&d, s->c_i, sizeof s->c_i, &n) != CL_OK) {
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    s->c_i_len = (uint8_t)n;
    /*
     * Cipher suite: the selected one is the last of SUITES_I; refuse it when we
     * do not support it, or when we support one the initiator preferred (6.3.1).
     */
    int64_t selected = list[n_list - 1];
    bool ok = selected >= INT8_MIN && selected <= INT8_MAX && cfg_supports(s->cfg, (int)selected);
    for (size_t i = 0; ok && i + 1 < n_list; i++)
        if (list[i] >= INT8_MIN && list[i] <= INT8_MAX && cfg_supports(s->cfg, (int)list[i]))
            ok = false;
    if (!ok) {
        st = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto fail;
    }
    s->suite = (int8_t)selected;
    s->method = (uint8_t)method;
    su = *suite_of(s);
    if (g_len != G_LEN) {
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    memcpy(s->g_peer, g_x, G_LEN);
    if ((st = process_ead(s, 1, d.cur, cl_cbor_dec_remaining(&d))) != CL_OK)
        goto fail;
    s->own = select_auth(s->cfg, (method & 1) != 0, &su);
    if (s->own == NULL) {
        st = CL_FAIL(CL_ERR_UNSUPPORTED); /* we cannot authenticate with this method */
        goto fail;
    }
    cl_buf_t part = {msg, len};
    if ((st = hash(s, &part, 1, s->th)) != CL_OK)
        goto fail;
    s->state = ST_HAVE_M1;
    return CL_OK;
fail:
    return abort_with(s, st);
}

cl_status_t cl_edhoc_message_2(cl_edhoc_t *s, const uint8_t *ead_2, size_t ead_2_len, uint8_t *out,
                               size_t out_size, size_t *out_len)
{
    uint8_t g_y[G_LEN], g_xy[32], prk_2e[HASH_LEN], salt[HASH_LEN], sig[CL_SIG_MAX];
    size_t sig_len, pt_len, head, body_len;
    cl_edhoc_suite_t su;
    cl_cbor_enc_t e;
    cl_status_t st;

    if (s == NULL || s->role != CL_EDHOC_RESPONDER || s->state != ST_HAVE_M1 || out_len == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (check_ead_out(ead_2, ead_2_len) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    /* 3.3.3: C_R and C_I become OSCORE Recipient IDs and must differ. */
    if (s->c_r_len == s->c_i_len && memcmp(s->c_r, s->c_i, s->c_i_len) == 0)
        return CL_FAIL(CL_ERR_INVALID_ARG); /* pick another C_R with cl_edhoc_set_cid */
    su = *suite_of(s);
    if ((st = ephemeral(s, su.dh, g_y)) != CL_OK)
        goto fail;
    /* TH_2 = H(G_Y, H(message_1)) */
    uint8_t th_in[2 + G_LEN + 2 + HASH_LEN];
    memcpy(th_in, BSTR32, 2);
    memcpy(th_in + 2, g_y, G_LEN);
    memcpy(th_in + 2 + G_LEN, BSTR32, 2);
    memcpy(th_in + 4 + G_LEN, s->th, HASH_LEN);
    cl_buf_t part = {th_in, sizeof th_in};
    if ((st = hash(s, &part, 1, s->th)) != CL_OK)
        goto fail;
    bool r_static = (s->method & 1) != 0;
    if ((st = ecdh(s, s->eph, s->g_peer, G_LEN, g_xy)) != CL_OK) {
        st = st == CL_ERR_CRYPTO ? st : CL_FAIL(CL_ERR_BAD_INPUT); /* invalid G_X */
        goto fail;
    }
    if ((st = cl_hkdf_extract(s->cfg->crypto, s->th, HASH_LEN, g_xy, 32, prk_2e)) != CL_OK)
        goto fail;
    if (r_static && (st = kdf(s, prk_2e, 1, s->th, HASH_LEN, salt, HASH_LEN)) != CL_OK)
        goto fail; /* SALT_3e2m is only needed with a static DH responder */
    if (r_static) {
        uint8_t g_rx[32];
        st = ecdh(s, s->own->key, s->g_peer, G_LEN, g_rx);
        if (st == CL_OK)
            st = cl_hkdf_extract(s->cfg->crypto, salt, HASH_LEN, g_rx, 32, s->prk_3e2m);
        cl_wipe(g_rx, sizeof g_rx);
        if (st != CL_OK)
            goto fail;
    } else {
        memcpy(s->prk_3e2m, prk_2e, HASH_LEN);
    }
    if ((st = make_sig_or_mac(s, r_static, 2, s->c_r, s->c_r_len, true, ead_2, ead_2_len,
                              s->prk_3e2m, sig, &sig_len)) != CL_OK)
        goto fail;
    /* PLAINTEXT_2 = (C_R, ID_CRED_R, Signature_or_MAC_2, ? EAD_2), sized first. */
    cl_cbor_enc_init(&e, NULL, 0);
    enc_id(&e, s->c_r, s->c_r_len);
    enc_id_cred(&e, s->own->id_cred, s->own->id_cred_len);
    cl_cbor_enc_bstr(&e, sig, sig_len);
    cl_cbor_enc_raw(&e, ead_2, ead_2_len);
    if ((st = cl_cbor_enc_finish(&e, &pt_len)) != CL_OK)
        goto fail;
    if (pt_len > WORK_MAX) {
        st = CL_FAIL(CL_ERR_LIMIT);
        goto fail;
    }
    body_len = G_LEN + pt_len;
    head = cl_cbor_head_size(body_len);
    if (out == NULL || out_size < head + body_len) {
        st = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto fail;
    }
    uint8_t *pt = out + head + G_LEN;
    cl_cbor_enc_init(&e, out, head + G_LEN);
    cl_cbor_enc_bstr_head(&e, body_len);
    cl_cbor_enc_raw(&e, g_y, G_LEN);
    cl_cbor_enc_init(&e, pt, pt_len);
    enc_id(&e, s->c_r, s->c_r_len);
    enc_id_cred(&e, s->own->id_cred, s->own->id_cred_len);
    cl_cbor_enc_bstr(&e, sig, sig_len);
    cl_cbor_enc_raw(&e, ead_2, ead_2_len);
    /* TH_3 = H(TH_2, PLAINTEXT_2, CRED_R) (before encryption overwrites the plaintext). */
    uint8_t th2[2 + HASH_LEN];
    memcpy(th2, BSTR32, 2);
    memcpy(th2 + 2, s->th, HASH_LEN);
    uint8_t ks[WORK_MAX];
    if ((st = kdf(s, prk_2e, 0, s->th, HASH_LEN, ks, pt_len)) != CL_OK)
        goto fail_wipe;
    cl_buf_t parts[3] = {{th2, sizeof th2}, {pt, pt_len}, {s->own->cred, s->own->cred_len}};
    if ((st = hash(s, parts, 3, s->th)) != CL_OK)
        goto fail_wipe;
    for (size_t i = 0; i < pt_len; i++)
        pt[i] ^= ks[i];
    cl_wipe(ks, pt_len);
    *out_len = head + body_len;
    s->state = ST_WAIT_M3;
    goto done;
fail_wipe:
    cl_wipe(out, out_size);
    cl_wipe(ks, sizeof ks);
fail:
    abort_with(s, st);
done:
    cl_wipe(g_xy, sizeof g_xy);
    cl_wipe(prk_2e, sizeof prk_2e);
    cl_wipe(salt, sizeof salt);
    cl_wipe(s->g_peer, sizeof s->g_peer);
    return st;
}

cl_status_t cl_edhoc_process_message_3(cl_edhoc_t *s, const uint8_t *msg, size_t len)
{
    uint8_t pt[WORK_MAX], id_cred[WORK_MAX], salt[HASH_LEN];
    const uint8_t *ct, *sig;
    size_t ct_len, pt_len = 0, id_cred_len, sig_len;
    cl_edhoc_peer_t peer;
    cl_cbor_dec_t d;
    cl_status_t st;

    if (s == NULL || s->role != CL_EDHOC_RESPONDER || s->state != ST_WAIT_M3 || msg == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (cl_edhoc_is_error(msg, len))
        return abort_with(s, take_error(s, msg, len));
    cl_cbor_dec_init(&d, msg, len);
    if (cl_cbor_dec_bstr(&d, &ct, &ct_len) != CL_OK || !cl_cbor_dec_at_end(&d)) {
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    if ((st = crypt0(s, false, s->prk_3e2m, 3, ct, ct_len, pt, sizeof pt, &pt_len)) != CL_OK)
        goto fail;
    /* PLAINTEXT_3 = (ID_CRED_I, Signature_or_MAC_3, ? EAD_3) */
    cl_cbor_dec_init(&d, pt, pt_len);
    if ((st = dec_id_cred(&d, id_cred, sizeof id_cred, &id_cred_len)) != CL_OK ||
        (st = cl_cbor_dec_bstr(&d, &sig, &sig_len)) != CL_OK) {
        st = st == CL_ERR_LIMIT ? st : CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    const uint8_t *ead = d.cur;
    size_t ead_len = cl_cbor_dec_remaining(&d);
    if ((st = process_ead(s, 3, ead, ead_len)) != CL_OK)
        goto fail;
    memset(&peer, 0, sizeof peer);
    peer.expected = (s->method & 2) ? suite_of(s)->dh : suite_of(s)->sig_key;
    if ((st = s->cfg->peer_cred(s->cfg->peer_cred_arg, CL_EDHOC_RESPONDER, id_cred, id_cred_len,
                                &peer)) != CL_OK)
        goto fail;
    if (peer.cred == NULL || peer.cred_len > CL_EDHOC_MAX_CRED) {
        st = CL_FAIL(CL_ERR_LIMIT);
        goto fail;
    }
    bool i_static = (s->method & 2) != 0;
    if (i_static) {
        uint8_t g_iy[32];
        if ((st = kdf(s, s->prk_3e2m, 5, s->th, HASH_LEN, salt, HASH_LEN)) != CL_OK)
            goto fail;
        st = ecdh(s, s->eph, peer.pub, peer.pub_len, g_iy);
        if (st == CL_OK)
            st = cl_hkdf_extract(s->cfg->crypto, salt, HASH_LEN, g_iy, 32, s->prk_4e3m);
        cl_wipe(g_iy, sizeof g_iy);
        if (st != CL_OK)
            goto fail;
    } else {
        memcpy(s->prk_4e3m, s->prk_3e2m, HASH_LEN);
    }
    if ((st = check_sig_or_mac(s, i_static, &peer, 6, NULL, 0, false, id_cred, id_cred_len, ead,
                               ead_len, s->prk_4e3m, sig, sig_len)) != CL_OK)
        goto fail;
    {
        uint8_t th3[2 + HASH_LEN];
        memcpy(th3, BSTR32, 2);
        memcpy(th3 + 2, s->th, HASH_LEN);
        cl_buf_t parts[3] = {{th3, sizeof th3}, {pt, pt_len}, {peer.cred, peer.cred_len}};
        if ((st = hash(s, parts, 3, s->th)) != CL_OK)
            goto fail;
    }
    if ((st = derive_out(s)) != CL_OK)
        goto fail;
    cl_key_destroy(s->cfg->crypto, s->eph);
    s->eph = CL_KEY_NONE;
    cl_wipe(s->prk_3e2m, sizeof s->prk_3e2m);
    s->state = ST_DONE;
    goto done;
fail:
    abort_with(s, st);
done:
    cl_wipe(pt, sizeof pt);
    cl_wipe(salt, sizeof salt);
    return st;
}

cl_status_t cl_edhoc_message_4(cl_edhoc_t *s, const uint8_t *ead_4, size_t ead_4_len, uint8_t *out,
                               size_t out_size, size_t *out_len)
{
    size_t tag_len, ct_len, head;
    cl_cbor_enc_t e;
    cl_status_t st;

    if (s == NULL || s->role != CL_EDHOC_RESPONDER || s->state != ST_DONE || out_len == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (check_ead_out(ead_4, ead_4_len) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((st = cl_aead_params(suite_of(s)->aead, NULL, NULL, &tag_len)) != CL_OK)
        return st;
    ct_len = ead_4_len + tag_len;
    head = cl_cbor_head_size(ct_len);
    if (out == NULL || out_size < head + ct_len)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    cl_cbor_enc_init(&e, out, head);
    cl_cbor_enc_bstr_head(&e, ct_len);
    if ((st = crypt0(s, true, s->prk_4e3m, 8, ead_4, ead_4_len, out + head, out_size - head,
                     &ct_len)) != CL_OK)
        return abort_with(s, st);
    *out_len = head + ct_len;
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* Errors and results                                                  */
/* ------------------------------------------------------------------ */

cl_status_t cl_edhoc_error_message(const cl_edhoc_t *s, cl_status_t why, uint8_t *out,
                                   size_t out_size, size_t *out_len)
{
    cl_cbor_enc_t e;
    if (out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (why == CL_ERR_PEER_ERROR || why == CL_OK)
        return CL_FAIL(CL_ERR_STATE); /* errors answer non-error messages only (section 6) */
    cl_cbor_enc_init(&e, out, out_size);
    /* ERR_CODE 2 only when the *suite* was refused (a refused method leaves s->suite set). */
    if (why == CL_ERR_UNSUPPORTED && s != NULL && s->role == CL_EDHOC_RESPONDER && s->cfg != NULL &&
        s->suite < 0) {
        cl_cbor_enc_int(&e, CL_EDHOC_ERR_WRONG_SUITE);
        if (s->cfg->n_suites == 1) {
            cl_cbor_enc_int(&e, s->cfg->suites[0]);
        } else {
            cl_cbor_enc_array(&e, s->cfg->n_suites);
            for (size_t i = 0; i < s->cfg->n_suites; i++)
                cl_cbor_enc_int(&e, s->cfg->suites[i]);
        }
    } else if (why == CL_ERR_NOT_FOUND) {
        cl_cbor_enc_int(&e, CL_EDHOC_ERR_UNKNOWN_CRED);
        cl_cbor_enc_bool(&e, true);
    } else {
        /* Diagnostics name the failure class only; nothing secret. */
        cl_cbor_enc_int(&e, CL_EDHOC_ERR_UNSPECIFIED);
        cl_cbor_enc_tstr_z(&e, cl_status_str(why));
    }
    return cl_cbor_enc_finish(&e, out_len);
}

cl_status_t cl_edhoc_exporter(const cl_edhoc_t *s, uint64_t label, const uint8_t *context,
                              size_t context_len, uint8_t *out, size_t out_len)
{
    if (s == NULL || out == NULL || !(s->state == ST_DONE || s->state == ST_WAIT_M4) ||
        label > INT64_MAX)
        return CL_FAIL(CL_ERR_STATE);
    return kdf(s, s->prk_exporter, (int64_t)label, context, context_len, out, out_len);
}

cl_status_t cl_edhoc_key_update(cl_edhoc_t *s, const uint8_t *context, size_t context_len)
{
    uint8_t prk[HASH_LEN];
    cl_status_t st;
    if (s == NULL || !(s->state == ST_DONE || s->state == ST_WAIT_M4))
        return CL_FAIL(CL_ERR_STATE);
    if ((st = kdf(s, s->prk_out, 11, context, context_len, prk, HASH_LEN)) != CL_OK)
        goto done;
    memcpy(s->prk_out, prk, HASH_LEN);
    st = kdf(s, s->prk_out, 10, NULL, 0, s->prk_exporter, HASH_LEN);
done:
    cl_wipe(prk, sizeof prk);
    return st;
}

cl_status_t cl_edhoc_oscore_params(const cl_edhoc_t *s, uint8_t ms[16], uint8_t salt[8],
                                   cl_oscore_params_t *p)
{
    cl_edhoc_suite_t su;
    size_t key_len;
    cl_status_t st;
    if (s == NULL || p == NULL || cl_edhoc_suite(s->suite, &su) != CL_OK)
        return CL_FAIL(CL_ERR_STATE);
    if ((st = cl_aead_params(su.app_aead, &key_len, NULL, NULL)) != CL_OK)
        return st;
    if (key_len != 16)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if ((st = cl_edhoc_exporter(s, CL_EDHOC_EXPORT_OSCORE_SECRET, NULL, 0, ms, 16)) != CL_OK)
        return st;
    if ((st = cl_edhoc_exporter(s, CL_EDHOC_EXPORT_OSCORE_SALT, NULL, 0, salt, 8)) != CL_OK)
        return st;
    memset(p, 0, sizeof *p);
    p->master_secret = ms;
    p->master_secret_len = 16;
    p->master_salt = salt;
    p->master_salt_len = 8;
    p->aead = su.app_aead;
    /* Appendix A.1: the initiator sends with C_R, the responder with C_I. */
    if (s->role == CL_EDHOC_INITIATOR) {
        p->sender_id = s->c_r;
        p->sender_id_len = s->c_r_len;
        p->recipient_id = s->c_i;
        p->recipient_id_len = s->c_i_len;
    } else {
        p->sender_id = s->c_i;
        p->sender_id_len = s->c_i_len;
        p->recipient_id = s->c_r;
        p->recipient_id_len = s->c_r_len;
    }
    return CL_OK;
}

void cl_edhoc_cids(const cl_edhoc_t *s, const uint8_t **c_i, size_t *c_i_len, const uint8_t **c_r,
                   size_t *c_r_len)
{
    *c_i = s->c_i;
    *c_i_len = s->c_i_len;
    *c_r = s->c_r;
    *c_r_len = s->c_r_len;
}

cl_status_t cl_edhoc_split_request(const uint8_t *payload, size_t len, bool *is_message_1,
                                   uint8_t cid[CL_EDHOC_MAX_CID], size_t *cid_len,
                                   const uint8_t **msg, size_t *msg_len)
{
    cl_cbor_dec_t d;
    if (payload == NULL || is_message_1 == NULL || cid_len == NULL || msg == NULL ||
        msg_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (len == 0)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    cl_cbor_dec_init(&d, payload, len);
    *cid_len = 0;
    if (payload[0] == 0xf5) { /* true: a new session, message_1 follows */
        d.cur++;
        *is_message_1 = true;
    } else {
        *is_message_1 = false;
        if (dec_id(&d, cid, CL_EDHOC_MAX_CID, cid_len) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (cl_cbor_dec_at_end(&d))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *msg = d.cur;
    *msg_len = cl_cbor_dec_remaining(&d);
    return CL_OK;
}
