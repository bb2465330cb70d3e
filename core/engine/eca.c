/*
 * eca.c - the engine: installed rules, the type index, dispatch of events
 * and derived events, time triggers, effects bookkeeping and dry runs.
 *
 * Matching: an open-addressing hash table maps an event type to the rules
 * that name it (each list sorted by the rules' rank in name order), plus
 * one list for "*". An event looks its type up once (FNV-1a, one probe in
 * the common case) and walks the two lists merged by rank, so rules run in
 * name order without sorting anything per event. The event's top-level
 * properties are indexed once (value.c), and every declarative condition
 * is a table lookup plus a comparison on CBOR bytes in place.
 *
 * A firing (a rule whose on/when/if held) collects its actions and derived
 * events first (script emits, then "then" in order, groups expanded) and
 * hands them over only when the whole firing succeeded, so a script that
 * throws after two emits, or a template whose placeholder has no value,
 * delivers nothing. The host may still refuse one action while they are
 * handed over; the rule then fails with the host's reason and the actions
 * after it are dropped (those before it were accepted by the host).
 *
 * Derived events go to a FIFO queue processed after the event that caused
 * them, each at its cause's depth + 1; a firing that would queue one deeper
 * than CL_ECA_MAX_CHAIN fails instead. One published event (or timer
 * firing) with everything it causes may deliver at most
 * CL_ECA_MAX_ACTIONS_PER_EVENT actions and queue at most
 * CL_ECA_MAX_DERIVED_PER_EVENT derived events; the firing that would exceed
 * either fails. So the work of one event is bounded whatever the rules say.
 *
 * Memory: the per-firing buffers (actions' properties, the derived queue)
 * are grown once and reused; steady-state events allocate nothing.
 * The engine is not re-entrant: host callbacks must not call it (every
 * entry point refuses with CL_ERR_STATE while one is running).
 */
#include <stdlib.h>
#include <string.h>

#include "eca_internal.h"

typedef struct rlist {
    eca_rule_t **v;
    uint32_t n, cap;
} rlist_t;

typedef struct tslot {
    char *name; /* NULL: empty slot */
    size_t len;
    uint64_t hash;
    rlist_t list;
} tslot_t;

/* An action of the current firing (bytes in abuf). */
typedef struct pact {
    uint32_t type_off;
    uint32_t props_off, props_len;
    uint32_t target;
    uint8_t type_len;
    uint8_t origin; /* index of the "then" item, ORIGIN_SCRIPT for emits */
} pact_t;

/* A derived event: of the current firing (pending) or queued (bytes in qbuf). */
typedef struct pev {
    uint32_t type_off;
    uint32_t props_off, props_len;
    uint8_t type_len;
    uint8_t origin;
    uint8_t depth;
    int64_t time_ms;
} pev_t;

#define ORIGIN_SCRIPT 0xffu
#define INITIAL_SLOTS 64u

typedef enum run_result { RUN_NO, RUN_FIRED, RUN_FAILED } run_result_t;

/* Where a dry run sends what a normal run hands to the host. */
typedef struct dry {
    cl_status_t (*action)(void *arg, const cl_eca_action_t *a);
    void (*derived)(void *arg, const cl_eca_event_t *d);
    void *arg;
    const eca_rule_t *memory; /* "changed" memory to read (installed, same document) */
    cl_status_t status;       /* what to return for a failure */
} dry_t;

struct cl_eca {
    cl_eca_host_t host;
    eca_rule_t **rules; /* sorted by name; rank = index */
    uint32_t n_rules, cap_rules;
    tslot_t *slots;
    uint32_t n_slots, cap_slots;
    rlist_t star;   /* "*" rules and absence rules watching "*" */
    rlist_t timers; /* schedules and absence rules */
    bool busy;
    uint32_t n_effects; /* rules with a state change or failure to report */

    /* one cascade (a published event or a timer firing and what it causes) */
    uint32_t n_actions; /* delivered */
    uint32_t n_derived; /* queued */
    pev_t queue[CL_ECA_MAX_DERIVED_PER_EVENT];
    uint32_t q_head, q_tail;
    uint8_t *qbuf;
    size_t q_len, q_cap;
    uint8_t cur[CL_ECA_MAX_PROPS]; /* the derived event being processed */

    /* one firing */
    pact_t acts[CL_ECA_MAX_ACTIONS_PER_EVENT];
    uint32_t n_acts;
    pev_t fevs[ECA_MAX_THEN];
    uint32_t n_fevs;
    uint8_t *abuf;
    size_t a_len, a_cap;
    const eca_rule_t *fire_rule;
    const cl_eca_event_t *fire_ev;
    bool dry_run;
    char fire_why[CL_ECA_WHY_MAX];
    uint32_t members[CL_ECA_MAX_ACTIONS_PER_EVENT + 1];
    uint8_t *state_buf;
    size_t state_cap;

    eca_props_t pt;
    char tbuf[CL_ECA_MAX_PROPS];
    uint8_t tick_props[128];
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static const char *rdoc(const eca_rule_t *r, eca_str_t s)
{
    return (const char *)r->doc + s.off;
}

static int name_cmp(const char *z, const char *name, size_t len)
{
    size_t zl = strlen(z);
    int c = memcmp(z, name, zl < len ? zl : len);
    if (c != 0)
        return c;
    return zl < len ? -1 : zl > len ? 1 : 0;
}

/* Index of the rule named name, or where it would go (*found false). */
static uint32_t rule_pos(const cl_eca_t *e, const char *name, size_t len, bool *found)
{
    uint32_t lo = 0, hi = e->n_rules;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = name_cmp(e->rules[mid]->name, name, len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static eca_rule_t *rule_get(const cl_eca_t *e, const char *name, size_t len)
{
    bool found;
    if (name == NULL || len == 0 || len > CL_ECA_NAME_MAX)
        return NULL;
    uint32_t i = rule_pos(e, name, len, &found);
    return found ? e->rules[i] : NULL;
}

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    uint32_t n = *cap ? *cap : 4;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, (size_t)n * elem);
    if (q == NULL)
        return false;
    *p = q;
    *cap = n;
    return true;
}

static bool buf_reserve(uint8_t **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 4096;
    while (n < need)
        n *= 2;
    uint8_t *q = realloc(*p, n);
    if (q == NULL)
        return false;
    *p = q;
    *cap = n;
    return true;
}

/* ------------------------------------------------------------------ */
/* Rule lists (sorted by rank)                                         */
/* ------------------------------------------------------------------ */

static uint32_t list_pos(const rlist_t *l, uint32_t rank)
{
    uint32_t lo = 0, hi = l->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (l->v[mid]->rank < rank)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool list_reserve(rlist_t *l)
{
    void *p = l->v;
    bool ok = grow(&p, &l->cap, l->n + 1, sizeof *l->v);
    l->v = p;
    return ok;
}

/* Inserts (capacity reserved before). */
static void list_add(rlist_t *l, eca_rule_t *r)
{
    uint32_t i = list_pos(l, r->rank);
    memmove(&l->v[i + 1], &l->v[i], (l->n - i) * sizeof *l->v);
    l->v[i] = r;
    l->n++;
}

static void list_del(rlist_t *l, const eca_rule_t *r)
{
    uint32_t i = list_pos(l, r->rank);
    while (i < l->n && l->v[i] != r) /* the same rank: a replaced rule */
        i++;
    if (i == l->n)
        return;
    memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof *l->v);
    l->n--;
}

/* ------------------------------------------------------------------ */
/* The type index                                                      */
/* ------------------------------------------------------------------ */

static tslot_t *slot_find(const cl_eca_t *e, const char *type, size_t len, uint64_t h)
{
    if (e->cap_slots == 0)
        return NULL;
    uint32_t mask = e->cap_slots - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        tslot_t *s = &e->slots[i];
        if (s->name == NULL)
            return NULL;
        if (s->hash == h && s->len == len && memcmp(s->name, type, len) == 0)
            return s;
    }
}

