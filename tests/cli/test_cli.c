/*
 * tests/cli/test_cli.c - unit tests of the `cloister` command's pieces
 * (cli/): option parsing, durations, hex, conf files, --prop encoding, CBOR
 * shown as JSON, the kccs credential, and `cloister owner init` end to end
 * in a temporary directory (file modes, the root certificate checked with
 * cl_pki_check_root, the key matching it, refusal to overwrite); the rules
 * and scenario commands' local side: --help of each, usage errors (exit 2
 * before any network), --param k=v typing, JSON files with line/column
 * errors, PEM public key -> P-256 point, scenario signing files.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/crypto_openssl.h"
#include "cloister/keystore.h"
#include "cloister/oscore.h"
#include "pki.h"
#include "session.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ options */

static int parse(cli_opt_t *opts, size_t n, const char **pos, size_t *n_pos, char *err,
                 size_t err_size, int argc, const char **argv)
{
    return cli_parse(argc, (char **)(uintptr_t)argv, 1, opts, n, pos, 2, n_pos, err, err_size);
}

static void test_parse_options(void **state)
{
    (void)state;
    cli_opt_t opts[] = {{"--dir", true, false, {0}, 0},
                        {"--json", false, false, {0}, 0},
                        {"--prop", true, true, {0}, 0}};
    const char *pos[2];
    size_t n_pos;
    char err[128];
    const char *a1[] = {"x", "list", "--dir", "D", "--json", "--prop=a=1", "--prop", "b=2", "7"};

    assert_int_equal(parse(opts, N(opts), pos, &n_pos, err, sizeof err, (int)N(a1), a1), 0);
    assert_string_equal(cli_val(opts, N(opts), "--dir"), "D");
    assert_true(cli_has(opts, N(opts), "--json"));
    assert_null(cli_val(opts, N(opts), "--json"));
    assert_int_equal(cli_opt(opts, N(opts), "--prop")->n, 2);
    assert_string_equal(cli_opt(opts, N(opts), "--prop")->vals[0], "a=1");
    assert_string_equal(cli_opt(opts, N(opts), "--prop")->vals[1], "b=2");
    assert_int_equal(n_pos, 2);
    assert_string_equal(pos[0], "list");
    assert_string_equal(pos[1], "7");

    const char *a2[] = {"x", "--nope"};
    assert_int_equal(parse(opts, N(opts), pos, &n_pos, err, sizeof err, 2, a2), 2);
    assert_non_null(strstr(err, "unknown option '--nope'"));
    const char *a3[] = {"x", "--dir"};
    assert_int_equal(parse(opts, N(opts), pos, &n_pos, err, sizeof err, 2, a3), 2);
    assert_non_null(strstr(err, "needs a value"));
    const char *a4[] = {"x", "--dir", "a", "--dir", "b"};
    assert_int_equal(parse(opts, N(opts), pos, &n_pos, err, sizeof err, 5, a4), 2);
    assert_non_null(strstr(err, "given twice"));
    const char *a5[] = {"x", "--json=1"};
    assert_int_equal(parse(opts, N(opts), pos, &n_pos, err, sizeof err, 2, a5), 2);
    const char *a6[] = {"x", "--dir", "a", "--help"};
    assert_int_equal(parse(opts, N(opts), pos, &n_pos, err, sizeof err, 4, a6), 1);
    const char *a7[] = {"x", "a", "b", "c"};
    assert_int_equal(parse(opts, N(opts), pos, &n_pos, err, sizeof err, 4, a7), 2);
    const char *a8[] = {"x", "--", "--json"};
    assert_int_equal(parse(opts, N(opts), pos, &n_pos, err, sizeof err, 3, a8), 0);
    assert_false(cli_has(opts, N(opts), "--json"));
    assert_int_equal(n_pos, 1);
    assert_string_equal(pos[0], "--json");
    const char *a9[] = {"x", "--di", "x"}; /* no prefix matching */
    assert_int_equal(parse(opts, N(opts), pos, &n_pos, err, sizeof err, 3, a9), 2);
}

static void test_duration(void **state)
{
    (void)state;
    uint64_t v;

    assert_true(cli_parse_duration("90", &v));
    assert_int_equal(v, 90);
    assert_true(cli_parse_duration("90s", &v));
    assert_int_equal(v, 90);
    assert_true(cli_parse_duration("15m", &v));
    assert_int_equal(v, 900);
    assert_true(cli_parse_duration("1h", &v));
    assert_int_equal(v, 3600);
    assert_true(cli_parse_duration("7d", &v));
    assert_int_equal(v, 604800);
    assert_true(cli_parse_duration("2w", &v));
    assert_int_equal(v, 1209600);
    assert_true(cli_parse_duration("1h30m", &v));
    assert_int_equal(v, 5400);
    assert_false(cli_parse_duration("", &v));
    assert_false(cli_parse_duration("h", &v));
    assert_false(cli_parse_duration("1x", &v));
    assert_false(cli_parse_duration("-1h", &v));
    assert_false(cli_parse_duration("1 h", &v));
    assert_false(cli_parse_duration("99999999999999999999", &v));
    assert_false(cli_parse_duration("9999999999999999999w", &v));
}

static void test_numbers_hex(void **state)
{
    (void)state;
    uint64_t v;
    uint8_t b[4];
    size_t n;
    char hex[9];

    assert_true(cli_parse_u64("42", 1, 100, &v));
    assert_int_equal(v, 42);
    assert_false(cli_parse_u64("0", 1, 100, &v));
    assert_false(cli_parse_u64("101", 1, 100, &v));
    assert_false(cli_parse_u64("4x", 1, 100, &v));
    assert_false(cli_parse_u64("-4", 0, 100, &v));
    assert_false(cli_parse_u64("", 0, 100, &v));
    assert_true(cli_hex_decode("0xDEadBe", b, sizeof b, &n));
    assert_int_equal(n, 3);
    assert_int_equal(b[0], 0xde);
    assert_int_equal(b[2], 0xbe);
    assert_false(cli_hex_decode("abc", b, sizeof b, &n));
    assert_false(cli_hex_decode("zz", b, sizeof b, &n));
    assert_false(cli_hex_decode("0011223344", b, sizeof b, &n));
    cli_hex(hex, sizeof hex, b, 3);
    assert_string_equal(hex, "deadbe");
}

/* ------------------------------------------------------------------ files */

static char tmpdir[256];

static int make_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cl_test_cli_XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_conf_roundtrip(void **state)
{
    (void)state;
    char path[300], err[256];
    cli_conf_t c, d;
    struct stat sb;

    snprintf(path, sizeof path, "%s/x.conf", tmpdir);
    memset(&c, 0, sizeof c);
    assert_true(cli_conf_set(&c, "server", "coap://127.0.0.1:5683"));
    assert_true(cli_conf_set(&c, "key", "pkcs11:token=t;object=o"));
    assert_true(cli_conf_set(&c, "server", "coap://[::1]:1")); /* replaces */
    assert_int_equal(c.n, 2);
    assert_true(cli_conf_write(&c, path, "test", false, err, sizeof err));
    assert_false(cli_conf_write(&c, path, "test", false, err, sizeof err)); /* never overwrites */
    assert_non_null(strstr(err, "exists already"));
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_true(cli_conf_read(&d, path, err, sizeof err));
    assert_string_equal(cli_conf_get(&d, "server"), "coap://[::1]:1");
    assert_string_equal(cli_conf_get(&d, "key"), "pkcs11:token=t;object=o");
    assert_null(cli_conf_get(&d, "nope"));
    assert_true(cli_conf_set(&d, "key", "other"));
    assert_true(cli_conf_write(&d, path, "test", true, err, sizeof err)); /* replace mode */
    assert_true(cli_conf_read(&c, path, err, sizeof err));
    assert_string_equal(cli_conf_get(&c, "key"), "other");
}

/* ------------------------------------------------------------------ CBOR */

