/*
 * coap_probe.c - a tiny CoAP/UDP client for the cloisterd smoke test: sends
 * one request (CON GET by default) and prints the response's type, code,
 * message id and payload length on one line - never the payload itself.
 *
 *   coap_probe HOST PORT [--path /attestation] [--query nonce=HEX]
 *              [--mid N] [--non] [--ping] [--timeout MS] [--repeat N] [--more MS]
 *
 * --repeat sends the same datagram N times (a retransmission) and prints a
 * line per response. --more then prints a line per further datagram
 * (notifications, their retransmissions; never ACKed) until none came for MS
 * milliseconds. Exit: 0 every send answered, 1 timeout or error, 2 usage.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cloister/coap.h"

int main(int argc, char **argv)
{
    const char *path = "/attestation", *query = NULL;
    long mid = 0x4242, timeout = 2000, repeat = 1, more = 0;
    int type = CL_COAP_CON;
    int ping = 0;
    if (argc < 3)
        goto usage;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--non") == 0)
            type = CL_COAP_NON;
        else if (strcmp(argv[i], "--ping") == 0)
            ping = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--path") == 0)
            path = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--query") == 0)
            query = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--mid") == 0)
            mid = strtol(argv[++i], NULL, 0);
        else if (i + 1 < argc && strcmp(argv[i], "--timeout") == 0)
            timeout = strtol(argv[++i], NULL, 0);
        else if (i + 1 < argc && strcmp(argv[i], "--repeat") == 0)
            repeat = strtol(argv[++i], NULL, 0);
        else if (i + 1 < argc && strcmp(argv[i], "--more") == 0)
            more = strtol(argv[++i], NULL, 0);
        else
            goto usage;
    }

    uint8_t req[512];
    size_t len = 0;
    static const uint8_t token[4] = {0xC1, 0x05, 0x7E, 0x42};
    cl_coap_builder_t b;
    if (ping) {
        cl_coap_build_init(&b, req, sizeof req, CL_COAP_CON, CL_COAP_EMPTY, (uint16_t)mid, NULL,
                           0);
    } else {
        cl_coap_build_init(&b, req, sizeof req, (uint8_t)type, CL_COAP_GET, (uint16_t)mid, token,
                           sizeof token);
        const char *p = path;
        while (*p == '/')
            p++;
        while (*p != '\0') {
            const char *e = strchr(p, '/');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            cl_coap_build_option(&b, CL_COAP_OPT_URI_PATH, (const uint8_t *)p, n);
            p += n;
            while (*p == '/')
                p++;
        }
        if (query != NULL)
            cl_coap_build_option(&b, CL_COAP_OPT_URI_QUERY, (const uint8_t *)query,
                                 strlen(query));
    }
    if (cl_coap_build_finish(&b, &len) != CL_OK) {
        fprintf(stderr, "coap_probe: cannot build the request\n");
        return 1;
    }

    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1)
        goto usage;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("coap_probe");
        return 1;
    }
    for (long r = 0; r < repeat + (more > 0 ? 1 : 0); r++) {
        bool extra = r == repeat; /* --more: whatever else arrives, until quiet for MS */
        if (!extra && send(s, req, len, 0) != (ssize_t)len) {
            perror("coap_probe: send");
            return 1;
        }
        struct pollfd pfd = {.fd = s, .events = POLLIN};
        if (poll(&pfd, 1, (int)(extra ? more : timeout)) <= 0) {
            if (extra)
                break;
            printf("timeout\n");
            return 1;
        }
        if (extra)
            r--; /* one line per datagram */
        uint8_t resp[2048];
        ssize_t n = recv(s, resp, sizeof resp, 0);
        if (n < 4) {
            printf("error short-datagram\n");
            return 1;
        }
        static const char *types[] = {"CON", "NON", "ACK", "RST"};
        size_t tkl = resp[0] & 15u, pl = 0;
        cl_coap_msg_t m;
        if (n > 4 && cl_coap_parse(&m, resp, (size_t)n) == CL_OK)
            pl = m.payload_len;
        printf("type=%s code=%u.%02u mid=%u token_len=%zu payload_len=%zu\n",
               types[(resp[0] >> 4) & 3], (unsigned)(resp[1] >> 5), (unsigned)(resp[1] & 31),
               (unsigned)(resp[2] << 8 | resp[3]), tkl, pl);
    }
    close(s);
    return 0;
usage:
    fprintf(stderr, "usage: coap_probe HOST PORT [--path P] [--query Q] [--mid N] [--non] "
                    "[--ping] [--timeout MS] [--repeat N] [--more MS]\n");
    return 2;
}
