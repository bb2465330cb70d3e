/*
 * test_runtime.c - the runtime API (cloister/runtime.h) with the echo image
 * (echo_image.c). Every common test runs twice, on CL_RUNTIME_SIM and on
 * CL_RUNTIME_PROCESS (test names end in _sim / _process), and must see the
 * same bytes and the same ocalls. The process-only tests kill the child,
 * make it send garbage (cloister-core-test, CLOISTER_CORE_TEST_MODE) and
 * talk to cloister-core directly to check that it validates the host.
 */
#define _GNU_SOURCE /* mkdtemp, nftw, setenv */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "channel.h"
#include "cloister/runtime.h"
#include "cloister/tee_sim.h"
#include "runtime_priv.h"
#include "testutil.h"

static char g_tmp[64];      /* scratch directory */
static char g_platform[96]; /* simulated platform directory */

static const cl_runtime_kind_t KIND_SIM = CL_RUNTIME_SIM;
static const cl_runtime_kind_t KIND_PROCESS = CL_RUNTIME_PROCESS;

/* ------------------------------------------------------------------ */
/* a recording in-memory host                                          */

#define TH_MAX_LINES 64
typedef struct th {
    cl_host_ops_t ops;
    cl_runtime_t *rt; /* for the re-entry test */
    cl_status_t reentry_st;
    long kill_pid; /* send() kills this process (a core dying in the middle of an ecall) */
    /* log */
    uint64_t log_counter[16];
    uint8_t log_data[16][64];
    size_t log_len[16], nlog;
    uint64_t last_read_counter, compact_before;
    size_t last_read_size, n_read, n_compact;
    /* snapshot */
    uint8_t *snap;
    size_t snap_len, last_snap_get_size, n_snap_get;
    /* archive */
    struct {
        uint8_t tag[16];
        uint64_t bucket, id;
        uint8_t data[64];
        size_t len;
    } arch[16];
    size_t narch;
    uint64_t scan_from, scan_to, scan_after;
    size_t scan_max, scan_size;
    /* sends */
    uint64_t sent_peer[8];
    uint16_t sent_transport[8];
    uint8_t sent_msg[8][CL_CORE_MAX_MESSAGE];
    size_t sent_len[8], nsent;
    /* log lines */
    char lines[TH_MAX_LINES][CL_CORE_MAX_LOG_LINE + 2];
    int levels[TH_MAX_LINES];
    size_t nlines, line_len_max;
    /* time */
    int64_t now;
    size_t n_time;
    size_t n_quote;
    /* failure injection */
    cl_status_t fail_append, fail_time;
    bool lie_read_len;
} th_t;

static cl_status_t th_log_append(void *ctx, uint64_t counter, const uint8_t *rec, size_t len)
{
    th_t *h = ctx;
    if (h->fail_append != CL_OK)
        return h->fail_append;
    if (h->nlog >= 16 || len > 64)
        return CL_ERR_FULL;
    h->log_counter[h->nlog] = counter;
    memcpy(h->log_data[h->nlog], rec, len);
    h->log_len[h->nlog++] = len;
    return CL_OK;
}

static cl_status_t th_log_read(void *ctx, uint64_t counter, uint64_t *got_counter, uint8_t *buf,
                               size_t size, size_t *len)
{
    th_t *h = ctx;
    h->n_read++;
    h->last_read_counter = counter;
    h->last_read_size = size;
    for (size_t i = 0; i < h->nlog; i++) {
        if (h->log_counter[i] >= counter) {
            if (h->log_len[i] > size)
                return CL_ERR_BUFFER_TOO_SMALL;
            memcpy(buf, h->log_data[i], h->log_len[i]);
            *got_counter = h->log_counter[i];
            *len = h->lie_read_len ? size + 1 : h->log_len[i];
            return CL_OK;
        }
    }
    return CL_ERR_NOT_FOUND;
}

static cl_status_t th_log_compact(void *ctx, uint64_t before)
{
    th_t *h = ctx;
    h->n_compact++;
    h->compact_before = before;
    return CL_OK;
}

static cl_status_t th_snapshot_put(void *ctx, const uint8_t *blob, size_t len)
{
    th_t *h = ctx;
    uint8_t *c = malloc(len ? len : 1);
    if (c == NULL)
        return CL_ERR_FULL;
    memcpy(c, blob, len);
    free(h->snap);
    h->snap = c;
    h->snap_len = len;
    return CL_OK;
}

static cl_status_t th_snapshot_get(void *ctx, uint8_t *buf, size_t size, size_t *len)
{
    th_t *h = ctx;
    h->n_snap_get++;
    h->last_snap_get_size = size;
    if (h->snap == NULL)
        return CL_ERR_NOT_FOUND;
    if (h->snap_len > size)
        return CL_ERR_BUFFER_TOO_SMALL;
    memcpy(buf, h->snap, h->snap_len);
    *len = h->snap_len;
    return CL_OK;
}

