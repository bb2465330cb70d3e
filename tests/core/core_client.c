/*
 * core_client.c - see core_client.h.
 */
#include "core_client.h"

#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/cose.h"
#include "cloister/crypto_openssl.h"
#include "pki.h"

#define MSG_MAX 2048

void cc_init(cc_peer_t *p, uint64_t peer_id)
{
    size_t n = 0;
    memset(p, 0, sizeof *p);
    if (cl_crypto_openssl_new(&p->crypto, 0) != CL_OK ||
        p->crypto.ops->key_generate(p->crypto.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &p->key, p->pub,
                                    sizeof p->pub, &n) != CL_OK ||
        n != 65)
        abort();
    p->peer_id = peer_id;
    p->mid = (uint16_t)(peer_id * 977u);
}

void cc_free(cc_peer_t *p)
{
    cl_oscore_ctx_free(&p->osc);
    cl_crypto_openssl_free(&p->crypto);
    memset(p, 0, sizeof *p);
}

cl_status_t cc_sign(void *peer, const uint8_t *tbs, size_t tbs_len, uint8_t sig[64])
{
    cc_peer_t *p = peer;
    size_t n = 0;
    cl_status_t st =
        p->crypto.ops->sign(p->crypto.self, p->key, CL_SIG_ES256, tbs, tbs_len, sig, 64, &n);
    return st == CL_OK && n == 64 ? CL_OK : CL_ERR_CRYPTO;
}

static void set_cred_bstr(cc_peer_t *p, const uint8_t *der, size_t len)
{
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, p->cred, sizeof p->cred);
    cl_cbor_enc_bstr(&e, der, len);
    if (cl_cbor_enc_finish(&e, &p->cred_len) != CL_OK)
        abort();
}

void cc_cred_x5chain(cc_peer_t *p, const uint8_t *der, size_t len)
{
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, p->id_cred, sizeof p->id_cred);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_int(&e, CL_COSE_HDR_X5CHAIN);
    cl_cbor_enc_bstr(&e, der, len);
    if (cl_cbor_enc_finish(&e, &p->id_cred_len) != CL_OK)
        abort();
    set_cred_bstr(p, der, len);
}

void cc_cred_x5t(cc_peer_t *p, const uint8_t *der, size_t len)
{
    uint8_t h[8];
    cl_cbor_enc_t e;
    if (cl_pki_thumbprint(der, len, h) != CL_OK)
        abort();
    cl_cbor_enc_init(&e, p->id_cred, sizeof p->id_cred);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_int(&e, CL_COSE_HDR_X5T);
    cl_cbor_enc_array(&e, 2);
    cl_cbor_enc_int(&e, -15);
    cl_cbor_enc_bstr(&e, h, 8);
    if (cl_cbor_enc_finish(&e, &p->id_cred_len) != CL_OK)
        abort();
    set_cred_bstr(p, der, len);
}

void cc_cred_kccs(cc_peer_t *p)
{
    cl_cbor_enc_t e;
    /* CCS {8: {1: {1: 2, -1: 1, -2: x, -3: y}}} */
    cl_cbor_enc_init(&e, p->cred, sizeof p->cred);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 8);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 1);
    cl_cbor_enc_map(&e, 4);
    cl_cbor_enc_uint(&e, 1);
    cl_cbor_enc_uint(&e, 2);
    cl_cbor_enc_int(&e, -1);
    cl_cbor_enc_uint(&e, 1);
    cl_cbor_enc_int(&e, -2);
    cl_cbor_enc_bstr(&e, p->pub + 1, 32);
    cl_cbor_enc_int(&e, -3);
    cl_cbor_enc_bstr(&e, p->pub + 33, 32);
    if (cl_cbor_enc_finish(&e, &p->cred_len) != CL_OK)
        abort();
    cl_cbor_enc_init(&e, p->id_cred, sizeof p->id_cred);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 14);
    cl_cbor_enc_raw(&e, p->cred, p->cred_len);
    if (cl_cbor_enc_finish(&e, &p->id_cred_len) != CL_OK)
        abort();
}

