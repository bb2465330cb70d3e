/*
 * scenario.c - scenario templates (scenario.h): parsing and checking a
 * template, applying an owner's parameters, expanding the rule templates for
 * one instance; the detached COSE_Sign1 over the template file, verified in
 * the core and made by the CLI (cl_scn_sign).
 *
 * What: cl_scn_instantiate turns (template CBOR, parameter map, instance
 * name) into a plan: the event types, action types and rules the instance
 * creates, each as its final CBOR document, checked the way the core checks
 * documents put one by one (cl_schema_check, cl_eca_check_rule), plus the
 * final value of every parameter.
 *
 * Why so strict: a template comes from a third party and is installed by an
 * owner who reads its description, not its bytes. Every field is checked
 * and unknown fields are refused (a misspelt "defualt" must not silently
 * make a parameter required, or a misspelt "minimum" unbounded), parameters
 * are typed, and a plan is either complete and valid or not made at all:
 * on failure nothing stays allocated and why names the field.
 *
 * Placeholders {{param.NAME}}: in rule templates (any text value, at any
 * depth) and in type descriptions. A text that is exactly one placeholder
 * becomes the typed value (a client id stays a number); inside a longer
 * text the value is formatted as text ("@{{param.valves}}" -> "@valves").
 * In the JavaScript fields ("if", "script") a placeholder becomes a
 * JavaScript literal instead: numbers as numbers (negative ones in
 * parentheses), texts as quoted and escaped string literals. So
 * `event.properties.ssid === {{param.home_ssid}}` compares with the owner's
 * text whatever it holds: a parameter can never become code. String
 * parameters may not contain "{{" (they would turn into the engine's
 * event-time placeholders once substituted). Other placeholders
 * ({{event.…}}, {{state.…}}) are left for the engine.
 *
 * Bounds: the template is at most CL_SCN_MAX_TEMPLATE bytes and is checked
 * to be one well-formed CBOR item first (so its nesting is at most
 * CL_CBOR_MAX_DEPTH, which bounds the recursion of the expansion); every
 * document is sized by a counting pass before it is allocated.
 */
#include "path.h"
#include "scenario.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h> /* snprintf into buffers only */
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "eca.h"
#include "schema.h"

#define PARAM_NAME_MAX 64
#define PARAM_DESC_MAX 256
#define PARAM_STRING_MAX 256
#define TYPE_DESC_MAX 256 /* as PUT /action-types takes it */
#define SCN_DESC_MAX 512
#define SCN_VERSION_MAX 32
#define MAX_TYPES 32
#define MAX_RULES 64
#define TEXT_MAX CL_ECA_MAX_RULE_DOC /* a substituted text (a rule holds it) */
#define TYPE_DOC_MAX (CL_SCHEMA_MAX + 512)

/* 2^63 as a double: int64 covers [-2^63, 2^63). */
#define TWO63 9223372036854775808.0
#define TWO53 9007199254740992.0

#define PH_OPEN "{{param."
#define PH_OPEN_LEN (sizeof(PH_OPEN) - 1)

typedef enum ptype {
    P_CLIENT,
    P_GROUP,
    P_NUMBER,
    P_INTEGER,
    P_STRING,
    P_BOOLEAN,
} ptype_t;

static const char *const PTYPE_NAMES[] = {"client",  "group",  "number",
                                          "integer", "string", "boolean"};
#define N_PTYPES (sizeof PTYPE_NAMES / sizeof PTYPE_NAMES[0])

/** A number as parameters compare it. */
typedef struct num {
    bool is_int; /* exact int64 in i; otherwise d */
    int64_t i;
    double d;
} num_t;

/** One declared parameter and (once applied) its value. */
typedef struct param {
    const char *name; /* into the template */
    size_t name_len;
    uint8_t type; /* ptype_t */
    bool has_min, has_max, has_value;
    num_t min, max;
    const uint8_t *dflt; /* the "default" item, or NULL */
    size_t dflt_len;
    /* the value */
    num_t num;     /* client, number, integer */
    bool b;        /* boolean */
    const char *s; /* string, group (without '@'): into the template or params */
    size_t s_len;
} param_t;

/** How a text is substituted. */
typedef enum mode {
    M_TYPED, /* a whole-text placeholder keeps its type */
    M_TEXT,  /* always text (type descriptions) */
    M_JS,    /* JavaScript literals ("if", "script") */
} sub_mode_t;

typedef struct scn {
    param_t params[CL_SCN_MAX_PARAMS];
    size_t n_params;
    char *why;
    size_t why_size;
    char where[96]; /* "rule \"x\"", "event type \"y\"", "parameter \"z\"" */
    cl_mpath_t path;
    char text[TEXT_MAX];
    uint8_t tdoc[TYPE_DOC_MAX];
} scn_t;

/* ------------------------------------------------------------------ */
/* Reasons                                                             */
/* ------------------------------------------------------------------ */

