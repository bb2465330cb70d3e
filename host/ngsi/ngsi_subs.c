/*
 * ngsi_subs.c - subscriptions of the NGSI facade: the registry, matching an
 * entity change against it, and the notifier thread (ngsi_server.h).
 * UNTRUSTED HOST SIDE.
 *
 * What: subscriptions live in memory (and in the store: created and deleted
 * by the writer inside its transaction; their counters written back by the
 * writer about once a second). The writer matches every change it applies
 * (same service, service path under the subscription's, id / idPattern and
 * type / typePattern, condition attrs among the changed attributes, active,
 * not expired) and renders the notification body while the entity is at
 * hand; after the commit the notifications pass throttling (Orion drops
 * those inside the guard period) and go into a bounded queue (count and
 * bytes; full = dropped and counted, like Orion's thread pool mode). One
 * thread sends them with libcurl's multi interface: up to notify_parallel
 * at once, each with a timeout, proxies from the environment ignored, no
 * redirects, http/https only - so a slow or dead receiver costs at most its
 * timeout and never blocks a request.
 *
 * Accounting as Orion: an HTTP answer of any code is a sent notification
 * (timesSent, lastSuccess, lastSuccessCode, failsCounter reset); a transport
 * failure (refused, timeout) sets lastFailure, lastFailureReason (libcurl's
 * message, never the URL) and counts in failsCounter; the status shows
 * "failed" while the last attempt failed.
 *
 * Bodies: {"subscriptionId": ..., "data": [entity]} in normalized or
 * keyValues form, with notification.attrs / exceptAttrs applied; headers
 * Content-Type, Ngsiv2-AttrsFormat, Fiware-Service (when not the default),
 * Fiware-ServicePath (the entity's) and Fiware-Correlator (the request's).
 * Neither bodies nor URLs are logged.
 */
#include "ngsi_server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cloister/core.h"

struct ngsi_notif {
    char sub_id[NGSI_SUB_ID_LEN + 1];
    char *url;
    char *body;
    size_t body_len;
    char service[NGSI_MAX_SERVICE + 1];
    char path[NGSI_PATH_SIZE];
    char correlator[NGSI_CORR_SIZE];
    bool keyvalues;
    unsigned timeout_ms;
    struct ngsi_notif *next;
    /* in flight */
    CURL *easy;
    struct curl_slist *headers;
    struct ngsi_notif *fnext; /* the in-flight list */
};

struct ngsi_subs {
    cl_ngsi_t *ng;
    pthread_mutex_t mu; /* the registry and every subscription's counters */
    ngsi_sub_t **v;
    size_t n, cap;
    size_t total; /* __atomic copy of n for the cheap check */
    bool dirty;   /* __atomic: some subscription's counters changed since the last flush */
    /* the notifier */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    ngsi_notif_t *qhead, *qtail;
    size_t qlen, qbytes;
    bool stopping;
    pthread_t thread;
    bool started;
    CURLM *multi;
    ngsi_notif_t *inflight; /* notifier thread only */
};

static pthread_mutex_t curl_init_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned curl_users;

static void notif_free(ngsi_notif_t *n)
{
    if (n == NULL)
        return;
    if (n->easy != NULL)
        curl_easy_cleanup(n->easy);
    curl_slist_free_all(n->headers);
    free(n->url);
    free(n->body);
    free(n);
}

void ngsi_notif_free_list(ngsi_notif_t *p)
{
    while (p != NULL) {
        ngsi_notif_t *next = p->next;
        notif_free(p);
        p = next;
    }
}

/* ------------------------------------------------------------ registry */

static ngsi_sub_t *find(ngsi_subs_t *s, const char *id, size_t *idx)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i]->id, id) == 0) {
            if (idx != NULL)
                *idx = i;
            return s->v[i];
        }
    return NULL;
}

size_t ngsi_subs_count(ngsi_subs_t *s)
{
    return __atomic_load_n(&s->total, __ATOMIC_RELAXED);
}

bool ngsi_subs_exists(ngsi_subs_t *s, const char *id, const char *service)
{
    pthread_mutex_lock(&s->mu);
    ngsi_sub_t *x = find(s, id, NULL);
    bool ok = x != NULL && (service == NULL || strcmp(x->service, service) == 0);
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static bool add_locked(ngsi_subs_t *s, ngsi_sub_t *sub)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        ngsi_sub_t **nv = realloc(s->v, cap * sizeof *nv);
        if (nv == NULL)
            return false;
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = sub;
    __atomic_store_n(&s->total, s->n, __ATOMIC_RELAXED);
    return true;
}

