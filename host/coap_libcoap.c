/*
 * coap_libcoap.c - cloisterd's CoAP/UDP endpoint on libcoap3 (coap_libcoap.h).
 * UNTRUSTED HOST SIDE.
 *
 * What: one coap_context_t with one UDP endpoint, a catch-all request
 * handler that turns libcoap's parsed request back into CoAP bytes (the core
 * trusts no parse of the host), libcoap "asyncs" to answer after the batch
 * (group commit), a bounded pool of pending requests, a bounded dedup cache
 * (peer, message id) -> response and a bounded peer table (session <-> peer
 * id) with udp_endpoint.c's id scheme (generation << 32 | slot).
 *
 * Why asyncs: libcoap wants a request answered inside its handler, but the
 * responses of a batch may leave only after the batch was handled and its
 * archive rows committed. An async with delay 0 makes libcoap acknowledge a
 * CON at once (empty ACK) and call the handler again - with a fresh response
 * PDU - when we trigger it after the core answered.
 *
 * The async's app data is a pool handle (generation << 32 | index + 1),
 * never a pointer, so a late or unexpected callback can never reach freed
 * memory.
 *
 * Core-originated messages (cl_lcoap_send) are held during a batch
 * (sendq.h) and handed to libcoap after the batch's group commit; libcoap
 * retransmits a CON until its ACK. Its NACK handler tells us about an RST to
 * (or the give-up of) a CON the core sent: the RST goes to the core in the
 * next batch as a 4-byte RST item, like on the native stack.
 */
#include "coap_libcoap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <coap3/coap.h>

#include "cloister/coap.h"
#include "cloister/core.h"
#include "dedup.h"
#include "net_addr.h"
#include "sendq.h"

#define NO_ENT CL_DEDUP_NONE
#define NO_PEND UINT32_MAX  /* a batch item that is not a request (an RST) */
#define CORE_CON_RING 1024  /* (peer, mid) of CONs the core sent, for the NACK handler */
#define PEND_REAP_MS 30000u /* a triggered async older than this was lost by libcoap */
#define MAX_ROUNDS 16       /* batches per cl_lcoap_process call */

typedef struct peer {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint32_t gen;
    bool used;
    uint64_t last_ms;
    coap_session_t *session; /* referenced while in the table */
    uint64_t rx, rx_bytes, tx, tx_bytes;
} peer_t;


enum { PEND_FREE = 0, PEND_COLLECTED, PEND_READY };

typedef struct pend {
    uint32_t gen;
    uint8_t state;
    bool fail; /* handler failed: answer 5.03 */
    uint16_t mid;
    uint64_t peer;
    uint64_t t_ms;
    int32_t dd;              /* dedup entry or NO_ENT */
    coap_session_t *session; /* referenced while the pend lives */
    coap_async_t *async;
    uint8_t *resp;
    size_t resp_len;
    int32_t next_free;
} pend_t;

struct cl_lcoap {
    coap_context_t *ctx;
    coap_endpoint_t *endpoint;
    uint16_t port;
    cl_udp_handler_fn handler;
    void *handler_ctx;
    cl_host_log_fn log;
    void *log_ctx;
    uint16_t nstart;
    uint32_t lifetime_ms;
    uint64_t now_ms, last_reap_ms;

    peer_t *peers;
    size_t max_peers;

    cl_dedup_t dd; /* answered requests, for retransmissions */

    pend_t *pend;
    size_t max_pending, npending;
    int32_t pend_free;

    /* the batch being collected */
    size_t nreq;
    uint32_t cur[CL_CORE_MAX_BATCH]; /* pend indices, NO_PEND for an RST item */
    size_t blen;
    uint8_t batch_in[CL_CORE_MAX_BATCH_BYTES];
    uint8_t batch_out[CL_CORE_MAX_BATCH_BYTES];
    uint8_t msg[CL_CORE_MAX_MESSAGE];
    size_t handed; /* requests handed to the core in this process call */

    cl_sendq_t sq; /* core-originated messages held during a batch */
    struct {
        uint64_t peer;
        uint16_t mid;
        bool used;
    } core_con[CORE_CON_RING];
    size_t core_con_next;

    cl_udp_stats_t stats;
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void
ulog(const cl_lcoap_t *ep, int level, const char *fmt, ...)
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

/* libcoap's log handler is global: it goes to the most recently opened endpoint's sink. */
static cl_lcoap_t *g_log_ep;

static void lib_log(coap_log_t level, const char *message)
{
    cl_lcoap_t *ep = g_log_ep;
    char clean[256];
    size_t n = 0;
    if (ep == NULL || strstr(message, "bad hop limit") != NULL) /* send_nothing's drop */
        return;
    for (const char *p = message; *p != '\0' && n + 1 < sizeof clean; p++)
        clean[n++] = (*p == '"' || *p == '\n' || (unsigned char)*p < 0x20) ? ' ' : *p;
    while (n > 0 && clean[n - 1] == ' ')
        n--;
    clean[n] = '\0';
    /* Below error, libcoap logs per datagram ("discard malformed PDU", "got RST"): a
     * remote could flood the log, so those are debug lines (and counted). */
    if (strstr(message, "malformed") != NULL)
        ep->stats.dropped_bad++;
    bool per_datagram = strstr(message, "got RST") != NULL; /* LOG_ALERT, but peer-driven */
    ulog(ep, level <= LOG_ERR && !per_datagram ? CL_LOG_ERROR : CL_LOG_DEBUG,
         "msg=\"libcoap\" text=\"%s\"", clean);
}

static void addr_str(const struct sockaddr_storage *a, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)a;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        snprintf(out, size, "%s:%u", host, (unsigned)ntohs(s->sin_port));
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        snprintf(out, size, "[%s]:%u", host, (unsigned)ntohs(s->sin6_port));
    } else {
        snprintf(out, size, "?");
    }
}

