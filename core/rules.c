/*
 * rules.c - the ECA engine (core/engine) inside the core: what it needs
 * from the model (groups, action types, clients), what it causes (actions,
 * rule state, failures) made durable as EFFECTS records before anything is
 * acknowledged or delivered, and the delivery of actions to their targets:
 * OSCORE-protected Observe notifications over CoAP, the answer to a held
 * long poll over HTTP, retries and expiry (docs/model.md).
 */
#include <stdio.h> /* snprintf into buffers only */
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"
#include "eca.h"
#include "schema.h"

#define RETRY_MS 30000
#define OBSERVER_GONE_MS (5 * RETRY_MS)
#define NOTIFY_MAX_ACTIONS 16
#define FX_MAX_ACTIONS 4096 /* pending between two commits */
#define REC_SOFT_MAX (CL_CORE_MAX_RECORD - 4096)

typedef struct fx_action {
    uint32_t target;
    int64_t time_ms;
    char type[CL_NAME_MAX + 1];
    char rule[CL_MNAME_MAX + 1];
    uint8_t *props;
    size_t props_len;
} fx_action_t;

/* One encoded item of an EFFECTS record (a state, a failure or an action). */
typedef struct fx_item {
    uint8_t list; /* 0 states, 1 failures, 2 actions */
    uint8_t *bytes;
    size_t len;
} fx_item_t;

struct cl_effects {
    fx_action_t *acts;
    size_t n_acts, cap_acts;
    fx_item_t *items; /* built at commit time */
    size_t n_items, cap_items;
    bool oom;
};

/* ---- what the engine asks of the model ---- */

static size_t cb_group_members(void *arg, const char *group, size_t len, uint32_t *out, size_t max)
{
    cl_core_t *c = arg;
    size_t n = 0;
    for (size_t i = 0; i < c->st.n_clients && n < max; i++) {
        const cl_client_t *cl = &c->st.clients[i];
        if (!cl->revoked && cl_client_in_group(cl, group, len))
            out[n++] = cl->id;
    }
    return n;
}

static bool cb_in_group(void *arg, uint32_t client, const char *group, size_t len)
{
    cl_core_t *c = arg;
    const cl_client_t *cl = cl_state_client(&c->st, client);
    return cl != NULL && cl_client_in_group(cl, group, len);
}

/* The "schema" of an action type's document, if any. */
static bool acttype_schema(const cl_mobj_t *o, const uint8_t **schema, size_t *len)
{
    cl_cbor_dec_t d;
    size_t n;
    cl_cbor_dec_init(&d, o->doc, o->doc_len);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            return false;
        if (kl == 6 && memcmp(k, "schema", 6) == 0)
            return cl_cbor_dec_raw(&d, schema, len) == CL_OK;
        if (cl_cbor_dec_skip(&d) != CL_OK)
            return false;
    }
    return false;
}

