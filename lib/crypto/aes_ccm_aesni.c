/*
 * aes_ccm_aesni.c - constant-time AES-128-CCM (13-byte nonce, 8/16-byte tag)
 * with the x86-64 AES-NI instructions.
 *
 * OSCORE protects every CoAP message with AES-CCM-16-64-128 over a few dozen
 * bytes, so the per-message overhead of a general-purpose library (context
 * re-initialisation, parameter plumbing, several calls per message) costs
 * more than the cipher. This file does one message in one call: B0 and the
 * counter blocks are built with byte operations on a register, the key
 * schedule is expanded once per key, and the serial CBC-MAC chain is
 * interleaved with the (independent) CTR keystream so the keystream is free:
 * each step encrypts MAC block i together with counter block i+1, which is
 * also what decryption needs (the MAC covers the plaintext, so the keystream
 * must be one block ahead). The cost is therefore one AES latency per MAC
 * block and nothing else.
 *
 * Constant time: every block operation is an AES instruction (no tables);
 * branches depend only on lengths, which are public; the tag is compared in
 * a register with PTEST (no early exit, nothing left in memory). Decryption
 * computes the MAC over the plaintext it has just produced in a register
 * (the output buffer is never read back) and wipes the output when the tag
 * does not match. In-place operation (out == in) works because each block
 * is read before it is written; partial overlap is not supported.
 *
 * Without CL_HAVE_AESNI (non-x86 builds) the file still compiles:
 * cl_aesni_available() is 0 and the other entry points report
 * CL_ERR_UNSUPPORTED.
 */
#include "cloister/aes_ccm_aesni.h"

#include <string.h>

#include "cloister/crypto.h"

#if defined(CL_HAVE_AESNI)

#include <smmintrin.h>
#include <wmmintrin.h>

#define CCM_NONCE_LEN 13
#define CCM_MAX_PT 0xffffu /* L = 2: the length field is 16 bits */

#define ALWAYS_INLINE static inline __attribute__((always_inline))

int cl_aesni_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

/* One step of the AES-128 key expansion; t is aeskeygenassist(prev, rcon). */
ALWAYS_INLINE __m128i expand_step(__m128i k, __m128i t)
{
    t = _mm_shuffle_epi32(t, 0xff);
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    k = _mm_xor_si128(k, _mm_slli_si128(k, 4));
    return _mm_xor_si128(k, t);
}

cl_status_t cl_aesni_ccm_init(cl_aesni_ccm_t *k, const uint8_t key[16], size_t tag_len)
{
    cl_status_t rc = CL_OK;
    __m128i r[11];

    if (k == NULL || key == NULL || (tag_len != 8 && tag_len != 16)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (!cl_aesni_available()) {
        rc = CL_FAIL(CL_ERR_UNSUPPORTED);
        goto done;
    }
    /* aeskeygenassist takes its round constant as an immediate, hence the unrolling. */
    r[0] = _mm_loadu_si128((const __m128i *)key);
    r[1] = expand_step(r[0], _mm_aeskeygenassist_si128(r[0], 0x01));
    r[2] = expand_step(r[1], _mm_aeskeygenassist_si128(r[1], 0x02));
    r[3] = expand_step(r[2], _mm_aeskeygenassist_si128(r[2], 0x04));
    r[4] = expand_step(r[3], _mm_aeskeygenassist_si128(r[3], 0x08));
    r[5] = expand_step(r[4], _mm_aeskeygenassist_si128(r[4], 0x10));
    r[6] = expand_step(r[5], _mm_aeskeygenassist_si128(r[5], 0x20));
    r[7] = expand_step(r[6], _mm_aeskeygenassist_si128(r[6], 0x40));
    r[8] = expand_step(r[7], _mm_aeskeygenassist_si128(r[7], 0x80));
    r[9] = expand_step(r[8], _mm_aeskeygenassist_si128(r[8], 0x1b));
    r[10] = expand_step(r[9], _mm_aeskeygenassist_si128(r[9], 0x36));
    for (int i = 0; i < 11; i++)
        _mm_storeu_si128((__m128i *)(k->rk + 16 * i), r[i]);
    k->tag_len = (uint8_t)tag_len;

done:
    cl_wipe(r, sizeof r);
    return rc;
}

void cl_aesni_ccm_clear(cl_aesni_ccm_t *k)
{
    if (k != NULL)
        cl_wipe(k, sizeof *k);
}

/*
 * The round keys, loaded once per message so that they can stay in
 * registers. They are a copy of k->rk, which outlives the call anyway, so
 * register spills are not wiped (as in OpenSSL's assembly).
 */
typedef struct sched {
    __m128i k[11];
} sched_t;

/* A block that can be addressed as bytes (union punning is defined in C11). */
typedef union blk {
    __m128i v;
    uint8_t b[16];
} blk_t;

/*
 * n < 16 bytes from p into the low bytes of a register, the rest zero,
 * reading exactly p[0..n): a few overlapping scalar loads instead of a
 * memcpy call into a stack buffer (which would also stall the 16-byte
 * reload on store forwarding and leave plaintext on the stack). Branches
 * depend on n only, which is public.
 */
ALWAYS_INLINE __m128i load_partial(const uint8_t *p, size_t n)
{
    uint64_t lo = 0, hi = 0;

    if (n >= 8) {
        memcpy(&lo, p, 8);
        if (n > 8) {
            memcpy(&hi, p + n - 8, 8); /* p[n-8..n): keep its top n-8 bytes */
            hi >>= 8 * (16 - n);
        }
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4); /* overlaps a with the same bytes */
        lo = a | (uint64_t)b << 8 * (n - 4);
    } else if (n > 0) {
        lo = p[0] | (uint64_t)p[n / 2] << 8 * (n / 2) | (uint64_t)p[n - 1] << 8 * (n - 1);
    }
    return _mm_set_epi64x((long long)hi, (long long)lo);
}

