/*
 * gen_core_corpus.c - writes the seed corpora of fuzz_batch, fuzz_unseal,
 * fuzz_core_state and fuzz_core_requests (fuzz/corpus/fuzz_<name>/).
 *
 * Not built by CMake (and not a harness: no fuzz_ prefix). Build and run by
 * hand from the repository root (add -fsanitize=address,undefined when the
 * build directory is a sanitizer build):
 *
 *   cmake --build build --target cloister_core cloister_tee_sim
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Icore -Icore/pki -Icore/js \
 *      -Icore/engine -Icore/model -Ifuzz fuzz/gen_core_corpus.c build/core/libcloister_core.a \
 *      build/core/model/libcloister_model.a build/core/engine/libcloister_engine.a \
 *      build/core/js/libcloister_js.a build/core/js/libcloister_duktape.a \
 *      build/core/pki/libcloister_pki.a build/tee/sim/libcloister_tee_sim.a \
 *      build/tee/common/libcloister_tee_trusted.a build/lib/libcloister_crypto_openssl.a \
 *      build/lib/libcloister_lib.a -lcrypto -ldl -lm -o /tmp/gen_core_corpus
 *   /tmp/gen_core_corpus fuzz/corpus
 *
 * The seeds follow the input layouts described at the top of each harness:
 * fuzz_batch: valid batches (empty, one item, several, an empty message, a
 * maximal message), invalid ones (trailing byte, count too high, length over
 * the limit, bad magic), and builder-mode inputs. fuzz_unseal: round-trip
 * headers with plaintexts of several sizes, both policies, extra AAD, and
 * real sealed blobs (from this program's own simulated platform, so the
 * harness reaches EGETKEY and the GCM tag check). fuzz_core_state: a full
 * record history (KEYS, OWNER, PROVISION, TOKEN, ENROLL, REVOKE), its
 * snapshot, the snapshot of an empty state, and refused records (KEYS twice,
 * out of order, trailing bytes, a field of the wrong size). fuzz_core_requests:
 * GET /attestation (Block2 too), POST /pki/owner and /pki/provision with
 * garbage, POST /.well-known/edhoc with `true` + message_1 (method 0 and 3,
 * suite 2) to the provisioned core, an OSCORE request without a context,
 * unprotected protected resources, a ping, an ACK, and a mixed batch.
 * Existing files are overwritten, others (crash-* inputs) left alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/core.h"
#include "cloister/crypto_openssl.h"
#include "core_internal.h"
#include "sim_fuzz_common.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "gen: check failed line %d: %s\n", __LINE__, #x);                    \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

static char g_root[3000], g_dir[3400];

static void set_dir(const char *name)
{
    snprintf(g_dir, sizeof g_dir, "%s/%s", g_root, name);
    (void)mkdir(g_dir, 0755);
}

static void put(const char *name, const uint8_t *p, size_t n)
{
    char path[4000];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "gen: cannot write %s\n", path);
        exit(1);
    }
}

typedef struct buf {
    uint8_t b[8192];
    size_t n;
} buf_t;

static void app(buf_t *b, const void *p, size_t n)
{
    CHECK(b->n + n <= sizeof b->b);
    if (n == 0)
        return;
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void app8(buf_t *b, uint8_t v)
{
    app(b, &v, 1);
}
static void app16be(buf_t *b, size_t v)
{
    app8(b, (uint8_t)(v >> 8));
    app8(b, (uint8_t)v);
}

/* ---- fuzz_batch ---- */

static void batch_item(uint8_t *out, size_t *len, uint64_t peer, uint16_t tr, uint16_t fl,
                       const void *m, size_t ml)
{
    cl_batch_item_t it = {.peer = peer, .transport = tr, .flags = fl, .msg = m, .len = ml};
    CHECK(cl_batch_add(out, CL_CORE_MAX_BATCH_BYTES, len, &it) == CL_OK);
}

