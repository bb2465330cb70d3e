/*
 * test_eca.c - the ECA engine (core/engine/eca.h): every operator, source
 * filters, triggers, templates, groups, derived events and the chain limit,
 * refusals by the host, time triggers under a controlled clock, rule
 * management, effects, dry runs, ordering, JS conditions and scripts, and a
 * table of malformed rule documents with the reason each must give.
 *
 * Rules and properties are written as JSON in the test (single quotes allowed
 * so the C strings stay readable) and converted by a small converter below
 * that keeps the int/float distinction (21 is an int, 21.0 a float), like
 * lib/json.c does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cloister/cbor.h"
#include "eca.h"

/* ------------------------------------------------------------------ */
/* JSON (with '...' strings) -> CBOR                                   */
/* ------------------------------------------------------------------ */

typedef struct jp {
    const char *s;
    int depth;
} jp_t;

static void jws(jp_t *p)
{
    while (*p->s == ' ' || *p->s == '\n' || *p->s == '\t' || *p->s == '\r')
        p->s++;
}

static int jval(jp_t *p, cl_cbor_enc_t *e);

static int jstr(jp_t *p, cl_cbor_enc_t *e)
{
    char q = *p->s++;
    char buf[20000];
    size_t n = 0;
    while (*p->s != q) {
        if (*p->s == '\0' || n + 4 >= sizeof buf)
            return -1;
        if (*p->s == '\\') {
            p->s++;
            char c = *p->s++;
            switch (c) {
            case 'n': buf[n++] = '\n'; break;
            case 't': buf[n++] = '\t'; break;
            case 'u': {
                unsigned v = 0;
                for (int i = 0; i < 4; i++) {
                    char h = *p->s++;
                    v = v * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
                }
                if (v < 0x80) {
                    buf[n++] = (char)v;
                } else if (v < 0x800) {
                    buf[n++] = (char)(0xc0 | (v >> 6));
                    buf[n++] = (char)(0x80 | (v & 0x3f));
                } else {
                    buf[n++] = (char)(0xe0 | (v >> 12));
                    buf[n++] = (char)(0x80 | ((v >> 6) & 0x3f));
                    buf[n++] = (char)(0x80 | (v & 0x3f));
                }
                break;
            }
            default: buf[n++] = c; break;
            }
        } else {
            buf[n++] = *p->s++;
        }
    }
    p->s++;
    cl_cbor_enc_tstr(e, buf, n);
    return 0;
}

/* A container: children into a temporary buffer, then head + children. */
static int jcont(jp_t *p, cl_cbor_enc_t *e, char close)
{
    uint8_t *tmp = malloc(65536);
    cl_cbor_enc_t t;
    size_t count = 0, len;
    assert_non_null(tmp);
    cl_cbor_enc_init(&t, tmp, 65536);
    p->s++;
    jws(p);
    if (*p->s == close) {
        p->s++;
    } else {
        for (;;) {
            jws(p);
            if (close == '}') {
                if ((*p->s != '"' && *p->s != '\'') || jstr(p, &t) != 0)
                    goto fail;
                jws(p);
                if (*p->s++ != ':')
                    goto fail;
            }
            if (jval(p, &t) != 0)
                goto fail;
            count++;
            jws(p);
            if (*p->s == ',') {
                p->s++;
                continue;
            }
            if (*p->s++ != close)
                goto fail;
            break;
        }
    }
    if (cl_cbor_enc_finish(&t, &len) != CL_OK)
        goto fail;
    if (close == '}')
        cl_cbor_enc_map(e, count);
    else
        cl_cbor_enc_array(e, count);
    cl_cbor_enc_raw(e, tmp, len);
    free(tmp);
    return 0;
fail:
    free(tmp);
    return -1;
}

static int jval(jp_t *p, cl_cbor_enc_t *e)
{
    jws(p);
    char c = *p->s;
    if (c == '{')
        return jcont(p, e, '}');
    if (c == '[')
        return jcont(p, e, ']');
    if (c == '"' || c == '\'')
        return jstr(p, e);
    if (strncmp(p->s, "true", 4) == 0) {
        p->s += 4;
        cl_cbor_enc_bool(e, true);
        return 0;
    }
    if (strncmp(p->s, "false", 5) == 0) {
        p->s += 5;
        cl_cbor_enc_bool(e, false);
        return 0;
    }
    if (strncmp(p->s, "null", 4) == 0) {
        p->s += 4;
        cl_cbor_enc_null(e);
        return 0;
    }
    const char *start = p->s;
    bool flt = false;
    while (strchr("+-0123456789.eE", *p->s) != NULL && *p->s != '\0') {
        if (*p->s == '.' || *p->s == 'e' || *p->s == 'E')
            flt = true;
        p->s++;
    }
    if (p->s == start)
        return -1;
    char num[64];
    size_t n = (size_t)(p->s - start);
    if (n >= sizeof num)
        return -1;
    memcpy(num, start, n);
    num[n] = '\0';
    if (flt)
        cl_cbor_enc_double(e, strtod(num, NULL));
    else if (num[0] == '-')
        cl_cbor_enc_int(e, strtoll(num, NULL, 10));
    else
        cl_cbor_enc_uint(e, strtoull(num, NULL, 10));
    return 0;
}

/* Converts JSON into a heap buffer (freed by the caller). */
static uint8_t *j2c(const char *json, size_t *len)
{
    uint8_t *out = malloc(65536);
    cl_cbor_enc_t e;
    jp_t p = {json, 0};
    assert_non_null(out);
    cl_cbor_enc_init(&e, out, 65536);
    if (jval(&p, &e) != 0)
        fail_msg("bad test JSON near: %.40s", p.s);
    jws(&p);
    if (*p.s != '\0')
        fail_msg("trailing test JSON: %.40s", p.s);
    assert_int_equal(cl_cbor_enc_finish(&e, len), CL_OK);
    return out;
}

/* ------------------------------------------------------------------ */
/* The host                                                            */
/* ------------------------------------------------------------------ */

#define MAX_LOG 2048

typedef struct logged {
    char rule[CL_ECA_NAME_MAX + 1];
    char type[80];
    uint32_t target;
    uint8_t props[512];
    size_t props_len;
    int64_t time_ms;
} logged_t;

typedef struct effect {
    char name[CL_ECA_NAME_MAX + 1];
    char reason[CL_ECA_WHY_MAX];
    uint8_t state[1024];
    size_t state_len;
} effect_t;

typedef struct host {
    logged_t acts[MAX_LOG];
    size_t n_acts;
    logged_t derived[MAX_LOG];
    size_t n_derived;
    size_t action_calls;
    effect_t states[64], fails[64];
    size_t n_states, n_fails;
    int64_t now;
} host_t;

static host_t *H;

/* Groups: "kitchen" = {3, 4}, "valves" = {5, 6, 7}, "big" = 1..300. */
static size_t g_members(void *arg, const char *g, size_t len, uint32_t *out, size_t max)
{
    (void)arg;
    size_t n = 0;
    if (len == 7 && memcmp(g, "kitchen", 7) == 0) {
        static const uint32_t m[] = {3, 4};
        for (size_t i = 0; i < 2 && n < max; i++)
            out[n++] = m[i];
    } else if (len == 6 && memcmp(g, "valves", 6) == 0) {
        for (uint32_t i = 5; i <= 7 && n < max; i++)
            out[n++] = i;
    } else if (len == 3 && memcmp(g, "big", 3) == 0) {
        for (uint32_t i = 1; i <= 300 && n < max; i++)
            out[n++] = i;
    }
    return n;
}

static bool g_in(void *arg, uint32_t client, const char *g, size_t len)
{
    uint32_t m[400];
    size_t n = g_members(arg, g, len, m, 400);
    for (size_t i = 0; i < n; i++)
        if (m[i] == client)
            return true;
    return false;
}

static void log_action(logged_t *l, const cl_eca_action_t *a)
{
    snprintf(l->rule, sizeof l->rule, "%s", a->rule);
    snprintf(l->type, sizeof l->type, "%.*s", (int)a->type_len, a->type);
    l->target = a->target;
    assert_true(a->props_len <= sizeof l->props);
    memcpy(l->props, a->props, a->props_len);
    l->props_len = a->props_len;
    l->time_ms = a->time_ms;
}

static cl_status_t h_action(void *arg, const cl_eca_action_t *a, char *why, size_t why_size)
{
    host_t *h = arg;
    h->action_calls++;
    if (a->type_len == 7 && memcmp(a->type, "refused", 7) == 0) {
        snprintf(why, why_size, "no such action type");
        return CL_ERR_NOT_FOUND;
    }
    if (a->target == 666) {
        snprintf(why, why_size, "unknown client");
        return CL_ERR_NOT_FOUND;
    }
    assert_true(h->n_acts < MAX_LOG);
    log_action(&h->acts[h->n_acts++], a);
    return CL_OK;
}

static void h_derived(void *arg, const cl_eca_event_t *d)
{
    host_t *h = arg;
    assert_true(h->n_derived < MAX_LOG);
    logged_t *l = &h->derived[h->n_derived++];
    snprintf(l->type, sizeof l->type, "%.*s", (int)d->type_len, d->type);
    l->target = d->source;
    assert_true(d->props_len <= sizeof l->props);
    memcpy(l->props, d->props, d->props_len);
    l->props_len = d->props_len;
    l->time_ms = d->time_ms;
}

static int64_t h_now(void *arg)
{
    return ((host_t *)arg)->now;
}

static cl_status_t h_rand(void *arg, uint8_t *out, size_t len)
{
    (void)arg;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(i * 31 + 7);
    return CL_OK;
}

