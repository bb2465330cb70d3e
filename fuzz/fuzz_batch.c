/*
 * fuzz_batch.c - libFuzzer harness for the batch codec of the trust boundary
 * (include/cloister/core.h, lib/batch.c): the bytes the host hands to the
 * core's handle() ecall and the core hands back.
 *
 * Invariants checked with abort():
 * - cl_batch_validate() and iterating with cl_batch_next() agree: an accepted
 *   batch yields exactly `count` items then CL_ERR_NOT_FOUND; a batch whose
 *   iteration ends cleanly with as many items as its header says, within the
 *   limits, is accepted;
 * - every item returned by cl_batch_next() (accepted batch or not, from any
 *   start position) lies inside the input, within CL_CORE_MAX_MESSAGE, and
 *   the position only moves forward to the end of that item;
 * - every accepted batch re-encodes with cl_batch_begin()/cl_batch_add() to
 *   the identical bytes, and the encoder refuses a buffer one byte short
 *   without writing past it or changing *out_len;
 * - items taken from the input (builder mode) encode to a batch that
 *   validates and iterates back to the same items; the encoder refuses more
 *   than CL_CORE_MAX_BATCH items and messages over CL_CORE_MAX_MESSAGE.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* An item returned for input [data, data+size) must lie inside it. */
static void check_item(const uint8_t *data, size_t size, size_t before, size_t after,
                       const cl_batch_item_t *it)
{
    CHECK(it->len <= CL_CORE_MAX_MESSAGE);
    CHECK(it->msg >= data + CL_BATCH_HDR_LEN && it->msg <= data + size);
    CHECK(it->len <= (size_t)(data + size - it->msg));
    CHECK(it->msg == data + before + CL_BATCH_ITEM_HDR_LEN);
    CHECK(after == before + CL_BATCH_ITEM_HDR_LEN + it->len && after <= size);
}

/* Iterates from *pos (0 = start) until it stops; returns the status that stopped it. */
static cl_status_t iterate(const uint8_t *data, size_t size, size_t start, size_t *n_items,
                           cl_batch_item_t *items, size_t max_items)
{
    size_t pos = start, n = 0;
    cl_batch_item_t it;
    cl_status_t st;
    for (;;) {
        size_t before = pos == 0 ? CL_BATCH_HDR_LEN : pos;
        memset(&it, 0, sizeof it);
        st = cl_batch_next(data, size, &pos, &it);
        if (st != CL_OK)
            break;
        check_item(data, size, before, pos, &it);
        if (items != NULL && n < max_items)
            items[n] = it;
        n++;
        /* every item takes at least a header: at most size / 16 of them */
        CHECK(n <= size / CL_BATCH_ITEM_HDR_LEN);
    }
    *n_items = n;
    return st;
}

static void check_parse(const uint8_t *data, size_t size)
{
    static cl_batch_item_t items[CL_CORE_MAX_BATCH];
    size_t count = 0, n = 0;
    cl_status_t v = cl_batch_validate(data, size, &count);
    cl_status_t it = iterate(data, size, 0, &n, items, CL_CORE_MAX_BATCH);

    CHECK(it == CL_ERR_NOT_FOUND || it == CL_ERR_BAD_INPUT);
    if (v == CL_OK) {
        CHECK(count <= CL_CORE_MAX_BATCH && count == le32(data + 4));
        CHECK(it == CL_ERR_NOT_FOUND && n == count);
    } else {
        CHECK(v == CL_ERR_BAD_INPUT);
        /* a clean iteration matching the header and the limits is a valid batch */
        CHECK(!(it == CL_ERR_NOT_FOUND && size <= CL_CORE_MAX_BATCH_BYTES &&
                n <= CL_CORE_MAX_BATCH && size >= CL_BATCH_HDR_LEN && le32(data + 4) == n));
        return;
    }

    /* re-encode the accepted batch: identical bytes */
    uint8_t *out = malloc(size + 1);
    size_t len = 0;
    CHECK(out != NULL);
    CHECK(cl_batch_begin(out, size, &len) == CL_OK && len == CL_BATCH_HDR_LEN);
    for (size_t i = 0; i < count; i++) {
        cl_batch_item_t r = items[i];
        CHECK(cl_batch_add(out, size, &len, &r) == CL_OK);
    }
    CHECK(len == size && memcmp(out, data, size) == 0);

    /* one byte short: the last add fails cleanly (nothing written past out_size) */
    if (count > 0) {
        size_t short_size = size - 1;
        memset(out, 0xee, size + 1);
        CHECK(cl_batch_begin(out, short_size, &len) == CL_OK);
        for (size_t i = 0; i + 1 < count; i++)
            CHECK(cl_batch_add(out, short_size, &len, &items[i]) == CL_OK);
        size_t before = len;
        CHECK(cl_batch_add(out, short_size, &len, &items[count - 1]) == CL_ERR_BUFFER_TOO_SMALL);
        CHECK(len == before && le32(out + 4) == count - 1);
        for (size_t k = before; k < size + 1; k++)
            CHECK(out[k] == 0xee);
    }
    free(out);
}

