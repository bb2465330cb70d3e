/*
 * fuzz_core_requests.c - libFuzzer harness for the whole trusted core behind
 * its ecall API (include/cloister/core.h): arbitrary transport messages in
 * a handle() batch, as a hostile network peer (through an honest host)
 * would send them.
 *
 * The core library is linked statically (cl_core_ecall_table()), with a
 * simulated platform (sim_fuzz_common.h) and the in-memory honest host of
 * the tests (tests/support/lying_host.h, no lies) whose quote hook wraps
 * cl_sim_qe_quote, so GET /attestation builds real evidence. Two cores are
 * opened once per process:
 *   core 0  fresh: /pki/owner and /pki/provision parse what the input sends
 *           (an input carrying a valid self-signed root may claim it; it
 *           then stays claimed for the rest of the process);
 *   core 1  claimed and provisioned at setup by a harness owner (its own
 *           P-256 root; the core's CA and identity certificates signed by
 *           it), so POST /.well-known/edhoc runs the EDHOC responder.
 *
 * Input: byte 0 = flags: bits 0-2 number of messages - 1 (1..8), bit 3
 * advance the host clock by 61 s and tick() first (expires half-open EDHOC
 * sessions), bits 4-5 the transport id echoed, bit 7 which core. Then the
 * messages: each but the last is a 2-byte big-endian length (clipped to what
 * is left) and the CoAP bytes; the last one is the rest of the input.
 *
 * Invariants checked with abort():
 * - handle() of a valid batch succeeds; the output validates with
 *   cl_batch_validate, has one item per input message, in order, with the
 *   peer and transport echoed, flags 0 and len <= CL_CORE_MAX_MESSAGE;
 * - an answer is a CoAP response (class 2..5) carrying the request's token;
 *   what does not parse as a CoAP request gets no answer;
 * - the raw input handed to handle() as a batch is refused unless it is a
 *   valid batch (then the output has as many items).
 * Sessions are bounded (max_sessions 32), the evidence cache holds 4 nonces,
 * so a long run does not grow.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/core.h"
#include "cloister/crypto.h"
#include "cloister/crypto_openssl.h"
#include "lying_host.h"
#include "pki.h"
#include "sim_fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define MAX_MSGS 8
#define CORES 2

typedef struct world {
    const cl_core_ecalls_t *ec;
    lh_t *lh[CORES];
    cl_core_handle_t core[CORES];
    uint8_t *out;
    cl_crypto_t crypto; /* the owner's key */
    cl_key_t owner_key;
    uint8_t owner_pub[65];
    int64_t now[CORES]; /* the host clock of each core */
} world_t;

static world_t g;

static cl_status_t quote_fn(void *arg, const uint8_t *report, size_t report_len, uint8_t *quote,
                            size_t qsize, size_t *len)
{
    return cl_sim_qe_quote(arg, report, report_len, quote, qsize, len);
}

static cl_status_t owner_sign(void *arg, const uint8_t *tbs, size_t tbs_len, uint8_t sig[64])
{
    world_t *w = arg;
    size_t n = 0;
    cl_status_t st = w->crypto.ops->sign(w->crypto.self, w->owner_key, CL_SIG_ES256, tbs, tbs_len,
                                         sig, 64, &n);
    return st == CL_OK && n == 64 ? CL_OK : CL_ERR_CRYPTO;
}

static bool map_bstr(const uint8_t *p, size_t len, const char *key, const uint8_t **v, size_t *vl)
{
    cl_cbor_dec_t d;
    size_t n;
    cl_cbor_dec_init(&d, p, len);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            return false;
        if (kl == strlen(key) && memcmp(k, key, kl) == 0)
            return cl_cbor_dec_bstr(&d, v, vl) == CL_OK;
        if (cl_cbor_dec_skip(&d) != CL_OK)
            return false;
    }
    return false;
}

/* One CON POST to `path` with a CBOR body through handle(); returns the response code. */
static uint8_t post(cl_core_handle_t core, const char *path, const uint8_t *body, size_t body_len)
{
    static uint8_t msg[CL_CORE_MAX_MESSAGE], batch[CL_CORE_MAX_MESSAGE + 64];
    cl_coap_builder_t b;
    size_t len, blen, out_len, count, pos = 0;
    cl_batch_item_t it;
    cl_coap_msg_t resp;

    cl_coap_build_init(&b, msg, sizeof msg, CL_COAP_CON, CL_COAP_POST, 0x1234,
                       (const uint8_t *)"tk", 2);
    const char *seg = path + 1, *end;
    while ((end = strchr(seg, '/')) != NULL) {
        CHECK(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)seg,
                                   (size_t)(end - seg)) == CL_OK);
        seg = end + 1;
    }
    CHECK(cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)seg, strlen(seg)) ==
          CL_OK);
    CHECK(cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR) == CL_OK);
    CHECK(cl_coap_build_payload(&b, body, body_len) == CL_OK);
    CHECK(cl_coap_build_finish(&b, &len) == CL_OK);
    cl_batch_item_t in = {.peer = 99, .transport = CL_TRANSPORT_LOCAL, .msg = msg, .len = len};
    CHECK(cl_batch_begin(batch, sizeof batch, &blen) == CL_OK);
    CHECK(cl_batch_add(batch, sizeof batch, &blen, &in) == CL_OK);
    CHECK(g.ec->handle(core, batch, blen, g.out, CL_CORE_MAX_BATCH_BYTES, &out_len) == CL_OK);
    CHECK(cl_batch_validate(g.out, out_len, &count) == CL_OK && count == 1);
    CHECK(cl_batch_next(g.out, out_len, &pos, &it) == CL_OK);
    CHECK(cl_coap_parse(&resp, it.msg, it.len) == CL_OK);
    return resp.code;
}

