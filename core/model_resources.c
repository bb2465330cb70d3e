/*
 * model_resources.c - the model's resources (docs/model.md): client groups,
 * action types, rules (with validation / dry run), publishers, scenario
 * instances, and the delivery of actions (GET /actions with Observe or a
 * long poll, POST /actions/ack).
 *
 * Same discipline as resources.c: parse everything from the request bytes,
 * check roles first, check the whole change (the engine compiles a rule,
 * a scenario is expanded completely) before one sealed record makes it
 * durable; only then is the engine updated and the answer sent.
 */
#include <stdio.h> /* snprintf into buffers only */
#include <stdlib.h>
#include <string.h>

#include "cloister/json.h"
#include "eca.h"
#include "resources.h"
#include "scenario.h"
#include "schema.h"

#define CL_COAP_CONFLICT CL_COAP_CODE(4, 9)
#define LIST_MAX_BODY (60 * 1024)
#define MAX_ACK_IDS 64
#define DRY_MAX_BODY 8192

/* ---- helpers ---- */

cl_status_t cl_model_conflict(reqctx_t *r, uint64_t current)
{
    cl_cbor_enc_t e;
    r->code = CL_COAP_PRECONDITION_FAILED;
    cl_cbor_enc_init(&e, r->body, sizeof r->body);
    cl_cbor_enc_map(&e, 3);
    cl_cbor_enc_tstr_z(&e, "error");
    cl_cbor_enc_tstr_z(&e, "version-conflict");
    cl_cbor_enc_tstr_z(&e, "message");
    cl_cbor_enc_tstr_z(&e, "changed meanwhile: read it again, then retry with its version");
    cl_cbor_enc_tstr_z(&e, "version");
    cl_cbor_enc_uint(&e, current);
    return cl_cbor_enc_finish(&e, &r->body_len);
}

static cl_status_t storage_failed(reqctx_t *r)
{
    return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                        "the sealed log could not be written; nothing changed");
}

static cl_status_t forbidden(reqctx_t *r, const char *who)
{
    return cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", who);
}

static cl_status_t method(reqctx_t *r, const char *allowed)
{
    return cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", allowed);
}

static cl_status_t version_body(reqctx_t *r, uint8_t code, uint64_t version)
{
    return cl_res_uint_answer(r, code, "version", version);
}

static cl_status_t empty_body(reqctx_t *r, uint8_t code)
{
    r->code = code;
    r->body[0] = 0xa0;
    r->body_len = 1;
    return CL_OK;
}

/* Splits "/a/b/c" into at most 4 segments (pointers into path). */
static size_t split_path(const char *path, const char *seg[4], size_t len[4])
{
    size_t n = 0;
    const char *p = path;
    while (*p == '/' && n < 4) {
        const char *s = ++p;
        while (*p != 0 && *p != '/')
            p++;
        seg[n] = s;
        len[n] = (size_t)(p - s);
        n++;
    }
    return *p == 0 ? n : 0;
}

static bool seg_is(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/* The optional "if_version" of the body or ?if_version= of the request. */
static bool if_version(reqctx_t *r, uint64_t *v)
{
    const char *q;
    size_t ql;
    int64_t x;
    if (cl_res_get_uint(r->req->payload, r->req->payload_len, "if_version", v))
        return true;
    if (cl_res_get_query(r->req, "if_version", &q, &ql) && cl_res_parse_int(q, ql, &x) && x >= 0) {
        *v = (uint64_t)x;
        return true;
    }
    return false;
}

/* Whether a CBOR document mentions a name as a text string (a conservative "in use"). */
static bool doc_mentions(const uint8_t *doc, size_t len, const char *name, size_t nl)
{
    uint8_t head[CL_CBOR_MAX_HEAD + CL_MNAME_MAX + 2];
    cl_cbor_enc_t e;
    size_t hl;
    cl_cbor_enc_init(&e, head, sizeof head);
    cl_cbor_enc_tstr(&e, name, nl);
    if (cl_cbor_enc_finish(&e, &hl) != CL_OK)
        return true;
    for (size_t i = 0; i + hl <= len; i++)
        if (memcmp(doc + i, head, hl) == 0)
            return true;
    return false;
}

static bool used_by_rules(cl_state_t *s, const char *name, size_t nl, const char *except_scn)
{
    for (size_t i = 0; i < s->n_objs; i++) {
        const cl_mobj_t *o = &s->objs[i];
        if (o->kind != CL_MK_RULE)
            continue;
        if (except_scn != NULL && strcmp(o->scenario, except_scn) == 0)
            continue;
        if (doc_mentions(o->doc, o->doc_len, name, nl))
            return true;
    }
    return false;
}

/* A [11, t, kind, name, doc|null, scenario] record, committed. */
static cl_status_t commit_model(cl_core_t *c, int kind, const char *name, size_t nl,
                                const uint8_t *doc, size_t dl, const char *scenario)
{
    size_t cap = 64 + nl + dl + CL_NAME_MAX, len;
    uint8_t *rec = malloc(cap);
    cl_cbor_enc_t e;
    if (rec == NULL)
        return CL_FAIL(CL_ERR_FULL);
    cl_cbor_enc_init(&e, rec, cap);
    cl_cbor_enc_array(&e, 6);
    cl_cbor_enc_uint(&e, CL_REC_MODEL);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_uint(&e, (uint64_t)kind);
    cl_cbor_enc_tstr(&e, name, nl);
    if (doc != NULL)
        cl_cbor_enc_raw(&e, doc, dl);
    else
        cl_cbor_enc_null(&e);
    cl_cbor_enc_tstr_z(&e, scenario != NULL ? scenario : "");
    cl_status_t st = cl_cbor_enc_finish(&e, &len);
    if (st == CL_OK)
        st = cl_core_commit(c, rec, len);
    cl_wipe(rec, cap);
    free(rec);
    return st;
}

/* ---- clients: groups ---- */

static cl_status_t post_groups(reqctx_t *r, uint32_t id)
{
    cl_core_t *c = r->c;
    cl_cbor_dec_t d;
    const uint8_t *g;
    size_t gl, n;
    uint8_t rec[2048 + 64];
    cl_cbor_enc_t e;
    size_t len;
    cl_client_t *cl = cl_state_client(&c->st, id);
    if (cl == NULL)
        return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such client");
    if (!cl_res_map_find(r->req->payload, r->req->payload_len, "groups", &d) ||
        cl_cbor_dec_raw(&d, &g, &gl) != CL_OK || gl > 2048)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "{\"groups\": [names]} expected");
    cl_cbor_dec_init(&d, g, gl);
    bool ok = cl_cbor_dec_array(&d, &n) == CL_OK && n <= 16;
    for (size_t i = 0; ok && i < n; i++) {
        const char *s;
        size_t sl;
        ok = cl_cbor_dec_tstr(&d, &s, &sl) == CL_OK && cl_model_name_valid(s, sl, CL_NAME_MAX);
    }
    if (!ok || !cl_cbor_dec_at_end(&d))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                            "groups: 0..16 names of 1..64 characters [A-Za-z0-9._-]");
    cl_cbor_enc_init(&e, rec, sizeof rec);
    cl_cbor_enc_array(&e, 4);
    cl_cbor_enc_uint(&e, CL_REC_GROUPS);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_uint(&e, id);
    cl_cbor_enc_bstr(&e, g, gl);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK || cl_core_commit(c, rec, len) != CL_OK)
        return storage_failed(r);
    return empty_body(r, CL_COAP_CHANGED);
}

