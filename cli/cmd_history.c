/*
 * cmd_history.c - `cloister event-type add|list` and `cloister history`: the
 * event types an admin manages (events of unknown types are refused by the
 * core) and the history query over the encrypted archive, decrypted inside
 * the core and returned over OSCORE (large answers block-wise, inner Block2).
 */
#define _GNU_SOURCE /* strptime, timegm */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "session.h"

#define HISTORY_BODY_MAX (64 * 1024)

/* "a,b" -> CBOR array of text into e */
static bool enc_list(cl_cbor_enc_t *e, const char *list)
{
    size_t n = 1;
    for (const char *q = list; *q; q++)
        n += *q == ',';
    cl_cbor_enc_array(e, n);
    for (const char *p = list; n-- > 0;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return false;
        cl_cbor_enc_tstr(e, p, len);
        p += len + 1;
    }
    return true;
}

int cli_cmd_event_type(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--owner", true, false, {0}, 0},
                        {"--server", true, false, {0}, 0},
                        {"--description", true, false, {0}, 0},
                        {"--history", true, false, {0}, 0},
                        {"--schema", true, false, {0}, 0},
                        {"--json", false, false, {0}, 0}};
    const char *pos[2];
    size_t n_pos, len, out_len, schema_len = 0;
    char err[600];
    uint8_t body[1024 + CLI_SCHEMA_MAX], schema[CLI_SCHEMA_MAX];
    uint8_t *out = malloc(HISTORY_BODY_MAX);
    int rc = CLI_EXIT_ERROR;
    cl_cbor_enc_t e;

    if (out == NULL)
        return CLI_EXIT_ERROR;
    switch (cli_parse(argc, argv, 2, opts, N_OPTS(opts), pos, 2, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister event-type add NAME --owner DIR [--description TEXT]\n"
               "                              [--history admin,user,device,service]\n"
               "                              [--schema FILE.json]\n"
               "       cloister event-type list --owner DIR [--json]\n"
               "       cloister event-type remove NAME --owner DIR\n"
               "Event types the core accepts: events of any other type are refused. --history\n"
               "names the roles that may read the type's history (default admin,user; the\n"
               "owner always may). --schema: a JSON Schema (subset: type, properties,\n"
               "required, additionalProperties, enum, minimum/maximum, minLength/maxLength,\n"
               "items...) the events' properties must satisfy; the core refuses an event that\n"
               "violates it (schema-violation). Adding an existing type updates it. Removing\n"
               "a type is refused while a rule names it; its archived events stay. DIR: the\n"
               "owner's directory or an admin's client directory.\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *dir = cli_val(opts, N_OPTS(opts), "--owner");
    const char *server = cli_val(opts, N_OPTS(opts), "--server");
    bool add = n_pos == 2 && strcmp(pos[0], "add") == 0;
    bool list = n_pos == 1 && strcmp(pos[0], "list") == 0;
    bool remove = n_pos == 2 && strcmp(pos[0], "remove") == 0;
    if ((!add && !list && !remove) || dir == NULL) {
        cli_fail("usage: cloister event-type add NAME | list | remove NAME --owner DIR (try --help)");
        goto done;
    }
    if (remove) {
        char path[128];
        if (snprintf(path, sizeof path, "/event-types/%s", pos[1]) >= (int)sizeof path) {
            cli_fail("event type name too long");
            goto done;
        }
        cli_req_t r = {.code = CL_COAP_DELETE, .path = path, .cf = -1};
        rc = cli_ident_call(dir, server, "DELETE /event-types", &r, false, out, HISTORY_BODY_MAX,
                            &out_len);
        if (rc == CLI_EXIT_OK)
            printf("event type '%s' removed (its archived events stay)\n", pos[1]);
        goto done;
    }
    if (list) {
        cli_req_t r = {.code = CL_COAP_GET, .path = "/event-types", .cf = -1};
        rc = cli_ident_call(dir, server, "GET /event-types", &r, true, out, HISTORY_BODY_MAX, &out_len);
        if (rc != CLI_EXIT_OK)
            goto done;
        if (cli_has(opts, N_OPTS(opts), "--json")) {
            rc = cli_print_json(out, out_len);
            goto done;
        }
        cl_cbor_dec_t d;
        size_t n;
        if (!cli_list_open(&d, out, out_len, &n)) {
            rc = CLI_EXIT_ERROR;
            goto done;
        }
        printf("%-24s %-20s %-6s %s\n", "NAME", "HISTORY", "SCHEMA", "DESCRIPTION");
        for (size_t i = 0; i < n; i++) {
            const uint8_t *item;
            size_t item_len;
            char name[80] = "", desc[160] = "", hist[64];
            if (cl_cbor_dec_raw(&d, &item, &item_len) != CL_OK)
                break;
            (void)cli_map_tstr(item, item_len, "name", name, sizeof name);
            (void)cli_map_tstr(item, item_len, "description", desc, sizeof desc);
            cli_map_list(item, item_len, "history", hist, sizeof hist);
            const uint8_t *sv;
            size_t sl;
            bool has_schema = cli_map_get(item, item_len, "schema", &sv, &sl) && sv[0] != 0xf6;
            printf("%-24s %-20s %-6s %s\n", name, hist[0] ? hist : "(owner only)",
                   has_schema ? "yes" : "-", desc);
        }
        goto done;
    }
    const char *desc = cli_val(opts, N_OPTS(opts), "--description");
    const char *hist = cli_val(opts, N_OPTS(opts), "--history");
    const char *schema_path = cli_val(opts, N_OPTS(opts), "--schema");
    if (schema_path != NULL &&
        !cli_schema_file(schema_path, schema, sizeof schema, &schema_len, err, sizeof err)) {
        cli_fail("--schema %s", err);
        goto done;
    }
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, 1 + (desc != NULL) + (hist != NULL) + (schema_path != NULL));
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr_z(&e, pos[1]);
    if (desc != NULL) {
        cl_cbor_enc_tstr_z(&e, "description");
        cl_cbor_enc_tstr_z(&e, desc);
    }
    if (hist != NULL) {
        cl_cbor_enc_tstr_z(&e, "history");
        if (!enc_list(&e, hist)) {
            cli_fail("--history: comma-separated roles (admin, user, device, service)");
            goto done;
        }
    }
    if (schema_path != NULL) {
        cl_cbor_enc_tstr_z(&e, "schema");
        cl_cbor_enc_raw(&e, schema, schema_len);
    }
    if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
        cli_fail("--description or --history too long");
        goto done;
    }
    cli_req_t r = {.code = CL_COAP_POST, .path = "/event-types", .cf = 60, .payload = body,
                   .len = len};
    rc = cli_ident_call(dir, server, "POST /event-types", &r, false, out, HISTORY_BODY_MAX,
                        &out_len);
    if (rc == CLI_EXIT_OK) {
        uint64_t version = 0;
        bool has_version = cli_map_uint(out, out_len, "version", &version);
        if (cli_has(opts, N_OPTS(opts), "--json")) {
            printf("{\"name\": ");
            cli_json_str(stdout, pos[1], strlen(pos[1]));
            printf(", \"version\": %" PRIu64 "}\n", version);
        } else if (has_version)
            printf("event type '%s' saved (version %" PRIu64 ")%s\n", pos[1], version,
                   schema_path != NULL ? " with its schema" : "");
        else
            printf("event type '%s' saved\n", pos[1]);
    }
