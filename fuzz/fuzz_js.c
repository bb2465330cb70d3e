/*
 * fuzz_js.c - libFuzzer harness for the ECMAScript sandbox (core/js/js.h):
 * compilation of arbitrary conditions and scripts, their evaluation on
 * fixed events, emit, state export and import, the limits, and recovery
 * from a fatal error.
 *
 * Input: condition NUL script [NUL flags]. An empty condition or script is
 * absent (both empty: nothing to do). flags[0] bit 0: inject a fatal error
 * between the calls; bit 1: set state from the exported one before the
 * second round.
 *
 * The sandbox has small limits: a 96 KiB heap (Duktape itself takes about
 * 62 KiB and compiling plus the lockdown peak near 70 KiB, so 64 KiB would
 * not even create a sandbox; with 96 KiB a rule has ~30 KiB and allocation
 * failures happen everywhere), a 5 ms budget counted in instructions (no
 * clock: a run replays the same way), 4 emits, 1 KiB of state.
 *
 * Invariants checked with abort():
 * - every status is one the API documents, and a failure has a reason that
 *   is NUL-terminated inside CL_JS_WHY_MAX;
 * - a failed condition reports false;
 * - every emit has an action of 1..64 bytes, a valid target and properties
 *   that are one well-formed CBOR map; at most max_emit per run;
 * - exported state is one CBOR map of at most max_state bytes; importing it
 *   again succeeds and exports the same bytes; a failed run leaves state
 *   unchanged;
 * - the heap stays within its cap.
 * Everything is freed (LeakSanitizer checks it).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "js.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define HEAP (96u * 1024u)
#define MAX_EMIT 4
#define MAX_STATE 1024

typedef struct fz {
    unsigned emits;
} fz_t;

static int64_t f_now(void *arg)
{
    (void)arg;
    return 1700000000000;
}

static cl_status_t f_rand(void *arg, uint8_t *out, size_t len)
{
    (void)arg;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)(i * 7u + 1u);
    return CL_OK;
}

static bool map_ok(const uint8_t *p, size_t len)
{
    cl_cbor_dec_t d;
    size_t pairs, count;
    if (len == 0 || cl_cbor_validate_seq(p, len, &count) != CL_OK || count != 1)
        return false;
    cl_cbor_dec_init(&d, p, len);
    return cl_cbor_dec_map(&d, &pairs) == CL_OK;
}

static cl_status_t f_emit(void *arg, const cl_js_emit_t *e)
{
    fz_t *f = arg;
    f->emits++;
    CHECK(f->emits <= MAX_EMIT);
    CHECK(e->action_len >= 1 && e->action_len <= CL_JS_NAME_MAX);
    if (e->target_is_group)
        CHECK(e->target_group_len >= 1 && e->target_group_len <= CL_JS_NAME_MAX);
    else
        CHECK(e->target_id >= 1);
    CHECK(map_ok(e->props, e->props_len));
    CHECK(e->props_len <= CL_JS_MAX_EMIT_PROPS);
    /* a refusal now and then: the run must fail with it */
    return e->action_len == 7 && memcmp(e->action, "refused", 7) == 0 ? CL_ERR_FULL : CL_OK;
}

static void check_why(cl_status_t st, const char *why)
{
    CHECK(memchr(why, '\0', CL_JS_WHY_MAX) != NULL);
    if (st != CL_OK)
        CHECK(why[0] != '\0');
    CHECK(st == CL_OK || st == CL_ERR_BAD_INPUT || st == CL_ERR_LIMIT || st == CL_ERR_STATE ||
          st == CL_ERR_FULL);
}

/* Exports state and checks it; returns its length (copied into out). */
static size_t export_state(cl_js_t *js, uint8_t *out)
{
    size_t len = 0;
    CHECK(cl_js_state_get(js, out, MAX_STATE, &len) == CL_OK);
    CHECK(len <= MAX_STATE && map_ok(out, len));
    return len;
}

/* Fixed events: several shapes, so the event cache sees changes of keys and values. */
static const uint8_t ev0[] = {
    /* {"temp": 21.5, "hum": 40, "mode": "auto", "list": [1, "x"], "n": {"a": true}} */
    0xa5, 0x64, 't',  'e',  'm',  'p', 0xf9, 0x4d, 0x60, 0x63, 'h', 'u',  'm', 0x18,
    0x28, 0x64, 'm',  'o',  'd',  'e', 0x64, 'a',  'u',  't',  'o', 0x64, 'l', 'i',
    's',  't',  0x82, 0x01, 0x61, 'x', 0x61, 'n',  0xa1, 0x61, 'a', 0xf5};