static cl_status_t th_archive_put(void *ctx, const cl_archive_rec_t *recs, size_t n, uint64_t *ids)
{
    th_t *h = ctx;
    for (size_t i = 0; i < n; i++) {
        if (h->narch >= 16 || recs[i].len > 64)
            return CL_ERR_FULL;
        memcpy(h->arch[h->narch].tag, recs[i].tag, 16);
        h->arch[h->narch].bucket = recs[i].bucket;
        memcpy(h->arch[h->narch].data, recs[i].data, recs[i].len);
        h->arch[h->narch].len = recs[i].len;
        h->arch[h->narch].id = h->narch + 1;
        ids[i] = h->narch + 1;
        h->narch++;
    }
    return CL_OK;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static cl_status_t th_archive_scan(void *ctx, const uint8_t tag[16], uint64_t from, uint64_t to,
                                   uint64_t after_id, size_t max_records, uint8_t *buf, size_t size,
                                   size_t *len, size_t *n)
{
    th_t *h = ctx;
    size_t o = 0, cnt = 0;
    h->scan_from = from;
    h->scan_to = to;
    h->scan_after = after_id;
    h->scan_max = max_records;
    h->scan_size = size;
    for (size_t i = 0; i < h->narch && cnt < max_records; i++) {
        if (memcmp(h->arch[i].tag, tag, 16) != 0 || h->arch[i].bucket < from ||
            h->arch[i].bucket > to || h->arch[i].id <= after_id)
            continue;
        if (size - o < 20 + h->arch[i].len)
            break;
        put_le(buf + o, h->arch[i].id, 8);
        put_le(buf + o + 8, h->arch[i].bucket, 8);
        put_le(buf + o + 16, h->arch[i].len, 4);
        memcpy(buf + o + 20, h->arch[i].data, h->arch[i].len);
        o += 20 + h->arch[i].len;
        cnt++;
    }
    *len = o;
    *n = cnt;
    return CL_OK;
}

static cl_status_t th_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                           size_t len)
{
    th_t *h = ctx;
    if (h->rt != NULL)
        h->reentry_st = cl_runtime_tick(h->rt, 1);
    if (h->kill_pid > 0) {
        kill((pid_t)h->kill_pid, SIGKILL);
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (h->nsent >= 8 || len > CL_CORE_MAX_MESSAGE)
        return CL_ERR_FULL;
    h->sent_peer[h->nsent] = peer;
    h->sent_transport[h->nsent] = transport;
    memcpy(h->sent_msg[h->nsent], msg, len);
    h->sent_len[h->nsent++] = len;
    return CL_OK;
}

static cl_status_t th_time_now(void *ctx, int64_t *unix_ms)
{
    th_t *h = ctx;
    h->n_time++;
    if (h->fail_time != CL_OK)
        return h->fail_time;
    *unix_ms = h->now;
    return CL_OK;
}

static cl_status_t th_quote(void *ctx, const uint8_t *report, size_t report_len, uint8_t *quote,
                            size_t size, size_t *len)
{
    th_t *h = ctx;
    (void)report, (void)report_len, (void)quote, (void)size, (void)len;
    h->n_quote++;
    return CL_ERR_UNSUPPORTED;
}

static void th_log_line(void *ctx, int level, const char *line)
{
    th_t *h = ctx;
    size_t l = strlen(line);
    if (l > h->line_len_max)
        h->line_len_max = l;
    if (h->nlines >= TH_MAX_LINES)
        return;
    snprintf(h->lines[h->nlines], sizeof(h->lines[0]), "%s", line);
    h->levels[h->nlines++] = level;
}

static th_t *th_new(void)
{
    th_t *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->ops.version = CL_HOST_OPS_VERSION;
    h->ops.ctx = h;
    h->ops.log_append = th_log_append;
    h->ops.log_read = th_log_read;
    h->ops.log_compact = th_log_compact;
    h->ops.snapshot_put = th_snapshot_put;
    h->ops.snapshot_get = th_snapshot_get;
    h->ops.archive_put = th_archive_put;
    h->ops.archive_scan = th_archive_scan;
    h->ops.send = th_send;
    h->ops.time_now = th_time_now;
    h->ops.quote = th_quote; /* must never be called: the runtime owns the QE */
    h->ops.log_line = th_log_line;
    h->now = 1700000000123;
    return h;
}

static void th_free(th_t *h)
{
    free(h->snap);
    free(h);
}

static bool th_has_line(const th_t *h, const char *needle)
{
    for (size_t i = 0; i < h->nlines; i++)
        if (strstr(h->lines[i], needle) != NULL)
            return true;
    return false;
}

/* ------------------------------------------------------------------ */
/* helpers                                                              */

static cl_runtime_config_t cfg_for(cl_runtime_kind_t kind)
{
    cl_runtime_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.kind = kind;
    cfg.core_image = CL_TEST_ECHO_IMAGE;
    cfg.platform_dir = g_platform;
    cfg.core_exe = CL_TEST_CORE_EXE;
    cfg.core.version = CL_CORE_API_VERSION;
    cfg.core.snapshot_every = 10;
    cfg.core.max_sessions = 20;
    cfg.core.session_ttl_s = 30;
    cfg.core.seal_policy = CL_SGX_KEYPOLICY_MRSIGNER;
    return cfg;
}

static cl_runtime_t *open_rt(cl_runtime_kind_t kind, th_t *h)
{
    cl_runtime_config_t cfg = cfg_for(kind);
    cl_runtime_t *rt = NULL;
    cl_status_t st = cl_runtime_open(&cfg, &h->ops, &rt);
    if (st != CL_OK)
        fail_msg("cl_runtime_open(%s): %s", kind == CL_RUNTIME_SIM ? "sim" : "process",
                 cl_status_str(st));
    return rt;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    uint64_t peer;
    uint16_t transport, flags;
    const char *msg;
} item_t;

static size_t make_batch(uint8_t *out, size_t size, const item_t *items, size_t n)
{
    size_t len = 0;
    assert_int_equal(cl_batch_begin(out, size, &len), CL_OK);
    for (size_t i = 0; i < n; i++) {
        cl_batch_item_t it = {items[i].peer, items[i].transport, items[i].flags,
                              (const uint8_t *)items[i].msg, strlen(items[i].msg)};
        assert_int_equal(cl_batch_add(out, size, &len, &it), CL_OK);
    }
    return len;
}

/* Sends one command item and returns the response message as a string. */
static void command(cl_runtime_t *rt, const char *cmd, char *resp, size_t resp_size)
{
    uint8_t in[512], out[1024];
    item_t it = {1, CL_TRANSPORT_LOCAL, 0, cmd};
    size_t in_len = make_batch(in, sizeof(in), &it, 1), out_len = 0;
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len), CL_OK);
    size_t count = 0, pos = 0;
    assert_int_equal(cl_batch_validate(out, out_len, &count), CL_OK);
    assert_int_equal(count, 1);
    cl_batch_item_t r;
    assert_int_equal(cl_batch_next(out, out_len, &pos, &r), CL_OK);
    assert_true(r.len < resp_size);
    memcpy(resp, r.msg, r.len);
    resp[r.len] = 0;
}

/* ------------------------------------------------------------------ */
/* common tests (both runtimes)                                         */

static void t_open_ocalls(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(kind, h);
    assert_string_equal(cl_runtime_name(rt), kind == CL_RUNTIME_SIM ? "sim" : "process");
    if (kind == CL_RUNTIME_SIM)
        assert_int_equal(cl_runtime_pid(rt), 0);
    else
        assert_true(cl_runtime_pid(rt) > 0 && cl_runtime_pid(rt) != (long)getpid());
    /* the ocalls open made, with their exact arguments */
    assert_int_equal(h->nlines, 1);
    assert_string_equal(h->lines[0], "echo: open[1mbold!"); /* \t ESC DEL stripped */
    assert_int_equal(h->levels[0], CL_LOG_INFO);
    assert_int_equal(h->n_time, 1);
    assert_int_equal(h->nlog, 1);
    assert_int_equal(h->log_counter[0], 1);
    tu_assert_bytes(h->log_data[0], h->log_len[0], (const uint8_t *)"record-1", 8);
    assert_int_equal(h->n_read, 1);
    assert_int_equal(h->last_read_counter, 1);
    assert_int_equal(h->last_read_size, 64);
    tu_assert_bytes(h->snap, h->snap_len, (const uint8_t *)"snapshot-A", 10);
    assert_int_equal(h->n_snap_get, 1);
    assert_int_equal(h->last_snap_get_size, 64);
    assert_int_equal(h->nsent, 0);
    cl_runtime_close(rt);
    assert_int_equal(h->nlines, 1); /* a clean close logs nothing */
    assert_int_equal(h->n_quote, 0);
    th_free(h);
}

