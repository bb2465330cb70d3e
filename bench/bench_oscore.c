/*
 * bench_oscore.c - OSCORE protect/unprotect throughput, side by side with raw
 * AES-CCM-16-64-128 in the same process, on the same payloads.
 *
 * What is timed, per payload size (6, 64, 256, 1024 bytes by default):
 *
 *   ccm_encrypt / ccm_decrypt   the cipher alone, once through OpenSSL EVP
 *                               (one EVP_CIPHER_CTX keyed once; per message:
 *                               IV, total length, AAD, update, final, tag) and
 *                               once through the AES-NI fast path
 *                               (cl_aesni_ccm_*), over exactly as many bytes as
 *                               OSCORE encrypts for the request and for the
 *                               response, with a 23-byte AAD (OSCORE's
 *                               Enc_structure for a 1-byte kid, 3-byte PIV).
 *   protect_request             client: CON POST /events, CF 60, 2-byte token
 *   unprotect_request           server: includes the context lookup and the
 *                               replay window
 *   protect_response            server: 2.04 ACK, same token, no new PIV
 *   unprotect_response          client
 *
 * each OSCORE operation with the provider in both modes: the AES-NI fast path
 * (default) and CL_CRYPTO_OPENSSL_NO_FASTPATH (EVP).
 *
 * Work is done in batches of BATCH messages. Only the batch itself is timed;
 * what a batch consumes is made before it, untimed: fresh protected requests
 * (with increasing sequence numbers, so the replay window accepts them), the
 * server's request bindings, or protected responses. Unprotect decrypts in
 * place in those freshly made buffers, so no copy is timed. Security
 * contexts are derived afresh (untimed) for every repetition with the
 * client's first Sender Sequence Number at 2^16, so Partial IVs are 3 bytes
 * as in a long-lived context. Each repetition runs for at least --min-time
 * seconds of timed work after a warm-up; the median, min and max over
 * --reps repetitions are reported. The cases of one payload size run round
 * by round (repetition i of all, then i + 1), so a change in machine load
 * hits the baselines and the OSCORE cases alike. The core clock is
 * estimated before and after (a dependent-add chain) to give cycles/op.
 *
 * Heap use is counted through CRYPTO_set_mem_functions (installed before
 * any OpenSSL call): allocations made by OpenSSL inside timed batches are
 * reported per operation. lib/ itself has no heap (checked by
 * scripts/check-symbols.sh).
 */
#define _GNU_SOURCE /* sched_setaffinity */
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bench_common.h"
#include "cloister/aes_ccm_aesni.h"
#include "cloister/coap.h"
#include "cloister/crypto.h"
#include "cloister/crypto_openssl.h"
#include "cloister/oscore.h"

#ifndef CL_BENCH_BUILD
#define CL_BENCH_BUILD "unknown build"
#endif

#define BATCH 256
#define MAX_PAYLOAD 1024
#define MSG_MAX (MAX_PAYLOAD + 128)
#define NONCE_LEN 13
#define TAG_LEN 8
/* Enc_structure ["Encrypt0", h'', bstr .cbor [1, [10], h'00', h'xxxxxx', h'']] */
#define AAD_LEN 23
#define MAX_SIZES 16
#define MAX_REPS 64
#define FIRST_SSN (UINT64_C(1) << 16)

/* ------------------------------------------------------------------ */
/* State                                                               */
/* ------------------------------------------------------------------ */

typedef enum op {
    OP_CCM_ENC,
    OP_CCM_DEC,
    OP_PROTECT_REQ,
    OP_UNPROTECT_REQ,
    OP_PROTECT_RESP,
    OP_UNPROTECT_RESP,
    OP_COUNT
} op_t;

static const char *const op_names[OP_COUNT] = {
    "ccm_encrypt",       "ccm_decrypt",      "protect_request",
    "unprotect_request", "protect_response", "unprotect_response",
};

typedef enum impl { IMPL_AESNI, IMPL_EVP, IMPL_COUNT } impl_t;
static const char *const impl_names[IMPL_COUNT] = {"aesni", "evp"};

typedef struct bench {
    /* configuration of the current case */
    op_t op;
    impl_t impl;
    size_t payload;
    size_t ccm_len; /* raw cipher: bytes encrypted */

    /* providers (one per mode) and the two endpoints' contexts */
    cl_crypto_t crypto[IMPL_COUNT];
    cl_oscore_ctx_t client, server;
    cl_oscore_ctx_t *server_tab[1];
    cl_oscore_ctx_list_t lookup;

    /* the plain CoAP messages */
    uint8_t req_plain[MSG_MAX];
    size_t req_plain_len;
    uint8_t resp_plain[MSG_MAX];
    size_t resp_plain_len;
    uint8_t payload_bytes[MAX_PAYLOAD];

    /* per-batch inputs, made untimed before each batch */
    uint8_t msg[BATCH][MSG_MAX];
    size_t msg_len[BATCH];
    cl_oscore_req_t creq[BATCH]; /* client: what each response is bound to */
    cl_oscore_req_t sreq[BATCH]; /* server: the same, from unprotect_request */
    uint8_t nonce[BATCH][NONCE_LEN];
    uint8_t out[MSG_MAX];
    uint64_t nonce_ctr;

    /* raw cipher state, keyed once */
    EVP_CIPHER_CTX *evp_enc, *evp_dec;
    cl_aesni_ccm_t aesni;
    uint8_t aad[AAD_LEN];
    uint8_t pt[MSG_MAX];

    int bad;      /* an operation failed in a timed batch */
    uint64_t sum; /* consumes every output so no work can be dropped */
} bench_t;

