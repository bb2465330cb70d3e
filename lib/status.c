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
static _Thread_local const char *err_file;
static _Thread_local int err_line;

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
