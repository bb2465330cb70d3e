/*
 * host/dedup.c - the deduplication cache (dedup.h).
 */
#include "dedup.h"

#include <stdlib.h>
#include <string.h>

static size_t hash(const cl_dedup_t *d, uint64_t peer, uint16_t mid)
{
    uint64_t h = (peer ^ ((uint64_t)mid << 17)) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (d->nbuckets - 1);
}

cl_status_t cl_dedup_init(cl_dedup_t *d, size_t cap, uint64_t lifetime_ms)
{
    memset(d, 0, sizeof *d);
    if (cap == 0 || cap > 0x3fffffff)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    d->cap = cap;
    d->lifetime_ms = lifetime_ms;
    d->nbuckets = 1;
    while (d->nbuckets < cap * 2)
        d->nbuckets <<= 1;
    d->e = calloc(cap, sizeof *d->e);
    d->bucket = malloc(d->nbuckets * sizeof *d->bucket);
    if (d->e == NULL || d->bucket == NULL) {
        cl_dedup_free(d);
        return CL_FAIL(CL_ERR_FULL);
    }
    for (size_t i = 0; i < d->nbuckets; i++)
        d->bucket[i] = CL_DEDUP_NONE;
    for (size_t i = 0; i < cap; i++)
        d->e[i].next = CL_DEDUP_NONE;
    return CL_OK;
}

void cl_dedup_free(cl_dedup_t *d)
{
    if (d->e != NULL)
        for (size_t i = 0; i < d->cap; i++)
            free(d->e[i].resp);
    free(d->e);
    free(d->bucket);
    memset(d, 0, sizeof *d);
}

int32_t cl_dedup_find(const cl_dedup_t *d, uint64_t peer, uint16_t mid)
{
    for (int32_t i = d->bucket[hash(d, peer, mid)]; i != CL_DEDUP_NONE; i = d->e[i].next)
        if (d->e[i].peer == peer && d->e[i].mid == mid)
            return i;
    return CL_DEDUP_NONE;
}

void cl_dedup_unlink(cl_dedup_t *d, int32_t idx)
{
    cl_dedup_ent_t *e = &d->e[idx];
    int32_t *link = &d->bucket[hash(d, e->peer, e->mid)];
    while (*link != CL_DEDUP_NONE && *link != idx)
        link = &d->e[*link].next;
    if (*link == idx)
        *link = e->next;
    e->next = CL_DEDUP_NONE;
}

static void evict_head(cl_dedup_t *d)
{
    int32_t idx = (int32_t)d->head;
    cl_dedup_ent_t *e = &d->e[idx];
    cl_dedup_unlink(d, idx);
    free(e->resp);
    memset(e, 0, sizeof *e);
    e->next = CL_DEDUP_NONE;
    d->head = (d->head + 1) % d->cap;
    d->count--;
}

void cl_dedup_expire(cl_dedup_t *d, uint64_t now_ms)
{
    while (d->count > 0 && !d->e[d->head].pending && d->e[d->head].t_ms + d->lifetime_ms <= now_ms)
        evict_head(d);
}

int32_t cl_dedup_insert(cl_dedup_t *d, uint64_t peer, uint16_t mid, uint64_t now_ms)
{
    if (d->count == d->cap)
        evict_head(d);
    int32_t idx = (int32_t)((d->head + d->count) % d->cap);
    cl_dedup_ent_t *e = &d->e[idx];
    e->peer = peer;
    e->mid = mid;
    e->t_ms = now_ms;
    e->used = true;
    e->pending = true;
    e->resp = NULL;
    e->resp_len = 0;
    size_t b = hash(d, peer, mid);
    e->next = d->bucket[b];
    d->bucket[b] = idx;
    d->count++;
    return idx;
}
