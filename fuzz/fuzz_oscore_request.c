/*
 * fuzz_oscore_request.c - libFuzzer harness for the OSCORE server side:
 * cl_oscore_unprotect_request and what a server does with its result
 * (lib/oscore.c).
 *
 * Six fixed client/server context pairs (oscore_fuzz_common.h) are created
 * once: RFC 8613 C.1, C.2, C.3 (ID Context), and ours: A (no ID Context), B
 * (ID Context as kid context, AES-GCM, empty server ID, window 64) and E
 * (echo_on_boot, 16-byte tag). Every input starts from their pristine state
 * (the contexts are copied back from a snapshot; key handles stay valid), so
 * runs are reproducible. The first byte picks the mode:
 *
 *  01xxxxxx  raw: the input is a datagram for the server (so an OSCORE request
 *            as captured, e.g. the RFC C.4-C.6 messages, reaches decryption).
 *            CL_OK: the output must parse as a request without OSCORE option,
 *            and a response protected with the returned cl_oscore_req_t must
 *            verify at the matching client; CL_ERR_ECHO_REQUIRED: the Echo
 *            response must verify at the client and carry the stored
 *            challenge; other errors: cl_oscore_build_error's response must
 *            parse and echo type / message id / token.
 *  00xxxxxx  structured round trip: the rest is a plain request (or bytes
 *            forced into one), protected by the client of pair A, B, C.3 or
 *            of a pair derived from input bytes, with an input-chosen Sender
 *            Sequence Number (up to exhaustion); optionally one byte of the
 *            protected message is XORed. A mutated message must fail or
 *            decrypt to the same code, non-Class-U options and payload (only
 *            outer, unprotected bytes may change), and a failure must leave
 *            the replay state untouched. The unmutated message must then be
 *            accepted and give exactly the plain bytes back (or be a replay
 *            when the mutated copy was accepted), and a second delivery is a
 *            replay.
 *  10xxxxxx  B.1.2 Echo flow on pair E: first request -> ECHO_REQUIRED ->
 *            Echo response verified by the client -> request with that Echo
 *            accepted (exact round trip) -> the first request is a replay.
 *  11xxxxxx  replay window: up to 8 requests with input-chosen sequence
 *            number gaps, delivered in an input-chosen order (duplicates
 *            allowed) against a reference sliding-window model.
 *
 * Every input is also fed to cl_oscore_option_decode; when it decodes,
 * cl_oscore_option_encode must reproduce it exactly. Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oscore_fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
    P_RFC1 = FZ_P_RFC1,
    P_RFC2 = FZ_P_RFC2,
    P_RFC3 = FZ_P_RFC3,
    P_A = FZ_P_A,
    P_B = FZ_P_B,
    P_E = FZ_P_E,
    N_PAIRS = FZ_N_SERVERS
};
#define SPECS FZ_SERVER_SPECS
static fz_pair_t g_init[N_PAIRS]; /* pristine, never used directly */
static fz_pair_t g_work[N_PAIRS]; /* reset from g_init for every input */
static cl_oscore_ctx_t *g_srv[N_PAIRS];
static cl_oscore_ctx_list_t g_list;

static void setup(void)
{
    static bool ready;
    if (ready)
        return;
    const cl_crypto_t *c = fz_provider();
    for (size_t i = 0; i < N_PAIRS; i++) {
        FZ_CHECK(fz_pair_init(&g_init[i], c, SPECS[i]) == CL_OK);
        g_srv[i] = &g_work[i].server;
    }
    g_list.ctx = g_srv;
    g_list.n = N_PAIRS;
    ready = true;
}

static fz_pair_t *pair_of(const cl_oscore_ctx_t *ctx)
{
    for (size_t i = 0; i < N_PAIRS; i++)
        if (ctx == &g_work[i].server)
            return &g_work[i];
    return NULL;
}

/* The replay-relevant state of a server context. */
static bool same_rw(const cl_oscore_ctx_t *a, const cl_oscore_ctx_t *b)
{
    return a->rw_top == b->rw_top && a->rw_bits == b->rw_bits && a->flags == b->flags &&
           a->ssn == b->ssn && memcmp(a->echo, b->echo, sizeof a->echo) == 0;
}

static bool kid_is(const cl_oscore_req_t *r, const uint8_t *id, size_t len)
{
    return r->kid_len == len && (len == 0 || memcmp(r->kid, id, len) == 0);
}

/* ------------------------------------------------------------------ */
/* What a server does after unprotect                                  */
/* ------------------------------------------------------------------ */

/*
 * Answers the accepted plain request with a 2.05 (an Observe notification
 * when the request registered), protected with the server's req, and checks
 * that the pair's client, holding the same binding, gets it back exactly.
 */
static void answer(fz_pair_t *p, const cl_oscore_req_t *sreq0, const uint8_t *plain_req,
                   size_t plain_len, bool new_piv)
{
    cl_coap_msg_t m;
    cl_coap_builder_t b;
    uint8_t resp[64], prot[160], back[160], expect[160];
    size_t resp_len, prot_len, back_len, exp_len;

    FZ_CHECK(cl_coap_parse(&m, plain_req, plain_len) == CL_OK);
    cl_coap_build_init(&b, resp, sizeof resp, m.type == CL_COAP_CON ? CL_COAP_ACK : CL_COAP_NON,
                       CL_COAP_CONTENT, m.mid, m.token, m.tkl);
    if (sreq0->observe)
        (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, 9);
    (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_TEXT);
    (void)cl_coap_build_payload(&b, (const uint8_t *)"fuzz", 4);
    FZ_CHECK(cl_coap_build_finish(&b, &resp_len) == CL_OK);

    cl_oscore_req_t sreq = *sreq0, creq;
    memset(&creq, 0, sizeof creq);
    memcpy(creq.kid, sreq0->kid, sreq0->kid_len);
    creq.kid_len = sreq0->kid_len;
    memcpy(creq.piv, sreq0->piv, sreq0->piv_len);
    creq.piv_len = sreq0->piv_len;
    creq.observe = sreq0->observe;

    uint64_t seq = p->server.ssn;
    cl_oscore_resp_opts_t opts = {.new_piv = new_piv};
    cl_status_t st = cl_oscore_protect_response(&p->server, &sreq, &opts, resp, resp_len, prot,
                                                sizeof prot, &prot_len);
    FZ_CHECK(st == CL_OK);
    FZ_CHECK(sreq.nonce_reused == !new_piv);
    FZ_CHECK(cl_coap_parse(&m, prot, prot_len) == CL_OK);
    FZ_CHECK(m.code == (sreq0->observe ? CL_COAP_CONTENT : CL_COAP_CHANGED));
    st = cl_oscore_unprotect_response(&p->client, &creq, prot, prot_len, back, sizeof back,
                                      &back_len);
    FZ_CHECK(st == CL_OK);
    exp_len =
        fz_expected_response(resp, resp_len, sreq0->observe, new_piv, seq, expect, sizeof expect);
    FZ_CHECK(back_len == exp_len && memcmp(back, expect, exp_len) == 0);
}

