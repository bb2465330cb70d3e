/*
 * commit_pipe.c - pipelined group commit (commit_pipe.h). UNTRUSTED HOST SIDE.
 *
 * One mutex guards the queue, the free list and the resolution state; the
 * writer takes every queued batch at once, gathers their rows into one array
 * and calls the backend's write (one transaction, one fsync) outside the lock.
 * Batch buffers are recycled through a free list, so the steady state does no
 * allocation. Row bytes are ciphertext from the core; they are copied, never
 * looked at.
 */
#define _GNU_SOURCE
#include "commit_pipe.h"
#include "storage_common.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct prow {
    uint64_t id, bucket;
    uint8_t tag[16];
    size_t off, len; /* into the batch's arena */
} prow_t;

typedef struct pbatch {
    struct pbatch *next;
    uint64_t ticket;
    prow_t *rows;
    size_t n, cap;
    uint8_t *arena;
    size_t used, arena_cap;
} pbatch_t;

#define FAILED_RANGES 64

struct cl_pipe {
    cl_pipe_write_fn write;
    void *write_ctx;
    cl_host_log_fn log;
    void *log_ctx;
    size_t max_queued;
    int efd;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t work_cv; /* writer: a batch was queued or stop */
    pthread_cond_t done_cv; /* daemon: a ticket was resolved, or the queue has room */

    /* guarded by mu */
    pbatch_t *head, *tail; /* submitted, not yet taken by the writer */
    size_t unresolved;     /* submitted batches not yet resolved */
    pbatch_t *free_list;
    uint64_t resolved;     /* every ticket <= resolved is resolved */
    struct {
        uint64_t lo, hi;
    } failed[FAILED_RANGES]; /* recent failed ticket ranges (ring) */
    size_t failed_next;
    uint64_t failed_forgotten; /* tickets <= this may have failed: treated as failed */
    bool stop;
    cl_pipe_stats_t stats;

    /* daemon thread only */
    pbatch_t *open;      /* the batch being filled */
    uint64_t submitted;  /* last ticket handed out */

    /* writer thread only */
    cl_archive_rec_t *wrecs;
    uint64_t *wids;
    size_t wrecs_cap, wids_cap;
};

static void plog(const cl_pipe_t *p, int level, const char *line)
{
    if (p->log != NULL)
        p->log(p->log_ctx, level, line);
    else
        cl_store_default_log(NULL, level, line);
}

static void batch_free(pbatch_t *b)
{
    if (b == NULL)
        return;
    free(b->rows);
    free(b->arena);
    free(b);
}

/* ------------------------------------------------------------ writer */

