/*
 * cloister/coap_block.h - block-wise transfer (RFC 7959) on caller buffers.
 *
 * Two operations that OSCORE needs for *outer* Block options (RFC 8613
 * section 4.1.3.4.2): a proxy or a sender may fragment a protected message
 * with Block1 (requests) or Block2 (responses) that are not protected; the
 * receiver must reassemble the whole OSCORE message, bounded by
 * MAX_UNFRAGMENTED_SIZE (the buffer the caller gives), before unprotecting
 * it. cl_coap_block_slice cuts block `num` out of a whole message;
 * cl_coap_reasm_* puts the blocks back together, strictly in order.
 * Inner (end-to-end) Block options need nothing from OSCORE: they are just
 * class E options processed after decryption.
 */
#ifndef CLOISTER_COAP_BLOCK_H
#define CLOISTER_COAP_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/coap.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Reassembly state; buf/size bound the whole payload (MAX_UNFRAGMENTED_SIZE). */
typedef struct cl_coap_reasm {
    uint8_t *buf;
    size_t size;
    size_t len;      /**< payload bytes assembled so far */
    uint16_t option; /**< CL_COAP_OPT_BLOCK1 or CL_COAP_OPT_BLOCK2 */
    uint8_t tkl;
    uint8_t token[CL_COAP_MAX_TOKEN];
    bool active; /**< a transfer is in progress */
} cl_coap_reasm_t;

/** Starts with an empty assembly into buf[0..size). */
void cl_coap_reasm_init(cl_coap_reasm_t *r, uint8_t *buf, size_t size);

/**
 * Feeds one received message carrying `block_option`. *done is true once the
 * last block (M = 0) arrived; then cl_coap_reasm_finish builds the message.
 * A message without the option is complete by itself (*done = true).
 * Out-of-order or inconsistent blocks, or a block from another token while a
 * transfer is active: CL_ERR_BAD_INPUT. More than `size` bytes: CL_ERR_LIMIT
 * (the message is discarded, RFC 8613 4.1.3.4.2). Any error resets the state.
 */
cl_status_t cl_coap_reasm_feed(cl_coap_reasm_t *r, const cl_coap_msg_t *m, uint16_t block_option,
                               bool *done) CL_MUST_CHECK;

/**
 * Serializes the reassembled message: the header and options of `last` (the
 * final block) without the block option and its Size1/Size2 companion, with
 * the assembled payload. Resets the state.
 */
cl_status_t cl_coap_reasm_finish(cl_coap_reasm_t *r, const cl_coap_msg_t *last, uint8_t *out,
                                 size_t out_size, size_t *out_len) CL_MUST_CHECK;

/**
 * Writes block `num` of size 2^(szx+4) of the whole message m, adding
 * `block_option` (Block1 for requests, Block2 for responses). *more tells
 * whether further blocks follow. num beyond the payload: CL_ERR_INVALID_ARG.
 */
cl_status_t cl_coap_block_slice(const cl_coap_msg_t *m, uint16_t block_option, uint32_t num,
                                uint8_t szx, uint8_t *out, size_t out_size, size_t *out_len,
                                bool *more) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
