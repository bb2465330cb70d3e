/*
 * value.c - CBOR values as rules see them: event properties indexed once per
 * event, dotted paths, numbers, semantic equality and ordering, and the
 * value hash behind "changed".
 *
 * Why semantic: rule documents come from JSON (lib/json.c makes 21 an int
 * and 21.0 a float) and devices encode numbers as they like, so 21 must
 * equal 21.0 and "changed" must not fire when a device switches encodings.
 * A float that is integral and within int64 becomes an exact integer here,
 * so integer comparisons never go through a rounding double.
 *
 * Bounds: every walk is over bytes that were checked to be well-formed
 * (the event map by cl_eca_props_init, rule values by rule.c), every recursion
 * carries a depth bounded by CL_CBOR_MAX_DEPTH, and maps are matched by key
 * only up to EQ_MAP_UNORDERED pairs (O(n^2) key compares); larger maps
 * compare pair by pair in order. Nothing is copied: values are [p, end)
 * slices of the caller's buffers.
 */
#include <string.h>

#include "eca_internal.h"

#define EQ_MAP_UNORDERED 64u

/* 2^63 as a double: int64 covers [-2^63, 2^63). */
#define TWO63 9223372036854775808.0

/* ------------------------------------------------------------------ */
/* Hashes                                                              */
/* ------------------------------------------------------------------ */

uint64_t cl_eca_hash64(const void *p, size_t len)
{
    /* FNV-1a: short keys (type names, path segments); not keyed, see README */
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3u;
    }
    return h;
}

uint32_t cl_eca_hash32(const void *p, size_t len)
{
    uint64_t h = cl_eca_hash64(p, len);
    return (uint32_t)(h ^ (h >> 32));
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdu;
    return h ^ (h >> 33);
}

/* ------------------------------------------------------------------ */
/* Numbers                                                             */
/* ------------------------------------------------------------------ */

static void num_from_double(eca_num_t *n, double v)
{
    n->d = v;
    /* v == v excludes NaN; the range test excludes the infinities */
    if (v == v && v >= -TWO63 && v < TWO63 && (double)(int64_t)v == v) {
        n->is_int = true;
        n->i = (int64_t)v; /* -0.0 becomes 0 */
    } else {
        n->is_int = false;
        n->i = 0;
    }
}

bool cl_eca_num_get(const uint8_t *p, const uint8_t *end, eca_num_t *out)
{
    cl_cbor_dec_t d;
    if (p == NULL || p >= end)
        return false;
    unsigned major = p[0] >> 5, ai = p[0] & 0x1fu;
    cl_cbor_dec_init(&d, p, (size_t)(end - p));
    if (major == CL_CBOR_UINT) {
        uint64_t u;
        if (cl_cbor_dec_uint(&d, &u) != CL_OK)
            return false;
        if (u <= (uint64_t)INT64_MAX) {
            out->is_int = true;
            out->i = (int64_t)u;
            out->d = (double)u;
        } else {
            out->is_int = false;
            out->i = 0;
            out->d = (double)u;
        }
        return true;
    }
    if (major == CL_CBOR_NINT) {
        int64_t v;
        if (cl_cbor_dec_int(&d, &v) == CL_OK) {
            out->is_int = true;
            out->i = v;
            out->d = (double)v;
            return true;
        }
        /* below -2^63: only the 8-byte form, argument n >= 2^63, value -1 - n */
        if (ai != 27 || end - p < 9)
            return false;
        uint64_t n = 0;
        for (int k = 1; k <= 8; k++)
            n = n << 8 | p[k];
        out->is_int = false;
        out->i = 0;
        out->d = -1.0 - (double)n;
        return true;
    }
    if (major == CL_CBOR_SIMPLE && ai >= 25 && ai <= 27) {
        double v;
        if (cl_cbor_dec_double(&d, &v) != CL_OK)
            return false;
        num_from_double(out, v);
        return true;
    }
    return false;
}

int cl_eca_num_cmp(const eca_num_t *a, const eca_num_t *b)
{
    if (a->is_int && b->is_int)
        return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
    if (a->d < b->d)
        return -1;
    if (a->d > b->d)
        return 1;
    if (a->d == b->d)
        return 0;
    return 2; /* NaN */
}

bool cl_eca_num_eq(const eca_num_t *a, const eca_num_t *b)
{
    /* An integral float in int64 range is is_int already, so a mix of the
     * two kinds can only be a non-integral (or huge) float and an integer. */
    if (a->is_int != b->is_int)
        return false;
    return a->is_int ? a->i == b->i : a->d == b->d;
}

