/*
 * test_archive_sqlite.c - the SQLite archive (host/archive_sqlite.c) and the
 * backend selection (host/storage_select.c): exact put/scan round trips,
 * filters and paging (archive_cases.h), group commit (an unsynced batch is
 * gone after a crash-like reopen), schema version refusal, a corrupted
 * oversized row skipped, file modes, WAL mode, and cl_storage_* choosing
 * backends by name.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "host_test_util.h"
#include <sqlite3.h>

#include "storage.h"
#include "commit_pipe.h"

#include "archive_cases.h"

typedef struct sq_fx {
    ac_fx_t ac; /* first: ac_fx() casts */
    char root[64];
    char dir[96];
    char path[128];
    cl_sqlite_t *a;
} sq_fx_t;

static ac_fx_t *ac_fx(void **state)
{
    return *state;
}

static void sq_open(sq_fx_t *fx)
{
    assert_int_equal(cl_sqlite_open(fx->dir, ac_capture_log, &fx->ac, &fx->a), CL_OK);
    fx->ac.ops = cl_sqlite_ops(fx->a);
    assert_non_null(fx->ac.ops);
    assert_int_equal(fx->ac.ops->version, CL_HOST_OPS_VERSION);
    assert_null(fx->ac.ops->log_append);
}

static void ac_reopen(ac_fx_t *afx)
{
    sq_fx_t *fx = (sq_fx_t *)afx;
    cl_sqlite_close(fx->a); /* rolls back like a crash would */
    fx->a = NULL;
    sq_open(fx);
}

static cl_status_t ac_sync(ac_fx_t *afx)
{
    return cl_sqlite_sync(((sq_fx_t *)afx)->a);
}

static int setup(void **state)
{
    sq_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    umask(022);
    snprintf(fx->root, sizeof fx->root, "/tmp/cl-sqlite-XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    snprintf(fx->dir, sizeof fx->dir, "%s/data", fx->root);
    snprintf(fx->path, sizeof fx->path, "%s/archive.sqlite", fx->dir);
    sq_open(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    sq_fx_t *fx = *state;
    cl_sqlite_close(fx->a);
    ht_rm_rf(fx->root);
    free(fx);
    return 0;
}

/* Runs SQL on the database file behind the backend's back (it is closed). */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sqlite: %s\n", err ? err : "?");
    sqlite3_free(err);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static void test_schema_version_refused(void **state)
{
    sq_fx_t *fx = *state;
    cl_sqlite_close(fx->a);
    fx->a = NULL;
    raw_exec(fx->path, "UPDATE schema_version SET version = 3;");
    cl_sqlite_t *a = NULL;
    fx->ac.log_lines = 0;
    assert_int_equal(cl_sqlite_open(fx->dir, ac_capture_log, &fx->ac, &a), CL_ERR_PERSIST);
    assert_null(a);
    assert_non_null(strstr(fx->ac.last_log, "newer"));
    assert_non_null(strstr(fx->ac.last_log, "found=3"));
    /* back to 2: opens again, data intact */
    raw_exec(fx->path, "UPDATE schema_version SET version = 2;");
    sq_open(fx);
}

static void test_schema_created_once(void **state)
{
    sq_fx_t *fx = *state;
    ac_reopen(&fx->ac);
    ac_reopen(&fx->ac);
    cl_sqlite_close(fx->a);
    fx->a = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), max(version) FROM schema_version",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    assert_int_equal(sqlite3_column_int(q, 1), 2);
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    /* v2: no index on events (appends stay cheap); events_idx and the merge mark exist */
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT (SELECT count(*) FROM sqlite_master WHERE "
                                        "type='index' AND tbl_name='events'),"
                                        " (SELECT count(*) FROM sqlite_master WHERE "
                                        "type='table' AND name='events_idx'),"
                                        " (SELECT v FROM archive_meta WHERE k='indexed_upto')",
                                        -1, &q, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 0);
    assert_int_equal(sqlite3_column_int(q, 1), 1);
    assert_int_equal(sqlite3_column_int(q, 2), 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    sq_open(fx);
}

/* One integer from the (closed) database file. */
static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

/* A version 1 file (one index on events) is migrated at open, rows intact. */
static void test_migrate_v1(void **state)
{
    sq_fx_t *fx = *state;
    cl_sqlite_close(fx->a);
    fx->a = NULL;
    ht_rm_rf(fx->dir);
    assert_int_equal(mkdir(fx->dir, 0700), 0);
    raw_exec(fx->path,
             "PRAGMA journal_mode=WAL;"
             "CREATE TABLE schema_version(version INTEGER NOT NULL);"
             "INSERT INTO schema_version VALUES (1);"
             "CREATE TABLE events(id INTEGER PRIMARY KEY, tag BLOB NOT NULL,"
             " bucket INTEGER NOT NULL, data BLOB NOT NULL);"
             "CREATE INDEX events_tag_bucket_id ON events(tag, bucket, id);"
             "INSERT INTO events VALUES (1, x'0102030405060708090a0b0c0d0e0f10', 5, x'01');"
             "INSERT INTO events VALUES (2, x'aa02030405060708090a0b0c0d0e0f00', 5, x'02');"
             "INSERT INTO events VALUES (3, x'0102030405060708090a0b0c0d0e0f10', 6, x'0303');");
    fx->ac.log_lines = 0;
    sq_open(fx);
    assert_non_null(strstr(fx->ac.last_log, "migrated"));
    uint64_t got[8];
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 0, UINT64_MAX, 0, got, 8), 2);
    assert_int_equal(got[0], 1);
    assert_int_equal(got[1], 3);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_B, 5, 5, 0, got, 8), 1);
    assert_int_equal(got[0], 2);
    /* new ids continue after the migrated ones */
    uint8_t d[3] = {7, 7, 7};
    assert_int_equal(ac_put1(&fx->ac, TAG_A, 6, d, sizeof d), 4);
    assert_int_equal(ac_sync(&fx->ac), CL_OK);
    cl_sqlite_close(fx->a);
    fx->a = NULL;
    assert_int_equal(raw_int(fx->path, "SELECT max(version) FROM schema_version"), 2);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM events_idx"), 3);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM sqlite_master WHERE name = "
                                       "'events_tag_bucket_id'"),
                     0);
    assert_int_equal(raw_int(fx->path, "SELECT v FROM archive_meta WHERE k = 'indexed_upto'"),
                     3);
    sq_open(fx);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 0, UINT64_MAX, 0, got, 8), 3);
}

