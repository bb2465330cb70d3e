/*
 * bench_eca.c - the ECA engine (core/engine/eca.h): events per second
 * through matching and action emission on one core, with the cost of merely
 * reading each event's CBOR properties measured in the same run as the
 * floor, plus memory per rule and (with the JS sandbox) JS conditions per
 * second through the engine.
 *
 * The rule set (default 1,000 rules over 100 event types "t0".."t99", so
 * ~10 candidate rules per event): rule i triggers on t(i % 100), has a
 * source filter (one of: a client id, "*", a list of three ids, "@g<k>"),
 * one or two declarative conditions (temp > x, mode == "auto" or
 * "loc.room" in [...], mixed int/float values) and one "then" action to a
 * client with a small static properties map. The host's action callback
 * only counts; its group test is a table lookup.
 *
 * The events: EVENTS pre-encoded events (random type of the 100, source
 * 1..50, properties {"temp": float or int, "hum": int, "mode": text,
 * "loc": {"room": text}}, ~50 bytes) cycled through; building them is not
 * timed.
 *
 * Cases (each run round by round, --reps rounds of >= --min-time s each,
 * after a warm-up; median and min..max over rounds):
 *   floor     for each event: walk its properties map once (keys read,
 *             values skipped and validated with cl_cbor_dec_skip), which is
 *             what any consumer of the event must at least do;
 *   engine    cl_eca_event for each event (index lookup, property index,
 *             source filters, conditions, template copy, action callback);
 *   js_if     one rule whose only condition is "if":
 *             "event.properties.temp > 20" on its own type: JS condition
 *             evaluations per second through the engine, with the same
 *             4-property events and with events without properties (the
 *             sandbox converts the whole event into a frozen object per
 *             call, so the properties dominate its cost).
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
#include "eca.h"

#ifndef CL_BENCH_BUILD
#define CL_BENCH_BUILD "unknown build"
#endif

#define EVENTS 4096
#define EV_MAX 96
#define MAX_REPS 64
#define SOURCES 50
#define GROUPS 8

typedef struct options {
    double min_time, warmup;
    int reps, cpu;
    unsigned rules, types;
    int no_js;
} options_t;

typedef struct event {
    char type[16];
    size_t type_len;
    uint32_t source;
    uint8_t props[EV_MAX];
    size_t props_len;
} event_t;

static event_t g_ev[EVENTS];
static event_t g_jev[EVENTS];
static event_t g_jev0[EVENTS]; /* the same without properties */
static unsigned long long g_actions, g_sink;
static uint64_t g_rng = 0x9e3779b97f4a7c15u;

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}

