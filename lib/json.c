/*
 * json.c - strict JSON (RFC 8259) <-> CBOR (RFC 8949), no heap, no I/O.
 *
 * What: cl_json_to_cbor() checks a JSON text and writes the equivalent CBOR
 * item with the CBOR encoder (so every integer, float and head is in the one
 * deterministic form lib/cbor.c emits); cl_cbor_to_json() walks one CBOR item
 * with the strict decoder and writes compact JSON. Both are iterative, with
 * an explicit stack of CL_JSON_MAX_DEPTH open containers: there is no
 * recursion at all, so hostile nesting costs neither stack nor time.
 *
 * Definite lengths without a heap: CBOR needs a container's element count
 * before its elements, JSON says it after them. Both directions therefore
 * make two passes: the first checks everything and counts the output bytes
 * (CBOR heads are sized when a container closes, the count is known then);
 * the second, run only when the output fits, writes. In the writing pass a
 * container's content is written first and slid up by the size of its head
 * when the container closes (memmove within the caller's buffer, which the
 * first pass proved large enough). A failing call therefore writes nothing.
 *
 * Duplicate object keys (RFC 8259 section 4 leaves them open; RFC 8949
 * section 5.6 makes such maps invalid) are refused in both directions: each
 * key is compared with the earlier keys of its object by walking them again.
 * That is quadratic in the size of one object, which the configuration
 * documents this converts can afford and which needs no memory; only the
 * checking pass does it.
 *
 * Numbers without libm or strtod (lib/ links against memcpy and friends
 * only, scripts/symbol-allowlists/protocol-lib.txt):
 * - decimal -> binary64 is correctly rounded: up to 15 significant digits
 *   and a power of ten up to 1e22 it is one exact operation in double
 *   arithmetic (Clinger's fast path); otherwise an exact decimal of
 *   DEC_DIGITS digits is scaled by powers of two until 53 bits can be read
 *   off and rounded (the "decimal shift" algorithm of Go's strconv and
 *   Wuffs: 800 digits hold every binary64 midpoint exactly, digits beyond
 *   them only matter for breaking ties, and a sticky flag keeps that);
 * - binary64 -> decimal is shortest round trip: the double and the two
 *   midpoints to its neighbours are computed exactly as big integers
 *   (k * 5^n or k * 2^n in base 10^9), and the first of the roundings to
 *   1, 2, ... 17 digits that lies between the midpoints is printed: any
 *   correct parser reads it back as the same double. This printer shares
 *   nothing with the parser, so the round trip checks one with the other.
 *   Printed floats always carry a '.' or an exponent, so they come back
 *   as floats, not integers.
 */
#include "cloister/json.h"

#include <float.h>
#include <stdbool.h>
#include <string.h>

#include "cloister/cbor.h"

/* ------------------------------------------------------------------ */
/* Exact decimals and binary64                                         */
/* ------------------------------------------------------------------ */

#define DEC_DIGITS 800
/* Largest shift per step: 5^27 (the left-shift cutoff below) still fits 64 bits. */
#define DEC_MAX_SHIFT 27
/* Exponents beyond this are certainly out of range; clamping keeps sums small. */
#define DEC_EXP_CLAMP 100000

/** value = 0.d[0]d[1]...d[nd-1] * 10^dp, digits 0..9, no trailing zeros. */
struct decimal {
    uint8_t d[DEC_DIGITS];
    int nd;
    int dp;
    bool trunc; /**< nonzero digits beyond d[DEC_DIGITS - 1] were dropped */
};

static void dec_trim(struct decimal *a)
{
    while (a->nd > 0 && a->d[a->nd - 1] == 0)
        a->nd--;
    if (a->nd == 0)
        a->dp = 0;
}

/* Divides by 2^k (k <= DEC_MAX_SHIFT): long division, digit by digit. */
static void dec_right_shift(struct decimal *a, unsigned k)
{
    uint64_t n = 0, mask = ((uint64_t)1 << k) - 1;
    int r = 0, w = 0;

    /* enough leading digits for a first nonzero quotient digit */
    for (; (n >> k) == 0; r++) {
        if (r >= a->nd) {
            if (n == 0) {
                a->nd = 0;
                a->dp = 0;
                return;
            }
            while ((n >> k) == 0) {
                n *= 10;
                r++;
            }
            break;
        }
        n = n * 10 + a->d[r];
    }
    a->dp -= r - 1;
    for (; r < a->nd; r++) {
        uint64_t c = a->d[r];
        a->d[w++] = (uint8_t)(n >> k);
        n &= mask;
        n = n * 10 + c;
    }
    /* the remainder's digits, as far as they fit */
    while (n > 0) {
        uint64_t dig = n >> k;
        n &= mask;
        if (w < DEC_DIGITS)
            a->d[w++] = (uint8_t)dig;
        else if (dig > 0)
            a->trunc = true;
        n *= 10;
    }
    a->nd = w;
    dec_trim(a);
}

/*
 * True when the digits of a are lexicographically below those of 5^k. Then
 * a * 2^k gains one digit less than 2^k has: a * 2^k >= 10^m exactly when
 * a >= 10^m / 2^k = 5^k * 10^(m-k), i.e. when a's digits reach 5^k's.
 */
static bool dec_below_pow5(const struct decimal *a, unsigned k)
{
    uint8_t p5[20];
    uint64_t v = 1;
    int n = 0, i;

    for (unsigned j = 0; j < k; j++)
        v *= 5;
    for (uint64_t t = v; t > 0; t /= 10)
        n++;
    for (i = n - 1; i >= 0; i--) {
        p5[i] = (uint8_t)(v % 10);
        v /= 10;
    }
    for (i = 0; i < n; i++) {
        if (i >= a->nd)
            return true; /* a's missing digits are zeros; 5^k ends in 5 */
        if (a->d[i] != p5[i])
            return a->d[i] < p5[i];
    }
    return false;
}

/* Multiplies by 2^k (k <= DEC_MAX_SHIFT), from the last digit up. */
static void dec_left_shift(struct decimal *a, unsigned k)
{
    int delta = 0, r, w;
    uint64_t n = 0;

    if (a->nd == 0)
        return;
    for (uint64_t t = (uint64_t)1 << k; t > 0; t /= 10)
        delta++;
    if (dec_below_pow5(a, k))
        delta--;
    r = a->nd;
    w = a->nd + delta;
    for (r--; r >= 0; r--) {
        n += (uint64_t)a->d[r] << k;
        uint64_t quo = n / 10, rem = n - 10 * quo;
        w--;
        if (w < DEC_DIGITS)
            a->d[w] = (uint8_t)rem;
        else if (rem != 0)
            a->trunc = true;
        n = quo;
    }
    while (n > 0) {
        uint64_t quo = n / 10, rem = n - 10 * quo;
        w--;
        if (w < DEC_DIGITS)
            a->d[w] = (uint8_t)rem;
        else if (rem != 0)
            a->trunc = true;
        n = quo;
    }
    a->nd += delta;
    if (a->nd > DEC_DIGITS)
        a->nd = DEC_DIGITS;
    a->dp += delta;
    dec_trim(a);
}

