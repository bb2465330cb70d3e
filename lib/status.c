/*
 * status.c - names of status codes, and (debug builds) where an error began.
 *
 * The error location is a per-thread record so that a failing test can print
 * "first raised at oscore.c:412" without the library printing anything itself.
 */
#include "cloister/status.h"

#include <stddef.h>

const char *cl_status_str(cl_status_t s)
{
    switch (s) {
    case CL_OK: return "ok";
    case CL_ERR_BAD_INPUT: return "bad input";
    case CL_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case CL_ERR_INVALID_ARG: return "invalid argument";
    case CL_ERR_UNSUPPORTED: return "unsupported";
    case CL_ERR_AUTH: return "authentication failed";
    case CL_ERR_REPLAY: return "replay";
    case CL_ERR_NOT_FOUND: return "not found";
    case CL_ERR_LIMIT: return "limit exceeded";
    case CL_ERR_CRYPTO: return "crypto provider failure";
    case CL_ERR_STATE: return "invalid state";
    case CL_ERR_FULL: return "storage full";
    case CL_ERR_SEQ_EXHAUSTED: return "sequence numbers exhausted";
    case CL_ERR_PERSIST: return "persistence failed";
    case CL_ERR_ECHO_REQUIRED: return "echo required";
    case CL_ERR_CRITICAL: return "unknown critical item";
    case CL_ERR_PEER_ERROR: return "peer sent an error";
    }
    return "unknown status";
}

#if defined(CL_DEBUG_ERRLOC)
/*
 * initial-exec: these few bytes live in the static TLS block even when the
 * library is inside the dlopen()ed core image, so no dynamic TLS (DTV) entry
 * exists for it; LeakSanitizer cannot scan the DTV of a dlopen()ed module
 * reliably and crashed on it.
 */
#if defined(__GNUC__)
#define CL_TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define CL_TLS_MODEL
#endif
static _Thread_local const char *err_file CL_TLS_MODEL;
static _Thread_local int err_line CL_TLS_MODEL;

cl_status_t cl_error_at(cl_status_t s, const char *file, int line)
{
    err_file = file;
    err_line = line;
    return s;
}

void cl_error_location(const char **file, int *line)
{
    if (file != NULL)
        *file = err_file;
    if (line != NULL)
        *line = err_line;
}
#endif
