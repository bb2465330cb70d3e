/*
 * net_addr.c - listen addresses of cloisterd's endpoints (net_addr.h).
 * UNTRUSTED HOST SIDE.
 */
#include "net_addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

bool cl_net_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)sa;
        return (ntohl(s->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)sa;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (IN6_IS_ADDR_LOOPBACK(&s->sin6_addr))
            return true;
        return memcmp(s->sin6_addr.s6_addr, v4mapped, 12) == 0 && s->sin6_addr.s6_addr[12] == 127;
    }
    return false;
}

bool cl_net_split_listen(const char *s, char *host, size_t hsize, char *port, size_t psize)
{
    const char *colon;
    size_t hl;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return false;
        hl = (size_t)(end - s - 1);
        s += 1;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || memchr(s, ':', (size_t)(colon - s)) != NULL)
            return false;
        hl = (size_t)(colon - s);
    }
    size_t pl = strlen(colon + 1);
    if (hl == 0 || hl >= hsize || pl == 0 || pl >= psize || pl > 5)
        return false;
    for (size_t i = 0; i < pl; i++)
        if (colon[1 + i] < '0' || colon[1 + i] > '9')
            return false;
    if (atol(colon + 1) > 65535)
        return false;
    memcpy(host, s, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return true;
}

cl_status_t cl_net_listen_addr(const char *listen, int socktype, bool bind_any,
                               struct addrinfo **out)
{
    *out = NULL;
    char host[INET6_ADDRSTRLEN + 1], port[8];
    if (!cl_net_split_listen(listen, host, sizeof host, port, sizeof port))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (!bind_any && !cl_net_is_loopback(ai->ai_addr)) {
        freeaddrinfo(ai);
        return CL_FAIL(CL_ERR_INVALID_ARG);
    }
    *out = ai;
    return CL_OK;
}
