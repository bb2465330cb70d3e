/*
 * pkcs11.c - the PKCS#11 crypto provider (cl_crypto_ops_t "pkcs11").
 *
 * What: private keys generated and used inside a PKCS#11 token - a secure
 * element, an HSM, or SoftHSM2 in the tests - behind the same key handles as
 * every other provider, so EDHOC runs on it unchanged. Key generation, ECDH
 * (CKM_ECDH1_DERIVE, CKD_NULL) and signing (CKM_ECDSA over a SHA-256 computed
 * here, or CKM_ECDSA_SHA256; CKM_EDDSA) happen in the token; the private
 * halves are created CKA_SENSITIVE and not CKA_EXTRACTABLE, so no call of
 * this file, or of anyone else's, can read them.
 *
 * Why the rest is delegated: hashes, HMAC, HKDF, AEAD, public-key operations
 * (verify, peer-key validation) involve no token secret, and a real secure
 * element behind I2C would make OSCORE per-message costs hundreds of times
 * slower. They go to an OpenSSL provider created inside the instance; every
 * handle of this provider maps either to a key of that inner provider or to a
 * pair of token objects, so callers see one provider.
 *
 * What leaves the token: the ECDH shared secret. The provider table returns
 * it as bytes because EDHOC's HKDF runs outside; a token with
 * CKM_HKDF_DERIVE (PKCS#11 3.0) could keep it, which the table cannot
 * express yet (docs/keystores.md). The secret is derived as a non-sensitive
 * session CKK_GENERIC_SECRET, read with C_GetAttributeValue(CKA_VALUE) and
 * the object destroyed at once; the copy here is wiped on every path.
 *
 * Module lifetime: C_Initialize / C_Finalize are per process, so loaded
 * modules are kept in a small process-wide table (the only global state,
 * under a mutex) with a reference count: the first instance on a module
 * initialises it (with CKF_OS_LOCKING_OK), the last one finalises it - unless
 * someone else in the process had initialised it first. Logging in is per
 * application too: a second instance finds the user already logged in, and
 * the login ends when the last session closes, so no instance ever calls
 * C_Logout under another's feet.
 *
 * Errors: token failures map to cl_status_t (bad PIN: CL_ERR_AUTH; missing
 * object: CL_ERR_NOT_FOUND; mechanism missing: CL_ERR_UNSUPPORTED; anything
 * else: CL_ERR_CRYPTO) and the function name + CKR_ code is kept for
 * cl_crypto_pkcs11_last_error. Nothing is printed; the PIN is never stored.
 */
#include "cloister/crypto_pkcs11.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <p11-kit/pkcs11.h>

#include "cloister/crypto_openssl.h"

/* PKCS#11 3.0 identifiers the (2.40) header does not have yet. */
#ifndef CKK_EC_MONTGOMERY
#define CKK_EC_MONTGOMERY 0x41UL
#endif
#ifndef CKM_EC_MONTGOMERY_KEY_PAIR_GEN
#define CKM_EC_MONTGOMERY_KEY_PAIR_GEN 0x1056UL
#endif
#ifndef CKM_HKDF_DERIVE
#define CKM_HKDF_DERIVE 0x402aUL
#endif

#define MAX_MODULES 8
#define ENT_MAX 0xffffu  /* index + 1 must fit the low 16 bits of a handle */
#define ENT_FIRST 16u
#define KEY_ID_LEN 16    /* random CKA_ID of token keys, for tools that address by id */
#define MSG_SIZE 256

/* DER OBJECT IDENTIFIERs for CKA_EC_PARAMS. */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t oid_ed25519[] = {0x06, 0x03, 0x2b, 0x65, 0x70};
static const uint8_t oid_x25519[] = {0x06, 0x03, 0x2b, 0x65, 0x6e};
/* PKCS#11 3.0 also lets a token name these curves with a PrintableString. */
static const uint8_t name_ed25519[] = {0x13, 0x0c, 'e', 'd', 'w', 'a', 'r', 'd',
                                       's', '2', '5', '5', '1', '9'};
static const uint8_t name_x25519[] = {0x13, 0x0a, 'c', 'u', 'r', 'v', 'e', '2', '5', '5', '1', '9'};

_Static_assert(sizeof(void *) == sizeof(CK_C_GetFunctionList),
               "dlsym's result must be convertible to a function pointer");

/* ----------------------------------------------------------- module table */

typedef struct module {
    void *dl;     /* identity of the loaded library (dlopen returns the same handle) */
    CK_FUNCTION_LIST_PTR f;
    unsigned refs;
    int finalize; /* we initialised it: the last release finalises */
} module_t;

static module_t modules[MAX_MODULES];
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------- state */

enum ent_kind { ENT_FREE = 0, ENT_INNER = 1, ENT_TOKEN = 2 };

typedef struct entry {
    CK_OBJECT_HANDLE priv; /* ENT_TOKEN: private half in the token */
    CK_OBJECT_HANDLE pub_obj; /* ENT_TOKEN: public half, CK_INVALID_HANDLE if none/destroyed */
    cl_key_t inner;        /* ENT_INNER: the inner key; ENT_TOKEN: inner public key (verify) */
    cl_key_type_t type;
    uint32_t usage;
    uint16_t gen;
    uint8_t kind;
    uint8_t persistent;    /* token object: key_destroy forgets it, never deletes it */
    uint8_t pub_len;       /* 0: public key unknown */
    uint8_t pub[CL_PUB_MAX];
} entry_t;

typedef struct p11 {
    cl_crypto_t inner;
    module_t *mod;
    void *dl;              /* this instance's dlopen reference */
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    int have_session;
    unsigned caps;
    int have_ecdsa;        /* CKM_ECDSA (raw, hash given) */
    entry_t *ents;
    uint32_t cap;
    uint16_t salt;
    char msg[MSG_SIZE];    /* last failure, for humans */
} p11_t;

static const cl_crypto_ops_t ops_p11;

/* ------------------------------------------------------------- messages */

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

