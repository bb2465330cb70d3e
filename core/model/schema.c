/*
 * schema.c - the JSON Schema subset of schema.h, checked and applied to CBOR
 * values inside the core.
 *
 * What: cl_schema_check accepts a schema only when every keyword is one we
 * implement and every keyword's value has the right shape; cl_schema_validate
 * applies an accepted schema to a value and, on failure, says which property
 * and why ("temp: must be <= 30").
 *
 * Why strict: a schema is a promise to the owner about what a rule or a
 * device will ever see. A keyword we silently ignored ("pattern", "oneOf",
 * a draft-4 boolean "exclusiveMaximum") would make the promise false, so an
 * unknown keyword is refused when the schema is installed, not discovered
 * when an event slips through.
 *
 * Semantics (JSON Schema 2020-12 where the subset overlaps): keywords apply
 * only to values of their kind (a "minimum" says nothing about a text);
 * numbers compare as numbers whatever their encoding (1 == 1.0, and integers
 * against floats exactly, never through a rounding double); "integer" is any
 * integral number (2.0 is one); text lengths count code points; a map is an
 * object only when every key is a text, and an object with a repeated key is
 * refused (the first copy would be checked, another one used). Byte strings,
 * tags and undefined are of no schema type.
 *
 * Bounds: schemas are at most CL_SCHEMA_MAX bytes and CL_SCHEMA_MAX_DEPTH
 * schema levels deep, and both functions recurse once per schema level, so
 * the stack is bounded by the depth limit whatever the value. No allocation.
 */
#include "path.h"
#include "schema.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h> /* snprintf into buffers only */
#include <string.h>

#include "cloister/cbor.h"

/* 2^63 as a double: int64 covers [-2^63, 2^63). */
#define TWO63 9223372036854775808.0
/* Every double at or beyond 2^53 in magnitude is an integer. */
#define TWO53 9007199254740992.0


/* The keywords, in the order of the table below (a bit each to catch repeats). */
typedef enum kw {
    KW_TYPE,
    KW_PROPERTIES,
    KW_REQUIRED,
    KW_ADDITIONAL,
    KW_ENUM,
    KW_MINIMUM,
    KW_MAXIMUM,
    KW_XMINIMUM,
    KW_XMAXIMUM,
    KW_MINLENGTH,
    KW_MAXLENGTH,
    KW_ITEMS,
    KW_MINITEMS,
    KW_MAXITEMS,
    KW_DESCRIPTION,
    KW_TITLE,
    KW_DEFAULT,
    KW_COMMENT,
    KW_COUNT,
} kw_t;

static const char *const KW_NAMES[KW_COUNT] = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "items",
    "minItems",
    "maxItems",
    "description",
    "title",
    "default",
    "$comment",
};

/* The type names, as bits of a type set. */
enum {
    T_OBJECT = 1u << 0,
    T_STRING = 1u << 1,
    T_NUMBER = 1u << 2,
    T_INTEGER = 1u << 3,
    T_BOOLEAN = 1u << 4,
    T_ARRAY = 1u << 5,
    T_NULL = 1u << 6,
};

static const char *const TYPE_NAMES[] = {"object",  "string", "number", "integer",
                                         "boolean", "array",  "null"};
#define N_TYPES (sizeof TYPE_NAMES / sizeof TYPE_NAMES[0])

/** Where we are (a dotted path for reasons) and where reasons go. */
typedef struct ctx {
    cl_mpath_t path;
    char *why;
    size_t why_size;
} ctx_t;

/** A number as the schema compares it. */
typedef struct num {
    bool is_int; /* exact int64 in i; otherwise d */
    int64_t i;
    double d;
} num_t;

/** What kind of value an item is. */
typedef enum vkind {
    V_INT,
    V_FLOAT,
    V_TEXT,
    V_BOOL,
    V_NULL,
    V_ARRAY,
    V_MAP,
    V_OTHER, /* bstr, tag, undefined, other simple values */
} vkind_t;

/* ------------------------------------------------------------------ */
/* Reasons and paths                                                   */
/* ------------------------------------------------------------------ */

