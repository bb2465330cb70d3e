/*
 * platform.c - the simulated SGX platform (HOST SIDE, INSECURE BY DESIGN).
 *
 * What: the per-machine platform directory (platform secret, attestation
 * key, PCK key and certificate), and for each loaded enclave a
 * cl_tee_platform_t whose three calls behave like the SGX instructions:
 *   read_rand  - RAND_bytes (RDRAND on SGX);
 *   get_key    - EGETKEY: AES-128-CMAC(platform secret, derivation data)
 *                laid out after the SDK simulation's dd_seal_key_t
 *                (sdk/simulation/tinst/deriv.cpp); refuses an ISVSVN, CPUSVN
 *                or CONFIGSVN above the enclave's (CL_ERR_AUTH), reserved
 *                bits and unknown key names (CL_ERR_BAD_INPUT);
 *   get_report - EREPORT: the 384-byte body of the enclave's identity, a
 *                random key_id, MAC = AES-CMAC(report key of the target).
 *
 * Why a secret file: on real SGX the seal and report keys come from fuses
 * inside the CPU; here they come from 16 random bytes in a 0600 file, so the
 * host (anyone who can read the file) can derive every key. That is the
 * documented point of the simulation: same bytes, no security. The file
 * checks (owner only, regular file, no symlink) only keep one user's
 * development platform from being silently shared with another.
 *
 * The shipped PKI (tee/sim/pki, CL_SIM_PKI_DIR) provides the intermediate
 * key that issues this machine's PCK certificate on first use; the root and
 * intermediate certificates are also compiled in (cl_sim_root_pem) so that
 * verifiers need no file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cloister/bytes.h"
#include "cloister/crypto.h"
#include "sim_internal.h"

#ifndef CL_SIM_PKI_DIR
#error "CL_SIM_PKI_DIR must be defined by the build"
#endif

#define DD_LEN 162
#define PCK_DAYS 3652 /* 10 years */
#define PCK_CN "INSECURE SIMULATED SGX PCK Certificate - DO NOT TRUST"

/* "CLOISTER-SIM-QE1": a fixed vendor id that is visibly not Intel's 939A7233... */
const uint8_t CL_SIM_VENDOR_ID[16] = {0x43, 0x4c, 0x4f, 0x49, 0x53, 0x54, 0x45, 0x52,
                                      0x2d, 0x53, 0x49, 0x4d, 0x2d, 0x51, 0x45, 0x31};
const uint8_t CL_SIM_CPU_SVN[16] = {0x53, 0x49, 0x4d, 0x01, 0x01, 0x01, 0x01, 0x01,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};

const char *cl_sim_root_pem(void)
{
    return cl_sim_embedded_root_pem;
}

const char *cl_sim_intermediate_pem(void)
{
    return cl_sim_embedded_intermediate_pem;
}

void cl_sim_qe_identity(cl_sim_identity_t *id)
{
    static const char mre_label[] = "CLOISTER SIM QE MRENCLAVE v1";
    static const char mrs_label[] = "CLOISTER SIM QE MRSIGNER v1";

    memset(id, 0, sizeof *id);
    (void)EVP_Digest(mre_label, sizeof mre_label - 1, id->mr_enclave, NULL, EVP_sha256(), NULL);
    (void)EVP_Digest(mrs_label, sizeof mrs_label - 1, id->mr_signer, NULL, EVP_sha256(), NULL);
    id->isv_prod_id = CL_SIM_QE_PROD_ID;
    id->isv_svn = CL_SIM_QE_SVN;
    id->attr_flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT;
    id->attr_xfrm = 0x3;
    memcpy(id->cpu_svn, CL_SIM_CPU_SVN, sizeof id->cpu_svn);
}

/* ------------------------------------------------------------------ */
/* Crypto helpers                                                      */
/* ------------------------------------------------------------------ */

cl_status_t sim_cmac(const uint8_t key[16], const uint8_t *msg, size_t len, uint8_t mac[16])
{
    EVP_MAC *m = EVP_MAC_fetch(NULL, "CMAC", NULL);
    EVP_MAC_CTX *ctx = m != NULL ? EVP_MAC_CTX_new(m) : NULL;
    char cipher[] = "AES-128-CBC";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_end(),
    };
    size_t out = 0;
    cl_status_t rc = CL_FAIL(CL_ERR_CRYPTO);

    if (ctx == NULL || EVP_MAC_init(ctx, key, 16, params) != 1 ||
        EVP_MAC_update(ctx, msg, len) != 1 || EVP_MAC_final(ctx, mac, &out, 16) != 1 || out != 16)
        goto done;
    rc = CL_OK;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return rc;
}

