/*
 * channel.c - length-framed messages over a stream socket, shared by the
 * host side of the process runtime (runtime.c) and the core process
 * (core_main.c). See channel.h for the frame format.
 *
 * Receiving: the header is read first and its length checked against
 * CL_CHAN_MAX_FRAME; the buffer then grows only as bytes arrive (a peer
 * announcing 8 MB and sending nothing costs nothing). A frame must arrive
 * completely within the timeout. Sending uses MSG_NOSIGNAL (no SIGPIPE when
 * the peer died) and poll() with the same timeout.
 */
#include "channel.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cloister/bytes.h"

#define CL_CHAN_GROW_STEP (64u * 1024u)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (-1 = forever). */
static int left_ms(int64_t deadline)
{
    if (deadline < 0)
        return -1;
    int64_t l = deadline - now_ms();
    if (l < 0)
        return 0;
    return l > 0x7fffffff ? 0x7fffffff : (int)l;
}

static int64_t deadline_of(const cl_chan_t *ch)
{
    return ch->timeout_ms < 0 ? -1 : now_ms() + ch->timeout_ms;
}

void cl_chan_init(cl_chan_t *ch, int fd, int timeout_ms)
{
    memset(ch, 0, sizeof(*ch));
    ch->fd = fd;
    ch->timeout_ms = timeout_ms;
}

void cl_chan_free(cl_chan_t *ch)
{
    if (ch == NULL)
        return;
    if (ch->fd >= 0)
        close(ch->fd);
    free(ch->rbuf);
    free(ch->wbuf);
    memset(ch, 0, sizeof(*ch));
    ch->fd = -1;
}

const char *cl_chan_err_str(cl_chan_err_t e)
{
    switch (e) {
    case CL_CHAN_OK: return "ok";
    case CL_CHAN_EOF: return "peer closed the channel";
    case CL_CHAN_TIMEOUT: return "timed out";
    case CL_CHAN_IO: return "I/O error";
    case CL_CHAN_PROTO: return "malformed frame";
    case CL_CHAN_NOMEM: return "out of memory";
    }
    return "unknown";
}

/* ---- building ---- */

static void wreserve(cl_chan_t *ch, size_t more)
{
    if (ch->wfail)
        return;
    if (more > CL_CHAN_HDR_LEN + CL_CHAN_MAX_FRAME - ch->wlen) {
        ch->wfail = true;
        return;
    }
    size_t need = ch->wlen + more;
    if (need <= ch->wcap)
        return;
    size_t cap = ch->wcap ? ch->wcap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *nb = realloc(ch->wbuf, cap);
    if (nb == NULL) {
        ch->wfail = true;
        return;
    }
    ch->wbuf = nb;
    ch->wcap = cap;
}

void cl_chan_begin(cl_chan_t *ch, uint8_t type)
{
    ch->wlen = 0;
    ch->wfail = false;
    /* Shrink a buffer left big by a snapshot. */
    if (ch->wcap > 1024u * 1024u) {
        free(ch->wbuf);
        ch->wbuf = NULL;
        ch->wcap = 0;
    }
    wreserve(ch, CL_CHAN_HDR_LEN + 1);
    if (ch->wfail)
        return;
    memset(ch->wbuf, 0, CL_CHAN_HDR_LEN);
    ch->wbuf[CL_CHAN_HDR_LEN] = type;
    ch->wlen = CL_CHAN_HDR_LEN + 1;
}

void cl_chan_put_raw(cl_chan_t *ch, const uint8_t *p, size_t len)
{
    wreserve(ch, len);
    if (ch->wfail || len == 0)
        return;
    memcpy(ch->wbuf + ch->wlen, p, len);
    ch->wlen += len;
}

