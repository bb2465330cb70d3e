/*
 * cli/cmd_owner.c - the owner's commands: `cloister owner init` (the key
 * and the self-signed root of the owner's PKI), `cloister token create`
 * (one-time enrollment tokens) and `cloister client list|revoke`.
 *
 * owner init writes DIR/owner.key (a new 0600 PEM file through the
 * keystore, unless the key lives in a PKCS#11 token), DIR/owner.pem (the
 * root certificate, CL_PKI_ROOT_CA, signed through the crypto provider's key
 * handle so a token key never leaves the token) and DIR/owner.conf (the key
 * reference). It never overwrites: an existing file stops it before any key
 * is made.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/crypto_pkcs11.h"
#include "cloister/keystore.h"
#include "pki.h"
#include "session.h"


/* ------------------------------------------------------------------ owner init */

static int owner_init(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--dir", true, false, {0}, 0},
                        {"--key", true, false, {0}, 0},
                        {"--key-file", true, false, {0}, 0},
                        {"--name", true, false, {0}, 0},
                        {"--days", true, false, {0}, 0}};
    const char *pos[1];
    size_t n_pos;
    char err[800], key_path[CLI_PATH_MAX], pem_path[CLI_PATH_MAX], conf_path[CLI_PATH_MAX];
    char keyref[CLI_PATH_MAX + 16], hex[65];
    uint64_t days = 3650;
    uint8_t pub[CL_PUB_MAX], der[CLI_CERT_MAX], hash[32];
    size_t pub_len, der_len;
    cli_ident_t *id = calloc(1, sizeof *id);
    cli_conf_t conf;
    bool made_key_file = false, made_dir = false;
    const char *dir = NULL;
    int rc = CLI_EXIT_ERROR;
    cl_status_t st;

    if (id == NULL)
        return CLI_EXIT_ERROR;
    switch (cli_parse(argc, argv, 3, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister owner init --dir DIR [--key-file PATH | --key pkcs11:URI]\n"
               "                           [--name \"Owner name\"] [--days N]\n"
               "Creates the owner's P-256 key and self-signed root certificate - the root of\n"
               "trust of every core you provision. Files: DIR/owner.pem (certificate),\n"
               "DIR/owner.key (the key, mode 0600, unless it is in a token), DIR/owner.conf.\n"
               "Nothing is overwritten.\n"
               "  --dir DIR         created (0700) if missing\n"
               "  --key-file PATH   where to create the key file (default DIR/owner.key)\n"
               "  --key URI         generate the key inside a PKCS#11 token instead:\n"
               "                    pkcs11:token=LABEL;object=KEY[?module-path=SO&pin-source=file:F]\n"
               "                    (module default $CLOISTER_PKCS11_MODULE, PIN $CLOISTER_PKCS11_PIN)\n"
               "  --name TEXT       the certificate's CN (default \"Cloister owner\")\n"
               "  --days N          validity (default 3650)\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    dir = cli_val(opts, N_OPTS(opts), "--dir");
    const char *key_uri = cli_val(opts, N_OPTS(opts), "--key");
    const char *key_file = cli_val(opts, N_OPTS(opts), "--key-file");
    const char *name = cli_val(opts, N_OPTS(opts), "--name");
    if (dir == NULL) {
        cli_fail("--dir DIR is required (try --help)");
        goto done;
    }
    if (key_uri != NULL && key_file != NULL) {
        cli_fail("give --key (a token) or --key-file, not both");
        goto done;
    }
    if (key_uri != NULL && strncmp(key_uri, "pkcs11:", 7) != 0) {
        cli_fail("--key takes a pkcs11: URI; for a key file use --key-file PATH");
        goto done;
    }
    if (name == NULL)
        name = "Cloister owner";
    if (name[0] == '\0' || strlen(name) >= CL_PKI_MAX_NAME) {
        cli_fail("--name: 1..%d characters", CL_PKI_MAX_NAME - 1);
        goto done;
    }
    if (cli_val(opts, N_OPTS(opts), "--days") != NULL &&
        !cli_parse_u64(cli_val(opts, N_OPTS(opts), "--days"), 1, 36500, &days)) {
        cli_fail("--days: 1..36500");
        goto done;
    }
    if (!cli_mkdir(dir, &made_dir, err, sizeof err)) {
        cli_fail("%s", err);
        goto done;
    }
    if (!cli_path(pem_path, sizeof pem_path, dir, "owner.pem") ||
        !cli_path(conf_path, sizeof conf_path, dir, "owner.conf") ||
        !cli_path(key_path, sizeof key_path, dir, "owner.key")) {
        cli_fail("--dir: path too long");
        goto done;
    }
    if (key_file != NULL)
        snprintf(key_path, sizeof key_path, "%s", key_file);
    const char *existing[] = {pem_path, conf_path, key_uri == NULL ? key_path : NULL};
    for (size_t i = 0; i < 3; i++)
        if (existing[i] != NULL && cli_exists(existing[i])) {
            cli_fail("%s exists already; not overwriting the owner's material (use another "
                     "--dir, or remove it if you really mean to)",
                     existing[i]);
            rc = CLI_EXIT_ERROR;
            goto done;
        }

    /* The key. */
    if (key_uri == NULL) {
        if (!cli_ident_new_key_file(id, key_path, keyref, sizeof keyref, &made_key_file))
            goto done;
    } else {
        char what[CLI_PATH_MAX + 64];
        bool created;
        if (!cli_ident_token_key(id, key_uri, what, sizeof what, &created))
            goto done;
        if (!created) {
            cli_fail("the token already holds a key '%s'; choose another object= label (an "
                     "owner key is never reused silently)",
                     id->keysrc.object);
            goto done;
        }
        cl_key_type_t type;
        if (!key_load(&id->crypto, &id->keysrc, 0, CL_KEY_P256, &id->key, &type, err,
                      sizeof err)) {
            cli_fail("%s", err);
            goto done;
        }
        snprintf(keyref, sizeof keyref, "%s", key_uri);
        printf("owner key generated inside the token (%s), object '%s'\n", what,
               id->keysrc.object);
    }
    if ((st = id->crypto.ops->key_export_public(id->crypto.self, id->key, pub, sizeof pub,
                                                &pub_len)) != CL_OK ||
        pub_len != 65) {
        cli_fail("cannot read the owner public key: %s", cl_status_str(st));
        goto done;
    }

    /* The self-signed root. */
    int64_t now = (int64_t)time(NULL);
    cl_pki_cert_req_t req = {.kind = CL_PKI_ROOT_CA,
                             .cn = name,
                             .pub = pub,
                             .not_before = now - 300,
                             .not_after = now + (int64_t)days * 86400};
    if (!cli_random_serial(id, &req.serial)) {
        cli_fail("no randomness");
        goto done;
    }
    if ((st = cl_pki_make_cert(&req, cli_ident_sign, id, der, sizeof der, &der_len)) != CL_OK) {
        cli_fail("cannot make the root certificate: %s", cl_status_str(st));
        goto done;
    }
    const uint8_t *ders[1] = {der};
    size_t lens[1] = {der_len};
    memset(&conf, 0, sizeof conf);
    if (!cli_conf_set(&conf, "key", keyref) || !cli_conf_set(&conf, "name", name)) {
        cli_fail("key reference too long");
        goto done;
    }
    if (!cli_certs_write(pem_path, ders, lens, 1, false, err, sizeof err) ||
        !cli_conf_write(&conf, conf_path, "cloister owner (cloister owner init)", false, err,
                        sizeof err)) {
        cli_fail("%s", err);
        (void)unlink(pem_path);
        goto done;
    }
    cli_sha256(der, der_len, hash);
    cli_hex(hex, sizeof hex, hash, sizeof hash);
    printf("owner root certificate: %s\n  CN %s, valid %" PRIu64 " days\n  SHA-256 %s\n",
           pem_path, name, days, hex);
    if (key_uri == NULL)
        printf("owner key: %s (keep it safe: whoever holds it owns your cores)\n", key_path);
    printf("owner config: %s\n", conf_path);
    made_key_file = made_dir = false;
    rc = CLI_EXIT_OK;
done:
    if (made_key_file)
        (void)unlink(key_path); /* no root certificate: the key would be an orphan */
    if (made_dir)
        (void)rmdir(dir); /* only if still empty: a failed init leaves nothing behind */
    cli_ident_free(id);
    free(id);
    return rc;
}

int cli_cmd_owner(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[2], "init") == 0)
        return owner_init(argc, argv);
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        printf("usage: cloister owner init --dir DIR [...]   (try `cloister owner init --help`)\n");
        return CLI_EXIT_OK;
    }
    cli_fail("usage: cloister owner init --dir DIR [...] (try --help)");
    return CLI_EXIT_ERROR;
}

