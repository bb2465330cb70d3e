/*
 * udp_endpoint.c - cloisterd's CoAP-over-UDP endpoint (udp_endpoint.h).
 * UNTRUSTED HOST SIDE.
 *
 * What: one non-blocking UDP socket, a bounded peer table (sockaddr <->
 * opaque peer id), the CoAP message layer the host is allowed to run (ping,
 * RST/ACK matching, deduplication of retransmitted requests) and the
 * batching of requests into one handle() call per loop iteration.
 *
 * Why here and not in the core: retransmission and deduplication are
 * transport plumbing that sees only the 4-byte header and the token length;
 * doing it outside keeps duplicates from costing an ecall, and the core still
 * rejects any replay the host lets through (OSCORE replay window).
 *
 * Tables are fixed-size and allocated once at open: the dedup cache is a
 * ring in arrival order (every entry has the same lifetime, so the oldest is
 * both the first to expire and the one to evict when full) with a hash index;
 * the peer table evicts the least recently seen peer (its id's generation
 * changes, so a stale id held by the core can never reach the new peer).
 */
#define _GNU_SOURCE /* recvmmsg */

#include "udp_endpoint.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "cloister/core.h"
#include "dedup.h"
#include "net_addr.h"

#define NO_ENT CL_DEDUP_NONE
#define EXPECT_ENTRIES 1024 /* outstanding CON/NON we sent, awaiting ACK/RST */

typedef struct peer {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint32_t gen;
    bool used;
    uint64_t last_ms;
    uint64_t rx, rx_bytes, tx, tx_bytes;
} peer_t;


typedef struct expect {
    uint64_t peer;
    uint64_t t_ms;
    uint16_t mid;
    bool used;
} expect_t;

typedef struct req {
    uint64_t peer;
    uint16_t mid;
    int32_t ent; /* dedup entry or NO_ENT */
} req_t;

/* A batch's responses, sent with one sendmmsg (one syscall instead of one per response). */
typedef struct out_queue {
    struct mmsghdr m[CL_CORE_MAX_BATCH];
    struct iovec iov[CL_CORE_MAX_BATCH];
    peer_t *peer[CL_CORE_MAX_BATCH];
    uint64_t id[CL_CORE_MAX_BATCH];
    size_t n;
} out_queue_t;

struct cl_udp {
    int fd;
    out_queue_t outq; /* responses of the current batch */
    uint16_t port;
    cl_udp_handler_fn handler;
    void *handler_ctx;
    cl_host_log_fn log;
    void *log_ctx;
    uint32_t lifetime_ms;
    uint64_t now_ms;

    peer_t *peers;
    size_t max_peers;

    cl_dedup_t dd; /* answered requests, for retransmissions */

    expect_t expect[EXPECT_ENTRIES];
    size_t expect_next;

    /* per-iteration buffers */
    uint8_t rx[CL_CORE_MAX_BATCH][CL_UDP_MAX_DATAGRAM];
    struct sockaddr_storage rx_addr[CL_CORE_MAX_BATCH];
    struct mmsghdr mmsg[CL_CORE_MAX_BATCH];
    struct iovec iov[CL_CORE_MAX_BATCH];
    req_t reqs[CL_CORE_MAX_BATCH];
    uint8_t batch_in[CL_CORE_MAX_BATCH_BYTES];
    uint8_t batch_out[CL_CORE_MAX_BATCH_BYTES];

    cl_udp_stats_t stats;
};

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void ulog(const cl_udp_t *ep, int level, const char *fmt, ...)
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

static void addr_str(const struct sockaddr_storage *a, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)a;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        port = ntohs(s->sin_port);
        snprintf(out, size, "%s:%u", host, port);
    } else if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        port = ntohs(s->sin6_port);
        snprintf(out, size, "[%s]:%u", host, port);
    } else {
        snprintf(out, size, "?");
    }
}

/* ------------------------------------------------------------ peers */

static bool same_addr(const peer_t *p, const struct sockaddr_storage *a, socklen_t len)
{
    return p->addr_len == len && memcmp(&p->addr, a, len) == 0;
}

static uint64_t peer_id(const cl_udp_t *ep, size_t slot)
{
    return (uint64_t)ep->peers[slot].gen << 32 | (uint64_t)slot;
}

static peer_t *peer_by_id(cl_udp_t *ep, uint64_t id)
{
    uint64_t slot = id & 0xffffffffu;
    if (slot >= ep->max_peers || !ep->peers[slot].used ||
        ep->peers[slot].gen != (uint32_t)(id >> 32))
        return NULL;
    return &ep->peers[slot];
}

