/*
 * edhoc_server.c - a CoAP server over UDP that runs EDHOC (RFC 9528) as
 * responder at /.well-known/edhoc and then serves GET /hello and POST /echo
 * only through OSCORE contexts derived from completed EDHOC sessions.
 *
 * What: one UDP socket on a loopback address, one single-threaded poll
 * loop, one crypto provider (OpenSSL, or PKCS#11 when the server's key is
 * in a token), and a bounded session table.
 *
 * - EDHOC over CoAP, Appendix A.2 forward flow: POST with `true` +
 *   message_1 creates a session with a fresh C_R (unique among live
 *   sessions, different from the client's C_I) and is answered 2.04 with
 *   message_2; POST with C_R + message_3 completes it (2.04, empty or with
 *   message_4 when --message-4 is given). EDHOC errors travel as the payload
 *   of a 4.00 (client's fault) or 5.00 response with Content-Format 64
 *   (A.2.3). Half-open sessions expire (--half-open-timeout) and are
 *   limited in number; when the table is full the least recently used
 *   completed session is dropped.
 * - The client's certificate (x5chain, or x5t looked up in --known-certs)
 *   must chain to --ca (creds.c); otherwise the handshake ends with an
 *   EDHOC error and nothing is kept.
 * - A completed session becomes an OSCORE context (Appendix A.1: Master
 *   Secret/Salt from the EDHOC exporter, our Sender ID = C_I, Recipient ID
 *   = C_R), found by the request's kid. /hello greets the certificate's
 *   subject. No sequence-number persistence is needed: every context is
 *   new, derived from a fresh handshake, and dies with the process.
 * - CoAP deduplication (RFC 7252 4.5): each session keeps its last
 *   response, and a retransmitted request (same peer and message ID) gets
 *   it again instead of being processed twice - so a lost message_2 or a
 *   lost OSCORE response costs a retransmission, not the session.
 *
 * The log says who did what, never what was said: peer address, C_I/C_R
 * and kids (public), method and suite, the client certificate's subject and
 * the reason for a refusal, response codes. No payloads, no keys, no PIN.
 * The only global is the server struct (the signal handler needs it).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#define OUT_MAX (DGRAM_MAX + 128)
#define EDHOC_MSG_MAX 1400
#define DEFAULT_LISTEN "127.0.0.1"
#define DEFAULT_PORT "5683"
#define EDHOC_PATH "/.well-known/edhoc"
#define MAX_SESSIONS 64  /* completed + half-open */
#define MAX_HALF_OPEN 16 /* sessions waiting for message_3 */
#define DEFAULT_HALF_OPEN_S 30
#define HEX_ID (2 * CL_EDHOC_MAX_CID + 4)

enum { S_FREE = 0, S_HALF_OPEN, S_ESTABLISHED };

struct session {
    int state;
    uint8_t c_r[CL_EDHOC_MAX_CID];
    size_t c_r_len;
    cl_edhoc_t edhoc;       /* while half-open */
    cl_oscore_ctx_t oscore; /* once established */
    uint64_t created_ms, used_ms;
    int method, suite;
    char subject[SUBJECT_MAX];
    /* Last response, for retransmitted requests (RFC 7252 4.5). */
    bool cached;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    uint16_t mid;
    size_t resp_len;
    uint8_t resp[OUT_MAX];
};

struct server {
    /* Command line. */
    const char *listen_addr, *port;
    bool bind_any, x5chain, message_4;
    const char *cert_paths[OWN_MAX];
    const char *key_args[OWN_MAX];
    size_t n_certs, n_keys;
    const char *ca, *crl, *known;
    int suites[CL_EDHOC_MAX_SUITES];
    size_t n_suites;
    unsigned half_open_s;
    pkcs11_opts_t p11;

    /* Runtime. */
    ex_listen_t listen;
    int fd;
    bool token;
    cl_crypto_t crypto;
    bool have_crypto;
    own_cred_t own[OWN_MAX];
    cl_edhoc_auth_t auth[2 * OWN_MAX];
    cl_edhoc_config_t cfg;
    trust_t trust;
    peer_ctx_t peer;
    struct session sessions[MAX_SESSIONS];
    uint16_t next_mid;

    struct {
        unsigned long datagrams, handshakes, refused, expired, evicted, answered, oscore_errors;
        unsigned long unprotected, resent, pings, malformed, oversized, ignored, dropped;
    } stats;
};

static struct server server;

