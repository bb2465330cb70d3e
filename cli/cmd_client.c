/*
 * cli/cmd_client.c - the client side: `cloister enroll` (a new key that
 * never leaves its keystore, EDHOC with a raw key credential (kccs), the
 * core validated against the owner root, POST /pki/enroll with the one-time
 * token), `cloister whoami` and `cloister device publish` (POST /events).
 *
 * Enrollment result in DIR: client.pem (our certificate), chain.pem (core CA
 * then owner root: what later handshakes validate the core against),
 * client.conf (server, key reference, id, role, name) and, for a file key,
 * client.key (0600). The token binds to the key that signed EDHOC
 * message_3, so neither a stolen token nor a stolen session gets a
 * certificate for another key.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/keystore.h"
#include "pki.h"
#include "session.h"


/* ------------------------------------------------------------------ enroll */

/* Checks the enrollment answer and writes DIR/client.pem, chain.pem, client.conf. */
static int enroll_save(const char *dir, const char *server, const char *keyref, const char *name,
                       const cli_session_t *s, const uint8_t *root, size_t root_len,
                       const uint8_t pub[65], const uint8_t *ans, size_t ans_len, bool json)
{
    const uint8_t *cert, *ca, *owner;
    size_t cert_len, ca_len, owner_len;
    uint64_t cid;
    char role[16], path[CLI_PATH_MAX], err[400], num[24], hex[17];
    cl_pki_cert_info_t info;
    uint8_t x5t[8];
    cli_conf_t conf;

    if (!cli_map_bstr(ans, ans_len, "cert", &cert, &cert_len) ||
        !cli_map_uint(ans, ans_len, "id", &cid) ||
        !cli_map_tstr(ans, ans_len, "role", role, sizeof role)) {
        cli_fail("the core's answer to POST /pki/enroll is malformed");
        return CLI_EXIT_ERROR;
    }
    /* ca_cert / owner_cert may be left out: then the ones the handshake validated. */
    if (!cli_map_bstr(ans, ans_len, "ca_cert", &ca, &ca_len)) {
        ca = s->peer_ca;
        ca_len = s->peer_ca_len;
    }
    if (!cli_map_bstr(ans, ans_len, "owner_cert", &owner, &owner_len)) {
        owner = root;
        owner_len = root_len;
    }
    if (owner_len != root_len || memcmp(owner, root, root_len) != 0) {
        cli_fail("the core answered with another owner certificate than the one you trust");
        return CLI_EXIT_REFUSED;
    }
    if (ca_len != s->peer_ca_len || memcmp(ca, s->peer_ca, ca_len) != 0) {
        cli_fail("the core answered with another CA certificate than the one it proved itself "
                 "with");
        return CLI_EXIT_REFUSED;
    }
    if (cl_pki_verify_issued(cert, cert_len, ca, ca_len, (int64_t)time(NULL)) != CL_OK ||
        cl_pki_cert_parse(cert, cert_len, &info) != CL_OK || info.is_ca ||
        memcmp(info.pub, pub, 65) != 0) {
        cli_fail("the certificate the core issued is not for our key or not by its CA");
        return CLI_EXIT_REFUSED;
    }
    const uint8_t *d1[1] = {cert};
    size_t l1[1] = {cert_len};
    const uint8_t *d2[2] = {ca, root};
    size_t l2[2] = {ca_len, root_len};
    memset(&conf, 0, sizeof conf);
    snprintf(num, sizeof num, "%" PRIu64, cid);
    if (!cli_conf_set(&conf, "server", server) || !cli_conf_set(&conf, "key", keyref) ||
        !cli_conf_set(&conf, "id", num) || !cli_conf_set(&conf, "role", role) ||
        !cli_conf_set(&conf, "name", name)) {
        cli_fail("configuration values too long");
        return CLI_EXIT_ERROR;
    }
    if (!cli_path(path, sizeof path, dir, "client.pem") ||
        !cli_certs_write(path, d1, l1, 1, false, err, sizeof err) ||
        !cli_path(path, sizeof path, dir, "chain.pem") ||
        !cli_certs_write(path, d2, l2, 2, false, err, sizeof err) ||
        !cli_path(path, sizeof path, dir, "client.conf") ||
        !cli_conf_write(&conf, path, "enrolled cloister client (cloister enroll)", false, err,
                        sizeof err)) {
        cli_fail("%s", err);
        return CLI_EXIT_ERROR;
    }
    if (cl_pki_thumbprint(cert, cert_len, x5t) == CL_OK)
        cli_hex(hex, sizeof hex, x5t, sizeof x5t);
    else
        hex[0] = '\0';
    if (json) {
        printf("{\"id\": %" PRIu64 ", \"role\": \"%s\", \"name\": ", cid, role);
        cli_json_str(stdout, info.cn, strlen(info.cn));
        printf(", \"x5t\": \"%s\", \"dir\": ", hex);
        cli_json_str(stdout, dir, strlen(dir));
        printf("}\n");
    } else {
        printf("enrolled: id %" PRIu64 ", role %s, certificate CN '%s' (x5t %s)\n", cid, role,
               info.cn, hex);
        printf("saved %s/client.pem, %s/chain.pem, %s/client.conf\n", dir, dir, dir);
    }
    return CLI_EXIT_OK;
}

