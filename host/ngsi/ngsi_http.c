/*
 * ngsi_http.c - the NGSI-v2 facade's HTTP side and public API (ngsi.h).
 * UNTRUSTED HOST SIDE.
 *
 * What: libmicrohttpd with its own thread pool (epoll), independent of
 * cloisterd's event loop; routing of the Orion subset; the checks Orion
 * makes before a handler runs (Content-Length 411, size 413, media type
 * 415, Accept 406, Fiware-Service / Fiware-ServicePath, identifiers) and the
 * authorization hook; reads answered from the store on the server thread;
 * writes parsed and validated here, then queued to the group-commit writer
 * with the connection suspended until their batch is durable
 * (MHD_suspend_connection before the op is queued, resumed by the writer),
 * so a request never waits in a server thread and batches are as large as
 * the number of clients writing.
 *
 * Bounded memory: connections (max_connections, per-IP limit, idle timeout:
 * slow clients are dropped), the header pool per connection, the body
 * (Content-Length is required and checked before a byte is read), and one
 * budget (inflight_bytes) charged with every body and every parsed tree
 * until its request is answered - past it: 503 and Retry-After. Responses
 * are capped at max_response (a page that would not fit: 413).
 *
 * Logs: method, route name, status, duration; never ids, attribute values,
 * query strings, headers' values or the Authorization header.
 */
#include "ngsi_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cloister/core.h"
#include "net_addr.h"

#define HEADER_POOL (16u * 1024u) /* request line + headers (a JWT fits); MHD clears it per request */
/*
 * Connections per server thread. libmicrohttpd 0.9.75 drains epoll in rounds
 * of 128 events and, when a round comes back exactly full, waits again with
 * the full blocking timeout before serving what it got: with 128 ready
 * connections on one thread every client waits (reproduced with 128
 * keep-alive clients on one thread). A thread's epoll holds its connections,
 * the listen socket and the wake-up fd, so at most 125 connections per
 * thread can never fill a round.
 */
#define CONNS_PER_THREAD 125u
#define RETRY_AFTER "1"

typedef enum route {
    RT_NONE = 0,
    RT_VERSION,
    RT_V2,
    RT_ENTITIES,
    RT_ENTITY,
    RT_ATTRS,
    RT_ATTR,
    RT_OP_UPDATE,
    RT_SUBS,
    RT_SUB,
} route_t;

static const char *const route_names[] = {"other",  "version", "v2",        "entities",     "entity",
                                          "attrs",  "attr",    "op_update", "subscriptions", "subscription"};

static const char *const route_allow[] = {
    NULL,           "GET",        "GET",       "GET, POST",   "GET, DELETE",
    "GET, POST, PATCH, PUT", "GET, PUT, DELETE", "POST", "GET, POST", "GET, DELETE",
};

typedef enum method { M_GET, M_POST, M_PATCH, M_PUT, M_DELETE, M_OTHER } method_t;

typedef enum rstate { S_BODY = 0, S_WAIT, S_DONE, S_ANSWERED } rstate_t;

typedef struct nreq {
    cl_ngsi_t *ng;
    struct MHD_Connection *conn;
    route_t route;
    method_t method;
    const char *method_str;
    char *eid;   /* entity id from the URL */
    char *aname; /* attribute name or subscription id from the URL */
    char service[NGSI_MAX_SERVICE + 1];
    const char *path_hdr; /* Fiware-ServicePath (MHD's storage, valid during the request) */
    char correlator[NGSI_CORR_SIZE];
    char *body;
    size_t body_len, declared;
    size_t charged; /* budget held */
    bool waiting;   /* counted in ng->waiting */
    int state;      /* rstate_t, __atomic (the writer thread sets S_DONE) */
    ngsi_op_t op;
    int64_t t0;
} nreq_t;


/* ------------------------------------------------------------ logging, budget */

void ngsi_log(const cl_ngsi_t *ng, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    if (ng->cfg.log == NULL || (level >= CL_LOG_DEBUG && !ng->cfg.log_debug))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    ng->cfg.log(ng->cfg.log_ctx, level, line);
}

bool ngsi_budget_take(cl_ngsi_t *ng, size_t n)
{
    size_t cur = __atomic_load_n(&ng->budget_used, __ATOMIC_RELAXED);
    do {
        if (n > ng->cfg.inflight_bytes || cur > ng->cfg.inflight_bytes - n)
            return false;
    } while (!__atomic_compare_exchange_n(&ng->budget_used, &cur, cur + n, true, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
    return true;
}

void ngsi_budget_give(cl_ngsi_t *ng, size_t n)
{
    __atomic_fetch_sub(&ng->budget_used, n, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ responses */

typedef struct extra {
    const char *location;
    const char *total;
    const char *allow;
    const char *www_auth;
    const char *retry_after;
} extra_t;

/* Queues the answer; body (malloc'd) is handed to MHD. */
static enum MHD_Result reply(nreq_t *r, unsigned status, char *body, size_t len, const extra_t *x)
{
    cl_ngsi_t *ng = r->ng;
    struct MHD_Response *resp;
    if (body != NULL)
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    if (len > 0)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, "Fiware-Correlator", r->correlator);
    if (x != NULL) {
        if (x->location != NULL)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, x->location);
        if (x->total != NULL)
            MHD_add_response_header(resp, "Fiware-Total-Count", x->total);
        if (x->allow != NULL)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, x->allow);
        if (x->www_auth != NULL && x->www_auth[0] != '\0')
            MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, x->www_auth);
        if (x->retry_after != NULL)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, x->retry_after);
    }
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    __atomic_store_n(&r->state, S_ANSWERED, __ATOMIC_RELAXED);
    if (rc == MHD_YES) {
        if (status < 300)
            NGSI_INC(ng, responses_2xx);
        else if (status < 500)
            NGSI_INC(ng, responses_4xx);
        else
            NGSI_INC(ng, responses_5xx);
        NGSI_ADD(ng, tx_bytes, len);
    }
    ngsi_log(ng, status >= 500 ? CL_LOG_WARN : CL_LOG_DEBUG,
             "msg=\"ngsi request\" method=%s route=%s status=%u bytes=%zu ms=%" PRId64,
             r->method_str, route_names[r->route], status, len, ngsi_mono_ms() - r->t0);
    return rc;
}

static enum MHD_Result reply_err_x(nreq_t *r, const ngsi_err_t *e, const extra_t *x)
{
    ngsi_buf_t b;
    nb_init(&b, 4096);
    ngsi_render_error(&b, e);
    size_t len = 0;
    char *body = nb_take(&b, &len);
    return reply(r, e->status, body, body != NULL ? len : 0, x);
}

static enum MHD_Result reply_err(nreq_t *r, const ngsi_err_t *e)
{
    return reply_err_x(r, e, NULL);
}

