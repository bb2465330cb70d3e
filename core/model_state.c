/*
 * model_state.c - the middleware model in enclave memory beyond clients and
 * event types (docs/model.md): action types, rules (document, status, script
 * state), publishers, scenario instances, client groups and the action
 * delivery queue; their sealed log records and their part of the snapshot.
 *
 * Like state.c, every record is decoded and checked completely before the
 * state is touched, so a refused record changes nothing.
 *
 * Records (after [op, time_ms]):
 *   GROUPS       [10, t, client_id, groups]         groups: bstr(CBOR array of names)
 *   MODEL        [11, t, kind, name, doc | null, scenario]   put (version + 1) / delete
 *   RULE_FLAGS   [12, t, name, enabled]             version + 1, clears a failure
 *   EFFECTS      [13, t, [[rule, state]...], [[rule, reason]...], [action...]]
 *                action = [id, target, type, props(map), time, rule, expires]
 *   DONE         [14, t, target, [ids...], reason]  0 = acknowledged, 1 = expired
 *   SCENARIO     [15, t, name, doc, [[kind, name, doc]...]]  kind 0 = event type
 *   SCENARIO_DEL [16, t, name, [[kind, name]...]]
 *   EVTYPE_DEL   [17, t, name]                      an event type removed (its archive stays)
 */
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

#define CL_GROUPS_MAX 16
#define CL_EVTYPE_KIND 0 /* in SCENARIO records: an event type */

bool cl_model_name_valid(const char *p, size_t len, size_t max)
{
    if (p == NULL || len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

/* Text that survives a NUL-terminated copy unchanged (reasons, descriptions). */
static bool text_ok(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] == 0)
            return false;
    return true;
}

/* A scenario reference: "" or a valid name. */
static bool scn_ok(const char *p, size_t len)
{
    return len == 0 || cl_model_name_valid(p, len, CL_NAME_MAX);
}

static void free_obj(cl_mobj_t *o)
{
    if (o->doc != NULL) {
        cl_wipe(o->doc, o->doc_len);
        free(o->doc);
    }
    if (o->state != NULL) {
        cl_wipe(o->state, o->state_len);
        free(o->state);
    }
    memset(o, 0, sizeof *o);
}

static void free_action(cl_action_t *a)
{
    if (a->props != NULL) {
        cl_wipe(a->props, a->props_len);
        free(a->props);
    }
    memset(a, 0, sizeof *a);
}

void cl_model_free(cl_state_t *s)
{
    for (size_t i = 0; i < s->n_objs; i++)
        free_obj(&s->objs[i]);
    free(s->objs);
    for (size_t i = 0; i < s->n_actions; i++)
        free_action(&s->actions[i]);
    free(s->actions);
    s->objs = NULL;
    s->actions = NULL;
    s->n_objs = s->cap_objs = s->n_actions = s->cap_actions = 0;
}

static uint8_t *dup_mem(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len > 0 ? len : 1);
    if (q != NULL && len > 0)
        memcpy(q, p, len);
    return q;
}

static int obj_cmp(int kind, const char *name, size_t len, const cl_mobj_t *o)
{
    if (kind != o->kind)
        return kind < o->kind ? -1 : 1;
    size_t ol = strlen(o->name);
    int r = memcmp(name, o->name, len < ol ? len : ol);
    if (r != 0)
        return r;
    return len < ol ? -1 : len > ol ? 1 : 0;
}

