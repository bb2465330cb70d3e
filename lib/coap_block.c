/*
 * coap_block.c - block-wise transfer (RFC 7959): slicing and bounded reassembly.
 *
 * Reassembly is deliberately strict: blocks must arrive in order (the byte
 * offset num * block size must equal what was assembled so far, which also
 * accepts a smaller block size negotiated mid-transfer), every block but the
 * last must be full, and the total is bounded by the caller's buffer. On any
 * inconsistency the transfer is dropped, so a peer (or an on-path proxy, for
 * OSCORE's unprotected outer blocks) can waste at most one buffer.
 */
#include <string.h>

#include "cloister/coap_block.h"

void cl_coap_reasm_init(cl_coap_reasm_t *r, uint8_t *buf, size_t size)
{
    memset(r, 0, sizeof *r);
    r->buf = buf;
    r->size = size;
}

static void reset(cl_coap_reasm_t *r)
{
    r->len = 0;
    r->active = false;
    r->tkl = 0;
}

static bool same_token(const cl_coap_reasm_t *r, const cl_coap_msg_t *m)
{
    return r->tkl == m->tkl && (m->tkl == 0 || memcmp(r->token, m->token, m->tkl) == 0);
}

cl_status_t cl_coap_reasm_feed(cl_coap_reasm_t *r, const cl_coap_msg_t *m, uint16_t block_option,
                               bool *done)
{
    const cl_coap_option_t *opt;
    cl_coap_block_t blk;
    size_t pos = 0;
    cl_status_t st;

    if (r == NULL || m == NULL || done == NULL ||
        (block_option != CL_COAP_OPT_BLOCK1 && block_option != CL_COAP_OPT_BLOCK2))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *done = false;
    opt = cl_coap_msg_find(m, block_option, &pos);
    if (opt == NULL) {
        if (r->active) { /* an unfragmented message interrupts nothing of ours */
            if (same_token(r, m)) {
                reset(r);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
        }
        if (m->payload_len > r->size)
            return CL_FAIL(CL_ERR_LIMIT);
        if (m->payload_len)
            memcpy(r->buf, m->payload, m->payload_len);
        r->len = m->payload_len;
        r->option = block_option;
        *done = true;
        return CL_OK;
    }
    pos++;
    if (cl_coap_msg_find(m, block_option, &pos) != NULL) { /* not repeatable */
        reset(r);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if ((st = cl_coap_block_decode(opt, &blk)) != CL_OK) {
        reset(r);
        return st;
    }
    size_t bsize = (size_t)1 << (blk.szx + 4);
    if (blk.num == 0) {
        reset(r); /* a new transfer replaces any unfinished one */
        r->active = true;
        r->option = block_option;
        r->tkl = m->tkl;
        if (m->tkl)
            memcpy(r->token, m->token, m->tkl);
    } else if (!r->active || !same_token(r, m) || r->option != block_option ||
               (uint64_t)blk.num * bsize != r->len) {
        reset(r);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if ((blk.more && m->payload_len != bsize) || m->payload_len > bsize ||
        (blk.more && m->payload_len == 0)) {
        reset(r);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (m->payload_len > r->size - r->len) {
        reset(r);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    if (m->payload_len)
        memcpy(r->buf + r->len, m->payload, m->payload_len);
    r->len += m->payload_len;
    *done = !blk.more;
    return CL_OK;
}

cl_status_t cl_coap_reasm_finish(cl_coap_reasm_t *r, const cl_coap_msg_t *last, uint8_t *out,
                                 size_t out_size, size_t *out_len)
{
    cl_coap_msg_t whole;
    uint16_t size_opt;
    cl_status_t st;

    if (r == NULL || last == NULL || out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    size_opt = r->option == CL_COAP_OPT_BLOCK1 ? CL_COAP_OPT_SIZE1 : CL_COAP_OPT_SIZE2;
    memcpy(&whole, last, offsetof(cl_coap_msg_t, options));
    whole.n_options = 0;
    for (size_t i = 0; i < last->n_options; i++) {
        uint16_t n = last->options[i].number;
        if (n == r->option || n == size_opt)
            continue;
        whole.options[whole.n_options++] = last->options[i];
    }
    whole.payload = r->len ? r->buf : NULL;
    whole.payload_len = r->len;
    st = cl_coap_serialize(&whole, out, out_size, out_len);
    reset(r);
    return st;
}

cl_status_t cl_coap_block_slice(const cl_coap_msg_t *m, uint16_t block_option, uint32_t num,
                                uint8_t szx, uint8_t *out, size_t out_size, size_t *out_len,
                                bool *more)
{
    cl_coap_msg_t part;
    cl_coap_block_t blk;
    uint8_t val[3];
    size_t val_len;
    cl_status_t st;

    if (m == NULL || out_len == NULL || more == NULL || szx > 6 || num >= (1u << 20) ||
        (block_option != CL_COAP_OPT_BLOCK1 && block_option != CL_COAP_OPT_BLOCK2))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    size_t bsize = (size_t)1 << (szx + 4);
    uint64_t off = (uint64_t)num * bsize;
    if (off > m->payload_len || (off == m->payload_len && num != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    size_t n = m->payload_len - (size_t)off < bsize ? m->payload_len - (size_t)off : bsize;
    blk.num = num;
    blk.szx = szx;
    blk.more = off + n < m->payload_len;
    if ((st = cl_coap_block_encode(&blk, val, &val_len)) != CL_OK)
        return st;
    memcpy(&part, m, offsetof(cl_coap_msg_t, options));
    part.n_options = 0;
    bool placed = false;
    for (size_t i = 0; i < m->n_options; i++) {
        if (m->options[i].number == block_option)
            return CL_FAIL(CL_ERR_INVALID_ARG); /* already fragmented */
        if (!placed && m->options[i].number > block_option) {
            if (part.n_options == CL_COAP_MAX_OPTIONS)
                return CL_FAIL(CL_ERR_LIMIT);
            part.options[part.n_options++] =
                (cl_coap_option_t){block_option, (uint16_t)val_len, val};
            placed = true;
        }
        if (part.n_options == CL_COAP_MAX_OPTIONS)
            return CL_FAIL(CL_ERR_LIMIT);
        part.options[part.n_options++] = m->options[i];
    }
    if (!placed) {
        if (part.n_options == CL_COAP_MAX_OPTIONS)
            return CL_FAIL(CL_ERR_LIMIT);
        part.options[part.n_options++] = (cl_coap_option_t){block_option, (uint16_t)val_len, val};
    }
    part.payload = n ? m->payload + off : NULL;
    part.payload_len = n;
    if ((st = cl_coap_serialize(&part, out, out_size, out_len)) != CL_OK)
        return st;
    *more = blk.more;
    return CL_OK;
}