static void log_peer(const cl_udp_t *ep, int level, const peer_t *p, const char *msg)
{
    char a[INET6_ADDRSTRLEN + 16];
    addr_str(&p->addr, a, sizeof a);
    ulog(ep, level,
         "msg=\"%s\" peer=%s rx=%" PRIu64 " rx_bytes=%" PRIu64 " tx=%" PRIu64
         " tx_bytes=%" PRIu64,
         msg, a, p->rx, p->rx_bytes, p->tx, p->tx_bytes);
}

static size_t peer_lookup(cl_udp_t *ep, const struct sockaddr_storage *a, socklen_t len)
{
    size_t free_slot = ep->max_peers, oldest = 0;
    for (size_t i = 0; i < ep->max_peers; i++) {
        peer_t *p = &ep->peers[i];
        if (!p->used) {
            if (free_slot == ep->max_peers)
                free_slot = i;
            continue;
        }
        if (same_addr(p, a, len)) {
            p->last_ms = ep->now_ms;
            return i;
        }
        if (p->last_ms < ep->peers[oldest].last_ms || !ep->peers[oldest].used)
            oldest = i;
    }
    size_t slot = free_slot;
    if (slot == ep->max_peers) {
        slot = oldest;
        log_peer(ep, CL_LOG_DEBUG, &ep->peers[slot], "peer evicted");
        ep->stats.peers_evicted++;
    }
    peer_t *p = &ep->peers[slot];
    uint32_t gen = p->gen + 1;
    memset(p, 0, sizeof *p);
    p->gen = gen;
    p->used = true;
    memcpy(&p->addr, a, len);
    p->addr_len = len;
    p->last_ms = ep->now_ms;
    return slot;
}

/* ------------------------------------------------------------ expected ACK/RST */

static void expect_add(cl_udp_t *ep, uint64_t peer, uint16_t mid)
{
    expect_t *x = &ep->expect[ep->expect_next];
    ep->expect_next = (ep->expect_next + 1) % EXPECT_ENTRIES;
    x->peer = peer;
    x->mid = mid;
    x->t_ms = ep->now_ms;
    x->used = true;
}

/* True (and consumed) when (peer, mid) is a message we sent recently. */
static bool expect_take(cl_udp_t *ep, uint64_t peer, uint16_t mid)
{
    for (size_t i = 0; i < EXPECT_ENTRIES; i++) {
        expect_t *x = &ep->expect[i];
        if (x->used && x->peer == peer && x->mid == mid) {
            x->used = false;
            return x->t_ms + ep->lifetime_ms > ep->now_ms;
        }
    }
    return false;
}

/* ------------------------------------------------------------ sending */

/* Bookkeeping after a datagram left: counters, and ACK/RST the core must see. */
static void sent_ok(cl_udp_t *ep, peer_t *p, uint64_t id, const uint8_t *msg, size_t len)
{
    p->tx++;
    p->tx_bytes += len;
    ep->stats.tx++;
    ep->stats.tx_bytes += len;
    /* A CON or NON we send may be answered by an ACK/RST that the core must see. */
    if (len >= 4 && ((msg[0] >> 4) & 3) <= 1)
        expect_add(ep, id, (uint16_t)(msg[2] << 8 | msg[3]));
}

static void send_to(cl_udp_t *ep, peer_t *p, uint64_t id, const uint8_t *msg, size_t len)
{
    ssize_t w;
    do {
        w = sendto(ep->fd, msg, len, 0, (const struct sockaddr *)&p->addr, p->addr_len);
    } while (w < 0 && errno == EINTR);
    if (w < 0) {
        ulog(ep, CL_LOG_WARN, "msg=\"send failed\" errno=%d size=%zu", errno, len);
        return;
    }
    sent_ok(ep, p, id, msg, len);
}

static void send_queue(cl_udp_t *ep, out_queue_t *q)
{
    size_t done = 0;
    while (done < q->n) {
        int w = sendmmsg(ep->fd, q->m + done, (unsigned)(q->n - done), 0);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) { /* this one failed: count it, go on with the rest */
            ulog(ep, CL_LOG_WARN, "msg=\"send failed\" errno=%d size=%zu", errno,
                 q->iov[done].iov_len);
            done++;
            continue;
        }
        for (size_t i = done; i < done + (size_t)w; i++)
            sent_ok(ep, q->peer[i], q->id[i], q->iov[i].iov_base, q->iov[i].iov_len);
        done += (size_t)w;
    }
    q->n = 0;
}

