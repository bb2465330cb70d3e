/*
 * test_keystore_file.c - the PEM file keystore (keystore/file_keystore.c).
 *
 * Fixed keys made with the openssl command line (PKCS#8 for the three
 * types, SEC1 for P-256) with the public keys that `openssl pkey -pubout`
 * printed; generated keys round-tripped and checked against OpenSSL read
 * independently here; the file rules (mode, owner, regular file), corrupt,
 * unsupported and missing files; sign/verify and ECDH with loaded keys.
 * Every case works in its own temporary directory.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloister/crypto_openssl.h"
#include "cloister/keystore.h"

/* openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 */
static const char pem_p256[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg/92iNLJSv+hrXv/s\n"
                               "W9W5wFOjPdKNlNnGiYo/O64E1vShRANCAATECiPF4K+9pqdihVoCc7vBKrsExO89\n"
                               "IoUAY00hOC0NsWUSv2oIZNEVsGrgx79EaAox9FhUSP4TW2PdHC3cwi0M\n"
                               "-----END PRIVATE KEY-----\n";
/* the same key as SEC1 (openssl ec -in KEY) */
static const char pem_p256_sec1[] = "-----BEGIN EC PRIVATE KEY-----\n"
                                    "MHcCAQEEIP/dojSyUr/oa17/7FvVucBToz3SjZTZxomKPzuuBNb0oAoGCCqGSM49\n"
                                    "AwEHoUQDQgAExAojxeCvvaanYoVaAnO7wSq7BMTvPSKFAGNNITgtDbFlEr9qCGTR\n"
                                    "FbBq4Me/RGgKMfRYVEj+E1tj3Rwt3MItDA==\n"
                                    "-----END EC PRIVATE KEY-----\n";
/* 0x04 || x || y from `openssl pkey -pubout -outform DER` (after the 26-byte SPKI prefix) */
static const char pub_p256[] = "04"
                               "c40a23c5e0afbda6a762855a0273bbc12abb04c4ef3d228500634d21382d0db1"
                               "6512bf6a0864d115b06ae0c7bf44680a31f4585448fe135b63dd1c2ddcc22d0c";
/* the SEC1 file with the private scalar of ANOTHER key: public and private do not match */
static const char pem_p256_mismatch[] = "-----BEGIN EC PRIVATE KEY-----\n"
                                        "MHcCAQEEIEnx8JrdOqzWfYxyKYAOdk9KpnItxvig7mLxa80jaSyjoAoGCCqGSM49\n"
                                        "AwEHoUQDQgAExAojxeCvvaanYoVaAnO7wSq7BMTvPSKFAGNNITgtDbFlEr9qCGTR\n"
                                        "FbBq4Me/RGgKMfRYVEj+E1tj3Rwt3MItDA==\n"
                                        "-----END EC PRIVATE KEY-----\n";
/* openssl genpkey -algorithm X25519 */
static const char pem_x25519[] = "-----BEGIN PRIVATE KEY-----\n"
                                 "MC4CAQAwBQYDK2VuBCIEIMilvUv6BA9P//ZvKz6P+yt+ODkTK9e7TeR3ngyNIYR9\n"
                                 "-----END PRIVATE KEY-----\n";
static const char pub_x25519[] = "34239854bf8a607dc61ebdc0dbe19bed4406a03e0a6dcba1b41236546cbac220";
/* openssl genpkey -algorithm ED25519 */
static const char pem_ed25519[] = "-----BEGIN PRIVATE KEY-----\n"
                                  "MC4CAQAwBQYDK2VwBCIEIPBXnyWLvrikipKobS50OLDX/88qX9U8Po7DG2m0reFQ\n"
                                  "-----END PRIVATE KEY-----\n";
static const char pub_ed25519[] = "8e0bd8e3e705aecb3c5d7ee5a3b03a04515556088ad9a7c3549cd345ea8892c9";
/* openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 (unsupported curve) */
static const char pem_p384[] = "-----BEGIN PRIVATE KEY-----\n"
                               "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCubiRsBIWMFWXJ51T0\n"
                               "f7JQ/pb2oFCoA8whUv5RzHmILkkIqz2y9NTghzmXMkzXGTyhZANiAARwy6o9Qrmp\n"
                               "6t4GCpS2tPLGTq2w2DjBfIRoSioD+MtIfuYA6RyKg13xo/iMjq+hiWCnLiGL3Pmq\n"
                               "wWaXFD69UXhi2x6uwv5tkya25GjfUmZskmIQVY2+DokcMf6YkMRdNkA=\n"
                               "-----END PRIVATE KEY-----\n";
/* openssl pkey -in ED25519KEY -aes-128-cbc -passout pass:secret */
static const char pem_encrypted[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
                                    "MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhW5JPMy9CvzAICCAAw\n"
                                    "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEAQIEEDOg+dbc/AiYWhUOwfo9QnAEQMzL\n"
                                    "glQW1W/IoKZ3XRoTlPyzXdGFUxjbMoAw0le5ulx1Pawalgke9cM3S9+PawV88nvz\n"
                                    "7XiufBDQ12WRSr2ZW7Q=\n"
                                    "-----END ENCRYPTED PRIVATE KEY-----\n";

typedef struct fixture {
    char dir[64];
    cl_crypto_t c;
} fixture_t;

/* ---------------------------------------------------------------- helpers */

static void rm_rf(const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *de;
    char sub[512];

    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode) && (d = opendir(path)) != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
            rm_rf(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    strcpy(f->dir, "/tmp/cl-keystore-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    tu_crypto(&f->c, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    cl_crypto_openssl_free(&f->c);
    rm_rf(f->dir);
    free(f);
    return 0;
}

/* A path in the case's directory; the 16 most recent results stay valid. */
static const char *path_in(const fixture_t *f, const char *name)
{
    static char buf[16][256];
    static int i;
    i = (i + 1) % 16;
    snprintf(buf[i], sizeof buf[i], "%s/%s", f->dir, name);
    return buf[i];
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static void write_str(const char *path, const char *s, mode_t mode)
{
    write_file(path, s, strlen(s), mode);
}

/* The public key of a PEM file as OpenSSL computes it, independently of the keystore. */
static size_t openssl_public(const char *path, uint8_t out[65])
{
    FILE *fp = fopen(path, "r");
    EVP_PKEY *k;
    size_t l = 65;

    assert_non_null(fp);
    k = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(k);
    if (EVP_PKEY_is_a(k, "EC")) {
        assert_int_equal(EVP_PKEY_set_utf8_string_param(
                             k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "uncompressed"),
                         1);
        assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, out, 65, &l),
                         1);
    } else {
        assert_int_equal(EVP_PKEY_get_raw_public_key(k, out, &l), 1);
    }
    EVP_PKEY_free(k);
    return l;
}

static void expect_fail(const char *path, cl_status_t want, const char *must_contain,
                        const cl_crypto_t *c)
{
    char err[CL_KEYSTORE_ERR_SIZE];
    cl_key_t k = CL_KEY_NONE;
    uint8_t pub[65];
    size_t pl = 0;

    assert_int_equal(cl_keystore_file_load(c, path, 0, &k, NULL, err, sizeof err), want);
    assert_int_equal(k, CL_KEY_NONE);
    if (must_contain != NULL && strstr(err, must_contain) == NULL)
        fail_msg("error message '%s' does not mention '%s'", err, must_contain);
    if (strstr(err, path) == NULL)
        fail_msg("error message '%s' does not name the file %s", err, path);
    assert_int_equal(cl_keystore_file_public(path, NULL, pub, sizeof pub, &pl, err, sizeof err),
                     want);
}

/* ------------------------------------------------------------------ cases */

/* Fixed keys: the provider's public key equals the one the openssl CLI printed. */
static void test_fixed_keys_load(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *pem, *pub;
        cl_key_type_t type;
    } v[] = {
        {pem_p256, pub_p256, CL_KEY_P256},
        {pem_p256_sec1, pub_p256, CL_KEY_P256},
        {pem_x25519, pub_x25519, CL_KEY_X25519},
        {pem_ed25519, pub_ed25519, CL_KEY_ED25519},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const char *p = path_in(f, "fixed.pem");
        uint8_t want[65], got[65], fpub[65];
        size_t wl = tu_hex(v[i].pub, want, sizeof want), gl = 0, fl = 0;
        cl_key_t k = CL_KEY_NONE;
        cl_key_type_t t = 0;
        char err[CL_KEYSTORE_ERR_SIZE];

        unlink(p);
        write_str(p, v[i].pem, 0600);
        assert_int_equal(cl_keystore_file_load(&f->c, p, 0, &k, &t, err, sizeof err), CL_OK);
        assert_string_equal(err, "");
        assert_int_equal(t, v[i].type);
        assert_int_equal(f->c.ops->key_export_public(f->c.self, k, got, sizeof got, &gl), CL_OK);
        tu_assert_bytes(got, gl, want, wl);
        t = 0;
        assert_int_equal(cl_keystore_file_public(p, &t, fpub, sizeof fpub, &fl, err, sizeof err),
                         CL_OK);
        assert_int_equal(t, v[i].type);
        tu_assert_bytes(fpub, fl, want, wl);
        cl_key_destroy(&f->c, k);
    }
}

/* Generated files: 0600, PKCS#8, and the key OpenSSL reads back is the one loaded. */
static void test_generate_round_trip(void **state)
{
    fixture_t *f = *state;
    static const cl_key_type_t types[] = {CL_KEY_P256, CL_KEY_X25519, CL_KEY_ED25519};
    static const char *names[] = {"p256.pem", "x25519.pem", "ed25519.pem"};

    for (size_t i = 0; i < 3; i++) {
        const char *p = path_in(f, names[i]);
        uint8_t pub[65], got[65], ossl[65], fpub[65];
        size_t pl = 0, gl = 0, ol, fl = 0;
        char err[CL_KEYSTORE_ERR_SIZE], head[32] = "";
        struct stat st;
        cl_key_t k = CL_KEY_NONE;
        cl_key_type_t t = 0;
        FILE *fp;

        assert_int_equal(
            cl_keystore_file_generate(p, types[i], pub, sizeof pub, &pl, err, sizeof err), CL_OK);
        assert_int_equal(pl, types[i] == CL_KEY_P256 ? 65 : 32);
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        fp = fopen(p, "r");
        assert_non_null(fp);
        assert_non_null(fgets(head, sizeof head, fp));
        fclose(fp);
        assert_string_equal(head, "-----BEGIN PRIVATE KEY-----\n");

        ol = openssl_public(p, ossl);
        tu_assert_bytes(pub, pl, ossl, ol);
        assert_int_equal(cl_keystore_file_public(p, &t, fpub, sizeof fpub, &fl, NULL, 0), CL_OK);
        tu_assert_bytes(fpub, fl, ossl, ol);
        assert_int_equal(cl_keystore_file_load(&f->c, p, 0, &k, &t, err, sizeof err), CL_OK);
        assert_int_equal(t, types[i]);
        assert_int_equal(f->c.ops->key_export_public(f->c.self, k, got, sizeof got, &gl), CL_OK);
        tu_assert_bytes(got, gl, ossl, ol);
        cl_key_destroy(&f->c, k);
    }
}

static void test_generate_refuses_existing(void **state)
{
    fixture_t *f = *state;
    const char *p = path_in(f, "exists.pem"), *link = path_in(f, "link.pem"),
               *target = path_in(f, "target");
    char err[CL_KEYSTORE_ERR_SIZE];
    uint8_t pub[65];
    size_t pl = 0;

    write_str(p, "keep me", 0600);
    assert_int_equal(cl_keystore_file_generate(p, CL_KEY_P256, NULL, 0, NULL, err, sizeof err),
                     CL_ERR_STATE);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, "exists"));
    assert_int_equal(cl_keystore_file_public(p, NULL, pub, sizeof pub, &pl, NULL, 0),
                     CL_ERR_BAD_INPUT); /* still "keep me" */

    /* a symlink planted at the path is not followed, its target not created */
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(
        cl_keystore_file_generate(link, CL_KEY_ED25519, NULL, 0, NULL, err, sizeof err),
        CL_ERR_STATE);
    assert_int_equal(access(target, F_OK), -1);
}

