/*
 * tests/support/lying_host.h - a test fixture implementing cl_host_ops_t
 * (include/cloister/core.h): an honest in-memory host plus configurable lies,
 * so that tests can check that the core fails safe under every lie
 * (DESIGN.md "The trust boundary", rule 3). TEST CODE: it does I/O-free
 * in-memory work only, aborts on out-of-memory, and is not thread-safe.
 *
 * Honest behaviour (what the contract in core.h says):
 *   log      records by counter; log_append stores (replacing a record with
 *            the same counter), log_read returns the record with the smallest
 *            counter >= the one asked, log_compact drops records < before
 *   snapshot one current snapshot; every snapshot ever put is kept in a
 *            history so an older one can be replayed (LH_LIE_OLD_SNAPSHOT)
 *   archive  rows with ids 1, 2, ...; archive_scan filters and frames as
 *            core.h says
 *   send     every message is recorded (lh_sent)
 *   clock    a manual clock (lh_set_time / lh_advance), starts at
 *            LH_DEFAULT_TIME_MS and does not move by itself
 *   quote    delegated to a hook (lh_set_quote); CL_ERR_UNSUPPORTED without one
 *   log_line kept (the last LH_MAX_LINES lines)
 *
 * Lies are switched on with lh_set_lie(lh, LH_LIE_x, param) and off with
 * param 0 (or lh_clear_lies); several can be on at once. Failures are set
 * with lh_fail_after(lh, op, n): the first n calls of op (counted from the
 * lh_fail_after call; LH_OP_ANY counts every op) succeed, every later one
 * returns CL_ERR_PERSIST without doing anything, until lh_fail_clear.
 * The store can also be edited directly (lh_put_record, lh_drop,
 * lh_corrupt_*), which is how truncation, substitution and tampering that
 * persist across reads are made.
 */
#ifndef CLOISTER_TEST_LYING_HOST_H
#define CLOISTER_TEST_LYING_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"

#define LH_DEFAULT_TIME_MS INT64_C(1700000000000)
#define LH_MAX_LINES 64

typedef struct lh lh_t;

/** The ocalls, for lh_fail_after and lh_calls. */
typedef enum lh_op {
    LH_OP_LOG_APPEND = 0,
    LH_OP_LOG_READ,
    LH_OP_LOG_COMPACT,
    LH_OP_SNAPSHOT_PUT,
    LH_OP_SNAPSHOT_GET,
    LH_OP_ARCHIVE_PUT,
    LH_OP_ARCHIVE_SCAN,
    LH_OP_SEND,
    LH_OP_TIME_NOW,
    LH_OP_QUOTE,
    LH_OP_COUNT_,
    LH_OP_ANY = LH_OP_COUNT_, /**< lh_fail_after: count calls of every op together */
} lh_op_t;

/** Lies; `param` of lh_set_lie, 0 = off. */
typedef enum lh_lie {
    /** log_read, snapshot_get, archive_scan, quote: report param bytes fewer than written. */
    LH_LIE_SHORT_READ = 0,
    /** the same reads: write what fits, then claim *len = size + param (more than the buffer). */
    LH_LIE_LEN_OVER_SIZE,
    /** the same reads: claim param bytes more than written, capped at size (stale bytes). */
    LH_LIE_LEN_OVER_WRITTEN,
    /** log_read(param): return record param-1's blob but claim it is record param. */
    LH_LIE_STALE,
    /** log_read(param): return record param-1 with its true counter (a record seen twice). */
    LH_LIE_DUPLICATE,
    /** log_read: records param and param+1 swap places (each claimed under the asked counter). */
    LH_LIE_REORDER,
    /** log_read: records with counter >= param are hidden (tail truncation at read time). */
    LH_LIE_HIDE_TAIL,
    /** log_read: record param is hidden (the read skips to the next one: a gap). */
    LH_LIE_HIDE_ONE,
    /** log_read, snapshot_get: byte (param-1) of the returned blob is flipped (store untouched). */
    LH_LIE_CORRUPT_READ,
    /** snapshot_get: return snapshot number param-1 of the history (1 = the first ever put). */
    LH_LIE_OLD_SNAPSHOT,
    /** snapshot_get: say CL_ERR_NOT_FOUND although there is a snapshot. */
    LH_LIE_HIDE_SNAPSHOT,
    /** log_append: say CL_OK but store nothing (a lost write). */
    LH_LIE_LOSE_APPEND,
    /** log_compact: say CL_OK but drop nothing. */
    LH_LIE_IGNORE_COMPACT,
    /** Always say CL_ERR_BUFFER_TOO_SMALL: param bit 1 log_read, bit 2 snapshot_get. */
    LH_LIE_ALWAYS_TOO_SMALL,
    /** time_now: every call returns the previous answer minus param ms (time runs backwards). */
    LH_LIE_CLOCK_BACKWARDS,
    /** time_now: adds param ms (negative: the past) to the honest clock. */
    LH_LIE_CLOCK_OFFSET,
    /** archive_scan: ignore the tag/bucket/after_id filter (returns every row). */
    LH_LIE_SCAN_NO_FILTER,
    /** archive_scan: the len field of the first returned row is increased by param. */
    LH_LIE_SCAN_BAD_FRAME,
    /** archive_put: say CL_OK (and return ids) but store nothing. */
    LH_LIE_LOSE_ARCHIVE,
    LH_LIE_COUNT_,
} lh_lie_t;