static void gen_batch(void)
{
    static uint8_t out[CL_CORE_MAX_BATCH_BYTES], big[CL_CORE_MAX_MESSAGE];
    size_t len;
    set_dir("fuzz_batch");
    CHECK(cl_batch_begin(out, sizeof out, &len) == CL_OK);
    put("empty", out, len);
    batch_item(out, &len, 1, CL_TRANSPORT_COAP, 0, "\x40\x01\x12\x34", 4);
    put("one_ping", out, len);
    batch_item(out, &len, UINT64_MAX, CL_TRANSPORT_HTTP, 0xffff, NULL, 0);
    batch_item(out, &len, 7, CL_TRANSPORT_LOCAL, 1, "hello", 5);
    put("three", out, len);
    out[len] = 0;
    put("trailing_byte", out, len + 1);
    out[4] = 4;
    put("count_too_high", out, len);
    out[4] = 3;
    out[0] = 'X';
    put("bad_magic", out, len);
    memset(big, 0x42, sizeof big);
    CHECK(cl_batch_begin(out, sizeof out, &len) == CL_OK);
    batch_item(out, &len, 2, CL_TRANSPORT_COAP, 0, big, 64);
    put("one_64", out, len);
    out[CL_BATCH_HDR_LEN + 12] = (uint8_t)((CL_CORE_MAX_MESSAGE + 1) & 0xff);
    out[CL_BATCH_HDR_LEN + 13] = (uint8_t)((CL_CORE_MAX_MESSAGE + 1) >> 8);
    put("len_over_limit", out, len);
    /* builder mode: 3 items (12-byte header + 2-byte length), one over the limit */
    buf_t b = {.n = 0};
    app8(&b, 3);
    app(&b, "\x01\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00", 12);
    app16be(&b, 3);
    app(&b, "abc", 3);
    app(&b, "\x02\x00\x00\x00\x00\x00\x00\x00\x02\x00\x05\x00", 12);
    app16be(&b, CL_CORE_MAX_MESSAGE + 1);
    app(&b, "\x03\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00", 12);
    app16be(&b, 0);
    put("builder_three", b.b, b.n);
}

/* ---- fuzz_unseal ---- */

/* flags, flip bit (2), extra AAD length, purpose (2), epoch (8), counter (8) */
static void unseal_hdr(buf_t *b, uint8_t flags, uint16_t flip, uint8_t extra, uint16_t purpose,
                       uint64_t epoch, uint64_t counter)
{
    b->n = 0;
    app8(b, flags);
    app16be(b, flip);
    app8(b, extra);
    app8(b, (uint8_t)purpose);
    app8(b, (uint8_t)(purpose >> 8));
    for (int k = 7; k >= 0; k--)
        app8(b, (uint8_t)(epoch >> (8 * k)));
    for (int k = 7; k >= 0; k--)
        app8(b, (uint8_t)(counter >> (8 * k)));
}

static void gen_unseal(void)
{
    const cl_tee_platform_t *p = sf_platform();
    static uint8_t blob[4096];
    size_t blen;
    buf_t b;
    set_dir("fuzz_unseal");
    unseal_hdr(&b, 0, 0, 0, CL_SEAL_PURPOSE_LOG, 1, 1);
    put("rt_empty", b.b, b.n);
    app(&b, "hello, sealed world", 19);
    put("rt_hello", b.b, b.n);
    unseal_hdr(&b, 1, 4500, 8, CL_SEAL_PURPOSE_SNAPSHOT, 7, 1000);
    app(&b, "chainhash-and-a-longer-plaintext-with-some-bytes", 48);
    put("rt_mrsigner_extra8", b.b, b.n);
    unseal_hdr(&b, 6, 4100, 64, 99, UINT64_MAX, 0);
    for (int i = 0; i < 200; i++)
        app8(&b, (uint8_t)i);
    put("rt_extra64_big_flip_tag", b.b, b.n);
    /* real blobs: the raw path reaches EGETKEY and the tag (another platform: CL_ERR_AUTH) */
    cl_seal_envelope_t env = {.purpose = CL_SEAL_PURPOSE_LOG, .epoch = 3, .counter = 9};
    memcpy(env.extra, "0123456789abcdef0123456789abcdef", 32);
    env.extra_len = 32;
    CHECK(cl_seal(p, CL_SGX_KEYPOLICY_MRENCLAVE, &env, (const uint8_t *)"record", 6, blob,
                  sizeof blob, &blen) == CL_OK);
    unseal_hdr(&b, 0, 0, 0, 0, 0, 0);
    app(&b, blob, blen);
    put("raw_blob_mrenclave", b.b, b.n);
    env.extra_len = 0;
    CHECK(cl_seal(p, CL_SGX_KEYPOLICY_MRSIGNER, &env, NULL, 0, blob, sizeof blob, &blen) == CL_OK);
    unseal_hdr(&b, 2, 1, 0, 0, 0, 0);
    app(&b, blob, blen);
    put("raw_blob_empty_short_pt", b.b, b.n);
}

/* ---- fuzz_core_state ---- */

static void rec_begin(cl_cbor_enc_t *e, uint8_t *out, size_t size, size_t n, uint64_t op,
                      int64_t t)
{
    cl_cbor_enc_init(e, out, size);
    (void)cl_cbor_enc_array(e, n);
    (void)cl_cbor_enc_uint(e, op);
    (void)cl_cbor_enc_int(e, t);
}

