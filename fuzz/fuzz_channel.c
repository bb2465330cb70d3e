/*
 * fuzz_channel.c - libFuzzer harness for the frames of the process runtime
 * (tee/process/channel.h): the bytes the host (runtime.c) and the core
 * process (cloister-core, core_main.c) exchange over their socketpair. Pure
 * parsing: no socket, no fork.
 *
 * Input:
 *   u8 k, (k % 8) chunk sizes (u8 each), u8 flags, u16 out_size, u8 max_records,
 *   u8 n_ids, then the byte stream
 * The stream goes through the frame reassembler (cl_chan_recv_from) in
 * chunks of the given sizes (0 = an EINTR from the source). Every frame it
 * delivers goes to the host's decoders (cl_ocall_decode +
 * cl_ocall_decode_archive_recs, cl_ecall_result_decode with out_size and
 * flags bit 0 = the caller has an output buffer) and to the core process's
 * (cl_ecall_decode; an OCALL_RESULT to cl_ocall_result_decode for every
 * ocall, asked for out_size bytes, max_records records or n_ids ids).
 *
 * Invariants checked with abort():
 * - reassembly: a frame is delivered iff its header is 1..CL_CHAN_MAX_FRAME
 *   and all its bytes arrived; it is exactly those bytes, frames follow each
 *   other in the stream; a bad header is refused with CL_ERR_BAD_INPUT, a
 *   short stream ends with CL_CHAN_EOF;
 * - an accepted frame is consumed exactly (cl_rd_done), every decoded byte
 *   string lies inside the frame and within the size asked for;
 * - the same frame with one trailing byte, or one byte short, is refused;
 * - re-encoding an accepted frame with the channel's encoder
 *   (cl_chan_begin / cl_chan_put_*, in the layout the senders use) gives the
 *   identical bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

typedef struct params {
    bool has_out;
    size_t out_size;    /* ECALL_RESULT: the caller's out_size; OCALL_RESULT: size asked */
    size_t max_records; /* OCALL_RESULT of ARCHIVE_SCAN */
    size_t n_ids;       /* OCALL_RESULT of ARCHIVE_PUT */
} params_t;

/* ---- a byte source in chunks ---- */

typedef struct src {
    const uint8_t *p;
    size_t len, pos;
    const uint8_t *chunks;
    size_t n_chunks, next;
    bool interrupted;
} src_t;

static long src_read(void *ctx, uint8_t *p, size_t len)
{
    src_t *s = ctx;
    CHECK(len > 0);
    if (s->pos == s->len)
        return 0;
    size_t c = s->n_chunks ? s->chunks[s->next++ % s->n_chunks] : len;
    if (c == 0 && !s->interrupted) {
        s->interrupted = true;
        errno = EINTR;
        return -1;
    }
    s->interrupted = false;
    if (c == 0)
        c = 1;
    if (c > len)
        c = len;
    if (c > s->len - s->pos)
        c = s->len - s->pos;
    memcpy(p, s->p + s->pos, c);
    s->pos += c;
    return (long)c;
}

/* ---- helpers ---- */

static cl_rd_t reader(const uint8_t *p, size_t len)
{
    cl_rd_t rd = {.p = p, .len = len, .pos = 0, .bad = false};
    return rd;
}

/* A decoded byte string lies inside [f, f + flen) and is at most max bytes. */
static void check_inside(const uint8_t *f, size_t flen, const uint8_t *p, size_t len, size_t max)
{
    CHECK(len <= max);
    if (p == NULL) {
        CHECK(len == 0);
        return;
    }
    CHECK(p >= f && p <= f + flen);
    CHECK(len <= (size_t)(f + flen - p));
}

/* The frame built in ch is exactly (type, f[0..flen)). */
static void check_encoding(cl_chan_t *ch, uint8_t type, const uint8_t *f, size_t flen)
{
    CHECK(!ch->wfail);
    CHECK(ch->wlen == CL_CHAN_HDR_LEN + 1 + flen);
    CHECK(ch->wbuf[CL_CHAN_HDR_LEN] == type);
    CHECK(flen == 0 || memcmp(ch->wbuf + CL_CHAN_HDR_LEN + 1, f, flen) == 0);
}

