/*
 * http_endpoint.c - cloisterd's HTTP endpoint (http_endpoint.h).
 * UNTRUSTED HOST SIDE.
 *
 * What: libmicrohttpd in external-loop epoll mode (one fd for cloisterd's
 * poll loop, no threads), a per-request context that collects the body
 * (bounded by CL_CORE_MAX_MESSAGE), the HTTP -> CoAP mapping of the routes
 * in http_endpoint.h, one handle() batch per round of completed requests,
 * and the CoAP -> HTTP mapping of the answers.
 *
 * Why like this: the host must not understand what it carries, so it maps
 * syntax only (RFC 8613 section 11, RFC 8075): the OSCORE header becomes
 * the OSCORE option, the body the payload, and back. Requests wait in
 * suspended connections (MHD_suspend_connection) while the batch runs, so a
 * slow core never blocks reads of other connections in the same pass.
 *
 * Limits: connection count and per-IP count, an idle timeout (slow clients
 * are dropped), a per-connection memory pool for the request line and
 * headers, the body limit (413) and a pending queue as large as the
 * connection limit: memory is bounded by max_connections.
 *
 * Long polls: a deferred request (CL_BATCH_F_DEFER) stays suspended in the
 * poll table (bounded, deadline per entry) until cl_http_send brings its
 * answer or the deadline passes (504). Messages the core sends during a
 * batch wait in a hold queue (sendq.h) until the batch's responses were
 * handled - a poll deferred in the same batch is then known - and its
 * group commit succeeded.
 *
 * Logs: one line per notable event, with route names, status codes and
 * sizes only (never payloads, tokens, OSCORE header values or query values).
 */
#include "http_endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cloister/coap.h"
#include "cloister/core.h"
#include "cloister/edhoc.h"
#include "cloister/oscore.h"
#include "net_addr.h"
#include "sendq.h"

#define OSCORE_OPT_MAX 255 /* RFC 7252 option length limit used by OSCORE */
#define OSCORE_HDR_MAX 400
#define QUERY_MAX 512
#define ROUNDS_PER_PROCESS 8
#define HEALTH_FRESH_MS 2000
#define METRICS_MAX 16384

typedef enum route {
    R_NONE = 0,
    R_OSCORE,
    R_EDHOC,
    R_ATTEST,
    R_PKI,
} route_t;

typedef enum rstate {
    S_BODY = 0, /* collecting the body */
    S_PENDING,  /* suspended, queued for (or in) a batch */
    S_READY,    /* resumed with a response to queue */
    S_DONE,     /* response queued */
    S_POLL,     /* suspended: a long poll waiting for the core's send */
} rstate_t;

typedef struct hreq {
    struct MHD_Connection *conn;
    route_t route;
    rstate_t state;
    uint8_t code;     /* CoAP method */
    int cf;           /* request Content-Format, -1 none */
    const char *path; /* CoAP Uri-Path for plain routes (static string) */
    const char *req_ctype;
    uint64_t peer;
    uint32_t block_num; /* attestation: next Block2 number */
    uint8_t block_szx;
    bool block2;
    uint8_t opt[OSCORE_OPT_MAX];
    size_t opt_len;
    char query[QUERY_MAX];
    size_t query_len;
    bool query_bad;
    uint8_t body[CL_CORE_MAX_MESSAGE];
    size_t body_len;
    uint8_t coap[CL_CORE_MAX_MESSAGE];
    size_t coap_len;
    /* the answer */
    unsigned status;
    const char *ctype;
    char oscore_hdr[OSCORE_HDR_MAX];
    uint8_t *resp;
    size_t resp_len;
    /* a long poll (S_POLL) */
    uint64_t poll_deadline_ms;
    size_t poll_idx;
} hreq_t;

struct cl_http {
    struct MHD_Daemon *d;
    int epoll_fd;
    uint16_t port;
    cl_http_handler_fn handler;
    void *handler_ctx;
    cl_host_log_fn log;
    void *log_ctx;
    cl_http_health_fn health;
    void *health_ctx;
    const cl_udp_t *udp;
    uint64_t now_ms, start_ms, last_tick_ok_ms;
    bool tick_ok_seen;
    uint64_t serial;

    hreq_t **pending; /* FIFO ring of suspended requests */
    size_t pend_cap, pend_head, pend_count;
    hreq_t *inflight[CL_CORE_MAX_BATCH];

    hreq_t **polls; /* long polls waiting for the core's send (unordered) */
    size_t max_polls, npolls;
    uint32_t poll_timeout_ms;
    bool resumed;  /* connections resumed outside cl_http_process: run MHD soon */
    cl_sendq_t sq; /* core-originated messages held during a batch */

    uint8_t batch_in[CL_CORE_MAX_BATCH_BYTES];
    uint8_t batch_out[CL_CORE_MAX_BATCH_BYTES];
    cl_http_stats_t stats;
};