/* The permission list ["*"] as TOKEN and ENROLL records carry it (a bstr holding CBOR). */
static const uint8_t ANY_PERMS[] = {0x81, 0x61, '*'};

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
}

/* The record history of a core: keys, owner, provision, two tokens, an enrollment, a revocation. */
static size_t make_records(uint8_t recs[][600], size_t *lens)
{
    uint8_t k[65], cert[120];
    cl_cbor_enc_t e;
    size_t n = 0;
    const int64_t t0 = INT64_C(1700000000000);

    rec_begin(&e, recs[n], 600, 8, CL_REC_KEYS, t0);
    fill(k, 32, 1), (void)cl_cbor_enc_bstr(&e, k, 32);
    fill(k, 65, 2), (void)cl_cbor_enc_bstr(&e, k, 65);
    fill(k, 32, 3), (void)cl_cbor_enc_bstr(&e, k, 32);
    fill(k, 65, 4), (void)cl_cbor_enc_bstr(&e, k, 65);
    fill(k, 16, 5), (void)cl_cbor_enc_bstr(&e, k, 16);
    fill(k, 32, 6), (void)cl_cbor_enc_bstr(&e, k, 32);
    CHECK(cl_cbor_enc_finish(&e, &lens[n++]) == CL_OK);

    rec_begin(&e, recs[n], 600, 5, CL_REC_OWNER, t0 + 1000);
    fill(cert, sizeof cert, 0x30), (void)cl_cbor_enc_bstr(&e, cert, sizeof cert);
    fill(k, 32, 7), (void)cl_cbor_enc_bstr(&e, k, 32);
    fill(k, 8, 8), (void)cl_cbor_enc_bstr(&e, k, 8);
    CHECK(cl_cbor_enc_finish(&e, &lens[n++]) == CL_OK);

    rec_begin(&e, recs[n], 600, 4, CL_REC_PROVISION, t0 + 2000);
    fill(cert, 100, 0x40), (void)cl_cbor_enc_bstr(&e, cert, 100);
    fill(cert, 90, 0x50), (void)cl_cbor_enc_bstr(&e, cert, 90);
    CHECK(cl_cbor_enc_finish(&e, &lens[n++]) == CL_OK);

    for (uint32_t i = 1; i <= 2; i++) {
        rec_begin(&e, recs[n], 600, 8, CL_REC_TOKEN, t0 + 3000 + i);
        (void)cl_cbor_enc_uint(&e, i);
        fill(k, 32, (uint8_t)(0x60 + i)), (void)cl_cbor_enc_bstr(&e, k, 32);
        (void)cl_cbor_enc_uint(&e, i == 1 ? CL_ROLE_DEVICE : CL_ROLE_ADMIN);
        (void)cl_cbor_enc_int(&e, t0 + 86400000);
        (void)cl_cbor_enc_tstr_z(&e, i == 1 ? "thermostat" : "alice");
        (void)cl_cbor_enc_bstr(&e, ANY_PERMS, sizeof ANY_PERMS);
        CHECK(cl_cbor_enc_finish(&e, &lens[n++]) == CL_OK);
    }

    rec_begin(&e, recs[n], 600, 11, CL_REC_ENROLL, t0 + 4000);
    (void)cl_cbor_enc_uint(&e, 1); /* token */
    (void)cl_cbor_enc_uint(&e, 1); /* client */
    (void)cl_cbor_enc_uint(&e, CL_ROLE_DEVICE);
    (void)cl_cbor_enc_tstr_z(&e, "thermostat");
    fill(cert, 80, 0x70), (void)cl_cbor_enc_bstr(&e, cert, 80);
    fill(k, 32, 9), (void)cl_cbor_enc_bstr(&e, k, 32);
    fill(k, 8, 10), (void)cl_cbor_enc_bstr(&e, k, 8);
    (void)cl_cbor_enc_uint(&e, 4);
    (void)cl_cbor_enc_bstr(&e, ANY_PERMS, sizeof ANY_PERMS);
    CHECK(cl_cbor_enc_finish(&e, &lens[n++]) == CL_OK);

    rec_begin(&e, recs[n], 600, 3, CL_REC_REVOKE, t0 + 5000);
    (void)cl_cbor_enc_uint(&e, 1);
    CHECK(cl_cbor_enc_finish(&e, &lens[n++]) == CL_OK);
    return n;
}

static void chunk(buf_t *b, const uint8_t *p, size_t n)
{
    app16be(b, n);
    app(b, p, n);
}

