/*
 * test_scenario.c - scenario templates (core/model/scenario.h).
 *
 * The shipped examples (examples/scenarios/, both files, read from the source tree
 * and converted with cl_json_to_cbor like the core does) instantiate with
 * their defaults and with given parameters; every object is checked: type
 * documents, rule names rewritten, placeholders substituted (typed, as text,
 * as JavaScript literals), every expanded rule accepted by
 * cl_eca_check_rule, the final parameter map. Then a table of refusals, each
 * with its reason (parameters, names, fields, schemas, rules, placeholders,
 * limits), all-or-nothing on failure, and the detached COSE_Sign1 of a
 * template: sign + verify, tampering, wrong key, malformed and non-conforming
 * signatures, kid extraction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/crypto_openssl.h"
#include "cloister/json.h"
#include "eca.h"
#include "scenario.h"

#ifndef CL_SOURCE_DIR
#error "CL_SOURCE_DIR must be defined by the build"
#endif

#define HOME_JSON CL_SOURCE_DIR "/examples/scenarios/vacant-home-eco.json"
#define METER_JSON CL_SOURCE_DIR "/examples/scenarios/smart-meter-regions.json"

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* JSON -> CBOR into a heap buffer (the caller frees). */
static uint8_t *j2c_n(const char *json, size_t json_len, size_t *len)
{
    size_t need = 0, off = 0;
    cl_status_t st = cl_json_to_cbor(json, json_len, NULL, 0, &need, &off);
    if (st != CL_OK && st != CL_ERR_BUFFER_TOO_SMALL)
        fail_msg("bad test JSON at byte %zu: %.*s", off, (int)(json_len > 200 ? 200 : json_len),
                 json);
    uint8_t *buf = malloc(need);
    assert_non_null(buf);
    assert_int_equal(cl_json_to_cbor(json, json_len, buf, need, len, &off), CL_OK);
    return buf;
}

static uint8_t *j2c(const char *json, size_t *len)
{
    return j2c_n(json, strlen(json), len);
}

/* Instantiates a template given as JSON with params given as JSON (NULL: none). */
static cl_status_t inst_json(const char *tmpl, const char *params, const char *instance,
                             cl_scn_plan_t *plan, char *why, size_t why_size)
{
    size_t tl, pl = 0;
    uint8_t *t = j2c(tmpl, &tl);
    uint8_t *p = params != NULL ? j2c(params, &pl) : NULL;
    cl_status_t st =
        cl_scn_instantiate(t, tl, p, pl, instance, strlen(instance), plan, why, why_size);
    free(t);
    free(p);
    return st;
}

static cl_status_t inst_file(const char *path, const char *params, const char *instance,
                             cl_scn_plan_t *plan, char *why, size_t why_size)
{
    size_t jl, tl, pl = 0;
    uint8_t *json = read_file(path, &jl);
    uint8_t *t = j2c_n((const char *)json, jl, &tl);
    uint8_t *p = params != NULL ? j2c(params, &pl) : NULL;
    cl_status_t st =
        cl_scn_instantiate(t, tl, p, pl, instance, strlen(instance), plan, why, why_size);
    free(json);
    free(t);
    free(p);
    return st;
}

/* Walks a dotted path ("then.0.properties.c": numbers index arrays) into a CBOR item. */
static bool cbor_at(const uint8_t *doc, size_t len, const char *path, cl_cbor_dec_t *out)
{
    cl_cbor_dec_t d;
    cl_cbor_dec_init(&d, doc, len);
    while (*path != 0) {
        const char *dot = strchr(path, '.');
        size_t seg = dot != NULL ? (size_t)(dot - path) : strlen(path);
        cl_cbor_type_t t;
        size_t n;
        bool found = false;
        if (cl_cbor_dec_peek(&d, &t) != CL_OK)
            return false;
        if (t == CL_CBOR_ARRAY) {
            size_t idx = (size_t)strtoul(path, NULL, 10);
            if (cl_cbor_dec_array(&d, &n) != CL_OK || idx >= n)
                return false;
            for (size_t i = 0; i < idx; i++)
                if (cl_cbor_dec_skip(&d) != CL_OK)
                    return false;
            found = true;
        } else if (t == CL_CBOR_MAP) {
            if (cl_cbor_dec_map(&d, &n) != CL_OK)
                return false;
            for (size_t i = 0; i < n && !found; i++) {
                const char *k;
                size_t kl;
                if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
                    return false;
                if (kl == seg && memcmp(k, path, seg) == 0)
                    found = true;
                else if (cl_cbor_dec_skip(&d) != CL_OK)
                    return false;
            }
        }
        if (!found)
            return false;
        path += seg + (dot != NULL);
    }
    *out = d;
    return true;
}

/* The text at path, NUL-terminated in a static buffer. */
static const char *text_at(const uint8_t *doc, size_t len, const char *path)
{
    static char buf[16384 + 1];
    cl_cbor_dec_t d;
    const char *s = NULL;
    size_t sl = 0;
    if (!cbor_at(doc, len, path, &d) || cl_cbor_dec_tstr(&d, &s, &sl) != CL_OK)
        fail_msg("no text at %s", path);
    assert_true(sl < sizeof buf);
    memcpy(buf, s, sl);
    buf[sl] = 0;
    return buf;
}

static int64_t int_at(const uint8_t *doc, size_t len, const char *path)
{
    cl_cbor_dec_t d;
    int64_t v = 0;
    if (!cbor_at(doc, len, path, &d) || cl_cbor_dec_int(&d, &v) != CL_OK)
        fail_msg("no integer at %s", path);
    return v;
}

static double float_at(const uint8_t *doc, size_t len, const char *path)
{
    cl_cbor_dec_t d;
    double v = 0;
    if (!cbor_at(doc, len, path, &d) || cl_cbor_dec_double(&d, &v) != CL_OK)
        fail_msg("no float at %s", path);
    return v;
}

static bool bool_at(const uint8_t *doc, size_t len, const char *path)
{
    cl_cbor_dec_t d;
    bool v = false;
    if (!cbor_at(doc, len, path, &d) || cl_cbor_dec_bool(&d, &v) != CL_OK)
        fail_msg("no boolean at %s", path);
    return v;
}

/* The raw item at path equals the CBOR of a JSON text. */
static void assert_item_json(const uint8_t *doc, size_t len, const char *path, const char *json)
{
    cl_cbor_dec_t d;
    const uint8_t *raw = NULL;
    size_t rl = 0, wl;
    if (!cbor_at(doc, len, path, &d) || cl_cbor_dec_raw(&d, &raw, &rl) != CL_OK)
        fail_msg("no item at %s", path);
    uint8_t *want = j2c(json, &wl);
    tu_assert_bytes(raw, rl, want, wl);
    free(want);
}

static bool contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

