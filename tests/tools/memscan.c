/*
 * memscan.c - searches the memory of a running process for marker strings
 * (the canary test: data sent to the core must never be readable in the
 * host process). Reads /proc/PID/maps and every readable mapping through
 * /proc/PID/mem.
 *
 * usage: memscan PID MARKER...
 * exit:  0 no marker found, 1 a marker found (printed with its address),
 *        77 not permitted to read the process (ctest SKIP), 2 other errors
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    char path[64], line[512];
    if (argc < 3) {
        fprintf(stderr, "usage: memscan PID MARKER...\n");
        return 2;
    }
    snprintf(path, sizeof path, "/proc/%s/maps", argv[1]);
    FILE *maps = fopen(path, "r");
    snprintf(path, sizeof path, "/proc/%s/mem", argv[1]);
    int mem = open(path, O_RDONLY);
    if (maps == NULL || mem < 0) {
        fprintf(stderr, "memscan: cannot open process %s: %s\n", argv[1], strerror(errno));
        return errno == EACCES || errno == EPERM ? 77 : 2;
    }
    size_t chunk = 1 << 20, maxlen = 0;
    for (int i = 2; i < argc; i++)
        if (strlen(argv[i]) > maxlen)
            maxlen = strlen(argv[i]);
    char *buf = malloc(chunk + maxlen);
    int found = 0;
    unsigned long regions = 0, bytes = 0, denied = 0;
    while (buf != NULL && fgets(line, sizeof line, maps) != NULL) {
        uintptr_t lo, hi;
        char perms[8];
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi, perms) != 3 || perms[0] != 'r')
            continue;
        if (strstr(line, "[vvar]") != NULL || strstr(line, "[vsyscall]") != NULL)
            continue;
        if (hi - lo > ((uintptr_t)64 << 30)) { /* a reservation, not memory: refuse to guess */
            fprintf(stderr, "memscan: region %s is larger than 64 GiB (sanitizer shadow?)\n", line);
            found = 2;
            break;
        }
        regions++;
        size_t carry = 0;
        for (uintptr_t a = lo; a < hi; a += chunk) {
            size_t n = hi - a < chunk ? hi - a : chunk;
            ssize_t got = pread(mem, buf + carry, n, (off_t)a);
            if (got <= 0) {
                if (got < 0 && (errno == EACCES || errno == EPERM) && regions == 1) {
                    fprintf(stderr, "memscan: not permitted to read process %s\n", argv[1]);
                    free(buf);
                    fclose(maps);
                    close(mem);
                    return 77;
                }
                denied++;
                break;
            }
            bytes += (unsigned long)got;
            size_t have = carry + (size_t)got;
            for (int i = 2; i < argc; i++) {
                size_t k = strlen(argv[i]);
                void *hit = k <= have ? memmem(buf, have, argv[i], k) : NULL;
                if (hit != NULL) {
                    printf("FOUND '%s' in process %s at %#" PRIxPTR " (%s", argv[i], argv[1],
                           a - carry + (uintptr_t)((char *)hit - buf), line);
                    found = 1;
                }
            }
            carry = have < maxlen ? have : maxlen; /* markers across chunk borders */
            memmove(buf, buf + have - carry, carry);
        }
    }
    printf("memscan: process %s: %lu readable regions, %lu bytes searched, %lu unreadable\n",
           argv[1], regions, bytes, denied);
    free(buf);
    fclose(maps);
    close(mem);
    return found;
}