/* Multiplies by 2^k (k > 0) or divides by 2^-k (k < 0). */
static void dec_shift(struct decimal *a, int k)
{
    if (a->nd == 0)
        return;
    while (k > DEC_MAX_SHIFT) {
        dec_left_shift(a, DEC_MAX_SHIFT);
        k -= DEC_MAX_SHIFT;
    }
    while (k < -DEC_MAX_SHIFT) {
        dec_right_shift(a, DEC_MAX_SHIFT);
        k += DEC_MAX_SHIFT;
    }
    if (k > 0)
        dec_left_shift(a, (unsigned)k);
    else if (k < 0)
        dec_right_shift(a, (unsigned)-k);
}

/* Round half to even when cutting a after digit nd; dropped digits break ties upwards. */
static bool dec_round_up(const struct decimal *a, int nd)
{
    if (nd < 0 || nd >= a->nd)
        return false;
    if (a->d[nd] == 5 && nd + 1 == a->nd) {
        if (a->trunc)
            return true;
        return nd > 0 && a->d[nd - 1] % 2 == 1;
    }
    return a->d[nd] >= 5;
}

/* The integer part of a, rounded; only called with 0 <= dp <= 20. */
static uint64_t dec_rounded_integer(const struct decimal *a)
{
    uint64_t n = 0;
    int i;

    for (i = 0; i < a->dp && i < a->nd; i++)
        n = n * 10 + a->d[i];
    for (; i < a->dp; i++)
        n *= 10;
    if (dec_round_up(a, a->dp))
        n++;
    return n;
}

#define F64_MANT_BITS 52
#define F64_BIAS 1023
#define F64_EXP_MAX 0x7ff

/*
 * Binary64 bits of |a|, correctly rounded (consumes a). Scales a into
 * [0.5, 1) by powers of two counted in exp, then reads off 53 bits.
 * *overflow when the value rounds beyond DBL_MAX.
 */
static uint64_t dec_to_bits(struct decimal *a, bool *overflow)
{
    /* shifts that take dp digits before the point below 1 (powtab[dp] bits >= dp digits) */
    static const uint8_t powtab[] = {1, 3, 6, 9, 13, 16, 19, 23, 26};
    int exp = 0, n;
    uint64_t mant;

    *overflow = false;
    if (a->nd == 0)
        return 0;
    if (a->dp > 310)
        goto inf;
    if (a->dp < -330)
        return 0;
    while (a->dp > 0) {
        n = a->dp >= (int)sizeof powtab ? DEC_MAX_SHIFT : powtab[a->dp];
        dec_shift(a, -n);
        exp += n;
    }
    while (a->dp < 0 || (a->dp == 0 && a->d[0] < 5)) {
        n = -a->dp >= (int)sizeof powtab ? DEC_MAX_SHIFT : powtab[-a->dp];
        dec_shift(a, n);
        exp -= n;
    }
    exp--; /* [0.5, 1) is [1, 2) * 2^-1 */
    if (exp < 1 - F64_BIAS) {
        /* subnormal: keep the minimum exponent, lose precision instead */
        n = 1 - F64_BIAS - exp;
        dec_shift(a, -n);
        exp += n;
    }
    if (exp + F64_BIAS >= F64_EXP_MAX)
        goto inf;
    dec_shift(a, 1 + F64_MANT_BITS);
    mant = dec_rounded_integer(a);
    if (mant == (uint64_t)2 << F64_MANT_BITS) {
        /* rounding carried into a 54th bit */
        mant >>= 1;
        exp++;
        if (exp + F64_BIAS >= F64_EXP_MAX)
            goto inf;
    }
    if ((mant & (uint64_t)1 << F64_MANT_BITS) == 0)
        exp = -F64_BIAS; /* subnormal or zero */
    return (mant & (((uint64_t)1 << F64_MANT_BITS) - 1)) | (uint64_t)(exp + F64_BIAS)
                                                               << F64_MANT_BITS;
inf:
    *overflow = true;
    return (uint64_t)F64_EXP_MAX << F64_MANT_BITS;
}

