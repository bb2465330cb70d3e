/*
 * cli/cmd_rule.c - `cloister action-type add|list|remove` and `cloister rule
 * add|list|show|remove|enable|disable|validate`: the action types rules may
 * emit and the Event-Condition-Action rules themselves (docs/model.md,
 * core/engine/eca.h). People write them as JSON files; the CLI converts them
 * to CBOR (cloister/json.h), reporting JSON mistakes by line and column, and
 * sends them to the core over OSCORE.
 *
 * Versions: `rule add` creates only (if_version 0) unless --replace is given;
 * --if-version N makes a replacement conditional on the version you looked
 * at, so two admins editing one rule cannot overwrite each other silently
 * (4.12 version-conflict, answered with the current version).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "session.h"

#define RULE_DOC_MAX 16384 /* CL_ECA_MAX_RULE_DOC: a rule document as CBOR */
#define EVENT_MAX 4096     /* a sample event as CBOR */
#define ANSWER_MAX (64 * 1024)

/* "/base/NAME[/suffix]" for a checked name; prints and fails on a bad name. */
static bool name_path(char *out, size_t size, const char *base, const char *kind,
                      const char *name, const char *suffix)
{
    if (!cli_name_ok(name)) {
        cli_fail("'%s' is not a valid %s name (1..64 of A-Z a-z 0-9 . _ -)", name, kind);
        return false;
    }
    snprintf(out, size, "%s/%s%s", base, name, suffix != NULL ? suffix : "");
    return true;
}

/* --if-version N (0 = create only); false (printed) when malformed. */
static bool if_version_opt(cli_opt_t *opts, size_t n, bool *given, uint64_t *v)
{
    const char *s = cli_val(opts, n, "--if-version");

    *given = s != NULL;
    if (s != NULL && !cli_parse_u64(s, 0, UINT32_MAX, v)) {
        cli_fail("--if-version: the version number shown by list/show (0 = must not exist)");
        return false;
    }
    return true;
}

/* After a 4.12 version-conflict: what the object's version is and what to do. */
static void conflict_hint(const uint8_t *out, size_t out_len, const char *kind, const char *name,
                          bool replace, bool if_given, uint64_t want)
{
    uint64_t cur = 0;

    if (!cli_core_error_is(out, out_len, "version-conflict"))
        return;
    (void)cli_map_uint(out, out_len, "version", &cur);
    if (!replace && cur > 0)
        cli_fail("%s '%s' exists already (version %" PRIu64 "); to replace it add --replace "
                 "(and --if-version %" PRIu64 " to be sure it is still the version you know)",
                 kind, name, cur, cur);
    else if (if_given && cur == 0)
        cli_fail("%s '%s' does not exist (any more); drop --if-version to create it", kind, name);
    else if (if_given)
        cli_fail("%s '%s' is at version %" PRIu64 ", not %" PRIu64 ": someone changed it since; "
                 "look at it again and retry with --if-version %" PRIu64,
                 kind, name, cur, want, cur);
}

/* The answer's "version" as a line: "rule 'x' created (version 1)". */
static void print_saved(const uint8_t *out, size_t out_len, const char *kind, const char *name,
                        bool json)
{
    uint64_t v = 0;
    bool has = cli_map_uint(out, out_len, "version", &v);

    if (json) {
        printf("{\"name\": ");
        cli_json_str(stdout, name, strlen(name));
        printf(", \"version\": %" PRIu64 "}\n", v);
    } else if (has) {
        printf("%s '%s' %s (version %" PRIu64 ")\n", kind, name, v == 1 ? "created" : "saved", v);
    } else {
        printf("%s '%s' saved\n", kind, name);
    }
}

#define MODEL_OPTS "--owner --dir --server --json"

/*
 * DELETE base/NAME[?if_version=N] ("rule remove", "action-type remove"); prints
 * the outcome. Returns an exit code.
 */