/* Gathers the rows of a list of batches into the writer's arrays. */
static cl_status_t gather(cl_pipe_t *p, pbatch_t *list, size_t *n_out)
{
    size_t n = 0;
    for (pbatch_t *b = list; b != NULL; b = b->next)
        n += b->n;
    cl_archive_rec_t *r = cl_grow(p->wrecs, &p->wrecs_cap, n, sizeof *r, 256);
    if (r != NULL)
        p->wrecs = r;
    uint64_t *ids = cl_grow(p->wids, &p->wids_cap, n, sizeof *ids, 256);
    if (ids != NULL)
        p->wids = ids;
    if (r == NULL || ids == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    size_t k = 0;
    for (pbatch_t *b = list; b != NULL; b = b->next)
        for (size_t i = 0; i < b->n; i++, k++) {
            const prow_t *row = &b->rows[i];
            p->wrecs[k].bucket = row->bucket;
            memcpy(p->wrecs[k].tag, row->tag, 16);
            p->wrecs[k].data = b->arena + row->off;
            p->wrecs[k].len = row->len;
            p->wids[k] = row->id;
        }
    *n_out = n;
    return CL_OK;
}

static void *writer_main(void *arg)
{
    cl_pipe_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stop)
            pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->head == NULL)
            break; /* stop, and nothing left */
        pbatch_t *list = p->head;
        p->head = p->tail = NULL;
        pthread_mutex_unlock(&p->mu);

        uint64_t lo = list->ticket, hi = list->ticket;
        size_t nb = 0;
        for (pbatch_t *b = list; b != NULL; b = b->next) {
            hi = b->ticket;
            nb++;
        }
        size_t n = 0;
        cl_status_t st = gather(p, list, &n);
        if (st == CL_OK)
            st = p->write(p->write_ctx, p->wrecs, p->wids, n);
        if (st != CL_OK) {
            char line[160];
            snprintf(line, sizeof line,
                     "msg=\"archive group commit failed: its batches are not acknowledged\" "
                     "batches=%zu rows=%zu",
                     nb, n);
            plog(p, CL_LOG_ERROR, line);
        }

        pthread_mutex_lock(&p->mu);
        if (st != CL_OK) {
            size_t i = p->failed_next % FAILED_RANGES;
            if (p->failed_next >= FAILED_RANGES && p->failed[i].hi > p->failed_forgotten)
                p->failed_forgotten = p->failed[i].hi; /* conservative from now on */
            p->failed[i].lo = lo;
            p->failed[i].hi = hi;
            p->failed_next++;
            p->stats.failed_commits++;
        } else {
            p->stats.rows += n;
        }
        p->stats.commits++;
        p->resolved = hi;
        p->unresolved -= nb;
        while (list != NULL) { /* recycle */
            pbatch_t *next = list->next;
            list->n = 0;
            list->used = 0;
            list->next = p->free_list;
            p->free_list = list;
            list = next;
        }
        pthread_cond_broadcast(&p->done_cv);
        pthread_mutex_unlock(&p->mu);
        uint64_t one = 1;
        ssize_t w;
        do {
            w = write(p->efd, &one, sizeof one);
        } while (w < 0 && errno == EINTR);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ------------------------------------------------------------ daemon side */