static void test_prop_encoding(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t len;
    cl_cbor_enc_t e;
    char out[512];
    FILE *f = fmemopen(out, sizeof out, "w");

    assert_non_null(f);
    cl_cbor_enc_init(&e, buf, sizeof buf);
    cl_cbor_enc_map(&e, 6);
    assert_true(cli_encode_prop(&e, "on=true"));
    assert_true(cli_encode_prop(&e, "n=-42"));
    assert_true(cli_encode_prop(&e, "t=21.5"));
    assert_true(cli_encode_prop(&e, "s=\"17\""));
    assert_true(cli_encode_prop(&e, "room=kitchen"));
    assert_true(cli_encode_prop(&e, "empty="));
    assert_false(cli_encode_prop(&e, "=x"));
    assert_false(cli_encode_prop(&e, "novalue"));
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_true(cli_cbor_json(f, buf, len));
    fclose(f);
    assert_string_equal(out, "{\"on\": true, \"n\": -42, \"t\": 21.5, \"s\": \"17\", \"room\": "
                             "\"kitchen\", \"empty\": \"\"}");
}

static void test_map_helpers(void **state)
{
    (void)state;
    uint8_t buf[128], tok[3] = {1, 2, 3};
    size_t len, bl;
    const uint8_t *b;
    cl_cbor_enc_t e;
    char t[16], err[128];
    uint64_t u;
    int64_t i;

    cl_cbor_enc_init(&e, buf, sizeof buf);
    cl_cbor_enc_map(&e, 5);
    cl_cbor_enc_uint(&e, 1); /* a non-text key is skipped */
    cl_cbor_enc_uint(&e, 2);
    cl_cbor_enc_tstr_z(&e, "token");
    cl_cbor_enc_bstr(&e, tok, 3);
    cl_cbor_enc_tstr_z(&e, "id");
    cl_cbor_enc_uint(&e, 7);
    cl_cbor_enc_tstr_z(&e, "error");
    cl_cbor_enc_tstr_z(&e, "forbidden");
    cl_cbor_enc_tstr_z(&e, "message");
    cl_cbor_enc_tstr_z(&e, "not for you\n");
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_true(cli_map_bstr(buf, len, "token", &b, &bl));
    assert_int_equal(bl, 3);
    assert_memory_equal(b, tok, 3);
    assert_true(cli_map_uint(buf, len, "id", &u));
    assert_int_equal(u, 7);
    assert_true(cli_map_int(buf, len, "id", &i));
    assert_false(cli_map_uint(buf, len, "token", &u));
    assert_false(cli_map_tstr(buf, len, "missing", t, sizeof t));
    assert_true(cli_map_tstr(buf, len, "message", t, sizeof t));
    assert_string_equal(t, "not for you?"); /* control characters never reach a terminal */
    cli_core_error(buf, len, err, sizeof err);
    assert_string_equal(err, "forbidden: not for you?");
    cli_core_error((const uint8_t *)"\xff", 1, err, sizeof err);
    assert_string_equal(err, "");
    assert_false(cli_cbor_json(stderr, (const uint8_t *)"\x82\x01", 2)); /* truncated */
}

static void test_kccs(void **state)
{
    (void)state;
    uint8_t pub[65], out[CLI_CCS_MAX];
    size_t len, n;
    cl_cbor_dec_t d;
    uint64_t k;
    int64_t v;
    const char *s;
    const uint8_t *x;
    size_t sl, xl;

    pub[0] = 0x04;
    for (int i = 1; i < 65; i++)
        pub[i] = (uint8_t)i;
    assert_true(cli_ccs_encode(pub, "dev-1", out, sizeof out, &len));
    cl_cbor_dec_init(&d, out, len);
    assert_int_equal(cl_cbor_dec_map(&d, &n), CL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(cl_cbor_dec_uint(&d, &k), CL_OK);
    assert_int_equal(k, 2);
    assert_int_equal(cl_cbor_dec_tstr(&d, &s, &sl), CL_OK);
    assert_int_equal(sl, 5);
    assert_int_equal(cl_cbor_dec_uint(&d, &k), CL_OK);
    assert_int_equal(k, 8);
    assert_int_equal(cl_cbor_dec_map(&d, &n), CL_OK);
    assert_int_equal(cl_cbor_dec_uint(&d, &k), CL_OK);
    assert_int_equal(k, 1);
    assert_int_equal(cl_cbor_dec_map(&d, &n), CL_OK);
    assert_int_equal(n, 4);
    assert_int_equal(cl_cbor_dec_int(&d, &v), CL_OK); /* kty */
    assert_int_equal(v, 1);
    assert_int_equal(cl_cbor_dec_int(&d, &v), CL_OK);
    assert_int_equal(v, 2); /* EC2 */
    assert_int_equal(cl_cbor_dec_int(&d, &v), CL_OK); /* crv */
    assert_int_equal(v, -1);
    assert_int_equal(cl_cbor_dec_int(&d, &v), CL_OK);
    assert_int_equal(v, 1); /* P-256 */
    assert_int_equal(cl_cbor_dec_int(&d, &v), CL_OK);
    assert_int_equal(v, -2);
    assert_int_equal(cl_cbor_dec_bstr(&d, &x, &xl), CL_OK);
    assert_memory_equal(x, pub + 1, 32);
    assert_int_equal(cl_cbor_dec_int(&d, &v), CL_OK);
    assert_int_equal(v, -3);
    assert_int_equal(cl_cbor_dec_bstr(&d, &x, &xl), CL_OK);
    assert_memory_equal(x, pub + 33, 32);
    assert_true(cl_cbor_dec_at_end(&d));
    pub[0] = 0x02;
    assert_false(cli_ccs_encode(pub, "dev-1", out, sizeof out, &len));
}

/* ------------------------------------------------------------------ owner init */

static int run(int argc, const char **argv)
{
    return cli_cmd_owner(argc, (char **)(uintptr_t)argv);
}

static unsigned mode_of(const char *dir, const char *name)
{
    char path[400];
    struct stat sb;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &sb) != 0)
        return 0;
    return (unsigned)(sb.st_mode & 07777);
}

static void test_owner_init(void **state)
{
    (void)state;
    char dir[300], path[400], err[256];
    uint8_t der[CLI_CERT_MAX], pub[65];
    size_t len, pub_len;
    cl_pki_cert_info_t info;
    cli_conf_t conf;

    snprintf(dir, sizeof dir, "%s/owner", tmpdir);
    const char *argv[] = {"cloister", "owner", "init", "--dir", dir, "--name", "Test Owner",
                          "--days", "30"};
    assert_int_equal(run((int)N(argv), argv), CLI_EXIT_OK);
    assert_int_equal(mode_of(dir, "."), 0700);
    assert_int_equal(mode_of(dir, "owner.key"), 0600);
    assert_int_equal(mode_of(dir, "owner.conf"), 0600);
    assert_int_equal(mode_of(dir, "owner.pem"), 0644);

    snprintf(path, sizeof path, "%s/owner.pem", dir);
    assert_true(cli_cert_read(path, der, sizeof der, &len, err, sizeof err));
    assert_int_equal(cl_pki_check_root(der, len, (int64_t)time(NULL)), CL_OK);
    assert_int_equal(cl_pki_cert_parse(der, len, &info), CL_OK);
    assert_string_equal(info.cn, "Test Owner");
    assert_true(info.is_ca);
    assert_true(info.self_issued);
    assert_true(info.not_after - info.not_before >= 30 * 86400);
    assert_true(info.not_after - info.not_before <= 30 * 86400 + 600);

    /* The key in the file is the certificate's, and owner.conf names it. */
    snprintf(path, sizeof path, "%s/owner.key", dir);
    assert_int_equal(cl_keystore_file_public(path, NULL, pub, sizeof pub, &pub_len, err, sizeof err),
                     CL_OK);
    assert_int_equal(pub_len, 65);
    assert_memory_equal(pub, info.pub, 65);
    snprintf(path, sizeof path, "%s/owner.conf", dir);
    assert_true(cli_conf_read(&conf, path, err, sizeof err));
    assert_non_null(cli_conf_get(&conf, "key"));
    assert_int_equal(cli_conf_get(&conf, "key")[0], '/'); /* absolute */
    assert_non_null(strstr(cli_conf_get(&conf, "key"), "owner.key"));

    /* Loading it as an identity works (the key is usable for signing). */
    cli_ident_t *id = calloc(1, sizeof *id);
    assert_non_null(id);
    assert_true(cli_ident_load(id, dir, false, err, sizeof err));
    assert_true(id->owner);
    assert_int_equal(id->cert_len, len);
    cli_ident_free(id);
    assert_false(cli_ident_load(id, dir, true, err, sizeof err)); /* not provisioned yet */
    assert_non_null(strstr(err, "cloister provision"));
    cli_ident_free(id);
    free(id);

    /* A second init refuses and leaves everything as it was. */
    uint8_t again[CLI_CERT_MAX];
    size_t again_len;
    assert_int_equal(run((int)N(argv), argv), CLI_EXIT_ERROR);
    snprintf(path, sizeof path, "%s/owner.pem", dir);
    assert_true(cli_cert_read(path, again, sizeof again, &again_len, err, sizeof err));
    assert_int_equal(again_len, len);
    assert_memory_equal(again, der, len);

    /* Only the key file exists (e.g. an interrupted run): still refused, key kept. */
    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/owner2", tmpdir);
    assert_int_equal(mkdir(dir2, 0700), 0);
    snprintf(path, sizeof path, "%s/owner.key", dir2);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    const char *argv2[] = {"cloister", "owner", "init", "--dir", dir2};
    assert_int_equal(run((int)N(argv2), argv2), CLI_EXIT_ERROR);
    assert_true(cli_exists(path));
    snprintf(path, sizeof path, "%s/owner.pem", dir2);
    assert_false(cli_exists(path));
}

