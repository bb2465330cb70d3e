/*
 * test_schema.c - the JSON Schema subset of core/model/schema.h.
 *
 * cl_schema_check: a schema with every keyword is accepted; each keyword
 * with a value of the wrong shape, unknown keywords (also deep inside),
 * repeated keywords, depth and size limits are refused with a reason that
 * names the keyword's path. cl_schema_validate: every keyword on a value
 * that satisfies it and on one that does not, with the reason and the path
 * of the offending property; numbers compare as numbers (1 == 1.0, ints
 * against floats exactly), lengths count code points, keywords apply only
 * to their kind, maps with repeated or non-text keys are not objects.
 * Schemas and values are written as JSON (cl_json_to_cbor) except where the
 * exact CBOR matters (floats, duplicate keys), which is given in hex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "cloister/cbor.h"
#include "cloister/json.h"
#include "schema.h"

/* JSON -> CBOR into a heap buffer (the caller frees). */
static uint8_t *j2c(const char *json, size_t *len)
{
    size_t need = 0, off = 0;
    cl_status_t st = cl_json_to_cbor(json, strlen(json), NULL, 0, &need, &off);
    if (st != CL_OK && st != CL_ERR_BUFFER_TOO_SMALL)
        fprintf(stderr, "bad test JSON at %zu: %s\n", off, json);
    assert_true(st == CL_OK || st == CL_ERR_BUFFER_TOO_SMALL);
    uint8_t *buf = malloc(need);
    assert_non_null(buf);
    assert_int_equal(cl_json_to_cbor(json, strlen(json), buf, need, len, &off), CL_OK);
    return buf;
}

static cl_status_t check_json(const char *schema, char *why, size_t why_size)
{
    size_t len;
    uint8_t *s = j2c(schema, &len);
    cl_status_t st = cl_schema_check(s, len, why, why_size);
    free(s);
    return st;
}

/* Checks the schema, then validates the value (both JSON). */
static cl_status_t validate_json(const char *schema, const char *value, char *why, size_t why_size)
{
    size_t sl, vl;
    uint8_t *s = j2c(schema, &sl);
    uint8_t *v = j2c(value, &vl);
    assert_int_equal(cl_schema_check(s, sl, why, why_size), CL_OK);
    cl_status_t st = cl_schema_validate(s, sl, v, vl, why, why_size);
    free(s);
    free(v);
    return st;
}

static cl_status_t validate_hex(const char *schema_json, const char *value_hex, char *why,
                                size_t why_size)
{
    size_t sl;
    uint8_t *s = j2c(schema_json, &sl);
    uint8_t v[256];
    size_t vl = tu_hex(value_hex, v, sizeof v);
    assert_int_equal(cl_schema_check(s, sl, why, why_size), CL_OK);
    cl_status_t st = cl_schema_validate(s, sl, v, vl, why, why_size);
    free(s);
    return st;
}

/* ------------------------------------------------------------------ */
/* cl_schema_check                                                     */
/* ------------------------------------------------------------------ */

static void test_check_accepts_every_keyword(void **state)
{
    (void)state;
    char why[160];
    static const char *const ok[] = {
        "{}",
        "{\"type\": \"object\", \"title\": \"t\", \"description\": \"d\", \"$comment\": \"c\","
        " \"default\": {\"a\": [1, 2.5, null]},"
        " \"properties\": {"
        "   \"s\": {\"type\": \"string\", \"minLength\": 1, \"maxLength\": 8,"
        "           \"enum\": [\"a\", \"bb\"]},"
        "   \"n\": {\"type\": \"number\", \"minimum\": -1.5, \"maximum\": 30,"
        "           \"exclusiveMinimum\": -2, \"exclusiveMaximum\": 31.5},"
        "   \"i\": {\"type\": \"integer\", \"enum\": [1, 2.0, true, null, \"x\"]},"
        "   \"b\": {\"type\": \"boolean\"}, \"z\": {\"type\": \"null\"},"
        "   \"a\": {\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"minItems\": 0,"
        "           \"maxItems\": 3.0}},"
        " \"required\": [\"s\", \"n\"], \"additionalProperties\": false}",
        "{\"type\": [\"string\", \"null\"]}",
        "{\"additionalProperties\": true}",
        "{\"properties\": {}}",
        "{\"required\": []}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        why[0] = 0;
        if (check_json(ok[i], why, sizeof why) != CL_OK)
            fail_msg("refused schema %zu: %s", i, why);
    }
}

