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
 *
 * Core-originated messages: held during a batch (sendq.h, group commit) and
 * sent with the batch's responses; every CON the core produced sits in the
 * retransmission table (hash index on (peer, message id), an age list for
 * evicting the oldest, a free list) until its ACK, its RST or MAX_RETRANSMIT
 * (RFC 7252 4.2). The host sees only the 4-byte header of what it resends.
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
#include <time.h>
#include <unistd.h>

#include "cloister/core.h"
#include "dedup.h"
#include "net_addr.h"
#include "sendq.h"
#include "storage_common.h"

#define NO_ENT CL_DEDUP_NONE
#define EXPECT_ENTRIES 1024 /* NON messages we sent recently: an RST to them goes to the core */
#define CON_NONE (-1)

typedef struct peer {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint32_t gen;
    bool used;
    uint64_t last_ms;
    uint64_t rx, rx_bytes, tx, tx_bytes;
} peer_t;


/* A CON the core produced, awaiting its ACK or RST (RFC 7252 4.2). */
typedef struct con {
    uint64_t peer;
    uint64_t due_ms;     /* next retransmission (or give-up) */
    uint32_t timeout_ms; /* current timeout, doubled per retransmission */
    uint16_t mid;
    uint8_t retries;
    bool used;
    uint8_t *msg; /* the bytes to resend (ciphertext; never read past the header) */
    size_t len;
    int32_t hnext;        /* hash chain; the free list when unused */
    int32_t older, newer; /* age list (eviction when full) */
} con_t;

/* How a datagram came to be sent (what bookkeeping it needs). */
enum { TX_RESEND = 0, TX_RESPONSE = 1, TX_NOTIFY = 2 };

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

/* One message of a parked batch (bytes in the batch's arena). */
typedef struct parked_msg {
    uint64_t peer;
    size_t off, len;
    int16_t req; /* index into reqs for a positional response, else -1 */
    uint8_t how; /* TX_* */
} parked_msg_t;

/* A batch answered by the core whose archive commit is still running. */
typedef struct parked {
    uint64_t ticket;
    req_t reqs[CL_CORE_MAX_BATCH];
    size_t nreq;
    parked_msg_t *msg;
    size_t nmsg, msg_cap;
    uint8_t *bytes;
    size_t used, bytes_cap;
} parked_t;

/* A batch's responses, sent with one sendmmsg (one syscall instead of one per response). */
typedef struct out_queue {
    struct mmsghdr m[CL_CORE_MAX_BATCH];
    struct iovec iov[CL_CORE_MAX_BATCH];
    peer_t *peer[CL_CORE_MAX_BATCH];
    uint64_t id[CL_CORE_MAX_BATCH];
    uint8_t how[CL_CORE_MAX_BATCH]; /* TX_* */
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

    /* core-originated CONs awaiting ACK/RST */
    con_t *con;
    size_t con_cap, con_n, con_hmask;
    int32_t *con_hash;
    int32_t con_free, con_oldest, con_newest;
    uint32_t ack_timeout_ms;
    uint64_t rng;

    cl_sendq_t sq; /* core-originated messages held during a batch */

    /* pipelined group commit: batches whose commit is still running (a ring) */
    cl_udp_pipeline_t pl;
    bool pipelined;
    parked_t *parked;
    size_t parked_cap, parked_head, parked_n;

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

/* ------------------------------------------------------------ expected RST (NON we sent) */

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

/* ------------------------------------------------------------ CON retransmission table */

static uint32_t rnd32(cl_udp_t *ep)
{
    uint64_t x = ep->rng; /* xorshift64*: jitter only, nothing secret */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    ep->rng = x;
    return (uint32_t)((x * UINT64_C(0x2545F4914F6CDD1D)) >> 32);
}

static size_t con_bucket(const cl_udp_t *ep, uint64_t peer, uint16_t mid)
{
    uint64_t h = (peer ^ ((uint64_t)mid << 40) ^ mid) * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 32) & ep->con_hmask;
}

