/*
 * fuzz_oscore_response.c - libFuzzer harness for the OSCORE client side:
 * cl_oscore_unprotect_response (and the server's cl_oscore_protect_response
 * that produces what it verifies), plus the HTTP "OSCORE" header codec.
 *
 * Four request bindings are made once, by really protecting a request on a
 * client and unprotecting it on the server (oscore_fuzz_common.h contexts):
 *   R_RFC    RFC 8613 C.1: the C.4 request (kid 0x, Partial IV 0x14), so the
 *            C.7 / C.8 responses verify;
 *   R_A_OBS  pair A, an Observe registration;
 *   R_B      pair B (AES-GCM, ID Context), a plain POST;
 *   R_B_OBS  pair B, an Observe registration.
 * Every input starts from that state again (contexts, the client's and the
 * server's cl_oscore_req_t are copied back), so no state leaks between
 * inputs. The first byte picks the mode:
 *
 *  01xxxxxx  raw: the input is a response datagram, tried against each
 *            binding with a fresh copy. Accepted: the output parses as a
 *            response without OSCORE option, the req state moved exactly as
 *            the acceptance model says (fz_model_response), a notification's
 *            Observe value is the low 3 bytes of its Partial IV, and a second
 *            delivery gets the model's verdict. Refused: req unchanged.
 *  00xxxxxx  structured: the rest is a plain response (or bytes forced into
 *            one), optionally given an Observe option, protected by the
 *            server with or without a new Partial IV (input-chosen server
 *            sequence number, up to exhaustion) and optionally a 'kid
 *            context'; optionally one byte is XORed; the client unprotects.
 *            Unmutated: exactly the plain response back, except that for a
 *            notification the Observe value becomes the low 3 bytes of the
 *            Partial IV (empty without one) - see fz_expected_response.
 *            Mutated: refused (req untouched) or the same code, non-Class-U
 *            options and payload. Then the original and a second delivery
 *            get the model's verdict (a response without Partial IV is
 *            accepted once, notifications must increase).
 *  10xxxxxx  notification sequence: up to 8 responses to an Observe
 *            registration (with / without Partial IV, with sequence number
 *            gaps, some without Observe) delivered in an input-chosen order
 *            against the model.
 *  11xxxxxx  as structured, but the request binding (kid 0..7 bytes, Partial
 *            IV 0..5 bytes, Observe) comes from the input and is given to
 *            both ends: the protection must work for any binding the API
 *            accepts, and refuse the others.
 *
 * Every input is also checked as an OSCORE option value (decode/encode round
 * trip) and through the HTTP header mapping: decode(encode(x)) == x ("AA" for
 * the empty value), and a string the strict decoder accepts re-encodes to
 * itself. Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oscore_fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    R_RFC = FZ_R_RFC,
    R_A_OBS = FZ_R_A_OBS,
    R_B = FZ_R_B,
    R_B_OBS = FZ_R_B_OBS,
    N_BIND = FZ_N_BIND
};

#define PAIR_OF FZ_BIND_PAIR

static fz_bindings_t g_init; /* pristine, never used directly */
static fz_bindings_t g_st;   /* reset from g_init for every input */

static void setup(void)
{
    static bool ready;
    if (ready)
        return;
    fz_bindings_init(&g_init, fz_provider());
    ready = true;
}

static void observe_values_are(const cl_coap_msg_t *m, const uint8_t *v, size_t len)
{
    for (size_t i = 0; i < m->n_options; i++)
        if (m->options[i].number == CL_COAP_OPT_OBSERVE)
            FZ_CHECK(m->options[i].len == len &&
                     (len == 0 || memcmp(m->options[i].value, v, len) == 0));
}

static cl_status_t client_open(cl_oscore_ctx_t *client, cl_oscore_req_t *creq, const uint8_t *msg,
                               size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t *copy = fz_dup(msg, len);
    cl_status_t st = cl_oscore_unprotect_response(client, creq, copy, len, out, out_size, out_len);
    free(copy);
    return st;
}

/* ------------------------------------------------------------------ */
/* Raw datagrams                                                       */
/* ------------------------------------------------------------------ */

