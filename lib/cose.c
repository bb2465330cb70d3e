/*
 * cose.c - COSE_Encrypt0 and COSE_Sign1 (RFC 9052 / RFC 9053) over the CBOR codec.
 *
 * What: builders for the Enc_structure (the AEAD additional data) and the
 * Sig_structure (the bytes signed), parsers that split an Encrypt0 / Sign1
 * message into pointers into the caller's buffer, lookup of int-labelled
 * header parameters, and encrypt / decrypt / sign / verify through the
 * crypto provider table. No heap: the Enc_structure / Sig_structure handed to
 * the provider is built in a stack buffer of CL_COSE_MAX_STRUCTURE bytes, and
 * messages that need more are CL_ERR_LIMIT.
 *
 * Why it is strict: a COSE message is what a peer signs or encrypts, so the
 * parser accepts one shape only: an optional tag of the expected type (16 or
 * 18, nothing else), a definite array of exactly 3 or 4 elements, a protected
 * bstr whose content is empty or one well-formed map, an unprotected map, a
 * bstr or nil content, nothing after the array. Header maps with a repeated
 * label, or a label in both buckets, are CL_ERR_BAD_INPUT (RFC 9052 section
 * 3). A protected bstr holding only an empty map (h'a0') is accepted and,
 * following RFC 9052 sections 4.4 and 5.3 ("if there are no protected
 * attributes, a zero-length byte string is used"), the structures built from
 * it carry h'' as the cose-wg sign-pass-01 example requires. Verification is
 * bound to the algorithm the caller expects: the message's alg (protected
 * bucket preferred) must be present and equal to it, so a peer can neither
 * downgrade nor omit it.
 */
#include "cloister/cose.h"

#include <string.h>

#include "cloister/cbor.h"


static const char CTX_SIGNATURE1[] = "Signature1";

/* The empty protected bucket: both h'' and h'a0' mean "no protected attributes". */
static bool protected_is_empty(const uint8_t *p, size_t len)
{
    return len == 0 || (len == 1 && p[0] == 0xa0);
}

/* True when p[0..len) is exactly one well-formed CBOR map. */
static bool is_one_map(const uint8_t *p, size_t len)
{
    cl_cbor_dec_t d;
    cl_cbor_type_t t;

    cl_cbor_dec_init(&d, p, len);
    if (cl_cbor_dec_peek(&d, &t) != CL_OK || t != CL_CBOR_MAP)
        return false;
    if (cl_cbor_dec_skip(&d) != CL_OK)
        return false;
    return cl_cbor_dec_at_end(&d);
}

/* Finishes an encoder that wrote (or counted) into out and reports its length. */
static cl_status_t finish(const cl_cbor_enc_t *e, size_t *out_len)
{
    size_t n = 0;
    cl_status_t rc = cl_cbor_enc_finish(e, &n);
    if (rc == CL_OK)
        *out_len = n;
    return rc;
}

