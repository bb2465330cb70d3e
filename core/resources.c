/*
 * resources.c - what the core serves (docs/core-protocol.md): the two
 * bootstrap resources that carry only public data (attestation evidence,
 * owner claim, provisioning certificates), EDHOC, and everything else
 * behind OSCORE with a role check per request: enrollment tokens,
 * enrollment, clients and revocation, event publication into the
 * encrypted archive.
 *
 * Every request is parsed here from the bytes the host handed in (the
 * host's own parse is never trusted); every change is a sealed log record
 * made durable before the answer leaves the core.
 */
#include <stdlib.h>
#include <string.h>

#include "cloister/coap_block.h"
#include "core_internal.h"
#include "cloister/json.h"
#include "resources.h"
#include "schema.h"
#include "pki.h"

#define ATT_BLOCK_SZX 6 /* 1024-byte blocks */
#define TOKEN_LEN 16
#define MAX_EVENTS_PER_REQUEST 32
#define MAX_LISTED_CLIENTS 1000
#define CLIENTS_MAX_BODY (60 * 1024)
#define TTL_MIN_S 60
#define TTL_MAX_S 604800
#define CERT_DAYS 365


#define BLOCK_SZX 6 /* 1024-byte blocks for large protected responses */
#define BLOCK_SIZE 1024
#define HISTORY_MAX_LIMIT 100
#define HISTORY_DEFAULT_LIMIT 20
#define HISTORY_MAX_BODY (32 * 1024)
#define HISTORY_SCAN_BUF (64 * 1024)
#define HOUR_MS 3600000

/* ---- small helpers ---- */

cl_status_t cl_res_error(reqctx_t *r, uint8_t code, const char *err, const char *msg)
{
    cl_cbor_enc_t e;
    r->code = code;
    cl_cbor_enc_init(&e, r->body, sizeof r->body);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "error");
    cl_cbor_enc_tstr_z(&e, err);
    cl_cbor_enc_tstr_z(&e, "message");
    cl_cbor_enc_tstr_z(&e, msg);
    return cl_cbor_enc_finish(&e, &r->body_len);
}

cl_status_t cl_res_uint_answer(reqctx_t *r, uint8_t code, const char *key, uint64_t value)
{
    cl_cbor_enc_t e;
    r->code = code;
    cl_cbor_enc_init(&e, r->body, sizeof r->body);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, key);
    cl_cbor_enc_uint(&e, value);
    return cl_cbor_enc_finish(&e, &r->body_len);
}

cl_status_t cl_res_big_answer(reqctx_t *r, const cl_cbor_enc_t *e, uint8_t *big)
{
    size_t len;
    if (cl_cbor_enc_finish(e, &len) != CL_OK) {
        free(big);
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "response too large");
    }
    r->code = CL_COAP_CONTENT;
    r->big = big;
    r->big_len = len;
    return CL_OK;
}

/* Positions d at the value of text key `key` in the top-level map of p. */
bool cl_res_map_find(const uint8_t *p, size_t len, const char *key, cl_cbor_dec_t *d)
{
    size_t n, kl = strlen(key);
    bool found = false;
    cl_cbor_dec_t it;
    cl_cbor_dec_init(&it, p, len);
    if (p == NULL || cl_cbor_dec_map(&it, &n) != CL_OK || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t klen;
        if (cl_cbor_dec_tstr(&it, &k, &klen) != CL_OK)
            return false;
        if (klen == kl && memcmp(k, key, kl) == 0) {
            if (found)
                return false; /* duplicate key */
            found = true;
            *d = it;
        }
        if (cl_cbor_dec_skip(&it) != CL_OK)
            return false;
    }
    return found && cl_cbor_dec_at_end(&it);
}

bool cl_res_get_bstr(const uint8_t *p, size_t len, const char *key, const uint8_t **v, size_t *vl)
{
    cl_cbor_dec_t d;
    return cl_res_map_find(p, len, key, &d) && cl_cbor_dec_bstr(&d, v, vl) == CL_OK;
}

bool cl_res_get_tstr(const uint8_t *p, size_t len, const char *key, const char **v, size_t *vl)
{
    cl_cbor_dec_t d;
    return cl_res_map_find(p, len, key, &d) && cl_cbor_dec_tstr(&d, v, vl) == CL_OK;
}

bool cl_res_get_uint(const uint8_t *p, size_t len, const char *key, uint64_t *v)
{
    cl_cbor_dec_t d;
    return cl_res_map_find(p, len, key, &d) && cl_cbor_dec_uint(&d, v) == CL_OK;
}

/* The value of Uri-Query "key=value" (first occurrence); false when absent. */
bool cl_res_get_query(const cl_coap_msg_t *m, const char *key, const char **v, size_t *vl)
{
    size_t pos = 0, kl = strlen(key);
    const cl_coap_option_t *q;
    while ((q = cl_coap_msg_find(m, CL_COAP_OPT_URI_QUERY, &pos)) != NULL) {
        if (q->len > kl && memcmp(q->value, key, kl) == 0 && q->value[kl] == '=') {
            *v = (const char *)q->value + kl + 1;
            *vl = q->len - kl - 1;
            return true;
        }
        pos++;
    }
    return false;
}

