/*
 * cloister/core.h - the trust boundary: the trusted core's ecalls and the
 * host's ocall table (DESIGN.md "The trust boundary"; core/cloister.edl is
 * the same interface written as an SGX EDL).
 *
 * ecalls (host -> core), exported by the core image as one versioned table
 * (symbol CL_CORE_ENTRY_SYMBOL):
 *   open    boot: unseal the snapshot, replay the sealed log, or start fresh
 *   handle  a batch of transport messages in, a batch of responses out
 *   tick    timers (session expiry, snapshots)
 *   attest  evidence for a verifier nonce (public data)
 *   close   wipe everything
 *
 * ocalls (core -> host): cl_host_ops_t, purpose-shaped, never POSIX-shaped.
 * Everything the core hands to an ocall is ciphertext, sealed data or public
 * data; everything an ocall hands back is copied into the core and validated
 * there (lengths, MACs, counters) before use.
 *
 * Buffers: every ecall takes (in, in_len) and (out, out_size, *out_len);
 * the core copies `in` before parsing it (no double fetch) and never returns
 * pointers into its memory. A runtime may run the core in-process (tee/sim)
 * or in another process (tee/process); the bytes are the same.
 */
#ifndef CLOISTER_CORE_H
#define CLOISTER_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"
#include "cloister/tee.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CL_CORE_API_VERSION 1
#define CL_HOST_OPS_VERSION 1
#define CL_CORE_ENTRY_SYMBOL "cl_core_entry"

/* ---- limits of what crosses the boundary ---- */
#define CL_CORE_MAX_MESSAGE 2048   /**< one transport message (CoAP bytes) */
#define CL_CORE_MAX_BATCH 64       /**< messages per handle() batch */
#define CL_CORE_MAX_BATCH_BYTES (CL_CORE_MAX_BATCH * (CL_CORE_MAX_MESSAGE + 16) + 16)
#define CL_CORE_MAX_RECORD 65536   /**< one sealed log record or archive record */
#define CL_CORE_MAX_SNAPSHOT (8u * 1024u * 1024u)
#define CL_CORE_MAX_EVIDENCE 8192  /**< attest() output */
#define CL_CORE_MAX_QUOTE 6144
#define CL_CORE_NONCE_MIN 16
#define CL_CORE_NONCE_MAX 64
#define CL_CORE_MAX_LOG_LINE 256

/** Severity of a host log line. */
typedef enum cl_log_level {
    CL_LOG_ERROR = 0,
    CL_LOG_WARN = 1,
    CL_LOG_INFO = 2,
    CL_LOG_DEBUG = 3,
} cl_log_level_t;

/** Transports a message came over (the core only ever sees CoAP bytes; the
 * host maps HTTP to CoAP like an HTTP-CoAP proxy, RFC 8613 section 11). */
typedef enum cl_transport {
    CL_TRANSPORT_COAP = 1,
    CL_TRANSPORT_HTTP = 2,
    CL_TRANSPORT_LOCAL = 3, /**< tests and the local admin socket */
} cl_transport_t;

/** One encrypted archive record as the host stores it. */
typedef struct cl_archive_rec {
    uint8_t tag[16];      /**< truncated HMAC of (type, source) under a core key */
    uint64_t bucket;      /**< time bucket (coarse, public) */
    const uint8_t *data;  /**< ciphertext */
    size_t len;
} cl_archive_rec_t;

/**
 * The host's ocall table. Every function returns CL_OK or an error; the
 * core treats an error as "the host failed" and fails the operation safely
 * (nothing acknowledged that is not durable).
 */
typedef struct cl_host_ops {
    uint32_t version; /**< CL_HOST_OPS_VERSION */
    void *ctx;

    /** Appends sealed log record number `counter` durably (fsync before returning). */
    cl_status_t (*log_append)(void *ctx, uint64_t counter, const uint8_t *rec, size_t len);
    /**
     * Reads the sealed log record with the smallest counter >= `counter`
     * into buf: *got_counter and *len receive it. CL_ERR_NOT_FOUND past the
     * end, CL_ERR_BUFFER_TOO_SMALL when buf is short (nothing written).
     */
    cl_status_t (*log_read)(void *ctx, uint64_t counter, uint64_t *got_counter, uint8_t *buf,
                            size_t size, size_t *len);
    /** Drops log records with counter < `before` (after a snapshot covers them). */
    cl_status_t (*log_compact)(void *ctx, uint64_t before);
    /** Replaces the sealed snapshot atomically and durably. */
    cl_status_t (*snapshot_put)(void *ctx, const uint8_t *blob, size_t len);
    /** Reads the sealed snapshot; CL_ERR_NOT_FOUND when there is none. */
    cl_status_t (*snapshot_get)(void *ctx, uint8_t *buf, size_t size, size_t *len);
    /**
     * Stores n archive records (one transaction); ids receive their row ids.
     * Durability is owed before any response of the same handle() batch leaves
     * the host: a host may keep the rows of a whole batch in one open
     * transaction and commit (fsync) once before sending the batch's
     * responses - group commit. An acknowledged event is therefore durable.
     */
    cl_status_t (*archive_put)(void *ctx, const cl_archive_rec_t *recs, size_t n, uint64_t *ids);
    /**
     * Scans archive records with this tag and bucket in [from, to], row id >
     * after_id, in row-id order; writes them to buf as a sequence of
     * [u64 id][u64 bucket][u32 len][len bytes] (little-endian) and sets *n.
     */
    cl_status_t (*archive_scan)(void *ctx, const uint8_t tag[16], uint64_t from, uint64_t to,
                                uint64_t after_id, size_t max_records, uint8_t *buf, size_t size,
                                size_t *len, size_t *n);
    /**
     * Sends a transport message to a peer (notifications, pushed actions,
     * the answer to a deferred request). Called during handle() or tick().
     * A host must not let a message sent during handle() leave before that
     * batch's archive rows are durable (it queues them and sends them with
     * the batch's responses, after the group commit). A CoAP CON message is
     * retransmitted by the host (RFC 7252 section 4.2) until its ACK or RST;
     * an RST is handed to the core in a later batch like any message.
     */
    cl_status_t (*send)(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                        size_t len);
    /** Untrusted wall-clock time in milliseconds since the Unix epoch. */
    cl_status_t (*time_now)(void *ctx, int64_t *unix_ms);
    /** Turns a 432-byte report (targeted at the quoting enclave) into a quote. */
    cl_status_t (*quote)(void *ctx, const uint8_t *report, size_t report_len, uint8_t *quote,
                         size_t size, size_t *len);
    /** Logs one NON-SENSITIVE line (NUL-terminated, <= CL_CORE_MAX_LOG_LINE). */
    void (*log_line)(void *ctx, int level, const char *line);
} cl_host_ops_t;