/* No {{param.…}} anywhere in the bytes of a document. */
static void assert_no_param_placeholder(const uint8_t *doc, size_t len)
{
    for (size_t i = 0; i + 8 <= len; i++)
        if (memcmp(doc + i, "{{param.", 8) == 0)
            fail_msg("a {{param.…}} placeholder survived");
}

static const cl_scn_object_t *obj(const cl_scn_plan_t *plan, const char *name)
{
    for (size_t i = 0; i < plan->n_objects; i++)
        if (strcmp(plan->objects[i].name, name) == 0)
            return &plan->objects[i];
    fail_msg("no object %s in the plan", name);
    return NULL;
}

/* Every rule of the plan passes the engine's check under its own name; no placeholder left. */
static void assert_plan_checks(const cl_scn_plan_t *plan)
{
    for (size_t i = 0; i < plan->n_objects; i++) {
        const cl_scn_object_t *o = &plan->objects[i];
        assert_no_param_placeholder(o->doc, o->doc_len);
        assert_string_equal(text_at(o->doc, o->doc_len, "name"), o->name);
        if (o->kind != CL_SCN_RULE)
            continue;
        const char *name = NULL;
        size_t nl = 0;
        char why[CL_ECA_WHY_MAX] = "";
        if (cl_eca_check_rule(o->doc, o->doc_len, &name, &nl, why, sizeof why) != CL_OK)
            fail_msg("rule %s refused: %s", o->name, why);
        assert_int_equal(nl, strlen(o->name));
        assert_memory_equal(name, o->name, nl);
    }
}

static void assert_params(const cl_scn_plan_t *plan, const char *json)
{
    size_t wl;
    uint8_t *want = j2c(json, &wl);
    tu_assert_bytes(plan->params, plan->params_len, want, wl);
    free(want);
}

/* ------------------------------------------------------------------ */
/* The shipped examples                                                */
/* ------------------------------------------------------------------ */

static void test_vacant_home_defaults(void **state)
{
    (void)state;
    cl_scn_plan_t plan;
    char why[CL_SCN_WHY_MAX] = "";
    if (inst_file(HOME_JSON, "{\"phone\": 3, \"planner\": 4}", "home", &plan, why, sizeof why) !=
        CL_OK)
        fail_msg("refused: %s", why);
    assert_string_equal(plan.scenario, "vacant-home-eco");
    assert_string_equal(plan.version, "1.0");
    assert_string_equal(plan.publisher, "acme-heating");
    assert_int_equal(plan.n_objects, 4);
    static const struct {
        uint8_t kind;
        const char *name;
    } want[] = {{CL_SCN_EVENT_TYPE, "wifi.status"},
                {CL_SCN_EVENT_TYPE, "planner.presence"},
                {CL_SCN_ACTION_TYPE, "valve.setpoint"},
                {CL_SCN_RULE, "home.eco-when-away"}};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(plan.objects[i].kind, want[i].kind);
        assert_string_equal(plan.objects[i].name, want[i].name);
    }
    assert_plan_checks(&plan);

    /* a type document: name, description, schema as written */
    const cl_scn_object_t *wifi = obj(&plan, "wifi.status");
    assert_string_equal(text_at(wifi->doc, wifi->doc_len, "description"),
                        "a phone's Wi-Fi connection");
    assert_item_json(wifi->doc, wifi->doc_len, "schema",
                     "{\"type\": \"object\", \"properties\": {\"ssid\": {\"type\": \"string\", "
                     "\"maxLength\": 32}, \"connected\": {\"type\": \"boolean\"}}, "
                     "\"required\": [\"connected\"]}");

    /* the rule: name rewritten, sources typed, script with literals */
    const cl_scn_object_t *r = obj(&plan, "home.eco-when-away");
    assert_item_json(r->doc, r->doc_len, "when.source", "[3, 4]");
    assert_item_json(r->doc, r->doc_len, "on", "[\"wifi.status\", \"planner.presence\"]");
    const char *desc = text_at(r->doc, r->doc_len, "description");
    assert_true(contains(desc, "eco (17 C)"));
    assert_true(contains(desc, "comfort (21 C)"));
    const char *script = text_at(r->doc, r->doc_len, "script");
    assert_true(contains(script, "event.source === 3)"));
    assert_true(contains(script, "event.source === 4)"));
    assert_true(contains(script, "p.ssid === \"home\";"));
    assert_true(contains(script, "emit(\"valve.setpoint\", \"@\" + \"valves\", {"));
    assert_true(contains(script, "mode === \"eco\" ? 17 : 21"));

    assert_params(&plan, "{\"phone\": 3, \"planner\": 4, \"valves\": \"valves\", \"home_ssid\": "
                         "\"home\", \"eco\": 17, \"comfort\": 21}");
    cl_scn_plan_free(&plan);
    assert_int_equal(plan.n_objects, 0);
    assert_null(plan.params);
    cl_scn_plan_free(&plan); /* twice is harmless */
}

static void test_vacant_home_params(void **state)
{
    (void)state;
    cl_scn_plan_t plan;
    char why[CL_SCN_WHY_MAX] = "";
    if (inst_file(HOME_JSON,
                  "{\"comfort\": 22, \"eco\": 16.5, \"valves\": \"@upstairs\", \"phone\": 12.0,"
                  " \"home_ssid\": \"Caf\\u00e9 \\\"5G\\\"\\n\", \"planner\": 4294967295}",
                  "flat-2", &plan, why, sizeof why) != CL_OK)
        fail_msg("refused: %s", why);
    assert_int_equal(plan.n_objects, 4);
    assert_plan_checks(&plan);
    const cl_scn_object_t *r = obj(&plan, "flat-2.eco-when-away");
    assert_item_json(r->doc, r->doc_len, "when.source", "[12, 4294967295]");
    const char *script = text_at(r->doc, r->doc_len, "script");
    assert_true(contains(script, "event.source === 12)"));
    assert_true(contains(script, "event.source === 4294967295)"));
    /* a text parameter is a string literal, escaped: never code */
    assert_true(contains(script, "p.ssid === \"Caf\xc3\xa9 \\\"5G\\\"\\u000a\";"));
    assert_true(contains(script, "\"@\" + \"upstairs\""));
    assert_true(contains(script, "mode === \"eco\" ? 16.5 : 22"));
    assert_true(contains(text_at(r->doc, r->doc_len, "description"), "eco (16.5 C)"));
    /* the group without its '@'; ints stay ints, 12.0 is the client 12 */
    assert_params(&plan, "{\"phone\": 12, \"planner\": 4294967295, \"valves\": \"upstairs\", "
                         "\"home_ssid\": \"Caf\\u00e9 \\\"5G\\\"\\n\", \"eco\": 16.5, "
                         "\"comfort\": 22}");
    cl_scn_plan_free(&plan);
}