cl_status_t sim_ecdsa_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t der_len = sizeof der;
    const unsigned char *q = der;
    ECDSA_SIG *es = NULL;
    const BIGNUM *r, *s;
    cl_status_t rc = CL_FAIL(CL_ERR_CRYPTO);

    if (md == NULL || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(md, der, &der_len, msg, len) != 1)
        goto done;
    es = d2i_ECDSA_SIG(NULL, &q, (long)der_len);
    if (es == NULL)
        goto done;
    ECDSA_SIG_get0(es, &r, &s);
    if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32)
        goto done;
    rc = CL_OK;
done:
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    return rc;
}

cl_status_t sim_ecdsa_verify(const uint8_t pub[65], const uint8_t *msg, size_t len,
                             const uint8_t sig[64])
{
    char group[] = "prime256v1";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)(uintptr_t)pub, 65),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    int der_len;
    cl_status_t rc = CL_FAIL(CL_ERR_CRYPTO);

    if (pctx == NULL || es == NULL || r == NULL || s == NULL)
        goto done;
    if (EVP_PKEY_fromdata_init(pctx) != 1)
        goto done;
    if (pub[0] != 0x04 || EVP_PKEY_fromdata(pctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (ECDSA_SIG_set0(es, r, s) != 1)
        goto done;
    r = s = NULL;
    der_len = i2d_ECDSA_SIG(es, &der);
    md = EVP_MD_CTX_new();
    if (der_len <= 0 || md == NULL ||
        EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) != 1)
        goto done;
    rc = EVP_DigestVerify(md, der, (size_t)der_len, msg, len) == 1 ? CL_OK
                                                                   : CL_FAIL(CL_ERR_AUTH);
done:
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(pctx);
    ERR_clear_error();
    return rc;
}

cl_status_t sim_p256_pub(EVP_PKEY *key, uint8_t pub[65])
{
    size_t len = 0;
    char group[32];
    size_t glen = 0;

    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1 ||
        strcmp(group, "prime256v1") != 0)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub, 65, &len) != 1 ||
        len != 65 || pub[0] != 0x04)
        return CL_FAIL(CL_ERR_CRYPTO);
    return CL_OK;
}

cl_status_t sim_pem_private(const uint8_t *pem, size_t len, EVP_PKEY **key)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    uint8_t pub[65];
    cl_status_t rc;

    *key = NULL;
    if (b == NULL || len > INT_MAX)
        return BIO_free(b), CL_FAIL(CL_ERR_CRYPTO);
    *key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    if (*key == NULL) {
        ERR_clear_error();
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    rc = sim_p256_pub(*key, pub);
    if (rc != CL_OK) {
        EVP_PKEY_free(*key);
        *key = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

cl_status_t sim_read_file(const char *path, bool private_only, size_t max, uint8_t **buf,
                          size_t *len)
{
    /* platform files must not be symlinks; shipped files (a source tree) may be */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (private_only ? O_NOFOLLOW : 0));
    struct stat st;
    uint8_t *b = NULL;
    size_t got = 0;
    cl_status_t rc;

    *buf = NULL;
    *len = 0;
    if (fd < 0)
        return CL_FAIL(errno == ENOENT ? CL_ERR_NOT_FOUND : CL_ERR_PERSIST);
    if (fstat(fd, &st) != 0) {
        rc = CL_FAIL(CL_ERR_PERSIST);
        goto done;
    }
    if (!S_ISREG(st.st_mode) ||
        (private_only && ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_uid != geteuid()))) {
        rc = CL_FAIL(CL_ERR_STATE);
        goto done;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > max) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    b = malloc((size_t)st.st_size + 1);
    if (b == NULL) {
        rc = CL_FAIL(CL_ERR_FULL);
        goto done;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = CL_FAIL(CL_ERR_PERSIST);
            goto done;
        }
        got += (size_t)n;
    }
    b[got] = 0;
    *buf = b;
    *len = got;
    b = NULL;
    rc = CL_OK;
