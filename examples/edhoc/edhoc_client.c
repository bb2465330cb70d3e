/*
 * edhoc_client.c - runs EDHOC (RFC 9528) as initiator against a CoAP
 * server over UDP, then makes OSCORE requests on the derived context.
 *
 *   edhoc-client --cert FILE --key FILE|pkcs11:URI --ca FILE [options]
 *                [METHOD] coap://HOST:PORT/path [PAYLOAD] ...
 *
 * What: message_1 goes to /.well-known/edhoc as `true` + message_1 (RFC
 * 9528 Appendix A.2), message_3 as C_R + message_3, each as a Confirmable
 * POST with the RFC 7252 retransmission schedule. An EDHOC error in the
 * response (4.00/5.00, Content-Format 64) ends the handshake, except error
 * 2 (wrong cipher suite), after which the client starts once more with the
 * most preferred suite the server announced (cl_edhoc_message_1 with suite
 * -1). The server's certificate must chain to --ca (creds.c); if it does
 * not, the client tells the server with an EDHOC error and stops. Then the
 * OSCORE context of Appendix A.1 protects each request given on the command
 * line; every response is verified before it is printed.
 *
 * Keys come from a PEM file or a PKCS#11 token (keysrc.c). With a token,
 * the static key and the ephemeral keys live in it: --generate-key creates
 * the static key there and --export-pub writes its public key as PEM so a
 * CA can certify it - the private key never leaves the token.
 *
 * Output: one line per EDHOC step on stdout ("edhoc: ..."), then one line
 * per response ("2.05 Content: payload"). Exit status: 0 when every
 * response is a verified 2.xx; 1 when one is a verified 4.xx/5.xx; 2 for
 * local errors, timeouts and failed verification; 3 when the handshake was
 * refused (an EDHOC error either way).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/edhoc.h"
#include "cloister/oscore.h"
#include "config.h"
#include "creds.h"
#include "keysrc.h"
#include "udp.h"

#define DGRAM_MAX EX_DGRAM_MAX
#define PLAIN_MAX 1280
#define EDHOC_MSG_MAX 1400
#define MAX_REQUESTS 16
#define TOKEN_LEN 8
#define HEX_ID (2 * CL_EDHOC_MAX_CID + 4)
#define EDHOC_SEGMENTS                                                                             \
    {                                                                                              \
        ".well-known", "edhoc"                                                                     \
    }

enum { EXIT_OK = 0, EXIT_CLIENT_ERROR = 1, EXIT_FAILURE_OTHER = 2, EXIT_REFUSED = 3 };

/* One request from the command line. */
struct request {
    uint8_t method;
    const char *uri;
    const char *payload;
    ex_uri_t t; /* the target */
};

struct client {
    /* Command line. */
    const char *cert_path, *key_arg, *ca, *crl, *known, *export_pub, *generate;
    pkcs11_opts_t p11;
    bool x5chain, verbose;
    int method, suite;
    int suites[CL_EDHOC_MAX_SUITES];
    size_t n_suites;
    unsigned timeout_ms;
    struct request req[MAX_REQUESTS];
    size_t n_req;

    /* Runtime. */
    int fd;
    ex_conn_t conn; /* fd, target and timeouts for ex_exchange */
    keysrc_t key;
    cl_crypto_t crypto;
    bool have_crypto;
    own_cred_t own;
    bool have_cert;
    cl_edhoc_auth_t auth[2];
    cl_edhoc_config_t cfg;
    trust_t trust;
    peer_ctx_t peer;
    cl_edhoc_t edhoc;
    cl_oscore_ctx_t oscore;
    uint16_t next_mid;
};

