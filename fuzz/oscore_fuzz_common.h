/*
 * oscore_fuzz_common.h - shared pieces of the OSCORE fuzz harnesses
 * (fuzz_oscore_request.c, fuzz_oscore_response.c) and of the corpus
 * generator gen_oscore_corpus.c.
 *
 * Everything is `static inline` so that each harness includes what it uses
 * without unused-function warnings. Holds: the fixed security contexts (the
 * RFC 8613 Appendix C ones and three of our own), a byte reader for
 * structured inputs, the "force bytes into a plain CoAP message" builder,
 * the expected client-side transformation of responses (section 4.1.3.5.2:
 * the Observe value of a notification with a Partial IV becomes the low 3
 * bytes of the Partial IV, without one it stays empty), and small checks.
 *
 * Not a harness (no fuzz_ prefix): CI treats every fuzz/fuzz_*.c as one.
 */
#ifndef CLOISTER_OSCORE_FUZZ_COMMON_H
#define CLOISTER_OSCORE_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/coap.h"
#include "cloister/crypto_openssl.h"
#include "cloister/oscore.h"

#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------ */
/* Fixed security contexts                                             */
/* ------------------------------------------------------------------ */

/** A client/server pair: the client's Sender ID is the server's Recipient ID. */
typedef struct fz_spec {
    const uint8_t *ms;
    size_t ms_len;
    const uint8_t *salt;
    size_t salt_len;
    const uint8_t *csid; /* client Sender ID */
    size_t csid_len;
    const uint8_t *ssid; /* server Sender ID */
    size_t ssid_len;
    const uint8_t *idctx; /* NULL: no ID Context */
    size_t idctx_len;
    cl_aead_alg_t aead;
    uint32_t window;
    bool send_kid_context; /* client puts the ID Context into requests */
    bool echo_on_boot;     /* server requires B.1.2 Echo first */
    uint64_t client_ssn;
} fz_spec_t;

typedef struct fz_pair {
    cl_oscore_ctx_t client, server;
} fz_pair_t;

static const uint8_t FZ_RFC_MS[16] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                                      0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};
static const uint8_t FZ_RFC_SALT[8] = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
static const uint8_t FZ_RFC_IDCTX[8] = {0x37, 0xcb, 0xf3, 0x21, 0x00, 0x17, 0xa2, 0xd3};
static const uint8_t FZ_ID_00[1] = {0x00}, FZ_ID_01[1] = {0x01};
static const uint8_t FZ_A_MS[16] = {'c', 'l', 'o', 'i', 's', 't', 'e', 'r',
                                    ' ', 'f', 'u', 'z', 'z', ' ', 'A', '!'};
static const uint8_t FZ_A_SALT[2] = {0xa5, 0x5a};
static const uint8_t FZ_A_CID[1] = {0xc1}, FZ_A_SID[1] = {0x5e};
static const uint8_t FZ_B_MS[32] = {
    0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
    0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf};
static const uint8_t FZ_B_CID[2] = {0xc2, 0x02};
static const uint8_t FZ_B_IDCTX[4] = {0x1d, 0xc0, 0x01, 0x02};
static const uint8_t FZ_E_MS[16] = {'e', 'c', 'h', 'o', '-', 'o', 'n', '-',
                                    'b', 'o', 'o', 't', '-', 'k', 'e', 'y'};
static const uint8_t FZ_E_CID[1] = {0xec};

/* clang-format off */
/* RFC 8613 C.1 (with Master Salt), C.2 (without), C.3 (with ID Context); SSN 20 as in C.4-C.6. */
static const fz_spec_t FZ_SPEC_RFC1 = {.ms = FZ_RFC_MS, .ms_len = 16,
                                       .salt = FZ_RFC_SALT, .salt_len = 8,
                                       .ssid = FZ_ID_01, .ssid_len = 1,
                                       .client_ssn = 20};
static const fz_spec_t FZ_SPEC_RFC2 = {.ms = FZ_RFC_MS, .ms_len = 16,
                                       .csid = FZ_ID_00, .csid_len = 1,
                                       .ssid = FZ_ID_01, .ssid_len = 1,
                                       .client_ssn = 20};
static const fz_spec_t FZ_SPEC_RFC3 = {.ms = FZ_RFC_MS, .ms_len = 16,
                                       .salt = FZ_RFC_SALT, .salt_len = 8,
                                       .ssid = FZ_ID_01, .ssid_len = 1,
                                       .idctx = FZ_RFC_IDCTX, .idctx_len = 8,
                                       .send_kid_context = true,
                                       .client_ssn = 20};