struct refusal {
    const char *schema;
    cl_status_t st;
    const char *why; /* the exact reason */
};

static void test_check_refusals(void **state)
{
    (void)state;
    static const struct refusal table[] = {
        {"{\"pattern\": \"^a\"}", CL_ERR_BAD_INPUT, "unsupported keyword \"pattern\""},
        {"{\"properties\": {\"temp\": {\"type\": \"number\", \"pattern\": \"x\"}}}",
         CL_ERR_BAD_INPUT, "properties.temp: unsupported keyword \"pattern\""},
        {"{\"properties\": {\"a\": {\"items\": {\"properties\": {\"b\": {\"oneOf\": []}}}}}}",
         CL_ERR_BAD_INPUT, "properties.a.items.properties.b: unsupported keyword \"oneOf\""},
        {"{\"type\": \"float\"}", CL_ERR_BAD_INPUT,
         "type: one of object, string, number, integer, boolean, array, null (or an array of "
         "them)"},
        {"{\"type\": []}", CL_ERR_BAD_INPUT,
         "type: one of object, string, number, integer, boolean, array, null (or an array of "
         "them)"},
        {"{\"type\": [\"string\", \"string\"]}", CL_ERR_BAD_INPUT, "type: \"string\" listed twice"},
        {"{\"type\": 3}", CL_ERR_BAD_INPUT,
         "type: one of object, string, number, integer, boolean, array, null (or an array of "
         "them)"},
        {"{\"properties\": [1]}", CL_ERR_BAD_INPUT, "properties: an object of schemas"},
        {"{\"properties\": {\"a\": 1}}", CL_ERR_BAD_INPUT,
         "properties.a: a schema must be an object"},
        {"{\"properties\": {\"\": {}}}", CL_ERR_BAD_INPUT,
         "properties: names must be non-empty texts"},
        {"{\"required\": \"a\"}", CL_ERR_BAD_INPUT, "required: an array of property names"},
        {"{\"required\": [1]}", CL_ERR_BAD_INPUT, "required: an array of property names"},
        {"{\"required\": [\"a\", \"a\"]}", CL_ERR_BAD_INPUT, "required: \"a\" listed twice"},
        {"{\"additionalProperties\": {\"type\": \"string\"}}", CL_ERR_BAD_INPUT,
         "additionalProperties: true or false (schemas are not supported)"},
        {"{\"enum\": []}", CL_ERR_BAD_INPUT, "enum: a non-empty array of values"},
        {"{\"enum\": \"a\"}", CL_ERR_BAD_INPUT, "enum: a non-empty array of values"},
        {"{\"enum\": [{\"a\": 1}]}", CL_ERR_BAD_INPUT,
         "enum: values must be numbers, texts, booleans or null"},
        {"{\"enum\": [[1]]}", CL_ERR_BAD_INPUT,
         "enum: values must be numbers, texts, booleans or null"},
        {"{\"minimum\": \"1\"}", CL_ERR_BAD_INPUT, "minimum: a number"},
        {"{\"maximum\": null}", CL_ERR_BAD_INPUT, "maximum: a number"},
        {"{\"exclusiveMinimum\": true}", CL_ERR_BAD_INPUT, "exclusiveMinimum: a number"},
        {"{\"exclusiveMaximum\": [1]}", CL_ERR_BAD_INPUT, "exclusiveMaximum: a number"},
        {"{\"minLength\": -1}", CL_ERR_BAD_INPUT, "minLength: a non-negative integer"},
        {"{\"maxLength\": 1.5}", CL_ERR_BAD_INPUT, "maxLength: a non-negative integer"},
        {"{\"minItems\": \"2\"}", CL_ERR_BAD_INPUT, "minItems: a non-negative integer"},
        {"{\"maxItems\": -0.5}", CL_ERR_BAD_INPUT, "maxItems: a non-negative integer"},
        {"{\"items\": [{}]}", CL_ERR_BAD_INPUT,
         "items: a schema (arrays of schemas are not supported)"},
        {"{\"items\": {\"type\": \"nope\"}}", CL_ERR_BAD_INPUT,
         "items: type: one of object, string, number, integer, boolean, array, null (or an "
         "array of them)"},
        {"{\"description\": 1}", CL_ERR_BAD_INPUT, "description: a text"},
        {"{\"title\": null}", CL_ERR_BAD_INPUT, "title: a text"},
        {"{\"$comment\": []}", CL_ERR_BAD_INPUT, "$comment: a text"},
        {"[]", CL_ERR_BAD_INPUT, "a schema must be an object"},
        {"\"object\"", CL_ERR_BAD_INPUT, "a schema must be an object"},
        {"{\"$schema\": \"x\"}", CL_ERR_BAD_INPUT, "unsupported keyword \"$schema\""},
        {"{\"exclusiveMaximum\": 3, \"const\": 3}", CL_ERR_BAD_INPUT,
         "unsupported keyword \"const\""},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char why[160] = "";
        cl_status_t st = check_json(table[i].schema, why, sizeof why);
        if (st != table[i].st || strcmp(why, table[i].why) != 0)
            fail_msg("schema %zu %s: got %d \"%s\", want %d \"%s\"", i, table[i].schema, st, why,
                     table[i].st, table[i].why);
    }
}