done:
    if (b != NULL)
        sim_free_file(b, got);
    close(fd);
    return rc;
}

void sim_free_file(uint8_t *buf, size_t len)
{
    if (buf == NULL)
        return;
    cl_wipe(buf, len + 1);
    free(buf);
}

/* Writes a new private file (0600) atomically: temporary file, fsync, rename. */
static cl_status_t write_private(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX];
    const uint8_t *p = data;
    size_t off = 0;
    int fd;

    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    (void)unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return CL_FAIL(CL_ERR_PERSIST);
    while (off < len) {
        ssize_t n = write(fd, p + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    if (off != len || fsync(fd) != 0 || close(fd) != 0) {
        if (off != len)
            close(fd);
        (void)unlink(tmp);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    if (rename(tmp, path) != 0) {
        (void)unlink(tmp);
        return CL_FAIL(CL_ERR_PERSIST);
    }
    return CL_OK;
}

static cl_status_t write_pem_key(const char *path, EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long n;
    cl_status_t rc = CL_FAIL(CL_ERR_CRYPTO);

    if (b == NULL || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1)
        goto done;
    n = BIO_get_mem_data(b, &data);
    if (n <= 0)
        goto done;
    rc = write_private(path, data, (size_t)n);
done:
    BIO_free(b);
    return rc;
}

/* mkdir -p with mode 0700 for what is created; the last component must end up private. */
static cl_status_t make_dir(const char *dir)
{
    char buf[PATH_MAX];
    struct stat st;
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof buf)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    memcpy(buf, dir, n + 1);
    for (char *s = buf + 1; *s != 0; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return CL_FAIL(CL_ERR_PERSIST);
        *s = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return CL_FAIL(CL_ERR_PERSIST);
    if (lstat(buf, &st) != 0)
        return CL_FAIL(CL_ERR_PERSIST);
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
        return CL_FAIL(CL_ERR_STATE);
    return CL_OK;
}

static cl_status_t join(char *out, size_t size, const char *dir, const char *name)
{
    if (snprintf(out, size, "%s/%s", dir, name) >= (int)size)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* Platform files                                                      */
/* ------------------------------------------------------------------ */

static cl_status_t load_or_make_secret(const char *dir, uint8_t secret[SIM_SECRET_LEN])
{
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    cl_status_t rc = join(path, sizeof path, dir, "platform.secret");

    if (rc != CL_OK)
        return rc;
    rc = sim_read_file(path, true, SIM_FILE_MAX, &buf, &len);
    if (rc == CL_ERR_NOT_FOUND) {
        if (RAND_bytes(secret, SIM_SECRET_LEN) != 1)
            return CL_FAIL(CL_ERR_CRYPTO);
        return write_private(path, secret, SIM_SECRET_LEN);
    }
    if (rc != CL_OK)
        return rc;
    if (len != SIM_SECRET_LEN)
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
    else
        memcpy(secret, buf, SIM_SECRET_LEN);
    sim_free_file(buf, len);
    return rc;
}

static cl_status_t load_or_make_key(const char *path, EVP_PKEY **key, bool *made)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    cl_status_t rc = sim_read_file(path, true, SIM_FILE_MAX, &buf, &len);

    *made = false;
    if (rc == CL_ERR_NOT_FOUND) {
        *key = EVP_EC_gen("P-256");
        if (*key == NULL)
            return CL_FAIL(CL_ERR_CRYPTO);
        rc = write_pem_key(path, *key);
        if (rc != CL_OK) {
            EVP_PKEY_free(*key);
            *key = NULL;
        }
        *made = true;
        return rc;
    }
    if (rc != CL_OK)
        return rc;
    rc = sim_pem_private(buf, len, key);
    sim_free_file(buf, len);
    return rc;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return 0;
    ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Issues this machine's PCK certificate with the shipped intermediate and writes pck.pem. */
static cl_status_t make_pck_cert(const char *path, EVP_PKEY *pck)
{
    char ipath[PATH_MAX];
    uint8_t *ikey_pem = NULL;
    size_t ikey_len = 0;
    EVP_PKEY *ikey = NULL;
    BIO *ib = NULL, *out = NULL;
    X509 *inter = NULL, *cert = NULL;
    X509_NAME *name = NULL;
    BIGNUM *serial = NULL;
    char *data = NULL;
    long n;
    cl_status_t rc = join(ipath, sizeof ipath, CL_SIM_PKI_DIR, "intermediate.key");

    if (rc != CL_OK)
        return rc;
    rc = sim_read_file(ipath, false, SIM_FILE_MAX, &ikey_pem, &ikey_len);
    if (rc != CL_OK)
        return rc;
    rc = sim_pem_private(ikey_pem, ikey_len, &ikey);
    if (rc != CL_OK)
        goto done;
    rc = CL_FAIL(CL_ERR_CRYPTO);
    ib = BIO_new_mem_buf(cl_sim_embedded_intermediate_pem, -1);
    inter = ib != NULL ? PEM_read_bio_X509(ib, NULL, NULL, NULL) : NULL;
    cert = X509_new();
    name = X509_NAME_new();
    serial = BN_new();
    if (inter == NULL || cert == NULL || name == NULL || serial == NULL)
        goto done;
    if (X509_set_version(cert, 2) != 1 || BN_rand(serial, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) != 1 ||
        BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert)) == NULL ||
        X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), PCK_DAYS, 0, NULL) == NULL ||
        X509_set_pubkey(cert, pck) != 1 ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                   (const unsigned char *)"Cloister (simulation)", -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)PCK_CN, -1,
                                   -1, 0) != 1 ||
        X509_set_subject_name(cert, name) != 1 ||
        X509_set_issuer_name(cert, X509_get_subject_name(inter)) != 1)
        goto done;
    if (!add_ext(cert, inter, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(cert, inter, NID_key_usage, "critical,digitalSignature,nonRepudiation") ||
        !add_ext(cert, inter, NID_subject_key_identifier, "hash") ||
        !add_ext(cert, inter, NID_authority_key_identifier, "keyid:always"))
        goto done;
    if (X509_sign(cert, ikey, EVP_sha256()) <= 0)
        goto done;
    out = BIO_new(BIO_s_mem());
    if (out == NULL || PEM_write_bio_X509(out, cert) != 1)
        goto done;
    n = BIO_get_mem_data(out, &data);
    if (n <= 0)
        goto done;
    rc = write_private(path, data, (size_t)n);
done:
    ERR_clear_error();
    BIO_free(out);
    BIO_free(ib);
    BN_free(serial);
    X509_NAME_free(name);
    X509_free(cert);
    X509_free(inter);
    EVP_PKEY_free(ikey);
    sim_free_file(ikey_pem, ikey_len);
    return rc;
}

