/*
 * ngsi_cases.h - the behaviour suite of the NGSI-v2 facade (host/ngsi/),
 * shared by the SQLite run (test_ngsi_sqlite.c) and the PostgreSQL run
 * (test_ngsi_pg.c): every case talks HTTP to a real facade on loopback, and
 * the subscription cases receive real notifications on a small HTTP server
 * inside the test (ngsi_test_util.h).
 *
 * The including file defines backend_init(f) (a fresh, empty store: a new
 * temporary directory or dropped ngsi_* tables, then f->cfg.data_dir or
 * f->cfg.pg_conninfo) and backend_fini(f), then NGSI_CASES lists the cases.
 */
#ifndef CL_TESTS_NGSI_CASES_H
#define CL_TESTS_NGSI_CASES_H

#include "ngsi.h"
#include "ngsi_test_util.h"
#include "../host/host_test_util.h"

typedef struct nfx {
    cl_ngsi_t *ng;
    uint16_t port;
    cl_ngsi_config_t cfg;
    char dir[256];
    pthread_mutex_t logmu;
    char *log;
    size_t loglen, logcap;
} nfx_t;

static void backend_init(nfx_t *f);
static void backend_fini(nfx_t *f);

static void nfx_log(void *ctx, int level, const char *line)
{
    nfx_t *f = ctx;
    (void)level;
    size_t n = strlen(line);
    pthread_mutex_lock(&f->logmu);
    if (f->loglen + n + 2 > f->logcap) {
        size_t cap = (f->logcap + n + 2) * 2;
        char *p = realloc(f->log, cap);
        if (p != NULL) {
            f->log = p;
            f->logcap = cap;
        }
    }
    if (f->loglen + n + 2 <= f->logcap) {
        memcpy(f->log + f->loglen, line, n);
        f->loglen += n;
        f->log[f->loglen++] = '\n';
        f->log[f->loglen] = '\0';
    }
    pthread_mutex_unlock(&f->logmu);
    if (getenv("NGSI_TEST_VERBOSE") != NULL)
        fprintf(stderr, "%s\n", line);
}

static bool nfx_log_has(nfx_t *f, const char *needle)
{
    pthread_mutex_lock(&f->logmu);
    bool has = f->log != NULL && strstr(f->log, needle) != NULL;
    pthread_mutex_unlock(&f->logmu);
    return has;
}

static void nfx_start(nfx_t *f)
{
    f->cfg.listen = "127.0.0.1:0";
    f->cfg.log = nfx_log;
    f->cfg.log_ctx = f;
    f->cfg.log_debug = true; /* every line, so the secrecy checks see them all */
    assert_int_equal(cl_ngsi_open(&f->cfg, &f->ng), CL_OK);
    f->port = cl_ngsi_port(f->ng);
    assert_true(f->port != 0);
}

static void nfx_stop(nfx_t *f)
{
    cl_ngsi_close(f->ng);
    f->ng = NULL;
}

/* Restarts the facade on the same store with cfg changed by the caller. */
static void nfx_restart(nfx_t *f)
{
    nfx_stop(f);
    nfx_start(f);
}

static int setup(void **state)
{
    nfx_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pthread_mutex_init(&f->logmu, NULL);
    backend_init(f);
    nfx_start(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    nfx_t *f = *state;
    nfx_stop(f);
    backend_fini(f);
    pthread_mutex_destroy(&f->logmu);
    free(f->log);
    free(f);
    return 0;
}

/* ------------------------------------------------------------ helpers */

static int req(nfx_t *f, const char *m, const char *path, const char *hdrs, const char *body,
               nt_resp_t *r)
{
    return nt_req(f->port, m, path, hdrs, body, r);
}

/* One request that must answer `status` (and the error name when given). */
static void expect(nfx_t *f, const char *m, const char *path, const char *hdrs, const char *body,
                   int status, const char *error)
{
    nt_resp_t r;
    int got = req(f, m, path, hdrs, body, &r);
    if (got != status || (error != NULL && strcmp(nt_error(&r), error) != 0))
        fprintf(stderr, "%s %s -> %d %s (wanted %d %s)\n", m, path, got, r.body ? r.body : "",
                status, error ? error : "");
    assert_int_equal(got, status);
    if (error != NULL) {
        assert_string_equal(nt_error(&r), error);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(r.json, "description");
        assert_true(cJSON_IsString(d));
    }
    nt_resp_free(&r);
}

/* "a.b.0.c" */
static const cJSON *jp(const cJSON *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *tok = strtok(buf, "."); tok != NULL && j != NULL; tok = strtok(NULL, ".")) {
        if (cJSON_IsArray(j) && isdigit((unsigned char)tok[0]))
            j = cJSON_GetArrayItem(j, atoi(tok));
        else
            j = cJSON_GetObjectItemCaseSensitive(j, tok);
    }
    return j;
}

