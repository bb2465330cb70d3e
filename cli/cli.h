/*
 * cli/cli.h - shared pieces of the `cloister` command: diagnostics, exit
 * codes, the option parser, durations, hex, small files, the key=value
 * configuration files of an owner / client directory, certificates as PEM,
 * and CBOR shown as JSON.
 *
 * Exit codes of every command: 0 success; 1 refused (policy, the core said
 * no, an attestation check failed); 2 usage or local error (bad arguments,
 * files, network, timeouts).
 *
 * Nothing here is secret-bearing except the key references in *.conf
 * (names of a key file or a token object, never key bytes or PINs).
 */
#ifndef CLOISTER_CLI_H
#define CLOISTER_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cloister/cbor.h"
#include "cloister/status.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_REFUSED 1
#define CLI_EXIT_ERROR 2

#define CLI_PATH_MAX 1024
#define CLI_CERT_MAX 2048 /* = CL_PKI_MAX_CERT */

/* ---------------------------------------------------------- diagnostics */

/* "cloister: message" on stderr. */
void cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* snprintf into err (NULL-safe). */
void cli_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------- options */

#define CLI_OPT_MULTI 32 /* values kept for a repeatable option */

/* One option of a command: "--name" with or without a value. */
typedef struct cli_opt {
    const char *name;     /* "--dir" */
    bool has_arg;         /* takes a value ("--dir DIR" or "--dir=DIR") */
    bool multi;           /* may be repeated (values collected in vals[]) */
    const char *vals[CLI_OPT_MULTI];
    size_t n;             /* times given */
} cli_opt_t;

/*
 * Parses argv[first..argc) against opts; non-option arguments go to pos[]
 * (at most max_pos). "--" ends options. Returns 0 when parsed, 1 when -h or
 * --help was given, 2 on an error (message in err: unknown option, missing
 * value, repeated single option, too many arguments).
 */
int cli_parse(int argc, char **argv, int first, cli_opt_t *opts, size_t n_opts, const char **pos,
              size_t max_pos, size_t *n_pos, char *err, size_t err_size);
/* The option called name (must exist in opts). */
cli_opt_t *cli_opt(cli_opt_t *opts, size_t n_opts, const char *name);
/* Its (last) value or NULL when not given. */
const char *cli_val(cli_opt_t *opts, size_t n_opts, const char *name);
/* True when given. */
bool cli_has(cli_opt_t *opts, size_t n_opts, const char *name);

/* What a subcommand runs with (cli_sub_main). */
typedef struct cli_sub_ctx {
    cli_opt_t *opts;
    size_t n_opts;
    const char *const *pos; /* pos[0] the subcommand, then its arguments */
    size_t n_pos;
    uint8_t *out; /* CLI_PAYLOAD_MAX bytes for the core's answer */
    size_t out_len;
} cli_sub_ctx_t;

/* A subcommand of a command with several (`cloister rule add ...`). */
typedef struct cli_sub {
    const char *sub;     /* "add" */
    const char *usage;   /* "add FILE.json [--replace] ..." (after "cloister CMD ") */
    const char *details; /* --help text, lines ending in '\n' */
    const char *opts;    /* the options it takes, space-separated ("--owner --json") */
    size_t args_min;     /* positional arguments after the subcommand */
    size_t args_max;     /* (at most 1) */
    int (*run)(cli_sub_ctx_t *x); /* returns the exit code */
} cli_sub_t;

typedef struct cli_cmd_spec {
    const char *cmd;   /* "rule" */
    const cli_sub_t *subs;
    size_t n;
    const char *about; /* what the command is about, for its --help */
} cli_cmd_spec_t;

/*
 * Runs a command with subcommands: parses argv[2..] against opts; --help
 * prints the help of the subcommand given (or of all), with the identity
 * footer when the subcommand takes --owner; an unknown subcommand, an option
 * it does not take or a wrong number of arguments is a usage error (2).
 * Otherwise the subcommand's run(). Returns the exit code.
 */