static void slot_place(tslot_t *slots, uint32_t cap, const tslot_t *s)
{
    uint32_t mask = cap - 1;
    uint32_t i = (uint32_t)s->hash & mask;
    while (slots[i].name != NULL)
        i = (i + 1) & mask;
    slots[i] = *s;
}

/* The slot of a type, created when missing (NULL: out of memory). */
static tslot_t *slot_get(cl_eca_t *e, const char *type, size_t len)
{
    uint64_t h = cl_eca_hash64(type, len);
    tslot_t *s = slot_find(e, type, len, h);
    if (s != NULL)
        return s;
    if ((e->n_slots + 1) * 2 > e->cap_slots) { /* keep the load under 1/2 */
        uint32_t cap = e->cap_slots ? e->cap_slots * 2 : INITIAL_SLOTS;
        tslot_t *ns = calloc(cap, sizeof *ns);
        if (ns == NULL)
            return NULL;
        for (uint32_t i = 0; i < e->cap_slots; i++)
            if (e->slots[i].name != NULL)
                slot_place(ns, cap, &e->slots[i]);
        free(e->slots);
        e->slots = ns;
        e->cap_slots = cap;
    }
    tslot_t n = {malloc(len), len, h, {NULL, 0, 0}};
    if (n.name == NULL)
        return NULL;
    memcpy(n.name, type, len);
    slot_place(e->slots, e->cap_slots, &n);
    e->n_slots++;
    return slot_find(e, type, len, h);
}

/* Removes an empty slot (backward-shift deletion keeps probe chains intact). */
static void slot_delete(cl_eca_t *e, tslot_t *s)
{
    uint32_t mask = e->cap_slots - 1;
    uint32_t i = (uint32_t)(s - e->slots);
    free(s->name);
    free(s->list.v);
    for (uint32_t j = (i + 1) & mask; e->slots[j].name != NULL; j = (j + 1) & mask) {
        uint32_t k = (uint32_t)e->slots[j].hash & mask; /* where slot j wants to be */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            e->slots[i] = e->slots[j];
            i = j;
        }
    }
    memset(&e->slots[i], 0, sizeof e->slots[i]);
    e->n_slots--;
}

/* The index keys of a rule: each a type, or NULL for the "*" list. */
static unsigned rule_keys(const eca_rule_t *r, eca_str_t *keys, bool *star)
{
    *star = false;
    switch (r->trig) {
    case ECA_TRIG_TYPES:
        memcpy(keys, r->types, r->n_types * sizeof *keys);
        return r->n_types;
    case ECA_TRIG_ANY:
        *star = true;
        return 0;
    case ECA_TRIG_ABSENT:
        if (r->abs_type.len == 1 && r->doc[r->abs_type.off] == '*') {
            *star = true;
            return 0;
        }
        keys[0] = r->abs_type;
        return 1;
    default:
        return 0;
    }
}

/* Makes room for r in every list it joins; nothing changes on failure but empty slots. */
static bool index_reserve(cl_eca_t *e, const eca_rule_t *r)
{
    eca_str_t keys[ECA_MAX_TYPES];
    bool star;
    unsigned n = rule_keys(r, keys, &star);
    for (unsigned i = 0; i < n; i++) {
        tslot_t *s = slot_get(e, rdoc(r, keys[i]), keys[i].len);
        if (s == NULL || !list_reserve(&s->list))
            return false;
    }
    if (star && !list_reserve(&e->star))
        return false;
    if ((r->trig == ECA_TRIG_EVERY || r->trig == ECA_TRIG_ABSENT) && !list_reserve(&e->timers))
        return false;
    return true;
}

static void index_add(cl_eca_t *e, eca_rule_t *r)
{
    eca_str_t keys[ECA_MAX_TYPES];
    bool star;
    unsigned n = rule_keys(r, keys, &star);
    for (unsigned i = 0; i < n; i++) {
        const char *t = rdoc(r, keys[i]);
        tslot_t *s = slot_find(e, t, keys[i].len, cl_eca_hash64(t, keys[i].len));
        if (s != NULL) /* reserved */
            list_add(&s->list, r);
    }
    if (star)
        list_add(&e->star, r);
    if (r->trig == ECA_TRIG_EVERY || r->trig == ECA_TRIG_ABSENT)
        list_add(&e->timers, r);
}

/* Takes r out of every list; purge: drop the type slots left empty. */
static void index_del(cl_eca_t *e, const eca_rule_t *r, bool purge)
{
    eca_str_t keys[ECA_MAX_TYPES];
    bool star;
    unsigned n = rule_keys(r, keys, &star);
    for (unsigned i = 0; i < n; i++) {
        const char *t = rdoc(r, keys[i]);
        tslot_t *s = slot_find(e, t, keys[i].len, cl_eca_hash64(t, keys[i].len));
        if (s == NULL)
            continue;
        list_del(&s->list, r);
        if (purge && s->list.n == 0)
            slot_delete(e, s);
    }
    if (star)
        list_del(&e->star, r);
    if (r->trig == ECA_TRIG_EVERY || r->trig == ECA_TRIG_ABSENT)
        list_del(&e->timers, r);
}

/* Drops the type slots of r that no rule uses any more. */
static void index_purge(cl_eca_t *e, const eca_rule_t *r)
{
    eca_str_t keys[ECA_MAX_TYPES];
    bool star;
    unsigned n = rule_keys(r, keys, &star);
    for (unsigned i = 0; i < n; i++) {
        const char *t = rdoc(r, keys[i]);
        tslot_t *s = slot_find(e, t, keys[i].len, cl_eca_hash64(t, keys[i].len));
        if (s != NULL && s->list.n == 0)
            slot_delete(e, s);
    }
}

/* ------------------------------------------------------------------ */
/* Conditions                                                          */
/* ------------------------------------------------------------------ */

static bool src_match(const cl_eca_t *e, const eca_rule_t *r, const eca_src_t *s, uint32_t source)
{
    if (!s->present || s->any)
        return true;
    for (unsigned i = 0; i < s->n_ids; i++)
        if (s->ids[i] == source)
            return true;
    /* the core (source 0) is in no group */
    if (source == 0 || e->host.in_group == NULL)
        return false;
    for (unsigned i = 0; i < s->n_groups; i++)
        if (e->host.in_group(e->host.arg, source, rdoc(r, s->groups[i]), s->groups[i].len))
            return true;
    return false;
}

static bool text_of(const uint8_t *v, const uint8_t *vend, const char **s, size_t *len)
{
    cl_cbor_dec_t d;
    cl_cbor_dec_init(&d, v, (size_t)(vend - v));
    return cl_cbor_dec_tstr(&d, s, len) == CL_OK;
}