static const char *js(const cJSON *j, const char *path)
{
    const cJSON *v = jp(j, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jn(const cJSON *j, const char *path)
{
    const cJSON *v = jp(j, path);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void assert_js(const cJSON *j, const char *path, const char *want)
{
    const char *got = js(j, path);
    if (got == NULL || strcmp(got, want) != 0)
        fprintf(stderr, "%s: got %s, wanted %s\n", path, got ? got : "(none)", want);
    assert_non_null(got);
    assert_string_equal(got, want);
}

/* GET that must be 200; the caller frees. */
static void get_ok(nfx_t *f, const char *path, const char *hdrs, nt_resp_t *r)
{
    int st = req(f, "GET", path, hdrs, NULL, r);
    if (st != 200)
        fprintf(stderr, "GET %s -> %d %s\n", path, st, r->body ? r->body : "");
    assert_int_equal(st, 200);
    assert_non_null(r->json);
}

static size_t arr_len(const nt_resp_t *r)
{
    assert_true(cJSON_IsArray(r->json));
    return (size_t)cJSON_GetArraySize(r->json);
}

static const char *ROOM1 =
    "{\"id\":\"Room1\",\"type\":\"Room\","
    "\"temperature\":{\"value\":23.5,\"type\":\"Number\",\"metadata\":{\"unit\":{\"value\":\"C\"}}},"
    "\"pressure\":{\"value\":720},"
    "\"name\":{\"value\":\"kitchen\"},"
    "\"on\":{\"value\":true},"
    "\"location\":{\"value\":{\"type\":\"Point\",\"coordinates\":[2.18,41.37]},\"type\":\"geo:json\"},"
    "\"nothing\":{}}";

/* ------------------------------------------------------------ basics */

static void test_version(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    get_ok(f, "/version", NULL, &r);
    assert_js(r.json, "orion.version", "3.10.1");
    assert_non_null(js(r.json, "orion.uptime"));
    char corr[128];
    assert_true(nt_header(&r, "Fiware-Correlator", corr, sizeof corr));
    assert_true(strlen(corr) >= 32);
    nt_resp_free(&r);
    /* a client's correlator is echoed */
    get_ok(f, "/version", "Fiware-Correlator: abc-123\r\n", &r);
    assert_true(nt_header(&r, "Fiware-Correlator", corr, sizeof corr));
    assert_string_equal(corr, "abc-123");
    nt_resp_free(&r);
    get_ok(f, "/v2", NULL, &r);
    assert_js(r.json, "entities_url", "/v2/entities");
    nt_resp_free(&r);
}

static void test_routes_and_methods(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    expect(f, "GET", "/v2/nothing", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities/a/b/c/d", NULL, NULL, 400, "BadRequest");
    assert_int_equal(req(f, "DELETE", "/v2/entities", NULL, NULL, &r), 405);
    char allow[64];
    assert_true(nt_header(&r, "Allow", allow, sizeof allow));
    assert_string_equal(allow, "GET, POST");
    nt_resp_free(&r);
    expect(f, "PATCH", "/v2/entities/X", NULL, "{}", 405, "MethodNotAllowed");
    expect(f, "GET", "/v2/op/update", NULL, NULL, 405, "MethodNotAllowed");
    expect(f, "GET", "/v2/entities", "Accept: text/xml\r\n", NULL, 406, "NotAcceptable");
    expect(f, "GET", "/v2/entities", "Accept: application/json\r\n", NULL, 200, NULL);
}

static void test_create_get(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    assert_int_equal(req(f, "POST", "/v2/entities", NULL, ROOM1, &r), 201);
    char loc[256];
    assert_true(nt_header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, "/v2/entities/Room1?type=Room");
    assert_int_equal(r.body_len, 0);
    nt_resp_free(&r);

    get_ok(f, "/v2/entities/Room1", NULL, &r);
    assert_js(r.json, "id", "Room1");
    assert_js(r.json, "type", "Room");
    assert_true(jn(r.json, "temperature.value") == 23.5);
    assert_js(r.json, "temperature.type", "Number");
    assert_js(r.json, "temperature.metadata.unit.value", "C");
    assert_js(r.json, "temperature.metadata.unit.type", "Text");
    assert_js(r.json, "pressure.type", "Number");
    assert_js(r.json, "name.type", "Text");
    assert_js(r.json, "on.type", "Boolean");
    assert_js(r.json, "location.type", "geo:json");
    assert_true(jn(r.json, "location.value.coordinates.1") == 41.37);
    assert_js(r.json, "nothing.type", "None");
    assert_true(cJSON_IsNull(jp(r.json, "nothing.value")));
    assert_true(cJSON_IsObject(jp(r.json, "pressure.metadata")));
    nt_resp_free(&r);

    get_ok(f, "/v2/entities/Room1?options=keyValues", NULL, &r);
    assert_true(jn(r.json, "temperature") == 23.5);
    assert_js(r.json, "name", "kitchen");
    assert_true(cJSON_IsTrue(jp(r.json, "on")));
    nt_resp_free(&r);

    get_ok(f, "/v2/entities/Room1?attrs=temperature,name&type=Room", NULL, &r);
    assert_non_null(jp(r.json, "temperature"));
    assert_non_null(jp(r.json, "name"));
    assert_null(jp(r.json, "pressure"));
    nt_resp_free(&r);

    get_ok(f, "/v2/entities/Room1/attrs", NULL, &r);
    assert_null(jp(r.json, "id"));
    assert_non_null(jp(r.json, "pressure.value"));
    nt_resp_free(&r);

    get_ok(f, "/v2/entities/Room1/attrs/name", NULL, &r);
    assert_js(r.json, "value", "kitchen");
    assert_js(r.json, "type", "Text");
    nt_resp_free(&r);

    expect(f, "GET", "/v2/entities/Room1/attrs/nope", NULL, NULL, 404, "NotFound");
    expect(f, "GET", "/v2/entities/Room1?type=Car", NULL, NULL, 404, "NotFound");
    expect(f, "GET", "/v2/entities/Nope", NULL, NULL, 404, "NotFound");

    /* keyValues creation; the type defaults to Thing */
    assert_int_equal(req(f, "POST", "/v2/entities?options=keyValues", NULL,
                         "{\"id\":\"T1\",\"a\":1,\"b\":\"x\",\"c\":[1,2]}", &r),
                     201);
    assert_true(nt_header(&r, "Location", loc, sizeof loc));
    assert_string_equal(loc, "/v2/entities/T1?type=Thing");
    nt_resp_free(&r);
    get_ok(f, "/v2/entities/T1", NULL, &r);
    assert_js(r.json, "type", "Thing");
    assert_js(r.json, "c.type", "StructuredValue");
    assert_js(r.json, "b.type", "Text");
    nt_resp_free(&r);

    /* same id, another type: a second entity; then a type-less GET is ambiguous */
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"Room1\",\"type\":\"Office\"}", 201, NULL);
    expect(f, "GET", "/v2/entities/Room1", NULL, NULL, 409, "TooManyResults");
    expect(f, "GET", "/v2/entities/Room1?type=Office", NULL, NULL, 200, NULL);
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, "{\"pressure\":{\"value\":1}}", 409,
           "TooManyResults");
}

static void test_create_errors(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    expect(f, "POST", "/v2/entities", NULL, ROOM1, 201, NULL);
    expect(f, "POST", "/v2/entities", NULL, ROOM1, 422, "Unprocessable");
    assert_int_equal(req(f, "POST", "/v2/entities", NULL, ROOM1, &r), 422);
    assert_js(r.json, "description", "Already Exists");
    nt_resp_free(&r);
    /* upsert: existing -> 204, new -> 201 */
    expect(f, "POST", "/v2/entities?options=upsert", NULL,
           "{\"id\":\"Room1\",\"type\":\"Room\",\"pressure\":{\"value\":1}}", 204, NULL);
    expect(f, "POST", "/v2/entities?options=upsert,keyValues", NULL,
           "{\"id\":\"Room9\",\"type\":\"Room\",\"pressure\":2}", 201, NULL);
    get_ok(f, "/v2/entities/Room1?options=keyValues", NULL, &r);
    assert_true(jn(r.json, "pressure") == 1);
    assert_true(jn(r.json, "temperature") == 23.5); /* upsert appends */
    nt_resp_free(&r);

    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"x\",", 400, "ParseError");
    expect(f, "POST", "/v2/entities", NULL, "[1,2]", 400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"type\":\"T\"}", 400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"a b\"}", 400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"a#b\"}", 400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"a(b\"}", 400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"\"}", 400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":5}", 400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"ok\",\"type\":\"a/b\"}", 400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"ok\",\"b@d?\":{\"value\":1}}", 400,
           "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"ok\",\"a\":5}", 400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"ok\",\"a\":{\"value\":\"<script>\"}}", 400,
           "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"ok\",\"a\":{\"value\":1,\"bogus\":1}}",
           400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"ok\",\"a\":{\"value\":1,\"type\":\"x=y\"}}",
           400, "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"ok\",\"a\":{\"value\":1},\"a\":{}}", 400,
           "BadRequest");
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"ok\",\"idPattern\":\".*\"}", 400,
           "BadRequest");
    /* TextUnrestricted allows the forbidden characters */
    expect(f, "POST", "/v2/entities", NULL,
           "{\"id\":\"ok\",\"a\":{\"value\":\"a=b;(c)\",\"type\":\"TextUnrestricted\"}}", 201, NULL);
    /* 256 characters is the limit for ids */
    char body[700], id[300];
    memset(id, 'i', 256);
    id[256] = '\0';
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    expect(f, "POST", "/v2/entities", NULL, body, 201, NULL);
    memset(id, 'j', 257);
    id[257] = '\0';
    snprintf(body, sizeof body, "{\"id\":\"%s\"}", id);
    expect(f, "POST", "/v2/entities", NULL, body, 400, "BadRequest");
    /* media type, length */
    expect(f, "POST", "/v2/entities", "Content-Type: text/plain\r\n", "{\"id\":\"m\"}", 415,
           "UnsupportedMediaType");
    expect(f, "POST", "/v2/entities", NULL, "", 411, "ContentLengthRequired");
    expect(f, "GET", "/v2/entities/bad%20id", NULL, NULL, 400, "BadRequest");
}

/* ------------------------------------------------------------ attributes */

static void test_attrs_ops(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    expect(f, "POST", "/v2/entities", NULL, ROOM1, 201, NULL);
    /* POST attrs: update + add */
    expect(f, "POST", "/v2/entities/Room1/attrs", NULL,
           "{\"pressure\":{\"value\":730},\"humidity\":{\"value\":40}}", 204, NULL);
    get_ok(f, "/v2/entities/Room1?options=keyValues", NULL, &r);
    assert_true(jn(r.json, "pressure") == 730);
    assert_true(jn(r.json, "humidity") == 40);
    nt_resp_free(&r);
    /* strict append */
    expect(f, "POST", "/v2/entities/Room1/attrs?options=append", NULL,
           "{\"pressure\":{\"value\":1}}", 422, "Unprocessable");
    expect(f, "POST", "/v2/entities/Room1/attrs?options=append", NULL, "{\"co2\":{\"value\":1}}",
           204, NULL);
    expect(f, "POST", "/v2/entities/Nope/attrs", NULL, "{\"co2\":{\"value\":1}}", 404, "NotFound");
    /* PATCH: existing only */
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, "{\"temperature\":{\"value\":19}}", 204,
           NULL);
    expect(f, "PATCH", "/v2/entities/Room1/attrs?type=Room&options=keyValues", NULL,
           "{\"pressure\":700}", 204, NULL);
    expect(f, "PATCH", "/v2/entities/Nope/attrs", NULL, "{\"temperature\":{\"value\":1}}", 404,
           "NotFound");
    expect(f, "PATCH", "/v2/entities/Room1/attrs?type=Car", NULL, "{\"temperature\":{\"value\":1}}",
           404, "NotFound");
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, "{\"ghost\":{\"value\":1}}", 422,
           "Unprocessable");
    /* some exist: they are updated, 422 PartialUpdate */
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL,
           "{\"ghost\":{\"value\":1},\"humidity\":{\"value\":55}}", 422, "PartialUpdate");
    get_ok(f, "/v2/entities/Room1?options=keyValues", NULL, &r);
    assert_true(jn(r.json, "temperature") == 19);
    assert_true(jn(r.json, "pressure") == 700);
    assert_true(jn(r.json, "humidity") == 55);
    assert_null(jp(r.json, "ghost"));
    nt_resp_free(&r);
    /* metadata are merged on update unless overrideMetadata */
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL,
           "{\"temperature\":{\"value\":20,\"metadata\":{\"acc\":{\"value\":0.5}}}}", 204, NULL);
    get_ok(f, "/v2/entities/Room1/attrs/temperature", NULL, &r);
    assert_js(r.json, "metadata.unit.value", "C");
    assert_true(jn(r.json, "metadata.acc.value") == 0.5);
    nt_resp_free(&r);
    expect(f, "PATCH", "/v2/entities/Room1/attrs?options=overrideMetadata", NULL,
           "{\"temperature\":{\"value\":21,\"metadata\":{\"acc\":{\"value\":1}}}}", 204, NULL);
    get_ok(f, "/v2/entities/Room1/attrs/temperature", NULL, &r);
    assert_null(jp(r.json, "metadata.unit"));
    nt_resp_free(&r);
    /* single attribute routes */
    expect(f, "PUT", "/v2/entities/Room1/attrs/pressure", NULL, "{\"value\":1,\"type\":\"Int\"}",
           204, NULL);
    get_ok(f, "/v2/entities/Room1/attrs/pressure", NULL, &r);
    assert_js(r.json, "type", "Int");
    nt_resp_free(&r);
    expect(f, "PUT", "/v2/entities/Room1/attrs/ghost", NULL, "{\"value\":1}", 404, "NotFound");
    expect(f, "DELETE", "/v2/entities/Room1/attrs/co2", NULL, NULL, 204, NULL);
    expect(f, "DELETE", "/v2/entities/Room1/attrs/co2", NULL, NULL, 404, "NotFound");
    /* PUT replaces everything */
    expect(f, "PUT", "/v2/entities/Room1/attrs?options=keyValues", NULL, "{\"only\":1}", 204,
           NULL);
    get_ok(f, "/v2/entities/Room1", NULL, &r);
    assert_non_null(jp(r.json, "only"));
    assert_null(jp(r.json, "temperature"));
    assert_int_equal(cJSON_GetArraySize(r.json), 3); /* id, type, only */
    nt_resp_free(&r);
    expect(f, "PUT", "/v2/entities/Nope/attrs", NULL, "{\"only\":{\"value\":1}}", 404, "NotFound");
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, "{\"id\":{\"value\":1}}", 400,
           "BadRequest");
    /* delete the entity */
    expect(f, "DELETE", "/v2/entities/Room1", NULL, NULL, 204, NULL);
    expect(f, "DELETE", "/v2/entities/Room1", NULL, NULL, 404, "NotFound");
    expect(f, "GET", "/v2/entities/Room1", NULL, NULL, 404, "NotFound");
    /* and again: a new entity with the same id */
    expect(f, "POST", "/v2/entities", NULL, ROOM1, 201, NULL);
}

