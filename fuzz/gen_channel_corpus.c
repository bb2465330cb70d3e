/*
 * gen_channel_corpus.c - writes the seeds of fuzz/corpus/fuzz_channel/ with
 * the channel's own encoder (tee/process/channel.c). Input layout: see
 * fuzz_channel.c. Rebuild with
 *
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Itee/process \
 *      fuzz/gen_channel_corpus.c tee/process/channel.c -o /tmp/gen_channel_corpus
 *   /tmp/gen_channel_corpus fuzz/corpus/fuzz_channel
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"

static uint8_t buf[65536];
static size_t blen;
static cl_chan_t ch;

static void raw(const void *p, size_t n)
{
    if (blen + n > sizeof(buf))
        abort();
    memcpy(buf + blen, p, n);
    blen += n;
}

/* Header: chunk sizes, flags, out_size, max_records, n_ids. */
static void start(const uint8_t *chunks, size_t k, uint8_t flags, uint16_t out_size,
                  uint8_t max_records, uint8_t n_ids)
{
    uint8_t h[6] = {(uint8_t)k,  flags, (uint8_t)out_size, (uint8_t)(out_size >> 8),
                    max_records, n_ids};
    blen = 0;
    raw(h, 1);
    raw(chunks, k);
    raw(h + 1, 5);
}

/* Appends the frame built in ch (its length header filled in as cl_chan_send does). */
static void frame(void)
{
    size_t flen = ch.wlen - CL_CHAN_HDR_LEN;
    for (int i = 0; i < 4; i++)
        ch.wbuf[i] = (uint8_t)(flen >> (8 * i));
    raw(ch.wbuf, ch.wlen);
}

