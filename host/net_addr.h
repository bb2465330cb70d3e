/*
 * host/net_addr.h - listen addresses of cloisterd's endpoints. UNTRUSTED HOST SIDE.
 *
 * One parser and one bind rule for the UDP, HTTP and libcoap endpoints:
 * "host:port" or "[v6]:port", numeric host and port only (no DNS), port 0 =
 * any free one; a non-loopback address is refused unless --bind-any.
 */
#ifndef CLOISTER_HOST_NET_ADDR_H
#define CLOISTER_HOST_NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>

#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;
struct sockaddr;

/** true for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool cl_net_is_loopback(const struct sockaddr *sa);

/**
 * "host:port" or "[v6]:port" -> NUL-terminated host and port strings (port:
 * 1 to 5 digits, <= 65535). false when malformed or a buffer is too small.
 */
bool cl_net_split_listen(const char *s, char *host, size_t hsize, char *port, size_t psize);

/**
 * Resolves `listen` for a passive socket of `socktype` (SOCK_DGRAM /
 * SOCK_STREAM) and applies the bind rule. On CL_OK *out is the first result
 * (free it with freeaddrinfo); CL_ERR_INVALID_ARG for an unparsable address or
 * a non-loopback one without bind_any (*out stays NULL).
 */
cl_status_t cl_net_listen_addr(const char *listen, int socktype, bool bind_any,
                               struct addrinfo **out);

#ifdef __cplusplus
}
#endif

#endif
