/*
 * host/storage.h - storage backends behind the core's ocall table
 * (cl_host_ops_t, cloister/core.h). UNTRUSTED HOST SIDE.
 *
 * cl_files_*: the default file backend. Everything it stores is sealed or
 * encrypted by the core; it only keeps the bytes durable and hands them back.
 * It still validates every size it reads from disk (a corrupted or hostile
 * file must not make the daemon allocate or read without bound), because the
 * daemon has to stay up even when the disk lies.
 *
 * Layout of the data directory (created 0700, files 0600):
 *   log/<counter, 20 digits>.rec  one sealed log record per file:
 *                                 [u64 counter][u32 len][len bytes][u32 crc32]
 *                                 written as .tmp, fsync, rename, fsync dir
 *   snapshot                      [u32 len][len bytes][u32 crc32], replaced via
 *                                 snapshot.tmp + fsync + rename + fsync dir
 *   archive.dat                   append-only [u64 id][16 tag][u64 bucket]
 *                                 [u32 len][len bytes], fsync per archive_put
 * All integers little-endian. A record that fails its checks (torn write,
 * bad CRC, length over CL_CORE_MAX_RECORD / CL_CORE_MAX_SNAPSHOT) is never
 * returned: it is skipped (log) or truncated away (archive tail) with a log
 * line.
 */
#ifndef CLOISTER_HOST_STORAGE_H
#define CLOISTER_HOST_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Where the host's non-sensitive log lines go. `line` is the structured
 * part after timestamp and level, e.g. `msg="log append failed" errno=28`.
 */
typedef void (*cl_host_log_fn)(void *ctx, int level, const char *line);

/** Delivery of core-originated messages (notifications) to a transport. */
typedef cl_status_t (*cl_host_send_fn)(void *ctx, uint64_t peer, uint16_t transport,
                                       const uint8_t *msg, size_t len);

typedef struct cl_files cl_files_t;

/**
 * Opens (creating if needed) the data directory `dir`: scans the log
 * directory, indexes archive.dat (truncating a torn tail), removes stale
 * *.tmp files. CL_ERR_PERSIST when the directory cannot be created or read.
 */
cl_status_t cl_files_open(const char *dir, cl_files_t **out) CL_MUST_CHECK;

/** cl_files_open with a logger from the start (open reports torn tails, stale files). */
cl_status_t cl_files_open_logged(const char *dir, cl_host_log_fn log, void *log_ctx,
                                 cl_files_t **out) CL_MUST_CHECK;

/** cl_files_open_logged without archive.dat (CL_FILES_NO_ARCHIVE: archive_* are
 * NULL) and/or without log/ + snapshot (CL_FILES_NO_LOG: log_* and snapshot_*
 * are NULL) - for storage_select.c when another backend provides them. */
#define CL_FILES_NO_ARCHIVE 1u
#define CL_FILES_NO_LOG 2u
cl_status_t cl_files_open_flags(const char *dir, unsigned flags, cl_host_log_fn log,
                                void *log_ctx, cl_files_t **out) CL_MUST_CHECK;

/** Routes log lines (default: stderr) - set before handing the ops to a core. */
void cl_files_set_logger(cl_files_t *f, cl_host_log_fn fn, void *ctx);

/** Routes the send() ocall (default: CL_ERR_UNSUPPORTED). */
void cl_files_set_send(cl_files_t *f, cl_host_send_fn fn, void *ctx);

/** The ocall table (ctx = f); valid until cl_files_close. */
const cl_host_ops_t *cl_files_ops(cl_files_t *f);

/** Closes files and frees f (NULL is fine). */
void cl_files_close(cl_files_t *f);

/* ------------------------------------------------------------ SQLite archive */

/*
 * archive_sqlite.c: the default archive. <dir>/archive.sqlite (0600, WAL,
 * synchronous=FULL, 1 KiB pages for new files), tables schema_version(version)
 * = 2, events(id INTEGER PRIMARY KEY, tag BLOB, bucket INTEGER, data BLOB)
 * without a secondary index, events_idx(tag, bucket, id) WITHOUT ROWID and
 * archive_meta('indexed_upto'). A commit appends to events only (its last
 * pages); once 16,384 rows are unindexed they are merged into events_idx in
 * one sorted transaction (each index leaf written once per merge, not once
 * per commit); a scan reads events_idx plus the unmerged tail. Version 1
 * files (one index on events) are migrated at open. archive_put inserts into
 * an open transaction (BEGIN on the first put of a batch); cl_sqlite_sync
 * commits it (durable on return). Buckets above INT64_MAX are refused
 * (buckets are hours).
 */
typedef struct cl_sqlite cl_sqlite_t;

/** Opens or creates <dir>/archive.sqlite (dir is created 0700 if missing).
 * CL_ERR_PERSIST (and a log line) when it cannot, or when the file carries a
 * newer schema version than this build knows. */
cl_status_t cl_sqlite_open(const char *dir, cl_host_log_fn log, void *log_ctx,
                           cl_sqlite_t **out) CL_MUST_CHECK;
/** An ocall table with only archive_put / archive_scan set (ctx = a). */
const cl_host_ops_t *cl_sqlite_ops(cl_sqlite_t *a);
/** Commits the open batch (no-op when none). CL_ERR_PERSIST: the batch is rolled back. */
cl_status_t cl_sqlite_sync(cl_sqlite_t *a) CL_MUST_CHECK;
/** Rolls back an unsynced batch (it was never acknowledged), closes, frees. */
void cl_sqlite_close(cl_sqlite_t *a);

