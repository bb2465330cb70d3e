/*
 * oscore_client.c - a one-shot CoAP client over UDP that protects its
 * request with OSCORE (RFC 8613) and verifies the response.
 *
 *   oscore-client [-c FILE] [options] METHOD coap://HOST[:PORT]/path[?query] [payload]
 *
 * What: builds the plain CoAP request, protects it with
 * cl_oscore_protect_request, sends it as a Confirmable message with the
 * RFC 7252 retransmission schedule (ACK_TIMEOUT 2 s times a random factor
 * up to 1.5, doubled on each of MAX_RETRANSMIT = 4 retransmissions), takes
 * the response whose token matches (piggybacked or separate), verifies it
 * with cl_oscore_unprotect_response and prints "2.05 Content: payload".
 * A protected 4.01 carrying an Echo option is the server's Appendix B.1.2
 * freshness challenge (it has just restarted and does not know its replay
 * window): the client repeats the request once, as a new OSCORE request,
 * with that Echo value as an inner option.
 *
 * Exit status: 0 for a verified 2.xx, 1 for a verified 4.xx/5.xx, 2 for
 * everything else (timeouts, verification failures, unprotected error
 * responses, whose content nobody vouches for). --replay-last re-sends the
 * last protected request verbatim after the exchange, as an attacker on the
 * path could, and reports the server's answer; it exits 0 only if the
 * server refused it with 4.01 "Replay detected". --unprotected sends the
 * plain request (to see the server refuse it), PING sends a CoAP ping.
 *
 * Why a sequence file for a one-shot client: every run uses new sequence
 * numbers of the same context, so the client persists its ceiling exactly
 * like the server does (seqstore.c); a client that started at 0 every time
 * would reuse AEAD nonces.
 */
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
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cloister/coap.h"
#include "cloister/crypto_openssl.h"
#include "cloister/oscore.h"
#include "config.h"
#include "seqstore.h"

#define DGRAM_MAX 1500
#define PLAIN_MAX 1280 /* request before protection: keeps the datagram under DGRAM_MAX */
#define ACK_TIMEOUT_MS 2000
#define MAX_RETRANSMIT 4
#define MAX_SEGMENTS 16
#define TOKEN_LEN 8

enum { EXIT_SUCCESS_2XX = 0, EXIT_CLIENT_ERROR = 1, EXIT_FAILURE_OTHER = 2 };

typedef enum { XCH_OK, XCH_TIMEOUT, XCH_RESET, XCH_ERROR } xstatus_t;

typedef struct segment {
    const uint8_t *p;
    size_t len;
} segment_t;

struct client {
    /* Command line. */
    const char *config_path;
    config_overrides_t overrides;
    const char *method_arg;
    const char *uri;
    const char *payload;
    size_t payload_len;
    long content_format; /* -1: none */
    unsigned timeout_ms;
    bool replay_last, verbose, unprotected, ping;
    uint8_t method;

    /* Target, from the URI. */
    char host[256];
    char port[8];
    bool host_literal;
    uint8_t uri_buf[512]; /* percent-decoded path and query segments */
    segment_t path[MAX_SEGMENTS], query[MAX_SEGMENTS];
    size_t n_path, n_query;

    /* Runtime. */
    int fd;
    cl_crypto_t crypto;
    cl_oscore_ctx_t ctx;
    seqstore_t seq;
    uint16_t next_mid;

    /* The last protected request, for --replay-last. */
    uint8_t last[DGRAM_MAX];
    size_t last_len;
    uint16_t last_mid;
    uint8_t last_token[TOKEN_LEN];
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("oscore-client: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: oscore-client [-c FILE] [options] METHOD coap://HOST[:PORT]/path [payload]\n"
            "METHOD is GET, POST, PUT, DELETE, FETCH, PATCH, iPATCH, or PING (CoAP ping).\n"
            "  -c, --config FILE       security context file (key = value lines)\n"
            "      --content-format N  Content-Format of the payload (default 0 with a payload)\n"
            "      --timeout-ms N      initial ACK timeout (default %d; RFC 7252 ACK_TIMEOUT)\n"
            "      --replay-last       re-send the last protected request verbatim afterwards\n"
            "                          and report the answer (exit 0 iff refused as a replay)\n"
            "      --unprotected       send the request without OSCORE\n"
            "  -v, --verbose           OSCORE details (sequence numbers, partial IVs) on stderr\n"
            "  -h, --help\n"
            "context flags (override the file):\n%s"
            "exit status: 0 = 2.xx, 1 = 4.xx/5.xx (verified), 2 = error, timeout, or an\n"
            "unprotected error response\n",
            ACK_TIMEOUT_MS, config_flags_help);
}