static void test_smart_meter_defaults(void **state)
{
    (void)state;
    cl_scn_plan_t plan;
    char why[CL_SCN_WHY_MAX] = "";
    if (inst_file(METER_JSON, "{\"dashboard\": 9}", "m", &plan, why, sizeof why) != CL_OK)
        fail_msg("refused: %s", why);
    assert_string_equal(plan.scenario, "smart-meter-regions");
    assert_string_equal(plan.publisher, "gridco");
    assert_int_equal(plan.n_objects, 5);
    assert_int_equal(obj(&plan, "meter.reading")->kind, CL_SCN_EVENT_TYPE);
    assert_int_equal(obj(&plan, "region.total")->kind, CL_SCN_EVENT_TYPE);
    assert_int_equal(obj(&plan, "dashboard.total")->kind, CL_SCN_ACTION_TYPE);
    assert_int_equal(obj(&plan, "m.sum")->kind, CL_SCN_RULE);
    assert_int_equal(obj(&plan, "m.report")->kind, CL_SCN_RULE);
    assert_plan_checks(&plan);

    const cl_scn_object_t *sum = obj(&plan, "m.sum");
    assert_string_equal(text_at(sum->doc, sum->doc_len, "when.source"), "@meters");
    /* the derived event keeps its type name: the other rule still hears it */
    assert_string_equal(text_at(sum->doc, sum->doc_len, "then.0.event"), "region.total");
    assert_string_equal(text_at(sum->doc, sum->doc_len, "then.0.properties.kwh"),
                        "{{state.last.kwh}}");
    const cl_scn_object_t *rep = obj(&plan, "m.report");
    assert_item_json(rep->doc, rep->doc_len, "on", "[\"region.total\"]");
    assert_int_equal(int_at(rep->doc, rep->doc_len, "then.0.target"), 9);
    assert_string_equal(text_at(rep->doc, rep->doc_len, "if"),
                        "event.source === 0 && event.properties.readings % 10 === 0");
    assert_string_equal(text_at(rep->doc, rep->doc_len, "then.0.properties.region"),
                        "{{event.properties.region}}");
    assert_params(&plan, "{\"meters\": \"meters\", \"dashboard\": 9, \"every\": 10}");
    cl_scn_plan_free(&plan);

    /* given parameters: an integral float is an integer */
    if (inst_file(METER_JSON, "{\"every\": 3.0, \"meters\": \"east\", \"dashboard\": 5}",
                  "east-side", &plan, why, sizeof why) != CL_OK)
        fail_msg("refused: %s", why);
    assert_plan_checks(&plan);
    rep = obj(&plan, "east-side.report");
    assert_true(contains(text_at(rep->doc, rep->doc_len, "if"), "% 3 === 0"));
    assert_int_equal(int_at(rep->doc, rep->doc_len, "then.0.target"), 5);
    sum = obj(&plan, "east-side.sum");
    assert_string_equal(text_at(sum->doc, sum->doc_len, "when.source"), "@east");
    assert_params(&plan, "{\"meters\": \"east\", \"dashboard\": 5, \"every\": 3}");
    cl_scn_plan_free(&plan);
}

/* ------------------------------------------------------------------ */
/* Placeholders                                                        */
/* ------------------------------------------------------------------ */

static const char PH_TEMPLATE[] =
    "{\"scenario\": \"ph\", \"version\": \"2024.1-b\", \"parameters\": {"
    " \"c\": {\"type\": \"client\"},"
    " \"g\": {\"type\": \"group\", \"default\": \"lamps\"},"
    " \"n\": {\"type\": \"number\", \"default\": -2.5},"
    " \"i\": {\"type\": \"integer\", \"default\": -3},"
    " \"s\": {\"type\": \"string\", \"default\": \"a\\\"b\\\\c\\u2028\"},"
    " \"b\": {\"type\": \"boolean\", \"default\": true},"
    " \"p\": {\"type\": \"number\", \"default\": 0.30000000000000004},"
    " \"e\": {\"type\": \"number\", \"default\": 1e-7}},"
    " \"event_types\": [{\"name\": \"t.in\", \"description\": \"from {{param.c}} to "
    "@{{param.g}} ({{param.n}}, {{param.p}}, {{param.b}})\"}],"
    " \"action_types\": [{\"name\": \"t.out\", \"description\": \"{{param.s}}\"}],"
    " \"rules\": [{\"name\": \"r\", \"description\": \"n={{param.n}} i={{param.i}}\","
    "  \"on\": [\"t.in\"],"
    "  \"when\": {\"source\": \"{{param.c}}\", \"all\": [{\"prop\": \"x\", \"op\": \"eq\", "
    "\"value\": \"{{param.i}}\"}]},"
    "  \"if\": \"{{param.n}} < 0 && {{param.b}} && {{param.s}}.length > 0 && {{param.i}} < 0"
    " && {{param.p}} > 0.3 && {{param.e}} > 0 && {{param.c}} > 0 && {{param.g}} !== ''\","
    "  \"then\": [{\"action\": \"t.out\", \"target\": \"@{{param.g}}\", \"properties\": {"
    "   \"c\": \"{{param.c}}\", \"n\": \"{{param.n}}\", \"i\": \"{{param.i}}\","
    "   \"s\": \"{{param.s}}\", \"b\": \"{{param.b}}\", \"g\": \"{{param.g}}\","
    "   \"nested\": [{\"deep\": [\"{{param.g}}\", \"x{{param.i}}y\", 1.5, null]}],"
    "   \"ev\": \"{{event.source}}\", \"mix\": \"{{param.c}}:{{event.type}}\"}}]}]}";

