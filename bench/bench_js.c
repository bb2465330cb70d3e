/*
 * bench_js.c - the ECMAScript sandbox (core/js/js.h): condition evaluations
 * per second on one core, with the cost of calling a compiled Duktape
 * function directly through the C API measured in the same run as the
 * floor, plus the memory and creation time of a sandbox.
 *
 * Cases (each run round by round, --reps rounds of >= --min-time s each,
 * after a warm-up; median and min..max over rounds):
 *   call      a raw Duktape heap (same build, no sandbox): push a compiled
 *             function(t) { return t > 21; } by heap pointer, push a number,
 *             duk_pcall, read the boolean, pop. No event, no budget: the
 *             floor of any JS evaluation through Duktape's C API;
 *   cond      cl_js_cond with "event.properties.temp > 21 && event.source
 *             != 3" on events of 3 properties ({"temp": float, "hum": int,
 *             "mode": text}, ~25 bytes, EVENTS of them cycled through): the
 *             budget armed (one clock read), the event converted into a
 *             frozen object, the call, the result;
 *   cond_true cl_js_cond with "true" on the same events: what the sandbox
 *             costs around any condition (the difference to cond is the
 *             evaluation of the expression itself);
 *   script    cl_js_run with "if (event.properties.temp > 21)
 *             emit('heat', event.source, {t: event.properties.temp});" (about
 *             half the events emit; the callback only counts), state
 *             exported and compared after each run.
 *
 * Memory: cl_js_heap_used of a fresh sandbox (condition only, script only),
 * after the timed cases, and the time to create one (compile + lockdown).
 * The clock for the budget is CLOCK_MONOTONIC through clock_gettime (vDSO).
 */
#define _GNU_SOURCE /* sched_setaffinity */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "cloister/cbor.h"
#include "duktape.h"
#include "js.h"

#ifndef CL_BENCH_BUILD
#define CL_BENCH_BUILD "unknown build"
#endif

#define EVENTS 1024
#define EV_MAX 64
#define MAX_REPS 64
#define BATCH 1024

#define COND "event.properties.temp > 21 && event.source != 3"
#define SCRIPT                                                                                     \
    "if (event.properties.temp > 21) emit('heat', event.source, {t: event.properties.temp});"

typedef struct options {
    double min_time, warmup;
    int reps, cpu;
} options_t;

typedef struct event {
    uint8_t props[EV_MAX];
    size_t props_len;
    uint32_t source;
} event_t;

enum { C_CALL, C_COND, C_TRUE, C_SCRIPT, C_COUNT };
static const char *const case_names[C_COUNT] = {"call", "cond", "cond_true", "script"};

static event_t g_ev[EVENTS];
static unsigned long long g_sink, g_emits;
static uint64_t g_rng = 0x9e3779b97f4a7c15u;

/* the raw Duktape heap of the "call" case */
static duk_context *g_duk;
static void *g_fn;
static cl_js_t *g_js[C_COUNT];

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}

