/*
 * runtime.c - the host-side runtime API (cloister/runtime.h): runs the
 * trusted core either in this process on the simulated platform
 * (CL_RUNTIME_SIM) or in a child process `cloister-core` (CL_RUNTIME_PROCESS)
 * spoken to over a socketpair (channel.h). HOST SIDE.
 *
 * Both kinds give the core the same view of the host: a proxy table built
 * here (px_*) sits between the core and the caller's cl_host_ops_t:
 *   - quote is the simulated quoting enclave (in-process: cl_sim_qe_quote on
 *     this process's platform; process runtime: the core process runs its
 *     own QE, see core_main.c), whatever the caller's quote slot holds;
 *   - log lines are truncated to CL_CORE_MAX_LOG_LINE, control characters
 *     removed, non-ASCII bytes replaced by '?', the level clamped;
 *   - byte strings larger than CL_CHAN_MAX_DATA are refused (CL_ERR_LIMIT)
 *     and buffer sizes clamped to it (a frame cannot carry more);
 *   - the host's results are checked (status codes in range, lengths within
 *     the sizes asked) and outputs are written only on CL_OK.
 * The process runtime serves the child's OCALL frames through the very same
 * proxy functions, so both kinds behave identically for the same core.
 *
 * Process runtime failure policy: a child that dies, closes the channel or
 * does not answer within the timeout makes the call return CL_ERR_STATE; a
 * child that sends a malformed frame makes it return CL_ERR_BAD_INPUT. In
 * both cases the child is killed and reaped, the reason is logged through
 * the host's log_line, and every later call returns CL_ERR_STATE.
 */
#define _GNU_SOURCE /* close_range, pipe2 */

#include "cloister/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "cloister/tee_sim.h"
#include "runtime_priv.h"

/** How long the host waits for a frame from the core process. */
#define CL_RUNTIME_TIMEOUT_MS 30000
/** How long close waits for the core process to exit before SIGKILL. */
#define CL_RUNTIME_CLOSE_WAIT_MS 5000

struct cl_runtime {
    cl_runtime_kind_t kind;
    cl_host_ops_t host;  /* the caller's table (copied) */
    cl_host_ops_t proxy; /* what the core sees; ctx = this runtime */
    bool busy;           /* inside an ecall (re-entry from an ocall is refused) */
    bool broken;         /* process runtime: the child is gone */
    /* sim */
    cl_sim_platform_t *platform;
    cl_sim_enclave_t *enclave;
    const cl_core_ecalls_t *ecalls;
    /* both */
    cl_core_handle_t handle;
    bool opened;
    /* process */
    pid_t pid;
    bool reaped;
    cl_chan_t ch;
};

/* ------------------------------------------------------------------ */
/* logging                                                             */