void cc_set_core_cert(cc_peer_t *p, const uint8_t *der, size_t len)
{
    if (len > sizeof p->core_cert)
        abort();
    memcpy(p->core_cert, der, len);
    p->core_cert_len = len;
}

/* ---- transport: one request as a batch of one ---- */

static int exchange(cc_peer_t *p, cl_runtime_t *rt, const uint8_t *req, size_t req_len,
                    uint8_t *resp, size_t resp_size, size_t *resp_len)
{
    static uint8_t in[MSG_MAX + 64], out[CL_CORE_MAX_BATCH_BYTES];
    size_t in_len, out_len, pos = 0;
    cl_batch_item_t it = {
        .peer = p->peer_id, .transport = CL_TRANSPORT_LOCAL, .msg = req, .len = req_len};
    if (cl_batch_begin(in, sizeof in, &in_len) != CL_OK ||
        cl_batch_add(in, sizeof in, &in_len, &it) != CL_OK)
        return -1;
    if (cl_runtime_handle(rt, in, in_len, out, sizeof out, &out_len) != CL_OK)
        return -1;
    size_t count;
    if (cl_batch_validate(out, out_len, &count) != CL_OK || count != 1 ||
        cl_batch_next(out, out_len, &pos, &it) != CL_OK || it.peer != p->peer_id)
        return -1;
    if (it.len > resp_size)
        return -1;
    memcpy(resp, it.msg, it.len);
    *resp_len = it.len;
    return 0;
}

/* The Block1 option of the next request build() makes (set by cc_request for large bodies). */
static uint8_t g_block1[3];
static size_t g_block1_len;

static cl_status_t build(cc_peer_t *p, uint8_t code, const char *path, const char *query,
                         const uint8_t *block2, size_t block2_len, const uint8_t *payload,
                         size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_coap_builder_t b;
    uint8_t tok[2] = {(uint8_t)(p->mid >> 8), (uint8_t)p->mid};
    cl_coap_build_init(&b, out, out_size, CL_COAP_CON, code, p->mid++, tok, 2);
    const char *s = path + 1;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)s, n);
        s += n + (e ? 1 : 0);
    }
    if (len > 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR);
    for (const char *q = query; q != NULL && *q;) { /* "a=1&b=2": one Uri-Query each */
        const char *amp = strchr(q, '&');
        size_t n = amp ? (size_t)(amp - q) : strlen(q);
        cl_coap_build_option(&b, CL_COAP_OPT_URI_QUERY, (const uint8_t *)q, n);
        q += n + (amp ? 1 : 0);
    }
    if (block2 != NULL)
        cl_coap_build_option(&b, CL_COAP_OPT_BLOCK2, block2, block2_len);
    if (g_block1_len > 0)
        cl_coap_build_option(&b, CL_COAP_OPT_BLOCK1, g_block1, g_block1_len);
    g_block1_len = 0;
    cl_coap_build_payload(&b, payload, len);
    return cl_coap_build_finish(&b, out_len);
}

int cc_plain(cc_peer_t *p, cl_runtime_t *rt, uint8_t code, const char *path, const uint8_t *payload,
             size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t req[MSG_MAX], resp[MSG_MAX];
    size_t req_len, resp_len;
    cl_coap_msg_t m;
    if (build(p, code, path, NULL, NULL, 0, payload, len, req, sizeof req, &req_len) != CL_OK ||
        exchange(p, rt, req, req_len, resp, sizeof resp, &resp_len) != 0 ||
        cl_coap_parse(&m, resp, resp_len) != CL_OK || m.payload_len > out_size)
        return -1;
    memcpy(out, m.payload, m.payload_len);
    *out_len = m.payload_len;
    return m.code;
}

