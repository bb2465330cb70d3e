/*
 * mcu/host_check.c - runs the firmware's client (mcu/client.c, unchanged)
 * on the host against a real EDHOC responder + OSCORE server, so that the
 * code measured on Cortex-M is known to work: one handshake, one protected
 * POST /events, its protected response. Same config.h limits as the
 * cross build (CL_MCU_PROFILE), the OpenSSL provider for crypto, ASan+UBSan.
 *
 * The server side stands in for the Cloister core (core/session.c): EDHOC
 * over CoAP at /.well-known/edhoc (RFC 9528 A.2), OSCORE for the rest. Keys
 * are fresh P-256 static DH keys made at start, CCS credentials by kid.
 *
 * Prints one line per step and "mcu-host-check: 1 passed, 0 failed".
 */
#include <stdio.h>
#include <string.h>

#include "client.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/crypto_openssl.h"

#define SERVER_C_R 0x27 /* CBOR -8: a one-byte C_R the client's C_I (0..23) never equals */

typedef struct party {
    cl_edhoc_auth_t auth;
    uint8_t id_cred[4]; /* {4: h'<kid>'} */
    uint8_t cred[160];  /* CCS */
    size_t cred_len;
    uint8_t pub[CL_PUB_MAX];
} party_t;

typedef struct server {
    const cl_crypto_t *crypto;
    const party_t *self, *peer;
    int suites[1];
    cl_edhoc_config_t cfg;
    cl_edhoc_t edhoc;
    cl_oscore_ctx_t oscore;
    uint8_t event[128];
    size_t event_len;
    int exchanges;
    size_t max_req, max_resp;
} server_t;

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "mcu-host-check: FAILED at %s:%d: ", __FILE__, __LINE__);              \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
            return CL_ERR_STATE;                                                                   \
        }                                                                                          \
    } while (0)

/* A P-256 static DH key and its CCS: {2: sub, 8: {1: {1: 2, 2: kid, -1: 1, -2: x, -3: y}}}. */
static cl_status_t make_party(const cl_crypto_t *c, party_t *p, uint8_t kid, const char *sub)
{
    cl_cbor_enc_t e;
    size_t pub_len;
    cl_status_t st;

    memset(p, 0, sizeof *p);
    st = c->ops->key_generate(c->self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &p->auth.key, p->pub,
                              sizeof p->pub, &pub_len);
    if (st != CL_OK || pub_len != 65)
        return CL_ERR_CRYPTO;
    p->id_cred[0] = 0xa1; /* {4: h'kid'} */
    p->id_cred[1] = 0x04;
    p->id_cred[2] = 0x41;
    p->id_cred[3] = kid;
    cl_cbor_enc_init(&e, p->cred, sizeof p->cred);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_uint(&e, 2);
    cl_cbor_enc_tstr_z(&e, sub);
    cl_cbor_enc_uint(&e, 8);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 1);
    cl_cbor_enc_map(&e, 5);
    cl_cbor_enc_uint(&e, 1);
    cl_cbor_enc_uint(&e, 2); /* kty EC2 */
    cl_cbor_enc_uint(&e, 2);
    cl_cbor_enc_bstr(&e, &kid, 1);
    cl_cbor_enc_int(&e, -1);
    cl_cbor_enc_uint(&e, 1); /* crv P-256 */
    cl_cbor_enc_int(&e, -2);
    cl_cbor_enc_bstr(&e, p->pub + 1, 32);
    cl_cbor_enc_int(&e, -3);
    cl_cbor_enc_bstr(&e, p->pub + 33, 32);
    if ((st = cl_cbor_enc_finish(&e, &p->cred_len)) != CL_OK)
        return st;
    p->auth.id_cred = p->id_cred;
    p->auth.id_cred_len = sizeof p->id_cred;
    p->auth.cred = p->cred;
    p->auth.cred_len = p->cred_len;
    p->auth.type = CL_KEY_P256;
    p->auth.static_dh = true;
    return CL_OK;
}

