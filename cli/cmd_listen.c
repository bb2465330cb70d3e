/*
 * cli/cmd_listen.c - `cloister device listen`: the listening half of the
 * device simulator. It receives the actions the core's rules queue for this
 * client (docs/model.md, "Actions and their delivery"), prints each once as
 * it arrives, and acknowledges delivery with a protected POST /actions/ack
 * (a CoAP ACK only says that a datagram arrived; the host could forge that,
 * it cannot forge the OSCORE-protected acknowledgement).
 *
 * coap://  an OSCORE Observe registration on GET /actions (outer FETCH, inner
 *          GET with Observe: 0). Notifications come as CON messages from the
 *          server's address (the socket is connected): each is acknowledged
 *          at once with an Empty ACK echoing its message id, then verified
 *          (OSCORE, in order: cl_oscore_unprotect_response keeps the largest
 *          notification number). The observation is registered again when
 *          nothing arrived for --refresh seconds, when a notification fails to
 *          verify, or when the core ends it; the session is opened again when
 *          the core no longer knows it.
 * http://  a long poll: GET /actions?wait=1 again and again; the core answers
 *          at once when actions are pending, else holds the request until one
 *          is queued or the host's poll timeout (504: poll again).
 *
 * The core notifies unacknowledged actions again (every 30 s), so an action
 * may arrive more than once: it is printed once, acknowledged each time.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "session.h"

#define SEEN_MAX 1024  /* ids already printed (a ring) */
#define ACK_MAX 64     /* ids per POST /actions/ack */
#define BACKOFF_MAX_MS 30000u
#define POLL_NO_OBSERVE_MS 5000u /* when the core did not accept the observation */

typedef struct listener {
    cli_ident_t *id;
    cli_session_t *s;
    const char *server;
    bool json;
    bool verbose;
    uint64_t count;     /* stop after this many actions (0: no limit) */
    uint64_t got;       /* actions printed */
    uint64_t seen[SEEN_MAX];
    size_t n_seen;
    uint64_t ack[ACK_MAX];
    size_t n_ack;
    bool ready;         /* "waiting for actions" was said */
    uint8_t *buf;       /* answers (CLI_PAYLOAD_MAX) */
} listener_t;

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Status lines: stdout for people, stderr with --json (stdout is one action a line). */
static void note(const listener_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(const listener_t *l, const char *fmt, ...)
{
    va_list ap;
    FILE *f = l->json ? stderr : stdout;

    va_start(ap, fmt);
    if (l->json)
        fputs("cloister: ", f);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
}

static bool seen(const listener_t *l, uint64_t id)
{
    size_t n = l->n_seen < SEEN_MAX ? l->n_seen : SEEN_MAX;

    for (size_t i = 0; i < n; i++)
        if (l->seen[i] == id)
            return true;
    return false;
}

/* One action as a line: time, action, properties, rule (or its JSON with --json). */
static void print_action(const listener_t *l, const uint8_t *a, size_t len)
{
    const uint8_t *props;
    size_t props_len;
    int64_t t = 0;
    uint64_t id = 0;
    char when[40], action[80] = "", rule[140] = "";

    if (l->json) {
        (void)cli_cbor_json(stdout, a, len);
        putchar('\n');
        fflush(stdout);
        return;
    }
    (void)cli_map_int(a, len, "time", &t);
    (void)cli_map_uint(a, len, "id", &id);
    (void)cli_map_tstr(a, len, "action", action, sizeof action);
    (void)cli_map_tstr(a, len, "rule", rule, sizeof rule);
    cli_time_iso_ms(when, sizeof when, t);
    printf("%-24s %-20s ", when, action);
    if (cli_map_get(a, len, "properties", &props, &props_len))
        (void)cli_cbor_json(stdout, props, props_len);
    else
        printf("{}");
    printf("  rule %s (id %" PRIu64 ")\n", rule[0] ? rule : "?", id);
    fflush(stdout);
}

/* "<what> refused by the core: 4.03 forbidden: ...<tail>" */
static void say_refused(const char *what, uint8_t code, const uint8_t *p, size_t len,
                        const char *tail)
{
    char c[5], core_err[300];

    cl_coap_code_str(code, c);
    cli_core_error(p, len, core_err, sizeof core_err);
    cli_fail("%s refused by the core: %s %s%s", what, c, core_err, tail);
}

/* POST /actions/ack {"ids": [...]} for what was collected; false when it failed. */
static bool send_ack(listener_t *l)
{
    uint8_t body[16 + ACK_MAX * 9], ans[256];
    size_t len, ans_len;
    uint8_t code;
    char err[600];
    cl_cbor_enc_t e;

    if (l->n_ack == 0)
        return true;
    cl_cbor_enc_init(&e, body, sizeof body);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, "ids");
    cl_cbor_enc_array(&e, l->n_ack);
    for (size_t i = 0; i < l->n_ack; i++)
        cl_cbor_enc_uint(&e, l->ack[i]);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK)
        return false;
    cli_req_t r = {.code = CL_COAP_POST, .path = "/actions/ack", .cf = 60, .payload = body,
                   .len = len};
    bool ok = cli_session_request(l->s, &r, &code, ans, sizeof ans, &ans_len, err, sizeof err);
    if (ok && CL_COAP_CLASS(code) != 2) {
        say_refused("POST /actions/ack", code, ans, ans_len, " (the actions will come again)");
        ok = false;
    } else if (!ok) {
        cli_fail("POST /actions/ack: %s (the actions will come again)", err);
    }
    if (ok)
        l->n_ack = 0;
    return ok;
}