static void test_op_update(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    expect(f, "POST", "/v2/op/update", NULL,
           "{\"actionType\":\"append\",\"entities\":["
           "{\"id\":\"E1\",\"type\":\"T\",\"a\":{\"value\":1}},"
           "{\"id\":\"E2\",\"type\":\"T\",\"a\":{\"value\":2}}]}",
           204, NULL);
    get_ok(f, "/v2/entities?type=T&options=keyValues", NULL, &r);
    assert_int_equal(arr_len(&r), 2);
    assert_js(r.json, "0.id", "E1");
    assert_true(jn(r.json, "1.a") == 2);
    nt_resp_free(&r);
    /* append on existing: update + add */
    expect(f, "POST", "/v2/op/update?options=keyValues", NULL,
           "{\"actionType\":\"append\",\"entities\":[{\"id\":\"E1\",\"type\":\"T\",\"a\":10,"
           "\"b\":5}]}",
           204, NULL);
    get_ok(f, "/v2/entities/E1?options=keyValues", NULL, &r);
    assert_true(jn(r.json, "a") == 10);
    assert_true(jn(r.json, "b") == 5);
    nt_resp_free(&r);
    /* appendStrict: existing attribute -> 422; a new entity is created */
    expect(f, "POST", "/v2/op/update", NULL,
           "{\"actionType\":\"appendStrict\",\"entities\":[{\"id\":\"E1\",\"type\":\"T\","
           "\"a\":{\"value\":0}}]}",
           422, "Unprocessable");
    expect(f, "POST", "/v2/op/update", NULL,
           "{\"actionType\":\"appendStrict\",\"entities\":[{\"id\":\"E3\",\"type\":\"T\","
           "\"a\":{\"value\":3}}]}",
           204, NULL);
    /* update: missing entity -> 404; mixed -> PartialUpdate */
    expect(f, "POST", "/v2/op/update", NULL,
           "{\"actionType\":\"update\",\"entities\":[{\"id\":\"E9\",\"type\":\"T\","
           "\"a\":{\"value\":0}}]}",
           404, "NotFound");
    expect(f, "POST", "/v2/op/update", NULL,
           "{\"actionType\":\"update\",\"entities\":[{\"id\":\"E9\",\"type\":\"T\","
           "\"a\":{\"value\":0}},{\"id\":\"E2\",\"a\":{\"value\":22}}]}",
           422, "PartialUpdate");
    get_ok(f, "/v2/entities/E2?options=keyValues", NULL, &r);
    assert_true(jn(r.json, "a") == 22);
    nt_resp_free(&r);
    /* replace */
    expect(f, "POST", "/v2/op/update", NULL,
           "{\"actionType\":\"replace\",\"entities\":[{\"id\":\"E1\",\"type\":\"T\","
           "\"z\":{\"value\":0}}]}",
           204, NULL);
    get_ok(f, "/v2/entities/E1?options=keyValues", NULL, &r);
    assert_null(jp(r.json, "a"));
    assert_non_null(jp(r.json, "z"));
    nt_resp_free(&r);
    /* delete: attributes, then entities */
    expect(f, "POST", "/v2/op/update", NULL,
           "{\"actionType\":\"delete\",\"entities\":[{\"id\":\"E1\",\"type\":\"T\","
           "\"z\":{}}]}",
           204, NULL);
    get_ok(f, "/v2/entities/E1", NULL, &r);
    assert_null(jp(r.json, "z"));
    nt_resp_free(&r);
    expect(f, "POST", "/v2/op/update", NULL,
           "{\"actionType\":\"delete\",\"entities\":[{\"id\":\"E1\",\"type\":\"T\"},"
           "{\"id\":\"E2\",\"type\":\"T\"}]}",
           204, NULL);
    get_ok(f, "/v2/entities?type=T", NULL, &r);
    assert_int_equal(arr_len(&r), 1);
    assert_js(r.json, "0.id", "E3");
    nt_resp_free(&r);
    /* malformed requests */
    expect(f, "POST", "/v2/op/update", NULL, "{\"actionType\":\"bogus\",\"entities\":[{\"id\":\"a\"}]}",
           400, "BadRequest");
    expect(f, "POST", "/v2/op/update", NULL, "{\"actionType\":\"append\",\"entities\":[]}", 400,
           "BadRequest");
    expect(f, "POST", "/v2/op/update", NULL, "{\"entities\":[{\"id\":\"a\"}]}", 400, "BadRequest");
    expect(f, "POST", "/v2/op/update", NULL,
           "{\"actionType\":\"append\",\"entities\":[{\"type\":\"a\"}]}", 400, "BadRequest");
    expect(f, "POST", "/v2/op/update", NULL, "{\"actionType\":\"append\",\"entities\":{}}", 400,
           "BadRequest");
}

/* ------------------------------------------------------------ queries */

static void create_n(nfx_t *f, const char *prefix, const char *type, int n, const char *hdrs)
{
    char body[256];
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof body, "{\"id\":\"%s%02d\",\"type\":\"%s\",\"n\":{\"value\":%d}}",
                 prefix, i, type, i);
        expect(f, "POST", "/v2/entities", hdrs, body, 201, NULL);
    }
}

static void test_paging(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    create_n(f, "P", "Page", 25, NULL);
    create_n(f, "Q", "Other", 3, NULL);
    get_ok(f, "/v2/entities?type=Page", NULL, &r);
    assert_int_equal(arr_len(&r), 20); /* Orion's default limit */
    char tot[32];
    assert_false(nt_header(&r, "Fiware-Total-Count", tot, sizeof tot));
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?type=Page&limit=5&offset=10&options=count", NULL, &r);
    assert_int_equal(arr_len(&r), 5);
    assert_js(r.json, "0.id", "P10"); /* creation order */
    assert_js(r.json, "4.id", "P14");
    assert_true(nt_header(&r, "Fiware-Total-Count", tot, sizeof tot));
    assert_string_equal(tot, "25");
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?limit=1000&options=count,keyValues", NULL, &r);
    assert_int_equal(arr_len(&r), 28);
    assert_true(nt_header(&r, "Fiware-Total-Count", tot, sizeof tot));
    assert_string_equal(tot, "28");
    assert_true(jn(r.json, "27.n") == 2);
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?type=Page&offset=24", NULL, &r);
    assert_int_equal(arr_len(&r), 1);
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?type=Page&offset=100&options=count", NULL, &r);
    assert_int_equal(arr_len(&r), 0);
    assert_true(nt_header(&r, "Fiware-Total-Count", tot, sizeof tot));
    assert_string_equal(tot, "25");
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?id=P03,Q01,nope&attrs=n", NULL, &r);
    assert_int_equal(arr_len(&r), 2);
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?type=Page,Other&limit=1000", NULL, &r);
    assert_int_equal(arr_len(&r), 28);
    nt_resp_free(&r);
    expect(f, "GET", "/v2/entities?limit=0", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities?limit=1001", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities?limit=abc", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities?offset=-1", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities?options=bogus", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities?q=temperature>40", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities?id=a%20b", NULL, NULL, 400, "BadRequest");
}