static double from_bits(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static uint64_t to_bits(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

/*
 * |a| as a double, correctly rounded (consumes a). Clinger's fast path when
 * the digits and the power of ten are both exact doubles, so that one
 * IEEE operation rounds once; it needs double evaluation in double
 * precision (not x87's extended registers), hence FLT_EVAL_METHOD.
 */
static double dec_value(struct decimal *a, bool *overflow)
{
#if FLT_EVAL_METHOD == 0
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    if (a->nd > 0 && a->nd <= 15 && !a->trunc) {
        uint64_t w = 0;
        int e10 = a->dp - a->nd; /* value = w * 10^e10, w < 10^15 < 2^53 */
        for (int i = 0; i < a->nd; i++)
            w = w * 10 + a->d[i];
        *overflow = false;
        if (e10 >= 0 && e10 <= 22)
            return (double)w * pow10[e10];
        if (e10 < 0 && e10 >= -22)
            return (double)w / pow10[-e10];
        if (e10 > 22 && e10 <= 22 + 15 - a->nd) {
            /* w * 10^(e10 - 22) is still an integer below 10^15: exact */
            for (int i = 22; i < e10; i++)
                w *= 10;
            return (double)w * pow10[22];
        }
    }
#endif
    return from_bits(dec_to_bits(a, overflow));
}

/* ------------------------------------------------------------------ */
/* Shortest round-trip printing of doubles                             */
/* ------------------------------------------------------------------ */

/*
 * Exact values k * 2^f as big integers in base 10^9 (little-endian limbs):
 * k * 2^f for f >= 0, k * 5^-f (times 10^f) for f < 0. The largest is
 * 2^57 * 5^1076, below 10^770: 86 limbs.
 */
#define LIMB_BASE 1000000000u
#define MAX_LIMBS 88
#define POW5_13 1220703125u /* the largest power of five below 2^32 */

struct bignum {
    uint32_t l[MAX_LIMBS];
    int n; /**< limbs in use; the top one is nonzero */
};

/* b *= f; with f < 2^32 every step (limb * f + carry) stays below 2^64. */
static void big_mul_small(struct bignum *b, uint32_t f)
{
    uint64_t carry = 0;

    for (int i = 0; i < b->n; i++) {
        uint64_t t = (uint64_t)b->l[i] * f + carry;
        b->l[i] = (uint32_t)(t % LIMB_BASE);
        carry = t / LIMB_BASE;
    }
    while (carry > 0 && b->n < MAX_LIMBS) {
        b->l[b->n++] = (uint32_t)(carry % LIMB_BASE);
        carry /= LIMB_BASE;
    }
}

/* 2^f (f >= 0) or 5^-f (f < 0). */
static void big_pow(struct bignum *b, int f)
{
    b->l[0] = 1;
    b->n = 1;
    for (; f >= 31; f -= 31)
        big_mul_small(b, (uint32_t)1 << 31);
    if (f >= 0) {
        big_mul_small(b, (uint32_t)1 << f);
        return;
    }
    for (f = -f; f >= 13; f -= 13)
        big_mul_small(b, POW5_13);
    for (; f > 0; f--)
        big_mul_small(b, 5);
}

/*
 * r = p * k for k < 2^57: k = k1 * 10^9 + k0 with k1 < 2^28, so each limb
 * sum p[i] * k0 + p[i-1] * k1 + carry stays below 2^64.
 */
static void big_mul_u64(const struct bignum *p, uint64_t k, struct bignum *r)
{
    uint64_t k0 = k % LIMB_BASE, k1 = k / LIMB_BASE, carry = 0;
    int i;

    for (i = 0; i <= p->n && i < MAX_LIMBS; i++) {
        uint64_t a0 = i < p->n ? p->l[i] : 0, a1 = i > 0 ? p->l[i - 1] : 0;
        uint64_t t = a0 * k0 + a1 * k1 + carry;
        r->l[i] = (uint32_t)(t % LIMB_BASE);
        carry = t / LIMB_BASE;
    }
    while (carry > 0 && i < MAX_LIMBS) {
        r->l[i++] = (uint32_t)(carry % LIMB_BASE);
        carry /= LIMB_BASE;
    }
    while (i > 0 && r->l[i - 1] == 0)
        i--;
    r->n = i;
}

/* Digits kept of an exact value: 17 to print, one to round, one more to see. */
#define KEEP_DIGITS 19
#define MAX_SHORTEST 17
/* Longest printed float: "-0.00000" + 17 digits, or "-" + 21 digits + ".0". */
#define FLOAT_TEXT_MAX 32

/** A short decimal: value = 0.d[0]..d[nd-1] * 10^dp, d[0] != 0; more = nonzero digits follow. */
struct digits {
    uint8_t d[KEEP_DIGITS];
    int nd;
    int dp;
    bool more;
};

/* The leading digits of n * 10^e10 (n > 0). */
static void big_digits(const struct bignum *n, int e10, struct digits *x)
{
    int total = 9 * (n->n - 1), top_len = 0;

    for (uint32_t t = n->l[n->n - 1]; t > 0; t /= 10)
        top_len++;
    total += top_len;
    x->nd = 0;
    x->more = false;
    x->dp = total + e10;
    for (int i = n->n - 1; i >= 0 && !x->more; i--) {
        uint32_t limb = n->l[i], div = 100000000u; /* 10^8: a limb's first digit */
        if (x->nd == KEEP_DIGITS) {
            x->more = limb != 0; /* whole limbs beyond the kept digits */
            continue;
        }
        for (int j = i == n->n - 1 ? top_len : 9; j < 9; j++)
            div /= 10;
        for (; div > 0; div /= 10) {
            uint8_t dgt = (uint8_t)(limb / div % 10);
            if (x->nd < KEEP_DIGITS)
                x->d[x->nd++] = dgt;
            else if (dgt != 0)
                x->more = true;
        }
    }
    if (!x->more)
        while (x->nd > 0 && x->d[x->nd - 1] == 0)
            x->nd--;
}

/* Compares two short decimals with nonzero leading digits. */
static int digits_cmp(const struct digits *a, const struct digits *b)
{
    int n = a->nd > b->nd ? a->nd : b->nd;

    if (a->dp != b->dp)
        return a->dp < b->dp ? -1 : 1;
    for (int i = 0; i < n; i++) {
        uint8_t x = i < a->nd ? a->d[i] : 0, y = i < b->nd ? b->d[i] : 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
    if (a->more != b->more)
        return a->more ? 1 : -1;
    return 0;
}

/* x cut to p digits (p < x->nd), plus one unit in the last place when up. */
static void cut_digits(const struct digits *x, int p, bool up, struct digits *r)
{
    *r = *x;
    r->more = false;
    r->nd = p;
    if (up) {
        int i = p - 1;
        while (i >= 0 && r->d[i] == 9)
            r->d[i--] = 0;
        if (i < 0) {
            /* 99..9 + 1 = 10..0 */
            r->d[0] = 1;
            r->nd = 1;
            r->dp++;
        } else {
            r->d[i]++;
        }
    }
    while (r->nd > 0 && r->d[r->nd - 1] == 0)
        r->nd--;
}

/** The value printed and the interval of decimals that read back as it. */
struct shortest {
    struct digits v, lo, hi;
    bool inclusive; /**< even mantissa: ties at lo and hi round to it */
};

static bool in_interval(const struct shortest *s, const struct digits *c)
{
    int l = digits_cmp(c, &s->lo), h = digits_cmp(c, &s->hi);
    return (l > 0 || (l == 0 && s->inclusive)) && (h < 0 || (h == 0 && s->inclusive));
}

/*
 * Shortest decimal that reads back as the finite positive double with
 * these bits: the first p (1, 2, ... 17) for which the nearest p-digit
 * decimal, or failing that the p-digit neighbour on the other side, lies
 * strictly between the midpoints to the adjacent doubles (or on one when
 * round-half-even would pick our double). With v = m * 2^e the midpoints
 * are (4m +- 2) * 2^(e-2), except at a power of two, where the double
 * below is only half as far: (4m - 1) * 2^(e-2).
 */
static void shortest_digits(uint64_t bits, struct bignum *pow, struct bignum *prod,
                            struct digits *out)
{
    struct shortest s;
    uint64_t mant = bits & (((uint64_t)1 << F64_MANT_BITS) - 1), m;
    int be = (int)(bits >> F64_MANT_BITS), f, e10;

    if (be == 0) {
        m = mant; /* subnormal: m * 2^-1074 */
        f = 1 - F64_BIAS - F64_MANT_BITS - 2;
    } else {
        m = mant | (uint64_t)1 << F64_MANT_BITS;
        f = be - F64_BIAS - F64_MANT_BITS - 2;
    }
    big_pow(pow, f);
    e10 = f < 0 ? f : 0;
    big_mul_u64(pow, 4 * m, prod);
    big_digits(prod, e10, &s.v);
    big_mul_u64(pow, 4 * m + 2, prod);
    big_digits(prod, e10, &s.hi);
    big_mul_u64(pow, mant == 0 && be > 1 ? 4 * m - 1 : 4 * m - 2, prod);
    big_digits(prod, e10, &s.lo);
    s.inclusive = m % 2 == 0;

    for (int p = 1; p <= MAX_SHORTEST; p++) {
        struct digits c;
        bool dropped = s.v.more, up;

        if (s.v.nd <= p) {
            *out = s.v; /* exact in p digits: it is the value itself */
            return;
        }
        for (int i = p + 1; i < s.v.nd; i++)
            dropped = dropped || s.v.d[i] != 0;
        up = s.v.d[p] > 5 || (s.v.d[p] == 5 && (dropped || s.v.d[p - 1] % 2 == 1));
        cut_digits(&s.v, p, up, &c);
        if (in_interval(&s, &c) || p == MAX_SHORTEST) {
            *out = c;
            return;
        }
        /* nearest is out: the neighbour on the other side may still be in */
        cut_digits(&s.v, p, !up, &c);
        if (in_interval(&s, &c)) {
            *out = c;
            return;
        }
    }
}

static size_t put_uint_text(char *out, uint64_t v)
{
    char rev[20];
    size_t n = 0, i;

    do {
        rev[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (i = 0; i < n; i++)
        out[i] = rev[n - 1 - i];
    return n;
}

/** Scratch space of the float printer (on the caller's stack, once per call). */
struct fmt_scratch {
    struct bignum pow, prod;
};

/*
 * Writes the finite double v as JSON text (at most FLOAT_TEXT_MAX bytes, no
 * NUL); returns the length. The layout is ECMAScript's Number::toString
 * (plain digits from 1e-6 up to 1e21, an exponent outside), with ".0"
 * appended to integral values so they stay floats.
 */
static size_t format_double(double v, char *out, struct fmt_scratch *scratch)
{
    uint64_t bits = to_bits(v), mag = bits & ~((uint64_t)1 << 63);
    struct digits c;
    size_t o = 0;
    int k, n, i;

    if (bits >> 63)
        out[o++] = '-';
    if (mag == 0) {
        memcpy(out + o, "0.0", 3);
        return o + 3;
    }
    shortest_digits(mag, &scratch->pow, &scratch->prod, &c);
    k = c.nd;
    n = c.dp;
    if (k <= n && n <= 21) {
        for (i = 0; i < k; i++)
            out[o++] = (char)('0' + c.d[i]);
        for (; i < n; i++)
            out[o++] = '0';
        out[o++] = '.';
        out[o++] = '0';
    } else if (0 < n && n <= 21) {
        for (i = 0; i < k; i++) {
            if (i == n)
                out[o++] = '.';
            out[o++] = (char)('0' + c.d[i]);
        }
    } else if (-6 < n && n <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (i = n; i < 0; i++)
            out[o++] = '0';
        for (i = 0; i < k; i++)
            out[o++] = (char)('0' + c.d[i]);
    } else {
        out[o++] = (char)('0' + c.d[0]);
        if (k > 1) {
            out[o++] = '.';
            for (i = 1; i < k; i++)
                out[o++] = (char)('0' + c.d[i]);
        }
        out[o++] = 'e';
        if (n - 1 < 0)
            out[o++] = '-';
        o += put_uint_text(out + o, (uint64_t)(n - 1 < 0 ? 1 - n : n - 1));
    }
    return o;
}

/* ------------------------------------------------------------------ */
/* JSON text: characters, strings, UTF-8                               */
/* ------------------------------------------------------------------ */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t utf8_put(uint8_t out[4], uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xc0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xe0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (uint8_t)(0xf0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

/*
 * Length of the UTF-8 sequence at p[0..avail) (Unicode table 3-7, as
 * cl_cbor_utf8_valid: no overlongs, surrogates or code points above
 * U+10FFFF), or 0 when it is invalid. *cut is set when the bytes present
 * are a valid beginning that the end of the input cut off.
 */
static size_t utf8_seq(const uint8_t *p, size_t avail, bool *cut)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xbf;
    size_t n;

    *cut = false;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    for (size_t k = 1; k < n; k++) {
        if (k >= avail) {
            *cut = true;
            return 0;
        }
        if (p[k] < (k == 1 ? lo : 0x80) || p[k] > (k == 1 ? hi : 0xbf))
            return 0;
    }
    return n;
}

/*
 * Four hex digits at s[at..]: the value, -1 when one is not a hex digit,
 * -2 when the text ends first.
 */
static long hex4(const char *s, size_t len, size_t at)
{
    long v = 0;

    for (size_t i = 0; i < 4; i++) {
        int h;
        if (at + i >= len)
            return -2;
        h = hex_value(s[at + i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/*
 * Decodes the escape whose backslash is at s[at] into UTF-8 (u, *n bytes);
 * *next is the offset after it. A \u high surrogate must be followed by a
 * \u low surrogate (one code point from both); lone surrogates are refused.
 * On failure *bad is the offset to report: the end of the text when it
 * ends inside the escape, the backslash otherwise.
 */
static bool decode_escape(const char *s, size_t len, size_t at, uint8_t u[4], size_t *n,
                          size_t *next, size_t *bad)
{
    long hi, lo;

    *bad = at;
    if (at + 1 >= len) {
        *bad = len;
        return false;
    }
    *next = at + 2;
    *n = 1;
    switch (s[at + 1]) {
    case '"': u[0] = '"'; return true;
    case '\\': u[0] = '\\'; return true;
    case '/': u[0] = '/'; return true;
    case 'b': u[0] = '\b'; return true;
    case 'f': u[0] = '\f'; return true;
    case 'n': u[0] = '\n'; return true;
    case 'r': u[0] = '\r'; return true;
    case 't': u[0] = '\t'; return true;
    case 'u': break;
    default: return false;
    }
    hi = hex4(s, len, at + 2);
    if (hi < 0) {
        if (hi == -2)
            *bad = len;
        return false;
    }
    *next = at + 6;
    if (hi >= 0xdc00 && hi <= 0xdfff)
        return false; /* a low surrogate first */
    if (hi < 0xd800 || hi > 0xdbff) {
        *n = utf8_put(u, (uint32_t)hi);
        return true;
    }
    /* a high surrogate: the low one must follow as \uDC00..\uDFFF */
    if (at + 6 >= len || (s[at + 6] == '\\' && at + 7 >= len)) {
        *bad = len;
        return false;
    }
    if (s[at + 6] != '\\' || s[at + 7] != 'u')
        return false;
    lo = hex4(s, len, at + 8);
    if (lo == -2) {
        *bad = len;
        return false;
    }
    if (lo < 0xdc00 || lo > 0xdfff)
        return false;
    *next = at + 12;
    *n = utf8_put(u, (uint32_t)(0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)));
    return true;
}

/* ------------------------------------------------------------------ */
/* JSON -> CBOR                                                        */
/* ------------------------------------------------------------------ */

/** An open array or object. */
struct frame {
    size_t open;      /**< offset of its '[' or '{' */
    size_t out_start; /**< encoder length when it opened: its content starts there */
    size_t count;     /**< elements (arrays) or members (objects) so far */
    bool is_map;
};

struct parser {
    const char *s;
    size_t len;
    size_t pos;
    cl_cbor_enc_t *e;
    bool check_dups; /**< the checking pass; the writing pass runs on checked text */
    size_t err;      /**< offset of the first problem */
};

/* Raises CL_ERR_BAD_INPUT for the problem at offset off (a macro: keeps CL_FAIL's line). */
#define BAD_AT(p, off) ((p)->err = (off), CL_FAIL(CL_ERR_BAD_INPUT))

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len && is_ws(p->s[p->pos]))
        p->pos++;
}

/*
 * Checks the string whose opening quote is at `at` and, with out != NULL,
 * appends its decoded content there. *decoded is the content's length,
 * *plain says it has no escapes (the content is then the text itself) and
 * *next is the offset after the closing quote.
 */
static cl_status_t scan_string(struct parser *p, size_t at, cl_cbor_enc_t *out, size_t *decoded,
                               bool *plain, size_t *next)
{
    const char *s = p->s;
    size_t i = at + 1, run = i, n = 0;

    *plain = true;
    for (;;) {
        uint8_t c, u[4];
        size_t un, after, bad;
        bool cut;

        if (i >= p->len)
            return BAD_AT(p, p->len);
        c = (uint8_t)s[i];
        if (c == '"')
            break;
        if (c == '\\') {
            if (!decode_escape(s, p->len, i, u, &un, &after, &bad))
                return BAD_AT(p, bad);
            if (out != NULL) {
                (void)cl_cbor_enc_raw(out, (const uint8_t *)s + run, i - run);
                (void)cl_cbor_enc_raw(out, u, un);
            }
            n += un;
            i = after;
            run = i;
            *plain = false;
            continue;
        }
        if (c < 0x20)
            return BAD_AT(p, i); /* control characters must be escaped */
        if (c < 0x80) {
            i++;
            n++;
            continue;
        }
        un = utf8_seq((const uint8_t *)s + i, p->len - i, &cut);
        if (un == 0)
            return BAD_AT(p, cut ? p->len : i);
        i += un;
        n += un;
    }
    if (out != NULL)
        (void)cl_cbor_enc_raw(out, (const uint8_t *)s + run, i - run);
    *decoded = n;
    *next = i + 1;
    return out != NULL ? out->status : CL_OK;
}

/*
 * Text-string head for n bytes of content. The encoder has no call for a
 * bare text head, so take the byte-string head and change the major type
 * (bits 7..5 of the first byte) from 2 to 3: the argument is the same.
 */
static cl_status_t put_tstr_head(cl_cbor_enc_t *e, size_t n)
{
    uint8_t h[CL_CBOR_MAX_HEAD];
    cl_cbor_enc_t he;
    size_t hl = 0;

    cl_cbor_enc_init(&he, h, sizeof h);
    (void)cl_cbor_enc_bstr_head(&he, n);
    if (cl_cbor_enc_finish(&he, &hl) != CL_OK)
        return CL_FAIL(CL_ERR_LIMIT);
    h[0] = (uint8_t)((h[0] & 0x1fu) | (unsigned)CL_CBOR_TSTR << 5);
    return cl_cbor_enc_raw(e, h, hl);
}

/* The string at p->pos as a CBOR text string. */
static cl_status_t put_string(struct parser *p)
{
    cl_status_t rc;
    size_t n = 0, next = 0;
    bool plain = true;

    rc = scan_string(p, p->pos, NULL, &n, &plain, &next);
    if (rc != CL_OK)
        return rc;
    if (plain) {
        rc = cl_cbor_enc_tstr(p->e, p->s + p->pos + 1, n);
    } else {
        (void)put_tstr_head(p->e, n);
        rc = scan_string(p, p->pos, p->e, &n, &plain, &next);
    }
    p->pos = next;
    return rc;
}

/* One byte after another of a checked string's decoded content. */
struct key_cursor {
    size_t i;      /**< next offset in the text */
    uint8_t u[4];  /**< a decoded escape being handed out */
    size_t un, uk; /**< its length, bytes handed out */
};

/* The next content byte, or -1 at the closing quote. */
static int key_byte(const struct parser *p, struct key_cursor *c)
{
    size_t bad;

    if (c->uk < c->un)
        return c->u[c->uk++];
    if (c->i >= p->len || p->s[c->i] == '"')
        return -1;
    if (p->s[c->i] != '\\')
        return (uint8_t)p->s[c->i++];
    if (!decode_escape(p->s, p->len, c->i, c->u, &c->un, &c->i, &bad))
        return -1; /* not reached: the text was checked */
    c->uk = 1;
    return c->u[0];
}

/* Do the checked strings opening at a and b have the same content? */
static bool same_key(const struct parser *p, size_t a, size_t b)
{
    struct key_cursor ca = {a + 1, {0, 0, 0, 0}, 0, 0}, cb = {b + 1, {0, 0, 0, 0}, 0, 0};
    int x, y;

    do {
        x = key_byte(p, &ca);
        y = key_byte(p, &cb);
    } while (x == y && x >= 0);
    return x == y;
}

/* Offset after the checked string opening at i. */
static size_t skip_checked_string(const struct parser *p, size_t i)
{
    for (i++; i < p->len && p->s[i] != '"'; i++)
        if (p->s[i] == '\\')
            i++;
    return i + 1;
}

/* Offset after the checked value starting at i (nesting by counting brackets). */
static size_t skip_checked_value(const struct parser *p, size_t i)
{
    size_t depth = 0;

    do {
        char c;
        if (i >= p->len)
            break;
        c = p->s[i];
        if (c == '"') {
            i = skip_checked_string(p, i);
        } else if (c == '[' || c == '{') {
            depth++;
            i++;
        } else if (c == ']' || c == '}') {
            depth--;
            i++;
        } else if (depth == 0) {
            /* a number or literal: up to the next delimiter */
            while (i < p->len && !is_ws(p->s[i]) && p->s[i] != ',' && p->s[i] != ']' &&
                   p->s[i] != '}')
                i++;
        } else {
            i++;
        }
    } while (depth > 0);
    return i;
}

static size_t ws_from(const struct parser *p, size_t i)
{
    while (i < p->len && is_ws(p->s[i]))
        i++;
    return i;
}

/* Does the key opening at `key` repeat an earlier key of object f? */
static bool is_duplicate(const struct parser *p, const struct frame *f, size_t key)
{
    size_t i = f->open + 1;

    for (;;) {
        i = ws_from(p, i);
        if (i >= key || i >= p->len)
            return false;
        if (same_key(p, i, key))
            return true;
        i = ws_from(p, skip_checked_string(p, i)) + 1;            /* the ':' */
        i = ws_from(p, skip_checked_value(p, ws_from(p, i))) + 1; /* the ',' */
    }
}

/* An object member's key and its ':' (p->pos on the key's quote). */
static cl_status_t parse_key(struct parser *p, const struct frame *f)
{
    cl_status_t rc;
    size_t key = p->pos;

    if (p->pos >= p->len || p->s[p->pos] != '"')
        return BAD_AT(p, p->pos);
    rc = put_string(p);
    if (rc != CL_OK)
        return rc;
    if (f->count >= CL_JSON_MAX_MEMBERS) { /* also bounds the duplicate check's quadratic cost */
        p->err = key;
        return CL_FAIL(CL_ERR_LIMIT);
    }
    if (p->check_dups && f->count > 0 && is_duplicate(p, f, key))
        return BAD_AT(p, key);
    skip_ws(p);
    if (p->pos >= p->len || p->s[p->pos] != ':')
        return BAD_AT(p, p->pos);
    p->pos++;
    skip_ws(p);
    return CL_OK;
}

/* Matches the literal word at p->pos. */
static cl_status_t parse_word(struct parser *p, const char *word)
{
    for (size_t i = 0; word[i] != '\0'; i++) {
        if (p->pos >= p->len)
            return BAD_AT(p, p->len);
        if (p->s[p->pos] != word[i])
            return BAD_AT(p, p->pos);
        p->pos++;
    }
    return CL_OK;
}

/*
 * The number at p->pos (RFC 8259 section 6: -? (0 | [1-9][0-9]*)
 * (.[0-9]+)? ([eE][+-]?[0-9]+)?). Integer literals in the int64 range
 * become CBOR integers ("-0" is 0); everything else a correctly rounded
 * double, refused when it is not finite.
 */
static cl_status_t parse_number(struct parser *p)
{
    const char *s = p->s;
    size_t start = p->pos, i = p->pos, int_start, int_end, frac_start, frac_end;
    bool neg = false, exp_neg = false, is_int = true, overflow = false, nonzero = false;
    int64_t exp = 0, dp = 0;
    struct decimal dec;
    double v;

    if (i < p->len && s[i] == '-') {
        neg = true;
        i++;
    }
    int_start = i;
    if (i >= p->len || !is_digit(s[i]))
        return BAD_AT(p, i);
    if (s[i] == '0')
        i++; /* no leading zeros: "01" ends after the 0 */
    else
        while (i < p->len && is_digit(s[i]))
            i++;
    int_end = frac_start = frac_end = i;
    if (i < p->len && s[i] == '.') {
        frac_start = ++i;
        if (i >= p->len || !is_digit(s[i]))
            return BAD_AT(p, i);
        while (i < p->len && is_digit(s[i]))
            i++;
        frac_end = i;
        is_int = false;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        is_int = false;
        if (i < p->len && (s[i] == '+' || s[i] == '-'))
            exp_neg = s[i++] == '-';
        if (i >= p->len || !is_digit(s[i]))
            return BAD_AT(p, i);
        for (; i < p->len && is_digit(s[i]); i++)
            if (exp < DEC_EXP_CLAMP)
                exp = exp * 10 + (s[i] - '0');
    }
    p->pos = i;

    if (is_int) {
        uint64_t mag = 0;
        for (i = int_start; i < int_end; i++) {
            unsigned dgt = (unsigned)(s[i] - '0');
            if (mag > (UINT64_MAX - dgt) / 10) {
                overflow = true;
                break;
            }
            mag = mag * 10 + dgt;
        }
        if (!overflow && !neg && mag <= (uint64_t)INT64_MAX)
            return cl_cbor_enc_uint(p->e, mag);
        if (!overflow && neg && mag == 0)
            return cl_cbor_enc_uint(p->e, 0);
        if (!overflow && neg && mag <= (uint64_t)INT64_MAX + 1)
            return cl_cbor_enc_nint_raw(p->e, mag - 1);
        /* beyond int64: a float like any other number */
    }

    /*
     * Significant digits into dec (leading zeros dropped, digits beyond
     * DEC_DIGITS only noted); dp = digits before the point + exponent.
     */
    dec.nd = 0;
    dec.trunc = false;
    for (i = int_start; i < int_end; i++) {
        uint8_t dgt = (uint8_t)(s[i] - '0');
        if (!nonzero && dgt == 0)
            continue; /* the "0" of "0.5" */
        nonzero = true;
        dp++;
        if (dec.nd < DEC_DIGITS)
            dec.d[dec.nd++] = dgt;
        else if (dgt != 0)
            dec.trunc = true;
    }
    for (i = frac_start; i < frac_end; i++) {
        uint8_t dgt = (uint8_t)(s[i] - '0');
        if (!nonzero && dgt == 0) {
            dp--; /* 0.00d: zeros right after the point move it */
            continue;
        }
        nonzero = true;
        if (dec.nd < DEC_DIGITS)
            dec.d[dec.nd++] = dgt;
        else if (dgt != 0)
            dec.trunc = true;
    }
    dp += exp_neg ? -exp : exp;
    if (!nonzero || dp < -400) {
        v = 0.0; /* well below the smallest subnormal */
    } else if (dp > 400) {
        return BAD_AT(p, start);
    } else {
        dec.dp = (int)dp;
        dec_trim(&dec);
        v = dec_value(&dec, &overflow);
        if (overflow)
            return BAD_AT(p, start); /* 1e999: JSON has no infinities */
    }
    return cl_cbor_enc_double(p->e, neg ? -v : v);
}

/* A scalar value at p->pos, or the problem there. */
static cl_status_t parse_scalar(struct parser *p)
{
    char c;

    if (p->pos >= p->len)
        return BAD_AT(p, p->len);
    c = p->s[p->pos];
    if (c == '"')
        return put_string(p);
    if (c == '-' || is_digit(c))
        return parse_number(p);
    if (c == 't') {
        cl_status_t rc = parse_word(p, "true");
        return rc != CL_OK ? rc : cl_cbor_enc_bool(p->e, true);
    }
    if (c == 'f') {
        cl_status_t rc = parse_word(p, "false");
        return rc != CL_OK ? rc : cl_cbor_enc_bool(p->e, false);
    }
    if (c == 'n') {
        cl_status_t rc = parse_word(p, "null");
        return rc != CL_OK ? rc : cl_cbor_enc_null(p->e);
    }
    return BAD_AT(p, p->pos);
}

/*
 * Writes the head of a closed container. Counting: adds its size. Writing:
 * the content already sits at buf[out_start..len); slide it up by the head's
 * size and put the head in front.
 */
static cl_status_t close_container(cl_cbor_enc_t *e, const struct frame *f)
{
    uint8_t h[CL_CBOR_MAX_HEAD];
    cl_cbor_enc_t he;
    size_t hl = 0;

    cl_cbor_enc_init(&he, h, sizeof h);
    if (f->is_map)
        (void)cl_cbor_enc_map(&he, f->count);
    else
        (void)cl_cbor_enc_array(&he, f->count);
    if (cl_cbor_enc_finish(&he, &hl) != CL_OK)
        return CL_FAIL(CL_ERR_LIMIT);
    if (e->buf == NULL || e->status != CL_OK)
        return cl_cbor_enc_raw(e, h, hl);
    if (hl > e->size - e->len) {
        e->status = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL); /* not reached: the first pass sized it */
        return e->status;
    }
    memmove(e->buf + f->out_start + hl, e->buf + f->out_start, e->len - f->out_start);
    memcpy(e->buf + f->out_start, h, hl);
    e->len += hl;
    return CL_OK;
}

/* One pass over the whole text: checks it and encodes it into p->e. */
static cl_status_t json_pass(struct parser *p)
{
    struct frame stack[CL_JSON_MAX_DEPTH];
    size_t depth = 0;
    cl_status_t rc = CL_OK;

    skip_ws(p);
    for (;;) {
        /* a value starts at p->pos */
        char c = p->pos < p->len ? p->s[p->pos] : '\0';

        if (c == '[' || c == '{') {
            struct frame *f;
            if (depth == CL_JSON_MAX_DEPTH) {
                p->err = p->pos;
                rc = CL_FAIL(CL_ERR_LIMIT);
                goto done;
            }
            f = &stack[depth++];
            f->open = p->pos;
            f->out_start = p->e->len;
            f->count = 0;
            f->is_map = c == '{';
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == (f->is_map ? '}' : ']')) {
                p->pos++;
                rc = close_container(p->e, f);
                if (rc != CL_OK)
                    goto done;
                depth--;
            } else {
                if (f->is_map) {
                    rc = parse_key(p, f);
                    if (rc != CL_OK)
                        goto done;
                }
                continue; /* its first value is next */
            }
        } else {
            rc = parse_scalar(p);
            if (rc != CL_OK)
                goto done;
        }

        /* A value is complete: count it, then close every container it completes. */
        for (;;) {
            struct frame *f;
            if (depth == 0)
                goto top_done;
            f = &stack[depth - 1];
            f->count++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') {
                p->pos++;
                skip_ws(p);
                if (f->is_map) {
                    rc = parse_key(p, f);
                    if (rc != CL_OK)
                        goto done;
                }
                break; /* the next value */
            }
            if (p->pos < p->len && p->s[p->pos] == (f->is_map ? '}' : ']')) {
                p->pos++;
                rc = close_container(p->e, f);
                if (rc != CL_OK)
                    goto done;
                depth--;
                continue; /* the container is a complete value of its parent */
            }
            rc = BAD_AT(p, p->pos);
            goto done;
        }
    }
top_done:
    /* exactly one value: only whitespace may follow */
    skip_ws(p);
    if (p->pos != p->len) {
        rc = BAD_AT(p, p->pos);
        goto done;
    }
    rc = p->e->status;
done:
    return rc;
}

cl_status_t cl_json_to_cbor(const char *json, size_t len, uint8_t *out, size_t out_size,
                            size_t *out_len, size_t *err_off)
{
    cl_status_t rc;
    cl_cbor_enc_t e;
    struct parser p;
    size_t need = 0;

    if (out_len == NULL || (json == NULL && len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    /* pass 1: check and count */
    cl_cbor_enc_init(&e, NULL, 0);
    p.s = json;
    p.len = len;
    p.pos = 0;
    p.e = &e;
    p.check_dups = true;
    p.err = 0;
    rc = json_pass(&p);
    if (rc == CL_OK)
        rc = cl_cbor_enc_finish(&e, &need);
    if (rc != CL_OK) {
        if (err_off != NULL)
            *err_off = p.err;
        goto done;
    }
    *out_len = need;
    if (out == NULL)
        goto done;
    if (need > out_size) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    /* pass 2: write */
    cl_cbor_enc_init(&e, out, out_size);
    p.pos = 0;
    p.check_dups = false;
    rc = json_pass(&p);
    if (rc == CL_OK)
        rc = cl_cbor_enc_finish(&e, out_len);
done:
    return rc;
}

/* ------------------------------------------------------------------ */
/* CBOR -> JSON                                                        */
/* ------------------------------------------------------------------ */

/** Output text: buf == NULL only counts. */
struct sink {
    char *buf;
    size_t size; /**< room for text (the NUL is reserved outside) */
    size_t len;
    bool full;
};

static void put_text(struct sink *k, const char *p, size_t n)
{
    if (k->full)
        return;
    if (k->buf == NULL ? n > SIZE_MAX - 1 - k->len : n > k->size - k->len) {
        k->full = true;
        return;
    }
    if (k->buf != NULL && n > 0)
        memcpy(k->buf + k->len, p, n);
    k->len += n;
}

static void put_char(struct sink *k, char c)
{
    put_text(k, &c, 1);
}

/* A valid UTF-8 text as a JSON string: quote, backslash and controls escaped. */
static void put_json_string(struct sink *k, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;

    put_char(k, '"');
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        char esc[6] = {'\\', 'u', '0', '0', 0, 0};
        size_t el = 2;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put_text(k, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xf];
            el = 6;
            break;
        }
        put_text(k, esc, el);
    }
    put_text(k, s + run, n - run);
    put_char(k, '"');
}

/* Bytes as a base64url string without padding (RFC 4648 section 5). */
static void put_base64url(struct sink *k, const uint8_t *p, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i = 0;

    put_char(k, '"');
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
                     alphabet[v & 63]};
        put_text(k, q, 4);
    }
    if (n - i == 1) {
        char q[2] = {alphabet[p[i] >> 2], alphabet[(p[i] & 3) << 4]};
        put_text(k, q, 2);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        char q[3] = {alphabet[v >> 10], alphabet[(v >> 4) & 63], alphabet[(v << 2) & 63]};
        put_text(k, q, 3);
    }
    put_char(k, '"');
}

/* An open array or map, counted in items (two per map entry). */
struct jframe {
    size_t total;
    size_t done;
    const uint8_t *first; /**< its first item: maps walk their keys again from there */
    bool is_map;
};

/* Skips one item that this pass has already checked (containers by a flat count). */
static cl_status_t skip_checked_item(cl_cbor_dec_t *d)
{
    cl_status_t rc = CL_OK;
    size_t pending = 1, n;
    uint64_t tag;
    cl_cbor_type_t t;

    while (pending > 0 && rc == CL_OK) {
        pending--;
        rc = cl_cbor_dec_peek(d, &t);
        if (rc != CL_OK)
            break;
        if (t == CL_CBOR_ARRAY) {
            rc = cl_cbor_dec_array(d, &n);
            pending += n;
        } else if (t == CL_CBOR_MAP) {
            rc = cl_cbor_dec_map(d, &n);
            pending += 2 * n;
        } else if (t == CL_CBOR_TAG) {
            rc = cl_cbor_dec_tag(d, &tag);
            pending++;
        } else {
            rc = cl_cbor_dec_skip(d);
        }
    }
    return rc;
}

/* Is key (just read at `at`) the same text as an earlier key of the map f? */
static cl_status_t check_map_key(const struct jframe *f, const uint8_t *at, const uint8_t *end,
                                 const char *key, size_t key_len)
{
    cl_status_t rc = CL_OK;
    cl_cbor_dec_t d;

    cl_cbor_dec_init(&d, f->first, (size_t)(end - f->first));
    while (d.cur < at) {
        const char *s;
        size_t n;
        rc = cl_cbor_dec_tstr(&d, &s, &n);
        if (rc != CL_OK)
            break;
        if (n == key_len && memcmp(s, key, n) == 0) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT); /* duplicate keys: an invalid map (RFC 8949 5.6) */
            break;
        }
        rc = skip_checked_item(&d);
        if (rc != CL_OK)
            break;
    }
    return rc;
}

