/*
 * coap.c - CoAP message codec (RFC 7252 section 3, Observe RFC 7641, Block RFC 7959).
 *
 * What: a parser that decodes a datagram in place (token, option values and
 * payload are pointers into the caller's buffer), a serializer for a
 * cl_coap_msg_t (with a counting mode, out == NULL), an incremental builder
 * that writes straight into a caller buffer, and helpers for uint, Block and
 * Uri-Path option values. No heap, no I/O, no globals.
 *
 * Why it is strict: the host and the enclave both look at the same bytes, and
 * OSCORE (RFC 8613) protects some options and not others, so two decoders
 * must never disagree about what a datagram means. Every "message format
 * error" of RFC 7252 is CL_ERR_BAD_INPUT, and the wire format then has exactly
 * one encoding per parsed message: extended delta/length forms are implied by
 * the value (13 only for 13..268, 14 only for 269..65804), the payload marker
 * only appears before a non-empty payload, and option values are kept as
 * opaque bytes (a uint with leading zeros stays as sent). So
 * serialize(parse(x)) == x for every x the parser accepts; the fuzz harness
 * (fuzz/fuzz_coap.c) checks exactly that. The writers refuse to produce what
 * the parser would reject (bad version fields, reserved code classes, an
 * Empty message with content, unsorted options) with CL_ERR_INVALID_ARG, and
 * they write nothing at all when the output would not fit.
 *
 * Well-formed messages that do not fit the fixed-size cl_coap_msg_t (more
 * than CL_COAP_MAX_OPTIONS options, or an option value longer than 65535
 * bytes, which cannot occur in a UDP datagram) are CL_ERR_LIMIT, reported only
 * after the whole datagram was checked, so that LIMIT always means "valid but
 * too big for us" and BAD_INPUT always means "malformed".
 */
#include "cloister/coap.h"

#include <string.h>

/** Largest option value length the wire format can express (nibble 14 + 16 bits). */
#define OPT_LEN_MAX (65535u + 269u)
/** Fixed header: Ver/T/TKL, Code, Message ID. */
#define HDR_LEN 4u
#define PAYLOAD_MARKER 0xFFu

/* Code classes 1, 6 and 7 are reserved (RFC 7252 sections 3 and 12.1). */
static bool code_class_reserved(uint8_t code)
{
    uint8_t c = CL_COAP_CLASS(code);
    return c == 1 || c == 6 || c == 7;
}

/* Options in use; a corrupt n_options never makes us walk past the array. */
static size_t n_opts(const cl_coap_msg_t *m)
{
    size_t n = m->n_options;
    if (n > CL_COAP_MAX_OPTIONS)
        n = CL_COAP_MAX_OPTIONS;
    return n;
}

/*
 * Reads the extension of one delta or length nibble (0..14) at *p and
 * returns the full value in *v. Nibble 15 is handled by the caller.
 */
static cl_status_t read_ext(unsigned nib, const uint8_t **p, const uint8_t *end, uint32_t *v)
{
    cl_status_t rc = CL_OK;
    const uint8_t *q = *p;

    if (nib < 13) {
        *v = nib;
    } else if (nib == 13) {
        if (end - q < 1) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        *v = 13u + q[0];
        q += 1;
    } else {
        if (end - q < 2) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        *v = 269u + ((uint32_t)q[0] << 8 | q[1]);
        q += 2;
    }
    *p = q;
done:
    return rc;
}

/* Appends the extension bytes for v (<= OPT_LEN_MAX) to h[*n] and returns its nibble. */
static uint8_t put_ext(uint32_t v, uint8_t *h, size_t *n)
{
    if (v < 13)
        return (uint8_t)v;
    if (v < 269) {
        h[(*n)++] = (uint8_t)(v - 13u);
        return 13;
    }
    v -= 269u;
    h[(*n)++] = (uint8_t)(v >> 8);
    h[(*n)++] = (uint8_t)v;
    return 14;
}