/** A new honest host (aborts on out-of-memory). */
lh_t *lh_new(void);
void lh_free(lh_t *lh);
/** The ocall table (ctx = lh), valid while lh lives. */
const cl_host_ops_t *lh_ops(lh_t *lh);

/** Switches a lie on (param != 0) or off (param 0). */
void lh_set_lie(lh_t *lh, lh_lie_t lie, int64_t param);
/** Switches every lie off (stored data and failures are kept). */
void lh_clear_lies(lh_t *lh);
/** After n more successful calls of op (or of any op), every call fails with CL_ERR_PERSIST. */
void lh_fail_after(lh_t *lh, lh_op_t op, unsigned long n);
/** No more injected failures. */
void lh_fail_clear(lh_t *lh);
/** Calls of op since lh_new (LH_OP_ANY: all ops), failed ones included. */
unsigned long lh_calls(const lh_t *lh, lh_op_t op);

/* ---- the log ---- */
/** Number of stored records. */
size_t lh_record_count(const lh_t *lh);
/** Lowest / highest stored counter (0 when empty). */
uint64_t lh_first_counter(const lh_t *lh);
uint64_t lh_last_counter(const lh_t *lh);
/** The stored record with this counter (pointer valid until the store changes); 0 if absent. */
int lh_get_record(const lh_t *lh, uint64_t counter, const uint8_t **blob, size_t *len);
/** Stores (or replaces) a record directly. */
void lh_put_record(lh_t *lh, uint64_t counter, const uint8_t *blob, size_t len);
/** Copies record `counter` of src into dst (replacing dst's); 0 if src has none. */
int lh_copy_record(lh_t *dst, const lh_t *src, uint64_t counter);
/** Drops stored records with from <= counter <= to. */
void lh_drop(lh_t *lh, uint64_t from, uint64_t to);
/** XORs byte `offset` (modulo the length) of a stored record with x (x != 0); 0 if absent. */
int lh_corrupt_record(lh_t *lh, uint64_t counter, size_t offset, uint8_t x);

/* ---- the snapshot ---- */
/** The current snapshot; 0 if none. */
int lh_get_snapshot(const lh_t *lh, const uint8_t **blob, size_t *len);
/** Number of snapshots ever put (the history). */
size_t lh_snapshot_history(const lh_t *lh);
/** Replaces the current snapshot (NULL: removes it); not added to the history. */
void lh_set_snapshot(lh_t *lh, const uint8_t *blob, size_t len);
/** Makes history entry i (0 = first) current again (a persistent rollback); 0 if absent. */
int lh_restore_snapshot(lh_t *lh, size_t i);
/** XORs a byte of the current snapshot; 0 if none. */
int lh_corrupt_snapshot(lh_t *lh, size_t offset, uint8_t x);

/* ---- archive, send, clock, quote, log lines ---- */
size_t lh_archive_count(const lh_t *lh);
/** Row i (0-based, in id order). */
int lh_archive_get(const lh_t *lh, size_t i, uint64_t *id, uint8_t tag[16], uint64_t *bucket,
                   const uint8_t **data, size_t *len);
size_t lh_sent_count(const lh_t *lh);
/** Message i (0-based) that the core sent. */
int lh_sent(const lh_t *lh, size_t i, uint64_t *peer, uint16_t *transport, const uint8_t **msg,
            size_t *len);
void lh_set_time(lh_t *lh, int64_t unix_ms);
void lh_advance(lh_t *lh, int64_t ms);
/** Installs the quote ocall implementation (e.g. a wrapper around cl_sim_qe_quote). */
typedef cl_status_t (*lh_quote_fn)(void *arg, const uint8_t *report, size_t report_len,
                                   uint8_t *quote, size_t size, size_t *len);
void lh_set_quote(lh_t *lh, lh_quote_fn fn, void *arg);
size_t lh_line_count(const lh_t *lh);
/** Line i (0 = oldest kept) and its level; NULL if absent. */
const char *lh_line(const lh_t *lh, size_t i, int *level);

#endif
