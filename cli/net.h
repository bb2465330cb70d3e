/*
 * cli/net.h - CoAP over UDP for the `cloister` command: coap:// URIs, a
 * connected UDP socket, Confirmable exchanges with the RFC 7252
 * retransmission schedule (token matching, empty ACK + separate response),
 * and plain requests whose responses may come in Block2 pieces (the
 * evidence map with its quote is larger than one block).
 *
 * The only plain (unprotected) requests the CLI makes are the bootstrap
 * ones of docs/core-protocol.md (GET /attestation, POST /pki/owner,
 * POST /pki/provision) and EDHOC; everything else goes through session.h.
 */
#ifndef CLOISTER_CLI_NET_H
#define CLOISTER_CLI_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/coap.h"
#include "cloister/crypto.h"

#define CLI_DGRAM_MAX 65535   /* UDP datagrams read whole */
#define CLI_PAYLOAD_MAX 65536 /* largest (reassembled) response payload */
#define CLI_TOKEN_LEN 8
#define CLI_ACK_TIMEOUT_MS 2000 /* RFC 7252 ACK_TIMEOUT; $CLOISTER_COAP_TIMEOUT_MS overrides */
#define CLI_MAX_RETRANSMIT 4

typedef struct cli_net {
    int fd;
    bool opened; /* fd is ours to close (a zeroed cli_net_t is closed) */
    char host[256];
    char port[8];
    bool host_literal; /* an IP address: no Uri-Host option */
    bool http;         /* http:// server: each exchange is one HTTP request (net_http.c) */
    const cl_crypto_t *crypto; /* randomness for tokens, message ids, jitter */
    uint16_t next_mid;
    unsigned timeout_ms;
    unsigned hold_ms; /* http://: the server may hold an answer this long (long poll); 0 = none */
    bool verbose;
} cli_net_t;

/*
 * One request. path "/a/b"; query "k=v&k2=v2" or NULL; cf < 0 = no
 * Content-Format; observe: an Observe registration (Observe: 0, RFC 7641);
 * block1: this payload is one block of a larger body (RFC 7959; set by
 * session.c for large bodies).
 */
typedef struct cli_req {
    uint8_t code;
    const char *path;
    const char *query;
    int cf;
    const uint8_t *payload;
    size_t len;
    bool observe;
    const cl_coap_block_t *block1;
} cli_req_t;

/* coap://HOST[:PORT][/] -> host, port (default 5683); http://HOST[:PORT][/] likewise
 * (default 80) with *http set (http may be NULL: then only coap:// is accepted). */
bool cli_net_parse_uri(const char *uri, char host[256], char port[8], bool *literal, bool *http,
                       char *err, size_t err_size);

/* Resolves and connects; n->fd = -1 on failure. */
bool cli_net_open(cli_net_t *n, const char *uri, const cl_crypto_t *crypto, char *err,
                  size_t err_size);
void cli_net_close(cli_net_t *n);

/* A fresh random token and the next message id. */
bool cli_net_new_token(cli_net_t *n, uint8_t token[CLI_TOKEN_LEN], uint16_t *mid);

/* Serializes a CON request (with Block2 num/szx when block2 is true). */
bool cli_net_build(const cli_net_t *n, const cli_req_t *r, uint16_t mid,
                   const uint8_t token[CLI_TOKEN_LEN], bool block2, uint32_t num, uint8_t szx,
                   uint8_t *out, size_t out_size, size_t *out_len);

/*
 * Sends msg (a CON request with this mid and token) and waits for its
 * response, retransmitting; resp receives the response datagram.
 */
bool cli_net_exchange(cli_net_t *n, const uint8_t *msg, size_t len, uint16_t mid,
                      const uint8_t token[CLI_TOKEN_LEN], uint8_t *resp, size_t resp_size,
                      size_t *resp_len, char *err, size_t err_size);

/*
 * Waits up to wait_ms for one datagram from the server (the socket is
 * connected: nothing else reaches it). Returns 1 with the datagram in buf,
 * 0 when none came in time, -1 on an error (message in err).
 */
int cli_net_recv(cli_net_t *n, uint8_t *buf, size_t size, size_t *len, unsigned wait_ms,
                 char *err, size_t err_size);
/* Sends an Empty message: type CL_COAP_ACK (acknowledges a CON) or CL_COAP_RST, echoing mid. */
void cli_net_send_empty(cli_net_t *n, uint8_t type, uint16_t mid);

/*
 * A plain request; the response's code and payload (all Block2 pieces
 * joined) into *code and out.
 */
bool cli_net_request(cli_net_t *n, const cli_req_t *r, uint8_t *code, uint8_t *out,
                     size_t out_size, size_t *out_len, char *err, size_t err_size);

/*
 * net_http.c: msg (a CoAP request) as one HTTP/1.1 exchange (RFC 8613 section
 * 11 for OSCORE, RFC 8075 codes); resp receives the answer as a CoAP ACK with
 * the request's message id and token. cli_net_exchange calls it for http://.
 */
bool cli_http_exchange(cli_net_t *n, const uint8_t *msg, size_t len, uint8_t *resp,
                       size_t resp_size, size_t *resp_len, char *err, size_t err_size);

#endif