static cl_eca_host_t host_ops(host_t *h)
{
    cl_eca_host_t ops;
    memset(&ops, 0, sizeof ops);
    ops.arg = h;
    ops.group_members = g_members;
    ops.in_group = g_in;
    ops.action = h_action;
    ops.derived = h_derived;
    ops.js_env.arg = h;
    ops.js_env.now_ms = h_now;
    ops.js_env.clock_us = NULL;
    ops.js_env.rand = h_rand;
    ops.js_limits.heap_bytes = 0;
    ops.js_limits.budget_ms = 50;
    return ops;
}

static cl_eca_t *new_engine(void)
{
    cl_eca_t *e = NULL;
    cl_eca_host_t ops = host_ops(H);
    assert_int_equal(cl_eca_create(&e, &ops), CL_OK);
    return e;
}

static int setup(void **st)
{
    H = calloc(1, sizeof *H);
    *st = H;
    return H == NULL;
}

static int teardown(void **st)
{
    free(*st);
    H = NULL;
    return 0;
}

static void reset_log(void)
{
    H->n_acts = 0;
    H->n_derived = 0;
    H->action_calls = 0;
}

/* Installs a rule (asserting success). */
static void put(cl_eca_t *e, const char *json)
{
    size_t len;
    uint8_t *doc = j2c(json, &len);
    char why[CL_ECA_WHY_MAX] = "";
    cl_status_t st = cl_eca_put_rule(e, doc, len, true, 0, why, sizeof why);
    if (st != CL_OK)
        fail_msg("put_rule refused %s: %s", json, why);
    free(doc);
}

static void put_at(cl_eca_t *e, const char *json, int64_t start)
{
    size_t len;
    uint8_t *doc = j2c(json, &len);
    char why[CL_ECA_WHY_MAX] = "";
    cl_status_t st = cl_eca_put_rule(e, doc, len, true, start, why, sizeof why);
    if (st != CL_OK)
        fail_msg("put_rule refused %s: %s", json, why);
    free(doc);
}

/* Sends one event. */
static void ev_at(cl_eca_t *e, const char *type, uint32_t source, int64_t t, const char *props)
{
    size_t len;
    uint8_t *p = j2c(props, &len);
    cl_eca_event_t ev = {type, strlen(type), source, t, p, len};
    assert_int_equal(cl_eca_event(e, &ev), CL_OK);
    free(p);
}

static void ev(cl_eca_t *e, const char *type, uint32_t source, const char *props)
{
    ev_at(e, type, source, 1000, props);
}

/* Number of actions since the last reset. */
static size_t fired(void)
{
    size_t n = H->n_acts;
    reset_log();
    return n;
}

/* Asserts that logged action i has these CBOR properties (given as JSON). */
static void assert_props(const logged_t *l, const char *json)
{
    size_t len;
    uint8_t *want = j2c(json, &len);
    if (len != l->props_len || memcmp(want, l->props, len) != 0) {
        char got[1200] = "", exp[1200] = "";
        for (size_t i = 0; i < l->props_len && i < 500; i++)
            snprintf(got + 2 * i, 3, "%02x", l->props[i]);
        for (size_t i = 0; i < len && i < 500; i++)
            snprintf(exp + 2 * i, 3, "%02x", want[i]);
        free(want);
        fail_msg("properties differ: got %s, want %s (%s)", got, exp, json);
    }
    free(want);
}

static bool rule_failed(cl_eca_t *e, const char *name, char *reason, size_t size)
{
    cl_eca_rule_info_t info;
    assert_int_equal(cl_eca_rule_info(e, name, strlen(name), &info), CL_OK);
    if (reason != NULL)
        snprintf(reason, size, "%s", info.reason);
    return info.failed;
}

static void on_state(void *arg, const char *name, const uint8_t *cbor, size_t len)
{
    host_t *h = arg;
    assert_true(h->n_states < 64 && len <= sizeof h->states[0].state);
    effect_t *f = &h->states[h->n_states++];
    snprintf(f->name, sizeof f->name, "%s", name);
    memcpy(f->state, cbor, len);
    f->state_len = len;
}

static void on_failed(void *arg, const char *name, const char *reason)
{
    host_t *h = arg;
    assert_true(h->n_fails < 64);
    effect_t *f = &h->fails[h->n_fails++];
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->reason, sizeof f->reason, "%s", reason);
}

static void take(cl_eca_t *e)
{
    H->n_states = H->n_fails = 0;
    assert_int_equal(cl_eca_take_effects(e, on_state, on_failed, H), CL_OK);
}

/* A rule on "m" with one condition, action "a" to client 1. */
static void put_cond(cl_eca_t *e, const char *name, const char *cond)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{'name':'%s','on':['m'],'when':{'all':[%s]},'then':[{'action':'a','target':1}]}",
             name, cond);
    put(e, json);
}

/* ------------------------------------------------------------------ */
/* Operators                                                           */
/* ------------------------------------------------------------------ */

typedef struct opcase {
    const char *cond;
    const char *props;
    bool fires;
} opcase_t;

static void test_operators(void **st)
{
    (void)st;
    static const opcase_t cases[] = {
        /* numbers, int and float mixed */
        {"{'prop':'t','op':'eq','value':21}", "{'t':21}", true},
        {"{'prop':'t','op':'eq','value':21}", "{'t':21.0}", true},
        {"{'prop':'t','op':'eq','value':21.0}", "{'t':21}", true},
        {"{'prop':'t','op':'eq','value':21}", "{'t':21.5}", false},
        {"{'prop':'t','op':'eq','value':21}", "{'t':'21'}", false},
        {"{'prop':'t','op':'eq','value':-3}", "{'t':-3.0}", true},
        {"{'prop':'t','op':'ne','value':21}", "{'t':22}", true},
        {"{'prop':'t','op':'ne','value':21}", "{'t':21.0}", false},
        {"{'prop':'t','op':'ne','value':21}", "{'u':1}", false}, /* absent: no comparison */
        {"{'prop':'t','op':'lt','value':21}", "{'t':20.5}", true},
        {"{'prop':'t','op':'lt','value':21}", "{'t':21}", false},
        {"{'prop':'t','op':'lt','value':21.5}", "{'t':21}", true},
        {"{'prop':'t','op':'le','value':21}", "{'t':21.0}", true},
        {"{'prop':'t','op':'le','value':21}", "{'t':21.01}", false},
        {"{'prop':'t','op':'gt','value':21}", "{'t':22}", true},
        {"{'prop':'t','op':'gt','value':21}", "{'t':21}", false},
        {"{'prop':'t','op':'gt','value':-1}", "{'t':0}", true},
        {"{'prop':'t','op':'ge','value':21}", "{'t':21}", true},
        {"{'prop':'t','op':'ge','value':21}", "{'t':20.99}", false},
        {"{'prop':'t','op':'gt','value':21}", "{'t':'30'}", false},  /* mixed kinds */
        {"{'prop':'t','op':'gt','value':9007199254740993}", "{'t':9007199254740994}", true},
        {"{'prop':'t','op':'lt','value':-9223372036854775808}", "{'t':-9223372036854775807}",
         false},
        /* texts, bytewise */
        {"{'prop':'s','op':'eq','value':'on'}", "{'s':'on'}", true},
        {"{'prop':'s','op':'eq','value':'on'}", "{'s':'onn'}", false},
        {"{'prop':'s','op':'ne','value':'on'}", "{'s':'off'}", true},
        {"{'prop':'s','op':'lt','value':'b'}", "{'s':'abc'}", true},
        {"{'prop':'s','op':'lt','value':'ab'}", "{'s':'a'}", true},
        {"{'prop':'s','op':'ge','value':'ab'}", "{'s':'ab'}", true},
        {"{'prop':'s','op':'gt','value':'b'}", "{'s':5}", false},
        /* booleans, null, structures */
        {"{'prop':'b','op':'eq','value':true}", "{'b':true}", true},
        {"{'prop':'b','op':'eq','value':true}", "{'b':1}", false},
        {"{'prop':'b','op':'ne','value':true}", "{'b':false}", true},
        {"{'prop':'b','op':'eq','value':null}", "{'b':null}", true},
        {"{'prop':'v','op':'eq','value':[1,2.0,'x']}", "{'v':[1.0,2,'x']}", true},
        {"{'prop':'v','op':'eq','value':[1,2]}", "{'v':[2,1]}", false},
        {"{'prop':'v','op':'eq','value':{'a':1,'b':[true]}}", "{'v':{'b':[true],'a':1.0}}", true},
        {"{'prop':'v','op':'eq','value':{'a':1}}", "{'v':{'a':1,'b':2}}", false},
        {"{'prop':'v','op':'ne','value':{'a':1}}", "{'v':{'a':2}}", true},
        /* nested paths */
        {"{'prop':'a.b.c','op':'eq','value':5}", "{'a':{'b':{'c':5}}}", true},
        {"{'prop':'a.b.c','op':'gt','value':5}", "{'a':{'b':{'c':5}}}", false},
        {"{'prop':'a.b','op':'exists','value':true}", "{'a':{'b':null}}", true},
        {"{'prop':'a.b','op':'exists','value':true}", "{'a':{'c':1}}", false},
        {"{'prop':'a.b','op':'exists','value':true}", "{'a':7}", false},
        {"{'prop':'a.b','op':'exists','value':false}", "{'a':{'c':1}}", true},
        {"{'prop':'a','op':'exists','value':false}", "{}", true},
        /* in */
        {"{'prop':'m','op':'in','value':['auto','eco']}", "{'m':'eco'}", true},
        {"{'prop':'m','op':'in','value':['auto','eco']}", "{'m':'off'}", false},
        {"{'prop':'m','op':'in','value':[1,2,3]}", "{'m':2.0}", true},
        {"{'prop':'m','op':'in','value':[[1],{'x':1}]}", "{'m':{'x':1}}", true},
        {"{'prop':'m','op':'in','value':[1]}", "{}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cl_eca_t *e = new_engine();
        put_cond(e, "r", cases[i].cond);
        reset_log();
        ev(e, "m", 1, cases[i].props);
        if ((H->n_acts == 1) != cases[i].fires)
            fail_msg("case %zu: %s on %s: fired %zu, want %d", i, cases[i].cond, cases[i].props,
                     H->n_acts, cases[i].fires);
        cl_eca_free(e);
    }
}

/* Many properties (beyond the engine's per-event table) still match. */
static void test_many_properties(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put_cond(e, "r", "{'prop':'k99','op':'eq','value':99}");
    char props[4096];
    size_t n = 0;
    n += (size_t)snprintf(props + n, sizeof props - n, "{");
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(props + n, sizeof props - n, "%s'k%d':%d", i ? "," : "", i, i);
    snprintf(props + n, sizeof props - n, "}");
    reset_log();
    ev(e, "m", 1, props);
    assert_int_equal(fired(), 1);
    cl_eca_free(e);
}

static void test_changed(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'c','on':['m','n'],'when':{'all':[{'prop':'s','op':'changed'}]},"
           "'then':[{'action':'a','target':1}]}");
    reset_log();
    ev(e, "m", 1, "{'s':1}"); /* first one counts as changed */
    assert_int_equal(fired(), 1);
    ev(e, "m", 1, "{'s':1.0}"); /* same value, other encoding */
    assert_int_equal(fired(), 0);
    ev(e, "m", 1, "{'s':2}");
    assert_int_equal(fired(), 1);
    ev(e, "m", 2, "{'s':2}"); /* another source has its own memory */
    assert_int_equal(fired(), 1);
    ev(e, "n", 1, "{'s':2}"); /* another type too */
    assert_int_equal(fired(), 1);
    ev(e, "m", 1, "{'s':2}");
    assert_int_equal(fired(), 0);
    ev(e, "m", 1, "{'x':2}"); /* present -> absent is a change */
    assert_int_equal(fired(), 1);
    ev(e, "m", 1, "{'x':3}"); /* absent -> absent is not */
    assert_int_equal(fired(), 0);
    ev(e, "m", 1, "{'s':{'a':[1,2],'b':true}}");
    assert_int_equal(fired(), 1);
    ev(e, "m", 1, "{'s':{'b':true,'a':[1.0,2]}}"); /* maps by key, numbers by value */
    assert_int_equal(fired(), 0);
    cl_eca_free(e);

    /* the memory is updated whenever the rule sees the event, even if another condition fails */
    e = new_engine();
    put(e, "{'name':'c2','on':['m'],'when':{'all':[{'prop':'on','op':'eq','value':true},"
           "{'prop':'s','op':'changed'}]},'then':[{'action':'a','target':1}]}");
    reset_log();
    ev(e, "m", 1, "{'on':false,'s':1}");
    assert_int_equal(fired(), 0);
    ev(e, "m", 1, "{'on':true,'s':1}"); /* s did not change since the previous event */
    assert_int_equal(fired(), 0);
    ev(e, "m", 1, "{'on':true,'s':5}");
    assert_int_equal(fired(), 1);
    cl_eca_free(e);

    /* bounded: many sources, the memory stays at its cap */
    e = new_engine();
    put(e, "{'name':'c3','on':['m'],'when':{'all':[{'prop':'s','op':'changed'}]},"
           "'then':[{'action':'a','target':1}]}");
    for (uint32_t s = 1; s <= CL_ECA_CHANGED_MAX + 100; s++) {
        ev(e, "m", s, "{'s':1}");
        reset_log();
    }
    ev(e, "m", 1, "{'s':1}"); /* source 1 was evicted (least recently seen): first again */
    assert_int_equal(fired(), 1);
    ev(e, "m", CL_ECA_CHANGED_MAX + 100, "{'s':1}"); /* recent: remembered */
    assert_int_equal(fired(), 0);
    cl_eca_rule_info_t info;
    assert_int_equal(cl_eca_rule_info(e, "c3", 2, &info), CL_OK);
    assert_true(info.mem < 64 * 1024);
    cl_eca_free(e);
}

