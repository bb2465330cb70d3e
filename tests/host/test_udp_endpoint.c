/*
 * test_udp_endpoint.c - cloisterd's CoAP/UDP endpoint (host/udp_endpoint.c)
 * on loopback with a fake core handler: ping -> RST, unmatched ACK/RST
 * dropped, oversized and malformed datagrams dropped, one batch per
 * iteration, retransmissions answered from the dedup cache (no second
 * ecall) until EXCHANGE_LIFETIME, handler failures retried, core-originated
 * sends and the ACK that answers them, loopback-only binding.
 *
 * Core-originated messages: held during a batch and sent only after the
 * handler (handle + group commit) returned, dropped when it failed, nested
 * holds (cloisterd's); CON retransmission on an injected clock (RFC 7252
 * 4.2 timing and backoff), ACK stops it (consumed, never given to the core),
 * RST stops it and reaches the core, give-up after MAX_RETRANSMIT, the
 * bounded table; an ACK with an unknown message id or from another peer
 * changes nothing, an RST flood reaches the core at most once per message.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "host_test_util.h"

#include "cloister/core.h"
#include "udp_endpoint.h"

typedef struct fake_core {
    int calls;
    size_t last_count;
    uint64_t last_peer;
    bool fail;
    bool silent; /* answer with empty items */
    /* core-originated messages */
    cl_udp_t *ep;       /* for cl_udp_send from inside the handler */
    int probe;          /* client socket that must not see anything during the handler */
    int notify;         /* CON notifications to send through cl_udp_send per batch */
    bool extra_item;    /* append a core-originated CON item to the response batch */
    bool left_early;    /* something reached the probe before the handler returned */
    size_t items_total; /* items over all batches */
    size_t rst_items;   /* RST messages handed to the core */
    uint8_t last_msg[64];
    size_t last_len;
} fake_core_t;

/* A CON notification: ver 1, CON, tkl 1, 2.05, the given mid, token 0x7e, payload "N". */
static size_t make_con(uint8_t *m, uint16_t mid)
{
    m[0] = 0x41;
    m[1] = 0x45;
    m[2] = (uint8_t)(mid >> 8);
    m[3] = (uint8_t)mid;
    m[4] = 0x7e;
    m[5] = 0xFF;
    m[6] = 'N';
    return 7;
}

/* Answers every request with ACK 2.05, same mid and token, payload "#<calls>". */
static cl_status_t fake_handle(void *ctx, const uint8_t *in, size_t in_len, uint8_t *out,
                               size_t out_size, size_t *out_len)
{
    fake_core_t *fc = ctx;
    size_t count = 0, pos = 0;
    cl_batch_item_t it;
    fc->calls++;
    if (fc->fail) { /* what it sent before failing must never leave */
        uint8_t m[16];
        for (int k = 0; k < fc->notify; k++) {
            size_t n = make_con(m, (uint16_t)(0x9800 + k));
            assert_int_equal(cl_udp_send(fc->ep, fc->last_peer, CL_TRANSPORT_COAP, m, n), CL_OK);
        }
        return CL_ERR_PERSIST;
    }
    assert_int_equal(cl_batch_validate(in, in_len, &count), CL_OK);
    fc->last_count = count;
    assert_int_equal(cl_batch_begin(out, out_size, out_len), CL_OK);
    while (cl_batch_next(in, in_len, &pos, &it) == CL_OK) {
        uint8_t resp[32];
        size_t tkl = it.msg[0] & 15, n = 0;
        fc->last_peer = it.peer;
        fc->items_total++;
        fc->last_len = it.len < sizeof fc->last_msg ? it.len : sizeof fc->last_msg;
        memcpy(fc->last_msg, it.msg, fc->last_len);
        bool rst = ((it.msg[0] >> 4) & 3) == 3;
        fc->rst_items += rst;
        if (!fc->silent && !rst) {
            resp[0] = (uint8_t)(0x60 | tkl); /* ver 1, ACK */
            resp[1] = 0x45;                  /* 2.05 */
            resp[2] = it.msg[2];
            resp[3] = it.msg[3];
            memcpy(resp + 4, it.msg + 4, tkl);
            n = 4 + tkl;
            resp[n++] = 0xFF;
            n += (size_t)snprintf((char *)resp + n, sizeof resp - n, "#%d", fc->calls);
        }
        cl_batch_item_t r = {.peer = it.peer, .transport = it.transport, .msg = resp, .len = n};
        assert_int_equal(cl_batch_add(out, out_size, out_len, &r), CL_OK);
    }
    uint8_t m[16];
    for (int k = 0; k < fc->notify; k++) {
        size_t n = make_con(m, (uint16_t)(0x9000 + fc->calls * 16 + k));
        assert_int_equal(cl_udp_send(fc->ep, fc->last_peer, CL_TRANSPORT_COAP, m, n), CL_OK);
    }
    if (fc->extra_item) {
        size_t n = make_con(m, (uint16_t)(0xA000 + fc->calls));
        cl_batch_item_t r = {.peer = fc->last_peer, .transport = CL_TRANSPORT_COAP, .msg = m,
                             .len = n};
        assert_int_equal(cl_batch_add(out, out_size, out_len, &r), CL_OK);
    }
    if (fc->probe >= 0 && (fc->notify > 0 || fc->extra_item)) {
        /* The "group commit" is this return: nothing may have left yet. */
        uint8_t b[64];
        cl_udp_stats_t st;
        cl_udp_get_stats(fc->ep, &st);
        if (recv(fc->probe, b, sizeof b, MSG_DONTWAIT) >= 0 || st.notify_sent > 0)
            fc->left_early = true;
    }
    return CL_OK;
}