int cli_sub_main(const cli_cmd_spec_t *c, int argc, char **argv, cli_opt_t *opts, size_t n_opts);
/* The help footer of the model commands: --owner DIR / --dir DIR, --server, --json. */
extern const char cli_ident_footer[];
/* A core answer as one line of JSON (--json); CLI_EXIT_ERROR (printed) when malformed. */
int cli_print_json(const uint8_t *cbor, size_t len);
/* Opens a list answer (a CBOR array) in d; prints and fails when it is none. */
bool cli_list_open(cl_cbor_dec_t *d, const uint8_t *list, size_t len, size_t *n);

/*
 * False (message in err) when an option was given that is not in allowed
 * (space-separated names, "--json --server"): for commands whose
 * subcommands share one option table. what: "rule list".
 */
bool cli_opts_only(cli_opt_t *opts, size_t n_opts, const char *allowed, const char *what,
                   char *err, size_t err_size);

/* Decimal unsigned in [min, max]; false on anything else. */
bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/*
 * Duration: a number with an optional unit s, m, h, d, w ("90", "90s",
 * "15m", "1h", "7d", "2w"; also combined "1h30m"). Seconds into *out;
 * false for empty, unknown units, zero-free overflow.
 */
bool cli_parse_duration(const char *s, uint64_t *out);
/* Hex (upper or lower case, even length, optional "0x") into out. */
bool cli_hex_decode(const char *s, uint8_t *out, size_t out_size, size_t *out_len);
/* Lower-case hex of p[0..len) into out (out_size >= 2 * len + 1). */
void cli_hex(char *out, size_t out_size, const uint8_t *p, size_t len);
/* SHA-256 of a buffer (OpenSSL). */
void cli_sha256(const uint8_t *p, size_t len, uint8_t out[32]);
/* "2026-11-22T07:00:00Z" for Unix seconds. */
void cli_time_iso(char *out, size_t out_size, int64_t unix_s);
/* "2026-11-22T07:00:00.123Z" for Unix milliseconds. */
void cli_time_iso_ms(char *out, size_t out_size, int64_t unix_ms);
/* A model name (docs/model.md): 1..64 bytes of [A-Za-z0-9._-]. */
bool cli_name_ok(const char *s);
/* The identity directory of a command: --dir DIR, else --owner DIR (NULL when neither). */
const char *cli_dir_opt(cli_opt_t *opts, size_t n_opts);

/* ---------------------------------------------------------- files */

/* "dir/name" into out; false when too long. */
bool cli_path(char *out, size_t out_size, const char *dir, const char *name);
bool cli_exists(const char *path);
/* path made absolute (prefixed with the working directory) when it is relative. */
void cli_abspath(const char *path, char *out, size_t out_size);
/* Creates dir (mode 0700) unless it exists as a directory. */
/* *created (may be NULL): whether this call made it (remove it again on failure). */
bool cli_mkdir(const char *dir, bool *created, char *err, size_t err_size);
/* Reads a whole file of at most size bytes. */
bool cli_read_file(const char *path, uint8_t *buf, size_t size, size_t *len, char *err,
                   size_t err_size);
/*
 * Writes a new file (O_CREAT | O_EXCL | O_NOFOLLOW, mode) and fsyncs it;
 * never overwrites. replace: write a temporary file and rename it over path.
 */
bool cli_write_file(const char *path, const void *data, size_t len, unsigned mode, bool replace,
                    char *err, size_t err_size);

/* ---------------------------------------------------------- certificates */

/* DER of the first certificate in a PEM or DER file. */
bool cli_cert_read(const char *path, uint8_t *der, size_t size, size_t *len, char *err,
                   size_t err_size);
/* Every certificate of a PEM file, in order (at most max). */
bool cli_certs_read(const char *path, uint8_t (*der)[CLI_CERT_MAX], size_t *lens, size_t max,
                    size_t *n, char *err, size_t err_size);
