/*
 * tests/support/lying_host.c - the lying host test fixture (lying_host.h):
 * an honest in-memory cl_host_ops_t plus switchable lies and injected
 * failures. Everything is kept in small heap arrays (records sorted by
 * counter); test-sized data only, so linear searches are fine.
 */
#include "lying_host.h"

#include <stdlib.h>
#include <string.h>

typedef struct rec {
    uint64_t counter;
    uint8_t *blob;
    size_t len;
} rec_t;

typedef struct blob {
    uint8_t *p;
    size_t len;
} blob_t;

typedef struct arow {
    uint64_t id;
    uint8_t tag[16];
    uint64_t bucket;
    uint8_t *data;
    size_t len;
} arow_t;

typedef struct sent {
    uint64_t peer;
    uint16_t transport;
    uint8_t *msg;
    size_t len;
} sent_t;

struct lh {
    cl_host_ops_t ops;
    rec_t *recs;
    size_t nrecs, caprecs;
    blob_t snap;
    int has_snap;
    blob_t *hist;
    size_t nhist, caphist;
    arow_t *rows;
    size_t nrows, caprows;
    uint64_t next_id;
    sent_t *sent;
    size_t nsent, capsent;
    int64_t now;
    int64_t last_time;
    int have_last_time;
    lh_quote_fn qfn;
    void *qarg;
    char *lines[LH_MAX_LINES];
    int levels[LH_MAX_LINES];
    size_t nlines; /* total ever logged; the last LH_MAX_LINES are kept */
    int64_t lies[LH_LIE_COUNT_];
    unsigned long calls[LH_OP_COUNT_ + 1];
    int fail_on;
    lh_op_t fail_op;
    unsigned long fail_left;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n > 0 ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = xmalloc(n);
    if (n > 0)
        memcpy(d, p, n);
    return d;
}

/* Grows an array of elem-sized items to hold at least need items. */
static void grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    size_t c = *cap > 0 ? *cap : 8;
    void *n;

    if (need <= *cap)
        return;
    while (c < need)
        c *= 2;
    n = realloc(*arr, c * elem);
    if (n == NULL)
        abort();
    *arr = n;
    *cap = c;
}

/* Counts the call and says whether an injected failure applies. */
static int gate(lh_t *lh, lh_op_t op)
{
    lh->calls[op]++;
    lh->calls[LH_OP_ANY]++;
    if (!lh->fail_on || (lh->fail_op != LH_OP_ANY && lh->fail_op != op))
        return 0;
    if (lh->fail_left == 0)
        return 1;
    lh->fail_left--;
    return 0;
}

/* Applies the length lies to an answer of `written` bytes in a buffer of `size`. */
static size_t lie_len(const lh_t *lh, size_t written, size_t size)
{
    int64_t p;

    if ((p = lh->lies[LH_LIE_LEN_OVER_SIZE]) > 0)
        return size + (size_t)p;
    if ((p = lh->lies[LH_LIE_SHORT_READ]) > 0)
        return written > (size_t)p ? written - (size_t)p : 0;
    if ((p = lh->lies[LH_LIE_LEN_OVER_WRITTEN]) > 0)
        return written + (size_t)p > size ? size : written + (size_t)p;
    return written;
}

/* Copies data into buf (with the read lies) and sets *len; which: 1 log, 2 snapshot. */
static cl_status_t deliver(const lh_t *lh, int which, const uint8_t *data, size_t dlen,
                           uint8_t *buf, size_t size, size_t *len)
{
    size_t w = dlen;
    int64_t c = lh->lies[LH_LIE_CORRUPT_READ];

    if ((lh->lies[LH_LIE_ALWAYS_TOO_SMALL] & which) != 0)
        return CL_ERR_BUFFER_TOO_SMALL;
    if (dlen > size) {
        if (lh->lies[LH_LIE_LEN_OVER_SIZE] <= 0)
            return CL_ERR_BUFFER_TOO_SMALL;
        w = size;
    }
    if (w > 0)
        memcpy(buf, data, w);
    if (c > 0 && w > 0)
        buf[(size_t)(c - 1) % w] ^= 0x01;
    *len = lie_len(lh, w, size);
    return CL_OK;
}

/* Index of the record with this counter, or nrecs. */
static size_t find(const lh_t *lh, uint64_t counter)
{
    for (size_t i = 0; i < lh->nrecs; i++)
        if (lh->recs[i].counter == counter)
            return i;
    return lh->nrecs;
}