static void test_placeholders(void **state)
{
    (void)state;
    cl_scn_plan_t plan;
    char why[CL_SCN_WHY_MAX] = "";
    if (inst_json(PH_TEMPLATE, "{\"c\": 7}", "i1", &plan, why, sizeof why) != CL_OK)
        fail_msg("refused: %s", why);
    assert_string_equal(plan.version, "2024.1-b");
    assert_string_equal(plan.publisher, "");
    assert_plan_checks(&plan);
    /* in type descriptions: text */
    const cl_scn_object_t *t = obj(&plan, "t.in");
    assert_string_equal(text_at(t->doc, t->doc_len, "description"),
                        "from 7 to @lamps (-2.5, 0.3, true)");
    t = obj(&plan, "t.out");
    assert_string_equal(text_at(t->doc, t->doc_len, "description"), "a\"b\\c\xe2\x80\xa8");

    const cl_scn_object_t *r = obj(&plan, "i1.r");
    const uint8_t *d = r->doc;
    size_t l = r->doc_len;
    assert_string_equal(text_at(d, l, "description"), "n=-2.5 i=-3");
    /* a whole-text placeholder keeps its type, at any depth */
    assert_int_equal(int_at(d, l, "when.source"), 7);
    assert_int_equal(int_at(d, l, "when.all.0.value"), -3);
    assert_string_equal(text_at(d, l, "then.0.target"), "@lamps");
    assert_int_equal(int_at(d, l, "then.0.properties.c"), 7);
    assert_true(float_at(d, l, "then.0.properties.n") == -2.5);
    assert_int_equal(int_at(d, l, "then.0.properties.i"), -3);
    assert_string_equal(text_at(d, l, "then.0.properties.s"), "a\"b\\c\xe2\x80\xa8");
    assert_true(bool_at(d, l, "then.0.properties.b"));
    assert_string_equal(text_at(d, l, "then.0.properties.g"), "lamps");
    assert_item_json(d, l, "then.0.properties.nested",
                     "[{\"deep\": [\"lamps\", \"x-3y\", 1.5, null]}]");
    /* the engine's own placeholders are left alone */
    assert_string_equal(text_at(d, l, "then.0.properties.ev"), "{{event.source}}");
    assert_string_equal(text_at(d, l, "then.0.properties.mix"), "7:{{event.type}}");
    /* in JavaScript: literals (negative numbers parenthesized, floats exact, texts escaped) */
    assert_string_equal(text_at(d, l, "if"),
                        "(-2.5) < 0 && true && \"a\\\"b\\\\c\\u2028\".length > 0 && (-3) < 0"
                        " && 0.30000000000000004 > 0.3 && 1e-07 > 0 && 7 > 0"
                        " && \"lamps\" !== ''");
    cl_scn_plan_free(&plan);
}

/* ------------------------------------------------------------------ */
/* Refusals                                                            */
/* ------------------------------------------------------------------ */

/* A valid template without JavaScript; %s is spliced into the rule. */
#define BASE_HEAD                                                                                  \
    "{\"scenario\": \"base\", \"version\": \"1.0\", \"parameters\": {"                             \
    "\"target\": {\"type\": \"client\"},"                                                          \
    "\"level\": {\"type\": \"number\", \"default\": 5, \"minimum\": 0, \"maximum\": 10}},"         \
    "\"event_types\": [{\"name\": \"b.in\", \"schema\": {\"type\": \"object\"}}],"                 \
    "\"action_types\": [{\"name\": \"b.out\"}],"
#define BASE_RULE(extra)                                                                           \
    "{\"name\": \"r1\", \"on\": [\"b.in\"], \"then\": [{\"action\": \"b.out\", \"target\": "       \
    "\"{{param.target}}\", \"properties\": {\"level\": \"{{param.level}}\"}}]" extra "}"
#define BASE BASE_HEAD "\"rules\": [" BASE_RULE("") "]}"
#define WITH_RULES(rules) BASE_HEAD "\"rules\": [" rules "]}"

struct refusal {
    const char *tmpl;
    const char *params;
    const char *instance;
    cl_status_t st;
    const char *why; /* a fragment of the reason */
};

