/*
 * core_main.c - `cloister-core`: the trusted core in its own process (the
 * process runtime, tee/process/README.md). This process plays the enclave:
 * it loads and measures the core image with the simulated platform, binds
 * the platform to the image's identity, and serves ECALL frames from the
 * host over an inherited socket (channel.h). Every host ocall the core makes
 * becomes an OCALL frame to the host, whose answer is validated here before
 * the core sees it. The quote ocall is answered here, by the simulated
 * quoting enclave on this process's platform (on Gramine, the LibOS does the
 * same through /dev/attestation/quote; see docs/sgx.md).
 *
 *   cloister-core --fd N --image PATH [--platform DIR]
 *
 * The host is untrusted: ecall frames are parsed exactly, out_size is
 * bounded (CL_CORE_MAX_BATCH_BYTES / CL_CORE_MAX_EVIDENCE), inputs are
 * copied out of the receive buffer before the core runs, ocall results are
 * checked against the sizes the core asked for. A malformed ecall frame is
 * answered with CL_ERR_BAD_INPUT; an unknown frame type or a broken stream
 * ends the process.
 *
 * Test builds (CL_CORE_TEST_MODES, target cloister-core-test) read
 * CLOISTER_CORE_TEST_MODE and misbehave on the first handle() ecall, so the
 * host's defences can be tested; the shipped cloister-core has no such code.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "channel.h"
#include "cloister/bytes.h"
#include "cloister/core.h"
#include "cloister/tee_sim.h"

typedef struct child {
    cl_chan_t ch;
    cl_status_t boot; /* result of loading the image */
    cl_sim_platform_t *platform;
    cl_sim_enclave_t *enclave;
    const cl_core_ecalls_t *ecalls;
    const cl_tee_platform_t *ptab;
    cl_host_ops_t ops; /* forwarding table given to the core */
    cl_core_handle_t handle;
    bool opened;
    bool broken; /* the channel failed inside an ocall: exit after the ecall */
#ifdef CL_CORE_TEST_MODES
    const char *test_mode;
#endif
} child_t;

static void die(const char *msg)
{
    fprintf(stderr, "cloister-core: %s\n", msg);
}

/* ------------------------------------------------------------------ */
/* forwarding ocalls (core -> host)                                    */

/*
 * Sends the ocall frame `op` built in ch, receives the OCALL_RESULT and
 * decodes it (cl_ocall_result_decode: size, max_records, n, ids as there).
 * Returns what the core sees.
 */
static cl_status_t ocall(child_t *c, uint8_t op, size_t size, size_t max_records, size_t n,
                         uint64_t *ids, cl_ocall_result_t *r)
{
    if (c->broken)
        return CL_FAIL(CL_ERR_STATE);
    cl_status_t st = cl_chan_send(&c->ch);
    if (st == CL_ERR_LIMIT)
        return st;
    if (st != CL_OK) {
        c->broken = true;
        return CL_FAIL(CL_ERR_STATE);
    }
    uint8_t type;
    cl_rd_t rd;
    st = cl_chan_recv(&c->ch, &type, &rd);
    if (st != CL_OK || type != CL_FRAME_OCALL_RESULT) {
        c->broken = true;
        return CL_FAIL(CL_ERR_STATE);
    }
    return cl_ocall_result_decode(op, &rd, size, max_records, n, ids, r);
}

static size_t clamp_size(size_t s)
{
    return s > CL_CHAN_MAX_DATA ? CL_CHAN_MAX_DATA : s;
}

static cl_status_t fw_log_append(void *ctx, uint64_t counter, const uint8_t *rec, size_t len)
{
    child_t *c = ctx;
    if (len > CL_CHAN_MAX_DATA)
        return CL_FAIL(CL_ERR_LIMIT);
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_LOG_APPEND);
    cl_chan_put_u64(&c->ch, counter);
    cl_chan_put_bytes(&c->ch, rec, len);
    cl_ocall_result_t r;
    return ocall(c, CL_FRAME_OCALL_LOG_APPEND, 0, 0, 0, NULL, &r);
}

