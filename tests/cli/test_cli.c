/*
 * tests/cli/test_cli.c - unit tests of the `cloister` command's pieces
 * (cli/): option parsing, durations, hex, conf files, --prop encoding, CBOR
 * shown as JSON, the kccs credential, and `cloister owner init` end to end
 * in a temporary directory (file modes, the root certificate checked with
 * cl_pki_check_root, the key matching it, refusal to overwrite).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli.h"
#include "cloister/cbor.h"
#include "cloister/keystore.h"
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_options),  cmocka_unit_test(test_duration),
        cmocka_unit_test(test_numbers_hex),    cmocka_unit_test(test_conf_roundtrip),
        cmocka_unit_test(test_prop_encoding),  cmocka_unit_test(test_map_helpers),
        cmocka_unit_test(test_kccs),           cmocka_unit_test(test_owner_init),
        cmocka_unit_test(test_owner_init_usage),
    };
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