static void die(const char *what, int st)
{
    fprintf(stderr, "bench_eca: %s failed (%d %s)\n", what, st, cl_status_str((cl_status_t)st));
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the host ---- */

static size_t h_members(void *arg, const char *g, size_t len, uint32_t *out, size_t max)
{
    (void)arg;
    size_t n = 0;
    if (len != 2 || g[0] != 'g')
        return 0;
    for (uint32_t c = 1; c <= SOURCES && n < max; c++)
        if (c % GROUPS == (uint32_t)(g[1] - '0'))
            out[n++] = c;
    return n;
}

static bool h_in_group(void *arg, uint32_t client, const char *g, size_t len)
{
    (void)arg;
    return len == 2 && g[0] == 'g' && client % GROUPS == (uint32_t)(g[1] - '0');
}

static cl_status_t h_action(void *arg, const cl_eca_action_t *a, char *why, size_t why_size)
{
    (void)arg;
    (void)why;
    (void)why_size;
    g_actions++;
    g_sink += a->target + a->props_len;
    return CL_OK;
}

static int64_t h_now(void *arg)
{
    (void)arg;
    return 0;
}

static cl_status_t h_rand(void *arg, uint8_t *out, size_t len)
{
    (void)arg;
    for (size_t i = 0; i < len; i++)
        out[i] = (uint8_t)rnd();
    return CL_OK;
}

/* ---- rules and events ---- */

static size_t make_rule(unsigned i, unsigned types, uint8_t *out, size_t size)
{
    cl_cbor_enc_t e;
    char name[32], type[16];
    size_t len;
    snprintf(name, sizeof name, "rule-%05u", i);
    snprintf(type, sizeof type, "t%u", i % types);
    unsigned conds = 1 + (i / types) % 2;
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_map(&e, 4);
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr_z(&e, name);
    cl_cbor_enc_tstr_z(&e, "on");
    cl_cbor_enc_array(&e, 1);
    cl_cbor_enc_tstr_z(&e, type);
    cl_cbor_enc_tstr_z(&e, "when");
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "source");
    switch (i % 4) {
    case 0:
        cl_cbor_enc_uint(&e, 1 + rnd() % SOURCES);
        break;
    case 1:
        cl_cbor_enc_tstr_z(&e, "*");
        break;
    case 2:
        cl_cbor_enc_array(&e, 3);
        for (int k = 0; k < 3; k++)
            cl_cbor_enc_uint(&e, 1 + rnd() % SOURCES);
        break;
    default: {
        char g[4];
        snprintf(g, sizeof g, "@g%u", rnd() % GROUPS);
        cl_cbor_enc_tstr_z(&e, g);
        break;
    }
    }
    cl_cbor_enc_tstr_z(&e, "all");
    cl_cbor_enc_array(&e, conds);
    /* temp > x, x an int or a float (documents come from JSON) */
    cl_cbor_enc_map(&e, 3);
    cl_cbor_enc_tstr_z(&e, "prop");
    cl_cbor_enc_tstr_z(&e, "temp");
    cl_cbor_enc_tstr_z(&e, "op");
    cl_cbor_enc_tstr_z(&e, "gt");
    cl_cbor_enc_tstr_z(&e, "value");
    if (i % 3 == 0)
        cl_cbor_enc_uint(&e, 15 + rnd() % 10);
    else
        cl_cbor_enc_double(&e, 15.5 + rnd() % 10);
    if (conds == 2) {
        cl_cbor_enc_map(&e, 3);
        cl_cbor_enc_tstr_z(&e, "prop");
        if (i % 2) {
            cl_cbor_enc_tstr_z(&e, "mode");
            cl_cbor_enc_tstr_z(&e, "op");
            cl_cbor_enc_tstr_z(&e, "eq");
            cl_cbor_enc_tstr_z(&e, "value");
            cl_cbor_enc_tstr_z(&e, "auto");
        } else {
            cl_cbor_enc_tstr_z(&e, "loc.room");
            cl_cbor_enc_tstr_z(&e, "op");
            cl_cbor_enc_tstr_z(&e, "in");
            cl_cbor_enc_tstr_z(&e, "value");
            cl_cbor_enc_array(&e, 2);
            cl_cbor_enc_tstr_z(&e, "kitchen");
            cl_cbor_enc_tstr_z(&e, "hall");
        }
    }
    cl_cbor_enc_tstr_z(&e, "then");
    cl_cbor_enc_array(&e, 1);
    cl_cbor_enc_map(&e, 3);
    cl_cbor_enc_tstr_z(&e, "action");
    cl_cbor_enc_tstr_z(&e, "heat");
    cl_cbor_enc_tstr_z(&e, "target");
    cl_cbor_enc_uint(&e, 1 + rnd() % SOURCES);
    cl_cbor_enc_tstr_z(&e, "properties");
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, "level");
    cl_cbor_enc_uint(&e, i % 5);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK)
        die("encoding a rule", 1);
    return len;
}