static void test_generate_write_failures(void **state)
{
    fixture_t *f = *state;
    const char *p = path_in(f, "no/such/dir/key.pem");
    char err[CL_KEYSTORE_ERR_SIZE];
    uint8_t small[10];

    assert_int_equal(cl_keystore_file_generate(p, CL_KEY_P256, NULL, 0, NULL, err, sizeof err),
                     CL_ERR_PERSIST);
    assert_non_null(strstr(err, p));
    /* bad arguments leave nothing behind */
    p = path_in(f, "small.pem");
    assert_int_equal(
        cl_keystore_file_generate(p, CL_KEY_P256, small, sizeof small, NULL, NULL, 0),
        CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(cl_keystore_file_generate(p, (cl_key_type_t)2, NULL, 0, NULL, err,
                                               sizeof err),
                     CL_ERR_UNSUPPORTED);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(cl_keystore_file_generate(NULL, CL_KEY_P256, NULL, 0, NULL, NULL, 0),
                     CL_ERR_INVALID_ARG);
}

/* Group- or world-accessible key files are refused, naming the file and its mode. */
static void test_refuses_open_modes(void **state)
{
    fixture_t *f = *state;
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0606, 0610, 0601};
    const char *p = path_in(f, "open.pem");
    char err[CL_KEYSTORE_ERR_SIZE], want[16];
    cl_key_t k = CL_KEY_NONE;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unlink(p);
        write_str(p, pem_p256, bad[i]);
        snprintf(want, sizeof want, "%04o", (unsigned)bad[i]);
        expect_fail(p, CL_ERR_STATE, want, &f->c);
    }
    /* 0644 names the mode exactly as the brief's example */
    unlink(p);
    write_str(p, pem_p256, 0644);
    assert_int_equal(cl_keystore_file_load(&f->c, p, 0, &k, NULL, err, sizeof err), CL_ERR_STATE);
    assert_non_null(strstr(err, "mode 0644"));
    /* stricter than 0600 is fine */
    assert_int_equal(chmod(p, 0400), 0);
    assert_int_equal(cl_keystore_file_load(&f->c, p, 0, &k, NULL, err, sizeof err), CL_OK);
    cl_key_destroy(&f->c, k);
}

