/*
 * fake_runtime.c - a stand-in for the runtime API (cloister/runtime.h) so the
 * cloisterd event loop, flags, signals and storage wiring can be tested
 * without a core image. NOT a core: it answers every CoAP request with an ACK
 * 2.05 carrying the same message id and token and the payload "fake-core",
 * and appends one log record per batch through the host's ocall table (so the
 * smoke test sees the data directory being used). Linked only into the test
 * binary cloisterd_fake.
 *
 * For cloisterd_delivery.sh (the send ocall through the daemon) it also:
 *   CoAP request with Uri-Path "notify": sends a CON 2.05 notification (mid
 *     0x5150, the request's token) through host->send during handle();
 *   OSCORE-over-HTTP request with payload "wait": defers it (len 0 +
 *     CL_BATCH_F_DEFER) and answers it at the next tick through host->send
 *     (NON 2.04, empty OSCORE option, payload "fake-action");
 *   payload "wait-forever": defers it and never answers (the host's 504).
 */
#include <stdlib.h>
#include <string.h>

#include "cloister/coap.h"
#include "cloister/runtime.h"

struct cl_runtime {
    const cl_host_ops_t *host;
    uint64_t next_counter;
    bool poll_pending; /* answer poll_peer at the next tick */
    uint64_t poll_peer;
    uint8_t poll_token[8];
    size_t poll_tkl;
};

/* A CoAP message (type, code, mid, token, optional empty OSCORE option, payload) into out. */
static size_t build(uint8_t *out, size_t size, uint8_t type, uint8_t code, uint16_t mid,
                    const uint8_t *tok, size_t tkl, bool oscore, const char *payload)
{
    cl_coap_builder_t b;
    size_t len = 0;
    cl_coap_build_init(&b, out, size, type, code, mid, tok, tkl);
    if (oscore)
        cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, (const uint8_t *)"", 0);
    cl_coap_build_payload(&b, (const uint8_t *)payload, strlen(payload));
    return cl_coap_build_finish(&b, &len) == CL_OK ? len : 0;
}

cl_status_t cl_runtime_open(const cl_runtime_config_t *cfg, const cl_host_ops_t *host,
                            cl_runtime_t **out)
{
    if (cfg == NULL || host == NULL || out == NULL)
        return CL_ERR_INVALID_ARG;
    cl_runtime_t *rt = calloc(1, sizeof *rt);
    if (rt == NULL)
        return CL_ERR_FULL;
    rt->host = host;
    /* Boot like a core would: find the end of the log. */
    uint64_t c = 0, got = 0;
    uint8_t buf[64];
    size_t len = 0;
    while (host->log_read(host->ctx, c, &got, buf, sizeof buf, &len) == CL_OK)
        c = got + 1;
    rt->next_counter = c;
    host->log_line(host->ctx, CL_LOG_INFO, "fake core open (test double, no core)");
    *out = rt;
    return CL_OK;
}

