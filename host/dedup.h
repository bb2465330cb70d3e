/*
 * host/dedup.h - the CoAP deduplication cache of the host's UDP endpoints
 * (RFC 7252 section 4.5): (peer, message id) -> the response the core gave,
 * kept for EXCHANGE_LIFETIME, so a retransmitted CON or NON is answered from
 * the cache and never reaches the core twice (the core's OSCORE replay
 * window would refuse it). A fixed ring of entries (oldest evicted first)
 * with hash chains for lookup; bounded memory, no allocation per request
 * except the cached response bytes. Used by udp_endpoint.c and
 * coap_libcoap.c.
 */
#ifndef CLOISTER_HOST_DEDUP_H
#define CLOISTER_HOST_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"

#define CL_DEDUP_NONE (-1)

typedef struct cl_dedup_ent {
    uint64_t peer;
    uint64_t t_ms;
    uint16_t mid;
    bool used;
    bool pending;  /* forwarded to the core, no response yet (never expired) */
    int32_t next;  /* hash chain */
    uint8_t *resp; /* heap copy of the response (NULL: none) */
    size_t resp_len;
} cl_dedup_ent_t;

typedef struct cl_dedup {
    cl_dedup_ent_t *e;
    int32_t *bucket;
    size_t cap, head, count;
    size_t nbuckets; /* power of two, >= 2 * cap */
    uint64_t lifetime_ms;
} cl_dedup_t;

/* cap entries (1..2^30), kept for lifetime_ms; CL_ERR_FULL without memory. */
cl_status_t cl_dedup_init(cl_dedup_t *d, size_t cap, uint64_t lifetime_ms) CL_MUST_CHECK;
void cl_dedup_free(cl_dedup_t *d);
/* The entry of (peer, mid) or CL_DEDUP_NONE. */
int32_t cl_dedup_find(const cl_dedup_t *d, uint64_t peer, uint16_t mid);
/* A new pending entry (the oldest is evicted when full). */
int32_t cl_dedup_insert(cl_dedup_t *d, uint64_t peer, uint16_t mid, uint64_t now_ms);
/* Takes an entry out of lookup (its ring slot stays until it is the oldest). */
void cl_dedup_unlink(cl_dedup_t *d, int32_t idx);
/* Evicts the non-pending entries older than the lifetime. */
void cl_dedup_expire(cl_dedup_t *d, uint64_t now_ms);

#endif