/* Ours. A: no ID Context. B: ID Context sent as kid context, AES-GCM, empty server ID,
 * window 64. E: echo_on_boot on the server, AES-CCM-16-128-128 (16-byte tag). */
static const fz_spec_t FZ_SPEC_A = {.ms = FZ_A_MS, .ms_len = 16,
                                    .salt = FZ_A_SALT, .salt_len = 2,
                                    .csid = FZ_A_CID, .csid_len = 1,
                                    .ssid = FZ_A_SID, .ssid_len = 1,
                                    .client_ssn = 7};
static const fz_spec_t FZ_SPEC_B = {.ms = FZ_B_MS, .ms_len = 32,
                                    .csid = FZ_B_CID, .csid_len = 2,
                                    .idctx = FZ_B_IDCTX, .idctx_len = 4,
                                    .aead = CL_AEAD_A128GCM, .window = 64,
                                    .send_kid_context = true,
                                    .client_ssn = 0x123456};
static const fz_spec_t FZ_SPEC_E = {.ms = FZ_E_MS, .ms_len = 16,
                                    .salt = FZ_A_SALT, .salt_len = 2,
                                    .csid = FZ_E_CID, .csid_len = 1,
                                    .ssid = FZ_A_SID, .ssid_len = 1,
                                    .aead = CL_AEAD_AES_CCM_16_128_128,
                                    .echo_on_boot = true,
                                    .client_ssn = 0x1ff};

/* clang-format on */

/** One provider for the process (harness contexts live as long as the process). */
static inline const cl_crypto_t *fz_provider(void)
{
    static cl_crypto_t c;
    static bool done;
    if (!done) {
        FZ_CHECK(cl_crypto_openssl_new(&c, 0) == CL_OK);
        done = true;
    }
    return &c;
}

static inline cl_status_t fz_pair_init(fz_pair_t *p, const cl_crypto_t *crypto, const fz_spec_t *s)
{
    cl_oscore_params_t cp, sp;
    cl_status_t st;

    memset(p, 0, sizeof *p);
    memset(&cp, 0, sizeof cp);
    cp.master_secret = s->ms;
    cp.master_secret_len = s->ms_len;
    cp.master_salt = s->salt;
    cp.master_salt_len = s->salt_len;
    cp.sender_id = s->csid;
    cp.sender_id_len = s->csid_len;
    cp.recipient_id = s->ssid;
    cp.recipient_id_len = s->ssid_len;
    cp.id_context = s->idctx;
    cp.id_context_len = s->idctx_len;
    cp.aead = s->aead;
    cp.replay_window = s->window;
    cp.initial_ssn = s->client_ssn;
    cp.send_kid_context = s->send_kid_context;
    sp = cp;
    sp.sender_id = s->ssid;
    sp.sender_id_len = s->ssid_len;
    sp.recipient_id = s->csid;
    sp.recipient_id_len = s->csid_len;
    sp.initial_ssn = 0;
    sp.send_kid_context = false;
    sp.echo_on_boot = s->echo_on_boot;
    if ((st = cl_oscore_ctx_init(&p->client, crypto, &cp)) != CL_OK)
        return st;
    if ((st = cl_oscore_ctx_init(&p->server, crypto, &sp)) != CL_OK) {
        cl_oscore_ctx_free(&p->client);
        return st;
    }
    return CL_OK;
}

static inline void fz_pair_free(fz_pair_t *p)
{
    cl_oscore_ctx_free(&p->client);
    cl_oscore_ctx_free(&p->server);
}

/* ------------------------------------------------------------------ */
/* Request bindings of fuzz_oscore_response (also used by the corpus generator) */
/* ------------------------------------------------------------------ */

/*
 *   FZ_R_RFC    RFC 8613 C.1 pair: the C.4 request (kid 0x, Partial IV 0x14)
 *   FZ_R_A_OBS  pair A: CON GET /obs with Observe 0 (Partial IV 0x07)
 *   FZ_R_B      pair B: CON POST /b "hello" (Partial IV 0x123456)
 *   FZ_R_B_OBS  pair B: CON GET /b-obs with Observe 0 (Partial IV 0x123457)
 */
