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
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cloister/coap.h"
#include "cloister/crypto_openssl.h"
#include "cloister/oscore.h"
#include "config.h"
#include "seqstore.h"
#include "udp.h"

#define DGRAM_MAX EX_DGRAM_MAX
#define PLAIN_MAX 1280 /* request before protection: keeps the datagram under DGRAM_MAX */
#define TOKEN_LEN 8

enum { EXIT_SUCCESS_2XX = 0, EXIT_CLIENT_ERROR = 1, EXIT_FAILURE_OTHER = 2 };

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

    ex_uri_t t; /* the target, from the URI */

    /* Runtime. */
    int fd;
    ex_conn_t conn; /* fd, target and timeouts for ex_exchange */
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
            EX_ACK_TIMEOUT_MS, config_flags_help);
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
    c->timeout_ms = EX_ACK_TIMEOUT_MS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == '\0') {
            if (n_pos == 3) {
                ex_fail("too many arguments (try --help)");
                return 2;
            }
            pos[n_pos++] = a;
            continue;
        }
        int r = config_take_flag(&c->overrides, argc, argv, &i, err, sizeof err);
        if (r < 0) {
            ex_fail("%s", err);
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
                ex_fail("%s needs a value", a);
                return 2;
            }
            const char *val = argv[++i];
            if (a[1] == 'c' || strcmp(a, "--config") == 0) {
                c->config_path = val;
            } else if (strcmp(a, "--content-format") == 0) {
                if (!parse_number(val, 0, 65535, &v)) {
                    ex_fail("--content-format must be a number from 0 to 65535");
                    return 2;
                }
                c->content_format = (long)v;
            } else {
                if (!parse_number(val, 1, 60000, &v)) {
                    ex_fail("--timeout-ms must be a number from 1 to 60000");
                    return 2;
                }
                c->timeout_ms = (unsigned)v;
            }
        } else {
            ex_fail("unknown option '%s' (try --help)", a);
            return 2;
        }
    }
    if (n_pos < 2) {
        ex_fail("need a METHOD and a coap:// URI (try --help)");
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
        ex_fail("unknown method '%s' (GET, POST, PUT, DELETE, FETCH, PATCH, iPATCH or PING)",
                c->method_arg);
        return 2;
    }
    return 0;
}

static bool open_socket(struct client *c)
{
    c->fd = ex_connect(c->t.host, c->t.port);
    c->conn = (ex_conn_t){.fd = c->fd,
                          .host = c->t.host,
                          .port = c->t.port,
                          .crypto = &c->crypto,
                          .timeout_ms = c->timeout_ms,
                          .verbose = c->verbose,
                          .log_malformed = true};
    return c->fd >= 0;
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
        ex_fail("%s", err);
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
        ex_fail("cannot derive the security context: %s", cl_status_str(st));
        goto done;
    }
    ok = true;
done:
    config_wipe(&cfg);
    cl_wipe(&params, sizeof params);
    return ok;
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
    ex_print_response(prefix, m, reason_phrase(m->code), unprotected);
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
    if (!c->t.host_literal)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)c->t.host,
                             strlen(c->t.host));
    for (size_t i = 0; i < c->t.n_path; i++)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, c->t.path[i].p, c->t.path[i].len);
    if (c->content_format >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, (uint32_t)c->content_format);
    for (size_t i = 0; i < c->t.n_query; i++)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_QUERY, c->t.query[i].p, c->t.query[i].len);
    if (echo != NULL)
        cl_coap_build_option(&b, CL_COAP_OPT_ECHO, echo, echo_len);
    cl_coap_build_payload(&b, (const uint8_t *)c->payload, c->payload_len);
    return cl_coap_build_finish(&b, out_len);
}

static bool new_token(struct client *c, uint8_t token[TOKEN_LEN], uint16_t *mid)
{
    if (cl_random(&c->crypto, token, TOKEN_LEN) != CL_OK) {
        ex_fail("no randomness from the crypto provider");
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
    switch (ex_exchange(&c->conn, ping, sizeof ping, mid, NULL, 0, resp, sizeof resp, &resp_len)) {
    case XCH_RESET:
        printf("pong (RST from %s port %s)\n", c->t.host, c->t.port);
        return EXIT_SUCCESS_2XX;
    case XCH_OK: ex_fail("the server answered a ping with a response"); return EXIT_FAILURE_OTHER;
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
        ex_fail("request too large for one datagram (no block-wise transfer here)");
        return EXIT_FAILURE_OTHER;
    }
    xstatus_t x =
        ex_exchange(&c->conn, req, req_len, mid, token, TOKEN_LEN, resp, sizeof resp, &resp_len);
    if (x == XCH_RESET)
        ex_fail("the server reset the exchange (RST)");
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
    xstatus_t x = ex_exchange(&c->conn, c->last, c->last_len, c->last_mid, c->last_token, TOKEN_LEN,
                              resp, sizeof resp, &resp_len);
    if (x != XCH_OK || cl_coap_parse(&m, resp, resp_len) != CL_OK) {
        ex_fail("no usable answer to the replayed request");
        return EXIT_FAILURE_OTHER;
    }
    bool protected_answer = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) != NULL;
    print_response("replay: ", &m, !protected_answer);
    static const char diag[] = "Replay detected";
    if (!protected_answer && m.code == CL_COAP_UNAUTHORIZED && m.payload_len == strlen(diag) &&
        memcmp(m.payload, diag, strlen(diag)) == 0)
        return EXIT_SUCCESS_2XX;
    ex_fail("the server did NOT refuse the replayed request");
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
        ex_fail("request too large for one datagram (no block-wise transfer here)");
        goto done;
    }
    st = cl_oscore_protect_request(&c->ctx, plain, plain_len, c->last, sizeof c->last, &prot_len,
                                   &oreq);
    if (st != CL_OK) {
        ex_fail("cannot protect the request: %s%s%s", cl_status_str(st),
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

    xstatus_t x = ex_exchange(&c->conn, c->last, prot_len, mid, token, TOKEN_LEN, resp, sizeof resp,
                              &resp_len);
    if (x == XCH_RESET)
        ex_fail("the server reset the exchange (RST)");
    if (x != XCH_OK)
        goto done;
    if (cl_coap_parse(&m, resp, resp_len) != CL_OK)
        goto done;
    const cl_coap_option_t *oo = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
    if (oo == NULL) {
        /* Section 8 errors are unprotected: report them, trust nothing in them. */
        print_response("", &m, true);
        ex_fail("the server refused the request; its answer is not protected, so it is reported "
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
        ex_fail("the response failed OSCORE verification: %s", cl_status_str(st));
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

    ex_set_prog("oscore-client");
    memset(&c, 0, sizeof c);
    c.fd = -1;
    switch (parse_args(&c, argc, argv)) {
    case 0: break;
    case 1: usage(stdout); return 0;
    default: return EXIT_FAILURE_OTHER;
    }
    if (!ex_parse_uri(&c.t, c.uri, " (OSCORE protects plain CoAP)",
                      " (at most 16 segments, %XX escapes)"))
        return EXIT_FAILURE_OTHER;
    if ((st = cl_crypto_openssl_new(&c.crypto, 0)) != CL_OK) {
        ex_fail("cannot create the OpenSSL crypto provider: %s", cl_status_str(st));
        return EXIT_FAILURE_OTHER;
    }
    if (cl_random(&c.crypto, mid, sizeof mid) != CL_OK) {
        ex_fail("no randomness from the crypto provider");
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