static const char *ckr_name(CK_RV rv)
{
    switch (rv) {
    case CKR_OK: return "CKR_OK";
    case CKR_HOST_MEMORY: return "CKR_HOST_MEMORY";
    case CKR_SLOT_ID_INVALID: return "CKR_SLOT_ID_INVALID";
    case CKR_GENERAL_ERROR: return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED: return "CKR_FUNCTION_FAILED";
    case CKR_ARGUMENTS_BAD: return "CKR_ARGUMENTS_BAD";
    case CKR_ATTRIBUTE_READ_ONLY: return "CKR_ATTRIBUTE_READ_ONLY";
    case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
    case CKR_ATTRIBUTE_TYPE_INVALID: return "CKR_ATTRIBUTE_TYPE_INVALID";
    case CKR_ATTRIBUTE_VALUE_INVALID: return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_DATA_LEN_RANGE: return "CKR_DATA_LEN_RANGE";
    case CKR_DEVICE_ERROR: return "CKR_DEVICE_ERROR";
    case CKR_DEVICE_MEMORY: return "CKR_DEVICE_MEMORY";
    case CKR_DEVICE_REMOVED: return "CKR_DEVICE_REMOVED";
    case CKR_FUNCTION_NOT_SUPPORTED: return "CKR_FUNCTION_NOT_SUPPORTED";
    case CKR_KEY_HANDLE_INVALID: return "CKR_KEY_HANDLE_INVALID";
    case CKR_KEY_TYPE_INCONSISTENT: return "CKR_KEY_TYPE_INCONSISTENT";
    case CKR_KEY_FUNCTION_NOT_PERMITTED: return "CKR_KEY_FUNCTION_NOT_PERMITTED";
    case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
    case CKR_MECHANISM_PARAM_INVALID: return "CKR_MECHANISM_PARAM_INVALID";
    case CKR_OBJECT_HANDLE_INVALID: return "CKR_OBJECT_HANDLE_INVALID";
    case CKR_OPERATION_ACTIVE: return "CKR_OPERATION_ACTIVE";
    case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
    case CKR_PIN_LEN_RANGE: return "CKR_PIN_LEN_RANGE";
    case CKR_PIN_LOCKED: return "CKR_PIN_LOCKED";
    case CKR_SESSION_HANDLE_INVALID: return "CKR_SESSION_HANDLE_INVALID";
    case CKR_SESSION_READ_ONLY: return "CKR_SESSION_READ_ONLY";
    case CKR_TEMPLATE_INCOMPLETE: return "CKR_TEMPLATE_INCOMPLETE";
    case CKR_TEMPLATE_INCONSISTENT: return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_TOKEN_NOT_PRESENT: return "CKR_TOKEN_NOT_PRESENT";
    case CKR_TOKEN_NOT_RECOGNIZED: return "CKR_TOKEN_NOT_RECOGNIZED";
    case CKR_USER_ALREADY_LOGGED_IN: return "CKR_USER_ALREADY_LOGGED_IN";
    case CKR_USER_NOT_LOGGED_IN: return "CKR_USER_NOT_LOGGED_IN";
    case CKR_USER_PIN_NOT_INITIALIZED: return "CKR_USER_PIN_NOT_INITIALIZED";
    case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
    case CKR_CRYPTOKI_NOT_INITIALIZED: return "CKR_CRYPTOKI_NOT_INITIALIZED";
    case CKR_CRYPTOKI_ALREADY_INITIALIZED: return "CKR_CRYPTOKI_ALREADY_INITIALIZED";
    case CKR_DOMAIN_PARAMS_INVALID: return "CKR_DOMAIN_PARAMS_INVALID";
    case CKR_CURVE_NOT_SUPPORTED: return "CKR_CURVE_NOT_SUPPORTED";
    default: return NULL;
    }
}

/* Records "what: CKR_..." as the instance's last error and maps rv to a status. */
static cl_status_t token_fail(p11_t *p, const char *what, CK_RV rv)
{
    const char *n = ckr_name(rv);

    if (n != NULL)
        say(p->msg, sizeof p->msg, "%s: %s", what, n);
    else
        say(p->msg, sizeof p->msg, "%s: CKR 0x%lx", what, (unsigned long)rv);
    switch (rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_LOCKED:
    case CKR_PIN_LEN_RANGE: return CL_FAIL(CL_ERR_AUTH);
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID: return CL_FAIL(CL_ERR_NOT_FOUND);
    case CKR_MECHANISM_INVALID:
    case CKR_CURVE_NOT_SUPPORTED:
    case CKR_FUNCTION_NOT_SUPPORTED: return CL_FAIL(CL_ERR_UNSUPPORTED);
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_KEY_TYPE_INCONSISTENT: return CL_FAIL(CL_ERR_INVALID_ARG);
    case CKR_USER_NOT_LOGGED_IN: return CL_FAIL(CL_ERR_STATE);
    default: return CL_FAIL(CL_ERR_CRYPTO);
    }
}

/*
 * PKCS#11 input buffers are declared non-const but are never written;
 * this strips the qualifier without a cast -Wcast-qual would flag.
 */
static CK_BYTE_PTR in_bytes(const void *p)
{
    union {
        const void *c;
        CK_BYTE_PTR m;
    } u;

    u.c = p;
    return u.m;
}

/* ---------------------------------------------------------- module load */

static CK_C_GetFunctionList get_function_list_sym(void *dl)
{
    void *sym = dlsym(dl, "C_GetFunctionList");
    CK_C_GetFunctionList fn = NULL;

    /* ISO C has no object-to-function pointer conversion; POSIX guarantees this copy. */
    if (sym != NULL)
        memcpy(&fn, &sym, sizeof fn);
    return fn;
}

