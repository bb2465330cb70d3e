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

/** Routes log lines (default: stderr) - set before handing the ops to a core. */
void cl_files_set_logger(cl_files_t *f, cl_host_log_fn fn, void *ctx);

/** Routes the send() ocall (default: CL_ERR_UNSUPPORTED). */
void cl_files_set_send(cl_files_t *f, cl_host_send_fn fn, void *ctx);

/** The ocall table (ctx = f); valid until cl_files_close. */
const cl_host_ops_t *cl_files_ops(cl_files_t *f);

/** Closes files and frees f (NULL is fine). */
void cl_files_close(cl_files_t *f);

#ifdef __cplusplus
}
#endif
#endif