static bool parse_number(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;

    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_method(struct client *c)
{
    static const struct {
        const char *name;
        uint8_t code;
    } methods[] = {{"GET", CL_COAP_GET},       {"POST", CL_COAP_POST},   {"PUT", CL_COAP_PUT},
                   {"DELETE", CL_COAP_DELETE}, {"FETCH", CL_COAP_FETCH}, {"PATCH", CL_COAP_PATCH},
                   {"IPATCH", CL_COAP_IPATCH}};

    if (strcasecmp(c->method_arg, "PING") == 0) {
        c->ping = true;
        return true;
    }
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (strcasecmp(c->method_arg, methods[i].name) == 0) {
            c->method = methods[i].code;
            return true;
        }
    }
    return false;
}

/* Returns 0 to continue, 1 for --help, 2 for a usage error. */
static int parse_args(struct client *c, int argc, char **argv)
{
    const char *pos[3];
    size_t n_pos = 0;
    unsigned long v;
    char err[256];
    bool options_done = false;

    c->content_format = -1;
    c->timeout_ms = ACK_TIMEOUT_MS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (n_pos == 3) {
                fail("too many arguments (try --help)");
                return 2;
            }
            pos[n_pos++] = a;
            continue;
        }
        int r = config_take_flag(&c->overrides, argc, argv, &i, err, sizeof err);
        if (r < 0) {
            fail("%s", err);
            return 2;
        }
        if (r > 0)
            continue;
        if (strcmp(a, "--") == 0) {
            options_done = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return 1;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            c->verbose = true;
        } else if (strcmp(a, "--replay-last") == 0) {
            c->replay_last = true;
        } else if (strcmp(a, "--unprotected") == 0) {
            c->unprotected = true;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
                   strcmp(a, "--content-format") == 0 || strcmp(a, "--timeout-ms") == 0) {
            if (i + 1 >= argc) {
                fail("%s needs a value", a);
                return 2;
            }
            const char *val = argv[++i];
            if (a[1] == 'c' || strcmp(a, "--config") == 0) {
                c->config_path = val;
            } else if (strcmp(a, "--content-format") == 0) {
                if (!parse_number(val, 0, 65535, &v)) {
                    fail("--content-format must be a number from 0 to 65535");
                    return 2;
                }
                c->content_format = (long)v;
            } else {
                if (!parse_number(val, 1, 60000, &v)) {
                    fail("--timeout-ms must be a number from 1 to 60000");
                    return 2;
                }
                c->timeout_ms = (unsigned)v;
            }
        } else {
            fail("unknown option '%s' (try --help)", a);
            return 2;
        }
    }
    if (n_pos < 2) {
        fail("need a METHOD and a coap:// URI (try --help)");
        return 2;
    }
    c->method_arg = pos[0];
    c->uri = pos[1];
    if (n_pos == 3) {
        c->payload = pos[2];
        c->payload_len = strlen(pos[2]);
        if (c->content_format < 0)
            c->content_format = CL_COAP_CF_TEXT;
    }
    if (!parse_method(c)) {
        fail("unknown method '%s' (GET, POST, PUT, DELETE, FETCH, PATCH, iPATCH or PING)",
             c->method_arg);
        return 2;
    }
    return 0;
}

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
 * Splits s[0..len) at `sep` into percent-decoded segments stored in
 * c->uri_buf from *used on (RFC 7252 section 6.4 steps 8 and 9).
 */