done:
    free(out);
    return rc;
}

/* "-1h" (relative to now), "2026-11-22T10:00:00Z", or milliseconds since the epoch. */
static bool parse_when(const char *s, int64_t *ms)
{
    uint64_t d;
    if (s[0] == '-' && cli_parse_duration(s + 1, &d)) {
        *ms = ((int64_t)time(NULL) - (int64_t)d) * 1000;
        return true;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end != NULL && *end == '\0') {
        *ms = (int64_t)timegm(&tm) * 1000;
        return true;
    }
    uint64_t v;
    if (cli_parse_u64(s, 0, INT64_MAX / 2, &v)) {
        *ms = (int64_t)v;
        return true;
    }
    return false;
}

/* One event as a text line: time, id, source, type, properties (as JSON). */
static void print_event(const uint8_t *ev, size_t len)
{
    uint64_t id = 0, source = 0;
    int64_t t = 0;
    char type[80] = "", when[40];
    const uint8_t *props;
    size_t props_len;
    (void)cli_map_uint(ev, len, "id", &id);
    (void)cli_map_uint(ev, len, "source", &source);
    (void)cli_map_int(ev, len, "time", &t);
    (void)cli_map_tstr(ev, len, "type", type, sizeof type);
    cli_time_iso_ms(when, sizeof when, t);
    printf("%-24s %-8" PRIu64 " %-6" PRIu64 " %-16s ", when, id, source, type);
    if (cli_map_get(ev, len, "properties", &props, &props_len))
        (void)cli_cbor_json(stdout, props, props_len);
    putchar('\n');
}