/* ------------------------------------------------------------ peers */

static uint64_t peer_id(const cl_lcoap_t *ep, size_t slot)
{
    return (uint64_t)ep->peers[slot].gen << 32 | (uint64_t)slot;
}

static peer_t *peer_by_id(cl_lcoap_t *ep, uint64_t id)
{
    uint64_t slot = id & 0xffffffffu;
    if (slot >= ep->max_peers || !ep->peers[slot].used ||
        ep->peers[slot].gen != (uint32_t)(id >> 32))
        return NULL;
    return &ep->peers[slot];
}

static void log_peer(const cl_lcoap_t *ep, int level, const peer_t *p, const char *msg)
{
    char a[INET6_ADDRSTRLEN + 16];
    addr_str(&p->addr, a, sizeof a);
    ulog(ep, level,
         "msg=\"%s\" peer=%s rx=%" PRIu64 " rx_bytes=%" PRIu64 " tx=%" PRIu64 " tx_bytes=%" PRIu64,
         msg, a, p->rx, p->rx_bytes, p->tx, p->tx_bytes);
}

/* The peer slot of a session (its app data caches slot + 1). */
static size_t peer_of_session(cl_lcoap_t *ep, coap_session_t *s)
{
    uintptr_t hint = (uintptr_t)coap_session_get_app_data(s);
    if (hint != 0 && hint <= ep->max_peers && ep->peers[hint - 1].used &&
        ep->peers[hint - 1].session == s) {
        ep->peers[hint - 1].last_ms = ep->now_ms;
        return hint - 1;
    }
    const coap_address_t *ra = coap_session_get_addr_remote(s);
    socklen_t len = ra->size;
    if (len > sizeof(struct sockaddr_storage))
        len = sizeof(struct sockaddr_storage);
    size_t free_slot = ep->max_peers, oldest = 0, slot;
    for (size_t i = 0; i < ep->max_peers; i++) {
        peer_t *p = &ep->peers[i];
        if (!p->used) {
            if (free_slot == ep->max_peers)
                free_slot = i;
            continue;
        }
        if (p->addr_len == len && memcmp(&p->addr, &ra->addr.sa, len) == 0) {
            /* Same address, new libcoap session (the old one idled out). */
            if (p->session != s) {
                coap_session_release(p->session);
                p->session = coap_session_reference(s);
                coap_session_set_nstart(s, ep->nstart);
            }
            p->last_ms = ep->now_ms;
            coap_session_set_app_data(s, (void *)(uintptr_t)(i + 1));
            return i;
        }
        if (p->last_ms < ep->peers[oldest].last_ms || !ep->peers[oldest].used)
            oldest = i;
    }
    slot = free_slot;
    if (slot == ep->max_peers) {
        slot = oldest;
        log_peer(ep, CL_LOG_DEBUG, &ep->peers[slot], "peer evicted");
        ep->stats.peers_evicted++;
        if (ep->peers[slot].session != NULL) {
            coap_session_set_app_data(ep->peers[slot].session, NULL);
            coap_session_release(ep->peers[slot].session);
        }
    }
    peer_t *p = &ep->peers[slot];
    uint32_t gen = p->gen + 1;
    memset(p, 0, sizeof *p);
    p->gen = gen;
    p->used = true;
    memcpy(&p->addr, &ra->addr.sa, len);
    p->addr_len = len;
    p->last_ms = ep->now_ms;
    p->session = coap_session_reference(s);
    coap_session_set_app_data(s, (void *)(uintptr_t)(slot + 1));
    coap_session_set_nstart(s, ep->nstart);
    return slot;
}

/* ------------------------------------------------------------ dedup cache (dedup.h) */

static cl_dedup_ent_t *dd_of(cl_lcoap_t *ep, const pend_t *p)
{
    if (p->dd == NO_ENT)
        return NULL;
    cl_dedup_ent_t *e = &ep->dd.e[p->dd];
    if (!e->used || !e->pending || e->peer != p->peer || e->mid != p->mid)
        return NULL; /* evicted meanwhile */
    return e;
}

/* ------------------------------------------------------------ pending pool */

static uint64_t pend_handle(const cl_lcoap_t *ep, const pend_t *p)
{
    return (uint64_t)p->gen << 32 | ((uint64_t)(p - ep->pend) + 1u);
}