static void fail(ctx_t *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Writes "path: message" (or just the message at the root) to why. */
static void fail(ctx_t *c, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    if (c->why == NULL || c->why_size == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->path.len > 0)
        (void)snprintf(c->why, c->why_size, "%s: %s", c->path.s, msg);
    else
        (void)snprintf(c->why, c->why_size, "%s", msg);
}

/* Appends ".seg" (or "seg" at the root); returns the old length to restore. */
static size_t path_push(ctx_t *c, const char *seg, size_t len)
{
    return cl_mpath_push(&c->path, seg, len);
}

/* Appends "[i]". */
static size_t path_push_index(ctx_t *c, size_t i)
{
    return cl_mpath_push_index(&c->path, i);
}

static void path_pop(ctx_t *c, size_t old)
{
    cl_mpath_pop(&c->path, old);
}

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

static bool is_finite(double d)
{
    return d == d && d - d == 0;
}

static bool is_integral(double d)
{
    if (!is_finite(d))
        return false;
    if (d >= TWO53 || d <= -TWO53)
        return true;
    return (double)(int64_t)d == d;
}

/* The kind of the item at d (not consumed). */
static vkind_t kind_of(const cl_cbor_dec_t *d)
{
    cl_cbor_type_t t;
    if (cl_cbor_dec_peek(d, &t) != CL_OK)
        return V_OTHER;
    switch (t) {
    case CL_CBOR_UINT:
    case CL_CBOR_NINT: return V_INT;
    case CL_CBOR_TSTR: return V_TEXT;
    case CL_CBOR_ARRAY: return V_ARRAY;
    case CL_CBOR_MAP: return V_MAP;
    case CL_CBOR_SIMPLE:
        switch (d->cur[0]) {
        case 0xf4:
        case 0xf5: return V_BOOL;
        case 0xf6: return V_NULL;
        case 0xf9:
        case 0xfa:
        case 0xfb: return V_FLOAT;
        default: return V_OTHER;
        }
    default: return V_OTHER;
    }
}

/* Reads a number (int of any CBOR range, or float); false when the item is none. */
static bool num_read(cl_cbor_dec_t *d, num_t *n)
{
    cl_cbor_type_t t;
    uint64_t u;
    if (cl_cbor_dec_peek(d, &t) != CL_OK)
        return false;
    if (t == CL_CBOR_UINT || t == CL_CBOR_NINT) {
        if (cl_cbor_dec_int(d, &n->i) == CL_OK) {
            n->is_int = true;
            n->d = (double)n->i;
            return true;
        }
        /* beyond int64: exact comparisons are not needed that far out */
        cl_cbor_dec_t k = *d;
        const uint8_t *raw;
        size_t len;
        if (cl_cbor_dec_raw(&k, &raw, &len) != CL_OK)
            return false;
        u = 0;
        for (size_t i = 1; i < len; i++)
            u = u << 8 | raw[i];
        n->is_int = false;
        n->d = t == CL_CBOR_UINT ? (double)u : -1.0 - (double)u;
        *d = k;
        return true;
    }
    if (kind_of(d) == V_FLOAT && cl_cbor_dec_double(d, &n->d) == CL_OK) {
        n->is_int = false;
        return true;
    }
    return false;
}

/* Compares an int64 with a double exactly: -1, 0, 1, or 2 when d is NaN. */
static int cmp_int_dbl(int64_t i, double d)
{
    if (d != d)
        return 2;
    if (d >= TWO63)
        return -1;
    if (d < -TWO63)
        return 1;
    int64_t t = (int64_t)d; /* truncated toward 0; exact */
    if (i != t)
        return i < t ? -1 : 1;
    double frac = d - (double)t; /* exact: the fraction of a double */
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

/* -1, 0, 1, or 2 when unordered (NaN). */
static int num_cmp(const num_t *a, const num_t *b)
{
    if (a->is_int && b->is_int)
        return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
    if (a->is_int) {
        return cmp_int_dbl(a->i, b->d);
    }
    if (b->is_int) {
        int r = cmp_int_dbl(b->i, a->d);
        return r == 2 ? 2 : -r;
    }
    if (a->d != a->d || b->d != b->d)
        return 2;
    return a->d < b->d ? -1 : a->d > b->d ? 1 : 0;
}

static void num_fmt(const num_t *n, char *buf, size_t size)
{
    if (n->is_int)
        (void)snprintf(buf, size, "%" PRId64, n->i);
    else
        (void)snprintf(buf, size, "%.15g", n->d);
}

/* Code points of valid UTF-8 text. */
static size_t utf8_count(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0u) != 0x80u;
    return n;
}

/* A non-negative integer keyword value (lengths, counts). */
static bool read_count(cl_cbor_dec_t *d, uint64_t *v)
{
    num_t n;
    if (!num_read(d, &n))
        return false;
    if (n.is_int) {
        if (n.i < 0)
            return false;
        *v = (uint64_t)n.i;
        return true;
    }
    if (!is_integral(n.d) || n.d < 0)
        return false;
    *v = n.d >= 18446744073709551616.0 ? UINT64_MAX : (uint64_t)n.d;
    return true;
}

static kw_t kw_lookup(const char *k, size_t len)
{
    for (int i = 0; i < KW_COUNT; i++)
        if (strlen(KW_NAMES[i]) == len && memcmp(KW_NAMES[i], k, len) == 0)
            return (kw_t)i;
    return KW_COUNT;
}

static unsigned type_lookup(const char *k, size_t len)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (strlen(TYPE_NAMES[i]) == len && memcmp(TYPE_NAMES[i], k, len) == 0)
            return 1u << i;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Checking a schema                                                   */
/* ------------------------------------------------------------------ */

static cl_status_t check_schema(ctx_t *c, const uint8_t *p, size_t len, unsigned depth);

/* "type": a name or a non-empty array of distinct names. */
static cl_status_t check_type(ctx_t *c, cl_cbor_dec_t *d)
{
    const char *s;
    size_t sl, n;
    unsigned seen = 0;
    if (kind_of(d) == V_TEXT) {
        if (cl_cbor_dec_tstr(d, &s, &sl) != CL_OK || type_lookup(s, sl) == 0)
            goto bad;
        return CL_OK;
    }
    if (cl_cbor_dec_array(d, &n) != CL_OK || n == 0)
        goto bad;
    for (size_t i = 0; i < n; i++) {
        unsigned t;
        if (cl_cbor_dec_tstr(d, &s, &sl) != CL_OK || (t = type_lookup(s, sl)) == 0)
            goto bad;
        if (seen & t) {
            fail(c, "type: \"%.*s\" listed twice", (int)sl, s);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        seen |= t;
    }
    return CL_OK;
bad:
    fail(c, "type: one of object, string, number, integer, boolean, array, null (or an array "
            "of them)");
    return CL_FAIL(CL_ERR_BAD_INPUT);
}

/* "properties": {name: schema}. */
static cl_status_t check_properties(ctx_t *c, cl_cbor_dec_t *d, unsigned depth)
{
    cl_status_t st;
    size_t n;
    if (kind_of(d) != V_MAP || cl_cbor_dec_map(d, &n) != CL_OK) {
        fail(c, "properties: an object of schemas");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    const uint8_t *first = d->cur;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl, sl;
        const uint8_t *sub;
        if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK || kl == 0 ||
            !cl_cbor_utf8_valid((const uint8_t *)k, kl)) {
            fail(c, "properties: names must be non-empty texts");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        /* a repeated name: which of the two schemas would apply? */
        cl_cbor_dec_t e;
        cl_cbor_dec_init(&e, first, (size_t)(d->end - first));
        for (size_t j = 0; j < i; j++) {
            const char *k2;
            size_t kl2;
            if (cl_cbor_dec_tstr(&e, &k2, &kl2) != CL_OK || cl_cbor_dec_skip(&e) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            if (kl2 == kl && memcmp(k, k2, kl) == 0) {
                fail(c, "properties: \"%.*s\" defined twice", (int)(kl > 64 ? 64 : kl), k);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
        }
        if (cl_cbor_dec_raw(d, &sub, &sl) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        size_t old = path_push(c, "properties", 10);
        (void)path_push(c, k, kl);
        st = check_schema(c, sub, sl, depth + 1);
        path_pop(c, old);
        if (st != CL_OK)
            return st;
    }
    return CL_OK;
}

/* "required": [distinct names]. */
static cl_status_t check_required(ctx_t *c, cl_cbor_dec_t *d)
{
    size_t n;
    if (kind_of(d) != V_ARRAY || cl_cbor_dec_array(d, &n) != CL_OK)
        goto bad;
    const uint8_t *first = d->cur;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK || !cl_cbor_utf8_valid((const uint8_t *)k, kl))
            goto bad;
        cl_cbor_dec_t e;
        cl_cbor_dec_init(&e, first, (size_t)(d->end - first));
        for (size_t j = 0; j < i; j++) {
            const char *k2;
            size_t kl2;
            if (cl_cbor_dec_tstr(&e, &k2, &kl2) != CL_OK)
                goto bad;
            if (kl2 == kl && memcmp(k, k2, kl) == 0) {
                fail(c, "required: \"%.*s\" listed twice", (int)(kl > 64 ? 64 : kl), k);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
        }
    }
    return CL_OK;
bad:
    fail(c, "required: an array of property names");
    return CL_FAIL(CL_ERR_BAD_INPUT);
}

/* "enum": a non-empty array of scalars (ints, floats, texts, booleans, null). */
static cl_status_t check_enum(ctx_t *c, cl_cbor_dec_t *d)
{
    size_t n;
    if (kind_of(d) != V_ARRAY || cl_cbor_dec_array(d, &n) != CL_OK || n == 0) {
        fail(c, "enum: a non-empty array of values");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    for (size_t i = 0; i < n; i++) {
        vkind_t k = kind_of(d);
        if (k == V_ARRAY || k == V_MAP || k == V_OTHER) {
            fail(c, "enum: values must be numbers, texts, booleans or null");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (k == V_TEXT) {
            const char *s;
            size_t sl;
            if (cl_cbor_dec_tstr(d, &s, &sl) != CL_OK ||
                !cl_cbor_utf8_valid((const uint8_t *)s, sl))
                goto bad_item;
        } else if (cl_cbor_dec_skip(d) != CL_OK) {
            goto bad_item;
        }
    }
    return CL_OK;
bad_item:
    fail(c, "enum: malformed value");
    return CL_FAIL(CL_ERR_BAD_INPUT);
}

static cl_status_t check_schema(ctx_t *c, const uint8_t *p, size_t len, unsigned depth)
{
    cl_status_t st;
    cl_cbor_dec_t d;
    size_t n;
    uint32_t seen = 0;

    if (depth > CL_SCHEMA_MAX_DEPTH) {
        fail(c, "schemas nested deeper than %d levels", CL_SCHEMA_MAX_DEPTH);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    cl_cbor_dec_init(&d, p, len);
    if (kind_of(&d) != V_MAP || cl_cbor_dec_map(&d, &n) != CL_OK) {
        fail(c, "a schema must be an object");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK) {
            fail(c, "keywords must be texts");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        kw_t kw = kw_lookup(k, kl);
        if (kw == KW_COUNT) {
            fail(c, "unsupported keyword \"%.*s\"", (int)(kl > 64 ? 64 : kl), k);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (seen & (1u << kw)) {
            fail(c, "keyword \"%s\" given twice", KW_NAMES[kw]);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        seen |= 1u << kw;
        switch (kw) {
        case KW_TYPE:
            if ((st = check_type(c, &d)) != CL_OK)
                return st;
            break;
        case KW_PROPERTIES:
            if ((st = check_properties(c, &d, depth)) != CL_OK)
                return st;
            break;
        case KW_REQUIRED:
            if ((st = check_required(c, &d)) != CL_OK)
                return st;
            break;
        case KW_ADDITIONAL: {
            bool b;
            if (cl_cbor_dec_bool(&d, &b) != CL_OK) {
                fail(c, "additionalProperties: true or false (schemas are not supported)");
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            break;
        }
        case KW_ENUM:
            if ((st = check_enum(c, &d)) != CL_OK)
                return st;
            break;
        case KW_MINIMUM:
        case KW_MAXIMUM:
        case KW_XMINIMUM:
        case KW_XMAXIMUM: {
            num_t v;
            if (!num_read(&d, &v) || (!v.is_int && !is_finite(v.d))) {
                fail(c, "%s: a number", KW_NAMES[kw]);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            break;
        }
        case KW_MINLENGTH:
        case KW_MAXLENGTH:
        case KW_MINITEMS:
        case KW_MAXITEMS: {
            uint64_t v;
            if (!read_count(&d, &v)) {
                fail(c, "%s: a non-negative integer", KW_NAMES[kw]);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            break;
        }
        case KW_ITEMS: {
            const uint8_t *sub;
            size_t sl;
            if (kind_of(&d) != V_MAP) {
                fail(c, "items: a schema (arrays of schemas are not supported)");
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            if (cl_cbor_dec_raw(&d, &sub, &sl) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            size_t old = path_push(c, "items", 5);
            st = check_schema(c, sub, sl, depth + 1);
            path_pop(c, old);
            if (st != CL_OK)
                return st;
            break;
        }
        case KW_DESCRIPTION:
        case KW_TITLE:
        case KW_COMMENT: {
            const char *s;
            size_t sl;
            if (cl_cbor_dec_tstr(&d, &s, &sl) != CL_OK ||
                !cl_cbor_utf8_valid((const uint8_t *)s, sl)) {
                fail(c, "%s: a text", KW_NAMES[kw]);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            break;
        }
        case KW_DEFAULT:
        case KW_COUNT:
            if (cl_cbor_dec_skip(&d) != CL_OK) {
                fail(c, "%s: malformed value", KW_NAMES[KW_DEFAULT]);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            break;
        }
    }
    if (depth == 1 && !cl_cbor_dec_at_end(&d)) {
        fail(c, "a schema must be one well-formed CBOR map");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    return CL_OK;
}

cl_status_t cl_schema_check(const uint8_t *schema, size_t len, char *why, size_t why_size)
{
    ctx_t c = {.why = why, .why_size = why_size};
    c.path.s[0] = 0;
    if (why != NULL && why_size > 0)
        why[0] = 0;
    if (schema == NULL || len == 0) {
        fail(&c, "a schema must be an object");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (len > CL_SCHEMA_MAX) {
        fail(&c, "schema larger than %d bytes", CL_SCHEMA_MAX);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    /* the walk itself is strict and bounded (so that a nesting limit is reported as
     * such); whatever it did not read item by item is checked as a whole after it */
    size_t items = 0;
    cl_status_t st = check_schema(&c, schema, len, 1);
    if (st == CL_OK && (cl_cbor_validate_seq(schema, len, &items) != CL_OK || items != 1))
        st = CL_FAIL(CL_ERR_BAD_INPUT);
    if (st != CL_OK && why != NULL && why_size > 0 && why[0] == 0) {
        cl_mpath_pop(&c.path, 0);
        fail(&c, "a schema must be one well-formed CBOR map");
    }
    return st;
}

/* ------------------------------------------------------------------ */
/* Validating a value                                                  */
/* ------------------------------------------------------------------ */

/* Finds a keyword in a schema map: true with d on its value. */
static bool find_kw(const uint8_t *s, size_t sl, kw_t kw, cl_cbor_dec_t *out)
{
    cl_cbor_dec_t d;
    size_t n;
    const char *name = KW_NAMES[kw];
    size_t nl = strlen(name);
    cl_cbor_dec_init(&d, s, sl);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            return false;
        if (kl == nl && memcmp(k, name, nl) == 0) {
            *out = d;
            return true;
        }
        if (cl_cbor_dec_skip(&d) != CL_OK)
            return false;
    }
    return false;
}

/* Whether a value of kind k (number n when numeric) is of the types in set. */
static bool type_matches(unsigned set, vkind_t k, const num_t *n, bool text_keys)
{
    switch (k) {
    case V_INT:
    case V_FLOAT:
        if ((set & T_NUMBER) && (n->is_int || is_finite(n->d)))
            return true;
        return (set & T_INTEGER) && (n->is_int || is_integral(n->d));
    case V_TEXT: return (set & T_STRING) != 0;
    case V_BOOL: return (set & T_BOOLEAN) != 0;
    case V_NULL: return (set & T_NULL) != 0;
    case V_ARRAY: return (set & T_ARRAY) != 0;
    case V_MAP: return (set & T_OBJECT) && text_keys;
    case V_OTHER: return false;
    }
    return false;
}

/* Reads a "type" value into a set; 0 when malformed. */
static unsigned type_set(cl_cbor_dec_t *d)
{
    const char *s;
    size_t sl, n;
    unsigned set = 0;
    if (kind_of(d) == V_TEXT)
        return cl_cbor_dec_tstr(d, &s, &sl) == CL_OK ? type_lookup(s, sl) : 0;
    if (cl_cbor_dec_array(d, &n) != CL_OK)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned t;
        if (cl_cbor_dec_tstr(d, &s, &sl) != CL_OK || (t = type_lookup(s, sl)) == 0)
            return 0;
        set |= t;
    }
    return set;
}

static void type_desc(unsigned set, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_TYPES; i++) {
        if (!(set & (1u << i)))
            continue;
        int k = snprintf(buf + n, size - n, "%s%s", n > 0 ? " or " : "", TYPE_NAMES[i]);
        if (k < 0 || (size_t)k >= size - n)
            return;
        n += (size_t)k;
    }
}

/* Semantic equality of a value and an enum item (both scalars or not comparable). */
static bool scalar_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    cl_cbor_dec_t da, db;
    cl_cbor_dec_init(&da, a, al);
    cl_cbor_dec_init(&db, b, bl);
    vkind_t ka = kind_of(&da), kb = kind_of(&db);
    if ((ka == V_INT || ka == V_FLOAT) && (kb == V_INT || kb == V_FLOAT)) {
        num_t x, y;
        return num_read(&da, &x) && num_read(&db, &y) && num_cmp(&x, &y) == 0;
    }
    if (ka != kb || ka == V_ARRAY || ka == V_MAP || ka == V_OTHER)
        return false;
    return al == bl && memcmp(a, b, al) == 0; /* text, bool, null: same bytes */
}

static cl_status_t validate(ctx_t *c, const uint8_t *s, size_t sl, const uint8_t *v, size_t vl,
                            unsigned depth);

/* The keywords on objects: required, properties, additionalProperties. */
static cl_status_t validate_object(ctx_t *c, const uint8_t *s, size_t sl, const uint8_t *v,
                                   size_t vl, unsigned depth)
{
    cl_status_t st;
    cl_cbor_dec_t d, props, kwd;
    size_t n;
    bool has_props = find_kw(s, sl, KW_PROPERTIES, &props);
    bool closed = false;
    if (find_kw(s, sl, KW_ADDITIONAL, &kwd) && cl_cbor_dec_bool(&kwd, &closed) == CL_OK)
        closed = !closed;

    cl_cbor_dec_init(&d, v, vl);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    const uint8_t *first = d.cur;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        const uint8_t *item;
        size_t il;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK || cl_cbor_dec_raw(&d, &item, &il) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        int shown = kl > 64 ? 64 : (int)kl;
        /* a repeated key: one copy would be checked and another one used */
        cl_cbor_dec_t e;
        cl_cbor_dec_init(&e, first, vl - (size_t)(first - v));
        for (size_t j = 0; j < i; j++) {
            const char *k2;
            size_t kl2;
            if (cl_cbor_dec_tstr(&e, &k2, &kl2) != CL_OK || cl_cbor_dec_skip(&e) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            if (kl2 == kl && memcmp(k, k2, kl) == 0) {
                fail(c, "property \"%.*s\" given twice", shown, k);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
        }
        /* its schema, if the object names it */
        const uint8_t *sub = NULL;
        size_t subl = 0;
        if (has_props) {
            cl_cbor_dec_t p = props;
            size_t pn;
            if (cl_cbor_dec_map(&p, &pn) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            for (size_t j = 0; j < pn && sub == NULL; j++) {
                const char *pk;
                size_t pkl;
                if (cl_cbor_dec_tstr(&p, &pk, &pkl) != CL_OK)
                    return CL_FAIL(CL_ERR_BAD_INPUT);
                if (pkl == kl && memcmp(pk, k, kl) == 0) {
                    if (cl_cbor_dec_raw(&p, &sub, &subl) != CL_OK)
                        return CL_FAIL(CL_ERR_BAD_INPUT);
                } else if (cl_cbor_dec_skip(&p) != CL_OK) {
                    return CL_FAIL(CL_ERR_BAD_INPUT);
                }
            }
        }
        if (sub == NULL) {
            if (closed) {
                fail(c, "unexpected property \"%.*s\"", shown, k);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            continue;
        }
        size_t old = path_push(c, k, kl);
        st = validate(c, sub, subl, item, il, depth + 1);
        path_pop(c, old);
        if (st != CL_OK)
            return st;
    }
    /* required */
    if (find_kw(s, sl, KW_REQUIRED, &kwd)) {
        size_t rn;
        if (cl_cbor_dec_array(&kwd, &rn) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        for (size_t r = 0; r < rn; r++) {
            const char *rk;
            size_t rkl;
            bool found = false;
            if (cl_cbor_dec_tstr(&kwd, &rk, &rkl) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            cl_cbor_dec_init(&d, first, vl - (size_t)(first - v));
            for (size_t i = 0; i < n && !found; i++) {
                const char *k;
                size_t kl;
                if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK || cl_cbor_dec_skip(&d) != CL_OK)
                    return CL_FAIL(CL_ERR_BAD_INPUT);
                found = kl == rkl && memcmp(k, rk, kl) == 0;
            }
            if (!found) {
                fail(c, "missing required property \"%.*s\"", rkl > 64 ? 64 : (int)rkl, rk);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
        }
    }
    return CL_OK;
}

/* Whether every key of the map v is a text. */
static bool text_keys(const uint8_t *v, size_t vl)
{
    cl_cbor_dec_t d;
    size_t n;
    cl_cbor_dec_init(&d, v, vl);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK || cl_cbor_dec_skip(&d) != CL_OK)
            return false;
    }
    return true;
}

static cl_status_t validate(ctx_t *c, const uint8_t *s, size_t sl, const uint8_t *v, size_t vl,
                            unsigned depth)
{
    cl_status_t st;
    cl_cbor_dec_t d, vd;
    size_t n;
    num_t num = {.is_int = false, .i = 0, .d = 0};
    char a[40];

    if (depth > CL_SCHEMA_MAX_DEPTH)
        return CL_FAIL(CL_ERR_LIMIT); /* cl_schema_check refused such a schema */
    cl_cbor_dec_init(&vd, v, vl);
    vkind_t vk = kind_of(&vd);
    if (vk == V_INT || vk == V_FLOAT) {
        cl_cbor_dec_t t = vd;
        if (!num_read(&t, &num))
            return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    bool is_obj = vk == V_MAP && text_keys(v, vl);
    const char *text = NULL;
    size_t text_len = 0;
    if (vk == V_TEXT) {
        cl_cbor_dec_t t = vd;
        if (cl_cbor_dec_tstr(&t, &text, &text_len) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (!cl_cbor_utf8_valid((const uint8_t *)text, text_len)) {
            fail(c, "must be valid UTF-8 text");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }

    /* type first: the other keywords only make sense on the right kind */
    if (find_kw(s, sl, KW_TYPE, &d)) {
        unsigned set = type_set(&d);
        if (set == 0)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (!type_matches(set, vk, &num, is_obj)) {
            type_desc(set, a, sizeof a);
            fail(c, "must be of type %s", a);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }

    cl_cbor_dec_init(&d, s, sl);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        kw_t kw = kw_lookup(k, kl);
        cl_cbor_dec_t kv = d; /* the keyword's value */
        if (cl_cbor_dec_skip(&d) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        switch (kw) {
        case KW_ENUM: {
            size_t en;
            bool found = false;
            if (cl_cbor_dec_array(&kv, &en) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            for (size_t j = 0; j < en && !found; j++) {
                const uint8_t *item;
                size_t il;
                if (cl_cbor_dec_raw(&kv, &item, &il) != CL_OK)
                    return CL_FAIL(CL_ERR_BAD_INPUT);
                found = scalar_eq(v, vl, item, il);
            }
            if (!found) {
                fail(c, "must be one of the enum values");
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            break;
        }
        case KW_MINIMUM:
        case KW_MAXIMUM:
        case KW_XMINIMUM:
        case KW_XMAXIMUM: {
            num_t lim;
            if (vk != V_INT && vk != V_FLOAT)
                break;
            if (!num_read(&kv, &lim))
                return CL_FAIL(CL_ERR_BAD_INPUT);
            int r = num_cmp(&num, &lim);
            bool ok = kw == KW_MINIMUM    ? (r == 0 || r == 1)
                      : kw == KW_MAXIMUM  ? (r == 0 || r == -1)
                      : kw == KW_XMINIMUM ? r == 1
                                          : r == -1;
            if (!ok) {
                num_fmt(&lim, a, sizeof a);
                fail(c, "must be %s %s",
                     kw == KW_MINIMUM    ? ">="
                     : kw == KW_MAXIMUM  ? "<="
                     : kw == KW_XMINIMUM ? ">"
                                         : "<",
                     a);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            break;
        }
        case KW_MINLENGTH:
        case KW_MAXLENGTH: {
            uint64_t lim;
            if (vk != V_TEXT)
                break;
            if (!read_count(&kv, &lim))
                return CL_FAIL(CL_ERR_BAD_INPUT);
            uint64_t cp = utf8_count(text, text_len);
            if (kw == KW_MINLENGTH && cp < lim) {
                fail(c, "must have at least %" PRIu64 " characters", lim);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            if (kw == KW_MAXLENGTH && cp > lim) {
                fail(c, "must have at most %" PRIu64 " characters", lim);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            break;
        }
        case KW_MINITEMS:
        case KW_MAXITEMS: {
            uint64_t lim;
            size_t an;
            cl_cbor_dec_t t = vd;
            if (vk != V_ARRAY)
                break;
            if (!read_count(&kv, &lim) || cl_cbor_dec_array(&t, &an) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            if (kw == KW_MINITEMS && (uint64_t)an < lim) {
                fail(c, "must have at least %" PRIu64 " items", lim);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            if (kw == KW_MAXITEMS && (uint64_t)an > lim) {
                fail(c, "must have at most %" PRIu64 " items", lim);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            break;
        }
        case KW_ITEMS: {
            const uint8_t *sub, *item;
            size_t subl, an, il;
            cl_cbor_dec_t t = vd;
            if (vk != V_ARRAY)
                break;
            if (cl_cbor_dec_raw(&kv, &sub, &subl) != CL_OK || cl_cbor_dec_array(&t, &an) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            for (size_t j = 0; j < an; j++) {
                if (cl_cbor_dec_raw(&t, &item, &il) != CL_OK)
                    return CL_FAIL(CL_ERR_BAD_INPUT);
                size_t old = path_push_index(c, j);
                st = validate(c, sub, subl, item, il, depth + 1);
                path_pop(c, old);
                if (st != CL_OK)
                    return st;
            }
            break;
        }
        case KW_COUNT: /* cl_schema_check refused it */ return CL_FAIL(CL_ERR_BAD_INPUT);
        default: /* type (done), object keywords (below), annotations */ break;
        }
    }
    if (is_obj) {
        cl_cbor_dec_t t;
        if (find_kw(s, sl, KW_PROPERTIES, &t) || find_kw(s, sl, KW_REQUIRED, &t) ||
            find_kw(s, sl, KW_ADDITIONAL, &t)) {
            if ((st = validate_object(c, s, sl, v, vl, depth)) != CL_OK)
                return st;
        }
    }
    return CL_OK;
}

cl_status_t cl_schema_validate(const uint8_t *schema, size_t schema_len, const uint8_t *value,
                               size_t value_len, char *why, size_t why_size)
{
    ctx_t c = {.why = why, .why_size = why_size};
    size_t items = 0;
    c.path.s[0] = 0;
    if (why != NULL && why_size > 0)
        why[0] = 0;
    if (schema == NULL || schema_len == 0 || schema_len > CL_SCHEMA_MAX ||
        cl_cbor_validate_seq(schema, schema_len, &items) != CL_OK || items != 1) {
        fail(&c, "invalid schema");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (value == NULL || value_len == 0 ||
        cl_cbor_validate_seq(value, value_len, &items) != CL_OK || items != 1) {
        fail(&c, "not one well-formed CBOR value");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    cl_status_t st = validate(&c, schema, schema_len, value, value_len, 1);
    if (st != CL_OK && why != NULL && why_size > 0 && why[0] == 0)
        fail(&c, "invalid schema");
    return st;
}
