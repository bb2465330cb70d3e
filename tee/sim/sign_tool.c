/*
 * sign_tool.c - cloister-sim-sign: writes the simulated SIGSTRUCT of a core
 * image (like sgx_sign for an enclave.so), run at build time.
 *
 *   cloister-sim-sign --key KEY.pem --config ENCLAVE.conf --image IMAGE [--out IMAGE.sig]
 *
 * ENCLAVE.conf (like Enclave.config.xml): lines `isv_prod_id = N`,
 * `isv_svn = N`, `debug = 0|1`; '#' starts a comment; all three required.
 * The output is CL_SIM_SIG_LEN bytes (tee_sim.h), written to a temporary
 * file and renamed. Exit status 0 on success, 1 on any error (with a line
 * on stderr).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/tee_sim.h"

static int usage(void)
{
    fprintf(stderr, "usage: cloister-sim-sign --key KEY.pem --config ENCLAVE.conf "
                    "--image IMAGE [--out IMAGE.sig]\n");
    return 1;
}

static char *trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = 0;
    return s;
}

static int parse_num(const char *v, unsigned long max, unsigned long *out)
{
    char *end;
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    *out = strtoul(v, &end, 10);
    if (errno != 0 || *end != 0 || *out > max)
        return -1;
    return 0;
}

static int read_config(const char *path, uint16_t *prod, uint16_t *svn, bool *debug)
{
    FILE *f = fopen(path, "r");
    char line[256];
    unsigned seen = 0, lineno = 0;

    if (f == NULL) {
        fprintf(stderr, "cloister-sim-sign: %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        char *s, *eq, *key, *val;
        unsigned long n;
        lineno++;
        if ((s = strchr(line, '#')) != NULL)
            *s = 0;
        s = trim(line);
        if (*s == 0)
            continue;
        eq = strchr(s, '=');
        if (eq == NULL)
            goto bad;
        *eq = 0;
        key = trim(s);
        val = trim(eq + 1);
        if (strcmp(key, "isv_prod_id") == 0 && parse_num(val, 0xffff, &n) == 0) {
            *prod = (uint16_t)n;
            seen |= 1;
        } else if (strcmp(key, "isv_svn") == 0 && parse_num(val, 0xffff, &n) == 0) {
            *svn = (uint16_t)n;
            seen |= 2;
        } else if (strcmp(key, "debug") == 0 && parse_num(val, 1, &n) == 0) {
            *debug = n == 1;
            seen |= 4;
        } else {
            goto bad;
        }
    }
    fclose(f);
    if (seen != 7) {
        fprintf(stderr, "cloister-sim-sign: %s: needs isv_prod_id, isv_svn and debug\n", path);
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "cloister-sim-sign: %s:%u: expected `isv_prod_id|isv_svn|debug = N`\n", path,
            lineno);
    fclose(f);
    return -1;
}

int main(int argc, char **argv)
{
    const char *key = NULL, *config = NULL, *image = NULL, *out = NULL;
    char outbuf[4096], tmp[4200];
    uint8_t sig[CL_SIM_SIG_LEN];
    uint16_t prod = 0, svn = 0;
    bool debug = false;
    cl_status_t rc;
    FILE *f;

    for (int i = 1; i < argc; i++) {
        const char **slot = NULL;
        if (strcmp(argv[i], "--key") == 0)
            slot = &key;
        else if (strcmp(argv[i], "--config") == 0)
            slot = &config;
        else if (strcmp(argv[i], "--image") == 0)
            slot = &image;
        else if (strcmp(argv[i], "--out") == 0)
            slot = &out;
        if (slot == NULL || i + 1 >= argc)
            return usage();
        *slot = argv[++i];
    }
    if (key == NULL || config == NULL || image == NULL)
        return usage();
    if (out == NULL) {
        if (snprintf(outbuf, sizeof outbuf, "%s.sig", image) >= (int)sizeof outbuf)
            return usage();
        out = outbuf;
    }
    if (read_config(config, &prod, &svn, &debug) != 0)
        return 1;
    rc = cl_sim_sign(image, key, prod, svn, debug, sig);
    if (rc != CL_OK) {
        fprintf(stderr, "cloister-sim-sign: signing %s with %s failed: %s\n", image, key,
                cl_status_str(rc));
        return 1;
    }
    if (snprintf(tmp, sizeof tmp, "%s.tmp", out) >= (int)sizeof tmp)
        return usage();
    f = fopen(tmp, "wb");
    if (f != NULL) {
        bool ok = fwrite(sig, 1, sizeof sig, f) == sizeof sig;
        if (fclose(f) != 0 || !ok)
            f = NULL;
    }
    if (f == NULL || rename(tmp, out) != 0) {
        fprintf(stderr, "cloister-sim-sign: cannot write %s: %s\n", out, strerror(errno));
        (void)remove(tmp);
        return 1;
    }
    return 0;
}