/* A decimal integer query value (optional leading '-'); false when malformed. */
bool cl_res_parse_int(const char *v, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t x = 0;
    if (len > 0 && v[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == len || len - i > 18)
        return false;
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = neg ? -(int64_t)x : (int64_t)x;
    return true;
}

/* The "publish" list of a request as a raw CBOR array (validated), or the default ["*"]. */
static bool get_perms(const uint8_t *p, size_t len, const uint8_t **perms, size_t *perms_len,
                      bool required)
{
    static const uint8_t any[] = {0x81, 0x61, '*'};
    cl_cbor_dec_t d;
    if (!cl_res_map_find(p, len, "publish", &d)) {
        *perms = any;
        *perms_len = sizeof any;
        return !required;
    }
    return cl_cbor_dec_raw(&d, perms, perms_len) == CL_OK && cl_perms_valid(*perms, *perms_len);
}

static bool is_cbor_request(const cl_coap_msg_t *m)
{
    const cl_coap_option_t *cf = cl_coap_msg_get(m, CL_COAP_OPT_CONTENT_FORMAT);
    uint32_t v;
    return cf == NULL || (cl_coap_opt_uint(cf, &v) == CL_OK && v == CL_COAP_CF_CBOR);
}

static const char *phase_name(int p)
{
    return p == CL_PHASE_PROVISIONED ? "provisioned" : p == CL_PHASE_CLAIMED ? "claimed" : "fresh";
}

static int64_t now_s(cl_core_t *c)
{
    return cl_core_now(c) / 1000;
}

/* ---- evidence ---- */

cl_status_t cl_core_evidence(cl_core_t *c, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                             size_t out_size, size_t *out_len)
{
    uint8_t rd[CL_SGX_REPORT_DATA_LEN] = {0}, report[CL_SGX_REPORT_LEN];
    uint8_t zeros[32] = {0};
    uint8_t *quote = NULL;
    size_t quote_len = 0;
    const uint8_t *owner = c->st.phase == CL_PHASE_FRESH ? zeros : c->st.owner_hash;
    cl_status_t st;

    if (c->host.quote == NULL)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    cl_buf_t parts[4] = {
        {c->st.identity_pub, 65}, {c->st.ca_pub, 65}, {owner, 32}, {nonce, nonce_len}};
    if ((st = cl_sha256(&c->crypto, parts, 4, rd)) != CL_OK ||
        (st = c->platform.get_report(c->platform.self, NULL, rd, report)) != CL_OK)
        return st;
    if ((quote = malloc(CL_CORE_MAX_QUOTE)) == NULL)
        return CL_FAIL(CL_ERR_FULL);
    st = c->host.quote(c->host.ctx, report, sizeof report, quote, CL_CORE_MAX_QUOTE, &quote_len);
    if (st == CL_OK && (quote_len < 436 || quote_len > CL_CORE_MAX_QUOTE))
        st = CL_FAIL(CL_ERR_BAD_INPUT); /* the host's answer is checked, not trusted */
    if (st == CL_OK) {
        bool prov = c->st.phase == CL_PHASE_PROVISIONED;
        cl_cbor_enc_t e;
        cl_cbor_enc_init(&e, out, out_size);
        cl_cbor_enc_map(&e, prov ? 10 : 8);
        cl_cbor_enc_tstr_z(&e, "v");
        cl_cbor_enc_uint(&e, 1);
        cl_cbor_enc_tstr_z(&e, "backend");
        cl_cbor_enc_tstr_z(&e, c->platform.backend == CL_TEE_BACKEND_SGX ? "sgx" : "sim");
        cl_cbor_enc_tstr_z(&e, "state");
        cl_cbor_enc_tstr_z(&e, phase_name(c->st.phase));
        cl_cbor_enc_tstr_z(&e, "quote");
        cl_cbor_enc_bstr(&e, quote, quote_len);
        cl_cbor_enc_tstr_z(&e, "identity_pub");
        cl_cbor_enc_bstr(&e, c->st.identity_pub, 65);
        cl_cbor_enc_tstr_z(&e, "ca_pub");
        cl_cbor_enc_bstr(&e, c->st.ca_pub, 65);
        cl_cbor_enc_tstr_z(&e, "owner");
        cl_cbor_enc_bstr(&e, owner, 32);
        cl_cbor_enc_tstr_z(&e, "nonce");
        cl_cbor_enc_bstr(&e, nonce, nonce_len);
        if (prov) {
            cl_cbor_enc_tstr_z(&e, "ca_cert");
            cl_cbor_enc_bstr(&e, c->st.ca_cert, c->st.ca_len);
            cl_cbor_enc_tstr_z(&e, "identity_cert");
            cl_cbor_enc_bstr(&e, c->st.id_cert, c->st.id_len);
        }
        st = cl_cbor_enc_finish(&e, out_len);
    }
    free(quote);
    return st;
}

/* ---- response assembly ---- */

cl_status_t cl_res_build_response_obs(cl_core_t *c, const cl_coap_msg_t *req, uint8_t code,
                                      const uint8_t *body, size_t body_len, bool piggyback,
                                      int64_t observe, int64_t block1, uint16_t cf,
                                      uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_coap_builder_t b;
    uint8_t type = piggyback && req->type == CL_COAP_CON ? CL_COAP_ACK : CL_COAP_NON;
    uint16_t mid = type == CL_COAP_ACK ? req->mid : c->next_mid++;
    cl_coap_build_init(&b, out, out_size, type, code, mid, req->token, req->tkl);
    if (observe >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, (uint32_t)(observe & 0xffffff));
    if (body_len > 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, cf);
    if (block1 >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_BLOCK1, (uint32_t)block1);
    cl_coap_build_payload(&b, body, body_len);
    return cl_coap_build_finish(&b, out_len);
}

cl_status_t cl_res_build_response(cl_core_t *c, const cl_coap_msg_t *req, uint8_t code,
                                  const uint8_t *body, size_t body_len, bool piggyback,
                                  uint8_t *out, size_t out_size, size_t *out_len)
{
    return cl_res_build_response_obs(c, req, code, body, body_len, piggyback, -1, -1,
                                     CL_COAP_CF_CBOR, out, out_size, out_len);
}

/* GET /attestation?nonce=HEX with Block2 (evidence is a few KiB; cached per nonce in c->evcache).
 */
static int hexval(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

static void attestation(cl_core_t *c, const cl_coap_msg_t *req, uint8_t *out, size_t out_size,
                        size_t *out_len)
{
    uint8_t nonce[CL_CORE_NONCE_MAX];
    size_t nonce_len = 0, pos = 0;
    const cl_coap_option_t *q;
    reqctx_t r;
    cl_coap_block_t blk = {0, false, ATT_BLOCK_SZX};

    r.c = c;
    while ((q = cl_coap_msg_find(req, CL_COAP_OPT_URI_QUERY, &pos)) != NULL) {
        if (q->len > 6 && memcmp(q->value, "nonce=", 6) == 0 && (q->len - 6) % 2 == 0 &&
            (q->len - 6) / 2 <= CL_CORE_NONCE_MAX) {
            nonce_len = (q->len - 6) / 2;
            for (size_t i = 0; i < nonce_len; i++) {
                int hi = hexval((char)q->value[6 + 2 * i]), lo = hexval((char)q->value[7 + 2 * i]);
                if (hi < 0 || lo < 0)
                    nonce_len = 0;
                else
                    nonce[i] = (uint8_t)(hi << 4 | lo);
                if (nonce_len == 0)
                    break;
            }
        }
        pos++;
    }
    const cl_coap_option_t *b2 = cl_coap_msg_get(req, CL_COAP_OPT_BLOCK2);
    if (req->code != CL_COAP_GET) {
        (void)cl_res_error(&r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "GET only");
        goto send_error;
    }
    if (nonce_len < CL_CORE_NONCE_MIN) {
        (void)cl_res_error(&r, CL_COAP_BAD_REQUEST, "bad-request", "nonce=<hex, 16..64 bytes> required");
        goto send_error;
    }
    if (b2 != NULL && (cl_coap_block_decode(b2, &blk) != CL_OK || blk.szx > ATT_BLOCK_SZX)) {
        (void)cl_res_error(&r, CL_COAP_BAD_OPTION, "bad-request", "bad Block2");
        goto send_error;
    }
    cl_evcache_t *ce = NULL;
    for (size_t i = 0; i < CL_EVIDENCE_CACHE; i++)
        if (c->evcache[i].ev != NULL && c->evcache[i].nonce_len == nonce_len &&
            memcmp(c->evcache[i].nonce, nonce, nonce_len) == 0)
            ce = &c->evcache[i];
    if (ce == NULL || blk.num == 0) {
        if (ce == NULL) {
            ce = &c->evcache[c->evnext++ % CL_EVIDENCE_CACHE];
            free(ce->ev);
            memset(ce, 0, sizeof *ce);
        }
        uint8_t *ev = malloc(CL_CORE_MAX_EVIDENCE);
        size_t ev_len = 0;
        if (ev == NULL ||
            cl_core_evidence(c, nonce, nonce_len, ev, CL_CORE_MAX_EVIDENCE, &ev_len) != CL_OK) {
            free(ev);
            (void)cl_res_error(&r, CL_COAP_INTERNAL_ERROR, "internal", "no evidence available");
            goto send_error;
        }
        free(ce->ev);
        ce->ev = ev;
        ce->ev_len = ev_len;
        memcpy(ce->nonce, nonce, nonce_len);
        ce->nonce_len = nonce_len;
    }
    /* whole response in a scratch buffer, then the requested block */
    size_t full_size = ce->ev_len + 64;
    uint8_t *full = malloc(full_size);
    size_t full_len;
    cl_coap_msg_t m;
    bool more;
    if (full == NULL ||
        cl_res_build_response(c, req, CL_COAP_CONTENT, ce->ev, ce->ev_len, true, full, full_size,
                       &full_len) != CL_OK ||
        cl_coap_parse(&m, full, full_len) != CL_OK ||
        cl_coap_block_slice(&m, CL_COAP_OPT_BLOCK2, blk.num, blk.szx, out, out_size, out_len,
                            &more) != CL_OK) {
        free(full);
        (void)cl_res_error(&r, CL_COAP_BAD_OPTION, "bad-request", "no such block");
        goto send_error;
    }
    free(full);
    return;
send_error:
    if (cl_res_build_response(c, req, r.code, r.body, r.body_len, true, out, out_size, out_len) != CL_OK)
        *out_len = 0;
}

/* ---- bootstrap: owner claim and provisioning ---- */

static cl_status_t post_owner(reqctx_t *r)
{
    cl_core_t *c = r->c;
    const uint8_t *der;
    size_t der_len;
    uint8_t rec[CL_PKI_MAX_CERT_BYTES + 128], h[32], x5t[8];
    size_t rec_len;
    cl_cbor_enc_t e;
    cl_buf_t part;

    if (r->req->code != CL_COAP_POST)
        return cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "POST only");
    if (c->st.phase != CL_PHASE_FRESH)
        return cl_res_error(r, CL_COAP_FORBIDDEN, "already-claimed",
                     "this core already has an owner; verify its evidence");
    if (!cl_res_get_bstr(r->req->payload, r->req->payload_len, "owner_cert", &der, &der_len) ||
        der_len > CL_PKI_MAX_CERT_BYTES)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "{\"owner_cert\": bstr} expected");
    if (cl_pki_check_root(der, der_len, now_s(c)) != CL_OK)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-certificate",
                     "owner_cert must be a valid self-signed P-256 root CA");
    part = (cl_buf_t){der, der_len};
    if (cl_sha256(&c->crypto, &part, 1, h) != CL_OK ||
        cl_pki_thumbprint(der, der_len, x5t) != CL_OK)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "hash failed");
    cl_cbor_enc_init(&e, rec, sizeof rec);
    cl_cbor_enc_array(&e, 5);
    cl_cbor_enc_uint(&e, CL_REC_OWNER);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_bstr(&e, der, der_len);
    cl_cbor_enc_bstr(&e, h, 32);
    cl_cbor_enc_bstr(&e, x5t, 8);
    if (cl_cbor_enc_finish(&e, &rec_len) != CL_OK)
        return cl_res_error(r, CL_COAP_REQUEST_TOO_LARGE, "too-large", "certificate too large");
    if (cl_core_commit(c, rec, rec_len) != CL_OK)
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                     "the sealed log could not be written; nothing changed");
    cl_core_log(c, CL_LOG_INFO, "owner certificate sealed; core claimed");
    r->code = CL_COAP_CHANGED;
    cl_cbor_enc_init(&e, r->body, sizeof r->body);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, "owner");
    cl_cbor_enc_bstr(&e, h, 32);
    return cl_cbor_enc_finish(&e, &r->body_len);
}

static cl_status_t post_provision(reqctx_t *r)
{
    cl_core_t *c = r->c;
    const uint8_t *ca, *id;
    size_t ca_len, id_len;
    cl_pki_cert_info_t ci, ii;
    uint8_t *rec;
    size_t rec_len, rec_size = 2 * CL_PKI_MAX_CERT_BYTES + 64;
    cl_cbor_enc_t e;
    int64_t t = now_s(c);

    if (r->req->code != CL_COAP_POST)
        return cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "POST only");
    if (c->st.phase != CL_PHASE_CLAIMED)
        return cl_res_error(r, CL_COAP_FORBIDDEN, "wrong-state",
                     c->st.phase == CL_PHASE_FRESH ? "claim the core first (POST /pki/owner)"
                                                   : "already provisioned");
    if (!cl_res_get_bstr(r->req->payload, r->req->payload_len, "ca_cert", &ca, &ca_len) ||
        !cl_res_get_bstr(r->req->payload, r->req->payload_len, "identity_cert", &id, &id_len) ||
        ca_len > CL_PKI_MAX_CERT_BYTES || id_len > CL_PKI_MAX_CERT_BYTES)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                     "{\"ca_cert\": bstr, \"identity_cert\": bstr} expected");
    if (cl_pki_cert_parse(ca, ca_len, &ci) != CL_OK || cl_pki_cert_parse(id, id_len, &ii) != CL_OK)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-certificate", "unparsable certificate");
    if (cl_pki_verify_issued(ca, ca_len, c->st.owner_cert, c->st.owner_len, t) != CL_OK ||
        cl_pki_verify_issued(id, id_len, c->st.owner_cert, c->st.owner_len, t) != CL_OK)
        return cl_res_error(r, CL_COAP_FORBIDDEN, "not-owner",
                     "the certificates are not signed by this core's owner");
    if (!ci.is_ca || ci.pathlen != 0 || memcmp(ci.pub, c->st.ca_pub, 65) != 0)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-certificate",
                     "ca_cert must be a pathlen-0 CA for this core's CA key");
    if (ii.is_ca || memcmp(ii.pub, c->st.identity_pub, 65) != 0)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-certificate",
                     "identity_cert must be a leaf for this core's identity key");
    if ((rec = malloc(rec_size)) == NULL)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    cl_cbor_enc_init(&e, rec, rec_size);
    cl_cbor_enc_array(&e, 4);
    cl_cbor_enc_uint(&e, CL_REC_PROVISION);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_bstr(&e, ca, ca_len);
    cl_cbor_enc_bstr(&e, id, id_len);
    cl_status_t st = cl_cbor_enc_finish(&e, &rec_len);
    if (st == CL_OK)
        st = cl_core_commit(c, rec, rec_len);
    free(rec);
    if (st != CL_OK)
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                     "the sealed log could not be written; nothing changed");
    if (cl_sessions_set_identity(c) != CL_OK)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "identity credential");
    cl_core_log(c, CL_LOG_INFO, "core provisioned: CA and identity certificates sealed");
    r->code = CL_COAP_CHANGED;
    r->body[0] = 0xa0; /* {} */
    r->body_len = 1;
    return CL_OK;
}

/* ---- protected resources ---- */

bool cl_res_role_in(const reqctx_t *r, unsigned mask)
{
    return r->x != NULL && (mask & (1u << r->x->role)) != 0;
}

static cl_status_t get_whoami(reqctx_t *r)
{
    cl_cbor_enc_t e;
    static const uint8_t any[] = {0x81, 0x61, '*'};
    const char *name = "owner";
    const uint8_t *perms = any;
    size_t perms_len = sizeof any;
    if (r->x->role != CL_ROLE_OWNER) {
        cl_client_t *cl = cl_state_client(&r->c->st, r->x->client_id);
        name = cl != NULL ? cl->name : "?";
        if (cl != NULL) {
            perms = cl->perms;
            perms_len = cl->perms_len;
        }
    }
    r->code = CL_COAP_CONTENT;
    cl_cbor_enc_init(&e, r->body, sizeof r->body);
    cl_cbor_enc_map(&e, 4);
    cl_cbor_enc_tstr_z(&e, "publish");
    cl_cbor_enc_raw(&e, perms, perms_len);
    cl_cbor_enc_tstr_z(&e, "id");
    cl_cbor_enc_uint(&e, r->x->client_id);
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr_z(&e, name);
    cl_cbor_enc_tstr_z(&e, "role");
    cl_cbor_enc_tstr_z(&e, cl_role_name(r->x->role));
    return cl_cbor_enc_finish(&e, &r->body_len);
}