static void poll_remove(cl_http_t *ep, hreq_t *r);

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void hlog(const cl_http_t *ep, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (ep->log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ep->log(ep->log_ctx, level, line);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *route_name(route_t r)
{
    switch (r) {
    case R_OSCORE:
        return "oscore";
    case R_EDHOC:
        return "edhoc";
    case R_ATTEST:
        return "attestation";
    case R_PKI:
        return "pki";
    default:
        return "other";
    }
}

/* ------------------------------------------------------------ status mapping */

/*
 * CoAP response code -> HTTP status, RFC 8075 section 7 (Table 2): the
 * "no payload" variants of 2.02/2.04 are 204; 4.01 is 403 (401 would need a
 * WWW-Authenticate challenge HTTP has no scheme for here); 4.02 and 4.05
 * keep 400/405; 5.05 -> 502; anything unknown by class.
 */
unsigned cl_http_status_from_coap(uint8_t code, bool has_payload)
{
    switch (code) {
    case CL_COAP_CREATED:
        return 201;
    case CL_COAP_DELETED:
    case CL_COAP_CHANGED:
        return has_payload ? 200 : 204;
    case CL_COAP_VALID:
    case CL_COAP_CONTENT:
        return 200;
    case CL_COAP_BAD_REQUEST:
    case CL_COAP_BAD_OPTION:
        return 400;
    case CL_COAP_UNAUTHORIZED:
    case CL_COAP_FORBIDDEN:
        return 403;
    case CL_COAP_NOT_FOUND:
        return 404;
    case CL_COAP_METHOD_NOT_ALLOWED:
        return 405;
    case CL_COAP_NOT_ACCEPTABLE:
        return 406;
    case CL_COAP_REQUEST_INCOMPLETE:
        return 400;
    case CL_COAP_PRECONDITION_FAILED:
        return 412;
    case CL_COAP_REQUEST_TOO_LARGE:
        return 413;
    case CL_COAP_UNSUPPORTED_FORMAT:
        return 415;
    case CL_COAP_CODE(4, 29):
        return 429;
    case CL_COAP_INTERNAL_ERROR:
        return 500;
    case CL_COAP_NOT_IMPLEMENTED:
        return 501;
    case CL_COAP_CODE(5, 2):
    case CL_COAP_CODE(5, 5):
        return 502;
    case CL_COAP_SERVICE_UNAVAILABLE:
        return 503;
    case CL_COAP_CODE(5, 4):
        return 504;
    default:
        break;
    }
    switch (CL_COAP_CLASS(code)) {
    case 2:
        return 200;
    case 4:
        return 400;
    default:
        return 500;
    }
}

static const char *ctype_from_cf(uint32_t cf)
{
    switch (cf) {
    case CL_COAP_CF_TEXT:
        return "text/plain; charset=utf-8";
    case CL_COAP_CF_JSON:
        return "application/json";
    case CL_COAP_CF_CBOR:
        return "application/cbor";
    case CL_COAP_CF_CBOR_SEQ:
        return "application/cbor-seq";
    case CL_EDHOC_CF_EDHOC_CBOR_SEQ:
        return CL_EDHOC_MEDIA_TYPE;
    case CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ:
        return CL_EDHOC_CID_MEDIA_TYPE;
    default:
        return "application/octet-stream";
    }
}

/* Media type of a Content-Type value (parameters and spaces ignored) equals want. */
static bool media_is(const char *ct, const char *want)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return n == strlen(want) && strncasecmp(ct, want, n) == 0;
}

/* ------------------------------------------------------------ responses */

static void count_status(cl_http_t *ep, unsigned status)
{
    if (status < 300)
        ep->stats.status_2xx++;
    else if (status < 500)
        ep->stats.status_4xx++;
    else
        ep->stats.status_5xx++;
}

static enum MHD_Result queue(cl_http_t *ep, struct MHD_Connection *c, unsigned status,
                             const char *ctype, const void *body, size_t len,
                             const char *oscore_hdr, const char *allow)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    if (ctype != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (oscore_hdr != NULL)
        MHD_add_response_header(resp, "OSCORE", oscore_hdr);
    if (allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    if (rc == MHD_YES) {
        ep->stats.responses++;
        ep->stats.tx_bytes += len;
        count_status(ep, status);
    }
    return rc;
}

static enum MHD_Result reject(cl_http_t *ep, hreq_t *r, unsigned status, const char *text,
                              const char *allow)
{
    switch (status) {
    case 413:
        ep->stats.rejected_too_large++;
        break;
    case 405:
        ep->stats.rejected_method++;
        break;
    case 404:
        ep->stats.rejected_not_found++;
        break;
    case 415:
        ep->stats.rejected_media_type++;
        break;
    default:
        ep->stats.rejected_bad_request++;
        break;
    }
    hlog(ep, CL_LOG_DEBUG, "msg=\"http request rejected\" route=%s status=%u",
         route_name(r->route), status);
    r->state = S_DONE;
    return queue(ep, r->conn, status, "text/plain; charset=utf-8", text, strlen(text), NULL,
                 allow);
}

/* ------------------------------------------------------------ health, metrics */

static bool healthy(cl_http_t *ep)
{
    if (ep->tick_ok_seen && ep->now_ms - ep->last_tick_ok_ms <= HEALTH_FRESH_MS)
        return true;
    if (ep->health == NULL)
        return false;
    bool ok = ep->health(ep->health_ctx);
    cl_http_note_tick(ep, ep->now_ms, ok);
    return ok;
}

typedef struct tbuf {
    char *p;
    size_t size, len;
} tbuf_t;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void tb(tbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    if (b->len >= b->size)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->size - b->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len = b->len + (size_t)n < b->size ? b->len + (size_t)n : b->size;
}

static void metric(tbuf_t *b, const char *name, const char *type, const char *help)
{
    tb(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static size_t metrics_text(cl_http_t *ep, char *out, size_t size)
{
    tbuf_t b = {out, size, 0};
    const cl_http_stats_t *h = &ep->stats;
    cl_udp_stats_t u;
    bool have_udp = ep->udp != NULL;
    if (have_udp)
        cl_udp_get_stats(ep->udp, &u);
    else
        memset(&u, 0, sizeof u);

#define PAIR(name, hv, uv)                                                                         \
    do {                                                                                           \
        tb(&b, "%s{transport=\"http\"} %" PRIu64 "\n", name, (uint64_t)(hv));                      \
        if (have_udp)                                                                              \
            tb(&b, "%s{transport=\"coap\"} %" PRIu64 "\n", name, (uint64_t)(uv));                  \
    } while (0)

    metric(&b, "cloister_requests_total", "counter", "Messages received, by transport.");
    PAIR("cloister_requests_total", h->requests, u.rx);
    metric(&b, "cloister_responses_total", "counter", "Messages sent, by transport.");
    PAIR("cloister_responses_total", h->responses, u.tx);
    metric(&b, "cloister_received_bytes_total", "counter", "Bytes received (bodies/datagrams).");
    PAIR("cloister_received_bytes_total", h->rx_bytes, u.rx_bytes);
    metric(&b, "cloister_sent_bytes_total", "counter", "Bytes sent (bodies/datagrams).");
    PAIR("cloister_sent_bytes_total", h->tx_bytes, u.tx_bytes);
    metric(&b, "cloister_batches_total", "counter", "handle() batches sent to the core.");
    PAIR("cloister_batches_total", h->batches, u.batches);
    metric(&b, "cloister_core_errors_total", "counter", "Failed handle() ecalls.");
    PAIR("cloister_core_errors_total", h->handler_errors, u.handler_errors);
#undef PAIR

    metric(&b, "cloister_core_tick_errors_total", "counter", "Failed tick() ecalls.");
    tb(&b, "cloister_core_tick_errors_total %" PRIu64 "\n", h->tick_errors);

    metric(&b, "cloister_http_requests_total", "counter", "HTTP requests by route.");
    tb(&b,
       "cloister_http_requests_total{route=\"oscore\"} %" PRIu64 "\n"
       "cloister_http_requests_total{route=\"edhoc\"} %" PRIu64 "\n"
       "cloister_http_requests_total{route=\"plain\"} %" PRIu64 "\n"
       "cloister_http_requests_total{route=\"healthz\"} %" PRIu64 "\n"
       "cloister_http_requests_total{route=\"metrics\"} %" PRIu64 "\n",
       h->oscore, h->edhoc, h->plain, h->healthz, h->metrics);
    metric(&b, "cloister_http_responses_total", "counter", "HTTP responses by status class.");
    tb(&b,
       "cloister_http_responses_total{class=\"2xx\"} %" PRIu64 "\n"
       "cloister_http_responses_total{class=\"4xx\"} %" PRIu64 "\n"
       "cloister_http_responses_total{class=\"5xx\"} %" PRIu64 "\n",
       h->status_2xx, h->status_4xx, h->status_5xx);
    metric(&b, "cloister_dropped_total", "counter", "Requests refused or dropped, by reason.");
    tb(&b,
       "cloister_dropped_total{transport=\"http\",reason=\"too_large\"} %" PRIu64 "\n"
       "cloister_dropped_total{transport=\"http\",reason=\"method\"} %" PRIu64 "\n"
       "cloister_dropped_total{transport=\"http\",reason=\"not_found\"} %" PRIu64 "\n"
       "cloister_dropped_total{transport=\"http\",reason=\"media_type\"} %" PRIu64 "\n"
       "cloister_dropped_total{transport=\"http\",reason=\"bad_request\"} %" PRIu64 "\n"
       "cloister_dropped_total{transport=\"http\",reason=\"no_answer\"} %" PRIu64 "\n",
       h->rejected_too_large, h->rejected_method, h->rejected_not_found, h->rejected_media_type,
       h->rejected_bad_request, h->no_answer);
    if (have_udp)
        tb(&b,
           "cloister_dropped_total{transport=\"coap\",reason=\"too_large\"} %" PRIu64 "\n"
           "cloister_dropped_total{transport=\"coap\",reason=\"bad\"} %" PRIu64 "\n"
           "cloister_dropped_total{transport=\"coap\",reason=\"unmatched\"} %" PRIu64 "\n"
           "cloister_dropped_total{transport=\"coap\",reason=\"inflight\"} %" PRIu64 "\n",
           u.dropped_big, u.dropped_bad, u.dropped_unmatched, u.dropped_inflight);
    if (have_udp) {
        metric(&b, "cloister_coap_pings_total", "counter", "CoAP pings answered with RST.");
        tb(&b, "cloister_coap_pings_total %" PRIu64 "\n", u.pings);
        metric(&b, "cloister_coap_dedup_hits_total", "counter",
               "Retransmissions answered from the dedup cache.");
        tb(&b, "cloister_coap_dedup_hits_total %" PRIu64 "\n", u.dedup_hits);
        metric(&b, "cloister_coap_peers_evicted_total", "counter", "CoAP peer table evictions.");
        tb(&b, "cloister_coap_peers_evicted_total %" PRIu64 "\n", u.peers_evicted);
        metric(&b, "cloister_coap_notifications_sent_total", "counter",
               "Core-originated CoAP messages sent (first transmissions).");
        tb(&b, "cloister_coap_notifications_sent_total %" PRIu64 "\n", u.notify_sent);
        metric(&b, "cloister_coap_notifications_retransmitted_total", "counter",
               "Retransmissions of core-originated CON messages.");
        tb(&b, "cloister_coap_notifications_retransmitted_total %" PRIu64 "\n",
           u.notify_retransmitted);
        metric(&b, "cloister_coap_notifications_timed_out_total", "counter",
               "Core-originated CON messages given up after MAX_RETRANSMIT.");
        tb(&b, "cloister_coap_notifications_timed_out_total %" PRIu64 "\n", u.notify_timeouts);
        metric(&b, "cloister_coap_notifications_acked_total", "counter",
               "ACKs to core-originated CON messages (consumed by the host).");
        tb(&b, "cloister_coap_notifications_acked_total %" PRIu64 "\n", u.notify_acked);
        metric(&b, "cloister_coap_notifications_rst_total", "counter",
               "RSTs to core-originated messages (handed to the core).");
        tb(&b, "cloister_coap_notifications_rst_total %" PRIu64 "\n", u.notify_rst);
    }
    metric(&b, "cloister_sends_dropped_total", "counter",
           "Core-originated messages dropped, by reason.");
    tb(&b,
       "cloister_sends_dropped_total{transport=\"http\",reason=\"unknown_peer\"} %" PRIu64 "\n"
       "cloister_sends_dropped_total{transport=\"http\",reason=\"queue_full\"} %" PRIu64 "\n"
       "cloister_sends_dropped_total{transport=\"http\",reason=\"batch_failed\"} %" PRIu64 "\n",
       h->send_dropped_peer, h->send_dropped_full, h->send_dropped_failed);
    if (have_udp)
        tb(&b,
           "cloister_sends_dropped_total{transport=\"coap\",reason=\"unknown_peer\"} %" PRIu64
           "\n"
           "cloister_sends_dropped_total{transport=\"coap\",reason=\"queue_full\"} %" PRIu64 "\n"
           "cloister_sends_dropped_total{transport=\"coap\",reason=\"batch_failed\"} %" PRIu64
           "\n"
           "cloister_sends_dropped_total{transport=\"coap\",reason=\"evicted\"} %" PRIu64 "\n",
           u.notify_dropped_peer, u.notify_dropped_full, u.notify_dropped_failed,
           u.notify_evicted);
    metric(&b, "cloister_http_polls", "gauge", "HTTP long polls waiting for an answer.");
    tb(&b, "cloister_http_polls %zu\n", ep->npolls);
    metric(&b, "cloister_http_polls_total", "counter", "HTTP long polls by outcome.");
    tb(&b,
       "cloister_http_polls_total{result=\"deferred\"} %" PRIu64 "\n"
       "cloister_http_polls_total{result=\"answered\"} %" PRIu64 "\n"
       "cloister_http_polls_total{result=\"timeout\"} %" PRIu64 "\n"
       "cloister_http_polls_total{result=\"refused\"} %" PRIu64 "\n",
       h->polls_deferred, h->polls_answered, h->polls_timed_out, h->polls_refused);
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(ep->d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    metric(&b, "cloister_http_connections", "gauge", "Open HTTP connections.");
    tb(&b, "cloister_http_connections %u\n", di != NULL ? di->num_connections : 0u);
    metric(&b, "cloister_uptime_seconds", "gauge", "Seconds since the endpoint started.");
    tb(&b, "cloister_uptime_seconds %" PRIu64 "\n", (ep->now_ms - ep->start_ms) / 1000u);
    return b.len;
}

/* ------------------------------------------------------------ HTTP -> CoAP */

static enum MHD_Result add_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    hreq_t *r = cls;
    (void)kind;
    size_t kl = strlen(key), vl = value != NULL ? strlen(value) : 0;
    size_t need = (r->query_len > 0 ? 1 : 0) + kl + (value != NULL ? 1 + vl : 0);
    if (kl == 0 || kl + vl + 1 > 255 || r->query_len + need >= sizeof r->query) {
        r->query_bad = true;
        return MHD_NO;
    }
    if (r->query_len > 0)
        r->query[r->query_len++] = '&';
    memcpy(r->query + r->query_len, key, kl);
    r->query_len += kl;
    if (value != NULL) {
        r->query[r->query_len++] = '=';
        memcpy(r->query + r->query_len, value, vl);
        r->query_len += vl;
    }
    r->query[r->query_len] = '\0';
    return MHD_YES;
}

/* Serializes the CoAP request of r (with Block2 when r->block2) into r->coap. */
static bool build_coap(cl_http_t *ep, hreq_t *r)
{
    (void)ep;
    uint8_t token[8];
    for (size_t i = 0; i < 8; i++)
        token[i] = (uint8_t)(r->peer >> (56 - 8 * i));
    cl_coap_builder_t b;
    cl_coap_build_init(&b, r->coap, sizeof r->coap, CL_COAP_CON, r->code,
                       (uint16_t)(r->peer ^ r->block_num), token, sizeof token);
    if (r->route == R_OSCORE)
        cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, r->opt, r->opt_len);
    for (const char *s = r->path; s != NULL && *s != '\0';) {
        if (*s == '/') {
            s++;
            continue;
        }
        size_t n = strcspn(s, "/");
        cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)s, n);
        s += n;
    }
    if (r->cf >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, (uint32_t)r->cf);
    for (const char *s = r->query; r->query_len > 0 && *s != '\0';) {
        size_t n = strcspn(s, "&");
        if (n > 0)
            cl_coap_build_option(&b, CL_COAP_OPT_URI_QUERY, (const uint8_t *)s, n);
        s += n;
        if (*s == '&')
            s++;
    }
    if (r->block2) {
        cl_coap_block_t blk = {.num = r->block_num, .more = false, .szx = r->block_szx};
        uint8_t v[3];
        size_t vl = 0;
        if (cl_coap_block_encode(&blk, v, &vl) != CL_OK)
            return false;
        cl_coap_build_option(&b, CL_COAP_OPT_BLOCK2, v, vl);
    }
    cl_coap_build_payload(&b, r->body, r->body_len);
    return cl_coap_build_finish(&b, &r->coap_len) == CL_OK && r->coap_len <= CL_CORE_MAX_MESSAGE;
}

static bool pend_push(cl_http_t *ep, hreq_t *r)
{
    if (ep->pend_count == ep->pend_cap)
        return false;
    ep->pending[(ep->pend_head + ep->pend_count) % ep->pend_cap] = r;
    ep->pend_count++;
    return true;
}

static hreq_t *pend_pop(cl_http_t *ep)
{
    if (ep->pend_count == 0)
        return NULL;
    hreq_t *r = ep->pending[ep->pend_head];
    ep->pend_head = (ep->pend_head + 1) % ep->pend_cap;
    ep->pend_count--;
    return r;
}

/* First call for a request: route it, check method, media type and size. */
static enum MHD_Result begin(cl_http_t *ep, hreq_t *r, const char *url, const char *method)
{
    struct MHD_Connection *c = r->conn;
    const char *oscore = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "OSCORE");
    const char *ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                   MHD_HTTP_HEADER_CONTENT_LENGTH);
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    r->cf = -1;

    if (oscore != NULL) {
        /* RFC 8613 11.1: POST (FETCH for Observe-like requests); any path. */
        r->route = R_OSCORE;
        ep->stats.oscore++;
        if (post)
            r->code = CL_COAP_POST;
        else if (strcmp(method, "FETCH") == 0)
            r->code = CL_COAP_FETCH;
        else
            return reject(ep, r, 405, "method not allowed\n", "POST, FETCH");
        if (!media_is(ctype, "application/oscore"))
            return reject(ep, r, 415, "Content-Type application/oscore expected\n", NULL);
        size_t hl = strlen(oscore);
        if (hl > OSCORE_HDR_MAX ||
            cl_oscore_http_header_decode(oscore, hl, r->opt, sizeof r->opt, &r->opt_len) !=
                CL_OK)
            return reject(ep, r, 400, "bad OSCORE header\n", NULL);
    } else if (strcmp(url, CL_EDHOC_WELL_KNOWN) == 0) {
        r->route = R_EDHOC;
        ep->stats.edhoc++;
        r->path = CL_EDHOC_WELL_KNOWN;
        if (!post)
            return reject(ep, r, 405, "method not allowed\n", "POST");
        if (media_is(ctype, CL_EDHOC_MEDIA_TYPE)) {
            r->cf = CL_EDHOC_CF_EDHOC_CBOR_SEQ;
            r->req_ctype = CL_EDHOC_MEDIA_TYPE;
        } else if (media_is(ctype, CL_EDHOC_CID_MEDIA_TYPE)) {
            r->cf = CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ;
            r->req_ctype = CL_EDHOC_CID_MEDIA_TYPE;
        } else {
            return reject(ep, r, 415, "Content-Type application/edhoc+cbor-seq expected\n",
                          NULL);
        }
        r->code = CL_COAP_POST;
    } else if (strcmp(url, "/attestation") == 0) {
        r->route = R_ATTEST;
        ep->stats.plain++;
        r->path = "/attestation";
        if (!get)
            return reject(ep, r, 405, "method not allowed\n", "GET");
        r->code = CL_COAP_GET;
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_query, r);
        if (r->query_bad)
            return reject(ep, r, 400, "bad query\n", NULL);
    } else if (strcmp(url, "/pki/owner") == 0 || strcmp(url, "/pki/provision") == 0) {
        r->route = R_PKI;
        ep->stats.plain++;
        r->path = strcmp(url, "/pki/owner") == 0 ? "/pki/owner" : "/pki/provision";
        if (!post)
            return reject(ep, r, 405, "method not allowed\n", "POST");
        if (media_is(ctype, "application/cbor"))
            r->cf = CL_COAP_CF_CBOR;
        else if (media_is(ctype, "application/json"))
            r->cf = CL_COAP_CF_JSON;
        else
            return reject(ep, r, 415, "Content-Type application/cbor expected\n", NULL);
        r->code = CL_COAP_POST;
    } else if (strcmp(url, "/healthz") == 0) {
        ep->stats.healthz++;
        if (!get)
            return reject(ep, r, 405, "method not allowed\n", "GET");
        r->state = S_DONE;
        if (healthy(ep))
            return queue(ep, c, 200, "text/plain; charset=utf-8", "ok\n", 3, NULL, NULL);
        return queue(ep, c, 503, "text/plain; charset=utf-8", "core not answering\n", 19, NULL,
                     NULL);
    } else if (strcmp(url, "/metrics") == 0) {
        ep->stats.metrics++;
        if (!get)
            return reject(ep, r, 405, "method not allowed\n", "GET");
        r->state = S_DONE;
        char *text = malloc(METRICS_MAX);
        if (text == NULL)
            return MHD_NO;
        size_t n = metrics_text(ep, text, METRICS_MAX);
        enum MHD_Result rc =
            queue(ep, c, 200, "text/plain; version=0.0.4; charset=utf-8", text, n, NULL, NULL);
        free(text);
        return rc;
    } else {
        return reject(ep, r, 404, "not found\n", NULL);
    }
    if (clen != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(clen, &end, 10);
        if (errno != 0 || end == clen || v > CL_CORE_MAX_MESSAGE)
            return reject(ep, r, 413, "request body too large\n", NULL);
    }
    r->state = S_BODY;
    return MHD_YES;
}