static void test_idpattern(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    create_n(f, "Room", "Room", 12, NULL);
    create_n(f, "Car", "Car", 3, NULL);
    get_ok(f, "/v2/entities?idPattern=%5ERoom0%5B12%5D%24", NULL, &r); /* ^Room0[12]$ */
    assert_int_equal(arr_len(&r), 2);
    assert_js(r.json, "0.id", "Room01");
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?idPattern=.*&limit=3&offset=2&options=count", NULL, &r);
    assert_int_equal(arr_len(&r), 3);
    assert_js(r.json, "0.id", "Room02");
    char tot[32];
    assert_true(nt_header(&r, "Fiware-Total-Count", tot, sizeof tot));
    assert_string_equal(tot, "15");
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?idPattern=1&type=Room&options=count", NULL, &r);
    assert_int_equal(arr_len(&r), 3); /* Room01, Room10, Room11 */
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?typePattern=%5EC", NULL, &r);
    assert_int_equal(arr_len(&r), 3);
    nt_resp_free(&r);
    get_ok(f, "/v2/entities?idPattern=zzz", NULL, &r);
    assert_int_equal(arr_len(&r), 0);
    nt_resp_free(&r);
    expect(f, "GET", "/v2/entities?idPattern=(", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities?idPattern=%5B", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities?idPattern=(a%7B100%7D)%7B100%7D", NULL, NULL, 400,
           "BadRequest"); /* (a{100}){100} */
    expect(f, "GET", "/v2/entities?idPattern=a%7B99999%7D", NULL, NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities?idPattern=(a)%5C1", NULL, NULL, 400, "BadRequest"); /* (a)\1 */
    expect(f, "GET", "/v2/entities?id=Room01&idPattern=R", NULL, NULL, 400, "BadRequest");
    char path[700] = "/v2/entities?idPattern=";
    size_t n = strlen(path);
    memset(path + n, 'a', 300);
    path[n + 300] = '\0';
    expect(f, "GET", path, NULL, NULL, 400, "BadRequest");
    /* a harmless but busy pattern still answers */
    expect(f, "GET", "/v2/entities?idPattern=(a%7Cb%7Cc)*(d%7Ce)%2B.*R.*o.*m.*", NULL, NULL, 200,
           NULL);
}

/* ------------------------------------------------------------ tenancy */

static void test_tenancy_service(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    expect(f, "POST", "/v2/entities", "Fiware-Service: tenantA\r\n", "{\"id\":\"X\",\"type\":\"T\"}",
           201, NULL);
    expect(f, "POST", "/v2/entities", "Fiware-Service: tenantb\r\n",
           "{\"id\":\"X\",\"type\":\"T\",\"b\":{\"value\":1}}", 201, NULL);
    /* lower-cased as Orion does */
    get_ok(f, "/v2/entities/X", "Fiware-Service: TENANTA\r\n", &r);
    assert_null(jp(r.json, "b"));
    nt_resp_free(&r);
    get_ok(f, "/v2/entities/X", "Fiware-Service: tenantb\r\n", &r);
    assert_non_null(jp(r.json, "b"));
    nt_resp_free(&r);
    expect(f, "GET", "/v2/entities/X", NULL, NULL, 404, "NotFound");
    expect(f, "GET", "/v2/entities/X", "Fiware-Service: other\r\n", NULL, 404, "NotFound");
    get_ok(f, "/v2/entities", "Fiware-Service: tenanta\r\n", &r);
    assert_int_equal(arr_len(&r), 1);
    nt_resp_free(&r);
    expect(f, "PATCH", "/v2/entities/X/attrs", "Fiware-Service: tenanta\r\n",
           "{\"b\":{\"value\":1}}", 422, "Unprocessable");
    expect(f, "DELETE", "/v2/entities/X", "Fiware-Service: other\r\n", NULL, 404, "NotFound");
    expect(f, "GET", "/v2/entities", "Fiware-Service: bad-name\r\n", NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities", "Fiware-Service: a.b\r\n", NULL, 400, "BadRequest");
    char h[128];
    snprintf(h, sizeof h, "Fiware-Service: %051d\r\n", 0);
    expect(f, "GET", "/v2/entities", h, NULL, 400, "BadRequest");
    snprintf(h, sizeof h, "Fiware-Service: %050d\r\n", 0);
    expect(f, "GET", "/v2/entities", h, NULL, 200, NULL);
}

static void test_tenancy_paths(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    const char *b = "{\"id\":\"S\",\"type\":\"T\"}";
    expect(f, "POST", "/v2/entities", "Fiware-ServicePath: /A\r\n", b, 201, NULL);
    expect(f, "POST", "/v2/entities", "Fiware-ServicePath: /A/B\r\n", b, 201, NULL);
    expect(f, "POST", "/v2/entities", "Fiware-ServicePath: /AB\r\n", b, 201, NULL);
    expect(f, "POST", "/v2/entities", NULL, b, 201, NULL); /* "/" */
    get_ok(f, "/v2/entities", NULL, &r);                    /* queries default to "/#" */
    assert_int_equal(arr_len(&r), 4);
    nt_resp_free(&r);
    get_ok(f, "/v2/entities", "Fiware-ServicePath: /A\r\n", &r);
    assert_int_equal(arr_len(&r), 1);
    nt_resp_free(&r);
    get_ok(f, "/v2/entities", "Fiware-ServicePath: /A/#\r\n", &r);
    assert_int_equal(arr_len(&r), 2); /* /A and /A/B, not /AB */
    nt_resp_free(&r);
    get_ok(f, "/v2/entities", "Fiware-ServicePath: /A/B, /AB\r\n", &r);
    assert_int_equal(arr_len(&r), 2);
    nt_resp_free(&r);
    get_ok(f, "/v2/entities", "Fiware-ServicePath: /#\r\n", &r);
    assert_int_equal(arr_len(&r), 4);
    nt_resp_free(&r);
    get_ok(f, "/v2/entities", "Fiware-ServicePath: /\r\n", &r);
    assert_int_equal(arr_len(&r), 1);
    nt_resp_free(&r);
    expect(f, "GET", "/v2/entities/S", NULL, NULL, 409, "TooManyResults");
    expect(f, "GET", "/v2/entities/S", "Fiware-ServicePath: /A/B\r\n", NULL, 200, NULL);
    /* updates default to "/" and never span paths */
    expect(f, "PATCH", "/v2/entities/S/attrs", "Fiware-ServicePath: /A\r\n",
           "{\"x\":{\"value\":1}}", 422, "Unprocessable");
    expect(f, "POST", "/v2/entities/S/attrs", "Fiware-ServicePath: /A\r\n",
           "{\"x\":{\"value\":1}}", 204, NULL);
    get_ok(f, "/v2/entities/S", "Fiware-ServicePath: /A\r\n", &r);
    assert_non_null(jp(r.json, "x"));
    nt_resp_free(&r);
    get_ok(f, "/v2/entities/S", "Fiware-ServicePath: /A/B\r\n", &r);
    assert_null(jp(r.json, "x"));
    nt_resp_free(&r);
    expect(f, "DELETE", "/v2/entities/S", NULL, NULL, 204, NULL); /* the one in "/" */
    get_ok(f, "/v2/entities", NULL, &r);
    assert_int_equal(arr_len(&r), 3);
    nt_resp_free(&r);
    expect(f, "POST", "/v2/entities", "Fiware-ServicePath: /A/#\r\n", b, 400, "BadRequest");
    expect(f, "POST", "/v2/entities", "Fiware-ServicePath: /A,/B\r\n", b, 400, "BadRequest");
    expect(f, "GET", "/v2/entities", "Fiware-ServicePath: A\r\n", NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities", "Fiware-ServicePath: /a-b\r\n", NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities", "Fiware-ServicePath: /a//b\r\n", NULL, 400, "BadRequest");
    expect(f, "GET", "/v2/entities", "Fiware-ServicePath: /1/2/3/4/5/6/7/8/9/10/11\r\n", NULL,
           400, "BadRequest");
    expect(f, "GET", "/v2/entities", "Fiware-ServicePath: /1/2/3/4/5/6/7/8/9/10\r\n", NULL, 200,
           NULL);
    char h[128];
    snprintf(h, sizeof h, "Fiware-ServicePath: /%051d\r\n", 0);
    expect(f, "GET", "/v2/entities", h, NULL, 400, "BadRequest");
}

/* ------------------------------------------------------------ HPKE ciphertext */

static const char *HPKE_CT = "AnJ7Zk9Xq_3aB-cD0123456789abcdefABCDEF_-xyzXYZ0123456789Zz";

static void test_hpke_roundtrip(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    char body[1024];
    snprintf(body, sizeof body,
             "{\"id\":\"urn:ngsi-ld:Meter:42\",\"type\":\"SmartMeter\","
             "\"consumption\":{\"type\":\"HpkeCiphertext\",\"value\":\"%s\","
             "\"metadata\":{\"kid\":{\"type\":\"Text\",\"value\":\"stream-7\"},"
             "\"ts\":{\"type\":\"DateTime\",\"value\":\"2024-05-01T10:00:00.000Z\"}}},"
             "\"region\":{\"value\":\"north\"}}",
             HPKE_CT);
    expect(f, "POST", "/v2/entities", "Fiware-Service: meters\r\n", body, 201, NULL);
    get_ok(f, "/v2/entities/urn:ngsi-ld:Meter:42", "Fiware-Service: meters\r\n", &r);
    assert_js(r.json, "consumption.type", "HpkeCiphertext");
    assert_js(r.json, "consumption.value", HPKE_CT);
    assert_js(r.json, "consumption.metadata.kid.value", "stream-7");
    assert_js(r.json, "consumption.metadata.ts.value", "2024-05-01T10:00:00.000Z");
    /* byte for byte in the response text, too */
    char needle[256];
    snprintf(needle, sizeof needle, "\"value\":\"%s\"", HPKE_CT);
    assert_non_null(strstr(r.body, needle));
    nt_resp_free(&r);
    /* a new reading: PATCH with another ciphertext, keyValues read */
    char ct2[128];
    snprintf(ct2, sizeof ct2, "%sQQ", HPKE_CT);
    snprintf(body, sizeof body,
             "{\"consumption\":{\"type\":\"HpkeCiphertext\",\"value\":\"%s\","
             "\"metadata\":{\"kid\":{\"type\":\"Text\",\"value\":\"stream-7\"},"
             "\"ts\":{\"type\":\"DateTime\",\"value\":\"2024-05-01T10:15:00.000Z\"}}}}",
             ct2);
    expect(f, "PATCH", "/v2/entities/urn:ngsi-ld:Meter:42/attrs", "Fiware-Service: meters\r\n",
           body, 204, NULL);
    get_ok(f, "/v2/entities?options=keyValues&type=SmartMeter", "Fiware-Service: meters\r\n", &r);
    assert_js(r.json, "0.consumption", ct2);
    nt_resp_free(&r);
    /* the broker's logs never carry values */
    assert_false(nfx_log_has(f, HPKE_CT));
    assert_false(nfx_log_has(f, "stream-7"));
}

/* ------------------------------------------------------------ subscriptions */

static char *sub_body(uint16_t port, const char *extra_subject, const char *extra_notif,
                      const char *extra_top)
{
    char *b = malloc(2048);
    assert_non_null(b);
    snprintf(b, 2048,
             "{\"description\":\"test\",\"subject\":{\"entities\":[%s]%s},"
             "\"notification\":{\"http\":{\"url\":\"http://127.0.0.1:%u/notify\"}%s}%s}",
             "{\"idPattern\":\"^Room\",\"type\":\"Room\"}", extra_subject ? extra_subject : "",
             (unsigned)port, extra_notif ? extra_notif : "", extra_top ? extra_top : "");
    return b;
}

/* POST /v2/subscriptions: the new id (24 hex) into id. */
static void create_sub(nfx_t *f, const char *hdrs, const char *body, char id[32])
{
    nt_resp_t r;
    int st = req(f, "POST", "/v2/subscriptions", hdrs, body, &r);
    if (st != 201)
        fprintf(stderr, "subscription -> %d %s\n", st, r.body ? r.body : "");
    assert_int_equal(st, 201);
    char loc[128];
    assert_true(nt_header(&r, "Location", loc, sizeof loc));
    assert_int_equal(strncmp(loc, "/v2/subscriptions/", 18), 0);
    assert_int_equal(strlen(loc + 18), 24);
    snprintf(id, 32, "%s", loc + 18);
    nt_resp_free(&r);
}

static void test_subscriptions_crud(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    char id[32], path[128];
    char *b = sub_body(9, ",\"condition\":{\"attrs\":[\"temperature\"]}",
                       ",\"attrs\":[\"temperature\"],\"attrsFormat\":\"keyValues\"",
                       ",\"throttling\":5,\"expires\":\"2040-01-01T14:00:00.00Z\"");
    create_sub(f, "Fiware-Service: subs\r\n", b, id);
    free(b);
    snprintf(path, sizeof path, "/v2/subscriptions/%s", id);
    get_ok(f, path, "Fiware-Service: subs\r\n", &r);
    assert_js(r.json, "id", id);
    assert_js(r.json, "description", "test");
    assert_js(r.json, "subject.entities.0.idPattern", "^Room");
    assert_js(r.json, "subject.condition.attrs.0", "temperature");
    assert_js(r.json, "notification.http.url", "http://127.0.0.1:9/notify");
    assert_js(r.json, "notification.attrsFormat", "keyValues");
    assert_js(r.json, "notification.attrs.0", "temperature");
    assert_js(r.json, "expires", "2040-01-01T14:00:00.000Z");
    assert_js(r.json, "status", "active");
    assert_true(jn(r.json, "throttling") == 5);
    nt_resp_free(&r);
    expect(f, "GET", path, "Fiware-Service: other\r\n", NULL, 404, "NotFound");
    get_ok(f, "/v2/subscriptions?options=count", "Fiware-Service: subs\r\n", &r);
    assert_int_equal(arr_len(&r), 1);
    char tot[16];
    assert_true(nt_header(&r, "Fiware-Total-Count", tot, sizeof tot));
    assert_string_equal(tot, "1");
    nt_resp_free(&r);
    get_ok(f, "/v2/subscriptions", NULL, &r);
    assert_int_equal(arr_len(&r), 0);
    nt_resp_free(&r);
    expect(f, "DELETE", path, "Fiware-Service: other\r\n", NULL, 404, "NotFound");
    expect(f, "DELETE", path, "Fiware-Service: subs\r\n", NULL, 204, NULL);
    expect(f, "GET", path, "Fiware-Service: subs\r\n", NULL, 404, "NotFound");
    expect(f, "DELETE", path, "Fiware-Service: subs\r\n", NULL, 404, "NotFound");
    expect(f, "GET", "/v2/subscriptions/xyz", NULL, NULL, 400, "BadRequest");
    expect(f, "PATCH", path, NULL, "{\"status\":\"inactive\"}", 405, "MethodNotAllowed");
    /* invalid subscriptions */
    expect(f, "POST", "/v2/subscriptions", NULL,
           "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{}}", 400, "BadRequest");
    expect(f, "POST", "/v2/subscriptions", NULL,
           "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
           "\"ftp://x/\"}}}",
           400, "BadRequest");
    expect(f, "POST", "/v2/subscriptions", NULL,
           "{\"notification\":{\"http\":{\"url\":\"http://x/\"}}}", 400, "BadRequest");
    expect(f, "POST", "/v2/subscriptions", NULL,
           "{\"subject\":{\"entities\":[]},\"notification\":{\"http\":{\"url\":\"http://x/\"}}}",
           400, "BadRequest");
    expect(f, "POST", "/v2/subscriptions", NULL,
           "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
           "\"http://x/\"},\"attrsFormat\":\"values\"}}",
           400, "BadRequest");
    expect(f, "POST", "/v2/subscriptions", NULL,
           "{\"subject\":{\"entities\":[{\"idPattern\":\"(\"}]},\"notification\":{\"http\":"
           "{\"url\":\"http://x/\"}}}",
           400, "BadRequest");
    expect(f, "POST", "/v2/subscriptions", NULL,
           "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
           "\"http://x/\"}},\"expires\":\"tomorrow\"}",
           400, "BadRequest");
    expect(f, "POST", "/v2/subscriptions", NULL,
           "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
           "\"http://x/\"}},\"throttling\":-1}",
           400, "BadRequest");
    expect(f, "POST", "/v2/subscriptions", NULL,
           "{\"subject\":{\"entities\":[{\"id\":\"a\"}],\"condition\":{\"expression\":{\"q\":"
           "\"t>1\"}}},\"notification\":{\"http\":{\"url\":\"http://x/\"}}}",
           400, "BadRequest");
}

static void test_notifications(void **state)
{
    nfx_t *f = *state;
    nt_rx_t *rx = nt_rx_start();
    char id[32], id2[32];
    char *b = sub_body(rx->port, ",\"condition\":{\"attrs\":[\"temperature\"]}",
                       ",\"attrs\":[\"temperature\",\"consumption\"]", NULL);
    create_sub(f, "Fiware-Service: home\r\nFiware-ServicePath: /floor1/#\r\n", b, id);
    free(b);
    b = sub_body(rx->port, NULL, ",\"attrsFormat\":\"keyValues\",\"exceptAttrs\":[\"secret\"]",
                 NULL);
    create_sub(f, "Fiware-Service: home\r\n", b, id2);
    free(b);
    /* creation notifies both (every attribute is new) */
    char body[1024];
    snprintf(body, sizeof body,
             "{\"id\":\"Room7\",\"type\":\"Room\",\"temperature\":{\"value\":21},"
             "\"secret\":{\"value\":1},\"consumption\":{\"type\":\"HpkeCiphertext\",\"value\":"
             "\"%s\",\"metadata\":{\"kid\":{\"value\":\"k1\"}}}}",
             HPKE_CT);
    expect(f, "POST", "/v2/entities",
           "Fiware-Service: home\r\nFiware-ServicePath: /floor1/kitchen\r\n"
           "Fiware-Correlator: corr-create-1\r\n",
           body, 201, NULL);
    assert_true(nt_rx_wait(rx, 2, 10000) >= 2);
    nt_sleep_ms(200);
    assert_int_equal(nt_rx_count(rx), 2);
    const nt_note_t *norm = NULL, *kv = NULL;
    for (size_t i = 0; i < 2; i++) {
        const char *sid = js(rx->notes[i].json, "subscriptionId");
        assert_non_null(sid);
        if (strcmp(sid, id) == 0)
            norm = &rx->notes[i];
        else if (strcmp(sid, id2) == 0)
            kv = &rx->notes[i];
    }
    assert_non_null(norm);
    assert_non_null(kv);
    char h[256];
    assert_int_equal(strncmp(norm->head, "POST /notify HTTP/1.1", 21), 0);
    assert_true(nt_header_in(norm->head, "Fiware-Service", h, sizeof h));
    assert_string_equal(h, "home");
    assert_true(nt_header_in(norm->head, "Fiware-ServicePath", h, sizeof h));
    assert_string_equal(h, "/floor1/kitchen");
    assert_true(nt_header_in(norm->head, "Fiware-Correlator", h, sizeof h));
    assert_string_equal(h, "corr-create-1");
    assert_true(nt_header_in(norm->head, "Ngsiv2-AttrsFormat", h, sizeof h));
    assert_string_equal(h, "normalized");
    assert_true(nt_header_in(norm->head, "Content-Type", h, sizeof h));
    assert_string_equal(h, "application/json");
    assert_int_equal(cJSON_GetArraySize(jp(norm->json, "data")), 1);
    assert_js(norm->json, "data.0.id", "Room7");
    assert_js(norm->json, "data.0.type", "Room");
    assert_true(jn(norm->json, "data.0.temperature.value") == 21);
    assert_js(norm->json, "data.0.consumption.value", HPKE_CT); /* forwarded untouched */
    assert_js(norm->json, "data.0.consumption.metadata.kid.value", "k1");
    assert_null(jp(norm->json, "data.0.secret"));
    assert_true(nt_header_in(kv->head, "Ngsiv2-AttrsFormat", h, sizeof h));
    assert_string_equal(h, "keyValues");
    assert_true(jn(kv->json, "data.0.temperature") == 21);
    assert_js(kv->json, "data.0.consumption", HPKE_CT);
    assert_null(jp(kv->json, "data.0.secret"));

    /* a change of another attribute: only the subscription without condition */
    expect(f, "PATCH", "/v2/entities/Room7/attrs",
           "Fiware-Service: home\r\nFiware-ServicePath: /floor1/kitchen\r\n",
           "{\"secret\":{\"value\":2}}", 204, NULL);
    assert_true(nt_rx_wait(rx, 3, 10000) >= 3);
    nt_sleep_ms(300);
    assert_int_equal(nt_rx_count(rx), 3);
    assert_js(rx->notes[2].json, "subscriptionId", id2);
    /* the same value again: no change, no notification */
    expect(f, "PATCH", "/v2/entities/Room7/attrs",
           "Fiware-Service: home\r\nFiware-ServicePath: /floor1/kitchen\r\n",
           "{\"secret\":{\"value\":2}}", 204, NULL);
    nt_sleep_ms(400);
    assert_int_equal(nt_rx_count(rx), 3);
    /* the condition attribute: both */
    expect(f, "PATCH", "/v2/entities/Room7/attrs",
           "Fiware-Service: home\r\nFiware-ServicePath: /floor1/kitchen\r\n",
           "{\"temperature\":{\"value\":22}}", 204, NULL);
    assert_true(nt_rx_wait(rx, 5, 10000) >= 5);
    /* another service, another path, another id: nothing */
    expect(f, "POST", "/v2/entities", "Fiware-Service: other\r\n",
           "{\"id\":\"Room7\",\"type\":\"Room\",\"temperature\":{\"value\":1}}", 201, NULL);
    expect(f, "POST", "/v2/entities", "Fiware-Service: home\r\nFiware-ServicePath: /floor2\r\n",
           "{\"id\":\"Room8\",\"type\":\"Room\",\"temperature\":{\"value\":1}}", 201, NULL);
    expect(f, "POST", "/v2/entities", "Fiware-Service: home\r\nFiware-ServicePath: /floor1\r\n",
           "{\"id\":\"Car1\",\"type\":\"Room\",\"temperature\":{\"value\":1}}", 201, NULL);
    /* Room8 on /floor2 matches the second subscription (path "/#") only */
    assert_true(nt_rx_wait(rx, 6, 10000) >= 6);
    nt_sleep_ms(400);
    assert_int_equal(nt_rx_count(rx), 6);
    assert_js(rx->notes[5].json, "subscriptionId", id2);
    assert_js(rx->notes[5].json, "data.0.id", "Room8");
    /* counters */
    nt_resp_t r;
    char path[128];
    snprintf(path, sizeof path, "/v2/subscriptions/%s", id);
    get_ok(f, path, "Fiware-Service: home\r\n", &r);
    assert_true(jn(r.json, "notification.timesSent") == 2);
    assert_true(jn(r.json, "notification.lastSuccessCode") == 200);
    assert_non_null(js(r.json, "notification.lastNotification"));
    assert_js(r.json, "status", "active");
    nt_resp_free(&r);
    nt_rx_stop(rx);
    assert_false(nfx_log_has(f, HPKE_CT));
}

static void test_throttling_expiry(void **state)
{
    nfx_t *f = *state;
    nt_rx_t *rx = nt_rx_start();
    char id[32];
    char *b = sub_body(rx->port, NULL, NULL, ",\"throttling\":2");
    create_sub(f, NULL, b, id);
    free(b);
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"Room1\",\"type\":\"Room\",\"t\":{\"value\":0}}",
           201, NULL);
    for (int i = 1; i <= 3; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"t\":{\"value\":%d}}", i);
        expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, body, 204, NULL);
    }
    assert_true(nt_rx_wait(rx, 1, 10000) >= 1);
    nt_sleep_ms(500);
    assert_int_equal(nt_rx_count(rx), 1); /* the updates inside 2 s were dropped */
    nt_sleep_ms(1800);
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, "{\"t\":{\"value\":9}}", 204, NULL);
    assert_true(nt_rx_wait(rx, 2, 10000) >= 2);
    assert_true(jn(rx->notes[1].json, "data.0.t.value") == 9);
    char path[128];
    snprintf(path, sizeof path, "/v2/subscriptions/%s", id);
    expect(f, "DELETE", path, NULL, NULL, 204, NULL);

    /* expired already: accepted, shown as expired, never notifies */
    b = sub_body(rx->port, NULL, NULL, ",\"expires\":\"2001-01-01T00:00:00Z\"");
    create_sub(f, NULL, b, id);
    free(b);
    snprintf(path, sizeof path, "/v2/subscriptions/%s", id);
    nt_resp_t r;
    get_ok(f, path, NULL, &r);
    assert_js(r.json, "status", "expired");
    nt_resp_free(&r);
    /* expiring in a moment */
    char top[96], id2[32];
    char t[32];
    time_t soon = time(NULL) + 3;
    struct tm tm;
    gmtime_r(&soon, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(top, sizeof top, ",\"expires\":\"%s\"", t);
    b = sub_body(rx->port, NULL, NULL, top);
    create_sub(f, NULL, b, id2);
    free(b);
    size_t before = nt_rx_count(rx);
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, "{\"t\":{\"value\":10}}", 204, NULL);
    assert_true(nt_rx_wait(rx, before + 1, 10000) >= before + 1);
    nt_sleep_ms(4200);
    before = nt_rx_count(rx);
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, "{\"t\":{\"value\":11}}", 204, NULL);
    nt_sleep_ms(600);
    assert_int_equal(nt_rx_count(rx), before);
    snprintf(path, sizeof path, "/v2/subscriptions/%s", id2);
    get_ok(f, path, NULL, &r);
    assert_js(r.json, "status", "expired");
    nt_resp_free(&r);
    /* inactive subscriptions do not notify either */
    b = sub_body(rx->port, NULL, NULL, ",\"status\":\"inactive\"");
    create_sub(f, NULL, b, id2);
    free(b);
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, "{\"t\":{\"value\":12}}", 204, NULL);
    nt_sleep_ms(600);
    assert_int_equal(nt_rx_count(rx), before);
    nt_rx_stop(rx);
}