int cli_cmd_enroll(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--server", true, false, {0}, 0},   {"--token", true, false, {0}, 0},
                        {"--dir", true, false, {0}, 0},      {"--key-file", true, false, {0}, 0},
                        {"--key", true, false, {0}, 0},      {"--name", true, false, {0}, 0},
                        {"--owner-cert", true, false, {0}, 0}, {"--ca", true, false, {0}, 0},
                        {"--json", false, false, {0}, 0}};
    const char *pos[1];
    size_t n_pos, tok_len, root_len, ca_len = 0, pub_len, pl_len, ans_len;
    char err[800], key_path[CLI_PATH_MAX], keyref[CLI_PATH_MAX + 16], path[CLI_PATH_MAX];
    uint8_t token[16], pub[CL_PUB_MAX], payload[256], ans[8192];
    uint8_t *root = malloc(CLI_CERT_MAX), *ca = malloc(CLI_CERT_MAX);
    cli_ident_t *id = calloc(1, sizeof *id);
    cli_session_t *s = calloc(1, sizeof *s);
    bool made_key_file = false, made_dir = false;
    const char *dir = NULL;
    int rc = CLI_EXIT_ERROR;
    cl_status_t st;

    if (root == NULL || ca == NULL || id == NULL || s == NULL)
        goto done;
    switch (cli_parse(argc, argv, 2, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister enroll --server coap://HOST:PORT --token HEX --dir DIR\n"
               "                       --name NAME --owner-cert PATH [--ca PATH]\n"
               "                       [--key-file PATH | --key pkcs11:URI] [--json]\n"
               "Creates a new P-256 key in its keystore, proves it to the core with EDHOC\n"
               "(raw key credential), checks the core's certificates against the owner's root,\n"
               "and trades the one-time token for a certificate. Saves DIR/client.pem,\n"
               "DIR/chain.pem and DIR/client.conf.\n"
               "  --token HEX        from `cloister token create` (16 bytes)\n"
               "  --owner-cert PATH  the owner's root certificate (owner.pem), obtained from the\n"
               "                     owner over a channel you trust\n"
               "  --ca PATH          also pin the core CA certificate (core-ca.pem)\n"
               "  --key-file PATH    create the key there (default DIR/client.key)\n"
               "  --key URI          use/generate a key inside a PKCS#11 token instead\n"
               "  --name NAME        the client's name (certificate CN)\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *server = cli_val(opts, N_OPTS(opts), "--server");
    const char *tok_hex = cli_val(opts, N_OPTS(opts), "--token");
    dir = cli_val(opts, N_OPTS(opts), "--dir");
    const char *key_file = cli_val(opts, N_OPTS(opts), "--key-file");
    const char *key_uri = cli_val(opts, N_OPTS(opts), "--key");
    const char *name = cli_val(opts, N_OPTS(opts), "--name");
    const char *owner_cert = cli_val(opts, N_OPTS(opts), "--owner-cert");
    const char *ca_path = cli_val(opts, N_OPTS(opts), "--ca");
    if (server == NULL || tok_hex == NULL || dir == NULL || name == NULL || owner_cert == NULL) {
        cli_fail("--server, --token, --dir, --name and --owner-cert are required (try --help)");
        goto done;
    }
    if (!cli_hex_decode(tok_hex, token, sizeof token, &tok_len) || tok_len != 16) {
        cli_fail("--token: 32 hex digits (as printed by `cloister token create`)");
        goto done;
    }
    if (name[0] == '\0' || strlen(name) >= CL_PKI_MAX_NAME) {
        cli_fail("--name: 1..%d characters", CL_PKI_MAX_NAME - 1);
        goto done;
    }
    if (key_file != NULL && key_uri != NULL) {
        cli_fail("give --key (a token) or --key-file, not both");
        goto done;
    }
    if (key_uri != NULL && strncmp(key_uri, "pkcs11:", 7) != 0) {
        cli_fail("--key takes a pkcs11: URI; for a key file use --key-file PATH");
        goto done;
    }
    if (!cli_cert_read(owner_cert, root, CLI_CERT_MAX, &root_len, err, sizeof err)) {
        cli_fail("--owner-cert: %s", err);
        goto done;
    }
    if ((st = cl_pki_check_root(root, root_len, (int64_t)time(NULL))) != CL_OK) {
        cli_fail("--owner-cert %s is not a valid self-signed root certificate: %s", owner_cert,
                 cl_status_str(st));
        goto done;
    }
    if (ca_path != NULL) {
        if (!cli_cert_read(ca_path, ca, CLI_CERT_MAX, &ca_len, err, sizeof err)) {
            cli_fail("--ca: %s", err);
            goto done;
        }
        if (cl_pki_verify_issued(ca, ca_len, root, root_len, (int64_t)time(NULL)) != CL_OK) {
            cli_fail("--ca %s is not issued by the owner root %s", ca_path, owner_cert);
            goto done;
        }
    }
    if (!cli_mkdir(dir, &made_dir, err, sizeof err)) {
        cli_fail("%s", err);
        goto done;
    }
    static const char *const outputs[] = {"client.conf", "client.pem", "chain.pem"};
    for (size_t i = 0; i < 3; i++)
        if (cli_path(path, sizeof path, dir, outputs[i]) && cli_exists(path)) {
            cli_fail("%s exists already: %s holds an enrolled client (use another --dir)", path,
                     dir);
            goto done;
        }
    if (key_uri == NULL) {
        if (key_file != NULL)
            snprintf(key_path, sizeof key_path, "%s", key_file);
        else if (!cli_path(key_path, sizeof key_path, dir, "client.key"))
            goto done;
        if (!cli_ident_new_key_file(id, key_path, keyref, sizeof keyref, &made_key_file))
            goto done;
    } else {
        char what[CLI_PATH_MAX + 64];
        bool created;
        cl_key_type_t type;
        if (!cli_ident_token_key(id, key_uri, what, sizeof what, &created))
            goto done;
        if (!key_load(&id->crypto, &id->keysrc, 0, CL_KEY_P256, &id->key, &type, err,
                      sizeof err)) {
            cli_fail("%s", err);
            goto done;
        }
        if (type != CL_KEY_P256) {
            cli_fail("the token key '%s' is not a P-256 key", id->keysrc.object);
            goto done;
        }
        printf("key '%s' %s the token\n", id->keysrc.object,
               created ? "generated inside" : "found in");
        snprintf(keyref, sizeof keyref, "%s", key_uri);
    }
    if (id->crypto.ops->key_export_public(id->crypto.self, id->key, pub, sizeof pub, &pub_len) !=
            CL_OK ||
        pub_len != 65) {
        cli_fail("cannot read our public key");
        goto done;
    }

    cli_session_cfg_t cfg = {.server = server,
                             .crypto = &id->crypto,
                             .key = id->key,
                             .kccs_pub = pub,
                             .kccs_name = name,
                             .root = root,
                             .root_len = root_len,
                             .pin_ca = ca_len > 0 ? ca : NULL,
                             .pin_ca_len = ca_len,
                             .quiet = cli_has(opts, N_OPTS(opts), "--json")};
    if (!cli_session_open(s, &cfg, &rc, err, sizeof err)) {
        cli_fail("%s", err);
        goto done;
    }
    cl_cbor_enc_t e;
    cl_cbor_enc_init(&e, payload, sizeof payload);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "token");
    cl_cbor_enc_bstr(&e, token, sizeof token);
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr_z(&e, name);
    if (cl_cbor_enc_finish(&e, &pl_len) != CL_OK) {
        rc = CLI_EXIT_ERROR;
        goto done;
    }
    rc = cli_session_call(s, "POST /pki/enroll", CL_COAP_POST, "/pki/enroll", payload, pl_len, ans,
                          sizeof ans, &ans_len);
    cl_wipe(payload, sizeof payload);
    if (rc != CLI_EXIT_OK)
        goto done;
    rc = enroll_save(dir, server, keyref, name, s, root, root_len, pub, ans, ans_len,
                     cli_has(opts, N_OPTS(opts), "--json"));
    if (rc == CLI_EXIT_OK)
        made_key_file = made_dir = false;
done:
    cl_wipe(token, sizeof token);
    if (made_key_file)
        (void)unlink(key_path); /* no certificate for it: do not leave an orphan key */
    if (made_dir)
        (void)rmdir(dir); /* only if still empty: a refused enrollment leaves nothing behind */
    cli_ident_session_free(id, s);
    free(root);
    free(ca);
    return rc;
}

