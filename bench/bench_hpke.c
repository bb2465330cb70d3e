/*
 * bench_hpke.c - HPKE (RFC 9180, lib/hpke.c) single-shot seal and open per
 * second for 64-byte plaintexts, per suite, next to a raw baseline through
 * the same provider in the same run.
 *
 * What is timed (one operation = one 64-byte message, 16-byte AAD):
 *
 *   seal_once   cl_hpke_seal_once: ephemeral key generation, ECDH with pkR
 *               (auth: and with skS), the labeled HKDF key schedule, AEAD key
 *               import, encryption, key destruction
 *   open_once   cl_hpke_open_once: pkRm export, ECDH with enc (auth: and
 *               with pkS), key schedule, import, decryption, destruction
 *   ctx_seal    cl_hpke_seal on an established context (per message cost)
 *   ctx_open    cl_hpke_open on an established context
 *   raw_seal    the baseline, the same provider called directly with no KDF:
 *               key_generate (ephemeral, public key out), ecdh with pkR,
 *               aead_import of the first Nk bytes of the DH output,
 *               aead_encrypt, two key_destroy
 *   raw_open    ecdh with the ephemeral public key, aead_import,
 *               aead_decrypt, key_destroy
 *
 * for the suites DHKEM(P-256) and DHKEM(X25519) with HKDF-SHA256 and
 * AES-128-GCM or ChaCha20-Poly1305, modes base and auth; the raw baseline
 * per KEM with AES-128-GCM (and ChaCha20-Poly1305 alongside). "HPKE / raw"
 * is the baseline's time over HPKE's: what HPKE's key schedule and checks
 * cost on top of the ECDH-and-AEAD core any hybrid scheme pays.
 *
 * Method: work in batches of BATCH operations, only the batch timed
 * (CLOCK_MONOTONIC); what a batch consumes (ciphertexts and encs to open,
 * contexts) is made untimed before it. Each case gets a warm-up, then the
 * cases run round by round (--reps rounds of >= --min-time seconds of timed
 * work each), so load changes hit every case alike; the median and
 * min..max over rounds are reported. Before timing, every suite and mode
 * round-trips and the raw baseline decrypts. Allocations inside OpenSSL
 * during timed batches are counted (allocs/op); lib/ has no heap.
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

#include "bench_common.h"
#include "cloister/crypto.h"
#include "cloister/crypto_openssl.h"
#include "cloister/hpke.h"

#ifndef CL_BENCH_BUILD
#define CL_BENCH_BUILD "unknown build"
#endif

#define BATCH 64
#define PT_LEN 64
#define AAD_LEN 16
#define CT_LEN (PT_LEN + CL_HPKE_TAG_LEN)
#define MAX_REPS 64
#define MAX_CASES 64

typedef enum op {
    OP_SEAL_ONCE,
    OP_OPEN_ONCE,
    OP_CTX_SEAL,
    OP_CTX_OPEN,
    OP_RAW_SEAL,
    OP_RAW_OPEN,
} op_t;

static const char *const op_names[] = {"seal_once", "open_once", "ctx_seal",
                                       "ctx_open",  "raw_seal",  "raw_open"};

typedef struct kcase {
    char id[48];
    op_t op;
    uint16_t kem, aead;
    uint8_t mode;
    double ns[MAX_REPS];
    double allocs;
    unsigned long long ops;
} kcase_t;

typedef struct options {
    double min_time, warmup;
    int reps, cpu;
    const char *only;
} options_t;

static cl_crypto_t g_c;
static cl_key_t g_sk_r[2], g_sk_s[2]; /* [0] P-256, [1] X25519 */
static uint8_t g_pk_r[2][CL_PUB_MAX], g_pk_s[2][CL_PUB_MAX];
static size_t g_pk_len[2];
static uint8_t g_pt[PT_LEN], g_aad[AAD_LEN];
static const uint8_t g_info[] = "cloister kv stream 0001";