static const uint8_t ev1[] = {
    /* {"temp": -3, "hum": 99, "mode": "", "list": [], "n": {}} */
    0xa5, 0x64, 't', 'e', 'm',  'p',  0x22, 0x63, 'h', 'u', 'm',  0x18, 0x63, 0x64,
    'm',  'o',  'd', 'e', 0x60, 0x64, 'l',  'i',  's', 't', 0x80, 0x61, 'n',  0xa0};
static const uint8_t ev2[] = {
    /* {"b": h'0102', "t": 1(5), "s": "été"} */
    0xa3, 0x61, 'b', 0x42, 0x01, 0x02, 0x61, 't',  0xc1,
    0x05, 0x61, 's', 0x65, 0xc3, 0xa9, 't',  0xc3, 0xa9};

static void round_of_calls(cl_js_t *js, uint8_t *state, size_t *state_len)
{
    static const struct {
        const uint8_t *p;
        size_t len;
        uint32_t source;
    } evs[] = {
        {ev0, sizeof ev0, 3}, {ev1, sizeof ev1, 3}, {ev0, sizeof ev0, 7}, {ev2, sizeof ev2, 1}};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++) {
        cl_js_event_t ev = {"reading", 7,         evs[i].source, 1700000000000 + (int64_t)i,
                            evs[i].p,  evs[i].len};
        char why[CL_JS_WHY_MAX];
        bool r = true;
        memset(why, 'x', sizeof why);
        why[0] = '\0';
        cl_status_t st = cl_js_cond(js, &ev, &r, why, sizeof why);
        check_why(st, why);
        if (st != CL_OK)
            CHECK(!r);
        CHECK(cl_js_heap_used(js) <= HEAP);

        fz_t f = {0};
        bool changed = false;
        why[0] = '\0';
        st = cl_js_run(js, &ev, f_emit, &f, &changed, why, sizeof why);
        check_why(st, why);
        CHECK(cl_js_heap_used(js) <= HEAP);
        uint8_t now[MAX_STATE];
        size_t now_len = export_state(js, now);
        if (st != CL_OK || !changed) {
            /* a failed or state-neutral run: state as before */
            CHECK(now_len == *state_len && memcmp(now, state, now_len) == 0);
        }
        memcpy(state, now, now_len);
        *state_len = now_len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *z1 = memchr(data, '\0', size);
    size_t cond_len = z1 != NULL ? (size_t)(z1 - data) : size;
    const uint8_t *script = z1 != NULL ? z1 + 1 : NULL;
    size_t rest = z1 != NULL ? size - cond_len - 1 : 0;
    const uint8_t *z2 = script != NULL ? memchr(script, '\0', rest) : NULL;
    size_t script_len = z2 != NULL ? (size_t)(z2 - script) : rest;
    uint8_t flags = z2 != NULL && (size_t)(z2 - data) + 1 < size ? z2[1] : 0;
    if (cond_len == 0 && script_len == 0)
        return 0;

    cl_js_env_t env = {NULL, f_now, NULL, f_rand};
    cl_js_limits_t lim = {HEAP, 5, MAX_EMIT, MAX_STATE};
    cl_js_t *js = NULL;
    char why[CL_JS_WHY_MAX];
    why[0] = '\0';
    cl_status_t st =
        cl_js_create(&js, &env, &lim, cond_len ? (const char *)data : NULL, cond_len,
                     script_len ? (const char *)script : NULL, script_len, why, sizeof why);
    check_why(st, why);
    if (st != CL_OK) {
        CHECK(js == NULL);
        return 0;
    }
    CHECK(cl_js_heap_used(js) <= HEAP);

    uint8_t state[MAX_STATE];
    size_t state_len = export_state(js, state);
    CHECK(state_len == 1 && state[0] == 0xa0); /* {} */
    round_of_calls(js, state, &state_len);

    if (flags & 1) {
        st = cl_js_inject_fatal(js, why, sizeof why);
        CHECK(st == CL_ERR_STATE);
        CHECK(cl_js_heap_used(js) == 0);
        uint8_t after[MAX_STATE];
        size_t after_len = export_state(js, after); /* survives the heap */
        CHECK(after_len == state_len && memcmp(after, state, after_len) == 0);
    }
    if (flags & 2) {
        /* import what was exported: accepted, and exported again the same */
        st = cl_js_state_set(js, state, state_len);
        CHECK(st == CL_OK || st == CL_ERR_LIMIT || st == CL_ERR_STATE || st == CL_ERR_FULL);
        uint8_t again[MAX_STATE];
        size_t again_len = export_state(js, again);
        CHECK(again_len == state_len && memcmp(again, state, again_len) == 0);
    }
    round_of_calls(js, state, &state_len);
    cl_js_free(js);
    return 0;
}
