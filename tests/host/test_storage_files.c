/*
 * test_storage_files.c - the file storage backend behind cl_host_ops_t
 * (host/storage_files.c): exact round trips of log, snapshot and archive,
 * durability across close/reopen, torn and corrupted files (never returned,
 * never a huge allocation), atomic snapshot replacement, the archive_scan
 * output framing, permissions, the directory lock and I/O errors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "host_test_util.h"

#include "storage.h"

typedef struct fixture {
    char dir[64];
    cl_files_t *f;
    const cl_host_ops_t *ops;
    char last_log[1024];
    int log_lines;
} fixture_t;

static void capture_log(void *ctx, int level, const char *line)
{
    fixture_t *fx = ctx;
    (void)level;
    snprintf(fx->last_log, sizeof fx->last_log, "%s", line);
    fx->log_lines++;
}

static void fx_open(fixture_t *fx)
{
    assert_int_equal(cl_files_open_logged(fx->dir, capture_log, fx, &fx->f), CL_OK);
    fx->ops = cl_files_ops(fx->f);
    assert_non_null(fx->ops);
    assert_int_equal(fx->ops->version, CL_HOST_OPS_VERSION);
    assert_ptr_equal(fx->ops->ctx, fx->f);
}

static void fx_reopen(fixture_t *fx)
{
    cl_files_close(fx->f);
    fx->f = NULL;
    fx_open(fx);
}

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    umask(022);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/cl-storage-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    /* The backend creates the data dir itself: use a child of the temp dir. */
    strcat(fx->dir, "/data");
    fx_open(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    cl_files_close(fx->f);
    char parent[64];
    snprintf(parent, sizeof parent, "%s", fx->dir);
    *strrchr(parent, '/') = '\0';
    ht_rm_rf(parent);
    free(fx);
    return 0;
}

static void path_of(const fixture_t *fx, const char *rel, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", fx->dir, rel);
}