/* Per-batch inputs (made untimed). */
static uint8_t g_enc[BATCH][CL_HPKE_MAX_ENC];
static uint8_t g_ct[BATCH][CT_LEN];
static size_t g_ct_len[BATCH];
static uint8_t g_out[CT_LEN];
static cl_hpke_ctx_t g_ctx_s, g_ctx_r;
static uint64_t g_sum; /* consumes outputs */
static int g_bad;

static kcase_t g_cases[MAX_CASES];
static size_t g_ncases;

static void die(const char *what, int st)
{
    fprintf(stderr, "bench_hpke: %s failed (%d %s)\n", what, st,
            st <= 0 ? cl_status_str((cl_status_t)st) : "");
    exit(1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int ki(uint16_t kem)
{
    return kem == CL_HPKE_KEM_P256_SHA256 ? 0 : 1;
}

static cl_key_type_t ktype(uint16_t kem)
{
    return kem == CL_HPKE_KEM_P256_SHA256 ? CL_KEY_P256 : CL_KEY_X25519;
}

static cl_aead_alg_t aalg(uint16_t aead)
{
    return aead == CL_HPKE_AEAD_AES_128_GCM ? CL_AEAD_A128GCM : CL_AEAD_CHACHA20_POLY1305;
}

static const char *kem_name(uint16_t kem)
{
    return kem == CL_HPKE_KEM_P256_SHA256 ? "P-256" : "X25519";
}

static const char *aead_name(uint16_t aead)
{
    return aead == CL_HPKE_AEAD_AES_128_GCM ? "AES-128-GCM" : "ChaCha20-Poly1305";
}

static cl_hpke_params_t params(uint16_t kem, uint16_t aead, uint8_t mode)
{
    cl_hpke_params_t p;

    memset(&p, 0, sizeof p);
    p.suite.kem_id = kem;
    p.suite.kdf_id = CL_HPKE_KDF_HKDF_SHA256;
    p.suite.aead_id = aead;
    p.mode = mode;
    p.info = g_info;
    p.info_len = sizeof g_info - 1;
    if (mode == CL_HPKE_MODE_AUTH) {
        p.sender_key = g_sk_s[ki(kem)];
        p.sender_pub = g_pk_s[ki(kem)];
        p.sender_pub_len = g_pk_len[ki(kem)];
    }
    return p;
}

/* ------------------------------------------------------ raw baseline */

static cl_status_t raw_seal(uint16_t kem, uint16_t aead, uint8_t *epk, uint8_t *ct, size_t *ct_len)
{
    const cl_crypto_t *c = &g_c;
    static const uint8_t nonce[12];
    cl_key_t e = CL_KEY_NONE, k = CL_KEY_NONE;
    uint8_t z[CL_ECDH_MAX];
    size_t l = 0, zl = 0, nk = aead == CL_HPKE_AEAD_AES_128_GCM ? 16 : 32;
    cl_status_t rc;

    rc = c->ops->key_generate(c->self, ktype(kem), CL_KEY_USAGE_ECDH, &e, epk, CL_HPKE_MAX_ENC, &l);
    if (rc == CL_OK)
        rc = c->ops->ecdh(c->self, e, g_pk_r[ki(kem)], g_pk_len[ki(kem)], z, sizeof z, &zl);
    if (rc == CL_OK)
        rc = cl_aead_import(c, aalg(aead), z, nk, &k);
    if (rc == CL_OK)
        rc = cl_aead_encrypt(c, k, nonce, 12, g_aad, AAD_LEN, g_pt, PT_LEN, ct, CT_LEN, ct_len);
    cl_key_destroy(c, k);
    cl_key_destroy(c, e);
    cl_wipe(z, sizeof z);
    return rc;
}

static cl_status_t raw_open(uint16_t kem, uint16_t aead, const uint8_t *epk, const uint8_t *ct,
                            size_t ct_len, uint8_t *pt, size_t *pt_len)
{
    const cl_crypto_t *c = &g_c;
    static const uint8_t nonce[12];
    cl_key_t k = CL_KEY_NONE;
    uint8_t z[CL_ECDH_MAX];
    size_t zl = 0, nk = aead == CL_HPKE_AEAD_AES_128_GCM ? 16 : 32;
    cl_status_t rc;

    rc = c->ops->ecdh(c->self, g_sk_r[ki(kem)], epk, g_pk_len[ki(kem)], z, sizeof z, &zl);
    if (rc == CL_OK)
        rc = cl_aead_import(c, aalg(aead), z, nk, &k);
    if (rc == CL_OK)
        rc = cl_aead_decrypt(c, k, nonce, 12, g_aad, AAD_LEN, ct, ct_len, pt, PT_LEN, pt_len);
    cl_key_destroy(c, k);
    cl_wipe(z, sizeof z);
    return rc;
}

/* ------------------------------------------------------------- cases */

/* Makes what one batch of `c` consumes (untimed). */
static void prepare(const kcase_t *c)
{
    cl_hpke_params_t p = params(c->kem, c->aead, c->mode);
    size_t el = 0;
    cl_status_t rc;

    switch (c->op) {
    case OP_OPEN_ONCE:
        for (int i = 0; i < BATCH; i++) {
            rc = cl_hpke_seal_once(&g_c, &p, g_pk_r[ki(c->kem)], g_pk_len[ki(c->kem)], g_aad,
                                   AAD_LEN, g_pt, PT_LEN, g_enc[i], sizeof g_enc[i], &el, g_ct[i],
                                   CT_LEN, &g_ct_len[i]);
            if (rc != CL_OK)
                die("seal_once (prepare)", rc);
        }
        break;
    case OP_RAW_OPEN:
        for (int i = 0; i < BATCH; i++)
            if ((rc = raw_seal(c->kem, c->aead, g_enc[i], g_ct[i], &g_ct_len[i])) != CL_OK)
                die("raw_seal (prepare)", rc);
        break;
    case OP_CTX_SEAL:
    case OP_CTX_OPEN:
        cl_hpke_ctx_free(&g_ctx_s);
        cl_hpke_ctx_free(&g_ctx_r);
        if ((rc = cl_hpke_setup_s(&g_ctx_s, &g_c, &p, g_pk_r[ki(c->kem)], g_pk_len[ki(c->kem)],
                                  g_enc[0], sizeof g_enc[0], &el)) != CL_OK)
            die("setup_s (prepare)", rc);
        if ((rc = cl_hpke_setup_r(&g_ctx_r, &g_c, &p, g_sk_r[ki(c->kem)], g_enc[0], el)) != CL_OK)
            die("setup_r (prepare)", rc);
        if (c->op == OP_CTX_OPEN) {
            for (int i = 0; i < BATCH; i++)
                if ((rc = cl_hpke_seal(&g_ctx_s, g_aad, AAD_LEN, g_pt, PT_LEN, g_ct[i], CT_LEN,
                                       &g_ct_len[i])) != CL_OK)
                    die("seal (prepare)", rc);
        }
        break;
    default: break;
    }
}

/* Runs one batch of `c`; returns its duration in seconds. */
static double run_batch(const kcase_t *c)
{
    cl_hpke_params_t p = params(c->kem, c->aead, c->mode);
    const uint8_t *pk = g_pk_r[ki(c->kem)];
    size_t pk_len = g_pk_len[ki(c->kem)], el = 0, l = 0;
    cl_key_t sk = g_sk_r[ki(c->kem)];
    uint8_t enc[CL_HPKE_MAX_ENC];
    double t0, t1;
    int bad = 0;

    t0 = now();
    switch (c->op) {
    case OP_SEAL_ONCE:
        for (int i = 0; i < BATCH; i++) {
            bad |= cl_hpke_seal_once(&g_c, &p, pk, pk_len, g_aad, AAD_LEN, g_pt, PT_LEN, enc,
                                     sizeof enc, &el, g_out, CT_LEN, &l) != CL_OK;
            g_sum += g_out[i & 15] + enc[1];
        }
        break;
    case OP_OPEN_ONCE:
        for (int i = 0; i < BATCH; i++) {
            bad |=
                cl_hpke_open_once(&g_c, &p, sk, g_enc[i], cl_hpke_enc_len(c->kem), g_aad, AAD_LEN,
                                  g_ct[i], g_ct_len[i], g_out, sizeof g_out, &l) != CL_OK;
            g_sum += g_out[i & 15];
        }
        break;
    case OP_CTX_SEAL:
        for (int i = 0; i < BATCH; i++) {
            bad |= cl_hpke_seal(&g_ctx_s, g_aad, AAD_LEN, g_pt, PT_LEN, g_out, CT_LEN, &l) != CL_OK;
            g_sum += g_out[i & 15];
        }
        break;
    case OP_CTX_OPEN:
        for (int i = 0; i < BATCH; i++) {
            bad |= cl_hpke_open(&g_ctx_r, g_aad, AAD_LEN, g_ct[i], g_ct_len[i], g_out, sizeof g_out,
                                &l) != CL_OK;
            g_sum += g_out[i & 15];
        }
        break;
    case OP_RAW_SEAL:
        for (int i = 0; i < BATCH; i++) {
            bad |= raw_seal(c->kem, c->aead, enc, g_out, &l) != CL_OK;
            g_sum += g_out[i & 15] + enc[1];
        }
        break;
    case OP_RAW_OPEN:
        for (int i = 0; i < BATCH; i++) {
            bad |= raw_open(c->kem, c->aead, g_enc[i], g_ct[i], g_ct_len[i], g_out, &l) != CL_OK;
            g_sum += g_out[i & 15];
        }
        break;
    }
    t1 = now();
    g_bad |= bad;
    return t1 - t0;
}

/* Timed work of at least `min_time` seconds; returns ns/op and adds allocations to *allocs. */
static double measure(const kcase_t *c, double min_time, unsigned long long *allocs,
                      unsigned long long *ops)
{
    double t = 0;
    unsigned long long n = 0, a0;

    do {
        prepare(c);
        a0 = bench_allocs;
        t += run_batch(c);
        *allocs += bench_allocs - a0;
        n += BATCH;
    } while (t < min_time);
    *ops += n;
    return t * 1e9 / (double)n;
}

static void add_case(const options_t *o, op_t op, uint16_t kem, uint16_t aead, uint8_t mode)
{
    kcase_t *c;
    char id[48];

    snprintf(id, sizeof id, "%s_%s_%s%s", op_names[op],
             kem == CL_HPKE_KEM_P256_SHA256 ? "p256" : "x25519",
             aead == CL_HPKE_AEAD_AES_128_GCM ? "gcm" : "chacha",
             op == OP_RAW_SEAL || op == OP_RAW_OPEN ? ""
             : mode == CL_HPKE_MODE_AUTH            ? "_auth"
                                                    : "_base");
    if (o->only != NULL) {
        char buf[256];
        int hit = 0;
        snprintf(buf, sizeof buf, "%s", o->only);
        for (char *t = strtok(buf, ","); t != NULL; t = strtok(NULL, ","))
            if (strncmp(id, t, strlen(t)) == 0)
                hit = 1;
        if (!hit)
            return;
    }
    if (g_ncases == MAX_CASES)
        die("too many cases", 0);
    c = &g_cases[g_ncases++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->op = op;
    c->kem = kem;
    c->aead = aead;
    c->mode = mode;
}

static double median(const double *v, int n)
{
    double s[MAX_REPS];

    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static const kcase_t *find(op_t op, uint16_t kem, uint16_t aead, uint8_t mode)
{
    for (size_t i = 0; i < g_ncases; i++) {
        const kcase_t *c = &g_cases[i];
        if (c->op == op && c->kem == kem && c->aead == aead &&
            (op == OP_RAW_SEAL || op == OP_RAW_OPEN || c->mode == mode))
            return c;
    }
    return NULL;
}

/* ----------------------------------------------------------- checks */

static void self_check(void)
{
    static const uint16_t kems[2] = {CL_HPKE_KEM_P256_SHA256, CL_HPKE_KEM_X25519_SHA256};
    static const uint16_t aeads[2] = {CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_AEAD_CHACHA20_POLY1305};
    uint8_t enc[CL_HPKE_MAX_ENC], ct[CT_LEN], pt[PT_LEN];
    size_t el = 0, l = 0, pl = 0;
    cl_status_t rc;

    for (int k = 0; k < 2; k++) {
        for (int a = 0; a < 2; a++) {
            for (uint8_t m = 0; m <= CL_HPKE_MODE_AUTH; m += CL_HPKE_MODE_AUTH) {
                cl_hpke_params_t p = params(kems[k], aeads[a], m);
                if ((rc = cl_hpke_seal_once(&g_c, &p, g_pk_r[k], g_pk_len[k], g_aad, AAD_LEN, g_pt,
                                            PT_LEN, enc, sizeof enc, &el, ct, sizeof ct, &l)) !=
                        CL_OK ||
                    (rc = cl_hpke_open_once(&g_c, &p, g_sk_r[k], enc, el, g_aad, AAD_LEN, ct, l, pt,
                                            sizeof pt, &pl)) != CL_OK)
                    die("HPKE round trip", rc);
                if (pl != PT_LEN || memcmp(pt, g_pt, PT_LEN) != 0)
                    die("HPKE round trip (plaintext)", 0);
                ct[0] ^= 1;
                if (cl_hpke_open_once(&g_c, &p, g_sk_r[k], enc, el, g_aad, AAD_LEN, ct, l, pt,
                                      sizeof pt, &pl) != CL_ERR_AUTH)
                    die("HPKE tampered ciphertext accepted", 0);
            }
            if ((rc = raw_seal(kems[k], aeads[a], enc, ct, &l)) != CL_OK ||
                (rc = raw_open(kems[k], aeads[a], enc, ct, l, pt, &pl)) != CL_OK)
                die("raw round trip", rc);
            if (pl != PT_LEN || memcmp(pt, g_pt, PT_LEN) != 0)
                die("raw round trip (plaintext)", 0);
        }
    }
}

/* ---------------------------------------------------------- options */

static void usage(void)
{
    printf("usage: bench_hpke [--min-time S] [--reps N] [--warmup S] [--cpu N] [--only ID,...]\n"
           "  --min-time S  timed work per case and round (default 0.3)\n"
           "  --reps N      rounds (default 5, at most %d)\n"
           "  --warmup S    untimed work per case before the rounds (default 0.1)\n"
           "  --cpu N       pin to CPU N (default 0; -1: no pinning)\n"
           "  --only IDS    case id prefixes, e.g. seal_once_p256,raw_\n",
           MAX_REPS);
}

static void parse(int argc, char **argv, options_t *o)
{
    o->min_time = 0.3;
    o->warmup = 0.1;
    o->reps = 5;
    o->cpu = 0;
    o->only = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            exit(0);
        }
        if (v == NULL) {
            usage();
            exit(2);
        }
        if (strcmp(a, "--min-time") == 0)
            o->min_time = atof(v);
        else if (strcmp(a, "--reps") == 0)
            o->reps = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            o->warmup = atof(v);
        else if (strcmp(a, "--cpu") == 0)
            o->cpu = atoi(v);
        else if (strcmp(a, "--only") == 0)
            o->only = v;
        else {
            usage();
            exit(2);
        }
    }
    if (o->reps < 1 || o->reps > MAX_REPS || o->min_time <= 0) {
        usage();
        exit(2);
    }
}

/* ------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    static const uint16_t kems[2] = {CL_HPKE_KEM_P256_SHA256, CL_HPKE_KEM_X25519_SHA256};
    static const uint16_t aeads[2] = {CL_HPKE_AEAD_AES_128_GCM, CL_HPKE_AEAD_CHACHA20_POLY1305};
    options_t o;
    char cpu[128];
    int counting;
    cl_status_t rc;

    parse(argc, argv, &o);
    counting = bench_count_allocations();
    if (o.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0)
            fprintf(stderr, "bench_hpke: cannot pin to CPU %d (%s); running unpinned\n", o.cpu,
                    strerror(errno));
    }
    if ((rc = cl_crypto_openssl_new(&g_c, 0)) != CL_OK)
        die("cl_crypto_openssl_new", rc);
    for (int k = 0; k < 2; k++) {
        size_t l = 0;
        if ((rc = g_c.ops->key_generate(g_c.self, ktype(kems[k]), CL_KEY_USAGE_ECDH, &g_sk_r[k],
                                        g_pk_r[k], CL_PUB_MAX, &g_pk_len[k])) != CL_OK ||
            (rc = g_c.ops->key_generate(g_c.self, ktype(kems[k]), CL_KEY_USAGE_ECDH, &g_sk_s[k],
                                        g_pk_s[k], CL_PUB_MAX, &l)) != CL_OK)
            die("key_generate", rc);
    }
    for (size_t i = 0; i < PT_LEN; i++)
        g_pt[i] = (uint8_t)(i * 13 + 1);
    memcpy(g_aad, "meter-0042/2026.", AAD_LEN);
    self_check();

    for (int k = 0; k < 2; k++) {
        for (int a = 0; a < 2; a++) {
            for (uint8_t m = 0; m <= CL_HPKE_MODE_AUTH; m += CL_HPKE_MODE_AUTH) {
                add_case(&o, OP_SEAL_ONCE, kems[k], aeads[a], m);
                add_case(&o, OP_OPEN_ONCE, kems[k], aeads[a], m);
            }
            add_case(&o, OP_CTX_SEAL, kems[k], aeads[a], CL_HPKE_MODE_BASE);
            add_case(&o, OP_CTX_OPEN, kems[k], aeads[a], CL_HPKE_MODE_BASE);
            add_case(&o, OP_RAW_SEAL, kems[k], aeads[a], CL_HPKE_MODE_BASE);
            add_case(&o, OP_RAW_OPEN, kems[k], aeads[a], CL_HPKE_MODE_BASE);
        }
    }

    /* Warm-up, then the rounds: every case once per round. */
    for (size_t i = 0; i < g_ncases; i++) {
        unsigned long long a = 0, n = 0;
        (void)measure(&g_cases[i], o.warmup, &a, &n);
    }
    for (int r = 0; r < o.reps; r++) {
        for (size_t i = 0; i < g_ncases; i++) {
            kcase_t *c = &g_cases[i];
            unsigned long long a = 0, n = 0;
            c->ns[r] = measure(c, o.min_time, &a, &n);
            c->allocs += (double)a;
            c->ops += n;
        }
    }
    if (g_bad)
        die("an operation in a timed batch", 0);

    bench_cpu_model(cpu, sizeof cpu);
    printf("# HPKE (RFC 9180) single-shot seal / open, 64-byte plaintext, 16-byte AAD\n\n");
    printf("CPU: %s; pinned to CPU %d; %s; provider %s; %s\n", cpu, o.cpu,
           OpenSSL_version(OPENSSL_VERSION), g_c.ops->name, CL_BENCH_BUILD);
    printf("Rounds: %d x >= %.2f s timed work per case, batches of %d, warm-up %.2f s; "
           "median (min..max) over rounds. Allocation counting: %s. Checksum %llu.\n\n",
           o.reps, o.min_time, BATCH, o.warmup, counting ? "on" : "off (refused)",
           (unsigned long long)g_sum);
    printf("| case | suite | mode | ops/s | us/op | min..max ops/s | allocs/op |\n");
    printf("|---|---|---|---:|---:|---|---:|\n");
    for (size_t i = 0; i < g_ncases; i++) {
        const kcase_t *c = &g_cases[i];
        double m = median(c->ns, o.reps), lo = c->ns[0], hi = c->ns[0];
        char suite[48];
        for (int r = 1; r < o.reps; r++) {
            lo = c->ns[r] < lo ? c->ns[r] : lo;
            hi = c->ns[r] > hi ? c->ns[r] : hi;
        }
        snprintf(suite, sizeof suite, "%s / %s", kem_name(c->kem), aead_name(c->aead));
        printf("| %s | %s | %s | %.0f | %.2f | %.0f..%.0f | %.1f |\n", op_names[c->op], suite,
               c->op == OP_RAW_SEAL || c->op == OP_RAW_OPEN ? "raw"
               : c->mode == CL_HPKE_MODE_AUTH               ? "auth"
                                                            : "base",
               1e9 / m, m / 1e3, 1e9 / hi, 1e9 / lo, c->ops ? c->allocs / (double)c->ops : 0.0);
    }

    printf("\n## HPKE against the raw baseline (same provider, same run)\n\n");
    printf("raw = ECDH + AEAD with the DH output as key (no KDF); HPKE / raw = raw time / HPKE "
           "time. The AES-128-GCM baseline is the reference; ChaCha20-Poly1305 rows use the raw "
           "ECDH + ChaCha20-Poly1305 of the same KEM.\n\n");
    printf("| suite | mode | seal_once/s | raw seal/s | HPKE/raw | open_once/s | raw open/s | "
           "HPKE/raw | ctx seal/s | ctx open/s |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < 2; k++) {
        for (int a = 0; a < 2; a++) {
            const kcase_t *rs = find(OP_RAW_SEAL, kems[k], aeads[a], 0);
            const kcase_t *ro = find(OP_RAW_OPEN, kems[k], aeads[a], 0);
            const kcase_t *cs = find(OP_CTX_SEAL, kems[k], aeads[a], 0);
            const kcase_t *co = find(OP_CTX_OPEN, kems[k], aeads[a], 0);
            for (uint8_t m = 0; m <= CL_HPKE_MODE_AUTH; m += CL_HPKE_MODE_AUTH) {
                const kcase_t *s = find(OP_SEAL_ONCE, kems[k], aeads[a], m);
                const kcase_t *op = find(OP_OPEN_ONCE, kems[k], aeads[a], m);
                double vs, vo, vrs, vro;
                if (s == NULL || op == NULL || rs == NULL || ro == NULL)
                    continue;
                vs = median(s->ns, o.reps);
                vo = median(op->ns, o.reps);
                vrs = median(rs->ns, o.reps);
                vro = median(ro->ns, o.reps);
                printf("| %s / %s | %s | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f |",
                       kem_name(kems[k]), aead_name(aeads[a]),
                       m == CL_HPKE_MODE_AUTH ? "auth" : "base", 1e9 / vs, 1e9 / vrs, vrs / vs,
                       1e9 / vo, 1e9 / vro, vro / vo);
                if (cs != NULL && co != NULL)
                    printf(" %.0f | %.0f |\n", 1e9 / median(cs->ns, o.reps),
                           1e9 / median(co->ns, o.reps));
                else
                    printf(" | |\n");
            }
        }
    }
    printf("\n");

    cl_hpke_ctx_free(&g_ctx_s);
    cl_hpke_ctx_free(&g_ctx_r);
    for (int k = 0; k < 2; k++) {
        cl_key_destroy(&g_c, g_sk_r[k]);
        cl_key_destroy(&g_c, g_sk_s[k]);
    }
    cl_crypto_openssl_free(&g_c);
    return 0;
}