static cl_status_t post_token(reqctx_t *r)
{
    cl_core_t *c = r->c;
    const char *role_s, *name = "";
    size_t role_len, name_len = 0;
    uint64_t ttl;
    uint8_t token[TOKEN_LEN], h[32], rec[256 + CL_PERMS_MAX];
    size_t rec_len, perms_len;
    const uint8_t *perms;
    cl_cbor_enc_t e;
    const uint8_t *p = r->req->payload;
    size_t n = r->req->payload_len;

    if (!get_perms(p, n, &perms, &perms_len, false))
        return cl_res_error(
            r, CL_COAP_BAD_REQUEST, "bad-request",
            "publish: an array of 1..16 event types (printable, <= 64 bytes; \"*\" = any)");
    if (!cl_res_get_tstr(p, n, "role", &role_s, &role_len) || !cl_res_get_uint(p, n, "ttl", &ttl))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                     "{\"role\": text, \"ttl\": seconds} expected");
    int role = cl_role_parse(role_s, role_len);
    if (role == CL_ROLE_NONE)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                     "role must be admin, user, device or service");
    if (role == CL_ROLE_ADMIN && r->x->role != CL_ROLE_OWNER)
        return cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "only the owner creates admin tokens");
    if (ttl < TTL_MIN_S || ttl > TTL_MAX_S)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "ttl must be 60..604800 seconds");
    cl_cbor_dec_t d;
    if (cl_res_map_find(p, n, "name", &d) &&
        (cl_cbor_dec_tstr(&d, &name, &name_len) != CL_OK || name_len >= CL_NAME_MAX))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "name: text of < 64 bytes");
    cl_buf_t part = {token, TOKEN_LEN};
    if (c->platform.read_rand(c->platform.self, token, TOKEN_LEN) != CL_OK ||
        cl_sha256(&c->crypto, &part, 1, h) != CL_OK)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "no randomness");
    int64_t now = cl_core_now(c), expires = now + (int64_t)ttl * 1000;
    uint32_t id = c->st.next_token_id;
    cl_cbor_enc_init(&e, rec, sizeof rec);
    cl_cbor_enc_array(&e, 8);
    cl_cbor_enc_uint(&e, CL_REC_TOKEN);
    cl_cbor_enc_int(&e, now);
    cl_cbor_enc_uint(&e, id);
    cl_cbor_enc_bstr(&e, h, 32);
    cl_cbor_enc_uint(&e, (uint64_t)role);
    cl_cbor_enc_int(&e, expires);
    cl_cbor_enc_tstr(&e, name, name_len);
    cl_cbor_enc_bstr(&e, perms, perms_len);
    if (cl_cbor_enc_finish(&e, &rec_len) != CL_OK || cl_core_commit(c, rec, rec_len) != CL_OK) {
        cl_wipe(token, sizeof token);
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                     "the sealed log could not be written; no token created");
    }
    r->code = CL_COAP_CREATED;
    cl_cbor_enc_init(&e, r->body, sizeof r->body);
    cl_cbor_enc_map(&e, 3);
    cl_cbor_enc_tstr_z(&e, "token");
    cl_cbor_enc_bstr(&e, token, TOKEN_LEN);
    cl_cbor_enc_tstr_z(&e, "id");
    cl_cbor_enc_uint(&e, id);
    cl_cbor_enc_tstr_z(&e, "expires");
    cl_cbor_enc_int(&e, expires);
    cl_wipe(token, sizeof token);
    cl_core_log(c, CL_LOG_INFO, "enrollment token %u created (role %s)", id, cl_role_name(role));
    return cl_cbor_enc_finish(&e, &r->body_len);
}

static cl_status_t post_enroll(reqctx_t *r)
{
    cl_core_t *c = r->c;
    const uint8_t *tok;
    const char *name;
    size_t tok_len, name_len;
    uint8_t h[32], cert[CL_PKI_MAX_CERT_BYTES], x5t[8], ch[32];
    size_t cert_len;
    char cn[CL_NAME_MAX], ou[32];
    const uint8_t *p = r->req->payload;
    size_t n = r->req->payload_len;

    if (!cl_res_get_bstr(p, n, "token", &tok, &tok_len) || tok_len != TOKEN_LEN ||
        !cl_res_get_tstr(p, n, "name", &name, &name_len) || name_len == 0 || name_len >= CL_NAME_MAX)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                     "{\"token\": bstr(16), \"name\": text} expected");
    cl_buf_t part = {tok, tok_len};
    if (cl_sha256(&c->crypto, &part, 1, h) != CL_OK)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "hash failed");
    cl_token_t *tk = cl_state_token_by_hash(&c->st, h);
    if (tk == NULL)
        return cl_res_error(r, CL_COAP_FORBIDDEN, "token-invalid", "unknown enrollment token");
    if (tk->used)
        return cl_res_error(r, CL_COAP_FORBIDDEN, "token-used", "this token was already used");
    int64_t now = cl_core_now(c);
    if (now > tk->expires_ms) {
        cl_core_persist_clock(c, 0); /* the decision must survive a restart with an older clock */
        return cl_res_error(r, CL_COAP_FORBIDDEN, "token-expired", "this token has expired");
    }
    memcpy(cn, name, name_len);
    cn[name_len] = '\0';
    size_t rl = strlen(cl_role_name(tk->role));
    memcpy(ou, "role:", 5);
    memcpy(ou + 5, cl_role_name(tk->role), rl + 1);
    uint64_t serial = c->st.next_serial;
    cl_pki_cert_req_t creq = {.kind = CL_PKI_LEAF,
                              .cn = cn,
                              .ou = ou,
                              .pub = r->x->enrollee_pub,
                              .serial = serial,
                              .not_before = now / 1000 - 300,
                              .not_after = now / 1000 + (int64_t)CERT_DAYS * 86400,
                              .issuer = c->st.ca_cert,
                              .issuer_len = c->st.ca_len};
    if (cl_pki_make_cert(&creq, cl_core_ca_sign, c, cert, sizeof cert, &cert_len) != CL_OK)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "certificate issuance failed");
    cl_buf_t cp = {cert, cert_len};
    if (cl_sha256(&c->crypto, &cp, 1, ch) != CL_OK ||
        cl_pki_thumbprint(cert, cert_len, x5t) != CL_OK)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "hash failed");
    uint32_t id = c->st.next_client_id;
    uint8_t *rec = malloc(CL_PKI_MAX_CERT_BYTES + 256 + CL_PERMS_MAX);
    size_t rec_len;
    cl_cbor_enc_t e;
    if (rec == NULL)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    cl_cbor_enc_init(&e, rec, CL_PKI_MAX_CERT_BYTES + 256 + CL_PERMS_MAX);
    cl_cbor_enc_array(&e, 11);
    cl_cbor_enc_uint(&e, CL_REC_ENROLL);
    cl_cbor_enc_int(&e, now);
    cl_cbor_enc_uint(&e, tk->id);
    cl_cbor_enc_uint(&e, id);
    cl_cbor_enc_uint(&e, tk->role);
    cl_cbor_enc_tstr(&e, name, name_len);
    cl_cbor_enc_bstr(&e, cert, cert_len);
    cl_cbor_enc_bstr(&e, ch, 32);
    cl_cbor_enc_bstr(&e, x5t, 8);
    cl_cbor_enc_uint(&e, serial);
    cl_cbor_enc_bstr(&e, tk->perms, tk->perms_len);
    cl_status_t st = cl_cbor_enc_finish(&e, &rec_len);
    uint8_t role = tk->role; /* tk may move when the client table grows */
    if (st == CL_OK)
        st = cl_core_commit(c, rec, rec_len);
    free(rec);
    if (st != CL_OK)
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                     "the sealed log could not be written; not enrolled");
    /* the enrollee session ends here: the client comes back with its certificate */
    r->x->role = CL_ROLE_NONE;
    cl_core_log(c, CL_LOG_INFO, "client %u enrolled (role %s)", id, cl_role_name(role));
    r->code = CL_COAP_CREATED;
    cl_cbor_enc_init(&e, r->body, sizeof r->body);
    cl_cbor_enc_map(&e, 3);
    cl_cbor_enc_tstr_z(&e, "id");
    cl_cbor_enc_uint(&e, id);
    cl_cbor_enc_tstr_z(&e, "role");
    cl_cbor_enc_tstr_z(&e, cl_role_name(role));
    cl_cbor_enc_tstr_z(&e, "cert");
    cl_cbor_enc_bstr(&e, cert, cert_len);
    return cl_cbor_enc_finish(&e, &r->body_len);
}

/* The most recent clients that fit in one response (paging comes with Block2, issue 5). */
static cl_status_t get_clients(reqctx_t *r)
{
    cl_state_t *s = &r->c->st;
    cl_cbor_enc_t e;
    size_t len;
    size_t n = s->n_clients < MAX_LISTED_CLIENTS ? s->n_clients : MAX_LISTED_CLIENTS;
    uint8_t *big = malloc(CLIENTS_MAX_BODY);
    if (big == NULL)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    r->code = CL_COAP_CONTENT;
    for (;; n = n * 3 / 4) { /* the most recent clients that fit (served block-wise) */
        cl_cbor_enc_init(&e, big, CLIENTS_MAX_BODY);
        cl_cbor_enc_array(&e, n);
        for (size_t i = 0; i < n; i++) {
            const cl_client_t *cl = &s->clients[s->n_clients - n + i];
            cl_cbor_enc_map(&e, 7);
            cl_cbor_enc_tstr_z(&e, "id");
            cl_cbor_enc_uint(&e, cl->id);
            cl_cbor_enc_tstr_z(&e, "name");
            cl_cbor_enc_tstr_z(&e, cl->name);
            cl_cbor_enc_tstr_z(&e, "role");
            cl_cbor_enc_tstr_z(&e, cl_role_name(cl->role));
            cl_cbor_enc_tstr_z(&e, "revoked");
            cl_cbor_enc_bool(&e, cl->revoked);
            cl_cbor_enc_tstr_z(&e, "x5t");
            cl_cbor_enc_bstr(&e, cl->x5t, 8);
            cl_cbor_enc_tstr_z(&e, "publish");
            cl_cbor_enc_raw(&e, cl->perms, cl->perms_len);
            cl_cbor_enc_tstr_z(&e, "groups");
            if (cl->groups != NULL)
                cl_cbor_enc_raw(&e, cl->groups, cl->groups_len);
            else
                cl_cbor_enc_array(&e, 0);
        }
        if (cl_cbor_enc_finish(&e, &len) == CL_OK || n == 0)
            break;
    }
    r->big = big;
    r->big_len = len;
    return CL_OK;
}