static cl_status_t fw_log_read(void *ctx, uint64_t counter, uint64_t *got_counter, uint8_t *buf,
                               size_t size, size_t *len)
{
    child_t *c = ctx;
    size = clamp_size(size);
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_LOG_READ);
    cl_chan_put_u64(&c->ch, counter);
    cl_chan_put_u32(&c->ch, (uint32_t)size);
    cl_ocall_result_t r;
    cl_status_t st = ocall(c, CL_FRAME_OCALL_LOG_READ, size, 0, 0, NULL, &r);
    if (st != CL_OK)
        return st;
    if (r.len > 0)
        memcpy(buf, r.data, r.len);
    *got_counter = r.got;
    *len = r.len;
    return CL_OK;
}

static cl_status_t fw_log_compact(void *ctx, uint64_t before)
{
    child_t *c = ctx;
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_LOG_COMPACT);
    cl_chan_put_u64(&c->ch, before);
    cl_ocall_result_t r;
    return ocall(c, CL_FRAME_OCALL_LOG_COMPACT, 0, 0, 0, NULL, &r);
}

static cl_status_t fw_snapshot_put(void *ctx, const uint8_t *blob, size_t len)
{
    child_t *c = ctx;
    if (len > CL_CHAN_MAX_DATA)
        return CL_FAIL(CL_ERR_LIMIT);
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_SNAPSHOT_PUT);
    cl_chan_put_bytes(&c->ch, blob, len);
    cl_ocall_result_t r;
    return ocall(c, CL_FRAME_OCALL_SNAPSHOT_PUT, 0, 0, 0, NULL, &r);
}

static cl_status_t fw_snapshot_get(void *ctx, uint8_t *buf, size_t size, size_t *len)
{
    child_t *c = ctx;
    size = clamp_size(size);
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_SNAPSHOT_GET);
    cl_chan_put_u32(&c->ch, (uint32_t)size);
    cl_ocall_result_t r;
    cl_status_t st = ocall(c, CL_FRAME_OCALL_SNAPSHOT_GET, size, 0, 0, NULL, &r);
    if (st != CL_OK)
        return st;
    if (r.len > 0)
        memcpy(buf, r.data, r.len);
    *len = r.len;
    return CL_OK;
}

static cl_status_t fw_archive_put(void *ctx, const cl_archive_rec_t *recs, size_t n, uint64_t *ids)
{
    child_t *c = ctx;
    if (n > UINT32_MAX)
        return CL_FAIL(CL_ERR_LIMIT);
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_ARCHIVE_PUT);
    cl_chan_put_u32(&c->ch, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        cl_chan_put_raw(&c->ch, recs[i].tag, 16);
        cl_chan_put_u64(&c->ch, recs[i].bucket);
        cl_chan_put_bytes(&c->ch, recs[i].data, recs[i].len);
    }
    cl_ocall_result_t r;
    return ocall(c, CL_FRAME_OCALL_ARCHIVE_PUT, 0, 0, n, ids, &r);
}

static cl_status_t fw_archive_scan(void *ctx, const uint8_t tag[16], uint64_t from, uint64_t to,
                                   uint64_t after_id, size_t max_records, uint8_t *buf, size_t size,
                                   size_t *len, size_t *n)
{
    child_t *c = ctx;
    size = clamp_size(size);
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_ARCHIVE_SCAN);
    cl_chan_put_raw(&c->ch, tag, 16);
    cl_chan_put_u64(&c->ch, from);
    cl_chan_put_u64(&c->ch, to);
    cl_chan_put_u64(&c->ch, after_id);
    cl_chan_put_u64(&c->ch, (uint64_t)max_records);
    cl_chan_put_u32(&c->ch, (uint32_t)size);
    cl_ocall_result_t r;
    cl_status_t st = ocall(c, CL_FRAME_OCALL_ARCHIVE_SCAN, size, max_records, 0, NULL, &r);
    if (st != CL_OK)
        return st;
    if (r.len > 0)
        memcpy(buf, r.data, r.len);
    *len = r.len;
    *n = (size_t)r.got;
    return CL_OK;
}