int cli_cmd_history(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--dir", true, false, {0}, 0},    {"--server", true, false, {0}, 0},
                        {"--type", true, false, {0}, 0},   {"--source", true, false, {0}, 0},
                        {"--since", true, false, {0}, 0},  {"--until", true, false, {0}, 0},
                        {"--limit", true, false, {0}, 0},  {"--all", false, false, {0}, 0},
                        {"--json", false, false, {0}, 0}};
    const char *pos[1];
    size_t n_pos, out_len;
    char err[400], query[512];
    uint8_t *out = malloc(HISTORY_BODY_MAX);
    int rc = CLI_EXIT_ERROR;
    int64_t since = 0, until = -1;
    uint64_t after = 0, limit = 20, source = 0, shown = 0;

    if (out == NULL)
        return CLI_EXIT_ERROR;
    switch (cli_parse(argc, argv, 2, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister history --dir DIR [--type T] [--source ID] [--since WHEN]\n"
               "                        [--until WHEN] [--limit N] [--all] [--json]\n"
               "Reads events back from the encrypted archive: the core decrypts them and\n"
               "answers over OSCORE, checking that the client may read each event type.\n"
               "WHEN: -1h / -30m / -2d (relative), 2026-11-22T10:00:00Z, or ms since the epoch.\n"
               "--limit N per page (1..100, default 20); --all follows the pages to the end.\n"
               "DIR: the owner's directory or a client directory.\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *dir = cli_val(opts, N_OPTS(opts), "--dir");
    const char *type = cli_val(opts, N_OPTS(opts), "--type");
    const char *v;
    if (dir == NULL) {
        cli_fail("--dir DIR is required (the owner's directory or a client directory)");
        goto done;
    }
    if ((v = cli_val(opts, N_OPTS(opts), "--source")) != NULL &&
        !cli_parse_u64(v, 0, UINT32_MAX, &source)) {
        cli_fail("--source: a client id (see `cloister client list`)");
        goto done;
    }
    if ((v = cli_val(opts, N_OPTS(opts), "--since")) != NULL && !parse_when(v, &since)) {
        cli_fail("--since: -1h, 2026-11-22T10:00:00Z or ms since the epoch");
        goto done;
    }
    if ((v = cli_val(opts, N_OPTS(opts), "--until")) != NULL && !parse_when(v, &until)) {
        cli_fail("--until: -1h, 2026-11-22T10:00:00Z or ms since the epoch");
        goto done;
    }
    if ((v = cli_val(opts, N_OPTS(opts), "--limit")) != NULL && !cli_parse_u64(v, 1, 100, &limit)) {
        cli_fail("--limit: 1..100");
        goto done;
    }
    bool all = cli_has(opts, N_OPTS(opts), "--json") ? false : cli_has(opts, N_OPTS(opts), "--all");
    bool json = cli_has(opts, N_OPTS(opts), "--json");
    if (!json)
        printf("%-24s %-8s %-6s %-16s %s\n", "TIME (UTC)", "ID", "SOURCE", "TYPE", "PROPERTIES");
    for (int page = 0; page < 10000; page++) {
        int n = snprintf(query, sizeof query, "since=%" PRId64 "&limit=%" PRIu64, since, limit);
        if (after > 0)
            n += snprintf(query + n, sizeof query - (size_t)n, "&after=%" PRIu64, after);
        if (until >= 0)
            n += snprintf(query + n, sizeof query - (size_t)n, "&until=%" PRId64, until);
        if (type != NULL)
            n += snprintf(query + n, sizeof query - (size_t)n, "&type=%s", type);
        if (cli_val(opts, N_OPTS(opts), "--source") != NULL)
            n += snprintf(query + n, sizeof query - (size_t)n, "&source=%" PRIu64, source);
        if (n <= 0 || (size_t)n >= sizeof query) {
            cli_fail("--type too long");
            goto done;
        }
        cli_req_t r = {.code = CL_COAP_GET, .path = "/events", .query = query, .cf = -1};
        rc = cli_ident_call(dir, cli_val(opts, N_OPTS(opts), "--server"), "GET /events", &r, true, out,
                  HISTORY_BODY_MAX, &out_len);
        if (rc != CLI_EXIT_OK)
            goto done;
        if (json) { /* one page, as the core answered it */
            if (!cli_cbor_json(stdout, out, out_len))
                rc = CLI_EXIT_ERROR;
            putchar('\n');
            goto done;
        }
        const uint8_t *evs, *next;
        size_t evs_len, next_len, count = 0;
        if (cli_map_get(out, out_len, "events", &evs, &evs_len)) {
            cl_cbor_dec_t d;
            cl_cbor_dec_init(&d, evs, evs_len);
            if (cl_cbor_dec_array(&d, &count) == CL_OK)
                for (size_t i = 0; i < count; i++) {
                    const uint8_t *ev;
                    size_t ev_len;
                    if (cl_cbor_dec_raw(&d, &ev, &ev_len) != CL_OK)
                        break;
                    print_event(ev, ev_len);
                }
        }
        shown += count;
        uint64_t skipped = 0;
        if (cli_map_uint(out, out_len, "skipped", &skipped) && skipped > 0)
            printf("WARNING: %" PRIu64 " archive rows failed authentication and were skipped "
                   "(the host's storage was tampered with or is corrupt)\n",
                   skipped);
        if (!cli_map_get(out, out_len, "next", &next, &next_len) ||
            !cli_map_int(next, next_len, "since", &since) ||
            !cli_map_uint(next, next_len, "after", &after)) {
            printf("%" PRIu64 " event%s\n", shown, shown == 1 ? "" : "s");
            goto done;
        }
        if (!all) {
            printf("%" PRIu64 " event%s shown; more: --since %" PRId64 " (or --all)\n", shown,
                   shown == 1 ? "" : "s", since);
            goto done;
        }
    }
done:
    free(out);
    return rc;
}