static void step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line of the handshake story on stdout. */
static void step(const char *fmt, ...)
{
    va_list ap;

    fputs("edhoc: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static const char *hex_id(char out[HEX_ID], const uint8_t *id, size_t len)
{
    out[0] = 'h';
    out[1] = '\'';
    config_hex(out + 2, HEX_ID - 3, id, len);
    strcat(out, "'");
    return out;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: edhoc-client --cert FILE --key FILE|URI --ca FILE [options]\n"
            "                    [METHOD] coap://HOST:PORT/path [PAYLOAD] ...\n"
            "Runs EDHOC with the server at HOST:PORT ("
            "/.well-known/edhoc), then sends each\n"
            "request over OSCORE. METHOD is GET (default), POST, PUT, DELETE or FETCH; POST, PUT\n"
            "and FETCH take a PAYLOAD after the URI. All URIs must name the same server.\n"
            "credentials:\n"
            "  --cert FILE             own certificate (DER or PEM)\n"
            "%s"
            "  --x5chain               send the certificate by value (default: x5t reference)\n"
            "peer validation:\n"
            "  --ca FILE               CA certificate(s) the server's certificate must chain to\n"
            "  --crl FILE              CRL (PEM)\n"
            "  --known-certs DIR|FILE  server certificates for x5t references\n"
            "EDHOC:\n"
            "  --method N              0..3 (default 0; bit 1: we use static DH, bit 0: the\n"
            "                          server does)\n"
            "  --suite N               cipher suite to try first (default 2)\n"
            "  --suites LIST           suites we support in order of preference (default: the\n"
            "                          --suite alone); after error 2 the best common one is used\n"
            "  --timeout-ms N          initial ACK timeout (default %d)\n"
            "  -v, --verbose           retransmissions and OSCORE message sizes on stderr\n"
            "token key management (no network unless URIs are given):\n"
            "  --generate-key TYPE     create the token key (p256, ed25519, x25519) if absent\n"
            "  --export-pub FILE       write the key's public key as PEM (for a CA to certify)\n"
            "exit status: 0 = all 2.xx, 1 = a verified 4.xx/5.xx, 2 = error or timeout,\n"
            "3 = handshake refused\n",
            keysrc_flags_help, EX_ACK_TIMEOUT_MS);
}

static bool parse_number(const char *s, long min, long max, long *out)
{
    char *end;

    if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9')))
        return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_suites(const char *arg, int *suites, size_t *n)
{
    const char *p = arg;

    *n = 0;
    while (*p != '\0') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || *n == CL_EDHOC_MAX_SUITES || cl_edhoc_suite((int)v, NULL) != CL_OK)
            return false;
        for (size_t i = 0; i < *n; i++)
            if (suites[i] == (int)v)
                return false;
        suites[(*n)++] = (int)v;
        if (*end == ',')
            end++;
        else if (*end != '\0')
            return false;
        p = end;
    }
    return *n > 0;
}

static int method_code(const char *s)
{
    static const struct {
        const char *name;
        uint8_t code;
    } methods[] = {{"GET", CL_COAP_GET},
                   {"POST", CL_COAP_POST},
                   {"PUT", CL_COAP_PUT},
                   {"DELETE", CL_COAP_DELETE},
                   {"FETCH", CL_COAP_FETCH}};

    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (strcasecmp(s, methods[i].name) == 0)
            return methods[i].code;
    return -1;
}

/* Positional arguments: [METHOD] URI [PAYLOAD] ... */
static bool add_positional(struct client *c, const char **pos, size_t n_pos)
{
    for (size_t i = 0; i < n_pos;) {
        struct request *r;
        int code = method_code(pos[i]);
        if (c->n_req == MAX_REQUESTS) {
            ex_fail("at most %d requests", MAX_REQUESTS);
            return false;
        }
        r = &c->req[c->n_req++];
        r->method = CL_COAP_GET;
        if (code >= 0) {
            r->method = (uint8_t)code;
            if (++i == n_pos) {
                ex_fail("%s needs a URI", pos[i - 1]);
                return false;
            }
        }
        r->uri = pos[i++];
        if (r->method == CL_COAP_POST || r->method == CL_COAP_PUT || r->method == CL_COAP_FETCH) {
            if (i == n_pos) {
                ex_fail("%s %s needs a payload", pos[i - 2], r->uri);
                return false;
            }
            r->payload = pos[i++];
        }
    }
    return true;
}

