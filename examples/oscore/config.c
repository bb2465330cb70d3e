/*
 * config.c - reads the OSCORE security context of the example client and
 * server from a `key = value` file and from command-line flags.
 *
 * What: a line parser (blank lines and `#` comments skipped, one key per
 * line, duplicates refused), strict hex decoding for the byte-string keys,
 * and a final cross-check of the whole context. Flags use the same key names
 * and are applied after the file, so a file holds the shared defaults and a
 * flag can point one run at something else (a temporary seq_file, a wrong
 * master secret for a negative test).
 *
 * Why so strict and so chatty: this is the one place where a person types
 * key material. A silently truncated ID, a stray character in a secret or a
 * forgotten seq_file shows up later only as "Decryption failed" on the other
 * end, or worse as nonce reuse after a restart. So every value remembers
 * where it came from and every error names the file and line (or the flag)
 * and says what was expected. Nothing here prints: errors are returned as
 * text for the caller to report.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_LEN 1024

const char config_flags_help[] =
    "  --master-secret HEX     Master Secret (1..32 bytes)\n"
    "  --master-salt HEX       Master Salt (0..16 bytes; empty = no salt)\n"
    "  --sender-id HEX         own Sender ID (may be empty)\n"
    "  --recipient-id HEX      peer's Sender ID (may be empty)\n"
    "  --id-context HEX        ID Context (omit for none; empty value = empty string)\n"
    "  --replay-window N       replay window width, 1..64\n"
    "  --echo-recovery on|off  Appendix B.1.2 freshness check after start-up\n"
    "  --seq-file PATH         where the B.1.1 sequence number ceiling is kept\n"
    "  --aead 10|30|1          AES-CCM-16-64-128 | AES-CCM-16-128-128 | A128GCM\n";

static void fmt_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fmt_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

void config_init(oscore_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->aead = CL_AEAD_AES_CCM_16_64_128;
}

void config_wipe(oscore_config_t *c)
{
    cl_wipe(c, sizeof *c);
}

void config_hex(char *out, size_t out_size, const uint8_t *b, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;

    if (out_size == 0)
        return;
    for (size_t i = 0; i < len && o + 2 < out_size; i++) {
        out[o++] = digits[b[i] >> 4];
        out[o++] = digits[b[i] & 15];
    }
    out[o] = '\0';
}

static int hex_nibble(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The byte-string keys, in the order of bytes_field, and their limits. */
static const struct {
    const char *key;
    size_t max;
} bytes_keys[] = {
    {"master_secret", CL_OSCORE_MAX_MASTER_SECRET},
    {"master_salt", CL_OSCORE_MAX_MASTER_SALT},
    {"sender_id", CL_OSCORE_MAX_ID},
    {"recipient_id", CL_OSCORE_MAX_ID},
    {"id_context", CL_OSCORE_MAX_ID_CONTEXT},
};

static config_bytes_t *bytes_field(oscore_config_t *c, size_t i)
{
    switch (i) {
    case 0: return &c->master_secret;
    case 1: return &c->master_salt;
    case 2: return &c->sender_id;
    case 3: return &c->recipient_id;
    default: return &c->id_context;
    }
}