/* B.1.2: the Echo response to a request the server could not yet accept. */
static void answer_echo(fz_pair_t *p, cl_oscore_req_t *sreq, const uint8_t *request,
                        size_t request_len, uint8_t echo_out[CL_OSCORE_ECHO_LEN])
{
    uint8_t prot[128], back[128];
    size_t prot_len, back_len;
    cl_coap_msg_t m;

    cl_status_t st = cl_oscore_build_echo_response(&p->server, sreq, request, request_len, 0x77,
                                                   prot, sizeof prot, &prot_len);
    uint8_t type = (uint8_t)((request[0] >> 4) & 3);
    FZ_CHECK(st == ((type == CL_COAP_CON || type == CL_COAP_NON) ? CL_OK : CL_ERR_BAD_INPUT));
    if (st != CL_OK)
        return;
    FZ_CHECK(p->server.flags & CL_OSCORE_F_ECHO_SENT);
    cl_oscore_req_t creq;
    memset(&creq, 0, sizeof creq);
    memcpy(creq.kid, sreq->kid, sreq->kid_len);
    creq.kid_len = sreq->kid_len;
    memcpy(creq.piv, sreq->piv, sreq->piv_len);
    creq.piv_len = sreq->piv_len;
    st = cl_oscore_unprotect_response(&p->client, &creq, prot, prot_len, back, sizeof back,
                                      &back_len);
    FZ_CHECK(st == CL_OK);
    FZ_CHECK(cl_coap_parse(&m, back, back_len) == CL_OK);
    FZ_CHECK(m.code == CL_COAP_UNAUTHORIZED && m.payload_len == 0);
    FZ_CHECK(m.type == (type == CL_COAP_CON ? CL_COAP_ACK : CL_COAP_NON));
    FZ_CHECK(m.mid == (type == CL_COAP_CON ? (uint16_t)(request[2] << 8 | request[3]) : 0x77));
    FZ_CHECK(m.tkl == (request[0] & 0x0f) &&
             (m.tkl == 0 || memcmp(m.token, request + 4, m.tkl) == 0));
    const cl_coap_option_t *echo = cl_coap_msg_get(&m, CL_COAP_OPT_ECHO);
    FZ_CHECK(echo != NULL && echo->len == CL_OSCORE_ECHO_LEN);
    FZ_CHECK(memcmp(echo->value, p->server.echo, CL_OSCORE_ECHO_LEN) == 0);
    if (echo_out != NULL)
        memcpy(echo_out, echo->value, CL_OSCORE_ECHO_LEN);
}

/* Section 8 error response: unprotected, echoes type / message id / token. */
static void answer_error(cl_status_t why, const uint8_t *request, size_t request_len)
{
    uint8_t out[128];
    size_t out_len;
    cl_coap_msg_t m;

    cl_status_t st =
        cl_oscore_build_error(why, request, request_len, 0x4242, out, sizeof out, &out_len);
    if (why == CL_ERR_LIMIT) {
        FZ_CHECK(st == CL_ERR_INVALID_ARG);
        return;
    }
    FZ_CHECK(st == CL_OK || st == CL_ERR_BAD_INPUT);
    if (st != CL_OK)
        return;
    FZ_CHECK(cl_coap_parse(&m, out, out_len) == CL_OK);
    uint8_t type = (uint8_t)((request[0] >> 4) & 3);
    FZ_CHECK(type == CL_COAP_CON || type == CL_COAP_NON);
    FZ_CHECK(m.type == (type == CL_COAP_CON ? CL_COAP_ACK : CL_COAP_NON));
    FZ_CHECK(m.mid == (type == CL_COAP_CON ? (uint16_t)(request[2] << 8 | request[3]) : 0x4242));
    FZ_CHECK(m.tkl == (request[0] & 0x0f) &&
             (m.tkl == 0 || memcmp(m.token, request + 4, m.tkl) == 0));
    FZ_CHECK(CL_COAP_CLASS(m.code) == 4 && m.payload_len > 0);
    const cl_coap_option_t *ma = cl_coap_msg_get(&m, CL_COAP_OPT_MAX_AGE);
    FZ_CHECK(ma != NULL && ma->len == 0);
    FZ_CHECK(cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) == NULL);
}

/* ------------------------------------------------------------------ */
/* Raw datagrams                                                       */
/* ------------------------------------------------------------------ */

static void run_raw(const uint8_t *data, size_t size)
{
    size_t out_size = 2 * size + 256, out_len = 0;
    uint8_t *msg = fz_dup(data, size), *out = fz_alloc(out_size);
    cl_oscore_ctx_t *ctx = NULL;
    cl_oscore_req_t sreq;
    cl_coap_msg_t m;

    cl_status_t st = cl_oscore_unprotect_request(cl_oscore_lookup_list, &g_list, msg, size, out,
                                                 out_size, &out_len, &ctx, &sreq);
    fz_pair_t *p = pair_of(ctx);
    FZ_CHECK(ctx == NULL || p != NULL);
    switch (st) {
    case CL_OK:
        FZ_CHECK(p != NULL);
        FZ_CHECK(cl_coap_parse(&m, out, out_len) == CL_OK);
        FZ_CHECK(fz_is_request(m.code));
        FZ_CHECK(cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) == NULL);
        FZ_CHECK(sreq.piv_len >= 1 && sreq.piv_len <= 5);
        FZ_CHECK(kid_is(&sreq, ctx->recipient_id, ctx->recipient_id_len));
        FZ_CHECK(ctx->flags & CL_OSCORE_F_RW_INIT);
        answer(p, &sreq, out, out_len, (size & 1) != 0);
        break;
    case CL_ERR_ECHO_REQUIRED:
        FZ_CHECK(p == &g_work[P_E]);
        answer_echo(p, &sreq, msg, size, NULL);
        break;
    case CL_ERR_AUTH:
    case CL_ERR_REPLAY:
        FZ_CHECK(p != NULL);
        answer_error(st, msg, size);
        break;
    case CL_ERR_NOT_FOUND:
        FZ_CHECK(ctx == NULL);
        answer_error(st, msg, size);
        break;
    case CL_ERR_BAD_INPUT:
    case CL_ERR_LIMIT: answer_error(st, msg, size); break;
    default: FZ_CHECK(!"unexpected status from cl_oscore_unprotect_request");
    }
    /* A failed request never changes the replay state. */
    if (st != CL_OK)
        for (size_t i = 0; i < N_PAIRS; i++)
            FZ_CHECK(g_work[i].server.rw_bits == 0 &&
                     !(g_work[i].server.flags & CL_OSCORE_F_RW_INIT));
    free(msg);
    free(out);
}