/* ---- action types ---- */

static cl_status_t put_action_type(reqctx_t *r, const char *name, size_t nl)
{
    cl_core_t *c = r->c;
    const uint8_t *p = r->req->payload, *schema = NULL;
    size_t n = r->req->payload_len, schema_len = 0, desc_len = 0, len;
    const char *desc = NULL;
    cl_cbor_dec_t d;
    char why[CL_MODEL_WHY_MAX];
    uint64_t want;
    uint8_t doc[CL_SCHEMA_MAX + 512];
    cl_cbor_enc_t e;

    if (!cl_model_name_valid(name, nl, CL_NAME_MAX))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                            "action type names: 1..64 characters [A-Za-z0-9._-]");
    if (cl_res_map_find(p, n, "description", &d) &&
        (cl_cbor_dec_tstr(&d, &desc, &desc_len) != CL_OK || desc_len > 256))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "description: text <= 256");
    if (cl_res_map_find(p, n, "schema", &d)) {
        cl_cbor_type_t ty;
        if (cl_cbor_dec_peek(&d, &ty) != CL_OK || ty != CL_CBOR_MAP ||
            cl_cbor_dec_raw(&d, &schema, &schema_len) != CL_OK || schema_len > CL_SCHEMA_MAX)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-schema",
                                "schema: a JSON Schema object of <= 4096 bytes");
        if (cl_schema_check(schema, schema_len, why, sizeof why) != CL_OK)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-schema", why);
    }
    cl_mobj_t *old = cl_model_get(&c->st, CL_MK_ACTTYPE, name, nl);
    if (if_version(r, &want) && want != (old != NULL ? old->version : 0))
        return cl_model_conflict(r, old != NULL ? old->version : 0);
    cl_cbor_enc_init(&e, doc, sizeof doc);
    cl_cbor_enc_map(&e, 1 + (desc != NULL) + (schema != NULL));
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr(&e, name, nl);
    if (desc != NULL) {
        cl_cbor_enc_tstr_z(&e, "description");
        cl_cbor_enc_tstr(&e, desc, desc_len);
    }
    if (schema != NULL) {
        cl_cbor_enc_tstr_z(&e, "schema");
        cl_cbor_enc_raw(&e, schema, schema_len);
    }
    if (cl_cbor_enc_finish(&e, &len) != CL_OK)
        return cl_res_error(r, CL_COAP_REQUEST_TOO_LARGE, "too-large", "action type too large");
    char scn[CL_NAME_MAX + 1] = "";
    if (old != NULL)
        memcpy(scn, old->scenario, sizeof scn);
    bool existed = old != NULL;
    if (commit_model(c, CL_MK_ACTTYPE, name, nl, doc, len, scn) != CL_OK)
        return storage_failed(r);
    return version_body(r, existed ? CL_COAP_CHANGED : CL_COAP_CREATED,
                        cl_model_get(&c->st, CL_MK_ACTTYPE, name, nl)->version);
}

static cl_status_t delete_object(reqctx_t *r, int kind, const char *name, size_t nl)
{
    cl_core_t *c = r->c;
    uint64_t want;
    cl_mobj_t *o = cl_model_get(&c->st, kind, name, nl);
    if (o == NULL)
        return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such object");
    if (if_version(r, &want) && want != o->version)
        return cl_model_conflict(r, o->version);
    if (kind == CL_MK_ACTTYPE && used_by_rules(&c->st, name, nl, NULL))
        return cl_res_error(r, CL_COAP_CONFLICT, "in-use",
                            "a rule names this action type: change or remove the rule first");
    if (commit_model(c, kind, name, nl, NULL, 0, NULL) != CL_OK)
        return storage_failed(r);
    if (kind == CL_MK_RULE)
        cl_rules_sync(c, name, nl);
    return empty_body(r, CL_COAP_DELETED);
}

/* Lists objects of a kind: [{"name", "version", <doc's entries>...}] */
static cl_status_t list_objects(reqctx_t *r, int kind, bool with_rule_status)
{
    cl_state_t *s = &r->c->st;
    uint8_t *big = malloc(LIST_MAX_BODY);
    cl_cbor_enc_t e;
    size_t n = 0;
    if (big == NULL)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    for (size_t i = 0; i < s->n_objs; i++)
        n += s->objs[i].kind == kind;
    cl_cbor_enc_init(&e, big, LIST_MAX_BODY);
    cl_cbor_enc_array(&e, n);
    for (size_t i = 0; i < s->n_objs; i++) {
        const cl_mobj_t *o = &s->objs[i];
        if (o->kind != kind)
            continue;
        if (with_rule_status) {
            cl_eca_rule_info_t info;
            memset(&info, 0, sizeof info);
            if (r->c->eca != NULL)
                (void)!cl_eca_rule_info(r->c->eca, o->name, strlen(o->name), &info);
            bool failed = o->failed || info.failed;
            const char *reason = o->failed ? o->reason : info.reason;
            cl_cbor_enc_map(&e, 6 + failed + (o->scenario[0] != 0));
            cl_cbor_enc_tstr_z(&e, "name");
            cl_cbor_enc_tstr_z(&e, o->name);
            cl_cbor_enc_tstr_z(&e, "version");
            cl_cbor_enc_uint(&e, o->version);
            cl_cbor_enc_tstr_z(&e, "enabled");
            cl_cbor_enc_bool(&e, o->enabled);
            cl_cbor_enc_tstr_z(&e, "status");
            cl_cbor_enc_tstr_z(&e, failed ? "failed" : "ok");
            if (failed) {
                cl_cbor_enc_tstr_z(&e, "reason");
                cl_cbor_enc_tstr_z(&e, reason);
            }
            cl_cbor_enc_tstr_z(&e, "fired");
            cl_cbor_enc_uint(&e, info.fired);
            cl_cbor_enc_tstr_z(&e, "memory");
            cl_cbor_enc_uint(&e, info.mem);
            if (o->scenario[0] != 0) {
                cl_cbor_enc_tstr_z(&e, "scenario");
                cl_cbor_enc_tstr_z(&e, o->scenario);
            }
            continue;
        }
        /* the document's own map entries, plus name and version */
        cl_cbor_dec_t d;
        size_t pairs;
        cl_cbor_dec_init(&d, o->doc, o->doc_len);
        if (cl_cbor_dec_map(&d, &pairs) != CL_OK)
            pairs = 0;
        size_t head = o->doc_len - cl_cbor_dec_remaining(&d);
        size_t extra = 1 + (cl_res_map_find(o->doc, o->doc_len, "name", &d) ? 0 : 1);
        cl_cbor_enc_map(&e, pairs + extra);
        if (extra == 2) {
            cl_cbor_enc_tstr_z(&e, "name");
            cl_cbor_enc_tstr_z(&e, o->name);
        }
        cl_cbor_enc_tstr_z(&e, "version");
        cl_cbor_enc_uint(&e, o->version);
        cl_cbor_enc_raw(&e, o->doc + head, o->doc_len - head);
    }
    return cl_res_big_answer(r, &e, big);
}

