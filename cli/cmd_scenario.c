/*
 * cli/cmd_scenario.c - `cloister publisher add|list` and `cloister scenario
 * sign|install|list|remove`: third-party scenario templates (event types,
 * action types and rule templates, core/model/scenario.h) that an owner
 * installs without giving their publisher access to any data.
 *
 * A publisher signs the template file's exact bytes (`scenario sign`: a
 * detached COSE_Sign1 made by cl_scn_sign with the publisher's key - a PEM
 * file or a PKCS#11 token object); the owner registers the publisher's
 * public key once (`publisher add`), and the core checks the signature when
 * the template is installed (`scenario install`), so a template changed on
 * its way is refused (4.03 bad-signature). Unsigned templates install, and
 * are listed as unsigned.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/json.h"
#include "scenario.h"
#include "session.h"

#define ANSWER_MAX (64 * 1024)
#define SIG_MAX 1024 /* a COSE_Sign1 with an ES256 signature and a short kid */

/* ------------------------------------------------------------------ publisher */

#define MODEL_OPTS "--owner --dir --server --json"

static int publisher_list(cli_sub_ctx_t *x)
{
    cl_cbor_dec_t d;
    size_t n;
    char fp[24];
    int rc;

    if (!cli_opts_list(x, "/publishers", &d, &n, &rc))
        return rc;
    printf("%-24s %-8s %s\n", "NAME", "VERSION", "KEY (SHA-256 fingerprint)");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *item, *key;
        size_t item_len, key_len;
        char name[80] = "", ver[24];
        if (cl_cbor_dec_raw(&d, &item, &item_len) != CL_OK)
            break;
        (void)cli_map_tstr(item, item_len, "name", name, sizeof name);
        cli_map_show(item, item_len, "version", ver, sizeof ver);
        if (cli_map_bstr(item, item_len, "key", &key, &key_len))
            cli_key_fingerprint(key, key_len, fp);
        else
            snprintf(fp, sizeof fp, "?");
        printf("%-24s %-8s %s\n", name, ver[0] ? ver : "-", fp);
    }
    if (n == 0)
        printf("(no publishers: cloister publisher add NAME --key PUB.pem --owner DIR)\n");
    return CLI_EXIT_OK;
}

static int publisher_add(cli_sub_ctx_t *x)
{
    cli_opt_t *opts = x->opts;
    size_t n_opts = x->n_opts;
    uint8_t *out = x->out;
    size_t *out_len = &x->out_len;
    const char *name = x->pos[1];
    const char *key = cli_val(opts, n_opts, "--key");
    bool replace = cli_has(opts, n_opts, "--replace");
    char err[600], path[128], what[160], fp[24];
    uint8_t body[128], pub[65];
    size_t len;
    cl_cbor_enc_t e;

    if (!cli_name_ok(name)) {
        cli_fail("'%s' is not a valid publisher name (1..64 of A-Z a-z 0-9 . _ -)", name);
        return CLI_EXIT_ERROR;
    }
    if (key == NULL) {
        cli_fail("publisher add: --key PUB.pem (the publisher's P-256 public key) is required");
        return CLI_EXIT_ERROR;
    }
    if (!cli_pem_public_point(key, pub, err, sizeof err)) {
        cli_fail("--key %s", err);
        return CLI_EXIT_ERROR;
    }
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, replace ? 1 : 2);
    cl_cbor_enc_tstr_z(&e, "key");
    cl_cbor_enc_bstr(&e, pub, sizeof pub);
    if (!replace) { /* never replace a registered key by accident */
        cl_cbor_enc_tstr_z(&e, "if_version");
        cl_cbor_enc_uint(&e, 0);
    }
    if (cl_cbor_enc_finish(&e, &len) != CL_OK)
        return CLI_EXIT_ERROR;
    snprintf(path, sizeof path, "/publishers/%s", name);
    snprintf(what, sizeof what, "PUT %s", path);
    cli_key_fingerprint(pub, sizeof pub, fp);
    cli_req_t r = {.code = CL_COAP_PUT, .path = path, .cf = 60, .payload = body, .len = len};
    int rc = cli_opts_call(opts, n_opts, what, &r, false, out, ANSWER_MAX, out_len);
    if (rc == CLI_EXIT_OK) {
        uint64_t v = 0;
        (void)cli_map_uint(out, *out_len, "version", &v);
        if (cli_has(opts, n_opts, "--json"))
            printf("{\"name\": \"%s\", \"version\": %" PRIu64 ", \"fingerprint\": \"%s\"}\n",
                   name, v, fp);
        else
            printf("publisher '%s' %s (version %" PRIu64 ")\nkey fingerprint %s (compare it with "
                   "the publisher's)\n",
                   name, v <= 1 ? "registered" : "key replaced", v, fp);
    } else if (!replace && cli_core_error_is(out, *out_len, "version-conflict")) {
        cli_fail("publisher '%s' is registered already; give --replace to change its key", name);
    }
    return rc;
}

