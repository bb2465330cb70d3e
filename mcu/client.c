/*
 * mcu/client.c - the minimal EDHOC initiator + OSCORE client (client.h).
 *
 * Portable C11 on top of lib/ only: no heap, no I/O, no libc beyond
 * memcpy/memcmp/memset. Built for the Cortex-M firmware image
 * (mcu/firmware_main.c) and, unchanged, for the host check
 * (mcu/host_check.c), which runs it against a real responder.
 */
#include "client.h"

#include <string.h>

#include "cloister/coap.h"

#define EDHOC_CBOR_TRUE 0xf5 /* message_1 prefix in the forward flow (RFC 9528 A.2) */

static const char well_known_edhoc[] = ".well-known";
static const char edhoc_seg[] = "edhoc";
static const char events_seg[] = "events";

/* ---------------------------------------------------------------- EDHOC */

/*
 * The server's credential is pinned: only the ID_CRED_R we were provisioned
 * with is accepted, and CRED_R / its static DH key come from the identity.
 */
static cl_status_t peer_cred(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                             size_t id_cred_len, cl_edhoc_peer_t *peer)
{
    const cl_mcu_client_t *c = arg;
    const cl_mcu_identity_t *id = c->id;

    (void)own_role;
    if (id_cred_len != id->peer_id_cred_len || memcmp(id_cred, id->peer_id_cred, id_cred_len) != 0)
        return CL_ERR_NOT_FOUND;
    if (peer->expected != CL_KEY_P256 || id->peer_pub_len > sizeof peer->pub)
        return CL_ERR_AUTH;
    peer->cred = id->peer_cred;
    peer->cred_len = id->peer_cred_len;
    memcpy(peer->pub, id->peer_pub, id->peer_pub_len);
    peer->pub_len = id->peer_pub_len;
    return CL_OK;
}

void cl_mcu_client_init(cl_mcu_client_t *c, const cl_crypto_t *crypto, const cl_mcu_identity_t *id,
                        const cl_mcu_transport_t *transport)
{
    memset(c, 0, sizeof *c);
    c->crypto = crypto;
    c->id = id;
    c->transport = *transport;
    c->suites[0] = id->suite;
    c->cfg.crypto = crypto;
    c->cfg.suites = c->suites;
    c->cfg.n_suites = 1;
    c->cfg.auth = &id->auth;
    c->cfg.n_auth = 1;
    c->cfg.peer_cred = peer_cred;
    c->cfg.peer_cred_arg = c;
}

/* ---------------------------------------------------------------- CoAP */

/* A fresh token and message id for the next request. */
static cl_status_t next_request(cl_mcu_client_t *c)
{
    c->mid++;
    return cl_random(c->crypto, c->token, sizeof c->token);
}

/*
 * Sends c->tx[0..len) and parses the response (*rlen bytes in c->rx) into *m:
 * it must be a response (class 2..5) with the request's token.
 */
static cl_status_t exchange(cl_mcu_client_t *c, size_t len, cl_coap_msg_t *m, size_t *rlen)
{
    cl_status_t st;

    st = c->transport.exchange(c->transport.arg, c->tx, len, c->rx, sizeof c->rx, rlen);
    if (st != CL_OK)
        return st;
    if (*rlen > sizeof c->rx)
        return CL_ERR_BUFFER_TOO_SMALL;
    if ((st = cl_coap_parse(m, c->rx, *rlen)) != CL_OK)
        return st;
    if (m->tkl != sizeof c->token || memcmp(m->token, c->token, sizeof c->token) != 0 ||
        CL_COAP_CLASS(m->code) < 2)
        return CL_ERR_BAD_INPUT;
    return CL_OK;
}

/* POST /.well-known/edhoc with payload prefix || c->plain[0..msg_len). */
static cl_status_t edhoc_post(cl_mcu_client_t *c, const uint8_t *prefix, size_t prefix_len,
                              size_t msg_len, cl_coap_msg_t *resp)
{
    cl_coap_builder_t b;
    size_t len, rlen;
    cl_status_t st;

    if ((st = next_request(c)) != CL_OK)
        return st;
    cl_coap_build_init(&b, c->tx, sizeof c->tx, CL_COAP_CON, CL_COAP_POST, c->mid, c->token,
                       sizeof c->token);
    cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)well_known_edhoc,
                         sizeof well_known_edhoc - 1);
    cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)edhoc_seg,
                         sizeof edhoc_seg - 1);
    cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ);
    /* the payload is prefix || message: write the marker and prefix, then the message */
    cl_coap_build_payload(&b, prefix, prefix_len);
    if ((st = cl_coap_build_finish(&b, &len)) != CL_OK)
        return st;
    if (msg_len > sizeof c->tx - len)
        return CL_ERR_BUFFER_TOO_SMALL;
    memcpy(c->tx + len, c->plain, msg_len);
    return exchange(c, len + msg_len, resp, &rlen);
}

