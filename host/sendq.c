/*
 * sendq.c - the hold queue for core-originated messages (sendq.h).
 * UNTRUSTED HOST SIDE.
 *
 * What: a bounded array of copied messages plus a hold depth. Why a depth:
 * an endpoint holds its own queue around its handle() call and cloisterd's
 * handler holds every endpoint's queue again inside it; only the outermost
 * release may send (after the responses of the batch were dispatched).
 */
#include "sendq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/core.h"

cl_status_t cl_sendq_init(cl_sendq_t *q, size_t cap)
{
    if (q == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    memset(q, 0, sizeof *q);
    q->cap = cap ? cap : CL_SENDQ_CAP;
    q->e = calloc(q->cap, sizeof *q->e);
    if (q->e == NULL)
        return CL_FAIL(CL_ERR_FULL);
    return CL_OK;
}

void cl_sendq_clear(cl_sendq_t *q)
{
    if (q == NULL || q->e == NULL)
        return;
    for (size_t i = 0; i < q->n; i++) {
        free(q->e[i].msg);
        q->e[i].msg = NULL;
    }
    q->n = 0;
}

void cl_sendq_free(cl_sendq_t *q)
{
    if (q == NULL)
        return;
    cl_sendq_clear(q);
    free(q->e);
    memset(q, 0, sizeof *q);
}

bool cl_sendq_held(const cl_sendq_t *q)
{
    return q != NULL && q->depth > 0;
}

void cl_sendq_hold(cl_sendq_t *q)
{
    if (q != NULL)
        q->depth++;
}

bool cl_sendq_release(cl_sendq_t *q, bool ok, size_t *dropped_failed, size_t *dropped_full)
{
    if (dropped_failed != NULL)
        *dropped_failed = 0;
    if (dropped_full != NULL)
        *dropped_full = 0;
    if (q == NULL || q->depth == 0)
        return false;
    if (!ok)
        q->failed = true;
    if (--q->depth > 0)
        return false;
    if (dropped_full != NULL)
        *dropped_full = q->full_round;
    q->full_round = 0;
    if (q->failed) {
        q->failed = false;
        if (dropped_failed != NULL)
            *dropped_failed = q->n;
        cl_sendq_clear(q);
        return false;
    }
    return q->n > 0;
}

bool cl_sendq_end(cl_sendq_t *q, bool ok, const char *transport, cl_sendq_warn_fn warn, void *ctx,
                  uint64_t *failed_total)
{
    size_t failed = 0, full = 0;
    char line[200];
    bool flush = cl_sendq_release(q, ok, &failed, &full);
    if (full > 0) {
        (void)snprintf(line, sizeof line,
                       "msg=\"send queue full: core-originated messages dropped\" transport=%s "
                       "count=%zu cap=%zu",
                       transport, full, q->cap);
        warn(ctx, line);
    }
    if (failed > 0) {
        *failed_total += failed;
        (void)snprintf(line, sizeof line,
                       "msg=\"core-originated messages dropped: batch failed\" transport=%s "
                       "count=%zu",
                       transport, failed);
        warn(ctx, line);
    }
    return flush;
}

cl_status_t cl_sendq_push(cl_sendq_t *q, uint64_t peer, uint16_t transport, const uint8_t *msg,
                          size_t len)
{
    if (q == NULL || q->e == NULL || msg == NULL || len == 0 || len > CL_CORE_MAX_MESSAGE)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (q->n == q->cap) {
        q->full_round++;
        return CL_ERR_FULL;
    }
    uint8_t *copy = malloc(len);
    if (copy == NULL) {
        q->full_round++;
        return CL_ERR_FULL;
    }
    memcpy(copy, msg, len);
    q->e[q->n++] = (cl_sendq_ent_t){.peer = peer, .transport = transport, .msg = copy, .len = len};
    return CL_OK;
}