static void gen_state(void)
{
    uint8_t recs[8][600];
    size_t lens[8], n = make_records(recs, lens);
    cl_state_t s;
    uint8_t *snap;
    size_t snap_len;
    buf_t b;
    set_dir("fuzz_core_state");

    /* a refused restore, then the whole history */
    b.n = 0;
    chunk(&b, (const uint8_t *)"\xa0", 1);
    for (size_t i = 0; i < n; i++)
        chunk(&b, recs[i], lens[i]);
    put("history", b.b, b.n);
    /* the snapshot of that history, restored, then a second token and enrollment */
    memset(&s, 0, sizeof s);
    for (size_t i = 0; i < n; i++)
        CHECK(cl_state_apply(&s, recs[i], lens[i]) == CL_OK);
    CHECK(cl_state_snapshot(&s, &snap, &snap_len) == CL_OK);
    cl_state_free(&s);
    b.n = 0;
    chunk(&b, snap, snap_len);
    chunk(&b, recs[n - 1], lens[n - 1]); /* revoke again */
    chunk(&b, recs[4], lens[4]);         /* token 2 again: refused */
    put("snapshot_then_records", b.b, b.n);
    free(snap);
    /* an empty state's snapshot */
    memset(&s, 0, sizeof s);
    CHECK(cl_state_snapshot(&s, &snap, &snap_len) == CL_OK);
    b.n = 0;
    chunk(&b, snap, snap_len);
    chunk(&b, recs[0], lens[0]);
    chunk(&b, recs[0], lens[0]); /* keys twice: refused */
    put("empty_snapshot_keys_twice", b.b, b.n);
    free(snap);
    /* out of order, trailing byte, a field of the wrong size */
    b.n = 0;
    chunk(&b, NULL, 0);
    chunk(&b, recs[2], lens[2]); /* provision before keys */
    chunk(&b, recs[0], lens[0]);
    chunk(&b, recs[1], lens[1]);
    chunk(&b, recs[2], lens[2]);
    chunk(&b, recs[3], lens[3]);
    uint8_t tmp[601];
    memcpy(tmp, recs[5], lens[5]);
    tmp[lens[5]] = 0x00;
    chunk(&b, tmp, lens[5] + 1); /* enroll + trailing byte */
    put("refused_records", b.b, b.n);
    b.n = 0;
    chunk(&b, NULL, 0);
    memcpy(tmp, recs[0], lens[0]);
    tmp[2 + 9 + 2 + 32 + 2 + 65 + 1] ^= 0x01; /* ca_priv length 32 -> 33 */
    chunk(&b, tmp, lens[0]);
    chunk(&b, recs[0], lens[0]);
    put("keys_bad_field", b.b, b.n);
}


