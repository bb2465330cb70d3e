/*
 * ngsi_writer.c - the group-commit writer of the NGSI facade
 * (ngsi_server.h). UNTRUSTED HOST SIDE.
 *
 * What: one thread takes every queued operation (up to batch_ops), opens
 * ONE transaction, loads every entity the batch touches in one store call,
 * applies the operations in arrival order on an in-memory cache of those
 * entities (so the second of two updates of an entity in the same batch
 * sees the first), writes each changed entity once, commits - and only then
 * answers the requests (201/204 mean durable) and queues the notifications
 * they caused. A failed commit rolls back and answers every request of the
 * batch 500; nothing of it was acknowledged and no notification leaves.
 *
 * Why: one fsync (SQLite) or one COMMIT (PostgreSQL) for a whole batch
 * instead of one per request is what lets the facade take tens of
 * thousands of updates per second; requests that arrive while a commit runs
 * simply form the next batch. A single writer also serializes every
 * read-modify-write of an entity without row locks.
 *
 * Semantics follow Orion (docs/ngsi.md): an entity is (service, path, id,
 * type); without a type an update matches the one entity with that id
 * (409 when several); PATCH updates existing attributes only (404 for a
 * missing entity, 422 Unprocessable when no attribute exists, 422
 * PartialUpdate when some do - the existing ones are updated); metadata of
 * an updated attribute are merged unless overrideMetadata. Bounds: the
 * attributes of an entity (max_attrs), its stored document
 * (max_entity_bytes: 413, the entity unchanged), and the cache (written out
 * and dropped mid-batch past WRITER_CACHE_BYTES).
 */
#include "ngsi_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/core.h"

#define WRITER_CACHE_BYTES (64u * 1024u * 1024u)
#define SUB_FLUSH_MS 1000
#define MAX_LISTED 8 /* attribute / entity names listed in an error description */

struct ngsi_writer {
    cl_ngsi_t *ng;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ngsi_op_t *head, *tail;
    size_t queued;
    bool stopping, closed;
    int64_t last_sub_flush;
};

/* ------------------------------------------------------------ the batch cache */

typedef struct wtype {
    char *type;
    int64_t seq; /* > 0: the row in the store */
    cJSON *attrs;
    char *text; /* the current document (malloc'd) */
    size_t text_len;
    bool exists, dirty;
} wtype_t;

typedef struct wkey {
    char *service, *path, *id;
    uint64_t hash;
    bool loaded;
    wtype_t *t;
    size_t n, cap;
    struct wkey *hnext;
} wkey_t;

typedef struct wctx {
    cl_ngsi_t *ng;
    wkey_t **bucket;
    size_t nbuckets;
    wkey_t **keys; /* every key, for flushes */
    size_t nkeys, capkeys;
    ngsi_write_t *writes;
    size_t nwrites, capwrites;
    size_t cost;
    cl_status_t failed; /* a store error: the batch fails */
    ngsi_notif_t *pending;
    int64_t now_ms;
    size_t sub_creates;
} wctx_t;

static uint64_t fnv(const char *a, const char *b, const char *c)
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[3] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p != '\0'; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h;
}