static void t_handle_echo(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(kind, h);
    assert_int_equal(cl_runtime_tick(rt, 1234567890123), CL_OK);
    item_t in_items[] = {
        {7, CL_TRANSPORT_COAP, 3, "hello"},       {9, CL_TRANSPORT_HTTP, 0, "tick?"},
        {11, CL_TRANSPORT_LOCAL, 0xffff, "cfg?"}, {0xfedcba9876543210ull, CL_TRANSPORT_COAP, 1, ""},
        {13, CL_TRANSPORT_COAP, 0, "time?"},
    };
    item_t want_items[] = {
        {7, CL_TRANSPORT_COAP, 3, "olleh"},
        {9, CL_TRANSPORT_HTTP, 0, "tick=1234567890123"},
        {11, CL_TRANSPORT_LOCAL, 0xffff, "cfg=10,20,30,2"},
        {0xfedcba9876543210ull, CL_TRANSPORT_COAP, 1, ""},
        {13, CL_TRANSPORT_COAP, 0, "time=1700000000123"},
    };
    uint8_t in[1024], want[1024], out[1024];
    size_t in_len = make_batch(in, sizeof(in), in_items, 5);
    size_t want_len = make_batch(want, sizeof(want), want_items, 5);
    size_t out_len = 0;
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len), CL_OK);
    tu_assert_bytes(out, out_len, want, want_len);
    /* send() once, with the first item */
    assert_int_equal(h->nsent, 1);
    assert_int_equal(h->sent_peer[0], 7);
    assert_int_equal(h->sent_transport[0], CL_TRANSPORT_COAP);
    tu_assert_bytes(h->sent_msg[0], h->sent_len[0], (const uint8_t *)"hello", 5);
    /* an empty batch: no send */
    in_len = make_batch(in, sizeof(in), NULL, 0);
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len), CL_OK);
    tu_assert_bytes(out, out_len, in, in_len);
    assert_int_equal(h->nsent, 1);
    /* a malformed batch: the core's error comes back unchanged */
    in[0] = 'X';
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(cl_runtime_handle(rt, in, 0, out, sizeof(out), &out_len), CL_ERR_BAD_INPUT);
    cl_runtime_close(rt);
    th_free(h);
}

static void t_handle_big(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(kind, h);
    uint8_t *in = malloc(CL_CORE_MAX_BATCH_BYTES), *out = malloc(CL_CORE_MAX_BATCH_BYTES);
    uint8_t *msg = malloc(CL_CORE_MAX_MESSAGE), *rev = malloc(CL_CORE_MAX_MESSAGE);
    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(msg);
    assert_non_null(rev);
    size_t in_len = 0;
    assert_int_equal(cl_batch_begin(in, CL_CORE_MAX_BATCH_BYTES, &in_len), CL_OK);
    for (size_t i = 0; i < CL_CORE_MAX_BATCH; i++) {
        for (size_t k = 0; k < CL_CORE_MAX_MESSAGE; k++)
            msg[k] = (uint8_t)(i * 31 + k * 17 + (k >> 8));
        cl_batch_item_t it = {i, CL_TRANSPORT_COAP, (uint16_t)i, msg, CL_CORE_MAX_MESSAGE};
        assert_int_equal(cl_batch_add(in, CL_CORE_MAX_BATCH_BYTES, &in_len, &it), CL_OK);
    }
    size_t out_len = 0;
    /* out_size far above the buffer's real size is clamped to the batch maximum */
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, SIZE_MAX, &out_len), CL_OK);
    assert_int_equal(out_len, in_len);
    size_t count = 0, pos = 0;
    assert_int_equal(cl_batch_validate(out, out_len, &count), CL_OK);
    assert_int_equal(count, CL_CORE_MAX_BATCH);
    for (size_t i = 0; i < CL_CORE_MAX_BATCH; i++) {
        cl_batch_item_t r;
        assert_int_equal(cl_batch_next(out, out_len, &pos, &r), CL_OK);
        assert_int_equal(r.peer, i);
        assert_int_equal(r.flags, i);
        assert_int_equal(r.len, CL_CORE_MAX_MESSAGE);
        for (size_t k = 0; k < CL_CORE_MAX_MESSAGE; k++)
            rev[CL_CORE_MAX_MESSAGE - 1 - k] = (uint8_t)(i * 31 + k * 17 + (k >> 8));
        tu_assert_bytes(r.msg, r.len, rev, CL_CORE_MAX_MESSAGE);
    }
    free(in);
    free(out);
    free(msg);
    free(rev);
    cl_runtime_close(rt);
    th_free(h);
}

static void t_out_size(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(kind, h);
    item_t it = {5, CL_TRANSPORT_COAP, 0, "abcdef"};
    uint8_t in[256], out[256];
    size_t in_len = make_batch(in, sizeof(in), &it, 1), out_len = 0;
    /* one byte short: refused, nothing returned, the runtime stays usable */
    out_len = 777;
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, in_len - 1, &out_len),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(out_len, 777);
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, 0, &out_len), CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, in_len, &out_len), CL_OK);
    assert_int_equal(out_len, in_len);
    /* attest into a buffer too small for report + quote */
    uint8_t nonce[32];
    memset(nonce, 0x11, sizeof(nonce));
    assert_int_equal(cl_runtime_attest(rt, nonce, sizeof(nonce), out, sizeof(out), &out_len),
                     CL_ERR_BUFFER_TOO_SMALL);
    /* inputs no frame could carry are refused before reaching the core */
    assert_int_equal(
        cl_runtime_handle(rt, in, (size_t)CL_CORE_MAX_SNAPSHOT + 1, out, sizeof(out), &out_len),
        CL_ERR_LIMIT);
    assert_int_equal(
        cl_runtime_attest(rt, nonce, (size_t)CL_CORE_MAX_SNAPSHOT + 1, out, sizeof(out), &out_len),
        CL_ERR_LIMIT);
    assert_int_equal(cl_runtime_handle(rt, NULL, 4, out, sizeof(out), &out_len),
                     CL_ERR_INVALID_ARG);
    /* an empty input given as NULL reaches the core as an empty buffer on both */
    assert_int_equal(cl_runtime_handle(rt, NULL, 0, out, sizeof(out), &out_len), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_runtime_attest(rt, NULL, 0, out, sizeof(out), &out_len), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_runtime_tick(rt, -5), CL_OK);
    cl_runtime_close(rt);
    th_free(h);
}

