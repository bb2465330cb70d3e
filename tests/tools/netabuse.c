/*
 * netabuse.c - what a hostile network peer sends cloisterd over CoAP/UDP, in
 * bulk: random garbage, datagrams larger than the limit, truncated CoAP
 * headers, valid CoAP with junk options, requests with an OSCORE option but
 * no context, and a flood of EDHOC message_1 that each open a half-open
 * session on the core (never completed). Used by tests/integration/abuse.sh,
 * which checks that the daemon stays up, keeps serving a real client, and
 * does not grow its memory without bound.
 *
 * usage: netabuse HOST PORT [--garbage N] [--oversized N] [--truncated N]
 *                 [--junk N] [--oscore N] [--edhoc N] [--seed S]
 * Prints how many datagrams of each kind it sent and how many answers came
 * back (answers are drained, not checked: the point is the daemon's health).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cloister/coap.h"
#include "cloister/crypto_openssl.h"
#include "cloister/edhoc.h"

static unsigned long answers;

static void drain(int fd)
{
    uint8_t buf[2048];
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
        answers++;
}

static void send_one(int fd, const uint8_t *p, size_t len)
{
    for (int tries = 0; tries < 1000; tries++) {
        if (send(fd, p, len, MSG_DONTWAIT) >= 0 || (errno != EAGAIN && errno != ENOBUFS))
            break;
        drain(fd);
        struct pollfd pfd = {.fd = fd, .events = POLLOUT | POLLIN, .revents = 0};
        (void)poll(&pfd, 1, 10);
    }
    drain(fd);
}

static uint16_t mid = 1;

static size_t coap_req(uint8_t *out, size_t size, const char *path, const uint8_t *opt,
                       size_t opt_len, const uint8_t *payload, size_t len)
{
    cl_coap_builder_t b;
    uint8_t tok[4];
    size_t n = 0;
    memcpy(tok, &mid, 2);
    tok[2] = (uint8_t)rand();
    tok[3] = (uint8_t)rand();
    cl_coap_build_init(&b, out, size, CL_COAP_CON, CL_COAP_POST, mid++, tok, 4);
    if (opt != NULL)
        cl_coap_build_option(&b, CL_COAP_OPT_OSCORE, opt, opt_len);
    for (const char *s = path + 1; *s;) {
        const char *e = strchr(s, '/');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)s, l);
        s += l + (e ? 1 : 0);
    }
    cl_coap_build_payload(&b, payload, len);
    return cl_coap_build_finish(&b, &n) == CL_OK ? n : 0;
}

/* A real message_1 (suite 2, method 0) from a fresh initiator session. */
static cl_status_t no_cred(void *arg, cl_edhoc_role_t role, const uint8_t *id, size_t id_len,
                           cl_edhoc_peer_t *peer)
{
    (void)arg;
    (void)role;
    (void)id;
    (void)id_len;
    (void)peer;
    return CL_ERR_NOT_FOUND;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: netabuse HOST PORT [--garbage N] [--oversized N] [--truncated N] "
                        "[--junk N] [--oscore N] [--edhoc N] [--seed S]\n");
        return 2;
    }
    unsigned long garbage = 0, oversized = 0, truncated = 0, junk = 0, oscore = 0, edhoc = 0;
    unsigned seed = (unsigned)time(NULL);
    for (int i = 3; i + 1 < argc; i += 2) {
        unsigned long v = strtoul(argv[i + 1], NULL, 10);
        if (strcmp(argv[i], "--garbage") == 0)
            garbage = v;
        else if (strcmp(argv[i], "--oversized") == 0)
            oversized = v;
        else if (strcmp(argv[i], "--truncated") == 0)
            truncated = v;
        else if (strcmp(argv[i], "--junk") == 0)
            junk = v;
        else if (strcmp(argv[i], "--oscore") == 0)
            oscore = v;
        else if (strcmp(argv[i], "--edhoc") == 0)
            edhoc = v;
        else if (strcmp(argv[i], "--seed") == 0)
            seed = (unsigned)v;
        else {
            fprintf(stderr, "netabuse: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    srand(seed);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || inet_pton(AF_INET, argv[1], &to.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        perror("netabuse: socket");
        return 2;
    }
    static uint8_t buf[70000];
    for (unsigned long i = 0; i < garbage; i++) {
        size_t len = 1 + (size_t)rand() % 1400;
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)rand();
        send_one(fd, buf, len);
    }
    for (unsigned long i = 0; i < oversized; i++) { /* bigger than any datagram we accept */
        size_t len = 1501 + (size_t)rand() % 60000;
        memset(buf, 0x40, len);
        buf[0] = 0x40; /* looks like CoAP CON */
        send_one(fd, buf, len);
    }
    for (unsigned long i = 0; i < truncated; i++) {
        uint8_t msg[256];
        size_t n = coap_req(msg, sizeof msg, "/events", NULL, 0, (const uint8_t *)"\xa0", 1);
        send_one(fd, msg, n > 1 ? 1 + (size_t)rand() % (n - 1) : n);
    }
    for (unsigned long i = 0; i < junk; i++) { /* valid header and token, junk after it */
        size_t n = coap_req(buf, sizeof buf, "/events", NULL, 0, NULL, 0);
        size_t extra = (size_t)rand() % 200;
        for (size_t k = 0; k < extra; k++)
            buf[n + k] = (uint8_t)rand();
        send_one(fd, buf, n + extra);
    }
    for (unsigned long i = 0; i < oscore; i++) { /* kid 0x07, piv, no such context */
        uint8_t opt[] = {0x09, (uint8_t)i, 0x07};
        uint8_t ct[24];
        for (size_t k = 0; k < sizeof ct; k++)
            ct[k] = (uint8_t)rand();
        size_t n = coap_req(buf, sizeof buf, "/", opt, sizeof opt, ct, sizeof ct);
        send_one(fd, buf, n);
    }
    if (edhoc > 0) {
        cl_crypto_t c;
        int suites[1] = {2};
        cl_edhoc_auth_t auth = {.id_cred = (const uint8_t *)"\xa1\x04\x41\x01", .id_cred_len = 4,
                                .cred = (const uint8_t *)"\x41\x01", .cred_len = 2,
                                .type = CL_KEY_P256};
        cl_edhoc_config_t cfg = {.crypto = &c, .suites = suites, .n_suites = 1, .auth = &auth,
                                 .n_auth = 1, .peer_cred = no_cred};
        if (cl_crypto_openssl_new(&c, 0) != CL_OK)
            return 2;
        for (unsigned long i = 0; i < edhoc; i++) {
            cl_edhoc_t s;
            uint8_t payload[512], ci = (uint8_t)(i % 24);
            size_t m1;
            memset(&s, 0, sizeof s);
            payload[0] = 0xf5; /* true: message_1 */
            if (cl_edhoc_init(&s, &cfg, CL_EDHOC_INITIATOR, &ci, 1) != CL_OK ||
                cl_edhoc_message_1(&s, 0, 2, NULL, 0, payload + 1, sizeof payload - 1, &m1) !=
                    CL_OK) {
                cl_edhoc_free(&s);
                return 2;
            }
            size_t n = coap_req(buf, sizeof buf, CL_EDHOC_WELL_KNOWN, NULL, 0, payload, m1 + 1);
            send_one(fd, buf, n);
            cl_edhoc_free(&s);
            if (i % 64 == 63) { /* let the daemon breathe: the point is the table, not UDP loss */
                struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
                (void)poll(&pfd, 1, 5);
                drain(fd);
            }
        }
        cl_crypto_openssl_free(&c);
    }
    for (int k = 0; k < 50; k++) { /* collect late answers */
        struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
        if (poll(&pfd, 1, 20) <= 0)
            break;
        drain(fd);
    }
    printf("netabuse: sent garbage %lu, oversized %lu, truncated %lu, junk %lu, oscore %lu, "
           "edhoc message_1 %lu; %lu answers\n",
           garbage, oversized, truncated, junk, oscore, edhoc, answers);
    close(fd);
    return 0;
}
