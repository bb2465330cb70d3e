/*
 * oscore.c - OSCORE (RFC 8613) message protection.
 *
 * A protected message is built in one pass into the caller's buffer: the
 * outer header and Class U options (plus the OSCORE option and the outer
 * Observe), the payload marker, then the plaintext (code, inner options,
 * payload) written where the ciphertext goes and encrypted in place. On the
 * receiving side the ciphertext is decrypted in place in the received
 * datagram and the plain message is serialized from the outer fields and the
 * inner plaintext. Nothing is allocated; the only per-message state that
 * outlives a call is the sequence number, the replay window and the
 * cl_oscore_req_t that binds a response to its request.
 *
 * The security-relevant decisions are in few places: make_nonce (whose
 * Sender ID goes into the nonce), replay_check/replay_commit (atomic with a
 * successful decryption, committed only once the whole message was
 * accepted), next_ssn (never reuses a sequence number, persists ahead of
 * use), and the response-nonce rule in cl_oscore_protect_response (a
 * request nonce is used at most once per key).
 */
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/oscore.h"

_Static_assert(sizeof(cl_oscore_ctx_t) <= 256, "an OSCORE context must fit in 256 bytes");

#define OSCORE_VERSION 1
#define DEFAULT_WINDOW 32
#define FLAG_KID 0x08
#define FLAG_KID_CONTEXT 0x10
#define FLAG_RESERVED 0xe0
/* Enc_structure prefix ["Encrypt0", h'', ...: 0x83 0x68 "Encrypt0" 0x40 */
#define ENC0_PREFIX_LEN 11

/* ------------------------------------------------------------------ */
/* Option classes (section 4.1)                                        */
/* ------------------------------------------------------------------ */

/* Class U only: left in the clear for proxies. Everything else is inner. */
static bool is_outer_only(uint16_t n)
{
    switch (n) {
    case CL_COAP_OPT_URI_HOST:
    case CL_COAP_OPT_URI_PORT:
    case CL_COAP_OPT_PROXY_URI:
    case CL_COAP_OPT_PROXY_SCHEME:
    case CL_COAP_OPT_HOP_LIMIT: /* RFC 8768: class U */
    case CL_COAP_OPT_EDHOC: /* RFC 9668: class U */ return true;
    default: return false;
    }
}

static bool is_request_code(uint8_t code)
{
    return CL_COAP_CLASS(code) == 0 && code != CL_COAP_EMPTY;
}

static bool is_response_code(uint8_t code)
{
    uint8_t c = CL_COAP_CLASS(code);
    return c >= 2 && c <= 5;
}

/* ------------------------------------------------------------------ */
/* Context derivation (section 3.2)                                    */
/* ------------------------------------------------------------------ */

/* info = [id, id_context / nil, alg_aead, type, L]; out = HKDF-Expand(prk, info, L). */
static cl_status_t expand_info(const cl_oscore_ctx_t *ctx, const uint8_t prk[32], const uint8_t *id,
                               size_t id_len, const char *type, size_t L, uint8_t *out)
{
    uint8_t info[32 + CL_OSCORE_MAX_ID + CL_OSCORE_MAX_ID_CONTEXT];
    cl_cbor_enc_t e;
    size_t n;
    cl_status_t st;

    cl_cbor_enc_init(&e, info, sizeof info);
    cl_cbor_enc_array(&e, 5);
    cl_cbor_enc_bstr(&e, id, id_len);
    if (ctx->flags & CL_OSCORE_F_HAS_IDCTX)
        cl_cbor_enc_bstr(&e, ctx->id_context, ctx->id_context_len);
    else
        cl_cbor_enc_null(&e);
    cl_cbor_enc_int(&e, ctx->alg);
    cl_cbor_enc_tstr_z(&e, type);
    cl_cbor_enc_uint(&e, L);
    if ((st = cl_cbor_enc_finish(&e, &n)) != CL_OK)
        return st;
    return cl_hkdf_expand(ctx->crypto, prk, 32, info, n, out, L);
}

/* Derives keys and Common IV from the inputs already stored in ctx. */
static cl_status_t derive(cl_oscore_ctx_t *ctx)
{
    uint8_t prk[32], skey[CL_AEAD_MAX_KEY], rkey[CL_AEAD_MAX_KEY];
    size_t key_len, nonce_len, tag_len;
    cl_key_t sk = CL_KEY_NONE, rk = CL_KEY_NONE;
    cl_status_t st;

    if ((st = cl_aead_params((cl_aead_alg_t)ctx->alg, &key_len, &nonce_len, &tag_len)) != CL_OK)
        return st;
    st = cl_hkdf_extract(ctx->crypto, ctx->master_salt, ctx->master_salt_len, ctx->master_secret,
                         ctx->master_secret_len, prk);
    if (st != CL_OK)
        goto done;
    if ((st = expand_info(ctx, prk, ctx->sender_id, ctx->sender_id_len, "Key", key_len, skey)) !=
        CL_OK)
        goto done;
    if ((st = expand_info(ctx, prk, ctx->recipient_id, ctx->recipient_id_len, "Key", key_len,
                          rkey)) != CL_OK)
        goto done;
    if ((st = expand_info(ctx, prk, NULL, 0, "IV", nonce_len, ctx->common_iv)) != CL_OK)
        goto done;
    if ((st = cl_aead_import(ctx->crypto, (cl_aead_alg_t)ctx->alg, skey, key_len, &sk)) != CL_OK)
        goto done;
    if ((st = cl_aead_import(ctx->crypto, (cl_aead_alg_t)ctx->alg, rkey, key_len, &rk)) != CL_OK)
        goto done;
    ctx->sender_key = sk;
    ctx->recipient_key = rk;
    ctx->nonce_len = (uint8_t)nonce_len;
    ctx->tag_len = (uint8_t)tag_len;
    sk = rk = CL_KEY_NONE;
done:
    cl_key_destroy(ctx->crypto, sk);
    cl_key_destroy(ctx->crypto, rk);
    cl_wipe(prk, sizeof prk);
    cl_wipe(skey, sizeof skey);
    cl_wipe(rkey, sizeof rkey);
    return st;
}

