/*
 * cli/net_http.c - the `cloister` command's HTTP transport (net.h,
 * --server http://HOST:PORT).
 *
 * The CLI keeps building CoAP messages (plain bootstrap requests, EDHOC
 * POSTs, OSCORE-protected requests) and this file carries each one as ONE
 * HTTP/1.1 exchange on its own TCP connection (Connection: close,
 * Content-Length bodies, a deadline for connect + request + response), like
 * a CoAP-to-HTTP proxy inside the client:
 *
 *   request   code -> method, Uri-Path/Uri-Query -> target (percent-encoded),
 *             Content-Format -> Content-Type, payload -> body; an OSCORE
 *             option -> the OSCORE header (RFC 8613 11.2: base64url, "AA" for
 *             empty) with Content-Type application/oscore
 *   response  an OSCORE header on a 200 -> 2.04 Changed + the decoded OSCORE
 *             option (RFC 8613 11.3/11.5: 200 is the mapping of the outer
 *             2.04); otherwise the status -> a CoAP code (RFC 8075 section 7
 *             read backwards, method-dependent for 200/204), Content-Type ->
 *             Content-Format, body -> payload
 *
 * The result is a CoAP ACK with the request's message id and token, so
 * cli_net_request / the EDHOC and OSCORE code cannot tell the transports
 * apart. Block2 is not used over HTTP: cloisterd collects the blocks and
 * returns the whole body.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "cloister/edhoc.h"
#include "cloister/oscore.h"
#include "net.h"

#define HTTP_HEAD_MAX 8192
#define HTTP_TARGET_MAX 2048

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *method_name(uint8_t code)
{
    switch (code) {
    case CL_COAP_GET: return "GET";
    case CL_COAP_POST: return "POST";
    case CL_COAP_PUT: return "PUT";
    case CL_COAP_DELETE: return "DELETE";
    case CL_COAP_FETCH: return "FETCH";
    case CL_COAP_PATCH: return "PATCH";
    default: return NULL;
    }
}

static const char *ctype_of(uint32_t cf)
{
    switch (cf) {
    case CL_COAP_CF_TEXT: return "text/plain; charset=utf-8";
    case CL_COAP_CF_JSON: return "application/json";
    case CL_COAP_CF_CBOR: return "application/cbor";
    case CL_COAP_CF_CBOR_SEQ: return "application/cbor-seq";
    case CL_EDHOC_CF_EDHOC_CBOR_SEQ: return CL_EDHOC_MEDIA_TYPE;
    case CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ: return CL_EDHOC_CID_MEDIA_TYPE;
    default: return NULL;
    }
}

static int cf_of(const char *ct, size_t len)
{
    static const struct {
        const char *t;
        int cf;
    } map[] = {
        {"text/plain", CL_COAP_CF_TEXT},
        {"application/json", CL_COAP_CF_JSON},
        {"application/cbor", CL_COAP_CF_CBOR},
        {"application/cbor-seq", CL_COAP_CF_CBOR_SEQ},
        {CL_EDHOC_MEDIA_TYPE, CL_EDHOC_CF_EDHOC_CBOR_SEQ},
        {CL_EDHOC_CID_MEDIA_TYPE, CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ},
    };
    size_t n = 0;
    while (n < len && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t')
        n++;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i].t) == n && strncasecmp(ct, map[i].t, n) == 0)
            return map[i].cf;
    return -1;
}

/* HTTP status -> CoAP response code for a request with this method. */
static uint8_t code_of(unsigned status, uint8_t method)
{
    switch (status) {
    case 200: return method == CL_COAP_GET || method == CL_COAP_FETCH ? CL_COAP_CONTENT
                     : method == CL_COAP_DELETE                       ? CL_COAP_DELETED
                                                                      : CL_COAP_CHANGED;
    case 201: return CL_COAP_CREATED;
    case 204: return method == CL_COAP_DELETE ? CL_COAP_DELETED : CL_COAP_CHANGED;
    case 304: return CL_COAP_VALID;
    case 400: return CL_COAP_BAD_REQUEST;
    case 401: return CL_COAP_UNAUTHORIZED;
    case 403: return CL_COAP_FORBIDDEN;
    case 404: return CL_COAP_NOT_FOUND;
    case 405: return CL_COAP_METHOD_NOT_ALLOWED;
    case 406: return CL_COAP_NOT_ACCEPTABLE;
    case 412: return CL_COAP_PRECONDITION_FAILED;
    case 413: return CL_COAP_REQUEST_TOO_LARGE;
    case 415: return CL_COAP_UNSUPPORTED_FORMAT;
    case 429: return CL_COAP_CODE(4, 29);
    case 500: return CL_COAP_INTERNAL_ERROR;
    case 501: return CL_COAP_NOT_IMPLEMENTED;
    case 502: return CL_COAP_CODE(5, 2);
    case 503: return CL_COAP_SERVICE_UNAVAILABLE;
    case 504: return CL_COAP_CODE(5, 4);
    default: break;
    }
    if (status >= 200 && status < 300)
        return method == CL_COAP_GET ? CL_COAP_CONTENT : CL_COAP_CHANGED;
    if (status >= 400 && status < 500)
        return CL_COAP_BAD_REQUEST;
    return CL_COAP_CODE(5, 2); /* 1xx, 3xx, 5xx and nonsense: the gateway failed */
}

