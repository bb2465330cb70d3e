/*
 * archive_cases.h - archive_put / archive_scan cases shared by
 * test_archive_sqlite and test_storage_pg (included by both, static).
 * The including file defines the fixture functions:
 *   ac_fx_t *ac_fx(void **state)       the fixture
 *   void ac_reopen(ac_fx_t *fx)        close WITHOUT sync (a crash), open again
 *   cl_status_t ac_sync(ac_fx_t *fx)   the group commit
 */
#ifndef CL_TESTS_ARCHIVE_CASES_H
#define CL_TESTS_ARCHIVE_CASES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct ac_fx {
    const cl_host_ops_t *ops;
    char last_log[1024];
    int log_lines;
    void *priv;
} ac_fx_t;

static ac_fx_t *ac_fx(void **state);
static void ac_reopen(ac_fx_t *fx);
static cl_status_t ac_sync(ac_fx_t *fx);

static void ac_capture_log(void *ctx, int level, const char *line)
{
    ac_fx_t *fx = ctx;
    (void)level;
    snprintf(fx->last_log, sizeof fx->last_log, "%s", line);
    fx->log_lines++;
}

static uint64_t ac_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}
static uint32_t ac_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void ac_fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31u + i * 7u + (i >> 8));
}

static uint64_t ac_put1(ac_fx_t *fx, const uint8_t tag[16], uint64_t bucket, const uint8_t *d,
                        size_t n)
{
    cl_archive_rec_t r = {.bucket = bucket, .data = d, .len = n};
    uint64_t id = 0;
    memcpy(r.tag, tag, 16);
    assert_int_equal(fx->ops->archive_put(fx->ops->ctx, &r, 1, &id), CL_OK);
    assert_true(id > 0);
    return id;
}

/* Scans everything of tag in [from, to] after after_id into out (ids). */
static size_t ac_scan_ids(ac_fx_t *fx, const uint8_t tag[16], uint64_t from, uint64_t to,
                          uint64_t after, uint64_t *ids, size_t max)
{
    static uint8_t buf[CL_CORE_MAX_RECORD * 2 + 64];
    size_t len = 0, n = 0, got = 0;
    for (;;) {
        assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, tag, from, to, after, 7, buf,
                                               sizeof buf, &len, &n),
                         CL_OK);
        if (n == 0)
            break;
        size_t pos = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t l = ac_get32(buf + pos + 16);
            assert_true(got < max);
            ids[got++] = ac_get64(buf + pos);
            after = ac_get64(buf + pos);
            pos += 20 + l;
        }
        assert_int_equal(pos, len);
    }
    return got;
}

static const uint8_t TAG_A[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t TAG_B[16] = {0xAA, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0};

static void ac_roundtrip(void **state)
{
    ac_fx_t *fx = ac_fx(state);
    static uint8_t d[3][CL_CORE_MAX_RECORD];
    const size_t lens[3] = {0, 100, CL_CORE_MAX_RECORD};
    cl_archive_rec_t recs[3];
    uint64_t ids[3] = {0};
    for (int i = 0; i < 3; i++) {
        ac_fill(d[i], lens[i], (unsigned)i + 1);
        memcpy(recs[i].tag, TAG_A, 16);
        recs[i].bucket = 400000u + (uint64_t)i;
        recs[i].data = d[i];
        recs[i].len = lens[i];
    }
    assert_int_equal(fx->ops->archive_put(fx->ops->ctx, recs, 3, ids), CL_OK);
    assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
    assert_int_equal(ac_sync(fx), CL_OK);
    assert_int_equal(ac_sync(fx), CL_OK); /* nothing open: a no-op */

    static uint8_t buf[3 * 20 + 100 + CL_CORE_MAX_RECORD];
    size_t len = 0, n = 0;
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG_A, 0, UINT64_MAX, 0, 100, buf,
                                           sizeof buf, &len, &n),
                     CL_OK);
    assert_int_equal(n, 3);
    assert_int_equal(len, sizeof buf);
    size_t pos = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ac_get64(buf + pos), ids[i]);
        assert_int_equal(ac_get64(buf + pos + 8), 400000u + (uint64_t)i);
        assert_int_equal(ac_get32(buf + pos + 16), lens[i]);
        if (lens[i] != 0)
            assert_memory_equal(buf + pos + 20, d[i], lens[i]);
        pos += 20 + lens[i];
    }
    /* the exact buffer size minus one byte: a partial page of two */
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG_A, 0, UINT64_MAX, 0, 100, buf,
                                           sizeof buf - 1, &len, &n),
                     CL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(len, 40 + 100);
    /* not even the big one fits: BUFFER_TOO_SMALL with the size needed */
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG_A, 0, UINT64_MAX, ids[1], 100, buf,
                                           1000, &len, &n),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, 20 + CL_CORE_MAX_RECORD);
    /* max_records 0 and an empty range */
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG_A, 0, UINT64_MAX, 0, 0, buf,
                                           sizeof buf, &len, &n),
                     CL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG_A, 5, 4, 0, 10, buf, sizeof buf,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(n, 0);
    /* a bucket the backends cannot order (> INT64_MAX) is refused */
    cl_archive_rec_t big = recs[1];
    big.bucket = UINT64_MAX;
    assert_int_equal(fx->ops->archive_put(fx->ops->ctx, &big, 1, ids), CL_ERR_INVALID_ARG);
    assert_int_equal(fx->ops->archive_put(fx->ops->ctx, recs, 0, ids), CL_OK);
}

