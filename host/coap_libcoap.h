/*
 * host/coap_libcoap.h - cloisterd's CoAP-over-UDP endpoint built on Debian's
 * libcoap3 (4.3.x) for the message layer. UNTRUSTED HOST SIDE.
 *
 * A parallel API to udp_endpoint.h (same handler type, same batch format,
 * same peer ids) so cloisterd can pick either with --coap-stack:
 *
 *   libcoap runs the RFC 7252 message layer: CON/NON, ACK/RST, ping -> RST,
 *   retransmission of what we send (core-originated CON notifications),
 *   dropping what it cannot parse, deduplication of a retransmitted request
 *   while its answer is still pending. One catch-all handler (the unknown
 *   resource for every method, plus /.well-known/core which libcoap would
 *   otherwise answer itself) receives every request; it re-serializes
 *   libcoap's parse (type, code, message id, token, every option in order,
 *   payload) with the project's CoAP builder, because the core parses
 *   everything it relies on itself.
 *
 *   Batching (group commit, cloister/core.h archive_put): each request is
 *   registered as a libcoap "async" (delay 0) and appended to the pass's
 *   batch; after the pass the handler runs ONCE for the batch, each
 *   response is stored with its async and the async triggered; libcoap then
 *   calls the handler again and the response PDU is filled from the core's
 *   bytes (code, options in order, payload; type and message id are
 *   libcoap's). On the wire a CON request therefore gets an EMPTY ACK at
 *   once and a SEPARATE CON response (which the client ACKs); a NON
 *   request gets a NON response.
 *
 *   Deduplication after the answer: a bounded cache (peer, message id) ->
 *   the core's response for EXCHANGE_LIFETIME, as in udp_endpoint.c, so a
 *   retransmission never reaches the core twice (the OSCORE replay window
 *   would reject it); a cached answer is replayed piggybacked.
 *
 * No threads: one coap_context_t, one UDP endpoint; cloisterd polls
 * cl_lcoap_fd() (libcoap's epoll fd) and calls cl_lcoap_process().
 * Block-wise is NOT done by libcoap (COAP_BLOCK_USE_LIBCOAP is never set):
 * Block1/Block2/Size options pass through untouched both ways.
 */
#ifndef CLOISTER_HOST_COAP_LIBCOAP_H
#define CLOISTER_HOST_COAP_LIBCOAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"
#include "storage.h"
#include "udp_endpoint.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CL_LCOAP_MAX_PENDING 4096 /**< requests awaiting the core; more -> 5.03 */

typedef struct cl_lcoap_config {
    const char *listen;            /**< "127.0.0.1:5683", "[::1]:0"; port 0 = any free one */
    bool bind_any;                 /**< allow a non-loopback address */
    size_t dedup_entries;          /**< 0 = CL_UDP_DEDUP_ENTRIES */
    uint32_t exchange_lifetime_ms; /**< 0 = CL_UDP_EXCHANGE_LIFETIME_MS */
    size_t max_peers;              /**< 0 = CL_UDP_MAX_PEERS */
    size_t max_pending;            /**< 0 = CL_LCOAP_MAX_PENDING */
    /**
     * CON messages libcoap keeps in flight per peer (RFC 7252 NSTART) - this
     * includes our SEPARATE CON responses: with 1 (the RFC default, used for 0
     * unless the environment sets CLOISTER_COAP_NSTART for experiments) a
     * client's k-th response waits for its ACK of the (k-1)-th.
     */
    uint16_t nstart;
    size_t send_queue; /**< 0 = CL_SENDQ_CAP (core-originated messages held during a batch) */
} cl_lcoap_config_t;

typedef struct cl_lcoap cl_lcoap_t;

/**
 * Creates the libcoap context and binds the endpoint. CL_ERR_INVALID_ARG for
 * an unparsable address or a non-loopback one without bind_any;
 * CL_ERR_PERSIST (logged) when bind fails. libcoap's own logging goes to the
 * same sink (warnings and up).
 */
cl_status_t cl_lcoap_open(const cl_lcoap_config_t *cfg, cl_udp_handler_fn handler,
                          void *handler_ctx, cl_host_log_fn log, void *log_ctx,
                          cl_lcoap_t **out) CL_MUST_CHECK;
/** The fd to poll for POLLIN (libcoap's epoll fd: socket and timers). */
int cl_lcoap_fd(const cl_lcoap_t *ep);
uint16_t cl_lcoap_port(const cl_lcoap_t *ep);
/** Milliseconds until libcoap's next timer (retransmissions), -1 = none. */
int cl_lcoap_timeout_ms(const cl_lcoap_t *ep);
/**
 * One pass: lets libcoap read what is waiting (never blocks), hands the
 * requests to the handler as one batch (more than one when more than
 * CL_CORE_MAX_BATCH arrived), then lets libcoap send the responses.
 * *got = requests handed to the core. A handler failure is logged and
 * counted; the affected requests are answered 5.03 (a CON was already
 * acknowledged, so the client would not retransmit).
 */
cl_status_t cl_lcoap_process(cl_lcoap_t *ep, uint64_t now_ms, size_t *got) CL_MUST_CHECK;
/**
 * Sends a core-originated message to a peer id (cl_host_send_fn shaped; ctx =
 * ep): held while a batch runs (cl_lcoap_hold), then handed to libcoap,
 * which retransmits a CON until its ACK. An RST to it reaches the core in
 * the next batch; a give-up is counted (notify_timeouts).
 */
cl_status_t cl_lcoap_send(void *ep, uint64_t peer, uint16_t transport, const uint8_t *msg,
                          size_t len);
/** Holds core-originated messages until cl_lcoap_release (nested; see cl_udp_hold). */
void cl_lcoap_hold(cl_lcoap_t *ep);
/** Ends one hold: at the last one, sends the queue - or drops it (counted) when the round
 * failed. */
void cl_lcoap_release(cl_lcoap_t *ep, bool ok);
/** Stats in udp_endpoint's shape (rx/tx count requests and responses seen by the handler). */
void cl_lcoap_get_stats(const cl_lcoap_t *ep, cl_udp_stats_t *out);
void cl_lcoap_log_peers(const cl_lcoap_t *ep, int level);
void cl_lcoap_close(cl_lcoap_t *ep);

#ifdef __cplusplus
}
#endif
#endif
