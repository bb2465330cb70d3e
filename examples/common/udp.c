/*
 * udp.c - CoAP-over-UDP plumbing shared by the example programs (udp.h).
 *
 * What: diagnostics with the program's prefix, the client's Confirmable
 * exchange on the RFC 7252 schedule (ACK_TIMEOUT times a random factor up to
 * ACK_RANDOM_FACTOR = 1.5, doubled on each of MAX_RETRANSMIT
 * retransmissions; MAX_TRANSMIT_WAIT for a separate response after an empty
 * ACK), and the server's loopback-only listening socket and receive loop.
 *
 * Why one module: both examples speak CoAP over UDP the same way; only what
 * they carry (OSCORE, EDHOC) differs, and that stays in the programs.
 */
#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static const char *prog = "example";
static volatile sig_atomic_t stop_requested;

void ex_set_prog(const char *name)
{
    prog = name;
}

void ex_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void ex_log(const char *fmt, ...)
{
    va_list ap;
    char line[768];

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", prog, line);
}

bool ex_worth_logging(unsigned long count)
{
    return (count & (count - 1)) == 0;
}

uint64_t ex_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ URIs */

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/*
 * Splits s[0..len) at sep into at most max percent-decoded segments stored
 * in buf[*used..buf_size) (RFC 7252 section 6.4 steps 8 and 9).
 */
static bool split_segments(uint8_t *buf, size_t buf_size, const char *s, size_t len, char sep,
                           ex_segment_t *out, size_t max, size_t *n, size_t *used)
{
    size_t i = 0;

    *n = 0;
    while (i <= len) {
        if (*n == max)
            return false;
        uint8_t *start = buf + *used;
        size_t seg_len = 0;
        for (; i < len && s[i] != sep; i++) {
            uint8_t ch = (uint8_t)s[i];
            if (ch == '%') {
                int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
                int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
                if (hi < 0 || lo < 0)
                    return false;
                ch = (uint8_t)(hi << 4 | lo);
                i += 2;
            }
            if (*used + seg_len >= buf_size)
                return false;
            start[seg_len++] = ch;
        }
        out[*n].p = start;
        out[*n].len = seg_len;
        (*n)++;
        *used += seg_len;
        i++; /* skip the separator (or step past the end) */
    }
    return true;
}

bool ex_parse_uri(ex_uri_t *t, const char *uri, const char *scheme_note, const char *path_note)
{
    const char *u = uri, *p, *host_end;
    size_t used = 0;

    if (strncasecmp(u, "coap://", 7) != 0) {
        ex_fail("'%s': only coap:// URIs are supported%s", u, scheme_note);
        return false;
    }
    p = u + 7;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (host_end == NULL) {
            ex_fail("'%s': missing ']' after the IPv6 address", u);
            return false;
        }
        snprintf(t->host, sizeof t->host, "%.*s", (int)(host_end - p - 1), p + 1);
        p = host_end + 1;
    } else {
        size_t n = strcspn(p, ":/?#");
        if (n == 0 || n >= sizeof t->host) {
            ex_fail("'%s': missing or overlong host", u);
            return false;
        }
        snprintf(t->host, sizeof t->host, "%.*s", (int)n, p);
        p += n;
    }
    snprintf(t->port, sizeof t->port, "5683");
    if (*p == ':') {
        size_t n = strcspn(p + 1, "/?#");
        unsigned long v = 0;
        char num[8], *end = num;
        if (n == 0 || n >= sizeof num) {
            ex_fail("'%s': bad port", u);
            return false;
        }
        snprintf(num, sizeof num, "%.*s", (int)n, p + 1);
        errno = 0;
        if (num[0] >= '0' && num[0] <= '9')
            v = strtoul(num, &end, 10);
        if (v < 1 || v > 65535 || errno != 0 || *end != '\0') {
            ex_fail("'%s': bad port", u);
            return false;
        }
        snprintf(t->port, sizeof t->port, "%lu", v);
        p += 1 + n;
    }
    if (strchr(p, '#') != NULL) {
        ex_fail("'%s': fragments are not allowed in a coap URI", u);
        return false;
    }
    size_t path_len = strcspn(p, "?");
    /* "" and "/" are the root: no Uri-Path at all. */
    if (path_len > 1 && !split_segments(t->buf, sizeof t->buf, p + 1, path_len - 1, '/', t->path,
                                        EX_URI_SEGMENTS, &t->n_path, &used)) {
        ex_fail("'%s': bad or too long path%s", u, path_note);
        return false;
    }
    if (p[path_len] == '?' && p[path_len + 1] != '\0' &&
        !split_segments(t->buf, sizeof t->buf, p + path_len + 1, strlen(p + path_len + 1), '&',
                        t->query, EX_URI_SEGMENTS, &t->n_query, &used)) {
        ex_fail("'%s': bad or too long query", u);
        return false;
    }
    uint8_t tmp[16];
    t->host_literal =
        inet_pton(AF_INET, t->host, tmp) == 1 || inet_pton(AF_INET6, t->host, tmp) == 1;
    return true;
}