/* POST /clients/{id}/permissions {"publish": [types]} */
static cl_status_t post_permissions(reqctx_t *r, uint32_t id)
{
    cl_core_t *c = r->c;
    uint8_t rec[64 + CL_PERMS_MAX];
    size_t rec_len, perms_len;
    const uint8_t *perms;
    cl_cbor_enc_t e;
    cl_client_t *cl = cl_state_client(&c->st, id);
    if (cl == NULL)
        return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such client");
    if (cl->role == CL_ROLE_ADMIN && r->x->role != CL_ROLE_OWNER)
        return cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "only the owner changes admins");
    if (!get_perms(r->req->payload, r->req->payload_len, &perms, &perms_len, true))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                     "{\"publish\": [1..16 event types, \"*\" = any]} expected");
    cl_cbor_enc_init(&e, rec, sizeof rec);
    cl_cbor_enc_array(&e, 4);
    cl_cbor_enc_uint(&e, CL_REC_PERMS);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_uint(&e, id);
    cl_cbor_enc_bstr(&e, perms, perms_len);
    if (cl_cbor_enc_finish(&e, &rec_len) != CL_OK || cl_core_commit(c, rec, rec_len) != CL_OK)
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                     "the sealed log could not be written; nothing changed");
    cl_core_log(c, CL_LOG_INFO, "client %u permissions changed", id);
    r->code = CL_COAP_CHANGED;
    r->body[0] = 0xa0;
    r->body_len = 1;
    return CL_OK;
}

static cl_status_t post_revoke(reqctx_t *r, uint32_t id)
{
    cl_core_t *c = r->c;
    uint8_t rec[32];
    size_t rec_len;
    cl_cbor_enc_t e;
    cl_client_t *cl = cl_state_client(&c->st, id);
    if (cl == NULL)
        return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such client");
    if (cl->role == CL_ROLE_ADMIN && r->x->role != CL_ROLE_OWNER)
        return cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "only the owner revokes admins");
    if (!cl->revoked) {
        cl_cbor_enc_init(&e, rec, sizeof rec);
        cl_cbor_enc_array(&e, 3);
        cl_cbor_enc_uint(&e, CL_REC_REVOKE);
        cl_cbor_enc_int(&e, cl_core_now(c));
        cl_cbor_enc_uint(&e, id);
        if (cl_cbor_enc_finish(&e, &rec_len) != CL_OK || cl_core_commit(c, rec, rec_len) != CL_OK)
            return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                         "the sealed log could not be written; not revoked");
        cl_core_log(c, CL_LOG_INFO, "client %u revoked; its sessions dropped", id);
    }
    bool self = r->x->client_id == id;
    cl_sessions_drop_client(c, id);
    if (self)
        r->x = NULL; /* our own session is gone: the answer cannot be protected */
    r->code = CL_COAP_CHANGED;
    r->body[0] = 0xa0;
    r->body_len = 1;
    return CL_OK;
}

/* What the rules see of a published event (pointers into the request). */
typedef struct pub_event {
    const char *type;
    size_t type_len;
    const uint8_t *props;
    size_t props_len;
    int64_t time_ms;
} pub_event_t;

/* The archive tag of (type, source): HMAC-SHA-256(tag key, type || 0x00 || source LE32)[0..16]. */
static cl_status_t archive_tag(cl_core_t *c, const char *type, size_t type_len, uint32_t source,
                               uint8_t tag[16])
{
    uint8_t full[32], zero = 0;
    uint8_t src[4] = {(uint8_t)source, (uint8_t)(source >> 8), (uint8_t)(source >> 16),
                      (uint8_t)(source >> 24)};
    cl_buf_t parts[3] = {{(const uint8_t *)type, type_len}, {&zero, 1}, {src, 4}};
    if (cl_hmac_sha256(&c->crypto, c->st.tag_key, 32, parts, 3, full) != CL_OK)
        return CL_FAIL(CL_ERR_CRYPTO);
    memcpy(tag, full, 16);
    cl_wipe(full, sizeof full);
    return CL_OK;
}

/*
 * The same for an event the session x publishes, remembered in the session
 * (its source never changes): a device publishing one type pays one HMAC per
 * session, not one per event. The tag key never leaves c->st.
 */
static cl_status_t session_tag(cl_core_t *c, cl_session_t *x, const char *type, size_t type_len,
                               uint8_t tag[16])
{
    if (type_len == 0 || type_len > CL_EVTYPE_MAX_NAME)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (x->tag_type_len == type_len && memcmp(x->tag_type, type, type_len) == 0) {
        memcpy(tag, x->tag_val, 16);
        return CL_OK;
    }
    cl_status_t st = archive_tag(c, type, type_len, x->client_id, tag);
    if (st != CL_OK)
        return st;
    x->tag_type_len = (uint8_t)type_len;
    memcpy(x->tag_type, type, type_len);
    memcpy(x->tag_val, tag, 16);
    return CL_OK;
}

/*
 * The next archive nonce: prefix(8) || counter(4, big-endian). The prefix is
 * 8 random bytes drawn at the first event of a boot and again whenever the
 * counter wraps, so a nonce never repeats under the (persistent) archive key
 * except with probability ~ (prefixes drawn)^2 / 2^65; one read_rand per 2^32
 * events instead of one per event (NIST SP 800-38D 8.2.1: fixed field +
 * invocation field).
 */
static cl_status_t archive_nonce(cl_core_t *c, uint8_t nonce[12])
{
    if (!c->arch_nonce_ready || c->arch_nonce_ctr == UINT32_MAX) {
        cl_status_t st = c->platform.read_rand(c->platform.self, c->arch_nonce_prefix, 8);
        if (st != CL_OK)
            return st;
        c->arch_nonce_ctr = 0;
        c->arch_nonce_ready = true;
    }
    uint32_t n = ++c->arch_nonce_ctr;
    memcpy(nonce, c->arch_nonce_prefix, 8);
    nonce[8] = (uint8_t)(n >> 24);
    nonce[9] = (uint8_t)(n >> 16);
    nonce[10] = (uint8_t)(n >> 8);
    nonce[11] = (uint8_t)n;
    return CL_OK;
}

/* One event -> one archive record (tag, bucket, nonce || AES-GCM ciphertext). */
static cl_status_t archive_event(reqctx_t *r, cl_cbor_dec_t *d, uint8_t *buf, size_t buf_size,
                                 cl_archive_rec_t *rec, pub_event_t *pe, char *why,
                                 size_t why_size)
{
    cl_core_t *c = r->c;
    size_t n;
    const char *type = NULL;
    size_t type_len = 0;
    const uint8_t *props = NULL;
    size_t props_len = 0;
    int64_t t = c->now_ms; /* read once per batch (handle), not once per event */
    uint8_t pt[CL_CORE_MAX_MESSAGE + 64], aad[24];
    size_t pt_len, ct_len;

    if (cl_cbor_dec_map(d, &n) != CL_OK || n > 3)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (kl == 4 && memcmp(k, "type", 4) == 0) {
            if (type != NULL || cl_cbor_dec_tstr(d, &type, &type_len) != CL_OK || type_len == 0 ||
                type_len > 64)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        } else if (kl == 10 && memcmp(k, "properties", 10) == 0) {
            cl_cbor_type_t ty;
            if (props != NULL || cl_cbor_dec_peek(d, &ty) != CL_OK || ty != CL_CBOR_MAP ||
                cl_cbor_dec_raw(d, &props, &props_len) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        } else if (kl == 4 && memcmp(k, "time", 4) == 0) {
            if (cl_cbor_dec_int(d, &t) != CL_OK || t < 0)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        } else {
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }
    if (type == NULL || props == NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    cl_evtype_t *et = cl_state_evtype(&c->st, type, type_len);
    if (et == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND); /* unknown event type */
    if (r->x->role != CL_ROLE_OWNER) {
        cl_client_t *cl = cl_state_client(&c->st, r->x->client_id);
        if (cl == NULL || !cl_perms_allow(cl->perms, cl->perms_len, type, type_len))
            return CL_FAIL(CL_ERR_AUTH); /* not allowed to publish this type */
    }
    if (et->schema != NULL &&
        cl_schema_validate(et->schema, et->schema_len, props, props_len, why, why_size) != CL_OK)
        return CL_ERR_UNSUPPORTED; /* the properties violate the type's schema */
    *pe = (pub_event_t){type, type_len, props, props_len, t};
    /* tag = HMAC(tag_key, type || 0 || source) truncated; bucket = hours */
    if (session_tag(c, r->x, type, type_len, rec->tag) != CL_OK)
        return CL_FAIL(CL_ERR_CRYPTO);
    rec->bucket = (uint64_t)t / 3600000u;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, pt, sizeof pt);
    cl_cbor_enc_map(&e, 4);
    cl_cbor_enc_tstr_z(&e, "source");
    cl_cbor_enc_uint(&e, r->x->client_id);
    cl_cbor_enc_tstr_z(&e, "type");
    cl_cbor_enc_tstr(&e, type, type_len);
    cl_cbor_enc_tstr_z(&e, "time");
    cl_cbor_enc_int(&e, t);
    cl_cbor_enc_tstr_z(&e, "properties");
    cl_cbor_enc_raw(&e, props, props_len);
    if (cl_cbor_enc_finish(&e, &pt_len) != CL_OK || buf_size < 12 + pt_len + 16)
        return CL_FAIL(CL_ERR_LIMIT);
    memcpy(aad, rec->tag, 16);
    for (int i = 0; i < 8; i++)
        aad[16 + i] = (uint8_t)(rec->bucket >> (8 * i));
    cl_status_t st = archive_nonce(c, buf);
    if (st == CL_OK)
        st = cl_aead_encrypt(&c->crypto, c->archive_aead, buf, 12, aad, sizeof aad, pt, pt_len,
                             buf + 12, buf_size - 12, &ct_len);
    cl_wipe(pt, sizeof pt);
    if (st != CL_OK)
        return st;
    rec->data = buf;
    rec->len = 12 + ct_len;
    return CL_OK;
}

cl_status_t cl_archive_flush(cl_core_t *c)
{
    if (c->arch_n == 0)
        return c->arch_failed ? CL_FAIL(CL_ERR_PERSIST) : CL_OK;
    uint64_t *ids = malloc(c->arch_n * sizeof *ids);
    cl_status_t st = ids == NULL ? CL_FAIL(CL_ERR_FULL) : CL_OK;
    for (size_t i = 0; st == CL_OK && i < c->arch_n; i++) /* offsets -> pointers */
        c->arch_recs[i].data = c->arch_buf + (uintptr_t)c->arch_recs[i].data;
    if (st == CL_OK)
        st = c->host.archive_put(c->host.ctx, c->arch_recs, c->arch_n, ids);
    free(ids);
    c->arch_n = 0;
    c->arch_used = 0;
    if (st != CL_OK)
        c->arch_failed = true;
    return c->arch_failed ? CL_FAIL(CL_ERR_PERSIST) : CL_OK;
}

void cl_archive_discard(cl_core_t *c, bool release)
{
    c->arch_n = 0;
    c->arch_used = 0;
    c->arch_failed = false;
    if (release) {
        free(c->arch_recs);
        free(c->arch_buf);
        c->arch_recs = NULL;
        c->arch_buf = NULL;
        c->arch_cap = c->arch_buf_cap = 0;
    }
}

cl_status_t cl_archive_queue(cl_core_t *c, const cl_archive_rec_t *recs, size_t n)
{
    if (!c->arch_defer) { /* outside a batch: at once */
        uint64_t ids[MAX_EVENTS_PER_REQUEST];
        if (n > MAX_EVENTS_PER_REQUEST)
            return CL_FAIL(CL_ERR_LIMIT);
        return c->host.archive_put(c->host.ctx, recs, n, ids);
    }
    if (c->arch_failed)
        return CL_FAIL(CL_ERR_PERSIST);
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += recs[i].len;
    if (c->arch_used + bytes > CL_ARCHIVE_QUEUE_BYTES && cl_archive_flush(c) != CL_OK)
        return CL_FAIL(CL_ERR_PERSIST);
    if (c->arch_n + n > c->arch_cap) {
        size_t cap = c->arch_cap ? c->arch_cap : 64;
        while (cap < c->arch_n + n)
            cap *= 2;
        cl_archive_rec_t *r = realloc(c->arch_recs, cap * sizeof *r);
        if (r == NULL)
            return CL_FAIL(CL_ERR_FULL);
        c->arch_recs = r;
        c->arch_cap = cap;
    }
    if (c->arch_used + bytes > c->arch_buf_cap) {
        size_t cap = c->arch_buf_cap ? c->arch_buf_cap : 16384;
        while (cap < c->arch_used + bytes)
            cap *= 2;
        uint8_t *b = realloc(c->arch_buf, cap);
        if (b == NULL)
            return CL_FAIL(CL_ERR_FULL);
        c->arch_buf = b;
        c->arch_buf_cap = cap;
    }
    for (size_t i = 0; i < n; i++) { /* ciphertext: copied, nothing to wipe */
        cl_archive_rec_t *q = &c->arch_recs[c->arch_n++];
        *q = recs[i];
        memcpy(c->arch_buf + c->arch_used, recs[i].data, recs[i].len);
        q->data = (const uint8_t *)(uintptr_t)c->arch_used; /* an offset until the flush */
        c->arch_used += recs[i].len;
    }
    return CL_OK;
}

static cl_status_t post_events(reqctx_t *r)
{
    cl_core_t *c = r->c;
    cl_cbor_dec_t d;
    cl_cbor_type_t ty;
    size_t n = 1;
    const size_t slot = CL_CORE_MAX_MESSAGE + 128;
    cl_archive_rec_t recs[MAX_EVENTS_PER_REQUEST];
    uint64_t ids[MAX_EVENTS_PER_REQUEST];
    pub_event_t pes[MAX_EVENTS_PER_REQUEST];
    char why[CL_MODEL_WHY_MAX] = "";

    if (c->host.archive_put == NULL)
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed", "no archive configured");
    cl_cbor_dec_init(&d, r->req->payload, r->req->payload_len);
    if (r->req->payload_len == 0 || cl_cbor_dec_peek(&d, &ty) != CL_OK)
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "an event or an array of events");
    if (ty == CL_CBOR_ARRAY &&
        (cl_cbor_dec_array(&d, &n) != CL_OK || n == 0 || n > MAX_EVENTS_PER_REQUEST))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "1..32 events per request");
    uint8_t *buf = malloc(n * slot);
    if (buf == NULL)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    cl_status_t st = CL_OK;
    for (size_t i = 0; i < n && st == CL_OK; i++)
        st = archive_event(r, &d, buf + i * slot, slot, &recs[i], &pes[i], why, sizeof why);
    if (st == CL_OK && !cl_cbor_dec_at_end(&d))
        st = CL_FAIL(CL_ERR_BAD_INPUT);
    if (st == CL_ERR_AUTH) { /* nothing of the request is stored */
        free(buf);
        return cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden",
                     "this client may not publish events of that type (see its permissions)");
    }
    if (st == CL_ERR_NOT_FOUND) {
        free(buf);
        return cl_res_error(r, CL_COAP_NOT_FOUND, "unknown-event-type",
                     "no such event type: an admin creates it first (cloister event-type add)");
    }
    if (st == CL_ERR_UNSUPPORTED) {
        free(buf);
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "schema-violation", why);
    }
    if (st != CL_OK) {
        free(buf);
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                     "event: {\"type\": text, \"properties\": map, \"time\": ms?}");
    }
    (void)ids;
    st = cl_archive_queue(c, recs, n);
    free(buf);
    if (st != CL_OK)
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                     "the archive did not store the events; publish again");
    /* the rules run on what was stored, in arrival order; their effects are sealed before
     * the answer (an answer that never arrives makes the client publish again: at least once) */
    for (size_t i = 0; i < n; i++)
        cl_rules_event(c, pes[i].type, pes[i].type_len, r->x->client_id, pes[i].time_ms,
                       pes[i].props, pes[i].props_len);
    if (cl_rules_commit(c) != CL_OK)
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                            "the events are stored but the rules' effects could not be sealed");
    return cl_res_uint_answer(r, CL_COAP_CHANGED, "accepted", n);
}