static void log_path(const fixture_t *fx, uint64_t counter, char *out, size_t size)
{
    snprintf(out, size, "%s/log/%020llu.rec", fx->dir, (unsigned long long)counter);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void append_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

static void put32le(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void put64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint32_t get32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads record >= counter, expecting (want_counter, data). */
static void expect_log(fixture_t *fx, uint64_t counter, uint64_t want_counter, const char *data)
{
    uint8_t buf[256];
    size_t len = 0;
    uint64_t got = 0;
    assert_int_equal(fx->ops->log_read(fx->ops->ctx, counter, &got, buf, sizeof buf, &len),
                     CL_OK);
    assert_int_equal(got, want_counter);
    assert_int_equal(len, strlen(data));
    assert_memory_equal(buf, data, len);
}

static void expect_log_end(fixture_t *fx, uint64_t counter)
{
    uint8_t buf[256];
    size_t len = 0;
    uint64_t got = 0;
    assert_int_equal(fx->ops->log_read(fx->ops->ctx, counter, &got, buf, sizeof buf, &len),
                     CL_ERR_NOT_FOUND);
}

static void append(fixture_t *fx, uint64_t counter, const char *data)
{
    assert_int_equal(fx->ops->log_append(fx->ops->ctx, counter, (const uint8_t *)data,
                                         strlen(data)),
                     CL_OK);
}

/* ------------------------------------------------------------ log */

static void test_log_roundtrip(void **state)
{
    fixture_t *fx = *state;
    expect_log_end(fx, 0);
    append(fx, 1, "first sealed record");
    append(fx, 2, "second");
    append(fx, 5, "fifth, after a gap");
    append(fx, 7, "");
    expect_log(fx, 0, 1, "first sealed record");
    expect_log(fx, 1, 1, "first sealed record");
    expect_log(fx, 2, 2, "second");
    expect_log(fx, 3, 5, "fifth, after a gap");
    expect_log(fx, 6, 7, "");
    expect_log_end(fx, 8);

    /* Exact on-disk framing: [u64 counter][u32 len][bytes][u32 crc32]. */
    char p[256];
    log_path(fx, 2, p, sizeof p);
    assert_int_equal(file_size(p), 8 + 4 + 6 + 4);

    /* Short buffer: BUFFER_TOO_SMALL, the needed size reported, buf untouched. */
    uint8_t small[4] = {0xAA, 0xAA, 0xAA, 0xAA};
    size_t len = 0;
    uint64_t got = 99;
    assert_int_equal(fx->ops->log_read(fx->ops->ctx, 1, &got, small, sizeof small, &len),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, strlen("first sealed record"));
    assert_int_equal(got, 99);
    assert_int_equal(small[0], 0xAA);

    /* Re-appending a counter replaces it. */
    append(fx, 2, "second, rewritten");
    expect_log(fx, 2, 2, "second, rewritten");

    /* Oversized record refused. */
    static uint8_t big[CL_CORE_MAX_RECORD + 1];
    assert_int_equal(fx->ops->log_append(fx->ops->ctx, 9, big, sizeof big), CL_ERR_INVALID_ARG);
    assert_int_equal(fx->ops->log_append(fx->ops->ctx, 9, big, CL_CORE_MAX_RECORD), CL_OK);
    static uint8_t back[CL_CORE_MAX_RECORD];
    assert_int_equal(fx->ops->log_read(fx->ops->ctx, 8, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(got, 9);
    assert_int_equal(len, CL_CORE_MAX_RECORD);
}

static void test_log_durable_after_reopen(void **state)
{
    fixture_t *fx = *state;
    append(fx, 10, "ten");
    append(fx, 11, "eleven");
    fx_reopen(fx);
    expect_log(fx, 0, 10, "ten");
    expect_log(fx, 11, 11, "eleven");
    expect_log_end(fx, 12);
    /* Unrelated files in log/ are not records. */
    char p[256];
    path_of(fx, "log/notes.txt", p, sizeof p);
    write_file(p, "x", 1);
    path_of(fx, "log/123.rec", p, sizeof p);
    write_file(p, "x", 1);
    fx_reopen(fx);
    expect_log(fx, 0, 10, "ten");
    expect_log_end(fx, 12);
}

static void test_log_compact(void **state)
{
    fixture_t *fx = *state;
    for (uint64_t c = 1; c <= 5; c++) {
        char d[16];
        snprintf(d, sizeof d, "rec-%llu", (unsigned long long)c);
        append(fx, c, d);
    }
    assert_int_equal(fx->ops->log_compact(fx->ops->ctx, 3), CL_OK);
    expect_log(fx, 0, 3, "rec-3");
    char p[256];
    log_path(fx, 1, p, sizeof p);
    assert_int_equal(access(p, F_OK), -1);
    log_path(fx, 2, p, sizeof p);
    assert_int_equal(access(p, F_OK), -1);
    fx_reopen(fx);
    expect_log(fx, 0, 3, "rec-3");
    expect_log(fx, 5, 5, "rec-5");
    assert_int_equal(fx->ops->log_compact(fx->ops->ctx, 100), CL_OK);
    expect_log_end(fx, 0);
}

static void test_log_torn_tail_ignored(void **state)
{
    fixture_t *fx = *state;
    append(fx, 1, "complete record one");
    append(fx, 2, "record two, torn by a crash");
    char p[256];
    log_path(fx, 2, p, sizeof p);
    assert_int_equal(truncate(p, 8 + 4 + 5), 0); /* crash mid-write */
    /* A crash before rename leaves only a .tmp: removed at open, never a record. */
    char t[256];
    snprintf(t, sizeof t, "%s/log/%020d.tmp", fx->dir, 3);
    write_file(t, "partial", 7);
    fx_reopen(fx);
    assert_int_equal(access(t, F_OK), -1);
    expect_log(fx, 0, 1, "complete record one");
    expect_log_end(fx, 2);
    assert_non_null(strstr(fx->last_log, "torn or corrupt"));

    /* A flipped bit (CRC mismatch) and a counter that disagrees with the name. */
    append(fx, 4, "record four");
    log_path(fx, 4, p, sizeof p);
    int fd = open(p, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, 14), 1);
    b ^= 0x01;
    assert_int_equal(pwrite(fd, &b, 1, 14), 1);
    close(fd);
    expect_log_end(fx, 2);

    append(fx, 6, "six");
    char p6[256], p8[256];
    log_path(fx, 6, p6, sizeof p6);
    log_path(fx, 8, p8, sizeof p8);
    assert_int_equal(rename(p6, p8), 0); /* substituted under another counter */
    fx_reopen(fx);
    expect_log_end(fx, 2);
    /* A later good record is still reachable past the bad ones (the core sees the gap). */
    append(fx, 9, "nine");
    expect_log(fx, 2, 9, "nine");
}

static void test_log_corrupt_length_refused(void **state)
{
    fixture_t *fx = *state;
    /* Header claims 4 GiB - 16: refused from the file size, no allocation, no over-read. */
    uint8_t rec[8 + 4 + 4 + 4];
    memset(rec, 0, sizeof rec);
    put64le(rec, 3);
    put32le(rec + 8, 0xFFFFFFF0u);
    char p[256];
    log_path(fx, 3, p, sizeof p);
    write_file(p, rec, sizeof rec);
    /* A file far larger than any record (sparse, 1 GiB): refused by its size. */
    log_path(fx, 4, p, sizeof p);
    write_file(p, rec, sizeof rec);
    assert_int_equal(truncate(p, 1024L * 1024L * 1024L), 0);
    append(fx, 5, "good");
    fx_reopen(fx);
    expect_log(fx, 0, 5, "good");
    assert_non_null(strstr(fx->last_log, "counter=4"));
}

/* ------------------------------------------------------------ snapshot */

static void test_snapshot_roundtrip_atomic(void **state)
{
    fixture_t *fx = *state;
    uint8_t buf[128];
    size_t len = 0;
    assert_int_equal(fx->ops->snapshot_get(fx->ops->ctx, buf, sizeof buf, &len),
                     CL_ERR_NOT_FOUND);
    const char *a = "sealed snapshot A";
    assert_int_equal(fx->ops->snapshot_put(fx->ops->ctx, (const uint8_t *)a, strlen(a)), CL_OK);
    assert_int_equal(fx->ops->snapshot_get(fx->ops->ctx, buf, sizeof buf, &len), CL_OK);
    assert_int_equal(len, strlen(a));
    assert_memory_equal(buf, a, len);

    /* A crash while writing B leaves snapshot.tmp: ignored (and removed) on reopen. */
    char p[256];
    path_of(fx, "snapshot.tmp", p, sizeof p);
    write_file(p, "\x05\x00\x00\x00garbage", 11);
    fx_reopen(fx);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(fx->ops->snapshot_get(fx->ops->ctx, buf, sizeof buf, &len), CL_OK);
    assert_memory_equal(buf, a, strlen(a));

    const char *b = "snapshot B, longer than A was";
    assert_int_equal(fx->ops->snapshot_put(fx->ops->ctx, (const uint8_t *)b, strlen(b)), CL_OK);
    fx_reopen(fx);
    assert_int_equal(fx->ops->snapshot_get(fx->ops->ctx, buf, sizeof buf, &len), CL_OK);
    assert_int_equal(len, strlen(b));
    assert_memory_equal(buf, b, len);

    /* Short buffer: the needed size, nothing written. */
    uint8_t small[8];
    memset(small, 0xAA, sizeof small);
    assert_int_equal(fx->ops->snapshot_get(fx->ops->ctx, small, sizeof small, &len),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, strlen(b));
    assert_int_equal(small[0], 0xAA);

    assert_int_equal(fx->ops->snapshot_put(fx->ops->ctx, (const uint8_t *)b,
                                           CL_CORE_MAX_SNAPSHOT + 1),
                     CL_ERR_INVALID_ARG);
}

static void test_snapshot_corrupt_refused(void **state)
{
    fixture_t *fx = *state;
    uint8_t buf[64];
    size_t len = 0;
    char p[256];
    path_of(fx, "snapshot", p, sizeof p);
    /* Length field larger than the file. */
    uint8_t s[4 + 3 + 4] = {0};
    put32le(s, 0x7FFFFFFFu);
    write_file(p, s, sizeof s);
    assert_int_equal(fx->ops->snapshot_get(fx->ops->ctx, buf, sizeof buf, &len), CL_ERR_PERSIST);
    /* Right length, wrong checksum: refused and the buffer wiped. */
    put32le(s, 3);
    memcpy(s + 4, "abc", 3);
    write_file(p, s, sizeof s);
    memset(buf, 0, sizeof buf);
    assert_int_equal(fx->ops->snapshot_get(fx->ops->ctx, buf, sizeof buf, &len), CL_ERR_PERSIST);
    assert_int_equal(buf[0], 0);
    /* Over the cap by size: refused without reading. */
    assert_int_equal(truncate(p, (off_t)CL_CORE_MAX_SNAPSHOT + 64), 0);
    assert_int_equal(fx->ops->snapshot_get(fx->ops->ctx, buf, sizeof buf, &len), CL_ERR_PERSIST);
}

/* ------------------------------------------------------------ archive */

static const uint8_t TAG1[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
static const uint8_t TAG2[16] = {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};

static void put_three(fixture_t *fx, uint64_t ids[3])
{
    cl_archive_rec_t recs[3];
    memset(recs, 0, sizeof recs);
    memcpy(recs[0].tag, TAG1, 16);
    recs[0].bucket = 10;
    recs[0].data = (const uint8_t *)"ct-one";
    recs[0].len = 6;
    memcpy(recs[1].tag, TAG2, 16);
    recs[1].bucket = 11;
    recs[1].data = (const uint8_t *)"ct-two";
    recs[1].len = 6;
    memcpy(recs[2].tag, TAG1, 16);
    recs[2].bucket = 12;
    recs[2].data = (const uint8_t *)"ct-three";
    recs[2].len = 8;
    assert_int_equal(fx->ops->archive_put(fx->ops->ctx, recs, 3, ids), CL_OK);
}

static void test_archive_put_scan(void **state)
{
    fixture_t *fx = *state;
    uint64_t ids[3];
    put_three(fx, ids);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 2);
    assert_int_equal(ids[2], 3);

    char p[256];
    path_of(fx, "archive.dat", p, sizeof p);
    assert_int_equal(file_size(p), 3 * 36 + 6 + 6 + 8);

    uint8_t buf[256];
    size_t len = 0, n = 0;
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG1, 0, 100, 0, 10, buf, sizeof buf,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(n, 2);
    /* Exact framing: [u64 id][u64 bucket][u32 len][bytes], little-endian. */
    static const uint8_t want[] = {
        1, 0, 0, 0, 0, 0, 0, 0,  /* id 1 */
        10, 0, 0, 0, 0, 0, 0, 0, /* bucket 10 */
        6, 0, 0, 0,              /* len 6 */
        'c', 't', '-', 'o', 'n', 'e',
        3, 0, 0, 0, 0, 0, 0, 0,  /* id 3 */
        12, 0, 0, 0, 0, 0, 0, 0, /* bucket 12 */
        8, 0, 0, 0,              /* len 8 */
        'c', 't', '-', 't', 'h', 'r', 'e', 'e',
    };
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);

    /* after_id, bucket range, max_records filters. */
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG1, 0, 100, 1, 10, buf, sizeof buf,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(get64le(buf), 3);
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG1, 11, 11, 0, 10, buf, sizeof buf,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(len, 0);
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG1, 10, 10, 0, 10, buf, sizeof buf,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG1, 0, 100, 0, 1, buf, sizeof buf,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(get64le(buf), 1);
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG2, 0, UINT64_MAX, 0, 10, buf,
                                           sizeof buf, &len, &n),
                     CL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(get64le(buf), 2);
    assert_int_equal(get64le(buf + 8), 11);
    assert_int_equal(get32le(buf + 16), 6);

    /* Buffer for one record only: a partial page; too small for any: BUFFER_TOO_SMALL. */
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG1, 0, 100, 0, 10, buf, 20 + 6 + 5,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(len, 26);
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG1, 0, 100, 0, 10, buf, 10, &len, &n),
                     CL_ERR_BUFFER_TOO_SMALL);

    /* Durable: the same after reopen, ids continue. */
    fx_reopen(fx);
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG1, 0, 100, 0, 10, buf, sizeof buf,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    put_three(fx, ids);
    assert_int_equal(ids[0], 4);
    assert_int_equal(ids[2], 6);
}

