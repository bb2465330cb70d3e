/*
 * session.c - EDHOC (responder) and the OSCORE contexts it creates, inside
 * the core. Who a peer is gets decided here, once, in the credential
 * callback: the owner (its sealed root certificate), an enrolled client (a
 * certificate our CA issued, known and not revoked), or an enrollee (a raw
 * key in a CCS, allowed to call POST /pki/enroll and nothing else). The
 * session keeps that role; resources.c enforces it on every request.
 *
 * Revocation drops a client's live sessions at once; new handshakes with its
 * certificate fail in the callback.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cose.h"
#include "core_internal.h"
#include "pki.h"

#define COSE_ALG_SHA256_64 (-15)
#define HALF_OPEN_MS 60000
#define MAX_HALF_OPEN_FRACTION 4 /* at most 1/4 of the table half-open */
/*
 * Anybody can run EDHOC with a raw key and become an enrollee (the token is
 * checked afterwards), so enrollee sessions are capped and short-lived: they
 * must not be able to push enrolled clients' sessions out of the table.
 */
#define MAX_ENROLLEE_FRACTION 8
#define ENROLLEE_MS 60000

void cl_session_free(cl_session_t *x)
{
    cl_edhoc_free(&x->edhoc);
    cl_oscore_ctx_free(&x->oscore);
    if (x->blk_body != NULL) {
        cl_wipe(x->blk_body, x->blk_len);
        free(x->blk_body);
    }
    if (x->b1_body != NULL) {
        cl_wipe(x->b1_body, x->b1_len);
        free(x->b1_body);
    }
    cl_wipe(x, sizeof *x);
}

cl_status_t cl_sessions_init(cl_core_t *c)
{
    c->n_sessions = c->cfg.max_sessions;
    c->sessions = calloc(c->n_sessions, sizeof *c->sessions);
    return c->sessions != NULL ? CL_OK : CL_FAIL(CL_ERR_FULL);
}

void cl_sessions_free(cl_core_t *c)
{
    if (c->sessions == NULL)
        return;
    for (size_t i = 0; i < c->n_sessions; i++)
        cl_session_free(&c->sessions[i]);
    free(c->sessions);
    c->sessions = NULL;
}

/* ---- peer credentials ---- */

static cl_status_t refuse(cl_core_t *c, cl_status_t st, const char *why)
{
    size_t n = strlen(why);
    if (n >= sizeof c->why)
        n = sizeof c->why - 1;
    memcpy(c->why, why, n);
    c->why[n] = '\0';
    return st;
}

/* CRED = bstr(der) into c->peer_cred. */
static cl_status_t set_cred_bstr(cl_core_t *c, const uint8_t *der, size_t len, size_t *n)
{
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, c->peer_cred, sizeof c->peer_cred);
    cl_cbor_enc_bstr(&e, der, len);
    return cl_cbor_enc_finish(&e, n) == CL_OK && *n <= CL_EDHOC_MAX_CRED ? CL_OK
                                                                         : CL_FAIL(CL_ERR_LIMIT);
}

static cl_status_t set_peer_key(cl_core_t *c, const uint8_t pub[65], cl_edhoc_peer_t *peer)
{
    if (peer->expected != CL_KEY_P256)
        return refuse(c, CL_ERR_AUTH, "credential key type does not fit the method/suite");
    if (c->crypto.ops->key_import_public(c->crypto.self, CL_KEY_P256, pub, 65, &c->peer_key) !=
        CL_OK)
        return refuse(c, CL_ERR_AUTH, "invalid public key");
    peer->key = c->peer_key;
    memcpy(peer->pub, pub, 65);
    peer->pub_len = 65;
    return CL_OK;
}