/* ---- the host's side: ocall frames and ECALL_RESULT ---- */

/* Decodes a frame as runtime.c does; true when accepted. With `check`, the
 * invariants of an accepted frame are checked (enc: the encoder). */
static bool host_accepts(cl_chan_t *enc, uint8_t type, const uint8_t *f, size_t flen,
                         const params_t *pr, bool check)
{
    cl_rd_t rd = reader(f, flen);
    if (type == CL_FRAME_ECALL_RESULT) {
        cl_ecall_result_t r;
        if (cl_ecall_result_decode(&rd, pr->out_size, pr->has_out, &r) != NULL)
            return false;
        if (!check)
            return true;
        CHECK(cl_rd_done(&rd));
        check_inside(f, flen, r.out, r.len, pr->out_size);
        CHECK(r.len == 0 || (r.status == CL_OK && pr->has_out));
        bool ok;
        CHECK(cl_chan_status((int32_t)r.status, &ok) == r.status && ok);
        cl_chan_begin(enc, type);
        cl_chan_put_u32(enc, (uint32_t)(int32_t)r.status);
        cl_chan_put_u64(enc, r.value);
        cl_chan_put_bytes(enc, r.out, r.len);
        check_encoding(enc, type, f, flen);
        return true;
    }
    cl_ocall_frame_t o;
    if (cl_ocall_decode(type, &rd, &o) != NULL)
        return false;
    cl_archive_rec_t *recs = NULL;
    if (type == CL_FRAME_OCALL_ARCHIVE_PUT) {
        CHECK(!rd.bad && o.u.archive_put.n <= cl_rd_left(&rd) / 28);
        recs = calloc(o.u.archive_put.n ? o.u.archive_put.n : 1, sizeof(*recs));
        CHECK(recs != NULL);
        if (!cl_ocall_decode_archive_recs(&rd, recs, o.u.archive_put.n)) {
            free(recs);
            return false;
        }
    }
    if (!check) {
        free(recs);
        return true;
    }
    CHECK(cl_rd_done(&rd));
    CHECK(o.type == type);
    cl_chan_begin(enc, type);
    switch (type) {
    case CL_FRAME_OCALL_LOG_LINE:
        check_inside(f, flen, o.u.log_line.line, o.u.log_line.len, CL_CHAN_MAX_DATA);
        cl_chan_put_u32(enc, (uint32_t)o.u.log_line.level);
        cl_chan_put_bytes(enc, o.u.log_line.line, o.u.log_line.len);
        break;
    case CL_FRAME_OCALL_LOG_APPEND:
        check_inside(f, flen, o.u.log_append.rec, o.u.log_append.len, CL_CHAN_MAX_DATA);
        cl_chan_put_u64(enc, o.u.log_append.counter);
        cl_chan_put_bytes(enc, o.u.log_append.rec, o.u.log_append.len);
        break;
    case CL_FRAME_OCALL_LOG_READ:
        CHECK(o.u.log_read.size <= UINT32_MAX);
        cl_chan_put_u64(enc, o.u.log_read.counter);
        cl_chan_put_u32(enc, (uint32_t)o.u.log_read.size);
        break;
    case CL_FRAME_OCALL_LOG_COMPACT: cl_chan_put_u64(enc, o.u.log_compact.before); break;
    case CL_FRAME_OCALL_SNAPSHOT_PUT:
        check_inside(f, flen, o.u.snapshot_put.blob, o.u.snapshot_put.len, CL_CHAN_MAX_DATA);
        cl_chan_put_bytes(enc, o.u.snapshot_put.blob, o.u.snapshot_put.len);
        break;
    case CL_FRAME_OCALL_SNAPSHOT_GET:
        CHECK(o.u.snapshot_get.size <= UINT32_MAX);
        cl_chan_put_u32(enc, (uint32_t)o.u.snapshot_get.size);
        break;
    case CL_FRAME_OCALL_ARCHIVE_PUT:
        cl_chan_put_u32(enc, (uint32_t)o.u.archive_put.n);
        for (size_t i = 0; i < o.u.archive_put.n; i++) {
            check_inside(f, flen, recs[i].data, recs[i].len, CL_CHAN_MAX_DATA);
            cl_chan_put_raw(enc, recs[i].tag, 16);
            cl_chan_put_u64(enc, recs[i].bucket);
            cl_chan_put_bytes(enc, recs[i].data, recs[i].len);
        }
        break;
    case CL_FRAME_OCALL_ARCHIVE_SCAN:
        cl_chan_put_raw(enc, o.u.archive_scan.tag, 16);
        cl_chan_put_u64(enc, o.u.archive_scan.from);
        cl_chan_put_u64(enc, o.u.archive_scan.to);
        cl_chan_put_u64(enc, o.u.archive_scan.after_id);
        cl_chan_put_u64(enc, o.u.archive_scan.max_records);
        cl_chan_put_u32(enc, (uint32_t)o.u.archive_scan.size);
        break;
    case CL_FRAME_OCALL_SEND:
        check_inside(f, flen, o.u.send.msg, o.u.send.len, CL_CHAN_MAX_DATA);
        cl_chan_put_u64(enc, o.u.send.peer);
        cl_chan_put_u16(enc, o.u.send.transport);
        cl_chan_put_bytes(enc, o.u.send.msg, o.u.send.len);
        break;
    case CL_FRAME_OCALL_TIME_NOW: break;
    default: CHECK(0); /* accepted a type that is not an ocall */
    }
    check_encoding(enc, type, f, flen);
    free(recs);
    return true;
}

