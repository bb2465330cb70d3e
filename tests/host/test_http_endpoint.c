/*
 * test_http_endpoint.c - cloisterd's HTTP endpoint (host/http_endpoint.c) on
 * loopback with a fake core handler, driven from this thread (the endpoint
 * has no threads of its own): the HTTP -> CoAP mapping of OSCORE (RFC 8613
 * section 11), EDHOC, /attestation (Block2 joined by the host) and the PKI
 * bootstrap POSTs, the CoAP -> HTTP status mapping (RFC 8075 section 7),
 * /healthz and /metrics, the limits (413/405/404/415, bad OSCORE header,
 * garbage), many connections, a slow client dropped after the idle timeout
 * while others are served, core failures (503) and silence (504).
 *
 * Long polls (CL_BATCH_F_DEFER): answered by a later send (mapped like any
 * answer), 504 after the poll timeout, 503 past the poll cap, a send for an
 * unknown/expired peer dropped and counted; sends made during a batch are
 * held until the batch (and its commit) returned - a poll deferred in the
 * same batch is answered - and dropped when it failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cloister/coap.h"
#include "cloister/core.h"
#include "http_endpoint.h"

/* ------------------------------------------------------------ fake core */

typedef struct fake_core {
    int calls;
    size_t items, max_batch;
    bool fail, silent;
    uint8_t answer_code; /* for plain requests (0 = default per route) */
    size_t att_len;      /* /attestation body length */
    /* the last request seen */
    uint64_t peer;
    uint16_t transport;
    uint8_t code;
    char path[64];
    char query[160];
    int cf;
    uint8_t oscore[32];
    int oscore_len; /* -1: no OSCORE option */
    uint8_t payload[CL_CORE_MAX_MESSAGE];
    size_t payload_len;
    int block2; /* -1 none, else num */
    /* long polls */
    bool defer;          /* defer every OSCORE request (len 0 + CL_BATCH_F_DEFER) */
    cl_http_t *ep;       /* for cl_http_send from inside the handler */
    uint64_t deferred[64];
    size_t ndeferred;
    bool send_prev;      /* inside the handler: answer every poll deferred so far */
    bool item_prev;      /* the same as extra (non-positional) items of the response batch */
    int sent_in_batch;   /* sends made inside the handler */
    uint64_t answered_in_batch; /* polls_answered seen inside the handler (must stay 0) */
} fake_core_t;

/* The core's answer to a long poll: an OSCORE-protected 2.05 (outer 2.04) with a payload. */
static size_t poll_answer(uint8_t *out, size_t size, uint64_t peer, const char *body)
{
    cl_coap_builder_t b;
    uint8_t token[8];
    size_t len = 0;
    for (size_t i = 0; i < 8; i++)
        token[i] = (uint8_t)(peer >> (56 - 8 * i));
    cl_coap_build_init(&b, out, size, CL_COAP_NON, CL_COAP_CHANGED, 0x4242, token, 8);
    cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, (const uint8_t *)"\x09\x01", 2);
    cl_coap_build_payload(&b, (const uint8_t *)body, strlen(body));
    assert_int_equal(cl_coap_build_finish(&b, &len), CL_OK);
    return len;
}

static void send_to_deferred(fake_core_t *fc)
{
    for (size_t k = 0; k < fc->ndeferred; k++) {
        uint8_t m[128];
        size_t n = poll_answer(m, sizeof m, fc->deferred[k], "in-batch");
        assert_int_equal(cl_http_send(fc->ep, fc->deferred[k], CL_TRANSPORT_HTTP, m, n), CL_OK);
        fc->sent_in_batch++;
    }
    cl_http_stats_t st;
    cl_http_get_stats(fc->ep, &st);
    fc->answered_in_batch += st.polls_answered;
}

static uint8_t g_att[8192];

static size_t answer(fake_core_t *fc, const cl_coap_msg_t *m, uint8_t *out, size_t size)
{
    cl_coap_builder_t b;
    size_t len = 0;
    const cl_coap_option_t *osc = cl_coap_msg_get(m, CL_COAP_OPT_OSCORE);
    if (osc != NULL) {
        if (fc->answer_code != 0) { /* unprotected error, like cl_oscore_build_error */
            cl_coap_build_init(&b, out, size, CL_COAP_ACK, fc->answer_code, m->mid, m->token,
                               m->tkl);
            cl_coap_build_payload(&b, (const uint8_t *)"Security context not found", 26);
        } else {
            uint8_t rev[CL_CORE_MAX_MESSAGE];
            for (size_t i = 0; i < m->payload_len; i++)
                rev[i] = m->payload[m->payload_len - 1 - i];
            cl_coap_build_init(&b, out, size, CL_COAP_ACK, CL_COAP_CHANGED, m->mid, m->token,
                               m->tkl);
            cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, (const uint8_t *)"", 0);
            cl_coap_build_payload(&b, rev, m->payload_len);
        }
    } else if (strcmp(fc->path, "/attestation") == 0) {
        uint32_t num = fc->block2 < 0 ? 0 : (uint32_t)fc->block2;
        size_t off = (size_t)num * 1024, n = fc->att_len - off > 1024 ? 1024 : fc->att_len - off;
        cl_coap_block_t blk = {.num = num, .more = off + n < fc->att_len, .szx = 6};
        uint8_t v[3];
        size_t vl;
        assert_int_equal(cl_coap_block_encode(&blk, v, &vl), CL_OK);
        cl_coap_build_init(&b, out, size, CL_COAP_ACK, CL_COAP_CONTENT, m->mid, m->token, m->tkl);
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR);
        cl_coap_build_option(&b, CL_COAP_OPT_BLOCK2, v, vl);
        cl_coap_build_payload(&b, g_att + off, n);
    } else if (strcmp(fc->path, "/.well-known/edhoc") == 0) {
        uint8_t code = fc->answer_code ? fc->answer_code : CL_COAP_CHANGED;
        cl_coap_build_init(&b, out, size, CL_COAP_ACK, code, m->mid, m->token, m->tkl);
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, 65);
        cl_coap_build_payload(&b, (const uint8_t *)"\x58\x02m2", 4);
    } else {
        uint8_t code = fc->answer_code ? fc->answer_code : CL_COAP_CHANGED;
        cl_coap_build_init(&b, out, size, CL_COAP_ACK, code, m->mid, m->token, m->tkl);
        if (code != CL_COAP_CHANGED || fc->payload_len > 0) {
            cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR);
            cl_coap_build_payload(&b, (const uint8_t *)"\xa1\x01\x02", 3);
        }
    }
    assert_int_equal(cl_coap_build_finish(&b, &len), CL_OK);
    return len;
}

