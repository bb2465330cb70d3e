/*
 * fuzz_quote.c - libFuzzer harness for the verifier (tee/verify): the quote
 * parser, the full sim-backend verification (PCK chain against the shipped
 * simulated root, QE report, binding, quote signature), appraisal, EAR JSON,
 * and the core's evidence-map decoder, all on the same input.
 *
 * Links cloister_attest and cloister_tee_sim (for cl_sim_root_pem only).
 * `now` is fixed so that runs are reproducible.
 */
#include <stdint.h>
#include <string.h>

#include "cloister/attest.h"
#include "cloister/tee_sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1798761600 /* 2027-01-01T00:00:00Z: inside the committed sim quote's PCK validity */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cl_attest_quote_t q;
    cl_attest_claims_t claims;
    cl_attest_policy_t policy;
    cl_attest_core_evidence_t ev;
    uint8_t rd[64] = {0};
    char json[1024];
    cl_attest_result_t r;
    cl_status_t st;

    (void)cl_attest_quote_parse(data, size, &q);
    r = cl_attest_verify_evidence(data, size, cl_sim_root_pem(), FUZZ_NOW, &claims);
    memset(&policy, 0, sizeof(policy));
    policy.use_signer = true;
    policy.allow_simulated = true;
    if (r == CL_ATTEST_OK) {
        memcpy(policy.mr_signer, claims.body.mr_signer, 32);
        memcpy(rd, claims.body.report_data, 64);
        r = cl_attest_appraise(&claims, &policy, rd);
    }
    st = cl_attest_result_json(r, &claims, data, size < 64 ? size : 64, FUZZ_NOW, json,
                               sizeof(json), NULL);
    (void)st;
    if (cl_attest_core_evidence_decode(data, size, &ev) == CL_OK)
        (void)cl_attest_core_evidence_verify(&ev, ev.nonce, ev.nonce_len, cl_sim_root_pem(),
                                             FUZZ_NOW, &policy, &claims);
    return 0;
}
