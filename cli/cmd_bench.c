/*
 * cli/cmd_bench.c - `cloister bench`: a loopback load generator for
 * cloisterd (BENCHMARKS.md, "Daemon: events over CoAP + OSCORE").
 *
 * Setup (not part of the event figures, but timed and reported):
 *   1. as the owner (cli_ident_load + cli_ident_connect): POST /event-types
 *      {"name": TYPE}, then N x POST /pki/tokens (role device), pipelined
 *      over the owner's OSCORE context on the bench socket(s);
 *   2. enrollment: N devices IN PROCESS - a P-256 key generated in memory by
 *      the OpenSSL provider (no file per device), EDHOC with a kccs, POST
 *      /pki/enroll with the token -> a certificate ("enrollments/s");
 *   3. EDHOC again with the issued certificate named by x5t -> N OSCORE
 *      contexts. This round is timed on its own: "EDHOC handshakes/s
 *      through the daemon".
 *   Setup requests are CON and retransmitted (2 s, 4 times); up to
 *   --setup-window devices are in a handshake at once.
 *
 * Load: --window requests in flight in total over one or a few
 * non-blocking UDP sockets (poll, sendmmsg / recvmmsg), round-robin over
 * the devices; each a CON (or NON with --non) POST /events
 * {"type": TYPE, "properties": {"seq": n}} protected with the device's
 * OSCORE context. Responses are matched by token, unprotected, and must be
 * 2.04 with "accepted": 1; anything else is an error (never throughput).
 * Nothing is retransmitted: a request without an answer after 1 s is lost.
 * Latency per request (CLOCK_MONOTONIC ns) goes into a fixed array; p50 /
 * p99 / p99.9 at the end.
 *
 * --baseline: the same load with UNPROTECTED POST /events, no setup. Against
 * a daemon started with --bench-plain-events (benchmark only) the host
 * archives each payload as is through the same storage and commit path and
 * answers 2.04 {"accepted": 1}: the like-for-like baseline (the same work
 * minus the security). Against a normal daemon the core answers 4.01
 * "OSCORE required" without decrypting or archiving anything: the transport
 * ceiling. Both count as completed exchanges; the JSON says which
 * (baseline_archived / baseline_refused).
 *
 * --rss-pid PID (repeatable): VmRSS / VmHWM of those processes (cloisterd,
 * the cloister-core child) read from /proc/PID/status before the setup,
 * after the enrollment, after the N sessions exist, and after the load.
 *
 * Trust shortcut (a benchmark, not a client): the core's identity and CA
 * certificates come from the owner directory and are checked against the
 * owner root ONCE at setup; every handshake then only compares the x5t the
 * core sends with that identity (what a device with a pinned core would do).
 */
#define _GNU_SOURCE 1 /* recvmmsg, sendmmsg */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/cose.h"
#include "cloister/crypto_openssl.h"
#include "cloister/edhoc.h"
#include "cloister/oscore.h"
#include "pki.h"
#include "session.h"

#define B_DGRAM 1536
#define B_RECV_BATCH 64
#define B_MAX_SOCKS 16
#define B_MAX_RSS 4
#define B_SETUP_TIMEOUT_NS 2000000000ull
#define B_SETUP_TRIES 5
#define B_LOST_NS 1000000000ull
#define B_EDHOC_PATH ".well-known/edhoc"

enum { K_TOKEN = 1, K_M1, K_M3, K_ENROLL, K_EVENT };
enum { PH_TOKENS, PH_ENROLL, PH_HANDSHAKE };

typedef struct dev {
    cl_key_t key;
    uint8_t pub[65];
    uint8_t ccs[CLI_CCS_MAX];
    size_t ccs_len;
    uint8_t id_cred[CLI_CCS_MAX + 8]; /* {14: ccs} while enrolling, then {34: [-15, x5t]} */
    size_t id_cred_len;
    uint8_t *cert; /* bstr(cert DER) (CRED_I after enrollment); cert at cert + hdr */
    size_t cred_len;
    uint8_t token[16];
    bool have_token, enrolled, ready;
    cl_edhoc_auth_t auth;
    cl_edhoc_config_t ecfg;
    cl_edhoc_t edhoc;
    cl_oscore_ctx_t osc;
    bool have_osc;
    uint64_t seq;
} bdev_t;

typedef struct slot {
    bool used;
    uint8_t kind;
    uint8_t sock;
    uint8_t tries;
    uint32_t item; /* device (or token) index */
    uint64_t tok;
    uint64_t t0, deadline;
    cl_oscore_req_t oreq;
    size_t len;
    uint8_t *msg; /* the datagram as sent (retransmissions in setup) */
} slot_t;

typedef struct rss {
    uint64_t rss_kb[B_MAX_RSS], hwm_kb[B_MAX_RSS];
} rss_t;

typedef struct bench {
    const char *server, *type;
    unsigned per_req; /* events per request (an array when > 1) */
    uint64_t events;  /* events acknowledged (ok counts requests) */
    int pids[B_MAX_RSS];
    size_t n_pids;
    bool con, baseline, json;
    cli_net_t net[B_MAX_SOCKS];
    size_t n_socks;
    uint16_t mid[B_MAX_SOCKS];
    cl_crypto_t crypto; /* devices' keys and OSCORE contexts */
    bool have_crypto;
    /* owner */
    cl_oscore_ctx_t *owner_osc;
    /* the core, as pinned by the owner directory */
    uint8_t core_cred[CLI_CERT_MAX + 8];
    size_t core_cred_len;
    uint8_t core_x5t[8];
    uint8_t core_pub[65];
    cl_key_t core_key;
    int suites[1];
    char name_prefix[24];
    /* devices and in-flight exchanges */
    bdev_t *devs;
    size_t n_devs;
    slot_t *slots;
    uint32_t *free_stack;
    size_t n_slots, n_free;
    uint64_t tok_ctr;
    size_t active;       /* setup: items in progress */
    uint64_t setup_fail; /* setup: items that failed */
    char last_err[256];
    /* load */
    uint32_t *lat;
    size_t lat_cap, n_lat;
    uint64_t sent, ok, errors, lost, late, lat_dropped;
    uint64_t base_archived, base_refused; /* --baseline: 2.04 (daemon in plain mode) / 4.01 */
    uint64_t base_devs;                   /* --baseline: devices named in Uri-Query d=N */
} bench_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void rss_read(const bench_t *b, rss_t *r)
{
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < b->n_pids; i++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", b->pids[i]);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof line, f) != NULL) {
            unsigned long long v;
            if (sscanf(line, "VmRSS: %llu", &v) == 1)
                r->rss_kb[i] = v;
            else if (sscanf(line, "VmHWM: %llu", &v) == 1)
                r->hwm_kb[i] = v;
        }
        fclose(f);
    }
}

