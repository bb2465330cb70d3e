/*
 * core/sealed_log.c - the sealed, hash-chained log and snapshots of the
 * core's state (format and semantics in sealed_log.h, the design and its
 * freshness limits in docs/sealed-state.md).
 *
 * Everything the host returns is untrusted: every ocall output is
 * initialised before the call and checked after it (status, *len <= size,
 * the counter the host claims), then the sealed blob is unsealed (MAC,
 * layout), and its authenticated envelope is compared with what we expect
 * (purpose, key policy, counter, chain, epoch, exact sealed size). Loops
 * over host data are bounded by the counter space; the snapshot read retries
 * with a larger buffer at most a fixed number of times. Plaintext buffers
 * are wiped after use. No I/O: storage only through cl_host_ops.
 */
#include "sealed_log.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cloister/crypto.h"

#define REC_MAX CL_CORE_MAX_RECORD
#define EPOCH_PT_LEN 9 /* type || u64le(epoch) */
#define SNAP_FIRST_READ (64u * 1024u)

const char *cl_slog_fault_str(cl_slog_fault_t f)
{
    switch (f) {
    case CL_SLOG_FAULT_NONE: return "none";
    case CL_SLOG_FAULT_HOST: return "host";
    case CL_SLOG_FAULT_SNAPSHOT: return "snapshot";
    case CL_SLOG_FAULT_GAP: return "gap";
    case CL_SLOG_FAULT_CHAIN: return "chain";
    case CL_SLOG_FAULT_RECORD: return "record";
    case CL_SLOG_FAULT_EPOCH: return "epoch";
    case CL_SLOG_FAULT_APPLY: return "apply";
    }
    return "unknown";
}

