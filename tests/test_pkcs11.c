/*
 * test_pkcs11.c - the PKCS#11 provider (keystore/pkcs11.c) against SoftHSM2.
 *
 * The test makes its own token: a softhsm2.conf pointing at a fresh
 * temporary token directory (SOFTHSM2_CONF), then C_InitToken / C_InitPIN
 * through the module itself. It then shows that keys generated in the
 * token work with keys outside it (ECDH agrees with OpenSSL, ECDSA made in
 * the token verifies with OpenSSL) and that the private keys cannot leave
 * the token: asked directly - through the module, in a session of the test's
 * own, not through the provider - the token refuses CKA_VALUE with
 * CKR_ATTRIBUTE_SENSITIVE, reports CKA_EXTRACTABLE FALSE (and
 * NEVER_EXTRACTABLE / ALWAYS_SENSITIVE TRUE), refuses to wrap the key and
 * refuses to make it extractable later; and no derived secret stays behind.
 *
 * Module: CL_TEST_PKCS11_MODULE, else Debian's /usr/lib/softhsm/libsofthsm2.so.
 * The test skips (saying why) only when that file is absent;
 * scripts/install-deps.sh installs it, so CI runs it.
 */
#include "testutil.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "cloister/crypto_openssl.h"
#include "cloister/crypto_pkcs11.h"
#include "cloister/cbor.h"
#include "cloister/edhoc.h"
#include "cloister/keystore.h"

/*
 * LeakSanitizer and SoftHSM2: SoftHSM2 2.6.1 leaks a few small ASN.1 objects
 * (allocated by OpenSSL's d2i on its behalf) on every EdDSA signature and
 * every X25519 derivation it performs - its own bug, inside the module. Leaks
 * whose allocation stack passes through libsofthsm2.so are suppressed; none
 * of our allocations can have that frame, because the module never calls
 * back into our code (no mutex callbacks, no notify callback). Full stacks are
 * needed to see the frame (Debian's libcrypto has no frame pointers), and the
 * module stays mapped until exit (group_teardown does not dlclose it) so that
 * the frame still has its name when LeakSanitizer runs.
 */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libsofthsm2.so\n";
}
const char *__asan_default_options(void)
{
    return "fast_unwind_on_malloc=0";
}
#endif

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN "cloister-test"
#define PIN "1234"
#define SO_PIN "5678"

static const char *module_path;
static int have_module;
static char tmpdir[64];
static void *dl;                 /* the test's own reference to the module */
static CK_FUNCTION_LIST_PTR fl;  /* for asking the token directly */

typedef struct fixture {
    cl_crypto_t p; /* pkcs11 */
    cl_crypto_t o; /* openssl, the outside world */
} fixture_t;

#define NEED_MODULE()                                                                          \
    do {                                                                                       \
        if (!have_module) {                                                                    \
            print_message("skipped: PKCS#11 module %s is absent (install softhsm2)\n",         \
                          module_path);                                                        \
            skip();                                                                            \
        }                                                                                      \
    } while (0)

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

static CK_UTF8CHAR_PTR utf8(const char *s)
{
    union {
        const char *c;
        CK_UTF8CHAR_PTR u;
    } v;
    v.c = s;
    return v.u;
}

/* The slot of the initialised token labelled TOKEN, via the test's own function list. */
static CK_SLOT_ID token_slot(void)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_TOKEN_INFO ti;
    char want[32];

    memset(want, ' ', sizeof want);
    memcpy(want, TOKEN, strlen(TOKEN));
    assert_int_equal(fl->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
    for (CK_ULONG i = 0; i < n; i++) {
        assert_int_equal(fl->C_GetTokenInfo(slots[i], &ti), CKR_OK);
        if ((ti.flags & CKF_TOKEN_INITIALIZED) && memcmp(ti.label, want, sizeof want) == 0)
            return slots[i];
    }
    fail_msg("token %s not found", TOKEN);
    return 0;
}

/*
 * Creates the test token: C_InitToken on the first free slot, then the
 * user PIN with the SO logged in. The module is finalised again afterwards,
 * so the provider under test initialises it itself.
 */
static int make_token(void)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    CK_TOKEN_INFO ti;
    CK_UTF8CHAR label[32];
    CK_SESSION_HANDLE s;
    CK_SLOT_ID slot = 0;
    int found = 0;

    if (fl->C_Initialize(NULL) != CKR_OK || fl->C_GetSlotList(CK_FALSE, slots, &n) != CKR_OK)
        return -1;
    for (CK_ULONG i = 0; i < n && !found; i++) {
        if (fl->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
            !(ti.flags & CKF_TOKEN_INITIALIZED)) {
            slot = slots[i];
            found = 1;
        }
    }
    if (!found)
        return -1;
    memset(label, ' ', sizeof label);
    memcpy(label, TOKEN, strlen(TOKEN));
    if (fl->C_InitToken(slot, utf8(SO_PIN), strlen(SO_PIN), label) != CKR_OK)
        return -1;
    /* SoftHSM2 moves an initialised token to a new slot id: look it up by label. */
    slot = token_slot();
    if (fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) != CKR_OK ||
        fl->C_Login(s, CKU_SO, utf8(SO_PIN), strlen(SO_PIN)) != CKR_OK ||
        fl->C_InitPIN(s, utf8(PIN), strlen(PIN)) != CKR_OK || fl->C_Logout(s) != CKR_OK ||
        fl->C_CloseSession(s) != CKR_OK || fl->C_Finalize(NULL) != CKR_OK)
        return -1;
    return 0;
}