/* ---------------------------------------------------------------- server */

static cl_status_t server_peer_cred(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                                    size_t id_cred_len, cl_edhoc_peer_t *peer)
{
    const server_t *s = arg;

    (void)own_role;
    if (id_cred_len != sizeof s->peer->id_cred ||
        memcmp(id_cred, s->peer->id_cred, id_cred_len) != 0)
        return CL_ERR_NOT_FOUND;
    if (peer->expected != CL_KEY_P256)
        return CL_ERR_AUTH;
    peer->cred = s->peer->cred;
    peer->cred_len = s->peer->cred_len;
    memcpy(peer->pub, s->peer->pub, 65);
    peer->pub_len = 65;
    return CL_OK;
}

/* ACK to m (same message id and token) with code, optional Content-Format and payload. */
static cl_status_t reply(const cl_coap_msg_t *m, uint8_t code, int cf, const uint8_t *payload,
                         size_t len, uint8_t *out, size_t out_size, size_t *out_len)
{
    cl_coap_builder_t b;

    cl_coap_build_init(&b, out, out_size, CL_COAP_ACK, code, m->mid, m->token, m->tkl);
    if (cf >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, (uint32_t)cf);
    cl_coap_build_payload(&b, payload, len);
    return cl_coap_build_finish(&b, out_len);
}

static cl_status_t serve_edhoc(server_t *s, const cl_coap_msg_t *m, uint8_t *resp, size_t resp_size,
                               size_t *resp_len)
{
    const uint8_t *msg;
    uint8_t cid[CL_EDHOC_MAX_CID], m2[256], ms[16], salt[8], c_r = SERVER_C_R;
    size_t cid_len, msg_len, m2_len;
    bool is_m1;
    cl_oscore_params_t p;
    cl_status_t st;
    const cl_coap_option_t *cf = cl_coap_msg_get(m, CL_COAP_OPT_CONTENT_FORMAT);
    uint32_t cfv = 0;

    CHECK(m->code == CL_COAP_POST && cf != NULL && cl_coap_opt_uint(cf, &cfv) == CL_OK &&
              cfv == CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ,
          "EDHOC request is not a POST with Content-Format 65");
    st = cl_edhoc_split_request(m->payload, m->payload_len, &is_m1, cid, &cid_len, &msg, &msg_len);
    CHECK(st == CL_OK, "cl_edhoc_split_request: %s", cl_status_str(st));
    if (is_m1) {
        cl_edhoc_free(&s->edhoc);
        st = cl_edhoc_init(&s->edhoc, &s->cfg, CL_EDHOC_RESPONDER, &c_r, 1);
        CHECK(st == CL_OK, "responder init: %s", cl_status_str(st));
        st = cl_edhoc_process_message_1(&s->edhoc, msg, msg_len);
        CHECK(st == CL_OK, "process_message_1: %s", cl_status_str(st));
        st = cl_edhoc_message_2(&s->edhoc, NULL, 0, m2, sizeof m2, &m2_len);
        CHECK(st == CL_OK, "message_2: %s", cl_status_str(st));
        printf("mcu-host-check: message_1 %zu B -> message_2 %zu B\n", msg_len, m2_len);
        return reply(m, CL_COAP_CHANGED, CL_EDHOC_CF_EDHOC_CBOR_SEQ, m2, m2_len, resp, resp_size,
                     resp_len);
    }
    CHECK(cid_len == 1 && cid[0] == SERVER_C_R, "message_3 is not for our C_R");
    st = cl_edhoc_process_message_3(&s->edhoc, msg, msg_len);
    CHECK(st == CL_OK, "process_message_3: %s", cl_status_str(st));
    st = cl_edhoc_oscore_params(&s->edhoc, ms, salt, &p);
    CHECK(st == CL_OK, "oscore_params: %s", cl_status_str(st));
    cl_oscore_ctx_free(&s->oscore);
    st = cl_oscore_ctx_init(&s->oscore, s->crypto, &p);
    CHECK(st == CL_OK, "server OSCORE context: %s", cl_status_str(st));
    cl_edhoc_free(&s->edhoc);
    printf("mcu-host-check: message_3 %zu B -> 2.04, OSCORE context derived\n", msg_len);
    return reply(m, CL_COAP_CHANGED, -1, NULL, 0, resp, resp_size, resp_len);
}

