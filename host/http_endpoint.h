/*
 * host/http_endpoint.h - cloisterd's HTTP endpoint (libmicrohttpd, no extra
 * threads). UNTRUSTED HOST SIDE.
 *
 * The host maps HTTP to CoAP like an HTTP-CoAP proxy (RFC 8613 section 11,
 * RFC 8075) and hands the CoAP bytes to the core in the same batches as the
 * UDP endpoint; it cannot read OSCORE or EDHOC contents. Routes:
 *
 *   any path, OSCORE header   POST (or FETCH), Content-Type application/oscore:
 *                             CoAP POST/FETCH, OSCORE option = decoded header
 *                             (RFC 8613 11.3), payload = body, no
 *                             Content-Format; a response with an OSCORE option
 *                             -> 200, OSCORE header, application/oscore (11.2)
 *   POST /.well-known/edhoc   application/(cid-)edhoc+cbor-seq (RFC 9528
 *                             A.2 framing unchanged) -> CoAP POST
 *   GET  /attestation?nonce=  -> CoAP GET; Block2 is CoAP-only, so the host
 *                             fetches every block from the core and answers
 *                             with one body (<= CL_HTTP_MAX_RESPONSE)
 *   POST /pki/owner, /pki/provision   application/cbor (or json) -> CoAP POST
 *   GET  /healthz             200 "ok\n" when the core answers ticks, else 503
 *   GET  /metrics             Prometheus text: public counters only
 *
 * Unprotected CoAP responses map to HTTP status codes per RFC 8075
 * section 7 (2.04/2.02 -> 200, or 204 without payload; 2.05 -> 200;
 * 2.01 -> 201; 4.01 -> 403; 4.02 -> 400; 4.05 -> 405 ...).
 *
 * Requests complete during one libmicrohttpd pass are suspended
 * (MHD_suspend_connection), sent to the core as ONE batch (peer id =
 * CL_HTTP_PEER_BIT | serial, transport CL_TRANSPORT_HTTP) and resumed with
 * their response.
 *
 * Long polls: a response item with len 0 and CL_BATCH_F_DEFER keeps its
 * connection suspended (at most max_polls; more -> 503) until the core's
 * `send` ocall (cl_http_send) brings the CoAP response for that peer id -
 * mapped like any answer - or until poll_timeout_ms (-> 504 "no action yet;
 * poll again"). Peer ids come from a 63-bit counter, so they stay unique
 * while a poll waits; a send for an unknown or expired peer is dropped and
 * counted. What the core sends during a batch is held (sendq.h) and handed
 * over after the batch's responses, and only when the batch (handle + group
 * commit) succeeded.
 */
#ifndef CLOISTER_HOST_HTTP_ENDPOINT_H
#define CLOISTER_HOST_HTTP_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"
#include "storage.h"
#include "udp_endpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CL_HTTP_PEER_BIT (UINT64_C(1) << 63) /**< never set in UDP peer ids */
#define CL_HTTP_MAX_CONNECTIONS 256
#define CL_HTTP_PER_IP_LIMIT 64
#define CL_HTTP_TIMEOUT_S 10              /**< idle connections are closed */
#define CL_HTTP_MEMORY_LIMIT (32 * 1024)  /**< per connection: request line + headers */
#define CL_HTTP_MAX_RESPONSE 65536        /**< reassembled Block2 body */
#define CL_HTTP_POLL_TIMEOUT_MS 25000     /**< a long poll is answered 504 after this */
#define CL_HTTP_MAX_POLLS 1024            /**< and at most 3/4 of max_connections */

typedef cl_status_t (*cl_http_handler_fn)(void *ctx, const uint8_t *in, size_t in_len,
                                          uint8_t *out, size_t out_size, size_t *out_len);
/** Asks the core for a tick; true when it answered. */
typedef bool (*cl_http_health_fn)(void *ctx);

typedef struct cl_http_config {
    const char *listen;       /**< "127.0.0.1:8080", "[::1]:0"; port 0 = any free one */
    bool bind_any;            /**< allow a non-loopback address */
    unsigned max_connections; /**< 0 = CL_HTTP_MAX_CONNECTIONS */
    unsigned per_ip_limit;    /**< 0 = CL_HTTP_PER_IP_LIMIT */
    unsigned timeout_s;       /**< 0 = CL_HTTP_TIMEOUT_S */
    size_t memory_limit;      /**< 0 = CL_HTTP_MEMORY_LIMIT */
    uint32_t poll_timeout_ms; /**< 0 = CL_HTTP_POLL_TIMEOUT_MS */
    unsigned max_polls;       /**< 0 = CL_HTTP_MAX_POLLS; capped at 3/4 of max_connections so
                                   long polls never take every connection */
    size_t send_queue;        /**< 0 = CL_SENDQ_CAP (messages held during a batch) */
} cl_http_config_t;