void ngsi_subs_add(ngsi_subs_t *s, ngsi_sub_t *sub)
{
    pthread_mutex_lock(&s->mu);
    bool ok = add_locked(s, sub);
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        ngsi_log(s->ng, CL_LOG_ERROR, "msg=\"ngsi subscription not registered: out of memory\"");
        ngsi_sub_free(sub);
    }
}

bool ngsi_subs_remove(ngsi_subs_t *s, const char *id, const char *service)
{
    size_t i;
    pthread_mutex_lock(&s->mu);
    ngsi_sub_t *x = find(s, id, &i);
    bool ok = x != NULL && strcmp(x->service, service) == 0;
    if (ok) {
        memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
        s->n--;
        __atomic_store_n(&s->total, s->n, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&s->mu);
    if (ok)
        ngsi_sub_free(x);
    return ok;
}

bool ngsi_subs_render_one(ngsi_subs_t *s, const char *id, const char *service, ngsi_buf_t *b)
{
    pthread_mutex_lock(&s->mu);
    ngsi_sub_t *x = find(s, id, NULL);
    bool ok = x != NULL && strcmp(x->service, service) == 0;
    if (ok)
        ngsi_sub_render(b, x, ngsi_now_ms());
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* A subscription's path without its "/#" (the scope it was created in). */
static void base_path(const char *p, char out[NGSI_PATH_SIZE])
{
    size_t n = strlen(p);
    if (n >= 2 && p[n - 1] == '#' && p[n - 2] == '/')
        n = n == 2 ? 1 : n - 2;
    memcpy(out, p, n);
    out[n] = '\0';
}

void ngsi_subs_render_list(ngsi_subs_t *s, const char *service, const ngsi_paths_t *paths,
                           size_t offset, size_t limit, ngsi_buf_t *b, uint64_t *total)
{
    uint64_t matched = 0;
    size_t emitted = 0;
    int64_t now = ngsi_now_ms();
    char bp[NGSI_PATH_SIZE];
    nb_putc(b, '[');
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        ngsi_sub_t *x = s->v[i];
        if (strcmp(x->service, service) != 0)
            continue;
        base_path(x->path, bp);
        if (!ngsi_paths_match(paths, bp))
            continue;
        matched++;
        if (matched <= offset || emitted >= limit)
            continue;
        if (emitted++ > 0)
            nb_putc(b, ',');
        ngsi_sub_render(b, x, now);
    }
    pthread_mutex_unlock(&s->mu);
    nb_putc(b, ']');
    *total = matched;
}

/* ------------------------------------------------------------ matching */

bool ngsi_subs_any(ngsi_subs_t *s, const char *service)
{
    if (ngsi_subs_count(s) == 0)
        return false;
    bool any = false;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n && !any; i++)
        any = strcmp(s->v[i]->service, service) == 0;
    pthread_mutex_unlock(&s->mu);
    return any;
}

static bool in_list(char *const *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], name) == 0)
            return true;
    return false;
}

static void render_notif_entity(ngsi_buf_t *b, const ngsi_sub_t *sub, const char *id,
                                const char *type, const cJSON *attrs)
{
    nb_puts(b, "{\"id\":");
    nb_json_str(b, id);
    nb_puts(b, ",\"type\":");
    nb_json_str(b, type);
    for (const cJSON *a = attrs != NULL ? attrs->child : NULL; a != NULL; a = a->next) {
        if (sub->nattrs > 0 && in_list(sub->attrs, sub->nattrs, a->string) == sub->except)
            continue;
        nb_putc(b, ',');
        nb_json_str(b, a->string);
        nb_putc(b, ':');
        const cJSON *v = sub->keyvalues ? cJSON_GetObjectItemCaseSensitive(a, "value") : a;
        char *txt = v != NULL ? ngsi_json_print(v, NULL) : NULL;
        if (txt == NULL) {
            nb_puts(b, "null");
            continue;
        }
        nb_puts(b, txt);
        cJSON_free(txt);
    }
    nb_putc(b, '}');
}

