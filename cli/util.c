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
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "cloister/cbor.h"

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

static bool json_item(FILE *out, cl_cbor_dec_t *d, int depth)
{
    cl_cbor_type_t t;
    size_t n, len;
    const uint8_t *p;
    const char *s;

    if (depth > 16 || cl_cbor_dec_peek(d, &t) != CL_OK)
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
            if (i > 0)
                fputs(", ", out);
            if (!json_item(out, d, depth + 1))
                return false;
        }
        fputc(']', out);
        return true;
    case CL_CBOR_MAP:
        if (cl_cbor_dec_map(d, &n) != CL_OK)
            return false;
        fputc('{', out);
        for (size_t i = 0; i < n; i++) {
            cl_cbor_type_t kt;
            if (i > 0)
                fputs(", ", out);
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
            if (!json_item(out, d, depth + 1))
                return false;
        }
        fputc('}', out);
        return true;
    case CL_CBOR_TAG: {
        uint64_t tag;
        return cl_cbor_dec_tag(d, &tag) == CL_OK && json_item(out, d, depth + 1);
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
    return json_item(out, &d, 0) && cl_cbor_dec_at_end(&d);
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
    for (size_t i = 0; i < sl; i++) /* shown on a terminal: no control characters */
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            out[i] = '?';
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