static cl_status_t fake_handle(void *ctx, const uint8_t *in, size_t in_len, uint8_t *out,
                               size_t out_size, size_t *out_len)
{
    fake_core_t *fc = ctx;
    size_t count = 0, pos = 0;
    cl_batch_item_t it;
    fc->calls++;
    if (fc->fail) {
        if (fc->send_prev) /* sent, then the batch failed: must never be delivered */
            send_to_deferred(fc);
        return CL_ERR_PERSIST;
    }
    assert_int_equal(cl_batch_validate(in, in_len, &count), CL_OK);
    fc->items += count;
    if (count > fc->max_batch)
        fc->max_batch = count;
    assert_int_equal(cl_batch_begin(out, out_size, out_len), CL_OK);
    while (cl_batch_next(in, in_len, &pos, &it) == CL_OK) {
        cl_coap_msg_t m;
        uint8_t resp[CL_CORE_MAX_MESSAGE];
        size_t n = 0, qp = 0;
        const cl_coap_option_t *o;
        assert_int_equal(cl_coap_parse(&m, it.msg, it.len), CL_OK);
        assert_int_equal(m.type, CL_COAP_CON);
        assert_int_equal(m.tkl, 8);
        fc->peer = it.peer;
        fc->transport = it.transport;
        fc->code = m.code;
        assert_int_equal(cl_coap_uri_path(&m, fc->path, sizeof fc->path), CL_OK);
        fc->query[0] = '\0';
        for (size_t p = 0; (o = cl_coap_msg_find(&m, CL_COAP_OPT_URI_QUERY, &p)) != NULL; p++) {
            qp += (size_t)snprintf(fc->query + qp, sizeof fc->query - qp, "%s%.*s",
                                   qp ? "&" : "", (int)o->len, (const char *)o->value);
        }
        uint32_t cf = 0;
        o = cl_coap_msg_get(&m, CL_COAP_OPT_CONTENT_FORMAT);
        fc->cf = o != NULL && cl_coap_opt_uint(o, &cf) == CL_OK ? (int)cf : -1;
        o = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
        fc->oscore_len = o != NULL ? (int)o->len : -1;
        if (o != NULL && o->len > 0)
            memcpy(fc->oscore, o->value, o->len);
        o = cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK2);
        fc->block2 = -1;
        if (o != NULL) {
            cl_coap_block_t blk;
            assert_int_equal(cl_coap_block_decode(o, &blk), CL_OK);
            fc->block2 = (int)blk.num;
        }
        if (m.payload_len > 0)
            memcpy(fc->payload, m.payload, m.payload_len);
        fc->payload_len = m.payload_len;
        uint16_t flags = 0;
        if (fc->defer && fc->oscore_len >= 0) {
            flags = CL_BATCH_F_DEFER;
            if (fc->ndeferred < sizeof fc->deferred / sizeof fc->deferred[0])
                fc->deferred[fc->ndeferred++] = it.peer;
        } else if (!fc->silent) {
            n = answer(fc, &m, resp, sizeof resp);
        }
        cl_batch_item_t r = {
            .peer = it.peer, .transport = it.transport, .flags = flags, .msg = resp, .len = n};
        assert_int_equal(cl_batch_add(out, out_size, out_len, &r), CL_OK);
    }
    if (fc->send_prev)
        send_to_deferred(fc);
    for (size_t k = 0; fc->item_prev && k < fc->ndeferred; k++) {
        uint8_t m[128];
        size_t n = poll_answer(m, sizeof m, fc->deferred[k], "as-item");
        cl_batch_item_t r = {
            .peer = fc->deferred[k], .transport = CL_TRANSPORT_HTTP, .msg = m, .len = n};
        assert_int_equal(cl_batch_add(out, out_size, out_len, &r), CL_OK);
    }
    return CL_OK;
}

static bool g_health;
static int g_health_calls;
static bool fake_health(void *ctx)
{
    (void)ctx;
    g_health_calls++;
    return g_health;
}

/* ------------------------------------------------------------ fixture and client */

typedef struct fx {
    fake_core_t core;
    cl_http_t *ep;
    uint16_t port;
} fx_t;

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One poll + pass of the endpoint, waiting at most wait_ms. */
static void pump(fx_t *f, int wait_ms)
{
    struct pollfd p = {.fd = cl_http_fd(f->ep), .events = POLLIN, .revents = 0};
    int t = cl_http_timeout_ms(f->ep);
    if (t < 0 || t > wait_ms)
        t = wait_ms;
    (void)poll(&p, 1, t);
    assert_int_equal(cl_http_process(f->ep, ms_now()), CL_OK);
}

