/*
 * test_js.c - the ECMAScript sandbox (core/js/js.h).
 *
 * Conditions (truthiness, event fields), scripts with state across calls,
 * state export/import, emit and its refusals, now()/random(), conversions in
 * both directions, and the hostile cases: endless loops (with and without a
 * clock), memory bombs, deep recursion, exceptions, prototype tampering,
 * attempts to leave the condition's or the script's wrapper, syntax errors,
 * too many emits, oversized or unconvertible state, re-entry from a
 * callback, and a fatal error inside Duktape. After every failure the same
 * sandbox must still evaluate a good call.
 *
 * Values are written as JSON with single-quoted strings and converted to
 * CBOR by a small converter below (21 is an integer, 21.5 a float).
 */
#define _GNU_SOURCE /* clock_gettime */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cloister/cbor.h"
#include "js.h"

/* ------------------------------------------------------------------ */
/* JSON (with '...' strings) -> CBOR                                   */
/* ------------------------------------------------------------------ */

static const char *jp;

static void jws(void)
{
    while (*jp == ' ' || *jp == '\n')
        jp++;
}

static void jval(cl_cbor_enc_t *e)
{
    jws();
    if (*jp == '{' || *jp == '[') {
        char close = *jp == '{' ? '}' : ']';
        bool map = *jp == '{';
        jp++;
        /* count the items first: a scratch pass over the same text */
        const char *save = jp;
        cl_cbor_enc_t cnt;
        cl_cbor_enc_init(&cnt, NULL, 0);
        size_t n = 0;
        jws();
        while (*jp != close) {
            if (map) {
                jval(&cnt);
                jws();
                assert_int_equal(*jp++, ':');
            }
            jval(&cnt);
            n++;
            jws();
            if (*jp == ',')
                jp++;
            jws();
        }
        jp = save;
        if (map)
            cl_cbor_enc_map(e, n);
        else
            cl_cbor_enc_array(e, n);
        jws();
        while (*jp != close) {
            if (map) {
                jval(e);
                jws();
                jp++;
            }
            jval(e);
            jws();
            if (*jp == ',')
                jp++;
            jws();
        }
        jp++;
    } else if (*jp == '\'') {
        const char *s = ++jp;
        while (*jp != '\'')
            jp++;
        cl_cbor_enc_tstr(e, s, (size_t)(jp - s));
        jp++;
    } else if (strncmp(jp, "true", 4) == 0) {
        cl_cbor_enc_bool(e, true);
        jp += 4;
    } else if (strncmp(jp, "false", 5) == 0) {
        cl_cbor_enc_bool(e, false);
        jp += 5;
    } else if (strncmp(jp, "null", 4) == 0) {
        cl_cbor_enc_null(e);
        jp += 4;
    } else {
        char *end;
        double d = strtod(jp, &end);
        bool is_float = false;
        for (const char *q = jp; q < end; q++)
            if (*q == '.' || *q == 'e')
                is_float = true;
        if (is_float)
            cl_cbor_enc_double(e, d);
        else
            cl_cbor_enc_int(e, strtoll(jp, NULL, 10));
        jp = end;
    }
}

/* CBOR of a JSON text into buf (static, 4 slots used round robin). */
static const uint8_t *cbor(const char *json, size_t *len)
{
    static uint8_t bufs[4][16384];
    static int next;
    uint8_t *b = bufs[next++ % 4];
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, b, sizeof bufs[0]);
    jp = json;
    jval(&e);
    assert_int_equal(cl_cbor_enc_finish(&e, len), CL_OK);
    return b;
}

/* ------------------------------------------------------------------ */
/* Environment                                                         */
/* ------------------------------------------------------------------ */

typedef struct env_state {
    int64_t now_ms;
    bool frozen_clock; /* a host whose monotonic clock stands still */
    uint8_t seed;
} env_state_t;

static env_state_t g_env = {1700000000123, false, 1};

