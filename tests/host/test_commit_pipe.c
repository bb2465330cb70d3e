/*
 * test_commit_pipe.c - the pipelined group commit (host/commit_pipe.c) with a
 * scripted writer: rows reach the writer exactly as put, tickets resolve in
 * order, batches queued behind a running commit are merged into one write,
 * a failed commit resolves its tickets as failed (and only those), the queue
 * bound makes submit wait, the eventfd signals resolutions, close commits
 * what was submitted and drops what was not.
 */
#define _DEFAULT_SOURCE /* usleep */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "commit_pipe.h"

/* The scripted writer: records every call, can fail the next N, can be gated. */
typedef struct writer {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gate_closed; /* write() waits while true */
    int in_write;     /* a write() is waiting at the gate */
    int fail_next;    /* calls to fail */
    int calls;
    size_t rows;              /* total rows seen */
    size_t call_rows[64];     /* rows per call */
    uint64_t ids[256];        /* every id seen, in order */
    uint8_t first_byte[256];  /* data[0] of every row (0 for empty) */
    uint64_t buckets[256];
    int tag_mismatch; /* rows whose tag did not travel with them (checked by the test) */
} writer_t;

static cl_status_t w_write(void *ctx, const cl_archive_rec_t *recs, const uint64_t *ids, size_t n)
{
    writer_t *w = ctx;
    pthread_mutex_lock(&w->mu);
    w->in_write++;
    pthread_cond_broadcast(&w->cv);
    while (w->gate_closed)
        pthread_cond_wait(&w->cv, &w->mu);
    w->in_write--;
    if (w->calls < 64)
        w->call_rows[w->calls] = n;
    w->calls++;
    bool fail = w->fail_next > 0;
    if (fail)
        w->fail_next--;
    for (size_t i = 0; i < n && w->rows < 256; i++, w->rows++) {
        w->ids[w->rows] = ids[i];
        w->first_byte[w->rows] = recs[i].len ? recs[i].data[0] : 0;
        w->buckets[w->rows] = recs[i].bucket;
        w->tag_mismatch += recs[i].tag[0] != (uint8_t)ids[i]; /* no cmocka asserts off-thread */
    }
    pthread_mutex_unlock(&w->mu);
    return fail ? CL_ERR_PERSIST : CL_OK;
}

static void w_init(writer_t *w)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
}

static void w_gate(writer_t *w, bool closed)
{
    pthread_mutex_lock(&w->mu);
    w->gate_closed = closed;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Waits until the writer thread sits at the closed gate. */
static void w_wait_blocked(writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->in_write == 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void quiet_log(void *ctx, int level, const char *line)
{
    (void)ctx;
    (void)level;
    (void)line;
}

/* Puts n rows with ids from *next_id; row data = {marker, ...}; tag[0] = id. */
static void put_rows(cl_pipe_t *p, uint64_t *next_id, size_t n, uint8_t marker)
{
    cl_archive_rec_t recs[8];
    uint64_t ids[8];
    uint8_t data[8][4];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        memset(&recs[i], 0, sizeof recs[i]);
        ids[i] = (*next_id)++;
        recs[i].tag[0] = (uint8_t)ids[i];
        recs[i].bucket = 100 + ids[i];
        data[i][0] = marker;
        data[i][1] = (uint8_t)i;
        data[i][2] = 0xee;
        data[i][3] = 0xff;
        recs[i].data = data[i];
        recs[i].len = 1 + i % 4;
    }
    assert_int_equal(cl_pipe_put(p, recs, ids, n), CL_OK);
    memset(data, 0, sizeof data); /* the pipe copied them */
}

static void test_rows_and_tickets(void **state)
{
    (void)state;
    writer_t w;
    w_init(&w);
    cl_pipe_t *p = NULL;
    assert_int_equal(cl_pipe_open(w_write, &w, 0, quiet_log, NULL, &p), CL_OK);
    uint64_t id = 1, t1 = 0, t2 = 0, t_empty = 0;
    assert_false(cl_pipe_dirty(p));
    assert_int_equal(cl_pipe_submit(p, &t_empty), CL_OK); /* nothing yet: ticket 0 */
    assert_int_equal(t_empty, 0);
    assert_int_equal(cl_pipe_wait(p, 0), CL_OK);
    put_rows(p, &id, 3, 0xa1);
    assert_true(cl_pipe_dirty(p));
    assert_int_equal(cl_pipe_submit(p, &t1), CL_OK);
    assert_int_equal(t1, 1);
    assert_int_equal(cl_pipe_submit(p, &t_empty), CL_OK); /* empty batch: the last ticket */
    assert_int_equal(t_empty, t1);
    assert_int_equal(cl_pipe_wait(p, t1), CL_OK);
    assert_true(cl_pipe_ticket_ok(p, t1));
    assert_true(cl_pipe_resolved(p) >= t1);
    put_rows(p, &id, 2, 0xb2);
    assert_int_equal(cl_pipe_submit(p, &t2), CL_OK);
    assert_int_equal(t2, 2);
    assert_int_equal(cl_pipe_wait(p, t2), CL_OK);
    assert_int_equal(w.rows, 5);
    assert_int_equal(w.tag_mismatch, 0);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(w.ids[i], i + 1);
        assert_int_equal(w.buckets[i], 101 + i);
        assert_int_equal(w.first_byte[i], i < 3 ? 0xa1 : 0xb2);
    }
    cl_pipe_stats_t st;
    cl_pipe_get_stats(p, &st);
    assert_int_equal(st.batches, 2);
    assert_int_equal(st.rows, 5);
    assert_int_equal(st.failed_commits, 0);
    cl_pipe_close(p);
}