/*
 * Encodes an option header (first byte plus extended delta, then extended
 * length, RFC 7252 figure 8) into h and returns its length (1..5).
 * delta <= 65535 and len <= OPT_LEN_MAX are the caller's to check.
 */
static size_t opt_head(uint8_t h[CL_COAP_MAX_OPT_HEAD], uint32_t delta, size_t len)
{
    size_t n = 1;
    uint8_t dn = put_ext(delta, h, &n);
    uint8_t ln = put_ext((uint32_t)len, h, &n);
    h[0] = (uint8_t)(dn << 4 | ln);
    return n;
}

/*
 * Parses what follows the token: options (delta/length encoded) and an
 * optional payload marker + payload, into m->options / m->payload. LIMIT is
 * reported only after the whole input was checked for format errors.
 */
static cl_status_t parse_options(cl_coap_msg_t *m, const uint8_t *p, size_t len)
{
    cl_status_t rc = CL_OK;
    bool over_limit = false;
    const uint8_t *end = p + len;
    uint32_t number = 0;

    m->n_options = 0;
    m->payload = NULL;
    m->payload_len = 0;
    while (p < end) {
        uint8_t b0 = *p++;
        if (b0 == PAYLOAD_MARKER) {
            /* A marker followed by nothing is a format error (section 3). */
            if (p == end) {
                rc = CL_FAIL(CL_ERR_BAD_INPUT);
                goto done;
            }
            m->payload = p;
            m->payload_len = (size_t)(end - p);
            break;
        }
        unsigned dn = b0 >> 4, ln = b0 & 0x0f;
        uint32_t delta = 0, olen = 0;
        if (dn == 15 || ln == 15) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        rc = read_ext(dn, &p, end, &delta);
        if (rc != CL_OK)
            goto done;
        rc = read_ext(ln, &p, end, &olen);
        if (rc != CL_OK)
            goto done;
        number += delta; /* both <= 65535 + 65804: no wrap */
        if (number > UINT16_MAX || (size_t)(end - p) < olen) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        /* Keep checking the rest so that LIMIT is only reported for well-formed input. */
        if (m->n_options >= CL_COAP_MAX_OPTIONS || olen > UINT16_MAX) {
            over_limit = true;
        } else {
            cl_coap_option_t *o = &m->options[m->n_options++];
            o->number = (uint16_t)number;
            o->len = (uint16_t)olen;
            o->value = olen ? p : NULL;
        }
        p += olen;
    }
    if (over_limit)
        rc = CL_FAIL(CL_ERR_LIMIT);
done:
    return rc;
}