/* Appends s[0..n) percent-encoded (RFC 3986 unreserved kept; keep_eq keeps '='). */
static bool put_enc(char *out, size_t size, size_t *pos, const uint8_t *s, size_t n, bool keep_eq)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~' || (keep_eq && c == '=');
        if (*pos + 4 >= size)
            return false;
        if (plain) {
            out[(*pos)++] = (char)c;
        } else {
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[c >> 4];
            out[(*pos)++] = hex[c & 15];
        }
    }
    out[*pos] = '\0';
    return true;
}

static bool put_str(char *out, size_t size, size_t *pos, const char *s)
{
    size_t n = strlen(s);
    if (*pos + n + 1 > size)
        return false;
    memcpy(out + *pos, s, n + 1);
    *pos += n;
    return true;
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return 0;
        struct pollfd p = {.fd = fd, .events = events, .revents = 0};
        int k = poll(&p, 1, (int)(deadline - now));
        if (k < 0 && errno == EINTR)
            continue;
        return k;
    }
}

static int connect_to(const cli_net_t *n, uint64_t deadline, char *err, size_t err_size)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1, last = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int rc = getaddrinfo(n->host, n->port, &hints, &res);
    if (rc != 0) {
        cli_err(err, err_size, "cannot resolve '%s': %s", n->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) > 0) {
            int so = 0;
            socklen_t sl = sizeof so;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) == 0 && so == 0)
                break;
            last = so;
        } else {
            last = errno == EINPROGRESS ? ETIMEDOUT : errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (last == ECONNREFUSED)
            cli_err(err, err_size,
                    "nothing is listening at %s port %s (is cloisterd running with "
                    "--http-listen? check --server)",
                    n->host, n->port);
        else
            cli_err(err, err_size, "cannot connect to %s port %s: %s", n->host, n->port,
                    strerror(last));
    }
    return fd;
}

static bool send_all(int fd, const uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(fd, POLLOUT, deadline) <= 0)
                return false;
            continue;
        }
        if (w <= 0)
            return false;
        p += w;
        len -= (size_t)w;
    }
    return true;
}

/* Finds header `name` in the head (lines after the status line); value trimmed. */
static bool header(const char *head, const char *name, const char **val, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");
    while (p != NULL && p[2] != '\r' && p[2] != '\0') {
        const char *line = p + 2, *end = strstr(line, "\r\n");
        if (end == NULL)
            return false;
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            const char *e = end;
            while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *val = v;
            *len = (size_t)(e - v);
            return true;
        }
        p = end;
    }
    return false;
}