static const cli_sub_t publisher_subs[] = {
    {"add", "add NAME --key PUB.pem [--replace] --owner DIR",
     "Registers the P-256 public key of a scenario publisher (a PEM \"PUBLIC KEY\" or a\n"
     "certificate, as the publisher hands it to you). Templates signed by NAME are\n"
     "then checked against it when installed. Compare the fingerprint printed here\n"
     "with the one the publisher gives you over another channel. An existing\n"
     "publisher's key is only replaced with --replace. Owner only.\n",
     MODEL_OPTS " --key --replace", 1, 1, publisher_add},
    {"list", "list --owner DIR [--json]",
     "Lists the registered publishers and the fingerprints of their keys.\n", MODEL_OPTS, 0, 0,
     publisher_list},
};

static const cli_cmd_spec_t publisher_spec = {
    "publisher", publisher_subs, N_OPTS(publisher_subs),
    "The publishers whose signed scenario templates the core accepts.\n"};

int cli_cmd_publisher(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--owner", true, false, {0}, 0},  {"--dir", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0}, {"--json", false, false, {0}, 0},
                        {"--key", true, false, {0}, 0},    {"--replace", false, false, {0}, 0}};

    return cli_sub_main(&publisher_spec, argc, argv, opts, N_OPTS(opts));
}

/* ------------------------------------------------------------------ scenario */

bool cli_encode_params(cl_cbor_enc_t *e, const char *const *kv, size_t n, char *err,
                       size_t err_size)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(kv[i], '=');
        if (eq == NULL || eq == kv[i]) {
            cli_err(err, err_size, "--param '%s': NAME=VALUE expected", kv[i]);
            return false;
        }
        for (size_t k = 0; k < i; k++)
            if (strncmp(kv[k], kv[i], (size_t)(eq - kv[i]) + 1) == 0) {
                cli_err(err, err_size, "--param %.*s given twice", (int)(eq - kv[i]), kv[i]);
                return false;
            }
    }
    cl_cbor_enc_map(e, n);
    for (size_t i = 0; i < n; i++)
        (void)cli_encode_prop(e, kv[i]);
    return true;
}

/*
 * The kind and name of one object of a scenario answer: {"kind": text, "name"}
 * (created, removed) or [kind, name] with the core's record kinds 0 event
 * type, 1 action type, 2 rule (GET /scenarios "objects").
 */
static void object_of(const uint8_t *item, size_t len, char *kind, size_t kind_size, char *name,
                      size_t name_size)
{
    cl_cbor_dec_t d;
    size_t n;
    uint64_t k;
    const char *t;
    size_t tl;

    kind[0] = name[0] = '\0';
    if (cli_json_object(item, len)) {
        cli_map_show(item, len, "kind", kind, kind_size);
        (void)cli_map_tstr(item, len, "name", name, name_size);
        return;
    }
    cl_cbor_dec_init(&d, item, len);
    if (cl_cbor_dec_array(&d, &n) == CL_OK && n == 2 && cl_cbor_dec_uint(&d, &k) == CL_OK &&
        cl_cbor_dec_tstr(&d, &t, &tl) == CL_OK) {
        snprintf(kind, kind_size, "%s",
                 k == 0 ? "event-type" : k == 1 ? "action-type" : k == 2 ? "rule" : "object");
        snprintf(name, name_size, "%.*s", (int)(tl < name_size ? tl : name_size - 1), t);
        return;
    }
    cli_cbor_show(item, len, name, name_size);
}