static void put_le(cl_chan_t *ch, uint64_t v, int n)
{
    uint8_t b[8];
    for (int i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    cl_chan_put_raw(ch, b, (size_t)n);
}

void cl_chan_put_u16(cl_chan_t *ch, uint16_t v)
{
    put_le(ch, v, 2);
}
void cl_chan_put_u32(cl_chan_t *ch, uint32_t v)
{
    put_le(ch, v, 4);
}
void cl_chan_put_u64(cl_chan_t *ch, uint64_t v)
{
    put_le(ch, v, 8);
}

void cl_chan_put_bytes(cl_chan_t *ch, const uint8_t *p, size_t len)
{
    if (len > CL_CHAN_MAX_DATA) {
        ch->wfail = true;
        return;
    }
    cl_chan_put_u32(ch, (uint32_t)len);
    cl_chan_put_raw(ch, p, len);
}

/* ---- raw I/O ---- */

static cl_status_t write_all(cl_chan_t *ch, const uint8_t *p, size_t len)
{
    int64_t deadline = deadline_of(ch);
    while (len > 0) {
        struct pollfd pfd = {.fd = ch->fd, .events = POLLOUT};
        int r = poll(&pfd, 1, left_ms(deadline));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            ch->err = CL_CHAN_IO;
            ch->sys_errno = errno;
            return CL_FAIL(CL_ERR_STATE);
        }
        if (r == 0) {
            ch->err = CL_CHAN_TIMEOUT;
            return CL_FAIL(CL_ERR_STATE);
        }
        ssize_t w = send(ch->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            ch->err = (errno == EPIPE || errno == ECONNRESET) ? CL_CHAN_EOF : CL_CHAN_IO;
            ch->sys_errno = errno;
            return CL_FAIL(CL_ERR_STATE);
        }
        p += (size_t)w;
        len -= (size_t)w;
    }
    return CL_OK;
}

/*
 * Reads exactly len bytes into p before the deadline: from the socket, or
 * from `rfn` when one is given (cl_chan_recv_from: no poll, no deadline).
 */
static cl_status_t read_all(cl_chan_t *ch, cl_chan_read_fn rfn, void *ctx, uint8_t *p, size_t len,
                            int64_t deadline)
{
    while (len > 0) {
        ssize_t n;
        if (rfn != NULL) {
            n = rfn(ctx, p, len);
        } else {
            struct pollfd pfd = {.fd = ch->fd, .events = POLLIN};
            int r = poll(&pfd, 1, left_ms(deadline));
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                ch->err = CL_CHAN_IO;
                ch->sys_errno = errno;
                return CL_FAIL(CL_ERR_STATE);
            }
            if (r == 0) {
                ch->err = CL_CHAN_TIMEOUT;
                return CL_FAIL(CL_ERR_STATE);
            }
            n = recv(ch->fd, p, len, MSG_DONTWAIT);
        }
        if (n == 0) {
            ch->err = CL_CHAN_EOF;
            return CL_FAIL(CL_ERR_STATE);
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            ch->err = errno == ECONNRESET ? CL_CHAN_EOF : CL_CHAN_IO;
            ch->sys_errno = errno;
            return CL_FAIL(CL_ERR_STATE);
        }
        if ((size_t)n > len) { /* a broken source: never write past p + len */
            ch->err = CL_CHAN_IO;
            return CL_FAIL(CL_ERR_STATE);
        }
        p += (size_t)n;
        len -= (size_t)n;
    }
    return CL_OK;
}

cl_status_t cl_chan_write_raw(cl_chan_t *ch, const uint8_t *p, size_t len)
{
    ch->err = CL_CHAN_OK;
    return write_all(ch, p, len);
}

cl_status_t cl_chan_send(cl_chan_t *ch)
{
    ch->err = CL_CHAN_OK;
    if (ch->wfail || ch->wlen < CL_CHAN_HDR_LEN + 1) {
        ch->err = CL_CHAN_NOMEM;
        return CL_FAIL(CL_ERR_LIMIT);
    }
    size_t flen = ch->wlen - CL_CHAN_HDR_LEN;
    cl_put_le32(ch->wbuf, (uint32_t)flen);
    return write_all(ch, ch->wbuf, ch->wlen);
}