static bench_t g_b;

typedef struct result {
    size_t payload;
    op_t op;
    impl_t impl;
    size_t ccm_len; /* bytes the cipher processes (OSCORE plaintext length) */
    double med, min, max;
    double allocs_per_op;
    unsigned long long ops;
} result_t;

/* A provider mode whose OSCORE round trip failed: reported, and its OSCORE cases skipped. */
static char g_broken[IMPL_COUNT][160];

static double g_ghz; /* estimated core clock, 0 = unknown */

#define MAX_RESULTS 256
static result_t g_res[MAX_RESULTS];
static size_t g_nres;

typedef struct options {
    double min_time;
    double warmup;
    int reps;
    size_t sizes[MAX_SIZES];
    size_t n_sizes;
    int cpu;
    unsigned long batches; /* nonzero: fixed work per repetition (callgrind) */
    unsigned op_mask;
    unsigned impl_mask;
} options_t;

static const uint8_t master_secret[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t master_salt[8] = {0x9e, 0x7c, 0xa9, 0x22, 0x23, 0x78, 0x63, 0x40};
static const uint8_t client_id[1] = {0x00};
static const uint8_t server_id[1] = {0x01};
static const uint8_t token[2] = {0xab, 0xcd};
static const uint8_t ccm_key[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                    0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};

static void die(const char *what, int st)
{
    fprintf(stderr, "bench_oscore: %s failed (%d %s)\n", what, st,
            st <= 0 ? cl_status_str((cl_status_t)st) : "");
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ */
/* Messages and contexts                                               */
/* ------------------------------------------------------------------ */

static void build_messages(bench_t *b, size_t payload)
{
    cl_coap_builder_t cb;
    uint8_t cf[4];
    size_t cf_len = cl_coap_uint_encode(cf, CL_COAP_CF_CBOR);
    cl_status_t st;

    for (size_t i = 0; i < payload; i++)
        b->payload_bytes[i] = (uint8_t)(i * 7 + 1);
    cl_coap_build_init(&cb, b->req_plain, sizeof b->req_plain, CL_COAP_CON, CL_COAP_POST, 0x1234,
                       token, sizeof token);
    cl_coap_build_option(&cb, CL_COAP_OPT_URI_PATH, (const uint8_t *)"events", 6);
    cl_coap_build_option(&cb, CL_COAP_OPT_CONTENT_FORMAT, cf, cf_len);
    cl_coap_build_payload(&cb, b->payload_bytes, payload);
    if ((st = cl_coap_build_finish(&cb, &b->req_plain_len)) != CL_OK)
        die("build request", st);
    cl_coap_build_init(&cb, b->resp_plain, sizeof b->resp_plain, CL_COAP_ACK, CL_COAP_CHANGED,
                       0x1234, token, sizeof token);
    cl_coap_build_payload(&cb, b->payload_bytes, payload);
    if ((st = cl_coap_build_finish(&cb, &b->resp_plain_len)) != CL_OK)
        die("build response", st);
}

static void contexts_init(bench_t *b, impl_t impl)
{
    cl_oscore_params_t p = {
        .master_secret = master_secret,
        .master_secret_len = sizeof master_secret,
        .master_salt = master_salt,
        .master_salt_len = sizeof master_salt,
        .sender_id = client_id,
        .sender_id_len = sizeof client_id,
        .recipient_id = server_id,
        .recipient_id_len = sizeof server_id,
        .initial_ssn = FIRST_SSN,
    };
    cl_status_t st;

    if ((st = cl_oscore_ctx_init(&b->client, &b->crypto[impl], &p)) != CL_OK)
        die("client context", st);
    p.sender_id = server_id;
    p.recipient_id = client_id;
    if ((st = cl_oscore_ctx_init(&b->server, &b->crypto[impl], &p)) != CL_OK)
        die("server context", st);
    b->server_tab[0] = &b->server;
    b->lookup.ctx = b->server_tab;
    b->lookup.n = 1;
}

static void contexts_free(bench_t *b)
{
    cl_oscore_ctx_free(&b->client);
    cl_oscore_ctx_free(&b->server);
}

/* ------------------------------------------------------------------ */
/* Raw AES-CCM through OpenSSL EVP                                     */
/* ------------------------------------------------------------------ */

static EVP_CIPHER_CTX *evp_ccm_new(int enc)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-128-CCM", NULL);
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    if (c == NULL || x == NULL || EVP_CipherInit_ex(x, c, NULL, NULL, NULL, enc) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, NULL) != 1 ||
        EVP_CipherInit_ex(x, NULL, NULL, ccm_key, NULL, enc) != 1)
        die("EVP AES-128-CCM setup", 1);
    EVP_CIPHER_free(c); /* the context keeps its own reference */
    return x;
}