/* ---------------------------------------------------------- slots, sockets */

static slot_t *slot_take(bench_t *b)
{
    if (b->n_free == 0)
        return NULL;
    slot_t *s = &b->slots[b->free_stack[--b->n_free]];
    s->used = true;
    s->tries = 0;
    return s;
}

static void slot_put(bench_t *b, slot_t *s)
{
    s->used = false;
    b->free_stack[b->n_free++] = (uint32_t)(s - b->slots);
}

/* A token naming the slot (low 16 bits) and a counter, and the next message id. */
static void slot_ids(bench_t *b, slot_t *s, uint8_t token[8], uint16_t *mid)
{
    s->tok = (++b->tok_ctr << 16) | (uint64_t)(s - b->slots);
    for (int i = 0; i < 8; i++)
        token[i] = (uint8_t)(s->tok >> (56 - 8 * i));
    *mid = b->mid[s->sock]++;
}

static slot_t *slot_of_token(bench_t *b, const cl_coap_msg_t *m)
{
    uint64_t t = 0;
    if (m->tkl != 8)
        return NULL;
    for (int i = 0; i < 8; i++)
        t = t << 8 | m->token[i];
    size_t idx = (size_t)(t & 0xffffu);
    if (idx >= b->n_slots || !b->slots[idx].used || b->slots[idx].tok != t)
        return NULL;
    return &b->slots[idx];
}

/* CON/NON POST /p1[/p2] with Content-Format cf (< 0: none) and a payload. */
static bool build_post(uint8_t *out, size_t out_size, size_t *out_len, bool con, uint16_t mid,
                       const uint8_t token[8], const char *path, int cf, const char *query,
                       const uint8_t *p, size_t len)
{
    cl_coap_builder_t bld;
    cl_coap_build_init(&bld, out, out_size, con ? CL_COAP_CON : CL_COAP_NON, CL_COAP_POST, mid,
                       token, 8);
    while (path != NULL && *path != '\0') {
        const char *e = strchr(path, '/');
        size_t n = e != NULL ? (size_t)(e - path) : strlen(path);
        cl_coap_build_option(&bld, CL_COAP_OPT_URI_PATH, (const uint8_t *)path, n);
        path = e != NULL ? e + 1 : NULL;
    }
    if (cf >= 0)
        cl_coap_build_option_uint(&bld, CL_COAP_OPT_CONTENT_FORMAT, (uint32_t)cf);
    if (query != NULL)
        cl_coap_build_option(&bld, CL_COAP_OPT_URI_QUERY, (const uint8_t *)query, strlen(query));
    if (len > 0)
        cl_coap_build_payload(&bld, p, len);
    return cl_coap_build_finish(&bld, out_len) == CL_OK;
}

static void send_slot(bench_t *b, slot_t *s)
{
    if (send(b->net[s->sock].fd, s->msg, s->len, 0) < 0 && errno != EAGAIN && errno != EINTR)
        snprintf(b->last_err, sizeof b->last_err, "send: %s", strerror(errno));
}

/*
 * Builds a request for item (plain, or OSCORE-protected with ctx), sends it
 * and files it in a slot. Setup requests are always CON.
 */
static slot_t *submit(bench_t *b, uint8_t kind, uint32_t item, cl_oscore_ctx_t *ctx,
                      const char *path, int cf, const char *query, const uint8_t *p, size_t len,
                      bool con, bool send_now)
{
    uint8_t plain[B_DGRAM], token[8];
    uint16_t mid;
    size_t plain_len;
    slot_t *s = slot_take(b);

    if (s == NULL)
        return NULL;
    s->kind = kind;
    s->item = item;
    s->sock = (uint8_t)(item % b->n_socks);
    slot_ids(b, s, token, &mid);
    if (!build_post(ctx != NULL ? plain : s->msg, B_DGRAM, ctx != NULL ? &plain_len : &s->len, con,
                    mid, token, path, cf, query, p, len) ||
        (ctx != NULL && cl_oscore_protect_request(ctx, plain, plain_len, s->msg, B_DGRAM, &s->len,
                                                  &s->oreq) != CL_OK)) {
        snprintf(b->last_err, sizeof b->last_err, "cannot build or protect a request for /%s",
                 path);
        slot_put(b, s);
        return NULL;
    }
    s->t0 = now_ns();
    s->deadline = s->t0 + (kind == K_EVENT ? B_LOST_NS : B_SETUP_TIMEOUT_NS);
    if (send_now)
        send_slot(b, s);
    return s;
}

/* ---------------------------------------------------------- the core's credential */

static cl_status_t peer_cred(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                             size_t id_cred_len, cl_edhoc_peer_t *peer)
{
    bench_t *b = arg;
    const uint8_t *v, *h;
    size_t vlen, n, hl;
    int64_t alg;
    cl_cbor_dec_t d;

    (void)own_role;
    if (cl_cose_header_find(id_cred, id_cred_len, CL_COSE_HDR_X5T, &v, &vlen) != CL_OK)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    cl_cbor_dec_init(&d, v, vlen);
    if (cl_cbor_dec_array(&d, &n) != CL_OK || n != 2 || cl_cbor_dec_int(&d, &alg) != CL_OK ||
        cl_cbor_dec_bstr(&d, &h, &hl) != CL_OK || alg != -15 || hl != 8 ||
        memcmp(h, b->core_x5t, 8) != 0)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (peer->expected != CL_KEY_P256)
        return CL_FAIL(CL_ERR_AUTH);
    peer->cred = b->core_cred;
    peer->cred_len = b->core_cred_len;
    peer->key = b->core_key;
    memcpy(peer->pub, b->core_pub, 65);
    peer->pub_len = 65;
    return CL_OK;
}

/* ---------------------------------------------------------- setup steps */

static bool start_token(bench_t *b, uint32_t i)
{
    uint8_t p[96];
    size_t len;
    cl_cbor_enc_t e;

    cl_cbor_enc_init(&e, p, sizeof p);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "role");
    cl_cbor_enc_tstr_z(&e, "device");
    cl_cbor_enc_tstr_z(&e, "ttl");
    cl_cbor_enc_uint(&e, 3600);
    return cl_cbor_enc_finish(&e, &len) == CL_OK &&
           submit(b, K_TOKEN, i, b->owner_osc, "pki/tokens", 60, NULL, p, len, true, true) != NULL;
}