static int text_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

static bool cond_eq(const eca_rule_t *r, const eca_cond_t *c, const uint8_t *v,
                    const uint8_t *vend)
{
    eca_num_t n;
    const char *s;
    size_t len;
    switch (c->vkind) {
    case ECA_V_NUM:
        return cl_eca_num_get(v, vend, &n) && cl_eca_num_eq(&n, &c->num);
    case ECA_V_TEXT:
        return text_of(v, vend, &s, &len) && len == c->val.len &&
               memcmp(s, rdoc(r, c->val), len) == 0;
    default: {
        const uint8_t *w = r->doc + c->val.off;
        return cl_eca_val_eq(v, vend, w, w + c->val.len);
    }
    }
}

/* -1, 0, 1, or 2 when the two are not comparable. */
static int cond_cmp(const eca_rule_t *r, const eca_cond_t *c, const uint8_t *v,
                    const uint8_t *vend)
{
    eca_num_t n;
    const char *s;
    size_t len;
    if (c->vkind == ECA_V_NUM)
        return cl_eca_num_get(v, vend, &n) ? cl_eca_num_cmp(&n, &c->num) : 2;
    if (c->vkind == ECA_V_TEXT && text_of(v, vend, &s, &len))
        return text_cmp(s, len, rdoc(r, c->val), c->val.len);
    return 2;
}

static bool cond_in(const eca_rule_t *r, const eca_cond_t *c, const uint8_t *v,
                    const uint8_t *vend)
{
    cl_cbor_dec_t d;
    size_t n;
    cl_cbor_dec_init(&d, r->doc + c->val.off, c->val.len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *w;
        size_t wl;
        if (cl_cbor_dec_raw(&d, &w, &wl) != CL_OK)
            return false;
        if (cl_eca_val_eq(v, vend, w, w + wl))
            return true;
    }
    return false;
}

static bool cond_holds(const eca_rule_t *r, const eca_cond_t *c, const eca_props_t *pt)
{
    const uint8_t *v = NULL, *vend = NULL;
    bool present = cl_eca_props_get(pt, (const char *)r->doc, r->segs + c->seg, c->nseg, &v, &vend);
    if (c->op == ECA_EXISTS)
        return present == c->b;
    if (!present) /* a comparison needs the property ("exists" tests for it) */
        return false;
    int k;
    switch (c->op) {
    case ECA_EQ:
        return cond_eq(r, c, v, vend);
    case ECA_NE:
        return !cond_eq(r, c, v, vend);
    case ECA_IN:
        return cond_in(r, c, v, vend);
    case ECA_LT:
        return cond_cmp(r, c, v, vend) == -1;
    case ECA_LE:
        return (k = cond_cmp(r, c, v, vend)) == -1 || k == 0;
    case ECA_GT:
        return cond_cmp(r, c, v, vend) == 1;
    case ECA_GE:
        return (k = cond_cmp(r, c, v, vend)) == 1 || k == 0;
    default:
        return false;
    }
}

/* ---- "changed" memory ---- */

static size_t chg_stride(const eca_rule_t *r)
{
    return 2u + r->n_chg;
}