static char *dupstr(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static void wtype_clear(wtype_t *t)
{
    cJSON_Delete(t->attrs);
    free(t->text);
    free(t->type);
    memset(t, 0, sizeof *t);
}

static void key_free(wkey_t *k)
{
    for (size_t i = 0; i < k->n; i++)
        wtype_clear(&k->t[i]);
    free(k->t);
    free(k->service);
    free(k->path);
    free(k->id);
    free(k);
}

static void map_drop(wctx_t *c)
{
    for (size_t i = 0; i < c->nkeys; i++)
        key_free(c->keys[i]);
    c->nkeys = 0;
    if (c->bucket != NULL)
        memset(c->bucket, 0, c->nbuckets * sizeof *c->bucket);
    c->cost = 0;
}

static bool map_init(wctx_t *c, size_t expect)
{
    size_t n = 64;
    while (n < expect * 2)
        n *= 2;
    c->bucket = calloc(n, sizeof *c->bucket);
    c->nbuckets = n;
    return c->bucket != NULL;
}

static wkey_t *key_find(wctx_t *c, const char *service, const char *path, const char *id,
                        uint64_t h)
{
    for (wkey_t *k = c->bucket[h & (c->nbuckets - 1)]; k != NULL; k = k->hnext)
        if (k->hash == h && strcmp(k->id, id) == 0 && strcmp(k->path, path) == 0 &&
            strcmp(k->service, service) == 0)
            return k;
    return NULL;
}

static wkey_t *key_add(wctx_t *c, const char *service, const char *path, const char *id)
{
    uint64_t h = fnv(service, path, id);
    wkey_t *k = key_find(c, service, path, id, h);
    if (k != NULL)
        return k;
    if (c->nkeys == c->capkeys) {
        size_t cap = c->capkeys ? c->capkeys * 2 : 64;
        wkey_t **nk = realloc(c->keys, cap * sizeof *nk);
        if (nk == NULL)
            return NULL;
        c->keys = nk;
        c->capkeys = cap;
    }
    if (c->nkeys >= c->nbuckets) { /* keep chains short: grow the table */
        size_t nb = c->nbuckets * 2;
        wkey_t **b = calloc(nb, sizeof *b);
        if (b == NULL)
            return NULL;
        for (size_t i = 0; i < c->nkeys; i++) {
            wkey_t *x = c->keys[i];
            x->hnext = b[x->hash & (nb - 1)];
            b[x->hash & (nb - 1)] = x;
        }
        free(c->bucket);
        c->bucket = b;
        c->nbuckets = nb;
    }
    k = calloc(1, sizeof *k);
    if (k == NULL)
        return NULL;
    k->service = dupstr(service);
    k->path = dupstr(path);
    k->id = dupstr(id);
    if (k->service == NULL || k->path == NULL || k->id == NULL) {
        key_free(k);
        return NULL;
    }
    k->hash = h;
    k->hnext = c->bucket[h & (c->nbuckets - 1)];
    c->bucket[h & (c->nbuckets - 1)] = k;
    c->keys[c->nkeys++] = k;
    return k;
}

static wtype_t *type_slot(wkey_t *k, const char *type)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->t[i].type, type) == 0)
            return &k->t[i];
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 2;
        wtype_t *nt = realloc(k->t, cap * sizeof *nt);
        if (nt == NULL)
            return NULL;
        k->t = nt;
        k->cap = cap;
    }
    wtype_t *t = &k->t[k->n];
    memset(t, 0, sizeof *t);
    if ((t->type = dupstr(type)) == NULL)
        return NULL;
    k->n++;
    return t;
}

static int load_cb(void *ctx, const ngsi_row_t *row)
{
    wctx_t *c = ctx;
    wkey_t *k = key_find(c, row->service, row->path, row->id,
                         fnv(row->service, row->path, row->id));
    if (k == NULL || !ngsi_name_ok(row->type))
        return 0;
    wtype_t *t = type_slot(k, row->type);
    if (t == NULL || t->exists) {
        if (t == NULL)
            c->failed = CL_FAIL(CL_ERR_FULL);
        return t == NULL;
    }
    t->text = malloc(row->doc_len + 1);
    if (t->text == NULL) {
        c->failed = CL_FAIL(CL_ERR_FULL);
        return 1;
    }
    memcpy(t->text, row->doc, row->doc_len);
    t->text[row->doc_len] = '\0';
    t->text_len = row->doc_len;
    t->seq = row->seq;
    t->exists = true;
    c->cost += row->doc_len * 5;
    return 0;
}

/* Loads every key not loaded yet (one store call). */
static void load_missing(wctx_t *c)
{
    if (c->failed != CL_OK)
        return;
    size_t n = 0;
    for (size_t i = 0; i < c->nkeys; i++)
        n += !c->keys[i]->loaded;
    if (n == 0)
        return;
    ngsi_key_t *keys = malloc(n * sizeof *keys);
    if (keys == NULL) {
        c->failed = CL_FAIL(CL_ERR_FULL);
        return;
    }
    size_t j = 0;
    for (size_t i = 0; i < c->nkeys; i++) {
        wkey_t *k = c->keys[i];
        if (!k->loaded) {
            keys[j++] = (ngsi_key_t){k->service, k->path, k->id};
            k->loaded = true;
        }
    }
    cl_status_t st = c->ng->store->ops->load(c->ng->store, keys, n, load_cb, c);
    if (st != CL_OK && c->failed == CL_OK)
        c->failed = st;
    free(keys);
}

/* The attributes tree of an existing entity (parsed on first use). */
static cJSON *type_attrs(wctx_t *c, wtype_t *t)
{
    if (t->attrs != NULL)
        return t->attrs;
    ngsi_err_t err;
    t->attrs = ngsi_json_parse(t->text, t->text_len, CL_NGSI_DEFAULT_MAX_DEPTH * 2, NULL, &err);
    if (t->attrs != NULL && !cJSON_IsObject(t->attrs)) {
        cJSON_Delete(t->attrs);
        t->attrs = NULL;
    }
    if (t->attrs == NULL) { /* a corrupt row: treat it as an entity without attributes */
        ngsi_log(c->ng, CL_LOG_WARN, "msg=\"ngsi stored entity unreadable: attributes reset\"");
        t->attrs = cJSON_CreateObject();
    }
    return t->attrs;
}