static bool start_edhoc(bench_t *b, uint32_t i)
{
    bdev_t *d = &b->devs[i];
    uint8_t body[1024], c_i;
    size_t m_len;

    d->auth = (cl_edhoc_auth_t){.id_cred = d->id_cred,
                                .id_cred_len = d->id_cred_len,
                                .cred = d->enrolled ? d->cert : d->ccs,
                                .cred_len = d->enrolled ? d->cred_len : d->ccs_len,
                                .key = d->key,
                                .type = CL_KEY_P256,
                                .static_dh = false};
    d->ecfg = (cl_edhoc_config_t){.crypto = &b->crypto,
                                  .suites = b->suites,
                                  .n_suites = 1,
                                  .auth = &d->auth,
                                  .n_auth = 1,
                                  .peer_cred = peer_cred,
                                  .peer_cred_arg = b};
    if (cl_random(&b->crypto, &c_i, 1) != CL_OK)
        return false;
    c_i %= 24;
    body[0] = 0xf5; /* message_1 (RFC 9528 A.2) */
    if (cl_edhoc_init(&d->edhoc, &d->ecfg, CL_EDHOC_INITIATOR, &c_i, 1) != CL_OK ||
        cl_edhoc_message_1(&d->edhoc, CL_EDHOC_METHOD_SIG_SIG, 2, NULL, 0, body + 1,
                           sizeof body - 1, &m_len) != CL_OK) {
        snprintf(b->last_err, sizeof b->last_err, "cannot start EDHOC");
        return false;
    }
    return submit(b, K_M1, i, NULL, B_EDHOC_PATH, CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ, NULL, body, m_len + 1,
                  true, true) != NULL;
}

static bool start_item(bench_t *b, int phase, uint32_t i)
{
    return phase == PH_TOKENS ? start_token(b, i) : start_edhoc(b, i);
}

static void fail_item(bench_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail_item(bench_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->last_err, sizeof b->last_err, fmt, ap);
    va_end(ap);
    b->setup_fail++;
    b->active--;
}

/* A setup response for slot s (already released); advances the item's state. */
static void setup_step(bench_t *b, uint8_t kind, uint32_t i, cl_oscore_req_t *oreq, uint8_t *resp,
                       size_t resp_len)
{
    cl_coap_msg_t m;
    uint8_t inner[B_DGRAM], out[1024];
    size_t inner_len, out_len;
    bdev_t *d = kind == K_TOKEN ? NULL : &b->devs[i];
    char c[5];

    if (cl_coap_parse(&m, resp, resp_len) != CL_OK) {
        fail_item(b, "malformed response");
        return;
    }
    if (kind == K_TOKEN || kind == K_ENROLL) {
        cl_oscore_ctx_t *ctx = kind == K_TOKEN ? b->owner_osc : &d->osc;
        if (cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) == NULL ||
            cl_oscore_unprotect_response(ctx, oreq, resp, resp_len, inner, sizeof inner,
                                         &inner_len) != CL_OK ||
            cl_coap_parse(&m, inner, inner_len) != CL_OK) {
            cl_coap_code_str(m.code, c);
            fail_item(b, "%s: unprotected %s or OSCORE failure",
                      kind == K_TOKEN ? "POST /pki/tokens" : "POST /pki/enroll", c);
            return;
        }
        if (m.code != CL_COAP_CREATED) {
            char core_err[200];
            cl_coap_code_str(m.code, c);
            cli_core_error(m.payload, m.payload_len, core_err, sizeof core_err);
            fail_item(b, "%s refused: %s %s",
                      kind == K_TOKEN ? "POST /pki/tokens" : "POST /pki/enroll", c, core_err);
            return;
        }
        if (kind == K_TOKEN) {
            const uint8_t *t;
            size_t tl;
            if (!cli_map_bstr(m.payload, m.payload_len, "token", &t, &tl) || tl != 16) {
                fail_item(b, "malformed token answer");
                return;
            }
            memcpy(b->devs[i].token, t, 16);
            b->devs[i].have_token = true;
            b->active--;
            return;
        }
        /* enrolled: keep the certificate, name it by x5t from now on */
        const uint8_t *cert;
        size_t cert_len;
        uint8_t x5t[8];
        cl_pki_cert_info_t info;
        cl_cbor_enc_t e;
        if (!cli_map_bstr(m.payload, m.payload_len, "cert", &cert, &cert_len) ||
            cl_pki_cert_parse(cert, cert_len, &info) != CL_OK ||
            memcmp(info.pub, d->pub, 65) != 0 || cl_pki_thumbprint(cert, cert_len, x5t) != CL_OK) {
            fail_item(b, "the enrollment answer holds no certificate for our key");
            return;
        }
        cl_cbor_enc_init(&e, d->cert, CLI_CERT_MAX + 8);
        cl_cbor_enc_bstr(&e, cert, cert_len);
        if (cl_cbor_enc_finish(&e, &d->cred_len) != CL_OK) {
            fail_item(b, "certificate too large");
            return;
        }
        cl_cbor_enc_init(&e, d->id_cred, sizeof d->id_cred);
        cl_cbor_enc_map(&e, 1);
        cl_cbor_enc_uint(&e, CL_COSE_HDR_X5T);
        cl_cbor_enc_array(&e, 2);
        cl_cbor_enc_int(&e, -15);
        cl_cbor_enc_bstr(&e, x5t, 8);
        if (cl_cbor_enc_finish(&e, &d->id_cred_len) != CL_OK) {
            fail_item(b, "x5t");
            return;
        }
        cl_oscore_ctx_free(&d->osc); /* the enrollee session's context */
        d->have_osc = false;
        d->enrolled = true;
        b->active--;
        return;
    }
    /* EDHOC */
    if (kind == K_M1) {
        uint8_t body[1024];
        size_t prefix_len, m3_len;
        if (m.code != CL_COAP_CHANGED ||
            cl_edhoc_process_message_2(&d->edhoc, m.payload, m.payload_len) != CL_OK) {
            cl_coap_code_str(m.code, c);
            cl_edhoc_free(&d->edhoc);
            fail_item(b, "EDHOC message_2 refused (%s)", c);
            return;
        }
        if (cl_edhoc_encode_cid(d->edhoc.c_r, d->edhoc.c_r_len, body, 16, &prefix_len) != CL_OK ||
            cl_edhoc_message_3(&d->edhoc, NULL, 0, body + prefix_len, sizeof body - prefix_len,
                               &m3_len) != CL_OK ||
            !submit(b, K_M3, i, NULL, B_EDHOC_PATH, CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ, NULL, body,
                    prefix_len + m3_len, true, true)) {
            cl_edhoc_free(&d->edhoc);
            fail_item(b, "cannot send EDHOC message_3");
        }
        return;
    }
    if (kind == K_M3) {
        uint8_t ms[16], salt[8];
        cl_oscore_params_t params;
        bool ok = m.code == CL_COAP_CHANGED &&
                  (m.payload_len == 0 ||
                   cl_edhoc_process_message_4(&d->edhoc, m.payload, m.payload_len) == CL_OK) &&
                  cl_edhoc_oscore_params(&d->edhoc, ms, salt, &params) == CL_OK &&
                  cl_oscore_ctx_init(&d->osc, &b->crypto, &params) == CL_OK;
        cl_wipe(ms, sizeof ms);
        cl_wipe(salt, sizeof salt);
        cl_wipe(&params, sizeof params);
        cl_edhoc_free(&d->edhoc);
        if (!ok) {
            cl_coap_code_str(m.code, c);
            fail_item(b, "EDHOC message_3 refused (%s)", c);
            return;
        }
        d->have_osc = true;
        if (d->enrolled) {
            d->ready = true;
            b->active--;
            return;
        }
        /* POST /pki/enroll {token, name} on the enrollee session */
        char name[48];
        cl_cbor_enc_t e;
        snprintf(name, sizeof name, "%s-%" PRIu32, b->name_prefix, i);
        cl_cbor_enc_init(&e, out, sizeof out);
        cl_cbor_enc_map(&e, 2);
        cl_cbor_enc_tstr_z(&e, "token");
        cl_cbor_enc_bstr(&e, d->token, 16);
        cl_cbor_enc_tstr_z(&e, "name");
        cl_cbor_enc_tstr_z(&e, name);
        if (cl_cbor_enc_finish(&e, &out_len) != CL_OK ||
            !submit(b, K_ENROLL, i, &d->osc, "pki/enroll", 60, NULL, out, out_len, true, true))
            fail_item(b, "cannot send POST /pki/enroll");
        cl_wipe(out, sizeof out);
        return;
    }
    fail_item(b, "unexpected response");
}

