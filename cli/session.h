/*
 * cli/session.h - an EDHOC + OSCORE session with the trusted core, as the
 * `cloister` CLI (and tests, and later devices) use it:
 *
 *   cli_session_open     connect (CoAP/UDP), EDHOC as initiator (suite 2,
 *                        method 0, RFC 9528 Appendix A.2 framing) with our
 *                        credential - x5chain of our certificate, or a kccs
 *                        (raw P-256 key in a CCS) when enrolling - and the
 *                        core validated: ID_CRED_R = x5chain [identity, CA]
 *                        or x5t of its identity certificate (known from the
 *                        owner directory or from the core's public evidence),
 *                        identity and core CA both issued by the owner root
 *                        (cl_pki_verify_issued), optionally pinned CA and
 *                        identity certificates; then the OSCORE context of
 *                        Appendix A.1 (cl_edhoc_oscore_params)
 *   cli_session_request  method + path (+ query, CBOR payload) protected
 *                        with OSCORE, CON with retransmission; the verified
 *                        response's code and payload
 *   cli_session_close
 *
 * cli_ident_* loads "who we are" from an owner directory (owner.conf,
 * owner.pem, core-ca.pem, core-identity.pem, core.conf) or a client
 * directory (client.conf, client.pem, chain.pem), so each command just
 * says `--owner DIR` or `--dir DIR`.
 */
#ifndef CLOISTER_CLI_SESSION_H
#define CLOISTER_CLI_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "cloister/edhoc.h"
#include "cloister/oscore.h"
#include "keysrc.h"
#include "net.h"

#define CLI_CCS_MAX 256
#define CLI_NAME_MAX 64

/* Our credential and what we trust, as given to cli_session_open. */
typedef struct cli_session_cfg {
    const char *server;        /* coap://HOST:PORT */
    const cl_crypto_t *crypto; /* provider holding key */
    cl_key_t key;              /* our P-256 signature key */
    const uint8_t *cert;       /* our certificate (sent as x5chain); NULL: kccs */
    size_t cert_len;
    const uint8_t *kccs_pub;   /* with cert NULL: our public key (65 bytes) ... */
    const char *kccs_name;     /* ... and the CCS subject (sub, label 2) */
    const uint8_t *root;       /* the owner's root certificate (required) */
    size_t root_len;
    const uint8_t *pin_ca;     /* optional: the core CA certificate must be this one */
    size_t pin_ca_len;
    const uint8_t *pin_identity; /* optional: the core identity certificate must be this */
    size_t pin_identity_len;
    bool quiet;                /* no "edhoc: ..." lines on stdout */
} cli_session_cfg_t;

typedef struct cli_session {
    cli_net_t net;
    const cl_crypto_t *crypto;
    cli_session_cfg_t cfg;
    int suites[1];
    uint8_t id_cred[CLI_CERT_MAX + 16];
    size_t id_cred_len;
    uint8_t cred[CLI_CERT_MAX + 8];
    size_t cred_len;
    cl_edhoc_auth_t auth;
    cl_edhoc_config_t ecfg;
    cl_edhoc_t edhoc;
    cl_oscore_ctx_t oscore;
    bool have_oscore;
    /* certificates the core may name by x5t (pinned, or from its evidence) */
    uint8_t known_id[CLI_CERT_MAX];
    size_t known_id_len;
    uint8_t known_ca[CLI_CERT_MAX];
    size_t known_ca_len;
    /* the core's credential, filled in during the handshake */
    uint8_t peer_identity[CLI_CERT_MAX];
    size_t peer_identity_len;
    uint8_t peer_ca[CLI_CERT_MAX];
    size_t peer_ca_len;
    uint8_t peer_cred[CLI_CERT_MAX + 8];
    size_t peer_cred_len;
    cl_key_t peer_key;
    char peer_cn[CLI_NAME_MAX];
    char why[256]; /* why the core's credential was refused */
    /* the code of the last answer that came back without OSCORE (0: it was protected);
     * over http:// a 5.04 of the host means "nothing yet, poll again" */
    uint8_t unprotected_code;
    uint8_t last_block1_szx; /* the block size the core acknowledged (Block1 in 2.31) */
} cli_session_t;