static bool push_write(wctx_t *c, ngsi_write_t w)
{
    if (c->nwrites == c->capwrites) {
        size_t cap = c->capwrites ? c->capwrites * 2 : 64;
        ngsi_write_t *nw = realloc(c->writes, cap * sizeof *nw);
        if (nw == NULL) {
            c->failed = CL_FAIL(CL_ERR_FULL);
            return false;
        }
        c->writes = nw;
        c->capwrites = cap;
    }
    c->writes[c->nwrites++] = w;
    return true;
}

/* Writes every change (deletes were queued when they happened) and keeps the cache. */
static void flush(wctx_t *c)
{
    if (c->failed != CL_OK)
        return;
    for (size_t i = 0; i < c->nkeys; i++) {
        wkey_t *k = c->keys[i];
        for (size_t j = 0; j < k->n; j++) {
            wtype_t *t = &k->t[j];
            if (!t->dirty || !t->exists)
                continue;
            ngsi_write_t w = {.kind = t->seq > 0 ? NGSI_W_UPDATE : NGSI_W_INSERT,
                              .seq = t->seq,
                              .service = k->service,
                              .path = k->path,
                              .id = k->id,
                              .type = t->type,
                              .doc = t->text,
                              .doc_len = t->text_len,
                              .now_ms = c->now_ms};
            if (!push_write(c, w))
                return;
        }
    }
    if (c->nwrites > 0) {
        cl_status_t st = c->ng->store->ops->write(c->ng->store, c->writes, c->nwrites);
        if (st != CL_OK)
            c->failed = st;
    }
    c->nwrites = 0;
}

/* Past the cache budget: write everything out and forget it (reloaded on demand). */
static void maybe_spill(wctx_t *c)
{
    if (c->cost <= WRITER_CACHE_BYTES || c->failed != CL_OK)
        return;
    flush(c);
    map_drop(c);
}

/* ------------------------------------------------------------ applying */

typedef struct result {
    unsigned status;
    const char *error;
    char desc[NGSI_DESC_SIZE];
} result_t;

static void res_set(result_t *r, unsigned status, const char *error, const char *desc)
{
    r->status = status;
    r->error = error;
    snprintf(r->desc, sizeof r->desc, "%s", desc != NULL ? desc : "");
}

static void res_not_found(result_t *r)
{
    res_set(r, 404, "NotFound", "The requested entity has not been found. Check type and id");
}