static int open_cfg(fx_t *f, const cl_http_config_t *cfg)
{
    memset(&f->core, 0, sizeof f->core);
    f->core.att_len = 3000;
    for (size_t i = 0; i < sizeof g_att; i++)
        g_att[i] = (uint8_t)(i * 7 + 1);
    if (cl_http_open(cfg, fake_handle, &f->core, NULL, NULL, &f->ep) != CL_OK)
        return -1;
    f->core.ep = f->ep;
    cl_http_set_health(f->ep, fake_health, NULL);
    f->port = cl_http_port(f->ep);
    return 0;
}

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof *f);
    cl_http_config_t cfg = {.listen = "127.0.0.1:0", .timeout_s = 1, .max_connections = 32,
                            .per_ip_limit = 32};
    if (f == NULL || open_cfg(f, &cfg) != 0)
        return -1;
    g_health = true;
    g_health_calls = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    cl_http_close(f->ep);
    free(f);
    return 0;
}

static int client_connect(const fx_t *f)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(s, (struct sockaddr *)&a, sizeof a);
    assert_true(rc == 0 || errno == EINPROGRESS);
    return s;
}

static void client_send(int s, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(s, b, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINPROGRESS || errno == ENOTCONN)) {
            struct pollfd pf = {.fd = s, .events = POLLOUT, .revents = 0};
            (void)poll(&pf, 1, 10);
            continue;
        }
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            return; /* the server refused early and closed: the reply is what counts */
        assert_true(w > 0);
        b += w;
        n -= (size_t)w;
    }
}

typedef struct hresp {
    char raw[80000];
    size_t len;
    unsigned status;
    const char *body;
    size_t body_len;
    bool closed;
} hresp_t;

/* Reads what is there (non-blocking); true once the peer closed. */
static bool client_read(int s, hresp_t *r)
{
    for (;;) {
        ssize_t n = recv(s, r->raw + r->len, sizeof r->raw - 1 - r->len, 0);
        if (n > 0) {
            r->len += (size_t)n;
            r->raw[r->len] = '\0';
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            r->closed = true;
        return r->closed;
    }
}

static void parse_resp(hresp_t *r)
{
    r->status = 0;
    if (r->len >= 12 && strncmp(r->raw, "HTTP/1.", 7) == 0)
        r->status = (unsigned)atoi(r->raw + 9);
    char *e = strstr(r->raw, "\r\n\r\n");
    r->body = e != NULL ? e + 4 : NULL;
    r->body_len = e != NULL ? r->len - (size_t)(e + 4 - r->raw) : 0;
}

/* Header value (case-insensitive name) or NULL; copied into out. */
static const char *hdr(const hresp_t *r, const char *name, char *out, size_t size)
{
    const char *p = r->raw;
    size_t nl = strlen(name);
    while ((p = strstr(p, "\r\n")) != NULL && p[2] != '\r') {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r");
            snprintf(out, size, "%.*s", (int)n, v);
            return out;
        }
    }
    return NULL;
}

/* Sends a whole request (Connection: close) and pumps until the answer is complete. */
static void exchange(fx_t *f, const void *req, size_t req_len, hresp_t *r)
{
    memset(r, 0, sizeof *r);
    int s = client_connect(f);
    client_send(s, req, req_len);
    uint64_t end = ms_now() + 5000;
    while (!client_read(s, r) && ms_now() < end)
        pump(f, 10);
    close(s);
    assert_true(r->closed);
    parse_resp(r);
}

static void exchange_str(fx_t *f, const char *req, hresp_t *r)
{
    exchange(f, req, strlen(req), r);
}

/* ------------------------------------------------------------ tests */