/* A negative integer -1 - arg beyond int64 (arg >= 2^63), read from its 9-byte head. */
static void put_big_negative(struct sink *k, const uint8_t *head, size_t n)
{
    char text[24];
    uint64_t arg = 0;
    size_t tl;

    for (size_t i = 1; i < n; i++)
        arg = arg << 8 | head[i];
    text[0] = '-';
    if (arg == UINT64_MAX) {
        memcpy(text + 1, "18446744073709551616", 20);
        tl = 21;
    } else {
        tl = 1 + put_uint_text(text + 1, arg + 1);
    }
    put_text(k, text, tl);
}

/* A simple value or float: false, true, null and finite floats have a JSON form. */
static cl_status_t put_simple(cl_cbor_dec_t *d, struct sink *k, struct fmt_scratch *scratch)
{
    cl_status_t rc;
    uint8_t sv;
    double v;
    char text[FLOAT_TEXT_MAX];

    rc = cl_cbor_dec_simple(d, &sv);
    if (rc == CL_OK) {
        if (sv == 20)
            put_text(k, "false", 5);
        else if (sv == 21)
            put_text(k, "true", 4);
        else if (sv == 22)
            put_text(k, "null", 4);
        else
            rc = CL_FAIL(CL_ERR_UNSUPPORTED); /* undefined, unassigned simple values */
        return rc;
    }
    rc = cl_cbor_dec_double(d, &v);
    if (rc != CL_OK)
        return rc;
    if (((to_bits(v) >> F64_MANT_BITS) & F64_EXP_MAX) == F64_EXP_MAX)
        return CL_FAIL(CL_ERR_UNSUPPORTED); /* JSON has no NaN or infinities */
    put_text(k, text, format_double(v, text, scratch));
    return CL_OK;
}