static bool split_segments(struct client *c, const char *s, size_t len, char sep, segment_t *out,
                           size_t *n, size_t *used)
{
    size_t i = 0;

    *n = 0;
    while (i <= len) {
        if (*n == MAX_SEGMENTS)
            return false;
        uint8_t *start = c->uri_buf + *used;
        size_t seg_len = 0;
        for (; i < len && s[i] != sep; i++) {
            uint8_t ch = (uint8_t)s[i];
            if (ch == '%') {
                int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
                int lo = i + 2 < len ? hex_value(s[i + 2]) : -1;
                if (i + 2 >= len || hi < 0 || lo < 0)
                    return false;
                ch = (uint8_t)(hi << 4 | lo);
                i += 2;
            }
            if (*used + seg_len >= sizeof c->uri_buf)
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

static bool parse_uri(struct client *c)
{
    const char *u = c->uri, *p, *host_end;
    size_t used = 0;

    if (strncasecmp(u, "coap://", 7) != 0) {
        fail("'%s': only coap:// URIs are supported (OSCORE protects plain CoAP)", u);
        return false;
    }
    p = u + 7;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (host_end == NULL) {
            fail("'%s': missing ']' after the IPv6 address", u);
            return false;
        }
        snprintf(c->host, sizeof c->host, "%.*s", (int)(host_end - p - 1), p + 1);
        p = host_end + 1;
    } else {
        size_t n = strcspn(p, ":/?#");
        if (n == 0 || n >= sizeof c->host) {
            fail("'%s': missing or overlong host", u);
            return false;
        }
        snprintf(c->host, sizeof c->host, "%.*s", (int)n, p);
        p += n;
    }
    snprintf(c->port, sizeof c->port, "5683");
    if (*p == ':') {
        size_t n = strcspn(p + 1, "/?#");
        unsigned long v;
        char num[8];
        if (n == 0 || n >= sizeof num) {
            fail("'%s': bad port", u);
            return false;
        }
        snprintf(num, sizeof num, "%.*s", (int)n, p + 1);
        if (!parse_number(num, 1, 65535, &v)) {
            fail("'%s': bad port", u);
            return false;
        }
        snprintf(c->port, sizeof c->port, "%lu", v);
        p += 1 + n;
    }
    if (strchr(p, '#') != NULL) {
        fail("'%s': fragments are not allowed in a coap URI", u);
        return false;
    }
    size_t path_len = strcspn(p, "?");
    /* "" and "/" are the root: no Uri-Path at all. */
    if (path_len > 1 && !split_segments(c, p + 1, path_len - 1, '/', c->path, &c->n_path, &used)) {
        fail("'%s': bad or too long path (at most %d segments, %%XX escapes)", u, MAX_SEGMENTS);
        return false;
    }
    if (p[path_len] == '?' && p[path_len + 1] != '\0' &&
        !split_segments(c, p + path_len + 1, strlen(p + path_len + 1), '&', c->query, &c->n_query,
                        &used)) {
        fail("'%s': bad or too long query", u);
        return false;
    }
    uint8_t tmp[16];
    c->host_literal =
        inet_pton(AF_INET, c->host, tmp) == 1 || inet_pton(AF_INET6, c->host, tmp) == 1;
    return true;
}

static bool open_socket(struct client *c)
{
    struct addrinfo hints, *res = NULL, *ai;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(c->host, c->port, &hints, &res);
    if (rc != 0) {
        fail("cannot resolve '%s': %s", c->host, gai_strerror(rc));
        return false;
    }
    c->fd = -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        c->fd = socket(ai->ai_family, SOCK_DGRAM, 0);
        if (c->fd < 0)
            continue;
        /* connect: only the server's datagrams reach us, and ICMP errors are reported. */
        if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        close(c->fd);
        c->fd = -1;
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        fail("cannot reach %s port %s: %s", c->host, c->port, strerror(errno));
        return false;
    }
    return true;
}

static bool setup_oscore(struct client *c)
{
    oscore_config_t cfg;
    cl_oscore_params_t params;
    uint64_t initial_ssn = 0;
    char err[512];
    bool ok = false;
    cl_status_t st;

    config_init(&cfg);
    memset(&params, 0, sizeof params);
    if ((c->config_path != NULL && !config_load_file(&cfg, c->config_path, err, sizeof err)) ||
        !config_apply_overrides(&cfg, &c->overrides, err, sizeof err) ||
        !config_finish(&cfg, err, sizeof err) ||
        !seqstore_open(&c->seq, cfg.seq_file, &initial_ssn, err, sizeof err)) {
        fail("%s", err);
        goto done;
    }
    if (c->verbose)
        fprintf(stderr, "oscore-client: sequence numbers: %s %s %" PRIu64 "\n", c->seq.path,
                c->seq.existed ? "holds ceiling" : "not present, starting at", initial_ssn);
    config_params(&cfg, &params);
    params.initial_ssn = initial_ssn;
    params.persist = seqstore_persist;
    params.persist_arg = &c->seq;
    if ((st = cl_oscore_ctx_init(&c->ctx, &c->crypto, &params)) != CL_OK) {
        fail("cannot derive the security context: %s", cl_status_str(st));
        goto done;
    }
    ok = true;
done:
    config_wipe(&cfg);
    cl_wipe(&params, sizeof params);
    return ok;
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool send_dgram(struct client *c, const uint8_t *buf, size_t len)
{
    if (send(c->fd, buf, len, 0) < 0) {
        if (errno == ECONNREFUSED)
            fail("nothing is listening at %s port %s", c->host, c->port);
        else
            fail("send: %s", strerror(errno));
        return false;
    }
    return true;
}

/*
 * Sends the CON request msg and waits for its response (token match),
 * retransmitting on the RFC 7252 schedule until an ACK arrives.
 */
static xstatus_t exchange(struct client *c, const uint8_t *msg, size_t len, uint16_t mid,
                          const uint8_t *token, size_t tkl, uint8_t *resp, size_t resp_size,
                          size_t *resp_len)
{
    uint8_t r16[2];
    unsigned retransmits = 0;
    bool acked = false;

    if (cl_random(&c->crypto, r16, sizeof r16) != CL_OK) {
        fail("no randomness from the crypto provider");
        return XCH_ERROR;
    }
    /* ACK_TIMEOUT * [1, ACK_RANDOM_FACTOR = 1.5] */
    uint64_t timeout =
        c->timeout_ms + (uint64_t)c->timeout_ms * (unsigned)(r16[0] << 8 | r16[1]) / (2u * 65535u);
    /* For a separate response after an empty ACK: MAX_TRANSMIT_WAIT. */
    uint64_t max_wait = (uint64_t)c->timeout_ms * 31u * 3u / 2u;
    uint64_t next = now_ms() + timeout, deadline = 0;

    if (!send_dgram(c, msg, len))
        return XCH_ERROR;
    for (;;) {
        uint64_t now = now_ms();
        if (!acked && now >= next) {
            if (retransmits == MAX_RETRANSMIT) {
                fail("no response from %s port %s after %u retransmissions", c->host, c->port,
                     retransmits);
                return XCH_TIMEOUT;
            }
            retransmits++;
            timeout *= 2;
            next = now + timeout;
            if (c->verbose)
                fprintf(stderr, "oscore-client: retransmission %u of message id %u\n", retransmits,
                        mid);
            if (!send_dgram(c, msg, len))
                return XCH_ERROR;
            continue;
        }
        if (acked && now >= deadline) {
            fail("the server acknowledged but its separate response never came");
            return XCH_TIMEOUT;
        }
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int n = poll(&p, 1, (int)((acked ? deadline : next) - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail("poll: %s", strerror(errno));
            return XCH_ERROR;
        }
        if (n == 0)
            continue;
        ssize_t got = recv(c->fd, resp, resp_size, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ECONNREFUSED)
                fail("nothing is listening at %s port %s", c->host, c->port);
            else
                fail("recv: %s", strerror(errno));
            return XCH_ERROR;
        }
        cl_coap_msg_t m;
        if ((size_t)got >= resp_size || cl_coap_parse(&m, resp, (size_t)got) != CL_OK) {
            if (c->verbose)
                fprintf(stderr, "oscore-client: ignoring a malformed datagram\n");
            continue;
        }
        if (m.type == CL_COAP_ACK && m.code == CL_COAP_EMPTY && m.mid == mid) {
            acked = true; /* separate response follows */
            deadline = now_ms() + max_wait;
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
                (void)send_dgram(c, ack, sizeof ack);
            }
            *resp_len = (size_t)got;
            return XCH_OK;
        }
    }
}

static const char *reason_phrase(uint8_t code)
{
    switch (code) {
    case CL_COAP_CREATED: return "Created";
    case CL_COAP_DELETED: return "Deleted";
    case CL_COAP_VALID: return "Valid";
    case CL_COAP_CHANGED: return "Changed";
    case CL_COAP_CONTENT: return "Content";
    case CL_COAP_CONTINUE: return "Continue";
    case CL_COAP_BAD_REQUEST: return "Bad Request";
    case CL_COAP_UNAUTHORIZED: return "Unauthorized";
    case CL_COAP_BAD_OPTION: return "Bad Option";
    case CL_COAP_FORBIDDEN: return "Forbidden";
    case CL_COAP_NOT_FOUND: return "Not Found";
    case CL_COAP_METHOD_NOT_ALLOWED: return "Method Not Allowed";
    case CL_COAP_NOT_ACCEPTABLE: return "Not Acceptable";
    case CL_COAP_REQUEST_INCOMPLETE: return "Request Entity Incomplete";
    case CL_COAP_PRECONDITION_FAILED: return "Precondition Failed";
    case CL_COAP_REQUEST_TOO_LARGE: return "Request Entity Too Large";
    case CL_COAP_UNSUPPORTED_FORMAT: return "Unsupported Content-Format";
    case CL_COAP_INTERNAL_ERROR: return "Internal Server Error";
    case CL_COAP_NOT_IMPLEMENTED: return "Not Implemented";
    case CL_COAP_SERVICE_UNAVAILABLE: return "Service Unavailable";
    case CL_COAP_CODE(5, 2): return "Bad Gateway";
    case CL_COAP_CODE(5, 4): return "Gateway Timeout";
    case CL_COAP_CODE(5, 5): return "Proxying Not Supported";
    default: return "";
    }
}

/* "2.05 Content: payload" (or "PREFIX4.01 Unauthorized (unprotected): diag"), on stdout. */
static void print_response(const char *prefix, const cl_coap_msg_t *m, bool unprotected)
{
    char code[5];
    const char *reason = reason_phrase(m->code);

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

static int exit_for(uint8_t code)
{
    return CL_COAP_CLASS(code) == 2 ? EXIT_SUCCESS_2XX : EXIT_CLIENT_ERROR;
}

/* The plain request; echo (B.1.2) is added as an inner option when given. */
static cl_status_t build_request(const struct client *c, uint8_t type, uint16_t mid,
                                 const uint8_t *token, const uint8_t *echo, size_t echo_len,
                                 uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_coap_builder_t b;

    cl_coap_build_init(&b, out, out_size, type, c->method, mid, token, TOKEN_LEN);
    if (!c->host_literal)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)c->host, strlen(c->host));
    for (size_t i = 0; i < c->n_path; i++)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, c->path[i].p, c->path[i].len);
    if (c->content_format >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, (uint32_t)c->content_format);
    for (size_t i = 0; i < c->n_query; i++)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_QUERY, c->query[i].p, c->query[i].len);
    if (echo != NULL)
        cl_coap_build_option(&b, CL_COAP_OPT_ECHO, echo, echo_len);
    cl_coap_build_payload(&b, (const uint8_t *)c->payload, c->payload_len);
    return cl_coap_build_finish(&b, out_len);
}