enum { FZ_R_RFC, FZ_R_A_OBS, FZ_R_B, FZ_R_B_OBS, FZ_N_BIND };
enum { FZ_PAIR_RFC, FZ_PAIR_A, FZ_PAIR_B, FZ_N_BIND_PAIRS };
static const int FZ_BIND_PAIR[FZ_N_BIND] = {FZ_PAIR_RFC, FZ_PAIR_A, FZ_PAIR_B, FZ_PAIR_B};

typedef struct fz_bindings {
    fz_pair_t pair[FZ_N_BIND_PAIRS];
    cl_oscore_req_t creq[FZ_N_BIND], sreq[FZ_N_BIND];
} fz_bindings_t;

/* C.4: CON GET coap://localhost/tv1, mid 0x5d1f, token 0x3974. */
static const uint8_t FZ_C4_PLAIN[22] = {0x44, 0x01, 0x5d, 0x1f, 0x00, 0x00, 0x39, 0x74,
                                        0x39, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x68, 0x6f,
                                        0x73, 0x74, 0x83, 0x74, 0x76, 0x31};

/* CON request: token, Uri-Host "cloister", [Observe 0], Uri-Path, [payload]. */
static inline size_t fz_make_request(uint8_t *buf, size_t size, uint8_t code, uint16_t mid,
                                     uint8_t tok, bool observe, const char *path,
                                     const char *payload)
{
    cl_coap_builder_t b;
    size_t n;
    cl_coap_build_init(&b, buf, size, CL_COAP_CON, code, mid, &tok, 1);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)"cloister", 8);
    if (observe)
        (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, 0);
    (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)path, strlen(path));
    if (payload != NULL)
        (void)cl_coap_build_payload(&b, (const uint8_t *)payload, strlen(payload));
    FZ_CHECK(cl_coap_build_finish(&b, &n) == CL_OK);
    return n;
}

/* Client protects, server unprotects: both ends of the binding. */
static inline void fz_make_binding(fz_pair_t *p, const uint8_t *plain, size_t plain_len,
                                   cl_oscore_req_t *creq, cl_oscore_req_t *sreq)
{
    uint8_t prot[128], out[128];
    size_t prot_len, out_len;
    cl_oscore_ctx_t *list[1] = {&p->server}, *found;
    cl_oscore_ctx_list_t l = {list, 1};
    FZ_CHECK(cl_oscore_protect_request(&p->client, plain, plain_len, prot, sizeof prot, &prot_len,
                                       creq) == CL_OK);
    FZ_CHECK(cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, prot, prot_len, out, sizeof out,
                                         &out_len, &found, sreq) == CL_OK);
    FZ_CHECK(out_len == plain_len && memcmp(out, plain, plain_len) == 0);
}

static inline void fz_bindings_init(fz_bindings_t *g, const cl_crypto_t *c)
{
    uint8_t plain[64];
    size_t n;
    memset(g, 0, sizeof *g);
    FZ_CHECK(fz_pair_init(&g->pair[FZ_PAIR_RFC], c, &FZ_SPEC_RFC1) == CL_OK);
    FZ_CHECK(fz_pair_init(&g->pair[FZ_PAIR_A], c, &FZ_SPEC_A) == CL_OK);
    FZ_CHECK(fz_pair_init(&g->pair[FZ_PAIR_B], c, &FZ_SPEC_B) == CL_OK);
    fz_make_binding(&g->pair[FZ_PAIR_RFC], FZ_C4_PLAIN, sizeof FZ_C4_PLAIN, &g->creq[FZ_R_RFC],
                    &g->sreq[FZ_R_RFC]);
    n = fz_make_request(plain, sizeof plain, CL_COAP_GET, 0x0a0b, 0xa1, true, "obs", NULL);
    fz_make_binding(&g->pair[FZ_PAIR_A], plain, n, &g->creq[FZ_R_A_OBS], &g->sreq[FZ_R_A_OBS]);
    n = fz_make_request(plain, sizeof plain, CL_COAP_POST, 0x0b0b, 0xb1, false, "b", "hello");
    fz_make_binding(&g->pair[FZ_PAIR_B], plain, n, &g->creq[FZ_R_B], &g->sreq[FZ_R_B]);
    n = fz_make_request(plain, sizeof plain, CL_COAP_GET, 0x0b0c, 0xb2, true, "b-obs", NULL);
    fz_make_binding(&g->pair[FZ_PAIR_B], plain, n, &g->creq[FZ_R_B_OBS], &g->sreq[FZ_R_B_OBS]);
    FZ_CHECK(g->creq[FZ_R_A_OBS].observe && g->creq[FZ_R_B_OBS].observe);
    FZ_CHECK(!g->creq[FZ_R_RFC].observe && !g->creq[FZ_R_B].observe);
}