static int hidden(const lh_t *lh, uint64_t counter)
{
    int64_t t = lh->lies[LH_LIE_HIDE_TAIL], o = lh->lies[LH_LIE_HIDE_ONE];
    return (t > 0 && counter >= (uint64_t)t) || (o > 0 && counter == (uint64_t)o);
}

/* ---- ocalls ---- */

static cl_status_t op_log_append(void *ctx, uint64_t counter, const uint8_t *rec, size_t len)
{
    lh_t *lh = ctx;

    if (gate(lh, LH_OP_LOG_APPEND))
        return CL_ERR_PERSIST;
    if (rec == NULL && len > 0)
        return CL_ERR_INVALID_ARG;
    if (lh->lies[LH_LIE_LOSE_APPEND] == 0)
        lh_put_record(lh, counter, rec, len);
    return CL_OK;
}

static cl_status_t op_log_read(void *ctx, uint64_t counter, uint64_t *got_counter, uint8_t *buf,
                               size_t size, size_t *len)
{
    lh_t *lh = ctx;
    const rec_t *r = NULL;
    uint64_t claim;
    int64_t p;
    size_t i;

    if (gate(lh, LH_OP_LOG_READ))
        return CL_ERR_PERSIST;
    for (i = 0; i < lh->nrecs; i++) { /* sorted: the first visible one >= counter */
        if (lh->recs[i].counter >= counter && !hidden(lh, lh->recs[i].counter)) {
            r = &lh->recs[i];
            break;
        }
    }
    if (r == NULL)
        return CL_ERR_NOT_FOUND;
    claim = r->counter;
    p = lh->lies[LH_LIE_STALE];
    if (p > 1 && counter == (uint64_t)p && (i = find(lh, (uint64_t)p - 1)) < lh->nrecs)
        r = &lh->recs[i]; /* older blob, claimed as the asked counter */
    p = lh->lies[LH_LIE_DUPLICATE];
    if (p > 1 && counter == (uint64_t)p && (i = find(lh, (uint64_t)p - 1)) < lh->nrecs) {
        r = &lh->recs[i];
        claim = r->counter;
    }
    p = lh->lies[LH_LIE_REORDER];
    if (p > 0 && claim == (uint64_t)p && (i = find(lh, (uint64_t)p + 1)) < lh->nrecs)
        r = &lh->recs[i];
    else if (p > 0 && claim == (uint64_t)p + 1 && (i = find(lh, (uint64_t)p)) < lh->nrecs)
        r = &lh->recs[i];
    *got_counter = claim;
    return deliver(lh, 1, r->blob, r->len, buf, size, len);
}

static cl_status_t op_log_compact(void *ctx, uint64_t before)
{
    lh_t *lh = ctx;

    if (gate(lh, LH_OP_LOG_COMPACT))
        return CL_ERR_PERSIST;
    if (lh->lies[LH_LIE_IGNORE_COMPACT] == 0 && before > 0)
        lh_drop(lh, 0, before - 1);
    return CL_OK;
}

static cl_status_t op_snapshot_put(void *ctx, const uint8_t *blob, size_t len)
{
    lh_t *lh = ctx;

    if (gate(lh, LH_OP_SNAPSHOT_PUT))
        return CL_ERR_PERSIST;
    if (blob == NULL && len > 0)
        return CL_ERR_INVALID_ARG;
    lh_set_snapshot(lh, blob, len);
    grow((void **)&lh->hist, &lh->caphist, lh->nhist + 1, sizeof *lh->hist);
    lh->hist[lh->nhist].p = dup_bytes(blob, len);
    lh->hist[lh->nhist].len = len;
    lh->nhist++;
    return CL_OK;
}

static cl_status_t op_snapshot_get(void *ctx, uint8_t *buf, size_t size, size_t *len)
{
    lh_t *lh = ctx;
    int64_t p = lh->lies[LH_LIE_OLD_SNAPSHOT];

    if (gate(lh, LH_OP_SNAPSHOT_GET))
        return CL_ERR_PERSIST;
    if (lh->lies[LH_LIE_HIDE_SNAPSHOT] != 0)
        return CL_ERR_NOT_FOUND;
    if (p > 0 && (size_t)p <= lh->nhist)
        return deliver(lh, 2, lh->hist[p - 1].p, lh->hist[p - 1].len, buf, size, len);
    if (!lh->has_snap)
        return CL_ERR_NOT_FOUND;
    return deliver(lh, 2, lh->snap.p, lh->snap.len, buf, size, len);
}