/* ------------------------------------------------------------------ */
/* Maps and paths                                                      */
/* ------------------------------------------------------------------ */

/* The value of the first pair of map item [p, end) whose key is the text key. */
static bool map_get(const uint8_t *p, const uint8_t *end, const char *key, size_t klen,
                    const uint8_t **v, const uint8_t **vend)
{
    cl_cbor_dec_t d;
    size_t pairs;
    cl_cbor_dec_init(&d, p, (size_t)(end - p));
    if (cl_cbor_dec_map(&d, &pairs) != CL_OK)
        return false; /* not a map: the path does not exist */
    for (size_t i = 0; i < pairs; i++) {
        const char *k;
        size_t kl;
        bool hit = false;
        if (cl_cbor_dec_tstr(&d, &k, &kl) == CL_OK)
            hit = kl == klen && memcmp(k, key, klen) == 0;
        else if (cl_cbor_dec_skip(&d) != CL_OK)
            return false;
        const uint8_t *raw;
        size_t rl;
        if (cl_cbor_dec_raw(&d, &raw, &rl) != CL_OK)
            return false;
        if (hit) {
            *v = raw;
            *vend = raw + rl;
            return true;
        }
    }
    return false;
}

bool cl_eca_props_init(eca_props_t *pt, const uint8_t *p, size_t len)
{
    static const uint8_t empty_map = 0xa0;
    cl_cbor_dec_t d;
    size_t pairs;
    pt->n = 0;
    pt->rest_pairs = 0;
    pt->rest = NULL;
    if (len == 0) { /* no properties: an empty map */
        p = &empty_map;
        len = 1;
    }
    pt->end = p + len;
    cl_cbor_dec_init(&d, p, len);
    if (cl_cbor_dec_map(&d, &pairs) != CL_OK)
        return false;
    /* One pass validates every nested item (cl_cbor_dec_skip) and records
     * where each top-level value is: the floor cost of reading an event. */
    for (size_t i = 0; i < pairs; i++) {
        const uint8_t *kstart = d.cur;
        const char *k;
        size_t kl;
        bool text = cl_cbor_dec_tstr(&d, &k, &kl) == CL_OK;
        if (!text && cl_cbor_dec_skip(&d) != CL_OK)
            return false;
        const uint8_t *v = d.cur;
        if (cl_cbor_dec_skip(&d) != CL_OK)
            return false;
        if (pt->rest != NULL || !text)
            continue;
        if (pt->n < ECA_PROPS_TABLE) {
            pt->kv[pt->n].k = (const uint8_t *)k;
            pt->kv[pt->n].klen = kl;
            pt->kv[pt->n].v = v;
            pt->kv[pt->n].vend = d.cur;
            pt->n++;
        } else {
            pt->rest = kstart;
            pt->rest_pairs = (uint32_t)(pairs - i);
        }
    }
    return cl_cbor_dec_at_end(&d);
}

static bool top_get(const eca_props_t *pt, const char *key, size_t klen, const uint8_t **v,
                    const uint8_t **vend)
{
    for (uint32_t i = 0; i < pt->n; i++) {
        if (pt->kv[i].klen == klen && memcmp(pt->kv[i].k, key, klen) == 0) {
            *v = pt->kv[i].v;
            *vend = pt->kv[i].vend;
            return true;
        }
    }
    if (pt->rest == NULL)
        return false;
    /* beyond the table: scan the remaining pairs (already validated) */
    cl_cbor_dec_t d;
    cl_cbor_dec_init(&d, pt->rest, (size_t)(pt->end - pt->rest));
    for (uint32_t i = 0; i < pt->rest_pairs; i++) {
        const char *k;
        size_t kl;
        bool hit = false;
        if (cl_cbor_dec_tstr(&d, &k, &kl) == CL_OK)
            hit = kl == klen && memcmp(k, key, klen) == 0;
        else if (cl_cbor_dec_skip(&d) != CL_OK)
            return false;
        const uint8_t *raw;
        size_t rl;
        if (cl_cbor_dec_raw(&d, &raw, &rl) != CL_OK)
            return false;
        if (hit) {
            *v = raw;
            *vend = raw + rl;
            return true;
        }
    }
    return false;
}

bool cl_eca_props_get(const eca_props_t *pt, const char *base, const eca_str_t *segs, unsigned nseg,
                   const uint8_t **v, const uint8_t **vend)
{
    if (nseg == 0 || !top_get(pt, base + segs[0].off, segs[0].len, v, vend))
        return false;
    for (unsigned i = 1; i < nseg; i++)
        if (!map_get(*v, *vend, base + segs[i].off, segs[i].len, v, vend))
            return false;
    return true;
}