/* h'0a1b' of an identifier (for the log: identifiers travel in the clear). */
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
            "usage: edhoc-server --cert FILE --key FILE|URI [--cert F --key K ...] --ca FILE "
            "[options]\n"
            "EDHOC responder at coap://ADDR:PORT" EDHOC_PATH ", then GET /hello and POST /echo\n"
            "over OSCORE contexts derived from completed handshakes.\n"
            "credentials (the i-th --key belongs to the i-th --cert; up to %d pairs):\n"
            "  --cert FILE             own certificate (DER or PEM); its keyUsage says\n"
            "                          signature (digitalSignature) and/or static DH\n"
            "                          (keyAgreement)\n"
            "%s"
            "  --x5chain               send certificates by value (default: by reference, x5t)\n"
            "peer validation:\n"
            "  --ca FILE               CA certificate(s) client certificates must chain to\n"
            "  --crl FILE              CRL (PEM) to check client certificates against\n"
            "  --known-certs DIR|FILE  client certificates for x5t references\n"
            "EDHOC:\n"
            "  --suites LIST           supported cipher suites, e.g. 2,0 (default: what the\n"
            "                          credentials allow: 2 for P-256, 0 for Ed25519/X25519)\n"
            "  --message-4             send message_4 (key confirmation)\n"
            "  --half-open-timeout S   forget sessions without message_3 after S seconds\n"
            "                          (default %d)\n"
            "network:\n"
            "  -l, --listen ADDR       address to bind (default " DEFAULT_LISTEN ")\n"
            "  -p, --port N            UDP port (default " DEFAULT_PORT "; 0 = any free port)\n"
            "      --bind-any          allow a non-loopback address\n"
            "  -h, --help\n",
            OWN_MAX, keysrc_flags_help, DEFAULT_HALF_OPEN_S);
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

