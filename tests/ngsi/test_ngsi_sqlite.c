/*
 * test_ngsi_sqlite.c - the NGSI-v2 facade (host/ngsi/) with its default
 * store, SQLite in a temporary directory: the behaviour suite of
 * ngsi_cases.h over real HTTP on loopback, plus what is SQLite's own (the
 * file's mode, WAL, the schema version, a corrupt row).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "ngsi_cases.h"

static void backend_init(nfx_t *f)
{
    snprintf(f->dir, sizeof f->dir, "%s/ngsi_test.XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    f->cfg.data_dir = f->dir;
}

static void backend_fini(nfx_t *f)
{
    ht_rm_rf(f->dir);
}

static void db_exec(nfx_t *f, const char *sql)
{
    char path[300];
    snprintf(path, sizeof path, "%s/ngsi.sqlite", f->dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sqlite: %s\n", err ? err : "?");
    sqlite3_free(err);
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_close(db);
}

static void test_sqlite_file(void **state)
{
    nfx_t *f = *state;
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"x\"}", 201, NULL);
    char path[300];
    snprintf(path, sizeof path, "%s/ngsi.sqlite", f->dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    sqlite3_finalize(s);
    /* the entity is durable in the file: committed before the 201 */
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM ngsi_entities", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 1);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_sqlite_schema_newer(void **state)
{
    nfx_t *f = *state;
    nfx_stop(f);
    db_exec(f, "INSERT INTO schema_version(version) VALUES (99)");
    f->cfg.listen = "127.0.0.1:0";
    f->cfg.log = nfx_log;
    f->cfg.log_ctx = f;
    assert_int_equal(cl_ngsi_open(&f->cfg, &f->ng), CL_ERR_UNSUPPORTED);
    assert_null(f->ng);
    assert_true(nfx_log_has(f, "schema is newer"));
    db_exec(f, "DELETE FROM schema_version WHERE version = 99");
    nfx_start(f);
}

static void test_sqlite_corrupt_row(void **state)
{
    nfx_t *f = *state;
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"good\",\"a\":{\"value\":1}}", 201, NULL);
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"bad\",\"a\":{\"value\":1}}", 201, NULL);
    db_exec(f, "UPDATE ngsi_entities SET doc = 'garbage{' WHERE id = 'bad'");
    nt_resp_t r;
    get_ok(f, "/v2/entities", NULL, &r); /* the unreadable row is skipped */
    assert_int_equal(arr_len(&r), 1);
    assert_js(r.json, "0.id", "good");
    nt_resp_free(&r);
    expect(f, "GET", "/v2/entities/bad", NULL, NULL, 500, "InternalServerError");
    /* an update rebuilds it from what the request brings */
    expect(f, "POST", "/v2/entities/bad/attrs", NULL, "{\"b\":{\"value\":2}}", 204, NULL);
    get_ok(f, "/v2/entities/bad", NULL, &r);
    assert_true(jn(r.json, "b.value") == 2);
    nt_resp_free(&r);
    expect(f, "GET", "/version", NULL, NULL, 200, NULL);
}

static void test_bad_config(void **state)
{
    (void)state;
    cl_ngsi_config_t c;
    cl_ngsi_t *ng = NULL;
    memset(&c, 0, sizeof c);
    assert_int_equal(cl_ngsi_open(&c, &ng), CL_ERR_INVALID_ARG);
    c.listen = "127.0.0.1:0";
    assert_int_equal(cl_ngsi_open(&c, &ng), CL_ERR_INVALID_ARG); /* no store */
    c.data_dir = "/nonexistent/dir/for/ngsi";
    assert_int_equal(cl_ngsi_open(&c, &ng), CL_ERR_PERSIST);
    c.data_dir = "/tmp";
    c.listen = "10.1.2.3:1026"; /* not loopback, no bind_any */
    assert_int_equal(cl_ngsi_open(&c, &ng), CL_ERR_INVALID_ARG);
    c.listen = "nonsense";
    assert_int_equal(cl_ngsi_open(&c, &ng), CL_ERR_INVALID_ARG);
    assert_null(ng);
    cl_ngsi_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        NGSI_CASES,
        cmocka_unit_test_setup_teardown(test_sqlite_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_schema_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sqlite_corrupt_row, setup, teardown),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
