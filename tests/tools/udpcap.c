/*
 * udpcap.c - a loopback UDP relay that records every datagram it forwards:
 * what a network observer between the clients and cloisterd sees. The
 * canary test points the CLI at the relay and searches the capture for its
 * marker strings (they must only ever cross the wire encrypted).
 *
 * usage: udpcap LISTEN_PORT_FILE SERVER_PORT CAPTURE_FILE
 *   binds 127.0.0.1:0, writes its port to LISTEN_PORT_FILE, forwards client
 *   datagrams to 127.0.0.1:SERVER_PORT and the answers back to the client
 *   that sent the request (the last client per server-side socket), and
 *   appends each datagram to CAPTURE_FILE as [u32 len][u8 dir][bytes].
 *   Runs until SIGTERM. Up to 64 clients (one server-side socket each).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CLIENTS 64

static volatile sig_atomic_t stop;
static void on_term(int s)
{
    (void)s;
    stop = 1;
}

struct client {
    struct sockaddr_in addr;
    int fd; /* our socket towards the server for this client */
};

static void record(FILE *cap, uint8_t dir, const uint8_t *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    fwrite(&len, 4, 1, cap);
    fwrite(&dir, 1, 1, cap);
    fwrite(p, 1, n, cap);
    fflush(cap);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: udpcap LISTEN_PORT_FILE SERVER_PORT CAPTURE_FILE\n");
        return 2;
    }
    struct sockaddr_in lo = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sockaddr_in srv = lo;
    srv.sin_port = htons((uint16_t)atoi(argv[2]));
    int lfd = socket(AF_INET, SOCK_DGRAM, 0);
    socklen_t sl = sizeof lo;
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&lo, sizeof lo) != 0 ||
        getsockname(lfd, (struct sockaddr *)&lo, &sl) != 0) {
        perror("udpcap: bind");
        return 2;
    }
    FILE *cap = fopen(argv[3], "wb"), *pf = fopen(argv[1], "w");
    if (cap == NULL || pf == NULL) {
        perror("udpcap: files");
        return 2;
    }
    fprintf(pf, "%u\n", ntohs(lo.sin_port));
    fclose(pf);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    struct client cl[MAX_CLIENTS];
    size_t n_cl = 0;
    uint8_t buf[65536];
    unsigned long up = 0, down = 0;
    while (!stop) {
        struct pollfd pfd[MAX_CLIENTS + 1];
        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (size_t i = 0; i < n_cl; i++)
            pfd[i + 1] = (struct pollfd){.fd = cl[i].fd, .events = POLLIN};
        if (poll(pfd, n_cl + 1, 200) <= 0)
            continue;
        if (pfd[0].revents & POLLIN) {
            struct sockaddr_in from;
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(lfd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
            if (n > 0) {
                size_t i;
                for (i = 0; i < n_cl; i++)
                    if (cl[i].addr.sin_port == from.sin_port &&
                        cl[i].addr.sin_addr.s_addr == from.sin_addr.s_addr)
                        break;
                if (i == n_cl && n_cl < MAX_CLIENTS) {
                    cl[i].addr = from;
                    cl[i].fd = socket(AF_INET, SOCK_DGRAM, 0);
                    if (cl[i].fd < 0 || connect(cl[i].fd, (struct sockaddr *)&srv, sizeof srv))
                        return 2;
                    n_cl++;
                }
                if (i < n_cl) {
                    record(cap, 'C', buf, (size_t)n);
                    (void)send(cl[i].fd, buf, (size_t)n, 0);
                    up++;
                }
            }
        }
        for (size_t i = 0; i < n_cl; i++) {
            if (!(pfd[i + 1].revents & POLLIN))
                continue;
            ssize_t n = recv(cl[i].fd, buf, sizeof buf, 0);
            if (n > 0) {
                record(cap, 'S', buf, (size_t)n);
                (void)sendto(lfd, buf, (size_t)n, 0, (struct sockaddr *)&cl[i].addr,
                             sizeof cl[i].addr);
                down++;
            }
        }
    }
    fclose(cap);
    fprintf(stderr, "udpcap: %lu datagrams to the server, %lu back, %zu clients\n", up, down, n_cl);
    return 0;
}