static cl_status_t fw_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                           size_t len)
{
    child_t *c = ctx;
    if (len > CL_CHAN_MAX_DATA)
        return CL_FAIL(CL_ERR_LIMIT);
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_SEND);
    cl_chan_put_u64(&c->ch, peer);
    cl_chan_put_u16(&c->ch, transport);
    cl_chan_put_bytes(&c->ch, msg, len);
    cl_ocall_result_t r;
    return ocall(c, CL_FRAME_OCALL_SEND, 0, 0, 0, NULL, &r);
}

static cl_status_t fw_time_now(void *ctx, int64_t *unix_ms)
{
    child_t *c = ctx;
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_TIME_NOW);
    cl_ocall_result_t r;
    cl_status_t st = ocall(c, CL_FRAME_OCALL_TIME_NOW, 0, 0, 0, NULL, &r);
    if (st == CL_OK)
        *unix_ms = r.unix_ms;
    return st;
}

/* The simulated quoting enclave, local to the enclave process. */
static cl_status_t fw_quote(void *ctx, const uint8_t *report, size_t report_len, uint8_t *quote,
                            size_t size, size_t *len)
{
    child_t *c = ctx;
    size_t n = 0;
    cl_status_t st = cl_sim_qe_quote(c->platform, report, report_len, quote, size, &n);
    if (st == CL_OK)
        *len = n;
    return st;
}

static void fw_log_line(void *ctx, int level, const char *line)
{
    child_t *c = ctx;
    if (line == NULL || c->broken)
        return;
    cl_chan_begin(&c->ch, CL_FRAME_OCALL_LOG_LINE);
    cl_chan_put_u32(&c->ch, (uint32_t)(int32_t)level);
    cl_chan_put_bytes(&c->ch, (const uint8_t *)line, strnlen(line, CL_CORE_MAX_LOG_LINE));
    if (cl_chan_send(&c->ch) != CL_OK)
        c->broken = true;
}

static void build_ops(child_t *c, uint16_t mask)
{
    cl_host_ops_t *o = &c->ops;
    memset(o, 0, sizeof(*o));
    o->version = CL_HOST_OPS_VERSION;
    o->ctx = c;
    o->log_append = (mask & CL_OPS_BIT_LOG_APPEND) ? fw_log_append : NULL;
    o->log_read = (mask & CL_OPS_BIT_LOG_READ) ? fw_log_read : NULL;
    o->log_compact = (mask & CL_OPS_BIT_LOG_COMPACT) ? fw_log_compact : NULL;
    o->snapshot_put = (mask & CL_OPS_BIT_SNAPSHOT_PUT) ? fw_snapshot_put : NULL;
    o->snapshot_get = (mask & CL_OPS_BIT_SNAPSHOT_GET) ? fw_snapshot_get : NULL;
    o->archive_put = (mask & CL_OPS_BIT_ARCHIVE_PUT) ? fw_archive_put : NULL;
    o->archive_scan = (mask & CL_OPS_BIT_ARCHIVE_SCAN) ? fw_archive_scan : NULL;
    o->send = (mask & CL_OPS_BIT_SEND) ? fw_send : NULL;
    o->time_now = (mask & CL_OPS_BIT_TIME_NOW) ? fw_time_now : NULL;
    o->quote = fw_quote;
    o->log_line = (mask & CL_OPS_BIT_LOG_LINE) ? fw_log_line : NULL;
}

/* ------------------------------------------------------------------ */
/* test modes (cloister-core-test only)                                */