/* Returns 0 to continue, 1 for --help, 2 for a usage error. */
static int parse_args(struct server *s, int argc, char **argv)
{
    char err[256];

    s->listen_addr = DEFAULT_LISTEN;
    s->port = DEFAULT_PORT;
    s->half_open_s = DEFAULT_HALF_OPEN_S;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = keysrc_take_flag(&s->p11, argc, argv, &i, err, sizeof err);
        if (r < 0) {
            fprintf(stderr, "edhoc-server: %s\n", err);
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
        if (strcmp(a, "--x5chain") == 0) {
            s->x5chain = true;
            continue;
        }
        if (strcmp(a, "--message-4") == 0) {
            s->message_4 = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "edhoc-server: unknown argument or missing value: '%s' (try --help)\n",
                    a);
            return 2;
        }
        const char *v = argv[i + 1];
        if (strcmp(a, "-l") == 0 || strcmp(a, "--listen") == 0) {
            s->listen_addr = v;
        } else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
            s->port = v;
        } else if (strcmp(a, "--cert") == 0 || strcmp(a, "--key") == 0) {
            bool cert = strcmp(a, "--cert") == 0;
            size_t *n = cert ? &s->n_certs : &s->n_keys;
            if (*n == OWN_MAX) {
                fprintf(stderr, "edhoc-server: at most %d %s\n", OWN_MAX, a);
                return 2;
            }
            (cert ? s->cert_paths : s->key_args)[(*n)++] = v;
        } else if (strcmp(a, "--ca") == 0) {
            s->ca = v;
        } else if (strcmp(a, "--crl") == 0) {
            s->crl = v;
        } else if (strcmp(a, "--known-certs") == 0) {
            s->known = v;
        } else if (strcmp(a, "--suites") == 0) {
            if (!parse_suites(v, s->suites, &s->n_suites)) {
                fprintf(stderr, "edhoc-server: --suites: a comma-separated list of distinct "
                                "supported suites (0, 1, 2, 3, 6) expected\n");
                return 2;
            }
        } else if (strcmp(a, "--half-open-timeout") == 0) {
            char *end;
            unsigned long t = strtoul(v, &end, 10);
            if (*v < '0' || *v > '9' || *end != '\0' || t < 1 || t > 3600) {
                fprintf(stderr, "edhoc-server: --half-open-timeout: 1..3600 seconds\n");
                return 2;
            }
            s->half_open_s = (unsigned)t;
        } else {
            fprintf(stderr, "edhoc-server: unknown argument '%s' (try --help)\n", a);
            return 2;
        }
        i++;
    }
    if (s->n_certs == 0) {
        fprintf(stderr, "edhoc-server: --cert is required (try --help)\n");
        return 2;
    }
    if (s->n_keys != s->n_certs && !(s->n_keys == 0 && s->n_certs == 1 && s->p11.key_label[0])) {
        fprintf(stderr, "edhoc-server: give one --key per --cert (%zu certificates, %zu keys)\n",
                s->n_certs, s->n_keys);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ network */

static bool resolve_listen(struct server *s, char *err, size_t err_size)
{
    return ex_resolve_listen(&s->listen, s->listen_addr, s->port, s->bind_any, "", err, err_size);
}

static bool open_socket(struct server *s, char *err, size_t err_size)
{
    char name[EX_PEER_NAME_MAX];

    if (!ex_bind(&s->listen, s->listen_addr, s->port, &s->fd, name, sizeof name, err, err_size))
        return false;
    ex_log("listening on %s (CoAP over UDP: EDHOC at " EDHOC_PATH ", then OSCORE)", name);
    return true;
}

/* ------------------------------------------------------------------ setup */

static bool load_credentials(struct server *s, char *err, size_t err_size)
{
    keysrc_t keys[OWN_MAX];
    char what[KEYSRC_PATH_MAX + 64];
    size_t n_auth = 0;

    for (size_t i = 0; i < s->n_certs; i++) {
        if (s->n_keys == 0)
            keysrc_from_label(&keys[i], &s->p11);
        else if (!keysrc_parse(&keys[i], &s->p11, s->key_args[i], err, err_size))
            return false;
        s->token |= keys[i].pkcs11;
    }
    if (!provider_open(&s->crypto, s->token, &s->p11, what, sizeof what, err, err_size))
        return false;
    s->have_crypto = true;
    ex_log("crypto provider: %s", what);
    for (size_t i = 0; i < s->n_certs; i++) {
        own_cred_t *oc = &s->own[i];
        cl_key_type_t type;
        char hdr[64];
        if (!own_cred_load(oc, s->cert_paths[i], s->x5chain, err, err_size))
            return false;
        uint32_t use =
            (oc->can_sign ? CL_KEY_USAGE_SIGN : 0u) | (oc->can_dh ? CL_KEY_USAGE_ECDH : 0u);
        if (!key_load(&s->crypto, &keys[i], use, oc->type, &oc->key, &type, err, err_size))
            return false;
        if (type != oc->type) {
            snprintf(err, err_size, "%s: the key is %s but the certificate's is %s",
                     s->cert_paths[i], key_type_name(type), key_type_name(oc->type));
            return false;
        }
        if (!own_cred_check_key(oc, &s->crypto, oc->key, err, err_size))
            return false;
        n_auth += own_cred_auth(oc, s->auth + n_auth, sizeof s->auth / sizeof s->auth[0] - n_auth);
        if (s->x5chain)
            snprintf(hdr, sizeof hdr, "x5chain (%zu bytes)", oc->der_len);
        else
            snprintf(hdr, sizeof hdr, "x5t");
        ex_log("credential: '%s', %s key %s%s%s, sent as %s, key %s%s", oc->subject,
               key_type_name(oc->type), oc->can_sign ? "signature" : "",
               oc->can_sign && oc->can_dh ? " + " : "", oc->can_dh ? "static DH" : "", hdr,
               keys[i].pkcs11 ? "in the token: " : "from ",
               keys[i].pkcs11 ? keys[i].object : keys[i].file);
    }
    if (s->n_suites == 0) { /* the suites our credentials can serve */
        for (size_t i = 0; i < s->n_certs; i++) {
            int want = s->own[i].type == CL_KEY_P256 ? 2 : 0;
            bool have = false;
            for (size_t j = 0; j < s->n_suites; j++)
                have |= s->suites[j] == want;
            if (!have)
                s->suites[s->n_suites++] = want;
        }
        if (s->n_suites == 2 && s->suites[0] == 0) { /* suite 2 (P-256) first */
            s->suites[0] = 2;
            s->suites[1] = 0;
        }
    }
    s->cfg.crypto = &s->crypto;
    s->cfg.suites = s->suites;
    s->cfg.n_suites = s->n_suites;
    s->cfg.auth = s->auth;
    s->cfg.n_auth = n_auth;
    s->cfg.peer_cred = peer_cred_cb;
    s->cfg.peer_cred_arg = &s->peer;
    return true;
}

static bool setup(struct server *s, char *err, size_t err_size)
{
    uint8_t mid[2];
    char list[64] = "";

    if (!resolve_listen(s, err, err_size) || !load_credentials(s, err, err_size))
        return false;
    if (!trust_load(&s->trust, s->ca, s->crl, s->known, err, err_size))
        return false;
    s->peer.trust = &s->trust;
    s->peer.crypto = &s->crypto;
    for (size_t i = 0; i < s->n_suites; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? "," : "",
                 s->suites[i]);
    ex_log("suites %s; trust: CA %s%s%s, %zu known client certificates; message_4 %s; "
           "half-open sessions expire after %u s",
           list, s->ca, s->crl ? ", CRL " : "", s->crl ? s->crl : "", s->trust.n_known,
           s->message_4 ? "on" : "off", s->half_open_s);
    if (cl_random(&s->crypto, mid, sizeof mid) != CL_OK) {
        snprintf(err, err_size, "no randomness from the crypto provider");
        return false;
    }
    s->next_mid = (uint16_t)(mid[0] << 8 | mid[1]);
    return open_socket(s, err, err_size);
}

static void session_free(struct session *x)
{
    cl_edhoc_free(&x->edhoc);
    cl_oscore_ctx_free(&x->oscore);
    cl_wipe(x, sizeof *x);
}

static void teardown(struct server *s)
{
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        session_free(&s->sessions[i]);
    peer_release(&s->peer);
    if (s->have_crypto)
        provider_close(&s->crypto, s->token); /* destroys our key handles too */
    trust_free(&s->trust);
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* ------------------------------------------------------------------ sessions */

static size_t count_state(const struct server *s, int state)
{
    size_t n = 0;
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        n += s->sessions[i].state == state;
    return n;
}

/* A slot for a new half-open session, evicting the oldest half-open or LRU completed one. */
static struct session *session_alloc(struct server *s, uint64_t now)
{
    struct session *victim = NULL;
    char id[HEX_ID];
    bool half_full = count_state(s, S_HALF_OPEN) >= MAX_HALF_OPEN;

    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        struct session *x = &s->sessions[i];
        if (!half_full && x->state == S_FREE)
            return x;
        int want = half_full ? S_HALF_OPEN : S_ESTABLISHED;
        if (x->state == want && (victim == NULL || x->used_ms < victim->used_ms))
            victim = x;
    }
    if (victim == NULL)
        return NULL;
    s->stats.evicted++;
    ex_log("session table full: dropping the %s session C_R %s (idle %" PRIu64 " ms)",
           victim->state == S_HALF_OPEN ? "oldest half-open" : "least recently used",
           hex_id(id, victim->c_r, victim->c_r_len), now - victim->used_ms);
    session_free(victim);
    return victim;
}

static bool c_r_in_use(const struct server *s, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        const struct session *x = &s->sessions[i];
        if (x->state != S_FREE && x->c_r_len == len && memcmp(x->c_r, id, len) == 0)
            return true;
    }
    return false;
}

