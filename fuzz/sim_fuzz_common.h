/*
 * sim_fuzz_common.h - a simulated TEE platform (include/cloister/tee_sim.h)
 * shared by the fuzz harnesses that need one (fuzz_unseal, fuzz_core_requests).
 * Not a harness (no fuzz_ prefix): header-only, each harness includes it once.
 *
 * One platform per process: a fresh directory made with mkdtemp under /tmp
 * on first use, opened with cl_sim_platform_open and bound to a fixed enclave
 * identity; closed and removed at exit. Aborts if the platform cannot be made
 * (a harness without its platform would test nothing).
 */
#ifndef CL_SIM_FUZZ_COMMON_H
#define CL_SIM_FUZZ_COMMON_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cloister/tee_sim.h"

static char sf_dir[64];
static cl_sim_platform_t *sf_sim;
static const cl_tee_platform_t *sf_plat;

/* The platform directory holds plain files only; removes them and the directory. */
static void sf_cleanup(void)
{
    if (sf_sim != NULL)
        cl_sim_platform_close(sf_sim);
    sf_sim = NULL;
    sf_plat = NULL;
    if (sf_dir[0] == '\0')
        return;
    DIR *d = opendir(sf_dir);
    if (d != NULL) {
        struct dirent *e;
        char path[sizeof sf_dir + 300];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", sf_dir, e->d_name);
            (void)unlink(path);
        }
        closedir(d);
    }
    (void)rmdir(sf_dir);
    sf_dir[0] = '\0';
}

/* The fixed identity of the "enclave" the harness plays. */
static void sf_identity(cl_sim_identity_t *id)
{
    memset(id, 0, sizeof *id);
    memset(id->mr_enclave, 0x11, sizeof id->mr_enclave);
    memset(id->mr_signer, 0x22, sizeof id->mr_signer);
    id->isv_prod_id = 7;
    id->isv_svn = 3;
    id->attr_flags = CL_SGX_FLAGS_INITTED | CL_SGX_FLAGS_MODE64BIT;
    id->attr_xfrm = 0x3;
    memcpy(id->cpu_svn, CL_SIM_CPU_SVN, sizeof id->cpu_svn);
}

/* The process-wide platform table (made on the first call). */
static const cl_tee_platform_t *sf_platform(void)
{
    cl_sim_identity_t id;
    if (sf_plat != NULL)
        return sf_plat;
    snprintf(sf_dir, sizeof sf_dir, "/tmp/cl-fuzz-sim-XXXXXX");
    if (mkdtemp(sf_dir) == NULL) {
        sf_dir[0] = '\0';
        abort();
    }
    atexit(sf_cleanup);
    sf_identity(&id);
    if (cl_sim_platform_open(sf_dir, &sf_sim) != CL_OK ||
        cl_sim_platform_bind(sf_sim, &id, &sf_plat) != CL_OK)
        abort();
    return sf_plat;
}

#endif