/* cl_batch_next from an arbitrary position never strays outside the input. */
static void check_positions(const uint8_t *data, size_t size)
{
    size_t n;
    if (size < 2)
        return;
    size_t start = ((size_t)data[size - 1] << 8 | data[size - 2]) % (size + 2);
    cl_status_t st = iterate(data, size, start, &n, NULL, 0);
    CHECK(st == CL_ERR_NOT_FOUND || st == CL_ERR_BAD_INPUT);
}

/*
 * Builder mode: the input as items. Byte 0: the number of items (any value,
 * the encoder must stop at CL_CORE_MAX_BATCH); then per item a 12-byte header
 * (peer, transport, flags) and a 2-byte length (big-endian, may exceed
 * CL_CORE_MAX_MESSAGE and is clipped to what is left).
 */
static void check_build(const uint8_t *data, size_t size)
{
    static uint8_t out[CL_CORE_MAX_BATCH_BYTES];
    static cl_batch_item_t items[CL_CORE_MAX_BATCH];
    static const uint8_t big[CL_CORE_MAX_MESSAGE + 1];
    size_t len = 0, pos = 1, n = 0;
    unsigned want;

    if (size < 1)
        return;
    want = data[0];
    CHECK(cl_batch_begin(out, sizeof out, &len) == CL_OK);
    while (n < want && size - pos >= 14) {
        cl_batch_item_t it;
        const uint8_t *h = data + pos;
        uint64_t peer = 0;
        for (int k = 7; k >= 0; k--)
            peer = peer << 8 | h[k];
        it.peer = peer;
        it.transport = (uint16_t)(h[8] | h[9] << 8);
        it.flags = (uint16_t)(h[10] | h[11] << 8);
        size_t l = (size_t)h[12] << 8 | h[13];
        pos += 14;
        bool too_big = l > CL_CORE_MAX_MESSAGE;
        if (too_big) {
            it.msg = big;
            it.len = l;
        } else {
            if (l > size - pos)
                l = size - pos;
            it.msg = data + pos;
            it.len = l;
            pos += l;
        }
        size_t before = len;
        cl_status_t st = cl_batch_add(out, sizeof out, &len, &it);
        if (too_big || n >= CL_CORE_MAX_BATCH) {
            CHECK(st == CL_ERR_LIMIT && len == before);
            if (n >= CL_CORE_MAX_BATCH)
                break;
            continue;
        }
        CHECK(st == CL_OK);
        items[n++] = it;
    }
    size_t count = 0;
    CHECK(cl_batch_validate(out, len, &count) == CL_OK && count == n);
    size_t p = 0;
    cl_batch_item_t it;
    for (size_t i = 0; i < n; i++) {
        CHECK(cl_batch_next(out, len, &p, &it) == CL_OK);
        CHECK(it.peer == items[i].peer && it.transport == items[i].transport &&
              it.flags == items[i].flags && it.len == items[i].len);
        CHECK(it.len == 0 || memcmp(it.msg, items[i].msg, it.len) == 0);
    }
    CHECK(cl_batch_next(out, len, &p, &it) == CL_ERR_NOT_FOUND);
    /* invalid arguments */
    CHECK(cl_batch_validate(NULL, len, &count) == CL_ERR_INVALID_ARG);
    CHECK(cl_batch_next(out, len, NULL, &it) == CL_ERR_INVALID_ARG);
    cl_batch_item_t bad = {.peer = 1, .msg = NULL, .len = 1};
    CHECK(cl_batch_add(out, sizeof out, &len, &bad) == CL_ERR_INVALID_ARG);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse(data, size);
    check_positions(data, size);
    check_build(data, size);
    return 0;
}
