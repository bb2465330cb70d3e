/*
 * echo_image.c - a tiny core image for the runtime tests (tests/runtime):
 * a MODULE exporting cl_core_entry, signed for the simulated platform like
 * the real core image, whose ecalls exercise every path of a runtime.
 *
 *   open    keeps the platform and host tables; makes a fixed sequence of
 *           ocalls (each only when the host provides it): log_line (with
 *           control characters), time_now, log_append(1, "record-1") then
 *           log_read(1) (must round-trip), snapshot_put("snapshot-A") then
 *           snapshot_get (must round-trip). Any ocall error fails open.
 *   handle  echoes every item with its bytes reversed, except commands:
 *             "tick?"        -> "tick=<last now_ms>"
 *             "cfg?"         -> "cfg=<snapshot_every>,<max_sessions>,<ttl>,<policy>"
 *             "time?"        -> "time=<time_now()>" or "time=err:<status>"
 *             "log-long"     -> logs a 600-byte line with control characters; echoes
 *             "snap:<n>"     -> snapshot_put of n pattern bytes, snapshot_get back,
 *                               "snap-ok" or "snap-err:<status>"
 *             "archive"      -> archive_put 2 records + archive_scan, "archive=<ids>:<scan>"
 *                               or "archive-err:<status>"
 *             "compact"      -> log_compact(5), "compact=<status>"
 *           then calls host->send(first peer, first transport, first msg) once.
 *   tick    remembers now_ms
 *   attest  nonce 16..64 bytes; get_report(QE target, nonce || zeros) and the quote
 *           ocall; out = report (432) || quote
 *   close   forgets everything
 * The batch parser is written out here (the image links no project library).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/core.h"

static struct {
    bool open;
    cl_core_handle_t handle;
    const cl_tee_platform_t *platform;
    cl_host_ops_t host;
    cl_core_config_t cfg;
    int64_t last_tick;
} g;

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}
static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static cl_status_t echo_open(const cl_tee_platform_t *platform, const cl_host_ops_t *host,
                             const cl_core_config_t *cfg, cl_core_handle_t *out)
{
    if (platform == NULL || host == NULL || cfg == NULL || out == NULL)
        return CL_ERR_INVALID_ARG;
    if (g.open)
        return CL_ERR_STATE;
    if (host->version != CL_HOST_OPS_VERSION || cfg->version != CL_CORE_API_VERSION)
        return CL_ERR_UNSUPPORTED;
    memset(&g, 0, sizeof(g));
    g.platform = platform;
    g.host = *host;
    g.cfg = *cfg;
    uint8_t r[8];
    cl_status_t st = platform->read_rand(platform->self, r, sizeof(r));
    if (st != CL_OK)
        return st;
    const cl_host_ops_t *h = &g.host;
    if (h->log_line != NULL)
        h->log_line(h->ctx, CL_LOG_INFO, "echo: open\t\x1b[1mbold\x7f!");
    if (h->time_now != NULL) {
        int64_t t;
        st = h->time_now(h->ctx, &t);
        if (st != CL_OK)
            return st;
    }
    if (h->log_append != NULL) {
        st = h->log_append(h->ctx, 1, (const uint8_t *)"record-1", 8);
        if (st != CL_OK)
            return st;
    }
    if (h->log_read != NULL) {
        uint8_t buf[64];
        uint64_t got = 0;
        size_t len = 0;
        st = h->log_read(h->ctx, 1, &got, buf, sizeof(buf), &len);
        if (st != CL_OK)
            return st;
        if (got != 1 || len != 8 || memcmp(buf, "record-1", 8) != 0)
            return CL_ERR_BAD_INPUT;
    }
    if (h->snapshot_put != NULL) {
        st = h->snapshot_put(h->ctx, (const uint8_t *)"snapshot-A", 10);
        if (st != CL_OK)
            return st;
    }
    if (h->snapshot_get != NULL) {
        uint8_t buf[64];
        size_t len = 0;
        st = h->snapshot_get(h->ctx, buf, sizeof(buf), &len);
        if (st != CL_OK)
            return st;
        if (len != 10 || memcmp(buf, "snapshot-A", 10) != 0)
            return CL_ERR_BAD_INPUT;
    }
    g.handle = rd64(r) | 1;
    g.open = true;
    *out = g.handle;
    return CL_OK;
}

static bool is_cmd(const uint8_t *m, size_t len, const char *cmd)
{
    return len == strlen(cmd) && memcmp(m, cmd, len) == 0;
}

/* Runs a command item; *rlen = 0 when it is not one. */
static void command(const uint8_t *m, size_t len, uint8_t *resp, size_t *rlen)
{
    const cl_host_ops_t *h = &g.host;
    char *r = (char *)resp;
    int n = 0;
    *rlen = 0;
    if (is_cmd(m, len, "tick?")) {
        n = snprintf(r, 256, "tick=%lld", (long long)g.last_tick);
    } else if (is_cmd(m, len, "cfg?")) {
        n = snprintf(r, 256, "cfg=%u,%u,%u,%u", g.cfg.snapshot_every, g.cfg.max_sessions,
                     g.cfg.session_ttl_s, g.cfg.seal_policy);
    } else if (is_cmd(m, len, "time?")) {
        int64_t t = 0;
        cl_status_t st = h->time_now ? h->time_now(h->ctx, &t) : CL_ERR_UNSUPPORTED;
        n = st == CL_OK ? snprintf(r, 256, "time=%lld", (long long)t)
                        : snprintf(r, 256, "time=err:%d", (int)st);
    } else if (is_cmd(m, len, "log-long")) {
        char line[601];
        for (int i = 0; i < 600; i++)
            line[i] = (i % 10 == 9) ? '\n' : (char)('a' + i % 26);
        line[600] = 0;
        if (h->log_line != NULL)
            h->log_line(h->ctx, 99, line);
    } else if (len > 5 && len < 16 && memcmp(m, "snap:", 5) == 0) {
        char num[16];
        memcpy(num, m + 5, len - 5);
        num[len - 5] = 0;
        size_t sz = (size_t)strtoul(num, NULL, 10);
        uint8_t *blob = malloc(sz ? sz : 1), *back = malloc(sz + 16);
        cl_status_t st = CL_ERR_FULL;
        if (blob != NULL && back != NULL) {
            for (size_t i = 0; i < sz; i++)
                blob[i] = (uint8_t)(i * 7 + (i >> 12));
            st = h->snapshot_put ? h->snapshot_put(h->ctx, blob, sz) : CL_ERR_UNSUPPORTED;
            size_t got = 0;
            if (st == CL_OK)
                st = h->snapshot_get ? h->snapshot_get(h->ctx, back, sz + 16, &got)
                                     : CL_ERR_UNSUPPORTED;
            if (st == CL_OK && (got != sz || memcmp(blob, back, sz) != 0))
                st = CL_ERR_BAD_INPUT;
        }
        free(blob);
        free(back);
        n = st == CL_OK ? snprintf(r, 256, "snap-ok") : snprintf(r, 256, "snap-err:%d", (int)st);
    } else if (is_cmd(m, len, "archive")) {
        cl_archive_rec_t recs[2];
        memset(recs, 0, sizeof(recs));
        memset(recs[0].tag, 0xa1, 16);
        memset(recs[1].tag, 0xa1, 16);
        recs[0].bucket = 100;
        recs[0].data = (const uint8_t *)"ct-one";
        recs[0].len = 6;
        recs[1].bucket = 101;
        recs[1].data = (const uint8_t *)"ct-two!";
        recs[1].len = 7;
        uint64_t ids[2] = {0, 0};
        cl_status_t st = h->archive_put ? h->archive_put(h->ctx, recs, 2, ids) : CL_ERR_UNSUPPORTED;
        uint8_t buf[256];
        size_t blen = 0, cnt = 0;
        if (st == CL_OK)
            st = h->archive_scan ? h->archive_scan(h->ctx, recs[0].tag, 0, 1000, 0, 10, buf,
                                                   sizeof(buf), &blen, &cnt)
                                 : CL_ERR_UNSUPPORTED;
        if (st != CL_OK) {
            n = snprintf(r, 256, "archive-err:%d", (int)st);
        } else {
            n = snprintf(r, 256, "archive=%llu,%llu:%zu:", (unsigned long long)ids[0],
                         (unsigned long long)ids[1], cnt);
            /* the scanned records' payloads, as text */
            size_t pos = 0;
            for (size_t i = 0; i < cnt && pos + 20 <= blen; i++) {
                size_t l = rd32(buf + pos + 16);
                if (l > blen - pos - 20)
                    break;
                if (n + (int)l + 1 < 256) {
                    memcpy(r + n, buf + pos + 20, l);
                    n += (int)l;
                    r[n++] = ';';
                }
                pos += 20 + l;
            }
        }
    } else if (is_cmd(m, len, "compact")) {
        cl_status_t st = h->log_compact ? h->log_compact(h->ctx, 5) : CL_ERR_UNSUPPORTED;
        n = snprintf(r, 256, "compact=%d", (int)st);
    }
    if (n > 0)
        *rlen = (size_t)n;
}