static enum MHD_Result fail(nreq_t *r, unsigned status, const char *error, const char *desc)
{
    ngsi_err_t e;
    ngsi_err_set(&e, status, error, "%s", desc);
    return reply_err(r, &e);
}

static enum MHD_Result busy(nreq_t *r)
{
    ngsi_err_t e;
    NGSI_INC(r->ng, rejected_busy);
    ngsi_err_set(&e, 503, "ServiceUnavailable", "server busy: retry later");
    extra_t x = {.retry_after = RETRY_AFTER};
    return reply_err_x(r, &e, &x);
}

static enum MHD_Result reply_buf(nreq_t *r, unsigned status, ngsi_buf_t *b, const extra_t *x)
{
    if (b->failed) {
        bool too_big = b->p != NULL || b->len > 0;
        nb_free(b);
        if (too_big)
            NGSI_INC(r->ng, rejected_too_large);
        return fail(r, 413, "RequestEntityTooLarge",
                    "response too large: use a smaller limit or fewer attrs");
    }
    size_t len = 0;
    char *body = nb_take(b, &len);
    if (body == NULL)
        return fail(r, 500, "InternalServerError", "out of memory");
    return reply(r, status, body, len, x);
}

/* ------------------------------------------------------------ request parts */

static const char *hdr(nreq_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static const char *arg_cb(void *ctx, const char *key)
{
    nreq_t *r = ctx;
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* "/v2/entities/{id}/attrs/{name}" etc. -> route + URL parts. */
static route_t parse_route(nreq_t *r, const char *url)
{
    if (strcmp(url, "/version") == 0)
        return RT_VERSION;
    if (strcmp(url, "/v2") == 0 || strcmp(url, "/v2/") == 0)
        return RT_V2;
    if (strcmp(url, "/v2/op/update") == 0)
        return RT_OP_UPDATE;
    if (strcmp(url, "/v2/subscriptions") == 0)
        return RT_SUBS;
    if (strncmp(url, "/v2/subscriptions/", 18) == 0) {
        const char *id = url + 18;
        if (*id == '\0' || strchr(id, '/') != NULL)
            return RT_NONE;
        r->aname = dup_n(id, strlen(id));
        return r->aname != NULL ? RT_SUB : RT_NONE;
    }
    if (strcmp(url, "/v2/entities") == 0)
        return RT_ENTITIES;
    if (strncmp(url, "/v2/entities/", 13) != 0)
        return RT_NONE;
    const char *id = url + 13;
    const char *slash = strchr(id, '/');
    if (slash == NULL) {
        if (*id == '\0')
            return RT_NONE;
        r->eid = dup_n(id, strlen(id));
        return r->eid != NULL ? RT_ENTITY : RT_NONE;
    }
    if (slash == id || strncmp(slash, "/attrs", 6) != 0)
        return RT_NONE;
    r->eid = dup_n(id, (size_t)(slash - id));
    if (r->eid == NULL)
        return RT_NONE;
    const char *rest = slash + 6;
    if (*rest == '\0')
        return RT_ATTRS;
    if (*rest != '/' || rest[1] == '\0' || strchr(rest + 1, '/') != NULL)
        return RT_NONE;
    r->aname = dup_n(rest + 1, strlen(rest + 1));
    return r->aname != NULL ? RT_ATTR : RT_NONE;
}

static method_t parse_method(const char *m)
{
    if (strcmp(m, "GET") == 0)
        return M_GET;
    if (strcmp(m, "POST") == 0)
        return M_POST;
    if (strcmp(m, "PATCH") == 0)
        return M_PATCH;
    if (strcmp(m, "PUT") == 0)
        return M_PUT;
    if (strcmp(m, "DELETE") == 0)
        return M_DELETE;
    return M_OTHER;
}

static bool method_allowed(route_t rt, method_t m)
{
    switch (rt) {
    case RT_VERSION:
    case RT_V2:
        return m == M_GET;
    case RT_ENTITIES:
    case RT_SUBS:
        return m == M_GET || m == M_POST;
    case RT_ENTITY:
    case RT_SUB:
        return m == M_GET || m == M_DELETE;
    case RT_ATTRS:
        return m == M_GET || m == M_POST || m == M_PATCH || m == M_PUT;
    case RT_ATTR:
        return m == M_GET || m == M_PUT || m == M_DELETE;
    case RT_OP_UPDATE:
        return m == M_POST;
    default:
        return false;
    }
}

static bool media_json(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

static bool accept_ok(const char *acc)
{
    if (acc == NULL || *acc == '\0')
        return true;
    return strstr(acc, "application/json") != NULL || strstr(acc, "*/*") != NULL ||
           strstr(acc, "application/*") != NULL;
}

/* ------------------------------------------------------------ the first call */

static enum MHD_Result authorize(nreq_t *r, const char *url)
{
    cl_ngsi_t *ng = r->ng;
    pthread_mutex_lock(&ng->authz_mu);
    cl_ngsi_authz_fn fn = ng->authz;
    void *ctx = ng->authz_ctx;
    pthread_mutex_unlock(&ng->authz_mu);
    if (fn == NULL)
        return MHD_YES;
    cl_ngsi_authz_request_t q = {.method = r->method_str,
                                 .path = url,
                                 .service = r->service,
                                 .service_path = r->path_hdr,
                                 .authorization = hdr(r, MHD_HTTP_HEADER_AUTHORIZATION),
                                 .x_auth_token = hdr(r, "X-Auth-Token")};
    cl_ngsi_authz_result_t res;
    memset(&res, 0, sizeof res);
    if (fn(ctx, &q, &res))
        return MHD_YES;
    NGSI_INC(ng, rejected_auth);
    unsigned st = res.status >= 400 && res.status <= 599 ? res.status : 403;
    res.www_authenticate[sizeof res.www_authenticate - 1] = '\0';
    res.description[sizeof res.description - 1] = '\0';
    ngsi_err_t e;
    ngsi_err_set(&e, st, st == 401 ? "Unauthorized" : st == 403 ? "Forbidden" : "AccessDenied",
                 "%s", res.description[0] != '\0' ? res.description : "access denied");
    extra_t x = {.www_auth = res.www_authenticate};
    reply_err_x(r, &e, &x);
    return MHD_NO; /* "denied": the caller stops here (a response is queued) */
}

/* Runs once the headers are in. MHD_YES: go on (body); otherwise answered. */
static enum MHD_Result begin(nreq_t *r, const char *url, const char *method)
{
    cl_ngsi_t *ng = r->ng;
    ngsi_err_t e;
    r->method_str = method;
    r->method = parse_method(method);
    ngsi_correlator(hdr(r, "Fiware-Correlator"), r->correlator);
    r->route = parse_route(r, url);
    if (r->route == RT_NONE)
        return fail(r, 400, "BadRequest", "service not found");
    if (!method_allowed(r->route, r->method)) {
        ngsi_err_set(&e, 405, "MethodNotAllowed", "method not allowed for this resource");
        extra_t x = {.allow = route_allow[r->route]};
        return reply_err_x(r, &e, &x);
    }
    if (!ngsi_service_parse(hdr(r, "Fiware-Service"), r->service, &e))
        return reply_err(r, &e);
    r->path_hdr = hdr(r, "Fiware-ServicePath");
    if (r->path_hdr != NULL && strlen(r->path_hdr) > NGSI_MAX_QUERY_PATHS * NGSI_PATH_SIZE)
        return fail(r, 400, "BadRequest", "too long ServicePath");
    if (r->eid != NULL && !ngsi_name_ok(r->eid))
        return fail(r, 400, "BadRequest", strlen(r->eid) > NGSI_MAX_NAME
                                              ? "entity id length too long (max 256)"
                                              : "Invalid characters in URI param /entityId/");
    if (r->route == RT_ATTR && !ngsi_name_ok(r->aname))
        return fail(r, 400, "BadRequest", "Invalid characters in URI param /attrName/");
    if (authorize(r, url) != MHD_YES)
        return MHD_YES; /* denied and answered */
    if (!accept_ok(hdr(r, MHD_HTTP_HEADER_ACCEPT)))
        return fail(r, 406, "NotAcceptable", "acceptable MIME types: application/json");
    if (r->method == M_POST || r->method == M_PATCH || r->method == M_PUT) {
        const char *cl = hdr(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        char *end = NULL;
        errno = 0;
        unsigned long long n = cl != NULL ? strtoull(cl, &end, 10) : 0;
        if (cl == NULL || errno != 0 || end == cl || *end != '\0' || n == 0)
            return fail(r, 411, "ContentLengthRequired",
                        "Zero/No Content-Length in PUT/POST/PATCH request");
        if (n > ng->cfg.max_body) {
            NGSI_INC(ng, rejected_too_large);
            ngsi_err_set(&e, 413, "RequestEntityTooLarge",
                         "payload size: %llu, max size supported: %zu", n, ng->cfg.max_body);
            return reply_err(r, &e);
        }
        if (!media_json(hdr(r, MHD_HTTP_HEADER_CONTENT_TYPE)))
            return fail(r, 415, "UnsupportedMediaType",
                        "not supported content type: use application/json");
        if (!ngsi_budget_take(ng, (size_t)n + 1))
            return busy(r);
        r->charged = (size_t)n + 1;
        r->declared = (size_t)n;
        r->body = malloc(r->declared + 1);
        if (r->body == NULL)
            return fail(r, 500, "InternalServerError", "out of memory");
    }
    r->state = S_BODY;
    return MHD_YES;
}

/* ------------------------------------------------------------ reads */

typedef struct list_ctx {
    ngsi_buf_t *b;
    ngsi_render_t rd;
    size_t rows;
    bool bad_row;
    ngsi_row_t one; /* the single-entity routes: copied out */
    char *one_doc, *one_type;
    size_t one_len;
    nreq_t *r;
} list_ctx_t;

static bool regex_filter(void *ctx, const char *id, const char *type)
{
    const ngsi_list_q_t *q = ctx;
    if (q->has_idre && regexec(&q->idre, id, 0, NULL, 0) != 0)
        return false;
    if (q->has_typere && regexec(&q->typere, type, 0, NULL, 0) != 0)
        return false;
    return true;
}

static int list_row(void *ctx, const ngsi_row_t *row)
{
    list_ctx_t *c = ctx;
    size_t mark = c->b->len;
    if (c->rows > 0)
        nb_putc(c->b, ',');
    if (!ngsi_render_entity(c->b, row->id, row->type, row->doc, row->doc_len, &c->rd)) {
        c->b->len = mark; /* an unreadable row is skipped (logged once per query) */
        if (c->b->p != NULL)
            c->b->p[mark] = '\0';
        c->bad_row = true;
        return 0;
    }
    c->rows++;
    return c->b->failed ? 1 : 0;
}

static enum MHD_Result get_entities(nreq_t *r)
{
    cl_ngsi_t *ng = r->ng;
    ngsi_err_t e;
    ngsi_list_q_t q;
    ngsi_paths_t paths;
    if (!ngsi_list_q_parse(arg_cb, r, NGSI_Q_LIST, &q, &e) ||
        !ngsi_path_parse_query(r->path_hdr, &paths, &e)) {
        ngsi_list_q_free(&q);
        return reply_err(r, &e);
    }
    ngsi_buf_t b;
    nb_init(&b, ng->cfg.max_response);
    nb_putc(&b, '[');
    list_ctx_t c = {.b = &b, .rd = {.keyvalues = (q.options & NGSI_OPT_KEYVALUES) != 0,
                                    .with_id = true,
                                    .nattrs = q.nattrs,
                                    .attrs = q.attrs}};
    ngsi_query_t qq = {.service = r->service,
                       .paths = &paths,
                       .nids = q.nids,
                       .ids = q.ids,
                       .ntypes = q.ntypes,
                       .types = q.types,
                       .filter = (q.has_idre || q.has_typere) ? regex_filter : NULL,
                       .filter_ctx = &q,
                       .offset = q.offset,
                       .limit = q.limit,
                       .count = (q.options & NGSI_OPT_COUNT) != 0};
    uint64_t total = 0;
    NGSI_INC(ng, queries);
    cl_status_t st = ng->store->ops->query(ng->store, &qq, list_row, &c, &total);
    bool count = qq.count;
    ngsi_list_q_free(&q);
    if (c.bad_row)
        ngsi_log(ng, CL_LOG_WARN, "msg=\"ngsi stored entity unreadable: skipped\"");
    if (st != CL_OK) {
        nb_free(&b);
        return fail(r, 500, "InternalServerError", "database error");
    }
    nb_putc(&b, ']');
    char tot[24];
    snprintf(tot, sizeof tot, "%" PRIu64, total);
    extra_t x = {.total = count ? tot : NULL};
    return reply_buf(r, 200, &b, &x);
}

static int one_row(void *ctx, const ngsi_row_t *row)
{
    list_ctx_t *c = ctx;
    if (++c->rows > 1)
        return 1;
    c->one_doc = dup_n(row->doc, row->doc_len);
    c->one_type = dup_n(row->type, strlen(row->type));
    c->one_len = row->doc_len;
    return 0;
}

/* The entity of the URL (with ?type=): 0 found, else answered with 404/409/500. */
static int find_one(nreq_t *r, const ngsi_list_q_t *q, list_ctx_t *c, enum MHD_Result *rc)
{
    cl_ngsi_t *ng = r->ng;
    ngsi_err_t e;
    ngsi_paths_t paths;
    if (!ngsi_path_parse_query(r->path_hdr, &paths, &e)) {
        *rc = reply_err(r, &e);
        return -1;
    }
    const char *ids[1] = {r->eid};
    ngsi_query_t qq = {.service = r->service,
                       .paths = &paths,
                       .nids = 1,
                       .ids = ids,
                       .ntypes = q->ntypes,
                       .types = q->types,
                       .limit = 2};
    uint64_t total = 0;
    NGSI_INC(ng, queries);
    cl_status_t st = ng->store->ops->query(ng->store, &qq, one_row, c, &total);
    if (st != CL_OK) {
        *rc = fail(r, 500, "InternalServerError", "database error");
        return -1;
    }
    if (c->rows == 0) {
        *rc = fail(r, 404, "NotFound", "The requested entity has not been found. Check type and id");
        return -1;
    }
    if (c->rows > 1) {
        *rc = fail(r, 409, "TooManyResults", "More than one matching entity. Please refine your "
                                             "query");
        return -1;
    }
    if (c->one_doc == NULL || c->one_type == NULL) {
        *rc = fail(r, 500, "InternalServerError", "out of memory");
        return -1;
    }
    return 0;
}

static enum MHD_Result get_entity(nreq_t *r)
{
    ngsi_err_t e;
    ngsi_list_q_t q;
    if (!ngsi_list_q_parse(arg_cb, r, NGSI_Q_ONE, &q, &e)) {
        ngsi_list_q_free(&q);
        return reply_err(r, &e);
    }
    if (q.ntypes > 1) {
        ngsi_list_q_free(&q);
        return fail(r, 400, "BadRequest", "one type only for a single entity");
    }
    list_ctx_t c = {.r = r};
    enum MHD_Result rc = MHD_YES;
    if (find_one(r, &q, &c, &rc) != 0)
        goto done;
    ngsi_buf_t b;
    nb_init(&b, r->ng->cfg.max_response);
    if (r->route == RT_ATTR) {
        ngsi_err_t pe;
        cJSON *t = ngsi_json_parse(c.one_doc, c.one_len, CL_NGSI_DEFAULT_MAX_DEPTH * 2, NULL, &pe);
        const cJSON *a = t != NULL ? cJSON_GetObjectItemCaseSensitive(t, r->aname) : NULL;
        if (a == NULL) {
            cJSON_Delete(t);
            rc = fail(r, 404, "NotFound", "The entity does not have such an attribute");
            goto done;
        }
        char *txt = ngsi_json_print(a, NULL);
        cJSON_Delete(t);
        if (txt == NULL) {
            rc = fail(r, 500, "InternalServerError", "out of memory");
            goto done;
        }
        nb_puts(&b, txt);
        cJSON_free(txt);
        rc = reply_buf(r, 200, &b, NULL);
        goto done;
    }
    ngsi_render_t rd = {.keyvalues = (q.options & NGSI_OPT_KEYVALUES) != 0,
                        .with_id = r->route == RT_ENTITY,
                        .nattrs = q.nattrs,
                        .attrs = q.attrs};
    if (!ngsi_render_entity(&b, r->eid, c.one_type, c.one_doc, c.one_len, &rd)) {
        nb_free(&b);
        ngsi_log(r->ng, CL_LOG_WARN, "msg=\"ngsi stored entity unreadable\"");
        rc = fail(r, 500, "InternalServerError", "stored entity unreadable");
        goto done;
    }
    rc = reply_buf(r, 200, &b, NULL);
done:
    free(c.one_doc);
    free(c.one_type);
    ngsi_list_q_free(&q);
    return rc;
}

static enum MHD_Result get_version(nreq_t *r)
{
    cl_ngsi_t *ng = r->ng;
    int64_t up = (ngsi_mono_ms() - ng->start_ms) / 1000;
    ngsi_buf_t b;
    nb_init(&b, 4096);
    nb_printf(&b,
              "{\"orion\":{\"version\":\"%s\",\"uptime\":\"%" PRId64 " d, %" PRId64
              " h, %" PRId64 " m, %" PRId64 " s\",\"git_hash\":\"nogitversion\","
              "\"compile_time\":\"nodate\",\"compiled_by\":\"cloister\","
              "\"compiled_in\":\"cloisterd\",\"release_date\":\"nodate\",",
              NGSI_ORION_VERSION, up / 86400, up / 3600 % 24, up / 60 % 60, up % 60);
    nb_puts(&b, "\"machine\":");
    nb_json_str(&b, ng->machine);
    nb_puts(&b, ",\"doc\":\"https://fiware-orion.rtfd.io/\",\"libversions\":{\"microhttpd\":");
    nb_json_str(&b, MHD_get_version());
    nb_puts(&b, ",\"libcurl\":");
    nb_json_str(&b, curl_version_info(CURLVERSION_NOW)->version);
    nb_puts(&b, ",\"cjson\":");
    nb_json_str(&b, cJSON_Version());
    nb_puts(&b, "}},\"cloister\":{\"broker\":\"NGSI-v2 subset (docs/ngsi.md)\",\"store\":");
    nb_json_str(&b, ng->store->ops->name);
    nb_puts(&b, "}}");
    return reply_buf(r, 200, &b, NULL);
}

static enum MHD_Result get_v2(nreq_t *r)
{
    ngsi_buf_t b;
    nb_init(&b, 1024);
    nb_puts(&b, "{\"entities_url\":\"/v2/entities\",\"types_url\":\"/v2/types\","
                "\"subscriptions_url\":\"/v2/subscriptions\","
                "\"registrations_url\":\"/v2/registrations\"}");
    return reply_buf(r, 200, &b, NULL);
}

static bool sub_id_ok(const char *id)
{
    return strlen(id) == NGSI_SUB_ID_LEN && strspn(id, "0123456789abcdef") == NGSI_SUB_ID_LEN;
}

static enum MHD_Result get_subs(nreq_t *r)
{
    cl_ngsi_t *ng = r->ng;
    ngsi_err_t e;
    ngsi_buf_t b;
    nb_init(&b, ng->cfg.max_response);
    if (r->route == RT_SUB) {
        if (!sub_id_ok(r->aname))
            return fail(r, 400, "BadRequest", "Invalid subscription id");
        if (!ngsi_subs_render_one(ng->subs, r->aname, r->service, &b)) {
            nb_free(&b);
            return fail(r, 404, "NotFound", "The requested subscription has not been found. "
                                            "Check id");
        }
        return reply_buf(r, 200, &b, NULL);
    }
    ngsi_list_q_t q;
    ngsi_paths_t paths;
    if (!ngsi_list_q_parse(arg_cb, r, NGSI_Q_LIST, &q, &e) ||
        !ngsi_path_parse_query(r->path_hdr, &paths, &e)) {
        ngsi_list_q_free(&q);
        return reply_err(r, &e);
    }
    uint64_t total = 0;
    ngsi_subs_render_list(ng->subs, r->service, &paths, q.offset, q.limit, &b, &total);
    bool count = (q.options & NGSI_OPT_COUNT) != 0;
    ngsi_list_q_free(&q);
    char tot[24];
    snprintf(tot, sizeof tot, "%" PRIu64, total);
    extra_t x = {.total = count ? tot : NULL};
    return reply_buf(r, 200, &b, &x);
}

/* ------------------------------------------------------------ writes */

static void suspend_cb(void *ctx)
{
    nreq_t *r = ctx;
    __atomic_store_n(&r->state, S_WAIT, __ATOMIC_RELAXED);
    MHD_suspend_connection(r->conn);
}

static void op_done(ngsi_op_t *op, void *ctx)
{
    nreq_t *r = ctx;
    (void)op;
    __atomic_store_n(&r->state, S_DONE, __ATOMIC_RELEASE);
    MHD_resume_connection(r->conn);
}

static enum MHD_Result submit(nreq_t *r)
{
    r->op.done = op_done;
    r->op.done_ctx = r;
    snprintf(r->op.correlator, sizeof r->op.correlator, "%s", r->correlator);
    snprintf(r->op.service, sizeof r->op.service, "%s", r->service);
    r->op.body_len = r->body_len;
    r->waiting = true;
    __atomic_fetch_add(&r->ng->waiting, 1, __ATOMIC_RELAXED);
    if (!ngsi_writer_submit(r->ng->writer, &r->op, suspend_cb, r)) {
        r->waiting = false;
        __atomic_fetch_sub(&r->ng->waiting, 1, __ATOMIC_RELAXED);
        return fail(r, 503, "ServiceUnavailable", "shutting down");
    }
    return MHD_YES;
}

static enum MHD_Result answer_op(nreq_t *r)
{
    ngsi_op_t *op = &r->op;
    enum MHD_Result rc;
    if (op->status >= 400) {
        rc = reply_err(r, &op->err);
    } else {
        extra_t x = {.location = op->status == 201 ? op->location : NULL};
        rc = reply(r, op->status, NULL, 0, &x);
    }
    if (r->waiting) {
        r->waiting = false;
        __atomic_fetch_sub(&r->ng->waiting, 1, __ATOMIC_RELAXED);
    }
    return rc;
}

/* The body as a tree, charged to the budget (the raw body is released). */
static cJSON *body_json(nreq_t *r, enum MHD_Result *rc)
{
    cl_ngsi_t *ng = r->ng;
    ngsi_err_t e;
    size_t cost = 0;
    cJSON *j = ngsi_json_parse(r->body, r->body_len, ng->lim.max_depth, &cost, &e);
    if (j == NULL) {
        NGSI_INC(ng, rejected_parse);
        *rc = reply_err(r, &e);
        return NULL;
    }
    free(r->body);
    r->body = NULL;
    ngsi_budget_give(ng, r->charged);
    r->charged = 0;
    if (!ngsi_budget_take(ng, cost)) {
        cJSON_Delete(j);
        *rc = busy(r);
        return NULL;
    }
    r->charged = cost;
    return j;
}

static bool url_type(nreq_t *r, char **out, ngsi_err_t *e)
{
    const char *t = arg_cb(r, "type");
    *out = NULL;
    if (t == NULL)
        return true;
    if (!ngsi_name_ok(t)) {
        ngsi_err_set(e, 400, "BadRequest", "Invalid characters in URI param /type/");
        return false;
    }
    *out = dup_n(t, strlen(t));
    if (*out == NULL) {
        ngsi_err_set(e, 500, "InternalServerError", "out of memory");
        return false;
    }
    return true;
}

static enum MHD_Result write_request(nreq_t *r)
{
    cl_ngsi_t *ng = r->ng;
    ngsi_err_t e;
    ngsi_op_t *op = &r->op;
    enum MHD_Result rc = MHD_YES;
    unsigned opts = 0, allowed = NGSI_OPT_KEYVALUES;
    switch (r->route) {
    case RT_ENTITIES:
        allowed |= NGSI_OPT_UPSERT;
        break;
    case RT_ATTRS:
        allowed |= NGSI_OPT_OVERRIDE_METADATA | (r->method == M_POST ? NGSI_OPT_APPEND : 0);
        break;
    case RT_ATTR:
    case RT_OP_UPDATE:
        allowed |= NGSI_OPT_OVERRIDE_METADATA;
        break;
    default:
        break;
    }
    if (!ngsi_options_parse(arg_cb(r, "options"), allowed, &opts, &e))
        return reply_err(r, &e);
    bool sub = r->route == RT_SUBS || r->route == RT_SUB;
    if (sub ? (r->route == RT_SUBS && !ngsi_path_parse_sub(r->path_hdr, op->path, &e))
            : !ngsi_path_parse_update(r->path_hdr, op->path, &e))
        return reply_err(r, &e);
    unsigned flags = (opts & NGSI_OPT_KEYVALUES) ? NGSI_F_KEYVALUES : 0;
    op->override_md = (opts & NGSI_OPT_OVERRIDE_METADATA) != 0;
    op->kind = NGSI_OP_ENTITIES;
    cJSON *j = NULL;
    if (r->body != NULL && (j = body_json(r, &rc)) == NULL)
        return rc;
    switch (r->route) {
    case RT_ENTITIES: {
        op->ents = calloc(1, sizeof *op->ents);
        if (op->ents == NULL)
            goto oom;
        op->nents = 1;
        if (!ngsi_entity_parse(j, flags, &ng->lim, &op->ents[0], &e))
            goto bad;
        op->verb = (opts & NGSI_OPT_UPSERT) ? NGSI_V_UPSERT : NGSI_V_CREATE;
        break;
    }
    case RT_ENTITY:   /* DELETE */
    case RT_ATTRS:    /* POST, PATCH, PUT */
    case RT_ATTR: {   /* PUT, DELETE */
        op->ents = calloc(1, sizeof *op->ents);
        if (op->ents == NULL)
            goto oom;
        op->nents = 1;
        ngsi_ent_in_t *en = &op->ents[0];
        if (r->route == RT_ATTRS) {
            if (!ngsi_entity_parse(j, flags | NGSI_F_ATTRS_ONLY, &ng->lim, en, &e))
                goto bad;
        } else if (r->route == RT_ATTR) {
            en->attrs = cJSON_CreateObject();
            if (en->attrs == NULL)
                goto oom;
            cJSON *a = r->method == M_PUT ? ngsi_attr_parse(r->aname, j, 0, &ng->lim, &e)
                                          : cJSON_CreateNull();
            if (a == NULL) {
                if (r->method == M_PUT)
                    goto bad;
                goto oom;
            }
            cJSON_AddItemToObject(en->attrs, r->aname, a);
            en->nattrs = 1;
            op->single_attr = true;
        }
        if (!url_type(r, &en->type, &e))
            goto bad;
        en->id = dup_n(r->eid, strlen(r->eid));
        if (en->id == NULL)
            goto oom;
        if (r->method == M_DELETE)
            op->verb = NGSI_V_DELETE;
        else if (r->route == RT_ATTR || r->method == M_PATCH)
            op->verb = NGSI_V_UPDATE;
        else if (r->method == M_PUT)
            op->verb = NGSI_V_REPLACE;
        else
            op->verb = (opts & NGSI_OPT_APPEND) ? NGSI_V_APPEND_STRICT : NGSI_V_APPEND;
        break;
    }
    case RT_OP_UPDATE: {
        ngsi_action_t act;
        if (!ngsi_batch_parse(j, flags, &ng->lim, &act, &op->ents, &op->nents, &e))
            goto bad;
        op->batch = true;
        switch (act) {
        case NGSI_ACT_APPEND:
            op->verb = NGSI_V_UPSERT;
            break;
        case NGSI_ACT_APPEND_STRICT:
            op->verb = NGSI_V_APPEND_STRICT_CREATE;
            break;
        case NGSI_ACT_UPDATE:
            op->verb = NGSI_V_UPDATE;
            break;
        case NGSI_ACT_DELETE:
            op->verb = NGSI_V_DELETE;
            break;
        default:
            op->verb = NGSI_V_REPLACE;
            break;
        }
        break;
    }
    case RT_SUBS: { /* POST */
        op->kind = NGSI_OP_SUB_CREATE;
        op->sub = ngsi_sub_parse(j, false, &ng->lim, &e);
        if (op->sub == NULL)
            goto bad;
        snprintf(op->sub->service, sizeof op->sub->service, "%s", r->service);
        snprintf(op->sub->path, sizeof op->sub->path, "%s", op->path);
        op->sub->created_ms = ngsi_now_ms();
        ngsi_random_hex(op->sub->id, NGSI_SUB_ID_LEN / 2);
        break;
    }
    case RT_SUB: /* DELETE */
        if (!sub_id_ok(r->aname)) {
            ngsi_err_set(&e, 400, "BadRequest", "Invalid subscription id");
            goto bad;
        }
        op->kind = NGSI_OP_SUB_DELETE;
        memcpy(op->sub_id, r->aname, NGSI_SUB_ID_LEN + 1);
        break;
    default:
        ngsi_err_set(&e, 400, "BadRequest", "service not found");
        goto bad;
    }
    cJSON_Delete(j);
    return submit(r);
oom:
    ngsi_err_set(&e, 500, "InternalServerError", "out of memory");
bad:
    cJSON_Delete(j);
    ngsi_op_clear(op);
    if (e.status == 400)
        NGSI_INC(ng, rejected_parse);
    if (e.status == 413)
        NGSI_INC(ng, rejected_too_large);
    return reply_err(r, &e);
}

/* ------------------------------------------------------------ dispatch */

static enum MHD_Result dispatch(nreq_t *r)
{
    if (r->method == M_GET) {
        switch (r->route) {
        case RT_VERSION:
            return get_version(r);
        case RT_V2:
            return get_v2(r);
        case RT_ENTITIES:
            return get_entities(r);
        case RT_ENTITY:
        case RT_ATTRS:
        case RT_ATTR:
            return get_entity(r);
        case RT_SUBS:
        case RT_SUB:
            return get_subs(r);
        default:
            return fail(r, 400, "BadRequest", "service not found");
        }
    }
    return write_request(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    cl_ngsi_t *ng = cls;
    nreq_t *r = *con_cls;
    (void)version;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL)
            return MHD_NO;
        r->ng = ng;
        r->conn = conn;
        r->t0 = ngsi_mono_ms();
        r->state = S_ANSWERED; /* until begin() says otherwise */
        *con_cls = r;
        __atomic_fetch_add(&ng->active, 1, __ATOMIC_RELAXED);
        NGSI_INC(ng, requests);
        return begin(r, url, method);
    }
    switch (__atomic_load_n(&r->state, __ATOMIC_ACQUIRE)) {
    case S_BODY:
        if (*upload_data_size > 0) {
            size_t n = *upload_data_size;
            NGSI_ADD(ng, rx_bytes, n);
            if (r->body != NULL && n <= r->declared - r->body_len) {
                memcpy(r->body + r->body_len, upload_data, n);
                r->body_len += n;
            } /* else: a body where none belongs (GET, DELETE): ignored */
            *upload_data_size = 0;
            return MHD_YES;
        }
        return dispatch(r);
    case S_DONE:
        return answer_op(r);
    default: /* answered already: whatever still comes is dropped */
        *upload_data_size = 0;
        return MHD_YES;
    }
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    cl_ngsi_t *ng = cls;
    nreq_t *r = *con_cls;
    (void)conn;
    (void)toe;
    if (r == NULL)
        return;
    *con_cls = NULL;
    if (r->waiting)
        __atomic_fetch_sub(&r->ng->waiting, 1, __ATOMIC_RELAXED);
    ngsi_op_clear(&r->op);
    free(r->body);
    free(r->eid);
    free(r->aname);
    if (r->charged > 0)
        ngsi_budget_give(ng, r->charged);
    __atomic_fetch_sub(&ng->active, 1, __ATOMIC_RELAXED);
    free(r);
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    cl_ngsi_t *ng = cls;
    char raw[256];
    vsnprintf(raw, sizeof raw, fmt, ap);
    for (char *p = raw; *p != '\0'; p++)
        if (*p == '"' || (unsigned char)*p < 0x20)
            *p = ' ';
    ngsi_log(ng, CL_LOG_DEBUG, "msg=\"ngsi libmicrohttpd\" detail=\"%s\"", raw);
}

/* ------------------------------------------------------------ public API */

static void apply_defaults(cl_ngsi_config_t *c)
{
#define DEF(f, v)                                                                                  \
    if (c->f == 0)                                                                                 \
    c->f = (v)
    DEF(threads, CL_NGSI_DEFAULT_THREADS);
    DEF(max_connections, CL_NGSI_DEFAULT_MAX_CONNECTIONS);
    DEF(timeout_s, CL_NGSI_DEFAULT_TIMEOUT_S);
    DEF(max_body, CL_NGSI_DEFAULT_MAX_BODY);
    DEF(max_depth, CL_NGSI_DEFAULT_MAX_DEPTH);
    DEF(max_attrs, CL_NGSI_DEFAULT_MAX_ATTRS);
    DEF(max_metadata, CL_NGSI_DEFAULT_MAX_METADATA);
    DEF(max_entity_bytes, CL_NGSI_DEFAULT_MAX_ENTITY_BYTES);
    DEF(max_batch_entities, CL_NGSI_DEFAULT_MAX_BATCH_ENTITIES);
    DEF(max_subscriptions, CL_NGSI_DEFAULT_MAX_SUBSCRIPTIONS);
    DEF(notify_queue, CL_NGSI_DEFAULT_NOTIFY_QUEUE);
    DEF(notify_queue_bytes, CL_NGSI_DEFAULT_NOTIFY_QUEUE_BYTES);
    DEF(notify_timeout_ms, CL_NGSI_DEFAULT_NOTIFY_TIMEOUT_MS);
    DEF(notify_parallel, CL_NGSI_DEFAULT_NOTIFY_PARALLEL);
    DEF(inflight_bytes, CL_NGSI_DEFAULT_INFLIGHT_BYTES);
    DEF(batch_ops, CL_NGSI_DEFAULT_BATCH_OPS);
    DEF(max_response, CL_NGSI_DEFAULT_MAX_RESPONSE);
#undef DEF
    if (c->threads <= 64 && c->max_connections > CONNS_PER_THREAD * c->threads)
        c->max_connections = CONNS_PER_THREAD * c->threads;
}

static cl_status_t start_http(cl_ngsi_t *ng)
{
    struct addrinfo *ai = NULL;
    cl_status_t st = cl_net_listen_addr(ng->cfg.listen, SOCK_STREAM, ng->cfg.bind_any, &ai);
    if (st != CL_OK) {
        ngsi_log(ng, CL_LOG_ERROR, "msg=\"ngsi: bad listen address (numeric host:port; loopback "
                                   "unless bind-any)\"");
        return st;
    }
    int one = 1;
    /* A blocking listen socket: libmicrohttpd 0.9.75 with one internal epoll thread stops
     * serving keep-alive connections when handed a non-blocking one (seen under load). */
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        ngsi_log(ng, CL_LOG_ERROR, "msg=\"ngsi: cannot listen\" errno=%d err=\"%s\"", errno,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &bl) == 0)
        ng->port = bound.ss_family == AF_INET
                       ? ntohs(((struct sockaddr_in *)(void *)&bound)->sin_port)
                       : ntohs(((struct sockaddr_in6 *)(void *)&bound)->sin6_port);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    freeaddrinfo(ai);
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, ng}, /* first: every message goes there */
        {MHD_OPTION_LISTEN_SOCKET, fd, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)ng->cfg.max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)ng->cfg.per_ip_limit, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)ng->cfg.timeout_s, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)HEADER_POOL, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, ng},
        {MHD_OPTION_THREAD_POOL_SIZE, (intptr_t)ng->cfg.threads, NULL}, /* only when > 1 */
        {MHD_OPTION_END, 0, NULL},
    };
    if (ng->cfg.threads <= 1)
        opts[7].option = MHD_OPTION_END;
    ng->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, ng, MHD_OPTION_ARRAY, opts,
                             MHD_OPTION_END);
    if (ng->d == NULL) {
        close(fd);
        ngsi_log(ng, CL_LOG_ERROR, "msg=\"ngsi: cannot start the HTTP server\"");
        return CL_FAIL(CL_ERR_STATE);
    }
    return CL_OK;
}

