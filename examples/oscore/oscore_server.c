/*
 * oscore_server.c - a CoAP server over UDP whose resources are reachable
 * only through OSCORE (RFC 8613): GET /hello and POST /echo.
 *
 * What: one UDP socket on a loopback address, one single-threaded poll loop,
 * one security context (from a config file and/or flags, see config.h).
 * Every datagram is parsed; a malformed or oversized one is dropped and
 * counted. An Empty CON (CoAP ping) gets a RST. A request without an OSCORE
 * option gets an unprotected 4.01 "OSCORE required". A protected request is
 * verified and decrypted by cl_oscore_unprotect_request; failures get the
 * unprotected error responses of RFC 8613 section 8 (cl_oscore_build_error),
 * and CL_ERR_ECHO_REQUIRED (the context was just loaded and its replay window
 * is unknown, Appendix B.1.2) gets the protected 4.01 Echo challenge. A
 * verified request is routed to /hello or /echo (4.04 / 4.05 otherwise) and
 * the response protected with cl_oscore_protect_response. CON requests get
 * piggybacked ACKs, NON requests NON responses.
 *
 * Why this shape: it is the smallest complete OSCORE endpoint that another
 * implementation can be pointed at, and it exercises the two restart rules
 * of Appendix B: the sequence number ceiling is persisted before use
 * (seqstore.c) and restored at start-up, and with echo_recovery on the first
 * request after a start must prove freshness. There is no message-id
 * deduplication: a retransmitted CON whose original got through is a replay
 * as far as OSCORE is concerned and is answered "Replay detected".
 *
 * The log says who asked what, never what was said: peer address, kid (hex),
 * method, the path's length and the response code. No payloads, no paths,
 * no key material. The only global is the server struct (signal handlers
 * need to reach it).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloister/coap.h"
#include "cloister/crypto_openssl.h"
#include "cloister/oscore.h"
#include "config.h"
#include "seqstore.h"
#include "udp.h"

#define DGRAM_MAX EX_DGRAM_MAX    /* larger datagrams are dropped */
#define OUT_MAX (DGRAM_MAX + 128) /* room for OSCORE overhead on a reply */
#define DEFAULT_LISTEN "127.0.0.1"
#define DEFAULT_PORT "5683"
#define HELLO_TEXT "Hello World!"
/* NI_MAXHOST is not POSIX; numeric hosts are short: "[" IPv6 "]:" port. */

struct server {
    /* Command line. */
    const char *config_path;
    const char *listen_addr;
    const char *port;
    bool bind_any;
    config_overrides_t overrides;

    /* Runtime state. */
    ex_listen_t listen; /* to bind */
    int fd;
    cl_crypto_t crypto;
    cl_oscore_ctx_t ctx;
    cl_oscore_ctx_t *ctx_table[1];
    cl_oscore_ctx_list_t contexts;
    seqstore_t seq;
    uint64_t logged_ceiling;
    uint16_t next_mid; /* message ids of NON responses */

    struct {
        unsigned long datagrams, answered, unprotected, oscore_errors, echo_challenges, pings;
        unsigned long malformed, oversized, ignored, dropped;
    } stats;
};

static struct server server;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: oscore-server [-c FILE] [options] [context flags]\n"
            "Serves GET /hello and POST /echo over CoAP/UDP, OSCORE-protected.\n"
            "  -c, --config FILE       security context file (key = value lines)\n"
            "  -l, --listen ADDR       address to bind (default " DEFAULT_LISTEN ")\n"
            "  -p, --port N            UDP port (default " DEFAULT_PORT "; 0 = any free port)\n"
            "      --bind-any          allow a non-loopback address\n"
            "  -h, --help\n"
            "context flags (override the file):\n%s",
            config_flags_help);
}