static void t_attest_quote(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(kind, h);
    uint8_t nonce[32], out[CL_CORE_MAX_EVIDENCE];
    for (size_t i = 0; i < sizeof(nonce); i++)
        nonce[i] = (uint8_t)(0xa0 + i);
    size_t out_len = 0;
    assert_int_equal(cl_runtime_attest(rt, nonce, sizeof(nonce), out, sizeof(out), &out_len),
                     CL_OK);
    assert_true(out_len > CL_SGX_REPORT_LEN + 1020);
    const uint8_t *report = out, *q = out + CL_SGX_REPORT_LEN;
    /* quote v3 header: version 3, ECDSA-P256, sim vendor id, "SIM!" */
    assert_int_equal(q[0] | q[1] << 8, 3);
    assert_int_equal(q[2] | q[3] << 8, 2);
    tu_assert_bytes(q + 12, 16, CL_SIM_VENDOR_ID, 16);
    tu_assert_bytes(q + 28 + 16, 4, (const uint8_t *)CL_SIM_USER_DATA_MAGIC, 4);
    /* the quoted body is the core's report body */
    tu_assert_bytes(q + 48, CL_SGX_REPORT_BODY_LEN, report, CL_SGX_REPORT_BODY_LEN);
    uint8_t rdata[64] = {0};
    memcpy(rdata, nonce, sizeof(nonce));
    tu_assert_bytes(q + 48 + CL_SGX_RB_REPORTDATA, 64, rdata, 64);
    /* identity of the echo image: measured MRENCLAVE, echo_image.conf values */
    uint8_t mr[32];
    assert_int_equal(cl_sim_measure(CL_TEST_ECHO_IMAGE, mr), CL_OK);
    tu_assert_bytes(q + 48 + CL_SGX_RB_MRENCLAVE, 32, mr, 32);
    cl_sgx_report_body_t body;
    cl_sgx_report_body_decode(q + 48, &body);
    assert_int_equal(body.isv_prod_id, 7);
    assert_int_equal(body.isv_svn, 3);
    assert_true(body.attr_flags & CL_SGX_FLAGS_DEBUG);
    /* the host's own quote slot is never used */
    assert_int_equal(h->n_quote, 0);
    /* a nonce the core refuses */
    assert_int_equal(cl_runtime_attest(rt, nonce, 8, out, sizeof(out), &out_len), CL_ERR_BAD_INPUT);
    cl_runtime_close(rt);
    th_free(h);
}

static void t_snapshot_big(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(kind, h);
    char resp[256], cmd[32];
    snprintf(cmd, sizeof(cmd), "snap:%u", CL_CORE_MAX_SNAPSHOT);
    command(rt, cmd, resp, sizeof(resp));
    assert_string_equal(resp, "snap-ok");
    assert_int_equal(h->snap_len, CL_CORE_MAX_SNAPSHOT);
    assert_int_equal(h->last_snap_get_size, CL_CORE_MAX_SNAPSHOT); /* clamped */
    snprintf(cmd, sizeof(cmd), "snap:%u", CL_CORE_MAX_SNAPSHOT + 1);
    command(rt, cmd, resp, sizeof(resp));
    assert_string_equal(resp, "snap-err:-8"); /* CL_ERR_LIMIT, host untouched */
    assert_int_equal(h->snap_len, CL_CORE_MAX_SNAPSHOT);
    command(rt, "snap:0", resp, sizeof(resp));
    assert_string_equal(resp, "snap-ok");
    assert_int_equal(h->snap_len, 0);
    cl_runtime_close(rt);
    th_free(h);
}

static void t_archive_compact(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(kind, h);
    char resp[256];
    command(rt, "archive", resp, sizeof(resp));
    assert_string_equal(resp, "archive=1,2:2:ct-one;ct-two!;");
    assert_int_equal(h->narch, 2);
    assert_int_equal(h->arch[1].bucket, 101);
    uint8_t tag[16];
    memset(tag, 0xa1, sizeof(tag));
    tu_assert_bytes(h->arch[1].tag, 16, tag, 16);
    tu_assert_bytes(h->arch[0].data, h->arch[0].len, (const uint8_t *)"ct-one", 6);
    assert_int_equal(h->scan_from, 0);
    assert_int_equal(h->scan_to, 1000);
    assert_int_equal(h->scan_after, 0);
    assert_int_equal(h->scan_max, 10);
    assert_int_equal(h->scan_size, 256);
    command(rt, "compact", resp, sizeof(resp));
    assert_string_equal(resp, "compact=0");
    assert_int_equal(h->n_compact, 1);
    assert_int_equal(h->compact_before, 5);
    cl_runtime_close(rt);
    th_free(h);
}

static void t_ocall_errors(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    cl_runtime_config_t cfg = cfg_for(kind);
    cl_runtime_t *rt = NULL;
    /* a host failure reaches the core and fails open */
    th_t *h = th_new();
    h->fail_append = CL_ERR_PERSIST;
    assert_int_equal(cl_runtime_open(&cfg, &h->ops, &rt), CL_ERR_PERSIST);
    assert_null(rt);
    th_free(h);
    /* a status outside cl_status_t is turned into CL_ERR_BAD_INPUT */
    h = th_new();
    h->fail_time = (cl_status_t)5;
    assert_int_equal(cl_runtime_open(&cfg, &h->ops, &rt), CL_ERR_BAD_INPUT);
    th_free(h);
    /* a host claiming more bytes than the buffer holds is refused */
    h = th_new();
    h->lie_read_len = true;
    assert_int_equal(cl_runtime_open(&cfg, &h->ops, &rt), CL_ERR_BAD_INPUT);
    th_free(h);
    /* a host table of another version */
    h = th_new();
    h->ops.version = 99;
    assert_int_equal(cl_runtime_open(&cfg, &h->ops, &rt), CL_ERR_UNSUPPORTED);
    th_free(h);
}

