/*
 * storage_select.c - builds the ONE ocall table the core gets from the
 * configured backends (storage.h: cl_storage_*). UNTRUSTED HOST SIDE.
 *
 * What: sealed log + snapshot from `files` (default) or `pg`; archive from
 * `sqlite` (default), `pg` or `files`; send/time/quote/log_line always from
 * the file backend, which also owns (creates 0700, flocks) the data
 * directory. Each slot of the combined table forwards to the backend that
 * owns it. cl_storage_sync is the group-commit point: the daemon calls it
 * after every handle() batch and tick, and sends the batch's responses only
 * when it returns CL_OK.
 *
 * Why a separate layer: the backends stay independent and individually
 * testable; the daemon sees one table and one sync call.
 */
#include "storage.h"
#include "commit_pipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { B_FILES, B_SQLITE, B_PG } backend_t;

struct cl_storage {
    cl_host_ops_t ops;
    backend_t log_kind, arch_kind;
    cl_files_t *files;
    cl_sqlite_t *sqlite;
    cl_pg_t *pg;
    const cl_host_ops_t *log_ops;  /* log_* + snapshot_* */
    const cl_host_ops_t *arch_ops; /* archive_* */
    const cl_host_ops_t *misc_ops; /* send, time_now, quote, log_line */
    char desc[32];
};

/* ------------------------------------------------------------ forwarding */

static cl_status_t s_log_append(void *ctx, uint64_t counter, const uint8_t *rec, size_t len)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->log_ops;
    return o->log_append(o->ctx, counter, rec, len);
}

static cl_status_t s_log_read(void *ctx, uint64_t counter, uint64_t *got_counter, uint8_t *buf,
                              size_t size, size_t *len)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->log_ops;
    return o->log_read(o->ctx, counter, got_counter, buf, size, len);
}

static cl_status_t s_log_compact(void *ctx, uint64_t before)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->log_ops;
    return o->log_compact(o->ctx, before);
}

static cl_status_t s_snapshot_put(void *ctx, const uint8_t *blob, size_t len)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->log_ops;
    return o->snapshot_put(o->ctx, blob, len);
}

static cl_status_t s_snapshot_get(void *ctx, uint8_t *buf, size_t size, size_t *len)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->log_ops;
    return o->snapshot_get(o->ctx, buf, size, len);
}

static cl_status_t s_archive_put(void *ctx, const cl_archive_rec_t *recs, size_t n, uint64_t *ids)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->arch_ops;
    return o->archive_put(o->ctx, recs, n, ids);
}

static cl_status_t s_archive_scan(void *ctx, const uint8_t tag[16], uint64_t from, uint64_t to,
                                  uint64_t after_id, size_t max_records, uint8_t *buf,
                                  size_t size, size_t *len, size_t *n)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->arch_ops;
    return o->archive_scan(o->ctx, tag, from, to, after_id, max_records, buf, size, len, n);
}

static cl_status_t s_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                          size_t len)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->misc_ops;
    return o->send(o->ctx, peer, transport, msg, len);
}

static cl_status_t s_time_now(void *ctx, int64_t *unix_ms)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->misc_ops;
    return o->time_now(o->ctx, unix_ms);
}

static cl_status_t s_quote(void *ctx, const uint8_t *report, size_t report_len, uint8_t *quote,
                           size_t size, size_t *len)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->misc_ops;
    return o->quote(o->ctx, report, report_len, quote, size, len);
}

static void s_log_line(void *ctx, int level, const char *line)
{
    const cl_host_ops_t *o = ((cl_storage_t *)ctx)->misc_ops;
    o->log_line(o->ctx, level, line);
}

/* ------------------------------------------------------------ open / sync / close */

static int parse_kind(const char *name, const char *dflt, backend_t *out, int allow_sqlite)
{
    if (name == NULL)
        name = dflt;
    if (strcmp(name, "files") == 0)
        *out = B_FILES;
    else if (strcmp(name, "pg") == 0)
        *out = B_PG;
    else if (allow_sqlite && strcmp(name, "sqlite") == 0)
        *out = B_SQLITE;
    else
        return 0;
    return 1;
}

static const char *kind_name(backend_t k)
{
    return k == B_FILES ? "files" : k == B_SQLITE ? "sqlite" : "pg";
}