/* Returns 0 to continue, 1 for --help, 2 for a usage error. */
static int parse_args(struct client *c, int argc, char **argv)
{
    const char *pos[3 * MAX_REQUESTS];
    size_t n_pos = 0;
    char err[256];
    long v;
    bool suite_given = false;

    c->timeout_ms = EX_ACK_TIMEOUT_MS;
    c->suite = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (n_pos == sizeof pos / sizeof pos[0]) {
                ex_fail("too many arguments");
                return 2;
            }
            pos[n_pos++] = a;
            continue;
        }
        int r = keysrc_take_flag(&c->p11, argc, argv, &i, err, sizeof err);
        if (r < 0) {
            ex_fail("%s", err);
            return 2;
        }
        if (r > 0)
            continue;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 1;
        if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            c->verbose = true;
            continue;
        }
        if (strcmp(a, "--x5chain") == 0) {
            c->x5chain = true;
            continue;
        }
        if (i + 1 >= argc) {
            ex_fail("unknown option or missing value: '%s' (try --help)", a);
            return 2;
        }
        const char *val = argv[++i];
        if (strcmp(a, "--cert") == 0) {
            c->cert_path = val;
        } else if (strcmp(a, "--key") == 0) {
            c->key_arg = val;
        } else if (strcmp(a, "--ca") == 0) {
            c->ca = val;
        } else if (strcmp(a, "--crl") == 0) {
            c->crl = val;
        } else if (strcmp(a, "--known-certs") == 0) {
            c->known = val;
        } else if (strcmp(a, "--export-pub") == 0) {
            c->export_pub = val;
        } else if (strcmp(a, "--generate-key") == 0) {
            c->generate = val;
        } else if (strcmp(a, "--method") == 0) {
            if (!parse_number(val, 0, 3, &v)) {
                ex_fail("--method: 0, 1, 2 or 3");
                return 2;
            }
            c->method = (int)v;
        } else if (strcmp(a, "--suite") == 0) {
            if (!parse_number(val, -24, 23, &v) || cl_edhoc_suite((int)v, NULL) != CL_OK) {
                ex_fail("--suite: a supported cipher suite (0, 1, 2, 3, 6)");
                return 2;
            }
            c->suite = (int)v;
            suite_given = true;
        } else if (strcmp(a, "--suites") == 0) {
            if (!parse_suites(val, c->suites, &c->n_suites)) {
                ex_fail("--suites: a comma-separated list of distinct supported suites");
                return 2;
            }
        } else if (strcmp(a, "--timeout-ms") == 0) {
            if (!parse_number(val, 1, 60000, &v)) {
                ex_fail("--timeout-ms: 1..60000");
                return 2;
            }
            c->timeout_ms = (unsigned)v;
        } else {
            ex_fail("unknown option '%s' (try --help)", a);
            return 2;
        }
    }
    if (c->n_suites == 0) {
        c->suites[0] = c->suite;
        c->n_suites = 1;
    } else if (!suite_given) {
        c->suite = c->suites[0];
    } else {
        bool listed = false;
        for (size_t i = 0; i < c->n_suites; i++)
            listed |= c->suites[i] == c->suite;
        if (!listed) {
            ex_fail("--suite %d is not in --suites", c->suite);
            return 2;
        }
    }
    if (!add_positional(c, pos, n_pos))
        return 2;
    if (c->key_arg == NULL && c->p11.key_label[0] == '\0') {
        ex_fail("--key FILE|URI (or --key-label with a token) is required");
        return 2;
    }
    if (c->n_req == 0 && c->export_pub == NULL && c->generate == NULL) {
        ex_fail("nothing to do: give a coap:// URI (try --help)");
        return 2;
    }
    if (c->n_req > 0 && (c->cert_path == NULL || c->ca == NULL)) {
        ex_fail("--cert and --ca are required for a handshake");
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ URIs */

/* ------------------------------------------------------------------ transport */

static bool open_socket(struct client *c)
{
    const struct request *r = &c->req[0];

    c->fd = ex_connect(r->t.host, r->t.port);
    c->conn = (ex_conn_t){.fd = c->fd,
                          .host = r->t.host,
                          .port = r->t.port,
                          .crypto = &c->crypto,
                          .timeout_ms = c->timeout_ms,
                          .verbose = c->verbose,
                          .log_malformed = false};
    return c->fd >= 0;
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

/*
 * POSTs prefix || msg to /.well-known/edhoc and returns the response's code
 * and payload (copied into out). False on transport failure.
 */
static bool edhoc_post(struct client *c, const uint8_t *prefix, size_t prefix_len,
                       const uint8_t *msg, size_t msg_len, uint8_t *code, uint8_t *out,
                       size_t out_size, size_t *out_len)
{
    static const char *const segs[] = EDHOC_SEGMENTS;
    uint8_t token[TOKEN_LEN], req[DGRAM_MAX], resp[DGRAM_MAX + 1], body[DGRAM_MAX];
    size_t req_len, resp_len;
    uint16_t mid;
    cl_coap_builder_t b;
    cl_coap_msg_t m;
    const struct request *r = &c->req[0];

    if (prefix_len + msg_len > sizeof body) {
        ex_fail("EDHOC message too large for one datagram");
        return false;
    }
    memcpy(body, prefix, prefix_len);
    memcpy(body + prefix_len, msg, msg_len);
    if (!new_token(c, token, &mid))
        return false;
    cl_coap_build_init(&b, req, sizeof req, CL_COAP_CON, CL_COAP_POST, mid, token, TOKEN_LEN);
    if (!r->t.host_literal)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)r->t.host,
                             strlen(r->t.host));
    for (size_t i = 0; i < 2; i++)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)segs[i], strlen(segs[i]));
    cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ);
    cl_coap_build_payload(&b, body, prefix_len + msg_len);
    if (cl_coap_build_finish(&b, &req_len) != CL_OK) {
        ex_fail("EDHOC message too large for one datagram");
        return false;
    }
    xstatus_t x =
        ex_exchange(&c->conn, req, req_len, mid, token, TOKEN_LEN, resp, sizeof resp, &resp_len);
    if (x == XCH_RESET)
        ex_fail("the server reset the exchange (RST)");
    if (x != XCH_OK || cl_coap_parse(&m, resp, resp_len) != CL_OK)
        return false;
    if (m.payload_len > out_size) {
        ex_fail("response too large");
        return false;
    }
    *code = m.code;
    if (m.payload_len > 0)
        memcpy(out, m.payload, m.payload_len);
    *out_len = m.payload_len;
    return true;
}