/* A port nobody listens on (bound, never listening: connections are refused). */
static uint16_t dead_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&a, &al), 0);
    return ntohs(a.sin_port);
}

static void test_notification_failures(void **state)
{
    nfx_t *f = *state;
    int dfd;
    uint16_t dp = dead_port(&dfd);
    char id[32], id2[32], path[128];
    char *b = sub_body(dp, NULL, NULL, NULL);
    create_sub(f, NULL, b, id);
    free(b);
    /* a receiver answering 500 slowly: still "sent" (Orion counts any answer) */
    nt_rx_t *rx = nt_rx_start();
    nt_rx_set(rx, 500, 100);
    b = sub_body(rx->port, NULL, NULL, NULL);
    create_sub(f, NULL, b, id2);
    free(b);
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"Room1\",\"type\":\"Room\",\"t\":{\"value\":0}}",
           201, NULL);
    expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, "{\"t\":{\"value\":1}}", 204, NULL);
    assert_true(nt_rx_wait(rx, 2, 10000) >= 2);
    nt_resp_t r;
    snprintf(path, sizeof path, "/v2/subscriptions/%s", id);
    for (int i = 0; i < 100; i++) { /* the failures are recorded asynchronously */
        get_ok(f, path, NULL, &r);
        const cJSON *fc = jp(r.json, "notification.failsCounter");
        if (cJSON_IsNumber(fc) && fc->valuedouble >= 2)
            break;
        nt_resp_free(&r);
        nt_sleep_ms(100);
    }
    assert_js(r.json, "status", "failed");
    assert_true(jn(r.json, "notification.failsCounter") == 2);
    assert_true(jn(r.json, "notification.timesSent") == 2);
    assert_non_null(js(r.json, "notification.lastFailure"));
    const char *reason = js(r.json, "notification.lastFailureReason");
    assert_non_null(reason);
    assert_true(strlen(reason) > 0);
    assert_null(jp(r.json, "notification.lastSuccess"));
    nt_resp_free(&r);
    snprintf(path, sizeof path, "/v2/subscriptions/%s", id2);
    for (int i = 0; i < 100; i++) {
        get_ok(f, path, NULL, &r);
        const cJSON *ts = jp(r.json, "notification.timesSent");
        if (cJSON_IsNumber(ts) && ts->valuedouble >= 2)
            break;
        nt_resp_free(&r);
        nt_sleep_ms(100);
    }
    assert_true(jn(r.json, "notification.lastSuccessCode") == 500);
    assert_js(r.json, "status", "active");
    nt_resp_free(&r);
    cl_ngsi_stats_t st;
    cl_ngsi_get_stats(f->ng, &st);
    assert_true(st.notifications_failed >= 2);
    assert_true(st.notifications_sent >= 2);
    char metrics[8192];
    assert_true(cl_ngsi_metrics_text(f->ng, metrics, sizeof metrics) > 0);
    assert_non_null(strstr(metrics, "cloister_ngsi_notifications_total{result=\"failed\"}"));
    /* a slow receiver never slows requests down */
    nt_rx_set(rx, 200, 3000);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 2; i < 6; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"t\":{\"value\":%d}}", i);
        expect(f, "PATCH", "/v2/entities/Room1/attrs", NULL, body, 204, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1000 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms < 2500);
    nt_rx_set(rx, 200, 0);
    /* the counters survive a restart (written back by the writer) */
    nt_sleep_ms(1500);
    nfx_restart(f);
    snprintf(path, sizeof path, "/v2/subscriptions/%s", id);
    get_ok(f, path, NULL, &r);
    assert_true(jn(r.json, "notification.failsCounter") >= 2);
    nt_resp_free(&r);
    nt_rx_stop(rx);
    close(dfd);
}