/* Server pairs of fuzz_oscore_request, in lookup-list order. */
enum { FZ_P_RFC1, FZ_P_RFC2, FZ_P_RFC3, FZ_P_A, FZ_P_B, FZ_P_E, FZ_N_SERVERS };
static const fz_spec_t *const FZ_SERVER_SPECS[FZ_N_SERVERS] = {
    &FZ_SPEC_RFC1, &FZ_SPEC_RFC2, &FZ_SPEC_RFC3, &FZ_SPEC_A, &FZ_SPEC_B, &FZ_SPEC_E};

/* ------------------------------------------------------------------ */
/* Input reader (missing bytes read as zero)                           */
/* ------------------------------------------------------------------ */

typedef struct fz_rd {
    const uint8_t *p;
    size_t n;
} fz_rd_t;

static inline uint8_t fz_u8(fz_rd_t *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static inline uint64_t fz_be(fz_rd_t *r, size_t k)
{
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++)
        v = v << 8 | fz_u8(r);
    return v;
}

/** Takes up to k bytes; returns how many (pointer into the input). */
static inline size_t fz_take(fz_rd_t *r, size_t k, const uint8_t **out)
{
    if (k > r->n)
        k = r->n;
    *out = r->p;
    r->p += k;
    r->n -= k;
    return k;
}

/** Copies up to len input bytes into dst (the rest of dst is left as is). */
static inline void fz_copy(fz_rd_t *r, uint8_t *dst, size_t len)
{
    const uint8_t *v;
    size_t n = fz_take(r, len, &v);
    if (n)
        memcpy(dst, v, n);
}

/** A sequence number from one selector byte plus 0..5 input bytes. */
static inline uint64_t fz_ssn(fz_rd_t *r, uint8_t sel)
{
    switch (sel & 7) {
    case 0: return 0;
    case 1: return fz_be(r, 1);
    case 2: return fz_be(r, 2);
    case 3: return fz_be(r, 3);
    case 4: return fz_be(r, 5) & CL_OSCORE_SSN_MAX;
    case 5: return CL_OSCORE_SSN_MAX;     /* the last one */
    case 6: return CL_OSCORE_SSN_MAX + 1; /* exhausted */
    default: return fz_be(r, 4);
    }
}

/* ------------------------------------------------------------------ */
/* CoAP helpers                                                        */
/* ------------------------------------------------------------------ */

static inline bool fz_is_request(uint8_t code)
{
    return CL_COAP_CLASS(code) == 0 && code != CL_COAP_EMPTY;
}

static inline bool fz_is_response(uint8_t code)
{
    return CL_COAP_CLASS(code) >= 2 && CL_COAP_CLASS(code) <= 5;
}

/** Class U (outer only) options of oscore.h. */
static inline bool fz_is_class_u(uint16_t n)
{
    return n == CL_COAP_OPT_URI_HOST || n == CL_COAP_OPT_URI_PORT || n == CL_COAP_OPT_PROXY_URI ||
           n == CL_COAP_OPT_PROXY_SCHEME || n == CL_COAP_OPT_HOP_LIMIT || n == CL_COAP_OPT_EDHOC;
}

static inline size_t fz_count(const cl_coap_msg_t *m, bool (*pred)(uint16_t))
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_options; i++)
        k += pred(m->options[i].number);
    return k;
}

static inline bool fz_is_oscore_opt(uint16_t n)
{
    return n == CL_COAP_OPT_OSCORE;
}

static inline bool fz_is_observe_opt(uint16_t n)
{
    return n == CL_COAP_OPT_OBSERVE;
}

/** Options that appear in the outer message of a protected one: Class U, Observe. */
static inline bool fz_is_outer(uint16_t n)
{
    return fz_is_class_u(n) || n == CL_COAP_OPT_OBSERVE;
}

static inline bool fz_same_opt(const cl_coap_option_t *a, const cl_coap_option_t *b)
{
    return a->number == b->number && a->len == b->len &&
           (a->len == 0 || memcmp(a->value, b->value, a->len) == 0);
}

/**
 * The protected content of two messages is the same: code, every option that
 * is not Class U (in order), payload. Type, message id, token and Class U
 * options are outer and not integrity protected.
 */