typedef struct fx {
    fake_core_t core;
    cl_udp_t *ep;
    int cli, cli2;
    struct sockaddr_in srv;
    uint64_t now;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    cl_udp_config_t cfg = {.listen = "127.0.0.1:0", .exchange_lifetime_ms = 1000};
    assert_int_equal(cl_udp_open(&cfg, fake_handle, &fx->core, NULL, NULL, &fx->ep), CL_OK);
    fx->core.ep = fx->ep;
    fx->core.probe = -1;
    assert_true(cl_udp_port(fx->ep) != 0);
    fx->srv.sin_family = AF_INET;
    fx->srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fx->srv.sin_port = htons(cl_udp_port(fx->ep));
    fx->cli = ht_udp_client();
    fx->cli2 = ht_udp_client();
    fx->now = 1000000;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    cl_udp_close(fx->ep);
    close(fx->cli);
    close(fx->cli2);
    free(fx);
    return 0;
}

static void send_raw(fx_t *fx, int s, const void *d, size_t n)
{
    assert_int_equal(sendto(s, d, n, 0, (struct sockaddr *)&fx->srv, sizeof fx->srv), (ssize_t)n);
}

static void process(fx_t *fx)
{
    size_t got = 0;
    assert_int_equal(cl_udp_process(fx->ep, fx->now, &got), CL_OK);
}

/* Receives one datagram within 200 ms; returns its length or -1. */
static ssize_t recv_one(int s, uint8_t *buf, size_t size)
{
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0)
        return -1;
    return recv(s, buf, size, 0);
}

static void send_get(fx_t *fx, int s, uint16_t mid, uint8_t type)
{
    uint8_t m[] = {(uint8_t)(0x40 | (type << 4) | 2), 0x01, (uint8_t)(mid >> 8), (uint8_t)mid,
                   0xA1, 0xB2, 0xB4, 'p', 'i', 'n', 'g'};
    send_raw(fx, s, m, sizeof m);
}

static void test_request_response_and_dedup(void **state)
{
    fx_t *fx = *state;
    uint8_t r1[64], r2[64];
    send_get(fx, fx->cli, 0x1234, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 1);
    ssize_t n1 = recv_one(fx->cli, r1, sizeof r1);
    assert_int_equal(n1, 4 + 2 + 1 + 2);
    assert_int_equal(r1[0], 0x62);
    assert_int_equal(r1[1], 0x45);
    assert_int_equal(r1[2], 0x12);
    assert_int_equal(r1[3], 0x34);
    assert_memory_equal(r1 + 7, "#1", 2);

    /* Retransmission: the same bytes, no second ecall. */
    send_get(fx, fx->cli, 0x1234, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 1);
    ssize_t n2 = recv_one(fx->cli, r2, sizeof r2);
    assert_int_equal(n2, n1);
    assert_memory_equal(r1, r2, (size_t)n1);

    /* Same mid from another peer is a different exchange. */
    send_get(fx, fx->cli2, 0x1234, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 2);
    assert_true(recv_one(fx->cli2, r2, sizeof r2) > 0);

    /* After EXCHANGE_LIFETIME the entry is gone: the core sees it again. */
    fx->now += 1001;
    send_get(fx, fx->cli, 0x1234, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 3);
    assert_true(recv_one(fx->cli, r2, sizeof r2) > 0);
    assert_memory_equal(r2 + 7, "#3", 2);

    cl_udp_stats_t st;
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.dedup_hits, 1);
    assert_int_equal(st.batches, 3);
}