/** Core configuration given at open (copied). */
typedef struct cl_core_config {
    uint32_t version;           /**< CL_CORE_API_VERSION */
    uint32_t snapshot_every;    /**< snapshot after this many log records (0 = default 1000) */
    uint32_t max_sessions;      /**< EDHOC + OSCORE sessions (0 = default 4096) */
    uint32_t session_ttl_s;     /**< idle OSCORE session lifetime (0 = default 86400) */
    uint16_t seal_policy;       /**< CL_SGX_KEYPOLICY_MRENCLAVE (default) or _MRSIGNER */
    uint16_t reserved;
} cl_core_config_t;

/** Opaque core instance handle (never a pointer into the core). */
typedef uint64_t cl_core_handle_t;

/**
 * The ecall table the core image exports. Every pointer argument refers to
 * host memory that the core copies before use.
 */
typedef struct cl_core_ecalls {
    uint32_t version; /**< CL_CORE_API_VERSION */
    /** Boots a core: platform services, host ocalls, config. */
    cl_status_t (*open)(const cl_tee_platform_t *platform, const cl_host_ops_t *host,
                        const cl_core_config_t *cfg, cl_core_handle_t *out);
    /** Handles a batch (see cl_batch_*): responses go to out as a batch. */
    cl_status_t (*handle)(cl_core_handle_t core, const uint8_t *in, size_t in_len, uint8_t *out,
                          size_t out_size, size_t *out_len);
    /** Timers; now_ms is untrusted (used only for expiry, never for security alone). */
    cl_status_t (*tick)(cl_core_handle_t core, int64_t now_ms);
    /**
     * Evidence for a nonce: a CBOR map (see docs/attestation.md) carrying the
     * quote, the core's public keys and the owner binding.
     */
    cl_status_t (*attest)(cl_core_handle_t core, const uint8_t *nonce, size_t nonce_len,
                          uint8_t *out, size_t out_size, size_t *out_len);
    /** Wipes and frees the instance. */
    void (*close)(cl_core_handle_t core);
} cl_core_ecalls_t;

/** The symbol the core image exports (CL_CORE_ENTRY_SYMBOL). */
const cl_core_ecalls_t *cl_core_entry(void);
/**
 * The same table from the core library itself (libcloister_core.a), for
 * tests that link the core statically with a fixture platform/host.
 */
const cl_core_ecalls_t *cl_core_ecall_table(void);

/* ---- Batches: the bytes handle() takes and returns ----
 *
 *   batch := "CLB1" u32 count item*          (little-endian)
 *   item  := u64 peer  u16 transport  u16 flags  u32 len  len bytes
 *
 * The host chooses peer ids (an opaque number per remote endpoint) and the
 * core echoes them on responses. count <= CL_CORE_MAX_BATCH, len <=
 * CL_CORE_MAX_MESSAGE. An item with len 0 in a response means "no answer".
 */
/**
 * Response item flag: the core holds this request open (an HTTP long poll
 * on GET /actions?wait=1); len is 0 and the answer comes later through the
 * send ocall for the same peer and transport. The host keeps the request
 * pending until then or until its own poll timeout (then it answers 504).
 */
#define CL_BATCH_F_DEFER 0x0001u

#define CL_BATCH_MAGIC "CLB1"
#define CL_BATCH_HDR_LEN 8
#define CL_BATCH_ITEM_HDR_LEN 16

typedef struct cl_batch_item {
    uint64_t peer;
    uint16_t transport; /**< cl_transport_t */
    uint16_t flags;
    const uint8_t *msg;
    size_t len;
} cl_batch_item_t;

/** Starts a batch in out (writes the header with count 0). */
cl_status_t cl_batch_begin(uint8_t *out, size_t out_size, size_t *out_len) CL_MUST_CHECK;
/** Appends one item, updating the count. */
cl_status_t cl_batch_add(uint8_t *out, size_t out_size, size_t *out_len,
                         const cl_batch_item_t *item) CL_MUST_CHECK;
/**
 * Iterates a batch: *pos starts at 0; returns CL_OK with the next item,
 * CL_ERR_NOT_FOUND at the end, CL_ERR_BAD_INPUT for any inconsistency (the
 * whole batch is validated by cl_batch_validate first).
 */
cl_status_t cl_batch_next(const uint8_t *batch, size_t len, size_t *pos,
                          cl_batch_item_t *item) CL_MUST_CHECK;
/** Validates magic, count and every length; *count receives the item count. */
cl_status_t cl_batch_validate(const uint8_t *batch, size_t len, size_t *count) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
