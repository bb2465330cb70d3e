/*
 * pki.c - X.509 certificates of the owner's PKI, built and checked in memory (pki.h).
 *
 * Building: OpenSSL assembles the TBSCertificate (names, validity, the P-256
 * key, the extensions of the profile in pki.h) and encodes it; the signature
 * comes from the caller's sign() (a token, the core's CA key) as raw r || s,
 * is turned into an ECDSA-Sig-Value here and the Certificate SEQUENCE is
 * written by hand. The result is parsed back with the strict parser below and
 * checked with the very issuance check cl_pki_verify_issued uses, so a wrong
 * key behind sign() is caught before a certificate leaves.
 *
 * Parsing is strict on purpose, so one certificate has one encoding (and one
 * thumbprint): the DER is first walked TLV by TLV (definite, minimal lengths,
 * low tag numbers only), then decoded with d2i_X509, which must consume every
 * byte, then re-encoded by OpenSSL and compared with the input (catches
 * non-DER values such as a BOOLEAN other than 0xff or an explicit DEFAULT).
 * Profile: v3, ecdsa-with-SHA256 without parameters in both algorithm
 * fields, an id-ecPublicKey prime256v1 key with an uncompressed point on the
 * curve, extensions OpenSSL can decode (none unknown and critical), exactly
 * one subject CN and at most one OU, RFC 5280 time encodings.
 *
 * No I/O, no clock, no environment (scripts/check-symbols.sh,
 * scripts/symbol-allowlists/pki-openssl.txt): Unix seconds are converted
 * with days-from-civil arithmetic, never timegm/mktime. OpenSSL allocates;
 * every object is freed on every path, and the thread's OpenSSL error queue
 * is cleared when a call fails.
 */
#include "pki.h"

#include <limits.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/* AlgorithmIdentifier ecdsa-with-SHA256 (1.2.840.10045.4.3.2), no parameters (RFC 5758). */
static const uint8_t k_ecdsa_sha256_algid[12] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                                 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
#define DER_MAX_DEPTH 16
#define ECDSA_DER_MAX 72        /* SEQUENCE { INTEGER(33), INTEGER(33) } */
#define UNIX_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

/* ---- calendar (no timegm / mktime: they may read TZ files) ---- */

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Sets t to Unix time s (0 <= s <= UNIX_MAX); UTCTime up to 2049, GeneralizedTime after. */
static bool asn1_time_set_unix(ASN1_TIME *t, int64_t s)
{
    char str[16];
    int64_t y;
    unsigned m, d, sec = (unsigned)(s % 86400);

    civil_from_days(s / 86400, &y, &m, &d);
    put_digits(str, (unsigned)y, 4);
    put_digits(str + 4, m, 2);
    put_digits(str + 6, d, 2);
    put_digits(str + 8, sec / 3600, 2);
    put_digits(str + 10, sec / 60 % 60, 2);
    put_digits(str + 12, sec % 60, 2);
    str[14] = 'Z';
    str[15] = '\0';
    /* takes YYYYMMDDHHMMSSZ and stores UTCTime when the year is 1950..2049 (RFC 5280) */
    return ASN1_TIME_set_string_X509(t, str) == 1;
}

/* RFC 5280 time: YYMMDDHHMMSSZ (1950..2049) or YYYYMMDDHHMMSSZ (other years) -> Unix seconds. */
static bool asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    int type = ASN1_STRING_type(t), len = ASN1_STRING_length(t);
    const unsigned char *s = ASN1_STRING_get0_data(t);
    int64_t year;

    if (!((type == V_ASN1_UTCTIME && len == 13) || (type == V_ASN1_GENERALIZEDTIME && len == 15)))
        return false;
    for (int i = 0; i < len - 1; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    if (s[len - 1] != 'Z')
        return false;
    memset(&tm, 0, sizeof tm);
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return false;
    year = (int64_t)tm.tm_year + 1900;
    if (type == V_ASN1_GENERALIZEDTIME && year >= 1950 && year < 2050)
        return false;
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31)
        return false;
    *out = days_from_civil(year, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday) * 86400 +
           (int64_t)tm.tm_hour * 3600 + (int64_t)tm.tm_min * 60 + tm.tm_sec;
    return true;
}