static cl_status_t echo_handle(cl_core_handle_t core, const uint8_t *in_host, size_t in_len,
                               uint8_t *out, size_t out_size, size_t *out_len)
{
    if (!g.open || core != g.handle)
        return CL_ERR_INVALID_ARG;
    if (in_host == NULL || out == NULL || out_len == NULL)
        return CL_ERR_INVALID_ARG;
    if (in_len > CL_CORE_MAX_BATCH_BYTES)
        return CL_ERR_LIMIT;
    uint8_t *in = malloc(in_len ? in_len : 1); /* copy in once */
    if (in == NULL)
        return CL_ERR_FULL;
    memcpy(in, in_host, in_len);
    cl_status_t st = CL_ERR_BAD_INPUT;
    if (in_len < 8 || memcmp(in, CL_BATCH_MAGIC, 4) != 0)
        goto done;
    uint32_t count = rd32(in + 4);
    if (count > CL_CORE_MAX_BATCH)
        goto done;
    /* validate */
    size_t pos = 8;
    for (uint32_t i = 0; i < count; i++) {
        if (in_len - pos < 16)
            goto done;
        uint32_t l = rd32(in + pos + 12);
        if (l > CL_CORE_MAX_MESSAGE || l > in_len - pos - 16)
            goto done;
        pos += 16 + l;
    }
    if (pos != in_len)
        goto done;
    /* respond */
    st = CL_ERR_BUFFER_TOO_SMALL;
    if (out_size < 8)
        goto done;
    memcpy(out, CL_BATCH_MAGIC, 4);
    wr32(out + 4, count);
    size_t o = 8;
    pos = 8;
    uint8_t resp[256];
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *it = in + pos;
        size_t l = rd32(it + 12);
        const uint8_t *m = it + 16;
        size_t rlen;
        command(m, l, resp, &rlen);
        size_t olen = rlen ? rlen : l;
        if (out_size - o < 16 + olen)
            goto done;
        memcpy(out + o, it, 12); /* peer, transport, flags */
        wr32(out + o + 12, (uint32_t)olen);
        for (size_t k = 0; k < olen; k++)
            out[o + 16 + k] = rlen ? resp[k] : m[l - 1 - k];
        o += 16 + olen;
        pos += 16 + l;
    }
    if (count > 0 && g.host.send != NULL) {
        const uint8_t *it = in + 8;
        uint16_t transport = (uint16_t)(it[8] | it[9] << 8);
        st = g.host.send(g.host.ctx, rd64(it), transport, it + 16, rd32(it + 12));
        if (st != CL_OK)
            goto done;
    }
    *out_len = o;
    st = CL_OK;