/* Rows are merged into events_idx in bulk; scans see indexed and unmerged rows alike. */
static void test_index_merge(void **state)
{
    sq_fx_t *fx = *state;
    cl_sqlite_set_merge_rows(fx->a, 4);
    uint8_t d[16];
    uint64_t ids[11];
    for (int i = 0; i < 11; i++) {
        ac_fill(d, sizeof d, (unsigned)i);
        ids[i] = ac_put1(&fx->ac, (i % 3) ? TAG_A : TAG_B, (uint64_t)(10 + i / 4), d,
                         1 + (size_t)i);
        if (i % 2 == 1)
            assert_int_equal(ac_sync(&fx->ac), CL_OK);
    }
    assert_int_equal(ac_sync(&fx->ac), CL_OK);
    /* TAG_B: i = 0, 3, 6, 9; TAG_A the others, in id order across idx and tail */
    uint64_t got[16];
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_B, 0, UINT64_MAX, 0, got, 16), 4);
    assert_int_equal(got[0], ids[0]);
    assert_int_equal(got[3], ids[9]);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 0, UINT64_MAX, 0, got, 16), 7);
    assert_int_equal(got[0], ids[1]);
    assert_int_equal(got[6], ids[10]);
    /* paging across the boundary: after the 4th TAG_A row */
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 0, UINT64_MAX, got[3], got, 16), 3);
    assert_int_equal(got[0], ids[7]);
    /* bucket filter (bucket 11 = i 4..7) */
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 11, 11, 0, got, 16), 3);
    assert_int_equal(got[0], ids[4]);
    assert_int_equal(got[2], ids[7]);
    cl_sqlite_close(fx->a);
    fx->a = NULL;
    int64_t upto = raw_int(fx->path, "SELECT v FROM archive_meta WHERE k = 'indexed_upto'");
    assert_true(upto >= (int64_t)ids[7] && upto <= (int64_t)ids[10]);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM events_idx"), upto - (int64_t)ids[0] + 1);
    assert_int_equal(raw_int(fx->path, "SELECT count(*) FROM events"), 11);
    sq_open(fx);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 0, UINT64_MAX, 0, got, 16), 7);
}

/* The pipelined commit: rows are committed by the writer thread; a scan sees
 * only committed rows; tickets resolve in order; close commits what was
 * submitted and drops what was not. */