static void run_raw(const uint8_t *data, size_t size)
{
    size_t out_size = 2 * size + 256, out_len;
    uint8_t *out = fz_alloc(out_size);
    cl_coap_msg_t m;
    cl_oscore_option_t o;

    for (size_t b = 0; b < N_BIND; b++) {
        cl_oscore_ctx_t *client = &g_st.pair[PAIR_OF[b]].client;
        cl_oscore_req_t creq = g_st.creq[b], model = creq;
        cl_status_t st = client_open(client, &creq, data, size, out, out_size, &out_len);
        FZ_CHECK(st == CL_OK || st == CL_ERR_BAD_INPUT || st == CL_ERR_AUTH ||
                 st == CL_ERR_NOT_FOUND || st == CL_ERR_LIMIT);
        if (st != CL_OK) {
            FZ_CHECK(fz_same_req(&creq, &model));
            continue;
        }
        FZ_CHECK(cl_coap_parse(&m, out, out_len) == CL_OK);
        FZ_CHECK(fz_is_response(m.code));
        FZ_CHECK(cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) == NULL);
        FZ_CHECK(fz_get_oscore(data, size, &o));
        bool has_piv = o.piv_len > 0,
             inner_observe = cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE) != NULL;
        uint64_t seq = fz_piv_value(&o);
        FZ_CHECK(fz_model_response(&model, has_piv, seq, inner_observe) == CL_OK);
        FZ_CHECK(fz_same_req(&creq, &model));
        if (inner_observe && has_piv) {
            uint8_t ov[4];
            size_t ol = cl_coap_uint_encode(ov, (uint32_t)(seq & 0xffffff));
            observe_values_are(&m, ov, ol);
        }
        /* The same datagram again. */
        cl_status_t expect = fz_model_response(&model, has_piv, seq, inner_observe);
        st = client_open(client, &creq, data, size, out, out_size, &out_len);
        FZ_CHECK(st == expect && fz_same_req(&creq, &model));
    }
    free(out);
}

/* ------------------------------------------------------------------ */
/* Structured round trip                                               */
/* ------------------------------------------------------------------ */

/* plain with an Observe option of value v added (when it has none), into out. */
static size_t add_observe(const uint8_t *plain, size_t plain_len, uint32_t v, uint8_t *out,
                          size_t out_size)
{
    cl_coap_msg_t m;
    uint8_t ov[4];
    size_t n;
    if (cl_coap_parse(&m, plain, plain_len) != CL_OK ||
        cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE) != NULL || m.n_options == CL_COAP_MAX_OPTIONS)
        return 0;
    size_t ol = cl_coap_uint_encode(ov, v);
    FZ_CHECK(cl_coap_msg_add_option(&m, CL_COAP_OPT_OBSERVE, ov, ol) == CL_OK);
    cl_coap_sort_options(&m);
    FZ_CHECK(cl_coap_serialize(&m, out, out_size, &n) == CL_OK);
    return n;
}

/*
 * The server protects plain for binding (sreq, creq) of pair p, with the
 * checks of its result; returns the status. *has_piv / *seq describe the
 * Partial IV it used.
 */