/* Request bodies larger than this go block-wise (inner Block1): one message of
 * the core is at most CL_CORE_MAX_MESSAGE (2048) bytes with its headers. */
#define CLI_BLOCK1_THRESHOLD 1536

/* An Observe registration (RFC 7641) over OSCORE (RFC 8613 section 4.1.3.5). */
typedef struct cli_observe {
    uint8_t token[CLI_TOKEN_LEN];
    cl_oscore_req_t oreq; /* what every notification is verified against (order included) */
    bool active;          /* the server accepted it: its response carried Observe */
} cli_observe_t;

/* cli_session_notification results */
#define CLI_NOTIF_OK 1      /* a verified notification */
#define CLI_NOTIF_NONE 0    /* nothing (new) came in time */
#define CLI_NOTIF_BAD (-1)  /* one failed verification or came unprotected: register again */
#define CLI_NOTIF_ERROR (-2) /* the socket failed */

/*
 * Connects and runs the handshake. On failure *exit_code is
 * CLI_EXIT_REFUSED (handshake refused by either side) or CLI_EXIT_ERROR.
 */
bool cli_session_open(cli_session_t *s, const cli_session_cfg_t *cfg, int *exit_code, char *err,
                      size_t err_size);
/* One OSCORE-protected request (CBOR payload: r->cf = 60); a body larger than
 * CLI_BLOCK1_THRESHOLD is sent in inner Block1 pieces. */
bool cli_session_request(cli_session_t *s, const cli_req_t *r, uint8_t *code, uint8_t *out,
                         size_t out_size, size_t *out_len, char *err, size_t err_size);
/* The same for a response served block-wise (inner Block2): all blocks into out. */
bool cli_session_request_blocks(cli_session_t *s, const cli_req_t *r, uint8_t *code, uint8_t *out,
                                size_t out_size, size_t *out_len, char *err, size_t err_size);
void cli_session_close(cli_session_t *s);

/*
 * Sends the Observe registration r (r->observe set; CoAP only) and waits
 * for its first response like cli_session_request; *obs then holds what the
 * notifications are checked against.
 */
bool cli_session_observe(cli_session_t *s, const cli_req_t *r, cli_observe_t *obs, uint8_t *code,
                         uint8_t *out, size_t out_size, size_t *out_len, char *err,
                         size_t err_size);
/*
 * Waits up to wait_ms for the next notification of obs. A CON is
 * acknowledged at once with an Empty ACK echoing its message id (that only
 * says the datagram arrived); a CON for a token we do not observe (a stale
 * observation) gets a RST. The notification is then verified with OSCORE,
 * in order (cl_oscore_unprotect_response checks obs->oreq.notif_num): a
 * repeated or older one is skipped. Returns CLI_NOTIF_* (err set for BAD
 * and ERROR); messages that are not notifications are ignored.
 */
int cli_session_notification(cli_session_t *s, cli_observe_t *obs, unsigned wait_ms,
                             uint8_t *code, uint8_t *out, size_t out_size, size_t *out_len,
                             char *err, size_t err_size);

/* Encodes the CCS {2: name, 8: {1: COSE_Key EC2 P-256}} (kccs) into out. */
bool cli_ccs_encode(const uint8_t pub[65], const char *name, uint8_t *out, size_t out_size,
                    size_t *out_len);

/* ---------------------------------------------------------- identities */

typedef struct cli_ident {
    char dir[CLI_PATH_MAX];
    bool owner; /* owner directory (else client directory) */
    cli_conf_t conf;      /* owner.conf / client.conf */
    cli_conf_t core_conf; /* owner: core.conf (server, mrenclave) */
    pkcs11_opts_t p11;
    keysrc_t keysrc;
    cl_crypto_t crypto;
    bool have_crypto;
    cl_key_t key;
    uint8_t cert[CLI_CERT_MAX]; /* our certificate (owner: the root) */
    size_t cert_len;
    uint8_t root[CLI_CERT_MAX]; /* the owner root */
    size_t root_len;
    uint8_t ca[CLI_CERT_MAX]; /* core CA (0 = not known yet) */
    size_t ca_len;
    uint8_t identity[CLI_CERT_MAX]; /* core identity (owner only; 0 = not known) */
    size_t identity_len;
    char server[300];
} cli_ident_t;