/* Reads what is waiting on every socket; calls fn for each datagram. */
typedef void (*rx_fn)(bench_t *b, size_t sock, uint8_t *dgram, size_t len, uint64_t now);

static uint8_t (*rx_bufs)[B_DGRAM];

static void receive_all(bench_t *b, rx_fn fn)
{
    struct mmsghdr mm[B_RECV_BATCH];
    struct iovec iov[B_RECV_BATCH];

    for (size_t k = 0; k < b->n_socks; k++) {
        for (;;) {
            for (size_t j = 0; j < B_RECV_BATCH; j++) {
                iov[j] = (struct iovec){.iov_base = rx_bufs[j], .iov_len = B_DGRAM};
                memset(&mm[j], 0, sizeof mm[j]);
                mm[j].msg_hdr.msg_iov = &iov[j];
                mm[j].msg_hdr.msg_iovlen = 1;
            }
            int n = recvmmsg(b->net[k].fd, mm, B_RECV_BATCH, MSG_DONTWAIT, NULL);
            if (n <= 0)
                break;
            uint64_t now = now_ns();
            for (int j = 0; j < n; j++)
                if (!(mm[j].msg_hdr.msg_flags & MSG_TRUNC))
                    fn(b, k, rx_bufs[j], mm[j].msg_len, now);
            if (n < B_RECV_BATCH)
                break;
        }
    }
}

/* The message layer: empty ACKs ignored, a separate CON response acknowledged. */
static bool message_layer(bench_t *b, size_t sock, const uint8_t *dg, size_t len, cl_coap_msg_t *m)
{
    if (cl_coap_parse(m, dg, len) != CL_OK)
        return false;
    if (m->code == CL_COAP_EMPTY)
        return false;
    if (m->type == CL_COAP_CON) {
        uint8_t ack[4] = {0x60, 0x00, (uint8_t)(m->mid >> 8), (uint8_t)m->mid};
        (void)send(b->net[sock].fd, ack, sizeof ack, 0);
    }
    return true;
}

static void setup_rx(bench_t *b, size_t sock, uint8_t *dg, size_t len, uint64_t now)
{
    cl_coap_msg_t m;
    (void)now;
    if (!message_layer(b, sock, dg, len, &m))
        return;
    slot_t *s = slot_of_token(b, &m);
    if (s == NULL)
        return;
    uint8_t kind = s->kind;
    uint32_t item = s->item;
    cl_oscore_req_t oreq = s->oreq;
    slot_put(b, s);
    setup_step(b, kind, item, &oreq, dg, len);
}

/* Runs one setup phase over items [0, n) with up to window at once; false if none succeeded. */
static bool run_phase(bench_t *b, int phase, size_t n, size_t window, const bool *skip,
                      uint64_t *elapsed_ns)
{
    size_t next = 0;
    uint64_t t0 = now_ns();

    b->active = 0;
    while (next < n || b->active > 0) {
        while (b->active < window && next < n && b->n_free > 0) {
            uint32_t i = (uint32_t)next++;
            if (skip != NULL && skip[i])
                continue;
            if (start_item(b, phase, i))
                b->active++;
            else
                b->setup_fail++;
        }
        struct pollfd p[B_MAX_SOCKS];
        for (size_t k = 0; k < b->n_socks; k++)
            p[k] = (struct pollfd){.fd = b->net[k].fd, .events = POLLIN};
        (void)poll(p, b->n_socks, 20);
        receive_all(b, setup_rx);
        uint64_t now = now_ns();
        for (size_t k = 0; k < b->n_slots; k++) {
            slot_t *s = &b->slots[k];
            if (!s->used || now < s->deadline)
                continue;
            if (++s->tries >= B_SETUP_TRIES) {
                if (s->kind != K_TOKEN)
                    cl_edhoc_free(&b->devs[s->item].edhoc);
                slot_put(b, s);
                fail_item(b, "no response after %d transmissions", B_SETUP_TRIES);
                continue;
            }
            s->deadline = now + (B_SETUP_TIMEOUT_NS << s->tries);
            send_slot(b, s); /* same message id: the daemon's dedup answers it */
        }
    }
    *elapsed_ns = now_ns() - t0;
    return true;
}

/* ---------------------------------------------------------- load */