int cc_evidence(cc_peer_t *p, cl_runtime_t *rt, const uint8_t *nonce, size_t nonce_len,
                uint8_t *out, size_t out_size, size_t *out_len)
{
    char query[6 + 2 * 64 + 1] = "nonce=";
    static const char hx[] = "0123456789abcdef";
    uint8_t req[MSG_MAX], resp[MSG_MAX];
    size_t req_len, resp_len, total = 0;
    for (size_t i = 0; i < nonce_len; i++) {
        query[6 + 2 * i] = hx[nonce[i] >> 4];
        query[7 + 2 * i] = hx[nonce[i] & 15];
    }
    query[6 + 2 * nonce_len] = '\0';
    for (uint32_t num = 0; num < 64; num++) {
        cl_coap_block_t blk = {num, false, 6};
        uint8_t bv[3];
        size_t bl;
        cl_coap_msg_t m;
        if (cl_coap_block_encode(&blk, bv, &bl) != CL_OK ||
            build(p, CL_COAP_GET, "/attestation", query, bv, bl, NULL, 0, req, sizeof req,
                  &req_len) != CL_OK ||
            exchange(p, rt, req, req_len, resp, sizeof resp, &resp_len) != 0 ||
            cl_coap_parse(&m, resp, resp_len) != CL_OK)
            return -1;
        if (m.code != CL_COAP_CONTENT) {
            if (m.payload_len <= out_size) {
                memcpy(out, m.payload, m.payload_len);
                *out_len = m.payload_len;
            }
            return m.code;
        }
        const cl_coap_option_t *o = cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK2);
        cl_coap_block_t got = {0, false, 6};
        if (o != NULL && cl_coap_block_decode(o, &got) != CL_OK)
            return -1;
        if (got.num != num || total + m.payload_len > out_size)
            return -1;
        memcpy(out + total, m.payload, m.payload_len);
        total += m.payload_len;
        if (o == NULL || !got.more) {
            *out_len = total;
            return m.code;
        }
    }
    return -1;
}

/* ---- EDHOC initiator ---- */

static cl_status_t core_cred(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                             size_t id_cred_len, cl_edhoc_peer_t *peer)
{
    cc_peer_t *p = arg;
    const uint8_t *v, *h;
    size_t vlen, n, hl;
    int64_t alg;
    uint8_t mine[8];
    cl_cbor_dec_t d;
    cl_pki_cert_info_t info;
    (void)own_role;
    if (p->core_cert_len == 0 ||
        cl_cose_header_find(id_cred, id_cred_len, CL_COSE_HDR_X5T, &v, &vlen) != CL_OK)
        return CL_ERR_NOT_FOUND;
    cl_cbor_dec_init(&d, v, vlen);
    if (cl_cbor_dec_array(&d, &n) != CL_OK || n != 2 || cl_cbor_dec_int(&d, &alg) != CL_OK ||
        cl_cbor_dec_bstr(&d, &h, &hl) != CL_OK || alg != -15 || hl != 8 ||
        cl_pki_thumbprint(p->core_cert, p->core_cert_len, mine) != CL_OK || memcmp(mine, h, 8) != 0)
        return CL_ERR_NOT_FOUND;
    if (cl_pki_cert_parse(p->core_cert, p->core_cert_len, &info) != CL_OK)
        return CL_ERR_AUTH;
    cl_cbor_enc_t e;
    size_t cl;
    cl_cbor_enc_init(&e, p->cb_cred, sizeof p->cb_cred);
    cl_cbor_enc_bstr(&e, p->core_cert, p->core_cert_len);
    if (cl_cbor_enc_finish(&e, &cl) != CL_OK ||
        p->crypto.ops->key_import_public(p->crypto.self, CL_KEY_P256, info.pub, 65, &p->cb_key) !=
            CL_OK)
        return CL_ERR_AUTH;
    peer->cred = p->cb_cred;
    peer->cred_len = cl;
    peer->key = p->cb_key;
    return CL_OK;
}