/* ------------------------------------------------------------------ */
/* Structured round trip                                               */
/* ------------------------------------------------------------------ */

/* B.1.1 hook of input-derived pairs: records the calls, fails on request. */
typedef struct persist_state {
    bool fail;
    uint8_t ahead; /* stored ceiling - first sequence number */
    unsigned calls;
    uint64_t last;
} persist_state_t;
static persist_state_t g_persist;

static cl_status_t persist_cb(void *arg, const cl_oscore_ctx_t *ctx, uint64_t ceiling)
{
    persist_state_t *ps = arg;
    (void)ctx;
    ps->calls++;
    ps->last = ceiling;
    return ps->fail ? CL_ERR_PERSIST : CL_OK;
}

/*
 * A pair from input bytes: algorithm, lengths, secrets, IDs, ID Context,
 * window; then optionally a B.1.1 persistence hook on the client (ok or
 * failing, with its K and how far the stored ceiling is ahead), and a B.2
 * re-derivation of both ends with a new ID Context (the client in place, the
 * server into a new context).
 */
static bool pair_from_input(fz_rd_t *r, fz_pair_t *p)
{
    static const cl_aead_alg_t algs[3] = {CL_AEAD_AES_CCM_16_64_128, CL_AEAD_AES_CCM_16_128_128,
                                          CL_AEAD_A128GCM};
    uint8_t ms[32] = {0}, salt[16] = {0}, sid[7] = {0}, rid[7] = {0}, idctx[16] = {0};
    fz_spec_t s;

    memset(&s, 0, sizeof s);
    uint8_t a = fz_u8(r);
    s.aead = algs[a % 3];
    s.send_kid_context = (a & 0x10) != 0;
    s.ms_len = 1 + fz_u8(r) % 32;
    s.salt_len = fz_u8(r) % 17;
    uint8_t ids = fz_u8(r);
    s.csid_len = ids & 7;
    s.ssid_len = (ids >> 3) & 7;
    s.idctx_len = fz_u8(r) % 17;
    s.window = fz_u8(r) % 65;
    fz_copy(r, ms, s.ms_len);
    fz_copy(r, salt, s.salt_len);
    fz_copy(r, sid, s.csid_len);
    fz_copy(r, rid, s.ssid_len);
    fz_copy(r, idctx, s.idctx_len);
    s.ms = ms;
    s.salt = s.salt_len ? salt : NULL;
    s.csid = sid;
    s.ssid = rid;
    s.idctx = (a & 0x20) ? idctx : NULL;
    cl_status_t st = fz_pair_init(p, fz_provider(), &s);
    /* Refused only for equal IDs or IDs too long for the nonce (GCM: 6 bytes). */
    size_t max_id = s.aead == CL_AEAD_A128GCM ? 6 : 7;
    bool bad = (s.csid_len == s.ssid_len && memcmp(sid, rid, s.csid_len) == 0) ||
               s.csid_len > max_id || s.ssid_len > max_id;
    FZ_CHECK(st == (bad ? CL_ERR_INVALID_ARG : CL_OK));
    if (st != CL_OK)
        return false;

    uint8_t pm = fz_u8(r);
    if (pm & 3) {
        memset(&g_persist, 0, sizeof g_persist);
        g_persist.fail = (pm & 3) == 2;
        p->client.persist = persist_cb;
        p->client.persist_arg = &g_persist;
        p->client.persist_k = (pm >> 2) & 0x0f;
        if (p->client.persist_k == 0)
            p->client.persist_k = CL_OSCORE_SEQ_PERSIST_K;
        g_persist.ahead = (pm >> 6) % 3;
    }
    uint8_t rd = fz_u8(r);
    if (rd & 1) {
        uint8_t nctx[16] = {0};
        size_t nl = (rd >> 1) % 17;
        fz_copy(r, nctx, nl);
        cl_oscore_ctx_t nsrv;
        FZ_CHECK(cl_oscore_ctx_rederive(&p->client, &p->client, nctx, nl) == CL_OK);
        FZ_CHECK(cl_oscore_ctx_rederive(&nsrv, &p->server, nctx, nl) == CL_OK);
        cl_oscore_ctx_free(&p->server);
        p->server = nsrv;
        FZ_CHECK(p->client.ssn == 0 && (p->client.flags & CL_OSCORE_F_HAS_IDCTX) &&
                 p->client.id_context_len == nl && memcmp(p->client.id_context, nctx, nl) == 0);
        FZ_CHECK(!(p->server.flags & CL_OSCORE_F_RW_INIT) && p->server.ssn == 0);
    }
    return true;
}

static cl_status_t server_open(cl_oscore_ctx_t *server, uint8_t *msg, size_t len, uint8_t *out,
                               size_t out_size, size_t *out_len, cl_oscore_req_t *sreq)
{
    cl_oscore_ctx_t *list[1] = {server}, *found = NULL;
    cl_oscore_ctx_list_t l = {list, 1};
    cl_status_t st = cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, msg, len, out, out_size,
                                                 out_len, &found, sreq);
    if (st == CL_OK || st == CL_ERR_AUTH || st == CL_ERR_REPLAY || st == CL_ERR_ECHO_REQUIRED)
        FZ_CHECK(found == server);
    return st;
}

/* Delivers a copy of msg[0..len) (the original stays intact for later deliveries). */
static cl_status_t deliver(cl_oscore_ctx_t *server, const uint8_t *msg, size_t len, uint8_t *out,
                           size_t out_size, size_t *out_len, cl_oscore_req_t *sreq)
{
    uint8_t *copy = fz_dup(msg, len);
    cl_status_t st = server_open(server, copy, len, out, out_size, out_len, sreq);
    free(copy);
    return st;
}