static void test_oscore_mapping(void **state)
{
    fx_t *f = *state;
    static hresp_t r;
    char v[128];
    const char req[] = "POST /any/path/at/all HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Type: application/oscore\r\nOSCORE: CSU\r\n"
                       "Content-Length: 5\r\n\r\nabcde";
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(f->core.calls, 1);
    assert_int_equal(f->core.transport, CL_TRANSPORT_HTTP);
    assert_true((f->core.peer & CL_HTTP_PEER_BIT) != 0);
    assert_int_equal(f->core.code, CL_COAP_POST);
    assert_string_equal(f->core.path, "/"); /* the outer path carries no meaning */
    assert_int_equal(f->core.cf, -1);       /* RFC 8613 11.3: no Content-Format */
    assert_int_equal(f->core.oscore_len, 2);
    assert_memory_equal(f->core.oscore, "\x09\x25", 2);
    assert_int_equal(f->core.payload_len, 5);
    assert_memory_equal(f->core.payload, "abcde", 5);
    assert_non_null(hdr(&r, "OSCORE", v, sizeof v));
    assert_string_equal(v, "AA"); /* the empty option */
    assert_non_null(hdr(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/oscore");
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(r.body, "edcba", 5);

    /* FETCH maps to CoAP FETCH; an empty OSCORE option is "AA" */
    const char fetch[] = "FETCH / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Type: application/oscore\r\nOSCORE: AA\r\n"
                         "Content-Length: 2\r\n\r\nzz";
    exchange(f, fetch, sizeof fetch - 1, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(f->core.code, CL_COAP_FETCH);
    assert_int_equal(f->core.oscore_len, 0);

    /* an unprotected 4.01 from the core: 403 (RFC 8075 7), diagnostic body, no OSCORE */
    f->core.answer_code = CL_COAP_UNAUTHORIZED;
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 403);
    assert_null(hdr(&r, "OSCORE", v, sizeof v));
    assert_int_equal(r.body_len, 26);
    assert_memory_equal(r.body, "Security context not found", 26);
    assert_non_null(hdr(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "text/plain; charset=utf-8");
}

static void test_edhoc_mapping(void **state)
{
    fx_t *f = *state;
    static hresp_t r;
    char v[128];
    const char req[] = "POST /.well-known/edhoc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Type: application/cid-edhoc+cbor-seq\r\n"
                       "Content-Length: 4\r\n\r\n\xf5\x02\x03\x04";
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(f->core.path, "/.well-known/edhoc");
    assert_int_equal(f->core.code, CL_COAP_POST);
    assert_int_equal(f->core.cf, 65);
    assert_int_equal(f->core.oscore_len, -1);
    assert_int_equal(f->core.payload_len, 4);
    assert_memory_equal(f->core.payload, "\xf5\x02\x03\x04", 4);
    assert_non_null(hdr(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/cid-edhoc+cbor-seq");
    assert_int_equal(r.body_len, 4);
    assert_memory_equal(r.body, "\x58\x02m2", 4);

    const char req64[] = "POST /.well-known/edhoc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Type: application/edhoc+cbor-seq; foo=bar\r\n"
                         "Content-Length: 1\r\n\r\n\xf5";
    f->core.answer_code = CL_COAP_BAD_REQUEST; /* an EDHOC error message */
    exchange(f, req64, sizeof req64 - 1, &r);
    assert_int_equal(f->core.cf, 64);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.body_len, 4);
}

static void test_attestation_blocks(void **state)
{
    fx_t *f = *state;
    static hresp_t r;
    char v[128];
    exchange_str(f,
                 "GET /attestation?nonce=00112233445566778899aabbccddeeff HTTP/1.1\r\n"
                 "Host: x\r\nConnection: close\r\n\r\n",
                 &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(f->core.items, 3); /* 3000 bytes in 1024-byte blocks */
    assert_string_equal(f->core.query, "nonce=00112233445566778899aabbccddeeff");
    assert_int_equal(f->core.code, CL_COAP_GET);
    assert_int_equal(f->core.block2, 2);
    assert_int_equal(r.body_len, 3000);
    assert_memory_equal(r.body, g_att, 3000);
    assert_non_null(hdr(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/cbor");

    /* 8 KiB of evidence: 8 blocks, one HTTP body */
    f->core.att_len = sizeof g_att;
    f->core.items = 0;
    exchange_str(f, "GET /attestation?nonce=00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, sizeof g_att);
}

static void test_pki_mapping(void **state)
{
    fx_t *f = *state;
    static hresp_t r;
    char v[64];
    const char req[] = "POST /pki/owner HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Type: application/cbor\r\nContent-Length: 3\r\n\r\n\xa1\x01\x02";
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(f->core.path, "/pki/owner");
    assert_int_equal(f->core.cf, CL_COAP_CF_CBOR);
    assert_non_null(hdr(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/cbor");

    f->core.answer_code = CL_COAP_CREATED;
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 201);
    f->core.answer_code = CL_COAP_FORBIDDEN;
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 403);

    /* 2.04 without payload -> 204 (RFC 8075 7) */
    f->core.answer_code = 0;
    const char empty[] = "POST /pki/provision HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Type: application/cbor\r\nContent-Length: 0\r\n\r\n";
    exchange(f, empty, sizeof empty - 1, &r);
    assert_string_equal(f->core.path, "/pki/provision");
    assert_int_equal(r.status, 204);
}

static void test_status_map(void **state)
{
    (void)state;
    assert_int_equal(cl_http_status_from_coap(CL_COAP_CONTENT, true), 200);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_CHANGED, true), 200);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_CHANGED, false), 204);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_DELETED, false), 204);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_CREATED, false), 201);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_UNAUTHORIZED, true), 403);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_BAD_OPTION, true), 400);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_NOT_FOUND, true), 404);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_METHOD_NOT_ALLOWED, true), 405);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_REQUEST_TOO_LARGE, true), 413);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_UNSUPPORTED_FORMAT, true), 415);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_CODE(4, 29), true), 429);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_INTERNAL_ERROR, true), 500);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_SERVICE_UNAVAILABLE, true), 503);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_CODE(5, 5), true), 502);
    assert_int_equal(cl_http_status_from_coap(CL_COAP_CODE(4, 22), true), 400);
}