static int32_t con_find(const cl_udp_t *ep, uint64_t peer, uint16_t mid)
{
    for (int32_t i = ep->con_hash[con_bucket(ep, peer, mid)]; i != CON_NONE; i = ep->con[i].hnext)
        if (ep->con[i].peer == peer && ep->con[i].mid == mid)
            return i;
    return CON_NONE;
}

static void con_remove(cl_udp_t *ep, int32_t i)
{
    con_t *c = &ep->con[i];
    int32_t *pp = &ep->con_hash[con_bucket(ep, c->peer, c->mid)];
    while (*pp != CON_NONE && *pp != i)
        pp = &ep->con[*pp].hnext;
    if (*pp == i)
        *pp = c->hnext;
    if (c->older != CON_NONE)
        ep->con[c->older].newer = c->newer;
    else
        ep->con_oldest = c->newer;
    if (c->newer != CON_NONE)
        ep->con[c->newer].older = c->older;
    else
        ep->con_newest = c->older;
    free(c->msg);
    memset(c, 0, sizeof *c);
    c->older = c->newer = CON_NONE;
    c->hnext = ep->con_free;
    ep->con_free = i;
    ep->con_n--;
}

/* Starts retransmitting a CON the core produced (first transmission just attempted). */
static void con_add(cl_udp_t *ep, uint64_t peer, const uint8_t *msg, size_t len)
{
    uint16_t mid = (uint16_t)(msg[2] << 8 | msg[3]);
    int32_t i = con_find(ep, peer, mid);
    if (i != CON_NONE) /* the same message id again: the newer message replaces it */
        con_remove(ep, i);
    if (ep->con_free == CON_NONE) {
        ep->stats.notify_evicted++;
        ulog(ep, CL_LOG_DEBUG, "msg=\"retransmission table full: oldest CON dropped\" entries=%zu",
             ep->con_cap);
        con_remove(ep, ep->con_oldest);
    }
    uint8_t *copy = malloc(len);
    if (copy == NULL) {
        ulog(ep, CL_LOG_WARN, "msg=\"CON not retransmitted: out of memory\" size=%zu", len);
        return;
    }
    memcpy(copy, msg, len);
    i = ep->con_free;
    con_t *c = &ep->con[i];
    ep->con_free = c->hnext;
    c->peer = peer;
    c->mid = mid;
    c->msg = copy;
    c->len = len;
    c->used = true;
    c->retries = 0;
    /* RFC 7252 4.2: initial timeout random in [ACK_TIMEOUT, ACK_TIMEOUT * 1.5] */
    c->timeout_ms = ep->ack_timeout_ms + rnd32(ep) % (ep->ack_timeout_ms / 2 + 1);
    c->due_ms = ep->now_ms + c->timeout_ms;
    size_t b = con_bucket(ep, peer, mid);
    c->hnext = ep->con_hash[b];
    ep->con_hash[b] = i;
    c->older = ep->con_newest;
    c->newer = CON_NONE;
    if (ep->con_newest != CON_NONE)
        ep->con[ep->con_newest].newer = i;
    else
        ep->con_oldest = i;
    ep->con_newest = i;
    ep->con_n++;
}

/* ------------------------------------------------------------ sending */

static void count_tx(cl_udp_t *ep, peer_t *p, size_t len)
{
    p->tx++;
    p->tx_bytes += len;
    ep->stats.tx++;
    ep->stats.tx_bytes += len;
}

/*
 * Bookkeeping of a datagram we tried to send (sent: it left). A CON the core
 * produced is retransmitted even when its first attempt failed; a NON may be
 * answered by an RST that the core must see.
 */
static void after_send(cl_udp_t *ep, peer_t *p, uint64_t id, const uint8_t *msg, size_t len,
                       unsigned how, bool sent)
{
    if (sent) {
        count_tx(ep, p, len);
        if (how == TX_NOTIFY)
            ep->stats.notify_sent++;
    }
    if (len < 4)
        return;
    unsigned type = (msg[0] >> 4) & 3;
    if (type == 0 && how != TX_RESEND)
        con_add(ep, id, msg, len);
    else if (type == 1 && sent)
        expect_add(ep, id, (uint16_t)(msg[2] << 8 | msg[3]));
}

