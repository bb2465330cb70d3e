/*
 * file_keystore.c - private keys in PEM files (the software keystore).
 *
 * What: read a PEM private key (PKCS#8, or SEC1 for P-256) from a file that
 * only its owner can read, and hand the 32 key bytes to a crypto provider's
 * key_import_private, after which the key exists only behind a handle; write
 * new keys as PKCS#8 PEM files that are created 0600 and durable; read the
 * public key of a key file.
 *
 * Why it is shaped this way: a key file is the weakest link of a device
 * without a secure element, so the checks come before any parsing and look
 * at the file that was actually opened (fstat on the descriptor, not stat
 * on the path, so a file swapped between check and use is caught); it is
 * opened non-blocking so that a FIFO planted at the path cannot hang the
 * daemon. Every buffer that held key material (the file contents, the
 * decoded DER, the raw scalar, the PEM written out) is wiped before it is
 * freed; OpenSSL clears the EVP_PKEY's private parts itself. A P-256 SEC1
 * file carries its own public key: it must match the private key (pairwise
 * check), so a tampered file cannot make cl_keystore_file_public lie.
 *
 * Depends on: OpenSSL (PEM, DER, key generation), libc file I/O. Messages for
 * humans go to the caller's buffer; nothing is printed.
 */
#include "cloister/keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define P256_LEN 32

__attribute__((format(printf, 3, 4))) static void say(char *buf, size_t size, const char *fmt,
                                                      ...)
{
    va_list ap;

    if (buf == NULL || size == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static uint32_t usage_allowed(cl_key_type_t type)
{
    switch (type) {
    case CL_KEY_P256: return CL_KEY_USAGE_ECDH | CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY;
    case CL_KEY_X25519: return CL_KEY_USAGE_ECDH;
    case CL_KEY_ED25519: return CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY;
    default: return 0;
    }
}

static const char *type_name(cl_key_type_t type)
{
    switch (type) {
    case CL_KEY_P256: return "P-256";
    case CL_KEY_X25519: return "X25519";
    case CL_KEY_ED25519: return "Ed25519";
    default: return "unknown";
    }
}

/* ------------------------------------------------------------- reading */

/*
 * Opens path, checks the file rules on the opened descriptor and reads it
 * whole into *buf (heap, CL_KEYSTORE_FILE_MAX + 1 bytes, to be wiped and
 * freed by the caller).
 */
static cl_status_t read_key_file(const char *path, uint8_t **buf, size_t *len, char *err,
                                 size_t err_size)
{
    cl_status_t rc = CL_OK;
    int fd = -1;
    struct stat st;
    uint8_t *b = NULL;
    size_t n = 0;
    uid_t me = geteuid();

    *buf = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            say(err, err_size, "key file '%s' does not exist", path);
            rc = CL_FAIL(CL_ERR_NOT_FOUND);
        } else {
            say(err, err_size, "cannot open key file '%s': %s", path, strerror(errno));
            rc = CL_FAIL(CL_ERR_PERSIST);
        }
        goto done;
    }
    if (fstat(fd, &st) != 0) {
        say(err, err_size, "cannot stat key file '%s': %s", path, strerror(errno));
        rc = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        say(err, err_size, "key file '%s' is not a regular file", path);
        rc = CL_FAIL(CL_ERR_STATE);
        goto done;
    }
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        say(err, err_size,
            "key file '%s' has mode %04o: group and others must have no access "
            "(chmod 600 '%s')",
            path, (unsigned)(st.st_mode & 07777), path);
        rc = CL_FAIL(CL_ERR_STATE);
        goto done;
    }
    if (st.st_uid != me && st.st_uid != 0) {
        say(err, err_size, "key file '%s' is owned by uid %lu, not by this user (uid %lu) or root",
            path, (unsigned long)st.st_uid, (unsigned long)me);
        rc = CL_FAIL(CL_ERR_STATE);
        goto done;
    }
    if (st.st_size > CL_KEYSTORE_FILE_MAX) {
        say(err, err_size, "key file '%s' is too large (%lld bytes) for a private key", path,
            (long long)st.st_size);
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if ((b = malloc(CL_KEYSTORE_FILE_MAX + 1)) == NULL) {
        rc = CL_FAIL(CL_ERR_FULL);
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, b + n, CL_KEYSTORE_FILE_MAX + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            say(err, err_size, "cannot read key file '%s': %s", path, strerror(errno));
            rc = CL_FAIL(CL_ERR_PERSIST);
            goto done;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > CL_KEYSTORE_FILE_MAX) {
            say(err, err_size, "key file '%s' is too large for a private key", path);
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
    }
    *buf = b;
    *len = n;
    b = NULL;

done:
    if (b != NULL) {
        cl_wipe(b, CL_KEYSTORE_FILE_MAX + 1);
        free(b);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Decodes the DER of a PEM block by its label. */
static cl_status_t decode_der(const char *path, const char *name, const unsigned char *data,
                              long dlen, EVP_PKEY **pkey, char *err, size_t err_size)
{
    const unsigned char *q = data;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    cl_status_t rc = CL_OK;

    if (strcmp(name, "PRIVATE KEY") == 0) {
        p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &q, dlen);
        if (p8 != NULL && q == data + dlen)
            *pkey = EVP_PKCS82PKEY_ex(p8, NULL, NULL);
    } else if (strcmp(name, "EC PRIVATE KEY") == 0) {
        *pkey = d2i_PrivateKey_ex(EVP_PKEY_EC, NULL, &q, dlen, NULL, NULL);
        if (*pkey != NULL && q != data + dlen) {
            EVP_PKEY_free(*pkey);
            *pkey = NULL;
        }
    } else if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
        say(err, err_size,
            "key file '%s' is encrypted; store it unencrypted with mode 0600 "
            "(openssl pkey -in ENC -out KEY) or use a PKCS#11 token",
            path);
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto done;
    } else {
        size_t nl = strlen(name);
        int is_priv = nl >= 11 && strcmp(name + nl - 11, "PRIVATE KEY") == 0;
        say(err, err_size, "key file '%s' holds a '%s' PEM block: %s", path, name,
            is_priv ? "only P-256, X25519 and Ed25519 keys are supported"
                    : "expected 'PRIVATE KEY' or 'EC PRIVATE KEY'");
        rc = CL_FAIL(is_priv ? CL_ERR_UNSUPPORTED : CL_ERR_BAD_INPUT);
        goto done;
    }
    if (*pkey == NULL) {
        say(err, err_size, "key file '%s': the '%s' block does not decode", path, name);
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
    }

done:
    PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key octets it holds */
    return rc;
}