static void test_pipeline(void **state)
{
    sq_fx_t *fx = *state;
    cl_sqlite_set_merge_rows(fx->a, 16);
    assert_int_equal(cl_sqlite_start_pipeline(fx->a, 4), CL_OK);
    cl_pipe_t *p = cl_sqlite_pipe(fx->a);
    assert_non_null(p);
    uint8_t d[40];
    uint64_t got[256];
    ac_fill(d, sizeof d, 3);
    uint64_t first = ac_put1(&fx->ac, TAG_A, 1, d, sizeof d);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 0, UINT64_MAX, 0, got, 8), 0); /* not yet */
    uint64_t t1 = 0, t_empty = 0, last = 0;
    assert_int_equal(cl_pipe_submit(p, &t1), CL_OK);
    assert_true(t1 > 0);
    assert_int_equal(cl_pipe_submit(p, &t_empty), CL_OK); /* nothing new: the same ticket */
    assert_int_equal(t_empty, t1);
    assert_int_equal(cl_pipe_wait(p, t1), CL_OK);
    assert_true(cl_pipe_resolved(p) >= t1);
    assert_true(cl_pipe_ticket_ok(p, t1));
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 0, UINT64_MAX, 0, got, 8), 1);
    assert_int_equal(got[0], first);
    /* 40 batches submitted without waiting (the queue bound of 4 makes submit wait) */
    for (int b = 0; b < 40; b++) {
        for (int k = 0; k < 5; k++)
            (void)ac_put1(&fx->ac, (k & 1) ? TAG_B : TAG_A, 2, d, 1 + (size_t)k);
        uint64_t t = 0;
        assert_int_equal(cl_pipe_submit(p, &t), CL_OK);
        assert_true(t > last);
        last = t;
    }
    assert_int_equal(cl_pipe_wait(p, last), CL_OK);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 0, UINT64_MAX, 0, got, 256), 1 + 40 * 3);
    for (size_t i = 1; i < 1 + 40 * 3; i++)
        assert_true(got[i] > got[i - 1]);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_B, 0, UINT64_MAX, 0, got, 256), 40 * 2);
    /* cl_sqlite_sync in pipelined mode = submit + wait */
    (void)ac_put1(&fx->ac, TAG_B, 3, d, 2);
    assert_int_equal(ac_sync(&fx->ac), CL_OK);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_B, 3, 3, 0, got, 8), 1);
    cl_pipe_stats_t ps;
    cl_pipe_get_stats(p, &ps);
    assert_int_equal(ps.rows, 1 + 40 * 5 + 1);
    assert_int_equal(ps.failed_commits, 0);
    assert_true(ps.commits >= 3 && ps.commits <= ps.batches);
    /* one batch submitted (committed at close), one only put (dropped at close) */
    (void)ac_put1(&fx->ac, TAG_B, 4, d, 3);
    uint64_t t = 0;
    assert_int_equal(cl_pipe_submit(p, &t), CL_OK);
    (void)ac_put1(&fx->ac, TAG_B, 5, d, 4);
    ac_reopen(&fx->ac);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_B, 4, 4, 0, got, 8), 1);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_B, 5, 5, 0, got, 8), 0);
    assert_int_equal(ac_scan_ids(&fx->ac, TAG_A, 0, UINT64_MAX, 0, got, 256), 1 + 40 * 3);
}