static int remove_object(cli_opt_t *opts, size_t n_opts, const char *base, const char *kind,
                         const char *name, uint8_t *out, size_t *out_len)
{
    char path[128], what[160], query[40];
    uint64_t ifv = 0;
    bool if_given;

    if (!name_path(path, sizeof path, base, kind, name, NULL) ||
        !if_version_opt(opts, n_opts, &if_given, &ifv))
        return CLI_EXIT_ERROR;
    snprintf(query, sizeof query, "if_version=%" PRIu64, ifv);
    snprintf(what, sizeof what, "DELETE %s", path);
    cli_req_t r = {.code = CL_COAP_DELETE, .path = path, .query = if_given ? query : NULL,
                   .cf = -1};
    int rc = cli_opts_call(opts, n_opts, what, &r, false, out, ANSWER_MAX, out_len);
    if (rc == CLI_EXIT_OK) {
        if (cli_has(opts, n_opts, "--json"))
            printf("{\"removed\": \"%s\"}\n", name);
        else
            printf("%s '%s' removed\n", kind, name);
    } else if (cli_core_error_is(out, *out_len, "not-found")) {
        cli_fail("no %s '%s'", kind, name);
    } else {
        conflict_hint(out, *out_len, kind, name, true, if_given, ifv);
    }
    return rc;
}

/* After a refusal: "no rule 'x'" when the core said not-found. Returns rc. */
static int no_rule_hint(const uint8_t *out, size_t out_len, const char *name, int rc)
{
    if (cli_core_error_is(out, out_len, "not-found"))
        cli_fail("no rule '%s' (cloister rule list shows them)", name);
    return rc;
}

/* ------------------------------------------------------------------ action-type */

static int action_type_list(cli_sub_ctx_t *x)
{
    cl_cbor_dec_t d;
    size_t n;
    int rc;

    if (!cli_opts_list(x, "/action-types", &d, &n, &rc))
        return rc;
    printf("%-24s %-8s %-7s %s\n", "NAME", "VERSION", "SCHEMA", "DESCRIPTION");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *item, *sv;
        size_t item_len, sl;
        char name[80] = "", desc[200] = "";
        uint64_t v = 0;
        if (cl_cbor_dec_raw(&d, &item, &item_len) != CL_OK)
            break;
        (void)cli_map_tstr(item, item_len, "name", name, sizeof name);
        (void)cli_map_tstr(item, item_len, "description", desc, sizeof desc);
        (void)cli_map_uint(item, item_len, "version", &v);
        bool has_schema = cli_map_get(item, item_len, "schema", &sv, &sl) && sv[0] != 0xf6;
        printf("%-24s %-8" PRIu64 " %-7s %s\n", name, v, has_schema ? "yes" : "-", desc);
    }
    if (n == 0)
        printf("(no action types yet: cloister action-type add NAME --owner DIR)\n");
    return CLI_EXIT_OK;
}

static int action_type_add(cli_sub_ctx_t *x)
{
    cli_opt_t *opts = x->opts;
    size_t n_opts = x->n_opts;
    uint8_t *out = x->out;
    size_t *out_len = &x->out_len;
    const char *name = x->pos[1];
    const char *desc = cli_val(opts, n_opts, "--description");
    const char *schema_path = cli_val(opts, n_opts, "--schema");
    uint8_t body[1024 + CLI_SCHEMA_MAX], schema[CLI_SCHEMA_MAX];
    size_t schema_len = 0, len;
    char err[900], path[128], what[160];
    uint64_t ifv = 0;
    bool if_given;
    cl_cbor_enc_t e;

    if (!name_path(path, sizeof path, "/action-types", "action type", name, NULL) ||
        !if_version_opt(opts, n_opts, &if_given, &ifv))
        return CLI_EXIT_ERROR;
    if (desc != NULL && strlen(desc) > 512) {
        cli_fail("--description: at most 512 bytes");
        return CLI_EXIT_ERROR;
    }
    if (schema_path != NULL &&
        !cli_schema_file(schema_path, schema, sizeof schema, &schema_len, err, sizeof err)) {
        cli_fail("--schema %s", err);
        return CLI_EXIT_ERROR;
    }
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, (size_t)(desc != NULL) + (schema_path != NULL) + if_given);
    if (desc != NULL) {
        cl_cbor_enc_tstr_z(&e, "description");
        cl_cbor_enc_tstr_z(&e, desc);
    }
    if (schema_path != NULL) {
        cl_cbor_enc_tstr_z(&e, "schema");
        cl_cbor_enc_raw(&e, schema, schema_len);
    }
    if (if_given) {
        cl_cbor_enc_tstr_z(&e, "if_version");
        cl_cbor_enc_uint(&e, ifv);
    }
    if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
        cli_fail("the action type is too large");
        return CLI_EXIT_ERROR;
    }
    snprintf(what, sizeof what, "PUT %s", path);
    cli_req_t r = {.code = CL_COAP_PUT, .path = path, .cf = 60, .payload = body, .len = len};
    int rc = cli_opts_call(opts, n_opts, what, &r, false, out, ANSWER_MAX, out_len);
    if (rc == CLI_EXIT_OK)
        print_saved(out, *out_len, "action type", name, cli_has(opts, n_opts, "--json"));
    else
        conflict_hint(out, *out_len, "action type", name, true, if_given, ifv);
    return rc;
}