/* Our type of a decoded key; CL_ERR_UNSUPPORTED for other algorithms and curves. */
static cl_status_t key_type(const char *path, EVP_PKEY *pkey, cl_key_type_t *type, char *err,
                            size_t err_size)
{
    char group[64] = "";
    size_t gl = 0;
    EVP_PKEY_CTX *ctx = NULL;
    cl_status_t rc = CL_OK;

    if (EVP_PKEY_is_a(pkey, "X25519")) {
        *type = CL_KEY_X25519;
    } else if (EVP_PKEY_is_a(pkey, "ED25519")) {
        *type = CL_KEY_ED25519;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &gl) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
            say(err, err_size, "key file '%s': EC key on curve '%s' is not supported (P-256 only)",
                path, group[0] != '\0' ? group : "explicit parameters");
            rc = CL_FAIL(CL_ERR_UNSUPPORTED);
            goto done;
        }
        /* SEC1 files carry a public key of their own: it must be the private key's. */
        ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (ctx == NULL || EVP_PKEY_pairwise_check(ctx) != 1) {
            say(err, err_size, "key file '%s': the public key does not match the private key",
                path);
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        *type = CL_KEY_P256;
    } else {
        const char *tn = EVP_PKEY_get0_type_name(pkey);
        say(err, err_size,
            "key file '%s' holds a %s key: only P-256, X25519 and Ed25519 are supported", path,
            tn != NULL ? tn : "unknown");
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
    }