/*
 * A connection identifier not used by any live session and not `avoid` (the
 * client's C_I: OSCORE Sender and Recipient IDs must differ). One-byte
 * identifiers that encode as a CBOR int (-24..23) first, as they cost one
 * byte on the wire; two random bytes once those are taken.
 */
static bool choose_c_r(struct server *s, const uint8_t *avoid, size_t avoid_len, uint8_t *out,
                       size_t *out_len)
{
    uint8_t r[2];

    if (cl_random(&s->crypto, r, sizeof r) != CL_OK)
        return false;
    for (unsigned k = 0; k < 48; k++) {
        unsigned v = (r[0] + k) % 48;
        uint8_t b = (uint8_t)(v < 24 ? v : 0x20 + (v - 24));
        if ((avoid_len == 1 && avoid[0] == b) || c_r_in_use(s, &b, 1))
            continue;
        out[0] = b;
        *out_len = 1;
        return true;
    }
    for (unsigned tries = 0; tries < 16; tries++) {
        if (cl_random(&s->crypto, out, 2) != CL_OK)
            return false;
        if (!(avoid_len == 2 && memcmp(avoid, out, 2) == 0) && !c_r_in_use(s, out, 2)) {
            *out_len = 2;
            return true;
        }
    }
    return false;
}

static struct session *find_by_c_r(struct server *s, int state, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        struct session *x = &s->sessions[i];
        if (x->state == state && x->c_r_len == len && memcmp(x->c_r, id, len) == 0)
            return x;
    }
    return NULL;
}

static void expire_sessions(struct server *s, uint64_t now)
{
    char id[HEX_ID];

    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        struct session *x = &s->sessions[i];
        if (x->state == S_HALF_OPEN && now - x->created_ms >= (uint64_t)s->half_open_s * 1000u) {
            s->stats.expired++;
            ex_log("half-open session C_R %s expired (no message_3 within %u s)",
                   hex_id(id, x->c_r, x->c_r_len), s->half_open_s);
            session_free(x);
        }
    }
}

/* OSCORE context lookup: the completed session whose Recipient ID (C_R) is the kid. */
static cl_oscore_ctx_t *lookup_ctx(void *arg, const uint8_t *kid, size_t kid_len,
                                   const uint8_t *kid_context, size_t kid_context_len,
                                   bool has_kid_context)
{
    struct server *s = arg;

    (void)kid_context;
    (void)kid_context_len;
    if (has_kid_context)
        return NULL; /* EDHOC-derived contexts have no ID Context */
    struct session *x = find_by_c_r(s, S_ESTABLISHED, kid, kid_len);
    return x != NULL ? &x->oscore : NULL;
}

static struct session *session_of_ctx(struct server *s, const cl_oscore_ctx_t *ctx)
{
    for (size_t i = 0; i < MAX_SESSIONS; i++)
        if (&s->sessions[i].oscore == ctx)
            return &s->sessions[i];
    return NULL;
}

/* ------------------------------------------------------------------ replies */

/* Sends a response and keeps it in the session for retransmitted requests. */
static void send_cached(struct server *s, struct session *x, const cl_coap_msg_t *req,
                        const uint8_t *buf, size_t len, const struct sockaddr *peer,
                        socklen_t peer_len)
{
    ex_send_to(s->fd, buf, len, peer, peer_len);
    if (x == NULL || x->state == S_FREE || len > sizeof x->resp ||
        (size_t)peer_len > sizeof x->peer)
        return;
    x->cached = true;
    memcpy(&x->peer, peer, peer_len);
    x->peer_len = peer_len;
    x->mid = req->mid;
    memcpy(x->resp, buf, len);
    x->resp_len = len;
}