/* Walks a dotted path; the first segment through first(). */
static bool path_walk(const eca_props_t *pt, const uint8_t *map, const uint8_t *end,
                      const char *path, size_t len, const uint8_t **v, const uint8_t **vend)
{
    size_t start = 0;
    bool first = true;
    const uint8_t *cur = map, *cend = end;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '.')
            continue;
        if (i == start)
            return false; /* empty segment (placeholders are checked; be safe) */
        bool ok = first && pt != NULL ? top_get(pt, path + start, i - start, &cur, &cend)
                                      : map_get(cur, cend, path + start, i - start, &cur, &cend);
        if (!ok)
            return false;
        first = false;
        start = i + 1;
    }
    *v = cur;
    *vend = cend;
    return true;
}

bool cl_eca_map_path(const uint8_t *map, const uint8_t *end, const char *path, size_t len,
                  const uint8_t **v, const uint8_t **vend)
{
    return map != NULL && path_walk(NULL, map, end, path, len, v, vend);
}

bool cl_eca_props_path(const eca_props_t *pt, const char *path, size_t len, const uint8_t **v,
                    const uint8_t **vend)
{
    return path_walk(pt, NULL, NULL, path, len, v, vend);
}

/* ------------------------------------------------------------------ */
/* Equality and hash                                                   */
/* ------------------------------------------------------------------ */

static bool eq_rec(const uint8_t *a, const uint8_t *aend, const uint8_t *b, const uint8_t *bend,
                   unsigned depth);

/* Splits the next item off d into [*p, *end). */
static bool next_item(cl_cbor_dec_t *d, const uint8_t **p, const uint8_t **end)
{
    size_t len;
    if (cl_cbor_dec_raw(d, p, &len) != CL_OK)
        return false;
    *end = *p + len;
    return true;
}

static bool map_eq(cl_cbor_dec_t *da, cl_cbor_dec_t *db, size_t pairs, unsigned depth)
{
    if (pairs > EQ_MAP_UNORDERED) {
        /* large maps: pair by pair in order (bounded work) */
        for (size_t i = 0; i < 2 * pairs; i++) {
            const uint8_t *a, *ae, *b, *be;
            if (!next_item(da, &a, &ae) || !next_item(db, &b, &be) ||
                !eq_rec(a, ae, b, be, depth + 1))
                return false;
        }
        return true;
    }
    const uint8_t *bstart = db->cur;
    for (size_t i = 0; i < pairs; i++) {
        const uint8_t *ka, *kae, *va, *vae;
        if (!next_item(da, &ka, &kae) || !next_item(da, &va, &vae))
            return false;
        cl_cbor_dec_t s;
        cl_cbor_dec_init(&s, bstart, (size_t)(db->end - bstart));
        bool found = false;
        for (size_t j = 0; j < pairs && !found; j++) {
            const uint8_t *kb, *kbe, *vb, *vbe;
            if (!next_item(&s, &kb, &kbe) || !next_item(&s, &vb, &vbe))
                return false;
            if (eq_rec(ka, kae, kb, kbe, depth + 1)) {
                if (!eq_rec(va, vae, vb, vbe, depth + 1))
                    return false;
                found = true;
            }
        }
        if (!found)
            return false;
    }
    return true;
}