static void test_corrupt_oversized_row_skipped(void **state)
{
    sq_fx_t *fx = *state;
    uint8_t d[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint64_t id1 = ac_put1(&fx->ac, TAG_A, 3, d, sizeof d);
    assert_int_equal(ac_sync(&fx->ac), CL_OK);
    cl_sqlite_close(fx->a);
    fx->a = NULL;
    /* a row longer than CL_CORE_MAX_RECORD with the same tag, then a good one */
    raw_exec(fx->path, "INSERT INTO events(tag, bucket, data) VALUES "
                       "(x'0102030405060708090a0b0c0d0e0f10', 3, zeroblob(70000));"
                       "INSERT INTO events(tag, bucket, data) VALUES "
                       "(x'0102030405060708090a0b0c0d0e0f10', 3, x'abcd');");
    sq_open(fx);
    static uint8_t buf[200000];
    size_t len = 0, n = 0;
    fx->ac.log_lines = 0;
    assert_int_equal(fx->ac.ops->archive_scan(fx->ac.ops->ctx, TAG_A, 0, UINT64_MAX, 0, 100, buf,
                                              sizeof buf, &len, &n),
                     CL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ac_get64(buf), id1);
    assert_int_equal(ac_get32(buf + 16), sizeof d);
    assert_int_equal(ac_get32(buf + 20 + sizeof d + 16), 2);
    assert_int_equal(len, 20 + sizeof d + 20 + 2);
    assert_true(fx->ac.log_lines >= 1);
    assert_non_null(strstr(fx->ac.last_log, "corrupt"));
    /* new ids go past the hand-made rows */
    uint64_t id4 = ac_put1(&fx->ac, TAG_A, 3, d, 1);
    assert_true(id4 > id1 + 2);
    assert_int_equal(ac_sync(&fx->ac), CL_OK);
}

static void test_modes(void **state)
{
    sq_fx_t *fx = *state;
    uint8_t d[4] = {0};
    (void)ac_put1(&fx->ac, TAG_A, 1, d, sizeof d);
    assert_int_equal(ac_sync(&fx->ac), CL_OK);
    struct stat sb;
    assert_int_equal(stat(fx->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(fx->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", fx->path);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
}

static void test_not_a_database(void **state)
{
    sq_fx_t *fx = *state;
    cl_sqlite_close(fx->a);
    fx->a = NULL;
    FILE *fp = fopen(fx->path, "w");
    assert_non_null(fp);
    fputs("this is not a database, but long enough to look like a header........", fp);
    fclose(fp);
    char p[160];
    snprintf(p, sizeof p, "%s-wal", fx->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", fx->path);
    unlink(p);
    cl_sqlite_t *a = NULL;
    assert_int_equal(cl_sqlite_open(fx->dir, ac_capture_log, &fx->ac, &a), CL_ERR_PERSIST);
    assert_null(a);
    assert_non_null(strstr(fx->ac.last_log, "backend=sqlite"));
}

/* ------------------------------------------------------------ selection */

static void test_select(void **state)
{
    sq_fx_t *fx = *state;
    char dir2[128];
    snprintf(dir2, sizeof dir2, "%s/sel", fx->root);
    cl_storage_config_t cfg = {.data_dir = dir2, .log_fn = ac_capture_log, .log_ctx = &fx->ac};
    cl_storage_t *s = NULL;

    cfg.archive = "nope";
    assert_int_equal(cl_storage_open(&cfg, &s), CL_ERR_INVALID_ARG);
    cfg.archive = "sqlite";
    cfg.log = "sqlite"; /* not a log backend */
    assert_int_equal(cl_storage_open(&cfg, &s), CL_ERR_INVALID_ARG);
    cfg.log = "pg"; /* pg without a conninfo */
    assert_int_equal(cl_storage_open(&cfg, &s), CL_ERR_INVALID_ARG);
    cfg.log = NULL;
    cfg.archive = NULL; /* defaults: files log, sqlite archive */
    assert_int_equal(cl_storage_open(&cfg, &s), CL_OK);
    assert_string_equal(cl_storage_describe(s), "log=files archive=sqlite");
    const cl_host_ops_t *ops = cl_storage_ops(s);
    assert_non_null(ops->log_append);
    assert_non_null(ops->time_now);
    uint8_t rec[5] = {5, 4, 3, 2, 1}, back[16];
    uint64_t got = 0;
    size_t len = 0;
    assert_int_equal(ops->log_append(ops->ctx, 1, rec, sizeof rec), CL_OK);
    assert_int_equal(ops->log_read(ops->ctx, 0, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(got, 1);
    assert_memory_equal(back, rec, sizeof rec);
    cl_archive_rec_t r = {.bucket = 1, .data = rec, .len = sizeof rec};
    memcpy(r.tag, TAG_B, 16);
    uint64_t id = 0;
    assert_int_equal(ops->archive_put(ops->ctx, &r, 1, &id), CL_OK);
    assert_int_equal(cl_storage_sync(s), CL_OK);
    /* a second daemon on the same directory is refused (flock) */
    cl_storage_t *s2 = NULL;
    assert_int_equal(cl_storage_open(&cfg, &s2), CL_ERR_PERSIST);
    cl_storage_close(s);
    char p[192];
    struct stat sb;
    snprintf(p, sizeof p, "%s/archive.sqlite", dir2);
    assert_int_equal(stat(p, &sb), 0);
    snprintf(p, sizeof p, "%s/archive.dat", dir2);
    assert_int_not_equal(stat(p, &sb), 0); /* no interim archive with sqlite */

    /* files archive: archive.dat, sync is a no-op */
    cfg.archive = "files";
    assert_int_equal(cl_storage_open(&cfg, &s), CL_OK);
    assert_string_equal(cl_storage_describe(s), "log=files archive=files");
    ops = cl_storage_ops(s);
    assert_int_equal(ops->archive_put(ops->ctx, &r, 1, &id), CL_OK);
    assert_int_equal(cl_storage_sync(s), CL_OK);
    cl_storage_close(s);
    assert_int_equal(stat(p, &sb), 0);

    /* sqlite again: the earlier row survived */
    cfg.archive = "sqlite";
    assert_int_equal(cl_storage_open(&cfg, &s), CL_OK);
    ops = cl_storage_ops(s);
    uint8_t buf[256];
    size_t n = 0;
    assert_int_equal(ops->archive_scan(ops->ctx, TAG_B, 0, UINT64_MAX, 0, 10, buf, sizeof buf,
                                       &len, &n),
                     CL_OK);
    assert_int_equal(n, 1);
    assert_memory_equal(buf + 20, rec, sizeof rec);
    cl_storage_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        AC_CASES(setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_created_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_oversized_row_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