cl_status_t cc_connect(cc_peer_t *p, cl_runtime_t *rt)
{
    cl_edhoc_t s;
    uint8_t m[MSG_MAX], payload[MSG_MAX], req[MSG_MAX], resp[MSG_MAX];
    size_t m_len, pl, req_len, resp_len;
    cl_coap_msg_t r;
    cl_status_t st;
    uint8_t c_i = (uint8_t)(p->peer_id % 24);

    cl_oscore_ctx_free(&p->osc);
    p->have_osc = false;
    p->suites[0] = 2;
    p->auth = (cl_edhoc_auth_t){.id_cred = p->id_cred,
                                .id_cred_len = p->id_cred_len,
                                .cred = p->cred,
                                .cred_len = p->cred_len,
                                .key = p->key,
                                .type = CL_KEY_P256,
                                .static_dh = false};
    p->cfg = (cl_edhoc_config_t){.crypto = &p->crypto,
                                 .suites = p->suites,
                                 .n_suites = 1,
                                 .auth = &p->auth,
                                 .n_auth = 1,
                                 .peer_cred = core_cred,
                                 .peer_cred_arg = p};
    memset(&s, 0, sizeof s);
    if ((st = cl_edhoc_init(&s, &p->cfg, CL_EDHOC_INITIATOR, &c_i, 1)) != CL_OK)
        return st;
    payload[0] = 0xf5; /* true: message_1 follows */
    if ((st = cl_edhoc_message_1(&s, 0, 2, NULL, 0, payload + 1, sizeof payload - 1, &m_len)) !=
        CL_OK)
        goto out;
    if ((st = build(p, CL_COAP_POST, CL_EDHOC_WELL_KNOWN, NULL, NULL, 0, payload, m_len + 1, req,
                    sizeof req, &req_len)) != CL_OK ||
        exchange(p, rt, req, req_len, resp, sizeof resp, &resp_len) != 0 ||
        cl_coap_parse(&r, resp, resp_len) != CL_OK) {
        st = CL_ERR_STATE;
        goto out;
    }
    if (r.code != CL_COAP_CHANGED) {
        st = CL_ERR_PEER_ERROR;
        goto out;
    }
    if ((st = cl_edhoc_process_message_2(&s, r.payload, r.payload_len)) != CL_OK)
        goto out;
    cl_key_destroy(&p->crypto, p->cb_key);
    p->cb_key = CL_KEY_NONE;
    const uint8_t *ci, *cr;
    size_t ci_len, cr_len;
    cl_edhoc_cids(&s, &ci, &ci_len, &cr, &cr_len);
    if ((st = cl_edhoc_encode_cid(cr, cr_len, payload, sizeof payload, &pl)) != CL_OK ||
        (st = cl_edhoc_message_3(&s, NULL, 0, payload + pl, sizeof payload - pl, &m_len)) != CL_OK)
        goto out;
    if ((st = build(p, CL_COAP_POST, CL_EDHOC_WELL_KNOWN, NULL, NULL, 0, payload, pl + m_len, req,
                    sizeof req, &req_len)) != CL_OK ||
        exchange(p, rt, req, req_len, resp, sizeof resp, &resp_len) != 0 ||
        cl_coap_parse(&r, resp, resp_len) != CL_OK) {
        st = CL_ERR_STATE;
        goto out;
    }
    if (r.code != CL_COAP_CHANGED) {
        st = CL_ERR_PEER_ERROR;
        goto out;
    }
    uint8_t ms[16], salt[8];
    cl_oscore_params_t params;
    if ((st = cl_edhoc_oscore_params(&s, ms, salt, &params)) == CL_OK &&
        (st = cl_oscore_ctx_init(&p->osc, &p->crypto, &params)) == CL_OK)
        p->have_osc = true;
out:
    cl_key_destroy(&p->crypto, p->cb_key);
    p->cb_key = CL_KEY_NONE;
    cl_edhoc_free(&s);
    (void)m;
    return st;
}

/* One OSCORE exchange; *m_out (optional) gets the decrypted response's Block2. */
static int request_once(cc_peer_t *p, cl_runtime_t *rt, uint8_t code, const char *path,
                        const char *query, int block2, const uint8_t *payload, size_t len,
                        uint8_t *out, size_t out_size, size_t *out_len, cl_coap_block_t *got,
                        bool *has_block);

