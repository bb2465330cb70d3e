/*
 * ngsi_store_sqlite.c - the default NGSI store: <data_dir>/ngsi.sqlite
 * (ngsi_store.h). UNTRUSTED HOST SIDE.
 *
 * What: one writer connection owned by the writer thread (BEGIN IMMEDIATE
 * ... COMMIT per batch: one WAL fsync for every request of the batch, with
 * synchronous=FULL, before any of them is answered) and a pool of reader
 * connections (query_only) for the server threads, which WAL lets read the
 * last committed state while the writer writes. Prepared statements
 * everywhere; a reader caches the statements of the query shapes it saw.
 *
 * Why SQLite: embedded, zero setup, crash safe, the same choice as the event
 * archive (archive_sqlite.c). Tables: schema_version(version),
 * ngsi_entities (seq INTEGER PRIMARY KEY = creation order, UNIQUE (service,
 * path, id, type), indexes (service, seq) and (service, id)) and
 * ngsi_subscriptions. A database with a newer schema is refused.
 *
 * The file is untrusted input too: NULL or oversized columns are skipped
 * with a log line, never passed on. Log lines carry SQLite's message, never
 * row contents.
 */
#include "ngsi_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "cloister/core.h"

#define READER_STMTS 16
#define MAX_DOC_READ (64u * 1024u * 1024u)

enum { W_LOAD, W_INSERT, W_UPDATE, W_DELETE, W_SUB_PUT, W_SUB_DEL, W_BEGIN, W_COMMIT, W_ROLLBACK, W_COUNT };

static const char *const wsql[W_COUNT] = {
    "SELECT seq, type, doc FROM ngsi_entities WHERE service = ?1 AND path = ?2 AND id = ?3",
    "INSERT INTO ngsi_entities(service, path, id, type, doc, created, modified) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    "UPDATE ngsi_entities SET doc = ?2, modified = ?3 WHERE seq = ?1",
    "DELETE FROM ngsi_entities WHERE seq = ?1",
    "INSERT INTO ngsi_subscriptions(id, service, path, doc) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
    "DELETE FROM ngsi_subscriptions WHERE id = ?1",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
};

typedef struct reader {
    sqlite3 *db;
    char *sql[READER_STMTS];
    sqlite3_stmt *st[READER_STMTS];
    unsigned next; /* round-robin replacement */
    struct reader *next_free;
} reader_t;

typedef struct sq_store {
    ngsi_store_t base;
    char *path;
    sqlite3 *wdb;
    sqlite3_stmt *w[W_COUNT];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    reader_t *free_readers;
    unsigned readers, max_readers;
} sq_store_t;

static cl_status_t fail_on(sq_store_t *s, sqlite3 *db, const char *what, int rc)
{
    char msg[200];
    ngsi_store_clean_msg(msg, sizeof msg, db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    ngsi_store_log(&s->base, CL_LOG_ERROR, "msg=\"ngsi store %s failed\" backend=sqlite rc=%d err=\"%s\"",
                   what, rc, msg);
    return CL_FAIL(CL_ERR_PERSIST);
}

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int setup_conn(sqlite3 *db, bool writer)
{
    int rc = sqlite3_busy_timeout(db, 5000);
    if (rc == SQLITE_OK && writer)
        rc = sqlite3_exec(db,
                          "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                          "PRAGMA cache_size=-16384; PRAGMA foreign_keys=OFF;",
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK && !writer)
        rc = sqlite3_exec(db, "PRAGMA query_only=1; PRAGMA cache_size=-8192;", NULL, NULL, NULL);
    return rc;
}

/* ------------------------------------------------------------ writer */

static cl_status_t sq_begin(ngsi_store_t *b)
{
    sq_store_t *s = (sq_store_t *)b;
    int rc = step_done(s->w[W_BEGIN]);
    return rc == SQLITE_OK ? CL_OK : fail_on(s, s->wdb, "begin", rc);
}

static cl_status_t sq_commit(ngsi_store_t *b)
{
    sq_store_t *s = (sq_store_t *)b;
    int rc = step_done(s->w[W_COMMIT]);
    if (rc != SQLITE_OK) {
        cl_status_t st = fail_on(s, s->wdb, "commit", rc);
        if (!sqlite3_get_autocommit(s->wdb))
            (void)step_done(s->w[W_ROLLBACK]);
        return st;
    }
    return CL_OK;
}

static void sq_rollback(ngsi_store_t *b)
{
    sq_store_t *s = (sq_store_t *)b;
    if (!sqlite3_get_autocommit(s->wdb)) {
        int rc = step_done(s->w[W_ROLLBACK]);
        if (rc != SQLITE_OK)
            (void)fail_on(s, s->wdb, "rollback", rc);
    }
}

static bool col_text(sqlite3_stmt *st, int i, const char **out, size_t *len, size_t max)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    int n = sqlite3_column_bytes(st, i);
    if (t == NULL || n < 0 || (size_t)n > max)
        return false;
    *out = (const char *)t;
    if (len != NULL)
        *len = (size_t)n;
    return true;
}