static int64_t t_now(void *arg)
{
    return ((env_state_t *)arg)->now_ms;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t t_clock(void *arg)
{
    return ((env_state_t *)arg)->frozen_clock ? 42 : mono_us();
}

static cl_status_t t_rand(void *arg, uint8_t *out, size_t len)
{
    env_state_t *s = arg;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(s->seed * 31u + i);
    return CL_OK;
}

static cl_js_env_t env_clock(void)
{
    return (cl_js_env_t){&g_env, t_now, t_clock, t_rand};
}

static cl_js_env_t env_noclock(void)
{
    return (cl_js_env_t){&g_env, t_now, NULL, t_rand};
}

/* A generous time budget: sanitizer builds run Duktape 10-20 times slower, and
 * only the time tests (which set their own) are about time. */
static const cl_js_limits_t defaults = {0, 1000, 0, 0};
static const cl_js_limits_t fast = {0, 10, 0, 0};

static cl_js_t *mk_lim(const char *cond, const char *script, const cl_js_limits_t *lim)
{
    cl_js_env_t env = env_clock();
    cl_js_t *js = NULL;
    char why[CL_JS_WHY_MAX] = "";
    cl_status_t st = cl_js_create(&js, &env, lim, cond, cond ? strlen(cond) : 0, script,
                                  script ? strlen(script) : 0, why, sizeof why);
    if (st != CL_OK)
        fail_msg("create failed: %d %s", st, why);
    assert_non_null(js);
    return js;
}

static cl_js_t *mk(const char *cond, const char *script)
{
    return mk_lim(cond, script, &defaults);
}

/* Expects cl_js_create to refuse; returns the status, reason in why. */
static cl_status_t mk_fail(const char *cond, const char *script, char *why, size_t why_size)
{
    cl_js_env_t env = env_clock();
    cl_js_t *js = NULL;
    cl_status_t st = cl_js_create(&js, &env, &defaults, cond, cond ? strlen(cond) : 0, script,
                                  script ? strlen(script) : 0, why, why_size);
    assert_int_not_equal(st, CL_OK);
    assert_null(js);
    assert_true(why[0] != '\0');
    return st;
}

static cl_js_event_t evt(const char *type, uint32_t source, const char *props_json)
{
    cl_js_event_t e = {type, strlen(type), source, 1700000000000, NULL, 0};
    if (props_json != NULL)
        e.props = cbor(props_json, &e.props_len);
    return e;
}

/* The condition's result on an event, asserting success. */
static bool cond_on(cl_js_t *js, const char *props_json)
{
    cl_js_event_t e = evt("m", 4, props_json);
    bool r = false;
    char why[CL_JS_WHY_MAX] = "";
    cl_status_t st = cl_js_cond(js, &e, &r, why, sizeof why);
    if (st != CL_OK)
        fail_msg("cond failed: %d %s", st, why);
    return r;
}

static bool cond1(const char *cond, const char *props_json)
{
    cl_js_t *js = mk(cond, NULL);
    bool r = cond_on(js, props_json);
    cl_js_free(js);
    return r;
}

/* Emits recorded by the callback. */
typedef struct rec {
    int n;
    char action[8][80];
    bool group[8];
    uint32_t id[8];
    char gname[8][80];
    uint8_t props[8][256];
    size_t props_len[8];
    cl_status_t answer; /* what the callback returns */
    cl_js_t *reenter;   /* a sandbox the callback calls into */
    cl_status_t reenter_st;
} rec_t;

static cl_status_t on_emit(void *arg, const cl_js_emit_t *e)
{
    rec_t *r = arg;
    if (r->reenter != NULL) {
        cl_js_event_t ev = evt("m", 1, NULL);
        bool res;
        char w[CL_JS_WHY_MAX];
        r->reenter_st = cl_js_cond(r->reenter, &ev, &res, w, sizeof w);
    }
    if (r->n < 8) {
        snprintf(r->action[r->n], sizeof r->action[0], "%.*s", (int)e->action_len, e->action);
        r->group[r->n] = e->target_is_group;
        r->id[r->n] = e->target_id;
        if (e->target_is_group)
            snprintf(r->gname[r->n], sizeof r->gname[0], "%.*s", (int)e->target_group_len,
                     e->target_group);
        assert_true(e->props_len <= sizeof r->props[0]);
        memcpy(r->props[r->n], e->props, e->props_len);
        r->props_len[r->n] = e->props_len;
    }
    r->n++;
    return r->answer;
}

static cl_status_t run_ev(cl_js_t *js, const char *props_json, rec_t *r, bool *changed, char *why,
                          size_t why_size)
{
    cl_js_event_t e = evt("m", 4, props_json);
    bool ch = false;
    why[0] = '\0';
    cl_status_t st = cl_js_run(js, &e, on_emit, r, &ch, why, why_size);
    if (changed != NULL)
        *changed = ch;
    return st;
}

static void run_ok(cl_js_t *js, const char *props_json, rec_t *r, bool *changed)
{
    char why[CL_JS_WHY_MAX];
    cl_status_t st = run_ev(js, props_json, r, changed, why, sizeof why);
    if (st != CL_OK)
        fail_msg("run failed: %d %s", st, why);
}

static void assert_state(cl_js_t *js, const char *json)
{
    uint8_t out[8192];
    size_t len, want_len;
    assert_int_equal(cl_js_state_get(js, out, sizeof out, &len), CL_OK);
    const uint8_t *want = cbor(json, &want_len);
    if (len != want_len || memcmp(out, want, len) != 0) {
        char hex[512] = "";
        for (size_t i = 0; i < len && i < 200; i++)
            snprintf(hex + 2 * i, 3, "%02x", out[i]);
        fail_msg("state is %s, want CBOR of %s", hex, json);
    }
}

static void assert_props(const rec_t *r, int i, const char *json)
{
    size_t len;
    const uint8_t *want = cbor(json, &len);
    assert_int_equal(r->props_len[i], len);
    assert_memory_equal(r->props[i], want, len);
}

/* A failing run: status and a reason containing `part`. */
static void run_fails(cl_js_t *js, const char *props_json, cl_status_t want, const char *part)
{
    rec_t r = {0};
    char why[CL_JS_WHY_MAX];
    cl_status_t st = run_ev(js, props_json, &r, NULL, why, sizeof why);
    if (st != want || strstr(why, part) == NULL)
        fail_msg("run: status %d (want %d), reason \"%s\" (want \"%s\")", st, want, why, part);
}

static void cond_fails(cl_js_t *js, cl_status_t want, const char *part)
{
    cl_js_event_t e = evt("m", 4, "{'temp':1}");
    bool r = true;
    char why[CL_JS_WHY_MAX] = "";
    cl_status_t st = cl_js_cond(js, &e, &r, why, sizeof why);
    if (st != want || strstr(why, part) == NULL)
        fail_msg("cond: status %d (want %d), reason \"%s\" (want \"%s\")", st, want, why, part);
    assert_false(r);
}

/* Hostile scripts start with this: an event with {'good': true} takes a
 * harmless path, so the same sandbox can show that it still works. */
#define GOOD                                                                                       \
    "if (event.properties.good) {\n"                                                               \
    "  var t = JSON.stringify({a: [1, 2], s: 'x'.repeat(3)});\n"                                   \
    "  if (t !== '{\"a\":[1,2],\"s\":\"xxx\"}') throw new Error(t);\n"                             \
    "  emit('ok', 1, {t: t}); return;\n"                                                           \
    "}\n"

static cl_js_t *mk_hostile(const char *script, const cl_js_limits_t *lim)
{
    char *src = malloc(strlen(GOOD) + strlen(script) + 1);
    strcpy(src, GOOD);
    strcat(src, script);
    cl_js_t *js = mk_lim(NULL, src, lim != NULL ? lim : &defaults);
    free(src);
    return js;
}

/* The sandbox is still fine after a failure (a script made by mk_hostile). */
static void still_works(cl_js_t *js)
{
    rec_t r = {0};
    char why[CL_JS_WHY_MAX];
    bool changed = true;
    cl_status_t st = run_ev(js, "{'good':true}", &r, &changed, why, sizeof why);
    if (st != CL_OK)
        fail_msg("a good call after the failure failed: %d %s", st, why);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.action[0], "ok");
    assert_false(changed);
}

/* ------------------------------------------------------------------ */
/* Conditions                                                          */
/* ------------------------------------------------------------------ */