static void test_one_batch_per_iteration(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64];
    send_get(fx, fx->cli, 1, 0);
    send_get(fx, fx->cli2, 2, 1); /* NON */
    send_get(fx, fx->cli, 3, 0);
    send_get(fx, fx->cli, 3, 0); /* duplicate within the batch: in flight, dropped */
    process(fx);
    assert_int_equal(fx->core.calls, 1);
    assert_int_equal(fx->core.last_count, 3);
    assert_true(recv_one(fx->cli, r, sizeof r) > 0);
    assert_true(recv_one(fx->cli, r, sizeof r) > 0);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1);
    assert_true(recv_one(fx->cli2, r, sizeof r) > 0);
    cl_udp_stats_t st;
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.dropped_inflight, 1);
}

static void test_ping_and_unmatched(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64];
    const uint8_t ping[4] = {0x40, 0x00, 0xBE, 0xEF};
    send_raw(fx, fx->cli, ping, sizeof ping);
    process(fx);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), 4);
    assert_int_equal(r[0], 0x70); /* RST */
    assert_int_equal(r[1], 0x00);
    assert_int_equal(r[2], 0xBE);
    assert_int_equal(r[3], 0xEF);

    const uint8_t ack[4] = {0x60, 0x00, 0x00, 0x07};
    const uint8_t rst[4] = {0x70, 0x00, 0x00, 0x08};
    const uint8_t v2[6] = {0x80, 0x01, 0x00, 0x09, 0, 0};   /* version 2 */
    const uint8_t tkl9[8] = {0x49, 0x01, 0x00, 0x0A, 0, 0}; /* token length 9 */
    const uint8_t shorttok[5] = {0x48, 0x01, 0x00, 0x0B, 1}; /* 8-byte token, 1 present */
    const uint8_t tiny[3] = {0x40, 0x01, 0x00};
    send_raw(fx, fx->cli, ack, sizeof ack);
    send_raw(fx, fx->cli, rst, sizeof rst);
    send_raw(fx, fx->cli, v2, sizeof v2);
    send_raw(fx, fx->cli, tkl9, sizeof tkl9);
    send_raw(fx, fx->cli, shorttok, sizeof shorttok);
    send_raw(fx, fx->cli, tiny, sizeof tiny);
    static uint8_t big[1600];
    big[0] = 0x40;
    big[1] = 0x01;
    send_raw(fx, fx->cli, big, sizeof big);
    process(fx);
    assert_int_equal(fx->core.calls, 0);
    /* Format errors in a CON are answered with RST (tkl9, shorttok). */
    assert_int_equal(recv_one(fx->cli, r, sizeof r), 4);
    assert_int_equal(r[0], 0x70);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), 4);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1);
    cl_udp_stats_t st;
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.pings, 1);
    assert_int_equal(st.dropped_unmatched, 2);
    assert_int_equal(st.dropped_big, 1);
    assert_int_equal(st.dropped_bad, 4);
}

static void test_handler_failure_and_silence(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64];
    fx->core.fail = true;
    send_get(fx, fx->cli, 5, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 1);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1);
    /* The retransmission goes to the core again once it works. */
    fx->core.fail = false;
    send_get(fx, fx->cli, 5, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 2);
    assert_true(recv_one(fx->cli, r, sizeof r) > 0);

    /* A core that chose not to answer is not asked twice either. */
    fx->core.silent = true;
    send_get(fx, fx->cli, 6, 0);
    process(fx);
    send_get(fx, fx->cli, 6, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 3);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1);
}

