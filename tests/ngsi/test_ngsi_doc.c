/*
 * test_ngsi_doc.c - the pure part of the NGSI facade (host/ngsi/ngsi_doc.c):
 * the bounded JSON pre-scan, Orion's identifier and value rules, the
 * normalized stored document, tenancy headers, bounded regexes, query
 * parameters, dates, rendering (the spliced fast path must equal the
 * parsed path) and subscription documents (parse -> render -> parse is
 * stable).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ngsi_internal.h"

static ngsi_limits_t lim;

static int setup_lim(void **state)
{
    (void)state;
    ngsi_limits_default(&lim);
    return 0;
}

static cJSON *parse(const char *s)
{
    ngsi_err_t e;
    return ngsi_json_parse(s, strlen(s), 32, NULL, &e);
}

static void test_json_scan(void **state)
{
    (void)state;
    ngsi_err_t e;
    size_t cost = 0;
    cJSON *j = ngsi_json_parse("{\"a\":[1,2,3]} \n", 15, 32, &cost, &e);
    assert_non_null(j);
    assert_true(cost >= 5 * NGSI_NODE_COST);
    cJSON_Delete(j);
    static const char *bad[] = {"",           "{",          "{\"a\":1} x", "{\"a\":\"\\u0000\"}",
                                "\"\x01\"",   "\"\xc3\"",   "\"\xc0\xaf\"", "\"\xed\xa0\x80\"",
                                "\"\xf4\x90\x80\x80\"", "[1,]", "{\"a\" 1}", "\"abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = ngsi_json_parse(bad[i], strlen(bad[i]), 32, NULL, &e);
        assert_null(j);
        assert_int_equal(e.status, 400);
        assert_string_equal(e.error, "ParseError");
    }
    /* valid UTF-8 passes, escapes are decoded */
    j = parse("\"caf\xc3\xa9 \xf0\x9f\x98\x80 \\u00e9\"");
    assert_non_null(j);
    cJSON_Delete(j);
    /* depth: 32 is fine, 33 is not (and never reaches cJSON's recursion) */
    char deep[200];
    memset(deep, '[', 32);
    memset(deep + 32, ']', 32);
    deep[64] = '\0';
    j = parse(deep);
    assert_non_null(j);
    cJSON_Delete(j);
    memset(deep, '[', 33);
    memset(deep + 33, ']', 33);
    deep[66] = '\0';
    assert_null(parse(deep));
    /* brackets inside strings do not count */
    j = parse("{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}");
    assert_non_null(j);
    cJSON_Delete(j);
}

static void test_names(void **state)
{
    (void)state;
    assert_true(ngsi_name_ok("Room1"));
    assert_true(ngsi_name_ok("urn:ngsi-ld:Meter:42"));
    assert_true(ngsi_name_ok("a.b-c_d:e@f"));
    static const char *bad[] = {"", "a b", "a#", "a?", "a/b", "a&b", "<", ">", "\"", "'", "=",
                                ";", "(", ")", "a\tb", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ngsi_name_ok(bad[i]));
    char s[300];
    memset(s, 'x', 256);
    s[256] = '\0';
    assert_true(ngsi_name_ok(s));
    s[256] = 'x';
    s[257] = '\0';
    assert_false(ngsi_name_ok(s));
    assert_true(ngsi_value_str_ok("base64url-_AZaz09 : / ? # & % ~"));
    assert_false(ngsi_value_str_ok("a=b"));
}

