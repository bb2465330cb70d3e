/*
 * fuzz_coap.c - libFuzzer harness for the CoAP codec (lib/coap.c).
 *
 * The parser must never crash and must only fail with BAD_INPUT or LIMIT.
 * When it accepts a datagram, the wire format has a single encoding for what
 * was parsed, so every writer must reproduce the input byte for byte: the
 * serializer (counting mode, exact buffer, and a buffer one byte short that
 * must stay untouched) and the incremental builder fed from the parsed
 * struct. The option-value helpers (uint, Block, Uri-Path join/split) are
 * run on every accepted message and must round-trip where the value is in
 * canonical form. Any mismatch abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/coap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define CANARY 0xA5

static void check_option_helpers(const cl_coap_option_t *o)
{
    uint32_t v;
    uint8_t enc[4];
    bool minimal = o->len == 0 || o->value[0] != 0;

    cl_status_t rc = cl_coap_opt_uint(o, &v);
    CHECK(rc == CL_OK || rc == CL_ERR_BAD_INPUT);
    CHECK((rc == CL_OK) == (o->len <= 4));
    if (rc == CL_OK && minimal) {
        size_t n = cl_coap_uint_encode(enc, v);
        CHECK(n == o->len && (n == 0 || memcmp(enc, o->value, n) == 0));
    }

    cl_coap_block_t blk;
    rc = cl_coap_block_decode(o, &blk);
    CHECK(rc == CL_OK || rc == CL_ERR_BAD_INPUT);
    if (rc == CL_OK) {
        size_t n = 99;
        CHECK(blk.num < (1u << 20) && blk.szx <= 6);
        CHECK(cl_coap_block_encode(&blk, enc, &n) == CL_OK);
        if (minimal)
            CHECK(n == o->len && (n == 0 || memcmp(enc, o->value, n) == 0));
    }
}

static void check_uri_path(const cl_coap_msg_t *m, size_t size)
{
    char *path = malloc(size + 2);
    CHECK(path != NULL);
    cl_status_t rc = cl_coap_uri_path(m, path, size + 2);
    CHECK(rc == CL_OK || rc == CL_ERR_BAD_INPUT);
    if (rc == CL_OK) {
        /* Splitting the joined path gives the options back, except that a
         * lone empty segment and no segment both join to "/". */
        cl_coap_msg_t s;
        memset(&s, 0, sizeof s);
        CHECK(cl_coap_msg_set_uri_path(&s, path) == CL_OK);
        size_t pos = 0, k = 0, count = 0;
        const cl_coap_option_t *o, *first = cl_coap_msg_get(m, CL_COAP_OPT_URI_PATH);
        for (; cl_coap_msg_find(m, CL_COAP_OPT_URI_PATH, &pos) != NULL; pos++)
            count++;
        if (count == 1 && first->len == 0)
            count = 0;
        pos = 0;
        for (; k < count && (o = cl_coap_msg_find(m, CL_COAP_OPT_URI_PATH, &pos)) != NULL; pos++) {
            CHECK(k < s.n_options && s.options[k].len == o->len);
            CHECK(o->len == 0 || memcmp(s.options[k].value, o->value, o->len) == 0);
            k++;
        }
        CHECK(k == count);
        CHECK(k == s.n_options);
    }
    free(path);
}

static cl_status_t build_from(const cl_coap_msg_t *m, uint8_t *out, size_t cap, size_t *n)
{
    cl_coap_builder_t b;
    cl_coap_build_init(&b, out, cap, m->type, m->code, m->mid, m->token, m->tkl);
    for (size_t i = 0; i < m->n_options; i++)
        (void)cl_coap_build_option(&b, m->options[i].number, m->options[i].value,
                                   m->options[i].len);
    (void)cl_coap_build_payload(&b, m->payload, m->payload_len);
    return cl_coap_build_finish(&b, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cl_coap_msg_t m;
    uint8_t *out = NULL;
    size_t n = 0;

    cl_status_t rc = cl_coap_parse(&m, data, size);
    if (rc != CL_OK) {
        CHECK(rc == CL_ERR_BAD_INPUT || rc == CL_ERR_LIMIT);
        return 0;
    }
    CHECK(size >= 4 && m.tkl <= 8 && m.n_options <= CL_COAP_MAX_OPTIONS);
    CHECK((m.payload == NULL) == (m.payload_len == 0));

    /* Serializer: counting mode, exact buffer, one byte short. */
    CHECK(cl_coap_serialize(&m, NULL, 0, &n) == CL_OK && n == size);
    out = malloc(size);
    CHECK(out != NULL);
    CHECK(cl_coap_serialize(&m, out, size, &n) == CL_OK && n == size);
    CHECK(memcmp(out, data, size) == 0);
    memset(out, CANARY, size);
    CHECK(cl_coap_serialize(&m, out, size - 1, &n) == CL_ERR_BUFFER_TOO_SMALL && n == 0);
    for (size_t i = 0; i < size; i++)
        CHECK(out[i] == CANARY);

    /* Builder fed from the parsed struct, with an exact and a short buffer. */
    memset(out, CANARY, size);
    CHECK(build_from(&m, out, size, &n) == CL_OK && n == size && memcmp(out, data, size) == 0);
    CHECK(build_from(&m, out, size - 1, &n) == CL_ERR_BUFFER_TOO_SMALL && n == 0);

    /* Sorting an already sorted message changes nothing (stability). */
    cl_coap_msg_t sorted = m;
    cl_coap_sort_options(&sorted);
    for (size_t i = 0; i < m.n_options; i++)
        CHECK(sorted.options[i].number == m.options[i].number &&
              sorted.options[i].len == m.options[i].len &&
              sorted.options[i].value == m.options[i].value);

    for (size_t i = 0; i < m.n_options; i++)
        check_option_helpers(&m.options[i]);
    check_uri_path(&m, size);

    char code[5];
    cl_coap_code_str(m.code, code);
    CHECK(code[4] == '\0');

    free(out);
    return 0;
}