cl_status_t cl_oscore_ctx_init(cl_oscore_ctx_t *ctx, const cl_crypto_t *crypto,
                               const cl_oscore_params_t *p)
{
    size_t nonce_len;
    cl_status_t st;

    if (ctx == NULL || crypto == NULL || crypto->ops == NULL || p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    cl_aead_alg_t alg = p->aead ? p->aead : CL_AEAD_AES_CCM_16_64_128;
    if ((st = cl_aead_params(alg, NULL, &nonce_len, NULL)) != CL_OK)
        return st;
    size_t max_id = nonce_len - 6 < CL_OSCORE_MAX_ID ? nonce_len - 6 : CL_OSCORE_MAX_ID;
    uint32_t window = p->replay_window ? p->replay_window : DEFAULT_WINDOW;
    if (p->master_secret == NULL || p->master_secret_len == 0 ||
        p->master_secret_len > CL_OSCORE_MAX_MASTER_SECRET ||
        p->master_salt_len > CL_OSCORE_MAX_MASTER_SALT ||
        (p->master_salt_len > 0 && p->master_salt == NULL) || p->sender_id_len > max_id ||
        p->recipient_id_len > max_id || (p->sender_id_len > 0 && p->sender_id == NULL) ||
        (p->recipient_id_len > 0 && p->recipient_id == NULL) ||
        p->id_context_len > CL_OSCORE_MAX_ID_CONTEXT || window > CL_OSCORE_REPLAY_WINDOW ||
        window > 64 || p->initial_ssn > CL_OSCORE_SSN_MAX)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    /* Section 3.3: Sender ID and Recipient ID must differ within a context. */
    if (p->sender_id_len == p->recipient_id_len &&
        (p->sender_id_len == 0 || memcmp(p->sender_id, p->recipient_id, p->sender_id_len) == 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);

    memset(ctx, 0, sizeof *ctx);
    ctx->crypto = crypto;
    ctx->alg = (uint8_t)alg;
    ctx->window = (uint8_t)window;
    memcpy(ctx->master_secret, p->master_secret, p->master_secret_len);
    ctx->master_secret_len = (uint8_t)p->master_secret_len;
    if (p->master_salt_len)
        memcpy(ctx->master_salt, p->master_salt, p->master_salt_len);
    ctx->master_salt_len = (uint8_t)p->master_salt_len;
    if (p->sender_id_len)
        memcpy(ctx->sender_id, p->sender_id, p->sender_id_len);
    ctx->sender_id_len = (uint8_t)p->sender_id_len;
    if (p->recipient_id_len)
        memcpy(ctx->recipient_id, p->recipient_id, p->recipient_id_len);
    ctx->recipient_id_len = (uint8_t)p->recipient_id_len;
    if (p->id_context != NULL) {
        memcpy(ctx->id_context, p->id_context, p->id_context_len);
        ctx->id_context_len = (uint8_t)p->id_context_len;
        ctx->flags |= CL_OSCORE_F_HAS_IDCTX;
        if (p->send_kid_context)
            ctx->flags |= CL_OSCORE_F_SEND_IDCTX;
    }
    ctx->ssn = p->initial_ssn;
    ctx->persist = p->persist;
    ctx->persist_arg = p->persist_arg;
    ctx->persist_k = p->persist_k ? p->persist_k : CL_OSCORE_SEQ_PERSIST_K;
    ctx->ssn_ceiling = p->initial_ssn; /* the first use persists a ceiling */
    if ((st = derive(ctx)) != CL_OK) {
        cl_wipe(ctx, sizeof *ctx);
        return st;
    }
    ctx->flags |= CL_OSCORE_F_VALID;
    if (p->echo_on_boot)
        ctx->flags |= CL_OSCORE_F_NEED_ECHO;
    return CL_OK;
}

cl_status_t cl_oscore_ctx_rederive(cl_oscore_ctx_t *dst, const cl_oscore_ctx_t *src,
                                   const uint8_t *id_context, size_t id_context_len)
{
    cl_oscore_ctx_t tmp;
    cl_status_t st;

    if (dst == NULL || src == NULL || !(src->flags & CL_OSCORE_F_VALID) ||
        id_context_len > CL_OSCORE_MAX_ID_CONTEXT || (id_context_len > 0 && id_context == NULL))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    tmp = *src;
    tmp.sender_key = tmp.recipient_key = CL_KEY_NONE;
    if (id_context_len)
        memmove(tmp.id_context, id_context, id_context_len);
    tmp.id_context_len = (uint8_t)id_context_len;
    tmp.flags = (uint8_t)(CL_OSCORE_F_HAS_IDCTX | (src->flags & CL_OSCORE_F_SEND_IDCTX));
    tmp.ssn = 0;
    tmp.ssn_ceiling = 0;
    tmp.rw_top = tmp.rw_bits = 0;
    if ((st = derive(&tmp)) != CL_OK)
        goto done;
    tmp.flags |= CL_OSCORE_F_VALID;
    if (dst == src) {
        cl_key_destroy(src->crypto, src->sender_key);
        cl_key_destroy(src->crypto, src->recipient_key);
    }
    *dst = tmp;
done:
    cl_wipe(&tmp, sizeof tmp);
    return st;
}

void cl_oscore_ctx_free(cl_oscore_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    if (ctx->crypto != NULL) {
        cl_key_destroy(ctx->crypto, ctx->sender_key);
        cl_key_destroy(ctx->crypto, ctx->recipient_key);
    }
    cl_wipe(ctx, sizeof *ctx);
}

void cl_oscore_ctx_require_echo(cl_oscore_ctx_t *ctx)
{
    ctx->flags = (uint8_t)((ctx->flags | CL_OSCORE_F_NEED_ECHO) &
                           ~(CL_OSCORE_F_ECHO_SENT | CL_OSCORE_F_RW_INIT));
    ctx->rw_top = ctx->rw_bits = 0;
}

cl_oscore_ctx_t *cl_oscore_lookup_list(void *list, const uint8_t *kid, size_t kid_len,
                                       const uint8_t *kid_context, size_t kid_context_len,
                                       bool has_kid_context)
{
    const cl_oscore_ctx_list_t *l = list;
    for (size_t i = 0; l != NULL && i < l->n; i++) {
        cl_oscore_ctx_t *c = l->ctx[i];
        if (c == NULL || !(c->flags & CL_OSCORE_F_VALID) || c->recipient_id_len != kid_len ||
            (kid_len && memcmp(c->recipient_id, kid, kid_len) != 0))
            continue;
        if (has_kid_context &&
            (!(c->flags & CL_OSCORE_F_HAS_IDCTX) || c->id_context_len != kid_context_len ||
             (kid_context_len && memcmp(c->id_context, kid_context, kid_context_len) != 0)))
            continue;
        return c;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* OSCORE option (section 6.1)                                         */
/* ------------------------------------------------------------------ */

cl_status_t cl_oscore_option_decode(cl_oscore_option_t *o, const uint8_t *v, size_t len)
{
    size_t p = 1;

    memset(o, 0, sizeof *o);
    if (len == 0)
        return CL_OK;
    uint8_t flags = v[0];
    size_t n = flags & 0x07;
    if ((flags & FLAG_RESERVED) || n > 5 || flags == 0) /* 0x00 must be sent as empty */
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (n > 0) {
        if (len - p < n)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        o->piv = v + p;
        o->piv_len = n;
        p += n;
    }
    if (flags & FLAG_KID_CONTEXT) {
        if (len - p < 1)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        size_t s = v[p++];
        if (len - p < s)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        o->kid_context = v + p;
        o->kid_context_len = s;
        o->has_kid_context = true;
        p += s;
    }
    if (flags & FLAG_KID) {
        o->kid = v + p;
        o->kid_len = len - p;
        o->has_kid = true;
    } else if (p != len) {
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    return CL_OK;
}

cl_status_t cl_oscore_option_encode(const cl_oscore_option_t *o, uint8_t *out, size_t out_size,
                                    size_t *out_len)
{
    if (o->piv_len > 5 || (o->has_kid_context && o->kid_context_len > 255))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    uint8_t flags = (uint8_t)(o->piv_len | (o->has_kid ? FLAG_KID : 0) |
                              (o->has_kid_context ? FLAG_KID_CONTEXT : 0));
    if (flags == 0) {
        *out_len = 0;
        return CL_OK;
    }
    size_t need = 1 + o->piv_len + (o->has_kid_context ? 1 + o->kid_context_len : 0) +
                  (o->has_kid ? o->kid_len : 0);
    if (out == NULL || need > out_size)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    uint8_t *p = out;
    *p++ = flags;
    if (o->piv_len) {
        memcpy(p, o->piv, o->piv_len);
        p += o->piv_len;
    }
    if (o->has_kid_context) {
        *p++ = (uint8_t)o->kid_context_len;
        if (o->kid_context_len)
            memcpy(p, o->kid_context, o->kid_context_len);
        p += o->kid_context_len;
    }
    if (o->has_kid && o->kid_len)
        memcpy(p, o->kid, o->kid_len);
    *out_len = need;
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* Nonce, Partial IV, AAD, sequence numbers, replay window             */
/* ------------------------------------------------------------------ */

/* Section 5.2: S || pad || ID_PIV (nonce_len-6 bytes) || pad || PIV (5 bytes), XOR Common IV. */
static void make_nonce(const cl_oscore_ctx_t *ctx, const uint8_t *id, size_t id_len,
                       const uint8_t *piv, size_t piv_len, uint8_t *nonce)
{
    size_t n = ctx->nonce_len;
    uint8_t b[CL_AEAD_MAX_NONCE] = {0};
    b[0] = (uint8_t)id_len;
    if (id_len)
        memcpy(b + (n - 5) - id_len, id, id_len);
    if (piv_len)
        memcpy(b + n - piv_len, piv, piv_len);
    for (size_t i = 0; i < n; i++)
        nonce[i] = (uint8_t)(b[i] ^ ctx->common_iv[i]);
}

/* Sequence number to Partial IV: big endian, no leading zeros, 0 -> 0x00. */
static size_t encode_piv(uint64_t seq, uint8_t piv[5])
{
    size_t n = 1;
    while (n < 5 && (seq >> (8 * n)) != 0)
        n++;
    for (size_t i = 0; i < n; i++)
        piv[i] = (uint8_t)(seq >> (8 * (n - 1 - i)));
    return n;
}

static uint64_t decode_piv(const uint8_t *piv, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v << 8 | piv[i];
    return v;
}

/*
 * AAD = Enc_structure ["Encrypt0", h'', bstr .cbor aad_array],
 * aad_array = [1, [alg], request_kid, request_piv, options (no Class I: h'')].
 * Written directly: every item is short (kid <= 7, PIV <= 5, alg < 65536),
 * so the bytes are fixed apart from kid, PIV and alg (all AEADs we support
 * have positive COSE ids below 256). Hot path: no generic encoder.
 */
static cl_status_t build_aad(const cl_oscore_ctx_t *ctx, const uint8_t *kid, size_t kid_len,
                             const uint8_t *piv, size_t piv_len, uint8_t *out, size_t *out_len)
{
    static const uint8_t prefix[11] = {0x83, 0x68, 'E', 'n', 'c', 'r', 'y', 'p', 't', '0', 0x40};
    uint8_t *p = out + ENC0_PREFIX_LEN + 1; /* + bstr head of the aad_array */
    if (kid_len > 23 || piv_len > 23)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    memcpy(out, prefix, ENC0_PREFIX_LEN);
    *p++ = 0x85;           /* array(5) */
    *p++ = OSCORE_VERSION; /* uint 1 */
    *p++ = 0x81;           /* [alg] */
    if (ctx->alg >= 24)    /* alg is a uint8_t: one extra byte at most */
        *p++ = 0x18;
    *p++ = ctx->alg;
    *p++ = (uint8_t)(0x40 | kid_len); /* request_kid */
    if (kid_len)
        memcpy(p, kid, kid_len);
    p += kid_len;
    *p++ = (uint8_t)(0x40 | piv_len); /* request_piv */
    if (piv_len)
        memcpy(p, piv, piv_len);
    p += piv_len;
    *p++ = 0x40; /* options: no Class I options */
    size_t arr_len = (size_t)(p - out) - ENC0_PREFIX_LEN - 1;
    out[ENC0_PREFIX_LEN] = (uint8_t)(0x40 | arr_len); /* arr_len <= 20 < 24 */
    *out_len = (size_t)(p - out);
    return CL_OK;
}

/* Takes the next Sender Sequence Number, persisting a ceiling first when due (B.1.1). */
static cl_status_t next_ssn(cl_oscore_ctx_t *ctx, uint64_t *seq)
{
    if (ctx->ssn > CL_OSCORE_SSN_MAX)
        return CL_FAIL(CL_ERR_SEQ_EXHAUSTED);
    if (ctx->persist != NULL && ctx->ssn >= ctx->ssn_ceiling) {
        uint64_t ceiling = ctx->ssn + ctx->persist_k;
        if (ceiling > CL_OSCORE_SSN_MAX + 1)
            ceiling = CL_OSCORE_SSN_MAX + 1;
        if (ctx->persist(ctx->persist_arg, ctx, ceiling) != CL_OK)
            return CL_FAIL(CL_ERR_PERSIST);
        ctx->ssn_ceiling = ceiling;
    }
    *seq = ctx->ssn++;
    return CL_OK;
}

static cl_status_t replay_check(const cl_oscore_ctx_t *ctx, uint64_t seq)
{
    if (!(ctx->flags & CL_OSCORE_F_RW_INIT) || seq > ctx->rw_top)
        return CL_OK;
    uint64_t diff = ctx->rw_top - seq;
    if (diff >= ctx->window || (ctx->rw_bits >> diff) & 1u)
        return CL_FAIL(CL_ERR_REPLAY);
    return CL_OK;
}

static void replay_commit(cl_oscore_ctx_t *ctx, uint64_t seq)
{
    if (!(ctx->flags & CL_OSCORE_F_RW_INIT)) {
        ctx->rw_top = seq;
        ctx->rw_bits = 1;
        ctx->flags |= CL_OSCORE_F_RW_INIT;
        return;
    }
    if (seq > ctx->rw_top) {
        uint64_t shift = seq - ctx->rw_top;
        ctx->rw_bits = shift >= 64 ? 0 : ctx->rw_bits << shift;
        ctx->rw_bits |= 1;
        ctx->rw_top = seq;
    } else {
        ctx->rw_bits |= UINT64_C(1) << (ctx->rw_top - seq);
    }
    if (ctx->window < 64)
        ctx->rw_bits &= (UINT64_C(1) << ctx->window) - 1;
}

/* ------------------------------------------------------------------ */
/* Sealing and opening                                                 */
/* ------------------------------------------------------------------ */

/* Inserts `opt` into the sorted array a[0..*n) after any options with the same number. */
static void insert_sorted(cl_coap_option_t *a, size_t *n, cl_coap_option_t opt)
{
    size_t i = *n;
    while (i > 0 && a[i - 1].number > opt.number) {
        a[i] = a[i - 1];
        i--;
    }
    a[i] = opt;
    (*n)++;
}

/*
 * Writes the protected form of `plain` into out: outer header/options with
 * the OSCORE option, then the plaintext encrypted in place. `notification`
 * makes the inner Observe empty (section 4.1.3.5.2).
 */
static cl_status_t seal(const cl_oscore_ctx_t *ctx, const cl_coap_msg_t *plain, bool request,
                        bool notification, const uint8_t *optval, size_t optlen,
                        const uint8_t *nonce, const uint8_t *aad, size_t aad_len, uint8_t *out,
                        size_t out_size, size_t *out_len)
{
    cl_coap_option_t outer[CL_COAP_MAX_OPTIONS + 1];
    size_t n_outer = 0, pos, pt_start = 0, ct_len;
    bool observe = false;
    cl_coap_builder_t b;
    cl_status_t st;

    for (size_t i = 0; i < plain->n_options; i++) {
        const cl_coap_option_t *o = &plain->options[i];
        if (o->number == CL_COAP_OPT_OSCORE)
            return CL_FAIL(CL_ERR_INVALID_ARG); /* no nested OSCORE (4.1.3.7) */
        if (o->number == CL_COAP_OPT_OBSERVE)
            observe = true;
        if (is_outer_only(o->number) || o->number == CL_COAP_OPT_OBSERVE) {
            if (n_outer == CL_COAP_MAX_OPTIONS)
                return CL_FAIL(CL_ERR_LIMIT);
            outer[n_outer++] = *o;
        }
    }
    cl_coap_option_t oscore = {CL_COAP_OPT_OSCORE, (uint16_t)optlen, optval};
    insert_sorted(outer, &n_outer, oscore);

    uint8_t code = request ? (observe ? CL_COAP_FETCH : CL_COAP_POST)
                           : (observe ? CL_COAP_CONTENT : CL_COAP_CHANGED);
    cl_coap_build_init(&b, out, out_size, plain->type, code, plain->mid, plain->token, plain->tkl);
    for (size_t i = 0; i < n_outer; i++)
        cl_coap_build_option(&b, outer[i].number, outer[i].value, outer[i].len);
    if ((st = cl_coap_build_finish(&b, &pos)) != CL_OK)
        return st;

    /* Payload marker, then the plaintext: code, inner options, [0xff payload]. */
    if (out_size - pos < 2 + (size_t)ctx->tag_len)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    out[pos++] = 0xff;
    pt_start = pos;
    out[pos++] = plain->code;
    uint16_t prev = 0;
    for (size_t i = 0; i < plain->n_options; i++) {
        const cl_coap_option_t *o = &plain->options[i];
        if (is_outer_only(o->number))
            continue;
        size_t n;
        bool empty = notification && o->number == CL_COAP_OPT_OBSERVE;
        st = cl_coap_option_encode(out + pos, out_size - pos, &n, prev, o->number,
                                   empty ? NULL : o->value, empty ? 0 : o->len);
        if (st != CL_OK)
            goto fail;
        pos += n;
        prev = o->number;
    }
    if (plain->payload_len > 0) {
        if (out_size - pos < 1 + plain->payload_len) {
            st = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
            goto fail;
        }
        out[pos++] = 0xff;
        memcpy(out + pos, plain->payload, plain->payload_len);
        pos += plain->payload_len;
    }
    st = cl_aead_encrypt(ctx->crypto, ctx->sender_key, nonce, ctx->nonce_len, aad, aad_len,
                         out + pt_start, pos - pt_start, out + pt_start, out_size - pt_start,
                         &ct_len);
    if (st != CL_OK)
        goto fail;
    *out_len = pt_start + ct_len;
    return CL_OK;
fail:
    /* Never leave plaintext behind in the output buffer. */
    cl_wipe(out + pt_start, pos - pt_start);
    return st;
}

/*
 * Decrypts the payload of `m` (inside msg) in place and parses the plaintext
 * into *inner (code + options + payload, pointers into msg).
 */
static cl_status_t open_payload(const cl_oscore_ctx_t *ctx, const cl_coap_msg_t *m, uint8_t *msg,
                                const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                                cl_coap_msg_t *inner, uint8_t **pt, size_t *pt_len)
{
    cl_status_t st;
    size_t n;

    if (m->payload_len < (size_t)ctx->tag_len + 1)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    uint8_t *ct = msg + (m->payload - msg);
    st = cl_aead_decrypt(ctx->crypto, ctx->recipient_key, nonce, ctx->nonce_len, aad, aad_len, ct,
                         m->payload_len, ct, m->payload_len, &n);
    if (st != CL_OK)
        return st == CL_ERR_AUTH ? st : CL_FAIL(CL_ERR_AUTH);
    *pt = ct;
    *pt_len = n;
    memset(inner, 0, offsetof(cl_coap_msg_t, options));
    inner->code = ct[0];
    if ((st = cl_coap_options_parse(inner, ct + 1, n - 1)) != CL_OK)
        goto fail;
    for (size_t i = 0; i < inner->n_options; i++) {
        if (inner->options[i].number == CL_COAP_OPT_OSCORE) {
            st = CL_FAIL(CL_ERR_BAD_INPUT);
            goto fail;
        }
    }
    return CL_OK;
fail:
    cl_wipe(ct, n);
    return st;
}

/*
 * Serializes the plain message: outer header fields, code and inner options
 * from the plaintext, plus the Class U options of the outer message.
 * `observe_value` (if not NULL) replaces the inner Observe value.
 */
static cl_status_t reassemble(const cl_coap_msg_t *outer, const cl_coap_msg_t *inner,
                              const uint8_t *pt, size_t pt_len, const uint8_t *observe_value,
                              size_t observe_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_coap_msg_t plain;
    cl_status_t st;
    bool any_outer = false;

    for (size_t i = 0; i < outer->n_options && !any_outer; i++)
        any_outer = is_outer_only(outer->options[i].number);
    if (!any_outer && observe_value == NULL) {
        /*
         * Common case: no Class U option to merge, so the inner options are
         * already encoded exactly as in the plain message (deltas from 0):
         * header + token + the plaintext after its code byte.
         */
        size_t n = 4 + (size_t)outer->tkl + pt_len - 1;
        if (out == NULL || out_size < n)
            return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        out[0] = (uint8_t)(0x40 | outer->type << 4 | outer->tkl);
        out[1] = inner->code;
        out[2] = (uint8_t)(outer->mid >> 8);
        out[3] = (uint8_t)outer->mid;
        if (outer->tkl)
            memcpy(out + 4, outer->token, outer->tkl);
        memcpy(out + 4 + outer->tkl, pt + 1, pt_len - 1);
        *out_len = n;
        return CL_OK;
    }
    memcpy(&plain, outer, offsetof(cl_coap_msg_t, options));
    plain.code = inner->code;
    plain.n_options = 0;
    for (size_t i = 0; i < outer->n_options; i++) {
        if (!is_outer_only(outer->options[i].number))
            continue; /* Class E outer options are discarded (8.2 / 8.4 step 1) */
        plain.options[plain.n_options++] = outer->options[i];
    }
    for (size_t i = 0; i < inner->n_options; i++) {
        cl_coap_option_t o = inner->options[i];
        if (o.number == CL_COAP_OPT_OBSERVE && observe_value != NULL) {
            o.value = observe_value;
            o.len = (uint16_t)observe_len;
        }
        if (plain.n_options == CL_COAP_MAX_OPTIONS)
            return CL_FAIL(CL_ERR_LIMIT);
        insert_sorted(plain.options, &plain.n_options, o);
    }
    plain.payload = inner->payload;
    plain.payload_len = inner->payload_len;
    st = cl_coap_serialize(&plain, out, out_size, out_len);
    return st;
}

/* Finds the single OSCORE option of a message; absent or repeated is bad input. */
static cl_status_t get_oscore_option(const cl_coap_msg_t *m, cl_oscore_option_t *o)
{
    const cl_coap_option_t *found = NULL;
    for (size_t i = 0; i < m->n_options; i++) {
        if (m->options[i].number != CL_COAP_OPT_OSCORE)
            continue;
        if (found != NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        found = &m->options[i];
    }
    if (found == NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    /* A message with an OSCORE option but no payload is malformed (section 2). */
    if (m->payload_len == 0)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return cl_oscore_option_decode(o, found->value, found->len);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (uint8_t)(c | 0x20);
    return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* Percent-decodes src[0..len) into *dst (advanced); RFC 7252 6.4 steps 8-9. */
static cl_status_t pct_decode(const uint8_t *src, size_t len, uint8_t **dst, const uint8_t *end,
                              size_t *out_len)
{
    uint8_t *d = *dst;
    for (size_t i = 0; i < len; i++) {
        if (d == end)
            return CL_FAIL(CL_ERR_LIMIT);
        if (src[i] == '%') {
            int hi, lo;
            if (i + 2 >= len || (hi = hexval(src[i + 1])) < 0 || (lo = hexval(src[i + 2])) < 0)
                return CL_FAIL(CL_ERR_INVALID_ARG);
            *d++ = (uint8_t)(hi << 4 | lo);
            i += 2;
        } else {
            *d++ = src[i];
        }
    }
    *out_len = (size_t)(d - *dst);
    *dst = d;
    return CL_OK;
}

/* Appends one option pointing at buf[0..len) to m (sorted later). */
static cl_status_t add_opt(cl_coap_msg_t *m, uint16_t number, const uint8_t *v, size_t len)
{
    if (m->n_options == CL_COAP_MAX_OPTIONS)
        return CL_FAIL(CL_ERR_LIMIT);
    m->options[m->n_options++] = (cl_coap_option_t){number, (uint16_t)len, v};
    return CL_OK;
}

/*
 * Section 4.1.3.3: a Proxy-Uri is split so that its path and query travel
 * inside (Uri-Path / Uri-Query, class E) and only "scheme://authority" stays
 * outside as the Proxy-Uri. Decoded segments are written to scratch.
 */
static cl_status_t split_proxy_uri(cl_coap_msg_t *m, uint8_t *scratch, size_t scratch_size)
{
    cl_coap_option_t *pu = NULL;
    for (size_t i = 0; i < m->n_options; i++)
        if (m->options[i].number == CL_COAP_OPT_PROXY_URI)
            pu = &m->options[i];
    if (pu == NULL)
        return CL_OK;
    for (size_t i = 0; i < m->n_options; i++) {
        uint16_t n = m->options[i].number;
        if (n == CL_COAP_OPT_URI_PATH || n == CL_COAP_OPT_URI_QUERY || n == CL_COAP_OPT_URI_HOST ||
            n == CL_COAP_OPT_URI_PORT)
            return CL_FAIL(CL_ERR_INVALID_ARG); /* RFC 7252 5.10.2: never together */
    }
    const uint8_t *v = pu->value;
    size_t len = pu->len, i = 0, auth_end, path_end;
    while (i + 2 < len && !(v[i] == ':' && v[i + 1] == '/' && v[i + 2] == '/'))
        i++;
    if (i + 2 >= len || i == 0 || memchr(v, '#', len) != NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG); /* not absolute, or has a fragment */
    auth_end = i + 3;
    while (auth_end < len && v[auth_end] != '/' && v[auth_end] != '?')
        auth_end++;
    path_end = auth_end;
    while (path_end < len && v[path_end] != '?')
        path_end++;
    pu->len = (uint16_t)auth_end;
    uint8_t *d = scratch;
    const uint8_t *end = scratch + scratch_size;
    size_t n;
    cl_status_t st;
    /* Path: empty or "/" gives no option; else one Uri-Path per segment. */
    if (path_end - auth_end > 1) {
        size_t seg = auth_end + 1;
        for (size_t k = seg; k <= path_end; k++) {
            if (k < path_end && v[k] != '/')
                continue;
            uint8_t *start = d;
            if ((st = pct_decode(v + seg, k - seg, &d, end, &n)) != CL_OK)
                return st;
            if ((st = add_opt(m, CL_COAP_OPT_URI_PATH, start, n)) != CL_OK)
                return st;
            seg = k + 1;
        }
    }
    if (path_end + 1 < len) { /* "?" with nothing after it gives no Uri-Query */
        size_t arg = path_end + 1;
        for (size_t k = arg; k <= len; k++) {
            if (k < len && v[k] != '&')
                continue;
            uint8_t *start = d;
            if ((st = pct_decode(v + arg, k - arg, &d, end, &n)) != CL_OK)
                return st;
            if ((st = add_opt(m, CL_COAP_OPT_URI_QUERY, start, n)) != CL_OK)
                return st;
            arg = k + 1;
        }
    }
    cl_coap_sort_options(m);
    return CL_OK;
}

cl_status_t cl_oscore_protect_request(cl_oscore_ctx_t *ctx, const uint8_t *coap, size_t coap_len,
                                      uint8_t *out, size_t out_size, size_t *out_len,
                                      cl_oscore_req_t *req)
{
    cl_coap_msg_t m;
    uint8_t piv[5], nonce[CL_AEAD_MAX_NONCE], aad[CL_OSCORE_MAX_AAD];
    uint8_t optval[1 + 5 + 1 + CL_OSCORE_MAX_ID_CONTEXT + CL_OSCORE_MAX_ID];
    uint8_t uri_scratch[1034]; /* Proxy-Uri is at most 1034 bytes (RFC 7252 5.10) */
    size_t piv_len, aad_len, opt_len;
    uint64_t seq;
    cl_status_t st;

    if (ctx == NULL || !(ctx->flags & CL_OSCORE_F_VALID) || req == NULL || out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((st = cl_coap_parse(&m, coap, coap_len)) != CL_OK)
        return st == CL_ERR_LIMIT ? st : CL_FAIL(CL_ERR_INVALID_ARG);
    if (!is_request_code(m.code))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((st = split_proxy_uri(&m, uri_scratch, sizeof uri_scratch)) != CL_OK)
        return st;
    if (cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) != NULL) /* refused before a number is spent */
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((st = next_ssn(ctx, &seq)) != CL_OK)
        return st;
    piv_len = encode_piv(seq, piv);

    cl_oscore_option_t o = {.piv = piv,
                            .piv_len = piv_len,
                            .kid = ctx->sender_id,
                            .kid_len = ctx->sender_id_len,
                            .has_kid = true};
    if (ctx->flags & CL_OSCORE_F_SEND_IDCTX) {
        o.kid_context = ctx->id_context;
        o.kid_context_len = ctx->id_context_len;
        o.has_kid_context = true;
    }
    if ((st = cl_oscore_option_encode(&o, optval, sizeof optval, &opt_len)) != CL_OK)
        return st;
    if ((st = build_aad(ctx, ctx->sender_id, ctx->sender_id_len, piv, piv_len, aad, &aad_len)) !=
        CL_OK)
        return st;
    make_nonce(ctx, ctx->sender_id, ctx->sender_id_len, piv, piv_len, nonce);
    st = seal(ctx, &m, true, false, optval, opt_len, nonce, aad, aad_len, out, out_size, out_len);
    if (st != CL_OK)
        return st;

    memset(req, 0, sizeof *req);
    memcpy(req->kid, ctx->sender_id, ctx->sender_id_len);
    req->kid_len = ctx->sender_id_len;
    memcpy(req->piv, piv, piv_len);
    req->piv_len = (uint8_t)piv_len;
    const cl_coap_option_t *obs = cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE);
    uint32_t obs_val;
    req->observe = obs != NULL && cl_coap_opt_uint(obs, &obs_val) == CL_OK && obs_val == 0;
    return CL_OK;
}

cl_status_t cl_oscore_unprotect_request(cl_oscore_lookup_fn lookup, void *lookup_arg, uint8_t *msg,
                                        size_t len, uint8_t *out, size_t out_size, size_t *out_len,
                                        cl_oscore_ctx_t **ctx_out, cl_oscore_req_t *req)
{
    cl_coap_msg_t m, inner;
    cl_oscore_option_t o;
    cl_oscore_ctx_t *ctx;
    uint8_t nonce[CL_AEAD_MAX_NONCE], aad[CL_OSCORE_MAX_AAD];
    uint8_t *pt = NULL;
    size_t aad_len, pt_len = 0;
    bool echo_ok = false;
    cl_status_t st;

    if (lookup == NULL || msg == NULL || out_len == NULL || ctx_out == NULL || req == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *ctx_out = NULL;
    memset(req, 0, sizeof *req);
    if ((st = cl_coap_parse(&m, msg, len)) != CL_OK)
        return st;
    if (!is_request_code(m.code))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if ((st = get_oscore_option(&m, &o)) != CL_OK)
        return st;
    if (o.piv_len == 0 || !o.has_kid) /* requests carry both (section 5) */
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (o.kid_len > CL_OSCORE_MAX_ID)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    ctx = lookup(lookup_arg, o.kid, o.kid_len, o.kid_context, o.kid_context_len, o.has_kid_context);
    if (ctx == NULL || !(ctx->flags & CL_OSCORE_F_VALID))
        return CL_FAIL(CL_ERR_NOT_FOUND);
    *ctx_out = ctx;
    memcpy(req->kid, o.kid, o.kid_len);
    req->kid_len = (uint8_t)o.kid_len;
    memcpy(req->piv, o.piv, o.piv_len);
    req->piv_len = (uint8_t)o.piv_len;

    uint64_t seq = decode_piv(o.piv, o.piv_len);
    bool need_echo = (ctx->flags & CL_OSCORE_F_NEED_ECHO) != 0;
    if (!need_echo && (st = replay_check(ctx, seq)) != CL_OK)
        return st;
    if ((st = build_aad(ctx, o.kid, o.kid_len, o.piv, o.piv_len, aad, &aad_len)) != CL_OK)
        return st;
    make_nonce(ctx, o.kid, o.kid_len, o.piv, o.piv_len, nonce);
    if ((st = open_payload(ctx, &m, msg, nonce, aad, aad_len, &inner, &pt, &pt_len)) != CL_OK)
        return st;
    if (!is_request_code(inner.code)) {
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    if (need_echo) {
        const cl_coap_option_t *echo = cl_coap_msg_get(&inner, CL_COAP_OPT_ECHO);
        echo_ok = (ctx->flags & CL_OSCORE_F_ECHO_SENT) && echo != NULL &&
                  echo->len == CL_OSCORE_ECHO_LEN &&
                  cl_ct_memcmp(echo->value, ctx->echo, CL_OSCORE_ECHO_LEN) == 0;
        if (!echo_ok) {
            st = CL_FAIL(CL_ERR_ECHO_REQUIRED);
            goto fail;
        }
    }
    if ((st = reassemble(&m, &inner, pt, pt_len, NULL, 0, out, out_size, out_len)) != CL_OK)
        goto fail;

    /*
     * Accepted: commit the replay state. After B.1.2 the Partial IV of this
     * request is the lower limit of the window: everything at or below it
     * counts as already received.
     */
    if (need_echo) {
        ctx->flags = (uint8_t)((ctx->flags | CL_OSCORE_F_RW_INIT) &
                               ~(CL_OSCORE_F_NEED_ECHO | CL_OSCORE_F_ECHO_SENT));
        ctx->rw_top = seq;
        ctx->rw_bits = UINT64_MAX;
        cl_wipe(ctx->echo, sizeof ctx->echo);
    }
    replay_commit(ctx, seq);
    const cl_coap_option_t *obs = cl_coap_msg_get(&inner, CL_COAP_OPT_OBSERVE);
    uint32_t obs_val;
    req->observe = obs != NULL && cl_coap_opt_uint(obs, &obs_val) == CL_OK && obs_val == 0;
    cl_wipe(pt, pt_len); /* the plaintext now lives only in out */
    return CL_OK;
fail:
    cl_wipe(pt, pt_len);
    return st;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

cl_status_t cl_oscore_protect_response(cl_oscore_ctx_t *ctx, cl_oscore_req_t *req,
                                       const cl_oscore_resp_opts_t *opts, const uint8_t *coap,
                                       size_t coap_len, uint8_t *out, size_t out_size,
                                       size_t *out_len)
{
    cl_coap_msg_t m;
    uint8_t piv[5], nonce[CL_AEAD_MAX_NONCE], aad[CL_OSCORE_MAX_AAD];
    uint8_t optval[1 + 5 + 1 + 255];
    size_t piv_len = 0, aad_len, opt_len;
    uint64_t seq;
    cl_status_t st;

    if (ctx == NULL || !(ctx->flags & CL_OSCORE_F_VALID) || req == NULL || out_len == NULL ||
        req->piv_len == 0 || req->piv_len > 5 || req->kid_len > CL_OSCORE_MAX_ID ||
        (opts != NULL && opts->kid_context_len > 255))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((st = cl_coap_parse(&m, coap, coap_len)) != CL_OK)
        return st == CL_ERR_LIMIT ? st : CL_FAIL(CL_ERR_INVALID_ARG);
    if (!is_response_code(m.code) || cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) != NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((size_t)req->kid_len + 6 > ctx->nonce_len) /* the kid must fit the nonce's ID field */
        return CL_FAIL(CL_ERR_INVALID_ARG);
    bool notification = req->observe && cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE) != NULL;
    /*
     * The request nonce may protect exactly one response (section 5.2 and
     * 8.3.1); every later response or notification gets its own Partial IV.
     */
    bool new_piv = (opts != NULL && opts->new_piv) || req->nonce_reused;
    if (new_piv) {
        if ((st = next_ssn(ctx, &seq)) != CL_OK)
            return st;
        piv_len = encode_piv(seq, piv);
        /* The Partial IV was generated by the server: the nonce uses *its* Sender ID. */
        make_nonce(ctx, ctx->sender_id, ctx->sender_id_len, piv, piv_len, nonce);
    } else {
        make_nonce(ctx, req->kid, req->kid_len, req->piv, req->piv_len, nonce);
    }
    cl_oscore_option_t o = {.piv = piv, .piv_len = piv_len};
    if (opts != NULL && opts->kid_context != NULL) {
        o.kid_context = opts->kid_context;
        o.kid_context_len = opts->kid_context_len;
        o.has_kid_context = true;
    }
    if ((st = cl_oscore_option_encode(&o, optval, sizeof optval, &opt_len)) != CL_OK)
        return st;
    if ((st = build_aad(ctx, req->kid, req->kid_len, req->piv, req->piv_len, aad, &aad_len)) !=
        CL_OK)
        return st;
    st = seal(ctx, &m, false, notification, optval, opt_len, nonce, aad, aad_len, out, out_size,
              out_len);
    if (st == CL_OK && !new_piv)
        req->nonce_reused = true;
    return st;
}

cl_status_t cl_oscore_unprotect_response(cl_oscore_ctx_t *ctx, cl_oscore_req_t *req, uint8_t *msg,
                                         size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_coap_msg_t m, inner;
    cl_oscore_option_t o;
    uint8_t nonce[CL_AEAD_MAX_NONCE], aad[CL_OSCORE_MAX_AAD], obs_val[4];
    uint8_t *pt = NULL;
    size_t aad_len, pt_len = 0, obs_len = 0;
    uint64_t seq = 0;
    cl_status_t st;

    if (ctx == NULL || !(ctx->flags & CL_OSCORE_F_VALID) || req == NULL || msg == NULL ||
        out_len == NULL || req->piv_len == 0 || req->piv_len > 5 ||
        (size_t)req->kid_len + 6 > ctx->nonce_len)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((st = cl_coap_parse(&m, msg, len)) != CL_OK)
        return st;
    if (!is_response_code(m.code))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if ((st = get_oscore_option(&m, &o)) != CL_OK)
        return st;
    /* A kid in a response (group OSCORE style) must name the server we talk to. */
    if (o.has_kid && (o.kid_len != ctx->recipient_id_len ||
                      (o.kid_len && memcmp(o.kid, ctx->recipient_id, o.kid_len) != 0)))
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (o.piv_len > 0) {
        seq = decode_piv(o.piv, o.piv_len);
        if (req->observe && req->have_notif && seq <= req->notif_num)
            return CL_FAIL(CL_ERR_REPLAY);
        /* Partial IV generated by the server: nonce with the server's Sender ID. */
        make_nonce(ctx, ctx->recipient_id, ctx->recipient_id_len, o.piv, o.piv_len, nonce);
    } else {
        if (req->nonce_reused) /* at most one response without Partial IV */
            return CL_FAIL(CL_ERR_REPLAY);
        make_nonce(ctx, req->kid, req->kid_len, req->piv, req->piv_len, nonce);
    }
    if ((st = build_aad(ctx, req->kid, req->kid_len, req->piv, req->piv_len, aad, &aad_len)) !=
        CL_OK)
        return st;
    if ((st = open_payload(ctx, &m, msg, nonce, aad, aad_len, &inner, &pt, &pt_len)) != CL_OK)
        return st;
    if (!is_response_code(inner.code)) {
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    bool inner_observe = cl_coap_msg_get(&inner, CL_COAP_OPT_OBSERVE) != NULL;
    if (inner_observe && !req->observe) { /* 4.1.3.5.2: stop processing */
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto fail;
    }
    /* Notifications: order by Partial IV (its 3 low bytes as Observe value), none = oldest. */
    if (inner_observe && o.piv_len > 0)
        obs_len = cl_coap_uint_encode(obs_val, (uint32_t)(seq & 0xffffff));
    st = reassemble(&m, &inner, pt, pt_len, inner_observe ? obs_val : NULL, obs_len, out, out_size,
                    out_len);
    if (st != CL_OK)
        goto fail;
    if (o.piv_len == 0) {
        req->nonce_reused = true;
    } else if (req->observe && inner_observe) {
        req->notif_num = seq;
        req->have_notif = true;
    }
    cl_wipe(pt, pt_len);
    return CL_OK;
fail:
    cl_wipe(pt, pt_len);
    return st;
}

/* ------------------------------------------------------------------ */
/* Error and Echo responses                                            */
/* ------------------------------------------------------------------ */

/* Reads type, message id and token from a request header (nothing else is trusted). */
static cl_status_t request_header(const uint8_t *req, size_t len, uint8_t *type, uint16_t *mid,
                                  const uint8_t **token, uint8_t *tkl)
{
    if (req == NULL || len < 4 || (req[0] >> 6) != 1)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *tkl = req[0] & 0x0f;
    if (*tkl > 8 || len < 4u + *tkl)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *type = (uint8_t)((req[0] >> 4) & 3);
    if (*type != CL_COAP_CON && *type != CL_COAP_NON)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *mid = (uint16_t)(req[2] << 8 | req[3]);
    *token = req + 4;
    return CL_OK;
}

cl_status_t cl_oscore_build_error(cl_status_t why, const uint8_t *request, size_t request_len,
                                  uint16_t non_mid, uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t type, tkl, code;
    uint16_t mid;
    const uint8_t *token;
    const char *diag;
    cl_coap_builder_t b;
    cl_status_t st;

    switch (why) {
    case CL_ERR_BAD_INPUT:
        code = CL_COAP_BAD_OPTION;
        diag = "Failed to decode COSE";
        break;
    case CL_ERR_NOT_FOUND:
        code = CL_COAP_UNAUTHORIZED;
        diag = "Security context not found";
        break;
    case CL_ERR_AUTH:
        code = CL_COAP_BAD_REQUEST;
        diag = "Decryption failed";
        break;
    case CL_ERR_REPLAY:
        code = CL_COAP_UNAUTHORIZED;
        diag = "Replay detected";
        break;
    default: return CL_FAIL(CL_ERR_INVALID_ARG);
    }
    if ((st = request_header(request, request_len, &type, &mid, &token, &tkl)) != CL_OK)
        return st;
    cl_coap_build_init(&b, out, out_size, type == CL_COAP_CON ? CL_COAP_ACK : CL_COAP_NON, code,
                       type == CL_COAP_CON ? mid : non_mid, token, tkl);
    cl_coap_build_option(&b, CL_COAP_OPT_MAX_AGE, NULL, 0); /* Outer Max-Age 0 */
    cl_coap_build_payload(&b, (const uint8_t *)diag, strlen(diag));
    return cl_coap_build_finish(&b, out_len);
}

cl_status_t cl_oscore_build_echo_response(cl_oscore_ctx_t *ctx, cl_oscore_req_t *req,
                                          const uint8_t *request, size_t request_len,
                                          uint16_t non_mid, uint8_t *out, size_t out_size,
                                          size_t *out_len)
{
    uint8_t type, tkl, plain[4 + 8 + 3 + CL_OSCORE_ECHO_LEN];
    uint16_t mid;
    const uint8_t *token;
    size_t plain_len;
    cl_coap_builder_t b;
    cl_status_t st;

    if (ctx == NULL || !(ctx->flags & CL_OSCORE_F_VALID) || req == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((st = request_header(request, request_len, &type, &mid, &token, &tkl)) != CL_OK)
        return st;
    /*
     * One challenge stays valid until a request proves it: a new value per
     * request would let anyone replaying old requests keep invalidating the
     * real client's challenge. The value only travels encrypted.
     */
    if (!(ctx->flags & CL_OSCORE_F_ECHO_SENT)) {
        if ((st = cl_random(ctx->crypto, ctx->echo, CL_OSCORE_ECHO_LEN)) != CL_OK)
            return st;
        ctx->flags |= CL_OSCORE_F_ECHO_SENT;
    }
    cl_coap_build_init(&b, plain, sizeof plain, type == CL_COAP_CON ? CL_COAP_ACK : CL_COAP_NON,
                       CL_COAP_UNAUTHORIZED, type == CL_COAP_CON ? mid : non_mid, token, tkl);
    cl_coap_build_option(&b, CL_COAP_OPT_ECHO, ctx->echo, CL_OSCORE_ECHO_LEN);
    if ((st = cl_coap_build_finish(&b, &plain_len)) != CL_OK)
        return st;
    /* B.1.2: the server MUST use its own Partial IV for this response. */
    cl_oscore_resp_opts_t opts = {.new_piv = true};
    return cl_oscore_protect_response(ctx, req, &opts, plain, plain_len, out, out_size, out_len);
}

/* ------------------------------------------------------------------ */
/* HTTP mapping (section 11): the OSCORE header field                  */
/* ------------------------------------------------------------------ */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

cl_status_t cl_oscore_http_header_encode(const uint8_t *option, size_t option_len, char *out,
                                         size_t out_size)
{
    static const uint8_t zero = 0;
    if (option_len == 0) { /* empty option is sent as a single zero byte: "AA" */
        option = &zero;
        option_len = 1;
    }
    size_t need = (option_len * 8 + 5) / 6 + 1;
    if (out == NULL || need > out_size)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    size_t o = 0, i = 0;
    for (; i + 3 <= option_len; i += 3) {
        uint32_t v = (uint32_t)option[i] << 16 | (uint32_t)option[i + 1] << 8 | option[i + 2];
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (option_len - i == 1) {
        uint32_t v = (uint32_t)option[i] << 16;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (option_len - i == 2) {
        uint32_t v = (uint32_t)option[i] << 16 | (uint32_t)option[i + 1] << 8;
        out[o++] = b64url[v >> 18];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
    return CL_OK;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

cl_status_t cl_oscore_http_header_decode(const char *hdr, size_t hdr_len, uint8_t *out,
                                         size_t out_size, size_t *out_len)
{
    if (hdr == NULL || out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    /* ABNF: 2*base64url-char; a length of 1 mod 4 cannot encode whole bytes. */
    if (hdr_len < 2 || hdr_len % 4 == 1)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    size_t n = hdr_len * 6 / 8;
    if (hdr_len == 2 && hdr[0] == 'A' && hdr[1] == 'A') {
        *out_len = 0; /* "AA": the empty OSCORE option */
        return CL_OK;
    }
    if (out == NULL || n > out_size)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < hdr_len; i++) {
        int v = b64url_value(hdr[i]);
        if (v < 0)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { /* non-canonical: leftover bits must be zero */
        cl_wipe(out, o);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    *out_len = o;
    return CL_OK;
}