static void send_to(cl_udp_t *ep, peer_t *p, uint64_t id, const uint8_t *msg, size_t len,
                    unsigned how)
{
    ssize_t w;
    do {
        w = sendto(ep->fd, msg, len, 0, (const struct sockaddr *)&p->addr, p->addr_len);
    } while (w < 0 && errno == EINTR);
    if (w < 0)
        ulog(ep, CL_LOG_WARN, "msg=\"send failed\" errno=%d size=%zu", errno, len);
    after_send(ep, p, id, msg, len, how, w >= 0);
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
            after_send(ep, q->peer[done], q->id[done], q->iov[done].iov_base, q->iov[done].iov_len,
                       q->how[done], false);
            done++;
            continue;
        }
        for (size_t i = done; i < done + (size_t)w; i++)
            after_send(ep, q->peer[i], q->id[i], q->iov[i].iov_base, q->iov[i].iov_len, q->how[i],
                       true);
        done += (size_t)w;
    }
    q->n = 0;
}

/* Appends one datagram to the batch's sendmmsg queue (sent when full or at the end). */
static void outq_add(cl_udp_t *ep, peer_t *p, uint64_t id, const uint8_t *msg, size_t len,
                     unsigned how)
{
    out_queue_t *q = &ep->outq;
    if (q->n == CL_CORE_MAX_BATCH)
        send_queue(ep, q);
    q->iov[q->n] = (struct iovec){.iov_base = (void *)(uintptr_t)msg, .iov_len = len};
    memset(&q->m[q->n], 0, sizeof q->m[q->n]);
    q->m[q->n].msg_hdr.msg_name = &p->addr;
    q->m[q->n].msg_hdr.msg_namelen = p->addr_len;
    q->m[q->n].msg_hdr.msg_iov = &q->iov[q->n];
    q->m[q->n].msg_hdr.msg_iovlen = 1;
    q->peer[q->n] = p;
    q->id[q->n] = id;
    q->how[q->n] = (uint8_t)how;
    q->n++;
}

static void send_rst(cl_udp_t *ep, peer_t *p, uint16_t mid)
{
    uint8_t rst[4] = {(uint8_t)(0x40 | (3 << 4)), 0, (uint8_t)(mid >> 8), (uint8_t)mid};
    ssize_t w;
    do {
        w = sendto(ep->fd, rst, sizeof rst, 0, (const struct sockaddr *)&p->addr, p->addr_len);
    } while (w < 0 && errno == EINTR);
    if (w == (ssize_t)sizeof rst)
        count_tx(ep, p, sizeof rst);
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
    if (p == NULL) {
        ep->stats.notify_dropped_peer++;
        return CL_ERR_NOT_FOUND; /* evicted or never known */
    }
    if (cl_sendq_held(&ep->sq)) { /* inside a batch: leaves after its group commit */
        cl_status_t st = cl_sendq_push(&ep->sq, peer, transport, msg, len);
        if (st != CL_OK)
            ep->stats.notify_dropped_full++;
        return st;
    }
    send_to(ep, p, peer, msg, len, TX_NOTIFY);
    return CL_OK;
}

void cl_udp_hold(cl_udp_t *ep)
{
    if (ep != NULL)
        cl_sendq_hold(&ep->sq);
}

/*
 * Ends one hold; at the last one the queue goes into outq and true is
 * returned: the caller sends outq, then clears the queue (outq points into it).
 */
static void warn_line(void *ctx, const char *line)
{
    ulog(ctx, CL_LOG_WARN, "%s", line);
}

static bool release_into_outq(cl_udp_t *ep, bool ok)
{
    if (!cl_sendq_end(&ep->sq, ok, "coap", warn_line, ep, &ep->stats.notify_dropped_failed))
        return false;
    for (size_t i = 0; i < ep->sq.n; i++) {
        const cl_sendq_ent_t *e = &ep->sq.e[i];
        peer_t *p = peer_by_id(ep, e->peer);
        if (p == NULL) {
            ep->stats.notify_dropped_peer++;
            continue;
        }
        outq_add(ep, p, e->peer, e->msg, e->len, TX_NOTIFY);
    }
    return true;
}