static bool eq_rec(const uint8_t *a, const uint8_t *aend, const uint8_t *b, const uint8_t *bend,
                   unsigned depth)
{
    if (depth > CL_CBOR_MAX_DEPTH || a >= aend || b >= bend)
        return false;
    eca_num_t na, nb;
    bool an = cl_eca_num_get(a, aend, &na), bn = cl_eca_num_get(b, bend, &nb);
    if (an || bn)
        return an && bn && cl_eca_num_eq(&na, &nb);
    unsigned ma = a[0] >> 5, mb = b[0] >> 5;
    if (ma != mb)
        return false;
    cl_cbor_dec_t da, db;
    cl_cbor_dec_init(&da, a, (size_t)(aend - a));
    cl_cbor_dec_init(&db, b, (size_t)(bend - b));
    switch (ma) {
    case CL_CBOR_BSTR:
    case CL_CBOR_TSTR: {
        const uint8_t *pa, *pb;
        size_t la, lb;
        if (ma == CL_CBOR_BSTR) {
            if (cl_cbor_dec_bstr(&da, &pa, &la) != CL_OK || cl_cbor_dec_bstr(&db, &pb, &lb) != CL_OK)
                return false;
        } else {
            const char *ta, *tb;
            if (cl_cbor_dec_tstr(&da, &ta, &la) != CL_OK || cl_cbor_dec_tstr(&db, &tb, &lb) != CL_OK)
                return false;
            pa = (const uint8_t *)ta;
            pb = (const uint8_t *)tb;
        }
        return la == lb && memcmp(pa, pb, la) == 0;
    }
    case CL_CBOR_ARRAY: {
        size_t na_, nb_;
        if (cl_cbor_dec_array(&da, &na_) != CL_OK || cl_cbor_dec_array(&db, &nb_) != CL_OK ||
            na_ != nb_)
            return false;
        for (size_t i = 0; i < na_; i++) {
            const uint8_t *x, *xe, *y, *ye;
            if (!next_item(&da, &x, &xe) || !next_item(&db, &y, &ye) ||
                !eq_rec(x, xe, y, ye, depth + 1))
                return false;
        }
        return true;
    }
    case CL_CBOR_MAP: {
        size_t pa_, pb_;
        if (cl_cbor_dec_map(&da, &pa_) != CL_OK || cl_cbor_dec_map(&db, &pb_) != CL_OK ||
            pa_ != pb_)
            return false;
        return map_eq(&da, &db, pa_, depth);
    }
    case CL_CBOR_TAG: {
        uint64_t ta, tb;
        if (cl_cbor_dec_tag(&da, &ta) != CL_OK || cl_cbor_dec_tag(&db, &tb) != CL_OK || ta != tb)
            return false;
        return eq_rec(da.cur, aend, db.cur, bend, depth + 1);
    }
    default: /* simple values (floats were numbers): same encoding */
        return aend - a == bend - b && memcmp(a, b, (size_t)(aend - a)) == 0;
    }
}

bool cl_eca_val_eq(const uint8_t *a, const uint8_t *aend, const uint8_t *b, const uint8_t *bend)
{
    return eq_rec(a, aend, b, bend, 0);
}

static uint64_t hash_rec(const uint8_t *p, const uint8_t *end, unsigned depth)
{
    if (depth > CL_CBOR_MAX_DEPTH || p >= end)
        return 0x5eed;
    eca_num_t n;
    if (cl_eca_num_get(p, end, &n)) {
        if (n.is_int)
            return mix(1, (uint64_t)n.i);
        if (n.d != n.d)
            return mix(3, 0); /* every NaN hashes alike (and never equals) */
        uint64_t bits;
        memcpy(&bits, &n.d, sizeof bits);
        return mix(2, bits);
    }
    unsigned major = p[0] >> 5;
    cl_cbor_dec_t d;
    cl_cbor_dec_init(&d, p, (size_t)(end - p));
    switch (major) {
    case CL_CBOR_BSTR:
    case CL_CBOR_TSTR: {
        const uint8_t *raw;
        size_t len;
        if (cl_cbor_dec_raw(&d, &raw, &len) != CL_OK)
            return 0x5eed;
        /* the head encodes major type and length; the same text always has the same head */
        return mix(4 + major, cl_eca_hash64(raw, len));
    }
    case CL_CBOR_ARRAY: {
        size_t cnt;
        if (cl_cbor_dec_array(&d, &cnt) != CL_OK)
            return 0x5eed;
        uint64_t h = mix(8, cnt);
        for (size_t i = 0; i < cnt; i++) {
            const uint8_t *x, *xe;
            if (!next_item(&d, &x, &xe))
                break;
            h = mix(h, hash_rec(x, xe, depth + 1));
        }
        return h;
    }
    case CL_CBOR_MAP: {
        size_t pairs;
        if (cl_cbor_dec_map(&d, &pairs) != CL_OK)
            return 0x5eed;
        /* order-insensitive, like cl_eca_val_eq: a sum of pair hashes */
        uint64_t sum = 0;
        for (size_t i = 0; i < pairs; i++) {
            const uint8_t *k, *ke, *v, *ve;
            if (!next_item(&d, &k, &ke) || !next_item(&d, &v, &ve))
                break;
            sum += mix(hash_rec(k, ke, depth + 1), hash_rec(v, ve, depth + 1));
        }
        return mix(mix(9, pairs), sum);
    }
    case CL_CBOR_TAG: {
        uint64_t tag;
        if (cl_cbor_dec_tag(&d, &tag) != CL_OK)
            return 0x5eed;
        return mix(mix(10, tag), hash_rec(d.cur, end, depth + 1));
    }
    default:
        return mix(11, cl_eca_hash64(p, (size_t)(end - p)));
    }
}

uint64_t cl_eca_val_hash(const uint8_t *p, const uint8_t *end)
{
    uint64_t h = hash_rec(p, end, 0);
    return h == 0 ? 1 : h;
}
