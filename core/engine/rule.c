/*
 * rule.c - a rule document (CBOR map, eca.h) parsed, checked and compiled
 * into an eca_rule_t.
 *
 * Every field is checked before anything is installed, and a refusal names
 * the field and says what it must be ("then[1].target: a client id,
 * \"@group\" or \"{{event.source}}\"", "when.all[0].op: one of ..."), because
 * the reason goes back to whoever wrote the JSON. Unknown fields are
 * refused too: a misspelt "tehn" must not silently make a rule that does
 * nothing. Documents come from JSON, so wherever a whole number is expected
 * an integral float (60.0) is accepted, and wherever a number is compared
 * either kind is.
 *
 * Compilation copies the document once; everything the engine needs at run
 * time is an offset into that copy: the event types, the path segments
 * (split here so matching never scans a path), group names, the JS sources
 * and the raw bytes of each "then" template (copied verbatim when they hold
 * no placeholder). The small arrays go into one pool allocation sized
 * exactly, so a rule costs its document plus a few hundred bytes.
 *
 * The JS ("if", "script") is compiled here too, through cl_js_create: with
 * the host's environment when installing, in a throw-away sandbox when only
 * checking, so a syntax error is found before the rule is saved.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eca_internal.h"

/* What a document parses into before the pool is sized. */
typedef struct scratch {
    eca_str_t types[ECA_MAX_TYPES];
    eca_cond_t conds[ECA_MAX_CONDS];
    eca_str_t segs[ECA_MAX_CONDS * ECA_MAX_SEGS];
    eca_tmpl_t then[ECA_MAX_THEN];
    uint32_t ids[2][ECA_MAX_SRC];
    eca_str_t groups[2][ECA_MAX_SRC];
    unsigned n_segs;
} scratch_t;

typedef struct parser {
    const uint8_t *doc; /* the rule's copy */
    char *why;
    size_t why_size;
    scratch_t *s;
    eca_rule_t *r;
    int state_then; /* first "then" item reading {{state.…}}, -1 = none */
} parser_t;

#define SRC_WHEN 0
#define SRC_ABSENT 1

void cl_eca_why(char *why, size_t why_size, const char *fmt, ...)
{
    if (why == NULL || why_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
    if (n < 0)
        why[0] = '\0';
}

bool cl_eca_type_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > ECA_TYPE_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

bool cl_eca_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > CL_ECA_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A field name from the document, made printable and short for a message. */
static void shown(char *dst, size_t size, const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < size; i++) {
        if (n == 32) {
            dst[n - 3] = dst[n - 2] = dst[n - 1] = '.';
            break;
        }
        unsigned char c = (unsigned char)s[i];
        dst[n++] = c >= 0x20 && c < 0x7f && c != '"' ? (char)c : '?';
    }
    dst[n] = '\0';
}