/* ------------------------------------------------------------ client */

int ex_connect(const char *host, const char *port)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        ex_fail("cannot resolve '%s': %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_DGRAM, 0);
        if (fd < 0)
            continue;
        /* connect: only the server's datagrams reach us, and ICMP errors are reported. */
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        ex_fail("cannot reach %s port %s: %s", host, port, strerror(errno));
    return fd;
}

bool ex_send(const ex_conn_t *c, const uint8_t *buf, size_t len)
{
    if (send(c->fd, buf, len, 0) < 0) {
        if (errno == ECONNREFUSED)
            ex_fail("nothing is listening at %s port %s", c->host, c->port);
        else
            ex_fail("send: %s", strerror(errno));
        return false;
    }
    return true;
}

xstatus_t ex_exchange(const ex_conn_t *c, const uint8_t *msg, size_t len, uint16_t mid,
                      const uint8_t *token, size_t tkl, uint8_t *resp, size_t resp_size,
                      size_t *resp_len)
{
    uint8_t r16[2];
    unsigned retransmits = 0;
    bool acked = false;

    if (cl_random(c->crypto, r16, sizeof r16) != CL_OK) {
        ex_fail("no randomness from the crypto provider");
        return XCH_ERROR;
    }
    /* ACK_TIMEOUT * [1, ACK_RANDOM_FACTOR = 1.5] */
    uint64_t timeout =
        c->timeout_ms + (uint64_t)c->timeout_ms * (unsigned)(r16[0] << 8 | r16[1]) / (2u * 65535u);
    /* For a separate response after an empty ACK: MAX_TRANSMIT_WAIT. */
    uint64_t max_wait = (uint64_t)c->timeout_ms * 31u * 3u / 2u;
    uint64_t next = ex_now_ms() + timeout, deadline = 0;

    if (!ex_send(c, msg, len))
        return XCH_ERROR;
    for (;;) {
        uint64_t now = ex_now_ms();
        if (!acked && now >= next) {
            if (retransmits == EX_MAX_RETRANSMIT) {
                ex_fail("no response from %s port %s after %u retransmissions", c->host, c->port,
                        retransmits);
                return XCH_TIMEOUT;
            }
            retransmits++;
            timeout *= 2;
            next = now + timeout;
            if (c->verbose)
                fprintf(stderr, "%s: retransmission %u of message id %u\n", prog, retransmits, mid);
            if (!ex_send(c, msg, len))
                return XCH_ERROR;
            continue;
        }
        if (acked && now >= deadline) {
            ex_fail("the server acknowledged but its separate response never came");
            return XCH_TIMEOUT;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, (int)((acked ? deadline : next) - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ex_fail("poll: %s", strerror(errno));
            return XCH_ERROR;
        }
        if (n == 0)
            continue;
        ssize_t got = recv(c->fd, resp, resp_size, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNREFUSED)
                ex_fail("nothing is listening at %s port %s", c->host, c->port);
            else
                ex_fail("recv: %s", strerror(errno));
            return XCH_ERROR;
        }
        cl_coap_msg_t m;
        if ((size_t)got >= resp_size || cl_coap_parse(&m, resp, (size_t)got) != CL_OK) {
            if (c->verbose && c->log_malformed)
                fprintf(stderr, "%s: ignoring a malformed datagram\n", prog);
            continue;
        }
        if (m.type == CL_COAP_ACK && m.code == CL_COAP_EMPTY && m.mid == mid) {
            acked = true; /* separate response follows */
            deadline = ex_now_ms() + max_wait;
            continue;
        }
        if (m.type == CL_COAP_RST && m.mid == mid) {
            *resp_len = (size_t)got;
            return XCH_RESET;
        }
        if (CL_COAP_CLASS(m.code) >= 2 && m.tkl == tkl &&
            (tkl == 0 || memcmp(m.token, token, tkl) == 0)) {
            if (m.type == CL_COAP_ACK && m.mid != mid)
                continue;                /* an ACK of some other exchange */
            if (m.type == CL_COAP_CON) { /* separate response: acknowledge it */
                uint8_t ack[4] = {0x60, 0x00, (uint8_t)(m.mid >> 8), (uint8_t)m.mid};
                (void)ex_send(c, ack, sizeof ack);
            }
            *resp_len = (size_t)got;
            return XCH_OK;
        }
    }
}