/* "what: [ a, b, c ]" with at most MAX_LISTED names */
static void list_desc(char *out, size_t size, const char *what, const char *const *names, size_t n)
{
    size_t o = (size_t)snprintf(out, size, "%s: [ ", what);
    for (size_t i = 0; i < n && i < MAX_LISTED && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%s%s", i ? ", " : "", names[i]);
    if (n > MAX_LISTED && o < size)
        o += (size_t)snprintf(out + o, size - o, ", ...");
    if (o < size)
        snprintf(out + o, size - o, " ]");
}

/* Notifications for a changed entity (nothing when nobody subscribed). */
static void notify(wctx_t *c, const ngsi_op_t *op, const wkey_t *k, const wtype_t *t,
                   const char *const *changed, size_t nchanged)
{
    if (nchanged == 0 || !ngsi_subs_any(c->ng->subs, k->service))
        return;
    ngsi_subs_match(c->ng->subs, k->service, k->path, k->id, t->type, t->attrs, changed, nchanged,
                    op->correlator, &c->pending);
}

/* Prints the entity's document; false (413) when it is over the limit. */
static bool reprint(wctx_t *c, wtype_t *t, result_t *r)
{
    size_t len = 0;
    char *s = ngsi_json_print(t->attrs, &len);
    if (s == NULL) {
        res_set(r, 500, "InternalServerError", "out of memory");
        return false;
    }
    if (len > c->ng->lim.max_entity_bytes) {
        cJSON_free(s);
        char d[96];
        snprintf(d, sizeof d, "entity too large (max %zu bytes)", c->ng->lim.max_entity_bytes);
        res_set(r, 413, "RequestEntityTooLarge", d);
        return false;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        cJSON_free(s);
        res_set(r, 500, "InternalServerError", "out of memory");
        return false;
    }
    memcpy(copy, s, len + 1);
    cJSON_free(s);
    c->cost -= c->cost >= t->text_len * 5 ? t->text_len * 5 : c->cost;
    free(t->text);
    t->text = copy;
    t->text_len = len;
    t->dirty = true;
    c->cost += len * 5;
    return true;
}

static void create(wctx_t *c, const ngsi_op_t *op, wkey_t *k, const char *type, ngsi_ent_in_t *e,
                   result_t *r)
{
    if (e->nattrs > c->ng->lim.max_attrs) {
        res_set(r, 413, "RequestEntityTooLarge", "too many attributes");
        return;
    }
    wtype_t *t = type_slot(k, type);
    if (t == NULL) {
        c->failed = CL_FAIL(CL_ERR_FULL);
        res_set(r, 500, "InternalServerError", "out of memory");
        return;
    }
    cJSON_Delete(t->attrs);
    t->attrs = e->attrs; /* moved */
    e->attrs = NULL;
    t->exists = true;
    t->seq = 0; /* (a row deleted earlier in this batch was already queued for deletion) */
    if (!reprint(c, t, r)) {
        t->exists = false;
        t->dirty = false;
        cJSON_Delete(t->attrs);
        t->attrs = NULL;
        return;
    }
    res_set(r, 201, NULL, NULL);
    NGSI_INC(c->ng, entities_created);
    if (ngsi_subs_any(c->ng->subs, k->service)) {
        size_t n = 0, cap = (size_t)cJSON_GetArraySize(t->attrs);
        const char **names = malloc((cap ? cap : 1) * sizeof *names);
        if (names == NULL)
            return;
        for (cJSON *a = t->attrs->child; a != NULL && n < cap; a = a->next)
            names[n++] = a->string;
        /* no attributes: only subscriptions without a condition match */
        ngsi_subs_match(c->ng->subs, k->service, k->path, k->id, t->type, t->attrs, names, n,
                        op->correlator, &c->pending);
        free(names);
    }
}

static void delete_entity(wctx_t *c, wtype_t *t, result_t *r)
{
    if (t->seq > 0) {
        ngsi_write_t w = {.kind = NGSI_W_DELETE, .seq = t->seq};
        if (!push_write(c, w)) {
            res_set(r, 500, "InternalServerError", "out of memory");
            return;
        }
    }
    cJSON_Delete(t->attrs);
    free(t->text);
    c->cost -= c->cost >= t->text_len * 5 ? t->text_len * 5 : c->cost;
    t->attrs = NULL;
    t->text = NULL;
    t->text_len = 0;
    t->seq = 0;
    t->exists = false;
    t->dirty = false;
    res_set(r, 204, NULL, NULL);
    NGSI_INC(c->ng, entities_deleted);
}

typedef enum mmode { M_APPEND, M_STRICT, M_UPDATE, M_DELETE, M_REPLACE } mmode_t;

/* The metadata of `old` that `nw` does not set are kept (Orion's default). */
static void merge_metadata(cJSON *nw, const cJSON *old)
{
    const cJSON *om = cJSON_GetObjectItemCaseSensitive(old, "metadata");
    cJSON *nm = cJSON_GetObjectItemCaseSensitive(nw, "metadata");
    if (!cJSON_IsObject(om) || !cJSON_IsObject(nm))
        return;
    for (const cJSON *m = om->child; m != NULL; m = m->next)
        if (cJSON_GetObjectItemCaseSensitive(nm, m->string) == NULL)
            cJSON_AddItemToObject(nm, m->string, cJSON_Duplicate(m, 1));
}

/*
 * Applies in->attrs to the entity per mode. Conflicts (strict: present;
 * update/delete: absent) are listed; the others are applied (Orion 3.x
 * PartialUpdate). Rolls back to a copy when the document would exceed the
 * size limit.
 */
static void merge(wctx_t *c, const ngsi_op_t *op, wkey_t *k, wtype_t *t, ngsi_ent_in_t *in,
                  mmode_t mode, result_t *r)
{
    cJSON *cur = type_attrs(c, t);
    if (cur == NULL) {
        res_set(r, 500, "InternalServerError", "out of memory");
        return;
    }
    size_t nin = 0, nconf = 0, nadd = 0, have = (size_t)cJSON_GetArraySize(cur);
    const char *conf[MAX_LISTED + 1];
    for (cJSON *a = in->attrs != NULL ? in->attrs->child : NULL; a != NULL; a = a->next) {
        nin++;
        bool exists = cJSON_GetObjectItemCaseSensitive(cur, a->string) != NULL;
        bool conflict = (mode == M_STRICT && exists) ||
                        ((mode == M_UPDATE || mode == M_DELETE) && !exists);
        if (conflict) {
            if (nconf < MAX_LISTED + 1)
                conf[nconf] = a->string;
            nconf++;
        } else if (!exists && mode != M_DELETE) {
            nadd++;
        }
    }
    size_t after = mode == M_REPLACE ? nin : have + nadd;
    if (after > c->ng->lim.max_attrs) {
        char d[96];
        snprintf(d, sizeof d, "too many attributes (max %u)", c->ng->lim.max_attrs);
        res_set(r, 413, "RequestEntityTooLarge", d);
        return;
    }
    if (nconf > 0 && nconf == nin) { /* nothing to apply */
        if (op->single_attr) {
            res_set(r, 404, "NotFound", "The entity does not have such an attribute");
            return;
        }
        char d[NGSI_DESC_SIZE];
        list_desc(d, sizeof d,
                  mode == M_STRICT ? "one or more of the attributes in the request already exist"
                                   : "one or more of the attributes in the request do not exist",
                  conf, nconf);
        res_set(r, 422, "Unprocessable", d);
        return;
    }
    /* a copy to roll back to, only when the new document could reach the limit (a
     * normalized attribute is at most the request's bytes plus its defaults) */
    cJSON *undo = NULL;
    if (t->text_len + op->body_len + 96 * nin >= c->ng->lim.max_entity_bytes) {
        undo = cJSON_Duplicate(cur, 1);
        if (undo == NULL) {
            res_set(r, 500, "InternalServerError", "out of memory");
            return;
        }
    }
    const size_t max_changed = have + nin + 1;
    const char **changed = malloc(max_changed * sizeof *changed);
    size_t nchanged = 0;
    if (changed == NULL) {
        cJSON_Delete(undo);
        res_set(r, 500, "InternalServerError", "out of memory");
        return;
    }
    if (mode == M_REPLACE) {
        for (cJSON *a = cur->child; a != NULL; a = a->next) {
            const cJSON *na = cJSON_GetObjectItemCaseSensitive(in->attrs, a->string);
            if ((na == NULL || !cJSON_Compare(a, na, 1)) && nchanged < max_changed)
                changed[nchanged++] = a->string; /* removed or modified (names live in cur) */
        }
    }
    /* what changes is decided before cur is modified; names point into in->attrs or cur */
    cJSON *next;
    for (cJSON *a = in->attrs != NULL ? in->attrs->child : NULL; a != NULL; a = next) {
        next = a->next;
        cJSON *old = cJSON_GetObjectItemCaseSensitive(cur, a->string);
        if (mode == M_DELETE) {
            if (old != NULL) {
                if (nchanged < max_changed)
                    changed[nchanged++] = a->string;
                cJSON_DeleteItemFromObjectCaseSensitive(cur, a->string);
            }
            continue;
        }
        if (mode == M_REPLACE) {
            if (old == NULL && nchanged < max_changed)
                changed[nchanged++] = a->string;
            continue;
        }
        if ((mode == M_STRICT && old != NULL) || (mode == M_UPDATE && old == NULL))
            continue; /* a conflict, listed above */
        cJSON *na = cJSON_DetachItemViaPointer(in->attrs, a);
        if (old != NULL && !op->override_md)
            merge_metadata(na, old);
        bool differs = old == NULL || !cJSON_Compare(old, na, 1);
        if (old != NULL)
            cJSON_ReplaceItemViaPointer(cur, old, na); /* na keeps its key */
        else
            cJSON_AddItemToObject(cur, na->string, na); /* na's key is replaced by a copy */
        if (differs && nchanged < max_changed)
            changed[nchanged++] = na->string; /* the key now owned by cur */
    }
    if (mode == M_REPLACE) {
        /* the names in changed[] that point into cur must stay valid: keep the old tree */
        cJSON *old_tree = cur;
        t->attrs = in->attrs;
        in->attrs = NULL;
        cur = t->attrs;
        if (!reprint(c, t, r)) {
            cJSON_Delete(t->attrs);
            t->attrs = old_tree;
        } else {
            res_set(r, 204, NULL, NULL);
            NGSI_INC(c->ng, entities_updated);
            notify(c, op, k, t, changed, nchanged);
            cJSON_Delete(old_tree);
        }
        cJSON_Delete(undo);
        free(changed);
        return;
    }
    if (!reprint(c, t, r)) {
        if (undo != NULL) {
            cJSON_Delete(t->attrs);
            t->attrs = undo;
        } else { /* cannot happen: the copy is taken whenever the limit is reachable */
            ngsi_log(c->ng, CL_LOG_ERROR, "msg=\"ngsi entity over the size limit: batch failed\"");
            c->failed = CL_FAIL(CL_ERR_STATE);
        }
        free(changed);
        return;
    }
    cJSON_Delete(undo);
    if (nconf > 0) {
        char d[NGSI_DESC_SIZE];
        list_desc(d, sizeof d,
                  mode == M_STRICT ? "one or more of the attributes in the request already exist"
                                   : "one or more of the attributes in the request do not exist",
                  conf, nconf);
        res_set(r, 422, "PartialUpdate", d);
    } else {
        res_set(r, 204, NULL, NULL);
    }
    NGSI_INC(c->ng, entities_updated);
    notify(c, op, k, t, changed, nchanged);
    free(changed);
}

static void apply_item(wctx_t *c, ngsi_op_t *op, ngsi_ent_in_t *e, result_t *r)
{
    wkey_t *k = key_add(c, op->service, op->path, e->id);
    if (k == NULL) {
        c->failed = CL_FAIL(CL_ERR_FULL);
        res_set(r, 500, "InternalServerError", "out of memory");
        return;
    }
    if (!k->loaded)
        load_missing(c);
    if (c->failed != CL_OK) {
        res_set(r, 500, "InternalServerError", "database error");
        return;
    }
    wtype_t *t = NULL;
    size_t nexist = 0;
    for (size_t i = 0; i < k->n; i++) {
        if (!k->t[i].exists)
            continue;
        nexist++;
        if (e->type == NULL || strcmp(k->t[i].type, e->type) == 0)
            t = &k->t[i];
    }
    bool creating = op->verb == NGSI_V_CREATE || op->verb == NGSI_V_UPSERT ||
                    op->verb == NGSI_V_APPEND_STRICT_CREATE;
    if (e->type == NULL && nexist > 1) {
        if (op->verb == NGSI_V_CREATE) { /* "Thing" is the type when none is given */
            t = NULL;
            for (size_t i = 0; i < k->n; i++)
                if (k->t[i].exists && strcmp(k->t[i].type, "Thing") == 0)
                    t = &k->t[i];
        } else {
            res_set(r, 409, "TooManyResults", "More than one matching entity. Please refine "
                                              "your query");
            return;
        }
    }
    if (op->verb == NGSI_V_CREATE && e->type == NULL && t != NULL && strcmp(t->type, "Thing") != 0)
        t = NULL; /* an id of another type: a new "Thing" */
    if (t == NULL) {
        if (!creating) {
            res_not_found(r);
            return;
        }
        create(c, op, k, e->type != NULL ? e->type : "Thing", e, r);
        if (r->status == 201 && op->verb != NGSI_V_CREATE && op->batch)
            r->status = 204;
        return;
    }
    switch (op->verb) {
    case NGSI_V_CREATE:
        res_set(r, 422, "Unprocessable", "Already Exists");
        return;
    case NGSI_V_UPSERT:
    case NGSI_V_APPEND:
        merge(c, op, k, t, e, M_APPEND, r);
        return;
    case NGSI_V_APPEND_STRICT:
    case NGSI_V_APPEND_STRICT_CREATE:
        merge(c, op, k, t, e, M_STRICT, r);
        return;
    case NGSI_V_UPDATE:
        merge(c, op, k, t, e, M_UPDATE, r);
        return;
    case NGSI_V_REPLACE:
        merge(c, op, k, t, e, M_REPLACE, r);
        return;
    case NGSI_V_DELETE:
        if (e->nattrs == 0)
            delete_entity(c, t, r);
        else
            merge(c, op, k, t, e, M_DELETE, r);
        return;
    }
}

static void set_location_entity(ngsi_op_t *op, const ngsi_ent_in_t *e)
{
    const char *type = e->type != NULL ? e->type : "Thing";
    size_t n = strlen(e->id) + strlen(type) + 32;
    op->location = malloc(n);
    if (op->location != NULL)
        snprintf(op->location, n, "/v2/entities/%s?type=%s", e->id, type);
}

static void op_result(ngsi_op_t *op, unsigned status, const char *error, const char *desc)
{
    op->status = status;
    if (status >= 400)
        ngsi_err_set(&op->err, status, error != NULL ? error : "InternalServerError", "%s",
                     desc != NULL ? desc : "");
}

static void apply_entities(wctx_t *c, ngsi_op_t *op)
{
    if (!op->batch) {
        result_t r = {0};
        apply_item(c, op, &op->ents[0], &r);
        op_result(op, r.status, r.error, r.desc);
        if (r.status == 201)
            set_location_entity(op, &op->ents[0]);
        maybe_spill(c);
        return;
    }
    /* /v2/op/update: every entity is tried; Orion's aggregated answer */
    size_t nfail = 0;
    result_t first = {0};
    const char *failed_ids[MAX_LISTED + 1];
    for (size_t i = 0; i < op->nents; i++) {
        result_t r = {0};
        apply_item(c, op, &op->ents[i], &r);
        if (r.status >= 400) {
            if (nfail == 0)
                first = r;
            if (nfail < MAX_LISTED + 1)
                failed_ids[nfail] = op->ents[i].id;
            nfail++;
        }
        maybe_spill(c);
        if (c->failed != CL_OK)
            break;
    }
    if (nfail == 0) {
        op_result(op, 204, NULL, NULL);
    } else if (nfail == op->nents) {
        if (op->nents == 1) {
            op_result(op, first.status, first.error, first.desc);
        } else {
            char d[NGSI_DESC_SIZE];
            char head[NGSI_DESC_SIZE / 2];
            snprintf(head, sizeof head, "%.150s - entities", first.desc);
            list_desc(d, sizeof d, head, failed_ids, nfail);
            op_result(op, first.status, first.error, d);
        }
    } else {
        char d[NGSI_DESC_SIZE];
        list_desc(d, sizeof d, "some entities were not updated", failed_ids, nfail);
        op_result(op, 422, "PartialUpdate", d);
    }
}

static void apply_sub_create(wctx_t *c, ngsi_op_t *op)
{
    cl_ngsi_t *ng = c->ng;
    if (ngsi_subs_count(ng->subs) + c->sub_creates >= ng->cfg.max_subscriptions) {
        op_result(op, 413, "RequestEntityTooLarge", "too many subscriptions");
        return;
    }
    ngsi_sub_t *s = op->sub;
    for (int tries = 0; ngsi_subs_exists(ng->subs, s->id, NULL); tries++) {
        if (tries > 8) {
            op_result(op, 500, "InternalServerError", "cannot allocate a subscription id");
            return;
        }
        ngsi_random_hex(s->id, NGSI_SUB_ID_LEN / 2);
    }
    ngsi_buf_t b;
    nb_init(&b, (size_t)4 << 20);
    ngsi_sub_render(&b, s, c->now_ms);
    size_t len = 0;
    char *doc = nb_take(&b, &len);
    if (doc == NULL) {
        op_result(op, 500, "InternalServerError", "out of memory");
        return;
    }
    cl_status_t st = ng->store->ops->sub_put(ng->store, s->id, s->service, s->path, doc, len);
    free(doc);
    if (st != CL_OK) {
        c->failed = st;
        op_result(op, 500, "InternalServerError", "database error");
        return;
    }
    size_t n = sizeof "/v2/subscriptions/" + NGSI_SUB_ID_LEN;
    op->location = malloc(n);
    if (op->location != NULL)
        snprintf(op->location, n, "/v2/subscriptions/%s", s->id);
    c->sub_creates++;
    op_result(op, 201, NULL, NULL);
}

static void apply_sub_delete(wctx_t *c, ngsi_op_t *op)
{
    if (!ngsi_subs_exists(c->ng->subs, op->sub_id, op->service)) {
        op_result(op, 404, "NotFound", "The requested subscription has not been found. Check id");
        return;
    }
    cl_status_t st = c->ng->store->ops->sub_del(c->ng->store, op->sub_id);
    if (st != CL_OK) {
        c->failed = st;
        op_result(op, 500, "InternalServerError", "database error");
        return;
    }
    op_result(op, 204, NULL, NULL);
}

/* ------------------------------------------------------------ the batch */

static void run_batch(ngsi_writer_t *w, ngsi_op_t *ops)
{
    cl_ngsi_t *ng = w->ng;
    wctx_t c = {.ng = ng, .now_ms = ngsi_now_ms()};
    size_t nops = 0, nents = 0;
    for (ngsi_op_t *op = ops; op != NULL; op = op->next) {
        nops++;
        nents += op->nents;
    }
    if (!map_init(&c, nents + 1))
        c.failed = CL_FAIL(CL_ERR_FULL);
    cl_status_t st = c.failed == CL_OK ? ng->store->ops->begin(ng->store) : c.failed;
    if (st != CL_OK)
        c.failed = st;
    /* every entity of the batch in one load */
    for (ngsi_op_t *op = ops; op != NULL && c.failed == CL_OK; op = op->next)
        if (op->kind == NGSI_OP_ENTITIES)
            for (size_t i = 0; i < op->nents; i++)
                if (key_add(&c, op->service, op->path, op->ents[i].id) == NULL)
                    c.failed = CL_FAIL(CL_ERR_FULL);
    load_missing(&c);
    for (ngsi_op_t *op = ops; op != NULL && c.failed == CL_OK; op = op->next) {
        switch (op->kind) {
        case NGSI_OP_ENTITIES:
            apply_entities(&c, op);
            break;
        case NGSI_OP_SUB_CREATE:
            apply_sub_create(&c, op);
            break;
        case NGSI_OP_SUB_DELETE:
            apply_sub_delete(&c, op);
            break;
        }
    }
    flush(&c);
    int64_t now = ngsi_mono_ms();
    if (c.failed == CL_OK && now - w->last_sub_flush >= SUB_FLUSH_MS &&
        ngsi_subs_dirty(ng->subs)) {
        w->last_sub_flush = now;
        cl_status_t fs = ngsi_subs_flush(ng->subs, ng->store);
        if (fs != CL_OK)
            c.failed = fs;
    }
    if (c.failed == CL_OK)
        c.failed = ng->store->ops->commit(ng->store);
    else if (st == CL_OK)
        ng->store->ops->rollback(ng->store);
    NGSI_INC(ng, commits);
    NGSI_ADD(ng, commit_ops, nops);
    if (c.failed != CL_OK) {
        NGSI_INC(ng, commit_failures);
        ngsi_log(ng, CL_LOG_ERROR, "msg=\"ngsi commit failed: batch answered 500\" requests=%zu "
                                   "status=%s",
                 nops, cl_status_str(c.failed));
        ngsi_notif_free_list(c.pending);
        c.pending = NULL;
    } else {
        for (ngsi_op_t *op = ops; op != NULL; op = op->next) {
            if (op->kind == NGSI_OP_SUB_CREATE && op->status == 201) {
                ngsi_subs_add(ng->subs, op->sub);
                op->sub = NULL;
                NGSI_INC(ng, subscriptions_created);
            } else if (op->kind == NGSI_OP_SUB_DELETE && op->status == 204) {
                (void)ngsi_subs_remove(ng->subs, op->sub_id, op->service);
                NGSI_INC(ng, subscriptions_deleted);
            }
        }
        ngsi_subs_dispatch(ng->subs, c.pending);
        c.pending = NULL;
    }
    map_drop(&c);
    free(c.bucket);
    free(c.keys);
    free(c.writes);
    /* answers leave only now: committed (or failed as a whole) */
    for (ngsi_op_t *op = ops, *next; op != NULL; op = next) {
        next = op->next;
        op->next = NULL;
        if (c.failed != CL_OK) {
            free(op->location);
            op->location = NULL;
            op_result(op, 500, "InternalServerError", "database error: not stored");
        }
        op->done(op, op->done_ctx);
    }
}

static void *writer_main(void *arg)
{
    ngsi_writer_t *w = arg;
    cl_ngsi_t *ng = w->ng;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += 1;
            int rc = pthread_cond_timedwait(&w->cv, &w->mu, &ts);
            if (rc == ETIMEDOUT && w->head == NULL) {
                /* idle: persist the notification counters now and then */
                pthread_mutex_unlock(&w->mu);
                int64_t now = ngsi_mono_ms();
                if (now - w->last_sub_flush >= SUB_FLUSH_MS && ngsi_subs_dirty(ng->subs)) {
                    w->last_sub_flush = now;
                    if (ng->store->ops->begin(ng->store) == CL_OK) {
                        if (ngsi_subs_flush(ng->subs, ng->store) == CL_OK)
                            (void)ng->store->ops->commit(ng->store);
                        else
                            ng->store->ops->rollback(ng->store);
                    }
                }
                pthread_mutex_lock(&w->mu);
            }
        }
        if (w->head == NULL && w->stopping) {
            w->closed = true;
            break;
        }
        ngsi_op_t *batch = w->head, *last = w->head;
        size_t n = 1;
        while (last->next != NULL && n < ng->cfg.batch_ops) {
            last = last->next;
            n++;
        }
        w->head = last->next;
        if (w->head == NULL)
            w->tail = NULL;
        last->next = NULL;
        w->queued -= n;
        pthread_mutex_unlock(&w->mu);
        run_batch(w, batch);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    /* the last counters */
    if (ngsi_subs_dirty(ng->subs) && ng->store->ops->begin(ng->store) == CL_OK) {
        if (ngsi_subs_flush(ng->subs, ng->store) == CL_OK)
            (void)ng->store->ops->commit(ng->store);
        else
            ng->store->ops->rollback(ng->store);
    }
    return NULL;
}