cl_status_t cl_storage_open(const cl_storage_config_t *cfg, cl_storage_t **out)
{
    if (cfg == NULL || cfg->data_dir == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    backend_t lk, ak;
    if (!parse_kind(cfg->log, "files", &lk, 0) || !parse_kind(cfg->archive, "sqlite", &ak, 1))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((lk == B_PG || ak == B_PG) && (cfg->pg_conninfo == NULL || cfg->pg_conninfo[0] == '\0'))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    cl_storage_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CL_FAIL(CL_ERR_PERSIST);
    s->log_kind = lk;
    s->arch_kind = ak;
    unsigned flags = (lk != B_FILES ? CL_FILES_NO_LOG : 0) | (ak != B_FILES ? CL_FILES_NO_ARCHIVE : 0);
    cl_status_t st = cl_files_open_flags(cfg->data_dir, flags, cfg->log_fn, cfg->log_ctx, &s->files);
    if (st != CL_OK)
        goto fail;
    if (ak == B_SQLITE &&
        (st = cl_sqlite_open(cfg->data_dir, cfg->log_fn, cfg->log_ctx, &s->sqlite)) != CL_OK)
        goto fail;
    if ((lk == B_PG || ak == B_PG) &&
        (st = cl_pg_open(cfg->pg_conninfo, cfg->log_fn, cfg->log_ctx, &s->pg)) != CL_OK)
        goto fail;
    s->misc_ops = cl_files_ops(s->files);
    s->log_ops = lk == B_PG ? cl_pg_ops(s->pg) : cl_files_ops(s->files);
    s->arch_ops = ak == B_PG       ? cl_pg_ops(s->pg)
                  : ak == B_SQLITE ? cl_sqlite_ops(s->sqlite)
                                   : cl_files_ops(s->files);
    snprintf(s->desc, sizeof s->desc, "log=%s archive=%s", kind_name(lk), kind_name(ak));

    s->ops.version = CL_HOST_OPS_VERSION;
    s->ops.ctx = s;
    s->ops.log_append = s_log_append;
    s->ops.log_read = s_log_read;
    s->ops.log_compact = s_log_compact;
    s->ops.snapshot_put = s_snapshot_put;
    s->ops.snapshot_get = s_snapshot_get;
    s->ops.archive_put = s_archive_put;
    s->ops.archive_scan = s_archive_scan;
    s->ops.send = s_send;
    s->ops.time_now = s_time_now;
    s->ops.quote = s_quote;
    s->ops.log_line = s_log_line;
    *out = s;
    return CL_OK;
fail:
    cl_storage_close(s);
    return st;
}

const cl_host_ops_t *cl_storage_ops(cl_storage_t *s)
{
    return s ? &s->ops : NULL;
}

cl_status_t cl_storage_sync(cl_storage_t *s)
{
    if (s == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    switch (s->arch_kind) {
    case B_SQLITE:
        return cl_sqlite_sync(s->sqlite);
    case B_PG:
        return cl_pg_sync(s->pg);
    default:
        return CL_OK; /* files: every archive_put is fsynced before it returns */
    }
}

cl_status_t cl_storage_start_pipeline(cl_storage_t *s, size_t max_queued)
{
    if (s == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (s->arch_kind != B_SQLITE)
        return CL_ERR_UNSUPPORTED;
    return cl_sqlite_start_pipeline(s->sqlite, max_queued);
}

cl_pipe_t *cl_storage_pipe(cl_storage_t *s)
{
    return s != NULL && s->arch_kind == B_SQLITE ? cl_sqlite_pipe(s->sqlite) : NULL;
}

cl_status_t cl_storage_submit(cl_storage_t *s, uint64_t *ticket)
{
    if (s == NULL || ticket == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    cl_pipe_t *p = cl_storage_pipe(s);
    if (p != NULL)
        return cl_pipe_submit(p, ticket);
    *ticket = 0;
    return cl_storage_sync(s);
}

void cl_storage_set_send(cl_storage_t *s, cl_host_send_fn fn, void *ctx)
{
    if (s != NULL)
        cl_files_set_send(s->files, fn, ctx);
}

const char *cl_storage_describe(const cl_storage_t *s)
{
    return s ? s->desc : "";
}

void cl_storage_close(cl_storage_t *s)
{
    if (s == NULL)
        return;
    cl_pg_close(s->pg);
    cl_sqlite_close(s->sqlite);
    cl_files_close(s->files); /* last: releases the data directory lock */
    free(s);
}