/* A certificate presented or referenced: the owner's, or one our CA issued. */
static cl_status_t accept_cert(cl_core_t *c, const uint8_t *der, size_t len, cl_edhoc_peer_t *peer)
{
    cl_session_t *x = c->cb_session;
    cl_pki_cert_info_t info;
    int64_t now_s = cl_core_now(c) / 1000;

    if (cl_pki_cert_parse(der, len, &info) != CL_OK)
        return refuse(c, CL_ERR_AUTH, "unusable certificate");
    if (len == c->st.owner_len && memcmp(der, c->st.owner_cert, len) == 0) {
        x->role = CL_ROLE_OWNER;
        x->client_id = CL_OWNER_ID;
    } else {
        if (cl_pki_verify_issued(der, len, c->st.ca_cert, c->st.ca_len, now_s) != CL_OK)
            return refuse(c, CL_ERR_AUTH, "certificate not issued by this core (or expired)");
        cl_client_t *cl = cl_state_client_by_hash(&c->st, info.sha256);
        if (cl == NULL)
            return refuse(c, CL_ERR_AUTH, "certificate unknown to this core");
        if (cl->revoked)
            return refuse(c, CL_ERR_AUTH, "client revoked");
        x->role = cl->role;
        x->client_id = cl->id;
    }
    size_t cred_len = 0;
    cl_status_t st = set_cred_bstr(c, der, len, &cred_len);
    if (st != CL_OK)
        return refuse(c, st, "certificate too large");
    peer->cred = c->peer_cred;
    peer->cred_len = cred_len;
    return set_peer_key(c, info.pub, peer);
}

