/*
 * plain_baseline.c - plain CoAP POST /events answered by the host: the
 * benchmark baseline (plain_baseline.h). UNTRUSTED HOST SIDE, INSECURE BY
 * DESIGN, only reachable with `cloisterd --bench-plain-events`.
 */
#include "plain_baseline.h"

#include <string.h>

#include "cloister/cbor.h"
#include "cloister/coap.h"

/* The one plain request this mode serves: CON/NON POST /events, no OSCORE. */
static bool is_plain_event(const uint8_t *msg, size_t len, cl_coap_msg_t *m)
{
    char path[16];
    if (cl_coap_parse(m, msg, len) != CL_OK || m->code != CL_COAP_POST ||
        (m->type != CL_COAP_CON && m->type != CL_COAP_NON) ||
        cl_coap_msg_get(m, CL_COAP_OPT_OSCORE) != NULL)
        return false;
    return cl_coap_uri_path(m, path, sizeof path) == CL_OK && strcmp(path, "/events") == 0;
}

/*
 * The row's tag: peer and Uri-Query (the benchmark names its simulated
 * device there, "d=N"), so rows spread over as many tags as the secure path's
 * (type, source) tags do. Two FNV-1a 64 hashes: not cryptographic - nothing
 * is hidden in this mode.
 */
static void tag_of(uint64_t peer, const cl_coap_option_t *q, uint8_t tag[16])
{
    uint64_t h[2] = {0xcbf29ce484222325u, 0x84222325cbf29ce4u};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 8; i++)
            h[k] = (h[k] ^ (uint8_t)(peer >> (8 * i))) * 0x100000001b3u;
        for (size_t i = 0; q != NULL && i < q->len; i++)
            h[k] = (h[k] ^ q->value[i]) * 0x100000001b3u;
        for (int i = 0; i < 8; i++)
            tag[8 * k + i] = (uint8_t)(h[k] >> (8 * i));
    }
}

bool cl_plain_batch(const uint8_t *in, size_t in_len)
{
    size_t count = 0, pos = 0;
    cl_batch_item_t it;
    cl_coap_msg_t m;
    if (cl_batch_validate(in, in_len, &count) != CL_OK || count == 0)
        return false;
    while (cl_batch_next(in, in_len, &pos, &it) == CL_OK)
        if (it.transport != CL_TRANSPORT_COAP || !is_plain_event(it.msg, it.len, &m))
            return false;
    return true;
}

cl_status_t cl_plain_handle(const cl_host_ops_t *ops, int64_t now_ms, const uint8_t *in,
                            size_t in_len, uint8_t *out, size_t out_size, size_t *out_len)
{
    size_t count = 0, pos = 0;
    cl_batch_item_t it;
    cl_status_t st;
    if (ops == NULL || ops->archive_put == NULL || out_len == NULL ||
        cl_batch_validate(in, in_len, &count) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if ((st = cl_batch_begin(out, out_size, out_len)) != CL_OK)
        return st;
    /* {"accepted": 1} */
    static const uint8_t accepted[] = {0xa1, 0x68, 'a', 'c', 'c', 'e', 'p', 't', 'e', 'd', 0x01};
    while (cl_batch_next(in, in_len, &pos, &it) == CL_OK) {
        cl_coap_msg_t m;
        if (!is_plain_event(it.msg, it.len, &m))
            return CL_FAIL(CL_ERR_INVALID_ARG);
        cl_archive_rec_t rec;
        memset(&rec, 0, sizeof rec);
        tag_of(it.peer, cl_coap_msg_get(&m, CL_COAP_OPT_URI_QUERY), rec.tag);
        rec.bucket = (uint64_t)(now_ms < 0 ? 0 : now_ms) / 3600000u;
        rec.data = m.payload;
        rec.len = m.payload_len;
        uint64_t id = 0;
        bool stored = ops->archive_put(ops->ctx, &rec, 1, &id) == CL_OK;
        uint8_t resp[64];
        size_t rlen = 0;
        cl_coap_builder_t b;
        cl_coap_build_init(&b, resp, sizeof resp, m.type == CL_COAP_CON ? CL_COAP_ACK : CL_COAP_NON,
                           stored ? CL_COAP_CHANGED : CL_COAP_SERVICE_UNAVAILABLE, m.mid, m.token,
                           m.tkl);
        if (stored) {
            (void)cl_coap_build_option_uint(&b, CL_COAP_OPT_CONTENT_FORMAT, 60); /* CBOR */
            (void)cl_coap_build_payload(&b, accepted, sizeof accepted);
        }
        if ((st = cl_coap_build_finish(&b, &rlen)) != CL_OK)
            return st;
        cl_batch_item_t r = {
            .peer = it.peer, .transport = it.transport, .flags = 0, .msg = resp, .len = rlen};
        if ((st = cl_batch_add(out, out_size, out_len, &r)) != CL_OK)
            return st;
    }
    return CL_OK;
}