/* ------------------------------------------------------------------ */
/* Sources and triggers                                                */
/* ------------------------------------------------------------------ */

static void test_source_filters(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'id','on':['m'],'when':{'source':17},'then':[{'action':'id','target':1}]}");
    put(e, "{'name':'idf','on':['m'],'when':{'source':18.0},'then':[{'action':'idf','target':1}]}");
    put(e, "{'name':'any','on':['m'],'when':{'source':'*'},'then':[{'action':'any','target':1}]}");
    put(e, "{'name':'grp','on':['m'],'when':{'source':'@kitchen'},"
           "'then':[{'action':'grp','target':1}]}");
    put(e, "{'name':'arr','on':['m'],'when':{'source':[9,'@valves']},"
           "'then':[{'action':'arr','target':1}]}");
    put(e, "{'name':'none','on':['m'],'then':[{'action':'none','target':1}]}");
    struct {
        uint32_t source;
        const char *want; /* actions in name order */
    } cases[] = {
        {17, "any id none"}, {18, "any idf none"},  {3, "any grp none"},     {4, "any grp none"},
        {9, "any arr none"}, {6, "any arr none"},   {1, "any none"},         {0, "any none"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        reset_log();
        ev(e, "m", cases[i].source, "{}");
        char got[200] = "";
        for (size_t k = 0; k < H->n_acts; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", k ? " " : "",
                     H->acts[k].type);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("source %u: got \"%s\", want \"%s\"", cases[i].source, got, cases[i].want);
    }
    cl_eca_free(e);
}

static void test_triggers_and_order(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    /* installed out of order: they run in name order, "*" merged in */
    put(e, "{'name':'b','on':['x','y'],'then':[{'action':'b','target':1}]}");
    put(e, "{'name':'d','on':['*'],'then':[{'action':'d','target':1}]}");
    put(e, "{'name':'a','on':['*'],'then':[{'action':'a','target':1}]}");
    put(e, "{'name':'c','on':['y'],'then':[{'action':'c','target':1}]}");
    put(e, "{'name':'B','on':['x'],'then':[{'action':'B','target':1}]}");
    reset_log();
    ev(e, "x", 1, "{}");
    assert_int_equal(H->n_acts, 4);
    assert_string_equal(H->acts[0].type, "B"); /* bytewise: 'B' < 'a' */
    assert_string_equal(H->acts[1].type, "a");
    assert_string_equal(H->acts[2].type, "b");
    assert_string_equal(H->acts[3].type, "d");
    reset_log();
    ev(e, "y", 1, "{}");
    assert_int_equal(H->n_acts, 4);
    assert_string_equal(H->acts[0].type, "a");
    assert_string_equal(H->acts[1].type, "b");
    assert_string_equal(H->acts[2].type, "c");
    assert_string_equal(H->acts[3].type, "d");
    reset_log();
    ev(e, "zzz", 1, "{}");
    assert_int_equal(H->n_acts, 2);

    /* per-source order: events in arrival order, actions in that order */
    reset_log();
    for (int i = 0; i < 10; i++) {
        char p[32];
        snprintf(p, sizeof p, "{'i':%d}", i);
        ev_at(e, "q", 5, i, p);
    }
    put(e, "{'name':'seq','on':['seq'],'then':[{'action':'s','target':'{{event.source}}',"
           "'properties':{'i':'{{event.properties.i}}'}}]}");
    reset_log();
    for (int i = 0; i < 10; i++) {
        char p[32];
        snprintf(p, sizeof p, "{'i':%d}", i);
        ev_at(e, "seq", 5, i, p);
    }
    size_t k = 0;
    for (size_t i = 0; i < H->n_acts; i++) {
        if (strcmp(H->acts[i].type, "s") != 0)
            continue;
        char want[32];
        snprintf(want, sizeof want, "{'i':%zu}", k);
        assert_props(&H->acts[i], want);
        assert_int_equal(H->acts[i].target, 5);
        assert_int_equal(H->acts[i].time_ms, (int64_t)k);
        k++;
    }
    assert_int_equal(k, 10);
    cl_eca_free(e);
}

/* ------------------------------------------------------------------ */
/* Templates and targets                                               */
/* ------------------------------------------------------------------ */