/* Decodes hex into b (nothing changes on error). */
static bool set_hex(config_bytes_t *b, size_t max, const char *key, const char *value,
                    const char *src, char *err, size_t err_size)
{
    uint8_t v[CONFIG_BYTES_MAX];
    size_t n = strlen(value);

    if (n % 2 != 0) {
        fmt_err(err, err_size, "%s: %s: bad hex: odd number of digits (%zu)", src, key, n);
        return false;
    }
    if (n / 2 > max || n / 2 > sizeof v) {
        fmt_err(err, err_size, "%s: %s is %zu bytes; at most %zu allowed", src, key, n / 2, max);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        int d = hex_nibble(value[i]);
        if (d < 0) {
            fmt_err(err, err_size, "%s: %s: bad hex: '%c' at position %zu is not a hex digit", src,
                    key, isprint((unsigned char)value[i]) ? value[i] : '?', i + 1);
            cl_wipe(v, sizeof v);
            return false;
        }
        if (i % 2 == 0)
            v[i / 2] = (uint8_t)((unsigned)d << 4);
        else
            v[i / 2] = (uint8_t)(v[i / 2] | (unsigned)d);
    }
    cl_wipe(b->v, sizeof b->v);
    memcpy(b->v, v, n / 2);
    cl_wipe(v, sizeof v);
    b->len = n / 2;
    b->set = true;
    snprintf(b->src, sizeof b->src, "%s", src);
    return true;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;

    if (*s == '\0' || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return false;
    *out = v;
    return true;
}

bool config_set(oscore_config_t *c, const char *key, const char *value, const char *src, char *err,
                size_t err_size)
{
    unsigned long v;

    for (size_t i = 0; i < sizeof bytes_keys / sizeof bytes_keys[0]; i++) {
        if (strcmp(key, bytes_keys[i].key) == 0)
            return set_hex(bytes_field(c, i), bytes_keys[i].max, key, value, src, err, err_size);
    }
    if (strcmp(key, "replay_window") == 0) {
        if (!parse_uint(value, CL_OSCORE_REPLAY_WINDOW, &v) || v == 0) {
            fmt_err(err, err_size, "%s: replay_window must be a number from 1 to %d, not '%s'", src,
                    CL_OSCORE_REPLAY_WINDOW, value);
            return false;
        }
        c->replay_window = (uint32_t)v;
        return true;
    }
    if (strcmp(key, "echo_recovery") == 0) {
        if (strcmp(value, "on") == 0) {
            c->echo_recovery = true;
        } else if (strcmp(value, "off") == 0) {
            c->echo_recovery = false;
        } else {
            fmt_err(err, err_size, "%s: echo_recovery must be 'on' or 'off', not '%s'", src, value);
            return false;
        }
        return true;
    }
    if (strcmp(key, "seq_file") == 0) {
        /* Room for the ".tmp" / ".lock" siblings the sequence store creates. */
        if (value[0] == '\0' || strlen(value) + 8 > sizeof c->seq_file) {
            fmt_err(err, err_size, "%s: seq_file must be a path of 1..%zu characters", src,
                    sizeof c->seq_file - 8);
            return false;
        }
        snprintf(c->seq_file, sizeof c->seq_file, "%s", value);
        return true;
    }
    if (strcmp(key, "aead") == 0) {
        if (!parse_uint(value, 255, &v) ||
            (v != CL_AEAD_AES_CCM_16_64_128 && v != CL_AEAD_AES_CCM_16_128_128 &&
             v != CL_AEAD_A128GCM)) {
            fmt_err(err, err_size,
                    "%s: aead must be 10 (AES-CCM-16-64-128), 30 (AES-CCM-16-128-128) or "
                    "1 (A128GCM), not '%s'",
                    src, value);
            return false;
        }
        c->aead = (cl_aead_alg_t)v;
        snprintf(c->aead_src, sizeof c->aead_src, "%s", src);
        return true;
    }
    fmt_err(err, err_size,
            "%s: unknown key '%s' (expected master_secret, master_salt, sender_id, "
            "recipient_id, id_context, replay_window, echo_recovery, seq_file or aead)",
            src, key);
    return false;
}

/* Strips leading/trailing blanks in place; returns the start. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

bool config_load_file(oscore_config_t *c, const char *path, char *err, size_t err_size)
{
    char line[LINE_MAX_LEN + 2], src[CONFIG_SRC_MAX], seen[16][32];
    size_t n_seen = 0;
    unsigned lineno = 0;
    bool ok = false;
    FILE *f = fopen(path, "r");

    if (f == NULL) {
        fmt_err(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        snprintf(src, sizeof src, "%s:%u", path, lineno);
        if (strchr(line, '\n') == NULL && !feof(f)) {
            fmt_err(err, err_size, "%s: line longer than %d characters", src, LINE_MAX_LEN);
            goto done;
        }
        /* '#' starts a comment at the start of a line or after a blank. */
        for (char *p = line; *p != '\0'; p++) {
            if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
                *p = '\0';
                break;
            }
        }
        char *s = trim(line);
        if (*s == '\0')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            fmt_err(err, err_size, "%s: expected 'key = value', got '%.40s'", src, s);
            goto done;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (*key == '\0') {
            fmt_err(err, err_size, "%s: missing key before '='", src);
            goto done;
        }
        for (size_t i = 0; i < n_seen; i++) {
            if (strcmp(seen[i], key) == 0) {
                fmt_err(err, err_size, "%s: '%s' given twice", src, key);
                goto done;
            }
        }
        if (!config_set(c, key, value, src, err, err_size))
            goto done;
        if (n_seen < sizeof seen / sizeof seen[0])
            snprintf(seen[n_seen++], sizeof seen[0], "%s", key);
    }
    if (ferror(f)) {
        fmt_err(err, err_size, "%s: read error: %s", path, strerror(errno));
        goto done;
    }
    ok = true;
done:
    cl_wipe(line, sizeof line); /* it may have held a secret */
    fclose(f);
    return ok;
}