/* Body complete: build the CoAP request and wait for the next batch. */
static enum MHD_Result complete(cl_http_t *ep, hreq_t *r)
{
    if (r->route == R_ATTEST && r->body_len > 0)
        return reject(ep, r, 400, "GET with a body\n", NULL);
    r->peer = CL_HTTP_PEER_BIT | (++ep->serial & ~CL_HTTP_PEER_BIT);
    if (!build_coap(ep, r))
        return reject(ep, r, 413, "request too large\n", NULL);
    if (!pend_push(ep, r)) {
        r->state = S_DONE;
        return queue(ep, r->conn, 503, "text/plain; charset=utf-8", "busy\n", 5, NULL, NULL);
    }
    r->state = S_PENDING;
    MHD_suspend_connection(r->conn);
    return MHD_YES;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **ctx)
{
    cl_http_t *ep = cls;
    hreq_t *r = *ctx;
    (void)version;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        r->conn = c;
        *ctx = r;
        ep->stats.requests++;
        return begin(ep, r, url, method);
    }
    switch (r->state) {
    case S_BODY:
        if (*upload_data_size > 0) {
            if (r->body_len + *upload_data_size > sizeof r->body) {
                /* chunked upload past the limit: drop the connection */
                ep->stats.rejected_too_large++;
                hlog(ep, CL_LOG_DEBUG, "msg=\"http body too large, connection closed\" route=%s",
                     route_name(r->route));
                r->state = S_DONE;
                return MHD_NO;
            }
            memcpy(r->body + r->body_len, upload_data, *upload_data_size);
            r->body_len += *upload_data_size;
            ep->stats.rx_bytes += *upload_data_size;
            *upload_data_size = 0;
            return MHD_YES;
        }
        return complete(ep, r);
    case S_READY:
        r->state = S_DONE;
        return queue(ep, c, r->status, r->ctype, r->resp, r->resp_len,
                     r->oscore_hdr[0] != '\0' ? r->oscore_hdr : NULL, NULL);
    case S_PENDING:
    case S_POLL:
        return MHD_YES; /* should not happen: suspended */
    case S_DONE:
    default:
        if (upload_data_size != NULL)
            *upload_data_size = 0; /* discard a body after an early answer */
        return MHD_YES;
    }
}