static const struct refusal REFUSALS[] = {
    /* the base itself is fine */
    {BASE, "{\"target\": 1}", "ok", CL_OK, ""},
    /* parameters given by the owner */
    {BASE, "{}", "x", CL_ERR_BAD_INPUT, "missing required parameter \"target\" (client)"},
    {BASE, NULL, "x", CL_ERR_BAD_INPUT, "missing required parameter \"target\" (client)"},
    {BASE, "{\"target\": \"abc\"}", "x", CL_ERR_BAD_INPUT,
     "parameter \"target\": must be a client id (an integer from 1 to 4294967295)"},
    {BASE, "{\"target\": 0}", "x", CL_ERR_BAD_INPUT, "parameter \"target\": must be a client id"},
    {BASE, "{\"target\": -1}", "x", CL_ERR_BAD_INPUT, "parameter \"target\": must be a client id"},
    {BASE, "{\"target\": 4294967296}", "x", CL_ERR_BAD_INPUT,
     "parameter \"target\": must be a client id"},
    {BASE, "{\"target\": 1.5}", "x", CL_ERR_BAD_INPUT, "parameter \"target\": must be a client id"},
    {BASE, "{\"target\": 1, \"level\": 11}", "x", CL_ERR_BAD_INPUT,
     "parameter \"level\": must be <= 10"},
    {BASE, "{\"target\": 1, \"level\": -0.5}", "x", CL_ERR_BAD_INPUT,
     "parameter \"level\": must be >= 0"},
    {BASE, "{\"target\": 1, \"level\": \"5\"}", "x", CL_ERR_BAD_INPUT,
     "parameter \"level\": must be a number"},
    {BASE, "{\"target\": 1, \"level\": null}", "x", CL_ERR_BAD_INPUT,
     "parameter \"level\": must be a number"},
    {BASE, "{\"target\": 1, \"nope\": 2}", "x", CL_ERR_BAD_INPUT, "unknown parameter \"nope\""},
    {BASE, "[1]", "x", CL_ERR_BAD_INPUT, "params: a map name -> value"},
    {BASE, "{\"target\": 1}", "", CL_ERR_BAD_INPUT, "instance name: 1..64 characters"},
    {BASE, "{\"target\": 1}", "a b", CL_ERR_BAD_INPUT, "instance name: 1..64 characters"},
    {BASE, "{\"target\": 1}", "a/b", CL_ERR_BAD_INPUT, "instance name: 1..64 characters"},
    {BASE, "{\"target\": 1}", "i2345678901234567890123456789012345678901234567890123456789012345",
     CL_ERR_BAD_INPUT, "instance name: 1..64 characters"},
    {BASE, "{\"target\": 1}", "i2345678901234567890123456789012345678901234567890123456789012",
     CL_ERR_BAD_INPUT,
     "rule \"r1\": \"i2345678901234567890123456789012345678901234567890123456789012.r1\" is "
     "longer than 64 characters"},
    /* parameter declarations */
    {BASE_HEAD "\"rules\": []}", "{\"target\": 1}", "x", CL_OK, ""},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"a.b\": {\"type\": \"number\"}},"
     " \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameters: names are 1..64 characters [A-Za-z0-9_-]"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"number\", "
     "\"defualt\": 1}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": unknown or repeated field \"defualt\""},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"float\"}},"
     " \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT,
     "parameter \"x\": type: one of client, group, number, integer, string, boolean"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"default\": 1}},"
     " \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": type: missing"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": 3},"
     " \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": must be an object"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"string\", "
     "\"minimum\": 1}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT,
     "parameter \"x\": minimum: only number and integer parameters have bounds"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"integer\", "
     "\"minimum\": 5, \"maximum\": 4}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": minimum is greater than maximum"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"integer\", "
     "\"maximum\": \"4\"}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": maximum: a number"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"integer\", "
     "\"default\": 11, \"maximum\": 10}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": default must be <= 10"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"integer\", "
     "\"default\": 1.5}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": default must be an integer"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"boolean\", "
     "\"default\": 1}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": default must be true or false"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"group\", "
     "\"default\": \"a b\"}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": default must be a group name"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"string\", "
     "\"default\": \"{{event.type}}\"}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": default must not contain \"{{\""},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"string\"}},"
     " \"action_types\": [{\"name\": \"a\"}]}",
     "{\"x\": 5}", "x", CL_ERR_BAD_INPUT, "parameter \"x\": must be a text of at most 256 bytes"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"x\": {\"type\": \"number\", "
     "\"description\": 5}}, \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameter \"x\": description: a text"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": [],"
     " \"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "parameters: an object"},
    /* the template's own fields */
    {"[]", NULL, "x", CL_ERR_BAD_INPUT, "template: one object"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"action_types\": [{\"name\": \"a\"}], "
     "\"extra\": 1}",
     NULL, "x", CL_ERR_BAD_INPUT, "template: unknown or repeated field \"extra\""},
    {"{\"version\": \"1\", \"action_types\": [{\"name\": \"a\"}]}", NULL, "x", CL_ERR_BAD_INPUT,
     "scenario: its name, 1..64 characters [A-Za-z0-9._-]"},
    {"{\"scenario\": \"a b\", \"version\": \"1\", \"action_types\": [{\"name\": \"a\"}]}", NULL,
     "x", CL_ERR_BAD_INPUT, "scenario: its name"},
    {"{\"scenario\": \"s\", \"action_types\": [{\"name\": \"a\"}]}", NULL, "x", CL_ERR_BAD_INPUT,
     "version: 1..32 printable characters without spaces"},
    {"{\"scenario\": \"s\", \"version\": \"1 0\", \"action_types\": [{\"name\": \"a\"}]}", NULL,
     "x", CL_ERR_BAD_INPUT, "version: 1..32"},
    {"{\"scenario\": \"s\", \"version\": \"123456789012345678901234567890123\", "
     "\"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "version: 1..32"},
    {"{\"scenario\": \"s\", \"version\": 1, \"action_types\": [{\"name\": \"a\"}]}", NULL, "x",
     CL_ERR_BAD_INPUT, "version: 1..32"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"publisher\": \"acme heating\", "
     "\"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "publisher: 1..64 characters"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"description\": [], "
     "\"action_types\": [{\"name\": \"a\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "description: a text of at most 512 bytes"},
    {"{\"scenario\": \"s\", \"version\": \"1\"}", NULL, "x", CL_ERR_BAD_INPUT,
     "template: creates nothing"},
    /* types */
    {"{\"scenario\": \"s\", \"version\": \"1\", \"event_types\": [{\"description\": \"d\"}]}", NULL,
     "x", CL_ERR_BAD_INPUT, "event_types[0]: name: missing"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"event_types\": [{\"name\": \"a b\"}]}", NULL, "x",
     CL_ERR_BAD_INPUT, "event_types[0]: name: 1..64 characters [A-Za-z0-9._-]"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"action_types\": [{\"name\": \"a\", "
     "\"schemas\": {}}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "action_types[0]: unknown or repeated field \"schemas\""},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"action_types\": [\"a\"]}", NULL, "x",
     CL_ERR_BAD_INPUT, "action_types[0]: must be an object"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"action_types\": {\"name\": \"a\"}}", NULL, "x",
     CL_ERR_BAD_INPUT, "action_types: an array"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"event_types\": [{\"name\": \"e\", \"schema\": "
     "{\"type\": \"float\"}}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "event type \"e\": schema: type: one of object"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"event_types\": [{\"name\": \"e\", \"schema\": "
     "{\"properties\": {\"t\": {\"pattern\": \"x\"}}}}]}",
     NULL, "x", CL_ERR_BAD_INPUT,
     "event type \"e\": schema: properties.t: unsupported keyword \"pattern\""},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"event_types\": [{\"name\": \"e\"}, "
     "{\"name\": \"f\"}, {\"name\": \"e\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT, "event type \"e\": defined twice"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"s\": {\"type\": \"string\", "
     "\"default\": \"0123456789012345678901234567890123456789012345678901234567890123456789"
     "0123456789012345678901234567890123456789012345678901234567890123456789\"}},"
     " \"action_types\": [{\"name\": \"a\", \"description\": \"{{param.s}}{{param.s}}\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT,
     "action type \"a\" description: longer than 256 bytes (parameters substituted)"},
    {"{\"scenario\": \"s\", \"version\": \"1\", \"action_types\": [{\"name\": \"a\", "
     "\"description\": \"{{param.nope}}\"}]}",
     NULL, "x", CL_ERR_BAD_INPUT,
     "action type \"a\" description: {{param.nope}}: no such parameter"},
    /* rules */
    {WITH_RULES(BASE_RULE("") ", " BASE_RULE("")), "{\"target\": 1}", "x", CL_ERR_BAD_INPUT,
     "rule \"r1\": defined twice"},
    {WITH_RULES("{\"on\": [\"b.in\"]}"), "{\"target\": 1}", "x", CL_ERR_BAD_INPUT,
     "rules[0]: name: missing"},
    {WITH_RULES("{\"name\": \"a b\"}"), "{\"target\": 1}", "x", CL_ERR_BAD_INPUT,
     "rules[0]: name: 1..64 characters"},
    {WITH_RULES("[]"), "{\"target\": 1}", "x", CL_ERR_BAD_INPUT,
     "rules[0]: must be a rule (an object)"},
    {BASE_HEAD "\"rules\": {}}", "{\"target\": 1}", "x", CL_ERR_BAD_INPUT,
     "rules: an array of rule templates"},
    /* invalid rule templates: the engine's reason, under the rule's name */
    {WITH_RULES(BASE_RULE(", \"when\": {\"sauce\": 1}")), "{\"target\": 1}", "x", CL_ERR_BAD_INPUT,
     "rule \"r1\": when."},
    {WITH_RULES("{\"name\": \"r1\", \"on\": 5, \"then\": []}"), "{\"target\": 1}", "x",
     CL_ERR_BAD_INPUT, "rule \"r1\": on"},
    {WITH_RULES("{\"name\": \"r1\", \"on\": [\"b.in\"]}"), "{\"target\": 1}", "x", CL_ERR_BAD_INPUT,
     "rule \"r1\": then"},
    {WITH_RULES("{\"name\": \"r1\", \"on\": [\"b.in\"], \"then\": [{\"action\": \"b.out\", "
                "\"target\": \"{{param.level}}\"}]}"),
     "{\"target\": 1, \"level\": 2.5}", "x", CL_ERR_BAD_INPUT, "rule \"r1\": then[0].target"},
    /* placeholders */
    {WITH_RULES(BASE_RULE(", \"description\": \"{{param.a b}}\"")), "{\"target\": 1}", "x",
     CL_ERR_BAD_INPUT,
     "rule \"r1\" description: bad placeholder \"{{param.a b}}\" (a parameter name is 1..64 "
     "characters [A-Za-z0-9_-])"},
    {WITH_RULES(BASE_RULE(", \"description\": \"{{param.}}\"")), "{\"target\": 1}", "x",
     CL_ERR_BAD_INPUT, "rule \"r1\" description: bad placeholder \"{{param.}}\""},
    {WITH_RULES(BASE_RULE(", \"description\": \"level {{param.level\"")), "{\"target\": 1}", "x",
     CL_ERR_BAD_INPUT, "rule \"r1\" description: placeholder \"{{param.\" without \"}}\""},
    {WITH_RULES("{\"name\": \"r1\", \"on\": [\"b.in\"], \"then\": [{\"action\": \"b.out\", "
                "\"target\": 1, \"properties\": {\"x\": [{\"y\": \"{{param.nope}}\"}]}}]}"),
     "{\"target\": 1}", "x", CL_ERR_BAD_INPUT,
     "rule \"r1\" then[0].properties.x[0].y: {{param.nope}}: no such parameter"},
    {WITH_RULES("{\"name\": \"r1\", \"on\": [\"b.in\"], \"then\": [{\"action\": \"b.out\", "
                "\"target\": 1, \"properties\": {\"{{param.level}}\": 1}}]}"),
     "{\"target\": 1}", "x", CL_ERR_BAD_INPUT,
     "rule \"r1\" then[0].properties: placeholders are not allowed in keys"},
    {WITH_RULES("{\"name\": \"{{param.level}}\", \"on\": [\"b.in\"]}"), "{\"target\": 1}", "x",
     CL_ERR_BAD_INPUT, "rules[0]: name: 1..64 characters"},
};