static int action_type_remove(cli_sub_ctx_t *x)
{
    int rc = remove_object(x->opts, x->n_opts, "/action-types", "action type", x->pos[1], x->out,
                           &x->out_len);
    if (cli_core_error_is(x->out, x->out_len, "in-use"))
        cli_fail("rules still name '%s': remove or change them first (cloister rule list)",
                 x->pos[1]);
    return rc;
}

static const cli_sub_t action_type_subs[] = {
    {"add",
     "add NAME [--description TEXT] [--schema FILE.json] [--if-version N]\n"
     "                         --owner DIR",
     "Creates or updates an action type: what rules may ask devices to do. --schema: a\n"
     "JSON Schema (subset, core/model/schema.h) the action's properties must satisfy;\n"
     "a rule whose action violates it fails instead of sending it. --if-version N:\n"
     "only if the type is at version N (0: only if it does not exist yet).\n",
     MODEL_OPTS " --description --schema --if-version", 1, 1, action_type_add},
    {"list", "list --owner DIR [--json]",
     "Lists the action types with their version, whether they have a schema, and\n"
     "their description.\n",
     MODEL_OPTS, 0, 0, action_type_list},
    {"remove", "remove NAME [--if-version N] --owner DIR",
     "Removes an action type. Refused (4.09 in-use) while a rule names it.\n",
     MODEL_OPTS " --if-version", 1, 1, action_type_remove},
};

static const cli_cmd_spec_t action_type_spec = {
    "action-type", action_type_subs, N_OPTS(action_type_subs),
    "The action types rules may emit (\"then\": [{\"action\": TYPE, ...}]).\n"};

int cli_cmd_action_type(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--owner", true, false, {0}, 0},       {"--dir", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0},      {"--json", false, false, {0}, 0},
                        {"--description", true, false, {0}, 0}, {"--schema", true, false, {0}, 0},
                        {"--if-version", true, false, {0}, 0}};

    return cli_sub_main(&action_type_spec, argc, argv, opts, N_OPTS(opts));
}

/* ------------------------------------------------------------------ rule */

/* A JSON file -> CBOR into doc (RULE_DOC_MAX); printed failure. */
static bool read_doc(const char *path, const char *what, uint8_t *doc, size_t doc_size,
                     size_t *doc_len)
{
    char err[900];
    char *text = malloc(CLI_JSON_TEXT_MAX);
    size_t text_len;
    bool ok = text != NULL && cli_json_file(path, text, CLI_JSON_TEXT_MAX, &text_len, doc,
                                            doc_size, doc_len, err, sizeof err);

    if (text != NULL && !ok)
        cli_fail("%s", err);
    else if (ok && !cli_json_object(doc, *doc_len)) {
        cli_fail("%s: %s must be a JSON object ({...})", path, what);
        ok = false;
    }
    free(text);
    return ok;
}