void cl_udp_release(cl_udp_t *ep, bool ok)
{
    if (ep == NULL)
        return;
    if (!release_into_outq(ep, ok))
        return;
    send_queue(ep, &ep->outq);
    cl_sendq_clear(&ep->sq); /* after send_queue: outq pointed into it */
}

void cl_udp_timers(cl_udp_t *ep, uint64_t now_ms)
{
    if (ep == NULL)
        return;
    ep->now_ms = now_ms;
    for (int32_t i = ep->con_oldest, next; i != CON_NONE; i = next) {
        con_t *c = &ep->con[i];
        next = c->newer;
        if (c->due_ms > now_ms)
            continue;
        peer_t *p = peer_by_id(ep, c->peer);
        if (c->retries >= CL_UDP_MAX_RETRANSMIT || p == NULL) {
            if (p == NULL) {
                ep->stats.notify_dropped_peer++;
            } else {
                ep->stats.notify_timeouts++;
                char a[INET6_ADDRSTRLEN + 16];
                addr_str(&p->addr, a, sizeof a);
                ulog(ep, CL_LOG_DEBUG,
                     "msg=\"CON not acknowledged: given up\" peer=%s retransmissions=%u size=%zu",
                     a, (unsigned)c->retries, c->len);
            }
            con_remove(ep, i);
            continue;
        }
        ssize_t w;
        do {
            w = sendto(ep->fd, c->msg, c->len, 0, (const struct sockaddr *)&p->addr, p->addr_len);
        } while (w < 0 && errno == EINTR);
        if (w >= 0) {
            count_tx(ep, p, c->len);
            ep->stats.notify_retransmitted++;
        }
        c->retries++;
        c->timeout_ms *= 2;
        c->due_ms = now_ms + c->timeout_ms;
    }
}

int cl_udp_timeout_ms(const cl_udp_t *ep, uint64_t now_ms)
{
    if (ep == NULL || ep->con_n == 0)
        return -1;
    uint64_t due = UINT64_MAX;
    for (int32_t i = ep->con_oldest; i != CON_NONE; i = ep->con[i].newer)
        if (ep->con[i].due_ms < due)
            due = ep->con[i].due_ms;
    if (due <= now_ms)
        return 0;
    return due - now_ms > INT32_MAX ? INT32_MAX : (int)(due - now_ms);
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
        int32_t c = con_find(ep, id, mid);
        if (c != CON_NONE) { /* a CON the core produced: retransmission ends */
            con_remove(ep, c);
            if (type == 2) { /* the ACK is the host's business (not proof of delivery) */
                ep->stats.notify_acked++;
                return false;
            }
        } else if (type == 2 || !expect_take(ep, id, mid)) {
            ep->stats.dropped_unmatched++;
            return false;
        }
        ep->stats.notify_rst++; /* the core cancels what the RST refers to */
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
            send_to(ep, p, id, de->resp, de->resp_len, TX_RESEND);
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
static void drop_pending(cl_udp_t *ep, const req_t *reqs, size_t nreq)
{
    for (size_t i = 0; i < nreq; i++) {
        int32_t idx = reqs[i].ent;
        if (idx == NO_ENT)
            continue;
        cl_dedup_ent_t *e = &ep->dd.e[idx];
        if (!e->used || !e->pending || e->peer != reqs[i].peer || e->mid != reqs[i].mid)
            continue;
        cl_dedup_unlink(&ep->dd, idx); /* the ring slot stays until it is the oldest */
        e->pending = false;
        e->peer = UINT64_MAX; /* matches no peer id: slots are < max_peers */
    }
}

static void finish_pending(cl_udp_t *ep, const req_t *reqs, size_t nreq)
{
    for (size_t i = 0; i < nreq; i++) {
        int32_t idx = reqs[i].ent;
        if (idx != NO_ENT && ep->dd.e[idx].used && ep->dd.e[idx].pending &&
            ep->dd.e[idx].peer == reqs[i].peer && ep->dd.e[idx].mid == reqs[i].mid)
            ep->dd.e[idx].pending = false;
    }
}

/* Queues the batch's responses in outq (positional ones, then core-originated items). */
static void dispatch_responses(cl_udp_t *ep, size_t nreq, size_t out_len)
{
    size_t count = 0, pos = 0, i = 0;
    cl_batch_item_t it;
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
        if (it.len == 0) /* no answer; CL_BATCH_F_DEFER means nothing over CoAP either */
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
        outq_add(ep, p, it.peer, it.msg, it.len, positional ? TX_RESPONSE : TX_NOTIFY);
    }
}