/* ---- the core process's side: ecall frames and OCALL_RESULT ---- */

static bool core_accepts_ecall(cl_chan_t *enc, uint8_t type, const uint8_t *f, size_t flen,
                               bool check)
{
    cl_rd_t rd = reader(f, flen);
    cl_ecall_frame_t e;
    cl_status_t st = cl_ecall_decode(type, &rd, &e);
    bool is_ecall = type >= CL_FRAME_ECALL_OPEN && type <= CL_FRAME_ECALL_CLOSE;
    CHECK(st == CL_OK || st == (is_ecall ? CL_ERR_BAD_INPUT : CL_ERR_NOT_FOUND));
    if (st != CL_OK)
        return false;
    if (!check)
        return true;
    CHECK(cl_rd_done(&rd));
    CHECK(e.type == type);
    cl_chan_begin(enc, type);
    switch (type) {
    case CL_FRAME_ECALL_OPEN:
        CHECK((e.u.open.ops_mask & ~CL_OPS_BITS_ALL) == 0);
        cl_chan_put_u32(enc, e.u.open.api);
        cl_chan_put_u32(enc, e.u.open.cfg.version);
        cl_chan_put_u32(enc, e.u.open.cfg.snapshot_every);
        cl_chan_put_u32(enc, e.u.open.cfg.max_sessions);
        cl_chan_put_u32(enc, e.u.open.cfg.session_ttl_s);
        cl_chan_put_u16(enc, e.u.open.cfg.seal_policy);
        cl_chan_put_u16(enc, e.u.open.cfg.reserved);
        cl_chan_put_u16(enc, e.u.open.ops_mask);
        break;
    case CL_FRAME_ECALL_HANDLE:
    case CL_FRAME_ECALL_ATTEST:
        check_inside(f, flen, e.u.call.in, e.u.call.len, CL_CHAN_MAX_DATA);
        CHECK(e.u.call.out_size <= UINT32_MAX);
        cl_chan_put_u64(enc, e.handle);
        cl_chan_put_u32(enc, (uint32_t)e.u.call.out_size);
        cl_chan_put_bytes(enc, e.u.call.in, e.u.call.len);
        break;
    case CL_FRAME_ECALL_TICK:
        cl_chan_put_u64(enc, e.handle);
        cl_chan_put_u64(enc, (uint64_t)e.u.tick.now_ms);
        break;
    case CL_FRAME_ECALL_CLOSE: cl_chan_put_u64(enc, e.handle); break;
    default: CHECK(0);
    }
    check_encoding(enc, type, f, flen);
    return true;
}