static void test_archive_torn_and_corrupt_tail(void **state)
{
    fixture_t *fx = *state;
    uint64_t ids[3];
    put_three(fx, ids);
    char p[256];
    path_of(fx, "archive.dat", p, sizeof p);
    off_t good = file_size(p);

    /* Torn: a header promising 100 bytes, only 3 written. */
    uint8_t h[36 + 3];
    memset(h, 0, sizeof h);
    put64le(h, 4);
    put32le(h + 32, 100);
    append_file(p, h, sizeof h);
    fx_reopen(fx);
    assert_int_equal(file_size(p), good);
    assert_non_null(strstr(fx->last_log, "archive tail dropped"));

    /* Corrupt length (over the cap) in an otherwise complete frame. */
    uint8_t c[36 + 8];
    memset(c, 0, sizeof c);
    put64le(c, 4);
    put32le(c + 32, 0xFFFFFFFFu);
    append_file(p, c, sizeof c);
    fx_reopen(fx);
    assert_int_equal(file_size(p), good);

    put_three(fx, ids);
    assert_int_equal(ids[0], 4);
    uint8_t buf[512];
    size_t len = 0, n = 0;
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG1, 0, 100, 0, 100, buf, sizeof buf,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(n, 4);
}

/* ------------------------------------------------------------ misc */