static inline bool fz_same_inner(const cl_coap_msg_t *a, const cl_coap_msg_t *b)
{
    size_t i = 0, j = 0;
    if (a->code != b->code || a->payload_len != b->payload_len ||
        (a->payload_len && memcmp(a->payload, b->payload, a->payload_len) != 0))
        return false;
    for (;;) {
        while (i < a->n_options && fz_is_class_u(a->options[i].number))
            i++;
        while (j < b->n_options && fz_is_class_u(b->options[j].number))
            j++;
        if (i == a->n_options || j == b->n_options)
            return i == a->n_options && j == b->n_options;
        if (!fz_same_opt(&a->options[i], &b->options[j]))
            return false;
        i++;
        j++;
    }
}

/** Stable sort by option number (insertion sort; n is small). */
static inline void fz_sort_opts(cl_coap_option_t *o, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        cl_coap_option_t x = o[i];
        size_t j = i;
        while (j > 0 && o[j - 1].number > x.number) {
            o[j] = o[j - 1];
            j--;
        }
        o[j] = x;
    }
}

/* Option numbers worth hitting: Class U ones, Observe, Echo, critical/unsafe, extended deltas. */
static const uint16_t FZ_OPT_NUMBERS[] = {CL_COAP_OPT_IF_MATCH,
                                          CL_COAP_OPT_URI_HOST,
                                          CL_COAP_OPT_ETAG,
                                          CL_COAP_OPT_OBSERVE,
                                          CL_COAP_OPT_URI_PORT,
                                          CL_COAP_OPT_LOCATION_PATH,
                                          CL_COAP_OPT_URI_PATH,
                                          CL_COAP_OPT_CONTENT_FORMAT,
                                          CL_COAP_OPT_MAX_AGE,
                                          CL_COAP_OPT_URI_QUERY,
                                          CL_COAP_OPT_HOP_LIMIT,
                                          CL_COAP_OPT_ACCEPT,
                                          CL_COAP_OPT_EDHOC,
                                          CL_COAP_OPT_BLOCK2,
                                          CL_COAP_OPT_BLOCK1,
                                          CL_COAP_OPT_PROXY_URI,
                                          CL_COAP_OPT_PROXY_SCHEME,
                                          CL_COAP_OPT_SIZE1,
                                          CL_COAP_OPT_ECHO,
                                          CL_COAP_OPT_NO_RESPONSE,
                                          CL_COAP_OPT_REQUEST_TAG,
                                          CL_COAP_OPT_OBSERVE,
                                          CL_COAP_OPT_URI_PATH,
                                          2049,
                                          65000};
#define FZ_N_OPT_NUMBERS (sizeof FZ_OPT_NUMBERS / sizeof FZ_OPT_NUMBERS[0])

/** Output size fz_plain needs for an input of n bytes. */
#define FZ_PLAIN_SIZE(n) ((n) + 192) /* header 12, <= 33 option heads of 5, marker */

/**
 * Makes a plain CoAP request (or response) from arbitrary bytes into out
 * (FZ_PLAIN_SIZE(n) bytes): the input itself when it parses (or is merely
 * over the option limit) with a code of the right kind (it may then carry
 * an OSCORE option; the caller checks that protect refuses it), otherwise a
 * message built from the bytes: header fields, up to 8 options (33 when the
 * count byte is 0xff) with numbers from FZ_OPT_NUMBERS or raw 16-bit numbers
 * (never OSCORE), then the rest as payload. Returns the length, 0 if empty input.
 */