static void fail(scn_t *x, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* why = "<where> <path>: <message>" (each part only when set). */
static void fail(scn_t *x, const char *fmt, ...)
{
    char msg[CL_SCN_WHY_MAX];
    va_list ap;
    if (x->why == NULL || x->why_size == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *sep = x->where[0] != 0 && x->path.len > 0 ? " " : "";
    if (x->where[0] != 0 || x->path.len > 0)
        (void)snprintf(x->why, x->why_size, "%s%s%s: %s", x->where, sep, x->path.s, msg);
    else
        (void)snprintf(x->why, x->why_size, "%s", msg);
}

static void set_where(scn_t *x, const char *what, const char *name, size_t len)
{
    if (what == NULL)
        x->where[0] = 0;
    else
        (void)snprintf(x->where, sizeof x->where, "%s \"%.*s\"", what, (int)(len > 64 ? 64 : len),
                       name);
    cl_mpath_pop(&x->path, 0);
}

static size_t path_push(scn_t *x, const char *seg, size_t len)
{
    return cl_mpath_push(&x->path, seg, len);
}

static size_t path_push_index(scn_t *x, size_t i)
{
    return cl_mpath_push_index(&x->path, i);
}

static void path_pop(scn_t *x, size_t old)
{
    cl_mpath_pop(&x->path, old);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static bool name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

/* 1..max bytes of [A-Za-z0-9._-]: scenario, instance, rule, type, group, publisher names. */
static bool name_ok(const char *s, size_t len, size_t max)
{
    if (s == NULL || len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

/* 1..64 bytes of [A-Za-z0-9_-]: parameter names (no '.', they follow "param."). */
static bool param_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > PARAM_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '.' || !name_char(s[i]))
            return false;
    return true;
}

static bool text_is(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && memcmp(s, lit, n) == 0;
}

/* Position of needle in s[from..len), or len. */
static size_t find(const char *s, size_t len, size_t from, const char *needle, size_t nlen)
{
    for (size_t i = from; i + nlen <= len; i++)
        if (memcmp(s + i, needle, nlen) == 0)
            return i;
    return len;
}

static bool is_finite(double d)
{
    return d == d && d - d == 0;
}

static bool peek_is(const cl_cbor_dec_t *d, cl_cbor_type_t want)
{
    cl_cbor_type_t t;
    return cl_cbor_dec_peek(d, &t) == CL_OK && t == want;
}

/* Reads a number (int of any CBOR range, or float); false when the item is none. */
static bool num_read(cl_cbor_dec_t *d, num_t *n)
{
    cl_cbor_type_t t;
    if (cl_cbor_dec_peek(d, &t) != CL_OK)
        return false;
    if (t == CL_CBOR_UINT || t == CL_CBOR_NINT) {
        if (cl_cbor_dec_int(d, &n->i) == CL_OK) {
            n->is_int = true;
            n->d = (double)n->i;
            return true;
        }
        cl_cbor_dec_t k = *d;
        const uint8_t *raw;
        size_t len;
        uint64_t u = 0;
        if (cl_cbor_dec_raw(&k, &raw, &len) != CL_OK)
            return false;
        for (size_t i = 1; i < len; i++)
            u = u << 8 | raw[i];
        n->is_int = false;
        n->d = t == CL_CBOR_UINT ? (double)u : -1.0 - (double)u;
        *d = k;
        return true;
    }
    if (t == CL_CBOR_SIMPLE && d->cur[0] >= 0xf9 && d->cur[0] <= 0xfb &&
        cl_cbor_dec_double(d, &n->d) == CL_OK) {
        n->is_int = false;
        return true;
    }
    return false;
}

/* An integral float within int64 becomes an exact int (so 17.0 and 17 are the same value). */
static void num_norm(num_t *n)
{
    if (!n->is_int && is_finite(n->d) && n->d >= -TWO63 && n->d < TWO63 &&
        (double)(int64_t)n->d == n->d) {
        n->is_int = true;
        n->i = (int64_t)n->d;
    }
}

/* -1, 0, 1 (both finite). */
static int num_cmp(const num_t *a, const num_t *b)
{
    if (a->is_int && b->is_int)
        return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
    if (a->is_int != b->is_int) {
        /* an int against a non-integral or huge float: the double comparison is exact
         * enough, since num_norm made every integral float within int64 an int */
        double ad = a->is_int ? (double)a->i : a->d, bd = b->is_int ? (double)b->i : b->d;
        if (ad != bd)
            return ad < bd ? -1 : 1;
        /* equal as doubles: an int rounded onto a huge float; compare exactly */
        const num_t *in = a->is_int ? a : b;
        double f = a->is_int ? b->d : a->d;
        int r = f >= TWO63 ? -1 : f < -TWO63 ? 1 : (in->i < (int64_t)f ? -1 : in->i > (int64_t)f);
        return a->is_int ? r : -r;
    }
    return a->d < b->d ? -1 : a->d > b->d ? 1 : 0;
}

static int num_fmt(const num_t *n, char *buf, size_t size)
{
    if (n->is_int)
        return snprintf(buf, size, "%" PRId64, n->i);
    return snprintf(buf, size, "%.15g", n->d);
}

/*
 * Whether the decimal text s (as %.15g prints: at most 15 digits) reads back
 * as d. Clinger's fast path: a mantissa below 2^53 times or divided by an
 * exact power of ten up to 1e22 is one correctly rounded operation; beyond
 * that we do not decide (false: the caller prints 17 digits).
 */
static bool reads_back(const char *s, double d)
{
    static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    bool neg = false;
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    if (*s == '-') {
        neg = true;
        s++;
    }
    for (; *s >= '0' && *s <= '9'; s++, digits++)
        m = m * 10 + (uint64_t)(*s - '0');
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, digits++, exp10--)
            m = m * 10 + (uint64_t)(*s - '0');
    if (*s == 'e') {
        int sign = 1, e = 0;
        s++;
        if (*s == '+' || *s == '-')
            sign = *s++ == '-' ? -1 : 1;
        for (; *s >= '0' && *s <= '9' && e < 10000; s++)
            e = e * 10 + (*s - '0');
        exp10 += sign * e;
    }
    if (*s != 0 || digits == 0 || digits > 15 || exp10 > 22 || exp10 < -22 || m > (uint64_t)TWO53)
        return false;
    double v = exp10 >= 0 ? (double)m * POW10[exp10] : (double)m / POW10[-exp10];
    return (neg ? -v : v) == d;
}

/* ------------------------------------------------------------------ */
/* Parameters                                                          */
/* ------------------------------------------------------------------ */

static param_t *param_find(scn_t *x, const char *name, size_t len)
{
    for (size_t i = 0; i < x->n_params; i++)
        if (x->params[i].name_len == len && memcmp(x->params[i].name, name, len) == 0)
            return &x->params[i];
    return NULL;
}

/*
 * Applies a value (a default or the owner's) to p after checking it; why on
 * failure, its message prefixed with pre ("" or "default ").
 */
static cl_status_t param_set(scn_t *x, param_t *p, const uint8_t *v, size_t vl, const char *pre)
{
    cl_cbor_dec_t d;
    num_t n;
    char a[40];
    cl_cbor_dec_init(&d, v, vl);
    switch ((ptype_t)p->type) {
    case P_CLIENT:
        if (!num_read(&d, &n))
            goto bad_client;
        num_norm(&n);
        if (!n.is_int || n.i < 1 || n.i > (int64_t)UINT32_MAX)
            goto bad_client;
        p->num = n;
        break;
    case P_NUMBER:
    case P_INTEGER:
        if (!num_read(&d, &n) || (!n.is_int && !is_finite(n.d))) {
            fail(x, "%smust be a number", pre);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        num_norm(&n);
        if (p->type == P_INTEGER && !n.is_int) {
            fail(x, "%smust be an integer", pre);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (p->has_min && num_cmp(&n, &p->min) < 0) {
            (void)num_fmt(&p->min, a, sizeof a);
            fail(x, "%smust be >= %s", pre, a);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (p->has_max && num_cmp(&n, &p->max) > 0) {
            (void)num_fmt(&p->max, a, sizeof a);
            fail(x, "%smust be <= %s", pre, a);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        p->num = n;
        break;
    case P_STRING:
        if (cl_cbor_dec_tstr(&d, &p->s, &p->s_len) != CL_OK || p->s_len > PARAM_STRING_MAX ||
            !cl_cbor_utf8_valid((const uint8_t *)p->s, p->s_len)) {
            fail(x, "%smust be a text of at most %d bytes", pre, PARAM_STRING_MAX);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (find(p->s, p->s_len, 0, "{{", 2) < p->s_len) {
            fail(x, "%smust not contain \"{{\"", pre);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        break;
    case P_GROUP:
        if (cl_cbor_dec_tstr(&d, &p->s, &p->s_len) != CL_OK)
            goto bad_group;
        if (p->s_len > 0 && p->s[0] == '@') { /* "@valves" names the group too */
            p->s++;
            p->s_len--;
        }
        if (!name_ok(p->s, p->s_len, CL_SCN_NAME_MAX))
            goto bad_group;
        break;
    case P_BOOLEAN:
        if (cl_cbor_dec_bool(&d, &p->b) != CL_OK) {
            fail(x, "%smust be true or false", pre);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        break;
    }
    if (!cl_cbor_dec_at_end(&d))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    p->has_value = true;
    return CL_OK;
bad_client:
    fail(x, "%smust be a client id (an integer from 1 to 4294967295)", pre);
    return CL_FAIL(CL_ERR_BAD_INPUT);
bad_group:
    fail(x, "%smust be a group name (1..64 characters [A-Za-z0-9._-])", pre);
    return CL_FAIL(CL_ERR_BAD_INPUT);
}

/* One declaration: {"type", "description"?, "default"?, "minimum"?, "maximum"?}. */
static cl_status_t param_declare(scn_t *x, param_t *p, cl_cbor_dec_t *d)
{
    size_t n;
    bool has_type = false, seen_desc = false;
    const uint8_t *min = NULL, *max = NULL;
    size_t min_len = 0, max_len = 0;
    if (!peek_is(d, CL_CBOR_MAP) || cl_cbor_dec_map(d, &n) != CL_OK) {
        fail(x, "must be an object {\"type\", \"default\"?, ...}");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    for (size_t i = 0; i < n; i++) {
        const char *k, *s;
        size_t kl, sl;
        if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK) {
            fail(x, "keys must be texts");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (text_is(k, kl, "type") && !has_type) {
            size_t t = N_PTYPES;
            if (cl_cbor_dec_tstr(d, &s, &sl) == CL_OK)
                for (t = 0; t < N_PTYPES && !text_is(s, sl, PTYPE_NAMES[t]); t++)
                    ;
            if (t == N_PTYPES) {
                fail(x, "type: one of client, group, number, integer, string, boolean");
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            p->type = (uint8_t)t;
            has_type = true;
        } else if (text_is(k, kl, "description") && !seen_desc) {
            if (cl_cbor_dec_tstr(d, &s, &sl) != CL_OK || sl > PARAM_DESC_MAX ||
                !cl_cbor_utf8_valid((const uint8_t *)s, sl)) {
                fail(x, "description: a text of at most %d bytes", PARAM_DESC_MAX);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            seen_desc = true;
        } else if (text_is(k, kl, "default") && p->dflt == NULL) {
            if (cl_cbor_dec_raw(d, &p->dflt, &p->dflt_len) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        } else if (text_is(k, kl, "minimum") && min == NULL) {
            if (cl_cbor_dec_raw(d, &min, &min_len) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        } else if (text_is(k, kl, "maximum") && max == NULL) {
            if (cl_cbor_dec_raw(d, &max, &max_len) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        } else {
            fail(x,
                 "unknown or repeated field \"%.*s\" (type, description, default, minimum, "
                 "maximum)",
                 (int)(kl > 32 ? 32 : kl), k);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }
    if (!has_type) {
        fail(x, "type: missing (client, group, number, integer, string, boolean)");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    const uint8_t *lim[2] = {min, max};
    size_t lim_len[2] = {min_len, max_len};
    for (int j = 0; j < 2; j++) {
        const char *kw = j == 0 ? "minimum" : "maximum";
        num_t *out = j == 0 ? &p->min : &p->max;
        cl_cbor_dec_t ld;
        if (lim[j] == NULL)
            continue;
        if (p->type != P_NUMBER && p->type != P_INTEGER) {
            fail(x, "%s: only number and integer parameters have bounds", kw);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        cl_cbor_dec_init(&ld, lim[j], lim_len[j]);
        if (!num_read(&ld, out) || (!out->is_int && !is_finite(out->d))) {
            fail(x, "%s: a number", kw);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        num_norm(out);
        if (j == 0)
            p->has_min = true;
        else
            p->has_max = true;
    }
    if (p->has_min && p->has_max && num_cmp(&p->min, &p->max) > 0) {
        fail(x, "minimum is greater than maximum");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (p->dflt != NULL) {
        cl_status_t st = param_set(x, p, p->dflt, p->dflt_len, "default ");
        if (st != CL_OK)
            return st;
    }
    return CL_OK;
}

/* "parameters": {name: declaration}. */
static cl_status_t params_declare(scn_t *x, const uint8_t *raw, size_t len)
{
    cl_cbor_dec_t d;
    size_t n;
    cl_status_t st;
    cl_cbor_dec_init(&d, raw, len);
    set_where(x, NULL, NULL, 0);
    if (!peek_is(&d, CL_CBOR_MAP) || cl_cbor_dec_map(&d, &n) != CL_OK) {
        fail(x, "parameters: an object {name: {\"type\", ...}}");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (n > CL_SCN_MAX_PARAMS) {
        fail(x, "parameters: at most %d", CL_SCN_MAX_PARAMS);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK || !param_name_ok(k, kl)) {
            fail(x, "parameters: names are 1..64 characters [A-Za-z0-9_-]");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        set_where(x, "parameter", k, kl);
        if (param_find(x, k, kl) != NULL) {
            fail(x, "declared twice");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        param_t *p = &x->params[x->n_params];
        memset(p, 0, sizeof *p);
        p->name = k;
        p->name_len = kl;
        if ((st = param_declare(x, p, &d)) != CL_OK)
            return st;
        x->n_params++;
    }
    set_where(x, NULL, NULL, 0);
    return CL_OK;
}

/* The owner's map name -> value; then every parameter must have a value. */
static cl_status_t params_apply(scn_t *x, const uint8_t *params, size_t len)
{
    cl_status_t st;
    if (params != NULL && len > 0) {
        cl_cbor_dec_t d;
        size_t n, items = 0;
        cl_cbor_dec_init(&d, params, len);
        if (cl_cbor_validate_seq(params, len, &items) != CL_OK || items != 1 ||
            !peek_is(&d, CL_CBOR_MAP) || cl_cbor_dec_map(&d, &n) != CL_OK) {
            fail(x, "params: a map name -> value");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        const uint8_t *first = d.cur;
        for (size_t i = 0; i < n; i++) {
            const char *k;
            size_t kl;
            const uint8_t *v;
            size_t vl;
            if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK) {
                fail(x, "params: names must be texts");
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            int shown = kl > 64 ? 64 : (int)kl;
            param_t *p = param_find(x, k, kl);
            if (p == NULL) {
                fail(x, "unknown parameter \"%.*s\"", shown, k);
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            /* given twice? (the first n-1 keys before this one) */
            cl_cbor_dec_t e;
            cl_cbor_dec_init(&e, first, len - (size_t)(first - params));
            for (size_t j = 0; j < i; j++) {
                const char *k2;
                size_t kl2;
                if (cl_cbor_dec_tstr(&e, &k2, &kl2) != CL_OK || cl_cbor_dec_skip(&e) != CL_OK)
                    return CL_FAIL(CL_ERR_BAD_INPUT);
                if (kl2 == kl && memcmp(k, k2, kl) == 0) {
                    fail(x, "parameter \"%.*s\" given twice", shown, k);
                    return CL_FAIL(CL_ERR_BAD_INPUT);
                }
            }
            if (cl_cbor_dec_raw(&d, &v, &vl) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            set_where(x, "parameter", k, kl);
            if ((st = param_set(x, p, v, vl, "")) != CL_OK)
                return st;
            set_where(x, NULL, NULL, 0);
        }
    }
    for (size_t i = 0; i < x->n_params; i++) {
        param_t *p = &x->params[i];
        if (!p->has_value) {
            fail(x, "missing required parameter \"%.*s\" (%s)", (int)p->name_len, p->name,
                 PTYPE_NAMES[p->type]);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }
    return CL_OK;
}

static void param_put_typed(cl_cbor_enc_t *e, const param_t *p)
{
    switch ((ptype_t)p->type) {
    case P_CLIENT: cl_cbor_enc_int(e, p->num.i); break;
    case P_NUMBER:
    case P_INTEGER:
        if (p->num.is_int)
            cl_cbor_enc_int(e, p->num.i);
        else
            cl_cbor_enc_double(e, p->num.d);
        break;
    case P_GROUP:
    case P_STRING: cl_cbor_enc_tstr(e, p->s, p->s_len); break;
    case P_BOOLEAN: cl_cbor_enc_bool(e, p->b); break;
    }
}

/* ------------------------------------------------------------------ */
/* Substitution                                                        */
/* ------------------------------------------------------------------ */

/* Appends n bytes to x->text at *len; false when the text grows beyond TEXT_MAX. */
static bool text_put(scn_t *x, size_t *len, const char *s, size_t n)
{
    if (n > TEXT_MAX - *len)
        return false;
    memcpy(x->text + *len, s, n);
    *len += n;
    return true;
}

/* A text as a JavaScript string literal: quoted, escaped, no line terminators. */
static bool text_put_js_string(scn_t *x, size_t *len, const char *s, size_t n)
{
    if (!text_put(x, len, "\"", 1))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char esc[8];
        if (ch == '"' || ch == '\\') {
            esc[0] = '\\';
            esc[1] = (char)ch;
            if (!text_put(x, len, esc, 2))
                return false;
        } else if (ch < 0x20 || ch == 0x7f) {
            (void)snprintf(esc, sizeof esc, "\\u%04x", ch);
            if (!text_put(x, len, esc, 6))
                return false;
        } else if (ch == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
            /* U+2028, U+2029 end a line inside an ES5 string literal */
            if (!text_put(x, len, (unsigned char)s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6))
                return false;
            i += 2;
        } else if (!text_put(x, len, s + i, 1)) {
            return false;
        }
    }
    return text_put(x, len, "\"", 1);
}

/* Appends a parameter's value as text or as a JavaScript literal. */
static bool text_put_param(scn_t *x, size_t *len, const param_t *p, sub_mode_t mode)
{
    char b[48];
    int k;
    switch ((ptype_t)p->type) {
    case P_GROUP:
    case P_STRING:
        return mode == M_JS ? text_put_js_string(x, len, p->s, p->s_len)
                            : text_put(x, len, p->s, p->s_len);
    case P_BOOLEAN: return text_put(x, len, p->b ? "true" : "false", p->b ? 4 : 5);
    case P_CLIENT:
    case P_NUMBER:
    case P_INTEGER: break;
    }
    if (p->num.is_int) {
        k = snprintf(b, sizeof b, mode == M_JS && p->num.i < 0 ? "(%" PRId64 ")" : "%" PRId64,
                     p->num.i);
    } else if (mode != M_JS) {
        k = snprintf(b, sizeof b, "%.15g", p->num.d);
    } else {
        /* the exact value: the shortest of 15 or 17 digits that reads back */
        char digits[32];
        int dk = snprintf(digits, sizeof digits, "%.15g", p->num.d);
        if (dk <= 0 || (size_t)dk >= sizeof digits || !reads_back(digits, p->num.d))
            dk = snprintf(digits, sizeof digits, "%.17g", p->num.d);
        if (dk <= 0 || (size_t)dk >= sizeof digits)
            return false;
        k = snprintf(b, sizeof b, digits[0] == '-' ? "(%s)" : "%s", digits);
    }
    return k > 0 && (size_t)k < sizeof b && text_put(x, len, b, (size_t)k);
}

/*
 * Parses the placeholder at s[at] (which starts with "{{param."): its end
 * (one past "}}") and its parameter. why on a malformed or unknown one.
 */
static cl_status_t ph_parse(scn_t *x, const char *s, size_t len, size_t at, size_t *end,
                            const param_t **p)
{
    size_t name_at = at + PH_OPEN_LEN;
    size_t close = find(s, len, name_at, "}}", 2);
    if (close == len) {
        fail(x, "placeholder \"{{param.\" without \"}}\"");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    const char *name = s + name_at;
    size_t nl = close - name_at;
    if (!param_name_ok(name, nl)) {
        fail(x,
             "bad placeholder \"{{param.%.*s}}\" (a parameter name is 1..64 characters "
             "[A-Za-z0-9_-])",
             (int)(nl > 40 ? 40 : nl), name);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    *p = param_find(x, name, nl);
    if (*p == NULL) {
        fail(x, "{{param.%.*s}}: no such parameter", (int)nl, name);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    *end = close + 2;
    return CL_OK;
}

/*
 * Substitutes the {{param.…}} placeholders of s: either *typed is set (M_TYPED,
 * the whole text is one placeholder) or the text is x->text[0..*n).
 */
static cl_status_t subst_build(scn_t *x, const char *s, size_t len, sub_mode_t mode,
                               const param_t **typed, size_t *n)
{
    cl_status_t st;
    size_t at = find(s, len, 0, PH_OPEN, PH_OPEN_LEN), from = 0, end;
    const param_t *p;
    *typed = NULL;
    *n = 0;
    if (mode == M_TYPED && at == 0) {
        if ((st = ph_parse(x, s, len, at, &end, &p)) != CL_OK)
            return st;
        if (end == len) {
            *typed = p;
            return CL_OK;
        }
    }
    while (at < len) {
        if (!text_put(x, n, s + from, at - from))
            goto too_long;
        if ((st = ph_parse(x, s, len, at, &end, &p)) != CL_OK)
            return st;
        if (!text_put_param(x, n, p, mode))
            goto too_long;
        from = end;
        at = find(s, len, from, PH_OPEN, PH_OPEN_LEN);
    }
    if (!text_put(x, n, s + from, len - from))
        goto too_long;
    return CL_OK;
too_long:
    fail(x, "text longer than %d bytes once its parameters are substituted", TEXT_MAX);
    return CL_FAIL(CL_ERR_LIMIT);
}

/* Writes the text s, its {{param.…}} placeholders substituted, to e. */
static cl_status_t subst_text(scn_t *x, const char *s, size_t len, sub_mode_t mode,
                              cl_cbor_enc_t *e)
{
    cl_status_t st;
    const param_t *typed;
    size_t n;
    if (find(s, len, 0, PH_OPEN, PH_OPEN_LEN) == len) {
        cl_cbor_enc_tstr(e, s, len);
        return CL_OK;
    }
    if ((st = subst_build(x, s, len, mode, &typed, &n)) != CL_OK)
        return st;
    if (typed != NULL)
        param_put_typed(e, typed);
    else
        cl_cbor_enc_tstr(e, x->text, n);
    return CL_OK;
}

/* Copies one item from d to e, substituting placeholders in its texts (keys excepted). */
static cl_status_t subst_item(scn_t *x, cl_cbor_dec_t *d, cl_cbor_enc_t *e, sub_mode_t mode,
                              unsigned depth)
{
    cl_status_t st;
    cl_cbor_type_t t;
    size_t n;
    if (depth > CL_CBOR_MAX_DEPTH || cl_cbor_dec_peek(d, &t) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT); /* the template was validated as a whole */
    switch (t) {
    case CL_CBOR_ARRAY:
        if (cl_cbor_dec_array(d, &n) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        cl_cbor_enc_array(e, n);
        for (size_t i = 0; i < n; i++) {
            size_t old = path_push_index(x, i);
            st = subst_item(x, d, e, mode, depth + 1);
            path_pop(x, old);
            if (st != CL_OK)
                return st;
        }
        return CL_OK;
    case CL_CBOR_MAP:
        if (cl_cbor_dec_map(d, &n) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        cl_cbor_enc_map(e, n);
        for (size_t i = 0; i < n; i++) {
            const uint8_t *raw;
            size_t rl;
            const char *k = NULL;
            size_t kl = 0;
            cl_cbor_dec_t kd = *d;
            if (cl_cbor_dec_raw(d, &raw, &rl) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            if (cl_cbor_dec_tstr(&kd, &k, &kl) == CL_OK &&
                find(k, kl, 0, PH_OPEN, PH_OPEN_LEN) < kl) {
                fail(x, "placeholders are not allowed in keys");
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
            cl_cbor_enc_raw(e, raw, rl);
            size_t old = k != NULL ? path_push(x, k, kl) : x->path.len;
            st = subst_item(x, d, e, mode, depth + 1);
            path_pop(x, old);
            if (st != CL_OK)
                return st;
        }
        return CL_OK;
    case CL_CBOR_TAG: {
        uint64_t tag;
        if (cl_cbor_dec_tag(d, &tag) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        cl_cbor_enc_tag(e, tag);
        return subst_item(x, d, e, mode, depth + 1);
    }
    case CL_CBOR_TSTR: {
        const char *s;
        if (cl_cbor_dec_tstr(d, &s, &n) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        return subst_text(x, s, n, mode, e);
    }
    default: {
        const uint8_t *raw;
        if (cl_cbor_dec_raw(d, &raw, &n) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        cl_cbor_enc_raw(e, raw, n);
        return CL_OK;
    }
    }
}

/* ------------------------------------------------------------------ */
/* Objects                                                             */
/* ------------------------------------------------------------------ */

/* Adds an object to the plan with a heap copy of doc; a duplicate name is refused. */
static cl_status_t plan_add(scn_t *x, cl_scn_plan_t *plan, cl_scn_kind_t kind, const char *name,
                            size_t name_len, const uint8_t *doc, size_t doc_len)
{
    for (size_t i = 0; i < plan->n_objects; i++) {
        const cl_scn_object_t *o = &plan->objects[i];
        if (o->kind == kind && strlen(o->name) == name_len &&
            memcmp(o->name, name, name_len) == 0) {
            fail(x, "defined twice");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }
    if (plan->n_objects >= CL_SCN_MAX_OBJECTS || name_len >= sizeof plan->objects[0].name) {
        fail(x, "too many objects");
        return CL_FAIL(CL_ERR_LIMIT);
    }
    uint8_t *copy = malloc(doc_len > 0 ? doc_len : 1);
    if (copy == NULL) {
        fail(x, "out of memory");
        return CL_FAIL(CL_ERR_FULL);
    }
    memcpy(copy, doc, doc_len);
    cl_scn_object_t *o = &plan->objects[plan->n_objects++];
    o->kind = (uint8_t)kind;
    memcpy(o->name, name, name_len);
    o->name[name_len] = 0;
    o->doc = copy;
    o->doc_len = doc_len;
    return CL_OK;
}

/* One event or action type: {"name", "description"?, "schema"?} -> the same, substituted. */
static cl_status_t type_one(scn_t *x, cl_scn_plan_t *plan, cl_scn_kind_t kind, cl_cbor_dec_t *d,
                            size_t index)
{
    cl_status_t st;
    const char *what = kind == CL_SCN_EVENT_TYPE ? "event type" : "action type";
    const char *name = NULL, *desc = NULL;
    size_t n, nl = 0, dl = 0, sl = 0;
    const uint8_t *schema = NULL;
    char label[48];

    (void)snprintf(label, sizeof label, "%s_types[%zu]",
                   kind == CL_SCN_EVENT_TYPE ? "event" : "action", index);
    set_where(x, NULL, NULL, 0);
    (void)path_push(x, label, strlen(label));
    if (!peek_is(d, CL_CBOR_MAP) || cl_cbor_dec_map(d, &n) != CL_OK) {
        fail(x, "must be an object {\"name\", \"description\"?, \"schema\"?}");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK) {
            fail(x, "keys must be texts");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (text_is(k, kl, "name") && name == NULL) {
            if (cl_cbor_dec_tstr(d, &name, &nl) != CL_OK || !name_ok(name, nl, CL_SCN_NAME_MAX)) {
                fail(x, "name: 1..64 characters [A-Za-z0-9._-]");
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
        } else if (text_is(k, kl, "description") && desc == NULL) {
            if (cl_cbor_dec_tstr(d, &desc, &dl) != CL_OK ||
                !cl_cbor_utf8_valid((const uint8_t *)desc, dl)) {
                fail(x, "description: a text");
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
        } else if (text_is(k, kl, "schema") && schema == NULL) {
            if (cl_cbor_dec_raw(d, &schema, &sl) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        } else {
            fail(x, "unknown or repeated field \"%.*s\" (name, description, schema)",
                 (int)(kl > 32 ? 32 : kl), k);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }
    if (name == NULL) {
        fail(x, "name: missing");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    set_where(x, what, name, nl);
    if (schema != NULL) {
        char why[CL_SCN_WHY_MAX];
        if ((st = cl_schema_check(schema, sl, why, sizeof why)) != CL_OK) {
            fail(x, "schema: %s", why);
            return st;
        }
    }
    /* the document, as PUT /action-types builds it: name, description, schema */
    cl_cbor_enc_t e;
    size_t len;
    cl_cbor_enc_init(&e, x->tdoc, sizeof x->tdoc);
    cl_cbor_enc_map(&e, 1 + (desc != NULL) + (schema != NULL));
    cl_cbor_enc_tstr_z(&e, "name");
    cl_cbor_enc_tstr(&e, name, nl);
    if (desc != NULL) {
        const param_t *typed;
        size_t tl;
        (void)path_push(x, "description", 11);
        if ((st = subst_build(x, desc, dl, M_TEXT, &typed, &tl)) != CL_OK)
            return st;
        if (tl > TYPE_DESC_MAX) {
            fail(x, "longer than %d bytes (parameters substituted)", TYPE_DESC_MAX);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        path_pop(x, 0);
        cl_cbor_enc_tstr_z(&e, "description");
        cl_cbor_enc_tstr(&e, x->text, tl);
    }
    if (schema != NULL) {
        cl_cbor_enc_tstr_z(&e, "schema");
        cl_cbor_enc_raw(&e, schema, sl);
    }
    if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
        fail(x, "document too large");
        return CL_FAIL(CL_ERR_LIMIT);
    }
    return plan_add(x, plan, kind, name, nl, x->tdoc, len);
}

static cl_status_t types_all(scn_t *x, cl_scn_plan_t *plan, cl_scn_kind_t kind, const uint8_t *raw,
                             size_t len)
{
    cl_status_t st;
    cl_cbor_dec_t d;
    size_t n;
    const char *field = kind == CL_SCN_EVENT_TYPE ? "event_types" : "action_types";
    cl_cbor_dec_init(&d, raw, len);
    set_where(x, NULL, NULL, 0);
    if (!peek_is(&d, CL_CBOR_ARRAY) || cl_cbor_dec_array(&d, &n) != CL_OK) {
        fail(x, "%s: an array of {\"name\", \"description\"?, \"schema\"?}", field);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (n > MAX_TYPES) {
        fail(x, "%s: at most %d", field, MAX_TYPES);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    for (size_t i = 0; i < n; i++)
        if ((st = type_one(x, plan, kind, &d, i)) != CL_OK)
            return st;
    return CL_OK;
}

/* Writes the expanded rule (name rewritten, placeholders substituted) to e. */
static cl_status_t rule_expand(scn_t *x, const uint8_t *raw, size_t len, const char *full,
                               size_t full_len, cl_cbor_enc_t *e)
{
    cl_status_t st;
    cl_cbor_dec_t d;
    size_t n;
    cl_cbor_dec_init(&d, raw, len);
    if (cl_cbor_dec_map(&d, &n) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    cl_cbor_enc_map(e, n);
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK) {
            fail(x, "keys must be texts");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        cl_cbor_enc_tstr(e, k, kl);
        if (text_is(k, kl, "name")) {
            if (cl_cbor_dec_skip(&d) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            cl_cbor_enc_tstr(e, full, full_len);
            continue;
        }
        sub_mode_t mode = text_is(k, kl, "if") || text_is(k, kl, "script") ? M_JS : M_TYPED;
        size_t old = path_push(x, k, kl);
        st = subst_item(x, &d, e, mode, 1);
        path_pop(x, old);
        if (st != CL_OK)
            return st;
    }
    return CL_OK;
}

static cl_status_t rule_one(scn_t *x, cl_scn_plan_t *plan, cl_cbor_dec_t *d, size_t index,
                            const char *instance, size_t instance_len)
{
    cl_status_t st;
    const uint8_t *raw;
    size_t len, n;
    const char *name = NULL;
    size_t nl = 0;
    char label[32];
    cl_cbor_dec_t m;

    (void)snprintf(label, sizeof label, "rules[%zu]", index);
    set_where(x, NULL, NULL, 0);
    (void)path_push(x, label, strlen(label));
    if (!peek_is(d, CL_CBOR_MAP) || cl_cbor_dec_raw(d, &raw, &len) != CL_OK) {
        fail(x, "must be a rule (an object)");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    /* its name first, for every later reason */
    cl_cbor_dec_init(&m, raw, len);
    if (cl_cbor_dec_map(&m, &n) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (cl_cbor_dec_tstr(&m, &k, &kl) != CL_OK) {
            fail(x, "keys must be texts");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (text_is(k, kl, "name")) {
            if (name != NULL || cl_cbor_dec_tstr(&m, &name, &nl) != CL_OK ||
                !name_ok(name, nl, CL_SCN_NAME_MAX)) {
                fail(x, "name: 1..64 characters [A-Za-z0-9._-]");
                return CL_FAIL(CL_ERR_BAD_INPUT);
            }
        } else if (cl_cbor_dec_skip(&m) != CL_OK) {
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }
    if (name == NULL) {
        fail(x, "name: missing");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    set_where(x, "rule", name, nl);
    /* "<instance>.<name>": still a rule name, so at most 64 bytes */
    char full[CL_ECA_NAME_MAX + 1];
    size_t full_len = instance_len + 1 + nl;
    if (full_len > CL_ECA_NAME_MAX) {
        fail(x, "\"%.*s.%.*s\" is longer than %d characters (shorten the instance name)",
             (int)instance_len, instance, (int)nl, name, CL_ECA_NAME_MAX);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    memcpy(full, instance, instance_len);
    full[instance_len] = '.';
    memcpy(full + instance_len + 1, name, nl);
    full[full_len] = 0;

    /* count, then write */
    cl_cbor_enc_t e;
    size_t doc_len;
    cl_cbor_enc_init(&e, NULL, 0);
    if ((st = rule_expand(x, raw, len, full, full_len, &e)) != CL_OK)
        return st;
    if (cl_cbor_enc_finish(&e, &doc_len) != CL_OK || doc_len > CL_ECA_MAX_RULE_DOC) {
        fail(x, "larger than %d bytes once its parameters are substituted", CL_ECA_MAX_RULE_DOC);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    uint8_t *doc = malloc(doc_len);
    if (doc == NULL) {
        fail(x, "out of memory");
        return CL_FAIL(CL_ERR_FULL);
    }
    cl_cbor_enc_init(&e, doc, doc_len);
    st = rule_expand(x, raw, len, full, full_len, &e);
    if (st == CL_OK && cl_cbor_enc_finish(&e, &doc_len) != CL_OK)
        st = CL_FAIL(CL_ERR_BAD_INPUT);
    if (st == CL_OK) {
        char why[CL_ECA_WHY_MAX];
        why[0] = 0;
        st = cl_eca_check_rule(doc, doc_len, NULL, NULL, why, sizeof why);
        if (st != CL_OK)
            fail(x, "%s", why[0] != 0 ? why : "invalid rule");
    }
    if (st == CL_OK)
        st = plan_add(x, plan, CL_SCN_RULE, full, full_len, doc, doc_len);
    cl_wipe(doc, doc_len);
    free(doc);
    return st;
}

static cl_status_t rules_all(scn_t *x, cl_scn_plan_t *plan, const uint8_t *raw, size_t len,
                             const char *instance, size_t instance_len)
{
    cl_status_t st;
    cl_cbor_dec_t d;
    size_t n;
    cl_cbor_dec_init(&d, raw, len);
    set_where(x, NULL, NULL, 0);
    if (!peek_is(&d, CL_CBOR_ARRAY) || cl_cbor_dec_array(&d, &n) != CL_OK) {
        fail(x, "rules: an array of rule templates");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (n > MAX_RULES) {
        fail(x, "rules: at most %d", MAX_RULES);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    for (size_t i = 0; i < n; i++)
        if ((st = rule_one(x, plan, &d, i, instance, instance_len)) != CL_OK)
            return st;
    return CL_OK;
}

/* The final value of every parameter, in declaration order. */
static cl_status_t params_encode(scn_t *x, cl_scn_plan_t *plan)
{
    cl_cbor_enc_t e;
    size_t len;
    for (int pass = 0; pass < 2; pass++) {
        cl_cbor_enc_init(&e, plan->params, plan->params_len);
        cl_cbor_enc_map(&e, x->n_params);
        for (size_t i = 0; i < x->n_params; i++) {
            cl_cbor_enc_tstr(&e, x->params[i].name, x->params[i].name_len);
            param_put_typed(&e, &x->params[i]);
        }
        if (cl_cbor_enc_finish(&e, &len) != CL_OK)
            return CL_FAIL(CL_ERR_LIMIT);
        if (pass == 0) {
            plan->params = malloc(len);
            if (plan->params == NULL)
                return CL_FAIL(CL_ERR_FULL);
            plan->params_len = len;
        }
    }
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* The template                                                        */
/* ------------------------------------------------------------------ */

enum {
    F_SCENARIO,
    F_VERSION,
    F_PUBLISHER,
    F_DESCRIPTION,
    F_PARAMETERS,
    F_EVENT_TYPES,
    F_ACTION_TYPES,
    F_RULES,
    F_COUNT
};
static const char *const FIELDS[F_COUNT] = {"scenario",     "version",    "publisher",
                                            "description",  "parameters", "event_types",
                                            "action_types", "rules"};

/* Copies a checked text field into a plan string. */
static bool text_field(const uint8_t *raw, size_t len, char *out, size_t out_size, size_t max,
                       bool is_name)
{
    cl_cbor_dec_t d;
    const char *s;
    size_t sl;
    cl_cbor_dec_init(&d, raw, len);
    if (cl_cbor_dec_tstr(&d, &s, &sl) != CL_OK || sl == 0 || sl > max || sl >= out_size)
        return false;
    if (is_name && !name_ok(s, sl, max))
        return false;
    for (size_t i = 0; i < sl && !is_name; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    memcpy(out, s, sl);
    out[sl] = 0;
    return true;
}

static cl_status_t instantiate(scn_t *x, const uint8_t *tmpl, size_t tmpl_len,
                               const uint8_t *params, size_t params_len, const char *instance,
                               size_t instance_len, cl_scn_plan_t *plan)
{
    cl_status_t st;
    cl_cbor_dec_t d;
    size_t n, items = 0;
    const uint8_t *raw[F_COUNT] = {NULL};
    size_t raw_len[F_COUNT] = {0};

    if (!name_ok(instance, instance_len, CL_SCN_NAME_MAX)) {
        fail(x, "instance name: 1..64 characters [A-Za-z0-9._-]");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (tmpl_len > CL_SCN_MAX_TEMPLATE) {
        fail(x, "template larger than %u bytes", CL_SCN_MAX_TEMPLATE);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    cl_cbor_dec_init(&d, tmpl, tmpl_len);
    if (cl_cbor_validate_seq(tmpl, tmpl_len, &items) != CL_OK || items != 1 ||
        !peek_is(&d, CL_CBOR_MAP) || cl_cbor_dec_map(&d, &n) != CL_OK) {
        fail(x, "template: one object {\"scenario\", \"version\", ...}");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        int f;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK) {
            fail(x, "template: keys must be texts");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        for (f = 0; f < F_COUNT; f++)
            if (text_is(k, kl, FIELDS[f]))
                break;
        if (f == F_COUNT || raw[f] != NULL) {
            fail(x, "template: unknown or repeated field \"%.*s\"", (int)(kl > 32 ? 32 : kl), k);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if (cl_cbor_dec_raw(&d, &raw[f], &raw_len[f]) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (raw[F_SCENARIO] == NULL || !text_field(raw[F_SCENARIO], raw_len[F_SCENARIO], plan->scenario,
                                               sizeof plan->scenario, CL_SCN_NAME_MAX, true)) {
        fail(x, "scenario: its name, 1..64 characters [A-Za-z0-9._-]");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (raw[F_VERSION] == NULL || !text_field(raw[F_VERSION], raw_len[F_VERSION], plan->version,
                                              sizeof plan->version, SCN_VERSION_MAX, false)) {
        fail(x, "version: 1..%d printable characters without spaces", SCN_VERSION_MAX);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (raw[F_PUBLISHER] != NULL &&
        !text_field(raw[F_PUBLISHER], raw_len[F_PUBLISHER], plan->publisher, sizeof plan->publisher,
                    CL_SCN_NAME_MAX, true)) {
        fail(x, "publisher: 1..64 characters [A-Za-z0-9._-]");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (raw[F_DESCRIPTION] != NULL) {
        const char *s;
        size_t sl;
        cl_cbor_dec_init(&d, raw[F_DESCRIPTION], raw_len[F_DESCRIPTION]);
        if (cl_cbor_dec_tstr(&d, &s, &sl) != CL_OK || sl > SCN_DESC_MAX ||
            !cl_cbor_utf8_valid((const uint8_t *)s, sl)) {
            fail(x, "description: a text of at most %d bytes", SCN_DESC_MAX);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
    }
    if (raw[F_PARAMETERS] != NULL &&
        (st = params_declare(x, raw[F_PARAMETERS], raw_len[F_PARAMETERS])) != CL_OK)
        return st;
    if ((st = params_apply(x, params, params_len)) != CL_OK)
        return st;
    if (raw[F_EVENT_TYPES] != NULL &&
        (st = types_all(x, plan, CL_SCN_EVENT_TYPE, raw[F_EVENT_TYPES], raw_len[F_EVENT_TYPES])) !=
            CL_OK)
        return st;
    if (raw[F_ACTION_TYPES] != NULL &&
        (st = types_all(x, plan, CL_SCN_ACTION_TYPE, raw[F_ACTION_TYPES],
                        raw_len[F_ACTION_TYPES])) != CL_OK)
        return st;
    if (raw[F_RULES] != NULL &&
        (st = rules_all(x, plan, raw[F_RULES], raw_len[F_RULES], instance, instance_len)) != CL_OK)
        return st;
    set_where(x, NULL, NULL, 0);
    if (plan->n_objects == 0) {
        fail(x, "template: creates nothing (no event_types, action_types or rules)");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if ((st = params_encode(x, plan)) != CL_OK) {
        fail(x, "out of memory");
        return st;
    }
    return CL_OK;
}

cl_status_t cl_scn_instantiate(const uint8_t *tmpl, size_t tmpl_len, const uint8_t *params,
                               size_t params_len, const char *instance, size_t instance_len,
                               cl_scn_plan_t *plan, char *why, size_t why_size)
{
    cl_status_t st;
    if (why != NULL && why_size > 0)
        why[0] = 0;
    if (plan == NULL || (tmpl == NULL && tmpl_len > 0) || (params == NULL && params_len > 0) ||
        (instance == NULL && instance_len > 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    memset(plan, 0, sizeof *plan);
    scn_t *x = calloc(1, sizeof *x);
    if (x == NULL)
        return CL_FAIL(CL_ERR_FULL);
    x->why = why;
    x->why_size = why_size;
    st = instantiate(x, tmpl, tmpl_len, params, params_len, instance, instance_len, plan);
    if (st != CL_OK) {
        cl_scn_plan_free(plan);
        if (why != NULL && why_size > 0 && why[0] == 0)
            (void)snprintf(why, why_size, "template: malformed");
    }
    cl_wipe(x, sizeof *x); /* parameter values pass through the scratch text */
    free(x);
    return st;
}

void cl_scn_plan_free(cl_scn_plan_t *plan)
{
    if (plan == NULL)
        return;
    for (size_t i = 0; i < plan->n_objects && i < CL_SCN_MAX_OBJECTS; i++) {
        if (plan->objects[i].doc != NULL) {
            cl_wipe(plan->objects[i].doc, plan->objects[i].doc_len);
            free(plan->objects[i].doc);
        }
    }
    if (plan->params != NULL) {
        cl_wipe(plan->params, plan->params_len);
        free(plan->params);
    }
    memset(plan, 0, sizeof *plan);
}

/* ------------------------------------------------------------------ */
/* Signature                                                           */
/* ------------------------------------------------------------------ */

/* {1: -7}: alg ES256, the only protected header we make and accept. */
static const uint8_t PROTECTED_ES256[] = {0xa1, 0x01, 0x26};

static void why_set(char *why, size_t why_size, const char *msg)
{
    if (why != NULL && why_size > 0)
        (void)snprintf(why, why_size, "%s", msg);
}

/* The kid of a parsed COSE_Sign1: a byte string holding a publisher name. */
static cl_status_t sig_kid(const cl_cose_msg_t *m, const char **kid, size_t *kid_len)
{
    const uint8_t *v, *p;
    size_t vl, pl;
    cl_cbor_dec_t d;
    cl_status_t st =
        cl_cose_header_find(m->unprotected, m->unprotected_len, CL_COSE_HDR_KID, &v, &vl);
    if (st == CL_ERR_NOT_FOUND)
        st = cl_cose_header_find(m->protected_hdr, m->protected_len, CL_COSE_HDR_KID, &v, &vl);
    if (st != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    cl_cbor_dec_init(&d, v, vl);
    if (cl_cbor_dec_bstr(&d, &p, &pl) != CL_OK || !name_ok((const char *)p, pl, CL_SCN_NAME_MAX))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *kid = (const char *)p;
    *kid_len = pl;
    return CL_OK;
}

cl_status_t cl_scn_sig_kid(const uint8_t *sig, size_t sig_len, const char **kid, size_t *kid_len)
{
    cl_cose_msg_t m;
    if (sig == NULL || kid == NULL || kid_len == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (cl_cose_sign1_parse(&m, sig, sig_len) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return sig_kid(&m, kid, kid_len);
}

/* The Sig_structure over the detached template bytes, on the heap (templates are large). */
static cl_status_t sig_structure(const uint8_t *protected_hdr, size_t protected_len,
                                 const uint8_t *json, size_t json_len, uint8_t **out,
                                 size_t *out_len)
{
    cl_status_t st;
    size_t need = 0;
    st = cl_cose_sig_structure(NULL, 0, &need, protected_hdr, protected_len, NULL, 0, json,
                               json_len);
    if (st != CL_OK)
        return st;
    *out = malloc(need > 0 ? need : 1);
    if (*out == NULL)
        return CL_FAIL(CL_ERR_FULL);
    st = cl_cose_sig_structure(*out, need, out_len, protected_hdr, protected_len, NULL, 0, json,
                               json_len);
    if (st != CL_OK) {
        free(*out);
        *out = NULL;
    }
    return st;
}

cl_status_t cl_scn_verify(const cl_crypto_t *crypto, cl_key_t publisher_key, const uint8_t *json,
                          size_t json_len, const uint8_t *sig, size_t sig_len, char *why,
                          size_t why_size)
{
    cl_status_t st;
    cl_cose_msg_t m;
    const uint8_t *v;
    size_t vl;
    const char *kid;
    size_t kid_len;
    int64_t alg = 0;

    if (why != NULL && why_size > 0)
        why[0] = 0;
    if (crypto == NULL || crypto->ops == NULL || json == NULL || json_len == 0 || sig == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (json_len > CL_SCN_MAX_TEMPLATE) {
        why_set(why, why_size, "template larger than 64 KiB");
        return CL_FAIL(CL_ERR_LIMIT);
    }
    if (cl_cose_sign1_parse(&m, sig, sig_len) != CL_OK) {
        why_set(why, why_size, "signature: not a COSE_Sign1");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (m.content != NULL) {
        why_set(why, why_size, "signature: the payload must be detached (nil)");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (cl_cose_header_find(m.protected_hdr, m.protected_len, CL_COSE_HDR_CRIT, &v, &vl) !=
            CL_ERR_NOT_FOUND ||
        cl_cose_header_find(m.unprotected, m.unprotected_len, CL_COSE_HDR_CRIT, &v, &vl) !=
            CL_ERR_NOT_FOUND) {
        why_set(why, why_size, "signature: critical header parameters are not supported");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    cl_cbor_dec_t d;
    st = cl_cose_header_find(m.protected_hdr, m.protected_len, CL_COSE_HDR_ALG, &v, &vl);
    if (st == CL_OK) {
        cl_cbor_dec_init(&d, v, vl);
        st = cl_cbor_dec_int(&d, &alg);
    }
    if (st != CL_OK || alg != CL_SIG_ES256) {
        why_set(why, why_size, "signature: the protected header must say alg ES256 (-7)");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (sig_kid(&m, &kid, &kid_len) != CL_OK) {
        why_set(why, why_size, "signature: kid must be the publisher's name (a byte string)");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (m.signature_len != 64) {
        why_set(why, why_size, "signature: an ES256 signature is 64 bytes");
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    uint8_t *tbs = NULL;
    size_t tbs_len = 0;
    if ((st = sig_structure(m.protected_hdr, m.protected_len, json, json_len, &tbs, &tbs_len)) !=
        CL_OK)
        return st;
    st = crypto->ops->verify(crypto->self, publisher_key, CL_SIG_ES256, tbs, tbs_len, m.signature,
                             m.signature_len);
    free(tbs);
    if (st == CL_ERR_AUTH)
        why_set(why, why_size, "signature: does not verify with the publisher's key");
    else if (st != CL_OK)
        why_set(why, why_size, "signature: cannot be verified with this key");
    return st;
}

cl_status_t cl_scn_sign(const cl_crypto_t *crypto, cl_key_t priv, const char *kid, size_t kid_len,
                        const uint8_t *json, size_t json_len, uint8_t *out, size_t out_size,
                        size_t *out_len)
{
    cl_status_t st;
    cl_cbor_enc_t e;
    uint8_t unprot[CL_SCN_NAME_MAX + 8];
    size_t unprot_len, need;
    uint8_t sigbuf[64];
    size_t sig_len = 0;

    if (crypto == NULL || crypto->ops == NULL || out_len == NULL || json == NULL || json_len == 0 ||
        json_len > CL_SCN_MAX_TEMPLATE || !name_ok(kid, kid_len, CL_SCN_NAME_MAX))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    cl_cbor_enc_init(&e, unprot, sizeof unprot);
    cl_cbor_enc_map(&e, 1);
    cl_cbor_enc_uint(&e, CL_COSE_HDR_KID);
    cl_cbor_enc_bstr(&e, (const uint8_t *)kid, kid_len);
    if ((st = cl_cbor_enc_finish(&e, &unprot_len)) != CL_OK)
        return st;
    /* 18([h'a10126', {4: h'kid'}, nil, h'r||s']): the size does not depend on the signature */
    cl_cbor_enc_init(&e, NULL, 0);
    cl_cbor_enc_tag(&e, CL_COSE_TAG_SIGN1);
    cl_cbor_enc_array(&e, 4);
    cl_cbor_enc_bstr(&e, PROTECTED_ES256, sizeof PROTECTED_ES256);
    cl_cbor_enc_raw(&e, unprot, unprot_len);
    cl_cbor_enc_null(&e);
    cl_cbor_enc_bstr(&e, sigbuf, sizeof sigbuf);
    if ((st = cl_cbor_enc_finish(&e, &need)) != CL_OK)
        return st;
    *out_len = need;
    if (out == NULL)
        return CL_OK;
    if (out_size < need)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);

    uint8_t *tbs = NULL;
    size_t tbs_len = 0;
    if ((st = sig_structure(PROTECTED_ES256, sizeof PROTECTED_ES256, json, json_len, &tbs,
                            &tbs_len)) != CL_OK)
        return st;
    st = crypto->ops->sign(crypto->self, priv, CL_SIG_ES256, tbs, tbs_len, sigbuf, sizeof sigbuf,
                           &sig_len);
    free(tbs);
    if (st == CL_OK && sig_len != sizeof sigbuf)
        st = CL_FAIL(CL_ERR_CRYPTO);
    if (st != CL_OK)
        return st;
    cl_cbor_enc_init(&e, out, out_size);
    cl_cbor_enc_tag(&e, CL_COSE_TAG_SIGN1);
    cl_cbor_enc_array(&e, 4);
    cl_cbor_enc_bstr(&e, PROTECTED_ES256, sizeof PROTECTED_ES256);
    cl_cbor_enc_raw(&e, unprot, unprot_len);
    cl_cbor_enc_null(&e);
    cl_cbor_enc_bstr(&e, sigbuf, sig_len);
    st = cl_cbor_enc_finish(&e, out_len);
    cl_wipe(sigbuf, sizeof sigbuf);
    return st;
}