/* The objects of an answer (array under key), one a line. */
static size_t print_objects(const uint8_t *map, size_t len, const char *key, const char *indent)
{
    const uint8_t *arr;
    size_t arr_len, n = 0;
    cl_cbor_dec_t d;

    if (!cli_map_get(map, len, key, &arr, &arr_len))
        return 0;
    cl_cbor_dec_init(&d, arr, arr_len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *item;
        size_t item_len;
        char kind[24] = "", name[160] = "";
        if (cl_cbor_dec_raw(&d, &item, &item_len) != CL_OK)
            break;
        object_of(item, item_len, kind, sizeof kind, name, sizeof name);
        printf("%s%-12s %s\n", indent, kind, name);
    }
    return n;
}

/* An output file may be written: it does not exist, or force. Prints the refusal. */
static bool may_write(const char *path, bool force, const char *opt)
{
    if (path == NULL || force || !cli_exists(path))
        return true;
    cli_fail("%s exists already; give --force to replace it%s%s", path, opt ? " or another " : "",
             opt ? opt : "");
    return false;
}

static int scenario_sign(cli_sub_ctx_t *x)
{
    cli_opt_t *opts = x->opts;
    size_t n_opts = x->n_opts;
    const char *tmpl = x->pos[1];
    const char *keyref = cli_val(opts, n_opts, "--key");
    const char *publisher = cli_val(opts, n_opts, "--publisher");
    const char *out_path = cli_val(opts, n_opts, "--out");
    const char *pub_out = cli_val(opts, n_opts, "--pub-out");
    char *text = malloc(CL_SCN_MAX_TEMPLATE + 1), err[900], def_out[CLI_PATH_MAX], fp[24];
    char named[80] = "", scn[80] = "", ver[40] = "";
    uint8_t *cbor = malloc(2 * CL_SCN_MAX_TEMPLATE), sig[SIG_MAX], pub[CL_PUB_MAX];
    size_t text_len, cbor_len, sig_len = 0, pub_len = 0;
    cli_ident_t *id = calloc(1, sizeof *id);
    int rc = CLI_EXIT_ERROR;
    cl_status_t st;

    if (text == NULL || cbor == NULL || id == NULL)
        goto done;
    if (keyref == NULL || publisher == NULL) {
        cli_fail("scenario sign: --key PRIV.pem|pkcs11:URI and --publisher NAME are required");
        goto done;
    }
    if (!cli_name_ok(publisher)) {
        cli_fail("--publisher: 1..64 characters A-Z a-z 0-9 . _ -");
        goto done;
    }
    if (out_path == NULL) {
        if (snprintf(def_out, sizeof def_out, "%s.sig", tmpl) >= (int)sizeof def_out) {
            cli_fail("%s: path too long", tmpl);
            goto done;
        }
        out_path = def_out;
    }
    if (!cli_json_file(tmpl, text, CL_SCN_MAX_TEMPLATE + 1, &text_len, cbor,
                       2 * CL_SCN_MAX_TEMPLATE, &cbor_len, err, sizeof err)) {
        cli_fail("%s", err);
        goto done;
    }
    if (text_len > CL_SCN_MAX_TEMPLATE) {
        cli_fail("%s: a template is at most %u bytes", tmpl, CL_SCN_MAX_TEMPLATE);
        goto done;
    }
    if (!cli_json_object(cbor, cbor_len) || !cli_map_tstr(cbor, cbor_len, "scenario", scn,
                                                          sizeof scn)) {
        cli_fail("%s is not a scenario template (an object with \"scenario\": NAME, ...)", tmpl);
        goto done;
    }
    (void)cli_map_tstr(cbor, cbor_len, "version", ver, sizeof ver);
    if (!cli_map_tstr(cbor, cbor_len, "publisher", named, sizeof named)) {
        cli_fail("%s names no publisher: add \"publisher\": \"%s\" to it before signing (the "
                 "signature covers the file's exact bytes)",
                 tmpl, publisher);
        goto done;
    }
    if (strcmp(named, publisher) != 0) {
        cli_fail("%s names the publisher '%s', not '%s': the core would refuse the signature",
                 tmpl, named, publisher);
        goto done;
    }
    if (!may_write(out_path, cli_has(opts, n_opts, "--force"), "--out FILE") ||
        !may_write(pub_out, cli_has(opts, n_opts, "--force"), "--pub-out FILE"))
        goto done;
    if (!cli_ident_open_key(id, keyref, err, sizeof err)) {
        cli_fail("--key: %s", err);
        goto done;
    }
    if (id->crypto.ops->key_export_public(id->crypto.self, id->key, pub, sizeof pub, &pub_len) !=
            CL_OK ||
        pub_len != 65) {
        cli_fail("cannot read the public key of %s", keyref);
        goto done;
    }
    if ((st = cl_scn_sign(&id->crypto, id->key, publisher, strlen(publisher),
                          (const uint8_t *)text, text_len, sig, sizeof sig, &sig_len)) != CL_OK) {
        cli_fail("signing %s failed: %s", tmpl, cl_status_str(st));
        goto done;
    }
    if (!cli_write_file(out_path, sig, sig_len, 0644, cli_has(opts, n_opts, "--force"), err,
                        sizeof err)) {
        cli_fail("%s", err);
        goto done;
    }
    if (pub_out != NULL && !cli_pem_public_write(pub_out, pub, cli_has(opts, n_opts, "--force"),
                                                 err, sizeof err)) {
        cli_fail("--pub-out %s", err);
        goto done;
    }
    cli_key_fingerprint(pub, 65, fp);
    if (cli_has(opts, n_opts, "--json")) {
        printf("{\"template\": ");
        cli_json_str(stdout, tmpl, strlen(tmpl));
        printf(", \"signature\": ");
        cli_json_str(stdout, out_path, strlen(out_path));
        printf(", \"publisher\": \"%s\", \"fingerprint\": \"%s\"}\n", publisher, fp);
    } else {
        printf("signed %s (scenario '%s'%s%s) as publisher '%s'\n", tmpl, scn, ver[0] ? " " : "",
               ver, publisher);
        printf("signature        %s (COSE_Sign1, ES256, %zu bytes; ship it with the template)\n",
               out_path, sig_len);
        printf("key fingerprint  %s\n", fp);
        if (pub_out != NULL)
            printf("public key       %s (owners: cloister publisher add %s --key %s)\n", pub_out,
                   publisher, pub_out);
    }
    rc = CLI_EXIT_OK;
done:
    cli_ident_session_free(id, NULL);
    free(text);
    free(cbor);
    return rc;
}