static cl_status_t protect_checked(fz_pair_t *p, cl_oscore_req_t *sreq,
                                   const cl_oscore_resp_opts_t *opts, const uint8_t *plain,
                                   size_t plain_len, uint8_t *prot, size_t prot_size,
                                   size_t *prot_len, bool *has_piv, uint64_t *seq)
{
    cl_coap_msg_t pm, om;
    cl_status_t ps = cl_coap_parse(&pm, plain, plain_len), expect;
    cl_oscore_req_t before = *sreq;
    uint64_t ssn = p->server.ssn;
    bool new_piv = (opts != NULL && opts->new_piv) || sreq->nonce_reused;

    FZ_CHECK(ps == CL_OK || ps == CL_ERR_LIMIT);
    if (sreq->piv_len == 0 || sreq->piv_len > 5 || sreq->kid_len > CL_OSCORE_MAX_ID)
        expect = CL_ERR_INVALID_ARG;
    else if (ps == CL_ERR_LIMIT)
        expect = CL_ERR_LIMIT;
    else if (!fz_is_response(pm.code) || cl_coap_msg_get(&pm, CL_COAP_OPT_OSCORE) != NULL)
        expect = CL_ERR_INVALID_ARG; /* refused before a sequence number is taken */
    else if ((size_t)sreq->kid_len + 6 > p->server.nonce_len)
        expect = CL_ERR_INVALID_ARG; /* the kid must fit the nonce's ID field */
    else if (new_piv && ssn > CL_OSCORE_SSN_MAX)
        expect = CL_ERR_SEQ_EXHAUSTED;
    else
        expect = CL_OK;
    cl_status_t st = cl_oscore_protect_response(&p->server, sreq, opts, plain, plain_len, prot,
                                                prot_size, prot_len);
    FZ_CHECK(st == expect);
    if (st != CL_OK) {
        FZ_CHECK(p->server.ssn == ssn && fz_same_req(sreq, &before));
        return st;
    }
    FZ_CHECK(p->server.ssn == ssn + new_piv);
    /* The request nonce is marked used once a response went out without Partial IV. */
    FZ_CHECK(sreq->nonce_reused == (before.nonce_reused || !new_piv));
    *has_piv = new_piv;
    *seq = new_piv ? ssn : 0;

    size_t n_outer = fz_count(&pm, fz_is_outer) + 1;
    if (n_outer > CL_COAP_MAX_OPTIONS) {
        FZ_CHECK(cl_coap_parse(&om, prot, *prot_len) == CL_ERR_LIMIT);
        return st;
    }
    FZ_CHECK(cl_coap_parse(&om, prot, *prot_len) == CL_OK);
    FZ_CHECK(om.n_options == n_outer);
    bool observe = cl_coap_msg_get(&pm, CL_COAP_OPT_OBSERVE) != NULL;
    FZ_CHECK(om.code == (observe ? CL_COAP_CONTENT : CL_COAP_CHANGED));
    FZ_CHECK(om.type == pm.type && om.mid == pm.mid && om.tkl == pm.tkl);
    FZ_CHECK(om.payload_len >= 1u + p->server.tag_len);
    cl_oscore_option_t o;
    uint8_t piv[5];
    size_t piv_len = new_piv ? fz_piv(ssn, piv) : 0;
    FZ_CHECK(fz_get_oscore(prot, *prot_len, &o));
    FZ_CHECK(o.piv_len == piv_len && (piv_len == 0 || memcmp(o.piv, piv, piv_len) == 0));
    FZ_CHECK(!o.has_kid);
    bool kc = opts != NULL && opts->kid_context != NULL;
    FZ_CHECK(o.has_kid_context == kc);
    if (kc)
        FZ_CHECK(o.kid_context_len == opts->kid_context_len &&
                 (o.kid_context_len == 0 ||
                  memcmp(o.kid_context, opts->kid_context, o.kid_context_len) == 0));
    return st;
}