/* Checks an action against the model: its type, its schema, its target. */
static cl_status_t check_action(cl_core_t *c, const cl_eca_action_t *a, char *why, size_t why_size)
{
    const cl_mobj_t *at = cl_model_get(&c->st, CL_MK_ACTTYPE, a->type, a->type_len);
    const uint8_t *schema;
    size_t schema_len;
    if (at == NULL) {
        (void)snprintf(why, why_size, "no action type \"%.*s\"", (int)(a->type_len > 64 ? 64 : a->type_len),
                       a->type);
        return CL_FAIL(CL_ERR_NOT_FOUND);
    }
    if (acttype_schema(at, &schema, &schema_len) &&
        cl_schema_validate(schema, schema_len, a->props, a->props_len, why, why_size) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    const cl_client_t *cl = cl_state_client(&c->st, a->target);
    if (cl == NULL || cl->revoked) {
        (void)snprintf(why, why_size, "action target %u is %s", (unsigned)a->target,
                       cl == NULL ? "not a client" : "revoked");
        return CL_FAIL(CL_ERR_NOT_FOUND);
    }
    return CL_OK;
}

static cl_status_t cb_action(void *arg, const cl_eca_action_t *a, char *why, size_t why_size)
{
    cl_core_t *c = arg;
    struct cl_effects *fx = c->fx;
    cl_status_t st = check_action(c, a, why, why_size);
    if (st != CL_OK)
        return st;
    size_t queued = cl_actions_count(&c->st, a->target);
    for (size_t i = 0; i < fx->n_acts; i++)
        queued += fx->acts[i].target == a->target;
    if (queued >= CL_ACTIONS_PER_TARGET || fx->n_acts >= FX_MAX_ACTIONS ||
        c->st.n_actions + fx->n_acts >= CL_ACTIONS_MAX) {
        (void)snprintf(why, why_size, "the action queue of client %u is full",
                       (unsigned)a->target);
        return CL_FAIL(CL_ERR_FULL);
    }
    if (fx->n_acts == fx->cap_acts) {
        size_t nc = fx->cap_acts ? fx->cap_acts * 2 : 16;
        fx_action_t *p = realloc(fx->acts, nc * sizeof *p);
        if (p == NULL)
            return CL_FAIL(CL_ERR_FULL);
        fx->acts = p;
        fx->cap_acts = nc;
    }
    fx_action_t *x = &fx->acts[fx->n_acts];
    memset(x, 0, sizeof *x);
    if ((x->props = malloc(a->props_len > 0 ? a->props_len : 1)) == NULL)
        return CL_FAIL(CL_ERR_FULL);
    memcpy(x->props, a->props, a->props_len);
    x->props_len = a->props_len;
    x->target = a->target;
    x->time_ms = a->time_ms;
    memcpy(x->type, a->type, a->type_len < CL_NAME_MAX ? a->type_len : CL_NAME_MAX);
    size_t rl = strlen(a->rule);
    memcpy(x->rule, a->rule, rl < CL_MNAME_MAX ? rl : CL_MNAME_MAX);
    fx->n_acts++;
    c->stats_actions++;
    return CL_OK;
}

static int64_t js_now(void *arg)
{
    cl_core_t *c = arg;
    return c->now_ms;
}

/* The budget clock: the host's time (untrusted; the instruction budget holds regardless). */
static uint64_t js_clock_us(void *arg)
{
    cl_core_t *c = arg;
    int64_t ms = 0;
    if (c->host.time_now(c->host.ctx, &ms) != CL_OK || ms < 0)
        return 0;
    return (uint64_t)ms * 1000u;
}

static cl_status_t js_rand(void *arg, uint8_t *out, size_t len)
{
    cl_core_t *c = arg;
    return c->platform.read_rand(c->platform.self, out, len);
}

cl_status_t cl_rules_init(cl_core_t *c)
{
    cl_eca_host_t h;
    memset(&h, 0, sizeof h);
    h.arg = c;
    h.group_members = cb_group_members;
    h.in_group = cb_in_group;
    h.action = cb_action;
    h.derived = NULL;
    h.js_env = (cl_js_env_t){.arg = c, .now_ms = js_now, .clock_us = js_clock_us, .rand = js_rand};
    if ((c->fx = calloc(1, sizeof *c->fx)) == NULL)
        return CL_FAIL(CL_ERR_FULL);
    return cl_eca_create(&c->eca, &h);
}

static void fx_clear(struct cl_effects *fx)
{
    for (size_t i = 0; i < fx->n_acts; i++) {
        cl_wipe(fx->acts[i].props, fx->acts[i].props_len);
        free(fx->acts[i].props);
    }
    fx->n_acts = 0;
    for (size_t i = 0; i < fx->n_items; i++) {
        cl_wipe(fx->items[i].bytes, fx->items[i].len);
        free(fx->items[i].bytes);
    }
    fx->n_items = 0;
    fx->oom = false;
}

void cl_rules_free(cl_core_t *c)
{
    if (c->fx != NULL) {
        fx_clear(c->fx);
        free(c->fx->acts);
        free(c->fx->items);
        free(c->fx);
        c->fx = NULL;
    }
    if (c->eca != NULL)
        cl_eca_free(c->eca);
    c->eca = NULL;
}

void cl_rules_sync(cl_core_t *c, const char *name, size_t len)
{
    char why[CL_ECA_WHY_MAX] = "";
    cl_mobj_t *o = cl_model_get(&c->st, CL_MK_RULE, name, len);
    if (c->eca == NULL)
        return;
    if (o == NULL) {
        (void)!cl_eca_del_rule(c->eca, name, len);
        return;
    }
    if (cl_eca_put_rule(c->eca, o->doc, o->doc_len, o->enabled, c->now_ms, why, sizeof why) !=
        CL_OK) {
        /* checked before it was sealed: only a newer engine refusing an old rule gets here */
        cl_core_log(c, CL_LOG_WARN, "rule %s could not be loaded: %s", o->name, why);
        return;
    }
    if (o->state != NULL &&
        cl_eca_set_state(c->eca, o->name, strlen(o->name), o->state, o->state_len) != CL_OK)
        cl_core_log(c, CL_LOG_WARN, "rule %s: its saved state was refused", o->name);
    if (o->failed)
        (void)!cl_eca_set_failed(c->eca, o->name, strlen(o->name), o->reason);
}

cl_status_t cl_rules_load_all(cl_core_t *c)
{
    for (size_t i = 0; i < c->st.n_objs; i++)
        if (c->st.objs[i].kind == CL_MK_RULE)
            cl_rules_sync(c, c->st.objs[i].name, strlen(c->st.objs[i].name));
    return CL_OK;
}

void cl_rules_event(cl_core_t *c, const char *type, size_t type_len, uint32_t source,
                    int64_t time_ms, const uint8_t *props, size_t props_len)
{
    cl_eca_event_t ev = {type, type_len, source, time_ms, props, props_len};
    if (c->eca == NULL)
        return;
    if (cl_eca_event(c->eca, &ev) != CL_OK)
        cl_core_log(c, CL_LOG_WARN, "rules engine: an event could not be processed");
}

/* ---- effects: one or more EFFECTS records ---- */

static void fx_add_item(struct cl_effects *fx, uint8_t list,
                        void (*enc)(cl_cbor_enc_t *e, const void *a), const void *a)
{
    size_t len;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, NULL, 0);
    enc(&e, a);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK || len > REC_SOFT_MAX) {
        fx->oom = true;
        return;
    }
    if (fx->n_items == fx->cap_items) {
        size_t nc = fx->cap_items ? fx->cap_items * 2 : 32;
        fx_item_t *p = realloc(fx->items, nc * sizeof *p);
        if (p == NULL) {
            fx->oom = true;
            return;
        }
        fx->items = p;
        fx->cap_items = nc;
    }
    uint8_t *b = malloc(len);
    if (b == NULL) {
        fx->oom = true;
        return;
    }
    cl_cbor_enc_init(&e, b, len);
    enc(&e, a);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
        free(b);
        fx->oom = true;
        return;
    }
    fx->items[fx->n_items++] = (fx_item_t){list, b, len};
}