void ngsi_subs_match(ngsi_subs_t *s, const char *service, const char *path, const char *id,
                     const char *type, const cJSON *attrs, const char *const *changed,
                     size_t nchanged, const char *correlator, ngsi_notif_t **pending)
{
    int64_t now = ngsi_now_ms();
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        const ngsi_sub_t *sub = s->v[i];
        if (strcmp(sub->service, service) != 0 || sub->inactive ||
            (sub->expires_ms != 0 && now >= sub->expires_ms) || !ngsi_path_match(sub->path, path) ||
            !ngsi_sub_matches(sub, id, type))
            continue;
        if (sub->ncond > 0) {
            bool hit = false;
            for (size_t k = 0; k < nchanged && !hit; k++)
                hit = in_list(sub->cond, sub->ncond, changed[k]);
            if (!hit)
                continue;
        }
        ngsi_buf_t b;
        nb_init(&b, s->ng->cfg.notify_queue_bytes);
        nb_puts(&b, "{\"subscriptionId\":\"");
        nb_puts(&b, sub->id);
        nb_puts(&b, "\",\"data\":[");
        render_notif_entity(&b, sub, id, type, attrs);
        nb_puts(&b, "]}");
        size_t len = 0;
        ngsi_notif_t *n = calloc(1, sizeof *n);
        char *body = nb_take(&b, &len);
        size_t ul = strlen(sub->url) + 1;
        char *url = malloc(ul);
        if (n == NULL || body == NULL || url == NULL) {
            free(n);
            free(body);
            free(url);
            NGSI_INC(s->ng, notifications_dropped_full);
            continue;
        }
        memcpy(url, sub->url, ul);
        memcpy(n->sub_id, sub->id, sizeof n->sub_id);
        n->url = url;
        n->body = body;
        n->body_len = len;
        snprintf(n->service, sizeof n->service, "%s", service);
        snprintf(n->path, sizeof n->path, "%s", path);
        snprintf(n->correlator, sizeof n->correlator, "%s", correlator);
        n->keyvalues = sub->keyvalues;
        n->timeout_ms = sub->timeout_ms ? sub->timeout_ms : s->ng->cfg.notify_timeout_ms;
        n->next = *pending;
        *pending = n;
    }
    pthread_mutex_unlock(&s->mu);
}

void ngsi_subs_dispatch(ngsi_subs_t *s, ngsi_notif_t *pending)
{
    /* *pending was built newest first: restore the order of the changes */
    ngsi_notif_t *rev = NULL;
    while (pending != NULL) {
        ngsi_notif_t *next = pending->next;
        pending->next = rev;
        rev = pending;
        pending = next;
    }
    int64_t mono = ngsi_mono_ms();
    for (ngsi_notif_t *n = rev, *next; n != NULL; n = next) {
        next = n->next;
        n->next = NULL;
        bool keep = false;
        pthread_mutex_lock(&s->mu);
        ngsi_sub_t *sub = find(s, n->sub_id, NULL);
        if (sub != NULL) {
            if (sub->throttling_s > 0 && sub->sent_once &&
                mono - sub->last_sent_mono < sub->throttling_s * 1000) {
                NGSI_INC(s->ng, notifications_throttled);
            } else {
                sub->sent_once = true;
                sub->last_sent_mono = mono;
                keep = true;
            }
        }
        pthread_mutex_unlock(&s->mu);
        if (!keep) {
            notif_free(n);
            continue;
        }
        pthread_mutex_lock(&s->qmu);
        if (s->stopping || s->qlen >= s->ng->cfg.notify_queue ||
            s->qbytes + n->body_len > s->ng->cfg.notify_queue_bytes) {
            pthread_mutex_unlock(&s->qmu);
            NGSI_INC(s->ng, notifications_dropped_full);
            notif_free(n);
            continue;
        }
        if (s->qtail != NULL)
            s->qtail->next = n;
        else
            s->qhead = n;
        s->qtail = n;
        s->qlen++;
        s->qbytes += n->body_len;
        NGSI_INC(s->ng, notifications_queued);
        pthread_cond_signal(&s->qcv);
        pthread_mutex_unlock(&s->qmu);
        curl_multi_wakeup(s->multi);
    }
}

bool ngsi_subs_dirty(ngsi_subs_t *s)
{
    return __atomic_load_n(&s->dirty, __ATOMIC_RELAXED);
}

cl_status_t ngsi_subs_flush(ngsi_subs_t *s, ngsi_store_t *st)
{
    cl_status_t out = CL_OK;
    __atomic_store_n(&s->dirty, false, __ATOMIC_RELAXED); /* (set again by what follows) */
    for (;;) {
        char id[NGSI_SUB_ID_LEN + 1], service[NGSI_MAX_SERVICE + 1], path[NGSI_PATH_SIZE];
        ngsi_buf_t b;
        nb_init(&b, (size_t)4 << 20);
        bool found = false;
        pthread_mutex_lock(&s->mu);
        for (size_t i = 0; i < s->n; i++) {
            ngsi_sub_t *x = s->v[i];
            if (!x->dirty)
                continue;
            x->dirty = false;
            memcpy(id, x->id, sizeof id);
            memcpy(service, x->service, sizeof service);
            memcpy(path, x->path, sizeof path);
            ngsi_sub_render(&b, x, ngsi_now_ms());
            found = true;
            break;
        }
        pthread_mutex_unlock(&s->mu);
        if (!found)
            break;
        size_t len = 0;
        char *doc = nb_take(&b, &len);
        if (doc == NULL)
            continue;
        cl_status_t r = st->ops->sub_put(st, id, service, path, doc, len);
        free(doc);
        if (r != CL_OK) {
            out = r;
            break;
        }
    }
    return out;
}