static cl_status_t sq_load(ngsi_store_t *b, const ngsi_key_t *keys, size_t n, ngsi_row_fn fn,
                           void *ctx)
{
    sq_store_t *s = (sq_store_t *)b;
    sqlite3_stmt *st = s->w[W_LOAD];
    for (size_t i = 0; i < n; i++) {
        int rc = sqlite3_bind_text(st, 1, keys[i].service, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, 2, keys[i].path, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(st, 3, keys[i].id, -1, SQLITE_STATIC);
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            ngsi_row_t row = {.seq = sqlite3_column_int64(st, 0),
                              .service = keys[i].service,
                              .path = keys[i].path,
                              .id = keys[i].id};
            if (!col_text(st, 1, &row.type, NULL, NGSI_MAX_NAME) ||
                !col_text(st, 2, &row.doc, &row.doc_len, MAX_DOC_READ)) {
                ngsi_store_log(b, CL_LOG_WARN, "msg=\"ngsi row ignored: corrupt\" backend=sqlite");
                rc = SQLITE_OK;
                continue;
            }
            if (fn(ctx, &row) != 0) {
                rc = SQLITE_DONE;
                break;
            }
            rc = SQLITE_OK;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_DONE && rc != SQLITE_OK)
            return fail_on(s, s->wdb, "load", rc);
    }
    return CL_OK;
}

static cl_status_t sq_write(ngsi_store_t *b, const ngsi_write_t *w, size_t n)
{
    sq_store_t *s = (sq_store_t *)b;
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st;
        int rc;
        switch (w[i].kind) {
        case NGSI_W_INSERT:
            st = s->w[W_INSERT];
            rc = sqlite3_bind_text(st, 1, w[i].service, -1, SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 2, w[i].path, -1, SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 3, w[i].id, -1, SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 4, w[i].type, -1, SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 5, w[i].doc, (int)w[i].doc_len, SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, 6, w[i].now_ms);
            break;
        case NGSI_W_UPDATE:
            st = s->w[W_UPDATE];
            rc = sqlite3_bind_int64(st, 1, w[i].seq);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 2, w[i].doc, (int)w[i].doc_len, SQLITE_STATIC);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, 3, w[i].now_ms);
            break;
        default:
            st = s->w[W_DELETE];
            rc = sqlite3_bind_int64(st, 1, w[i].seq);
            break;
        }
        if (rc == SQLITE_OK)
            rc = step_done(st);
        else {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
        }
        if (rc != SQLITE_OK)
            return fail_on(s, s->wdb, "write", rc);
    }
    return CL_OK;
}

static cl_status_t sq_sub_put(ngsi_store_t *b, const char *id, const char *service,
                              const char *path, const char *doc, size_t doc_len)
{
    sq_store_t *s = (sq_store_t *)b;
    sqlite3_stmt *st = s->w[W_SUB_PUT];
    int rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 3, path, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 4, doc, (int)doc_len, SQLITE_STATIC);
    rc = rc == SQLITE_OK ? step_done(st) : rc;
    if (rc != SQLITE_OK) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return fail_on(s, s->wdb, "subscription write", rc);
    }
    return CL_OK;
}

static cl_status_t sq_sub_del(ngsi_store_t *b, const char *id)
{
    sq_store_t *s = (sq_store_t *)b;
    sqlite3_stmt *st = s->w[W_SUB_DEL];
    int rc = sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = rc == SQLITE_OK ? step_done(st) : rc;
    return rc == SQLITE_OK ? CL_OK : fail_on(s, s->wdb, "subscription delete", rc);
}