static void t_missing_ops(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_host_ops_t full = h->ops;
    memset(&h->ops, 0, sizeof(h->ops));
    h->ops.version = CL_HOST_OPS_VERSION;
    h->ops.ctx = h;
    h->ops.log_line = full.log_line;
    cl_runtime_t *rt = open_rt(kind, h);
    assert_int_equal(h->nlines, 1);
    assert_int_equal(h->n_time, 0);
    char resp[256];
    command(rt, "time?", resp, sizeof(resp));
    assert_string_equal(resp, "time=err:-4"); /* the core saw a NULL time_now */
    command(rt, "xyz", resp, sizeof(resp));
    assert_string_equal(resp, "zyx");
    assert_int_equal(h->nsent, 0);
    uint8_t nonce[16] = {1}, out[CL_CORE_MAX_EVIDENCE];
    size_t out_len;
    assert_int_equal(cl_runtime_attest(rt, nonce, sizeof(nonce), out, sizeof(out), &out_len),
                     CL_OK);
    cl_runtime_close(rt);
    /* no log_line either: still works, silently */
    h->ops.log_line = NULL;
    h->nlines = 0;
    rt = open_rt(kind, h);
    command(rt, "log-long", resp, sizeof(resp));
    cl_runtime_close(rt);
    assert_int_equal(h->nlines, 0);
    th_free(h);
}

static void t_log_long(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(kind, h);
    char resp[256], want[CL_CORE_MAX_LOG_LINE + 1];
    command(rt, "log-long", resp, sizeof(resp));
    assert_string_equal(resp, "gnol-gol");
    /* the first CL_CORE_MAX_LOG_LINE bytes, newlines removed, level clamped */
    size_t n = 0;
    for (int i = 0; i < CL_CORE_MAX_LOG_LINE; i++)
        if (i % 10 != 9)
            want[n++] = (char)('a' + i % 26);
    want[n] = 0;
    assert_int_equal(h->nlines, 2);
    assert_string_equal(h->lines[1], want);
    assert_int_equal(h->levels[1], CL_LOG_DEBUG);
    cl_runtime_close(rt);
    th_free(h);
}

static void t_reentry(void **state)
{
    cl_runtime_kind_t kind = *(const cl_runtime_kind_t *)*state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(kind, h);
    h->rt = rt;
    h->reentry_st = CL_OK;
    char resp[64];
    command(rt, "abc", resp, sizeof(resp));
    assert_string_equal(resp, "cba");
    assert_int_equal(h->reentry_st, CL_ERR_STATE); /* send() called back into the runtime */
    h->rt = NULL;
    assert_int_equal(cl_runtime_tick(rt, 2), CL_OK);
    cl_runtime_close(rt);
    th_free(h);
}

/* ------------------------------------------------------------------ */
/* image problems: the same answer from both runtimes                   */

static int copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    int rc = (a && b) ? 0 : -1;
    char buf[65536];
    size_t n;
    while (rc == 0 && (n = fread(buf, 1, sizeof(buf), a)) > 0)
        if (fwrite(buf, 1, n, b) != n)
            rc = -1;
    if (a)
        fclose(a);
    if (b && fclose(b) != 0)
        rc = -1;
    return rc;
}

static cl_status_t try_open(cl_runtime_kind_t kind, const char *image, const char *exe)
{
    th_t *h = th_new();
    cl_runtime_config_t cfg = cfg_for(kind);
    cfg.core_image = image;
    cfg.core_exe = exe;
    cl_runtime_t *rt = NULL;
    cl_status_t st = cl_runtime_open(&cfg, &h->ops, &rt);
    if (st == CL_OK) {
        char resp[64];
        command(rt, "ok", resp, sizeof(resp));
        assert_string_equal(resp, "ko");
        cl_runtime_close(rt);
    } else {
        assert_null(rt);
    }
    th_free(h);
    return st;
}

static void t_bad_images(void **state)
{
    (void)state;
    char path[160], sig[170], dir[128], exe[160];
    /* missing image */
    cl_status_t s1 = try_open(CL_RUNTIME_SIM, "/nonexistent/echo_image.so", CL_TEST_CORE_EXE);
    cl_status_t s2 = try_open(CL_RUNTIME_PROCESS, "/nonexistent/echo_image.so", CL_TEST_CORE_EXE);
    assert_int_not_equal(s1, CL_OK);
    assert_int_equal(s1, s2);
    /* an image without its signature file */
    snprintf(dir, sizeof(dir), "%s/img", g_tmp);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/echo_image.so", dir);
    assert_int_equal(copy_file(CL_TEST_ECHO_IMAGE, path), 0);
    s1 = try_open(CL_RUNTIME_SIM, path, CL_TEST_CORE_EXE);
    s2 = try_open(CL_RUNTIME_PROCESS, path, CL_TEST_CORE_EXE);
    assert_int_not_equal(s1, CL_OK);
    assert_int_equal(s1, s2);
    /* with the signature: loads; the process runtime finds cloister-core next to it */
    snprintf(sig, sizeof(sig), "%s.sig", path);
    assert_int_equal(copy_file(CL_TEST_ECHO_IMAGE ".sig", sig), 0);
    assert_int_equal(try_open(CL_RUNTIME_SIM, path, CL_TEST_CORE_EXE), CL_OK);
    assert_int_equal(try_open(CL_RUNTIME_PROCESS, path, NULL), CL_ERR_NOT_FOUND);
    snprintf(exe, sizeof(exe), "%s/cloister-core", dir);
    assert_int_equal(symlink(CL_TEST_CORE_EXE, exe), 0);
    assert_int_equal(try_open(CL_RUNTIME_PROCESS, path, NULL), CL_OK);
    /* a tampered image (one byte changed): measurement no longer matches */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0x1000, SEEK_SET), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, 0x1000, SEEK_SET), 0);
    fputc(c ^ 0x01, f);
    fclose(f);
    s1 = try_open(CL_RUNTIME_SIM, path, CL_TEST_CORE_EXE);
    s2 = try_open(CL_RUNTIME_PROCESS, path, CL_TEST_CORE_EXE);
    assert_int_not_equal(s1, CL_OK);
    assert_int_equal(s1, s2);
    /* a core_exe that does not exist */
    assert_int_equal(try_open(CL_RUNTIME_PROCESS, CL_TEST_ECHO_IMAGE, "/nonexistent/cloister-core"),
                     CL_ERR_NOT_FOUND);
}

/* ------------------------------------------------------------------ */
/* process runtime only: a child that dies or misbehaves               */

static cl_runtime_t *open_test_child(th_t *h, const char *mode)
{
    cl_runtime_config_t cfg = cfg_for(CL_RUNTIME_PROCESS);
    cfg.core_exe = CL_TEST_CORE_TEST_EXE;
    assert_int_equal(setenv("CLOISTER_CORE_TEST_MODE", mode, 1), 0);
    cl_runtime_t *rt = NULL;
    cl_status_t st = cl_runtime_open(&cfg, &h->ops, &rt);
    unsetenv("CLOISTER_CORE_TEST_MODE");
    if (st != CL_OK)
        fail_msg("open with test mode %s: %s", mode, cl_status_str(st));
    return rt;
}