static void make_events(event_t *evs, unsigned types, const char *fixed_type)
{
    static const char *const modes[] = {"auto", "manual", "off"};
    static const char *const rooms[] = {"kitchen", "hall", "bed", "bath"};
    for (size_t i = 0; i < EVENTS; i++) {
        event_t *v = &evs[i];
        cl_cbor_enc_t e;
        if (fixed_type != NULL)
            snprintf(v->type, sizeof v->type, "%s", fixed_type);
        else
            snprintf(v->type, sizeof v->type, "t%u", rnd() % types);
        v->type_len = strlen(v->type);
        v->source = 1 + rnd() % SOURCES;
        cl_cbor_enc_init(&e, v->props, sizeof v->props);
        cl_cbor_enc_map(&e, 4);
        cl_cbor_enc_tstr_z(&e, "temp");
        if (i % 2)
            cl_cbor_enc_double(&e, 14.5 + rnd() % 20);
        else
            cl_cbor_enc_uint(&e, 14 + rnd() % 20);
        cl_cbor_enc_tstr_z(&e, "hum");
        cl_cbor_enc_uint(&e, 30 + rnd() % 50);
        cl_cbor_enc_tstr_z(&e, "mode");
        cl_cbor_enc_tstr_z(&e, modes[rnd() % 3]);
        cl_cbor_enc_tstr_z(&e, "loc");
        cl_cbor_enc_map(&e, 1);
        cl_cbor_enc_tstr_z(&e, "room");
        cl_cbor_enc_tstr_z(&e, rooms[rnd() % 4]);
        if (cl_cbor_enc_finish(&e, &v->props_len) != CL_OK)
            die("encoding an event", 1);
    }
}

/* ---- cases ---- */

typedef enum kind { K_FLOOR, K_ENGINE, K_JS } kind_t;

typedef struct bcase {
    const char *name;
    kind_t kind;
    cl_eca_t *eca;
    const event_t *evs;
    double ns[MAX_REPS]; /* per event */
    unsigned long long actions, events;
} bcase_t;

/* The floor: read every event's properties once. */
static void floor_batch(const event_t *evs)
{
    for (size_t i = 0; i < EVENTS; i++) {
        cl_cbor_dec_t d;
        size_t pairs;
        cl_cbor_dec_init(&d, evs[i].props, evs[i].props_len);
        if (cl_cbor_dec_map(&d, &pairs) != CL_OK)
            die("floor: map", 1);
        for (size_t k = 0; k < pairs; k++) {
            const char *key;
            size_t kl;
            if (cl_cbor_dec_tstr(&d, &key, &kl) != CL_OK || cl_cbor_dec_skip(&d) != CL_OK)
                die("floor: pair", 1);
            g_sink += kl;
        }
        g_sink += cl_cbor_dec_at_end(&d);
    }
}

static void engine_batch(cl_eca_t *eca, const event_t *evs)
{
    for (size_t i = 0; i < EVENTS; i++) {
        cl_eca_event_t ev = {evs[i].type,     evs[i].type_len, evs[i].source, (int64_t)i,
                             evs[i].props,    evs[i].props_len};
        cl_status_t st = cl_eca_event(eca, &ev);
        if (st != CL_OK)
            die("cl_eca_event", st);
    }
}

/* Runs batches for >= t seconds; returns ns per event. */
static double run_for(bcase_t *c, double t)
{
    unsigned long long batches = 0, a0 = g_actions;
    double start = now_s(), el;
    do {
        if (c->kind == K_FLOOR)
            floor_batch(c->evs);
        else
            engine_batch(c->eca, c->evs);
        batches++;
        el = now_s() - start;
    } while (el < t);
    c->actions += g_actions - a0;
    c->events += batches * EVENTS;
    return el * 1e9 / (double)(batches * EVENTS);
}

static void usage(void)
{
    printf("usage: bench_eca [--min-time S] [--reps N] [--warmup S] [--cpu N] [--rules N] "
           "[--types N] [--no-js]\n");
}

static void parse_args(options_t *o, int argc, char **argv)
{
    o->min_time = 0.3;
    o->warmup = 0.2;
    o->reps = 5;
    o->cpu = 0;
    o->rules = 1000;
    o->types = 100;
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
        } else if (strcmp(a, "--rules") == 0 && v) {
            o->rules = (unsigned)atoi(v);
            i++;
        } else if (strcmp(a, "--types") == 0 && v) {
            o->types = (unsigned)atoi(v);
            i++;
        } else if (strcmp(a, "--no-js") == 0) {
            o->no_js = 1;
        } else {
            usage();
            exit(strcmp(a, "--help") == 0 ? 0 : 2);
        }
    }
    if (o->reps < 1 || o->reps > MAX_REPS || o->types < 1 || o->types > 100000 ||
        o->rules > CL_ECA_MAX_RULES || o->min_time <= 0) {
        usage();
        exit(2);
    }
}

