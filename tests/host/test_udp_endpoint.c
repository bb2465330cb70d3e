/*
 * test_udp_endpoint.c - cloisterd's CoAP/UDP endpoint (host/udp_endpoint.c)
 * on loopback with a fake core handler: ping -> RST, unmatched ACK/RST
 * dropped, oversized and malformed datagrams dropped, one batch per
 * iteration, retransmissions answered from the dedup cache (no second
 * ecall) until EXCHANGE_LIFETIME, handler failures retried, core-originated
 * sends and the ACK that answers them, loopback-only binding.
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
} fake_core_t;

/* Answers every request with ACK 2.05, same mid and token, payload "#<calls>". */
static cl_status_t fake_handle(void *ctx, const uint8_t *in, size_t in_len, uint8_t *out,
                               size_t out_size, size_t *out_len)
{
    fake_core_t *fc = ctx;
    size_t count = 0, pos = 0;
    cl_batch_item_t it;
    fc->calls++;
    if (fc->fail)
        return CL_ERR_PERSIST;
    assert_int_equal(cl_batch_validate(in, in_len, &count), CL_OK);
    fc->last_count = count;
    assert_int_equal(cl_batch_begin(out, out_size, out_len), CL_OK);
    while (cl_batch_next(in, in_len, &pos, &it) == CL_OK) {
        uint8_t resp[32];
        size_t tkl = it.msg[0] & 15, n = 0;
        fc->last_peer = it.peer;
        if (!fc->silent) {
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
    /* Its ACK reaches the core; a second identical ACK matches nothing. */
    const uint8_t ack[4] = {0x60, 0x00, 0x77, 0x01};
    send_raw(fx, fx->cli, ack, sizeof ack);
    process(fx);
    assert_int_equal(fx->core.calls, 2);
    send_raw(fx, fx->cli, ack, sizeof ack);
    process(fx);
    assert_int_equal(fx->core.calls, 2);
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
        cmocka_unit_test(test_bind_rules),
        cmocka_unit_test(test_peer_table_eviction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