/* ---- DER ---- */

/* Header of the TLV at p[0..n): definite minimal length, low tag number, content inside n. */
static bool der_tlv(const uint8_t *p, size_t n, size_t *hdr, size_t *clen)
{
    size_t l;

    if (n < 2 || (p[0] & 0x1f) == 0x1f)
        return false;
    if (p[1] < 0x80) {
        l = p[1];
        *hdr = 2;
    } else if (p[1] == 0x81) {
        if (n < 3 || p[2] < 0x80)
            return false;
        l = p[2];
        *hdr = 3;
    } else if (p[1] == 0x82) {
        if (n < 4 || p[2] == 0)
            return false;
        l = (size_t)p[2] << 8 | p[3];
        *hdr = 4;
    } else {
        return false; /* indefinite, or longer than CL_PKI_MAX_CERT allows */
    }
    if (l > n - *hdr)
        return false;
    *clen = l;
    return true;
}

/* p[0..n) is a sequence of well-formed TLVs, constructed ones recursively so. */
static bool der_strict(const uint8_t *p, size_t n, int depth)
{
    while (n > 0) {
        size_t hdr, clen;
        if (depth > DER_MAX_DEPTH || !der_tlv(p, n, &hdr, &clen))
            return false;
        if ((p[0] & 0x20) != 0 && !der_strict(p + hdr, clen, depth + 1))
            return false;
        p += hdr + clen;
        n -= hdr + clen;
    }
    return true;
}

/* Tag and length of a DER header (len <= 0xffff); returns the header size. */
static size_t der_head(uint8_t *o, uint8_t tag, size_t len)
{
    o[0] = tag;
    if (len < 0x80) {
        o[1] = (uint8_t)len;
        return 2;
    }
    if (len < 0x100) {
        o[1] = 0x81;
        o[2] = (uint8_t)len;
        return 3;
    }
    o[1] = 0x82;
    o[2] = (uint8_t)(len >> 8);
    o[3] = (uint8_t)len;
    return 4;
}

/* A 32-byte big-endian unsigned integer as a DER INTEGER (minimal, non-negative; <= 35 bytes). */
static size_t der_uint32b(uint8_t *o, const uint8_t v[32])
{
    size_t i = 0, k = 2;
    while (i < 31 && v[i] == 0)
        i++;
    size_t n = 32 - i;
    bool pad = (v[i] & 0x80) != 0;
    o[0] = 0x02;
    o[1] = (uint8_t)(n + pad);
    if (pad)
        o[k++] = 0;
    memcpy(o + k, v + i, n);
    return k + n;
}

/* Raw r || s -> ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }. */
static size_t ecdsa_sig_der(uint8_t out[ECDSA_DER_MAX], const uint8_t sig[64])
{
    size_t n = der_uint32b(out + 2, sig);
    n += der_uint32b(out + 2 + n, sig + 32);
    out[0] = 0x30;
    out[1] = (uint8_t)n; /* <= 70: short form */
    return 2 + n;
}

/* ---- parsing ---- */

