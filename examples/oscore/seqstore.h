/*
 * seqstore.h - durable Sender Sequence Number ceilings for the OSCORE
 * examples (RFC 8613 Appendix B.1.1).
 *
 * The file holds one decimal number and a newline: the first sequence
 * number not yet covered by a persisted ceiling. At start-up it becomes
 * cl_oscore_params_t.initial_ssn; seqstore_persist is the library's
 * cl_oscore_persist_fn. A sibling "<file>.lock" is held (fcntl lock) while
 * the program runs so that two processes never share one sequence space.
 */
#ifndef CL_EXAMPLE_OSCORE_SEQSTORE_H
#define CL_EXAMPLE_OSCORE_SEQSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/oscore.h"
#include "config.h"

typedef struct seqstore {
    char path[CONFIG_PATH_MAX];
    char tmp[CONFIG_PATH_MAX + 8];
    char dir[CONFIG_PATH_MAX];
    int lock_fd; /**< valid while locked */
    bool locked;
    bool existed;                    /**< the file was there at open */
    uint64_t ceiling;                /**< last durable ceiling (as read or written) */
    char err[CONFIG_PATH_MAX + 128]; /**< why the last seqstore_persist failed */
} seqstore_t;

/**
 * Locks and reads `path`. A missing file means 0; an unreadable or corrupt
 * one is an error (never silently 0: that would reuse nonces). On success
 * *initial_ssn is the stored ceiling.
 */
bool seqstore_open(seqstore_t *s, const char *path, uint64_t *initial_ssn, char *err,
                   size_t err_size);

/** cl_oscore_persist_fn: durably replaces the file with `ceiling` (arg is the seqstore_t). */
cl_status_t seqstore_persist(void *arg, const struct cl_oscore_ctx *ctx, uint64_t ceiling);

/** Releases the lock; safe on a zeroed or failed store. */
void seqstore_close(seqstore_t *s);

#endif