/*
 * The sample event of `rule validate` into e: EVENT.json as is, or
 * {"type": T, "properties": PROPS}; --source replaces/sets "source".
 */
static bool enc_event(cl_cbor_enc_t *e, const char *file, const char *type, const char *props,
                      const char *source)
{
    uint8_t buf[EVENT_MAX], pbuf[EVENT_MAX];
    size_t len = 0, plen = 0, n;
    uint64_t src = 0;
    char err[900];
    cl_cbor_dec_t d;

    if (source != NULL && !cli_parse_u64(source, 0, UINT32_MAX, &src)) {
        cli_fail("--source: a client id (see `cloister client list`; 0 = the core)");
        return false;
    }
    if (file != NULL) {
        if (!read_doc(file, "the event", buf, sizeof buf, &len))
            return false;
        char t[80];
        if (!cli_map_tstr(buf, len, "type", t, sizeof t)) {
            cli_fail("%s: the event needs a \"type\" (and \"properties\": {...})", file);
            return false;
        }
        cl_cbor_dec_init(&d, buf, len);
        if (cl_cbor_dec_map(&d, &n) != CL_OK)
            return false;
        size_t keep = 0; /* entries other than "source" when --source replaces it */
        for (size_t i = 0; i < n; i++) {
            const char *k;
            size_t kl;
            if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK || cl_cbor_dec_skip(&d) != CL_OK)
                return false;
            keep += source == NULL || kl != 6 || memcmp(k, "source", 6) != 0;
        }
        cl_cbor_enc_map(e, keep + (source != NULL));
        cl_cbor_dec_init(&d, buf, len);
        if (cl_cbor_dec_map(&d, &n) != CL_OK)
            return false;
        for (size_t i = 0; i < n; i++) {
            const char *k;
            const uint8_t *v;
            size_t kl, vl;
            if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK || cl_cbor_dec_raw(&d, &v, &vl) != CL_OK)
                return false;
            if (source != NULL && kl == 6 && memcmp(k, "source", 6) == 0)
                continue;
            cl_cbor_enc_tstr(e, k, kl);
            cl_cbor_enc_raw(e, v, vl);
        }
    } else {
        if (props != NULL) {
            if (!cli_json_parse("--props", props, strlen(props), pbuf, sizeof pbuf, &plen, err,
                                sizeof err)) {
                cli_fail("%s", err);
                return false;
            }
            if (!cli_json_object(pbuf, plen)) {
                cli_fail("--props: a JSON object, e.g. '{\"ssid\": \"home\", \"rssi\": -60}'");
                return false;
            }
        }
        cl_cbor_enc_map(e, 2 + (source != NULL));
        cl_cbor_enc_tstr_z(e, "type");
        cl_cbor_enc_tstr_z(e, type);
        cl_cbor_enc_tstr_z(e, "properties");
        if (props != NULL)
            cl_cbor_enc_raw(e, pbuf, plen);
        else
            cl_cbor_enc_map(e, 0);
    }
    if (source != NULL) {
        cl_cbor_enc_tstr_z(e, "source");
        cl_cbor_enc_uint(e, src);
    }
    return true;
}

/* One line per item of the array under key: "  <name> -> <target>  <properties>". */
static size_t print_emitted(const uint8_t *ans, size_t len, const char *key, const char *name_key,
                            const char *title)
{
    const uint8_t *arr;
    size_t arr_len, n = 0;
    cl_cbor_dec_t d;

    if (!cli_map_get(ans, len, key, &arr, &arr_len)) {
        printf("%-8s (none)\n", title);
        return 0;
    }
    cl_cbor_dec_init(&d, arr, arr_len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK)
        n = 0;
    if (n == 0)
        printf("%-8s (none)\n", title);
    else
        printf("%-8s %zu\n", title, n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *item, *props;
        size_t item_len, props_len;
        char name[80] = "", target[80] = "";
        if (cl_cbor_dec_raw(&d, &item, &item_len) != CL_OK)
            break;
        (void)cli_map_tstr(item, item_len, name_key, name, sizeof name);
        cli_map_show(item, item_len, "target", target, sizeof target);
        printf("  %s", name);
        if (target[0] != '\0')
            printf(" -> %s", target);
        printf("  ");
        if (cli_map_get(item, item_len, "properties", &props, &props_len))
            (void)cli_cbor_json(stdout, props, props_len);
        putchar('\n');
    }
    return n;
}