static cl_status_t name_field(const X509_NAME *name, int nid, bool required,
                              char out[CL_PKI_MAX_NAME])
{
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    unsigned char *utf8 = NULL;
    const ASN1_STRING *v;
    cl_status_t rc = CL_OK;
    int n;

    out[0] = '\0';
    if (i < 0)
        return required ? CL_FAIL(CL_ERR_BAD_INPUT) : CL_OK;
    if (X509_NAME_get_index_by_NID(name, nid, i) >= 0)
        return CL_FAIL(CL_ERR_BAD_INPUT); /* two CNs (OUs): ambiguous */
    v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    if (v == NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    n = ASN1_STRING_to_UTF8(&utf8, v);
    if (n <= 0 || memchr(utf8, 0, (size_t)n) != NULL)
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
    else if ((size_t)n >= CL_PKI_MAX_NAME)
        rc = CL_FAIL(CL_ERR_LIMIT);
    else {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
    }
    OPENSSL_free(utf8);
    return rc;
}

/* Signature algorithm fields: both ecdsa-with-SHA256, absent parameters, equal. */
static cl_status_t check_sig_alg(const X509 *x)
{
    const ASN1_BIT_STRING *sig = NULL;
    const X509_ALGOR *outer = NULL, *inner = X509_get0_tbs_sigalg(x);
    const ASN1_OBJECT *obj = NULL;
    const void *pval = NULL;
    int ptype = 0;

    X509_get0_signature(&sig, &outer, x);
    if (outer == NULL || inner == NULL || sig == NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    X509_ALGOR_get0(&obj, &ptype, &pval, outer);
    if (OBJ_obj2nid(obj) != NID_ecdsa_with_SHA256)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (ptype != V_ASN1_UNDEF || X509_ALGOR_cmp(outer, inner) != 0)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return CL_OK;
}

/* The subject key: id-ecPublicKey on prime256v1, uncompressed, a point on the curve. */
static cl_status_t check_key(X509 *x, uint8_t pub[CL_PKI_P256_PUB_LEN])
{
    ASN1_OBJECT *alg = NULL;
    const unsigned char *pk = NULL;
    int pklen = 0, ptype = 0;
    X509_ALGOR *pa = NULL;
    const ASN1_OBJECT *aobj = NULL;
    const void *pval = NULL;
    const X509_PUBKEY *xpk = X509_get_X509_PUBKEY(x);

    if (xpk == NULL || X509_PUBKEY_get0_param(&alg, &pk, &pklen, &pa, xpk) != 1 || pa == NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    X509_ALGOR_get0(&aobj, &ptype, &pval, pa);
    if (ptype != V_ASN1_OBJECT || OBJ_obj2nid((const ASN1_OBJECT *)pval) != NID_X9_62_prime256v1)
        return CL_FAIL(CL_ERR_UNSUPPORTED);
    if (pklen != CL_PKI_P256_PUB_LEN || pk[0] != 0x04)
        return CL_FAIL(CL_ERR_UNSUPPORTED); /* compressed or hybrid points are not used here */
    if (X509_get0_pubkey(x) == NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT); /* not on the curve */
    memcpy(pub, pk, CL_PKI_P256_PUB_LEN);
    return CL_OK;
}

/*
 * Strict parse of der[0..len) into *out (caller frees) and *info. On failure
 * *out is NULL and the status says why (see cl_pki_cert_parse).
 */
static cl_status_t load(const uint8_t *der, size_t len, X509 **out, cl_pki_cert_info_t *info)
{
    const unsigned char *p = der;
    unsigned char *re = NULL;
    X509 *x = NULL;
    cl_status_t rc;
    size_t hdr, clen;
    uint32_t flags;
    uint64_t serial;
    long pathlen;
    int n;

    *out = NULL;
    memset(info, 0, sizeof *info);
    if (der == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (len > CL_PKI_MAX_CERT)
        return CL_FAIL(CL_ERR_LIMIT);
    if (!der_tlv(der, len, &hdr, &clen) || hdr + clen != len || der[0] != 0x30 ||
        !der_strict(der, len, 0))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL || p != der + len) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto out;
    }
    if (X509_get_version(x) != X509_VERSION_3) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto out;
    }
    /* DER: OpenSSL's own re-encoding (TBS included, not the cached bytes) must be the input */
    if (i2d_re_X509_tbs(x, NULL) <= 0) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto out;
    }
    n = i2d_X509(x, &re);
    if (n <= 0 || (size_t)n != len || memcmp(re, der, len) != 0) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto out;
    }
    if ((rc = check_sig_alg(x)) != CL_OK || (rc = check_key(x, info->pub)) != CL_OK)
        goto out;

    flags = X509_get_extension_flags(x);
    if ((flags & EXFLAG_INVALID) != 0) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto out;
    }
    if ((flags & EXFLAG_CRITICAL) != 0) {
        rc = CL_FAIL(CL_ERR_UNSUPPORTED); /* an unknown critical extension */
        goto out;
    }
    info->is_ca = (flags & EXFLAG_BCONS) != 0 && (flags & EXFLAG_CA) != 0;
    pathlen = X509_get_pathlen(x);
    info->pathlen = info->is_ca && pathlen >= 0 ? (pathlen > INT_MAX ? INT_MAX : (int)pathlen) : -1;

    if ((rc = name_field(X509_get_subject_name(x), NID_commonName, true, info->cn)) != CL_OK ||
        (rc = name_field(X509_get_subject_name(x), NID_organizationalUnitName, false, info->ou)) !=
            CL_OK)
        goto out;
    info->self_issued = X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;

    if (!asn1_time_unix(X509_get0_notBefore(x), &info->not_before) ||
        !asn1_time_unix(X509_get0_notAfter(x), &info->not_after)) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto out;
    }
    info->serial = ASN1_INTEGER_get_uint64(&serial, X509_get0_serialNumber(x)) == 1 ? serial : 0;
    if (EVP_Digest(der, len, info->sha256, NULL, EVP_sha256(), NULL) != 1) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto out;
    }
    rc = CL_OK;
