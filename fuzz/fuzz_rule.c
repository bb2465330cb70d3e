/*
 * fuzz_rule.c - libFuzzer harness for rule documents (core/engine/eca.h):
 * the parser and checker (cl_eca_check_rule) and, for every accepted
 * document, the engine running it.
 *
 * Input: the rule document (CBOR). If cl_eca_check_rule accepts it, it is
 * installed with cl_eca_put_rule (which must accept it too, with the same
 * name), then fed a fixed set of events (several types, sources, nested
 * properties, a malformed one), a dry run on each, ticks across schedules
 * and absence periods, replacement by itself, take_effects, disable /
 * enable, and deletion. JS limits are small so a hostile script ends fast.
 *
 * Invariants checked with abort():
 * - check_rule and put_rule agree, and a refusal always has a reason;
 * - the reported name lies inside the document and is 1..64 bytes;
 * - every action handed to the host has a rule name equal to the rule's,
 *   a target >= 1, and properties that are one well-formed CBOR map;
 * - at most CL_ECA_MAX_ACTIONS_PER_EVENT actions per event;
 * - a dry run calls no host action;
 * - cl_eca_stats counts the rule while installed and none after deletion.
 * Everything is freed (LeakSanitizer checks it).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "eca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

typedef struct fz {
    char name[CL_ECA_NAME_MAX + 1];
    size_t actions;   /* in the current event */
    size_t host_calls; /* host.action calls, ever */
    int64_t now;
} fz_t;

static size_t f_members(void *arg, const char *g, size_t len, uint32_t *out, size_t max)
{
    (void)arg;
    size_t n = 0;
    /* "a".."z": clients 1..(letter); anything else is empty */
    if (len == 1 && g[0] >= 'a' && g[0] <= 'z')
        for (uint32_t c = 1; c <= (uint32_t)(g[0] - 'a' + 1) && n < max; c++)
            out[n++] = c;
    return n;
}

static bool f_in_group(void *arg, uint32_t client, const char *g, size_t len)
{
    (void)arg;
    return len == 1 && g[0] >= 'a' && g[0] <= 'z' && client >= 1 &&
           client <= (uint32_t)(g[0] - 'a' + 1);
}

static bool props_ok(const uint8_t *p, size_t len)
{
    cl_cbor_dec_t d;
    size_t pairs, count;
    if (cl_cbor_validate_seq(p, len, &count) != CL_OK || count != 1)
        return false;
    cl_cbor_dec_init(&d, p, len);
    return cl_cbor_dec_map(&d, &pairs) == CL_OK;
}

static cl_status_t f_action(void *arg, const cl_eca_action_t *a, char *why, size_t why_size)
{
    fz_t *f = arg;
    f->host_calls++;
    f->actions++;
    CHECK(strcmp(a->rule, f->name) == 0);
    CHECK(a->target >= 1);
    CHECK(a->type_len >= 1 && a->type_len <= 64);
    CHECK(props_ok(a->props, a->props_len));
    CHECK(f->actions <= CL_ECA_MAX_ACTIONS_PER_EVENT);
    if (a->type_len == 7 && memcmp(a->type, "refused", 7) == 0) {
        if (why_size > 0)
            why[0] = '\0';
        return CL_ERR_NOT_FOUND;
    }
    return CL_OK;
}

static void f_derived(void *arg, const cl_eca_event_t *d)
{
    (void)arg;
    CHECK(d->source == 0);
    CHECK(props_ok(d->props, d->props_len));
}

static int64_t f_now(void *arg)
{
    return ((fz_t *)arg)->now;
}

static cl_status_t f_rand(void *arg, uint8_t *out, size_t len)
{
    (void)arg;
    memset(out, 0x42, len);
    return CL_OK;
}

static cl_status_t d_action(void *arg, const cl_eca_action_t *a)
{
    (void)arg;
    CHECK(a->target >= 1);
    CHECK(props_ok(a->props, a->props_len));
    return CL_OK;
}

static void d_derived(void *arg, const cl_eca_event_t *d)
{
    (void)arg;
    CHECK(props_ok(d->props, d->props_len));
}

static void on_state(void *arg, const char *name, const uint8_t *cbor, size_t len)
{
    fz_t *f = arg;
    CHECK(strcmp(name, f->name) == 0);
    CHECK(props_ok(cbor, len));
}

static void on_failed(void *arg, const char *name, const char *reason)
{
    fz_t *f = arg;
    CHECK(strcmp(name, f->name) == 0);
    CHECK(reason != NULL && strlen(reason) < CL_ECA_WHY_MAX);
}

/* Fixed events: {"t": 25, "s": "on", "n": {"x": [1, 2.5]}} and variants. */
static const uint8_t P0[] = {0xa3, 0x61, 't',  0x18, 0x19, 0x61, 's',  0x62, 'o', 'n',
                             0x61, 'n',  0xa1, 0x61, 'x',  0x82, 0x01, 0xf9, 0x41, 0x00};
static const uint8_t P1[] = {0xa2, 0x61, 't', 0xf9, 0x4e, 0x40, 0x61, 'b', 0xf5}; /* t: 25.0 */
static const uint8_t P2[] = {0xa0};
static const uint8_t P3[] = {0xa1, 0x61, 'x'}; /* truncated: refused */