static bool new_token(struct client *c, uint8_t token[TOKEN_LEN], uint16_t *mid)
{
    if (cl_random(&c->crypto, token, TOKEN_LEN) != CL_OK) {
        fail("no randomness from the crypto provider");
        return false;
    }
    *mid = c->next_mid++;
    return true;
}

static int do_ping(struct client *c)
{
    uint8_t ping[4], resp[DGRAM_MAX + 1];
    size_t resp_len;
    uint16_t mid = c->next_mid++;

    ping[0] = 0x40; /* version 1, CON, no token */
    ping[1] = CL_COAP_EMPTY;
    ping[2] = (uint8_t)(mid >> 8);
    ping[3] = (uint8_t)mid;
    switch (exchange(c, ping, sizeof ping, mid, NULL, 0, resp, sizeof resp, &resp_len)) {
    case XCH_RESET:
        printf("pong (RST from %s port %s)\n", c->host, c->port);
        return EXIT_SUCCESS_2XX;
    case XCH_OK: fail("the server answered a ping with a response"); return EXIT_FAILURE_OTHER;
    default: return EXIT_FAILURE_OTHER;
    }
}

static int do_unprotected(struct client *c)
{
    uint8_t token[TOKEN_LEN], req[PLAIN_MAX], resp[DGRAM_MAX + 1];
    size_t req_len, resp_len;
    uint16_t mid;
    cl_coap_msg_t m;

    if (!new_token(c, token, &mid))
        return EXIT_FAILURE_OTHER;
    if (build_request(c, CL_COAP_CON, mid, token, NULL, 0, req, sizeof req, &req_len) != CL_OK) {
        fail("request too large for one datagram (no block-wise transfer here)");
        return EXIT_FAILURE_OTHER;
    }
    xstatus_t x = exchange(c, req, req_len, mid, token, TOKEN_LEN, resp, sizeof resp, &resp_len);
    if (x == XCH_RESET)
        fail("the server reset the exchange (RST)");
    if (x != XCH_OK)
        return EXIT_FAILURE_OTHER;
    if (cl_coap_parse(&m, resp, resp_len) != CL_OK)
        return EXIT_FAILURE_OTHER;
    print_response("", &m, true);
    return exit_for(m.code);
}