static void test_merge_behind_running_commit(void **state)
{
    (void)state;
    writer_t w;
    w_init(&w);
    cl_pipe_t *p = NULL;
    assert_int_equal(cl_pipe_open(w_write, &w, 0, quiet_log, NULL, &p), CL_OK);
    uint64_t id = 1, t[5];
    w_gate(&w, true);
    put_rows(p, &id, 1, 1);
    assert_int_equal(cl_pipe_submit(p, &t[0]), CL_OK);
    w_wait_blocked(&w); /* commit 1 is running (held at the gate) */
    for (int k = 1; k < 5; k++) {
        put_rows(p, &id, 2, (uint8_t)(k + 1));
        assert_int_equal(cl_pipe_submit(p, &t[k]), CL_OK);
    }
    assert_false(cl_pipe_ticket_ok(p, t[1])); /* not resolved yet */
    assert_true(cl_pipe_resolved(p) < t[0]);
    w_gate(&w, false);
    assert_int_equal(cl_pipe_wait(p, t[4]), CL_OK);
    for (int k = 0; k < 5; k++)
        assert_true(cl_pipe_ticket_ok(p, t[k]));
    /* the four batches queued meanwhile went in ONE write */
    assert_int_equal(w.calls, 2);
    assert_int_equal(w.call_rows[0], 1);
    assert_int_equal(w.call_rows[1], 8);
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(w.ids[i], i + 1);
    cl_pipe_stats_t st;
    cl_pipe_get_stats(p, &st);
    assert_int_equal(st.commits, 2);
    assert_int_equal(st.batches, 5);
    cl_pipe_close(p);
}

static void test_failed_commit(void **state)
{
    (void)state;
    writer_t w;
    w_init(&w);
    cl_pipe_t *p = NULL;
    assert_int_equal(cl_pipe_open(w_write, &w, 0, quiet_log, NULL, &p), CL_OK);
    uint64_t id = 1, t1, t2, t3;
    put_rows(p, &id, 1, 1);
    assert_int_equal(cl_pipe_submit(p, &t1), CL_OK);
    assert_int_equal(cl_pipe_wait(p, t1), CL_OK);
    pthread_mutex_lock(&w.mu);
    w.fail_next = 1;
    pthread_mutex_unlock(&w.mu);
    put_rows(p, &id, 2, 2);
    assert_int_equal(cl_pipe_submit(p, &t2), CL_OK);
    assert_int_equal(cl_pipe_wait(p, t2), CL_ERR_PERSIST);
    assert_false(cl_pipe_ticket_ok(p, t2));
    assert_true(cl_pipe_ticket_ok(p, t1)); /* the earlier one stays committed */
    put_rows(p, &id, 1, 3);
    assert_int_equal(cl_pipe_submit(p, &t3), CL_OK);
    assert_int_equal(cl_pipe_wait(p, t3), CL_OK);
    assert_true(cl_pipe_ticket_ok(p, t3));
    assert_false(cl_pipe_ticket_ok(p, t2));
    /* an empty submit after a failure waits for (and reports) the failed batch */
    uint64_t te;
    assert_int_equal(cl_pipe_submit(p, &te), CL_OK);
    assert_int_equal(te, t3);
    cl_pipe_stats_t st;
    cl_pipe_get_stats(p, &st);
    assert_int_equal(st.failed_commits, 1);
    assert_int_equal(st.rows, 2); /* failed rows are not counted as committed */
    cl_pipe_close(p);
}