static void test_cond_values(void **st)
{
    (void)st;
    assert_true(cond1("event.properties.temp > 21 && event.source != 3", "{'temp':21.5}"));
    assert_false(cond1("event.properties.temp > 21 && event.source != 4", "{'temp':21.5}"));
    assert_false(cond1("event.properties.temp > 21", "{'temp':21}"));
    assert_true(cond1("event.type === 'm' && event.time === 1700000000000", NULL));
    assert_true(cond1("event.properties.a.b[1] === 'x' && event.properties.n === null",
                      "{'a':{'b':[1,'x']},'n':null}"));
    assert_true(cond1("event.properties.f === -2.5 && event.properties.i === -7 && "
                      "event.properties.big === 9007199254740993 - 1",
                      "{'f':-2.5,'i':-7,'big':9007199254740992}"));
    assert_true(
        cond1("event.properties.u === '\\u00e9t\\u00e9 \\ud83d\\ude00'.normalize ? true : true",
              "{'u':'été 😀'}"));
    assert_true(cond1("Object.keys(event.properties).join() === 'a,b,c'", "{'a':1,'b':2,'c':3}"));
    /* truthiness of the expression */
    assert_false(cond1("0", NULL));
    assert_false(cond1("''", NULL));
    assert_false(cond1("null", NULL));
    assert_false(cond1("undefined", NULL));
    assert_false(cond1("NaN", NULL));
    assert_true(cond1("'x'", NULL));
    assert_true(cond1("({})", NULL));
    assert_true(cond1("[]", NULL));
    assert_true(cond1("event.properties.flag", "{'flag':1}"));
    assert_false(cond1("event.properties.missing", "{'flag':1}"));
    /* comments and line breaks inside the expression are fine */
    assert_true(cond1("/* c */ event.properties.flag // trailing comment", "{'flag':true}"));
    assert_true(cond1("event.properties.flag &&\n  true", "{'flag':true}"));
    assert_true(cond1("event.properties.s.length === 3 && event.properties.s.charAt(1) === 'b'",
                      "{'s':'abc'}"));
    /* no properties: an empty object */
    assert_true(cond1("Object.keys(event.properties).length === 0", NULL));
    /* integers beyond int64 are numbers too */
    cl_js_t *big = mk("event.properties.n === -18446744073709551616 && "
                      "event.properties.u === 18446744073709551615",
                      NULL);
    uint8_t bp[] = {0xa2, 0x61, 'n',  0x3b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                    0x61, 'u',  0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    cl_js_event_t be = {"m", 1, 1, 0, bp, sizeof bp};
    bool br = false;
    char bwhy[CL_JS_WHY_MAX];
    assert_int_equal(cl_js_cond(big, &be, &br, bwhy, sizeof bwhy), CL_OK);
    assert_true(br);
    cl_js_free(big);
    /* byte strings are Uint8Arrays, tags are dropped */
    cl_js_t *js = mk("event.properties.b instanceof Uint8Array && event.properties.b[1] === 2 && "
                     "event.properties.t === 5",
                     NULL);
    uint8_t p[] = {0xa2, 0x61, 'b', 0x42, 1, 2, 0x61, 't', 0xc1, 0x05};
    cl_js_event_t e = {"m", 1, 1, 0, p, sizeof p};
    bool r = false;
    char why[CL_JS_WHY_MAX];
    assert_int_equal(cl_js_cond(js, &e, &r, why, sizeof why), CL_OK);
    assert_true(r);
    cl_js_free(js);
}

static void test_cond_event_frozen(void **st)
{
    (void)st;
    cl_js_t *js = mk("(event.properties.temp = 5, true)", NULL);
    cond_fails(js, CL_ERR_BAD_INPUT, "TypeError");
    cl_js_free(js);
    js = mk("(event.source = 5, true)", NULL);
    cond_fails(js, CL_ERR_BAD_INPUT, "TypeError");
    cl_js_free(js);
    js = mk("(event.properties.a.push(1), true)", NULL);
    cl_js_event_t e = evt("m", 1, "{'a':[1]}");
    bool r;
    char why[CL_JS_WHY_MAX];
    assert_int_equal(cl_js_cond(js, &e, &r, why, sizeof why), CL_ERR_BAD_INPUT);
    cl_js_free(js);
    assert_true(cond1("Object.isFrozen(event) && Object.isFrozen(event.properties) && "
                      "Object.isFrozen(event.properties.o)",
                      "{'o':{'x':1}}"));
    /* a property named like an inherited one is the event's own */
    assert_true(cond1("event.properties.constructor === 1 && event.properties.__proto__ === 2 && "
                      "event.properties.toString === 3 && Object.getPrototypeOf(event.properties) "
                      "=== Object.prototype",
                      "{'constructor':1,'__proto__':2,'toString':3}"));
}

/* The event object is kept and updated in place (push_event): every call
 * must still see exactly its own event. */
static void test_event_updates(void **st)
{
    (void)st;
    cl_js_t *js = mk("JSON.stringify(event) === state.want", NULL);
    static const struct {
        const char *type;
        uint32_t source;
        const char *props;
        const char *want;
    } seq[] = {
        {"m", 1, "{'a':1,'b':'x'}",
         "{\"type\":\"m\",\"source\":1,\"time\":5,\"properties\":{\"a\":1,\"b\":\"x\"}}"},
        {"m", 1, "{'a':2,'b':'y'}",
         "{\"type\":\"m\",\"source\":1,\"time\":5,\"properties\":{\"a\":2,\"b\":\"y\"}}"},
        {"m", 2, "{'a':2,'b':'y'}",
         "{\"type\":\"m\",\"source\":2,\"time\":5,\"properties\":{\"a\":2,\"b\":\"y\"}}"},
        {"n", 2, "{'a':{'c':[1]},'b':null}",
         "{\"type\":\"n\",\"source\":2,\"time\":5,\"properties\":{\"a\":{\"c\":[1]},\"b\":null}}"},
        {"n", 2, "{'b':1,'a':2}",
         "{\"type\":\"n\",\"source\":2,\"time\":5,\"properties\":{\"b\":1,\"a\":2}}"},
        {"n", 2, "{}", "{\"type\":\"n\",\"source\":2,\"time\":5,\"properties\":{}}"},
        {"n", 2, NULL, "{\"type\":\"n\",\"source\":2,\"time\":5,\"properties\":{}}"},
        {"n", 2, "{'a':1}", "{\"type\":\"n\",\"source\":2,\"time\":5,\"properties\":{\"a\":1}}"},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        uint8_t sb[256];
        cl_cbor_enc_t e;
        size_t len;
        cl_cbor_enc_init(&e, sb, sizeof sb);
        cl_cbor_enc_map(&e, 1);
        cl_cbor_enc_tstr_z(&e, "want");
        cl_cbor_enc_tstr_z(&e, seq[i].want);
        assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
        assert_int_equal(cl_js_state_set(js, sb, len), CL_OK);
        cl_js_event_t ev = evt(seq[i].type, seq[i].source, seq[i].props);
        ev.time_ms = 5;
        bool r = false;
        char why[CL_JS_WHY_MAX];
        assert_int_equal(cl_js_cond(js, &ev, &r, why, sizeof why), CL_OK);
        if (!r)
            fail_msg("event %zu: the condition did not see %s", i, seq[i].want);
        /* twice: the unchanged event is not converted again */
        assert_int_equal(cl_js_cond(js, &ev, &r, why, sizeof why), CL_OK);
        assert_true(r);
    }
    /* a malformed event between two good ones */
    uint8_t bad[] = {0xa2, 0x61, 'a', 0x01, 0x61};
    cl_js_event_t ev = {"n", 1, 2, 5, bad, sizeof bad};
    bool r = true;
    char why[CL_JS_WHY_MAX];
    assert_int_equal(cl_js_cond(js, &ev, &r, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_non_null(strstr(why, "event"));
    cl_js_free(js);

    /* a Uint8Array in an event can be written to, but not into the next call */
    js = mk("(event.properties.b[0] === 1) && (event.properties.b[0] = 9, true)", NULL);
    uint8_t p[] = {0xa1, 0x61, 'b', 0x42, 1, 2};
    cl_js_event_t be = {"m", 1, 1, 0, p, sizeof p};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cl_js_cond(js, &be, &r, why, sizeof why), CL_OK);
        assert_true(r);
    }
    cl_js_free(js);
    /* nor can a script keep the event: state holds copies only */
    js = mk(NULL, "if (state.e) { state.same = state.e.properties.v === event.properties.v; }\n"
                  "state.e = event;");
    rec_t rr = {0};
    run_ok(js, "{'v':1}", &rr, NULL);
    run_ok(js, "{'v':2}", &rr, NULL);
    assert_state(js, "{'e':{'type':'m','source':4,'time':1700000000000,'properties':{'v':2}},"
                     "'same':false}");
    cl_js_free(js);
}

static void test_cond_reads_state(void **st)
{
    (void)st;
    cl_js_t *js = mk("event.properties.t > state.limit", "state.limit = event.properties.t;");
    size_t len;
    const uint8_t *s = cbor("{'limit':20}", &len);
    assert_int_equal(cl_js_state_set(js, s, len), CL_OK);
    assert_true(cond_on(js, "{'t':21}"));
    assert_false(cond_on(js, "{'t':19}"));
    /* the script moves the limit; the condition sees it */
    rec_t r = {0};
    bool changed;
    run_ok(js, "{'t':30}", &r, &changed);
    assert_true(changed);
    assert_false(cond_on(js, "{'t':21}"));
    assert_true(cond_on(js, "{'t':31}"));
    cl_js_free(js);
    /* a condition cannot change state */
    js = mk("(state.x = 1, true)", "state.y = 2;");
    cond_fails(js, CL_ERR_BAD_INPUT, "TypeError");
    assert_state(js, "{}");
    cl_js_free(js);
    /* no condition: it holds */
    js = mk(NULL, "state.y = 2;");
    assert_true(cond_on(js, "{}"));
    cl_js_free(js);
}

/* ------------------------------------------------------------------ */
/* Scripts and state                                                   */
/* ------------------------------------------------------------------ */

static void test_script_state(void **st)
{
    (void)st;
    cl_js_t *js = mk(NULL, "state.n = (state.n || 0) + 1;\n"
                           "if (event.properties.v > 5) state.big = true;\n"
                           "return 'ignored';");
    rec_t r = {0};
    bool changed = false;
    run_ok(js, "{'v':1}", &r, &changed);
    assert_true(changed);
    assert_state(js, "{'n':1}");
    run_ok(js, "{'v':9}", &r, &changed);
    assert_state(js, "{'n':2,'big':true}");
    run_ok(js, "{'v':9}", &r, &changed);
    assert_state(js, "{'n':3,'big':true}");
    assert_int_equal(r.n, 0);
    cl_js_free(js);

    /* a script that leaves state alone reports no change */
    js = mk(NULL, "var x = state.n;");
    run_ok(js, "{}", &r, &changed);
    assert_false(changed);
    cl_js_free(js);

    /* a run that fails leaves state as it was */
    js = mk(NULL, "state.n = (state.n || 0) + 1; if (event.properties.fail) throw new "
                  "Error('nope');");
    run_ok(js, "{'fail':false}", &r, &changed);
    run_fails(js, "{'fail':true}", CL_ERR_BAD_INPUT, "Error: nope");
    assert_state(js, "{'n':1}");
    run_ok(js, "{'fail':false}", &r, &changed);
    assert_state(js, "{'n':2}");
    cl_js_free(js);

    /* only what is in the CBOR survives a call */
    js = mk(
        NULL,
        "if (event.properties.step === 1) {\n"
        "  Object.defineProperty(state, 'hidden', {value: 1, enumerable: false});\n"
        "  state[Symbol.iterator] = 1; state.u = undefined; state.v = 1;\n"
        "} else {\n"
        "  state.seen = [state.hidden === undefined, Object.getOwnPropertySymbols(state).length,\n"
        "                'u' in state];\n"
        "}");
    run_ok(js, "{'step':1}", &r, &changed);
    assert_state(js, "{'v':1}");
    run_ok(js, "{'step':2}", &r, &changed);
    assert_state(js, "{'v':1,'seen':[true,0,false]}");
    cl_js_free(js);
}

static void test_state_roundtrip(void **st)
{
    (void)st;
    cl_js_t *js = mk(NULL, "state.count = (state.count || 0) + 1;");
    const char *doc = "{'count':5,'name':'été','list':[1,-2,3.5,true,null,'x',[]],"
                      "'nested':{'a':{'b':{'c':1}}},'f':1.0e300,'neg':-9007199254740991}";
    size_t len;
    const uint8_t *s = cbor(doc, &len);
    assert_int_equal(cl_js_state_set(js, s, len), CL_OK);
    assert_state(js, doc);
    rec_t r = {0};
    bool changed;
    run_ok(js, NULL, &r, &changed);
    assert_true(changed);
    assert_state(js, "{'count':6,'name':'été','list':[1,-2,3.5,true,null,'x',[]],"
                     "'nested':{'a':{'b':{'c':1}}},'f':1.0e300,'neg':-9007199254740991}");
    /* export into a small buffer */
    uint8_t small[4];
    size_t out_len;
    assert_int_equal(cl_js_state_get(js, small, sizeof small, &out_len), CL_ERR_BUFFER_TOO_SMALL);
    /* refusals keep the old state */
    s = cbor("[1,2]", &len);
    assert_int_equal(cl_js_state_set(js, s, len), CL_ERR_BAD_INPUT);
    uint8_t bad[] = {0xa1, 0x01, 0x02}; /* integer key */
    assert_int_equal(cl_js_state_set(js, bad, sizeof bad), CL_ERR_BAD_INPUT);
    uint8_t bytes[] = {0xa1, 0x61, 'b', 0x41, 0x00}; /* byte string */
    assert_int_equal(cl_js_state_set(js, bytes, sizeof bytes), CL_ERR_BAD_INPUT);
    uint8_t trunc[] = {0xa2, 0x61, 'a', 0x01};
    assert_int_equal(cl_js_state_set(js, trunc, sizeof trunc), CL_ERR_BAD_INPUT);
    uint8_t two[] = {0xa0, 0xa0};
    assert_int_equal(cl_js_state_set(js, two, sizeof two), CL_ERR_BAD_INPUT);
    uint8_t big[5000];
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, big, sizeof big);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, "s");
    char text[4500];
    memset(text, 'x', sizeof text);
    cl_cbor_enc_tstr(&e, text, sizeof text);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_int_equal(cl_js_state_set(js, big, len), CL_ERR_LIMIT);
    assert_state(js, "{'count':6,'name':'été','list':[1,-2,3.5,true,null,'x',[]],"
                     "'nested':{'a':{'b':{'c':1}}},'f':1.0e300,'neg':-9007199254740991}");
    /* an empty map resets it */
    uint8_t empty = 0xa0;
    assert_int_equal(cl_js_state_set(js, &empty, 1), CL_OK);
    assert_state(js, "{}");
    cl_js_free(js);
}

