/*
 * ngsi_store_pg.c - the NGSI store on PostgreSQL (ngsi_store.h): tables
 * ngsi_schema, ngsi_entities, ngsi_subscriptions. UNTRUSTED HOST SIDE.
 *
 * What: libpq with parameters only (no value is ever part of SQL text). The
 * writer thread owns one connection; a batch is BEGIN, ONE query loading
 * every entity the batch touches, ONE statement per kind of change
 * (DELETE ... = ANY(array), UPDATE ... FROM json_to_recordset, INSERT ...
 * SELECT FROM json_to_recordset) and COMMIT (synchronous_commit = on): a
 * handful of round trips per batch whatever its size, which is what keeps
 * group commit fast over a network. Readers take connections from a small
 * pool; a regex-filtered scan runs in a REPEATABLE READ READ ONLY
 * transaction, streams (seq, id, type) in single-row mode (bounded memory)
 * and then fetches the documents of the page only.
 *
 * Text columns use COLLATE "C" so the path ranges of ngsi_store.c compare
 * bytewise. A lost connection is a failed batch (its clients get 500 and
 * retry) and the next batch reconnects. The conninfo may hold a password
 * and is never logged; errors log SQLSTATE and the primary message only.
 * One cloisterd writes a given database (no cross-node locking).
 */
#include "ngsi_store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "cloister/core.h"

#define MAX_DOC_READ (64u * 1024u * 1024u)

typedef struct pg_store {
    ngsi_store_t base;
    char *conninfo;
    PGconn *w;
    bool schema_ok;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    PGconn **idle;
    unsigned nidle, nconn, max;
} pg_store_t;

static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static cl_status_t res_fail(pg_store_t *s, PGconn *c, const char *what, PGresult *r)
{
    char msg[200];
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *prim = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    ngsi_store_clean_msg(msg, sizeof msg,
                         prim != NULL ? prim : (c != NULL ? PQerrorMessage(c) : "no connection"));
    ngsi_store_log(&s->base, CL_LOG_ERROR,
                   "msg=\"ngsi store %s failed\" backend=pg sqlstate=%s err=\"%s\"", what,
                   state != NULL ? state : "-", msg);
    PQclear(r);
    return CL_FAIL(CL_ERR_PERSIST);
}

static PGconn *connect_one(pg_store_t *s)
{
    PGconn *c = PQconnectdb(s->conninfo);
    char msg[200];
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        ngsi_store_clean_msg(msg, sizeof msg, c != NULL ? PQerrorMessage(c) : "out of memory");
        ngsi_store_log(&s->base, CL_LOG_ERROR, "msg=\"ngsi store connect failed\" backend=pg "
                                               "err=\"%s\"",
                       msg);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice_quiet, NULL);
    PGresult *r = PQexec(c, "SET synchronous_commit = on; SET client_min_messages = warning;");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        (void)res_fail(s, c, "session setup", r);
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

/* A command without result rows; false (logged) on failure. */
static bool cmd(pg_store_t *s, PGconn *c, const char *what, const char *sql, int n,
                const char *const *vals)
{
    PGresult *r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        (void)res_fail(s, c, what, r);
        return false;
    }
    PQclear(r);
    return true;
}

/* ------------------------------------------------------------ writer */

static void drop_writer(pg_store_t *s)
{
    PQfinish(s->w);
    s->w = NULL;
}