static pend_t *pend_by_handle(cl_lcoap_t *ep, uint64_t h)
{
    uint64_t i = (h & 0xffffffffu);
    if (i == 0 || i > ep->max_pending)
        return NULL;
    pend_t *p = &ep->pend[i - 1];
    if (p->state == PEND_FREE || p->gen != (uint32_t)(h >> 32))
        return NULL;
    return p;
}

static pend_t *pend_alloc(cl_lcoap_t *ep)
{
    if (ep->pend_free == NO_ENT)
        return NULL;
    pend_t *p = &ep->pend[ep->pend_free];
    ep->pend_free = p->next_free;
    uint32_t gen = p->gen + 1;
    memset(p, 0, sizeof *p);
    p->gen = gen;
    p->dd = NO_ENT;
    p->next_free = NO_ENT;
    ep->npending++;
    return p;
}

static void pend_release(cl_lcoap_t *ep, pend_t *p)
{
    if (p->async != NULL)
        coap_async_set_app_data(p->async, NULL);
    if (p->session != NULL)
        coap_session_release(p->session);
    free(p->resp);
    uint32_t gen = p->gen;
    memset(p, 0, sizeof *p);
    p->gen = gen;
    p->next_free = ep->pend_free;
    ep->pend_free = (int32_t)(p - ep->pend);
    ep->npending--;
}

/* Frees pends whose async libcoap never called back (session gone). */
static void pend_reap(cl_lcoap_t *ep)
{
    if (ep->npending == 0 || ep->now_ms < ep->last_reap_ms + 1000)
        return;
    ep->last_reap_ms = ep->now_ms;
    for (size_t i = 0; i < ep->max_pending; i++) {
        pend_t *p = &ep->pend[i];
        if (p->state == PEND_READY && p->t_ms + PEND_REAP_MS <= ep->now_ms) {
            p->async = NULL; /* may be gone: never touch it */
            cl_dedup_ent_t *e = dd_of(ep, p);
            if (e != NULL)
                e->pending = false;
            pend_release(ep, p);
        }
    }
}

/* ------------------------------------------------------------ PDU <-> bytes */

/* Re-serializes libcoap's parse of a request: header, token, options in order, payload. */
static bool pdu_to_bytes(const coap_pdu_t *pdu, uint8_t *out, size_t size, size_t *len)
{
    coap_bin_const_t tok = coap_pdu_get_token(pdu);
    cl_coap_builder_t b;
    if (tok.length > 8)
        return false;
    cl_coap_build_init(&b, out, size, (uint8_t)coap_pdu_get_type(pdu),
                       (uint8_t)coap_pdu_get_code(pdu), (uint16_t)coap_pdu_get_mid(pdu), tok.s,
                       tok.length);
    coap_opt_iterator_t oi;
    coap_opt_t *opt;
    coap_option_iterator_init(pdu, &oi, COAP_OPT_ALL);
    while ((opt = coap_option_next(&oi)) != NULL)
        (void)cl_coap_build_option(&b, oi.number, coap_opt_value(opt), coap_opt_length(opt));
    size_t dlen = 0;
    const uint8_t *data = NULL;
    if (coap_get_data(pdu, &dlen, &data) && dlen > 0)
        (void)cl_coap_build_payload(&b, data, dlen);
    return cl_coap_build_finish(&b, len) == CL_OK;
}

/* Fills a libcoap response from the core's bytes: code, options in order, payload. */
static bool bytes_to_response(cl_lcoap_t *ep, const uint8_t *msg, size_t len, coap_pdu_t *resp)
{
    cl_coap_msg_t m;
    if (cl_coap_parse(&m, msg, len) != CL_OK) {
        ulog(ep, CL_LOG_WARN, "msg=\"core response unparsable, dropped\" size=%zu", len);
        return false;
    }
    if (m.code == CL_COAP_EMPTY)
        return false; /* an empty ACK/RST from the core: libcoap does the message layer */
    coap_pdu_set_code(resp, (coap_pdu_code_t)m.code);
    for (size_t i = 0; i < m.n_options; i++)
        if (coap_add_option(resp, m.options[i].number, m.options[i].len, m.options[i].value) == 0) {
            ulog(ep, CL_LOG_WARN, "msg=\"response option rejected by libcoap\" option=%u",
                 (unsigned)m.options[i].number);
            coap_pdu_set_code(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR);
            return true;
        }
    if (m.payload_len > 0 && !coap_add_data(resp, m.payload_len, m.payload)) {
        ulog(ep, CL_LOG_WARN, "msg=\"response payload rejected by libcoap\" size=%zu",
             m.payload_len);
        coap_pdu_set_code(resp, COAP_RESPONSE_CODE_INTERNAL_ERROR);
    }
    return true;
}

static void count_tx(cl_lcoap_t *ep, uint64_t peer, size_t len)
{
    peer_t *p = peer_by_id(ep, peer);
    ep->stats.tx++;
    ep->stats.tx_bytes += len;
    if (p != NULL) {
        p->tx++;
        p->tx_bytes += len;
    }
}

/* ------------------------------------------------------------ sending */