static void run_structured(uint8_t b0, const uint8_t *data, size_t size, bool any_binding)
{
    fz_rd_t r = {data, size};
    size_t bi = b0 & 3;
    fz_pair_t *p = &g_st.pair[PAIR_OF[bi]];
    cl_oscore_req_t sreq = g_st.sreq[bi], creq = g_st.creq[bi];
    uint8_t kidctx[16] = {0};
    cl_oscore_resp_opts_t opts = {.new_piv = (b0 & 4) != 0};

    if (any_binding) {
        /* The same binding on both ends, from the input. */
        memset(&sreq, 0, sizeof sreq);
        sreq.kid_len = fz_u8(&r) % (CL_OSCORE_MAX_ID + 1);
        fz_copy(&r, sreq.kid, sreq.kid_len);
        sreq.piv_len = fz_u8(&r) % 6;
        fz_copy(&r, sreq.piv, sreq.piv_len);
        sreq.observe = (b0 & 0x08) != 0;
        creq = sreq;
    }
    p->server.ssn = fz_ssn(&r, fz_u8(&r));
    uint32_t obs = (uint32_t)fz_be(&r, 3);
    if (b0 & 0x20) {
        size_t kl = fz_u8(&r) % 17;
        fz_copy(&r, kidctx, kl);
        opts.kid_context = kidctx;
        opts.kid_context_len = kl;
    }
    bool mutate = (b0 & 0x10) != 0;
    size_t pos = (size_t)fz_be(&r, 2);
    uint8_t x = fz_u8(&r);
    if (x == 0)
        x = 0x80;

    size_t plain_size = FZ_PLAIN_SIZE(r.n) + 8, plain_len;
    uint8_t *plain = fz_alloc(plain_size), *tmp = fz_alloc(plain_size);
    plain_len = fz_plain(false, r.p, r.n, plain, plain_size);
    if (!any_binding && (b0 & 0x08) && plain_len > 0) {
        size_t n = add_observe(plain, plain_len, obs, tmp, plain_size);
        if (n > 0) {
            memcpy(plain, tmp, n);
            plain_len = n;
        }
    }
    size_t prot_size = 2 * plain_len + 128, out_size = 2 * plain_len + 256, prot_len = 0,
           out_len = 0;
    uint8_t *prot = fz_alloc(prot_size), *out = fz_alloc(out_size), *expect = fz_alloc(out_size);
    bool has_piv = false;
    uint64_t seq = 0;
    cl_coap_msg_t pm, rm, em;

    if (plain_len == 0 || protect_checked(p, &sreq, &opts, plain, plain_len, prot, prot_size,
                                          &prot_len, &has_piv, &seq) != CL_OK)
        goto done;
    FZ_CHECK(cl_coap_parse(&pm, plain, plain_len) == CL_OK);
    bool limit = fz_count(&pm, fz_is_outer) + 1 > CL_COAP_MAX_OPTIONS;
    bool observe = cl_coap_msg_get(&pm, CL_COAP_OPT_OBSERVE) != NULL;
    bool notification = sreq.observe && observe;
    size_t exp_len =
        fz_expected_response(plain, plain_len, notification, has_piv, seq, expect, out_size);
    FZ_CHECK(cl_coap_parse(&em, expect, exp_len) == CL_OK);

    if (mutate) {
        uint8_t *mut = fz_dup(prot, prot_len);
        mut[pos % prot_len] ^= x;
        cl_oscore_req_t before = creq;
        cl_oscore_option_t mo;
        bool mo_ok = fz_get_oscore(mut, prot_len, &mo);
        cl_status_t st =
            cl_oscore_unprotect_response(&p->client, &creq, mut, prot_len, out, out_size, &out_len);
        FZ_CHECK(st == CL_OK || st == CL_ERR_BAD_INPUT || st == CL_ERR_AUTH ||
                 st == CL_ERR_NOT_FOUND || st == CL_ERR_LIMIT || st == CL_ERR_REPLAY);
        if (st == CL_OK) {
            /* Only unprotected outer bytes changed: same protected content and Partial IV. */
            FZ_CHECK(mo_ok && (mo.piv_len > 0) == has_piv && fz_piv_value(&mo) == seq);
            FZ_CHECK(cl_coap_parse(&rm, out, out_len) == CL_OK);
            FZ_CHECK(fz_same_inner(&rm, &em));
            FZ_CHECK(fz_model_response(&before, has_piv, seq, observe) == CL_OK);
        }
        FZ_CHECK(fz_same_req(&creq, &before));
        free(mut);
    }

    /*
     * Too small an output buffer: refused after decryption (unless the model
     * refuses earlier), nothing written, the in-place plaintext wiped, and
     * the request state untouched.
     */
    if (!mutate && pos != 0 && !limit) {
        cl_oscore_req_t model = creq, before = creq;
        cl_status_t want = fz_model_response(&model, has_piv, seq, observe);
        size_t small = (pos >> 1) % exp_len;
        uint8_t *copy = fz_dup(prot, prot_len), *sout = fz_alloc(small);
        cl_coap_msg_t om;
        memset(sout, 0xa5, small);
        cl_status_t st =
            cl_oscore_unprotect_response(&p->client, &creq, copy, prot_len, sout, small, &out_len);
        FZ_CHECK(st == (want == CL_OK ? CL_ERR_BUFFER_TOO_SMALL : want));
        FZ_CHECK(fz_same_req(&creq, &before));
        for (size_t i = 0; i < small; i++)
            FZ_CHECK(sout[i] == 0xa5);
        FZ_CHECK(cl_coap_parse(&om, prot, prot_len) == CL_OK);
        size_t off = (size_t)(om.payload - prot);
        if (st == CL_ERR_BUFFER_TOO_SMALL)
            for (size_t i = off; i < off + om.payload_len - p->client.tag_len; i++)
                FZ_CHECK(copy[i] == 0);
        free(copy);
        free(sout);
    }

    /* The original, then once more: the model's verdicts. */
    for (int k = 0; k < 2; k++) {
        cl_oscore_req_t model = creq;
        cl_status_t want = limit ? CL_ERR_LIMIT : fz_model_response(&model, has_piv, seq, observe);
        cl_status_t st = client_open(&p->client, &creq, prot, prot_len, out, out_size, &out_len);
        FZ_CHECK(st == want);
        FZ_CHECK(fz_same_req(&creq, &model));
        if (st == CL_OK)
            FZ_CHECK(out_len == exp_len && memcmp(out, expect, exp_len) == 0);
    }

    /*
     * Too small a protect buffer: refused, a Partial IV taken for it is
     * spent, the request nonce is not marked used, and nothing of the
     * plaintext left where it would have been encrypted (see the request
     * harness: the same call with room, from the saved state, shows where).
     */
    if (!mutate && pos != 0 && !limit) {
        size_t small = pos % prot_len, n;
        uint8_t *sprot = fz_alloc(small), *full = fz_alloc(prot_size);
        uint64_t ssn = p->server.ssn;
        cl_oscore_ctx_t saved = p->server;
        cl_oscore_req_t before = sreq;
        bool new_piv = opts.new_piv || sreq.nonce_reused;
        memset(sprot, 0xa5, small);
        cl_status_t st = cl_oscore_protect_response(&p->server, &sreq, &opts, plain, plain_len,
                                                    sprot, small, &n);
        FZ_CHECK(fz_same_req(&sreq, &before));
        if (new_piv && ssn > CL_OSCORE_SSN_MAX) {
            FZ_CHECK(st == CL_ERR_SEQ_EXHAUSTED && p->server.ssn == ssn);
        } else {
            FZ_CHECK(st == CL_ERR_BUFFER_TOO_SMALL && p->server.ssn == ssn + new_piv);
            p->server = saved;
            FZ_CHECK(cl_oscore_protect_response(&p->server, &sreq, &opts, plain, plain_len, full,
                                                prot_size, &n) == CL_OK);
            cl_coap_msg_t fm;
            FZ_CHECK(cl_coap_parse(&fm, full, n) == CL_OK);
            for (size_t i = (size_t)(fm.payload - full); i < small; i++)
                FZ_CHECK(sprot[i] == 0 || sprot[i] == 0xa5);
        }
        free(sprot);
        free(full);
    }
done:
    free(plain);
    free(tmp);
    free(prot);
    free(out);
    free(expect);
}

