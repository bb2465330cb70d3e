/*
 * cli/cmd_attest.c - `cloister measure`, `cloister verify` and
 * `cloister provision`: what a core build measures to, whether running
 * evidence is acceptable, and the owner's provisioning of a fresh core
 * (DESIGN.md "PKI and the owner" steps 2 and 3, docs/core-protocol.md):
 *
 *   evidence(nonce1) verified -> POST /pki/owner {owner_cert} (if fresh)
 *   -> evidence(nonce2) verified and its owner == SHA-256(our cert)
 *   -> core CA (from ca_pub) and identity (from identity_pub) certificates
 *      signed with the owner key -> POST /pki/provision
 *   -> DIR/core-ca.pem, DIR/core-identity.pem, DIR/core.conf
 *   -> EDHOC as the owner, GET /whoami says "owner".
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/tee_sim.h"
#include "evidence.h"
#include "net.h"
#include "pki.h"
#include "session.h"

#define EVIDENCE_MAX 32768

const char *cli_default_image(void)
{
#ifdef CL_CORE_IMAGE_DEFAULT
    return CL_CORE_IMAGE_DEFAULT;
#else
    return NULL;
#endif
}

/* ------------------------------------------------------------------ measure */

int cli_cmd_measure(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--image", true, false, {0}, 0}, {"--json", false, false, {0}, 0}};
    const char *pos[1];
    size_t n_pos;
    char err[256], hex[65], hex2[65];
    uint8_t mr[32];
    cl_sim_identity_t id;
    cl_status_t st;

    switch (cli_parse(argc, argv, 2, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister measure [--image PATH] [--json]\n"
               "Prints the MRENCLAVE of a trusted-core image (as the loader measures it) and\n"
               "the identity in its signature file (PATH.sig): MRSIGNER, ISVPRODID, ISVSVN,\n"
               "DEBUG. Give the MRENCLAVE to `cloister verify/provision --expect-mrenclave`.\n"
               "  --image PATH   the core image (default: %s)\n"
               "  --json         one JSON object\n",
               cli_default_image() != NULL ? cli_default_image() : "none built; required");
        return CLI_EXIT_OK;
    default: cli_fail("%s", err); return CLI_EXIT_ERROR;
    }
    const char *image = cli_val(opts, N_OPTS(opts), "--image");
    bool json = cli_has(opts, N_OPTS(opts), "--json");
    if (image == NULL)
        image = cli_default_image();
    if (image == NULL) {
        cli_fail("no core image built into this cloister; give --image PATH");
        return CLI_EXIT_ERROR;
    }
    if ((st = cl_sim_measure(image, mr)) != CL_OK) {
        cli_fail("cannot measure %s: %s (is it a core image, a shared object?)", image,
                 cl_status_str(st));
        return CLI_EXIT_ERROR;
    }
    cli_hex(hex, sizeof hex, mr, 32);
    st = cl_sim_read_sigstruct(image, &id);
    if (json) {
        printf("{\"image\": ");
        cli_json_str(stdout, image, strlen(image));
        printf(", \"mrenclave\": \"%s\"", hex);
        if (st == CL_OK) {
            cli_hex(hex2, sizeof hex2, id.mr_signer, 32);
            printf(", \"mrsigner\": \"%s\", \"isvprodid\": %u, \"isvsvn\": %u, \"debug\": %s", hex2,
                   id.isv_prod_id, id.isv_svn, (id.attr_flags & 0x2u) ? "true" : "false");
        } else {
            printf(", \"signature_error\": \"%s\"", cl_status_str(st));
        }
        printf("}\n");
    } else {
        printf("image      %s\nmrenclave  %s\n", image, hex);
        if (st == CL_OK) {
            cli_hex(hex2, sizeof hex2, id.mr_signer, 32);
            printf("mrsigner   %s\nisvprodid  %u\nisvsvn     %u\ndebug      %s\n", hex2,
                   id.isv_prod_id, id.isv_svn, (id.attr_flags & 0x2u) ? "yes" : "no");
        }
    }
    if (st != CL_OK) {
        cli_fail("%s.sig: no valid signature file (%s); MRSIGNER unknown - the loader would "
                 "refuse this image",
                 image, cl_status_str(st));
        return CLI_EXIT_REFUSED;
    }
    return CLI_EXIT_OK;
}