static cl_status_t send_pdu(cl_lcoap_t *ep, peer_t *p, const uint8_t *msg, size_t len)
{
    cl_coap_msg_t m;
    if (cl_coap_parse(&m, msg, len) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    coap_pdu_t *pdu = coap_pdu_init((coap_pdu_type_t)m.type, (coap_pdu_code_t)m.code, m.mid,
                                    coap_session_max_pdu_size(p->session));
    if (pdu == NULL)
        return CL_FAIL(CL_ERR_FULL);
    bool ok = m.tkl == 0 || coap_add_token(pdu, m.tkl, m.token);
    for (size_t i = 0; ok && i < m.n_options; i++)
        ok = coap_add_option(pdu, m.options[i].number, m.options[i].len, m.options[i].value) != 0;
    if (ok && m.payload_len > 0)
        ok = coap_add_data(pdu, m.payload_len, m.payload) != 0;
    if (!ok) {
        coap_delete_pdu(pdu);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    /* coap_send takes the PDU; a CON is retransmitted by libcoap until ACKed. */
    if (coap_send(p->session, pdu) == COAP_INVALID_MID) {
        ulog(ep, CL_LOG_WARN, "msg=\"send failed\" size=%zu", len);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    p->tx++;
    p->tx_bytes += len;
    ep->stats.tx++;
    ep->stats.tx_bytes += len;
    return CL_OK;
}

/* Hands a core-originated message to libcoap (a CON is remembered for the NACK handler). */
static cl_status_t send_core(cl_lcoap_t *ep, uint64_t peer, const uint8_t *msg, size_t len)
{
    peer_t *p = peer_by_id(ep, peer);
    if (p == NULL || p->session == NULL) {
        ep->stats.notify_dropped_peer++;
        return CL_ERR_NOT_FOUND;
    }
    cl_status_t st = send_pdu(ep, p, msg, len);
    if (st != CL_OK)
        return st;
    ep->stats.notify_sent++;
    if (len >= 4 && ((msg[0] >> 4) & 3) == 0) {
        size_t k = ep->core_con_next;
        ep->core_con_next = (k + 1) % CORE_CON_RING;
        ep->core_con[k].peer = peer;
        ep->core_con[k].mid = (uint16_t)(msg[2] << 8 | msg[3]);
        ep->core_con[k].used = true;
    }
    return CL_OK;
}

cl_status_t cl_lcoap_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                          size_t len)
{
    cl_lcoap_t *ep = ctx;
    if (ep == NULL || msg == NULL || len == 0 || len > CL_CORE_MAX_MESSAGE)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (transport != CL_TRANSPORT_COAP)
        return CL_ERR_UNSUPPORTED;
    peer_t *p = peer_by_id(ep, peer);
    if (p == NULL || p->session == NULL) {
        ep->stats.notify_dropped_peer++;
        return CL_ERR_NOT_FOUND;
    }
    if (cl_sendq_held(&ep->sq)) { /* inside a batch: leaves after its group commit */
        cl_status_t st = cl_sendq_push(&ep->sq, peer, transport, msg, len);
        if (st != CL_OK)
            ep->stats.notify_dropped_full++;
        return st;
    }
    return send_core(ep, peer, msg, len);
}

void cl_lcoap_hold(cl_lcoap_t *ep)
{
    if (ep != NULL)
        cl_sendq_hold(&ep->sq);
}

static void warn_line(void *ctx, const char *line)
{
    ulog(ctx, CL_LOG_WARN, "%s", line);
}

void cl_lcoap_release(cl_lcoap_t *ep, bool ok)
{
    if (ep == NULL)
        return;
    if (!cl_sendq_end(&ep->sq, ok, "coap", warn_line, ep, &ep->stats.notify_dropped_failed))
        return;
    for (size_t i = 0; i < ep->sq.n; i++)
        (void)send_core(ep, ep->sq.e[i].peer, ep->sq.e[i].msg, ep->sq.e[i].len);
    cl_sendq_clear(&ep->sq);
}

/* ------------------------------------------------------------ the batch */

static void run_batch(cl_lcoap_t *ep)
{
    size_t nreq = ep->nreq, out_len = 0;
    if (nreq == 0)
        return;
    ep->nreq = 0;
    ep->handed += nreq;
    ep->stats.batches++;
    cl_sendq_hold(&ep->sq); /* core-originated messages wait for the group commit */
    cl_status_t st = ep->handler(ep->handler_ctx, ep->batch_in, ep->blen, ep->batch_out,
                                 sizeof ep->batch_out, &out_len);
    bool committed = st == CL_OK;
    size_t count = 0;
    if (st == CL_OK && cl_batch_validate(ep->batch_out, out_len, &count) != CL_OK) {
        ulog(ep, CL_LOG_ERROR, "msg=\"core returned an invalid batch\" size=%zu", out_len);
        st = CL_ERR_BAD_INPUT;
    }
    if (st != CL_OK) {
        ep->stats.handler_errors++;
        ulog(ep, CL_LOG_ERROR, "msg=\"core handle failed\" status=%s requests=%zu",
             cl_status_str(st), nreq);
    } else {
        size_t pos = 0, i = 0;
        cl_batch_item_t it;
        while (cl_batch_next(ep->batch_out, out_len, &pos, &it) == CL_OK) {
            pend_t *p = i < nreq && ep->cur[i] != NO_PEND ? &ep->pend[ep->cur[i]] : NULL;
            i++;
            if (p != NULL && it.peer == p->peer) {
                if (it.len > 0 && it.transport == CL_TRANSPORT_COAP) {
                    p->resp = malloc(it.len);
                    if (p->resp != NULL) {
                        memcpy(p->resp, it.msg, it.len);
                        p->resp_len = it.len;
                    }
                }
                continue;
            }
            /* Not positional: a core-originated message (notification). */
            if (it.len == 0)
                continue;
            if (it.transport != CL_TRANSPORT_COAP) {
                ulog(ep, CL_LOG_WARN, "msg=\"response for another transport dropped\" transport=%u",
                     (unsigned)it.transport);
                continue;
            }
            if (cl_lcoap_send(ep, it.peer, it.transport, it.msg, it.len) == CL_ERR_NOT_FOUND)
                ep->stats.dropped_unmatched++;
        }
    }
    cl_lcoap_release(ep, committed);
    for (size_t i = 0; i < nreq; i++) {
        if (ep->cur[i] == NO_PEND)
            continue;
        pend_t *p = &ep->pend[ep->cur[i]];
        cl_dedup_ent_t *e = dd_of(ep, p);
        if (st != CL_OK) {
            p->fail = true;
            if (e != NULL) { /* forget it: a new request may retry */
                cl_dedup_unlink(&ep->dd, p->dd);
                e->pending = false;
                e->peer = UINT64_MAX;
            }
            p->dd = NO_ENT;
        }
        p->state = PEND_READY;
        p->t_ms = ep->now_ms;
        coap_async_trigger(p->async);
    }
    if (cl_batch_begin(ep->batch_in, sizeof ep->batch_in, &ep->blen) != CL_OK)
        ep->blen = 0; /* cannot happen: the buffer is big enough */
}

/* ------------------------------------------------------------ libcoap handler */

/*
 * "No answer" from a handler. libcoap 4.3.1 turns a response left at code 0
 * into an empty ACK when it is an ACK (right), but sends a NON or CON with
 * code 0.00 AND the token otherwise - a malformed message (RFC 7252 4.1).
 * The one drop path in coap_send_internal is a 5.08 (Loop Detected) with a
 * bad Hop-Limit: a response so marked is deleted unsent. Only used for
 * non-ACK responses; an ACK stays an empty ACK.
 */
static void send_nothing(coap_pdu_t *response)
{
    if (coap_pdu_get_type(response) == COAP_MESSAGE_ACK) {
        coap_pdu_set_code(response, COAP_EMPTY_CODE);
        return;
    }
    coap_pdu_set_code(response, COAP_RESPONSE_CODE(508));
    (void)coap_add_option(response, COAP_OPTION_HOP_LIMIT, 0, NULL);
}

static void on_request(coap_resource_t *res, coap_session_t *session, const coap_pdu_t *request,
                       const coap_string_t *query, coap_pdu_t *response)
{
    (void)res;
    (void)query;
    cl_lcoap_t *ep = coap_get_app_data(coap_session_get_context(session));
    if (ep == NULL)
        return;
    uint16_t mid = (uint16_t)coap_pdu_get_mid(request);

    /* Second call of a triggered async: the core's answer goes out now. */
    coap_async_t *async = coap_find_async(session, coap_pdu_get_token(request));
    if (async != NULL) {
        pend_t *p = pend_by_handle(ep, (uint64_t)(uintptr_t)coap_async_get_app_data(async));
        /* (libcoap gives the async's copy of the request a new message id) */
        if (p != NULL && p->state == PEND_READY && p->async == async) {
            cl_dedup_ent_t *e = dd_of(ep, p);
            if (p->fail) {
                coap_pdu_set_code(response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE);
            } else if (p->resp_len > 0 && bytes_to_response(ep, p->resp, p->resp_len, response)) {
                count_tx(ep, p->peer, p->resp_len);
            } else {
                send_nothing(response); /* the core chose not to answer */
            }
            if (e != NULL) {
                e->pending = false;
                e->resp = p->resp; /* the cache takes the bytes */
                e->resp_len = p->resp_len;
                p->resp = NULL;
            }
            p->async = NULL; /* libcoap frees it after this call */
            coap_async_set_app_data(async, NULL);
            pend_release(ep, p);
            return;
        }
        /* A live async with this token that is not ours to answer: libcoap drops
         * duplicates of a pending async before calling us, so just ignore. */
        ep->stats.dropped_inflight++;
        send_nothing(response);
        return;
    }

    size_t slot = peer_of_session(ep, session);
    uint64_t peer = peer_id(ep, slot);
    ep->stats.rx++;
    ep->peers[slot].rx++;

    int32_t d = cl_dedup_find(&ep->dd, peer, mid);
    if (d != NO_ENT) {
        cl_dedup_ent_t *e = &ep->dd.e[d];
        if (e->pending) {
            ep->stats.dropped_inflight++;
            send_nothing(response);
        } else {
            ep->stats.dedup_hits++;
            if (e->resp_len > 0 && bytes_to_response(ep, e->resp, e->resp_len, response))
                count_tx(ep, peer, e->resp_len);
            else
                send_nothing(response);
        }
        return;
    }

    size_t len = 0;
    if (!pdu_to_bytes(request, ep->msg, sizeof ep->msg, &len)) {
        ep->stats.dropped_bad++;
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_REQUEST_TOO_LARGE);
        return;
    }
    ep->stats.rx_bytes += len;
    ep->peers[slot].rx_bytes += len;
    if (len >= COAP_RXBUFFER_SIZE) {
        /* libcoap reads into a COAP_RXBUFFER_SIZE (1472) buffer and does not look at
         * MSG_TRUNC: a datagram of that size may be the cut head of a bigger one. */
        ep->stats.dropped_big++;
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_REQUEST_TOO_LARGE);
        return;
    }
    if (ep->nreq == CL_CORE_MAX_BATCH)
        run_batch(ep); /* a full batch goes to the core now */
    pend_t *p = pend_alloc(ep);
    if (p == NULL) {
        ep->stats.dropped_inflight++;
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE);
        return;
    }
    /* On return with code 0 libcoap sends an empty ACK for a CON - and, in 4.3.1, a
     * malformed Empty NON with the token for a NON: suppressed by send_nothing. */
    if (coap_pdu_get_type(request) != COAP_MESSAGE_CON)
        send_nothing(response);
    p->async = coap_register_async(session, request, 0);
    if (p->async == NULL) {
        pend_release(ep, p);
        ep->stats.handler_errors++;
        coap_pdu_set_code(response, COAP_RESPONSE_CODE_SERVICE_UNAVAILABLE);
        return;
    }
    cl_batch_item_t item = {
        .peer = peer, .transport = CL_TRANSPORT_COAP, .flags = 0, .msg = ep->msg, .len = len};
    if (cl_batch_add(ep->batch_in, sizeof ep->batch_in, &ep->blen, &item) != CL_OK) {
        /* cannot happen: 64 items of <= CL_CORE_MAX_MESSAGE fit */
        coap_free_async(session, p->async);
        p->async = NULL;
        pend_release(ep, p);
        ep->stats.dropped_bad++;
        return;
    }
    p->state = PEND_COLLECTED;
    p->mid = mid;
    p->peer = peer;
    p->t_ms = ep->now_ms;
    p->session = coap_session_reference(session);
    p->dd = cl_dedup_insert(&ep->dd, peer, mid, ep->now_ms);
    coap_async_set_app_data(p->async, (void *)(uintptr_t)pend_handle(ep, p));
    ep->cur[ep->nreq++] = (uint32_t)(p - ep->pend);
}