/* The middleware model's records (model_state.c) on top of a provisioned history. */
static void gen_state_model(void)
{
    uint8_t recs[8][600], m[12][600];
    size_t lens[8], ml[12], n = make_records(recs, lens), k = 0;
    cl_cbor_enc_t e;
    const int64_t t = INT64_C(1700000100000);
    uint8_t groups[16];
    size_t gl;
    cl_state_t s;
    uint8_t *snap;
    size_t snap_len;
    buf_t b;
    set_dir("fuzz_core_state");

    /* a second enrolled client (id 2) that stays */
    rec_begin(&e, m[k], 600, 11, CL_REC_ENROLL, t);
    (void)cl_cbor_enc_uint(&e, 2);
    (void)cl_cbor_enc_uint(&e, 2);
    (void)cl_cbor_enc_uint(&e, CL_ROLE_DEVICE);
    (void)cl_cbor_enc_tstr_z(&e, "valve");
    uint8_t cert[80], h[32];
    fill(cert, 80, 0x71), (void)cl_cbor_enc_bstr(&e, cert, 80);
    fill(h, 32, 19), (void)cl_cbor_enc_bstr(&e, h, 32);
    fill(h, 8, 20), (void)cl_cbor_enc_bstr(&e, h, 8);
    (void)cl_cbor_enc_uint(&e, 5);
    (void)cl_cbor_enc_bstr(&e, ANY_PERMS, sizeof ANY_PERMS);
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);
    /* GROUPS [10, t, 2, bstr(["valves"])] */
    cl_cbor_enc_init(&e, groups, sizeof groups);
    (void)cl_cbor_enc_array(&e, 1);
    (void)cl_cbor_enc_tstr_z(&e, "valves");
    CHECK(cl_cbor_enc_finish(&e, &gl) == CL_OK);
    rec_begin(&e, m[k], 600, 4, CL_REC_GROUPS, t + 1);
    (void)cl_cbor_enc_uint(&e, 2);
    (void)cl_cbor_enc_bstr(&e, groups, gl);
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);
    /* EVTYPE with a schema [9, t, name, desc, roles, schema, scenario] */
    rec_begin(&e, m[k], 600, 7, CL_REC_EVTYPE, t + 2);
    (void)cl_cbor_enc_tstr_z(&e, "temp");
    (void)cl_cbor_enc_tstr_z(&e, "room temperature");
    (void)cl_cbor_enc_uint(&e, 0x0c);
    (void)cl_cbor_enc_map(&e, 1);
    (void)cl_cbor_enc_tstr_z(&e, "type");
    (void)cl_cbor_enc_tstr_z(&e, "object");
    (void)cl_cbor_enc_tstr_z(&e, "");
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);
    /* MODEL: an action type, a rule */
    rec_begin(&e, m[k], 600, 6, CL_REC_MODEL, t + 3);
    (void)cl_cbor_enc_uint(&e, CL_MK_ACTTYPE);
    (void)cl_cbor_enc_tstr_z(&e, "valve.set");
    (void)cl_cbor_enc_map(&e, 1);
    (void)cl_cbor_enc_tstr_z(&e, "name");
    (void)cl_cbor_enc_tstr_z(&e, "valve.set");
    (void)cl_cbor_enc_tstr_z(&e, "");
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);
    rec_begin(&e, m[k], 600, 6, CL_REC_MODEL, t + 4);
    (void)cl_cbor_enc_uint(&e, CL_MK_RULE);
    (void)cl_cbor_enc_tstr_z(&e, "hot");
    (void)cl_cbor_enc_map(&e, 2);
    (void)cl_cbor_enc_tstr_z(&e, "name");
    (void)cl_cbor_enc_tstr_z(&e, "hot");
    (void)cl_cbor_enc_tstr_z(&e, "enabled");
    (void)cl_cbor_enc_bool(&e, false);
    (void)cl_cbor_enc_tstr_z(&e, "");
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);
    /* RULE_FLAGS [12, t, name, enabled] */
    rec_begin(&e, m[k], 600, 4, CL_REC_RULE_FLAGS, t + 5);
    (void)cl_cbor_enc_tstr_z(&e, "hot");
    (void)cl_cbor_enc_bool(&e, true);
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);
    /* EFFECTS [13, t, [[rule, state]], [[rule, reason]], [action]] */
    rec_begin(&e, m[k], 600, 5, CL_REC_EFFECTS, t + 6);
    (void)cl_cbor_enc_array(&e, 1);
    (void)cl_cbor_enc_array(&e, 2);
    (void)cl_cbor_enc_tstr_z(&e, "hot");
    uint8_t st[] = {0xa1, 0x61, 'n', 0x02};
    (void)cl_cbor_enc_bstr(&e, st, sizeof st);
    (void)cl_cbor_enc_array(&e, 1);
    (void)cl_cbor_enc_array(&e, 2);
    (void)cl_cbor_enc_tstr_z(&e, "hot");
    (void)cl_cbor_enc_tstr_z(&e, "time budget of 10 ms exceeded");
    (void)cl_cbor_enc_array(&e, 2);
    for (uint64_t id = 1; id <= 2; id++) {
        (void)cl_cbor_enc_array(&e, 7);
        (void)cl_cbor_enc_uint(&e, id);
        (void)cl_cbor_enc_uint(&e, 2);
        (void)cl_cbor_enc_tstr_z(&e, "valve.set");
        (void)cl_cbor_enc_map(&e, 1);
        (void)cl_cbor_enc_tstr_z(&e, "mode");
        (void)cl_cbor_enc_tstr_z(&e, id == 1 ? "eco" : "comfort");
        (void)cl_cbor_enc_int(&e, t + 6);
        (void)cl_cbor_enc_tstr_z(&e, "hot");
        (void)cl_cbor_enc_int(&e, t + 3600006);
    }
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);
    /* DONE [14, t, target, [ids], reason] */
    rec_begin(&e, m[k], 600, 5, CL_REC_DONE, t + 7);
    (void)cl_cbor_enc_uint(&e, 2);
    (void)cl_cbor_enc_array(&e, 1);
    (void)cl_cbor_enc_uint(&e, 1);
    (void)cl_cbor_enc_uint(&e, 0);
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);
    /* SCENARIO [15, t, name, doc, [[kind, name, doc]...]]: an event type and a rule */
    rec_begin(&e, m[k], 600, 5, CL_REC_SCENARIO, t + 8);
    (void)cl_cbor_enc_tstr_z(&e, "home");
    (void)cl_cbor_enc_map(&e, 1);
    (void)cl_cbor_enc_tstr_z(&e, "objects");
    (void)cl_cbor_enc_array(&e, 2);
    (void)cl_cbor_enc_array(&e, 2);
    (void)cl_cbor_enc_uint(&e, 0);
    (void)cl_cbor_enc_tstr_z(&e, "wifi.status");
    (void)cl_cbor_enc_array(&e, 2);
    (void)cl_cbor_enc_uint(&e, CL_MK_RULE);
    (void)cl_cbor_enc_tstr_z(&e, "home.away");
    (void)cl_cbor_enc_array(&e, 2);
    (void)cl_cbor_enc_array(&e, 3);
    (void)cl_cbor_enc_uint(&e, 0);
    (void)cl_cbor_enc_tstr_z(&e, "wifi.status");
    (void)cl_cbor_enc_map(&e, 1);
    (void)cl_cbor_enc_tstr_z(&e, "name");
    (void)cl_cbor_enc_tstr_z(&e, "wifi.status");
    (void)cl_cbor_enc_array(&e, 3);
    (void)cl_cbor_enc_uint(&e, CL_MK_RULE);
    (void)cl_cbor_enc_tstr_z(&e, "home.away");
    (void)cl_cbor_enc_map(&e, 1);
    (void)cl_cbor_enc_tstr_z(&e, "name");
    (void)cl_cbor_enc_tstr_z(&e, "home.away");
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);
    size_t scenario_rec = k - 1;
    /* SCENARIO_DEL [16, t, name, [[kind, name]...]] */
    rec_begin(&e, m[k], 600, 4, CL_REC_SCENARIO_DEL, t + 9);
    (void)cl_cbor_enc_tstr_z(&e, "home");
    (void)cl_cbor_enc_array(&e, 2);
    (void)cl_cbor_enc_array(&e, 2);
    (void)cl_cbor_enc_uint(&e, 0);
    (void)cl_cbor_enc_tstr_z(&e, "wifi.status");
    (void)cl_cbor_enc_array(&e, 2);
    (void)cl_cbor_enc_uint(&e, CL_MK_RULE);
    (void)cl_cbor_enc_tstr_z(&e, "home.away");
    CHECK(cl_cbor_enc_finish(&e, &ml[k++]) == CL_OK);

    /* the history, then every model record (all accepted) */
    memset(&s, 0, sizeof s);
    b.n = 0;
    chunk(&b, (const uint8_t *)"\xa0", 1);
    for (size_t i = 0; i < n - 1; i++) { /* without the revocation */
        chunk(&b, recs[i], lens[i]);
        CHECK(cl_state_apply(&s, recs[i], lens[i]) == CL_OK);
    }
    for (size_t i = 0; i < k; i++) {
        chunk(&b, m[i], ml[i]);
        CHECK(cl_state_apply(&s, m[i], ml[i]) == CL_OK);
    }
    put("model_history", b.b, b.n);
    /* the snapshot after the scenario was installed (before its removal): restored, removed */
    cl_state_free(&s);
    memset(&s, 0, sizeof s);
    for (size_t i = 0; i < n - 1; i++)
        CHECK(cl_state_apply(&s, recs[i], lens[i]) == CL_OK);
    for (size_t i = 0; i <= scenario_rec; i++)
        CHECK(cl_state_apply(&s, m[i], ml[i]) == CL_OK);
    CHECK(cl_state_snapshot(&s, &snap, &snap_len) == CL_OK);
    cl_state_free(&s);
    b.n = 0;
    chunk(&b, snap, snap_len);
    chunk(&b, m[scenario_rec + 1], ml[scenario_rec + 1]);
    chunk(&b, m[scenario_rec], ml[scenario_rec]); /* installed again */
    chunk(&b, m[scenario_rec], ml[scenario_rec]); /* and again: refused */
    put("model_snapshot_then_records", b.b, b.n);
    free(snap);
}