/* ------------------------------------------------------------------ verify */

static bool owner_hash(const char *dir, uint8_t out[32])
{
    char path[CLI_PATH_MAX], err[300];
    uint8_t der[CLI_CERT_MAX];
    size_t len;

    if (!cli_path(path, sizeof path, dir, "owner.pem") ||
        !cli_cert_read(path, der, sizeof der, &len, err, sizeof err)) {
        cli_fail("--owner %s: %s", dir, err);
        return false;
    }
    cli_sha256(der, len, out);
    return true;
}

static void json_verdict(const cli_appraisal_t *a, const cl_attest_core_evidence_t *ev,
                         const uint8_t *nonce, size_t nonce_len)
{
    char hex[65], *ear = malloc(8192);
    size_t ear_len;

    printf("{\"accepted\": %s, \"verdict\": \"%s\", \"result\": \"%s\", \"text\": ",
           a->accepted ? "true" : "false",
           !a->accepted ? "refused" : a->result == CL_ATTEST_OK_SIMULATED ? "simulated" : "ok",
           cl_attest_result_str(a->result));
    cli_json_str(stdout, cl_attest_result_text(a->result), strlen(cl_attest_result_text(a->result)));
    printf(", \"simulated\": %s, \"backend\": ", a->simulated ? "true" : "false");
    cli_json_str(stdout, ev->backend, ev->backend_len);
    printf(", \"state\": ");
    cli_json_str(stdout, ev->state, ev->state_len);
    cli_hex(hex, sizeof hex, ev->owner, 32);
    printf(", \"owner\": \"%s\", \"nonce_ok\": %s", hex, a->nonce_ok ? "true" : "false");
    if (a->owner_checked)
        printf(", \"owner_ok\": %s", a->owner_ok ? "true" : "false");
    if (a->have_claims) {
        cli_hex(hex, sizeof hex, a->claims.body.mr_enclave, 32);
        printf(", \"mrenclave\": \"%s\"", hex);
        cli_hex(hex, sizeof hex, a->claims.body.mr_signer, 32);
        printf(", \"mrsigner\": \"%s\", \"isvprodid\": %u, \"isvsvn\": %u, \"debug\": %s", hex,
               a->claims.body.isv_prod_id, a->claims.body.isv_svn,
               a->claims.is_debug ? "true" : "false");
    }
    if (ear != NULL &&
        cl_attest_result_json(a->result, a->have_claims ? &a->claims : NULL, nonce, nonce_len,
                              (int64_t)time(NULL), ear, 8192, &ear_len) == CL_OK)
        printf(", \"ear\": %s", ear);
    printf("}\n");
    free(ear);
}

