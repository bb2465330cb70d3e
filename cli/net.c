/*
 * cli/net.c - CoAP over UDP for the `cloister` command (net.h).
 *
 * A connected UDP socket (only the server's datagrams reach us; ICMP
 * "port unreachable" becomes a clear message), Confirmable requests
 * retransmitted on the RFC 7252 schedule (ACK_TIMEOUT * [1, 1.5], doubled
 * each time, MAX_RETRANSMIT 4), responses matched by token (and by message
 * id for piggybacked ACKs), separate responses acknowledged, and plain
 * responses reassembled from Block2 pieces (RFC 7959) in order.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/coap.h"

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool cli_net_parse_uri(const char *uri, char host[256], char port[8], bool *literal, bool *http,
                       char *err, size_t err_size)
{
    const char *p;
    uint8_t tmp[16];
    bool is_http = http != NULL && uri != NULL && strncasecmp(uri, "http://", 7) == 0;

    if (http != NULL)
        *http = is_http;
    if (uri == NULL || (!is_http && strncasecmp(uri, "coap://", 7) != 0)) {
        cli_err(err, err_size, "'%s': a coap://HOST:PORT or http://HOST:PORT URI is expected",
                uri ? uri : "");
        return false;
    }
    p = uri + 7;
    if (*p == '[') {
        const char *e = strchr(p, ']');
        if (e == NULL || e - p - 1 <= 0 || e - p - 1 >= 256) {
            cli_err(err, err_size, "'%s': bad IPv6 address", uri);
            return false;
        }
        snprintf(host, 256, "%.*s", (int)(e - p - 1), p + 1);
        p = e + 1;
    } else {
        size_t n = strcspn(p, ":/?#");
        if (n == 0 || n >= 256) {
            cli_err(err, err_size, "'%s': missing or overlong host", uri);
            return false;
        }
        snprintf(host, 256, "%.*s", (int)n, p);
        p += n;
    }
    snprintf(port, 8, is_http ? "80" : "5683");
    if (*p == ':') {
        char num[8];
        uint64_t v;
        size_t n = strcspn(p + 1, "/?#");
        if (n == 0 || n >= sizeof num) {
            cli_err(err, err_size, "'%s': bad port", uri);
            return false;
        }
        snprintf(num, sizeof num, "%.*s", (int)n, p + 1);
        if (!cli_parse_u64(num, 1, 65535, &v)) {
            cli_err(err, err_size, "'%s': bad port", uri);
            return false;
        }
        snprintf(port, 8, "%u", (unsigned)v);
        p += 1 + n;
    }
    if (*p != '\0' && strcmp(p, "/") != 0) {
        cli_err(err, err_size, "'%s': give only the server (%s://HOST:PORT), no path", uri,
                is_http ? "http" : "coap");
        return false;
    }
    *literal = inet_pton(AF_INET, host, tmp) == 1 || inet_pton(AF_INET6, host, tmp) == 1;
    return true;
}

bool cli_net_open(cli_net_t *n, const char *uri, const cl_crypto_t *crypto, char *err,
                  size_t err_size)
{
    struct addrinfo hints, *res = NULL, *ai;
    uint8_t r[2];
    const char *env = getenv("CLOISTER_COAP_TIMEOUT_MS");
    uint64_t t;

    memset(n, 0, sizeof *n);
    n->fd = -1;
    n->crypto = crypto;
    n->timeout_ms = CLI_ACK_TIMEOUT_MS;
    if (env != NULL && cli_parse_u64(env, 10, 60000, &t))
        n->timeout_ms = (unsigned)t;
    n->verbose = getenv("CLOISTER_VERBOSE") != NULL;
    if (!cli_net_parse_uri(uri, n->host, n->port, &n->host_literal, &n->http, err, err_size))
        return false;
    if (cl_random(crypto, r, sizeof r) != CL_OK) {
        cli_err(err, err_size, "no randomness from the crypto provider");
        return false;
    }
    n->next_mid = (uint16_t)(r[0] << 8 | r[1]);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (n->http)
        return true; /* net_http.c connects per exchange */
    int rc = getaddrinfo(n->host, n->port, &hints, &res);
    if (rc != 0) {
        cli_err(err, err_size, "cannot resolve '%s': %s", n->host, gai_strerror(rc));
        return false;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        n->fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (n->fd < 0)
            continue;
        if (connect(n->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            n->opened = true;
            break;
        }
        close(n->fd);
        n->fd = -1;
    }
    freeaddrinfo(res);
    if (n->fd < 0) {
        cli_err(err, err_size, "cannot reach %s port %s: %s", n->host, n->port, strerror(errno));
        return false;
    }
    return true;
}

void cli_net_close(cli_net_t *n)
{
    if (n->opened)
        close(n->fd);
    n->opened = false;
    n->fd = -1;
}

bool cli_net_new_token(cli_net_t *n, uint8_t token[CLI_TOKEN_LEN], uint16_t *mid)
{
    if (cl_random(n->crypto, token, CLI_TOKEN_LEN) != CL_OK)
        return false;
    *mid = n->next_mid++;
    return true;
}

