/*
 * archive_sqlite.c - the default archive backend: encrypted event records in
 * <data>/archive.sqlite (storage.h). UNTRUSTED HOST SIDE.
 *
 * What: archive_put / archive_scan of cl_host_ops_t over one SQLite database
 * in WAL mode with synchronous=FULL, tables schema_version and events, and
 * group commit: the first archive_put of a handle() batch opens a
 * transaction (BEGIN IMMEDIATE), every put of the batch inserts into it
 * (each put inside a SAVEPOINT, so a failed put leaves the others of the
 * batch intact), and cl_sqlite_sync commits it - one WAL fsync per batch,
 * before the daemon sends the batch's responses. An acknowledged event is
 * therefore durable; an unsynced batch (crash, failed commit) is rolled back
 * and was never acknowledged.
 *
 * Why SQLite: embedded, zero setup, crash safe, indexed scans by
 * (tag, bucket, id) without keeping an index in the daemon's memory.
 *
 * Row ids are assigned here (max(id) + 1 at open, then strictly increasing in
 * this process), so a rolled-back batch never makes the next batch reuse an
 * id the core has already been told about.
 *
 * The database is untrusted input as much as the network: every size read
 * back is checked (a row longer than CL_CORE_MAX_RECORD is skipped with a
 * log line), and nothing is copied beyond the caller's buffer. Errors become
 * CL_ERR_PERSIST plus a log line that never contains row contents.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "storage.h"
#include "storage_common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <time.h>

#include <sqlite3.h>

#include "commit_pipe.h"

#define SCHEMA_VERSION 2 /* 1: one index on events(tag, bucket, id); 2: events_idx, merged */
#define MERGE_ROWS 16384   /* default: rows left unindexed before a merge */
#ifndef CL_SQLITE_PAGE_SIZE
#define CL_SQLITE_PAGE_SIZE "1024"
#endif
#define CKPT_FRAMES 8192  /* pipelined: the checkpointer runs when the WAL holds more */
#define CKPT_PERIOD_MS 200 /* and looks that often */

enum {
    ST_INSERT,
    ST_SCAN,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_MERGE,
    ST_SET_UPTO,
    ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
    "INSERT INTO events(id, tag, bucket, data) VALUES (?1, ?2, ?3, ?4)",
    /* the indexed rows, then the recent ones (id > indexed_upto) not merged yet */
    ("SELECT id, bucket, data FROM ("
     " SELECT e.id AS id, e.bucket AS bucket, e.data AS data FROM events_idx x"
     "  JOIN events e ON e.id = x.id"
     "  WHERE x.tag = ?1 AND x.bucket >= ?2 AND x.bucket <= ?3 AND x.id > ?4"
     " UNION ALL"
     " SELECT id, bucket, data FROM events"
     "  WHERE id > max(?4, (SELECT v FROM archive_meta WHERE k = 'indexed_upto'))"
     "  AND tag = ?1 AND bucket >= ?2 AND bucket <= ?3"
     ") ORDER BY id LIMIT ?5"),
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT put",
    "RELEASE put",
    "ROLLBACK TO put",
    ("INSERT INTO events_idx(tag, bucket, id) SELECT tag, bucket, id FROM events "
     "WHERE id > ?1 AND id <= ?2 ORDER BY tag, bucket, id"),
    "UPDATE archive_meta SET v = ?1 WHERE k = 'indexed_upto'",
};

struct cl_sqlite {
    cl_host_ops_t ops;
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    bool in_txn;     /* a batch is open */
    bool lost;       /* a batch was rolled back before its sync */
    int64_t next_id; /* next row id to hand out */
    /* rows with id <= indexed_upto are in events_idx; the writer (the daemon
     * thread without a pipe, the writer thread with one) merges the rest in
     * bulk once merge_rows have accumulated */
    int64_t indexed_upto;
    int64_t merge_rows;
    cl_host_log_fn log;
    void *log_ctx;
    char *path;
    /* pipelined group commit (cl_sqlite_start_pipeline): `db` then only scans;
     * the writer thread owns `wdb` and its statements */
    cl_pipe_t *pipe;
    sqlite3 *wdb;
    sqlite3_stmt *wst[ST_COUNT];
    /* pipelined: WAL checkpoints on a third thread and connection (PASSIVE:
     * they run alongside the writer's commits instead of inside one) */
    sqlite3 *cdb;
    pthread_t ckpt;
    bool ckpt_started, ckpt_stop;
    int wal_frames; /* frames in the WAL after the writer's last commit (ckpt_mu) */
    pthread_mutex_t ckpt_mu;
    pthread_cond_t ckpt_cv;
};

