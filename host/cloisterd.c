/*
 * cloisterd.c - the untrusted host daemon: runs the trusted core (sim or
 * process runtime) behind the storage backends chosen by config (files/SQLite/
 * PostgreSQL, storage.h: cl_storage_*) and a CoAP/UDP endpoint.
 *
 * What: configuration (flags over a `key = value` file), structured logging
 * on stderr, one ppoll() event loop that feeds datagrams to the endpoint
 * (which batches them into one handle() ecall per iteration), ticks the core
 * once per second and shuts down cleanly on SIGTERM/SIGINT (closing the
 * runtime makes the core wipe itself; the storage is closed after it).
 *
 * Core-originated messages (the `send` ocall: notifications, answers to
 * HTTP long polls) are routed by transport to the CoAP or the HTTP
 * endpoint. Every handle() and tick() is bracketed by a hold of every
 * endpoint's send queue, the group commit (cl_storage_sync) inside it: what
 * the core sends leaves only after the rows archived with it are durable,
 * and not at all when the ecall or the commit failed.
 *
 * Why so little: the host is untrusted by design. It carries ciphertext and
 * public bootstrap data, and must never log payloads, tokens or keys - only
 * counts, sizes, addresses and status names.
 *
 * Exit codes: 0 clean shutdown, 1 runtime error, 2 usage.
 */
#define _GNU_SOURCE /* ppoll */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloister/core.h"
#include "cloister/runtime.h"
#include "storage.h"
#include "commit_pipe.h"
#include "plain_baseline.h"
#include "udp_endpoint.h"
#include "coap_libcoap.h"
#include "http_endpoint.h"
#include "ngsi/ngsi.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define MAX_TICK_FAILURES 5
#define STATS_EVERY_MS 60000

/* ------------------------------------------------------------ options */

typedef struct opts {
    const char *config;
    const char *listen;
    const char *data;
    const char *runtime;
    const char *core_image;
    const char *core_exe;
    const char *platform_dir;
    const char *log_level;
    const char *port_file;
    const char *http_listen;    /* HTTP endpoint; NULL = none */
    const char *http_port_file;
    const char *archive; /* sqlite|pg|files */
    const char *log;     /* files|pg */
    const char *pg;      /* libpq conninfo: may hold a password, never logged */
    const char *coap_stack; /* native|libcoap */
    const char *commit_pipeline;   /* on|off: archive commits on a writer thread */
    const char *http_poll_timeout; /* seconds a long poll waits (default 25) */
    unsigned http_poll_timeout_s;  /* parsed from http_poll_timeout */
    int bind_any; /* -1 unset, 0, 1 */
    int bench_plain; /* --bench-plain-events: -1 unset, 0, 1 (INSECURE, benchmark only) */
    /* NGSI-v2 facade (host/ngsi/, docs/ngsi.md): off unless ngsi_listen is set */
    const char *ngsi_listen;
    const char *ngsi_port_file;
    const char *ngsi_store; /* sqlite (<data>/ngsi.sqlite, default) | pg (--pg CONNINFO) */
} opts_t;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cloisterd [options]\n"
            "  --config FILE          key = value file with the option names below\n"
            "  --listen ADDR:PORT     UDP address (default 127.0.0.1:5683; port 0 = any)\n"
            "  --bind-any             allow a non-loopback listen address\n"
            "  --data DIR             data directory (default ./cloister-data)\n"
            "  --runtime sim|process  how the core runs (default sim)\n"
            "  --core-image PATH      the trusted core image%s\n"
            "  --core-exe PATH        cloister-core for --runtime process%s\n"
            "  --platform-dir DIR     simulated platform directory\n"
            "  --log-level LEVEL      error|warn|info|debug (default info)\n"
            "  --print-port-file FILE write the bound port there once listening\n"
            "  --http-listen ADDR:PORT  HTTP endpoint (OSCORE/EDHOC over HTTP, /healthz,\n"
            "                         /metrics); default none; port 0 = any\n"
            "  --print-http-port-file FILE  write the bound HTTP port there\n"
            "  --http-poll-timeout S  seconds an HTTP long poll (GET /actions?wait=1) waits\n"
            "                         before 504 \"poll again\" (default 25, 1..3600)\n"
            "  --archive sqlite|pg|files  event archive backend (default sqlite)\n"
            "  --log files|pg         sealed log + snapshot backend (default files)\n"
            "  --pg CONNINFO          libpq connection string for the pg backends\n"
            "  --coap-stack native|libcoap  CoAP/UDP message layer (default native)\n"
            "  --commit-pipeline on|off  commit the SQLite archive on a writer thread while\n"
            "                         the next batch is processed; answers still leave only\n"
            "                         once durable (default on; native CoAP stack)\n"
            "  --bench-plain-events   BENCHMARK ONLY, INSECURE: answer plain (unprotected)\n"
            "                         CoAP POST /events in the host, archiving the payload\n"
            "                         as is - the baseline of `cloister bench --baseline`\n"
            "                         (loopback only)\n"
            "  --ngsi-listen ADDR:PORT  NGSI-v2 facade (FIWARE-style broker, Orion uses 1026);\n"
            "                         default none; port 0 = any\n"
            "  --print-ngsi-port-file FILE  write the bound NGSI port there\n"
            "  --ngsi-store sqlite|pg the facade's store: <data>/ngsi.sqlite (default) or\n"
            "                         the --pg database (tables ngsi_*)\n"
            "  --help                 this text\n"
            "Flags override the config file. Exit: 0 clean, 1 runtime error, 2 usage.\n",
