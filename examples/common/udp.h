/*
 * udp.h - CoAP-over-UDP plumbing shared by the example programs.
 *
 * What: the pieces the OSCORE and the EDHOC examples both need and that have
 * nothing to do with either protocol: "prog: ..." diagnostics, a monotonic
 * millisecond clock, coap:// URI parsing (percent-decoded segments), the client's
 * connected UDP socket and its Confirmable exchange (RFC 7252 retransmission
 * schedule, token matching, separate responses), and the server's listening
 * socket (loopback only unless --bind-any), SIGINT/SIGTERM handling and
 * poll/recvmsg loop.
 *
 * Why: the examples used to carry identical copies of this code, so a fix in
 * one (a retransmission timer, the loopback rule) could silently miss the
 * other. Output texts are unchanged; the program name given to
 * ex_set_prog() is the prefix of every line.
 */
#ifndef CL_EXAMPLE_UDP_H
#define CL_EXAMPLE_UDP_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cloister/coap.h"
#include "cloister/crypto.h"

#define EX_ACK_TIMEOUT_MS 2000 /* RFC 7252 ACK_TIMEOUT */
#define EX_MAX_RETRANSMIT 4    /* RFC 7252 MAX_RETRANSMIT */
#define EX_DGRAM_MAX 1500      /* larger datagrams are dropped */
#define EX_PEER_NAME_MAX 76    /* "[host]:port" from ex_peer_name */

/* ------------------------------------------------------------ diagnostics */

/* Sets the "prog: " prefix of ex_fail and ex_log (a string literal). */
void ex_set_prog(const char *prog);
/* "prog: message" on stderr. */
void ex_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, formatted into one bounded line first (server log). */
void ex_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Rate limit for per-datagram complaints: 1st, 2nd, 4th, 8th, ... */
bool ex_worth_logging(unsigned long count);
uint64_t ex_now_ms(void);

/* ------------------------------------------------------------ URIs */

#define EX_URI_SEGMENTS 16

typedef struct ex_segment {
    const uint8_t *p;
    size_t len;
} ex_segment_t;

/* The target of a coap:// URI, with percent-decoded path and query segments. */
typedef struct ex_uri {
    char host[256];
    char port[8];
    bool host_literal; /* an IP address: no Uri-Host option */
    uint8_t buf[512];  /* the decoded segments */
    ex_segment_t path[EX_URI_SEGMENTS], query[EX_URI_SEGMENTS];
    size_t n_path, n_query;
} ex_uri_t;

/*
 * Parses coap://HOST[:PORT]/path[?query] (RFC 7252 section 6.4); reports
 * errors with ex_fail. scheme_note and path_note end the "only coap:// URIs"
 * and "bad or too long path" messages ("" for none).
 */
bool ex_parse_uri(ex_uri_t *t, const char *uri, const char *scheme_note, const char *path_note);

/* ------------------------------------------------------------ client */

typedef enum { XCH_OK, XCH_TIMEOUT, XCH_RESET, XCH_ERROR } xstatus_t;

typedef struct ex_conn {
    int fd;                  /* connected UDP socket */
    const char *host, *port; /* for messages */
    const cl_crypto_t *crypto;
    unsigned timeout_ms; /* initial ACK timeout */
    bool verbose;        /* retransmissions on stderr */
    bool log_malformed;  /* with verbose: note ignored malformed datagrams */
} ex_conn_t;

/* A UDP socket connected to host:port (first address that works), or -1. */
int ex_connect(const char *host, const char *port);
bool ex_send(const ex_conn_t *c, const uint8_t *buf, size_t len);
/*
 * Sends the CON request msg and waits for its response (token match),
 * retransmitting on the RFC 7252 schedule until an ACK arrives.
 */
xstatus_t ex_exchange(const ex_conn_t *c, const uint8_t *msg, size_t len, uint16_t mid,
                      const uint8_t *token, size_t tkl, uint8_t *resp, size_t resp_size,
                      size_t *resp_len);
/* "PREFIX2.05 Content (unprotected): payload" on stdout; reason may be "". */
void ex_print_response(const char *prefix, const cl_coap_msg_t *m, const char *reason,
                       bool unprotected);

/* ------------------------------------------------------------ server */

typedef struct ex_listen {
    struct sockaddr_storage addr;
    socklen_t addr_len;
} ex_listen_t;

bool ex_is_loopback(const struct sockaddr *sa);
/* "1.2.3.4:5683" or "[::1]:5683" ("?" if unknown). */
void ex_peer_name(const struct sockaddr *sa, socklen_t len, char *out, size_t out_size);
/*
 * Resolves the numeric listen address and refuses a non-loopback one unless
 * bind_any; hint is appended to the message for an unparsable address.
 */
bool ex_resolve_listen(ex_listen_t *l, const char *addr, const char *port, bool bind_any,
                       const char *hint, char *err, size_t err_size);
/* Binds *fd to l; name gets the bound address (port 0 resolved). */
bool ex_bind(const ex_listen_t *l, const char *addr, const char *port, int *fd, char *name,
             size_t name_size, char *err, size_t err_size);
void ex_send_to(int fd, const uint8_t *buf, size_t len, const struct sockaddr *peer,
                socklen_t peer_len);
/* Response header for a request: piggybacked ACK for CON, NON with (*next_mid)++. */
void ex_reply_header(const cl_coap_msg_t *req, uint16_t *next_mid, uint8_t *type, uint16_t *mid);

/* SIGINT and SIGTERM (no SA_RESTART: poll returns EINTR) end ex_serve. */
void ex_catch_stop_signals(void);

typedef void ex_handler_fn(void *arg, uint8_t *buf, size_t len, const struct sockaddr *peer,
                           socklen_t peer_len);

/*
 * Receives datagrams on fd until a stop signal, counting them in *datagrams
 * and dropping (and counting in *oversized) those over EX_DGRAM_MAX. tick,
 * when not NULL, runs after every poll (at least every poll_ms).
 */
void ex_serve(int fd, int poll_ms, ex_handler_fn *handle, void (*tick)(void *arg), void *arg,
              unsigned long *datagrams, unsigned long *oversized);

#endif