static void test_core_send_and_ack(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64];
    send_get(fx, fx->cli, 9, 0);
    process(fx);
    assert_true(recv_one(fx->cli, r, sizeof r) > 0);
    uint64_t peer = fx->core.last_peer;

    assert_int_equal(cl_udp_send(fx->ep, peer ^ (1ull << 32), CL_TRANSPORT_COAP,
                                 (const uint8_t *)"\x40\x45\x77\x01", 4),
                     CL_ERR_NOT_FOUND); /* stale generation */
    assert_int_equal(cl_udp_send(fx->ep, peer, CL_TRANSPORT_HTTP,
                                 (const uint8_t *)"\x40\x45\x77\x01", 4),
                     CL_ERR_UNSUPPORTED);
    /* A CON notification, mid 0x7701. */
    assert_int_equal(cl_udp_send(fx->ep, peer, CL_TRANSPORT_COAP,
                                 (const uint8_t *)"\x40\x45\x77\x01", 4),
                     CL_OK);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), 4);
    assert_int_equal(r[2], 0x77);
    /* Its ACK is the host's (consumed, not given to the core); a second one matches nothing. */
    const uint8_t ack[4] = {0x60, 0x00, 0x77, 0x01};
    send_raw(fx, fx->cli, ack, sizeof ack);
    process(fx);
    assert_int_equal(fx->core.calls, 1);
    send_raw(fx, fx->cli, ack, sizeof ack);
    process(fx);
    assert_int_equal(fx->core.calls, 1);
    cl_udp_stats_t st;
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.notify_sent, 1);
    assert_int_equal(st.notify_acked, 1);
    assert_int_equal(st.dropped_unmatched, 1);
    assert_int_equal(st.notify_dropped_peer, 1); /* the stale generation */

    /* A NON notification: its RST goes to the core (it cancels the observation). */
    assert_int_equal(cl_udp_send(fx->ep, peer, CL_TRANSPORT_COAP,
                                 (const uint8_t *)"\x50\x45\x77\x02", 4),
                     CL_OK);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), 4);
    const uint8_t rst[4] = {0x70, 0x00, 0x77, 0x02};
    send_raw(fx, fx->cli, rst, sizeof rst);
    process(fx);
    assert_int_equal(fx->core.calls, 2);
    assert_int_equal(fx->core.rst_items, 1);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1); /* the core does not answer an RST */
}

/* ------------------------------------------------------------ held sends, group commit */

/* A request from cli, so the core knows a peer id; returns it. */
static uint64_t learn_peer(fx_t *fx, int s, uint16_t mid)
{
    uint8_t r[64];
    send_get(fx, s, mid, 0);
    process(fx);
    assert_true(recv_one(s, r, sizeof r) > 0);
    return fx->core.last_peer;
}

static void test_sends_held_until_commit(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64];
    fx->core.probe = fx->cli;
    fx->core.notify = 2;
    fx->core.extra_item = true;
    send_get(fx, fx->cli, 0x0101, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 1);
    assert_false(fx->core.left_early);
    /* After the handler: the response, then the held notifications and the extra item. */
    assert_true(recv_one(fx->cli, r, sizeof r) > 0);
    assert_int_equal(r[0] >> 4, 0x6); /* the ACK response first */
    int got = 0;
    ssize_t n;
    while ((n = recv_one(fx->cli, r, sizeof r)) > 0) {
        assert_int_equal(r[0], 0x41); /* CON */
        assert_true(r[2] == 0x90 || r[2] == 0xA0);
        got++;
    }
    assert_int_equal(got, 3);
    cl_udp_stats_t st;
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.notify_sent, 3);

    /* A failed batch (ecall or commit failed): nothing it sent leaves. */
    fx->core.fail = true;
    fx->core.notify = 1;
    fx->core.extra_item = false;
    send_get(fx, fx->cli, 0x0102, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 2);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1);
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.notify_dropped_failed, 1);
    /* The same when cloisterd's handler saw its commit fail (its own hold, released !ok). */
    cl_udp_hold(fx->ep);
    assert_int_equal(cl_udp_send(fx->ep, fx->core.last_peer, CL_TRANSPORT_COAP,
                                 (const uint8_t *)"\x41\x45\x55\x01\x7e", 5),
                     CL_OK);
    cl_udp_release(fx->ep, false);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1);
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.notify_dropped_failed, 2);
    assert_int_equal(st.notify_sent, 3);
}