cl_status_t cl_mcu_client_handshake(cl_mcu_client_t *c)
{
    static const uint8_t msg1_prefix[1] = {EDHOC_CBOR_TRUE};
    uint8_t c_i, prefix[CL_EDHOC_MAX_CID + 2], ms[16], salt[8];
    size_t len, prefix_len;
    cl_coap_msg_t resp;
    cl_oscore_params_t p;
    cl_status_t st;

    /* C_I: a random one-byte identifier (a CBOR int 0..23 on the wire) */
    if ((st = cl_random(c->crypto, &c_i, 1)) != CL_OK)
        return st;
    c_i %= 24;
    cl_edhoc_free(&c->edhoc);
    cl_oscore_ctx_free(&c->oscore);
    if ((st = cl_edhoc_init(&c->edhoc, &c->cfg, CL_EDHOC_INITIATOR, &c_i, 1)) != CL_OK)
        goto out;

    /* message_1 -> message_2 */
    if ((st = cl_edhoc_message_1(&c->edhoc, c->id->method, c->id->suite, NULL, 0, c->plain,
                                 sizeof c->plain, &len)) != CL_OK ||
        (st = edhoc_post(c, msg1_prefix, sizeof msg1_prefix, len, &resp)) != CL_OK)
        goto out;
    if (resp.code != CL_COAP_CHANGED && !cl_edhoc_is_error(resp.payload, resp.payload_len)) {
        st = CL_ERR_PEER_ERROR;
        goto out;
    }
    if ((st = cl_edhoc_process_message_2(&c->edhoc, resp.payload, resp.payload_len)) != CL_OK)
        goto out;

    /* message_3, prefixed with C_R -> 2.04 (with message_4 if the server sends it) */
    if ((st = cl_edhoc_message_3(&c->edhoc, NULL, 0, c->plain, sizeof c->plain, &len)) != CL_OK ||
        (st = cl_edhoc_encode_cid(c->edhoc.c_r, c->edhoc.c_r_len, prefix, sizeof prefix,
                                  &prefix_len)) != CL_OK ||
        (st = edhoc_post(c, prefix, prefix_len, len, &resp)) != CL_OK)
        goto out;
    if (resp.code != CL_COAP_CHANGED) {
        st = CL_ERR_PEER_ERROR;
        goto out;
    }
    if (resp.payload_len > 0 &&
        (st = cl_edhoc_process_message_4(&c->edhoc, resp.payload, resp.payload_len)) != CL_OK)
        goto out;

    /* OSCORE context of Appendix A.1 */
    if ((st = cl_edhoc_oscore_params(&c->edhoc, ms, salt, &p)) != CL_OK)
        goto out;
    st = cl_oscore_ctx_init(&c->oscore, c->crypto, &p);
    cl_wipe(ms, sizeof ms);
    cl_wipe(salt, sizeof salt);
out:
    cl_edhoc_free(&c->edhoc); /* PRK_out is not kept: no EDHOC-KeyUpdate on this device */
    return st;
}

/* ---------------------------------------------------------------- OSCORE */

cl_status_t cl_mcu_client_post_event(cl_mcu_client_t *c, const uint8_t *cbor, size_t cbor_len,
                                     uint8_t *code, const uint8_t **resp_payload,
                                     size_t *resp_payload_len)
{
    cl_coap_builder_t b;
    cl_coap_msg_t resp;
    size_t len, rlen, plain_len;
    cl_status_t st;

    if (!(c->oscore.flags & CL_OSCORE_F_VALID))
        return CL_ERR_STATE;
    if ((st = next_request(c)) != CL_OK)
        return st;
    /* the plain request, then its protected form into tx */
    cl_coap_build_init(&b, c->plain, sizeof c->plain, CL_COAP_CON, CL_COAP_POST, c->mid, c->token,
                       sizeof c->token);
    cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)events_seg,
                         sizeof events_seg - 1);
    cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, CL_COAP_CF_CBOR);
    cl_coap_build_payload(&b, cbor, cbor_len);
    if ((st = cl_coap_build_finish(&b, &len)) != CL_OK ||
        (st = cl_oscore_protect_request(&c->oscore, c->plain, len, c->tx, sizeof c->tx, &len,
                                        &c->req)) != CL_OK ||
        (st = exchange(c, len, &resp, &rlen)) != CL_OK)
        return st;
    /* verify + decrypt (in place in rx) into plain, then read the inner code and payload */
    if ((st = cl_oscore_unprotect_response(&c->oscore, &c->req, c->rx, rlen, c->plain,
                                           sizeof c->plain, &plain_len)) != CL_OK)
        return st;
    if ((st = cl_coap_parse(&resp, c->plain, plain_len)) != CL_OK)
        return st;
    *code = resp.code;
    *resp_payload = resp.payload;
    *resp_payload_len = resp.payload_len;
    return CL_OK;
}

void cl_mcu_client_close(cl_mcu_client_t *c)
{
    cl_edhoc_free(&c->edhoc);
    cl_oscore_ctx_free(&c->oscore);
    cl_wipe(c, sizeof *c);
}