/* Entry index for key, or where it would go. */
static uint32_t chg_pos(const eca_rule_t *r, uint64_t key, bool *found)
{
    size_t stride = chg_stride(r);
    uint32_t lo = 0, hi = r->chg.n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t k = r->chg.w[mid * stride];
        if (k == key) {
            *found = true;
            return mid;
        }
        if (k < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void chg_store(eca_rule_t *r, uint64_t key, const uint64_t *h)
{
    size_t stride = chg_stride(r);
    bool found;
    uint32_t i = chg_pos(r, key, &found);
    if (!found) {
        if (r->chg.n == CL_ECA_CHANGED_MAX) {
            /* forget the least recently seen (source, type) */
            uint32_t old = 0;
            for (uint32_t j = 1; j < r->chg.n; j++)
                if (r->chg.w[j * stride + 1] < r->chg.w[old * stride + 1])
                    old = j;
            memmove(&r->chg.w[old * stride], &r->chg.w[(old + 1) * stride],
                    (r->chg.n - old - 1) * stride * sizeof(uint64_t));
            r->chg.n--;
            i = chg_pos(r, key, &found);
        } else if (r->chg.n == r->chg.cap) {
            uint32_t cap = r->chg.cap ? r->chg.cap * 2 : 4;
            if (cap > CL_ECA_CHANGED_MAX)
                cap = CL_ECA_CHANGED_MAX;
            uint64_t *w = realloc(r->chg.w, (size_t)cap * stride * sizeof(uint64_t));
            if (w == NULL)
                return; /* not remembered: the next one counts as changed again */
            r->chg.w = w;
            r->chg.cap = cap;
        }
        memmove(&r->chg.w[(i + 1) * stride], &r->chg.w[i * stride],
                (r->chg.n - i) * stride * sizeof(uint64_t));
        r->chg.n++;
        r->chg.w[i * stride] = key;
    }
    r->chg.w[i * stride + 1] = ++r->chg.clock;
    memcpy(&r->chg.w[i * stride + 2], h, r->n_chg * sizeof(uint64_t));
}

/*
 * Evaluates the "changed" conditions of r. They are evaluated (and the
 * memory updated) whenever the event reached the rule and passed its
 * source filter, whatever the other conditions say, so "previous event"
 * means the previous one the rule saw, not the previous one that fired.
 * mem: whose memory to read; update: whether to write it (not in dry runs).
 */
static bool changed_hold(eca_rule_t *r, const eca_rule_t *mem, bool update,
                         const cl_eca_event_t *ev, const eca_props_t *pt)
{
    uint64_t h[ECA_MAX_CONDS];
    for (unsigned i = 0; i < r->n_conds; i++) {
        const eca_cond_t *c = &r->conds[i];
        if (c->op != ECA_CHANGED)
            continue;
        const uint8_t *v, *vend;
        h[c->chg] = cl_eca_props_get(pt, (const char *)r->doc, r->segs + c->seg, c->nseg, &v, &vend)
                        ? cl_eca_val_hash(v, vend)
                        : 0; /* absent */
    }
    uint64_t key = (uint64_t)ev->source << 32 | cl_eca_hash32(ev->type, ev->type_len);
    bool all = true;
    bool found = false;
    if (mem != NULL && mem->n_chg == r->n_chg) {
        uint32_t i = chg_pos(mem, key, &found);
        if (found) {
            const uint64_t *old = &mem->chg.w[i * chg_stride(mem) + 2];
            for (unsigned k = 0; k < r->n_chg; k++)
                if (old[k] == h[k])
                    all = false;
        }
    }
    if (update)
        chg_store(r, key, h);
    return all;
}

/* ------------------------------------------------------------------ */
/* Firing                                                              */
/* ------------------------------------------------------------------ */

static void fail_rule(cl_eca_t *e, eca_rule_t *r, const char *why)
{
    if (r->reason == NULL)
        r->reason = malloc(CL_ECA_WHY_MAX);
    if (r->reason != NULL) {
        size_t n = strnlen(why, CL_ECA_WHY_MAX - 1);
        memcpy(r->reason, why, n);
        r->reason[n] = '\0';
    }
    r->failed = true;
    if (!r->fail_pending && !r->state_dirty)
        e->n_effects++;
    r->fail_pending = true;
}

static const char *rule_reason(const eca_rule_t *r)
{
    return r->reason != NULL ? r->reason : "failed (reason lost: out of memory)";
}

/* Reserves n bytes at the end of the action buffer (offset in *off). */
static bool abuf_room(cl_eca_t *e, size_t n, uint32_t *off)
{
    if (!buf_reserve(&e->abuf, &e->a_cap, e->a_len + n))
        return false;
    *off = (uint32_t)e->a_len;
    return true;
}

/* Adds the actions for one target (a group expands here). */
static cl_status_t add_actions(cl_eca_t *e, uint8_t origin, const char *type, size_t type_len,
                               bool group, uint32_t id, const char *gname, size_t glen,
                               uint32_t props_off, uint32_t props_len, char *why, size_t why_size)
{
    uint32_t room = CL_ECA_MAX_ACTIONS_PER_EVENT - e->n_actions - e->n_acts;
    uint32_t type_off;
    const uint32_t *targets = &id;
    size_t n = 1;
    if (group) {
        n = e->host.group_members == NULL
                ? 0
                : e->host.group_members(e->host.arg, gname, glen, e->members, (size_t)room + 1);
        targets = e->members;
    }
    if (n == 0)
        return CL_OK; /* an empty group: nobody to tell */
    if (n > room) {
        cl_eca_why(why, why_size, "more than %d actions for one event", CL_ECA_MAX_ACTIONS_PER_EVENT);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    if (!abuf_room(e, type_len, &type_off)) {
        cl_eca_why(why, why_size, "out of memory");
        return CL_FAIL(CL_ERR_FULL);
    }
    memcpy(e->abuf + type_off, type, type_len);
    e->a_len += type_len;
    for (size_t i = 0; i < n; i++) {
        pact_t *a = &e->acts[e->n_acts++];
        a->type_off = type_off;
        a->type_len = (uint8_t)type_len;
        a->props_off = props_off;
        a->props_len = props_len;
        a->target = targets[i];
        a->origin = origin;
    }
    return CL_OK;
}

static cl_status_t on_emit(void *arg, const cl_js_emit_t *em)
{
    cl_eca_t *e = arg;
    char *why = e->fire_why;
    uint32_t off;
    if (!cl_eca_type_name_ok(em->action, em->action_len)) {
        cl_eca_why(why, sizeof e->fire_why, "script: emit: not an action type name");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (em->target_is_group ? !cl_eca_name_ok(em->target_group, em->target_group_len)
                            : em->target_id == 0) {
        cl_eca_why(why, sizeof e->fire_why, "script: emit: target must be a client id or \"@group\"");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (em->props_len > CL_ECA_MAX_PROPS) {
        cl_eca_why(why, sizeof e->fire_why, "script: emit: properties larger than %d bytes",
                CL_ECA_MAX_PROPS);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    if (!abuf_room(e, em->props_len, &off)) {
        cl_eca_why(why, sizeof e->fire_why, "script: out of memory");
        return CL_FAIL(CL_ERR_FULL);
    }
    if (em->props_len > 0)
        memcpy(e->abuf + off, em->props, em->props_len);
    e->a_len += em->props_len;
    char w[CL_ECA_WHY_MAX];
    cl_status_t st = add_actions(e, ORIGIN_SCRIPT, em->action, em->action_len,
                                 em->target_is_group, em->target_id, em->target_group,
                                 em->target_group_len, off, (uint32_t)em->props_len, w, sizeof w);
    if (st != CL_OK)
        cl_eca_why(why, sizeof e->fire_why, "script: %s", w);
    return st;
}

/* Expands the "then" item t of r into the pending actions or derived events. */
static cl_status_t run_template(cl_eca_t *e, const eca_rule_t *r, unsigned ti,
                                const cl_eca_event_t *ev, unsigned depth, const uint8_t *state,
                                size_t state_len, char *why, size_t why_size)
{
    const eca_tmpl_t *t = &r->then[ti];
    char w[CL_ECA_WHY_MAX];
    cl_status_t st;
    uint32_t off;
    if (t->kind == ECA_T_EVENT) {
        if (depth + 1 > CL_ECA_MAX_CHAIN) {
            cl_eca_why(why, why_size, "then[%u]: action chain deeper than %d", ti, CL_ECA_MAX_CHAIN);
            return CL_FAIL(CL_ERR_LIMIT);
        }
        if (e->n_derived + e->n_fevs >= CL_ECA_MAX_DERIVED_PER_EVENT) {
            cl_eca_why(why, why_size, "then[%u]: more than %d derived events for one event", ti,
                    CL_ECA_MAX_DERIVED_PER_EVENT);
            return CL_FAIL(CL_ERR_LIMIT);
        }
    } else if (t->tgt == ECA_TGT_SOURCE && ev->source == 0) {
        cl_eca_why(why, why_size, "then[%u].target: {{event.source}} is the core (not a client)", ti);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    const uint8_t *tmpl = r->doc + t->props.off;
    size_t tlen = t->props.len;
    if (!abuf_room(e, tlen == 0 ? 1 : (t->has_ph ? CL_ECA_MAX_PROPS : tlen), &off)) {
        cl_eca_why(why, why_size, "then[%u]: out of memory", ti);
        return CL_FAIL(CL_ERR_FULL);
    }
    size_t plen;
    if (tlen == 0) {
        e->abuf[off] = 0xa0; /* {} */
        plen = 1;
    } else if (!t->has_ph) {
        memcpy(e->abuf + off, tmpl, tlen); /* the common case: nothing to expand */
        plen = tlen;
    } else {
        eca_tctx_t x = {r, ev, &e->pt, state, state_len, e->tbuf, sizeof e->tbuf};
        cl_cbor_enc_t enc;
        cl_cbor_enc_init(&enc, e->abuf + off, CL_ECA_MAX_PROPS);
        if ((st = cl_eca_expand(&x, tmpl, tlen, &enc, w, sizeof w)) != CL_OK ||
            (st = cl_cbor_enc_finish(&enc, &plen)) != CL_OK) {
            cl_eca_why(why, why_size, "then[%u]: %s", ti, w);
            return st;
        }
    }
    e->a_len += plen;
    if (t->kind == ECA_T_EVENT) {
        uint32_t type_off;
        if (!abuf_room(e, t->name.len, &type_off)) {
            cl_eca_why(why, why_size, "then[%u]: out of memory", ti);
            return CL_FAIL(CL_ERR_FULL);
        }
        memcpy(e->abuf + type_off, rdoc(r, t->name), t->name.len);
        e->a_len += t->name.len;
        pev_t *d = &e->fevs[e->n_fevs++];
        d->type_off = type_off;
        d->type_len = (uint8_t)t->name.len;
        d->props_off = off;
        d->props_len = (uint32_t)plen;
        d->origin = (uint8_t)ti;
        d->depth = (uint8_t)(depth + 1);
        d->time_ms = ev->time_ms;
        return CL_OK;
    }
    uint32_t id = t->tgt == ECA_TGT_SOURCE ? ev->source : t->id;
    st = add_actions(e, (uint8_t)ti, rdoc(r, t->name), t->name.len, t->tgt == ECA_TGT_GROUP, id,
                     rdoc(r, t->group), t->group.len, off, (uint32_t)plen, w, sizeof w);
    if (st != CL_OK)
        cl_eca_why(why, why_size, "then[%u]: %s", ti, w);
    return st;
}

/* The exported state of r for {{state.…}} (NULL, 0 without a sandbox). */
static cl_status_t fetch_state(cl_eca_t *e, const eca_rule_t *r, const uint8_t **state,
                               size_t *len, char *why, size_t why_size)
{
    *state = NULL;
    *len = 0;
    if (r->js == NULL)
        return CL_OK;
    size_t cap = e->host.js_limits.max_state ? e->host.js_limits.max_state
                                             : CL_JS_DEFAULT_MAX_STATE;
    if (!buf_reserve(&e->state_buf, &e->state_cap, cap + 16)) {
        cl_eca_why(why, why_size, "state: out of memory");
        return CL_FAIL(CL_ERR_FULL);
    }
    cl_status_t st = cl_js_state_get(r->js, e->state_buf, e->state_cap, len);
    if (st != CL_OK) {
        cl_eca_why(why, why_size, "state: cannot be exported (%s)", cl_status_str(st));
        return st;
    }
    *state = e->state_buf;
    return CL_OK;
}

/*
 * Runs r on ev: source filter, conditions, "if", script, templates; then
 * hands the firing's actions and derived events over (to the host, or in a
 * dry run to its callbacks). RUN_FAILED leaves the reason in why.
 */
static run_result_t run_rule(cl_eca_t *e, eca_rule_t *r, const cl_eca_event_t *ev,
                             unsigned depth, dry_t *dry, char *why, size_t why_size)
{
    cl_status_t st = CL_OK;
    if (r->when_src.present && !src_match(e, r, &r->when_src, ev->source))
        return RUN_NO;
    bool hold = true;
    if (r->n_chg > 0)
        hold = changed_hold(r, dry != NULL ? dry->memory : r, dry == NULL, ev, &e->pt);
    for (unsigned i = 0; hold && i < r->n_conds; i++)
        if (r->conds[i].op != ECA_CHANGED)
            hold = cond_holds(r, &r->conds[i], &e->pt);
    if (!hold)
        return RUN_NO;

    bool state_changed = false;
    cl_js_event_t jev = {ev->type, ev->type_len, ev->source, ev->time_ms, ev->props, ev->props_len};
    char jw[CL_JS_WHY_MAX];
    if (r->js_if.len > 0) {
        bool res = false;
        jw[0] = '\0';
        if ((st = cl_js_cond(r->js, &jev, &res, jw, sizeof jw)) != CL_OK) {
            cl_eca_why(why, why_size, "if: %s", jw[0] ? jw : cl_status_str(st));
            goto failed;
        }
        if (!res)
            return RUN_NO;
    }
    if (dry == NULL)
        r->fired++;
    e->n_acts = 0;
    e->n_fevs = 0;
    e->a_len = 0;
    e->fire_why[0] = '\0';
    if (r->js_script.len > 0) {
        jw[0] = '\0';
        st = cl_js_run(r->js, &jev, on_emit, e, &state_changed, jw, sizeof jw);
        if (st != CL_OK) {
            /* our own reason (a limit of the engine) is the better one */
            if (e->fire_why[0] != '\0')
                cl_eca_why(why, why_size, "%s", e->fire_why);
            else
                cl_eca_why(why, why_size, "script: %s", jw[0] ? jw : cl_status_str(st));
            goto failed;
        }
        if (state_changed && dry == NULL && !r->state_dirty) {
            if (!r->fail_pending)
                e->n_effects++;
            r->state_dirty = true;
        }
    }
    const uint8_t *state = NULL;
    size_t state_len = 0;
    if (r->uses_state && (st = fetch_state(e, r, &state, &state_len, why, why_size)) != CL_OK)
        goto failed;
    for (unsigned i = 0; i < r->n_then; i++)
        if ((st = run_template(e, r, i, ev, depth, state, state_len, why, why_size)) != CL_OK)
            goto failed;

    /* the firing succeeded: hand it over */
    for (uint32_t i = 0; i < e->n_acts; i++) {
        const pact_t *p = &e->acts[i];
        cl_eca_action_t a = {r->name,     (const char *)e->abuf + p->type_off,
                             p->type_len, p->target,
                             e->abuf + p->props_off, p->props_len,
                             ev->time_ms};
        char hw[CL_ECA_WHY_MAX];
        hw[0] = '\0';
        if (dry != NULL) {
            st = dry->action(dry->arg, &a);
        } else {
            st = e->host.action(e->host.arg, &a, hw, sizeof hw);
            if (st == CL_OK)
                e->n_actions++;
        }
        if (st != CL_OK) {
            char origin[16];
            if (p->origin == ORIGIN_SCRIPT)
                memcpy(origin, "script", 7);
            else
                cl_eca_why(origin, sizeof origin, "then[%u]", p->origin);
            cl_eca_why(why, why_size, "%s: action \"%.*s\" for client %u refused: %s", origin,
                    (int)p->type_len, a.type, (unsigned)p->target,
                    hw[0] ? hw : cl_status_str(st));
            goto failed;
        }
    }
    for (uint32_t i = 0; i < e->n_fevs; i++) {
        const pev_t *p = &e->fevs[i];
        if (dry != NULL) {
            cl_eca_event_t d = {(const char *)e->abuf + p->type_off, p->type_len, 0,
                                p->time_ms, e->abuf + p->props_off, p->props_len};
            if (dry->derived != NULL)
                dry->derived(dry->arg, &d);
            continue;
        }
        /* into the cascade's queue (its own buffer: abuf is reused by the next firing) */
        size_t need = (size_t)p->type_len + p->props_len;
        if (!buf_reserve(&e->qbuf, &e->q_cap, e->q_len + need)) {
            cl_eca_why(why, why_size, "then[%u]: out of memory", p->origin);
            st = CL_FAIL(CL_ERR_FULL);
            goto failed;
        }
        pev_t *q = &e->queue[e->q_tail++];
        *q = *p;
        q->type_off = (uint32_t)e->q_len;
        memcpy(e->qbuf + e->q_len, e->abuf + p->type_off, p->type_len);
        q->props_off = (uint32_t)(e->q_len + p->type_len);
        memcpy(e->qbuf + q->props_off, e->abuf + p->props_off, p->props_len);
        e->q_len += need;
        e->n_derived++;
    }
    return RUN_FIRED;
failed:
    if (dry != NULL)
        dry->status = st != CL_OK ? st : CL_FAIL(CL_ERR_BAD_INPUT);
    return RUN_FAILED;
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

static bool runnable(const eca_rule_t *r)
{
    return r->enabled && !r->failed;
}

/* An event of the watched type from a watched source re-arms its absence timer. */
static void absent_seen(cl_eca_t *e, eca_rule_t *r, const cl_eca_event_t *ev)
{
    if (ev->source == 0 || !src_match(e, r, &r->abs_src, ev->source))
        return;
    eca_abs_t *a = &r->abs;
    uint32_t lo = 0, hi = a->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (a->v[mid].source < ev->source)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < a->n && a->v[lo].source == ev->source) {
        if (ev->time_ms > a->v[lo].last_ms)
            a->v[lo].last_ms = ev->time_ms;
        a->v[lo].fired = false;
        return;
    }
    if (a->n == CL_ECA_ABSENT_MAX) {
        /* full: forget the source silent longest among those already reported */
        uint32_t victim = a->n;
        for (uint32_t i = 0; i < a->n; i++)
            if (a->v[i].fired && (victim == a->n || a->v[i].last_ms < a->v[victim].last_ms))
                victim = i;
        if (victim == a->n)
            return; /* every timer is running: the new source is not watched */
        memmove(&a->v[victim], &a->v[victim + 1], (a->n - victim - 1) * sizeof *a->v);
        a->n--;
        if (victim < lo)
            lo--;
    }
    void *p = a->v;
    if (!grow(&p, &a->cap, a->n + 1, sizeof *a->v))
        return;
    a->v = p;
    memmove(&a->v[lo + 1], &a->v[lo], (a->n - lo) * sizeof *a->v);
    a->v[lo].source = ev->source;
    a->v[lo].fired = false;
    a->v[lo].last_ms = ev->time_ms;
    a->n++;
}

static void run_one(cl_eca_t *e, eca_rule_t *r, const cl_eca_event_t *ev, unsigned depth)
{
    if (r->trig == ECA_TRIG_ABSENT) {
        absent_seen(e, r, ev);
        return;
    }
    if (!runnable(r))
        return;
    r->matched++;
    char why[CL_ECA_WHY_MAX];
    if (run_rule(e, r, ev, depth, NULL, why, sizeof why) == RUN_FAILED)
        fail_rule(e, r, why);
}

/* Runs every rule the index gives for ev, in name order. */
static cl_status_t dispatch(cl_eca_t *e, const cl_eca_event_t *ev, unsigned depth)
{
    if (!cl_eca_props_init(&e->pt, ev->props, ev->props_len))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    tslot_t *s = ev->type_len > 0
                     ? slot_find(e, ev->type, ev->type_len, cl_eca_hash64(ev->type, ev->type_len))
                     : NULL;
    const rlist_t *a = s != NULL ? &s->list : NULL;
    const rlist_t *b = &e->star;
    uint32_t i = 0, j = 0, na = a != NULL ? a->n : 0, nb = b->n;
    /* merge by rank; the lists do not change while we walk them */
    while (i < na || j < nb) {
        eca_rule_t *r;
        if (j == nb || (i < na && a->v[i]->rank < b->v[j]->rank))
            r = a->v[i++];
        else
            r = b->v[j++];
        run_one(e, r, ev, depth);
    }
    return CL_OK;
}

/* Processes the derived events queued by the cascade so far. */
static void drain(cl_eca_t *e)
{
    while (e->q_head < e->q_tail) {
        const pev_t *q = &e->queue[e->q_head++];
        /* copied out: qbuf may move while this event's rules queue more */
        memcpy(e->cur, e->qbuf + q->props_off, q->props_len);
        char type[ECA_TYPE_MAX];
        memcpy(type, e->qbuf + q->type_off, q->type_len);
        cl_eca_event_t d = {type, q->type_len, 0, q->time_ms, e->cur, q->props_len};
        if (dispatch(e, &d, q->depth) == CL_OK && e->host.derived != NULL)
            e->host.derived(e->host.arg, &d);
    }
}

static void cascade_begin(cl_eca_t *e)
{
    e->n_actions = 0;
    e->n_derived = 0;
    e->q_head = e->q_tail = 0;
    e->q_len = 0;
}

cl_status_t cl_eca_event(cl_eca_t *e, const cl_eca_event_t *ev)
{
    if (e == NULL || ev == NULL || (ev->type == NULL && ev->type_len != 0) ||
        (ev->props == NULL && ev->props_len != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->busy)
        return CL_FAIL(CL_ERR_STATE);
    e->busy = true;
    cascade_begin(e);
    cl_status_t st = dispatch(e, ev, 0);
    if (st == CL_OK)
        drain(e);
    e->busy = false;
    return st;
}

/* ------------------------------------------------------------------ */
/* Time                                                                */
/* ------------------------------------------------------------------ */

/* now - since >= span, without overflow whatever the clock values. */
static bool elapsed(int64_t now, int64_t since, int64_t span)
{
    return since <= now && (uint64_t)now - (uint64_t)since >= (uint64_t)span;
}

/* t + d (d >= 0), saturating. */
static int64_t later(int64_t t, int64_t d)
{
    return t > INT64_MAX - d ? INT64_MAX : t + d;
}

/* A timer firing: r runs alone on a synthetic event, then its cascade. */
static void fire_timer(cl_eca_t *e, eca_rule_t *r, const cl_eca_event_t *ev)
{
    char why[CL_ECA_WHY_MAX];
    cascade_begin(e);
    if (!cl_eca_props_init(&e->pt, ev->props, ev->props_len))
        return;
    r->matched++;
    if (run_rule(e, r, ev, 0, NULL, why, sizeof why) == RUN_FAILED)
        fail_rule(e, r, why);
    drain(e);
}

static void tick_every(cl_eca_t *e, eca_rule_t *r, int64_t now)
{
    if (now < r->next_due)
        return;
    int64_t period = (int64_t)r->period_s * 1000;
    /* missed periods (the core was down) fire once, then the grid goes on */
    uint64_t k = ((uint64_t)now - (uint64_t)r->next_due) / (uint64_t)period + 1;
    r->next_due = k > (uint64_t)(INT64_MAX / period) ? INT64_MAX
                                                      : later(r->next_due, (int64_t)k * period);
    if (!runnable(r))
        return;
    cl_cbor_enc_t enc;
    size_t len;
    cl_cbor_enc_init(&enc, e->tick_props, sizeof e->tick_props);
    cl_cbor_enc_map(&enc, 1);
    cl_cbor_enc_tstr_z(&enc, "every");
    cl_cbor_enc_uint(&enc, r->period_s);
    if (cl_cbor_enc_finish(&enc, &len) != CL_OK)
        return;
    cl_eca_event_t ev = {"schedule", 8, 0, now, e->tick_props, len};
    fire_timer(e, r, &ev);
}

static void tick_absent(cl_eca_t *e, eca_rule_t *r, int64_t now)
{
    int64_t span = (int64_t)r->period_s * 1000;
    /* the rule's own firings cannot touch r->abs: derived events come from the core (0) */
    for (uint32_t i = 0; i < r->abs.n && runnable(r); i++) {
        eca_abs_ent_t *a = &r->abs.v[i];
        if (a->fired || !elapsed(now, a->last_ms, span))
            continue;
        a->fired = true;
        cl_cbor_enc_t enc;
        size_t len;
        cl_cbor_enc_init(&enc, e->tick_props, sizeof e->tick_props);
        cl_cbor_enc_map(&enc, 3);
        cl_cbor_enc_tstr_z(&enc, "type");
        cl_cbor_enc_tstr(&enc, rdoc(r, r->abs_type), r->abs_type.len);
        cl_cbor_enc_tstr_z(&enc, "for");
        cl_cbor_enc_uint(&enc, r->period_s);
        cl_cbor_enc_tstr_z(&enc, "since");
        cl_cbor_enc_int(&enc, a->last_ms);
        if (cl_cbor_enc_finish(&enc, &len) != CL_OK)
            continue;
        cl_eca_event_t ev = {"absent", 6, a->source, now, e->tick_props, len};
        fire_timer(e, r, &ev);
    }
}

cl_status_t cl_eca_tick(cl_eca_t *e, int64_t now_ms)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->busy)
        return CL_FAIL(CL_ERR_STATE);
    e->busy = true;
    for (uint32_t i = 0; i < e->timers.n; i++) {
        eca_rule_t *r = e->timers.v[i];
        if (r->trig == ECA_TRIG_EVERY)
            tick_every(e, r, now_ms);
        else
            tick_absent(e, r, now_ms);
    }
    e->busy = false;
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* Rules                                                               */
/* ------------------------------------------------------------------ */

cl_status_t cl_eca_create(cl_eca_t **out, const cl_eca_host_t *host)
{
    if (out == NULL || host == NULL || host->action == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    cl_eca_t *e = calloc(1, sizeof *e);
    if (e == NULL)
        return CL_FAIL(CL_ERR_FULL);
    e->host = *host;
    *out = e;
    return CL_OK;
}

void cl_eca_free(cl_eca_t *e)
{
    if (e == NULL)
        return;
    for (uint32_t i = 0; i < e->n_rules; i++)
        cl_eca_rule_free(e->rules[i]);
    for (uint32_t i = 0; i < e->cap_slots; i++) {
        free(e->slots[i].name);
        free(e->slots[i].list.v);
    }
    free(e->slots);
    free(e->rules);
    free(e->star.v);
    free(e->timers.v);
    free(e->qbuf);
    free(e->abuf);
    free(e->state_buf);
    free(e);
}

cl_status_t cl_eca_check_rule(const uint8_t *doc, size_t len, const char **name, size_t *name_len,
                              char *why, size_t why_size)
{
    eca_rule_t *r;
    cl_status_t st = cl_eca_rule_compile(doc, len, NULL, NULL, &r, why, why_size);
    if (st != CL_OK)
        return st;
    if (name != NULL)
        *name = (const char *)doc + r->name_off; /* in the caller's document */
    if (name_len != NULL)
        *name_len = r->name_len;
    cl_eca_rule_free(r);
    return CL_OK;
}

/* Arms the time triggers of a new rule. */
static void arm_timers(cl_eca_t *e, eca_rule_t *r, int64_t start_ms)
{
    if (r->trig == ECA_TRIG_EVERY) {
        r->next_due = later(start_ms, (int64_t)r->period_s * 1000);
        return;
    }
    if (r->trig != ECA_TRIG_ABSENT)
        return;
    /* named clients and the current members of named groups are watched from
     * the start; any other matching source from its first event */
    cl_eca_event_t seed = {NULL, 0, 0, start_ms, NULL, 0};
    for (unsigned i = 0; i < r->abs_src.n_ids; i++) {
        seed.source = r->abs_src.ids[i];
        absent_seen(e, r, &seed);
    }
    for (unsigned g = 0; g < r->abs_src.n_groups && e->host.group_members != NULL; g++) {
        size_t n = e->host.group_members(e->host.arg, rdoc(r, r->abs_src.groups[g]),
                                         r->abs_src.groups[g].len, e->members,
                                         CL_ECA_MAX_ACTIONS_PER_EVENT);
        for (size_t i = 0; i < n; i++) {
            seed.source = e->members[i];
            absent_seen(e, r, &seed);
        }
    }
}

cl_status_t cl_eca_put_rule(cl_eca_t *e, const uint8_t *doc, size_t len, bool enabled,
                            int64_t start_ms, char *why, size_t why_size)
{
    if (e == NULL || doc == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->busy)
        return CL_FAIL(CL_ERR_STATE);
    eca_rule_t *r;
    cl_status_t st = cl_eca_rule_compile(doc, len, &e->host.js_env, &e->host.js_limits, &r, why,
                                      why_size);
    if (st != CL_OK)
        return st;
    r->enabled = enabled;
    bool found;
    uint32_t pos = rule_pos(e, r->name, r->name_len, &found);
    if (!found && e->n_rules >= CL_ECA_MAX_RULES) {
        cl_eca_why(why, why_size, "more than %d rules", CL_ECA_MAX_RULES);
        cl_eca_rule_free(r);
        return CL_FAIL(CL_ERR_FULL);
    }
    void *p = e->rules;
    bool ok = grow(&p, &e->cap_rules, e->n_rules + 1, sizeof *e->rules);
    e->rules = p;
    r->rank = pos;
    if (!ok || !index_reserve(e, r)) {
        cl_eca_why(why, why_size, "out of memory");
        cl_eca_rule_free(r);
        return CL_FAIL(CL_ERR_FULL);
    }
    if (found) {
        /* replace in place: same rank, lists reserved above, so nothing can fail */
        eca_rule_t *old = e->rules[pos];
        index_del(e, old, false);
        r->fired = old->fired;
        r->matched = old->matched;
        if (old->fail_pending || old->state_dirty)
            e->n_effects--; /* the new version starts clean */
        e->rules[pos] = r;
        index_add(e, r);
        index_purge(e, old);
        cl_eca_rule_free(old);
    } else {
        memmove(&e->rules[pos + 1], &e->rules[pos], (e->n_rules - pos) * sizeof *e->rules);
        e->rules[pos] = r;
        e->n_rules++;
        for (uint32_t i = pos + 1; i < e->n_rules; i++)
            e->rules[i]->rank = i;
        index_add(e, r);
    }
    arm_timers(e, r, start_ms);
    return CL_OK;
}

cl_status_t cl_eca_del_rule(cl_eca_t *e, const char *name, size_t len)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->busy)
        return CL_FAIL(CL_ERR_STATE);
    bool found;
    if (name == NULL || len == 0 || len > CL_ECA_NAME_MAX)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    uint32_t pos = rule_pos(e, name, len, &found);
    if (!found)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    eca_rule_t *r = e->rules[pos];
    index_del(e, r, true);
    if (r->fail_pending || r->state_dirty)
        e->n_effects--;
    memmove(&e->rules[pos], &e->rules[pos + 1], (e->n_rules - pos - 1) * sizeof *e->rules);
    e->n_rules--;
    for (uint32_t i = pos; i < e->n_rules; i++)
        e->rules[i]->rank = i;
    cl_eca_rule_free(r);
    return CL_OK;
}

cl_status_t cl_eca_set_enabled(cl_eca_t *e, const char *name, size_t len, bool enabled)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->busy)
        return CL_FAIL(CL_ERR_STATE);
    eca_rule_t *r = rule_get(e, name, len);
    if (r == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    r->enabled = enabled;
    if (enabled && r->failed) {
        r->failed = false;
        free(r->reason);
        r->reason = NULL;
        if (r->fail_pending) {
            r->fail_pending = false;
            if (!r->state_dirty)
                e->n_effects--;
        }
    }
    return CL_OK;
}

cl_status_t cl_eca_set_failed(cl_eca_t *e, const char *name, size_t len, const char *reason)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->busy)
        return CL_FAIL(CL_ERR_STATE);
    eca_rule_t *r = rule_get(e, name, len);
    if (r == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (r->reason == NULL && (r->reason = malloc(CL_ECA_WHY_MAX)) == NULL)
        return CL_FAIL(CL_ERR_FULL);
    const char *s = reason != NULL ? reason : "";
    size_t n = strnlen(s, CL_ECA_WHY_MAX - 1);
    memcpy(r->reason, s, n);
    r->reason[n] = '\0';
    r->failed = true; /* restored from the log: nothing new to report */
    return CL_OK;
}

cl_status_t cl_eca_set_state(cl_eca_t *e, const char *name, size_t len, const uint8_t *state,
                             size_t state_len)
{
    if (e == NULL || (state == NULL && state_len != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->busy)
        return CL_FAIL(CL_ERR_STATE);
    eca_rule_t *r = rule_get(e, name, len);
    if (r == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (r->js == NULL || r->js_script.len == 0)
        return CL_FAIL(CL_ERR_STATE); /* only scripts have state */
    return cl_js_state_set(r->js, state, state_len);
}

cl_status_t cl_eca_rule_info(const cl_eca_t *e, const char *name, size_t len,
                             cl_eca_rule_info_t *info)
{
    if (e == NULL || info == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    const eca_rule_t *r = rule_get(e, name, len);
    if (r == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    memset(info, 0, sizeof *info);
    info->enabled = r->enabled;
    info->failed = r->failed;
    if (r->failed) {
        const char *s = rule_reason(r);
        size_t n = strnlen(s, sizeof info->reason - 1);
        memcpy(info->reason, s, n);
        info->reason[n] = '\0';
    }
    info->fired = r->fired;
    info->matched = r->matched;
    info->js_heap = r->js != NULL ? cl_js_heap_used(r->js) : 0;
    info->mem = cl_eca_rule_mem(r);
    return CL_OK;
}

cl_status_t cl_eca_take_effects(cl_eca_t *e,
                                void (*state)(void *arg, const char *name, const uint8_t *cbor,
                                              size_t len),
                                void (*failed)(void *arg, const char *name, const char *reason),
                                void *arg)
{
    if (e == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->busy)
        return CL_FAIL(CL_ERR_STATE);
    if (e->n_effects == 0)
        return CL_OK; /* the common case: one check per batch */
    e->busy = true;
    cl_status_t result = CL_OK;
    for (uint32_t i = 0; i < e->n_rules && e->n_effects > 0; i++) {
        eca_rule_t *r = e->rules[i];
        if (!r->state_dirty && !r->fail_pending)
            continue;
        if (r->state_dirty) {
            r->state_dirty = false;
            const uint8_t *s;
            size_t n;
            char w[CL_ECA_WHY_MAX];
            if (fetch_state(e, r, &s, &n, w, sizeof w) != CL_OK) {
                /* a state we cannot export cannot be sealed: the rule stops */
                if (!r->fail_pending) {
                    char why[CL_ECA_WHY_MAX];
                    cl_eca_why(why, sizeof why, "%s", w);
                    r->failed = true;
                    if (r->reason == NULL)
                        r->reason = malloc(CL_ECA_WHY_MAX);
                    if (r->reason != NULL)
                        cl_eca_why(r->reason, CL_ECA_WHY_MAX, "%s", why);
                    r->fail_pending = true;
                }
            } else if (state != NULL) {
                state(arg, r->name, s, n);
            }
        }
        if (r->fail_pending) {
            r->fail_pending = false;
            if (failed != NULL)
                failed(arg, r->name, rule_reason(r));
        }
        e->n_effects--;
    }
    e->busy = false;
    return result;
}

cl_status_t cl_eca_dry_run(cl_eca_t *e, const uint8_t *doc, size_t len, const cl_eca_event_t *ev,
                           cl_status_t (*action)(void *arg, const cl_eca_action_t *a),
                           void (*derived)(void *arg, const cl_eca_event_t *d), void *arg,
                           bool *matched, char *why, size_t why_size)
{
    if (e == NULL || doc == NULL || ev == NULL || action == NULL || matched == NULL ||
        (ev->type == NULL && ev->type_len != 0) || (ev->props == NULL && ev->props_len != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->busy)
        return CL_FAIL(CL_ERR_STATE);
    *matched = false;
    if (why != NULL && why_size > 0)
        why[0] = '\0';
    eca_rule_t *r;
    cl_status_t st = cl_eca_rule_compile(doc, len, &e->host.js_env, &e->host.js_limits, &r, why,
                                      why_size);
    if (st != CL_OK)
        return st;
    e->busy = true;
    const eca_rule_t *inst = rule_get(e, r->name, r->name_len);
    dry_t dry = {action, derived, arg, NULL, CL_OK};
    /* the installed version's "changed" memory applies only to the same document */
    if (inst != NULL && inst->doc_len == r->doc_len && memcmp(inst->doc, r->doc, r->doc_len) == 0)
        dry.memory = inst;
    /* a fresh sandbox with a copy of the installed rule's state */
    if (inst != NULL && inst->js != NULL && inst->js_script.len > 0 && r->js != NULL &&
        r->js_script.len > 0) {
        const uint8_t *s;
        size_t n;
        char w[CL_ECA_WHY_MAX];
        if ((st = fetch_state(e, inst, &s, &n, w, sizeof w)) != CL_OK ||
            (st = cl_js_state_set(r->js, s, n)) != CL_OK) {
            cl_eca_why(why, why_size, "state: cannot be copied (%s)", cl_status_str(st));
            goto done;
        }
    }
    if (!cl_eca_props_init(&e->pt, ev->props, ev->props_len)) {
        cl_eca_why(why, why_size, "event.properties: not one well-formed CBOR map");
        st = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    bool on = r->trig != ECA_TRIG_TYPES;
    for (unsigned i = 0; !on && i < r->n_types; i++)
        on = r->types[i].len == ev->type_len &&
             memcmp(rdoc(r, r->types[i]), ev->type, ev->type_len) == 0;
    if (!on)
        goto done;
    cascade_begin(e);
    char w[CL_ECA_WHY_MAX];
    w[0] = '\0';
    run_result_t res = run_rule(e, r, ev, 0, &dry, w, sizeof w);
    *matched = res != RUN_NO;
    if (res == RUN_FAILED) {
        cl_eca_why(why, why_size, "%s", w);
        st = dry.status;
    }
done:
    e->busy = false;
    cl_eca_rule_free(r);
    return st;
}

void cl_eca_stats(const cl_eca_t *e, size_t *rules, size_t *bytes)
{
    size_t b = 0;
    if (e != NULL) {
        b = sizeof *e + (size_t)e->cap_rules * sizeof *e->rules +
            (size_t)e->cap_slots * sizeof *e->slots + e->a_cap + e->q_cap + e->state_cap +
            ((size_t)e->star.cap + e->timers.cap) * sizeof(eca_rule_t *);
        for (uint32_t i = 0; i < e->cap_slots; i++)
            if (e->slots[i].name != NULL)
                b += e->slots[i].len + (size_t)e->slots[i].list.cap * sizeof(eca_rule_t *);
        for (uint32_t i = 0; i < e->n_rules; i++)
            b += cl_eca_rule_mem(e->rules[i]);
    }
    if (rules != NULL)
        *rules = e != NULL ? e->n_rules : 0;
    if (bytes != NULL)
        *bytes = b;
}
