/*
 * host/storage_common.h - pieces the storage backends share (storage_files.c,
 * archive_sqlite.c, storage_pg.c). UNTRUSTED HOST SIDE; internal to host/.
 *
 * archive_scan output, as the core expects it from every backend: records
 * [u64 id][u64 bucket][u32 len][len bytes], little-endian, ids increasing; a
 * record that does not fit ends the page (the caller continues with after_id
 * = the last id), and CL_ERR_BUFFER_TOO_SMALL (*len = the size needed) only
 * when not even the first record fits.
 */
#ifndef CLOISTER_HOST_STORAGE_COMMON_H
#define CLOISTER_HOST_STORAGE_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CL_ARCHIVE_MAX_BATCH 4096u /**< records per archive_put */
#define CL_SCAN_HDR 20u            /**< u64 id, u64 bucket, u32 len (archive_scan output) */

void cl_store_put32(uint8_t *p, uint32_t v); /**< little-endian */
void cl_store_put64(uint8_t *p, uint64_t v); /**< little-endian */

/**
 * A buffer of *cap elements of `elem` bytes made to hold at least `need`:
 * *cap doubles from `first`. Returns the (possibly moved) buffer, or NULL
 * when out of memory or on overflow - then `buf` and *cap are unchanged and
 * still the caller's. For host/ buffers that grow with a batch.
 */
void *cl_grow(void *buf, size_t *cap, size_t need, size_t elem, size_t first) CL_MUST_CHECK;

/** The backends' logger when none is given: "level=NAME line" on stderr. */
void cl_store_default_log(void *ctx, int level, const char *line);

/** archive_put's argument check: a backend, recs and ids when n != 0, n <= CL_ARCHIVE_MAX_BATCH. */
bool cl_archive_put_args_ok(const void *ctx, const cl_archive_rec_t *recs, size_t n,
                            const uint64_t *ids);

/** Every record storable: len <= CL_CORE_MAX_RECORD, data present when len != 0,
 * bucket <= max_bucket. */
bool cl_archive_recs_ok(const cl_archive_rec_t *recs, size_t n, uint64_t max_bucket);

/** archive_scan's argument check: CL_ERR_INVALID_ARG, or CL_OK with *len = *n = 0. */
cl_status_t cl_archive_scan_args(const void *ctx, const uint8_t *tag, const uint8_t *buf,
                                 size_t size, size_t *len, size_t *n);

/** For backends that store ids and buckets as int64: clamps *to to INT64_MAX;
 * false when no stored row can match (max_records 0, empty or unreachable range). */
bool cl_archive_scan_range_i64(uint64_t from, uint64_t *to, uint64_t after_id,
                               size_t max_records);

/** One archive_scan output page being filled. */
typedef struct cl_scan_page {
    uint8_t *buf;
    size_t size;
    size_t pos;   /**< bytes written */
    size_t count; /**< records written */
    size_t need;  /**< after CL_ERR_BUFFER_TOO_SMALL: the first record's size */
} cl_scan_page_t;

/**
 * Appends one record: writes its header and, when src != NULL, its len data
 * bytes; *data = where the data bytes go (for a caller that reads them in
 * itself). When it does not fit: CL_OK with *data = NULL if the page holds a
 * record already (a partial page: stop), else CL_ERR_BUFFER_TOO_SMALL with
 * pg->need set.
 */
cl_status_t cl_scan_page_add(cl_scan_page_t *pg, uint64_t id, uint64_t bucket, const void *src,
                             uint32_t len, uint8_t **data);

#ifdef __cplusplus
}
#endif

#endif