static cl_status_t serve_oscore(server_t *s, uint8_t *msg, size_t len, uint8_t *resp,
                                size_t resp_size, size_t *resp_len)
{
    static const uint8_t created[] = {0xa1, 0x62, 'i', 'd', 0x01}; /* {"id": 1} */
    uint8_t plain[512], out[512];
    size_t plain_len, out_len;
    char path[32];
    cl_coap_msg_t m;
    cl_oscore_ctx_t *list[1] = {&s->oscore}, *ctx;
    cl_oscore_ctx_list_t l = {list, 1};
    cl_oscore_req_t req;
    cl_status_t st;

    st = cl_oscore_unprotect_request(cl_oscore_lookup_list, &l, msg, len, plain, sizeof plain,
                                     &plain_len, &ctx, &req);
    CHECK(st == CL_OK, "unprotect_request: %s", cl_status_str(st));
    st = cl_coap_parse(&m, plain, plain_len);
    CHECK(st == CL_OK, "inner request: %s", cl_status_str(st));
    st = cl_coap_uri_path(&m, path, sizeof path);
    CHECK(st == CL_OK && m.code == CL_COAP_POST && strcmp(path, "/events") == 0,
          "inner request is not POST /events");
    CHECK(m.payload_len <= sizeof s->event, "event too large");
    memcpy(s->event, m.payload, m.payload_len);
    s->event_len = m.payload_len;
    printf("mcu-host-check: POST /events, %zu B CBOR event, verified and decrypted\n",
           m.payload_len);
    st = reply(&m, CL_COAP_CREATED, CL_COAP_CF_CBOR, created, sizeof created, out, sizeof out,
               &out_len);
    CHECK(st == CL_OK, "inner response: %s", cl_status_str(st));
    st = cl_oscore_protect_response(ctx, &req, NULL, out, out_len, resp, resp_size, resp_len);
    CHECK(st == CL_OK, "protect_response: %s", cl_status_str(st));
    return CL_OK;
}

/* The transport of the client: the server runs inside the call. */
static cl_status_t server_exchange(void *arg, const uint8_t *req, size_t req_len, uint8_t *resp,
                                   size_t resp_size, size_t *resp_len)
{
    server_t *s = arg;
    uint8_t buf[512];
    cl_coap_msg_t m;
    char path[64];
    cl_status_t st;

    s->exchanges++;
    if (req_len > s->max_req)
        s->max_req = req_len;
    CHECK(req_len <= sizeof buf, "request too large");
    memcpy(buf, req, req_len); /* unprotect decrypts in place */
    st = cl_coap_parse(&m, buf, req_len);
    CHECK(st == CL_OK, "request does not parse: %s", cl_status_str(st));
    CHECK(m.type == CL_COAP_CON, "request is not CON");
    if (cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) != NULL) {
        st = serve_oscore(s, buf, req_len, resp, resp_size, resp_len);
    } else {
        st = cl_coap_uri_path(&m, path, sizeof path);
        CHECK(st == CL_OK && strcmp(path, CL_EDHOC_WELL_KNOWN) == 0,
              "unprotected request to something else than %s", CL_EDHOC_WELL_KNOWN);
        st = serve_edhoc(s, &m, resp, resp_size, resp_len);
    }
    if (st == CL_OK && *resp_len > s->max_resp)
        s->max_resp = *resp_len;
    return st;
}

/* ---------------------------------------------------------------- main */

