/*
 * ngsi_doc.c - the documents of the NGSI-v2 facade: JSON parsing, Orion's
 * validation rules, the normalized stored form of entities, query
 * parameters, tenancy headers, bounded idPattern regexes, rendering and
 * subscription documents (ngsi_internal.h). UNTRUSTED HOST SIDE.
 *
 * What: pure functions - no I/O, no threads of their own - so the libFuzzer
 * harness (fuzz/fuzz_ngsi_request.c) drives exactly what the server runs.
 *
 * Why cJSON (Debian's libcjson, already a project dependency): a tree that
 * can be edited - attributes are moved from a request into the stored
 * document and merged with it - and numbers printed in the shortest form
 * that reads back as the same double (21.7 stays 21.7). Its parser is
 * recursive and keeps a global error position, so every parse goes through
 * ngsi_json_parse: a linear pre-scan first bounds the nesting depth,
 * validates UTF-8, refuses control bytes and \u0000 in strings and counts
 * the values (the memory the tree will take is charged before it exists),
 * then cJSON parses under a mutex (its global error slot is not
 * thread-safe).
 *
 * The stored document of an entity is the normalized attributes object,
 * printed compact: {"name":{"type":T,"value":V,"metadata":{...}},...}. A
 * normalized response is then the document spliced after id and type, with
 * no parsing at all - the cheap read path. Attribute values are never
 * interpreted beyond Orion's checks, so HpkeCiphertext values (base64url
 * strings) and their metadata come back byte for byte.
 */
#define _GNU_SOURCE /* getrandom */

#include "ngsi_internal.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ------------------------------------------------------------ limits, errors */

void ngsi_limits_default(ngsi_limits_t *l)
{
    l->max_body = CL_NGSI_DEFAULT_MAX_BODY;
    l->max_depth = CL_NGSI_DEFAULT_MAX_DEPTH;
    l->max_attrs = CL_NGSI_DEFAULT_MAX_ATTRS;
    l->max_metadata = CL_NGSI_DEFAULT_MAX_METADATA;
    l->max_batch_entities = CL_NGSI_DEFAULT_MAX_BATCH_ENTITIES;
    l->max_entity_bytes = CL_NGSI_DEFAULT_MAX_ENTITY_BYTES;
}

void ngsi_err_set(ngsi_err_t *e, unsigned status, const char *error, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->error = error;
    va_start(ap, fmt);
    vsnprintf(e->desc, sizeof e->desc, fmt, ap);
    va_end(ap);
}

static bool bad(ngsi_err_t *e, const char *desc)
{
    ngsi_err_set(e, 400, "BadRequest", "%s", desc);
    return false;
}

/* ------------------------------------------------------------ growable text */

void nb_init(ngsi_buf_t *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max;
    b->failed = false;
}

void nb_free(ngsi_buf_t *b)
{
    free(b->p);
    nb_init(b, b->max);
}

static bool nb_reserve(ngsi_buf_t *b, size_t more)
{
    if (b->failed)
        return false;
    if (more > b->max || b->len + more + 1 > b->max + 1) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void nb_put(ngsi_buf_t *b, const char *s, size_t n)
{
    if (n == 0 || !nb_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void nb_puts(ngsi_buf_t *b, const char *s)
{
    nb_put(b, s, strlen(s));
}

void nb_putc(ngsi_buf_t *b, char c)
{
    nb_put(b, &c, 1);
}

void nb_json_str(ngsi_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    nb_putc(b, '"');
    const char *run = s;
    for (const char *p = s; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        nb_put(b, run, (size_t)(p - run));
        run = p + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
            break;
        }
        nb_put(b, esc, n);
    }
    nb_put(b, run, strlen(run));
    nb_putc(b, '"');
}

void nb_printf(ngsi_buf_t *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    nb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

char *nb_take(ngsi_buf_t *b, size_t *len)
{
    if (b->failed) {
        nb_free(b);
        return NULL;
    }
    if (b->p == NULL && !nb_reserve(b, 0))
        return NULL;
    if (b->p == NULL) { /* nb_reserve(0) allocated nothing: an empty text */
        b->p = malloc(1);
        if (b->p == NULL)
            return NULL;
        b->p[0] = '\0';
    }
    char *p = b->p;
    if (len != NULL)
        *len = b->len;
    nb_init(b, b->max);
    return p;
}

/* ------------------------------------------------------------ JSON */

static pthread_mutex_t cjson_mu = PTHREAD_MUTEX_INITIALIZER;

static bool parse_fail(ngsi_err_t *err, const char *desc)
{
    ngsi_err_set(err, 400, "ParseError", "%s", desc);
    return false;
}

/*
 * The pre-scan: depth, UTF-8, strings without raw control bytes or \u0000;
 * counts values (an upper bound: openers + commas + 1). Syntax is left to
 * cJSON; this only makes sure cJSON never recurses deeply and the tree's
 * size is known.
 */
static bool json_scan(const char *s, size_t n, unsigned max_depth, size_t *nodes, ngsi_err_t *err)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t depth = 0, count = 1, i = 0;
    bool in_str = false;
    while (i < n) {
        unsigned char c = p[i];
        if (!in_str) {
            switch (c) {
            case '"':
                in_str = true;
                break;
            case '[':
            case '{':
                if (++depth > max_depth)
                    return parse_fail(err, "JSON nesting too deep");
                count++;
                break;
            case ']':
            case '}':
                if (depth > 0)
                    depth--;
                break;
            case ',':
                count++;
                break;
            default:
                if (c >= 0x80 || c == 0)
                    return parse_fail(err, "Errors found in incoming JSON buffer");
                break;
            }
            i++;
            continue;
        }
        if (c == '"') {
            in_str = false;
            i++;
            continue;
        }
        if (c == '\\') {
            if (i + 1 >= n)
                return parse_fail(err, "Errors found in incoming JSON buffer");
            if (p[i + 1] == 'u' && i + 5 < n && p[i + 2] == '0' && p[i + 3] == '0' &&
                p[i + 4] == '0' && p[i + 5] == '0')
                return parse_fail(err, "NUL character in a JSON string");
            i += 2;
            continue;
        }
        if (c < 0x20)
            return parse_fail(err, "control character in a JSON string");
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1Fu;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0Fu;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07u;
        } else {
            return parse_fail(err, "invalid UTF-8");
        }
        if (len > n - i)
            return parse_fail(err, "invalid UTF-8");
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return parse_fail(err, "invalid UTF-8");
            cp = cp << 6 | (p[i + k] & 0x3Fu);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
            return parse_fail(err, "invalid UTF-8");
        i += len;
    }
    if (in_str)
        return parse_fail(err, "Errors found in incoming JSON buffer");
    *nodes = count;
    return true;
}

cJSON *ngsi_json_parse(const char *p, size_t n, unsigned max_depth, size_t *cost, ngsi_err_t *err)
{
    size_t nodes = 0;
    if (n == 0) {
        parse_fail(err, "Empty payload");
        return NULL;
    }
    if (!json_scan(p, n, max_depth, &nodes, err))
        return NULL;
    const char *end = NULL;
    pthread_mutex_lock(&cjson_mu);
    cJSON *j = cJSON_ParseWithLengthOpts(p, n, &end, 0);
    pthread_mutex_unlock(&cjson_mu);
    if (j == NULL) {
        parse_fail(err, "Errors found in incoming JSON buffer");
        return NULL;
    }
    size_t off = end != NULL && end >= p ? (size_t)(end - p) : n;
    while (off < n && (p[off] == ' ' || p[off] == '\t' || p[off] == '\r' || p[off] == '\n'))
        off++;
    if (off != n) {
        cJSON_Delete(j);
        parse_fail(err, "Errors found in incoming JSON buffer");
        return NULL;
    }
    if (cost != NULL)
        *cost = nodes * NGSI_NODE_COST + n;
    return j;
}

char *ngsi_json_print(const cJSON *j, size_t *len)
{
    char *s = cJSON_PrintUnformatted(j);
    if (s != NULL && len != NULL)
        *len = strlen(s);
    return s;
}

/* ------------------------------------------------------------ names, values */

static bool name_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("<>\"'=;()&?/#", c) == NULL;
}

