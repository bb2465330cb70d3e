/*
 * fuzz_schema.c - libFuzzer harness for the JSON Schema subset
 * (core/model/schema.c).
 *
 * Input: byte 0 splits the rest into a schema and a value: a value below 255
 * is the schema's length (the value is what follows, cut to the input), 255
 * means "the schema is the first well-formed CBOR item, the value the rest".
 * Invariants checked with abort():
 * - cl_schema_check returns CL_OK, CL_ERR_BAD_INPUT or CL_ERR_LIMIT; a
 *   failure always comes with a NUL-terminated, non-empty reason;
 * - a schema accepted by cl_schema_check is one well-formed CBOR map of at
 *   most CL_SCHEMA_MAX bytes;
 * - cl_schema_validate (run on checked and unchecked schemas alike: the
 *   core only passes checked ones, but it must never misbehave) returns one
 *   of the same three codes, the same verdict and reason twice (it keeps no
 *   state), and a reason on every failure.
 * Links cloister_model (and through it the engine, cloister_lib).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static int code_ok(cl_status_t st)
{
    return st == CL_OK || st == CL_ERR_BAD_INPUT || st == CL_ERR_LIMIT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[160], why2[160];
    const uint8_t *schema, *value;
    size_t schema_len, value_len;

    if (size < 1)
        return 0;
    schema = data + 1;
    if (data[0] < 255) {
        schema_len = data[0] < size - 1 ? data[0] : size - 1;
    } else {
        cl_cbor_dec_t d;
        const uint8_t *raw;
        cl_cbor_dec_init(&d, data + 1, size - 1);
        if (cl_cbor_dec_raw(&d, &raw, &schema_len) != CL_OK)
            schema_len = size - 1;
    }
    value = schema + schema_len;
    value_len = size - 1 - schema_len;

    memset(why, 0x5a, sizeof why);
    cl_status_t checked = cl_schema_check(schema, schema_len, why, sizeof why);
    CHECK(code_ok(checked));
    CHECK(memchr(why, 0, sizeof why) != NULL);
    if (checked != CL_OK) {
        CHECK(why[0] != 0);
    } else {
        size_t items = 0;
        CHECK(schema_len > 0 && schema_len <= CL_SCHEMA_MAX);
        CHECK(cl_cbor_validate_seq(schema, schema_len, &items) == CL_OK && items == 1);
        CHECK((schema[0] & 0xe0) == 0xa0);
    }

    memset(why, 0x5a, sizeof why);
    memset(why2, 0x3c, sizeof why2);
    cl_status_t v1 = cl_schema_validate(schema, schema_len, value, value_len, why, sizeof why);
    cl_status_t v2 = cl_schema_validate(schema, schema_len, value, value_len, why2, sizeof why2);
    CHECK(code_ok(v1) && v1 == v2);
    CHECK(memchr(why, 0, sizeof why) != NULL && strcmp(why, why2) == 0);
    CHECK(v1 == CL_OK || why[0] != 0);
    /* without a reason buffer too */
    CHECK(cl_schema_validate(schema, schema_len, value, value_len, NULL, 0) == v1);
    return 0;
}
