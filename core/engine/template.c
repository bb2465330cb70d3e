/*
 * template.c - the placeholders of "then" properties:
 *   {{event.type}} {{event.source}} {{event.time}} {{event.properties.P}}
 *   {{state.P}} {{rule.name}}
 * A text that is exactly one placeholder becomes the value with its type
 * (a number stays a number, a map stays a map); inside a longer text the
 * value is formatted as text (numbers in decimal, %.15g for non-integral
 * floats, true/false/null; maps, arrays and byte strings cannot be).
 *
 * Placeholders are checked when the rule is compiled (cl_eca_ph_check_text:
 * unknown names, bad paths and unterminated braces are refused then), so
 * the expansion only has to look values up. There is no escape for a
 * literal "{{": such a text is refused at check time.
 *
 * The expansion walks the template linearly: a placeholder replaces one
 * item by one item, so no container's count changes and no stack is needed
 * (keys never hold placeholders: refused at check time).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "eca_internal.h"

/* Position of "{{" or "}}" (c = '{' or '}') in s[from..len), or len. */
static size_t find2(const char *s, size_t len, size_t from, char c)
{
    for (size_t i = from; i + 1 < len; i++)
        if (s[i] == c && s[i + 1] == c)
            return i;
    return len;
}

static bool path_ok(const char *p, size_t len)
{
    if (len == 0 || len > ECA_PATH_MAX)
        return false;
    size_t segs = 1, seg_len = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '.') {
            if (seg_len == 0)
                return false;
            segs++;
            seg_len = 0;
            continue;
        }
        if (ch < 0x20 || ch == 0x7f || ch == '{' || ch == '}')
            return false;
        seg_len++;
    }
    return seg_len > 0 && segs <= ECA_MAX_SEGS;
}

static bool prefix(const char *s, size_t len, const char *pre, size_t plen)
{
    return len >= plen && memcmp(s, pre, plen) == 0;
}

#define LIT(s) s, sizeof(s) - 1

/* The inside of {{...}}: kind and (for properties and state) the path. */
static bool ph_parse(const char *s, size_t len, eca_ph_kind_t *kind, const char **path,
                     size_t *plen)
{
    *path = NULL;
    *plen = 0;
    if (len == sizeof("event.type") - 1 && memcmp(s, LIT("event.type")) == 0)
        *kind = ECA_PH_TYPE;
    else if (len == sizeof("event.source") - 1 && memcmp(s, LIT("event.source")) == 0)
        *kind = ECA_PH_SOURCE;
    else if (len == sizeof("event.time") - 1 && memcmp(s, LIT("event.time")) == 0)
        *kind = ECA_PH_TIME;
    else if (len == sizeof("rule.name") - 1 && memcmp(s, LIT("rule.name")) == 0)
        *kind = ECA_PH_RULE;
    else if (prefix(s, len, LIT("event.properties."))) {
        *kind = ECA_PH_PROP;
        *path = s + sizeof("event.properties.") - 1;
        *plen = len - (sizeof("event.properties.") - 1);
    } else if (prefix(s, len, LIT("state."))) {
        *kind = ECA_PH_STATE;
        *path = s + sizeof("state.") - 1;
        *plen = len - (sizeof("state.") - 1);
    } else
        return false;
    return *path == NULL || path_ok(*path, *plen);
}