/* Index of the object or of where it would be inserted. */
static size_t obj_find(const cl_state_t *s, int kind, const char *name, size_t len, bool *found)
{
    size_t lo = 0, hi = s->n_objs;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = obj_cmp(kind, name, len, &s->objs[mid]);
        if (r == 0) {
            *found = true;
            return mid;
        }
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

cl_mobj_t *cl_model_get(cl_state_t *s, int kind, const char *name, size_t len)
{
    bool found;
    size_t i = obj_find(s, kind, name, len, &found);
    return found ? &s->objs[i] : NULL;
}

static cl_status_t reserve(void **arr, size_t *cap, size_t need, size_t elem, size_t max)
{
    if (need <= *cap)
        return CL_OK;
    if (need > max)
        return CL_FAIL(CL_ERR_FULL);
    size_t nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *p = calloc(nc, elem);
    if (p == NULL)
        return CL_FAIL(CL_ERR_FULL);
    if (*arr != NULL) {
        memcpy(p, *arr, *cap * elem);
        cl_wipe(*arr, *cap * elem);
        free(*arr);
    }
    *arr = p;
    *cap = nc;
    return CL_OK;
}

/* Inserts (or replaces) an object whose doc the state now owns. Capacity reserved by the caller. */
static cl_mobj_t *obj_put(cl_state_t *s, int kind, const char *name, size_t len)
{
    bool found;
    size_t i = obj_find(s, kind, name, len, &found);
    if (!found) {
        memmove(&s->objs[i + 1], &s->objs[i], (s->n_objs - i) * sizeof *s->objs);
        memset(&s->objs[i], 0, sizeof s->objs[i]);
        s->n_objs++;
        s->objs[i].kind = (uint8_t)kind;
        memcpy(s->objs[i].name, name, len);
        s->objs[i].name[len] = 0;
    }
    return &s->objs[i];
}

static void obj_del(cl_state_t *s, int kind, const char *name, size_t len)
{
    bool found;
    size_t i = obj_find(s, kind, name, len, &found);
    if (!found)
        return;
    free_obj(&s->objs[i]);
    memmove(&s->objs[i], &s->objs[i + 1], (s->n_objs - i - 1) * sizeof *s->objs);
    s->n_objs--;
    memset(&s->objs[s->n_objs], 0, sizeof s->objs[s->n_objs]);
}

/* ---- groups ---- */

static bool groups_valid(const uint8_t *p, size_t len)
{
    cl_cbor_dec_t d;
    size_t n;
    cl_cbor_dec_init(&d, p, len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK || n > CL_GROUPS_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *g;
        size_t gl;
        if (cl_cbor_dec_tstr(&d, &g, &gl) != CL_OK || !cl_model_name_valid(g, gl, CL_NAME_MAX))
            return false;
    }
    return cl_cbor_dec_at_end(&d);
}

bool cl_client_in_group(const cl_client_t *cl, const char *g, size_t len)
{
    cl_cbor_dec_t d;
    size_t n;
    if (cl->groups == NULL)
        return false;
    cl_cbor_dec_init(&d, cl->groups, cl->groups_len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *x;
        size_t xl;
        if (cl_cbor_dec_tstr(&d, &x, &xl) != CL_OK)
            return false;
        if (xl == len && memcmp(x, g, len) == 0)
            return true;
    }
    return false;
}

static cl_status_t set_groups(cl_client_t *cl, const uint8_t *p, size_t len)
{
    uint8_t *q = NULL;
    if (len > 1) { /* an empty array (0x80) is "no groups" */
        if ((q = dup_mem(p, len)) == NULL)
            return CL_FAIL(CL_ERR_FULL);
    }
    free(cl->groups);
    cl->groups = q;
    cl->groups_len = q != NULL ? len : 0;
    return CL_OK;
}

/* ---- actions ---- */

size_t cl_actions_next(const cl_state_t *s, uint32_t target, size_t from)
{
    for (size_t i = from; i < s->n_actions; i++)
        if (s->actions[i].target == target)
            return i;
    return s->n_actions;
}

size_t cl_actions_count(const cl_state_t *s, uint32_t target)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_actions; i++)
        n += s->actions[i].target == target;
    return n;
}

