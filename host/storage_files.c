/*
 * storage_files.c - the file storage backend behind cl_host_ops_t (storage.h).
 * UNTRUSTED HOST SIDE.
 *
 * What: the sealed log as one file per record (log/<counter>.rec), the sealed
 * snapshot as one file replaced atomically, the encrypted archive as one
 * append-only file indexed in memory, plus the small ocalls (time, log, send).
 *
 * Why this shape: a file per log record makes durability and compaction
 * trivial to reason about (write a temp file, fsync, rename, fsync the
 * directory; compaction is unlink) and a torn write can never masquerade as
 * a record, because a record only appears under its final name after its
 * bytes are durable, and its CRC is checked again at read. The archive is
 * append-only with one fsync per put batch (group commit); a torn tail is
 * cut at open. The SQLite (default) and PostgreSQL archives live in
 * archive_sqlite.c / storage_pg.c; storage_select.c picks (storage.h).
 *
 * The core validates everything it gets back (MACs, counters, hash chain);
 * this file validates sizes anyway, so a corrupted length on disk never
 * turns into a huge allocation or an over-read in the daemon. I/O errors
 * become CL_ERR_PERSIST plus a log line. After a failed fsync the backend
 * refuses further writes (the kernel may have dropped the dirty pages, so
 * retrying could report durability that does not exist).
 */
#define _DEFAULT_SOURCE /* flock */

#include "storage.h"
#include "storage_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOG_HDR 12u  /* u64 counter, u32 len */
#define LOG_TRL 4u   /* u32 crc32 */
#define SNAP_HDR 4u  /* u32 len */
#define ARCH_HDR 36u /* u64 id, 16 tag, u64 bucket, u32 len */
#define LOG_NAME_LEN 24 /* 20 digits + ".rec" */

typedef struct arch_ent {
    uint64_t id;
    uint64_t bucket;
    uint64_t off; /* offset of the record's data */
    uint32_t len;
    uint8_t tag[16];
} arch_ent_t;

struct cl_files {
    cl_host_ops_t ops;
    int dirfd;
    int logfd; /* log/ directory */
    int archfd;
    bool broken; /* an fsync failed: no more writes */

    uint64_t *log_idx; /* sorted counters present in log/ */
    size_t log_n, log_cap;

    arch_ent_t *arch; /* ids strictly increasing */
    size_t arch_n, arch_cap;
    uint64_t arch_end;
    uint64_t arch_next_id;

    uint8_t *scratch; /* one framed log record */

    cl_host_log_fn log;
    void *log_ctx;
    cl_host_send_fn send;
    void *send_ctx;
};

/* ------------------------------------------------------------ helpers */

static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
    /* IEEE 802.3 (reflected 0xEDB88320), four bits at a time. */
    static const uint32_t t[16] = {0x00000000, 0x1DB71064, 0x3B6E20C8, 0x26D930AC,
                                   0x76DC4190, 0x6B6B51F4, 0x4DB26158, 0x5005713C,
                                   0xEDB88320, 0xF00F9344, 0xD6D6A3E8, 0xCB61B38C,
                                   0x9B64C2B0, 0x86D3D2D4, 0xA00AE278, 0xBDBDF21C};
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ t[crc & 15u];
        crc = (crc >> 4) ^ t[crc & 15u];
    }
    return ~crc;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void flog(const cl_files_t *f, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    f->log(f->log_ctx, level, line);
}