static void test_state_conversions(void **st)
{
    (void)st;
    cl_js_t *js = mk(NULL, "state.negzero = -0; state.i = 1e15; state.fl = 0.1;\n"
                           "state.arr = [1, undefined, 3]; state.arr2 = [];\n"
                           "state.arr2[3] = 'x';\n"
                           "state.pair = '\\ud83d\\ude00'; state.lone = 'a\\ud800b';\n"
                           "state.nul = null; state.u = undefined;\n"
                           "state.p = new Proxy({}, {ownKeys: function () { return ['k']; },\n"
                           "  getOwnPropertyDescriptor: function () {\n"
                           "    return {value: 1, enumerable: true, configurable: true}; },\n"
                           "  get: function (t, k) { return k === 'k' ? 7 : undefined; }});\n"
                           "state.bare = Object.create(null); state.bare.z = 1;");
    rec_t r = {0};
    run_ok(js, NULL, &r, NULL);
    assert_state(js, "{'negzero':0,'i':1000000000000000,'fl':0.1,'arr':[1,null,3],"
                     "'arr2':[null,null,null,'x'],'pair':'😀','lone':'a\xef\xbf\xbd"
                     "b',"
                     "'nul':null,'p':{},'bare':{'z':1}}");
    cl_js_free(js);
}

static void test_state_refusals(void **st)
{
    (void)st;
    static const struct {
        const char *script;
        cl_status_t st;
        const char *why;
    } cases[] = {
        {"state.f = function () {};", CL_ERR_BAD_INPUT, "state: a function cannot be converted"},
        {"state.f = Math.max;", CL_ERR_BAD_INPUT, "function"},
        {"state.a = {}; state.a.self = state.a;", CL_ERR_BAD_INPUT, "cycle"},
        {"state.a = []; state.a.push(state.a);", CL_ERR_BAD_INPUT, "cycle"},
        {"state.n = NaN;", CL_ERR_BAD_INPUT, "NaN"},
        {"state.n = [Infinity];", CL_ERR_BAD_INPUT, "Infinity"},
        {"state.s = Symbol('x');", CL_ERR_BAD_INPUT, "Symbol"},
        {"state.d = new Date(0);", CL_ERR_BAD_INPUT, "plain objects"},
        {"state.b = new Uint8Array(2);", CL_ERR_BAD_INPUT, "byte arrays"},
        {"state.s = 'x'.repeat(5000);", CL_ERR_LIMIT, "state larger than 4096 bytes"},
        {"for (var i = 0; i < 1000; i++) state['k' + i] = i;", CL_ERR_LIMIT, "state larger"},
        {"var o = state; for (var i = 0; i < 40; i++) { o.x = {}; o = o.x; }", CL_ERR_BAD_INPUT,
         "nested deeper"},
        {"state.a = []; state.a[1e9] = 1;", CL_ERR_LIMIT, "state larger"},
        {"Object.setPrototypeOf(state, {evil: function () {}});", CL_ERR_BAD_INPUT, "plain"},
        {"Object.defineProperty(state, 'g', {enumerable: true, get: function () { for (;;) {} }});",
         CL_ERR_LIMIT, "time budget"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cl_js_t *js = mk_hostile(cases[i].script, NULL);
        size_t len;
        const uint8_t *s = cbor("{'keep':1}", &len);
        assert_int_equal(cl_js_state_set(js, s, len), CL_OK);
        rec_t r = {0};
        char why[CL_JS_WHY_MAX];
        cl_status_t got = run_ev(js, NULL, &r, NULL, why, sizeof why);
        if (got != cases[i].st || strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu: status %d, reason \"%s\"; want %d \"%s\"", i, got, why, cases[i].st,
                     cases[i].why);
        assert_state(js, "{'keep':1}"); /* rolled back */
        cl_js_free(js);
    }
}

/* ------------------------------------------------------------------ */
/* emit                                                                */
/* ------------------------------------------------------------------ */

static void test_emit(void **st)
{
    (void)st;
    cl_js_t *js =
        mk(NULL, "emit('open', 3, {pos: event.properties.p, list: [1, 'a'], "
                 "deep: {x: true}});\n"
                 "emit('close', '@valves');\n"
                 "emit('raw', 4294967295, {b: new Uint8Array([1, 2]), skip: undefined});\n"
                 "emit('é', 1.0, {});");
    rec_t r = {0};
    bool changed;
    run_ok(js, "{'p':40}", &r, &changed);
    assert_false(changed);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.action[0], "open");
    assert_false(r.group[0]);
    assert_int_equal(r.id[0], 3);
    assert_props(&r, 0, "{'pos':40,'list':[1,'a'],'deep':{'x':true}}");
    assert_string_equal(r.action[1], "close");
    assert_true(r.group[1]);
    assert_string_equal(r.gname[1], "valves");
    assert_props(&r, 1, "{}");
    assert_int_equal(r.id[2], 4294967295u);
    static const uint8_t raw[] = {0xa1, 0x61, 'b', 0x42, 1, 2};
    assert_int_equal(r.props_len[2], sizeof raw);
    assert_memory_equal(r.props[2], raw, sizeof raw);
    assert_string_equal(r.action[3], "é");
    cl_js_free(js);
}