static void test_templates(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'t1','on':['m'],'then':[{'action':'notify','target':2,'properties':{"
           "'temp':'{{event.properties.temp}}',"
           "'f':'{{event.properties.f}}',"
           "'room':'{{event.properties.where.room}}',"
           "'where':'{{event.properties.where}}',"
           "'src':'{{event.source}}','at':'{{event.time}}','type':'{{event.type}}',"
           "'rule':'{{rule.name}}',"
           "'msg':'{{event.type}} from {{event.source}}: {{event.properties.temp}} C, "
           "{{event.properties.f}}, ok={{event.properties.ok}}, n={{event.properties.n}}, "
           "in {{event.properties.where.room}}',"
           "'list':['{{event.properties.temp}}',{'x':'{{event.properties.ok}}'}],"
           "'plain':'no placeholder { here }','n':5}}]}");
    reset_log();
    ev_at(e, "m", 42, -5, "{'temp':21,'f':21.5,'ok':true,'n':null,'where':{'room':'kitchen'}}");
    assert_int_equal(H->n_acts, 1);
    assert_string_equal(H->acts[0].rule, "t1");
    assert_string_equal(H->acts[0].type, "notify");
    assert_int_equal(H->acts[0].target, 2);
    assert_props(&H->acts[0],
                 "{'temp':21,'f':21.5,'room':'kitchen','where':{'room':'kitchen'},"
                 "'src':42,'at':-5,'type':'m','rule':'t1',"
                 "'msg':'m from 42: 21 C, 21.5, ok=true, n=null, in kitchen',"
                 "'list':[21,{'x':true}],'plain':'no placeholder { here }','n':5}");

    /* a missing value fails the firing with a reason naming it; nothing is delivered */
    reset_log();
    ev(e, "m", 42, "{'temp':21,'f':1,'ok':true,'n':null}");
    assert_int_equal(H->n_acts, 0);
    char reason[CL_ECA_WHY_MAX];
    assert_true(rule_failed(e, "t1", reason, sizeof reason));
    assert_non_null(strstr(reason, "then[0]"));
    assert_non_null(strstr(reason, "{{event.properties.where"));
    assert_non_null(strstr(reason, "no such property"));

    /* a map inside a longer text cannot be formatted */
    put(e, "{'name':'t2','on':['m'],'then':[{'action':'x','target':2,'properties':"
           "{'m':'v={{event.properties.v}}'}}]}");
    reset_log();
    ev(e, "m", 1, "{'v':{'a':1}}");
    assert_int_equal(H->n_acts, 0);
    assert_true(rule_failed(e, "t2", reason, sizeof reason));
    assert_non_null(strstr(reason, "{{event.properties.v}}"));

    /* no properties: an empty map */
    put(e, "{'name':'t3','on':['k'],'then':[{'action':'x','target':2}]}");
    reset_log();
    ev(e, "k", 1, "{}");
    assert_int_equal(H->n_acts, 1);
    assert_props(&H->acts[0], "{}");
    cl_eca_free(e);
}

static void test_targets_and_groups(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'g','on':['m'],'then':[{'action':'open','target':'@valves',"
           "'properties':{'p':'{{event.properties.p}}'}},"
           "{'action':'ping','target':'{{event.source}}'},{'action':'none','target':'@nobody'}]}");
    reset_log();
    ev(e, "m", 9, "{'p':50}");
    assert_int_equal(H->n_acts, 4);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(H->acts[i].type, "open");
        assert_int_equal(H->acts[i].target, 5 + i);
        assert_props(&H->acts[i], "{'p':50}");
    }
    assert_string_equal(H->acts[3].type, "ping");
    assert_int_equal(H->acts[3].target, 9);

    /* {{event.source}} of a derived event (the core) is not a client */
    put(e, "{'name':'h','on':['d'],'then':[{'action':'ping','target':'{{event.source}}'}]}");
    put(e, "{'name':'h0','on':['go'],'then':[{'event':'d'}]}");
    reset_log();
    ev(e, "go", 3, "{}");
    assert_int_equal(H->n_acts, 0);
    char reason[CL_ECA_WHY_MAX];
    assert_true(rule_failed(e, "h", reason, sizeof reason));
    assert_non_null(strstr(reason, "then[0].target"));

    /* more than CL_ECA_MAX_ACTIONS_PER_EVENT through a group: the firing fails */
    put(e, "{'name':'big','on':['b'],'then':[{'action':'x','target':'@big'}]}");
    put(e, "{'name':'big2','on':['b'],'then':[{'action':'y','target':1}]}");
    reset_log();
    ev(e, "b", 1, "{}");
    assert_int_equal(H->n_acts, 1); /* big2 only */
    assert_string_equal(H->acts[0].type, "y");
    assert_true(rule_failed(e, "big", reason, sizeof reason));
    assert_non_null(strstr(reason, "more than 256 actions"));
    cl_eca_free(e);
}

static void test_refusal(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'a1','on':['m'],'then':[{'action':'ok','target':1}]}");
    put(e, "{'name':'a2','on':['m'],'then':[{'action':'refused','target':1},"
           "{'action':'after','target':1}]}");
    put(e, "{'name':'a3','on':['m'],'then':[{'action':'ok3','target':1}]}");
    put(e, "{'name':'a4','on':['m'],'then':[{'action':'x','target':666}]}");
    reset_log();
    ev(e, "m", 1, "{}");
    assert_int_equal(H->n_acts, 2);
    assert_string_equal(H->acts[0].type, "ok");
    assert_string_equal(H->acts[1].type, "ok3");
    char reason[CL_ECA_WHY_MAX];
    assert_false(rule_failed(e, "a1", NULL, 0));
    assert_true(rule_failed(e, "a2", reason, sizeof reason));
    assert_non_null(strstr(reason, "then[0]"));
    assert_non_null(strstr(reason, "refused"));
    assert_non_null(strstr(reason, "no such action type"));
    assert_true(rule_failed(e, "a4", reason, sizeof reason));
    assert_non_null(strstr(reason, "unknown client"));
    take(e);
    assert_int_equal(H->n_fails, 2);
    assert_string_equal(H->fails[0].name, "a2");
    assert_string_equal(H->fails[1].name, "a4");
    /* failed rules no longer run; the others do */
    reset_log();
    ev(e, "m", 1, "{}");
    assert_int_equal(H->n_acts, 2);
    assert_int_equal(H->action_calls, 2);
    cl_eca_free(e);
}

/* ------------------------------------------------------------------ */
/* Derived events                                                      */
/* ------------------------------------------------------------------ */

static void test_derived(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'hot','on':['temp'],'when':{'all':[{'prop':'t','op':'gt','value':30}]},"
           "'then':[{'event':'alarm','properties':{'level':'high','t':'{{event.properties.t}}',"
           "'from':'{{event.source}}'}},{'action':'first','target':1}]}");
    put(e, "{'name':'siren','on':['alarm'],'when':{'source':'*'},'then':[{'action':'sound',"
           "'target':'@kitchen','properties':{'t':'{{event.properties.t}}',"
           "'from':'{{event.properties.from}}'}}]}");
    put(e, "{'name':'zz','on':['temp'],'then':[{'action':'last','target':1}]}");
    reset_log();
    ev_at(e, "temp", 8, 77, "{'t':35}");
    /* the event's rules first (hot, zz), then the derived event's */
    assert_int_equal(H->n_acts, 4);
    assert_string_equal(H->acts[0].type, "first");
    assert_string_equal(H->acts[1].type, "last");
    assert_string_equal(H->acts[2].type, "sound");
    assert_int_equal(H->acts[2].target, 3);
    assert_int_equal(H->acts[3].target, 4);
    assert_props(&H->acts[2], "{'t':35,'from':8}");
    assert_int_equal(H->acts[2].time_ms, 77);
    assert_int_equal(H->n_derived, 1);
    assert_string_equal(H->derived[0].type, "alarm");
    assert_int_equal(H->derived[0].target, 0); /* source: the core */
    assert_props(&H->derived[0], "{'level':'high','t':35,'from':8}");
    cl_eca_free(e);
}

static void test_chain_limit(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'ping','on':['ping'],'then':[{'event':'pong'},{'action':'pinged','target':1}]}");
    put(e, "{'name':'pong','on':['pong'],'then':[{'event':'ping'},{'action':'ponged','target':1}]}");
    reset_log();
    ev(e, "ping", 1, "{}");
    /* depth 0 ping .. depth 8 (ping, pong alternating) are processed: 9 firings,
     * the one at depth 8 would queue depth 9 and fails instead */
    assert_int_equal(H->n_derived, 8);
    assert_int_equal(H->n_acts, 8);
    char reason[CL_ECA_WHY_MAX];
    /* depth 8 is a "ping" event (even depth): rule ping fails */
    assert_true(rule_failed(e, "ping", reason, sizeof reason));
    assert_false(rule_failed(e, "pong", NULL, 0));
    assert_non_null(strstr(reason, "action chain deeper than 8"));
    take(e);
    assert_int_equal(H->n_fails, 1);
    assert_string_equal(H->fails[0].name, "ping");
    /* stopped: nothing loops on */
    reset_log();
    ev(e, "ping", 1, "{}");
    assert_int_equal(H->n_acts, 0);
    ev(e, "pong", 1, "{}");
    assert_int_equal(H->n_acts, 1); /* pong fires, its derived ping reaches a failed rule */
    assert_int_equal(H->n_derived, 1);
    cl_eca_free(e);

    /* fan-out is bounded by the derived-event budget */
    e = new_engine();
    put(e, "{'name':'fan','on':['f'],'then':[{'event':'f'},{'event':'f'},{'event':'f'},"
           "{'event':'f'}]}");
    reset_log();
    ev(e, "f", 1, "{}");
    assert_true(H->n_derived <= CL_ECA_MAX_DERIVED_PER_EVENT);
    assert_true(rule_failed(e, "fan", reason, sizeof reason));
    assert_non_null(strstr(reason, "derived events"));
    cl_eca_free(e);
}

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

static void tick(cl_eca_t *e, int64_t t)
{
    assert_int_equal(cl_eca_tick(e, t), CL_OK);
}

static void test_schedule(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put_at(e, "{'name':'s','on':{'every':60},'then':[{'action':'beat','target':1,"
              "'properties':{'t':'{{event.time}}','type':'{{event.type}}',"
              "'every':'{{event.properties.every}}'}}]}",
           1000);
    put_at(e, "{'name':'s2','on':{'every':10.0},'when':{'source':5},"
              "'then':[{'action':'never','target':1}]}",
           1000);
    reset_log();
    tick(e, 60999);
    assert_int_equal(H->n_acts, 0);
    tick(e, 61000);
    assert_int_equal(H->n_acts, 1);
    assert_props(&H->acts[0], "{'t':61000,'type':'schedule','every':60}");
    tick(e, 61500);
    tick(e, 120999);
    assert_int_equal(H->n_acts, 1);
    tick(e, 121000);
    assert_int_equal(H->n_acts, 2);
    /* the core was down for an hour: one firing, then the grid goes on */
    tick(e, 121000 + 3600000 + 5);
    assert_int_equal(H->n_acts, 3);
    tick(e, 121000 + 3600000 + 30000);
    assert_int_equal(H->n_acts, 3);
    tick(e, 121000 + 3660000);
    assert_int_equal(H->n_acts, 4);
    /* a disabled schedule does not fire, and does not burst when enabled again */
    assert_int_equal(cl_eca_set_enabled(e, "s", 1, false), CL_OK);
    tick(e, 121000 + 3660000 + 600000);
    assert_int_equal(H->n_acts, 4);
    assert_int_equal(cl_eca_set_enabled(e, "s", 1, true), CL_OK);
    tick(e, 121000 + 3660000 + 600001);
    assert_int_equal(H->n_acts, 4);
    tick(e, 121000 + 3660000 + 660000);
    assert_int_equal(H->n_acts, 5);
    cl_eca_free(e);

    /* extreme clock values neither overflow nor misfire */
    e = new_engine();
    put_at(e, "{'name':'s','on':{'every':60},'then':[{'action':'beat','target':1}]}",
           INT64_MAX - 1000);
    put_at(e, "{'name':'q','on':{'absent':{'type':'hb','source':3,'for':60}},"
              "'then':[{'action':'quiet','target':1}]}",
           INT64_MIN);
    reset_log();
    tick(e, INT64_MIN);
    assert_int_equal(H->n_acts, 0);
    tick(e, INT64_MAX - 1); /* q: silent since INT64_MIN */
    assert_int_equal(H->n_acts, 1);
    assert_string_equal(H->acts[0].type, "quiet");
    tick(e, INT64_MAX); /* s: due at the saturated INT64_MAX */
    assert_int_equal(H->n_acts, 2);
    assert_string_equal(H->acts[1].type, "beat");
    cl_eca_free(e);
}

