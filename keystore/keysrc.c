/*
 * keysrc.c - private keys of the EDHOC examples: PEM files and PKCS#11
 * token keys, loaded into a crypto provider as handles.
 *
 * What: the command-line side (a file path or a `pkcs11:` URI, token flags,
 * environment), opening the one provider a program uses, and key_load(),
 * the single place where a key becomes a cl_key_t handle. A file goes
 * through the software keystore (cl_keystore_file_load: owner-only file
 * mode, PKCS#8/SEC1 PEM, every copy of the key bytes wiped); a token key is
 * found by its label with the PKCS#11 provider and never leaves the token
 * (ECDH and signing run inside it). Also: generating a key in the token and
 * writing a key's public half as PEM, so a test CA can certify a key it
 * never sees.
 *
 * Errors are returned as text; nothing here prints, and neither the PIN nor
 * key bytes ever reach a message. The PIN lives in one stack buffer between
 * reading it and C_Login, and is wiped on every path.
 */
#include "keysrc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "cloister/crypto_openssl.h"
#include "cloister/crypto_pkcs11.h"
#include "cloister/keystore.h"

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define PIN_MAX 256

const char keysrc_flags_help[] =
    "  --key FILE|URI          private key: PEM file (mode 0600) or\n"
    "                          pkcs11:token=LABEL;object=KEY[?module-path=SO&pin-source=file:F]\n"
    "  --pkcs11-module SO      PKCS#11 module (default $CLOISTER_PKCS11_MODULE or\n"
    "                          " DEFAULT_MODULE ")\n"
    "  --token-label L         token holding the key\n"
    "  --key-label K           key object label (instead of --key)\n"
    "  --pin-file F            user PIN in a file (default $CLOISTER_PKCS11_PIN; never printed)\n";

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

/* The first OpenSSL error as text ("" when none); clears the queue. */
static const char *ossl_reason(void)
{
    static char buf[160];
    unsigned long e = ERR_peek_last_error();

    buf[0] = '\0';
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

const char *key_type_name(cl_key_type_t t)
{
    switch (t) {
    case CL_KEY_P256: return "P-256";
    case CL_KEY_ED25519: return "Ed25519";
    case CL_KEY_X25519: return "X25519";
    default: return "?";
    }
}

static bool copy_str(char *dst, size_t size, const char *src, const char *what, char *err,
                     size_t err_size)
{
    size_t n = strlen(src);

    if (n >= size) {
        fmt_err(err, err_size, "%s is too long (at most %zu bytes)", what, size - 1);
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

int keysrc_take_flag(pkcs11_opts_t *o, int argc, char **argv, int *i, char *err, size_t err_size)
{
    static const struct {
        const char *flag;
        size_t off, size;
    } flags[] = {
        {"--pkcs11-module", offsetof(pkcs11_opts_t, module), sizeof o->module},
        {"--token-label", offsetof(pkcs11_opts_t, token), sizeof o->token},
        {"--key-label", offsetof(pkcs11_opts_t, key_label), sizeof o->key_label},
        {"--pin-file", offsetof(pkcs11_opts_t, pin_file), sizeof o->pin_file},
    };
    const char *a = argv[*i];

    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
        size_t n = strlen(flags[f].flag);
        const char *val;
        if (strncmp(a, flags[f].flag, n) != 0 || (a[n] != '\0' && a[n] != '='))
            continue;
        if (a[n] == '=') {
            val = a + n + 1;
        } else if (*i + 1 < argc) {
            val = argv[++*i];
        } else {
            fmt_err(err, err_size, "%s needs a value", flags[f].flag);
            return -1;
        }
        return copy_str((char *)o + flags[f].off, flags[f].size, val, flags[f].flag, err, err_size)
                   ? 1
                   : -1;
    }
    return 0;
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..len) into out (NUL terminated); false if malformed or too long. */
static bool pct_decode(const char *s, size_t len, char *out, size_t out_size)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= len)
                return false;
            int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
            if (hi < 0 || lo < 0)
                return false;
            ch = (char)(hi << 4 | lo);
            i += 2;
        }
        if (ch == '\0' || o + 1 >= out_size)
            return false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return true;
}