/* ---- fuzz_core_requests ---- */

static size_t coap(uint8_t *out, size_t size, uint8_t type, uint8_t code, uint16_t mid,
                   const char *tok, const char *path, const char *query, int block2,
                   const uint8_t *oscore, size_t oscore_len, const uint8_t *payload, size_t plen)
{
    cl_coap_builder_t b;
    size_t len;
    cl_coap_build_init(&b, out, size, type, code, mid, (const uint8_t *)tok, strlen(tok));
    if (oscore != NULL)
        CHECK(cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, oscore, oscore_len) == CL_OK);
    if (path != NULL) {
        const char *seg = path + 1, *end;
        while ((end = strchr(seg, '/')) != NULL) {
            CHECK(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)seg,
                                       (size_t)(end - seg)) == CL_OK);
            seg = end + 1;
        }
        CHECK(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)seg, strlen(seg)) ==
              CL_OK);
    }
    if (plen > 0 && oscore == NULL)
        CHECK(cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR) == CL_OK);
    if (query != NULL)
        CHECK(cl_coap_build_option(&b, CL_COAP_OPT_URI_QUERY, (const uint8_t *)query,
                                   strlen(query)) == CL_OK);
    if (block2 >= 0)
        CHECK(cl_coap_build_option_uint(&b, CL_COAP_OPT_BLOCK2, (uint32_t)block2) == CL_OK);
    CHECK(cl_coap_build_payload(&b, payload, plen) == CL_OK);
    CHECK(cl_coap_build_finish(&b, &len) == CL_OK);
    return len;
}

