/*
 * cli/evidence.h - the core's evidence map (GET /attestation, see
 * docs/core-protocol.md) fetched, decoded and appraised with the verifier
 * (cloister/attest.h: cl_attest_core_evidence_*) while every check is shown
 * to the operator, and the attestation policy built from the options.
 *
 * REPORTDATA = SHA-256(identity_pub || ca_pub || owner || nonce) || 32 zeros,
 * recomputed here from the map and *our* nonce, so the quote proves that
 * these keys and this owner belong to the measured enclave, now.
 */
#ifndef CLOISTER_CLI_EVIDENCE_H
#define CLOISTER_CLI_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "cloister/attest.h"

/* Decodes the map (cl_attest_core_evidence_decode), with a sentence on failure. */
bool cli_evidence_decode(const uint8_t *buf, size_t len, cl_attest_core_evidence_t *ev,
                         char *err, size_t err_size);

/* Policy options shared by `verify` and `provision`. */
#define CLI_POLICY_OPTS                                                                            \
    {"--expect-mrenclave", true, true, {0}, 0}, {"--image", true, false, {0}, 0},                 \
        {"--mrsigner", true, false, {0}, 0}, {"--prodid", true, false, {0}, 0},                   \
        {"--min-svn", true, false, {0}, 0}, {                                                      \
        "--allow-simulated", false, false, {0}, 0                                                  \
    }

#define CLI_POLICY_HELP                                                                            \
    "  --expect-mrenclave HEX  accept this MRENCLAVE (repeatable; default: the measured\n"         \
    "                          --image, or the core image of this build)\n"                       \
    "  --image PATH            measure this core image (core/libcloister_core.so)\n"              \
    "  --mrsigner HEX --prodid N --min-svn N\n"                                                    \
    "                          accept by signer instead: MRSIGNER, ISVPRODID, minimum ISVSVN\n"   \
    "  --allow-simulated       accept evidence from the SIMULATED TEE (no security: for\n"        \
    "                          development and tests only)\n"

/*
 * Fills policy from the options; *what describes it for the output. false
 * (message printed) on a usage error.
 */
bool cli_policy_from_opts(cli_opt_t *opts, size_t n_opts, cl_attest_policy_t *policy,
                          char *what, size_t what_size);

/* What the appraisal found; printed as it goes unless json. */
typedef struct cli_appraisal {
    cl_attest_result_t result;
    bool accepted;      /* result is OK or OK_SIMULATED */
    bool simulated;
    bool nonce_ok;      /* the map echoes our nonce */
    bool owner_checked; /* an expected owner hash was given */
    bool owner_ok;
    cl_attest_claims_t claims;
    bool have_claims;
} cli_appraisal_t;

/*
 * Verifies the quote, appraises it against policy with our nonce, and (when
 * expected_owner is not NULL) checks the owner field. Prints one line per
 * check (or nothing when quiet; JSON is the caller's).
 */
void cli_appraise(const cl_attest_core_evidence_t *ev, const uint8_t *nonce, size_t nonce_len,
                  const cl_attest_policy_t *policy, const uint8_t *expected_owner, bool quiet,
                  cli_appraisal_t *a);

/* The verdict line: "OK", "SIMULATED - NO SECURITY", or "REFUSED: reason". */
const char *cli_verdict(const cli_appraisal_t *a, char *buf, size_t size);


/*
 * GET /attestation?nonce=HEX into buf; fresh: the nonce (nonce_len bytes)
 * is drawn at random first, else the given one is used.
 */
bool cli_fetch_evidence(const char *server, uint8_t *nonce, size_t nonce_len, bool fresh,
                        uint8_t *buf, size_t size, size_t *len, char *err, size_t err_size);

#endif