/* ---- rules ---- */

static cl_status_t put_rule(reqctx_t *r, const char *name, size_t nl)
{
    cl_core_t *c = r->c;
    cl_cbor_dec_t d;
    const uint8_t *doc;
    size_t dl;
    const char *dn;
    size_t dnl;
    char why[CL_ECA_WHY_MAX] = "";
    uint64_t want;
    cl_cbor_type_t ty;

    if (!cl_res_map_find(r->req->payload, r->req->payload_len, "rule", &d) ||
        cl_cbor_dec_peek(&d, &ty) != CL_OK || ty != CL_CBOR_MAP ||
        cl_cbor_dec_raw(&d, &doc, &dl) != CL_OK)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                            "{\"rule\": {...}, \"if_version\"?: n} expected");
    if (dl > CL_ECA_MAX_RULE_DOC)
        return cl_res_error(r, CL_COAP_REQUEST_TOO_LARGE, "too-large", "rules are <= 16 KiB");
    if (cl_eca_check_rule(doc, dl, &dn, &dnl, why, sizeof why) != CL_OK)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-rule", why[0] ? why : "invalid rule");
    if (dnl != nl || memcmp(dn, name, nl) != 0)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-rule",
                            "the rule's \"name\" must be the name in the path");
    cl_mobj_t *old = cl_model_get(&c->st, CL_MK_RULE, name, nl);
    if (old == NULL && c->st.n_objs >= CL_MODEL_MAX_OBJECTS)
        return cl_res_error(r, CL_COAP_REQUEST_TOO_LARGE, "too-large", "too many objects");
    if (if_version(r, &want) && want != (old != NULL ? old->version : 0))
        return cl_model_conflict(r, old != NULL ? old->version : 0);
    char scn[CL_NAME_MAX + 1] = "";
    if (old != NULL)
        memcpy(scn, old->scenario, sizeof scn);
    bool existed = old != NULL;
    if (commit_model(c, CL_MK_RULE, name, nl, doc, dl, scn) != CL_OK)
        return storage_failed(r);
    cl_rules_sync(c, name, nl);
    return version_body(r, existed ? CL_COAP_CHANGED : CL_COAP_CREATED,
                        cl_model_get(&c->st, CL_MK_RULE, name, nl)->version);
}

static cl_status_t get_rule(reqctx_t *r, const char *name, size_t nl)
{
    cl_mobj_t *o = cl_model_get(&r->c->st, CL_MK_RULE, name, nl);
    cl_eca_rule_info_t info;
    cl_cbor_enc_t e;
    if (o == NULL)
        return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such rule");
    memset(&info, 0, sizeof info);
    if (r->c->eca != NULL)
        (void)!cl_eca_rule_info(r->c->eca, name, nl, &info);
    bool failed = o->failed || info.failed;
    size_t cap = o->doc_len + o->state_len + 512;
    uint8_t *big = malloc(cap);
    if (big == NULL)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    cl_cbor_enc_init(&e, big, cap);
    cl_cbor_enc_map(&e, 6 + failed + (o->state != NULL));
    cl_cbor_enc_tstr_z(&e, "rule");
    cl_cbor_enc_raw(&e, o->doc, o->doc_len);
    cl_cbor_enc_tstr_z(&e, "version");
    cl_cbor_enc_uint(&e, o->version);
    cl_cbor_enc_tstr_z(&e, "enabled");
    cl_cbor_enc_bool(&e, o->enabled);
    cl_cbor_enc_tstr_z(&e, "status");
    cl_cbor_enc_tstr_z(&e, failed ? "failed" : "ok");
    if (failed) {
        cl_cbor_enc_tstr_z(&e, "reason");
        cl_cbor_enc_tstr_z(&e, o->failed ? o->reason : info.reason);
    }
    cl_cbor_enc_tstr_z(&e, "fired");
    cl_cbor_enc_uint(&e, info.fired);
    cl_cbor_enc_tstr_z(&e, "scenario");
    cl_cbor_enc_tstr_z(&e, o->scenario);
    if (o->state != NULL) {
        cl_cbor_enc_tstr_z(&e, "state");
        cl_cbor_enc_raw(&e, o->state, o->state_len);
    }
    return cl_res_big_answer(r, &e, big);
}

static cl_status_t rule_flags(reqctx_t *r, const char *name, size_t nl, bool enabled)
{
    cl_core_t *c = r->c;
    uint8_t rec[CL_MNAME_MAX + 64];
    cl_cbor_enc_t e;
    size_t len;
    cl_mobj_t *o = cl_model_get(&c->st, CL_MK_RULE, name, nl);
    if (o == NULL)
        return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such rule");
    cl_cbor_enc_init(&e, rec, sizeof rec);
    cl_cbor_enc_array(&e, 4);
    cl_cbor_enc_uint(&e, CL_REC_RULE_FLAGS);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_tstr(&e, name, nl);
    cl_cbor_enc_bool(&e, enabled);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK || cl_core_commit(c, rec, len) != CL_OK)
        return storage_failed(r);
    if (c->eca != NULL)
        (void)!cl_eca_set_enabled(c->eca, name, nl, enabled);
    return version_body(r, CL_COAP_CHANGED, cl_model_get(&c->st, CL_MK_RULE, name, nl)->version);
}

/* Dry run output: actions and derived events, encoded as they come. */
typedef struct dry {
    cl_cbor_enc_t acts, evs;
    uint8_t abuf[DRY_MAX_BODY], ebuf[DRY_MAX_BODY];
    size_t na, ne;
} dry_t;

static cl_status_t dry_action(void *arg, const cl_eca_action_t *a)
{
    dry_t *d = arg;
    cl_cbor_enc_map(&d->acts, 3);
    cl_cbor_enc_tstr_z(&d->acts, "action");
    cl_cbor_enc_tstr(&d->acts, a->type, a->type_len);
    cl_cbor_enc_tstr_z(&d->acts, "target");
    cl_cbor_enc_uint(&d->acts, a->target);
    cl_cbor_enc_tstr_z(&d->acts, "properties");
    cl_cbor_enc_raw(&d->acts, a->props, a->props_len);
    d->na++;
    return CL_OK;
}