/* Returns 0 to continue, 1 for --help, 2 for a usage error. */
static int parse_args(struct server *s, int argc, char **argv)
{
    char err[256];

    s->listen_addr = DEFAULT_LISTEN;
    s->port = DEFAULT_PORT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = config_take_flag(&s->overrides, argc, argv, &i, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "oscore-server: %s\n", err);
            return 2;
        }
        if (r > 0)
            continue;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 1;
        if (strcmp(a, "--bind-any") == 0) {
            s->bind_any = true;
            continue;
        }
        const char **dst = NULL;
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            dst = &s->config_path;
        else if (strcmp(a, "-l") == 0 || strcmp(a, "--listen") == 0)
            dst = &s->listen_addr;
        else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0)
            dst = &s->port;
        if (dst == NULL) {
            fprintf(stderr, "oscore-server: unknown argument '%s' (try --help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "oscore-server: %s needs a value\n", a);
            return 2;
        }
        *dst = argv[++i];
    }
    return 0;
}

static bool resolve_listen(struct server *s, char *err, size_t err_size)
{
    return ex_resolve_listen(&s->listen, s->listen_addr, s->port, s->bind_any,
                             " (give a numeric IPv4/IPv6 address and port)", err, err_size);
}

static bool open_socket(struct server *s, char *err, size_t err_size)
{
    char name[EX_PEER_NAME_MAX];

    if (!ex_bind(&s->listen, s->listen_addr, s->port, &s->fd, name, sizeof name, err, err_size))
        return false;
    ex_log("listening on %s (CoAP over UDP, OSCORE required)", name);
    return true;
}

static void log_ceiling(struct server *s)
{
    if (s->seq.ceiling != s->logged_ceiling) {
        ex_log("sequence number ceiling %" PRIu64 " persisted to %s", s->seq.ceiling, s->seq.path);
        s->logged_ceiling = s->seq.ceiling;
    }
}

static bool setup(struct server *s, char *err, size_t err_size)
{
    oscore_config_t cfg;
    cl_oscore_params_t params;
    uint64_t initial_ssn = 0;
    char sid[2 * CL_OSCORE_MAX_ID + 1], rid[2 * CL_OSCORE_MAX_ID + 1];
    char idc[2 * CL_OSCORE_MAX_ID_CONTEXT + 8];
    bool ok = false;
    cl_status_t st;

    config_init(&cfg);
    if (!resolve_listen(s, err, err_size))
        goto done;
    if (s->config_path != NULL && !config_load_file(&cfg, s->config_path, err, err_size))
        goto done;
    if (!config_apply_overrides(&cfg, &s->overrides, err, err_size) ||
        !config_finish(&cfg, err, err_size))
        goto done;
    if (!seqstore_open(&s->seq, cfg.seq_file, &initial_ssn, err, err_size))
        goto done;
    if (s->seq.existed)
        ex_log("sequence numbers: %s holds ceiling %" PRIu64 "; continuing from there", s->seq.path,
               initial_ssn);
    else
        ex_log("sequence numbers: %s not present; new context, starting at 0", s->seq.path);
    s->logged_ceiling = s->seq.ceiling;
    if ((st = cl_crypto_openssl_new(&s->crypto, 0)) != CL_OK) {
        snprintf(err, err_size, "cannot create the OpenSSL crypto provider: %s", cl_status_str(st));
        goto done;
    }
    config_params(&cfg, &params);
    params.initial_ssn = initial_ssn;
    params.persist = seqstore_persist;
    params.persist_arg = &s->seq;
    if ((st = cl_oscore_ctx_init(&s->ctx, &s->crypto, &params)) != CL_OK) {
        snprintf(err, err_size, "cannot derive the security context: %s", cl_status_str(st));
        goto done;
    }
    s->ctx_table[0] = &s->ctx;
    s->contexts.ctx = s->ctx_table;
    s->contexts.n = 1;
    /* IDs travel in the clear as 'kid'; logging them reveals nothing. */
    config_hex(sid, sizeof sid, cfg.sender_id.v, cfg.sender_id.len);
    config_hex(rid, sizeof rid, cfg.recipient_id.v, cfg.recipient_id.len);
    if (cfg.id_context.set)
        config_hex(idc, sizeof idc, cfg.id_context.v, cfg.id_context.len);
    else
        snprintf(idc, sizeof idc, "none");
    ex_log("context: sender_id h'%s' recipient_id h'%s' id_context %s%s%s aead %d, "
           "echo_recovery %s",
           sid, rid, cfg.id_context.set ? "h'" : "", idc, cfg.id_context.set ? "'" : "",
           (int)cfg.aead, cfg.echo_recovery ? "on" : "off");
    uint8_t mid[2];
    if (cl_random(&s->crypto, mid, sizeof mid) != CL_OK) {
        snprintf(err, err_size, "no randomness from the crypto provider");
        goto done;
    }
    s->next_mid = (uint16_t)(mid[0] << 8 | mid[1]);
    if (!open_socket(s, err, err_size))
        goto done;
    ok = true;
done:
    config_wipe(&cfg);
    cl_wipe(&params, sizeof params);
    return ok;
}