#ifdef CL_DEFAULT_CORE_IMAGE
            " (default: build tree)",
#else
            " (required)",
#endif
#ifdef CL_DEFAULT_CORE_EXE
            " (default: build tree)"
#else
            " (default: next to the image)"
#endif
    );
}

/* Sets one option by name; false for an unknown name. */
static bool set_opt(opts_t *o, const char *key, const char *val)
{
    static const struct {
        const char *name;
        size_t off;
    } map[] = {
        {"listen", offsetof(opts_t, listen)},
        {"data", offsetof(opts_t, data)},
        {"runtime", offsetof(opts_t, runtime)},
        {"core-image", offsetof(opts_t, core_image)},
        {"core-exe", offsetof(opts_t, core_exe)},
        {"platform-dir", offsetof(opts_t, platform_dir)},
        {"log-level", offsetof(opts_t, log_level)},
        {"print-port-file", offsetof(opts_t, port_file)},
        {"http-listen", offsetof(opts_t, http_listen)},
        {"print-http-port-file", offsetof(opts_t, http_port_file)},
        {"ngsi-listen", offsetof(opts_t, ngsi_listen)},
        {"print-ngsi-port-file", offsetof(opts_t, ngsi_port_file)},
        {"ngsi-store", offsetof(opts_t, ngsi_store)},
        {"archive", offsetof(opts_t, archive)},
        {"log", offsetof(opts_t, log)},
        {"pg", offsetof(opts_t, pg)},
        {"coap-stack", offsetof(opts_t, coap_stack)},
        {"http-poll-timeout", offsetof(opts_t, http_poll_timeout)},
        {"commit-pipeline", offsetof(opts_t, commit_pipeline)},
    };
    if (strcmp(key, "bind-any") == 0) {
        if (val == NULL || strcmp(val, "true") == 0 || strcmp(val, "1") == 0 ||
            strcmp(val, "yes") == 0)
            o->bind_any = 1;
        else if (strcmp(val, "false") == 0 || strcmp(val, "0") == 0 || strcmp(val, "no") == 0)
            o->bind_any = 0;
        else
            return false;
        return true;
    }
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        if (strcmp(key, map[i].name) == 0 && val != NULL) {
            *(const char **)(void *)((char *)o + map[i].off) = val;
            return true;
        }
    }
    return false;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/*
 * Loads `key = value` lines (# comments, blank lines) into o. The values are
 * kept in *store (freed by the caller). Returns false with a message on error.
 */
static bool load_config(const char *path, opts_t *o, char **store)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        fprintf(stderr, "cloisterd: cannot read config %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t cap = 0, used = 0;
    char *buf = NULL;
    char line[1024];
    unsigned lineno = 0;
    bool ok = true;
    /* First pass: copy the file, so option pointers stay valid. */
    while (fgets(line, sizeof line, fp) != NULL) {
        size_t l = strlen(line);
        if (used + l + 2 > cap) {
            cap = (cap + l + 2) * 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                ok = false;
                break;
            }
            buf = nb;
        }
        memcpy(buf + used, line, l + 1);
        used += l + 1;
    }
    fclose(fp);
    *store = buf;
    for (size_t pos = 0, next; ok && pos < used; pos = next) {
        next = pos + strlen(buf + pos) + 1; /* before trim and '=' split shorten it */
        lineno++;
        char *s = trim(buf + pos);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            fprintf(stderr, "cloisterd: %s:%u: expected key = value\n", path, lineno);
            ok = false;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (strcmp(key, "config") == 0 || !set_opt(o, key, val)) {
            fprintf(stderr, "cloisterd: %s:%u: unknown or bad option '%s'\n", path, lineno, key);
            ok = false;
        }
    }
    return ok;
}

/* ------------------------------------------------------------ logging */

typedef struct daemon_log {
    int level;
} daemon_log_t;