static cl_status_t op_archive_put(void *ctx, const cl_archive_rec_t *recs, size_t n, uint64_t *ids)
{
    lh_t *lh = ctx;

    if (gate(lh, LH_OP_ARCHIVE_PUT))
        return CL_ERR_PERSIST;
    if (n > 0 && (recs == NULL || ids == NULL))
        return CL_ERR_INVALID_ARG;
    for (size_t i = 0; i < n; i++) {
        ids[i] = ++lh->next_id;
        if (lh->lies[LH_LIE_LOSE_ARCHIVE] != 0)
            continue;
        grow((void **)&lh->rows, &lh->caprows, lh->nrows + 1, sizeof *lh->rows);
        lh->rows[lh->nrows].id = ids[i];
        memcpy(lh->rows[lh->nrows].tag, recs[i].tag, 16);
        lh->rows[lh->nrows].bucket = recs[i].bucket;
        lh->rows[lh->nrows].data = dup_bytes(recs[i].data, recs[i].len);
        lh->rows[lh->nrows].len = recs[i].len;
        lh->nrows++;
    }
    return CL_OK;
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static cl_status_t op_archive_scan(void *ctx, const uint8_t tag[16], uint64_t from, uint64_t to,
                                   uint64_t after_id, size_t max_records, uint8_t *buf,
                                   size_t size, size_t *len, size_t *n)
{
    lh_t *lh = ctx;
    int all = lh->lies[LH_LIE_SCAN_NO_FILTER] != 0;
    size_t pos = 0, count = 0;

    if (gate(lh, LH_OP_ARCHIVE_SCAN))
        return CL_ERR_PERSIST;
    for (size_t i = 0; i < lh->nrows && count < max_records; i++) {
        const arow_t *r = &lh->rows[i];
        if (!all && (memcmp(r->tag, tag, 16) != 0 || r->bucket < from || r->bucket > to ||
                     r->id <= after_id))
            continue;
        if (size - pos < 20 || size - pos - 20 < r->len) {
            if (count == 0)
                return CL_ERR_BUFFER_TOO_SMALL;
            break;
        }
        put_le(buf + pos, r->id, 8);
        put_le(buf + pos + 8, r->bucket, 8);
        put_le(buf + pos + 16, (uint64_t)r->len + (count == 0 && lh->lies[LH_LIE_SCAN_BAD_FRAME] > 0
                                                       ? (uint64_t)lh->lies[LH_LIE_SCAN_BAD_FRAME]
                                                       : 0),
               4);
        if (r->len > 0)
            memcpy(buf + pos + 20, r->data, r->len);
        pos += 20 + r->len;
        count++;
    }
    *n = count;
    *len = lie_len(lh, pos, size);
    return CL_OK;
}

static cl_status_t op_send(void *ctx, uint64_t peer, uint16_t transport, const uint8_t *msg,
                           size_t len)
{
    lh_t *lh = ctx;

    if (gate(lh, LH_OP_SEND))
        return CL_ERR_PERSIST;
    if (msg == NULL && len > 0)
        return CL_ERR_INVALID_ARG;
    grow((void **)&lh->sent, &lh->capsent, lh->nsent + 1, sizeof *lh->sent);
    lh->sent[lh->nsent].peer = peer;
    lh->sent[lh->nsent].transport = transport;
    lh->sent[lh->nsent].msg = dup_bytes(msg, len);
    lh->sent[lh->nsent].len = len;
    lh->nsent++;
    return CL_OK;
}

static cl_status_t op_time_now(void *ctx, int64_t *unix_ms)
{
    lh_t *lh = ctx;
    int64_t b = lh->lies[LH_LIE_CLOCK_BACKWARDS];
    int64_t t = lh->now + lh->lies[LH_LIE_CLOCK_OFFSET];

    if (gate(lh, LH_OP_TIME_NOW))
        return CL_ERR_PERSIST;
    if (b > 0 && lh->have_last_time)
        t = lh->last_time - b;
    lh->last_time = t;
    lh->have_last_time = 1;
    *unix_ms = t;
    return CL_OK;
}

static cl_status_t op_quote(void *ctx, const uint8_t *report, size_t report_len, uint8_t *quote,
                            size_t size, size_t *len)
{
    lh_t *lh = ctx;
    cl_status_t rc;

    if (gate(lh, LH_OP_QUOTE))
        return CL_ERR_PERSIST;
    if (lh->qfn == NULL)
        return CL_ERR_UNSUPPORTED;
    rc = lh->qfn(lh->qarg, report, report_len, quote, size, len);
    if (rc == CL_OK)
        *len = lie_len(lh, *len, size);
    return rc;
}

static void op_log_line(void *ctx, int level, const char *line)
{
    lh_t *lh = ctx;
    size_t slot = lh->nlines % LH_MAX_LINES;
    size_t n = line != NULL ? strnlen(line, CL_CORE_MAX_LOG_LINE) : 0;

    free(lh->lines[slot]);
    lh->lines[slot] = xmalloc(n + 1);
    if (n > 0)
        memcpy(lh->lines[slot], line, n);
    lh->lines[slot][n] = '\0';
    lh->levels[slot] = level;
    lh->nlines++;
}

/* ---- API ---- */

lh_t *lh_new(void)
{
    lh_t *lh = xmalloc(sizeof *lh);

    memset(lh, 0, sizeof *lh);
    lh->ops.version = CL_HOST_OPS_VERSION;
    lh->ops.ctx = lh;
    lh->ops.log_append = op_log_append;
    lh->ops.log_read = op_log_read;
    lh->ops.log_compact = op_log_compact;
    lh->ops.snapshot_put = op_snapshot_put;
    lh->ops.snapshot_get = op_snapshot_get;
    lh->ops.archive_put = op_archive_put;
    lh->ops.archive_scan = op_archive_scan;
    lh->ops.send = op_send;
    lh->ops.time_now = op_time_now;
    lh->ops.quote = op_quote;
    lh->ops.log_line = op_log_line;
    lh->now = LH_DEFAULT_TIME_MS;
    return lh;
}

void lh_free(lh_t *lh)
{
    if (lh == NULL)
        return;
    for (size_t i = 0; i < lh->nrecs; i++)
        free(lh->recs[i].blob);
    free(lh->recs);
    free(lh->snap.p);
    for (size_t i = 0; i < lh->nhist; i++)
        free(lh->hist[i].p);
    free(lh->hist);
    for (size_t i = 0; i < lh->nrows; i++)
        free(lh->rows[i].data);
    free(lh->rows);
    for (size_t i = 0; i < lh->nsent; i++)
        free(lh->sent[i].msg);
    free(lh->sent);
    for (size_t i = 0; i < LH_MAX_LINES; i++)
        free(lh->lines[i]);
    free(lh);
}

const cl_host_ops_t *lh_ops(lh_t *lh)
{
    return &lh->ops;
}

void lh_set_lie(lh_t *lh, lh_lie_t lie, int64_t param)
{
    if ((int)lie >= 0 && lie < LH_LIE_COUNT_)
        lh->lies[lie] = param;
    if (lie == LH_LIE_CLOCK_BACKWARDS)
        lh->have_last_time = 0;
}

void lh_clear_lies(lh_t *lh)
{
    memset(lh->lies, 0, sizeof lh->lies);
    lh->have_last_time = 0;
}

void lh_fail_after(lh_t *lh, lh_op_t op, unsigned long n)
{
    lh->fail_on = 1;
    lh->fail_op = op;
    lh->fail_left = n;
}

void lh_fail_clear(lh_t *lh)
{
    lh->fail_on = 0;
}

unsigned long lh_calls(const lh_t *lh, lh_op_t op)
{
    return (int)op >= 0 && op <= LH_OP_ANY ? lh->calls[op] : 0;
}

size_t lh_record_count(const lh_t *lh)
{
    return lh->nrecs;
}

uint64_t lh_first_counter(const lh_t *lh)
{
    return lh->nrecs > 0 ? lh->recs[0].counter : 0;
}

uint64_t lh_last_counter(const lh_t *lh)
{
    return lh->nrecs > 0 ? lh->recs[lh->nrecs - 1].counter : 0;
}

int lh_get_record(const lh_t *lh, uint64_t counter, const uint8_t **blob, size_t *len)
{
    size_t i = find(lh, counter);

    if (i == lh->nrecs)
        return 0;
    *blob = lh->recs[i].blob;
    *len = lh->recs[i].len;
    return 1;
}

void lh_put_record(lh_t *lh, uint64_t counter, const uint8_t *blob, size_t len)
{
    size_t i = find(lh, counter), at;

    if (i < lh->nrecs) {
        free(lh->recs[i].blob);
        lh->recs[i].blob = dup_bytes(blob, len);
        lh->recs[i].len = len;
        return;
    }
    grow((void **)&lh->recs, &lh->caprecs, lh->nrecs + 1, sizeof *lh->recs);
    for (at = lh->nrecs; at > 0 && lh->recs[at - 1].counter > counter; at--)
        lh->recs[at] = lh->recs[at - 1];
    lh->recs[at].counter = counter;
    lh->recs[at].blob = dup_bytes(blob, len);
    lh->recs[at].len = len;
    lh->nrecs++;
}

int lh_copy_record(lh_t *dst, const lh_t *src, uint64_t counter)
{
    const uint8_t *b;
    size_t len;

    if (!lh_get_record(src, counter, &b, &len))
        return 0;
    lh_put_record(dst, counter, b, len);
    return 1;
}

void lh_drop(lh_t *lh, uint64_t from, uint64_t to)
{
    size_t w = 0;

    for (size_t i = 0; i < lh->nrecs; i++) {
        if (lh->recs[i].counter >= from && lh->recs[i].counter <= to)
            free(lh->recs[i].blob);
        else
            lh->recs[w++] = lh->recs[i];
    }
    lh->nrecs = w;
}

int lh_corrupt_record(lh_t *lh, uint64_t counter, size_t offset, uint8_t x)
{
    size_t i = find(lh, counter);

    if (i == lh->nrecs || lh->recs[i].len == 0)
        return 0;
    lh->recs[i].blob[offset % lh->recs[i].len] ^= x;
    return 1;
}

int lh_get_snapshot(const lh_t *lh, const uint8_t **blob, size_t *len)
{
    if (!lh->has_snap)
        return 0;
    *blob = lh->snap.p;
    *len = lh->snap.len;
    return 1;
}

size_t lh_snapshot_history(const lh_t *lh)
{
    return lh->nhist;
}

void lh_set_snapshot(lh_t *lh, const uint8_t *blob, size_t len)
{
    free(lh->snap.p);
    lh->snap.p = NULL;
    lh->snap.len = 0;
    lh->has_snap = blob != NULL;
    if (blob != NULL) {
        lh->snap.p = dup_bytes(blob, len);
        lh->snap.len = len;
    }
}

int lh_restore_snapshot(lh_t *lh, size_t i)
{
    if (i >= lh->nhist)
        return 0;
    lh_set_snapshot(lh, lh->hist[i].p, lh->hist[i].len);
    return 1;
}

int lh_corrupt_snapshot(lh_t *lh, size_t offset, uint8_t x)
{
    if (!lh->has_snap || lh->snap.len == 0)
        return 0;
    lh->snap.p[offset % lh->snap.len] ^= x;
    return 1;
}

size_t lh_archive_count(const lh_t *lh)
{
    return lh->nrows;
}

int lh_archive_get(const lh_t *lh, size_t i, uint64_t *id, uint8_t tag[16], uint64_t *bucket,
                   const uint8_t **data, size_t *len)
{
    if (i >= lh->nrows)
        return 0;
    if (id != NULL)
        *id = lh->rows[i].id;
    if (tag != NULL)
        memcpy(tag, lh->rows[i].tag, 16);
    if (bucket != NULL)
        *bucket = lh->rows[i].bucket;
    if (data != NULL)
        *data = lh->rows[i].data;
    if (len != NULL)
        *len = lh->rows[i].len;
    return 1;
}

size_t lh_sent_count(const lh_t *lh)
{
    return lh->nsent;
}

int lh_sent(const lh_t *lh, size_t i, uint64_t *peer, uint16_t *transport, const uint8_t **msg,
            size_t *len)
{
    if (i >= lh->nsent)
        return 0;
    if (peer != NULL)
        *peer = lh->sent[i].peer;
    if (transport != NULL)
        *transport = lh->sent[i].transport;
    if (msg != NULL)
        *msg = lh->sent[i].msg;
    if (len != NULL)
        *len = lh->sent[i].len;
    return 1;
}

void lh_set_time(lh_t *lh, int64_t unix_ms)
{
    lh->now = unix_ms;
}

void lh_advance(lh_t *lh, int64_t ms)
{
    lh->now += ms;
}

void lh_set_quote(lh_t *lh, lh_quote_fn fn, void *arg)
{
    lh->qfn = fn;
    lh->qarg = arg;
}

size_t lh_line_count(const lh_t *lh)
{
    return lh->nlines < LH_MAX_LINES ? lh->nlines : LH_MAX_LINES;
}

const char *lh_line(const lh_t *lh, size_t i, int *level)
{
    size_t kept = lh_line_count(lh), slot;

    if (i >= kept)
        return NULL;
    slot = (lh->nlines - kept + i) % LH_MAX_LINES;
    if (level != NULL)
        *level = lh->levels[slot];
    return lh->lines[slot];
}