static void test_permissions(void **state)
{
    fixture_t *fx = *state;
    append(fx, 1, "x");
    assert_int_equal(fx->ops->snapshot_put(fx->ops->ctx, (const uint8_t *)"s", 1), CL_OK);
    uint64_t ids[3];
    put_three(fx, ids);
    struct {
        const char *rel;
        mode_t mode;
    } want[] = {{"", 0700},
                {"log", 0700},
                {"snapshot", 0600},
                {"archive.dat", 0600},
                {"log/00000000000000000001.rec", 0600}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char p[256];
        struct stat sb;
        path_of(fx, want[i].rel, p, sizeof p);
        assert_int_equal(stat(p, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, want[i].mode);
    }
}

static void test_lock_and_small_ocalls(void **state)
{
    fixture_t *fx = *state;
    cl_files_t *second = NULL;
    assert_int_equal(cl_files_open(fx->dir, &second), CL_ERR_PERSIST);
    assert_null(second);

    int64_t ms = 0;
    assert_int_equal(fx->ops->time_now(fx->ops->ctx, &ms), CL_OK);
    int64_t now = (int64_t)time(NULL) * 1000;
    assert_true(ms > now - 5000 && ms < now + 5000);

    assert_int_equal(fx->ops->send(fx->ops->ctx, 1, CL_TRANSPORT_COAP, (const uint8_t *)"m", 1),
                     CL_ERR_UNSUPPORTED);

    /* Core log lines are bounded and escaped into one line. */
    fx->ops->log_line(fx->ops->ctx, CL_LOG_INFO, "quote\" newline\n end");
    assert_string_equal(fx->last_log, "msg=\"core\" line=\"quote\\\" newline\\x0a end\"");
    char longline[1000];
    memset(longline, 'a', sizeof longline - 1);
    longline[sizeof longline - 1] = '\0';
    fx->ops->log_line(fx->ops->ctx, CL_LOG_INFO, longline);
    assert_true(strlen(fx->last_log) < CL_CORE_MAX_LOG_LINE + 32);
}

static cl_status_t fake_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                             size_t len)
{
    int *calls = ctx;
    (void)msg;
    assert_int_equal(peer, 42);
    assert_int_equal(transport, CL_TRANSPORT_COAP);
    assert_int_equal(len, 3);
    (*calls)++;
    return CL_OK;
}