static cl_eca_t *new_engine(void)
{
    cl_eca_host_t h;
    cl_eca_t *e;
    memset(&h, 0, sizeof h);
    h.group_members = h_members;
    h.in_group = h_in_group;
    h.action = h_action;
    h.js_env.now_ms = h_now;
    h.js_env.rand = h_rand;
    cl_status_t st = cl_eca_create(&e, &h);
    if (st != CL_OK)
        die("cl_eca_create", st);
    return e;
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
    char model[128], pinned[64], why[CL_ECA_WHY_MAX];
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

    /* the engine with the declarative rule set; memory per rule from cl_eca_stats */
    cl_eca_t *eca = new_engine();
    size_t empty_bytes, n_rules, bytes, doc_bytes = 0;
    cl_eca_stats(eca, NULL, &empty_bytes);
    for (unsigned i = 0; i < o.rules; i++) {
        uint8_t doc[1024];
        size_t len = make_rule(i, o.types, doc, sizeof doc);
        doc_bytes += len;
        cl_status_t st = cl_eca_put_rule(eca, doc, len, true, 0, why, sizeof why);
        if (st != CL_OK) {
            fprintf(stderr, "bench_eca: rule %u refused: %s\n", i, why);
            return 1;
        }
    }
    cl_eca_stats(eca, &n_rules, &bytes);
    make_events(g_ev, o.types, NULL);

    /* the JS condition, if the engine has JS */
    cl_eca_t *js = NULL;
    size_t js_rule_bytes = 0;
    char js_note[CL_ECA_WHY_MAX] = "";
    if (!o.no_js) {
        /* {"name":"js","on":["j"],"if":"event.properties.temp > 20",
         *  "then":[{"action":"a","target":1}]} */
        cl_cbor_enc_t e;
        uint8_t doc[256];
        size_t len;
        cl_cbor_enc_init(&e, doc, sizeof doc);
        cl_cbor_enc_map(&e, 4);
        cl_cbor_enc_tstr_z(&e, "name");
        cl_cbor_enc_tstr_z(&e, "js");
        cl_cbor_enc_tstr_z(&e, "on");
        cl_cbor_enc_array(&e, 1);
        cl_cbor_enc_tstr_z(&e, "j");
        cl_cbor_enc_tstr_z(&e, "if");
        cl_cbor_enc_tstr_z(&e, "event.properties.temp > 20");
        cl_cbor_enc_tstr_z(&e, "then");
        cl_cbor_enc_array(&e, 1);
        cl_cbor_enc_map(&e, 2);
        cl_cbor_enc_tstr_z(&e, "action");
        cl_cbor_enc_tstr_z(&e, "a");
        cl_cbor_enc_tstr_z(&e, "target");
        cl_cbor_enc_uint(&e, 1);
        if (cl_cbor_enc_finish(&e, &len) != CL_OK)
            die("encoding the JS rule", 1);
        js = new_engine();
        size_t before;
        cl_eca_stats(js, NULL, &before);
        if (cl_eca_put_rule(js, doc, len, true, 0, why, sizeof why) != CL_OK) {
            snprintf(js_note, sizeof js_note, "%s", why);
            cl_eca_free(js);
            js = NULL;
        } else {
            cl_eca_stats(js, NULL, &js_rule_bytes);
            js_rule_bytes -= before;
            make_events(g_jev, 1, "j");
            for (size_t i = 0; i < EVENTS; i++) {
                g_jev0[i] = g_jev[i];
                g_jev0[i].props[0] = 0xa0; /* {} */
                g_jev0[i].props_len = 1;
            }
        }
    }

    bcase_t cases[4];
    int nc = 0;
    memset(cases, 0, sizeof cases);
    cases[nc++] = (bcase_t){.name = "floor: read each event's properties", .kind = K_FLOOR,
                            .evs = g_ev};
    cases[nc++] = (bcase_t){.name = "engine: match + emit", .kind = K_ENGINE, .eca = eca,
                            .evs = g_ev};
    if (js != NULL) {
        cases[nc++] = (bcase_t){.name = "engine: one JS `if`", .kind = K_JS, .eca = js,
                                .evs = g_jev};
        cases[nc++] = (bcase_t){.name = "engine: one JS `if`, event without properties",
                                .kind = K_JS, .eca = js, .evs = g_jev0};
    }

    bench_cpu_model(model, sizeof model);
    printf("# bench_eca\n\n");
    printf("- CPU: %s; %s\n", model, pinned);
    printf("- build: %s; compiler: %s\n", CL_BENCH_BUILD, __VERSION__);
    printf("- rules: %zu declarative rules over %u event types (~%.1f per type): source filter "
           "(id / \"*\" / 3 ids / @group) + 1-2 conditions (temp gt int|float, mode eq text, "
           "loc.room in [..]) + one action to a client; %.0f document bytes per rule\n",
           n_rules, o.types, (double)n_rules / o.types, (double)doc_bytes / (double)o.rules);
    printf("- events: %d pre-encoded, random type and source (1..%d), %zu..%d bytes of "
           "properties\n",
           EVENTS, SOURCES, g_ev[0].props_len, EV_MAX);
    printf("- method: batches of %d events, timed with CLOCK_MONOTONIC; %.2f s warm-up per case, "
           "then %d rounds of >= %.2f s per case, cases interleaved round by round; median, "
           "min..max over rounds\n\n",
           EVENTS, o.warmup, o.reps, o.min_time);
    fflush(stdout);

    for (int c = 0; c < nc; c++)
        (void)run_for(&cases[c], o.warmup);
    for (int c = 0; c < nc; c++)
        cases[c].actions = cases[c].events = 0;
    for (int r = 0; r < o.reps; r++)
        for (int c = 0; c < nc; c++)
            cases[c].ns[r] = run_for(&cases[c], o.min_time);

    printf("| case | events/s | ns/event | min..max events/s | actions/s | actions/event |\n");
    printf("|---|---:|---:|---|---:|---:|\n");
    double floor_ns = median(cases[0].ns, o.reps);
    for (int c = 0; c < nc; c++) {
        bcase_t *k = &cases[c];
        double m = median(k->ns, o.reps);
        double ape = k->events ? (double)k->actions / (double)k->events : 0;
        char acts[64] = "-", apes[32] = "-";
        if (k->kind != K_FLOOR) {
            snprintf(acts, sizeof acts, "%.0f", 1e9 / m * ape);
            snprintf(apes, sizeof apes, "%.2f", ape);
        }
        printf("| %s | %.0f | %.1f | %.0f..%.0f | %s | %s |\n", k->name, 1e9 / m, m,
               1e9 / vmax(k->ns, o.reps), 1e9 / vmin(k->ns, o.reps), acts, apes);
    }
    printf("\n- engine / floor: %.1fx the cost of reading the properties alone\n",
           median(cases[1].ns, o.reps) / floor_ns);
    printf("- memory: %zu bytes for %zu rules (cl_eca_stats, engine and index included) = %.0f "
           "bytes per rule; an empty engine holds %zu bytes of reusable buffers\n",
           bytes - empty_bytes, n_rules, (double)(bytes - empty_bytes) / (double)n_rules,
           empty_bytes);
    if (js != NULL)
        printf("- JS: one rule with `if`: %zu bytes (its sandbox included); %.0f condition "
               "evaluations/s through the engine (%.0f/s for events without properties)\n",
               js_rule_bytes, 1e9 / median(cases[2].ns, o.reps),
               1e9 / median(cases[3].ns, o.reps));
    else if (!o.no_js)
        printf("- JS: not measured (%s)\n", js_note[0] ? js_note : "no sandbox");
    printf("- checksum: %llu\n", g_sink);
    cl_eca_free(eca);
    cl_eca_free(js);
    return 0;
}