bool ngsi_name_ok(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n] != '\0'; n++)
        if (n >= NGSI_MAX_NAME || !name_char_ok((unsigned char)s[n]))
            return false;
    return n > 0;
}

bool ngsi_value_str_ok(const char *s)
{
    return strpbrk(s, "<>\"'=;()") == NULL;
}

/* Strings (any depth) without Orion's forbidden characters; numbers finite. */
static bool value_ok(const cJSON *v, bool unrestricted)
{
    if (cJSON_IsString(v))
        return unrestricted || ngsi_value_str_ok(v->valuestring);
    if (cJSON_IsNumber(v))
        return isfinite(v->valuedouble);
    if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        for (const cJSON *c = v->child; c != NULL; c = c->next)
            if (!value_ok(c, unrestricted))
                return false;
    }
    return true;
}

static const char *default_type(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "Text";
    if (cJSON_IsNumber(v))
        return "Number";
    if (cJSON_IsBool(v))
        return "Boolean";
    if (cJSON_IsArray(v) || cJSON_IsObject(v))
        return "StructuredValue";
    return "None";
}

/* ------------------------------------------------------------ tenancy */

bool ngsi_service_parse(const char *hdr, char out[NGSI_MAX_SERVICE + 1], ngsi_err_t *err)
{
    size_t n = 0;
    out[0] = '\0';
    if (hdr == NULL)
        return true;
    for (; hdr[n] != '\0'; n++) {
        unsigned char c = (unsigned char)hdr[n];
        if (n >= NGSI_MAX_SERVICE) {
            ngsi_err_set(err, 400, "BadRequest", "bad length for service name - max 50 characters");
            return false;
        }
        if (!isalnum(c) && c != '_') {
            ngsi_err_set(err, 400, "BadRequest",
                         "bad character in tenant name - only underscore and alphanumeric "
                         "characters are allowed");
            return false;
        }
        out[n] = (char)tolower(c);
    }
    out[n] = '\0';
    return true;
}

/*
 * One path: "/" or "/a/b" (<= 10 levels of 1..50 alnum/_), optionally
 * followed by "/#" (or "/#" alone) when allow_rec. *rec tells.
 */
static bool path_one(const char *s, size_t n, bool allow_rec, char out[NGSI_PATH_SIZE], bool *rec,
                     ngsi_err_t *err)
{
    *rec = false;
    while (n > 0 && (*s == ' ' || *s == '\t')) { /* "/A, /B" */
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n == 0 || s[0] != '/') {
        ngsi_err_set(err, 400, "BadRequest", "Only /absolute/ Service Paths allowed [a service "
                                             "path must begin with /]");
        return false;
    }
    if (n >= 2 && s[n - 1] == '#' && s[n - 2] == '/') {
        if (!allow_rec) {
            ngsi_err_set(err, 400, "BadRequest", "Invalid service path: '#' only in queries");
            return false;
        }
        *rec = true;
        n -= 2;
    }
    size_t levels = 0, level_len = 0, o = 0;
    if (n == 1) { /* "/" (or "/#" -> "") */
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '/') {
            if (i > 0 && level_len == 0)
                goto bad_level;
            if (++levels > NGSI_MAX_LEVELS) {
                ngsi_err_set(err, 400, "BadRequest", "too many components in ServicePath");
                return false;
            }
            level_len = 0;
        } else if (isalnum(c) || c == '_') {
            if (++level_len > NGSI_MAX_LEVEL) {
                ngsi_err_set(err, 400, "BadRequest", "component-name too long in ServicePath");
                return false;
            }
        } else {
            ngsi_err_set(err, 400, "BadRequest", "a component of ServicePath contains an illegal "
                                                 "character");
            return false;
        }
        out[o++] = (char)c;
    }
    if (n > 0 && level_len == 0)
        goto bad_level;
    if (n == 0)
        out[o++] = '/';
    out[o] = '\0';
    return true;
bad_level:
    ngsi_err_set(err, 400, "BadRequest", "empty component in ServicePath");
    return false;
}

bool ngsi_path_parse_update(const char *hdr, char out[NGSI_PATH_SIZE], ngsi_err_t *err)
{
    bool rec;
    if (hdr == NULL || hdr[0] == '\0') {
        strcpy(out, "/");
        return true;
    }
    size_t n = strlen(hdr);
    if (n >= NGSI_PATH_SIZE || strchr(hdr, ',') != NULL) {
        ngsi_err_set(err, 400, "BadRequest", "Invalid service path: one path only in updates");
        return false;
    }
    return path_one(hdr, n, false, out, &rec, err);
}

bool ngsi_path_parse_query(const char *hdr, ngsi_paths_t *out, ngsi_err_t *err)
{
    out->n = 0;
    if (hdr == NULL || hdr[0] == '\0')
        return true; /* "/#" */
    const char *s = hdr;
    size_t total = strlen(hdr);
    if (total > NGSI_MAX_QUERY_PATHS * NGSI_PATH_SIZE) {
        ngsi_err_set(err, 400, "BadRequest", "too long ServicePath");
        return false;
    }
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t n = comma != NULL ? (size_t)(comma - s) : strlen(s);
        if (out->n >= NGSI_MAX_QUERY_PATHS) {
            ngsi_err_set(err, 400, "BadRequest", "too many service paths - a maximum of ten "
                                                 "service paths is allowed");
            return false;
        }
        if (n >= NGSI_PATH_SIZE) {
            ngsi_err_set(err, 400, "BadRequest", "too long ServicePath");
            return false;
        }
        bool rec;
        if (!path_one(s, n, true, out->p[out->n], &rec, err))
            return false;
        out->rec[out->n] = rec;
        if (rec && strcmp(out->p[out->n], "/") == 0) { /* "/#": everything */
            out->n = 0;
            return true;
        }
        out->n++;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    return true;
}

bool ngsi_path_parse_sub(const char *hdr, char out[NGSI_PATH_SIZE], ngsi_err_t *err)
{
    bool rec;
    if (hdr == NULL || hdr[0] == '\0') {
        strcpy(out, "/#");
        return true;
    }
    size_t n = strlen(hdr);
    if (n + 3 > NGSI_PATH_SIZE || strchr(hdr, ',') != NULL) {
        ngsi_err_set(err, 400, "BadRequest", "Invalid service path: one path only in "
                                             "subscriptions");
        return false;
    }
    if (!path_one(hdr, n, true, out, &rec, err))
        return false;
    if (rec)
        strcat(out, strcmp(out, "/") == 0 ? "#" : "/#");
    return true;
}