static void save(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, blen, f) != blen || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void le32(uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    raw(b, 4);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    const uint8_t tag[16] = "0123456789abcdef";
    const uint8_t chunks[] = {1, 3, 0, 7, 2};
    cl_chan_init(&ch, -1, 0);

    /* host -> core: open, handle (in small chunks), tick, attest, close */
    start(chunks, sizeof(chunks), 0, 0, 0, 0);
    cl_chan_begin(&ch, CL_FRAME_ECALL_OPEN);
    cl_chan_put_u32(&ch, CL_CORE_API_VERSION);
    cl_chan_put_u32(&ch, 1);
    cl_chan_put_u32(&ch, 64);
    cl_chan_put_u32(&ch, 16);
    cl_chan_put_u32(&ch, 3600);
    cl_chan_put_u16(&ch, 1);
    cl_chan_put_u16(&ch, 0);
    cl_chan_put_u16(&ch, CL_OPS_BITS_ALL);
    frame();
    cl_chan_begin(&ch, CL_FRAME_ECALL_HANDLE);
    cl_chan_put_u64(&ch, 1);
    cl_chan_put_u32(&ch, 4096);
    cl_chan_put_bytes(&ch, (const uint8_t *)"hello", 5);
    frame();
    cl_chan_begin(&ch, CL_FRAME_ECALL_TICK);
    cl_chan_put_u64(&ch, 1);
    cl_chan_put_u64(&ch, 1700000000000ull);
    frame();
    cl_chan_begin(&ch, CL_FRAME_ECALL_ATTEST);
    cl_chan_put_u64(&ch, 1);
    cl_chan_put_u32(&ch, 8192);
    cl_chan_put_bytes(&ch, tag, 16);
    frame();
    cl_chan_begin(&ch, CL_FRAME_ECALL_CLOSE);
    cl_chan_put_u64(&ch, 1);
    frame();
    save(dir, "ecalls");

    /* ECALL_OPEN with an unknown host_ops_mask bit, then a tick with a trailing byte */
    start(NULL, 0, 0, 0, 0, 0);
    cl_chan_begin(&ch, CL_FRAME_ECALL_OPEN);
    for (int i = 0; i < 5; i++)
        cl_chan_put_u32(&ch, 1);
    cl_chan_put_u16(&ch, 0);
    cl_chan_put_u16(&ch, 0);
    cl_chan_put_u16(&ch, 0x8000);
    frame();
    cl_chan_begin(&ch, CL_FRAME_ECALL_TICK);
    cl_chan_put_u64(&ch, 1);
    cl_chan_put_u64(&ch, 5);
    cl_chan_put_raw(&ch, (const uint8_t *)"x", 1);
    frame();
    save(dir, "ecall_bad_mask_trailing");

    /* core -> host: an ECALL_RESULT with data for a caller with a 16-byte buffer */
    start(NULL, 0, 1, 16, 0, 0);
    cl_chan_begin(&ch, CL_FRAME_ECALL_RESULT);
    cl_chan_put_u32(&ch, 0);
    cl_chan_put_u64(&ch, 42);
    cl_chan_put_bytes(&ch, (const uint8_t *)"abc", 3);
    frame();
    save(dir, "ecall_result_ok");

    /* ... 20 bytes for 16, and an error status carrying data */
    start(NULL, 0, 1, 16, 0, 0);
    cl_chan_begin(&ch, CL_FRAME_ECALL_RESULT);
    cl_chan_put_u32(&ch, 0);
    cl_chan_put_u64(&ch, 0);
    cl_chan_put_bytes(&ch, (const uint8_t *)"01234567890123456789", 20);
    frame();
    cl_chan_begin(&ch, CL_FRAME_ECALL_RESULT);
    cl_chan_put_u32(&ch, (uint32_t)(int32_t)CL_ERR_AUTH);
    cl_chan_put_u64(&ch, 0);
    cl_chan_put_bytes(&ch, (const uint8_t *)"ab", 2);
    frame();
    save(dir, "ecall_result_bad");

    /* every ocall but archive_put, in chunks of 2 */
    const uint8_t two[] = {2};
    start(two, 1, 0, 0, 0, 0);
    cl_chan_begin(&ch, CL_FRAME_OCALL_LOG_LINE);
    cl_chan_put_u32(&ch, (uint32_t)CL_LOG_INFO);
    cl_chan_put_bytes(&ch, (const uint8_t *)"core: up\x1b", 9);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_LOG_APPEND);
    cl_chan_put_u64(&ch, 9);
    cl_chan_put_bytes(&ch, tag, 16);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_LOG_READ);
    cl_chan_put_u64(&ch, 9);
    cl_chan_put_u32(&ch, 4096);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_LOG_COMPACT);
    cl_chan_put_u64(&ch, 8);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_SNAPSHOT_PUT);
    cl_chan_put_bytes(&ch, tag, 16);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_SNAPSHOT_GET);
    cl_chan_put_u32(&ch, 65536);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_ARCHIVE_SCAN);
    cl_chan_put_raw(&ch, tag, 16);
    cl_chan_put_u64(&ch, 0);
    cl_chan_put_u64(&ch, 100);
    cl_chan_put_u64(&ch, 0);
    cl_chan_put_u64(&ch, 10);
    cl_chan_put_u32(&ch, 4096);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_SEND);
    cl_chan_put_u64(&ch, 77);
    cl_chan_put_u16(&ch, 1);
    cl_chan_put_bytes(&ch, (const uint8_t *)"ping", 4);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_TIME_NOW);
    frame();
    save(dir, "ocalls");

    /* archive_put: two records; then one whose count cannot fit the frame */
    start(NULL, 0, 0, 0, 0, 0);
    cl_chan_begin(&ch, CL_FRAME_OCALL_ARCHIVE_PUT);
    cl_chan_put_u32(&ch, 2);
    cl_chan_put_raw(&ch, tag, 16);
    cl_chan_put_u64(&ch, 3);
    cl_chan_put_bytes(&ch, (const uint8_t *)"rec1", 4);
    cl_chan_put_raw(&ch, tag, 16);
    cl_chan_put_u64(&ch, 4);
    cl_chan_put_bytes(&ch, NULL, 0);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_ARCHIVE_PUT);
    cl_chan_put_u32(&ch, 0x7fffffffu);
    cl_chan_put_raw(&ch, tag, 16);
    frame();
    save(dir, "archive_put");

    /* host -> core: OCALL_RESULT "st, u64, bytes" (log_read / archive_scan) */
    start(NULL, 0, 0, 16, 8, 0);
    cl_chan_begin(&ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&ch, 0);
    cl_chan_put_u64(&ch, 5);
    cl_chan_put_bytes(&ch, (const uint8_t *)"xy", 2);
    frame();
    save(dir, "ocall_result_u64_bytes");

    /* OCALL_RESULT of archive_put: two ids; then an error status with no ids */
    start(NULL, 0, 0, 0, 0, 2);
    cl_chan_begin(&ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&ch, 0);
    cl_chan_put_u32(&ch, 2);
    cl_chan_put_u64(&ch, 100);
    cl_chan_put_u64(&ch, 101);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&ch, (uint32_t)(int32_t)CL_ERR_NOT_FOUND);
    cl_chan_put_u32(&ch, 0);
    frame();
    save(dir, "ocall_result_archive_put");

    /* OCALL_RESULT: a status outside cl_status_t, then st + i64 (time_now) */
    start(NULL, 0, 2, 0, 0, 0);
    cl_chan_begin(&ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&ch, 7);
    frame();
    cl_chan_begin(&ch, CL_FRAME_OCALL_RESULT);
    cl_chan_put_u32(&ch, 0);
    cl_chan_put_u64(&ch, 1700000000000ull);
    frame();
    save(dir, "ocall_result_status");

    /* a zero length: the stream is out of sync */
    start(NULL, 0, 0, 0, 0, 0);
    le32(0);
    raw("\x0f", 1);
    save(dir, "len_zero");

    /* a length above CL_CHAN_MAX_FRAME */
    start(NULL, 0, 0, 0, 0, 0);
    le32((uint32_t)CL_CHAN_MAX_FRAME + 1);
    raw("\x0f", 1);
    save(dir, "len_too_big");

    /* announces 100 bytes, carries 10 */
    start(chunks, 2, 0, 0, 0, 0);
    le32(100);
    raw("\x0f\0\0\0\0\0\0\0\0\0", 10);
    save(dir, "truncated");

    cl_chan_free(&ch);
    return 0;
}