static void test_owner_init_usage(void **state)
{
    (void)state;
    char dir[300], keyfile[400], path[400];

    snprintf(dir, sizeof dir, "%s/owner3", tmpdir);
    const char *no_dir[] = {"cloister", "owner", "init"};
    assert_int_equal(run((int)N(no_dir), no_dir), CLI_EXIT_ERROR);
    const char *bad_days[] = {"cloister", "owner", "init", "--dir", dir, "--days", "0"};
    assert_int_equal(run((int)N(bad_days), bad_days), CLI_EXIT_ERROR);
    const char *bad_key[] = {"cloister", "owner", "init", "--dir", dir, "--key", "/some/file"};
    assert_int_equal(run((int)N(bad_key), bad_key), CLI_EXIT_ERROR);
    const char *both[] = {"cloister", "owner", "init", "--dir", dir, "--key", "pkcs11:token=a",
                          "--key-file", "x"};
    assert_int_equal(run((int)N(both), both), CLI_EXIT_ERROR);
    const char *help[] = {"cloister", "owner", "init", "--help"};
    assert_int_equal(run((int)N(help), help), CLI_EXIT_OK);
    const char *unknown[] = {"cloister", "owner", "frobnicate"};
    assert_int_equal(run((int)N(unknown), unknown), CLI_EXIT_ERROR);
    assert_false(cli_exists(dir)); /* no usage error created anything */

    /* --key-file elsewhere: the key goes there, the rest into --dir. */
    snprintf(keyfile, sizeof keyfile, "%s/elsewhere.key", tmpdir);
    const char *kf[] = {"cloister", "owner", "init", "--dir", dir, "--key-file", keyfile};
    assert_int_equal(run((int)N(kf), kf), CLI_EXIT_OK);
    assert_int_equal(mode_of(tmpdir, "elsewhere.key"), 0600);
    snprintf(path, sizeof path, "%s/owner.key", dir);
    assert_false(cli_exists(path));
    snprintf(path, sizeof path, "%s/owner.pem", dir);
    assert_true(cli_exists(path));
}

/* ------------------------------------------------------------------ rules and scenarios */