static void test_emit_refusals(void **st)
{
    (void)st;
    static const struct {
        const char *script;
        cl_status_t st;
        const char *why;
    } cases[] = {
        {"emit('', 1);", CL_ERR_BAD_INPUT, "action must be a text"},
        {"emit('x'.repeat(65), 1);", CL_ERR_BAD_INPUT, "action"},
        {"emit(5, 1);", CL_ERR_BAD_INPUT, "action"},
        {"emit();", CL_ERR_BAD_INPUT, "action"},
        {"emit('a', 0);", CL_ERR_BAD_INPUT, "client id"},
        {"emit('a', -1);", CL_ERR_BAD_INPUT, "client id"},
        {"emit('a', 1.5);", CL_ERR_BAD_INPUT, "client id"},
        {"emit('a', 4294967296);", CL_ERR_BAD_INPUT, "client id"},
        {"emit('a', NaN);", CL_ERR_BAD_INPUT, "client id"},
        {"emit('a', 'group');", CL_ERR_BAD_INPUT, "group"},
        {"emit('a', '@');", CL_ERR_BAD_INPUT, "group"},
        {"emit('a', '@' + 'g'.repeat(65));", CL_ERR_BAD_INPUT, "group"},
        {"emit('a', {id: 1});", CL_ERR_BAD_INPUT, "target"},
        {"emit('a');", CL_ERR_BAD_INPUT, "target"},
        {"emit('a', 1, [1]);", CL_ERR_BAD_INPUT, "properties must be an object"},
        {"emit('a', 1, null);", CL_ERR_BAD_INPUT, "properties"},
        {"emit('a', 1, 'x');", CL_ERR_BAD_INPUT, "properties"},
        {"emit('a', 1, function () {});", CL_ERR_BAD_INPUT, "properties"},
        {"emit('a', 1, {f: function () {}});", CL_ERR_BAD_INPUT, "function cannot be converted"},
        {"var o = {}; o.o = o; emit('a', 1, o);", CL_ERR_BAD_INPUT, "cycle"},
        {"emit('a', 1, {n: NaN});", CL_ERR_BAD_INPUT, "NaN"},
        {"emit('a', 1, {s: 'x'.repeat(9000)});", CL_ERR_LIMIT, "larger than 8192"},
        {"emit('a', 1, {d: new Date()});", CL_ERR_BAD_INPUT, "plain objects"},
        {"for (var i = 0; i < 17; i++) emit('a', 1);", CL_ERR_LIMIT, "too many emits (max 16)"},
        /* caught, it still fails the run */
        {"try { emit('', 1); } catch (e) {} state.x = 1;", CL_ERR_BAD_INPUT, "action"},
        {"for (var i = 0; i < 20; i++) try { emit('a', 1); } catch (e) {}", CL_ERR_LIMIT,
         "too many emits"},
        /* emit from a getter while emit converts its properties */
        {"emit('a', 1, {get g() { emit('b', 1); return 1; }});", CL_ERR_STATE, "converting"},
        /* emit kept for later: not callable outside its run */
        {"state.f = emit;", CL_ERR_BAD_INPUT, "function"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cl_js_t *js = mk_hostile(cases[i].script, NULL);
        rec_t r = {0};
        char why[CL_JS_WHY_MAX];
        cl_status_t got = run_ev(js, NULL, &r, NULL, why, sizeof why);
        if (got != cases[i].st || strstr(why, cases[i].why) == NULL)
            fail_msg("case %zu (%s): status %d, reason \"%s\"; want %d \"%s\"", i, cases[i].script,
                     got, why, cases[i].st, cases[i].why);
        assert_state(js, "{}");
        still_works(js);
        cl_js_free(js);
    }

    /* the callback's refusal ends the script with its status; state rolls back */
    cl_js_t *js = mk(NULL, "state.n = 1; emit('a', 1); state.m = 2;");
    rec_t r = {0};
    r.answer = CL_ERR_FULL;
    char why[CL_JS_WHY_MAX];
    assert_int_equal(run_ev(js, NULL, &r, NULL, why, sizeof why), CL_ERR_FULL);
    assert_non_null(strstr(why, "refused"));
    assert_int_equal(r.n, 1);
    assert_state(js, "{}");
    cl_js_free(js);

    /* max_emit from the limits */
    cl_js_limits_t lim = {0, 0, 3, 0};
    js = mk_lim(NULL, "for (var i = 0; i < event.properties.n; i++) emit('a', i + 1);", &lim);
    r = (rec_t){0};
    run_ok(js, "{'n':3}", &r, NULL);
    assert_int_equal(r.n, 3);
    r = (rec_t){0};
    assert_int_equal(run_ev(js, "{'n':4}", &r, NULL, why, sizeof why), CL_ERR_LIMIT);
    assert_int_equal(r.n, 3);
    cl_js_free(js);

    /* conditions have no emit */
    js = mk("emit('a', 1)", NULL);
    cond_fails(js, CL_ERR_BAD_INPUT, "ReferenceError");
    cl_js_free(js);
}

static void test_reentry(void **st)
{
    (void)st;
    cl_js_t *js = mk("true", "emit('a', 1);");
    cl_js_t *other = mk("true", NULL);
    rec_t r = {0};
    r.reenter = js; /* the callback calls the same sandbox */
    run_ok(js, NULL, &r, NULL);
    assert_int_equal(r.reenter_st, CL_ERR_STATE);
    r = (rec_t){0};
    r.reenter = other; /* another sandbox is fine */
    run_ok(js, NULL, &r, NULL);
    assert_int_equal(r.reenter_st, CL_OK);
    cl_js_free(other);
    cl_js_free(js);
}

/* ------------------------------------------------------------------ */
/* Time and randomness                                                 */
/* ------------------------------------------------------------------ */

static void test_time_random(void **st)
{
    (void)st;
    g_env.now_ms = 1700000000123;
    assert_true(cond1("now() === 1700000000123 && Date.now() === 1700000000123 && "
                      "new Date().getTime() === 1700000000123",
                      NULL));
    g_env.now_ms = 86400000 * 2 + 3600000;
    assert_true(cond1("new Date().toISOString() === '1970-01-03T01:00:00.000Z' && "
                      "new Date().getHours() === 1 && new Date().getTimezoneOffset() === 0",
                      NULL));
    assert_true(cond1("typeof performance.now() === 'number'", NULL));
    g_env.now_ms = 1700000000123;
    cl_js_limits_t slow = {0, 2000, 0, 0}; /* sanitizer builds are slow */
    cl_js_t *js =
        mk_lim(NULL,
               "var a = [];\n"
               "for (var i = 0; i < 200; i++) a.push(i % 2 ? random() : Math.random());\n"
               "var ok = a.every(function (x) { return x >= 0 && x < 1; });\n"
               "var distinct = a.filter(function (x, i) { return a.indexOf(x) === i; });\n"
               "state.ok = ok; state.distinct = distinct.length;\n"
               "state.mean = Math.round(a.reduce(function (s, x) { return s + x; }, 0) / 20);",
               &slow);
    rec_t r = {0};
    run_ok(js, NULL, &r, NULL);
    assert_state(js, "{'ok':true,'distinct':200,'mean':5}");
    cl_js_free(js);
    /* the seed comes from env.rand: two sandboxes seeded alike agree, others differ */
    cl_js_t *a = mk(NULL, "state.r = random();");
    cl_js_t *b = mk(NULL, "state.r = random();");
    g_env.seed = 2;
    cl_js_t *c = mk(NULL, "state.r = random();");
    g_env.seed = 1;
    run_ok(a, NULL, &r, NULL);
    run_ok(b, NULL, &r, NULL);
    run_ok(c, NULL, &r, NULL);
    uint8_t sa[32], sb[32], sc[32];
    size_t la, lb, lc;
    assert_int_equal(cl_js_state_get(a, sa, sizeof sa, &la), CL_OK);
    assert_int_equal(cl_js_state_get(b, sb, sizeof sb, &lb), CL_OK);
    assert_int_equal(cl_js_state_get(c, sc, sizeof sc, &lc), CL_OK);
    assert_int_equal(la, lb);
    assert_memory_equal(sa, sb, la);
    assert_true(la != lc || memcmp(sa, sc, la) != 0);
    cl_js_free(a);
    cl_js_free(b);
    cl_js_free(c);
}

/* ------------------------------------------------------------------ */
/* Hostile code                                                        */
/* ------------------------------------------------------------------ */

static void test_endless_loops(void **st)
{
    (void)st;
    static const char *const loops[] = {
        "while (true) {}",
        "for (;;) { state.x = (state.x || 0) + 1; }",
        "for (;;) { try { for (;;) {} } catch (e) {} }",
        "for (;;) { try { for (;;) {} } finally { for (;;) {} } }",
        "var s = ''; for (;;) { s = 'abc' + Math.random(); }",
        "for (;;) { try { /(a+)+$/.test('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!'); } catch (e) {} }",
        "for (;;) { JSON.parse(JSON.stringify({a: [1, 2, 3], b: 'x'})); }",
        "var a = [5, 3, 1]; for (;;) a.sort(function (x, y) { return x - y; });",
        "function f() { f(); } for (;;) { try { f(); } catch (e) {} }",
    };
    cl_js_limits_t lim = {0, 10, 0, 0};
    uint64_t worst = 0;
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        cl_js_t *js = mk_hostile(loops[i], &lim);
        uint64_t t0 = mono_us();
        run_fails(js, NULL, CL_ERR_LIMIT, "time budget of 10 ms exceeded");
        uint64_t dt = mono_us() - t0;
        if (dt >= 5 * 10000u)
            fail_msg("loop %zu (%s) ran %llu us for a 10 ms budget", i, loops[i],
                     (unsigned long long)dt);
        worst = dt > worst ? dt : worst;
        assert_state(js, "{}");
        still_works(js);
        cl_js_free(js);
    }
    print_message("endless loops: the slowest stopped after %llu us of a 10 ms budget\n",
                  (unsigned long long)worst);
    /* the same in a condition */
    cl_js_t *js = mk_lim("(function () { for (;;) {} })()", NULL, &lim);
    uint64_t t0 = mono_us();
    cond_fails(js, CL_ERR_LIMIT, "time budget");
    assert_true(mono_us() - t0 < 5 * 10000u);
    cl_js_free(js);
    /* a condition that tries to leave its wrapper is refused before it runs */
    char why[CL_JS_WHY_MAX];
    assert_int_equal(mk_fail("1); while(true){} (1", NULL, why, sizeof why), CL_ERR_BAD_INPUT);
}

