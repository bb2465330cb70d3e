/*
 * host/udp_endpoint.h - cloisterd's CoAP-over-UDP endpoint. UNTRUSTED HOST SIDE.
 *
 * The host runs only the CoAP *message layer* here (RFC 7252 section 4):
 * it reads the 4-byte header and the token length, answers an empty CON
 * ("ping") with RST, drops ACK/RST that match nothing it sent, and keeps a
 * bounded deduplication cache (peer, message id) -> last response for
 * EXCHANGE_LIFETIME so that a retransmitted request gets the same response
 * without reaching the core twice (the core would rightly call it a replay).
 * Everything else - options, payload, OSCORE, EDHOC - is the core's to parse.
 *
 * Requests received in one loop iteration (up to CL_CORE_MAX_BATCH) become
 * one batch (cl_batch_*, peer id = generation << 32 | slot of a bounded peer
 * table) handed to the handler once; response item i answers request i, an
 * empty item means "no answer", items past the request count are sent as
 * they are (notifications).
 *
 * Core-originated messages (the `send` ocall, cl_udp_send): while a batch
 * runs they are held (sendq.h) and leave with the batch's responses, after
 * the handler (handle + group commit) returned OK; a failed batch sends
 * none of them. A CON the core produced is retransmitted (RFC 7252 4.2:
 * ACK_TIMEOUT 2 s x random [1, 1.5], doubled each time, MAX_RETRANSMIT 4)
 * until the ACK (consumed here, never given to the core) or the RST (handed
 * to the core in the next batch, like any message) with the same peer and
 * message id arrives, then given up and counted. The retransmission table is
 * bounded (oldest dropped and counted); cl_udp_timers runs it.
 */
#ifndef CLOISTER_HOST_UDP_ENDPOINT_H
#define CLOISTER_HOST_UDP_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"
#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CL_UDP_MAX_DATAGRAM 1500          /**< bigger datagrams are dropped */
#define CL_UDP_EXCHANGE_LIFETIME_MS 247000 /**< RFC 7252 section 4.8.2 */
#define CL_UDP_DEDUP_ENTRIES 4096
#define CL_UDP_MAX_PEERS 1024
#define CL_UDP_ACK_TIMEOUT_MS 2000   /**< RFC 7252 section 4.8 ACK_TIMEOUT */
#define CL_UDP_MAX_RETRANSMIT 4      /**< RFC 7252 section 4.8 MAX_RETRANSMIT */
#define CL_UDP_CON_ENTRIES 4096      /**< core-originated CONs awaiting their ACK */
#define CL_UDP_SOCKET_BUFFER (4u << 20) /**< SO_RCVBUF / SO_SNDBUF asked for */

/** The core's handle() as the endpoint sees it (cl_runtime_handle shaped). */
typedef cl_status_t (*cl_udp_handler_fn)(void *ctx, const uint8_t *in, size_t in_len,
                                         uint8_t *out, size_t out_size, size_t *out_len);

typedef struct cl_udp_config {
    const char *listen;           /**< "127.0.0.1:5683", "[::1]:0"; port 0 = any free one */
    bool bind_any;                /**< allow a non-loopback address */
    size_t dedup_entries;         /**< 0 = CL_UDP_DEDUP_ENTRIES */
    uint32_t exchange_lifetime_ms; /**< 0 = CL_UDP_EXCHANGE_LIFETIME_MS */
    size_t max_peers;             /**< 0 = CL_UDP_MAX_PEERS */
    size_t con_entries;           /**< 0 = CL_UDP_CON_ENTRIES (retransmission table) */
    uint32_t ack_timeout_ms;      /**< 0 = CL_UDP_ACK_TIMEOUT_MS (tests shorten it) */
    size_t send_queue;            /**< 0 = CL_SENDQ_CAP (messages held during a batch) */
    size_t socket_buffer;         /**< 0 = CL_UDP_SOCKET_BUFFER */
} cl_udp_config_t;

/** Counters only: never contents. */
typedef struct cl_udp_stats {
    uint64_t rx, rx_bytes, tx, tx_bytes;
    uint64_t dropped_big, dropped_bad, dropped_unmatched, dropped_inflight;
    uint64_t pings, dedup_hits, batches, handler_errors, peers_evicted;
    /* core-originated messages (send ocall and items past the request count) */
    uint64_t notify_sent;          /**< first transmissions */
    uint64_t notify_retransmitted; /**< CON retransmissions */
    uint64_t notify_timeouts;      /**< CONs given up after MAX_RETRANSMIT */
    uint64_t notify_acked;         /**< ACKs consumed by the host */
    uint64_t notify_rst;           /**< RSTs to them, handed to the core */
    uint64_t notify_evicted;       /**< retransmission table full: oldest dropped */
    uint64_t notify_dropped_full;  /**< hold queue full */
    uint64_t notify_dropped_failed; /**< held during a batch that failed */
    uint64_t notify_dropped_peer;  /**< peer id unknown or evicted */
    /* pipelined group commit */
    uint64_t commit_failed_batches; /**< parked batches dropped: their commit failed */
    uint64_t parked_full_waits;     /**< the loop waited for the writer (ring full) */
} cl_udp_stats_t;