#ifdef CL_CORE_TEST_MODES
/* Blocks until the host hangs up (the host is expected to kill us). */
static void drain(child_t *c)
{
    uint8_t b[4096];
    for (;;) {
        ssize_t r = read(c->ch.fd, b, sizeof(b));
        if (r == 0 || (r < 0 && errno != EINTR))
            return;
    }
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* Misbehaves instead of answering a handle() ecall; true when it did. */
static bool test_misbehave(child_t *c, uint32_t out_size)
{
    const char *m = c->test_mode;
    uint8_t buf[8192];
    if (m == NULL)
        return false;
    c->test_mode = NULL; /* once */
    cl_status_t st = CL_OK;
    if (strcmp(m, "huge") == 0) { /* a frame length far above the bound */
        cl_put_le32(buf, 0xffffffffu);
        memset(buf + 4, 0x41, 60);
        st = cl_chan_write_raw(&c->ch, buf, 64);
    } else if (strcmp(m, "max-plus-one") == 0) {
        cl_put_le32(buf, (uint32_t)CL_CHAN_MAX_FRAME + 1);
        buf[4] = CL_FRAME_ECALL_RESULT;
        st = cl_chan_write_raw(&c->ch, buf, 5);
    } else if (strcmp(m, "zero") == 0) {
        cl_put_le32(buf, 0);
        st = cl_chan_write_raw(&c->ch, buf, 4);
    } else if (strcmp(m, "short-eof") == 0) { /* announces 100 bytes, sends 10, exits */
        cl_put_le32(buf, 100);
        buf[4] = CL_FRAME_ECALL_RESULT;
        memset(buf + 5, 0, 9);
        st = cl_chan_write_raw(&c->ch, buf, 14);
        cl_chan_free(&c->ch);
        _exit(3);
    } else if (strcmp(m, "stall") == 0) { /* announces the maximum, sends 10 bytes */
        cl_put_le32(buf, (uint32_t)CL_CHAN_MAX_FRAME);
        buf[4] = CL_FRAME_ECALL_RESULT;
        memset(buf + 5, 0, 9);
        st = cl_chan_write_raw(&c->ch, buf, 14);
    } else if (strcmp(m, "hang") == 0) {
        /* no answer at all */
    } else if (strcmp(m, "bad-type") == 0) {
        cl_chan_begin(&c->ch, 0xee);
        cl_chan_put_u32(&c->ch, 0);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "quote-ocall") == 0) { /* quote is never forwarded to the host */
        cl_chan_begin(&c->ch, 0x2b);
        cl_chan_put_bytes(&c->ch, buf, CL_SGX_REPORT_LEN);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "oversize-result") == 0) { /* more than out_size */
        size_t n = (size_t)out_size + 1;
        uint8_t *big = calloc(1, n);
        cl_chan_begin(&c->ch, CL_FRAME_ECALL_RESULT);
        cl_chan_put_u32(&c->ch, 0);
        cl_chan_put_u64(&c->ch, 0);
        cl_chan_put_bytes(&c->ch, big, big ? n : 0);
        free(big);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "bad-status") == 0) {
        cl_chan_begin(&c->ch, CL_FRAME_ECALL_RESULT);
        cl_chan_put_u32(&c->ch, 7);
        cl_chan_put_u64(&c->ch, 0);
        cl_chan_put_u32(&c->ch, 0);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "error-with-data") == 0) {
        cl_chan_begin(&c->ch, CL_FRAME_ECALL_RESULT);
        cl_chan_put_u32(&c->ch, (uint32_t)(int32_t)CL_ERR_AUTH);
        cl_chan_put_u64(&c->ch, 0);
        cl_chan_put_bytes(&c->ch, buf, 8);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "trailing") == 0) {
        cl_chan_begin(&c->ch, CL_FRAME_ECALL_RESULT);
        cl_chan_put_u32(&c->ch, 0);
        cl_chan_put_u64(&c->ch, 0);
        cl_chan_put_u32(&c->ch, 0);
        cl_chan_put_raw(&c->ch, buf, 1);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "truncated-result") == 0) { /* says 100 bytes, carries 10 */
        cl_chan_begin(&c->ch, CL_FRAME_ECALL_RESULT);
        cl_chan_put_u32(&c->ch, 0);
        cl_chan_put_u64(&c->ch, 0);
        cl_chan_put_u32(&c->ch, 100);
        cl_chan_put_raw(&c->ch, buf, 10);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "archive-count") == 0) { /* n far beyond the frame */
        cl_chan_begin(&c->ch, CL_FRAME_OCALL_ARCHIVE_PUT);
        cl_chan_put_u32(&c->ch, 0x7fffffffu);
        cl_chan_put_raw(&c->ch, buf, 100);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "archive-short") == 0) { /* a record length past the end */
        cl_chan_begin(&c->ch, CL_FRAME_OCALL_ARCHIVE_PUT);
        cl_chan_put_u32(&c->ch, 1);
        cl_chan_put_raw(&c->ch, buf, 16);
        cl_chan_put_u64(&c->ch, 1);
        cl_chan_put_u32(&c->ch, 5000);
        cl_chan_put_raw(&c->ch, buf, 10);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "snapshot-short") == 0) {
        cl_chan_begin(&c->ch, CL_FRAME_OCALL_SNAPSHOT_PUT);
        cl_chan_put_u32(&c->ch, (uint32_t)CL_CHAN_MAX_DATA);
        cl_chan_put_raw(&c->ch, buf, 100);
        st = cl_chan_send(&c->ch);
    } else if (strcmp(m, "log-evil") == 0) {
        /* A long line full of control characters, then a normal answer. */
        size_t n = 100000;
        uint8_t *line = malloc(n);
        if (line != NULL) {
            for (size_t i = 0; i < n; i++)
                line[i] = (i % 3 == 0) ? (uint8_t)(1 + i % 31) : (uint8_t)('a' + i % 26);
            line[1] = 0x1b;
            line[2] = 0x9b;
        }
        cl_chan_begin(&c->ch, CL_FRAME_OCALL_LOG_LINE);
        cl_chan_put_u32(&c->ch, 1000);
        cl_chan_put_bytes(&c->ch, line, line ? n : 0);
        free(line);
        st = cl_chan_send(&c->ch);
        return false; /* then serve the ecall normally */
    } else if (strncmp(m, "fuzz:", 5) == 0) {
        /* One frame of random bytes of a plausible type and length. */
        static const uint8_t types[] = {CL_FRAME_ECALL_RESULT,
                                        CL_FRAME_OCALL_LOG_APPEND,
                                        CL_FRAME_OCALL_LOG_READ,
                                        CL_FRAME_OCALL_LOG_COMPACT,
                                        CL_FRAME_OCALL_SNAPSHOT_PUT,
                                        CL_FRAME_OCALL_SNAPSHOT_GET,
                                        CL_FRAME_OCALL_ARCHIVE_PUT,
                                        CL_FRAME_OCALL_ARCHIVE_SCAN,
                                        CL_FRAME_OCALL_SEND,
                                        CL_FRAME_OCALL_TIME_NOW,
                                        CL_FRAME_OCALL_LOG_LINE,
                                        CL_FRAME_OCALL_RESULT,
                                        CL_FRAME_ECALL_OPEN,
                                        0x00,
                                        0xff};
        uint32_t seed = (uint32_t)strtoul(m + 5, NULL, 10) * 2654435761u + 1u;
        uint32_t len = 1 + xorshift(&seed) % 600;
        uint8_t *fb = buf;
        cl_put_le32(fb, len);
        fb[4] = types[xorshift(&seed) % sizeof(types)];
        for (uint32_t i = 1; i < len; i++) {
            uint32_t r = xorshift(&seed);
            /* Bias towards small and huge length fields. */
            fb[4 + i] = (r & 0x300) == 0 ? 0xff : (r & 0x300) == 0x100 ? 0 : (uint8_t)r;
        }
        st = cl_chan_write_raw(&c->ch, fb, 4 + len);
    } else {
        die("unknown CLOISTER_CORE_TEST_MODE");
        return false;
    }
    (void)st;
    drain(c);
    return true;
}
#endif