static struct session *find_cached(struct server *s, const cl_coap_msg_t *req,
                                   const struct sockaddr *peer, socklen_t peer_len)
{
    for (size_t i = 0; i < MAX_SESSIONS; i++) {
        struct session *x = &s->sessions[i];
        if (x->state != S_FREE && x->cached && x->mid == req->mid && x->peer_len == peer_len &&
            memcmp(&x->peer, peer, peer_len) == 0)
            return x;
    }
    return NULL;
}

/* An unprotected response; cf < 0: no Content-Format. */
static void reply(struct server *s, struct session *x, const cl_coap_msg_t *req, uint8_t code,
                  int cf, const uint8_t *payload, size_t len, const struct sockaddr *peer,
                  socklen_t peer_len)
{
    uint8_t out[OUT_MAX];
    uint8_t type;
    uint16_t mid;
    size_t out_len;
    cl_coap_builder_t b;

    ex_reply_header(req, &s->next_mid, &type, &mid);
    cl_coap_build_init(&b, out, sizeof out, type, code, mid, req->token, req->tkl);
    if (cf >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, (uint32_t)cf);
    cl_coap_build_payload(&b, payload, len);
    if (cl_coap_build_finish(&b, &out_len) == CL_OK)
        send_cached(s, x, req, out, out_len, peer, peer_len);
}

/* An EDHOC error message (ERR_CODE 1 with text) for failures outside a session. */
static void reply_edhoc_text_error(struct server *s, const cl_coap_msg_t *req, const char *diag,
                                   const struct sockaddr *peer, socklen_t peer_len)
{
    uint8_t msg[128];
    size_t len;
    cl_cbor_enc_t e;

    cl_cbor_enc_init(&e, msg, sizeof msg);
    cl_cbor_enc_int(&e, CL_EDHOC_ERR_UNSPECIFIED);
    cl_cbor_enc_tstr_z(&e, diag);
    if (cl_cbor_enc_finish(&e, &len) == CL_OK)
        reply(s, NULL, req, CL_COAP_BAD_REQUEST, CL_EDHOC_CF_EDHOC_CBOR_SEQ, msg, len, peer,
              peer_len);
}

/* The EDHOC error message for a failed step, in a 4.00 (peer's fault) or 5.00 (ours). */
static void reply_edhoc_error(struct server *s, struct session *x, const cl_coap_msg_t *req,
                              cl_status_t why, const struct sockaddr *peer, socklen_t peer_len)
{
    uint8_t msg[128];
    size_t len;
    bool ours = why == CL_ERR_CRYPTO || why == CL_ERR_STATE || why == CL_ERR_INVALID_ARG ||
                why == CL_ERR_BUFFER_TOO_SMALL;

    if (cl_edhoc_error_message(&x->edhoc, why, msg, sizeof msg, &len) != CL_OK)
        return;
    reply(s, NULL, req, ours ? CL_COAP_INTERNAL_ERROR : CL_COAP_BAD_REQUEST,
          CL_EDHOC_CF_EDHOC_CBOR_SEQ, msg, len, peer, peer_len);
}

static const char *method_desc(int m)
{
    static const char *const names[] = {"0 (signature/signature)", "1 (signature/static DH)",
                                        "2 (static DH/signature)", "3 (static DH/static DH)"};
    return m >= 0 && m <= 3 ? names[m] : "?";
}

/* ------------------------------------------------------------------ EDHOC */