/* Stores the low n < 16 bytes of v to p[0..n), writing nothing else. */
ALWAYS_INLINE void store_partial(uint8_t *p, __m128i v, size_t n)
{
    uint64_t lo = (uint64_t)_mm_cvtsi128_si64(v), hi = (uint64_t)_mm_extract_epi64(v, 1);

    if (n >= 8) {
        memcpy(p, &lo, 8);
        if (n > 8) {
            uint64_t t = lo >> 8 * (n - 8) | hi << 8 * (16 - n); /* bytes n-8..n-1 */
            memcpy(p + n - 8, &t, 8);
        }
    } else if (n >= 4) {
        uint32_t a = (uint32_t)lo, b = (uint32_t)(lo >> 8 * (n - 4));
        memcpy(p, &a, 4);
        memcpy(p + n - 4, &b, 4);
    } else if (n > 0) {
        p[0] = (uint8_t)lo;
        p[n / 2] = (uint8_t)(lo >> 8 * (n / 2));
        p[n - 1] = (uint8_t)(lo >> 8 * (n - 1));
    }
}

/* v with bytes n..15 cleared (n < 16): a byte mask from a sliding window, indexed by length. */
ALWAYS_INLINE __m128i keep_low(__m128i v, size_t n)
{
    static const uint8_t window[32] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    return _mm_and_si128(v, _mm_loadu_si128((const __m128i *)(window + 16 - n)));
}

/* 16-bit big-endian value as the little-endian word _mm_insert_epi16 takes. */
ALWAYS_INLINE int be16(size_t v)
{
    return (int)(((v & 0xffu) << 8) | ((v >> 8) & 0xffu));
}

ALWAYS_INLINE void load_sched(sched_t *s, const cl_aesni_ccm_t *k)
{
    for (int i = 0; i < 11; i++)
        s->k[i] = _mm_loadu_si128((const __m128i *)(k->rk + 16 * i));
}

/* E(a). */
ALWAYS_INLINE __m128i aes1(const sched_t *s, __m128i a)
{
    a = _mm_xor_si128(a, s->k[0]);
    for (int i = 1; i < 10; i++)
        a = _mm_aesenc_si128(a, s->k[i]);
    return _mm_aesenclast_si128(a, s->k[10]);
}

/* E(*a), E(*b) interleaved round by round (two independent streams). */
ALWAYS_INLINE void aes2(const sched_t *s, __m128i *a, __m128i *b)
{
    __m128i x = _mm_xor_si128(*a, s->k[0]);
    __m128i y = _mm_xor_si128(*b, s->k[0]);
    for (int i = 1; i < 10; i++) {
        x = _mm_aesenc_si128(x, s->k[i]);
        y = _mm_aesenc_si128(y, s->k[i]);
    }
    *a = _mm_aesenclast_si128(x, s->k[10]);
    *b = _mm_aesenclast_si128(y, s->k[10]);
}

/* E(*a), E(*b), E(*c) interleaved. */
ALWAYS_INLINE void aes3(const sched_t *s, __m128i *a, __m128i *b, __m128i *c)
{
    __m128i x = _mm_xor_si128(*a, s->k[0]);
    __m128i y = _mm_xor_si128(*b, s->k[0]);
    __m128i z = _mm_xor_si128(*c, s->k[0]);
    for (int i = 1; i < 10; i++) {
        x = _mm_aesenc_si128(x, s->k[i]);
        y = _mm_aesenc_si128(y, s->k[i]);
        z = _mm_aesenc_si128(z, s->k[i]);
    }
    *a = _mm_aesenclast_si128(x, s->k[10]);
    *b = _mm_aesenclast_si128(y, s->k[10]);
    *c = _mm_aesenclast_si128(z, s->k[10]);
}

