/*
 * cli/session.c - EDHOC + OSCORE sessions with the trusted core, and the
 * identities (owner / enrolled client directories) they run as
 * (session.h).
 *
 * Trust: the core proves itself with ID_CRED_R = x5t of its identity
 * certificate (or {33: [identity_cert, ca_cert]} by value). We accept it
 * only when both the identity (a P-256 leaf) and the core CA (an
 * intermediate, pathlen 0) are issued by our pinned owner root
 * (cl_pki_verify_issued at the current time; core/pki/pki.h: the owner
 * root issues both), and - when the
 * caller pinned them (the owner pins what it signed at provisioning) - the
 * certificates are byte-for-byte the pinned ones. CRED_R is the identity
 * certificate as a CBOR byte string (RFC 9528 3.5.2). The host that carries
 * the datagrams sees EDHOC messages and OSCORE ciphertext only.
 */
#include "session.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/attest.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/cose.h"
#include "cloister/crypto_openssl.h"
#include "cloister/keystore.h"
#include "pki.h"

#define EDHOC_PATH "/.well-known/edhoc"
#define COSE_HDR_KCCS 14
#define MSG_MAX 4096

static void step(const cli_session_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void step(const cli_session_t *s, const char *fmt, ...)
{
    va_list ap;

    if (s->cfg.quiet)
        return;
    fputs("edhoc: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

bool cli_ccs_encode(const uint8_t pub[65], const char *name, uint8_t *out, size_t out_size,
                    size_t *out_len)
{
    cl_cbor_enc_t e;

    if (pub[0] != 0x04)
        return false;
    cl_cbor_enc_init(&e, out, out_size);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_uint(&e, 2); /* sub */
    cl_cbor_enc_tstr_z(&e, name);
    cl_cbor_enc_uint(&e, 8); /* cnf */
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, 1); /* COSE_Key */
    cl_cbor_enc_map(&e, 4);
    cl_cbor_enc_uint(&e, 1); /* kty: EC2 */
    cl_cbor_enc_uint(&e, 2);
    cl_cbor_enc_int(&e, -1); /* crv: P-256 */
    cl_cbor_enc_uint(&e, 1);
    cl_cbor_enc_int(&e, -2); /* x */
    cl_cbor_enc_bstr(&e, pub + 1, 32);
    cl_cbor_enc_int(&e, -3); /* y */
    cl_cbor_enc_bstr(&e, pub + 33, 32);
    return cl_cbor_enc_finish(&e, out_len) == CL_OK;
}

/* ---------------------------------------------------------- peer credential */

static cl_status_t refuse(cli_session_t *s, cl_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static cl_status_t refuse(cli_session_t *s, cl_status_t st, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    return st;
}

static const char *pki_why(cl_status_t st)
{
    switch (st) {
    case CL_ERR_AUTH: return "signature or names do not match";
    case CL_ERR_STATE: return "expired or not yet valid";
    case CL_ERR_BAD_INPUT: return "malformed certificate";
    default: return cl_status_str(st);
    }
}

/* The identity (and CA) certificate named by ID_CRED_R: x5chain by value, or x5t among the known ones. */
static cl_status_t peer_certs(cli_session_t *s, const uint8_t *id_cred, size_t id_cred_len,
                              const uint8_t **der, size_t *lens)
{
    const uint8_t *v;
    size_t vlen, n;
    cl_cbor_dec_t d;
    cl_cbor_type_t t;

    der[1] = s->known_ca_len > 0 ? s->known_ca : NULL;
    lens[1] = s->known_ca_len;
    if (cl_cose_header_find(id_cred, id_cred_len, CL_COSE_HDR_X5CHAIN, &v, &vlen) == CL_OK) {
        cl_cbor_dec_init(&d, v, vlen);
        if (cl_cbor_dec_peek(&d, &t) != CL_OK)
            return refuse(s, CL_ERR_AUTH, "malformed x5chain");
        n = 1;
        if (t == CL_CBOR_ARRAY && (cl_cbor_dec_array(&d, &n) != CL_OK || n < 1 || n > 2))
            return refuse(s, CL_ERR_AUTH, "x5chain must be [identity certificate, core CA]");
        for (size_t i = 0; i < n; i++)
            if (cl_cbor_dec_bstr(&d, &der[i], &lens[i]) != CL_OK || lens[i] > CLI_CERT_MAX)
                return refuse(s, CL_ERR_AUTH, "malformed x5chain");
        if (!cl_cbor_dec_at_end(&d))
            return refuse(s, CL_ERR_AUTH, "malformed x5chain");
    } else if (cl_cose_header_find(id_cred, id_cred_len, CL_COSE_HDR_X5T, &v, &vlen) == CL_OK) {
        int64_t alg;
        const uint8_t *h;
        size_t hl;
        uint8_t full[32];
        cl_cbor_dec_init(&d, v, vlen);
        if (cl_cbor_dec_array(&d, &n) != CL_OK || n != 2 || cl_cbor_dec_int(&d, &alg) != CL_OK ||
            cl_cbor_dec_bstr(&d, &h, &hl) != CL_OK ||
            !((alg == -15 && hl == 8) || (alg == -16 && hl == 32)))
            return refuse(s, CL_ERR_AUTH, "malformed or unsupported x5t");
        if (s->known_id_len == 0)
            return refuse(s, CL_ERR_NOT_FOUND,
                          "the core names its certificate by x5t and we do not know it");
        cli_sha256(s->known_id, s->known_id_len, full);
        if (memcmp(full, h, hl) != 0)
            return refuse(s, CL_ERR_NOT_FOUND,
                          "the core's x5t does not match its known identity certificate");
        der[0] = s->known_id;
        lens[0] = s->known_id_len;
    } else {
        return refuse(s, CL_ERR_NOT_FOUND, "the core did not send an X.509 credential");
    }
    if (der[1] == NULL)
        return refuse(s, CL_ERR_AUTH, "the core CA certificate is unknown");
    return CL_OK;
}

static cl_status_t peer_cred(void *arg, cl_edhoc_role_t own_role, const uint8_t *id_cred,
                             size_t id_cred_len, cl_edhoc_peer_t *peer)
{
    cli_session_t *s = arg;
    const uint8_t *der[2];
    size_t lens[2];
    cl_pki_cert_info_t id_info, ca_info;
    cl_status_t st;
    int64_t now = (int64_t)time(NULL);

    (void)own_role;
    s->why[0] = '\0';
    if ((st = peer_certs(s, id_cred, id_cred_len, der, lens)) != CL_OK)
        return st;
    if (cl_pki_cert_parse(der[0], lens[0], &id_info) != CL_OK ||
        cl_pki_cert_parse(der[1], lens[1], &ca_info) != CL_OK)
        return refuse(s, CL_ERR_AUTH, "the core's certificates do not parse");
    if (id_info.is_ca)
        return refuse(s, CL_ERR_AUTH, "the core's identity certificate is a CA");
    if (!ca_info.is_ca || ca_info.pathlen != 0)
        return refuse(s, CL_ERR_AUTH, "the core's CA certificate is not an intermediate CA");
    if ((st = cl_pki_verify_issued(der[1], lens[1], s->cfg.root, s->cfg.root_len, now)) != CL_OK)
        return refuse(s, CL_ERR_AUTH, "the core CA '%s' is not issued by the owner root: %s",
                      ca_info.cn, pki_why(st));
    /* core/pki/pki.h: the owner root issues both the core CA and the core identity. */
    if ((st = cl_pki_verify_issued(der[0], lens[0], s->cfg.root, s->cfg.root_len, now)) != CL_OK)
        return refuse(s, CL_ERR_AUTH,
                      "the core identity '%s' is not issued by the owner root: %s", id_info.cn,
                      pki_why(st));
    if (s->cfg.pin_ca != NULL &&
        (s->cfg.pin_ca_len != lens[1] || memcmp(s->cfg.pin_ca, der[1], lens[1]) != 0))
        return refuse(s, CL_ERR_AUTH, "the core CA differs from the pinned one");
    if (s->cfg.pin_identity != NULL && (s->cfg.pin_identity_len != lens[0] ||
                                        memcmp(s->cfg.pin_identity, der[0], lens[0]) != 0))
        return refuse(s, CL_ERR_AUTH,
                      "the core identity differs from the one signed at provisioning");
    if (peer->expected != CL_KEY_P256)
        return refuse(s, CL_ERR_AUTH, "the selected suite needs a key type the core lacks");

    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, s->peer_cred, sizeof s->peer_cred);
    cl_cbor_enc_bstr(&e, der[0], lens[0]);
    if (cl_cbor_enc_finish(&e, &s->peer_cred_len) != CL_OK)
        return refuse(s, CL_ERR_LIMIT, "certificate too large");
    if (s->peer_key != CL_KEY_NONE)
        cl_key_destroy(s->crypto, s->peer_key);
    s->peer_key = CL_KEY_NONE;
    if (s->crypto->ops->key_import_public(s->crypto->self, CL_KEY_P256, id_info.pub,
                                          sizeof id_info.pub, &s->peer_key) != CL_OK)
        return refuse(s, CL_ERR_AUTH, "the core identity key is not a valid P-256 key");
    memmove(s->peer_identity, der[0], lens[0]);
    s->peer_identity_len = lens[0];
    memmove(s->peer_ca, der[1], lens[1]);
    s->peer_ca_len = lens[1];
    snprintf(s->peer_cn, sizeof s->peer_cn, "%s", id_info.cn);
    peer->cred = s->peer_cred;
    peer->cred_len = s->peer_cred_len;
    peer->key = s->peer_key;
    memcpy(peer->pub, id_info.pub, sizeof id_info.pub);
    peer->pub_len = sizeof id_info.pub;
    return CL_OK;
}

/*
 * The core names itself by x5t: when we lack its identity (or CA)
 * certificate, take them from its public evidence (GET /attestation, state
 * provisioned). They are trusted only through the chain check to the owner
 * root in peer_cred, not because of where they came from.
 */
static bool learn_core_certs(cli_session_t *s, char *err, size_t err_size)
{
    uint8_t nonce[16], code, *buf = malloc(CLI_PAYLOAD_MAX);
    char query[64], hex[33];
    size_t len;
    cl_attest_core_evidence_t ev;
    bool ok = false;

    if (buf == NULL || cl_random(s->crypto, nonce, sizeof nonce) != CL_OK) {
        cli_err(err, err_size, "out of memory or no randomness");
        goto done;
    }
    cli_hex(hex, sizeof hex, nonce, sizeof nonce);
    snprintf(query, sizeof query, "nonce=%s", hex);
    cli_req_t r = {.code = CL_COAP_GET, .path = "/attestation", .query = query, .cf = -1};
    if (!cli_net_request(&s->net, &r, &code, buf, CLI_PAYLOAD_MAX, &len, err, err_size))
        goto done;
    if (code != CL_COAP_CONTENT || cl_attest_core_evidence_decode(buf, len, &ev) != CL_OK) {
        cli_err(err, err_size, "cannot read the core's certificates from GET /attestation");
        goto done;
    }
    if (ev.identity_cert == NULL || ev.ca_cert == NULL || ev.identity_cert_len > CLI_CERT_MAX ||
        ev.ca_cert_len > CLI_CERT_MAX) {
        cli_err(err, err_size, "the core is not provisioned yet (state %.*s)", (int)ev.state_len,
                ev.state);
        goto done;
    }
    if (s->known_id_len == 0) {
        memcpy(s->known_id, ev.identity_cert, ev.identity_cert_len);
        s->known_id_len = ev.identity_cert_len;
    }
    if (s->known_ca_len == 0) {
        memcpy(s->known_ca, ev.ca_cert, ev.ca_cert_len);
        s->known_ca_len = ev.ca_cert_len;
    }
    ok = true;
done:
    free(buf);
    return ok;
}

/* ---------------------------------------------------------- handshake */

static bool edhoc_post(cli_session_t *s, const uint8_t *prefix, size_t prefix_len,
                       const uint8_t *msg, size_t msg_len, uint8_t *code, uint8_t *out,
                       size_t out_size, size_t *out_len, char *err, size_t err_size)
{
    uint8_t body[MSG_MAX];
    cli_req_t r = {.code = CL_COAP_POST,
                   .path = EDHOC_PATH,
                   .cf = CL_EDHOC_CF_CID_EDHOC_CBOR_SEQ,
                   .payload = body,
                   .len = prefix_len + msg_len};

    if (prefix_len + msg_len > sizeof body) {
        cli_err(err, err_size, "EDHOC message too large");
        return false;
    }
    memcpy(body, prefix, prefix_len);
    memcpy(body + prefix_len, msg, msg_len);
    return cli_net_request(&s->net, &r, code, out, out_size, out_len, err, err_size);
}

/* "error 1 (\"text\")" and friends. */
static void describe_error(const uint8_t *msg, size_t len, char *out, size_t out_size)
{
    cl_cbor_dec_t d;
    int64_t code = 0;
    const char *txt;
    size_t tlen;

    cl_cbor_dec_init(&d, msg, len);
    if (cl_cbor_dec_int(&d, &code) != CL_OK) {
        snprintf(out, out_size, "a malformed error message");
        return;
    }
    if (code == CL_EDHOC_ERR_UNSPECIFIED && cl_cbor_dec_tstr(&d, &txt, &tlen) == CL_OK) {
        char t[128];
        size_t k = 0;
        for (size_t i = 0; i < tlen && k + 1 < sizeof t; i++)
            t[k++] = txt[i] >= 0x20 && txt[i] < 0x7f ? txt[i] : '?';
        t[k] = '\0';
        snprintf(out, out_size, "error 1 (\"%s\")", t);
    } else if (code == CL_EDHOC_ERR_WRONG_SUITE) {
        snprintf(out, out_size, "error 2 (the core does not support cipher suite 2)");
    } else if (code == CL_EDHOC_ERR_UNKNOWN_CRED) {
        snprintf(out, out_size, "error 3 (unknown credential)");
    } else {
        snprintf(out, out_size, "error %lld", (long long)code);
    }
}

static void send_error(cli_session_t *s, cl_status_t why)
{
    uint8_t prefix[CL_EDHOC_MAX_CID + 2], msg[128], resp[256], code;
    size_t prefix_len, msg_len, resp_len;
    char err[64];

    if (why != CL_ERR_AUTH && why != CL_ERR_NOT_FOUND)
        return;
    if (cl_edhoc_encode_cid(s->edhoc.c_r, s->edhoc.c_r_len, prefix, sizeof prefix, &prefix_len) !=
            CL_OK ||
        cl_edhoc_error_message(&s->edhoc, why, msg, sizeof msg, &msg_len) != CL_OK)
        return;
    (void)edhoc_post(s, prefix, prefix_len, msg, msg_len, &code, resp, sizeof resp, &resp_len, err,
                     sizeof err);
}

static bool handshake(cli_session_t *s, int *exit_code, char *err, size_t err_size)
{
    uint8_t m[MSG_MAX], prefix[CL_EDHOC_MAX_CID + 2], code, c_i, ms[16], salt[8];
    uint8_t *resp = malloc(CLI_PAYLOAD_MAX);
    size_t m_len, resp_len = 0, prefix_len;
    char desc[200], code_s[5];
    cl_oscore_params_t params;
    cl_status_t st;
    bool ok = false;

    *exit_code = CLI_EXIT_ERROR;
    if (resp == NULL || cl_random(s->crypto, &c_i, 1) != CL_OK) {
        cli_err(err, err_size, "out of memory or no randomness");
        goto done;
    }
    c_i %= 24; /* a one-byte C_I (CBOR int 0..23 on the wire) */
    if ((st = cl_edhoc_init(&s->edhoc, &s->ecfg, CL_EDHOC_INITIATOR, &c_i, 1)) != CL_OK ||
        (st = cl_edhoc_message_1(&s->edhoc, CL_EDHOC_METHOD_SIG_SIG, 2, NULL, 0, m, sizeof m,
                                 &m_len)) != CL_OK) {
        cli_err(err, err_size, "cannot start EDHOC: %s", cl_status_str(st));
        goto done;
    }
    prefix[0] = 0xf5; /* true: message_1 (Appendix A.2) */
    if (!edhoc_post(s, prefix, 1, m, m_len, &code, resp, CLI_PAYLOAD_MAX, &resp_len, err,
                    err_size))
        goto done;
    if (code != CL_COAP_CHANGED && !(resp_len > 0 && cl_edhoc_is_error(resp, resp_len))) {
        char core_err[300];
        cl_coap_code_str(code, code_s);
        cli_core_error(resp, resp_len, core_err, sizeof core_err);
        cli_err(err, err_size, "the core answered %s to EDHOC message_1%s%s%s", code_s,
                core_err[0] ? " (" : "", core_err, core_err[0] ? ")" : "");
        *exit_code = CLI_EXIT_REFUSED;
        goto done;
    }
    st = cl_edhoc_process_message_2(&s->edhoc, resp, resp_len);
    if (st == CL_ERR_PEER_ERROR) {
        describe_error(resp, resp_len, desc, sizeof desc);
        cli_err(err, err_size, "the core refused the handshake: EDHOC %s", desc);
        *exit_code = CLI_EXIT_REFUSED;
        goto done;
    }
    if (st != CL_OK) {
        cli_err(err, err_size, "the core's credential was refused: %s%s%s", cl_status_str(st),
                s->why[0] ? ": " : "", s->why);
        send_error(s, st);
        *exit_code = CLI_EXIT_REFUSED;
        goto done;
    }
    step(s, "core '%s' verified (issued by the owner root)", s->peer_cn);
    if ((st = cl_edhoc_message_3(&s->edhoc, NULL, 0, m, sizeof m, &m_len)) != CL_OK ||
        (st = cl_edhoc_encode_cid(s->edhoc.c_r, s->edhoc.c_r_len, prefix, sizeof prefix,
                                  &prefix_len)) != CL_OK) {
        cli_err(err, err_size, "cannot write EDHOC message_3: %s", cl_status_str(st));
        goto done;
    }
    if (!edhoc_post(s, prefix, prefix_len, m, m_len, &code, resp, CLI_PAYLOAD_MAX, &resp_len, err,
                    err_size))
        goto done;
    if (code != CL_COAP_CHANGED) {
        if (resp_len > 0 && cl_edhoc_is_error(resp, resp_len)) {
            describe_error(resp, resp_len, desc, sizeof desc);
            cli_err(err, err_size, "the core refused our credential: EDHOC %s", desc);
        } else {
            cl_coap_code_str(code, code_s);
            cli_err(err, err_size, "the core answered %s to EDHOC message_3", code_s);
        }
        *exit_code = CLI_EXIT_REFUSED;
        goto done;
    }
    if (resp_len > 0 && (st = cl_edhoc_process_message_4(&s->edhoc, resp, resp_len)) != CL_OK) {
        cli_err(err, err_size, "EDHOC message_4 refused: %s", cl_status_str(st));
        goto done;
    }
    if ((st = cl_edhoc_oscore_params(&s->edhoc, ms, salt, &params)) != CL_OK ||
        (st = cl_oscore_ctx_init(&s->oscore, s->crypto, &params)) != CL_OK) {
        cli_err(err, err_size, "cannot derive the OSCORE context: %s", cl_status_str(st));
        goto wipe;
    }
    s->have_oscore = true;
    step(s, "handshake done (suite 2, method 0); OSCORE context ready");
    ok = true;
    *exit_code = CLI_EXIT_OK;
wipe:
    cl_wipe(ms, sizeof ms);
    cl_wipe(salt, sizeof salt);
    cl_wipe(&params, sizeof params);
done:
    cl_edhoc_free(&s->edhoc);
    free(resp);
    return ok;
}

bool cli_session_open(cli_session_t *s, const cli_session_cfg_t *cfg, int *exit_code, char *err,
                      size_t err_size)
{
    cl_cbor_enc_t e;

    memset(s, 0, sizeof *s);
    s->net.fd = -1;
    s->cfg = *cfg;
    s->crypto = cfg->crypto;
    *exit_code = CLI_EXIT_ERROR;
    if (cfg->root == NULL || cfg->root_len == 0) {
        cli_err(err, err_size, "no owner root certificate to validate the core against");
        return false;
    }
    if (cfg->cert != NULL) {
        /* ID_CRED_I = {33: bstr DER}, CRED_I = bstr DER */
        cl_cbor_enc_init(&e, s->id_cred, sizeof s->id_cred);
        cl_cbor_enc_map(&e, 1);
        cl_cbor_enc_uint(&e, CL_COSE_HDR_X5CHAIN);
        cl_cbor_enc_bstr(&e, cfg->cert, cfg->cert_len);
        if (cl_cbor_enc_finish(&e, &s->id_cred_len) != CL_OK)
            goto too_big;
        cl_cbor_enc_init(&e, s->cred, sizeof s->cred);
        cl_cbor_enc_bstr(&e, cfg->cert, cfg->cert_len);
        if (cl_cbor_enc_finish(&e, &s->cred_len) != CL_OK)
            goto too_big;
    } else {
        /* ID_CRED_I = {14: CCS}, CRED_I = the CCS */
        if (cfg->kccs_pub == NULL ||
            !cli_ccs_encode(cfg->kccs_pub, cfg->kccs_name != NULL ? cfg->kccs_name : "",
                            s->cred, sizeof s->cred, &s->cred_len))
            goto too_big;
        cl_cbor_enc_init(&e, s->id_cred, sizeof s->id_cred);
        cl_cbor_enc_map(&e, 1);
        cl_cbor_enc_uint(&e, COSE_HDR_KCCS);
        cl_cbor_enc_raw(&e, s->cred, s->cred_len);
        if (cl_cbor_enc_finish(&e, &s->id_cred_len) != CL_OK)
            goto too_big;
    }
    s->auth = (cl_edhoc_auth_t){.id_cred = s->id_cred,
                                .id_cred_len = s->id_cred_len,
                                .cred = s->cred,
                                .cred_len = s->cred_len,
                                .key = cfg->key,
                                .type = CL_KEY_P256,
                                .static_dh = false};
    s->suites[0] = 2;
    s->ecfg = (cl_edhoc_config_t){.crypto = s->crypto,
                                  .suites = s->suites,
                                  .n_suites = 1,
                                  .auth = &s->auth,
                                  .n_auth = 1,
                                  .peer_cred = peer_cred,
                                  .peer_cred_arg = s};
    if (cfg->pin_identity != NULL && cfg->pin_identity_len <= CLI_CERT_MAX) {
        memcpy(s->known_id, cfg->pin_identity, cfg->pin_identity_len);
        s->known_id_len = cfg->pin_identity_len;
    }
    if (cfg->pin_ca != NULL && cfg->pin_ca_len <= CLI_CERT_MAX) {
        memcpy(s->known_ca, cfg->pin_ca, cfg->pin_ca_len);
        s->known_ca_len = cfg->pin_ca_len;
    }
    if (!cli_net_open(&s->net, cfg->server, s->crypto, err, err_size))
        return false;
    if ((s->known_id_len == 0 || s->known_ca_len == 0) && !learn_core_certs(s, err, err_size))
        return false;
    return handshake(s, exit_code, err, err_size);
too_big:
    cli_err(err, err_size, "our credential is too large for EDHOC");
    return false;
}

/*
 * The response datagram resp (outer message) verified against oreq: m is
 * the decrypted inner message, in plain (CLI_DGRAM_MAX). *st: the OSCORE
 * result when the verification itself failed (else CL_OK). An answer
 * without OSCORE is remembered in s->unprotected_code.
 */
static bool verify_response(cli_session_t *s, cl_oscore_req_t *oreq, uint8_t *resp,
                            size_t resp_len, uint8_t *plain, cl_coap_msg_t *m, cl_status_t *st,
                            char *err, size_t err_size)
{
    size_t plain_len = 0;

    *st = CL_OK;
    if (cl_coap_parse(m, resp, resp_len) != CL_OK) {
        cli_err(err, err_size, "malformed response");
        return false;
    }
    if (cl_coap_msg_get(m, CL_COAP_OPT_OSCORE) == NULL) {
        char c[5];
        cl_coap_code_str(m->code, c);
        s->unprotected_code = m->code;
        cli_err(err, err_size,
                "the request was refused with an unprotected %s (not trusted: the session may "
                "have ended - the core restarted, the client was revoked, or it timed out)",
                c);
        return false;
    }
    s->unprotected_code = 0;
    if ((*st = cl_oscore_unprotect_response(&s->oscore, oreq, resp, resp_len, plain, CLI_DGRAM_MAX,
                                            &plain_len)) != CL_OK) {
        cli_err(err, err_size, "the response failed OSCORE verification: %s", cl_status_str(*st));
        return false;
    }
    if (cl_coap_parse(m, plain, plain_len) != CL_OK) {
        cli_err(err, err_size, "malformed protected response");
        return false;
    }
    return true;
}

/* Builds and protects r (Block2 num when block != NULL) with a fresh token into prot. */
static bool protect_request(cli_session_t *s, const cli_req_t *r, const cl_coap_block_t *block,
                            uint8_t token[CLI_TOKEN_LEN], uint16_t *mid, uint8_t *plain,
                            uint8_t *prot, size_t *prot_len, cl_oscore_req_t *oreq, char *err,
                            size_t err_size)
{
    size_t plain_len = 0;
    cl_status_t st;

    if (!s->have_oscore) {
        cli_err(err, err_size, "no session");
        return false;
    }
    if (!cli_net_new_token(&s->net, token, mid) ||
        !cli_net_build(&s->net, r, *mid, token, block != NULL, block != NULL ? block->num : 0, 6,
                       plain, CLI_DGRAM_MAX, &plain_len)) {
        cli_err(err, err_size, "cannot build the request for %s", r->path);
        return false;
    }
    if ((st = cl_oscore_protect_request(&s->oscore, plain, plain_len, prot, CLI_DGRAM_MAX,
                                        prot_len, oreq)) != CL_OK) {
        cli_err(err, err_size, "cannot protect the request: %s", cl_status_str(st));
        return false;
    }
    return true;
}

/* The four datagram buffers of one exchange. */
typedef struct xbufs {
    uint8_t *plain, *prot, *resp, *inner;
} xbufs_t;

static bool xbufs_get(xbufs_t *b, char *err, size_t err_size)
{
    b->plain = malloc(CLI_DGRAM_MAX);
    b->prot = malloc(CLI_DGRAM_MAX);
    b->resp = malloc(CLI_DGRAM_MAX + 1);
    b->inner = malloc(CLI_DGRAM_MAX);
    if (b->plain != NULL && b->prot != NULL && b->resp != NULL && b->inner != NULL)
        return true;
    cli_err(err, err_size, "out of memory");
    return false;
}

static void xbufs_free(xbufs_t *b)
{
    if (b->plain != NULL)
        cl_wipe(b->plain, CLI_DGRAM_MAX);
    if (b->inner != NULL)
        cl_wipe(b->inner, CLI_DGRAM_MAX);
    free(b->plain);
    free(b->prot);
    free(b->resp);
    free(b->inner);
}

/* The inner response's code and payload into *code / out. */
static bool take_payload(const cl_coap_msg_t *m, uint8_t *code, uint8_t *out, size_t out_size,
                         size_t *out_len, char *err, size_t err_size)
{
    if (m->payload_len > out_size) {
        cli_err(err, err_size, "the protected response is too large (%zu bytes)", m->payload_len);
        return false;
    }
    *code = m->code;
    if (m->payload_len > 0)
        memcpy(out, m->payload, m->payload_len);
    *out_len = m->payload_len;
    return true;
}

/*
 * One protected exchange. With block != NULL the inner request carries Block2
 * (block->num, szx 6) and *block receives the response's Block2 (more = false
 * when it has none).
 */
static bool session_request(cli_session_t *s, const cli_req_t *r, cl_coap_block_t *block,
                            uint8_t *code, uint8_t *out, size_t out_size, size_t *out_len,
                            char *err, size_t err_size)
{
    uint8_t token[CLI_TOKEN_LEN];
    size_t prot_len, resp_len;
    uint16_t mid;
    cl_oscore_req_t oreq;
    cl_coap_msg_t m;
    cl_status_t st;
    xbufs_t b;
    bool ok = false;

    if (!xbufs_get(&b, err, err_size) ||
        !protect_request(s, r, block, token, &mid, b.plain, b.prot, &prot_len, &oreq, err,
                         err_size) ||
        !cli_net_exchange(&s->net, b.prot, prot_len, mid, token, b.resp, CLI_DGRAM_MAX + 1,
                          &resp_len, err, err_size) ||
        !verify_response(s, &oreq, b.resp, resp_len, b.inner, &m, &st, err, err_size) ||
        !take_payload(&m, code, out, out_size, out_len, err, err_size))
        goto done;
    if (r->block1 != NULL) {
        const cl_coap_option_t *b1 = cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK1);
        cl_coap_block_t got;
        s->last_block1_szx = r->block1->szx;
        if (b1 != NULL && cl_coap_block_decode(b1, &got) == CL_OK && got.num == r->block1->num)
            s->last_block1_szx = got.szx;
    }
    if (block != NULL) {
        const cl_coap_option_t *b2 = cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK2);
        uint32_t want = block->num;
        block->more = false;
        if (b2 != NULL && (cl_coap_block_decode(b2, block) != CL_OK || block->num != want)) {
            cli_err(err, err_size, "the core answered with another block than asked for");
            goto done;
        }
    }
    ok = true;
done:
    xbufs_free(&b);
    return ok;
}