static cl_status_t sq_sub_load_all(ngsi_store_t *b, ngsi_row_fn fn, void *ctx)
{
    sq_store_t *s = (sq_store_t *)b;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->wdb,
                                "SELECT id, service, path, doc FROM ngsi_subscriptions ORDER BY seq",
                                -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ngsi_row_t row = {0};
        if (!col_text(st, 0, &row.id, NULL, NGSI_MAX_NAME) ||
            !col_text(st, 1, &row.service, NULL, NGSI_MAX_SERVICE) ||
            !col_text(st, 2, &row.path, NULL, NGSI_PATH_SIZE) ||
            !col_text(st, 3, &row.doc, &row.doc_len, MAX_DOC_READ)) {
            ngsi_store_log(b, CL_LOG_WARN, "msg=\"ngsi subscription row ignored: corrupt\" "
                                           "backend=sqlite");
        } else if (fn(ctx, &row) != 0) {
            rc = SQLITE_DONE;
            break;
        }
        rc = SQLITE_OK;
    }
    cl_status_t out = rc == SQLITE_DONE ? CL_OK : fail_on(s, s->wdb, "subscription load", rc);
    sqlite3_finalize(st);
    return out;
}

/* ------------------------------------------------------------ readers */

static void reader_free(reader_t *r)
{
    if (r == NULL)
        return;
    for (unsigned i = 0; i < READER_STMTS; i++) {
        sqlite3_finalize(r->st[i]);
        free(r->sql[i]);
    }
    sqlite3_close(r->db);
    free(r);
}

static reader_t *reader_get(sq_store_t *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->free_readers == NULL && s->readers >= s->max_readers)
        pthread_cond_wait(&s->cv, &s->mu);
    reader_t *r = s->free_readers;
    if (r != NULL) {
        s->free_readers = r->next_free;
        pthread_mutex_unlock(&s->mu);
        return r;
    }
    s->readers++;
    pthread_mutex_unlock(&s->mu);
    r = calloc(1, sizeof *r);
    int rc = SQLITE_NOMEM;
    if (r != NULL) {
        rc = sqlite3_open_v2(s->path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc == SQLITE_OK)
            rc = setup_conn(r->db, false);
    }
    if (rc != SQLITE_OK) {
        (void)fail_on(s, r != NULL ? r->db : NULL, "reader open", rc);
        reader_free(r);
        pthread_mutex_lock(&s->mu);
        s->readers--;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return NULL;
    }
    return r;
}