typedef struct kv {
    const char *name;
    const uint8_t *data;
    size_t len;
    const char *reason;
} kv_t;

static void enc_state_item(cl_cbor_enc_t *e, const void *p)
{
    const kv_t *kv = p;
    cl_cbor_enc_array(e, 2);
    cl_cbor_enc_tstr_z(e, kv->name);
    cl_cbor_enc_bstr(e, kv->data, kv->len);
}

static void enc_failure_item(cl_cbor_enc_t *e, const void *p)
{
    const kv_t *kv = p;
    size_t rl = strlen(kv->reason);
    cl_cbor_enc_array(e, 2);
    cl_cbor_enc_tstr_z(e, kv->name);
    cl_cbor_enc_tstr(e, kv->reason, rl < CL_MODEL_WHY_MAX - 1 ? rl : CL_MODEL_WHY_MAX - 1);
}

typedef struct act_item {
    const fx_action_t *a;
    uint64_t id;
    int64_t expires;
} act_item_t;

static void enc_action_item(cl_cbor_enc_t *e, const void *p)
{
    const act_item_t *x = p;
    cl_cbor_enc_array(e, 7);
    cl_cbor_enc_uint(e, x->id);
    cl_cbor_enc_uint(e, x->a->target);
    cl_cbor_enc_tstr_z(e, x->a->type);
    cl_cbor_enc_raw(e, x->a->props, x->a->props_len);
    cl_cbor_enc_int(e, x->a->time_ms);
    cl_cbor_enc_tstr_z(e, x->a->rule);
    cl_cbor_enc_int(e, x->expires);
}