static void test_budget_without_clock(void **st)
{
    (void)st;
    cl_js_env_t env = env_noclock();
    cl_js_limits_t lim = {0, 10, 0, 0};
    cl_js_t *js = NULL;
    char why[CL_JS_WHY_MAX];
    const char *script = GOOD "var n = 0; for (;;) { n++; }";
    assert_int_equal(
        cl_js_create(&js, &env, &lim, NULL, 0, script, strlen(script), why, sizeof why), CL_OK);
    uint64_t t0 = mono_us();
    run_fails(js, NULL, CL_ERR_LIMIT, "time budget of 10 ms exceeded");
    uint64_t dt = mono_us() - t0;
    print_message("instruction budget (no clock): 10 ms of budget took %llu us\n",
                  (unsigned long long)dt);
    assert_true(dt < 2000000u); /* bounded: 1M instructions, sanitizers included */
    still_works(js);
    cl_js_free(js);
    /* a clock that stands still (a lying host): the instruction backstop ends it */
    g_env.frozen_clock = true;
    js = mk_lim(NULL, script, &lim);
    run_fails(js, NULL, CL_ERR_LIMIT, "time budget");
    g_env.frozen_clock = false;
    cl_js_free(js);
}

static void test_memory_bombs(void **st)
{
    (void)st;
    static const char *const bombs[] = {
        "var s = 'x'; for (;;) s += s;",
        "var a = []; for (;;) a.push({n: a.length, s: 'abc' + a.length});",
        "var a = []; for (;;) a.push(new Array(10000).join('x'));",
        "var a = []; for (;;) a.push(new Uint8Array(65536));",
        "state.s = 'x'.repeat(1 << 28);",
        "var o = {}; for (var i = 0; ; i++) o['k' + i] = i;",
        "var a = new Array(1e6).join('ab');",
        "var a = []; for (;;) { try { for (;;) a.push([1, 2, 3]); } catch (e) {} }",
    };
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        cl_js_t *js = mk_hostile(bombs[i], NULL);
        size_t before = cl_js_heap_used(js);
        rec_t r = {0};
        char why[CL_JS_WHY_MAX];
        cl_status_t got = run_ev(js, NULL, &r, NULL, why, sizeof why);
        if (got != CL_ERR_LIMIT || (strstr(why, "heap limit of 262144 bytes") == NULL &&
                                    strstr(why, "time budget") == NULL))
            fail_msg("bomb %zu (%s): status %d, reason \"%s\"", i, bombs[i], got, why);
        assert_true(cl_js_heap_used(js) <= CL_JS_DEFAULT_HEAP);
        still_works(js);
        /* the garbage is gone again (a grown string table or value stack may stay) */
        if (cl_js_heap_used(js) > before + 80000)
            fail_msg("bomb %zu: %zu bytes before, %zu after", i, before, cl_js_heap_used(js));
        cl_js_free(js);
    }
}

