/*
 * batch.c - the byte format of a batch of transport messages crossing the
 * trust boundary (cloister/core.h): what the host hands to the core's
 * handle() ecall and what the core hands back.
 *
 *   batch := "CLB1" u32 count item*        item := u64 peer u16 transport
 *                                                  u16 flags u32 len bytes
 *
 * Both sides use the same code: the core validates the whole input batch
 * once (after copying it in) before iterating; the host validates the
 * core's output the same way. All integers little-endian.
 */
#include <string.h>

#include "cloister/bytes.h"
#include "cloister/core.h"

cl_status_t cl_batch_begin(uint8_t *out, size_t out_size, size_t *out_len)
{
    if (out == NULL || out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (out_size < CL_BATCH_HDR_LEN)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    memcpy(out, CL_BATCH_MAGIC, 4);
    cl_put_le32(out + 4, 0);
    *out_len = CL_BATCH_HDR_LEN;
    return CL_OK;
}

cl_status_t cl_batch_add(uint8_t *out, size_t out_size, size_t *out_len,
                         const cl_batch_item_t *item)
{
    if (out == NULL || out_len == NULL || item == NULL || (item->msg == NULL && item->len != 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (*out_len < CL_BATCH_HDR_LEN || *out_len > out_size || memcmp(out, CL_BATCH_MAGIC, 4) != 0)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    uint32_t count = cl_get_le32(out + 4);
    if (count >= CL_CORE_MAX_BATCH || item->len > CL_CORE_MAX_MESSAGE)
        return CL_FAIL(CL_ERR_LIMIT);
    if (out_size - *out_len < CL_BATCH_ITEM_HDR_LEN + item->len)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    uint8_t *p = out + *out_len;
    cl_put_le64(p, item->peer);
    cl_put_le16(p + 8, item->transport);
    cl_put_le16(p + 10, item->flags);
    cl_put_le32(p + 12, (uint32_t)item->len);
    if (item->len != 0)
        memcpy(p + CL_BATCH_ITEM_HDR_LEN, item->msg, item->len);
    *out_len += CL_BATCH_ITEM_HDR_LEN + item->len;
    cl_put_le32(out + 4, count + 1);
    return CL_OK;
}

/* Reads the item at *pos (bounds checked); advances *pos. */
static cl_status_t read_item(const uint8_t *b, size_t len, size_t *pos, cl_batch_item_t *it)
{
    if (len - *pos < CL_BATCH_ITEM_HDR_LEN)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    const uint8_t *p = b + *pos;
    uint32_t n = cl_get_le32(p + 12);
    if (n > CL_CORE_MAX_MESSAGE || len - *pos - CL_BATCH_ITEM_HDR_LEN < n)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    it->peer = cl_get_le64(p);
    it->transport = cl_get_le16(p + 8);
    it->flags = cl_get_le16(p + 10);
    it->len = n;
    it->msg = p + CL_BATCH_ITEM_HDR_LEN;
    *pos += CL_BATCH_ITEM_HDR_LEN + n;
    return CL_OK;
}

cl_status_t cl_batch_validate(const uint8_t *batch, size_t len, size_t *count)
{
    if (batch == NULL || count == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (len < CL_BATCH_HDR_LEN || len > CL_CORE_MAX_BATCH_BYTES ||
        memcmp(batch, CL_BATCH_MAGIC, 4) != 0)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    uint32_t n = cl_get_le32(batch + 4);
    if (n > CL_CORE_MAX_BATCH)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    size_t pos = CL_BATCH_HDR_LEN;
    cl_batch_item_t it;
    for (uint32_t i = 0; i < n; i++) {
        cl_status_t st = read_item(batch, len, &pos, &it);
        if (st != CL_OK)
            return st;
    }
    if (pos != len) /* trailing bytes: the count and the content disagree */
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *count = n;
    return CL_OK;
}

cl_status_t cl_batch_next(const uint8_t *batch, size_t len, size_t *pos, cl_batch_item_t *item)
{
    if (batch == NULL || pos == NULL || item == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (len < CL_BATCH_HDR_LEN || memcmp(batch, CL_BATCH_MAGIC, 4) != 0)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (*pos == 0)
        *pos = CL_BATCH_HDR_LEN;
    if (*pos > len)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (*pos == len)
        return CL_ERR_NOT_FOUND;
    return read_item(batch, len, pos, item);
}