static int evp_encrypt(EVP_CIPHER_CTX *x, const uint8_t *nonce, const uint8_t *aad,
                       const uint8_t *pt, size_t len, uint8_t *out)
{
    int n, ok = 1;
    ok &= EVP_EncryptInit_ex(x, NULL, NULL, NULL, nonce) == 1;
    ok &= EVP_EncryptUpdate(x, NULL, &n, NULL, (int)len) == 1;
    ok &= EVP_EncryptUpdate(x, NULL, &n, aad, AAD_LEN) == 1;
    ok &= EVP_EncryptUpdate(x, out, &n, pt, (int)len) == 1;
    ok &= EVP_EncryptFinal_ex(x, out + len, &n) == 1;
    ok &= EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, out + len) == 1;
    return ok;
}

static int evp_decrypt(EVP_CIPHER_CTX *x, const uint8_t *nonce, const uint8_t *aad,
                       const uint8_t *in, size_t len, uint8_t *out)
{
    uint8_t tag[TAG_LEN];
    int n, ok = 1;
    memcpy(tag, in + len, TAG_LEN);
    ok &= EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) == 1;
    ok &= EVP_DecryptInit_ex(x, NULL, NULL, NULL, nonce) == 1;
    ok &= EVP_DecryptUpdate(x, NULL, &n, NULL, (int)len) == 1;
    ok &= EVP_DecryptUpdate(x, NULL, &n, aad, AAD_LEN) == 1;
    ok &= EVP_DecryptUpdate(x, out, &n, in, (int)len) == 1; /* 1 only if the tag matches */
    return ok;
}

/* ------------------------------------------------------------------ */
/* Timed batches (noinline: callgrind collects inside these only)      */
/* ------------------------------------------------------------------ */

#define NOINLINE __attribute__((noinline))

NOINLINE static void timed_ccm_encrypt_evp(bench_t *b)
{
    for (size_t i = 0; i < BATCH; i++) {
        b->bad |= !evp_encrypt(b->evp_enc, b->nonce[i], b->aad, b->pt, b->ccm_len, b->out);
        b->sum += b->out[b->ccm_len + TAG_LEN - 1];
    }
}

NOINLINE static void timed_ccm_decrypt_evp(bench_t *b)
{
    for (size_t i = 0; i < BATCH; i++) {
        b->bad |= !evp_decrypt(b->evp_dec, b->nonce[i], b->aad, b->msg[i], b->ccm_len, b->out);
        b->sum += b->out[b->ccm_len - 1];
    }
}

NOINLINE static void timed_ccm_encrypt_aesni(bench_t *b)
{
    for (size_t i = 0; i < BATCH; i++) {
        b->bad |= cl_aesni_ccm_encrypt(&b->aesni, b->nonce[i], b->aad, AAD_LEN, b->pt, b->ccm_len,
                                       b->out) != CL_OK;
        b->sum += b->out[b->ccm_len + TAG_LEN - 1];
    }
}

NOINLINE static void timed_ccm_decrypt_aesni(bench_t *b)
{
    for (size_t i = 0; i < BATCH; i++) {
        b->bad |= cl_aesni_ccm_decrypt(&b->aesni, b->nonce[i], b->aad, AAD_LEN, b->msg[i],
                                       b->ccm_len + TAG_LEN, b->out) != CL_OK;
        b->sum += b->out[b->ccm_len - 1];
    }
}

NOINLINE static void timed_protect_request(bench_t *b)
{
    for (size_t i = 0; i < BATCH; i++) {
        size_t n = 1;
        b->bad |= cl_oscore_protect_request(&b->client, b->req_plain, b->req_plain_len, b->out,
                                            sizeof b->out, &n, &b->creq[i]) != CL_OK;
        b->sum += b->out[n - 1];
    }
}

NOINLINE static void timed_unprotect_request(bench_t *b)
{
    cl_oscore_ctx_t *ctx;
    for (size_t i = 0; i < BATCH; i++) {
        size_t n = 1;
        b->bad |=
            cl_oscore_unprotect_request(cl_oscore_lookup_list, &b->lookup, b->msg[i], b->msg_len[i],
                                        b->out, sizeof b->out, &n, &ctx, &b->sreq[i]) != CL_OK;
        b->sum += b->out[n - 1];
    }
}

NOINLINE static void timed_protect_response(bench_t *b)
{
    for (size_t i = 0; i < BATCH; i++) {
        size_t n = 1;
        b->bad |= cl_oscore_protect_response(&b->server, &b->sreq[i], NULL, b->resp_plain,
                                             b->resp_plain_len, b->out, sizeof b->out, &n) != CL_OK;
        b->sum += b->out[n - 1];
    }
}

NOINLINE static void timed_unprotect_response(bench_t *b)
{
    for (size_t i = 0; i < BATCH; i++) {
        size_t n = 1;
        b->bad |= cl_oscore_unprotect_response(&b->client, &b->creq[i], b->msg[i], b->msg_len[i],
                                               b->out, sizeof b->out, &n) != CL_OK;
        b->sum += b->out[n - 1];
    }
}

static void run_batch(bench_t *b)
{
    switch (b->op) {
    case OP_CCM_ENC:
        if (b->impl == IMPL_EVP)
            timed_ccm_encrypt_evp(b);
        else
            timed_ccm_encrypt_aesni(b);
        break;
    case OP_CCM_DEC:
        if (b->impl == IMPL_EVP)
            timed_ccm_decrypt_evp(b);
        else
            timed_ccm_decrypt_aesni(b);
        break;
    case OP_PROTECT_REQ: timed_protect_request(b); break;
    case OP_UNPROTECT_REQ: timed_unprotect_request(b); break;
    case OP_PROTECT_RESP: timed_protect_response(b); break;
    case OP_UNPROTECT_RESP: timed_unprotect_response(b); break;
    case OP_COUNT: break;
    }
}