/*
 * {"actions": [...]}: prints the new ones (up to --count), collects every id
 * to acknowledge and acknowledges them. Returns true once --count is reached.
 */
static bool take_actions(listener_t *l, const uint8_t *p, size_t len)
{
    const uint8_t *arr;
    size_t arr_len, n;
    cl_cbor_dec_t d;

    if (!cli_map_get(p, len, "actions", &arr, &arr_len)) {
        cli_fail("the core's answer carries no \"actions\" list; ignored");
        return false;
    }
    cl_cbor_dec_init(&d, arr, arr_len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *a;
        size_t a_len;
        uint64_t id;
        if (l->count > 0 && l->got >= l->count)
            break; /* the rest stays queued for the next listener */
        if (cl_cbor_dec_raw(&d, &a, &a_len) != CL_OK || !cli_map_uint(a, a_len, "id", &id))
            break;
        if (!seen(l, id)) {
            print_action(l, a, a_len);
            l->seen[l->n_seen++ % SEEN_MAX] = id;
            l->got++;
        }
        bool queued = false;
        for (size_t k = 0; k < l->n_ack; k++)
            queued = queued || l->ack[k] == id;
        if (!queued && l->n_ack < ACK_MAX)
            l->ack[l->n_ack++] = id;
        if (l->n_ack == ACK_MAX)
            (void)send_ack(l);
    }
    (void)send_ack(l);
    return l->count > 0 && l->got >= l->count;
}

/* Opens the session again (after the core forgot it); prints and returns an exit code. */
static int reconnect(listener_t *l)
{
    cli_session_close(l->s);
    memset(l->s, 0, sizeof *l->s);
    return cli_ident_connect(l->id, l->server, true, l->s);
}

/* Sleeps up to ms but not past the deadline (0 = none). */
static void pause_ms(uint64_t ms, uint64_t deadline)
{
    uint64_t now = mono_ms();

    if (deadline > 0 && now + ms > deadline)
        ms = deadline > now ? deadline - now : 0;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000u), .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0)
        ; /* interrupted: sleep the rest */
}

/*
 * After a failed exchange: says so, waits (doubling *backoff up to 30 s) and
 * opens the session again. Returns CLI_EXIT_REFUSED when the core refused us.
 */
static int retry_connect(listener_t *l, const char *what, const char *err, uint64_t *backoff,
                         uint64_t deadline)
{
    note(l, "%s: %s; connecting again", what, err);
    pause_ms(*backoff, deadline);
    *backoff = *backoff * 2 < BACKOFF_MAX_MS ? *backoff * 2 : BACKOFF_MAX_MS;
    return reconnect(l) == CLI_EXIT_REFUSED ? CLI_EXIT_REFUSED : CLI_EXIT_OK;
}

/*
 * A non-2.xx answer to GET /actions: said; true (stop, exit 1) for a 4.xx,
 * else false after a pause (try again).
 */
static bool actions_refused(const listener_t *l, uint8_t code, size_t len, uint64_t backoff,
                            uint64_t deadline)
{
    say_refused("GET /actions", code, l->buf, len, "");
    if (CL_COAP_CLASS(code) == 4)
        return true;
    pause_ms(backoff, deadline);
    return false;
}