static void test_absence(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    /* a named client is watched from the start; "*" sources from their first event */
    put_at(e, "{'name':'quiet','on':{'absent':{'type':'hb','source':[7,'@kitchen'],'for':60}},"
              "'then':[{'action':'silent','target':1,'properties':{'who':'{{event.source}}',"
              "'since':'{{event.properties.since}}','type':'{{event.properties.type}}'}}]}",
           0);
    put_at(e, "{'name':'quiet2','on':{'absent':{'type':'hb2','source':'*','for':30}},"
              "'then':[{'action':'ping','target':'{{event.source}}'}]}",
           0);
    reset_log();
    tick(e, 59999);
    assert_int_equal(H->n_acts, 0);
    tick(e, 60000); /* 3, 4 (kitchen) and 7 silent since the start */
    assert_int_equal(H->n_acts, 3);
    assert_int_equal(H->acts[0].target, 1);
    assert_props(&H->acts[0], "{'who':3,'since':0,'type':'hb'}");
    assert_props(&H->acts[1], "{'who':4,'since':0,'type':'hb'}");
    assert_props(&H->acts[2], "{'who':7,'since':0,'type':'hb'}");
    tick(e, 120000); /* once per silence */
    assert_int_equal(H->n_acts, 3);
    reset_log();
    ev_at(e, "hb", 7, 130000, "{}");  /* re-arms 7 */
    ev_at(e, "hb", 12, 130000, "{}");  /* not in quiet's filter */
    ev_at(e, "hb2", 12, 130000, "{}"); /* quiet2 watches 12 from now on */
    ev_at(e, "other", 3, 130000, "{}");
    ev_at(e, "hb2", 0, 130000, "{}"); /* the core is never watched */
    tick(e, 159999);
    assert_int_equal(H->n_acts, 0);
    tick(e, 160000); /* quiet2: 12 silent for 30 s */
    assert_int_equal(H->n_acts, 1);
    assert_string_equal(H->acts[0].type, "ping");
    assert_int_equal(H->acts[0].target, 12);
    tick(e, 190000); /* quiet: 7 silent for 60 s */
    assert_int_equal(H->n_acts, 2);
    assert_props(&H->acts[1], "{'who':7,'since':130000,'type':'hb'}");
    tick(e, 250000);
    assert_int_equal(H->n_acts, 2);
    reset_log();
    /* per source: 7 re-armed, 12 silent again later */
    ev_at(e, "hb", 7, 300000, "{}");
    ev_at(e, "hb2", 12, 310000, "{}");
    tick(e, 340000);
    assert_int_equal(H->n_acts, 1);
    assert_int_equal(H->acts[0].target, 12);
    tick(e, 360000);
    assert_int_equal(H->n_acts, 2);
    assert_props(&H->acts[1], "{'who':7,'since':300000,'type':'hb'}");
    cl_eca_free(e);
}

/* ------------------------------------------------------------------ */
/* Rule management and effects                                         */
/* ------------------------------------------------------------------ */

static void test_manage(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'r','on':['m'],'then':[{'action':'v1','target':1}]}");
    reset_log();
    ev(e, "m", 1, "{}");
    assert_int_equal(H->n_acts, 1);
    assert_string_equal(H->acts[0].type, "v1");
    /* replace: new trigger, the old one is gone from the index */
    put(e, "{'name':'r','on':['n'],'then':[{'action':'v2','target':1}]}");
    reset_log();
    ev(e, "m", 1, "{}");
    assert_int_equal(H->n_acts, 0);
    ev(e, "n", 1, "{}");
    assert_int_equal(H->n_acts, 1);
    assert_string_equal(H->acts[0].type, "v2");
    size_t rules, bytes;
    cl_eca_stats(e, &rules, &bytes);
    assert_int_equal(rules, 1);
    assert_true(bytes > 0);
    /* disable / enable */
    assert_int_equal(cl_eca_set_enabled(e, "r", 1, false), CL_OK);
    reset_log();
    ev(e, "n", 1, "{}");
    assert_int_equal(H->n_acts, 0);
    assert_int_equal(cl_eca_set_enabled(e, "r", 1, true), CL_OK);
    ev(e, "n", 1, "{}");
    assert_int_equal(H->n_acts, 1);
    /* the document's "enabled" is overridden by put_rule's argument */
    size_t len;
    uint8_t *doc = j2c("{'name':'off','enabled':false,'on':['n'],"
                       "'then':[{'action':'off','target':1}]}",
                       &len);
    assert_int_equal(cl_eca_put_rule(e, doc, len, false, 0, NULL, 0), CL_OK);
    reset_log();
    ev(e, "n", 1, "{}");
    assert_int_equal(H->n_acts, 1);
    assert_int_equal(cl_eca_put_rule(e, doc, len, true, 0, NULL, 0), CL_OK);
    reset_log();
    ev(e, "n", 1, "{}");
    assert_int_equal(H->n_acts, 2);
    free(doc);
    /* delete */
    assert_int_equal(cl_eca_del_rule(e, "r", 1), CL_OK);
    assert_int_equal(cl_eca_del_rule(e, "r", 1), CL_ERR_NOT_FOUND);
    assert_int_equal(cl_eca_set_enabled(e, "r", 1, true), CL_ERR_NOT_FOUND);
    cl_eca_rule_info_t info;
    assert_int_equal(cl_eca_rule_info(e, "r", 1, &info), CL_ERR_NOT_FOUND);
    reset_log();
    ev(e, "n", 1, "{}");
    assert_int_equal(H->n_acts, 1);
    assert_string_equal(H->acts[0].type, "off");
    assert_int_equal(cl_eca_del_rule(e, "off", 3), CL_OK);
    cl_eca_stats(e, &rules, &bytes);
    assert_int_equal(rules, 0);

    /* many rules, many types: add, replace and delete keep the index right */
    for (int i = 0; i < 300; i++) {
        char j[256];
        snprintf(j, sizeof j, "{'name':'r%03d','on':['t%d','t%d'],'then':[{'action':'a%d',"
                 "'target':1}]}", i, i % 37, (i + 1) % 37, i);
        put(e, j);
    }
    for (int i = 0; i < 300; i += 3) {
        char n[16];
        snprintf(n, sizeof n, "r%03d", i);
        assert_int_equal(cl_eca_del_rule(e, n, strlen(n)), CL_OK);
    }
    for (int i = 1; i < 300; i += 3) {
        char j[256];
        snprintf(j, sizeof j, "{'name':'r%03d','on':['u%d'],'then':[{'action':'b%d',"
                 "'target':1}]}", i, i % 5, i);
        put(e, j);
    }
    for (int t = 0; t < 37; t++) {
        char type[16];
        snprintf(type, sizeof type, "t%d", t);
        reset_log();
        ev(e, type, 1, "{}");
        size_t want = 0;
        int last = -1;
        for (int i = 0; i < 300; i++)
            if (i % 3 == 2 && (i % 37 == t || (i + 1) % 37 == t))
                want++;
        assert_int_equal(H->n_acts, want);
        for (size_t k = 0; k < H->n_acts; k++) { /* name order */
            int i = atoi(H->acts[k].type + 1);
            assert_true(i > last);
            last = i;
        }
    }
    reset_log();
    ev(e, "u3", 1, "{}");
    assert_int_equal(H->n_acts, 20);
    cl_eca_free(e);
}