static cl_status_t pg_begin(ngsi_store_t *b)
{
    pg_store_t *s = (pg_store_t *)b;
    if (s->w != NULL && PQstatus(s->w) != CONNECTION_OK)
        drop_writer(s);
    if (s->w == NULL && (s->w = connect_one(s)) == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    if (!cmd(s, s->w, "begin", "BEGIN", 0, NULL)) {
        drop_writer(s);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    return CL_OK;
}

static cl_status_t pg_commit(ngsi_store_t *b)
{
    pg_store_t *s = (pg_store_t *)b;
    if (s->w == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    PGresult *r = PQexec(s->w, "COMMIT");
    /* a COMMIT of an aborted transaction answers ROLLBACK: not committed */
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        cl_status_t st = res_fail(s, s->w, "commit", r);
        if (PQstatus(s->w) != CONNECTION_OK)
            drop_writer(s);
        return st;
    }
    PQclear(r);
    return CL_OK;
}

static void pg_rollback(ngsi_store_t *b)
{
    pg_store_t *s = (pg_store_t *)b;
    if (s->w == NULL)
        return;
    PGresult *r = PQexec(s->w, "ROLLBACK");
    PQclear(r);
    if (PQstatus(s->w) != CONNECTION_OK)
        drop_writer(s);
}

static bool value_ok(const PGresult *r, int row, int col, size_t max)
{
    return !PQgetisnull(r, row, col) && (size_t)PQgetlength(r, row, col) <= max;
}

static cl_status_t pg_load(ngsi_store_t *b, const ngsi_key_t *keys, size_t n, ngsi_row_fn fn,
                           void *ctx)
{
    pg_store_t *s = (pg_store_t *)b;
    if (n == 0)
        return CL_OK;
    if (s->w == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    ngsi_buf_t j;
    nb_init(&j, (size_t)1 << 30);
    nb_putc(&j, '[');
    for (size_t i = 0; i < n; i++) {
        nb_printf(&j, "%s{\"n\":%zu,\"s\":", i ? "," : "", i);
        nb_json_str(&j, keys[i].service);
        nb_puts(&j, ",\"p\":");
        nb_json_str(&j, keys[i].path);
        nb_puts(&j, ",\"i\":");
        nb_json_str(&j, keys[i].id);
        nb_putc(&j, '}');
    }
    nb_putc(&j, ']');
    char *param = nb_take(&j, NULL);
    if (param == NULL)
        return CL_FAIL(CL_ERR_FULL);
    const char *vals[1] = {param};
    PGresult *r = PQexecParams(
        s->w,
        "SELECT e.seq, k.n, e.type, e.doc FROM json_to_recordset($1::json) AS k(n int, s text, "
        "p text, i text) JOIN ngsi_entities e ON e.service = k.s AND e.path = k.p AND e.id = k.i",
        1, NULL, vals, NULL, NULL, 0);
    free(param);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return res_fail(s, s->w, "load", r);
    cl_status_t st = CL_OK;
    for (int i = 0; i < PQntuples(r); i++) {
        long k = strtol(PQgetvalue(r, i, 1), NULL, 10);
        if (k < 0 || (size_t)k >= n || !value_ok(r, i, 2, NGSI_MAX_NAME) ||
            !value_ok(r, i, 3, MAX_DOC_READ)) {
            ngsi_store_log(b, CL_LOG_WARN, "msg=\"ngsi row ignored: corrupt\" backend=pg");
            continue;
        }
        ngsi_row_t row = {.seq = strtoll(PQgetvalue(r, i, 0), NULL, 10),
                          .service = keys[k].service,
                          .path = keys[k].path,
                          .id = keys[k].id,
                          .type = PQgetvalue(r, i, 2),
                          .doc = PQgetvalue(r, i, 3),
                          .doc_len = (size_t)PQgetlength(r, i, 3)};
        if (fn(ctx, &row) != 0)
            break;
    }
    PQclear(r);
    return st;
}

static cl_status_t pg_write(ngsi_store_t *b, const ngsi_write_t *w, size_t n)
{
    pg_store_t *s = (pg_store_t *)b;
    if (s->w == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    ngsi_buf_t del, upd, ins;
    nb_init(&del, (size_t)1 << 30);
    nb_init(&upd, (size_t)1 << 30);
    nb_init(&ins, (size_t)1 << 30);
    size_t nd = 0, nu = 0, ni = 0;
    nb_putc(&del, '{');
    nb_putc(&upd, '[');
    nb_putc(&ins, '[');
    for (size_t i = 0; i < n; i++) {
        switch (w[i].kind) {
        case NGSI_W_DELETE:
            nb_printf(&del, "%s%" PRId64, nd++ ? "," : "", w[i].seq);
            break;
        case NGSI_W_UPDATE:
            nb_printf(&upd, "%s{\"q\":%" PRId64 ",\"m\":%" PRId64 ",\"d\":", nu++ ? "," : "",
                      w[i].seq, w[i].now_ms);
            nb_json_str(&upd, w[i].doc);
            nb_putc(&upd, '}');
            break;
        case NGSI_W_INSERT:
            nb_printf(&ins, "%s{\"m\":%" PRId64 ",\"s\":", ni++ ? "," : "", w[i].now_ms);
            nb_json_str(&ins, w[i].service);
            nb_puts(&ins, ",\"p\":");
            nb_json_str(&ins, w[i].path);
            nb_puts(&ins, ",\"i\":");
            nb_json_str(&ins, w[i].id);
            nb_puts(&ins, ",\"t\":");
            nb_json_str(&ins, w[i].type);
            nb_puts(&ins, ",\"d\":");
            nb_json_str(&ins, w[i].doc);
            nb_putc(&ins, '}');
            break;
        }
    }
    nb_putc(&del, '}');
    nb_putc(&upd, ']');
    nb_putc(&ins, ']');
    char *pd = nb_take(&del, NULL), *pu = nb_take(&upd, NULL), *pi = nb_take(&ins, NULL);
    cl_status_t st = CL_OK;
    if (pd == NULL || pu == NULL || pi == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto done;
    }
    const char *v[1];
    v[0] = pd;
    if (nd > 0 && !cmd(s, s->w, "delete", "DELETE FROM ngsi_entities WHERE seq = ANY($1::bigint[])",
                       1, v)) {
        st = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    v[0] = pu;
    if (nu > 0 && !cmd(s, s->w, "update",
                       "UPDATE ngsi_entities AS e SET doc = x.d, modified = x.m FROM "
                       "json_to_recordset($1::json) AS x(q bigint, m bigint, d text) "
                       "WHERE e.seq = x.q",
                       1, v)) {
        st = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    v[0] = pi;
    if (ni > 0 &&
        !cmd(s, s->w, "insert",
             "INSERT INTO ngsi_entities(service, path, id, type, doc, created, modified) "
             "SELECT x.s, x.p, x.i, x.t, x.d, x.m, x.m FROM ROWS FROM (json_to_recordset($1::json) "
             "AS (m bigint, s text, p text, i text, t text, d text)) WITH ORDINALITY "
             "AS x(m, s, p, i, t, d, o) ORDER BY x.o",
             1, v)) {
        st = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
done:
    free(pd);
    free(pu);
    free(pi);
    if (st != CL_OK && s->w != NULL && PQstatus(s->w) != CONNECTION_OK)
        drop_writer(s);
    return st;
}

static cl_status_t pg_sub_put(ngsi_store_t *b, const char *id, const char *service,
                              const char *path, const char *doc, size_t doc_len)
{
    pg_store_t *s = (pg_store_t *)b;
    (void)doc_len;
    if (s->w == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    const char *v[4] = {id, service, path, doc};
    return cmd(s, s->w, "subscription write",
               "INSERT INTO ngsi_subscriptions(id, service, path, doc) VALUES ($1, $2, $3, $4) "
               "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc",
               4, v)
               ? CL_OK
               : CL_FAIL(CL_ERR_PERSIST);
}

static cl_status_t pg_sub_del(ngsi_store_t *b, const char *id)
{
    pg_store_t *s = (pg_store_t *)b;
    if (s->w == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    const char *v[1] = {id};
    return cmd(s, s->w, "subscription delete", "DELETE FROM ngsi_subscriptions WHERE id = $1", 1,
               v)
               ? CL_OK
               : CL_FAIL(CL_ERR_PERSIST);
}

static cl_status_t pg_sub_load_all(ngsi_store_t *b, ngsi_row_fn fn, void *ctx)
{
    pg_store_t *s = (pg_store_t *)b;
    if (s->w == NULL && (s->w = connect_one(s)) == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    PGresult *r = PQexec(s->w, "SELECT id, service, path, doc FROM ngsi_subscriptions ORDER BY seq");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return res_fail(s, s->w, "subscription load", r);
    for (int i = 0; i < PQntuples(r); i++) {
        if (!value_ok(r, i, 0, NGSI_MAX_NAME) || !value_ok(r, i, 1, NGSI_MAX_SERVICE) ||
            !value_ok(r, i, 2, NGSI_PATH_SIZE) || !value_ok(r, i, 3, MAX_DOC_READ)) {
            ngsi_store_log(b, CL_LOG_WARN, "msg=\"ngsi subscription row ignored: corrupt\" "
                                           "backend=pg");
            continue;
        }
        ngsi_row_t row = {.id = PQgetvalue(r, i, 0),
                          .service = PQgetvalue(r, i, 1),
                          .path = PQgetvalue(r, i, 2),
                          .doc = PQgetvalue(r, i, 3),
                          .doc_len = (size_t)PQgetlength(r, i, 3)};
        if (fn(ctx, &row) != 0)
            break;
    }
    PQclear(r);
    return CL_OK;
}

/* ------------------------------------------------------------ readers */

static PGconn *reader_get(pg_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->nidle == 0 && s->nconn >= s->max)
        pthread_cond_wait(&s->cv, &s->mu);
    if (s->nidle > 0) {
        PGconn *c = s->idle[--s->nidle];
        pthread_mutex_unlock(&s->mu);
        return c;
    }
    s->nconn++;
    pthread_mutex_unlock(&s->mu);
    PGconn *c = connect_one(s);
    if (c == NULL) {
        pthread_mutex_lock(&s->mu);
        s->nconn--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    return c;
}

static void reader_put(pg_store_t *s, PGconn *c)
{
    pthread_mutex_lock(&s->mu);
    if (c != NULL && PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_IDLE) {
        s->idle[s->nidle++] = c;
    } else {
        PQfinish(c);
        s->nconn--;
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static PGresult *run_q(PGconn *c, const ngsi_sql_t *q)
{
    return PQexecParams(c, q->sql.p, (int)q->np, NULL, q->params, NULL, NULL, 0);
}

static int emit_rows(pg_store_t *s, PGresult *r, const char *service, ngsi_row_fn fn, void *ctx)
{
    for (int i = 0; i < PQntuples(r); i++) {
        if (!value_ok(r, i, 1, NGSI_PATH_SIZE) || !value_ok(r, i, 2, NGSI_MAX_NAME) ||
            !value_ok(r, i, 3, NGSI_MAX_NAME) || !value_ok(r, i, 4, MAX_DOC_READ)) {
            ngsi_store_log(&s->base, CL_LOG_WARN, "msg=\"ngsi row ignored: corrupt\" backend=pg");
            continue;
        }
        ngsi_row_t row = {.seq = strtoll(PQgetvalue(r, i, 0), NULL, 10),
                          .service = service,
                          .path = PQgetvalue(r, i, 1),
                          .id = PQgetvalue(r, i, 2),
                          .type = PQgetvalue(r, i, 3),
                          .doc = PQgetvalue(r, i, 4),
                          .doc_len = (size_t)PQgetlength(r, i, 4)};
        int rc = fn(ctx, &row);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The regex-filtered scan: (seq, id, type) streamed, then the page's documents. */
static cl_status_t filtered(pg_store_t *s, PGconn *c, const ngsi_query_t *qq, ngsi_sql_t *q,
                            ngsi_row_fn fn, void *ctx, uint64_t *total)
{
    cl_status_t st = CL_OK;
    nb_puts(&q->sql, "SELECT seq, id, type FROM ngsi_entities");
    if (!ngsi_sql_where(q, qq))
        return CL_FAIL(CL_ERR_LIMIT);
    nb_puts(&q->sql, " ORDER BY seq");
    if (!cmd(s, c, "query", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL))
        return CL_FAIL(CL_ERR_PERSIST);
    if (!PQsendQueryParams(c, q->sql.p, (int)q->np, NULL, q->params, NULL, NULL, 0) ||
        !PQsetSingleRowMode(c)) {
        st = res_fail(s, c, "query", NULL);
        goto out;
    }
    ngsi_buf_t seqs;
    nb_init(&seqs, (size_t)64 << 20);
    nb_putc(&seqs, '{');
    uint64_t matched = 0;
    size_t picked = 0;
    bool stop = false, cancelled = false;
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
        ExecStatusType rs = PQresultStatus(r);
        if (rs == PGRES_SINGLE_TUPLE && !stop && !PQgetisnull(r, 0, 1) && !PQgetisnull(r, 0, 2)) {
            if (qq->filter(qq->filter_ctx, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2))) {
                matched++;
                if (matched > qq->offset && picked < qq->limit) {
                    nb_printf(&seqs, "%s%s", picked ? "," : "", PQgetvalue(r, 0, 0));
                    picked++;
                } else if (!qq->count && picked >= qq->limit) {
                    stop = true; /* the page is full and nobody wants the count */
                    PGcancel *cn = PQgetCancel(c);
                    char eb[64];
                    if (cn != NULL) {
                        cancelled = PQcancel(cn, eb, sizeof eb) == 1;
                        PQfreeCancel(cn);
                    }
                }
            }
        } else if (rs != PGRES_SINGLE_TUPLE && rs != PGRES_TUPLES_OK && !cancelled) {
            st = res_fail(s, c, "query", r);
            r = NULL;
        }
        PQclear(r);
    }
    nb_putc(&seqs, '}');
    char *arr = nb_take(&seqs, NULL);
    if (arr == NULL && st == CL_OK)
        st = CL_FAIL(CL_ERR_FULL);
    if (cancelled) { /* the aborted statement left the transaction failed: start a new one */
        (void)cmd(s, c, "query", "ROLLBACK", 0, NULL);
        if (st == CL_OK &&
            !cmd(s, c, "query", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL))
            st = CL_FAIL(CL_ERR_PERSIST);
    }
    if (st == CL_OK && picked > 0) {
        const char *v[1] = {arr};
        PGresult *d = PQexecParams(c,
                                   "SELECT seq, path, id, type, doc FROM ngsi_entities WHERE seq = "
                                   "ANY($1::bigint[]) ORDER BY seq",
                                   1, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(d) != PGRES_TUPLES_OK) {
            st = res_fail(s, c, "query", d);
        } else {
            (void)emit_rows(s, d, qq->service, fn, ctx);
            PQclear(d);
        }
    }
    free(arr);
    *total = matched;
out:
    (void)cmd(s, c, "query", "COMMIT", 0, NULL);
    return st;
}

static cl_status_t pg_query(ngsi_store_t *b, const ngsi_query_t *qq, ngsi_row_fn fn, void *ctx,
                            uint64_t *total)
{
    pg_store_t *s = (pg_store_t *)b;
    cl_status_t st = CL_OK;
    *total = 0;
    ngsi_sql_t *q = malloc(sizeof *q);
    if (q == NULL)
        return CL_FAIL(CL_ERR_FULL);
    ngsi_sql_init(q, '$');
    PGconn *c = reader_get(s);
    if (c == NULL) {
        st = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    if (qq->filter != NULL) {
        st = filtered(s, c, qq, q, fn, ctx, total);
        goto done;
    }
    if (qq->count) {
        nb_puts(&q->sql, "SELECT count(*) FROM ngsi_entities");
        if (!ngsi_sql_where(q, qq)) {
            st = CL_FAIL(CL_ERR_LIMIT);
            goto done;
        }
        PGresult *r = run_q(c, q);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            st = res_fail(s, c, "count", r);
            goto done;
        }
        long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        *total = n > 0 ? (uint64_t)n : 0;
        PQclear(r);
        ngsi_sql_free(q);
        ngsi_sql_init(q, '$');
    }
    if (qq->limit == 0)
        goto done;
    nb_puts(&q->sql, "SELECT seq, path, id, type, doc FROM ngsi_entities");
    if (!ngsi_sql_where(q, qq)) {
        st = CL_FAIL(CL_ERR_LIMIT);
        goto done;
    }
    nb_printf(&q->sql, " ORDER BY seq LIMIT %zu OFFSET %zu", qq->limit, qq->offset);
    PGresult *r = run_q(c, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        st = res_fail(s, c, "query", r);
        goto done;
    }
    (void)emit_rows(s, r, qq->service, fn, ctx);
    PQclear(r);
done:
    if (c != NULL)
        reader_put(s, c);
    ngsi_sql_free(q);
    free(q);
    return st;
}

/* ------------------------------------------------------------ open / close */

static void pg_close(ngsi_store_t *b)
{
    pg_store_t *s = (pg_store_t *)b;
    if (s == NULL)
        return;
    drop_writer(s);
    for (unsigned i = 0; i < s->nidle; i++)
        PQfinish(s->idle[i]);
    free(s->idle);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    if (s->conninfo != NULL) {
        memset(s->conninfo, 0, strlen(s->conninfo)); /* it may hold a password */
        free(s->conninfo);
    }
    free(s);
}

static const ngsi_store_ops_t pg_ops = {
    .name = "pg",
    .begin = pg_begin,
    .load = pg_load,
    .write = pg_write,
    .sub_put = pg_sub_put,
    .sub_del = pg_sub_del,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .sub_load_all = pg_sub_load_all,
    .query = pg_query,
    .close = pg_close,
};

static cl_status_t schema(pg_store_t *s)
{
    static const char *const ddl =
        "CREATE TABLE IF NOT EXISTS ngsi_schema(version INT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS ngsi_entities("
        " seq BIGSERIAL PRIMARY KEY, service TEXT COLLATE \"C\" NOT NULL,"
        " path TEXT COLLATE \"C\" NOT NULL, id TEXT COLLATE \"C\" NOT NULL,"
        " type TEXT COLLATE \"C\" NOT NULL, doc TEXT NOT NULL,"
        " created BIGINT NOT NULL, modified BIGINT NOT NULL,"
        " UNIQUE (service, path, id, type));"
        "CREATE INDEX IF NOT EXISTS ngsi_entities_by_seq ON ngsi_entities(service, seq);"
        "CREATE INDEX IF NOT EXISTS ngsi_entities_by_id ON ngsi_entities(service, id);"
        "CREATE TABLE IF NOT EXISTS ngsi_subscriptions("
        " seq BIGSERIAL PRIMARY KEY, id TEXT COLLATE \"C\" NOT NULL UNIQUE,"
        " service TEXT COLLATE \"C\" NOT NULL, path TEXT COLLATE \"C\" NOT NULL,"
        " doc TEXT NOT NULL);";
    PGconn *c = s->w;
    /* one creator at a time (several processes may open the same database) */
    if (!cmd(s, c, "schema", "BEGIN", 0, NULL))
        return CL_FAIL(CL_ERR_PERSIST);
    PGresult *r = PQexec(c, "SELECT pg_advisory_xact_lock(7363526447)");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        (void)res_fail(s, c, "schema", r);
        goto fail;
    }
    PQclear(r);
    r = PQexec(c, ddl);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        (void)res_fail(s, c, "schema", r);
        goto fail;
    }
    PQclear(r);
    r = PQexec(c, "SELECT coalesce(max(version), 0) FROM ngsi_schema");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        (void)res_fail(s, c, "schema", r);
        goto fail;
    }
    long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (v > NGSI_STORE_SCHEMA_VERSION) {
        ngsi_store_log(&s->base, CL_LOG_ERROR,
                       "msg=\"ngsi store schema is newer than this cloisterd: refusing to open\" "
                       "backend=pg found=%ld supported=%d",
                       v, NGSI_STORE_SCHEMA_VERSION);
        (void)cmd(s, c, "schema", "ROLLBACK", 0, NULL);
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    }
    if (v == 0 && !cmd(s, c, "schema", "INSERT INTO ngsi_schema(version) VALUES (1)", 0, NULL))
        goto fail;
    if (!cmd(s, c, "schema", "COMMIT", 0, NULL))
        goto fail;
    return CL_OK;
fail:
    PQclear(PQexec(c, "ROLLBACK"));
    return CL_FAIL(CL_ERR_PERSIST);
}

cl_status_t ngsi_store_pg_open(const char *conninfo, unsigned readers, cl_ngsi_log_fn log,
                               void *log_ctx, ngsi_store_t **out)
{
    if (conninfo == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    pg_store_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CL_FAIL(CL_ERR_FULL);
    s->base.ops = &pg_ops;
    s->base.log = log;
    s->base.log_ctx = log_ctx;
    s->max = readers ? readers : 4;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    size_t n = strlen(conninfo) + 1;
    s->conninfo = malloc(n);
    s->idle = calloc(s->max, sizeof *s->idle);
    cl_status_t st;
    if (s->conninfo == NULL || s->idle == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto fail;
    }
    memcpy(s->conninfo, conninfo, n);
    if ((s->w = connect_one(s)) == NULL) {
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    if ((st = schema(s)) != CL_OK)
        goto fail;
    *out = &s->base;
    return CL_OK;
fail:
    pg_close(&s->base);
    return st;
}