static void test_check_cbor_refusals(void **state)
{
    (void)state;
    char why[160];
    uint8_t b[64];
    size_t n;
    /* a keyword given twice: {"type": "string", "type": "null"} */
    n = tu_hex("a264747970656673747269"
               "6e67"
               "6474797065646e756c6c",
               b, sizeof b);
    assert_int_equal(cl_schema_check(b, n, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_string_equal(why, "keyword \"type\" given twice");
    /* a property defined twice: {"properties": {"a": {}, "a": {}}} */
    n = tu_hex("a16a70726f70657274696573a26161a06161a0", b, sizeof b);
    assert_int_equal(cl_schema_check(b, n, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_string_equal(why, "properties: \"a\" defined twice");
    /* an int key: {1: 2} */
    n = tu_hex("a10102", b, sizeof b);
    assert_int_equal(cl_schema_check(b, n, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_string_equal(why, "keywords must be texts");
    /* two items, truncation, nothing */
    n = tu_hex("a0a0", b, sizeof b);
    assert_int_equal(cl_schema_check(b, n, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_string_equal(why, "a schema must be one well-formed CBOR map");
    n = tu_hex("a16474797065", b, sizeof b);
    assert_int_equal(cl_schema_check(b, n, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_schema_check(b, 0, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_int_equal(cl_schema_check(NULL, 0, NULL, 0), CL_ERR_BAD_INPUT);
    /* minimum NaN (f97e00) and Infinity (f97c00) */
    n = tu_hex("a1676d696e696d756df97e00", b, sizeof b);
    assert_int_equal(cl_schema_check(b, n, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_string_equal(why, "minimum: a number");
    n = tu_hex("a1676d696e696d756df97c00", b, sizeof b);
    assert_int_equal(cl_schema_check(b, n, why, sizeof why), CL_ERR_BAD_INPUT);
    /* invalid UTF-8 in a description */
    n = tu_hex("a16b6465736372697074696f6e62c328", b, sizeof b);
    assert_int_equal(cl_schema_check(b, n, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_string_equal(why, "description: a text");
    /* a reason never overflows a small buffer */
    char small[8];
    n = tu_hex("a16474797065657a7a7a7a7a", b, sizeof b);
    assert_int_equal(cl_schema_check(b, n, small, sizeof small), CL_ERR_BAD_INPUT);
    assert_int_equal(strlen(small), sizeof small - 1);
}

/* {"items": {"items": ... {}}} nested `levels` schemas deep. */
static char *nested_items(int levels)
{
    size_t cap = (size_t)levels * 16 + 8;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = 0;
    for (int i = 1; i < levels; i++)
        strcat(s, "{\"items\": ");
    strcat(s, "{}");
    for (int i = 1; i < levels; i++)
        strcat(s, "}");
    return s;
}

/* {"properties": {"p": ... {}}} nested `levels` schemas deep. */
static char *nested_props(int levels)
{
    size_t cap = (size_t)levels * 24 + 8;
    char *s = malloc(cap);
    assert_non_null(s);
    s[0] = 0;
    for (int i = 1; i < levels; i++)
        strcat(s, "{\"properties\": {\"p\": ");
    strcat(s, "{}");
    for (int i = 1; i < levels; i++)
        strcat(s, "}}");
    return s;
}

static void test_check_limits(void **state)
{
    (void)state;
    char why[160] = "";
    char *s = nested_items(CL_SCHEMA_MAX_DEPTH);
    assert_int_equal(check_json(s, why, sizeof why), CL_OK);
    free(s);
    s = nested_items(CL_SCHEMA_MAX_DEPTH + 1);
    assert_int_equal(check_json(s, why, sizeof why), CL_ERR_LIMIT);
    assert_string_equal(why, "items.items.items.items.items.items.items.items: schemas nested "
                             "deeper than 8 levels");
    free(s);
    /* properties count as levels too: root, a, b, ... */
    s = nested_props(CL_SCHEMA_MAX_DEPTH);
    assert_int_equal(check_json(s, why, sizeof why), CL_OK);
    free(s);
    s = nested_props(CL_SCHEMA_MAX_DEPTH + 1);
    assert_int_equal(check_json(s, why, sizeof why), CL_ERR_LIMIT);
    assert_string_equal(why, "properties.p.properties.p.properties.p.properties.p.properties.p."
                             "properties.p.properties.p.properties.p: schemas nested deeper than "
                             "8 levels");
    free(s);
    /* size: a description that makes the schema one byte too large */
    size_t base = strlen("{\"description\": \"\"}");
    size_t fill = CL_SCHEMA_MAX + 64 - base;
    char *big = malloc(base + fill + 1);
    assert_non_null(big);
    memcpy(big, "{\"description\": \"", 17);
    memset(big + 17, 'x', fill);
    memcpy(big + 17 + fill, "\"}", 3);
    assert_int_equal(check_json(big, why, sizeof why), CL_ERR_LIMIT);
    assert_string_equal(why, "schema larger than 4096 bytes");
    free(big);
}

/* ------------------------------------------------------------------ */
/* cl_schema_validate                                                  */
/* ------------------------------------------------------------------ */

struct vcase {
    const char *schema;
    const char *value;
    const char *why; /* NULL: valid */
};

static void run_cases(const struct vcase *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char why[160] = "";
        cl_status_t st = validate_json(t[i].schema, t[i].value, why, sizeof why);
        if (t[i].why == NULL && st != CL_OK)
            fail_msg("case %zu: %s refused %s: %s", i, t[i].schema, t[i].value, why);
        if (t[i].why != NULL && (st != CL_ERR_BAD_INPUT || strcmp(why, t[i].why) != 0))
            fail_msg("case %zu: %s on %s: got %d \"%s\", want \"%s\"", i, t[i].schema, t[i].value,
                     st, why, t[i].why);
    }
}

static void test_validate_type(void **state)
{
    (void)state;
    static const struct vcase t[] = {
        {"{\"type\": \"object\"}", "{\"a\": 1}", NULL},
        {"{\"type\": \"object\"}", "[1]", "must be of type object"},
        {"{\"type\": \"string\"}", "\"x\"", NULL},
        {"{\"type\": \"string\"}", "1", "must be of type string"},
        {"{\"type\": \"number\"}", "1", NULL},
        {"{\"type\": \"number\"}", "1.5", NULL},
        {"{\"type\": \"number\"}", "\"1\"", "must be of type number"},
        {"{\"type\": \"integer\"}", "-7", NULL},
        {"{\"type\": \"integer\"}", "7.5", "must be of type integer"},
        {"{\"type\": \"integer\"}", "true", "must be of type integer"},
        {"{\"type\": \"boolean\"}", "false", NULL},
        {"{\"type\": \"boolean\"}", "0", "must be of type boolean"},
        {"{\"type\": \"array\"}", "[]", NULL},
        {"{\"type\": \"array\"}", "{}", "must be of type array"},
        {"{\"type\": \"null\"}", "null", NULL},
        {"{\"type\": \"null\"}", "false", "must be of type null"},
        {"{\"type\": [\"string\", \"null\"]}", "null", NULL},
        {"{\"type\": [\"string\", \"null\"]}", "\"a\"", NULL},
        {"{\"type\": [\"string\", \"null\"]}", "2", "must be of type string or null"},
        {"{}", "{\"anything\": [1, \"goes\"]}", NULL},
        {"{\"properties\": {\"t\": {\"type\": \"integer\"}}}", "{\"t\": \"x\"}",
         "t: must be of type integer"},
    };
    run_cases(t, sizeof t / sizeof t[0]);
}

static void test_validate_numbers(void **state)
{
    (void)state;
    static const struct vcase t[] = {
        {"{\"minimum\": 5}", "5", NULL},
        {"{\"minimum\": 5}", "5.0", NULL},
        {"{\"minimum\": 5}", "4.999", "must be >= 5"},
        {"{\"minimum\": 5.5}", "5", "must be >= 5.5"},
        {"{\"maximum\": 30}", "30", NULL},
        {"{\"maximum\": 30}", "30.5", "must be <= 30"},
        {"{\"maximum\": 30}", "-1e300", NULL},
        {"{\"exclusiveMinimum\": 0}", "0", "must be > 0"},
        {"{\"exclusiveMinimum\": 0}", "0.001", NULL},
        {"{\"exclusiveMaximum\": 30}", "30.0", "must be < 30"},
        {"{\"exclusiveMaximum\": 30}", "29", NULL},
        {"{\"exclusiveMaximum\": -0.5}", "-1", NULL},
        {"{\"exclusiveMaximum\": -0.5}", "0", "must be < -0.5"},
        /* ints against floats compare exactly, not through a rounding double */
        {"{\"maximum\": 9007199254740993}", "9007199254740992.0", NULL},
        {"{\"maximum\": 9007199254740993}", "9007199254740994.0", "must be <= 9007199254740993"},
        {"{\"minimum\": 9007199254740992.0}", "9007199254740993", NULL},
        {"{\"maximum\": 9007199254740992.0}", "9007199254740993",
         "must be <= 9.00719925474099e+15"},
        {"{\"maximum\": 9223372036854775807}", "1e19", "must be <= 9223372036854775807"},
        {"{\"minimum\": -9223372036854775808}", "-9223372036854775808", NULL},
        /* only numbers are bounded */
        {"{\"minimum\": 5, \"maximum\": 6}", "\"abc\"", NULL},
        {"{\"type\": \"integer\"}", "2.0", NULL},
        {"{\"type\": \"integer\"}", "1e300", NULL},
        {"{\"properties\": {\"temp\": {\"type\": \"number\", \"maximum\": 30}}}", "{\"temp\": 31}",
         "temp: must be <= 30"},
    };
    run_cases(t, sizeof t / sizeof t[0]);
}

static void test_validate_enum(void **state)
{
    (void)state;
    static const struct vcase t[] = {
        {"{\"enum\": [\"eco\", \"comfort\"]}", "\"eco\"", NULL},
        {"{\"enum\": [\"eco\", \"comfort\"]}", "\"Eco\"", "must be one of the enum values"},
        {"{\"enum\": [1, 2]}", "1.0", NULL},
        {"{\"enum\": [1.0, 2.5]}", "1", NULL},
        {"{\"enum\": [1, 2]}", "3", "must be one of the enum values"},
        {"{\"enum\": [1]}", "true", "must be one of the enum values"},
        {"{\"enum\": [true, null]}", "null", NULL},
        {"{\"enum\": [true, null]}", "false", "must be one of the enum values"},
        {"{\"enum\": [\"1\"]}", "1", "must be one of the enum values"},
        {"{\"enum\": [1]}", "[1]", "must be one of the enum values"},
        {"{\"properties\": {\"mode\": {\"enum\": [\"eco\"]}}}", "{\"mode\": \"hot\"}",
         "mode: must be one of the enum values"},
    };
    run_cases(t, sizeof t / sizeof t[0]);
}

static void test_validate_strings(void **state)
{
    (void)state;
    static const struct vcase t[] = {
        {"{\"minLength\": 2}", "\"ab\"", NULL},
        {"{\"minLength\": 2}", "\"a\"", "must have at least 2 characters"},
        {"{\"maxLength\": 3}", "\"abc\"", NULL},
        {"{\"maxLength\": 3}", "\"abcd\"", "must have at most 3 characters"},
        /* code points, not bytes: h\u00e9llo is 6 bytes, 5 characters */
        {"{\"maxLength\": 5}", "\"h\\u00e9llo\"", NULL},
        {"{\"minLength\": 4}", "\"\\u00e9\\u00e9\\u00e9\"", "must have at least 4 characters"},
        {"{\"maxLength\": 1}", "\"\\ud83d\\ude00\"", NULL},
        {"{\"minLength\": 1}", "\"\"", "must have at least 1 characters"},
        {"{\"minLength\": 3}", "12", NULL},
        {"{\"properties\": {\"ssid\": {\"maxLength\": 2}}}", "{\"ssid\": \"home\"}",
         "ssid: must have at most 2 characters"},
    };
    run_cases(t, sizeof t / sizeof t[0]);
}

static void test_validate_arrays(void **state)
{
    (void)state;
    static const struct vcase t[] = {
        {"{\"minItems\": 1}", "[0]", NULL},
        {"{\"minItems\": 1}", "[]", "must have at least 1 items"},
        {"{\"maxItems\": 2}", "[1, 2]", NULL},
        {"{\"maxItems\": 2}", "[1, 2, 3]", "must have at most 2 items"},
        {"{\"items\": {\"type\": \"integer\"}}", "[1, 2, 3]", NULL},
        {"{\"items\": {\"type\": \"integer\"}}", "[1, \"2\"]", "[1]: must be of type integer"},
        {"{\"maxItems\": 0}", "\"not an array\"", NULL},
        {"{\"properties\": {\"list\": {\"items\": {\"properties\": {\"v\": {\"minimum\": 0}}}}}}",
         "{\"list\": [{\"v\": 1}, {\"v\": -1}]}", "list[1].v: must be >= 0"},
        {"{\"items\": {\"items\": {\"enum\": [0]}}}", "[[0], [0, 1]]",
         "[1][1]: must be one of the enum values"},
    };
    run_cases(t, sizeof t / sizeof t[0]);
}

static void test_validate_objects(void **state)
{
    (void)state;
    static const struct vcase t[] = {
        {"{\"required\": [\"ssid\"]}", "{\"ssid\": \"x\"}", NULL},
        {"{\"required\": [\"ssid\"]}", "{\"connected\": true}",
         "missing required property \"ssid\""},
        {"{\"required\": [\"ssid\"]}", "[1]", NULL},
        {"{\"properties\": {\"a\": {}}, \"additionalProperties\": false}", "{\"a\": 1}", NULL},
        {"{\"properties\": {\"a\": {}}, \"additionalProperties\": false}", "{\"a\": 1, \"b\": 2}",
         "unexpected property \"b\""},
        {"{\"additionalProperties\": false}", "{}", NULL},
        {"{\"additionalProperties\": true}", "{\"z\": 1}", NULL},
        {"{\"properties\": {\"a\": {\"type\": \"string\"}}}", "{\"b\": 1}", NULL},
        /* nested properties and reasons with paths */
        {"{\"properties\": {\"a\": {\"properties\": {\"b\": {\"properties\": {\"c\": "
         "{\"maximum\": 3}}}}}}}",
         "{\"a\": {\"b\": {\"c\": 4}}}", "a.b.c: must be <= 3"},
        {"{\"properties\": {\"outer\": {\"required\": [\"x\"]}}}", "{\"outer\": {\"y\": 1}}",
         "outer: missing required property \"x\""},
        {"{\"properties\": {\"outer\": {\"properties\": {\"p\": {}}, "
         "\"additionalProperties\": false}}}",
         "{\"outer\": {\"q\": 1}}", "outer: unexpected property \"q\""},
        {"{\"type\": \"object\", \"properties\": {\"ssid\": {\"type\": \"string\"}, "
         "\"connected\": {\"type\": \"boolean\"}}, \"required\": [\"connected\"]}",
         "{\"ssid\": \"home\", \"connected\": \"yes\"}", "connected: must be of type boolean"},
    };
    run_cases(t, sizeof t / sizeof t[0]);
}

static void test_validate_cbor_values(void **state)
{
    (void)state;
    char why[160];
    /* a repeated key: {"t": 1, "t": 99} */
    assert_int_equal(validate_hex("{\"properties\": {\"t\": {\"maximum\": 30}}}",
                                  "a261740161741863", why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "property \"t\" given twice");
    /* a map with an int key is no object */
    assert_int_equal(validate_hex("{\"type\": \"object\"}", "a10102", why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "must be of type object");
    /* byte strings, tags and undefined are of no type, but pass a schema without one */
    assert_int_equal(validate_hex("{\"type\": \"string\"}", "4161", why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(validate_hex("{\"type\": \"number\"}", "c11a00000001", why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(validate_hex("{\"type\": \"null\"}", "f7", why, sizeof why), CL_ERR_BAD_INPUT);
    assert_int_equal(validate_hex("{}", "4161", why, sizeof why), CL_OK);
    /* NaN is no number; f16 and f32 floats are */
    assert_int_equal(validate_hex("{\"type\": \"number\"}", "f97e00", why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(
        validate_hex("{\"type\": \"number\", \"maximum\": 1.5}", "f93e00", why, sizeof why), CL_OK);
    assert_int_equal(validate_hex("{\"maximum\": 1}", "fa3fc00000", why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_string_equal(why, "must be <= 1");
    /* integers beyond int64 */
    assert_int_equal(validate_hex("{\"maximum\": 10}", "1bffffffffffffffff", why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(validate_hex("{\"minimum\": 10}", "3bffffffffffffffff", why, sizeof why),
                     CL_ERR_BAD_INPUT);
    assert_int_equal(validate_hex("{\"type\": \"integer\"}", "1bffffffffffffffff", why, sizeof why),
                     CL_OK);
    /* invalid UTF-8 text */
    assert_int_equal(validate_hex("{}", "62c328", why, sizeof why), CL_ERR_BAD_INPUT);
    assert_string_equal(why, "must be valid UTF-8 text");
    /* not one well-formed value */
    assert_int_equal(validate_hex("{}", "a161", why, sizeof why), CL_ERR_BAD_INPUT);
    assert_string_equal(why, "not one well-formed CBOR value");
    assert_int_equal(validate_hex("{}", "0101", why, sizeof why), CL_ERR_BAD_INPUT);
    size_t sl;
    uint8_t *s = j2c("{}", &sl);
    assert_int_equal(cl_schema_validate(s, sl, NULL, 0, why, sizeof why), CL_ERR_BAD_INPUT);
    free(s);
}

/* A schema cl_schema_check would refuse is never trusted by validate either. */
static void test_validate_unchecked_schema(void **state)
{
    (void)state;
    char why[160];
    uint8_t s[64], v[8];
    size_t sl = tu_hex("a1677061747465726e6161", s, sizeof s); /* {"pattern": "a"} */
    size_t vl = tu_hex("6161", v, sizeof v);
    assert_int_equal(cl_schema_validate(s, sl, v, vl, why, sizeof why), CL_ERR_BAD_INPUT);
    assert_string_equal(why, "invalid schema");
    sl = tu_hex("820102", s, sizeof s);
    assert_int_equal(cl_schema_validate(s, sl, v, vl, why, sizeof why), CL_ERR_BAD_INPUT);
    char *deep = nested_items(CL_SCHEMA_MAX_DEPTH + 2);
    size_t dl;
    uint8_t *d = j2c(deep, &dl);
    uint8_t arr[16];
    size_t al = tu_hex("8181818181818181818100", arr, sizeof arr);
    assert_int_not_equal(cl_schema_validate(d, dl, arr, al, why, sizeof why), CL_OK);
    free(d);
    free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_accepts_every_keyword),
        cmocka_unit_test(test_check_refusals),
        cmocka_unit_test(test_check_cbor_refusals),
        cmocka_unit_test(test_check_limits),
        cmocka_unit_test(test_validate_type),
        cmocka_unit_test(test_validate_numbers),
        cmocka_unit_test(test_validate_enum),
        cmocka_unit_test(test_validate_strings),
        cmocka_unit_test(test_validate_arrays),
        cmocka_unit_test(test_validate_objects),
        cmocka_unit_test(test_validate_cbor_values),
        cmocka_unit_test(test_validate_unchecked_schema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