static void completed_cb(void *cls, struct MHD_Connection *c, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
    cl_http_t *ep = cls;
    hreq_t *r = *ctx;
    (void)c;
    if (r == NULL)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        hlog(ep, CL_LOG_DEBUG, "msg=\"http request terminated\" route=%s reason=%d",
             route_name(r->route), (int)toe);
    if (r->state == S_POLL) /* never while suspended; defensive: no dangling entry */
        poll_remove(ep, r);
    free(r->resp);
    free(r);
    *ctx = NULL;
}

/* ------------------------------------------------------------ CoAP -> HTTP */

static void resume_with(hreq_t *r, unsigned status, const char *ctype, const char *text)
{
    free(r->resp);
    r->resp = NULL;
    r->resp_len = 0;
    if (text != NULL && (r->resp = malloc(strlen(text))) != NULL) {
        memcpy(r->resp, text, strlen(text));
        r->resp_len = strlen(text);
    }
    r->status = status;
    r->ctype = ctype;
    r->oscore_hdr[0] = '\0';
    r->state = S_READY;
    MHD_resume_connection(r->conn);
}

static bool append(hreq_t *r, const uint8_t *p, size_t n)
{
    if (n == 0)
        return true;
    if (r->resp_len + n > CL_HTTP_MAX_RESPONSE)
        return false;
    uint8_t *nb = realloc(r->resp, r->resp_len + n);
    if (nb == NULL)
        return false;
    r->resp = nb;
    memcpy(r->resp + r->resp_len, p, n);
    r->resp_len += n;
    return true;
}