/* The CoAP half: Observe. Returns an exit code, or -1 when the deadline passed. */
static int listen_coap(listener_t *l, uint64_t deadline, unsigned refresh_ms)
{
    cli_observe_t obs;
    uint64_t last = 0, backoff = 1000;
    size_t len;
    uint8_t code;
    char err[700];
    bool registered = false;

    memset(&obs, 0, sizeof obs);
    for (;;) {
        uint64_t now = mono_ms();
        if (deadline > 0 && now >= deadline)
            return -1;
        if (!registered || now - last >= refresh_ms) {
            cli_req_t r = {.code = CL_COAP_GET, .path = "/actions", .cf = -1, .observe = true};
            if (registered && l->verbose)
                note(l, "nothing for %u s: registering the observation again", refresh_ms / 1000);
            if (!cli_session_observe(l->s, &r, &obs, &code, l->buf, CLI_PAYLOAD_MAX, &len, err,
                                     sizeof err)) {
                if (retry_connect(l, "observe GET /actions", err, &backoff, deadline) !=
                    CLI_EXIT_OK)
                    return CLI_EXIT_REFUSED;
                registered = false;
                continue;
            }
            if (CL_COAP_CLASS(code) != 2) {
                if (actions_refused(l, code, len, backoff, deadline))
                    return CLI_EXIT_REFUSED;
                continue;
            }
            backoff = 1000;
            if (!l->ready)
                note(l, "waiting for actions (observation registered)");
            l->ready = registered = true;
            last = mono_ms();
            if (!obs.active)
                note(l, "the core did not accept the observation; asking again every %u s",
                     POLL_NO_OBSERVE_MS / 1000);
            if (take_actions(l, l->buf, len))
                return CLI_EXIT_OK;
            if (!obs.active) {
                pause_ms(POLL_NO_OBSERVE_MS, deadline);
                registered = false;
            }
            continue;
        }
        uint64_t wait = refresh_ms - (now - last);
        if (deadline > 0 && deadline - now < wait)
            wait = deadline - now;
        switch (cli_session_notification(l->s, &obs, (unsigned)wait, &code, l->buf,
                                         CLI_PAYLOAD_MAX, &len, err, sizeof err)) {
        case CLI_NOTIF_OK:
            last = mono_ms();
            if (CL_COAP_CLASS(code) != 2) {
                char c[5];
                cl_coap_code_str(code, c);
                note(l, "the core ended the observation (%s); registering again", c);
                registered = false;
                break;
            }
            if (take_actions(l, l->buf, len))
                return CLI_EXIT_OK;
            break;
        case CLI_NOTIF_NONE: break;
        case CLI_NOTIF_BAD:
            note(l, "a notification failed verification (%s); registering again", err);
            registered = false;
            break;
        default:
            if (retry_connect(l, "waiting for notifications", err, &backoff, deadline) !=
                CLI_EXIT_OK)
                return CLI_EXIT_REFUSED;
            registered = false;
            break;
        }
    }
}

/* The HTTP half: long poll. Returns an exit code, or -1 when the deadline passed. */
static int listen_http(listener_t *l, uint64_t deadline, unsigned refresh_ms)
{
    uint64_t backoff = 1000;
    size_t len;
    uint8_t code;
    char err[700];

    note(l, "waiting for actions (long poll)");
    for (;;) {
        uint64_t now = mono_ms();
        if (deadline > 0 && now >= deadline)
            return -1;
        /* the host may hold the request up to its poll timeout; we give it refresh_ms */
        l->s->net.hold_ms = refresh_ms;
        if (deadline > 0 && deadline - now < refresh_ms)
            l->s->net.hold_ms = (unsigned)(deadline - now);
        cli_req_t r = {.code = CL_COAP_GET, .path = "/actions", .query = "wait=1", .cf = -1};
        bool ok = cli_session_request(l->s, &r, &code, l->buf, CLI_PAYLOAD_MAX, &len, err,
                                      sizeof err);
        l->s->net.hold_ms = 0;
        if (!ok && l->s->unprotected_code == CL_COAP_CODE(5, 4)) {
            backoff = 1000;
            continue; /* the host's poll timeout: nothing yet */
        }
        if (!ok) {
            if (deadline > 0 && mono_ms() >= deadline)
                return -1;
            if (retry_connect(l, "GET /actions?wait=1", err, &backoff, deadline) != CLI_EXIT_OK)
                return CLI_EXIT_REFUSED;
            continue;
        }
        if (CL_COAP_CLASS(code) != 2) {
            if (actions_refused(l, code, len, backoff, deadline))
                return CLI_EXIT_REFUSED;
            continue;
        }
        backoff = 1000;
        if (take_actions(l, l->buf, len))
            return CLI_EXIT_OK;
    }
}

