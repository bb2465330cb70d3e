/*
 * coap_options.c - CoAP option encoding and parsing for message bodies.
 *
 * RFC 7252 section 3.1 encodes each option as a delta from the previous
 * option number plus a length, each a 4-bit nibble with 1- or 2-byte
 * extensions (13: +13, 14: +269; 15 is reserved for the payload marker).
 * OSCORE (RFC 8613 section 5.3) reuses exactly this encoding for the inner
 * options in its plaintext, which is not a whole CoAP message, so these two
 * routines work on "what follows the token" and are shared by the message
 * codec and the OSCORE layer.
 */
#include <string.h>

#include "cloister/coap.h"

/* Nibble and extension bytes for a delta or length value. */
static size_t ext_size(uint32_t v)
{
    return v < 13 ? 0 : (v < 269 ? 1 : 2);
}

static uint8_t nibble(uint32_t v)
{
    return (uint8_t)(v < 13 ? v : (v < 269 ? 13 : 14));
}

static uint8_t *put_ext(uint8_t *p, uint32_t v)
{
    if (v >= 269) {
        uint32_t e = v - 269;
        *p++ = (uint8_t)(e >> 8);
        *p++ = (uint8_t)e;
    } else if (v >= 13) {
        *p++ = (uint8_t)(v - 13);
    }
    return p;
}

cl_status_t cl_coap_option_encode(uint8_t *out, size_t out_size, size_t *out_len, uint16_t prev,
                                  uint16_t number, const uint8_t *value, size_t len)
{
    if (number < prev || len > 0xffffu || (len > 0 && value == NULL))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    uint32_t delta = (uint32_t)(number - prev);
    size_t need = 1 + ext_size(delta) + ext_size((uint32_t)len) + len;
    if (out == NULL || need > out_size)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    uint8_t *p = out;
    *p++ = (uint8_t)(nibble(delta) << 4 | nibble((uint32_t)len));
    p = put_ext(p, delta);
    p = put_ext(p, (uint32_t)len);
    if (len > 0)
        memmove(p, value, len);
    *out_len = need;
    return CL_OK;
}

/* Reads a delta/length extension for nibble n; CL_ERR_BAD_INPUT on 15 or truncation. */
static cl_status_t read_ext(uint8_t n, const uint8_t **pp, const uint8_t *end, uint32_t *v)
{
    const uint8_t *p = *pp;
    if (n < 13) {
        *v = n;
    } else if (n == 13) {
        if (end - p < 1)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        *v = (uint32_t)p[0] + 13;
        p += 1;
    } else if (n == 14) {
        if (end - p < 2)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        *v = ((uint32_t)p[0] << 8 | p[1]) + 269;
        p += 2;
    } else {
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    *pp = p;
    return CL_OK;
}

cl_status_t cl_coap_options_parse(cl_coap_msg_t *m, const uint8_t *buf, size_t len)
{
    const uint8_t *p = buf, *end = buf + len;
    uint32_t number = 0;
    cl_status_t st;

    m->n_options = 0;
    m->payload = NULL;
    m->payload_len = 0;
    while (p < end) {
        uint8_t b = *p++;
        if (b == 0xff) {
            if (p == end) /* marker with no payload is a format error */
                return CL_FAIL(CL_ERR_BAD_INPUT);
            m->payload = p;
            m->payload_len = (size_t)(end - p);
            return CL_OK;
        }
        uint32_t delta, olen;
        if ((st = read_ext((uint8_t)(b >> 4), &p, end, &delta)) != CL_OK)
            return st;
        if ((st = read_ext((uint8_t)(b & 0x0f), &p, end, &olen)) != CL_OK)
            return st;
        number += delta;
        if (number > 0xffff || olen > (size_t)(end - p))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if (olen > 0xffff) /* cl_coap_option_t.len is 16 bits */
            return CL_FAIL(CL_ERR_LIMIT);
        if (m->n_options == CL_COAP_MAX_OPTIONS)
            return CL_FAIL(CL_ERR_LIMIT);
        cl_coap_option_t *o = &m->options[m->n_options++];
        o->number = (uint16_t)number;
        o->len = (uint16_t)olen;
        o->value = p;
        p += olen;
    }
    return CL_OK;
}