bool ngsi_path_match(const char *pat, const char *path)
{
    size_t n = strlen(pat);
    if (n >= 2 && pat[n - 1] == '#' && pat[n - 2] == '/') {
        if (n == 2)
            return true; /* "/#" */
        n -= 2;          /* "/A/#": "/A" itself and "/A/..." */
        return strncmp(pat, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
    }
    return strcmp(pat, path) == 0;
}

bool ngsi_paths_match(const ngsi_paths_t *ps, const char *path)
{
    if (ps->n == 0)
        return true;
    for (size_t i = 0; i < ps->n; i++) {
        if (ps->rec[i]) {
            size_t n = strlen(ps->p[i]);
            if (strncmp(ps->p[i], path, n) == 0 && (path[n] == '\0' || path[n] == '/'))
                return true;
        } else if (strcmp(ps->p[i], path) == 0) {
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------ bounded regexes */

#define RE_MAX_WEIGHT 2048 /* ~ NFA nodes glibc builds (repetitions are expanded) */
#define RE_MAX_GROUPS 16
#define RE_MAX_BOUND 255

/*
 * glibc expands a{m,n} into n copies of `a`, so (a{100}){100} compiles to
 * 10^4 nodes and nested bounds grow exponentially; back-references (\1,
 * a GNU extension in EREs) make matching exponential. This walks the
 * pattern once and refuses both before regcomp sees it: the weight of a
 * group is the sum of its atoms, a bound multiplies the atom (or group) it
 * follows.
 */
static bool re_weight_ok(const char *p)
{
    uint64_t sum[RE_MAX_GROUPS + 1] = {0}, last[RE_MAX_GROUPS + 1] = {0};
    size_t d = 0;
    bool quant_ok = false; /* a quantifier may follow (an atom or a group came last) */
    for (size_t i = 0; p[i] != '\0';) {
        char c = p[i];
        bool atom = true;
        if (c == '\\') {
            if (p[i + 1] == '\0' || isdigit((unsigned char)p[i + 1]))
                return false;
            last[d] = 1;
            sum[d] += 1;
            i += 2;
        } else if (c == '[') {
            size_t j = i + 1;
            if (p[j] == '^')
                j++;
            if (p[j] == ']')
                j++;
            while (p[j] != '\0' && p[j] != ']') {
                if (p[j] == '[' && (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '=')) {
                    char close = p[j + 1];
                    const char *e = strchr(p + j + 2, close);
                    if (e == NULL || e[1] != ']')
                        return false;
                    j = (size_t)(e - p) + 2;
                    continue;
                }
                j++;
            }
            if (p[j] != ']')
                return false;
            last[d] = 1;
            sum[d] += 1;
            i = j + 1;
        } else if (c == '(') {
            if (d >= RE_MAX_GROUPS)
                return false;
            d++;
            sum[d] = last[d] = 0;
            i++;
            atom = false;
        } else if (c == ')') {
            if (d == 0)
                return false;
            uint64_t w = sum[d] ? sum[d] : 1;
            d--;
            last[d] = w;
            sum[d] += w;
            i++;
        } else if (c == '{' || c == '*' || c == '+' || c == '?') {
            /* glibc copies the quantified atom: a{m,n} into n copies, a+ into a a*; a
             * quantifier on a quantifier (a++, a{2}{3}) nests the copies: refused */
            if (!quant_ok)
                return false;
            unsigned long mult = c == '+' ? 2 : 1;
            size_t j = i + 1;
            if (c == '{') {
                unsigned long m = 0, n = 0;
                bool have_n = false, comma = false;
                if (!isdigit((unsigned char)p[j]))
                    return false;
                while (isdigit((unsigned char)p[j])) {
                    m = m * 10 + (unsigned long)(p[j++] - '0');
                    if (m > RE_MAX_BOUND)
                        return false;
                }
                if (p[j] == ',') {
                    comma = true;
                    j++;
                    while (isdigit((unsigned char)p[j])) {
                        have_n = true;
                        n = n * 10 + (unsigned long)(p[j++] - '0');
                        if (n > RE_MAX_BOUND)
                            return false;
                    }
                }
                if (p[j] != '}')
                    return false;
                j++;
                mult = have_n ? n : (comma ? m + 1 : m);
                if (mult == 0)
                    mult = 1;
            }
            uint64_t a = last[d] ? last[d] : 1;
            sum[d] += a * (mult - 1);
            last[d] = a * mult;
            i = j;
            quant_ok = false;
            atom = false;
        } else if (c == '|') {
            i++;
            atom = false;
        } else { /* any other character, '.', '^', '$' */
            last[d] = 1;
            sum[d] += 1;
            i++;
        }
        if (atom)
            quant_ok = true;
        else if (c == '(' || c == '|')
            quant_ok = false;
        uint64_t total = 0;
        for (size_t k = 0; k <= d; k++)
            total += sum[k];
        if (total > RE_MAX_WEIGHT)
            return false;
    }
    return d == 0;
}

bool ngsi_regex_compile(const char *pat, regex_t *re, ngsi_err_t *err)
{
    size_t n = strlen(pat);
    if (n == 0 || n > NGSI_MAX_PATTERN) {
        ngsi_err_set(err, 400, "BadRequest", "pattern length must be 1..%d", NGSI_MAX_PATTERN);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)pat[i] < 0x20 || (unsigned char)pat[i] >= 0x7f)
            return bad(err, "Invalid regex: only printable ASCII allowed");
    if (!re_weight_ok(pat))
        return bad(err, "Invalid regex: too complex (bounded repetitions, nesting or "
                        "back-references)");
    if (regcomp(re, pat, REG_EXTENDED | REG_NOSUB) != 0)
        return bad(err, "Invalid regex");
    return true;
}

/* ------------------------------------------------------------ correlator */

static bool corr_char_ok(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '_' || c == '.' || c == ';' || c == ':';
}

static void random_bytes(uint8_t *r, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = getrandom(r + got, n - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got < n) { /* not a secret (ids, correlators): time and a counter will do */
        static unsigned long ctr;
        uint64_t t = (uint64_t)ngsi_mono_ms() ^ (uint64_t)ngsi_now_ms() << 20 ^
                     (uint64_t)__atomic_add_fetch(&ctr, 1, __ATOMIC_RELAXED) << 40;
        for (size_t i = got; i < n; i++)
            r[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)(i * 131u);
    }
}

void ngsi_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t r[64];
    if (nbytes > sizeof r)
        nbytes = sizeof r;
    random_bytes(r, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

void ngsi_correlator(const char *hdr, char out[NGSI_CORR_SIZE])
{
    if (hdr != NULL) {
        size_t n = 0;
        while (hdr[n] != '\0' && n < NGSI_CORR_SIZE - 1 && corr_char_ok((unsigned char)hdr[n]))
            n++;
        if (n > 0 && hdr[n] == '\0') {
            memcpy(out, hdr, n);
            out[n] = '\0';
            return;
        }
    }
    /* not a secret: a per-thread generator seeded once (no syscall per request) */
    static _Thread_local uint64_t st[2];
    if (st[0] == 0 && st[1] == 0) {
        random_bytes((uint8_t *)st, sizeof st);
        st[0] |= 1;
    }
    uint8_t r[16];
    for (size_t k = 0; k < 2; k++) { /* xorshift128+ */
        uint64_t a = st[0], b = st[1];
        st[0] = b;
        a ^= a << 23;
        st[1] = a ^ b ^ (a >> 17) ^ (b >> 26);
        uint64_t v = st[1] + b;
        memcpy(r + 8 * k, &v, 8);
    }
    r[6] = (uint8_t)((r[6] & 0x0F) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3F) | 0x80);
    snprintf(out, NGSI_CORR_SIZE,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
}

/* ------------------------------------------------------------ options */

bool ngsi_options_parse(const char *s, unsigned allowed, unsigned *out, ngsi_err_t *err)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {
        {"keyValues", NGSI_OPT_KEYVALUES},
        {"count", NGSI_OPT_COUNT},
        {"upsert", NGSI_OPT_UPSERT},
        {"append", NGSI_OPT_APPEND},
        {"overrideMetadata", NGSI_OPT_OVERRIDE_METADATA},
        {"values", NGSI_OPT_VALUES},
        {"forcedUpdate", NGSI_OPT_IGNORED},
        {"flowControl", NGSI_OPT_IGNORED},
        {"skipForwarding", NGSI_OPT_IGNORED},
        {"normalized", NGSI_OPT_IGNORED},
    };
    *out = 0;
    if (s == NULL)
        return true;
    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        bool found = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
            if (strlen(known[i].name) == n && strncmp(known[i].name, s, n) == 0) {
                if ((known[i].bit & allowed) == 0 && known[i].bit != NGSI_OPT_IGNORED) {
                    ngsi_err_set(err, 400, "BadRequest", "option not supported here: %s",
                                 known[i].name);
                    return false;
                }
                *out |= known[i].bit;
                found = true;
                break;
            }
        }
        if (!found && n > 0) {
            ngsi_err_set(err, 400, "BadRequest", "Invalid value for URI param /options/");
            return false;
        }
        s += n;
        if (*s == ',')
            s++;
    }
    return true;
}

/* ------------------------------------------------------------ entities */

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static bool oom(ngsi_err_t *err)
{
    ngsi_err_set(err, 500, "InternalServerError", "out of memory");
    return false;
}

/* metadata object -> normalized {"name": {"type": T, "value": V}} (src consumed by caller) */
static cJSON *metadata_norm(cJSON *src, const ngsi_limits_t *lim, ngsi_err_t *err)
{
    if (!cJSON_IsObject(src)) {
        bad(err, "metadata must be a JSON object");
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    if (out == NULL) {
        oom(err);
        return NULL;
    }
    unsigned count = 0;
    for (cJSON *m = src->child, *next; m != NULL; m = next) {
        next = m->next;
        if (++count > lim->max_metadata) {
            ngsi_err_set(err, 413, "RequestEntityTooLarge", "too many metadata (max %u)",
                         lim->max_metadata);
            goto fail;
        }
        if (!ngsi_name_ok(m->string)) {
            bad(err, "Invalid characters in metadata name");
            goto fail;
        }
        if (cJSON_GetObjectItemCaseSensitive(out, m->string) != NULL) {
            bad(err, "duplicated metadata name");
            goto fail;
        }
        cJSON *value = NULL;
        const char *type = NULL;
        if (cJSON_IsObject(m)) {
            for (cJSON *f = m->child; f != NULL; f = f->next) {
                if (strcmp(f->string, "value") == 0) {
                    value = f;
                } else if (strcmp(f->string, "type") == 0) {
                    if (!cJSON_IsString(f) || !ngsi_name_ok(f->valuestring)) {
                        bad(err, "Invalid characters in metadata type");
                        goto fail;
                    }
                    type = f->valuestring;
                } else {
                    bad(err, "unrecognized property for metadata");
                    goto fail;
                }
            }
        } else {
            value = m; /* a plain value: type inferred (tolerated, stored normalized) */
        }
        bool unrestricted = type != NULL && strcmp(type, "TextUnrestricted") == 0;
        if (value != NULL && !value_ok(value, unrestricted)) {
            bad(err, "Invalid characters in metadata value");
            goto fail;
        }
        cJSON *nm = cJSON_CreateObject();
        cJSON *v = value != NULL ? cJSON_Duplicate(value, 1) : cJSON_CreateNull();
        if (nm == NULL || v == NULL ||
            !cJSON_AddItemToObject(nm, "type", cJSON_CreateString(type ? type : default_type(v))) ||
            !cJSON_AddItemToObject(nm, "value", v) || !cJSON_AddItemToObject(out, m->string, nm)) {
            cJSON_Delete(nm);
            oom(err);
            goto fail;
        }
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/*
 * One attribute -> normalized object. The value is moved out of the request
 * tree (src's member, or src itself - detached from parent - for keyValues),
 * copied only when there is no parent.
 */
static cJSON *attr_norm(cJSON *parent, cJSON *src, unsigned flags, const ngsi_limits_t *lim,
                        ngsi_err_t *err)
{
    cJSON *value = NULL, *md = NULL;
    const char *type = NULL;
    if ((flags & NGSI_F_KEYVALUES) != 0) {
        value = src;
    } else {
        if (!cJSON_IsObject(src)) {
            bad(err, "attribute must be a JSON object, unless keyValues option is used");
            return NULL;
        }
        for (cJSON *f = src->child; f != NULL; f = f->next) {
            if (strcmp(f->string, "value") == 0) {
                value = f;
            } else if (strcmp(f->string, "type") == 0) {
                if (!cJSON_IsString(f) || !ngsi_name_ok(f->valuestring)) {
                    bad(err, "Invalid characters in attribute type");
                    return NULL;
                }
                type = f->valuestring;
            } else if (strcmp(f->string, "metadata") == 0) {
                md = f;
            } else {
                bad(err, "unrecognized property for context attribute");
                return NULL;
            }
        }
    }
    bool unrestricted = type != NULL && strcmp(type, "TextUnrestricted") == 0;
    if (value != NULL && !value_ok(value, unrestricted)) {
        bad(err, "Invalid characters in attribute value");
        return NULL;
    }
    cJSON *nmd = md != NULL ? metadata_norm(md, lim, err) : cJSON_CreateObject();
    if (nmd == NULL) {
        if (md == NULL)
            oom(err);
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *v;
    if (value == NULL)
        v = cJSON_CreateNull();
    else if (value == src)
        v = parent != NULL ? cJSON_DetachItemViaPointer(parent, src) : cJSON_Duplicate(src, 1);
    else
        v = cJSON_DetachItemViaPointer(src, value); /* moved, not copied */
    cJSON *t = cJSON_CreateString(type != NULL ? type : default_type(v));
    if (out == NULL || v == NULL || t == NULL) {
        cJSON_Delete(out);
        cJSON_Delete(v);
        cJSON_Delete(t);
        cJSON_Delete(nmd);
        oom(err);
        return NULL;
    }
    cJSON_AddItemToObject(out, "type", t);
    cJSON_AddItemToObject(out, "value", v);
    cJSON_AddItemToObject(out, "metadata", nmd);
    return out;
}

cJSON *ngsi_attr_parse(const char *name, cJSON *body, unsigned flags, const ngsi_limits_t *lim,
                       ngsi_err_t *err)
{
    if (!ngsi_name_ok(name) || strcmp(name, "id") == 0 || strcmp(name, "type") == 0) {
        bad(err, "Invalid characters in attribute name");
        return NULL;
    }
    return attr_norm(NULL, body, flags, lim, err);
}

void ngsi_ent_in_free(ngsi_ent_in_t *e)
{
    if (e == NULL)
        return;
    free(e->id);
    free(e->type);
    cJSON_Delete(e->attrs);
    memset(e, 0, sizeof *e);
}

bool ngsi_entity_parse(cJSON *body, unsigned flags, const ngsi_limits_t *lim, ngsi_ent_in_t *out,
                       ngsi_err_t *err)
{
    memset(out, 0, sizeof *out);
    bool attrs_only = (flags & NGSI_F_ATTRS_ONLY) != 0;
    if (!cJSON_IsObject(body))
        return bad(err, attrs_only ? "attributes must be a JSON object"
                                   : "entity must be a JSON object");
    out->attrs = cJSON_CreateObject();
    if (out->attrs == NULL)
        return oom(err);
    for (cJSON *item = body->child, *next; item != NULL; item = next) {
        next = item->next;
        const char *k = item->string;
        char kbuf[NGSI_MAX_NAME + 1];
        if (k == NULL)
            goto badreq;
        if (strcmp(k, "id") == 0 || strcmp(k, "type") == 0) {
            if (attrs_only) {
                bad(err, "Invalid characters in attribute name");
                goto fail;
            }
            bool is_id = k[0] == 'i';
            if (!cJSON_IsString(item)) {
                bad(err, is_id ? "Invalid JSON type for entity id" : "Invalid JSON type for "
                                                                      "entity type");
                goto fail;
            }
            if (!ngsi_name_ok(item->valuestring)) {
                ngsi_err_set(err, 400, "BadRequest", "%s",
                             strlen(item->valuestring) > NGSI_MAX_NAME
                                 ? (is_id ? "entity id length too long (max 256)"
                                          : "entity type length too long (max 256)")
                                 : (is_id ? "Invalid characters in entity id"
                                          : "Invalid characters in entity type"));
                goto fail;
            }
            char **dst = is_id ? &out->id : &out->type;
            if (*dst != NULL)
                goto badreq;
            if ((*dst = xstrdup(item->valuestring)) == NULL) {
                oom(err);
                goto fail;
            }
            continue;
        }
        if (!attrs_only && (strcmp(k, "idPattern") == 0 || strcmp(k, "typePattern") == 0)) {
            bad(err, "Invalid JSON field for an entity: idPattern/typePattern");
            goto fail;
        }
        if (!ngsi_name_ok(k)) {
            bad(err, strlen(k) > NGSI_MAX_NAME ? "attribute name length too long (max 256)"
                                               : "Invalid characters in attribute name");
            goto fail;
        }
        if (++out->nattrs > lim->max_attrs) {
            ngsi_err_set(err, 413, "RequestEntityTooLarge", "too many attributes (max %u)",
                         lim->max_attrs);
            goto fail;
        }
        if (cJSON_GetObjectItemCaseSensitive(out->attrs, k) != NULL) {
            bad(err, "duplicated attribute name");
            goto fail;
        }
        strcpy(kbuf, k); /* item (and its key) may move into the attribute */
        k = kbuf;
        cJSON *a;
        if ((flags & NGSI_F_NAMES_ONLY) != 0) {
            a = cJSON_CreateNull();
            if (a == NULL) {
                oom(err);
                goto fail;
            }
        } else if ((a = attr_norm(body, item, flags, lim, err)) == NULL) {
            goto fail;
        }
        if (!cJSON_AddItemToObject(out->attrs, k, a)) {
            cJSON_Delete(a);
            oom(err);
            goto fail;
        }
    }
    if (!attrs_only && out->id == NULL) {
        bad(err, "entity id is missing");
        goto fail;
    }
    return true;
badreq:
    bad(err, "Invalid JSON field");
fail:
    ngsi_ent_in_free(out);
    return false;
}

void ngsi_ents_free(ngsi_ent_in_t *ents, size_t n)
{
    if (ents == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        ngsi_ent_in_free(&ents[i]);
    free(ents);
}

bool ngsi_batch_parse(cJSON *body, unsigned flags, const ngsi_limits_t *lim, ngsi_action_t *act,
                      ngsi_ent_in_t **ents, size_t *n, ngsi_err_t *err)
{
    static const struct {
        const char *name;
        ngsi_action_t act;
    } acts[] = {
        {"append", NGSI_ACT_APPEND},   {"appendStrict", NGSI_ACT_APPEND_STRICT},
        {"update", NGSI_ACT_UPDATE},   {"delete", NGSI_ACT_DELETE},
        {"replace", NGSI_ACT_REPLACE},
    };
    *ents = NULL;
    *n = 0;
    *act = NGSI_ACT_NONE;
    if (!cJSON_IsObject(body))
        return bad(err, "request must be a JSON object");
    cJSON *list = NULL;
    for (cJSON *f = body->child; f != NULL; f = f->next) {
        if (strcmp(f->string, "actionType") == 0) {
            if (!cJSON_IsString(f))
                return bad(err, "invalid update action type");
            for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
                if (strcmp(acts[i].name, f->valuestring) == 0)
                    *act = acts[i].act;
            if (*act == NGSI_ACT_NONE)
                return bad(err, "invalid update action type: right ones are: append, "
                                "appendStrict, delete, replace, update");
        } else if (strcmp(f->string, "entities") == 0) {
            if (!cJSON_IsArray(f))
                return bad(err, "entities must be a JSON array");
            list = f;
        } else {
            return bad(err, "Invalid JSON field in the update request");
        }
    }
    if (*act == NGSI_ACT_NONE)
        return bad(err, "actionType is missing");
    if (list == NULL || list->child == NULL)
        return bad(err, "no entities in the update request");
    size_t count = (size_t)cJSON_GetArraySize(list);
    if (count > lim->max_batch_entities) {
        ngsi_err_set(err, 413, "RequestEntityTooLarge", "too many entities (max %u)",
                     lim->max_batch_entities);
        return false;
    }
    ngsi_ent_in_t *arr = calloc(count, sizeof *arr);
    if (arr == NULL)
        return oom(err);
    size_t i = 0;
    unsigned f = flags | (*act == NGSI_ACT_DELETE ? NGSI_F_NAMES_ONLY : 0);
    for (cJSON *e = list->child; e != NULL && i < count; e = e->next, i++) {
        if (!ngsi_entity_parse(e, f, lim, &arr[i], err)) {
            ngsi_ents_free(arr, i);
            return false;
        }
    }
    *ents = arr;
    *n = i;
    return true;
}

/* ------------------------------------------------------------ query parameters */

static bool parse_uint(const char *s, size_t max, size_t *out)
{
    size_t v = 0;
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
        v = v * 10 + (size_t)(*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

/* "a,b,c" -> items (copied into *cursor space), each a valid name. */
static bool parse_list(const char *s, const char **items, size_t *n, char **cursor,
                       const char *what, ngsi_err_t *err)
{
    *n = 0;
    while (true) {
        size_t len = strcspn(s, ",");
        if (*n >= NGSI_MAX_LIST) {
            ngsi_err_set(err, 400, "BadRequest", "too many items in URI param /%s/", what);
            return false;
        }
        char *d = *cursor;
        memcpy(d, s, len);
        d[len] = '\0';
        *cursor += len + 1;
        if (!ngsi_name_ok(d)) {
            ngsi_err_set(err, 400, "BadRequest", "Invalid characters in URI param /%s/", what);
            return false;
        }
        items[(*n)++] = d;
        s += len;
        if (*s == '\0')
            break;
        s++;
    }
    return true;
}

void ngsi_list_q_free(ngsi_list_q_t *q)
{
    if (q->has_idre)
        regfree(&q->idre);
    if (q->has_typere)
        regfree(&q->typere);
    free(q->store);
    memset(q, 0, sizeof *q);
}

bool ngsi_list_q_parse(ngsi_arg_fn arg, void *ctx, int kind, ngsi_list_q_t *q, ngsi_err_t *err)
{
    memset(q, 0, sizeof *q);
    q->limit = NGSI_DEFAULT_LIMIT;
    static const char *const unsupported[] = {"q",        "mq",      "georel", "geometry", "coords",
                                              "metadata", "orderBy", "expression"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        if (arg(ctx, unsupported[i]) != NULL) {
            ngsi_err_set(err, 400, "BadRequest", "URI param /%s/ is not supported by this broker",
                         unsupported[i]);
            return false;
        }
    }
    const char *lim = arg(ctx, "limit"), *off = arg(ctx, "offset"), *opt = arg(ctx, "options");
    const char *ids = arg(ctx, "id"), *types = arg(ctx, "type"), *attrs = arg(ctx, "attrs");
    const char *idp = arg(ctx, "idPattern"), *typep = arg(ctx, "typePattern");
    if (kind == NGSI_Q_ONE)
        ids = idp = typep = lim = off = NULL;
    if (lim != NULL && !parse_uint(lim, NGSI_MAX_LIMIT, &q->limit))
        q->limit = 0;
    if (lim != NULL && q->limit == 0) {
        ngsi_err_set(err, 400, "BadRequest",
                     "Bad pagination limit: must be a decimal number between 1 and %d",
                     NGSI_MAX_LIMIT);
        return false;
    }
    if (off != NULL && !parse_uint(off, 1000000000u, &q->offset)) {
        ngsi_err_set(err, 400, "BadRequest", "Bad pagination offset: must be a decimal number");
        return false;
    }
    unsigned allowed = NGSI_OPT_KEYVALUES | (kind == NGSI_Q_LIST ? NGSI_OPT_COUNT : 0);
    if (!ngsi_options_parse(opt, allowed, &q->options, err))
        return false;
    if (ids != NULL && idp != NULL)
        return bad(err, "Incompatible parameters: id, IdPattern");
    if (types != NULL && typep != NULL)
        return bad(err, "Incompatible parameters: type, typePattern");
    size_t need = 3 + (ids ? strlen(ids) : 0) + (types ? strlen(types) : 0) +
                  (attrs ? strlen(attrs) : 0);
    q->store = malloc(need + 3);
    if (q->store == NULL)
        return oom(err);
    char *cur = q->store;
    if (ids != NULL && !parse_list(ids, q->ids, &q->nids, &cur, "id", err))
        return false;
    if (types != NULL && !parse_list(types, q->types, &q->ntypes, &cur, "type", err))
        return false;
    if (attrs != NULL && !parse_list(attrs, q->attrs, &q->nattrs, &cur, "attrs", err))
        return false;
    for (size_t i = 0; i < q->nattrs; i++)
        if (strcmp(q->attrs[i], "*") == 0)
            q->nattrs = 0; /* every attribute */
    if (idp != NULL) {
        if (!ngsi_regex_compile(idp, &q->idre, err))
            return false;
        q->has_idre = true;
    }
    if (typep != NULL) {
        if (!ngsi_regex_compile(typep, &q->typere, err))
            return false;
        q->has_typere = true;
    }
    return true;
}

/* ------------------------------------------------------------ rendering */

static bool wanted(const ngsi_render_t *r, const char *name)
{
    if (r->nattrs == 0)
        return true;
    for (size_t i = 0; i < r->nattrs; i++)
        if (strcmp(r->attrs[i], name) == 0)
            return true;
    return false;
}

static void put_tree(ngsi_buf_t *b, const cJSON *j)
{
    size_t n = 0;
    char *s = ngsi_json_print(j, &n);
    if (s == NULL) {
        b->failed = true;
        return;
    }
    nb_put(b, s, n);
    cJSON_free(s);
}

void ngsi_render_entity_tree(ngsi_buf_t *b, const char *id, const char *type, const cJSON *attrs,
                             const ngsi_render_t *r)
{
    bool first = true;
    nb_putc(b, '{');
    if (r->with_id) {
        nb_puts(b, "\"id\":");
        nb_json_str(b, id);
        nb_puts(b, ",\"type\":");
        nb_json_str(b, type);
        first = false;
    }
    for (const cJSON *a = attrs != NULL ? attrs->child : NULL; a != NULL; a = a->next) {
        if (!wanted(r, a->string))
            continue;
        if (!first)
            nb_putc(b, ',');
        first = false;
        nb_json_str(b, a->string);
        nb_putc(b, ':');
        if (r->keyvalues) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, "value");
            if (v != NULL)
                put_tree(b, v);
            else
                nb_puts(b, "null");
        } else {
            put_tree(b, a);
        }
    }
    nb_putc(b, '}');
}

bool ngsi_render_entity(ngsi_buf_t *b, const char *id, const char *type, const char *doc,
                        size_t doc_len, const ngsi_render_t *r)
{
    if (doc_len < 2 || doc[0] != '{' || doc[doc_len - 1] != '}')
        return false; /* the store is untrusted too: never splice a broken document */
    if (!r->keyvalues && r->nattrs == 0) { /* the cheap path: splice the stored text */
        if (!r->with_id) {
            nb_put(b, doc, doc_len);
            return true;
        }
        nb_puts(b, "{\"id\":");
        nb_json_str(b, id);
        nb_puts(b, ",\"type\":");
        nb_json_str(b, type);
        if (doc_len > 2) {
            nb_putc(b, ',');
            nb_put(b, doc + 1, doc_len - 1);
        } else {
            nb_putc(b, '}');
        }
        return true;
    }
    ngsi_err_t err;
    cJSON *t = ngsi_json_parse(doc, doc_len, CL_NGSI_DEFAULT_MAX_DEPTH * 2, NULL, &err);
    if (t == NULL || !cJSON_IsObject(t)) {
        cJSON_Delete(t);
        return false;
    }
    ngsi_render_entity_tree(b, id, type, t, r);
    cJSON_Delete(t);
    return true;
}

void ngsi_render_error(ngsi_buf_t *b, const ngsi_err_t *e)
{
    nb_puts(b, "{\"error\":");
    nb_json_str(b, e->error != NULL ? e->error : "InternalServerError");
    nb_puts(b, ",\"description\":");
    nb_json_str(b, e->desc);
    nb_putc(b, '}');
}

/* ------------------------------------------------------------ time */

int64_t ngsi_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ngsi_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void ngsi_iso8601(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        strcpy(out, "1970-01-01T00:00:00.000Z");
        return;
    }
    char base[24];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%03dZ", base, (int)(ms % 1000));
}

static bool digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*s)[i]))
            return false;
        v = v * 10 + ((*s)[i] - '0');
    }
    *s += n;
    *out = v;
    return true;
}