/* One `name=value` attribute of a pkcs11: URI. */
static bool uri_attr(keysrc_t *k, pkcs11_opts_t *o, const char *attr, size_t len, bool query,
                     char *err, size_t err_size)
{
    const char *eq = memchr(attr, '=', len);
    char value[KEYSRC_PATH_MAX];

    if (len == 0)
        return true;
    if (eq == NULL) {
        fmt_err(err, err_size, "pkcs11 URI: attribute '%.*s' has no value", (int)len, attr);
        return false;
    }
    size_t nlen = (size_t)(eq - attr);
    if (!pct_decode(eq + 1, len - nlen - 1, value, sizeof value)) {
        fmt_err(err, err_size, "pkcs11 URI: bad or too long value for '%.*s'", (int)nlen, attr);
        return false;
    }
#define IS(name) (nlen == strlen(name) && memcmp(attr, name, nlen) == 0)
    if (!query && IS("token"))
        return copy_str(o->token, sizeof o->token, value, "token label", err, err_size);
    if (!query && IS("object"))
        return copy_str(k->object, sizeof k->object, value, "object label", err, err_size);
    if (!query && IS("type")) {
        if (strcmp(value, "private") == 0)
            return true;
        fmt_err(err, err_size, "pkcs11 URI: type must be 'private' (the private key)");
        return false;
    }
    if (query && IS("module-path"))
        return copy_str(o->module, sizeof o->module, value, "module path", err, err_size);
    if (query && IS("pin-source")) {
        const char *path = strncmp(value, "file:", 5) == 0 ? value + 5 : value;
        return copy_str(o->pin_file, sizeof o->pin_file, path, "pin-source", err, err_size);
    }
    if (query && IS("pin-value")) {
        fmt_err(err, err_size,
                "pkcs11 URI: pin-value would put the PIN on the command line; use "
                "pin-source=file:F, --pin-file or CLOISTER_PKCS11_PIN");
        return false;
    }
#undef IS
    fmt_err(err, err_size,
            "pkcs11 URI: unsupported attribute '%.*s' (token, object, type; ?module-path, "
            "pin-source)",
            (int)nlen, attr);
    return false;
}

bool keysrc_parse(keysrc_t *k, pkcs11_opts_t *o, const char *arg, char *err, size_t err_size)
{
    memset(k, 0, sizeof *k);
    if (strncmp(arg, "pkcs11:", 7) != 0)
        return copy_str(k->file, sizeof k->file, arg, "key file name", err, err_size);

    const char *p = arg + 7;
    size_t path_len = strcspn(p, "?");
    k->pkcs11 = true;
    for (size_t i = 0; i < path_len;) {
        size_t n = strcspn(p + i, ";?");
        if (n > path_len - i)
            n = path_len - i;
        if (!uri_attr(k, o, p + i, n, false, err, err_size))
            return false;
        i += n + 1;
    }
    if (p[path_len] == '?') {
        const char *q = p + path_len + 1;
        while (*q != '\0') {
            size_t n = strcspn(q, "&");
            if (!uri_attr(k, o, q, n, true, err, err_size))
                return false;
            q += n + (q[n] == '&');
        }
    }
    if (k->object[0] == '\0') {
        fmt_err(err, err_size, "pkcs11 URI '%s' names no object (object=KEYLABEL)", arg);
        return false;
    }
    return true;
}

void keysrc_from_label(keysrc_t *k, const pkcs11_opts_t *o)
{
    memset(k, 0, sizeof *k);
    k->pkcs11 = true;
    snprintf(k->object, sizeof k->object, "%s", o->key_label);
}