static bool child_gone(long pid)
{
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static void t_child_killed(void **state)
{
    (void)state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(CL_RUNTIME_PROCESS, h);
    long pid = cl_runtime_pid(rt);
    char resp[64];
    command(rt, "alive", resp, sizeof(resp));
    assert_string_equal(resp, "evila");
    assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
    double t0 = now_s();
    uint8_t in[64], out[256];
    item_t it = {1, CL_TRANSPORT_COAP, 0, "x"};
    size_t in_len = make_batch(in, sizeof(in), &it, 1), out_len;
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len), CL_ERR_STATE);
    assert_true(now_s() - t0 < 5.0);
    assert_true(th_has_line(h, "killed by signal 9"));
    assert_true(child_gone(pid)); /* reaped, no zombie */
    assert_int_equal(cl_runtime_tick(rt, 1), CL_ERR_STATE);
    uint8_t nonce[16] = {0};
    assert_int_equal(cl_runtime_attest(rt, nonce, 16, out, sizeof(out), &out_len), CL_ERR_STATE);
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len), CL_ERR_STATE);
    t0 = now_s();
    cl_runtime_close(rt);
    assert_true(now_s() - t0 < 2.0);
    th_free(h);
}

static void t_child_killed_in_ocall(void **state)
{
    (void)state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(CL_RUNTIME_PROCESS, h);
    long pid = cl_runtime_pid(rt);
    h->kill_pid = pid;
    uint8_t in[64], out[256];
    item_t it = {1, CL_TRANSPORT_COAP, 0, "x"};
    size_t in_len = make_batch(in, sizeof(in), &it, 1), out_len = 99;
    double t0 = now_s();
    assert_int_equal(cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len), CL_ERR_STATE);
    assert_true(now_s() - t0 < 5.0);
    assert_int_equal(out_len, 99);
    assert_int_equal(h->nsent, 1); /* the ocall itself was served */
    assert_true(child_gone(pid));
    assert_true(th_has_line(h, "killed by signal 9"));
    assert_int_equal(cl_runtime_tick(rt, 1), CL_ERR_STATE);
    cl_runtime_close(rt);
    th_free(h);
}

static void t_child_exits_on_close(void **state)
{
    (void)state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(CL_RUNTIME_PROCESS, h);
    long pid = cl_runtime_pid(rt);
    double t0 = now_s();
    cl_runtime_close(rt);
    assert_true(now_s() - t0 < 2.0);
    assert_true(child_gone(pid));
    assert_int_equal(h->nlines, 1); /* only the core's open line: a clean exit */
    th_free(h);
}

/* The child inherits stdio and its channel, nothing else (no CLOEXEC needed on our fds). */
static void t_child_fds(void **state)
{
    (void)state;
    char marker[128];
    snprintf(marker, sizeof(marker), "%s/inherit-marker", g_tmp);
    int fd = open(marker, O_CREAT | O_RDWR, 0600); /* deliberately without O_CLOEXEC */
    assert_true(fd >= 0);
    th_t *h = th_new();
    cl_runtime_t *rt = open_rt(CL_RUNTIME_PROCESS, h);
    char dir[64], path[160], target[512];
    snprintf(dir, sizeof(dir), "/proc/%ld/fd", cl_runtime_pid(rt));
    int sockets = 0;
    for (int i = 0; i < 1024; i++) {
        snprintf(path, sizeof(path), "%s/%d", dir, i);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n < 0)
            continue;
        target[n] = 0;
        assert_null(strstr(target, "inherit-marker"));
        if (strncmp(target, "socket:", 7) == 0)
            sockets++;
    }
    assert_int_equal(sockets, 1);
    cl_runtime_close(rt);
    close(fd);
    th_free(h);
}

typedef struct {
    const char *mode;
    cl_status_t want;
} garbage_t;

static void t_garbage_frames(void **state)
{
    (void)state;
    static const garbage_t cases[] = {
        {"huge", CL_ERR_BAD_INPUT},
        {"max-plus-one", CL_ERR_BAD_INPUT},
        {"zero", CL_ERR_BAD_INPUT},
        {"short-eof", CL_ERR_STATE},
        {"bad-type", CL_ERR_BAD_INPUT},
        {"quote-ocall", CL_ERR_BAD_INPUT},
        {"oversize-result", CL_ERR_BAD_INPUT},
        {"bad-status", CL_ERR_BAD_INPUT},
        {"error-with-data", CL_ERR_BAD_INPUT},
        {"trailing", CL_ERR_BAD_INPUT},
        {"truncated-result", CL_ERR_BAD_INPUT},
        {"archive-count", CL_ERR_BAD_INPUT},
        {"archive-short", CL_ERR_BAD_INPUT},
        {"snapshot-short", CL_ERR_BAD_INPUT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        th_t *h = th_new();
        cl_runtime_t *rt = open_test_child(h, cases[i].mode);
        long pid = cl_runtime_pid(rt);
        uint8_t in[64], out[256];
        item_t it = {1, CL_TRANSPORT_COAP, 0, "abc"};
        size_t in_len = make_batch(in, sizeof(in), &it, 1), out_len = 12345;
        double t0 = now_s();
        cl_status_t st = cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len);
        if (st != cases[i].want)
            fail_msg("mode %s: got %s, want %s", cases[i].mode, cl_status_str(st),
                     cl_status_str(cases[i].want));
        assert_int_equal(out_len, 12345); /* nothing returned */
        assert_true(now_s() - t0 < 5.0);
        assert_true(child_gone(pid));
        assert_true(th_has_line(h, "cloister-core"));
        assert_int_equal(cl_runtime_tick(rt, 1), CL_ERR_STATE);
        t0 = now_s();
        cl_runtime_close(rt);
        assert_true(now_s() - t0 < 2.0);
        th_free(h);
    }
}

static void t_unresponsive_child(void **state)
{
    (void)state;
    static const char *modes[] = {"hang", "stall"};
    for (size_t i = 0; i < 2; i++) {
        th_t *h = th_new();
        cl_runtime_t *rt = open_test_child(h, modes[i]);
        cl_runtime_test_set_timeout(rt, 300);
        uint8_t in[64], out[256];
        item_t it = {1, CL_TRANSPORT_COAP, 0, "abc"};
        size_t in_len = make_batch(in, sizeof(in), &it, 1), out_len;
        double t0 = now_s();
        assert_int_equal(cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len),
                         CL_ERR_STATE);
        assert_true(now_s() - t0 < 3.0);
        assert_true(th_has_line(h, "timed out"));
        assert_true(child_gone(cl_runtime_pid(rt)));
        cl_runtime_close(rt);
        th_free(h);
    }
}