int cli_cmd_verify(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--evidence", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0},
                        {"--nonce", true, false, {0}, 0},
                        {"--owner", true, false, {0}, 0},
                        {"--save", true, false, {0}, 0},
                        {"--json", false, false, {0}, 0},
                        CLI_POLICY_OPTS};
    const char *pos[1];
    size_t n_pos, ev_len = 0, nonce_len = 16;
    char err[600], what[300] = "", verdict[300];
    uint8_t *buf = malloc(EVIDENCE_MAX), nonce[CL_ATTEST_NONCE_MAX], own[32];
    cl_attest_policy_t policy;
    cl_attest_core_evidence_t ev;
    cli_appraisal_t a;
    int rc = CLI_EXIT_ERROR;

    if (buf == NULL)
        return CLI_EXIT_ERROR;
    switch (cli_parse(argc, argv, 2, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister verify (--server coap://HOST:PORT | --evidence FILE) [options]\n"
               "Fetches the core's evidence for a fresh random nonce (GET /attestation) or reads\n"
               "it from a file, and appraises it: quote signature chain, enclave identity,\n"
               "debug off, REPORTDATA binding of the core's keys, owner and nonce.\n"
               "Exit 0 only when the policy accepts it; simulated evidence needs\n"
               "--allow-simulated and is reported as \"SIMULATED - NO SECURITY\".\n"
               "  --server URI            the cloisterd CoAP endpoint\n"
               "  --evidence FILE         evidence map (CBOR) saved earlier\n"
               "  --nonce HEX             the nonce the evidence must echo (with --evidence:\n"
               "                          the one used to fetch it; with --server: use this\n"
               "                          instead of a fresh one)\n"
               "  --owner DIR             also require the core to belong to this owner\n"
               "  --save FILE             with --server: also write the evidence map there\n"
               "  --json                  one JSON object (with an EAR attestation result)\n" CLI_POLICY_HELP);
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *server = cli_val(opts, N_OPTS(opts), "--server");
    const char *file = cli_val(opts, N_OPTS(opts), "--evidence");
    const char *nonce_hex = cli_val(opts, N_OPTS(opts), "--nonce");
    const char *owner_dir = cli_val(opts, N_OPTS(opts), "--owner");
    bool json = cli_has(opts, N_OPTS(opts), "--json");
    if ((server == NULL) == (file == NULL)) {
        cli_fail("give exactly one of --server coap://HOST:PORT or --evidence FILE");
        goto done;
    }
    if (nonce_hex != NULL && (!cli_hex_decode(nonce_hex, nonce, sizeof nonce, &nonce_len) ||
                              nonce_len < CL_ATTEST_NONCE_MIN)) {
        cli_fail("--nonce: %d..%d bytes in hex", CL_ATTEST_NONCE_MIN, CL_ATTEST_NONCE_MAX);
        goto done;
    }
    if (!cli_policy_from_opts(opts, N_OPTS(opts), &policy, what, sizeof what))
        goto done;
    if (owner_dir != NULL && !owner_hash(owner_dir, own))
        goto done;
    if (server != NULL) {
        if (!cli_fetch_evidence(server, nonce, nonce_len, nonce_hex == NULL, buf, EVIDENCE_MAX,
                                &ev_len, err, sizeof err)) {
            cli_fail("%s", err);
            goto done;
        }
        const char *save = cli_val(opts, N_OPTS(opts), "--save");
        if (save != NULL && !cli_write_file(save, buf, ev_len, 0644, false, err, sizeof err)) {
            cli_fail("%s", err);
            goto done;
        }
        if (save != NULL && !json) {
            char nh[2 * CL_ATTEST_NONCE_MAX + 1];
            cli_hex(nh, sizeof nh, nonce, nonce_len);
            printf("evidence saved to %s (nonce %s)\n", save, nh);
        }
    } else if (!cli_read_file(file, buf, EVIDENCE_MAX, &ev_len, err, sizeof err)) {
        cli_fail("%s", err);
        goto done;
    }
    if (!cli_evidence_decode(buf, ev_len, &ev, err, sizeof err)) {
        cli_fail("%s", err);
        rc = CLI_EXIT_REFUSED;
        goto done;
    }
    if (file != NULL && nonce_hex == NULL) {
        memcpy(nonce, ev.nonce, ev.nonce_len);
        nonce_len = ev.nonce_len;
        if (!json)
            printf("note: no --nonce given; the nonce is taken from the evidence, so its "
                   "freshness is NOT established\n");
    }
    if (!json)
        printf("policy: %s%s\n", what, policy.allow_simulated ? ", simulated TEE allowed" : "");
    cli_appraise(&ev, nonce, nonce_len, &policy, owner_dir != NULL ? own : NULL, json, &a);
    if (json)
        json_verdict(&a, &ev, nonce, nonce_len);
    else
        printf("result: %s\n", cli_verdict(&a, verdict, sizeof verdict));
    rc = a.accepted ? CLI_EXIT_OK : CLI_EXIT_REFUSED;
done:
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------ provision */

/* Plain POST of a CBOR payload; the answer into out. Prints failures. */
static int post_plain(const char *server, const char *path, const uint8_t *payload, size_t len,
                      uint8_t *code, uint8_t *out, size_t out_size, size_t *out_len,
                      const cl_crypto_t *c)
{
    cli_net_t n;
    char err[400];
    cli_req_t r = {.code = CL_COAP_POST, .path = path, .cf = 60, .payload = payload, .len = len};

    if (!cli_net_open(&n, server, c, err, sizeof err) ||
        !cli_net_request(&n, &r, code, out, out_size, out_len, err, sizeof err)) {
        cli_net_close(&n);
        cli_fail("POST %s: %s", path, err);
        return CLI_EXIT_ERROR;
    }
    cli_net_close(&n);
    return CLI_EXIT_OK;
}

/* One round: fresh evidence, printed and appraised. */
static int attest_round(const char *server, const cl_attest_policy_t *policy,
                        const uint8_t *expected_owner, uint8_t *buf, cl_attest_core_evidence_t *ev,
                        cli_appraisal_t *a)
{
    uint8_t nonce[16];
    size_t len;
    char err[600], verdict[300];

    if (!cli_fetch_evidence(server, nonce, sizeof nonce, true, buf, EVIDENCE_MAX, &len, err,
                            sizeof err)) {
        cli_fail("%s", err);
        return CLI_EXIT_ERROR;
    }
    if (!cli_evidence_decode(buf, len, ev, err, sizeof err)) {
        cli_fail("%s", err);
        return CLI_EXIT_REFUSED;
    }
    cli_appraise(ev, nonce, sizeof nonce, policy, expected_owner, false, a);
    printf("  %-12s %s\n", "result", cli_verdict(a, verdict, sizeof verdict));
    if (a->result != CL_ATTEST_OK && a->result != CL_ATTEST_OK_SIMULATED) {
        cli_fail("the core's evidence is not acceptable; not provisioning it");
        return CLI_EXIT_REFUSED;
    }
    return CLI_EXIT_OK;
}

static bool state_is(const cl_attest_core_evidence_t *ev, const char *s)
{
    return ev->state_len == strlen(s) && memcmp(ev->state, s, ev->state_len) == 0;
}

static int someone_else(const cl_attest_core_evidence_t *ev)
{
    char hex[65];

    cli_hex(hex, sizeof hex, ev->owner, 32);
    cli_fail("core claimed by someone else (owner hash %s); it is not yours to provision - "
             "start a fresh core, and find out who claimed this one",
             hex);
    return CLI_EXIT_REFUSED;
}

/* Builds one certificate for the core signed by the owner. */
static bool core_cert(cli_ident_t *owner, cl_pki_kind_t kind, const char *cn, const uint8_t *pub,
                      int64_t days, uint8_t *out, size_t *out_len)
{
    int64_t now = (int64_t)time(NULL);
    cl_pki_cert_req_t req = {.kind = kind,
                             .cn = cn,
                             .ou = NULL,
                             .pub = pub,
                             .not_before = now - 300,
                             .not_after = now + days * 86400,
                             .issuer = owner->cert,
                             .issuer_len = owner->cert_len};
    cl_status_t st;

    if (!cli_random_serial(owner, &req.serial))
        return false;
    st = cl_pki_make_cert(&req, cli_ident_sign, owner, out, CLI_CERT_MAX, out_len);
    if (st != CL_OK) {
        cli_fail("cannot sign the core's %s certificate with the owner key: %s", cn,
                 cl_status_str(st));
        return false;
    }
    return true;
}

static int save_core(cli_ident_t *owner, const char *server, const uint8_t *ca, size_t ca_len,
                     const uint8_t *identity, size_t identity_len, const cli_appraisal_t *a)
{
    char path[CLI_PATH_MAX], err[400], hex[65];
    cli_conf_t conf;
    const uint8_t *der[1];
    size_t lens[1];

    memset(&conf, 0, sizeof conf);
    cli_hex(hex, sizeof hex, a->claims.body.mr_enclave, 32);
    if (!cli_conf_set(&conf, "server", server) || !cli_conf_set(&conf, "mrenclave", hex) ||
        !cli_conf_set(&conf, "simulated", a->simulated ? "yes" : "no"))
        return CLI_EXIT_ERROR;
    der[0] = ca;
    lens[0] = ca_len;
    if (!cli_path(path, sizeof path, owner->dir, "core-ca.pem") ||
        !cli_certs_write(path, der, lens, 1, false, err, sizeof err))
        goto fail;
    der[0] = identity;
    lens[0] = identity_len;
    if (!cli_path(path, sizeof path, owner->dir, "core-identity.pem") ||
        !cli_certs_write(path, der, lens, 1, false, err, sizeof err))
        goto fail;
    if (!cli_path(path, sizeof path, owner->dir, "core.conf") ||
        !cli_conf_write(&conf, path, "the core this owner provisioned (cloister provision)", false,
                        err, sizeof err))
        goto fail;
    memcpy(owner->ca, ca, ca_len);
    owner->ca_len = ca_len;
    memcpy(owner->identity, identity, identity_len);
    owner->identity_len = identity_len;
    printf("saved %s/core-ca.pem, %s/core-identity.pem, %s/core.conf\n", owner->dir, owner->dir,
           owner->dir);
    return CLI_EXIT_OK;
fail:
    cli_fail("%s", err);
    return CLI_EXIT_ERROR;
}

/* EDHOC as the owner and GET /whoami: the core must say "owner". */
static int confirm_owner(cli_ident_t *owner, const char *server)
{
    cli_session_t s;
    uint8_t out[1024];
    size_t len;
    char role[32] = "", name[64] = "";
    int rc = cli_ident_connect(owner, server, false, &s);

    if (rc != CLI_EXIT_OK)
        return rc;
    rc = cli_session_call(&s, "GET /whoami", CL_COAP_GET, "/whoami", NULL, 0, out, sizeof out,
                          &len);
    cli_session_close(&s);
    if (rc != CLI_EXIT_OK)
        return rc;
    (void)cli_map_tstr(out, len, "role", role, sizeof role);
    (void)cli_map_tstr(out, len, "name", name, sizeof name);
    if (strcmp(role, "owner") != 0) {
        cli_fail("the core does not see us as its owner (role '%s')", role);
        return CLI_EXIT_REFUSED;
    }
    printf("whoami: %s, role owner - the core is provisioned and yours\n", name);
    return CLI_EXIT_OK;
}

int cli_cmd_provision(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--server", true, false, {0}, 0},
                        {"--owner", true, false, {0}, 0},
                        {"--days", true, false, {0}, 0},
                        CLI_POLICY_OPTS};
    const char *pos[1];
    size_t n_pos;
    char err[600], what[300] = "", path[CLI_PATH_MAX];
    uint8_t *buf = malloc(EVIDENCE_MAX), own[32], ans[1024], code;
    uint8_t *ca = malloc(CLI_CERT_MAX), *idc = malloc(CLI_CERT_MAX), *payload = malloc(8192);
    size_t ca_len, idc_len, ans_len, pl_len;
    uint64_t days = 825;
    cl_attest_policy_t policy;
    cl_attest_core_evidence_t ev;
    cli_appraisal_t a;
    cli_ident_t *owner = calloc(1, sizeof *owner);
    int rc = CLI_EXIT_ERROR;
    cl_cbor_enc_t e;

    if (buf == NULL || ca == NULL || idc == NULL || payload == NULL || owner == NULL)
        goto done;
    switch (cli_parse(argc, argv, 2, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister provision --server coap://HOST:PORT --owner DIR [options]\n"
               "Attests a fresh core, claims it for the owner in DIR (POST /pki/owner), attests\n"
               "it again to check that it is bound to YOUR certificate, signs its CA and\n"
               "identity certificates with the owner key (POST /pki/provision), saves them in\n"
               "DIR and confirms with an EDHOC handshake as the owner.\n"
               "  --server URI            the cloisterd CoAP endpoint\n"
               "  --owner DIR             made by `cloister owner init`\n"
               "  --days N                validity of the core's certificates (default 825)\n" CLI_POLICY_HELP);
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *server = cli_val(opts, N_OPTS(opts), "--server");
    const char *dir = cli_val(opts, N_OPTS(opts), "--owner");
    if (server == NULL || dir == NULL) {
        cli_fail("--server coap://HOST:PORT and --owner DIR are required (try --help)");
        goto done;
    }
    if (cli_val(opts, N_OPTS(opts), "--days") != NULL &&
        !cli_parse_u64(cli_val(opts, N_OPTS(opts), "--days"), 1, 36500, &days)) {
        cli_fail("--days: 1..36500");
        goto done;
    }
    if (!cli_ident_load(owner, dir, false, err, sizeof err)) {
        cli_fail("%s", err);
        goto done;
    }
    if (!owner->owner) {
        cli_fail("%s is not an owner directory (run `cloister owner init --dir %s`)", dir, dir);
        goto done;
    }
    if (cli_path(path, sizeof path, dir, "core.conf") && cli_exists(path)) {
        cli_fail("%s already holds a provisioned core (%s); use `cloister whoami --dir %s` to "
                 "check it",
                 dir, path, dir);
        goto done;
    }
    if (!cli_policy_from_opts(opts, N_OPTS(opts), &policy, what, sizeof what))
        goto done;
    cli_sha256(owner->cert, owner->cert_len, own);
    printf("policy: %s%s\n", what, policy.allow_simulated ? ", simulated TEE allowed" : "");

    printf("1. attesting the core at %s\n", server);
    if ((rc = attest_round(server, &policy, NULL, buf, &ev, &a)) != CLI_EXIT_OK)
        goto done;
    rc = CLI_EXIT_REFUSED;
    static const uint8_t zero[32];
    if (state_is(&ev, "fresh")) {
        printf("2. claiming it: POST /pki/owner with %s/owner.pem\n", dir);
        cl_cbor_enc_init(&e, payload, 8192);
        cl_cbor_enc_map(&e, 1);
        cl_cbor_enc_tstr_z(&e, "owner_cert");
        cl_cbor_enc_bstr(&e, owner->cert, owner->cert_len);
        if (cl_cbor_enc_finish(&e, &pl_len) != CL_OK)
            goto done;
        if ((rc = post_plain(server, "/pki/owner", payload, pl_len, &code, ans, sizeof ans,
                             &ans_len, &owner->crypto)) != CLI_EXIT_OK)
            goto done;
        if (CL_COAP_CLASS(code) != 2) {
            char c[5], ce[300];
            cl_coap_code_str(code, c);
            cli_core_error(ans, ans_len, ce, sizeof ce);
            printf("  the core answered %s %s; checking who owns it\n", c, ce);
        }
    } else if (memcmp(ev.owner, own, 32) != 0) {
        rc = memcmp(ev.owner, zero, 32) == 0 ? CLI_EXIT_REFUSED : someone_else(&ev);
        if (memcmp(ev.owner, zero, 32) == 0)
            cli_fail("the core is in state %.*s without an owner; refusing", (int)ev.state_len,
                     ev.state);
        goto done;
    } else {
        printf("2. the core is already claimed by you (state %.*s)\n", (int)ev.state_len,
               ev.state);
    }

    printf("3. attesting again with a new nonce: is it bound to your certificate?\n");
    if ((rc = attest_round(server, &policy, own, buf, &ev, &a)) != CLI_EXIT_OK)
        goto done;
    rc = CLI_EXIT_REFUSED;
    if (!a.owner_ok) {
        rc = memcmp(ev.owner, zero, 32) == 0 ? CLI_EXIT_REFUSED : someone_else(&ev);
        if (memcmp(ev.owner, zero, 32) == 0)
            cli_fail("the core did not take your certificate (owner still empty)");
        goto done;
    }
    if (state_is(&ev, "provisioned")) {
        /* A previous run got this far: adopt its certificates if they are ours. */
        if (ev.ca_cert == NULL || ev.identity_cert == NULL ||
            cl_pki_verify_issued(ev.ca_cert, ev.ca_cert_len, owner->cert, owner->cert_len,
                                 (int64_t)time(NULL)) != CL_OK ||
            cl_pki_verify_issued(ev.identity_cert, ev.identity_cert_len, owner->cert,
                                 owner->cert_len, (int64_t)time(NULL)) != CL_OK) {
            cli_fail("the core is provisioned with certificates not signed by this owner");
            goto done;
        }
        printf("4. the core was provisioned by you before; keeping its certificates\n");
        memcpy(ca, ev.ca_cert, ev.ca_cert_len);
        ca_len = ev.ca_cert_len;
        memcpy(idc, ev.identity_cert, ev.identity_cert_len);
        idc_len = ev.identity_cert_len;
    } else {
        printf("4. signing the core's CA and identity certificates with the owner key\n");
        rc = CLI_EXIT_ERROR;
        if (!core_cert(owner, CL_PKI_INTERMEDIATE_CA, "Cloister core CA", ev.ca_pub, (int64_t)days,
                       ca, &ca_len) ||
            !core_cert(owner, CL_PKI_LEAF, "Cloister core", ev.identity_pub, (int64_t)days, idc,
                       &idc_len))
            goto done;
        cl_cbor_enc_init(&e, payload, 8192);
        cl_cbor_enc_map(&e, 2);
        cl_cbor_enc_tstr_z(&e, "ca_cert");
        cl_cbor_enc_bstr(&e, ca, ca_len);
        cl_cbor_enc_tstr_z(&e, "identity_cert");
        cl_cbor_enc_bstr(&e, idc, idc_len);
        if (cl_cbor_enc_finish(&e, &pl_len) != CL_OK)
            goto done;
        if ((rc = post_plain(server, "/pki/provision", payload, pl_len, &code, ans, sizeof ans,
                             &ans_len, &owner->crypto)) != CLI_EXIT_OK)
            goto done;
        if (CL_COAP_CLASS(code) != 2) {
            char c[5], ce[300];
            cl_coap_code_str(code, c);
            cli_core_error(ans, ans_len, ce, sizeof ce);
            cli_fail("POST /pki/provision refused by the core: %s %s", c, ce);
            rc = CLI_EXIT_REFUSED;
            goto done;
        }
        printf("  POST /pki/provision: accepted\n");
    }
    if ((rc = save_core(owner, server, ca, ca_len, idc, idc_len, &a)) != CLI_EXIT_OK)
        goto done;
    printf("5. handshake as the owner\n");
    rc = confirm_owner(owner, server);
    if (rc == CLI_EXIT_OK && a.simulated)
        printf("NOTE: this core runs on the SIMULATED TEE - NO SECURITY\n");
done:
    if (owner != NULL)
        cli_ident_free(owner);
    free(owner);
    free(buf);
    free(ca);
    free(idc);
    free(payload);
    return rc;
}