int cc_get(cc_peer_t *p, cl_runtime_t *rt, const char *path, const char *query, uint8_t *out,
           size_t out_size, size_t *out_len, unsigned *blocks)
{
    size_t total = 0;
    *blocks = 0;
    for (int num = 0; num < 256; num++) {
        size_t n = 0;
        cl_coap_block_t got;
        bool has;
        int code = request_once(p, rt, CL_COAP_GET, path, query, num, NULL, 0, out + total,
                                out_size - total, &n, &got, &has);
        if (code != CL_COAP_CONTENT) {
            *out_len = total + n;
            return code;
        }
        if (has && (int)got.num != num)
            return -1;
        total += n;
        (*blocks)++;
        if (!has || !got.more) {
            *out_len = total;
            return code;
        }
    }
    return -1;
}

int cc_request(cc_peer_t *p, cl_runtime_t *rt, uint8_t code, const char *path,
               const uint8_t *payload, size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_coap_block_t got;
    bool has;
    if (len <= 1024)
        return request_once(p, rt, code, path, NULL, -1, payload, len, out, out_size, out_len,
                            &got, &has);
    /* a large body goes block-wise (inner Block1, 1024-byte blocks); 2.31 until the last */
    for (uint32_t num = 0;; num++) {
        size_t off = (size_t)num * 1024, n = len - off > 1024 ? 1024 : len - off;
        cl_coap_block_t b1 = {num, off + n < len, 6};
        if (cl_coap_block_encode(&b1, g_block1, &g_block1_len) != CL_OK)
            return -1;
        int code_got = request_once(p, rt, code, path, NULL, -1, payload + off, n, out, out_size,
                                    out_len, &got, &has);
        if (!b1.more || code_got != CL_COAP_CONTINUE)
            return code_got;
    }
}

static int request_once(cc_peer_t *p, cl_runtime_t *rt, uint8_t code, const char *path,
                        const char *query, int block2, const uint8_t *payload, size_t len,
                        uint8_t *out, size_t out_size, size_t *out_len, cl_coap_block_t *got,
                        bool *has_block)
{
    uint8_t plain[MSG_MAX], prot[MSG_MAX], resp[MSG_MAX], dec[MSG_MAX];
    size_t plain_len, prot_len, resp_len, dec_len;
    cl_oscore_req_t oreq;
    cl_coap_msg_t m;
    uint8_t bv[3];
    size_t bl = 0;
    *has_block = false;
    if (!p->have_osc)
        return -1;
    if (block2 >= 0) {
        cl_coap_block_t blk = {(uint32_t)block2, false, 6};
        if (cl_coap_block_encode(&blk, bv, &bl) != CL_OK)
            return -1;
    }
    if (build(p, code, path, query, block2 >= 0 ? bv : NULL, bl, payload, len, plain,
              sizeof plain, &plain_len) != CL_OK ||
        cl_oscore_protect_request(&p->osc, plain, plain_len, prot, sizeof prot, &prot_len, &oreq) !=
            CL_OK ||
        exchange(p, rt, prot, prot_len, resp, sizeof resp, &resp_len) != 0)
        return -1;
    if (resp_len == 0)
        return 0; /* no answer at all */
    if (cl_coap_parse(&m, resp, resp_len) != CL_OK)
        return -1;
    if (cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) == NULL)
        return -(int)m.code; /* unprotected error (e.g. 4.01 security context not found) */
    if (cl_oscore_unprotect_response(&p->osc, &oreq, resp, resp_len, dec, sizeof dec, &dec_len) !=
            CL_OK ||
        cl_coap_parse(&m, dec, dec_len) != CL_OK || m.payload_len > out_size)
        return -1;
    const cl_coap_option_t *b = cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK2);
    if (b != NULL) {
        if (cl_coap_block_decode(b, got) != CL_OK)
            return -1;
        *has_block = true;
    }
    if (m.payload_len > 0)
        memcpy(out, m.payload, m.payload_len);
    *out_len = m.payload_len;
    return m.code;
}

/* ---- CBOR map lookups ---- */