static void enc_map2(uint8_t *out, size_t size, size_t *len, const char *k1, const uint8_t *v1,
                     size_t l1, const char *k2, const uint8_t *v2, size_t l2)
{
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, out, size);
    (void)cl_cbor_enc_map(&e, k2 != NULL ? 2 : 1);
    (void)cl_cbor_enc_tstr_z(&e, k1);
    (void)cl_cbor_enc_bstr(&e, v1, l1);
    if (k2 != NULL) {
        (void)cl_cbor_enc_tstr_z(&e, k2);
        (void)cl_cbor_enc_bstr(&e, v2, l2);
    }
    CHECK(cl_cbor_enc_finish(&e, len) == CL_OK);
}

/* Claims and provisions core 1 with the harness owner. */
static void provision(cl_core_handle_t core)
{
    static uint8_t ev[CL_CORE_MAX_EVIDENCE], owner[2048], ca[2048], id[2048], body[4600];
    uint8_t nonce[32];
    size_t ev_len = 0, owner_len, ca_len, id_len, body_len, n = 0;
    const uint8_t *id_pub, *ca_pub;
    size_t l1, l2;
    const int64_t now = LH_DEFAULT_TIME_MS / 1000;

    memset(nonce, 0x5a, sizeof nonce);
    CHECK(g.ec->attest(core, nonce, sizeof nonce, ev, sizeof ev, &ev_len) == CL_OK);
    CHECK(map_bstr(ev, ev_len, "identity_pub", &id_pub, &l1) && l1 == 65);
    CHECK(map_bstr(ev, ev_len, "ca_pub", &ca_pub, &l2) && l2 == 65);

    CHECK(cl_crypto_openssl_new(&g.crypto, 0) == CL_OK);
    CHECK(g.crypto.ops->key_generate(g.crypto.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &g.owner_key,
                                     g.owner_pub, sizeof g.owner_pub, &n) == CL_OK &&
          n == 65);
    cl_pki_cert_req_t root = {.kind = CL_PKI_ROOT_CA, .cn = "Fuzz Owner", .pub = g.owner_pub,
                              .serial = 1, .not_before = now - 86400,
                              .not_after = now + 86400 * 3650};
    CHECK(cl_pki_make_cert(&root, owner_sign, &g, owner, sizeof owner, &owner_len) == CL_OK);
    cl_pki_cert_req_t careq = {.kind = CL_PKI_INTERMEDIATE_CA, .cn = "Core CA", .pub = ca_pub,
                               .serial = 2, .not_before = now - 3600,
                               .not_after = now + 86400 * 3650, .issuer = owner,
                               .issuer_len = owner_len};
    cl_pki_cert_req_t idreq = careq;
    idreq.kind = CL_PKI_LEAF;
    idreq.cn = "Core identity";
    idreq.pub = id_pub;
    idreq.serial = 3;
    CHECK(cl_pki_make_cert(&careq, owner_sign, &g, ca, sizeof ca, &ca_len) == CL_OK);
    CHECK(cl_pki_make_cert(&idreq, owner_sign, &g, id, sizeof id, &id_len) == CL_OK);

    enc_map2(body, sizeof body, &body_len, "owner_cert", owner, owner_len, NULL, NULL, 0);
    CHECK(post(core, "/pki/owner", body, body_len) == CL_COAP_CHANGED);
    enc_map2(body, sizeof body, &body_len, "ca_cert", ca, ca_len, "identity_cert", id, id_len);
    CHECK(post(core, "/pki/provision", body, body_len) == CL_COAP_CHANGED);
}

static void teardown(void)
{
    for (int i = 0; i < CORES; i++) {
        if (g.core[i] != 0)
            g.ec->close(g.core[i]);
        if (g.lh[i] != NULL)
            lh_free(g.lh[i]);
    }
    if (g.crypto.ops != NULL)
        cl_crypto_openssl_free(&g.crypto);
    free(g.out);
    memset(&g, 0, sizeof g);
}