/* Reads pck.pem, checks that it is a certificate for the PCK key, builds the chain. */
static cl_status_t load_chain(cl_sim_platform_t *p, const char *path)
{
    uint8_t *pem = NULL;
    size_t len = 0;
    BIO *b = NULL;
    X509 *cert = NULL;
    EVP_PKEY *pub = NULL;
    size_t il = strlen(cl_sim_embedded_intermediate_pem), rl = strlen(cl_sim_embedded_root_pem);
    cl_status_t rc = sim_read_file(path, true, SIM_FILE_MAX, &pem, &len);

    if (rc != CL_OK)
        return rc;
    b = BIO_new_mem_buf(pem, (int)len);
    cert = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    pub = cert != NULL ? X509_get0_pubkey(cert) : NULL;
    if (pub == NULL || EVP_PKEY_eq(pub, p->pck) != 1) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    p->chain_pem = malloc(len + il + rl + 1);
    if (p->chain_pem == NULL) {
        rc = CL_FAIL(CL_ERR_FULL);
        goto done;
    }
    memcpy(p->chain_pem, pem, len);
    memcpy(p->chain_pem + len, cl_sim_embedded_intermediate_pem, il);
    memcpy(p->chain_pem + len + il, cl_sim_embedded_root_pem, rl + 1);
    p->chain_len = len + il + rl;
    rc = CL_OK;
done:
    ERR_clear_error();
    X509_free(cert);
    BIO_free(b);
    sim_free_file(pem, len);
    return rc;
}