static void die(const char *what, int st)
{
    fprintf(stderr, "bench_js: %s failed (%d %s)\n", what, st,
            st <= 0 ? cl_status_str((cl_status_t)st) : "");
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t e_now(void *arg)
{
    (void)arg;
    return 1700000000000;
}

static uint64_t e_clock(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static cl_status_t e_rand(void *arg, uint8_t *out, size_t len)
{
    (void)arg;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)rnd();
    return CL_OK;
}

static cl_status_t e_emit(void *arg, const cl_js_emit_t *e)
{
    (void)arg;
    g_emits++;
    g_sink += e->props_len + e->target_id;
    return CL_OK;
}

/* Duktape's allocator for the raw heap: plain malloc. */
static void *r_alloc(void *u, duk_size_t n)
{
    (void)u;
    return malloc(n);
}

static void *r_realloc(void *u, void *p, duk_size_t n)
{
    (void)u;
    return realloc(p, n);
}

static void r_free(void *u, void *p)
{
    (void)u;
    free(p);
}

static void r_fatal(void *u, const char *msg)
{
    (void)u;
    fprintf(stderr, "bench_js: Duktape fatal error: %s\n", msg);
    exit(1);
}

static void make_events(void)
{
    static const char *const modes[] = {"auto", "manual", "eco"};
    for (size_t i = 0; i < EVENTS; i++) {
        cl_cbor_enc_t e;
        cl_cbor_enc_init(&e, g_ev[i].props, EV_MAX);
        cl_cbor_enc_map(&e, 3);
        cl_cbor_enc_tstr_z(&e, "temp");
        cl_cbor_enc_double(&e, 15.0 + (double)(rnd() % 130) / 10.0); /* 15.0 .. 27.9 */
        cl_cbor_enc_tstr_z(&e, "hum");
        cl_cbor_enc_uint(&e, 30 + rnd() % 50);
        cl_cbor_enc_tstr_z(&e, "mode");
        cl_cbor_enc_tstr_z(&e, modes[rnd() % 3]);
        if (cl_cbor_enc_finish(&e, &g_ev[i].props_len) != CL_OK)
            die("encoding an event", 1);
        g_ev[i].source = 1 + rnd() % 8;
    }
}

static cl_js_t *make_sandbox(const char *cond, const char *script)
{
    cl_js_env_t env = {NULL, e_now, e_clock, e_rand};
    cl_js_limits_t lim = {0, 0, 0, 0};
    cl_js_t *js;
    char why[CL_JS_WHY_MAX];
    cl_status_t st = cl_js_create(&js, &env, &lim, cond, cond ? strlen(cond) : 0, script,
                                  script ? strlen(script) : 0, why, sizeof why);
    if (st != CL_OK) {
        fprintf(stderr, "bench_js: cl_js_create: %s\n", why);
        exit(1);
    }
    return js;
}

static void batch(int c, size_t *pos)
{
    char why[CL_JS_WHY_MAX];
    size_t p = *pos;
    for (int i = 0; i < BATCH; i++, p = (p + 1) % EVENTS) {
        const event_t *ev = &g_ev[p];
        if (c == C_CALL) {
            duk_push_heapptr(g_duk, g_fn);
            duk_push_number(g_duk, 20.0 + (double)(p % 4));
            if (duk_pcall(g_duk, 1) != DUK_EXEC_SUCCESS)
                die("duk_pcall", 1);
            g_sink += (unsigned)duk_get_boolean(g_duk, -1);
            duk_pop(g_duk);
            continue;
        }
        cl_js_event_t jev = {"reading",    7, ev->source, 1700000000000 + (int64_t)p, ev->props,
                             ev->props_len};
        cl_status_t st;
        if (c == C_SCRIPT) {
            bool changed;
            st = cl_js_run(g_js[c], &jev, e_emit, NULL, &changed, why, sizeof why);
            g_sink += changed;
        } else {
            bool r;
            st = cl_js_cond(g_js[c], &jev, &r, why, sizeof why);
            g_sink += r;
        }
        if (st != CL_OK) {
            fprintf(stderr, "bench_js: %s: %s\n", case_names[c], why);
            exit(1);
        }
    }
    *pos = p;
}

/* Runs batches for >= t seconds; returns ns per evaluation. */
static double run_for(int c, double t, unsigned long long *evals)
{
    size_t pos = 0;
    unsigned long long n = 0;
    double start = now_s(), el;
    do {
        batch(c, &pos);
        n += BATCH;
        el = now_s() - start;
    } while (el < t);
    if (evals != NULL)
        *evals += n;
    return el * 1e9 / (double)n;
}

static void usage(void)
{
    printf("usage: bench_js [--min-time S] [--reps N] [--warmup S] [--cpu N]\n");
}

static void parse_args(options_t *o, int argc, char **argv)
{
    o->min_time = 0.3;
    o->warmup = 0.2;
    o->reps = 5;
    o->cpu = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--min-time") == 0 && v) {
            o->min_time = atof(v);
            i++;
        } else if (strcmp(a, "--warmup") == 0 && v) {
            o->warmup = atof(v);
            i++;
        } else if (strcmp(a, "--reps") == 0 && v) {
            o->reps = atoi(v);
            i++;
        } else if (strcmp(a, "--cpu") == 0 && v) {
            o->cpu = atoi(v);
            i++;
        } else {
            usage();
            exit(strcmp(a, "--help") == 0 ? 0 : 2);
        }
    }
    if (o->reps < 1 || o->reps > MAX_REPS || o->min_time <= 0) {
        usage();
        exit(2);
    }
}

