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

#define CLI_OPT_MULTI 16 /* values kept for a repeatable option */

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
/* A JSON string literal (quotes and escapes). */
void cli_json_str(FILE *out, const char *s, size_t len);
/*
 * The stable error of a core answer {"error": code, "message": text}:
 * "code: text" into out, or "" when the payload is not such a map.
 */
void cli_core_error(const uint8_t *payload, size_t len, char *out, size_t out_size);

/* Looks up a text key in a CBOR map; *val points at the value item. */
bool cli_map_get(const uint8_t *map, size_t len, const char *key, const uint8_t **val,
                 size_t *val_len);
bool cli_map_bstr(const uint8_t *map, size_t len, const char *key, const uint8_t **p,
                  size_t *plen);
bool cli_map_tstr(const uint8_t *map, size_t len, const char *key, char *out, size_t out_size);
bool cli_map_uint(const uint8_t *map, size_t len, const char *key, uint64_t *v);
bool cli_map_int(const uint8_t *map, size_t len, const char *key, int64_t *v);

/*
 * --prop k=v -> CBOR text key and value: true/false -> bool, an integer ->
 * int, a decimal number -> float, "quoted" -> the text inside, anything
 * else -> text. False without '=' or with an empty key.
 */
bool cli_encode_prop(cl_cbor_enc_t *e, const char *kv);

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

/* Default core image (compile definition CL_CORE_IMAGE_DEFAULT) or NULL. */
const char *cli_default_image(void);

#endif