static void dry_derived(void *arg, const cl_eca_event_t *ev)
{
    dry_t *d = arg;
    cl_cbor_enc_map(&d->evs, 2);
    cl_cbor_enc_tstr_z(&d->evs, "type");
    cl_cbor_enc_tstr(&d->evs, ev->type, ev->type_len);
    cl_cbor_enc_tstr_z(&d->evs, "properties");
    cl_cbor_enc_raw(&d->evs, ev->props, ev->props_len);
    d->ne++;
}

/* POST /rules/{name}/validate or /rules/validate: a dry run on a sample event. */
static cl_status_t validate_rule(reqctx_t *r, const uint8_t *doc, size_t dl)
{
    cl_core_t *c = r->c;
    const uint8_t *p = r->req->payload, *ev, *props = NULL;
    size_t n = r->req->payload_len, evl, props_len = 0;
    cl_cbor_dec_t d;
    cl_cbor_type_t ty;
    const char *type = NULL;
    size_t type_len = 0;
    uint64_t source = r->x->client_id;
    int64_t t = c->now_ms;
    char why[CL_ECA_WHY_MAX] = "";
    bool matched = false;

    if (doc == NULL) {
        if (!cl_res_map_find(p, n, "rule", &d) || cl_cbor_dec_peek(&d, &ty) != CL_OK ||
            ty != CL_CBOR_MAP || cl_cbor_dec_raw(&d, &doc, &dl) != CL_OK ||
            dl > CL_ECA_MAX_RULE_DOC)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                                "{\"rule\": {...}, \"event\": {...}} expected");
        if (cl_eca_check_rule(doc, dl, NULL, NULL, why, sizeof why) != CL_OK)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-rule", why[0] ? why : "invalid rule");
    }
    if (!cl_res_map_find(p, n, "event", &d) || cl_cbor_dec_peek(&d, &ty) != CL_OK ||
        ty != CL_CBOR_MAP || cl_cbor_dec_raw(&d, &ev, &evl) != CL_OK ||
        !cl_res_get_tstr(ev, evl, "type", &type, &type_len) || type_len == 0 || type_len > 64 ||
        !cl_res_map_find(ev, evl, "properties", &d) || cl_cbor_dec_peek(&d, &ty) != CL_OK ||
        ty != CL_CBOR_MAP || cl_cbor_dec_raw(&d, &props, &props_len) != CL_OK)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                            "event: {\"type\": text, \"properties\": map, \"source\"?, \"time\"?}");
    if (cl_res_map_find(ev, evl, "source", &d) &&
        (cl_cbor_dec_uint(&d, &source) != CL_OK || source > UINT32_MAX))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "source: a client id");
    if (cl_res_map_find(ev, evl, "time", &d) && cl_cbor_dec_int(&d, &t) != CL_OK)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "time: ms since the epoch");
    dry_t *dr = malloc(sizeof *dr);
    if (dr == NULL || c->eca == NULL) {
        free(dr);
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    }
    dr->na = dr->ne = 0;
    cl_cbor_enc_init(&dr->acts, dr->abuf, sizeof dr->abuf);
    cl_cbor_enc_init(&dr->evs, dr->ebuf, sizeof dr->ebuf);
    cl_eca_event_t e = {type, type_len, (uint32_t)source, t, props, props_len};
    cl_status_t st = cl_eca_dry_run(c->eca, doc, dl, &e, dry_action, dry_derived, dr, &matched,
                                    why, sizeof why);
    size_t al = 0, el = 0;
    if (cl_cbor_enc_finish(&dr->acts, &al) != CL_OK || cl_cbor_enc_finish(&dr->evs, &el) != CL_OK) {
        free(dr);
        return cl_res_error(r, CL_COAP_REQUEST_TOO_LARGE, "too-large", "the dry run emitted too much");
    }
    size_t cap = al + el + sizeof why + 128;
    uint8_t *big = malloc(cap);
    if (big == NULL) {
        free(dr);
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    }
    cl_cbor_enc_t o;
    cl_cbor_enc_init(&o, big, cap);
    cl_cbor_enc_map(&o, 3 + (st != CL_OK));
    cl_cbor_enc_tstr_z(&o, "matched");
    cl_cbor_enc_bool(&o, matched);
    cl_cbor_enc_tstr_z(&o, "actions");
    cl_cbor_enc_array(&o, dr->na);
    cl_cbor_enc_raw(&o, dr->abuf, al);
    cl_cbor_enc_tstr_z(&o, "events");
    cl_cbor_enc_array(&o, dr->ne);
    cl_cbor_enc_raw(&o, dr->ebuf, el);
    if (st != CL_OK) {
        cl_cbor_enc_tstr_z(&o, "error");
        cl_cbor_enc_tstr_z(&o, why[0] ? why : cl_status_str(st));
    }
    free(dr);
    return cl_res_big_answer(r, &o, big);
}

/* ---- publishers ---- */

static cl_status_t put_publisher(reqctx_t *r, const char *name, size_t nl)
{
    cl_core_t *c = r->c;
    const uint8_t *key;
    size_t kl, len;
    cl_key_t k = CL_KEY_NONE;
    uint8_t doc[256];
    cl_cbor_enc_t e;
    uint64_t want;
    if (!cl_model_name_valid(name, nl, CL_NAME_MAX))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                            "publisher names: 1..64 characters [A-Za-z0-9._-]");
    if (!cl_res_get_bstr(r->req->payload, r->req->payload_len, "key", &key, &kl) || kl != 65 ||
        c->crypto.ops->key_import_public(c->crypto.self, CL_KEY_P256, key, kl, &k) != CL_OK)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-key",
                            "{\"key\": P-256 public key, uncompressed (65 bytes)} expected");
    cl_key_destroy(&c->crypto, k);
    cl_mobj_t *old = cl_model_get(&c->st, CL_MK_PUBLISHER, name, nl);
    if (if_version(r, &want) && want != (old != NULL ? old->version : 0))
        return cl_model_conflict(r, old != NULL ? old->version : 0);
    bool existed = old != NULL;
    cl_cbor_enc_init(&e, doc, sizeof doc);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr(&e, name, nl);
    cl_cbor_enc_tstr_z(&e, "key");
    cl_cbor_enc_bstr(&e, key, kl);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK ||
        commit_model(c, CL_MK_PUBLISHER, name, nl, doc, len, NULL) != CL_OK)
        return storage_failed(r);
    return version_body(r, existed ? CL_COAP_CHANGED : CL_COAP_CREATED,
                        cl_model_get(&c->st, CL_MK_PUBLISHER, name, nl)->version);
}