/* cloisterd holds every endpoint during any batch (an HTTP batch, a tick): nested holds. */
static void test_nested_holds(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64], m[16];
    uint64_t peer = learn_peer(fx, fx->cli, 0x0201);
    cl_udp_hold(fx->ep);
    cl_udp_hold(fx->ep);
    size_t n = make_con(m, 0x5001);
    assert_int_equal(cl_udp_send(fx->ep, peer, CL_TRANSPORT_COAP, m, n), CL_OK);
    cl_udp_release(fx->ep, true);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1); /* still held once */
    cl_udp_release(fx->ep, true);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), (ssize_t)n);
    assert_int_equal(r[3], 0x01);
    /* one failed release in the round drops everything */
    cl_udp_hold(fx->ep);
    cl_udp_hold(fx->ep);
    assert_int_equal(cl_udp_send(fx->ep, peer, CL_TRANSPORT_COAP, m, n), CL_OK);
    cl_udp_release(fx->ep, false);
    cl_udp_release(fx->ep, true);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1);
    /* release without hold: harmless */
    cl_udp_release(fx->ep, true);
    cl_udp_hold(NULL);
    cl_udp_release(NULL, true);
    cl_udp_stats_t st;
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.notify_dropped_failed, 1);
    assert_int_equal(st.notify_sent, 1);
}

/* The hold queue is bounded: past it, send() fails with CL_ERR_FULL and counts. */
static void test_send_queue_bound(void **state)
{
    (void)state;
    fake_core_t fc = {.probe = -1};
    cl_udp_t *ep = NULL;
    cl_udp_config_t cfg = {.listen = "127.0.0.1:0", .send_queue = 3};
    assert_int_equal(cl_udp_open(&cfg, fake_handle, &fc, NULL, NULL, &ep), CL_OK);
    fc.ep = ep;
    int c = ht_udp_client();
    struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons(cl_udp_port(ep))};
    srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    uint8_t m[16], r[64];
    assert_int_equal(sendto(c, "\x40\x01\x00\x01", 4, 0, (struct sockaddr *)&srv, sizeof srv), 4);
    size_t got = 0;
    assert_int_equal(cl_udp_process(ep, 1000, &got), CL_OK);
    assert_true(recv_one(c, r, sizeof r) > 0);
    cl_udp_hold(ep);
    for (uint16_t k = 0; k < 5; k++) {
        size_t n = make_con(m, (uint16_t)(0x6000 + k));
        assert_int_equal(cl_udp_send(ep, fc.last_peer, CL_TRANSPORT_COAP, m, n),
                         k < 3 ? CL_OK : CL_ERR_FULL);
    }
    cl_udp_release(ep, true);
    int rx = 0;
    while (recv_one(c, r, sizeof r) > 0)
        rx++;
    assert_int_equal(rx, 3);
    cl_udp_stats_t st;
    cl_udp_get_stats(ep, &st);
    assert_int_equal(st.notify_dropped_full, 2);
    assert_int_equal(st.notify_sent, 3);
    close(c);
    cl_udp_close(ep);
}

/* ------------------------------------------------------------ CON retransmission */

/* Advances the injected clock in steps, running the timers; returns the datagrams seen. */
static int run_clock(fx_t *fx, int s, uint64_t until, uint64_t step, uint64_t *times, int max)
{
    int seen = 0;
    uint8_t r[64];
    while (fx->now < until) {
        fx->now += step;
        cl_udp_timers(fx->ep, fx->now);
        while (recv(s, r, sizeof r, MSG_DONTWAIT) > 0) {
            if (times != NULL && seen < max)
                times[seen] = fx->now;
            seen++;
        }
    }
    return seen;
}