static int scenario_install(cli_sub_ctx_t *x)
{
    cli_opt_t *opts = x->opts;
    size_t n_opts = x->n_opts;
    uint8_t *out = x->out;
    size_t *out_len = &x->out_len;
    const char *tmpl = x->pos[1];
    const char *instance = cli_val(opts, n_opts, "--name");
    const char *sig_path = cli_val(opts, n_opts, "--signature");
    cli_opt_t *params = cli_opt(opts, n_opts, "--param");
    bool unsigned_ = cli_has(opts, n_opts, "--unsigned");
    char *text = malloc(CL_SCN_MAX_TEMPLATE + 1), err[900], def_sig[CLI_PATH_MAX];
    char scn[80] = "", ver[40] = "", named[80] = "", signer[80] = "";
    uint8_t *cbor = malloc(2 * CL_SCN_MAX_TEMPLATE), sig[SIG_MAX];
    uint8_t *body = malloc(CL_SCN_MAX_TEMPLATE + SIG_MAX + 8192);
    size_t text_len, cbor_len, sig_len = 0, len;
    int rc = CLI_EXIT_ERROR;
    cl_cbor_enc_t e;

    if (text == NULL || cbor == NULL || body == NULL)
        goto done;
    if (instance == NULL || !cli_name_ok(instance)) {
        cli_fail("scenario install: --name INSTANCE (1..64 of A-Z a-z 0-9 . _ -) is required");
        goto done;
    }
    if (unsigned_ && sig_path != NULL) {
        cli_fail("give --signature FILE or --unsigned, not both");
        goto done;
    }
    if (!cli_json_file(tmpl, text, CL_SCN_MAX_TEMPLATE + 1, &text_len, cbor,
                       2 * CL_SCN_MAX_TEMPLATE, &cbor_len, err, sizeof err)) {
        cli_fail("%s", err);
        goto done;
    }
    if (text_len > CL_SCN_MAX_TEMPLATE) {
        cli_fail("%s: a template is at most %u bytes", tmpl, CL_SCN_MAX_TEMPLATE);
        goto done;
    }
    if (!cli_json_object(cbor, cbor_len) ||
        !cli_map_tstr(cbor, cbor_len, "scenario", scn, sizeof scn)) {
        cli_fail("%s is not a scenario template (an object with \"scenario\": NAME, ...)", tmpl);
        goto done;
    }
    (void)cli_map_tstr(cbor, cbor_len, "version", ver, sizeof ver);
    (void)cli_map_tstr(cbor, cbor_len, "publisher", named, sizeof named);
    if (sig_path == NULL && !unsigned_) {
        if (snprintf(def_sig, sizeof def_sig, "%s.sig", tmpl) < (int)sizeof def_sig &&
            cli_exists(def_sig))
            sig_path = def_sig;
    }
    if (sig_path != NULL && !cli_read_file(sig_path, sig, sizeof sig, &sig_len, err, sizeof err)) {
        cli_fail("--signature %s", err);
        goto done;
    }
    if (sig_path != NULL && sig_len == 0) {
        cli_fail("%s is empty (a COSE_Sign1 from `cloister scenario sign` is expected)", sig_path);
        goto done;
    }
    cl_cbor_enc_init(&e, body, CL_SCN_MAX_TEMPLATE + SIG_MAX + 8192);
    cl_cbor_enc_map(&e, 3 + (sig_path != NULL));
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr_z(&e, instance);
    cl_cbor_enc_tstr_z(&e, "template");
    cl_cbor_enc_bstr(&e, (const uint8_t *)text, text_len);
    if (sig_path != NULL) {
        cl_cbor_enc_tstr_z(&e, "signature");
        cl_cbor_enc_bstr(&e, sig, sig_len);
    }
    cl_cbor_enc_tstr_z(&e, "params");
    if (!cli_encode_params(&e, params->vals, params->n, err, sizeof err)) {
        cli_fail("%s", err);
        goto done;
    }
    if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
        cli_fail("the template and its parameters are too large");
        goto done;
    }
    cli_req_t r = {.code = CL_COAP_POST, .path = "/scenarios", .cf = 60, .payload = body,
                   .len = len};
    rc = cli_opts_call(opts, n_opts, "POST /scenarios", &r, false, out, ANSWER_MAX, out_len);
    if (rc != CLI_EXIT_OK) {
        if (cli_core_error_is(out, *out_len, "bad-signature"))
            cli_fail("%s or its signature %s was changed after signing, or was not signed with "
                     "the key registered for publisher '%s' (cloister publisher list); do not "
                     "install it unless you trust its content (--unsigned)",
                     tmpl, sig_path != NULL ? sig_path : "(none)", named[0] ? named : "?");
        else if (cli_core_error_is(out, *out_len, "exists"))
            cli_fail("remove the installed '%s' first (cloister scenario remove %s) or choose "
                     "another --name",
                     instance, instance);
        else if (cli_core_error_is(out, *out_len, "unknown-publisher") ||
                 (sig_path != NULL && cli_core_error_is(out, *out_len, "not-found")))
            cli_fail("register the publisher's key first: cloister publisher add %s --key "
                     "PUB.pem --owner DIR",
                     named[0] ? named : "NAME");
        goto done;
    }
    bool signed_by = cli_map_tstr(out, *out_len, "signed_by", signer, sizeof signer);
    if (cli_has(opts, n_opts, "--json")) {
        rc = cli_print_json(out, *out_len);
        goto done;
    }
    printf("installed scenario '%s'%s%s as '%s'\n", scn, ver[0] ? " " : "", ver, instance);
    if (signed_by)
        printf("signed by   %s (the core verified %s with the key registered for it)\n", signer,
               sig_path);
    else
        printf("signed by   nobody: UNSIGNED template - nobody vouches for its content\n");
    if (params->n > 0) {
        printf("parameters ");
        for (size_t i = 0; i < params->n; i++)
            printf(" %s", params->vals[i]);
        putchar('\n');
    }
    printf("created\n");
    if (print_objects(out, *out_len, "created", "  ") == 0)
        printf("  (nothing)\n");