/* PEM text of DER certificates (concatenated) into out. */
bool cli_certs_pem(const uint8_t *const *der, const size_t *lens, size_t n, char *out,
                   size_t out_size, size_t *out_len);
/* Writes certificates as PEM to a new file (mode 0644). */
bool cli_certs_write(const char *path, const uint8_t *const *der, const size_t *lens, size_t n,
                     bool replace, char *err, size_t err_size);

/* ---------------------------------------------------------- conf files */

#define CLI_CONF_MAX 16
#define CLI_CONF_VAL 1024

/* "key = value" lines; '#' comments. */
typedef struct cli_conf {
    char key[CLI_CONF_MAX][32];
    char val[CLI_CONF_MAX][CLI_CONF_VAL];
    size_t n;
} cli_conf_t;

bool cli_conf_read(cli_conf_t *c, const char *path, char *err, size_t err_size);
/* Sets (or replaces) a value; false when full or too long. */
bool cli_conf_set(cli_conf_t *c, const char *key, const char *val);
const char *cli_conf_get(const cli_conf_t *c, const char *key);
/* Writes the file (mode 0600) with a comment line on top. */
bool cli_conf_write(const cli_conf_t *c, const char *path, const char *comment, bool replace,
                    char *err, size_t err_size);

/* ---------------------------------------------------------- CBOR shown */

/*
 * Writes one CBOR item as JSON (byte strings as lower-case hex strings,
 * non-text map keys as their JSON text, tags dropped, undefined/simple as
 * null). False when the item is malformed.
 */
bool cli_cbor_json(FILE *out, const uint8_t *cbor, size_t len);
/* The same, indented by two spaces per level (one entry per line). */
bool cli_cbor_json_pretty(FILE *out, const uint8_t *cbor, size_t len);
/*
 * A short text for one CBOR value: text as is, anything else as one-line
 * JSON; truncated to out_size, control characters replaced by '?'.
 */
void cli_cbor_show(const uint8_t *val, size_t len, char *out, size_t out_size);
/* A CBOR array of text joined with ',' ("" when not such an array; truncated to fit). */
void cli_text_list(const uint8_t *arr, size_t len, char *out, size_t out_size);
/* A JSON string literal (quotes and escapes). */
void cli_json_str(FILE *out, const char *s, size_t len);
/*
 * The stable error of a core answer {"error": code, "message": text}:
 * "code: text" into out, or "" when the payload is not such a map.
 */
void cli_core_error(const uint8_t *payload, size_t len, char *out, size_t out_size);

/* True when payload is the core's error map with this stable code ("version-conflict"). */
bool cli_core_error_is(const uint8_t *payload, size_t len, const char *code);

/* Looks up a text key in a CBOR map; *val points at the value item. */
bool cli_map_get(const uint8_t *map, size_t len, const char *key, const uint8_t **val,
                 size_t *val_len);
bool cli_map_bstr(const uint8_t *map, size_t len, const char *key, const uint8_t **p,
                  size_t *plen);
bool cli_map_tstr(const uint8_t *map, size_t len, const char *key, char *out, size_t out_size);
bool cli_map_uint(const uint8_t *map, size_t len, const char *key, uint64_t *v);
bool cli_map_int(const uint8_t *map, size_t len, const char *key, int64_t *v);
bool cli_map_bool(const uint8_t *map, size_t len, const char *key, bool *v);
/* cli_cbor_show / cli_text_list of the value of key ("" when absent). */
void cli_map_show(const uint8_t *map, size_t len, const char *key, char *out, size_t out_size);
void cli_map_list(const uint8_t *map, size_t len, const char *key, char *out, size_t out_size);

/* ---------------------------------------------------------- JSON documents */