/* ------------------------------------------------------------ NACKs */

/*
 * libcoap gave up on a CON (MAX_RETRANSMIT) or got an RST for it. When the
 * CON was the core's, count it; an RST goes to the core in the batch being
 * collected (4-byte RST, the peer's message id) so it can cancel what the
 * message belonged to. RSTs match at most one CON each: a flood is bounded
 * by what we sent.
 */
static void on_nack(coap_session_t *session, const coap_pdu_t *sent,
                    const coap_nack_reason_t reason, const coap_mid_t id)
{
    (void)sent;
    cl_lcoap_t *ep = coap_get_app_data(coap_session_get_context(session));
    if (ep == NULL || (reason != COAP_NACK_RST && reason != COAP_NACK_TOO_MANY_RETRIES))
        return;
    uintptr_t hint = (uintptr_t)coap_session_get_app_data(session);
    if (hint == 0 || hint > ep->max_peers || !ep->peers[hint - 1].used ||
        ep->peers[hint - 1].session != session)
        return;
    uint64_t peer = peer_id(ep, hint - 1);
    uint16_t mid = (uint16_t)id;
    size_t k = 0;
    while (k < CORE_CON_RING &&
           !(ep->core_con[k].used && ep->core_con[k].peer == peer && ep->core_con[k].mid == mid))
        k++;
    if (k == CORE_CON_RING)
        return; /* one of libcoap's separate responses */
    ep->core_con[k].used = false;
    if (reason == COAP_NACK_TOO_MANY_RETRIES) {
        ep->stats.notify_timeouts++;
        return;
    }
    ep->stats.notify_rst++;
    if (ep->nreq == CL_CORE_MAX_BATCH)
        run_batch(ep);
    const uint8_t rst[4] = {0x70, 0x00, (uint8_t)(mid >> 8), (uint8_t)mid};
    cl_batch_item_t item = {
        .peer = peer, .transport = CL_TRANSPORT_COAP, .flags = 0, .msg = rst, .len = sizeof rst};
    if (cl_batch_add(ep->batch_in, sizeof ep->batch_in, &ep->blen, &item) != CL_OK)
        return; /* cannot happen: a batch has room for CL_CORE_MAX_BATCH items */
    ep->cur[ep->nreq++] = NO_PEND;
}