static uint64_t piv_value(const uint8_t *piv, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v << 8 | piv[i];
    return v;
}

/* After the exchange: re-sends the last protected request as is. */
static int do_replay(struct client *c)
{
    uint8_t resp[DGRAM_MAX + 1];
    size_t resp_len;
    cl_coap_msg_t m;

    fprintf(stderr, "oscore-client: replaying the last protected request (%zu bytes) verbatim\n",
            c->last_len);
    xstatus_t x = exchange(c, c->last, c->last_len, c->last_mid, c->last_token, TOKEN_LEN, resp,
                           sizeof resp, &resp_len);
    if (x != XCH_OK || cl_coap_parse(&m, resp, resp_len) != CL_OK) {
        fail("no usable answer to the replayed request");
        return EXIT_FAILURE_OTHER;
    }
    bool protected_answer = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) != NULL;
    print_response("replay: ", &m, !protected_answer);
    static const char diag[] = "Replay detected";
    if (!protected_answer && m.code == CL_COAP_UNAUTHORIZED && m.payload_len == strlen(diag) &&
        memcmp(m.payload, diag, strlen(diag)) == 0)
        return EXIT_SUCCESS_2XX;
    fail("the server did NOT refuse the replayed request");
    return EXIT_FAILURE_OTHER;
}