bool ngsi_parse_iso8601(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return false;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31)
        return false; /* (before 1970: no use for expiry dates, and ms stay positive) */
    int64_t offset_min = 0;
    if (*s == 'T') {
        s++;
        if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi))
            return false;
        if (*s == ':') {
            s++;
            if (!digits(&s, 2, &sec))
                return false;
            if (*s == '.') {
                s++;
                int nd = 0, scale = 100;
                while (isdigit((unsigned char)*s)) {
                    if (nd < 3)
                        frac += (*s - '0') * scale;
                    scale /= 10;
                    nd++;
                    s++;
                    if (nd > 9)
                        return false;
                }
                if (nd == 0)
                    return false;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return false;
        if (*s == 'Z') {
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s == '-' ? -1 : 1, oh, om;
            s++;
            if (!digits(&s, 2, &oh) || *s++ != ':' || !digits(&s, 2, &om) || oh > 23 || om > 59)
                return false;
            offset_min = sign * (oh * 60 + om);
        }
    }
    if (*s != '\0')
        return false;
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *ms = secs * 1000 + frac;
    return true;
}

/* ------------------------------------------------------------ subscriptions */

static void free_strv(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void ngsi_sub_free(ngsi_sub_t *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nents; i++) {
        ngsi_sub_ent_t *e = &s->ents[i];
        if (e->id_re)
            regfree(&e->idre);
        if (e->type_re)
            regfree(&e->typere);
        free(e->id);
        free(e->type);
    }
    free(s->ents);
    free_strv(s->cond, s->ncond);
    free_strv(s->attrs, s->nattrs);
    free(s->description);
    free(s->url);
    free(s);
}