bool cli_http_exchange(cli_net_t *n, const uint8_t *msg, size_t len, uint8_t *resp,
                       size_t resp_size, size_t *resp_len, char *err, size_t err_size)
{
    cl_coap_msg_t m;
    const cl_coap_option_t *o;
    char *head = malloc(HTTP_HEAD_MAX + HTTP_TARGET_MAX), target[HTTP_TARGET_MAX];
    char oscore[400], num[32];
    size_t tp = 0, hp = 0, pos;
    uint8_t *in = NULL;
    int fd = -1;
    bool ok = false, has_oscore;
    uint64_t deadline = now_ms() + (uint64_t)n->timeout_ms * 20u + n->hold_ms;

    if (head == NULL) {
        cli_err(err, err_size, "out of memory");
        return false;
    }
    if (cl_coap_parse(&m, msg, len) != CL_OK || method_name(m.code) == NULL) {
        cli_err(err, err_size, "cannot map this request to HTTP");
        goto done;
    }
    /* target: /seg/seg?q&q */
    pos = 0;
    target[0] = '\0';
    while ((o = cl_coap_msg_find(&m, CL_COAP_OPT_URI_PATH, &pos)) != NULL) {
        if (!put_str(target, sizeof target, &tp, "/") ||
            !put_enc(target, sizeof target, &tp, o->value, o->len, false))
            goto too_long;
        pos++;
    }
    if (tp == 0 && !put_str(target, sizeof target, &tp, "/"))
        goto too_long;
    pos = 0;
    for (bool first = true; (o = cl_coap_msg_find(&m, CL_COAP_OPT_URI_QUERY, &pos)) != NULL;
         first = false) {
        if (!put_str(target, sizeof target, &tp, first ? "?" : "&") ||
            !put_enc(target, sizeof target, &tp, o->value, o->len, true))
            goto too_long;
        pos++;
    }
    o = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
    has_oscore = o != NULL;
    if (has_oscore &&
        cl_oscore_http_header_encode(o->value, o->len, oscore, sizeof oscore) != CL_OK) {
        cli_err(err, err_size, "cannot encode the OSCORE header");
        goto done;
    }
    hp = (size_t)snprintf(head, HTTP_HEAD_MAX + HTTP_TARGET_MAX,
                          "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nConnection: close\r\n"
                          "Content-Length: %zu\r\n",
                          method_name(m.code), target, strchr(n->host, ':') ? "[" : "", n->host,
                          strchr(n->host, ':') ? "]" : "", n->port, m.payload_len);
    if (has_oscore) {
        /* RFC 8613 11.2: OSCORE header, application/oscore; the Content-Format is inner. */
        hp += (size_t)snprintf(head + hp, HTTP_HEAD_MAX + HTTP_TARGET_MAX - hp,
                               "Content-Type: application/oscore\r\nOSCORE: %s\r\n", oscore);
    } else if ((o = cl_coap_msg_get(&m, CL_COAP_OPT_CONTENT_FORMAT)) != NULL) {
        uint32_t cf;
        const char *ct;
        if (cl_coap_opt_uint(o, &cf) != CL_OK || (ct = ctype_of(cf)) == NULL) {
            cli_err(err, err_size, "no HTTP media type for this Content-Format");
            goto done;
        }
        hp += (size_t)snprintf(head + hp, HTTP_HEAD_MAX + HTTP_TARGET_MAX - hp,
                               "Content-Type: %s\r\n", ct);
    }
    hp += (size_t)snprintf(head + hp, HTTP_HEAD_MAX + HTTP_TARGET_MAX - hp, "\r\n");
    if (n->verbose)
        fprintf(stderr, "cloister: HTTP %s %s (%zu bytes)\n", method_name(m.code),
                has_oscore ? "(OSCORE)" : target, m.payload_len);

    if ((fd = connect_to(n, deadline, err, err_size)) < 0)
        goto done;
    if (!send_all(fd, (const uint8_t *)head, hp, deadline) ||
        (m.payload_len > 0 && !send_all(fd, m.payload, m.payload_len, deadline))) {
        cli_err(err, err_size, "sending to %s port %s failed: %s", n->host, n->port,
                strerror(errno));
        goto done;
    }

    /* Response: read until the head ends, then Content-Length bytes (or EOF). */
    size_t cap = HTTP_HEAD_MAX + CLI_PAYLOAD_MAX, got = 0, head_len = 0, body_len = 0;
    bool have_cl = false;
    in = malloc(cap + 1);
    if (in == NULL) {
        cli_err(err, err_size, "out of memory");
        goto done;
    }
    for (;;) {
        if (head_len > 0 && have_cl && got >= head_len + body_len)
            break;
        if (got == cap) {
            cli_err(err, err_size, "the HTTP response is too large");
            goto done;
        }
        int k = wait_fd(fd, POLLIN, deadline);
        if (k <= 0) {
            cli_err(err, err_size, "no HTTP response from %s port %s in time", n->host, n->port);
            goto done;
        }
        ssize_t r = recv(fd, in + got, cap - got, 0);
        if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (r < 0) {
            cli_err(err, err_size, "recv: %s", strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        in[got] = '\0';
        if (head_len == 0) {
            uint8_t *e = NULL;
            for (size_t i = 3; i < got && i < HTTP_HEAD_MAX; i++)
                if (memcmp(in + i - 3, "\r\n\r\n", 4) == 0) {
                    e = in + i + 1;
                    break;
                }
            if (e == NULL) {
                if (got >= HTTP_HEAD_MAX) {
                    cli_err(err, err_size, "the HTTP response head is too large");
                    goto done;
                }
                continue;
            }
            head_len = (size_t)(e - in);
            char save = (char)in[head_len];
            in[head_len] = '\0';
            const char *v;
            size_t vl;
            if (header((const char *)in, "Transfer-Encoding", &v, &vl)) {
                cli_err(err, err_size, "unsupported HTTP transfer encoding from the server");
                goto done;
            }
            if (header((const char *)in, "Content-Length", &v, &vl)) {
                uint64_t cl;
                if (vl == 0 || vl >= sizeof num) {
                    cli_err(err, err_size, "bad Content-Length from the server");
                    goto done;
                }
                memcpy(num, v, vl);
                num[vl] = '\0';
                if (!cli_parse_u64(num, 0, CLI_PAYLOAD_MAX, &cl)) {
                    cli_err(err, err_size, "bad or too large Content-Length from the server");
                    goto done;
                }
                body_len = (size_t)cl;
                have_cl = true;
            }
            in[head_len] = (uint8_t)save;
        }
    }
    if (head_len == 0) {
        cli_err(err, err_size, "%s port %s closed the connection without an HTTP response",
                n->host, n->port);
        goto done;
    }
    if (!have_cl)
        body_len = got - head_len;
    if (got < head_len + body_len) {
        cli_err(err, err_size, "the HTTP response was cut short");
        goto done;
    }
    in[head_len - 2] = '\0'; /* head: "...\r\n" + NUL */
    unsigned status = 0;
    if (strncmp((const char *)in, "HTTP/1.", 7) != 0 || in[8] != ' ' || in[9] < '1' ||
        in[9] > '5' || in[10] < '0' || in[10] > '9' || in[11] < '0' || in[11] > '9') {
        cli_err(err, err_size, "%s port %s did not answer HTTP/1.x", n->host, n->port);
        goto done;
    }
    status = (unsigned)(in[9] - '0') * 100u + (unsigned)(in[10] - '0') * 10u +
             (unsigned)(in[11] - '0');

    /* Back to CoAP: an ACK with our message id and token. */
    {
        const char *v;
        size_t vl;
        uint8_t opt[255];
        size_t opt_len = 0;
        bool resp_oscore = header((const char *)in, "OSCORE", &v, &vl);
        cl_coap_builder_t b;
        uint8_t code;
        int cf = -1;

        if (resp_oscore) {
            if (status != 200 ||
                cl_oscore_http_header_decode(v, vl, opt, sizeof opt, &opt_len) != CL_OK) {
                cli_err(err, err_size, "malformed OSCORE response from the server (HTTP %u)",
                        status);
                goto done;
            }
            code = CL_COAP_CHANGED;
        } else {
            code = code_of(status, m.code);
            if (header((const char *)in, "Content-Type", &v, &vl))
                cf = cf_of(v, vl);
        }
        cl_coap_build_init(&b, resp, resp_size, CL_COAP_ACK, code, m.mid, m.token, m.tkl);
        if (resp_oscore)
            cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, opt, opt_len);
        if (cf >= 0)
            cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, (uint32_t)cf);
        cl_coap_build_payload(&b, in + head_len, body_len);
        if (cl_coap_build_finish(&b, resp_len) != CL_OK) {
            cli_err(err, err_size, "the HTTP response is too large");
            goto done;
        }
        if (n->verbose)
            fprintf(stderr, "cloister: HTTP %u (%zu bytes)\n", status, body_len);
    }
    ok = true;
    goto done;
too_long:
    cli_err(err, err_size, "the request URI is too long for HTTP");
done:
    if (fd >= 0)
        close(fd);
    free(in);
    free(head);
    return ok;
}