typedef struct fev {
    const char *type;
    uint32_t source;
    const uint8_t *p;
    size_t len;
} fev_t;

static const fev_t EVENTS[] = {
    {"m", 1, P0, sizeof P0},     {"m", 2, P1, sizeof P1},   {"temp", 3, P0, sizeof P0},
    {"m", 1, P1, sizeof P1},     {"x", 26, P2, sizeof P2},  {"hb", 5, P2, sizeof P2},
    {"alarm", 0, P0, sizeof P0}, {"m", 1, P3, sizeof P3},   {"m", 1, P0, sizeof P0},
};

static void feed(cl_eca_t *e, fz_t *f, int64_t t0)
{
    for (size_t i = 0; i < sizeof EVENTS / sizeof EVENTS[0]; i++) {
        cl_eca_event_t ev = {EVENTS[i].type, strlen(EVENTS[i].type), EVENTS[i].source,
                             t0 + (int64_t)i,  EVENTS[i].p,           EVENTS[i].len};
        f->actions = 0;
        cl_status_t st = cl_eca_event(e, &ev);
        CHECK(st == CL_OK || (st == CL_ERR_BAD_INPUT && EVENTS[i].p == P3));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[CL_ECA_WHY_MAX];
    const char *name = NULL;
    size_t name_len = 0;
    why[0] = '\0';
    cl_status_t st = cl_eca_check_rule(data, size, &name, &name_len, why, sizeof why);

    fz_t f;
    memset(&f, 0, sizeof f);
    cl_eca_host_t h;
    memset(&h, 0, sizeof h);
    h.arg = &f;
    h.group_members = f_members;
    h.in_group = f_in_group;
    h.action = f_action;
    h.derived = f_derived;
    h.js_env.arg = &f;
    h.js_env.now_ms = f_now;
    h.js_env.rand = f_rand;
    h.js_limits.heap_bytes = 0; /* the default: check_rule compiles with it too */
    h.js_limits.budget_ms = 2;
    h.js_limits.max_emit = 4;
    h.js_limits.max_state = 512;
    cl_eca_t *e = NULL;
    CHECK(cl_eca_create(&e, &h) == CL_OK);

    char why2[CL_ECA_WHY_MAX];
    why2[0] = '\0';
    cl_status_t st2 = cl_eca_put_rule(e, data, size, true, 0, why2, sizeof why2);
    if (st != CL_OK) {
        CHECK(why[0] != '\0');
        /* put_rule refuses it too (it may also run out of sandbox memory) */
        CHECK(st2 != CL_OK && why2[0] != '\0');
        cl_eca_free(e);
        return 0;
    }
    CHECK(name != NULL && name >= (const char *)data && name_len >= 1 && name_len <= 64 &&
          name + name_len <= (const char *)data + size);
    if (st2 != CL_OK) { /* only a sandbox that cannot be created (limits) */
        CHECK(st2 != CL_ERR_BAD_INPUT);
        cl_eca_free(e);
        return 0;
    }
    memcpy(f.name, name, name_len);
    f.name[name_len] = '\0';
    size_t rules;
    cl_eca_stats(e, &rules, NULL);
    CHECK(rules == 1);

    feed(e, &f, 1000);
    for (int64_t t = 0; t <= 400000; t += 20000) {
        f.now = t;
        f.actions = 0;
        CHECK(cl_eca_tick(e, t) == CL_OK);
    }
    CHECK(cl_eca_take_effects(e, on_state, on_failed, &f) == CL_OK);

    /* dry runs: nothing reaches the host */
    size_t calls = f.host_calls;
    for (size_t i = 0; i < sizeof EVENTS / sizeof EVENTS[0]; i++) {
        cl_eca_event_t ev = {EVENTS[i].type, strlen(EVENTS[i].type), EVENTS[i].source, 5,
                             EVENTS[i].p,    EVENTS[i].len};
        bool matched;
        cl_status_t ds = cl_eca_dry_run(e, data, size, &ev, d_action, d_derived, &f, &matched,
                                        why, sizeof why);
        CHECK(ds == CL_OK || why[0] != '\0'); /* a failure has a reason */
    }
    CHECK(f.host_calls == calls);

    /* enable (clears a failure), replace by itself, run again */
    CHECK(cl_eca_set_enabled(e, f.name, name_len, true) == CL_OK);
    feed(e, &f, 500000);
    CHECK(cl_eca_put_rule(e, data, size, true, 500000, why, sizeof why) == CL_OK);
    CHECK(cl_eca_set_enabled(e, f.name, name_len, false) == CL_OK);
    feed(e, &f, 600000);
    CHECK(cl_eca_set_enabled(e, f.name, name_len, true) == CL_OK);
    feed(e, &f, 700000);
    CHECK(cl_eca_tick(e, 10000000) == CL_OK);
    cl_eca_rule_info_t info;
    CHECK(cl_eca_rule_info(e, f.name, name_len, &info) == CL_OK);
    CHECK(info.mem > 0);
    CHECK(cl_eca_take_effects(e, on_state, on_failed, &f) == CL_OK);
    CHECK(cl_eca_del_rule(e, f.name, name_len) == CL_OK);
    cl_eca_stats(e, &rules, NULL);
    CHECK(rules == 0);
    cl_eca_free(e);
    return 0;
}