static inline size_t fz_plain(bool request, const uint8_t *in, size_t n, uint8_t *out,
                              size_t out_size)
{
    cl_coap_msg_t m;
    cl_status_t st;

    if (n == 0)
        return 0;
    st = cl_coap_parse(&m, in, n);
    if ((st == CL_OK || st == CL_ERR_LIMIT) && n >= 2 &&
        (request ? fz_is_request(in[1]) : fz_is_response(in[1]))) {
        memcpy(out, in, n);
        return n;
    }

    fz_rd_t r = {in, n};
    uint8_t b0 = fz_u8(&r), cb = fz_u8(&r);
    uint8_t type = b0 & 3, tkl = (uint8_t)((b0 >> 2) % 9);
    uint8_t code =
        request ? CL_COAP_CODE(0, 1 + cb % 31) : CL_COAP_CODE(2 + ((cb >> 5) & 3), cb & 0x1f);
    uint16_t mid = (uint16_t)fz_be(&r, 2);
    uint8_t token[8] = {0};
    const uint8_t *tp;
    size_t tl = fz_take(&r, tkl, &tp);
    if (tl)
        memcpy(token, tp, tl);
    uint8_t nb = fz_u8(&r);
    size_t nopt = nb == 0xff ? 33 : nb % 9;
    cl_coap_option_t opts[33];
    for (size_t i = 0; i < nopt; i++) {
        if (r.n == 0) {
            nopt = i;
            break;
        }
        uint8_t sel = fz_u8(&r);
        uint16_t num = sel < 0xe0 ? FZ_OPT_NUMBERS[sel % FZ_N_OPT_NUMBERS] : (uint16_t)fz_be(&r, 2);
        if (num == CL_COAP_OPT_OSCORE)
            num++;
        uint8_t lb = fz_u8(&r);
        size_t len = lb < 0xf0 ? lb % 13u : (lb == 0xff ? 269u + fz_u8(&r) : 13u + fz_u8(&r));
        const uint8_t *v;
        len = fz_take(&r, len, &v);
        opts[i].number = num;
        opts[i].len = (uint16_t)len;
        opts[i].value = len ? v : NULL;
    }
    fz_sort_opts(opts, nopt);
    cl_coap_builder_t b;
    size_t out_len;
    cl_coap_build_init(&b, out, out_size, type, code, mid, token, tkl);
    for (size_t i = 0; i < nopt; i++)
        (void)cl_coap_build_option(&b, opts[i].number, opts[i].value, opts[i].len);
    (void)cl_coap_build_payload(&b, r.p, r.n);
    FZ_CHECK(cl_coap_build_finish(&b, &out_len) == CL_OK);
    return out_len;
}

/** Sequence number to Partial IV (section 6.1: big endian, no leading zeros, 0 -> 00). */
static inline size_t fz_piv(uint64_t seq, uint8_t piv[5])
{
    size_t n = 1;
    while (n < 5 && (seq >> (8 * n)) != 0)
        n++;
    for (size_t i = 0; i < n; i++)
        piv[i] = (uint8_t)(seq >> (8 * (n - 1 - i)));
    return n;
}

/** The OSCORE option of a (well-formed, single-option) protected message. */
static inline bool fz_get_oscore(const uint8_t *msg, size_t len, cl_oscore_option_t *o)
{
    cl_coap_msg_t m;
    const cl_coap_option_t *opt;
    if (cl_coap_parse(&m, msg, len) != CL_OK ||
        (opt = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE)) == NULL)
        return false;
    return cl_oscore_option_decode(o, opt->value, opt->len) == CL_OK;
}

static inline uint64_t fz_piv_value(const cl_oscore_option_t *o)
{
    uint64_t v = 0;
    for (size_t i = 0; i < o->piv_len; i++)
        v = v << 8 | o->piv[i];
    return v;
}

/**
 * What the client reconstructs from the plain response `plain` (section
 * 4.1.3.5.2 as implemented in cl_oscore_unprotect_response): when the
 * response is a notification (Observe request and Observe in the response),
 * every Observe option carries the 3 low bytes of the response's Partial IV,
 * or stays empty when the response has no Partial IV. Everything else is
 * unchanged. Returns the length written into out.
 */
static inline size_t fz_expected_response(const uint8_t *plain, size_t plain_len, bool notification,
                                          bool has_piv, uint64_t seq, uint8_t *out, size_t out_size)
{
    cl_coap_msg_t m;
    uint8_t ov[4];
    size_t ol = 0, n;

    FZ_CHECK(cl_coap_parse(&m, plain, plain_len) == CL_OK);
    if (has_piv)
        ol = cl_coap_uint_encode(ov, (uint32_t)(seq & 0xffffff));
    if (notification) {
        for (size_t i = 0; i < m.n_options; i++) {
            if (m.options[i].number != CL_COAP_OPT_OBSERVE)
                continue;
            m.options[i].value = ol ? ov : NULL;
            m.options[i].len = (uint16_t)ol;
        }
    }
    FZ_CHECK(cl_coap_serialize(&m, out, out_size, &n) == CL_OK);
    return n;
}

/* ------------------------------------------------------------------ */
/* Client-side response acceptance model (cl_oscore_unprotect_response) */
/* ------------------------------------------------------------------ */

