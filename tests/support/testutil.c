/*
 * testutil.c - helpers shared by the tests (see testutil.h).
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto_openssl.h"

#ifndef CL_VECTOR_DIR
#error "CL_VECTOR_DIR must be defined by the build"
#endif

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t tu_hex(const char *hex, uint8_t *out, size_t out_size)
{
    size_t n = strlen(hex);
    assert_true(n % 2 == 0);
    assert_true(n / 2 <= out_size);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
        assert_true(hi >= 0 && lo >= 0);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}

/*
 * Heap buffers handed out to tests live until exit: they are chained and
 * freed by an atexit handler, which runs before LeakSanitizer's check.
 */
struct tu_alloc {
    struct tu_alloc *next;
    uint8_t data[];
};
static struct tu_alloc *allocs;

static void free_all(void)
{
    while (allocs != NULL) {
        struct tu_alloc *next = allocs->next;
        free(allocs);
        allocs = next;
    }
}

uint8_t *tu_hex_alloc(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    struct tu_alloc *a = malloc(sizeof *a + n + 1);
    assert_non_null(a);
    if (allocs == NULL)
        atexit(free_all);
    a->next = allocs;
    allocs = a;
    *len = tu_hex(hex, a->data, n + 1);
    return a->data;
}

cJSON *tu_load_vectors(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", CL_VECTOR_DIR, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open vector file %s", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)sz + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
    buf[sz] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (j == NULL)
        fail_msg("vector file %s is not valid JSON", path);
    return j;
}

const char *tu_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v))
        fail_msg("vector member '%s' missing or not a string", key);
    return v->valuestring;
}

const char *tu_str_opt(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

uint8_t *tu_hexm(const cJSON *obj, const char *key, size_t *len)
{
    const char *s = tu_str_opt(obj, key);
    if (s == NULL) {
        *len = 0;
        return NULL;
    }
    return tu_hex_alloc(s, len);
}

static void print_hex(const char *label, const uint8_t *p, size_t n)
{
    fprintf(stderr, "  %s (%zu): ", label, n);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%02x", p[i]);
    fprintf(stderr, "\n");
}

void tu_assert_bytes_(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                      const char *file, int line)
{
    if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
        return;
    fprintf(stderr, "%s:%d: byte strings differ\n", file, line);
    print_hex("got     ", a, alen);
    print_hex("expected", b, blen);
    fail();
}

void tu_crypto(cl_crypto_t *c, unsigned flags)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(cl_crypto_openssl_new(c, flags), CL_OK);
}