static void on_state(void *arg, const char *name, const uint8_t *cbor, size_t len)
{
    cl_core_t *c = arg;
    kv_t kv = {name, cbor, len, NULL};
    if (cl_model_get(&c->st, CL_MK_RULE, name, strlen(name)) != NULL)
        fx_add_item(c->fx, 0, enc_state_item, &kv);
}

static void on_failed(void *arg, const char *name, const char *reason)
{
    cl_core_t *c = arg;
    kv_t kv = {name, NULL, 0, reason};
    if (cl_model_get(&c->st, CL_MK_RULE, name, strlen(name)) == NULL)
        return;
    cl_core_log(c, CL_LOG_WARN, "rule %s failed and is stopped", name); /* the reason is the owner's */
    fx_add_item(c->fx, 1, enc_failure_item, &kv);
}

/* Packs items [from, to) into one record. */
static cl_status_t commit_items(cl_core_t *c, size_t from, size_t to)
{
    struct cl_effects *fx = c->fx;
    size_t counts[3] = {0, 0, 0}, total = 64;
    for (size_t i = from; i < to; i++) {
        counts[fx->items[i].list]++;
        total += fx->items[i].len;
    }
    uint8_t *rec = malloc(total);
    if (rec == NULL)
        return CL_FAIL(CL_ERR_FULL);
    cl_cbor_enc_t e;
    size_t len;
    cl_cbor_enc_init(&e, rec, total);
    cl_cbor_enc_array(&e, 5);
    cl_cbor_enc_uint(&e, CL_REC_EFFECTS);
    cl_cbor_enc_int(&e, c->now_ms);
    for (uint8_t list = 0; list < 3; list++) {
        cl_cbor_enc_array(&e, counts[list]);
        for (size_t i = from; i < to; i++)
            if (fx->items[i].list == list)
                cl_cbor_enc_raw(&e, fx->items[i].bytes, fx->items[i].len);
    }
    cl_status_t st = cl_cbor_enc_finish(&e, &len);
    if (st == CL_OK)
        st = cl_core_commit(c, rec, len);
    cl_wipe(rec, total);
    free(rec);
    return st;
}

cl_status_t cl_rules_commit(cl_core_t *c)
{
    struct cl_effects *fx = c->fx;
    cl_status_t st = CL_OK;
    if (c->eca == NULL || fx == NULL)
        return CL_OK;
    if (cl_eca_take_effects(c->eca, on_state, on_failed, c) != CL_OK)
        fx->oom = true;
    uint64_t id = c->st.next_action_id;
    if (id == 0)
        id = 1;
    for (size_t i = 0; i < fx->n_acts; i++) {
        act_item_t x = {&fx->acts[i], id + i, c->now_ms + CL_ACTION_TTL_MS};
        fx_add_item(fx, 2, enc_action_item, &x);
    }
    if (fx->oom) {
        cl_core_log(c, CL_LOG_ERROR, "rules: out of memory while sealing effects; dropped");
        fx_clear(fx);
        return CL_FAIL(CL_ERR_FULL);
    }
    /* greedy packing: items keep their order (actions stay in queue order) */
    size_t from = 0, size = 0;
    for (size_t i = 0; i < fx->n_items && st == CL_OK; i++) {
        if (i > from && size + fx->items[i].len > REC_SOFT_MAX) {
            st = commit_items(c, from, i);
            from = i;
            size = 0;
        }
        size += fx->items[i].len;
    }
    if (st == CL_OK && from < fx->n_items)
        st = commit_items(c, from, fx->n_items);
    /* notify each target once, in the order of its first new action */
    if (st == CL_OK)
        for (size_t i = 0; i < fx->n_acts; i++) {
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = fx->acts[j].target == fx->acts[i].target;
            if (!seen)
                cl_rules_notify(c, fx->acts[i].target, false);
        }
    fx_clear(fx);
    return st;
}