/* ---- scenarios ---- */

static const char *scn_kind_name(int kind)
{
    return kind == CL_SCN_EVENT_TYPE ? "event-type" : kind == CL_SCN_ACTION_TYPE ? "action-type"
                                                                                 : "rule";
}

/* The record kind of a plan object (0 = event type). */
static int rec_kind(int scn_kind)
{
    return scn_kind == CL_SCN_EVENT_TYPE ? 0 : scn_kind == CL_SCN_ACTION_TYPE ? CL_MK_ACTTYPE
                                                                            : CL_MK_RULE;
}

/* Whether an existing event type is what the scenario wants (then it is shared, not created). */
static bool same_evtype(const cl_evtype_t *t, const uint8_t *doc, size_t dl)
{
    cl_cbor_dec_t d;
    const uint8_t *schema = NULL;
    size_t sl = 0;
    if (cl_res_map_find(doc, dl, "schema", &d) && cl_cbor_dec_raw(&d, &schema, &sl) != CL_OK)
        return false;
    if ((schema == NULL) != (t->schema == NULL))
        return false;
    return schema == NULL || (sl == t->schema_len && memcmp(schema, t->schema, sl) == 0);
}

/* Checks a template's signature; false with r's error answer set when it does not hold. */
static bool signature_ok(reqctx_t *r, const uint8_t *json, size_t jl, const uint8_t *sig,
                         size_t sl, const char **kid, size_t *kid_len)
{
    cl_core_t *c = r->c;
    char why[CL_SCN_WHY_MAX] = "";
    const uint8_t *key;
    size_t kl;
    cl_key_t k = CL_KEY_NONE;
    if (cl_scn_sig_kid(sig, sl, kid, kid_len) != CL_OK) {
        (void)cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-signature",
                           "signature: a COSE_Sign1 with the publisher's name as kid");
        return false;
    }
    cl_mobj_t *pub = cl_model_get(&c->st, CL_MK_PUBLISHER, *kid, *kid_len);
    if (pub == NULL) {
        (void)cl_res_error(r, CL_COAP_FORBIDDEN, "unknown-publisher",
                           "signed by a publisher the owner has not registered "
                           "(cloister publisher add)");
        return false;
    }
    if (!cl_res_get_bstr(pub->doc, pub->doc_len, "key", &key, &kl) ||
        c->crypto.ops->key_import_public(c->crypto.self, CL_KEY_P256, key, kl, &k) != CL_OK) {
        (void)cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "publisher key unusable");
        return false;
    }
    cl_status_t st = cl_scn_verify(&c->crypto, k, json, jl, sig, sl, why, sizeof why);
    cl_key_destroy(&c->crypto, k);
    if (st != CL_OK) {
        (void)cl_res_error(r, CL_COAP_FORBIDDEN, "bad-signature",
                           why[0] ? why : "the signature does not verify with the publisher's key");
        return false;
    }
    return true;
}