out:
    OPENSSL_free(re);
    if (rc == CL_OK) {
        *out = x;
    } else {
        X509_free(x);
        memset(info, 0, sizeof *info);
    }
    return rc;
}

static bool valid_at(const cl_pki_cert_info_t *i, int64_t now)
{
    return i->not_before <= now && now <= i->not_after;
}

/*
 * child (already loaded) was issued by issuer: names chain, issuer is a CA
 * allowed to sign certificates (and, with pathlen 0, not CAs), the AKI/SKI and
 * key usage agree (X509_check_issued), the signature verifies, times hold.
 */
static cl_status_t check_issued(X509 *child, const cl_pki_cert_info_t *ci, X509 *issuer,
                                const cl_pki_cert_info_t *ii, int64_t now)
{
    EVP_PKEY *key;
    uint32_t flags = X509_get_extension_flags(issuer);

    if (X509_NAME_cmp(X509_get_issuer_name(child), X509_get_subject_name(issuer)) != 0)
        return CL_FAIL(CL_ERR_AUTH);
    if (!ii->is_ca || (flags & EXFLAG_KUSAGE) == 0 ||
        (X509_get_key_usage(issuer) & KU_KEY_CERT_SIGN) == 0)
        return CL_FAIL(CL_ERR_AUTH);
    if (ci->is_ca && !ci->self_issued && ii->pathlen == 0)
        return CL_FAIL(CL_ERR_AUTH);
    if (X509_check_issued(issuer, child) != X509_V_OK)
        return CL_FAIL(CL_ERR_AUTH);
    key = X509_get0_pubkey(issuer);
    if (key == NULL || X509_verify(child, key) != 1)
        return CL_FAIL(CL_ERR_AUTH);
    if (now > 0 && (!valid_at(ci, now) || !valid_at(ii, now)))
        return CL_FAIL(CL_ERR_STATE);
    return CL_OK;
}

static cl_status_t finish(cl_status_t rc)
{
    if (rc != CL_OK)
        ERR_clear_error();
    return rc;
}

/* ---- building ---- */

