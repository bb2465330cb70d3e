/*
 * storage_pg.c - PostgreSQL behind cl_host_ops_t (storage.h): the sealed log,
 * the sealed snapshot and the encrypted archive. UNTRUSTED HOST SIDE.
 *
 * What: libpq, parameterized queries with binary parameters and results
 * (PQexecParams; no data is ever concatenated into SQL), two connections per
 * cl_pg_t made lazily - one for the sealed log and snapshot, where every
 * call commits before it returns (synchronous_commit=on, so durable), and
 * one for the archive, where group commit keeps the rows of a handle()
 * batch in one open transaction (BEGIN on the first put, each put in a
 * SAVEPOINT) that cl_pg_sync commits before the daemon answers. Two
 * connections because a log append must be durable on its own, never wait
 * for the batch's commit.
 *
 * Why: scale and operations (backups, replication) beyond one machine's
 * files. Same contract as the file and SQLite backends: sizes read back are
 * checked (CL_CORE_MAX_RECORD / CL_CORE_MAX_SNAPSHOT) before any copy, a lost
 * connection is CL_ERR_PERSIST plus a log line, and the next call
 * reconnects. An archive batch whose connection died is lost and its sync
 * fails, so none of its responses is sent. The conninfo may carry a password
 * and is never logged; error lines carry SQLSTATE and the primary message
 * only (never the DETAIL, which can quote key values).
 */
#include "storage.h"
#include "storage_common.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#define SCHEMA_VERSION 1
#define SCAN_CHUNK 256
#define OID_INT8 20
#define OID_BYTEA 17

enum { CONN_LOG = 0, CONN_ARCH = 1 };

struct cl_pg {
    cl_host_ops_t ops;
    char *conninfo;
    PGconn *conn[2];
    bool schema_ok;
    bool in_txn; /* archive batch open on conn[CONN_ARCH] */
    bool lost;   /* the open batch was lost before its sync */
    cl_host_log_fn log;
    void *log_ctx;
};

/* ------------------------------------------------------------ helpers */

static void be64(uint8_t p[8], uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void plog(const cl_pg_t *p, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->log(p->log_ctx, level, line);
}

static void clean_msg(char *out, size_t size, const char *msg)
{
    size_t o = 0;
    for (size_t i = 0; msg != NULL && msg[i] != '\0' && o + 1 < size; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c == '\n' && msg[i + 1] == '\0')
            break;
        out[o++] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? ' ' : (char)c;
    }
    out[o] = '\0';
}

static void notice_quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like */
}

/* The open archive batch is gone (connection lost, rollback): its sync must fail. */
static void lose_batch(cl_pg_t *p)
{
    if (p->in_txn)
        p->lost = true;
    p->in_txn = false;
}

static void drop_conn(cl_pg_t *p, int which)
{
    if (p->conn[which] != NULL)
        PQfinish(p->conn[which]);
    p->conn[which] = NULL;
    if (which == CONN_ARCH)
        lose_batch(p);
}

/*
 * Logs a failed query (SQLSTATE + primary message) and maps it to
 * CL_ERR_PERSIST; a dead connection is dropped so the next call reconnects.
 * Frees res.
 */
static cl_status_t q_fail(cl_pg_t *p, int which, const char *what, PGresult *res)
{
    char msg[200];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *prim = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    clean_msg(msg, sizeof msg,
              prim ? prim : (p->conn[which] ? PQerrorMessage(p->conn[which]) : "no connection"));
    plog(p, CL_LOG_ERROR, "msg=\"%s failed\" backend=pg sqlstate=%s err=\"%s\"", what,
         state ? state : "-", msg);
    PQclear(res);
    if (p->conn[which] == NULL || PQstatus(p->conn[which]) != CONNECTION_OK)
        drop_conn(p, which);
    return CL_FAIL(CL_ERR_PERSIST);
}

static cl_status_t init_schema(cl_pg_t *p, PGconn *c);