static int rule_validate(cli_sub_ctx_t *x)
{
    cli_opt_t *opts = x->opts;
    size_t n_opts = x->n_opts;
    uint8_t *out = x->out;
    size_t *out_len = &x->out_len;
    const char *const *pos = x->pos;
    size_t n_pos = x->n_pos;
    const char *file = cli_val(opts, n_opts, "--file");
    const char *ev_file = cli_val(opts, n_opts, "--event");
    const char *type = cli_val(opts, n_opts, "--type");
    const char *props = cli_val(opts, n_opts, "--props");
    uint8_t *body = malloc(RULE_DOC_MAX + EVENT_MAX + 64), *doc = malloc(RULE_DOC_MAX);
    size_t doc_len = 0, len;
    char path[128], what[160];
    int rc = CLI_EXIT_ERROR;
    cl_cbor_enc_t e;

    if (body == NULL || doc == NULL)
        goto done;
    if ((file == NULL) == (n_pos != 2)) {
        cli_fail("validate: give the rule as NAME (installed) or as --file FILE.json (one of them)");
        goto done;
    }
    if ((ev_file == NULL) == (type == NULL) || (props != NULL && type == NULL)) {
        cli_fail("validate: give the sample event as --event EVENT.json or as --type T "
                 "[--props JSON]");
        goto done;
    }
    if (file != NULL && !read_doc(file, "a rule", doc, RULE_DOC_MAX, &doc_len))
        goto done;
    if (file == NULL && !name_path(path, sizeof path, "/rules", "rule", pos[1], "/validate"))
        goto done;
    cl_cbor_enc_init(&e, body, RULE_DOC_MAX + EVENT_MAX + 64);
    cl_cbor_enc_map(&e, file != NULL ? 2 : 1);
    if (file != NULL) {
        cl_cbor_enc_tstr_z(&e, "rule");
        cl_cbor_enc_raw(&e, doc, doc_len);
    }
    cl_cbor_enc_tstr_z(&e, "event");
    if (!enc_event(&e, ev_file, type, props, cli_val(opts, n_opts, "--source")))
        goto done;
    if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
        cli_fail("the rule and event are too large");
        goto done;
    }
    if (file != NULL)
        snprintf(path, sizeof path, "/rules/validate");
    snprintf(what, sizeof what, "POST %s", path);
    cli_req_t r = {.code = CL_COAP_POST, .path = path, .cf = 60, .payload = body, .len = len};
    if ((rc = cli_opts_call(opts, n_opts, what, &r, false, out, ANSWER_MAX, out_len)) !=
        CLI_EXIT_OK) {
        if (cli_core_error_is(out, *out_len, "bad-rule") && file != NULL)
            cli_fail("fix %s and validate again", file);
        goto done;
    }
    char error[400] = "";
    bool matched = false;
    (void)cli_map_bool(out, *out_len, "matched", &matched);
    (void)cli_map_tstr(out, *out_len, "error", error, sizeof error);
    if (cli_has(opts, n_opts, "--json")) {
        rc = cli_print_json(out, *out_len);
    } else {
        printf("matched  %s\n", matched ? "yes" : "no");
        print_emitted(out, *out_len, "actions", "action", "actions");
        print_emitted(out, *out_len, "events", "type", "events");
        if (error[0] != '\0')
            printf("error    %s\n", error);
    }
    if (rc == CLI_EXIT_OK && error[0] != '\0') {
        cli_fail("the rule's script failed on this event: installed, it would be marked failed");
        rc = CLI_EXIT_REFUSED;
    }
done:
    free(body);
    free(doc);
    return rc;
}