static int group_setup(void **state)
{
    char conf[128], tokens[128];
    FILE *fp;
    CK_C_GetFunctionList gfl = NULL;
    void *sym;

    (void)state;
    module_path = getenv("CL_TEST_PKCS11_MODULE");
    if (module_path == NULL || module_path[0] == '\0')
        module_path = DEFAULT_MODULE;
    if (access(module_path, R_OK) != 0) {
        print_message("PKCS#11 tests skipped: module %s is absent (install softhsm2)\n",
                      module_path);
        return 0;
    }
    strcpy(tmpdir, "/tmp/cl-pkcs11-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(tokens, sizeof tokens, "%s/tokens", tmpdir);
    snprintf(conf, sizeof conf, "%s/softhsm2.conf", tmpdir);
    if (mkdir(tokens, 0700) != 0 || (fp = fopen(conf, "w")) == NULL)
        return -1;
    fprintf(fp, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
                "slots.removable = false\n",
            tokens);
    fclose(fp);
    /* SoftHSM2 reads its configuration in C_Initialize: set before any load. */
    if (setenv("SOFTHSM2_CONF", conf, 1) != 0)
        return -1;
    if ((dl = dlopen(module_path, RTLD_NOW | RTLD_LOCAL)) == NULL ||
        (sym = dlsym(dl, "C_GetFunctionList")) == NULL)
        return -1;
    memcpy(&gfl, &sym, sizeof gfl);
    if (gfl(&fl) != CKR_OK || make_token() != 0)
        return -1;
    have_module = 1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    /* dl stays open: see the LeakSanitizer note at the top */
    if (tmpdir[0] != '\0')
        rm_rf(tmpdir);
    return 0;
}

static void new_p11(cl_crypto_t *c)
{
    char err[256];
    cl_status_t rc = cl_crypto_pkcs11_new(c, module_path, TOKEN, PIN, err, sizeof err);
    if (rc != CL_OK)
        fail_msg("cl_crypto_pkcs11_new: %s: %s", cl_status_str(rc), err);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    assert_non_null(f);
    if (have_module)
        new_p11(&f->p);
    tu_crypto(&f->o, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    cl_crypto_pkcs11_free(&f->p);
    cl_crypto_openssl_free(&f->o);
    free(f);
    return 0;
}

/* A read-only session of the test's own on the token (the user is logged in by the provider). */
static CK_SESSION_HANDLE direct_session(void)
{
    CK_SESSION_HANDLE s;
    assert_int_equal(fl->C_OpenSession(token_slot(), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
                                       NULL, &s),
                     CKR_OK);
    return s;
}

static CK_BBOOL direct_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type)
{
    CK_BBOOL v = 0xff;
    CK_ATTRIBUTE a = {type, &v, sizeof v};
    assert_int_equal(fl->C_GetAttributeValue(s, obj, &a, 1), CKR_OK);
    return v;
}

static CK_ULONG count_secret_objects(CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE t = {CKA_CLASS, &cls, sizeof cls};
    CK_OBJECT_HANDLE h[8];
    CK_ULONG n = 0;
    assert_int_equal(fl->C_FindObjectsInit(s, &t, 1), CKR_OK);
    assert_int_equal(fl->C_FindObjects(s, h, 8, &n), CKR_OK);
    assert_int_equal(fl->C_FindObjectsFinal(s), CKR_OK);
    return n;
}

/*
 * Everything the token says about a private key of ours, asked directly:
 * its value is refused, it is sensitive and not extractable since birth,
 * it cannot be wrapped out under a key the caller controls, and it cannot
 * be made extractable or non-sensitive afterwards.
 */
static void assert_token_private_key_sealed(const fixture_t *f, cl_key_t k, CK_BBOOL want_token)
{
    unsigned long obj = 0;
    bool ex = true;
    CK_SESSION_HANDLE s = direct_session();
    uint8_t value[64];
    CK_ATTRIBUTE va = {CKA_VALUE, value, sizeof value};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG aes_len = 16;
    CK_ATTRIBUTE aest[] = {{CKA_VALUE_LEN, &aes_len, sizeof aes_len},
                           {CKA_TOKEN, &no, sizeof no},
                           {CKA_WRAP, &yes, sizeof yes}};
    CK_MECHANISM aes_gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_MECHANISM wrap = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_OBJECT_HANDLE aes;
    uint8_t wrapped[256];
    CK_ULONG wl = sizeof wrapped;
    CK_ATTRIBUTE make_ex = {CKA_EXTRACTABLE, &yes, sizeof yes};
    CK_ATTRIBUTE make_clear = {CKA_SENSITIVE, &no, sizeof no};

    assert_int_equal(cl_crypto_pkcs11_key_is_extractable(&f->p, k, &ex), CL_OK);
    assert_false(ex);
    assert_int_equal(cl_crypto_pkcs11_key_object(&f->p, k, &obj), CL_OK);

    assert_int_equal(fl->C_GetAttributeValue(s, obj, &va, 1), CKR_ATTRIBUTE_SENSITIVE);
    assert_int_equal(va.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    assert_int_equal(direct_bool(s, obj, CKA_EXTRACTABLE), CK_FALSE);
    assert_int_equal(direct_bool(s, obj, CKA_SENSITIVE), CK_TRUE);
    assert_int_equal(direct_bool(s, obj, CKA_NEVER_EXTRACTABLE), CK_TRUE);
    assert_int_equal(direct_bool(s, obj, CKA_ALWAYS_SENSITIVE), CK_TRUE);
    assert_int_equal(direct_bool(s, obj, CKA_PRIVATE), CK_TRUE);
    assert_int_equal(direct_bool(s, obj, CKA_TOKEN), want_token);

    assert_int_equal(fl->C_GenerateKey(s, &aes_gen, aest, 3, &aes), CKR_OK);
    assert_int_equal(fl->C_WrapKey(s, &wrap, aes, obj, wrapped, &wl), CKR_KEY_UNEXTRACTABLE);
    assert_int_equal(fl->C_DestroyObject(s, aes), CKR_OK);
    assert_int_not_equal(fl->C_SetAttributeValue(s, obj, &make_ex, 1), CKR_OK);
    assert_int_not_equal(fl->C_SetAttributeValue(s, obj, &make_clear, 1), CKR_OK);
    assert_int_equal(direct_bool(s, obj, CKA_EXTRACTABLE), CK_FALSE);
    assert_int_equal(direct_bool(s, obj, CKA_SENSITIVE), CK_TRUE);
    assert_int_equal(fl->C_CloseSession(s), CKR_OK);
}

/* ------------------------------------------------------------------ cases */

static void test_mechanisms_measured(void **state)
{
    fixture_t *f = *state;
    unsigned caps;

    NEED_MODULE();
    caps = cl_crypto_pkcs11_caps(&f->p);
    print_message("token mechanisms: P-256 ECDH %s, P-256 ECDSA %s (CKM_ECDSA_SHA256 %s), "
                  "Ed25519 %s, X25519 %s%s, HKDF_DERIVE %s, RNG %s\n",
                  caps & CL_PKCS11_CAP_P256_ECDH ? "yes" : "no",
                  caps & CL_PKCS11_CAP_P256_ECDSA ? "yes" : "no",
                  caps & CL_PKCS11_CAP_ECDSA_SHA256 ? "yes" : "no",
                  caps & CL_PKCS11_CAP_ED25519 ? "yes" : "no",
                  caps & CL_PKCS11_CAP_X25519 ? "yes" : "no",
                  (caps & CL_PKCS11_CAP_X25519) && !(caps & CL_PKCS11_CAP_X25519_MONTGOMERY)
                      ? " (via CKM_EC_EDWARDS_KEY_PAIR_GEN, not CKK_EC_MONTGOMERY)"
                      : "",
                  caps & CL_PKCS11_CAP_HKDF ? "yes" : "no",
                  caps & CL_PKCS11_CAP_RANDOM ? "yes" : "no");
    /* What the suite-2 EDHOC default needs from any token. */
    assert_true(caps & CL_PKCS11_CAP_P256_ECDH);
    assert_true(caps & CL_PKCS11_CAP_P256_ECDSA);
    assert_string_equal(f->p.ops->name, "pkcs11");
    assert_int_equal(cl_crypto_pkcs11_caps(&f->o), 0);
}

/* ECDH between a token key and an OpenSSL key agrees, whatever the peer encoding. */
static void test_ecdh_agrees_with_openssl(void **state)
{
    fixture_t *f = *state;
    const cl_crypto_ops_t *P, *O = f->o.ops;
    cl_key_t kp, ko;
    uint8_t pubp[65], pubo[65], zp[32], zo[32], bad[65];
    size_t lp = 0, lo = 0, zl = 0;

    NEED_MODULE();
    P = f->p.ops;
    assert_int_equal(P->key_generate(f->p.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &kp, pubp,
                                     sizeof pubp, &lp),
                     CL_OK);
    assert_int_equal(lp, 65);
    assert_int_equal(O->key_generate(f->o.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &ko, pubo,
                                     sizeof pubo, &lo),
                     CL_OK);
    assert_int_equal(P->ecdh(f->p.self, kp, pubo, lo, zp, sizeof zp, &zl), CL_OK);
    assert_int_equal(zl, 32);
    assert_int_equal(O->ecdh(f->o.self, ko, pubp, lp, zo, sizeof zo, &zl), CL_OK);
    tu_assert_bytes(zp, 32, zo, 32);

    /* compressed and x-only (EDHOC compact) peer keys give the same x-coordinate */
    {
        uint8_t comp[33];
        comp[0] = (uint8_t)(0x02 | (pubo[64] & 1));
        memcpy(comp + 1, pubo + 1, 32);
        memset(zp, 0, sizeof zp);
        assert_int_equal(P->ecdh(f->p.self, kp, comp, sizeof comp, zp, sizeof zp, &zl), CL_OK);
        tu_assert_bytes(zp, 32, zo, 32);
        memset(zp, 0, sizeof zp);
        assert_int_equal(P->ecdh(f->p.self, kp, pubo + 1, 32, zp, sizeof zp, &zl), CL_OK);
        tu_assert_bytes(zp, 32, zo, 32);
    }
    /* invalid peers: off the curve, wrong length; small output buffer */
    memcpy(bad, pubo, sizeof bad);
    bad[64] ^= 1;
    assert_int_equal(P->ecdh(f->p.self, kp, bad, sizeof bad, zp, sizeof zp, &zl),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(P->ecdh(f->p.self, kp, pubo, 64, zp, sizeof zp, &zl), CL_ERR_BAD_INPUT);
    assert_int_equal(P->ecdh(f->p.self, kp, pubo, lo, zp, 31, &zl), CL_ERR_BUFFER_TOO_SMALL);
    /* an ECDH key does not sign */
    assert_int_equal(P->sign(f->p.self, kp, CL_SIG_ES256, zp, 4, bad, sizeof bad, &zl),
                     CL_ERR_INVALID_ARG);
    cl_key_destroy(&f->p, kp);
    cl_key_destroy(&f->o, ko);
}

/* An ECDSA signature made in the token verifies with OpenSSL. */
static void test_token_signature_verifies_with_openssl(void **state)
{
    fixture_t *f = *state;
    const cl_crypto_ops_t *P, *O = f->o.ops;
    static const uint8_t msg[] = "TH_2 || CRED_R || EAD_2";
    cl_key_t kp, kv;
    uint8_t pub[65], sig[64], z[32];
    size_t pl = 0, sl = 0, zl = 0;

    NEED_MODULE();
    P = f->p.ops;
    assert_int_equal(P->key_generate(f->p.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &kp, pub,
                                     sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(P->sign(f->p.self, kp, CL_SIG_ES256, msg, sizeof msg, sig, sizeof sig, &sl),
                     CL_OK);
    assert_int_equal(sl, 64);
    assert_int_equal(O->key_import_public(f->o.self, CL_KEY_P256, pub, pl, &kv), CL_OK);
    assert_int_equal(O->verify(f->o.self, kv, CL_SIG_ES256, msg, sizeof msg, sig, sl), CL_OK);
    assert_int_equal(O->verify(f->o.self, kv, CL_SIG_ES256, msg, sizeof msg - 1, sig, sl),
                     CL_ERR_AUTH);
    /* verification on the pkcs11 provider itself (delegated) with the token key's handle */
    assert_int_equal(P->verify(f->p.self, kp, CL_SIG_ES256, msg, sizeof msg, sig, sl), CL_OK);
    sig[63] ^= 0x80;
    assert_int_equal(P->verify(f->p.self, kp, CL_SIG_ES256, msg, sizeof msg, sig, sl),
                     CL_ERR_AUTH);
    /* the empty message, and a wrong algorithm */
    assert_int_equal(P->sign(f->p.self, kp, CL_SIG_ES256, NULL, 0, sig, sizeof sig, &sl), CL_OK);
    assert_int_equal(O->verify(f->o.self, kv, CL_SIG_ES256, NULL, 0, sig, sl), CL_OK);
    assert_int_equal(P->sign(f->p.self, kp, CL_SIG_EDDSA, msg, sizeof msg, sig, sizeof sig, &sl),
                     CL_ERR_INVALID_ARG);
    /* a signing key does not do ECDH */
    assert_int_equal(P->ecdh(f->p.self, kp, pub, pl, z, sizeof z, &zl), CL_ERR_INVALID_ARG);
    cl_key_destroy(&f->p, kp);
    cl_key_destroy(&f->o, kv);
}

/* The heart of the issue: the private keys generated in the token never leave it. */
static void test_private_keys_not_extractable(void **state)
{
    fixture_t *f = *state;
    const cl_crypto_ops_t *P;
    cl_key_t ke, ks, kt, ko;
    uint8_t pub[65], z[32];
    size_t pl = 0, zl = 0;
    CK_SESSION_HANDLE s;

    NEED_MODULE();
    P = f->p.ops;
    /* ephemeral ECDH key, ephemeral signing key, static (token object) key */
    assert_int_equal(P->key_generate(f->p.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &ke, NULL, 0,
                                     NULL),
                     CL_OK);
    assert_int_equal(P->key_generate(f->p.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, &ks, NULL, 0,
                                     NULL),
                     CL_OK);
    assert_int_equal(cl_crypto_pkcs11_generate_key(&f->p, CL_KEY_P256,
                                                   CL_KEY_USAGE_ECDH | CL_KEY_USAGE_SIGN,
                                                   "sealed-static", &kt, NULL, 0, NULL),
                     CL_OK);
    assert_token_private_key_sealed(f, ke, CK_FALSE);
    assert_token_private_key_sealed(f, ks, CK_FALSE);
    assert_token_private_key_sealed(f, kt, CK_TRUE);

    /* after ECDH no derived secret object is left in the token */
    assert_int_equal(f->o.ops->key_generate(f->o.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &ko, pub,
                                            sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(P->ecdh(f->p.self, ke, pub, pl, z, sizeof z, &zl), CL_OK);
    assert_int_equal(P->ecdh(f->p.self, kt, pub, pl, z, sizeof z, &zl), CL_OK);
    s = direct_session();
    assert_int_equal(count_secret_objects(s), 0);
    assert_int_equal(fl->C_CloseSession(s), CKR_OK);

    /* a software key (imported bytes) is not a token key: the helper says so */
    {
        bool ex = false;
        cl_key_t ki;
        uint8_t d[32];
        memset(d, 0x11, sizeof d);
        assert_int_equal(P->key_import_private(f->p.self, CL_KEY_P256, CL_KEY_USAGE_SIGN, d,
                                               sizeof d, &ki),
                         CL_OK);
        assert_int_equal(cl_crypto_pkcs11_key_is_extractable(&f->p, ki, &ex),
                         CL_ERR_INVALID_ARG);
        cl_key_destroy(&f->p, ki);
    }
    assert_int_equal(cl_crypto_pkcs11_delete_key(&f->p, kt), CL_OK);
    cl_key_destroy(&f->p, ke);
    cl_key_destroy(&f->p, ks);
    cl_key_destroy(&f->o, ko);
}

/* Static keys: token objects with a label, found again by a later instance. */
static void test_static_key_by_label(void **state)
{
    fixture_t *f = *state;
    const cl_crypto_ops_t *P, *O = f->o.ops;
    static const uint8_t msg[] = "static";
    cl_key_t k, k2, ko, kv;
    uint8_t pub[65], pub2[65], puo[65], z1[32], z2[32], sig[64];
    size_t pl = 0, pl2 = 0, lo = 0, zl = 0, sl = 0;

    NEED_MODULE();
    assert_int_equal(cl_crypto_pkcs11_generate_key(&f->p, CL_KEY_P256,
                                                   CL_KEY_USAGE_ECDH | CL_KEY_USAGE_SIGN,
                                                   "edhoc-static", &k, pub, sizeof pub, &pl),
                     CL_OK);
    assert_int_equal(cl_crypto_pkcs11_generate_key(&f->p, CL_KEY_P256, CL_KEY_USAGE_ECDH,
                                                   "edhoc-static", &k2, NULL, 0, NULL),
                     CL_ERR_STATE);
    assert_non_null(strstr(cl_crypto_pkcs11_last_error(&f->p), "edhoc-static"));
    cl_key_destroy(&f->p, k); /* forgets the handle only */

    /* a new instance (new session, module finalised and loaded again) finds it */
    cl_crypto_pkcs11_free(&f->p);
    new_p11(&f->p);
    P = f->p.ops;
    assert_int_equal(cl_crypto_pkcs11_find_key(&f->p, "edhoc-static", &k), CL_OK);
    assert_int_equal(P->key_export_public(f->p.self, k, pub2, sizeof pub2, &pl2), CL_OK);
    tu_assert_bytes(pub2, pl2, pub, pl);
    assert_token_private_key_sealed(f, k, CK_TRUE);
    /* and it works: ECDH with an OpenSSL key, ES256 verified by OpenSSL */
    assert_int_equal(O->key_generate(f->o.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &ko, puo,
                                     sizeof puo, &lo),
                     CL_OK);
    assert_int_equal(P->ecdh(f->p.self, k, puo, lo, z1, sizeof z1, &zl), CL_OK);
    assert_int_equal(O->ecdh(f->o.self, ko, pub, pl, z2, sizeof z2, &zl), CL_OK);
    tu_assert_bytes(z1, 32, z2, 32);
    assert_int_equal(P->sign(f->p.self, k, CL_SIG_ES256, msg, sizeof msg, sig, sizeof sig, &sl),
                     CL_OK);
    assert_int_equal(O->key_import_public(f->o.self, CL_KEY_P256, pub, pl, &kv), CL_OK);
    assert_int_equal(O->verify(f->o.self, kv, CL_SIG_ES256, msg, sizeof msg, sig, sl), CL_OK);

    /* unknown labels, bad labels, deletion */
    assert_int_equal(cl_crypto_pkcs11_find_key(&f->p, "no-such-key", &k2), CL_ERR_NOT_FOUND);
    assert_non_null(strstr(cl_crypto_pkcs11_last_error(&f->p), "no-such-key"));
    assert_int_equal(cl_crypto_pkcs11_find_key(&f->p, "", &k2), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_crypto_pkcs11_find_key(&f->o, "edhoc-static", &k2), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_crypto_pkcs11_delete_key(&f->p, k), CL_OK);
    assert_int_equal(cl_crypto_pkcs11_find_key(&f->p, "edhoc-static", &k2), CL_ERR_NOT_FOUND);
    assert_int_equal(P->sign(f->p.self, k, CL_SIG_ES256, msg, sizeof msg, sig, sizeof sig, &sl),
                     CL_ERR_NOT_FOUND); /* stale handle */
    cl_key_destroy(&f->o, ko);
    cl_key_destroy(&f->o, kv);
}

/* Destroying an ephemeral key destroys its token object; the handle goes stale. */
static void test_ephemeral_key_destroyed(void **state)
{
    fixture_t *f = *state;
    const cl_crypto_ops_t *P;
    cl_key_t k;
    unsigned long obj = 0;
    CK_SESSION_HANDLE s;
    CK_OBJECT_CLASS cls;
    CK_ATTRIBUTE a = {CKA_CLASS, &cls, sizeof cls};
    uint8_t pub[65];
    size_t pl = 0;

    NEED_MODULE();
    P = f->p.ops;
    assert_int_equal(P->key_generate(f->p.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &k, NULL, 0,
                                     NULL),
                     CL_OK);
    assert_int_equal(cl_crypto_pkcs11_key_object(&f->p, k, &obj), CL_OK);
    s = direct_session();
    assert_int_equal(fl->C_GetAttributeValue(s, obj, &a, 1), CKR_OK);
    assert_int_equal(cls, CKO_PRIVATE_KEY);
    cl_key_destroy(&f->p, k);
    assert_int_equal(fl->C_GetAttributeValue(s, obj, &a, 1), CKR_OBJECT_HANDLE_INVALID);
    assert_int_equal(fl->C_CloseSession(s), CKR_OK);
    assert_int_equal(P->key_export_public(f->p.self, k, pub, sizeof pub, &pl), CL_ERR_NOT_FOUND);
    cl_key_destroy(&f->p, k); /* twice is harmless */
    /* bad generate arguments */
    assert_int_equal(P->key_generate(f->p.self, CL_KEY_P256, 0, &k, NULL, 0, NULL),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(P->key_generate(f->p.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &k, pub, 64,
                                     &pl),
                     CL_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(P->key_generate(f->p.self, CL_KEY_X25519, CL_KEY_USAGE_SIGN, &k, NULL, 0,
                                     NULL),
                     CL_ERR_INVALID_ARG);
}

/* Ed25519 and X25519 in the token where it has the mechanisms; CL_ERR_UNSUPPORTED otherwise. */
static void test_edwards_and_montgomery(void **state)
{
    fixture_t *f = *state;
    const cl_crypto_ops_t *P, *O = f->o.ops;
    static const uint8_t msg[] = "suite 0";
    cl_key_t k, ko, kv;
    uint8_t pub[65], puo[65], sig[64], z1[32], z2[32];
    size_t pl = 0, lo = 0, sl = 0, zl = 0;
    unsigned caps;
    cl_status_t rc;

    NEED_MODULE();
    P = f->p.ops;
    caps = cl_crypto_pkcs11_caps(&f->p);

    rc = P->key_generate(f->p.self, CL_KEY_ED25519, CL_KEY_USAGE_SIGN, &k, pub, sizeof pub, &pl);
    if (caps & CL_PKCS11_CAP_ED25519) {
        assert_int_equal(rc, CL_OK);
        assert_int_equal(pl, 32);
        assert_int_equal(
            P->sign(f->p.self, k, CL_SIG_EDDSA, msg, sizeof msg, sig, sizeof sig, &sl), CL_OK);
        assert_int_equal(O->key_import_public(f->o.self, CL_KEY_ED25519, pub, pl, &kv), CL_OK);
        assert_int_equal(O->verify(f->o.self, kv, CL_SIG_EDDSA, msg, sizeof msg, sig, sl), CL_OK);
        sig[5] ^= 4;
        assert_int_equal(O->verify(f->o.self, kv, CL_SIG_EDDSA, msg, sizeof msg, sig, sl),
                         CL_ERR_AUTH);
        assert_token_private_key_sealed(f, k, CK_FALSE);
        cl_key_destroy(&f->p, k);
        cl_key_destroy(&f->o, kv);
    } else {
        assert_int_equal(rc, CL_ERR_UNSUPPORTED);
        assert_non_null(strstr(cl_crypto_pkcs11_last_error(&f->p), "Ed25519"));
    }

    rc = P->key_generate(f->p.self, CL_KEY_X25519, CL_KEY_USAGE_ECDH, &k, pub, sizeof pub, &pl);
    if (caps & CL_PKCS11_CAP_X25519) {
        uint8_t zero[32] = {0};
        assert_int_equal(rc, CL_OK);
        assert_int_equal(pl, 32);
        assert_int_equal(O->key_generate(f->o.self, CL_KEY_X25519, CL_KEY_USAGE_ECDH, &ko, puo,
                                         sizeof puo, &lo),
                         CL_OK);
        assert_int_equal(P->ecdh(f->p.self, k, puo, lo, z1, sizeof z1, &zl), CL_OK);
        assert_int_equal(O->ecdh(f->o.self, ko, pub, pl, z2, sizeof z2, &zl), CL_OK);
        tu_assert_bytes(z1, 32, z2, 32);
        /* a low-order peer point gives the all-zero secret: refused */
        assert_int_not_equal(P->ecdh(f->p.self, k, zero, 32, z1, sizeof z1, &zl), CL_OK);
        assert_token_private_key_sealed(f, k, CK_FALSE);
        cl_key_destroy(&f->p, k);
        cl_key_destroy(&f->o, ko);
    } else {
        assert_int_equal(rc, CL_ERR_UNSUPPORTED);
        assert_non_null(strstr(cl_crypto_pkcs11_last_error(&f->p), "X25519"));
    }

    /* token objects of both types are found again by label, with their type and usage */
    if (caps & CL_PKCS11_CAP_ED25519) {
        uint8_t pub2[65];
        size_t pl2 = 0;
        assert_int_equal(cl_crypto_pkcs11_generate_key(&f->p, CL_KEY_ED25519, CL_KEY_USAGE_SIGN,
                                                       "ed-static", &k, pub, sizeof pub, &pl),
                         CL_OK);
        cl_key_destroy(&f->p, k);
        assert_int_equal(cl_crypto_pkcs11_find_key(&f->p, "ed-static", &k), CL_OK);
        assert_int_equal(P->key_export_public(f->p.self, k, pub2, sizeof pub2, &pl2), CL_OK);
        tu_assert_bytes(pub2, pl2, pub, pl);
        assert_int_equal(
            P->sign(f->p.self, k, CL_SIG_EDDSA, msg, sizeof msg, sig, sizeof sig, &sl), CL_OK);
        assert_int_equal(P->verify(f->p.self, k, CL_SIG_EDDSA, msg, sizeof msg, sig, sl), CL_OK);
        assert_int_equal(P->ecdh(f->p.self, k, pub, pl, z1, sizeof z1, &zl), CL_ERR_INVALID_ARG);
        assert_int_equal(cl_crypto_pkcs11_delete_key(&f->p, k), CL_OK);
    }
    if (caps & CL_PKCS11_CAP_X25519) {
        uint8_t pub2[65];
        size_t pl2 = 0;
        assert_int_equal(cl_crypto_pkcs11_generate_key(&f->p, CL_KEY_X25519, CL_KEY_USAGE_ECDH,
                                                       "x-static", &k, pub, sizeof pub, &pl),
                         CL_OK);
        cl_key_destroy(&f->p, k);
        assert_int_equal(cl_crypto_pkcs11_find_key(&f->p, "x-static", &k), CL_OK);
        assert_int_equal(P->key_export_public(f->p.self, k, pub2, sizeof pub2, &pl2), CL_OK);
        tu_assert_bytes(pub2, pl2, pub, pl);
        assert_int_equal(O->key_generate(f->o.self, CL_KEY_X25519, CL_KEY_USAGE_ECDH, &ko, puo,
                                         sizeof puo, &lo),
                         CL_OK);
        assert_int_equal(P->ecdh(f->p.self, k, puo, lo, z1, sizeof z1, &zl), CL_OK);
        assert_int_equal(O->ecdh(f->o.self, ko, pub, pl, z2, sizeof z2, &zl), CL_OK);
        tu_assert_bytes(z1, 32, z2, 32);
        assert_int_equal(
            P->sign(f->p.self, k, CL_SIG_EDDSA, msg, sizeof msg, sig, sizeof sig, &sl),
            CL_ERR_INVALID_ARG);
        assert_int_equal(cl_crypto_pkcs11_delete_key(&f->p, k), CL_OK);
        cl_key_destroy(&f->o, ko);
    }
}

/* Operations without token keys go to the inner OpenSSL provider and agree with it. */
static void test_delegated_operations(void **state)
{
    fixture_t *f = *state;
    const cl_crypto_ops_t *P, *O = f->o.ops;
    static const uint8_t ikm[] = "input keying material", info[] = "info";
    static const uint8_t nonce[13] = {1, 2, 3}, aad[] = "aad", pt[] = "OSCORE payload";
    uint8_t a[65], b[64], key[16], ct[64], back[64], rnd[32] = {0};
    size_t cl = 0, bl = 0, sl = 0;
    cl_buf_t part = {ikm, sizeof ikm};
    cl_key_t kp, ko, ki, kv;
    char path[128], err[CL_KEYSTORE_ERR_SIZE];
    static const uint8_t msg[] = "software key";

    NEED_MODULE();
    P = f->p.ops;
    assert_int_equal(P->sha256(f->p.self, &part, 1, a), CL_OK);
    assert_int_equal(O->sha256(f->o.self, &part, 1, b), CL_OK);
    tu_assert_bytes(a, 32, b, 32);
    assert_int_equal(P->hkdf_extract(f->p.self, NULL, 0, ikm, sizeof ikm, a), CL_OK);
    assert_int_equal(O->hkdf_extract(f->o.self, NULL, 0, ikm, sizeof ikm, b), CL_OK);
    tu_assert_bytes(a, 32, b, 32);
    assert_int_equal(P->hkdf_expand(f->p.self, a, 32, info, sizeof info, a + 32, 32), CL_OK);
    assert_int_equal(O->hkdf_expand(f->o.self, b, 32, info, sizeof info, b + 32, 32), CL_OK);
    tu_assert_bytes(a + 32, 32, b + 32, 32);
    assert_int_equal(P->hmac_sha256(f->p.self, key, 0, &part, 1, a), CL_OK);
    assert_int_equal(O->hmac_sha256(f->o.self, key, 0, &part, 1, b), CL_OK);
    tu_assert_bytes(a, 32, b, 32);
    assert_int_equal(P->random(f->p.self, rnd, sizeof rnd), CL_OK);
    assert_int_not_equal(memcmp(rnd, (uint8_t[32]){0}, 32), 0);

    /* AEAD: encrypt under the pkcs11 provider, decrypt under plain OpenSSL */
    memset(key, 0x42, sizeof key);
    assert_int_equal(P->aead_import(f->p.self, CL_AEAD_AES_CCM_16_64_128, key, sizeof key, &kp),
                     CL_OK);
    assert_int_equal(O->aead_import(f->o.self, CL_AEAD_AES_CCM_16_64_128, key, sizeof key, &ko),
                     CL_OK);
    assert_int_equal(P->aead_encrypt(f->p.self, kp, nonce, sizeof nonce, aad, sizeof aad, pt,
                                     sizeof pt, ct, sizeof ct, &cl),
                     CL_OK);
    assert_int_equal(O->aead_decrypt(f->o.self, ko, nonce, sizeof nonce, aad, sizeof aad, ct, cl,
                                     back, sizeof back, &bl),
                     CL_OK);
    tu_assert_bytes(back, bl, pt, sizeof pt);
    ct[0] ^= 1;
    assert_int_equal(P->aead_decrypt(f->p.self, kp, nonce, sizeof nonce, aad, sizeof aad, ct, cl,
                                     back, sizeof back, &bl),
                     CL_ERR_AUTH);
    /* an AEAD handle is not an asymmetric key and vice versa */
    assert_int_equal(P->sign(f->p.self, kp, CL_SIG_ES256, msg, sizeof msg, a, sizeof a, &sl),
                     CL_ERR_INVALID_ARG);
    cl_key_destroy(&f->p, kp);
    cl_key_destroy(&f->o, ko);

    /* a file key loaded into the pkcs11 provider is a software key that works the same */
    snprintf(path, sizeof path, "%s/soft.pem", tmpdir);
    unlink(path);
    assert_int_equal(cl_keystore_file_generate(path, CL_KEY_P256, a, sizeof a, &bl, NULL, 0),
                     CL_OK);
    assert_int_equal(cl_keystore_file_load(&f->p, path, CL_KEY_USAGE_SIGN, &ki, NULL, err,
                                           sizeof err),
                     CL_OK);
    assert_int_equal(P->sign(f->p.self, ki, CL_SIG_ES256, msg, sizeof msg, b, sizeof b, &sl),
                     CL_OK);
    assert_int_equal(O->key_import_public(f->o.self, CL_KEY_P256, a, bl, &kv), CL_OK);
    assert_int_equal(O->verify(f->o.self, kv, CL_SIG_ES256, msg, sizeof msg, b, sl), CL_OK);
    cl_key_destroy(&f->p, ki);
    cl_key_destroy(&f->o, kv);
    unlink(path);
}

/* Missing module, wrong PIN, wrong label: clear errors, the PIN never shown. */
static void test_setup_errors(void **state)
{
    fixture_t *f = *state;
    cl_crypto_t c;
    char err[256], path[128];
    FILE *fp;

    NEED_MODULE();
    /*
     * PKCS#11 login is per application: while another instance of this
     * process is logged in, the token is unlocked for all of them and a PIN
     * is not checked again. So the fixture's instance goes first.
     */
    cl_crypto_pkcs11_free(&f->p);
    memset(&c, 0xa5, sizeof c);
    assert_int_equal(cl_crypto_pkcs11_new(&c, "/nonexistent/libpkcs11.so", TOKEN, PIN, err,
                                          sizeof err),
                     CL_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "/nonexistent/libpkcs11.so"));
    assert_non_null(strstr(err, "not found"));
    assert_null(c.ops);
    cl_crypto_pkcs11_free(&c); /* no-op on a failed instance */

    snprintf(path, sizeof path, "%s/not-a-module.so", tmpdir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not an ELF file\n", fp);
    fclose(fp);
    assert_int_equal(cl_crypto_pkcs11_new(&c, path, TOKEN, PIN, err, sizeof err),
                     CL_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "cannot load"));
    unlink(path);

    assert_int_equal(cl_crypto_pkcs11_new(&c, module_path, TOKEN, "9876", err, sizeof err),
                     CL_ERR_AUTH);
    assert_non_null(strstr(err, "wrong user PIN"));
    assert_non_null(strstr(err, TOKEN));
    assert_null(strstr(err, "9876"));
    assert_null(c.ops);

    assert_int_equal(cl_crypto_pkcs11_new(&c, module_path, "no-such-token", PIN, err, sizeof err),
                     CL_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "no-such-token"));
    assert_non_null(strstr(err, "'" TOKEN "'")); /* the labels present are listed */
    assert_null(strstr(err, PIN));

    assert_int_equal(cl_crypto_pkcs11_new(&c, module_path,
                                          "a-token-label-longer-than-32-bytes!", PIN, err,
                                          sizeof err),
                     CL_ERR_INVALID_ARG);
    assert_int_equal(cl_crypto_pkcs11_new(&c, NULL, TOKEN, PIN, NULL, 0), CL_ERR_INVALID_ARG);
    assert_int_equal(cl_crypto_pkcs11_new(NULL, module_path, TOKEN, PIN, NULL, 0),
                     CL_ERR_INVALID_ARG);

    /* no PIN (and no PIN pad): a session without login, in which private keys cannot be made */
    assert_int_equal(cl_crypto_pkcs11_new(&c, module_path, TOKEN, NULL, err, sizeof err), CL_OK);
    {
        cl_key_t k;
        assert_int_equal(c.ops->key_generate(c.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &k, NULL, 0,
                                             NULL),
                         CL_ERR_STATE);
        assert_non_null(strstr(cl_crypto_pkcs11_last_error(&c), "CKR_USER_NOT_LOGGED_IN"));
    }
    cl_crypto_pkcs11_free(&c);

    /* after all the failures the module still serves a good instance */
    new_p11(&c);
    {
        cl_key_t k;
        assert_int_equal(c.ops->key_generate(c.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &k, NULL, 0,
                                             NULL),
                         CL_OK);
        cl_key_destroy(&c, k);
    }
    cl_crypto_pkcs11_free(&c);
    assert_null(c.ops);
}

/* Two instances on one module: freeing one neither finalises the module nor logs the other out. */
static void test_two_instances(void **state)
{
    fixture_t *f = *state;
    cl_crypto_t c2;
    cl_key_t k1, k2;
    uint8_t pub1[65], pub2[65], z1[32], z2[32];
    size_t l1 = 0, l2 = 0, zl = 0;

    NEED_MODULE();
    new_p11(&c2);
    assert_int_equal(f->p.ops->key_generate(f->p.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &k1, pub1,
                                            sizeof pub1, &l1),
                     CL_OK);
    assert_int_equal(c2.ops->key_generate(c2.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &k2, pub2,
                                          sizeof pub2, &l2),
                     CL_OK);
    assert_int_equal(c2.ops->ecdh(c2.self, k2, pub1, l1, z2, sizeof z2, &zl), CL_OK);
    cl_crypto_pkcs11_free(&f->p);
    /* k1 is gone with its session; c2 carries on */
    assert_int_equal(c2.ops->key_generate(c2.self, CL_KEY_P256, CL_KEY_USAGE_ECDH, &k1, pub1,
                                          sizeof pub1, &l1),
                     CL_OK);
    assert_int_equal(c2.ops->ecdh(c2.self, k2, pub1, l1, z1, sizeof z1, &zl), CL_OK);
    assert_int_equal(c2.ops->ecdh(c2.self, k1, pub2, l2, z2, sizeof z2, &zl), CL_OK);
    tu_assert_bytes(z1, 32, z2, 32);
    cl_crypto_pkcs11_free(&c2);
}

/* ---- EDHOC with the initiator's keys inside the token ---- */

typedef struct edhoc_party {
    const cl_crypto_t *c;
    cl_edhoc_auth_t auth;
    uint8_t id_cred[8];
    uint8_t cred[128];
    size_t cred_len;
    uint8_t pub[65];
    size_t pub_len;
    cl_key_t verify; /* the other party's public key, in this party's provider */
    const struct edhoc_party *other;
} edhoc_party_t;

/* CRED = a CCS {2: subject, 8: {1: COSE_Key EC2 P-256}} and ID_CRED = {4: h'kid'}. */
static void make_ccs(edhoc_party_t *e, uint8_t kid, const char *subject)
{
    cl_cbor_enc_t enc;
    cl_cbor_enc_init(&enc, e->cred, sizeof e->cred);
    cl_cbor_enc_map(&enc, 2);
    cl_cbor_enc_uint(&enc, 2);
    cl_cbor_enc_tstr_z(&enc, subject);
    cl_cbor_enc_uint(&enc, 8);
    cl_cbor_enc_map(&enc, 1);
    cl_cbor_enc_uint(&enc, 1);
    cl_cbor_enc_map(&enc, 4);
    cl_cbor_enc_uint(&enc, 1);
    cl_cbor_enc_uint(&enc, 2);
    cl_cbor_enc_int(&enc, -1);
    cl_cbor_enc_uint(&enc, 1);
    cl_cbor_enc_int(&enc, -2);
    cl_cbor_enc_bstr(&enc, e->pub + 1, 32);
    cl_cbor_enc_int(&enc, -3);
    cl_cbor_enc_bstr(&enc, e->pub + 33, 32);
    assert_int_equal(cl_cbor_enc_finish(&enc, &e->cred_len), CL_OK);
    const uint8_t idc[4] = {0xa1, 0x04, 0x41, kid};
    memcpy(e->id_cred, idc, 4);
    e->auth.id_cred = e->id_cred;
    e->auth.id_cred_len = 4;
    e->auth.cred = e->cred;
    e->auth.cred_len = e->cred_len;
    e->auth.type = CL_KEY_P256;
}

static cl_status_t edhoc_peer_cb(void *arg, cl_edhoc_role_t role, const uint8_t *id_cred,
                                 size_t len, cl_edhoc_peer_t *peer)
{
    (void)role;
    const edhoc_party_t *me = arg, *o = me->other;
    if (len != 4 || memcmp(id_cred, o->id_cred, 4) != 0)
        return CL_ERR_NOT_FOUND;
    peer->cred = o->cred;
    peer->cred_len = o->cred_len;
    peer->key = me->verify;
    memcpy(peer->pub, o->pub, o->pub_len);
    peer->pub_len = o->pub_len;
    return CL_OK;
}

static void test_edhoc_handshake_with_token_keys(void **state)
{
    NEED_MODULE();
    fixture_t *f = *state;
    for (int method = 0; method <= 3; method += 3) {
        bool dh = method == 3;
        uint32_t usage = dh ? CL_KEY_USAGE_ECDH : CL_KEY_USAGE_SIGN;
        edhoc_party_t ini, res;
        memset(&ini, 0, sizeof ini);
        memset(&res, 0, sizeof res);
        ini.c = &f->p; /* the device: every private-key operation in the token */
        res.c = &f->o;
        ini.other = &res;
        res.other = &ini;
        char label[32];
        snprintf(label, sizeof label, "edhoc-device-m%d", method);
        assert_int_equal(cl_crypto_pkcs11_generate_key(&f->p, CL_KEY_P256, usage, label,
                                                       &ini.auth.key, ini.pub, sizeof ini.pub,
                                                       &ini.pub_len),
                         CL_OK);
        assert_int_equal(f->o.ops->key_generate(f->o.self, CL_KEY_P256,
                                                usage | CL_KEY_USAGE_VERIFY, &res.auth.key,
                                                res.pub, sizeof res.pub, &res.pub_len),
                         CL_OK);
        ini.auth.static_dh = res.auth.static_dh = dh;
        make_ccs(&ini, 0x0a, "device");
        make_ccs(&res, 0x0b, "core");
        assert_int_equal(f->p.ops->key_import_public(f->p.self, CL_KEY_P256, res.pub, res.pub_len,
                                                     &ini.verify),
                         CL_OK);
        assert_int_equal(f->o.ops->key_import_public(f->o.self, CL_KEY_P256, ini.pub, ini.pub_len,
                                                     &res.verify),
                         CL_OK);
        int suites[1] = {2};
        cl_edhoc_config_t ci = {&f->p, suites, 1, &ini.auth, 1, edhoc_peer_cb, &ini, NULL, NULL};
        cl_edhoc_config_t cr = {&f->o, suites, 1, &res.auth, 1, edhoc_peer_cb, &res, NULL, NULL};
        cl_edhoc_t i, r;
        uint8_t m[512];
        size_t len;
        const uint8_t c_i = 0x01, c_r = 0x02;
        assert_int_equal(cl_edhoc_init(&i, &ci, CL_EDHOC_INITIATOR, &c_i, 1), CL_OK);
        assert_int_equal(cl_edhoc_init(&r, &cr, CL_EDHOC_RESPONDER, &c_r, 1), CL_OK);
        assert_int_equal(cl_edhoc_message_1(&i, method, 2, NULL, 0, m, sizeof m, &len), CL_OK);
        /* The ephemeral key was generated inside the token and cannot leave it. */
        bool ex = true;
        assert_int_equal(cl_crypto_pkcs11_key_is_extractable(&f->p, i.eph, &ex), CL_OK);
        assert_false(ex);
        assert_int_equal(cl_edhoc_process_message_1(&r, m, len), CL_OK);
        assert_int_equal(cl_edhoc_message_2(&r, NULL, 0, m, sizeof m, &len), CL_OK);
        assert_int_equal(cl_edhoc_process_message_2(&i, m, len), CL_OK);
        assert_int_equal(cl_edhoc_message_3(&i, NULL, 0, m, sizeof m, &len), CL_OK);
        assert_int_equal(cl_edhoc_process_message_3(&r, m, len), CL_OK);
        assert_int_equal(cl_edhoc_message_4(&r, NULL, 0, m, sizeof m, &len), CL_OK);
        assert_int_equal(cl_edhoc_process_message_4(&i, m, len), CL_OK);
        uint8_t ki[16], kr[16];
        assert_int_equal(cl_edhoc_exporter(&i, 0, NULL, 0, ki, 16), CL_OK);
        assert_int_equal(cl_edhoc_exporter(&r, 0, NULL, 0, kr, 16), CL_OK);
        tu_assert_bytes(ki, 16, kr, 16);
        /* The authentication key stayed sealed in the token through the handshake. */
        assert_token_private_key_sealed(f, ini.auth.key, CK_TRUE);
        cl_edhoc_free(&i);
        cl_edhoc_free(&r);
        assert_int_equal(cl_crypto_pkcs11_delete_key(&f->p, ini.auth.key), CL_OK);
        cl_key_destroy(&f->p, ini.verify);
        cl_key_destroy(&f->o, res.verify);
        cl_key_destroy(&f->o, res.auth.key);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mechanisms_measured, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecdh_agrees_with_openssl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_signature_verifies_with_openssl, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_private_keys_not_extractable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_key_by_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ephemeral_key_destroyed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edwards_and_montgomery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delegated_operations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_setup_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edhoc_handshake_with_token_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