static cl_status_t post_scenario(reqctx_t *r)
{
    cl_core_t *c = r->c;
    const uint8_t *p = r->req->payload, *json, *sig = NULL, *params = NULL;
    size_t n = r->req->payload_len, jl, sl = 0, params_len = 0, name_len, cbl;
    const char *name, *kid = NULL;
    size_t kid_len = 0;
    cl_cbor_dec_t d;
    char why[CL_SCN_WHY_MAX] = "";
    cl_status_t st;

    if (!cl_res_get_tstr(p, n, "name", &name, &name_len) ||
        !cl_model_name_valid(name, name_len, CL_NAME_MAX))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                            "name: the instance name, 1..64 characters [A-Za-z0-9._-]");
    if (!cl_res_get_bstr(p, n, "template", &json, &jl) || jl == 0 || jl > CL_SCN_MAX_TEMPLATE)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                            "template: the template file's bytes (<= 64 KiB)");
    if (cl_res_map_find(p, n, "signature", &d) && cl_cbor_dec_bstr(&d, &sig, &sl) != CL_OK)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "signature: bytes");
    if (cl_res_map_find(p, n, "params", &d)) {
        cl_cbor_type_t ty;
        if (cl_cbor_dec_peek(&d, &ty) != CL_OK || ty != CL_CBOR_MAP ||
            cl_cbor_dec_raw(&d, &params, &params_len) != CL_OK)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "params: a map");
    }
    if (cl_model_get(&c->st, CL_MK_SCENARIO, name, name_len) != NULL)
        return cl_res_error(r, CL_COAP_CONFLICT, "exists",
                            "a scenario instance of that name exists (remove it first)");
    if (sig != NULL && !signature_ok(r, json, jl, sig, sl, &kid, &kid_len))
        return CL_OK; /* the refusal is the answer */
    size_t err_off = 0;
    cbl = 0;
    st = cl_json_to_cbor((const char *)json, jl, NULL, 0, &cbl, &err_off);
    if ((st != CL_OK && st != CL_ERR_BUFFER_TOO_SMALL) || cbl == 0) {
        (void)snprintf(why, sizeof why, "template: not valid JSON (at byte %zu)", err_off);
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-scenario", why);
    }
    uint8_t *tmpl = malloc(cbl > 0 ? cbl : 1);
    cl_scn_plan_t *plan = calloc(1, sizeof *plan);
    if (tmpl == NULL || plan == NULL) {
        free(tmpl);
        free(plan);
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    }
    if (cl_json_to_cbor((const char *)json, jl, tmpl, cbl, &cbl, &err_off) != CL_OK) {
        free(tmpl);
        free(plan);
        (void)snprintf(why, sizeof why, "template: not valid JSON (at byte %zu)", err_off);
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-scenario", why);
    }
    st = cl_scn_instantiate(tmpl, cbl, params, params_len, name, name_len, plan, why, sizeof why);
    free(tmpl);
    if (st != CL_OK) {
        free(plan);
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-scenario", why[0] ? why : "invalid");
    }
    if (kid != NULL && plan->publisher[0] != 0 &&
        (strlen(plan->publisher) != kid_len || memcmp(plan->publisher, kid, kid_len) != 0)) {
        cl_scn_plan_free(plan);
        free(plan);
        return cl_res_error(r, CL_COAP_FORBIDDEN, "bad-signature",
                            "signed by another publisher than the template names");
    }
    /* what to create: types that exist identically are shared, anything else that exists
     * is a conflict */
    bool create[CL_SCN_MAX_OBJECTS];
    size_t total = 512 + plan->params_len, ncreate = 0;
    for (size_t i = 0; i < plan->n_objects; i++) {
        const cl_scn_object_t *o = &plan->objects[i];
        size_t ol = strlen(o->name);
        create[i] = true;
        if (o->kind == CL_SCN_EVENT_TYPE) {
            const cl_evtype_t *t = cl_state_evtype(&c->st, o->name, ol);
            if (t != NULL && same_evtype(t, o->doc, o->doc_len))
                create[i] = false;
            else if (t != NULL)
                (void)snprintf(why, sizeof why, "event type \"%.64s\" exists with another schema",
                               o->name);
        } else {
            const cl_mobj_t *x = cl_model_get(&c->st, rec_kind(o->kind), o->name, ol);
            if (x != NULL && o->kind == CL_SCN_ACTION_TYPE && x->doc_len == o->doc_len &&
                memcmp(x->doc, o->doc, o->doc_len) == 0)
                create[i] = false;
            else if (x != NULL)
                (void)snprintf(why, sizeof why, "%s \"%.100s\" exists already",
                               scn_kind_name(o->kind), o->name);
        }
        if (why[0] != 0) {
            cl_scn_plan_free(plan);
            free(plan);
            return cl_res_error(r, CL_COAP_CONFLICT, "conflict", why);
        }
        total += create[i] ? o->doc_len + ol + 32 : 0;
        ncreate += create[i];
    }
    if (total > CL_CORE_MAX_RECORD - 256 || c->st.n_objs + ncreate >= CL_MODEL_MAX_OBJECTS) {
        cl_scn_plan_free(plan);
        free(plan);
        return cl_res_error(r, CL_COAP_REQUEST_TOO_LARGE, "too-large", "scenario too large");
    }
    uint8_t *rec = malloc(total * 2);
    if (rec == NULL) {
        cl_scn_plan_free(plan);
        free(plan);
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    }
    cl_cbor_enc_t e;
    size_t len;
    cl_cbor_enc_init(&e, rec, total * 2);
    cl_cbor_enc_array(&e, 5);
    cl_cbor_enc_uint(&e, CL_REC_SCENARIO);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_tstr(&e, name, name_len);
    /* the instance's document */
    cl_cbor_enc_map(&e, 6 + (plan->publisher[0] != 0));
    cl_cbor_enc_tstr_z(&e, "scenario");
    cl_cbor_enc_tstr_z(&e, plan->scenario);
    cl_cbor_enc_tstr_z(&e, "scenario_version");
    cl_cbor_enc_tstr_z(&e, plan->version);
    if (plan->publisher[0] != 0) {
        cl_cbor_enc_tstr_z(&e, "publisher");
        cl_cbor_enc_tstr_z(&e, plan->publisher);
    }
    cl_cbor_enc_tstr_z(&e, "signed");
    cl_cbor_enc_bool(&e, kid != NULL);
    cl_cbor_enc_tstr_z(&e, "signed_by");
    cl_cbor_enc_tstr(&e, kid != NULL ? kid : "", kid_len);
    cl_cbor_enc_tstr_z(&e, "params");
    if (plan->params != NULL)
        cl_cbor_enc_raw(&e, plan->params, plan->params_len);
    else
        cl_cbor_enc_map(&e, 0);
    cl_cbor_enc_tstr_z(&e, "objects");
    cl_cbor_enc_array(&e, ncreate);
    for (size_t i = 0; i < plan->n_objects; i++)
        if (create[i]) {
            cl_cbor_enc_array(&e, 2);
            cl_cbor_enc_uint(&e, (uint64_t)rec_kind(plan->objects[i].kind));
            cl_cbor_enc_tstr_z(&e, plan->objects[i].name);
        }
    cl_cbor_enc_array(&e, ncreate);
    for (size_t i = 0; i < plan->n_objects; i++)
        if (create[i]) {
            cl_cbor_enc_array(&e, 3);
            cl_cbor_enc_uint(&e, (uint64_t)rec_kind(plan->objects[i].kind));
            cl_cbor_enc_tstr_z(&e, plan->objects[i].name);
            cl_cbor_enc_raw(&e, plan->objects[i].doc, plan->objects[i].doc_len);
        }
    st = cl_cbor_enc_finish(&e, &len);
    if (st == CL_OK && len > CL_CORE_MAX_RECORD)
        st = CL_FAIL(CL_ERR_LIMIT);
    if (st == CL_OK)
        st = cl_core_commit(c, rec, len);
    free(rec);
    if (st != CL_OK) {
        cl_scn_plan_free(plan);
        free(plan);
        return st == CL_ERR_LIMIT ? cl_res_error(r, CL_COAP_REQUEST_TOO_LARGE, "too-large",
                                                 "scenario too large")
                                  : storage_failed(r);
    }
    /* the engine, and the answer */
    cl_cbor_enc_init(&e, r->body, sizeof r->body);
    cl_cbor_enc_map(&e, 1 + (kid != NULL));
    cl_cbor_enc_tstr_z(&e, "created");
    cl_cbor_enc_array(&e, ncreate);
    for (size_t i = 0; i < plan->n_objects; i++) {
        if (!create[i])
            continue;
        if (plan->objects[i].kind == CL_SCN_RULE)
            cl_rules_sync(c, plan->objects[i].name, strlen(plan->objects[i].name));
        cl_cbor_enc_map(&e, 2);
        cl_cbor_enc_tstr_z(&e, "kind");
        cl_cbor_enc_tstr_z(&e, scn_kind_name(plan->objects[i].kind));
        cl_cbor_enc_tstr_z(&e, "name");
        cl_cbor_enc_tstr_z(&e, plan->objects[i].name);
    }
    if (kid != NULL) {
        cl_cbor_enc_tstr_z(&e, "signed_by");
        cl_cbor_enc_tstr(&e, kid, kid_len);
    }
    cl_scn_plan_free(plan);
    free(plan);
    r->code = CL_COAP_CREATED;
    if (cl_cbor_enc_finish(&e, &r->body_len) != CL_OK)
        return empty_body(r, CL_COAP_CREATED);
    return CL_OK;
}