bool cli_session_observe(cli_session_t *s, const cli_req_t *r, cli_observe_t *obs, uint8_t *code,
                         uint8_t *out, size_t out_size, size_t *out_len, char *err,
                         size_t err_size)
{
    size_t prot_len, resp_len;
    uint16_t mid;
    cl_coap_msg_t m;
    cl_status_t st;
    xbufs_t b;
    bool ok = false;

    memset(obs, 0, sizeof *obs);
    if (!xbufs_get(&b, err, err_size) ||
        !protect_request(s, r, NULL, obs->token, &mid, b.plain, b.prot, &prot_len, &obs->oreq,
                         err, err_size) ||
        !cli_net_exchange(&s->net, b.prot, prot_len, mid, obs->token, b.resp, CLI_DGRAM_MAX + 1,
                          &resp_len, err, err_size))
        goto done;
    /* the outer Observe option tells whether the registration was accepted */
    if (cl_coap_parse(&m, b.resp, resp_len) == CL_OK)
        obs->active = cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE) != NULL;
    if (!verify_response(s, &obs->oreq, b.resp, resp_len, b.inner, &m, &st, err, err_size) ||
        !take_payload(&m, code, out, out_size, out_len, err, err_size))
        goto done;
    if (CL_COAP_CLASS(*code) != 2)
        obs->active = false;
    ok = true;