static void handle_message_1(struct server *s, const cl_coap_msg_t *req, const uint8_t *msg,
                             size_t msg_len, const char *who, const struct sockaddr *peer,
                             socklen_t peer_len)
{
    uint8_t m2[EDHOC_MSG_MAX];
    size_t m2_len;
    char ci[HEX_ID], cr[HEX_ID];
    uint64_t now = ex_now_ms();
    struct session *x = session_alloc(s, now);
    cl_status_t st;

    if (x == NULL) {
        reply_edhoc_text_error(s, req, "server busy", peer, peer_len);
        return;
    }
    /* C_R is chosen before message_1 is parsed; parse again if C_I happens to equal it. */
    uint8_t avoid[CL_EDHOC_MAX_CID];
    size_t avoid_len = 0;
    for (int attempt = 0;; attempt++) {
        if (attempt == 3 || !choose_c_r(s, avoid, avoid_len, x->c_r, &x->c_r_len)) {
            reply_edhoc_text_error(s, req, "no connection identifier available", peer, peer_len);
            session_free(x);
            return;
        }
        if ((st = cl_edhoc_init(&x->edhoc, &s->cfg, CL_EDHOC_RESPONDER, x->c_r, x->c_r_len)) !=
            CL_OK) {
            ex_log("%s: cannot start an EDHOC session: %s", who, cl_status_str(st));
            reply_edhoc_text_error(s, req, "internal error", peer, peer_len);
            session_free(x);
            return;
        }
        st = cl_edhoc_process_message_1(&x->edhoc, msg, msg_len);
        if (st != CL_OK ||
            !(x->edhoc.c_i_len == x->c_r_len && memcmp(x->edhoc.c_i, x->c_r, x->c_r_len) == 0))
            break;
        avoid_len = x->edhoc.c_i_len;
        memcpy(avoid, x->edhoc.c_i, avoid_len);
        cl_edhoc_free(&x->edhoc);
    }
    if (st == CL_ERR_UNSUPPORTED && x->edhoc.suite >= 0) {
        /*
         * The suite was acceptable (the library records it before choosing
         * our credential) but we hold no credential for this method: that is
         * not a suite problem, so answer error 1 rather than error 2, which
         * would send the client round in circles.
         */
        char diag[64];
        s->stats.refused++;
        snprintf(diag, sizeof diag, "method %d not supported", x->edhoc.method);
        ex_log("%s: message_1 refused: no credential of ours for method %s in suite %d", who,
               method_desc(x->edhoc.method), x->edhoc.suite);
        reply_edhoc_text_error(s, req, diag, peer, peer_len);
        session_free(x);
        return;
    }
    if (st != CL_OK) {
        s->stats.refused++;
        ex_log("%s: message_1 refused: %s%s", who, cl_status_str(st),
               st == CL_ERR_UNSUPPORTED ? " (cipher suite; answered with error 2 and ours)" : "");
        reply_edhoc_error(s, x, req, st, peer, peer_len);
        session_free(x);
        return;
    }
    x->method = x->edhoc.method;
    x->suite = x->edhoc.suite;
    st = cl_edhoc_message_2(&x->edhoc, NULL, 0, m2, sizeof m2, &m2_len);
    if (st != CL_OK) {
        s->stats.refused++;
        ex_log("%s: cannot write message_2: %s", who, cl_status_str(st));
        reply_edhoc_error(s, x, req, st, peer, peer_len);
        session_free(x);
        return;
    }
    x->state = S_HALF_OPEN;
    x->created_ms = x->used_ms = now;
    ex_log("%s: message_1 (%zu bytes) method %s, suite %d, C_I %s -> message_2 (%zu bytes), "
           "C_R %s",
           who, msg_len, method_desc(x->method), x->suite,
           hex_id(ci, x->edhoc.c_i, x->edhoc.c_i_len), m2_len, hex_id(cr, x->c_r, x->c_r_len));
    reply(s, x, req, CL_COAP_CHANGED, CL_EDHOC_CF_EDHOC_CBOR_SEQ, m2, m2_len, peer, peer_len);
    cl_wipe(m2, sizeof m2);
}

static void handle_message_3(struct server *s, struct session *x, const cl_coap_msg_t *req,
                             const uint8_t *msg, size_t msg_len, const char *who,
                             const struct sockaddr *peer, socklen_t peer_len)
{
    uint8_t m4[128], ms[16], salt[8];
    size_t m4_len = 0;
    char cr[HEX_ID], sid[HEX_ID], rid[HEX_ID];
    cl_oscore_params_t params;
    cl_status_t st;

    hex_id(cr, x->c_r, x->c_r_len);
    s->peer.session = &x->edhoc;
    s->peer.why[0] = '\0'; /* set by the credential callback, if it gets that far */
    st = cl_edhoc_process_message_3(&x->edhoc, msg, msg_len);
    peer_release(&s->peer);
    s->peer.session = NULL;
    if (st == CL_ERR_PEER_ERROR) {
        s->stats.refused++;
        ex_log("%s: the client ended session C_R %s with EDHOC error %d", who, cr,
               x->edhoc.peer_err);
        reply(s, NULL, req, CL_COAP_CHANGED, -1, NULL, 0, peer, peer_len);
        session_free(x);
        return;
    }
    if (st != CL_OK) {
        s->stats.refused++;
        ex_log("%s: message_3 for C_R %s refused: %s%s%s", who, cr, cl_status_str(st),
               s->peer.why[0] ? ": " : "", s->peer.why);
        reply_edhoc_error(s, x, req, st, peer, peer_len);
        session_free(x);
        return;
    }
    /* Appendix A.1: the OSCORE context of this session. */
    st = cl_edhoc_oscore_params(&x->edhoc, ms, salt, &params);
    if (st == CL_OK)
        st = cl_oscore_ctx_init(&x->oscore, &s->crypto, &params);
    if (st == CL_OK && s->message_4)
        st = cl_edhoc_message_4(&x->edhoc, NULL, 0, m4, sizeof m4, &m4_len);
    if (st != CL_OK) {
        s->stats.refused++;
        ex_log("%s: session C_R %s: cannot derive the OSCORE context: %s", who, cr,
               cl_status_str(st));
        reply_edhoc_error(s, x, req, st, peer, peer_len);
        session_free(x);
        goto done;
    }
    snprintf(x->subject, sizeof x->subject, "%s", s->peer.subject);
    ex_log("%s: message_3 (%zu bytes) for C_R %s: client '%s' (%s, issuer '%s') authenticated%s; "
           "OSCORE sender ID %s, recipient ID %s",
           who, msg_len, cr, s->peer.subject, s->peer.how, s->peer.issuer,
           s->message_4 ? ", message_4 sent" : "",
           hex_id(sid, params.sender_id, params.sender_id_len),
           hex_id(rid, params.recipient_id, params.recipient_id_len));
    cl_edhoc_free(&x->edhoc); /* PRKs wiped; the OSCORE context is all we keep */
    x->state = S_ESTABLISHED;
    x->used_ms = ex_now_ms();
    s->stats.handshakes++;
    reply(s, x, req, CL_COAP_CHANGED, m4_len ? CL_EDHOC_CF_EDHOC_CBOR_SEQ : -1, m4, m4_len, peer,
          peer_len);
done:
    cl_wipe(ms, sizeof ms);
    cl_wipe(salt, sizeof salt);
    cl_wipe(&params, sizeof params);
}