static void test_refusals(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof REFUSALS / sizeof REFUSALS[0]; i++) {
        const struct refusal *r = &REFUSALS[i];
        cl_scn_plan_t plan;
        char why[CL_SCN_WHY_MAX] = "";
        memset(&plan, 0x5a, sizeof plan);
        cl_status_t st = inst_json(r->tmpl, r->params, r->instance, &plan, why, sizeof why);
        if (st != r->st || strstr(why, r->why) == NULL)
            fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, st, why, r->st, r->why);
        if (st == CL_OK) {
            assert_plan_checks(&plan);
            cl_scn_plan_free(&plan);
        } else {
            /* all or nothing: an empty plan, nothing to free */
            assert_int_equal(plan.n_objects, 0);
            assert_null(plan.params);
            assert_int_equal(plan.scenario[0], 0);
        }
    }
}

/* Counts and sizes beyond the limits. */
static void test_limits(void **state)
{
    (void)state;
    cl_scn_plan_t plan;
    char why[CL_SCN_WHY_MAX] = "";
    size_t cap = 200000, n;
    char *j = malloc(cap);
    assert_non_null(j);

    /* 33 parameters */
    n = (size_t)snprintf(j, cap, "{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {");
    for (int i = 0; i < 33; i++)
        n += (size_t)snprintf(j + n, cap - n, "%s\"p%d\": {\"type\": \"integer\", \"default\": 1}",
                              i ? ", " : "", i);
    (void)snprintf(j + n, cap - n, "}, \"action_types\": [{\"name\": \"a\"}]}");
    assert_int_equal(inst_json(j, NULL, "x", &plan, why, sizeof why), CL_ERR_LIMIT);
    assert_string_equal(why, "parameters: at most 32");

    /* 33 event types, 65 rules */
    n = (size_t)snprintf(j, cap, "{\"scenario\": \"s\", \"version\": \"1\", \"event_types\": [");
    for (int i = 0; i < 33; i++)
        n += (size_t)snprintf(j + n, cap - n, "%s{\"name\": \"e%d\"}", i ? ", " : "", i);
    (void)snprintf(j + n, cap - n, "]}");
    assert_int_equal(inst_json(j, NULL, "x", &plan, why, sizeof why), CL_ERR_LIMIT);
    assert_string_equal(why, "event_types: at most 32");
    n = (size_t)snprintf(j, cap, "{\"scenario\": \"s\", \"version\": \"1\", \"rules\": [");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(j + n, cap - n,
                              "%s{\"name\": \"r%d\", \"on\": [\"e\"], \"then\": [{\"event\": "
                              "\"f\"}]}",
                              i ? ", " : "", i);
    (void)snprintf(j + n, cap - n, "]}");
    assert_int_equal(inst_json(j, NULL, "x", &plan, why, sizeof why), CL_ERR_LIMIT);
    assert_string_equal(why, "rules: at most 64");

    /* the most of everything is fine: 32 + 32 types, 64 rules */
    n = (size_t)snprintf(j, cap, "{\"scenario\": \"s\", \"version\": \"1\", \"event_types\": [");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(j + n, cap - n, "%s{\"name\": \"e%d\"}", i ? ", " : "", i);
    n += (size_t)snprintf(j + n, cap - n, "], \"action_types\": [");
    for (int i = 0; i < 32; i++)
        n += (size_t)snprintf(j + n, cap - n, "%s{\"name\": \"a%d\"}", i ? ", " : "", i);
    n += (size_t)snprintf(j + n, cap - n, "], \"rules\": [");
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(j + n, cap - n,
                              "%s{\"name\": \"r%d\", \"on\": [\"e%d\"], \"then\": [{\"event\": "
                              "\"e%d\"}]}",
                              i ? ", " : "", i, i % 32, (i + 1) % 32);
    (void)snprintf(j + n, cap - n, "]}");
    if (inst_json(j, NULL, "x", &plan, why, sizeof why) != CL_OK)
        fail_msg("refused: %s", why);
    assert_int_equal(plan.n_objects, CL_SCN_MAX_OBJECTS);
    assert_plan_checks(&plan);
    cl_scn_plan_free(&plan);

    /* a rule that grows beyond a rule document once substituted */
    n = (size_t)snprintf(j, cap,
                         "{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"s\": "
                         "{\"type\": \"string\", \"default\": \"");
    for (int i = 0; i < 256; i++)
        j[n++] = 'x';
    n += (size_t)snprintf(j + n, cap - n,
                          "\"}}, \"rules\": [{\"name\": \"r\", \"on\": [\"e\"], \"then\": "
                          "[{\"event\": \"f\", \"properties\": {\"a\": \"");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(j + n, cap - n, "{{param.s}}");
    n += (size_t)snprintf(j + n, cap - n, "\", \"b\": \"");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(j + n, cap - n, "{{param.s}}");
    (void)snprintf(j + n, cap - n, "\"}}]}]}");
    assert_int_equal(inst_json(j, NULL, "x", &plan, why, sizeof why), CL_ERR_LIMIT);
    assert_string_equal(why, "rule \"r\": larger than 16384 bytes once its parameters are "
                             "substituted");
    /* one text beyond it */
    n = (size_t)snprintf(j, cap,
                         "{\"scenario\": \"s\", \"version\": \"1\", \"parameters\": {\"s\": "
                         "{\"type\": \"string\", \"default\": \"");
    for (int i = 0; i < 256; i++)
        j[n++] = 'x';
    n += (size_t)snprintf(j + n, cap - n,
                          "\"}}, \"rules\": [{\"name\": \"r\", \"on\": [\"e\"], \"then\": "
                          "[{\"event\": \"f\", \"properties\": {\"a\": \"");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(j + n, cap - n, "{{param.s}}");
    (void)snprintf(j + n, cap - n, "\"}}]}]}");
    assert_int_equal(inst_json(j, NULL, "x", &plan, why, sizeof why), CL_ERR_LIMIT);
    assert_string_equal(why, "rule \"r\" then[0].properties.a: text longer than 16384 bytes once "
                             "its parameters are substituted");

    /* an oversized template */
    n = (size_t)snprintf(j, cap, "{\"scenario\": \"s\", \"version\": \"1\", \"description\": \"");
    memset(j + n, 'd', CL_SCN_MAX_TEMPLATE);
    n += CL_SCN_MAX_TEMPLATE;
    (void)snprintf(j + n, cap - n, "\", \"action_types\": [{\"name\": \"a\"}]}");
    assert_int_equal(inst_json(j, NULL, "x", &plan, why, sizeof why), CL_ERR_LIMIT);
    assert_string_equal(why, "template larger than 65536 bytes");
    free(j);
}