/* ------------------------------------------------------------ the notifier */

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
    (void)p;
    (void)ctx;
    return size * n;
}

static bool start_transfer(ngsi_subs_t *s, ngsi_notif_t *n)
{
    char h[NGSI_PATH_SIZE + 64];
    CURL *e = curl_easy_init();
    if (e == NULL)
        return false;
    n->easy = e;
    struct curl_slist *l = NULL;
    l = curl_slist_append(l, "Content-Type: application/json");
    l = curl_slist_append(l, "Accept: application/json");
    l = curl_slist_append(l, "Expect:");
    snprintf(h, sizeof h, "Ngsiv2-AttrsFormat: %s", n->keyvalues ? "keyValues" : "normalized");
    l = curl_slist_append(l, h);
    if (n->service[0] != '\0') {
        snprintf(h, sizeof h, "Fiware-Service: %s", n->service);
        l = curl_slist_append(l, h);
    }
    snprintf(h, sizeof h, "Fiware-ServicePath: %s", n->path);
    l = curl_slist_append(l, h);
    snprintf(h, sizeof h, "Fiware-Correlator: %s", n->correlator);
    l = curl_slist_append(l, h);
    n->headers = l;
    if (l == NULL)
        return false;
    long timeout = (long)n->timeout_ms;
    curl_easy_setopt(e, CURLOPT_URL, n->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, n->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n->body_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_USERAGENT, "orion/" NGSI_ORION_VERSION " cloister-ngsi");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PRIVATE, n);
    if (curl_multi_add_handle(s->multi, e) != CURLM_OK)
        return false;
    n->fnext = s->inflight;
    s->inflight = n;
    return true;
}

static void unlink_inflight(ngsi_subs_t *s, ngsi_notif_t *n)
{
    for (ngsi_notif_t **p = &s->inflight; *p != NULL; p = &(*p)->fnext)
        if (*p == n) {
            *p = n->fnext;
            return;
        }
}

/* A finished transfer (or one aborted at close): out of the multi handle. */
static void retire(ngsi_subs_t *s, ngsi_notif_t *n)
{
    unlink_inflight(s, n);
    curl_multi_remove_handle(s->multi, n->easy);
    notif_free(n);
}

static void finish(ngsi_subs_t *s, ngsi_notif_t *n, CURLcode rc)
{
    long code = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(n->easy, CURLINFO_RESPONSE_CODE, &code);
    int64_t now = ngsi_now_ms();
    if (rc == CURLE_OK)
        NGSI_INC(s->ng, notifications_sent);
    else
        NGSI_INC(s->ng, notifications_failed);
    pthread_mutex_lock(&s->mu);
    ngsi_sub_t *sub = find(s, n->sub_id, NULL);
    if (sub != NULL) {
        sub->times_sent++;
        sub->last_notification = now;
        if (rc == CURLE_OK) {
            sub->last_success = now;
            sub->last_success_code = code;
            sub->fails = 0;
        } else {
            sub->last_failure = now;
            sub->fails++;
            snprintf(sub->last_failure_reason, sizeof sub->last_failure_reason, "%s",
                     curl_easy_strerror(rc));
        }
        sub->dirty = true;
        __atomic_store_n(&s->dirty, true, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&s->mu);
    ngsi_log(s->ng, CL_LOG_DEBUG, "msg=\"ngsi notification\" subscription=%s result=%s code=%ld",
             n->sub_id, rc == CURLE_OK ? "sent" : "failed", code);
}

static void *notifier_main(void *arg)
{
    ngsi_subs_t *s = arg;
    size_t active = 0;
    const size_t parallel = s->ng->cfg.notify_parallel;
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (!s->stopping && s->qhead == NULL && active == 0)
            pthread_cond_wait(&s->qcv, &s->qmu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->qmu);
            break;
        }
        ngsi_notif_t *take = NULL, **tail = &take;
        while (s->qhead != NULL && active < parallel) {
            ngsi_notif_t *n = s->qhead;
            s->qhead = n->next;
            if (s->qhead == NULL)
                s->qtail = NULL;
            s->qlen--;
            s->qbytes -= n->body_len;
            n->next = NULL;
            *tail = n;
            tail = &n->next;
            active++;
        }
        pthread_mutex_unlock(&s->qmu);
        for (ngsi_notif_t *n = take, *next; n != NULL; n = next) {
            next = n->next;
            n->next = NULL;
            if (!start_transfer(s, n)) {
                finish(s, n, CURLE_OUT_OF_MEMORY);
                notif_free(n);
                active--;
            }
        }
        int running = 0;
        curl_multi_perform(s->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE)
                continue;
            ngsi_notif_t *n = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&n);
            if (n == NULL)
                continue;
            finish(s, n, m->data.result);
            retire(s, n);
            active--;
        }
        if (active > 0)
            curl_multi_poll(s->multi, NULL, 0, 200, NULL);
    }
    /* stopping: close must not wait for slow receivers; what is in flight is dropped */
    while (s->inflight != NULL) {
        NGSI_INC(s->ng, notifications_dropped_closing);
        retire(s, s->inflight);
    }
    return NULL;
}