done:
    if (!ok)
        obs->active = false;
    xbufs_free(&b);
    return ok;
}

int cli_session_notification(cli_session_t *s, cli_observe_t *obs, unsigned wait_ms,
                             uint8_t *code, uint8_t *out, size_t out_size, size_t *out_len,
                             char *err, size_t err_size)
{
    struct timespec ts;
    cl_coap_msg_t m;
    cl_status_t st;
    xbufs_t b;
    int rc = CLI_NOTIF_NONE;

    if (!xbufs_get(&b, err, err_size)) {
        xbufs_free(&b);
        return CLI_NOTIF_ERROR;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t start = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    for (;;) {
        size_t len;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t spent = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u - start;
        if (spent >= wait_ms)
            break;
        int k = cli_net_recv(&s->net, b.resp, CLI_DGRAM_MAX + 1, &len, wait_ms - (unsigned)spent,
                             err, err_size);
        if (k < 0) {
            rc = CLI_NOTIF_ERROR;
            break;
        }
        if (k == 0)
            break;
        if (cl_coap_parse(&m, b.resp, len) != CL_OK || m.code == CL_COAP_EMPTY ||
            (m.type != CL_COAP_CON && m.type != CL_COAP_NON))
            continue; /* stray ACKs and RSTs, junk */
        bool ours = obs->active && m.tkl == CLI_TOKEN_LEN &&
                    memcmp(m.token, obs->token, CLI_TOKEN_LEN) == 0;
        if (m.type == CL_COAP_CON)
            cli_net_send_empty(&s->net, ours ? CL_COAP_ACK : CL_COAP_RST, m.mid);
        if (!ours)
            continue;
        if (!verify_response(s, &obs->oreq, b.resp, len, b.inner, &m, &st, err, err_size)) {
            if (st == CL_ERR_REPLAY) {
                if (s->net.verbose)
                    fprintf(stderr, "cloister: repeated or older notification skipped\n");
                continue;
            }
            rc = CLI_NOTIF_BAD;
            break;
        }
        rc = take_payload(&m, code, out, out_size, out_len, err, err_size) ? CLI_NOTIF_OK
                                                                            : CLI_NOTIF_BAD;
        break;
    }
    xbufs_free(&b);
    return rc;
}

/*
 * A body too large for one message of the core (CL_CORE_MAX_MESSAGE) goes
 * block-wise inside OSCORE (inner Block1, RFC 7959 section 2.5): 1024-byte
 * blocks, each a protected request of its own, 2.31 Continue between them;
 * the answer to the last block is the response. A smaller block size in the
 * core's Block1 is followed.
 */
static bool session_request_block1(cli_session_t *s, const cli_req_t *r, uint8_t *code,
                                   uint8_t *out, size_t out_size, size_t *out_len, char *err,
                                   size_t err_size)
{
    size_t off = 0;
    uint8_t szx = 6;

    for (unsigned i = 0; i < 4096; i++) {
        size_t bs = (size_t)1 << (szx + 4), n = r->len - off < bs ? r->len - off : bs;
        cl_coap_block_t blk = {.num = (uint32_t)(off / bs), .more = off + n < r->len, .szx = szx};
        cli_req_t part = *r;
        part.payload = r->payload + off;
        part.len = n;
        part.block1 = &blk;
        if (!session_request(s, &part, NULL, code, out, out_size, out_len, err, err_size))
            return false;
        if (!blk.more)
            return true; /* the answer to the whole body */
        if (*code != CL_COAP_CONTINUE) {
            if (CL_COAP_CLASS(*code) == 2) {
                cli_err(err, err_size,
                        "the core answered block %u of the %zu-byte request with 2.%02u instead "
                        "of 2.31 Continue (it does not take large requests block-wise)",
                        blk.num, r->len, *code & 0x1f);
                return false;
            }
            return true; /* refused: that answer is the response */
        }
        /* the core may ask for smaller blocks (its Block1 szx) */
        uint8_t want = s->last_block1_szx;
        if (want < szx) {
            size_t nbs = (size_t)1 << (want + 4);
            off += nbs; /* it kept the first nbs bytes of this block */
            szx = want;
        } else {
            off += n;
        }
    }
    cli_err(err, err_size, "too many blocks");
    return false;
}

bool cli_session_request(cli_session_t *s, const cli_req_t *r, uint8_t *code, uint8_t *out,
                         size_t out_size, size_t *out_len, char *err, size_t err_size)
{
    if (r->len > CLI_BLOCK1_THRESHOLD && r->block1 == NULL)
        return session_request_block1(s, r, code, out, out_size, out_len, err, err_size);
    return session_request(s, r, NULL, code, out, out_size, out_len, err, err_size);
}

bool cli_session_request_blocks(cli_session_t *s, const cli_req_t *r, uint8_t *code, uint8_t *out,
                                size_t out_size, size_t *out_len, char *err, size_t err_size)
{
    size_t total = 0;
    for (uint32_t num = 0; num < 1024; num++) {
        cl_coap_block_t blk = {.num = num, .more = false, .szx = 6};
        size_t n = 0;
        if (!session_request(s, r, &blk, code, out + total, out_size - total, &n, err, err_size))
            return false;
        total += n;
        if (CL_COAP_CLASS(*code) != 2 || !blk.more) {
            *out_len = total;
            return true;
        }
        if (total >= out_size) {
            cli_err(err, err_size, "the response is larger than %zu bytes", out_size);
            return false;
        }
    }
    cli_err(err, err_size, "too many blocks");
    return false;
}

void cli_session_close(cli_session_t *s)
{
    cl_edhoc_free(&s->edhoc);
    cl_oscore_ctx_free(&s->oscore);
    if (s->peer_key != CL_KEY_NONE && s->crypto != NULL)
        cl_key_destroy(s->crypto, s->peer_key);
    s->peer_key = CL_KEY_NONE;
    s->have_oscore = false;
    cli_net_close(&s->net);
}

int cli_session_call_req(cli_session_t *s, const char *what, const cli_req_t *r, bool blocks,
                         uint8_t *out, size_t out_size, size_t *out_len)
{
    char err[600], core_err[300], c[5];
    uint8_t code;
    bool ok = blocks ? cli_session_request_blocks(s, r, &code, out, out_size, out_len, err,
                                                  sizeof err)
                     : cli_session_request(s, r, &code, out, out_size, out_len, err, sizeof err);

    if (!ok) {
        cli_fail("%s: %s", what, err);
        return CLI_EXIT_ERROR;
    }
    if (CL_COAP_CLASS(code) == 2)
        return CLI_EXIT_OK;
    cl_coap_code_str(code, c);
    cli_core_error(out, *out_len, core_err, sizeof core_err);
    cli_fail("%s refused by the core: %s%s%s", what, c, core_err[0] ? " " : "", core_err);
    return CLI_EXIT_REFUSED;
}

int cli_session_call(cli_session_t *s, const char *what, uint8_t method, const char *path,
                     const uint8_t *payload, size_t len, uint8_t *out, size_t out_size,
                     size_t *out_len)
{
    cli_req_t r = {.code = method,
                   .path = path,
                   .cf = payload != NULL ? 60 : -1,
                   .payload = payload,
                   .len = len};

    return cli_session_call_req(s, what, &r, false, out, out_size, out_len);
}

/* ---------------------------------------------------------- identities */

bool cli_ident_open_key(cli_ident_t *id, const char *keyref, char *err, size_t err_size)
{
    char what[CLI_PATH_MAX + 64];
    cl_key_type_t type;

    if (!keysrc_parse(&id->keysrc, &id->p11, keyref, err, err_size))
        return false;
    if (!provider_open(&id->crypto, id->keysrc.pkcs11, &id->p11, what, sizeof what, err,
                       err_size))
        return false;
    id->have_crypto = true;
    if (!key_load(&id->crypto, &id->keysrc, 0, CL_KEY_P256, &id->key, &type, err, err_size))
        return false;
    if (type != CL_KEY_P256) {
        cli_err(err, err_size, "the key %s is not a P-256 key", keyref);
        return false;
    }
    return true;
}

bool cli_ident_new_key_file(cli_ident_t *id, const char *key_path, char *keyref,
                            size_t keyref_size, bool *made)
{
    char why[CL_KEYSTORE_ERR_SIZE] = "", abs_key[CLI_PATH_MAX], err[800];
    uint8_t pub[CL_PUB_MAX];
    size_t pub_len;
    cl_status_t st = cl_keystore_file_generate(key_path, CL_KEY_P256, pub, sizeof pub, &pub_len,
                                               why, sizeof why);

    if (st != CL_OK) {
        cli_fail("cannot create the key file %s: %s%s%s", key_path, cl_status_str(st),
                 why[0] ? ": " : "", why);
        return false;
    }
    *made = true;
    cli_abspath(key_path, abs_key, sizeof abs_key);
    snprintf(keyref, keyref_size, "%s", abs_key);
    if (!cli_ident_open_key(id, keyref, err, sizeof err)) {
        cli_fail("%s", err);
        return false;
    }
    return true;
}

bool cli_ident_token_key(cli_ident_t *id, const char *uri, char *what, size_t what_size,
                         bool *created)
{
    char err[800];

    if (!keysrc_parse(&id->keysrc, &id->p11, uri, err, sizeof err) ||
        !provider_open(&id->crypto, true, &id->p11, what, what_size, err, sizeof err)) {
        cli_fail("%s", err);
        return false;
    }
    id->have_crypto = true;
    if (!key_generate_in_token(&id->crypto, &id->keysrc, CL_KEY_P256, created, err,
                               sizeof err)) {
        cli_fail("%s", err);
        return false;
    }
    return true;
}

static bool read_cert_in(const char *dir, const char *name, uint8_t *der, size_t *len,
                         bool required, char *err, size_t err_size)
{
    char path[CLI_PATH_MAX];

    *len = 0;
    if (!cli_path(path, sizeof path, dir, name)) {
        cli_err(err, err_size, "path too long");
        return false;
    }
    if (!required && !cli_exists(path))
        return true;
    return cli_cert_read(path, der, CLI_CERT_MAX, len, err, err_size);
}

bool cli_ident_load(cli_ident_t *id, const char *dir, bool need_core, char *err, size_t err_size)
{
    char path[CLI_PATH_MAX];
    const char *keyref, *server;

    memset(id, 0, sizeof *id);
    snprintf(id->dir, sizeof id->dir, "%s", dir);
    if (cli_path(path, sizeof path, dir, "owner.conf") && cli_exists(path)) {
        id->owner = true;
        if (!cli_conf_read(&id->conf, path, err, err_size) ||
            !read_cert_in(dir, "owner.pem", id->cert, &id->cert_len, true, err, err_size))
            return false;
        memcpy(id->root, id->cert, id->cert_len);
        id->root_len = id->cert_len;
        if (cli_path(path, sizeof path, dir, "core.conf") && cli_exists(path)) {
            if (!cli_conf_read(&id->core_conf, path, err, err_size))
                return false;
        } else if (need_core) {
            cli_err(err, err_size,
                    "%s holds no provisioned core (core.conf); run `cloister provision --owner "
                    "%s --server coap://HOST:PORT` first",
                    dir, dir);
            return false;
        }
        if (!read_cert_in(dir, "core-ca.pem", id->ca, &id->ca_len, need_core, err, err_size) ||
            !read_cert_in(dir, "core-identity.pem", id->identity, &id->identity_len, need_core,
                          err, err_size))
            return false;
        server = cli_conf_get(&id->core_conf, "server");
    } else if (cli_path(path, sizeof path, dir, "client.conf") && cli_exists(path)) {
        uint8_t(*chain)[CLI_CERT_MAX] = malloc(2 * CLI_CERT_MAX);
        size_t lens[2], n = 0;
        bool ok;
        if (chain == NULL)
            return false;
        ok = cli_conf_read(&id->conf, path, err, err_size) &&
             read_cert_in(dir, "client.pem", id->cert, &id->cert_len, true, err, err_size) &&
             cli_path(path, sizeof path, dir, "chain.pem") &&
             cli_certs_read(path, chain, lens, 2, &n, err, err_size);
        if (ok && n != 2) {
            cli_err(err, err_size, "%s must hold the core CA and the owner root", path);
            ok = false;
        }
        if (ok) {
            memcpy(id->ca, chain[0], lens[0]);
            id->ca_len = lens[0];
            memcpy(id->root, chain[1], lens[1]);
            id->root_len = lens[1];
        }
        free(chain);
        if (!ok)
            return false;
        server = cli_conf_get(&id->conf, "server");
    } else {
        cli_err(err, err_size,
                "%s is neither an owner directory (owner.conf: `cloister owner init`) nor a "
                "client directory (client.conf: `cloister enroll`)",
                dir);
        return false;
    }
    if (server != NULL)
        snprintf(id->server, sizeof id->server, "%s", server);
    if ((keyref = cli_conf_get(&id->conf, "key")) == NULL) {
        cli_err(err, err_size, "%s/%s has no 'key' entry", dir,
                id->owner ? "owner.conf" : "client.conf");
        return false;
    }
    return cli_ident_open_key(id, keyref, err, err_size);
}

void cli_ident_session_cfg(const cli_ident_t *id, const char *server, cli_session_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->server = server != NULL ? server : id->server;
    cfg->crypto = &id->crypto;
    cfg->key = id->key;
    cfg->cert = id->cert;
    cfg->cert_len = id->cert_len;
    cfg->root = id->root;
    cfg->root_len = id->root_len;
    if (id->ca_len > 0) {
        cfg->pin_ca = id->ca;
        cfg->pin_ca_len = id->ca_len;
    }
    if (id->identity_len > 0) {
        cfg->pin_identity = id->identity;
        cfg->pin_identity_len = id->identity_len;
    }
}

cl_status_t cli_ident_sign(void *arg, const uint8_t *tbs, size_t tbs_len, uint8_t sig[64])
{
    const cli_ident_t *id = arg;
    size_t sig_len = 0;
    cl_status_t st =
        id->crypto.ops->sign(id->crypto.self, id->key, CL_SIG_ES256, tbs, tbs_len, sig, 64, &sig_len);

    if (st == CL_OK && sig_len != 64)
        st = CL_FAIL(CL_ERR_CRYPTO);
    return st;
}

bool cli_random_serial(const cli_ident_t *id, uint64_t *serial)
{
    uint8_t r[8];

    if (cl_random(&id->crypto, r, sizeof r) != CL_OK)
        return false;
    *serial = 0;
    for (size_t i = 0; i < 8; i++)
        *serial = *serial << 8 | r[i];
    *serial &= INT64_MAX;
    if (*serial == 0)
        *serial = 1;
    return true;
}

void cli_ident_free(cli_ident_t *id)
{
    if (id->have_crypto) {
        if (id->key != CL_KEY_NONE)
            cl_key_destroy(&id->crypto, id->key);
        provider_close(&id->crypto, id->keysrc.pkcs11);
    }
    id->have_crypto = false;
    id->key = CL_KEY_NONE;
}

int cli_ident_connect(cli_ident_t *id, const char *server, bool quiet, cli_session_t *s)
{
    cli_session_cfg_t cfg;
    char err[600];
    int rc;

    cli_ident_session_cfg(id, server, &cfg);
    cfg.quiet = quiet;
    if (cfg.server == NULL || cfg.server[0] == '\0') {
        cli_fail("no server known for %s; give --server coap://HOST:PORT", id->dir);
        return CLI_EXIT_ERROR;
    }
    if (!cli_session_open(s, &cfg, &rc, err, sizeof err)) {
        cli_fail("%s", err);
        cli_session_close(s);
        return rc;
    }
    return CLI_EXIT_OK;
}

int cli_ident_open_session(cli_ident_t *id, const char *dir, const char *server, cli_session_t *s)
{
    char err[600];

    if (!cli_ident_load(id, dir, true, err, sizeof err)) {
        cli_fail("%s", err);
        return CLI_EXIT_ERROR;
    }
    return cli_ident_connect(id, server, true, s);
}

void cli_ident_session_free(cli_ident_t *id, cli_session_t *s)
{
    if (s != NULL)
        cli_session_close(s);
    if (id != NULL)
        cli_ident_free(id);
    free(s);
    free(id);
}

int cli_ident_call(const char *dir, const char *server, const char *what, const cli_req_t *r,
                   bool blocks, uint8_t *out, size_t out_size, size_t *out_len)
{
    cli_ident_t *id = calloc(1, sizeof *id);
    cli_session_t *s = calloc(1, sizeof *s);
    int rc = CLI_EXIT_ERROR;

    *out_len = 0;
    if (id != NULL && s != NULL && (rc = cli_ident_open_session(id, dir, server, s)) == CLI_EXIT_OK)
        rc = cli_session_call_req(s, what, r, blocks, out, out_size, out_len);
    cli_ident_session_free(id, s);
    return rc;
}

int cli_opts_call(cli_opt_t *opts, size_t n_opts, const char *what, const cli_req_t *r,
                  bool blocks, uint8_t *out, size_t out_size, size_t *out_len)
{
    const char *dir = cli_dir_opt(opts, n_opts);

    *out_len = 0;
    if (dir == NULL) {
        cli_fail("--owner DIR (the owner's directory) or --dir DIR (a client directory) is "
                 "required: who to act as");
        return CLI_EXIT_ERROR;
    }
    return cli_ident_call(dir, cli_val(opts, n_opts, "--server"), what, r, blocks, out, out_size,
                          out_len);
}

bool cli_opts_list(cli_sub_ctx_t *x, const char *path, cl_cbor_dec_t *d, size_t *n, int *rc)
{
    char what[160];
    cli_req_t r = {.code = CL_COAP_GET, .path = path, .cf = -1};

    snprintf(what, sizeof what, "GET %s", path);
    *rc = cli_opts_call(x->opts, x->n_opts, what, &r, true, x->out, CLI_PAYLOAD_MAX, &x->out_len);
    if (*rc != CLI_EXIT_OK)
        return false;
    if (cli_has(x->opts, x->n_opts, "--json")) {
        *rc = cli_print_json(x->out, x->out_len);
        return false;
    }
    if (!cli_list_open(d, x->out, x->out_len, n)) {
        *rc = CLI_EXIT_ERROR;
        return false;
    }
    return true;
}