/* A failure after objects were made leaves nothing behind (ASan checks the leaks). */
static void test_all_or_nothing(void **state)
{
    (void)state;
    cl_scn_plan_t plan;
    char why[CL_SCN_WHY_MAX] = "";
    assert_int_equal(inst_json(WITH_RULES(BASE_RULE("") ", {\"name\": \"r2\", \"on\": 1}"),
                               "{\"target\": 1}", "x", &plan, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_true(contains(why, "rule \"r2\": on"));
    assert_int_equal(plan.n_objects, 0);
    assert_null(plan.params);
    /* bad arguments */
    assert_int_equal(cl_scn_instantiate(NULL, 1, NULL, 0, "x", 1, &plan, why, sizeof why),
                     CL_ERR_INVALID_ARG);
    uint8_t m = 0xa0;
    assert_int_equal(cl_scn_instantiate(&m, 1, NULL, 0, "x", 1, NULL, why, sizeof why),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_scn_instantiate(&m, 1, NULL, 0, "x", 1, &plan, NULL, 0), CL_ERR_BAD_INPUT);
    /* a given parameter twice (CBOR: {"target": 1, "target": 2}) */
    size_t tl;
    uint8_t *t = j2c(BASE, &tl);
    uint8_t p[32];
    size_t pl = tu_hex("a266746172676574016674617267657402", p, sizeof p);
    assert_int_equal(cl_scn_instantiate(t, tl, p, pl, "x", 1, &plan, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "parameter \"target\" given twice");
    /* a truncated template */
    assert_int_equal(cl_scn_instantiate(t, tl - 1, NULL, 0, "x", 1, &plan, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "template: one object {\"scenario\", \"version\", ...}");
    free(t);
}

/* ------------------------------------------------------------------ */
/* Signatures                                                          */
/* ------------------------------------------------------------------ */

typedef struct keys {
    cl_crypto_t c;
    cl_key_t priv, pub, other_pub;
} keys_t;

static void keys_make(keys_t *k)
{
    uint8_t pub[65];
    size_t pl;
    cl_key_t other;
    tu_crypto(&k->c, 0);
    assert_int_equal(k->c.ops->key_generate(k->c.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &k->priv,
                                            pub, sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(k->c.ops->key_import_public(k->c.self, CL_KEY_P256, pub, pl, &k->pub), CL_OK);
    assert_int_equal(k->c.ops->key_generate(k->c.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &other, pub,
                                            sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(k->c.ops->key_import_public(k->c.self, CL_KEY_P256, pub, pl, &k->other_pub),
                     CL_OK);
    cl_key_destroy(&k->c, other);
}

/* A COSE_Sign1 built by hand: [protected bstr, unprotected, payload or nil, signature]. */
static size_t build_sign1(uint8_t *out, size_t size, bool tag, const char *prot_hex,
                          const char *unprot_hex, const uint8_t *payload, size_t payload_len,
                          size_t sig_len)
{
    uint8_t prot[64], unprot[128], sig[80];
    size_t pl = tu_hex(prot_hex, prot, sizeof prot);
    size_t ul = tu_hex(unprot_hex, unprot, sizeof unprot);
    memset(sig, 0x11, sizeof sig);
    cl_cbor_enc_t e;
    size_t len;
    cl_cbor_enc_init(&e, out, size);
    if (tag)
        cl_cbor_enc_tag(&e, CL_COSE_TAG_SIGN1);
    cl_cbor_enc_array(&e, 4);
    cl_cbor_enc_bstr(&e, prot, pl);
    cl_cbor_enc_raw(&e, unprot, ul);
    if (payload != NULL)
        cl_cbor_enc_bstr(&e, payload, payload_len);
    else
        cl_cbor_enc_null(&e);
    cl_cbor_enc_bstr(&e, sig, sig_len);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    return len;
}

static void test_sign_verify(void **state)
{
    (void)state;
    keys_t k;
    size_t jl, need = 0, sl = 0;
    uint8_t *json = read_file(HOME_JSON, &jl);
    uint8_t sig[256];
    char why[CL_SCN_WHY_MAX];
    const char *kid;
    size_t kid_len;
    keys_make(&k);

    /* sizing, a buffer too small, then the signature */
    assert_int_equal(cl_scn_sign(&k.c, k.priv, "acme-heating", 12, json, jl, NULL, 0, &need),
                     CL_OK);
    assert_int_equal(cl_scn_sign(&k.c, k.priv, "acme-heating", 12, json, jl, sig, need - 1, &sl),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(sl, need);
    assert_int_equal(cl_scn_sign(&k.c, k.priv, "acme-heating", 12, json, jl, sig, sizeof sig, &sl),
                     CL_OK);
    assert_int_equal(sl, need);
    /* tagged, protected {1: -7}, unprotected {4: h'acme-heating'}, nil payload */
    static const uint8_t head[] = {0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa1, 0x04, 0x4c};
    assert_memory_equal(sig, head, sizeof head);

    assert_int_equal(cl_scn_sig_kid(sig, sl, &kid, &kid_len), CL_OK);
    assert_int_equal(kid_len, 12);
    assert_memory_equal(kid, "acme-heating", 12);
    assert_true(kid >= (const char *)sig && kid < (const char *)sig + sl);

    why[0] = 0;
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, sig, sl, why, sizeof why), CL_OK);
    assert_string_equal(why, "");
    /* also untagged */
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, sig + 1, sl - 1, why, sizeof why), CL_OK);

    /* a tampered template byte, a shorter template, the wrong key */
    json[jl / 2] ^= 0x01;
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, sig, sl, why, sizeof why), CL_ERR_AUTH);
    assert_string_equal(why, "signature: does not verify with the publisher's key");
    json[jl / 2] ^= 0x01;
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl - 1, sig, sl, why, sizeof why),
                     CL_ERR_AUTH);
    assert_int_equal(cl_scn_verify(&k.c, k.other_pub, json, jl, sig, sl, why, sizeof why),
                     CL_ERR_AUTH);
    /* a tampered signature byte */
    sig[sl - 5] ^= 0x80;
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, sig, sl, why, sizeof why), CL_ERR_AUTH);
    sig[sl - 5] ^= 0x80;

    /* truncated and garbled COSE */
    for (size_t cut = 0; cut < sl; cut++)
        assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, sig, cut, why, sizeof why),
                         CL_ERR_BAD_INPUT);
    assert_string_equal(why, "signature: not a COSE_Sign1");
    uint8_t garbled[256];
    memcpy(garbled, sig, sl);
    garbled[1] = 0x83; /* an array of three */
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, garbled, sl, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    memcpy(garbled, sig, sl);
    garbled[0] = 0xd0; /* tag 16: an Encrypt0 */
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, garbled, sl, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(cl_scn_sig_kid(garbled, sl, &kid, &kid_len), CL_ERR_BAD_INPUT);
    memcpy(garbled, sig, sl);
    garbled[sl] = 0x00; /* trailing bytes */
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, garbled, sl + 1, why, sizeof why),
                     CL_ERR_BAD_INPUT);

    /* bad arguments */
    assert_int_equal(cl_scn_sign(&k.c, k.priv, "", 0, json, jl, sig, sizeof sig, &sl),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_scn_sign(&k.c, k.priv, "a b", 3, json, jl, sig, sizeof sig, &sl),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_scn_sign(&k.c, k.priv, "a", 1, json, 0, sig, sizeof sig, &sl),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, NULL, 0, sig, sl, why, sizeof why),
                     CL_ERR_INVALID_ARG);
    free(json);
    cl_crypto_openssl_free(&k.c);
}