static void test_refuses_foreign_owner(void **state)
{
    fixture_t *f = *state;
    const char *p = path_in(f, "owner.pem");

    if (geteuid() != 0) {
        print_message("skipped: changing a file's owner needs root\n");
        skip();
    }
    write_str(p, pem_p256, 0600);
    assert_int_equal(chown(p, 54321, (gid_t)-1), 0);
    expect_fail(p, CL_ERR_STATE, "uid 54321", &f->c);
}

static void test_refuses_non_regular(void **state)
{
    fixture_t *f = *state;
    const char *dir = path_in(f, "adir"), *fifo = path_in(f, "afifo"), *link = path_in(f, "alink"),
               *good = path_in(f, "good.pem");
    char err[CL_KEYSTORE_ERR_SIZE];
    cl_key_t k = CL_KEY_NONE;

    assert_int_equal(mkdir(dir, 0700), 0);
    expect_fail(dir, CL_ERR_STATE, "not a regular file", &f->c);
    /* a FIFO must be refused, not block the caller waiting for a writer */
    assert_int_equal(mkfifo(fifo, 0600), 0);
    expect_fail(fifo, CL_ERR_STATE, "not a regular file", &f->c);
    /* a symlink to a good key file is followed and the target checked */
    write_str(good, pem_ed25519, 0600);
    assert_int_equal(symlink(good, link), 0);
    assert_int_equal(cl_keystore_file_load(&f->c, link, 0, &k, NULL, err, sizeof err), CL_OK);
    cl_key_destroy(&f->c, k);
    assert_int_equal(chmod(good, 0644), 0);
    expect_fail(link, CL_ERR_STATE, "0644", &f->c);
}