/* Percent-decodes src[0..len) into scratch at *used (RFC 7252 6.4 steps 8-9). */
static cl_status_t pct_decode(const uint8_t *src, size_t len, uint8_t *scratch, size_t size,
                              size_t *used)
{
    for (size_t i = 0; i < len; i++) {
        if (*used == size)
            return CL_ERR_LIMIT;
        uint8_t c = src[i];
        if (c == '%') {
            unsigned v = 0;
            if (i + 2 >= len)
                return CL_ERR_INVALID_ARG;
            for (size_t k = 1; k <= 2; k++) {
                uint8_t h = src[i + k];
                if (h >= '0' && h <= '9')
                    v = v << 4 | (unsigned)(h - '0');
                else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
                    v = v << 4 | (unsigned)((h | 0x20) - 'a' + 10);
                else
                    return CL_ERR_INVALID_ARG;
            }
            c = (uint8_t)v;
            i += 2;
        }
        scratch[(*used)++] = c;
    }
    return CL_OK;
}

/* Adds one option per `sep`-separated piece of v[from..to), percent-decoded. */
static cl_status_t add_pieces(cl_coap_msg_t *m, uint16_t number, const uint8_t *v, size_t from,
                              size_t to, uint8_t sep, uint8_t *scratch, size_t size, size_t *used)
{
    size_t start = from;
    for (size_t k = from; k <= to; k++) {
        if (k < to && v[k] != sep)
            continue;
        size_t at = *used;
        cl_status_t st = pct_decode(v + start, k - start, scratch, size, used);
        if (st != CL_OK)
            return st;
        if (m->n_options == CL_COAP_MAX_OPTIONS)
            return CL_ERR_LIMIT;
        m->options[m->n_options].number = number;
        m->options[m->n_options].len = (uint16_t)(*used - at);
        m->options[m->n_options].value = scratch + at;
        m->n_options++;
        start = k + 1;
    }
    return CL_OK;
}

#define URI_SCRATCH 1034 /* the library's bound on decoded Proxy-Uri path + query bytes */

/*
 * Section 4.1.3.3 as the library does it: the (last) Proxy-Uri of *m is cut
 * to "scheme://authority" (outer) and its path and query become Uri-Path
 * (none for "" or "/") and Uri-Query options (inner), percent-decoded into
 * scratch. Refused with Uri-Host/Port/Path/Query present, without "://"
 * after a non-empty scheme, with '#' or a bad percent-encoding
 * (INVALID_ARG); more than URI_SCRATCH decoded bytes or CL_COAP_MAX_OPTIONS
 * options is LIMIT. Note: for "...?" (empty query) the library adds one
 * empty Uri-Query, where RFC 7252 6.4 step 9 adds none.
 */
static cl_status_t split_proxy_uri(cl_coap_msg_t *m, uint8_t *scratch)
{
    cl_coap_option_t *pu = NULL;
    size_t used = 0, i;
    cl_status_t st;

    for (i = 0; i < m->n_options; i++)
        if (m->options[i].number == CL_COAP_OPT_PROXY_URI)
            pu = &m->options[i];
    if (pu == NULL)
        return CL_OK;
    for (i = 0; i < m->n_options; i++) {
        uint16_t n = m->options[i].number;
        if (n == CL_COAP_OPT_URI_PATH || n == CL_COAP_OPT_URI_QUERY || n == CL_COAP_OPT_URI_HOST ||
            n == CL_COAP_OPT_URI_PORT)
            return CL_ERR_INVALID_ARG;
    }
    const uint8_t *v = pu->value;
    size_t len = pu->len;
    bool found = false;
    for (i = 0; i + 3 <= len; i++)
        if (v[i] == ':' && v[i + 1] == '/' && v[i + 2] == '/') {
            found = true;
            break;
        }
    if (!found || i == 0 || memchr(v, '#', len) != NULL)
        return CL_ERR_INVALID_ARG;
    size_t auth_end = i + 3, path_end;
    while (auth_end < len && v[auth_end] != '/' && v[auth_end] != '?')
        auth_end++;
    for (path_end = auth_end; path_end < len && v[path_end] != '?'; path_end++)
        ;
    pu->len = (uint16_t)auth_end;
    if (path_end - auth_end > 1 &&
        (st = add_pieces(m, CL_COAP_OPT_URI_PATH, v, auth_end + 1, path_end, '/', scratch,
                         URI_SCRATCH, &used)) != CL_OK)
        return st;
    if (path_end + 1 < len && (st = add_pieces(m, CL_COAP_OPT_URI_QUERY, v, path_end + 1, len, '&',
                                           scratch, URI_SCRATCH, &used)) != CL_OK)
        return st;
    cl_coap_sort_options(m);
    return CL_OK;
}

/*
 * Protects plain with the pair's client, checking the status against the
 * expected one and the protected message; on success *expect receives what
 * the server must reconstruct (the plain bytes, or with the Proxy-Uri
 * decomposed). Status order as in the library: parse, request code,
 * Proxy-Uri split, the nested-OSCORE refusal, then the sequence number.
 */