/* Logs an I/O failure and maps it to CL_ERR_PERSIST. */
static cl_status_t io_fail(const cl_files_t *f, const char *what, int err)
{
    flog(f, CL_LOG_ERROR, "msg=\"storage %s failed\" errno=%d err=\"%s\"", what, err,
         strerror(err));
    return CL_FAIL(CL_ERR_PERSIST);
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Reads exactly n bytes at off; a short file is EIO-like (errno = 0, returns 1). */
static int read_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            return 1;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static int fsync_retry(int fd)
{
    int rc;
    do {
        rc = fsync(fd);
    } while (rc != 0 && errno == EINTR);
    return rc;
}

/*
 * Writes `parts` into dirfd/tmp, fsyncs it, renames it to dirfd/name and
 * fsyncs the directory: after CL_OK the new content is durable under name.
 */
static cl_status_t write_replace(cl_files_t *f, int dirfd, const char *tmp, const char *name,
                                 const uint8_t *const *parts, const size_t *lens, size_t nparts,
                                 const char *what)
{
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return io_fail(f, what, errno);
    uint64_t off = 0;
    for (size_t i = 0; i < nparts; i++) {
        if (lens[i] != 0 && write_all(fd, parts[i], lens[i], off) != 0) {
            int err = errno;
            close(fd);
            unlinkat(dirfd, tmp, 0);
            return io_fail(f, what, err);
        }
        off += lens[i];
    }
    if (fsync_retry(fd) != 0) {
        int err = errno;
        f->broken = true;
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return io_fail(f, what, err);
    }
    if (close(fd) != 0) {
        int err = errno;
        unlinkat(dirfd, tmp, 0);
        return io_fail(f, what, err);
    }
    if (renameat(dirfd, tmp, dirfd, name) != 0) {
        int err = errno;
        unlinkat(dirfd, tmp, 0);
        return io_fail(f, what, err);
    }
    if (fsync_retry(dirfd) != 0) {
        f->broken = true;
        return io_fail(f, what, errno);
    }
    return CL_OK;
}

static void log_name(char out[32], uint64_t counter, const char *ext)
{
    snprintf(out, 32, "%020" PRIu64 ".%s", counter, ext);
}

/* Index of the first counter >= c. */
static size_t log_lower_bound(const cl_files_t *f, uint64_t c)
{
    size_t lo = 0, hi = f->log_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->log_idx[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static cl_status_t log_index_insert(cl_files_t *f, uint64_t c)
{
    size_t i = log_lower_bound(f, c);
    if (i < f->log_n && f->log_idx[i] == c)
        return CL_OK;
    if (f->log_n == f->log_cap) {
        size_t cap = f->log_cap ? f->log_cap * 2 : 256;
        uint64_t *p = realloc(f->log_idx, cap * sizeof *p);
        if (p == NULL)
            return CL_FAIL(CL_ERR_FULL);
        f->log_idx = p;
        f->log_cap = cap;
    }
    memmove(f->log_idx + i + 1, f->log_idx + i, (f->log_n - i) * sizeof *f->log_idx);
    f->log_idx[i] = c;
    f->log_n++;
    return CL_OK;
}

static void log_index_remove(cl_files_t *f, size_t i)
{
    memmove(f->log_idx + i, f->log_idx + i + 1, (f->log_n - i - 1) * sizeof *f->log_idx);
    f->log_n--;
}

/* Parses "<20 digits>.rec"; false for anything else. */
static bool parse_log_name(const char *name, uint64_t *counter)
{
    if (strlen(name) != LOG_NAME_LEN || strcmp(name + 20, ".rec") != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *counter = v;
    return true;
}

/* ------------------------------------------------------------ sealed log */

static cl_status_t files_log_append(void *ctx, uint64_t counter, const uint8_t *rec, size_t len)
{
    cl_files_t *f = ctx;
    if (f == NULL || (rec == NULL && len != 0) || len > CL_CORE_MAX_RECORD)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (f->broken)
        return CL_FAIL(CL_ERR_PERSIST);
    /* Reserve the index slot first: nothing may fail after the record is durable. */
    if (f->log_n == f->log_cap) {
        size_t cap = f->log_cap ? f->log_cap * 2 : 256;
        uint64_t *p = realloc(f->log_idx, cap * sizeof *p);
        if (p == NULL)
            return CL_FAIL(CL_ERR_PERSIST);
        f->log_idx = p;
        f->log_cap = cap;
    }
    uint8_t *s = f->scratch;
    cl_store_put64(s, counter);
    cl_store_put32(s + 8, (uint32_t)len);
    if (len != 0)
        memcpy(s + LOG_HDR, rec, len);
    cl_store_put32(s + LOG_HDR + len, crc32_update(0, s, LOG_HDR + len));
    const uint8_t *parts[1] = {s};
    size_t lens[1] = {LOG_HDR + len + LOG_TRL};
    char tmp[32], name[32];
    log_name(tmp, counter, "tmp");
    log_name(name, counter, "rec");
    cl_status_t st = write_replace(f, f->logfd, tmp, name, parts, lens, 1, "log append");
    if (st != CL_OK)
        return st;
    return log_index_insert(f, counter) == CL_OK ? CL_OK : CL_FAIL(CL_ERR_PERSIST);
}

/*
 * Reads and checks the record file for `counter` into f->scratch.
 * CL_OK with *data and *len; CL_ERR_NOT_FOUND when the file is missing or
 * invalid (skipped, logged); CL_ERR_PERSIST on I/O errors.
 */
static cl_status_t read_log_file(cl_files_t *f, uint64_t counter, const uint8_t **data,
                                 size_t *len)
{
    char name[32];
    log_name(name, counter, "rec");
    int fd = openat(f->logfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return CL_ERR_NOT_FOUND;
        return io_fail(f, "log read", errno);
    }
    struct stat sb;
    cl_status_t st = CL_OK;
    if (fstat(fd, &sb) != 0) {
        st = io_fail(f, "log read", errno);
        goto done;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size < (off_t)(LOG_HDR + LOG_TRL) ||
        sb.st_size > (off_t)(LOG_HDR + CL_CORE_MAX_RECORD + LOG_TRL)) {
        flog(f, CL_LOG_WARN, "msg=\"log record ignored: bad size\" counter=%" PRIu64 " size=%lld",
             counter, (long long)sb.st_size);
        st = CL_ERR_NOT_FOUND;
        goto done;
    }
    size_t total = (size_t)sb.st_size;
    int rc = read_all(fd, f->scratch, total, 0);
    if (rc < 0) {
        st = io_fail(f, "log read", errno);
        goto done;
    }
    uint32_t n = rc == 0 ? get32(f->scratch + 8) : 0;
    if (rc != 0 || get64(f->scratch) != counter || (size_t)n != total - LOG_HDR - LOG_TRL ||
        crc32_update(0, f->scratch, LOG_HDR + n) != get32(f->scratch + LOG_HDR + n)) {
        flog(f, CL_LOG_WARN, "msg=\"log record ignored: torn or corrupt\" counter=%" PRIu64,
             counter);
        st = CL_ERR_NOT_FOUND;
        goto done;
    }
    *data = f->scratch + LOG_HDR;
    *len = n;
done:
    close(fd);
    return st;
}

static cl_status_t files_log_read(void *ctx, uint64_t counter, uint64_t *got_counter,
                                  uint8_t *buf, size_t size, size_t *len)
{
    cl_files_t *f = ctx;
    if (f == NULL || got_counter == NULL || len == NULL || (buf == NULL && size != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    for (size_t i = log_lower_bound(f, counter); i < f->log_n; i++) {
        const uint8_t *data = NULL;
        size_t n = 0;
        cl_status_t st = read_log_file(f, f->log_idx[i], &data, &n);
        if (st == CL_ERR_NOT_FOUND)
            continue; /* vanished, torn or corrupt: never returned */
        if (st != CL_OK)
            return st;
        if (n > size) {
            *len = n;
            return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        }
        if (n != 0)
            memcpy(buf, data, n);
        *got_counter = f->log_idx[i];
        *len = n;
        return CL_OK;
    }
    return CL_ERR_NOT_FOUND;
}

static cl_status_t files_log_compact(void *ctx, uint64_t before)
{
    cl_files_t *f = ctx;
    if (f == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (f->broken)
        return CL_FAIL(CL_ERR_PERSIST);
    size_t removed = 0;
    cl_status_t st = CL_OK;
    while (f->log_n > 0 && f->log_idx[0] < before) {
        char name[32];
        log_name(name, f->log_idx[0], "rec");
        if (unlinkat(f->logfd, name, 0) != 0 && errno != ENOENT) {
            st = io_fail(f, "log compact", errno);
            break;
        }
        log_index_remove(f, 0);
        removed++;
    }
    if (removed > 0 && fsync_retry(f->logfd) != 0) {
        f->broken = true;
        st = io_fail(f, "log compact", errno);
    }
    if (removed > 0)
        flog(f, CL_LOG_DEBUG, "msg=\"log compacted\" removed=%zu remaining=%zu", removed,
             f->log_n);
    return st;
}

/* ------------------------------------------------------------ snapshot */

static cl_status_t files_snapshot_put(void *ctx, const uint8_t *blob, size_t len)
{
    cl_files_t *f = ctx;
    if (f == NULL || (blob == NULL && len != 0) || len > CL_CORE_MAX_SNAPSHOT)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (f->broken)
        return CL_FAIL(CL_ERR_PERSIST);
    uint8_t hdr[SNAP_HDR], trl[4];
    cl_store_put32(hdr, (uint32_t)len);
    /* Chained like zlib: crc(hdr || blob). */
    cl_store_put32(trl, crc32_update(crc32_update(0, hdr, SNAP_HDR), blob, len));
    const uint8_t *parts[3] = {hdr, blob, trl};
    size_t lens[3] = {SNAP_HDR, len, 4};
    cl_status_t st = write_replace(f, f->dirfd, "snapshot.tmp", "snapshot", parts, lens, 3,
                                   "snapshot put");
    if (st == CL_OK)
        flog(f, CL_LOG_DEBUG, "msg=\"snapshot written\" size=%zu", len);
    return st;
}

static cl_status_t files_snapshot_get(void *ctx, uint8_t *buf, size_t size, size_t *len)
{
    cl_files_t *f = ctx;
    if (f == NULL || len == NULL || (buf == NULL && size != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    int fd = openat(f->dirfd, "snapshot", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return CL_ERR_NOT_FOUND;
        return io_fail(f, "snapshot get", errno);
    }
    cl_status_t st = CL_OK;
    struct stat sb;
    uint8_t hdr[SNAP_HDR], trl[4];
    if (fstat(fd, &sb) != 0) {
        st = io_fail(f, "snapshot get", errno);
        goto done;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size < (off_t)(SNAP_HDR + 4) ||
        sb.st_size > (off_t)(SNAP_HDR + CL_CORE_MAX_SNAPSHOT + 4)) {
        flog(f, CL_LOG_ERROR, "msg=\"snapshot corrupt: bad size\" size=%lld",
             (long long)sb.st_size);
        st = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    int rc = read_all(fd, hdr, SNAP_HDR, 0);
    size_t n = rc == 0 ? get32(hdr) : 0;
    if (rc < 0) {
        st = io_fail(f, "snapshot get", errno);
        goto done;
    }
    if (rc != 0 || n != (size_t)sb.st_size - SNAP_HDR - 4) {
        flog(f, CL_LOG_ERROR, "msg=\"snapshot corrupt: bad length\" size=%lld",
             (long long)sb.st_size);
        st = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    if (n > size) {
        *len = n;
        st = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    rc = n ? read_all(fd, buf, n, SNAP_HDR) : 0;
    if (rc == 0)
        rc = read_all(fd, trl, 4, SNAP_HDR + n);
    if (rc < 0) {
        st = io_fail(f, "snapshot get", errno);
        goto wipe;
    }
    if (rc != 0 || crc32_update(crc32_update(0, hdr, SNAP_HDR), buf, n) != get32(trl)) {
        flog(f, CL_LOG_ERROR, "msg=\"snapshot corrupt: bad checksum\" size=%zu", n);
        st = CL_FAIL(CL_ERR_PERSIST);
        goto wipe;
    }
    *len = n;
    goto done;
wipe:
    if (n != 0)
        memset(buf, 0, n);
done:
    close(fd);
    return st;
}

/* ------------------------------------------------------------ archive */

static cl_status_t arch_reserve(cl_files_t *f, size_t more)
{
    if (f->arch_cap - f->arch_n >= more)
        return CL_OK;
    size_t cap = f->arch_cap ? f->arch_cap : 1024;
    while (cap - f->arch_n < more)
        cap *= 2;
    arch_ent_t *p = realloc(f->arch, cap * sizeof *p);
    if (p == NULL)
        return CL_FAIL(CL_ERR_FULL);
    f->arch = p;
    f->arch_cap = cap;
    return CL_OK;
}

/* Indexes archive.dat; cuts a torn or corrupt tail. */
static cl_status_t arch_load(cl_files_t *f)
{
    struct stat sb;
    if (fstat(f->archfd, &sb) != 0)
        return io_fail(f, "archive open", errno);
    uint64_t size = (uint64_t)sb.st_size, off = 0, prev = 0;
    const char *why = NULL;
    while (off < size) {
        uint8_t h[ARCH_HDR];
        if (size - off < ARCH_HDR) {
            why = "torn header";
            break;
        }
        int rc = read_all(f->archfd, h, ARCH_HDR, off);
        if (rc < 0)
            return io_fail(f, "archive open", errno);
        if (rc != 0) {
            why = "torn header";
            break;
        }
        uint64_t id = get64(h);
        uint32_t len = get32(h + 32);
        if (len > CL_CORE_MAX_RECORD || id <= prev) {
            why = "corrupt header";
            break;
        }
        if (size - off - ARCH_HDR < len) {
            why = "torn record";
            break;
        }
        if (arch_reserve(f, 1) != CL_OK)
            return CL_FAIL(CL_ERR_PERSIST);
        arch_ent_t *e = &f->arch[f->arch_n++];
        e->id = id;
        memcpy(e->tag, h + 8, 16);
        e->bucket = get64(h + 24);
        e->off = off + ARCH_HDR;
        e->len = len;
        prev = id;
        off += ARCH_HDR + len;
    }
    if (off < size) {
        flog(f, CL_LOG_WARN,
             "msg=\"archive tail dropped\" reason=\"%s\" offset=%" PRIu64 " bytes=%" PRIu64, why,
             off, size - off);
        if (ftruncate(f->archfd, (off_t)off) != 0 || fsync_retry(f->archfd) != 0)
            return io_fail(f, "archive truncate", errno);
    }
    f->arch_end = off;
    f->arch_next_id = prev + 1;
    return CL_OK;
}

static cl_status_t files_archive_put(void *ctx, const cl_archive_rec_t *recs, size_t n,
                                     uint64_t *ids)
{
    cl_files_t *f = ctx;
    if (!cl_archive_put_args_ok(f, recs, n, ids))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (n == 0)
        return CL_OK;
    if (f->broken)
        return CL_FAIL(CL_ERR_PERSIST);
    if (!cl_archive_recs_ok(recs, n, UINT64_MAX))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += ARCH_HDR + recs[i].len;
    if (arch_reserve(f, n) != CL_OK)
        return CL_FAIL(CL_ERR_PERSIST);
    uint8_t *buf = malloc(total);
    if (buf == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        cl_store_put64(buf + pos, f->arch_next_id + i);
        memcpy(buf + pos + 8, recs[i].tag, 16);
        cl_store_put64(buf + pos + 24, recs[i].bucket);
        cl_store_put32(buf + pos + 32, (uint32_t)recs[i].len);
        if (recs[i].len != 0)
            memcpy(buf + pos + ARCH_HDR, recs[i].data, recs[i].len);
        pos += ARCH_HDR + recs[i].len;
    }
    cl_status_t st = CL_OK;
    if (write_all(f->archfd, buf, total, f->arch_end) != 0) {
        st = io_fail(f, "archive put", errno);
        if (ftruncate(f->archfd, (off_t)f->arch_end) != 0)
            f->broken = true;
        goto done;
    }
    if (fsync_retry(f->archfd) != 0) {
        f->broken = true;
        st = io_fail(f, "archive put", errno);
        goto done;
    }
    pos = 0;
    for (size_t i = 0; i < n; i++) {
        arch_ent_t *e = &f->arch[f->arch_n++];
        e->id = f->arch_next_id + i;
        memcpy(e->tag, recs[i].tag, 16);
        e->bucket = recs[i].bucket;
        e->off = f->arch_end + pos + ARCH_HDR;
        e->len = (uint32_t)recs[i].len;
        ids[i] = e->id;
        pos += ARCH_HDR + recs[i].len;
    }
    f->arch_next_id += n;
    f->arch_end += total;
done:
    free(buf);
    return st;
}

static cl_status_t files_archive_scan(void *ctx, const uint8_t tag[16], uint64_t from,
                                      uint64_t to, uint64_t after_id, size_t max_records,
                                      uint8_t *buf, size_t size, size_t *len, size_t *n)
{
    cl_files_t *f = ctx;
    cl_status_t st = cl_archive_scan_args(f, tag, buf, size, len, n);
    if (st != CL_OK)
        return st;
    size_t lo = 0, hi = f->arch_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->arch[mid].id <= after_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    cl_scan_page_t pg = {.buf = buf, .size = size};
    for (size_t i = lo; i < f->arch_n && pg.count < max_records; i++) {
        const arch_ent_t *e = &f->arch[i];
        if (memcmp(e->tag, tag, 16) != 0 || e->bucket < from || e->bucket > to)
            continue;
        uint8_t *dst;
        st = cl_scan_page_add(&pg, e->id, e->bucket, NULL, e->len, &dst);
        if (st != CL_OK) {
            *len = pg.need;
            return st;
        }
        if (dst == NULL)
            break; /* a partial page: the caller continues with after_id = last id */
        int rc = e->len ? read_all(f->archfd, dst, e->len, e->off) : 0;
        if (rc != 0)
            return io_fail(f, "archive scan", rc < 0 ? errno : EIO);
    }
    *len = pg.pos;
    *n = pg.count;
    return CL_OK;
}

/* ------------------------------------------------------------ small ocalls */

static cl_status_t files_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                              size_t len)
{
    cl_files_t *f = ctx;
    if (f == NULL || (msg == NULL && len != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (f->send == NULL)
        return CL_ERR_UNSUPPORTED;
    return f->send(f->send_ctx, peer, transport, msg, len);
}

static cl_status_t files_time_now(void *ctx, int64_t *unix_ms)
{
    struct timespec ts;
    (void)ctx;
    if (unix_ms == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return CL_FAIL(CL_ERR_PERSIST);
    *unix_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return CL_OK;
}

static cl_status_t files_quote(void *ctx, const uint8_t *report, size_t report_len,
                               uint8_t *quote, size_t size, size_t *len)
{
    /* The runtime interposes the simulated quoting enclave (runtime.h). */
    (void)ctx;
    (void)report;
    (void)report_len;
    (void)quote;
    (void)size;
    (void)len;
    return CL_ERR_UNSUPPORTED;
}

static void files_log_line(void *ctx, int level, const char *line)
{
    cl_files_t *f = ctx;
    char esc[CL_CORE_MAX_LOG_LINE * 4 + 1];
    size_t o = 0;
    if (f == NULL || line == NULL)
        return;
    /* Bounded, escaped: a core line can never break the one-line log format. */
    for (size_t i = 0; i < CL_CORE_MAX_LOG_LINE && line[i] != '\0'; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == '"' || c == '\\') {
            esc[o++] = '\\';
            esc[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(esc + o, sizeof esc - o, "\\x%02x", c);
        } else {
            esc[o++] = (char)c;
        }
    }
    esc[o] = '\0';
    if (level < CL_LOG_ERROR || level > CL_LOG_DEBUG)
        level = CL_LOG_INFO;
    flog(f, level, "msg=\"core\" line=\"%s\"", esc);
}

/* ------------------------------------------------------------ open / close */

static cl_status_t scan_log_dir(cl_files_t *f)
{
    int fd = dup(f->logfd);
    if (fd < 0)
        return io_fail(f, "log scan", errno);
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int err = errno;
        close(fd);
        return io_fail(f, "log scan", err);
    }
    cl_status_t st = CL_OK;
    struct dirent *de;
    size_t stale = 0;
    while ((de = readdir(d)) != NULL) {
        uint64_t c;
        size_t l = strlen(de->d_name);
        if (parse_log_name(de->d_name, &c)) {
            if (log_index_insert(f, c) != CL_OK) {
                st = CL_FAIL(CL_ERR_PERSIST);
                break;
            }
        } else if (l > 4 && strcmp(de->d_name + l - 4, ".tmp") == 0) {
            /* An append that crashed before its rename: never acknowledged. */
            if (unlinkat(f->logfd, de->d_name, 0) == 0)
                stale++;
        }
    }
    closedir(d);
    if (stale > 0)
        flog(f, CL_LOG_WARN, "msg=\"stale log temp files removed\" count=%zu", stale);
    return st;
}

static int open_dir(int at, const char *path)
{
    if (mkdirat(at, path, 0700) != 0 && errno != EEXIST)
        return -1;
    return openat(at, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
}

cl_status_t cl_files_open(const char *dir, cl_files_t **out)
{
    return cl_files_open_logged(dir, NULL, NULL, out);
}

cl_status_t cl_files_open_logged(const char *dir, cl_host_log_fn log, void *log_ctx,
                                 cl_files_t **out)
{
    return cl_files_open_flags(dir, 0, log, log_ctx, out);
}

cl_status_t cl_files_open_flags(const char *dir, unsigned flags, cl_host_log_fn log,
                                void *log_ctx, cl_files_t **out)
{
    if (dir == NULL || out == NULL || (flags & ~(CL_FILES_NO_ARCHIVE | CL_FILES_NO_LOG)) != 0)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    cl_files_t *f = calloc(1, sizeof *f);
    if (f == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    f->dirfd = f->logfd = f->archfd = -1;
    f->log = log ? log : cl_store_default_log;
    f->log_ctx = log ? log_ctx : NULL;
    f->scratch = malloc(LOG_HDR + CL_CORE_MAX_RECORD + LOG_TRL);
    cl_status_t st = CL_OK;
    if (f->scratch == NULL) {
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    f->dirfd = open_dir(AT_FDCWD, dir);
    if (f->dirfd < 0) {
        st = io_fail(f, "open data dir", errno);
        goto fail;
    }
    if (flock(f->dirfd, LOCK_EX | LOCK_NB) != 0) {
        st = io_fail(f, "lock data dir (another cloisterd?)", errno);
        goto fail;
    }
    if ((flags & CL_FILES_NO_LOG) == 0) {
        f->logfd = open_dir(f->dirfd, "log");
        if (f->logfd < 0) {
            st = io_fail(f, "open log dir", errno);
            goto fail;
        }
        if (fsync_retry(f->dirfd) != 0) { /* a freshly created log/ must survive */
            st = io_fail(f, "open data dir", errno);
            goto fail;
        }
        if ((st = scan_log_dir(f)) != CL_OK)
            goto fail;
        if (unlinkat(f->dirfd, "snapshot.tmp", 0) == 0)
            flog(f, CL_LOG_WARN, "msg=\"stale snapshot.tmp removed\"");
    }
    if ((flags & CL_FILES_NO_ARCHIVE) == 0) {
        f->archfd =
            openat(f->dirfd, "archive.dat", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (f->archfd < 0) {
            st = io_fail(f, "open archive", errno);
            goto fail;
        }
        if ((st = arch_load(f)) != CL_OK)
            goto fail;
    }

    f->ops.version = CL_HOST_OPS_VERSION;
    f->ops.ctx = f;
    if ((flags & CL_FILES_NO_LOG) == 0) {
        f->ops.log_append = files_log_append;
        f->ops.log_read = files_log_read;
        f->ops.log_compact = files_log_compact;
        f->ops.snapshot_put = files_snapshot_put;
        f->ops.snapshot_get = files_snapshot_get;
    }
    if ((flags & CL_FILES_NO_ARCHIVE) == 0) {
        f->ops.archive_put = files_archive_put;
        f->ops.archive_scan = files_archive_scan;
    }
    f->ops.send = files_send;
    f->ops.time_now = files_time_now;
    f->ops.quote = files_quote;
    f->ops.log_line = files_log_line;
    *out = f;
    return CL_OK;
fail:
    cl_files_close(f);
    return st;
}

void cl_files_set_logger(cl_files_t *f, cl_host_log_fn fn, void *ctx)
{
    if (f == NULL)
        return;
    f->log = fn ? fn : cl_store_default_log;
    f->log_ctx = fn ? ctx : NULL;
}

void cl_files_set_send(cl_files_t *f, cl_host_send_fn fn, void *ctx)
{
    if (f == NULL)
        return;
    f->send = fn;
    f->send_ctx = ctx;
}

const cl_host_ops_t *cl_files_ops(cl_files_t *f)
{
    return f ? &f->ops : NULL;
}

void cl_files_close(cl_files_t *f)
{
    if (f == NULL)
        return;
    if (f->archfd >= 0)
        close(f->archfd);
    if (f->logfd >= 0)
        close(f->logfd);
    if (f->dirfd >= 0)
        close(f->dirfd); /* releases the flock */
    free(f->log_idx);
    free(f->arch);
    if (f->scratch != NULL) {
        memset(f->scratch, 0, LOG_HDR + CL_CORE_MAX_RECORD + LOG_TRL);
        free(f->scratch);
    }
    free(f);
}