/* "/clients/<id>/<action>" */

/* ---- event types ---- */

static uint8_t roles_mask(const uint8_t *p, size_t len, bool *ok)
{
    cl_cbor_dec_t d;
    size_t n;
    uint8_t mask = 0;
    *ok = false;
    cl_cbor_dec_init(&d, p, len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK || n > 8)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t tl;
        if (cl_cbor_dec_tstr(&d, &t, &tl) != CL_OK)
            return 0;
        int role = cl_role_parse(t, tl);
        if (role == CL_ROLE_NONE)
            return 0;
        mask |= (uint8_t)(1u << role);
    }
    *ok = cl_cbor_dec_at_end(&d);
    return mask;
}

/* POST /event-types {"name", "description"?, "history"?: [roles], "schema"?, "if_version"?} */
static cl_status_t post_event_type(reqctx_t *r)
{
    cl_core_t *c = r->c;
    const char *name, *desc = "";
    size_t name_len, desc_len = 0;
    uint8_t hist = (uint8_t)(1u << CL_ROLE_ADMIN | 1u << CL_ROLE_USER);
    const uint8_t *p = r->req->payload;
    size_t n = r->req->payload_len;
    cl_cbor_dec_t d;
    uint8_t rec[128 + CL_EVTYPE_MAX_NAME + CL_EVTYPE_MAX_DESC + CL_SCHEMA_MAX];
    size_t rec_len;
    cl_cbor_enc_t e;
    const uint8_t *schema = NULL;
    size_t schema_len = 0;
    uint64_t if_version;
    char why[CL_MODEL_WHY_MAX];

    if (!cl_res_get_tstr(p, n, "name", &name, &name_len) || !cl_evtype_name_valid(name, name_len))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                     "{\"name\": 1..64 printable characters without spaces} expected");
    if (cl_res_map_find(p, n, "description", &d) &&
        (cl_cbor_dec_tstr(&d, &desc, &desc_len) != CL_OK || desc_len > CL_EVTYPE_MAX_DESC))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "description: text of <= 128 bytes");
    if (cl_res_map_find(p, n, "history", &d)) {
        const uint8_t *raw;
        size_t raw_len;
        bool ok;
        if (cl_cbor_dec_raw(&d, &raw, &raw_len) != CL_OK)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "history: [roles]");
        hist = roles_mask(raw, raw_len, &ok);
        if (!ok)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request",
                         "history: an array of admin, user, device, service");
    }
    if (cl_res_map_find(p, n, "schema", &d)) {
        cl_cbor_type_t ty;
        if (cl_cbor_dec_peek(&d, &ty) != CL_OK || ty != CL_CBOR_MAP ||
            cl_cbor_dec_raw(&d, &schema, &schema_len) != CL_OK || schema_len > CL_SCHEMA_MAX)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-schema",
                                "schema: a JSON Schema object of <= 4096 bytes (CBOR)");
        if (cl_schema_check(schema, schema_len, why, sizeof why) != CL_OK)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-schema", why);
    }
    cl_evtype_t *old = cl_state_evtype(&c->st, name, name_len);
    if (old == NULL && c->st.n_evtypes >= CL_EVTYPE_MAX)
        return cl_res_error(r, CL_COAP_REQUEST_TOO_LARGE, "too-large", "too many event types");
    if (cl_res_get_uint(p, n, "if_version", &if_version) &&
        if_version != (old != NULL ? old->version : 0))
        return cl_model_conflict(r, old != NULL ? old->version : 0);
    bool existed = old != NULL;
    cl_cbor_enc_init(&e, rec, sizeof rec);
    cl_cbor_enc_array(&e, 7);
    cl_cbor_enc_uint(&e, CL_REC_EVTYPE);
    cl_cbor_enc_int(&e, cl_core_now(c));
    cl_cbor_enc_tstr(&e, name, name_len);
    cl_cbor_enc_tstr(&e, desc, desc_len);
    cl_cbor_enc_uint(&e, hist);
    if (schema != NULL)
        cl_cbor_enc_raw(&e, schema, schema_len);
    else
        cl_cbor_enc_null(&e);
    cl_cbor_enc_tstr_z(&e, old != NULL ? old->scenario : "");
    if (cl_cbor_enc_finish(&e, &rec_len) != CL_OK || cl_core_commit(c, rec, rec_len) != CL_OK)
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                     "the sealed log could not be written; nothing changed");
    return cl_res_uint_answer(r, existed ? CL_COAP_CHANGED : CL_COAP_CREATED, "version",
                              cl_state_evtype(&c->st, name, name_len)->version);
}

static void enc_roles(cl_cbor_enc_t *e, uint8_t mask)
{
    size_t n = 0;
    for (int role = CL_ROLE_ADMIN; role <= CL_ROLE_SERVICE; role++)
        n += (mask >> role) & 1u;
    cl_cbor_enc_array(e, n);
    for (int role = CL_ROLE_ADMIN; role <= CL_ROLE_SERVICE; role++)
        if ((mask >> role) & 1u)
            cl_cbor_enc_tstr_z(e, cl_role_name(role));
}

/* GET /event-types */
static cl_status_t get_event_types(reqctx_t *r)
{
    cl_state_t *s = &r->c->st;
    cl_cbor_enc_t e;
    size_t len;
    uint8_t *big = malloc(HISTORY_MAX_BODY);
    if (big == NULL)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    cl_cbor_enc_init(&e, big, HISTORY_MAX_BODY);
    cl_cbor_enc_array(&e, s->n_evtypes);
    for (size_t i = 0; i < s->n_evtypes; i++) {
        const cl_evtype_t *t = &s->evtypes[i];
        cl_cbor_enc_map(&e, 4 + (t->schema != NULL) + (t->scenario[0] != 0));
        cl_cbor_enc_tstr_z(&e, "name");
        cl_cbor_enc_tstr_z(&e, t->name);
        cl_cbor_enc_tstr_z(&e, "description");
        cl_cbor_enc_tstr_z(&e, t->desc);
        cl_cbor_enc_tstr_z(&e, "history");
        enc_roles(&e, t->history_roles);
        cl_cbor_enc_tstr_z(&e, "version");
        cl_cbor_enc_uint(&e, t->version);
        if (t->schema != NULL) {
            cl_cbor_enc_tstr_z(&e, "schema");
            cl_cbor_enc_raw(&e, t->schema, t->schema_len);
        }
        if (t->scenario[0] != 0) {
            cl_cbor_enc_tstr_z(&e, "scenario");
            cl_cbor_enc_tstr_z(&e, t->scenario);
        }
    }
    if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
        free(big);
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "response too large");
    }
    r->code = CL_COAP_CONTENT;
    r->big = big;
    r->big_len = len;
    return CL_OK;
}