/* Signatures that are well-formed COSE but not what scenario.h prescribes. */
static void test_signature_shapes(void **state)
{
    (void)state;
    keys_t k;
    uint8_t json[] = "{\"scenario\": \"s\"}";
    size_t jl = sizeof json - 1, n;
    uint8_t msg[512];
    char why[CL_SCN_WHY_MAX];
    const char *kid;
    size_t kid_len;
    keys_make(&k);
    static const char KID_UNPROT[] = "a1044461636d65"; /* {4: h'61636d65'} ("acme") */

    /* the shape itself, with a dummy signature: passes every check up to the verification */
    n = build_sign1(msg, sizeof msg, true, "a10126", KID_UNPROT, NULL, 0, 64);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why), CL_ERR_AUTH);
    assert_int_equal(cl_scn_sig_kid(msg, n, &kid, &kid_len), CL_OK);
    assert_int_equal(kid_len, 4);
    assert_memory_equal(kid, "acme", 4);

    /* a non-detached payload is refused, even when it is the template */
    n = build_sign1(msg, sizeof msg, true, "a10126", KID_UNPROT, json, jl, 64);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "signature: the payload must be detached (nil)");
    /* a really signed attached Sign1 too */
    uint8_t unprot[8];
    size_t ul = tu_hex(KID_UNPROT, unprot, sizeof unprot);
    static const uint8_t prot[] = {0xa1, 0x01, 0x26};
    assert_int_equal(cl_cose_sign1_sign(&k.c, k.priv, CL_SIG_ES256, prot, sizeof prot, unprot, ul,
                                        NULL, 0, json, jl, true, msg, sizeof msg, &n),
                     CL_OK);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);

    /* wrong algorithms: EdDSA, none, only in the unprotected bucket, a text */
    n = build_sign1(msg, sizeof msg, true, "a10127", KID_UNPROT, NULL, 0, 64);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "signature: the protected header must say alg ES256 (-7)");
    n = build_sign1(msg, sizeof msg, true, "", KID_UNPROT, NULL, 0, 64);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    n = build_sign1(msg, sizeof msg, true, "", "a20126044461636d65", NULL, 0, 64);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "signature: the protected header must say alg ES256 (-7)");
    n = build_sign1(msg, sizeof msg, true, "a101654553323536", KID_UNPROT, NULL, 0, 64);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    /* critical headers */
    n = build_sign1(msg, sizeof msg, true, "a201260281182a", KID_UNPROT, NULL, 0, 64);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "signature: critical header parameters are not supported");
    /* kids: absent, a text, not a name; in the protected bucket is fine */
    n = build_sign1(msg, sizeof msg, true, "a10126", "a0", NULL, 0, 64);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "signature: kid must be the publisher's name (a byte string)");
    assert_int_equal(cl_scn_sig_kid(msg, n, &kid, &kid_len), CL_ERR_BAD_INPUT);
    n = build_sign1(msg, sizeof msg, true, "a10126", "a1046461636d65", NULL, 0, 64);
    assert_int_equal(cl_scn_sig_kid(msg, n, &kid, &kid_len), CL_ERR_BAD_INPUT);
    n = build_sign1(msg, sizeof msg, true, "a10126", "a1044361202f", NULL, 0, 64);
    assert_int_equal(cl_scn_sig_kid(msg, n, &kid, &kid_len), CL_ERR_BAD_INPUT);
    n = build_sign1(msg, sizeof msg, true, "a201260442676f", "a0", NULL, 0, 64);
    assert_int_equal(cl_scn_sig_kid(msg, n, &kid, &kid_len), CL_OK);
    assert_int_equal(kid_len, 2);
    assert_memory_equal(kid, "go", 2);
    /* an ES256 signature is 64 bytes */
    n = build_sign1(msg, sizeof msg, true, "a10126", KID_UNPROT, NULL, 0, 63);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "signature: an ES256 signature is 64 bytes");
    n = build_sign1(msg, sizeof msg, true, "a10126", KID_UNPROT, NULL, 0, 65);
    assert_int_equal(cl_scn_verify(&k.c, k.pub, json, jl, msg, n, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    cl_crypto_openssl_free(&k.c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vacant_home_defaults),
        cmocka_unit_test(test_vacant_home_params),
        cmocka_unit_test(test_smart_meter_defaults),
        cmocka_unit_test(test_placeholders),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_all_or_nothing),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_signature_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