/* ------------------------------------------------------------ hostile input */

static void test_hostile(void **state)
{
    nfx_t *f = *state;
    nt_resp_t r;
    static const char *bad_json[] = {
        "{", "}", "{\"id\":}", "{\"id\":\"a\"}}", "nul", "{\"id\":\"a\",}", "{'id':'a'}",
        "{\"id\":\"a\\u0000b\"}", "{\"id\":\"\x01\"}", "{\"id\":\"\xff\xfe\"}",
        "{\"id\":\"a\",\"v\":{\"value\":1e999}}", "\xef\xbb\xbf{\"id\":\"a\"}",
    };
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        int st = req(f, "POST", "/v2/entities", NULL, bad_json[i], &r);
        assert_int_equal(st, 400);
        nt_resp_free(&r);
    }
    /* deep nesting */
    size_t depth = 200;
    char *deep = malloc(depth * 2 + 64);
    size_t o = (size_t)sprintf(deep, "{\"id\":\"d\",\"v\":{\"value\":");
    for (size_t i = 0; i < depth; i++)
        deep[o++] = '[';
    for (size_t i = 0; i < depth; i++)
        deep[o++] = ']';
    strcpy(deep + o, "}}");
    expect(f, "POST", "/v2/entities", NULL, deep, 400, "ParseError");
    free(deep);
    /* oversized: refused from the header, before the body */
    size_t big = 2u * 1024 * 1024;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    expect(f, "POST", "/v2/entities", NULL, huge, 413, "RequestEntityTooLarge");
    free(huge);
    /* many attributes */
    {
        size_t n = 300;
        char *m = malloc(n * 32 + 64);
        size_t p = (size_t)sprintf(m, "{\"id\":\"many\"");
        for (size_t i = 0; i < n; i++)
            p += (size_t)sprintf(m + p, ",\"a%zu\":{\"value\":1}", i);
        strcpy(m + p, "}");
        expect(f, "POST", "/v2/entities", NULL, m, 413, "RequestEntityTooLarge");
        free(m);
    }
    /* no Content-Length (chunked) */
    const char *chunked = "POST /v2/entities HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\n{\"id\"\r\n0\r\n\r\n";
    assert_int_equal(nt_raw(f->port, chunked, strlen(chunked), &r), 411);
    assert_string_equal(nt_error(&r), "ContentLengthRequired");
    nt_resp_free(&r);
    /* garbage */
    const char *garbage = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n";
    int st = nt_raw(f->port, garbage, strlen(garbage), &r);
    assert_true(st == -1 || st == 400);
    nt_resp_free(&r);
    const char *bad_line = "GET\r\n\r\n";
    st = nt_raw(f->port, bad_line, strlen(bad_line), &r);
    assert_true(st == -1 || st == 400);
    nt_resp_free(&r);
    /* still up */
    expect(f, "GET", "/version", NULL, NULL, 200, NULL);
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"after\"}", 201, NULL);
}