static void t_log_evil(void **state)
{
    (void)state;
    th_t *h = th_new();
    cl_runtime_t *rt = open_test_child(h, "log-evil");
    char resp[64];
    command(rt, "fine", resp, sizeof(resp)); /* the ecall itself is answered normally */
    assert_string_equal(resp, "enif");
    assert_int_equal(h->nlines, 2);
    assert_true(strlen(h->lines[1]) <= CL_CORE_MAX_LOG_LINE);
    assert_true(strlen(h->lines[1]) > 100);
    for (const char *p = h->lines[1]; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    assert_int_equal(h->levels[1], CL_LOG_DEBUG);
    assert_int_equal(h->line_len_max, strlen(h->lines[1]));
    cl_runtime_close(rt);
    th_free(h);
}

static void t_fuzz_frames(void **state)
{
    (void)state;
    for (int seed = 0; seed < 48; seed++) {
        char mode[32];
        snprintf(mode, sizeof(mode), "fuzz:%d", seed);
        th_t *h = th_new();
        cl_runtime_t *rt = open_test_child(h, mode);
        cl_runtime_test_set_timeout(rt, 300);
        uint8_t in[64], out[256];
        item_t it = {1, CL_TRANSPORT_COAP, 0, "abc"};
        size_t in_len = make_batch(in, sizeof(in), &it, 1), out_len;
        cl_status_t st = cl_runtime_handle(rt, in, in_len, out, sizeof(out), &out_len);
        assert_int_not_equal(st, CL_OK);
        assert_int_equal(cl_runtime_tick(rt, 1), CL_ERR_STATE);
        cl_runtime_close(rt);
        th_free(h);
    }
}

/* ------------------------------------------------------------------ */
/* process runtime only: cloister-core validates what the host sends    */

typedef struct raw {
    pid_t pid;
    cl_chan_t ch;
} raw_t;

static void raw_spawn(raw_t *r)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char fdarg[16];
    snprintf(fdarg, sizeof(fdarg), "%d", sv[1]);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fcntl(sv[1], F_SETFD, 0);
        execl(CL_TEST_CORE_EXE, CL_TEST_CORE_EXE, "--fd", fdarg, "--image", CL_TEST_ECHO_IMAGE,
              "--platform", g_platform, (char *)NULL);
        _exit(127);
    }
    close(sv[1]);
    r->pid = pid;
    cl_chan_init(&r->ch, sv[0], 10000);
}

static void raw_end(raw_t *r)
{
    cl_chan_free(&r->ch);
    int ws;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, &ws, 0);
}

static void raw_open_frame(raw_t *r, uint16_t mask, bool trailing)
{
    cl_chan_begin(&r->ch, CL_FRAME_ECALL_OPEN);
    cl_chan_put_u32(&r->ch, CL_CORE_API_VERSION);
    cl_chan_put_u32(&r->ch, CL_CORE_API_VERSION);
    cl_chan_put_u32(&r->ch, 0);
    cl_chan_put_u32(&r->ch, 0);
    cl_chan_put_u32(&r->ch, 0);
    cl_chan_put_u16(&r->ch, 1);
    cl_chan_put_u16(&r->ch, 0);
    cl_chan_put_u16(&r->ch, mask);
    if (trailing)
        cl_chan_put_u16(&r->ch, 0);
    assert_int_equal(cl_chan_send(&r->ch), CL_OK);
}

/* Receives a frame of the given type (fails the test otherwise). */
static cl_rd_t raw_expect(raw_t *r, uint8_t want_type)
{
    uint8_t type;
    cl_rd_t rd;
    assert_int_equal(cl_chan_recv(&r->ch, &type, &rd), CL_OK);
    assert_int_equal(type, want_type);
    return rd;
}

static cl_status_t raw_result(raw_t *r, uint64_t *value)
{
    cl_rd_t rd = raw_expect(r, CL_FRAME_ECALL_RESULT);
    int32_t st = cl_rd_i32(&rd);
    uint64_t v = cl_rd_u64(&rd);
    size_t len;
    (void)cl_rd_bytes(&rd, CL_CHAN_MAX_DATA, &len);
    assert_true(cl_rd_done(&rd));
    if (value)
        *value = v;
    return (cl_status_t)st;
}

static void t_child_validates_ecalls(void **state)
{
    (void)state;
    raw_t r;
    raw_spawn(&r);
    uint8_t batch[8] = {'C', 'L', 'B', '1', 0, 0, 0, 0};
    /* handle before open */
    cl_chan_begin(&r.ch, CL_FRAME_ECALL_HANDLE);
    cl_chan_put_u64(&r.ch, 1);
    cl_chan_put_u32(&r.ch, 64);
    cl_chan_put_bytes(&r.ch, batch, 8);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_STATE);
    /* open with no host ops at all */
    uint64_t handle = 0;
    raw_open_frame(&r, 0, false);
    assert_int_equal(raw_result(&r, &handle), CL_OK);
    assert_true(handle != 0);
    /* a second open */
    raw_open_frame(&r, 0, false);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_STATE);
    /* out_size above the limit */
    cl_chan_begin(&r.ch, CL_FRAME_ECALL_HANDLE);
    cl_chan_put_u64(&r.ch, handle);
    cl_chan_put_u32(&r.ch, 0xffffffffu);
    cl_chan_put_bytes(&r.ch, batch, 8);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_LIMIT);
    cl_chan_begin(&r.ch, CL_FRAME_ECALL_ATTEST);
    cl_chan_put_u64(&r.ch, handle);
    cl_chan_put_u32(&r.ch, CL_CORE_MAX_EVIDENCE + 1);
    cl_chan_put_bytes(&r.ch, batch, 8);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_LIMIT);
    /* a handle that is not the core's */
    cl_chan_begin(&r.ch, CL_FRAME_ECALL_TICK);
    cl_chan_put_u64(&r.ch, handle ^ 2);
    cl_chan_put_u64(&r.ch, 5);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_INVALID_ARG);
    /* truncated fields; a byte string longer than the frame */
    cl_chan_begin(&r.ch, CL_FRAME_ECALL_TICK);
    cl_chan_put_u64(&r.ch, handle);
    cl_chan_put_u32(&r.ch, 5);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_BAD_INPUT);
    cl_chan_begin(&r.ch, CL_FRAME_ECALL_HANDLE);
    cl_chan_put_u64(&r.ch, handle);
    cl_chan_put_u32(&r.ch, 64);
    cl_chan_put_u32(&r.ch, 1000);
    cl_chan_put_raw(&r.ch, batch, 8);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_BAD_INPUT);
    /* still serving: a real handle */
    uint8_t out[64];
    cl_chan_begin(&r.ch, CL_FRAME_ECALL_HANDLE);
    cl_chan_put_u64(&r.ch, handle);
    cl_chan_put_u32(&r.ch, sizeof(out));
    cl_chan_put_bytes(&r.ch, batch, 8);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_OK);
    /* an unknown frame type ends the process */
    cl_chan_begin(&r.ch, 0x77);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    uint8_t type;
    cl_rd_t rd;
    assert_int_equal(cl_chan_recv(&r.ch, &type, &rd), CL_ERR_STATE);
    assert_int_equal(r.ch.err, CL_CHAN_EOF);
    raw_end(&r);

    /* a frame length above the bound ends the process */
    raw_spawn(&r);
    uint8_t hdr[5] = {0xff, 0xff, 0xff, 0x7f, CL_FRAME_ECALL_OPEN};
    assert_int_equal(cl_chan_write_raw(&r.ch, hdr, sizeof(hdr)), CL_OK);
    assert_int_equal(cl_chan_recv(&r.ch, &type, &rd), CL_ERR_STATE);
    assert_int_equal(r.ch.err, CL_CHAN_EOF);
    raw_end(&r);
}