static const uint8_t ocall_ops[] = {
    CL_FRAME_OCALL_LOG_APPEND,   CL_FRAME_OCALL_LOG_READ,     CL_FRAME_OCALL_LOG_COMPACT,
    CL_FRAME_OCALL_SNAPSHOT_PUT, CL_FRAME_OCALL_SNAPSHOT_GET, CL_FRAME_OCALL_ARCHIVE_PUT,
    CL_FRAME_OCALL_ARCHIVE_SCAN, CL_FRAME_OCALL_SEND,         CL_FRAME_OCALL_TIME_NOW,
};

/* The OCALL_RESULT frame f answering `op` as core_main.c decodes it; true
 * when the core gets CL_OK. */
static bool core_accepts_result(cl_chan_t *enc, uint8_t op, const uint8_t *f, size_t flen,
                                const params_t *pr, bool check)
{
    cl_rd_t rd = reader(f, flen);
    cl_ocall_result_t r;
    memset(&r, 0xa5, sizeof(r));
    uint64_t ids[256];
    const uint64_t canary = 0x5a5a5a5a5a5a5a5aull;
    for (size_t i = 0; i < 256; i++)
        ids[i] = canary;
    cl_status_t st =
        cl_ocall_result_decode(op, &rd, pr->out_size, pr->max_records, pr->n_ids, ids, &r);
    bool ok;
    CHECK(cl_chan_status((int32_t)st, &ok) == st && ok);
    if (st != CL_OK) {
        for (size_t i = 0; i < 256; i++) /* ids written only on success */
            CHECK(ids[i] == canary);
        return false;
    }
    if (!check)
        return true;
    CHECK(cl_rd_done(&rd));
    cl_chan_begin(enc, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(enc, 0);
    switch (op) {
    case CL_FRAME_OCALL_LOG_READ:
        check_inside(f, flen, r.data, r.len, pr->out_size);
        cl_chan_put_u64(enc, r.got);
        cl_chan_put_bytes(enc, r.data, r.len);
        break;
    case CL_FRAME_OCALL_SNAPSHOT_GET:
        check_inside(f, flen, r.data, r.len, pr->out_size);
        cl_chan_put_bytes(enc, r.data, r.len);
        break;
    case CL_FRAME_OCALL_ARCHIVE_PUT:
        cl_chan_put_u32(enc, (uint32_t)pr->n_ids);
        for (size_t i = 0; i < pr->n_ids; i++)
            cl_chan_put_u64(enc, ids[i]);
        for (size_t i = pr->n_ids; i < 256; i++)
            CHECK(ids[i] == canary);
        break;
    case CL_FRAME_OCALL_ARCHIVE_SCAN:
        check_inside(f, flen, r.data, r.len, pr->out_size);
        CHECK(r.got <= pr->max_records);
        cl_chan_put_u64(enc, r.got);
        cl_chan_put_bytes(enc, r.data, r.len);
        break;
    case CL_FRAME_OCALL_TIME_NOW: cl_chan_put_u64(enc, (uint64_t)r.unix_ms); break;
    default: break;
    }
    check_encoding(enc, CL_FRAME_OCALL_RESULT, f, flen);
    return true;
}

/* ---- one frame through every decoder ---- */

/* accepts(f, flen) for the variant of the frame with one trailing byte / one byte short. */
static void check_exact(cl_chan_t *enc, uint8_t type, const uint8_t *f, size_t flen,
                        const params_t *pr, int side, uint8_t op)
{
    uint8_t *longer = malloc(flen + 1);
    CHECK(longer != NULL);
    if (flen > 0)
        memcpy(longer, f, flen);
    longer[flen] = (uint8_t)(flen * 31u + 7u);
    for (int v = 0; v < 2; v++) {
        size_t l = v == 0 ? flen + 1 : flen - 1;
        if (v == 1 && flen == 0)
            break;
        bool acc = side == 0   ? host_accepts(enc, type, longer, l, pr, false)
                   : side == 1 ? core_accepts_ecall(enc, type, longer, l, false)
                               : core_accepts_result(enc, op, longer, l, pr, false);
        CHECK(!acc);
    }
    free(longer);
}

static void decode_frame(cl_chan_t *enc, uint8_t type, const uint8_t *f, size_t flen,
                         const params_t *pr)
{
    if (host_accepts(enc, type, f, flen, pr, true))
        check_exact(enc, type, f, flen, pr, 0, 0);
    if (core_accepts_ecall(enc, type, f, flen, true))
        check_exact(enc, type, f, flen, pr, 1, 0);
    if (type == CL_FRAME_OCALL_RESULT) {
        for (size_t i = 0; i < sizeof(ocall_ops); i++)
            if (core_accepts_result(enc, ocall_ops[i], f, flen, pr, true))
                check_exact(enc, type, f, flen, pr, 2, ocall_ops[i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t k = data[0] % 8u;
    size_t hdr = 1 + k + 5;
    if (size < hdr)
        return 0;
    const uint8_t *pp = data + 1 + k;
    params_t pr = {
        .has_out = (pp[0] & 1) != 0,
        .out_size = (size_t)pp[1] | (size_t)pp[2] << 8,
        .max_records = pp[3],
        .n_ids = pp[4],
    };
    if (pp[0] & 2) /* the largest sizes the host asks for */
        pr.out_size = CL_CHAN_MAX_DATA;

    src_t s = {.p = data + hdr, .len = size - hdr, .chunks = data + 1, .n_chunks = k};
    cl_chan_t ch, enc;
    cl_chan_init(&ch, -1, 0);
    cl_chan_init(&enc, -1, 0);
    size_t off = 0; /* where the next frame starts in the stream */
    for (;;) {
        uint8_t type = 0;
        cl_rd_t rd;
        cl_status_t st = cl_chan_recv_from(&ch, src_read, &s, &type, &rd);
        size_t left = s.len - off;
        size_t flen = 0;
        if (left >= CL_CHAN_HDR_LEN)
            flen = (size_t)s.p[off] | (size_t)s.p[off + 1] << 8 | (size_t)s.p[off + 2] << 16 |
                   (size_t)s.p[off + 3] << 24;
        if (st != CL_OK) {
            CHECK(rd.bad && cl_rd_left(&rd) == 0);
            if (st == CL_ERR_BAD_INPUT) {
                CHECK(ch.err == CL_CHAN_PROTO);
                CHECK(left >= CL_CHAN_HDR_LEN && (flen == 0 || flen > CL_CHAN_MAX_FRAME));
            } else {
                CHECK(st == CL_ERR_STATE && ch.err == CL_CHAN_EOF);
                CHECK(left < CL_CHAN_HDR_LEN ||
                      (flen >= 1 && flen <= CL_CHAN_MAX_FRAME && left - CL_CHAN_HDR_LEN < flen));
            }
            break;
        }
        CHECK(ch.err == CL_CHAN_OK);
        CHECK(left >= CL_CHAN_HDR_LEN && flen >= 1 && flen <= CL_CHAN_MAX_FRAME);
        CHECK(left - CL_CHAN_HDR_LEN >= flen);
        CHECK(s.pos == off + CL_CHAN_HDR_LEN + flen); /* never reads past the frame */
        CHECK(type == s.p[off + CL_CHAN_HDR_LEN]);
        CHECK(rd.len == flen - 1 && rd.pos == 0 && !rd.bad);
        CHECK(rd.len == 0 || memcmp(rd.p, s.p + off + CL_CHAN_HDR_LEN + 1, rd.len) == 0);
        decode_frame(&enc, type, rd.p, rd.len, &pr);
        off += CL_CHAN_HDR_LEN + flen;
    }
    cl_chan_free(&enc);
    cl_chan_free(&ch);
    return 0;
}