void ex_print_response(const char *prefix, const cl_coap_msg_t *m, const char *reason,
                       bool unprotected)
{
    char code[5];

    cl_coap_code_str(m->code, code);
    printf("%s%s%s%s%s", prefix, code, reason[0] ? " " : "", reason,
           unprotected ? " (unprotected)" : "");
    if (m->payload_len > 0) {
        fputs(": ", stdout);
        for (size_t i = 0; i < m->payload_len; i++) {
            uint8_t ch = m->payload[i];
            if (ch >= 0x20 && ch < 0x7f)
                putchar(ch);
            else
                printf("\\x%02x", ch);
        }
    }
    putchar('\n');
    fflush(stdout);
}

/* ------------------------------------------------------------ server */

bool ex_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        const uint8_t *a = in6->sin6_addr.s6_addr;
        if (memcmp(a, &in6addr_loopback, 16) == 0)
            return true;
        return memcmp(a, v4mapped, 12) == 0 && a[12] == 127;
    }
    return false;
}

void ex_peer_name(const struct sockaddr *sa, socklen_t len, char *out, size_t out_size)
{
    char host[64], serv[8]; /* EX_PEER_NAME_MAX = 64 + 8 + 4 */

    if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(out, out_size, "?");
        return;
    }
    snprintf(out, out_size, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

bool ex_resolve_listen(ex_listen_t *l, const char *addr, const char *port, bool bind_any,
                       const char *hint, char *err, size_t err_size)
{
    struct addrinfo hints, *res = NULL;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = getaddrinfo(addr, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, err_size, "bad listen address '%s' port '%s': %s%s", addr, port,
                 gai_strerror(rc), hint);
        return false;
    }
    bool ok = res->ai_addrlen <= sizeof l->addr;
    if (ok) {
        memcpy(&l->addr, res->ai_addr, res->ai_addrlen);
        l->addr_len = res->ai_addrlen;
    }
    freeaddrinfo(res);
    if (ok && !ex_is_loopback((const struct sockaddr *)&l->addr) && !bind_any) {
        snprintf(err, err_size,
                 "refusing to listen on %s: not a loopback address. This example has no "
                 "protection against request floods; pass --bind-any to listen there anyway",
                 addr);
        return false;
    }
    return ok;
}

bool ex_bind(const ex_listen_t *l, const char *addr, const char *port, int *fd, char *name,
             size_t name_size, char *err, size_t err_size)
{
    struct sockaddr_storage bound;
    socklen_t bound_len = sizeof bound;

    *fd = socket(l->addr.ss_family, SOCK_DGRAM, 0);
    if (*fd < 0) {
        snprintf(err, err_size, "socket: %s", strerror(errno));
        return false;
    }
    if (bind(*fd, (const struct sockaddr *)&l->addr, l->addr_len) != 0) {
        snprintf(err, err_size, "cannot bind %s port %s: %s", addr, port, strerror(errno));
        return false;
    }
    if (getsockname(*fd, (struct sockaddr *)&bound, &bound_len) != 0) {
        snprintf(err, err_size, "getsockname: %s", strerror(errno));
        return false;
    }
    ex_peer_name((struct sockaddr *)&bound, bound_len, name, name_size);
    return true;
}

void ex_send_to(int fd, const uint8_t *buf, size_t len, const struct sockaddr *peer,
                socklen_t peer_len)
{
    if (sendto(fd, buf, len, 0, peer, peer_len) < 0)
        ex_log("sendto: %s", strerror(errno));
}

void ex_reply_header(const cl_coap_msg_t *req, uint16_t *next_mid, uint8_t *type, uint16_t *mid)
{
    if (req->type == CL_COAP_CON) {
        *type = CL_COAP_ACK;
        *mid = req->mid;
    } else {
        *type = CL_COAP_NON;
        *mid = (*next_mid)++;
    }
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void ex_catch_stop_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void ex_serve(int fd, int poll_ms, ex_handler_fn *handle, void (*tick)(void *arg), void *arg,
              unsigned long *datagrams, unsigned long *oversized)
{
    uint8_t buf[EX_DGRAM_MAX + 1];
    struct sockaddr_storage peer;

    while (!stop_requested) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, poll_ms); /* wake up now and then to look at stop_requested */
        if (tick != NULL)
            tick(arg);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ex_log("poll: %s", strerror(errno));
            return;
        }
        if (n == 0)
            continue;
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_name = &peer;
        mh.msg_namelen = sizeof peer;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        ssize_t len = recvmsg(fd, &mh, 0);
        if (len < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
                ex_log("recvmsg: %s", strerror(errno));
            continue;
        }
        (*datagrams)++;
        if ((mh.msg_flags & MSG_TRUNC) || (size_t)len > EX_DGRAM_MAX) {
            if (ex_worth_logging(++*oversized))
                ex_log("dropped a datagram over %d bytes (%lu so far)", EX_DGRAM_MAX, *oversized);
            continue;
        }
        handle(arg, buf, (size_t)len, (struct sockaddr *)&peer, mh.msg_namelen);
    }
}