/* Adds one option per sep-separated piece of s (empty pieces skipped). */
static void add_split(cl_coap_builder_t *b, uint16_t number, const char *s, char sep)
{
    while (s != NULL && *s != '\0') {
        const char *e = strchr(s, sep);
        size_t len = e != NULL ? (size_t)(e - s) : strlen(s);
        if (len > 0)
            cl_coap_build_option(b, number, (const uint8_t *)s, len);
        s = e != NULL ? e + 1 : NULL;
    }
}

bool cli_net_build(const cli_net_t *n, const cli_req_t *r, uint16_t mid,
                   const uint8_t token[CLI_TOKEN_LEN], bool block2, uint32_t num, uint8_t szx,
                   uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_coap_builder_t b;

    cl_coap_build_init(&b, out, out_size, CL_COAP_CON, r->code, mid, token, CLI_TOKEN_LEN);
    if (!n->host_literal)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)n->host, strlen(n->host));
    if (r->observe)
        cl_coap_build_option(&b, CL_COAP_OPT_OBSERVE, NULL, 0); /* 0: register */
    add_split(&b, CL_COAP_OPT_URI_PATH, r->path, '/');
    if (r->cf >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, (uint32_t)r->cf);
    add_split(&b, CL_COAP_OPT_URI_QUERY, r->query, '&');
    if (block2) {
        cl_coap_block_t blk = {.num = num, .more = false, .szx = szx};
        uint8_t v[3];
        size_t vl;
        if (cl_coap_block_encode(&blk, v, &vl) != CL_OK)
            return false;
        cl_coap_build_option(&b, CL_COAP_OPT_BLOCK2, v, vl);
    }
    if (r->block1 != NULL) {
        uint8_t v[3];
        size_t vl;
        if (cl_coap_block_encode(r->block1, v, &vl) != CL_OK)
            return false;
        cl_coap_build_option(&b, CL_COAP_OPT_BLOCK1, v, vl);
    }
    if (r->len > 0)
        cl_coap_build_payload(&b, r->payload, r->len);
    return cl_coap_build_finish(&b, out_len) == CL_OK;
}

static bool send_all(cli_net_t *n, const uint8_t *msg, size_t len, char *err, size_t err_size)
{
    if (send(n->fd, msg, len, 0) < 0) {
        if (errno == ECONNREFUSED)
            cli_err(err, err_size,
                    "nothing is listening at %s port %s (is cloisterd running? check --server)",
                    n->host, n->port);
        else
            cli_err(err, err_size, "send to %s port %s: %s", n->host, n->port, strerror(errno));
        return false;
    }
    return true;
}

void cli_net_send_empty(cli_net_t *n, uint8_t type, uint16_t mid)
{
    /* version 1, type, TKL 0; code 0.00; message id */
    uint8_t msg[4] = {(uint8_t)(0x40 | (type & 3) << 4), 0x00, (uint8_t)(mid >> 8), (uint8_t)mid};

    if (n->fd >= 0)
        (void)send(n->fd, msg, sizeof msg, 0);
}

int cli_net_recv(cli_net_t *n, uint8_t *buf, size_t size, size_t *len, unsigned wait_ms,
                 char *err, size_t err_size)
{
    uint64_t deadline = now_ms() + wait_ms;

    if (n->fd < 0) {
        cli_err(err, err_size, "not connected");
        return -1;
    }
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return 0;
        struct pollfd p = {.fd = n->fd, .events = POLLIN};
        int k = poll(&p, 1, (int)(deadline - now));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            cli_err(err, err_size, "poll: %s", strerror(errno));
            return -1;
        }
        if (k == 0)
            return 0;
        ssize_t got = recv(n->fd, buf, size, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            if (errno == ECONNREFUSED)
                cli_err(err, err_size, "nothing is listening at %s port %s any more (cloisterd "
                        "stopped?)", n->host, n->port);
            else
                cli_err(err, err_size, "recv: %s", strerror(errno));
            return -1;
        }
        if ((size_t)got >= size)
            continue; /* larger than we take: not for us */
        *len = (size_t)got;
        return 1;
    }
}