static const struct {
    const char *flag;
    const char *key;
} flag_keys[] = {
    {"--master-secret", "master_secret"},
    {"--master-salt", "master_salt"},
    {"--sender-id", "sender_id"},
    {"--recipient-id", "recipient_id"},
    {"--id-context", "id_context"},
    {"--replay-window", "replay_window"},
    {"--echo-recovery", "echo_recovery"},
    {"--seq-file", "seq_file"},
    {"--aead", "aead"},
};

int config_take_flag(config_overrides_t *ov, int argc, char **argv, int *i, char *err,
                     size_t err_size)
{
    const char *arg = argv[*i];

    for (size_t k = 0; k < sizeof flag_keys / sizeof flag_keys[0]; k++) {
        size_t fl = strlen(flag_keys[k].flag);
        const char *value;
        if (strncmp(arg, flag_keys[k].flag, fl) != 0)
            continue;
        if (arg[fl] == '=') {
            value = arg + fl + 1;
        } else if (arg[fl] == '\0') {
            if (*i + 1 >= argc) {
                fmt_err(err, err_size, "%s needs a value", flag_keys[k].flag);
                return -1;
            }
            value = argv[++*i];
        } else {
            continue;
        }
        if (ov->n == CONFIG_MAX_OVERRIDES) {
            fmt_err(err, err_size, "too many context flags");
            return -1;
        }
        ov->v[ov->n].key = flag_keys[k].key;
        ov->v[ov->n].value = value;
        ov->v[ov->n].flag = flag_keys[k].flag;
        ov->n++;
        return 1;
    }
    return 0;
}

bool config_apply_overrides(oscore_config_t *c, const config_overrides_t *ov, char *err,
                            size_t err_size)
{
    for (size_t i = 0; i < ov->n; i++) {
        if (!config_set(c, ov->v[i].key, ov->v[i].value, ov->v[i].flag, err, err_size))
            return false;
    }
    return true;
}

bool config_finish(const oscore_config_t *c, char *err, size_t err_size)
{
    size_t key_len, nonce_len, tag_len;

    if (!c->master_secret.set || c->master_secret.len == 0) {
        fmt_err(err, err_size, "%s%smaster_secret is required (1..%d bytes of hex)",
                c->master_secret.set ? c->master_secret.src : "", c->master_secret.set ? ": " : "",
                CL_OSCORE_MAX_MASTER_SECRET);
        return false;
    }
    if (!c->sender_id.set || !c->recipient_id.set) {
        fmt_err(err, err_size,
                "sender_id and recipient_id are required (hex; an empty value is the empty ID)");
        return false;
    }
    if (cl_aead_params(c->aead, &key_len, &nonce_len, &tag_len) != CL_OK) {
        fmt_err(err, err_size, "%s: aead %d is not supported by this build", c->aead_src,
                (int)c->aead);
        return false;
    }
    /* Section 5.2: the ID must fit the nonce with 6 bytes to spare. */
    const config_bytes_t *ids[2] = {&c->sender_id, &c->recipient_id};
    const char *names[2] = {"sender_id", "recipient_id"};
    for (int i = 0; i < 2; i++) {
        if (ids[i]->len > nonce_len - 6) {
            fmt_err(err, err_size,
                    "%s: %s is %zu bytes; with aead %d (nonce %zu bytes) at most %zu allowed",
                    ids[i]->src, names[i], ids[i]->len, (int)c->aead, nonce_len, nonce_len - 6);
            return false;
        }
    }
    if (c->sender_id.len == c->recipient_id.len &&
        memcmp(c->sender_id.v, c->recipient_id.v, c->sender_id.len) == 0) {
        fmt_err(err, err_size,
                "%s / %s: sender_id and recipient_id must differ (RFC 8613 section 3.3)",
                c->sender_id.src, c->recipient_id.src);
        return false;
    }
    if (c->seq_file[0] == '\0') {
        fmt_err(err, err_size,
                "seq_file is required: without it a restarted endpoint would reuse its "
                "sequence numbers and hence nonces (RFC 8613 Appendix B.1.1); set "
                "'seq_file = PATH' or --seq-file PATH");
        return false;
    }
    return true;
}

void config_params(const oscore_config_t *c, cl_oscore_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->master_secret = c->master_secret.v;
    p->master_secret_len = c->master_secret.len;
    p->master_salt = c->master_salt.len ? c->master_salt.v : NULL;
    p->master_salt_len = c->master_salt.len;
    p->sender_id = c->sender_id.v;
    p->sender_id_len = c->sender_id.len;
    p->recipient_id = c->recipient_id.v;
    p->recipient_id_len = c->recipient_id.len;
    if (c->id_context.set) {
        p->id_context = c->id_context.v;
        p->id_context_len = c->id_context.len;
    }
    p->aead = c->aead;
    p->replay_window = c->replay_window;
    p->echo_on_boot = c->echo_recovery;
}