static void park_batch(cl_udp_t *ep, uint64_t ticket, size_t nreq, size_t out_len);

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
    /* What the core sends during the batch waits for the handler's group commit. */
    cl_sendq_hold(&ep->sq);
    cl_status_t st = ep->handler(ep->handler_ctx, ep->batch_in, blen, ep->batch_out,
                                 sizeof ep->batch_out, &out_len);
    if (st != CL_OK) {
        ep->stats.handler_errors++;
        ulog(ep, CL_LOG_ERROR, "msg=\"core handle failed\" status=%s requests=%zu",
             cl_status_str(st), nreq);
        drop_pending(ep, ep->reqs, nreq);
        cl_udp_release(ep, false); /* nothing of a failed batch leaves */
        return CL_OK;
    }
    if (ep->pipelined) { /* the responses wait for the batch's commit */
        park_batch(ep, ep->pl.ticket(ep->pl.ctx), nreq, out_len);
        cl_udp_flush_resolved(ep);
        return CL_OK;
    }
    ep->outq.n = 0;
    dispatch_responses(ep, nreq, out_len);
    bool flushed = release_into_outq(ep, true); /* the held messages join the responses */
    send_queue(ep, &ep->outq);
    if (flushed)
        cl_sendq_clear(&ep->sq);
    finish_pending(ep, ep->reqs, nreq);
    return CL_OK;
}

/* ------------------------------------------------------------ pipelined commit */

static bool park_msg(parked_t *pk, uint64_t peer, const uint8_t *msg, size_t len, int req,
                     unsigned how)
{
    parked_msg_t *m = cl_grow(pk->msg, &pk->msg_cap, pk->nmsg + 1, sizeof *m, 2 * CL_CORE_MAX_BATCH);
    if (m == NULL)
        return false;
    pk->msg = m;
    uint8_t *b = cl_grow(pk->bytes, &pk->bytes_cap, pk->used + len, 1, 16384);
    if (b == NULL)
        return false;
    pk->bytes = b;
    if (len > 0)
        memcpy(pk->bytes + pk->used, msg, len);
    pk->msg[pk->nmsg++] = (parked_msg_t){
        .peer = peer, .off = pk->used, .len = len, .req = (int16_t)req, .how = (uint8_t)how};
    pk->used += len;
    return true;
}

/* Sends (ok) or drops (!ok) the oldest parked batch. */
static void unpark_oldest(cl_udp_t *ep, bool ok)
{
    parked_t *pk = &ep->parked[ep->parked_head];
    if (ok) {
        ep->outq.n = 0;
        for (size_t i = 0; i < pk->nmsg; i++) {
            const parked_msg_t *m = &pk->msg[i];
            const uint8_t *b = pk->bytes + m->off;
            if (m->req >= 0)
                cache_response(ep, &pk->reqs[m->req], b, m->len);
            if (m->len == 0)
                continue;
            peer_t *p = peer_by_id(ep, m->peer);
            if (p == NULL) {
                if (m->how == TX_NOTIFY)
                    ep->stats.notify_dropped_peer++;
                else
                    ep->stats.dropped_unmatched++;
                continue;
            }
            outq_add(ep, p, m->peer, b, m->len, m->how);
        }
        send_queue(ep, &ep->outq);
        finish_pending(ep, pk->reqs, pk->nreq);
    } else {
        size_t notes = 0;
        for (size_t i = 0; i < pk->nmsg; i++)
            notes += pk->msg[i].how == TX_NOTIFY && pk->msg[i].len > 0;
        ep->stats.notify_dropped_failed += notes;
        ep->stats.commit_failed_batches++;
        drop_pending(ep, pk->reqs, pk->nreq); /* the clients retransmit */
        ulog(ep, CL_LOG_ERROR,
             "msg=\"archive commit failed: batch not answered\" requests=%zu notifications=%zu",
             pk->nreq, notes);
    }
    pk->nmsg = 0;
    pk->used = 0;
    pk->nreq = 0;
    ep->parked_head = (ep->parked_head + 1) % ep->parked_cap;
    ep->parked_n--;
}