/* "error 1 (\"auth\")", "error 2 (suites 0, 2)", "error 3 (unknown credential)". */
static void describe_error(const uint8_t *msg, size_t len, char *out, size_t out_size)
{
    cl_cbor_dec_t d;
    int64_t code = 0, v;
    const char *txt;
    size_t n = 1, tlen;
    cl_cbor_type_t t;

    cl_cbor_dec_init(&d, msg, len);
    if (cl_cbor_dec_int(&d, &code) != CL_OK) {
        snprintf(out, out_size, "a malformed error message");
        return;
    }
    int o = snprintf(out, out_size, "error %lld", (long long)code);
    if (o < 0 || (size_t)o >= out_size || cl_cbor_dec_at_end(&d) ||
        cl_cbor_dec_peek(&d, &t) != CL_OK)
        return;
    if (code == CL_EDHOC_ERR_UNSPECIFIED && cl_cbor_dec_tstr(&d, &txt, &tlen) == CL_OK) {
        snprintf(out + o, out_size - (size_t)o, " (\"");
        size_t k = strlen(out);
        for (size_t i = 0; i < tlen && k + 3 < out_size; i++)
            out[k++] = txt[i] >= 0x20 && txt[i] < 0x7f ? txt[i] : '?';
        out[k] = '\0';
        snprintf(out + k, out_size - k, "\")");
    } else if (code == CL_EDHOC_ERR_WRONG_SUITE) {
        if (t == CL_CBOR_ARRAY && cl_cbor_dec_array(&d, &n) != CL_OK)
            return;
        snprintf(out + o, out_size - (size_t)o, " (wrong cipher suite; the server supports");
        for (size_t i = 0; i < n && cl_cbor_dec_int(&d, &v) == CL_OK; i++)
            snprintf(out + strlen(out), out_size - strlen(out), "%s %lld", i ? "," : "",
                     (long long)v);
        snprintf(out + strlen(out), out_size - strlen(out), ")");
    } else if (code == CL_EDHOC_ERR_UNKNOWN_CRED) {
        snprintf(out + o, out_size - (size_t)o, " (unknown credential)");
    }
}

/* Tells the server we give up on the session (C_R + error message), best effort. */
static void send_error(struct client *c, cl_status_t why)
{
    uint8_t prefix[CL_EDHOC_MAX_CID + 2], err[128], resp[DGRAM_MAX], code;
    size_t prefix_len, err_len, resp_len;

    if (why != CL_ERR_AUTH && why != CL_ERR_NOT_FOUND)
        return; /* only credential/signature failures come after C_R was decrypted */
    if (cl_edhoc_encode_cid(c->edhoc.c_r, c->edhoc.c_r_len, prefix, sizeof prefix, &prefix_len) !=
            CL_OK ||
        cl_edhoc_error_message(&c->edhoc, why, err, sizeof err, &err_len) != CL_OK)
        return;
    if (edhoc_post(c, prefix, prefix_len, err, err_len, &code, resp, sizeof resp, &resp_len))
        step("told the server (EDHOC error message, %zu bytes)", err_len);
}

static const char *method_desc(int m)
{
    static const char *const names[] = {"0 (signature/signature)", "1 (signature/static DH)",
                                        "2 (static DH/signature)", "3 (static DH/static DH)"};
    return m >= 0 && m <= 3 ? names[m] : "?";
}

/* " 2, 0" */
static const char *suites_text(const struct client *c)
{
    static char out[8 * CL_EDHOC_MAX_SUITES];

    out[0] = '\0';
    for (size_t i = 0; i < c->n_suites; i++)
        snprintf(out + strlen(out), sizeof out - strlen(out), "%s %d", i ? "," : "", c->suites[i]);
    return out;
}

