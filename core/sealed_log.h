/*
 * core/sealed_log.h - the core's durable state: a sealed, hash-chained,
 * counter-numbered log of model mutations plus periodic sealed snapshots,
 * stored by the host through cl_host_ops (DESIGN.md "Model, rules and
 * scripts"; the full design and its limits are in docs/sealed-state.md).
 *
 * Record i (counter i >= 1) is cl_seal()ed with envelope
 *   purpose LOG, epoch = the writer's boot epoch, counter = i,
 *   extra = chain_{i-1} (32 bytes)
 * over the plaintext  type(1) || body:
 *   type CL_SLOG_REC_EPOCH (0x01): body = u64le(epoch), written once per boot
 *   type CL_SLOG_REC_STATE (0x02): body = the state layer's payload (opaque)
 * and chain_i = SHA-256("CLOISTER-LOG-v1" || chain_{i-1} || u64le(i) || sealed blob_i),
 * chain_0 = 32 zero bytes (or the snapshot's chain for records after it).
 * A sealed record is at most CL_CORE_MAX_RECORD bytes, so a state payload
 * is at most CL_SLOG_MAX_PAYLOAD bytes.
 *
 * A snapshot is cl_seal()ed with purpose SNAPSHOT, counter = last record it
 * covers, epoch = the epoch current when it was taken, extra = chain_counter;
 * its plaintext is the state layer's snapshot (opaque). It is written with
 * snapshot_put, then the log is compacted with log_compact(counter + 1);
 * a crash in between is harmless (boot reads from counter + 1 on).
 *
 * Boot (cl_slog_open): read the snapshot (if any) and unseal it, then read
 * records counter+1, counter+2, ... until the host says NOT_FOUND; every
 * record must have exactly the next counter (host label and sealed
 * envelope), chain to the previous one, unseal under this enclave's key with
 * the configured key policy, and have the right epoch: an EPOCH record
 * strictly raises the epoch, a STATE record carries the current epoch. Then
 * a new epoch (previous max + 1, 1 for a fresh store) is started by
 * appending an EPOCH record. Detected: reordering, substitution, gaps,
 * records from another core or platform, a snapshot older than the log's
 * compaction point, a tampered or truncated blob, every host length lie.
 * Not detectable without an external freshness authority (documented in
 * docs/sealed-state.md): the host dropping a suffix of the log (rollback to
 * an earlier consistent state), presenting an entire older snapshot+log, or
 * running two copies of the state (fork).
 *
 * Status codes: CL_ERR_PERSIST when an ocall failed or broke its contract
 * (fault HOST), CL_ERR_AUTH for an integrity failure (SNAPSHOT, GAP, CHAIN,
 * RECORD, EPOCH), the state layer's own status for APPLY, CL_ERR_FULL when
 * a work buffer cannot be allocated, CL_ERR_INVALID_ARG / CL_ERR_STATE for
 * API misuse.
 *
 * No I/O, no syscalls: storage only through cl_host_ops; every byte and
 * length the host returns is checked before use. Not thread-safe: one
 * cl_slog_t is used by one thread at a time.
 */
#ifndef CLOISTER_CORE_SEALED_LOG_H
#define CLOISTER_CORE_SEALED_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"
#include "cloister/tee.h"

#define CL_SLOG_CHAIN_LEN 32
/** Domain-separation tag of the chain hash (without NUL). */
#define CL_SLOG_CHAIN_TAG "CLOISTER-LOG-v1"
/** Record types (first plaintext byte of a sealed record). */
#define CL_SLOG_REC_EPOCH 0x01
#define CL_SLOG_REC_STATE 0x02
/** Largest state payload of one record (the sealed record stays <= CL_CORE_MAX_RECORD). */
#define CL_SLOG_MAX_PAYLOAD (CL_CORE_MAX_RECORD - 1024)
/** Largest snapshot payload (the sealed snapshot stays <= CL_CORE_MAX_SNAPSHOT). */
#define CL_SLOG_MAX_SNAPSHOT_PAYLOAD (CL_CORE_MAX_SNAPSHOT - 1024)