/* More failures than the pipe remembers: old failed tickets never turn "ok". */
static void test_many_failures_stay_failed(void **state)
{
    (void)state;
    writer_t w;
    w_init(&w);
    cl_pipe_t *p = NULL;
    assert_int_equal(cl_pipe_open(w_write, &w, 0, quiet_log, NULL, &p), CL_OK);
    uint64_t id = 1, t, first_failed = 0, ok_ticket = 0;
    for (int k = 0; k < 100; k++) {
        pthread_mutex_lock(&w.mu);
        w.fail_next = (k % 3 != 2) ? 1 : 0;
        pthread_mutex_unlock(&w.mu);
        put_rows(p, &id, 1, (uint8_t)k);
        assert_int_equal(cl_pipe_submit(p, &t), CL_OK);
        cl_status_t s = cl_pipe_wait(p, t);
        assert_int_equal(s, (k % 3 != 2) ? CL_ERR_PERSIST : CL_OK);
        if (k == 0)
            first_failed = t;
        if (k == 2)
            ok_ticket = t;
    }
    assert_false(cl_pipe_ticket_ok(p, first_failed));
    (void)ok_ticket; /* may now be reported conservatively as failed: never the reverse */
    cl_pipe_stats_t st;
    cl_pipe_get_stats(p, &st);
    assert_true(st.failed_commits >= 66);
    cl_pipe_close(p);
}

typedef struct submitter {
    cl_pipe_t *p;
    uint64_t id;
    volatile int done;
    uint64_t ticket;
} submitter_t;

static void *submit_thread(void *arg)
{
    submitter_t *s = arg;
    put_rows(s->p, &s->id, 1, 9);
    assert_int_equal(cl_pipe_submit(s->p, &s->ticket), CL_OK);
    __atomic_store_n(&s->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void test_queue_bound_and_fd(void **state)
{
    (void)state;
    writer_t w;
    w_init(&w);
    cl_pipe_t *p = NULL;
    assert_int_equal(cl_pipe_open(w_write, &w, 2, quiet_log, NULL, &p), CL_OK);
    int fd = cl_pipe_fd(p);
    assert_true(fd >= 0);
    struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
    assert_int_equal(poll(&pfd, 1, 0), 0); /* nothing resolved yet */
    w_gate(&w, true);
    uint64_t id = 1, t1, t2;
    put_rows(p, &id, 1, 1);
    assert_int_equal(cl_pipe_submit(p, &t1), CL_OK);
    w_wait_blocked(&w);
    put_rows(p, &id, 1, 2);
    assert_int_equal(cl_pipe_submit(p, &t2), CL_OK); /* 2 unresolved = the bound */
    submitter_t s = {.p = p, .id = id, .done = 0, .ticket = 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, submit_thread, &s), 0);
    usleep(100 * 1000);
    assert_int_equal(__atomic_load_n(&s.done, __ATOMIC_SEQ_CST), 0); /* blocked by the bound */
    w_gate(&w, false);
    pthread_join(th, NULL);
    assert_int_equal(s.done, 1);
    assert_int_equal(cl_pipe_wait(p, s.ticket), CL_OK);
    assert_int_equal(poll(&pfd, 1, 1000), 1); /* resolutions signalled */
    cl_pipe_ack_fd(p);
    pfd.revents = 0;
    assert_int_equal(poll(&pfd, 1, 0), 0); /* and cleared */
    cl_pipe_stats_t st;
    cl_pipe_get_stats(p, &st);
    assert_true(st.full_waits >= 1);
    cl_pipe_close(p);
}

static void test_close_commits_submitted_only(void **state)
{
    (void)state;
    writer_t w;
    w_init(&w);
    cl_pipe_t *p = NULL;
    assert_int_equal(cl_pipe_open(w_write, &w, 0, quiet_log, NULL, &p), CL_OK);
    w_gate(&w, true);
    uint64_t id = 1, t;
    put_rows(p, &id, 1, 1);
    assert_int_equal(cl_pipe_submit(p, &t), CL_OK);
    w_wait_blocked(&w);
    put_rows(p, &id, 2, 2);
    assert_int_equal(cl_pipe_submit(p, &t), CL_OK); /* queued behind the running commit */
    put_rows(p, &id, 3, 3);                         /* put, never submitted */
    w_gate(&w, false);
    cl_pipe_close(p); /* drains the queue */
    assert_int_equal(w.rows, 3);
    assert_int_equal(w.ids[2], 3);
    /* NULL and bad arguments */
    cl_pipe_close(NULL);
    assert_int_equal(cl_pipe_open(NULL, NULL, 0, NULL, NULL, &p), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_pipe_submit(NULL, &t), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_pipe_put(NULL, NULL, NULL, 1), CL_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_and_tickets),
        cmocka_unit_test(test_merge_behind_running_commit),
        cmocka_unit_test(test_failed_commit),
        cmocka_unit_test(test_many_failures_stay_failed),
        cmocka_unit_test(test_queue_bound_and_fd),
        cmocka_unit_test(test_close_commits_submitted_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