void cl_udp_flush_resolved(cl_udp_t *ep)
{
    if (ep == NULL || !ep->pipelined || ep->parked_n == 0)
        return;
    uint64_t done = ep->pl.resolved(ep->pl.ctx);
    while (ep->parked_n > 0) {
        uint64_t t = ep->parked[ep->parked_head].ticket;
        if (t > done)
            break;
        unpark_oldest(ep, ep->pl.ticket_ok(ep->pl.ctx, t));
    }
}

void cl_udp_drain(cl_udp_t *ep)
{
    while (ep != NULL && ep->pipelined && ep->parked_n > 0) {
        size_t last = (ep->parked_head + ep->parked_n - 1) % ep->parked_cap;
        ep->pl.wait(ep->pl.ctx, ep->parked[last].ticket);
        cl_udp_flush_resolved(ep);
    }
}

size_t cl_udp_parked(const cl_udp_t *ep)
{
    return ep != NULL ? ep->parked_n : 0;
}

/*
 * Parks the batch just answered (responses and the messages the core sent
 * meanwhile) under its commit ticket. When the ring is full, waits for the
 * oldest ticket first (back-pressure: the socket is not read meanwhile).
 */
static void park_batch(cl_udp_t *ep, uint64_t ticket, size_t nreq, size_t out_len)
{
    if (ep->parked_n == ep->parked_cap) {
        ep->stats.parked_full_waits++;
        ep->pl.wait(ep->pl.ctx, ep->parked[ep->parked_head].ticket);
        cl_udp_flush_resolved(ep);
    }
    parked_t *pk = &ep->parked[(ep->parked_head + ep->parked_n) % ep->parked_cap];
    pk->ticket = ticket;
    pk->nreq = nreq;
    memcpy(pk->reqs, ep->reqs, nreq * sizeof *pk->reqs);
    pk->nmsg = pk->used = 0;
    ep->parked_n++;
    bool ok = true;
    size_t count = 0, pos = 0, i = 0;
    cl_batch_item_t it;
    if (cl_batch_validate(ep->batch_out, out_len, &count) != CL_OK) {
        ulog(ep, CL_LOG_ERROR, "msg=\"core returned an invalid batch\" size=%zu", out_len);
        ep->stats.handler_errors++;
        count = 0;
    }
    while (count > 0 && cl_batch_next(ep->batch_out, out_len, &pos, &it) == CL_OK) {
        bool positional = i < nreq && it.peer == ep->reqs[i].peer;
        int req = positional ? (int)i : -1;
        i++;
        if (it.len > 0 && it.transport != CL_TRANSPORT_COAP) {
            ulog(ep, CL_LOG_WARN, "msg=\"response for another transport dropped\" transport=%u",
                 (unsigned)it.transport);
            if (req < 0)
                continue;
            it.len = 0; /* still settles the dedup entry */
        }
        if (req < 0 && it.len == 0)
            continue;
        ok = ok && park_msg(pk, it.peer, it.msg, it.len, req, req >= 0 ? TX_RESPONSE : TX_NOTIFY);
    }
    if (cl_sendq_end(&ep->sq, true, "coap", warn_line, ep, &ep->stats.notify_dropped_failed)) {
        for (size_t k = 0; k < ep->sq.n; k++) {
            const cl_sendq_ent_t *e = &ep->sq.e[k];
            ok = ok && park_msg(pk, e->peer, e->msg, e->len, -1, TX_NOTIFY);
        }
        cl_sendq_clear(&ep->sq);
    }
    if (!ok) { /* out of memory: this batch gets no answer; its clients retransmit */
        ulog(ep, CL_LOG_ERROR, "msg=\"out of memory parking a batch: not answered\"");
        pk->nmsg = pk->used = 0;
    }
}