done:
    free(text);
    free(cbor);
    free(body);
    return rc;
}

/* The template's version: the text "version" of a listing item (the first one otherwise). */
static void template_version(const uint8_t *item, size_t len, char *out, size_t out_size)
{
    cl_cbor_dec_t d;
    size_t n;

    cli_map_show(item, len, "version", out, out_size);
    cl_cbor_dec_init(&d, item, len);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        size_t kl, vl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            return;
        if (kl == 7 && memcmp(k, "version", 7) == 0 && cl_cbor_dec_tstr(&d, &v, &vl) == CL_OK) {
            snprintf(out, out_size, "%.*s", (int)(vl < out_size ? vl : out_size - 1), v);
            return;
        }
        if (cl_cbor_dec_skip(&d) != CL_OK)
            return;
    }
}

static int scenario_list(cli_sub_ctx_t *x)
{
    cl_cbor_dec_t d;
    size_t n;
    int rc;

    if (!cli_opts_list(x, "/scenarios", &d, &n, &rc))
        return rc;
    printf("%-24s %-24s %-8s %s\n", "NAME", "SCENARIO", "VERSION", "SIGNED BY");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *item, *params;
        size_t item_len, params_len;
        char name[80] = "", scn[80] = "", ver[40] = "", pub[80] = "", by[80] = "";
        bool is_signed = false;
        if (cl_cbor_dec_raw(&d, &item, &item_len) != CL_OK)
            break;
        (void)cli_map_tstr(item, item_len, "name", name, sizeof name);
        (void)cli_map_tstr(item, item_len, "scenario", scn, sizeof scn);
        (void)cli_map_tstr(item, item_len, "publisher", pub, sizeof pub);
        (void)cli_map_tstr(item, item_len, "signed_by", by, sizeof by);
        (void)cli_map_bool(item, item_len, "signed", &is_signed);
        template_version(item, item_len, ver, sizeof ver);
        printf("%-24s %-24s %-8s %s\n", name, scn, ver,
               is_signed ? (by[0] ? by : pub) : "(unsigned)");
        if (!is_signed && pub[0])
            printf("    the template names publisher '%s' but was installed unsigned\n", pub);
        if (cli_map_get(item, item_len, "params", &params, &params_len)) {
            printf("    params  ");
            (void)cli_cbor_json(stdout, params, params_len);
            putchar('\n');
        }
        print_objects(item, item_len, "objects", "    ");
    }
    if (n == 0)
        printf("(no scenarios: cloister scenario install TEMPLATE.json --name INSTANCE)\n");
    return CLI_EXIT_OK;
}