static void test_corrupt_files(void **state)
{
    fixture_t *f = *state;
    const char *p = path_in(f, "corrupt.pem");
    char buf[600];
    char *big;

    write_str(p, "", 0600);
    expect_fail(p, CL_ERR_BAD_INPUT, "not a PEM", &f->c);
    unlink(p);
    write_str(p, "hello, I am not a key\n", 0600);
    expect_fail(p, CL_ERR_BAD_INPUT, "not a PEM", &f->c);
    /* no END line */
    unlink(p);
    snprintf(buf, sizeof buf, "%.*s", (int)(strlen(pem_p256) - 26), pem_p256);
    write_str(p, buf, 0600);
    expect_fail(p, CL_ERR_BAD_INPUT, NULL, &f->c);
    /* a base64 character changed inside the DER structure */
    unlink(p);
    strcpy(buf, pem_p256);
    buf[40] = buf[40] == 'A' ? 'B' : 'A';
    buf[41] = '*';
    write_str(p, buf, 0600);
    expect_fail(p, CL_ERR_BAD_INPUT, NULL, &f->c);
    /* valid base64, truncated DER */
    unlink(p);
    write_str(p,
              "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIPBXnyWLvrikipKobS50OLDX\n"
              "-----END PRIVATE KEY-----\n",
              0600);
    expect_fail(p, CL_ERR_BAD_INPUT, "does not decode", &f->c);
    /* a public key is not a private key */
    unlink(p);
    write_str(p,
              "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAjgvY4+cFrss8XX7lo7A6BFFVVgiK2afDVJzTReqIksk=\n"
              "-----END PUBLIC KEY-----\n",
              0600);
    expect_fail(p, CL_ERR_BAD_INPUT, "PUBLIC KEY", &f->c);
    /* SEC1 whose public key is not the private key's */
    unlink(p);
    write_str(p, pem_p256_mismatch, 0600);
    expect_fail(p, CL_ERR_BAD_INPUT, "does not match", &f->c);
    /* too large to be a key */
    unlink(p);
    big = malloc(CL_KEYSTORE_FILE_MAX + 100);
    assert_non_null(big);
    memset(big, 'A', CL_KEYSTORE_FILE_MAX + 100);
    write_file(p, big, CL_KEYSTORE_FILE_MAX + 100, 0600);
    free(big);
    expect_fail(p, CL_ERR_BAD_INPUT, "too large", &f->c);
}