static int rule_list(cli_sub_ctx_t *x)
{
    cl_cbor_dec_t d;
    size_t n;
    int rc;

    if (!cli_opts_list(x, "/rules", &d, &n, &rc))
        return rc;
    printf("%-32s %-8s %-8s %-7s %-8s %s\n", "NAME", "VERSION", "ENABLED", "STATUS", "FIRED",
           "SCENARIO");
    for (size_t i = 0; i < n; i++) {
        const uint8_t *item;
        size_t item_len;
        char name[140] = "", status[16] = "", reason[200] = "", scn[80] = "";
        uint64_t v = 0, fired = 0;
        bool enabled = true;
        if (cl_cbor_dec_raw(&d, &item, &item_len) != CL_OK)
            break;
        (void)cli_map_tstr(item, item_len, "name", name, sizeof name);
        (void)cli_map_tstr(item, item_len, "status", status, sizeof status);
        (void)cli_map_tstr(item, item_len, "reason", reason, sizeof reason);
        (void)cli_map_tstr(item, item_len, "scenario", scn, sizeof scn);
        (void)cli_map_uint(item, item_len, "version", &v);
        (void)cli_map_uint(item, item_len, "fired", &fired);
        (void)cli_map_bool(item, item_len, "enabled", &enabled);
        printf("%-32s %-8" PRIu64 " %-8s %-7s %-8" PRIu64 " %s\n", name, v, enabled ? "yes" : "no",
               status, fired, scn[0] ? scn : "-");
        if (reason[0] != '\0')
            printf("    %s: %s\n", strcmp(status, "failed") == 0 ? "failed" : "reason", reason);
    }
    if (n == 0)
        printf("(no rules yet: cloister rule add FILE.json --owner DIR)\n");
    return CLI_EXIT_OK;
}

static int rule_show(cli_sub_ctx_t *x)
{
    cli_opt_t *opts = x->opts;
    size_t n_opts = x->n_opts;
    uint8_t *out = x->out;
    size_t *out_len = &x->out_len;
    const char *name = x->pos[1];
    char path[128], what[160], status[16] = "", reason[200] = "";
    uint64_t v = 0, fired = 0;
    bool enabled = true;
    const uint8_t *doc, *state;
    size_t doc_len, state_len;

    if (!name_path(path, sizeof path, "/rules", "rule", name, NULL))
        return CLI_EXIT_ERROR;
    snprintf(what, sizeof what, "GET %s", path);
    cli_req_t r = {.code = CL_COAP_GET, .path = path, .cf = -1};
    int rc = cli_opts_call(opts, n_opts, what, &r, true, out, ANSWER_MAX, out_len);
    if (rc != CLI_EXIT_OK)
        return no_rule_hint(out, *out_len, name, rc);
    if (cli_has(opts, n_opts, "--json"))
        return cli_print_json(out, *out_len);
    (void)cli_map_uint(out, *out_len, "version", &v);
    (void)cli_map_uint(out, *out_len, "fired", &fired);
    (void)cli_map_bool(out, *out_len, "enabled", &enabled);
    (void)cli_map_tstr(out, *out_len, "status", status, sizeof status);
    (void)cli_map_tstr(out, *out_len, "reason", reason, sizeof reason);
    char scn[80] = "";
    (void)cli_map_tstr(out, *out_len, "scenario", scn, sizeof scn);
    printf("rule     %s\nversion  %" PRIu64 "\nenabled  %s\n", name, v, enabled ? "yes" : "no");
    if (scn[0] != '\0')
        printf("scenario %s\n", scn);
    if (strcmp(status, "failed") == 0)
        printf("status   FAILED: %s\n         (fix it and `cloister rule add --replace`, or "
               "`cloister rule enable %s` to retry)\n",
               reason[0] ? reason : "(no reason given)", name);
    else
        printf("status   %s\n", status[0] ? status : "?");
    printf("fired    %" PRIu64 "\nstate    ", fired);
    if (cli_map_get(out, *out_len, "state", &state, &state_len) && state[0] != 0xf6)
        (void)cli_cbor_json(stdout, state, state_len);
    else
        printf("(none)");
    printf("\ndocument\n");
    if (cli_map_get(out, *out_len, "rule", &doc, &doc_len) &&
        cli_cbor_json_pretty(stdout, doc, doc_len))
        putchar('\n');
    else
        printf("(missing)\n");
    return CLI_EXIT_OK;
}