static void load_rx(bench_t *b, size_t sock, uint8_t *dg, size_t len, uint64_t now)
{
    cl_coap_msg_t m;
    uint8_t inner[B_DGRAM];
    size_t inner_len;
    bool ok;

    if (!message_layer(b, sock, dg, len, &m))
        return;
    slot_t *s = slot_of_token(b, &m);
    if (s == NULL) {
        b->late++;
        return;
    }
    uint64_t lat = now - s->t0;
    if (b->baseline) { /* plain mode archives and answers 2.04; the core refuses: 4.01 */
        uint64_t acc = 0;
        bool archived = m.code == CL_COAP_CHANGED &&
                        cli_map_uint(m.payload, m.payload_len, "accepted", &acc) && acc == 1;
        ok = archived || m.code == CL_COAP_UNAUTHORIZED;
        b->base_archived += archived;
        b->base_refused += m.code == CL_COAP_UNAUTHORIZED;
    } else {
        bdev_t *d = &b->devs[s->item];
        uint64_t acc = 0;
        ok = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) != NULL &&
             cl_oscore_unprotect_response(&d->osc, &s->oreq, dg, len, inner, sizeof inner,
                                          &inner_len) == CL_OK &&
             cl_coap_parse(&m, inner, inner_len) == CL_OK && m.code == CL_COAP_CHANGED &&
             cli_map_uint(m.payload, m.payload_len, "accepted", &acc) && acc == b->per_req;
        if (!ok && b->last_err[0] == '\0') {
            char c[5];
            cl_coap_code_str(m.code, c);
            snprintf(b->last_err, sizeof b->last_err, "an event answered %s", c);
        }
    }
    if (ok) {
        b->ok++;
        b->events += b->baseline ? 1 : b->per_req;
        if (b->n_lat < b->lat_cap)
            b->lat[b->n_lat++] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
        else
            b->lat_dropped++;
    } else {
        b->errors++;
    }
    slot_put(b, s);
}

/* Builds (and files) one event request; the caller sends it. */
static slot_t *new_event(bench_t *b, uint32_t dev)
{
    uint8_t p[1400];
    size_t len;
    cl_cbor_enc_t e;
    bdev_t *d = b->baseline ? NULL : &b->devs[dev];
    unsigned n = b->baseline ? 1 : b->per_req;

    cl_cbor_enc_init(&e, p, sizeof p);
    if (n > 1) /* several readings in one message: POST /events takes an array */
        cl_cbor_enc_array(&e, n);
    for (unsigned i = 0; i < n; i++) {
        uint64_t seq = b->baseline ? b->sent : d->seq++;
        cl_cbor_enc_map(&e, 2);
        cl_cbor_enc_tstr_z(&e, "type");
        cl_cbor_enc_tstr_z(&e, b->type);
        cl_cbor_enc_tstr_z(&e, "properties");
        cl_cbor_enc_map(&e, 1);
        cl_cbor_enc_tstr_z(&e, "seq");
        cl_cbor_enc_uint(&e, seq);
    }
    if (cl_cbor_enc_finish(&e, &len) != CL_OK)
        return NULL;
    /* baseline: which simulated device sends it (the plain mode tags the archive row by it,
     * as the secure path tags by the authenticated source) */
    char q[24];
    if (b->baseline)
        snprintf(q, sizeof q, "d=%" PRIu64, b->sent % (b->base_devs ? b->base_devs : 1));
    return submit(b, K_EVENT, dev, d != NULL ? &d->osc : NULL, "events", 60,
                  b->baseline ? q : NULL, p, len, b->con, false);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(const uint32_t *v, size_t n, double q)
{
    if (n == 0)
        return 0.0;
    size_t k = (size_t)(q * (double)(n - 1) + 0.5);
    return (double)v[k] / 1e6;
}

static bool run_load(bench_t *b, const uint32_t *ready, size_t n_ready, size_t window,
                     double seconds, uint64_t *elapsed_ns)
{
    struct mmsghdr mm[B_MAX_SOCKS][B_RECV_BATCH];
    struct iovec iov[B_MAX_SOCKS][B_RECV_BATCH];
    size_t n_out[B_MAX_SOCKS];
    size_t rr = 0;
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), last_sweep = t0;

    for (;;) {
        uint64_t now = now_ns();
        bool sending = now < end;
        if (!sending && b->n_free == b->n_slots)
            break;
        if (sending) {
            memset(n_out, 0, sizeof n_out);
            size_t in_flight = b->n_slots - b->n_free;
            while (in_flight < window) {
                uint32_t dev = b->baseline ? (uint32_t)(rr % b->n_socks) : ready[rr % n_ready];
                rr++;
                slot_t *s = new_event(b, dev);
                if (s == NULL)
                    return false;
                size_t k = s->sock, j = n_out[k];
                iov[k][j] = (struct iovec){.iov_base = s->msg, .iov_len = s->len};
                memset(&mm[k][j], 0, sizeof mm[k][j]);
                mm[k][j].msg_hdr.msg_iov = &iov[k][j];
                mm[k][j].msg_hdr.msg_iovlen = 1;
                n_out[k]++;
                b->sent++;
                in_flight++;
                if (n_out[k] == B_RECV_BATCH) {
                    (void)sendmmsg(b->net[k].fd, mm[k], B_RECV_BATCH, 0);
                    n_out[k] = 0;
                }
            }
            for (size_t k = 0; k < b->n_socks; k++)
                if (n_out[k] > 0) {
                    size_t done = 0;
                    while (done < n_out[k]) {
                        int r =
                            sendmmsg(b->net[k].fd, mm[k] + done, (unsigned)(n_out[k] - done), 0);
                        if (r <= 0)
                            break; /* dropped: becomes lost after 1 s */
                        done += (size_t)r;
                    }
                }
        }
        struct pollfd p[B_MAX_SOCKS];
        for (size_t k = 0; k < b->n_socks; k++)
            p[k] = (struct pollfd){.fd = b->net[k].fd, .events = POLLIN};
        (void)poll(p, b->n_socks, 10);
        receive_all(b, load_rx);
        now = now_ns();
        if (now - last_sweep > 50000000u || (!sending && b->n_free != b->n_slots)) {
            last_sweep = now;
            for (size_t k = 0; k < b->n_slots; k++)
                if (b->slots[k].used && now >= b->slots[k].deadline) {
                    b->lost++;
                    slot_put(b, &b->slots[k]);
                }
        }
    }
    *elapsed_ns = now_ns() - t0;
    return true;
}

/* ---------------------------------------------------------- the command */