__attribute__((format(printf, 3, 4))) static void rt_log(const cl_runtime_t *rt, int level,
                                                         const char *fmt, ...)
{
    if (rt->host.log_line == NULL)
        return;
    char line[CL_CORE_MAX_LOG_LINE + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    rt->host.log_line(rt->host.ctx, level, line);
}

/* Delivers a core log line (len bytes, not necessarily NUL-terminated). */
static void deliver_log(const cl_runtime_t *rt, int level, const uint8_t *p, size_t len)
{
    if (rt->host.log_line == NULL)
        return;
    char line[CL_CORE_MAX_LOG_LINE + 1];
    size_t n = 0;
    for (size_t i = 0; i < len && n < CL_CORE_MAX_LOG_LINE; i++) {
        uint8_t c = p[i];
        if (c == 0)
            break;
        if (c < 0x20 || c == 0x7f)
            continue;
        line[n++] = c >= 0x80 ? '?' : (char)c;
    }
    line[n] = 0;
    if (level < CL_LOG_ERROR)
        level = CL_LOG_ERROR;
    if (level > CL_LOG_DEBUG)
        level = CL_LOG_DEBUG;
    rt->host.log_line(rt->host.ctx, level, line);
}

/* ------------------------------------------------------------------ */
/* the proxy host table (both kinds)                                   */

static size_t clamp_size(size_t s)
{
    return s > CL_CHAN_MAX_DATA ? CL_CHAN_MAX_DATA : s;
}

/* A status the host returned: anything outside cl_status_t is a host bug. */
static cl_status_t host_status(cl_status_t st)
{
    bool ok;
    cl_status_t r = cl_chan_status((int32_t)st, &ok);
    return ok ? r : CL_FAIL(CL_ERR_BAD_INPUT);
}

static cl_status_t px_log_append(void *ctx, uint64_t counter, const uint8_t *rec, size_t len)
{
    cl_runtime_t *rt = ctx;
    if (len > CL_CHAN_MAX_DATA)
        return CL_FAIL(CL_ERR_LIMIT);
    return host_status(rt->host.log_append(rt->host.ctx, counter, rec, len));
}

static cl_status_t px_log_read(void *ctx, uint64_t counter, uint64_t *got_counter, uint8_t *buf,
                               size_t size, size_t *len)
{
    cl_runtime_t *rt = ctx;
    uint64_t got = 0;
    size_t n = 0;
    size = clamp_size(size);
    cl_status_t st = host_status(rt->host.log_read(rt->host.ctx, counter, &got, buf, size, &n));
    if (st != CL_OK)
        return st;
    if (n > size)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *got_counter = got;
    *len = n;
    return CL_OK;
}

static cl_status_t px_log_compact(void *ctx, uint64_t before)
{
    cl_runtime_t *rt = ctx;
    return host_status(rt->host.log_compact(rt->host.ctx, before));
}

static cl_status_t px_snapshot_put(void *ctx, const uint8_t *blob, size_t len)
{
    cl_runtime_t *rt = ctx;
    if (len > CL_CHAN_MAX_DATA)
        return CL_FAIL(CL_ERR_LIMIT);
    return host_status(rt->host.snapshot_put(rt->host.ctx, blob, len));
}

static cl_status_t px_snapshot_get(void *ctx, uint8_t *buf, size_t size, size_t *len)
{
    cl_runtime_t *rt = ctx;
    size_t n = 0;
    size = clamp_size(size);
    cl_status_t st = host_status(rt->host.snapshot_get(rt->host.ctx, buf, size, &n));
    if (st != CL_OK)
        return st;
    if (n > size)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *len = n;
    return CL_OK;
}

static cl_status_t px_archive_put(void *ctx, const cl_archive_rec_t *recs, size_t n, uint64_t *ids)
{
    cl_runtime_t *rt = ctx;
    size_t total = 4;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].len > CL_CHAN_MAX_DATA - total)
            return CL_FAIL(CL_ERR_LIMIT);
        total += 16 + 8 + 4 + recs[i].len;
        if (total > CL_CHAN_MAX_DATA)
            return CL_FAIL(CL_ERR_LIMIT);
    }
    return host_status(rt->host.archive_put(rt->host.ctx, recs, n, ids));
}

static cl_status_t px_archive_scan(void *ctx, const uint8_t tag[16], uint64_t from, uint64_t to,
                                   uint64_t after_id, size_t max_records, uint8_t *buf, size_t size,
                                   size_t *len, size_t *n)
{
    cl_runtime_t *rt = ctx;
    size_t got_len = 0, got_n = 0;
    size = clamp_size(size);
    cl_status_t st = host_status(rt->host.archive_scan(rt->host.ctx, tag, from, to, after_id,
                                                       max_records, buf, size, &got_len, &got_n));
    if (st != CL_OK)
        return st;
    if (got_len > size || got_n > max_records)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *len = got_len;
    *n = got_n;
    return CL_OK;
}

static cl_status_t px_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                           size_t len)
{
    cl_runtime_t *rt = ctx;
    if (len > CL_CHAN_MAX_DATA)
        return CL_FAIL(CL_ERR_LIMIT);
    return host_status(rt->host.send(rt->host.ctx, peer, transport, msg, len));
}

static cl_status_t px_time_now(void *ctx, int64_t *unix_ms)
{
    cl_runtime_t *rt = ctx;
    int64_t t = 0;
    cl_status_t st = host_status(rt->host.time_now(rt->host.ctx, &t));
    if (st == CL_OK)
        *unix_ms = t;
    return st;
}

/* The simulated quoting enclave (in-process runtime only). */
static cl_status_t px_quote(void *ctx, const uint8_t *report, size_t report_len, uint8_t *quote,
                            size_t size, size_t *len)
{
    cl_runtime_t *rt = ctx;
    size_t n = 0;
    cl_status_t st = cl_sim_qe_quote(rt->platform, report, report_len, quote, size, &n);
    if (st != CL_OK)
        return st;
    if (n > size)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *len = n;
    return CL_OK;
}

static void px_log_line(void *ctx, int level, const char *line)
{
    cl_runtime_t *rt = ctx;
    if (line == NULL)
        return;
    deliver_log(rt, level, (const uint8_t *)line, strnlen(line, CL_CORE_MAX_LOG_LINE));
}