/* EVP_PKEY for a 65-byte uncompressed P-256 point (checked to be on the curve). */
static cl_status_t p256_pkey(const uint8_t pub[CL_PKI_P256_PUB_LEN], EVP_PKEY **out)
{
    char group[] = "prime256v1";
    uint8_t pt[CL_PKI_P256_PUB_LEN];
    OSSL_PARAM params[3];
    EVP_PKEY_CTX *ctx;
    cl_status_t rc = CL_OK;

    *out = NULL;
    if (pub[0] != 0x04)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    memcpy(pt, pub, sizeof pt);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt);
    params[2] = OSSL_PARAM_construct_end();
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL)
        return CL_FAIL(CL_ERR_CRYPTO);
    if (EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        EVP_PKEY_free(*out);
        *out = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

/* RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. */
static bool key_id(const uint8_t pub[CL_PKI_P256_PUB_LEN], uint8_t id[20])
{
    return EVP_Digest(pub, CL_PKI_P256_PUB_LEN, id, NULL, EVP_sha1(), NULL) == 1;
}

/* X509 in OpenSSL 3.0 has no setter for the TBS signature algorithm; the field is ours. */
static X509_ALGOR *algor_mut(const X509_ALGOR *a)
{
    union {
        const X509_ALGOR *c;
        X509_ALGOR *m;
    } u;
    u.c = a;
    return u.m;
}

static cl_status_t add_extensions(X509 *x, cl_pki_kind_t kind, const uint8_t ski[20],
                                  const uint8_t aki[20])
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    ASN1_OCTET_STRING *skid = ASN1_OCTET_STRING_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    bool ca = kind != CL_PKI_LEAF, ok;

    ok = bc != NULL && ku != NULL && eku != NULL && skid != NULL && akid != NULL;
    if (ok) {
        bc->ca = ca ? 0xff : 0;
        if (kind == CL_PKI_INTERMEDIATE_CA) {
            bc->pathlen = ASN1_INTEGER_new();
            ok = bc->pathlen != NULL && ASN1_INTEGER_set(bc->pathlen, 0) == 1;
        }
    }
    if (ok && ca) /* keyCertSign (5), cRLSign (6) */
        ok = ASN1_BIT_STRING_set_bit(ku, 5, 1) == 1 && ASN1_BIT_STRING_set_bit(ku, 6, 1) == 1;
    if (ok && kind == CL_PKI_ROOT_CA) /* + digitalSignature: the owner signs EDHOC with it */
        ok = ASN1_BIT_STRING_set_bit(ku, 0, 1) == 1;
    if (ok && !ca) /* digitalSignature (0) */
        ok = ASN1_BIT_STRING_set_bit(ku, 0, 1) == 1;
    if (ok && !ca)
        ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0 &&
             sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) > 0;
    if (ok) {
        akid->keyid = ASN1_OCTET_STRING_new();
        ok = akid->keyid != NULL && ASN1_OCTET_STRING_set(akid->keyid, aki, 20) == 1 &&
             ASN1_OCTET_STRING_set(skid, ski, 20) == 1;
    }
    ok = ok && X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1 &&
         X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) == 1 &&
         (ca || X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) == 1) &&
         X509_add1_ext_i2d(x, NID_subject_key_identifier, skid, 0, X509V3_ADD_DEFAULT) == 1 &&
         X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, X509V3_ADD_DEFAULT) == 1;
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING_free(ku);
    sk_ASN1_OBJECT_free(eku); /* the OIDs are OpenSSL's static objects */
    ASN1_OCTET_STRING_free(skid);
    AUTHORITY_KEYID_free(akid);
    return ok ? CL_OK : CL_FAIL(CL_ERR_CRYPTO);
}