/* ---- history: GET /events?type=&source=&since=&until=&after=&limit= ---- */

typedef struct hist_ev {
    int64_t time;
    uint64_t id;
    uint8_t *cbor; /* the decrypted event map (heap, wiped) */
    size_t len;
} hist_ev_t;

typedef struct hist {
    hist_ev_t *ev;
    size_t n, cap;
    int64_t since, until;
    uint64_t after; /* with since: skip (since, id <= after) */
    size_t skipped; /* rows that failed authentication or did not match their tag */
} hist_t;

static bool may_read(const reqctx_t *r, const cl_evtype_t *t)
{
    return r->x->role == CL_ROLE_OWNER || ((t->history_roles >> r->x->role) & 1u) != 0;
}

static void tag_of(cl_core_t *c, const char *type, size_t type_len, uint32_t source,
                   uint8_t tag[16])
{
    if (archive_tag(c, type, type_len, source, tag) != CL_OK)
        memset(tag, 0, 16); /* matches nothing real */
}

/* Decrypts and checks one archive row for (type, source); adds it to h when it matches. */
static cl_status_t hist_row(cl_core_t *c, hist_t *h, const char *type, size_t type_len,
                            uint32_t source, const uint8_t tag[16], uint64_t id, uint64_t bucket,
                            const uint8_t *data, size_t len)
{
    uint8_t aad[24], *pt;
    size_t pt_len;
    if (len < 12 + 16 || len > CL_CORE_MAX_RECORD) {
        h->skipped++;
        return CL_OK;
    }
    memcpy(aad, tag, 16);
    for (int i = 0; i < 8; i++)
        aad[16 + i] = (uint8_t)(bucket >> (8 * i));
    if ((pt = malloc(len)) == NULL)
        return CL_FAIL(CL_ERR_FULL);
    if (cl_aead_decrypt(&c->crypto, c->archive_aead, data, 12, aad, sizeof aad, data + 12,
                        len - 12, pt, len, &pt_len) != CL_OK) {
        free(pt);
        h->skipped++; /* not ours, moved between tags or buckets, or tampered */
        return CL_OK;
    }
    /* the row must really be (type, source): the tag is the host's index, not proof */
    cl_cbor_dec_t d;
    size_t n;
    uint64_t src = UINT64_MAX;
    int64_t t = -1;
    const char *ty = NULL;
    size_t ty_len = 0;
    bool ok = true;
    cl_cbor_dec_init(&d, pt, pt_len);
    if (cl_cbor_dec_map(&d, &n) != CL_OK || n != 4)
        ok = false;
    for (size_t i = 0; ok && i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            ok = false;
        else if (kl == 6 && memcmp(k, "source", 6) == 0)
            ok = cl_cbor_dec_uint(&d, &src) == CL_OK;
        else if (kl == 4 && memcmp(k, "type", 4) == 0)
            ok = cl_cbor_dec_tstr(&d, &ty, &ty_len) == CL_OK;
        else if (kl == 4 && memcmp(k, "time", 4) == 0)
            ok = cl_cbor_dec_int(&d, &t) == CL_OK;
        else
            ok = cl_cbor_dec_skip(&d) == CL_OK;
    }
    if (!ok || src != source || ty == NULL || ty_len != type_len ||
        memcmp(ty, type, type_len) != 0 || (uint64_t)t / HOUR_MS != bucket) {
        cl_wipe(pt, len);
        free(pt);
        h->skipped++;
        return CL_OK;
    }
    if (t < h->since || t > h->until || (t == h->since && id <= h->after)) {
        cl_wipe(pt, len);
        free(pt);
        return CL_OK;
    }
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        hist_ev_t *ne = realloc(h->ev, nc * sizeof *ne);
        if (ne == NULL) {
            cl_wipe(pt, len);
            free(pt);
            return CL_FAIL(CL_ERR_FULL);
        }
        h->ev = ne;
        h->cap = nc;
    }
    h->ev[h->n++] = (hist_ev_t){.time = t, .id = id, .cbor = pt, .len = pt_len};
    return CL_OK;
}

/* All rows of one (type, source) in the bucket range, up to `want` matching ones. */
static cl_status_t hist_scan(cl_core_t *c, hist_t *h, const char *type, size_t type_len,
                             uint32_t source, size_t want, uint8_t *buf)
{
    uint8_t tag[16];
    uint64_t after = 0, from = (uint64_t)h->since / HOUR_MS, to = (uint64_t)h->until / HOUR_MS;
    size_t start = h->n;
    tag_of(c, type, type_len, source, tag);
    for (int round = 0; round < 1000 && h->n - start < want; round++) {
        size_t len = 0, n = 0, pos = 0;
        cl_status_t st = c->host.archive_scan(c->host.ctx, tag, from, to, after, 64, buf,
                                              HISTORY_SCAN_BUF, &len, &n);
        if (st != CL_OK)
            return st;
        if (len > HISTORY_SCAN_BUF || n > 64)
            return CL_FAIL(CL_ERR_BAD_INPUT); /* the host's answer is checked, not trusted */
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (len - pos < 20)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            uint64_t id = 0, bucket = 0;
            uint32_t rl = 0;
            for (int k = 0; k < 8; k++) {
                id |= (uint64_t)buf[pos + k] << (8 * k);
                bucket |= (uint64_t)buf[pos + 8 + k] << (8 * k);
            }
            for (int k = 0; k < 4; k++)
                rl |= (uint32_t)buf[pos + 16 + k] << (8 * k);
            pos += 20;
            if (rl > len - pos || id <= after)
                return CL_FAIL(CL_ERR_BAD_INPUT); /* truncated, or ids not increasing */
            if (bucket >= from && bucket <= to &&
                (st = hist_row(c, h, type, type_len, source, tag, id, bucket, buf + pos, rl)) !=
                    CL_OK)
                return st;
            pos += rl;
            after = id;
        }
    }
    return CL_OK;
}

static int hist_cmp(const void *a, const void *b)
{
    const hist_ev_t *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static cl_status_t get_events(reqctx_t *r)
{
    cl_core_t *c = r->c;
    cl_state_t *s = &c->st;
    const char *v;
    size_t vl;
    int64_t x;
    hist_t h = {.since = 0, .until = INT64_MAX / 2};
    size_t limit = HISTORY_DEFAULT_LIMIT;
    const cl_evtype_t *only_type = NULL;
    bool have_source = false;
    uint32_t source = 0;
    cl_status_t st = CL_OK;
    const cl_coap_msg_t *q = r->req;

    if (cl_res_get_query(q, "type", &v, &vl) && (only_type = cl_state_evtype(s, v, vl)) == NULL)
        return cl_res_error(r, CL_COAP_NOT_FOUND, "unknown-event-type", "no such event type");
    if (only_type != NULL && !may_read(r, only_type))
        return cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "not allowed to read this history");
    if (cl_res_get_query(q, "source", &v, &vl)) {
        if (!cl_res_parse_int(v, vl, &x) || x < 0 || x > UINT32_MAX)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "source: a client id");
        have_source = true;
        source = (uint32_t)x;
    }
    if (cl_res_get_query(q, "since", &v, &vl) && (!cl_res_parse_int(v, vl, &h.since) || h.since < 0))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "since: ms since the epoch");
    if (cl_res_get_query(q, "until", &v, &vl) && (!cl_res_parse_int(v, vl, &h.until) || h.until < h.since))
        return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "until: ms since the epoch, >= since");
    if (cl_res_get_query(q, "after", &v, &vl)) {
        if (!cl_res_parse_int(v, vl, &x) || x < 0)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "after: an event id (paging)");
        h.after = (uint64_t)x;
    }
    if (cl_res_get_query(q, "limit", &v, &vl)) {
        if (!cl_res_parse_int(v, vl, &x) || x < 1 || x > HISTORY_MAX_LIMIT)
            return cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "limit: 1..100");
        limit = (size_t)x;
    }
    if (c->host.archive_scan == NULL)
        return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed", "no archive configured");
    uint8_t *buf = malloc(HISTORY_SCAN_BUF);
    if (buf == NULL)
        return cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
    /* every (type, source) the caller may read, one tag each; limit+1 per tag finds "more" */
    for (size_t ti = 0; ti < s->n_evtypes && st == CL_OK; ti++) {
        const cl_evtype_t *t = &s->evtypes[ti];
        if ((only_type != NULL && t != only_type) || !may_read(r, t))
            continue;
        size_t tl = strlen(t->name);
        if (have_source) {
            st = hist_scan(c, &h, t->name, tl, source, limit + 1, buf);
            continue;
        }
        st = hist_scan(c, &h, t->name, tl, CL_OWNER_ID, limit + 1, buf);
        for (size_t ci = 0; ci < s->n_clients && st == CL_OK; ci++)
            st = hist_scan(c, &h, t->name, tl, s->clients[ci].id, limit + 1, buf);
    }
    free(buf);
    if (st == CL_OK) {
        qsort(h.ev, h.n, sizeof *h.ev, hist_cmp);
        size_t n = h.n < limit ? h.n : limit;
        cl_cbor_enc_t e;
        size_t len;
        uint8_t *big = malloc(HISTORY_MAX_BODY);
        if (big == NULL) {
            st = CL_FAIL(CL_ERR_FULL);
        } else {
            for (;; n--) { /* as many as fit HISTORY_MAX_BODY */
                cl_cbor_enc_init(&e, big, HISTORY_MAX_BODY);
                bool more = n < h.n;
                cl_cbor_enc_map(&e, more ? 4 : 3);
                cl_cbor_enc_tstr_z(&e, "events");
                cl_cbor_enc_array(&e, n);
                for (size_t i = 0; i < n; i++) {
                    /* the stored map plus its archive id: {id, source, type, time, properties} */
                    cl_cbor_dec_t d;
                    size_t pairs;
                    cl_cbor_dec_init(&d, h.ev[i].cbor, h.ev[i].len);
                    if (cl_cbor_dec_map(&d, &pairs) != CL_OK)
                        pairs = 0;
                    cl_cbor_enc_map(&e, pairs + 1);
                    cl_cbor_enc_tstr_z(&e, "id");
                    cl_cbor_enc_uint(&e, h.ev[i].id);
                    cl_cbor_enc_raw(&e, h.ev[i].cbor + (h.ev[i].len - cl_cbor_dec_remaining(&d)),
                                    cl_cbor_dec_remaining(&d));
                }
                cl_cbor_enc_tstr_z(&e, "more");
                cl_cbor_enc_bool(&e, more);
                cl_cbor_enc_tstr_z(&e, "skipped");
                cl_cbor_enc_uint(&e, h.skipped);
                if (more) { /* the cursor of the next page */
                    cl_cbor_enc_tstr_z(&e, "next");
                    cl_cbor_enc_map(&e, 2);
                    cl_cbor_enc_tstr_z(&e, "since");
                    cl_cbor_enc_int(&e, n > 0 ? h.ev[n - 1].time : h.since);
                    cl_cbor_enc_tstr_z(&e, "after");
                    cl_cbor_enc_uint(&e, n > 0 ? h.ev[n - 1].id : h.after);
                }
                if (cl_cbor_enc_finish(&e, &len) == CL_OK || n == 0)
                    break;
            }
            if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
                free(big);
                st = CL_FAIL(CL_ERR_LIMIT);
            } else {
                r->code = CL_COAP_CONTENT;
                r->big = big;
                r->big_len = len;
            }
        }
    }
    for (size_t i = 0; i < h.n; i++) {
        cl_wipe(h.ev[i].cbor, h.ev[i].len);
        free(h.ev[i].cbor);
    }
    free(h.ev);
    if (h.skipped > 0)
        cl_core_log(c, CL_LOG_WARN, "history: %zu archive rows failed authentication (skipped)",
                    h.skipped);
    if (st == CL_OK)
        return CL_OK;
    return cl_res_error(r, CL_COAP_SERVICE_UNAVAILABLE, "storage-failed",
                 "the archive could not be read consistently; try again");
}

