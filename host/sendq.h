/*
 * host/sendq.h - the hold queue for core-originated messages (the `send`
 * ocall, cloister/core.h). UNTRUSTED HOST SIDE, internal to host/.
 *
 * A message the core sends during handle() must not leave before that
 * batch's archive rows are durable (group commit, cl_storage_sync after the
 * batch). Each endpoint owns one queue: the endpoint itself holds it around
 * its own handle() call, and cloisterd holds every endpoint's queue around
 * every handle() and tick() (whatever endpoint started it), the commit in
 * between. While a queue is held, the endpoint's send function copies the
 * message into it; when the last hold is released the endpoint sends what
 * was queued (after the batch's responses are known, so an HTTP long poll
 * deferred in the same batch can be answered) - or, when any hold of the
 * round was released as failed (ecall or commit failed), drops it all and
 * counts it: nothing of a failed batch leaves.
 *
 * Bounded: at most `cap` messages (each <= CL_CORE_MAX_MESSAGE bytes, copied
 * into one allocation per message); more are dropped and counted. Never
 * logs or inspects the bytes.
 */
#ifndef CLOISTER_HOST_SENDQ_H
#define CLOISTER_HOST_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CL_SENDQ_CAP 1024 /**< default: messages held per endpoint and round */

typedef struct cl_sendq_ent {
    uint64_t peer;
    uint16_t transport;
    uint8_t *msg;
    size_t len;
} cl_sendq_ent_t;

typedef struct cl_sendq {
    cl_sendq_ent_t *e;
    size_t cap, n;
    unsigned depth;    /* nested holds */
    bool failed;       /* some hold of this round was released as failed */
    size_t full_round; /* dropped for lack of room in this round (logged at release) */
} cl_sendq_t;

/** Allocates the entry table (cap 0 = CL_SENDQ_CAP). */
cl_status_t cl_sendq_init(cl_sendq_t *q, size_t cap) CL_MUST_CHECK;
/** Frees queued messages and the table. */
void cl_sendq_free(cl_sendq_t *q);
/** True while some hold is active: sends must go through cl_sendq_push. */
bool cl_sendq_held(const cl_sendq_t *q);
/** Starts one (nested) hold. */
void cl_sendq_hold(cl_sendq_t *q);
/**
 * Ends one hold; ok=false marks the round failed. Returns true when this was
 * the last hold and the queue must now be sent (then cl_sendq_clear). When
 * the round failed, the queue is emptied here: *dropped_failed receives the
 * number of messages dropped (may be NULL). *dropped_full (may be NULL)
 * receives the messages refused for lack of room during the round, once.
 */
bool cl_sendq_release(cl_sendq_t *q, bool ok, size_t *dropped_failed, size_t *dropped_full);
/** An endpoint's logger for one warning line (no payload is ever in it). */
typedef void (*cl_sendq_warn_fn)(void *ctx, const char *line);
/**
 * cl_sendq_release plus what every endpoint does with its counts: a warning
 * line naming `transport` for messages refused for lack of room and for
 * messages dropped with a failed batch, the latter added to *failed_total.
 * Returns true when the queue must now be sent (then cl_sendq_clear).
 */
bool cl_sendq_end(cl_sendq_t *q, bool ok, const char *transport, cl_sendq_warn_fn warn, void *ctx,
                  uint64_t *failed_total);
/** Copies one message in. CL_ERR_FULL (counted for the round) when at capacity. */
cl_status_t cl_sendq_push(cl_sendq_t *q, uint64_t peer, uint16_t transport, const uint8_t *msg,
                          size_t len);
/** Frees every queued message (after sending them). */
void cl_sendq_clear(cl_sendq_t *q);

#ifdef __cplusplus
}
#endif
#endif