/* ------------------------------------------------------------------ */
/* ecalls (host -> core)                                               */

static cl_status_t send_result(child_t *c, cl_status_t st, uint64_t value, const uint8_t *out,
                               size_t len)
{
    cl_chan_begin(&c->ch, CL_FRAME_ECALL_RESULT);
    cl_chan_put_u32(&c->ch, (uint32_t)(int32_t)st);
    cl_chan_put_u64(&c->ch, value);
    cl_chan_put_bytes(&c->ch, out, st == CL_OK ? len : 0);
    return cl_chan_send(&c->ch);
}

/* Copies a byte string out of the receive buffer (ocalls reuse it). */
static uint8_t *copy_in(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len ? len : 1);
    if (q != NULL && len > 0)
        memcpy(q, p, len);
    return q;
}

static cl_status_t do_open(child_t *c, const cl_ecall_frame_t *f, uint64_t *handle)
{
    if (f->u.open.api != CL_CORE_API_VERSION)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (c->boot != CL_OK)
        return c->boot;
    if (c->opened)
        return CL_FAIL(CL_ERR_STATE);
    build_ops(c, f->u.open.ops_mask);
    cl_status_t st = c->ecalls->open(c->ptab, &c->ops, &f->u.open.cfg, &c->handle);
    if (st != CL_OK)
        return st;
    c->opened = true;
    *handle = c->handle;
    return CL_OK;
}