static cl_status_t delete_scenario(reqctx_t *r, const char *name, size_t nl)
{
    cl_core_t *c = r->c;
    cl_mobj_t *so = cl_model_get(&c->st, CL_MK_SCENARIO, name, nl);
    cl_cbor_dec_t d;
    size_t m;
    char scn[CL_NAME_MAX + 1];
    if (so == NULL)
        return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such scenario instance");
    memcpy(scn, so->name, sizeof scn);
    if (!cl_res_map_find(so->doc, so->doc_len, "objects", &d) || cl_cbor_dec_array(&d, &m) != CL_OK ||
        m > CL_SCN_MAX_OBJECTS)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "scenario record unreadable");
    /* what still exists of it; types are kept while a rule outside the scenario names them */
    struct {
        uint64_t kind;
        const char *name;
        size_t len;
    } del[CL_SCN_MAX_OBJECTS];
    size_t nd = 0;
    for (size_t i = 0; i < m; i++) {
        size_t k;
        uint64_t kind;
        const char *on;
        size_t ol;
        if (cl_cbor_dec_array(&d, &k) != CL_OK || k != 2 || cl_cbor_dec_uint(&d, &kind) != CL_OK ||
            cl_cbor_dec_tstr(&d, &on, &ol) != CL_OK)
            return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "scenario record unreadable");
        bool exists = kind == 0 ? cl_state_evtype(&c->st, on, ol) != NULL
                                : cl_model_get(&c->st, (int)kind, on, ol) != NULL;
        if (!exists)
            continue;
        if (kind != CL_MK_RULE && used_by_rules(&c->st, on, ol, scn))
            continue;
        del[nd].kind = kind;
        del[nd].name = on;
        del[nd].len = ol;
        nd++;
    }
    size_t cap = 128 + nd * (CL_MNAME_MAX + 16), len;
    uint8_t *rec = malloc(cap);
    if (rec == NULL)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, rec, cap);
    cl_cbor_enc_array(&e, 4);
    cl_cbor_enc_uint(&e, CL_REC_SCENARIO_DEL);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_tstr(&e, name, nl);
    cl_cbor_enc_array(&e, nd);
    for (size_t i = 0; i < nd; i++) {
        cl_cbor_enc_array(&e, 2);
        cl_cbor_enc_uint(&e, del[i].kind);
        cl_cbor_enc_tstr(&e, del[i].name, del[i].len);
    }
    /* the answer is built before the commit frees the names it points into */
    cl_cbor_enc_t a;
    cl_cbor_enc_init(&a, r->body, sizeof r->body);
    cl_cbor_enc_map(&a, 1);
    cl_cbor_enc_tstr_z(&a, "removed");
    cl_cbor_enc_array(&a, nd);
    char names[CL_SCN_MAX_OBJECTS][CL_MNAME_MAX + 1];
    for (size_t i = 0; i < nd; i++) {
        cl_cbor_enc_map(&a, 2);
        cl_cbor_enc_tstr_z(&a, "kind");
        cl_cbor_enc_tstr_z(&a, del[i].kind == 0 ? "event-type"
                               : del[i].kind == CL_MK_ACTTYPE ? "action-type"
                                                              : "rule");
        cl_cbor_enc_tstr_z(&a, "name");
        cl_cbor_enc_tstr(&a, del[i].name, del[i].len);
        memcpy(names[i], del[i].name, del[i].len);
        names[i][del[i].len] = 0;
    }
    cl_status_t st = cl_cbor_enc_finish(&e, &len);
    size_t body_len;
    if (cl_cbor_enc_finish(&a, &body_len) != CL_OK)
        body_len = 0;
    if (st == CL_OK)
        st = cl_core_commit(c, rec, len);
    free(rec);
    if (st != CL_OK)
        return storage_failed(r);
    for (size_t i = 0; i < nd; i++)
        if (del[i].kind == CL_MK_RULE)
            cl_rules_sync(c, names[i], strlen(names[i]));
    r->code = CL_COAP_DELETED;
    r->body_len = body_len;
    if (body_len == 0)
        return empty_body(r, CL_COAP_DELETED);
    return CL_OK;
}

/* ---- actions ---- */

static cl_status_t get_actions(reqctx_t *r)
{
    cl_core_t *c = r->c;
    cl_session_t *x = r->x;
    const cl_coap_option_t *obs = cl_coap_msg_get(r->req, CL_COAP_OPT_OBSERVE);
    const char *q;
    size_t ql, count;
    uint64_t newest;
    uint32_t ov = 0;
    bool wait = cl_res_get_query(r->req, "wait", &q, &ql) && ql == 1 && q[0] == '1';
    if (obs != NULL && (cl_coap_opt_uint(obs, &ov) != CL_OK || ov > 1))
        return cl_res_error(r, CL_COAP_BAD_OPTION, "bad-request", "Observe: 0 or 1");
    if (cl_rules_pending_body(c, x->client_id, r->body, sizeof r->body - 64, &r->body_len, &newest,
                              &count) != CL_OK)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "response too large");
    r->code = CL_COAP_CONTENT;
    if (obs != NULL && ov == 1) { /* deregistration */
        x->obs_active = false;
        return CL_OK;
    }
    bool observe = obs != NULL && r->transport != CL_TRANSPORT_HTTP;
    bool poll = !observe && wait && count == 0;
    if (!observe && !poll)
        return CL_OK;
    if (r->req->tkl > sizeof x->obs_token || r->oreq == NULL)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "token too long to observe");
    x->obs_active = true;
    x->obs_oneshot = poll;
    memcpy(x->obs_token, r->req->token, r->req->tkl);
    x->obs_tkl = r->req->tkl;
    x->obs_transport = r->transport;
    x->obs_peer = r->peer;
    x->obs_req = *r->oreq;
    x->obs_sent_ms = c->now_ms;
    x->obs_last_id = newest;
    if (poll) {
        r->defer = true;
        return CL_OK;
    }
    x->obs_seq = 0;
    r->observe = 0;
    return CL_OK;
}

static cl_status_t post_ack(reqctx_t *r)
{
    cl_core_t *c = r->c;
    cl_cbor_dec_t d;
    size_t n, k = 0, len;
    uint64_t ids[MAX_ACK_IDS];
    uint8_t rec[64 + MAX_ACK_IDS * 9];
    cl_cbor_enc_t e;
    if (!cl_res_map_find(r->req->payload, r->req->payload_len, "ids", &d) ||
        cl_cbor_dec_array(&d, &n) != CL_OK || n == 0 || n > MAX_ACK_IDS)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "{\"ids\": [1..64 ids]}");
    for (size_t i = 0; i < n; i++) {
        uint64_t id;
        if (cl_cbor_dec_uint(&d, &id) != CL_OK)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "ids: unsigned integers");
        cl_action_t *a = cl_action_get(&c->st, id);
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = ids[j] == id;
        if (a != NULL && a->target == r->x->client_id && !dup) /* only one's own */
            ids[k++] = id;
    }
    if (k > 0) {
        cl_cbor_enc_init(&e, rec, sizeof rec);
        cl_cbor_enc_array(&e, 5);
        cl_cbor_enc_uint(&e, CL_REC_DONE);
        cl_cbor_enc_int(&e, cl_core_now(c));
        cl_cbor_enc_uint(&e, r->x->client_id);
        cl_cbor_enc_array(&e, k);
        for (size_t i = 0; i < k; i++)
            cl_cbor_enc_uint(&e, ids[i]);
        cl_cbor_enc_uint(&e, 0);
        if (cl_cbor_enc_finish(&e, &len) != CL_OK || cl_core_commit(c, rec, len) != CL_OK)
            return storage_failed(r);
    }
    return cl_res_uint_answer(r, CL_COAP_CHANGED, "acked", k);
}