/* Random C_I: a one-byte identifier (a CBOR int -24..23 on the wire). */
static bool choose_c_i(struct client *c, uint8_t *c_i)
{
    uint8_t r;

    if (cl_random(&c->crypto, &r, 1) != CL_OK)
        return false;
    r %= 48;
    *c_i = (uint8_t)(r < 24 ? r : 0x20 + (r - 24));
    return true;
}

/* The handshake; returns EXIT_OK with c->oscore ready, or an exit status. */
static int run_edhoc(struct client *c)
{
    uint8_t m[EDHOC_MSG_MAX], resp[DGRAM_MAX], prefix[CL_EDHOC_MAX_CID + 2], code;
    uint8_t ms[16], salt[8], c_i;
    size_t m_len, resp_len, prefix_len;
    char ci[HEX_ID], cr[HEX_ID], desc[160], code_s[5];
    cl_oscore_params_t params;
    cl_status_t st;
    int suite = c->suite, rc = EXIT_FAILURE_OTHER;

    if (!choose_c_i(c, &c_i)) {
        ex_fail("no randomness from the crypto provider");
        return EXIT_FAILURE_OTHER;
    }
    if ((st = cl_edhoc_init(&c->edhoc, &c->cfg, CL_EDHOC_INITIATOR, &c_i, 1)) != CL_OK) {
        ex_fail("cannot start EDHOC: %s", cl_status_str(st));
        return EXIT_FAILURE_OTHER;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        st = cl_edhoc_message_1(&c->edhoc, c->method, suite, NULL, 0, m, sizeof m, &m_len);
        /* UNSUPPORTED with a suite selected: no credential of ours fits method + suite. */
        if (st == CL_ERR_UNSUPPORTED && c->edhoc.suite >= 0) {
            ex_fail("the certificate cannot authenticate with method %d in suite %d (key type or "
                    "keyUsage)",
                    c->method, c->edhoc.suite);
            return EXIT_FAILURE_OTHER;
        }
        if (st == CL_ERR_UNSUPPORTED && suite < 0) {
            step("no cipher suite in common with the server (ours:%s)", suites_text(c));
            return EXIT_REFUSED;
        }
        if (st != CL_OK) {
            ex_fail("cannot write message_1: %s", cl_status_str(st));
            return EXIT_FAILURE_OTHER;
        }
        step("method %s, suite %d, C_I %s: message_1 %zu bytes", method_desc(c->method),
             c->edhoc.suite, hex_id(ci, &c_i, 1), m_len);
        prefix[0] = 0xf5; /* true: a new session (Appendix A.2.1) */
        if (!edhoc_post(c, prefix, 1, m, m_len, &code, resp, sizeof resp, &resp_len))
            return EXIT_FAILURE_OTHER;
        if (code == CL_COAP_CHANGED || cl_edhoc_is_error(resp, resp_len)) {
            c->peer.session = &c->edhoc;
            c->peer.why[0] = '\0';
            st = cl_edhoc_process_message_2(&c->edhoc, resp, resp_len);
            peer_release(&c->peer);
            c->peer.session = NULL;
        } else {
            cl_coap_code_str(code, code_s);
            ex_fail("unexpected %s response to message_1", code_s);
            return EXIT_FAILURE_OTHER;
        }
        if (st == CL_ERR_PEER_ERROR) {
            describe_error(resp, resp_len, desc, sizeof desc);
            step("the server refused message_1: EDHOC %s", desc);
            if (c->edhoc.peer_err != CL_EDHOC_ERR_WRONG_SUITE || attempt == 1)
                return EXIT_REFUSED;
            /* Section 6.3: start again with a suite the server supports. */
            int8_t peer_suites[CL_EDHOC_MAX_SUITES];
            uint8_t n_peer = c->edhoc.n_suites_peer;
            memcpy(peer_suites, c->edhoc.suites_peer, sizeof peer_suites);
            cl_edhoc_free(&c->edhoc);
            if ((st = cl_edhoc_init(&c->edhoc, &c->cfg, CL_EDHOC_INITIATOR, &c_i, 1)) != CL_OK) {
                ex_fail("cannot start EDHOC: %s", cl_status_str(st));
                return EXIT_FAILURE_OTHER;
            }
            memcpy(c->edhoc.suites_peer, peer_suites, sizeof peer_suites);
            c->edhoc.n_suites_peer = n_peer;
            suite = -1;
            continue;
        }
        break;
    }
    if (st != CL_OK) {
        step("message_2 (%zu bytes) refused: %s%s%s", resp_len, cl_status_str(st),
             c->peer.why[0] ? ": " : "", c->peer.why);
        send_error(c, st);
        return EXIT_REFUSED;
    }
    const uint8_t *pc_i, *pc_r;
    size_t pc_i_len, pc_r_len;
    cl_edhoc_cids(&c->edhoc, &pc_i, &pc_i_len, &pc_r, &pc_r_len);
    step("message_2 %zu bytes: server '%s' (%s, issuer '%s') verified, C_R %s", resp_len,
         c->peer.subject, c->peer.how, c->peer.issuer, hex_id(cr, pc_r, pc_r_len));

    if ((st = cl_edhoc_message_3(&c->edhoc, NULL, 0, m, sizeof m, &m_len)) != CL_OK) {
        ex_fail("cannot write message_3: %s", cl_status_str(st));
        return EXIT_FAILURE_OTHER;
    }
    if ((st = cl_edhoc_encode_cid(pc_r, pc_r_len, prefix, sizeof prefix, &prefix_len)) != CL_OK ||
        !edhoc_post(c, prefix, prefix_len, m, m_len, &code, resp, sizeof resp, &resp_len))
        return EXIT_FAILURE_OTHER;
    if (code != CL_COAP_CHANGED) {
        if (resp_len > 0 && cl_edhoc_is_error(resp, resp_len)) {
            describe_error(resp, resp_len, desc, sizeof desc);
            step("message_3 %zu bytes: the server refused message_3: EDHOC %s", m_len, desc);
            return EXIT_REFUSED;
        }
        cl_coap_code_str(code, code_s);
        ex_fail("unexpected %s response to message_3", code_s);
        return EXIT_FAILURE_OTHER;
    }
    if (resp_len > 0) {
        if ((st = cl_edhoc_process_message_4(&c->edhoc, resp, resp_len)) != CL_OK) {
            step("message_3 %zu bytes; message_4 (%zu bytes) refused: %s", m_len, resp_len,
                 cl_status_str(st));
            return EXIT_REFUSED;
        }
        step("message_3 %zu bytes -> 2.04; message_4 %zu bytes verified (key confirmation)", m_len,
             resp_len);
    } else {
        step("message_3 %zu bytes -> 2.04 (no message_4)", m_len);
    }
    if ((st = cl_edhoc_oscore_params(&c->edhoc, ms, salt, &params)) != CL_OK ||
        (st = cl_oscore_ctx_init(&c->oscore, &c->crypto, &params)) != CL_OK) {
        ex_fail("cannot derive the OSCORE context: %s", cl_status_str(st));
        goto done;
    }
    char sid[HEX_ID], rid[HEX_ID];
    step("done: suite %d, method %d, C_I %s, C_R %s; OSCORE sender ID %s, recipient ID %s, "
         "AEAD %d",
         c->edhoc.suite, c->edhoc.method, hex_id(ci, pc_i, pc_i_len), hex_id(cr, pc_r, pc_r_len),
         hex_id(sid, params.sender_id, params.sender_id_len),
         hex_id(rid, params.recipient_id, params.recipient_id_len), (int)params.aead);
    rc = EXIT_OK;
done:
    cl_edhoc_free(&c->edhoc); /* PRKs wiped: the OSCORE context is all we need now */
    cl_wipe(ms, sizeof ms);
    cl_wipe(salt, sizeof salt);
    cl_wipe(&params, sizeof params);
    return rc;
}