done:
    free(in);
    return st;
}

static cl_status_t echo_tick(cl_core_handle_t core, int64_t now_ms)
{
    if (!g.open || core != g.handle)
        return CL_ERR_INVALID_ARG;
    g.last_tick = now_ms;
    return CL_OK;
}

static cl_status_t echo_attest(cl_core_handle_t core, const uint8_t *nonce, size_t nonce_len,
                               uint8_t *out, size_t out_size, size_t *out_len)
{
    if (!g.open || core != g.handle)
        return CL_ERR_INVALID_ARG;
    if (nonce == NULL || nonce_len < CL_CORE_NONCE_MIN || nonce_len > CL_CORE_NONCE_MAX)
        return CL_ERR_BAD_INPUT;
    if (g.host.quote == NULL)
        return CL_ERR_UNSUPPORTED;
    uint8_t rdata[CL_SGX_REPORT_DATA_LEN] = {0};
    memcpy(rdata, nonce, nonce_len);
    uint8_t report[CL_SGX_REPORT_LEN];
    cl_status_t st = g.platform->get_report(g.platform->self, NULL, rdata, report);
    if (st != CL_OK)
        return st;
    uint8_t *quote = malloc(CL_CORE_MAX_QUOTE);
    if (quote == NULL)
        return CL_ERR_FULL;
    size_t qlen = 0;
    st = g.host.quote(g.host.ctx, report, sizeof(report), quote, CL_CORE_MAX_QUOTE, &qlen);
    if (st == CL_OK && qlen > CL_CORE_MAX_QUOTE)
        st = CL_ERR_BAD_INPUT;
    if (st == CL_OK && out_size < sizeof(report) + qlen)
        st = CL_ERR_BUFFER_TOO_SMALL;
    if (st == CL_OK) {
        memcpy(out, report, sizeof(report));
        memcpy(out + sizeof(report), quote, qlen);
        *out_len = sizeof(report) + qlen;
    }
    free(quote);
    return st;
}

static void echo_close(cl_core_handle_t core)
{
    if (g.open && core == g.handle)
        memset(&g, 0, sizeof(g));
}

static const cl_core_ecalls_t echo_ecalls = {
    .version = CL_CORE_API_VERSION,
    .open = echo_open,
    .handle = echo_handle,
    .tick = echo_tick,
    .attest = echo_attest,
    .close = echo_close,
};

const cl_core_ecalls_t *cl_core_entry(void)
{
    return &echo_ecalls;
}