cl_status_t cl_ngsi_open(const cl_ngsi_config_t *cfg, cl_ngsi_t **out)
{
    if (cfg == NULL || out == NULL || cfg->listen == NULL ||
        (cfg->data_dir == NULL && cfg->pg_conninfo == NULL))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    cl_ngsi_t *ng = calloc(1, sizeof *ng);
    if (ng == NULL)
        return CL_FAIL(CL_ERR_FULL);
    ng->cfg = *cfg;
    apply_defaults(&ng->cfg);
    if (ng->cfg.max_depth < 4 || ng->cfg.max_depth > 256 || ng->cfg.threads > 64) {
        free(ng);
        return CL_FAIL(CL_ERR_INVALID_ARG);
    }
    ngsi_limits_default(&ng->lim);
    ng->lim.max_body = ng->cfg.max_body;
    ng->lim.max_depth = ng->cfg.max_depth;
    ng->lim.max_attrs = ng->cfg.max_attrs;
    ng->lim.max_metadata = ng->cfg.max_metadata;
    ng->lim.max_batch_entities = ng->cfg.max_batch_entities;
    ng->lim.max_entity_bytes = ng->cfg.max_entity_bytes;
    ng->start_ms = ngsi_mono_ms();
    pthread_mutex_init(&ng->authz_mu, NULL);
    struct utsname u;
    snprintf(ng->machine, sizeof ng->machine, "%.63s", uname(&u) == 0 ? u.machine : "unknown");
    cl_status_t st;
    unsigned readers = ng->cfg.threads + 2;
    if (ng->cfg.pg_conninfo != NULL)
        st = ngsi_store_pg_open(ng->cfg.pg_conninfo, readers, ng->cfg.log, ng->cfg.log_ctx,
                                &ng->store);
    else
        st = ngsi_store_sqlite_open(ng->cfg.data_dir, readers, ng->cfg.log, ng->cfg.log_ctx,
                                    &ng->store);
    if (st != CL_OK)
        goto fail;
    if ((st = ngsi_subs_open(ng, &ng->subs)) != CL_OK)
        goto fail;
    if ((st = ngsi_writer_start(ng, &ng->writer)) != CL_OK)
        goto fail;
    if ((st = start_http(ng)) != CL_OK)
        goto fail;
    ngsi_log(ng, CL_LOG_INFO,
             "msg=\"ngsi facade started\" port=%u store=%s threads=%u max_connections=%u "
             "subscriptions=%zu",
             (unsigned)ng->port, ng->store->ops->name, ng->cfg.threads, ng->cfg.max_connections,
             ngsi_subs_count(ng->subs));
    *out = ng;
    return CL_OK;
fail:
    ngsi_log(ng, CL_LOG_ERROR, "msg=\"ngsi facade not started\" status=%s", cl_status_str(st));
    cl_ngsi_close(ng);
    return st;
}