/* ------------------------------------------------------------------ */
/* Notification sequences                                              */
/* ------------------------------------------------------------------ */

#define SEQ_MSGS 8
#define SEQ_DELIVERIES 24

static void run_notifications(uint8_t b0, const uint8_t *data, size_t size)
{
    fz_rd_t r = {data, size};
    size_t bi = (b0 & 1) ? R_B_OBS : R_A_OBS;
    fz_pair_t *p = &g_st.pair[PAIR_OF[bi]];
    cl_oscore_req_t sreq = g_st.sreq[bi], creq = g_st.creq[bi];
    uint8_t prot[SEQ_MSGS][96], expect[SEQ_MSGS][64], plain[64], out[96];
    size_t prot_len[SEQ_MSGS], exp_len[SEQ_MSGS], plain_len, out_len;
    bool has_piv[SEQ_MSGS], observe[SEQ_MSGS];
    uint64_t seq[SEQ_MSGS];

    uint64_t ssn = fz_ssn(&r, (uint8_t)(b0 >> 1));
    if (ssn > CL_OSCORE_SSN_MAX - 20000)
        ssn = CL_OSCORE_SSN_MAX - 20000 + (ssn & 0xff);
    p->server.ssn = ssn;
    size_t n = 1 + fz_u8(&r) % SEQ_MSGS;
    for (size_t i = 0; i < n; i++) {
        uint8_t f = fz_u8(&r);
        if (f & 0x80)
            p->server.ssn += (f >> 1) & 0x3f;
        observe[i] = (f & 0x40) == 0;
        cl_coap_builder_t b;
        uint8_t tok = 0xa1, pl[2] = {'n', (uint8_t)('0' + i)};
        cl_coap_build_init(&b, plain, sizeof plain, (f & 2) ? CL_COAP_CON : CL_COAP_ACK,
                           CL_COAP_CONTENT, (uint16_t)(0x100 + i), &tok, 1);
        if (observe[i])
            (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, (uint32_t)(i + 2));
        (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_TEXT);
        (void)cl_coap_build_payload(&b, pl, sizeof pl);
        FZ_CHECK(cl_coap_build_finish(&b, &plain_len) == CL_OK);
        cl_oscore_resp_opts_t opts = {.new_piv = (f & 1) != 0};
        FZ_CHECK(protect_checked(p, &sreq, &opts, plain, plain_len, prot[i], sizeof prot[i],
                                 &prot_len[i], &has_piv[i], &seq[i]) == CL_OK);
        exp_len[i] = fz_expected_response(plain, plain_len, observe[i], has_piv[i], seq[i],
                                          expect[i], sizeof expect[i]);
    }
    for (size_t k = 0; k < SEQ_DELIVERIES && r.n > 0; k++) {
        size_t i = fz_u8(&r) % n;
        cl_oscore_req_t model = creq;
        cl_status_t want = fz_model_response(&model, has_piv[i], seq[i], observe[i]);
        cl_status_t st =
            client_open(&p->client, &creq, prot[i], prot_len[i], out, sizeof out, &out_len);
        FZ_CHECK(st == want && fz_same_req(&creq, &model));
        if (st == CL_OK)
            FZ_CHECK(out_len == exp_len[i] && memcmp(out, expect[i], out_len) == 0);
    }
}