/* ------------------------------------------------------------------ */
/* Untimed preparation of a batch's inputs                             */
/* ------------------------------------------------------------------ */

static void make_nonces(bench_t *b)
{
    for (size_t i = 0; i < BATCH; i++) {
        uint64_t c = b->nonce_ctr++;
        memset(b->nonce[i], 0x5a, NONCE_LEN);
        for (int j = 0; j < 5; j++)
            b->nonce[i][NONCE_LEN - 1 - j] ^= (uint8_t)(c >> (8 * j));
    }
}

static void make_requests(bench_t *b)
{
    cl_status_t st;
    for (size_t i = 0; i < BATCH; i++) {
        st = cl_oscore_protect_request(&b->client, b->req_plain, b->req_plain_len, b->msg[i],
                                       MSG_MAX, &b->msg_len[i], &b->creq[i]);
        if (st != CL_OK)
            die("protect_request (prepare)", st);
    }
}

static void server_accept_requests(bench_t *b)
{
    cl_oscore_ctx_t *ctx;
    size_t n;
    cl_status_t st;
    for (size_t i = 0; i < BATCH; i++) {
        st =
            cl_oscore_unprotect_request(cl_oscore_lookup_list, &b->lookup, b->msg[i], b->msg_len[i],
                                        b->out, sizeof b->out, &n, &ctx, &b->sreq[i]);
        if (st != CL_OK)
            die("unprotect_request (prepare)", st);
    }
}

static void prepare_batch(bench_t *b)
{
    cl_status_t st;

    switch (b->op) {
    case OP_CCM_ENC: make_nonces(b); break;
    case OP_CCM_DEC:
        make_nonces(b);
        for (size_t i = 0; i < BATCH; i++) {
            st = cl_aesni_ccm_encrypt(&b->aesni, b->nonce[i], b->aad, AAD_LEN, b->pt, b->ccm_len,
                                      b->msg[i]);
            if (st != CL_OK)
                die("cl_aesni_ccm_encrypt (prepare)", st);
        }
        break;
    case OP_PROTECT_REQ: break;
    case OP_UNPROTECT_REQ: make_requests(b); break;
    case OP_PROTECT_RESP:
        make_requests(b);
        server_accept_requests(b);
        break;
    case OP_UNPROTECT_RESP:
        make_requests(b);
        server_accept_requests(b);
        for (size_t i = 0; i < BATCH; i++) {
            st = cl_oscore_protect_response(&b->server, &b->sreq[i], NULL, b->resp_plain,
                                            b->resp_plain_len, b->msg[i], MSG_MAX, &b->msg_len[i]);
            if (st != CL_OK)
                die("protect_response (prepare)", st);
        }
        break;
    case OP_COUNT: break;
    }
}

/* ------------------------------------------------------------------ */
/* Repetitions                                                         */
/* ------------------------------------------------------------------ */

static int is_oscore(op_t op)
{
    return op >= OP_PROTECT_REQ;
}

/* One repetition: ops/s of timed work; *allocs / *ops accumulate. */
static double run_rep(bench_t *b, double min_time, unsigned long batches, unsigned long *allocs,
                      unsigned long long *ops)
{
    double t = 0;
    unsigned long long n = 0;
    unsigned long nb = 0;

    if (is_oscore(b->op))
        contexts_init(b, b->impl);
    b->bad = 0;
    while (batches ? nb < batches : t < min_time) {
        prepare_batch(b);
        unsigned long a0 = bench_allocs;
        double t0 = now();
        run_batch(b);
        t += now() - t0;
        *allocs += bench_allocs - a0;
        n += BATCH;
        nb++;
        if (b->bad) {
            fprintf(stderr, "bench_oscore: %s (%s, %zu B) failed in a timed batch\n",
                    op_names[b->op], impl_names[b->impl], b->payload);
            exit(1);
        }
    }
    if (is_oscore(b->op))
        contexts_free(b);
    *ops += n;
    return (double)n / t;
}

/* A case of one payload size: an operation, a crypto path, the cipher length. */
typedef struct bcase {
    op_t op;
    impl_t impl;
    size_t ccm_len;
    double r[MAX_REPS];
    unsigned long allocs;
    unsigned long long ops;
} bcase_t;

static void add_case(bcase_t *cases, size_t *n, const options_t *o, op_t op, impl_t impl,
                     size_t ccm_len)
{
    if (!(o->op_mask & (1u << op)) || !(o->impl_mask & (1u << impl)))
        return;
    if (is_oscore(op) && g_broken[impl][0] != '\0')
        return;
    bcase_t *c = &cases[(*n)++];
    memset(c, 0, sizeof *c);
    c->op = op;
    c->impl = impl;
    c->ccm_len = ccm_len;
}

static void select_case(bench_t *b, const bcase_t *c)
{
    b->op = c->op;
    b->impl = c->impl;
    b->ccm_len = c->ccm_len;
}

/*
 * Runs the cases of one payload size side by side: repetition i of every
 * case runs before repetition i + 1 of any, so a change of machine load
 * during the run hits all of them alike instead of one case.
 */