static bool owner_setup(bench_t *b, cli_ident_t *id, cli_session_t *s, char *err, size_t err_size)
{
    cl_pki_cert_info_t info;
    int64_t now = (int64_t)time(NULL);
    cl_cbor_enc_t e;

    if (id->identity_len == 0 || id->ca_len == 0) {
        cli_err(err, err_size, "the owner directory has no core-identity.pem / core-ca.pem");
        return false;
    }
    if (cl_pki_verify_issued(id->ca, id->ca_len, id->root, id->root_len, now) != CL_OK ||
        cl_pki_verify_issued(id->identity, id->identity_len, id->root, id->root_len, now) !=
            CL_OK ||
        cl_pki_cert_parse(id->identity, id->identity_len, &info) != CL_OK ||
        cl_pki_thumbprint(id->identity, id->identity_len, b->core_x5t) != CL_OK) {
        cli_err(err, err_size, "the core certificates of the owner directory do not verify");
        return false;
    }
    memcpy(b->core_pub, info.pub, 65);
    cl_cbor_enc_init(&e, b->core_cred, sizeof b->core_cred);
    cl_cbor_enc_bstr(&e, id->identity, id->identity_len);
    if (cl_cbor_enc_finish(&e, &b->core_cred_len) != CL_OK ||
        b->crypto.ops->key_import_public(b->crypto.self, CL_KEY_P256, b->core_pub, 65,
                                         &b->core_key) != CL_OK) {
        cli_err(err, err_size, "cannot import the core identity key");
        return false;
    }
    b->owner_osc = &s->oscore;
    return true;
}

static void print_rss(const bench_t *b, const char *what, const rss_t *r)
{
    for (size_t i = 0; i < b->n_pids; i++)
        printf("  rss %-9s pid %d: VmRSS %" PRIu64 " KiB (VmHWM %" PRIu64 " KiB)\n", what,
               b->pids[i], r->rss_kb[i], r->hwm_kb[i]);
}

static void json_rss(const bench_t *b, const char *what, const rss_t *r, bool comma)
{
    printf("\"%s\": [", what);
    for (size_t i = 0; i < b->n_pids; i++)
        printf("%s{\"pid\": %d, \"rss_kb\": %" PRIu64 ", \"hwm_kb\": %" PRIu64 "}", i ? ", " : "",
               b->pids[i], r->rss_kb[i], r->hwm_kb[i]);
    printf("]%s", comma ? ", " : "");
}