/* ------------------------------------------------------------------ OSCORE */

static const char *reason_phrase(uint8_t code)
{
    switch (code) {
    case CL_COAP_CREATED: return "Created";
    case CL_COAP_DELETED: return "Deleted";
    case CL_COAP_VALID: return "Valid";
    case CL_COAP_CHANGED: return "Changed";
    case CL_COAP_CONTENT: return "Content";
    case CL_COAP_BAD_REQUEST: return "Bad Request";
    case CL_COAP_UNAUTHORIZED: return "Unauthorized";
    case CL_COAP_BAD_OPTION: return "Bad Option";
    case CL_COAP_FORBIDDEN: return "Forbidden";
    case CL_COAP_NOT_FOUND: return "Not Found";
    case CL_COAP_METHOD_NOT_ALLOWED: return "Method Not Allowed";
    case CL_COAP_INTERNAL_ERROR: return "Internal Server Error";
    default: return "";
    }
}

static void print_response(const cl_coap_msg_t *m, bool unprotected)
{
    ex_print_response("", m, reason_phrase(m->code), unprotected);
}

static int do_request(struct client *c, const struct request *r)
{
    uint8_t token[TOKEN_LEN], plain[PLAIN_MAX], prot[DGRAM_MAX], resp[DGRAM_MAX + 1];
    uint8_t presp[DGRAM_MAX];
    size_t plain_len = 0, prot_len, resp_len, presp_len = 0;
    uint16_t mid;
    cl_oscore_req_t oreq;
    cl_coap_msg_t m, pm;
    cl_coap_builder_t b;
    int rc = EXIT_FAILURE_OTHER;
    cl_status_t st;

    if (!new_token(c, token, &mid))
        return EXIT_FAILURE_OTHER;
    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, r->method, mid, token, TOKEN_LEN);
    if (!r->t.host_literal)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_HOST, (const uint8_t *)r->t.host,
                             strlen(r->t.host));
    for (size_t i = 0; i < r->t.n_path; i++)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, r->t.path[i].p, r->t.path[i].len);
    if (r->payload != NULL)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_TEXT);
    for (size_t i = 0; i < r->t.n_query; i++)
        cl_coap_build_option(&b, CL_COAP_OPT_URI_QUERY, r->t.query[i].p, r->t.query[i].len);
    if (r->payload != NULL)
        cl_coap_build_payload(&b, (const uint8_t *)r->payload, strlen(r->payload));
    if (cl_coap_build_finish(&b, &plain_len) != CL_OK) {
        ex_fail("%s: request too large for one datagram", r->uri);
        goto done;
    }
    if ((st = cl_oscore_protect_request(&c->oscore, plain, plain_len, prot, sizeof prot, &prot_len,
                                        &oreq)) != CL_OK) {
        ex_fail("cannot protect the request: %s", cl_status_str(st));
        goto done;
    }
    if (c->verbose)
        fprintf(stderr, "edhoc-client: %s: OSCORE request %zu bytes (plain %zu)\n", r->uri,
                prot_len, plain_len);
    xstatus_t x =
        ex_exchange(&c->conn, prot, prot_len, mid, token, TOKEN_LEN, resp, sizeof resp, &resp_len);
    if (x == XCH_RESET)
        ex_fail("the server reset the exchange (RST)");
    if (x != XCH_OK || cl_coap_parse(&m, resp, resp_len) != CL_OK)
        goto done;
    if (cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) == NULL) {
        print_response(&m, true);
        ex_fail("the server refused the request; its answer is not protected, so it is reported "
                "but not trusted");
        goto done;
    }
    st = cl_oscore_unprotect_response(&c->oscore, &oreq, resp, resp_len, presp, sizeof presp,
                                      &presp_len);
    if (st != CL_OK) {
        ex_fail("the response failed OSCORE verification: %s", cl_status_str(st));
        goto done;
    }
    if (cl_coap_parse(&pm, presp, presp_len) != CL_OK)
        goto done;
    print_response(&pm, false);
    rc = CL_COAP_CLASS(pm.code) == 2 ? EXIT_OK : EXIT_CLIENT_ERROR;