/* Runs a command with stdout and stderr captured into out (NUL-terminated); returns its exit code. */
static int capture(int (*fn)(int, char **), int argc, const char *const *argv, char *out,
                   size_t out_size)
{
    char path[300];
    int saved_out = dup(1), saved_err = dup(2), fd, rc;
    ssize_t n;

    snprintf(path, sizeof path, "%s/capture.txt", tmpdir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && saved_out >= 0 && saved_err >= 0);
    fflush(stdout);
    fflush(stderr);
    dup2(fd, 1);
    dup2(fd, 2);
    rc = fn(argc, (char **)(uintptr_t)argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    n = pread(fd, out, out_size - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_model_help(void **state)
{
    (void)state;
    static const struct {
        int (*fn)(int, char **);
        const char *argv[4];
        const char *expect;
    } cases[] = {
        {cli_cmd_action_type, {"cloister", "action-type", "--help"}, "action-type remove NAME"},
        {cli_cmd_action_type, {"cloister", "action-type", "add", "--help"}, "--schema FILE.json"},
        {cli_cmd_action_type, {"cloister", "action-type", "list", "--help"}, "list --owner DIR"},
        {cli_cmd_action_type, {"cloister", "action-type", "remove", "--help"}, "4.09 in-use"},
        {cli_cmd_event_type, {"cloister", "event-type", "--help"}, "--schema FILE.json"},
        {cli_cmd_client, {"cloister", "client", "--help"}, "groups ID [GROUP...]"},
        {cli_cmd_rule, {"cloister", "rule", "--help"}, "rule validate"},
        {cli_cmd_rule, {"cloister", "rule", "add", "--help"}, "--if-version N"},
        {cli_cmd_rule, {"cloister", "rule", "list", "--help"}, "status"},
        {cli_cmd_rule, {"cloister", "rule", "show", "--help"}, "state"},
        {cli_cmd_rule, {"cloister", "rule", "remove", "--help"}, "remove NAME"},
        {cli_cmd_rule, {"cloister", "rule", "enable", "--help"}, "runs again"},
        {cli_cmd_rule, {"cloister", "rule", "disable", "--help"}, "disable NAME"},
        {cli_cmd_rule, {"cloister", "rule", "validate", "--help"}, "--props JSON"},
        {cli_cmd_publisher, {"cloister", "publisher", "--help"}, "publisher list"},
        {cli_cmd_publisher, {"cloister", "publisher", "add", "--help"}, "fingerprint"},
        {cli_cmd_publisher, {"cloister", "publisher", "list", "--help"}, "list --owner DIR"},
        {cli_cmd_scenario, {"cloister", "scenario", "--help"}, "scenario remove INSTANCE"},
        {cli_cmd_scenario, {"cloister", "scenario", "sign", "--help"}, "COSE_Sign1"},
        {cli_cmd_scenario, {"cloister", "scenario", "install", "--help"}, "TEMPLATE.json.sig"},
        {cli_cmd_scenario, {"cloister", "scenario", "list", "--help"}, "who signed it"},
        {cli_cmd_scenario, {"cloister", "scenario", "remove", "--help"}, "no other rule uses"},
        {cli_cmd_device, {"cloister", "device", "--help"}, "device listen"},
        {cli_cmd_device, {"cloister", "device", "listen", "--help"}, "POST /actions/ack"},
    };
    char out[8192];

    for (size_t i = 0; i < N(cases); i++) {
        int argc = 0;
        while (argc < 4 && cases[i].argv[argc] != NULL)
            argc++;
        int rc = capture(cases[i].fn, argc, cases[i].argv, out, sizeof out);
        if (rc != CLI_EXIT_OK || strstr(out, cases[i].expect) == NULL)
            fail_msg("%s %s: exit %d, expected '%s' in:\n%s", cases[i].argv[1],
                     cases[i].argv[2], rc, cases[i].expect, out);
    }
    /* the sign help is about keys, not identities */
    const char *sign[] = {"cloister", "scenario", "sign", "--help"};
    assert_int_equal(capture(cli_cmd_scenario, 4, sign, out, sizeof out), CLI_EXIT_OK);
    assert_null(strstr(out, "Identity:"));
}

/* Usage errors: exit 2 with a message, before any file is read beyond the arguments or any
 * network is touched (no directory needed). */
static void test_model_usage(void **state)
{
    (void)state;
    char rule[300], out[4096];
    snprintf(rule, sizeof rule, "%s/ok-rule.json", tmpdir);
    write_text(rule, "{\"name\": \"r1\", \"on\": [\"t\"], \"then\": []}\n");
    const struct {
        int (*fn)(int, char **);
        const char *argv[10];
        const char *expect;
    } cases[] = {
        {cli_cmd_rule, {"cloister", "rule"}, "usage: cloister rule add"},
        {cli_cmd_rule, {"cloister", "rule", "frobnicate"}, "usage:"},
        {cli_cmd_rule, {"cloister", "rule", "show"}, "usage:"},
        {cli_cmd_rule, {"cloister", "rule", "list", "extra"}, "usage:"},
        {cli_cmd_rule, {"cloister", "rule", "list", "--replace", "--owner", "x"},
         "--replace is not an option of `cloister rule list`"},
        {cli_cmd_rule, {"cloister", "rule", "add", rule, "--if-version", "2", "--owner", "x"},
         "--if-version goes with --replace"},
        {cli_cmd_rule, {"cloister", "rule", "add", rule, "--replace", "--if-version", "x"},
         "--if-version: the version number"},
        {cli_cmd_rule, {"cloister", "rule", "add", rule}, "--owner DIR"},
        {cli_cmd_rule, {"cloister", "rule", "show", "no/slash", "--owner", "x"},
         "not a valid rule name"},
        {cli_cmd_rule, {"cloister", "rule", "validate", "r1", "--owner", "x"},
         "--event EVENT.json or as --type T"},
        {cli_cmd_rule, {"cloister", "rule", "validate", "--type", "t", "--owner", "x"},
         "as NAME (installed) or as --file"},
        {cli_cmd_rule, {"cloister", "rule", "validate", "r1", "--file", rule, "--type", "t"},
         "one of them"},
        {cli_cmd_rule,
         {"cloister", "rule", "validate", "r1", "--type", "t", "--props", "[1]", "--owner", "x"},
         "--props: a JSON object"},
        {cli_cmd_rule,
         {"cloister", "rule", "validate", "r1", "--type", "t", "--source", "-1", "--owner", "x"},
         "--source: a client id"},
        {cli_cmd_action_type, {"cloister", "action-type", "add", "bad name", "--owner", "x"},
         "not a valid action type name"},
        {cli_cmd_action_type, {"cloister", "action-type", "remove"}, "usage:"},
        {cli_cmd_action_type,
         {"cloister", "action-type", "add", "eco", "--schema", "/nonexistent.json"},
         "cannot read /nonexistent.json"},
        {cli_cmd_client, {"cloister", "client", "groups", "7", "ok", "bad/group", "--owner", "x"},
         "'bad/group' is not a group name"},
        {cli_cmd_client, {"cloister", "client", "groups", "7", "a", "@a", "--owner", "x"},
         "'a' given twice"},
        {cli_cmd_client, {"cloister", "client", "groups", "seven", "--owner", "x"},
         "ID is the number"},
        {cli_cmd_publisher, {"cloister", "publisher", "add", "acme", "--owner", "x"},
         "--key PUB.pem"},
        {cli_cmd_publisher, {"cloister", "publisher", "add", "a b", "--key", "k"},
         "not a valid publisher name"},
        {cli_cmd_scenario, {"cloister", "scenario", "install", rule, "--owner", "x"},
         "--name INSTANCE"},
        {cli_cmd_scenario,
         {"cloister", "scenario", "install", rule, "--name", "i", "--unsigned", "--signature",
          "s"},
         "not both"},
        {cli_cmd_scenario, {"cloister", "scenario", "install", rule, "--name", "i"},
         "not a scenario template"},
        {cli_cmd_scenario, {"cloister", "scenario", "sign", rule, "--owner", "x"},
         "--owner is not an option of `cloister scenario sign`"},
        {cli_cmd_scenario, {"cloister", "scenario", "sign", rule}, "--publisher NAME"},
        {cli_cmd_scenario, {"cloister", "scenario", "remove", "a/b", "--owner", "x"},
         "not a scenario instance name"},
        {cli_cmd_device, {"cloister", "device", "listen"}, "--dir DIR"},
        {cli_cmd_device, {"cloister", "device", "listen", "--dir", "d", "--count", "0"},
         "--count: 1.."},
        {cli_cmd_device, {"cloister", "device", "listen", "--dir", "d", "--timeout", "soon"},
         "--timeout: a duration"},
        {cli_cmd_device, {"cloister", "device", "listen", "--dir", "d", "--refresh", "1"},
         "--refresh: 5s..1h"},
        {cli_cmd_device, {"cloister", "device", "listen", "--dir", "d", "--type", "t"},
         "unknown option '--type'"},
    };

    for (size_t i = 0; i < N(cases); i++) {
        int argc = 0;
        while (argc < 10 && cases[i].argv[argc] != NULL)
            argc++;
        int rc = capture(cases[i].fn, argc, cases[i].argv, out, sizeof out);
        if (rc != CLI_EXIT_ERROR || strstr(out, cases[i].expect) == NULL)
            fail_msg("case %zu (%s %s): exit %d, expected 2 and '%s' in:\n%s", i,
                     cases[i].argv[1], cases[i].argv[2] ? cases[i].argv[2] : "", rc,
                     cases[i].expect, out);
    }
}

static void test_params(void **state)
{
    (void)state;
    const char *kv[] = {"phone=7",  "eco=17.5",  "notify=true", "away=false", "ssid=home",
                        "neg=-3",   "exp=1e3",   "hex=0x10",    "inf=inf",    "q=\"42\"",
                        "empty=",   "sp=a b",    "nan=-nan"};
    uint8_t buf[512];
    size_t len;
    char out[1024], err[256];
    cl_cbor_enc_t e;
    FILE *f = fmemopen(out, sizeof out, "w");

    assert_non_null(f);
    cl_cbor_enc_init(&e, buf, sizeof buf);
    assert_true(cli_encode_params(&e, kv, N(kv), err, sizeof err));
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_true(cli_cbor_json(f, buf, len));
    fclose(f);
    assert_string_equal(out, "{\"phone\": 7, \"eco\": 17.5, \"notify\": true, \"away\": false, "
                             "\"ssid\": \"home\", \"neg\": -3, \"exp\": 1000, \"hex\": \"0x10\", "
                             "\"inf\": \"inf\", \"q\": \"42\", \"empty\": \"\", \"sp\": \"a b\", "
                             "\"nan\": \"-nan\"}");
    /* 1e3 is a float 1000.0 in CBOR (shown as 1000), not the integer 1000 */
    const char *one[] = {"x=1e3"};
    cl_cbor_enc_init(&e, buf, sizeof buf);
    assert_true(cli_encode_params(&e, one, 1, err, sizeof err));
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_true(len > 3 && (buf[3] & 0xe0) == 0xe0); /* major type 7: a float */

    const char *dup[] = {"a=1", "b=2", "a=3"};
    cl_cbor_enc_init(&e, buf, sizeof buf);
    assert_false(cli_encode_params(&e, dup, N(dup), err, sizeof err));
    assert_non_null(strstr(err, "--param a given twice"));
    const char *prefix[] = {"ab=1", "a=2"}; /* a prefix is another name */
    cl_cbor_enc_init(&e, buf, sizeof buf);
    assert_true(cli_encode_params(&e, prefix, N(prefix), err, sizeof err));
    const char *noeq[] = {"novalue"};
    cl_cbor_enc_init(&e, buf, sizeof buf);
    assert_false(cli_encode_params(&e, noeq, 1, err, sizeof err));
    assert_non_null(strstr(err, "NAME=VALUE"));
    const char *nokey[] = {"=1"};
    cl_cbor_enc_init(&e, buf, sizeof buf);
    assert_false(cli_encode_params(&e, nokey, 1, err, sizeof err));
    cl_cbor_enc_init(&e, buf, sizeof buf);
    assert_true(cli_encode_params(&e, NULL, 0, err, sizeof err)); /* no params: {} */
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_int_equal(len, 1);
    assert_int_equal(buf[0], 0xa0);
}

static void test_json_documents(void **state)
{
    (void)state;
    unsigned line, col;
    uint8_t cbor[256];
    size_t len;
    char err[600], path[300], text[256], out[4096];

    cli_json_where("ab\ncd\n\xc3\xa9x", 9, 0, &line, &col);
    assert_int_equal(line, 1);
    assert_int_equal(col, 1);
    cli_json_where("ab\ncd\n\xc3\xa9x", 9, 4, &line, &col);
    assert_int_equal(line, 2);
    assert_int_equal(col, 2);
    cli_json_where("ab\ncd\n\xc3\xa9x", 9, 8, &line, &col); /* after a 2-byte character */
    assert_int_equal(line, 3);
    assert_int_equal(col, 2);

    const char *good = "{\"name\": \"r1\", \"on\": [\"wifi.status\"], \"n\": -2, \"f\": 0.5}";
    assert_true(cli_json_parse("x.json", good, strlen(good), cbor, sizeof cbor, &len, err,
                               sizeof err));
    assert_true(cli_json_object(cbor, len));
    char name[16];
    assert_true(cli_map_tstr(cbor, len, "name", name, sizeof name));
    assert_string_equal(name, "r1");
    assert_false(cli_json_parse("x.json", "[1]", 3, cbor, sizeof cbor, &len, err, sizeof err) &&
                 cli_json_object(cbor, len));

    /* the error names the file, line and column, and shows the line */
    const char *bad = "{\n  \"a\": 1,\n  \"b\": [1, 2,, 3]\n}\n";
    assert_false(cli_json_parse("rule.json", bad, strlen(bad), cbor, sizeof cbor, &len, err,
                                sizeof err));
    assert_non_null(strstr(err, "rule.json line 3, column "));
    assert_non_null(strstr(err, "invalid JSON"));
    assert_non_null(strstr(err, "\"b\": [1, 2,, 3]"));
    assert_non_null(strchr(err, '^'));
    assert_false(cli_json_parse("e.json", "", 0, cbor, sizeof cbor, &len, err, sizeof err));
    assert_non_null(strstr(err, "e.json is empty"));
    assert_false(cli_json_parse("t.json", "{\"a\": ", 6, cbor, sizeof cbor, &len, err,
                                sizeof err));
    assert_non_null(strstr(err, "t.json line 1"));
    assert_false(cli_json_parse("big.json", good, strlen(good), cbor, 8, &len, err, sizeof err));
    assert_non_null(strstr(err, "too large"));

    /* a file, through the command: exit 2 and the position */
    snprintf(path, sizeof path, "%s/bad-rule.json", tmpdir);
    write_text(path, bad);
    const char *add[] = {"cloister", "rule", "add", path, "--owner", "/nonexistent"};
    assert_int_equal(capture(cli_cmd_rule, 6, add, out, sizeof out), CLI_EXIT_ERROR);
    assert_non_null(strstr(out, "bad-rule.json line 3, column "));
    /* --schema must be an object */
    snprintf(path, sizeof path, "%s/schema.json", tmpdir);
    write_text(path, "[\"type\"]");
    assert_false(cli_schema_file(path, cbor, sizeof cbor, &len, err, sizeof err));
    assert_non_null(strstr(err, "a JSON Schema is an object"));
    write_text(path, "{\"type\": \"object\", \"properties\": {\"t\": {\"maximum\": 30}}}");
    assert_true(cli_schema_file(path, cbor, sizeof cbor, &len, err, sizeof err));
    assert_true(cli_json_object(cbor, len));

    /* pretty printing */
    FILE *f = fmemopen(text, sizeof text, "w");
    assert_non_null(f);
    assert_true(cli_json_parse("p", "{\"a\": [1, {\"b\": true}], \"c\": {}}", 32, cbor,
                               sizeof cbor, &len, err, sizeof err));
    assert_true(cli_cbor_json_pretty(f, cbor, len));
    fclose(f);
    assert_string_equal(text, "{\n  \"a\": [\n    1,\n    {\n      \"b\": true\n    }\n  ],\n"
                              "  \"c\": {}\n}");
}

static void test_small_helpers(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t len;
    char out[64], err[256];
    cl_cbor_enc_t e;

    assert_true(cli_name_ok("home1.eco-2_x"));
    assert_false(cli_name_ok(""));
    assert_false(cli_name_ok("a b"));
    assert_false(cli_name_ok("a/b"));
    assert_false(cli_name_ok("@valves"));
    char long_name[66];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_false(cli_name_ok(long_name));
    long_name[64] = '\0';
    assert_true(cli_name_ok(long_name));

    cl_cbor_enc_init(&e, buf, sizeof buf);
    cl_cbor_enc_map(&e, 3);
    cl_cbor_enc_tstr_z(&e, "groups");
    cl_cbor_enc_array(&e, 2);
    cl_cbor_enc_tstr_z(&e, "valves");
    cl_cbor_enc_tstr_z(&e, "up\nstairs");
    cl_cbor_enc_tstr_z(&e, "version");
    cl_cbor_enc_uint(&e, 3);
    cl_cbor_enc_tstr_z(&e, "on");
    cl_cbor_enc_bool(&e, true);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    cli_map_list(buf, len, "groups", out, sizeof out);
    assert_string_equal(out, "valves,up?stairs");
    cli_map_list(buf, len, "version", out, sizeof out);
    assert_string_equal(out, "");
    cli_map_show(buf, len, "version", out, sizeof out);
    assert_string_equal(out, "3");
    cli_map_show(buf, len, "groups", out, sizeof out);
    assert_string_equal(out, "[\"valves\", \"up\\nstairs\"]");
    cli_map_show(buf, len, "missing", out, sizeof out);
    assert_string_equal(out, "");
    bool b = false;
    assert_true(cli_map_bool(buf, len, "on", &b));
    assert_true(b);
    assert_false(cli_map_bool(buf, len, "version", &b));

    cli_time_iso_ms(out, sizeof out, 1700000000123);
    assert_string_equal(out, "2023-11-14T22:13:20.123Z");

    cli_opt_t opts[] = {{"--owner", true, false, {0}, 0}, {"--json", false, false, {0}, 0},
                        {"--replace", false, false, {0}, 0}};
    opts[0].n = 1;
    opts[0].vals[0] = "o";
    opts[1].n = 1;
    assert_true(cli_opts_only(opts, N(opts), "--owner --json", "x", err, sizeof err));
    assert_string_equal(cli_dir_opt(opts, N(opts)), "o");
    opts[2].n = 1;
    assert_false(cli_opts_only(opts, N(opts), "--owner --json --replaced", "rule list", err,
                               sizeof err));
    assert_non_null(strstr(err, "--replace is not an option of `cloister rule list`"));

    cl_cbor_enc_init(&e, buf, sizeof buf);
    cl_cbor_enc_map(&e, 2);
    cl_cbor_enc_tstr_z(&e, "error");
    cl_cbor_enc_tstr_z(&e, "version-conflict");
    cl_cbor_enc_tstr_z(&e, "version");
    cl_cbor_enc_uint(&e, 4);
    assert_int_equal(cl_cbor_enc_finish(&e, &len), CL_OK);
    assert_true(cli_core_error_is(buf, len, "version-conflict"));
    assert_false(cli_core_error_is(buf, len, "version"));
    assert_false(cli_core_error_is(NULL, 0, "version-conflict"));
}

/* A fresh P-256 (or other curve) key pair. */
static EVP_PKEY *gen_key(const char *curve)
{
    EVP_PKEY *k = EVP_EC_gen(curve);
    assert_non_null(k);
    return k;
}

static void write_pem(const char *path, EVP_PKEY *k, bool private_key)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (private_key)
        assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    else
        assert_int_equal(PEM_write_PUBKEY(f, k), 1);
    fclose(f);
}

static void test_pem_point(void **state)
{
    (void)state;
    char path[300], path2[300], err[512], fp1[24], fp2[24];
    uint8_t want[65], got[65], again[65];
    size_t n;
    EVP_PKEY *k = gen_key("P-256"), *k384 = gen_key("P-384");

    assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, want,
                                                     sizeof want, &n),
                     1);
    assert_int_equal(n, 65);
    snprintf(path, sizeof path, "%s/pub.pem", tmpdir);
    write_pem(path, k, false);
    assert_true(cli_pem_public_point(path, got, err, sizeof err));
    assert_memory_equal(got, want, 65);
    assert_int_equal(got[0], 0x04);

    /* written back and read again: the same point */
    snprintf(path2, sizeof path2, "%s/pub-again.pem", tmpdir);
    assert_true(cli_pem_public_write(path2, got, false, err, sizeof err));
    assert_false(cli_pem_public_write(path2, got, false, err, sizeof err)); /* never overwrites */
    assert_true(cli_pem_public_point(path2, again, err, sizeof err));
    assert_memory_equal(again, want, 65);
    cli_key_fingerprint(got, 65, fp1);
    cli_key_fingerprint(again, 65, fp2);
    assert_string_equal(fp1, fp2);
    assert_int_equal(strlen(fp1), 23);

    /* a private key is refused, saying how to get the public one */
    snprintf(path, sizeof path, "%s/priv.pem", tmpdir);
    write_pem(path, k, true);
    assert_false(cli_pem_public_point(path, got, err, sizeof err));
    assert_non_null(strstr(err, "holds a private key"));
    assert_non_null(strstr(err, "-pubout"));
    /* another curve, garbage, no file */
    snprintf(path, sizeof path, "%s/p384.pem", tmpdir);
    write_pem(path, k384, false);
    assert_false(cli_pem_public_point(path, got, err, sizeof err));
    assert_non_null(strstr(err, "not a P-256"));
    snprintf(path, sizeof path, "%s/junk.pem", tmpdir);
    write_text(path, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
    assert_false(cli_pem_public_point(path, got, err, sizeof err));
    assert_non_null(strstr(err, "holds no PEM public key"));
    assert_false(cli_pem_public_point("/nonexistent/pub.pem", got, err, sizeof err));
    assert_non_null(strstr(err, "cannot read"));
    /* a certificate will do: the owner root of test_owner_init */
    uint8_t der[CLI_CERT_MAX];
    size_t der_len;
    cl_pki_cert_info_t info;
    snprintf(path, sizeof path, "%s/owner/owner.pem", tmpdir);
    assert_true(cli_cert_read(path, der, sizeof der, &der_len, err, sizeof err));
    assert_int_equal(cl_pki_cert_parse(der, der_len, &info), CL_OK);
    assert_true(cli_pem_public_point(path, got, err, sizeof err));
    assert_memory_equal(got, info.pub, 65);

    /* publisher add reads the key before it needs a directory */
    char out[2048];
    snprintf(path, sizeof path, "%s/priv.pem", tmpdir);
    const char *add[] = {"cloister", "publisher", "add", "acme", "--key", path, "--owner", "x"};
    assert_int_equal(capture(cli_cmd_publisher, 8, add, out, sizeof out), CLI_EXIT_ERROR);
    assert_non_null(strstr(out, "holds a private key"));
    EVP_PKEY_free(k);
    EVP_PKEY_free(k384);
}

/* scenario sign: checks of the template and files, the signature file written (COSE_Sign1). */
static void test_scenario_sign(void **state)
{
    (void)state;
    char tmpl[300], key[300], sig[300], pub[300], out[4096], err[256];
    uint8_t buf[1024], point[65], want[65];
    size_t len, n;
    EVP_PKEY *k = gen_key("P-256");

    snprintf(key, sizeof key, "%s/publisher.key", tmpdir);
    write_pem(key, k, true);
    assert_int_equal(chmod(key, 0600), 0);
    snprintf(tmpl, sizeof tmpl, "%s/demo.json", tmpdir);
    snprintf(sig, sizeof sig, "%s/demo.json.sig", tmpdir);
    snprintf(pub, sizeof pub, "%s/publisher.pub.pem", tmpdir);

    write_text(tmpl, "{\"scenario\": \"demo\", \"version\": \"1.0\", \"rules\": []}\n");
    const char *s1[] = {"cloister", "scenario", "sign", tmpl, "--key", key, "--publisher",
                        "acme"};
    assert_int_equal(capture(cli_cmd_scenario, 8, s1, out, sizeof out), CLI_EXIT_ERROR);
    assert_non_null(strstr(out, "names no publisher: add \"publisher\": \"acme\""));
    write_text(tmpl, "{\"scenario\": \"demo\", \"version\": \"1.0\", \"publisher\": \"other\"}\n");
    assert_int_equal(capture(cli_cmd_scenario, 8, s1, out, sizeof out), CLI_EXIT_ERROR);
    assert_non_null(strstr(out, "names the publisher 'other', not 'acme'"));
    write_text(tmpl, "{\"scenario\": \"demo\", \"version\": \"1.0\", \"publisher\": \"acme\",\n"
                     " \"rules\": [}\n");
    assert_int_equal(capture(cli_cmd_scenario, 8, s1, out, sizeof out), CLI_EXIT_ERROR);
    assert_non_null(strstr(out, "demo.json line 2, column "));
    assert_false(cli_exists(sig));

    write_text(tmpl, "{\"scenario\": \"demo\", \"version\": \"1.0\", \"publisher\": \"acme\"}\n");
    const char *s2[] = {"cloister", "scenario",  "sign", tmpl, "--key", key, "--publisher",
                        "acme",     "--pub-out", pub};
    assert_int_equal(capture(cli_cmd_scenario, 10, s2, out, sizeof out), CLI_EXIT_OK);
    assert_non_null(strstr(out, "as publisher 'acme'"));
    assert_non_null(strstr(out, "key fingerprint"));
    assert_true(cli_read_file(sig, buf, sizeof buf, &len, err, sizeof err));
    /* COSE_Sign1: [protected {1: -7}, {4: 'acme'}, nil (detached), signature (64)] */
    cl_cbor_dec_t d;
    const uint8_t *p;
    size_t pl, items;
    cl_cbor_dec_init(&d, buf, len);
    uint64_t tag;
    if (cl_cbor_dec_tag(&d, &tag) == CL_OK)
        assert_int_equal(tag, 18);
    else
        cl_cbor_dec_init(&d, buf, len);
    assert_int_equal(cl_cbor_dec_array(&d, &items), CL_OK);
    assert_int_equal(items, 4);
    assert_int_equal(cl_cbor_dec_bstr(&d, &p, &pl), CL_OK);
    assert_int_equal(pl, 3);
    assert_memory_equal(p, "\xa1\x01\x26", 3);
    assert_int_equal(cl_cbor_dec_skip(&d), CL_OK);
    assert_int_equal(cl_cbor_dec_null(&d), CL_OK);
    assert_int_equal(cl_cbor_dec_bstr(&d, &p, &pl), CL_OK);
    assert_int_equal(pl, 64);
    /* the public key written for owners is the signer's */
    assert_true(cli_pem_public_point(pub, point, err, sizeof err));
    assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, want,
                                                     sizeof want, &n),
                     1);
    assert_memory_equal(point, want, 65);
    /* never overwrites without --force */
    assert_int_equal(capture(cli_cmd_scenario, 8, s1, out, sizeof out), CLI_EXIT_ERROR);
    assert_non_null(strstr(out, "exists already; give --force"));
    const char *s3[] = {"cloister", "scenario",    "sign", tmpl,   "--key",
                        key,        "--publisher", "acme", "--force"};
    assert_int_equal(capture(cli_cmd_scenario, 9, s3, out, sizeof out), CLI_EXIT_OK);
    EVP_PKEY_free(k);
}
/* ------------------------------------------------------------------ session: Block1, Observe */