/* The core's answer to r. Returns true when r went back to the pending queue (next block). */
static bool answer(cl_http_t *ep, hreq_t *r, const uint8_t *msg, size_t len)
{
    static const char *text = "text/plain; charset=utf-8";
    cl_coap_msg_t m;
    if (len == 0) {
        ep->stats.no_answer++;
        resume_with(r, 504, text, "no answer from the core\n");
        return false;
    }
    if (cl_coap_parse(&m, msg, len) != CL_OK || CL_COAP_CLASS(m.code) < 2) {
        ep->stats.handler_errors++;
        hlog(ep, CL_LOG_WARN, "msg=\"core answer is not a CoAP response\" route=%s size=%zu",
             route_name(r->route), len);
        resume_with(r, 502, text, "bad answer from the core\n");
        return false;
    }
    const cl_coap_option_t *osc = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
    const cl_coap_option_t *cfo = cl_coap_msg_get(&m, CL_COAP_OPT_CONTENT_FORMAT);
    const cl_coap_option_t *b2 = cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK2);
    uint32_t cf = 0;
    bool have_cf = cfo != NULL && cl_coap_opt_uint(cfo, &cf) == CL_OK;

    if (b2 != NULL && r->route != R_OSCORE) {
        cl_coap_block_t blk;
        if (cl_coap_block_decode(b2, &blk) != CL_OK || blk.num != r->block_num || blk.szx > 6 ||
            ((size_t)blk.num << (blk.szx + 4)) != r->resp_len) {
            resume_with(r, 502, text, "bad block from the core\n");
            return false;
        }
        if (!append(r, m.payload, m.payload_len)) {
            resume_with(r, 502, text, "response too large\n");
            return false;
        }
        if (blk.more && CL_COAP_CLASS(m.code) == 2) {
            if (blk.num >= (1u << 20) - 1) {
                resume_with(r, 502, text, "response too large\n");
                return false;
            }
            r->block2 = true;
            r->block_szx = blk.szx;
            r->block_num = blk.num + 1;
            if (!build_coap(ep, r) || !pend_push(ep, r)) {
                resume_with(r, 503, text, "busy\n");
                return false;
            }
            return true;
        }
    } else {
        free(r->resp);
        r->resp = NULL;
        r->resp_len = 0;
        if (!append(r, m.payload, m.payload_len)) {
            resume_with(r, 502, text, "response too large\n");
            return false;
        }
    }
    r->oscore_hdr[0] = '\0';
    if (osc != NULL) {
        /* RFC 8613 11.2: OSCORE header + application/oscore; outer 2.04 -> 200 (11.1). */
        if (cl_oscore_http_header_encode(osc->value, osc->len, r->oscore_hdr,
                                         sizeof r->oscore_hdr) != CL_OK) {
            resume_with(r, 502, text, "bad answer from the core\n");
            return false;
        }
        r->status = 200;
        r->ctype = "application/oscore";
    } else {
        r->status = cl_http_status_from_coap(m.code, r->resp_len > 0);
        r->ctype = have_cf ? ctype_from_cf(cf)
                   : r->route == R_EDHOC && r->resp_len > 0 ? r->req_ctype
                   : r->resp_len > 0 && CL_COAP_CLASS(m.code) >= 4 ? "text/plain; charset=utf-8"
                   : r->resp_len > 0 ? "application/octet-stream"
                                     : NULL;
    }
    r->state = S_READY;
    MHD_resume_connection(r->conn);
    return false;
}