/* One pass: checks the item and writes (or counts) its JSON text. */
static cl_status_t cbor_pass(const uint8_t *cbor, size_t len, struct sink *k, bool check_dups,
                             struct fmt_scratch *scratch)
{
    struct jframe stack[CL_JSON_MAX_DEPTH];
    size_t depth = 0;
    cl_status_t rc = CL_OK;
    cl_cbor_dec_t d;

    cl_cbor_dec_init(&d, cbor, len);
    for (;;) {
        struct jframe *f = NULL;
        const uint8_t *at = d.cur, *raw;
        const char *s;
        size_t n;
        uint64_t u;
        int64_t i;
        cl_cbor_type_t t;
        char num[24];
        bool key = false;

        if (depth > 0) {
            f = &stack[depth - 1];
            if (f->done == f->total) {
                put_char(k, f->is_map ? '}' : ']');
                if (--depth == 0)
                    break;
                continue;
            }
            if (f->done > 0)
                put_char(k, f->is_map && f->done % 2 == 1 ? ':' : ',');
            key = f->is_map && f->done % 2 == 0;
            f->done++;
        }
        rc = cl_cbor_dec_peek(&d, &t);
        if (rc != CL_OK)
            goto done;
        if (key && t != CL_CBOR_TSTR) {
            rc = CL_FAIL(CL_ERR_UNSUPPORTED); /* JSON object keys are strings */
            goto done;
        }
        switch (t) {
        case CL_CBOR_UINT:
            rc = cl_cbor_dec_uint(&d, &u);
            if (rc == CL_OK)
                put_text(k, num, put_uint_text(num, u));
            break;
        case CL_CBOR_NINT:
            rc = cl_cbor_dec_int(&d, &i);
            if (rc == CL_OK) {
                num[0] = '-';
                /* -1 - i' for i' = -1 - i >= 0, printed as "-" and i' + 1 */
                put_text(k, num, 1 + put_uint_text(num + 1, (uint64_t)(-1 - i) + 1));
            } else {
                rc = cl_cbor_dec_raw(&d, &raw, &n);
                if (rc == CL_OK)
                    put_big_negative(k, raw, n);
            }
            break;
        case CL_CBOR_BSTR:
            rc = cl_cbor_dec_bstr(&d, &raw, &n);
            if (rc == CL_OK)
                put_base64url(k, raw, n);
            break;
        case CL_CBOR_TSTR:
            rc = cl_cbor_dec_tstr(&d, &s, &n);
            if (rc != CL_OK)
                break;
            if (!cl_cbor_utf8_valid((const uint8_t *)s, n)) {
                rc = CL_FAIL(CL_ERR_BAD_INPUT);
                break;
            }
            if (key && check_dups && f->done > 1) {
                rc = check_map_key(f, at, d.end, s, n);
                if (rc != CL_OK)
                    break;
            }
            put_json_string(k, s, n);
            break;
        case CL_CBOR_ARRAY:
        case CL_CBOR_MAP:
            rc = t == CL_CBOR_MAP ? cl_cbor_dec_map(&d, &n) : cl_cbor_dec_array(&d, &n);
            if (rc != CL_OK)
                break;
            if (depth == CL_JSON_MAX_DEPTH) {
                rc = CL_FAIL(CL_ERR_LIMIT);
                break;
            }
            f = &stack[depth++];
            /* a map's count is at most half the bytes left, so doubling cannot wrap */
            f->total = t == CL_CBOR_MAP ? 2 * n : n;
            f->done = 0;
            f->first = d.cur;
            f->is_map = t == CL_CBOR_MAP;
            put_char(k, f->is_map ? '{' : '[');
            continue; /* its items (or its closing bracket) are next */
        case CL_CBOR_TAG: rc = CL_FAIL(CL_ERR_UNSUPPORTED); break;
        case CL_CBOR_SIMPLE: rc = put_simple(&d, k, scratch); break;
        }
        if (rc != CL_OK || depth == 0)
            break;
    }
    if (rc == CL_OK && !cl_cbor_dec_at_end(&d))
        rc = CL_FAIL(CL_ERR_BAD_INPUT); /* one item, nothing after it */
done:
    return rc;
}

cl_status_t cl_cbor_to_json(const uint8_t *cbor, size_t len, char *out, size_t out_size,
                            size_t *out_len)
{
    cl_status_t rc;
    struct fmt_scratch scratch;
    struct sink k = {NULL, 0, 0, false};

    if (out_len == NULL || (cbor == NULL && len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (len == 0) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    /* pass 1: check and count */
    rc = cbor_pass(cbor, len, &k, true, &scratch);
    if (rc != CL_OK)
        goto done;
    if (k.full) {
        rc = CL_FAIL(CL_ERR_LIMIT);
        goto done;
    }
    *out_len = k.len;
    if (out == NULL)
        goto done;
    if (out_size == 0 || k.len > out_size - 1) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    /* pass 2: write */
    k.buf = out;
    k.size = out_size - 1;
    k.len = 0;
    rc = cbor_pass(cbor, len, &k, false, &scratch);
    if (rc == CL_OK && k.full)
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL); /* not reached: pass 1 sized it */
    if (rc != CL_OK)
        goto done;
    out[k.len] = '\0';
    *out_len = k.len;
done:
    return rc;
}