static void ac_filters_and_paging(void **state)
{
    ac_fx_t *fx = ac_fx(state);
    uint8_t d[64];
    uint64_t a_ids[20], b_ids[20];
    size_t na = 0, nb = 0;
    for (unsigned i = 0; i < 20; i++) {
        ac_fill(d, sizeof d, i);
        if (i % 3 == 0)
            b_ids[nb++] = ac_put1(fx, TAG_B, i % 5, d, sizeof d);
        else
            a_ids[na++] = ac_put1(fx, TAG_A, i % 5, d, sizeof d);
    }
    assert_int_equal(ac_sync(fx), CL_OK);
    uint64_t got[32];
    /* all of A (pages of 7), in id order */
    assert_int_equal(ac_scan_ids(fx, TAG_A, 0, UINT64_MAX, 0, got, 32), na);
    assert_memory_equal(got, a_ids, na * sizeof *got);
    assert_int_equal(ac_scan_ids(fx, TAG_B, 0, UINT64_MAX, 0, got, 32), nb);
    assert_memory_equal(got, b_ids, nb * sizeof *got);
    /* bucket range [2, 3] of A */
    size_t k = ac_scan_ids(fx, TAG_A, 2, 3, 0, got, 32);
    size_t want = 0;
    for (unsigned i = 0; i < 20; i++)
        if (i % 3 != 0 && (i % 5 == 2 || i % 5 == 3))
            want++;
    assert_int_equal(k, want);
    /* after_id */
    k = ac_scan_ids(fx, TAG_A, 0, UINT64_MAX, a_ids[5], got, 32);
    assert_int_equal(k, na - 6);
    assert_int_equal(got[0], a_ids[6]);
    /* an unknown tag */
    uint8_t tag_c[16] = {0};
    assert_int_equal(ac_scan_ids(fx, tag_c, 0, UINT64_MAX, 0, got, 32), 0);
}

static void ac_reopen_and_crash(void **state)
{
    ac_fx_t *fx = ac_fx(state);
    uint8_t d[200];
    ac_fill(d, sizeof d, 9);
    uint64_t id1 = ac_put1(fx, TAG_A, 7, d, sizeof d);
    uint64_t id2 = ac_put1(fx, TAG_A, 7, d, 50);
    assert_int_equal(ac_sync(fx), CL_OK);
    /* a batch put but never synced: visible inside its own batch ... */
    uint64_t id3 = ac_put1(fx, TAG_A, 7, d, 10);
    uint64_t got[8];
    assert_int_equal(ac_scan_ids(fx, TAG_A, 0, UINT64_MAX, 0, got, 8), 3);
    /* ... and gone after a crash (close without sync, reopen) */
    ac_reopen(fx);
    assert_int_equal(ac_scan_ids(fx, TAG_A, 0, UINT64_MAX, 0, got, 8), 2);
    assert_int_equal(got[0], id1);
    assert_int_equal(got[1], id2);
    static uint8_t buf[1024];
    size_t len = 0, n = 0;
    assert_int_equal(fx->ops->archive_scan(fx->ops->ctx, TAG_A, 7, 7, 0, 10, buf, sizeof buf,
                                           &len, &n),
                     CL_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(buf + 20, d, sizeof d);
    /* ids keep increasing after the reopen */
    uint64_t id4 = ac_put1(fx, TAG_A, 7, d, 1);
    assert_true(id4 > id2);
    (void)id3;
    assert_int_equal(ac_sync(fx), CL_OK);
    ac_reopen(fx);
    assert_int_equal(ac_scan_ids(fx, TAG_A, 0, UINT64_MAX, 0, got, 8), 3);
}

#define AC_CASES(setup, teardown)                                                                  \
    cmocka_unit_test_setup_teardown(ac_roundtrip, setup, teardown),                                \
        cmocka_unit_test_setup_teardown(ac_filters_and_paging, setup, teardown),                   \
        cmocka_unit_test_setup_teardown(ac_reopen_and_crash, setup, teardown)

#endif