/*
 * One protected request/response. Returns the exit status, or -1 when the
 * server sent a B.1.2 Echo challenge (copied to echo_out).
 */
static int do_oscore_once(struct client *c, const uint8_t *echo, size_t echo_len, uint8_t *echo_out,
                          size_t *echo_out_len)
{
    uint8_t token[TOKEN_LEN], plain[PLAIN_MAX], resp[DGRAM_MAX + 1], presp[DGRAM_MAX];
    size_t plain_len = 0, prot_len, resp_len, presp_len = 0;
    uint16_t mid;
    cl_oscore_req_t oreq;
    cl_oscore_option_t opt;
    cl_coap_msg_t m, pm;
    int rc = EXIT_FAILURE_OTHER;
    cl_status_t st;

    if (!new_token(c, token, &mid))
        return EXIT_FAILURE_OTHER;
    if (build_request(c, CL_COAP_CON, mid, token, echo, echo_len, plain, sizeof plain,
                      &plain_len) != CL_OK) {
        fail("request too large for one datagram (no block-wise transfer here)");
        goto done;
    }
    st = cl_oscore_protect_request(&c->ctx, plain, plain_len, c->last, sizeof c->last, &prot_len,
                                   &oreq);
    if (st != CL_OK) {
        fail("cannot protect the request: %s%s%s", cl_status_str(st),
             st == CL_ERR_PERSIST ? ": " : "", st == CL_ERR_PERSIST ? c->seq.err : "");
        goto done;
    }
    c->last_len = prot_len;
    c->last_mid = mid;
    memcpy(c->last_token, token, TOKEN_LEN);
    if (c->verbose)
        fprintf(stderr,
                "oscore-client: request protected: sender sequence number %" PRIu64
                " (%zu bytes plain, %zu protected)\n",
                piv_value(oreq.piv, oreq.piv_len), plain_len, prot_len);

    xstatus_t x =
        exchange(c, c->last, prot_len, mid, token, TOKEN_LEN, resp, sizeof resp, &resp_len);
    if (x == XCH_RESET)
        fail("the server reset the exchange (RST)");
    if (x != XCH_OK)
        goto done;
    if (cl_coap_parse(&m, resp, resp_len) != CL_OK)
        goto done;
    const cl_coap_option_t *oo = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
    if (oo == NULL) {
        /* Section 8 errors are unprotected: report them, trust nothing in them. */
        print_response("", &m, true);
        fail("the server refused the request; its answer is not protected, so it is reported "
             "but not trusted");
        goto done;
    }
    uint64_t server_piv = 0;
    bool has_piv = cl_oscore_option_decode(&opt, oo->value, oo->len) == CL_OK && opt.piv_len > 0;
    if (has_piv)
        server_piv = piv_value(opt.piv, opt.piv_len);
    st = cl_oscore_unprotect_response(&c->ctx, &oreq, resp, resp_len, presp, sizeof presp,
                                      &presp_len);
    if (st != CL_OK) {
        fail("the response failed OSCORE verification: %s", cl_status_str(st));
        goto done;
    }
    if (cl_coap_parse(&pm, presp, presp_len) != CL_OK)
        goto done;
    if (c->verbose) {
        const cl_coap_option_t *cf = cl_coap_msg_get(&pm, CL_COAP_OPT_CONTENT_FORMAT);
        uint32_t cf_v = 0;
        if (has_piv)
            fprintf(stderr, "oscore-client: response verified: server partial IV %" PRIu64 "\n",
                    server_piv);
        else
            fprintf(stderr, "oscore-client: response verified: no partial IV (request nonce)\n");
        if (cf != NULL && cl_coap_opt_uint(cf, &cf_v) == CL_OK)
            fprintf(stderr, "oscore-client: response Content-Format %" PRIu32 "\n", cf_v);
    }
    const cl_coap_option_t *eo = cl_coap_msg_get(&pm, CL_COAP_OPT_ECHO);
    if (pm.code == CL_COAP_UNAUTHORIZED && eo != NULL && eo->len > 0 && eo->len <= 40 &&
        echo_out != NULL) {
        fprintf(stderr,
                "oscore-client: protected 4.01 with Echo (server partial IV %" PRIu64
                "): the server asks for proof of freshness (RFC 8613 B.1.2); retrying once "
                "with Echo\n",
                server_piv);
        memcpy(echo_out, eo->value, eo->len);
        *echo_out_len = eo->len;
        rc = -1;
        goto done;
    }
    print_response("", &pm, false);
    rc = exit_for(pm.code);
done:
    cl_wipe(plain, sizeof plain);
    cl_wipe(presp, sizeof presp);
    return rc;
}