static void build_proxy(cl_runtime_t *rt)
{
    const cl_host_ops_t *h = &rt->host;
    cl_host_ops_t *p = &rt->proxy;
    memset(p, 0, sizeof(*p));
    p->version = CL_HOST_OPS_VERSION;
    p->ctx = rt;
    p->log_append = h->log_append ? px_log_append : NULL;
    p->log_read = h->log_read ? px_log_read : NULL;
    p->log_compact = h->log_compact ? px_log_compact : NULL;
    p->snapshot_put = h->snapshot_put ? px_snapshot_put : NULL;
    p->snapshot_get = h->snapshot_get ? px_snapshot_get : NULL;
    p->archive_put = h->archive_put ? px_archive_put : NULL;
    p->archive_scan = h->archive_scan ? px_archive_scan : NULL;
    p->send = h->send ? px_send : NULL;
    p->time_now = h->time_now ? px_time_now : NULL;
    p->quote = rt->kind == CL_RUNTIME_SIM ? px_quote : NULL;
    p->log_line = h->log_line ? px_log_line : NULL;
}

static uint16_t ops_mask(const cl_host_ops_t *h)
{
    uint16_t m = 0;
    m |= h->log_append ? CL_OPS_BIT_LOG_APPEND : 0;
    m |= h->log_read ? CL_OPS_BIT_LOG_READ : 0;
    m |= h->log_compact ? CL_OPS_BIT_LOG_COMPACT : 0;
    m |= h->snapshot_put ? CL_OPS_BIT_SNAPSHOT_PUT : 0;
    m |= h->snapshot_get ? CL_OPS_BIT_SNAPSHOT_GET : 0;
    m |= h->archive_put ? CL_OPS_BIT_ARCHIVE_PUT : 0;
    m |= h->archive_scan ? CL_OPS_BIT_ARCHIVE_SCAN : 0;
    m |= h->send ? CL_OPS_BIT_SEND : 0;
    m |= h->time_now ? CL_OPS_BIT_TIME_NOW : 0;
    m |= h->log_line ? CL_OPS_BIT_LOG_LINE : 0;
    return m;
}

/* ------------------------------------------------------------------ */
/* CL_RUNTIME_SIM                                                       */

static cl_status_t sim_open(cl_runtime_t *rt, const cl_runtime_config_t *cfg)
{
    cl_status_t st = cl_sim_platform_open(cfg->platform_dir, &rt->platform);
    if (st != CL_OK) {
        rt_log(rt, CL_LOG_ERROR, "runtime sim: cannot open the simulated platform: %s",
               cl_status_str(st));
        return st;
    }
    st = cl_sim_enclave_load(cfg->core_image, &rt->enclave);
    if (st != CL_OK) {
        rt_log(rt, CL_LOG_ERROR, "runtime sim: cannot load the core image: %s", cl_status_str(st));
        return st;
    }
    rt->ecalls = cl_sim_enclave_ecalls(rt->enclave);
    if (rt->ecalls == NULL || rt->ecalls->version != CL_CORE_API_VERSION ||
        rt->ecalls->open == NULL || rt->ecalls->handle == NULL || rt->ecalls->tick == NULL ||
        rt->ecalls->attest == NULL || rt->ecalls->close == NULL) {
        rt_log(rt, CL_LOG_ERROR, "runtime sim: the core image's ecall table is unusable");
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    }
    const cl_tee_platform_t *ptab = NULL;
    st = cl_sim_platform_bind(rt->platform, cl_sim_enclave_identity(rt->enclave), &ptab);
    if (st != CL_OK)
        return st;
    st = rt->ecalls->open(ptab, &rt->proxy, &cfg->core, &rt->handle);
    if (st != CL_OK)
        return st;
    rt->opened = true;
    return CL_OK;
}

static void sim_close(cl_runtime_t *rt)
{
    if (rt->opened)
        rt->ecalls->close(rt->handle);
    rt->opened = false;
    if (rt->enclave != NULL)
        cl_sim_enclave_unload(rt->enclave);
    if (rt->platform != NULL)
        cl_sim_platform_close(rt->platform);
    rt->enclave = NULL;
    rt->platform = NULL;
}

/* ------------------------------------------------------------------ */
/* CL_RUNTIME_PROCESS: child management                                 */

static void describe_exit(int ws, char *buf, size_t size)
{
    if (WIFEXITED(ws))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(ws));
    else if (WIFSIGNALED(ws))
        snprintf(buf, size, "killed by signal %d", WTERMSIG(ws));
    else
        snprintf(buf, size, "stopped");
}