/* rule add FILE.json [--replace [--if-version N]] */
static int rule_add(cli_sub_ctx_t *x)
{
    cli_opt_t *opts = x->opts;
    size_t n_opts = x->n_opts;
    uint8_t *out = x->out;
    size_t *out_len = &x->out_len;
    const char *file = x->pos[1];
    uint8_t *doc = malloc(RULE_DOC_MAX), *body = malloc(RULE_DOC_MAX + 64);
    size_t doc_len = 0, len;
    char path[128], what[160], name[80];
    uint64_t ifv = 0;
    bool if_given, replace = cli_has(opts, n_opts, "--replace");
    int rc = CLI_EXIT_ERROR;
    cl_cbor_enc_t e;

    if (doc == NULL || body == NULL || !if_version_opt(opts, n_opts, &if_given, &ifv))
        goto done;
    if (if_given && !replace) {
        cli_fail("--if-version goes with --replace (a new rule is created only if absent)");
        goto done;
    }
    if (!read_doc(file, "a rule", doc, RULE_DOC_MAX, &doc_len))
        goto done;
    if (!cli_map_tstr(doc, doc_len, "name", name, sizeof name) || !cli_name_ok(name)) {
        cli_fail("%s: the rule needs a \"name\" of 1..64 characters A-Z a-z 0-9 . _ -", file);
        goto done;
    }
    cl_cbor_enc_init(&e, body, RULE_DOC_MAX + 64);
    cl_cbor_enc_map(&e, !replace || if_given ? 2 : 1);
    cl_cbor_enc_tstr_z(&e, "rule");
    cl_cbor_enc_raw(&e, doc, doc_len);
    if (!replace || if_given) { /* create only, or only at version N */
        cl_cbor_enc_tstr_z(&e, "if_version");
        cl_cbor_enc_uint(&e, replace ? ifv : 0);
    }
    if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
        cli_fail("%s: the rule is too large (at most %d bytes as CBOR)", file, RULE_DOC_MAX);
        goto done;
    }
    snprintf(path, sizeof path, "/rules/%s", name);
    snprintf(what, sizeof what, "PUT %s", path);
    cli_req_t r = {.code = CL_COAP_PUT, .path = path, .cf = 60, .payload = body, .len = len};
    rc = cli_opts_call(opts, n_opts, what, &r, false, out, ANSWER_MAX, out_len);
    if (rc == CLI_EXIT_OK)
        print_saved(out, *out_len, "rule", name, cli_has(opts, n_opts, "--json"));
    else if (cli_core_error_is(out, *out_len, "bad-rule"))
        cli_fail("fix %s and add it again; `cloister rule validate --file %s --type T` tries a "
                 "rule without installing it",
                 file, file);
    else
        conflict_hint(out, *out_len, "rule", name, replace, if_given, ifv);
done:
    free(doc);
    free(body);
    return rc;
}

/* rule enable|disable NAME */
static int rule_enable(cli_sub_ctx_t *x)
{
    cli_opt_t *opts = x->opts;
    size_t n_opts = x->n_opts;
    uint8_t *out = x->out;
    size_t *out_len = &x->out_len;
    const char *name = x->pos[1];
    bool enable = strcmp(x->pos[0], "enable") == 0;
    char path[128], what[160];
    uint64_t v = 0;

    if (!name_path(path, sizeof path, "/rules", "rule", name, enable ? "/enable" : "/disable"))
        return CLI_EXIT_ERROR;
    snprintf(what, sizeof what, "POST %s", path);
    cli_req_t r = {.code = CL_COAP_POST, .path = path, .cf = -1};
    int rc = cli_opts_call(opts, n_opts, what, &r, false, out, ANSWER_MAX, out_len);
    if (rc != CLI_EXIT_OK)
        return no_rule_hint(out, *out_len, name, rc);
    (void)cli_map_uint(out, *out_len, "version", &v);
    if (cli_has(opts, n_opts, "--json"))
        printf("{\"name\": \"%s\", \"enabled\": %s, \"version\": %" PRIu64 "}\n", name,
               enable ? "true" : "false", v);
    else
        printf("rule '%s' %s (version %" PRIu64 ")\n", name, enable ? "enabled" : "disabled", v);
    return CLI_EXIT_OK;
}