static void test_failed_and_effects(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'f','on':['m'],'then':[{'action':'x','target':1,"
           "'properties':{'v':'{{event.properties.v}}'}}]}");
    reset_log();
    ev(e, "m", 1, "{}");
    assert_int_equal(H->n_acts, 0);
    assert_true(rule_failed(e, "f", NULL, 0));
    /* a failed rule does not run, even when the event would be fine */
    ev(e, "m", 1, "{'v':1}");
    assert_int_equal(H->n_acts, 0);
    take(e);
    assert_int_equal(H->n_fails, 1);
    assert_string_equal(H->fails[0].name, "f");
    assert_non_null(strstr(H->fails[0].reason, "no such property"));
    take(e); /* reported once */
    assert_int_equal(H->n_fails, 0);
    /* enabling clears the failure */
    assert_int_equal(cl_eca_set_enabled(e, "f", 1, true), CL_OK);
    assert_false(rule_failed(e, "f", NULL, 0));
    ev(e, "m", 1, "{'v':1}");
    assert_int_equal(H->n_acts, 1);
    /* a failure restored from the log stops the rule but is not reported again */
    assert_int_equal(cl_eca_set_failed(e, "f", 1, "earlier failure"), CL_OK);
    char reason[CL_ECA_WHY_MAX];
    assert_true(rule_failed(e, "f", reason, sizeof reason));
    assert_string_equal(reason, "earlier failure");
    reset_log();
    ev(e, "m", 1, "{'v':1}");
    assert_int_equal(H->n_acts, 0);
    take(e);
    assert_int_equal(H->n_fails, 0);
    /* a failure that is cleared before take_effects is not reported */
    assert_int_equal(cl_eca_set_enabled(e, "f", 1, true), CL_OK);
    ev(e, "m", 1, "{}");
    assert_true(rule_failed(e, "f", NULL, 0));
    assert_int_equal(cl_eca_set_enabled(e, "f", 1, true), CL_OK);
    take(e);
    assert_int_equal(H->n_fails, 0);
    /* a replaced rule starts clean; a deleted one reports nothing */
    ev(e, "m", 1, "{}");
    put(e, "{'name':'f','on':['m'],'then':[{'action':'x','target':1}]}");
    assert_false(rule_failed(e, "f", NULL, 0));
    take(e);
    assert_int_equal(H->n_fails, 0);
    put(e, "{'name':'g','on':['m'],'then':[{'action':'refused','target':1}]}");
    ev(e, "m", 1, "{}");
    assert_int_equal(cl_eca_del_rule(e, "g", 1), CL_OK);
    take(e);
    assert_int_equal(H->n_fails, 0);
    /* counters */
    cl_eca_rule_info_t info;
    put(e, "{'name':'cnt','on':['c'],'when':{'all':[{'prop':'x','op':'eq','value':1}]},"
           "'then':[{'action':'x','target':1}]}");
    ev(e, "c", 1, "{'x':1}");
    ev(e, "c", 1, "{'x':2}");
    ev(e, "c", 1, "{'x':1}");
    assert_int_equal(cl_eca_rule_info(e, "cnt", 3, &info), CL_OK);
    assert_int_equal(info.matched, 3);
    assert_int_equal(info.fired, 2);
    assert_true(info.enabled);
    assert_false(info.failed);
    assert_int_equal(info.js_heap, 0);
    assert_true(info.mem > 0);
    cl_eca_free(e);
}

/* ------------------------------------------------------------------ */
/* Dry run                                                             */
/* ------------------------------------------------------------------ */

typedef struct dry_log {
    logged_t acts[16];
    size_t n_acts;
    logged_t evs[16];
    size_t n_evs;
} dry_log_t;

static cl_status_t dry_action(void *arg, const cl_eca_action_t *a)
{
    dry_log_t *d = arg;
    assert_true(d->n_acts < 16);
    log_action(&d->acts[d->n_acts++], a);
    return CL_OK;
}

static void dry_derived(void *arg, const cl_eca_event_t *ev_)
{
    dry_log_t *d = arg;
    assert_true(d->n_evs < 16);
    logged_t *l = &d->evs[d->n_evs++];
    snprintf(l->type, sizeof l->type, "%.*s", (int)ev_->type_len, ev_->type);
    memcpy(l->props, ev_->props, ev_->props_len);
    l->props_len = ev_->props_len;
}

static cl_status_t dry(cl_eca_t *e, const char *rule, const char *type, uint32_t source,
                       const char *props, dry_log_t *log, bool *matched, char *why)
{
    size_t dl, pl;
    uint8_t *doc = j2c(rule, &dl);
    uint8_t *p = j2c(props, &pl);
    cl_eca_event_t ev_ = {type, strlen(type), source, 5000, p, pl};
    memset(log, 0, sizeof *log);
    cl_status_t st = cl_eca_dry_run(e, doc, dl, &ev_, dry_action, dry_derived, log, matched, why,
                                    CL_ECA_WHY_MAX);
    free(doc);
    free(p);
    return st;
}

static void test_dry_run(void **st)
{
    (void)st;
    static const char *const R =
        "{'name':'d','on':['m'],'when':{'source':[1,'@valves'],'all':[{'prop':'s','op':'changed'},"
        "{'prop':'t','op':'gt','value':20}]},'then':[{'action':'go','target':'@kitchen',"
        "'properties':{'t':'{{event.properties.t}}'}},{'event':'went','properties':{'n':1}}]}";
    cl_eca_t *e = new_engine();
    dry_log_t log;
    bool matched;
    char why[CL_ECA_WHY_MAX];
    reset_log();
    /* not installed */
    assert_int_equal(dry(e, R, "m", 1, "{'s':1,'t':25}", &log, &matched, why), CL_OK);
    assert_true(matched);
    assert_int_equal(log.n_acts, 2);
    assert_int_equal(log.acts[0].target, 3);
    assert_int_equal(log.acts[1].target, 4);
    assert_props(&log.acts[0], "{'t':25}");
    assert_int_equal(log.n_evs, 1);
    assert_string_equal(log.evs[0].type, "went");
    assert_int_equal(H->action_calls, 0);
    assert_int_equal(H->n_derived, 0);
    assert_int_equal(dry(e, R, "m", 1, "{'s':1,'t':15}", &log, &matched, why), CL_OK);
    assert_false(matched);
    assert_int_equal(dry(e, R, "n", 1, "{'s':1,'t':25}", &log, &matched, why), CL_OK);
    assert_false(matched);
    assert_int_equal(dry(e, R, "m", 2, "{'s':1,'t':25}", &log, &matched, why), CL_OK);
    assert_false(matched);
    /* installed: the dry run reads its "changed" memory but does not update it */
    put(e, R);
    ev(e, "m", 1, "{'s':1,'t':25}");
    assert_int_equal(H->n_acts, 2);
    reset_log();
    assert_int_equal(dry(e, R, "m", 1, "{'s':1,'t':25}", &log, &matched, why), CL_OK);
    assert_false(matched); /* s did not change */
    assert_int_equal(dry(e, R, "m", 1, "{'s':2,'t':25}", &log, &matched, why), CL_OK);
    assert_true(matched);
    assert_int_equal(dry(e, R, "m", 1, "{'s':2,'t':25}", &log, &matched, why), CL_OK);
    assert_true(matched); /* still: the memory holds s = 1 */
    assert_int_equal(H->action_calls, 0);
    cl_eca_rule_info_t info;
    assert_int_equal(cl_eca_rule_info(e, "d", 1, &info), CL_OK);
    assert_int_equal(info.fired, 1);
    assert_int_equal(info.matched, 1);
    ev(e, "m", 1, "{'s':2,'t':25}"); /* the real memory: 1 -> 2 is a change */
    assert_int_equal(fired(), 2);
    /* a failure is returned, the rule is not marked */
    assert_int_equal(dry(e,
                         "{'name':'d','on':['m'],'then':[{'action':'x','target':1,"
                         "'properties':{'v':'{{event.properties.v}}'}}]}",
                         "m", 1, "{}", &log, &matched, why),
                     CL_ERR_BAD_INPUT);
    assert_true(matched);
    assert_non_null(strstr(why, "no such property"));
    assert_false(rule_failed(e, "d", NULL, 0));
    take(e);
    assert_int_equal(H->n_fails, 0);
    /* a bad document */
    assert_int_equal(dry(e, "{'name':'d','on':[]}", "m", 1, "{}", &log, &matched, why),
                     CL_ERR_BAD_INPUT);
    assert_non_null(strstr(why, "on"));
    /* timers: the sample event stands for the timer's */
    assert_int_equal(dry(e, "{'name':'t','on':{'every':60},'then':[{'action':'x','target':1}]}",
                         "schedule", 0, "{}", &log, &matched, why),
                     CL_OK);
    assert_true(matched);
    assert_int_equal(log.n_acts, 1);
    cl_eca_free(e);
}

/* ------------------------------------------------------------------ */
/* Malformed documents                                                 */
/* ------------------------------------------------------------------ */

typedef struct badcase {
    const char *json;
    const char *reason; /* a fragment of the expected reason */
} badcase_t;

#define A "'then':[{'action':'a','target':1}]"

static const badcase_t BAD[] = {
    {"[1,2]", "rule: a map"},
    {"{'on':['m']," A "}", "name: required"},
    {"{'name':'','on':['m']," A "}", "name: 1..64"},
    {"{'name':'a b','on':['m']," A "}", "name: 1..64 of [A-Za-z0-9._-]"},
    {"{'name':'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','on':['m']," A "}",
     "name: 1..64"},
    {"{'name':7,'on':['m']," A "}", "name: 1..64"},
    {"{'name':'r'," A "}", "on: required"},
    {"{'name':'r','on':[]," A "}", "on: an array of 1..16 event types"},
    {"{'name':'r','on':'m'," A "}", "on: an array of 1..16 event types"},
    {"{'name':'r','on':['a','b','c','d','e','f','g','h','i','j','k','l','m','n','o','p','q']," A
     "}",
     "on: an array of 1..16"},
    {"{'name':'r','on':['m',5]," A "}", "on[1]: an event type name"},
    {"{'name':'r','on':['m','a b']," A "}", "on[1]: an event type name"},
    {"{'name':'r','on':['m','m']," A "}", "on[1]: duplicate type"},
    {"{'name':'r','on':['m','*']," A "}", "on[1]: \"*\" must be the only type"},
    {"{'name':'r','on':{'every':5}," A "}", "on.every: whole seconds, 10..31536000"},
    {"{'name':'r','on':{'every':60.5}," A "}", "on.every: whole seconds"},
    {"{'name':'r','on':{'every':31536001}," A "}", "on.every: whole seconds"},
    {"{'name':'r','on':{'every':'60'}," A "}", "on.every: whole seconds"},
    {"{'name':'r','on':{'hourly':true}," A "}", "on: an array of 1..16 event types"},
    {"{'name':'r','on':{'every':60,'absent':{}}," A "}", "on: an array"},
    {"{'name':'r','on':{'absent':{'type':'hb','for':60}}," A "}", "on.absent.source: required"},
    {"{'name':'r','on':{'absent':{'source':1,'for':60}}," A "}", "on.absent.type: required"},
    {"{'name':'r','on':{'absent':{'type':'hb','source':1}}," A "}", "on.absent.for: required"},
    {"{'name':'r','on':{'absent':{'type':'hb','source':1,'for':0}}," A "}",
     "on.absent.for: whole seconds"},
    {"{'name':'r','on':{'absent':{'type':'hb','source':'@','for':5}}," A "}",
     "on.absent.source: a client id"},
    {"{'name':'r','on':{'absent':{'type':'hb','source':1,'for':5,'x':1}}," A "}",
     "on.absent.x: unknown field"},
    {"{'name':'r','on':['m'],'when':{'source':0}," A "}", "when.source: a client id"},
    {"{'name':'r','on':['m'],'when':{'source':4294967296}," A "}", "when.source: a client id"},
    {"{'name':'r','on':['m'],'when':{'source':'kitchen'}," A "}", "when.source: a client id"},
    {"{'name':'r','on':['m'],'when':{'source':[]}," A "}", "when.source: an array of 1..16"},
    {"{'name':'r','on':['m'],'when':{'source':[1,'@a b']}," A "}", "when.source[1]: a client id"},
    {"{'name':'r','on':['m'],'when':{'source':[1,[2]]}," A "}", "when.source[1]"},
    {"{'name':'r','on':['m'],'when':{'sources':1}," A "}", "when.sources: unknown field"},
    {"{'name':'r','on':['m'],'when':[]," A "}", "when: a map"},
    {"{'name':'r','on':['m'],'when':{'all':{}}," A "}", "when.all: an array of up to 16"},
    {"{'name':'r','on':['m'],'when':{'all':[1]}," A "}", "when.all[0]: a map"},
    {"{'name':'r','on':['m'],'when':{'all':[{'op':'eq','value':1}]}," A "}",
     "when.all[0].prop: required"},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','value':1}]}," A "}",
     "when.all[0].op: required"},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','op':'eq','value':1},"
     "{'prop':'x','op':'like','value':1}]}," A "}",
     "when.all[1].op: one of eq ne lt le gt ge in exists changed"},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'','op':'eq','value':1}]}," A "}",
     "when.all[0].prop: a dotted path"},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'a..b','op':'eq','value':1}]}," A "}",
     "when.all[0].prop: a dotted path"},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'a.','op':'eq','value':1}]}," A "}",
     "when.all[0].prop"},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q','op':"
     "'exists','value':true}]}," A "}",
     "at most 16 segments"},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','op':'eq'}]}," A "}",
     "when.all[0].value: required for \"eq\""},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','op':'lt','value':true}]}," A "}",
     "when.all[0].value: a number or a text for \"lt\""},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','op':'ge','value':[1]}]}," A "}",
     "when.all[0].value: a number or a text for \"ge\""},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','op':'in','value':1}]}," A "}",
     "when.all[0].value: an array of 1..64 values for \"in\""},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','op':'in','value':[]}]}," A "}",
     "for \"in\""},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','op':'exists','value':1}]}," A "}",
     "when.all[0].value: true or false for \"exists\""},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','op':'changed','value':1}]}," A "}",
     "when.all[0].value: not allowed with \"changed\""},
    {"{'name':'r','on':['m'],'when':{'all':[{'prop':'x','op':'eq','value':1,'val':2}]}," A "}",
     "when.all[0].val: unknown field"},
    {"{'name':'r','on':['m']}", "then: required unless there is a \"script\""},
    {"{'name':'r','on':['m'],'then':{}}", "then: an array of up to 16"},
    {"{'name':'r','on':['m'],'then':[{'target':1}]}", "then[0]: {\"action\", \"target\""},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1},{'action':'b'}]}",
     "then[1].target: a client id, \"@group\" or \"{{event.source}}\""},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1},{'action':'b','target':'x'}]}",
     "then[1].target: a client id, \"@group\" or \"{{event.source}}\""},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1},{'action':'b','target':-1}]}",
     "then[1].target: a client id, \"@group\" or \"{{event.source}}\""},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':'{{event.time}}'}]}",
     "then[0].target: a client id"},
    {"{'name':'r','on':['m'],'then':[{'action':'a b','target':1}]}",
     "then[0].action: an action type name"},
    {"{'name':'r','on':['m'],'then':[{'action':'a','event':'b','target':1}]}",
     "then[0]: {\"action\""},
    {"{'name':'r','on':['m'],'then':[{'event':'e','target':1}]}",
     "then[0].target: only an action has a target"},
    {"{'name':'r','on':['m'],'then':[{'event':''}]}", "then[0].event: an event type name"},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1,'properties':[1]}]}",
     "then[0].properties: a map"},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1,'properties':{'x':'{{foo}}'}}]}",
     "then[0].properties.x: unknown placeholder \"{{foo}}\""},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1,'properties':{'x':{'y':["
     "'ok','{{event.properties}}']}}}]}",
     "then[0].properties.x.y[1]: unknown placeholder"},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1,'properties':{'x':'{{event.type'}}]}",
     "then[0].properties.x: unterminated placeholder"},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1,'properties':{'x':"
     "'{{event.properties.a..b}}'}}]}",
     "unknown placeholder"},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1,'properties':{'{{rule.name}}':1}}]}",
     "then[0].properties: no placeholders in keys"},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1,'properties':{'x':'{{state.n}}'}}]}",
     "then[0].properties: {{state."},
    {"{'name':'r','on':['m'],'then':[{'action':'a','target':1,'prop':{}}]}",
     "then[0].prop: unknown field"},
    {"{'name':'r','on':['m']," A ",'tehn':[]}", "tehn: unknown field"},
    {"{'name':'r','on':['m']," A ",'name':'s'}", "name: duplicate field"},
    {"{'name':'r','on':['m']," A ",'enabled':'yes'}", "enabled: true or false"},
    {"{'name':'r','on':['m']," A ",'description':7}", "description: a text of up to 256"},
    {"{'name':'r','on':['m']," A ",'if':''}", "if: an ECMAScript expression"},
    {"{'name':'r','on':['m']," A ",'if':1}", "if: an ECMAScript expression"},
    {"{'name':'r','on':['m'],'script':false}", "script: an ECMAScript function body"},
};