bool ngsi_writer_submit(ngsi_writer_t *w, ngsi_op_t *op, void (*before)(void *ctx), void *ctx)
{
    pthread_mutex_lock(&w->mu);
    if (w->stopping || w->closed) {
        pthread_mutex_unlock(&w->mu);
        return false;
    }
    if (before != NULL)
        before(ctx);
    op->next = NULL;
    if (w->tail != NULL)
        w->tail->next = op;
    else
        w->head = op;
    w->tail = op;
    w->queued++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return true;
}

cl_status_t ngsi_writer_start(cl_ngsi_t *ng, ngsi_writer_t **out)
{
    ngsi_writer_t *w = calloc(1, sizeof *w);
    if (w == NULL)
        return CL_FAIL(CL_ERR_FULL);
    w->ng = ng;
    w->last_sub_flush = ngsi_mono_ms();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return CL_FAIL(CL_ERR_STATE);
    }
    w->started = true;
    *out = w;
    return CL_OK;
}

void ngsi_writer_stop(ngsi_writer_t *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

void ngsi_op_clear(ngsi_op_t *op)
{
    ngsi_ents_free(op->ents, op->nents);
    op->ents = NULL;
    op->nents = 0;
    ngsi_sub_free(op->sub);
    op->sub = NULL;
    free(op->location);
    op->location = NULL;
}