/* ------------------------------------------------------------ helpers */

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void slog(const cl_sqlite_t *a, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    a->log(a->log_ctx, level, line);
}

/* SQLite's message, bounded and without quotes/control bytes (one log line). */
static void clean_msg(char *out, size_t size, const char *msg)
{
    size_t o = 0;
    for (size_t i = 0; msg != NULL && msg[i] != '\0' && o + 1 < size; i++) {
        unsigned char c = (unsigned char)msg[i];
        out[o++] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    out[o] = '\0';
}

/* Logs a failed SQLite call and maps it to CL_ERR_PERSIST. */
static cl_status_t db_fail_on(const cl_sqlite_t *a, sqlite3 *db, const char *what, int rc)
{
    char msg[160];
    clean_msg(msg, sizeof msg, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    slog(a, CL_LOG_ERROR, "msg=\"archive %s failed\" backend=sqlite rc=%d err=\"%s\"", what, rc,
         msg);
    return CL_FAIL(CL_ERR_PERSIST);
}

/* The same for the daemon thread's connection. */
static cl_status_t db_fail(const cl_sqlite_t *a, const char *what, int rc)
{
    return db_fail_on(a, a->db, what, rc);
}

/* Runs a prepared statement that returns no rows. */
static int run_stmt(cl_sqlite_t *a, int which)
{
    sqlite3_stmt *s = a->st[which];
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static void rollback(cl_sqlite_t *a)
{
    if (!sqlite3_get_autocommit(a->db)) {
        int rc = run_stmt(a, ST_ROLLBACK);
        if (rc != SQLITE_OK)
            (void)db_fail(a, "rollback", rc);
    }
    a->in_txn = false;
}

/* Rolls back the open batch outside sync: the puts it had already accepted
 * are gone, so the next sync must fail (their responses must not leave). */
static void lose_batch(cl_sqlite_t *a)
{
    bool had = a->in_txn;
    rollback(a);
    a->lost = a->lost || had;
}

/* One INSERT of a row with its id (the statement is reset and unbound after). */
static int insert_row(sqlite3_stmt *s, int64_t id, const cl_archive_rec_t *r)
{
    static const uint8_t empty[1] = {0};
    int rc = sqlite3_bind_int64(s, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(s, 2, r->tag, 16, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, (int64_t)r->bucket);
    if (rc == SQLITE_OK) /* zero-length, but never NULL (data is NOT NULL) */
        rc = sqlite3_bind_blob(s, 4, r->len ? r->data : empty, (int)r->len, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc;
}

/* ------------------------------------------------------------ ocalls */

static cl_status_t sqlite_archive_put(void *ctx, const cl_archive_rec_t *recs, size_t n,
                                      uint64_t *ids)
{
    cl_sqlite_t *a = ctx;
    if (!cl_archive_put_args_ok(a, recs, n, ids))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (n == 0)
        return CL_OK;
    if (!cl_archive_recs_ok(recs, n, (uint64_t)INT64_MAX))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (a->pipe != NULL) { /* the writer thread inserts and commits them */
        for (size_t i = 0; i < n; i++)
            ids[i] = (uint64_t)(a->next_id + (int64_t)i);
        cl_status_t pst = cl_pipe_put(a->pipe, recs, ids, n);
        if (pst != CL_OK) {
            slog(a, CL_LOG_ERROR, "msg=\"archive put failed: out of memory\" backend=sqlite");
            return pst;
        }
        a->next_id += (int64_t)n; /* never reused, even if the commit fails */
        return CL_OK;
    }
    int rc;
    if (!a->in_txn) {
        if ((rc = run_stmt(a, ST_BEGIN)) != SQLITE_OK)
            return db_fail(a, "begin", rc);
        a->in_txn = true;
    }
    if ((rc = run_stmt(a, ST_SAVEPOINT)) != SQLITE_OK)
        return db_fail(a, "put", rc);
    sqlite3_stmt *s = a->st[ST_INSERT];
    for (size_t i = 0; i < n; i++) {
        int64_t id = a->next_id + (int64_t)i;
        rc = insert_row(s, id, &recs[i]);
        if (rc != SQLITE_OK) {
            cl_status_t st = db_fail(a, "put", rc);
            /* Undo this put only; the batch's earlier puts stay. */
            if (run_stmt(a, ST_ROLLBACK_TO) != SQLITE_OK || run_stmt(a, ST_RELEASE) != SQLITE_OK)
                lose_batch(a); /* cannot even do that: the whole batch is gone */
            return st;
        }
        ids[i] = (uint64_t)id;
    }
    if ((rc = run_stmt(a, ST_RELEASE)) != SQLITE_OK) {
        cl_status_t st = db_fail(a, "put", rc);
        lose_batch(a);
        return st;
    }
    a->next_id += (int64_t)n;
    return CL_OK;
}

static cl_status_t sqlite_archive_scan(void *ctx, const uint8_t tag[16], uint64_t from,
                                       uint64_t to, uint64_t after_id, size_t max_records,
                                       uint8_t *buf, size_t size, size_t *len, size_t *n)
{
    cl_sqlite_t *a = ctx;
    cl_status_t st = cl_archive_scan_args(a, tag, buf, size, len, n);
    if (st != CL_OK || !cl_archive_scan_range_i64(from, &to, after_id, max_records))
        return st;
    sqlite3_stmt *s = a->st[ST_SCAN];
    int rc = sqlite3_bind_blob(s, 1, tag, 16, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, (int64_t)from);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 3, (int64_t)to);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, (int64_t)after_id);
    if (rc == SQLITE_OK) /* a margin for corrupt rows skipped below */
        rc = sqlite3_bind_int64(s, 5, (int64_t)(max_records > INT32_MAX ? INT32_MAX : max_records) + 64);
    cl_scan_page_t pg = {.buf = buf, .size = size};
    if (rc != SQLITE_OK) {
        st = db_fail(a, "scan", rc);
        goto done;
    }
    while (pg.count < max_records) {
        rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            st = db_fail(a, "scan", rc);
            goto done;
        }
        int64_t id = sqlite3_column_int64(s, 0);
        int64_t bucket = sqlite3_column_int64(s, 1);
        const void *data = sqlite3_column_blob(s, 2);
        int dl = sqlite3_column_bytes(s, 2);
        if (id <= 0 || bucket < 0 || dl < 0 || (size_t)dl > CL_CORE_MAX_RECORD ||
            (data == NULL && dl != 0)) {
            slog(a, CL_LOG_WARN,
                 "msg=\"archive row ignored: corrupt\" backend=sqlite id=%" PRId64 " size=%d", id,
                 dl);
            continue;
        }
        uint8_t *dst;
        st = cl_scan_page_add(&pg, (uint64_t)id, (uint64_t)bucket, data, (uint32_t)dl, &dst);
        if (st != CL_OK) {
            *len = pg.need;
            goto done;
        }
        if (dst == NULL)
            break; /* a partial page: the caller continues with after_id = last id */
    }
    *len = pg.pos;
    *n = pg.count;
done:
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return st;
}

/* ------------------------------------------------------------ index merge */

/*
 * Moves the rows (indexed_upto, upto] into events_idx in one transaction,
 * sorted, so each (tag, bucket) leaf is written once per merge instead of
 * once per commit. Runs on the connection that writes (db/st without a pipe,
 * wdb/wst on the writer thread with one). A failed merge changes nothing:
 * the rows stay durable in events and visible to scans; it is retried later.
 */
static void merge_index(cl_sqlite_t *a, sqlite3 *db, sqlite3_stmt **st, int64_t upto)
{
    if (upto - a->indexed_upto < a->merge_rows)
        return;
    int rc = sqlite3_step(st[ST_BEGIN]);
    sqlite3_reset(st[ST_BEGIN]);
    rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st[ST_MERGE], 1, a->indexed_upto);
        sqlite3_bind_int64(st[ST_MERGE], 2, upto);
        rc = sqlite3_step(st[ST_MERGE]);
        sqlite3_reset(st[ST_MERGE]);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st[ST_SET_UPTO], 1, upto);
        rc = sqlite3_step(st[ST_SET_UPTO]);
        sqlite3_reset(st[ST_SET_UPTO]);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st[ST_COMMIT]);
        sqlite3_reset(st[ST_COMMIT]);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK) {
        (void)db_fail_on(a, db, "index merge (retried later)", rc);
        if (!sqlite3_get_autocommit(db)) {
            sqlite3_step(st[ST_ROLLBACK]);
            sqlite3_reset(st[ST_ROLLBACK]);
        }
        return;
    }
    a->indexed_upto = upto;
}

