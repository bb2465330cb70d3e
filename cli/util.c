/*
 * cli/util.c - the plumbing every `cloister` command shares (cli.h):
 * messages, the option parser, durations and hex, small files written
 * exclusively and durably, PEM certificates, the key=value configuration
 * files, and CBOR shown as JSON.
 *
 * Files that hold state (owner.pem, core-*.pem, *.conf) are created with
 * O_EXCL | O_NOFOLLOW and fsync'ed, as the keystore does for key files, so a
 * command never silently replaces the owner's material.
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "cloister/cbor.h"
#include "cloister/json.h"
#include "net.h"

/* ---------------------------------------------------------- diagnostics */

void cli_fail(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("cloister: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* ---------------------------------------------------------- options */

cli_opt_t *cli_opt(cli_opt_t *opts, size_t n_opts, const char *name)
{
    for (size_t i = 0; i < n_opts; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

const char *cli_val(cli_opt_t *opts, size_t n_opts, const char *name)
{
    cli_opt_t *o = cli_opt(opts, n_opts, name);
    return o != NULL && o->n > 0 && o->has_arg ? o->vals[(o->n - 1) % CLI_OPT_MULTI] : NULL;
}

bool cli_has(cli_opt_t *opts, size_t n_opts, const char *name)
{
    cli_opt_t *o = cli_opt(opts, n_opts, name);
    return o != NULL && o->n > 0;
}

int cli_parse(int argc, char **argv, int first, cli_opt_t *opts, size_t n_opts, const char **pos,
              size_t max_pos, size_t *n_pos, char *err, size_t err_size)
{
    bool only_pos = false;

    *n_pos = 0;
    for (size_t i = 0; i < n_opts; i++)
        opts[i].n = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*n_pos == max_pos) {
                cli_err(err, err_size, "unexpected argument '%s' (try --help)", a);
                return 2;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return 1;
        const char *eq = strchr(a, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - a) : strlen(a);
        cli_opt_t *o = NULL;
        for (size_t k = 0; k < n_opts; k++)
            if (strlen(opts[k].name) == name_len && strncmp(opts[k].name, a, name_len) == 0)
                o = &opts[k];
        if (o == NULL) {
            cli_err(err, err_size, "unknown option '%.*s' (try --help)", (int)name_len, a);
            return 2;
        }
        const char *val = NULL;
        if (o->has_arg) {
            if (eq != NULL)
                val = eq + 1;
            else if (i + 1 < argc)
                val = argv[++i];
            else {
                cli_err(err, err_size, "%s needs a value (try --help)", o->name);
                return 2;
            }
        } else if (eq != NULL) {
            cli_err(err, err_size, "%s takes no value", o->name);
            return 2;
        }
        if (o->n > 0 && !o->multi) {
            cli_err(err, err_size, "%s given twice", o->name);
            return 2;
        }
        if (o->n == CLI_OPT_MULTI) {
            cli_err(err, err_size, "%s given more than %d times", o->name, CLI_OPT_MULTI);
            return 2;
        }
        o->vals[o->n++] = val;
    }
    return 0;
}

bool cli_opts_only(cli_opt_t *opts, size_t n_opts, const char *allowed, const char *what,
                   char *err, size_t err_size)
{
    for (size_t i = 0; i < n_opts; i++) {
        size_t nl = strlen(opts[i].name);
        const char *p = allowed;
        bool ok = false;
        if (opts[i].n == 0)
            continue;
        while (!ok && (p = strstr(p, opts[i].name)) != NULL) {
            ok = (p == allowed || p[-1] == ' ') && (p[nl] == ' ' || p[nl] == '\0');
            p += nl;
        }
        if (!ok) {
            cli_err(err, err_size, "%s is not an option of `cloister %s` (try --help)",
                    opts[i].name, what);
            return false;
        }
    }
    return true;
}

bool cli_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = (uint64_t)v;
    return true;
}

bool cli_parse_duration(const char *s, uint64_t *out)
{
    uint64_t total = 0;

    if (s == NULL || *s == '\0')
        return false;
    while (*s != '\0') {
        uint64_t v = 0, unit;
        if (*s < '0' || *s > '9')
            return false;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (UINT64_MAX - 9) / 10)
                return false;
            v = v * 10 + (uint64_t)(*s - '0');
        }
        switch (*s) {
        case '\0': unit = 1; break;
        case 's': unit = 1; s++; break;
        case 'm': unit = 60; s++; break;
        case 'h': unit = 3600; s++; break;
        case 'd': unit = 86400; s++; break;
        case 'w': unit = 7 * 86400; s++; break;
        default: return false;
        }
        if (v > (UINT64_MAX - total) / unit)
            return false;
        total += v * unit;
    }
    *out = total;
    return true;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

bool cli_hex_decode(const char *s, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t n;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    n = strlen(s);
    if (n % 2 != 0 || n / 2 > out_size)
        return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    *out_len = n / 2;
    return true;
}

void cli_hex(char *out, size_t out_size, const uint8_t *p, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    if (out_size == 0)
        return;
    for (i = 0; i < len && 2 * i + 2 < out_size; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * i] = '\0';
}

void cli_sha256(const uint8_t *p, size_t len, uint8_t out[32])
{
    SHA256(p, len, out);
}

void cli_time_iso(char *out, size_t out_size, int64_t unix_s)
{
    time_t t = (time_t)unix_s;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, out_size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, out_size, "@%lld", (long long)unix_s);
}