/** Counters only: never contents. */
typedef struct cl_http_stats {
    uint64_t requests, rx_bytes, responses, tx_bytes, batches, handler_errors;
    uint64_t oscore, edhoc, plain, healthz, metrics;
    uint64_t rejected_too_large, rejected_method, rejected_not_found, rejected_media_type,
        rejected_bad_request, no_answer;
    uint64_t status_2xx, status_4xx, status_5xx;
    uint64_t tick_errors;
    /* long polls (CL_BATCH_F_DEFER) and core-originated messages (send ocall) */
    uint64_t polls_deferred, polls_answered, polls_timed_out, polls_refused;
    uint64_t send_dropped_peer;   /**< unknown or expired peer id */
    uint64_t send_dropped_full;   /**< hold queue full */
    uint64_t send_dropped_failed; /**< held during a batch that failed */
    uint64_t polls_pending;       /**< gauge: long polls waiting now */
} cl_http_stats_t;

typedef struct cl_http cl_http_t;

/**
 * Binds and starts the daemon. CL_ERR_INVALID_ARG for an unparsable address
 * or a non-loopback one without bind_any; CL_ERR_PERSIST (logged) when bind
 * fails.
 */
cl_status_t cl_http_open(const cl_http_config_t *cfg, cl_http_handler_fn handler,
                         void *handler_ctx, cl_host_log_fn log, void *log_ctx,
                         cl_http_t **out) CL_MUST_CHECK;
/** /healthz asks fn when no tick was noted in the last 2 s (NULL: never healthy then). */
void cl_http_set_health(cl_http_t *ep, cl_http_health_fn fn, void *ctx);
/** The loop's periodic tick result (counted; feeds /healthz without an extra ecall). */
void cl_http_note_tick(cl_http_t *ep, uint64_t now_ms, bool ok);
/** Exports this UDP endpoint's counters in /metrics too (may be NULL). */
void cl_http_set_udp(cl_http_t *ep, const cl_udp_t *udp);
/** The fd to poll for POLLIN (libmicrohttpd's epoll fd). */
int cl_http_fd(const cl_http_t *ep);
/** Milliseconds until cl_http_process must run again (-1: only when the fd is readable). */
int cl_http_timeout_ms(const cl_http_t *ep);
uint16_t cl_http_port(const cl_http_t *ep);
/** One pass: accept/read/write, one batch per round of completed requests,
 * long polls past their timeout answered 504. */
cl_status_t cl_http_process(cl_http_t *ep, uint64_t now_ms) CL_MUST_CHECK;
/**
 * The core's `send` ocall for transport CL_TRANSPORT_HTTP (cl_host_send_fn
 * shaped; ctx = ep): the answer to a pending long poll. Queued while held;
 * else the poll with this peer id is answered now (the connection resumes at
 * the next cl_http_process). CL_ERR_NOT_FOUND (counted) when no poll has this
 * peer id, CL_ERR_UNSUPPORTED for another transport, CL_ERR_FULL when the
 * hold queue is full.
 */
cl_status_t cl_http_send(void *ep, uint64_t peer, uint16_t transport, const uint8_t *msg,
                         size_t len);
/** Messages held now (waiting for the group commit of the batch that made them). */
size_t cl_http_held(const cl_http_t *ep);
/** Holds core-originated messages until cl_http_release (nested; see cl_udp_hold). */
void cl_http_hold(cl_http_t *ep);
/** Ends one hold: at the last one, delivers the queue - or drops it (counted) when the
 * round failed. */
void cl_http_release(cl_http_t *ep, bool ok);
void cl_http_get_stats(const cl_http_t *ep, cl_http_stats_t *out);
/** CoAP response code -> HTTP status (RFC 8075 section 7; see the file comment). */
unsigned cl_http_status_from_coap(uint8_t code, bool has_payload);
void cl_http_close(cl_http_t *ep);

#ifdef __cplusplus
}
#endif
#endif
