/*
 * test_storage_pg.c - the PostgreSQL backend (host/storage_pg.c) against a
 * REAL server: tests/integration/pg_server.sh starts one on loopback in a
 * temporary directory and runs this program with CL_TEST_PG_CONNINFO set.
 * The archive cases of archive_cases.h (exact round trips, filters, paging,
 * group commit across a crash-like reopen), plus the sealed log
 * (append/read/compact, overwrite, oversized rows skipped), the snapshot
 * (atomic replace), schema version refusal, a server that is unreachable
 * (no crash, no conninfo in the log), reconnect after the server drops the
 * connection, and a batch lost with its connection failing its sync.
 * Exit 77 (skip) without CL_TEST_PG_CONNINFO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "storage.h"

#include "archive_cases.h"

static const char *conninfo;

typedef struct pg_fx {
    ac_fx_t ac; /* first: ac_fx() casts */
    cl_pg_t *p;
    PGconn *admin; /* the test's own connection, behind the backend's back */
} pg_fx_t;

static ac_fx_t *ac_fx(void **state)
{
    return *state;
}

static void admin_exec(pg_fx_t *fx, const char *sql)
{
    PGresult *r = PQexec(fx->admin, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fprintf(stderr, "admin: %s", PQerrorMessage(fx->admin));
    assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
    PQclear(r);
}

static long admin_long(pg_fx_t *fx, const char *sql)
{
    PGresult *r = PQexec(fx->admin, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void pg_open(pg_fx_t *fx)
{
    assert_int_equal(cl_pg_open(conninfo, ac_capture_log, &fx->ac, &fx->p), CL_OK);
    fx->ac.ops = cl_pg_ops(fx->p);
    assert_non_null(fx->ac.ops);
    assert_int_equal(fx->ac.ops->version, CL_HOST_OPS_VERSION);
}

static void ac_reopen(ac_fx_t *afx)
{
    pg_fx_t *fx = (pg_fx_t *)afx;
    cl_pg_close(fx->p); /* rolls back like a crash would */
    fx->p = NULL;
    pg_open(fx);
}

static cl_status_t ac_sync(ac_fx_t *afx)
{
    return cl_pg_sync(((pg_fx_t *)afx)->p);
}

static int setup(void **state)
{
    pg_fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->admin = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(fx->admin), CONNECTION_OK);
    PQclear(PQexec(fx->admin, "SET client_min_messages = warning"));
    /* every case starts from an empty database */
    admin_exec(fx, "DROP TABLE IF EXISTS cloister_events, cloister_log, cloister_snapshot, "
                   "cloister_schema");
    pg_open(fx);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    pg_fx_t *fx = *state;
    cl_pg_close(fx->p);
    PQfinish(fx->admin);
    free(fx);
    return 0;
}

/* ------------------------------------------------------------ sealed log */

static void test_log_semantics(void **state)
{
    pg_fx_t *fx = *state;
    const cl_host_ops_t *o = fx->ac.ops;
    static uint8_t rec[CL_CORE_MAX_RECORD], back[CL_CORE_MAX_RECORD];
    uint64_t got = 0;
    size_t len = 0;

    assert_int_equal(o->log_read(o->ctx, 0, &got, back, sizeof back, &len), CL_ERR_NOT_FOUND);
    for (uint64_t c = 1; c <= 5; c++) {
        ac_fill(rec, 100 + c, (unsigned)c);
        assert_int_equal(o->log_append(o->ctx, c, rec, 100 + c), CL_OK);
    }
    /* durable per append: visible on another connection at once */
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_log"), 5);
    assert_int_equal(o->log_read(o->ctx, 0, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(got, 1);
    assert_int_equal(len, 101);
    ac_fill(rec, 101, 1);
    assert_memory_equal(back, rec, 101);
    assert_int_equal(o->log_read(o->ctx, 3, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(got, 3);
    ac_fill(rec, 103, 3);
    assert_memory_equal(back, rec, 103);
    assert_int_equal(o->log_read(o->ctx, 6, &got, back, sizeof back, &len), CL_ERR_NOT_FOUND);
    /* short buffer: nothing written, size reported */
    assert_int_equal(o->log_read(o->ctx, 4, &got, back, 10, &len), CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 104);
    /* compact < 3 */
    assert_int_equal(o->log_compact(o->ctx, 3), CL_OK);
    assert_int_equal(o->log_read(o->ctx, 0, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(got, 3);
    /* the same counter again replaces (like the file backend's rename) */
    ac_fill(rec, 7, 77);
    assert_int_equal(o->log_append(o->ctx, 3, rec, 7), CL_OK);
    assert_int_equal(o->log_read(o->ctx, 3, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(back, rec, 7);
    /* max size and empty records */
    ac_fill(rec, sizeof rec, 9);
    assert_int_equal(o->log_append(o->ctx, 10, rec, sizeof rec), CL_OK);
    assert_int_equal(o->log_append(o->ctx, 11, rec, 0), CL_OK);
    assert_int_equal(o->log_read(o->ctx, 6, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(got, 10);
    assert_int_equal(len, sizeof rec);
    assert_memory_equal(back, rec, sizeof rec);
    assert_int_equal(o->log_read(o->ctx, 11, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(len, 0);
    assert_int_equal(o->log_append(o->ctx, 12, rec, sizeof rec + 1), CL_ERR_INVALID_ARG);
    /* a corrupted oversized row is skipped, never copied */
    admin_exec(fx, "INSERT INTO cloister_log VALUES (20, convert_to(repeat('x', 70000), 'UTF8'))");
    admin_exec(fx, "INSERT INTO cloister_log VALUES (21, '\\x0102'::bytea)");
    fx->ac.log_lines = 0;
    assert_int_equal(o->log_read(o->ctx, 12, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(got, 21);
    assert_int_equal(len, 2);
    assert_non_null(strstr(fx->ac.last_log, "corrupt"));
    /* survives a reopen */
    ac_reopen(&fx->ac);
    o = fx->ac.ops;
    assert_int_equal(o->log_read(o->ctx, 0, &got, back, sizeof back, &len), CL_OK);
    assert_int_equal(got, 3);
    assert_int_equal(o->log_compact(o->ctx, UINT64_MAX), CL_OK);
    assert_int_equal(o->log_read(o->ctx, 0, &got, back, sizeof back, &len), CL_ERR_NOT_FOUND);
}

static void test_snapshot_semantics(void **state)
{
    pg_fx_t *fx = *state;
    const cl_host_ops_t *o = fx->ac.ops;
    static uint8_t a[300000], b[1000], back[300000];
    size_t len = 0;
    assert_int_equal(o->snapshot_get(o->ctx, back, sizeof back, &len), CL_ERR_NOT_FOUND);
    ac_fill(a, sizeof a, 1);
    ac_fill(b, sizeof b, 2);
    assert_int_equal(o->snapshot_put(o->ctx, a, sizeof a), CL_OK);
    assert_int_equal(o->snapshot_get(o->ctx, back, sizeof back, &len), CL_OK);
    assert_int_equal(len, sizeof a);
    assert_memory_equal(back, a, sizeof a);
    assert_int_equal(o->snapshot_put(o->ctx, b, sizeof b), CL_OK);
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_snapshot"), 1);
    assert_int_equal(o->snapshot_get(o->ctx, back, 10, &len), CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, sizeof b);
    ac_reopen(&fx->ac);
    o = fx->ac.ops;
    assert_int_equal(o->snapshot_get(o->ctx, back, sizeof back, &len), CL_OK);
    assert_int_equal(len, sizeof b);
    assert_memory_equal(back, b, sizeof b);
    /* only id 1 may exist */
    PGresult *r = PQexec(fx->admin, "INSERT INTO cloister_snapshot VALUES (2, '\\x00'::bytea)");
    assert_int_equal(PQresultStatus(r), PGRES_FATAL_ERROR);
    PQclear(r);
}

/* ------------------------------------------------------------ archive extras */

static void test_archive_group_commit_visibility(void **state)
{
    pg_fx_t *fx = *state;
    uint8_t d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    (void)ac_put1(&fx->ac, TAG_A, 1, d, sizeof d);
    (void)ac_put1(&fx->ac, TAG_A, 1, d, sizeof d);
    /* not committed yet: another connection does not see the batch */
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_events"), 0);
    /* a log append meanwhile is durable on its own (separate connection) */
    assert_int_equal(fx->ac.ops->log_append(fx->ac.ops->ctx, 1, d, sizeof d), CL_OK);
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_log"), 1);
    assert_int_equal(cl_pg_sync(fx->p), CL_OK);
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_events"), 2);
}

static void test_archive_corrupt_row_skipped(void **state)
{
    pg_fx_t *fx = *state;
    uint8_t d[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    uint64_t id1 = ac_put1(&fx->ac, TAG_A, 3, d, sizeof d);
    assert_int_equal(cl_pg_sync(fx->p), CL_OK);
    admin_exec(fx, "INSERT INTO cloister_events(tag, bucket, data) VALUES "
                   "('\\x0102030405060708090a0b0c0d0e0f10'::bytea, 3, "
                   "convert_to(repeat('y', 70000), 'UTF8'))");
    admin_exec(fx, "INSERT INTO cloister_events(tag, bucket, data) VALUES "
                   "('\\x0102030405060708090a0b0c0d0e0f10'::bytea, 3, '\\xabcd'::bytea)");
    static uint8_t buf[200000];
    size_t len = 0, n = 0;
    fx->ac.log_lines = 0;
    assert_int_equal(fx->ac.ops->archive_scan(fx->ac.ops->ctx, TAG_A, 0, UINT64_MAX, 0, 100, buf,
                                              sizeof buf, &len, &n),
                     CL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ac_get64(buf), id1);
    assert_int_equal(len, 20 + sizeof d + 20 + 2);
    assert_non_null(strstr(fx->ac.last_log, "corrupt"));
}

/* ------------------------------------------------------------ schema, failures */

static void test_schema_version_refused(void **state)
{
    pg_fx_t *fx = *state;
    cl_pg_close(fx->p);
    fx->p = NULL;
    admin_exec(fx, "UPDATE cloister_schema SET version = 2");
    cl_pg_t *p = NULL;
    assert_int_equal(cl_pg_open(conninfo, ac_capture_log, &fx->ac, &p), CL_ERR_PERSIST);
    assert_null(p);
    assert_non_null(strstr(fx->ac.last_log, "newer"));
    assert_non_null(strstr(fx->ac.last_log, "found=2"));
    admin_exec(fx, "UPDATE cloister_schema SET version = 1");
    pg_open(fx);
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_schema"), 1);
}

static void test_unreachable_server(void **state)
{
    pg_fx_t *fx = *state;
    cl_pg_t *p = NULL;
    fx->ac.log_lines = 0;
    assert_int_equal(cl_pg_open("host=127.0.0.1 port=1 dbname=x user=u "
                                "password=SECRET-PW-123 connect_timeout=2",
                                ac_capture_log, &fx->ac, &p),
                     CL_ERR_PERSIST);
    assert_null(p);
    assert_true(fx->ac.log_lines >= 1);
    assert_non_null(strstr(fx->ac.last_log, "connect failed"));
    assert_null(strstr(fx->ac.last_log, "SECRET-PW-123"));
}

static void kill_backend_sessions(pg_fx_t *fx)
{
    admin_exec(fx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                   "WHERE pid <> pg_backend_pid() AND datname = current_database()");
}

static void test_reconnect(void **state)
{
    pg_fx_t *fx = *state;
    const cl_host_ops_t *o = fx->ac.ops;
    uint8_t d[4] = {1, 2, 3, 4}, back[16];
    uint64_t got = 0;
    size_t len = 0;
    assert_int_equal(o->log_append(o->ctx, 1, d, sizeof d), CL_OK);
    (void)ac_put1(&fx->ac, TAG_A, 1, d, sizeof d);
    assert_int_equal(cl_pg_sync(fx->p), CL_OK);
    (void)ac_put1(&fx->ac, TAG_A, 1, d, sizeof d); /* an open batch ... */
    kill_backend_sessions(fx);                     /* ... dies with its connection */
    /* the log: a failed call (logged) at most once, then it reconnects */
    cl_status_t st = o->log_read(o->ctx, 0, &got, back, sizeof back, &len);
    if (st != CL_OK) {
        assert_int_equal(st, CL_ERR_PERSIST);
        st = o->log_read(o->ctx, 0, &got, back, sizeof back, &len);
    }
    assert_int_equal(st, CL_OK);
    assert_int_equal(got, 1);
    /* the batch is lost: its sync must fail so no response is sent */
    assert_int_equal(cl_pg_sync(fx->p), CL_ERR_PERSIST);
    /* and the next batch works on a new connection */
    uint64_t id = 0;
    cl_archive_rec_t r = {.bucket = 1, .data = d, .len = sizeof d};
    memcpy(r.tag, TAG_A, 16);
    st = o->archive_put(o->ctx, &r, 1, &id);
    if (st != CL_OK)
        st = o->archive_put(o->ctx, &r, 1, &id);
    assert_int_equal(st, CL_OK);
    assert_int_equal(cl_pg_sync(fx->p), CL_OK);
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_events"), 2);
}

/* cl_storage_open with both pg backends on one server. */
static void test_select_pg(void **state)
{
    pg_fx_t *fx = *state;
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/cl-selpg-XXXXXX");
    assert_non_null(mkdtemp(dir));
    cl_storage_config_t cfg = {.data_dir = dir,
                               .log = "pg",
                               .archive = "pg",
                               .pg_conninfo = conninfo,
                               .log_fn = ac_capture_log,
                               .log_ctx = &fx->ac};
    cl_storage_t *s = NULL;
    assert_int_equal(cl_storage_open(&cfg, &s), CL_OK);
    assert_string_equal(cl_storage_describe(s), "log=pg archive=pg");
    const cl_host_ops_t *o = cl_storage_ops(s);
    uint8_t d[3] = {7, 7, 7};
    assert_int_equal(o->log_append(o->ctx, 42, d, sizeof d), CL_OK);
    cl_archive_rec_t r = {.bucket = 2, .data = d, .len = sizeof d};
    memcpy(r.tag, TAG_B, 16);
    uint64_t id = 0;
    assert_int_equal(o->archive_put(o->ctx, &r, 1, &id), CL_OK);
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_events"), 0);
    assert_int_equal(cl_storage_sync(s), CL_OK);
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_events"), 1);
    assert_int_equal(admin_long(fx, "SELECT count(*) FROM cloister_log"), 1);
    cl_storage_close(s);
    char p[128];
    snprintf(p, sizeof p, "%s/archive.sqlite", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/archive.dat", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    snprintf(p, sizeof p, "%s/log", dir);
    assert_int_not_equal(access(p, F_OK), 0);
    rmdir(dir);
}

int main(void)
{
    conninfo = getenv("CL_TEST_PG_CONNINFO");
    if (conninfo == NULL || conninfo[0] == '\0') {
        printf("SKIP: CL_TEST_PG_CONNINFO not set (run via tests/integration/pg_server.sh)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        AC_CASES(setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_group_commit_visibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_corrupt_row_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select_pg, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