cl_status_t cl_udp_set_pipeline(cl_udp_t *ep, const cl_udp_pipeline_t *pl)
{
    if (ep == NULL || pl == NULL || pl->ticket == NULL || pl->resolved == NULL ||
        pl->ticket_ok == NULL || pl->wait == NULL || ep->pipelined)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    size_t cap = pl->max_parked ? pl->max_parked : CL_UDP_MAX_PARKED;
    ep->parked = calloc(cap, sizeof *ep->parked);
    if (ep->parked == NULL)
        return CL_FAIL(CL_ERR_FULL);
    ep->parked_cap = cap;
    ep->pl = *pl;
    ep->pipelined = true;
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
    if ((st = cl_sendq_init(&ep->sq, cfg->send_queue)) != CL_OK)
        goto fail;
    ep->ack_timeout_ms = cfg->ack_timeout_ms ? cfg->ack_timeout_ms : CL_UDP_ACK_TIMEOUT_MS;
    ep->con_cap = cfg->con_entries ? cfg->con_entries : CL_UDP_CON_ENTRIES;
    if (ep->con_cap > 0x1000000 || ep->ack_timeout_ms > 600000) {
        st = CL_FAIL(CL_ERR_INVALID_ARG);
        goto fail;
    }
    size_t hsize = 16;
    while (hsize < 2 * ep->con_cap)
        hsize *= 2;
    ep->con_hmask = hsize - 1;
    ep->con = calloc(ep->con_cap, sizeof *ep->con);
    ep->con_hash = malloc(hsize * sizeof *ep->con_hash);
    if (ep->con == NULL || ep->con_hash == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto fail;
    }
    for (size_t i = 0; i < hsize; i++)
        ep->con_hash[i] = CON_NONE;
    for (size_t i = 0; i < ep->con_cap; i++) {
        ep->con[i].hnext = i + 1 < ep->con_cap ? (int32_t)(i + 1) : CON_NONE;
        ep->con[i].older = ep->con[i].newer = CON_NONE;
    }
    ep->con_free = 0;
    ep->con_oldest = ep->con_newest = CON_NONE;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ep->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)ep ^
              ((uint64_t)getpid() << 40);
    if (ep->rng == 0)
        ep->rng = 1;

    ep->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ep->fd < 0 || bind(ep->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        ulog(ep, CL_LOG_ERROR, "msg=\"cannot bind\" listen=\"%s\" errno=%d err=\"%s\"",
             cfg->listen, errno, strerror(errno));
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    /* Room for bursts from many devices while a batch is processed (the kernel
     * caps it at net.core.rmem_max / wmem_max; the effective size is logged). */
    int want = (int)(cfg->socket_buffer ? cfg->socket_buffer : CL_UDP_SOCKET_BUFFER), got = 0;
    socklen_t gl = sizeof got;
    (void)setsockopt(ep->fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof want);
    (void)setsockopt(ep->fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof want);
    if (getsockopt(ep->fd, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0 && got / 2 < want)
        ulog(ep, CL_LOG_INFO,
             "msg=\"receive buffer smaller than asked (raise net.core.rmem_max)\" asked=%d "
             "got=%d",
             want, got / 2);
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
    if (ep->con != NULL)
        for (size_t i = 0; i < ep->con_cap; i++)
            free(ep->con[i].msg);
    free(ep->con);
    free(ep->con_hash);
    cl_sendq_free(&ep->sq);
    cl_dedup_free(&ep->dd);
    if (ep->parked != NULL)
        for (size_t i = 0; i < ep->parked_cap; i++) {
            free(ep->parked[i].msg);
            free(ep->parked[i].bytes);
        }
    free(ep->parked);
    free(ep->peers);
    free(ep);
}