/* DELETE /event-types/{name}: refused while a rule names it; its archived events stay. */
static cl_status_t delete_event_type(reqctx_t *r, const char *name, size_t nl)
{
    cl_core_t *c = r->c;
    uint64_t want;
    uint8_t rec[CL_EVTYPE_MAX_NAME + 32];
    cl_cbor_enc_t e;
    size_t len;
    cl_evtype_t *t = cl_state_evtype(&c->st, name, nl);
    if (t == NULL)
        return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such event type");
    if (if_version(r, &want) && want != t->version)
        return cl_model_conflict(r, t->version);
    if (used_by_rules(&c->st, name, nl, NULL))
        return cl_res_error(r, CL_COAP_CONFLICT, "in-use",
                            "a rule names this event type: change or remove the rule first");
    cl_cbor_enc_init(&e, rec, sizeof rec);
    cl_cbor_enc_array(&e, 3);
    cl_cbor_enc_uint(&e, CL_REC_EVTYPE_DEL);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_tstr(&e, name, nl);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK || cl_core_commit(c, rec, len) != CL_OK)
        return storage_failed(r);
    return empty_body(r, CL_COAP_DELETED);
}

/* ---- routing ---- */

static cl_status_t parse_id(const char *s, size_t len, uint32_t *id)
{
    uint64_t v = 0;
    if (len == 0 || len > 10)
        return CL_ERR_BAD_INPUT;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return CL_ERR_BAD_INPUT;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v == 0 || v > UINT32_MAX)
        return CL_ERR_BAD_INPUT;
    *id = (uint32_t)v;
    return CL_OK;
}

cl_status_t cl_model_route(reqctx_t *r)
{
    const char *seg[4];
    size_t sl[4];
    size_t n = split_path(r->path, seg, sl);
    uint8_t m = r->req->code;
    uint32_t id;
    if (n == 0)
        return CL_ERR_NOT_FOUND;

    if (n == 3 && seg_is(seg[0], sl[0], "clients") && seg_is(seg[2], sl[2], "groups") &&
        parse_id(seg[1], sl[1], &id) == CL_OK) {
        if (m != CL_COAP_POST)
            return method(r, "POST");
        return cl_res_role_in(r, ADMINS) ? post_groups(r, id) : forbidden(r, "admins only");
    }
    if (n == 2 && seg_is(seg[0], sl[0], "event-types")) {
        if (m != CL_COAP_DELETE)
            return method(r, "DELETE");
        return cl_res_role_in(r, ADMINS) ? delete_event_type(r, seg[1], sl[1])
                                         : forbidden(r, "admins only");
    }
    if (seg_is(seg[0], sl[0], "action-types") && n <= 2) {
        if (n == 1)
            return m != CL_COAP_GET ? method(r, "GET")
                   : cl_res_role_in(r, MEMBERS) ? list_objects(r, CL_MK_ACTTYPE, false)
                                                : forbidden(r, "not allowed");
        if (!cl_res_role_in(r, ADMINS))
            return forbidden(r, "admins only");
        return m == CL_COAP_PUT      ? put_action_type(r, seg[1], sl[1])
               : m == CL_COAP_DELETE ? delete_object(r, CL_MK_ACTTYPE, seg[1], sl[1])
                                     : method(r, "PUT or DELETE");
    }
    if (seg_is(seg[0], sl[0], "rules")) {
        if (n == 1)
            return m != CL_COAP_GET ? method(r, "GET")
                   : cl_res_role_in(r, READERS) ? list_objects(r, CL_MK_RULE, true)
                                                : forbidden(r, "owner, admins and users only");
        if (n == 2 && seg_is(seg[1], sl[1], "validate")) {
            if (m != CL_COAP_POST)
                return method(r, "POST");
            return cl_res_role_in(r, READERS) ? validate_rule(r, NULL, 0)
                                              : forbidden(r, "owner, admins and users only");
        }
        if (n == 2) {
            if (m == CL_COAP_GET)
                return cl_res_role_in(r, READERS) ? get_rule(r, seg[1], sl[1])
                                                  : forbidden(r, "owner, admins and users only");
            if (!cl_res_role_in(r, ADMINS))
                return forbidden(r, "admins only: devices and users cannot edit rules");
            return m == CL_COAP_PUT      ? put_rule(r, seg[1], sl[1])
                   : m == CL_COAP_DELETE ? delete_object(r, CL_MK_RULE, seg[1], sl[1])
                                         : method(r, "GET, PUT or DELETE");
        }
        if (n == 3 && m != CL_COAP_POST)
            return method(r, "POST");
        if (n == 3 && seg_is(seg[2], sl[2], "validate")) {
            if (!cl_res_role_in(r, READERS))
                return forbidden(r, "owner, admins and users only");
            cl_mobj_t *o = cl_model_get(&r->c->st, CL_MK_RULE, seg[1], sl[1]);
            if (o == NULL)
                return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such rule");
            return validate_rule(r, o->doc, o->doc_len);
        }
        if (n == 3 && (seg_is(seg[2], sl[2], "enable") || seg_is(seg[2], sl[2], "disable")))
            return cl_res_role_in(r, ADMINS)
                       ? rule_flags(r, seg[1], sl[1], seg_is(seg[2], sl[2], "enable"))
                       : forbidden(r, "admins only");
        return CL_ERR_NOT_FOUND;
    }
    if (seg_is(seg[0], sl[0], "publishers") && n <= 2) {
        if (n == 1)
            return m != CL_COAP_GET ? method(r, "GET")
                   : cl_res_role_in(r, READERS) ? list_objects(r, CL_MK_PUBLISHER, false)
                                                : forbidden(r, "owner, admins and users only");
        if (m != CL_COAP_PUT)
            return method(r, "PUT");
        return r->x->role == CL_ROLE_OWNER ? put_publisher(r, seg[1], sl[1])
                                           : forbidden(r, "only the owner trusts publishers");
    }
    if (seg_is(seg[0], sl[0], "scenarios") && n <= 2) {
        if (n == 1 && m == CL_COAP_GET)
            return cl_res_role_in(r, READERS) ? list_objects(r, CL_MK_SCENARIO, false)
                                              : forbidden(r, "owner, admins and users only");
        if (!cl_res_role_in(r, ADMINS))
            return forbidden(r, "admins only");
        if (n == 1)
            return m == CL_COAP_POST ? post_scenario(r) : method(r, "GET or POST");
        return m == CL_COAP_DELETE ? delete_scenario(r, seg[1], sl[1]) : method(r, "DELETE");
    }
    if (seg_is(seg[0], sl[0], "actions")) {
        if (!cl_res_role_in(r, MEMBERS))
            return forbidden(r, "not allowed");
        if (n == 1)
            return m == CL_COAP_GET ? get_actions(r) : method(r, "GET");
        if (n == 2 && seg_is(seg[1], sl[1], "ack"))
            return m == CL_COAP_POST ? post_ack(r) : method(r, "POST");
    }
    return CL_ERR_NOT_FOUND;
}