/* ------------------------------------------------------------ one pass */

static bool fd_ready(const cl_lcoap_t *ep)
{
    struct pollfd p = {.fd = coap_context_get_coap_fd(ep->ctx), .events = POLLIN};
    return poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

cl_status_t cl_lcoap_process(cl_lcoap_t *ep, uint64_t now_ms, size_t *got)
{
    if (ep == NULL || got == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *got = 0;
    ep->now_ms = now_ms;
    ep->handed = 0;
    cl_dedup_expire(&ep->dd, ep->now_ms);
    pend_reap(ep);
    for (int round = 0; round < MAX_ROUNDS; round++) {
        /* libcoap reads one datagram per call: drain up to a batch. */
        for (int k = 0; k < CL_CORE_MAX_BATCH && ep->nreq < CL_CORE_MAX_BATCH; k++) {
            if (coap_io_process(ep->ctx, COAP_IO_NO_WAIT) < 0) {
                ulog(ep, CL_LOG_ERROR, "msg=\"coap_io_process failed\"");
                break;
            }
            if (!fd_ready(ep))
                break;
        }
        if (ep->nreq == 0)
            break;
        run_batch(ep);
        /* Fires the triggered asyncs: the responses leave now. */
        if (coap_io_process(ep->ctx, COAP_IO_NO_WAIT) < 0)
            break;
        if (ep->nreq == 0 && !fd_ready(ep))
            break;
    }
    if (ep->nreq > 0) { /* round limit: answer them; libcoap's timer fires the asyncs */
        run_batch(ep);
        (void)coap_io_process(ep->ctx, COAP_IO_NO_WAIT);
    }
    *got = ep->handed;
    return CL_OK;
}

/* ------------------------------------------------------------ open / close */

/* The bound port from coap_endpoint_str ("127.0.0.1:5683" / "[::1]:5683", maybe " UDP"). */
static uint16_t endpoint_port(const coap_endpoint_t *e)
{
    const char *s = coap_endpoint_str(e);
    const char *colon = s != NULL ? strrchr(s, ':') : NULL;
    if (colon == NULL)
        return 0;
    long v = strtol(colon + 1, NULL, 10);
    return v > 0 && v <= 65535 ? (uint16_t)v : 0;
}

cl_status_t cl_lcoap_open(const cl_lcoap_config_t *cfg, cl_udp_handler_fn handler,
                          void *handler_ctx, cl_host_log_fn log, void *log_ctx, cl_lcoap_t **out)
{
    if (cfg == NULL || cfg->listen == NULL || handler == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    struct addrinfo *ai = NULL;
    cl_status_t ast = cl_net_listen_addr(cfg->listen, SOCK_DGRAM, cfg->bind_any, &ai);
    if (ast != CL_OK)
        return ast;
    if (ai->ai_addrlen > sizeof(struct sockaddr_storage)) {
        freeaddrinfo(ai);
        return CL_FAIL(CL_ERR_INVALID_ARG);
    }

    cl_status_t st = CL_OK;
    cl_lcoap_t *ep = calloc(1, sizeof *ep);
    if (ep == NULL) {
        freeaddrinfo(ai);
        return CL_FAIL(CL_ERR_FULL);
    }
    ep->handler = handler;
    ep->handler_ctx = handler_ctx;
    ep->log = log;
    ep->log_ctx = log_ctx;
    ep->lifetime_ms =
        cfg->exchange_lifetime_ms ? cfg->exchange_lifetime_ms : CL_UDP_EXCHANGE_LIFETIME_MS;
    ep->max_peers = cfg->max_peers ? cfg->max_peers : CL_UDP_MAX_PEERS;
    ep->max_pending = cfg->max_pending ? cfg->max_pending : CL_LCOAP_MAX_PENDING;
    ep->nstart = cfg->nstart ? cfg->nstart : COAP_DEFAULT_NSTART;
    if (cfg->nstart == 0 && getenv("CLOISTER_COAP_NSTART") != NULL) { /* experiments */
        long v = strtol(getenv("CLOISTER_COAP_NSTART"), NULL, 10);
        if (v > 0 && v <= 1024)
            ep->nstart = (uint16_t)v;
    }
    if (ep->max_peers > 0x7fffffff || ep->max_pending > 0x7fffffff) {
        st = CL_FAIL(CL_ERR_INVALID_ARG);
        goto fail;
    }
    if ((st = cl_sendq_init(&ep->sq, cfg->send_queue)) != CL_OK)
        goto fail;
    if ((st = cl_dedup_init(&ep->dd, cfg->dedup_entries ? cfg->dedup_entries : CL_UDP_DEDUP_ENTRIES,
                            ep->lifetime_ms)) != CL_OK)
        goto fail;
    ep->peers = calloc(ep->max_peers, sizeof *ep->peers);
    ep->pend = calloc(ep->max_pending, sizeof *ep->pend);
    if (ep->peers == NULL || ep->pend == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto fail;
    }
    for (size_t i = 0; i < ep->max_pending; i++)
        ep->pend[i].next_free = i + 1 < ep->max_pending ? (int32_t)(i + 1) : NO_ENT;
    ep->pend_free = 0;
    if (cl_batch_begin(ep->batch_in, sizeof ep->batch_in, &ep->blen) != CL_OK) {
        st = CL_FAIL(CL_ERR_STATE);
        goto fail;
    }

    coap_startup();
    g_log_ep = ep;
    coap_set_log_handler(lib_log);
    coap_set_log_level(getenv("CL_LCOAP_DEBUG") ? LOG_DEBUG : LOG_WARNING);
    ep->ctx = coap_new_context(NULL);
    if (ep->ctx == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto fail;
    }
    coap_set_app_data(ep->ctx, ep);
    /* Sessions nobody references (pings, garbage, spoofed sources) stay bounded; the
     * peer table references its own (max_peers). */
    coap_context_set_max_idle_sessions(ep->ctx, (unsigned)ep->max_peers);
    /* Never COAP_BLOCK_USE_LIBCOAP: block options are the core's business. */
    coap_context_set_block_mode(ep->ctx, 0);

    coap_address_t addr;
    coap_address_init(&addr);
    memcpy(&addr.addr.sa, ai->ai_addr, ai->ai_addrlen);
    addr.size = ai->ai_addrlen;
    ep->endpoint = coap_new_endpoint(ep->ctx, &addr, COAP_PROTO_UDP);
    if (ep->endpoint == NULL) {
        ulog(ep, CL_LOG_ERROR, "msg=\"cannot bind\" listen=\"%s\" errno=%d err=\"%s\"", cfg->listen,
             errno, strerror(errno));
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    /* The core's answers may be up to CL_CORE_MAX_MESSAGE: libcoap must not refuse them. */
    coap_endpoint_set_default_mtu(ep->endpoint, CL_CORE_MAX_MESSAGE + 64);
    ep->port = endpoint_port(ep->endpoint);
    if (ep->port == 0) {
        ulog(ep, CL_LOG_ERROR, "msg=\"cannot read the bound port\"");
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }

    /* Every method of every path reaches on_request. */
    coap_resource_t *unknown = coap_resource_unknown_init2(on_request, 0);
    coap_resource_t *wk = coap_resource_init(coap_make_str_const(".well-known/core"), 0);
    if (unknown == NULL || wk == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto fail;
    }
    for (coap_request_t m = COAP_REQUEST_GET; m <= COAP_REQUEST_IPATCH; m++) {
        coap_register_request_handler(unknown, m, on_request);
        coap_register_request_handler(wk, m, on_request);
    }
    coap_add_resource(ep->ctx, unknown);
    coap_add_resource(ep->ctx, wk);
    coap_register_nack_handler(ep->ctx, on_nack);
    /* Critical options libcoap does not know would be answered 4.02 by libcoap itself. */
    coap_register_option(ep->ctx, CL_COAP_OPT_OSCORE);
    coap_register_option(ep->ctx, CL_COAP_OPT_EDHOC);
    coap_register_option(ep->ctx, CL_COAP_OPT_Q_BLOCK1);
    coap_register_option(ep->ctx, CL_COAP_OPT_Q_BLOCK2);

    freeaddrinfo(ai);
    *out = ep;
    return CL_OK;
fail:
    freeaddrinfo(ai);
    cl_lcoap_close(ep);
    return st;
}

int cl_lcoap_fd(const cl_lcoap_t *ep)
{
    return ep != NULL && ep->ctx != NULL ? coap_context_get_coap_fd(ep->ctx) : -1;
}

uint16_t cl_lcoap_port(const cl_lcoap_t *ep)
{
    return ep ? ep->port : 0;
}

void cl_lcoap_get_stats(const cl_lcoap_t *ep, cl_udp_stats_t *out)
{
    if (ep != NULL && out != NULL)
        *out = ep->stats;
}

void cl_lcoap_log_peers(const cl_lcoap_t *ep, int level)
{
    if (ep == NULL)
        return;
    for (size_t i = 0; i < ep->max_peers; i++)
        if (ep->peers[i].used)
            log_peer(ep, level, &ep->peers[i], "peer stats");
}

void cl_lcoap_close(cl_lcoap_t *ep)
{
    if (ep == NULL)
        return;
    if (ep->pend != NULL) {
        for (size_t i = 0; i < ep->max_pending; i++)
            if (ep->pend[i].state != PEND_FREE)
                pend_release(ep, &ep->pend[i]);
    }
    if (ep->peers != NULL) {
        for (size_t i = 0; i < ep->max_peers; i++)
            if (ep->peers[i].used && ep->peers[i].session != NULL) {
                coap_session_set_app_data(ep->peers[i].session, NULL);
                coap_session_release(ep->peers[i].session);
            }
    }
    if (ep->ctx != NULL) {
        coap_set_app_data(ep->ctx, NULL);
        coap_free_context(ep->ctx); /* frees the endpoint, sessions, asyncs, resources */
    }
    if (g_log_ep == ep)
        g_log_ep = NULL;
    cl_dedup_free(&ep->dd);
    cl_sendq_free(&ep->sq);
    free(ep->peers);
    free(ep->pend);
    free(ep);
}