/*
 * A fake core on a loopback UDP socket, in a child process, with a fixed
 * OSCORE context (no EDHOC): it checks what the session layer sends and
 * exits 0 only when everything came as expected.
 *   1. POST /big in inner Block1 pieces: it answers block 0 with Block1 szx 5
 *      (512-byte blocks), the client must follow; the last block gets 2.04
 *      {"len": total, "sum": byte sum}.
 *   2. GET /actions with Observe 0: 2.05 {"actions": []} with Observe, then
 *      notification 1 (CON), the same datagram again (a retransmission),
 *      a CON with a foreign token (must be RST), notification 2, and a
 *      tampered notification 3; each CON of ours must be ACKed (Empty ACK,
 *      same message id) - the tampered one too, before it is found bad.
 *   3. POST /actions/ack: 2.04.
 */
static const uint8_t FK_MS[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t FK_CID[1] = {0x0c}, FK_SID[1] = {0x05};

static void fake_ctx(cl_oscore_ctx_t *ctx, const cl_crypto_t *c, bool server)
{
    cl_oscore_params_t p = {.master_secret = FK_MS,
                            .master_secret_len = sizeof FK_MS,
                            .sender_id = server ? FK_SID : FK_CID,
                            .sender_id_len = 1,
                            .recipient_id = server ? FK_CID : FK_SID,
                            .recipient_id_len = 1};
    memset(ctx, 0, sizeof *ctx);
    if (cl_oscore_ctx_init(ctx, c, &p) != CL_OK)
        abort();
}

typedef struct fake {
    int fd;
    struct sockaddr_in peer;
    socklen_t peer_len;
    cl_crypto_t crypto;
    cl_oscore_ctx_t ctx;
    cl_oscore_ctx_t *list[1];
    cl_oscore_ctx_list_t l;
    uint16_t mid;
} fake_t;

/* Receives one datagram (5 s at most). */
static ssize_t fake_recv(fake_t *f, uint8_t *buf, size_t size)
{
    struct pollfd p = {.fd = f->fd, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1)
        return -1;
    f->peer_len = sizeof f->peer;
    return recvfrom(f->fd, buf, size, 0, (struct sockaddr *)&f->peer, &f->peer_len);
}

static void fake_send(fake_t *f, const uint8_t *p, size_t len)
{
    (void)sendto(f->fd, p, len, 0, (struct sockaddr *)&f->peer, f->peer_len);
}

/* One protected request in: its plain message into m (over plain), its binding into sreq. */
static bool fake_request(fake_t *f, uint8_t *raw, uint8_t *plain, cl_coap_msg_t *m,
                         cl_oscore_req_t *sreq)
{
    ssize_t n = fake_recv(f, raw, 4096);
    size_t plain_len;
    cl_oscore_ctx_t *ctx;
    return n > 0 &&
           cl_oscore_unprotect_request(cl_oscore_lookup_list, &f->l, raw, (size_t)n, plain, 4096,
                                       &plain_len, &ctx, sreq) == CL_OK &&
           cl_coap_parse(m, plain, plain_len) == CL_OK;
}

/* A protected response (type ACK to req, or CON with a new message id) with options and body. */
static size_t fake_response(fake_t *f, cl_oscore_req_t *sreq, const cl_coap_msg_t *req,
                            uint8_t type, uint8_t code, int64_t observe,
                            const cl_coap_block_t *b1, const uint8_t *body, size_t body_len,
                            bool new_piv, uint8_t *out)
{
    uint8_t plain[2048], v[3];
    size_t plain_len, out_len = 0, vl;
    cl_coap_builder_t b;
    cl_oscore_resp_opts_t opts = {.new_piv = new_piv};
    uint16_t mid = type == CL_COAP_ACK ? req->mid : f->mid++;

    cl_coap_build_init(&b, plain, sizeof plain, type, code, mid, req->token, req->tkl);
    if (observe >= 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_OBSERVE, (uint32_t)observe);
    if (body_len > 0)
        cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, 60);
    if (b1 != NULL && cl_coap_block_encode(b1, v, &vl) == CL_OK)
        cl_coap_build_option(&b, CL_COAP_OPT_BLOCK1, v, vl);
    cl_coap_build_payload(&b, body, body_len);
    if (cl_coap_build_finish(&b, &plain_len) != CL_OK ||
        cl_oscore_protect_response(&f->ctx, sreq, &opts, plain, plain_len, out, 2048, &out_len) !=
            CL_OK)
        return 0;
    return out_len;
}