/* Counter block A_i = A_0 with the 16-bit big-endian counter i in bytes 14..15. */
ALWAYS_INLINE __m128i ctr_block(__m128i a0, unsigned i)
{
    return _mm_insert_epi16(a0, be16(i), 7);
}

/*
 * CBC-MAC over B0 and the encoded AAD (all public). Returns X after the last
 * AAD block; computes S0 = E(A0) and K1 = E(A1) alongside E(B0).
 */
ALWAYS_INLINE __m128i mac_header(const sched_t *s, const uint8_t nonce[13], size_t tag_len,
                                 const uint8_t *aad, size_t aad_len, size_t pt_len, __m128i *s0,
                                 __m128i *k1, __m128i *a0)
{
    /* [0, nonce, 0, 0] from two 8-byte loads inside the nonce and one shuffle. */
    const __m128i spread =
        _mm_setr_epi8(-128, 0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 14, 15, -128, -128);
    __m128i nb = _mm_shuffle_epi8(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)nonce),
                                                     _mm_loadl_epi64((const __m128i *)(nonce + 5))),
                                  spread);
    __m128i x;

    /* A0: flags = L - 1 = 1, counter 0. B0: flags Adata | M' | L', message length. */
    *a0 = _mm_insert_epi8(nb, 0x01, 0);
    x = _mm_insert_epi8(nb, (int)((aad_len != 0 ? 0x40u : 0u) | (((tag_len - 2) / 2) << 3) | 1u),
                        0);
    x = _mm_insert_epi16(x, be16(pt_len), 7);
    *s0 = *a0;
    *k1 = ctr_block(*a0, 1);
    aes3(s, &x, s0, k1);

    if (aad_len != 0) {
        /* First AAD block: length encoding (RFC 3610 2.2) then the first AAD bytes. */
        __m128i b;
        size_t take;
        if (aad_len < 0xff00u) {
            take = aad_len < 14 ? aad_len : 14;
            b = aad_len >= 16 ? _mm_loadu_si128((const __m128i *)aad) : load_partial(aad, take);
            b = _mm_insert_epi16(_mm_slli_si128(b, 2), be16(aad_len), 0);
        } else {
            /* 0xfffe || 32-bit length, or 0xffff || 64-bit length: rare, byte by byte. */
            uint64_t al = (uint64_t)aad_len;
            blk_t t;
            size_t h = al <= 0xffffffffu ? 6 : 10;
            t.v = _mm_setzero_si128();
            t.b[0] = 0xff;
            t.b[1] = h == 6 ? 0xfe : 0xff;
            for (size_t i = 2; i < h; i++)
                t.b[i] = (uint8_t)(al >> 8 * (h - 1 - i));
            take = 16 - h;
            memcpy(t.b + h, aad, take);
            b = t.v;
        }
        x = aes1(s, _mm_xor_si128(x, b));
        aad += take;
        aad_len -= take;
        while (aad_len >= 16) {
            x = aes1(s, _mm_xor_si128(x, _mm_loadu_si128((const __m128i *)aad)));
            aad += 16;
            aad_len -= 16;
        }
        if (aad_len != 0)
            x = aes1(s, _mm_xor_si128(x, load_partial(aad, aad_len)));
    }
    return x;
}

/*
 * The payload: CTR over in -> out and CBC-MAC over the plaintext (in when
 * encrypting, the freshly decrypted block when decrypting). Returns the
 * final MAC state X. Keystream block i+1 is computed together with MAC
 * block i; k enters as keystream block 1.
 */
ALWAYS_INLINE __m128i ccm_payload(const sched_t *s, __m128i x, __m128i k, __m128i a0,
                                  const uint8_t *in, size_t len, uint8_t *out, int enc)
{
    size_t full = len / 16, rem = len % 16;
    unsigned i = 1;

    for (size_t j = 0; j < full; j++, i++) {
        __m128i c = _mm_loadu_si128((const __m128i *)(in + 16 * j));
        __m128i o = _mm_xor_si128(c, k);
        _mm_storeu_si128((__m128i *)(out + 16 * j), o);
        x = _mm_xor_si128(x, enc ? c : o);
        if (j + 1 < full || rem != 0) {
            k = ctr_block(a0, i + 1);
            aes2(s, &x, &k);
        } else {
            x = aes1(s, x);
        }
    }
    if (rem != 0) {
        /* Last partial block: exact loads and stores, no over-read or over-write. */
        __m128i c = load_partial(in + 16 * full, rem);
        __m128i o = _mm_xor_si128(c, k);
        store_partial(out + 16 * full, o, rem);
        /* Decrypting, MAC the plaintext zero-padded, not the keystream tail. */
        x = aes1(s, _mm_xor_si128(x, enc ? c : keep_low(o, rem)));
    }
    return x;
}