static void reader_put(sq_store_t *s, reader_t *r)
{
    pthread_mutex_lock(&s->mu);
    r->next_free = s->free_readers;
    s->free_readers = r;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static sqlite3_stmt *reader_stmt(sq_store_t *s, reader_t *r, const char *sql)
{
    for (unsigned i = 0; i < READER_STMTS; i++)
        if (r->sql[i] != NULL && strcmp(r->sql[i], sql) == 0)
            return r->st[i];
    unsigned k = r->next++ % READER_STMTS;
    sqlite3_finalize(r->st[k]);
    free(r->sql[k]);
    r->st[k] = NULL;
    r->sql[k] = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
    if (rc != SQLITE_OK) {
        (void)fail_on(s, r->db, "query prepare", rc);
        return NULL;
    }
    size_t n = strlen(sql) + 1;
    r->sql[k] = malloc(n);
    if (r->sql[k] == NULL) {
        sqlite3_finalize(st);
        return NULL;
    }
    memcpy(r->sql[k], sql, n);
    r->st[k] = st;
    return st;
}

static int bind_all(sqlite3_stmt *st, const ngsi_sql_t *q)
{
    int rc = SQLITE_OK;
    for (size_t i = 0; i < q->np && rc == SQLITE_OK; i++)
        rc = sqlite3_bind_text(st, (int)i + 1, q->params[i], -1, SQLITE_STATIC);
    return rc;
}

static cl_status_t sq_query(ngsi_store_t *b, const ngsi_query_t *qq, ngsi_row_fn fn, void *ctx,
                            uint64_t *total)
{
    sq_store_t *s = (sq_store_t *)b;
    cl_status_t out = CL_OK;
    ngsi_sql_t *q = malloc(sizeof *q);
    if (q == NULL)
        return CL_FAIL(CL_ERR_FULL);
    ngsi_sql_init(q, '?');
    reader_t *r = reader_get(s);
    if (r == NULL) {
        ngsi_sql_free(q);
        free(q);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    *total = 0;
    bool paged_in_sql = qq->filter == NULL;
    /* the count first (without a filter SQL counts; with one the scan does) */
    if (qq->count && paged_in_sql) {
        nb_puts(&q->sql, "SELECT count(*) FROM ngsi_entities");
        sqlite3_stmt *st = NULL;
        int rc = ngsi_sql_where(q, qq) ? SQLITE_OK : SQLITE_TOOBIG;
        if (rc == SQLITE_OK && (st = reader_stmt(s, r, q->sql.p)) == NULL)
            rc = SQLITE_ERROR;
        if (rc == SQLITE_OK)
            rc = bind_all(st, q);
        if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t c = sqlite3_column_int64(st, 0);
            *total = c > 0 ? (uint64_t)c : 0;
            rc = SQLITE_OK;
        }
        if (st != NULL) {
            sqlite3_reset(st);
            sqlite3_clear_bindings(st);
        }
        if (rc != SQLITE_OK) {
            out = fail_on(s, r->db, "count", rc);
            goto done;
        }
        ngsi_sql_free(q);
        ngsi_sql_init(q, '?');
    }
    if (paged_in_sql && qq->limit == 0)
        goto done;
    nb_puts(&q->sql, "SELECT seq, path, id, type, doc FROM ngsi_entities");
    if (!ngsi_sql_where(q, qq)) {
        out = CL_FAIL(CL_ERR_LIMIT);
        goto done;
    }
    char lim[48];
    if (paged_in_sql) {
        snprintf(lim, sizeof lim, "%zu OFFSET %zu", qq->limit, qq->offset);
        nb_puts(&q->sql, " ORDER BY seq LIMIT ");
        nb_puts(&q->sql, lim);
    } else {
        nb_puts(&q->sql, " ORDER BY seq");
    }
    sqlite3_stmt *st = q->sql.failed ? NULL : reader_stmt(s, r, q->sql.p);
    int rc = st != NULL ? bind_all(st, q) : SQLITE_ERROR;
    uint64_t matched = 0;
    size_t emitted = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        ngsi_row_t row = {.seq = sqlite3_column_int64(st, 0), .service = qq->service};
        if (!col_text(st, 1, &row.path, NULL, NGSI_PATH_SIZE) ||
            !col_text(st, 2, &row.id, NULL, NGSI_MAX_NAME) ||
            !col_text(st, 3, &row.type, NULL, NGSI_MAX_NAME)) {
            ngsi_store_log(b, CL_LOG_WARN, "msg=\"ngsi row ignored: corrupt\" backend=sqlite");
            continue;
        }
        if (!paged_in_sql) {
            if (!qq->filter(qq->filter_ctx, row.id, row.type))
                continue;
            matched++;
            if (matched <= qq->offset || emitted >= qq->limit) {
                if (!qq->count && emitted >= qq->limit)
                    break;
                continue;
            }
        }
        if (!col_text(st, 4, &row.doc, &row.doc_len, MAX_DOC_READ)) {
            ngsi_store_log(b, CL_LOG_WARN, "msg=\"ngsi row ignored: corrupt\" backend=sqlite");
            continue;
        }
        emitted++;
        if (fn(ctx, &row) != 0) {
            if (!paged_in_sql && qq->count)
                continue; /* keep counting */
            break;
        }
    }
    if (st != NULL) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    if (rc != SQLITE_OK && rc != SQLITE_DONE)
        out = fail_on(s, r->db, "query", rc);
    if (!paged_in_sql)
        *total = matched;
done:
    reader_put(s, r);
    ngsi_sql_free(q);
    free(q);
    return out;
}

/* ------------------------------------------------------------ open / close */

static void sq_close(ngsi_store_t *b)
{
    sq_store_t *s = (sq_store_t *)b;
    if (s == NULL)
        return;
    for (int i = 0; i < W_COUNT; i++)
        sqlite3_finalize(s->w[i]);
    while (s->free_readers != NULL) {
        reader_t *r = s->free_readers;
        s->free_readers = r->next_free;
        reader_free(r);
    }
    if (s->wdb != NULL && sqlite3_close(s->wdb) != SQLITE_OK)
        (void)fail_on(s, s->wdb, "close", SQLITE_BUSY);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->path);
    free(s);
}