/* Serves one ecall frame; false when the process should exit. */
static bool serve(child_t *c)
{
    uint8_t type;
    cl_rd_t rd;
    cl_status_t st = cl_chan_recv(&c->ch, &type, &rd);
    if (st != CL_OK) {
        if (c->ch.err != CL_CHAN_EOF)
            die("bad frame from the host");
        return false;
    }
    uint64_t value = 0;
    uint8_t *out = NULL, *in = NULL;
    size_t out_len = 0;
    bool keep = true;
    cl_ecall_frame_t f;
    cl_status_t dst = cl_ecall_decode(type, &rd, &f);
    if (dst == CL_ERR_NOT_FOUND) {
        die("unexpected frame type from the host");
        return false;
    }
    switch (type) {
    case CL_FRAME_ECALL_OPEN:
        st = dst != CL_OK ? dst : do_open(c, &f, &value);
        if (st != CL_OK && !c->opened)
            keep = false; /* a failed boot ends the process */
        break;
    case CL_FRAME_ECALL_HANDLE:
    case CL_FRAME_ECALL_ATTEST: {
        bool is_handle = type == CL_FRAME_ECALL_HANDLE;
        uint64_t h = f.handle;
        size_t out_size = f.u.call.out_size;
        size_t in_len = f.u.call.len;
        const uint8_t *p = f.u.call.in;
        if (dst != CL_OK) {
            st = dst;
            break;
        }
        if (!c->opened) {
            st = CL_FAIL(CL_ERR_STATE);
            break;
        }
        if (h != c->handle) {
            st = CL_FAIL(CL_ERR_INVALID_ARG);
            break;
        }
        if (out_size >
            (is_handle ? (size_t)CL_CORE_MAX_BATCH_BYTES : (size_t)CL_CORE_MAX_EVIDENCE)) {
            st = CL_FAIL(CL_ERR_LIMIT);
            break;
        }
#ifdef CL_CORE_TEST_MODES
        if (is_handle && test_misbehave(c, (uint32_t)out_size))
            return false;
#endif
        in = copy_in(p, in_len);
        out = malloc(out_size ? out_size : 1);
        if (in == NULL || out == NULL) {
            st = CL_FAIL(CL_ERR_FULL);
            break;
        }
        if (is_handle)
            st = c->ecalls->handle(c->handle, in, in_len, out, out_size, &out_len);
        else
            st = c->ecalls->attest(c->handle, in, in_len, out, out_size, &out_len);
        if (st == CL_OK && out_len > out_size) /* a core bug: never let it out */
            st = CL_FAIL(CL_ERR_STATE);
        break;
    }
    case CL_FRAME_ECALL_TICK:
        if (dst != CL_OK)
            st = dst;
        else if (!c->opened)
            st = CL_FAIL(CL_ERR_STATE);
        else if (f.handle != c->handle)
            st = CL_FAIL(CL_ERR_INVALID_ARG);
        else
            st = c->ecalls->tick(c->handle, f.u.tick.now_ms);
        break;
    case CL_FRAME_ECALL_CLOSE: {
        if (dst != CL_OK)
            st = dst;
        else if (!c->opened)
            st = CL_FAIL(CL_ERR_STATE);
        else if (f.handle != c->handle)
            st = CL_FAIL(CL_ERR_INVALID_ARG);
        else {
            c->ecalls->close(c->handle);
            c->opened = false;
            st = CL_OK;
            keep = false;
        }
        break;
    }
    default: die("unexpected frame type from the host"); return false;
    }
    if (c->broken) {
        free(in);
        free(out);
        return false;
    }
    cl_status_t sst = send_result(c, st, value, out, out_len);
    free(in);
    free(out);
    return keep && sst == CL_OK;
}