/* Returns the connection for `which`, (re)connecting when needed; NULL logged. */
static PGconn *conn_get(cl_pg_t *p, int which)
{
    if (p->conn[which] != NULL && PQstatus(p->conn[which]) == CONNECTION_OK)
        return p->conn[which];
    bool reconnect = p->conn[which] != NULL;
    drop_conn(p, which);
    PGconn *c = PQconnectdb(p->conninfo);
    char msg[200];
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        clean_msg(msg, sizeof msg, c ? PQerrorMessage(c) : "out of memory");
        plog(p, CL_LOG_ERROR, "msg=\"postgres connect failed\" backend=pg err=\"%s\"", msg);
        if (c != NULL)
            PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice_quiet, NULL);
    /* Durable on commit, whatever the server's default; no statement runs forever. */
    PGresult *r = PQexec(c, "SET synchronous_commit = on; SET client_min_messages = warning;");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        clean_msg(msg, sizeof msg, PQerrorMessage(c));
        plog(p, CL_LOG_ERROR, "msg=\"postgres session setup failed\" backend=pg err=\"%s\"", msg);
        PQclear(r);
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
    if (!p->schema_ok && init_schema(p, c) != CL_OK) {
        PQfinish(c);
        return NULL;
    }
    p->schema_ok = true;
    p->conn[which] = c;
    if (reconnect)
        plog(p, CL_LOG_WARN, "msg=\"postgres reconnected\" backend=pg conn=%s",
             which == CONN_LOG ? "log" : "archive");
    return c;
}