static void send_rst(cl_udp_t *ep, peer_t *p, uint16_t mid)
{
    uint8_t rst[4] = {(uint8_t)(0x40 | (3 << 4)), 0, (uint8_t)(mid >> 8), (uint8_t)mid};
    ssize_t w;
    do {
        w = sendto(ep->fd, rst, sizeof rst, 0, (const struct sockaddr *)&p->addr, p->addr_len);
    } while (w < 0 && errno == EINTR);
    if (w == (ssize_t)sizeof rst) {
        p->tx++;
        p->tx_bytes += sizeof rst;
        ep->stats.tx++;
        ep->stats.tx_bytes += sizeof rst;
    }
}

cl_status_t cl_udp_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                        size_t len)
{
    cl_udp_t *ep = ctx;
    if (ep == NULL || msg == NULL || len == 0 || len > CL_CORE_MAX_MESSAGE)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (transport != CL_TRANSPORT_COAP)
        return CL_ERR_UNSUPPORTED;
    peer_t *p = peer_by_id(ep, peer);
    if (p == NULL)
        return CL_ERR_NOT_FOUND; /* evicted or never known */
    send_to(ep, p, peer, msg, len);
    return CL_OK;
}

/* ------------------------------------------------------------ one iteration */

/*
 * Message-layer triage of one datagram. Returns true when it must go to the
 * core (appended to the batch by the caller).
 */
static bool triage(cl_udp_t *ep, size_t slot, const uint8_t *d, size_t len, req_t *rq)
{
    peer_t *p = &ep->peers[slot];
    uint64_t id = peer_id(ep, slot);
    unsigned ver = d[0] >> 6, type = (d[0] >> 4) & 3, tkl = d[0] & 15;
    uint8_t code = d[1];
    uint16_t mid = (uint16_t)(d[2] << 8 | d[3]);

    if (ver != 1) { /* RFC 7252 3: silently ignored */
        ep->stats.dropped_bad++;
        return false;
    }
    if (tkl > 8 || len < 4 + (size_t)tkl) { /* message format error */
        ep->stats.dropped_bad++;
        if (type == 0)
            send_rst(ep, p, mid);
        return false;
    }
    if (type == 2 || type == 3) { /* ACK / RST: only for what we sent */
        if (!expect_take(ep, id, mid)) {
            ep->stats.dropped_unmatched++;
            return false;
        }
        rq->peer = id;
        rq->mid = mid;
        rq->ent = NO_ENT;
        return true;
    }
    if (code == 0) { /* Empty CON = ping -> RST; Empty NON is a format error */
        if (type == 0) {
            ep->stats.pings++;
            send_rst(ep, p, mid);
        } else {
            ep->stats.dropped_bad++;
        }
        return false;
    }
    int32_t e = cl_dedup_find(&ep->dd, id, mid);
    if (e != NO_ENT) {
        cl_dedup_ent_t *de = &ep->dd.e[e];
        if (de->pending) {
            ep->stats.dropped_inflight++;
        } else if (de->resp_len > 0) {
            ep->stats.dedup_hits++;
            send_to(ep, p, id, de->resp, de->resp_len);
        } else {
            ep->stats.dedup_hits++; /* the core chose not to answer: same again */
        }
        return false;
    }
    rq->peer = id;
    rq->mid = mid;
    rq->ent = cl_dedup_insert(&ep->dd, id, mid, ep->now_ms);
    return true;
}

static void cache_response(cl_udp_t *ep, const req_t *rq, const uint8_t *msg, size_t len)
{
    if (rq->ent == NO_ENT)
        return;
    cl_dedup_ent_t *e = &ep->dd.e[rq->ent];
    if (!e->used || !e->pending || e->peer != rq->peer || e->mid != rq->mid)
        return;
    e->pending = false;
    if (len == 0)
        return;
    e->resp = malloc(len);
    if (e->resp == NULL)
        return; /* a retransmission will then get no answer; still no second ecall */
    memcpy(e->resp, msg, len);
    e->resp_len = len;
}

/* After a failed ecall: forget the pending entries so a retransmission retries. */
static void drop_pending(cl_udp_t *ep, size_t nreq)
{
    for (size_t i = 0; i < nreq; i++) {
        int32_t idx = ep->reqs[i].ent;
        if (idx == NO_ENT)
            continue;
        cl_dedup_ent_t *e = &ep->dd.e[idx];
        if (!e->used || !e->pending || e->peer != ep->reqs[i].peer || e->mid != ep->reqs[i].mid)
            continue;
        cl_dedup_unlink(&ep->dd, idx); /* the ring slot stays until it is the oldest */
        e->pending = false;
        e->peer = UINT64_MAX; /* matches no peer id: slots are < max_peers */
    }
}