static void usage(void)
{
    fprintf(stderr, "usage: cloister-core --fd N --image PATH [--platform DIR]\n"
                    "  (started by the host's process runtime, not by hand)\n");
}

int main(int argc, char **argv)
{
    const char *image = NULL, *platform_dir = NULL, *fdarg = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--fd") == 0)
            fdarg = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--image") == 0)
            image = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--platform") == 0)
            platform_dir = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    if (fdarg == NULL || image == NULL) {
        usage();
        return 2;
    }
    char *end = NULL;
    errno = 0;
    long fd = strtol(fdarg, &end, 10);
    if (errno != 0 || end == fdarg || *end != 0 || fd < 0 || fd > 0x7fffffff ||
        fcntl((int)fd, F_GETFD) < 0) {
        die("--fd is not an open descriptor");
        return 2;
    }
    /* Nothing of ours is meant to survive an exec. */
    (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC);
    signal(SIGPIPE, SIG_IGN);

    child_t c;
    memset(&c, 0, sizeof(c));
    cl_chan_init(&c.ch, (int)fd, -1);
#ifdef CL_CORE_TEST_MODES
    c.test_mode = getenv("CLOISTER_CORE_TEST_MODE");
#endif
    /* Boot the enclave: platform, measured + signature-checked image, bind. */
    c.boot = cl_sim_platform_open(platform_dir, &c.platform);
    if (c.boot == CL_OK)
        c.boot = cl_sim_enclave_load(image, &c.enclave);
    if (c.boot == CL_OK) {
        c.ecalls = cl_sim_enclave_ecalls(c.enclave);
        if (c.ecalls == NULL || c.ecalls->version != CL_CORE_API_VERSION ||
            c.ecalls->open == NULL || c.ecalls->handle == NULL || c.ecalls->tick == NULL ||
            c.ecalls->attest == NULL || c.ecalls->close == NULL)
            c.boot = CL_FAIL(CL_ERR_UNSUPPORTED);
    }
    if (c.boot == CL_OK)
        c.boot = cl_sim_platform_bind(c.platform, cl_sim_enclave_identity(c.enclave), &c.ptab);

    while (serve(&c))
        ;

    if (c.opened)
        c.ecalls->close(c.handle);
    if (c.enclave != NULL)
        cl_sim_enclave_unload(c.enclave);
    if (c.platform != NULL)
        cl_sim_platform_close(c.platform);
    cl_chan_free(&c.ch);
    return 0;
}