/* The tag as a register: T = X ^ S0, upper half cleared for 8-byte tags. */
ALWAYS_INLINE __m128i ccm_tag(__m128i x, __m128i s0, size_t tag_len)
{
    __m128i t = _mm_xor_si128(x, s0);
    return tag_len == 8 ? _mm_move_epi64(t) : t;
}

cl_status_t cl_aesni_ccm_encrypt(const cl_aesni_ccm_t *k, const uint8_t nonce[13],
                                 const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                                 size_t pt_len, uint8_t *out)
{
    cl_status_t rc = CL_OK;
    sched_t s;
    __m128i x, s0, k1, a0, t;

    if (k == NULL || nonce == NULL || out == NULL || (aad == NULL && aad_len != 0) ||
        (pt == NULL && pt_len != 0) || (k->tag_len != 8 && k->tag_len != 16) ||
        pt_len > CCM_MAX_PT) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    load_sched(&s, k);
    x = mac_header(&s, nonce, k->tag_len, aad, aad_len, pt_len, &s0, &k1, &a0);
    x = ccm_payload(&s, x, k1, a0, pt, pt_len, out, 1);
    t = ccm_tag(x, s0, k->tag_len);
    if (k->tag_len == 8)
        _mm_storel_epi64((__m128i *)(out + pt_len), t);
    else
        _mm_storeu_si128((__m128i *)(out + pt_len), t);

done:
    return rc;
}

cl_status_t cl_aesni_ccm_decrypt(const cl_aesni_ccm_t *k, const uint8_t nonce[13],
                                 const uint8_t *aad, size_t aad_len, const uint8_t *in,
                                 size_t in_len, uint8_t *out)
{
    cl_status_t rc = CL_OK;
    sched_t s;
    __m128i x, s0, k1, a0, t, r;
    size_t pt_len;

    if (k == NULL || nonce == NULL || (aad == NULL && aad_len != 0) ||
        (in == NULL && in_len != 0) || (k->tag_len != 8 && k->tag_len != 16)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (in_len < k->tag_len || in_len - k->tag_len > CCM_MAX_PT) {
        /* Cannot be an authentic ciphertext of this algorithm. */
        rc = CL_FAIL(CL_ERR_AUTH);
        goto done;
    }
    pt_len = in_len - k->tag_len;
    if (out == NULL && pt_len != 0) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    /*
     * The received tag follows the ciphertext and is read before any output
     * is written (out may equal in; out only covers [0, pt_len) anyway).
     */
    if (k->tag_len == 8)
        r = _mm_loadl_epi64((const __m128i *)(in + pt_len));
    else
        r = _mm_loadu_si128((const __m128i *)(in + pt_len));

    load_sched(&s, k);
    x = mac_header(&s, nonce, k->tag_len, aad, aad_len, pt_len, &s0, &k1, &a0);
    x = ccm_payload(&s, x, k1, a0, in, pt_len, out, 0);
    t = _mm_xor_si128(ccm_tag(x, s0, k->tag_len), r);
    /* PTEST: constant time, no early exit, no secret left in memory. */
    if (!_mm_testz_si128(t, t)) {
        if (pt_len != 0)
            cl_wipe(out, pt_len);
        rc = CL_FAIL(CL_ERR_AUTH);
    }

done:
    return rc;
}

#else /* !CL_HAVE_AESNI */

int cl_aesni_available(void)
{
    return 0;
}

cl_status_t cl_aesni_ccm_init(cl_aesni_ccm_t *k, const uint8_t key[16], size_t tag_len)
{
    (void)key;
    (void)tag_len;
    if (k != NULL)
        cl_wipe(k, sizeof *k); /* tag_len 0: any later use is refused */
    return CL_FAIL(CL_ERR_UNSUPPORTED);
}

cl_status_t cl_aesni_ccm_encrypt(const cl_aesni_ccm_t *k, const uint8_t nonce[13],
                                 const uint8_t *aad, size_t aad_len, const uint8_t *pt,
                                 size_t pt_len, uint8_t *out)
{
    (void)k, (void)nonce, (void)aad, (void)aad_len, (void)pt, (void)pt_len, (void)out;
    return CL_FAIL(CL_ERR_UNSUPPORTED);
}

cl_status_t cl_aesni_ccm_decrypt(const cl_aesni_ccm_t *k, const uint8_t nonce[13],
                                 const uint8_t *aad, size_t aad_len, const uint8_t *in,
                                 size_t in_len, uint8_t *out)
{
    (void)k, (void)nonce, (void)aad, (void)aad_len, (void)in, (void)in_len, (void)out;
    return CL_FAIL(CL_ERR_UNSUPPORTED);
}

void cl_aesni_ccm_clear(cl_aesni_ccm_t *k)
{
    if (k != NULL)
        cl_wipe(k, sizeof *k);
}

#endif /* CL_HAVE_AESNI */