static void teardown(struct server *s)
{
    cl_oscore_ctx_free(&s->ctx);
    cl_crypto_openssl_free(&s->crypto);
    seqstore_close(&s->seq);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
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
    case CL_COAP_IPATCH: return "iPATCH";
    default: return "?";
    }
}

/* An unprotected answer (no OSCORE option in the request). */
static void reply_plain(struct server *s, const cl_coap_msg_t *req, uint8_t code, const char *diag,
                        const struct sockaddr *peer, socklen_t peer_len)
{
    uint8_t out[128];
    uint8_t type;
    uint16_t mid;
    size_t len;
    cl_coap_builder_t b;

    ex_reply_header(req, &s->next_mid, &type, &mid);
    cl_coap_build_init(&b, out, sizeof out, type, code, mid, req->token, req->tkl);
    cl_coap_build_payload(&b, (const uint8_t *)diag, strlen(diag));
    if (cl_coap_build_finish(&b, &len) == CL_OK)
        ex_send_to(s->fd, out, len, peer, peer_len);
}

/* Options this server understands; an unknown critical one is 4.02 (RFC 7252 5.4.1). */
static bool option_known(uint16_t n)
{
    switch (n) {
    case CL_COAP_OPT_URI_HOST:
    case CL_COAP_OPT_URI_PORT:
    case CL_COAP_OPT_URI_PATH:
    case CL_COAP_OPT_URI_QUERY:
    case CL_COAP_OPT_CONTENT_FORMAT:
    case CL_COAP_OPT_ACCEPT:
    case CL_COAP_OPT_ECHO: return true;
    default: return !CL_COAP_OPT_IS_CRITICAL(n);
    }
}

/*
 * The resources. Writes the plain response for the verified plain request
 * into out; the caller protects it.
 */
static cl_status_t serve(struct server *s, const cl_coap_msg_t *req, uint8_t *out, size_t out_size,
                         size_t *out_len, size_t *path_len)
{
    char path[64];
    uint8_t type, code;
    uint16_t mid;
    const cl_coap_option_t *cf = NULL;
    const uint8_t *payload = NULL;
    size_t payload_len = 0;
    cl_coap_builder_t b;

    *path_len = 0;
    for (size_t i = 0; i < req->n_options; i++)
        *path_len += req->options[i].number == CL_COAP_OPT_URI_PATH ? req->options[i].len + 1 : 0;
    bool bad_option = false;
    for (size_t i = 0; i < req->n_options; i++)
        bad_option |= !option_known(req->options[i].number);
    if (bad_option) {
        code = CL_COAP_BAD_OPTION;
    } else if (cl_coap_uri_path(req, path, sizeof path) != CL_OK) {
        code = CL_COAP_NOT_FOUND; /* too long or unrepresentable: not one of ours */
    } else if (strcmp(path, "/hello") == 0) {
        code = req->code == CL_COAP_GET ? CL_COAP_CONTENT : CL_COAP_METHOD_NOT_ALLOWED;
        if (code == CL_COAP_CONTENT) {
            payload = (const uint8_t *)HELLO_TEXT;
            payload_len = strlen(HELLO_TEXT);
        }
    } else if (strcmp(path, "/echo") == 0) {
        code = req->code == CL_COAP_POST ? CL_COAP_CHANGED : CL_COAP_METHOD_NOT_ALLOWED;
        if (code == CL_COAP_CHANGED) {
            cf = cl_coap_msg_get(req, CL_COAP_OPT_CONTENT_FORMAT);
            payload = req->payload;
            payload_len = req->payload_len;
        }
    } else {
        code = CL_COAP_NOT_FOUND;
    }

    ex_reply_header(req, &s->next_mid, &type, &mid);
    cl_coap_build_init(&b, out, out_size, type, code, mid, req->token, req->tkl);
    if (code == CL_COAP_CONTENT)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_TEXT);
    else if (cf != NULL)
        cl_coap_build_option(&b, CL_COAP_OPT_CONTENT_FORMAT, cf->value, cf->len);
    cl_coap_build_payload(&b, payload, payload_len);
    return cl_coap_build_finish(&b, out_len);
}