int cli_device_listen(int argc, char **argv)
{
    cli_opt_t opts[] = {{"--dir", true, false, {0}, 0},     {"--server", true, false, {0}, 0},
                        {"--count", true, false, {0}, 0},   {"--timeout", true, false, {0}, 0},
                        {"--refresh", true, false, {0}, 0}, {"--json", false, false, {0}, 0}};
    const char *pos[1];
    size_t n_pos;
    char err[600];
    uint64_t timeout_s = 0, refresh_s = 60;
    listener_t *l = calloc(1, sizeof *l);
    int rc = CLI_EXIT_ERROR;

    if (l == NULL)
        return CLI_EXIT_ERROR;
    l->id = calloc(1, sizeof *l->id);
    l->s = calloc(1, sizeof *l->s);
    l->buf = malloc(CLI_PAYLOAD_MAX);
    if (l->id == NULL || l->s == NULL || l->buf == NULL)
        goto done;
    switch (cli_parse(argc, argv, 3, opts, N_OPTS(opts), pos, 0, &n_pos, err, sizeof err)) {
    case 0: break;
    case 1:
        printf("usage: cloister device listen --dir DIR [--count N] [--timeout S] [--refresh S]\n"
               "                              [--server URI] [--json]\n"
               "Receives the actions the core's rules send to the client of DIR, prints each\n"
               "as it arrives (time, action, properties, rule; --json: one JSON object a\n"
               "line) and acknowledges its delivery (POST /actions/ack).\n"
               "coap://: an OSCORE Observe registration on GET /actions, registered again\n"
               "after --refresh S (default 60s) without a notification or when one fails\n"
               "to verify; http://: long poll (GET /actions?wait=1, repeated).\n"
               "  --count N    stop after N actions (exit 0)\n"
               "  --timeout S  stop after S (90, 90s, 5m...): exit 1 when --count was not\n"
               "               reached, else 0; without either, listen until interrupted\n");
        rc = CLI_EXIT_OK;
        goto done;
    default: cli_fail("%s", err); goto done;
    }
    const char *dir = cli_val(opts, N_OPTS(opts), "--dir");
    const char *v;
    if (dir == NULL) {
        cli_fail("--dir DIR (the enrolled client's directory) is required");
        goto done;
    }
    if ((v = cli_val(opts, N_OPTS(opts), "--count")) != NULL &&
        !cli_parse_u64(v, 1, 1000000, &l->count)) {
        cli_fail("--count: 1..1000000 actions");
        goto done;
    }
    if ((v = cli_val(opts, N_OPTS(opts), "--timeout")) != NULL &&
        (!cli_parse_duration(v, &timeout_s) || timeout_s == 0 || timeout_s > 31 * 86400)) {
        cli_fail("--timeout: a duration such as 30, 90s, 5m or 1h");
        goto done;
    }
    if ((v = cli_val(opts, N_OPTS(opts), "--refresh")) != NULL &&
        (!cli_parse_duration(v, &refresh_s) || refresh_s < 5 || refresh_s > 3600)) {
        cli_fail("--refresh: 5s..1h");
        goto done;
    }
    l->json = cli_has(opts, N_OPTS(opts), "--json");
    l->verbose = getenv("CLOISTER_VERBOSE") != NULL;
    l->server = cli_val(opts, N_OPTS(opts), "--server");
    uint64_t deadline = timeout_s > 0 ? mono_ms() + timeout_s * 1000u : 0;
    if ((rc = cli_ident_open_session(l->id, dir, l->server, l->s)) != CLI_EXIT_OK)
        goto done;
    const char *name = cli_conf_get(&l->id->conf, "name");
    const char *cid = cli_conf_get(&l->id->conf, "id");
    note(l, "listening for actions as '%s' (client %s) on %s (%s)%s", name ? name : dir,
         cid ? cid : "?", l->server ? l->server : l->id->server,
         l->s->net.http ? "HTTP long poll" : "CoAP Observe",
         l->count > 0 || timeout_s > 0 ? "" : "; Ctrl-C stops");
    rc = l->s->net.http ? listen_http(l, deadline, (unsigned)refresh_s * 1000u)
                        : listen_coap(l, deadline, (unsigned)refresh_s * 1000u);
    if (rc == -1) { /* the deadline */
        if (l->count > 0) {
            cli_fail("timed out after %" PRIu64 " s: %" PRIu64 " of %" PRIu64
                     " action%s arrived (is a rule targeting this client? `cloister rule list`; "
                     "were the events published?)",
                     timeout_s, l->got, l->count, l->count == 1 ? "" : "s");
            rc = CLI_EXIT_REFUSED;
        } else {
            note(l, "%" PRIu64 " action%s in %" PRIu64 " s", l->got, l->got == 1 ? "" : "s",
                 timeout_s);
            rc = CLI_EXIT_OK;
        }
    }
done:
    cli_ident_session_free(l->id, l->s);
    free(l->buf);
    free(l);
    return rc;
}