static void test_limits(void **state)
{
    fx_t *f = *state;
    static hresp_t r;
    char v[64];
    exchange_str(f, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 404);
    exchange_str(f, "GET /.well-known/edhoc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                 &r);
    assert_int_equal(r.status, 405);
    assert_non_null(hdr(&r, "Allow", v, sizeof v));
    assert_string_equal(v, "POST");
    exchange_str(f, "DELETE /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    exchange_str(f,
                 "PUT / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOSCORE: AA\r\n"
                 "Content-Type: application/oscore\r\nContent-Length: 1\r\n\r\nx",
                 &r);
    assert_int_equal(r.status, 405);
    exchange_str(f,
                 "POST /.well-known/edhoc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Content-Type: application/json\r\nContent-Length: 1\r\n\r\nx",
                 &r);
    assert_int_equal(r.status, 415);
    exchange_str(f,
                 "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOSCORE: AA\r\n"
                 "Content-Length: 1\r\n\r\nx",
                 &r);
    assert_int_equal(r.status, 415); /* no Content-Type */
    exchange_str(f,
                 "POST /pki/owner HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Content-Type: text/plain\r\nContent-Length: 1\r\n\r\nx",
                 &r);
    assert_int_equal(r.status, 415);
    exchange_str(f,
                 "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOSCORE: A=\r\n"
                 "Content-Type: application/oscore\r\nContent-Length: 1\r\n\r\nx",
                 &r);
    assert_int_equal(r.status, 400); /* not canonical base64url */
    exchange_str(f,
                 "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOSCORE: AA\r\n"
                 "Content-Type: application/oscore\r\nContent-Length: 4096\r\n\r\n",
                 &r);
    assert_int_equal(r.status, 413);

    /* a body at the limit whose CoAP message does not fit: 413 as well */
    static char big[CL_CORE_MAX_MESSAGE + 256];
    int hl = snprintf(big, sizeof big,
                      "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nOSCORE: AA\r\n"
                      "Content-Type: application/oscore\r\nContent-Length: %d\r\n\r\n",
                      CL_CORE_MAX_MESSAGE);
    memset(big + hl, 'b', CL_CORE_MAX_MESSAGE);
    exchange(f, big, (size_t)hl + CL_CORE_MAX_MESSAGE, &r);
    assert_int_equal(r.status, 413);

    /* chunked upload past the limit: the connection is dropped */
    memset(&r, 0, sizeof r);
    int s = client_connect(f);
    const char *ch = "POST / HTTP/1.1\r\nHost: x\r\nOSCORE: AA\r\n"
                     "Content-Type: application/oscore\r\nTransfer-Encoding: chunked\r\n\r\n";
    client_send(s, ch, strlen(ch));
    char chunk[1100];
    int cl = snprintf(chunk, sizeof chunk, "400\r\n");
    memset(chunk + cl, 'c', 1024);
    memcpy(chunk + cl + 1024, "\r\n", 2);
    uint64_t end = ms_now() + 5000;
    for (int i = 0; i < 4 && !r.closed; i++) {
        if (send(s, chunk, (size_t)cl + 1026, MSG_NOSIGNAL) < 0)
            break;
        pump(f, 10);
        client_read(s, &r);
    }
    while (!client_read(s, &r) && ms_now() < end)
        pump(f, 10);
    close(s);
    assert_true(r.closed);

    /* headers past the per-connection memory limit: refused or closed, never buffered */
    static char hbig[48 * 1024];
    int hn = snprintf(hbig, sizeof hbig, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(hbig + hn, 'h', sizeof hbig - (size_t)hn - 8);
    memcpy(hbig + sizeof hbig - 8, "\r\n\r\n", 4);
    exchange(f, hbig, sizeof hbig - 4, &r);
    print_message("big headers: HTTP %u\n", r.status);
    assert_true(r.status == 0 || r.status == 431);

    /* garbage: answered 400 or closed, never reaches the core */
    exchange_str(f, "\x01\x02garbage\x7f\r\n\r\n", &r);
    assert_true(r.status == 0 || r.status == 400 || r.status == 505);
    exchange_str(f, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    "X-Long: \x01\x02\x03\r\n\r\n", &r);
    assert_int_equal(f->core.calls, 0);

    cl_http_stats_t st;
    cl_http_get_stats(f->ep, &st);
    assert_true(st.rejected_too_large >= 3);
    assert_true(st.rejected_method >= 3);
    assert_true(st.rejected_not_found >= 1);
    assert_true(st.rejected_media_type >= 3);
    assert_true(st.rejected_bad_request >= 1);
}

static void test_health_and_metrics(void **state)
{
    fx_t *f = *state;
    static hresp_t r;
    char v[128];
    g_health = false;
    exchange_str(f, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 503);
    assert_int_equal(g_health_calls, 1);
    cl_http_note_tick(f->ep, ms_now(), true); /* the loop's tick answered */
    exchange_str(f, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 3);
    assert_memory_equal(r.body, "ok\n", 3);
    assert_int_equal(g_health_calls, 1); /* fresh tick: no extra ecall */

    const char req[] = "POST /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Type: application/oscore\r\nOSCORE: CSU\r\n"
                       "Content-Length: 6\r\n\r\nSECRET";
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 200);
    exchange_str(f, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(hdr(&r, "Content-Type", v, sizeof v));
    assert_non_null(strstr(v, "text/plain"));
    assert_non_null(strstr(r.body, "cloister_requests_total{transport=\"http\"} 4"));
    assert_non_null(strstr(r.body, "cloister_http_requests_total{route=\"oscore\"} 1"));
    assert_non_null(strstr(r.body, "cloister_batches_total{transport=\"http\"} 1"));
    assert_non_null(strstr(r.body, "cloister_received_bytes_total{transport=\"http\"} 6"));
    assert_non_null(strstr(r.body, "cloister_uptime_seconds "));
    assert_non_null(strstr(r.body, "# TYPE cloister_requests_total counter"));
    assert_null(strstr(r.body, "SECRET"));
    assert_null(strstr(r.body, "CSU"));
    assert_null(strstr(r.body, "transport=\"coap\"")); /* no UDP endpoint given */
}

static void test_core_failure_and_silence(void **state)
{
    fx_t *f = *state;
    static hresp_t r;
    const char req[] = "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Type: application/oscore\r\nOSCORE: AA\r\n"
                       "Content-Length: 1\r\n\r\nq";
    f->core.fail = true;
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 503);
    f->core.fail = false;
    f->core.silent = true;
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 504);
    f->core.silent = false;
    exchange(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 200);
    cl_http_stats_t st;
    cl_http_get_stats(f->ep, &st);
    assert_int_equal(st.handler_errors, 1);
    assert_int_equal(st.no_answer, 1);
}

/* Many clients at once: one batch carries several requests; all get their own answer. */
static void test_many_connections_batched(void **state)
{
    fx_t *f = *state;
    enum { N = 24 };
    int s[N];
    static hresp_t r[N];
    char req[256];
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof r[i]);
        s[i] = client_connect(f);
        int n = snprintf(req, sizeof req,
                         "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Type: application/oscore\r\nOSCORE: AA\r\n"
                         "Content-Length: 3\r\n\r\n%03d",
                         i);
        client_send(s[i], req, (size_t)n);
    }
    uint64_t end = ms_now() + 10000;
    int done = 0;
    while (done < N && ms_now() < end) {
        pump(f, 10);
        done = 0;
        for (int i = 0; i < N; i++)
            done += client_read(s[i], &r[i]) ? 1 : 0;
    }
    assert_int_equal(done, N);
    for (int i = 0; i < N; i++) {
        char want[4];
        close(s[i]);
        parse_resp(&r[i]);
        assert_int_equal(r[i].status, 200);
        snprintf(want, sizeof want, "%03d", i);
        assert_int_equal(r[i].body_len, 3);
        assert_true(r[i].body[0] == want[2] && r[i].body[2] == want[0]); /* reversed echo */
    }
    assert_int_equal(f->core.items, N);
    assert_true(f->core.max_batch > 1);
    assert_true(f->core.calls < N);
}