/* Waits for an Empty message of this type answering mid. */
static bool fake_expect_empty(fake_t *f, uint8_t type, uint16_t mid)
{
    uint8_t buf[64];
    ssize_t n = fake_recv(f, buf, sizeof buf);
    cl_coap_msg_t m;
    return n == 4 && cl_coap_parse(&m, buf, (size_t)n) == CL_OK && m.type == type &&
           m.code == CL_COAP_EMPTY && m.mid == mid;
}

static size_t actions_body(uint8_t *out, size_t size, uint64_t id)
{
    cl_cbor_enc_t e;
    size_t len = 0;
    cl_cbor_enc_init(&e, out, size);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_tstr_z(&e, "actions");
    cl_cbor_enc_array(&e, id > 0);
    if (id > 0) {
        cl_cbor_enc_map(&e, 2);
        cl_cbor_enc_tstr_z(&e, "id");
        cl_cbor_enc_uint(&e, id);
        cl_cbor_enc_tstr_z(&e, "action");
        cl_cbor_enc_tstr_z(&e, "eco");
    }
    return cl_cbor_enc_finish(&e, &len) == CL_OK ? len : 0;
}

static int fake_core(int fd)
{
    fake_t f;
    uint8_t raw[4096], plain[4096], out[2048], body[256], big[8192];
    cl_coap_msg_t m;
    cl_oscore_req_t sreq, obs;
    size_t got = 0, n, len;

    memset(&f, 0, sizeof f);
    f.fd = fd;
    f.mid = 0x4000;
    if (cl_crypto_openssl_new(&f.crypto, 0) != CL_OK)
        return 10;
    fake_ctx(&f.ctx, &f.crypto, true);
    f.list[0] = &f.ctx;
    f.l.ctx = f.list;
    f.l.n = 1;

    /* 1. Block1 */
    for (int i = 0;; i++) {
        const cl_coap_option_t *o;
        cl_coap_block_t b;
        if (!fake_request(&f, raw, plain, &m, &sreq) || m.code != CL_COAP_POST ||
            (o = cl_coap_msg_get(&m, CL_COAP_OPT_BLOCK1)) == NULL ||
            cl_coap_block_decode(o, &b) != CL_OK)
            return 11;
        size_t bs = (size_t)1 << (b.szx + 4), off = (size_t)b.num * bs;
        if (off != got || (i == 0 && b.szx != 6) || (i > 0 && b.szx != 5) ||
            (b.more && m.payload_len != bs) || off + m.payload_len > sizeof big)
            return 12;
        if (i == 0) { /* take only 512 bytes: the client must continue at 512 */
            memcpy(big, m.payload, 512);
            got = 512;
            cl_coap_block_t ack = {.num = 0, .more = true, .szx = 5};
            n = fake_response(&f, &sreq, &m, CL_COAP_ACK, CL_COAP_CONTINUE, -1, &ack, NULL, 0,
                              false, out);
            fake_send(&f, out, n);
            continue;
        }
        memcpy(big + off, m.payload, m.payload_len);
        got = off + m.payload_len;
        if (b.more) {
            n = fake_response(&f, &sreq, &m, CL_COAP_ACK, CL_COAP_CONTINUE, -1, &b, NULL, 0,
                              false, out);
            fake_send(&f, out, n);
            continue;
        }
        uint64_t sum = 0;
        for (size_t k = 0; k < got; k++)
            sum += big[k];
        cl_cbor_enc_t e;
        cl_cbor_enc_init(&e, body, sizeof body);
        cl_cbor_enc_map(&e, 2);
        cl_cbor_enc_tstr_z(&e, "len");
        cl_cbor_enc_uint(&e, got);
        cl_cbor_enc_tstr_z(&e, "sum");
        cl_cbor_enc_uint(&e, sum);
        if (cl_cbor_enc_finish(&e, &len) != CL_OK)
            return 13;
        n = fake_response(&f, &sreq, &m, CL_COAP_ACK, CL_COAP_CHANGED, -1, &b, body, len, false,
                          out);
        fake_send(&f, out, n);
        break;
    }

    /* 2. Observe */
    if (!fake_request(&f, raw, plain, &m, &obs) || m.code != CL_COAP_GET ||
        cl_coap_msg_get(&m, CL_COAP_OPT_OBSERVE) == NULL)
        return 20;
    cl_coap_msg_t reg = m;
    uint8_t token[8];
    memcpy(token, m.token, m.tkl);
    reg.token = token;
    len = actions_body(body, sizeof body, 0);
    n = fake_response(&f, &obs, &reg, CL_COAP_ACK, CL_COAP_CONTENT, 0, NULL, body, len, false,
                      out);
    fake_send(&f, out, n);

    len = actions_body(body, sizeof body, 5);
    n = fake_response(&f, &obs, &reg, CL_COAP_CON, CL_COAP_CONTENT, 1, NULL, body, len, true, out);
    uint16_t mid1 = (uint16_t)(out[2] << 8 | out[3]);
    fake_send(&f, out, n);
    if (!fake_expect_empty(&f, CL_COAP_ACK, mid1))
        return 21;
    fake_send(&f, out, n); /* a retransmission: ACKed again, not delivered twice */
    if (!fake_expect_empty(&f, CL_COAP_ACK, mid1))
        return 22;
    /* a CON for a token nobody observes: RST */
    uint8_t stale[32];
    uint8_t other[8] = {9, 9, 9, 9, 9, 9, 9, 9};
    cl_coap_builder_t b;
    cl_coap_build_init(&b, stale, sizeof stale, CL_COAP_CON, CL_COAP_CONTENT, f.mid++, other, 8);
    if (cl_coap_build_finish(&b, &len) != CL_OK)
        return 23;
    fake_send(&f, stale, len);
    if (!fake_expect_empty(&f, CL_COAP_RST, (uint16_t)(stale[2] << 8 | stale[3])))
        return 24;
    len = actions_body(body, sizeof body, 6);
    n = fake_response(&f, &obs, &reg, CL_COAP_CON, CL_COAP_CONTENT, 2, NULL, body, len, true, out);
    fake_send(&f, out, n);
    if (!fake_expect_empty(&f, CL_COAP_ACK, (uint16_t)(out[2] << 8 | out[3])))
        return 25;
    len = actions_body(body, sizeof body, 7);
    n = fake_response(&f, &obs, &reg, CL_COAP_CON, CL_COAP_CONTENT, 3, NULL, body, len, true, out);
    out[n - 1] ^= 1; /* tampered: the tag fails */
    fake_send(&f, out, n);
    if (!fake_expect_empty(&f, CL_COAP_ACK, (uint16_t)(out[2] << 8 | out[3])))
        return 26;

    /* 3. an ordinary request on the same session */
    if (!fake_request(&f, raw, plain, &m, &sreq) || m.code != CL_COAP_POST)
        return 30;
    n = fake_response(&f, &sreq, &m, CL_COAP_ACK, CL_COAP_CHANGED, -1, NULL, NULL, 0, false, out);
    fake_send(&f, out, n);
    cl_oscore_ctx_free(&f.ctx);
    cl_crypto_openssl_free(&f.crypto);
    return 0;
}