/* One datagram in, at most one datagram out. buf is modified (decrypted in place). */
static void handle_datagram(struct server *s, uint8_t *buf, size_t len, const struct sockaddr *peer,
                            socklen_t peer_len)
{
    cl_coap_msg_t m, req;
    cl_oscore_option_t opt;
    cl_oscore_ctx_t *ctx = NULL;
    cl_oscore_req_t oreq;
    uint8_t plain[DGRAM_MAX], resp[DGRAM_MAX], out[OUT_MAX];
    size_t plain_len = 0, resp_len, out_len, path_len;
    char who[EX_PEER_NAME_MAX], kid[2 * CL_OSCORE_MAX_ID + 4], code_s[5];
    cl_status_t st;

    if (cl_coap_parse(&m, buf, len) != CL_OK) {
        if (ex_worth_logging(++s->stats.malformed))
            ex_log("dropped a malformed datagram (%lu so far)", s->stats.malformed);
        return;
    }
    if (m.type == CL_COAP_ACK || m.type == CL_COAP_RST) {
        s->stats.ignored++; /* we never send CON, so nothing to acknowledge */
        return;
    }
    if (m.code == CL_COAP_EMPTY) { /* CoAP ping: answer a CON with RST */
        if (m.type == CL_COAP_CON) {
            uint8_t rst[4] = {0x70, 0x00, (uint8_t)(m.mid >> 8), (uint8_t)m.mid};
            ex_send_to(s->fd, rst, sizeof rst, peer, peer_len);
            s->stats.pings++;
        }
        return;
    }
    if (CL_COAP_CLASS(m.code) != 0) { /* a response sent to a server */
        s->stats.ignored++;
        return;
    }
    ex_peer_name(peer, peer_len, who, sizeof who);

    const cl_coap_option_t *oo = cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE);
    if (oo == NULL) {
        s->stats.unprotected++;
        ex_log("%s %s without OSCORE -> 4.01 OSCORE required", who, method_name(m.code));
        reply_plain(s, &m, CL_COAP_UNAUTHORIZED, "OSCORE required", peer, peer_len);
        return;
    }
    /* The kid, for the log, before the datagram is decrypted in place. */
    if (cl_oscore_option_decode(&opt, oo->value, oo->len) == CL_OK && opt.has_kid &&
        opt.kid_len <= CL_OSCORE_MAX_ID) {
        kid[0] = 'h';
        kid[1] = '\'';
        config_hex(kid + 2, sizeof kid - 3, opt.kid, opt.kid_len);
        strcat(kid, "'");
    } else {
        snprintf(kid, sizeof kid, "?");
    }

    st = cl_oscore_unprotect_request(cl_oscore_lookup_list, &s->contexts, buf, len, plain,
                                     sizeof plain, &plain_len, &ctx, &oreq);
    if (st == CL_ERR_ECHO_REQUIRED) {
        st = cl_oscore_build_echo_response(ctx, &oreq, buf, len, s->next_mid++, out, sizeof out,
                                           &out_len);
        if (st != CL_OK) {
            s->stats.dropped++;
            ex_log("%s kid %s: cannot build the Echo challenge: %s%s%s", who, kid,
                   cl_status_str(st), st == CL_ERR_PERSIST ? ": " : "",
                   st == CL_ERR_PERSIST ? s->seq.err : "");
            return;
        }
        log_ceiling(s);
        s->stats.echo_challenges++;
        ex_log("%s kid %s: replay window not initialized (B.1.2) -> 4.01 with Echo, "
               "server partial IV %" PRIu64,
               who, kid, ctx->ssn - 1);
        ex_send_to(s->fd, out, out_len, peer, peer_len);
        return;
    }
    if (st == CL_ERR_BAD_INPUT || st == CL_ERR_NOT_FOUND || st == CL_ERR_AUTH ||
        st == CL_ERR_REPLAY) {
        s->stats.oscore_errors++;
        if (cl_oscore_build_error(st, buf, len, s->next_mid++, out, sizeof out, &out_len) !=
            CL_OK) {
            s->stats.dropped++;
            return;
        }
        cl_coap_code_str(out[1], code_s);
        ex_log("%s kid %s: %s -> %s (unprotected)", who, kid, cl_status_str(st), code_s);
        ex_send_to(s->fd, out, out_len, peer, peer_len);
        return;
    }
    if (st != CL_OK) {
        s->stats.dropped++;
        ex_log("%s kid %s: request dropped: %s", who, kid, cl_status_str(st));
        return;
    }

    /* Verified and fresh: plain[] holds the request as the client wrote it. */
    if (cl_coap_parse(&req, plain, plain_len) != CL_OK ||
        serve(s, &req, resp, sizeof resp, &resp_len, &path_len) != CL_OK) {
        s->stats.dropped++;
        ex_log("%s kid %s: cannot answer the request", who, kid);
        goto done;
    }
    st = cl_oscore_protect_response(ctx, &oreq, NULL, resp, resp_len, out, sizeof out, &out_len);
    cl_coap_code_str(resp[1], code_s);
    if (st != CL_OK) {
        s->stats.dropped++;
        ex_log("%s kid %s: cannot protect the %s response: %s", who, kid, code_s,
               cl_status_str(st));
        goto done;
    }
    log_ceiling(s);
    s->stats.answered++;
    ex_log("%s kid %s: %s (path %zu bytes) -> %s", who, kid, method_name(req.code), path_len,
           code_s);
    ex_send_to(s->fd, out, out_len, peer, peer_len);