static const char *level_name(int level)
{
    switch (level) {
    case CL_LOG_ERROR:
        return "error";
    case CL_LOG_WARN:
        return "warn";
    case CL_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

static void log_sink(void *ctx, int level, const char *line)
{
    const daemon_log_t *lg = ctx;
    if (level > lg->level)
        return;
    struct timespec ts;
    struct tm tm;
    char t[32], out[1024];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, sizeof out, "ts=%s.%03ldZ level=%s %s\n", t, ts.tv_nsec / 1000000L,
             level_name(level), line);
    fputs(out, stderr);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void dlog(daemon_log_t *lg, int level, const char *fmt, ...)
{
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_sink(lg, level, line);
}

/* ------------------------------------------------------------ daemon */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What a transport's handler needs: the core, the storage to commit, the endpoints. */
typedef struct handler_ctx {
    cl_runtime_t *rt;
    cl_storage_t *storage;
    daemon_log_t *lg;
    cl_udp_t *udp;     /* the CoAP endpoint: native ... */
    cl_lcoap_t *lcoap; /* ... or libcoap */
    cl_http_t *http;   /* NULL without --http-listen */
    cl_pipe_t *pipe;   /* the archive's commit pipe (--commit-pipeline on), or NULL */
    bool bench_plain;  /* --bench-plain-events */
    uint64_t ticket;   /* commit ticket of the last pipelined batch */
} handler_ctx_t;

/* Core-originated messages wait in every endpoint until the commit (nested holds). */
static void hold_sends(handler_ctx_t *h)
{
    cl_udp_hold(h->udp);
    cl_lcoap_hold(h->lcoap);
    cl_http_hold(h->http);
}

/* ok = the ecall and its commit succeeded: the held messages may leave (else dropped). */
static void release_sends(handler_ctx_t *h, bool ok)
{
    cl_udp_release(h->udp, ok);
    cl_lcoap_release(h->lcoap, ok);
    cl_http_release(h->http, ok);
}

/* The `send` ocall: by transport to the endpoint that owns the peer id. */
static cl_status_t send_cb(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                           size_t len)
{
    handler_ctx_t *h = ctx;
    switch (transport) {
    case CL_TRANSPORT_COAP:
        if (h->lcoap != NULL)
            return cl_lcoap_send(h->lcoap, peer, transport, msg, len);
        if (h->udp != NULL)
            return cl_udp_send(h->udp, peer, transport, msg, len);
        break;
    case CL_TRANSPORT_HTTP:
        if (h->http != NULL)
            return cl_http_send(h->http, peer, transport, msg, len);
        break;
    default:
        break;
    }
    return CL_ERR_UNSUPPORTED;
}

/* The core's handle(), or - benchmark baseline only - the host's plain POST /events. */
static cl_status_t run_batch(handler_ctx_t *h, const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t out_size, size_t *out_len)
{
    if (h->bench_plain && cl_plain_batch(in, in_len))
        return cl_plain_handle(cl_storage_ops(h->storage), real_ms(), in, in_len, out, out_size,
                               out_len);
    return cl_runtime_handle(h->rt, in, in_len, out, out_size, out_len);
}

/*
 * One handle() batch, then the group commit (cl_storage_sync): the archive
 * rows the batch wrote become durable BEFORE any of its responses - or any
 * message the core sent meanwhile - leaves. When the commit fails the
 * handler fails, so the endpoint answers nothing and the clients retry.
 */
static cl_status_t handle_cb(void *ctx, const uint8_t *in, size_t in_len, uint8_t *out,
                             size_t out_size, size_t *out_len)
{
    handler_ctx_t *h = ctx;
    hold_sends(h);
    cl_status_t st = run_batch(h, in, in_len, out, out_size, out_len);
    cl_status_t sy = cl_storage_sync(h->storage);
    /* The calling endpoint still holds its own queue: it sends after its responses. */
    release_sends(h, st == CL_OK && sy == CL_OK);
    if (sy != CL_OK) {
        dlog(h->lg, CL_LOG_ERROR,
             "msg=\"storage commit failed: batch not answered\" status=%s", cl_status_str(sy));
        *out_len = 0;
        return sy;
    }
    return st;
}

/*
 * The native CoAP endpoint's handler with the pipelined commit: the batch's
 * rows go to the writer thread and the endpoint parks the answers under
 * h->ticket (cl_udp_set_pipeline). Messages the core sent meanwhile to the
 * HTTP endpoint cannot be parked there: then the commit is awaited here.
 */
static cl_status_t handle_pipelined_cb(void *ctx, const uint8_t *in, size_t in_len, uint8_t *out,
                                       size_t out_size, size_t *out_len)
{
    handler_ctx_t *h = ctx;
    hold_sends(h);
    cl_status_t st = run_batch(h, in, in_len, out, out_size, out_len);
    uint64_t t = 0;
    cl_status_t sy = cl_storage_submit(h->storage, &t);
    if (sy == CL_OK && cl_http_held(h->http) > 0)
        sy = cl_pipe_wait(h->pipe, t);
    h->ticket = t;
    release_sends(h, st == CL_OK && sy == CL_OK); /* the CoAP queue stays held: parked */
    if (sy != CL_OK) {
        dlog(h->lg, CL_LOG_ERROR,
             "msg=\"storage commit failed: batch not answered\" status=%s", cl_status_str(sy));
        *out_len = 0;
        return sy;
    }
    return st;
}

static uint64_t pl_ticket(void *ctx)
{
    return ((handler_ctx_t *)ctx)->ticket;
}

static uint64_t pl_resolved(void *ctx)
{
    return cl_pipe_resolved(((handler_ctx_t *)ctx)->pipe);
}

static bool pl_ticket_ok(void *ctx, uint64_t t)
{
    return cl_pipe_ticket_ok(((handler_ctx_t *)ctx)->pipe, t);
}

static void pl_wait(void *ctx, uint64_t t)
{
    (void)!cl_pipe_wait(((handler_ctx_t *)ctx)->pipe, t); /* the outcome: pl_ticket_ok */
}

/* tick() + commit, sends held in between (timers may archive rows too). */
static cl_status_t tick_commit(handler_ctx_t *h)
{
    hold_sends(h);
    cl_status_t st = cl_runtime_tick(h->rt, real_ms());
    if (st == CL_OK)
        st = cl_storage_sync(h->storage);
    release_sends(h, st == CL_OK);
    return st;
}

/* /healthz: does the core answer a tick (asked only when the loop's last tick is stale)? */
static bool health_cb(void *ctx)
{
    return tick_commit(ctx) == CL_OK;
}

static bool write_port_file(const char *path, uint16_t port)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return false;
    FILE *fp = fopen(tmp, "w");
    if (fp == NULL)
        return false;
    bool ok = fprintf(fp, "%u\n", (unsigned)port) > 0;
    ok = (fclose(fp) == 0) && ok;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok)
        unlink(tmp);
    return ok;
}