done:
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* Reads, checks and decodes a key file into an EVP_PKEY of a supported type. */
static cl_status_t load_pkey(const char *path, EVP_PKEY **pkey, cl_key_type_t *type, char *err,
                             size_t err_size)
{
    cl_status_t rc;
    uint8_t *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen = 0;

    *pkey = NULL;
    if (path == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if ((rc = read_key_file(path, &buf, &len, err, err_size)) != CL_OK)
        goto done;
    if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    /* PEM_FLAG_SECURE: the decoded DER lives in (and is freed from) cleared memory. */
    if (PEM_read_bio_ex(bio, &name, &header, &data, &dlen, PEM_FLAG_SECURE) != 1) {
        say(err, err_size, "key file '%s' is not a PEM file (no complete BEGIN/END block)",
            path);
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (header != NULL && header[0] != '\0') {
        say(err, err_size,
            "key file '%s' has PEM headers (an encrypted legacy key?); store it unencrypted "
            "with mode 0600",
            path);
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto done;
    }
    if ((rc = decode_der(path, name, data, dlen, pkey, err, err_size)) != CL_OK)
        goto done;
    rc = key_type(path, *pkey, type, err, err_size);

done:
    if (rc != CL_OK) {
        EVP_PKEY_free(*pkey);
        *pkey = NULL;
    }
    BIO_free(bio);
    OPENSSL_free(name);
    OPENSSL_free(header);
    if (data != NULL)
        OPENSSL_secure_clear_free(data, (size_t)dlen);
    if (buf != NULL) {
        cl_wipe(buf, CL_KEYSTORE_FILE_MAX + 1);
        free(buf);
    }
    ERR_clear_error();
    return rc;
}

/* The 32 private-key bytes of a key (P-256 scalar big-endian; X25519/Ed25519 raw). */
static cl_status_t raw_private(EVP_PKEY *pkey, cl_key_type_t type, uint8_t raw[32])
{
    BIGNUM *d = NULL;
    size_t l = 32;
    cl_status_t rc = CL_OK;

    if (type == CL_KEY_P256) {
        if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, &d) != 1 ||
            BN_bn2binpad(d, raw, P256_LEN) != P256_LEN)
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
    } else if (EVP_PKEY_get_raw_private_key(pkey, raw, &l) != 1 || l != 32) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
    }
    BN_clear_free(d);
    return rc;
}

/* Public key in our encoding: P-256 uncompressed SEC1, X25519/Ed25519 raw 32 bytes. */
static cl_status_t public_of(EVP_PKEY *pkey, cl_key_type_t type, uint8_t *pub, size_t pub_size,
                             size_t *pub_len)
{
    uint8_t q[CL_PUB_MAX];
    size_t l = 0;

    if (type == CL_KEY_P256) {
        if (EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                           "uncompressed") != 1 ||
            EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, q, sizeof q, &l) !=
                1 ||
            l != 65 || q[0] != 0x04)
            return CL_FAIL(CL_ERR_CRYPTO);
    } else {
        l = 32;
        if (EVP_PKEY_get_raw_public_key(pkey, q, &l) != 1 || l != 32)
            return CL_FAIL(CL_ERR_CRYPTO);
    }
    if (pub_size < l)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    memcpy(pub, q, l);
    if (pub_len != NULL)
        *pub_len = l;
    return CL_OK;
}

