/*
 * bench_ngsi.c - load generator for the NGSI-v2 facade (host/ngsi/).
 *
 * N keep-alive connections (one epoll thread, each connection one request in
 * flight) PATCH /v2/entities/{id}/attrs with an HpkeCiphertext attribute
 * (the smart-meter workload of the Key Vault design: a fresh base64url
 * ciphertext and kid/ts metadata per reading) and count the 204s; reports
 * updates/s and the latency percentiles. Every 204 is a committed, durable
 * update (the facade answers after its group commit).
 *
 *   bench_ngsi --inproc [--data DIR | --pg CONNINFO] [--threads T]   facade in this process
 *   bench_ngsi --port P [--host 127.0.0.1]                            a running one
 *   common: --connections N (64) --entities E (N) --seconds S (10) --service SVC
 *           --min-rate R (exit 1 below R updates/s; also on any non-204)
 *
 * Loopback only: --host must be a 127.0.0.0/8 address.
 */
#define _GNU_SOURCE

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ngsi.h"

#define MAX_CONN 1024
#define REQ_MAX 2048
#define RESP_MAX 8192

typedef struct conn {
    int fd;
    int entity;
    char req[REQ_MAX];
    size_t req_len, sent;
    char resp[RESP_MAX];
    size_t resp_len;
    uint64_t t0;
} conn_t;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* An HPKE-like ciphertext: enc (32 bytes) + AES-GCM of an 8-byte reading + tag = 56 bytes. */
static void ciphertext(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = b64u[next_rand() & 63];
    out[n] = '\0';
}

static void build_patch(conn_t *c, const char *service)
{
    char ct[80], body[512];
    ciphertext(ct, 75);
    int bl = snprintf(body, sizeof body,
                      "{\"consumption\":{\"type\":\"HpkeCiphertext\",\"value\":\"%s\","
                      "\"metadata\":{\"kid\":{\"type\":\"Text\",\"value\":\"stream-1\"},"
                      "\"ts\":{\"type\":\"Number\",\"value\":%" PRIu64 "}}}}",
                      ct, now_us() / 1000);
    int n = snprintf(c->req, sizeof c->req,
                     "PATCH /v2/entities/meter-%d/attrs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n"
                     "Fiware-Service: %s\r\nFiware-ServicePath: /\r\n\r\n%s",
                     c->entity, bl, service, body);
    c->req_len = (size_t)n;
    c->sent = 0;
    c->resp_len = 0;
}

static int connect_to(const char *host, uint16_t port, bool nonblock)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 || (ntohl(a.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "bench_ngsi: --host must be a loopback address (127.0.0.0/8)\n");
        exit(2);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        fprintf(stderr, "bench_ngsi: connect failed: %s\n", strerror(errno));
        exit(1);
    }
    if (nonblock)
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* Status of one complete response in buf (consumed length in *used), 0 if incomplete. */
static int parse_response(const char *buf, size_t len, size_t *used)
{
    const char *sep = memmem(buf, len, "\r\n\r\n", 4);
    if (sep == NULL)
        return 0;
    size_t hl = (size_t)(sep - buf) + 4;
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    size_t cl = 0;
    const char *p = buf;
    while ((p = memmem(p, hl - (size_t)(p - buf), "\r\n", 2)) != NULL && p < sep) {
        p += 2;
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            cl = (size_t)strtoul(p + 15, NULL, 10);
    }
    if (len < hl + cl)
        return 0;
    *used = hl + cl;
    return status;
}

/* Blocking request on fd (keep-alive), returns the status. */
static int blocking_req(int fd, const char *req, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t k = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        off += (size_t)k;
    }
    char buf[RESP_MAX];
    size_t got = 0, used = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + got, sizeof buf - got, 0);
        if (k <= 0)
            return -1;
        got += (size_t)k;
        int st = parse_response(buf, got, &used);
        if (st != 0)
            return st;
        if (got == sizeof buf)
            return -1;
    }
}