static cl_status_t bad(parser_t *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static cl_status_t bad(parser_t *p, const char *fmt, ...)
{
    if (p->why != NULL && p->why_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(p->why, p->why_size, fmt, ap);
        va_end(ap);
        if (n < 0)
            p->why[0] = '\0';
    }
    return CL_FAIL(CL_ERR_BAD_INPUT);
}

static eca_str_t str_at(const parser_t *p, const char *s, size_t len)
{
    eca_str_t r = {(uint16_t)((const uint8_t *)s - p->doc), (uint16_t)len};
    return r;
}

static bool key_is(const char *k, size_t kl, const char *want)
{
    return strlen(want) == kl && memcmp(k, want, kl) == 0;
}

/* A text that is valid UTF-8. */
static bool rd_text(cl_cbor_dec_t *d, const char **s, size_t *len)
{
    return cl_cbor_dec_tstr(d, s, len) == CL_OK && cl_cbor_utf8_valid((const uint8_t *)*s, *len);
}

/* A whole number in [lo, hi], written as an int or an integral float. */
static bool rd_whole(cl_cbor_dec_t *d, int64_t lo, int64_t hi, int64_t *v)
{
    const uint8_t *raw;
    size_t len;
    eca_num_t n;
    if (cl_cbor_dec_raw(d, &raw, &len) != CL_OK || !cl_eca_num_get(raw, raw + len, &n) || !n.is_int ||
        n.i < lo || n.i > hi)
        return false;
    *v = n.i;
    return true;
}

/* ------------------------------------------------------------------ */
/* Source filters                                                      */
/* ------------------------------------------------------------------ */

static bool src_item(parser_t *p, cl_cbor_dec_t *d, eca_src_t *src, int which)
{
    cl_cbor_type_t t;
    if (cl_cbor_dec_peek(d, &t) != CL_OK)
        return false;
    if (t == CL_CBOR_TSTR) {
        const char *s;
        size_t len;
        if (!rd_text(d, &s, &len))
            return false;
        if (len == 1 && s[0] == '*') {
            src->any = true;
            return true;
        }
        if (len < 2 || s[0] != '@' || !cl_eca_name_ok(s + 1, len - 1))
            return false;
        p->s->groups[which][src->n_groups++] = str_at(p, s + 1, len - 1);
        return true;
    }
    int64_t id;
    if (!rd_whole(d, 1, UINT32_MAX, &id))
        return false;
    p->s->ids[which][src->n_ids++] = (uint32_t)id;
    return true;
}

static cl_status_t parse_src(parser_t *p, cl_cbor_dec_t *d, const char *field, eca_src_t *src,
                             int which)
{
    cl_cbor_type_t t;
    size_t n;
    src->present = true;
    if (cl_cbor_dec_peek(d, &t) == CL_OK && t == CL_CBOR_ARRAY) {
        if (cl_cbor_dec_array(d, &n) != CL_OK || n == 0 || n > ECA_MAX_SRC)
            return bad(p, "%s: an array of 1..%d client ids, \"*\" or \"@group\"", field,
                       ECA_MAX_SRC);
        for (size_t i = 0; i < n; i++)
            if (!src_item(p, d, src, which))
                return bad(p, "%s[%zu]: a client id, \"*\" or \"@group\"", field, i);
        return CL_OK;
    }
    if (!src_item(p, d, src, which))
        return bad(p, "%s: a client id, \"*\", \"@group\" or an array of those", field);
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* Trigger                                                             */
/* ------------------------------------------------------------------ */

static cl_status_t parse_absent(parser_t *p, cl_cbor_dec_t *d)
{
    eca_rule_t *r = p->r;
    size_t pairs;
    bool has_type = false, has_for = false;
    if (cl_cbor_dec_map(d, &pairs) != CL_OK)
        return bad(p, "on.absent: a map {\"type\", \"source\", \"for\"}");
    for (size_t i = 0; i < pairs; i++) {
        const char *k, *s;
        size_t kl, len;
        cl_status_t st;
        int64_t v;
        if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK)
            return bad(p, "on.absent: keys must be text");
        if (key_is(k, kl, "type")) {
            if (has_type)
                return bad(p, "on.absent.type: duplicate field");
            has_type = true;
            if (!rd_text(d, &s, &len) ||
                !((len == 1 && s[0] == '*') || cl_eca_type_name_ok(s, len)))
                return bad(p, "on.absent.type: an event type name (1..64 printable ASCII, no "
                              "spaces) or \"*\"");
            r->abs_type = str_at(p, s, len);
        } else if (key_is(k, kl, "source")) {
            if (r->abs_src.present)
                return bad(p, "on.absent.source: duplicate field");
            if ((st = parse_src(p, d, "on.absent.source", &r->abs_src, SRC_ABSENT)) != CL_OK)
                return st;
        } else if (key_is(k, kl, "for")) {
            if (has_for)
                return bad(p, "on.absent.for: duplicate field");
            has_for = true;
            if (!rd_whole(d, ECA_FOR_MIN, ECA_EVERY_MAX, &v))
                return bad(p, "on.absent.for: whole seconds, %d..%u", ECA_FOR_MIN, ECA_EVERY_MAX);
            r->period_s = (uint32_t)v;
        } else {
            char f[40];
            shown(f, sizeof f, k, kl);
            return bad(p, "on.absent.%s: unknown field (type, source, for)", f);
        }
    }
    if (!has_type)
        return bad(p, "on.absent.type: required");
    if (!r->abs_src.present)
        return bad(p, "on.absent.source: required (a client id, \"*\", \"@group\" or an array)");
    if (!has_for)
        return bad(p, "on.absent.for: required");
    r->trig = ECA_TRIG_ABSENT;
    return CL_OK;
}

static cl_status_t parse_on(parser_t *p, cl_cbor_dec_t *d)
{
    static const char *const what = "on: an array of 1..16 event types, {\"every\": seconds} or "
                                    "{\"absent\": {\"type\", \"source\", \"for\"}}";
    eca_rule_t *r = p->r;
    cl_cbor_type_t t;
    size_t n;
    if (cl_cbor_dec_peek(d, &t) != CL_OK)
        return bad(p, "%s", what);
    if (t == CL_CBOR_ARRAY) {
        if (cl_cbor_dec_array(d, &n) != CL_OK || n == 0 || n > ECA_MAX_TYPES)
            return bad(p, "%s", what);
        for (size_t i = 0; i < n; i++) {
            const char *s;
            size_t len;
            if (!rd_text(d, &s, &len))
                return bad(p, "on[%zu]: an event type name (text)", i);
            if (len == 1 && s[0] == '*') {
                if (n != 1)
                    return bad(p, "on[%zu]: \"*\" must be the only type", i);
                r->trig = ECA_TRIG_ANY;
                return CL_OK;
            }
            if (!cl_eca_type_name_ok(s, len))
                return bad(p, "on[%zu]: an event type name (1..64 printable ASCII, no spaces)", i);
            for (size_t j = 0; j < i; j++)
                if (p->s->types[j].len == len && memcmp(p->doc + p->s->types[j].off, s, len) == 0)
                    return bad(p, "on[%zu]: duplicate type", i);
            p->s->types[i] = str_at(p, s, len);
        }
        r->n_types = (uint8_t)n;
        r->trig = ECA_TRIG_TYPES;
        return CL_OK;
    }
    if (t != CL_CBOR_MAP || cl_cbor_dec_map(d, &n) != CL_OK || n != 1)
        return bad(p, "%s", what);
    const char *k;
    size_t kl;
    if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK)
        return bad(p, "%s", what);
    if (key_is(k, kl, "every")) {
        int64_t v;
        if (!rd_whole(d, ECA_EVERY_MIN, ECA_EVERY_MAX, &v))
            return bad(p, "on.every: whole seconds, %d..%u", ECA_EVERY_MIN, ECA_EVERY_MAX);
        r->period_s = (uint32_t)v;
        r->trig = ECA_TRIG_EVERY;
        return CL_OK;
    }
    if (key_is(k, kl, "absent"))
        return parse_absent(p, d);
    return bad(p, "%s", what);
}