void cli_time_iso_ms(char *out, size_t out_size, int64_t unix_ms)
{
    int64_t s = unix_ms / 1000, ms = unix_ms % 1000;

    if (ms < 0) {
        ms += 1000;
        s--;
    }
    cli_time_iso(out, out_size, s);
    size_t n = strlen(out);
    if (n > 0 && out[n - 1] == 'Z') /* ...:SSZ -> ...:SS.mmmZ */
        snprintf(out + n - 1, out_size - (n - 1), ".%03dZ", (int)ms);
}

bool cli_name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

const char *cli_dir_opt(cli_opt_t *opts, size_t n_opts)
{
    const char *d = cli_val(opts, n_opts, "--dir");
    return d != NULL ? d : cli_val(opts, n_opts, "--owner");
}

/* ---------------------------------------------------------- files */

bool cli_path(char *out, size_t out_size, const char *dir, const char *name)
{
    int n = snprintf(out, out_size, "%s/%s", dir, name);
    return n > 0 && (size_t)n < out_size;
}

bool cli_exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

void cli_abspath(const char *path, char *out, size_t out_size)
{
    char cwd[CLI_PATH_MAX];

    if (path[0] != '/' && getcwd(cwd, sizeof cwd) != NULL &&
        snprintf(out, out_size, "%s/%s", cwd, path) < (int)out_size)
        return;
    snprintf(out, out_size, "%s", path);
}

bool cli_mkdir(const char *dir, bool *created, char *err, size_t err_size)
{
    struct stat sb;

    if (created != NULL)
        *created = false;
    if (stat(dir, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return true;
        cli_err(err, err_size, "%s exists and is not a directory", dir);
        return false;
    }
    if (mkdir(dir, 0700) != 0) {
        cli_err(err, err_size, "cannot create the directory %s: %s", dir, strerror(errno));
        return false;
    }
    if (created != NULL)
        *created = true;
    return true;
}

bool cli_read_file(const char *path, uint8_t *buf, size_t size, size_t *len, char *err,
                   size_t err_size)
{
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        cli_err(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    *len = fread(buf, 1, size, f);
    bool too_big = *len == size && fgetc(f) != EOF;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad || too_big) {
        cli_err(err, err_size, "cannot read %s: %s", path, bad ? "read error" : "file too large");
        return false;
    }
    return true;
}

static bool fsync_dir_of(const char *path)
{
    char dir[CLI_PATH_MAX];
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

bool cli_write_file(const char *path, const void *data, size_t len, unsigned mode, bool replace,
                    char *err, size_t err_size)
{
    char tmp[CLI_PATH_MAX + 8];
    const char *target = path;
    const uint8_t *p = data;
    size_t done = 0;

    if (replace) {
        if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp) {
            cli_err(err, err_size, "path too long: %s", path);
            return false;
        }
        (void)unlink(tmp);
        target = tmp;
    }
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        if (errno == EEXIST)
            cli_err(err, err_size, "%s exists already; not overwriting it", target);
        else
            cli_err(err, err_size, "cannot create %s: %s", target, strerror(errno));
        return false;
    }
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    bool ok = done == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (ok && replace && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        cli_err(err, err_size, "cannot write %s: %s", path, strerror(errno));
        (void)unlink(target);
        return false;
    }
    (void)fsync_dir_of(path);
    return true;
}

/* ---------------------------------------------------------- certificates */

#define CERT_FILE_MAX (64 * 1024)

