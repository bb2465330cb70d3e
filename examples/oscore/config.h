/*
 * config.h - the OSCORE security context of the example programs, from a
 * small `key = value` file and/or command-line flags.
 *
 * Keys (flags are the same names with '-' for '_', e.g. --master-secret):
 *   master_secret, master_salt, sender_id, recipient_id, id_context  hex;
 *       an empty value is the empty byte string; id_context omitted = absent
 *   replay_window  1..CL_OSCORE_REPLAY_WINDOW (omitted: library default)
 *   echo_recovery  on | off  (RFC 8613 Appendix B.1.2)
 *   seq_file       where the B.1.1 sequence number ceiling is kept
 *   aead           10 (AES-CCM-16-64-128, default) | 30 (AES-CCM-16-128-128) | 1 (A128GCM)
 * Flags override the file. Every value remembers where it came from
 * ("server.conf:4" or "--sender-id") so that errors can point at it.
 */
#ifndef CL_EXAMPLE_OSCORE_CONFIG_H
#define CL_EXAMPLE_OSCORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/oscore.h"

#define CONFIG_BYTES_MAX 32  /**< largest byte-string key (master_secret) */
#define CONFIG_SRC_MAX 96    /**< "file:line" / "--flag" of a value */
#define CONFIG_PATH_MAX 1024 /**< seq_file path length */
#define CONFIG_MAX_OVERRIDES 16

/** One byte-string key. */
typedef struct config_bytes {
    uint8_t v[CONFIG_BYTES_MAX];
    size_t len;
    bool set;
    char src[CONFIG_SRC_MAX];
} config_bytes_t;

typedef struct oscore_config {
    config_bytes_t master_secret;
    config_bytes_t master_salt;
    config_bytes_t sender_id;
    config_bytes_t recipient_id;
    config_bytes_t id_context;
    uint32_t replay_window; /**< 0 = library default */
    bool echo_recovery;
    cl_aead_alg_t aead;
    char aead_src[CONFIG_SRC_MAX];
    char seq_file[CONFIG_PATH_MAX]; /**< "" = not set */
} oscore_config_t;

/** Context flags seen on the command line, applied after the file. */
typedef struct config_overrides {
    struct {
        const char *key;   /**< config key, e.g. "master_secret" */
        const char *value; /**< points into argv */
        const char *flag;  /**< the flag as typed, for messages */
    } v[CONFIG_MAX_OVERRIDES];
    size_t n;
} config_overrides_t;

/** Text for --help: one line per context flag. */
extern const char config_flags_help[];

/** Defaults: nothing set, echo_recovery off, AES-CCM-16-64-128. */
void config_init(oscore_config_t *c);

/** Reads a config file; false with "path:line: ..." in err on the first bad line. */
bool config_load_file(oscore_config_t *c, const char *path, char *err, size_t err_size);

/** Sets one key from text; `src` says where the value came from. */
bool config_set(oscore_config_t *c, const char *key, const char *value, const char *src, char *err,
                size_t err_size);

/**
 * If argv[*i] is a context flag ("--master-secret HEX" or "--master-secret=HEX"),
 * records it in ov, advances *i past its value and returns 1; returns 0 when
 * argv[*i] is not a context flag; -1 (message in err) when its value is missing.
 */
int config_take_flag(config_overrides_t *ov, int argc, char **argv, int *i, char *err,
                     size_t err_size);

/** Applies the recorded flags on top of the file's values. */
bool config_apply_overrides(oscore_config_t *c, const config_overrides_t *ov, char *err,
                            size_t err_size);

/**
 * Checks the whole context: required keys present, ID lengths against the
 * AEAD's nonce, Sender ID != Recipient ID, seq_file set.
 */
bool config_finish(const oscore_config_t *c, char *err, size_t err_size);

/** Fills *p (pointers into c; c must outlive the cl_oscore_ctx_init call). */
void config_params(const oscore_config_t *c, cl_oscore_params_t *p);

/** Wipes the secrets. */
void config_wipe(oscore_config_t *c);

/** Lowercase hex of b[0..len) into out ("" for empty); truncated to fit. */
void config_hex(char *out, size_t out_size, const uint8_t *b, size_t len);

#endif