static void handle_edhoc(struct server *s, const cl_coap_msg_t *req, const char *who,
                         const struct sockaddr *peer, socklen_t peer_len)
{
    bool is_m1;
    uint8_t cid[CL_EDHOC_MAX_CID];
    size_t cid_len;
    const uint8_t *msg;
    size_t msg_len;
    char id[HEX_ID];

    if (req->code != CL_COAP_POST) {
        reply(s, NULL, req, CL_COAP_METHOD_NOT_ALLOWED, -1, NULL, 0, peer, peer_len);
        return;
    }
    if (req->payload_len == 0 || cl_edhoc_split_request(req->payload, req->payload_len, &is_m1, cid,
                                                        &cid_len, &msg, &msg_len) != CL_OK) {
        s->stats.refused++;
        ex_log("%s: malformed EDHOC request (neither true + message_1 nor C_R + message)", who);
        reply_edhoc_text_error(s, req, "expected true + message_1 or C_R + message_3", peer,
                               peer_len);
        return;
    }
    if (is_m1) {
        handle_message_1(s, req, msg, msg_len, who, peer, peer_len);
        return;
    }
    struct session *x = find_by_c_r(s, S_HALF_OPEN, cid, cid_len);
    if (x == NULL) {
        s->stats.refused++;
        ex_log("%s: EDHOC message for C_R %s: no such half-open session", who,
               hex_id(id, cid, cid_len));
        reply_edhoc_text_error(s, req, "no such EDHOC session", peer, peer_len);
        return;
    }
    handle_message_3(s, x, req, msg, msg_len, who, peer, peer_len);
}

/* ------------------------------------------------------------------ OSCORE */

static bool option_known(uint16_t n)
{
    switch (n) {
    case CL_COAP_OPT_URI_HOST:
    case CL_COAP_OPT_URI_PORT:
    case CL_COAP_OPT_URI_PATH:
    case CL_COAP_OPT_URI_QUERY:
    case CL_COAP_OPT_CONTENT_FORMAT:
    case CL_COAP_OPT_ACCEPT: return true;
    default: return !CL_COAP_OPT_IS_CRITICAL(n);
    }
}

