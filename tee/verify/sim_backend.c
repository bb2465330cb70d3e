/*
 * sim_backend.c - what identifies evidence of the simulated platform
 * (tee/sim): its QE vendor id and its quoting enclave's identity.
 *
 * The values are those of tee/sim/platform.c (CL_SIM_VENDOR_ID and
 * cl_sim_qe_identity in tee_sim.h), repeated here because the verifier runs
 * inside the trusted core and must not link the host-side simulator;
 * tests/attest/test_attest.c asserts that both sides agree.
 *
 * The QE check mirrors what DCAP does with Intel's QE Identity collateral
 * (EnclaveReportVerifier: MRSIGNER, ISVPRODID, attributes, ISVSVN), with
 * the sim QE's fixed values: MRSIGNER = SHA-256("CLOISTER SIM QE MRSIGNER v1"),
 * ISVPRODID 1, ISVSVN >= 1, not DEBUG, INITTED.
 */
#include <string.h>

#include "cloister/crypto.h"
#include "verify_internal.h"

/* "CLOISTER-SIM-QE1" - visibly not Intel's 939A7233... */
const uint8_t CL_ATTEST_SIM_QE_VENDOR_ID[16] = {0x43, 0x4c, 0x4f, 0x49, 0x53, 0x54, 0x45, 0x52,
                                                0x2d, 0x53, 0x49, 0x4d, 0x2d, 0x51, 0x45, 0x31};

#define SIM_QE_MRSIGNER_LABEL "CLOISTER SIM QE MRSIGNER v1"
#define SIM_QE_PROD_ID 1
#define SIM_QE_MIN_SVN 1

cl_attest_result_t cl_attest_sim_qe_check(const cl_sgx_report_body_t *qe)
{
    static const char label[] = SIM_QE_MRSIGNER_LABEL;
    const uint8_t *parts[1] = {(const uint8_t *)label};
    size_t lens[1] = {sizeof(label) - 1};
    uint8_t mrsigner[32];

    if (!cl_attest_sha256(parts, lens, 1, mrsigner))
        return CL_ATTEST_ERR_QE_IDENTITY;
    if (memcmp(qe->mr_signer, mrsigner, 32) != 0 || qe->isv_prod_id != SIM_QE_PROD_ID ||
        qe->isv_svn < SIM_QE_MIN_SVN || (qe->attr_flags & CL_SGX_FLAGS_DEBUG) != 0 ||
        (qe->attr_flags & CL_SGX_FLAGS_INITTED) == 0)
        return CL_ATTEST_ERR_QE_IDENTITY;
    return CL_ATTEST_OK;
}