/* scenario remove INSTANCE */
static int scenario_remove(cli_sub_ctx_t *x)
{
    cli_opt_t *opts = x->opts;
    size_t n_opts = x->n_opts;
    uint8_t *out = x->out;
    size_t *out_len = &x->out_len;
    const char *name = x->pos[1];
    char path[128], what[160];

    if (!cli_name_ok(name)) {
        cli_fail("'%s' is not a scenario instance name (see cloister scenario list)", name);
        return CLI_EXIT_ERROR;
    }
    snprintf(path, sizeof path, "/scenarios/%s", name);
    snprintf(what, sizeof what, "DELETE %s", path);
    cli_req_t r = {.code = CL_COAP_DELETE, .path = path, .cf = -1};
    int rc = cli_opts_call(opts, n_opts, what, &r, false, out, ANSWER_MAX, out_len);
    if (rc == CLI_EXIT_OK) {
        if (cli_has(opts, n_opts, "--json"))
            return cli_print_json(out, *out_len);
        printf("scenario '%s' removed\n", name);
        print_objects(out, *out_len, "removed", "  ");
    } else if (cli_core_error_is(out, *out_len, "not-found")) {
        cli_fail("no scenario '%s' (cloister scenario list shows them)", name);
    }
    return rc;
}

static const cli_sub_t scenario_subs[] = {
    {"sign",
     "sign TEMPLATE.json --key PRIV.pem|pkcs11:URI --publisher NAME\n"
     "                         [--out FILE] [--force] [--pub-out PUB.pem]",
     "For publishers: signs the template file's exact bytes (detached COSE_Sign1,\n"
     "ES256, kid = NAME) into FILE (default TEMPLATE.json.sig; --force replaces it).\n"
     "The template's \"publisher\" must be NAME. --pub-out writes the public key for\n"
     "the owners (`cloister publisher add NAME --key PUB.pem`). Needs no core.\n",
     "--json --key --publisher --out --force --pub-out", 1, 1, scenario_sign},
    {"install",
     "install TEMPLATE.json --name INSTANCE [--param k=v ...]\n"
     "                         [--signature FILE | --unsigned] --owner DIR [--json]",
     "Installs a template as INSTANCE: its event types, action types and rules (named\n"
     "INSTANCE.RULE), with the template's parameters set by --param k=v (integers,\n"
     "decimals, true/false become numbers and booleans, \"quoted\" or other text stays\n"
     "text; e.g. --param phone=7 --param valves=valves --param eco=17). The signature\n"
     "is FILE, by default TEMPLATE.json.sig when it exists (--unsigned: send none).\n"
     "Everything is checked before anything is created; a signature that does not\n"
     "verify with the registered key of the template's publisher is refused.\n",
     MODEL_OPTS " --name --param --signature --unsigned", 1, 1, scenario_install},
    {"list", "list --owner DIR [--json]",
     "Lists the installed scenarios: template, version, who signed it, what it made.\n",
     MODEL_OPTS, 0, 0, scenario_list},
    {"remove", "remove INSTANCE --owner DIR [--json]",
     "Removes a scenario: its rules, and the types it created that no other rule uses.\n",
     MODEL_OPTS, 1, 1, scenario_remove},
};

static const cli_cmd_spec_t scenario_spec = {
    "scenario", scenario_subs, N_OPTS(scenario_subs),
    "Scenario templates: a publisher's event types, action types and rules, installed\n"
    "by the owner with its own parameters (core/model/scenario.h).\n"};

int cli_cmd_scenario(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--owner", true, false, {0}, 0},    {"--dir", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0},   {"--json", false, false, {0}, 0},
                        {"--key", true, false, {0}, 0},      {"--publisher", true, false, {0}, 0},
                        {"--out", true, false, {0}, 0},      {"--force", false, false, {0}, 0},
                        {"--pub-out", true, false, {0}, 0},  {"--name", true, false, {0}, 0},
                        {"--param", true, true, {0}, 0},     {"--signature", true, false, {0}, 0},
                        {"--unsigned", false, false, {0}, 0}};

    return cli_sub_main(&scenario_spec, argc, argv, opts, N_OPTS(opts));
}