/* JSON array of names -> owned vector. */
static bool name_array(const cJSON *a, char ***out, size_t *n, const char *what, ngsi_err_t *err)
{
    if (!cJSON_IsArray(a)) {
        ngsi_err_set(err, 400, "BadRequest", "%s must be a JSON array", what);
        return false;
    }
    size_t count = (size_t)cJSON_GetArraySize(a);
    if (count > NGSI_MAX_LIST) {
        ngsi_err_set(err, 400, "BadRequest", "too many items in %s", what);
        return false;
    }
    char **v = calloc(count ? count : 1, sizeof *v);
    if (v == NULL)
        return oom(err);
    size_t i = 0;
    for (const cJSON *c = a->child; c != NULL; c = c->next) {
        if (!cJSON_IsString(c) || !ngsi_name_ok(c->valuestring)) {
            free_strv(v, i);
            ngsi_err_set(err, 400, "BadRequest", "Invalid characters in %s", what);
            return false;
        }
        if ((v[i] = xstrdup(c->valuestring)) == NULL) {
            free_strv(v, i);
            return oom(err);
        }
        i++;
    }
    free_strv(*out, *n);
    *out = v;
    *n = i;
    return true;
}

static bool url_ok(const char *u)
{
    size_t n = strlen(u);
    const char *rest;
    if (n > NGSI_MAX_URL)
        return false;
    if (strncmp(u, "http://", 7) == 0)
        rest = u + 7;
    else if (strncmp(u, "https://", 8) == 0)
        rest = u + 8;
    else
        return false;
    if (*rest == '\0' || *rest == '/' || *rest == '?' || *rest == '#')
        return false; /* no host */
    for (const char *p = u; *p != '\0'; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

static bool sub_subject(ngsi_sub_t *s, const cJSON *subj, ngsi_err_t *err)
{
    if (!cJSON_IsObject(subj))
        return bad(err, "subject must be a JSON object");
    const cJSON *ents = NULL;
    for (const cJSON *f = subj->child; f != NULL; f = f->next) {
        if (strcmp(f->string, "entities") == 0) {
            ents = f;
        } else if (strcmp(f->string, "condition") == 0) {
            if (!cJSON_IsObject(f))
                return bad(err, "condition must be a JSON object");
            for (const cJSON *c = f->child; c != NULL; c = c->next) {
                if (strcmp(c->string, "attrs") == 0) {
                    if (!name_array(c, &s->cond, &s->ncond, "condition attrs", err))
                        return false;
                } else if (strcmp(c->string, "notifyOnMetadataChange") == 0 &&
                           cJSON_IsBool(c)) {
                    /* metadata changes always notify here */
                } else {
                    ngsi_err_set(err, 400, "BadRequest",
                                 "condition field not supported by this broker");
                    return false;
                }
            }
        } else {
            return bad(err, "Invalid field in subject");
        }
    }
    if (!cJSON_IsArray(ents) || ents->child == NULL)
        return bad(err, "subject entities is missing or empty");
    size_t count = (size_t)cJSON_GetArraySize(ents);
    if (count > NGSI_MAX_LIST)
        return bad(err, "too many subject entities");
    s->ents = calloc(count, sizeof *s->ents);
    if (s->ents == NULL)
        return oom(err);
    for (const cJSON *e = ents->child; e != NULL; e = e->next) {
        if (!cJSON_IsObject(e))
            return bad(err, "subject entity must be a JSON object");
        ngsi_sub_ent_t *se = &s->ents[s->nents++];
        for (const cJSON *f = e->child; f != NULL; f = f->next) {
            bool is_id = strcmp(f->string, "id") == 0, is_idp = strcmp(f->string, "idPattern") == 0;
            bool is_t = strcmp(f->string, "type") == 0, is_tp = strcmp(f->string, "typePattern") == 0;
            if (!is_id && !is_idp && !is_t && !is_tp)
                return bad(err, "Invalid field in subject entity");
            if (!cJSON_IsString(f))
                return bad(err, "Invalid JSON type in subject entity");
            if (((is_id || is_idp) && se->id != NULL) || ((is_t || is_tp) && se->type != NULL))
                return bad(err, "id/idPattern or type/typePattern given twice");
            if ((is_id || is_t) && !ngsi_name_ok(f->valuestring))
                return bad(err, "Invalid characters in subject entity id or type");
            if (is_idp) {
                if (!ngsi_regex_compile(f->valuestring, &se->idre, err))
                    return false;
                se->id_re = true;
            }
            if (is_tp) {
                if (!ngsi_regex_compile(f->valuestring, &se->typere, err))
                    return false;
                se->type_re = true;
            }
            char *copy = xstrdup(f->valuestring);
            if (copy == NULL)
                return oom(err);
            if (is_id || is_idp)
                se->id = copy;
            else
                se->type = copy;
        }
        if (se->id == NULL)
            return bad(err, "subject entity needs id or idPattern");
    }
    return true;
}

static bool sub_notification(ngsi_sub_t *s, const cJSON *n, bool from_store, ngsi_err_t *err)
{
    if (!cJSON_IsObject(n))
        return bad(err, "notification must be a JSON object");
    bool have_attrs = false, have_except = false;
    for (const cJSON *f = n->child; f != NULL; f = f->next) {
        const char *k = f->string;
        if (strcmp(k, "http") == 0) {
            if (!cJSON_IsObject(f))
                return bad(err, "http must be a JSON object");
            for (const cJSON *h = f->child; h != NULL; h = h->next) {
                if (strcmp(h->string, "url") == 0) {
                    if (!cJSON_IsString(h) || !url_ok(h->valuestring))
                        return bad(err, "Invalid URL");
                    free(s->url);
                    if ((s->url = xstrdup(h->valuestring)) == NULL)
                        return oom(err);
                } else if (strcmp(h->string, "timeout") == 0) {
                    if (!cJSON_IsNumber(h) || h->valuedouble < 0 || h->valuedouble > 1800000 ||
                        h->valuedouble != (double)(unsigned)h->valuedouble)
                        return bad(err, "Invalid http timeout (0..1800000 ms)");
                    s->timeout_ms = (unsigned)h->valuedouble;
                } else {
                    return bad(err, "Invalid field in notification http");
                }
            }
        } else if (strcmp(k, "attrs") == 0) {
            if (!name_array(f, &s->attrs, &s->nattrs, "notification attrs", err))
                return false;
            have_attrs = true;
        } else if (strcmp(k, "exceptAttrs") == 0) {
            if (!name_array(f, &s->attrs, &s->nattrs, "notification exceptAttrs", err))
                return false;
            have_except = true;
            s->except = true;
        } else if (strcmp(k, "attrsFormat") == 0) {
            if (!cJSON_IsString(f))
                return bad(err, "Invalid attrsFormat");
            if (strcmp(f->valuestring, "keyValues") == 0)
                s->keyvalues = true;
            else if (strcmp(f->valuestring, "normalized") == 0)
                s->keyvalues = false;
            else
                return bad(err, "attrsFormat not supported by this broker (normalized, "
                                "keyValues)");
        } else if (strcmp(k, "onlyChangedAttrs") == 0 || strcmp(k, "covered") == 0) {
            if (!cJSON_IsBool(f) || cJSON_IsTrue(f))
                return bad(err, "onlyChangedAttrs / covered not supported by this broker");
        } else if (strcmp(k, "timesSent") == 0 || strcmp(k, "failsCounter") == 0 ||
                   strcmp(k, "lastSuccessCode") == 0) {
            if (!cJSON_IsNumber(f) || f->valuedouble < 0)
                return bad(err, "Invalid counter");
            if (from_store) {
                if (k[0] == 't')
                    s->times_sent = (uint64_t)f->valuedouble;
                else if (k[0] == 'f')
                    s->fails = (uint64_t)f->valuedouble;
                else
                    s->last_success_code = (long)f->valuedouble;
            }
        } else if (strcmp(k, "lastNotification") == 0 || strcmp(k, "lastSuccess") == 0 ||
                   strcmp(k, "lastFailure") == 0) {
            int64_t ms;
            if (!cJSON_IsString(f) || !ngsi_parse_iso8601(f->valuestring, &ms))
                return bad(err, "Invalid date");
            if (from_store) {
                if (strcmp(k, "lastNotification") == 0)
                    s->last_notification = ms;
                else if (strcmp(k, "lastSuccess") == 0)
                    s->last_success = ms;
                else
                    s->last_failure = ms;
            }
        } else if (strcmp(k, "lastFailureReason") == 0) {
            if (!cJSON_IsString(f))
                return bad(err, "Invalid lastFailureReason");
            if (from_store)
                snprintf(s->last_failure_reason, sizeof s->last_failure_reason, "%s",
                         f->valuestring);
        } else if (strcmp(k, "httpCustom") == 0 || strcmp(k, "mqtt") == 0 ||
                   strcmp(k, "mqttCustom") == 0 || strcmp(k, "kafka") == 0) {
            return bad(err, "only http notifications are supported by this broker");
        } else {
            return bad(err, "Invalid field in notification");
        }
    }
    if (have_attrs && have_except)
        return bad(err, "http notification has attrs and exceptAttrs");
    if (s->url == NULL)
        return bad(err, "http notification is missing (notification.http.url)");
    return true;
}

ngsi_sub_t *ngsi_sub_parse(cJSON *body, bool from_store, const ngsi_limits_t *lim,
                           ngsi_err_t *err)
{
    (void)lim;
    if (!cJSON_IsObject(body)) {
        bad(err, "subscription must be a JSON object");
        return NULL;
    }
    ngsi_sub_t *s = calloc(1, sizeof *s);
    if (s == NULL) {
        oom(err);
        return NULL;
    }
    bool have_subject = false, have_notif = false;
    for (const cJSON *f = body->child; f != NULL; f = f->next) {
        const char *k = f->string;
        if (strcmp(k, "description") == 0) {
            if (!cJSON_IsString(f) || strlen(f->valuestring) > NGSI_MAX_DESCRIPTION ||
                !ngsi_value_str_ok(f->valuestring)) {
                bad(err, "Invalid description");
                goto fail;
            }
            free(s->description);
            if ((s->description = xstrdup(f->valuestring)) == NULL) {
                oom(err);
                goto fail;
            }
        } else if (strcmp(k, "subject") == 0 || strcmp(k, "notification") == 0) {
            bool subj = k[0] == 's';
            if (subj ? have_subject : have_notif) {
                bad(err, subj ? "subject given twice" : "notification given twice");
                goto fail;
            }
            if (subj ? !sub_subject(s, f, err) : !sub_notification(s, f, from_store, err))
                goto fail;
            if (subj)
                have_subject = true;
            else
                have_notif = true;
        } else if (strcmp(k, "expires") == 0) {
            if (!cJSON_IsString(f) || !ngsi_parse_iso8601(f->valuestring, &s->expires_ms)) {
                bad(err, "expires is not a valid date (ISO 8601)");
                goto fail;
            }
        } else if (strcmp(k, "throttling") == 0) {
            if (!cJSON_IsNumber(f) || f->valuedouble < 0 || f->valuedouble > 31536000.0 ||
                f->valuedouble != (double)(int64_t)f->valuedouble) {
                bad(err, "throttling must be a non-negative integer (seconds)");
                goto fail;
            }
            s->throttling_s = (int64_t)f->valuedouble;
        } else if (strcmp(k, "status") == 0) {
            if (!cJSON_IsString(f)) {
                bad(err, "Invalid status");
                goto fail;
            }
            if (strcmp(f->valuestring, "inactive") == 0)
                s->inactive = true;
            else if (strcmp(f->valuestring, "active") == 0 ||
                     strcmp(f->valuestring, "failed") == 0 ||
                     strcmp(f->valuestring, "expired") == 0) /* (states shown by GET) */
                s->inactive = false;
            else {
                bad(err, "status must be active or inactive");
                goto fail;
            }
        } else if (strcmp(k, "id") == 0 && from_store) {
            if (!cJSON_IsString(f) || strlen(f->valuestring) != NGSI_SUB_ID_LEN ||
                strspn(f->valuestring, "0123456789abcdef") != NGSI_SUB_ID_LEN) {
                bad(err, "Invalid subscription id");
                goto fail;
            }
            memcpy(s->id, f->valuestring, NGSI_SUB_ID_LEN + 1);
        } else if (strcmp(k, "id") == 0) {
            /* an id in a request is ignored: the broker assigns one */
        } else {
            bad(err, "Invalid field for a subscription");
            goto fail;
        }
    }
    if (!have_subject) {
        bad(err, "no subject for subscription specified");
        goto fail;
    }
    if (!have_notif) {
        bad(err, "no notification for subscription specified");
        goto fail;
    }
    return s;
fail:
    ngsi_sub_free(s);
    return NULL;
}

bool ngsi_sub_matches(const ngsi_sub_t *s, const char *id, const char *type)
{
    for (size_t i = 0; i < s->nents; i++) {
        const ngsi_sub_ent_t *e = &s->ents[i];
        bool id_ok = e->id_re ? regexec(&e->idre, id, 0, NULL, 0) == 0 : strcmp(e->id, id) == 0;
        if (!id_ok)
            continue;
        if (e->type == NULL)
            return true;
        if (e->type_re ? regexec(&e->typere, type, 0, NULL, 0) == 0 : strcmp(e->type, type) == 0)
            return true;
    }
    return false;
}

static void put_strv(ngsi_buf_t *b, char *const *v, size_t n)
{
    nb_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            nb_putc(b, ',');
        nb_json_str(b, v[i]);
    }
    nb_putc(b, ']');
}

void ngsi_sub_render(ngsi_buf_t *b, const ngsi_sub_t *s, int64_t now_ms)
{
    char t[32];
    nb_puts(b, "{\"id\":");
    nb_json_str(b, s->id);
    if (s->description != NULL) {
        nb_puts(b, ",\"description\":");
        nb_json_str(b, s->description);
    }
    nb_puts(b, ",\"subject\":{\"entities\":[");
    for (size_t i = 0; i < s->nents; i++) {
        const ngsi_sub_ent_t *e = &s->ents[i];
        if (i > 0)
            nb_putc(b, ',');
        nb_puts(b, e->id_re ? "{\"idPattern\":" : "{\"id\":");
        nb_json_str(b, e->id);
        if (e->type != NULL) {
            nb_puts(b, e->type_re ? ",\"typePattern\":" : ",\"type\":");
            nb_json_str(b, e->type);
        }
        nb_putc(b, '}');
    }
    nb_puts(b, "],\"condition\":{\"attrs\":");
    put_strv(b, s->cond, s->ncond);
    nb_puts(b, "}},\"notification\":{");
    if (s->times_sent > 0)
        nb_printf(b, "\"timesSent\":%" PRIu64 ",", s->times_sent);
    if (s->last_notification > 0) {
        ngsi_iso8601(s->last_notification, t);
        nb_printf(b, "\"lastNotification\":\"%s\",", t);
    }
    nb_puts(b, s->except ? "\"exceptAttrs\":" : "\"attrs\":");
    put_strv(b, s->attrs, s->nattrs);
    nb_puts(b, ",\"onlyChangedAttrs\":false,\"attrsFormat\":");
    nb_puts(b, s->keyvalues ? "\"keyValues\"" : "\"normalized\"");
    nb_puts(b, ",\"http\":{\"url\":");
    nb_json_str(b, s->url);
    if (s->timeout_ms > 0)
        nb_printf(b, ",\"timeout\":%u", s->timeout_ms);
    nb_putc(b, '}');
    if (s->last_failure > 0) {
        ngsi_iso8601(s->last_failure, t);
        nb_printf(b, ",\"lastFailure\":\"%s\"", t);
    }
    if (s->last_failure_reason[0] != '\0') {
        nb_puts(b, ",\"lastFailureReason\":");
        nb_json_str(b, s->last_failure_reason);
    }
    if (s->last_success > 0) {
        ngsi_iso8601(s->last_success, t);
        nb_printf(b, ",\"lastSuccess\":\"%s\",\"lastSuccessCode\":%ld", t, s->last_success_code);
    }
    if (s->times_sent > 0)
        nb_printf(b, ",\"failsCounter\":%" PRIu64, s->fails);
    nb_puts(b, ",\"covered\":false}");
    if (s->expires_ms != 0) {
        ngsi_iso8601(s->expires_ms, t);
        nb_printf(b, ",\"expires\":\"%s\"", t);
    }
    const char *status = s->inactive                                        ? "inactive"
                         : (s->expires_ms != 0 && now_ms >= s->expires_ms) ? "expired"
                         : s->fails > 0                                     ? "failed"
                                                                            : "active";
    nb_printf(b, ",\"status\":\"%s\"", status);
    if (s->throttling_s > 0)
        nb_printf(b, ",\"throttling\":%" PRId64, s->throttling_s);
    nb_putc(b, '}');
}