static void finish_pending(cl_udp_t *ep, size_t nreq)
{
    for (size_t i = 0; i < nreq; i++) {
        int32_t idx = ep->reqs[i].ent;
        if (idx != NO_ENT && ep->dd.e[idx].used && ep->dd.e[idx].pending &&
            ep->dd.e[idx].peer == ep->reqs[i].peer && ep->dd.e[idx].mid == ep->reqs[i].mid)
            ep->dd.e[idx].pending = false;
    }
}

static void dispatch_responses(cl_udp_t *ep, size_t nreq, size_t out_len)
{
    size_t count = 0, pos = 0, i = 0;
    cl_batch_item_t it;
    out_queue_t *q = &ep->outq;
    q->n = 0;
    if (cl_batch_validate(ep->batch_out, out_len, &count) != CL_OK) {
        ulog(ep, CL_LOG_ERROR, "msg=\"core returned an invalid batch\" size=%zu", out_len);
        ep->stats.handler_errors++;
        return;
    }
    while (cl_batch_next(ep->batch_out, out_len, &pos, &it) == CL_OK) {
        bool positional = i < nreq && it.peer == ep->reqs[i].peer;
        if (positional)
            cache_response(ep, &ep->reqs[i], it.msg, it.len);
        i++;
        if (it.len == 0)
            continue;
        if (it.transport != CL_TRANSPORT_COAP) {
            ulog(ep, CL_LOG_WARN, "msg=\"response for another transport dropped\" transport=%u",
                 (unsigned)it.transport);
            continue;
        }
        peer_t *p = peer_by_id(ep, it.peer);
        if (p == NULL) {
            ep->stats.dropped_unmatched++;
            continue;
        }
        if (q->n == CL_CORE_MAX_BATCH)
            send_queue(ep, q);
        q->iov[q->n] = (struct iovec){.iov_base = (void *)(uintptr_t)it.msg, .iov_len = it.len};
        memset(&q->m[q->n], 0, sizeof q->m[q->n]);
        q->m[q->n].msg_hdr.msg_name = &p->addr;
        q->m[q->n].msg_hdr.msg_namelen = p->addr_len;
        q->m[q->n].msg_hdr.msg_iov = &q->iov[q->n];
        q->m[q->n].msg_hdr.msg_iovlen = 1;
        q->peer[q->n] = p;
        q->id[q->n] = it.peer;
        q->n++;
    }
    send_queue(ep, q);
}