done:
    cl_wipe(plain, sizeof plain);
    cl_wipe(presp, sizeof presp);
    return rc;
}

/* ------------------------------------------------------------------ setup */

static bool setup_keys(struct client *c)
{
    char err[1024], what[KEYSRC_PATH_MAX + 64];
    cl_key_type_t type, hint = 0;

    if (c->key_arg != NULL) {
        if (!keysrc_parse(&c->key, &c->p11, c->key_arg, err, sizeof err)) {
            ex_fail("%s", err);
            return false;
        }
    } else {
        keysrc_from_label(&c->key, &c->p11);
    }
    if (c->generate != NULL) {
        if (strcasecmp(c->generate, "p256") == 0 || strcasecmp(c->generate, "p-256") == 0)
            hint = CL_KEY_P256;
        else if (strcasecmp(c->generate, "ed25519") == 0)
            hint = CL_KEY_ED25519;
        else if (strcasecmp(c->generate, "x25519") == 0)
            hint = CL_KEY_X25519;
        else {
            ex_fail("--generate-key: p256, ed25519 or x25519");
            return false;
        }
    }
    if (!provider_open(&c->crypto, c->key.pkcs11, &c->p11, what, sizeof what, err, sizeof err)) {
        ex_fail("%s", err);
        return false;
    }
    c->have_crypto = true;
    if (c->generate != NULL) {
        bool created;
        if (!key_generate_in_token(&c->crypto, &c->key, hint, &created, err, sizeof err)) {
            ex_fail("%s", err);
            return false;
        }
        step("%s key '%s' %s the token", key_type_name(hint), c->key.object,
             created ? "generated inside" : "already in");
    }
    if (c->cert_path != NULL) {
        if (!own_cred_load(&c->own, c->cert_path, c->x5chain, err, sizeof err)) {
            ex_fail("%s", err);
            return false;
        }
        c->have_cert = true;
        hint = c->own.type;
    }
    uint32_t use = c->have_cert ? ((c->own.can_sign ? CL_KEY_USAGE_SIGN : 0u) |
                                   (c->own.can_dh ? CL_KEY_USAGE_ECDH : 0u))
                                : 0u;
    if (!key_load(&c->crypto, &c->key, use, hint, &c->own.key, &type, err, sizeof err)) {
        ex_fail("%s", err);
        return false;
    }
    if (c->export_pub != NULL) {
        if (!pubkey_write_pem(&c->crypto, c->own.key, type, c->export_pub, err, sizeof err)) {
            ex_fail("%s", err);
            return false;
        }
        step("public key of the %s key %s%s written to %s", key_type_name(type),
             c->key.pkcs11 ? "in the token: " : "", c->key.pkcs11 ? c->key.object : c->key.file,
             c->export_pub);
    }
    if (!c->have_cert)
        return true;
    if (type != c->own.type) {
        ex_fail("the key is %s but the certificate's is %s", key_type_name(type),
                key_type_name(c->own.type));
        return false;
    }
    if (!own_cred_check_key(&c->own, &c->crypto, c->own.key, err, sizeof err)) {
        ex_fail("%s", err);
        return false;
    }
    step("credential '%s' (%s, %s%s%s, sent as %s), key %s%s, provider %s", c->own.subject,
         key_type_name(c->own.type), c->own.can_sign ? "signature" : "",
         c->own.can_sign && c->own.can_dh ? " + " : "", c->own.can_dh ? "static DH" : "",
         c->x5chain ? "x5chain" : "x5t", c->key.pkcs11 ? "in the token: " : "from ",
         c->key.pkcs11 ? c->key.object : c->key.file, what);
    return true;
}