/* Line and column (1-based, columns in code points) of byte offset off of text. */
void cli_json_where(const char *text, size_t len, size_t off, unsigned *line, unsigned *col);
/*
 * JSON text -> CBOR (cl_json_to_cbor). On failure err says where, naming the
 * document `what` (a file name): "rule.json line 3, column 12 (byte 41):
 * invalid JSON", followed by the line and a caret when the line is short.
 */
bool cli_json_parse(const char *what, const char *text, size_t len, uint8_t *out, size_t out_size,
                    size_t *out_len, char *err, size_t err_size);
/* Reads a JSON file (at most text_size bytes, kept in text) and converts it (cli_json_parse). */
bool cli_json_file(const char *path, char *text, size_t text_size, size_t *text_len,
                   uint8_t *cbor, size_t cbor_size, size_t *cbor_len, char *err, size_t err_size);
/* True when the CBOR item is a map (a JSON object). */
bool cli_json_object(const uint8_t *cbor, size_t len);

#define CLI_JSON_TEXT_MAX (64 * 1024) /* largest JSON file read (a scenario template) */
#define CLI_SCHEMA_MAX 4096           /* a schema as CBOR (core/model/schema.h CL_SCHEMA_MAX) */
/* A JSON Schema file (--schema FILE.json) as CBOR: an object of at most out_size bytes. */
bool cli_schema_file(const char *path, uint8_t *out, size_t out_size, size_t *out_len, char *err,
                     size_t err_size);

/* ---------------------------------------------------------- public keys */

/*
 * The P-256 public key of a PEM file ("PUBLIC KEY", or a certificate) as
 * the 65-byte uncompressed point. A private key file is refused with a
 * message saying how to get the public key.
 */
bool cli_pem_public_point(const char *path, uint8_t pub[65], char *err, size_t err_size);
/* Writes a P-256 point as a PEM "PUBLIC KEY" file (mode 0644; replace: see cli_write_file). */
bool cli_pem_public_write(const char *path, const uint8_t pub[65], bool replace, char *err,
                          size_t err_size);
/* "ab:cd:..." - the first 8 bytes of SHA-256 of a public key, to compare keys by eye. */
void cli_key_fingerprint(const uint8_t *pub, size_t len, char out[24]);

/*
 * --prop k=v / --param k=v -> CBOR text key and value: true/false -> bool,
 * an integer -> int, a decimal number (digits, sign, '.', exponent; no hex,
 * inf or nan) -> float, "quoted" -> the text inside, anything else -> text.
 * False without '=' or with an empty key.
 */
bool cli_encode_prop(cl_cbor_enc_t *e, const char *kv);
/*
 * The "params" map of `scenario install` from --param k=v values (typed as
 * cli_encode_prop); false (message in err) for a malformed or repeated one.
 */
bool cli_encode_params(cl_cbor_enc_t *e, const char *const *kv, size_t n, char *err,
                       size_t err_size);

/* ---------------------------------------------------------- commands */

/* The number of entries of an option table. */
#define N_OPTS(o) (sizeof(o) / sizeof((o)[0]))

int cli_cmd_measure(int argc, char **argv);
int cli_cmd_verify(int argc, char **argv);
int cli_cmd_provision(int argc, char **argv);
int cli_cmd_owner(int argc, char **argv);
int cli_cmd_token(int argc, char **argv);
int cli_cmd_client(int argc, char **argv);
int cli_cmd_enroll(int argc, char **argv);
int cli_cmd_whoami(int argc, char **argv);
int cli_cmd_device(int argc, char **argv);
int cli_cmd_event_type(int argc, char **argv);
int cli_cmd_history(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_action_type(int argc, char **argv);
int cli_cmd_rule(int argc, char **argv);
int cli_cmd_publisher(int argc, char **argv);
int cli_cmd_scenario(int argc, char **argv);
/* `cloister device listen` (cmd_listen.c; `cloister device` dispatches to it). */
int cli_device_listen(int argc, char **argv);

/* Default core image (compile definition CL_CORE_IMAGE_DEFAULT) or NULL. */
const char *cli_default_image(void);

#endif