static const ngsi_store_ops_t sq_ops = {
    .name = "sqlite",
    .begin = sq_begin,
    .load = sq_load,
    .write = sq_write,
    .sub_put = sq_sub_put,
    .sub_del = sq_sub_del,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .sub_load_all = sq_sub_load_all,
    .query = sq_query,
    .close = sq_close,
};

static cl_status_t schema(sq_store_t *s)
{
    static const char *const ddl =
        "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS ngsi_entities("
        " seq INTEGER PRIMARY KEY, service TEXT NOT NULL, path TEXT NOT NULL,"
        " id TEXT NOT NULL, type TEXT NOT NULL, doc TEXT NOT NULL,"
        " created INTEGER NOT NULL, modified INTEGER NOT NULL,"
        " UNIQUE(service, path, id, type));"
        "CREATE INDEX IF NOT EXISTS ngsi_entities_by_seq ON ngsi_entities(service, seq);"
        "CREATE INDEX IF NOT EXISTS ngsi_entities_by_id ON ngsi_entities(service, id);"
        "CREATE TABLE IF NOT EXISTS ngsi_subscriptions("
        " seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, service TEXT NOT NULL,"
        " path TEXT NOT NULL, doc TEXT NOT NULL);";
    int rc = sqlite3_exec(s->wdb, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->wdb, ddl, NULL, NULL, NULL);
    sqlite3_stmt *st = NULL;
    int64_t version = -1;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->wdb, "SELECT max(version), count(*) FROM schema_version", -1,
                                &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        version = sqlite3_column_int64(st, 1) > 0 ? sqlite3_column_int64(st, 0) : 0;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK && version > NGSI_STORE_SCHEMA_VERSION) {
        ngsi_store_log(&s->base, CL_LOG_ERROR,
                       "msg=\"ngsi store schema is newer than this cloisterd: refusing to open\" "
                       "backend=sqlite found=%" PRId64 " supported=%d",
                       version, NGSI_STORE_SCHEMA_VERSION);
        sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    }
    if (rc == SQLITE_OK && version == 0)
        rc = sqlite3_exec(s->wdb, "INSERT INTO schema_version(version) VALUES (1)", NULL, NULL,
                          NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->wdb, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        cl_status_t st2 = fail_on(s, s->wdb, "schema", rc);
        sqlite3_exec(s->wdb, "ROLLBACK", NULL, NULL, NULL);
        return st2;
    }
    return CL_OK;
}

cl_status_t ngsi_store_sqlite_open(const char *dir, unsigned readers, cl_ngsi_log_fn log,
                                   void *log_ctx, ngsi_store_t **out)
{
    if (dir == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    sq_store_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CL_FAIL(CL_ERR_FULL);
    s->base.ops = &sq_ops;
    s->base.log = log;
    s->base.log_ctx = log_ctx;
    s->max_readers = readers ? readers : 4;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    size_t n = strlen(dir) + sizeof "/ngsi.sqlite";
    cl_status_t st = CL_OK;
    if ((s->path = malloc(n)) == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto fail;
    }
    snprintf(s->path, n, "%s/ngsi.sqlite", dir);
    /* 0600 ourselves (SQLite would use 0644 & ~umask); -wal and -shm inherit it */
    int fd = open(s->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        ngsi_store_log(&s->base, CL_LOG_ERROR, "msg=\"ngsi store open failed\" backend=sqlite "
                                               "errno=%d",
                       errno);
        if (fd >= 0)
            close(fd);
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    close(fd);
    int rc = sqlite3_open_v2(s->path, &s->wdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = setup_conn(s->wdb, true);
    if (rc != SQLITE_OK) {
        st = fail_on(s, s->wdb, "open", rc);
        goto fail;
    }
    if ((st = schema(s)) != CL_OK)
        goto fail;
    for (int i = 0; i < W_COUNT; i++) {
        rc = sqlite3_prepare_v3(s->wdb, wsql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->w[i], NULL);
        if (rc != SQLITE_OK) {
            st = fail_on(s, s->wdb, "prepare", rc);
            goto fail;
        }
    }
    *out = &s->base;
    return CL_OK;
fail:
    sq_close(&s->base);
    return st;
}