void cl_ngsi_close(cl_ngsi_t *ng)
{
    if (ng == NULL)
        return;
    if (ng->d != NULL) {
        MHD_socket ls = MHD_quiesce_daemon(ng->d); /* no new connections */
        if (ls != MHD_INVALID_SOCKET)
            close(ls);
    }
    ngsi_writer_stop(ng->writer); /* what is queued is committed and answered */
    ng->writer = NULL;
    if (ng->d != NULL) {
        /* let the server threads send those answers (bounded wait) */
        for (int i = 0; i < 500 && __atomic_load_n(&ng->waiting, __ATOMIC_RELAXED) > 0; i++) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        MHD_stop_daemon(ng->d);
        ng->d = NULL;
    }
    if (ng->subs != NULL) {
        ngsi_subs_close(ng->subs);
        ng->subs = NULL;
    }
    cl_ngsi_stats_t s;
    cl_ngsi_get_stats(ng, &s);
    ngsi_log(ng, CL_LOG_INFO,
             "msg=\"ngsi facade totals\" requests=%" PRIu64 " responses_2xx=%" PRIu64
             " responses_4xx=%" PRIu64 " responses_5xx=%" PRIu64 " commits=%" PRIu64
             " commit_ops=%" PRIu64 " commit_failures=%" PRIu64 " notifications_sent=%" PRIu64
             " notifications_failed=%" PRIu64 " notifications_dropped=%" PRIu64,
             s.requests, s.responses_2xx, s.responses_4xx, s.responses_5xx, s.commits,
             s.commit_ops, s.commit_failures, s.notifications_sent, s.notifications_failed,
             s.notifications_dropped_full + s.notifications_dropped_closing);
    if (ng->store != NULL)
        ng->store->ops->close(ng->store);
    pthread_mutex_destroy(&ng->authz_mu);
    free(ng);
}