static void test_con_retransmission_and_give_up(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64], m[16];
    uint64_t peer = learn_peer(fx, fx->cli, 0x0301);
    assert_int_equal(cl_udp_timeout_ms(fx->ep, fx->now), -1);
    size_t n = make_con(m, 0x7001);
    uint64_t t0 = fx->now;
    assert_int_equal(cl_udp_send(fx->ep, peer, CL_TRANSPORT_COAP, m, n), CL_OK);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), (ssize_t)n);
    int w = cl_udp_timeout_ms(fx->ep, fx->now);
    assert_true(w >= 2000 && w <= 3000); /* ACK_TIMEOUT * [1, ACK_RANDOM_FACTOR] */
    /* Nothing before the first timeout. */
    cl_udp_timers(fx->ep, t0 + 1999);
    fx->now = t0 + 1999;
    assert_int_equal(recv(fx->cli, r, sizeof r, MSG_DONTWAIT), -1);

    /* Step a 10 ms clock: 4 retransmissions, each interval twice the one before. */
    uint64_t times[8], gave_up = 0;
    int seen = 0;
    cl_udp_stats_t st;
    while (fx->now < t0 + 200000 && gave_up == 0) {
        fx->now += 10;
        cl_udp_timers(fx->ep, fx->now);
        while (recv(fx->cli, r, sizeof r, MSG_DONTWAIT) > 0) {
            assert_memory_equal(r, m, n); /* the same bytes, the same message id */
            if (seen < 8)
                times[seen] = fx->now;
            seen++;
        }
        cl_udp_get_stats(fx->ep, &st);
        if (st.notify_timeouts > 0)
            gave_up = fx->now;
    }
    assert_int_equal(seen, 4); /* MAX_RETRANSMIT */
    uint64_t first = times[0] - t0; /* the initial timeout T, within one step */
    assert_true(first >= 2000 && first <= 3010);
    for (int k = 1; k < 4; k++) {
        uint64_t iv = times[k] - times[k - 1]; /* T * 2^k */
        assert_true(iv >= ((first - 10) << k) && iv <= (first << k) + 10);
    }
    uint64_t last = gave_up - times[3]; /* the give-up waits T * 2^4 after the 4th */
    assert_true(last >= ((first - 10) << 4) && last <= (first << 4) + 10);
    assert_int_equal(st.notify_retransmitted, 4);
    assert_int_equal(st.notify_timeouts, 1);
    assert_int_equal(cl_udp_timeout_ms(fx->ep, fx->now), -1);
    assert_int_equal(run_clock(fx, fx->cli, fx->now + 100000, 1000, NULL, 0), 0);
    assert_int_equal(fx->core.calls, 1); /* the give-up is the host's business */
}

static void test_ack_stops_retransmission(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64], m[16];
    uint64_t peer = learn_peer(fx, fx->cli, 0x0401);
    size_t n = make_con(m, 0x7101);
    assert_int_equal(cl_udp_send(fx->ep, peer, CL_TRANSPORT_COAP, m, n), CL_OK);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), (ssize_t)n);

    /* Negative: an ACK with an unknown message id, and the right one from another peer. */
    const uint8_t wrong[4] = {0x60, 0x00, 0x71, 0x02};
    const uint8_t right[4] = {0x60, 0x00, 0x71, 0x01};
    send_raw(fx, fx->cli, wrong, sizeof wrong);
    send_raw(fx, fx->cli2, right, sizeof right);
    process(fx);
    assert_int_equal(fx->core.calls, 1);
    cl_udp_stats_t st;
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.dropped_unmatched, 2);
    assert_int_equal(st.notify_acked, 0);
    assert_true(cl_udp_timeout_ms(fx->ep, fx->now) > 0); /* still outstanding */
    assert_int_equal(run_clock(fx, fx->cli, fx->now + 3100, 50, NULL, 0), 1);

    /* The ACK: consumed, retransmission over, the core never sees it. */
    send_raw(fx, fx->cli, right, sizeof right);
    process(fx);
    assert_int_equal(fx->core.calls, 1);
    assert_int_equal(cl_udp_timeout_ms(fx->ep, fx->now), -1);
    assert_int_equal(run_clock(fx, fx->cli, fx->now + 100000, 500, NULL, 0), 0);
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.notify_acked, 1);
    assert_int_equal(st.notify_retransmitted, 1);
    assert_int_equal(st.notify_timeouts, 0);

    /* Deduplication of the peer's own requests is unaffected, even with the same mid. */
    send_get(fx, fx->cli, 0x7101, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 2);
    assert_true(recv_one(fx->cli, r, sizeof r) > 0);
    send_get(fx, fx->cli, 0x7101, 0);
    process(fx);
    assert_int_equal(fx->core.calls, 2);
    assert_true(recv_one(fx->cli, r, sizeof r) > 0);
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.dedup_hits, 1);
    assert_int_equal(cl_udp_timeout_ms(fx->ep, fx->now), -1); /* ACK responses: no tracking */
}

