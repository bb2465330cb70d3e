/*
 * host_test_util.h - fixture pieces shared by the tests in tests/host
 * (static inline; include after <cmocka.h>).
 *   ht_udp_client()  a UDP socket bound to 127.0.0.1, any port (a test client)
 *   ht_rm_rf(path)   removes a temp tree (directories made writable first)
 */
#ifndef CL_TESTS_HOST_TEST_UTIL_H
#define CL_TESTS_HOST_TEST_UTIL_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static inline int ht_udp_client(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(s >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    return s;
}

static inline void ht_rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char p[512];
            int n = snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            if (n < 0 || (size_t)n >= sizeof p)
                continue; /* a test directory never nests that deep */
            ht_rm_rf(p);
        }
        closedir(d);
        chmod(path, 0700);
        rmdir(path);
    } else {
        unlink(path);
    }
}

#endif