/* ------------------------------------------------------------------ permissions */

/*
 * Encodes --publish "a,b,c" as "publish": [..] into e (the caller counted the
 * map entry). Types are 1..64 printable characters without spaces; "*" = any.
 */
static bool enc_publish(cl_cbor_enc_t *e, const char *list)
{
    const char *p = list;
    size_t n = 1;
    for (const char *q = list; *q; q++)
        n += *q == ',';
    if (n > 16) {
        cli_fail("--publish: at most 16 event types");
        return false;
    }
    cl_cbor_enc_tstr_z(e, "publish");
    cl_cbor_enc_array(e, n);
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len > 64) {
            cli_fail("--publish: comma-separated event types of 1..64 characters");
            return false;
        }
        for (size_t k = 0; k < len; k++)
            if (p[k] <= 0x20 || p[k] >= 0x7f) {
                cli_fail("--publish: event types are printable, without spaces");
                return false;
            }
        cl_cbor_enc_tstr(e, p, len);
        p += len + 1;
    }
    return true;
}

/* ------------------------------------------------------------------ token create */

static int token_create(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--owner", true, false, {0}, 0}, {"--role", true, false, {0}, 0},
                        {"--ttl", true, false, {0}, 0},   {"--name", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0}, {"--json", false, false, {0}, 0},
                        {"--publish", true, false, {0}, 0}};
    const char *pos[1];
    size_t n_pos, pl_len, out_len, tok_len;
    char err[600], hex[33], when[40];
    uint8_t payload[1536], out[1024];
    const uint8_t *tok;
    uint64_t ttl = 3600, id_num = 0;
    int64_t expires = 0;
    cli_ident_t *id = calloc(1, sizeof *id);
    cli_session_t *s = calloc(1, sizeof *s);
    cl_cbor_enc_t e;
    int rc = CLI_EXIT_ERROR;

    if (id == NULL || s == NULL)
        goto done;
    switch (cli_parse(argc, argv, 3, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister token create --owner DIR --role device|user|admin|service\n"
               "                             [--ttl 1h] [--name NAME] [--publish T1,T2] [--json]\n"
               "Asks the core (as the owner, over EDHOC + OSCORE) for a one-time enrollment\n"
               "token. Give it to the enrollee (`cloister enroll --token HEX`) over a channel\n"
               "you trust; it expires after --ttl (60s..7d; units s m h d w).\n"
               "--publish limits the event types the enrolled client may publish (default:\n"
               "any); change it later with `cloister client permit`.\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *dir = cli_val(opts, N_OPTS(opts), "--owner");
    const char *role = cli_val(opts, N_OPTS(opts), "--role");
    const char *name = cli_val(opts, N_OPTS(opts), "--name");
    const char *ttl_s = cli_val(opts, N_OPTS(opts), "--ttl");
    const char *publish = cli_val(opts, N_OPTS(opts), "--publish");
    bool json = cli_has(opts, N_OPTS(opts), "--json");
    if (dir == NULL || role == NULL) {
        cli_fail("--owner DIR and --role ROLE are required (try --help)");
        goto done;
    }
    if (strcmp(role, "device") != 0 && strcmp(role, "user") != 0 && strcmp(role, "admin") != 0 &&
        strcmp(role, "service") != 0) {
        cli_fail("--role: device, user, admin or service");
        goto done;
    }
    if (ttl_s != NULL && (!cli_parse_duration(ttl_s, &ttl) || ttl < 60 || ttl > 604800)) {
        cli_fail("--ttl: a duration from 60s to 7d (e.g. 10m, 1h, 2d)");
        goto done;
    }
    if (name != NULL && (name[0] == '\0' || strlen(name) >= 64)) {
        cli_fail("--name: 1..63 characters");
        goto done;
    }
    cl_cbor_enc_init(&e, payload, sizeof payload);
    cl_cbor_enc_map(&e, 2 + (name != NULL) + (publish != NULL));
    cl_cbor_enc_tstr_z(&e, "role");
    cl_cbor_enc_tstr_z(&e, role);
    cl_cbor_enc_tstr_z(&e, "ttl");
    cl_cbor_enc_uint(&e, ttl);
    if (name != NULL) {
        cl_cbor_enc_tstr_z(&e, "name");
        cl_cbor_enc_tstr_z(&e, name);
    }
    if (publish != NULL && !enc_publish(&e, publish))
        goto done;
    if (cl_cbor_enc_finish(&e, &pl_len) != CL_OK)
        goto done;
    if ((rc = cli_ident_open_session(id, dir, cli_val(opts, N_OPTS(opts), "--server"), s)) !=
        CLI_EXIT_OK)
        goto done;
    rc = cli_session_call(s, "POST /pki/tokens", CL_COAP_POST, "/pki/tokens", payload, pl_len, out,
                          sizeof out, &out_len);
    if (rc != CLI_EXIT_OK)
        goto done;
    if (!cli_map_bstr(out, out_len, "token", &tok, &tok_len) || tok_len != 16 ||
        !cli_map_uint(out, out_len, "id", &id_num) ||
        !cli_map_int(out, out_len, "expires", &expires)) {
        cli_fail("the core's answer to POST /pki/tokens is malformed");
        rc = CLI_EXIT_ERROR;
        goto done;
    }
    cli_hex(hex, sizeof hex, tok, tok_len);
    cli_time_iso(when, sizeof when, expires / 1000);
    if (json) {
        printf("{\"token\": \"%s\", \"id\": %" PRIu64 ", \"role\": \"%s\", \"expires\": %" PRId64
               ", \"expires_iso\": \"%s\"}\n",
               hex, id_num, role, expires, when);
    } else {
        printf("token    %s\nid       %" PRIu64 "\nrole     %s\nexpires  %s\n", hex, id_num, role,
               when);
        printf("one-time use; enroll with: cloister enroll --token %s ...\n", hex);
    }
    rc = CLI_EXIT_OK;
done:
    cli_ident_session_free(id, s);
    return rc;
}

int cli_cmd_token(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[2], "create") == 0)
        return token_create(argc, argv);
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        printf("usage: cloister token create --owner DIR --role ROLE [...]\n");
        return CLI_EXIT_OK;
    }
    cli_fail("usage: cloister token create --owner DIR --role ROLE [...] (try --help)");
    return CLI_EXIT_ERROR;
}