static double median(const double *v, int n)
{
    double s[MAX_REPS];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double vmax(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

int main(int argc, char **argv)
{
    options_t o;
    char model[128], pinned[64];
    memset(&o, 0, sizeof o);
    parse_args(&o, argc, argv);

    snprintf(pinned, sizeof pinned, "not pinned");
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) == 0)
            snprintf(pinned, sizeof pinned, "pinned to CPU %d", o.cpu);
        else
            snprintf(pinned, sizeof pinned, "not pinned (%s)", strerror(errno));
    }
    make_events();

    /* memory and creation time of a sandbox */
    const int n_create = 50;
    double t0 = now_s();
    size_t heap_cond = 0;
    for (int i = 0; i < n_create; i++) {
        cl_js_t *js = make_sandbox(COND, NULL);
        heap_cond = cl_js_heap_used(js);
        cl_js_free(js);
    }
    double create_us = (now_s() - t0) * 1e6 / n_create;
    cl_js_t *tmp = make_sandbox(NULL, SCRIPT);
    size_t heap_script = cl_js_heap_used(tmp);
    cl_js_free(tmp);

    /* the raw heap and the sandboxes */
    g_duk = duk_create_heap(r_alloc, r_realloc, r_free, NULL, r_fatal);
    if (g_duk == NULL)
        die("duk_create_heap", 1);
    duk_push_string(g_duk, "function (t) { return t > 21; }");
    duk_push_string(g_duk, "call");
    duk_compile(g_duk, DUK_COMPILE_FUNCTION);
    g_fn = duk_get_heapptr(g_duk, -1); /* stays on the value stack: reachable */
    g_js[C_COND] = make_sandbox(COND, NULL);
    g_js[C_TRUE] = make_sandbox("true", NULL);
    g_js[C_SCRIPT] = make_sandbox(NULL, SCRIPT);

    for (int c = 0; c < C_COUNT; c++)
        run_for(c, o.warmup / C_COUNT, NULL);
    double ns[C_COUNT][MAX_REPS];
    unsigned long long evals[C_COUNT] = {0};
    unsigned long long emits0 = g_emits;
    for (int r = 0; r < o.reps; r++)
        for (int c = 0; c < C_COUNT; c++)
            ns[c][r] = run_for(c, o.min_time, &evals[c]);

    bench_cpu_model(model, sizeof model);
    printf("bench_js: ECMAScript sandbox (Duktape %ld.%ld.%ld), %s\n", (long)DUK_VERSION / 10000,
           (long)DUK_VERSION / 100 % 100, (long)DUK_VERSION % 100, CL_BENCH_BUILD);
    printf("cpu: %s, %s; %d rounds of >= %.2f s per case, median [min..max]\n", model, pinned,
           o.reps, o.min_time);
    printf("condition: %s\n", COND);
    printf("events: %d of 3 properties {temp: float, hum: int, mode: text}\n\n", EVENTS);
    printf("%-10s %14s %24s %14s\n", "case", "ns/eval", "[min..max]", "evals/s");
    for (int c = 0; c < C_COUNT; c++) {
        double m = median(ns[c], o.reps);
        printf("%-10s %14.1f %11.1f..%-11.1f %14.0f\n", case_names[c], m, vmin(ns[c], o.reps),
               vmax(ns[c], o.reps), 1e9 / m);
    }
    double cond = median(ns[C_COND], o.reps), call = median(ns[C_CALL], o.reps);
    printf("\ncond / call: %.1fx; cond - cond_true (the expression itself): %.1f ns\n", cond / call,
           cond - median(ns[C_TRUE], o.reps));
    printf("script: %.2f emits per run\n",
           evals[C_SCRIPT] ? (double)(g_emits - emits0) / (double)evals[C_SCRIPT] : 0.0);
    printf("memory: %zu bytes per sandbox with the condition, %zu with the script "
           "(fresh); %zu / %zu / %zu after the runs (cond / cond_true / script)\n",
           heap_cond, heap_script, cl_js_heap_used(g_js[C_COND]), cl_js_heap_used(g_js[C_TRUE]),
           cl_js_heap_used(g_js[C_SCRIPT]));
    printf("creation: %.0f us per sandbox (heap, compile, lockdown)\n", create_us);
    printf("target: >= 1000000 conditions/s per core: %s\n", 1e9 / cond >= 1e6 ? "met" : "NOT met");
    for (int c = 0; c < C_COUNT; c++)
        cl_js_free(g_js[c]);
    duk_destroy_heap(g_duk);
    return g_sink == 42 ? 3 : 0; /* g_sink keeps the work observable */
}