cl_status_t cl_sim_platform_open(const char *dir, cl_sim_platform_t **out)
{
    char def[PATH_MAX], path[PATH_MAX];
    cl_sim_platform_t *p = NULL;
    uint8_t pub[65], h[32];
    bool made = false;
    struct stat st;
    cl_status_t rc;

    if (out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    if (dir == NULL)
        dir = getenv("CLOISTER_SIM_DIR");
    if (dir == NULL || *dir == 0) {
        const char *home = getenv("HOME");
        if (home == NULL || *home == 0)
            return CL_FAIL(CL_ERR_NOT_FOUND);
        if (snprintf(def, sizeof def, "%s/.local/share/cloister/sim-platform", home) >=
            (int)sizeof def)
            return CL_FAIL(CL_ERR_INVALID_ARG);
        dir = def;
    }
    rc = make_dir(dir);
    if (rc != CL_OK)
        return rc;
    p = calloc(1, sizeof *p);
    if (p == NULL)
        return CL_FAIL(CL_ERR_FULL);
    rc = load_or_make_secret(dir, p->secret);
    if (rc != CL_OK)
        goto done;
    if ((rc = join(path, sizeof path, dir, "attestation.key")) != CL_OK ||
        (rc = load_or_make_key(path, &p->ak, &made)) != CL_OK)
        goto done;
    if ((rc = join(path, sizeof path, dir, "pck.key")) != CL_OK ||
        (rc = load_or_make_key(path, &p->pck, &made)) != CL_OK)
        goto done;
    if ((rc = join(path, sizeof path, dir, "pck.pem")) != CL_OK)
        goto done;
    /* a new PCK key, or a missing certificate: issue one */
    if (made || (lstat(path, &st) != 0 && errno == ENOENT)) {
        rc = make_pck_cert(path, p->pck);
        if (rc != CL_OK)
            goto done;
    }
    if ((rc = load_chain(p, path)) != CL_OK)
        goto done;
    if ((rc = sim_p256_pub(p->ak, pub)) != CL_OK)
        goto done;
    memcpy(p->ak_pub, pub + 1, 64);
    /* QE-ID: platform-specific, public (a hash of the attestation public key) */
    {
        static const char label[] = "CLOISTER SIM QE-ID";
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                 EVP_DigestUpdate(md, label, sizeof label - 1) == 1 &&
                 EVP_DigestUpdate(md, p->ak_pub, sizeof p->ak_pub) == 1 &&
                 EVP_DigestFinal_ex(md, h, NULL) == 1;
        EVP_MD_CTX_free(md);
        if (!ok) {
            rc = CL_FAIL(CL_ERR_CRYPTO);
            goto done;
        }
        memcpy(p->qe_id, h, sizeof p->qe_id);
    }
    *out = p;
    p = NULL;
done:
    cl_sim_platform_close(p);
    return rc;
}

void cl_sim_platform_close(cl_sim_platform_t *p)
{
    if (p == NULL)
        return;
    while (p->bindings != NULL) {
        sim_binding_t *b = p->bindings;
        p->bindings = b->next;
        cl_wipe(b, sizeof *b);
        free(b);
    }
    EVP_PKEY_free(p->ak);
    EVP_PKEY_free(p->pck);
    free(p->chain_pem);
    cl_wipe(p, sizeof *p);
    free(p);
}

/* ------------------------------------------------------------------ */
/* EGETKEY / EREPORT                                                   */
/* ------------------------------------------------------------------ */

/* The derivation data (dd_seal_key_t-like), little-endian, DD_LEN bytes. */
typedef struct dd {
    uint16_t key_name, key_policy;
    uint64_t attr_flags, attr_xfrm, mask_flags, mask_xfrm;
    uint32_t misc, misc_mask;
    uint8_t cpu_svn[16];
    uint16_t isv_svn, isv_prod_id;
    uint8_t mr_enclave[32], mr_signer[32], key_id[32];
    uint16_t config_svn;
} dd_t;

static cl_status_t derive(const cl_sim_platform_t *p, const dd_t *d, uint8_t key[CL_SGX_KEY_LEN])
{
    uint8_t b[DD_LEN];
    cl_status_t rc;

    cl_put_le16(b + 0, d->key_name);
    cl_put_le16(b + 2, d->key_policy);
    cl_put_le64(b + 4, d->attr_flags);
    cl_put_le64(b + 12, d->attr_xfrm);
    cl_put_le64(b + 20, d->mask_flags);
    cl_put_le64(b + 28, d->mask_xfrm);
    cl_put_le32(b + 36, d->misc);
    cl_put_le32(b + 40, d->misc_mask);
    memcpy(b + 44, d->cpu_svn, 16);
    cl_put_le16(b + 60, d->isv_svn);
    cl_put_le16(b + 62, d->isv_prod_id);
    memcpy(b + 64, d->mr_enclave, 32);
    memcpy(b + 96, d->mr_signer, 32);
    memcpy(b + 128, d->key_id, 32);
    cl_put_le16(b + 160, d->config_svn);
    rc = sim_cmac(p->secret, b, sizeof b, key);
    cl_wipe(b, sizeof b);
    return rc;
}

cl_status_t sim_report_key(const cl_sim_platform_t *p, const uint8_t mr_enclave[32],
                           uint64_t attr_flags, uint64_t attr_xfrm, uint32_t misc_select,
                           uint16_t config_svn, const uint8_t key_id[32],
                           uint8_t key[CL_SGX_KEY_LEN])
{
    dd_t d;
    cl_status_t rc;

    memset(&d, 0, sizeof d);
    d.key_name = CL_SGX_KEYSELECT_REPORT;
    d.attr_flags = attr_flags;
    d.attr_xfrm = attr_xfrm;
    d.mask_flags = d.mask_xfrm = UINT64_MAX;
    d.misc = misc_select;
    d.misc_mask = UINT32_MAX;
    memcpy(d.cpu_svn, CL_SIM_CPU_SVN, 16);
    memcpy(d.mr_enclave, mr_enclave, 32);
    memcpy(d.key_id, key_id, 32);
    d.config_svn = config_svn;
    rc = derive(p, &d, key);
    cl_wipe(&d, sizeof d);
    return rc;
}

static cl_status_t sim_read_rand(void *self, uint8_t *out, size_t len)
{
    (void)self;
    if (out == NULL && len > 0)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (len > INT_MAX || (len > 0 && RAND_bytes(out, (int)len) != 1))
        return CL_FAIL(CL_ERR_CRYPTO);
    return CL_OK;
}

static cl_status_t sim_get_key(void *self, const uint8_t kr_bytes[CL_SGX_KEY_REQUEST_LEN],
                               uint8_t key[CL_SGX_KEY_LEN])
{
    const sim_binding_t *b = self;
    const cl_sim_identity_t *id;
    cl_sgx_key_request_t kr;
    dd_t d;
    cl_status_t rc;

    if (b == NULL || kr_bytes == NULL || key == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    id = &b->id;
    rc = cl_sgx_key_request_decode(kr_bytes, &kr);
    if (rc != CL_OK)
        return rc;
    if (kr.key_name == CL_SGX_KEYSELECT_REPORT) {
        /* the report key of the calling enclave: verifies reports targeted at it */
        rc = sim_report_key(b->plat, id->mr_enclave, id->attr_flags, id->attr_xfrm, 0, 0,
                            kr.key_id, key);
        cl_wipe(&kr, sizeof kr);
        return rc;
    }
    if (kr.key_name != CL_SGX_KEYSELECT_SEAL ||
        (kr.key_policy & ~(CL_SGX_KEYPOLICY_MRENCLAVE | CL_SGX_KEYPOLICY_MRSIGNER |
                           CL_SGX_KEYPOLICY_NOISVPRODID)) != 0) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    /* a key for a newer enclave (or CPU) than the running one is never handed out */
    if (kr.isv_svn > id->isv_svn || memcmp(kr.cpu_svn, id->cpu_svn, 16) > 0 ||
        kr.config_svn > 0) {
        rc = CL_FAIL(CL_ERR_AUTH);
        goto done;
    }
    memset(&d, 0, sizeof d);
    d.key_name = kr.key_name;
    d.key_policy = kr.key_policy;
    d.attr_flags = id->attr_flags & kr.attr_mask_flags;
    d.attr_xfrm = id->attr_xfrm & kr.attr_mask_xfrm;
    d.mask_flags = kr.attr_mask_flags;
    d.mask_xfrm = kr.attr_mask_xfrm;
    d.misc = 0; /* MISCSELECT of a simulated enclave */
    d.misc_mask = kr.misc_mask;
    memcpy(d.cpu_svn, kr.cpu_svn, 16);
    d.isv_svn = kr.isv_svn;
    if ((kr.key_policy & CL_SGX_KEYPOLICY_NOISVPRODID) == 0)
        d.isv_prod_id = id->isv_prod_id;
    if (kr.key_policy & CL_SGX_KEYPOLICY_MRENCLAVE)
        memcpy(d.mr_enclave, id->mr_enclave, 32);
    if (kr.key_policy & CL_SGX_KEYPOLICY_MRSIGNER)
        memcpy(d.mr_signer, id->mr_signer, 32);
    memcpy(d.key_id, kr.key_id, 32);
    d.config_svn = kr.config_svn;
    rc = derive(b->plat, &d, key);
    cl_wipe(&d, sizeof d);
done:
    cl_wipe(&kr, sizeof kr);
    return rc;
}

static cl_status_t sim_get_report(void *self, const uint8_t *target_info,
                                  const uint8_t report_data[CL_SGX_REPORT_DATA_LEN],
                                  uint8_t report[CL_SGX_REPORT_LEN])
{
    const sim_binding_t *b = self;
    cl_sgx_report_body_t body;
    cl_sim_identity_t qe;
    uint8_t key[CL_SGX_KEY_LEN];
    const uint8_t *t_mre;
    uint64_t t_flags, t_xfrm;
    uint32_t t_misc;
    uint16_t t_config;
    cl_status_t rc;

    if (b == NULL || report_data == NULL || report == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (target_info == NULL) {
        cl_sim_qe_identity(&qe);
        t_mre = qe.mr_enclave;
        t_flags = qe.attr_flags;
        t_xfrm = qe.attr_xfrm;
        t_misc = 0;
        t_config = 0;
    } else {
        t_mre = target_info + CL_SGX_TI_MRENCLAVE;
        t_flags = cl_get_le64(target_info + CL_SGX_TI_ATTRIBUTES);
        t_xfrm = cl_get_le64(target_info + CL_SGX_TI_ATTRIBUTES + 8);
        t_config = cl_get_le16(target_info + CL_SGX_TI_CONFIGSVN);
        t_misc = cl_get_le32(target_info + CL_SGX_TI_MISCSELECT);
    }
    memset(&body, 0, sizeof body);
    memcpy(body.cpu_svn, b->id.cpu_svn, 16);
    body.attr_flags = b->id.attr_flags;
    body.attr_xfrm = b->id.attr_xfrm;
    memcpy(body.mr_enclave, b->id.mr_enclave, 32);
    memcpy(body.mr_signer, b->id.mr_signer, 32);
    body.isv_prod_id = b->id.isv_prod_id;
    body.isv_svn = b->id.isv_svn;
    memcpy(body.report_data, report_data, CL_SGX_REPORT_DATA_LEN);
    cl_sgx_report_body_encode(&body, report);
    if (RAND_bytes(report + CL_SGX_REPORT_KEYID, 32) != 1)
        return CL_FAIL(CL_ERR_CRYPTO);
    rc = sim_report_key(b->plat, t_mre, t_flags, t_xfrm, t_misc, t_config,
                        report + CL_SGX_REPORT_KEYID, key);
    if (rc == CL_OK)
        rc = sim_cmac(key, report, CL_SGX_REPORT_BODY_LEN, report + CL_SGX_REPORT_MAC);
    cl_wipe(key, sizeof key);
    if (rc != CL_OK)
        memset(report, 0, CL_SGX_REPORT_LEN);
    return rc;
}

cl_status_t cl_sim_platform_bind(cl_sim_platform_t *p, const cl_sim_identity_t *id,
                                 const cl_tee_platform_t **out)
{
    sim_binding_t *b;

    if (out != NULL)
        *out = NULL;
    if (p == NULL || id == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    b = calloc(1, sizeof *b);
    if (b == NULL)
        return CL_FAIL(CL_ERR_FULL);
    b->table.version = CL_TEE_PLATFORM_VERSION;
    b->table.backend = CL_TEE_BACKEND_SIM;
    b->table.name = "sim";
    b->table.self = b;
    b->table.read_rand = sim_read_rand;
    b->table.get_report = sim_get_report;
    b->table.get_key = sim_get_key;
    b->plat = p;
    b->id = *id;
    b->next = p->bindings;
    p->bindings = b;
    *out = &b->table;
    return CL_OK;
}
