/*
 * host/ngsi/ngsi_store.h - where the NGSI-v2 facade keeps entities and
 * subscriptions: one table of function pointers, two implementations
 * (ngsi_store_sqlite.c: <data_dir>/ngsi.sqlite, the default;
 * ngsi_store_pg.c: PostgreSQL tables ngsi_*). UNTRUSTED HOST SIDE.
 *
 * Two kinds of callers:
 *   - the writer thread (ngsi_writer.c) alone calls begin / load / write /
 *     sub_put / sub_del / commit / rollback: one transaction per batch of
 *     requests (group commit), durable when commit returns;
 *   - any server thread calls query, concurrently: each call takes a reader
 *     connection of its own from a small pool and sees committed data only.
 *
 * Entities are rows (seq, service, path, id, type, doc, created, modified)
 * with UNIQUE (service, path, id, type) and indexes (service, seq) and
 * (service, id); seq is the creation order (the default order of queries).
 * doc is the normalized attributes object as compact JSON text. Nothing of
 * a row is logged.
 */
#ifndef CLOISTER_HOST_NGSI_STORE_H
#define CLOISTER_HOST_NGSI_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ngsi_internal.h"

typedef struct ngsi_row {
    int64_t seq;
    const char *service, *path, *id, *type;
    const char *doc; /* NULL when the query did not need it */
    size_t doc_len;
} ngsi_row_t;

/* Row callback: 0 = go on, anything else stops the iteration (returned as is). */
typedef int (*ngsi_row_fn)(void *ctx, const ngsi_row_t *row);

/* (service, path, id): every type of that id in that path. */
typedef struct ngsi_key {
    const char *service, *path, *id;
} ngsi_key_t;

typedef enum ngsi_write_kind { NGSI_W_INSERT, NGSI_W_UPDATE, NGSI_W_DELETE } ngsi_write_kind_t;

typedef struct ngsi_write {
    ngsi_write_kind_t kind;
    int64_t seq; /* UPDATE, DELETE */
    const char *service, *path, *id, *type; /* INSERT */
    const char *doc;                        /* INSERT, UPDATE */
    size_t doc_len;
    int64_t now_ms;
} ngsi_write_t;

/* What a query selects; the store applies service, paths, ids and types. */
typedef struct ngsi_query {
    const char *service;
    const ngsi_paths_t *paths; /* n == 0: every path */
    size_t nids, ntypes;
    const char *const *ids;
    const char *const *types;
    /* Optional filter on (id, type) (the regexes) applied before paging. */
    bool (*filter)(void *ctx, const char *id, const char *type);
    void *filter_ctx;
    size_t offset, limit; /* limit 0: no rows wanted (count only) */
    bool count;           /* *total must be exact */
} ngsi_query_t;

typedef struct ngsi_store ngsi_store_t;

typedef struct ngsi_store_ops {
    const char *name; /* "sqlite", "pg" */
    /* writer thread */
    cl_status_t (*begin)(ngsi_store_t *s);
    cl_status_t (*load)(ngsi_store_t *s, const ngsi_key_t *keys, size_t n, ngsi_row_fn fn,
                        void *ctx);
    cl_status_t (*write)(ngsi_store_t *s, const ngsi_write_t *w, size_t n);
    cl_status_t (*sub_put)(ngsi_store_t *s, const char *id, const char *service, const char *path,
                           const char *doc, size_t doc_len);
    cl_status_t (*sub_del)(ngsi_store_t *s, const char *id);
    cl_status_t (*commit)(ngsi_store_t *s);
    void (*rollback)(ngsi_store_t *s);
    /* at open, before any other thread runs: every stored subscription (doc in row->doc) */
    cl_status_t (*sub_load_all)(ngsi_store_t *s, ngsi_row_fn fn, void *ctx);
    /* any thread: rows in seq order, offset/limit applied after the filter */
    cl_status_t (*query)(ngsi_store_t *s, const ngsi_query_t *q, ngsi_row_fn fn, void *ctx,
                         uint64_t *total);
    void (*close)(ngsi_store_t *s);
} ngsi_store_ops_t;

struct ngsi_store {
    const ngsi_store_ops_t *ops;
    cl_ngsi_log_fn log;
    void *log_ctx;
};

/* Opens <dir>/ngsi.sqlite (0600, WAL, synchronous=FULL), creating the schema. */
cl_status_t ngsi_store_sqlite_open(const char *dir, unsigned readers, cl_ngsi_log_fn log,
                                   void *log_ctx, ngsi_store_t **out);
/* Connects to PostgreSQL (the conninfo is never logged), creating the ngsi_* tables. */
cl_status_t ngsi_store_pg_open(const char *conninfo, unsigned readers, cl_ngsi_log_fn log,
                               void *log_ctx, ngsi_store_t **out);

#define NGSI_STORE_SCHEMA_VERSION 1

/* A query's SQL text and its parameters (ngsi_store.c): placeholders only. */
#define NGSI_SQL_MAX_PARAMS (1 + 3 * NGSI_MAX_QUERY_PATHS + 2 * NGSI_MAX_LIST + 4)
typedef struct ngsi_sql {
    ngsi_buf_t sql;
    char ph; /* '?' (SQLite ?N) or '$' (PostgreSQL $N) */
    size_t np;
    const char *params[NGSI_SQL_MAX_PARAMS];
    char scratch[2 * NGSI_MAX_QUERY_PATHS][NGSI_PATH_SIZE + 2];
} ngsi_sql_t;

void ngsi_sql_init(ngsi_sql_t *q, char ph);
void ngsi_sql_free(ngsi_sql_t *q);
/* Appends " WHERE service = .. AND (paths) AND id IN (..) AND type IN (..)". */
bool ngsi_sql_where(ngsi_sql_t *q, const ngsi_query_t *qq);

/* A log line from a store (bounded, format checked). */
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void ngsi_store_log(const ngsi_store_t *s, int level, const char *fmt, ...);
/* A database message made safe for one log line (no quotes, control bytes). */
void ngsi_store_clean_msg(char *out, size_t size, const char *msg);

#endif