static void t_child_validates_ocall_results(void **state)
{
    (void)state;
    raw_t r;
    cl_rd_t rd;
    /* time_now answered with a status outside cl_status_t */
    raw_spawn(&r);
    raw_open_frame(&r, CL_OPS_BIT_TIME_NOW, false);
    rd = raw_expect(&r, CL_FRAME_OCALL_TIME_NOW);
    assert_true(cl_rd_done(&rd));
    cl_chan_begin(&r.ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&r.ch, 99);
    cl_chan_put_u64(&r.ch, 0);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_BAD_INPUT);
    raw_end(&r);

    /* log_line arrives raw (sanitising is the host's job); time_now with a trailing byte */
    raw_spawn(&r);
    raw_open_frame(&r, CL_OPS_BIT_LOG_LINE | CL_OPS_BIT_TIME_NOW, false);
    rd = raw_expect(&r, CL_FRAME_OCALL_LOG_LINE);
    assert_int_equal(cl_rd_i32(&rd), CL_LOG_INFO);
    size_t len;
    const uint8_t *p = cl_rd_bytes(&rd, 1000, &len);
    assert_true(cl_rd_done(&rd));
    const char *raw_line = "echo: open\t\x1b[1mbold\x7f!";
    tu_assert_bytes(p, len, (const uint8_t *)raw_line, strlen(raw_line));
    rd = raw_expect(&r, CL_FRAME_OCALL_TIME_NOW);
    cl_chan_begin(&r.ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&r.ch, 0);
    cl_chan_put_u64(&r.ch, 0);
    cl_chan_put_u16(&r.ch, 0);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_BAD_INPUT);
    raw_end(&r);

    /* log_read answered with more bytes than the core asked for */
    raw_spawn(&r);
    raw_open_frame(&r, CL_OPS_BIT_LOG_APPEND | CL_OPS_BIT_LOG_READ, false);
    rd = raw_expect(&r, CL_FRAME_OCALL_LOG_APPEND);
    assert_int_equal(cl_rd_u64(&rd), 1);
    cl_chan_begin(&r.ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&r.ch, 0);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    rd = raw_expect(&r, CL_FRAME_OCALL_LOG_READ);
    assert_int_equal(cl_rd_u64(&rd), 1);
    assert_int_equal(cl_rd_u32(&rd), 64);
    uint8_t big[100];
    memset(big, 'r', sizeof(big));
    cl_chan_begin(&r.ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&r.ch, 0);
    cl_chan_put_u64(&r.ch, 1);
    cl_chan_put_bytes(&r.ch, big, sizeof(big));
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_BAD_INPUT);
    raw_end(&r);

    /* an answer of the wrong frame type: the core process gives up */
    raw_spawn(&r);
    raw_open_frame(&r, CL_OPS_BIT_TIME_NOW, false);
    rd = raw_expect(&r, CL_FRAME_OCALL_TIME_NOW);
    cl_chan_begin(&r.ch, CL_FRAME_ECALL_TICK);
    cl_chan_put_u64(&r.ch, 0);
    cl_chan_put_u64(&r.ch, 0);
    assert_int_equal(cl_chan_send(&r.ch), CL_OK);
    uint8_t type;
    assert_int_equal(cl_chan_recv(&r.ch, &type, &rd), CL_ERR_STATE);
    raw_end(&r);

    /* a malformed open frame */
    raw_spawn(&r);
    raw_open_frame(&r, 0, true);
    assert_int_equal(raw_result(&r, NULL), CL_ERR_BAD_INPUT);
    raw_end(&r);
}

/* ------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

#define BOTH(fn)                                                                                   \
    {#fn "_sim", fn, NULL, NULL, (void *)(uintptr_t)&KIND_SIM},                                    \
    {                                                                                              \
#fn "_process", fn, NULL, NULL, (void *)(uintptr_t)&KIND_PROCESS                           \
    }
#define ONE(fn)                                                                                    \
    {                                                                                              \
#fn, fn, NULL, NULL, NULL                                                                  \
    }

int main(void)
{
    snprintf(g_tmp, sizeof(g_tmp), "/tmp/cl-rt-XXXXXX");
    if (mkdtemp(g_tmp) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(g_platform, sizeof(g_platform), "%s/platform", g_tmp);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        BOTH(t_open_ocalls),
        BOTH(t_handle_echo),
        BOTH(t_handle_big),
        BOTH(t_out_size),
        BOTH(t_attest_quote),
        BOTH(t_snapshot_big),
        BOTH(t_archive_compact),
        BOTH(t_ocall_errors),
        BOTH(t_missing_ops),
        BOTH(t_log_long),
        BOTH(t_reentry),
        ONE(t_bad_images),
        ONE(t_child_killed),
        ONE(t_child_killed_in_ocall),
        ONE(t_child_exits_on_close),
        ONE(t_child_fds),
        ONE(t_garbage_frames),
        ONE(t_unresponsive_child),
        ONE(t_log_evil),
        ONE(t_fuzz_frames),
        ONE(t_child_validates_ecalls),
        ONE(t_child_validates_ocall_results),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