static size_t action_index(const cl_state_t *s, uint64_t id, bool *found)
{
    size_t lo = 0, hi = s->n_actions;
    *found = false;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->actions[mid].id == id) {
            *found = true;
            return mid;
        }
        if (s->actions[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

cl_action_t *cl_action_get(cl_state_t *s, uint64_t id)
{
    bool found;
    size_t i = action_index(s, id, &found);
    return found ? &s->actions[i] : NULL;
}

void cl_action_encode(cl_cbor_enc_t *e, const cl_action_t *a)
{
    cl_cbor_enc_map(e, 6);
    cl_cbor_enc_tstr_z(e, "id");
    cl_cbor_enc_uint(e, a->id);
    cl_cbor_enc_tstr_z(e, "action");
    cl_cbor_enc_tstr_z(e, a->type);
    cl_cbor_enc_tstr_z(e, "properties");
    cl_cbor_enc_raw(e, a->props, a->props_len);
    cl_cbor_enc_tstr_z(e, "time");
    cl_cbor_enc_int(e, a->time_ms);
    cl_cbor_enc_tstr_z(e, "rule");
    cl_cbor_enc_tstr_z(e, a->rule);
    cl_cbor_enc_tstr_z(e, "expires");
    cl_cbor_enc_int(e, a->expires_ms);
}

/* [id, target, type, props, time, rule, expires] -> a (props pointing into the record) */
static cl_status_t dec_action(cl_cbor_dec_t *d, cl_action_t *a, const uint8_t **props,
                              size_t *props_len)
{
    size_t m;
    uint64_t target;
    const char *ty, *ru;
    size_t tyl, rul;
    cl_cbor_type_t k;
    memset(a, 0, sizeof *a);
    if (cl_cbor_dec_array(d, &m) != CL_OK || m != 7 || cl_cbor_dec_uint(d, &a->id) != CL_OK ||
        cl_cbor_dec_uint(d, &target) != CL_OK || target == 0 || target > UINT32_MAX ||
        cl_cbor_dec_tstr(d, &ty, &tyl) != CL_OK || !cl_model_name_valid(ty, tyl, CL_NAME_MAX) ||
        cl_cbor_dec_peek(d, &k) != CL_OK || k != CL_CBOR_MAP ||
        cl_cbor_dec_raw(d, props, props_len) != CL_OK || *props_len > CL_CORE_MAX_MESSAGE ||
        cl_cbor_dec_int(d, &a->time_ms) != CL_OK || cl_cbor_dec_tstr(d, &ru, &rul) != CL_OK ||
        !cl_model_name_valid(ru, rul, CL_MNAME_MAX) ||
        cl_cbor_dec_int(d, &a->expires_ms) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    a->target = (uint32_t)target;
    memcpy(a->type, ty, tyl);
    memcpy(a->rule, ru, rul);
    return CL_OK;
}

/* ---- records ---- */

static cl_status_t dec_name(cl_cbor_dec_t *d, size_t max, const char **p, size_t *len)
{
    if (cl_cbor_dec_tstr(d, p, len) != CL_OK || !cl_model_name_valid(*p, *len, max))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return CL_OK;
}

/* A document (a CBOR map or array) or null; *doc NULL for null. */
static cl_status_t dec_doc(cl_cbor_dec_t *d, const uint8_t **doc, size_t *len)
{
    cl_cbor_type_t k;
    *doc = NULL;
    *len = 0;
    if (cl_cbor_dec_peek(d, &k) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (k == CL_CBOR_SIMPLE)
        return cl_cbor_dec_null(d) == CL_OK ? CL_OK : CL_FAIL(CL_ERR_BAD_INPUT);
    if ((k != CL_CBOR_MAP && k != CL_CBOR_ARRAY) || cl_cbor_dec_raw(d, doc, len) != CL_OK ||
        *len > CL_MODEL_MAX_DOC)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return CL_OK;
}

/* "enabled" of a rule document (default true). */
static bool doc_enabled(const uint8_t *doc, size_t len)
{
    cl_cbor_dec_t d;
    size_t n;
    cl_cbor_dec_init(&d, doc, len);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return true;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        bool v;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            return true;
        if (kl == 7 && memcmp(k, "enabled", 7) == 0)
            return cl_cbor_dec_bool(&d, &v) == CL_OK ? v : true;
        if (cl_cbor_dec_skip(&d) != CL_OK)
            return true;
    }
    return true;
}

static cl_status_t apply_model(cl_state_t *s, cl_cbor_dec_t *d, size_t n)
{
    uint64_t kind;
    const char *name, *scn;
    size_t nl, sl;
    const uint8_t *doc;
    size_t dl;
    if (n != 6 || cl_cbor_dec_uint(d, &kind) != CL_OK ||
        (kind != CL_MK_ACTTYPE && kind != CL_MK_RULE && kind != CL_MK_PUBLISHER) ||
        dec_name(d, CL_MNAME_MAX, &name, &nl) != CL_OK || dec_doc(d, &doc, &dl) != CL_OK ||
        cl_cbor_dec_tstr(d, &scn, &sl) != CL_OK || !scn_ok(scn, sl) || !cl_cbor_dec_at_end(d))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (doc == NULL) {
        if (cl_model_get(s, (int)kind, name, nl) == NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        obj_del(s, (int)kind, name, nl);
        return CL_OK;
    }
    uint8_t *copy = dup_mem(doc, dl);
    cl_status_t st;
    if (copy == NULL)
        return CL_FAIL(CL_ERR_FULL);
    void *arr = s->objs;
    st = reserve(&arr, &s->cap_objs, s->n_objs + 1, sizeof *s->objs, CL_MODEL_MAX_OBJECTS);
    s->objs = arr;
    if (st != CL_OK) {
        free(copy);
        return st;
    }
    cl_mobj_t *o = obj_put(s, (int)kind, name, nl);
    uint64_t version = o->version + 1;
    free_obj(o); /* a replaced rule starts with empty state and no failure */
    o->kind = (uint8_t)kind;
    memcpy(o->name, name, nl);
    o->version = version;
    o->doc = copy;
    o->doc_len = dl;
    o->enabled = kind == CL_MK_RULE ? doc_enabled(copy, dl) : true;
    memcpy(o->scenario, scn, sl);
    o->scenario[sl] = 0;
    return CL_OK;
}

static cl_status_t apply_effects(cl_state_t *s, cl_cbor_dec_t *d, size_t n)
{
    size_t ns, nf, na;
    cl_cbor_dec_t d0;
    if (n != 5)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    /* pass 1: check everything */
    d0 = *d;
    if (cl_cbor_dec_array(d, &ns) != CL_OK || ns > CL_MODEL_MAX_OBJECTS)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < ns; i++) {
        size_t m;
        const char *name;
        size_t nl;
        const uint8_t *st;
        size_t stl;
        if (cl_cbor_dec_array(d, &m) != CL_OK || m != 2 ||
            dec_name(d, CL_MNAME_MAX, &name, &nl) != CL_OK ||
            cl_cbor_dec_bstr(d, &st, &stl) != CL_OK || stl > CL_MODEL_MAX_DOC ||
            cl_model_get(s, CL_MK_RULE, name, nl) == NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (cl_cbor_dec_array(d, &nf) != CL_OK || nf > CL_MODEL_MAX_OBJECTS)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < nf; i++) {
        size_t m, rl;
        const char *name, *reason;
        size_t nl;
        if (cl_cbor_dec_array(d, &m) != CL_OK || m != 2 ||
            dec_name(d, CL_MNAME_MAX, &name, &nl) != CL_OK ||
            cl_cbor_dec_tstr(d, &reason, &rl) != CL_OK || rl >= CL_MODEL_WHY_MAX ||
            !text_ok(reason, rl) || cl_model_get(s, CL_MK_RULE, name, nl) == NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (cl_cbor_dec_array(d, &na) != CL_OK || na > CL_ACTIONS_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    uint64_t last = s->next_action_id;
    for (size_t i = 0; i < na; i++) {
        cl_action_t a;
        const uint8_t *p;
        size_t pl;
        if (dec_action(d, &a, &p, &pl) != CL_OK || a.id < last)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        last = a.id + 1;
    }
    if (!cl_cbor_dec_at_end(d))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (s->n_actions + na > CL_ACTIONS_MAX)
        return CL_FAIL(CL_ERR_FULL);
    /* allocate everything, then change the state (nothing can fail after this) */
    void *arr = s->actions;
    cl_status_t st = reserve(&arr, &s->cap_actions, s->n_actions + na, sizeof *s->actions,
                             CL_ACTIONS_MAX);
    s->actions = arr;
    if (st != CL_OK)
        return st;
    uint8_t **blobs = calloc(ns + na + 1, sizeof *blobs);
    if (blobs == NULL)
        return CL_FAIL(CL_ERR_FULL);
    *d = d0;
    size_t k;
    (void)!cl_cbor_dec_array(d, &ns);
    for (k = 0; k < ns; k++) {
        size_t m;
        const char *name;
        size_t nl;
        const uint8_t *sp;
        size_t sl;
        (void)!cl_cbor_dec_array(d, &m);
        (void)dec_name(d, CL_MNAME_MAX, &name, &nl);
        (void)!cl_cbor_dec_bstr(d, &sp, &sl);
        if ((blobs[k] = dup_mem(sp, sl)) == NULL)
            break;
    }
    cl_cbor_dec_t dd = *d;
    (void)!cl_cbor_dec_skip(&dd); /* failures */
    size_t na2;
    (void)!cl_cbor_dec_array(&dd, &na2);
    for (size_t j = 0; j < na && k == ns; j++) {
        cl_action_t a;
        const uint8_t *p;
        size_t pl;
        (void)dec_action(&dd, &a, &p, &pl);
        if ((blobs[ns + j] = dup_mem(p, pl)) == NULL) {
            for (size_t q = ns; q < ns + j; q++)
                free(blobs[q]);
            break;
        }
    }
    if (k != ns || (na > 0 && blobs[ns + na - 1] == NULL)) {
        for (size_t q = 0; q < ns && q < k; q++)
            free(blobs[q]);
        free(blobs);
        return CL_FAIL(CL_ERR_FULL);
    }
    /* apply: states */
    *d = d0;
    (void)!cl_cbor_dec_array(d, &ns);
    for (size_t i = 0; i < ns; i++) {
        size_t m;
        const char *name;
        size_t nl;
        const uint8_t *sp;
        size_t sl;
        (void)!cl_cbor_dec_array(d, &m);
        (void)dec_name(d, CL_MNAME_MAX, &name, &nl);
        (void)!cl_cbor_dec_bstr(d, &sp, &sl);
        cl_mobj_t *o = cl_model_get(s, CL_MK_RULE, name, nl);
        if (o->state != NULL) {
            cl_wipe(o->state, o->state_len);
            free(o->state);
        }
        o->state = blobs[i];
        o->state_len = sl;
    }
    (void)!cl_cbor_dec_array(d, &nf);
    for (size_t i = 0; i < nf; i++) {
        size_t m, rl;
        const char *name, *reason;
        size_t nl;
        (void)!cl_cbor_dec_array(d, &m);
        (void)dec_name(d, CL_MNAME_MAX, &name, &nl);
        (void)!cl_cbor_dec_tstr(d, &reason, &rl);
        cl_mobj_t *o = cl_model_get(s, CL_MK_RULE, name, nl);
        o->failed = true;
        memcpy(o->reason, reason, rl);
        o->reason[rl] = 0;
    }
    (void)!cl_cbor_dec_array(d, &na);
    for (size_t i = 0; i < na; i++) {
        cl_action_t a;
        const uint8_t *p;
        size_t pl;
        (void)dec_action(d, &a, &p, &pl);
        a.props = blobs[ns + i];
        a.props_len = pl;
        s->actions[s->n_actions++] = a;
        s->next_action_id = a.id + 1;
    }
    free(blobs);
    return CL_OK;
}

static cl_status_t apply_done(cl_state_t *s, cl_cbor_dec_t *d, size_t n)
{
    uint64_t target, reason;
    size_t m;
    cl_cbor_dec_t d0;
    if (n != 5 || cl_cbor_dec_uint(d, &target) != CL_OK || target == 0 || target > UINT32_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    d0 = *d;
    if (cl_cbor_dec_array(d, &m) != CL_OK || m == 0 || m > 1024)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < m; i++) {
        uint64_t id;
        cl_action_t *a;
        if (cl_cbor_dec_uint(d, &id) != CL_OK || (a = cl_action_get(s, id)) == NULL ||
            a->target != target)
            return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (cl_cbor_dec_uint(d, &reason) != CL_OK || reason > 1 || !cl_cbor_dec_at_end(d))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *d = d0;
    (void)!cl_cbor_dec_array(d, &m);
    for (size_t i = 0; i < m; i++) {
        uint64_t id;
        bool found;
        (void)!cl_cbor_dec_uint(d, &id);
        size_t k = action_index(s, id, &found);
        if (!found)
            continue; /* listed twice */
        free_action(&s->actions[k]);
        memmove(&s->actions[k], &s->actions[k + 1], (s->n_actions - k - 1) * sizeof *s->actions);
        s->n_actions--;
        memset(&s->actions[s->n_actions], 0, sizeof s->actions[s->n_actions]);
    }
    return CL_OK;
}

/* A scenario's event type document {"name", "description"?, "schema"?} -> t (schema copied). */
static cl_status_t evtype_from_doc(const uint8_t *doc, size_t len, const char *scn, size_t sl,
                                   cl_evtype_t *t)
{
    cl_cbor_dec_t d;
    size_t n;
    memset(t, 0, sizeof *t);
    cl_cbor_dec_init(&d, doc, len);
    if (cl_cbor_dec_map(&d, &n) != CL_OK || n > 3)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        size_t kl, vl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (kl == 4 && memcmp(k, "name", 4) == 0) {
            if (cl_cbor_dec_tstr(&d, &v, &vl) != CL_OK || !cl_evtype_name_valid(v, vl))
                return CL_FAIL(CL_ERR_BAD_INPUT);
            memcpy(t->name, v, vl);
        } else if (kl == 11 && memcmp(k, "description", 11) == 0) {
            if (cl_cbor_dec_tstr(&d, &v, &vl) != CL_OK || !text_ok(v, vl))
                return CL_FAIL(CL_ERR_BAD_INPUT);
            if (vl > CL_EVTYPE_MAX_DESC)
                vl = CL_EVTYPE_MAX_DESC;
            memcpy(t->desc, v, vl);
        } else if (kl == 6 && memcmp(k, "schema", 6) == 0) {
            const uint8_t *sp;
            size_t spl;
            if (cl_cbor_dec_raw(&d, &sp, &spl) != CL_OK || spl > CL_MODEL_MAX_DOC)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            t->schema = (uint8_t *)(uintptr_t)sp; /* copied by the caller */
            t->schema_len = spl;
        } else {
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }
    if (t->name[0] == 0 || !cl_cbor_dec_at_end(&d))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    t->history_roles = (uint8_t)((1u << CL_ROLE_ADMIN) | (1u << CL_ROLE_USER));
    memcpy(t->scenario, scn, sl);
    return CL_OK;
}


static cl_status_t apply_scenario(cl_state_t *s, cl_cbor_dec_t *d, size_t n)
{
    const char *name;
    size_t nl, m;
    const uint8_t *doc;
    size_t dl;
    cl_cbor_dec_t objs;
    if (n != 5 || dec_name(d, CL_NAME_MAX, &name, &nl) != CL_OK ||
        dec_doc(d, &doc, &dl) != CL_OK || doc == NULL ||
        cl_model_get(s, CL_MK_SCENARIO, name, nl) != NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    objs = *d;
    if (cl_cbor_dec_array(d, &m) != CL_OK || m > 256)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    size_t nevt = 0;
    for (size_t i = 0; i < m; i++) {
        size_t k;
        uint64_t kind;
        const char *on;
        size_t ol;
        const uint8_t *od;
        size_t odl;
        if (cl_cbor_dec_array(d, &k) != CL_OK || k != 3 || cl_cbor_dec_uint(d, &kind) != CL_OK ||
            dec_name(d, CL_MNAME_MAX, &on, &ol) != CL_OK || dec_doc(d, &od, &odl) != CL_OK ||
            od == NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (kind == CL_EVTYPE_KIND) {
            cl_evtype_t t;
            if (evtype_from_doc(od, odl, name, nl, &t) != CL_OK || strlen(t.name) != ol ||
                memcmp(t.name, on, ol) != 0 || cl_state_evtype(s, on, ol) != NULL)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            nevt++;
        } else if (kind == CL_MK_ACTTYPE || kind == CL_MK_RULE) {
            if (cl_model_get(s, (int)kind, on, ol) != NULL)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        } else {
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }
    if (!cl_cbor_dec_at_end(d) || s->n_evtypes + nevt > CL_EVTYPE_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    void *arr = s->objs;
    cl_status_t st =
        reserve(&arr, &s->cap_objs, s->n_objs + m + 1, sizeof *s->objs, CL_MODEL_MAX_OBJECTS);
    s->objs = arr;
    if (st != CL_OK)
        return st;
    /* apply (an allocation failure here leaves some objects created: logged by the commit) */
    uint8_t *sdoc = dup_mem(doc, dl);
    if (sdoc == NULL)
        return CL_FAIL(CL_ERR_FULL);
    cl_mobj_t *so = obj_put(s, CL_MK_SCENARIO, name, nl);
    so->version = 1;
    so->doc = sdoc;
    so->doc_len = dl;
    so->enabled = true;
    (void)!cl_cbor_dec_array(&objs, &m);
    for (size_t i = 0; i < m; i++) {
        size_t k;
        uint64_t kind;
        const char *on;
        size_t ol;
        const uint8_t *od;
        size_t odl;
        (void)!cl_cbor_dec_array(&objs, &k);
        (void)!cl_cbor_dec_uint(&objs, &kind);
        (void)dec_name(&objs, CL_MNAME_MAX, &on, &ol);
        (void)dec_doc(&objs, &od, &odl);
        if (kind == CL_EVTYPE_KIND) {
            cl_evtype_t t;
            (void)evtype_from_doc(od, odl, name, nl, &t);
            if ((st = cl_state_put_evtype(s, &t)) != CL_OK)
                return st;
            continue;
        }
        uint8_t *copy = dup_mem(od, odl);
        if (copy == NULL)
            return CL_FAIL(CL_ERR_FULL);
        cl_mobj_t *o = obj_put(s, (int)kind, on, ol);
        o->version = 1;
        o->doc = copy;
        o->doc_len = odl;
        o->enabled = kind == CL_MK_RULE ? doc_enabled(copy, odl) : true;
        memcpy(o->scenario, name, nl);
        o->scenario[nl] = 0;
    }
    return CL_OK;
}

static cl_status_t apply_scenario_del(cl_state_t *s, cl_cbor_dec_t *d, size_t n)
{
    const char *name;
    size_t nl, m;
    cl_cbor_dec_t objs;
    if (n != 4 || dec_name(d, CL_NAME_MAX, &name, &nl) != CL_OK ||
        cl_model_get(s, CL_MK_SCENARIO, name, nl) == NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    objs = *d;
    if (cl_cbor_dec_array(d, &m) != CL_OK || m > 256)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < m; i++) {
        size_t k;
        uint64_t kind;
        const char *on;
        size_t ol;
        if (cl_cbor_dec_array(d, &k) != CL_OK || k != 2 || cl_cbor_dec_uint(d, &kind) != CL_OK ||
            dec_name(d, CL_MNAME_MAX, &on, &ol) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (kind == CL_EVTYPE_KIND ? cl_state_evtype(s, on, ol) == NULL
            : (kind == CL_MK_ACTTYPE || kind == CL_MK_RULE)
                ? cl_model_get(s, (int)kind, on, ol) == NULL
                : true)
            return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (!cl_cbor_dec_at_end(d))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    (void)!cl_cbor_dec_array(&objs, &m);
    for (size_t i = 0; i < m; i++) {
        size_t k;
        uint64_t kind;
        const char *on;
        size_t ol;
        (void)!cl_cbor_dec_array(&objs, &k);
        (void)!cl_cbor_dec_uint(&objs, &kind);
        (void)dec_name(&objs, CL_MNAME_MAX, &on, &ol);
        if (kind == CL_EVTYPE_KIND)
            cl_state_del_evtype(s, on, ol);
        else
            obj_del(s, (int)kind, on, ol);
    }
    obj_del(s, CL_MK_SCENARIO, name, nl);
    return CL_OK;
}

cl_status_t cl_model_apply(cl_state_t *s, uint64_t op, cl_cbor_dec_t *d, size_t n, int64_t t)
{
    (void)t;
    if (s->phase != CL_PHASE_PROVISIONED)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    switch (op) {
    case CL_REC_GROUPS: {
        uint64_t id;
        const uint8_t *g;
        size_t gl;
        cl_client_t *cl;
        if (n != 4 || cl_cbor_dec_uint(d, &id) != CL_OK || id > UINT32_MAX ||
            cl_cbor_dec_bstr(d, &g, &gl) != CL_OK || !groups_valid(g, gl) ||
            !cl_cbor_dec_at_end(d) || (cl = cl_state_client(s, (uint32_t)id)) == NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        return set_groups(cl, g, gl);
    }
    case CL_REC_MODEL: return apply_model(s, d, n);
    case CL_REC_RULE_FLAGS: {
        const char *name;
        size_t nl;
        bool en;
        cl_mobj_t *o;
        if (n != 4 || dec_name(d, CL_MNAME_MAX, &name, &nl) != CL_OK ||
            cl_cbor_dec_bool(d, &en) != CL_OK || !cl_cbor_dec_at_end(d) ||
            (o = cl_model_get(s, CL_MK_RULE, name, nl)) == NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        o->enabled = en;
        o->version++;
        if (en) {
            o->failed = false;
            o->reason[0] = 0;
        }
        return CL_OK;
    }
    case CL_REC_EFFECTS: return apply_effects(s, d, n);
    case CL_REC_DONE: return apply_done(s, d, n);
    case CL_REC_SCENARIO: return apply_scenario(s, d, n);
    case CL_REC_SCENARIO_DEL: return apply_scenario_del(s, d, n);
    case CL_REC_EVTYPE_DEL: {
        const char *name;
        size_t nl;
        if (n != 3 || cl_cbor_dec_tstr(d, &name, &nl) != CL_OK || !cl_cbor_dec_at_end(d) ||
            cl_state_evtype(s, name, nl) == NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        cl_state_del_evtype(s, name, nl);
        return CL_OK;
    }
    default: return CL_FAIL(CL_ERR_BAD_INPUT);
    }
}

/* ---- snapshot element: [objects, actions, next_action_id] ---- */

void cl_model_encode(cl_cbor_enc_t *e, const cl_state_t *s)
{
    cl_cbor_enc_array(e, 3);
    cl_cbor_enc_array(e, s->n_objs);
    for (size_t i = 0; i < s->n_objs; i++) {
        const cl_mobj_t *o = &s->objs[i];
        cl_cbor_enc_array(e, 9);
        cl_cbor_enc_uint(e, o->kind);
        cl_cbor_enc_tstr_z(e, o->name);
        cl_cbor_enc_uint(e, o->version);
        cl_cbor_enc_raw(e, o->doc, o->doc_len);
        cl_cbor_enc_bool(e, o->enabled);
        cl_cbor_enc_bool(e, o->failed);
        cl_cbor_enc_tstr_z(e, o->reason);
        if (o->state != NULL)
            cl_cbor_enc_bstr(e, o->state, o->state_len);
        else
            cl_cbor_enc_null(e);
        cl_cbor_enc_tstr_z(e, o->scenario);
    }
    cl_cbor_enc_array(e, s->n_actions);
    for (size_t i = 0; i < s->n_actions; i++) {
        const cl_action_t *a = &s->actions[i];
        cl_cbor_enc_array(e, 7);
        cl_cbor_enc_uint(e, a->id);
        cl_cbor_enc_uint(e, a->target);
        cl_cbor_enc_tstr_z(e, a->type);
        cl_cbor_enc_raw(e, a->props, a->props_len);
        cl_cbor_enc_int(e, a->time_ms);
        cl_cbor_enc_tstr_z(e, a->rule);
        cl_cbor_enc_int(e, a->expires_ms);
    }
    cl_cbor_enc_uint(e, s->next_action_id);
}

cl_status_t cl_model_decode(cl_state_t *s, cl_cbor_dec_t *d)
{
    size_t n, m;
    cl_status_t st;
    if (cl_cbor_dec_array(d, &n) != CL_OK || n != 3 || cl_cbor_dec_array(d, &m) != CL_OK ||
        m > CL_MODEL_MAX_OBJECTS)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    void *arr = s->objs;
    st = reserve(&arr, &s->cap_objs, m, sizeof *s->objs, CL_MODEL_MAX_OBJECTS);
    s->objs = arr;
    if (st != CL_OK)
        return st;
    for (size_t i = 0; i < m; i++) {
        size_t k, nl, rl, sl;
        uint64_t kind, version;
        const char *name, *reason, *scn;
        const uint8_t *doc, *state = NULL;
        size_t dl, stl = 0;
        bool en, failed;
        cl_cbor_type_t ty;
        if (cl_cbor_dec_array(d, &k) != CL_OK || k != 9 || cl_cbor_dec_uint(d, &kind) != CL_OK ||
            kind < CL_MK_ACTTYPE || kind > CL_MK_SCENARIO ||
            dec_name(d, CL_MNAME_MAX, &name, &nl) != CL_OK ||
            cl_cbor_dec_uint(d, &version) != CL_OK || dec_doc(d, &doc, &dl) != CL_OK ||
            doc == NULL || cl_cbor_dec_bool(d, &en) != CL_OK ||
            cl_cbor_dec_bool(d, &failed) != CL_OK ||
            cl_cbor_dec_tstr(d, &reason, &rl) != CL_OK || rl >= CL_MODEL_WHY_MAX ||
            !text_ok(reason, rl) || cl_cbor_dec_peek(d, &ty) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (ty == CL_CBOR_BSTR) {
            if (cl_cbor_dec_bstr(d, &state, &stl) != CL_OK || stl > CL_MODEL_MAX_DOC)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        } else if (cl_cbor_dec_null(d) != CL_OK) {
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (cl_cbor_dec_tstr(d, &scn, &sl) != CL_OK || !scn_ok(scn, sl) ||
            cl_model_get(s, (int)kind, name, nl) != NULL ||
            (s->n_objs > 0 && obj_cmp((int)kind, name, nl, &s->objs[s->n_objs - 1]) < 0))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        cl_mobj_t *o = obj_put(s, (int)kind, name, nl);
        o->version = version;
        o->enabled = en;
        o->failed = failed;
        memcpy(o->reason, reason, rl);
        memcpy(o->scenario, scn, sl);
        if ((o->doc = dup_mem(doc, dl)) == NULL)
            return CL_FAIL(CL_ERR_FULL);
        o->doc_len = dl;
        if (state != NULL) {
            if ((o->state = dup_mem(state, stl)) == NULL)
                return CL_FAIL(CL_ERR_FULL);
            o->state_len = stl;
        }
    }
    if (cl_cbor_dec_array(d, &m) != CL_OK || m > CL_ACTIONS_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    arr = s->actions;
    st = reserve(&arr, &s->cap_actions, m, sizeof *s->actions, CL_ACTIONS_MAX);
    s->actions = arr;
    if (st != CL_OK)
        return st;
    for (size_t i = 0; i < m; i++) {
        cl_action_t a;
        const uint8_t *p;
        size_t pl;
        if (dec_action(d, &a, &p, &pl) != CL_OK ||
            (s->n_actions > 0 && a.id <= s->actions[s->n_actions - 1].id))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if ((a.props = dup_mem(p, pl)) == NULL)
            return CL_FAIL(CL_ERR_FULL);
        a.props_len = pl;
        s->actions[s->n_actions++] = a;
    }
    if (cl_cbor_dec_uint(d, &s->next_action_id) != CL_OK ||
        (s->n_actions > 0 && s->next_action_id <= s->actions[s->n_actions - 1].id))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return CL_OK;
}