static bool setup_edhoc(struct client *c)
{
    char err[1024];

    if (!trust_load(&c->trust, c->ca, c->crl, c->known, err, sizeof err)) {
        ex_fail("%s", err);
        return false;
    }
    c->peer.trust = &c->trust;
    c->peer.crypto = &c->crypto;
    c->cfg.crypto = &c->crypto;
    c->cfg.suites = c->suites;
    c->cfg.n_suites = c->n_suites;
    c->cfg.auth = c->auth;
    c->cfg.n_auth = own_cred_auth(&c->own, c->auth, 2);
    c->cfg.peer_cred = peer_cred_cb;
    c->cfg.peer_cred_arg = &c->peer;
    return true;
}

int main(int argc, char **argv)
{
    struct client c;
    uint8_t mid[2];
    int rc = EXIT_FAILURE_OTHER;

    ex_set_prog("edhoc-client");
    memset(&c, 0, sizeof c);
    c.fd = -1;
    switch (parse_args(&c, argc, argv)) {
    case 0: break;
    case 1: usage(stdout); return 0;
    default: return EXIT_FAILURE_OTHER;
    }
    for (size_t i = 0; i < c.n_req; i++) {
        if (!ex_parse_uri(&c.req[i].t, c.req[i].uri, "", ""))
            return EXIT_FAILURE_OTHER;
        if (strcmp(c.req[i].t.host, c.req[0].t.host) != 0 ||
            strcmp(c.req[i].t.port, c.req[0].t.port) != 0) {
            ex_fail("'%s': every URI must name the same server as the first", c.req[i].uri);
            return EXIT_FAILURE_OTHER;
        }
    }
    if (!setup_keys(&c))
        goto done;
    if (c.n_req == 0) {
        rc = EXIT_OK;
        goto done;
    }
    if (cl_random(&c.crypto, mid, sizeof mid) != CL_OK) {
        ex_fail("no randomness from the crypto provider");
        goto done;
    }
    c.next_mid = (uint16_t)(mid[0] << 8 | mid[1]);
    if (!setup_edhoc(&c) || !open_socket(&c))
        goto done;
    if ((rc = run_edhoc(&c)) != EXIT_OK)
        goto done;
    for (size_t i = 0; i < c.n_req; i++) {
        int r = do_request(&c, &c.req[i]);
        if (r > rc)
            rc = r;
    }
done:
    if (c.fd >= 0)
        close(c.fd);
    cl_edhoc_free(&c.edhoc);
    cl_oscore_ctx_free(&c.oscore);
    peer_release(&c.peer);
    if (c.have_crypto)
        provider_close(&c.crypto, c.key.pkcs11);
    trust_free(&c.trust);
    return rc;
}