/*
 * Opens the crypto provider for a key reference (a file path or a pkcs11:
 * URI) and loads the key for signing. ident->keysrc / p11 / crypto / key.
 */
bool cli_ident_open_key(cli_ident_t *id, const char *keyref, char *err, size_t err_size);
/*
 * Creates a new P-256 key file at key_path (cl_keystore_file_generate; *made
 * once it exists) and opens it as the identity's key; keyref receives the
 * file's absolute path. Prints failures.
 */
bool cli_ident_new_key_file(cli_ident_t *id, const char *key_path, char *keyref,
                            size_t keyref_size, bool *made);
/*
 * Opens the PKCS#11 token of a pkcs11: URI (what: a description of the
 * module) and generates the P-256 key object unless the token holds it
 * already (*created tells which); the key is not loaded yet. Prints failures.
 */
bool cli_ident_token_key(cli_ident_t *id, const char *uri, char *what, size_t what_size,
                         bool *created);
/*
 * Loads an owner directory (owner.conf exists) or a client directory
 * (client.conf). need_core: an owner directory must be provisioned
 * (core-ca.pem, core-identity.pem, core.conf).
 */
bool cli_ident_load(cli_ident_t *id, const char *dir, bool need_core, char *err,
                    size_t err_size);
/* A session config for this identity (server from the directory unless server != NULL). */
void cli_ident_session_cfg(const cli_ident_t *id, const char *server, cli_session_cfg_t *cfg);
void cli_ident_free(cli_ident_t *id);

/* cl_pki_sign_fn with the identity's key (arg: const cli_ident_t *): ES256 r || s. */
cl_status_t cli_ident_sign(void *arg, const uint8_t *tbs, size_t tbs_len, uint8_t sig[64]);
/* A random positive 63-bit certificate serial. */
bool cli_random_serial(const cli_ident_t *id, uint64_t *serial);

/* Opens a session as this identity, printing failures; returns an exit code. */
int cli_ident_connect(cli_ident_t *id, const char *server, bool quiet, cli_session_t *s);
/*
 * Loads the provisioned identity in DIR (cli_ident_load, need_core) and opens
 * a quiet session as it (cli_ident_connect), printing failures; returns an
 * exit code.
 */
int cli_ident_open_session(cli_ident_t *id, const char *dir, const char *server, cli_session_t *s);
/* Closes s, frees id, then frees both (calloc'ed; either may be NULL). */
void cli_ident_session_free(cli_ident_t *id, cli_session_t *s);

/*
 * A request on an open session; prints "<what> refused by the core: 4.03
 * forbidden: ..." for a non-2.xx answer. Returns CLI_EXIT_OK (2.xx),
 * CLI_EXIT_REFUSED (4.xx/5.xx) or CLI_EXIT_ERROR.
 */
int cli_session_call(cli_session_t *s, const char *what, uint8_t method, const char *path,
                     const uint8_t *payload, size_t len, uint8_t *out, size_t out_size,
                     size_t *out_len);
/* The same for a prepared request; blocks: cli_session_request_blocks. */
int cli_session_call_req(cli_session_t *s, const char *what, const cli_req_t *r, bool blocks,
                         uint8_t *out, size_t out_size, size_t *out_len);
/*
 * One request on a fresh session of the identity in DIR (cli_ident_open_session
 * then cli_session_call_req), closed again; prints failures. A refusal leaves
 * the core's error map in out (see cli_core_error).
 */
int cli_ident_call(const char *dir, const char *server, const char *what, const cli_req_t *r,
                   bool blocks, uint8_t *out, size_t out_size, size_t *out_len);
/*
 * GET path (block-wise) as the identity of x's options, for a list answer:
 * with --json it is printed and false returned (*rc the exit code), as on a
 * failure; else true with d at the array's items and *n their count.
 */
bool cli_opts_list(cli_sub_ctx_t *x, const char *path, cl_cbor_dec_t *d, size_t *n, int *rc);
/* cli_ident_call as the identity of the options --dir / --owner, --server. */
int cli_opts_call(cli_opt_t *opts, size_t n_opts, const char *what, const cli_req_t *r,
                  bool blocks, uint8_t *out, size_t out_size, size_t *out_len);

#endif