static cl_status_t check_req(const cl_pki_cert_req_t *req)
{
    size_t cn_len, ou_len = 0;

    if (req->cn == NULL || req->pub == NULL || req->serial == 0)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (req->kind != CL_PKI_ROOT_CA && req->kind != CL_PKI_INTERMEDIATE_CA &&
        req->kind != CL_PKI_LEAF)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((req->kind == CL_PKI_ROOT_CA) != (req->issuer == NULL) ||
        (req->issuer != NULL && req->issuer_len == 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (req->not_before < 0 || req->not_after > UNIX_MAX || req->not_before > req->not_after)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    cn_len = strlen(req->cn);
    if (req->ou != NULL)
        ou_len = strlen(req->ou);
    if (cn_len == 0 || (req->ou != NULL && ou_len == 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (cn_len >= CL_PKI_MAX_NAME || ou_len >= CL_PKI_MAX_NAME)
        return CL_FAIL(CL_ERR_LIMIT);
    return CL_OK;
}

/* The TBSCertificate of req as OpenSSL-allocated DER (*tbs, OPENSSL_free). */
static cl_status_t build_tbs(const cl_pki_cert_req_t *req, EVP_PKEY *pkey, X509 *iss,
                             const cl_pki_cert_info_t *ii, unsigned char **tbs, int *tbs_len)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    uint8_t ski[20], aki[20];
    const ASN1_OCTET_STRING *iss_ski;
    cl_status_t rc = CL_FAIL(CL_ERR_CRYPTO);
    bool ok;

    *tbs = NULL;
    if (x == NULL || name == NULL || !key_id(req->pub, ski))
        goto out;
    if (iss == NULL) {
        memcpy(aki, ski, sizeof aki);
    } else if ((iss_ski = X509_get0_subject_key_id(iss)) != NULL &&
               ASN1_STRING_length(iss_ski) == 20) {
        memcpy(aki, ASN1_STRING_get0_data(iss_ski), sizeof aki);
    } else if (!key_id(ii->pub, aki)) {
        goto out;
    }
    ok = X509_set_version(x, X509_VERSION_3) == 1 &&
         ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), req->serial) == 1;
    if (ok && req->ou != NULL)
        ok = X509_NAME_add_entry_by_NID(name, NID_organizationalUnitName, MBSTRING_UTF8,
                                        (const unsigned char *)req->ou, -1, -1, 0) == 1;
    ok = ok && X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                          (const unsigned char *)req->cn, -1, -1, 0) == 1;
    if (!ok) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG); /* e.g. CN or OU is not UTF-8 */
        goto out;
    }
    ok = X509_set_subject_name(x, name) == 1 &&
         X509_set_issuer_name(x, iss != NULL ? X509_get_subject_name(iss) : name) == 1 &&
         asn1_time_set_unix(X509_getm_notBefore(x), req->not_before) &&
         asn1_time_set_unix(X509_getm_notAfter(x), req->not_after) && X509_set_pubkey(x, pkey) == 1;
    if (!ok)
        goto out;
    if ((rc = add_extensions(x, req->kind, ski, aki)) != CL_OK)
        goto out;
    if (X509_ALGOR_set0(algor_mut(X509_get0_tbs_sigalg(x)), OBJ_nid2obj(NID_ecdsa_with_SHA256),
                        V_ASN1_UNDEF, NULL) != 1) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto out;
    }
    *tbs_len = i2d_re_X509_tbs(x, tbs);
    if (*tbs_len <= 0 || *tbs == NULL) {
        OPENSSL_free(*tbs);
        *tbs = NULL;
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto out;
    }
    rc = CL_OK;
out:
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