static cl_status_t protect_checked(fz_pair_t *p, const uint8_t *plain, size_t plain_len,
                                   uint8_t *prot, size_t prot_size, size_t *prot_len,
                                   cl_oscore_req_t *creq, uint8_t *expect, size_t expect_size,
                                   size_t *expect_len)
{
    cl_coap_msg_t pm, em, om;
    uint8_t scratch[URI_SCRATCH];
    cl_status_t ps = cl_coap_parse(&pm, plain, plain_len), expect_st, split_st = CL_OK;
    uint64_t ssn = p->client.ssn;
    bool persist_due = p->client.persist != NULL && ssn >= p->client.ssn_ceiling;

    FZ_CHECK(ps == CL_OK || ps == CL_ERR_LIMIT);
    em = pm;
    if (ps == CL_OK && fz_is_request(pm.code))
        split_st = split_proxy_uri(&em, scratch);
    if (ps == CL_ERR_LIMIT) {
        expect_st = CL_ERR_LIMIT;
    } else if (!fz_is_request(pm.code)) {
        expect_st = CL_ERR_INVALID_ARG;
    } else if (split_st != CL_OK) {
        expect_st = split_st;
    } else if (cl_coap_msg_get(&pm, CL_COAP_OPT_OSCORE) != NULL) {
        expect_st = CL_ERR_INVALID_ARG; /* refused before a sequence number is taken */
    } else if (ssn > CL_OSCORE_SSN_MAX) {
        expect_st = CL_ERR_SEQ_EXHAUSTED;
    } else if (persist_due && g_persist.fail) {
        expect_st = CL_ERR_PERSIST;
    } else {
        expect_st = CL_OK;
    }
    unsigned calls = g_persist.calls;
    uint64_t ceiling = p->client.ssn_ceiling;
    cl_status_t st =
        cl_oscore_protect_request(&p->client, plain, plain_len, prot, prot_size, prot_len, creq);
    /* B.1.1: the hook runs (before the number is used) exactly when the stored ceiling is reached.
     */
    bool called = persist_due && (expect_st == CL_OK || expect_st == CL_ERR_PERSIST);
    FZ_CHECK(g_persist.calls == calls + called);
    if (called) {
        uint64_t want = ssn + p->client.persist_k;
        if (want > CL_OSCORE_SSN_MAX + 1)
            want = CL_OSCORE_SSN_MAX + 1;
        FZ_CHECK(g_persist.last == want);
        FZ_CHECK(p->client.ssn_ceiling == (g_persist.fail ? ceiling : want));
    } else {
        FZ_CHECK(p->client.ssn_ceiling == ceiling);
    }
    if (st != expect_st) {
        const char *f = "?";
        int l = 0;
#if defined(CL_DEBUG_ERRLOC)
        cl_error_location(&f, &l);
#endif
        fprintf(stderr, "protect_request: %s, expected %s (%s:%d)\n", cl_status_str(st),
                cl_status_str(expect_st), f, l);
    }
    FZ_CHECK(st == expect_st);
    if (st != CL_OK) {
        FZ_CHECK(p->client.ssn == ssn);
        return st;
    }
    FZ_CHECK(p->client.ssn == ssn + 1);
    FZ_CHECK(cl_coap_serialize(&em, expect, expect_size, expect_len) == CL_OK);
    uint8_t piv[5];
    size_t piv_len = fz_piv(ssn, piv);
    FZ_CHECK(creq->piv_len == piv_len && memcmp(creq->piv, piv, piv_len) == 0);
    FZ_CHECK(kid_is(creq, p->client.sender_id, p->client.sender_id_len));
    const cl_coap_option_t *obs = cl_coap_msg_get(&pm, CL_COAP_OPT_OBSERVE);
    uint32_t ov;
    FZ_CHECK(creq->observe == (obs != NULL && cl_coap_opt_uint(obs, &ov) == CL_OK && ov == 0));
    FZ_CHECK(!creq->nonce_reused && !creq->have_notif);

    /* The outer message: Class U, Observe and one OSCORE option; POST, or FETCH with Observe. */
    size_t n_outer = fz_count(&pm, fz_is_outer) + 1;
    if (n_outer > CL_COAP_MAX_OPTIONS) {
        FZ_CHECK(cl_coap_parse(&om, prot, *prot_len) == CL_ERR_LIMIT);
        return st;
    }
    FZ_CHECK(cl_coap_parse(&om, prot, *prot_len) == CL_OK);
    FZ_CHECK(om.n_options == n_outer);
    FZ_CHECK(om.code == (obs != NULL ? CL_COAP_FETCH : CL_COAP_POST));
    FZ_CHECK(om.type == pm.type && om.mid == pm.mid && om.tkl == pm.tkl);
    FZ_CHECK(fz_count(&om, fz_is_oscore_opt) == 1);
    FZ_CHECK(fz_count(&om, fz_is_observe_opt) == fz_count(&pm, fz_is_observe_opt));
    FZ_CHECK(om.payload_len >= 1u + p->client.tag_len);
    cl_oscore_option_t o;
    FZ_CHECK(fz_get_oscore(prot, *prot_len, &o));
    FZ_CHECK(o.piv_len == piv_len && memcmp(o.piv, piv, piv_len) == 0);
    FZ_CHECK(o.has_kid && o.kid_len == p->client.sender_id_len);
    FZ_CHECK(o.has_kid_context == ((p->client.flags & CL_OSCORE_F_SEND_IDCTX) != 0));
    return st;
}

