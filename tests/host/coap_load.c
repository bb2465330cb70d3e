/*
 * coap_load.c - a small CoAP/UDP load generator for throughput comparisons of
 * cloisterd's CoAP stacks (--coap-stack native|libcoap). NOT a test by itself.
 *
 *   coap_load HOST PORT COUNT WINDOW con|non [PATH]
 *
 * Sends COUNT GET requests (Uri-Path PATH, default "load"), at most WINDOW
 * outstanding, each with its own message id and 4-byte token. Handles what
 * cli/net.c handles: piggybacked ACK responses, an empty ACK followed by a
 * separate CON response (which it ACKs) and NON responses. Outstanding
 * requests are retransmitted (same bytes) after 2 s without progress.
 * Prints the rate and what came back; exit 0 when every request was answered.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cloister/coap.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct slot {
    uint32_t id; /* request number, also the token */
    int used;
    size_t len;
    uint8_t msg[64];
} slot_t;

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: coap_load HOST PORT COUNT WINDOW con|non [PATH]\n");
        return 2;
    }
    long count = atol(argv[3]), window = atol(argv[4]);
    int con = strcmp(argv[5], "con") == 0;
    const char *path = argc > 6 ? argv[6] : "load";
    if (count <= 0 || window <= 0 || window > 4096)
        return 2;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM}, *ai = NULL;
    if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0)
        return 2;
    int fd = socket(ai->ai_family, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        perror("socket");
        return 1;
    }
    freeaddrinfo(ai);
    int rcvbuf = 4 << 20;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);

    slot_t *slots = calloc((size_t)window, sizeof *slots);
    if (slots == NULL)
        return 1;
    long sent = 0, done = 0, empty_acks = 0, piggy = 0, separate = 0, nons = 0, retrans = 0;
    long codes[8] = {0};
    uint16_t mid0 = (uint16_t)(getpid() * 7919);
    double t0 = now_s(), last_progress = t0;
    while (done < count) {
        for (long i = 0; i < window && sent < count; i++) {
            if (slots[i].used)
                continue;
            slot_t *s = &slots[i];
            uint32_t id = (uint32_t)sent++;
            uint8_t tok[4] = {(uint8_t)(id >> 24), (uint8_t)(id >> 16), (uint8_t)(id >> 8),
                              (uint8_t)id};
            cl_coap_builder_t b;
            cl_coap_build_init(&b, s->msg, sizeof s->msg, con ? CL_COAP_CON : CL_COAP_NON,
                               CL_COAP_GET, (uint16_t)(mid0 + id), tok, 4);
            (void)cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)path,
                                       strlen(path));
            if (cl_coap_build_finish(&b, &s->len) != CL_OK)
                return 1;
            s->id = id;
            s->used = 1;
            (void)send(fd, s->msg, s->len, 0);
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int k = poll(&p, 1, 100);
        double t = now_s();
        if (k <= 0) {
            if (t - last_progress > 2.0) {
                for (long i = 0; i < window; i++)
                    if (slots[i].used) {
                        (void)send(fd, slots[i].msg, slots[i].len, 0);
                        retrans++;
                    }
                last_progress = t;
            }
            if (t - t0 > 600) {
                fprintf(stderr, "coap_load: giving up\n");
                break;
            }
            continue;
        }
        uint8_t buf[2048];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0) {
            cl_coap_msg_t m;
            if (cl_coap_parse(&m, buf, (size_t)n) != CL_OK)
                continue;
            if (m.type == CL_COAP_ACK && m.code == CL_COAP_EMPTY) {
                empty_acks++;
                continue;
            }
            if (m.type == CL_COAP_CON) {
                uint8_t ack[4] = {0x60, 0x00, (uint8_t)(m.mid >> 8), (uint8_t)m.mid};
                (void)send(fd, ack, sizeof ack, 0);
            }
            if (CL_COAP_CLASS(m.code) < 2 || m.tkl != 4)
                continue;
            uint32_t id = (uint32_t)m.token[0] << 24 | (uint32_t)m.token[1] << 16 |
                          (uint32_t)m.token[2] << 8 | m.token[3];
            for (long i = 0; i < window; i++) {
                if (slots[i].used && slots[i].id == id) {
                    slots[i].used = 0;
                    done++;
                    codes[CL_COAP_CLASS(m.code) & 7]++;
                    if (m.type == CL_COAP_ACK)
                        piggy++;
                    else if (m.type == CL_COAP_CON)
                        separate++;
                    else
                        nons++;
                    last_progress = now_s();
                    break;
                }
            }
        }
    }
    double el = now_s() - t0;
    printf("requests=%ld window=%ld type=%s done=%ld seconds=%.3f rate=%.0f/s empty_acks=%ld "
           "piggybacked=%ld separate_con=%ld non=%ld retransmitted=%ld 2xx=%ld 4xx=%ld 5xx=%ld\n",
           count, window, con ? "con" : "non", done, el, (double)done / el, empty_acks, piggy,
           separate, nons, retrans, codes[2], codes[4], codes[5]);
    free(slots);
    close(fd);
    return done == count ? 0 : 1;
}
