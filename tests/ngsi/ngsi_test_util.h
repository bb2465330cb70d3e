/*
 * ngsi_test_util.h - fixture pieces for the NGSI facade tests (static
 * inline; include after <cmocka.h>): a blocking HTTP/1.1 client on
 * loopback, a raw socket for hostile input, and a notification receiver (a
 * small HTTP server thread on 127.0.0.1 that records every request and
 * answers with a chosen status, optionally after a delay).
 */
#ifndef CL_TESTS_NGSI_TEST_UTIL_H
#define CL_TESTS_NGSI_TEST_UTIL_H

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

/* ------------------------------------------------------------ client */

typedef struct nt_resp {
    int status;
    char head[16384];
    char *body;
    size_t body_len;
    cJSON *json; /* the body parsed, NULL if not JSON */
} nt_resp_t;

static inline void nt_resp_free(nt_resp_t *r)
{
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

static inline int nt_connect(uint16_t port)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 20};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    return s;
}

static inline void nt_send_all(int s, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(s, c, n, MSG_NOSIGNAL);
        if (k <= 0)
            return; /* the server may close early (413, 411...) */
        c += k;
        n -= (size_t)k;
    }
}

static inline const char *nt_find_sep(const char *buf, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
            return buf + i;
    return NULL;
}

/* Reads until EOF; false when nothing arrived. */
static inline bool nt_read_response(int s, nt_resp_t *out)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t k = recv(s, buf + len, cap - len - 1, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    buf[len] = '\0';
    memset(out, 0, sizeof *out);
    char *sep = (char *)(uintptr_t)nt_find_sep(buf, len);
    if (len == 0 || sep == NULL || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
        free(buf);
        return false;
    }
    size_t hl = (size_t)(sep - buf);
    if (hl >= sizeof out->head)
        hl = sizeof out->head - 1;
    memcpy(out->head, buf, hl);
    out->head[hl] = '\0';
    out->body_len = len - (size_t)(sep + 4 - buf);
    out->body = malloc(out->body_len + 1);
    assert_non_null(out->body);
    memcpy(out->body, sep + 4, out->body_len);
    out->body[out->body_len] = '\0';
    out->json = out->body_len > 0 ? cJSON_ParseWithLength(out->body, out->body_len) : NULL;
    free(buf);
    return true;
}

/*
 * One request on a new connection (Connection: close). hdrs: extra header
 * lines ("K: V\r\n..."); with a body, Content-Length and (unless hdrs has
 * one) Content-Type: application/json are added.
 */
static inline int nt_req(uint16_t port, const char *method, const char *path, const char *hdrs,
                         const char *body, nt_resp_t *out)
{
    int s = nt_connect(port);
    size_t blen = body != NULL ? strlen(body) : 0;
    size_t cap = 4096 + (hdrs ? strlen(hdrs) : 0) + strlen(path);
    char *head = malloc(cap);
    assert_non_null(head);
    int n = snprintf(head, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s",
                     method, path, hdrs != NULL ? hdrs : "");
    if (body != NULL) {
        bool has_ct = false;
        for (const char *h = hdrs; h != NULL && *h != '\0' && !has_ct; h++)
            has_ct = strncasecmp(h, "Content-Type:", 13) == 0;
        n += snprintf(head + n, cap - (size_t)n, "%sContent-Length: %zu\r\n",
                      has_ct ? "" : "Content-Type: application/json\r\n", blen);
    }
    n += snprintf(head + n, cap - (size_t)n, "\r\n");
    nt_send_all(s, head, (size_t)n);
    if (blen > 0)
        nt_send_all(s, body, blen);
    free(head);
    bool ok = nt_read_response(s, out);
    close(s);
    if (!ok)
        out->status = -1;
    return out->status;
}