static void log_stats(daemon_log_t *lg, const cl_udp_t *ep, const cl_lcoap_t *lp,
                      const char *msg)
{
    cl_udp_stats_t s;
    if (lp != NULL)
        cl_lcoap_get_stats(lp, &s);
    else
        cl_udp_get_stats(ep, &s);
    dlog(lg, CL_LOG_INFO,
         "msg=\"%s\" rx=%" PRIu64 " rx_bytes=%" PRIu64 " tx=%" PRIu64 " tx_bytes=%" PRIu64
         " batches=%" PRIu64 " dedup_hits=%" PRIu64 " pings=%" PRIu64 " dropped_big=%" PRIu64
         " dropped_bad=%" PRIu64 " dropped_unmatched=%" PRIu64 " dropped_inflight=%" PRIu64
         " handler_errors=%" PRIu64 " notify_sent=%" PRIu64 " notify_retransmitted=%" PRIu64
         " notify_timeouts=%" PRIu64 " notify_acked=%" PRIu64 " notify_rst=%" PRIu64
         " notify_dropped=%" PRIu64,
         msg, s.rx, s.rx_bytes, s.tx, s.tx_bytes, s.batches, s.dedup_hits, s.pings,
         s.dropped_big, s.dropped_bad, s.dropped_unmatched, s.dropped_inflight,
         s.handler_errors, s.notify_sent, s.notify_retransmitted, s.notify_timeouts,
         s.notify_acked, s.notify_rst,
         s.notify_evicted + s.notify_dropped_full + s.notify_dropped_failed +
             s.notify_dropped_peer);
}

/* The commit pipe's counters (rows per commit = how well the group commit groups). */
static void log_pipe_stats(daemon_log_t *lg, cl_pipe_t *p, const cl_udp_t *ep, const char *msg)
{
    if (p == NULL)
        return;
    cl_pipe_stats_t ps;
    cl_udp_stats_t us;
    cl_pipe_get_stats(p, &ps);
    cl_udp_get_stats(ep, &us);
    dlog(lg, CL_LOG_INFO,
         "msg=\"%s\" batches=%" PRIu64 " commits=%" PRIu64 " rows=%" PRIu64
         " failed_commits=%" PRIu64 " queue_full_waits=%" PRIu64 " parked_full_waits=%" PRIu64
         " batches_dropped=%" PRIu64,
         msg, ps.batches, ps.commits, ps.rows, ps.failed_commits, ps.full_waits,
         us.parked_full_waits, us.commit_failed_batches);
}