/* kccs: {8: {1: COSE_Key}} with an EC2 P-256 key -> 65-byte point. */
static cl_status_t parse_ccs(const uint8_t *ccs, size_t len, uint8_t pub[65])
{
    cl_cbor_dec_t d;
    size_t n, m, k;
    bool have_cnf = false, have_x = false, have_y = false;
    int64_t kty = 0, crv = 0;

    cl_cbor_dec_init(&d, ccs, len);
    if (cl_cbor_dec_map(&d, &n) != CL_OK || n > 8)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < n; i++) {
        int64_t key;
        if (cl_cbor_dec_int(&d, &key) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (key != 8) {
            if (cl_cbor_dec_skip(&d) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            continue;
        }
        int64_t one;
        if (have_cnf || cl_cbor_dec_map(&d, &m) != CL_OK || m != 1 ||
            cl_cbor_dec_int(&d, &one) != CL_OK || one != 1 || cl_cbor_dec_map(&d, &k) != CL_OK ||
            k > 8)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        have_cnf = true;
        for (size_t j = 0; j < k; j++) {
            int64_t label;
            const uint8_t *p;
            size_t pl;
            if (cl_cbor_dec_int(&d, &label) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            if (label == 1) {
                if (cl_cbor_dec_int(&d, &kty) != CL_OK)
                    return CL_FAIL(CL_ERR_BAD_INPUT);
            } else if (label == -1) {
                if (cl_cbor_dec_int(&d, &crv) != CL_OK)
                    return CL_FAIL(CL_ERR_BAD_INPUT);
            } else if (label == -2 || label == -3) {
                if (cl_cbor_dec_bstr(&d, &p, &pl) != CL_OK || pl != 32)
                    return CL_FAIL(CL_ERR_BAD_INPUT);
                memcpy(pub + (label == -2 ? 1 : 33), p, 32);
                if (label == -2)
                    have_x = true;
                else
                    have_y = true;
            } else if (cl_cbor_dec_skip(&d) != CL_OK) {
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
        }
    }
    if (!cl_cbor_dec_at_end(&d) || !have_cnf || kty != 2 || crv != 1 || !have_x || !have_y)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    pub[0] = 0x04;
    return CL_OK;
}

static cl_status_t peer_cred_cb(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                                size_t id_cred_len, cl_edhoc_peer_t *peer)
{
    cl_core_t *c = arg;
    const uint8_t *v;
    size_t vlen;
    cl_cbor_dec_t d;
    (void)own_role;

    c->why[0] = '\0';
    if (c->cb_session == NULL || c->st.phase != CL_PHASE_PROVISIONED)
        return refuse(c, CL_ERR_STATE, "core not provisioned");
    if (cl_cose_header_find(id_cred, id_cred_len, CL_COSE_HDR_X5CHAIN, &v, &vlen) == CL_OK) {
        const uint8_t *der;
        size_t der_len, n;
        cl_cbor_type_t t;
        cl_cbor_dec_init(&d, v, vlen);
        if (cl_cbor_dec_peek(&d, &t) != CL_OK)
            return refuse(c, CL_ERR_BAD_INPUT, "malformed x5chain");
        if (t == CL_CBOR_ARRAY && (cl_cbor_dec_array(&d, &n) != CL_OK || n < 1 || n > 4))
            return refuse(c, CL_ERR_BAD_INPUT, "malformed x5chain");
        if (cl_cbor_dec_bstr(&d, &der, &der_len) != CL_OK)
            return refuse(c, CL_ERR_BAD_INPUT, "malformed x5chain");
        return accept_cert(c, der, der_len, peer); /* the rest of a chain is ours to know */
    }
    if (cl_cose_header_find(id_cred, id_cred_len, CL_COSE_HDR_X5T, &v, &vlen) == CL_OK) {
        size_t n;
        int64_t alg;
        const uint8_t *h;
        size_t hl;
        cl_cbor_dec_init(&d, v, vlen);
        if (cl_cbor_dec_array(&d, &n) != CL_OK || n != 2 || cl_cbor_dec_int(&d, &alg) != CL_OK ||
            cl_cbor_dec_bstr(&d, &h, &hl) != CL_OK || !cl_cbor_dec_at_end(&d))
            return refuse(c, CL_ERR_BAD_INPUT, "malformed x5t");
        if (alg != COSE_ALG_SHA256_64 || hl != 8)
            return refuse(c, CL_ERR_NOT_FOUND, "x5t: only SHA-256/64 is supported");
        if (memcmp(h, c->st.owner_x5t, 8) == 0)
            return accept_cert(c, c->st.owner_cert, c->st.owner_len, peer);
        cl_client_t *cl = cl_state_client_by_x5t(&c->st, h);
        if (cl == NULL)
            return refuse(c, CL_ERR_NOT_FOUND, "x5t matches no known certificate");
        return accept_cert(c, cl->cert, cl->cert_len, peer);
    }
    if (cl_cose_header_find(id_cred, id_cred_len, 14 /* kccs */, &v, &vlen) == CL_OK) {
        uint8_t pub[65];
        if (vlen > CL_EDHOC_MAX_CRED || parse_ccs(v, vlen, pub) != CL_OK)
            return refuse(c, CL_ERR_BAD_INPUT, "malformed kccs");
        memcpy(c->peer_cred, v, vlen);
        peer->cred = c->peer_cred;
        peer->cred_len = vlen;
        c->cb_session->role = CL_ROLE_ENROLLEE;
        c->cb_session->client_id = UINT32_MAX;
        memcpy(c->cb_session->enrollee_pub, pub, 65);
        return set_peer_key(c, pub, peer);
    }
    return refuse(c, CL_ERR_NOT_FOUND, "credential must be x5chain, x5t or kccs");
}

cl_status_t cl_sessions_set_identity(cl_core_t *c)
{
    uint8_t x5t[8];
    cl_cbor_enc_t e;
    cl_status_t st;

    if (c->st.id_cert == NULL ||
        (st = cl_pki_thumbprint(c->st.id_cert, c->st.id_len, x5t)) != CL_OK)
        return CL_FAIL(CL_ERR_STATE);
    cl_cbor_enc_init(&e, c->id_cred, sizeof c->id_cred);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_int(&e, CL_COSE_HDR_X5T);
    cl_cbor_enc_array(&e, 2);
    cl_cbor_enc_int(&e, COSE_ALG_SHA256_64);
    cl_cbor_enc_bstr(&e, x5t, 8);
    if ((st = cl_cbor_enc_finish(&e, &c->id_cred_len)) != CL_OK)
        return st;
    cl_cbor_enc_init(&e, c->cred, sizeof c->cred);
    cl_cbor_enc_bstr(&e, c->st.id_cert, c->st.id_len);
    if ((st = cl_cbor_enc_finish(&e, &c->cred_len)) != CL_OK || c->cred_len > CL_EDHOC_MAX_CRED)
        return CL_FAIL(CL_ERR_LIMIT);
    c->auth = (cl_edhoc_auth_t){.id_cred = c->id_cred,
                                .id_cred_len = c->id_cred_len,
                                .cred = c->cred,
                                .cred_len = c->cred_len,
                                .key = c->identity_key,
                                .type = CL_KEY_P256,
                                .static_dh = false};
    c->suites[0] = 2;
    c->edhoc_cfg = (cl_edhoc_config_t){.crypto = &c->crypto,
                                       .suites = c->suites,
                                       .n_suites = 1,
                                       .auth = &c->auth,
                                       .n_auth = 1,
                                       .peer_cred = peer_cred_cb,
                                       .peer_cred_arg = c};
    return CL_OK;
}

/* ---- session table ---- */

static bool c_r_in_use(const cl_core_t *c, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < c->n_sessions; i++) {
        const cl_session_t *x = &c->sessions[i];
        if (x->state != CL_SESS_FREE && x->c_r_len == len && memcmp(x->c_r, id, len) == 0)
            return true;
    }
    return false;
}

/* C_R length for this table: one byte for tiny tables, else the slot index + 1 random byte. */
static size_t c_r_len_for(const cl_core_t *c)
{
    return c->n_sessions <= 24 ? 1 : c->n_sessions <= 65536 ? 3 : 4;
}

static cl_session_t *find_by_c_r(cl_core_t *c, int state, const uint8_t *id, size_t len)
{
    if (len != c_r_len_for(c))
        return NULL;
    if (len == 1) { /* tiny table: look through it */
        for (size_t i = 0; i < c->n_sessions; i++) {
            cl_session_t *x = &c->sessions[i];
            if (x->state == state && x->c_r_len == len && x->c_r[0] == id[0])
                return x;
        }
        return NULL;
    }
    /* the identifier names its slot: O(1) for every OSCORE request */
    size_t idx = 0;
    for (size_t i = 0; i + 1 < len; i++)
        idx = idx << 8 | id[i];
    if (idx >= c->n_sessions)
        return NULL;
    cl_session_t *x = &c->sessions[idx];
    return x->state == state && x->c_r_len == len && memcmp(x->c_r, id, len) == 0 ? x : NULL;
}

/*
 * C_R (our OSCORE Recipient ID): in tables of more than 24 sessions the slot
 * index followed by one random byte (so lookups are O(1) and a stale context
 * of a reused slot does not match), else one random byte that encodes as a
 * one-byte CBOR int. Never equal to the initiator's C_I.
 */
static cl_status_t choose_c_r(cl_core_t *c, cl_session_t *x, const uint8_t *avoid, size_t avoid_len)
{
    size_t len = c_r_len_for(c), idx = (size_t)(x - c->sessions);
    for (int tries = 0; tries < 32; tries++) {
        uint8_t id[4], r;
        if (c->platform.read_rand(c->platform.self, &r, 1) != CL_OK)
            return CL_FAIL(CL_ERR_CRYPTO);
        if (len == 1) {
            id[0] = r & 0x17; /* 0..23: one byte on the wire */
        } else {
            for (size_t i = 0; i + 1 < len; i++)
                id[i] = (uint8_t)(idx >> (8 * (len - 2 - i)));
            id[len - 1] = r;
        }
        if ((avoid_len == len && memcmp(avoid, id, len) == 0) ||
            (len == 1 && c_r_in_use(c, id, len)))
            continue;
        memcpy(x->c_r, id, len);
        x->c_r_len = len;
        return CL_OK;
    }
    return CL_FAIL(CL_ERR_FULL);
}

static cl_session_t *session_alloc(cl_core_t *c)
{
    size_t half = 0;
    cl_session_t *free_slot = NULL, *oldest_half = NULL, *lru = NULL;
    for (size_t i = 0; i < c->n_sessions; i++) {
        cl_session_t *x = &c->sessions[i];
        if (x->state == CL_SESS_FREE) {
            if (free_slot == NULL)
                free_slot = x;
        } else if (x->state == CL_SESS_HALF_OPEN) {
            half++;
            if (oldest_half == NULL || x->created_ms < oldest_half->created_ms)
                oldest_half = x;
        } else if (lru == NULL || x->used_ms < lru->used_ms) {
            lru = x;
        }
    }
    cl_session_t *victim = NULL;
    if (half * MAX_HALF_OPEN_FRACTION >= c->n_sessions && oldest_half != NULL)
        victim = oldest_half;
    else if (free_slot != NULL)
        return free_slot;
    else
        victim = oldest_half != NULL ? oldest_half : lru;
    if (victim != NULL)
        cl_session_free(victim);
    return victim;
}

void cl_sessions_drop_client(cl_core_t *c, uint32_t client_id)
{
    for (size_t i = 0; i < c->n_sessions; i++) {
        cl_session_t *x = &c->sessions[i];
        if (x->state != CL_SESS_FREE && x->client_id == client_id && x->role != CL_ROLE_ENROLLEE)
            cl_session_free(x);
    }
}

void cl_sessions_expire(cl_core_t *c)
{
    int64_t now = c->now_ms;
    for (size_t i = 0; i < c->n_sessions; i++) {
        cl_session_t *x = &c->sessions[i];
        if ((x->state == CL_SESS_HALF_OPEN && now - x->created_ms > HALF_OPEN_MS) ||
            (x->state == CL_SESS_ESTABLISHED && x->role == CL_ROLE_ENROLLEE &&
             now - x->created_ms > ENROLLEE_MS) ||
            (x->state == CL_SESS_ESTABLISHED &&
             now - x->used_ms > (int64_t)c->cfg.session_ttl_s * 1000))
            cl_session_free(x);
    }
}

cl_oscore_ctx_t *cl_sessions_lookup(void *arg, const uint8_t *kid, size_t kid_len,
                                    const uint8_t *kid_context, size_t kid_context_len,
                                    bool has_kid_context)
{
    cl_core_t *c = arg;
    (void)kid_context;
    (void)kid_context_len;
    if (has_kid_context)
        return NULL;
    cl_session_t *x = find_by_c_r(c, CL_SESS_ESTABLISHED, kid, kid_len);
    return x != NULL ? &x->oscore : NULL;
}

cl_session_t *cl_sessions_of_ctx(cl_core_t *c, const cl_oscore_ctx_t *ctx)
{
    /* contexts live inside the session table: find the slot by address, O(1) */
    uintptr_t base = (uintptr_t)c->sessions, p = (uintptr_t)ctx;
    size_t off = offsetof(cl_session_t, oscore);
    if (ctx == NULL || p < base + off)
        return NULL;
    size_t rel = p - base - off;
    if (rel % sizeof(cl_session_t) != 0 || rel / sizeof(cl_session_t) >= c->n_sessions)
        return NULL;
    return &c->sessions[rel / sizeof(cl_session_t)];
}

/* ---- EDHOC over CoAP ---- */

static cl_status_t reply(cl_core_t *c, const cl_coap_msg_t *req, uint8_t code, int cf,
                         const uint8_t *p, size_t len, uint8_t *out, size_t out_size,
                         size_t *out_len)
{
    cl_coap_builder_t b;
    uint8_t type = req->type == CL_COAP_CON ? CL_COAP_ACK : CL_COAP_NON;
    uint16_t mid = req->type == CL_COAP_CON ? req->mid : c->next_mid++;
    cl_coap_build_init(&b, out, out_size, type, code, mid, req->token, req->tkl);
    if (cf >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, (uint32_t)cf);
    cl_coap_build_payload(&b, p, len);
    return cl_coap_build_finish(&b, out_len);
}

static cl_status_t reply_text_error(cl_core_t *c, const cl_coap_msg_t *req, const char *diag,
                                    uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t msg[128];
    size_t len;
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, msg, sizeof msg);
    cl_cbor_enc_int(&e, CL_EDHOC_ERR_UNSPECIFIED);
    cl_cbor_enc_tstr_z(&e, diag);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    c->stats_refused++;
    return reply(c, req, CL_COAP_BAD_REQUEST, CL_EDHOC_CF_EDHOC_CBOR_SEQ, msg, len, out, out_size,
                 out_len);
}

static cl_status_t reply_edhoc_error(cl_core_t *c, cl_session_t *x, const cl_coap_msg_t *req,
                                     cl_status_t why, uint8_t *out, size_t out_size,
                                     size_t *out_len)
{
    uint8_t msg[128];
    size_t len;
    c->stats_refused++;
    if (cl_edhoc_error_message(&x->edhoc, why, msg, sizeof msg, &len) != CL_OK)
        return reply_text_error(c, req, "refused", out, out_size, out_len);
    return reply(c, req, CL_COAP_BAD_REQUEST, CL_EDHOC_CF_EDHOC_CBOR_SEQ, msg, len, out, out_size,
                 out_len);
}

static void release_peer_key(cl_core_t *c)
{
    cl_key_destroy(&c->crypto, c->peer_key);
    c->peer_key = CL_KEY_NONE;
    c->cb_session = NULL;
}

static cl_status_t message_1(cl_core_t *c, const cl_coap_msg_t *req, const uint8_t *msg,
                             size_t msg_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    uint8_t m2[1400];
    size_t m2_len;
    cl_status_t st = CL_OK;
    cl_session_t *x = session_alloc(c);
    uint8_t avoid[CL_EDHOC_MAX_CID];
    size_t avoid_len = 0;

    if (x == NULL)
        return reply_text_error(c, req, "busy", out, out_size, out_len);
    for (int attempt = 0; attempt < 3; attempt++) {
        if (choose_c_r(c, x, avoid, avoid_len) != CL_OK ||
            cl_edhoc_init(&x->edhoc, &c->edhoc_cfg, CL_EDHOC_RESPONDER, x->c_r, x->c_r_len) !=
                CL_OK) {
            cl_session_free(x);
            return reply_text_error(c, req, "internal error", out, out_size, out_len);
        }
        st = cl_edhoc_process_message_1(&x->edhoc, msg, msg_len);
        if (st != CL_OK ||
            !(x->edhoc.c_i_len == x->c_r_len && memcmp(x->edhoc.c_i, x->c_r, x->c_r_len) == 0))
            break;
        avoid_len = x->edhoc.c_i_len;
        memcpy(avoid, x->edhoc.c_i, avoid_len);
        cl_edhoc_free(&x->edhoc);
    }
    if (st == CL_OK)
        st = cl_edhoc_message_2(&x->edhoc, NULL, 0, m2, sizeof m2, &m2_len);
    if (st != CL_OK) {
        cl_core_log(c, CL_LOG_INFO, "edhoc: message_1 refused (%s)", cl_status_str(st));
        st = reply_edhoc_error(c, x, req, st, out, out_size, out_len);
        cl_session_free(x);
        return st;
    }
    x->state = CL_SESS_HALF_OPEN;
    x->created_ms = x->used_ms = c->now_ms;
    st = reply(c, req, CL_COAP_CHANGED, CL_EDHOC_CF_EDHOC_CBOR_SEQ, m2, m2_len, out, out_size,
               out_len);
    cl_wipe(m2, sizeof m2);
    return st;
}

static cl_status_t message_3(cl_core_t *c, cl_session_t *x, const cl_coap_msg_t *req,
                             const uint8_t *msg, size_t msg_len, uint8_t *out, size_t out_size,
                             size_t *out_len)
{
    uint8_t ms[16], salt[8];
    cl_oscore_params_t params;
    cl_status_t st;

    c->cb_session = x;
    st = cl_edhoc_process_message_3(&x->edhoc, msg, msg_len);
    release_peer_key(c);
    if (st == CL_ERR_PEER_ERROR) {
        cl_session_free(x);
        return reply(c, req, CL_COAP_CHANGED, -1, NULL, 0, out, out_size, out_len);
    }
    if (st != CL_OK) {
        cl_core_log(c, CL_LOG_INFO, "edhoc: message_3 refused (%s%s%s)", cl_status_str(st),
                    c->why[0] ? ": " : "", c->why);
        st = reply_edhoc_error(c, x, req, st, out, out_size, out_len);
        cl_session_free(x);
        return st;
    }
    st = cl_edhoc_oscore_params(&x->edhoc, ms, salt, &params);
    if (st == CL_OK)
        st = cl_oscore_ctx_init(&x->oscore, &c->crypto, &params);
    cl_wipe(ms, sizeof ms);
    cl_wipe(salt, sizeof salt);
    cl_wipe(&params, sizeof params);
    if (st != CL_OK) {
        st = reply_edhoc_error(c, x, req, st, out, out_size, out_len);
        cl_session_free(x);
        return st;
    }
    cl_edhoc_free(&x->edhoc);
    if (x->role == CL_ROLE_ENROLLEE) { /* keep at most 1/8 of the table for enrollees */
        size_t n = 0;
        cl_session_t *oldest = NULL;
        for (size_t i = 0; i < c->n_sessions; i++) {
            cl_session_t *y = &c->sessions[i];
            if (y != x && y->state == CL_SESS_ESTABLISHED && y->role == CL_ROLE_ENROLLEE) {
                n++;
                if (oldest == NULL || y->created_ms < oldest->created_ms)
                    oldest = y;
            }
        }
        if (oldest != NULL && (n + 1) * MAX_ENROLLEE_FRACTION > c->n_sessions)
            cl_session_free(oldest);
    }
    x->state = CL_SESS_ESTABLISHED;
    x->used_ms = c->now_ms;
    cl_core_log(c, CL_LOG_INFO, "edhoc: session established, role %s", cl_role_name(x->role));
    return reply(c, req, CL_COAP_CHANGED, -1, NULL, 0, out, out_size, out_len);
}

cl_status_t cl_sessions_edhoc(cl_core_t *c, const cl_coap_msg_t *req, uint8_t *out, size_t out_size,
                              size_t *out_len)
{
    bool is_m1;
    uint8_t cid[CL_EDHOC_MAX_CID];
    size_t cid_len, msg_len;
    const uint8_t *msg;

    if (c->st.phase != CL_PHASE_PROVISIONED)
        return reply_text_error(c, req, "core not provisioned", out, out_size, out_len);
    if (req->code != CL_COAP_POST)
        return reply(c, req, CL_COAP_METHOD_NOT_ALLOWED, -1, NULL, 0, out, out_size, out_len);
    if (req->payload_len == 0 || cl_edhoc_split_request(req->payload, req->payload_len, &is_m1, cid,
                                                        &cid_len, &msg, &msg_len) != CL_OK)
        return reply_text_error(c, req, "expected true + message_1 or C_R + message_3", out,
                                out_size, out_len);
    if (is_m1)
        return message_1(c, req, msg, msg_len, out, out_size, out_len);
    cl_session_t *x = find_by_c_r(c, CL_SESS_HALF_OPEN, cid, cid_len);
    if (x == NULL)
        return reply_text_error(c, req, "no such EDHOC session", out, out_size, out_len);
    return message_3(c, x, req, msg, msg_len, out, out_size, out_len);
}