/* ------------------------------------------------------------------ whoami */

int cli_cmd_whoami(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--dir", true, false, {0}, 0},
                        {"--owner", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0},
                        {"--json", false, false, {0}, 0}};
    const char *pos[1];
    size_t n_pos, len;
    char err[600], name[64] = "", role[16] = "";
    uint8_t out[1024];
    uint64_t cid = 0;
    cli_ident_t *id = calloc(1, sizeof *id);
    cli_session_t *s = calloc(1, sizeof *s);
    int rc = CLI_EXIT_ERROR;

    if (id == NULL || s == NULL)
        goto done;
    switch (cli_parse(argc, argv, 2, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister whoami --dir DIR [--server URI] [--json]\n"
               "Connects as the owner or client of DIR (EDHOC + OSCORE) and prints what the\n"
               "core knows about us: id, name, role. Exit 1 when the core refuses us (e.g.\n"
               "after revocation).\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *dir = cli_val(opts, N_OPTS(opts), "--dir");
    if (dir == NULL)
        dir = cli_val(opts, N_OPTS(opts), "--owner");
    bool json = cli_has(opts, N_OPTS(opts), "--json");
    if (dir == NULL) {
        cli_fail("--dir DIR is required (an owner or client directory)");
        goto done;
    }
    if ((rc = cli_ident_open_session(id, dir, cli_val(opts, N_OPTS(opts), "--server"), s)) !=
        CLI_EXIT_OK)
        goto done;
    rc = cli_session_call(s, "GET /whoami", CL_COAP_GET, "/whoami", NULL, 0, out, sizeof out,
                          &len);
    if (rc != CLI_EXIT_OK)
        goto done;
    (void)cli_map_uint(out, len, "id", &cid);
    (void)cli_map_tstr(out, len, "name", name, sizeof name);
    (void)cli_map_tstr(out, len, "role", role, sizeof role);
    if (json) {
        if (!cli_cbor_json(stdout, out, len)) {
            cli_fail("malformed answer");
            rc = CLI_EXIT_ERROR;
            goto done;
        }
        putchar('\n');
    } else {
        printf("id    %" PRIu64 "\nname  %s\nrole  %s\ncore  %s\n", cid, name, role, s->peer_cn);
    }
done:
    cli_ident_session_free(id, s);
    return rc;
}

/* ------------------------------------------------------------------ device publish */

bool cli_encode_prop(cl_cbor_enc_t *e, const char *kv)
{
    const char *eq = strchr(kv, '=');
    const char *v;
    char *end;

    if (eq == NULL || eq == kv)
        return false;
    cl_cbor_enc_tstr(e, kv, (size_t)(eq - kv));
    v = eq + 1;
    size_t n = strlen(v);
    if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
        cl_cbor_enc_bool(e, v[0] == 't');
        return true;
    }
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        cl_cbor_enc_tstr(e, v + 1, n - 2);
        return true;
    }
    if (n > 0) {
        errno = 0;
        long long i = strtoll(v, &end, 10);
        if (errno == 0 && *end == '\0') {
            cl_cbor_enc_int(e, (int64_t)i);
            return true;
        }
        /* decimal notation only: no hex floats, inf or nan */
        bool decimal = strspn(v, "0123456789+-.eE") == n && strpbrk(v, "0123456789") != NULL;
        errno = 0;
        double d = strtod(v, &end);
        if (decimal && errno == 0 && *end == '\0' &&
            (v[0] == '-' || v[0] == '.' || (v[0] >= '0' && v[0] <= '9'))) {
            cl_cbor_enc_double(e, d);
            return true;
        }
    }
    cl_cbor_enc_tstr(e, v, n);
    return true;
}