static int do_oscore(struct client *c)
{
    uint8_t echo[40];
    size_t echo_len = 0;

    int rc = do_oscore_once(c, NULL, 0, echo, &echo_len);
    if (rc == -1) {
        rc = do_oscore_once(c, echo, echo_len, NULL, NULL);
        if (rc == -1)
            rc = EXIT_FAILURE_OTHER;
    }
    if (rc == EXIT_FAILURE_OTHER || !c->replay_last)
        return rc;
    return do_replay(c);
}

int main(int argc, char **argv)
{
    struct client c;
    uint8_t mid[2];
    int rc = EXIT_FAILURE_OTHER;
    cl_status_t st;

    memset(&c, 0, sizeof c);
    c.fd = -1;
    switch (parse_args(&c, argc, argv)) {
    case 0: break;
    case 1: usage(stdout); return 0;
    default: return EXIT_FAILURE_OTHER;
    }
    if (!parse_uri(&c))
        return EXIT_FAILURE_OTHER;
    if ((st = cl_crypto_openssl_new(&c.crypto, 0)) != CL_OK) {
        fail("cannot create the OpenSSL crypto provider: %s", cl_status_str(st));
        return EXIT_FAILURE_OTHER;
    }
    if (cl_random(&c.crypto, mid, sizeof mid) != CL_OK) {
        fail("no randomness from the crypto provider");
        goto done;
    }
    c.next_mid = (uint16_t)(mid[0] << 8 | mid[1]);
    if (!c.ping && !c.unprotected && !setup_oscore(&c))
        goto done;
    if (!open_socket(&c))
        goto done;
    if (c.ping)
        rc = do_ping(&c);
    else if (c.unprotected)
        rc = do_unprotected(&c);
    else
        rc = do_oscore(&c);
done:
    if (c.fd >= 0)
        close(c.fd);
    cl_oscore_ctx_free(&c.ctx);
    cl_crypto_openssl_free(&c.crypto);
    seqstore_close(&c.seq);
    return rc;
}