static void test_bad_documents(void **st)
{
    (void)st;
    assert_true(sizeof BAD / sizeof BAD[0] >= 30);
    cl_eca_t *e = new_engine();
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        size_t len;
        uint8_t *doc = j2c(BAD[i].json, &len);
        char why[CL_ECA_WHY_MAX] = "";
        const char *name = NULL;
        size_t nl = 0;
        cl_status_t s = cl_eca_check_rule(doc, len, &name, &nl, why, sizeof why);
        if (s != CL_ERR_BAD_INPUT || strstr(why, BAD[i].reason) == NULL)
            fail_msg("case %zu %s: status %d, reason \"%s\", want \"%s\"", i, BAD[i].json, s, why,
                     BAD[i].reason);
        /* put_rule refuses it the same way and installs nothing */
        char why2[CL_ECA_WHY_MAX] = "";
        assert_int_equal(cl_eca_put_rule(e, doc, len, true, 0, why2, sizeof why2),
                         CL_ERR_BAD_INPUT);
        assert_string_equal(why, why2);
        free(doc);
    }
    size_t rules;
    cl_eca_stats(e, &rules, NULL);
    assert_int_equal(rules, 0);
    cl_eca_free(e);

    /* not CBOR at all, trailing bytes, too long, not UTF-8 */
    char why[CL_ECA_WHY_MAX];
    static const uint8_t junk[] = {0xa1, 0x61};
    assert_int_equal(cl_eca_check_rule(junk, sizeof junk, NULL, NULL, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_non_null(strstr(why, "rule:"));
    size_t len;
    uint8_t *doc = j2c("{'name':'r','on':['m']," A "}", &len);
    doc[len] = 0x00;
    assert_int_equal(cl_eca_check_rule(doc, len + 1, NULL, NULL, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(cl_eca_check_rule(doc, CL_ECA_MAX_RULE_DOC + 1, NULL, NULL, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    const char *name;
    size_t nl;
    assert_int_equal(cl_eca_check_rule(doc, len, &name, &nl, why, sizeof why), CL_OK);
    assert_int_equal(nl, 1);
    assert_ptr_equal(name, (const char *)doc + 7); /* a3 64 "name" 61 "r" */
    assert_int_equal(cl_eca_check_rule(doc, len, NULL, NULL, NULL, 0), CL_OK);
    free(doc);
    /* a name that is not UTF-8 */
    static const uint8_t bad_utf8[] = {0xa3, 0x64, 'n', 'a', 'm', 'e', 0x61, 0xff, 0x62, 'o',
                                       'n',  0x81, 0x61, 'm', 0x66, 's',  'c', 'r', 'i', 'p',
                                       't',  0x61, 'x'};
    assert_int_equal(cl_eca_check_rule(bad_utf8, sizeof bad_utf8, NULL, NULL, why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_non_null(strstr(why, "name:"));
}

/* Malformed event properties are refused before any rule runs. */
static void test_bad_events(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'r','on':['m'],'then':[{'action':'a','target':1}]}");
    static const uint8_t not_map[] = {0x81, 0x01};
    static const uint8_t trunc[] = {0xa1, 0x61, 'x'};
    static const uint8_t trailing[] = {0xa0, 0xa0};
    const uint8_t *bad[] = {not_map, trunc, trailing};
    size_t lens[] = {sizeof not_map, sizeof trunc, sizeof trailing};
    reset_log();
    for (size_t i = 0; i < 3; i++) {
        cl_eca_event_t ev_ = {"m", 1, 1, 0, bad[i], lens[i]};
        assert_int_equal(cl_eca_event(e, &ev_), CL_ERR_BAD_INPUT);
    }
    assert_int_equal(H->action_calls, 0);
    cl_eca_event_t none = {"m", 1, 1, 0, NULL, 0}; /* no properties: {} */
    assert_int_equal(cl_eca_event(e, &none), CL_OK);
    assert_int_equal(H->n_acts, 1);
    assert_int_equal(cl_eca_event(NULL, &none), CL_ERR_INVALID_ARG);
    cl_eca_free(e);
}


/* ------------------------------------------------------------------ */
/* JS                                                                  */
/* ------------------------------------------------------------------ */

static void test_js_if(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'j','on':['m'],'when':{'source':'*'},"
           "'if':'event.properties.temp > 20 && event.source == 4 && event.type == \"m\"',"
           "'then':[{'action':'hot','target':1,'properties':{'t':'{{event.properties.temp}}'}}]}");
    reset_log();
    ev(e, "m", 4, "{'temp':21.5}");
    assert_int_equal(H->n_acts, 1);
    assert_props(&H->acts[0], "{'t':21.5}");
    ev(e, "m", 4, "{'temp':19}");
    ev(e, "m", 5, "{'temp':25}");
    assert_int_equal(H->n_acts, 1);
    cl_eca_rule_info_t info;
    assert_int_equal(cl_eca_rule_info(e, "j", 1, &info), CL_OK);
    assert_int_equal(info.matched, 3);
    assert_int_equal(info.fired, 1);
    assert_true(info.js_heap > 0);
    assert_true(info.mem > info.js_heap);
    /* a condition that throws fails the rule; others are unaffected */
    put(e, "{'name':'k','on':['m'],'if':'event.properties.a.b > 1',"
           "'then':[{'action':'never','target':1}]}");
    put(e, "{'name':'l','on':['m'],'then':[{'action':'always','target':1}]}");
    reset_log();
    ev(e, "m", 4, "{'temp':1}");
    assert_int_equal(H->n_acts, 1);
    assert_string_equal(H->acts[0].type, "always");
    char reason[CL_ECA_WHY_MAX];
    assert_true(rule_failed(e, "k", reason, sizeof reason));
    assert_non_null(strstr(reason, "if: "));
    assert_false(rule_failed(e, "j", NULL, 0));
    cl_eca_free(e);
}

static void test_js_check(void **st)
{
    (void)st;
    static const badcase_t js_bad[] = {
        {"{'name':'r','on':['m'],'if':'event.properties.t >'," A "}", "if: "},
        {"{'name':'r','on':['m'],'if':'1 +* 2'," A "}", "if: "},
        {"{'name':'r','on':['m'],'script':'if (x { }'}", "script: "},
        {"{'name':'r','on':['m'],'if':'true','script':'var = 1;'}", "script: "},
    };
    for (size_t i = 0; i < sizeof js_bad / sizeof js_bad[0]; i++) {
        size_t len;
        uint8_t *doc = j2c(js_bad[i].json, &len);
        char why[CL_ECA_WHY_MAX] = "";
        cl_status_t s = cl_eca_check_rule(doc, len, NULL, NULL, why, sizeof why);
        if (s != CL_ERR_BAD_INPUT || strncmp(why, js_bad[i].reason, strlen(js_bad[i].reason)) != 0)
            fail_msg("JS case %zu: status %d, reason \"%s\", want \"%s...\"", i, s, why,
                     js_bad[i].reason);
        free(doc);
    }
    size_t len;
    uint8_t *doc = j2c("{'name':'r','on':['m'],'if':'event.properties.t > 1','script':"
                       "'state.n = 1;'}",
                       &len);
    assert_int_equal(cl_eca_check_rule(doc, len, NULL, NULL, NULL, 0), CL_OK);
    free(doc);
}

/* A counter: state across events, exported by take_effects, restored after a restart. */
#define COUNTER                                                                                    \
    "{'name':'count','on':['m'],'script':'state.n = (state.n || 0) + 1; "                          \
    "emit(\"count\", event.source, {n: state.n});',"                                               \
    "'then':[{'action':'total','target':1,'properties':{'n':'{{state.n}}',"                        \
    "'msg':'seen {{state.n}} events'}}]}"

static void test_js_state(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, COUNTER);
    reset_log();
    for (int i = 0; i < 3; i++)
        ev(e, "m", 9, "{}");
    assert_int_equal(H->n_acts, 6);
    /* the script's emits first, then "then", in each firing */
    assert_string_equal(H->acts[0].type, "count");
    assert_int_equal(H->acts[0].target, 9);
    assert_props(&H->acts[0], "{'n':1}");
    assert_string_equal(H->acts[1].type, "total");
    assert_props(&H->acts[1], "{'n':1,'msg':'seen 1 events'}");
    assert_props(&H->acts[5], "{'n':3,'msg':'seen 3 events'}");
    take(e);
    assert_int_equal(H->n_states, 1);
    assert_string_equal(H->states[0].name, "count");
    effect_t saved = H->states[0];
    take(e); /* once */
    assert_int_equal(H->n_states, 0);
    cl_eca_free(e);

    /* restart: a new engine, the rule put again and its state restored */
    e = new_engine();
    put(e, COUNTER);
    assert_int_equal(cl_eca_set_state(e, "count", 5, saved.state, saved.state_len), CL_OK);
    reset_log();
    ev(e, "m", 9, "{}");
    assert_int_equal(H->n_acts, 2);
    assert_props(&H->acts[0], "{'n':4}");
    /* set_state is not a change to report */
    take(e);
    assert_int_equal(H->n_states, 1);
    /* a rule without a script has no state */
    put(e, "{'name':'plain','on':['m'],'if':'true','then':[{'action':'a','target':1}]}");
    assert_int_equal(cl_eca_set_state(e, "plain", 5, saved.state, saved.state_len),
                     CL_ERR_STATE);
    assert_int_equal(cl_eca_set_state(e, "nope", 4, saved.state, saved.state_len),
                     CL_ERR_NOT_FOUND);

    /* the dry run starts from a copy of the installed state and changes nothing */
    size_t dl;
    uint8_t *doc = j2c(COUNTER, &dl);
    dry_log_t log;
    bool matched;
    char why[CL_ECA_WHY_MAX];
    uint8_t p = 0xa0;
    cl_eca_event_t dev = {"m", 1, 9, 0, &p, 1};
    memset(&log, 0, sizeof log);
    reset_log();
    assert_int_equal(cl_eca_dry_run(e, doc, dl, &dev, dry_action, dry_derived, &log, &matched, why,
                                    sizeof why),
                     CL_OK);
    assert_true(matched);
    assert_int_equal(log.n_acts, 2);
    assert_props(&log.acts[0], "{'n':5}");
    assert_int_equal(H->action_calls, 0);
    take(e);
    assert_int_equal(H->n_states, 0);
    ev(e, "m", 9, "{}");
    assert_props(&H->acts[0], "{'n':5}"); /* not 6 */
    free(doc);

    /* "if" false: the script does not run */
    put(e, "{'name':'gate','on':['m'],'if':'event.properties.go === true',"
           "'script':'state.n = (state.n || 0) + 1; emit(\"g\", 1, {n: state.n});'}");
    reset_log();
    ev(e, "m", 1, "{'go':false}");
    ev(e, "m", 1, "{'go':true}");
    size_t g = 0;
    for (size_t i = 0; i < H->n_acts; i++)
        if (strcmp(H->acts[i].type, "g") == 0) {
            assert_props(&H->acts[i], "{'n':1}");
            g++;
        }
    assert_int_equal(g, 1);
    cl_eca_free(e);
}

static void test_js_emit_and_hostile(void **st)
{
    (void)st;
    cl_eca_t *e = new_engine();
    put(e, "{'name':'a-emit','on':['m'],'script':"
           "'emit(\"open\", \"@valves\", {pos: event.properties.p});'}");
    put(e, "{'name':'b-hostile','on':['m'],'script':'for (;;) { state.x = 1; }'}");
    put(e, "{'name':'c-throw','on':['m'],'script':"
           "'emit(\"lost\", 1, {}); throw new Error(\"boom\");'}");
    put(e, "{'name':'d-bomb','on':['m'],'script':"
           "'var a = []; for (;;) { a.push(new Array(50000).join(\"xy\" + a.length)); }'}");
    put(e, "{'name':'e-badtarget','on':['m'],'script':'emit(\"x\", \"nogroup\", {});'}");
    put(e, "{'name':'f-fine','on':['m'],'then':[{'action':'fine','target':2}]}");
    reset_log();
    ev(e, "m", 1, "{'p':40}");
    /* a-emit: one action per valve; f-fine; nothing from the others */
    assert_int_equal(H->n_acts, 4);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(H->acts[i].type, "open");
        assert_int_equal(H->acts[i].target, 5 + i);
        assert_props(&H->acts[i], "{'pos':40}");
    }
    assert_string_equal(H->acts[3].type, "fine");
    char reason[CL_ECA_WHY_MAX];
    assert_false(rule_failed(e, "a-emit", NULL, 0));
    assert_true(rule_failed(e, "b-hostile", reason, sizeof reason));
    assert_non_null(strstr(reason, "script: "));
    assert_non_null(strstr(reason, "time budget"));
    assert_true(rule_failed(e, "c-throw", reason, sizeof reason));
    assert_non_null(strstr(reason, "boom"));
    assert_true(rule_failed(e, "d-bomb", reason, sizeof reason));
    if (strstr(reason, "heap limit") == NULL)
        fail_msg("memory bomb: %s", reason);
    assert_true(rule_failed(e, "e-badtarget", reason, sizeof reason));
    assert_non_null(strstr(reason, "script: "));
    assert_false(rule_failed(e, "f-fine", NULL, 0));
    take(e);
    assert_int_equal(H->n_fails, 4);
    /* the failed ones stay quiet; the others keep working */
    reset_log();
    ev(e, "m", 1, "{'p':41}");
    assert_int_equal(H->n_acts, 4);
    cl_eca_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_operators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_properties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_source_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_triggers_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_templates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_targets_and_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_derived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chain_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_manage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_and_effects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_documents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_js_if, setup, teardown),
        cmocka_unit_test_setup_teardown(test_js_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_js_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_js_emit_and_hostile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