static int run(const opts_t *o, daemon_log_t *lg)
{
    int rc = EXIT_RUNTIME;
    cl_storage_t *storage = NULL;
    cl_runtime_t *rt = NULL;
    handler_ctx_t hctx = {.rt = NULL, .storage = NULL, .lg = lg};
    cl_udp_t *ep = NULL;
    cl_lcoap_t *lp = NULL; /* --coap-stack libcoap: used instead of ep */
    cl_http_t *hp = NULL;
    cl_ngsi_t *ngsi = NULL; /* --ngsi-listen: its own threads, not in the loop below */
    cl_status_t st;

    cl_runtime_config_t rcfg;
    memset(&rcfg, 0, sizeof rcfg);
    rcfg.kind = strcmp(o->runtime, "process") == 0 ? CL_RUNTIME_PROCESS : CL_RUNTIME_SIM;
    rcfg.core_image = o->core_image;
    rcfg.core_exe = o->core_exe;
    rcfg.platform_dir = o->platform_dir;
    rcfg.core.version = CL_CORE_API_VERSION;

    dlog(lg, CL_LOG_INFO, "msg=\"starting\" runtime=%s listen=\"%s\" data=\"%s\"", o->runtime,
         o->listen, o->data);
    dlog(lg, CL_LOG_WARN,
         "msg=\"simulated TEE platform: NO SECURITY, for development and tests only\"");

    cl_storage_config_t scfg = {.data_dir = o->data,
                                .log = o->log,
                                .archive = o->archive,
                                .pg_conninfo = o->pg,
                                .log_fn = log_sink,
                                .log_ctx = lg};
    if ((st = cl_storage_open(&scfg, &storage)) != CL_OK) {
        dlog(lg, CL_LOG_ERROR, "msg=\"cannot open storage\" log=%s archive=%s status=%s",
             o->log, o->archive, cl_status_str(st));
        goto done;
    }
    dlog(lg, CL_LOG_INFO, "msg=\"storage open\" %s", cl_storage_describe(storage));

    if ((st = cl_runtime_open(&rcfg, cl_storage_ops(storage), &rt)) != CL_OK) {
        dlog(lg, CL_LOG_ERROR, "msg=\"cannot open the trusted core\" status=%s",
             cl_status_str(st));
        goto done;
    }
    dlog(lg, CL_LOG_INFO, "msg=\"core open\" runtime=%s pid=%ld", cl_runtime_name(rt),
         cl_runtime_pid(rt));

    cl_udp_config_t ucfg;
    memset(&ucfg, 0, sizeof ucfg);
    ucfg.listen = o->listen;
    ucfg.bind_any = o->bind_any == 1;
    hctx.rt = rt;
    hctx.storage = storage;
    hctx.bench_plain = o->bench_plain == 1;
    if (hctx.bench_plain)
        dlog(lg, CL_LOG_WARN,
             "msg=\"BENCHMARK MODE --bench-plain-events: plain POST /events is answered and "
             "archived UNPROTECTED by the host\"");
    if ((st = cl_storage_sync(storage)) != CL_OK) { /* whatever open archived */
        dlog(lg, CL_LOG_ERROR, "msg=\"storage commit failed\" status=%s", cl_status_str(st));
        goto done;
    }
    bool want_pipe = o->commit_pipeline == NULL || strcmp(o->commit_pipeline, "on") == 0;
    if (want_pipe && strcmp(o->coap_stack, "native") == 0) {
        st = cl_storage_start_pipeline(storage, 0);
        if (st == CL_OK) {
            hctx.pipe = cl_storage_pipe(storage);
            dlog(lg, CL_LOG_INFO, "msg=\"archive commits pipelined\" writer=thread");
        } else if (st != CL_ERR_UNSUPPORTED) {
            dlog(lg, CL_LOG_ERROR, "msg=\"cannot start the commit pipeline\" status=%s",
                 cl_status_str(st));
            goto done;
        }
    }
    if (strcmp(o->coap_stack, "libcoap") == 0) {
        cl_lcoap_config_t lcfg;
        memset(&lcfg, 0, sizeof lcfg);
        lcfg.listen = ucfg.listen;
        lcfg.bind_any = ucfg.bind_any;
        st = cl_lcoap_open(&lcfg, handle_cb, &hctx, log_sink, lg, &lp);
    } else {
        st = cl_udp_open(&ucfg, hctx.pipe != NULL ? handle_pipelined_cb : handle_cb, &hctx,
                         log_sink, lg, &ep);
        if (st == CL_OK && hctx.pipe != NULL) {
            cl_udp_pipeline_t pl = {.ticket = pl_ticket,
                                    .resolved = pl_resolved,
                                    .ticket_ok = pl_ticket_ok,
                                    .wait = pl_wait,
                                    .ctx = &hctx,
                                    .max_parked = 0};
            st = cl_udp_set_pipeline(ep, &pl);
        }
    }
    if (st != CL_OK) {
        dlog(lg, CL_LOG_ERROR, "msg=\"cannot listen\" listen=\"%s\" status=%s", o->listen,
             cl_status_str(st));
        if (st == CL_ERR_INVALID_ARG) /* unparsable, or not loopback without --bind-any */
            rc = EXIT_USAGE;
        goto done;
    }
    hctx.udp = ep;
    hctx.lcoap = lp;
    cl_storage_set_send(storage, send_cb, &hctx);
    uint16_t coap_port = lp != NULL ? cl_lcoap_port(lp) : cl_udp_port(ep);
    if (o->port_file != NULL && !write_port_file(o->port_file, coap_port)) {
        dlog(lg, CL_LOG_ERROR, "msg=\"cannot write port file\" errno=%d", errno);
        goto done;
    }
    dlog(lg, CL_LOG_INFO, "msg=\"listening\" transport=coap port=%u stack=%s",
         (unsigned)coap_port, o->coap_stack);
    if (o->http_listen != NULL && o->http_listen[0] != '\0') {
        cl_http_config_t hcfg;
        memset(&hcfg, 0, sizeof hcfg);
        hcfg.listen = o->http_listen;
        hcfg.bind_any = o->bind_any == 1;
        hcfg.poll_timeout_ms = o->http_poll_timeout_s * 1000u;
        if ((st = cl_http_open(&hcfg, handle_cb, &hctx, log_sink, lg, &hp)) != CL_OK) {
            dlog(lg, CL_LOG_ERROR, "msg=\"cannot listen\" transport=http listen=\"%s\" status=%s",
                 o->http_listen, cl_status_str(st));
            if (st == CL_ERR_INVALID_ARG)
                rc = EXIT_USAGE;
            goto done;
        }
        cl_http_set_health(hp, health_cb, &hctx);
        hctx.http = hp;
        cl_http_set_udp(hp, ep);
        if (o->http_port_file != NULL && !write_port_file(o->http_port_file, cl_http_port(hp))) {
            dlog(lg, CL_LOG_ERROR, "msg=\"cannot write http port file\" errno=%d", errno);
            goto done;
        }
        dlog(lg, CL_LOG_INFO, "msg=\"listening\" transport=http port=%u",
             (unsigned)cl_http_port(hp));
    }
    if (o->ngsi_listen != NULL && o->ngsi_listen[0] != '\0') { /* NGSI-v2 facade */
        bool on_pg = o->ngsi_store != NULL && strcmp(o->ngsi_store, "pg") == 0;
        cl_ngsi_config_t ncfg;
        memset(&ncfg, 0, sizeof ncfg);
        ncfg.listen = o->ngsi_listen;
        ncfg.bind_any = o->bind_any == 1;
        ncfg.data_dir = on_pg ? NULL : o->data;
        ncfg.pg_conninfo = on_pg ? o->pg : NULL;
        ncfg.log = log_sink;
        ncfg.log_ctx = lg;
        ncfg.log_debug = lg->level >= CL_LOG_DEBUG;
        if ((st = cl_ngsi_open(&ncfg, &ngsi)) != CL_OK) {
            dlog(lg, CL_LOG_ERROR, "msg=\"cannot start the NGSI facade\" listen=\"%s\" status=%s",
                 o->ngsi_listen, cl_status_str(st));
            if (st == CL_ERR_INVALID_ARG)
                rc = EXIT_USAGE;
            goto done;
        }
        if (o->ngsi_port_file != NULL && !write_port_file(o->ngsi_port_file, cl_ngsi_port(ngsi))) {
            dlog(lg, CL_LOG_ERROR, "msg=\"cannot write ngsi port file\" errno=%d", errno);
            goto done;
        }
        dlog(lg, CL_LOG_INFO, "msg=\"listening\" transport=ngsi port=%u store=%s",
             (unsigned)cl_ngsi_port(ngsi), on_pg ? "pg" : "sqlite");
    }

    sigset_t block, orig;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &orig);
    sigdelset(&orig, SIGTERM);
    sigdelset(&orig, SIGINT);

    uint64_t now = mono_ms(), next_tick = now + 1000, next_stats = now + STATS_EVERY_MS;
    int tick_failures = 0;
    while (!stop_signal) {
        int coap_fd = lp != NULL ? cl_lcoap_fd(lp) : cl_udp_fd(ep);
        struct pollfd pfd[3] = {{.fd = coap_fd, .events = POLLIN, .revents = 0},
                                {.fd = cl_http_fd(hp), .events = POLLIN, .revents = 0},
                                {.fd = cl_pipe_fd(hctx.pipe), .events = POLLIN, .revents = 0}};
        uint64_t wait = next_tick > now ? next_tick - now : 0;
        int http_wait = cl_http_timeout_ms(hp);
        if (http_wait >= 0 && (uint64_t)http_wait < wait)
            wait = (uint64_t)http_wait;
        int con_wait = cl_udp_timeout_ms(ep, now); /* CON retransmissions */
        if (con_wait >= 0 && (uint64_t)con_wait < wait)
            wait = (uint64_t)con_wait;
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000),
                              .tv_nsec = (long)(wait % 1000) * 1000000L};
        int pr = ppoll(pfd, 3, &ts, &orig); /* fd -1 (no HTTP endpoint, no pipe) is ignored */
        if (pr < 0 && errno != EINTR) {
            dlog(lg, CL_LOG_ERROR, "msg=\"poll failed\" errno=%d", errno);
            goto done;
        }
        now = mono_ms();
        cl_udp_timers(ep, now);
        if (pr > 0 && (pfd[2].revents & POLLIN) != 0) { /* commits resolved: answers leave */
            cl_pipe_ack_fd(hctx.pipe);
            cl_udp_flush_resolved(ep);
        }
        if (pr > 0 && (pfd[0].revents & POLLIN) != 0) {
            /* Drain a bounded number of batches, then give timers a turn. */
            for (int k = 0; k < 16 && !stop_signal; k++) {
                size_t got = 0;
                if (lp != NULL) { /* bounded internally; libcoap's timers come here too */
                    if (cl_lcoap_process(lp, now, &got) != CL_OK)
                        dlog(lg, CL_LOG_WARN, "msg=\"coap endpoint pass failed\"");
                    break;
                }
                if (cl_udp_process(ep, now, &got) != CL_OK || got < CL_CORE_MAX_BATCH)
                    break;
                now = mono_ms();
            }
        }
        if (hp != NULL && cl_http_process(hp, now) != CL_OK)
            dlog(lg, CL_LOG_WARN, "msg=\"http endpoint pass failed\"");
        if (now >= next_tick) {
            st = tick_commit(&hctx); /* timers may archive too: commit like a batch */
            if (st != CL_OK) {
                dlog(lg, CL_LOG_ERROR, "msg=\"core tick failed\" status=%s", cl_status_str(st));
                if (++tick_failures >= MAX_TICK_FAILURES) {
                    dlog(lg, CL_LOG_ERROR, "msg=\"core keeps failing, stopping\"");
                    goto done;
                }
            } else {
                tick_failures = 0;
            }
            cl_http_note_tick(hp, now, st == CL_OK);
            next_tick = (now - next_tick > 1000) ? now + 1000 : next_tick + 1000;
        }
        if (now >= next_stats) {
            log_stats(lg, ep, lp, "stats");
            log_pipe_stats(lg, hctx.pipe, ep, "archive commits");
            next_stats = now + STATS_EVERY_MS;
        }
    }
    dlog(lg, CL_LOG_INFO, "msg=\"shutting down\" signal=%d", (int)stop_signal);
    cl_udp_drain(ep); /* parked answers whose commit is running: commit, then send */
    rc = 0;