cl_status_t cl_eca_ph_check_text(const char *s, size_t len, bool *has_ph, bool *uses_state,
                              char *why, size_t why_size)
{
    size_t i = 0;
    while ((i = find2(s, len, i, '{')) < len) {
        size_t close = find2(s, len, i + 2, '}');
        if (close == len) {
            cl_eca_why(why, why_size, "unterminated placeholder (\"{{\" without \"}}\")");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        eca_ph_kind_t kind;
        const char *path;
        size_t plen;
        if (!ph_parse(s + i + 2, close - i - 2, &kind, &path, &plen)) {
            int shown = close - i - 2 > 40 ? 40 : (int)(close - i - 2);
            cl_eca_why(why, why_size,
                    "unknown placeholder \"{{%.*s}}\" (event.type, event.source, event.time, "
                    "event.properties.P, state.P, rule.name)",
                    shown, s + i + 2);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        *has_ph = true;
        if (kind == ECA_PH_STATE)
            *uses_state = true;
        i = close + 2;
    }
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* Expansion                                                           */
/* ------------------------------------------------------------------ */

typedef enum vkind { V_RAW, V_TEXT, V_INT, V_UINT } vkind_t;

typedef struct val {
    vkind_t kind;
    const uint8_t *p, *end; /* V_RAW: the item; V_TEXT: the bytes */
    int64_t i;
    uint64_t u;
} val_t;

static cl_status_t resolve(const eca_tctx_t *x, const char *ph, size_t len, val_t *v, char *why,
                           size_t why_size)
{
    eca_ph_kind_t kind;
    const char *path;
    size_t plen;
    if (!ph_parse(ph, len, &kind, &path, &plen)) { /* compile checked it */
        cl_eca_why(why, why_size, "{{%.*s}}: unknown placeholder", len > 40 ? 40 : (int)len, ph);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    switch (kind) {
    case ECA_PH_TYPE:
        v->kind = V_TEXT;
        v->p = (const uint8_t *)x->ev->type;
        v->end = v->p + x->ev->type_len;
        return CL_OK;
    case ECA_PH_RULE:
        v->kind = V_TEXT;
        v->p = (const uint8_t *)x->rule->name;
        v->end = v->p + x->rule->name_len;
        return CL_OK;
    case ECA_PH_SOURCE:
        v->kind = V_UINT;
        v->u = x->ev->source;
        return CL_OK;
    case ECA_PH_TIME:
        v->kind = V_INT;
        v->i = x->ev->time_ms;
        return CL_OK;
    case ECA_PH_PROP:
        v->kind = V_RAW;
        if (!cl_eca_props_path(x->props, path, plen, &v->p, &v->end)) {
            cl_eca_why(why, why_size, "{{event.properties.%.*s}}: no such property", (int)plen, path);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        return CL_OK;
    case ECA_PH_STATE:
        v->kind = V_RAW;
        if (!cl_eca_map_path(x->state, x->state + x->state_len, path, plen, &v->p, &v->end)) {
            cl_eca_why(why, why_size, "{{state.%.*s}}: no such value in state", (int)plen, path);
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        return CL_OK;
    }
    return CL_FAIL(CL_ERR_BAD_INPUT);
}

static void put_typed(cl_cbor_enc_t *out, const val_t *v)
{
    switch (v->kind) {
    case V_RAW:
        cl_cbor_enc_raw(out, v->p, (size_t)(v->end - v->p));
        break;
    case V_TEXT:
        cl_cbor_enc_tstr(out, (const char *)v->p, (size_t)(v->end - v->p));
        break;
    case V_INT:
        cl_cbor_enc_int(out, v->i);
        break;
    case V_UINT:
        cl_cbor_enc_uint(out, v->u);
        break;
    }
}

/* Appends the text form of v to buf[*n..size). */
static cl_status_t put_text(char *buf, size_t size, size_t *n, const val_t *v, const char *ph,
                            size_t ph_len, char *why, size_t why_size)
{
    char num[40];
    const char *s = num;
    size_t len = 0;
    int k = -1;
    switch (v->kind) {
    case V_TEXT:
        s = (const char *)v->p;
        len = (size_t)(v->end - v->p);
        break;
    case V_INT:
        k = snprintf(num, sizeof num, "%" PRId64, v->i);
        break;
    case V_UINT:
        k = snprintf(num, sizeof num, "%" PRIu64, v->u);
        break;
    case V_RAW: {
        cl_cbor_dec_t d;
        cl_cbor_type_t t;
        cl_cbor_dec_init(&d, v->p, (size_t)(v->end - v->p));
        if (cl_cbor_dec_peek(&d, &t) != CL_OK)
            goto unformattable;
        if (t == CL_CBOR_TSTR) {
            if (cl_cbor_dec_tstr(&d, &s, &len) != CL_OK)
                goto unformattable;
            break;
        }
        uint64_t u;
        int64_t i;
        if (t == CL_CBOR_UINT && cl_cbor_dec_uint(&d, &u) == CL_OK) {
            k = snprintf(num, sizeof num, "%" PRIu64, u);
            break;
        }
        if (t == CL_CBOR_NINT && cl_cbor_dec_int(&d, &i) == CL_OK) {
            k = snprintf(num, sizeof num, "%" PRId64, i);
            break;
        }
        eca_num_t nv;
        if (cl_eca_num_get(v->p, v->end, &nv)) {
            /* floats, and integers beyond int64 */
            k = snprintf(num, sizeof num, "%.15g", nv.d);
            break;
        }
        bool b;
        if (cl_cbor_dec_bool(&d, &b) == CL_OK) {
            s = b ? "true" : "false";
            len = strlen(s);
            break;
        }
        if (cl_cbor_dec_null(&d) == CL_OK) {
            s = "null";
            len = 4;
            break;
        }
        goto unformattable;
    }
    }
    if (s == num) {
        if (k < 0 || (size_t)k >= sizeof num)
            goto unformattable;
        len = (size_t)k;
    }
    if (len > size - *n) {
        cl_eca_why(why, why_size, "{{%.*s}}: text longer than %zu bytes", (int)ph_len, ph, size);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    memcpy(buf + *n, s, len);
    *n += len;
    return CL_OK;
unformattable:
    cl_eca_why(why, why_size, "{{%.*s}}: only texts, numbers, booleans and null fit into a text",
            (int)ph_len, ph);
    return CL_FAIL(CL_ERR_BAD_INPUT);
}

static cl_status_t expand_text(const eca_tctx_t *x, const char *s, size_t len, cl_cbor_enc_t *out,
                               char *why, size_t why_size)
{
    cl_status_t st;
    val_t v;
    /* exactly one placeholder: typed */
    if (len >= 4 && s[0] == '{' && s[1] == '{' && find2(s, len, 2, '}') == len - 2) {
        if ((st = resolve(x, s + 2, len - 4, &v, why, why_size)) != CL_OK)
            return st;
        put_typed(out, &v);
        return CL_OK;
    }
    size_t n = 0, i = 0;
    while (i < len) {
        size_t open = find2(s, len, i, '{');
        size_t lit = open - i;
        if (lit > x->tbuf_size - n) {
            cl_eca_why(why, why_size, "text longer than %zu bytes", x->tbuf_size);
            return CL_FAIL(CL_ERR_LIMIT);
        }
        memcpy(x->tbuf + n, s + i, lit);
        n += lit;
        if (open == len)
            break;
        size_t close = find2(s, len, open + 2, '}');
        if (close == len) { /* compile refused it; keep the bytes */
            cl_eca_why(why, why_size, "unterminated placeholder");
            return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        const char *ph = s + open + 2;
        size_t ph_len = close - open - 2;
        if ((st = resolve(x, ph, ph_len, &v, why, why_size)) != CL_OK ||
            (st = put_text(x->tbuf, x->tbuf_size, &n, &v, ph, ph_len, why, why_size)) != CL_OK)
            return st;
        i = close + 2;
    }
    cl_cbor_enc_tstr(out, x->tbuf, n);
    return CL_OK;
}

cl_status_t cl_eca_expand(const eca_tctx_t *x, const uint8_t *tmpl, size_t len, cl_cbor_enc_t *out,
                       char *why, size_t why_size)
{
    cl_status_t st;
    if (len == 0) {
        cl_cbor_enc_map(out, 0);
        goto done;
    }
    cl_cbor_dec_t d;
    cl_cbor_dec_init(&d, tmpl, len);
    /* items still to copy: a container adds its children */
    size_t pending = 1;
    while (pending > 0) {
        pending--;
        cl_cbor_type_t t;
        size_t n;
        uint64_t tag;
        if (cl_cbor_dec_peek(&d, &t) != CL_OK)
            goto bad;
        switch (t) {
        case CL_CBOR_ARRAY:
            if (cl_cbor_dec_array(&d, &n) != CL_OK)
                goto bad;
            cl_cbor_enc_array(out, n);
            pending += n;
            break;
        case CL_CBOR_MAP:
            if (cl_cbor_dec_map(&d, &n) != CL_OK)
                goto bad;
            cl_cbor_enc_map(out, n);
            pending += 2 * n;
            break;
        case CL_CBOR_TAG:
            if (cl_cbor_dec_tag(&d, &tag) != CL_OK)
                goto bad;
            cl_cbor_enc_tag(out, tag);
            pending++;
            break;
        case CL_CBOR_TSTR: {
            const char *s;
            if (cl_cbor_dec_tstr(&d, &s, &n) != CL_OK)
                goto bad;
            if (find2(s, n, 0, '{') < n) {
                if ((st = expand_text(x, s, n, out, why, why_size)) != CL_OK)
                    return st;
            } else {
                cl_cbor_enc_tstr(out, s, n);
            }
            break;
        }
        default: {
            const uint8_t *raw;
            if (cl_cbor_dec_raw(&d, &raw, &n) != CL_OK)
                goto bad;
            cl_cbor_enc_raw(out, raw, n);
            break;
        }
        }
        if (out->status != CL_OK)
            break;
    }
done:
    if (out->status == CL_ERR_BUFFER_TOO_SMALL) {
        cl_eca_why(why, why_size, "properties larger than %zu bytes", out->size);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    if (out->status != CL_OK) {
        cl_eca_why(why, why_size, "properties cannot be encoded");
        return out->status;
    }
    return CL_OK;
bad:
    cl_eca_why(why, why_size, "malformed template");
    return CL_FAIL(CL_ERR_BAD_INPUT);
}
