/*
 * storage_common.c - pieces the storage backends share (storage_common.h).
 * UNTRUSTED HOST SIDE.
 */
#include "storage_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cl_store_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void cl_store_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void cl_store_default_log(void *ctx, int level, const char *line)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    (void)ctx;
    fprintf(stderr, "level=%s %s\n", names[level < 0 || level > 3 ? 0 : level], line);
}

bool cl_archive_put_args_ok(const void *ctx, const cl_archive_rec_t *recs, size_t n,
                            const uint64_t *ids)
{
    return ctx != NULL && (n == 0 || (recs != NULL && ids != NULL)) && n <= CL_ARCHIVE_MAX_BATCH;
}

bool cl_archive_recs_ok(const cl_archive_rec_t *recs, size_t n, uint64_t max_bucket)
{
    for (size_t i = 0; i < n; i++)
        if (recs[i].len > CL_CORE_MAX_RECORD || (recs[i].data == NULL && recs[i].len != 0) ||
            recs[i].bucket > max_bucket)
            return false;
    return true;
}

cl_status_t cl_archive_scan_args(const void *ctx, const uint8_t *tag, const uint8_t *buf,
                                 size_t size, size_t *len, size_t *n)
{
    if (ctx == NULL || tag == NULL || len == NULL || n == NULL || (buf == NULL && size != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *len = 0;
    *n = 0;
    return CL_OK;
}

bool cl_archive_scan_range_i64(uint64_t from, uint64_t *to, uint64_t after_id,
                               size_t max_records)
{
    /* Stored buckets and ids are <= INT64_MAX: clamp instead of wrapping. */
    if (max_records == 0 || from > *to || from > (uint64_t)INT64_MAX ||
        after_id >= (uint64_t)INT64_MAX)
        return false;
    if (*to > (uint64_t)INT64_MAX)
        *to = (uint64_t)INT64_MAX;
    return true;
}

cl_status_t cl_scan_page_add(cl_scan_page_t *pg, uint64_t id, uint64_t bucket, const void *src,
                             uint32_t len, uint8_t **data)
{
    *data = NULL;
    size_t need = CL_SCAN_HDR + (size_t)len;
    if (pg->size - pg->pos < need) {
        if (pg->count == 0) {
            pg->need = need;
            return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        }
        return CL_OK; /* a partial page */
    }
    uint8_t *p = pg->buf + pg->pos;
    cl_store_put64(p, id);
    cl_store_put64(p + 8, bucket);
    cl_store_put32(p + 16, len);
    if (src != NULL && len != 0)
        memcpy(p + CL_SCAN_HDR, src, len);
    *data = p + CL_SCAN_HDR;
    pg->pos += need;
    pg->count++;
    return CL_OK;
}

void *cl_grow(void *buf, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap && buf != NULL)
        return buf;
    size_t c = *cap ? *cap : (first ? first : 1);
    while (c < need) {
        if (c > SIZE_MAX / 2)
            return NULL;
        c *= 2;
    }
    if (elem == 0 || c > SIZE_MAX / elem)
        return NULL;
    void *p = realloc(buf, c * elem);
    if (p != NULL)
        *cap = c;
    return p;
}
