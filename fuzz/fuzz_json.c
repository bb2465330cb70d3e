/*
 * fuzz_json.c - libFuzzer harness for the JSON <-> CBOR converter (lib/json.c).
 *
 * The input is read twice: as JSON text and as CBOR. Invariants checked
 * with abort():
 * - JSON -> CBOR: the size query and the writing call agree (status, size,
 *   error offset); a refusal is CL_ERR_BAD_INPUT or CL_ERR_LIMIT with the
 *   offset inside the text (or at its end); a buffer one byte short is
 *   CL_ERR_BUFFER_TOO_SMALL and stays untouched;
 * - accepted text gives one CBOR item that CBOR -> JSON accepts, and that
 *   JSON converts back to the very same CBOR bytes (the round trip: floats
 *   print shortest and parse correctly rounded, strings re-escape, integers
 *   and containers are exact); converting again gives the same JSON text;
 * - a text that is a single number converts to what strtod makes of it
 *   (libc is the reference here; lib/ may not call it), integers exactly;
 * - CBOR -> JSON of the raw input: refused with BAD_INPUT, UNSUPPORTED or
 *   LIMIT and nothing written, or a NUL-terminated text of the announced
 *   length that JSON -> CBOR accepts and that round-trips from there on.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define SENTINEL 0xa5

/* CBOR -> JSON into a fresh exact-size buffer (the caller frees); NULL when refused. */
static char *to_json(const uint8_t *cbor, size_t len, size_t *jl, cl_status_t *st)
{
    size_t need = 0, got = 0;
    char *out;

    *st = cl_cbor_to_json(cbor, len, NULL, 0, &need);
    if (*st != CL_OK) {
        char probe[4] = {'x', 'x', 'x', 'x'};
        /* a refusal does not depend on the buffer and writes nothing */
        CHECK(cl_cbor_to_json(cbor, len, probe, sizeof probe, &got) == *st);
        CHECK(memcmp(probe, "xxxx", 4) == 0);
        CHECK(*st == CL_ERR_BAD_INPUT || *st == CL_ERR_UNSUPPORTED || *st == CL_ERR_LIMIT);
        return NULL;
    }
    out = malloc(need + 1);
    CHECK(out != NULL);
    /* one byte short (no room for the NUL): refused, untouched */
    memset(out, SENTINEL, need + 1);
    CHECK(cl_cbor_to_json(cbor, len, out, need, &got) == CL_ERR_BUFFER_TOO_SMALL);
    CHECK(got == need);
    for (size_t i = 0; i <= need; i++)
        CHECK((uint8_t)out[i] == SENTINEL);
    CHECK(cl_cbor_to_json(cbor, len, out, need + 1, &got) == CL_OK);
    CHECK(got == need && out[need] == '\0' && strlen(out) == need);
    *jl = need;
    return out;
}

/* JSON -> CBOR into a fresh exact-size buffer (the caller frees); NULL when refused. */
static uint8_t *to_cbor(const char *json, size_t len, size_t *cl, cl_status_t *st, size_t *off)
{
    size_t need = 0, got = 0, off2 = 0;
    uint8_t *out;

    *off = 0;
    *st = cl_json_to_cbor(json, len, NULL, 0, &need, off);
    if (*st != CL_OK) {
        uint8_t probe[4] = {SENTINEL, SENTINEL, SENTINEL, SENTINEL};
        CHECK(*st == CL_ERR_BAD_INPUT || *st == CL_ERR_LIMIT);
        CHECK(*off <= len);
        CHECK(cl_json_to_cbor(json, len, probe, sizeof probe, &got, &off2) == *st);
        CHECK(off2 == *off);
        for (size_t i = 0; i < sizeof probe; i++)
            CHECK(probe[i] == SENTINEL);
        return NULL;
    }
    CHECK(need > 0);
    out = malloc(need);
    CHECK(out != NULL);
    memset(out, SENTINEL, need);
    CHECK(cl_json_to_cbor(json, len, out, need - 1, &got, &off2) == CL_ERR_BUFFER_TOO_SMALL);
    CHECK(got == need);
    for (size_t i = 0; i < need; i++)
        CHECK(out[i] == SENTINEL);
    CHECK(cl_json_to_cbor(json, len, out, need, &got, &off2) == CL_OK);
    CHECK(got == need);
    *cl = need;
    return out;
}

/* The text is one JSON number: compare with strtod. */
static void check_number(const char *json, size_t len, const uint8_t *cbor, size_t cl)
{
    char *text;
    cl_cbor_dec_t d;
    int64_t i;
    double v, ref;
    size_t k = 0;

    while (k < len && (json[k] == ' ' || json[k] == '\t' || json[k] == '\n' || json[k] == '\r'))
        k++;
    if (k == len || (json[k] != '-' && (json[k] < '0' || json[k] > '9')))
        return;
    text = malloc(len - k + 1);
    CHECK(text != NULL);
    memcpy(text, json + k, len - k);
    text[len - k] = '\0';
    ref = strtod(text, NULL);
    cl_cbor_dec_init(&d, cbor, cl);
    if (cl_cbor_dec_int(&d, &i) == CL_OK) {
        /* only integer literals in the int64 range become integers */
        CHECK(strpbrk(text, ".eE") == NULL);
        CHECK((double)i == ref);
    } else {
        CHECK(cl_cbor_dec_double(&d, &v) == CL_OK);
        CHECK(memcmp(&v, &ref, sizeof v) == 0);
    }
    CHECK(cl_cbor_dec_at_end(&d));
    free(text);
}

/*
 * cbor (our own output) -> JSON -> CBOR must give cbor again, and that JSON
 * is a fixed point.
 */
static void check_round_trip(const uint8_t *cbor, size_t cl)
{
    cl_status_t st;
    size_t jl = 0, jl2 = 0, cl2 = 0, off = 0;
    char *json = to_json(cbor, cl, &jl, &st), *json2;
    uint8_t *again;

    CHECK(json != NULL); /* everything JSON -> CBOR makes has a JSON form */
    again = to_cbor(json, jl, &cl2, &st, &off);
    CHECK(again != NULL);
    CHECK(cl2 == cl && memcmp(again, cbor, cl) == 0);
    json2 = to_json(again, cl2, &jl2, &st);
    CHECK(json2 != NULL && jl2 == jl && memcmp(json2, json, jl) == 0);
    free(json2);
    free(again);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    cl_status_t st;
    size_t cl = 0, jl = 0, off = 0;
    uint8_t *cbor;
    char *json;

    /* the input as JSON */
    cbor = to_cbor(text, size, &cl, &st, &off);
    if (cbor != NULL) {
        check_number(text, size, cbor, cl);
        check_round_trip(cbor, cl);
        free(cbor);
    }

    /* the input as CBOR */
    json = to_json(data, size, &jl, &st);
    if (json != NULL) {
        /* what we print we read: big integers may turn into floats, then it is stable */
        cbor = to_cbor(json, jl, &cl, &st, &off);
        CHECK(cbor != NULL);
        check_round_trip(cbor, cl);
        free(cbor);
        free(json);
    }
    return 0;
}