uint16_t cl_ngsi_port(const cl_ngsi_t *ng)
{
    return ng != NULL ? ng->port : 0;
}

void cl_ngsi_set_authorizer(cl_ngsi_t *ng, cl_ngsi_authz_fn fn, void *ctx)
{
    if (ng == NULL)
        return;
    pthread_mutex_lock(&ng->authz_mu);
    ng->authz = fn;
    ng->authz_ctx = ctx;
    pthread_mutex_unlock(&ng->authz_mu);
}

void cl_ngsi_get_stats(const cl_ngsi_t *ng, cl_ngsi_stats_t *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (ng == NULL)
        return;
    const uint64_t *src = (const uint64_t *)(const void *)&ng->stats;
    uint64_t *dst = (uint64_t *)(void *)out;
    for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
    out->notify_queue_len = out->notifications_queued >= out->notifications_sent +
                                                              out->notifications_failed
                                ? out->notifications_queued - out->notifications_sent -
                                      out->notifications_failed
                                : 0;
}

size_t cl_ngsi_metrics_text(const cl_ngsi_t *ng, char *out, size_t size)
{
    if (out == NULL || size == 0)
        return 0;
    cl_ngsi_stats_t s;
    cl_ngsi_get_stats(ng, &s);
    int n = snprintf(
        out, size,
        "# HELP cloister_ngsi_requests_total NGSI-v2 facade requests.\n"
        "# TYPE cloister_ngsi_requests_total counter\n"
        "cloister_ngsi_requests_total %" PRIu64 "\n"
        "# HELP cloister_ngsi_responses_total NGSI-v2 facade responses by status class.\n"
        "# TYPE cloister_ngsi_responses_total counter\n"
        "cloister_ngsi_responses_total{class=\"2xx\"} %" PRIu64 "\n"
        "cloister_ngsi_responses_total{class=\"4xx\"} %" PRIu64 "\n"
        "cloister_ngsi_responses_total{class=\"5xx\"} %" PRIu64 "\n"
        "# HELP cloister_ngsi_bytes_total Body bytes received and sent.\n"
        "# TYPE cloister_ngsi_bytes_total counter\n"
        "cloister_ngsi_bytes_total{dir=\"rx\"} %" PRIu64 "\n"
        "cloister_ngsi_bytes_total{dir=\"tx\"} %" PRIu64 "\n"
        "# HELP cloister_ngsi_rejected_total Requests refused before a handler, by reason.\n"
        "# TYPE cloister_ngsi_rejected_total counter\n"
        "cloister_ngsi_rejected_total{reason=\"auth\"} %" PRIu64 "\n"
        "cloister_ngsi_rejected_total{reason=\"too_large\"} %" PRIu64 "\n"
        "cloister_ngsi_rejected_total{reason=\"busy\"} %" PRIu64 "\n"
        "cloister_ngsi_rejected_total{reason=\"bad_request\"} %" PRIu64 "\n"
        "# HELP cloister_ngsi_entities_total Entity changes committed.\n"
        "# TYPE cloister_ngsi_entities_total counter\n"
        "cloister_ngsi_entities_total{op=\"created\"} %" PRIu64 "\n"
        "cloister_ngsi_entities_total{op=\"updated\"} %" PRIu64 "\n"
        "cloister_ngsi_entities_total{op=\"deleted\"} %" PRIu64 "\n"
        "# HELP cloister_ngsi_commits_total Group commits (requests per commit = ops/commits).\n"
        "# TYPE cloister_ngsi_commits_total counter\n"
        "cloister_ngsi_commits_total %" PRIu64 "\n"
        "cloister_ngsi_commit_ops_total %" PRIu64 "\n"
        "cloister_ngsi_commit_failures_total %" PRIu64 "\n"
        "cloister_ngsi_queries_total %" PRIu64 "\n"
        "cloister_ngsi_subscriptions_total{op=\"created\"} %" PRIu64 "\n"
        "cloister_ngsi_subscriptions_total{op=\"deleted\"} %" PRIu64 "\n"
        "# HELP cloister_ngsi_notifications_total Notifications by outcome.\n"
        "# TYPE cloister_ngsi_notifications_total counter\n"
        "cloister_ngsi_notifications_total{result=\"queued\"} %" PRIu64 "\n"
        "cloister_ngsi_notifications_total{result=\"sent\"} %" PRIu64 "\n"
        "cloister_ngsi_notifications_total{result=\"failed\"} %" PRIu64 "\n"
        "cloister_ngsi_notifications_total{result=\"dropped_full\"} %" PRIu64 "\n"
        "cloister_ngsi_notifications_total{result=\"throttled\"} %" PRIu64 "\n"
        "cloister_ngsi_notifications_total{result=\"dropped_closing\"} %" PRIu64 "\n",
        s.requests, s.responses_2xx, s.responses_4xx, s.responses_5xx, s.rx_bytes, s.tx_bytes,
        s.rejected_auth, s.rejected_too_large, s.rejected_busy, s.rejected_parse,
        s.entities_created, s.entities_updated, s.entities_deleted, s.commits, s.commit_ops,
        s.commit_failures, s.queries, s.subscriptions_created, s.subscriptions_deleted,
        s.notifications_queued, s.notifications_sent, s.notifications_failed,
        s.notifications_dropped_full, s.notifications_throttled,
        s.notifications_dropped_closing);
    if (n < 0)
        return 0;
    return (size_t)n < size ? (size_t)n : size - 1;
}