bool cli_certs_read(const char *path, uint8_t (*der)[CLI_CERT_MAX], size_t *lens, size_t max,
                    size_t *n, char *err, size_t err_size)
{
    uint8_t *buf = malloc(CERT_FILE_MAX);
    size_t len;
    bool ok = false;
    X509 *x;

    *n = 0;
    if (buf == NULL) {
        cli_err(err, err_size, "out of memory");
        return false;
    }
    if (!cli_read_file(path, buf, CERT_FILE_MAX, &len, err, err_size))
        goto done;
    BIO *b = BIO_new_mem_buf(buf, (int)len);
    while (b != NULL && *n < max && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        int dl = i2d_X509(x, NULL);
        uint8_t *q = der[*n];
        if (dl <= 0 || dl > CLI_CERT_MAX) {
            X509_free(x);
            BIO_free(b);
            cli_err(err, err_size, "%s: certificate too large", path);
            goto done;
        }
        lens[*n] = (size_t)i2d_X509(x, &q);
        (*n)++;
        X509_free(x);
    }
    BIO_free(b);
    ERR_clear_error();
    if (*n == 0 && max > 0) { /* one DER certificate */
        const uint8_t *q = buf;
        x = d2i_X509(NULL, &q, (long)len);
        ERR_clear_error();
        if (x == NULL || q != buf + len || len > CLI_CERT_MAX) {
            X509_free(x);
            cli_err(err, err_size, "%s holds no certificate (PEM or DER expected)", path);
            goto done;
        }
        X509_free(x);
        memcpy(der[0], buf, len);
        lens[0] = len;
        *n = 1;
    }
    ok = true;
done:
    free(buf);
    return ok;
}

bool cli_cert_read(const char *path, uint8_t *der, size_t size, size_t *len, char *err,
                   size_t err_size)
{
    uint8_t(*tmp)[CLI_CERT_MAX] = malloc(CLI_CERT_MAX);
    size_t lens[1], n;
    bool ok = false;

    if (tmp == NULL) {
        cli_err(err, err_size, "out of memory");
        return false;
    }
    if (cli_certs_read(path, tmp, lens, 1, &n, err, err_size)) {
        if (lens[0] > size) {
            cli_err(err, err_size, "%s: certificate too large", path);
        } else {
            memcpy(der, tmp[0], lens[0]);
            *len = lens[0];
            ok = true;
        }
    }
    free(tmp);
    return ok;
}

bool cli_certs_pem(const uint8_t *const *der, const size_t *lens, size_t n, char *out,
                   size_t out_size, size_t *out_len)
{
    BIO *b = BIO_new(BIO_s_mem());
    bool ok = b != NULL;
    char *p;

    for (size_t i = 0; ok && i < n; i++) {
        const uint8_t *q = der[i];
        X509 *x = d2i_X509(NULL, &q, (long)lens[i]);
        ok = x != NULL && PEM_write_bio_X509(b, x) == 1;
        X509_free(x);
    }
    long len = ok ? BIO_get_mem_data(b, &p) : 0;
    if (ok && (len <= 0 || (size_t)len >= out_size))
        ok = false;
    if (ok) {
        memcpy(out, p, (size_t)len);
        out[len] = '\0';
        *out_len = (size_t)len;
    }
    BIO_free(b);
    ERR_clear_error();
    return ok;
}

bool cli_certs_write(const char *path, const uint8_t *const *der, const size_t *lens, size_t n,
                     bool replace, char *err, size_t err_size)
{
    char *pem = malloc(4 * CLI_CERT_MAX * (n + 1));
    size_t len;
    bool ok;

    if (pem == NULL) {
        cli_err(err, err_size, "out of memory");
        return false;
    }
    ok = cli_certs_pem(der, lens, n, pem, 4 * CLI_CERT_MAX * (n + 1), &len);
    if (!ok)
        cli_err(err, err_size, "cannot encode the certificate for %s", path);
    else
        ok = cli_write_file(path, pem, len, 0644, replace, err, err_size);
    free(pem);
    return ok;
}

/* ---------------------------------------------------------- conf files */