/** Callbacks into the state layer during boot. */
typedef struct cl_slog_apply {
    /** The snapshot's payload (called at most once, before any record). */
    cl_status_t (*restore)(void *arg, const uint8_t *state, size_t len);
    /**
     * One STATE record's payload, in counter order (EPOCH records are
     * internal and never passed). A non-OK status aborts the boot (fault APPLY).
     */
    cl_status_t (*apply)(void *arg, uint64_t counter, const uint8_t *rec, size_t len);
    void *arg;
} cl_slog_apply_t;

typedef struct cl_slog {
    const cl_tee_platform_t *platform;
    const cl_host_ops_t *host;
    uint16_t policy;        /**< sealing policy (CL_SGX_KEYPOLICY_*), also required on unseal */
    uint64_t epoch;         /**< this boot's epoch */
    uint64_t counter;       /**< last record counter written or replayed */
    uint64_t snap_counter;  /**< counter covered by the last snapshot (0 = none) */
    uint8_t chain[CL_SLOG_CHAIN_LEN]; /**< chain_counter */
    uint8_t *buf;           /**< work buffer: sealed record | plaintext record */
    size_t buf_size;        /**< 2 * CL_CORE_MAX_RECORD */
} cl_slog_t;

/** Why a boot failed (more precise than the status; for the host log). */
typedef enum cl_slog_fault {
    CL_SLOG_FAULT_NONE = 0,
    CL_SLOG_FAULT_HOST,          /**< an ocall failed or broke its contract (e.g. *len > size) */
    CL_SLOG_FAULT_SNAPSHOT,      /**< snapshot malformed, tampered or from elsewhere */
    CL_SLOG_FAULT_GAP,           /**< a record counter is missing or out of order */
    CL_SLOG_FAULT_CHAIN,         /**< a record does not chain to its predecessor */
    CL_SLOG_FAULT_RECORD,        /**< a record is malformed, tampered or from elsewhere */
    CL_SLOG_FAULT_EPOCH,         /**< epochs go backwards or a record has the wrong epoch */
    CL_SLOG_FAULT_APPLY,         /**< the state layer refused a payload */
} cl_slog_fault_t;

/**
 * Boots: snapshot + replay, then starts a new epoch (appends an EPOCH
 * record). A fresh store (no snapshot, no records) starts at epoch 1.
 * `fault` may be NULL. On failure nothing is appended, *l holds nothing to
 * free, *fault says why, and the state layer must discard whatever restore()
 * and apply() built (the boot is all-or-nothing from its point of view).
 */
cl_status_t cl_slog_open(cl_slog_t *l, const cl_tee_platform_t *platform,
                         const cl_host_ops_t *host, uint16_t policy, const cl_slog_apply_t *cb,
                         cl_slog_fault_t *fault) CL_MUST_CHECK;
/**
 * Seals and appends one STATE record (1 <= len <= CL_SLOG_MAX_PAYLOAD)
 * durably: returns CL_OK only after log_append returned CL_OK. On any
 * failure counter and chain are unchanged, so the same or another record can
 * be appended again (an honest host replaces a record it failed to commit).
 */
cl_status_t cl_slog_append(cl_slog_t *l, const uint8_t *rec, size_t len) CL_MUST_CHECK;
/**
 * Seals a snapshot of `state` (len <= CL_SLOG_MAX_SNAPSHOT_PAYLOAD) covering
 * every record so far, stores it with snapshot_put, then compacts the log.
 * CL_ERR_PERSIST if snapshot_put failed (the log is untouched and still
 * complete). A failing log_compact is not an error: the snapshot is durable
 * and the next boot skips the records it covers.
 */
cl_status_t cl_slog_snapshot(cl_slog_t *l, const uint8_t *state, size_t len) CL_MUST_CHECK;
/** Number of records since the last snapshot. */
uint64_t cl_slog_pending(const cl_slog_t *l);
/** Wipes and frees (safe on a zeroed or already closed cl_slog_t). */
void cl_slog_close(cl_slog_t *l);
/** Stable name of a fault, e.g. "chain" (never NULL). */
const char *cl_slog_fault_str(cl_slog_fault_t f);

#endif