/* ------------------------------------------------------------------ client list / revoke */

#define CLIENT_GROUPS_MAX 16 /* docs/model.md: 0..16 groups per client */

/* {"groups": [names...]} from the command line ("@valves" is taken as "valves"). */
static bool enc_groups(cl_cbor_enc_t *e, const char *const *groups, size_t n)
{
    if (n > CLIENT_GROUPS_MAX) {
        cli_fail("groups: at most %d groups per client", CLIENT_GROUPS_MAX);
        return false;
    }
    cl_cbor_enc_map(e, 1);
    cl_cbor_enc_tstr_z(e, "groups");
    cl_cbor_enc_array(e, n);
    for (size_t i = 0; i < n; i++) {
        const char *g = groups[i][0] == '@' ? groups[i] + 1 : groups[i];
        if (!cli_name_ok(g)) {
            cli_fail("groups: '%s' is not a group name (1..64 of A-Z a-z 0-9 . _ -)", groups[i]);
            return false;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(g, groups[k][0] == '@' ? groups[k] + 1 : groups[k]) == 0) {
                cli_fail("groups: '%s' given twice", g);
                return false;
            }
        cl_cbor_enc_tstr_z(e, g);
    }
    return true;
}

static int print_clients(const uint8_t *p, size_t len, bool json)
{
    cl_cbor_dec_t d;
    size_t n;

    if (json)
        return cli_print_json(p, len);
    if (!cli_list_open(&d, p, len, &n))
        return CLI_EXIT_ERROR;
    printf("%-6s %-8s %-8s %-16s %-20s %-20s %s\n", "ID", "ROLE", "STATE", "X5T", "NAME", "GROUPS",
           "PUBLISH");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *item, *x5t = NULL;
        size_t item_len, x5t_len = 0;
        uint64_t cid = 0;
        char name[64] = "", role[16] = "", hex[17] = "";
        bool revoked = false;
        if (cl_cbor_dec_raw(&d, &item, &item_len) != CL_OK) {
            cli_fail("malformed client list");
            return CLI_EXIT_ERROR;
        }
        (void)cli_map_uint(item, item_len, "id", &cid);
        (void)cli_map_tstr(item, item_len, "name", name, sizeof name);
        (void)cli_map_tstr(item, item_len, "role", role, sizeof role);
        if (cli_map_bstr(item, item_len, "x5t", &x5t, &x5t_len))
            cli_hex(hex, sizeof hex, x5t, x5t_len);
        if (!cli_map_bool(item, item_len, "revoked", &revoked))
            revoked = false;
        char publish[256], groups[256];
        cli_map_list(item, item_len, "publish", publish, sizeof publish);
        cli_map_list(item, item_len, "groups", groups, sizeof groups);
        printf("%-6" PRIu64 " %-8s %-8s %-16s %-20s %-20s %s\n", cid, role,
               revoked ? "revoked" : "active", hex, name, groups[0] ? groups : "-", publish);
    }
    return CLI_EXIT_OK;
}