static void test_recursion_and_throw(void **st)
{
    (void)st;
    cl_js_t *js = mk_hostile("function f(n) { return f(n + 1) + 1; } f(0);", NULL);
    run_fails(js, NULL, CL_ERR_LIMIT, "call stack too deep");
    still_works(js);
    cl_js_free(js);
    js = mk_hostile("function f() { return [1].map(f); } f();", NULL);
    run_fails(js, NULL, CL_ERR_LIMIT, "call stack too deep");
    still_works(js);
    cl_js_free(js);
    /* (a plain assignment o.toString = ... throws: Object.prototype is frozen) */
    js = mk(NULL, "var o = {}; Object.defineProperty(o, 'toString', {value: function () {\n"
                  "  return String(this); }}); String(o);");
    run_fails(js, NULL, CL_ERR_LIMIT, "call stack too deep");
    cl_js_free(js);
    js = mk(NULL, "JSON.parse(new Array(500).join('[') + new Array(500).join(']'));");
    run_fails(js, NULL, CL_ERR_LIMIT, "call stack too deep");
    cl_js_free(js);
    js = mk_hostile("/(a+)+$/.test('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!');", NULL);
    run_fails(js, NULL, CL_ERR_LIMIT, "regular expression too complex");
    still_works(js);
    cl_js_free(js);
    /* deeply nested source */
    char src[1200];
    memset(src, '(', 500);
    src[500] = '1';
    memset(src + 501, ')', 500);
    src[1001] = '\0';
    char why[CL_JS_WHY_MAX];
    assert_int_equal(mk_fail(src, NULL, why, sizeof why), CL_ERR_LIMIT);
    assert_non_null(strstr(why, "call stack too deep"));

    /* exceptions: the message comes back */
    js = mk_hostile("throw new Error('boom ' + event.properties.n);", NULL);
    run_fails(js, "{'n':3}", CL_ERR_BAD_INPUT, "Error: boom 3");
    still_works(js);
    cl_js_free(js);
    js = mk(NULL, "throw 'plain string';");
    run_fails(js, NULL, CL_ERR_BAD_INPUT, "plain string");
    cl_js_free(js);
    js = mk(NULL, "null.x;");
    run_fails(js, NULL, CL_ERR_BAD_INPUT, "TypeError");
    cl_js_free(js);
    js = mk_hostile("throw {toString: function () { for (;;) {} }};", &fast);
    run_fails(js, NULL, CL_ERR_LIMIT, "time budget");
    still_works(js);
    cl_js_free(js);
    js = mk("event.properties.a.b > 1", NULL);
    cond_fails(js, CL_ERR_BAD_INPUT, "TypeError");
    assert_true(cond_on(js, "{'a':{'b':2}}"));
    cl_js_free(js);

    /* why: always NUL-terminated, cut at a character boundary */
    js = mk(NULL, "throw new Error('\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9');");
    rec_t r = {0};
    char small[12];
    memset(small, 'z', sizeof small);
    assert_int_equal(run_ev(js, NULL, &r, NULL, small, sizeof small), CL_ERR_BAD_INPUT);
    assert_string_equal(small, "Error: \xc3\xa9\xc3\xa9"); /* 11 bytes would split a character */
    char one[1] = {'z'};
    assert_int_equal(run_ev(js, NULL, &r, NULL, one, sizeof one), CL_ERR_BAD_INPUT);
    assert_int_equal(one[0], '\0');
    cl_js_free(js);
}

static void test_prototype_tampering(void **st)
{
    (void)st;
    static const char *const attacks[] = {
        "Object.prototype.x = 1;",
        "Array.prototype.push = null;",
        "Object.defineProperty(Object.prototype, 'y', {get: function () { for (;;) {} }});",
        "JSON.stringify = function () { return 'pwned'; };",
        "Math.random = function () { return 4; };",
        "Object.freeze = function (o) { return o; };",
        "globalThis.leak = 1;",
        "leak = 1;",
        "now = function () { return 0; };",
        "emit.x = 1;",
        "Object.setPrototypeOf(Object.prototype, {});",
        "delete Array.prototype.map;",
        "String.prototype.toString = function () { return 'x'; };",
    };
    for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++) {
        cl_js_t *js = mk("({}).x === undefined && typeof [].push === 'function' && "
                         "JSON.stringify([1]) === '[1]' && typeof globalThis.leak === 'undefined'",
                         attacks[i]);
        rec_t r = {0};
        char why[CL_JS_WHY_MAX];
        cl_status_t got = run_ev(js, NULL, &r, NULL, why, sizeof why);
        if (got != CL_ERR_BAD_INPUT ||
            (strstr(why, "TypeError") == NULL && strstr(why, "ReferenceError") == NULL))
            fail_msg("attack %zu (%s): status %d, reason \"%s\"", i, attacks[i], got, why);
        /* nothing changed, here or in a second sandbox; conversions still work */
        assert_true(cond_on(js, "{'a':[1,2]}"));
        cl_js_t *other = mk("({}).x === undefined && typeof [].push === 'function'", NULL);
        assert_true(cond_on(other, NULL));
        cl_js_free(other);
        size_t len;
        const uint8_t *s = cbor("{'a':[1,{'b':'c'}]}", &len);
        assert_int_equal(cl_js_state_set(js, s, len), CL_OK);
        assert_state(js, "{'a':[1,{'b':'c'}]}");
        cl_js_free(js);
    }
    /* the built-ins are frozen; state itself is not */
    assert_true(
        cond1("Object.isFrozen(Object.prototype) && Object.isFrozen(Array.prototype) && "
              "Object.isFrozen(globalThis) && Object.isFrozen(Math) && "
              "Object.isFrozen(Object.getPrototypeOf(function () {})) && Object.isFrozen(now)",
              NULL));
    cl_js_t *js = mk(NULL, "state.a = [1]; state.a.push(2); state.o = {x: 1}; state.o.x++;");
    rec_t r = {0};
    run_ok(js, NULL, &r, NULL);
    assert_state(js, "{'a':[1,2],'o':{'x':2}}");
    cl_js_free(js);
}

static void test_globals(void **st)
{
    (void)st;
    assert_true(cond1("typeof print === 'undefined' && typeof alert === 'undefined' && "
                      "typeof require === 'undefined' && typeof Duktape === 'undefined' && "
                      "typeof eval === 'undefined' && typeof Function === 'undefined' && "
                      "typeof module === 'undefined' && typeof exports === 'undefined'",
                      NULL));
    /* the Function constructor is not reachable through a function either */
    assert_true(cond1("(function () {}).constructor === Object && "
                      "Object.getPrototypeOf(function () {}).constructor === Object",
                      NULL));
    /* what is there */
    assert_true(cond1("typeof JSON.parse === 'function' && typeof Math.max === 'function' && "
                      "typeof Proxy === 'function' && typeof Reflect === 'object' && "
                      "typeof CBOR === 'object' && typeof TextEncoder === 'function' && "
                      "typeof now === 'function' && typeof random === 'function'",
                      NULL));
    /* strict mode */
    assert_true(cond1("(function () { return this; })() === undefined", NULL));
    /* no code addresses in the names of built-in functions */
    assert_true(
        cond1("!/[0-9a-f]{8}/.test(String(Math.max) + Math.max.name + String(JSON.parse))", NULL));
}