static void log_stderr(void *ctx, int level, const char *line)
{
    (void)ctx;
    if (level <= 1 || getenv("BENCH_NGSI_DEBUG") != NULL)
        fprintf(stderr, "%s\n", line);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_ngsi (--inproc [--data DIR | --pg CONNINFO] [--threads T] | --port P "
            "[--host H])\n"
            "                  [--connections N] [--entities E] [--seconds S] [--service SVC]\n"
            "                  [--min-rate R]\n");
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *data = NULL, *pg = NULL, *service = "bench";
    unsigned port = 0, nconn = 64, nent = 0, threads = 0;
    double seconds = 10, min_rate = 0;
    bool inproc = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--inproc") == 0) {
            inproc = true;
            continue;
        }
        if (v == NULL) {
            usage();
            return 2;
        }
        i++;
        if (strcmp(a, "--host") == 0)
            host = v;
        else if (strcmp(a, "--port") == 0)
            port = (unsigned)atoi(v);
        else if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--pg") == 0)
            pg = v;
        else if (strcmp(a, "--threads") == 0)
            threads = (unsigned)atoi(v);
        else if (strcmp(a, "--connections") == 0)
            nconn = (unsigned)atoi(v);
        else if (strcmp(a, "--entities") == 0)
            nent = (unsigned)atoi(v);
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--service") == 0)
            service = v;
        else if (strcmp(a, "--min-rate") == 0)
            min_rate = atof(v);
        else {
            usage();
            return 2;
        }
    }
    if (nconn == 0 || nconn > MAX_CONN || seconds <= 0 || (!inproc && port == 0)) {
        usage();
        return 2;
    }
    if (nent == 0)
        nent = nconn;

    cl_ngsi_t *ng = NULL;
    char tmp[256] = "";
    if (inproc) {
        cl_ngsi_config_t cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.listen = "127.0.0.1:0";
        cfg.threads = threads;
        cfg.max_connections = nconn + 16;
        cfg.log = log_stderr;
        cfg.log_debug = getenv("BENCH_NGSI_DEBUG") != NULL;
        if (pg != NULL) {
            cfg.pg_conninfo = pg;
        } else if (data != NULL) {
            cfg.data_dir = data;
        } else {
            snprintf(tmp, sizeof tmp, "%s/bench_ngsi.XXXXXX",
                     getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
            if (mkdtemp(tmp) == NULL) {
                perror("mkdtemp");
                return 1;
            }
            cfg.data_dir = tmp;
        }
        if (cl_ngsi_open(&cfg, &ng) != CL_OK) {
            fprintf(stderr, "bench_ngsi: cannot open the facade\n");
            return 1;
        }
        port = cl_ngsi_port(ng);
    }

    /* the entities (upsert: re-runs against the same store work) */
    int sfd = connect_to(host, (uint16_t)port, false);
    for (unsigned e = 0; e < nent; e++) {
        char req[1024], body[512], ct[80];
        ciphertext(ct, 75);
        int bl = snprintf(body, sizeof body,
                          "{\"id\":\"meter-%u\",\"type\":\"SmartMeter\",\"consumption\":{\"type\":"
                          "\"HpkeCiphertext\",\"value\":\"%s\"},\"region\":{\"value\":\"r%u\"}}",
                          e, ct, e % 8);
        int n = snprintf(req, sizeof req,
                         "POST /v2/entities?options=upsert HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         "Content-Type: application/json\r\nContent-Length: %d\r\n"
                         "Fiware-Service: %s\r\n\r\n%s",
                         bl, service, body);
        int st = blocking_req(sfd, req, (size_t)n);
        if (st != 201 && st != 204) {
            fprintf(stderr, "bench_ngsi: creating meter-%u answered %d\n", e, st);
            return 1;
        }
    }
    close(sfd);

    conn_t *cs = calloc(nconn, sizeof *cs);
    size_t lat_cap = 1u << 20, nlat = 0;
    uint32_t *lat = malloc(lat_cap * sizeof *lat);
    int ep = epoll_create1(0);
    if (cs == NULL || lat == NULL || ep < 0)
        return 1;
    for (unsigned i = 0; i < nconn; i++) {
        conn_t *c = &cs[i];
        c->fd = connect_to(host, (uint16_t)port, true);
        c->entity = (int)(i % nent);
        /* EPOLLIN only: a request fits the socket buffer and is sent at once (level-triggered
         * EPOLLOUT on every idle socket would make the client burn the CPU it measures) */
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        build_patch(c, service);
        c->t0 = now_us();
        ssize_t w0 = send(c->fd, c->req, c->req_len, MSG_NOSIGNAL);
        c->sent = w0 > 0 ? (size_t)w0 : 0;
    }
    uint64_t ok = 0, other = 0, errors = 0;
    uint64_t start = now_us(), end = start + (uint64_t)(seconds * 1e6);
    struct epoll_event evs[256];
    unsigned open_conns = nconn;
    bool stopping = false;
    while (open_conns > 0) {
        uint64_t t = now_us();
        if (!stopping && t >= end)
            stopping = true;
        if (stopping && t >= end + 10u * 1000000u)
            break; /* answers that never came: counted as errors below */
        int n = epoll_wait(ep, evs, 256, 100);
        for (int k = 0; k < n; k++) {
            conn_t *c = evs[k].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->sent < c->req_len) { /* a partial send (rare): finish it */
                ssize_t w = send(c->fd, c->req + c->sent, c->req_len - c->sent, MSG_NOSIGNAL);
                if (w > 0)
                    c->sent += (size_t)w;
                else if (w < 0 && errno != EAGAIN) {
                    errors++;
                    close(c->fd);
                    c->fd = -1;
                    open_conns--;
                    continue;
                }
                struct epoll_event ev = {.events = EPOLLIN | (c->sent < c->req_len ? EPOLLOUT : 0),
                                         .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            }
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t r = recv(c->fd, c->resp + c->resp_len, sizeof c->resp - c->resp_len, 0);
                if (r <= 0) {
                    if (r < 0 && errno == EAGAIN)
                        continue;
                    errors++;
                    close(c->fd);
                    c->fd = -1;
                    open_conns--;
                    continue;
                }
                c->resp_len += (size_t)r;
                size_t used = 0;
                int st = parse_response(c->resp, c->resp_len, &used);
                if (st == 0)
                    continue;
                uint64_t done = now_us();
                if (st == 204)
                    ok++;
                else
                    other++;
                if (nlat == lat_cap) {
                    lat_cap *= 2;
                    lat = realloc(lat, lat_cap * sizeof *lat);
                    if (lat == NULL)
                        return 1;
                }
                lat[nlat++] = (uint32_t)(done - c->t0 > UINT32_MAX ? UINT32_MAX : done - c->t0);
                if (stopping) {
                    close(c->fd);
                    c->fd = -1;
                    open_conns--;
                    continue;
                }
                build_patch(c, service);
                c->t0 = now_us();
                ssize_t w = send(c->fd, c->req, c->req_len, MSG_NOSIGNAL);
                c->sent = w > 0 ? (size_t)w : 0;
                if (c->sent < c->req_len) {
                    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
        }
    }
    uint64_t elapsed = now_us() - start;
    errors += open_conns;
    for (unsigned i = 0; i < nconn; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    close(ep);
    qsort(lat, nlat, sizeof *lat, cmp_u32);
    double rate = (double)ok / ((double)elapsed / 1e6);
    uint32_t p50 = nlat ? lat[nlat / 2] : 0, p99 = nlat ? lat[nlat * 99 / 100] : 0;
    uint32_t pmax = nlat ? lat[nlat - 1] : 0;
    printf("bench_ngsi: store=%s connections=%u entities=%u seconds=%.1f updates=%" PRIu64
           " updates/s=%.0f p50_us=%u p99_us=%u max_us=%u non204=%" PRIu64 " errors=%" PRIu64 "\n",
           inproc ? (pg ? "pg" : "sqlite") : "external", nconn, nent, (double)elapsed / 1e6, ok,
           rate, p50, p99, pmax, other, errors);
    if (ng != NULL) {
        cl_ngsi_stats_t s;
        cl_ngsi_get_stats(ng, &s);
        printf("bench_ngsi: commits=%" PRIu64 " ops/commit=%.1f\n", s.commits,
               s.commits ? (double)s.commit_ops / (double)s.commits : 0.0);
        cl_ngsi_close(ng);
    }
    if (tmp[0] != '\0') {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "%s/ngsi.sqlite", tmp);
        unlink(cmd);
        snprintf(cmd, sizeof cmd, "%s/ngsi.sqlite-wal", tmp);
        unlink(cmd);
        snprintf(cmd, sizeof cmd, "%s/ngsi.sqlite-shm", tmp);
        unlink(cmd);
        rmdir(tmp);
    }
    free(lat);
    free(cs);
    if (other > 0 || errors > 0 || rate < min_rate) {
        fprintf(stderr, "bench_ngsi: FAILED (non-204 %" PRIu64 ", errors %" PRIu64
                        ", rate %.0f < %.0f?)\n",
                other, errors, rate, min_rate);
        return 1;
    }
    return 0;
}