done:
    if (ep != NULL || lp != NULL) {
        log_stats(lg, ep, lp, "endpoint totals");
        log_pipe_stats(lg, hctx.pipe, ep, "archive commit totals");
        cl_udp_log_peers(ep, CL_LOG_DEBUG);
        cl_lcoap_log_peers(lp, CL_LOG_DEBUG);
    }
    if (storage != NULL)
        cl_storage_set_send(storage, NULL, NULL); /* the endpoint goes first */
    hctx.udp = NULL;
    hctx.lcoap = NULL;
    hctx.http = NULL;
    cl_ngsi_close(ngsi); /* answers what it queued, stops its threads */
    cl_http_close(hp);
    cl_udp_close(ep);
    cl_lcoap_close(lp);
    if (rt != NULL)
        cl_runtime_close(rt); /* the core wipes itself */
    cl_storage_close(storage); /* an uncommitted batch is rolled back: never acknowledged */
    dlog(lg, CL_LOG_INFO, "msg=\"stopped\" exit=%d", rc);
    return rc;
}

int main(int argc, char **argv)
{
    opts_t flags, o;
    memset(&flags, 0, sizeof flags);
    flags.bind_any = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--bind-any") == 0) {
            flags.bind_any = 1;
            continue;
        }
        if (strcmp(a, "--bench-plain-events") == 0) {
            flags.bench_plain = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "cloisterd: bad argument '%s'\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
        const char *val = argv[++i];
        if (strcmp(a, "--config") == 0)
            flags.config = val;
        else if (!set_opt(&flags, a + 2, val)) {
            fprintf(stderr, "cloisterd: unknown option '%s'\n", a);
            usage(stderr);
            return EXIT_USAGE;
        }
    }

    /* Defaults, then the config file, then the flags. */
    memset(&o, 0, sizeof o);
    o.listen = "127.0.0.1:5683";
    o.data = "cloister-data";
    o.runtime = "sim";
    o.log_level = "info";
    o.bind_any = 0;
    o.archive = "sqlite";
    o.log = "files";
    o.coap_stack = "native";