static char *trim(char *s)
{
    char *e;

    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

bool cli_conf_read(cli_conf_t *c, const char *path, char *err, size_t err_size)
{
    char line[CLI_CONF_VAL + 64];
    FILE *f = fopen(path, "r");
    unsigned lineno = 0;

    memset(c, 0, sizeof *c);
    if (f == NULL) {
        cli_err(err, err_size, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *s = trim(line), *eq;
        if (*s == '\0' || *s == '#')
            continue;
        if ((eq = strchr(s, '=')) == NULL) {
            fclose(f);
            cli_err(err, err_size, "%s line %u: 'key = value' expected", path, lineno);
            return false;
        }
        *eq = '\0';
        if (!cli_conf_set(c, trim(s), trim(eq + 1))) {
            fclose(f);
            cli_err(err, err_size, "%s line %u: too many or too long entries", path, lineno);
            return false;
        }
    }
    fclose(f);
    return true;
}

bool cli_conf_set(cli_conf_t *c, const char *key, const char *val)
{
    size_t i;

    if (strlen(key) >= sizeof c->key[0] || strlen(val) >= sizeof c->val[0])
        return false;
    for (i = 0; i < c->n; i++)
        if (strcmp(c->key[i], key) == 0)
            break;
    if (i == c->n) {
        if (c->n == CLI_CONF_MAX)
            return false;
        c->n++;
    }
    snprintf(c->key[i], sizeof c->key[i], "%s", key);
    snprintf(c->val[i], sizeof c->val[i], "%s", val);
    return true;
}

const char *cli_conf_get(const cli_conf_t *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->key[i], key) == 0)
            return c->val[i];
    return NULL;
}

bool cli_conf_write(const cli_conf_t *c, const char *path, const char *comment, bool replace,
                    char *err, size_t err_size)
{
    char buf[CLI_CONF_MAX * (CLI_CONF_VAL + 40) + 256];
    size_t len = 0;

    len += (size_t)snprintf(buf, sizeof buf, "# %s\n", comment);
    for (size_t i = 0; i < c->n && len < sizeof buf; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s = %s\n", c->key[i], c->val[i]);
    if (len >= sizeof buf) {
        cli_err(err, err_size, "%s: configuration too long", path);
        return false;
    }
    return cli_write_file(path, buf, len, 0600, replace, err, err_size);
}

/* ---------------------------------------------------------- CBOR shown */

void cli_json_str(FILE *out, const char *s, size_t len)
{
    fputc('"', out);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch == '\n')
            fputs("\\n", out);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

/* Newline and indentation before an item of a pretty-printed container (indent < 0: ", "). */
static void json_sep(FILE *out, int indent, int depth, bool first)
{
    if (indent < 0) {
        if (!first)
            fputs(", ", out);
        return;
    }
    fprintf(out, "%s\n%*s", first ? "" : ",", indent * (depth + 1), "");
}

/* indent < 0: one line ("{"a": 1, "b": [1, 2]}"); else that many spaces per level. */
static bool json_item(FILE *out, cl_cbor_dec_t *d, int depth, int indent)
{
    cl_cbor_type_t t;
    size_t n, len;
    const uint8_t *p;
    const char *s;

    if (depth > CL_JSON_MAX_DEPTH || cl_cbor_dec_peek(d, &t) != CL_OK)
        return false;
    switch (t) {
    case CL_CBOR_UINT:
    case CL_CBOR_NINT: {
        int64_t v;
        uint64_t u;
        if (t == CL_CBOR_UINT) {
            if (cl_cbor_dec_uint(d, &u) != CL_OK)
                return false;
            fprintf(out, "%llu", (unsigned long long)u);
        } else {
            if (cl_cbor_dec_int(d, &v) != CL_OK)
                return false;
            fprintf(out, "%lld", (long long)v);
        }
        return true;
    }
    case CL_CBOR_BSTR: {
        if (cl_cbor_dec_bstr(d, &p, &len) != CL_OK)
            return false;
        fputc('"', out);
        for (size_t i = 0; i < len; i++)
            fprintf(out, "%02x", p[i]);
        fputc('"', out);
        return true;
    }
    case CL_CBOR_TSTR:
        if (cl_cbor_dec_tstr(d, &s, &len) != CL_OK)
            return false;
        cli_json_str(out, s, len);
        return true;
    case CL_CBOR_ARRAY:
        if (cl_cbor_dec_array(d, &n) != CL_OK)
            return false;
        fputc('[', out);
        for (size_t i = 0; i < n; i++) {
            json_sep(out, indent, depth, i == 0);
            if (!json_item(out, d, depth + 1, indent))
                return false;
        }
        if (indent >= 0 && n > 0)
            fprintf(out, "\n%*s", indent * depth, "");
        fputc(']', out);
        return true;
    case CL_CBOR_MAP:
        if (cl_cbor_dec_map(d, &n) != CL_OK)
            return false;
        fputc('{', out);
        for (size_t i = 0; i < n; i++) {
            cl_cbor_type_t kt;
            json_sep(out, indent, depth, i == 0);
            if (cl_cbor_dec_peek(d, &kt) != CL_OK)
                return false;
            if (kt == CL_CBOR_TSTR) {
                if (cl_cbor_dec_tstr(d, &s, &len) != CL_OK)
                    return false;
                cli_json_str(out, s, len);
            } else {
                int64_t v;
                if (cl_cbor_dec_int(d, &v) != CL_OK)
                    return false;
                fprintf(out, "\"%lld\"", (long long)v);
            }
            fputs(": ", out);
            if (!json_item(out, d, depth + 1, indent))
                return false;
        }
        if (indent >= 0 && n > 0)
            fprintf(out, "\n%*s", indent * depth, "");
        fputc('}', out);
        return true;
    case CL_CBOR_TAG: {
        uint64_t tag;
        return cl_cbor_dec_tag(d, &tag) == CL_OK && json_item(out, d, depth + 1, indent);
    }
    case CL_CBOR_SIMPLE: {
        bool b;
        double v;
        if (cl_cbor_dec_bool(d, &b) == CL_OK) {
            fputs(b ? "true" : "false", out);
            return true;
        }
        if (cl_cbor_dec_double(d, &v) == CL_OK) {
            fprintf(out, "%.17g", v);
            return true;
        }
        uint8_t sv;
        if (cl_cbor_dec_null(d) != CL_OK && cl_cbor_dec_undefined(d) != CL_OK &&
            cl_cbor_dec_simple(d, &sv) != CL_OK)
            return false;
        fputs("null", out);
        return true;
    }
    }
    return false;
}

bool cli_cbor_json(FILE *out, const uint8_t *cbor, size_t len)
{
    cl_cbor_dec_t d;

    cl_cbor_dec_init(&d, cbor, len);
    return json_item(out, &d, 0, -1) && cl_cbor_dec_at_end(&d);
}

bool cli_cbor_json_pretty(FILE *out, const uint8_t *cbor, size_t len)
{
    cl_cbor_dec_t d;

    cl_cbor_dec_init(&d, cbor, len);
    return json_item(out, &d, 0, 2) && cl_cbor_dec_at_end(&d);
}

bool cli_map_get(const uint8_t *map, size_t len, const char *key, const uint8_t **val,
                 size_t *val_len)
{
    cl_cbor_dec_t d;
    size_t n, klen = strlen(key);

    cl_cbor_dec_init(&d, map, len);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        bool is_text = cl_cbor_dec_tstr(&d, &k, &kl) == CL_OK;
        if (!is_text && cl_cbor_dec_skip(&d) != CL_OK)
            return false;
        if (is_text && kl == klen && memcmp(k, key, klen) == 0)
            return cl_cbor_dec_raw(&d, val, val_len) == CL_OK;
        if (cl_cbor_dec_skip(&d) != CL_OK)
            return false;
    }
    return false;
}