/* ------------------------------------------------------------------ */
/* Conditions                                                          */
/* ------------------------------------------------------------------ */

static const char *const OP_NAMES[] = {"eq", "ne", "lt", "le", "gt", "ge", "in", "exists", "changed"};
#define N_OPS (sizeof OP_NAMES / sizeof OP_NAMES[0])

/* Splits a dotted path into segments (appended to the scratch). */
static bool split_path(parser_t *p, const char *s, size_t len, eca_cond_t *c)
{
    if (len == 0 || len > ECA_PATH_MAX)
        return false;
    size_t start = 0;
    c->seg = (uint16_t)p->s->n_segs;
    c->nseg = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '.')
            continue;
        if (i == start || c->nseg == ECA_MAX_SEGS)
            return false;
        p->s->segs[p->s->n_segs++] = str_at(p, s + start, i - start);
        c->nseg++;
        start = i + 1;
    }
    return true;
}

static cl_status_t parse_cond(parser_t *p, cl_cbor_dec_t *d, size_t idx)
{
    eca_cond_t *c = &p->s->conds[idx];
    size_t pairs;
    bool has_prop = false, has_op = false;
    const uint8_t *val = NULL;
    size_t val_len = 0;
    memset(c, 0, sizeof *c);
    if (cl_cbor_dec_map(d, &pairs) != CL_OK)
        return bad(p, "when.all[%zu]: a map {\"prop\", \"op\", \"value\"}", idx);
    for (size_t i = 0; i < pairs; i++) {
        const char *k, *s;
        size_t kl, len;
        if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK)
            return bad(p, "when.all[%zu]: keys must be text", idx);
        if (key_is(k, kl, "prop")) {
            if (has_prop)
                return bad(p, "when.all[%zu].prop: duplicate field", idx);
            has_prop = true;
            if (!rd_text(d, &s, &len) || !split_path(p, s, len, c))
                return bad(p,
                           "when.all[%zu].prop: a dotted path (\"a.b\") of 1..%d bytes, "
                           "no empty segment, at most %d segments",
                           idx, ECA_PATH_MAX, ECA_MAX_SEGS);
        } else if (key_is(k, kl, "op")) {
            if (has_op)
                return bad(p, "when.all[%zu].op: duplicate field", idx);
            has_op = true;
            size_t o = N_OPS;
            if (rd_text(d, &s, &len))
                for (o = 0; o < N_OPS && !key_is(s, len, OP_NAMES[o]); o++)
                    ;
            if (o == N_OPS)
                return bad(p, "when.all[%zu].op: one of eq ne lt le gt ge in exists changed", idx);
            c->op = (uint8_t)o;
        } else if (key_is(k, kl, "value")) {
            if (val != NULL)
                return bad(p, "when.all[%zu].value: duplicate field", idx);
            if (cl_cbor_dec_raw(d, &val, &val_len) != CL_OK)
                return bad(p, "when.all[%zu].value: malformed", idx);
        } else {
            char f[40];
            shown(f, sizeof f, k, kl);
            return bad(p, "when.all[%zu].%s: unknown field (prop, op, value)", idx, f);
        }
    }
    if (!has_prop)
        return bad(p, "when.all[%zu].prop: required", idx);
    if (!has_op)
        return bad(p, "when.all[%zu].op: required", idx);
    const char *opn = OP_NAMES[c->op];
    if (c->op == ECA_CHANGED) {
        if (val != NULL)
            return bad(p, "when.all[%zu].value: not allowed with \"changed\"", idx);
        c->vkind = ECA_V_NONE;
        return CL_OK;
    }
    if (val == NULL)
        return bad(p, "when.all[%zu].value: required for \"%s\"", idx, opn);
    cl_cbor_dec_t v;
    cl_cbor_dec_init(&v, val, val_len);
    c->val.off = (uint16_t)(val - p->doc);
    c->val.len = (uint16_t)val_len;
    const char *s;
    size_t len;
    switch (c->op) {
    case ECA_EXISTS:
        if (cl_cbor_dec_bool(&v, &c->b) != CL_OK)
            return bad(p, "when.all[%zu].value: true or false for \"exists\"", idx);
        c->vkind = ECA_V_BOOL;
        return CL_OK;
    case ECA_IN: {
        size_t n;
        if (cl_cbor_dec_array(&v, &n) != CL_OK || n == 0 || n > ECA_IN_MAX)
            return bad(p, "when.all[%zu].value: an array of 1..%d values for \"in\"", idx,
                       ECA_IN_MAX);
        c->vkind = ECA_V_RAW;
        return CL_OK;
    }
    default:
        break;
    }
    if (cl_eca_num_get(val, val + val_len, &c->num)) {
        c->vkind = ECA_V_NUM;
    } else if (rd_text(&v, &s, &len)) {
        c->vkind = ECA_V_TEXT;
        c->val = str_at(p, s, len);
    } else if (c->op == ECA_EQ || c->op == ECA_NE) {
        c->vkind = ECA_V_RAW;
    } else {
        return bad(p, "when.all[%zu].value: a number or a text for \"%s\"", idx, opn);
    }
    return CL_OK;
}