#ifdef CL_DEFAULT_CORE_IMAGE
    o.core_image = CL_DEFAULT_CORE_IMAGE;
#endif
#ifdef CL_DEFAULT_CORE_EXE
    o.core_exe = CL_DEFAULT_CORE_EXE;
#endif
    char *store = NULL;
    if (flags.config != NULL && !load_config(flags.config, &o, &store)) {
        free(store);
        return EXIT_USAGE;
    }
#define OVERLAY(f)                                                                                 \
    if (flags.f != NULL)                                                                           \
    o.f = flags.f
    OVERLAY(listen);
    OVERLAY(data);
    OVERLAY(runtime);
    OVERLAY(core_image);
    OVERLAY(core_exe);
    OVERLAY(platform_dir);
    OVERLAY(log_level);
    OVERLAY(port_file);
    OVERLAY(http_listen);
    OVERLAY(http_port_file);
    OVERLAY(archive);
    OVERLAY(log);
    OVERLAY(pg);
    OVERLAY(coap_stack);
    OVERLAY(http_poll_timeout);
    OVERLAY(commit_pipeline);
    OVERLAY(ngsi_listen);
    OVERLAY(ngsi_port_file);
    OVERLAY(ngsi_store);
#undef OVERLAY
    if (flags.bind_any >= 0)
        o.bind_any = flags.bind_any;
    o.bench_plain = flags.bench_plain == 1;

    daemon_log_t lg = {.level = CL_LOG_INFO};
    int rc = EXIT_USAGE;
    if (o.bench_plain && o.bind_any == 1) {
        fprintf(stderr, "cloisterd: --bench-plain-events is for loopback benchmarks only "
                        "(not with --bind-any)\n");
        goto out;
    }
    if (strcmp(o.log_level, "error") == 0)
        lg.level = CL_LOG_ERROR;
    else if (strcmp(o.log_level, "warn") == 0)
        lg.level = CL_LOG_WARN;
    else if (strcmp(o.log_level, "debug") == 0)
        lg.level = CL_LOG_DEBUG;
    else if (strcmp(o.log_level, "info") != 0) {
        fprintf(stderr, "cloisterd: bad --log-level '%s'\n", o.log_level);
        goto out;
    }
    if (strcmp(o.runtime, "sim") != 0 && strcmp(o.runtime, "process") != 0) {
        fprintf(stderr, "cloisterd: --runtime must be sim or process\n");
        goto out;
    }
    if (strcmp(o.archive, "sqlite") != 0 && strcmp(o.archive, "pg") != 0 &&
        strcmp(o.archive, "files") != 0) {
        fprintf(stderr, "cloisterd: --archive must be sqlite, pg or files\n");
        goto out;
    }
    if (strcmp(o.log, "files") != 0 && strcmp(o.log, "pg") != 0) {
        fprintf(stderr, "cloisterd: --log must be files or pg\n");
        goto out;
    }
    if (strcmp(o.coap_stack, "native") != 0 && strcmp(o.coap_stack, "libcoap") != 0) {
        fprintf(stderr, "cloisterd: --coap-stack must be native or libcoap\n");
        goto out;
    }
    if (o.commit_pipeline != NULL && strcmp(o.commit_pipeline, "on") != 0 &&
        strcmp(o.commit_pipeline, "off") != 0) {
        fprintf(stderr, "cloisterd: --commit-pipeline must be on or off\n");
        goto out;
    }
    if (o.http_poll_timeout != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long v = strtoul(o.http_poll_timeout, &end, 10);
        if (errno != 0 || end == o.http_poll_timeout || *end != '\0' || v < 1 || v > 3600) {
            fprintf(stderr, "cloisterd: --http-poll-timeout must be 1..3600 seconds\n");
            goto out;
        }
        o.http_poll_timeout_s = (unsigned)v;
    }
    if ((strcmp(o.archive, "pg") == 0 || strcmp(o.log, "pg") == 0) &&
        (o.pg == NULL || o.pg[0] == '\0')) {
        fprintf(stderr, "cloisterd: --pg CONNINFO is required with a pg backend\n");
        goto out;
    }
    if (o.ngsi_store != NULL && strcmp(o.ngsi_store, "sqlite") != 0 &&
        strcmp(o.ngsi_store, "pg") != 0) {
        fprintf(stderr, "cloisterd: --ngsi-store must be sqlite or pg\n");
        goto out;
    }
    if (o.ngsi_store != NULL && strcmp(o.ngsi_store, "pg") == 0 &&
        (o.pg == NULL || o.pg[0] == '\0')) {
        fprintf(stderr, "cloisterd: --pg CONNINFO is required with --ngsi-store pg\n");
        goto out;
    }
    if (o.core_image == NULL) {
        fprintf(stderr, "cloisterd: --core-image is required (no default in this build)\n");
        goto out;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    rc = run(&o, &lg);
out:
    free(store);
    return rc;
}