static bool find(const uint8_t *p, size_t len, const char *key, cl_cbor_dec_t *d)
{
    size_t n, kl = strlen(key);
    cl_cbor_dec_init(d, p, len);
    if (cl_cbor_dec_map(d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t klen;
        if (cl_cbor_dec_tstr(d, &k, &klen) != CL_OK)
            return false;
        if (klen == kl && memcmp(k, key, kl) == 0)
            return true;
        if (cl_cbor_dec_skip(d) != CL_OK)
            return false;
    }
    return false;
}

bool cc_map_find(const uint8_t *p, size_t len, const char *key, cl_cbor_dec_t *d)
{
    return find(p, len, key, d);
}

bool cc_map_bstr(const uint8_t *p, size_t len, const char *key, const uint8_t **v, size_t *vl)
{
    cl_cbor_dec_t d;
    return find(p, len, key, &d) && cl_cbor_dec_bstr(&d, v, vl) == CL_OK;
}

bool cc_map_tstr(const uint8_t *p, size_t len, const char *key, const char **v, size_t *vl)
{
    cl_cbor_dec_t d;
    return find(p, len, key, &d) && cl_cbor_dec_tstr(&d, v, vl) == CL_OK;
}

bool cc_map_uint(const uint8_t *p, size_t len, const char *key, uint64_t *v)
{
    cl_cbor_dec_t d;
    return find(p, len, key, &d) && cl_cbor_dec_uint(&d, v) == CL_OK;
}

/* ---- Observe (GET with Observe: 0) and notifications ---- */

int cc_observe(cc_peer_t *p, cl_runtime_t *rt, const char *path, uint32_t observe,
               cl_oscore_req_t *oreq, uint8_t *out, size_t out_size, size_t *out_len,
               bool *has_observe)
{
    uint8_t plain[MSG_MAX], prot[MSG_MAX], resp[MSG_MAX], dec[MSG_MAX];
    size_t plain_len, prot_len, resp_len, dec_len;
    cl_coap_builder_t b;
    cl_coap_msg_t m;
    uint8_t tok[2] = {(uint8_t)(p->mid >> 8), (uint8_t)p->mid};
    *has_observe = false;
    if (!p->have_osc)
        return -1;
    cl_coap_build_init(&b, plain, sizeof plain, CL_COAP_CON, CL_COAP_GET, p->mid++, tok, 2);
    cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, observe);
    const char *s = path + 1;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)s, n);
        s += n + (e ? 1 : 0);
    }
    if (cl_coap_build_finish(&b, &plain_len) != CL_OK ||
        cl_oscore_protect_request(&p->osc, plain, plain_len, prot, sizeof prot, &prot_len, oreq) !=
            CL_OK ||
        exchange(p, rt, prot, prot_len, resp, sizeof resp, &resp_len) != 0 || resp_len == 0 ||
        cl_oscore_unprotect_response(&p->osc, oreq, resp, resp_len, dec, sizeof dec, &dec_len) !=
            CL_OK ||
        cl_coap_parse(&m, dec, dec_len) != CL_OK || m.payload_len > out_size)
        return -1;
    *has_observe = cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE) != NULL;
    memcpy(out, m.payload, m.payload_len);
    *out_len = m.payload_len;
    return m.code;
}

int cc_notification(cc_peer_t *p, cl_oscore_req_t *oreq, const uint8_t *msg, size_t len,
                    uint8_t *out, size_t out_size, size_t *out_len, uint8_t *type)
{
    uint8_t copy[MSG_MAX], dec[MSG_MAX];
    size_t dec_len;
    cl_coap_msg_t m;
    if (len > sizeof copy || cl_coap_parse(&m, msg, len) != CL_OK)
        return -1;
    *type = m.type;
    memcpy(copy, msg, len);
    if (cl_oscore_unprotect_response(&p->osc, oreq, copy, len, dec, sizeof dec, &dec_len) !=
            CL_OK ||
        cl_coap_parse(&m, dec, dec_len) != CL_OK || m.payload_len > out_size)
        return -1;
    memcpy(out, m.payload, m.payload_len);
    *out_len = m.payload_len;
    return m.code;
}