static cl_status_t parse_when(parser_t *p, cl_cbor_dec_t *d)
{
    eca_rule_t *r = p->r;
    size_t pairs;
    bool has_all = false;
    cl_status_t st;
    if (cl_cbor_dec_map(d, &pairs) != CL_OK)
        return bad(p, "when: a map {\"source\"?, \"all\"?}");
    for (size_t i = 0; i < pairs; i++) {
        const char *k;
        size_t kl, n;
        if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK)
            return bad(p, "when: keys must be text");
        if (key_is(k, kl, "source")) {
            if (r->when_src.present)
                return bad(p, "when.source: duplicate field");
            if ((st = parse_src(p, d, "when.source", &r->when_src, SRC_WHEN)) != CL_OK)
                return st;
        } else if (key_is(k, kl, "all")) {
            if (has_all)
                return bad(p, "when.all: duplicate field");
            has_all = true;
            if (cl_cbor_dec_array(d, &n) != CL_OK || n > ECA_MAX_CONDS)
                return bad(p, "when.all: an array of up to %d conditions", ECA_MAX_CONDS);
            for (size_t c = 0; c < n; c++)
                if ((st = parse_cond(p, d, c)) != CL_OK)
                    return st;
            r->n_conds = (uint8_t)n;
        } else {
            char f[40];
            shown(f, sizeof f, k, kl);
            return bad(p, "when.%s: unknown field (source, all)", f);
        }
    }
    /* "changed" conditions get their slot in a memory entry */
    for (unsigned c = 0; c < r->n_conds; c++)
        if (p->s->conds[c].op == ECA_CHANGED)
            p->s->conds[c].chg = r->n_chg++;
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* Templates                                                           */
/* ------------------------------------------------------------------ */