done:
    /* The plaintext request and response are not needed any more. */
    cl_wipe(plain, sizeof plain);
    cl_wipe(resp, sizeof resp);
}

static void on_datagram(void *arg, uint8_t *buf, size_t len, const struct sockaddr *peer,
                        socklen_t peer_len)
{
    handle_datagram(arg, buf, len, peer, peer_len);
}

int main(int argc, char **argv)
{
    struct server *s = &server;
    char err[512];
    int rc = 1;

    ex_set_prog("oscore-server");
    s->fd = -1;
    switch (parse_args(s, argc, argv)) {
    case 0: break;
    case 1: usage(stdout); return 0;
    default: return 2;
    }
    if (!setup(s, err, sizeof err)) {
        fprintf(stderr, "oscore-server: %s\n", err);
        goto done;
    }
    ex_catch_stop_signals();

    ex_serve(s->fd, 1000, on_datagram, NULL, s, &s->stats.datagrams, &s->stats.oversized);
    ex_log("stopping: %lu datagrams; %lu answered, %lu OSCORE errors, %lu Echo challenges, "
           "%lu unprotected refused, %lu pings, %lu malformed, %lu oversized, %lu ignored, "
           "%lu dropped",
           s->stats.datagrams, s->stats.answered, s->stats.oscore_errors, s->stats.echo_challenges,
           s->stats.unprotected, s->stats.pings, s->stats.malformed, s->stats.oversized,
           s->stats.ignored, s->stats.dropped);
    rc = 0;
done:
    teardown(s);
    return rc;
}