/* Waits up to ms for the child; true when reaped (*ws set). */
static bool wait_child(cl_runtime_t *rt, int ms, int *ws)
{
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(rt->pid, ws, WNOHANG);
        if (r == rt->pid || (r < 0 && errno == ECHILD)) {
            rt->reaped = true;
            if (r < 0)
                *ws = 0;
            return true;
        }
        if (r < 0 && errno != EINTR)
            return false;
        if (waited >= ms)
            return false;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Kills (if needed) and reaps the child; describes how it ended. */
static void end_child(cl_runtime_t *rt, int grace_ms, char *how, size_t how_size)
{
    snprintf(how, how_size, "already reaped");
    if (rt->pid <= 0 || rt->reaped)
        return;
    int ws = 0;
    if (wait_child(rt, grace_ms, &ws)) {
        describe_exit(ws, how, how_size);
        return;
    }
    kill(rt->pid, SIGKILL);
    while (waitpid(rt->pid, &ws, 0) < 0 && errno == EINTR)
        ;
    rt->reaped = true;
    snprintf(how, how_size, "killed by the host (SIGKILL)");
}

/* The child is unusable: log, kill, reap, remember. Returns `ret`. */
static cl_status_t proc_give_up(cl_runtime_t *rt, cl_status_t ret, const char *what)
{
    char how[64];
    cl_chan_err_t e = rt->ch.err;
    rt->broken = true;
    /* If the channel saw EOF the child is exiting or dead: give it a moment. */
    end_child(rt, e == CL_CHAN_EOF ? 200 : 0, how, sizeof(how));
    if (e == CL_CHAN_OK)
        rt_log(rt, CL_LOG_ERROR, "runtime process: cloister-core (pid %ld): %s; child %s",
               (long)rt->pid, what, how);
    else
        rt_log(rt, CL_LOG_ERROR, "runtime process: cloister-core (pid %ld): %s (%s); child %s",
               (long)rt->pid, what, cl_chan_err_str(e), how);
    return CL_FAIL(ret);
}

/* ------------------------------------------------------------------ */
/* CL_RUNTIME_PROCESS: serving the child's ocalls                      */

/* The child broke the protocol (why: a decoder's message). */
static cl_status_t violation(cl_runtime_t *rt, const char *why)
{
    char what[128];
    snprintf(what, sizeof(what), "protocol violation: %s", why);
    return proc_give_up(rt, CL_ERR_BAD_INPUT, what);
}

#define VIOLATION(msg) violation(rt, msg)

/* Sends the OCALL_RESULT built so far. */
static cl_status_t answer(cl_runtime_t *rt)
{
    cl_status_t st = cl_chan_send(&rt->ch);
    if (st != CL_OK)
        return proc_give_up(rt, CL_ERR_STATE, "cannot answer an ocall");
    return CL_OK;
}

static void begin_result(cl_runtime_t *rt, cl_status_t st)
{
    cl_chan_begin(&rt->ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&rt->ch, (uint32_t)(int32_t)st);
}

/* Allocates a host-side buffer for a size the child asked for (clamped). */
static uint8_t *alloc_out(size_t *size)
{
    *size = clamp_size(*size);
    return malloc(*size ? *size : 1);
}

/* Serves one ocall frame. CL_OK when answered; otherwise the child is gone. */
static cl_status_t serve_ocall(cl_runtime_t *rt, uint8_t type, cl_rd_t *rd)
{
    const cl_host_ops_t *px = &rt->proxy;
    cl_status_t st;
    cl_ocall_frame_t f;
    const char *bad = cl_ocall_decode(type, rd, &f);
    if (bad != NULL)
        return violation(rt, bad);
    switch (type) {
    case CL_FRAME_OCALL_LOG_LINE:
        if (rt->host.log_line != NULL)
            deliver_log(rt, f.u.log_line.level, f.u.log_line.line, f.u.log_line.len);
        return CL_OK; /* no answer */
    case CL_FRAME_OCALL_LOG_APPEND:
        st = px->log_append ? px->log_append(rt, f.u.log_append.counter, f.u.log_append.rec,
                                             f.u.log_append.len)
                            : CL_FAIL(CL_ERR_UNSUPPORTED);
        begin_result(rt, st);
        return answer(rt);
    case CL_FRAME_OCALL_LOG_READ: {
        size_t size = f.u.log_read.size;
        uint8_t *buf = alloc_out(&size);
        uint64_t got = 0;
        size_t len = 0;
        if (buf == NULL)
            st = CL_FAIL(CL_ERR_FULL);
        else if (px->log_read == NULL)
            st = CL_FAIL(CL_ERR_UNSUPPORTED);
        else
            st = px->log_read(rt, f.u.log_read.counter, &got, buf, size, &len);
        begin_result(rt, st);
        cl_chan_put_u64(&rt->ch, st == CL_OK ? got : 0);
        cl_chan_put_bytes(&rt->ch, buf, st == CL_OK ? len : 0);
        free(buf);
        return answer(rt);
    }
    case CL_FRAME_OCALL_LOG_COMPACT:
        st = px->log_compact ? px->log_compact(rt, f.u.log_compact.before)
                             : CL_FAIL(CL_ERR_UNSUPPORTED);
        begin_result(rt, st);
        return answer(rt);
    case CL_FRAME_OCALL_SNAPSHOT_PUT:
        st = px->snapshot_put ? px->snapshot_put(rt, f.u.snapshot_put.blob, f.u.snapshot_put.len)
                              : CL_FAIL(CL_ERR_UNSUPPORTED);
        begin_result(rt, st);
        return answer(rt);
    case CL_FRAME_OCALL_SNAPSHOT_GET: {
        size_t size = f.u.snapshot_get.size;
        uint8_t *buf = alloc_out(&size);
        size_t len = 0;
        if (buf == NULL)
            st = CL_FAIL(CL_ERR_FULL);
        else if (px->snapshot_get == NULL)
            st = CL_FAIL(CL_ERR_UNSUPPORTED);
        else
            st = px->snapshot_get(rt, buf, size, &len);
        begin_result(rt, st);
        cl_chan_put_bytes(&rt->ch, buf, st == CL_OK ? len : 0);
        free(buf);
        return answer(rt);
    }
    case CL_FRAME_OCALL_ARCHIVE_PUT: {
        size_t n = f.u.archive_put.n;
        cl_archive_rec_t *recs = calloc(n ? n : 1, sizeof(*recs));
        uint64_t *ids = calloc(n ? n : 1, sizeof(*ids));
        if (recs == NULL || ids == NULL) {
            free(recs);
            free(ids);
            st = CL_FAIL(CL_ERR_FULL);
            begin_result(rt, st);
            cl_chan_put_u32(&rt->ch, 0);
            return answer(rt);
        }
        if (!cl_ocall_decode_archive_recs(rd, recs, n)) {
            free(recs);
            free(ids);
            return VIOLATION("malformed archive_put");
        }
        st = px->archive_put ? px->archive_put(rt, recs, n, ids) : CL_FAIL(CL_ERR_UNSUPPORTED);
        begin_result(rt, st);
        cl_chan_put_u32(&rt->ch, st == CL_OK ? (uint32_t)n : 0);
        for (size_t i = 0; st == CL_OK && i < n; i++)
            cl_chan_put_u64(&rt->ch, ids[i]);
        free(recs);
        free(ids);
        return answer(rt);
    }
    case CL_FRAME_OCALL_ARCHIVE_SCAN: {
        uint64_t max_records = f.u.archive_scan.max_records;
        if (max_records > SIZE_MAX)
            max_records = SIZE_MAX;
        size_t size = f.u.archive_scan.size;
        uint8_t *buf = alloc_out(&size);
        size_t len = 0, n = 0;
        if (buf == NULL)
            st = CL_FAIL(CL_ERR_FULL);
        else if (px->archive_scan == NULL)
            st = CL_FAIL(CL_ERR_UNSUPPORTED);
        else
            st = px->archive_scan(rt, f.u.archive_scan.tag, f.u.archive_scan.from,
                                  f.u.archive_scan.to, f.u.archive_scan.after_id,
                                  (size_t)max_records, buf, size, &len, &n);
        begin_result(rt, st);
        cl_chan_put_u64(&rt->ch, st == CL_OK ? n : 0);
        cl_chan_put_bytes(&rt->ch, buf, st == CL_OK ? len : 0);
        free(buf);
        return answer(rt);
    }
    case CL_FRAME_OCALL_SEND:
        st = px->send ? px->send(rt, f.u.send.peer, f.u.send.transport, f.u.send.msg, f.u.send.len)
                      : CL_FAIL(CL_ERR_UNSUPPORTED);
        begin_result(rt, st);
        return answer(rt);
    case CL_FRAME_OCALL_TIME_NOW: {
        int64_t t = 0;
        st = px->time_now ? px->time_now(rt, &t) : CL_FAIL(CL_ERR_UNSUPPORTED);
        begin_result(rt, st);
        cl_chan_put_u64(&rt->ch, st == CL_OK ? (uint64_t)t : 0);
        return answer(rt);
    }
    default: return VIOLATION("unexpected frame type"); /* cl_ocall_decode refused it */
    }
}

/*
 * Sends the ecall frame built in rt->ch and serves ocalls until the
 * ECALL_RESULT arrives: its status is returned, *value and out filled.
 * out_size is the size the child was told (results above it are refused).
 */
static cl_status_t proc_call(cl_runtime_t *rt, uint64_t *value, uint8_t *out, size_t out_size,
                             size_t *out_len)
{
    cl_status_t st = cl_chan_send(&rt->ch);
    if (st == CL_ERR_LIMIT)
        return st; /* frame too large: nothing was sent */
    if (st != CL_OK)
        return proc_give_up(rt, CL_ERR_STATE, "cannot send an ecall");
    for (;;) {
        uint8_t type;
        cl_rd_t rd;
        st = cl_chan_recv(&rt->ch, &type, &rd);
        if (st == CL_ERR_BAD_INPUT)
            return VIOLATION("bad frame length");
        if (st != CL_OK)
            return proc_give_up(rt, CL_ERR_STATE,
                                rt->ch.err == CL_CHAN_TIMEOUT ? "no answer" : "the core is gone");
        if (type != CL_FRAME_ECALL_RESULT) {
            st = serve_ocall(rt, type, &rd);
            if (st != CL_OK)
                return st;
            continue;
        }
        cl_ecall_result_t r;
        const char *bad = cl_ecall_result_decode(&rd, out_size, out != NULL, &r);
        if (bad != NULL)
            return violation(rt, bad);
        if (value != NULL)
            *value = r.value;
        if (r.status == CL_OK && out_len != NULL) {
            if (r.len > 0)
                memcpy(out, r.out, r.len);
            *out_len = r.len;
        }
        return r.status;
    }
}

/* Where cloister-core is: cfg->core_exe, or next to the core image. */
static char *find_core_exe(const cl_runtime_config_t *cfg)
{
    if (cfg->core_exe != NULL)
        return strdup(cfg->core_exe);
    const char *slash = strrchr(cfg->core_image, '/');
    size_t dlen = slash ? (size_t)(slash - cfg->core_image) + 1 : 0;
    static const char name[] = "cloister-core";
    char *p = malloc(dlen + sizeof(name));
    if (p == NULL)
        return NULL;
    memcpy(p, cfg->core_image, dlen);
    memcpy(p + dlen, name, sizeof(name));
    if (dlen == 0) { /* image in the current directory: exec needs a path */
        char *q = malloc(2 + sizeof(name));
        if (q != NULL)
            snprintf(q, 2 + sizeof(name), "./%s", name);
        free(p);
        p = q;
    }
    return p;
}

static cl_status_t proc_spawn(cl_runtime_t *rt, const cl_runtime_config_t *cfg)
{
    char *exe = find_core_exe(cfg);
    if (exe == NULL)
        return CL_FAIL(CL_ERR_FULL);
    int sv[2] = {-1, -1}, ep[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        rt_log(rt, CL_LOG_ERROR, "runtime process: socketpair: %s", strerror(errno));
        free(exe);
        return CL_FAIL(CL_ERR_STATE);
    }
    if (pipe2(ep, O_CLOEXEC) != 0) {
        rt_log(rt, CL_LOG_ERROR, "runtime process: pipe: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        free(exe);
        return CL_FAIL(CL_ERR_STATE);
    }
    char fdarg[16];
    snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
    char *argv[8];
    int a = 0;
    argv[a++] = exe;
    argv[a++] = (char *)(uintptr_t) "--fd";
    argv[a++] = fdarg;
    argv[a++] = (char *)(uintptr_t) "--image";
    argv[a++] = (char *)(uintptr_t)cfg->core_image;
    if (cfg->platform_dir != NULL) {
        argv[a++] = (char *)(uintptr_t) "--platform";
        argv[a++] = (char *)(uintptr_t)cfg->platform_dir;
    }
    argv[a] = NULL;

    pid_t pid = fork();
    if (pid < 0) {
        rt_log(rt, CL_LOG_ERROR, "runtime process: fork: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        close(ep[0]);
        close(ep[1]);
        free(exe);
        return CL_FAIL(CL_ERR_STATE);
    }
    if (pid == 0) {
        /* Child: async-signal-safe calls only. Every inherited fd but the
         * channel (and stdio) is closed at exec. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (close_range(3, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
            long max = sysconf(_SC_OPEN_MAX);
            if (max < 0 || max > 65536)
                max = 65536;
            for (int fd = 3; fd < max; fd++)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        if (fcntl(sv[1], F_SETFD, 0) == 0)
            execv(exe, argv);
        int e = errno;
        ssize_t w = write(ep[1], &e, sizeof(e));
        (void)w;
        _exit(127);
    }
    close(sv[1]);
    close(ep[1]);
    rt->pid = pid;
    int child_errno = 0;
    ssize_t r;
    do
        r = read(ep[0], &child_errno, sizeof(child_errno));
    while (r < 0 && errno == EINTR);
    close(ep[0]);
    cl_chan_init(&rt->ch, sv[0], CL_RUNTIME_TIMEOUT_MS);
    if (r > 0) {
        char how[64];
        end_child(rt, 1000, how, sizeof(how));
        rt->broken = true;
        rt_log(rt, CL_LOG_ERROR, "runtime process: cannot execute %s: %s", exe,
               strerror(child_errno));
        free(exe);
        return CL_FAIL(child_errno == ENOENT || child_errno == EACCES ? CL_ERR_NOT_FOUND
                                                                      : CL_ERR_STATE);
    }
    free(exe);
    return CL_OK;
}

static cl_status_t proc_open(cl_runtime_t *rt, const cl_runtime_config_t *cfg)
{
    cl_status_t st = proc_spawn(rt, cfg);
    if (st != CL_OK)
        return st;
    cl_chan_begin(&rt->ch, CL_FRAME_ECALL_OPEN);
    cl_chan_put_u32(&rt->ch, CL_CORE_API_VERSION);
    cl_chan_put_u32(&rt->ch, cfg->core.version);
    cl_chan_put_u32(&rt->ch, cfg->core.snapshot_every);
    cl_chan_put_u32(&rt->ch, cfg->core.max_sessions);
    cl_chan_put_u32(&rt->ch, cfg->core.session_ttl_s);
    cl_chan_put_u16(&rt->ch, cfg->core.seal_policy);
    cl_chan_put_u16(&rt->ch, cfg->core.reserved);
    cl_chan_put_u16(&rt->ch, ops_mask(&rt->host));
    uint64_t handle = 0;
    st = proc_call(rt, &handle, NULL, 0, NULL);
    if (st != CL_OK)
        return st;
    rt->handle = handle;
    rt->opened = true;
    return CL_OK;
}

static void proc_close(cl_runtime_t *rt)
{
    char how[64];
    if (rt->pid <= 0)
        return;
    if (!rt->broken && rt->opened) {
        rt->ch.timeout_ms = rt->ch.timeout_ms >= 0 && rt->ch.timeout_ms < CL_RUNTIME_CLOSE_WAIT_MS
                                ? rt->ch.timeout_ms
                                : CL_RUNTIME_CLOSE_WAIT_MS;
        cl_chan_begin(&rt->ch, CL_FRAME_ECALL_CLOSE);
        cl_chan_put_u64(&rt->ch, rt->handle);
        (void)proc_call(rt, NULL, NULL, 0, NULL);
    }
    /* Closing our end makes a healthy child see EOF and exit. */
    if (rt->ch.fd >= 0) {
        close(rt->ch.fd);
        rt->ch.fd = -1;
    }
    end_child(rt, CL_RUNTIME_CLOSE_WAIT_MS, how, sizeof(how));
}

/* ------------------------------------------------------------------ */
/* the API                                                              */

cl_status_t cl_runtime_open(const cl_runtime_config_t *cfg, const cl_host_ops_t *host,
                            cl_runtime_t **out)
{
    if (out != NULL)
        *out = NULL;
    if (cfg == NULL || host == NULL || out == NULL || cfg->core_image == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (cfg->kind != CL_RUNTIME_SIM && cfg->kind != CL_RUNTIME_PROCESS)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (host->version != CL_HOST_OPS_VERSION)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    cl_runtime_t *rt = calloc(1, sizeof(*rt));
    if (rt == NULL)
        return CL_FAIL(CL_ERR_FULL);
    rt->kind = cfg->kind;
    rt->host = *host;
    rt->host.quote = NULL; /* never used: the runtime provides the QE */
    rt->ch.fd = -1;
    build_proxy(rt);
    rt->busy = true;
    cl_status_t st = rt->kind == CL_RUNTIME_SIM ? sim_open(rt, cfg) : proc_open(rt, cfg);
    rt->busy = false;
    if (st != CL_OK) {
        cl_runtime_close(rt);
        return st;
    }
    *out = rt;
    return CL_OK;
}

/* What the core gets for an empty input given as NULL (the process runtime
 * always hands it a buffer). */
static const uint8_t no_bytes[1] = {0};

/* Common entry checks of an ecall. */
static cl_status_t enter(cl_runtime_t *rt)
{
    if (rt == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (rt->busy) /* an ocall handler called back into the runtime */
        return CL_FAIL(CL_ERR_STATE);
    if (!rt->opened || rt->broken)
        return CL_FAIL(CL_ERR_STATE);
    rt->busy = true;
    return CL_OK;
}

cl_status_t cl_runtime_handle(cl_runtime_t *rt, const uint8_t *in, size_t in_len, uint8_t *out,
                              size_t out_size, size_t *out_len)
{
    if ((in == NULL && in_len > 0) || out == NULL || out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (in_len > CL_CHAN_MAX_DATA)
        return CL_FAIL(CL_ERR_LIMIT);
    cl_status_t st = enter(rt);
    if (st != CL_OK)
        return st;
    if (out_size > CL_CORE_MAX_BATCH_BYTES)
        out_size = CL_CORE_MAX_BATCH_BYTES;
    if (rt->kind == CL_RUNTIME_SIM) {
        size_t n = 0;
        st = rt->ecalls->handle(rt->handle, in ? in : no_bytes, in_len, out, out_size, &n);
        if (st == CL_OK && n > out_size) /* a core bug: as cloister-core does */
            st = CL_FAIL(CL_ERR_STATE);
        if (st == CL_OK)
            *out_len = n; /* as the process runtime: only on success */
    } else {
        cl_chan_begin(&rt->ch, CL_FRAME_ECALL_HANDLE);
        cl_chan_put_u64(&rt->ch, rt->handle);
        cl_chan_put_u32(&rt->ch, (uint32_t)out_size);
        cl_chan_put_bytes(&rt->ch, in, in_len);
        st = proc_call(rt, NULL, out, out_size, out_len);
    }
    rt->busy = false;
    return st;
}

cl_status_t cl_runtime_tick(cl_runtime_t *rt, int64_t now_ms)
{
    cl_status_t st = enter(rt);
    if (st != CL_OK)
        return st;
    if (rt->kind == CL_RUNTIME_SIM) {
        st = rt->ecalls->tick(rt->handle, now_ms);
    } else {
        cl_chan_begin(&rt->ch, CL_FRAME_ECALL_TICK);
        cl_chan_put_u64(&rt->ch, rt->handle);
        cl_chan_put_u64(&rt->ch, (uint64_t)now_ms);
        st = proc_call(rt, NULL, NULL, 0, NULL);
    }
    rt->busy = false;
    return st;
}

cl_status_t cl_runtime_attest(cl_runtime_t *rt, const uint8_t *nonce, size_t nonce_len,
                              uint8_t *out, size_t out_size, size_t *out_len)
{
    if ((nonce == NULL && nonce_len > 0) || out == NULL || out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (nonce_len > CL_CHAN_MAX_DATA)
        return CL_FAIL(CL_ERR_LIMIT);
    cl_status_t st = enter(rt);
    if (st != CL_OK)
        return st;
    if (out_size > CL_CORE_MAX_EVIDENCE)
        out_size = CL_CORE_MAX_EVIDENCE;
    if (rt->kind == CL_RUNTIME_SIM) {
        size_t n = 0;
        st = rt->ecalls->attest(rt->handle, nonce ? nonce : no_bytes, nonce_len, out, out_size, &n);
        if (st == CL_OK && n > out_size)
            st = CL_FAIL(CL_ERR_STATE);
        if (st == CL_OK)
            *out_len = n;
    } else {
        cl_chan_begin(&rt->ch, CL_FRAME_ECALL_ATTEST);
        cl_chan_put_u64(&rt->ch, rt->handle);
        cl_chan_put_u32(&rt->ch, (uint32_t)out_size);
        cl_chan_put_bytes(&rt->ch, nonce, nonce_len);
        st = proc_call(rt, NULL, out, out_size, out_len);
    }
    rt->busy = false;
    return st;
}

void cl_runtime_close(cl_runtime_t *rt)
{
    if (rt == NULL)
        return;
    if (rt->kind == CL_RUNTIME_SIM)
        sim_close(rt);
    else
        proc_close(rt);
    cl_chan_free(&rt->ch);
    memset(rt, 0, sizeof(*rt));
    free(rt);
}

const char *cl_runtime_name(const cl_runtime_t *rt)
{
    if (rt == NULL)
        return "none";
    return rt->kind == CL_RUNTIME_SIM ? "sim" : "process";
}

long cl_runtime_pid(const cl_runtime_t *rt)
{
    if (rt == NULL || rt->kind != CL_RUNTIME_PROCESS)
        return 0;
    return (long)rt->pid;
}

void cl_runtime_test_set_timeout(cl_runtime_t *rt, int timeout_ms)
{
    if (rt != NULL)
        rt->ch.timeout_ms = timeout_ms;
}