static int rule_remove(cli_sub_ctx_t *x)
{
    return remove_object(x->opts, x->n_opts, "/rules", "rule", x->pos[1], x->out, &x->out_len);
}

static const cli_sub_t rule_subs[] = {
    {"add", "add FILE.json [--replace [--if-version N]] --owner DIR",
     "Installs the rule of FILE.json (a rule document, core/engine/eca.h; its \"name\"\n"
     "names it: PUT /rules/NAME). Without --replace an existing rule of that name is\n"
     "left alone (create only); --replace replaces it (its state starts anew);\n"
     "--if-version N replaces it only while it is at version N (see rule list/show).\n"
     "The core checks every field and the JavaScript before anything is saved.\n",
     MODEL_OPTS " --replace --if-version", 1, 1, rule_add},
    {"list", "list --owner DIR [--json]",
     "Lists the rules: version, enabled, status (ok / failed with the reason), how\n"
     "often they fired since the core started, and the scenario that installed them.\n",
     MODEL_OPTS, 0, 0, rule_list},
    {"show", "show NAME --owner DIR [--json]",
     "Shows one rule: its document, status, and the state its script keeps.\n", MODEL_OPTS, 1,
     1, rule_show},
    {"remove", "remove NAME [--if-version N] --owner DIR", "Removes a rule.\n",
     MODEL_OPTS " --if-version", 1, 1, rule_remove},
    {"enable", "enable NAME --owner DIR",
     "Enables a rule; a rule that failed (script error, limits) runs again.\n", MODEL_OPTS, 1,
     1, rule_enable},
    {"disable", "disable NAME --owner DIR", "Disables a rule: it stays installed, unused.\n",
     MODEL_OPTS, 1, 1, rule_enable},
    {"validate",
     "validate (NAME | --file FILE.json)\n"
     "                         (--event EVENT.json | --type T [--props JSON])\n"
     "                         [--source ID] --owner DIR [--json]",
     "Runs a rule - installed (NAME) or not (--file) - on a sample event in a fresh\n"
     "sandbox, without any effect (no state kept, no action sent, nothing archived),\n"
     "and prints whether it matched, the actions and derived events it would emit, or\n"
     "the script's error (exit 1). The event: EVENT.json ({\"type\", \"properties\",\n"
     "\"source\"?, \"time\"?}) or --type T with --props '{\"k\": 1}' (default {});\n"
     "--source ID sets the client id it comes from (e.g. for \"when\": {\"source\": ...}).\n",
     MODEL_OPTS " --file --event --type --props --source", 0, 1, rule_validate},
};

static const cli_cmd_spec_t rule_spec = {
    "rule", rule_subs, N_OPTS(rule_subs),
    "Event-Condition-Action rules, run inside the core on every published event\n"
    "(docs/model.md; the document format is in core/engine/eca.h).\n"};

int cli_cmd_rule(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--owner", true, false, {0}, 0},   {"--dir", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0},  {"--json", false, false, {0}, 0},
                        {"--replace", false, false, {0}, 0}, {"--if-version", true, false, {0}, 0},
                        {"--file", true, false, {0}, 0},    {"--event", true, false, {0}, 0},
                        {"--type", true, false, {0}, 0},    {"--props", true, false, {0}, 0},
                        {"--source", true, false, {0}, 0}};

    return cli_sub_main(&rule_spec, argc, argv, opts, N_OPTS(opts));
}
