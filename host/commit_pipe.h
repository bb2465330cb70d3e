/*
 * host/commit_pipe.h - pipelined group commit of archive rows. UNTRUSTED HOST
 * SIDE, internal to host/.
 *
 * Why: an acknowledged event must be durable first, so every batch of the
 * core's archive rows is committed (one fsync) before that batch's responses
 * leave. Done synchronously, the daemon's one thread waits for the disk after
 * every batch and the rate is bounded by the flush, not the CPU. The pipe
 * moves the commit to a writer thread: the daemon copies the rows of a batch
 * here (cl_pipe_put, during the core's archive_put ocall), closes the batch
 * (cl_pipe_submit -> ticket) and goes on with the next batch while the writer
 * commits; the batch's responses are parked by the endpoint until its ticket
 * is resolved. Batches queued while a commit runs are merged into the next
 * commit, so the commit grows with the load (one fsync for many batches).
 *
 * Guarantees:
 * - tickets are resolved in order; a ticket is resolved when its rows are
 *   durable (ok) or their commit failed (not ok: nothing of those batches may
 *   be acknowledged; the rows are rolled back and their ids are not reused);
 * - a batch without rows gets the ticket of the last submitted batch, so a
 *   response never leaves before the rows archived before it are durable;
 * - bounded: at most `max_queued` submitted, unresolved batches; cl_pipe_submit
 *   waits for the writer when the queue is full (back-pressure on the loop).
 *
 * Threads: put/submit/wait/resolved/ticket_ok/fd/close from the daemon's
 * thread; the write callback runs on the writer thread only.
 */
#ifndef CLOISTER_HOST_COMMIT_PIPE_H
#define CLOISTER_HOST_COMMIT_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"
#include "cloister/status.h"
#include "storage.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Writes rows recs[0..n) with their ids in ONE transaction and commits it
 * (durable on CL_OK); on failure nothing of it may remain. Writer thread only.
 */
typedef cl_status_t (*cl_pipe_write_fn)(void *ctx, const cl_archive_rec_t *recs,
                                        const uint64_t *ids, size_t n);

typedef struct cl_pipe cl_pipe_t;

#define CL_PIPE_MAX_QUEUED 64 /**< default bound on unresolved batches */

/** Starts the writer thread. max_queued 0 = CL_PIPE_MAX_QUEUED. */
cl_status_t cl_pipe_open(cl_pipe_write_fn write, void *write_ctx, size_t max_queued,
                         cl_host_log_fn log, void *log_ctx, cl_pipe_t **out) CL_MUST_CHECK;
/** Copies rows into the open batch (ids already assigned by the caller). */
cl_status_t cl_pipe_put(cl_pipe_t *p, const cl_archive_rec_t *recs, const uint64_t *ids,
                        size_t n) CL_MUST_CHECK;
/** True when the open batch holds rows that are not yet submitted. */
bool cl_pipe_dirty(const cl_pipe_t *p);
/** Closes the open batch and hands it to the writer; *ticket identifies it. */
cl_status_t cl_pipe_submit(cl_pipe_t *p, uint64_t *ticket) CL_MUST_CHECK;
/** Blocks until `ticket` is resolved: CL_OK durable, CL_ERR_PERSIST failed. */
cl_status_t cl_pipe_wait(cl_pipe_t *p, uint64_t ticket) CL_MUST_CHECK;
/** Every ticket <= the returned value is resolved (non-blocking). */
uint64_t cl_pipe_resolved(cl_pipe_t *p);
/** For a resolved ticket: were its rows committed? */
bool cl_pipe_ticket_ok(cl_pipe_t *p, uint64_t ticket);
/** Readable (an eventfd) when tickets were resolved since the last cl_pipe_ack_fd. */
int cl_pipe_fd(const cl_pipe_t *p);
/** Clears the fd's readiness (call before looking at cl_pipe_resolved). */
void cl_pipe_ack_fd(cl_pipe_t *p);
/** Counters: batches, commits, rows, failed commits. */
typedef struct cl_pipe_stats {
    uint64_t batches, commits, rows, failed_commits, full_waits;
} cl_pipe_stats_t;
void cl_pipe_get_stats(cl_pipe_t *p, cl_pipe_stats_t *out);
/**
 * Commits what was submitted (an open, unsubmitted batch is discarded: it was
 * never acknowledged), stops the writer, frees. NULL is fine.
 */
void cl_pipe_close(cl_pipe_t *p);

#ifdef __cplusplus
}
#endif
#endif