/* ------------------------------------------------------------ long polls */

static bool poll_add(cl_http_t *ep, hreq_t *r)
{
    if (ep->npolls == ep->max_polls)
        return false;
    r->state = S_POLL;
    r->poll_deadline_ms = ep->now_ms + ep->poll_timeout_ms;
    r->poll_idx = ep->npolls;
    ep->polls[ep->npolls++] = r;
    ep->stats.polls_deferred++;
    return true;
}

static void poll_remove(cl_http_t *ep, hreq_t *r)
{
    size_t i = r->poll_idx;
    if (i >= ep->npolls || ep->polls[i] != r)
        return;
    hreq_t *last = ep->polls[--ep->npolls];
    ep->polls[i] = last;
    last->poll_idx = i;
    ep->polls[ep->npolls] = NULL;
    r->state = S_PENDING;
}

static hreq_t *poll_find(const cl_http_t *ep, uint64_t peer)
{
    for (size_t i = 0; i < ep->npolls; i++)
        if (ep->polls[i]->peer == peer)
            return ep->polls[i];
    return NULL;
}

/* Long polls past their deadline: 504, the client polls again. */
static void poll_expire(cl_http_t *ep)
{
    for (size_t i = ep->npolls; i-- > 0;) { /* swap-remove moves only checked entries */
        hreq_t *r = ep->polls[i];
        if (r->poll_deadline_ms > ep->now_ms)
            continue;
        poll_remove(ep, r);
        ep->stats.polls_timed_out++;
        resume_with(r, 504, "text/plain; charset=utf-8", "no action yet; poll again\n");
    }
}

/* The core's answer to a long poll (send ocall, transport http). */
static cl_status_t deliver(cl_http_t *ep, uint64_t peer, const uint8_t *msg, size_t len)
{
    hreq_t *r = (peer & CL_HTTP_PEER_BIT) != 0 ? poll_find(ep, peer) : NULL;
    if (r == NULL) { /* answered, timed out, closed - or never a poll */
        ep->stats.send_dropped_peer++;
        hlog(ep, CL_LOG_DEBUG, "msg=\"send for no pending poll dropped\" transport=http size=%zu",
             len);
        return CL_ERR_NOT_FOUND;
    }
    poll_remove(ep, r);
    ep->stats.polls_answered++;
    ep->resumed = true;
    (void)answer(ep, r, msg, len); /* (a Block2 answer goes back to the pending queue) */
    return CL_OK;
}

cl_status_t cl_http_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                         size_t len)
{
    cl_http_t *ep = ctx;
    if (ep == NULL || msg == NULL || len == 0 || len > CL_CORE_MAX_MESSAGE)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (transport != CL_TRANSPORT_HTTP)
        return CL_ERR_UNSUPPORTED;
    if (cl_sendq_held(&ep->sq)) { /* inside a batch: after its responses and commit */
        cl_status_t st = cl_sendq_push(&ep->sq, peer, transport, msg, len);
        if (st != CL_OK)
            ep->stats.send_dropped_full++;
        return st;
    }
    return deliver(ep, peer, msg, len);
}

size_t cl_http_held(const cl_http_t *ep)
{
    return ep != NULL ? ep->sq.n : 0;
}

void cl_http_hold(cl_http_t *ep)
{
    if (ep != NULL)
        cl_sendq_hold(&ep->sq);
}

static void warn_line(void *ctx, const char *line)
{
    hlog(ctx, CL_LOG_WARN, "%s", line);
}

void cl_http_release(cl_http_t *ep, bool ok)
{
    if (ep == NULL)
        return;
    if (!cl_sendq_end(&ep->sq, ok, "http", warn_line, ep, &ep->stats.send_dropped_failed))
        return;
    for (size_t i = 0; i < ep->sq.n; i++)
        (void)deliver(ep, ep->sq.e[i].peer, ep->sq.e[i].msg, ep->sq.e[i].len);
    cl_sendq_clear(&ep->sq);
}

/* ------------------------------------------------------------ batches */