static void run_cases(bench_t *b, const options_t *o, bcase_t *cases, size_t n)
{
    unsigned long warm_allocs = 0;
    unsigned long long warm_ops = 0;

    if (o->warmup > 0 && !o->batches) {
        for (size_t i = 0; i < n; i++) {
            select_case(b, &cases[i]);
            (void)run_rep(b, o->warmup, 0, &warm_allocs, &warm_ops);
        }
    }
    for (int rep = 0; rep < o->reps; rep++) {
        for (size_t i = 0; i < n; i++) {
            select_case(b, &cases[i]);
            cases[i].r[rep] = run_rep(b, o->min_time, o->batches, &cases[i].allocs, &cases[i].ops);
        }
    }
    for (size_t i = 0; i < n; i++) {
        bcase_t *c = &cases[i];
        if (g_nres == MAX_RESULTS)
            die("too many results", 1);
        qsort(c->r, (size_t)o->reps, sizeof c->r[0], bench_cmp_double);
        result_t *res = &g_res[g_nres++];
        res->payload = b->payload;
        res->op = c->op;
        res->impl = c->impl;
        res->ccm_len = c->ccm_len;
        res->min = c->r[0];
        res->max = c->r[o->reps - 1];
        res->med =
            o->reps % 2 ? c->r[o->reps / 2] : (c->r[o->reps / 2 - 1] + c->r[o->reps / 2]) / 2;
        res->allocs_per_op = (double)c->allocs / (double)c->ops;
        res->ops = c->ops;
        fprintf(stderr, "  %5zu B  %-18s %-5s %12.0f ops/s  (%.0f..%.0f)  %.2f allocs/op\n",
                b->payload, op_names[c->op], impl_names[c->impl], res->med, res->min, res->max,
                res->allocs_per_op);
    }
}

/* ------------------------------------------------------------------ */
/* Correctness checks before timing                                     */
/* ------------------------------------------------------------------ */

/* Bytes the cipher processes in a protected message: its payload minus the tag. */
static size_t ciphertext_len(const uint8_t *msg, size_t len)
{
    cl_coap_msg_t m;
    cl_status_t st = cl_coap_parse(&m, msg, len);
    if (st != CL_OK)
        die("parse protected message", st);
    return m.payload_len - TAG_LEN;
}

typedef struct sizes {
    size_t req_plain, req_prot, req_ccm, resp_plain, resp_prot, resp_ccm;
} sizes_t;

static int check_fail(impl_t impl, size_t payload, const char *what, cl_status_t st)
{
    if (g_broken[impl][0] == '\0')
        snprintf(g_broken[impl], sizeof g_broken[impl], "%s failed at %zu B (%d %s)", what, payload,
                 (int)st, cl_status_str(st));
    return 0;
}

/* One full exchange with the provider in mode impl, checked byte for byte; 1 if all good. */
static int check_oscore(bench_t *b, impl_t impl, sizes_t *s)
{
    uint8_t prot[MSG_MAX], plain[MSG_MAX];
    size_t prot_len, plain_len;
    cl_oscore_req_t creq, sreq;
    cl_oscore_ctx_t *ctx;
    cl_status_t st;
    int ok = 0;

    contexts_init(b, impl);
    if ((st = cl_oscore_protect_request(&b->client, b->req_plain, b->req_plain_len, prot,
                                        sizeof prot, &prot_len, &creq)) != CL_OK) {
        check_fail(impl, b->payload, "protect_request", st);
        goto done;
    }
    s->req_plain = b->req_plain_len;
    s->req_prot = prot_len;
    s->req_ccm = ciphertext_len(prot, prot_len);
    if ((st = cl_oscore_unprotect_request(cl_oscore_lookup_list, &b->lookup, prot, prot_len, plain,
                                          sizeof plain, &plain_len, &ctx, &sreq)) != CL_OK) {
        check_fail(impl, b->payload, "unprotect_request", st);
        goto done;
    }
    if (ctx != &b->server || plain_len != b->req_plain_len ||
        memcmp(plain, b->req_plain, plain_len) != 0) {
        check_fail(impl, b->payload, "request round trip (output differs)", CL_OK);
        goto done;
    }
    if ((st = cl_oscore_protect_response(&b->server, &sreq, NULL, b->resp_plain, b->resp_plain_len,
                                         prot, sizeof prot, &prot_len)) != CL_OK) {
        check_fail(impl, b->payload, "protect_response", st);
        goto done;
    }
    s->resp_plain = b->resp_plain_len;
    s->resp_prot = prot_len;
    s->resp_ccm = ciphertext_len(prot, prot_len);
    if ((st = cl_oscore_unprotect_response(&b->client, &creq, prot, prot_len, plain, sizeof plain,
                                           &plain_len)) != CL_OK) {
        check_fail(impl, b->payload, "unprotect_response", st);
        goto done;
    }
    if (plain_len != b->resp_plain_len || memcmp(plain, b->resp_plain, plain_len) != 0) {
        check_fail(impl, b->payload, "response round trip (output differs)", CL_OK);
        goto done;
    }
    ok = 1;
done:
    contexts_free(b);
    return ok;
}