static void run_structured(uint8_t b0, const uint8_t *data, size_t size)
{
    fz_rd_t r = {data, size};
    fz_pair_t own, *p;
    bool own_pair = false;

    switch (b0 & 3) {
    case 0: p = &g_work[P_A]; break;
    case 1: p = &g_work[P_B]; break;
    case 2: p = &g_work[P_RFC3]; break;
    default:
        if (!pair_from_input(&r, &own))
            return;
        p = &own;
        own_pair = true;
        break;
    }
    p->client.ssn = fz_ssn(&r, (uint8_t)(b0 >> 3));
    if (p->client.persist != NULL) /* the stored ceiling: reached now, or 1-2 numbers ahead */
        p->client.ssn_ceiling = p->client.ssn + g_persist.ahead;
    bool mutate = (b0 & 4) != 0;
    size_t pos = (size_t)fz_be(&r, 2);
    uint8_t x = fz_u8(&r);
    if (x == 0)
        x = 0x80;

    size_t plain_size = FZ_PLAIN_SIZE(r.n), plain_len;
    uint8_t *plain = fz_alloc(plain_size);
    plain_len = fz_plain(true, r.p, r.n, plain, plain_size);
    size_t prot_size = 2 * plain_len + 128, prot_len = 0;
    size_t out_size = 2 * plain_len + 256, out_len = 0;
    size_t exp_size = plain_len + 256, exp_len = 0;
    uint8_t *prot = fz_alloc(prot_size), *out = fz_alloc(out_size), *expect = fz_alloc(exp_size);
    cl_oscore_req_t creq, sreq;
    cl_coap_msg_t pm, em, rm;

    if (plain_len == 0 || protect_checked(p, plain, plain_len, prot, prot_size, &prot_len, &creq,
                                          expect, exp_size, &exp_len) != CL_OK)
        goto done;
    FZ_CHECK(cl_coap_parse(&pm, plain, plain_len) == CL_OK);
    FZ_CHECK(cl_coap_parse(&em, expect, exp_len) == CL_OK);
    bool limit = fz_count(&pm, fz_is_outer) + 1 > CL_COAP_MAX_OPTIONS;

    bool mutated_ok = false;
    if (mutate) {
        cl_oscore_ctx_t before = p->server;
        uint8_t *mut = fz_dup(prot, prot_len);
        mut[pos % prot_len] ^= x;
        cl_status_t st = server_open(&p->server, mut, prot_len, out, out_size, &out_len, &sreq);
        FZ_CHECK(st == CL_OK || st == CL_ERR_BAD_INPUT || st == CL_ERR_AUTH ||
                 st == CL_ERR_NOT_FOUND || st == CL_ERR_LIMIT);
        if (st == CL_OK) {
            /* Only unprotected outer bytes changed: same protected content. */
            FZ_CHECK(cl_coap_parse(&rm, out, out_len) == CL_OK);
            FZ_CHECK(fz_same_inner(&rm, &em));
            FZ_CHECK(fz_same_req(&sreq, &creq));
            mutated_ok = true;
        } else {
            FZ_CHECK(same_rw(&before, &p->server));
        }
        free(mut);
    }

    /*
     * Too small an output buffer: refused after decryption, nothing written,
     * the in-place plaintext wiped, and the replay state untouched.
     */
    if (!mutate && pos != 0 && !limit) {
        size_t small = (pos >> 1) % exp_len;
        uint8_t *copy = fz_dup(prot, prot_len), *sout = fz_alloc(small);
        cl_oscore_ctx_t before = p->server;
        cl_coap_msg_t om;
        memset(sout, 0xa5, small);
        FZ_CHECK(server_open(&p->server, copy, prot_len, sout, small, &out_len, &sreq) ==
                 CL_ERR_BUFFER_TOO_SMALL);
        FZ_CHECK(same_rw(&before, &p->server));
        for (size_t i = 0; i < small; i++)
            FZ_CHECK(sout[i] == 0xa5);
        FZ_CHECK(cl_coap_parse(&om, prot, prot_len) == CL_OK);
        size_t off = (size_t)(om.payload - prot);
        for (size_t i = off; i < off + om.payload_len - p->server.tag_len; i++)
            FZ_CHECK(copy[i] == 0);
        free(copy);
        free(sout);
    }

    cl_status_t st = deliver(&p->server, prot, prot_len, out, out_size, &out_len, &sreq);
    FZ_CHECK(st == (limit ? CL_ERR_LIMIT : mutated_ok ? CL_ERR_REPLAY : CL_OK));
    if (st == CL_OK) {
        FZ_CHECK(out_len == exp_len && memcmp(out, expect, exp_len) == 0);
        FZ_CHECK(fz_same_req(&sreq, &creq));
    }
    if (!limit) {
        FZ_CHECK(deliver(&p->server, prot, prot_len, out, out_size, &out_len, &sreq) ==
                 CL_ERR_REPLAY);
        FZ_CHECK(fz_same_binding(&sreq, &creq)); /* kid and PIV are set on a replay too */
        if (pm.type == CL_COAP_CON || pm.type == CL_COAP_NON)
            answer(p, &creq, plain, plain_len, (b0 & 0x20) != 0);
    }

    /*
     * Too small a protect buffer: refused (the sequence number is spent, as
     * for every failure after it was taken), and nothing of the plaintext
     * left where it would have been encrypted: redoing the call with room
     * from the saved context shows where that is; the short buffer holds only
     * wiped (0) or untouched (canary) bytes from there on.
     */
    if (!mutate && pos != 0 && p->client.persist == NULL && !limit) {
        size_t small = pos % prot_len, n;
        uint8_t *sprot = fz_alloc(small), *full = fz_alloc(prot_size);
        uint64_t ssn = p->client.ssn;
        cl_oscore_ctx_t saved = p->client;
        cl_oscore_req_t creq2;
        memset(sprot, 0xa5, small);
        st = cl_oscore_protect_request(&p->client, plain, plain_len, sprot, small, &n, &creq2);
        if (ssn > CL_OSCORE_SSN_MAX) {
            FZ_CHECK(st == CL_ERR_SEQ_EXHAUSTED && p->client.ssn == ssn);
        } else {
            FZ_CHECK(st == CL_ERR_BUFFER_TOO_SMALL && p->client.ssn == ssn + 1);
            p->client = saved;
            FZ_CHECK(cl_oscore_protect_request(&p->client, plain, plain_len, full, prot_size, &n,
                                               &creq2) == CL_OK);
            cl_coap_msg_t fm;
            FZ_CHECK(cl_coap_parse(&fm, full, n) == CL_OK);
            for (size_t i = (size_t)(fm.payload - full); i < small; i++)
                FZ_CHECK(sprot[i] == 0 || sprot[i] == 0xa5);
        }
        free(sprot);
        free(full);
    }
done:
    if (own_pair)
        fz_pair_free(&own);
    free(plain);
    free(prot);
    free(out);
    free(expect);
}

/* ------------------------------------------------------------------ */
/* B.1.2 Echo                                                          */
/* ------------------------------------------------------------------ */

/* plain without its Echo options plus one Echo option `echo`, into out. */
static size_t with_echo(const cl_coap_msg_t *pm, const uint8_t echo[CL_OSCORE_ECHO_LEN],
                        uint8_t *out, size_t out_size)
{
    cl_coap_msg_t m = *pm;
    size_t k = 0, n;
    for (size_t i = 0; i < pm->n_options; i++)
        if (pm->options[i].number != CL_COAP_OPT_ECHO)
            m.options[k++] = pm->options[i];
    m.n_options = k;
    if (k == CL_COAP_MAX_OPTIONS)
        return 0;
    FZ_CHECK(cl_coap_msg_add_option(&m, CL_COAP_OPT_ECHO, echo, CL_OSCORE_ECHO_LEN) == CL_OK);
    cl_coap_sort_options(&m);
    FZ_CHECK(cl_coap_serialize(&m, out, out_size, &n) == CL_OK);
    return n;
}

