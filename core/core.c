/*
 * core.c - the ecall entry of the trusted core (cloister/core.h): instance
 * table, boot (unseal + replay, or first-boot key generation), the batch
 * loop of handle(), timers, attestation, and the commit path every mutation
 * takes (sealed log append, durable, then apply).
 *
 * Boundary discipline: every host buffer is copied into core memory before
 * it is parsed (no double fetch), output is assembled in core memory and
 * copied out once, handles are opaque numbers (never pointers), and the
 * host's ocall table is copied at open so the host cannot swap it later.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto_openssl.h"
#include "core_internal.h"

#define MAX_INSTANCES 16
/* a restarted core cannot be sent back in time by more than this */
#define CL_CLOCK_PERSIST_MS 60000

static cl_core_t *g_instances[MAX_INSTANCES];
static uint32_t g_generation;

static cl_core_t *instance(cl_core_handle_t h)
{
    size_t slot = (size_t)(h & 0xffu);
    if (h == 0 || slot >= MAX_INSTANCES || g_instances[slot] == NULL ||
        g_instances[slot]->handle != h)
        return NULL;
    return g_instances[slot];
}

void cl_core_log(cl_core_t *c, int level, const char *fmt, ...)
{
    char line[CL_CORE_MAX_LOG_LINE];
    va_list ap;
    if (c->host.log_line == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->host.log_line(c->host.ctx, level, line);
}

int64_t cl_core_now(cl_core_t *c)
{
    int64_t t = 0;
    if (c->host.time_now != NULL && c->host.time_now(c->host.ctx, &t) == CL_OK && t > c->now_ms)
        c->now_ms = t; /* the host's clock may lie; inside the core it never goes back */
    if (c->st.clock_ms > c->now_ms)
        c->now_ms = c->st.clock_ms;
    return c->now_ms;
}

void cl_core_persist_clock(cl_core_t *c, int64_t min_step_ms)
{
    uint8_t rec[16];
    size_t len;
    cl_cbor_enc_t e;
    if (c->now_ms - c->st.clock_ms < min_step_ms)
        return;
    cl_cbor_enc_init(&e, rec, sizeof rec);
    cl_cbor_enc_array(&e, 2);
    cl_cbor_enc_uint(&e, CL_REC_CLOCK);
    cl_cbor_enc_int(&e, c->now_ms);
    if (cl_cbor_enc_finish(&e, &len) == CL_OK && cl_core_commit(c, rec, len) != CL_OK)
        return; /* logged by commit; retried at the next tick */
}

cl_status_t cl_core_commit(cl_core_t *c, const uint8_t *rec, size_t len)
{
    cl_status_t st = cl_slog_append(&c->log, rec, len);
    if (st != CL_OK) {
        cl_core_log(c, CL_LOG_ERROR, "sealed log append failed (%s): change not made",
                    cl_status_str(st));
        return st;
    }
    st = cl_state_apply(&c->st, rec, len);
    if (st != CL_OK) /* cannot happen for records we built; the log now has it: stop */
        cl_core_log(c, CL_LOG_ERROR, "internal: a committed record did not apply (%s)",
                    cl_status_str(st));
    if (st == CL_OK && c->cfg.snapshot_every != 0 &&
        cl_slog_pending(&c->log) >= c->cfg.snapshot_every) {
        uint8_t *snap = NULL;
        size_t snap_len = 0;
        cl_status_t ss = cl_state_snapshot(&c->st, &snap, &snap_len);
        if (ss == CL_OK)
            ss = cl_slog_snapshot(&c->log, snap, snap_len);
        if (snap != NULL) {
            cl_wipe(snap, snap_len);
            free(snap);
        }
        if (ss != CL_OK) /* not fatal: the log still holds everything */
            cl_core_log(c, CL_LOG_WARN, "snapshot failed (%s); will retry", cl_status_str(ss));
    }
    return st;
}

cl_status_t cl_core_ca_sign(void *arg, const uint8_t *tbs, size_t tbs_len, uint8_t sig[64])
{
    cl_core_t *c = arg;
    size_t n = 0;
    cl_status_t st =
        c->crypto.ops->sign(c->crypto.self, c->ca_key, CL_SIG_ES256, tbs, tbs_len, sig, 64, &n);
    return st == CL_OK && n == 64 ? CL_OK : CL_FAIL(CL_ERR_CRYPTO);
}

cl_status_t cl_core_load_keys(cl_core_t *c)
{
    const cl_crypto_ops_t *o = c->crypto.ops;
    cl_status_t st;
    if (!c->st.have_keys)
        return CL_FAIL(CL_ERR_STATE);
    cl_key_destroy(&c->crypto, c->identity_key);
    cl_key_destroy(&c->crypto, c->ca_key);
    cl_key_destroy(&c->crypto, c->archive_aead);
    c->identity_key = c->ca_key = c->archive_aead = CL_KEY_NONE;
    if ((st = o->key_import_private(c->crypto.self, CL_KEY_P256, CL_KEY_USAGE_SIGN,
                                    c->st.identity_priv, 32, &c->identity_key)) != CL_OK ||
        (st = o->key_import_private(c->crypto.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, c->st.ca_priv,
                                    32, &c->ca_key)) != CL_OK ||
        (st = cl_aead_import(&c->crypto, CL_AEAD_A128GCM, c->st.archive_key, 16,
                             &c->archive_aead)) != CL_OK)
        return st;
    return CL_OK;
}

/* First boot: every key is generated inside the core and sealed in the log. */
static cl_status_t generate_keys(cl_core_t *c)
{
    const cl_crypto_ops_t *o = c->crypto.ops;
    uint8_t id_priv[32], ca_priv[32], ak[16], tk[32], id_pub[65], ca_pub[65];
    uint8_t rec[512];
    size_t rec_len, n1 = 0, n2 = 0;
    cl_key_t k1 = CL_KEY_NONE, k2 = CL_KEY_NONE;
    cl_status_t st;
    cl_cbor_enc_t e;

    /* scalars from the platform's randomness; the provider validates them (retry if >= n) */
    for (int i = 0; i < 8; i++) {
        if ((st = c->platform.read_rand(c->platform.self, id_priv, 32)) != CL_OK)
            goto out;
        if (o->key_import_private(c->crypto.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, id_priv, 32,
                                  &k1) == CL_OK)
            break;
    }
    for (int i = 0; i < 8; i++) {
        if ((st = c->platform.read_rand(c->platform.self, ca_priv, 32)) != CL_OK)
            goto out;
        if (o->key_import_private(c->crypto.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, ca_priv, 32,
                                  &k2) == CL_OK)
            break;
    }
    if (k1 == CL_KEY_NONE || k2 == CL_KEY_NONE ||
        o->key_export_public(c->crypto.self, k1, id_pub, sizeof id_pub, &n1) != CL_OK ||
        o->key_export_public(c->crypto.self, k2, ca_pub, sizeof ca_pub, &n2) != CL_OK || n1 != 65 ||
        n2 != 65) {
        st = CL_FAIL(CL_ERR_CRYPTO);
        goto out;
    }
    if ((st = c->platform.read_rand(c->platform.self, ak, sizeof ak)) != CL_OK ||
        (st = c->platform.read_rand(c->platform.self, tk, sizeof tk)) != CL_OK)
        goto out;
    cl_cbor_enc_init(&e, rec, sizeof rec);
    cl_cbor_enc_array(&e, 8);
    cl_cbor_enc_uint(&e, CL_REC_KEYS);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_bstr(&e, id_priv, 32);
    cl_cbor_enc_bstr(&e, id_pub, 65);
    cl_cbor_enc_bstr(&e, ca_priv, 32);
    cl_cbor_enc_bstr(&e, ca_pub, 65);
    cl_cbor_enc_bstr(&e, ak, 16);
    cl_cbor_enc_bstr(&e, tk, 32);
    if ((st = cl_cbor_enc_finish(&e, &rec_len)) != CL_OK)
        goto out;
    st = cl_core_commit(c, rec, rec_len);
out:
    cl_key_destroy(&c->crypto, k1);
    cl_key_destroy(&c->crypto, k2);
    cl_wipe(id_priv, sizeof id_priv);
    cl_wipe(ca_priv, sizeof ca_priv);
    cl_wipe(ak, sizeof ak);
    cl_wipe(tk, sizeof tk);
    cl_wipe(rec, sizeof rec);
    return st;
}

static cl_status_t cb_restore(void *arg, const uint8_t *state, size_t len)
{
    cl_core_t *c = arg;
    return cl_state_restore(&c->st, state, len);
}

static cl_status_t cb_apply(void *arg, uint64_t counter, const uint8_t *rec, size_t len)
{
    cl_core_t *c = arg;
    (void)counter;
    return cl_state_apply(&c->st, rec, len);
}

static void core_free(cl_core_t *c)
{
    if (c == NULL)
        return;
    cl_sessions_free(c);
    cl_rules_free(c);
    cl_archive_discard(c, true);
    for (size_t i = 0; i < CL_EVIDENCE_CACHE; i++)
        free(c->evcache[i].ev);
    if (c->log_open)
        cl_slog_close(&c->log);
    cl_state_free(&c->st);
    if (c->crypto_ok)
        cl_crypto_openssl_free(&c->crypto); /* destroys (wipes) every key handle */
    cl_wipe(c, sizeof *c);
    free(c);
}

static cl_status_t ecall_open(const cl_tee_platform_t *platform, const cl_host_ops_t *host,
                              const cl_core_config_t *cfg, cl_core_handle_t *out)
{
    cl_status_t st;
    size_t slot;

    if (platform == NULL || host == NULL || cfg == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    /* copy in, then validate the copies */
    cl_tee_platform_t plat = *platform;
    cl_host_ops_t ops = *host;
    cl_core_config_t conf = *cfg;
    if (plat.version != CL_TEE_PLATFORM_VERSION || plat.read_rand == NULL || plat.get_key == NULL ||
        plat.get_report == NULL || ops.version != CL_HOST_OPS_VERSION || ops.log_append == NULL ||
        ops.log_read == NULL || ops.log_compact == NULL || ops.snapshot_put == NULL ||
        ops.snapshot_get == NULL || ops.time_now == NULL || conf.version != CL_CORE_API_VERSION)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (conf.snapshot_every == 0)
        conf.snapshot_every = 1000;
    if (conf.max_sessions == 0)
        conf.max_sessions = 4096;
    if (conf.max_sessions > 1000000)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (conf.session_ttl_s == 0)
        conf.session_ttl_s = 86400;
    if (conf.seal_policy == 0)
        conf.seal_policy = CL_SGX_KEYPOLICY_MRENCLAVE;
    if (conf.seal_policy != CL_SGX_KEYPOLICY_MRENCLAVE &&
        conf.seal_policy != CL_SGX_KEYPOLICY_MRSIGNER)
        return CL_FAIL(CL_ERR_INVALID_ARG);

    for (slot = 0; slot < MAX_INSTANCES && g_instances[slot] != NULL; slot++)
        ;
    if (slot == MAX_INSTANCES)
        return CL_FAIL(CL_ERR_FULL);
    cl_core_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return CL_FAIL(CL_ERR_FULL);
    c->platform = plat;
    c->host = ops;
    c->cfg = conf;
    if ((st = cl_crypto_openssl_new(&c->crypto, 0)) != CL_OK)
        goto fail;
    c->crypto_ok = true;

    cl_slog_apply_t cb = {.restore = cb_restore, .apply = cb_apply, .arg = c};
    cl_slog_fault_t fault = CL_SLOG_FAULT_NONE;
    st = cl_slog_open(&c->log, &c->platform, &c->host, conf.seal_policy, &cb, &fault);
    if (st != CL_OK) {
        cl_core_log(c, CL_LOG_ERROR, "boot refused: sealed state %s (%s)", cl_slog_fault_str(fault),
                    cl_status_str(st));
        goto fail;
    }
    c->log_open = true;
    (void)cl_core_now(c);
    if (!c->st.have_keys && (st = generate_keys(c)) != CL_OK) {
        cl_core_log(c, CL_LOG_ERROR, "first boot: key generation failed (%s)", cl_status_str(st));
        goto fail;
    }
    if ((st = cl_core_load_keys(c)) != CL_OK || (st = cl_sessions_init(c)) != CL_OK)
        goto fail;
    if (c->st.phase == CL_PHASE_PROVISIONED && (st = cl_sessions_set_identity(c)) != CL_OK)
        goto fail;
    if ((st = cl_rules_init(c)) != CL_OK || (st = cl_rules_load_all(c)) != CL_OK)
        goto fail;
    uint8_t r[2];
    if ((st = c->platform.read_rand(c->platform.self, r, 2)) != CL_OK)
        goto fail;
    c->next_mid = (uint16_t)(r[0] << 8 | r[1]);

    g_generation++;
    c->handle = (uint64_t)(g_generation & 0xffffffu) << 8 | slot;
    g_instances[slot] = c;
    *out = c->handle;
    cl_core_log(c, CL_LOG_INFO,
                "core open: platform %s, epoch %llu, %llu records, state %s, %zu clients",
                plat.backend == CL_TEE_BACKEND_SGX ? "sgx" : "sim (simulated: no security)",
                (unsigned long long)c->log.epoch, (unsigned long long)c->log.counter,
                c->st.phase == CL_PHASE_PROVISIONED ? "provisioned"
                : c->st.phase == CL_PHASE_CLAIMED   ? "claimed"
                                                    : "fresh",
                c->st.n_clients);
    return CL_OK;
fail:
    core_free(c);
    return st;
}

static cl_status_t ecall_handle(cl_core_handle_t h, const uint8_t *in, size_t in_len, uint8_t *out,
                                size_t out_size, size_t *out_len)
{
    cl_core_t *c = instance(h);
    size_t count, pos = 0, olen;
    cl_status_t st;

    if (c == NULL || in == NULL || out == NULL || out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (in_len > CL_CORE_MAX_BATCH_BYTES || in_len < CL_BATCH_HDR_LEN)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    /* copy in once; parse only the copy */
    uint8_t *batch = malloc(in_len);
    uint8_t *resp = malloc(CL_CORE_MAX_BATCH_BYTES);
    uint8_t *msg = malloc(CL_CORE_MAX_MESSAGE);
    uint8_t *ans = malloc(CL_CORE_MAX_MESSAGE);
    if (batch == NULL || resp == NULL || msg == NULL || ans == NULL) {
        st = CL_FAIL(CL_ERR_FULL);
        goto out;
    }
    memcpy(batch, in, in_len);
    if ((st = cl_batch_validate(batch, in_len, &count)) != CL_OK ||
        (st = cl_batch_begin(resp, CL_CORE_MAX_BATCH_BYTES, &olen)) != CL_OK)
        goto out;
    (void)cl_core_now(c);
    cl_batch_item_t it;
    c->arch_defer = true; /* the batch's archive rows leave in one archive_put, below */
    while ((st = cl_batch_next(batch, in_len, &pos, &it)) == CL_OK) {
        size_t alen = 0;
        memcpy(msg, it.msg, it.len);
        c->stats_requests++;
        uint16_t flags = 0;
        cl_core_dispatch(c, it.peer, it.transport, msg, it.len, ans, CL_CORE_MAX_MESSAGE, &alen,
                         &flags);
        cl_batch_item_t r = {
            .peer = it.peer, .transport = it.transport, .flags = flags, .msg = ans, .len = alen};
        if ((st = cl_batch_add(resp, CL_CORE_MAX_BATCH_BYTES, &olen, &r)) != CL_OK)
            goto out;
    }
    if (st != CL_ERR_NOT_FOUND)
        goto out;
    /* Answers that say "accepted" are only true once the rows are with the host: a failed
     * put fails the whole batch (the host sends none of its answers; clients retry). */
    if ((st = cl_archive_flush(c)) != CL_OK)
        goto out;
    if (olen > out_size) {
        st = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto out;
    }
    memcpy(out, resp, olen);
    *out_len = olen;
    st = CL_OK;
out:
    c->arch_defer = false;
    cl_archive_discard(c, false); /* nothing queued on success; a failed batch's rows go */
    if (msg != NULL)
        cl_wipe(msg, CL_CORE_MAX_MESSAGE);
    if (ans != NULL)
        cl_wipe(ans, CL_CORE_MAX_MESSAGE);
    free(batch);
    free(resp);
    free(msg);
    free(ans);
    return st;
}

static cl_status_t ecall_tick(cl_core_handle_t h, int64_t now_ms)
{
    cl_core_t *c = instance(h);
    if (c == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (now_ms > c->now_ms)
        c->now_ms = now_ms;
    cl_sessions_expire(c);
    cl_rules_tick(c);
    cl_core_persist_clock(c, CL_CLOCK_PERSIST_MS);
    return CL_OK;
}

static cl_status_t ecall_attest(cl_core_handle_t h, const uint8_t *nonce, size_t nonce_len,
                                uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_core_t *c = instance(h);
    uint8_t n[CL_CORE_NONCE_MAX];
    if (c == NULL || nonce == NULL || out == NULL || out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (nonce_len < CL_CORE_NONCE_MIN || nonce_len > CL_CORE_NONCE_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    memcpy(n, nonce, nonce_len);
    uint8_t *ev = malloc(CL_CORE_MAX_EVIDENCE);
    if (ev == NULL)
        return CL_FAIL(CL_ERR_FULL);
    size_t len = 0;
    cl_status_t st = cl_core_evidence(c, n, nonce_len, ev, CL_CORE_MAX_EVIDENCE, &len);
    if (st == CL_OK && len > out_size)
        st = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    if (st == CL_OK) {
        memcpy(out, ev, len);
        *out_len = len;
    }
    free(ev);
    return st;
}

static void ecall_close(cl_core_handle_t h)
{
    cl_core_t *c = instance(h);
    if (c == NULL)
        return;
    g_instances[h & 0xffu] = NULL;
    core_free(c);
}

static const cl_core_ecalls_t ECALLS = {
    .version = CL_CORE_API_VERSION,
    .open = ecall_open,
    .handle = ecall_handle,
    .tick = ecall_tick,
    .attest = ecall_attest,
    .close = ecall_close,
};

const cl_core_ecalls_t *cl_core_ecall_table(void)
{
    return &ECALLS;
}