/* PQexecParams with binary parameters and results. NULL (logged) on failure. */
static PGresult *q_run(cl_pg_t *p, int which, const char *what, const char *sql, int n,
                       const Oid *types, const char *const *vals, const int *lens,
                       ExecStatusType want)
{
    PGconn *c = conn_get(p, which);
    if (c == NULL)
        return NULL;
    int fmts[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    PGresult *r = PQexecParams(c, sql, n, types, vals, lens, fmts, 1);
    if (PQresultStatus(r) != want) {
        (void)q_fail(p, which, what, r);
        return NULL;
    }
    return r;
}

/* A statement without parameters and result rows (BEGIN, COMMIT, ...). */
static bool q_cmd(cl_pg_t *p, int which, const char *what, const char *sql)
{
    PGresult *r = q_run(p, which, what, sql, 0, NULL, NULL, NULL, PGRES_COMMAND_OK);
    PQclear(r);
    return r != NULL;
}

static cl_status_t init_schema(cl_pg_t *p, PGconn *c)
{
    char msg[200];
    PGresult *r = PQexec(c, "BEGIN;"
                            "SELECT pg_advisory_xact_lock(7232401);"
                            "CREATE TABLE IF NOT EXISTS cloister_schema(version INT NOT NULL);");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        goto fail;
    PQclear(r);
    r = PQexec(c, "SELECT max(version) FROM cloister_schema");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        goto fail;
    bool fresh = PQgetisnull(r, 0, 0);
    long version = fresh ? 0 : strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    r = NULL;
    if (!fresh && (version > SCHEMA_VERSION || version < 1)) {
        plog(p, CL_LOG_ERROR,
             "msg=\"postgres schema is newer than this cloisterd (or invalid): refusing to "
             "open\" backend=pg found=%ld supported=%d",
             version, SCHEMA_VERSION);
        PQclear(PQexec(c, "ROLLBACK"));
        return CL_FAIL(CL_ERR_PERSIST);
    }
    r = PQexec(c,
               "CREATE TABLE IF NOT EXISTS cloister_events("
               " id BIGSERIAL PRIMARY KEY, tag BYTEA NOT NULL,"
               " bucket BIGINT NOT NULL, data BYTEA NOT NULL);"
               "CREATE INDEX IF NOT EXISTS cloister_events_tag_bucket_id"
               " ON cloister_events(tag, bucket, id);"
               "CREATE TABLE IF NOT EXISTS cloister_log(counter BIGINT PRIMARY KEY,"
               " rec BYTEA NOT NULL);"
               "CREATE TABLE IF NOT EXISTS cloister_snapshot(id INT PRIMARY KEY CHECK (id = 1),"
               " blob BYTEA NOT NULL);");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        goto fail;
    PQclear(r);
    if (fresh) {
        r = PQexec(c, "INSERT INTO cloister_schema(version) VALUES (1)");
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            goto fail;
        PQclear(r);
    }
    r = PQexec(c, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        goto fail;
    PQclear(r);
    if (fresh)
        plog(p, CL_LOG_INFO, "msg=\"postgres schema created\" backend=pg schema=%d",
             SCHEMA_VERSION);
    return CL_OK;
fail:
    clean_msg(msg, sizeof msg, PQerrorMessage(c));
    plog(p, CL_LOG_ERROR, "msg=\"postgres schema setup failed\" backend=pg err=\"%s\"", msg);
    PQclear(r);
    PQclear(PQexec(c, "ROLLBACK"));
    return CL_FAIL(CL_ERR_PERSIST);
}

/* ------------------------------------------------------------ sealed log */

static cl_status_t pg_log_append(void *ctx, uint64_t counter, const uint8_t *rec, size_t len)
{
    cl_pg_t *p = ctx;
    static const uint8_t empty[1] = {0};
    if (p == NULL || (rec == NULL && len != 0) || len > CL_CORE_MAX_RECORD ||
        counter > (uint64_t)INT64_MAX)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    uint8_t c8[8];
    be64(c8, counter);
    const Oid types[2] = {OID_INT8, OID_BYTEA};
    const char *vals[2] = {(const char *)c8, (const char *)(len ? rec : empty)};
    const int lens[2] = {8, (int)len};
    /* Autocommit: committed (and with synchronous_commit=on, flushed) on return. */
    PGresult *r = q_run(p, CONN_LOG, "log append",
                        "INSERT INTO cloister_log(counter, rec) VALUES ($1, $2) "
                        "ON CONFLICT (counter) DO UPDATE SET rec = EXCLUDED.rec",
                        2, types, vals, lens, PGRES_COMMAND_OK);
    if (r == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    PQclear(r);
    return CL_OK;
}

static cl_status_t pg_log_read(void *ctx, uint64_t counter, uint64_t *got_counter, uint8_t *buf,
                               size_t size, size_t *len)
{
    cl_pg_t *p = ctx;
    if (p == NULL || got_counter == NULL || len == NULL || (buf == NULL && size != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    while (counter <= (uint64_t)INT64_MAX) {
        uint8_t c8[8];
        be64(c8, counter);
        const Oid types[1] = {OID_INT8};
        const char *vals[1] = {(const char *)c8};
        const int lens[1] = {8};
        PGresult *r = q_run(p, CONN_LOG, "log read",
                            "SELECT counter, rec FROM cloister_log WHERE counter >= $1 "
                            "ORDER BY counter LIMIT 1",
                            1, types, vals, lens, PGRES_TUPLES_OK);
        if (r == NULL)
            return CL_FAIL(CL_ERR_PERSIST);
        if (PQntuples(r) == 0) {
            PQclear(r);
            return CL_ERR_NOT_FOUND;
        }
        if (PQnfields(r) != 2 || PQgetlength(r, 0, 0) != 8) {
            PQclear(r);
            plog(p, CL_LOG_ERROR, "msg=\"log read: unexpected result shape\" backend=pg");
            return CL_FAIL(CL_ERR_PERSIST);
        }
        uint64_t got = get_be64((const uint8_t *)PQgetvalue(r, 0, 0));
        int n = PQgetlength(r, 0, 1);
        if (got < counter || n < 0 || (size_t)n > CL_CORE_MAX_RECORD) {
            PQclear(r);
            plog(p, CL_LOG_WARN,
                 "msg=\"log record ignored: corrupt\" backend=pg counter=%" PRIu64 " size=%d",
                 got, n);
            if (got < counter || got == UINT64_MAX)
                return CL_FAIL(CL_ERR_PERSIST);
            counter = got + 1;
            continue;
        }
        if ((size_t)n > size) {
            PQclear(r);
            *len = (size_t)n;
            return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        }
        if (n != 0)
            memcpy(buf, PQgetvalue(r, 0, 1), (size_t)n);
        PQclear(r);
        *got_counter = got;
        *len = (size_t)n;
        return CL_OK;
    }
    return CL_ERR_NOT_FOUND;
}

static cl_status_t pg_log_compact(void *ctx, uint64_t before)
{
    cl_pg_t *p = ctx;
    if (p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (before > (uint64_t)INT64_MAX)
        before = (uint64_t)INT64_MAX;
    uint8_t c8[8];
    be64(c8, before);
    const Oid types[1] = {OID_INT8};
    const char *vals[1] = {(const char *)c8};
    const int lens[1] = {8};
    PGresult *r = q_run(p, CONN_LOG, "log compact", "DELETE FROM cloister_log WHERE counter < $1",
                        1, types, vals, lens, PGRES_COMMAND_OK);
    if (r == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    plog(p, CL_LOG_DEBUG, "msg=\"log compacted\" backend=pg removed=%s", PQcmdTuples(r));
    PQclear(r);
    return CL_OK;
}

static cl_status_t pg_snapshot_put(void *ctx, const uint8_t *blob, size_t len)
{
    cl_pg_t *p = ctx;
    static const uint8_t empty[1] = {0};
    if (p == NULL || (blob == NULL && len != 0) || len > CL_CORE_MAX_SNAPSHOT)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    const Oid types[1] = {OID_BYTEA};
    const char *vals[1] = {(const char *)(len ? blob : empty)};
    const int lens[1] = {(int)len};
    /* One statement = one transaction: the old snapshot or the new one, never half. */
    PGresult *r = q_run(p, CONN_LOG, "snapshot put",
                        "INSERT INTO cloister_snapshot(id, blob) VALUES (1, $1) "
                        "ON CONFLICT (id) DO UPDATE SET blob = EXCLUDED.blob",
                        1, types, vals, lens, PGRES_COMMAND_OK);
    if (r == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    PQclear(r);
    plog(p, CL_LOG_DEBUG, "msg=\"snapshot written\" backend=pg size=%zu", len);
    return CL_OK;
}

static cl_status_t pg_snapshot_get(void *ctx, uint8_t *buf, size_t size, size_t *len)
{
    cl_pg_t *p = ctx;
    if (p == NULL || len == NULL || (buf == NULL && size != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    PGresult *r = q_run(p, CONN_LOG, "snapshot get",
                        "SELECT blob FROM cloister_snapshot WHERE id = 1", 0, NULL, NULL, NULL,
                        PGRES_TUPLES_OK);
    if (r == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    if (PQntuples(r) == 0) {
        PQclear(r);
        return CL_ERR_NOT_FOUND;
    }
    int n = PQgetlength(r, 0, 0);
    if (n < 0 || (size_t)n > CL_CORE_MAX_SNAPSHOT) {
        PQclear(r);
        plog(p, CL_LOG_ERROR, "msg=\"snapshot corrupt: bad size\" backend=pg size=%d", n);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    if ((size_t)n > size) {
        PQclear(r);
        *len = (size_t)n;
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    }
    if (n != 0)
        memcpy(buf, PQgetvalue(r, 0, 0), (size_t)n);
    PQclear(r);
    *len = (size_t)n;
    return CL_OK;
}

/* ------------------------------------------------------------ archive */

static cl_status_t pg_archive_put(void *ctx, const cl_archive_rec_t *recs, size_t n,
                                  uint64_t *ids)
{
    cl_pg_t *p = ctx;
    static const uint8_t empty[1] = {0};
    if (!cl_archive_put_args_ok(p, recs, n, ids))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (n == 0)
        return CL_OK;
    if (!cl_archive_recs_ok(recs, n, (uint64_t)INT64_MAX))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (!p->in_txn) {
        if (!q_cmd(p, CONN_ARCH, "archive begin", "BEGIN"))
            return CL_FAIL(CL_ERR_PERSIST);
        p->in_txn = true;
    }
    if (!q_cmd(p, CONN_ARCH, "archive put", "SAVEPOINT put"))
        goto lost;
    for (size_t i = 0; i < n; i++) {
        uint8_t b8[8];
        be64(b8, recs[i].bucket);
        const Oid types[3] = {OID_BYTEA, OID_INT8, OID_BYTEA};
        const char *vals[3] = {(const char *)recs[i].tag, (const char *)b8,
                               (const char *)(recs[i].len ? recs[i].data : empty)};
        const int lens[3] = {16, 8, (int)recs[i].len};
        PGresult *r = q_run(p, CONN_ARCH, "archive put",
                            "INSERT INTO cloister_events(tag, bucket, data) VALUES ($1, $2, $3) "
                            "RETURNING id",
                            3, types, vals, lens, PGRES_TUPLES_OK);
        if (r == NULL || PQntuples(r) != 1 || PQgetlength(r, 0, 0) != 8) {
            PQclear(r);
            if (!p->in_txn) /* the connection died with the batch */
                return CL_FAIL(CL_ERR_PERSIST);
            /* Undo this put only; the batch's earlier puts stay. */
            if (!q_cmd(p, CONN_ARCH, "archive put", "ROLLBACK TO SAVEPOINT put") ||
                !q_cmd(p, CONN_ARCH, "archive put", "RELEASE SAVEPOINT put"))
                goto lost;
            return CL_FAIL(CL_ERR_PERSIST);
        }
        ids[i] = get_be64((const uint8_t *)PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    if (!q_cmd(p, CONN_ARCH, "archive put", "RELEASE SAVEPOINT put"))
        goto lost;
    return CL_OK;
lost:
    if (p->in_txn) {
        PQclear(PQexec(p->conn[CONN_ARCH], "ROLLBACK"));
        lose_batch(p);
    }
    return CL_FAIL(CL_ERR_PERSIST);
}

static cl_status_t pg_archive_scan(void *ctx, const uint8_t tag[16], uint64_t from, uint64_t to,
                                   uint64_t after_id, size_t max_records, uint8_t *buf,
                                   size_t size, size_t *len, size_t *n)
{
    cl_pg_t *p = ctx;
    cl_status_t st = cl_archive_scan_args(p, tag, buf, size, len, n);
    if (st != CL_OK || !cl_archive_scan_range_i64(from, &to, after_id, max_records))
        return st;
    cl_scan_page_t pg = {.buf = buf, .size = size};
    bool more = true;
    while (more && pg.count < max_records) {
        size_t want = max_records - pg.count < SCAN_CHUNK ? max_records - pg.count : SCAN_CHUNK;
        uint8_t f8[8], t8[8], a8[8], l8[8];
        be64(f8, from);
        be64(t8, to);
        be64(a8, after_id);
        be64(l8, want);
        const Oid types[5] = {OID_BYTEA, OID_INT8, OID_INT8, OID_INT8, OID_INT8};
        const char *vals[5] = {(const char *)tag, (const char *)f8, (const char *)t8,
                               (const char *)a8, (const char *)l8};
        const int lens[5] = {16, 8, 8, 8, 8};
        bool had_txn = p->in_txn;
        PGresult *r = q_run(p, CONN_ARCH, "archive scan",
                            "SELECT id, bucket, data FROM cloister_events WHERE tag = $1 AND "
                            "bucket >= $2 AND bucket <= $3 AND id > $4 ORDER BY id LIMIT $5",
                            5, types, vals, lens, PGRES_TUPLES_OK);
        if (r == NULL) {
            if (had_txn && p->in_txn) { /* an aborted transaction keeps nothing */
                PQclear(PQexec(p->conn[CONN_ARCH], "ROLLBACK"));
                lose_batch(p);
            }
            return CL_FAIL(CL_ERR_PERSIST);
        }
        int rows = PQntuples(r);
        more = (size_t)rows == want;
        for (int i = 0; i < rows && pg.count < max_records; i++) {
            if (PQgetlength(r, i, 0) != 8 || PQgetlength(r, i, 1) != 8) {
                PQclear(r);
                plog(p, CL_LOG_ERROR, "msg=\"archive scan: unexpected result shape\" backend=pg");
                return CL_FAIL(CL_ERR_PERSIST);
            }
            uint64_t id = get_be64((const uint8_t *)PQgetvalue(r, i, 0));
            uint64_t bucket = get_be64((const uint8_t *)PQgetvalue(r, i, 1));
            int dl = PQgetlength(r, i, 2);
            if (id <= after_id) {
                PQclear(r);
                plog(p, CL_LOG_ERROR, "msg=\"archive scan: ids out of order\" backend=pg");
                return CL_FAIL(CL_ERR_PERSIST);
            }
            after_id = id;
            if (dl < 0 || (size_t)dl > CL_CORE_MAX_RECORD) {
                plog(p, CL_LOG_WARN,
                     "msg=\"archive row ignored: corrupt\" backend=pg id=%" PRIu64 " size=%d", id,
                     dl);
                continue;
            }
            uint8_t *dst;
            st = cl_scan_page_add(&pg, id, bucket, PQgetvalue(r, i, 2), (uint32_t)dl, &dst);
            if (st != CL_OK || dst == NULL) {
                PQclear(r);
                /* too small for one record, or a partial page */
                *len = st != CL_OK ? pg.need : pg.pos;
                *n = pg.count;
                return st;
            }
        }
        PQclear(r);
    }
    *len = pg.pos;
    *n = pg.count;
    return CL_OK;
}

/* ------------------------------------------------------------ open / sync / close */

cl_status_t cl_pg_open(const char *conninfo, cl_host_log_fn log, void *log_ctx, cl_pg_t **out)
{
    if (conninfo == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    cl_pg_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    p->log = log ? log : cl_store_default_log;
    p->log_ctx = log ? log_ctx : NULL;
    p->conninfo = strdup(conninfo);
    if (p->conninfo == NULL) {
        free(p);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    /* Connect now: a wrong conninfo or a newer schema fails at start, not later. */
    if (conn_get(p, CONN_LOG) == NULL) {
        cl_pg_close(p);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    p->ops.version = CL_HOST_OPS_VERSION;
    p->ops.ctx = p;
    p->ops.log_append = pg_log_append;
    p->ops.log_read = pg_log_read;
    p->ops.log_compact = pg_log_compact;
    p->ops.snapshot_put = pg_snapshot_put;
    p->ops.snapshot_get = pg_snapshot_get;
    p->ops.archive_put = pg_archive_put;
    p->ops.archive_scan = pg_archive_scan;
    *out = p;
    return CL_OK;
}

const cl_host_ops_t *cl_pg_ops(cl_pg_t *p)
{
    return p ? &p->ops : NULL;
}

cl_status_t cl_pg_sync(cl_pg_t *p)
{
    if (p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (p->lost) {
        p->lost = false;
        if (p->in_txn) {
            PQclear(PQexec(p->conn[CONN_ARCH], "ROLLBACK"));
            p->in_txn = false;
        }
        plog(p, CL_LOG_ERROR, "msg=\"archive batch lost before commit\" backend=pg");
        return CL_FAIL(CL_ERR_PERSIST);
    }
    if (!p->in_txn)
        return CL_OK;
    bool ok = q_cmd(p, CONN_ARCH, "archive commit", "COMMIT");
    p->in_txn = false;
    p->lost = false;
    /* A COMMIT whose connection broke is indeterminate: report it as failed
     * (nothing acknowledged); the rows may or may not exist. */
    return ok ? CL_OK : CL_FAIL(CL_ERR_PERSIST);
}

void cl_pg_close(cl_pg_t *p)
{
    if (p == NULL)
        return;
    if (p->in_txn && p->conn[CONN_ARCH] != NULL)
        PQclear(PQexec(p->conn[CONN_ARCH], "ROLLBACK")); /* never acknowledged */
    for (int i = 0; i < 2; i++)
        if (p->conn[i] != NULL)
            PQfinish(p->conn[i]);
    if (p->conninfo != NULL) {
        memset(p->conninfo, 0, strlen(p->conninfo)); /* may hold a password */
        free(p->conninfo);
    }
    free(p);
}