/**
 * Expected status of an authentic response given the request state, and the
 * state after it: a response without Partial IV is accepted once (it reuses
 * the request nonce); to an Observe request, one with a Partial IV not above
 * the last notification's is a replay; Observe in the response of a
 * non-Observe request is bad input; an accepted notification with a Partial
 * IV becomes the notification number.
 */
static inline cl_status_t fz_model_response(cl_oscore_req_t *m, bool has_piv, uint64_t seq,
                                            bool inner_observe)
{
    if (has_piv && m->observe && m->have_notif && seq <= m->notif_num)
        return CL_ERR_REPLAY;
    if (!has_piv && m->nonce_reused)
        return CL_ERR_REPLAY;
    if (inner_observe && !m->observe)
        return CL_ERR_BAD_INPUT;
    if (!has_piv) {
        m->nonce_reused = true;
    } else if (m->observe && inner_observe) {
        m->notif_num = seq;
        m->have_notif = true;
    }
    return CL_OK;
}

/** Same request binding (kid and Partial IV). */
static inline bool fz_same_binding(const cl_oscore_req_t *a, const cl_oscore_req_t *b)
{
    return a->kid_len == b->kid_len && memcmp(a->kid, b->kid, a->kid_len) == 0 &&
           a->piv_len == b->piv_len && memcmp(a->piv, b->piv, a->piv_len) == 0;
}

static inline bool fz_same_req(const cl_oscore_req_t *a, const cl_oscore_req_t *b)
{
    return a->kid_len == b->kid_len && memcmp(a->kid, b->kid, a->kid_len) == 0 &&
           a->piv_len == b->piv_len && memcmp(a->piv, b->piv, a->piv_len) == 0 &&
           a->observe == b->observe && a->nonce_reused == b->nonce_reused &&
           a->have_notif == b->have_notif && (!a->have_notif || a->notif_num == b->notif_num);
}

static inline uint8_t *fz_dup(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    FZ_CHECK(q != NULL);
    if (n)
        memcpy(q, p, n);
    return q;
}

static inline uint8_t *fz_alloc(size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    FZ_CHECK(q != NULL);
    return q;
}

/* ------------------------------------------------------------------ */
/* An authenticated peer: nonce and AAD written from RFC 8613 directly  */
/* ------------------------------------------------------------------ */

/* Section 5.2: S || ID_PIV left-padded to nonce_len - 6 || PIV left-padded to 5, XOR Common IV. */
static inline void fz_nonce(const cl_oscore_ctx_t *ctx, const uint8_t *id, size_t id_len,
                            const uint8_t *piv, size_t piv_len, uint8_t *nonce)
{
    size_t n = ctx->nonce_len;
    FZ_CHECK(id_len <= n - 6 && piv_len <= 5);
    memset(nonce, 0, n);
    nonce[0] = (uint8_t)id_len;
    memcpy(nonce + 1 + (n - 6 - id_len), id, id_len);
    memcpy(nonce + n - piv_len, piv, piv_len);
    for (size_t i = 0; i < n; i++)
        nonce[i] ^= ctx->common_iv[i];
}

/*
 * Section 5.4: Enc_structure ["Encrypt0", h'', bstr .cbor aad_array] with
 * aad_array [1, [alg], request_kid, request_piv, h''] (short CBOR heads only:
 * every length here is below 24). Returns the length.
 */
static inline size_t fz_aad(uint8_t alg, const uint8_t *kid, size_t kid_len, const uint8_t *piv,
                            size_t piv_len, uint8_t *out)
{
    uint8_t arr[32];
    size_t a = 0, o = 0;
    FZ_CHECK(kid_len < 24 && piv_len < 24);
    arr[a++] = 0x85;
    arr[a++] = 0x01;
    arr[a++] = 0x81;
    if (alg >= 24)
        arr[a++] = 0x18;
    arr[a++] = alg;
    arr[a++] = (uint8_t)(0x40 | kid_len);
    memcpy(arr + a, kid, kid_len);
    a += kid_len;
    arr[a++] = (uint8_t)(0x40 | piv_len);
    memcpy(arr + a, piv, piv_len);
    a += piv_len;
    arr[a++] = 0x40;
    out[o++] = 0x83;
    out[o++] = 0x68;
    memcpy(out + o, "Encrypt0", 8);
    o += 8;
    out[o++] = 0x40;
    out[o++] = (uint8_t)(0x40 | a);
    memcpy(out + o, arr, a);
    return o + a;
}