/* The user PIN from the PIN file or the environment into pin[]; *have = false: none. */
static bool read_pin(const pkcs11_opts_t *o, char pin[PIN_MAX], bool *have, char *err,
                     size_t err_size)
{
    const char *env = getenv("CLOISTER_PKCS11_PIN");

    *have = false;
    if (o->pin_file[0] != '\0') {
        /* read(2), not stdio: no library buffer keeps a copy of the PIN. */
        int fd = open(o->pin_file, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, pin, PIN_MAX - 1) : -1;
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (n < 0) {
            fmt_err(err, err_size, "cannot read the PIN file %s: %s", o->pin_file, strerror(e));
            return false;
        }
        pin[n] = '\0';
        pin[strcspn(pin, "\r\n")] = '\0';
        if (pin[0] == '\0') {
            fmt_err(err, err_size, "the PIN file %s is empty", o->pin_file);
            return false;
        }
        *have = true;
    } else if (env != NULL) {
        if (strlen(env) >= PIN_MAX) {
            fmt_err(err, err_size, "CLOISTER_PKCS11_PIN is too long");
            return false;
        }
        memcpy(pin, env, strlen(env) + 1);
        *have = true;
    }
    return true;
}

bool provider_open(cl_crypto_t *c, bool token, const pkcs11_opts_t *o, char *what, size_t what_size,
                   char *err, size_t err_size)
{
    cl_status_t st;

    memset(c, 0, sizeof *c);
    if (!token) {
        if ((st = cl_crypto_openssl_new(c, 0)) != CL_OK) {
            fmt_err(err, err_size, "cannot create the OpenSSL crypto provider: %s",
                    cl_status_str(st));
            return false;
        }
        snprintf(what, what_size, "openssl");
        return true;
    }
    char pin[PIN_MAX], msg[256];
    bool have_pin = false, ok = false;
    const char *module = o->module[0] != '\0' ? o->module
                         : getenv("CLOISTER_PKCS11_MODULE") != NULL
                             ? getenv("CLOISTER_PKCS11_MODULE")
                             : DEFAULT_MODULE;

    if (o->token[0] == '\0') {
        fmt_err(err, err_size,
                "a token key needs a token label (--token-label or token= in "
                "the pkcs11 URI)");
        return false;
    }
    if (!read_pin(o, pin, &have_pin, err, err_size))
        goto done;
    msg[0] = '\0';
    st = cl_crypto_pkcs11_new(c, module, o->token, have_pin ? pin : NULL, msg, sizeof msg);
    if (st != CL_OK) {
        fmt_err(err, err_size, "cannot open PKCS#11 token '%s' via %s: %s%s%s", o->token, module,
                cl_status_str(st), msg[0] ? ": " : "", msg);
        goto done;
    }
    snprintf(what, what_size, "pkcs11 token '%s' via %s", o->token, module);
    ok = true;
done:
    cl_wipe(pin, sizeof pin);
    return ok;
}

void provider_close(cl_crypto_t *c, bool token)
{
    if (token) {
        cl_crypto_pkcs11_free(c);
        return;
    }
    cl_crypto_openssl_free(c);
}

/* File keys: the keystore checks the file's owner and mode, parses it and wipes every copy. */
static bool key_load_file(const cl_crypto_t *c, const char *path, uint32_t usage, cl_key_t *key,
                          cl_key_type_t *type, char *err, size_t err_size)
{
    char why[CL_KEYSTORE_ERR_SIZE] = "";
    cl_status_t st = cl_keystore_file_load(c, path, usage, key, type, why, sizeof why);

    if (st != CL_OK) {
        fmt_err(err, err_size, "cannot load the key file %s: %s%s%s", path, cl_status_str(st),
                why[0] ? ": " : "", why);
        return false;
    }
    return true;
}

bool key_load(const cl_crypto_t *c, const keysrc_t *k, uint32_t usage, cl_key_type_t hint,
              cl_key_t *key, cl_key_type_t *type, char *err, size_t err_size)
{
    *key = CL_KEY_NONE;
    if (!k->pkcs11)
        return key_load_file(c, k->file, usage, key, type, err, err_size);
    /* Token key: found by label; type and usage were fixed when it was generated. */
    uint8_t pub[CL_PUB_MAX];
    size_t pub_len = 0;
    cl_status_t st = cl_crypto_pkcs11_find_key(c, k->object, key);
    if (st != CL_OK) {
        fmt_err(err, err_size, "no usable key '%s' in the token: %s (%s)", k->object,
                cl_status_str(st), cl_crypto_pkcs11_last_error(c));
        return false;
    }
    if ((st = c->ops->key_export_public(c->self, *key, pub, sizeof pub, &pub_len)) != CL_OK) {
        fmt_err(err, err_size, "token key '%s' has no public key object: %s", k->object,
                cl_status_str(st));
        return false;
    }
    if (pub_len == 65) {
        *type = CL_KEY_P256;
    } else if (hint == CL_KEY_ED25519 || hint == CL_KEY_X25519) {
        *type = hint; /* 32 bytes: Ed25519 or X25519, the certificate tells which */
    } else {
        c->ops->key_destroy(c->self, *key);
        *key = CL_KEY_NONE;
        fmt_err(err, err_size,
                "token key '%s' is a 32-byte key; say whether it is Ed25519 or X25519 "
                "(a certificate, or --generate-key TYPE)",
                k->object);
        return false;
    }
    (void)usage;
    return true;
}