cl_status_t cl_cose_enc_structure(uint8_t *out, size_t out_size, size_t *out_len,
                                  const char *context, const uint8_t *protected_hdr,
                                  size_t protected_len, const uint8_t *external_aad,
                                  size_t external_aad_len)
{
    static const char *const contexts[] = {"Encrypt0", "Encrypt", "Enc_Recipient", "Mac_Recipient",
                                           "Rec_Recipient"};
    cl_status_t rc = CL_OK;
    cl_cbor_enc_t e;
    bool known = false;

    if (out_len == NULL || context == NULL || (protected_hdr == NULL && protected_len > 0) ||
        (external_aad == NULL && external_aad_len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    for (size_t i = 0; i < sizeof contexts / sizeof contexts[0]; i++)
        if (strcmp(context, contexts[i]) == 0)
            known = true;
    if (!known) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (protected_is_empty(protected_hdr, protected_len))
        protected_len = 0;
    cl_cbor_enc_init(&e, out, out_size);
    (void)cl_cbor_enc_array(&e, 3);
    (void)cl_cbor_enc_tstr_z(&e, context);
    (void)cl_cbor_enc_bstr(&e, protected_hdr, protected_len);
    (void)cl_cbor_enc_bstr(&e, external_aad, external_aad_len);
    rc = finish(&e, out_len);
done:
    return rc;
}

cl_status_t cl_cose_sig_structure(uint8_t *out, size_t out_size, size_t *out_len,
                                  const uint8_t *protected_hdr, size_t protected_len,
                                  const uint8_t *external_aad, size_t external_aad_len,
                                  const uint8_t *payload, size_t payload_len)
{
    cl_status_t rc = CL_OK;
    cl_cbor_enc_t e;

    if (out_len == NULL || (protected_hdr == NULL && protected_len > 0) ||
        (external_aad == NULL && external_aad_len > 0) || (payload == NULL && payload_len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (protected_is_empty(protected_hdr, protected_len))
        protected_len = 0;
    cl_cbor_enc_init(&e, out, out_size);
    (void)cl_cbor_enc_array(&e, 4);
    (void)cl_cbor_enc_tstr(&e, CTX_SIGNATURE1, sizeof CTX_SIGNATURE1 - 1);
    (void)cl_cbor_enc_bstr(&e, protected_hdr, protected_len);
    (void)cl_cbor_enc_bstr(&e, external_aad, external_aad_len);
    (void)cl_cbor_enc_bstr(&e, payload, payload_len);
    rc = finish(&e, out_len);
done:
    return rc;
}

/*
 * Parses [protected, unprotected, content(, signature)], optionally behind
 * `tag`. Fills m only on success.
 */
static cl_status_t parse_msg(cl_cose_msg_t *m, const uint8_t *buf, size_t len, uint64_t want_tag,
                             size_t want_items)
{
    cl_status_t rc = CL_OK;
    cl_cose_msg_t r;
    cl_cbor_dec_t d;
    cl_cbor_type_t t;
    uint64_t tag;
    size_t n;

    if (m == NULL || (buf == NULL && len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    memset(&r, 0, sizeof r);
    cl_cbor_dec_init(&d, buf, len);
    rc = cl_cbor_dec_peek(&d, &t);
    if (rc != CL_OK)
        goto done;
    if (t == CL_CBOR_TAG) {
        rc = cl_cbor_dec_tag(&d, &tag);
        if (rc != CL_OK)
            goto done;
        if (tag != want_tag) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        r.tagged = true;
    }
    rc = cl_cbor_dec_array(&d, &n);
    if (rc != CL_OK)
        goto done;
    if (n != want_items) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    /* protected: bstr holding nothing or exactly one map */
    rc = cl_cbor_dec_bstr(&d, &r.protected_hdr, &r.protected_len);
    if (rc != CL_OK)
        goto done;
    if (r.protected_len > 0 && !is_one_map(r.protected_hdr, r.protected_len)) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    /* unprotected: a map, kept as its encoded bytes */
    rc = cl_cbor_dec_peek(&d, &t);
    if (rc != CL_OK)
        goto done;
    if (t != CL_CBOR_MAP) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    rc = cl_cbor_dec_raw(&d, &r.unprotected, &r.unprotected_len);
    if (rc != CL_OK)
        goto done;
    /* content: bstr, or nil when detached */
    if (cl_cbor_dec_null(&d) != CL_OK) {
        rc = cl_cbor_dec_bstr(&d, &r.content, &r.content_len);
        if (rc != CL_OK)
            goto done;
    }
    if (want_items == 4) {
        rc = cl_cbor_dec_bstr(&d, &r.signature, &r.signature_len);
        if (rc != CL_OK)
            goto done;
    }
    if (!cl_cbor_dec_at_end(&d)) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    *m = r;
done:
    return rc;
}

cl_status_t cl_cose_encrypt0_parse(cl_cose_msg_t *m, const uint8_t *buf, size_t len)
{
    return parse_msg(m, buf, len, CL_COSE_TAG_ENCRYPT0, 3);
}

cl_status_t cl_cose_sign1_parse(cl_cose_msg_t *m, const uint8_t *buf, size_t len)
{
    return parse_msg(m, buf, len, CL_COSE_TAG_SIGN1, 4);
}

/*
 * An int label as CBOR sees it: major type 0 or 1 and the head argument, so
 * that labels outside int64 still compare correctly (they never match).
 */
struct label {
    bool is_int;
    unsigned major;
    uint64_t arg;
};

/* Reads the key at d as a label; non-int keys are skipped and marked as such. */
static cl_status_t read_label(cl_cbor_dec_t *d, struct label *l)
{
    cl_status_t rc;
    cl_cbor_type_t t;
    const uint8_t *p;
    size_t n;

    rc = cl_cbor_dec_peek(d, &t);
    if (rc != CL_OK)
        goto done;
    l->is_int = t == CL_CBOR_UINT || t == CL_CBOR_NINT;
    l->major = (unsigned)t;
    l->arg = 0;
    /* An integer item is its head alone: the argument is in the raw bytes. */
    rc = cl_cbor_dec_raw(d, &p, &n);
    if (rc != CL_OK || !l->is_int)
        goto done;
    if (n == 1)
        l->arg = p[0] & 0x1fu;
    for (size_t i = 1; i < n; i++)
        l->arg = l->arg << 8 | p[i];
done:
    return rc;
}

static bool label_eq(const struct label *a, const struct label *b)
{
    return a->is_int && b->is_int && a->major == b->major && a->arg == b->arg;
}

cl_status_t cl_cose_header_find(const uint8_t *map, size_t map_len, int64_t label,
                                const uint8_t **value, size_t *value_len)
{
    cl_status_t rc = CL_OK;
    cl_cbor_dec_t d, rest;
    struct label want, k, k2;
    const uint8_t *v = NULL, *vp;
    size_t vlen = 0, vn, pairs;
    bool found = false;

    if ((map == NULL && map_len > 0) || value == NULL || value_len == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (map_len == 0) {
        /* an empty protected bucket: no parameters */
        rc = CL_FAIL(CL_ERR_NOT_FOUND);
        goto done;
    }
    want.is_int = true;
    want.major = label >= 0 ? CL_CBOR_UINT : CL_CBOR_NINT;
    want.arg = label >= 0 ? (uint64_t)label : (uint64_t)(-(label + 1));

    cl_cbor_dec_init(&d, map, map_len);
    rc = cl_cbor_dec_map(&d, &pairs);
    if (rc != CL_OK)
        goto done;
    for (size_t i = 0; i < pairs; i++) {
        rc = read_label(&d, &k);
        if (rc != CL_OK)
            goto done;
        rc = cl_cbor_dec_raw(&d, &vp, &vn);
        if (rc != CL_OK)
            goto done;
        if (label_eq(&k, &want)) {
            found = true;
            v = vp;
            vlen = vn;
        }
        if (!k.is_int)
            continue;
        /* Duplicate check against the later keys (header maps are small). */
        rest = d;
        for (size_t j = i + 1; j < pairs; j++) {
            rc = read_label(&rest, &k2);
            if (rc != CL_OK)
                goto done;
            if (label_eq(&k, &k2)) {
                rc = CL_FAIL(CL_ERR_BAD_INPUT);
                goto done;
            }
            rc = cl_cbor_dec_skip(&rest);
            if (rc != CL_OK)
                goto done;
        }
    }
    if (!cl_cbor_dec_at_end(&d)) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (!found) {
        rc = CL_FAIL(CL_ERR_NOT_FOUND);
        goto done;
    }
    *value = v;
    *value_len = vlen;
done:
    return rc;
}

/* alg from one bucket: CL_OK, NOT_FOUND, BAD_INPUT, or UNSUPPORTED for a text alg. */
static cl_status_t bucket_alg(const uint8_t *map, size_t len, int64_t *alg)
{
    cl_status_t rc;
    const uint8_t *v = NULL;
    size_t vlen = 0;
    cl_cbor_dec_t d;
    cl_cbor_type_t t;

    rc = cl_cose_header_find(map, len, CL_COSE_HDR_ALG, &v, &vlen);
    if (rc != CL_OK)
        goto done;
    cl_cbor_dec_init(&d, v, vlen);
    rc = cl_cbor_dec_peek(&d, &t);
    if (rc != CL_OK)
        goto done;
    if (t == CL_CBOR_TSTR) {
        /* a registered name we do not implement */
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto done;
    }
    rc = cl_cbor_dec_int(&d, alg);
done:
    return rc;
}

cl_status_t cl_cose_header_alg(const cl_cose_msg_t *m, int64_t *alg)
{
    cl_status_t rc, rc2;
    int64_t a = 0, other = 0;
    const uint8_t *v = NULL;
    size_t vlen = 0;

    if (m == NULL || alg == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = bucket_alg(m->protected_hdr, m->protected_len, &a);
    if (rc == CL_OK) {
        /* RFC 9052 section 3: a label must not be in both buckets. */
        rc2 = cl_cose_header_find(m->unprotected, m->unprotected_len, CL_COSE_HDR_ALG, &v, &vlen);
        if (rc2 == CL_OK) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        if (rc2 != CL_ERR_NOT_FOUND) {
            rc = rc2;
            goto done;
        }
    } else if (rc == CL_ERR_NOT_FOUND) {
        rc = bucket_alg(m->unprotected, m->unprotected_len, &other);
        a = other;
    }
    if (rc == CL_OK)
        *alg = a;
done:
    return rc;
}

cl_status_t cl_cose_encrypt0_encrypt(const cl_crypto_t *c, cl_key_t key, const uint8_t *nonce,
                                     size_t nonce_len, const uint8_t *protected_hdr,
                                     size_t protected_len, const uint8_t *unprotected,
                                     size_t unprotected_len, const uint8_t *external_aad,
                                     size_t external_aad_len, const uint8_t *pt, size_t pt_len,
                                     bool tag, uint8_t *out, size_t out_size, size_t *out_len)
{
    static const uint8_t empty_map = 0xa0;
    cl_status_t rc = CL_OK;
    uint8_t aad[CL_COSE_MAX_STRUCTURE];
    size_t aad_len = 0, prefix = 0, hmin, hact, ct_len = 0, total;
    uint8_t head[CL_CBOR_MAX_HEAD];
    cl_cbor_enc_t e;
    bool wrote = false;

    if (c == NULL || c->ops == NULL || nonce == NULL || out == NULL || out_len == NULL ||
        (protected_hdr == NULL && protected_len > 0) ||
        (unprotected == NULL && unprotected_len > 0) ||
        (external_aad == NULL && external_aad_len > 0) || (pt == NULL && pt_len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (unprotected == NULL) {
        unprotected = &empty_map;
        unprotected_len = 1;
    }
    if ((protected_len > 0 && !is_one_map(protected_hdr, protected_len)) ||
        !is_one_map(unprotected, unprotected_len)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = cl_cose_enc_structure(NULL, 0, &aad_len, "Encrypt0", protected_hdr, protected_len,
                               external_aad, external_aad_len);
    if (rc != CL_OK)
        goto done;
    if (aad_len > sizeof aad) {
        rc = CL_FAIL(CL_ERR_LIMIT);
        goto done;
    }
    rc = cl_cose_enc_structure(aad, sizeof aad, &aad_len, "Encrypt0", protected_hdr, protected_len,
                               external_aad, external_aad_len);
    if (rc != CL_OK)
        goto done;

    /* [tag] [protected, unprotected, */
    wrote = true;
    cl_cbor_enc_init(&e, out, out_size);
    if (tag)
        (void)cl_cbor_enc_tag(&e, CL_COSE_TAG_ENCRYPT0);
    (void)cl_cbor_enc_array(&e, 3);
    (void)cl_cbor_enc_bstr(&e, protected_hdr, protected_len);
    (void)cl_cbor_enc_raw(&e, unprotected, unprotected_len);
    rc = finish(&e, &prefix);
    if (rc != CL_OK)
        goto done;

    /*
     * The tag length belongs to the key, which we only hold as a handle, so
     * the ciphertext head is unknown until the provider has written: encrypt
     * behind the smallest head it can have, then move the ciphertext up by
     * the difference (a head grows with the length it encodes).
     */
    hmin = cl_cbor_head_size(pt_len);
    if (out_size - prefix < hmin) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    rc = cl_aead_encrypt(c, key, nonce, nonce_len, aad, aad_len, pt, pt_len, out + prefix + hmin,
                         out_size - prefix - hmin, &ct_len);
    if (rc != CL_OK)
        goto done;
    hact = cl_cbor_head_size(ct_len);
    if (out_size - prefix - hmin - ct_len < hact - hmin) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    total = prefix + hact + ct_len;
    memmove(out + prefix + hact, out + prefix + hmin, ct_len);
    cl_cbor_enc_init(&e, head, sizeof head);
    (void)cl_cbor_enc_bstr_head(&e, ct_len);
    rc = finish(&e, &hact);
    if (rc != CL_OK)
        goto done;
    memcpy(out + prefix, head, hact);
    *out_len = total;
done:
    if (rc != CL_OK && wrote)
        cl_wipe(out, out_size);
    return rc;
}

/* Builds the Enc_structure for m on the stack buffer aad (CL_COSE_MAX_STRUCTURE bytes). */
static cl_status_t build_enc_structure(uint8_t *aad, size_t *aad_len, const cl_cose_msg_t *m,
                                       const uint8_t *external_aad, size_t external_aad_len)
{
    cl_status_t rc;
    size_t need = 0;

    rc = cl_cose_enc_structure(NULL, 0, &need, "Encrypt0", m->protected_hdr, m->protected_len,
                               external_aad, external_aad_len);
    if (rc != CL_OK)
        goto done;
    if (need > CL_COSE_MAX_STRUCTURE) {
        rc = CL_FAIL(CL_ERR_LIMIT);
        goto done;
    }
    rc = cl_cose_enc_structure(aad, CL_COSE_MAX_STRUCTURE, aad_len, "Encrypt0", m->protected_hdr,
                               m->protected_len, external_aad, external_aad_len);
done:
    return rc;
}

cl_status_t cl_cose_encrypt0_decrypt(const cl_crypto_t *c, cl_key_t key, const uint8_t *nonce,
                                     size_t nonce_len, const cl_cose_msg_t *m,
                                     const uint8_t *external_aad, size_t external_aad_len,
                                     uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_status_t rc;
    uint8_t aad[CL_COSE_MAX_STRUCTURE];
    size_t aad_len = 0;

    if (c == NULL || c->ops == NULL || nonce == NULL || m == NULL || out == NULL ||
        out_len == NULL || (external_aad == NULL && external_aad_len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (m->content == NULL) {
        /* detached ciphertext: not used by OSCORE or EDHOC */
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto done;
    }
    rc = build_enc_structure(aad, &aad_len, m, external_aad, external_aad_len);
    if (rc != CL_OK)
        goto done;
    rc = cl_aead_decrypt(c, key, nonce, nonce_len, aad, aad_len, m->content, m->content_len, out,
                         out_size, out_len);
done:
    return rc;
}

static bool sig_alg_known(cl_sig_alg_t alg)
{
    return alg == CL_SIG_ES256 || alg == CL_SIG_EDDSA;
}

/* Builds the Sig_structure ("Signature1") on the stack buffer tbs. */
static cl_status_t build_tbs(uint8_t *tbs, size_t *tbs_len, const uint8_t *protected_hdr,
                             size_t protected_len, const uint8_t *external_aad,
                             size_t external_aad_len, const uint8_t *payload, size_t payload_len)
{
    cl_status_t rc;
    size_t need = 0;

    rc = cl_cose_sig_structure(NULL, 0, &need, protected_hdr, protected_len, external_aad,
                               external_aad_len, payload, payload_len);
    if (rc != CL_OK)
        goto done;
    if (need > CL_COSE_MAX_STRUCTURE) {
        rc = CL_FAIL(CL_ERR_LIMIT);
        goto done;
    }
    rc = cl_cose_sig_structure(tbs, CL_COSE_MAX_STRUCTURE, tbs_len, protected_hdr, protected_len,
                               external_aad, external_aad_len, payload, payload_len);
done:
    return rc;
}

cl_status_t cl_cose_sign1_sign(const cl_crypto_t *c, cl_key_t key, cl_sig_alg_t alg,
                               const uint8_t *protected_hdr, size_t protected_len,
                               const uint8_t *unprotected, size_t unprotected_len,
                               const uint8_t *external_aad, size_t external_aad_len,
                               const uint8_t *payload, size_t payload_len, bool tag, uint8_t *out,
                               size_t out_size, size_t *out_len)
{
    static const uint8_t empty_map = 0xa0;
    cl_status_t rc;
    uint8_t tbs[CL_COSE_MAX_STRUCTURE];
    uint8_t sig[CL_SIG_MAX];
    size_t tbs_len = 0, sig_len = 0, n = 0;
    cl_cose_msg_t hdrs;
    int64_t hdr_alg = 0;
    cl_cbor_enc_t e;

    if (c == NULL || c->ops == NULL || out_len == NULL ||
        (protected_hdr == NULL && protected_len > 0) ||
        (unprotected == NULL && unprotected_len > 0) ||
        (external_aad == NULL && external_aad_len > 0) || (payload == NULL && payload_len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (!sig_alg_known(alg)) {
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto done;
    }
    if (unprotected == NULL) {
        unprotected = &empty_map;
        unprotected_len = 1;
    }
    if ((protected_len > 0 && !is_one_map(protected_hdr, protected_len)) ||
        !is_one_map(unprotected, unprotected_len)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    /* Refuse to produce a message that names another algorithm than the one used. */
    memset(&hdrs, 0, sizeof hdrs);
    hdrs.protected_hdr = protected_hdr;
    hdrs.protected_len = protected_len;
    hdrs.unprotected = unprotected;
    hdrs.unprotected_len = unprotected_len;
    rc = cl_cose_header_alg(&hdrs, &hdr_alg);
    if (rc == CL_OK && hdr_alg != (int64_t)alg) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (rc != CL_OK && rc != CL_ERR_NOT_FOUND) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = build_tbs(tbs, &tbs_len, protected_hdr, protected_len, external_aad, external_aad_len,
                   payload, payload_len);
    if (rc != CL_OK)
        goto done;
    /* Size the message first so that nothing is written when it does not fit. */
    cl_cbor_enc_init(&e, NULL, 0);
    if (tag)
        (void)cl_cbor_enc_tag(&e, CL_COSE_TAG_SIGN1);
    (void)cl_cbor_enc_array(&e, 4);
    (void)cl_cbor_enc_bstr(&e, protected_hdr, protected_len);
    (void)cl_cbor_enc_raw(&e, unprotected, unprotected_len);
    (void)cl_cbor_enc_bstr(&e, payload, payload_len);
    (void)cl_cbor_enc_bstr_head(&e, CL_SIG_MAX);
    (void)cl_cbor_enc_raw(&e, sig, CL_SIG_MAX);
    rc = finish(&e, &n);
    if (rc != CL_OK)
        goto done;
    if (out == NULL || n > out_size) {
        rc = CL_FAIL(out == NULL ? CL_ERR_INVALID_ARG : CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    rc = c->ops->sign(c->self, key, alg, tbs, tbs_len, sig, sizeof sig, &sig_len);
    if (rc != CL_OK)
        goto done;
    cl_cbor_enc_init(&e, out, out_size);
    if (tag)
        (void)cl_cbor_enc_tag(&e, CL_COSE_TAG_SIGN1);
    (void)cl_cbor_enc_array(&e, 4);
    (void)cl_cbor_enc_bstr(&e, protected_hdr, protected_len);
    (void)cl_cbor_enc_raw(&e, unprotected, unprotected_len);
    (void)cl_cbor_enc_bstr(&e, payload, payload_len);
    (void)cl_cbor_enc_bstr(&e, sig, sig_len);
    rc = finish(&e, out_len);
done:
    return rc;
}

cl_status_t cl_cose_sign1_verify(const cl_crypto_t *c, cl_key_t key, cl_sig_alg_t alg,
                                 const cl_cose_msg_t *m, const uint8_t *external_aad,
                                 size_t external_aad_len, const uint8_t *payload,
                                 size_t payload_len)
{
    cl_status_t rc;
    uint8_t tbs[CL_COSE_MAX_STRUCTURE];
    size_t tbs_len = 0;
    int64_t msg_alg = 0;

    if (c == NULL || c->ops == NULL || m == NULL ||
        (external_aad == NULL && external_aad_len > 0) || (payload == NULL && payload_len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (!sig_alg_known(alg)) {
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto done;
    }
    if (m->signature == NULL) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    rc = cl_cose_header_alg(m, &msg_alg);
    if (rc == CL_ERR_BAD_INPUT)
        goto done;
    if (rc != CL_OK || msg_alg != (int64_t)alg) {
        /* absent, unknown (text) or another algorithm than the one expected */
        rc = CL_FAIL(CL_ERR_AUTH);
        goto done;
    }
    if (payload == NULL) {
        if (m->content == NULL) {
            /* detached payload, and the caller passed none */
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        payload = m->content;
        payload_len = m->content_len;
    }
    rc = build_tbs(tbs, &tbs_len, m->protected_hdr, m->protected_len, external_aad,
                   external_aad_len, payload, payload_len);
    if (rc != CL_OK)
        goto done;
    rc = c->ops->verify(c->self, key, alg, tbs, tbs_len, m->signature, m->signature_len);
done:
    return rc;
}