static void run_echo(uint8_t b0, const uint8_t *data, size_t size)
{
    fz_rd_t r = {data, size};
    fz_pair_t *p = &g_work[P_E];
    uint64_t ssn = fz_ssn(&r, b0);
    if (ssn > CL_OSCORE_SSN_MAX - 4)
        ssn = CL_OSCORE_SSN_MAX - 4;
    p->client.ssn = ssn;

    size_t plain_size = FZ_PLAIN_SIZE(r.n), plain_len, plain2_len;
    uint8_t *plain = fz_alloc(plain_size), *plain2 = fz_alloc(plain_size + 16);
    plain_len = fz_plain(true, r.p, r.n, plain, plain_size);
    size_t prot_size = 2 * plain_len + 160, prot1_len = 0, prot2_len = 0, out_len = 0;
    size_t out_size = 2 * plain_len + 256, exp_size = plain_len + 256, exp_len;
    uint8_t *prot1 = fz_alloc(prot_size), *prot2 = fz_alloc(prot_size), *out = fz_alloc(out_size);
    uint8_t *expect = fz_alloc(exp_size);
    uint8_t echo[CL_OSCORE_ECHO_LEN];
    cl_oscore_req_t creq, sreq;
    cl_coap_msg_t pm;
    cl_status_t st;

    if (plain_len == 0 || cl_coap_parse(&pm, plain, plain_len) != CL_OK ||
        fz_count(&pm, fz_is_outer) + 1 > CL_COAP_MAX_OPTIONS ||
        protect_checked(p, plain, plain_len, prot1, prot_size, &prot1_len, &creq, expect, exp_size,
                        &exp_len) != CL_OK)
        goto done;

    /* 1. Verified, but the window is unknown: Echo required, nothing committed. */
    uint8_t *work = fz_dup(prot1, prot1_len);
    st = server_open(&p->server, work, prot1_len, out, out_size, &out_len, &sreq);
    FZ_CHECK(st == CL_ERR_ECHO_REQUIRED);
    FZ_CHECK(fz_same_binding(&sreq, &creq));
    FZ_CHECK((p->server.flags & CL_OSCORE_F_NEED_ECHO) && !(p->server.flags & CL_OSCORE_F_RW_INIT));
    /* 2. The challenge, verified by the client. */
    answer_echo(p, &sreq, work, prot1_len, echo);
    free(work);
    if (!(p->server.flags & CL_OSCORE_F_ECHO_SENT))
        goto done; /* ACK/RST request: no Echo response */

    /* 3. A wrong Echo value is still refused and changes nothing. */
    if (b0 & 0x10) {
        uint8_t bad[CL_OSCORE_ECHO_LEN];
        memcpy(bad, echo, sizeof bad);
        bad[b0 & 7] ^= 0x01;
        plain2_len = with_echo(&pm, bad, plain2, plain_size + 16);
        if (plain2_len == 0 || protect_checked(p, plain2, plain2_len, prot2, prot_size, &prot2_len,
                                               &creq, expect, exp_size, &exp_len) != CL_OK)
            goto done;
        cl_oscore_ctx_t before = p->server;
        FZ_CHECK(deliver(&p->server, prot2, prot2_len, out, out_size, &out_len, &sreq) ==
                 CL_ERR_ECHO_REQUIRED);
        FZ_CHECK(same_rw(&before, &p->server));
    }

    /* 4. The request with the Echo value is accepted and initializes the window. */
    plain2_len = with_echo(&pm, echo, plain2, plain_size + 16);
    if (plain2_len == 0 || protect_checked(p, plain2, plain2_len, prot2, prot_size, &prot2_len,
                                           &creq, expect, exp_size, &exp_len) != CL_OK)
        goto done;
    st = deliver(&p->server, prot2, prot2_len, out, out_size, &out_len, &sreq);
    FZ_CHECK(st == CL_OK);
    FZ_CHECK(out_len == exp_len && memcmp(out, expect, exp_len) == 0);
    FZ_CHECK(!(p->server.flags & (CL_OSCORE_F_NEED_ECHO | CL_OSCORE_F_ECHO_SENT)));
    FZ_CHECK(p->server.flags & CL_OSCORE_F_RW_INIT);
    FZ_CHECK(p->server.rw_top == p->client.ssn - 1);

    /* 5. Older requests (including the one that triggered the challenge) are replays. */
    FZ_CHECK(deliver(&p->server, prot1, prot1_len, out, out_size, &out_len, &sreq) ==
             CL_ERR_REPLAY);
    FZ_CHECK(deliver(&p->server, prot2, prot2_len, out, out_size, &out_len, &sreq) ==
             CL_ERR_REPLAY);
done:
    free(plain);
    free(plain2);
    free(prot1);
    free(prot2);
    free(out);
    free(expect);
}

/* ------------------------------------------------------------------ */
/* Replay window against a reference model                             */
/* ------------------------------------------------------------------ */

#define SEQ_MSGS 8
#define SEQ_DELIVERIES 24