static void run_batch(cl_http_t *ep)
{
    size_t n = 0, blen = 0;
    if (cl_batch_begin(ep->batch_in, sizeof ep->batch_in, &blen) != CL_OK)
        return;
    while (n < CL_CORE_MAX_BATCH && ep->pend_count > 0) {
        hreq_t *r = pend_pop(ep);
        cl_batch_item_t item = {.peer = r->peer,
                                .transport = CL_TRANSPORT_HTTP,
                                .flags = 0,
                                .msg = r->coap,
                                .len = r->coap_len};
        if (cl_batch_add(ep->batch_in, sizeof ep->batch_in, &blen, &item) != CL_OK) {
            resume_with(r, 500, "text/plain; charset=utf-8", "internal error\n");
            continue;
        }
        ep->inflight[n++] = r;
    }
    if (n == 0)
        return;
    size_t out_len = 0, count = 0, pos = 0, i = 0;
    ep->stats.batches++;
    cl_sendq_hold(&ep->sq); /* what the core sends now waits for the commit and the defers */
    cl_status_t st = ep->handler(ep->handler_ctx, ep->batch_in, blen, ep->batch_out,
                                 sizeof ep->batch_out, &out_len);
    bool committed = st == CL_OK; /* the handler's group commit succeeded */
    if (st == CL_OK && cl_batch_validate(ep->batch_out, out_len, &count) != CL_OK)
        st = CL_ERR_BAD_INPUT;
    if (st != CL_OK) {
        ep->stats.handler_errors++;
        hlog(ep, CL_LOG_ERROR, "msg=\"core handle failed\" transport=http status=%s requests=%zu",
             cl_status_str(st), n);
        for (size_t k = 0; k < n; k++)
            resume_with(ep->inflight[k], 503, "text/plain; charset=utf-8",
                        "core unavailable\n");
        cl_http_release(ep, committed); /* nothing can be waiting for these sends */
        return;
    }
    cl_batch_item_t it;
    while (cl_batch_next(ep->batch_out, out_len, &pos, &it) == CL_OK) {
        if (i < n && it.peer == ep->inflight[i]->peer) {
            hreq_t *r = ep->inflight[i];
            ep->inflight[i++] = NULL;
            if (it.len == 0 && (it.flags & CL_BATCH_F_DEFER) != 0) { /* a long poll */
                if (!poll_add(ep, r)) {
                    ep->stats.polls_refused++;
                    hlog(ep, CL_LOG_DEBUG, "msg=\"long poll refused: too many\" polls=%zu",
                         ep->npolls);
                    resume_with(r, 503, "text/plain; charset=utf-8",
                                "too many pending polls; retry later\n");
                }
                continue;
            }
            (void)answer(ep, r, it.msg, it.len);
            continue;
        }
        if (it.len > 0 && it.transport == CL_TRANSPORT_HTTP) {
            /* core-originated, like send(): the answer to a long poll (delivered below) */
            if (cl_sendq_push(&ep->sq, it.peer, it.transport, it.msg, it.len) != CL_OK)
                ep->stats.send_dropped_full++;
        } else if (it.len > 0) { /* for another transport: not ours to deliver */
            ep->stats.no_answer++;
        }
    }
    for (size_t k = 0; k < n; k++) /* items the core did not return */
        if (ep->inflight[k] != NULL) {
            ep->stats.no_answer++;
            resume_with(ep->inflight[k], 504, "text/plain; charset=utf-8",
                        "no answer from the core\n");
            ep->inflight[k] = NULL;
        }
    cl_http_release(ep, true); /* polls deferred above are known now */
}

cl_status_t cl_http_process(cl_http_t *ep, uint64_t now_ms)
{
    if (ep == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    ep->now_ms = now_ms;
    ep->resumed = false;
    poll_expire(ep);
    if (MHD_run(ep->d) != MHD_YES)
        return CL_FAIL(CL_ERR_STATE);
    for (int round = 0; round < ROUNDS_PER_PROCESS && ep->pend_count > 0; round++) {
        run_batch(ep);
        if (MHD_run(ep->d) != MHD_YES)
            return CL_FAIL(CL_ERR_STATE);
    }
    return CL_OK;
}

/* ------------------------------------------------------------ open / close */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    cl_http_t *ep = cls;
    char raw[256], line[320];
    vsnprintf(raw, sizeof raw, fmt, ap);
    for (char *p = raw; *p != '\0'; p++)
        if (*p == '"' || *p == '\n' || *p == '\r' || (unsigned char)*p < 0x20)
            *p = ' ';
    snprintf(line, sizeof line, "msg=\"libmicrohttpd\" detail=\"%s\"", raw);
    if (ep->log != NULL)
        ep->log(ep->log_ctx, CL_LOG_DEBUG, line);
}