/* ---- delivery ---- */

/* {"actions": [oldest pending, at most NOTIFY_MAX_ACTIONS]}; *newest = the last id listed. */
static cl_status_t pending_body(cl_core_t *c, uint32_t client, uint8_t *out, size_t size,
                                size_t *len, uint64_t *newest, size_t *count)
{
    cl_cbor_enc_t e;
    size_t n = 0;
    for (size_t i = cl_actions_next(&c->st, client, 0); i < c->st.n_actions && n < NOTIFY_MAX_ACTIONS;
         i = cl_actions_next(&c->st, client, i + 1))
        n++;
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, "actions");
    cl_cbor_enc_array(&e, n);
    *newest = 0;
    size_t k = 0;
    for (size_t i = cl_actions_next(&c->st, client, 0); i < c->st.n_actions && k < n;
         i = cl_actions_next(&c->st, client, i + 1), k++) {
        cl_action_encode(&e, &c->st.actions[i]);
        *newest = c->st.actions[i].id;
    }
    *count = n;
    return cl_cbor_enc_finish(&e, len);
}

cl_status_t cl_rules_pending_body(cl_core_t *c, uint32_t client, uint8_t *out, size_t size,
                                  size_t *len, uint64_t *newest, size_t *count)
{
    return pending_body(c, client, out, size, len, newest, count);
}

static void notify_session(cl_core_t *c, cl_session_t *x)
{
    uint8_t *body = malloc(CL_CORE_MAX_MESSAGE), *coap = malloc(CL_CORE_MAX_MESSAGE),
            *out = malloc(CL_CORE_MAX_MESSAGE);
    size_t body_len, coap_len, out_len, count;
    uint64_t newest;
    cl_coap_builder_t b;
    if (body == NULL || coap == NULL || out == NULL)
        goto done;
    if (pending_body(c, x->client_id, body, CL_CORE_MAX_MESSAGE - 128, &body_len, &newest,
                     &count) != CL_OK ||
        count == 0)
        goto done;
    bool oneshot = x->obs_oneshot;
    uint16_t mid = c->next_mid++;
    cl_coap_build_init(&b, coap, CL_CORE_MAX_MESSAGE, oneshot ? CL_COAP_NON : CL_COAP_CON,
                       CL_COAP_CONTENT, mid, x->obs_token, x->obs_tkl);
    if (!oneshot)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, (++x->obs_seq) & 0xffffffu);
    cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR);
    cl_coap_build_payload(&b, body, body_len);
    cl_oscore_resp_opts_t opts = {.new_piv = !oneshot};
    if (cl_coap_build_finish(&b, &coap_len) != CL_OK ||
        cl_oscore_protect_response(&x->oscore, &x->obs_req, &opts, coap, coap_len, out,
                                   CL_CORE_MAX_MESSAGE, &out_len) != CL_OK)
        goto done;
    x->obs_mid = mid;
    x->obs_sent_ms = c->now_ms;
    x->obs_last_id = newest;
    if (oneshot)
        x->obs_active = false; /* a long poll gets one answer */
    if (c->host.send != NULL &&
        c->host.send(c->host.ctx, x->obs_peer, x->obs_transport, out, out_len) == CL_OK)
        c->stats_notified++;
done:
    if (body != NULL)
        cl_wipe(body, CL_CORE_MAX_MESSAGE);
    if (coap != NULL)
        cl_wipe(coap, CL_CORE_MAX_MESSAGE);
    free(body);
    free(coap);
    free(out);
}