/**
 * What a receiver makes of an authentic plaintext pt[0..n): the status the
 * inner part alone leads to (BAD_INPUT for an empty or unparsable plaintext
 * or an inner OSCORE option, LIMIT for too many options) and the inner message.
 */
static inline cl_status_t fz_inner(const uint8_t *pt, size_t n, cl_coap_msg_t *inner)
{
    memset(inner, 0, sizeof *inner);
    if (n == 0)
        return CL_ERR_BAD_INPUT;
    inner->code = pt[0];
    cl_status_t st = cl_coap_options_parse(inner, pt + 1, n - 1);
    if (st != CL_OK)
        return st;
    if (cl_coap_msg_get(inner, CL_COAP_OPT_OSCORE) != NULL)
        return CL_ERR_BAD_INPUT;
    return CL_OK;
}

/** Whether needle[0..n) occurs in hay[0..len) (no memmem in POSIX). */
static inline bool fz_contains(const uint8_t *hay, size_t len, const uint8_t *needle, size_t n)
{
    for (size_t i = 0; n > 0 && i + n <= len; i++)
        if (memcmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* Codec round trips run on every input                                */
/* ------------------------------------------------------------------ */

/** cl_oscore_option_decode: when the bytes decode, encode must give them back exactly. */
static inline void fz_check_option_codec(const uint8_t *data, size_t size)
{
    cl_oscore_option_t o;
    if (cl_oscore_option_decode(&o, data, size) != CL_OK)
        return;
    FZ_CHECK(o.piv_len <= 5);
    uint8_t *out = fz_alloc(size);
    size_t out_len = 12345;
    FZ_CHECK(cl_oscore_option_encode(&o, out, size, &out_len) == CL_OK);
    FZ_CHECK(out_len == size && (size == 0 || memcmp(out, data, size) == 0));
    if (size > 0) /* one byte short: refused */
        FZ_CHECK(cl_oscore_option_encode(&o, out, size - 1, &out_len) == CL_ERR_BUFFER_TOO_SMALL);
    free(out);
}

/**
 * HTTP "OSCORE" header (section 11): decode(encode(x)) == x, "AA" for the
 * empty value (the single byte 00 also encodes as "AA" and decodes as empty:
 * 00 is not a valid option value, which must be sent empty). Conversely,
 * whatever the strict decoder accepts re-encodes to the same string.
 */
static inline void fz_check_http_header(const uint8_t *data, size_t size)
{
    size_t hsize = (size * 8 + 5) / 6 + 1, hlen;
    if (hsize < 3)
        hsize = 3;
    char *hdr = malloc(hsize);
    uint8_t *back = fz_alloc(size + 1);
    size_t back_len = 999;
    FZ_CHECK(hdr != NULL);
    FZ_CHECK(cl_oscore_http_header_encode(data, size, hdr, hsize) == CL_OK);
    hlen = strlen(hdr);
    FZ_CHECK(hlen + 1 == hsize || (size == 0 && hlen == 2));
    FZ_CHECK(cl_oscore_http_header_encode(data, size, hdr, hlen) == CL_ERR_BUFFER_TOO_SMALL);
    FZ_CHECK(cl_oscore_http_header_encode(data, size, hdr, hsize) == CL_OK);
    if (size == 0)
        FZ_CHECK(strcmp(hdr, "AA") == 0);
    FZ_CHECK(cl_oscore_http_header_decode(hdr, hlen, back, size + 1, &back_len) == CL_OK);
    if (size == 1 && data[0] == 0)
        FZ_CHECK(back_len == 0);
    else
        FZ_CHECK(back_len == size && (size == 0 || memcmp(back, data, size) == 0));
    free(hdr);
    free(back);

    /* The input as a header value. */
    size_t dsize = size * 6 / 8 + 1;
    uint8_t *dec = fz_alloc(dsize);
    size_t dec_len = 0;
    cl_status_t st = cl_oscore_http_header_decode((const char *)data, size, dec, dsize, &dec_len);
    FZ_CHECK(st == CL_OK || st == CL_ERR_BAD_INPUT);
    if (st == CL_OK) {
        char *re = malloc(size + 4);
        FZ_CHECK(re != NULL);
        FZ_CHECK(cl_oscore_http_header_encode(dec, dec_len, re, size + 4) == CL_OK);
        FZ_CHECK(strlen(re) == size && memcmp(re, data, size) == 0);
        free(re);
    }
    free(dec);
}

#endif