/* Checks both provider modes and the raw ciphers; returns the message sizes. */
static sizes_t check_exchange(bench_t *b)
{
    sizes_t s = {0}, s2 = {0};
    cl_status_t st;

    int ok_fast = check_oscore(b, IMPL_AESNI, &s);
    int ok_evp = check_oscore(b, IMPL_EVP, &s2);
    if (!ok_fast && !ok_evp)
        die("OSCORE round trip in both provider modes", 1);
    if (!ok_fast)
        s = s2;
    else if (ok_evp && memcmp(&s, &s2, sizeof s) != 0)
        die("check: the two provider modes produce different message sizes", 1);

    /* The two raw ciphers must agree with each other, and decrypt must verify. */
    uint8_t c1[MSG_MAX], c2[MSG_MAX], nonce[NONCE_LEN];
    memset(nonce, 0x5a, sizeof nonce);
    if ((st = cl_aesni_ccm_encrypt(&b->aesni, nonce, b->aad, AAD_LEN, b->pt, s.req_ccm, c1)) !=
        CL_OK)
        die("check: cl_aesni_ccm_encrypt", st);
    if (!evp_encrypt(b->evp_enc, nonce, b->aad, b->pt, s.req_ccm, c2) ||
        memcmp(c1, c2, s.req_ccm + TAG_LEN) != 0)
        die("check: EVP and AES-NI ciphertexts differ", 1);
    if (!evp_decrypt(b->evp_dec, nonce, b->aad, c1, s.req_ccm, c2) ||
        memcmp(c2, b->pt, s.req_ccm) != 0)
        die("check: EVP decrypt", 1);
    if ((st = cl_aesni_ccm_decrypt(&b->aesni, nonce, b->aad, AAD_LEN, c1, s.req_ccm + TAG_LEN,
                                   c2)) != CL_OK ||
        memcmp(c2, b->pt, s.req_ccm) != 0)
        die("check: cl_aesni_ccm_decrypt", st);
    c1[0] ^= 1;
    if (cl_aesni_ccm_decrypt(&b->aesni, nonce, b->aad, AAD_LEN, c1, s.req_ccm + TAG_LEN, c2) !=
        CL_ERR_AUTH)
        die("check: tampered ciphertext accepted", 1);
    return s;
}

/* ------------------------------------------------------------------ */
/* Reporting                                                           */
/* ------------------------------------------------------------------ */

static const result_t *find_raw(size_t payload, op_t op, impl_t impl, size_t ccm_len)
{
    for (size_t i = 0; i < g_nres; i++) {
        const result_t *r = &g_res[i];
        if (r->payload == payload && r->op == op && r->impl == impl && r->ccm_len == ccm_len)
            return r;
    }
    return NULL;
}

static void fmt_rate(char *out, size_t size, double ops)
{
    if (ops >= 1e6)
        snprintf(out, size, "%.2f M", ops / 1e6);
    else
        snprintf(out, size, "%.0f k", ops / 1e3);
}

static void print_table(void)
{
    printf("| payload B | operation | crypto | cipher B | ops/s (median) | ns/op | min..max ops/s "
           "| cycles/op | allocs/op | raw cipher ns/op | OSCORE / raw | OSCORE - raw ns |\n");
    printf("|---:|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < g_nres; i++) {
        const result_t *r = &g_res[i];
        char med[32], lo[32], hi[32], raw_ns[32] = "", ratio[32] = "", over[32] = "";
        fmt_rate(med, sizeof med, r->med);
        fmt_rate(lo, sizeof lo, r->min);
        fmt_rate(hi, sizeof hi, r->max);
        if (is_oscore(r->op)) {
            op_t raw_op =
                (r->op == OP_PROTECT_REQ || r->op == OP_PROTECT_RESP) ? OP_CCM_ENC : OP_CCM_DEC;
            const result_t *raw = find_raw(r->payload, raw_op, r->impl, r->ccm_len);
            if (raw != NULL) {
                snprintf(raw_ns, sizeof raw_ns, "%.1f", 1e9 / raw->med);
                snprintf(ratio, sizeof ratio, "%.2f x", raw->med / r->med);
                snprintf(over, sizeof over, "%.1f", 1e9 / r->med - 1e9 / raw->med);
            }
        }
        char cyc[32] = "";
        if (g_ghz > 0)
            snprintf(cyc, sizeof cyc, "%.0f", g_ghz * 1e9 / r->med);
        printf("| %zu | %s | %s | %zu | %s | %.1f | %s..%s | %s | %.2f | %s | %s | %s |\n",
               r->payload, op_names[r->op], impl_names[r->impl], r->ccm_len, med, 1e9 / r->med, lo,
               hi, cyc, r->allocs_per_op, raw_ns, ratio, over);
    }
}

static void print_csv(void)
{
    printf("\ncsv,payload,operation,crypto,cipher_bytes,ops_median,ops_min,ops_max,ns_median,"
           "allocs_per_op,ops_total\n");
    for (size_t i = 0; i < g_nres; i++) {
        const result_t *r = &g_res[i];
        printf("csv,%zu,%s,%s,%zu,%.0f,%.0f,%.0f,%.2f,%.3f,%llu\n", r->payload, op_names[r->op],
               impl_names[r->impl], r->ccm_len, r->med, r->min, r->max, 1e9 / r->med,
               r->allocs_per_op, r->ops);
    }
}