static void test_unsupported_keys(void **state)
{
    fixture_t *f = *state;
    const char *p = path_in(f, "p384.pem"), *e = path_in(f, "enc.pem");

    write_str(p, pem_p384, 0600);
    expect_fail(p, CL_ERR_UNSUPPORTED, "secp384r1", &f->c);
    write_str(e, pem_encrypted, 0600);
    expect_fail(e, CL_ERR_UNSUPPORTED, "encrypted", &f->c);
}

static void test_missing_file(void **state)
{
    fixture_t *f = *state;

    expect_fail(path_in(f, "nope.pem"), CL_ERR_NOT_FOUND, "does not exist", &f->c);
    expect_fail(path_in(f, "nodir/nope.pem"), CL_ERR_NOT_FOUND, "does not exist", &f->c);
}

/* Keys loaded from files work: ECDH agrees both ways, signatures verify with public keys. */
static void test_loaded_keys_work(void **state)
{
    fixture_t *f = *state;
    const cl_crypto_ops_t *o = f->c.ops;
    void *s = f->c.self;
    static const uint8_t msg[] = "EDHOC message_2 transcript";
    const char *pa = path_in(f, "a.pem"), *pb = path_in(f, "b.pem"), *xa = path_in(f, "xa.pem"),
               *xb = path_in(f, "xb.pem"), *ed = path_in(f, "ed.pem");
    uint8_t puba[65], pubb[65], z1[32], z2[32], sig[64], pub[65];
    size_t la = 0, lb = 0, zl = 0, sl = 0, pl = 0;
    cl_key_t ka, kb, kv;
    char err[CL_KEYSTORE_ERR_SIZE];

    /* P-256 ECDH between two key files */
    assert_int_equal(cl_keystore_file_generate(pa, CL_KEY_P256, puba, sizeof puba, &la, NULL, 0),
                     CL_OK);
    assert_int_equal(cl_keystore_file_generate(pb, CL_KEY_P256, pubb, sizeof pubb, &lb, NULL, 0),
                     CL_OK);
    assert_int_equal(cl_keystore_file_load(&f->c, pa, CL_KEY_USAGE_ECDH, &ka, NULL, NULL, 0),
                     CL_OK);
    assert_int_equal(cl_keystore_file_load(&f->c, pb, CL_KEY_USAGE_ECDH, &kb, NULL, NULL, 0),
                     CL_OK);
    assert_int_equal(o->ecdh(s, ka, pubb, lb, z1, sizeof z1, &zl), CL_OK);
    assert_int_equal(o->ecdh(s, kb, puba, la, z2, sizeof z2, &zl), CL_OK);
    tu_assert_bytes(z1, 32, z2, 32);
    /* an ECDH-only key refuses to sign */
    assert_int_equal(o->sign(s, ka, CL_SIG_ES256, msg, sizeof msg, sig, sizeof sig, &sl),
                     CL_ERR_INVALID_ARG);
    cl_key_destroy(&f->c, ka);
    cl_key_destroy(&f->c, kb);

    /* X25519 */
    assert_int_equal(cl_keystore_file_generate(xa, CL_KEY_X25519, puba, sizeof puba, &la, NULL, 0),
                     CL_OK);
    assert_int_equal(cl_keystore_file_generate(xb, CL_KEY_X25519, pubb, sizeof pubb, &lb, NULL, 0),
                     CL_OK);
    assert_int_equal(cl_keystore_file_load(&f->c, xa, 0, &ka, NULL, NULL, 0), CL_OK);
    assert_int_equal(cl_keystore_file_load(&f->c, xb, 0, &kb, NULL, NULL, 0), CL_OK);
    assert_int_equal(o->ecdh(s, ka, pubb, lb, z1, sizeof z1, &zl), CL_OK);
    assert_int_equal(o->ecdh(s, kb, puba, la, z2, sizeof z2, &zl), CL_OK);
    tu_assert_bytes(z1, 32, z2, 32);
    cl_key_destroy(&f->c, ka);
    cl_key_destroy(&f->c, kb);
    /* an X25519 key cannot be loaded for signing: the provider says no, the message says why */
    assert_int_equal(cl_keystore_file_load(&f->c, xa, CL_KEY_USAGE_SIGN, &ka, NULL, err,
                                           sizeof err),
                     CL_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "X25519"));

    /* ES256 with the fixed P-256 key, verified with its public key only */
    write_str(pa = path_in(f, "fixed.pem"), pem_p256, 0600);
    assert_int_equal(cl_keystore_file_load(&f->c, pa, CL_KEY_USAGE_SIGN, &ka, NULL, NULL, 0),
                     CL_OK);
    assert_int_equal(o->sign(s, ka, CL_SIG_ES256, msg, sizeof msg, sig, sizeof sig, &sl), CL_OK);
    pl = tu_hex(pub_p256, pub, sizeof pub);
    assert_int_equal(o->key_import_public(s, CL_KEY_P256, pub, pl, &kv), CL_OK);
    assert_int_equal(o->verify(s, kv, CL_SIG_ES256, msg, sizeof msg, sig, sl), CL_OK);
    sig[10] ^= 1;
    assert_int_equal(o->verify(s, kv, CL_SIG_ES256, msg, sizeof msg, sig, sl), CL_ERR_AUTH);
    cl_key_destroy(&f->c, ka);
    cl_key_destroy(&f->c, kv);

    /* EdDSA with a generated Ed25519 file */
    assert_int_equal(cl_keystore_file_generate(ed, CL_KEY_ED25519, pub, sizeof pub, &pl, NULL, 0),
                     CL_OK);
    assert_int_equal(cl_keystore_file_load(&f->c, ed, 0, &ka, NULL, NULL, 0), CL_OK);
    assert_int_equal(o->sign(s, ka, CL_SIG_EDDSA, msg, sizeof msg, sig, sizeof sig, &sl), CL_OK);
    assert_int_equal(o->key_import_public(s, CL_KEY_ED25519, pub, pl, &kv), CL_OK);
    assert_int_equal(o->verify(s, kv, CL_SIG_EDDSA, msg, sizeof msg, sig, sl), CL_OK);
    sig[0] ^= 1;
    assert_int_equal(o->verify(s, kv, CL_SIG_EDDSA, msg, sizeof msg, sig, sl), CL_ERR_AUTH);
    cl_key_destroy(&f->c, ka);
    cl_key_destroy(&f->c, kv);
}

/* The human buffer is optional and never overrun. */
static void test_error_buffer(void **state)
{
    fixture_t *f = *state;
    char tiny[8];
    cl_key_t k = CL_KEY_NONE;
    const char *p = path_in(f, "missing-with-a-long-name.pem");

    assert_int_equal(cl_keystore_file_load(&f->c, p, 0, &k, NULL, NULL, 0), CL_ERR_NOT_FOUND);
    memset(tiny, 'x', sizeof tiny);
    assert_int_equal(cl_keystore_file_load(&f->c, p, 0, &k, NULL, tiny, sizeof tiny),
                     CL_ERR_NOT_FOUND);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
    assert_int_equal(cl_keystore_file_load(NULL, p, 0, &k, NULL, NULL, 0), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_keystore_file_load(&f->c, NULL, 0, &k, NULL, NULL, 0),
                     CL_ERR_INVALID_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fixed_keys_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_refuses_existing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_write_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_open_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_foreign_owner, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_non_regular, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loaded_keys_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_buffer, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