typedef struct cl_udp cl_udp_t;

/**
 * Binds the socket. CL_ERR_INVALID_ARG for an unparsable address or a
 * non-loopback one without bind_any; CL_ERR_PERSIST (logged) when bind fails.
 */
cl_status_t cl_udp_open(const cl_udp_config_t *cfg, cl_udp_handler_fn handler, void *handler_ctx,
                        cl_host_log_fn log, void *log_ctx, cl_udp_t **out) CL_MUST_CHECK;
/** The socket to poll for POLLIN. */
int cl_udp_fd(const cl_udp_t *ep);
/** The bound port (useful with port 0). */
uint16_t cl_udp_port(const cl_udp_t *ep);
/**
 * Reads the datagrams waiting (up to CL_CORE_MAX_BATCH, never blocks),
 * answers what the message layer answers, hands the requests to the handler
 * as one batch and sends the responses. *got = datagrams read (0: socket
 * drained). A handler failure is logged and counted, not returned.
 */
cl_status_t cl_udp_process(cl_udp_t *ep, uint64_t now_ms, size_t *got) CL_MUST_CHECK;
/**
 * Sends a core-originated message to a peer id (cl_host_send_fn shaped; ctx =
 * ep): queued while held (see cl_udp_hold), else sent now. CL_ERR_NOT_FOUND
 * for an unknown peer id, CL_ERR_UNSUPPORTED for another transport,
 * CL_ERR_FULL when the hold queue is full (dropped, counted).
 */
cl_status_t cl_udp_send(void *ep, uint64_t peer, uint16_t transport, const uint8_t *msg,
                        size_t len);
/**
 * Holds core-originated messages (queued, not sent) until the matching
 * cl_udp_release. Holds nest; cloisterd brackets every handle() and tick()
 * with them (the group commit in between). NULL is fine.
 */
void cl_udp_hold(cl_udp_t *ep);
/** Ends one hold: at the last one, sends the queue - or drops it (counted)
 * when any release of the round said !ok (the batch or its commit failed). */
void cl_udp_release(cl_udp_t *ep, bool ok);
/** Retransmits the CONs that are due and gives up on those past MAX_RETRANSMIT. */
void cl_udp_timers(cl_udp_t *ep, uint64_t now_ms);
/** Milliseconds until cl_udp_timers has work (-1: nothing outstanding). */
int cl_udp_timeout_ms(const cl_udp_t *ep, uint64_t now_ms);
void cl_udp_get_stats(const cl_udp_t *ep, cl_udp_stats_t *out);

/*
 * Pipelined group commit (host/commit_pipe.h). Without it, the handler
 * commits before it returns and the batch's answers leave at once. With it,
 * the handler hands the batch's rows to a writer thread and returns; `ticket`
 * then names that commit, and the batch's responses and held messages are
 * parked (copied, in order) until `resolved` covers the ticket: sent when
 * `ticket_ok`, dropped (counted, the dedup entries forgotten so the clients'
 * retransmissions are processed again) when the commit failed. A
 * retransmission of a parked request is dropped as in flight. At most
 * `max_parked` batches are parked; then the endpoint waits for the oldest
 * before it reads more datagrams.
 */
#define CL_UDP_MAX_PARKED 32
typedef struct cl_udp_pipeline {
    uint64_t (*ticket)(void *ctx);              /**< the last handled batch's ticket */
    uint64_t (*resolved)(void *ctx);            /**< every ticket <= this is resolved */
    bool (*ticket_ok)(void *ctx, uint64_t t);   /**< resolved t: committed? */
    void (*wait)(void *ctx, uint64_t t);        /**< blocks until t is resolved */
    void *ctx;
    size_t max_parked; /**< 0 = CL_UDP_MAX_PARKED */
} cl_udp_pipeline_t;
/** Turns parking on (once, before the first cl_udp_process). */
cl_status_t cl_udp_set_pipeline(cl_udp_t *ep, const cl_udp_pipeline_t *pl) CL_MUST_CHECK;
/** Sends (or drops) every parked batch whose ticket is resolved, oldest first. */
void cl_udp_flush_resolved(cl_udp_t *ep);
/** Waits for every parked batch's commit and flushes them (shutdown). */
void cl_udp_drain(cl_udp_t *ep);
/** Batches parked now. */
size_t cl_udp_parked(const cl_udp_t *ep);
/** Logs one line per known peer: address, counts and sizes. */
void cl_udp_log_peers(const cl_udp_t *ep, int level);
void cl_udp_close(cl_udp_t *ep);

#ifdef __cplusplus
}
#endif
#endif