static bool parse_client_path(const char *path, const char *action, uint32_t *id)
{
    const char *p = path + strlen("/clients/");
    uint64_t v = 0;
    size_t digits = 0;
    if (strncmp(path, "/clients/", 9) != 0)
        return false;
    while (*p >= '0' && *p <= '9' && digits < 10) {
        v = v * 10 + (uint64_t)(*p++ - '0');
        digits++;
    }
    if (digits == 0 || v > UINT32_MAX || *p != '/' || strcmp(p + 1, action) != 0)
        return false;
    *id = (uint32_t)v;
    return true;
}

static cl_status_t route_protected(reqctx_t *r)
{
    const cl_coap_msg_t *q = r->req;
    uint32_t id;

    if (!is_cbor_request(q) && !r->json_in)
        return cl_res_error(r, CL_COAP_UNSUPPORTED_FORMAT, "bad-request", "application/cbor only");
    if (r->x->role == CL_ROLE_ENROLLEE) {
        if (strcmp(r->path, "/pki/enroll") == 0 && q->code == CL_COAP_POST)
            return post_enroll(r);
        return cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden",
                     "enroll first: this session may only POST /pki/enroll");
    }
    if (r->x->role == CL_ROLE_NONE)
        return cl_res_error(r, CL_COAP_UNAUTHORIZED, "unauthorized",
                     "session closed; run a new EDHOC handshake");
    if (strcmp(r->path, "/whoami") == 0)
        return q->code == CL_COAP_GET ? get_whoami(r)
                                      : cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "GET");
    if (strcmp(r->path, "/pki/tokens") == 0) {
        if (q->code != CL_COAP_POST)
            return cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "POST");
        return cl_res_role_in(r, ADMINS) ? post_token(r)
                                  : cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "admins only");
    }
    if (strcmp(r->path, "/pki/enroll") == 0)
        return cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "already enrolled");
    if (strcmp(r->path, "/clients") == 0) {
        if (q->code != CL_COAP_GET)
            return cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "GET");
        return cl_res_role_in(r, ADMINS) ? get_clients(r)
                                  : cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "admins only");
    }
    if (parse_client_path(r->path, "revoke", &id)) {
        if (q->code != CL_COAP_POST)
            return cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "POST");
        return cl_res_role_in(r, ADMINS) ? post_revoke(r, id)
                                  : cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "admins only");
    }
    if (parse_client_path(r->path, "permissions", &id)) {
        if (q->code != CL_COAP_POST)
            return cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "POST");
        return cl_res_role_in(r, ADMINS) ? post_permissions(r, id)
                                  : cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "admins only");
    }
    if (strcmp(r->path, "/events") == 0) {
        if (q->code == CL_COAP_GET)
            return cl_res_role_in(r, MEMBERS) ? get_events(r)
                                       : cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "not allowed");
        if (q->code != CL_COAP_POST)
            return cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "GET or POST");
        return cl_res_role_in(r, MEMBERS) ? post_events(r)
                                   : cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "not allowed");
    }
    if (strcmp(r->path, "/event-types") == 0) {
        if (q->code == CL_COAP_GET)
            return cl_res_role_in(r, MEMBERS) ? get_event_types(r)
                                       : cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "not allowed");
        if (q->code != CL_COAP_POST)
            return cl_res_error(r, CL_COAP_METHOD_NOT_ALLOWED, "bad-request", "GET or POST");
        return cl_res_role_in(r, ADMINS) ? post_event_type(r)
                                  : cl_res_error(r, CL_COAP_FORBIDDEN, "forbidden", "admins only");
    }
    cl_status_t st = cl_model_route(r);
    if (st != CL_ERR_NOT_FOUND)
        return st;
    return cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "no such resource");
}

/* What identifies a request for the block cache: method, path and queries. */
static void request_key(cl_core_t *c, const cl_coap_msg_t *req, uint8_t key[32])
{
    cl_buf_t parts[CL_COAP_MAX_OPTIONS + 1];
    size_t n = 0;
    parts[n++] = (cl_buf_t){&req->code, 1};
    for (size_t i = 0; i < req->n_options && n < CL_COAP_MAX_OPTIONS + 1; i++)
        if (req->options[i].number == CL_COAP_OPT_URI_PATH ||
            req->options[i].number == CL_COAP_OPT_URI_QUERY)
            parts[n++] = (cl_buf_t){req->options[i].value, req->options[i].len};
    if (cl_sha256(&c->crypto, parts, n, key) != CL_OK)
        memset(key, 0, 32);
}

/* Block blk of the session's cached large response. */
static cl_status_t block_response(cl_core_t *c, const cl_coap_msg_t *req, cl_session_t *x,
                                  cl_coap_block_t blk, uint8_t *out, size_t out_size,
                                  size_t *out_len)
{
    size_t full_size = x->blk_len + 64 + CL_COAP_MAX_TOKEN, full_len;
    uint8_t *full = malloc(full_size);
    cl_coap_msg_t m;
    bool more;
    cl_status_t st;
    if (full == NULL)
        return CL_FAIL(CL_ERR_FULL);
    st = cl_res_build_response_obs(c, req, x->blk_code, x->blk_body, x->blk_len, true, -1, -1,
                                   x->blk_cf != 0 ? x->blk_cf : CL_COAP_CF_CBOR, full, full_size,
                        &full_len);
    if (st == CL_OK)
        st = cl_coap_parse(&m, full, full_len);
    if (st == CL_OK)
        st = cl_coap_block_slice(&m, CL_COAP_OPT_BLOCK2, blk.num, blk.szx, out, out_size,
                                 out_len, &more);
    cl_wipe(full, full_size);
    free(full);
    if (st != CL_OK) /* beyond the end: an error response instead */
        return cl_res_build_response(c, req, CL_COAP_BAD_OPTION, NULL, 0, true, out, out_size, out_len);
    return CL_OK;
}

#define B1_MAX_BODY (96 * 1024) /* a 64 KiB template with its request around it */

/*
 * Inner Block1 (RFC 7959 section 2.5): blocks of one request body, strictly
 * in order, per session, keyed by method, path and queries. Returns 1 when
 * the block was stored and 2.31 Continue is the answer, 2 when the body is
 * complete (*full receives it, the session's buffer is handed over), -1
 * when the block was refused (the answer says why).
 */
static int block1_feed(cl_core_t *c, reqctx_t *r, const cl_coap_msg_t *req,
                       const cl_coap_option_t *opt, uint8_t **full)
{
    cl_session_t *x = r->x;
    cl_coap_block_t bk;
    uint8_t key[32];
    uint8_t enc[3];
    size_t el;
    if (cl_coap_block_decode(opt, &bk) != CL_OK || bk.szx > 6) {
        (void)cl_res_error(r, CL_COAP_BAD_OPTION, "bad-request", "Block1: szx <= 6");
        return -1;
    }
    request_key(c, req, key);
    size_t bsize = (size_t)16 << bk.szx;
    if (bk.num == 0) { /* a new body replaces whatever was half-sent */
        if (x->b1_body != NULL) {
            cl_wipe(x->b1_body, x->b1_len);
            free(x->b1_body);
        }
        x->b1_body = NULL;
        x->b1_len = 0;
        memcpy(x->b1_key, key, 32);
        x->b1_szx = bk.szx;
    } else if (x->b1_body == NULL || cl_ct_memcmp(key, x->b1_key, 32) != 0 ||
               bk.num != x->b1_next || bk.szx != x->b1_szx) {
        (void)cl_res_error(r, CL_COAP_CODE(4, 8), "incomplete",
                           "Block1 out of order: send the body again from block 0");
        return -1;
    }
    if ((bk.more && req->payload_len != bsize) || req->payload_len > bsize) {
        (void)cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "Block1: block of the wrong size");
        return -1;
    }
    if (x->b1_len + req->payload_len > B1_MAX_BODY) {
        (void)cl_res_error(r, CL_COAP_REQUEST_TOO_LARGE, "too-large", "request bodies are <= 96 KiB");
        return -1;
    }
    uint8_t *nb = malloc(x->b1_len + req->payload_len + 1);
    if (nb == NULL) {
        (void)cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "out of memory");
        return -1;
    }
    if (x->b1_body != NULL) {
        memcpy(nb, x->b1_body, x->b1_len);
        cl_wipe(x->b1_body, x->b1_len);
        free(x->b1_body);
    }
    if (req->payload_len > 0)
        memcpy(nb + x->b1_len, req->payload, req->payload_len);
    x->b1_body = nb;
    x->b1_len += req->payload_len;
    x->b1_next = bk.num + 1;
    cl_coap_block_t echo = {bk.num, bk.more, bk.szx};
    uint32_t v = 0;
    if (cl_coap_block_encode(&echo, enc, &el) == CL_OK)
        for (size_t i = 0; i < el; i++)
            v = v << 8 | enc[i];
    r->block1 = v;
    if (bk.more) {
        r->code = CL_COAP_CONTINUE;
        r->body_len = 0;
        return 1;
    }
    *full = x->b1_body;
    x->b1_body = NULL;
    return 2;
}