cl_status_t cl_coap_options_parse(cl_coap_msg_t *m, const uint8_t *buf, size_t len)
{
    cl_status_t rc;
    if (m == NULL || (buf == NULL && len > 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    rc = parse_options(m, buf, len);
    if (rc != CL_OK) {
        m->n_options = 0;
        m->payload = NULL;
        m->payload_len = 0;
    }
    return rc;
}

cl_status_t cl_coap_option_encode(uint8_t *out, size_t out_size, size_t *out_len, uint16_t prev,
                                  uint16_t number, const uint8_t *value, size_t len)
{
    uint8_t h[CL_COAP_MAX_OPT_HEAD];

    if (out_len == NULL || number < prev || len > UINT16_MAX || (len > 0 && value == NULL))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    size_t hl = opt_head(h, (uint32_t)(number - prev), len);
    if (out == NULL || out_size < hl || out_size - hl < len)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    memcpy(out, h, hl);
    if (len > 0)
        memmove(out + hl, value, len);
    *out_len = hl + len;
    return CL_OK;
}

cl_status_t cl_coap_parse(cl_coap_msg_t *m, const uint8_t *buf, size_t len)
{
    cl_status_t rc = CL_OK;

    if (m == NULL || (buf == NULL && len > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    /* Header fields only: options beyond n_options are never read (hot path). */
    memset(m, 0, offsetof(cl_coap_msg_t, options));
    m->payload = NULL;
    m->payload_len = 0;
    if (len < HDR_LEN) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    uint8_t tkl = buf[0] & 0x0f;
    /* Version 1 only; token lengths 9..15 are reserved (section 3). */
    if ((buf[0] >> 6) != 1 || tkl > CL_COAP_MAX_TOKEN || code_class_reserved(buf[1])) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    /* An Empty message is the 4-byte header and nothing else (section 4.1). */
    if (buf[1] == CL_COAP_EMPTY && len != HDR_LEN) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    if (len - HDR_LEN < tkl) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    m->type = (uint8_t)((buf[0] >> 4) & 3);
    m->code = buf[1];
    m->mid = (uint16_t)((uint16_t)buf[2] << 8 | buf[3]);
    m->tkl = tkl;
    m->token = tkl ? buf + HDR_LEN : NULL;

    rc = parse_options(m, buf + HDR_LEN + tkl, len - HDR_LEN - tkl);
done:
    /* Fail closed: no half-parsed message is left behind. */
    if (rc != CL_OK && m != NULL)
        memset(m, 0, sizeof *m);
    return rc;
}

cl_status_t cl_coap_serialize(const cl_coap_msg_t *m, uint8_t *out, size_t out_size,
                              size_t *out_len)
{
    cl_status_t rc = CL_OK;
    size_t total = 0;
    uint8_t h[CL_COAP_MAX_OPT_HEAD];

    if (out_len != NULL)
        *out_len = 0;
    if (m == NULL || out_len == NULL || (out == NULL && out_size > 0)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    /* Refuse to emit anything cl_coap_parse() would call a format error. */
    if (m->type > CL_COAP_RST || m->tkl > CL_COAP_MAX_TOKEN || (m->tkl && m->token == NULL) ||
        code_class_reserved(m->code) || m->n_options > CL_COAP_MAX_OPTIONS ||
        (m->payload_len && m->payload == NULL)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (m->code == CL_COAP_EMPTY && (m->tkl || m->n_options || m->payload_len)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }

    /* Pass 1: validate and size, so that nothing is written unless all of it fits. */
    total = HDR_LEN + m->tkl;
    uint16_t prev = 0;
    for (size_t i = 0; i < m->n_options; i++) {
        const cl_coap_option_t *o = &m->options[i];
        if (o->number < prev || (o->len && o->value == NULL)) {
            rc = CL_FAIL(CL_ERR_INVALID_ARG);
            goto done;
        }
        total += opt_head(h, (uint32_t)(o->number - prev), o->len) + o->len;
        prev = o->number;
    }
    if (m->payload_len) {
        if (m->payload_len > SIZE_MAX - total - 1) {
            rc = CL_FAIL(CL_ERR_INVALID_ARG);
            goto done;
        }
        total += 1 + m->payload_len;
    }
    if (out == NULL) {
        *out_len = total;
        goto done;
    }
    if (out_size < total) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }

    /* Pass 2: write. */
    size_t n = 0;
    out[n++] = (uint8_t)(1u << 6 | (unsigned)m->type << 4 | m->tkl);
    out[n++] = m->code;
    out[n++] = (uint8_t)(m->mid >> 8);
    out[n++] = (uint8_t)m->mid;
    if (m->tkl) {
        memcpy(out + n, m->token, m->tkl);
        n += m->tkl;
    }
    prev = 0;
    for (size_t i = 0; i < m->n_options; i++) {
        const cl_coap_option_t *o = &m->options[i];
        size_t hl = opt_head(h, (uint32_t)(o->number - prev), o->len);
        memcpy(out + n, h, hl);
        n += hl;
        if (o->len) {
            memcpy(out + n, o->value, o->len);
            n += o->len;
        }
        prev = o->number;
    }
    if (m->payload_len) {
        out[n++] = PAYLOAD_MARKER;
        memcpy(out + n, m->payload, m->payload_len);
        n += m->payload_len;
    }
    *out_len = n;
done:
    return rc;
}

void cl_coap_sort_options(cl_coap_msg_t *m)
{
    if (m == NULL)
        return;
    size_t n = n_opts(m);
    /* Insertion sort: stable (repeated options keep their order) and n <= 32. */
    for (size_t i = 1; i < n; i++) {
        cl_coap_option_t x = m->options[i];
        size_t j = i;
        while (j > 0 && m->options[j - 1].number > x.number) {
            m->options[j] = m->options[j - 1];
            j--;
        }
        m->options[j] = x;
    }
}

cl_status_t cl_coap_msg_add_option(cl_coap_msg_t *m, uint16_t number, const uint8_t *value,
                                   size_t len)
{
    cl_status_t rc = CL_OK;

    if (m == NULL || (value == NULL && len > 0) || len > OPT_LEN_MAX ||
        m->n_options > CL_COAP_MAX_OPTIONS) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    /* Valid on the wire, but cl_coap_option_t.len has 16 bits (enough for any UDP datagram). */
    if (len > UINT16_MAX || m->n_options == CL_COAP_MAX_OPTIONS) {
        rc = CL_FAIL(CL_ERR_LIMIT);
        goto done;
    }
    cl_coap_option_t *o = &m->options[m->n_options++];
    o->number = number;
    o->len = (uint16_t)len;
    o->value = len ? value : NULL;
done:
    return rc;
}

/*
 * *pos is set to the index of the match (so "for (pos = 0; (o = find(m, n,
 * &pos)) != NULL; pos++)" walks the repeats), or to n_options when none.
 */
const cl_coap_option_t *cl_coap_msg_find(const cl_coap_msg_t *m, uint16_t number, size_t *pos)
{
    const cl_coap_option_t *found = NULL;
    size_t i = pos != NULL ? *pos : 0;

    if (m == NULL)
        goto done;
    size_t n = n_opts(m);
    if (i > n)
        i = n; /* not found leaves *pos == n_options */
    for (; i < n; i++) {
        if (m->options[i].number == number) {
            found = &m->options[i]; /* *pos = its index: pos++ continues after it */
            break;
        }
    }
done:
    if (pos != NULL)
        *pos = i;
    return found;
}

const cl_coap_option_t *cl_coap_msg_get(const cl_coap_msg_t *m, uint16_t number)
{
    return cl_coap_msg_find(m, number, NULL);
}

cl_status_t cl_coap_opt_uint(const cl_coap_option_t *opt, uint32_t *v)
{
    cl_status_t rc = CL_OK;
    uint32_t x = 0;

    if (opt == NULL || v == NULL || (opt->len && opt->value == NULL)) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (opt->len > 4) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    for (size_t i = 0; i < opt->len; i++)
        x = x << 8 | opt->value[i];
    *v = x;
done:
    return rc;
}

size_t cl_coap_uint_encode(uint8_t out[4], uint32_t v)
{
    size_t n = 0;

    if (out == NULL)
        return 0;
    /* Minimal length (RFC 7252 section 3.2): no leading zero bytes, 0 is empty. */
    while (n < 4 && (v >> (8 * n)) != 0)
        n++;
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return n;
}

cl_status_t cl_coap_block_decode(const cl_coap_option_t *opt, cl_coap_block_t *b)
{
    cl_status_t rc = CL_OK;
    uint32_t v = 0;

    if (b == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = cl_coap_opt_uint(opt, &v);
    if (rc != CL_OK)
        goto done;
    /* 0..3 bytes (RFC 7959 section 2.2); SZX 7 is reserved. */
    if (opt->len > 3 || (v & 7u) == 7u) {
        rc = CL_FAIL(CL_ERR_BAD_INPUT);
        goto done;
    }
    b->num = v >> 4;
    b->more = (v & 8u) != 0;
    b->szx = (uint8_t)(v & 7u);
done:
    return rc;
}

cl_status_t cl_coap_block_encode(const cl_coap_block_t *b, uint8_t out[3], size_t *len)
{
    cl_status_t rc = CL_OK;
    uint8_t tmp[4];

    if (len != NULL)
        *len = 0;
    if (b == NULL || out == NULL || len == NULL || b->num >= (1u << 20) || b->szx > 6) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    uint32_t v = b->num << 4 | (b->more ? 8u : 0u) | b->szx;
    size_t n = cl_coap_uint_encode(tmp, v); /* v < 2^24: at most 3 bytes */
    memcpy(out, tmp, n);
    *len = n;
done:
    return rc;
}

/* "." and ".." must not appear as Uri-Path values (RFC 7252 section 5.10.1). */
static bool dot_segment(const uint8_t *s, size_t n)
{
    return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

cl_status_t cl_coap_uri_path(const cl_coap_msg_t *m, char *out, size_t out_size)
{
    cl_status_t rc = CL_OK;
    size_t need = 0, n = 0, pos = 0;
    const cl_coap_option_t *o;

    if (m == NULL || out == NULL || m->n_options > CL_COAP_MAX_OPTIONS) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    /*
     * Pass 1: validate and size. A segment holding '/' or NUL would change
     * the path's meaning once joined; "." and ".." are forbidden outright.
     */
    for (; (o = cl_coap_msg_find(m, CL_COAP_OPT_URI_PATH, &pos)) != NULL; pos++) {
        if ((o->len && o->value == NULL) || dot_segment(o->value, o->len) ||
            (o->len && memchr(o->value, '/', o->len) != NULL) ||
            (o->len && memchr(o->value, '\0', o->len) != NULL)) {
            rc = CL_FAIL(CL_ERR_BAD_INPUT);
            goto done;
        }
        need += 1 + (size_t)o->len;
    }
    if (need == 0)
        need = 1; /* "/" (RFC 7252 section 6.5 step 7) */
    if (out_size < need + 1) {
        rc = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    /* Pass 2: write "/seg" per option (section 6.5 step 6), unescaped. */
    for (pos = 0; (o = cl_coap_msg_find(m, CL_COAP_OPT_URI_PATH, &pos)) != NULL; pos++) {
        out[n++] = '/';
        if (o->len) {
            memcpy(out + n, o->value, o->len);
            n += o->len;
        }
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
done:
    return rc;
}

/*
 * RFC 7252 section 6.4 step 8, for an already percent-decoded path: "" and
 * "/" give no option; otherwise every segment between slashes after the
 * leading one becomes an option, empty ones included ("/a//b/" is "a", "",
 * "b", ""). The options point into path, so path must outlive the message.
 */
cl_status_t cl_coap_msg_set_uri_path(cl_coap_msg_t *m, const char *path)
{
    cl_status_t rc = CL_OK;
    size_t count = 0;

    if (m == NULL || path == NULL || m->n_options > CL_COAP_MAX_OPTIONS) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    const char *s = path[0] == '/' ? path + 1 : path;
    if (path[0] == '\0' || (path[0] == '/' && path[1] == '\0'))
        goto done;
    /* Pass 1: check every segment and the room left, so that a failure adds nothing. */
    for (const char *seg = s;;) {
        const char *e = seg;
        while (*e != '\0' && *e != '/')
            e++;
        size_t n = (size_t)(e - seg);
        if (dot_segment((const uint8_t *)seg, n)) {
            rc = CL_FAIL(CL_ERR_INVALID_ARG); /* resolve the reference first (section 6.4 step 2) */
            goto done;
        }
        if (n > UINT16_MAX) {
            rc = CL_FAIL(CL_ERR_LIMIT);
            goto done;
        }
        count++;
        if (*e == '\0')
            break;
        seg = e + 1;
    }
    if (count > CL_COAP_MAX_OPTIONS - m->n_options) {
        rc = CL_FAIL(CL_ERR_LIMIT);
        goto done;
    }
    /* Pass 2: add them; cannot fail after the checks above. */
    for (const char *seg = s;;) {
        const char *e = seg;
        while (*e != '\0' && *e != '/')
            e++;
        rc = cl_coap_msg_add_option(m, CL_COAP_OPT_URI_PATH, (const uint8_t *)seg,
                                    (size_t)(e - seg));
        if (rc != CL_OK || *e == '\0')
            break;
        seg = e + 1;
    }
done:
    return rc;
}

/* ---- incremental builder ---- */

void cl_coap_build_init(cl_coap_builder_t *b, uint8_t *buf, size_t size, uint8_t type, uint8_t code,
                        uint16_t mid, const uint8_t *token, size_t tkl)
{
    if (b == NULL)
        goto done;
    b->buf = buf;
    b->size = size;
    b->len = 0;
    b->last_opt = 0;
    b->payload = false;
    b->status = CL_OK;
    if ((buf == NULL && size > 0) || type > CL_COAP_RST || tkl > CL_COAP_MAX_TOKEN ||
        (token == NULL && tkl > 0) || code_class_reserved(code) ||
        (code == CL_COAP_EMPTY && tkl > 0)) {
        b->status = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (size < HDR_LEN + tkl) {
        b->status = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    buf[0] = (uint8_t)(1u << 6 | (unsigned)type << 4 | tkl);
    buf[1] = code;
    buf[2] = (uint8_t)(mid >> 8);
    buf[3] = (uint8_t)mid;
    if (tkl)
        memcpy(buf + HDR_LEN, token, tkl);
    b->len = HDR_LEN + tkl;
    /* An Empty message is complete after its header: no option, no payload may follow. */
    b->payload = code == CL_COAP_EMPTY;
done:
    return;
}

cl_status_t cl_coap_build_option(cl_coap_builder_t *b, uint16_t number, const uint8_t *value,
                                 size_t len)
{
    cl_status_t rc = CL_OK;
    uint8_t h[CL_COAP_MAX_OPT_HEAD];

    if (b == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (b->status != CL_OK) {
        rc = b->status; /* sticky: the first error stays */
        goto done;
    }
    if (b->payload || number < b->last_opt || (value == NULL && len > 0) || len > OPT_LEN_MAX) {
        rc = b->status = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    size_t hl = opt_head(h, (uint32_t)(number - b->last_opt), len);
    if (b->size - b->len < hl || b->size - b->len - hl < len) {
        rc = b->status = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    memcpy(b->buf + b->len, h, hl);
    if (len)
        memcpy(b->buf + b->len + hl, value, len);
    b->len += hl + len;
    b->last_opt = number;
done:
    return rc;
}

cl_status_t cl_coap_build_option_uint(cl_coap_builder_t *b, uint16_t number, uint32_t v)
{
    uint8_t tmp[4];
    size_t n = cl_coap_uint_encode(tmp, v);
    return cl_coap_build_option(b, number, tmp, n);
}

cl_status_t cl_coap_build_payload(cl_coap_builder_t *b, const uint8_t *p, size_t len)
{
    cl_status_t rc = CL_OK;

    if (b == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (b->status != CL_OK || len == 0) {
        rc = b->status;
        goto done;
    }
    /* One payload per message; an Empty message has none. */
    if (b->payload || p == NULL) {
        rc = b->status = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    if (b->size - b->len < 1 || b->size - b->len - 1 < len) {
        rc = b->status = CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
        goto done;
    }
    b->buf[b->len] = PAYLOAD_MARKER;
    memcpy(b->buf + b->len + 1, p, len);
    b->len += 1 + len;
    b->payload = true;
done:
    return rc;
}

cl_status_t cl_coap_build_finish(const cl_coap_builder_t *b, size_t *len)
{
    cl_status_t rc = CL_OK;

    if (len != NULL)
        *len = 0;
    if (b == NULL || len == NULL) {
        rc = CL_FAIL(CL_ERR_INVALID_ARG);
        goto done;
    }
    rc = b->status;
    if (rc == CL_OK)
        *len = b->len;
done:
    return rc;
}

void cl_coap_code_str(uint8_t code, char out[5])
{
    unsigned d = CL_COAP_DETAIL(code);

    if (out == NULL)
        return;
    out[0] = (char)('0' + CL_COAP_CLASS(code));
    out[1] = '.';
    out[2] = (char)('0' + d / 10);
    out[3] = (char)('0' + d % 10);
    out[4] = '\0';
}