/* The resources; writes the plain response into out (the caller protects it). */
static cl_status_t serve(struct server *s, const struct session *x, const cl_coap_msg_t *req,
                         uint8_t *out, size_t out_size, size_t *out_len)
{
    char path[64], hello[SUBJECT_MAX + 16];
    uint8_t type, code;
    uint16_t mid;
    const cl_coap_option_t *cf = NULL;
    const uint8_t *payload = NULL;
    size_t payload_len = 0;
    cl_coap_builder_t b;
    bool bad_option = false;

    for (size_t i = 0; i < req->n_options; i++)
        bad_option |= !option_known(req->options[i].number);
    if (bad_option) {
        code = CL_COAP_BAD_OPTION;
    } else if (cl_coap_uri_path(req, path, sizeof path) != CL_OK) {
        code = CL_COAP_NOT_FOUND;
    } else if (strcmp(path, "/hello") == 0) {
        code = req->code == CL_COAP_GET ? CL_COAP_CONTENT : CL_COAP_METHOD_NOT_ALLOWED;
        if (code == CL_COAP_CONTENT) {
            snprintf(hello, sizeof hello, "Hello, %s!", x->subject);
            payload = (const uint8_t *)hello;
            payload_len = strlen(hello);
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

static const char *method_name(uint8_t code)
{
    switch (code) {
    case CL_COAP_GET: return "GET";
    case CL_COAP_POST: return "POST";
    case CL_COAP_PUT: return "PUT";
    case CL_COAP_DELETE: return "DELETE";
    case CL_COAP_FETCH: return "FETCH";
    default: return "?";
    }
}

static void handle_oscore(struct server *s, uint8_t *buf, size_t len, uint16_t req_mid,
                          const char *who, const struct sockaddr *peer, socklen_t peer_len)
{
    uint8_t plain[DGRAM_MAX], resp[DGRAM_MAX], out[OUT_MAX];
    size_t plain_len = 0, resp_len, out_len;
    cl_oscore_ctx_t *ctx = NULL;
    cl_oscore_req_t oreq;
    cl_coap_msg_t req;
    char kid[HEX_ID], code_s[5];
    cl_status_t st;

    st = cl_oscore_unprotect_request(lookup_ctx, s, buf, len, plain, sizeof plain, &plain_len, &ctx,
                                     &oreq);
    if (ctx != NULL)
        hex_id(kid, oreq.kid, oreq.kid_len);
    else
        snprintf(kid, sizeof kid, "?");
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
    struct session *x = session_of_ctx(s, ctx);
    if (cl_coap_parse(&req, plain, plain_len) != CL_OK || x == NULL ||
        serve(s, x, &req, resp, sizeof resp, &resp_len) != CL_OK) {
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
    s->stats.answered++;
    x->used_ms = ex_now_ms();
    ex_log("%s kid %s ('%s'): %s -> %s", who, kid, x->subject, method_name(req.code), code_s);
    cl_coap_msg_t hdr; /* only the message ID is needed for the cache */
    memset(&hdr, 0, sizeof hdr);
    hdr.mid = req_mid;
    send_cached(s, x, &hdr, out, out_len, peer, peer_len);
done:
    cl_wipe(plain, sizeof plain);
    cl_wipe(resp, sizeof resp);
}

/* ------------------------------------------------------------------ loop */

static void handle_datagram(struct server *s, uint8_t *buf, size_t len, const struct sockaddr *peer,
                            socklen_t peer_len)
{
    cl_coap_msg_t m;
    char who[EX_PEER_NAME_MAX], path[64];

    if (cl_coap_parse(&m, buf, len) != CL_OK) {
        if (ex_worth_logging(++s->stats.malformed))
            ex_log("dropped a malformed datagram (%lu so far)", s->stats.malformed);
        return;
    }
    if (m.type == CL_COAP_ACK || m.type == CL_COAP_RST) {
        s->stats.ignored++;
        return;
    }
    if (m.code == CL_COAP_EMPTY) {
        if (m.type == CL_COAP_CON) {
            uint8_t rst[4] = {0x70, 0x00, (uint8_t)(m.mid >> 8), (uint8_t)m.mid};
            ex_send_to(s->fd, rst, sizeof rst, peer, peer_len);
            s->stats.pings++;
        }
        return;
    }
    if (CL_COAP_CLASS(m.code) != 0) {
        s->stats.ignored++;
        return;
    }
    ex_peer_name(peer, peer_len, who, sizeof who);
    struct session *cached = find_cached(s, &m, peer, peer_len);
    if (cached != NULL) { /* a retransmission: the same answer again */
        s->stats.resent++;
        ex_log("%s: retransmitted request (message ID %u): response resent", who, m.mid);
        ex_send_to(s->fd, cached->resp, cached->resp_len, peer, peer_len);
        return;
    }
    if (cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) != NULL) {
        handle_oscore(s, buf, len, m.mid, who, peer, peer_len);
        return;
    }
    if (cl_coap_uri_path(&m, path, sizeof path) == CL_OK && strcmp(path, EDHOC_PATH) == 0) {
        handle_edhoc(s, &m, who, peer, peer_len);
        return;
    }
    s->stats.unprotected++;
    ex_log("%s %s without OSCORE -> 4.01 OSCORE required", who, method_name(m.code));
    reply(s, NULL, &m, CL_COAP_UNAUTHORIZED, -1, (const uint8_t *)"OSCORE required", 15, peer,
          peer_len);
}

static void on_datagram(void *arg, uint8_t *buf, size_t len, const struct sockaddr *peer,
                        socklen_t peer_len)
{
    handle_datagram(arg, buf, len, peer, peer_len);
}

static void expire_tick(void *arg)
{
    expire_sessions(arg, ex_now_ms());
}

int main(int argc, char **argv)
{
    struct server *s = &server;
    char err[1024];
    int rc = 1;

    ex_set_prog("edhoc-server");
    s->fd = -1;
    switch (parse_args(s, argc, argv)) {
    case 0: break;
    case 1: usage(stdout); return 0;
    default: return 2;
    }
    if (!setup(s, err, sizeof err)) {
        fprintf(stderr, "edhoc-server: %s\n", err);
        goto done;
    }
    ex_catch_stop_signals();

    ex_serve(s->fd, 500, on_datagram, expire_tick, s, &s->stats.datagrams, &s->stats.oversized);
    ex_log("stopping: %lu datagrams; %lu handshakes, %lu refused, %lu expired, %lu evicted, "
           "%zu sessions open; %lu OSCORE answers, %lu OSCORE errors, %lu resent, "
           "%lu unprotected refused, %lu pings, %lu malformed, %lu oversized, %lu ignored, "
           "%lu dropped",
           s->stats.datagrams, s->stats.handshakes, s->stats.refused, s->stats.expired,
           s->stats.evicted, count_state(s, S_ESTABLISHED), s->stats.answered,
           s->stats.oscore_errors, s->stats.resent, s->stats.unprotected, s->stats.pings,
           s->stats.malformed, s->stats.oversized, s->stats.ignored, s->stats.dropped);
    rc = 0;
done:
    teardown(s);
    return rc;
}