static void test_escapes_and_syntax(void **st)
{
    (void)st;
    static const char *const bad_conds[] = {
        "1); while(true){} (1",
        "1]; while(true){} [1",
        "1)}; function x() { (1",
        "1)} + function () { (1",
        "true); state.x = 1; (true",
        "1 +* 2",
        "event.properties.t >",
        "var x = 1",
        "{ a: 1 } }",
        "1 /* unterminated",
        "'unterminated",
        "",
        "return 1",
        "1;",
        "1, , 2",
        "(",
        ")",
    };
    for (size_t i = 0; i < sizeof bad_conds / sizeof bad_conds[0]; i++) {
        char why[CL_JS_WHY_MAX] = "";
        cl_js_env_t env = env_clock();
        cl_js_t *js = NULL;
        cl_status_t got = cl_js_create(&js, &env, &defaults, bad_conds[i], strlen(bad_conds[i]),
                                       NULL, 0, why, sizeof why);
        if (got != CL_ERR_BAD_INPUT || js != NULL || why[0] == '\0')
            fail_msg("condition %zu (%s) accepted or wrong error: %d \"%s\"", i, bad_conds[i], got,
                     why);
    }
    static const char *const bad_scripts[] = {
        "} x(); function y() {",
        "}",
        "state.x = 1; } + function () {",
        "if (x { }",
        "var = 1;",
        "state.x = 1; }; {",
        "{",
        "with (state) { x = 1; }",
        "var public = 1; delete state;",
    };
    for (size_t i = 0; i < sizeof bad_scripts / sizeof bad_scripts[0]; i++) {
        char why[CL_JS_WHY_MAX] = "";
        cl_status_t got = mk_fail(NULL, bad_scripts[i], why, sizeof why);
        if (got != CL_ERR_BAD_INPUT || strstr(why, "SyntaxError") == NULL)
            fail_msg("script %zu (%s): %d \"%s\"", i, bad_scripts[i], got, why);
    }
    /* the reason names the error, with the line in the rule's own source */
    char why[CL_JS_WHY_MAX] = "";
    mk_fail("1 +* 2", NULL, why, sizeof why);
    assert_non_null(strstr(why, "SyntaxError"));
    assert_non_null(strstr(why, "line 1"));
    mk_fail(NULL, "state.x = 1;\nvar y = 2;\nif (x {", why, sizeof why);
    if (strstr(why, "line 3") == NULL)
        fail_msg("reason without the line: %s", why);
    /* too long, not UTF-8, empty */
    char *long_src = malloc(CL_JS_MAX_SOURCE + 2);
    memset(long_src, ' ', CL_JS_MAX_SOURCE + 1);
    long_src[0] = '1';
    long_src[CL_JS_MAX_SOURCE + 1] = '\0';
    assert_int_equal(mk_fail(long_src, NULL, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_non_null(strstr(why, "longer than 8192"));
    long_src[CL_JS_MAX_SOURCE] = '\0';
    cl_js_t *js = mk(long_src, NULL); /* exactly the maximum is fine */
    cl_js_free(js);
    free(long_src);
    assert_int_equal(mk_fail("'\xff'", NULL, why, sizeof why), CL_ERR_BAD_INPUT);
    /* good scripts with braces, strings and comments that look like closers */
    js =
        mk("'})' !== '}]' /* }) */", "var s = '}'; /* } */ // }\n"
                                     "if (true) { state.s = s + \"}\"; }\n"
                                     "function g() { return { a: { b: 1 } }; } state.g = g().a.b;");
    rec_t r = {0};
    run_ok(js, NULL, &r, NULL);
    assert_state(js, "{'s':'}}','g':1}");
    assert_true(cond_on(js, NULL));
    cl_js_free(js);
    /* the script may use return */
    js = mk(NULL, "if (event.properties.stop) return; state.ran = true;");
    run_ok(js, "{'stop':true}", &r, NULL);
    assert_state(js, "{}");
    run_ok(js, "{'stop':false}", &r, NULL);
    assert_state(js, "{'ran':true}");
    cl_js_free(js);
    /* invalid arguments */
    cl_js_env_t env = env_clock();
    assert_int_equal(cl_js_create(&js, &env, &defaults, NULL, 0, NULL, 0, why, sizeof why),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_js_create(&js, NULL, &defaults, "1", 1, NULL, 0, why, sizeof why),
                     CL_ERR_INVALID_ARG);
}

static void test_limits_and_memory(void **st)
{
    (void)st;
    /* a cap below what Duktape needs to start */
    cl_js_env_t env = env_clock();
    cl_js_limits_t tiny = {16384, 0, 0, 0};
    cl_js_t *js = NULL;
    char why[CL_JS_WHY_MAX];
    assert_int_equal(cl_js_create(&js, &env, &tiny, "true", 4, NULL, 0, why, sizeof why),
                     CL_ERR_LIMIT);
    assert_non_null(strstr(why, "heap limit of 16384 bytes"));
    assert_null(js);
    /* memory of a fresh sandbox */
    js = mk("event.properties.temp > 21 && event.source != 3", NULL);
    size_t used = cl_js_heap_used(js);
    print_message("heap of a fresh sandbox (condition only): %zu bytes\n", used);
    assert_true(used > 16384 && used < CL_JS_DEFAULT_HEAP / 2);
    for (int i = 0; i < 1000; i++)
        assert_true(cond_on(js, "{'temp':22,'hum':40,'co2':800}"));
    assert_true(cl_js_heap_used(js) < used + 8192); /* no growth per call */
    cl_js_free(js);
    /* isolation: a bomb in one sandbox, the other unaffected */
    cl_js_t *bomb = mk(NULL, "var s = 'x'; for (;;) s += s;");
    cl_js_t *calm = mk("event.properties.v === 1", "state.n = (state.n || 0) + 1;");
    run_fails(bomb, NULL, CL_ERR_LIMIT, "heap limit");
    assert_true(cond_on(calm, "{'v':1}"));
    rec_t r = {0};
    run_ok(calm, NULL, &r, NULL);
    assert_state(calm, "{'n':1}");
    cl_js_free(bomb);
    cl_js_free(calm);
}

static void test_fatal_recovery(void **st)
{
    (void)st;
    cl_js_t *js = mk("state.n > 1", "state.n = (state.n || 0) + 1;");
    rec_t r = {0};
    run_ok(js, NULL, &r, NULL);
    run_ok(js, NULL, &r, NULL);
    assert_state(js, "{'n':2}");
    char why[CL_JS_WHY_MAX];
    assert_int_equal(cl_js_inject_fatal(js, why, sizeof why), CL_ERR_STATE);
    assert_non_null(strstr(why, "engine failure"));
    assert_int_equal(cl_js_heap_used(js), 0); /* the heap was abandoned and freed */
    /* the next call runs in a fresh heap, state as committed */
    assert_true(cond_on(js, NULL));
    assert_true(cl_js_heap_used(js) > 0);
    run_ok(js, NULL, &r, NULL);
    assert_state(js, "{'n':3}");
    /* again, with state set while dead */
    assert_int_equal(cl_js_inject_fatal(js, why, sizeof why), CL_ERR_STATE);
    size_t len;
    const uint8_t *s = cbor("{'n':10}", &len);
    assert_int_equal(cl_js_state_set(js, s, len), CL_OK);
    run_ok(js, NULL, &r, NULL);
    assert_state(js, "{'n':11}");
    /* and freeing a dead sandbox */
    assert_int_equal(cl_js_inject_fatal(js, why, sizeof why), CL_ERR_STATE);
    cl_js_free(js);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cond_values),
        cmocka_unit_test(test_cond_event_frozen),
        cmocka_unit_test(test_event_updates),
        cmocka_unit_test(test_cond_reads_state),
        cmocka_unit_test(test_script_state),
        cmocka_unit_test(test_state_roundtrip),
        cmocka_unit_test(test_state_conversions),
        cmocka_unit_test(test_state_refusals),
        cmocka_unit_test(test_emit),
        cmocka_unit_test(test_emit_refusals),
        cmocka_unit_test(test_reentry),
        cmocka_unit_test(test_time_random),
        cmocka_unit_test(test_endless_loops),
        cmocka_unit_test(test_budget_without_clock),
        cmocka_unit_test(test_memory_bombs),
        cmocka_unit_test(test_recursion_and_throw),
        cmocka_unit_test(test_prototype_tampering),
        cmocka_unit_test(test_globals),
        cmocka_unit_test(test_escapes_and_syntax),
        cmocka_unit_test(test_limits_and_memory),
        cmocka_unit_test(test_fatal_recovery),
    };
    /* JS_TEST_FILTER=test_emit* runs a subset while debugging */
    if (getenv("JS_TEST_FILTER") != NULL)
        cmocka_set_test_filter(getenv("JS_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