cl_status_t cl_http_open(const cl_http_config_t *cfg, cl_http_handler_fn handler,
                         void *handler_ctx, cl_host_log_fn log, void *log_ctx, cl_http_t **out)
{
    if (cfg == NULL || cfg->listen == NULL || handler == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    struct addrinfo *ai = NULL;
    cl_status_t ast = cl_net_listen_addr(cfg->listen, SOCK_STREAM, cfg->bind_any, &ai);
    if (ast != CL_OK)
        return ast;
    cl_http_t *ep = calloc(1, sizeof *ep);
    if (ep == NULL) {
        freeaddrinfo(ai);
        return CL_FAIL(CL_ERR_FULL);
    }
    ep->epoll_fd = -1;
    ep->handler = handler;
    ep->handler_ctx = handler_ctx;
    ep->log = log;
    ep->log_ctx = log_ctx;
    ep->start_ms = ep->now_ms = mono_ms();
    unsigned max_conn = cfg->max_connections ? cfg->max_connections : CL_HTTP_MAX_CONNECTIONS;
    unsigned per_ip = cfg->per_ip_limit ? cfg->per_ip_limit : CL_HTTP_PER_IP_LIMIT;
    unsigned timeout = cfg->timeout_s ? cfg->timeout_s : CL_HTTP_TIMEOUT_S;
    size_t mem = cfg->memory_limit ? cfg->memory_limit : CL_HTTP_MEMORY_LIMIT;
    ep->pend_cap = (size_t)max_conn + 1;
    ep->pending = calloc(ep->pend_cap, sizeof *ep->pending);
    ep->poll_timeout_ms = cfg->poll_timeout_ms ? cfg->poll_timeout_ms : CL_HTTP_POLL_TIMEOUT_MS;
    ep->max_polls = cfg->max_polls ? cfg->max_polls : CL_HTTP_MAX_POLLS;
    if (ep->max_polls > (size_t)max_conn - max_conn / 4) /* keep room for other requests */
        ep->max_polls = (size_t)max_conn - max_conn / 4;
    if (ep->max_polls == 0)
        ep->max_polls = 1;
    ep->polls = calloc(ep->max_polls, sizeof *ep->polls);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    cl_status_t st = CL_OK;
    if (ep->pending == NULL || ep->polls == NULL ||
        (st = cl_sendq_init(&ep->sq, cfg->send_queue)) != CL_OK) {
        st = CL_FAIL(CL_ERR_FULL);
        goto fail;
    }
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 64) != 0) {
        hlog(ep, CL_LOG_ERROR, "msg=\"cannot bind\" transport=http listen=\"%s\" errno=%d err=\"%s\"",
             cfg->listen, errno, strerror(errno));
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &bl) != 0) {
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    ep->port = bound.ss_family == AF_INET
                   ? ntohs(((struct sockaddr_in *)(void *)&bound)->sin_port)
                   : ntohs(((struct sockaddr_in6 *)(void *)&bound)->sin6_port);
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    ep->d = MHD_start_daemon(flags, 0, NULL, NULL, access_cb, ep, MHD_OPTION_LISTEN_SOCKET, fd,
                             MHD_OPTION_CONNECTION_LIMIT, max_conn,
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                             MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                             MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
                             MHD_OPTION_NOTIFY_COMPLETED, completed_cb, ep,
                             MHD_OPTION_EXTERNAL_LOGGER, mhd_log, ep, MHD_OPTION_END);
    if (ep->d == NULL) {
        hlog(ep, CL_LOG_ERROR, "msg=\"cannot start the HTTP daemon\" listen=\"%s\"", cfg->listen);
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    fd = -1; /* the daemon owns it now */
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(ep->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (di == NULL || di->epoll_fd < 0) {
        st = CL_FAIL(CL_ERR_STATE);
        goto fail;
    }
    ep->epoll_fd = di->epoll_fd;
    freeaddrinfo(ai);
    hlog(ep, CL_LOG_INFO,
         "msg=\"http endpoint started\" port=%u max_connections=%u per_ip=%u timeout_s=%u "
         "max_polls=%zu poll_timeout_ms=%u",
         (unsigned)ep->port, max_conn, per_ip, timeout, ep->max_polls,
         (unsigned)ep->poll_timeout_ms);
    *out = ep;
    return CL_OK;
fail:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    cl_http_close(ep);
    return st;
}

void cl_http_set_health(cl_http_t *ep, cl_http_health_fn fn, void *ctx)
{
    if (ep != NULL) {
        ep->health = fn;
        ep->health_ctx = ctx;
    }
}

void cl_http_note_tick(cl_http_t *ep, uint64_t now_ms, bool ok)
{
    if (ep == NULL)
        return;
    if (ok) {
        ep->tick_ok_seen = true;
        ep->last_tick_ok_ms = now_ms;
    } else {
        ep->tick_ok_seen = false;
        ep->stats.tick_errors++;
    }
}

void cl_http_set_udp(cl_http_t *ep, const cl_udp_t *udp)
{
    if (ep != NULL)
        ep->udp = udp;
}

int cl_http_fd(const cl_http_t *ep)
{
    return ep != NULL ? ep->epoll_fd : -1;
}

int cl_http_timeout_ms(const cl_http_t *ep)
{
    if (ep == NULL)
        return -1;
    if (ep->pend_count > 0 || ep->resumed)
        return 0;
    int wait = -1;
    if (ep->npolls > 0) { /* the next long poll to answer 504 */
        uint64_t due = UINT64_MAX, now = mono_ms();
        for (size_t i = 0; i < ep->npolls; i++)
            if (ep->polls[i]->poll_deadline_ms < due)
                due = ep->polls[i]->poll_deadline_ms;
        wait = due <= now ? 0 : due - now > INT_MAX ? INT_MAX : (int)(due - now);
    }
    MHD_UNSIGNED_LONG_LONG t = 0;
    if (MHD_get_timeout(ep->d, &t) != MHD_YES)
        return wait;
    int mt = t > INT_MAX ? INT_MAX : (int)t;
    return wait >= 0 && wait < mt ? wait : mt;
}

uint16_t cl_http_port(const cl_http_t *ep)
{
    return ep != NULL ? ep->port : 0;
}

void cl_http_get_stats(const cl_http_t *ep, cl_http_stats_t *out)
{
    if (ep != NULL && out != NULL) {
        *out = ep->stats;
        out->polls_pending = ep->npolls;
    }
}

void cl_http_close(cl_http_t *ep)
{
    if (ep == NULL)
        return;
    if (ep->d != NULL) {
        const cl_http_stats_t *t = &ep->stats;
        hlog(ep, CL_LOG_INFO,
             "msg=\"http endpoint totals\" requests=%" PRIu64 " rx_bytes=%" PRIu64
             " responses=%" PRIu64 " tx_bytes=%" PRIu64 " batches=%" PRIu64 " oscore=%" PRIu64
             " edhoc=%" PRIu64 " plain=%" PRIu64 " too_large=%" PRIu64 " method=%" PRIu64
             " not_found=%" PRIu64 " media_type=%" PRIu64 " bad_request=%" PRIu64
             " no_answer=%" PRIu64 " handler_errors=%" PRIu64 " polls_deferred=%" PRIu64
             " polls_answered=%" PRIu64 " polls_timed_out=%" PRIu64 " polls_refused=%" PRIu64
             " sends_dropped=%" PRIu64,
             t->requests, t->rx_bytes, t->responses, t->tx_bytes, t->batches, t->oscore, t->edhoc,
             t->plain, t->rejected_too_large, t->rejected_method, t->rejected_not_found,
             t->rejected_media_type, t->rejected_bad_request, t->no_answer, t->handler_errors,
             t->polls_deferred, t->polls_answered, t->polls_timed_out, t->polls_refused,
             t->send_dropped_peer + t->send_dropped_full + t->send_dropped_failed);
        /* Suspended connections must be resumed before the daemon stops. */
        hreq_t *r;
        while ((r = pend_pop(ep)) != NULL)
            resume_with(r, 503, "text/plain; charset=utf-8", "shutting down\n");
        while (ep->npolls > 0) {
            r = ep->polls[ep->npolls - 1];
            poll_remove(ep, r);
            resume_with(r, 503, "text/plain; charset=utf-8", "shutting down\n");
        }
        (void)MHD_run(ep->d);
        MHD_stop_daemon(ep->d);
    }
    free(ep->pending);
    free(ep->polls);
    cl_sendq_free(&ep->sq);
    free(ep);
}