bool cli_map_bstr(const uint8_t *map, size_t len, const char *key, const uint8_t **p,
                  size_t *plen)
{
    const uint8_t *v;
    size_t vl;
    cl_cbor_dec_t d;

    if (!cli_map_get(map, len, key, &v, &vl))
        return false;
    cl_cbor_dec_init(&d, v, vl);
    return cl_cbor_dec_bstr(&d, p, plen) == CL_OK;
}

/* Text shown on a terminal: control characters become '?'. */
static void printable(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

bool cli_map_tstr(const uint8_t *map, size_t len, const char *key, char *out, size_t out_size)
{
    const uint8_t *v;
    const char *s;
    size_t vl, sl;
    cl_cbor_dec_t d;

    if (!cli_map_get(map, len, key, &v, &vl))
        return false;
    cl_cbor_dec_init(&d, v, vl);
    if (cl_cbor_dec_tstr(&d, &s, &sl) != CL_OK || sl >= out_size)
        return false;
    memcpy(out, s, sl);
    out[sl] = '\0';
    printable(out);
    return true;
}

bool cli_map_uint(const uint8_t *map, size_t len, const char *key, uint64_t *v)
{
    const uint8_t *p;
    size_t pl;
    cl_cbor_dec_t d;

    if (!cli_map_get(map, len, key, &p, &pl))
        return false;
    cl_cbor_dec_init(&d, p, pl);
    return cl_cbor_dec_uint(&d, v) == CL_OK;
}

bool cli_map_int(const uint8_t *map, size_t len, const char *key, int64_t *v)
{
    const uint8_t *p;
    size_t pl;
    cl_cbor_dec_t d;

    if (!cli_map_get(map, len, key, &p, &pl))
        return false;
    cl_cbor_dec_init(&d, p, pl);
    return cl_cbor_dec_int(&d, v) == CL_OK;
}

bool cli_core_error_is(const uint8_t *payload, size_t len, const char *code)
{
    char got[64];

    return payload != NULL && len > 0 && cli_map_tstr(payload, len, "error", got, sizeof got) &&
           strcmp(got, code) == 0;
}

const char cli_ident_footer[] =
    "Identity: --owner DIR (the owner's directory) or --dir DIR (an enrolled client's\n"
    "directory); changes need the owner or an admin, reading works for users too.\n"
    "--server URI overrides the server saved in DIR; --json prints the core's answer.\n";

/* The help of one subcommand (h) or of them all (h NULL). */
static void sub_help(const cli_cmd_spec_t *c, const cli_sub_t *h)
{
    if (h != NULL) {
        printf("usage: cloister %s %s\n%s%s", c->cmd, h->usage, h->details,
               strstr(h->opts, "--owner") != NULL ? cli_ident_footer : "");
        return;
    }
    for (size_t i = 0; i < c->n; i++)
        printf("%s cloister %s %s\n", i == 0 ? "usage:" : "      ", c->cmd, c->subs[i].usage);
    printf("%s(cloister %s SUBCOMMAND --help for details)\n%s", c->about, c->cmd,
           cli_ident_footer);
}

int cli_sub_main(const cli_cmd_spec_t *c, int argc, char **argv, cli_opt_t *opts, size_t n_opts)
{
    char err[600], what[64];
    const char *pos[3];
    size_t n_pos;
    const cli_sub_t *h = NULL;
    int k = cli_parse(argc, argv, 2, opts, n_opts, pos, 2, &n_pos, err, sizeof err);

    for (size_t i = 0; n_pos > 0 && i < c->n; i++)
        if (strcmp(pos[0], c->subs[i].sub) == 0)
            h = &c->subs[i];
    if (k == 1) {
        sub_help(c, h);
        return CLI_EXIT_OK;
    }
    if (k != 0) {
        cli_fail("%s", err);
        return CLI_EXIT_ERROR;
    }
    if (h == NULL) {
        if (n_pos > 0)
            cli_fail("cloister %s: no subcommand '%s'", c->cmd, pos[0]);
        for (size_t i = 0; i < c->n; i++)
            fprintf(stderr, "%s cloister %s %s\n", i == 0 ? "usage:" : "      ", c->cmd,
                    c->subs[i].usage);
        fprintf(stderr, "(cloister %s --help for details)\n", c->cmd);
        return CLI_EXIT_ERROR;
    }
    snprintf(what, sizeof what, "%s %s", c->cmd, h->sub);
    if (!cli_opts_only(opts, n_opts, h->opts, what, err, sizeof err)) {
        cli_fail("%s", err);
        return CLI_EXIT_ERROR;
    }
    if (n_pos - 1 < h->args_min || n_pos - 1 > h->args_max) {
        cli_fail("usage: cloister %s %s", c->cmd, h->usage);
        return CLI_EXIT_ERROR;
    }
    cli_sub_ctx_t x = {.opts = opts, .n_opts = n_opts, .pos = pos, .n_pos = n_pos};
    if ((x.out = malloc(CLI_PAYLOAD_MAX)) == NULL) {
        cli_fail("out of memory");
        return CLI_EXIT_ERROR;
    }
    int rc = h->run(&x);
    free(x.out);
    return rc;
}

void cli_core_error(const uint8_t *payload, size_t len, char *out, size_t out_size)
{
    char code[64], msg[256];

    out[0] = '\0';
    if (payload == NULL || len == 0 || !cli_map_tstr(payload, len, "error", code, sizeof code))
        return;
    if (cli_map_tstr(payload, len, "message", msg, sizeof msg))
        snprintf(out, out_size, "%s: %s", code, msg);
    else
        snprintf(out, out_size, "%s", code);
}

bool cli_map_bool(const uint8_t *map, size_t len, const char *key, bool *v)
{
    const uint8_t *p;
    size_t pl;
    cl_cbor_dec_t d;

    if (!cli_map_get(map, len, key, &p, &pl))
        return false;
    cl_cbor_dec_init(&d, p, pl);
    return cl_cbor_dec_bool(&d, v) == CL_OK;
}

void cli_cbor_show(const uint8_t *val, size_t len, char *out, size_t out_size)
{
    cl_cbor_dec_t d;
    const char *s;
    size_t sl;

    if (out_size == 0)
        return;
    out[0] = '\0';
    cl_cbor_dec_init(&d, val, len);
    if (cl_cbor_dec_tstr(&d, &s, &sl) == CL_OK) {
        snprintf(out, out_size, "%.*s", (int)(sl < out_size ? sl : out_size - 1), s);
    } else {
        FILE *f = fmemopen(out, out_size, "w");
        if (f == NULL)
            return;
        setvbuf(f, NULL, _IONBF, 0);
        if (!cli_cbor_json(f, val, len))
            rewind(f);
        fputc('\0', f);
        fclose(f);
        out[out_size - 1] = '\0';
    }
    printable(out);
}

/* show(value of key) into out, "" when the key is absent. */
static void map_shown(const uint8_t *map, size_t len, const char *key, char *out, size_t out_size,
                      void (*show)(const uint8_t *, size_t, char *, size_t))
{
    const uint8_t *v;
    size_t vl;

    if (out_size > 0)
        out[0] = '\0';
    if (cli_map_get(map, len, key, &v, &vl))
        show(v, vl, out, out_size);
}

void cli_map_show(const uint8_t *map, size_t len, const char *key, char *out, size_t out_size)
{
    map_shown(map, len, key, out, out_size, cli_cbor_show);
}

void cli_text_list(const uint8_t *arr, size_t len, char *out, size_t out_size)
{
    cl_cbor_dec_t d;
    size_t n, used = 0;

    if (out_size == 0)
        return;
    out[0] = '\0';
    cl_cbor_dec_init(&d, arr, len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK)
        return;
    for (size_t k = 0; k < n; k++) {
        const char *t;
        size_t tl;
        if (cl_cbor_dec_tstr(&d, &t, &tl) != CL_OK || used + tl + 2 > out_size)
            break;
        if (used > 0)
            out[used++] = ',';
        memcpy(out + used, t, tl);
        used += tl;
        out[used] = '\0';
    }
    printable(out);
}

void cli_map_list(const uint8_t *map, size_t len, const char *key, char *out, size_t out_size)
{
    map_shown(map, len, key, out, out_size, cli_text_list);
}

int cli_print_json(const uint8_t *cbor, size_t len)
{
    if (!cli_cbor_json(stdout, cbor, len)) {
        putchar('\n');
        cli_fail("the core's answer is malformed");
        return CLI_EXIT_ERROR;
    }
    putchar('\n');
    return CLI_EXIT_OK;
}

bool cli_list_open(cl_cbor_dec_t *d, const uint8_t *list, size_t len, size_t *n)
{
    cl_cbor_dec_init(d, list, len);
    if (cl_cbor_dec_array(d, n) != CL_OK) {
        cli_fail("the core's answer is not a list");
        return false;
    }
    return true;
}

/* ---------------------------------------------------------- JSON documents */

void cli_json_where(const char *text, size_t len, size_t off, unsigned *line, unsigned *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xc0) != 0x80) { /* code points, not bytes */
            (*col)++;
        }
    }
}