cl_status_t cl_udp_process(cl_udp_t *ep, uint64_t now_ms, size_t *got)
{
    if (ep == NULL || got == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *got = 0;
    ep->now_ms = now_ms;
    cl_dedup_expire(&ep->dd, ep->now_ms);

    for (size_t i = 0; i < CL_CORE_MAX_BATCH; i++) {
        ep->iov[i].iov_base = ep->rx[i];
        ep->iov[i].iov_len = CL_UDP_MAX_DATAGRAM;
        memset(&ep->mmsg[i].msg_hdr, 0, sizeof ep->mmsg[i].msg_hdr);
        ep->mmsg[i].msg_hdr.msg_name = &ep->rx_addr[i];
        ep->mmsg[i].msg_hdr.msg_namelen = sizeof ep->rx_addr[i];
        ep->mmsg[i].msg_hdr.msg_iov = &ep->iov[i];
        ep->mmsg[i].msg_hdr.msg_iovlen = 1;
        ep->mmsg[i].msg_len = 0;
    }
    int n;
    do {
        n = recvmmsg(ep->fd, ep->mmsg, CL_CORE_MAX_BATCH, MSG_DONTWAIT, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return CL_OK;
        ulog(ep, CL_LOG_ERROR, "msg=\"recvmmsg failed\" errno=%d", errno);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    *got = (size_t)n;

    size_t nreq = 0, blen = 0;
    if (cl_batch_begin(ep->batch_in, sizeof ep->batch_in, &blen) != CL_OK)
        return CL_FAIL(CL_ERR_STATE);
    for (int i = 0; i < n; i++) {
        size_t len = ep->mmsg[i].msg_len;
        ep->stats.rx++;
        ep->stats.rx_bytes += len;
        if ((ep->mmsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
            ep->stats.dropped_big++;
            continue;
        }
        if (len < 4) {
            ep->stats.dropped_bad++;
            continue;
        }
        size_t slot = peer_lookup(ep, &ep->rx_addr[i], ep->mmsg[i].msg_hdr.msg_namelen);
        ep->peers[slot].rx++;
        ep->peers[slot].rx_bytes += len;
        req_t rq;
        if (!triage(ep, slot, ep->rx[i], len, &rq))
            continue;
        cl_batch_item_t item = {.peer = rq.peer,
                                .transport = CL_TRANSPORT_COAP,
                                .flags = 0,
                                .msg = ep->rx[i],
                                .len = len};
        if (cl_batch_add(ep->batch_in, sizeof ep->batch_in, &blen, &item) != CL_OK) {
            ep->stats.dropped_bad++; /* cannot happen: sizes are bounded above */
            continue;
        }
        ep->reqs[nreq++] = rq;
    }
    if (nreq == 0)
        return CL_OK;

    size_t out_len = 0;
    ep->stats.batches++;
    cl_status_t st = ep->handler(ep->handler_ctx, ep->batch_in, blen, ep->batch_out,
                                 sizeof ep->batch_out, &out_len);
    if (st != CL_OK) {
        ep->stats.handler_errors++;
        ulog(ep, CL_LOG_ERROR, "msg=\"core handle failed\" status=%s requests=%zu",
             cl_status_str(st), nreq);
        drop_pending(ep, nreq);
        return CL_OK;
    }
    dispatch_responses(ep, nreq, out_len);
    finish_pending(ep, nreq);
    return CL_OK;
}

/* ------------------------------------------------------------ open / close */

cl_status_t cl_udp_open(const cl_udp_config_t *cfg, cl_udp_handler_fn handler, void *handler_ctx,
                        cl_host_log_fn log, void *log_ctx, cl_udp_t **out)
{
    if (cfg == NULL || cfg->listen == NULL || handler == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    struct addrinfo *ai = NULL;
    cl_status_t ast = cl_net_listen_addr(cfg->listen, SOCK_DGRAM, cfg->bind_any, &ai);
    if (ast != CL_OK)
        return ast;

    cl_status_t st = CL_OK;
    cl_udp_t *ep = calloc(1, sizeof *ep);
    if (ep == NULL) {
        freeaddrinfo(ai);
        return CL_FAIL(CL_ERR_FULL);
    }
    ep->fd = -1;
    ep->handler = handler;
    ep->handler_ctx = handler_ctx;
    ep->log = log;
    ep->log_ctx = log_ctx;
    ep->lifetime_ms = cfg->exchange_lifetime_ms ? cfg->exchange_lifetime_ms
                                                : CL_UDP_EXCHANGE_LIFETIME_MS;
    ep->max_peers = cfg->max_peers ? cfg->max_peers : CL_UDP_MAX_PEERS;
    if (ep->max_peers > 0xffffffffu) {
        st = CL_FAIL(CL_ERR_INVALID_ARG);
        goto fail;
    }
    if ((st = cl_dedup_init(&ep->dd, cfg->dedup_entries ? cfg->dedup_entries : CL_UDP_DEDUP_ENTRIES,
                            ep->lifetime_ms)) != CL_OK)
        goto fail;
    ep->peers = calloc(ep->max_peers, sizeof *ep->peers);
    if (ep->peers == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto fail;
    }

    ep->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ep->fd < 0 || bind(ep->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        ulog(ep, CL_LOG_ERROR, "msg=\"cannot bind\" listen=\"%s\" errno=%d err=\"%s\"",
             cfg->listen, errno, strerror(errno));
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(ep->fd, (struct sockaddr *)&bound, &bl) != 0) {
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    ep->port = bound.ss_family == AF_INET
                   ? ntohs(((struct sockaddr_in *)(void *)&bound)->sin_port)
                   : ntohs(((struct sockaddr_in6 *)(void *)&bound)->sin6_port);
    freeaddrinfo(ai);
    *out = ep;
    return CL_OK;
fail:
    freeaddrinfo(ai);
    cl_udp_close(ep);
    return st;
}

int cl_udp_fd(const cl_udp_t *ep)
{
    return ep ? ep->fd : -1;
}

uint16_t cl_udp_port(const cl_udp_t *ep)
{
    return ep ? ep->port : 0;
}

void cl_udp_get_stats(const cl_udp_t *ep, cl_udp_stats_t *out)
{
    if (ep != NULL && out != NULL)
        *out = ep->stats;
}

void cl_udp_log_peers(const cl_udp_t *ep, int level)
{
    if (ep == NULL)
        return;
    for (size_t i = 0; i < ep->max_peers; i++)
        if (ep->peers[i].used)
            log_peer(ep, level, &ep->peers[i], "peer stats");
}

void cl_udp_close(cl_udp_t *ep)
{
    if (ep == NULL)
        return;
    if (ep->fd >= 0)
        close(ep->fd);
    cl_dedup_free(&ep->dd);
    free(ep->peers);
    free(ep);
}