static void setup(void)
{
    if (g.ec != NULL)
        return;
    const cl_tee_platform_t *plat = sf_platform();
    g.ec = cl_core_ecall_table();
    CHECK(g.ec != NULL && g.ec->version == CL_CORE_API_VERSION);
    g.out = malloc(CL_CORE_MAX_BATCH_BYTES);
    CHECK(g.out != NULL);
    cl_core_config_t cfg = {.version = CL_CORE_API_VERSION, .snapshot_every = 4,
                            .max_sessions = 32};
    for (int i = 0; i < CORES; i++) {
        g.lh[i] = lh_new();
        g.now[i] = LH_DEFAULT_TIME_MS;
        lh_set_quote(g.lh[i], quote_fn, sf_sim);
        CHECK(g.ec->open(plat, lh_ops(g.lh[i]), &cfg, &g.core[i]) == CL_OK);
    }
    provision(g.core[1]);
    atexit(teardown); /* runs before sf_cleanup (registered earlier) */
}

/* Checks one answer against its request. */
static void check_answer(const uint8_t *req, size_t req_len, const cl_batch_item_t *ans,
                         uint64_t peer, uint16_t transport)
{
    cl_coap_msg_t q, r;
    CHECK(ans->peer == peer && ans->transport == transport && ans->flags == 0);
    CHECK(ans->len <= CL_CORE_MAX_MESSAGE);
    bool is_req = cl_coap_parse(&q, req, req_len) == CL_OK && q.type != CL_COAP_ACK &&
                  q.type != CL_COAP_RST && q.code != CL_COAP_EMPTY && q.code < CL_COAP_CODE(1, 0);
    if (!is_req) {
        CHECK(ans->len == 0);
        return;
    }
    if (ans->len == 0)
        return;
    CHECK(cl_coap_parse(&r, ans->msg, ans->len) == CL_OK);
    CHECK(r.code >= CL_COAP_CODE(2, 0) && r.code < CL_COAP_CODE(6, 0));
    CHECK(r.tkl == q.tkl && (q.tkl == 0 || memcmp(r.token, q.token, q.tkl) == 0));
    if (r.type == CL_COAP_ACK)
        CHECK(q.type == CL_COAP_CON && r.mid == q.mid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t batch[CL_CORE_MAX_BATCH_BYTES];
    const uint8_t *msg[MAX_MSGS];
    size_t len[MAX_MSGS], n = 0, pos = 1, blen, out_len = 0, count;

    setup();
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    size_t want = (flags & 7u) + 1;
    int which = (flags >> 7) & 1;
    uint16_t transport = (uint16_t)(1 + ((flags >> 4) & 3u));
    cl_core_handle_t core = g.core[which];

    if (flags & 8u) {
        g.now[which] += 61000;
        lh_set_time(g.lh[which], g.now[which]);
        CHECK(g.ec->tick(core, g.now[which]) == CL_OK);
    }
    while (n < want) {
        size_t l = size - pos;
        if (n + 1 < want && size - pos >= 2) {
            l = (size_t)data[pos] << 8 | data[pos + 1];
            pos += 2;
            if (l > size - pos)
                l = size - pos;
        }
        if (l > CL_CORE_MAX_MESSAGE)
            l = CL_CORE_MAX_MESSAGE;
        msg[n] = data + pos;
        len[n] = l;
        pos += l;
        n++;
    }
    CHECK(cl_batch_begin(batch, sizeof batch, &blen) == CL_OK);
    for (size_t i = 0; i < n; i++) {
        cl_batch_item_t it = {.peer = 1000 + i, .transport = transport, .msg = msg[i],
                              .len = len[i]};
        CHECK(cl_batch_add(batch, sizeof batch, &blen, &it) == CL_OK);
    }
    CHECK(g.ec->handle(core, batch, blen, g.out, CL_CORE_MAX_BATCH_BYTES, &out_len) == CL_OK);
    CHECK(cl_batch_validate(g.out, out_len, &count) == CL_OK && count == n);
    size_t p = 0;
    for (size_t i = 0; i < n; i++) {
        cl_batch_item_t ans;
        CHECK(cl_batch_next(g.out, out_len, &p, &ans) == CL_OK);
        check_answer(msg[i], len[i], &ans, 1000 + i, transport);
    }

    /* the raw input as a batch: refused unless valid */
    size_t in_count = 0;
    bool valid = cl_batch_validate(data, size, &in_count) == CL_OK;
    cl_status_t st = g.ec->handle(core, data, size, g.out, CL_CORE_MAX_BATCH_BYTES, &out_len);
    CHECK(valid == (st == CL_OK));
    if (st == CL_OK)
        CHECK(cl_batch_validate(g.out, out_len, &count) == CL_OK && count == in_count);
    return 0;
}