bool key_generate_in_token(const cl_crypto_t *c, const keysrc_t *k, cl_key_type_t type,
                           bool *created, char *err, size_t err_size)
{
    *created = false;
    cl_key_t key = CL_KEY_NONE;
    /* P-256 token keys both sign and derive, so one key serves every method. */
    uint32_t usage = type == CL_KEY_P256      ? (CL_KEY_USAGE_SIGN | CL_KEY_USAGE_ECDH)
                     : type == CL_KEY_ED25519 ? CL_KEY_USAGE_SIGN
                                              : CL_KEY_USAGE_ECDH;
    if (!k->pkcs11) {
        fmt_err(err, err_size, "--generate-key needs a token key (pkcs11: URI or --key-label)");
        return false;
    }
    if (cl_crypto_pkcs11_find_key(c, k->object, &key) == CL_OK) {
        c->ops->key_destroy(c->self, key); /* forgets the handle; the token object stays */
        return true;
    }
    cl_status_t st = cl_crypto_pkcs11_generate_key(c, type, usage, k->object, &key, NULL, 0, NULL);
    if (st != CL_OK) {
        const char *why = cl_crypto_pkcs11_last_error(c);
        fmt_err(err, err_size, "cannot generate a %s key '%s' in the token: %s (%s)%s",
                key_type_name(type), k->object, cl_status_str(st), why,
                strstr(why, "CKR_USER_NOT_LOGGED_IN") != NULL
                    ? "; no PIN was given: set CLOISTER_PKCS11_PIN, add ?pin-source=file:PATH "
                      "to the URI, or use --pin-file"
                    : "");
        return false;
    }
    c->ops->key_destroy(c->self, key);
    *created = true;
    return true;
}

bool pubkey_write_pem(const cl_crypto_t *c, cl_key_t key, cl_key_type_t type, const char *path,
                      char *err, size_t err_size)
{
    uint8_t pub[CL_PUB_MAX];
    size_t pub_len = 0;
    EVP_PKEY *pk = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIO *bio = NULL;
    bool ok = false;
    cl_status_t st;

    if ((st = c->ops->key_export_public(c->self, key, pub, sizeof pub, &pub_len)) != CL_OK) {
        fmt_err(err, err_size, "cannot read the public key: %s", cl_status_str(st));
        goto done;
    }
    if (type == CL_KEY_P256) {
        if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
            !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len) ||
            (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
            (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
            EVP_PKEY_fromdata_init(ctx) <= 0 ||
            EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
            pk = NULL;
    } else {
        pk = EVP_PKEY_new_raw_public_key(
            type == CL_KEY_ED25519 ? EVP_PKEY_ED25519 : EVP_PKEY_X25519, NULL, pub, pub_len);
    }
    if (pk == NULL) {
        fmt_err(err, err_size, "cannot encode the %s public key (%s)", key_type_name(type),
                ossl_reason());
        goto done;
    }
    if ((bio = BIO_new_file(path, "w")) == NULL || !PEM_write_bio_PUBKEY(bio, pk) ||
        BIO_flush(bio) != 1) {
        fmt_err(err, err_size, "cannot write %s: %s", path, strerror(errno));
        goto done;
    }
    ok = true;
done:
    BIO_free(bio);
    EVP_PKEY_free(pk);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return ok;
}