static void test_rst_reaches_core(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64], m[16];
    uint64_t peer = learn_peer(fx, fx->cli, 0x0501);
    size_t n = make_con(m, 0x7201);
    assert_int_equal(cl_udp_send(fx->ep, peer, CL_TRANSPORT_COAP, m, n), CL_OK);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), (ssize_t)n);
    const uint8_t rst[4] = {0x70, 0x00, 0x72, 0x01};
    send_raw(fx, fx->cli, rst, sizeof rst);
    process(fx);
    assert_int_equal(fx->core.calls, 2);
    assert_int_equal(fx->core.rst_items, 1);
    assert_int_equal(fx->core.last_peer, peer);
    assert_int_equal(fx->core.last_len, 4);
    assert_memory_equal(fx->core.last_msg, rst, 4);
    assert_int_equal(cl_udp_timeout_ms(fx->ep, fx->now), -1);
    assert_int_equal(run_clock(fx, fx->cli, fx->now + 100000, 500, NULL, 0), 0);
    cl_udp_stats_t st;
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.notify_rst, 1);
    assert_int_equal(st.notify_retransmitted, 0);
}

/* A flood of RSTs (random mids, repeats of a real one): the core sees one, once. */
static void test_rst_flood_bounded(void **state)
{
    fx_t *fx = *state;
    uint8_t r[64], m[16];
    uint64_t peer = learn_peer(fx, fx->cli, 0x0601);
    size_t n = make_con(m, 0x7301);
    assert_int_equal(cl_udp_send(fx->ep, peer, CL_TRANSPORT_COAP, m, n), CL_OK);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), (ssize_t)n);
    int calls = fx->core.calls;
    uint32_t x = 12345;
    for (int i = 0; i < 300; i++) {
        x = x * 1103515245u + 12345u;
        uint16_t mid = (uint16_t)(x >> 16);
        if (i % 50 == 25)
            mid = 0x7301; /* the real one, several times */
        else if (mid == 0x7301)
            mid = 0x7302;
        uint8_t rst[4] = {0x70, 0x00, (uint8_t)(mid >> 8), (uint8_t)mid};
        send_raw(fx, i % 2 ? fx->cli : fx->cli2, rst, sizeof rst);
        if (i % 40 == 39) {
            size_t got;
            do
                assert_int_equal(cl_udp_process(fx->ep, fx->now, &got), CL_OK);
            while (got > 0);
        }
    }
    size_t got;
    do
        assert_int_equal(cl_udp_process(fx->ep, fx->now, &got), CL_OK);
    while (got > 0);
    assert_int_equal(fx->core.rst_items, 1);
    assert_int_equal(fx->core.calls, calls + 1);
    cl_udp_stats_t st;
    cl_udp_get_stats(fx->ep, &st);
    assert_int_equal(st.notify_rst, 1);
    assert_int_equal(st.dropped_unmatched, 299);
    assert_int_equal(recv_one(fx->cli, r, sizeof r), -1); /* and nothing answered */
}

/* The retransmission table is bounded: the oldest entry goes, counted. */
static void test_con_table_bound(void **state)
{
    (void)state;
    fx_t f;
    memset(&f, 0, sizeof f);
    cl_udp_config_t cfg = {.listen = "127.0.0.1:0", .con_entries = 4};
    assert_int_equal(cl_udp_open(&cfg, fake_handle, &f.core, NULL, NULL, &f.ep), CL_OK);
    f.core.ep = f.ep;
    f.core.probe = -1;
    f.srv.sin_family = AF_INET;
    f.srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f.srv.sin_port = htons(cl_udp_port(f.ep));
    f.cli = ht_udp_client();
    f.now = 5000;
    uint8_t r[64], m[16];
    uint64_t peer = learn_peer(&f, f.cli, 1);
    for (uint16_t k = 0; k < 6; k++) {
        size_t n = make_con(m, (uint16_t)(0x8000 + k));
        assert_int_equal(cl_udp_send(f.ep, peer, CL_TRANSPORT_COAP, m, n), CL_OK);
        assert_int_equal(recv_one(f.cli, r, sizeof r), (ssize_t)n);
    }
    cl_udp_stats_t st;
    cl_udp_get_stats(f.ep, &st);
    assert_int_equal(st.notify_evicted, 2);
    /* The first retransmission round: only the 4 newest come again. */
    f.now += 3001;
    cl_udp_timers(f.ep, f.now);
    bool seen[6] = {false};
    ssize_t n;
    int rx = 0;
    while ((n = recv(f.cli, r, sizeof r, MSG_DONTWAIT)) > 0) {
        assert_int_equal(r[2], 0x80);
        assert_true(r[3] >= 2 && r[3] < 6);
        seen[r[3]] = true;
        rx++;
    }
    assert_int_equal(rx, 4);
    assert_true(seen[2] && seen[3] && seen[4] && seen[5]);
    /* An ACK for an evicted one matches nothing now. */
    send_raw(&f, f.cli, "\x60\x00\x80\x00", 4);
    process(&f);
    cl_udp_get_stats(f.ep, &st);
    assert_int_equal(st.notify_acked, 0);
    assert_int_equal(st.dropped_unmatched, 1);
    close(f.cli);
    cl_udp_close(f.ep);
}