bool cli_json_parse(const char *what, const char *text, size_t len, uint8_t *out, size_t out_size,
                    size_t *out_len, char *err, size_t err_size)
{
    size_t off = 0;
    unsigned line, col;
    const char *why;
    cl_status_t st;

    if (len == 0) {
        cli_err(err, err_size, "%s is empty (a JSON document is expected)", what);
        return false;
    }
    st = cl_json_to_cbor(text, len, out, out_size, out_len, &off);
    if (st == CL_OK)
        return true;
    switch (st) {
    case CL_ERR_BUFFER_TOO_SMALL:
        cli_err(err, err_size, "%s is too large (more than %zu bytes once converted to CBOR)", what,
                out_size);
        return false;
    case CL_ERR_LIMIT: why = "nested deeper than 32 levels"; break;
    default: why = off >= len ? "invalid JSON (the document ends too early)" : "invalid JSON"; break;
    }
    if (off > len)
        off = len;
    cli_json_where(text, len, off, &line, &col);
    /* the line itself with a caret under the problem, when it is short enough */
    size_t ls = off, le = off;
    while (ls > 0 && text[ls - 1] != '\n')
        ls--;
    while (le < len && text[le] != '\n' && text[le] != '\r')
        le++;
    if (le - ls <= 100 && le > ls) {
        char excerpt[101], caret[101];
        size_t k = 0, c = 0;
        for (size_t i = ls; i < le; i++) {
            unsigned char ch = (unsigned char)text[i];
            excerpt[k++] = ch == '\t' ? ' ' : (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
            if (i < off && (ch & 0xc0) != 0x80)
                caret[c++] = ' ';
        }
        excerpt[k] = '\0';
        caret[c] = '\0';
        cli_err(err, err_size, "%s line %u, column %u (byte %zu): %s\n    %s\n    %s^", what, line,
                col, off, why, excerpt, caret);
    } else {
        cli_err(err, err_size, "%s line %u, column %u (byte %zu): %s", what, line, col, off, why);
    }
    return false;
}

bool cli_json_file(const char *path, char *text, size_t text_size, size_t *text_len,
                   uint8_t *cbor, size_t cbor_size, size_t *cbor_len, char *err, size_t err_size)
{
    if (!cli_read_file(path, (uint8_t *)text, text_size, text_len, err, err_size))
        return false;
    return cli_json_parse(path, text, *text_len, cbor, cbor_size, cbor_len, err, err_size);
}

bool cli_json_object(const uint8_t *cbor, size_t len)
{
    cl_cbor_dec_t d;
    cl_cbor_type_t t;

    cl_cbor_dec_init(&d, cbor, len);
    return len > 0 && cl_cbor_dec_peek(&d, &t) == CL_OK && t == CL_CBOR_MAP;
}

bool cli_schema_file(const char *path, uint8_t *out, size_t out_size, size_t *out_len, char *err,
                     size_t err_size)
{
    char *text = malloc(CLI_JSON_TEXT_MAX);
    size_t text_len;
    bool ok = false;

    if (text == NULL) {
        cli_err(err, err_size, "out of memory");
        return false;
    }
    if (cli_json_file(path, text, CLI_JSON_TEXT_MAX, &text_len, out, out_size, out_len, err,
                      err_size)) {
        if (!cli_json_object(out, *out_len))
            cli_err(err, err_size, "%s: a JSON Schema is an object ({\"type\": \"object\", ...})",
                    path);
        else
            ok = true;
    }
    free(text);
    return ok;
}

/* ---------------------------------------------------------- public keys */

#define PEM_FILE_MAX (16 * 1024)

bool cli_pem_public_point(const char *path, uint8_t pub[65], char *err, size_t err_size)
{
    uint8_t *buf = malloc(PEM_FILE_MAX + 1);
    size_t len, plen = 0;
    EVP_PKEY *k = NULL;
    X509 *x = NULL;
    BIO *b = NULL;
    char group[32] = "";
    bool ok = false;

    if (buf == NULL) {
        cli_err(err, err_size, "out of memory");
        return false;
    }
    if (!cli_read_file(path, buf, PEM_FILE_MAX, &len, err, err_size))
        goto done;
    buf[len] = '\0';
    if (strstr((const char *)buf, "PRIVATE KEY-----") != NULL) {
        cli_err(err, err_size,
                "%s holds a private key; give the publisher's public key instead (the publisher "
                "makes it with `openssl pkey -in KEY.pem -pubout -out PUB.pem` or `cloister "
                "scenario sign ... --pub-out PUB.pem`)",
                path);
        goto done;
    }
    if ((b = BIO_new_mem_buf(buf, (int)len)) == NULL)
        goto bad;
    if ((k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL)) == NULL) {
        /* a certificate will do as well */
        (void)BIO_reset(b);
        if ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
            k = X509_get_pubkey(x);
    }
    if (k == NULL) {
        cli_err(err, err_size,
                "%s holds no PEM public key (\"-----BEGIN PUBLIC KEY-----\") or certificate", path);
        goto done;
    }
    if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC ||
        EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, NULL) !=
            1 ||
        strcmp(group, "prime256v1") != 0) {
        cli_err(err, err_size, "%s: the key is not a P-256 (prime256v1) EC key", path);
        goto done;
    }
    if (EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       "uncompressed") != 1 ||
        EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pub, 65, &plen) !=
            1 ||
        plen != 65 || pub[0] != 0x04)
        goto bad;
    ok = true;
    goto done;
bad:
    cli_err(err, err_size, "%s: cannot read the P-256 public key", path);
done:
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(b);
    ERR_clear_error();
    free(buf);
    return ok;
}

bool cli_pem_public_write(const char *path, const uint8_t pub[65], bool replace, char *err,
                          size_t err_size)
{
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *k = NULL;
    BIO *b = NULL;
    char *pem;
    bool ok = false;

    if (bld == NULL ||
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 65) != 1 ||
        (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
        (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
        EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) != 1 ||
        (b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_PUBKEY(b, k) != 1) {
        cli_err(err, err_size, "cannot encode the public key for %s", path);
        goto done;
    }
    long n = BIO_get_mem_data(b, &pem);
    ok = n > 0 && cli_write_file(path, pem, (size_t)n, 0644, replace, err, err_size);
done:
    BIO_free(b);
    EVP_PKEY_free(k);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    ERR_clear_error();
    return ok;
}

void cli_key_fingerprint(const uint8_t *pub, size_t len, char out[24])
{
    uint8_t h[32];

    cli_sha256(pub, len, h);
    for (int i = 0; i < 8; i++)
        snprintf(out + 3 * i, 4, "%02x%s", h[i], i < 7 ? ":" : "");
}