cl_status_t cl_runtime_handle(cl_runtime_t *rt, const uint8_t *in, size_t in_len, uint8_t *out,
                              size_t out_size, size_t *out_len)
{
    size_t count = 0, pos = 0;
    cl_batch_item_t it;
    cl_status_t st = cl_batch_validate(in, in_len, &count);
    if (st != CL_OK)
        return st;
    if ((st = cl_batch_begin(out, out_size, out_len)) != CL_OK)
        return st;
    while (cl_batch_next(in, in_len, &pos, &it) == CL_OK) {
        uint8_t resp[32];
        size_t n = 0;
        cl_coap_msg_t m;
        char path[32] = "";
        bool parsed = cl_coap_parse(&m, it.msg, it.len) == CL_OK;
        if (parsed && cl_coap_uri_path(&m, path, sizeof path) != CL_OK)
            path[0] = '\0';
        if (parsed && it.transport == CL_TRANSPORT_HTTP &&
            cl_coap_msg_get(&m, CL_COAP_OPT_OSCORE) != NULL && m.payload_len >= 4 &&
            memcmp(m.payload, "wait", 4) == 0) { /* a long poll */
            bool forever = m.payload_len > 4;
            if (!forever) {
                rt->poll_pending = true;
                rt->poll_peer = it.peer;
                rt->poll_tkl = m.tkl;
                memcpy(rt->poll_token, m.token, m.tkl);
            }
            cl_batch_item_t r = {.peer = it.peer,
                                 .transport = it.transport,
                                 .flags = CL_BATCH_F_DEFER,
                                 .msg = NULL,
                                 .len = 0};
            if ((st = cl_batch_add(out, out_size, out_len, &r)) != CL_OK)
                return st;
            continue;
        }
        if (parsed && it.transport == CL_TRANSPORT_COAP && strcmp(path, "/notify") == 0) {
            uint8_t note[64];
            size_t nl = build(note, sizeof note, CL_COAP_CON, CL_COAP_CONTENT, 0x5150, m.token,
                              m.tkl, false, "fake-notification");
            if (nl > 0) /* the host holds it until the batch is committed */
                (void)rt->host->send(rt->host->ctx, it.peer, CL_TRANSPORT_COAP, note, nl);
        }
        if (it.len >= 4) {
            size_t tkl = it.msg[0] & 15u;
            if (tkl > 8 || it.len < 4 + tkl)
                tkl = 0;
            resp[0] = (uint8_t)(0x40 | ((it.msg[0] >> 4 & 3) == 0 ? 0x20 : 0x10) | tkl);
            resp[1] = 0x45;
            resp[2] = it.msg[2];
            resp[3] = it.msg[3];
            memcpy(resp + 4, it.msg + 4, tkl);
            n = 4 + tkl;
            resp[n++] = 0xFF;
            memcpy(resp + n, "fake-core", 9);
            n += 9;
        }
        cl_batch_item_t r = {.peer = it.peer, .transport = it.transport, .msg = resp, .len = n};
        if ((st = cl_batch_add(out, out_size, out_len, &r)) != CL_OK)
            return st;
    }
    const uint8_t rec[8] = {'b', 'a', 't', 'c', 'h', 0, 0, 0};
    return rt->host->log_append(rt->host->ctx, rt->next_counter++, rec, sizeof rec);
}

cl_status_t cl_runtime_tick(cl_runtime_t *rt, int64_t now_ms)
{
    (void)now_ms;
    if (rt == NULL)
        return CL_ERR_INVALID_ARG;
    if (rt->poll_pending) { /* "an action was queued": answer the long poll */
        uint8_t msg[64];
        size_t n = build(msg, sizeof msg, CL_COAP_NON, CL_COAP_CHANGED, 0x5151, rt->poll_token,
                         rt->poll_tkl, true, "fake-action");
        rt->poll_pending = false;
        if (n > 0)
            (void)rt->host->send(rt->host->ctx, rt->poll_peer, CL_TRANSPORT_HTTP, msg, n);
    }
    return CL_OK;
}

cl_status_t cl_runtime_attest(cl_runtime_t *rt, const uint8_t *nonce, size_t nonce_len,
                              uint8_t *out, size_t out_size, size_t *out_len)
{
    (void)rt;
    (void)nonce;
    (void)nonce_len;
    (void)out;
    (void)out_size;
    (void)out_len;
    return CL_ERR_UNSUPPORTED;
}

void cl_runtime_close(cl_runtime_t *rt)
{
    if (rt != NULL)
        rt->host->log_line(rt->host->ctx, CL_LOG_INFO, "fake core closed");
    free(rt);
}

const char *cl_runtime_name(const cl_runtime_t *rt)
{
    (void)rt;
    return "fake";
}

long cl_runtime_pid(const cl_runtime_t *rt)
{
    (void)rt;
    return 0;
}