int cli_cmd_bench(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--server", true, false, {0}, 0},       {"--owner", true, false, {0}, 0},
                        {"--devices", true, false, {0}, 0},      {"--seconds", true, false, {0}, 0},
                        {"--window", true, false, {0}, 0},       {"--type", true, false, {0}, 0},
                        {"--baseline", false, false, {0}, 0},    {"--json", false, false, {0}, 0},
                        {"--non", false, false, {0}, 0},         {"--sockets", true, false, {0}, 0},
                        {"--setup-window", true, false, {0}, 0}, {"--rss-pid", true, true, {0}, 0},
                        {"--ready-file", true, false, {0}, 0},   {"--per-request", true, false, {0}, 0}};
    const char *pos[1];
    size_t n_pos;
    char err[700];
    uint64_t n_devs = 1000, seconds = 10, window = 64, n_socks = 1, setup_window = 32, per_req = 1;
    bench_t *b = calloc(1, sizeof *b);
    cli_ident_t *id = calloc(1, sizeof *id);
    cli_session_t *s = calloc(1, sizeof *s);
    uint32_t *ready = NULL;
    int rc = CLI_EXIT_ERROR;
    uint64_t t_tokens = 0, t_enroll = 0, t_hs = 0, t_load = 0, t_setup0 = 0, t_setup = 0;
    size_t n_ready = 0, n_enrolled = 0;
    rss_t r_start, r_enrolled, r_sessions, r_end;

    rx_bufs = malloc(sizeof *rx_bufs * B_RECV_BATCH);
    if (b == NULL || id == NULL || s == NULL || rx_bufs == NULL)
        goto done;
    switch (cli_parse(argc, argv, 2, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf(
            "usage: cloister bench --server coap://HOST:PORT --owner DIR [--devices 1000]\n"
            "                      [--seconds 10] [--window 64] [--type bench] [--baseline]\n"
            "                      [--non] [--sockets 1] [--setup-window 32] [--rss-pid PID]\n"
            "                      [--json]\n"
            "Load generator for cloisterd on loopback. Setup (timed, reported separately): as\n"
            "the owner of DIR create the event type and N enrollment tokens, enroll N devices\n"
            "in process (keys in memory; EDHOC with a kccs, POST /pki/enroll), then EDHOC\n"
            "again with each certificate by x5t (handshakes/s). Load: --window OSCORE POST\n"
            "/events in flight in total, round-robin over the devices, for --seconds; each\n"
            "answer must be 2.04 {\"accepted\": 1}. Nothing is retransmitted; no answer\n"
            "within 1 s = lost. Prints events/s, p50/p99/p99.9 latency, errors, lost.\n"
            "--per-request N sends N events per message (an array; default 1).\n"
            "  --baseline      unprotected POST /events instead, no setup: archived by a\n"
            "                  daemon run with --bench-plain-events (the like-for-like\n"
            "                  baseline), else answered 4.01 by the core (transport only)\n"
            "  --non           NON requests (default CON, answered with a piggybacked ACK)\n"
            "  --sockets N     UDP sockets (1..16) the requests are spread over\n"
            "  --rss-pid PID   report VmRSS/VmHWM of PID before/after the sessions (repeatable)\n"
            "  --ready-file F  create F when the setup is done and the load starts\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    b->server = cli_val(opts, N_OPTS(opts), "--server");
    const char *owner = cli_val(opts, N_OPTS(opts), "--owner");
    b->type = cli_val(opts, N_OPTS(opts), "--type");
    if (b->type == NULL)
        b->type = "bench";
    b->baseline = cli_has(opts, N_OPTS(opts), "--baseline");
    b->json = cli_has(opts, N_OPTS(opts), "--json");
    b->con = !cli_has(opts, N_OPTS(opts), "--non");
    b->per_req = 1;
    if (b->server == NULL || (owner == NULL && !b->baseline)) {
        cli_fail("--server and --owner are required (try --help)");
        goto done;
    }
    if ((cli_val(opts, N_OPTS(opts), "--devices") &&
         !cli_parse_u64(cli_val(opts, N_OPTS(opts), "--devices"), 1, 50000, &n_devs)) ||
        (cli_val(opts, N_OPTS(opts), "--seconds") &&
         !cli_parse_u64(cli_val(opts, N_OPTS(opts), "--seconds"), 1, 3600, &seconds)) ||
        (cli_val(opts, N_OPTS(opts), "--window") &&
         !cli_parse_u64(cli_val(opts, N_OPTS(opts), "--window"), 1, 8192, &window)) ||
        (cli_val(opts, N_OPTS(opts), "--sockets") &&
         !cli_parse_u64(cli_val(opts, N_OPTS(opts), "--sockets"), 1, B_MAX_SOCKS, &n_socks)) ||
        (cli_val(opts, N_OPTS(opts), "--setup-window") &&
         !cli_parse_u64(cli_val(opts, N_OPTS(opts), "--setup-window"), 1, 4096, &setup_window)) ||
        (cli_val(opts, N_OPTS(opts), "--per-request") &&
         !cli_parse_u64(cli_val(opts, N_OPTS(opts), "--per-request"), 1, 32, &per_req))) {
        cli_fail("--devices 1..50000, --seconds 1..3600, --window 1..8192, --sockets 1..16, "
                 "--setup-window 1..4096, --per-request 1..32");
        goto done;
    }
    b->per_req = (unsigned)per_req;
    cli_opt_t *pids = cli_opt(opts, N_OPTS(opts), "--rss-pid");
    for (size_t i = 0; i < pids->n && i < B_MAX_RSS; i++) {
        uint64_t v;
        if (!cli_parse_u64(pids->vals[i], 1, 4194304, &v)) {
            cli_fail("--rss-pid: a process id");
            goto done;
        }
        b->pids[b->n_pids++] = (int)v;
    }
    if (cl_crypto_openssl_new(&b->crypto, 0) != CL_OK) {
        cli_fail("cannot create the crypto provider");
        goto done;
    }
    b->have_crypto = true;
    b->suites[0] = 2;
    b->n_socks = n_socks;
    b->n_devs = b->baseline ? 0 : n_devs;
    b->base_devs = n_devs;
    b->n_slots = window > setup_window ? window : setup_window;
    if (b->n_slots < 16)
        b->n_slots = 16;
    b->slots = calloc(b->n_slots, sizeof *b->slots);
    b->free_stack = calloc(b->n_slots, sizeof *b->free_stack);
    b->lat_cap = (size_t)seconds * 400000u;
    b->lat = calloc(b->lat_cap, sizeof *b->lat);
    if (b->slots == NULL || b->free_stack == NULL || b->lat == NULL)
        goto oom;
    for (size_t i = 0; i < b->n_slots; i++) {
        if ((b->slots[i].msg = malloc(B_DGRAM)) == NULL)
            goto oom;
        b->free_stack[b->n_free++] = (uint32_t)(b->n_slots - 1 - i);
    }
    for (size_t k = 0; k < n_socks; k++) {
        int sz = 8 << 20;
        if (!cli_net_open(&b->net[k], b->server, &b->crypto, err, sizeof err)) {
            cli_fail("%s", err);
            goto done;
        }
        (void)setsockopt(b->net[k].fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        (void)setsockopt(b->net[k].fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        (void)fcntl(b->net[k].fd, F_SETFL, fcntl(b->net[k].fd, F_GETFL) | O_NONBLOCK);
        b->mid[k] = b->net[k].next_mid;
    }
    rss_read(b, &r_start);
    r_enrolled = r_sessions = r_start;

    if (!b->baseline) {
        uint8_t rnd[4];
        t_setup0 = now_ns();
        if (!cli_ident_load(id, owner, true, err, sizeof err)) {
            cli_fail("%s", err);
            goto done;
        }
        if ((rc = cli_ident_connect(id, b->server, true, s)) != CLI_EXIT_OK)
            goto done;
        rc = CLI_EXIT_ERROR;
        if (!owner_setup(b, id, s, err, sizeof err)) {
            cli_fail("%s", err);
            goto done;
        }
        /* the event type (create or update: idempotent) */
        uint8_t p[128], out[512];
        size_t len, out_len;
        cl_cbor_enc_t e;
        cl_cbor_enc_init(&e, p, sizeof p);
        cl_cbor_enc_map(&e, 1);
        cl_cbor_enc_tstr_z(&e, "name");
        cl_cbor_enc_tstr_z(&e, b->type);
        if (cl_cbor_enc_finish(&e, &len) != CL_OK ||
            (rc = cli_session_call(s, "POST /event-types", CL_COAP_POST, "/event-types", p, len,
                                   out, sizeof out, &out_len)) != CLI_EXIT_OK)
            goto done;
        rc = CLI_EXIT_ERROR;
        if (cl_random(&b->crypto, rnd, sizeof rnd) != CL_OK)
            goto done;
        snprintf(b->name_prefix, sizeof b->name_prefix, "bench-%02x%02x%02x%02x", rnd[0], rnd[1],
                 rnd[2], rnd[3]);
        /* devices: keys in memory */
        b->devs = calloc(n_devs, sizeof *b->devs);
        ready = calloc(n_devs, sizeof *ready);
        if (b->devs == NULL || ready == NULL)
            goto oom;
        for (size_t i = 0; i < n_devs; i++) {
            bdev_t *d = &b->devs[i];
            size_t pub_len;
            char name[48];
            cl_cbor_enc_t ee;
            snprintf(name, sizeof name, "%s-%zu", b->name_prefix, i);
            if ((d->cert = malloc(CLI_CERT_MAX + 8)) == NULL)
                goto oom;
            if (b->crypto.ops->key_generate(b->crypto.self, CL_KEY_P256,
                                            CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY, &d->key,
                                            d->pub, sizeof d->pub, &pub_len) != CL_OK ||
                pub_len != 65 ||
                !cli_ccs_encode(d->pub, name, d->ccs, sizeof d->ccs, &d->ccs_len)) {
                cli_fail("cannot generate device keys");
                goto done;
            }
            cl_cbor_enc_init(&ee, d->id_cred, sizeof d->id_cred);
            cl_cbor_enc_map(&ee, 1);
            cl_cbor_enc_uint(&ee, 14); /* kccs */
            cl_cbor_enc_raw(&ee, d->ccs, d->ccs_len);
            if (cl_cbor_enc_finish(&ee, &d->id_cred_len) != CL_OK)
                goto oom;
        }
        /* tokens: pipelined over the owner's context (its replay window is 32) */
        run_phase(b, PH_TOKENS, n_devs, 16, NULL, &t_tokens);
        bool *skip = calloc(n_devs, sizeof *skip);
        if (skip == NULL)
            goto oom;
        for (size_t i = 0; i < n_devs; i++)
            skip[i] = !b->devs[i].have_token;
        run_phase(b, PH_ENROLL, n_devs, setup_window, skip, &t_enroll);
        for (size_t i = 0; i < n_devs; i++) {
            skip[i] = !b->devs[i].enrolled;
            n_enrolled += b->devs[i].enrolled;
        }
        rss_read(b, &r_enrolled);
        run_phase(b, PH_HANDSHAKE, n_devs, setup_window, skip, &t_hs);
        free(skip);
        rss_read(b, &r_sessions);
        for (size_t i = 0; i < n_devs; i++)
            if (b->devs[i].ready)
                ready[n_ready++] = (uint32_t)i;
        t_setup = now_ns() - t_setup0;
        if (n_ready == 0) {
            cli_fail("no device completed the setup: %s", b->last_err);
            goto done;
        }
        if (!b->json)
            printf("setup: %zu tokens in %.2f s, %zu/%zu enrolled in %.2f s (%.0f enrollments/s), "
                   "%zu handshakes (x5t) in %.2f s (%.0f handshakes/s); setup total %.2f s%s%s\n",
                   (size_t)n_devs, t_tokens / 1e9, n_enrolled, (size_t)n_devs, t_enroll / 1e9,
                   n_enrolled / (t_enroll / 1e9), n_ready, t_hs / 1e9, n_ready / (t_hs / 1e9),
                   t_setup / 1e9, b->setup_fail ? "; last failure: " : "",
                   b->setup_fail ? b->last_err : "");
    }
    b->last_err[0] = '\0';
    const char *ready_file = cli_val(opts, N_OPTS(opts), "--ready-file");
    if (ready_file != NULL) { /* tells a profiler that the load starts now */
        FILE *f = fopen(ready_file, "w");
        if (f != NULL)
            fclose(f);
    }
    if (!run_load(b, ready, n_ready, window, (double)seconds, &t_load)) {
        cli_fail("load: %s", b->last_err);
        goto done;
    }
    rss_read(b, &r_end);
    qsort(b->lat, b->n_lat, sizeof *b->lat, cmp_u32);
    double secs = t_load / 1e9, rate = (double)b->events / secs, req_rate = (double)b->ok / secs;
    double p50 = pct_ms(b->lat, b->n_lat, 0.50), p99 = pct_ms(b->lat, b->n_lat, 0.99),
           p999 = pct_ms(b->lat, b->n_lat, 0.999);
    if (b->json) {
        printf("{\"mode\": \"%s\", \"type\": \"%s\", \"con\": %s, \"devices\": %zu, "
               "\"window\": %" PRIu64 ", \"sockets\": %zu, \"seconds\": %.3f, ",
               b->baseline ? "baseline" : "secure", b->type, b->con ? "true" : "false",
               b->baseline ? 0 : n_ready, window, b->n_socks, secs);
        printf("\"sent\": %" PRIu64 ", \"ok\": %" PRIu64 ", \"errors\": %" PRIu64
               ", \"lost\": %" PRIu64 ", \"late\": %" PRIu64 ", \"events_per_s\": %.1f, "
               "\"requests_per_s\": %.1f, \"events_per_request\": %u, "
               "\"p50_ms\": %.4f, \"p99_ms\": %.4f, \"p999_ms\": %.4f, ",
               b->sent, b->ok, b->errors, b->lost, b->late, rate, req_rate, b->per_req, p50, p99,
               p999);
        if (b->baseline)
            printf("\"baseline_archived\": %" PRIu64 ", \"baseline_refused\": %" PRIu64 ", ",
                   b->base_archived, b->base_refused);
        if (!b->baseline) {
            printf("\"setup\": {\"tokens_s\": %.3f, \"enrolled\": %zu, \"enroll_s\": %.3f, "
                   "\"enroll_per_s\": %.1f, \"handshakes\": %zu, \"handshake_s\": %.3f, "
                   "\"handshakes_per_s\": %.1f, \"total_s\": %.3f, \"failures\": %" PRIu64 "}, ",
                   t_tokens / 1e9, n_enrolled, t_enroll / 1e9, n_enrolled / (t_enroll / 1e9),
                   n_ready, t_hs / 1e9, n_ready / (t_hs / 1e9), t_setup / 1e9, b->setup_fail);
        }
        printf("\"rss\": {");
        json_rss(b, "start", &r_start, true);
        json_rss(b, "enrolled", &r_enrolled, true);
        json_rss(b, "sessions", &r_sessions, true);
        json_rss(b, "end", &r_end, false);
        printf("}}\n");
    } else {
        printf("load (%s, %s, window %" PRIu64 ", %zu socket%s, %zu device%s): %.2f s\n",
               !b->baseline ? "OSCORE POST /events, archived"
               : b->base_archived > 0
                   ? "BASELINE: unprotected POST /events archived by the host (--bench-plain-events)"
                   : "BASELINE: unprotected POST /events, answered 4.01, nothing archived",
               b->con ? "CON" : "NON", window, b->n_socks, b->n_socks == 1 ? "" : "s",
               b->baseline ? b->n_socks : n_ready,
               (b->baseline ? b->n_socks : n_ready) == 1 ? "" : "s", secs);
        printf("  events/s  %.0f  (requests/s %.0f, %u event%s per request)\n"
               "  latency   p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms\n",
               rate, req_rate, b->per_req, b->per_req == 1 ? "" : "s", p50, p99, p999);
        printf("  sent %" PRIu64 "  ok %" PRIu64 "  errors %" PRIu64 "  lost %" PRIu64
               "  late %" PRIu64 "%s%s\n",
               b->sent, b->ok, b->errors, b->lost, b->late, b->last_err[0] ? "  last error: " : "",
               b->last_err);
        if (b->n_pids > 0) {
            print_rss(b, "start", &r_start);
            if (!b->baseline) {
                print_rss(b, "enrolled", &r_enrolled);
                print_rss(b, "sessions", &r_sessions);
            }
            print_rss(b, "end", &r_end);
        }
    }
    rc = (b->ok > 0 && b->errors == 0) ? CLI_EXIT_OK : CLI_EXIT_REFUSED;
    goto done;
oom:
    cli_fail("out of memory");
done:
    if (b != NULL) {
        for (size_t i = 0; b->devs != NULL && i < b->n_devs; i++) {
            bdev_t *d = &b->devs[i];
            cl_edhoc_free(&d->edhoc);
            cl_oscore_ctx_free(&d->osc);
            if (d->key != CL_KEY_NONE)
                cl_key_destroy(&b->crypto, d->key);
            free(d->cert);
        }
        for (size_t i = 0; b->slots != NULL && i < b->n_slots; i++)
            free(b->slots[i].msg);
        for (size_t k = 0; k < B_MAX_SOCKS; k++)
            cli_net_close(&b->net[k]);
        if (b->core_key != CL_KEY_NONE)
            cl_key_destroy(&b->crypto, b->core_key);
        if (b->have_crypto)
            cl_crypto_openssl_free(&b->crypto);
        free(b->devs);
        free(b->slots);
        free(b->free_stack);
        free(b->lat);
    }
    if (s != NULL)
        cli_session_close(s);
    if (id != NULL)
        cli_ident_free(id);
    free(ready);
    free(rx_bufs);
    free(s);
    free(id);
    free(b);
    return rc;
}