void cl_sqlite_set_merge_rows(cl_sqlite_t *a, size_t rows)
{
    if (a != NULL)
        a->merge_rows = rows ? (int64_t)rows : MERGE_ROWS;
}

/* ------------------------------------------------------------ open / sync / close */

/* Creates or checks the schema; CL_ERR_PERSIST for a newer version. */
static cl_status_t init_schema(cl_sqlite_t *a)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_exec(a->db,
                          "BEGIN IMMEDIATE;"
                          "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);",
                          NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return db_fail(a, "schema", rc);
    cl_status_t st = CL_OK;
    rc = sqlite3_prepare_v2(a->db, "SELECT max(version), count(*) FROM schema_version", -1, &q,
                            NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW)
        rc = SQLITE_OK;
    if (rc != SQLITE_OK) {
        st = db_fail(a, "schema", rc);
        goto out;
    }
    bool fresh = sqlite3_column_type(q, 0) == SQLITE_NULL;
    int64_t version = sqlite3_column_int64(q, 0);
    if (!fresh && version > SCHEMA_VERSION) {
        slog(a, CL_LOG_ERROR,
             "msg=\"archive schema is newer than this cloisterd: refusing to open\" "
             "backend=sqlite found=%" PRId64 " supported=%d",
             version, SCHEMA_VERSION);
        st = CL_FAIL(CL_ERR_PERSIST);
        goto out;
    }
    if (!fresh && version < 1) {
        slog(a, CL_LOG_ERROR, "msg=\"archive schema version invalid\" backend=sqlite found=%" PRId64,
             version);
        st = CL_FAIL(CL_ERR_PERSIST);
        goto out;
    }
    sqlite3_finalize(q);
    q = NULL;
    /* v2: events has no secondary index (appends touch only its last pages);
     * events_idx is filled in bulk, sorted, by merge_index() */
    rc = sqlite3_exec(a->db,
                      "CREATE TABLE IF NOT EXISTS events("
                      " id INTEGER PRIMARY KEY, tag BLOB NOT NULL,"
                      " bucket INTEGER NOT NULL, data BLOB NOT NULL);"
                      "CREATE TABLE IF NOT EXISTS events_idx("
                      " tag BLOB NOT NULL, bucket INTEGER NOT NULL, id INTEGER NOT NULL,"
                      " PRIMARY KEY (tag, bucket, id)) WITHOUT ROWID;"
                      "CREATE TABLE IF NOT EXISTS archive_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
                      "INSERT OR IGNORE INTO archive_meta(k, v) VALUES ('indexed_upto', 0);",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK && !fresh && version == 1) { /* migrate: the old index becomes events_idx */
        rc = sqlite3_exec(a->db,
                          "INSERT OR IGNORE INTO events_idx(tag, bucket, id)"
                          " SELECT tag, bucket, id FROM events ORDER BY tag, bucket, id;"
                          "DROP INDEX IF EXISTS events_tag_bucket_id;"
                          "UPDATE archive_meta SET v = (SELECT COALESCE(max(id), 0) FROM events)"
                          " WHERE k = 'indexed_upto';"
                          "UPDATE schema_version SET version = 2;",
                          NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            slog(a, CL_LOG_INFO, "msg=\"archive schema migrated\" backend=sqlite from=1 to=2");
    }
    if (rc == SQLITE_OK && fresh)
        rc = sqlite3_exec(a->db, "INSERT INTO schema_version(version) VALUES (2);", NULL, NULL,
                          NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(a->db, "COMMIT;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        st = db_fail(a, "schema", rc);
        goto out;
    }
    rc = sqlite3_prepare_v2(a->db, "SELECT v FROM archive_meta WHERE k = 'indexed_upto'", -1, &q,
                            NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        a->indexed_upto = sqlite3_column_int64(q, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (rc != SQLITE_OK) {
        st = db_fail(a, "schema", rc);
        goto out;
    }
    if (fresh)
        slog(a, CL_LOG_INFO, "msg=\"archive created\" backend=sqlite schema=%d", SCHEMA_VERSION);
    return CL_OK;
out:
    sqlite3_finalize(q);
    if (!sqlite3_get_autocommit(a->db))
        sqlite3_exec(a->db, "ROLLBACK;", NULL, NULL, NULL);
    return st;
}

static int wal_cb(void *ctx, int ncol, char **vals, char **names)
{
    (void)names;
    *(bool *)ctx = ncol == 1 && vals[0] != NULL && strcmp(vals[0], "wal") == 0;
    return 0;
}

/* One connection to a->path: WAL, synchronous=FULL (the WAL is fsynced at every
 * commit: durable on commit), extended result codes, a busy timeout. */
static cl_status_t open_conn(cl_sqlite_t *a, sqlite3 **out)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
#ifdef SQLITE_OPEN_NOFOLLOW
    flags |= SQLITE_OPEN_NOFOLLOW;
#endif
    int rc = sqlite3_open_v2(a->path, out, flags, NULL);
    if (rc != SQLITE_OK)
        return db_fail_on(a, *out, "open", rc);
    sqlite3_extended_result_codes(*out, 1);
    sqlite3_busy_timeout(*out, 5000);
    bool wal = false;
    /* New databases only (an existing one keeps its page size). */
    rc = sqlite3_exec(*out, "PRAGMA page_size=" CL_SQLITE_PAGE_SIZE ";", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(*out, "PRAGMA journal_mode=WAL;", wal_cb, &wal, NULL);
    if (rc == SQLITE_OK && !wal)
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(*out, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;", NULL, NULL,
                          NULL);
    if (rc != SQLITE_OK)
        return db_fail_on(a, *out, "open (WAL mode)", rc);
    return CL_OK;
}

cl_status_t cl_sqlite_open(const char *dir, cl_host_log_fn log, void *log_ctx, cl_sqlite_t **out)
{
    if (dir == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    cl_sqlite_t *a = calloc(1, sizeof *a);
    if (a == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    a->log = log ? log : cl_store_default_log;
    a->log_ctx = log ? log_ctx : NULL;
    a->merge_rows = MERGE_ROWS;
    cl_status_t st = CL_OK;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/archive.sqlite", dir) >= (int)sizeof path) {
        st = CL_FAIL(CL_ERR_INVALID_ARG);
        goto fail;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        slog(a, CL_LOG_ERROR, "msg=\"archive open failed\" backend=sqlite errno=%d", errno);
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    /* Create it 0600 ourselves (SQLite would use 0644 & ~umask); the -wal and
     * -shm files inherit the database file's mode. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || fchmod(fd, 0600) != 0) {
        slog(a, CL_LOG_ERROR, "msg=\"archive open failed\" backend=sqlite errno=%d", errno);
        if (fd >= 0)
            close(fd);
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    close(fd);
    if ((a->path = strdup(path)) == NULL) {
        st = CL_FAIL(CL_ERR_PERSIST);
        goto fail;
    }
    if ((st = open_conn(a, &a->db)) != CL_OK)
        goto fail;
    if ((st = init_schema(a)) != CL_OK)
        goto fail;
    int rc = SQLITE_OK;
    for (int i = 0; i < ST_COUNT; i++) {
        rc = sqlite3_prepare_v3(a->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &a->st[i],
                                NULL);
        if (rc != SQLITE_OK) {
            st = db_fail(a, "prepare", rc);
            goto fail;
        }
    }
    sqlite3_stmt *q = NULL;
    rc = sqlite3_prepare_v2(a->db, "SELECT COALESCE(max(id), 0) FROM events", -1, &q, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t max = sqlite3_column_int64(q, 0);
        a->next_id = (max < 0 ? 0 : max) + 1;
        rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_OK) {
        st = db_fail(a, "open", rc);
        goto fail;
    }
    a->ops.version = CL_HOST_OPS_VERSION;
    a->ops.ctx = a;
    a->ops.archive_put = sqlite_archive_put;
    a->ops.archive_scan = sqlite_archive_scan;
    *out = a;
    return CL_OK;
fail:
    cl_sqlite_close(a);
    return st;
}

const cl_host_ops_t *cl_sqlite_ops(cl_sqlite_t *a)
{
    return a ? &a->ops : NULL;
}

cl_status_t cl_sqlite_sync(cl_sqlite_t *a)
{
    if (a == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (a->pipe != NULL) {
        uint64_t t = 0;
        cl_status_t st = cl_pipe_submit(a->pipe, &t);
        return st != CL_OK ? st : cl_pipe_wait(a->pipe, t);
    }
    if (a->lost) {
        a->lost = false;
        rollback(a); /* anything put after the loss goes with it */
        slog(a, CL_LOG_ERROR, "msg=\"archive batch lost before commit\" backend=sqlite");
        return CL_FAIL(CL_ERR_PERSIST);
    }
    if (!a->in_txn)
        return CL_OK;
    int rc = run_stmt(a, ST_COMMIT);
    if (rc != SQLITE_OK) {
        cl_status_t st = db_fail(a, "commit", rc);
        rollback(a);
        return st;
    }
    a->in_txn = false;
    merge_index(a, a->db, a->st, a->next_id - 1);
    return CL_OK;
}

void cl_sqlite_close(cl_sqlite_t *a)
{
    if (a == NULL)
        return;
    cl_pipe_close(a->pipe); /* commits what was submitted, drops the unsubmitted rest */
    if (a->ckpt_started) {
        pthread_mutex_lock(&a->ckpt_mu);
        a->ckpt_stop = true;
        pthread_cond_signal(&a->ckpt_cv);
        pthread_mutex_unlock(&a->ckpt_mu);
        pthread_join(a->ckpt, NULL);
        pthread_cond_destroy(&a->ckpt_cv);
        pthread_mutex_destroy(&a->ckpt_mu);
    }
    if (a->cdb != NULL)
        sqlite3_close(a->cdb);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(a->wst[i]);
    if (a->wdb != NULL)
        sqlite3_close(a->wdb);
    if (a->db != NULL) {
        if (a->in_txn && a->st[ST_ROLLBACK] != NULL)
            rollback(a); /* never acknowledged: a crash would lose it the same way */
        for (int i = 0; i < ST_COUNT; i++)
            sqlite3_finalize(a->st[i]);
        sqlite3_close(a->db);
    }
    free(a->path);
    free(a);
}

/* ------------------------------------------------------------ pipelined commit */

/* Writer thread: rows with their ids, one transaction, one fsync. */
static cl_status_t pipe_write(void *ctx, const cl_archive_rec_t *recs, const uint64_t *ids,
                              size_t n)
{
    cl_sqlite_t *a = ctx;
    int rc = sqlite3_step(a->wst[ST_BEGIN]);
    sqlite3_reset(a->wst[ST_BEGIN]);
    if (rc != SQLITE_DONE)
        return db_fail_on(a, a->wdb, "begin", rc);
    rc = SQLITE_OK;
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
        rc = insert_row(a->wst[ST_INSERT], (int64_t)ids[i], &recs[i]);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(a->wst[ST_COMMIT]);
        sqlite3_reset(a->wst[ST_COMMIT]);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK) {
        cl_status_t st = db_fail_on(a, a->wdb, "group commit", rc);
        if (!sqlite3_get_autocommit(a->wdb)) {
            sqlite3_step(a->wst[ST_ROLLBACK]);
            sqlite3_reset(a->wst[ST_ROLLBACK]);
        }
        return st;
    }
    if (n > 0)
        merge_index(a, a->wdb, a->wst, (int64_t)ids[n - 1]); /* ids increase */
    return CL_OK;
}

/* Writer thread, after each commit: how long the WAL is (the checkpointer's cue). */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    cl_sqlite_t *a = arg;
    (void)db;
    (void)name;
    pthread_mutex_lock(&a->ckpt_mu);
    a->wal_frames = frames;
    pthread_mutex_unlock(&a->ckpt_mu);
    return SQLITE_OK;
}

/* Checkpointer thread: every CKPT_PERIOD_MS, a PASSIVE checkpoint when the WAL is long. */
static void *ckpt_main(void *arg)
{
    cl_sqlite_t *a = arg;
    pthread_mutex_lock(&a->ckpt_mu);
    while (!a->ckpt_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)CKPT_PERIOD_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->ckpt_cv, &a->ckpt_mu, &ts);
        if (a->ckpt_stop)
            break;
        if (a->wal_frames < CKPT_FRAMES)
            continue;
        pthread_mutex_unlock(&a->ckpt_mu);
        int log_frames = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(a->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                           &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            (void)db_fail_on(a, a->cdb, "checkpoint (retried)", rc);
        pthread_mutex_lock(&a->ckpt_mu);
        if (rc == SQLITE_OK)
            a->wal_frames = 0; /* the writer's next commit says how many there are */
    }
    pthread_mutex_unlock(&a->ckpt_mu);
    return NULL;
}

cl_status_t cl_sqlite_start_pipeline(cl_sqlite_t *a, size_t max_queued)
{
    if (a == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (a->pipe != NULL)
        return CL_OK;
    cl_status_t st = cl_sqlite_sync(a); /* an open synchronous batch goes first */
    if (st != CL_OK)
        return st;
    if ((st = open_conn(a, &a->wdb)) != CL_OK)
        return st;
    /* The writer keeps the pages it appends to and merges into cached (64 MiB)
     * and never checkpoints itself: the checkpointer thread does, PASSIVE, on
     * its own connection, so a commit never waits for a checkpoint (the WAL
     * is still fsynced at every commit: durability is unchanged). */
    int prc = sqlite3_exec(a->wdb, "PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=0;", NULL,
                           NULL, NULL);
    if (prc != SQLITE_OK)
        return db_fail_on(a, a->wdb, "open (pragmas)", prc);
    if ((st = open_conn(a, &a->cdb)) != CL_OK)
        return st;
    pthread_mutex_init(&a->ckpt_mu, NULL);
    pthread_cond_init(&a->ckpt_cv, NULL);
    if (pthread_create(&a->ckpt, NULL, ckpt_main, a) != 0) {
        pthread_cond_destroy(&a->ckpt_cv);
        pthread_mutex_destroy(&a->ckpt_mu);
        slog(a, CL_LOG_ERROR, "msg=\"cannot start the checkpointer\" backend=sqlite");
        return CL_FAIL(CL_ERR_PERSIST);
    }
    a->ckpt_started = true;
    (void)pthread_setname_np(a->ckpt, "cl-checkpoint");
    sqlite3_wal_hook(a->wdb, wal_hook, a); /* replaces the auto-checkpoint hook (off anyway) */
    for (int i = 0; i < ST_COUNT; i++) {
        int rc = sqlite3_prepare_v3(a->wdb, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                    &a->wst[i], NULL);
        if (rc != SQLITE_OK)
            return db_fail_on(a, a->wdb, "prepare", rc);
    }
    return cl_pipe_open(pipe_write, a, max_queued, a->log, a->log_ctx, &a->pipe);
}

cl_pipe_t *cl_sqlite_pipe(cl_sqlite_t *a)
{
    return a != NULL ? a->pipe : NULL;
}