/* Sends raw bytes, returns the response (status -1 when the server just closed). */
static inline int nt_raw(uint16_t port, const char *raw, size_t len, nt_resp_t *out)
{
    int s = nt_connect(port);
    nt_send_all(s, raw, len);
    shutdown(s, SHUT_WR);
    bool ok = nt_read_response(s, out);
    close(s);
    if (!ok)
        out->status = -1;
    return out->status;
}

/* Value of header `name` in a response head (copied into out), false if absent. */
static inline bool nt_header_in(const char *head, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t n = strcspn(v, "\r\n");
            if (n >= size)
                n = size - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

static inline bool nt_header(const nt_resp_t *r, const char *name, char *out, size_t size)
{
    return nt_header_in(r->head, name, out, size);
}

/* The "error" member of an error body ("" if none). */
static inline const char *nt_error(const nt_resp_t *r)
{
    const cJSON *e = r->json != NULL ? cJSON_GetObjectItemCaseSensitive(r->json, "error") : NULL;
    return cJSON_IsString(e) ? e->valuestring : "";
}

static inline void nt_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ notification receiver */

#define NT_RX_MAX 512
#define NT_RX_CONNS 64

typedef struct nt_note {
    char head[4096];
    char *body;
    cJSON *json;
} nt_note_t;

typedef struct nt_rx_conn {
    int fd;
    char *buf;
    size_t len, cap;
} nt_rx_conn_t;

typedef struct nt_rx {
    int lfd;
    uint16_t port;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nt_note_t notes[NT_RX_MAX];
    size_t n;
    int status;   /* answer (default 200) */
    int delay_ms; /* before answering */
    bool stop;
    nt_rx_conn_t c[NT_RX_CONNS];
} nt_rx_t;

/* One complete request at the start of the buffer: its length, else 0. */
static inline size_t nt_rx_complete(const char *buf, size_t len)
{
    const char *sep = nt_find_sep(buf, len);
    if (sep == NULL)
        return 0;
    size_t hl = (size_t)(sep - buf) + 4;
    char lenv[32] = "0";
    char head[4096];
    size_t n = hl < sizeof head - 1 ? hl : sizeof head - 1;
    memcpy(head, buf, n);
    head[n] = '\0';
    nt_header_in(head, "Content-Length", lenv, sizeof lenv);
    size_t bl = (size_t)strtoul(lenv, NULL, 10);
    return len >= hl + bl ? hl + bl : 0;
}

static inline void *nt_rx_main(void *arg)
{
    nt_rx_t *rx = arg;
    while (true) {
        pthread_mutex_lock(&rx->mu);
        bool stop = rx->stop;
        pthread_mutex_unlock(&rx->mu);
        if (stop)
            break;
        struct pollfd p[NT_RX_CONNS + 1];
        size_t np = 0;
        p[np++] = (struct pollfd){.fd = rx->lfd, .events = POLLIN};
        for (int i = 0; i < NT_RX_CONNS; i++)
            if (rx->c[i].fd >= 0)
                p[np++] = (struct pollfd){.fd = rx->c[i].fd, .events = POLLIN};
        if (poll(p, np, 50) <= 0)
            continue;
        if (p[0].revents & POLLIN) {
            int fd = accept(rx->lfd, NULL, NULL);
            if (fd >= 0) {
                int slot = -1;
                for (int i = 0; i < NT_RX_CONNS && slot < 0; i++)
                    if (rx->c[i].fd < 0)
                        slot = i;
                if (slot < 0)
                    close(fd);
                else
                    rx->c[slot] = (nt_rx_conn_t){.fd = fd};
            }
        }
        for (int i = 0; i < NT_RX_CONNS; i++) {
            nt_rx_conn_t *c = &rx->c[i];
            if (c->fd < 0)
                continue;
            bool ready = false;
            for (size_t k = 1; k < np; k++)
                if (p[k].fd == c->fd && (p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                    ready = true;
            if (!ready)
                continue;
            if (c->len + 65536 > c->cap) {
                c->cap = c->cap ? c->cap * 2 : 131072;
                c->buf = realloc(c->buf, c->cap);
            }
            ssize_t k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
            if (k <= 0) {
                close(c->fd);
                free(c->buf);
                *c = (nt_rx_conn_t){.fd = -1};
                continue;
            }
            c->len += (size_t)k;
            size_t used;
            while ((used = nt_rx_complete(c->buf, c->len)) > 0) {
                const char *sep = nt_find_sep(c->buf, c->len);
                size_t hl = (size_t)(sep - c->buf);
                pthread_mutex_lock(&rx->mu);
                int status = rx->status, delay = rx->delay_ms;
                if (rx->n < NT_RX_MAX) {
                    nt_note_t *nn = &rx->notes[rx->n];
                    size_t h = hl < sizeof nn->head - 1 ? hl : sizeof nn->head - 1;
                    memcpy(nn->head, c->buf, h);
                    nn->head[h] = '\0';
                    size_t bl = used - hl - 4;
                    nn->body = malloc(bl + 1);
                    memcpy(nn->body, sep + 4, bl);
                    nn->body[bl] = '\0';
                    nn->json = cJSON_ParseWithLength(nn->body, bl);
                    rx->n++;
                    pthread_cond_broadcast(&rx->cv);
                }
                pthread_mutex_unlock(&rx->mu);
                if (delay > 0)
                    nt_sleep_ms((unsigned)delay);
                char resp[128];
                int rl = snprintf(resp, sizeof resp,
                                  "HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n", status);
                nt_send_all(c->fd, resp, (size_t)rl);
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
            }
        }
    }
    for (int i = 0; i < NT_RX_CONNS; i++)
        if (rx->c[i].fd >= 0) {
            close(rx->c[i].fd);
            free(rx->c[i].buf);
        }
    return NULL;
}

static inline nt_rx_t *nt_rx_start(void)
{
    nt_rx_t *rx = calloc(1, sizeof *rx);
    assert_non_null(rx);
    rx->status = 200;
    for (int i = 0; i < NT_RX_CONNS; i++)
        rx->c[i].fd = -1;
    rx->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(rx->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(rx->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(rx->lfd, 64), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(rx->lfd, (struct sockaddr *)&a, &al), 0);
    rx->port = ntohs(a.sin_port);
    pthread_mutex_init(&rx->mu, NULL);
    pthread_cond_init(&rx->cv, NULL);
    assert_int_equal(pthread_create(&rx->th, NULL, nt_rx_main, rx), 0);
    return rx;
}

static inline void nt_rx_stop(nt_rx_t *rx)
{
    if (rx == NULL)
        return;
    pthread_mutex_lock(&rx->mu);
    rx->stop = true;
    pthread_mutex_unlock(&rx->mu);
    pthread_join(rx->th, NULL);
    close(rx->lfd);
    for (size_t i = 0; i < rx->n; i++) {
        free(rx->notes[i].body);
        cJSON_Delete(rx->notes[i].json);
    }
    pthread_mutex_destroy(&rx->mu);
    pthread_cond_destroy(&rx->cv);
    free(rx);
}

/* Waits until at least n notifications arrived (or timeout): the count. */
static inline size_t nt_rx_wait(nt_rx_t *rx, size_t n, unsigned timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&rx->mu);
    while (rx->n < n)
        if (pthread_cond_timedwait(&rx->cv, &rx->mu, &ts) != 0)
            break;
    size_t got = rx->n;
    pthread_mutex_unlock(&rx->mu);
    return got;
}

static inline size_t nt_rx_count(nt_rx_t *rx)
{
    pthread_mutex_lock(&rx->mu);
    size_t n = rx->n;
    pthread_mutex_unlock(&rx->mu);
    return n;
}

static inline void nt_rx_set(nt_rx_t *rx, int status, int delay_ms)
{
    pthread_mutex_lock(&rx->mu);
    rx->status = status;
    rx->delay_ms = delay_ms;
    pthread_mutex_unlock(&rx->mu);
}

/* temp dirs: ht_rm_rf from tests/host/host_test_util.h */

#endif