void cl_rules_notify(cl_core_t *c, uint32_t client, bool force)
{
    for (size_t i = 0; i < c->n_sessions; i++) {
        cl_session_t *x = &c->sessions[i];
        if (x->state != CL_SESS_ESTABLISHED || !x->obs_active || x->client_id != client ||
            x->role == CL_ROLE_ENROLLEE || x->role == CL_ROLE_NONE)
            continue;
        if (!force) { /* only when something newer than what it was told is queued */
            bool newer = false;
            for (size_t k = cl_actions_next(&c->st, client, 0); k < c->st.n_actions && !newer;
                 k = cl_actions_next(&c->st, client, k + 1))
                newer = c->st.actions[k].id > x->obs_last_id;
            if (!newer)
                continue;
        }
        notify_session(c, x);
    }
}

void cl_rules_rst(cl_core_t *c, uint64_t peer, uint16_t mid)
{
    for (size_t i = 0; i < c->n_sessions; i++) {
        cl_session_t *x = &c->sessions[i];
        if (x->state == CL_SESS_ESTABLISHED && x->obs_active && x->obs_peer == peer &&
            x->obs_mid == mid)
            x->obs_active = false;
    }
}

/* Drops expired actions (DONE records with reason 1), per target. */
static void expire_actions(cl_core_t *c)
{
    uint8_t rec[64 + 1024 * 9];
    for (;;) {
        uint32_t target = 0;
        size_t n = 0;
        for (size_t i = 0; i < c->st.n_actions; i++)
            if (c->st.actions[i].expires_ms <= c->now_ms) {
                target = c->st.actions[i].target;
                break;
            }
        if (target == 0)
            return;
        cl_cbor_enc_t e;
        size_t len;
        for (size_t i = 0; i < c->st.n_actions && n < 1024; i++)
            n += c->st.actions[i].target == target && c->st.actions[i].expires_ms <= c->now_ms;
        cl_cbor_enc_init(&e, rec, sizeof rec);
        cl_cbor_enc_array(&e, 5);
        cl_cbor_enc_uint(&e, CL_REC_DONE);
        cl_cbor_enc_int(&e, c->now_ms);
        cl_cbor_enc_uint(&e, target);
        cl_cbor_enc_array(&e, n);
        size_t k = 0;
        for (size_t i = 0; i < c->st.n_actions && k < n; i++)
            if (c->st.actions[i].target == target && c->st.actions[i].expires_ms <= c->now_ms) {
                cl_cbor_enc_uint(&e, c->st.actions[i].id);
                k++;
            }
        cl_cbor_enc_uint(&e, 1);
        if (cl_cbor_enc_finish(&e, &len) != CL_OK || cl_core_commit(c, rec, len) != CL_OK)
            return; /* retried at the next tick */
        c->stats_expired += n;
        cl_core_log(c, CL_LOG_INFO, "%zu undelivered actions for client %u expired", n,
                    (unsigned)target);
    }
}

void cl_rules_tick(cl_core_t *c)
{
    if (c->eca == NULL || c->st.phase != CL_PHASE_PROVISIONED)
        return;
    if (cl_eca_tick(c->eca, c->now_ms) != CL_OK)
        cl_core_log(c, CL_LOG_WARN, "rules engine: timers failed");
    if (cl_rules_commit(c) != CL_OK)
        cl_core_log(c, CL_LOG_WARN, "rules: effects of timers not sealed");
    expire_actions(c);
    if (c->now_ms < c->next_retry_ms)
        return;
    c->next_retry_ms = c->now_ms + RETRY_MS / 3;
    for (size_t i = 0; i < c->n_sessions; i++) {
        cl_session_t *x = &c->sessions[i];
        if (x->state != CL_SESS_ESTABLISHED || !x->obs_active || x->obs_oneshot ||
            c->now_ms - x->obs_sent_ms < RETRY_MS ||
            cl_actions_next(&c->st, x->client_id, 0) >= c->st.n_actions)
            continue;
        if (c->now_ms - x->used_ms > OBSERVER_GONE_MS) {
            /* notified again and again, not a word back (no ack, no request): the observer is
             * gone (RFC 7641 4.5); it registers again when it comes back, the queue waits */
            x->obs_active = false;
            continue;
        }
        notify_session(c, x); /* still unacknowledged: tell again */
    }
}