/* ------------------------------------------------------------------ */
/* Authentic responses with arbitrary plaintext                        */
/* ------------------------------------------------------------------ */

/*
 * The server's keys encrypt the rest of the input as the plaintext of a
 * response for one of the bindings, with or without its own Partial IV (and
 * optionally its kid): what an authenticated but buggy or hostile server can
 * send. The client must refuse exactly the plaintexts that are not a
 * response (empty, unparsable, not a response code, an inner OSCORE option,
 * Observe to a non-Observe request) and otherwise return the outer header
 * with the inner code, options and payload - a notification's Observe value
 * replaced by the low 3 bytes of the Partial IV, or empty without one - and
 * move the request state as the model says; a second delivery gets the
 * model's verdict.
 */
static void run_inner(uint8_t b0, const uint8_t *data, size_t size)
{
    fz_rd_t r = {data, size};
    size_t bi = (size_t)((b0 & 1) | ((b0 >> 3) & 2));
    fz_pair_t *p = &g_st.pair[PAIR_OF[bi]];
    const cl_oscore_ctx_t *sv = &p->server;
    cl_oscore_req_t sreq = g_st.sreq[bi], creq = g_st.creq[bi];
    bool has_piv = (b0 & 2) != 0;
    uint8_t code = (b0 & 8) ? CL_COAP_CONTENT : CL_COAP_CHANGED, tok = 0xa1;
    uint8_t piv[5], nonce[CL_AEAD_MAX_NONCE], aad[64], optval[16];
    size_t piv_len = 0, aad_len, opt_len, ct_len, msg_len, out_len;
    uint64_t seq = 0;

    if (has_piv) {
        seq = fz_ssn(&r, fz_u8(&r));
        if (seq > CL_OSCORE_SSN_MAX)
            seq = CL_OSCORE_SSN_MAX;
        piv_len = fz_piv(seq, piv);
        fz_nonce(sv, sv->sender_id, sv->sender_id_len, piv, piv_len, nonce);
    } else {
        fz_nonce(sv, sreq.kid, sreq.kid_len, sreq.piv, sreq.piv_len, nonce);
    }
    cl_oscore_option_t o = {.piv = piv, .piv_len = piv_len};
    if (b0 & 4) {
        o.kid = sv->sender_id;
        o.kid_len = sv->sender_id_len;
        o.has_kid = true;
    }
    FZ_CHECK(cl_oscore_option_encode(&o, optval, sizeof optval, &opt_len) == CL_OK);
    aad_len = fz_aad(sv->alg, sreq.kid, sreq.kid_len, sreq.piv, sreq.piv_len, aad);
    uint8_t *ct = fz_alloc(r.n + CL_AEAD_MAX_TAG);
    FZ_CHECK(cl_aead_encrypt(sv->crypto, sv->sender_key, nonce, sv->nonce_len, aad, aad_len, r.p,
                             r.n, ct, r.n + CL_AEAD_MAX_TAG, &ct_len) == CL_OK);
    size_t msg_size = ct_len + 32, out_size = r.n + 128;
    uint8_t *msg = fz_alloc(msg_size), *out = fz_alloc(out_size), *expect = fz_alloc(out_size);
    cl_coap_builder_t b;
    cl_coap_build_init(&b, msg, msg_size, CL_COAP_ACK, code, 0x3333, &tok, 1);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, optval, opt_len);
    (void)cl_coap_build_payload(&b, ct, ct_len);
    FZ_CHECK(cl_coap_build_finish(&b, &msg_len) == CL_OK);

    cl_coap_msg_t inner;
    cl_status_t inner_st = fz_inner(r.p, r.n, &inner);
    if (inner_st == CL_OK && !fz_is_response(inner.code))
        inner_st = CL_ERR_BAD_INPUT;
    bool inner_observe = inner_st == CL_OK && cl_coap_msg_get(&inner, CL_COAP_OPT_OBSERVE) != NULL;
    size_t exp_len = 0;
    if (inner_st == CL_OK) {
        cl_coap_msg_t m = inner;
        uint8_t ov[4];
        size_t ol = cl_coap_uint_encode(ov, (uint32_t)(seq & 0xffffff));
        m.type = CL_COAP_ACK;
        m.mid = 0x3333;
        m.tkl = 1;
        m.token = &tok;
        /* Notification order: the Partial IV's low 3 bytes, none = oldest (empty). */
        if (!has_piv)
            ol = 0;
        for (size_t i = 0; i < m.n_options; i++) {
            if (m.options[i].number == CL_COAP_OPT_OBSERVE) {
                m.options[i].value = ol ? ov : NULL;
                m.options[i].len = (uint16_t)ol;
            }
        }
        FZ_CHECK(cl_coap_serialize(&m, expect, out_size, &exp_len) == CL_OK);
    }
    for (int k = 0; k < 2; k++) {
        cl_oscore_req_t model = creq;
        /* Replay checks come before decryption, the plaintext checks after it. */
        cl_status_t want = fz_model_response(&model, has_piv, seq, inner_observe);
        if (want != CL_ERR_REPLAY && inner_st != CL_OK) {
            want = inner_st;
            model = creq;
        }
        cl_status_t st = client_open(&p->client, &creq, msg, msg_len, out, out_size, &out_len);
        FZ_CHECK(st == want && fz_same_req(&creq, &model));
        if (st == CL_OK)
            FZ_CHECK(out_len == exp_len && memcmp(out, expect, exp_len) == 0);
    }
    free(ct);
    free(msg);
    free(out);
    free(expect);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    g_st = g_init;
    fz_check_option_codec(data, size);
    fz_check_http_header(data, size);
    if (size == 0)
        return 0;
    switch (data[0] >> 6) {
    case 1: run_raw(data, size); break;
    case 0: run_structured(data[0], data + 1, size - 1, false); break;
    case 2:
        if (data[0] & 0x20)
            run_inner(data[0], data + 1, size - 1);
        else
            run_notifications(data[0], data + 1, size - 1);
        break;
    default: run_structured(data[0], data + 1, size - 1, true); break;
    }
    return 0;
}