/* field[0..flen) names the item; checks texts and keys, at any depth. */
static cl_status_t check_tmpl_item(parser_t *p, cl_cbor_dec_t *d, char *field, size_t fsize,
                                   size_t flen, unsigned depth, eca_tmpl_t *t, bool *state)
{
    cl_cbor_type_t ty;
    size_t n;
    cl_status_t st;
    char w[CL_ECA_WHY_MAX];
    field[flen] = '\0';
    if (depth > CL_CBOR_MAX_DEPTH || cl_cbor_dec_peek(d, &ty) != CL_OK)
        return bad(p, "%s: nested too deeply", field);
    switch (ty) {
    case CL_CBOR_MAP:
        if (cl_cbor_dec_map(d, &n) != CL_OK)
            return bad(p, "%s: malformed", field);
        for (size_t i = 0; i < n; i++) {
            const char *k;
            size_t kl;
            if (!rd_text(d, &k, &kl))
                return bad(p, "%s: keys must be text", field);
            for (size_t j = 0; j + 1 < kl; j++)
                if (k[j] == '{' && k[j + 1] == '{')
                    return bad(p, "%s: no placeholders in keys", field);
            char ks[40];
            shown(ks, sizeof ks, k, kl);
            int m = snprintf(field + flen, fsize - flen, ".%s", ks);
            size_t nl = m < 0 ? flen : flen + (size_t)m;
            if (nl >= fsize)
                nl = fsize - 1;
            if ((st = check_tmpl_item(p, d, field, fsize, nl, depth + 1, t, state)) != CL_OK)
                return st;
            field[flen] = '\0';
        }
        return CL_OK;
    case CL_CBOR_ARRAY:
        if (cl_cbor_dec_array(d, &n) != CL_OK)
            return bad(p, "%s: malformed", field);
        for (size_t i = 0; i < n; i++) {
            int m = snprintf(field + flen, fsize - flen, "[%zu]", i);
            size_t nl = m < 0 ? flen : flen + (size_t)m;
            if (nl >= fsize)
                nl = fsize - 1;
            if ((st = check_tmpl_item(p, d, field, fsize, nl, depth + 1, t, state)) != CL_OK)
                return st;
            field[flen] = '\0';
        }
        return CL_OK;
    case CL_CBOR_TAG: {
        uint64_t tag;
        if (cl_cbor_dec_tag(d, &tag) != CL_OK)
            return bad(p, "%s: malformed", field);
        return check_tmpl_item(p, d, field, fsize, flen, depth + 1, t, state);
    }
    case CL_CBOR_TSTR: {
        const char *s;
        if (!rd_text(d, &s, &n))
            return bad(p, "%s: not valid UTF-8", field);
        bool has = false;
        if (cl_eca_ph_check_text(s, n, &has, state, w, sizeof w) != CL_OK)
            return bad(p, "%s: %s", field, w);
        if (has)
            t->has_ph = true;
        return CL_OK;
    }
    default:
        if (cl_cbor_dec_skip(d) != CL_OK)
            return bad(p, "%s: malformed", field);
        return CL_OK;
    }
}

static cl_status_t parse_target(parser_t *p, cl_cbor_dec_t *d, size_t idx, eca_tmpl_t *t)
{
    cl_cbor_type_t ty;
    const char *s;
    size_t len;
    int64_t id;
    if (cl_cbor_dec_peek(d, &ty) != CL_OK)
        goto fail;
    if (ty == CL_CBOR_TSTR) {
        if (!rd_text(d, &s, &len))
            goto fail;
        if (key_is(s, len, "{{event.source}}")) {
            t->tgt = ECA_TGT_SOURCE;
            return CL_OK;
        }
        if (len < 2 || s[0] != '@' || !cl_eca_name_ok(s + 1, len - 1))
            goto fail;
        t->tgt = ECA_TGT_GROUP;
        t->group = str_at(p, s + 1, len - 1);
        return CL_OK;
    }
    if (!rd_whole(d, 1, UINT32_MAX, &id))
        goto fail;
    t->tgt = ECA_TGT_ID;
    t->id = (uint32_t)id;
    return CL_OK;
fail:
    return bad(p, "then[%zu].target: a client id, \"@group\" or \"{{event.source}}\"", idx);
}