/*
 * At the connection limit (32 here) libmicrohttpd stops accepting: a further
 * client waits in the (bounded) listen backlog, unanswered, until a slot frees.
 */
static void test_connection_limit(void **state)
{
    fx_t *f = *state;
    enum { N = 32 };
    int s[N];
    static hresp_t r;
    for (int i = 0; i < N; i++) {
        s[i] = client_connect(f);
        pump(f, 0);
    }
    for (int i = 0; i < 20; i++)
        pump(f, 5);
    memset(&r, 0, sizeof r);
    int extra = client_connect(f);
    const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    client_send(extra, get, strlen(get));
    for (int i = 0; i < 40; i++)
        pump(f, 5);
    assert_false(client_read(extra, &r));
    assert_int_equal(r.len, 0);
    for (int i = 0; i < N; i++)
        close(s[i]);
    uint64_t end = ms_now() + 5000;
    while (!client_read(extra, &r) && ms_now() < end)
        pump(f, 10);
    close(extra);
    parse_resp(&r);
    assert_int_equal(r.status, 200);
}

/* A slowloris client: headers byte by byte, then silence; dropped after the idle timeout. */
static void test_slow_client_dropped(void **state)
{
    fx_t *f = *state;
    static hresp_t slow, r;
    memset(&slow, 0, sizeof slow);
    int s = client_connect(f);
    const char *part = "POST /.well-known/edhoc HTTP/1.1\r\nHost: x\r\nContent-Ty";
    for (size_t i = 0; part[i] != '\0'; i++) {
        client_send(s, part + i, 1);
        pump(f, 5);
    }
    uint64_t start = ms_now();
    /* others are served meanwhile */
    exchange_str(f, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_false(client_read(s, &slow));
    while (!client_read(s, &slow) && ms_now() - start < 5000)
        pump(f, 50);
    assert_true(slow.closed);
    assert_true(ms_now() - start >= 500); /* timeout_s = 1 */
    assert_int_equal(slow.len, 0);        /* dropped without an answer */
    close(s);
}


/* ------------------------------------------------------------ long polls */

static const char k_poll_req[] = "POST /actions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                 "Content-Type: application/oscore\r\nOSCORE: CSU\r\n"
                                 "Content-Length: 4\r\n\r\nwait";

/* Starts a long poll; pumps until the core deferred it. Returns the client socket. */
static int start_poll(fx_t *f, hresp_t *r)
{
    memset(r, 0, sizeof *r);
    size_t before = f->core.ndeferred;
    int s = client_connect(f);
    client_send(s, k_poll_req, sizeof k_poll_req - 1);
    uint64_t end = ms_now() + 5000;
    while (f->core.ndeferred == before && !client_read(s, r) && ms_now() < end)
        pump(f, 10);
    return s;
}

/* Pumps until the client's answer is complete (or 5 s). */
static void finish(fx_t *f, int s, hresp_t *r)
{
    uint64_t end = ms_now() + 5000;
    while (!client_read(s, r) && ms_now() < end)
        pump(f, 10);
    close(s);
    assert_true(r->closed);
    parse_resp(r);
}

static void test_long_poll_answered_by_send(void **state)
{
    fx_t *f = *state;
    static hresp_t r;
    char v[64];
    uint8_t m[128];
    f->core.defer = true;
    int s = start_poll(f, &r);
    assert_int_equal(f->core.ndeferred, 1);
    uint64_t peer = f->core.deferred[0];
    assert_true((peer & CL_HTTP_PEER_BIT) != 0);
    for (int i = 0; i < 20; i++) /* held open: no answer */
        pump(f, 5);
    assert_false(client_read(s, &r));
    assert_int_equal(r.len, 0);
    cl_http_stats_t st;
    cl_http_get_stats(f->ep, &st);
    assert_int_equal(st.polls_deferred, 1);
    assert_int_equal(st.polls_pending, 1);
    assert_int_equal(st.no_answer, 0);

    /* Other requests are served (and get other peer ids) while the poll waits. */
    f->core.defer = false;
    static hresp_t o;
    exchange_str(f, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &o);
    assert_int_equal(o.status, 200);
    const char other[] = "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Type: application/oscore\r\nOSCORE: AA\r\n"
                         "Content-Length: 2\r\n\r\nab";
    exchange(f, other, sizeof other - 1, &o);
    assert_int_equal(o.status, 200);
    assert_true(f->core.peer != peer);

    /* Wrong transport, wrong peer: nothing happens to the poll. */
    size_t n = poll_answer(m, sizeof m, peer, "act-1");
    assert_int_equal(cl_http_send(f->ep, peer, CL_TRANSPORT_COAP, m, n), CL_ERR_UNSUPPORTED);
    assert_int_equal(cl_http_send(f->ep, peer + 1000, CL_TRANSPORT_HTTP, m, n), CL_ERR_NOT_FOUND);
    assert_int_equal(cl_http_send(f->ep, 7, CL_TRANSPORT_HTTP, m, n), CL_ERR_NOT_FOUND);
    pump(f, 5);
    assert_false(client_read(s, &r));

    /* The core's send (from a tick, say): the poll is answered like any OSCORE answer. */
    assert_int_equal(cl_http_send(f->ep, peer, CL_TRANSPORT_HTTP, m, n), CL_OK);
    assert_int_equal(cl_http_timeout_ms(f->ep), 0); /* the loop must run the endpoint now */
    finish(f, s, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(hdr(&r, "OSCORE", v, sizeof v));
    assert_string_equal(v, "CQE");
    assert_non_null(hdr(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/oscore");
    assert_int_equal(r.body_len, 5);
    assert_memory_equal(r.body, "act-1", 5);

    /* Answered: a second send for that peer is dropped and counted. */
    assert_int_equal(cl_http_send(f->ep, peer, CL_TRANSPORT_HTTP, m, n), CL_ERR_NOT_FOUND);
    cl_http_get_stats(f->ep, &st);
    assert_int_equal(st.polls_answered, 1);
    assert_int_equal(st.polls_pending, 0);
    assert_int_equal(st.send_dropped_peer, 3);

    /* /metrics shows them, without contents. */
    exchange_str(f, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &o);
    assert_int_equal(o.status, 200);
    assert_non_null(strstr(o.body, "cloister_http_polls 0\n"));
    assert_non_null(strstr(o.body, "cloister_http_polls_total{result=\"answered\"} 1\n"));
    assert_non_null(
        strstr(o.body, "cloister_sends_dropped_total{transport=\"http\",reason=\"unknown_peer\"} 3\n"));
    assert_null(strstr(o.body, "act-1"));
}

static void test_long_poll_timeout(void **state)
{
    (void)state;
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    /* The poll outlives the 1 s idle timeout: suspended connections do not idle out. */
    cl_http_config_t cfg = {.listen = "127.0.0.1:0", .timeout_s = 1, .poll_timeout_ms = 1500};
    assert_int_equal(open_cfg(f, &cfg), 0);
    static hresp_t r;
    char v[64];
    f->core.defer = true;
    uint64_t t0 = ms_now();
    int s = start_poll(f, &r);
    assert_int_equal(f->core.ndeferred, 1);
    int w = cl_http_timeout_ms(f->ep);
    assert_true(w >= 0 && w <= 1500);
    finish(f, s, &r);
    uint64_t took = ms_now() - t0;
    assert_int_equal(r.status, 504);
    assert_true(took >= 1400 && took < 4000);
    assert_non_null(hdr(&r, "Content-Type", v, sizeof v));
    assert_non_null(strstr(v, "text/plain"));
    assert_int_equal(r.body_len, strlen("no action yet; poll again\n"));
    assert_memory_equal(r.body, "no action yet; poll again\n", r.body_len);
    /* A late send for the expired poll: dropped, counted. */
    uint8_t m[128];
    size_t n = poll_answer(m, sizeof m, f->core.deferred[0], "late");
    assert_int_equal(cl_http_send(f->ep, f->core.deferred[0], CL_TRANSPORT_HTTP, m, n),
                     CL_ERR_NOT_FOUND);
    cl_http_stats_t st;
    cl_http_get_stats(f->ep, &st);
    assert_int_equal(st.polls_timed_out, 1);
    assert_int_equal(st.polls_answered, 0);
    assert_int_equal(st.send_dropped_peer, 1);
    assert_int_equal(st.polls_pending, 0);
    cl_http_close(f->ep);
    free(f);
}

static void test_long_poll_cap(void **state)
{
    (void)state;
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    cl_http_config_t cfg = {.listen = "127.0.0.1:0", .timeout_s = 5, .max_connections = 32,
                            .per_ip_limit = 32, .max_polls = 2};
    assert_int_equal(open_cfg(f, &cfg), 0);
    static hresp_t r[3];
    f->core.defer = true;
    int s0 = start_poll(f, &r[0]);
    int s1 = start_poll(f, &r[1]);
    int s2 = start_poll(f, &r[2]);
    assert_int_equal(f->core.ndeferred, 3);
    finish(f, s2, &r[2]); /* past the cap: 503 at once */
    assert_int_equal(r[2].status, 503);
    assert_false(client_read(s0, &r[0]));
    assert_false(client_read(s1, &r[1]));
    cl_http_stats_t st;
    cl_http_get_stats(f->ep, &st);
    assert_int_equal(st.polls_refused, 1);
    assert_int_equal(st.polls_pending, 2);
    /* Closing the endpoint answers the waiting polls (503) instead of leaking them. */
    cl_http_close(f->ep);
    f->ep = NULL;
    uint64_t end = ms_now() + 2000;
    while ((!client_read(s0, &r[0]) || !client_read(s1, &r[1])) && ms_now() < end)
        (void)poll(NULL, 0, 10);
    close(s0);
    close(s1);
    parse_resp(&r[0]);
    parse_resp(&r[1]);
    assert_true(r[0].status == 503 || r[0].status == 0);
    assert_true(r[1].status == 503 || r[1].status == 0);
    free(f);

    /* The cap never exceeds 3/4 of the connection limit. */
    f = calloc(1, sizeof *f);
    assert_non_null(f);
    cl_http_config_t c2 = {.listen = "127.0.0.1:0", .max_connections = 4, .per_ip_limit = 4};
    assert_int_equal(open_cfg(f, &c2), 0);
    f->core.defer = true;
    int a = start_poll(f, &r[0]);
    int b = start_poll(f, &r[1]);
    int c = start_poll(f, &r[2]);
    int d = start_poll(f, &r[2]);
    finish(f, d, &r[2]);
    assert_int_equal(r[2].status, 503);
    cl_http_get_stats(f->ep, &st);
    assert_int_equal(st.polls_pending, 3);
    close(a);
    close(b);
    close(c);
    cl_http_close(f->ep);
    free(f);
}

/* Sends made during a batch wait for the batch; a poll deferred in the same batch is answered. */
static void test_sends_held_during_batch(void **state)
{
    fx_t *f = *state;
    static hresp_t r1, r2;
    char v[64];
    f->core.defer = true;
    int s1 = start_poll(f, &r1);
    /* The next batch defers the second poll and sends to both. */
    f->core.send_prev = true;
    int s2 = start_poll(f, &r2);
    assert_int_equal(f->core.sent_in_batch, 2);
    assert_int_equal(f->core.answered_in_batch, 0); /* held until the handler returned */
    finish(f, s1, &r1);
    finish(f, s2, &r2);
    assert_int_equal(r1.status, 200);
    assert_int_equal(r2.status, 200);
    assert_int_equal(r2.body_len, 8);
    assert_memory_equal(r2.body, "in-batch", 8);
    assert_non_null(hdr(&r2, "OSCORE", v, sizeof v));
    cl_http_stats_t st;
    cl_http_get_stats(f->ep, &st);
    assert_int_equal(st.polls_deferred, 2);
    assert_int_equal(st.polls_answered, 2);
    assert_int_equal(st.polls_pending, 0);

    /* A batch that fails after sending: the sends are dropped, the poll keeps waiting. */
    f->core.send_prev = false;
    f->core.ndeferred = 0;
    int s3 = start_poll(f, &r1);
    assert_int_equal(f->core.ndeferred, 1);
    f->core.fail = true;
    f->core.send_prev = true;
    exchange_str(f,
                 "POST /pki/owner HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                 "Content-Type: application/cbor\r\nContent-Length: 1\r\n\r\n\xa0",
                 &r2);
    assert_int_equal(r2.status, 503);
    for (int i = 0; i < 10; i++)
        pump(f, 5);
    assert_false(client_read(s3, &r1));
    cl_http_get_stats(f->ep, &st);
    assert_int_equal(st.send_dropped_failed, 1);
    assert_int_equal(st.polls_pending, 1);

    /* cloisterd's nested hold (a tick or another transport's batch): delivered at release. */
    f->core.fail = false;
    f->core.send_prev = false;
    uint8_t m[128];
    size_t n = poll_answer(m, sizeof m, f->core.deferred[0], "tick");
    cl_http_hold(f->ep);
    assert_int_equal(cl_http_send(f->ep, f->core.deferred[0], CL_TRANSPORT_HTTP, m, n), CL_OK);
    pump(f, 5);
    assert_false(client_read(s3, &r1));
    cl_http_release(f->ep, true);
    finish(f, s3, &r1);
    assert_int_equal(r1.status, 200);
    assert_int_equal(r1.body_len, 4);
    assert_memory_equal(r1.body, "tick", 4);

    /* The answer as an extra (non-positional) item of the batch works like a send. */
    f->core.ndeferred = 0;
    f->core.item_prev = true;
    int s4 = start_poll(f, &r1);
    finish(f, s4, &r1);
    assert_int_equal(r1.status, 200);
    assert_int_equal(r1.body_len, 7);
    assert_memory_equal(r1.body, "as-item", 7);
}

/* The hold queue is bounded. */
static void test_send_queue_bound(void **state)
{
    (void)state;
    fx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    cl_http_config_t cfg = {.listen = "127.0.0.1:0", .send_queue = 2};
    assert_int_equal(open_cfg(f, &cfg), 0);
    uint8_t m[128];
    size_t n = poll_answer(m, sizeof m, CL_HTTP_PEER_BIT | 99, "x");
    cl_http_hold(f->ep);
    assert_int_equal(cl_http_send(f->ep, CL_HTTP_PEER_BIT | 99, CL_TRANSPORT_HTTP, m, n), CL_OK);
    assert_int_equal(cl_http_send(f->ep, CL_HTTP_PEER_BIT | 98, CL_TRANSPORT_HTTP, m, n), CL_OK);
    assert_int_equal(cl_http_send(f->ep, CL_HTTP_PEER_BIT | 97, CL_TRANSPORT_HTTP, m, n),
                     CL_ERR_FULL);
    cl_http_release(f->ep, true); /* both for unknown peers: dropped, counted */
    cl_http_stats_t st;
    cl_http_get_stats(f->ep, &st);
    assert_int_equal(st.send_dropped_full, 1);
    assert_int_equal(st.send_dropped_peer, 2);
    cl_http_close(f->ep);
    free(f);
}

static void test_open_args(void **state)
{
    (void)state;
    cl_http_t *ep = NULL;
    fake_core_t fc;
    cl_http_config_t cfg = {.listen = "192.0.2.1:0"};
    assert_int_equal(cl_http_open(&cfg, fake_handle, &fc, NULL, NULL, &ep), CL_ERR_INVALID_ARG);
    cfg.listen = "127.0.0.1";
    assert_int_equal(cl_http_open(&cfg, fake_handle, &fc, NULL, NULL, &ep), CL_ERR_INVALID_ARG);
    cfg.listen = "localhost:80";
    assert_int_equal(cl_http_open(&cfg, fake_handle, &fc, NULL, NULL, &ep), CL_ERR_INVALID_ARG);
    cfg.listen = "[::1]:0";
    cl_status_t st = cl_http_open(&cfg, fake_handle, &fc, NULL, NULL, &ep);
    if (st == CL_OK) { /* IPv6 may be absent in a container */
        assert_true(cl_http_port(ep) > 0);
        cl_http_close(ep);
    }
    assert_int_equal(cl_http_fd(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_oscore_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edhoc_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attestation_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pki_mapping, setup, teardown),
        cmocka_unit_test(test_status_map),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_and_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_failure_and_silence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_connections_batched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_client_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_poll_answered_by_send, setup, teardown),
        cmocka_unit_test(test_long_poll_timeout),
        cmocka_unit_test(test_long_poll_cap),
        cmocka_unit_test_setup_teardown(test_sends_held_during_batch, setup, teardown),
        cmocka_unit_test(test_send_queue_bound),
        cmocka_unit_test(test_open_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