static void test_slow_client(void **state)
{
    nfx_t *f = *state;
    f->cfg.timeout_s = 1;
    nfx_restart(f);
    /* a client that sends half a request and stalls */
    int s = nt_connect(f->port);
    const char *part = "POST /v2/entities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 50\r\n\r\n{\"id\":";
    nt_send_all(s, part, strlen(part));
    int s2 = nt_connect(f->port);
    nt_send_all(s2, "GET /v2/ent", 11);
    /* others are served meanwhile */
    expect(f, "GET", "/version", NULL, NULL, 200, NULL);
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"fast\"}", 201, NULL);
    /* the stalled ones are dropped after the idle timeout */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s2, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    ssize_t k = recv(s, buf, sizeof buf, 0);
    assert_true(k <= 0 || (k > 0 && strncmp(buf, "HTTP/1.1 4", 10) == 0));
    k = recv(s2, buf, sizeof buf, 0);
    assert_true(k <= 0 || (k > 0 && strncmp(buf, "HTTP/1.1 4", 10) == 0));
    close(s);
    close(s2);
    expect(f, "GET", "/v2/entities/fast", NULL, NULL, 200, NULL);
}

static void test_budget_busy(void **state)
{
    nfx_t *f = *state;
    f->cfg.inflight_bytes = 4096;
    nfx_restart(f);
    /* a body larger than the whole budget: 503 + Retry-After */
    char *b = malloc(8192);
    size_t p = (size_t)sprintf(b, "{\"id\":\"big\",\"v\":{\"value\":\"");
    memset(b + p, 'x', 6000);
    p += 6000;
    strcpy(b + p, "\"}}");
    nt_resp_t r;
    assert_int_equal(req(f, "POST", "/v2/entities", NULL, b, &r), 503);
    char ra[16];
    assert_true(nt_header(&r, "Retry-After", ra, sizeof ra));
    assert_string_equal(nt_error(&r), "ServiceUnavailable");
    nt_resp_free(&r);
    free(b);
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"small\"}", 201, NULL);
    /* the budget is given back: many small requests still pass */
    for (int i = 0; i < 50; i++)
        expect(f, "PATCH", "/v2/entities/small/attrs?options=keyValues", NULL, "{}", 204, NULL);
}