static cl_status_t parse_then_item(parser_t *p, cl_cbor_dec_t *d, size_t idx)
{
    eca_tmpl_t *t = &p->s->then[idx];
    size_t pairs;
    bool has_action = false, has_event = false, has_target = false, has_props = false;
    cl_status_t st;
    memset(t, 0, sizeof *t);
    if (cl_cbor_dec_map(d, &pairs) != CL_OK)
        goto shape;
    for (size_t i = 0; i < pairs; i++) {
        const char *k, *s;
        size_t kl, len;
        if (cl_cbor_dec_tstr(d, &k, &kl) != CL_OK)
            return bad(p, "then[%zu]: keys must be text", idx);
        if (key_is(k, kl, "action") || key_is(k, kl, "event")) {
            bool act = k[0] == 'a';
            if (has_action || has_event)
                goto shape;
            if (!rd_text(d, &s, &len) || !cl_eca_type_name_ok(s, len))
                return bad(p, "then[%zu].%s: %s type name (1..64 printable ASCII, no spaces)", idx,
                           act ? "action" : "event", act ? "an action" : "an event");
            if (act)
                has_action = true;
            else
                has_event = true;
            t->kind = act ? ECA_T_ACTION : ECA_T_EVENT;
            t->name = str_at(p, s, len);
        } else if (key_is(k, kl, "target")) {
            if (has_target)
                return bad(p, "then[%zu].target: duplicate field", idx);
            has_target = true;
            if ((st = parse_target(p, d, idx, t)) != CL_OK)
                return st;
        } else if (key_is(k, kl, "properties")) {
            if (has_props)
                return bad(p, "then[%zu].properties: duplicate field", idx);
            has_props = true;
            const uint8_t *raw;
            cl_cbor_type_t ty;
            if (cl_cbor_dec_peek(d, &ty) != CL_OK || ty != CL_CBOR_MAP ||
                cl_cbor_dec_raw(d, &raw, &len) != CL_OK)
                return bad(p, "then[%zu].properties: a map", idx);
            t->props.off = (uint16_t)(raw - p->doc);
            t->props.len = (uint16_t)len;
            char field[CL_ECA_WHY_MAX];
            int m = snprintf(field, sizeof field, "then[%zu].properties", idx);
            bool state = false;
            cl_cbor_dec_t pd;
            cl_cbor_dec_init(&pd, raw, len);
            if ((st = check_tmpl_item(p, &pd, field, sizeof field, m > 0 ? (size_t)m : 0, 0, t,
                                      &state)) != CL_OK)
                return st;
            if (state && p->state_then < 0)
                p->state_then = (int)idx;
            if (state)
                p->r->uses_state = true;
        } else {
            char f[40];
            shown(f, sizeof f, k, kl);
            return bad(p, "then[%zu].%s: unknown field (action, target, event, properties)", idx,
                       f);
        }
    }
    if (!has_action && !has_event)
        goto shape;
    if (has_action && !has_target)
        return bad(p, "then[%zu].target: a client id, \"@group\" or \"{{event.source}}\"", idx);
    if (has_event && has_target)
        return bad(p, "then[%zu].target: only an action has a target", idx);
    return CL_OK;
shape:
    return bad(p,
               "then[%zu]: {\"action\", \"target\", \"properties\"?} or {\"event\", "
               "\"properties\"?}",
               idx);
}

/* ------------------------------------------------------------------ */
/* JS                                                                  */
/* ------------------------------------------------------------------ */

/* Only compiled, never run, when a rule is checked. */
static int64_t stub_now(void *arg)
{
    (void)arg;
    return 0;
}

static cl_status_t stub_rand(void *arg, uint8_t *out, size_t len)
{
    (void)arg;
    memset(out, 0x5a, len);
    return CL_OK;
}

static cl_status_t compile_js(parser_t *p, const cl_js_env_t *env, const cl_js_limits_t *limits)
{
    eca_rule_t *r = p->r;
    const char *cond = r->js_if.len ? (const char *)p->doc + r->js_if.off : NULL;
    const char *script = r->js_script.len ? (const char *)p->doc + r->js_script.off : NULL;
    if (cond == NULL && script == NULL)
        return CL_OK;
    static const cl_js_limits_t defaults = {0, 0, 0, 0};
    const cl_js_env_t stub = {NULL, stub_now, NULL, stub_rand};
    char w[CL_JS_WHY_MAX];
    cl_js_t *js = NULL;
    w[0] = '\0';
    cl_status_t st = cl_js_create(&js, env != NULL ? env : &stub, limits != NULL ? limits : &defaults,
                                  cond, r->js_if.len, script, r->js_script.len, w, sizeof w);
    if (st != CL_OK) {
        const char *field = cond != NULL ? "if" : "script";
        if (cond != NULL && script != NULL) {
            /* which of the two? compile the condition alone */
            cl_js_t *probe = NULL;
            char w2[CL_JS_WHY_MAX];
            if (cl_js_create(&probe, env != NULL ? env : &stub,
                             limits != NULL ? limits : &defaults, cond, r->js_if.len, NULL, 0, w2,
                             sizeof w2) == CL_OK) {
                field = "script";
                cl_js_free(probe);
            }
        }
        if (st != CL_ERR_BAD_INPUT) {
            cl_eca_why(p->why, p->why_size, "%s: cannot create the sandbox (%s)%s%s", field,
                    cl_status_str(st), w[0] ? ": " : "", w);
            return st;
        }
        return bad(p, "%s: %s", field, w[0] ? w : "does not compile");
    }
    if (env == NULL)
        cl_js_free(js);
    else
        r->js = js;
    return CL_OK;
}