/* byte 0 flags, then messages (2-byte length each but the last) */
static void req_input(const char *name, uint8_t flags, uint8_t msgs[][1200], const size_t *lens,
                      size_t n)
{
    buf_t b = {.n = 0};
    CHECK(n >= 1 && n <= 8);
    app8(&b, (uint8_t)(flags | (n - 1)));
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n)
            app16be(&b, lens[i]);
        app(&b, msgs[i], lens[i]);
    }
    put(name, b.b, b.n);
}

static size_t message_1(uint8_t *out, size_t size, int method, const uint8_t gx[32])
{
    cl_cbor_enc_t e;
    size_t len;
    cl_cbor_enc_init(&e, out, size);
    (void)cl_cbor_enc_bool(&e, true); /* CoAP payload: true || message_1 */
    (void)cl_cbor_enc_int(&e, method);
    (void)cl_cbor_enc_int(&e, 2); /* SUITES_I */
    (void)cl_cbor_enc_bstr(&e, gx, 32);
    (void)cl_cbor_enc_int(&e, -24); /* C_I */
    CHECK(cl_cbor_enc_finish(&e, &len) == CL_OK);
    return len;
}

static void gen_requests(void)
{
    static uint8_t m[8][1200];
    size_t l[8];
    uint8_t pl[600], pub[65];
    size_t pn;
    const char *nonce = "nonce=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    set_dir("fuzz_core_requests");
#define CORE1 0x80
#define TICK 0x08

    l[0] = coap(m[0], 1200, CL_COAP_CON, CL_COAP_GET, 1, "t1", "/attestation", nonce, -1, NULL, 0,
                NULL, 0);
    req_input("attestation_fresh", 0, m, l, 1);
    req_input("attestation_provisioned", CORE1, m, l, 1);
    l[1] = coap(m[1], 1200, CL_COAP_CON, CL_COAP_GET, 2, "t2", "/attestation", nonce,
                (1 << 4) | 6, NULL, 0, NULL, 0);
    req_input("attestation_block1", CORE1, m, l, 2);
    l[0] = coap(m[0], 1200, CL_COAP_NON, CL_COAP_GET, 3, "", "/attestation", "nonce=00zz", -1,
                NULL, 0, NULL, 0);
    req_input("attestation_bad_nonce", 0, m, l, 1);

    /* /pki/owner with garbage, and a map with a garbage certificate */
    l[0] = coap(m[0], 1200, CL_COAP_CON, CL_COAP_POST, 4, "o", "/pki/owner", NULL, -1, NULL, 0,
                (const uint8_t *)"\xff\x00garbage", 9);
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, pl, sizeof pl);
    (void)cl_cbor_enc_map(&e, 1);
    (void)cl_cbor_enc_tstr_z(&e, "owner_cert");
    uint8_t der[300];
    fill(der, sizeof der, 0x30);
    der[0] = 0x30;
    der[1] = 0x82;
    der[2] = 0x01;
    der[3] = 0x28;
    (void)cl_cbor_enc_bstr(&e, der, sizeof der);
    CHECK(cl_cbor_enc_finish(&e, &pn) == CL_OK);
    l[1] = coap(m[1], 1200, CL_COAP_CON, CL_COAP_POST, 5, "o2", "/pki/owner", NULL, -1, NULL, 0,
                pl, pn);
    req_input("owner_garbage", 0, m, l, 2);
    req_input("owner_claimed", CORE1, m, l, 2);
    cl_cbor_enc_init(&e, pl, sizeof pl);
    (void)cl_cbor_enc_map(&e, 2);
    (void)cl_cbor_enc_tstr_z(&e, "ca_cert");
    (void)cl_cbor_enc_bstr(&e, der, 100);
    (void)cl_cbor_enc_tstr_z(&e, "identity_cert");
    (void)cl_cbor_enc_bstr(&e, der, 120);
    CHECK(cl_cbor_enc_finish(&e, &pn) == CL_OK);
    l[0] = coap(m[0], 1200, CL_COAP_CON, CL_COAP_POST, 6, "p", "/pki/provision", NULL, -1, NULL,
                0, pl, pn);
    req_input("provision_garbage", 0, m, l, 1);

    /* EDHOC message_1, methods 0 and 3, suite 2, with a real P-256 G_X */
    cl_crypto_t c;
    cl_key_t k;
    CHECK(cl_crypto_openssl_new(&c, 0) == CL_OK);
    CHECK(c.ops->key_generate(c.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &k, pub, sizeof pub, &pn) ==
              CL_OK &&
          pn == 65);
    cl_crypto_openssl_free(&c);
    pn = message_1(pl, sizeof pl, 0, pub + 1);
    l[0] = coap(m[0], 1200, CL_COAP_CON, CL_COAP_POST, 7, "e1", "/.well-known/edhoc", NULL, -1,
                NULL, 0, pl, pn);
    req_input("edhoc_m1_method0", CORE1, m, l, 1);
    req_input("edhoc_m1_fresh_core", 0, m, l, 1);
    req_input("edhoc_m1_tick", CORE1 | TICK, m, l, 1);
    pn = message_1(pl, sizeof pl, 3, pub + 1);
    l[1] = coap(m[1], 1200, CL_COAP_CON, CL_COAP_POST, 8, "e3", "/.well-known/edhoc", NULL, -1,
                NULL, 0, pl, pn);
    /* a message_3 for an unknown C_R: bstr + C_R prefix */
    l[2] = coap(m[2], 1200, CL_COAP_CON, CL_COAP_POST, 9, "e9", "/.well-known/edhoc", NULL, -1,
                NULL, 0, (const uint8_t *)"\x37\x48\x01\x02\x03\x04\x05\x06\x07\x08", 10);
    req_input("edhoc_m1_m1_m3", CORE1, m, l, 3);

    /* OSCORE option (kid 0x01, partial IV 0x05) without a context: 4.01 */
    l[0] = coap(m[0], 1200, CL_COAP_CON, CL_COAP_POST, 10, "os", NULL, NULL, -1,
                (const uint8_t *)"\x09\x05\x01", 3, (const uint8_t *)"\x61\x62\x63\x64\x65\x66\x67\x68\x69", 9);
    req_input("oscore_no_context", CORE1, m, l, 1);
    /* protected resources without OSCORE, a ping, an ACK, a non-CoAP datagram */
    l[0] = coap(m[0], 1200, CL_COAP_CON, CL_COAP_GET, 11, "w", "/whoami", NULL, -1, NULL, 0, NULL,
                0);
    l[1] = coap(m[1], 1200, CL_COAP_CON, CL_COAP_POST, 12, "tok", "/pki/tokens", NULL, -1, NULL,
                0, (const uint8_t *)"\xa0", 1);
    l[2] = coap(m[2], 1200, CL_COAP_CON, CL_COAP_EMPTY, 13, "", NULL, NULL, -1, NULL, 0, NULL, 0);
    l[3] = coap(m[3], 1200, CL_COAP_ACK, CL_COAP_EMPTY, 14, "", NULL, NULL, -1, NULL, 0, NULL, 0);
    memcpy(m[4], "GET / HTTP/1.1\r\n\r\n", 18);
    l[4] = 18;
    req_input("unprotected_ping_ack_junk", CORE1, m, l, 5);
    /* everything at once */
    l[0] = coap(m[0], 1200, CL_COAP_CON, CL_COAP_GET, 15, "a", "/attestation", nonce, -1, NULL, 0,
                NULL, 0);
    pn = message_1(pl, sizeof pl, 0, pub + 1);
    l[1] = coap(m[1], 1200, CL_COAP_NON, CL_COAP_POST, 16, "b", "/.well-known/edhoc", NULL, -1,
                NULL, 0, pl, pn);
    l[2] = coap(m[2], 1200, CL_COAP_CON, CL_COAP_DELETE, 17, "c", "/clients/1/revoke", NULL, -1,
                NULL, 0, NULL, 0);
    req_input("mixed", CORE1 | 0x30, m, l, 3);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <corpus-root>\n", argv[0]);
        return 2;
    }
    snprintf(g_root, sizeof g_root, "%s", argv[1]);
    gen_batch();
    gen_unseal();
    gen_state();
    gen_state_model();
    gen_requests();
    return 0;
}