typedef struct cl_pipe cl_pipe_t; /* commit_pipe.h */
/**
 * Pipelined group commit (commit_pipe.h): from now on archive_put only copies
 * the rows (ids assigned at once, as before) and a writer thread with its own
 * connection inserts and commits them, batch after batch; archive_scan keeps
 * the daemon thread's connection and sees committed rows. cl_sqlite_sync then
 * means submit + wait. max_queued 0 = the pipe's default.
 */
cl_status_t cl_sqlite_start_pipeline(cl_sqlite_t *a, size_t max_queued) CL_MUST_CHECK;
/** Rows left unindexed before they are merged into events_idx (0 = default 16384; tests). */
void cl_sqlite_set_merge_rows(cl_sqlite_t *a, size_t rows);
/** The pipe after cl_sqlite_start_pipeline, else NULL. */
cl_pipe_t *cl_sqlite_pipe(cl_sqlite_t *a);

/* ------------------------------------------------------------ PostgreSQL */

/*
 * storage_pg.c (libpq): tables cloister_schema(version) = 1,
 * cloister_events(id BIGSERIAL, tag BYTEA, bucket BIGINT, data BYTEA),
 * cloister_log(counter BIGINT PRIMARY KEY, rec BYTEA),
 * cloister_snapshot(id INT PRIMARY KEY CHECK (id = 1), blob BYTEA).
 * log_append / log_compact / snapshot_put commit before returning;
 * archive_put goes into an open transaction committed by cl_pg_sync (group
 * commit) - so log and archive must not share one cl_pg_t when both are in
 * use: open one per role. A lost connection is CL_ERR_PERSIST plus a log
 * line, and the next call reconnects. The conninfo is never logged.
 */
typedef struct cl_pg cl_pg_t;

/** Connects and creates the schema if needed. CL_ERR_PERSIST when the server
 * cannot be reached or carries a newer schema version. */
cl_status_t cl_pg_open(const char *conninfo, cl_host_log_fn log, void *log_ctx,
                       cl_pg_t **out) CL_MUST_CHECK;
/** The ocall table: log_*, snapshot_*, archive_* (ctx = p), the rest NULL. */
const cl_host_ops_t *cl_pg_ops(cl_pg_t *p);
/** Commits the open archive batch (no-op when none). */
cl_status_t cl_pg_sync(cl_pg_t *p) CL_MUST_CHECK;
/** Rolls back an unsynced batch, disconnects, frees (NULL is fine). */
void cl_pg_close(cl_pg_t *p);

/* ------------------------------------------------------------ selection */

/*
 * storage_select.c: ONE ocall table built from configuration.
 *   log      "files" (default: log/ + snapshot in data_dir) | "pg"
 *   archive  "sqlite" (default: data_dir/archive.sqlite) | "pg" | "files"
 *            (data_dir/archive.dat)
 * The data directory is always opened (created 0700 and flock'ed: one daemon
 * per data dir); send/time/quote/log_line come from the file backend.
 * Group commit: the daemon calls cl_storage_sync after every handle() batch
 * (and tick) and sends that batch's responses only when it returned CL_OK.
 */
typedef struct cl_storage_config {
    const char *data_dir;    /**< required */
    const char *log;         /**< NULL = "files" */
    const char *archive;     /**< NULL = "sqlite" */
    const char *pg_conninfo; /**< required when log or archive is "pg"; never logged */
    cl_host_log_fn log_fn;   /**< every backend's log lines; NULL = stderr */
    void *log_ctx;
} cl_storage_config_t;

typedef struct cl_storage cl_storage_t;

/** CL_ERR_INVALID_ARG for an unknown backend name or a missing conninfo. */
cl_status_t cl_storage_open(const cl_storage_config_t *cfg, cl_storage_t **out) CL_MUST_CHECK;
/** The combined ocall table (ctx = s); valid until cl_storage_close. */
const cl_host_ops_t *cl_storage_ops(cl_storage_t *s);
/** Makes every archive_put since the last sync durable (group commit). */
cl_status_t cl_storage_sync(cl_storage_t *s) CL_MUST_CHECK;
/**
 * Pipelined group commit for the archive (SQLite only: CL_ERR_UNSUPPORTED for
 * the others, which stay synchronous). See cl_sqlite_start_pipeline.
 */
cl_status_t cl_storage_start_pipeline(cl_storage_t *s, size_t max_queued) CL_MUST_CHECK;
/** The archive's commit pipe, or NULL when commits are synchronous. */
cl_pipe_t *cl_storage_pipe(cl_storage_t *s);
/**
 * Closes the batch: with a pipe, hands it to the writer and returns its
 * ticket (resolved later, commit_pipe.h); without, commits it now
 * (cl_storage_sync) and returns ticket 0 ("already durable").
 */
cl_status_t cl_storage_submit(cl_storage_t *s, uint64_t *ticket) CL_MUST_CHECK;
/** Routes the send() ocall (default: CL_ERR_UNSUPPORTED). */
void cl_storage_set_send(cl_storage_t *s, cl_host_send_fn fn, void *ctx);
/** "files+sqlite" etc., for the start-up log line. */
const char *cl_storage_describe(const cl_storage_t *s);
/** Rolls back an unsynced batch, closes every backend, frees (NULL is fine). */
void cl_storage_close(cl_storage_t *s);

#ifdef __cplusplus
}
#endif
#endif