cl_status_t cl_chan_recv_from(cl_chan_t *ch, cl_chan_read_fn rfn, void *ctx, uint8_t *type,
                              cl_rd_t *rd)
{
    ch->err = CL_CHAN_OK;
    memset(rd, 0, sizeof(*rd));
    rd->bad = true;
    if (ch->rcap > 1024u * 1024u) { /* shrink after a snapshot */
        free(ch->rbuf);
        ch->rbuf = NULL;
        ch->rcap = 0;
    }
    int64_t deadline = deadline_of(ch);
    uint8_t hdr[CL_CHAN_HDR_LEN];
    cl_status_t st = read_all(ch, rfn, ctx, hdr, sizeof(hdr), deadline);
    if (st != CL_OK)
        return st;
    size_t flen = cl_get_le32(hdr);
    if (flen == 0 || flen > CL_CHAN_MAX_FRAME) {
        ch->err = CL_CHAN_PROTO;
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    /* Grow with the data actually received, never beyond flen. */
    size_t got = 0;
    while (got < flen) {
        if (ch->rcap <= got) {
            size_t cap = ch->rcap < CL_CHAN_GROW_STEP ? CL_CHAN_GROW_STEP : ch->rcap * 2;
            if (cap > flen)
                cap = flen;
            uint8_t *nb = realloc(ch->rbuf, cap);
            if (nb == NULL) {
                ch->err = CL_CHAN_NOMEM;
                return CL_FAIL(CL_ERR_STATE);
            }
            ch->rbuf = nb;
            ch->rcap = cap;
        }
        size_t chunk = (ch->rcap < flen ? ch->rcap : flen) - got;
        st = read_all(ch, rfn, ctx, ch->rbuf + got, chunk, deadline);
        if (st != CL_OK)
            return st;
        got += chunk;
    }
    *type = ch->rbuf[0];
    rd->p = ch->rbuf + 1;
    rd->len = flen - 1;
    rd->pos = 0;
    rd->bad = false;
    return CL_OK;
}

cl_status_t cl_chan_recv(cl_chan_t *ch, uint8_t *type, cl_rd_t *rd)
{
    return cl_chan_recv_from(ch, NULL, NULL, type, rd);
}

/* ---- field readers ---- */

const uint8_t *cl_rd_raw(cl_rd_t *rd, size_t n)
{
    if (rd->bad || n > rd->len - rd->pos) {
        rd->bad = true;
        return NULL;
    }
    const uint8_t *p = rd->p + rd->pos;
    rd->pos += n;
    return p;
}

static uint64_t get_le(cl_rd_t *rd, int n)
{
    const uint8_t *p = cl_rd_raw(rd, (size_t)n);
    uint64_t v = 0;
    if (p == NULL)
        return 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint16_t cl_rd_u16(cl_rd_t *rd)
{
    return (uint16_t)get_le(rd, 2);
}
uint32_t cl_rd_u32(cl_rd_t *rd)
{
    return (uint32_t)get_le(rd, 4);
}
uint64_t cl_rd_u64(cl_rd_t *rd)
{
    return get_le(rd, 8);
}

int32_t cl_rd_i32(cl_rd_t *rd)
{
    uint32_t u = cl_rd_u32(rd);
    int32_t v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

int64_t cl_rd_i64(cl_rd_t *rd)
{
    uint64_t u = cl_rd_u64(rd);
    int64_t v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

const uint8_t *cl_rd_bytes(cl_rd_t *rd, size_t max, size_t *len)
{
    *len = 0;
    size_t n = cl_rd_u32(rd);
    if (rd->bad)
        return NULL;
    if (n > max) {
        rd->bad = true;
        return NULL;
    }
    const uint8_t *p = cl_rd_raw(rd, n);
    if (p != NULL)
        *len = n;
    return p;
}

size_t cl_rd_left(const cl_rd_t *rd)
{
    return rd->bad ? 0 : rd->len - rd->pos;
}

bool cl_rd_done(const cl_rd_t *rd)
{
    return !rd->bad && rd->pos == rd->len;
}

cl_status_t cl_chan_status(int32_t wire, bool *ok)
{
    /* CL_ERR_PEER_ERROR is the lowest code status.h defines; extend with it. */
    if (wire > 0 || wire < (int32_t)CL_ERR_PEER_ERROR) {
        *ok = false;
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    *ok = true;
    return (cl_status_t)wire;
}

/* ---- frame decoders (channel.h): bytes in, struct out, no I/O ---- */

const char *cl_ocall_decode(uint8_t type, cl_rd_t *rd, cl_ocall_frame_t *f)
{
    memset(f, 0, sizeof(*f));
    f->type = type;
    switch (type) {
    case CL_FRAME_OCALL_LOG_LINE:
        f->u.log_line.level = cl_rd_i32(rd);
        f->u.log_line.line = cl_rd_bytes(rd, CL_CHAN_MAX_DATA, &f->u.log_line.len);
        return cl_rd_done(rd) ? NULL : "malformed log_line";
    case CL_FRAME_OCALL_LOG_APPEND:
        f->u.log_append.counter = cl_rd_u64(rd);
        f->u.log_append.rec = cl_rd_bytes(rd, CL_CHAN_MAX_DATA, &f->u.log_append.len);
        return cl_rd_done(rd) ? NULL : "malformed log_append";
    case CL_FRAME_OCALL_LOG_READ:
        f->u.log_read.counter = cl_rd_u64(rd);
        f->u.log_read.size = cl_rd_u32(rd);
        return cl_rd_done(rd) ? NULL : "malformed log_read";
    case CL_FRAME_OCALL_LOG_COMPACT:
        f->u.log_compact.before = cl_rd_u64(rd);
        return cl_rd_done(rd) ? NULL : "malformed log_compact";
    case CL_FRAME_OCALL_SNAPSHOT_PUT:
        f->u.snapshot_put.blob = cl_rd_bytes(rd, CL_CHAN_MAX_DATA, &f->u.snapshot_put.len);
        return cl_rd_done(rd) ? NULL : "malformed snapshot_put";
    case CL_FRAME_OCALL_SNAPSHOT_GET:
        f->u.snapshot_get.size = cl_rd_u32(rd);
        return cl_rd_done(rd) ? NULL : "malformed snapshot_get";
    case CL_FRAME_OCALL_ARCHIVE_PUT:
        f->u.archive_put.n = cl_rd_u32(rd);
        /* Each record takes at least 28 bytes of the frame: bound n before allocating. */
        if (rd->bad || f->u.archive_put.n > cl_rd_left(rd) / 28)
            return "malformed archive_put (count)";
        return NULL;
    case CL_FRAME_OCALL_ARCHIVE_SCAN: {
        const uint8_t *t = cl_rd_raw(rd, 16);
        if (t != NULL)
            memcpy(f->u.archive_scan.tag, t, 16);
        f->u.archive_scan.from = cl_rd_u64(rd);
        f->u.archive_scan.to = cl_rd_u64(rd);
        f->u.archive_scan.after_id = cl_rd_u64(rd);
        f->u.archive_scan.max_records = cl_rd_u64(rd);
        f->u.archive_scan.size = cl_rd_u32(rd);
        return cl_rd_done(rd) ? NULL : "malformed archive_scan";
    }
    case CL_FRAME_OCALL_SEND:
        f->u.send.peer = cl_rd_u64(rd);
        f->u.send.transport = cl_rd_u16(rd);
        f->u.send.msg = cl_rd_bytes(rd, CL_CHAN_MAX_DATA, &f->u.send.len);
        return cl_rd_done(rd) ? NULL : "malformed send";
    case CL_FRAME_OCALL_TIME_NOW: return cl_rd_done(rd) ? NULL : "malformed time_now";
    default: return "unexpected frame type";
    }
}

bool cl_ocall_decode_archive_recs(cl_rd_t *rd, cl_archive_rec_t *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *tag = cl_rd_raw(rd, 16);
        if (tag != NULL)
            memcpy(recs[i].tag, tag, 16);
        recs[i].bucket = cl_rd_u64(rd);
        recs[i].data = cl_rd_bytes(rd, CL_CHAN_MAX_DATA, &recs[i].len);
    }
    return cl_rd_done(rd);
}

const char *cl_ecall_result_decode(cl_rd_t *rd, size_t out_size, bool has_out, cl_ecall_result_t *r)
{
    bool ok;
    memset(r, 0, sizeof(*r));
    r->status = cl_chan_status(cl_rd_i32(rd), &ok);
    r->value = cl_rd_u64(rd);
    r->out = cl_rd_bytes(rd, CL_CHAN_MAX_DATA, &r->len);
    if (!cl_rd_done(rd) || !ok)
        return "malformed ecall result";
    if (r->len > out_size)
        return "ecall result larger than the caller's buffer";
    if (r->len > 0 && (r->status != CL_OK || !has_out))
        return "ecall result with unexpected data";
    return NULL;
}

cl_status_t cl_ecall_decode(uint8_t type, cl_rd_t *rd, cl_ecall_frame_t *f)
{
    memset(f, 0, sizeof(*f));
    f->type = type;
    switch (type) {
    case CL_FRAME_ECALL_OPEN:
        f->u.open.api = cl_rd_u32(rd);
        f->u.open.cfg.version = cl_rd_u32(rd);
        f->u.open.cfg.snapshot_every = cl_rd_u32(rd);
        f->u.open.cfg.max_sessions = cl_rd_u32(rd);
        f->u.open.cfg.session_ttl_s = cl_rd_u32(rd);
        f->u.open.cfg.seal_policy = cl_rd_u16(rd);
        f->u.open.cfg.reserved = cl_rd_u16(rd);
        f->u.open.ops_mask = cl_rd_u16(rd);
        if (!cl_rd_done(rd) || (f->u.open.ops_mask & ~CL_OPS_BITS_ALL) != 0)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        return CL_OK;
    case CL_FRAME_ECALL_HANDLE:
    case CL_FRAME_ECALL_ATTEST:
        f->handle = cl_rd_u64(rd);
        f->u.call.out_size = cl_rd_u32(rd);
        f->u.call.in = cl_rd_bytes(rd, CL_CHAN_MAX_DATA, &f->u.call.len);
        return cl_rd_done(rd) ? CL_OK : CL_FAIL(CL_ERR_BAD_INPUT);
    case CL_FRAME_ECALL_TICK:
        f->handle = cl_rd_u64(rd);
        f->u.tick.now_ms = cl_rd_i64(rd);
        return cl_rd_done(rd) ? CL_OK : CL_FAIL(CL_ERR_BAD_INPUT);
    case CL_FRAME_ECALL_CLOSE:
        f->handle = cl_rd_u64(rd);
        return cl_rd_done(rd) ? CL_OK : CL_FAIL(CL_ERR_BAD_INPUT);
    default: return CL_ERR_NOT_FOUND;
    }
}

cl_status_t cl_ocall_result_decode(uint8_t op, cl_rd_t *rd, size_t size, size_t max_records,
                                   size_t n, uint64_t *ids, cl_ocall_result_t *r)
{
    bool ok;
    cl_status_t hs = cl_chan_status(cl_rd_i32(rd), &ok);
    if (!ok)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    cl_ocall_result_t res;
    memset(&res, 0, sizeof(res));
    switch (op) {
    case CL_FRAME_OCALL_LOG_APPEND:
    case CL_FRAME_OCALL_LOG_COMPACT:
    case CL_FRAME_OCALL_SNAPSHOT_PUT:
    case CL_FRAME_OCALL_SEND: break;
    case CL_FRAME_OCALL_LOG_READ:
        res.got = cl_rd_u64(rd);
        res.data = cl_rd_bytes(rd, size, &res.len);
        break;
    case CL_FRAME_OCALL_SNAPSHOT_GET: res.data = cl_rd_bytes(rd, size, &res.len); break;
    case CL_FRAME_OCALL_ARCHIVE_PUT: {
        size_t count = cl_rd_u32(rd);
        /* n ids on success, none on error, and nothing else in the frame */
        if (rd->bad || count != (hs == CL_OK ? n : 0) || cl_rd_left(rd) != 8 * count)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (hs != CL_OK)
            return hs;
        for (size_t i = 0; i < count; i++)
            ids[i] = cl_rd_u64(rd);
        break;
    }
    case CL_FRAME_OCALL_ARCHIVE_SCAN:
        res.got = cl_rd_u64(rd);
        res.data = cl_rd_bytes(rd, size, &res.len);
        break;
    case CL_FRAME_OCALL_TIME_NOW: res.unix_ms = cl_rd_i64(rd); break;
    default: return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    /* The result had to be consumed exactly; then the host's status counts. */
    if (!cl_rd_done(rd))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (hs != CL_OK)
        return hs;
    if (op == CL_FRAME_OCALL_ARCHIVE_SCAN && res.got > max_records)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *r = res;
    return CL_OK;
}