static void test_tenancy(void **state)
{
    (void)state;
    char svc[NGSI_MAX_SERVICE + 1], p[NGSI_PATH_SIZE];
    ngsi_err_t e;
    assert_true(ngsi_service_parse(NULL, svc, &e));
    assert_string_equal(svc, "");
    assert_true(ngsi_service_parse("My_Tenant1", svc, &e));
    assert_string_equal(svc, "my_tenant1");
    assert_false(ngsi_service_parse("a-b", svc, &e));
    assert_int_equal(e.status, 400);
    char longs[60];
    memset(longs, 'a', 51);
    longs[51] = '\0';
    assert_false(ngsi_service_parse(longs, svc, &e));
    longs[50] = '\0';
    assert_true(ngsi_service_parse(longs, svc, &e));

    assert_true(ngsi_path_parse_update(NULL, p, &e));
    assert_string_equal(p, "/");
    assert_true(ngsi_path_parse_update("/A/b_1", p, &e));
    assert_string_equal(p, "/A/b_1");
    assert_false(ngsi_path_parse_update("/A/#", p, &e));
    assert_false(ngsi_path_parse_update("/A,/B", p, &e));
    assert_false(ngsi_path_parse_update("A", p, &e));
    assert_false(ngsi_path_parse_update("/A/", p, &e));
    assert_false(ngsi_path_parse_update("//", p, &e));
    assert_false(ngsi_path_parse_update("/a b", p, &e));

    ngsi_paths_t ps;
    assert_true(ngsi_path_parse_query(NULL, &ps, &e));
    assert_int_equal(ps.n, 0);
    assert_true(ngsi_path_parse_query("/#", &ps, &e));
    assert_int_equal(ps.n, 0);
    assert_true(ngsi_path_parse_query("/A/#, /B", &ps, &e));
    assert_int_equal(ps.n, 2);
    assert_string_equal(ps.p[0], "/A");
    assert_true(ps.rec[0]);
    assert_string_equal(ps.p[1], "/B");
    assert_false(ps.rec[1]);
    assert_true(ngsi_paths_match(&ps, "/A"));
    assert_true(ngsi_paths_match(&ps, "/A/x/y"));
    assert_false(ngsi_paths_match(&ps, "/AB"));
    assert_true(ngsi_paths_match(&ps, "/B"));
    assert_false(ngsi_paths_match(&ps, "/B/c"));
    assert_false(ngsi_path_parse_query("/1,/2,/3,/4,/5,/6,/7,/8,/9,/10,/11", &ps, &e));
    assert_false(ngsi_path_parse_query("/1/2/3/4/5/6/7/8/9/10/11", &ps, &e));

    assert_true(ngsi_path_parse_sub(NULL, p, &e));
    assert_string_equal(p, "/#");
    assert_true(ngsi_path_parse_sub("/A/#", p, &e));
    assert_string_equal(p, "/A/#");
    assert_true(ngsi_path_parse_sub("/#", p, &e));
    assert_string_equal(p, "/#");
    assert_true(ngsi_path_match("/#", "/x"));
    assert_true(ngsi_path_match("/A/#", "/A"));
    assert_true(ngsi_path_match("/A/#", "/A/B"));
    assert_false(ngsi_path_match("/A/#", "/AB"));
    assert_true(ngsi_path_match("/A", "/A"));
    assert_false(ngsi_path_match("/A", "/A/B"));
}

static void test_regex(void **state)
{
    (void)state;
    regex_t re;
    ngsi_err_t e;
    static const char *ok[] = {"^Room[0-9]+$", ".*", "a|b|c", "(ab){3}", "x{2,5}y", "[[:alpha:]]+",
                               "[]a]", "[^]]", "\\.", "(a|b)*c{10}"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_true(ngsi_regex_compile(ok[i], &re, &e));
        regfree(&re);
    }
    static const char *refused[] = {"(a)\\1",     "a{256}",      "(a{100}){100}",
                                    "((a{20}){20}){20}", "(",   "[abc",        "a{1,x}",
                                    "",          "a{99999}",    "((((((((((((((((((a))))))))))))))))))",
                                    "\x7f"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_false(ngsi_regex_compile(refused[i], &re, &e));
        assert_int_equal(e.status, 400);
    }
    char longp[300];
    memset(longp, 'a', 257);
    longp[257] = '\0';
    assert_false(ngsi_regex_compile(longp, &re, &e));
    assert_true(ngsi_regex_compile("^Room", &re, &e));
    assert_int_equal(regexec(&re, "Room12", 0, NULL, 0), 0);
    assert_true(regexec(&re, "xRoom", 0, NULL, 0) != 0);
    regfree(&re);
}