bool cli_net_exchange(cli_net_t *n, const uint8_t *msg, size_t len, uint16_t mid,
                      const uint8_t token[CLI_TOKEN_LEN], uint8_t *resp, size_t resp_size,
                      size_t *resp_len, char *err, size_t err_size)
{
    uint8_t r16[2];
    unsigned retransmits = 0;
    bool acked = false;

    if (n->http)
        return cli_http_exchange(n, msg, len, resp, resp_size, resp_len, err, err_size);
    if (cl_random(n->crypto, r16, sizeof r16) != CL_OK) {
        cli_err(err, err_size, "no randomness from the crypto provider");
        return false;
    }
    uint64_t timeout =
        n->timeout_ms + (uint64_t)n->timeout_ms * (unsigned)(r16[0] << 8 | r16[1]) / (2u * 65535u);
    uint64_t max_wait = (uint64_t)n->timeout_ms * 31u * 3u / 2u; /* MAX_TRANSMIT_WAIT-like */
    uint64_t next = now_ms() + timeout, deadline = 0;

    if (!send_all(n, msg, len, err, err_size))
        return false;
    for (;;) {
        uint64_t now = now_ms();
        if (!acked && now >= next) {
            if (retransmits == CLI_MAX_RETRANSMIT) {
                cli_err(err, err_size,
                        "no response from %s port %s after %u retransmissions (is cloisterd "
                        "running there?)",
                        n->host, n->port, retransmits);
                return false;
            }
            retransmits++;
            timeout *= 2;
            next = now + timeout;
            if (n->verbose)
                fprintf(stderr, "cloister: retransmission %u of message id %u\n", retransmits,
                        mid);
            if (!send_all(n, msg, len, err, err_size))
                return false;
            continue;
        }
        if (acked && now >= deadline) {
            cli_err(err, err_size, "the server acknowledged but its response never came");
            return false;
        }
        struct pollfd p = {.fd = n->fd, .events = POLLIN};
        int k = poll(&p, 1, (int)((acked ? deadline : next) - now));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            cli_err(err, err_size, "poll: %s", strerror(errno));
            return false;
        }
        if (k == 0)
            continue;
        ssize_t got = recv(n->fd, resp, resp_size, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNREFUSED)
                cli_err(err, err_size,
                        "nothing is listening at %s port %s (is cloisterd running? check "
                        "--server)",
                        n->host, n->port);
            else
                cli_err(err, err_size, "recv: %s", strerror(errno));
            return false;
        }
        cl_coap_msg_t m;
        if ((size_t)got >= resp_size || cl_coap_parse(&m, resp, (size_t)got) != CL_OK)
            continue;
        if (m.type == CL_COAP_ACK && m.code == CL_COAP_EMPTY && m.mid == mid) {
            acked = true;
            deadline = now_ms() + max_wait;
            continue;
        }
        if (m.type == CL_COAP_RST && m.mid == mid) {
            cli_err(err, err_size, "the server reset the exchange (RST)");
            return false;
        }
        if (CL_COAP_CLASS(m.code) >= 2 && m.tkl == CLI_TOKEN_LEN &&
            memcmp(m.token, token, CLI_TOKEN_LEN) == 0) {
            if (m.type == CL_COAP_ACK && m.mid != mid)
                continue;
            if (m.type == CL_COAP_CON)
                cli_net_send_empty(n, CL_COAP_ACK, m.mid);
            *resp_len = (size_t)got;
            return true;
        }
    }
}

bool cli_net_request(cli_net_t *n, const cli_req_t *r, uint8_t *code, uint8_t *out,
                     size_t out_size, size_t *out_len, char *err, size_t err_size)
{
    uint8_t *req = malloc(CLI_DGRAM_MAX), *resp = malloc(CLI_DGRAM_MAX + 1);
    uint8_t token[CLI_TOKEN_LEN];
    uint32_t num = 0;
    uint8_t szx = 6;
    bool ok = false, block2 = false;

    *out_len = 0;
    if (req == NULL || resp == NULL) {
        cli_err(err, err_size, "out of memory");
        goto done;
    }
    for (;;) {
        size_t req_len, resp_len;
        uint16_t mid;
        cl_coap_msg_t m;
        if (!cli_net_new_token(n, token, &mid) ||
            !cli_net_build(n, r, mid, token, block2, num, szx, req, CLI_DGRAM_MAX, &req_len)) {
            cli_err(err, err_size, "cannot build the request for %s", r->path);
            goto done;
        }
        if (!cli_net_exchange(n, req, req_len, mid, token, resp, CLI_DGRAM_MAX + 1, &resp_len,
                              err, err_size))
            goto done;
        if (cl_coap_parse(&m, resp, resp_len) != CL_OK) {
            cli_err(err, err_size, "malformed response from the server");
            goto done;
        }
        *code = m.code;
        const cl_coap_option_t *bo = cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK2);
        cl_coap_block_t blk = {0, false, 0};
        if (bo != NULL && cl_coap_block_decode(bo, &blk) != CL_OK) {
            cli_err(err, err_size, "malformed Block2 option in the response");
            goto done;
        }
        if (bo != NULL && (blk.num != num || (block2 && blk.szx != szx) || blk.szx > 6 ||
                           (size_t)blk.num << (blk.szx + 4) != *out_len)) {
            cli_err(err, err_size, "the server sent an unexpected block of %s", r->path);
            goto done;
        }
        if (*out_len + m.payload_len > out_size) {
            cli_err(err, err_size, "the response to %s is too large", r->path);
            goto done;
        }
        if (m.payload_len > 0)
            memcpy(out + *out_len, m.payload, m.payload_len);
        *out_len += m.payload_len;
        if (bo == NULL || !blk.more)
            break;
        if (CL_COAP_CLASS(m.code) != 2 || num >= (1u << 20) - 1) {
            cli_err(err, err_size, "bad block-wise response for %s", r->path);
            goto done;
        }
        block2 = true;
        szx = blk.szx;
        num++;
    }
    ok = true;
done:
    free(req);
    free(resp);
    return ok;
}