static void handle_oscore(cl_core_t *c, uint64_t peer, uint16_t transport, uint8_t *msg,
                          size_t len, uint8_t *out, size_t out_size, size_t *out_len,
                          uint16_t *flags)
{
    uint8_t *plain = malloc(CL_CORE_MAX_MESSAGE);
    uint8_t *resp = malloc(CL_CORE_MAX_MESSAGE);
    reqctx_t *r = calloc(1, sizeof *r);
    uint8_t *copy = malloc(len);
    size_t plain_len = 0, resp_len;
    cl_oscore_ctx_t *ctx = NULL;
    cl_oscore_req_t oreq;
    cl_coap_msg_t req;
    cl_status_t st;
    uint8_t *b1_full = NULL; /* a body assembled from Block1 blocks (owned here once complete) */
    size_t b1_full_len = 0;
    uint8_t *jbuf = NULL; /* a JSON request body converted to CBOR */
    size_t jbuf_len_max = 0;
    bool json_bad = false;

    *out_len = 0;
    if (plain == NULL || resp == NULL || r == NULL || copy == NULL)
        goto done;
    memcpy(copy, msg, len); /* unprotect decrypts in place; keep the raw bytes for errors */
    st = cl_oscore_unprotect_request(cl_sessions_lookup, c, msg, len, plain, CL_CORE_MAX_MESSAGE,
                                     &plain_len, &ctx, &oreq);
    if (st == CL_ERR_ECHO_REQUIRED && ctx != NULL) {
        if (cl_oscore_build_echo_response(ctx, &oreq, copy, len, c->next_mid++, out, out_size,
                                          out_len) != CL_OK)
            *out_len = 0;
        goto done;
    }
    if (st != CL_OK) {
        c->stats_refused++;
        if (cl_oscore_build_error(st == CL_ERR_REPLAY || st == CL_ERR_AUTH || st == CL_ERR_NOT_FOUND
                                      ? st
                                      : CL_ERR_BAD_INPUT,
                                  copy, len, c->next_mid++, out, out_size, out_len) != CL_OK)
            *out_len = 0;
        goto done;
    }
    memset(r, 0, sizeof *r);
    r->c = c;
    r->peer = peer;
    r->transport = transport;
    r->observe = -1;
    r->oreq = &oreq;
    r->x = cl_sessions_of_ctx(c, ctx);
    if (r->x == NULL || cl_coap_parse(&req, plain, plain_len) != CL_OK) {
        *out_len = 0;
        goto done;
    }
    r->x->used_ms = c->now_ms;
    r->req = &req;
    r->block1 = -1;
    /* a body sent block-wise (inner Block1) is assembled per session before anything else */
    const cl_coap_option_t *b1 = cl_coap_msg_get(&req, CL_COAP_OPT_BLOCK1);
    int b1_state = 0; /* 0 none, 1 continue (answered), 2 complete, -1 refused (answered) */
    if (b1 != NULL) {
        b1_state = block1_feed(c, r, &req, b1, &b1_full);
        if (b1_state == 2) {
            req.payload = b1_full;
            req.payload_len = r->x->b1_len;
            b1_full_len = r->x->b1_len;
            r->x->b1_len = 0;
        }
    }
    /* JSON in (Content-Format 50) is converted to CBOR once, here; Accept: 50 asks for JSON out */
    const cl_coap_option_t *cfo = cl_coap_msg_get(&req, CL_COAP_OPT_CONTENT_FORMAT);
    const cl_coap_option_t *acc = cl_coap_msg_get(&req, CL_COAP_OPT_ACCEPT);
    uint32_t cfv = 0;
    if (acc != NULL && cl_coap_opt_uint(acc, &cfv) == CL_OK && cfv == CL_COAP_CF_JSON)
        r->json_out = true;
    cfv = 0;
    if (cfo != NULL && cl_coap_opt_uint(cfo, &cfv) == CL_OK && cfv == CL_COAP_CF_JSON &&
        req.payload_len > 0) {
        size_t need = 0, off = 0;
        cl_status_t js = cl_json_to_cbor((const char *)req.payload, req.payload_len, NULL, 0,
                                         &need, &off);
        if ((js == CL_OK || js == CL_ERR_BUFFER_TOO_SMALL) && need > 0 &&
            (jbuf = malloc(need)) != NULL && (jbuf_len_max = need) > 0 &&
            cl_json_to_cbor((const char *)req.payload, req.payload_len, jbuf, need, &need, &off) ==
                CL_OK) {
            req.payload = jbuf;
            req.payload_len = need;
            r->json_in = true;
        } else {
            json_bad = true;
        }
    }
    /* inner Block2 (RFC 7959, class E): later blocks of a large response come from the cache */
    cl_coap_block_t blk = {0, false, BLOCK_SZX};
    const cl_coap_option_t *b2 = cl_coap_msg_get(&req, CL_COAP_OPT_BLOCK2);
    uint8_t key[32];
    bool cached = false;
    request_key(c, &req, key);
    if (b2 != NULL && (cl_coap_block_decode(b2, &blk) != CL_OK || blk.szx > BLOCK_SZX)) {
        (void)cl_res_error(r, CL_COAP_BAD_OPTION, "bad-request", "Block2: szx <= 6");
        b2 = NULL;
        blk.num = 0;
    } else if (blk.num > 0 && r->x->blk_body != NULL && cl_ct_memcmp(key, r->x->blk_key, 32) == 0) {
        cached = true;
    } else if (cl_coap_uri_path(&req, r->path, sizeof r->path) != CL_OK) {
        (void)cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "bad path");
    } else if (b1_state == 1 || b1_state < 0) {
        /* the answer (2.31 Continue, or why the block was refused) is set */
    } else if (json_bad) {
        (void)cl_res_error(r, CL_COAP_BAD_REQUEST, "bad-request", "the JSON body does not parse");
    } else if (route_protected(r) != CL_OK) {
        (void)cl_res_error(r, CL_COAP_INTERNAL_ERROR, "internal", "response too large");
    }
    if (r->x == NULL) { /* the session ended while serving (self-revocation) */
        *out_len = 0;
        goto done;
    }
    if (r->defer) { /* a long poll: the answer comes later through send() */
        *out_len = 0;
        *flags = CL_BATCH_F_DEFER;
        goto done;
    }
    if (r->json_out && !cached) { /* the answer as JSON text (it may need blocks then) */
        const uint8_t *cb = r->big != NULL ? r->big : r->body;
        size_t cbl = r->big != NULL ? r->big_len : r->body_len, jl = 0;
        uint8_t *js = cbl > 0 ? malloc(cbl * 8 + 64) : NULL;
        if (js != NULL && cl_cbor_to_json(cb, cbl, (char *)js, cbl * 8 + 64, &jl) == CL_OK) {
            if (r->big != NULL) {
                cl_wipe(r->big, r->big_len);
                free(r->big);
            }
            r->big = js;
            r->big_len = jl;
        } else {
            free(js);
            r->json_out = false; /* not representable: CBOR it is (Content-Format says so) */
        }
    }
    if (r->big != NULL && (r->big_len > BLOCK_SIZE || b2 != NULL)) { /* keep it for the next blocks */
        if (r->x->blk_body != NULL) {
            cl_wipe(r->x->blk_body, r->x->blk_len);
            free(r->x->blk_body);
        }
        r->x->blk_body = r->big;
        r->x->blk_len = r->big_len;
        r->x->blk_code = r->code;
        r->x->blk_cf = r->json_out ? CL_COAP_CF_JSON : CL_COAP_CF_CBOR;
        memcpy(r->x->blk_key, key, 32);
        r->big = NULL;
        cached = true;
    }
    cl_status_t bs;
    uint16_t cf = r->json_out ? CL_COAP_CF_JSON : CL_COAP_CF_CBOR;
    if (cached)
        bs = block_response(c, &req, r->x, blk, resp, CL_CORE_MAX_MESSAGE, &resp_len);
    else if (r->big != NULL) /* small enough for one message */
        bs = cl_res_build_response_obs(c, &req, r->code, r->big, r->big_len, true, r->observe,
                                       r->block1, cf, resp, CL_CORE_MAX_MESSAGE, &resp_len);
    else
        bs = cl_res_build_response_obs(c, &req, r->code, r->body, r->body_len, true, r->observe,
                                       r->block1, cf, resp, CL_CORE_MAX_MESSAGE, &resp_len);
    if (bs != CL_OK ||
        cl_oscore_protect_response(ctx, &oreq, NULL, resp, resp_len, out, out_size, out_len) !=
            CL_OK)
        *out_len = 0;
    if (r->x->role == CL_ROLE_NONE) /* enrolled: this enrollee session is over */
        cl_session_free(r->x);
done:
    if (r != NULL && r->big != NULL) {
        cl_wipe(r->big, r->big_len);
        free(r->big);
    }
    if (plain != NULL)
        cl_wipe(plain, CL_CORE_MAX_MESSAGE);
    if (resp != NULL)
        cl_wipe(resp, CL_CORE_MAX_MESSAGE);
    if (r != NULL)
        cl_wipe(r, sizeof *r);
    if (copy != NULL)
        cl_wipe(copy, len);
    if (jbuf != NULL) {
        cl_wipe(jbuf, jbuf_len_max);
        free(jbuf);
    }
    if (b1_full != NULL) {
        cl_wipe(b1_full, b1_full_len);
        free(b1_full);
    }
    free(plain);
    free(resp);
    free(r);
    free(copy);
}

void cl_core_dispatch(cl_core_t *c, uint64_t peer, uint16_t transport, uint8_t *msg, size_t len,
                      uint8_t *out, size_t out_size, size_t *out_len, uint16_t *flags)
{
    cl_coap_msg_t req;
    *out_len = 0;
    *flags = 0;
    if (cl_coap_parse(&req, msg, len) != CL_OK)
        return; /* not CoAP: silently dropped (the host counts it) */
    if (req.type == CL_COAP_RST) { /* a peer refused a notification: stop observing */
        cl_rules_rst(c, peer, req.mid);
        return;
    }
    if (req.type == CL_COAP_ACK || req.type == CL_COAP_RST || req.code == CL_COAP_EMPTY ||
        req.code >= CL_COAP_CODE(1, 0))
        return; /* only requests reach the core's resources */
    if (cl_coap_msg_get(&req, CL_COAP_OPT_OSCORE) != NULL) {
        handle_oscore(c, peer, transport, msg, len, out, out_size, out_len, flags);
        return;
    }
    reqctx_t *r = calloc(1, sizeof *r);
    if (r == NULL)
        return;
    memset(r, 0, sizeof *r);
    r->c = c;
    r->req = &req;
    if (cl_coap_uri_path(&req, r->path, sizeof r->path) != CL_OK) {
        (void)cl_res_error(r, CL_COAP_NOT_FOUND, "not-found", "bad path");
    } else if (strcmp(r->path, "/attestation") == 0) {
        attestation(c, &req, out, out_size, out_len);
        free(r);
        return;
    } else if (strcmp(r->path, CL_EDHOC_WELL_KNOWN) == 0) {
        if (cl_sessions_edhoc(c, &req, out, out_size, out_len) != CL_OK)
            *out_len = 0;
        free(r);
        return;
    } else if (strcmp(r->path, "/pki/owner") == 0) {
        (void)post_owner(r);
    } else if (strcmp(r->path, "/pki/provision") == 0) {
        (void)post_provision(r);
    } else {
        (void)cl_res_error(r, CL_COAP_UNAUTHORIZED, "unauthorized",
                    "OSCORE required: run EDHOC at /.well-known/edhoc first");
    }
    if (cl_res_build_response(c, &req, r->code, r->body, r->body_len, true, out, out_size, out_len) !=
        CL_OK)
        *out_len = 0;
    cl_wipe(r, sizeof *r);
    free(r);
}