static void test_dates(void **state)
{
    (void)state;
    int64_t ms;
    char out[32];
    assert_true(ngsi_parse_iso8601("2040-01-01T14:00:00.00Z", &ms));
    ngsi_iso8601(ms, out);
    assert_string_equal(out, "2040-01-01T14:00:00.000Z");
    assert_true(ngsi_parse_iso8601("1970-01-01", &ms));
    assert_int_equal(ms, 0);
    assert_true(ngsi_parse_iso8601("2000-03-01T00:00:00+01:00", &ms));
    ngsi_iso8601(ms, out);
    assert_string_equal(out, "2000-02-29T23:00:00.000Z");
    assert_true(ngsi_parse_iso8601("2024-05-01T10:15:30.123456Z", &ms));
    assert_int_equal(ms % 1000, 123);
    static const char *bad[] = {"", "2040", "2040-13-01", "2040-01-01T25:00", "2040-01-01T1:00",
                                "2040-01-01Tx", "2040-01-01T10:00:00.Z", "tomorrow",
                                "2040-01-01T10:00:00Zjunk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(ngsi_parse_iso8601(bad[i], &ms));
}

static void test_entity_parse(void **state)
{
    (void)state;
    ngsi_ent_in_t en;
    ngsi_err_t e;
    cJSON *b = parse("{\"id\":\"R\",\"type\":\"Room\",\"t\":{\"value\":1.5,\"metadata\":{\"u\":"
                     "{\"value\":\"C\"},\"plain\":3}},\"s\":{\"value\":\"x\",\"type\":\"Str\"},"
                     "\"n\":{}}");
    assert_true(ngsi_entity_parse(b, 0, &lim, &en, &e));
    cJSON_Delete(b);
    assert_string_equal(en.id, "R");
    assert_string_equal(en.type, "Room");
    assert_int_equal(en.nattrs, 3);
    char *doc = ngsi_json_print(en.attrs, NULL);
    assert_string_equal(doc, "{\"t\":{\"type\":\"Number\",\"value\":1.5,\"metadata\":{\"u\":{"
                             "\"type\":\"Text\",\"value\":\"C\"},\"plain\":{\"type\":\"Number\","
                             "\"value\":3}}},\"s\":{\"type\":\"Str\",\"value\":\"x\",\"metadata\":"
                             "{}},\"n\":{\"type\":\"None\",\"value\":null,\"metadata\":{}}}");
    cJSON_free(doc);
    ngsi_ent_in_free(&en);

    b = parse("{\"id\":\"K\",\"a\":[1,{\"b\":true}],\"c\":false,\"d\":\"text\"}");
    assert_true(ngsi_entity_parse(b, NGSI_F_KEYVALUES, &lim, &en, &e));
    cJSON_Delete(b);
    assert_null(en.type);
    doc = ngsi_json_print(en.attrs, NULL);
    assert_string_equal(doc, "{\"a\":{\"type\":\"StructuredValue\",\"value\":[1,{\"b\":true}],"
                             "\"metadata\":{}},\"c\":{\"type\":\"Boolean\",\"value\":false,"
                             "\"metadata\":{}},\"d\":{\"type\":\"Text\",\"value\":\"text\","
                             "\"metadata\":{}}}");
    cJSON_free(doc);
    ngsi_ent_in_free(&en);

    static const char *bad[] = {
        "[]",
        "{\"type\":\"T\"}",
        "{\"id\":1}",
        "{\"id\":\"a\",\"id\":\"b\"}",
        "{\"id\":\"a\",\"x\":1}",
        "{\"id\":\"a\",\"x\":{\"value\":\"a;b\"}}",
        "{\"id\":\"a\",\"x\":{\"value\":[\"(\"]}}",
        "{\"id\":\"a\",\"x\":{\"value\":{\"k\":\"'\"}}}",
        "{\"id\":\"a\",\"x\":{\"value\":1,\"metadata\":[]}}",
        "{\"id\":\"a\",\"x\":{\"value\":1,\"metadata\":{\"m\":{\"value\":1,\"z\":2}}}}",
        "{\"id\":\"a\",\"x\":{\"value\":1,\"metadata\":{\"m#\":{\"value\":1}}}}",
        "{\"id\":\"a\",\"x\":{\"type\":7}}",
        "{\"id\":\"a\",\"idPattern\":\"x\"}",
        "{\"id\":\"a\",\"x\":{\"value\":1},\"x\":{\"value\":2}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = parse(bad[i]);
        assert_non_null(b);
        assert_false(ngsi_entity_parse(b, 0, &lim, &en, &e));
        assert_int_equal(e.status, 400);
        assert_null(en.attrs);
        cJSON_Delete(b);
    }
    /* /attrs bodies: no id or type */
    b = parse("{\"id\":{\"value\":1}}");
    assert_false(ngsi_entity_parse(b, NGSI_F_ATTRS_ONLY, &lim, &en, &e));
    cJSON_Delete(b);
    b = parse("{\"x\":{\"value\":1}}");
    assert_true(ngsi_entity_parse(b, NGSI_F_ATTRS_ONLY, &lim, &en, &e));
    assert_null(en.id);
    ngsi_ent_in_free(&en);
    cJSON_Delete(b);
    /* bounds */
    ngsi_limits_t small = lim;
    small.max_attrs = 2;
    small.max_metadata = 1;
    b = parse("{\"id\":\"a\",\"x\":{},\"y\":{},\"z\":{}}");
    assert_false(ngsi_entity_parse(b, 0, &small, &en, &e));
    assert_int_equal(e.status, 413);
    cJSON_Delete(b);
    b = parse("{\"id\":\"a\",\"x\":{\"metadata\":{\"a\":{},\"b\":{}}}}");
    assert_false(ngsi_entity_parse(b, 0, &small, &en, &e));
    assert_int_equal(e.status, 413);
    cJSON_Delete(b);
    /* TextUnrestricted */
    b = parse("{\"id\":\"a\",\"x\":{\"type\":\"TextUnrestricted\",\"value\":\"<b>=\"}}");
    assert_true(ngsi_entity_parse(b, 0, &lim, &en, &e));
    ngsi_ent_in_free(&en);
    cJSON_Delete(b);
}

static void test_batch_parse(void **state)
{
    (void)state;
    ngsi_ent_in_t *ents = NULL;
    size_t n = 0;
    ngsi_action_t act;
    ngsi_err_t e;
    cJSON *b = parse("{\"actionType\":\"delete\",\"entities\":[{\"id\":\"a\",\"x\":\"ignored\"},"
                     "{\"id\":\"b\",\"type\":\"T\"}]}");
    assert_true(ngsi_batch_parse(b, 0, &lim, &act, &ents, &n, &e));
    assert_int_equal(act, NGSI_ACT_DELETE);
    assert_int_equal(n, 2);
    assert_int_equal(ents[0].nattrs, 1);
    assert_int_equal(ents[1].nattrs, 0);
    ngsi_ents_free(ents, n);
    cJSON_Delete(b);
    static const char *bad[] = {"{\"actionType\":\"APPEND\",\"entities\":[{\"id\":\"a\"}]}",
                                "{\"actionType\":\"append\"}",
                                "{\"actionType\":\"append\",\"entities\":[]}",
                                "{\"actionType\":\"append\",\"entities\":[1]}",
                                "{\"actionType\":\"append\",\"entities\":[{\"id\":\"a\"}],\"x\":1}",
                                "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = parse(bad[i]);
        assert_false(ngsi_batch_parse(b, 0, &lim, &act, &ents, &n, &e));
        assert_int_equal(e.status, 400);
        assert_null(ents);
        cJSON_Delete(b);
    }
}

typedef struct args {
    const char *k[8], *v[8];
} args_t;

static const char *arg(void *ctx, const char *key)
{
    args_t *a = ctx;
    for (int i = 0; i < 8 && a->k[i] != NULL; i++)
        if (strcmp(a->k[i], key) == 0)
            return a->v[i];
    return NULL;
}

static void test_query_params(void **state)
{
    (void)state;
    ngsi_list_q_t q;
    ngsi_err_t e;
    args_t a = {{NULL}, {NULL}};
    a.k[0] = "limit";
    a.v[0] = "7";
    a.k[1] = "offset";
    a.v[1] = "3";
    a.k[2] = "options";
    a.v[2] = "count,keyValues";
    a.k[3] = "id";
    a.v[3] = "a,b,c";
    a.k[4] = "attrs";
    a.v[4] = "x,y";
    a.k[5] = NULL;
    assert_true(ngsi_list_q_parse(arg, &a, NGSI_Q_LIST, &q, &e));
    assert_int_equal(q.limit, 7);
    assert_int_equal(q.offset, 3);
    assert_int_equal(q.options, NGSI_OPT_COUNT | NGSI_OPT_KEYVALUES);
    assert_int_equal(q.nids, 3);
    assert_string_equal(q.ids[2], "c");
    assert_int_equal(q.nattrs, 2);
    ngsi_list_q_free(&q);
    static const char *bad[][2] = {{"limit", "0"},      {"limit", "1001"}, {"limit", "x"},
                                   {"offset", "-1"},    {"options", "zzz"}, {"options", "upsert"},
                                   {"id", "a,,b"},      {"type", "a b"},   {"idPattern", "("},
                                   {"q", "a>1"},        {"georel", "near"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        args_t b = {{NULL}, {NULL}};
        b.k[0] = bad[i][0];
        b.v[0] = bad[i][1];
        assert_false(ngsi_list_q_parse(arg, &b, NGSI_Q_LIST, &q, &e));
        assert_int_equal(e.status, 400);
        ngsi_list_q_free(&q);
    }
    args_t both = {{NULL}, {NULL}};
    both.k[0] = "id";
    both.v[0] = "a";
    both.k[1] = "idPattern";
    both.v[1] = "a";
    assert_false(ngsi_list_q_parse(arg, &both, NGSI_Q_LIST, &q, &e));
    ngsi_list_q_free(&q);
    /* the single-entity form ignores paging and ids */
    assert_true(ngsi_list_q_parse(arg, &both, NGSI_Q_ONE, &q, &e));
    ngsi_list_q_free(&q);
    unsigned o;
    assert_true(ngsi_options_parse("upsert,flowControl", NGSI_OPT_UPSERT, &o, &e));
    assert_int_equal(o & NGSI_OPT_UPSERT, NGSI_OPT_UPSERT);
}

static void test_render(void **state)
{
    (void)state;
    const char *doc = "{\"t\":{\"type\":\"Number\",\"value\":21.7,\"metadata\":{}},"
                      "\"c\":{\"type\":\"HpkeCiphertext\",\"value\":\"AbC-_9\",\"metadata\":{"
                      "\"kid\":{\"type\":\"Text\",\"value\":\"k\"}}}}";
    ngsi_buf_t b;
    nb_init(&b, 1 << 20);
    ngsi_render_t r = {.with_id = true};
    assert_true(ngsi_render_entity(&b, "E", "T", doc, strlen(doc), &r));
    const char *want = "{\"id\":\"E\",\"type\":\"T\",\"t\":{\"type\":\"Number\",\"value\":21.7,"
                       "\"metadata\":{}},\"c\":{\"type\":\"HpkeCiphertext\",\"value\":\"AbC-_9\","
                       "\"metadata\":{\"kid\":{\"type\":\"Text\",\"value\":\"k\"}}}}";
    assert_string_equal(b.p, want);
    nb_free(&b);
    /* the parsed path gives the same text (an attrs filter listing everything) */
    const char *all[] = {"t", "c"};
    ngsi_render_t r2 = {.with_id = true, .nattrs = 2, .attrs = all};
    assert_true(ngsi_render_entity(&b, "E", "T", doc, strlen(doc), &r2));
    assert_string_equal(b.p, want);
    nb_free(&b);
    ngsi_render_t kv = {.with_id = false, .keyvalues = true};
    assert_true(ngsi_render_entity(&b, "E", "T", doc, strlen(doc), &kv));
    assert_string_equal(b.p, "{\"t\":21.7,\"c\":\"AbC-_9\"}");
    nb_free(&b);
    assert_true(ngsi_render_entity(&b, "E", "T", "{}", 2, &r));
    assert_string_equal(b.p, "{\"id\":\"E\",\"type\":\"T\"}");
    nb_free(&b);
    assert_false(ngsi_render_entity(&b, "E", "T", "garbage", 7, &r));
    assert_false(ngsi_render_entity(&b, "E", "T", "{garbage}", 9, &kv));
    nb_free(&b);
    /* the buffer's cap */
    nb_init(&b, 10);
    assert_true(ngsi_render_entity(&b, "E", "T", doc, strlen(doc), &r));
    assert_true(b.failed);
    assert_null(nb_take(&b, NULL));
    ngsi_err_t e;
    ngsi_err_set(&e, 400, "BadRequest", "quote \" and \\ and \n");
    nb_init(&b, 4096);
    ngsi_render_error(&b, &e);
    assert_string_equal(b.p, "{\"error\":\"BadRequest\",\"description\":\"quote \\\" and \\\\ and "
                             "\\n\"}");
    nb_free(&b);
}

static void test_subscription_doc(void **state)
{
    (void)state;
    ngsi_err_t e;
    cJSON *b = parse("{\"description\":\"d\",\"subject\":{\"entities\":[{\"idPattern\":\"^R\","
                     "\"type\":\"Room\"},{\"id\":\"X\"}],\"condition\":{\"attrs\":[\"t\"]}},"
                     "\"notification\":{\"http\":{\"url\":\"http://127.0.0.1:1/n\",\"timeout\":"
                     "500},\"exceptAttrs\":[\"s\"],\"attrsFormat\":\"keyValues\"},"
                     "\"expires\":\"2040-01-01T00:00:00Z\",\"throttling\":3}");
    ngsi_sub_t *s = ngsi_sub_parse(b, false, &lim, &e);
    cJSON_Delete(b);
    assert_non_null(s);
    memcpy(s->id, "0123456789abcdef01234567", 25);
    strcpy(s->service, "svc");
    strcpy(s->path, "/#");
    assert_true(ngsi_sub_matches(s, "R1", "Room"));
    assert_false(ngsi_sub_matches(s, "R1", "Car"));
    assert_true(ngsi_sub_matches(s, "X", "Any"));
    assert_false(ngsi_sub_matches(s, "Y", "Room"));
    s->times_sent = 4;
    s->fails = 1;
    s->last_failure = 1000;
    snprintf(s->last_failure_reason, sizeof s->last_failure_reason, "Timeout was reached");
    ngsi_buf_t t1, t2;
    nb_init(&t1, 1 << 20);
    nb_init(&t2, 1 << 20);
    ngsi_sub_render(&t1, s, 0);
    cJSON *j = parse(t1.p);
    assert_non_null(j);
    ngsi_sub_t *s2 = ngsi_sub_parse(j, true, &lim, &e);
    cJSON_Delete(j);
    assert_non_null(s2);
    ngsi_sub_render(&t2, s2, 0);
    assert_string_equal(t1.p, t2.p); /* the stored form reads back the same */
    assert_non_null(strstr(t1.p, "\"status\":\"failed\""));
    assert_non_null(strstr(t1.p, "\"exceptAttrs\":[\"s\"]"));
    /* read-only fields from a client are ignored, not loaded */
    j = parse(t1.p);
    ngsi_sub_t *s3 = ngsi_sub_parse(j, false, &lim, &e);
    cJSON_Delete(j);
    assert_non_null(s3);
    assert_int_equal(s3->times_sent, 0);
    ngsi_sub_free(s3);
    ngsi_sub_free(s2);
    ngsi_sub_free(s);
    nb_free(&t1);
    nb_free(&t2);
    static const char *bad[] = {
        "{\"subject\":{\"entities\":[{\"type\":\"T\"}]},\"notification\":{\"http\":{\"url\":"
        "\"http://a/\"}}}",
        "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
        "\"http:///x\"}}}",
        "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
        "\"http://a b/\"}}}",
        "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
        "\"http://a/\"},\"attrs\":[],\"exceptAttrs\":[]}}",
        "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"httpCustom\":{\"url\":"
        "\"http://a/\"}}}",
        "{\"subject\":{\"entities\":[{\"id\":\"a\",\"idPattern\":\"a\"}]},\"notification\":{"
        "\"http\":{\"url\":\"http://a/\"}}}",
        "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
        "\"http://a/\"}},\"status\":\"paused\"}",
        "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
        "\"http://a/\"}},\"bogus\":1}",
        /* a member given twice (cJSON keeps both): refused with an error, not half-read */
        "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
        "\"http://a/\"}},\"subject\":\"x\"}",
        "{\"subject\":{\"entities\":[{\"id\":\"a\"}]},\"notification\":{\"http\":{\"url\":"
        "\"http://a/\"}},\"notification\":{}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = parse(bad[i]);
        assert_non_null(b);
        assert_null(ngsi_sub_parse(b, false, &lim, &e));
        assert_int_equal(e.status, 400);
        cJSON_Delete(b);
    }
}

static void test_correlator(void **state)
{
    (void)state;
    char c[NGSI_CORR_SIZE], d[NGSI_CORR_SIZE];
    ngsi_correlator("abc-1", c);
    assert_string_equal(c, "abc-1");
    ngsi_correlator("bad value\"", c);
    assert_int_equal(strlen(c), 36);
    ngsi_correlator(NULL, d);
    assert_string_not_equal(c, d);
    char hex[25];
    ngsi_random_hex(hex, 12);
    assert_int_equal(strlen(hex), 24);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_scan),      cmocka_unit_test(test_names),
        cmocka_unit_test(test_tenancy),        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_dates),          cmocka_unit_test(test_entity_parse),
        cmocka_unit_test(test_batch_parse),    cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_render),         cmocka_unit_test(test_subscription_doc),
        cmocka_unit_test(test_correlator),
    };
    return cmocka_run_group_tests(tests, setup_lim, NULL);
}