int cli_cmd_device(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--dir", true, false, {0}, 0},  {"--type", true, false, {0}, 0},
                        {"--prop", true, true, {0}, 0},  {"--count", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0}, {"--json", false, false, {0}, 0}};
    const char *pos[1];
    size_t n_pos, pl_len, out_len;
    char err[600];
    uint8_t payload[4096], out[1024];
    uint64_t count = 1, accepted = 0, total = 0;
    cli_ident_t *id = calloc(1, sizeof *id);
    cli_session_t *s = calloc(1, sizeof *s);
    int rc = CLI_EXIT_ERROR;
    cl_cbor_enc_t e;

    if (id == NULL || s == NULL)
        goto done;
    if (argc >= 3 && strcmp(argv[2], "listen") == 0) {
        rc = cli_device_listen(argc, argv);
        goto done;
    }
    if (argc < 3 || strcmp(argv[2], "publish") != 0) {
        if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            printf("usage: cloister device publish --dir DIR --type T [--prop k=v ...] [--count N]\n"
                   "       cloister device listen --dir DIR [--count N] [--timeout S] [--json]\n"
                   "(cloister device publish|listen --help for details)\n");
            rc = CLI_EXIT_OK;
        } else {
            cli_fail("usage: cloister device publish --dir DIR --type T [--prop k=v ...] | "
                     "listen --dir DIR (try --help)");
        }
        goto done;
    }
    switch (cli_parse(argc, argv, 3, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister device publish --dir DIR --type T [--prop k=v ...] [--count N]\n"
               "Publishes events as the enrolled client of DIR (POST /events over OSCORE).\n"
               "  --type T      the event type\n"
               "  --prop k=v    a property (repeatable): true/false, integers and decimals are\n"
               "                sent as CBOR booleans and numbers, \"quoted\" or other text as text\n"
               "  --count N     publish the event N times (default 1) on one session\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *dir = cli_val(opts, N_OPTS(opts), "--dir");
    const char *type = cli_val(opts, N_OPTS(opts), "--type");
    cli_opt_t *props = cli_opt(opts, N_OPTS(opts), "--prop");
    if (dir == NULL || type == NULL || type[0] == '\0') {
        cli_fail("--dir DIR and --type T are required");
        goto done;
    }
    if (cli_val(opts, N_OPTS(opts), "--count") != NULL &&
        !cli_parse_u64(cli_val(opts, N_OPTS(opts), "--count"), 1, 1000000, &count)) {
        cli_fail("--count: 1..1000000");
        goto done;
    }
    cl_cbor_enc_init(&e, payload, sizeof payload);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "type");
    cl_cbor_enc_tstr_z(&e, type);
    cl_cbor_enc_tstr_z(&e, "properties");
    cl_cbor_enc_map(&e, props->n);
    for (size_t i = 0; i < props->n; i++)
        if (!cli_encode_prop(&e, props->vals[i])) {
            cli_fail("--prop '%s': key=value expected", props->vals[i]);
            goto done;
        }
    if (cl_cbor_enc_finish(&e, &pl_len) != CL_OK) {
        cli_fail("the event is too large");
        goto done;
    }
    if ((rc = cli_ident_open_session(id, dir, cli_val(opts, N_OPTS(opts), "--server"), s)) !=
        CLI_EXIT_OK)
        goto done;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t acc = 0;
        rc = cli_session_call(s, "POST /events", CL_COAP_POST, "/events", payload, pl_len, out,
                              sizeof out, &out_len);
        if (rc != CLI_EXIT_OK)
            break;
        total++;
        if (cli_map_uint(out, out_len, "accepted", &acc))
            accepted += acc;
    }
    if (rc != CLI_EXIT_OK && total == 0)
        goto done; /* the refusal was reported; nothing was published */
    if (cli_has(opts, N_OPTS(opts), "--json"))
        printf("{\"sent\": %" PRIu64 ", \"accepted\": %" PRIu64 "}\n", total, accepted);
    else
        printf("published %" PRIu64 " event%s of type '%s' (accepted %" PRIu64 ")\n", total,
               total == 1 ? "" : "s", type, accepted);
done:
    cli_ident_session_free(id, s);
    return rc;
}