static void run_sequence(uint8_t b0, const uint8_t *data, size_t size)
{
    fz_rd_t r = {data, size};
    fz_pair_t *p = &g_work[(b0 & 1) ? P_B : P_A];
    uint8_t prot[SEQ_MSGS][96], plain[SEQ_MSGS][32], out[96];
    size_t prot_len[SEQ_MSGS], plain_len[SEQ_MSGS], out_len;
    uint64_t seq[SEQ_MSGS], accepted[SEQ_DELIVERIES];
    size_t n_acc = 0;
    cl_oscore_req_t creq, sreq;

    if (b0 & 2)
        p->server.window = (uint8_t)(1 + fz_u8(&r) % 64);
    uint64_t ssn = fz_ssn(&r, (uint8_t)(b0 >> 2));
    if (ssn > CL_OSCORE_SSN_MAX - 20000)
        ssn = CL_OSCORE_SSN_MAX - 20000 + (ssn & 0xff);
    p->client.ssn = ssn;
    size_t n = 2 + fz_u8(&r) % (SEQ_MSGS - 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t g = fz_u8(&r);
        p->client.ssn += g < 0x80 ? 0 : g < 0xc0 ? (g & 0x3f) : g < 0xf0 ? 32u + (g & 0x3f) : 1000;
        cl_coap_builder_t b;
        uint8_t tok = (uint8_t)i;
        cl_coap_build_init(&b, plain[i], sizeof plain[i], CL_COAP_CON, CL_COAP_GET, (uint16_t)i,
                           &tok, 1);
        (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)"seq", 3);
        (void)cl_coap_build_payload(&b, &tok, 1);
        FZ_CHECK(cl_coap_build_finish(&b, &plain_len[i]) == CL_OK);
        seq[i] = p->client.ssn;
        FZ_CHECK(cl_oscore_protect_request(&p->client, plain[i], plain_len[i], prot[i],
                                           sizeof prot[i], &prot_len[i], &creq) == CL_OK);
    }
    bool init = false;
    uint64_t top = 0;
    for (size_t k = 0; k < SEQ_DELIVERIES && r.n > 0; k++) {
        size_t i = fz_u8(&r) % n;
        cl_status_t expect = CL_OK;
        if (init && seq[i] <= top) {
            bool seen = false;
            for (size_t j = 0; j < n_acc; j++)
                seen |= accepted[j] == seq[i];
            if (top - seq[i] >= p->server.window || seen)
                expect = CL_ERR_REPLAY;
        }
        cl_status_t st =
            deliver(&p->server, prot[i], prot_len[i], out, sizeof out, &out_len, &sreq);
        FZ_CHECK(st == expect);
        if (st == CL_ERR_REPLAY)
            answer_error(st, prot[i], prot_len[i]);
        if (st == CL_OK) {
            FZ_CHECK(out_len == plain_len[i] && memcmp(out, plain[i], out_len) == 0);
            accepted[n_acc++] = seq[i];
            if (!init || seq[i] > top)
                top = seq[i];
            init = true;
            FZ_CHECK(p->server.rw_top == top);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Authentic requests with arbitrary plaintext                         */
/* ------------------------------------------------------------------ */

/*
 * The client's keys encrypt the rest of the input as the plaintext (code,
 * inner options, payload) of a request to the server of pair A, B, C.1 or E,
 * with an input-chosen Partial IV, optionally behind an outer Uri-Host: what
 * an authenticated but buggy or hostile peer can send. The server must
 * refuse exactly the plaintexts that are not a request (empty, unparsable,
 * not a request code, an inner OSCORE option, too many options; E: Echo
 * required) and otherwise return the outer header with the inner code,
 * options and payload, Class U options merged in.
 */
static void run_inner(uint8_t b0, const uint8_t *data, size_t size)
{
    static const int pairs[4] = {P_A, P_B, P_RFC1, P_E};
    fz_rd_t r = {data, size};
    fz_pair_t *p = &g_work[pairs[b0 & 3]];
    const cl_oscore_ctx_t *c = &p->client;
    uint64_t seq = fz_ssn(&r, (uint8_t)(b0 >> 2));
    if (seq > CL_OSCORE_SSN_MAX)
        seq = CL_OSCORE_SSN_MAX;
    bool host = (fz_u8(&r) & 1) != 0;
    uint8_t piv[5], nonce[CL_AEAD_MAX_NONCE], aad[64], optval[64], tok = 0x1c;
    size_t piv_len = fz_piv(seq, piv), aad_len, opt_len, ct_len, msg_len, out_len;

    cl_oscore_option_t o = {.piv = piv,
                            .piv_len = piv_len,
                            .kid = c->sender_id,
                            .kid_len = c->sender_id_len,
                            .has_kid = true};
    if (c->flags & CL_OSCORE_F_SEND_IDCTX) {
        o.kid_context = c->id_context;
        o.kid_context_len = c->id_context_len;
        o.has_kid_context = true;
    }
    FZ_CHECK(cl_oscore_option_encode(&o, optval, sizeof optval, &opt_len) == CL_OK);
    fz_nonce(c, c->sender_id, c->sender_id_len, piv, piv_len, nonce);
    aad_len = fz_aad(c->alg, c->sender_id, c->sender_id_len, piv, piv_len, aad);
    uint8_t *ct = fz_alloc(r.n + CL_AEAD_MAX_TAG);
    FZ_CHECK(cl_aead_encrypt(c->crypto, c->sender_key, nonce, c->nonce_len, aad, aad_len, r.p, r.n,
                             ct, r.n + CL_AEAD_MAX_TAG, &ct_len) == CL_OK);
    size_t msg_size = ct_len + 64, out_size = r.n + 128;
    uint8_t *msg = fz_alloc(msg_size), *out = fz_alloc(out_size), *expect = fz_alloc(out_size);
    cl_coap_builder_t b;
    cl_coap_build_init(&b, msg, msg_size, CL_COAP_CON, CL_COAP_POST, 0x2222, &tok, 1);
    if (host)
        (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)"h", 1);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, optval, opt_len);
    (void)cl_coap_build_payload(&b, ct, ct_len);
    FZ_CHECK(cl_coap_build_finish(&b, &msg_len) == CL_OK);

    cl_coap_msg_t inner, m;
    cl_status_t want = fz_inner(r.p, r.n, &inner);
    if (want == CL_OK && !fz_is_request(inner.code))
        want = CL_ERR_BAD_INPUT;
    if (want == CL_OK && (p->server.flags & CL_OSCORE_F_NEED_ECHO))
        want = CL_ERR_ECHO_REQUIRED;
    if (want == CL_OK && inner.n_options + host > CL_COAP_MAX_OPTIONS)
        want = CL_ERR_LIMIT;
    size_t exp_len = 0;
    if (want == CL_OK) {
        /* Outer header, inner code, Uri-Host before inner options of the same number. */
        m = inner;
        m.type = CL_COAP_CON;
        m.mid = 0x2222;
        m.tkl = 1;
        m.token = &tok;
        if (host) {
            memmove(m.options + 1, m.options, inner.n_options * sizeof m.options[0]);
            m.options[0].number = CL_COAP_OPT_URI_HOST;
            m.options[0].len = 1;
            m.options[0].value = (const uint8_t *)"h";
            m.n_options++;
            cl_coap_sort_options(&m);
        }
        FZ_CHECK(cl_coap_serialize(&m, expect, out_size, &exp_len) == CL_OK);
    }
    cl_oscore_req_t sreq;
    cl_status_t st = deliver(&p->server, msg, msg_len, out, out_size, &out_len, &sreq);
    FZ_CHECK(st == want);
    if (st == CL_OK) {
        FZ_CHECK(out_len == exp_len && memcmp(out, expect, exp_len) == 0);
        FZ_CHECK(p->server.rw_top == seq);
    } else {
        FZ_CHECK(!(p->server.flags & CL_OSCORE_F_RW_INIT));
        answer_error(st == CL_ERR_ECHO_REQUIRED ? CL_ERR_AUTH : st, msg, msg_len);
    }
    free(ct);
    free(msg);
    free(out);
    free(expect);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    memcpy(g_work, g_init, sizeof g_work);
    fz_check_option_codec(data, size);
    if (size == 0)
        return 0;
    switch (data[0] >> 6) {
    case 1: run_raw(data, size); break;
    case 0: run_structured(data[0], data + 1, size - 1); break;
    case 2: run_echo(data[0], data + 1, size - 1); break;
    default:
        if (data[0] & 0x20)
            run_inner(data[0], data + 1, size - 1);
        else
            run_sequence(data[0], data + 1, size - 1);
        break;
    }
    return 0;
}