int cli_cmd_client(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--owner", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0},
                        {"--json", false, false, {0}, 0},
                        {"--publish", true, false, {0}, 0}};
    const char *pos[2 + CLIENT_GROUPS_MAX + 1];
    size_t n_pos, out_len;
    char err[600], path[64];
    uint8_t *out = malloc(CLI_PAYLOAD_MAX);
    uint64_t cid = 0;
    cli_ident_t *id = calloc(1, sizeof *id);
    cli_session_t *s = calloc(1, sizeof *s);
    int rc = CLI_EXIT_ERROR;

    if (out == NULL || id == NULL || s == NULL)
        goto done;
    switch (cli_parse(argc, argv, 2, opts, N_OPTS(opts), pos, N_OPTS(pos), &n_pos, err,
                      sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister client list --owner DIR [--json]\n"
               "       cloister client revoke ID --owner DIR\n"
               "       cloister client permit ID --publish T1,T2 --owner DIR\n"
               "       cloister client groups ID [GROUP...] --owner DIR\n"
               "Lists the enrolled clients (with their groups), revokes one (its certificate\n"
               "stops working at once: new handshakes fail, live sessions are dropped), sets\n"
               "the event types a client may publish (\"*\" = any), or sets the groups a\n"
               "client belongs to (0..16 names; none clears them; replaces the old list).\n"
               "Rules name a group as \"@GROUP\" in their targets and sources.\n"
               "DIR may be the owner's directory or an admin's client directory.\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *dir = cli_val(opts, N_OPTS(opts), "--owner");
    bool list = n_pos == 1 && strcmp(pos[0], "list") == 0;
    bool revoke = n_pos == 2 && strcmp(pos[0], "revoke") == 0;
    bool permit = n_pos == 2 && strcmp(pos[0], "permit") == 0;
    bool groups = n_pos >= 2 && strcmp(pos[0], "groups") == 0;
    const char *publish = cli_val(opts, N_OPTS(opts), "--publish");
    uint8_t perm_body[1536];
    size_t perm_len = 0;
    if (!list && !revoke && !permit && !groups) {
        cli_fail("usage: cloister client list|revoke ID|permit ID|groups ID [GROUP...] --owner "
                 "DIR (try --help)");
        goto done;
    }
    if ((revoke || permit || groups) && !cli_parse_u64(pos[1], 0, UINT32_MAX, &cid)) {
        cli_fail("%s: ID is the number shown by `cloister client list`", pos[0]);
        goto done;
    }
    if (groups) {
        cl_cbor_enc_t e;
        cl_cbor_enc_init(&e, perm_body, sizeof perm_body);
        if (!enc_groups(&e, pos + 2, n_pos - 2) || cl_cbor_enc_finish(&e, &perm_len) != CL_OK)
            goto done;
    }
    if (permit) {
        cl_cbor_enc_t e;
        if (publish == NULL) {
            cli_fail("permit: --publish T1,T2 (event types; \"*\" = any) is required");
            goto done;
        }
        cl_cbor_enc_init(&e, perm_body, sizeof perm_body);
        cl_cbor_enc_map(&e, 1);
        if (!enc_publish(&e, publish) || cl_cbor_enc_finish(&e, &perm_len) != CL_OK)
            goto done;
    }
    if (dir == NULL) {
        cli_fail("--owner DIR is required");
        goto done;
    }
    if ((rc = cli_ident_open_session(id, dir, cli_val(opts, N_OPTS(opts), "--server"), s)) !=
        CLI_EXIT_OK)
        goto done;
    if (list) {
        rc = cli_session_call(s, "GET /clients", CL_COAP_GET, "/clients", NULL, 0, out,
                              CLI_PAYLOAD_MAX, &out_len);
        if (rc == CLI_EXIT_OK)
            rc = print_clients(out, out_len, cli_has(opts, N_OPTS(opts), "--json"));
    } else if (groups) {
        snprintf(path, sizeof path, "/clients/%" PRIu64 "/groups", cid);
        rc = cli_session_call(s, "groups", CL_COAP_POST, path, perm_body, perm_len, out,
                              CLI_PAYLOAD_MAX, &out_len);
        if (rc == CLI_EXIT_OK) {
            if (cli_has(opts, N_OPTS(opts), "--json")) {
                const uint8_t *gv;
                size_t gl;
                printf("{\"client\": %" PRIu64 ", \"groups\": ", cid);
                if (!cli_map_get(perm_body, perm_len, "groups", &gv, &gl) ||
                    !cli_cbor_json(stdout, gv, gl))
                    printf("[]");
                printf("}\n");
            } else if (n_pos == 2) {
                printf("client %" PRIu64 " is in no group now\n", cid);
            } else {
                printf("client %" PRIu64 " groups:", cid);
                for (size_t i = 2; i < n_pos; i++)
                    printf(" %s", pos[i][0] == '@' ? pos[i] + 1 : pos[i]);
                printf("\n");
            }
        }
    } else if (permit) {
        snprintf(path, sizeof path, "/clients/%" PRIu64 "/permissions", cid);
        rc = cli_session_call(s, "permit", CL_COAP_POST, path, perm_body, perm_len, out,
                              CLI_PAYLOAD_MAX, &out_len);
        if (rc == CLI_EXIT_OK) {
            if (cli_has(opts, N_OPTS(opts), "--json"))
                printf("{\"client\": %" PRIu64 ", \"publish\": \"%s\"}\n", cid, publish);
            else
                printf("client %" PRIu64 " may publish: %s\n", cid, publish);
        }
    } else {
        snprintf(path, sizeof path, "/clients/%" PRIu64 "/revoke", cid);
        rc = cli_session_call(s, "revoke", CL_COAP_POST, path, NULL, 0, out, CLI_PAYLOAD_MAX,
                              &out_len);
        if (rc == CLI_EXIT_OK) {
            if (cli_has(opts, N_OPTS(opts), "--json"))
                printf("{\"revoked\": %" PRIu64 "}\n", cid);
            else
                printf("client %" PRIu64 " revoked\n", cid);
        }
    }
done:
    cli_ident_session_free(id, s);
    free(out);
    return rc;
}