static int run(const cl_crypto_t *crypto)
{
    static party_t device, core;
    static server_t server;
    static cl_mcu_client_t client; /* as on the device: static storage */
    static const uint8_t event[] = {0xa2, 0x64, 't', 'y', 'p', 'e', 0x6b, 't', 'e',  'm',
                                    'p',  'e',  'r', 'a', 't', 'u', 'r',  'e', 0x6a, 'p',
                                    'r',  'o',  'p', 'e', 'r', 't', 'i',  'e', 's',  0xa1,
                                    0x67, 'c',  'e', 'l', 's', 'i', 'u',  's', 0x15};
    uint8_t code = 0;
    const uint8_t *resp;
    size_t resp_len;
    cl_status_t st;

    if (make_party(crypto, &device, 0x2b, "device") != CL_OK ||
        make_party(crypto, &core, 0x32, "core") != CL_OK) {
        fprintf(stderr, "mcu-host-check: cannot make the keys\n");
        return 1;
    }
    server.crypto = crypto;
    server.self = &core;
    server.peer = &device;
    server.suites[0] = 2;
    server.cfg = (cl_edhoc_config_t){.crypto = crypto,
                                     .suites = server.suites,
                                     .n_suites = 1,
                                     .auth = &core.auth,
                                     .n_auth = 1,
                                     .peer_cred = server_peer_cred,
                                     .peer_cred_arg = &server};

    const cl_mcu_identity_t id = {.auth = device.auth,
                                  .peer_id_cred = core.id_cred,
                                  .peer_id_cred_len = sizeof core.id_cred,
                                  .peer_cred = core.cred,
                                  .peer_cred_len = core.cred_len,
                                  .peer_pub = core.pub,
                                  .peer_pub_len = 65,
                                  .method = CL_EDHOC_METHOD_STAT_STAT,
                                  .suite = 2};
    const cl_mcu_transport_t t = {.exchange = server_exchange, .arg = &server};

    cl_mcu_client_init(&client, crypto, &id, &t);
    st = cl_mcu_client_handshake(&client);
    if (st != CL_OK || failures) {
        fprintf(stderr, "mcu-host-check: FAILED: handshake: %s\n", cl_status_str(st));
        return 1;
    }
    printf("mcu-host-check: handshake done (method 3, suite 2)\n");
    st = cl_mcu_client_post_event(&client, event, sizeof event, &code, &resp, &resp_len);
    if (st != CL_OK || failures) {
        fprintf(stderr, "mcu-host-check: FAILED: POST /events: %s\n", cl_status_str(st));
        return 1;
    }
    if (code != CL_COAP_CREATED || resp_len != 5 || memcmp(resp, "\xa1\x62id\x01", 5) != 0 ||
        server.event_len != sizeof event || memcmp(server.event, event, sizeof event) != 0) {
        fprintf(stderr, "mcu-host-check: FAILED: wrong event or response\n");
        return 1;
    }
    printf("mcu-host-check: response 2.01 verified; %d exchanges, largest request %zu B, "
           "largest response %zu B (CL_MCU_MSG_MAX %d)\n",
           server.exchanges, server.max_req, server.max_resp, CL_MCU_MSG_MAX);
    /* a second request on the same context: sequence numbers move on */
    st = cl_mcu_client_post_event(&client, event, sizeof event, &code, &resp, &resp_len);
    if (st != CL_OK || failures || code != CL_COAP_CREATED) {
        fprintf(stderr, "mcu-host-check: FAILED: second POST /events: %s\n", cl_status_str(st));
        return 1;
    }
    cl_mcu_client_close(&client);
    cl_oscore_ctx_free(&server.oscore);
    cl_key_destroy(crypto, device.auth.key);
    cl_key_destroy(crypto, core.auth.key);
    return 0;
}

int main(void)
{
    cl_crypto_t crypto;
    int rc;

    if (cl_crypto_openssl_new(&crypto, 0) != CL_OK) {
        fprintf(stderr, "mcu-host-check: no OpenSSL provider\n");
        return 1;
    }
    rc = run(&crypto);
    cl_crypto_openssl_free(&crypto);
    printf("mcu-host-check: %d passed, %d failed\n", rc == 0 ? 1 : 0, rc == 0 ? 0 : 1);
    return rc;
}