static void test_entity_size_limit(void **state)
{
    nfx_t *f = *state;
    f->cfg.max_entity_bytes = 4096;
    nfx_restart(f);
    expect(f, "POST", "/v2/entities", NULL, "{\"id\":\"E\",\"a\":{\"value\":1}}", 201, NULL);
    char *b = malloc(8192);
    for (int i = 0; i < 3; i++) { /* each fits, the third makes the entity too large */
        size_t p = (size_t)sprintf(b, "{\"v%d\":{\"value\":\"", i);
        memset(b + p, 'x', 1800);
        p += 1800;
        strcpy(b + p, "\"}}");
        expect(f, "POST", "/v2/entities/E/attrs", NULL, b, i < 2 ? 204 : 413,
               i < 2 ? NULL : "RequestEntityTooLarge");
    }
    free(b);
    nt_resp_t r;
    get_ok(f, "/v2/entities/E", NULL, &r); /* unchanged by the refused update */
    assert_non_null(jp(r.json, "v1"));
    assert_null(jp(r.json, "v2"));
    nt_resp_free(&r);
    expect(f, "PATCH", "/v2/entities/E/attrs", NULL, "{\"a\":{\"value\":2}}", 204, NULL);
}

/* ------------------------------------------------------------ authorization hook */

typedef struct authz_seen {
    pthread_mutex_t mu;
    char method[16], path[128], service[64], spath[64], auth[128];
    int calls;
} authz_seen_t;

static bool test_authz(void *ctx, const cl_ngsi_authz_request_t *q, cl_ngsi_authz_result_t *res)
{
    authz_seen_t *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    snprintf(s->method, sizeof s->method, "%s", q->method);
    snprintf(s->path, sizeof s->path, "%s", q->path);
    snprintf(s->service, sizeof s->service, "%s", q->service);
    snprintf(s->spath, sizeof s->spath, "%s", q->service_path ? q->service_path : "(null)");
    snprintf(s->auth, sizeof s->auth, "%s", q->authorization ? q->authorization : "(null)");
    pthread_mutex_unlock(&s->mu);
    if (q->authorization == NULL) {
        res->status = 401;
        snprintf(res->www_authenticate, sizeof res->www_authenticate,
                 "Bearer realm=\"cloister\"");
        return false;
    }
    if (strcmp(q->authorization, "Bearer good") == 0)
        return true;
    res->status = 403;
    snprintf(res->description, sizeof res->description, "scope missing");
    return false;
}

static void test_authorizer(void **state)
{
    nfx_t *f = *state;
    authz_seen_t seen = {.calls = 0};
    pthread_mutex_init(&seen.mu, NULL);
    cl_ngsi_set_authorizer(f->ng, test_authz, &seen);
    nt_resp_t r;
    assert_int_equal(req(f, "POST", "/v2/entities", NULL, "{\"id\":\"A\"}", &r), 401);
    char h[128];
    assert_true(nt_header(&r, "WWW-Authenticate", h, sizeof h));
    assert_string_equal(h, "Bearer realm=\"cloister\"");
    assert_string_equal(nt_error(&r), "Unauthorized");
    nt_resp_free(&r);
    assert_int_equal(req(f, "GET", "/v2/entities", "Authorization: Bearer bad\r\n", NULL, &r),
                     403);
    assert_string_equal(nt_error(&r), "Forbidden");
    assert_js(r.json, "description", "scope missing");
    nt_resp_free(&r);
    expect(f, "POST", "/v2/entities",
           "Authorization: Bearer good\r\nFiware-Service: Shop\r\nFiware-ServicePath: /x\r\n",
           "{\"id\":\"A\"}", 201, NULL);
    pthread_mutex_lock(&seen.mu);
    assert_string_equal(seen.method, "POST");
    assert_string_equal(seen.path, "/v2/entities");
    assert_string_equal(seen.service, "shop");
    assert_string_equal(seen.spath, "/x");
    assert_string_equal(seen.auth, "Bearer good");
    assert_int_equal(seen.calls, 3);
    pthread_mutex_unlock(&seen.mu);
    cl_ngsi_stats_t st;
    cl_ngsi_get_stats(f->ng, &st);
    assert_int_equal(st.rejected_auth, 2);
    /* never logged */
    assert_false(nfx_log_has(f, "Bearer good"));
    cl_ngsi_set_authorizer(f->ng, NULL, NULL);
    expect(f, "GET", "/v2/entities", NULL, NULL, 200, NULL);
    pthread_mutex_destroy(&seen.mu);
}

/* ------------------------------------------------------------ durability, concurrency */

static void test_persistence(void **state)
{
    nfx_t *f = *state;
    nt_rx_t *rx = nt_rx_start();
    char id[32];
    char *b = sub_body(rx->port, NULL, NULL, NULL);
    create_sub(f, "Fiware-Service: keep\r\n", b, id);
    free(b);
    expect(f, "POST", "/v2/entities", "Fiware-Service: keep\r\nFiware-ServicePath: /p\r\n",
           "{\"id\":\"Room1\",\"type\":\"Room\",\"v\":{\"value\":\"kept\"}}", 201, NULL);
    assert_true(nt_rx_wait(rx, 1, 10000) >= 1);
    nfx_restart(f);
    nt_resp_t r;
    get_ok(f, "/v2/entities/Room1", "Fiware-Service: keep\r\n", &r);
    assert_js(r.json, "v.value", "kept");
    nt_resp_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/v2/subscriptions/%s", id);
    get_ok(f, path, "Fiware-Service: keep\r\n", &r);
    assert_js(r.json, "id", id);
    nt_resp_free(&r);
    /* the reloaded subscription still notifies */
    expect(f, "PATCH", "/v2/entities/Room1/attrs", "Fiware-Service: keep\r\nFiware-ServicePath: /p\r\n",
           "{\"v\":{\"value\":\"again\"}}", 204, NULL);
    assert_true(nt_rx_wait(rx, 2, 10000) >= 2);
    nt_rx_stop(rx);
}

typedef struct hammer {
    nfx_t *f;
    int idx;
    int ok;
} hammer_t;

static void *hammer_main(void *arg)
{
    hammer_t *h = arg;
    char path[64], body[128];
    snprintf(path, sizeof path, "/v2/entities/H%d/attrs", h->idx % 4);
    for (int i = 0; i < 40; i++) {
        nt_resp_t r;
        snprintf(body, sizeof body, "{\"w%d\":{\"value\":%d}}", h->idx, i);
        if (nt_req(h->f->port, "POST", path, NULL, body, &r) == 204)
            h->ok++;
        nt_resp_free(&r);
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    nfx_t *f = *state;
    for (int i = 0; i < 4; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"id\":\"H%d\",\"type\":\"H\"}", i);
        expect(f, "POST", "/v2/entities", NULL, body, 201, NULL);
    }
    enum { N = 12 };
    pthread_t th[N];
    hammer_t h[N];
    for (int i = 0; i < N; i++) {
        h[i] = (hammer_t){.f = f, .idx = i};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(h[i].ok, 40);
    }
    /* every writer's last value is there: no update was lost */
    for (int e = 0; e < 4; e++) {
        nt_resp_t r;
        char path[64];
        snprintf(path, sizeof path, "/v2/entities/H%d?options=keyValues", e);
        get_ok(f, path, NULL, &r);
        for (int i = e; i < N; i += 4) {
            char k[16];
            snprintf(k, sizeof k, "w%d", i);
            assert_true(jn(r.json, k) == 39);
        }
        nt_resp_free(&r);
    }
    cl_ngsi_stats_t st;
    cl_ngsi_get_stats(f->ng, &st);
    assert_true(st.commit_ops >= 4 + N * 40);
    assert_true(st.commits <= st.commit_ops);
}

#define NGSI_CASES                                                                                 \
    cmocka_unit_test_setup_teardown(test_version, setup, teardown),                               \
        cmocka_unit_test_setup_teardown(test_routes_and_methods, setup, teardown),                \
        cmocka_unit_test_setup_teardown(test_create_get, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(test_attrs_ops, setup, teardown),                         \
        cmocka_unit_test_setup_teardown(test_op_update, setup, teardown),                         \
        cmocka_unit_test_setup_teardown(test_paging, setup, teardown),                            \
        cmocka_unit_test_setup_teardown(test_idpattern, setup, teardown),                         \
        cmocka_unit_test_setup_teardown(test_tenancy_service, setup, teardown),                   \
        cmocka_unit_test_setup_teardown(test_tenancy_paths, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(test_hpke_roundtrip, setup, teardown),                    \
        cmocka_unit_test_setup_teardown(test_subscriptions_crud, setup, teardown),                \
        cmocka_unit_test_setup_teardown(test_notifications, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(test_throttling_expiry, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(test_notification_failures, setup, teardown),             \
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),                           \
        cmocka_unit_test_setup_teardown(test_slow_client, setup, teardown),                       \
        cmocka_unit_test_setup_teardown(test_budget_busy, setup, teardown),                       \
        cmocka_unit_test_setup_teardown(test_entity_size_limit, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(test_authorizer, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),                       \
        cmocka_unit_test_setup_teardown(test_concurrent_writers, setup, teardown)

#endif