/* Loads (or finds) the module and initialises it once per process. */
static cl_status_t module_acquire(p11_t *p, const char *path, char *err, size_t err_size)
{
    cl_status_t rc = CL_OK;
    struct stat st;
    CK_C_GetFunctionList gfl;
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_C_INITIALIZE_ARGS args;
    module_t *m = NULL, *slot = NULL;
    CK_RV rv;
    int locked = 0;
    const char *why;

    if (stat(path, &st) != 0) {
        say(err, err_size, "pkcs11: module '%s' not found: %s", path, strerror(errno));
        rc = CL_FAIL(CL_ERR_NOT_FOUND);
        goto done;
    }
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (p->dl == NULL) {
        why = dlerror();
        say(err, err_size, "pkcs11: cannot load module '%s': %s", path,
            why != NULL ? why : "unknown dlopen error");
        rc = CL_FAIL(CL_ERR_NOT_FOUND);
        goto done;
    }
    if ((gfl = get_function_list_sym(p->dl)) == NULL) {
        say(err, err_size, "pkcs11: '%s' is not a PKCS#11 module (no C_GetFunctionList)", path);
        rc = CL_FAIL(CL_ERR_NOT_FOUND);
        goto done;
    }
    pthread_mutex_lock(&modules_lock);
    locked = 1;
    for (size_t i = 0; i < MAX_MODULES; i++) {
        if (modules[i].refs != 0 && modules[i].dl == p->dl)
            m = &modules[i];
        else if (modules[i].refs == 0 && slot == NULL)
            slot = &modules[i];
    }
    if (m != NULL) {
        m->refs++;
        p->mod = m;
        p->f = m->f;
        goto done;
    }
    if (slot == NULL) {
        say(err, err_size, "pkcs11: more than %d PKCS#11 modules loaded at once", MAX_MODULES);
        rc = CL_FAIL(CL_ERR_FULL);
        goto done;
    }
    if ((rv = gfl(&f)) != CKR_OK || f == NULL) {
        say(err, err_size, "pkcs11: C_GetFunctionList of '%s' failed: %s", path,
            ckr_name(rv) != NULL ? ckr_name(rv) : "error");
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    rv = f->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        say(err, err_size, "pkcs11: C_Initialize of '%s' failed: %s (0x%lx)", path,
            ckr_name(rv) != NULL ? ckr_name(rv) : "error", (unsigned long)rv);
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    slot->dl = p->dl;
    slot->f = f;
    slot->refs = 1;
    slot->finalize = rv == CKR_OK;
    p->mod = slot;
    p->f = f;

done:
    if (locked)
        pthread_mutex_unlock(&modules_lock);
    if (rc != CL_OK && p->dl != NULL) {
        dlclose(p->dl);
        p->dl = NULL;
    }
    return rc;
}

static void module_release(p11_t *p)
{
    if (p->mod != NULL) {
        pthread_mutex_lock(&modules_lock);
        if (--p->mod->refs == 0) {
            if (p->mod->finalize)
                (void)p->mod->f->C_Finalize(NULL);
            memset(p->mod, 0, sizeof *p->mod);
        }
        pthread_mutex_unlock(&modules_lock);
        p->mod = NULL;
    }
    if (p->dl != NULL) {
        dlclose(p->dl);
        p->dl = NULL;
    }
}

/* --------------------------------------------------------------- entries */

static cl_key_t make_handle(const p11_t *p, uint32_t idx)
{
    return (cl_key_t)((uint32_t)(uint16_t)(p->ents[idx].gen ^ p->salt) << 16 | (idx + 1));
}

static entry_t *find_ent(const p11_t *p, cl_key_t h)
{
    uint32_t idx = h & 0xffffu;
    entry_t *e;

    if (p == NULL || idx == 0 || idx > p->cap)
        return NULL;
    e = &p->ents[idx - 1];
    if (e->kind == ENT_FREE || (uint16_t)(e->gen ^ p->salt) != (uint16_t)(h >> 16))
        return NULL;
    return e;
}

/* A free entry (the table grows as needed); its fields are zeroed but for gen. */
static cl_status_t alloc_ent(p11_t *p, uint32_t *idx)
{
    uint32_t ncap;
    entry_t *n;
    uint16_t gen;

    for (uint32_t i = 0; i < p->cap; i++) {
        if (p->ents[i].kind == ENT_FREE) {
            gen = p->ents[i].gen;
            memset(&p->ents[i], 0, sizeof p->ents[i]);
            p->ents[i].gen = gen;
            *idx = i;
            return CL_OK;
        }
    }
    if (p->cap >= ENT_MAX)
        return CL_FAIL(CL_ERR_FULL);
    ncap = p->cap == 0 ? ENT_FIRST : p->cap * 2;
    if (ncap > ENT_MAX)
        ncap = ENT_MAX;
    n = realloc(p->ents, (size_t)ncap * sizeof *n);
    if (n == NULL)
        return CL_FAIL(CL_ERR_FULL);
    memset(n + p->cap, 0, (size_t)(ncap - p->cap) * sizeof *n);
    p->ents = n;
    *idx = p->cap;
    p->cap = ncap;
    return CL_OK;
}

static void release_ent(entry_t *e)
{
    uint16_t gen = e->gen;

    memset(e, 0, sizeof *e);
    e->gen = (uint16_t)(gen + 1);
}

/* Wraps a key of the inner provider in a handle of ours (the inner key is destroyed on failure). */
static cl_status_t wrap_inner(p11_t *p, cl_key_t inner, cl_key_t *out)
{
    cl_status_t rc;
    uint32_t idx = 0;

    if ((rc = alloc_ent(p, &idx)) != CL_OK) {
        p->inner.ops->key_destroy(p->inner.self, inner);
        return rc;
    }
    p->ents[idx].kind = ENT_INNER;
    p->ents[idx].inner = inner;
    *out = make_handle(p, idx);
    return CL_OK;
}

/* The inner key behind an ENT_INNER handle. */
static cl_status_t inner_key(p11_t *p, cl_key_t h, cl_key_t *inner)
{
    entry_t *e = find_ent(p, h);

    if (e == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (e->kind != ENT_INNER)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *inner = e->inner;
    return CL_OK;
}

/* --------------------------------------------------------- token helpers */

/* CKA_EC_POINT (DER OCTET STRING, or the raw point some tokens return) -> our encoding. */
static cl_status_t decode_point(cl_key_type_t type, const uint8_t *b, size_t len,
                                uint8_t out[CL_PUB_MAX], size_t *out_len)
{
    size_t want = cl_key_pub_len(type);

    if (len == want + 2 && b[0] == 0x04 && b[1] == want) {
        b += 2;
        len -= 2;
    }
    if (len != want || (type == CL_KEY_P256 && b[0] != 0x04))
        return CL_FAIL(CL_ERR_CRYPTO);
    memcpy(out, b, want);
    *out_len = want;
    return CL_OK;
}

/* Reads the public key of a public-key object. */
static cl_status_t read_point(p11_t *p, CK_OBJECT_HANDLE obj, cl_key_type_t type,
                              uint8_t out[CL_PUB_MAX], size_t *out_len)
{
    uint8_t buf[80];
    CK_ATTRIBUTE a = {CKA_EC_POINT, buf, sizeof buf};
    CK_RV rv = p->f->C_GetAttributeValue(p->session, obj, &a, 1);

    if (rv != CKR_OK)
        return token_fail(p, "C_GetAttributeValue(CKA_EC_POINT)", rv);
    if (decode_point(type, buf, a.ulValueLen, out, out_len) != CL_OK) {
        say(p->msg, sizeof p->msg, "token returned a malformed CKA_EC_POINT (%lu bytes)",
            (unsigned long)a.ulValueLen);
        return CL_FAIL(CL_ERR_CRYPTO);
    }
    return CL_OK;
}

/* Finds up to max objects of a class with a label; *n receives the count. */
static cl_status_t find_objects(p11_t *p, CK_OBJECT_CLASS cls, const char *label,
                                CK_OBJECT_HANDLE *out, CK_ULONG max, CK_ULONG *n)
{
    CK_ATTRIBUTE t[2] = {{CKA_CLASS, &cls, sizeof cls},
                         {CKA_LABEL, in_bytes(label), strlen(label)}};
    CK_RV rv;

    *n = 0;
    if ((rv = p->f->C_FindObjectsInit(p->session, t, 2)) != CKR_OK)
        return token_fail(p, "C_FindObjectsInit", rv);
    rv = p->f->C_FindObjects(p->session, out, max, n);
    (void)p->f->C_FindObjectsFinal(p->session);
    if (rv != CKR_OK)
        return token_fail(p, "C_FindObjects", rv);
    return CL_OK;
}

/*
 * Records a token key pair as a new handle. For signing keys the public key
 * is also imported into the inner provider, which verifies (a public-key
 * operation needs no token).
 */
static cl_status_t add_token_key(p11_t *p, cl_key_type_t type, uint32_t usage, int persistent,
                                 CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub_obj,
                                 const uint8_t *pub, size_t pub_len, cl_key_t *out)
{
    cl_status_t rc;
    uint32_t idx = 0;
    cl_key_t ip = CL_KEY_NONE;
    entry_t *e;

    if (pub_len != 0 && (usage & (CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY)) != 0 &&
        (rc = p->inner.ops->key_import_public(p->inner.self, type, pub, pub_len, &ip)) != CL_OK) {
        say(p->msg, sizeof p->msg, "the token's public key does not decode (%s)",
            cl_status_str(rc));
        return CL_FAIL(CL_ERR_CRYPTO);
    }
    if ((rc = alloc_ent(p, &idx)) != CL_OK) {
        p->inner.ops->key_destroy(p->inner.self, ip);
        return rc;
    }
    e = &p->ents[idx];
    e->kind = ENT_TOKEN;
    e->priv = priv;
    e->pub_obj = pub_obj;
    e->inner = ip;
    e->type = type;
    e->usage = usage;
    e->persistent = (uint8_t)(persistent != 0);
    memcpy(e->pub, pub, pub_len);
    e->pub_len = (uint8_t)pub_len;
    *out = make_handle(p, idx);
    return CL_OK;
}

/* Which key-generation mechanism and curve a type needs; CL_ERR_UNSUPPORTED if the token lacks it. */
static cl_status_t gen_mechanism(p11_t *p, cl_key_type_t type, uint32_t usage,
                                 CK_MECHANISM_TYPE *mech, const uint8_t **oid, size_t *oid_len)
{
    switch (type) {
    case CL_KEY_P256:
        if (((usage & CL_KEY_USAGE_ECDH) && !(p->caps & CL_PKCS11_CAP_P256_ECDH)) ||
            ((usage & CL_KEY_USAGE_SIGN) && !(p->caps & CL_PKCS11_CAP_P256_ECDSA))) {
            say(p->msg, sizeof p->msg,
                "token lacks P-256 %s (CKM_EC_KEY_PAIR_GEN + %s)",
                (usage & CL_KEY_USAGE_ECDH) ? "ECDH" : "ECDSA",
                (usage & CL_KEY_USAGE_ECDH) ? "CKM_ECDH1_DERIVE" : "CKM_ECDSA");
            return CL_FAIL(CL_ERR_UNSUPPORTED);
        }
        *mech = CKM_EC_KEY_PAIR_GEN;
        *oid = oid_p256;
        *oid_len = sizeof oid_p256;
        return CL_OK;
    case CL_KEY_ED25519:
        if (!(p->caps & CL_PKCS11_CAP_ED25519)) {
            say(p->msg, sizeof p->msg,
                "token lacks Ed25519 (CKM_EC_EDWARDS_KEY_PAIR_GEN + CKM_EDDSA)");
            return CL_FAIL(CL_ERR_UNSUPPORTED);
        }
        *mech = CKM_EC_EDWARDS_KEY_PAIR_GEN;
        *oid = oid_ed25519;
        *oid_len = sizeof oid_ed25519;
        return CL_OK;
    case CL_KEY_X25519:
        if (!(p->caps & CL_PKCS11_CAP_X25519)) {
            say(p->msg, sizeof p->msg,
                "token lacks X25519 (CKM_EC_MONTGOMERY_KEY_PAIR_GEN, or an X25519-capable "
                "CKM_EC_EDWARDS_KEY_PAIR_GEN, + CKM_ECDH1_DERIVE)");
            return CL_FAIL(CL_ERR_UNSUPPORTED);
        }
        *mech = (p->caps & CL_PKCS11_CAP_X25519_MONTGOMERY) ? CKM_EC_MONTGOMERY_KEY_PAIR_GEN
                                                            : CKM_EC_EDWARDS_KEY_PAIR_GEN;
        *oid = oid_x25519;
        *oid_len = sizeof oid_x25519;
        return CL_OK;
    default: return CL_FAIL(CL_ERR_UNSUPPORTED);
    }
}

/*
 * Generates a key pair in the token: session objects (persistent == 0) or
 * token objects labelled `label`. The private half is CKA_PRIVATE,
 * CKA_SENSITIVE and not CKA_EXTRACTABLE, and may only derive (ECDH usage)
 * and/or sign (signing usage).
 */
static cl_status_t token_generate(p11_t *p, cl_key_type_t type, uint32_t usage, int persistent,
                                  const char *label, cl_key_t *out, uint8_t *pub,
                                  size_t pub_size, size_t *pub_len)
{
    cl_status_t rc;
    CK_MECHANISM_TYPE mtype = 0;
    const uint8_t *oid = NULL;
    size_t oid_len = 0;
    uint8_t params[16];
    uint8_t id[KEY_ID_LEN];
    uint8_t q[CL_PUB_MAX];
    size_t q_len = 0;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_BBOOL tok = persistent ? CK_TRUE : CK_FALSE;
    CK_BBOOL derive = (usage & CL_KEY_USAGE_ECDH) ? CK_TRUE : CK_FALSE;
    CK_BBOOL sign = (usage & CL_KEY_USAGE_SIGN) ? CK_TRUE : CK_FALSE;
    CK_OBJECT_HANDLE pu = CK_INVALID_HANDLE, pr = CK_INVALID_HANDLE;
    CK_MECHANISM mech;
    CK_ULONG label_len = persistent ? (CK_ULONG)strlen(label) : 0;
    CK_RV rv;

    if ((rc = gen_mechanism(p, type, usage, &mtype, &oid, &oid_len)) != CL_OK)
        goto done;
    memcpy(params, oid, oid_len);
    if (persistent &&
        (rc = p->inner.ops->random(p->inner.self, id, sizeof id)) != CL_OK)
        goto done;
    {
        CK_ATTRIBUTE pubt[] = {
            {CKA_EC_PARAMS, params, oid_len},
            {CKA_TOKEN, &tok, sizeof tok},
            {CKA_PRIVATE, &no, sizeof no},
            {CKA_VERIFY, &sign, sizeof sign},
            {CKA_LABEL, in_bytes(label), label_len}, /* these two only for token keys */
            {CKA_ID, id, sizeof id},
        };
        CK_ATTRIBUTE privt[] = {
            {CKA_TOKEN, &tok, sizeof tok},
            {CKA_PRIVATE, &yes, sizeof yes},
            {CKA_SENSITIVE, &yes, sizeof yes},
            {CKA_EXTRACTABLE, &no, sizeof no},
            {CKA_DERIVE, &derive, sizeof derive},
            {CKA_SIGN, &sign, sizeof sign},
            {CKA_LABEL, in_bytes(label), label_len},
            {CKA_ID, id, sizeof id},
        };
        CK_ULONG npub = sizeof pubt / sizeof pubt[0], npriv = sizeof privt / sizeof privt[0];

        if (!persistent) {
            npub -= 2;
            npriv -= 2;
        }
        mech.mechanism = mtype;
        mech.pParameter = NULL;
        mech.ulParameterLen = 0;
        rv = p->f->C_GenerateKeyPair(p->session, &mech, pubt, npub, privt, npriv, &pu, &pr);
    }
    if (rv != CKR_OK) {
        pu = pr = CK_INVALID_HANDLE;
        rc = token_fail(p, "C_GenerateKeyPair", rv);
        goto done;
    }
    if ((rc = read_point(p, pu, type, q, &q_len)) != CL_OK)
        goto done;
    if (!persistent) {
        /* An ephemeral key's public object has no further use: free the token's memory. */
        (void)p->f->C_DestroyObject(p->session, pu);
        pu = CK_INVALID_HANDLE;
    }
    if ((rc = add_token_key(p, type, usage, persistent, pr, pu, q, q_len, out)) != CL_OK)
        goto done;
    pu = pr = CK_INVALID_HANDLE; /* owned by the entry */
    if (pub != NULL) {
        memcpy(pub, q, q_len);
        if (pub_len != NULL)
            *pub_len = q_len;
    }
    (void)pub_size; /* checked by the callers */

done:
    if (pu != CK_INVALID_HANDLE)
        (void)p->f->C_DestroyObject(p->session, pu);
    if (pr != CK_INVALID_HANDLE)
        (void)p->f->C_DestroyObject(p->session, pr);
    return rc;
}

static cl_status_t check_usage(cl_key_type_t type, uint32_t usage)
{
    uint32_t allowed = cl_key_usages(type);

    if (allowed == 0)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (usage == 0 || (usage & ~allowed) != 0)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return CL_OK;
}

/*
 * ECDH in the token: CKM_ECDH1_DERIVE (CKD_NULL) into a non-sensitive,
 * session-only generic secret, whose value is read and which is destroyed
 * at once. The peer key is validated (and decompressed) by the inner
 * provider first, so the token only sees well-formed uncompressed points.
 */
static cl_status_t token_ecdh(p11_t *p, const entry_t *e, const uint8_t *peer, size_t peer_len,
                              uint8_t z[CL_ECDH_MAX])
{
    cl_status_t rc = CL_OK;
    uint8_t pt[2 + CL_PUB_MAX];
    size_t pt_len = 0;
    cl_key_t tmp = CL_KEY_NONE;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ULONG vlen = CL_ECDH_MAX;
    CK_ATTRIBUTE t[] = {
        {CKA_CLASS, &cls, sizeof cls},         {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_TOKEN, &no, sizeof no},           {CKA_SENSITIVE, &no, sizeof no},
        {CKA_EXTRACTABLE, &yes, sizeof yes},   {CKA_VALUE_LEN, &vlen, sizeof vlen},
    };
    CK_ECDH1_DERIVE_PARAMS prm;
    CK_MECHANISM mech;
    CK_OBJECT_HANDLE sk = CK_INVALID_HANDLE;
    CK_ATTRIBUTE va = {CKA_VALUE, z, CL_ECDH_MAX};
    CK_RV rv;
    uint8_t acc = 0;

    if (e->type == CL_KEY_P256) {
        if ((rc = p->inner.ops->key_import_public(p->inner.self, CL_KEY_P256, peer, peer_len,
                                                  &tmp)) != CL_OK) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        if ((rc = p->inner.ops->key_export_public(p->inner.self, tmp, pt + 2, CL_PUB_MAX,
                                                  &pt_len)) != CL_OK)
            goto done;
    } else {
        if (peer_len != 32) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        memcpy(pt + 2, peer, 32);
        pt_len = 32;
    }
    memset(&prm, 0, sizeof prm);
    prm.kdf = CKD_NULL;
    prm.pPublicData = pt + 2;
    prm.ulPublicDataLen = pt_len;
    mech.mechanism = CKM_ECDH1_DERIVE;
    mech.pParameter = &prm;
    mech.ulParameterLen = sizeof prm;
    rv = p->f->C_DeriveKey(p->session, &mech, e->priv, t, sizeof t / sizeof t[0], &sk);
    if (rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD ||
        rv == CKR_DOMAIN_PARAMS_INVALID) {
        /* PKCS#11 asks for the raw point; some tokens want it DER-wrapped: try that once. */
        pt[0] = 0x04;
        pt[1] = (uint8_t)pt_len;
        prm.pPublicData = pt;
        prm.ulPublicDataLen = pt_len + 2;
        rv = p->f->C_DeriveKey(p->session, &mech, e->priv, t, sizeof t / sizeof t[0], &sk);
    }
    if (rv != CKR_OK) {
        sk = CK_INVALID_HANDLE;
        rc = token_fail(p, "C_DeriveKey(CKM_ECDH1_DERIVE)", rv);
        if (rv == CKR_MECHANISM_PARAM_INVALID || rv == CKR_ARGUMENTS_BAD ||
            rv == CKR_DOMAIN_PARAMS_INVALID)
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    rv = p->f->C_GetAttributeValue(p->session, sk, &va, 1);
    if (rv != CKR_OK || va.ulValueLen != CL_ECDH_MAX) {
        rc = rv != CKR_OK ? token_fail(p, "C_GetAttributeValue(derived CKA_VALUE)", rv)
                          : CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    for (size_t i = 0; i < CL_ECDH_MAX; i++)
        acc |= z[i];
    if (acc == 0)
        rc = CL_FAIL(CL_ERR_BAD_INPUT); /* low-order X25519 peer */

done:
    if (sk != CK_INVALID_HANDLE)
        (void)p->f->C_DestroyObject(p->session, sk);
    p->inner.ops->key_destroy(p->inner.self, tmp);
    if (rc != CL_OK)
        cl_wipe(z, CL_ECDH_MAX);
    return rc;
}

static cl_status_t token_sign(p11_t *p, const entry_t *e, const uint8_t *msg, size_t msg_len,
                              uint8_t sig[CL_SIG_MAX])
{
    static const uint8_t empty[1] = {0};
    cl_status_t rc = CL_OK;
    uint8_t h[CL_SHA256_LEN];
    uint8_t out[2 * CL_SIG_MAX];
    CK_ULONG out_len = sizeof out;
    CK_MECHANISM mech = {CKM_EDDSA, NULL, 0};
    const uint8_t *data = msg_len != 0 ? msg : empty;
    CK_ULONG data_len = msg_len;
    CK_RV rv;

    if (e->type == CL_KEY_P256) {
        if (p->have_ecdsa) {
            cl_buf_t part = {msg, msg_len};
            if ((rc = p->inner.ops->sha256(p->inner.self, &part, 1, h)) != CL_OK)
                goto done;
            mech.mechanism = CKM_ECDSA;
            data = h;
            data_len = sizeof h;
        } else {
            mech.mechanism = CKM_ECDSA_SHA256;
        }
    }
    if ((rv = p->f->C_SignInit(p->session, &mech, e->priv)) != CKR_OK) {
        rc = token_fail(p, "C_SignInit", rv);
        goto done;
    }
    if ((rv = p->f->C_Sign(p->session, in_bytes(data), data_len, out, &out_len)) != CKR_OK) {
        rc = token_fail(p, "C_Sign", rv);
        goto done;
    }
    /* PKCS#11 ECDSA and EdDSA signatures are already raw r || s / R || S. */
    if (out_len != CL_SIG_MAX) {
        say(p->msg, sizeof p->msg, "C_Sign returned %lu bytes, expected 64",
            (unsigned long)out_len);
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto done;
    }
    memcpy(sig, out, CL_SIG_MAX);

done:
    cl_wipe(h, sizeof h);
    return rc;
}

/* -------------------------------------------------------------- the ops */

static cl_status_t op_random(void *self, uint8_t *out, size_t len)
{
    p11_t *p = self;

    if (p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return p->inner.ops->random(p->inner.self, out, len);
}

static cl_status_t op_sha256(void *self, const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    p11_t *p = self;

    if (p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return p->inner.ops->sha256(p->inner.self, parts, n, out);
}

static cl_status_t op_hmac_sha256(void *self, const uint8_t *key, size_t key_len,
                                  const cl_buf_t *parts, size_t n, uint8_t out[32])
{
    p11_t *p = self;

    if (p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return p->inner.ops->hmac_sha256(p->inner.self, key, key_len, parts, n, out);
}

static cl_status_t op_hkdf_extract(void *self, const uint8_t *salt, size_t salt_len,
                                   const uint8_t *ikm, size_t ikm_len, uint8_t prk[32])
{
    p11_t *p = self;

    if (p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return p->inner.ops->hkdf_extract(p->inner.self, salt, salt_len, ikm, ikm_len, prk);
}

static cl_status_t op_hkdf_expand(void *self, const uint8_t *prk, size_t prk_len,
                                  const uint8_t *info, size_t info_len, uint8_t *out,
                                  size_t out_len)
{
    p11_t *p = self;

    if (p == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return p->inner.ops->hkdf_expand(p->inner.self, prk, prk_len, info, info_len, out, out_len);
}

static cl_status_t op_aead_import(void *self, cl_aead_alg_t alg, const uint8_t *key,
                                  size_t key_len, cl_key_t *out)
{
    p11_t *p = self;
    cl_status_t rc;
    cl_key_t k = CL_KEY_NONE;

    if (p == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = p->inner.ops->aead_import(p->inner.self, alg, key, key_len, &k)) != CL_OK)
        return rc;
    return wrap_inner(p, k, out);
}

static cl_status_t op_aead_encrypt(void *self, cl_key_t key, const uint8_t *nonce,
                                   size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                   const uint8_t *pt, size_t pt_len, uint8_t *out,
                                   size_t out_size, size_t *out_len)
{
    p11_t *p = self;
    cl_status_t rc;
    cl_key_t k = CL_KEY_NONE;

    if ((rc = inner_key(p, key, &k)) != CL_OK)
        return rc;
    return p->inner.ops->aead_encrypt(p->inner.self, k, nonce, nonce_len, aad, aad_len, pt,
                                      pt_len, out, out_size, out_len);
}

static cl_status_t op_aead_decrypt(void *self, cl_key_t key, const uint8_t *nonce,
                                   size_t nonce_len, const uint8_t *aad, size_t aad_len,
                                   const uint8_t *in, size_t in_len, uint8_t *out,
                                   size_t out_size, size_t *out_len)
{
    p11_t *p = self;
    cl_status_t rc;
    cl_key_t k = CL_KEY_NONE;

    if ((rc = inner_key(p, key, &k)) != CL_OK)
        return rc;
    return p->inner.ops->aead_decrypt(p->inner.self, k, nonce, nonce_len, aad, aad_len, in,
                                      in_len, out, out_size, out_len);
}

static cl_status_t op_key_generate(void *self, cl_key_type_t type, uint32_t usage,
                                   cl_key_t *out, uint8_t *pub, size_t pub_size,
                                   size_t *pub_len)
{
    p11_t *p = self;
    cl_status_t rc;

    if (p == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = check_usage(type, usage)) != CL_OK)
        return rc;
    if (pub != NULL && pub_size < cl_key_pub_len(type))
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    return token_generate(p, type, usage, 0, "", out, pub, pub_size, pub_len);
}

/*
 * A private key given as bytes was in host memory already: it stays in the
 * inner provider (software key). Moving it into the token would not make it
 * any less exposed, and secure elements often refuse C_CreateObject of keys.
 */
static cl_status_t op_key_import_private(void *self, cl_key_type_t type, uint32_t usage,
                                         const uint8_t *priv, size_t priv_len, cl_key_t *out)
{
    p11_t *p = self;
    cl_status_t rc;
    cl_key_t k = CL_KEY_NONE;

    if (p == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = p->inner.ops->key_import_private(p->inner.self, type, usage, priv, priv_len,
                                               &k)) != CL_OK)
        return rc;
    return wrap_inner(p, k, out);
}

static cl_status_t op_key_import_public(void *self, cl_key_type_t type, const uint8_t *pub,
                                        size_t pub_len, cl_key_t *out)
{
    p11_t *p = self;
    cl_status_t rc;
    cl_key_t k = CL_KEY_NONE;

    if (p == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = p->inner.ops->key_import_public(p->inner.self, type, pub, pub_len, &k)) != CL_OK)
        return rc;
    return wrap_inner(p, k, out);
}

static cl_status_t op_key_export_public(void *self, cl_key_t key, uint8_t *pub, size_t pub_size,
                                        size_t *pub_len)
{
    p11_t *p = self;
    entry_t *e = find_ent(p, key);

    if (e == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (e->kind == ENT_INNER)
        return p->inner.ops->key_export_public(p->inner.self, e->inner, pub, pub_size, pub_len);
    if (pub == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (e->pub_len == 0) {
        say(p->msg, sizeof p->msg, "the token holds no public key object for this key");
        return CL_FAIL(CL_ERR_NOT_FOUND);
    }
    if (pub_size < e->pub_len)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    memcpy(pub, e->pub, e->pub_len);
    if (pub_len != NULL)
        *pub_len = e->pub_len;
    return CL_OK;
}

static cl_status_t op_ecdh(void *self, cl_key_t priv, const uint8_t *peer_pub, size_t peer_len,
                           uint8_t *secret, size_t secret_size, size_t *secret_len)
{
    p11_t *p = self;
    entry_t *e = find_ent(p, priv);
    cl_status_t rc;
    uint8_t z[CL_ECDH_MAX];

    if (e == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (e->kind == ENT_INNER)
        return p->inner.ops->ecdh(p->inner.self, e->inner, peer_pub, peer_len, secret,
                                  secret_size, secret_len);
    if (!(e->usage & CL_KEY_USAGE_ECDH) || peer_pub == NULL || secret == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (secret_size < CL_ECDH_MAX)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    if ((rc = token_ecdh(p, e, peer_pub, peer_len, z)) == CL_OK) {
        memcpy(secret, z, sizeof z);
        if (secret_len != NULL)
            *secret_len = sizeof z;
    }
    cl_wipe(z, sizeof z);
    return rc;
}

static cl_status_t sig_alg_matches(cl_sig_alg_t alg, cl_key_type_t type)
{
    if (alg != CL_SIG_ES256 && alg != CL_SIG_EDDSA)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if ((alg == CL_SIG_ES256) != (type == CL_KEY_P256) ||
        (alg == CL_SIG_EDDSA) != (type == CL_KEY_ED25519))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return CL_OK;
}

static cl_status_t op_sign(void *self, cl_key_t priv, cl_sig_alg_t alg, const uint8_t *msg,
                           size_t msg_len, uint8_t *sig, size_t sig_size, size_t *sig_len)
{
    p11_t *p = self;
    entry_t *e = find_ent(p, priv);
    cl_status_t rc;
    uint8_t s[CL_SIG_MAX];

    if (e == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (e->kind == ENT_INNER)
        return p->inner.ops->sign(p->inner.self, e->inner, alg, msg, msg_len, sig, sig_size,
                                  sig_len);
    if (!(e->usage & CL_KEY_USAGE_SIGN))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = sig_alg_matches(alg, e->type)) != CL_OK)
        return rc;
    if ((msg == NULL && msg_len != 0) || sig == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (sig_size < CL_SIG_MAX)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    if ((rc = token_sign(p, e, msg, msg_len, s)) == CL_OK) {
        memcpy(sig, s, sizeof s);
        if (sig_len != NULL)
            *sig_len = sizeof s;
    }
    return rc;
}

static cl_status_t op_verify(void *self, cl_key_t pub, cl_sig_alg_t alg, const uint8_t *msg,
                             size_t msg_len, const uint8_t *sig, size_t sig_len)
{
    p11_t *p = self;
    entry_t *e = find_ent(p, pub);

    if (e == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (e->kind == ENT_TOKEN && e->inner == CL_KEY_NONE)
        return CL_FAIL(CL_ERR_INVALID_ARG); /* an ECDH-only key, or no public key known */
    return p->inner.ops->verify(p->inner.self, e->inner, alg, msg, msg_len, sig, sig_len);
}

static void op_key_destroy(void *self, cl_key_t key)
{
    p11_t *p = self;
    entry_t *e = find_ent(p, key);

    if (e == NULL)
        return;
    if (e->kind == ENT_TOKEN && !e->persistent) {
        (void)p->f->C_DestroyObject(p->session, e->priv);
        if (e->pub_obj != CK_INVALID_HANDLE)
            (void)p->f->C_DestroyObject(p->session, e->pub_obj);
    }
    p->inner.ops->key_destroy(p->inner.self, e->inner);
    release_ent(e);
}

static const cl_crypto_ops_t ops_p11 = {
    .version = CL_CRYPTO_OPS_VERSION,
    .name = "pkcs11",
    .random = op_random,
    .sha256 = op_sha256,
    .hmac_sha256 = op_hmac_sha256,
    .hkdf_extract = op_hkdf_extract,
    .hkdf_expand = op_hkdf_expand,
    .aead_import = op_aead_import,
    .aead_encrypt = op_aead_encrypt,
    .aead_decrypt = op_aead_decrypt,
    .key_generate = op_key_generate,
    .key_import_private = op_key_import_private,
    .key_import_public = op_key_import_public,
    .key_export_public = op_key_export_public,
    .ecdh = op_ecdh,
    .sign = op_sign,
    .verify = op_verify,
    .key_destroy = op_key_destroy,
};

/* ------------------------------------------------------------- instance */

/* The instance behind a cl_crypto_t of this provider, or NULL. */
static p11_t *self_of(const cl_crypto_t *c)
{
    return c != NULL && c->ops == &ops_p11 ? c->self : NULL;
}

/* Label of a token, trailing padding removed, as a C string. */
static void token_label_str(const CK_TOKEN_INFO *ti, char out[CL_PKCS11_TOKEN_LABEL_MAX + 1])
{
    size_t n = sizeof ti->label;

    memcpy(out, ti->label, n);
    while (n > 0 && (out[n - 1] == ' ' || out[n - 1] == '\0'))
        n--;
    out[n] = '\0';
}

/* Finds the slot whose token has the label; lists the labels seen when there is none. */
static cl_status_t find_token(p11_t *p, const char *label, char *err, size_t err_size)
{
    cl_status_t rc = CL_OK;
    CK_SLOT_ID *slots = NULL;
    CK_ULONG n = 0;
    CK_TOKEN_INFO ti;
    char seen[160] = "";
    char one[CL_PKCS11_TOKEN_LABEL_MAX + 1];
    size_t used = 0;
    CK_RV rv;

    if ((rv = p->f->C_GetSlotList(CK_TRUE, NULL, &n)) != CKR_OK) {
        rc = token_fail(p, "C_GetSlotList", rv);
        say(err, err_size, "pkcs11: %s", p->msg);
        goto done;
    }
    if (n != 0 && (slots = calloc(n, sizeof *slots)) == NULL) {
        rc = CL_FAIL(CL_ERR_FULL);
        goto done;
    }
    if (n != 0 && (rv = p->f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
        rc = token_fail(p, "C_GetSlotList", rv);
        say(err, err_size, "pkcs11: %s", p->msg);
        goto done;
    }
    for (CK_ULONG i = 0; i < n; i++) {
        if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
            continue;
        token_label_str(&ti, one);
        if (strcmp(one, label) == 0) {
            if (!(ti.flags & CKF_TOKEN_INITIALIZED))
                continue;
            p->slot = slots[i];
            goto done;
        }
        if ((ti.flags & CKF_TOKEN_INITIALIZED) && used < sizeof seen) {
            int w = snprintf(seen + used, sizeof seen - used, "%s'%s'", used ? ", " : "", one);
            used = w < 0 ? sizeof seen : used + (size_t)w;
        }
    }
    say(err, err_size, "pkcs11: no initialised token labelled '%s' (tokens present: %s)", label,
        used ? seen : "none");
    rc = CL_FAIL(CL_ERR_NOT_FOUND);

done:
    free(slots);
    return rc;
}

/* Reads the mechanism list into caps. */
static void probe_mechanisms(p11_t *p)
{
    CK_MECHANISM_TYPE *m = NULL;
    CK_ULONG n = 0;
    int ec_gen = 0, ecdh = 0, ecdsa = 0, ecdsa256 = 0, ed_gen = 0, eddsa = 0, mont_gen = 0;
    CK_TOKEN_INFO ti;

    if (p->f->C_GetMechanismList(p->slot, NULL, &n) != CKR_OK || n == 0 ||
        (m = calloc(n, sizeof *m)) == NULL || p->f->C_GetMechanismList(p->slot, m, &n) != CKR_OK)
        n = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        switch (m[i]) {
        case CKM_EC_KEY_PAIR_GEN: ec_gen = 1; break;
        case CKM_ECDH1_DERIVE: ecdh = 1; break;
        case CKM_ECDSA: ecdsa = 1; break;
        case CKM_ECDSA_SHA256: ecdsa256 = 1; break;
        case CKM_EC_EDWARDS_KEY_PAIR_GEN: ed_gen = 1; break;
        case CKM_EDDSA: eddsa = 1; break;
        case CKM_EC_MONTGOMERY_KEY_PAIR_GEN: mont_gen = 1; break;
        case CKM_HKDF_DERIVE: p->caps |= CL_PKCS11_CAP_HKDF; break;
        default: break;
        }
    }
    free(m);
    p->have_ecdsa = ecdsa;
    if (ec_gen && ecdh)
        p->caps |= CL_PKCS11_CAP_P256_ECDH;
    if (ec_gen && (ecdsa || ecdsa256))
        p->caps |= CL_PKCS11_CAP_P256_ECDSA;
    if (ecdsa256)
        p->caps |= CL_PKCS11_CAP_ECDSA_SHA256;
    if (ed_gen && eddsa)
        p->caps |= CL_PKCS11_CAP_ED25519;
    if (mont_gen && ecdh)
        p->caps |= CL_PKCS11_CAP_X25519 | CL_PKCS11_CAP_X25519_MONTGOMERY;
    if (p->f->C_GetTokenInfo(p->slot, &ti) == CKR_OK && (ti.flags & CKF_RNG))
        p->caps |= CL_PKCS11_CAP_RANDOM;
    if (!mont_gen && ed_gen && ecdh) {
        /*
         * SoftHSM2 2.6 has no CKM_EC_MONTGOMERY_KEY_PAIR_GEN but makes X25519
         * keys with CKM_EC_EDWARDS_KEY_PAIR_GEN and the X25519 curve: find
         * out by generating one session key pair (then destroyed).
         */
        cl_key_t k = CL_KEY_NONE;
        p->caps |= CL_PKCS11_CAP_X25519;
        if (token_generate(p, CL_KEY_X25519, CL_KEY_USAGE_ECDH, 0, "", &k, NULL, 0, NULL) !=
            CL_OK)
            p->caps &= ~(unsigned)CL_PKCS11_CAP_X25519;
        op_key_destroy(p, k);
        p->msg[0] = '\0';
    }
}

static void p11_free(p11_t *p)
{
    if (p == NULL)
        return;
    /* Closing the session destroys every session object it made (the ephemeral keys). */
    if (p->have_session)
        (void)p->f->C_CloseSession(p->session);
    module_release(p);
    cl_crypto_openssl_free(&p->inner);
    free(p->ents);
    cl_wipe(p, sizeof *p);
    free(p);
}

cl_status_t cl_crypto_pkcs11_new(cl_crypto_t *c, const char *module_path,
                                 const char *token_label, const char *pin, char *err,
                                 size_t err_size)
{
    cl_status_t rc = CL_OK;
    p11_t *p = NULL;
    CK_TOKEN_INFO ti;
    CK_RV rv;

    say(err, err_size, "%s", "");
    if (c == NULL || module_path == NULL || token_label == NULL) {
        say(err, err_size, "pkcs11: module path and token label are required");
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    c->ops = NULL;
    c->self = NULL;
    if (strlen(token_label) > CL_PKCS11_TOKEN_LABEL_MAX) {
        say(err, err_size, "pkcs11: token label longer than %d bytes", CL_PKCS11_TOKEN_LABEL_MAX);
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if ((p = calloc(1, sizeof *p)) == NULL) {
        rc = CL_FAIL(CL_ERR_FULL);
        goto done;
    }
    if ((rc = cl_crypto_openssl_new(&p->inner, 0)) != CL_OK) {
        say(err, err_size, "pkcs11: cannot create the inner OpenSSL provider");
        goto done;
    }
    if ((rc = p->inner.ops->random(p->inner.self, (uint8_t *)&p->salt, sizeof p->salt)) != CL_OK)
        goto done;
    if ((rc = module_acquire(p, module_path, err, err_size)) != CL_OK)
        goto done;
    if ((rc = find_token(p, token_label, err, err_size)) != CL_OK)
        goto done;
    rv = p->f->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                             &p->session);
    if (rv != CKR_OK) {
        rc = token_fail(p, "C_OpenSession", rv);
        say(err, err_size, "pkcs11: token '%s': %s", token_label, p->msg);
        goto done;
    }
    p->have_session = 1;
    if (pin == NULL && p->f->C_GetTokenInfo(p->slot, &ti) == CKR_OK &&
        (ti.flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
        /* A PIN pad (or biometric) on the reader: the token asks the user itself. */
        rv = p->f->C_Login(p->session, CKU_USER, NULL, 0);
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            rc = token_fail(p, "C_Login (protected authentication path)", rv);
            say(err, err_size, "pkcs11: cannot log in to token '%s': %s", token_label, p->msg);
            goto done;
        }
    } else if (pin != NULL) {
        rv = p->f->C_Login(p->session, CKU_USER, in_bytes(pin), (CK_ULONG)strlen(pin));
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            rc = token_fail(p, "C_Login", rv);
            if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE)
                say(err, err_size, "pkcs11: wrong user PIN for token '%s' (%s)", token_label,
                    p->msg);
            else if (rv == CKR_PIN_LOCKED)
                say(err, err_size, "pkcs11: the user PIN of token '%s' is locked", token_label);
            else
                say(err, err_size, "pkcs11: cannot log in to token '%s': %s", token_label,
                    p->msg);
            goto done;
        }
    }
    probe_mechanisms(p);
    c->ops = &ops_p11;
    c->self = p;
    p = NULL;

done:
    p11_free(p);
    return rc;
}

void cl_crypto_pkcs11_free(cl_crypto_t *c)
{
    p11_t *p = self_of(c);

    if (p == NULL)
        return;
    p11_free(p);
    c->ops = NULL;
    c->self = NULL;
}

unsigned cl_crypto_pkcs11_caps(const cl_crypto_t *c)
{
    p11_t *p = self_of(c);

    return p != NULL ? p->caps : 0;
}

const char *cl_crypto_pkcs11_last_error(const cl_crypto_t *c)
{
    p11_t *p = self_of(c);

    return p != NULL ? p->msg : "not a pkcs11 provider";
}

static cl_status_t check_key_label(const char *label)
{
    size_t n;

    if (label == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    n = strlen(label);
    if (n == 0 || n > CL_PKCS11_KEY_LABEL_MAX)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    return CL_OK;
}

cl_status_t cl_crypto_pkcs11_generate_key(const cl_crypto_t *c, cl_key_type_t type,
                                          uint32_t usage, const char *label, cl_key_t *out,
                                          uint8_t *pub, size_t pub_size, size_t *pub_len)
{
    p11_t *p = self_of(c);
    cl_status_t rc;
    CK_OBJECT_HANDLE found[1];
    CK_ULONG n = 0;

    if (p == NULL || out == NULL || (rc = check_key_label(label)) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = check_usage(type, usage)) != CL_OK)
        return rc;
    if (pub != NULL && pub_size < cl_key_pub_len(type))
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    if ((rc = find_objects(p, CKO_PRIVATE_KEY, label, found, 1, &n)) != CL_OK)
        return rc;
    if (n != 0) {
        say(p->msg, sizeof p->msg, "a private key labelled '%s' exists already", label);
        return CL_FAIL(CL_ERR_STATE);
    }
    return token_generate(p, type, usage, 1, label, out, pub, pub_size, pub_len);
}

/* Key type of a token private key from CKA_KEY_TYPE and CKA_EC_PARAMS. */
static cl_status_t key_type_of(p11_t *p, CK_OBJECT_HANDLE obj, cl_key_type_t *type,
                               uint32_t *usage)
{
    CK_KEY_TYPE kt = 0;
    uint8_t params[64];
    CK_BBOOL derive = CK_FALSE, sign = CK_FALSE;
    CK_ATTRIBUTE a[] = {
        {CKA_KEY_TYPE, &kt, sizeof kt},
        {CKA_EC_PARAMS, params, sizeof params},
        {CKA_DERIVE, &derive, sizeof derive},
        {CKA_SIGN, &sign, sizeof sign},
    };
    CK_RV rv = p->f->C_GetAttributeValue(p->session, obj, a, sizeof a / sizeof a[0]);
    size_t pl;

    if (rv != CKR_OK)
        return token_fail(p, "C_GetAttributeValue(key type)", rv);
    pl = a[1].ulValueLen;
#define PARAMS_ARE(x) (pl == sizeof(x) && memcmp(params, (x), pl) == 0)
    if (kt == CKK_EC && PARAMS_ARE(oid_p256))
        *type = CL_KEY_P256;
    else if (kt == CKK_EC_EDWARDS && (PARAMS_ARE(oid_ed25519) || PARAMS_ARE(name_ed25519)))
        *type = CL_KEY_ED25519;
    /* SoftHSM2 2.6 files X25519 keys as CKK_EC_EDWARDS */
    else if ((kt == CKK_EC_MONTGOMERY || kt == CKK_EC_EDWARDS) &&
             (PARAMS_ARE(oid_x25519) || PARAMS_ARE(name_x25519)))
        *type = CL_KEY_X25519;
#undef PARAMS_ARE
    else {
        say(p->msg, sizeof p->msg, "key type 0x%lx with these curve parameters is not supported",
            (unsigned long)kt);
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    }
    *usage = (derive ? CL_KEY_USAGE_ECDH : 0u) |
             (sign ? CL_KEY_USAGE_SIGN | CL_KEY_USAGE_VERIFY : 0u);
    *usage &= cl_key_usages(*type);
    if (*usage == 0) {
        say(p->msg, sizeof p->msg, "the key allows neither CKA_DERIVE nor CKA_SIGN");
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    }
    return CL_OK;
}

cl_status_t cl_crypto_pkcs11_find_key(const cl_crypto_t *c, const char *label, cl_key_t *out)
{
    p11_t *p = self_of(c);
    cl_status_t rc;
    CK_OBJECT_HANDLE priv[2], pub[2];
    CK_ULONG n = 0, npub = 0;
    cl_key_type_t type = CL_KEY_P256;
    uint32_t usage = 0;
    uint8_t q[CL_PUB_MAX];
    size_t q_len = 0;

    if (p == NULL || out == NULL || check_key_label(label) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = find_objects(p, CKO_PRIVATE_KEY, label, priv, 2, &n)) != CL_OK)
        return rc;
    if (n == 0) {
        say(p->msg, sizeof p->msg, "no private key labelled '%s' in the token", label);
        return CL_FAIL(CL_ERR_NOT_FOUND);
    }
    if (n > 1) {
        say(p->msg, sizeof p->msg, "several private keys are labelled '%s'", label);
        return CL_FAIL(CL_ERR_STATE);
    }
    if ((rc = key_type_of(p, priv[0], &type, &usage)) != CL_OK)
        return rc;
    if ((rc = find_objects(p, CKO_PUBLIC_KEY, label, pub, 2, &npub)) != CL_OK)
        return rc;
    if (npub == 1 && (rc = read_point(p, pub[0], type, q, &q_len)) != CL_OK)
        return rc;
    return add_token_key(p, type, usage, 1, priv[0], npub == 1 ? pub[0] : CK_INVALID_HANDLE, q,
                         npub == 1 ? q_len : 0, out);
}

cl_status_t cl_crypto_pkcs11_delete_key(const cl_crypto_t *c, cl_key_t key)
{
    p11_t *p = self_of(c);
    entry_t *e = find_ent(p, key);
    CK_RV rv;
    cl_status_t rc = CL_OK;

    if (e == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (e->kind != ENT_TOKEN)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rv = p->f->C_DestroyObject(p->session, e->priv)) != CKR_OK)
        rc = token_fail(p, "C_DestroyObject(private key)", rv);
    if (e->pub_obj != CK_INVALID_HANDLE &&
        (rv = p->f->C_DestroyObject(p->session, e->pub_obj)) != CKR_OK && rc == CL_OK)
        rc = token_fail(p, "C_DestroyObject(public key)", rv);
    p->inner.ops->key_destroy(p->inner.self, e->inner);
    release_ent(e);
    return rc;
}

cl_status_t cl_crypto_pkcs11_key_is_extractable(const cl_crypto_t *c, cl_key_t key,
                                                bool *extractable)
{
    p11_t *p = self_of(c);
    entry_t *e = find_ent(p, key);
    CK_BBOOL ex = CK_TRUE, sens = CK_FALSE;
    CK_ATTRIBUTE a[] = {{CKA_EXTRACTABLE, &ex, sizeof ex}, {CKA_SENSITIVE, &sens, sizeof sens}};
    CK_RV rv;

    if (e == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (e->kind != ENT_TOKEN || extractable == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rv = p->f->C_GetAttributeValue(p->session, e->priv, a, 2)) != CKR_OK)
        return token_fail(p, "C_GetAttributeValue(CKA_EXTRACTABLE, CKA_SENSITIVE)", rv);
    *extractable = ex != CK_FALSE || sens == CK_FALSE;
    return CL_OK;
}

cl_status_t cl_crypto_pkcs11_key_object(const cl_crypto_t *c, cl_key_t key,
                                        unsigned long *object)
{
    p11_t *p = self_of(c);
    entry_t *e = find_ent(p, key);

    if (e == NULL)
        return CL_FAIL(CL_ERR_NOT_FOUND);
    if (e->kind != ENT_TOKEN || object == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *object = (unsigned long)e->priv;
    return CL_OK;
}