/* ------------------------------------------------------------------ */
/* The document                                                        */
/* ------------------------------------------------------------------ */

static size_t align8(size_t n)
{
    return (n + 7u) & ~(size_t)7u;
}

/* Moves the scratch arrays into one exactly sized pool. */
static cl_status_t build_pool(parser_t *p)
{
    eca_rule_t *r = p->r;
    scratch_t *s = p->s;
    size_t o_conds = 0;
    size_t o_then = align8(o_conds + r->n_conds * sizeof(eca_cond_t));
    size_t o_ids = align8(o_then + r->n_then * sizeof(eca_tmpl_t));
    size_t n_ids = (size_t)r->when_src.n_ids + r->abs_src.n_ids;
    size_t o_strs = align8(o_ids + n_ids * sizeof(uint32_t));
    size_t n_strs = (size_t)r->n_types + s->n_segs + r->when_src.n_groups + r->abs_src.n_groups;
    size_t total = o_strs + n_strs * sizeof(eca_str_t);
    if (total == 0)
        return CL_OK;
    uint8_t *pool = malloc(total);
    if (pool == NULL)
        return CL_FAIL(CL_ERR_FULL);
    r->pool = pool;
    r->pool_len = total;
    r->conds = (eca_cond_t *)(void *)(pool + o_conds);
    memcpy(r->conds, s->conds, r->n_conds * sizeof(eca_cond_t));
    r->then = (eca_tmpl_t *)(void *)(pool + o_then);
    memcpy(r->then, s->then, r->n_then * sizeof(eca_tmpl_t));
    uint32_t *ids = (uint32_t *)(void *)(pool + o_ids);
    eca_str_t *strs = (eca_str_t *)(void *)(pool + o_strs);
    r->types = strs;
    memcpy(strs, s->types, r->n_types * sizeof(eca_str_t));
    strs += r->n_types;
    r->segs = strs;
    memcpy(strs, s->segs, s->n_segs * sizeof(eca_str_t));
    strs += s->n_segs;
    eca_src_t *srcs[2] = {&r->when_src, &r->abs_src};
    for (int w = 0; w < 2; w++) {
        srcs[w]->ids = ids;
        memcpy(ids, s->ids[w], srcs[w]->n_ids * sizeof(uint32_t));
        ids += srcs[w]->n_ids;
        srcs[w]->groups = strs;
        memcpy(strs, s->groups[w], srcs[w]->n_groups * sizeof(eca_str_t));
        strs += srcs[w]->n_groups;
    }
    return CL_OK;
}