static void test_session_block1_observe(void **state)
{
    (void)state;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t al = sizeof a;
    int fd = socket(AF_INET, SOCK_DGRAM, 0), status = -1;
    char uri[64], err[600];
    cl_crypto_t crypto;
    uint8_t big[5000], out[1024], code;
    size_t out_len;
    uint64_t v, sum = 0;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fake_core(fd));
    close(fd);

    cli_session_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    assert_int_equal(cl_crypto_openssl_new(&crypto, 0), CL_OK);
    snprintf(uri, sizeof uri, "coap://127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    assert_true(cli_net_open(&s->net, uri, &crypto, err, sizeof err));
    s->crypto = &crypto;
    fake_ctx(&s->oscore, &crypto, false);
    s->have_oscore = true;

    /* 1. a 5000-byte body goes block-wise, following the core's smaller blocks */
    for (size_t i = 0; i < sizeof big; i++) {
        big[i] = (uint8_t)(i * 7 + 3);
        sum += big[i];
    }
    cli_req_t r = {.code = CL_COAP_POST, .path = "/big", .cf = 60, .payload = big,
                   .len = sizeof big};
    if (!cli_session_request(s, &r, &code, out, sizeof out, &out_len, err, sizeof err))
        fail_msg("block-wise request: %s", err);
    assert_int_equal(code, CL_COAP_CHANGED);
    assert_true(cli_map_uint(out, out_len, "len", &v));
    assert_int_equal(v, sizeof big);
    assert_true(cli_map_uint(out, out_len, "sum", &v));
    assert_int_equal(v, sum);

    /* 2. Observe: registration, notifications in order, a retransmission skipped */
    cli_observe_t obs;
    cli_req_t o = {.code = CL_COAP_GET, .path = "/actions", .cf = -1, .observe = true};
    if (!cli_session_observe(s, &o, &obs, &code, out, sizeof out, &out_len, err, sizeof err))
        fail_msg("observe: %s", err);
    assert_int_equal(code, CL_COAP_CONTENT);
    assert_true(obs.active);
    assert_int_equal(cli_session_notification(s, &obs, 5000, &code, out, sizeof out, &out_len,
                                              err, sizeof err),
                     CLI_NOTIF_OK);
    const uint8_t *acts;
    size_t acts_len;
    assert_true(cli_map_get(out, out_len, "actions", &acts, &acts_len));
    assert_int_equal(acts[0], 0x81);
    assert_true(cli_map_uint(acts + 1, acts_len - 1, "id", &v));
    assert_int_equal(v, 5);
    /* the retransmission and the foreign token are not notifications: the next is id 6 */
    assert_int_equal(cli_session_notification(s, &obs, 5000, &code, out, sizeof out, &out_len,
                                              err, sizeof err),
                     CLI_NOTIF_OK);
    assert_true(cli_map_get(out, out_len, "actions", &acts, &acts_len));
    assert_true(cli_map_uint(acts + 1, acts_len - 1, "id", &v));
    assert_int_equal(v, 6);
    /* the tampered one: acknowledged at the CoAP layer, then refused */
    assert_int_equal(cli_session_notification(s, &obs, 5000, &code, out, sizeof out, &out_len,
                                              err, sizeof err),
                     CLI_NOTIF_BAD);
    assert_non_null(strstr(err, "OSCORE verification"));
    /* nothing more comes */
    assert_int_equal(cli_session_notification(s, &obs, 200, &code, out, sizeof out, &out_len, err,
                                              sizeof err),
                     CLI_NOTIF_NONE);

    /* 3. the session still works for ordinary requests */
    cli_req_t ack = {.code = CL_COAP_POST, .path = "/actions/ack", .cf = 60,
                     .payload = (const uint8_t *)"\xa1\x63ids\x81\x05", .len = 7};
    if (!cli_session_request(s, &ack, &code, out, sizeof out, &out_len, err, sizeof err))
        fail_msg("ack: %s", err);
    assert_int_equal(code, CL_COAP_CHANGED);

    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    cli_session_close(s);
    free(s);
    cl_crypto_openssl_free(&crypto);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_options),  cmocka_unit_test(test_duration),
        cmocka_unit_test(test_numbers_hex),    cmocka_unit_test(test_conf_roundtrip),
        cmocka_unit_test(test_prop_encoding),  cmocka_unit_test(test_map_helpers),
        cmocka_unit_test(test_kccs),           cmocka_unit_test(test_owner_init),
        cmocka_unit_test(test_owner_init_usage), cmocka_unit_test(test_model_help),
        cmocka_unit_test(test_model_usage),    cmocka_unit_test(test_params),
        cmocka_unit_test(test_json_documents), cmocka_unit_test(test_small_helpers),
        cmocka_unit_test(test_pem_point),      cmocka_unit_test(test_scenario_sign),
        cmocka_unit_test(test_session_block1_observe),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