static void put_u64le(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64le(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* chain_out = SHA-256(tag || chain_prev || u64le(counter) || blob). */
static cl_status_t chain_next(const uint8_t prev[CL_SLOG_CHAIN_LEN], uint64_t counter,
                              const uint8_t *blob, size_t len, uint8_t out[CL_SLOG_CHAIN_LEN])
{
    uint8_t ctr[8];
    unsigned int n = 0;
    int ok;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    if (md == NULL)
        return CL_FAIL(CL_ERR_CRYPTO);
    put_u64le(ctr, counter);
    ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(md, CL_SLOG_CHAIN_TAG, sizeof(CL_SLOG_CHAIN_TAG) - 1) == 1 &&
         EVP_DigestUpdate(md, prev, CL_SLOG_CHAIN_LEN) == 1 &&
         EVP_DigestUpdate(md, ctr, sizeof ctr) == 1 && EVP_DigestUpdate(md, blob, len) == 1 &&
         EVP_DigestFinal_ex(md, out, &n) == 1 && n == CL_SLOG_CHAIN_LEN;
    EVP_MD_CTX_free(md);
    return ok ? CL_OK : CL_FAIL(CL_ERR_CRYPTO);
}

/* The key policy written in the blob's key request (the blob is >= header size). */
static uint16_t blob_policy(const uint8_t *blob)
{
    return (uint16_t)(blob[CL_SGX_KR_KEY_POLICY] | (blob[CL_SGX_KR_KEY_POLICY + 1] << 8));
}

static uint8_t *blob_area(const cl_slog_t *l)
{
    return l->buf;
}

static uint8_t *pt_area(const cl_slog_t *l)
{
    return l->buf + REC_MAX;
}

/*
 * Seals type || body as record counter+1, appends it, and only when the host
 * said durable advances counter and chain.
 */
static cl_status_t seal_append(cl_slog_t *l, uint64_t epoch, uint8_t type, const uint8_t *body,
                               size_t body_len)
{
    cl_seal_envelope_t env;
    uint8_t next_chain[CL_SLOG_CHAIN_LEN];
    uint8_t *pt = pt_area(l);
    size_t blob_len = 0;
    cl_status_t rc;

    if (l->counter == UINT64_MAX || body_len > REC_MAX - 1)
        return CL_FAIL(CL_ERR_LIMIT);
    memset(&env, 0, sizeof env);
    env.purpose = CL_SEAL_PURPOSE_LOG;
    env.epoch = epoch;
    env.counter = l->counter + 1;
    memcpy(env.extra, l->chain, CL_SLOG_CHAIN_LEN);
    env.extra_len = CL_SLOG_CHAIN_LEN;
    if (cl_seal_size(&env, 1 + body_len) > REC_MAX)
        return CL_FAIL(CL_ERR_LIMIT);

    pt[0] = type;
    if (body_len > 0)
        memcpy(pt + 1, body, body_len);
    rc = cl_seal(l->platform, l->policy, &env, pt, 1 + body_len, blob_area(l), REC_MAX, &blob_len);
    cl_wipe(pt, 1 + body_len);
    if (rc != CL_OK)
        return rc;
    rc = chain_next(l->chain, env.counter, blob_area(l), blob_len, next_chain);
    if (rc != CL_OK)
        return rc;
    if (l->host->log_append(l->host->ctx, env.counter, blob_area(l), blob_len) != CL_OK)
        return CL_FAIL(CL_ERR_PERSIST);
    l->counter = env.counter;
    memcpy(l->chain, next_chain, CL_SLOG_CHAIN_LEN);
    return CL_OK;
}

/* ---- boot ---- */

typedef struct boot {
    cl_slog_t *l;
    const cl_slog_apply_t *cb;
    cl_slog_fault_t fault;
    uint64_t epoch; /* current epoch while replaying (0 = none yet) */
} boot_t;

static cl_status_t fail(boot_t *b, cl_slog_fault_t f, cl_status_t rc)
{
    b->fault = f;
    return rc;
}

/* Reads, unseals and restores the snapshot, if there is one. */
static cl_status_t boot_snapshot(boot_t *b)
{
    cl_slog_t *l = b->l;
    const cl_host_ops_t *h = l->host;
    cl_seal_envelope_t env;
    uint8_t *blob = NULL, *pt = NULL;
    size_t size = SNAP_FIRST_READ, len, pt_size, pt_len = 0;
    cl_status_t rc;

    for (;;) { /* at most 5 rounds: 64 KiB * 4^k capped at CL_CORE_MAX_SNAPSHOT */
        blob = malloc(size);
        if (blob == NULL)
            return fail(b, CL_SLOG_FAULT_NONE, CL_FAIL(CL_ERR_FULL));
        len = 0;
        rc = h->snapshot_get(h->ctx, blob, size, &len);
        if (rc != CL_ERR_BUFFER_TOO_SMALL)
            break;
        free(blob);
        blob = NULL;
        if (size >= CL_CORE_MAX_SNAPSHOT) /* larger than any snapshot we write */
            return fail(b, CL_SLOG_FAULT_SNAPSHOT, CL_FAIL(CL_ERR_AUTH));
        size = size * 4 > CL_CORE_MAX_SNAPSHOT ? CL_CORE_MAX_SNAPSHOT : size * 4;
    }
    if (rc == CL_ERR_NOT_FOUND) {
        free(blob);
        return CL_OK;
    }
    if (rc != CL_OK) {
        free(blob);
        return fail(b, CL_SLOG_FAULT_HOST, CL_FAIL(CL_ERR_PERSIST));
    }
    if (len > size) { /* the host claims more than fits: never read past the buffer */
        free(blob);
        return fail(b, CL_SLOG_FAULT_HOST, CL_FAIL(CL_ERR_PERSIST));
    }
    if (len < CL_SGX_SEALED_HDR_LEN || blob_policy(blob) != l->policy) {
        free(blob);
        return fail(b, CL_SLOG_FAULT_SNAPSHOT, CL_FAIL(CL_ERR_AUTH));
    }
    pt_size = cl_unsealed_size(blob, len);
    if (pt_size > len) { /* malformed; also bounds the allocation by what the host wrote */
        free(blob);
        return fail(b, CL_SLOG_FAULT_SNAPSHOT, CL_FAIL(CL_ERR_AUTH));
    }
    pt = malloc(pt_size > 0 ? pt_size : 1);
    if (pt == NULL) {
        free(blob);
        return fail(b, CL_SLOG_FAULT_NONE, CL_FAIL(CL_ERR_FULL));
    }
    memset(&env, 0, sizeof env);
    rc = cl_unseal(l->platform, blob, len, pt, pt_size, &pt_len, &env);
    if (rc != CL_OK || env.purpose != CL_SEAL_PURPOSE_SNAPSHOT ||
        env.extra_len != CL_SLOG_CHAIN_LEN || env.counter == 0 || env.epoch == 0 ||
        pt_len > pt_size || cl_seal_size(&env, pt_len) != len) {
        rc = fail(b, CL_SLOG_FAULT_SNAPSHOT, CL_FAIL(CL_ERR_AUTH));
        goto out;
    }
    rc = b->cb->restore(b->cb->arg, pt, pt_len);
    if (rc != CL_OK) {
        rc = fail(b, CL_SLOG_FAULT_APPLY, rc);
        goto out;
    }
    l->counter = env.counter;
    l->snap_counter = env.counter;
    memcpy(l->chain, env.extra, CL_SLOG_CHAIN_LEN);
    b->epoch = env.epoch;
out:
    cl_wipe(pt, pt_size > 0 ? pt_size : 1);
    free(pt);
    free(blob);
    return rc;
}

/* Checks and applies one unsealed record (plaintext pt[0..pt_len)). */
static cl_status_t boot_one(boot_t *b, const cl_seal_envelope_t *env, const uint8_t *pt,
                            size_t pt_len)
{
    cl_status_t rc;

    if (pt_len < 1)
        return fail(b, CL_SLOG_FAULT_RECORD, CL_FAIL(CL_ERR_AUTH));
    switch (pt[0]) {
    case CL_SLOG_REC_EPOCH:
        if (pt_len != EPOCH_PT_LEN || get_u64le(pt + 1) != env->epoch)
            return fail(b, CL_SLOG_FAULT_RECORD, CL_FAIL(CL_ERR_AUTH));
        if (env->epoch <= b->epoch)
            return fail(b, CL_SLOG_FAULT_EPOCH, CL_FAIL(CL_ERR_AUTH));
        b->epoch = env->epoch;
        return CL_OK;
    case CL_SLOG_REC_STATE:
        if (b->epoch == 0 || env->epoch != b->epoch)
            return fail(b, CL_SLOG_FAULT_EPOCH, CL_FAIL(CL_ERR_AUTH));
        rc = b->cb->apply(b->cb->arg, env->counter, pt + 1, pt_len - 1);
        if (rc != CL_OK)
            return fail(b, CL_SLOG_FAULT_APPLY, rc);
        return CL_OK;
    default: return fail(b, CL_SLOG_FAULT_RECORD, CL_FAIL(CL_ERR_AUTH));
    }
}

/* Replays records snap_counter+1, ... until the host says NOT_FOUND. */
static cl_status_t boot_replay(boot_t *b)
{
    cl_slog_t *l = b->l;
    const cl_host_ops_t *h = l->host;
    uint8_t *blob = blob_area(l), *pt = pt_area(l);
    cl_status_t rc;

    /* Bounded by the counter space: every accepted record raises l->counter. */
    while (l->counter < UINT64_MAX) {
        uint64_t want = l->counter + 1, got = 0;
        size_t len = 0, pt_len = 0;
        uint8_t next_chain[CL_SLOG_CHAIN_LEN];
        cl_seal_envelope_t env;

        rc = h->log_read(h->ctx, want, &got, blob, REC_MAX, &len);
        if (rc == CL_ERR_NOT_FOUND)
            return CL_OK;
        if (rc == CL_ERR_BUFFER_TOO_SMALL) /* larger than any record we write */
            return fail(b, CL_SLOG_FAULT_RECORD, CL_FAIL(CL_ERR_AUTH));
        if (rc != CL_OK || len > REC_MAX)
            return fail(b, CL_SLOG_FAULT_HOST, CL_FAIL(CL_ERR_PERSIST));
        if (got != want) /* a record missing, repeated or out of order */
            return fail(b, CL_SLOG_FAULT_GAP, CL_FAIL(CL_ERR_AUTH));
        if (len < CL_SGX_SEALED_HDR_LEN || blob_policy(blob) != l->policy)
            return fail(b, CL_SLOG_FAULT_RECORD, CL_FAIL(CL_ERR_AUTH));
        memset(&env, 0, sizeof env);
        rc = cl_unseal(l->platform, blob, len, pt, REC_MAX, &pt_len, &env);
        if (rc != CL_OK || env.purpose != CL_SEAL_PURPOSE_LOG || pt_len > REC_MAX ||
            env.extra_len != CL_SLOG_CHAIN_LEN || cl_seal_size(&env, pt_len) != len) {
            cl_wipe(pt, REC_MAX);
            return fail(b, CL_SLOG_FAULT_RECORD, CL_FAIL(CL_ERR_AUTH));
        }
        if (env.counter != want) { /* relabelled by the host: reordering or replay */
            cl_wipe(pt, pt_len);
            return fail(b, CL_SLOG_FAULT_GAP, CL_FAIL(CL_ERR_AUTH));
        }
        if (cl_ct_memcmp(env.extra, l->chain, CL_SLOG_CHAIN_LEN) != 0) {
            cl_wipe(pt, pt_len);
            return fail(b, CL_SLOG_FAULT_CHAIN, CL_FAIL(CL_ERR_AUTH));
        }
        rc = chain_next(l->chain, want, blob, len, next_chain);
        if (rc == CL_OK)
            rc = boot_one(b, &env, pt, pt_len);
        else
            b->fault = CL_SLOG_FAULT_NONE;
        cl_wipe(pt, pt_len);
        if (rc != CL_OK)
            return rc;
        l->counter = want;
        memcpy(l->chain, next_chain, CL_SLOG_CHAIN_LEN);
    }
    return fail(b, CL_SLOG_FAULT_GAP, CL_FAIL(CL_ERR_LIMIT));
}

cl_status_t cl_slog_open(cl_slog_t *l, const cl_tee_platform_t *platform,
                         const cl_host_ops_t *host, uint16_t policy, const cl_slog_apply_t *cb,
                         cl_slog_fault_t *fault)
{
    boot_t b;
    uint8_t body[8];
    cl_status_t rc;

    if (fault != NULL)
        *fault = CL_SLOG_FAULT_NONE;
    if (l == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    memset(l, 0, sizeof *l);
    if (platform == NULL || platform->version != CL_TEE_PLATFORM_VERSION || host == NULL ||
        host->version != CL_HOST_OPS_VERSION || host->log_append == NULL ||
        host->log_read == NULL || host->log_compact == NULL || host->snapshot_put == NULL ||
        host->snapshot_get == NULL || cb == NULL || cb->restore == NULL || cb->apply == NULL ||
        (policy != CL_SGX_KEYPOLICY_MRENCLAVE && policy != CL_SGX_KEYPOLICY_MRSIGNER))
        return CL_FAIL(CL_ERR_INVALID_ARG);

    l->platform = platform;
    l->host = host;
    l->policy = policy;
    l->buf_size = 2 * (size_t)REC_MAX;
    l->buf = malloc(l->buf_size);
    if (l->buf == NULL) {
        memset(l, 0, sizeof *l);
        return CL_FAIL(CL_ERR_FULL);
    }

    memset(&b, 0, sizeof b);
    b.l = l;
    b.cb = cb;
    rc = boot_snapshot(&b);
    if (rc == CL_OK)
        rc = boot_replay(&b);
    if (rc == CL_OK && b.epoch == UINT64_MAX)
        rc = fail(&b, CL_SLOG_FAULT_EPOCH, CL_FAIL(CL_ERR_LIMIT));
    if (rc == CL_OK) {
        /* Start this boot's epoch: every record it writes carries it. */
        put_u64le(body, b.epoch + 1);
        rc = seal_append(l, b.epoch + 1, CL_SLOG_REC_EPOCH, body, sizeof body);
        if (rc == CL_ERR_PERSIST)
            b.fault = CL_SLOG_FAULT_HOST;
    }
    if (rc != CL_OK) {
        if (fault != NULL)
            *fault = b.fault;
        cl_slog_close(l);
        return rc;
    }
    l->epoch = b.epoch + 1;
    return CL_OK;
}

cl_status_t cl_slog_append(cl_slog_t *l, const uint8_t *rec, size_t len)
{
    if (l == NULL || (rec == NULL && len > 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (l->buf == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (len == 0 || len > CL_SLOG_MAX_PAYLOAD)
        return CL_FAIL(len == 0 ? CL_ERR_INVALID_ARG : CL_ERR_LIMIT);
    return seal_append(l, l->epoch, CL_SLOG_REC_STATE, rec, len);
}

cl_status_t cl_slog_snapshot(cl_slog_t *l, const uint8_t *state, size_t len)
{
    cl_seal_envelope_t env;
    uint8_t *blob;
    size_t size, blob_len = 0;
    cl_status_t rc;

    if (l == NULL || (state == NULL && len > 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (l->buf == NULL)
        return CL_FAIL(CL_ERR_STATE);
    if (len > CL_SLOG_MAX_SNAPSHOT_PAYLOAD)
        return CL_FAIL(CL_ERR_LIMIT);
    memset(&env, 0, sizeof env);
    env.purpose = CL_SEAL_PURPOSE_SNAPSHOT;
    env.epoch = l->epoch;
    env.counter = l->counter;
    memcpy(env.extra, l->chain, CL_SLOG_CHAIN_LEN);
    env.extra_len = CL_SLOG_CHAIN_LEN;
    size = cl_seal_size(&env, len);
    if (size == 0 || size > CL_CORE_MAX_SNAPSHOT)
        return CL_FAIL(CL_ERR_LIMIT);
    blob = malloc(size);
    if (blob == NULL)
        return CL_FAIL(CL_ERR_FULL);
    rc = cl_seal(l->platform, l->policy, &env, state, len, blob, size, &blob_len);
    if (rc == CL_OK && l->host->snapshot_put(l->host->ctx, blob, blob_len) != CL_OK)
        rc = CL_FAIL(CL_ERR_PERSIST);
    free(blob);
    if (rc != CL_OK)
        return rc;
    l->snap_counter = l->counter;
    /* Best effort: an uncompacted log is skipped at boot (reads start after the snapshot). */
    (void)l->host->log_compact(l->host->ctx, l->counter + 1);
    return CL_OK;
}

uint64_t cl_slog_pending(const cl_slog_t *l)
{
    return l == NULL ? 0 : l->counter - l->snap_counter;
}

void cl_slog_close(cl_slog_t *l)
{
    if (l == NULL)
        return;
    if (l->buf != NULL) {
        cl_wipe(l->buf, l->buf_size);
        free(l->buf);
    }
    cl_wipe(l, sizeof *l);
}
