/*
 * cloister/bytes.h - little-endian loads and stores of fixed-width integers.
 *
 * The byte formats that cross the trust boundary or leave the machine (the
 * batch format, sealed blobs, SGX report bodies and key requests, quotes,
 * the simulated platform's structures, the core/host channel) are read and
 * written field by field in little-endian, independent of the compiler's
 * struct layout and the host's byte order. These are the one copy of those
 * helpers.
 *
 * Static inline, header only: no I/O, no allocation, no state, no symbols of
 * their own, so the portable library and the trusted core may use them.
 * The caller guarantees that p points at 2, 4 or 8 accessible bytes.
 */
#ifndef CLOISTER_BYTES_H
#define CLOISTER_BYTES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Reads a little-endian u16 from p[0..1]. */
static inline uint16_t cl_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

/** Reads a little-endian u32 from p[0..3]. */
static inline uint32_t cl_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/** Reads a little-endian u64 from p[0..7]. */
static inline uint64_t cl_get_le64(const uint8_t *p)
{
    return (uint64_t)cl_get_le32(p) | (uint64_t)cl_get_le32(p + 4) << 32;
}

/** Writes v to p[0..1], little-endian. */
static inline void cl_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/** Writes v to p[0..3], little-endian. */
static inline void cl_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/** Writes v to p[0..7], little-endian. */
static inline void cl_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

#ifdef __cplusplus
}
#endif

#endif /* CLOISTER_BYTES_H */