static void test_send_routed(void **state)
{
    fixture_t *fx = *state;
    int calls = 0;
    cl_files_set_send(fx->f, fake_send, &calls);
    assert_int_equal(fx->ops->send(fx->ops->ctx, 42, CL_TRANSPORT_COAP,
                                   (const uint8_t *)"abc", 3),
                     CL_OK);
    assert_int_equal(calls, 1);
}

static void test_write_errors_are_persist(void **state)
{
    fixture_t *fx = *state;
    uint8_t buf[256];
    size_t len = 0;

    /* EFBIG from RLIMIT_FSIZE stands in for ENOSPC/EIO (works as root too). */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 16;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    memset(buf, 'x', sizeof buf);
    cl_status_t st_log = fx->ops->log_append(fx->ops->ctx, 1, buf, 100);
    cl_status_t st_snap = fx->ops->snapshot_put(fx->ops->ctx, buf, 100);
    cl_archive_rec_t rec = {.bucket = 1, .data = buf, .len = 100};
    uint64_t id = 0;
    cl_status_t st_arch = fx->ops->archive_put(fx->ops->ctx, &rec, 1, &id);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(st_log, CL_ERR_PERSIST);
    assert_int_equal(st_snap, CL_ERR_PERSIST);
    assert_int_equal(st_arch, CL_ERR_PERSIST);
    assert_non_null(strstr(fx->last_log, "archive put failed"));

    /* Nothing half-written became visible, and the backend still works. */
    expect_log_end(fx, 0);
    assert_int_equal(fx->ops->snapshot_get(fx->ops->ctx, buf, sizeof buf, &len),
                     CL_ERR_NOT_FOUND);
    char p[256];
    path_of(fx, "archive.dat", p, sizeof p);
    assert_int_equal(file_size(p), 0);
    append(fx, 1, "after the error");
    expect_log(fx, 0, 1, "after the error");

    /* The log directory vanished under the daemon: an error, not a crash. */
    assert_int_equal(fx->ops->log_compact(fx->ops->ctx, 2), CL_OK);
    path_of(fx, "log", p, sizeof p);
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(fx->ops->log_append(fx->ops->ctx, 2, (const uint8_t *)"x", 1),
                     CL_ERR_PERSIST);
    assert_non_null(strstr(fx->last_log, "log append failed"));

    /* An unusable data directory is an error, not a crash. */
    cl_files_t *bad = NULL;
    assert_int_equal(cl_files_open("/proc/cl-no-such/dir", &bad), CL_ERR_PERSIST);
    assert_null(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_durable_after_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_torn_tail_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_corrupt_length_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_roundtrip_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_corrupt_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_put_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_torn_and_corrupt_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lock_and_small_ocalls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_routed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_errors_are_persist, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