/* ------------------------------------------------------------ open / close */

static int load_cb(void *ctx, const ngsi_row_t *row)
{
    ngsi_subs_t *s = ctx;
    ngsi_err_t err;
    cJSON *j = ngsi_json_parse(row->doc, row->doc_len, CL_NGSI_DEFAULT_MAX_DEPTH, NULL, &err);
    ngsi_sub_t *sub = j != NULL ? ngsi_sub_parse(j, true, &s->ng->lim, &err) : NULL;
    cJSON_Delete(j);
    if (sub == NULL || strcmp(sub->id, row->id) != 0 || strlen(row->service) > NGSI_MAX_SERVICE ||
        strlen(row->path) >= NGSI_PATH_SIZE) {
        ngsi_log(s->ng, CL_LOG_WARN, "msg=\"ngsi stored subscription ignored: unreadable\"");
        ngsi_sub_free(sub);
        return 0;
    }
    snprintf(sub->service, sizeof sub->service, "%s", row->service);
    snprintf(sub->path, sizeof sub->path, "%s", row->path);
    pthread_mutex_lock(&s->mu);
    bool ok = add_locked(s, sub);
    pthread_mutex_unlock(&s->mu);
    if (!ok)
        ngsi_sub_free(sub);
    return ok ? 0 : 1;
}

cl_status_t ngsi_subs_open(cl_ngsi_t *ng, ngsi_subs_t **out)
{
    ngsi_subs_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CL_FAIL(CL_ERR_FULL);
    s->ng = ng;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    pthread_mutex_lock(&curl_init_mu);
    bool curl_ok = curl_users > 0 || curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (curl_ok)
        curl_users++;
    pthread_mutex_unlock(&curl_init_mu);
    cl_status_t st = CL_OK;
    if (!curl_ok) {
        ngsi_log(ng, CL_LOG_ERROR, "msg=\"ngsi: libcurl initialization failed\"");
        free(s);
        return CL_FAIL(CL_ERR_STATE);
    }
    s->multi = curl_multi_init();
    if (s->multi == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto fail;
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)ng->cfg.notify_parallel);
    if ((st = ng->store->ops->sub_load_all(ng->store, load_cb, s)) != CL_OK)
        goto fail;
    if (pthread_create(&s->thread, NULL, notifier_main, s) != 0) {
        st = CL_FAIL(CL_ERR_STATE);
        goto fail;
    }
    s->started = true;
    *out = s;
    return CL_OK;
fail:
    ngsi_subs_close(s);
    return st;
}

void ngsi_subs_close(ngsi_subs_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->qmu);
    s->stopping = true;
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    if (s->multi != NULL)
        curl_multi_wakeup(s->multi);
    if (s->started)
        pthread_join(s->thread, NULL);
    for (ngsi_notif_t *n = s->qhead, *next; n != NULL; n = next) {
        next = n->next;
        NGSI_INC(s->ng, notifications_dropped_closing);
        notif_free(n);
    }
    if (s->multi != NULL)
        curl_multi_cleanup(s->multi);
    for (size_t i = 0; i < s->n; i++)
        ngsi_sub_free(s->v[i]);
    free(s->v);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    pthread_mutex_lock(&curl_init_mu);
    if (--curl_users == 0)
        curl_global_cleanup();
    pthread_mutex_unlock(&curl_init_mu);
    free(s);
}