cl_status_t cl_keystore_file_load(const cl_crypto_t *c, const char *path, uint32_t usage,
                                  cl_key_t *out, cl_key_type_t *type, char *err,
                                  size_t err_size)
{
    cl_status_t rc;
    EVP_PKEY *pkey = NULL;
    cl_key_type_t t = CL_KEY_P256;
    uint8_t raw[32];

    say(err, err_size, "%s", "");
    if (c == NULL || c->ops == NULL || out == NULL || path == NULL) {
        say(err, err_size, "keystore: provider, path and output handle are required");
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if ((rc = load_pkey(path, &pkey, &t, err, err_size)) != CL_OK)
        goto done;
    if (usage == 0)
        usage = usage_allowed(t);
    if ((rc = raw_private(pkey, t, raw)) != CL_OK) {
        say(err, err_size, "key file '%s': cannot extract the %s private key", path,
            type_name(t));
        goto done;
    }
    rc = c->ops->key_import_private(c->self, t, usage, raw, sizeof raw, out);
    if (rc != CL_OK) {
        say(err, err_size, "key file '%s': the provider refused the %s key for this usage (%s)",
            path, type_name(t), cl_status_str(rc));
        goto done;
    }
    if (type != NULL)
        *type = t;

done:
    cl_wipe(raw, sizeof raw);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

cl_status_t cl_keystore_file_public(const char *path, cl_key_type_t *type, uint8_t *pub,
                                    size_t pub_size, size_t *pub_len, char *err,
                                    size_t err_size)
{
    cl_status_t rc;
    EVP_PKEY *pkey = NULL;
    cl_key_type_t t = CL_KEY_P256;

    say(err, err_size, "%s", "");
    if (path == NULL || pub == NULL) {
        say(err, err_size, "keystore: path and output buffer are required");
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if ((rc = load_pkey(path, &pkey, &t, err, err_size)) != CL_OK)
        goto done;
    if ((rc = public_of(pkey, t, pub, pub_size, pub_len)) != CL_OK) {
        say(err, err_size, "key file '%s': cannot output the %s public key (%s)", path,
            type_name(t), cl_status_str(rc));
        goto done;
    }
    if (type != NULL)
        *type = t;

done:
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}

/* ------------------------------------------------------------- writing */

static cl_status_t write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CL_FAIL(CL_ERR_PERSIST);
        p += w;
        n -= (size_t)w;
    }
    return CL_OK;
}

/* fsync of the directory holding path, so that the new name is durable too. */
static cl_status_t sync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    cl_status_t rc = CL_OK;
    int fd = -1;

    if (dir == NULL) {
        rc = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    memcpy(dir, slash == NULL ? "." : path, n);
    dir[n] = '\0';
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    /* Some file systems cannot fsync a directory (EINVAL): nothing more can be done there. */
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = CL_FAIL(CL_ERR_PERSIST);

done:
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

cl_status_t cl_keystore_file_generate(const char *path, cl_key_type_t type, uint8_t *pub,
                                      size_t pub_size, size_t *pub_len, char *err,
                                      size_t err_size)
{
    cl_status_t rc = CL_OK;
    EVP_PKEY *pkey = NULL;
    BIO *mem = NULL;
    char *pem = NULL;
    long pem_len;
    int fd = -1, created = 0;

    say(err, err_size, "%s", "");
    if (path == NULL || usage_allowed(type) == 0) {
        say(err, err_size, "keystore: a path and a key type (P-256, X25519, Ed25519) are needed");
        rc = CL_FAIL(usage_allowed(type) == 0 && path != NULL ? CL_ERR_UNSUPPORTED
                                                              : CL_ERR_INVALID_ARG);
        goto done;
    }
    if (pub != NULL && pub_size < (type == CL_KEY_P256 ? 65u : 32u)) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    pkey = type == CL_KEY_P256     ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
           : type == CL_KEY_X25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "X25519")
                                   : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    /* A secure-memory BIO: the PEM text is cleared when the BIO is freed. */
    mem = BIO_new(BIO_s_secmem());
    if (pkey == NULL || mem == NULL ||
        PEM_write_bio_PrivateKey(mem, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        (pem_len = BIO_get_mem_data(mem, &pem)) <= 0) {
        say(err, err_size, "keystore: cannot generate a %s key", type_name(type));
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            say(err, err_size, "key file '%s' exists already; refusing to overwrite it", path);
            rc = CL_FAIL(CL_ERR_STATE);
        } else {
            say(err, err_size, "cannot create key file '%s': %s", path, strerror(errno));
            rc = CL_FAIL(CL_ERR_PERSIST);
        }
        goto done;
    }
    created = 1;
    /* The umask may only have narrowed 0600; make it exactly 0600 so the owner can read it. */
    if (fchmod(fd, 0600) != 0 || write_all(fd, (const uint8_t *)pem, (size_t)pem_len) != CL_OK ||
        fsync(fd) != 0) {
        say(err, err_size, "cannot write key file '%s': %s", path, strerror(errno));
        rc = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    if (close(fd) != 0) {
        fd = -1;
        say(err, err_size, "cannot write key file '%s': %s", path, strerror(errno));
        rc = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    fd = -1;
    if (sync_parent(path) != CL_OK) {
        say(err, err_size, "cannot sync the directory of key file '%s': %s", path,
            strerror(errno));
        rc = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    if (pub != NULL && (rc = public_of(pkey, type, pub, pub_size, pub_len)) != CL_OK) {
        say(err, err_size, "keystore: cannot output the %s public key", type_name(type));
        goto done;
    }

done:
    if (fd >= 0)
        close(fd);
    if (rc != CL_OK && created)
        (void)unlink(path);
    BIO_free(mem);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    return rc;
}
