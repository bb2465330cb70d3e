/*
 * cloister/status.h - the one result type of the portable library.
 *
 * Every fallible function returns a cl_status_t: CL_OK (0) on success, a
 * negative code otherwise. Codes distinguish "a peer sent bad bytes"
 * (CL_ERR_BAD_INPUT, CL_ERR_AUTH, CL_ERR_REPLAY...) from "the caller misused
 * the API" (CL_ERR_INVALID_ARG, CL_ERR_STATE), so that a daemon can answer a
 * peer and still assert on its own bugs.
 *
 * Debug builds (CL_DEBUG_ERRLOC defined) record the file and line where an
 * error was first raised, readable with cl_error_location(); release builds
 * carry only the code.
 */
#ifndef CLOISTER_STATUS_H
#define CLOISTER_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cl_status {
    CL_OK = 0,
    CL_ERR_BAD_INPUT = -1,        /**< malformed input (peer or stored data) */
    CL_ERR_BUFFER_TOO_SMALL = -2, /**< output buffer too small; nothing written */
    CL_ERR_INVALID_ARG = -3,      /**< programming error: bad argument */
    CL_ERR_UNSUPPORTED = -4,      /**< well-formed but not supported (alg, feature) */
    CL_ERR_AUTH = -5,             /**< tag / MAC / signature verification failed */
    CL_ERR_REPLAY = -6,           /**< duplicate or too old (replay window) */
    CL_ERR_NOT_FOUND = -7,        /**< no such key, context, option, entry */
    CL_ERR_LIMIT = -8,            /**< a compile-time limit was exceeded */
    CL_ERR_CRYPTO = -9,           /**< crypto provider internal failure */
    CL_ERR_STATE = -10,           /**< call not valid in the current state */
    CL_ERR_FULL = -11,            /**< table / slot storage exhausted */
    CL_ERR_SEQ_EXHAUSTED = -12,   /**< sender sequence number space used up */
    CL_ERR_PERSIST = -13,         /**< a persistence hook failed; operation aborted */
    CL_ERR_ECHO_REQUIRED = -14,   /**< OSCORE B.1.2: freshness must be proven with Echo */
    CL_ERR_CRITICAL = -15,        /**< unknown critical item / option */
    CL_ERR_PEER_ERROR = -16,      /**< the peer sent a protocol error message */
} cl_status_t;

/** Short, stable, non-sensitive name of a status code (never NULL). */
const char *cl_status_str(cl_status_t s);

#if defined(CL_DEBUG_ERRLOC)
/** Records (file, line) of the first error raised on this thread; returns s. */
cl_status_t cl_error_at(cl_status_t s, const char *file, int line);
/** Location of the last error raised with CL_FAIL on this thread (debug builds). */
void cl_error_location(const char **file, int *line);
#define CL_FAIL(s) cl_error_at((s), __FILE__, __LINE__)
#else
#define CL_FAIL(s) (s)
#endif

#if defined(__GNUC__)
#define CL_MUST_CHECK __attribute__((warn_unused_result))
#else
#define CL_MUST_CHECK
#endif

#ifdef __cplusplus
}
#endif
#endif