static void test_bind_rules(void **state)
{
    (void)state;
    fake_core_t fc = {0};
    cl_udp_t *ep = NULL;
    cl_udp_config_t cfg = {.listen = "0.0.0.0:0"};
    assert_int_equal(cl_udp_open(&cfg, fake_handle, &fc, NULL, NULL, &ep), CL_ERR_INVALID_ARG);
    cfg.bind_any = true;
    assert_int_equal(cl_udp_open(&cfg, fake_handle, &fc, NULL, NULL, &ep), CL_OK);
    cl_udp_close(ep);
    const char *bad[] = {"localhost:1", "127.0.0.1", "127.0.0.1:99999", "[::1]", "::1:5683",
                         "127.0.0.1:x"};
    cfg.bind_any = false;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.listen = bad[i];
        assert_int_equal(cl_udp_open(&cfg, fake_handle, &fc, NULL, NULL, &ep),
                         CL_ERR_INVALID_ARG);
    }
    cfg.listen = "[::1]:0";
    cl_status_t st = cl_udp_open(&cfg, fake_handle, &fc, NULL, NULL, &ep);
    assert_true(st == CL_OK || st == CL_ERR_PERSIST); /* no IPv6 in some containers */
    cl_udp_close(ep);
}

static void test_peer_table_eviction(void **state)
{
    (void)state;
    fake_core_t fc = {0};
    cl_udp_t *ep = NULL;
    cl_udp_config_t cfg = {.listen = "127.0.0.1:0", .max_peers = 2};
    assert_int_equal(cl_udp_open(&cfg, fake_handle, &fc, NULL, NULL, &ep), CL_OK);
    struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons(cl_udp_port(ep))};
    srv.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int s[3];
    uint64_t ids[3];
    for (int i = 0; i < 3; i++) {
        s[i] = ht_udp_client();
        uint8_t m[] = {0x40, 0x01, 0x00, (uint8_t)i};
        assert_int_equal(sendto(s[i], m, 4, 0, (struct sockaddr *)&srv, sizeof srv), 4);
        size_t got = 0;
        assert_int_equal(cl_udp_process(ep, 1000 + (uint64_t)i, &got), CL_OK);
        ids[i] = fc.last_peer;
    }
    /* The first peer was evicted: its id reaches nobody now. */
    assert_int_equal(cl_udp_send(ep, ids[0], CL_TRANSPORT_COAP, (const uint8_t *)"\x50\x45\0\1", 4),
                     CL_ERR_NOT_FOUND);
    assert_int_equal(cl_udp_send(ep, ids[2], CL_TRANSPORT_COAP, (const uint8_t *)"\x50\x45\0\1", 4),
                     CL_OK);
    cl_udp_stats_t st;
    cl_udp_get_stats(ep, &st);
    assert_int_equal(st.peers_evicted, 1);
    for (int i = 0; i < 3; i++)
        close(s[i]);
    cl_udp_close(ep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_response_and_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_batch_per_iteration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping_and_unmatched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_failure_and_silence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_core_send_and_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sends_held_until_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_holds, setup, teardown),
        cmocka_unit_test(test_send_queue_bound),
        cmocka_unit_test_setup_teardown(test_con_retransmission_and_give_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_stops_retransmission, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rst_reaches_core, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rst_flood_bounded, setup, teardown),
        cmocka_unit_test(test_con_table_bound),
        cmocka_unit_test(test_bind_rules),
        cmocka_unit_test(test_peer_table_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