static cl_status_t parse_doc(parser_t *p, size_t len)
{
    eca_rule_t *r = p->r;
    cl_cbor_dec_t d;
    size_t pairs, count;
    cl_status_t st;
    enum { F_NAME, F_DESC, F_ENABLED, F_ON, F_WHEN, F_IF, F_SCRIPT, F_THEN, F_COUNT };
    static const char *const FIELDS[F_COUNT] = {"name", "description", "enabled", "on",
                                                "when", "if",          "script",  "then"};
    bool seen[F_COUNT] = {false};

    if (cl_cbor_validate_seq(p->doc, len, &count) != CL_OK || count != 1)
        return bad(p, "rule: not one well-formed CBOR item");
    cl_cbor_dec_init(&d, p->doc, len);
    if (cl_cbor_dec_map(&d, &pairs) != CL_OK)
        return bad(p, "rule: a map");
    for (size_t i = 0; i < pairs; i++) {
        const char *k, *s;
        size_t kl, slen, n;
        if (cl_cbor_dec_tstr(&d, &k, &kl) != CL_OK)
            return bad(p, "rule: keys must be text");
        int f;
        for (f = 0; f < F_COUNT; f++)
            if (key_is(k, kl, FIELDS[f]))
                break;
        if (f == F_COUNT) {
            char fs[40];
            shown(fs, sizeof fs, k, kl);
            return bad(p, "%s: unknown field (name, description, enabled, on, when, if, script, "
                          "then)",
                       fs);
        }
        if (seen[f])
            return bad(p, "%s: duplicate field", FIELDS[f]);
        seen[f] = true;
        switch (f) {
        case F_NAME:
            if (!rd_text(&d, &s, &slen) || !cl_eca_name_ok(s, slen))
                return bad(p, "name: 1..64 of [A-Za-z0-9._-]");
            memcpy(r->name, s, slen);
            r->name[slen] = '\0';
            r->name_len = (uint8_t)slen;
            r->name_off = (uint16_t)((const uint8_t *)s - p->doc);
            break;
        case F_DESC:
            if (!rd_text(&d, &s, &slen) || slen > ECA_DESC_MAX)
                return bad(p, "description: a text of up to %d bytes", ECA_DESC_MAX);
            break;
        case F_ENABLED:
            if (cl_cbor_dec_bool(&d, &r->doc_enabled) != CL_OK)
                return bad(p, "enabled: true or false");
            break;
        case F_ON:
            if ((st = parse_on(p, &d)) != CL_OK)
                return st;
            break;
        case F_WHEN:
            if ((st = parse_when(p, &d)) != CL_OK)
                return st;
            break;
        case F_IF:
        case F_SCRIPT:
            if (!rd_text(&d, &s, &slen) || slen == 0 || slen > CL_JS_MAX_SOURCE)
                return bad(p,
                           f == F_IF ? "if: an ECMAScript expression (text of 1..%d bytes)"
                                     : "script: an ECMAScript function body (text of 1..%d bytes)",
                           CL_JS_MAX_SOURCE);
            if (f == F_IF)
                r->js_if = str_at(p, s, slen);
            else
                r->js_script = str_at(p, s, slen);
            break;
        case F_THEN:
            if (cl_cbor_dec_array(&d, &n) != CL_OK || n > ECA_MAX_THEN)
                return bad(p, "then: an array of up to %d actions or events", ECA_MAX_THEN);
            for (size_t t = 0; t < n; t++)
                if ((st = parse_then_item(p, &d, t)) != CL_OK)
                    return st;
            r->n_then = (uint8_t)n;
            break;
        default:
            break;
        }
    }
    if (!seen[F_NAME])
        return bad(p, "name: required");
    if (!seen[F_ON])
        return bad(p, "on: required");
    if (r->n_then == 0 && !seen[F_SCRIPT])
        return bad(p, "then: required unless there is a \"script\" (1..%d actions or events)",
                   ECA_MAX_THEN);
    if (p->state_then >= 0 && !seen[F_SCRIPT])
        return bad(p, "then[%d].properties: {{state.P}} needs a \"script\"", p->state_then);
    return CL_OK;
}

cl_status_t cl_eca_rule_compile(const uint8_t *doc, size_t len, const cl_js_env_t *js_env,
                             const cl_js_limits_t *js_limits, eca_rule_t **out, char *why,
                             size_t why_size)
{
    cl_status_t st;
    *out = NULL;
    if (why != NULL && why_size > 0)
        why[0] = '\0';
    if (doc == NULL || len == 0 || len > CL_ECA_MAX_RULE_DOC) {
        cl_eca_why(why, why_size, "rule: a CBOR map of 1..%d bytes", CL_ECA_MAX_RULE_DOC);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    eca_rule_t *r = calloc(1, sizeof *r);
    scratch_t *s = malloc(sizeof *s);
    uint8_t *copy = malloc(len);
    if (r == NULL || s == NULL || copy == NULL) {
        free(r);
        free(s);
        free(copy);
        cl_eca_why(why, why_size, "rule: out of memory");
        return CL_FAIL(CL_ERR_FULL);
    }
    memcpy(copy, doc, len);
    r->doc = copy;
    r->doc_len = len;
    r->doc_enabled = true;
    s->n_segs = 0;
    parser_t p = {copy, why, why_size, s, r, -1};
    if ((st = parse_doc(&p, len)) == CL_OK && (st = build_pool(&p)) == CL_OK)
        st = compile_js(&p, js_env, js_limits);
    free(s);
    if (st != CL_OK) {
        if (st == CL_ERR_FULL)
            cl_eca_why(why, why_size, "rule: out of memory");
        cl_eca_rule_free(r);
        return st;
    }
    *out = r;
    return CL_OK;
}

void cl_eca_rule_free(eca_rule_t *r)
{
    if (r == NULL)
        return;
    cl_js_free(r->js);
    free(r->doc);
    free(r->pool);
    free(r->chg.w);
    free(r->abs.v);
    free(r->reason);
    free(r);
}

size_t cl_eca_rule_mem(const eca_rule_t *r)
{
    size_t n = sizeof *r + r->doc_len + r->pool_len;
    n += (size_t)r->chg.cap * (2u + r->n_chg) * sizeof(uint64_t);
    n += (size_t)r->abs.cap * sizeof(eca_abs_ent_t);
    if (r->reason != NULL)
        n += CL_ECA_WHY_MAX;
    if (r->js != NULL)
        n += cl_js_heap_used(r->js);
    return n;
}