cl_status_t cl_pipe_open(cl_pipe_write_fn write, void *write_ctx, size_t max_queued,
                         cl_host_log_fn log, void *log_ctx, cl_pipe_t **out)
{
    if (write == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    cl_pipe_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return CL_FAIL(CL_ERR_FULL);
    p->write = write;
    p->write_ctx = write_ctx;
    p->log = log;
    p->log_ctx = log_ctx;
    p->max_queued = max_queued ? max_queued : CL_PIPE_MAX_QUEUED;
    p->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (p->efd < 0) {
        free(p);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (pthread_create(&p->thread, NULL, writer_main, p) != 0) {
        cl_pipe_close(p);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    p->thread_started = true;
    (void)pthread_setname_np(p->thread, "cl-archive"); /* visible in top -H / perf */
    *out = p;
    return CL_OK;
}

static pbatch_t *take_batch(cl_pipe_t *p)
{
    pthread_mutex_lock(&p->mu);
    pbatch_t *b = p->free_list;
    if (b != NULL)
        p->free_list = b->next;
    pthread_mutex_unlock(&p->mu);
    if (b == NULL)
        b = calloc(1, sizeof *b);
    if (b != NULL)
        b->next = NULL;
    return b;
}

cl_status_t cl_pipe_put(cl_pipe_t *p, const cl_archive_rec_t *recs, const uint64_t *ids, size_t n)
{
    if (p == NULL || (n > 0 && (recs == NULL || ids == NULL)))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (n == 0)
        return CL_OK;
    if (p->open == NULL && (p->open = take_batch(p)) == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    pbatch_t *b = p->open;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += recs[i].len;
    prow_t *rows = cl_grow(b->rows, &b->cap, b->n + n, sizeof *rows, 64);
    if (rows == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    b->rows = rows;
    uint8_t *arena = cl_grow(b->arena, &b->arena_cap, b->used + bytes, 1, 16384);
    if (arena == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    b->arena = arena;
    for (size_t i = 0; i < n; i++) {
        prow_t *row = &b->rows[b->n++];
        row->id = ids[i];
        row->bucket = recs[i].bucket;
        memcpy(row->tag, recs[i].tag, 16);
        row->off = b->used;
        row->len = recs[i].len;
        if (recs[i].len > 0)
            memcpy(b->arena + b->used, recs[i].data, recs[i].len);
        b->used += recs[i].len;
    }
    return CL_OK;
}

bool cl_pipe_dirty(const cl_pipe_t *p)
{
    return p != NULL && p->open != NULL && p->open->n > 0;
}

cl_status_t cl_pipe_submit(cl_pipe_t *p, uint64_t *ticket)
{
    if (p == NULL || ticket == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (!cl_pipe_dirty(p)) { /* nothing new: wait for what came before */
        *ticket = p->submitted;
        return CL_OK;
    }
    pbatch_t *b = p->open;
    p->open = NULL;
    b->ticket = ++p->submitted;
    pthread_mutex_lock(&p->mu);
    if (p->unresolved >= p->max_queued) {
        p->stats.full_waits++;
        while (p->unresolved >= p->max_queued)
            pthread_cond_wait(&p->done_cv, &p->mu);
    }
    b->next = NULL;
    if (p->tail != NULL)
        p->tail->next = b;
    else
        p->head = b;
    p->tail = b;
    p->unresolved++;
    p->stats.batches++;
    pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    *ticket = b->ticket;
    return CL_OK;
}

static bool ticket_ok_locked(const cl_pipe_t *p, uint64_t t)
{
    if (t == 0)
        return true;
    if (t <= p->failed_forgotten)
        return false;
    size_t n = p->failed_next < FAILED_RANGES ? p->failed_next : FAILED_RANGES;
    for (size_t i = 0; i < n; i++)
        if (p->failed[i].lo <= t && t <= p->failed[i].hi)
            return false;
    return true;
}

cl_status_t cl_pipe_wait(cl_pipe_t *p, uint64_t ticket)
{
    if (p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    pthread_mutex_lock(&p->mu);
    while (p->resolved < ticket)
        pthread_cond_wait(&p->done_cv, &p->mu);
    bool ok = ticket_ok_locked(p, ticket);
    pthread_mutex_unlock(&p->mu);
    return ok ? CL_OK : CL_FAIL(CL_ERR_PERSIST);
}

uint64_t cl_pipe_resolved(cl_pipe_t *p)
{
    if (p == NULL)
        return UINT64_MAX;
    pthread_mutex_lock(&p->mu);
    uint64_t r = p->resolved;
    pthread_mutex_unlock(&p->mu);
    return r;
}

bool cl_pipe_ticket_ok(cl_pipe_t *p, uint64_t ticket)
{
    if (p == NULL)
        return true;
    pthread_mutex_lock(&p->mu);
    bool ok = ticket <= p->resolved && ticket_ok_locked(p, ticket);
    pthread_mutex_unlock(&p->mu);
    return ok;
}

int cl_pipe_fd(const cl_pipe_t *p)
{
    return p != NULL ? p->efd : -1;
}

void cl_pipe_ack_fd(cl_pipe_t *p)
{
    uint64_t v;
    if (p != NULL)
        (void)!read(p->efd, &v, sizeof v); /* EAGAIN: nothing pending, fine */
}

void cl_pipe_get_stats(cl_pipe_t *p, cl_pipe_stats_t *out)
{
    if (p == NULL || out == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

void cl_pipe_close(cl_pipe_t *p)
{
    if (p == NULL)
        return;
    if (p->thread_started) {
        pthread_mutex_lock(&p->mu);
        p->stop = true; /* the writer commits what is queued first */
        pthread_cond_signal(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
    }
    batch_free(p->open); /* never submitted: never acknowledged */
    while (p->head != NULL) {
        pbatch_t *n = p->head->next;
        batch_free(p->head);
        p->head = n;
    }
    while (p->free_list != NULL) {
        pbatch_t *n = p->free_list->next;
        batch_free(p->free_list);
        p->free_list = n;
    }
    free(p->wrecs);
    free(p->wids);
    if (p->efd >= 0)
        close(p->efd);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