/*
 * Core clock estimate: a chain of dependent register additions retires one
 * per cycle on every x86-64 core of the last decade, so adds / second is the
 * clock the benchmark actually ran at (turbo and VM included). 0 if unknown.
 */
static double estimate_ghz(void)
{
#if defined(__x86_64__)
    uint64_t x = 0;
    const long iters = 20000000; /* 16 adds each: 3.2e8 cycles */
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        for (long i = 0; i < iters; i++)
            __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                             "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                             : "+r"(x));
        double ghz = 16.0 * (double)iters / (now() - t0) / 1e9;
        if (ghz > best)
            best = ghz;
    }
    g_b.sum += x;
    return best;
#else
    return 0;
#endif
}

/* ------------------------------------------------------------------ */
/* Main                                                                */
/* ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_oscore [--min-time S] [--reps N] [--warmup S] [--sizes 6,64,...]\n"
            "                    [--cpu N|-1] [--only OP[,OP...]] [--crypto aesni|evp]\n"
            "                    [--batches N]\n"
            "  OP: ccm_encrypt ccm_decrypt protect_request unprotect_request\n"
            "      protect_response unprotect_response\n"
            "  --batches N: fixed work (N batches of %d per repetition, no warm-up),\n"
            "               for instruction counting under callgrind\n",
            BATCH);
    exit(2);
}

static unsigned parse_ops(char *s)
{
    unsigned mask = 0;
    for (char *t = strtok(s, ","); t != NULL; t = strtok(NULL, ",")) {
        int found = 0;
        for (int i = 0; i < OP_COUNT; i++) {
            if (strcmp(t, op_names[i]) == 0) {
                mask |= 1u << i;
                found = 1;
            }
        }
        if (!found)
            usage();
    }
    return mask;
}

static void parse_args(options_t *o, int argc, char **argv)
{
    o->min_time = 0.3;
    o->warmup = 0.1;
    o->reps = 5;
    o->cpu = 0;
    o->op_mask = (1u << OP_COUNT) - 1;
    o->impl_mask = (1u << IMPL_COUNT) - 1;
    const size_t def[] = {6, 64, 256, 1024};
    o->n_sizes = sizeof def / sizeof def[0];
    memcpy(o->sizes, def, sizeof def);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        char *v = argv[++i];
        if (strcmp(a, "--min-time") == 0) {
            o->min_time = atof(v);
        } else if (strcmp(a, "--warmup") == 0) {
            o->warmup = atof(v);
        } else if (strcmp(a, "--reps") == 0) {
            o->reps = atoi(v);
            if (o->reps < 1 || o->reps > MAX_REPS)
                usage();
        } else if (strcmp(a, "--cpu") == 0) {
            o->cpu = atoi(v);
        } else if (strcmp(a, "--batches") == 0) {
            o->batches = strtoul(v, NULL, 10);
        } else if (strcmp(a, "--only") == 0) {
            o->op_mask = parse_ops(v);
        } else if (strcmp(a, "--crypto") == 0) {
            if (strcmp(v, "aesni") == 0)
                o->impl_mask = 1u << IMPL_AESNI;
            else if (strcmp(v, "evp") == 0)
                o->impl_mask = 1u << IMPL_EVP;
            else
                usage();
        } else if (strcmp(a, "--sizes") == 0) {
            o->n_sizes = 0;
            for (char *t = strtok(v, ","); t != NULL; t = strtok(NULL, ",")) {
                size_t n = strtoul(t, NULL, 10);
                if (o->n_sizes == MAX_SIZES || n == 0 || n > MAX_PAYLOAD)
                    usage();
                o->sizes[o->n_sizes++] = n;
            }
        } else {
            usage();
        }
    }
    if (o->min_time <= 0 && !o->batches)
        usage();
}

int main(int argc, char **argv)
{
    options_t o = {0};
    bench_t *b = &g_b;
    char model[128], pinned[64];
    cl_status_t st;

    /* Before anything touches OpenSSL, or the hooks are refused. */
    if (!bench_count_allocations())
        die("CRYPTO_set_mem_functions", 1);
    parse_args(&o, argc, argv);

    snprintf(pinned, sizeof pinned, "not pinned");
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) == 0)
            snprintf(pinned, sizeof pinned, "pinned to CPU %d", o.cpu);
        else
            snprintf(pinned, sizeof pinned, "not pinned (%s)", strerror(errno));
    }

    if ((st = cl_crypto_openssl_new(&b->crypto[IMPL_AESNI], 0)) != CL_OK)
        die("cl_crypto_openssl_new", st);
    if ((st = cl_crypto_openssl_new(&b->crypto[IMPL_EVP], CL_CRYPTO_OPENSSL_NO_FASTPATH)) != CL_OK)
        die("cl_crypto_openssl_new(NO_FASTPATH)", st);
    if (!cl_crypto_openssl_has_fastpath(&b->crypto[IMPL_AESNI])) {
        fprintf(stderr, "bench_oscore: the AES-NI fast path is not available on this machine\n");
        return 1;
    }
    if (cl_crypto_openssl_has_fastpath(&b->crypto[IMPL_EVP]))
        die("NO_FASTPATH provider reports a fast path", 1);
    b->evp_enc = evp_ccm_new(1);
    b->evp_dec = evp_ccm_new(0);
    if ((st = cl_aesni_ccm_init(&b->aesni, ccm_key, TAG_LEN)) != CL_OK)
        die("cl_aesni_ccm_init", st);
    for (size_t i = 0; i < sizeof b->aad; i++)
        b->aad[i] = (uint8_t)(0x30 + i);
    for (size_t i = 0; i < sizeof b->pt; i++)
        b->pt[i] = (uint8_t)(i * 13 + 5);

    bench_cpu_model(model, sizeof model);
    printf("# bench_oscore\n\n");
    printf("- CPU: %s; %s\n", model, pinned);
    printf("- build: %s; compiler: %s\n", CL_BENCH_BUILD, __VERSION__);
    printf("- OpenSSL: %s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("- providers: \"%s\" (fast path %s), \"%s\" (CL_CRYPTO_OPENSSL_NO_FASTPATH)\n",
           b->crypto[IMPL_AESNI].ops->name,
           cl_crypto_openssl_has_fastpath(&b->crypto[IMPL_AESNI]) ? "on" : "off",
           b->crypto[IMPL_EVP].ops->name);
    printf("- sizeof(cl_oscore_ctx_t) = %zu bytes, sizeof(cl_oscore_req_t) = %zu, "
           "sizeof(cl_aesni_ccm_t) = %zu\n",
           sizeof(cl_oscore_ctx_t), sizeof(cl_oscore_req_t), sizeof(cl_aesni_ccm_t));
    if (o.batches)
        printf("- method: %lu batches of %d ops per repetition, %d repetition(s), no warm-up\n",
               o.batches, BATCH, o.reps);
    else
        printf("- method: batches of %d ops, only the batch timed (CLOCK_MONOTONIC); per payload "
               "size every case gets a %.2f s warm-up, then %d rounds in which each case runs "
               ">= %.2f s of timed work (cases interleaved round by round); median, min..max "
               "over the rounds\n",
               BATCH, o.warmup, o.reps, o.min_time);
    printf("- AES-CCM-16-64-128, 1-byte Sender IDs, 3-byte Partial IVs, %d-byte AAD for the raw "
           "cipher\n\n",
           AAD_LEN);

    /* Message sizes first (also proves every path round-trips before timing). */
    sizes_t sz[MAX_SIZES];
    for (size_t s = 0; s < o.n_sizes; s++) {
        b->payload = o.sizes[s];
        build_messages(b, b->payload);
        sz[s] = check_exchange(b);
    }
    printf("| payload B | request plain/protected B | request cipher B | "
           "response plain/protected B | response cipher B |\n");
    printf("|---:|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < o.n_sizes; s++)
        printf("| %zu | %zu / %zu | %zu | %zu / %zu | %zu |\n", o.sizes[s], sz[s].req_plain,
               sz[s].req_prot, sz[s].req_ccm, sz[s].resp_plain, sz[s].resp_prot, sz[s].resp_ccm);
    printf("\n");
    for (int impl = 0; impl < IMPL_COUNT; impl++)
        if (g_broken[impl][0] != '\0')
            printf("**WARNING: crypto %s: OSCORE %s; its OSCORE cases are skipped.**\n\n",
                   impl_names[impl], g_broken[impl]);
    fflush(stdout);

    /* Also wakes the core up before the first case. */
    if (!o.batches) {
        g_ghz = estimate_ghz();
        if (g_ghz > 0)
            printf("- core clock while running (dependent-add chain): %.2f GHz; cycles/op below "
                   "= ns/op x this\n\n",
                   g_ghz);
    }

    for (size_t s = 0; s < o.n_sizes; s++) {
        b->payload = o.sizes[s];
        build_messages(b, b->payload);
        bcase_t cases[32];
        size_t n = 0;
        for (int impl = 0; impl < IMPL_COUNT; impl++) {
            add_case(cases, &n, &o, OP_CCM_ENC, (impl_t)impl, sz[s].req_ccm);
            add_case(cases, &n, &o, OP_CCM_DEC, (impl_t)impl, sz[s].req_ccm);
            if (sz[s].resp_ccm != sz[s].req_ccm) {
                add_case(cases, &n, &o, OP_CCM_ENC, (impl_t)impl, sz[s].resp_ccm);
                add_case(cases, &n, &o, OP_CCM_DEC, (impl_t)impl, sz[s].resp_ccm);
            }
        }
        for (op_t op = OP_PROTECT_REQ; op < OP_COUNT; op++) {
            size_t ccm =
                (op == OP_PROTECT_REQ || op == OP_UNPROTECT_REQ) ? sz[s].req_ccm : sz[s].resp_ccm;
            for (int impl = 0; impl < IMPL_COUNT; impl++)
                add_case(cases, &n, &o, op, (impl_t)impl, ccm);
        }
        run_cases(b, &o, cases, n);
    }

    if (!o.batches && g_ghz > 0)
        printf("- core clock after the run: %.2f GHz\n\n", estimate_ghz());
    print_table();
    print_csv();
    printf("\nchecksum %016llx\n", (unsigned long long)b->sum);

    EVP_CIPHER_CTX_free(b->evp_enc);
    EVP_CIPHER_CTX_free(b->evp_dec);
    cl_aesni_ccm_clear(&b->aesni);
    cl_crypto_openssl_free(&b->crypto[IMPL_AESNI]);
    cl_crypto_openssl_free(&b->crypto[IMPL_EVP]);
    return 0;
}