cl_status_t cl_pki_make_cert(const cl_pki_cert_req_t *req, cl_pki_sign_fn sign, void *sign_arg,
                             uint8_t *out, size_t out_size, size_t *out_len)
{
    X509 *iss = NULL, *back = NULL;
    EVP_PKEY *pkey = NULL;
    cl_pki_cert_info_t ii, bi;
    unsigned char *tbs = NULL;
    int tbs_len = 0;
    uint8_t sig[64], sig_der[ECDSA_DER_MAX], buf[CL_PKI_MAX_CERT];
    size_t sig_len, bits_len, content, total, k;
    cl_status_t rc;

    if (out_len != NULL)
        *out_len = 0;
    if (req == NULL || sign == NULL || out == NULL || out_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((rc = check_req(req)) != CL_OK)
        return rc;
    memset(&ii, 0, sizeof ii);
    if ((rc = p256_pkey(req->pub, &pkey)) != CL_OK)
        goto out;
    if (req->issuer != NULL) {
        if ((rc = load(req->issuer, req->issuer_len, &iss, &ii)) != CL_OK)
            goto out;
        /* the issuer must be able to issue this: a CA with keyCertSign, sub-CAs only without
         * pathlen 0 */
        if (!ii.is_ca || (X509_get_key_usage(iss) & KU_KEY_CERT_SIGN) == 0 ||
            (X509_get_extension_flags(iss) & EXFLAG_KUSAGE) == 0 ||
            (req->kind == CL_PKI_INTERMEDIATE_CA && ii.pathlen == 0)) {
            rc = CL_FAIL(CL_ERR_INVALID_ARG);
            goto out;
        }
    }
    if ((rc = build_tbs(req, pkey, iss, &ii, &tbs, &tbs_len)) != CL_OK)
        goto out;

    rc = sign(sign_arg, tbs, (size_t)tbs_len, sig);
    if (rc != CL_OK) {
        if (rc > CL_OK)
            rc = CL_FAIL(CL_ERR_CRYPTO);
        goto out;
    }
    sig_len = ecdsa_sig_der(sig_der, sig);

    /* Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } */
    bits_len = 1 + sig_len;
    content = (size_t)tbs_len + sizeof k_ecdsa_sha256_algid + 2 + bits_len;
    total = content + (content < 0x80 ? 2 : content < 0x100 ? 3 : 4);
    if (total > CL_PKI_MAX_CERT) {
        rc = CL_FAIL(CL_ERR_LIMIT);
        goto out;
    }
    if (total > out_size) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto out;
    }
    k = der_head(buf, 0x30, content);
    memcpy(buf + k, tbs, (size_t)tbs_len);
    k += (size_t)tbs_len;
    memcpy(buf + k, k_ecdsa_sha256_algid, sizeof k_ecdsa_sha256_algid);
    k += sizeof k_ecdsa_sha256_algid;
    k += der_head(buf + k, 0x03, bits_len);
    buf[k++] = 0x00; /* no unused bits */
    memcpy(buf + k, sig_der, sig_len);
    k += sig_len;

    /* self-check: it parses strictly and is issued by the issuer (itself for a root) */
    if ((rc = load(buf, k, &back, &bi)) != CL_OK) {
        rc = CL_FAIL(CL_ERR_CRYPTO);
        goto out;
    }
    rc = iss != NULL ? check_issued(back, &bi, iss, &ii, 0) : check_issued(back, &bi, back, &bi, 0);
    if (rc != CL_OK)
        goto out; /* CL_ERR_AUTH: sign() used another key than the issuer's */
    memcpy(out, buf, k);
    *out_len = k;
out:
    OPENSSL_free(tbs);
    X509_free(back);
    X509_free(iss);
    EVP_PKEY_free(pkey);
    return finish(rc);
}

cl_status_t cl_pki_cert_parse(const uint8_t *der, size_t len, cl_pki_cert_info_t *info)
{
    X509 *x = NULL;
    cl_status_t rc;

    if (info == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    rc = load(der, len, &x, info);
    X509_free(x);
    return finish(rc);
}

cl_status_t cl_pki_verify_issued(const uint8_t *child, size_t child_len, const uint8_t *issuer,
                                 size_t issuer_len, int64_t now)
{
    X509 *c = NULL, *i = NULL;
    cl_pki_cert_info_t ci, ii;
    cl_status_t rc;

    if ((rc = load(child, child_len, &c, &ci)) == CL_OK &&
        (rc = load(issuer, issuer_len, &i, &ii)) == CL_OK)
        rc = check_issued(c, &ci, i, &ii, now);
    X509_free(c);
    X509_free(i);
    return finish(rc);
}

cl_status_t cl_pki_check_root(const uint8_t *der, size_t len, int64_t now)
{
    X509 *x = NULL;
    cl_pki_cert_info_t info;
    cl_status_t rc;

    if ((rc = load(der, len, &x, &info)) == CL_OK) {
        if (!info.self_issued)
            rc = CL_FAIL(CL_ERR_AUTH);
        else
            rc = check_issued(x, &info, x, &info, now);
    }
    X509_free(x);
    return finish(rc);
}

cl_status_t cl_pki_thumbprint(const uint8_t *der, size_t len, uint8_t out[8])
{
    uint8_t md[32];

    if (der == NULL || out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (len == 0)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (len > CL_PKI_MAX_CERT)
        return CL_FAIL(CL_ERR_LIMIT);
    if (EVP_Digest(der, len, md, NULL, EVP_sha256(), NULL) != 1)
        return finish(CL_FAIL(CL_ERR_CRYPTO));
    memcpy(out, md, 8);
    return CL_OK;
}
