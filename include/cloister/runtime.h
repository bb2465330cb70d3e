/*
 * cloister/runtime.h - how the host runs the trusted core. HOST SIDE.
 *
 * Two runtimes behind one API, so every test and cloisterd run on both:
 *   CL_RUNTIME_SIM      the core image loaded into this process by the
 *                       simulated platform (tee/sim)
 *   CL_RUNTIME_PROCESS  the core image loaded by the simulated platform in a
 *                       separate process (`cloister-core`, tee/process); the
 *                       host talks to it over a socketpair with the same
 *                       ecall/ocall bytes (what a Gramine-SGX deployment
 *                       looks like: the core process is the enclave)
 *
 * The runtime interposes the `quote` ocall with the simulated quoting
 * enclave; the host's table need not implement it.
 */
#ifndef CLOISTER_RUNTIME_H
#define CLOISTER_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cl_runtime_kind {
    CL_RUNTIME_SIM = 1,
    CL_RUNTIME_PROCESS = 2,
} cl_runtime_kind_t;

typedef struct cl_runtime_config {
    cl_runtime_kind_t kind;
    const char *core_image;   /**< path of libcloister_core.so (its .sig next to it) */
    const char *platform_dir; /**< simulated platform directory (NULL = default) */
    const char *core_exe;     /**< process runtime: path of cloister-core (NULL = next to image) */
    cl_core_config_t core;    /**< passed to the core's open */
} cl_runtime_config_t;

typedef struct cl_runtime cl_runtime_t;

/** Loads and opens the core (boot: unseal + replay happen here). */
cl_status_t cl_runtime_open(const cl_runtime_config_t *cfg, const cl_host_ops_t *host,
                            cl_runtime_t **out) CL_MUST_CHECK;
cl_status_t cl_runtime_handle(cl_runtime_t *rt, const uint8_t *in, size_t in_len, uint8_t *out,
                              size_t out_size, size_t *out_len) CL_MUST_CHECK;
cl_status_t cl_runtime_tick(cl_runtime_t *rt, int64_t now_ms) CL_MUST_CHECK;
cl_status_t cl_runtime_attest(cl_runtime_t *rt, const uint8_t *nonce, size_t nonce_len,
                              uint8_t *out, size_t out_size, size_t *out_len) CL_MUST_CHECK;
/** Closes the core and unloads it (process runtime: waits for the child). */
void cl_runtime_close(cl_runtime_t *rt);
/** "sim" or "process". */
const char *cl_runtime_name(const cl_runtime_t *rt);
/** Process runtime: the child's pid (0 for sim), for tests that inspect it. */
long cl_runtime_pid(const cl_runtime_t *rt);

#ifdef __cplusplus
}
#endif
#endif
