/*
 * fuzz_x509.c - libFuzzer harness for the X.509 parser and checks (core/pki/pki.c).
 *
 * The input is one candidate DER certificate. Invariants checked with abort():
 * - cl_pki_cert_parse() either succeeds with a sane info struct (CN non-empty
 *   and NUL-terminated, OU NUL-terminated, uncompressed point, pathlen only
 *   on CAs, sha256 the digest thumbprint agrees with) or fails with one of
 *   the documented codes, leaving the struct zeroed;
 * - cl_pki_verify_issued(data, data) and cl_pki_check_root(data) give the same
 *   verdict (a root is a certificate issued by itself), both fail whenever
 *   parsing fails (with the same code), and success implies a self-issued CA;
 * - parsing is deterministic (a second parse gives the same struct).
 * Links cloister_pki (and through it cloister_lib and libcrypto).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pki.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cl_pki_cert_info_t info, again;
    uint8_t tp[8];
    cl_status_t parsed, issued, root, thumb;

    /* a non-NULL pointer even for the empty input */
    static const uint8_t empty[1];
    if (size == 0)
        data = empty;

    memset(&info, 0xa5, sizeof info);
    parsed = cl_pki_cert_parse(data, size, &info);
    thumb = cl_pki_thumbprint(data, size, tp);
    if (parsed == CL_OK) {
        CHECK(size > 0 && size <= CL_PKI_MAX_CERT);
        CHECK(memchr(info.cn, 0, sizeof info.cn) != NULL && info.cn[0] != '\0');
        CHECK(memchr(info.ou, 0, sizeof info.ou) != NULL);
        CHECK(info.pub[0] == 0x04);
        CHECK(info.pathlen >= -1 && (info.is_ca || info.pathlen == -1));
        CHECK(thumb == CL_OK && memcmp(tp, info.sha256, 8) == 0);
        memset(&again, 0, sizeof again);
        CHECK(cl_pki_cert_parse(data, size, &again) == CL_OK);
        CHECK(memcmp(&info, &again, sizeof info) == 0);
    } else {
        CHECK(parsed == CL_ERR_BAD_INPUT || parsed == CL_ERR_UNSUPPORTED || parsed == CL_ERR_LIMIT);
        CHECK(all_zero(&info, sizeof info));
    }
    CHECK(thumb == (size == 0 ? CL_ERR_BAD_INPUT : size > CL_PKI_MAX_CERT ? CL_ERR_LIMIT : CL_OK));

    issued = cl_pki_verify_issued(data, size, data, size, 0);
    root = cl_pki_check_root(data, size, 0);
    CHECK(issued == root);
    if (parsed != CL_OK) {
        CHECK(root == parsed);
    } else {
        CHECK(root == CL_OK || root == CL_ERR_AUTH);
        if (root == CL_OK) {
            CHECK(info.self_issued && info.is_ca);
            /* a time check can only add CL_ERR_STATE */
            if (info.not_before <= info.not_after)
                CHECK(cl_pki_check_root(data, size, info.not_before) == CL_OK);
            if (info.not_before > 1)
                CHECK(cl_pki_check_root(data, size, info.not_before - 1) == CL_ERR_STATE);
        }
    }
    return 0;
}
