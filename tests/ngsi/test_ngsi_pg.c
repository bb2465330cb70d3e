/*
 * test_ngsi_pg.c - the NGSI-v2 facade (host/ngsi/) on PostgreSQL: the same
 * behaviour suite as the SQLite run (ngsi_cases.h) against a REAL server
 * that tests/integration/pg_server.sh starts on loopback and passes as
 * CL_TEST_PG_CONNINFO; plus the PostgreSQL-only cases (schema refusal, the
 * conninfo never logged, a server that goes away and comes back).
 * Exit 77 (skip) without CL_TEST_PG_CONNINFO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "ngsi_cases.h"

static const char *conninfo;

static void admin(const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fprintf(stderr, "admin: %s", PQerrorMessage(c));
    assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
    PQclear(r);
    PQfinish(c);
}

static void backend_init(nfx_t *f)
{
    admin("DROP TABLE IF EXISTS ngsi_entities, ngsi_subscriptions, ngsi_schema");
    f->cfg.pg_conninfo = conninfo;
}

static void backend_fini(nfx_t *f)
{
    (void)f;
}

static void test_pg_schema_newer(void **state)
{
    nfx_t *f = *state;
    nfx_stop(f);
    admin("INSERT INTO ngsi_schema(version) VALUES (99)");
    f->cfg.listen = "127.0.0.1:0";
    assert_int_equal(cl_ngsi_open(&f->cfg, &f->ng), CL_ERR_UNSUPPORTED);
    assert_true(nfx_log_has(f, "schema is newer"));
    admin("DELETE FROM ngsi_schema WHERE version = 99");
    nfx_start(f);
    expect(f, "GET", "/v2/entities", NULL, NULL, 200, NULL);
}

static void test_pg_no_conninfo_in_logs(void **state)
{
    nfx_t *f = *state;
    nfx_stop(f);
    cl_ngsi_config_t c = f->cfg;
    c.pg_conninfo = "host=127.0.0.1 port=1 dbname=x user=u password=SeCrEt-PW connect_timeout=2";
    cl_ngsi_t *ng = NULL;
    assert_int_equal(cl_ngsi_open(&c, &ng), CL_ERR_PERSIST);
    assert_null(ng);
    assert_true(nfx_log_has(f, "connect failed"));
    assert_false(nfx_log_has(f, "SeCrEt-PW"));
    nfx_start(f);
}

static void test_pg_connection_lost(void **state)
{
    nfx_t *f = *state;
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"before\"}", 201, NULL);
    /* the server drops every other session (the facade's among them) */
    admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          "WHERE pid <> pg_backend_pid() AND datname = current_database()");
    /* the first batch on a dead connection may fail (500, not stored); then it reconnects */
    nt_resp_t r;
    int st = req(f, "POST", "/v2/entities", NULL, "{\"id\":\"after\"}", &r);
    assert_true(st == 201 || st == 500);
    nt_resp_free(&r);
    if (st == 500)
        expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"after\"}", 201, NULL);
    /* readers reconnect too */
    for (int i = 0; i < 3; i++) {
        st = req(f, "GET", "/v2/entities/before", NULL, NULL, &r);
        nt_resp_free(&r);
        if (st == 200)
            break;
    }
    expect(f, "GET", "/v2/entities/before", NULL, NULL, 200, NULL);
    expect(f, "GET", "/v2/entities/after", NULL, NULL, 200, NULL);
}

int main(void)
{
    conninfo = getenv("CL_TEST_PG_CONNINFO");
    if (conninfo == NULL || conninfo[0] == '\0') {
        fprintf(stderr, "SKIP: CL_TEST_PG_CONNINFO not set (run through pg_server.sh)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        NGSI_CASES,
        cmocka_unit_test_setup_teardown(test_pg_schema_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_no_conninfo_in_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_connection_lost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
