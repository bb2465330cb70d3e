/*
 * verify_internal.h - what the files of the verifier share (tee/verify/):
 * SHA-256 over parts, and the sim backend's
 * quoting-enclave identity check. Not installed, not part of the API.
 */
#ifndef CLOISTER_VERIFY_INTERNAL_H
#define CLOISTER_VERIFY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/attest.h"

/* SHA-256 over the concatenation of n parts; false on a provider failure. */
bool cl_attest_sha256(const uint8_t *const *parts, const size_t *lens, size_t n, uint8_t out[32]);
/* CL_ATTEST_OK when qe is the simulated quoting enclave, else CL_ATTEST_ERR_QE_IDENTITY. */
cl_attest_result_t cl_attest_sim_qe_check(const cl_sgx_report_body_t *qe);

#endif
