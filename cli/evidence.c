/*
 * cli/evidence.c - fetching and appraising the core's evidence for the
 * `verify` and `provision` commands (evidence.h).
 *
 * The verdict is the verifier's (cl_attest_core_evidence_verify: our nonce
 * echoed, quote signature chain to the simulated root, policy, report data
 * binding, backend label); the per-check lines printed before it come from
 * the same claims so an operator sees *which* check failed. A simulated
 * result is never shown as a plain OK: it is "SIMULATED - NO SECURITY".
 */
#include "evidence.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "cloister/coap.h"
#include "cloister/crypto_openssl.h"
#include "cloister/tee_sim.h"
#include "net.h"

bool cli_evidence_decode(const uint8_t *buf, size_t len, cl_attest_core_evidence_t *ev,
                         char *err, size_t err_size)
{
    cl_status_t st = cl_attest_core_evidence_decode(buf, len, ev);

    if (st == CL_ERR_UNSUPPORTED) {
        cli_err(err, err_size, "the evidence has a version this cloister does not know");
        return false;
    }
    if (st != CL_OK) {
        cli_err(err, err_size,
                "not a core evidence map (CBOR {v, backend, state, quote, identity_pub, ca_pub, "
                "owner, nonce}): %s",
                cl_status_str(st));
        return false;
    }
    return true;
}

static bool hex32(const char *s, uint8_t out[32])
{
    size_t n;
    return cli_hex_decode(s, out, 32, &n) && n == 32;
}

bool cli_policy_from_opts(cli_opt_t *opts, size_t n_opts, cl_attest_policy_t *policy, char *what,
                          size_t what_size)
{
    cli_opt_t *mre = cli_opt(opts, n_opts, "--expect-mrenclave");
    const char *image = cli_val(opts, n_opts, "--image");
    const char *signer = cli_val(opts, n_opts, "--mrsigner");
    const char *prodid = cli_val(opts, n_opts, "--prodid");
    const char *minsvn = cli_val(opts, n_opts, "--min-svn");
    uint64_t v;
    cl_status_t st;

    memset(policy, 0, sizeof *policy);
    policy->allow_simulated = cli_has(opts, n_opts, "--allow-simulated");
    for (size_t i = 0; i < mre->n; i++) {
        if (policy->n_mr_enclave == CL_ATTEST_MAX_MRENCLAVES) {
            cli_fail("at most %d MRENCLAVE values", CL_ATTEST_MAX_MRENCLAVES);
            return false;
        }
        if (!hex32(mre->vals[i], policy->mr_enclave[policy->n_mr_enclave])) {
            cli_fail("--expect-mrenclave: 64 hex digits expected (see `cloister measure`)");
            return false;
        }
        policy->n_mr_enclave++;
    }
    if (mre->n > 0)
        snprintf(what, what_size, "MRENCLAVE in the %zu given", mre->n);
    if (signer != NULL || prodid != NULL || minsvn != NULL) {
        if (signer == NULL || prodid == NULL || minsvn == NULL) {
            cli_fail("--mrsigner, --prodid and --min-svn go together");
            return false;
        }
        if (!hex32(signer, policy->mr_signer)) {
            cli_fail("--mrsigner: 64 hex digits expected (see `cloister measure`)");
            return false;
        }
        if (!cli_parse_u64(prodid, 0, 65535, &v)) {
            cli_fail("--prodid: 0..65535");
            return false;
        }
        policy->isv_prod_id = (uint16_t)v;
        if (!cli_parse_u64(minsvn, 0, 65535, &v)) {
            cli_fail("--min-svn: 0..65535");
            return false;
        }
        policy->min_isv_svn = (uint16_t)v;
        policy->use_signer = true;
        snprintf(what, what_size, "MRSIGNER %.16s..., ISVPRODID %u, ISVSVN >= %u", signer,
                 policy->isv_prod_id, policy->min_isv_svn);
    }
    if (image == NULL && policy->n_mr_enclave == 0 && !policy->use_signer)
        image = cli_default_image();
    if (image != NULL) {
        if (policy->n_mr_enclave == CL_ATTEST_MAX_MRENCLAVES) {
            cli_fail("at most %d MRENCLAVE values", CL_ATTEST_MAX_MRENCLAVES);
            return false;
        }
        if ((st = cl_sim_measure(image, policy->mr_enclave[policy->n_mr_enclave])) != CL_OK) {
            cli_fail("cannot measure the core image %s: %s (give --image PATH or "
                     "--expect-mrenclave HEX)",
                     image, cl_status_str(st));
            return false;
        }
        policy->n_mr_enclave++;
        snprintf(what, what_size, "MRENCLAVE of %s", image);
    }
    if (policy->n_mr_enclave == 0 && !policy->use_signer) {
        cli_fail("no identity to expect: give --expect-mrenclave HEX, --image PATH, or "
                 "--mrsigner HEX --prodid N --min-svn N");
        return false;
    }
    return true;
}

static void line(bool quiet, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void line(bool quiet, const char *name, const char *fmt, ...)
{
    va_list ap;

    if (quiet)
        return;
    printf("  %-12s ", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

void cli_appraise(const cl_attest_core_evidence_t *ev, const uint8_t *nonce, size_t nonce_len,
                  const cl_attest_policy_t *policy, const uint8_t *expected_owner, bool quiet,
                  cli_appraisal_t *a)
{
    int64_t now = (int64_t)time(NULL);
    const char *root = cl_sim_root_pem();
    char hex[65], hex2[65];
    cl_attest_result_t r;
    static const uint8_t zero[32];

    memset(a, 0, sizeof *a);
    line(quiet, "evidence", "backend %.*s, state %.*s, quote %zu bytes", (int)ev->backend_len,
         ev->backend, (int)ev->state_len, ev->state, ev->quote_len);
    a->nonce_ok = ev->nonce_len == nonce_len && memcmp(ev->nonce, nonce, nonce_len) == 0;
    line(quiet, "nonce", "%s", a->nonce_ok ? "ok (ours, fresh)" : "MISMATCH (replayed evidence?)");

    r = cl_attest_verify_evidence(ev->quote, ev->quote_len, root, now, &a->claims);
    a->have_claims = r == CL_ATTEST_OK;
    if (!a->have_claims) {
        line(quiet, "quote", "FAILED: %s (%s)", cl_attest_result_text(r), cl_attest_result_str(r));
    } else {
        const cl_sgx_report_body_t *b = &a->claims.body;
        bool mr_ok = false;
        line(quiet, "quote", "signature chain ok (%s, quote v%u%s)", a->claims.backend,
             a->claims.quote_version, a->claims.is_simulated ? ", SIMULATED TEE" : "");
        cli_hex(hex, sizeof hex, b->mr_enclave, 32);
        for (size_t i = 0; i < policy->n_mr_enclave; i++)
            mr_ok |= memcmp(policy->mr_enclave[i], b->mr_enclave, 32) == 0;
        if (policy->n_mr_enclave > 0)
            line(quiet, "mrenclave", "%s %s", hex, mr_ok ? "ok" : "NOT EXPECTED");
        else
            line(quiet, "mrenclave", "%s", hex);
        cli_hex(hex, sizeof hex, b->mr_signer, 32);
        if (policy->use_signer)
            line(quiet, "mrsigner", "%s %s", hex,
                 memcmp(policy->mr_signer, b->mr_signer, 32) == 0 ? "ok" : "DIFFERENT");
        else
            line(quiet, "mrsigner", "%s", hex);
        line(quiet, "isvprodid", "%u, isvsvn %u%s", b->isv_prod_id, b->isv_svn,
             policy->use_signer ? (b->isv_prod_id == policy->isv_prod_id &&
                                           b->isv_svn >= policy->min_isv_svn
                                       ? " ok"
                                       : " NOT ACCEPTED")
                                : "");
        line(quiet, "debug", "%s", a->claims.is_debug ? "ON (refused)" : "off");
        uint8_t rd[64];
        if (cl_attest_core_report_data(ev, rd) == CL_OK)
            line(quiet, "report data", "%s",
                 memcmp(rd, b->report_data, 64) == 0
                     ? "binds the core's keys, its owner and our nonce: ok"
                     : "MISMATCH (the keys or owner in the map are not the attested ones)");
    }
    cli_hex(hex, sizeof hex, ev->owner, 32);
    if (expected_owner != NULL) {
        a->owner_checked = true;
        a->owner_ok = memcmp(ev->owner, expected_owner, 32) == 0;
        cli_hex(hex2, sizeof hex2, expected_owner, 32);
        if (a->owner_ok)
            line(quiet, "owner", "%s (you) ok", hex);
        else if (memcmp(ev->owner, zero, 32) == 0)
            line(quiet, "owner", "none: the core is not claimed yet (state %.*s)",
                 (int)ev->state_len, ev->state);
        else
            line(quiet, "owner", "%s: core claimed by someone else (yours is %s)", hex, hex2);
    } else {
        line(quiet, "owner", "%s", memcmp(ev->owner, zero, 32) == 0 ? "none (unclaimed)" : hex);
    }
    a->result = cl_attest_core_evidence_verify(ev, nonce, nonce_len, root, now, policy,
                                               NULL);
    a->accepted = a->result == CL_ATTEST_OK || a->result == CL_ATTEST_OK_SIMULATED;
    a->simulated = a->have_claims && a->claims.is_simulated;
    if (a->owner_checked && !a->owner_ok)
        a->accepted = false;
}

const char *cli_verdict(const cli_appraisal_t *a, char *buf, size_t size)
{
    if (a->accepted && a->result == CL_ATTEST_OK_SIMULATED)
        snprintf(buf, size, "SIMULATED - NO SECURITY (accepted only because of --allow-simulated)");
    else if (a->accepted && a->result == CL_ATTEST_OK)
        snprintf(buf, size, "OK");
    else if (a->result != CL_ATTEST_OK && a->result != CL_ATTEST_OK_SIMULATED)
        snprintf(buf, size, "REFUSED: %s (%s)", cl_attest_result_text(a->result),
                 cl_attest_result_str(a->result));
    else
        snprintf(buf, size, "REFUSED: the core does not belong to this owner");
    return buf;
}

bool cli_fetch_evidence(const char *server, uint8_t *nonce, size_t nonce_len, bool fresh,
                        uint8_t *buf, size_t size, size_t *len, char *err, size_t err_size)
{
    cl_crypto_t c;
    cli_net_t n;
    char query[160], hex[2 * CL_ATTEST_NONCE_MAX + 1], core_err[300], code_s[5];
    uint8_t code;
    bool ok = false;

    if (cl_crypto_openssl_new(&c, 0) != CL_OK) {
        cli_err(err, err_size, "no crypto provider");
        return false;
    }
    if (fresh && cl_random(&c, nonce, nonce_len) != CL_OK) {
        cli_err(err, err_size, "no randomness");
        goto done;
    }
    cli_hex(hex, sizeof hex, nonce, nonce_len);
    snprintf(query, sizeof query, "nonce=%s", hex);
    cli_req_t r = {.code = CL_COAP_GET, .path = "/attestation", .query = query, .cf = -1};
    if (!cli_net_open(&n, server, &c, err, err_size))
        goto done;
    ok = cli_net_request(&n, &r, &code, buf, size, len, err, err_size);
    cli_net_close(&n);
    if (ok && code != CL_COAP_CONTENT) {
        cl_coap_code_str(code, code_s);
        cli_core_error(buf, *len, core_err, sizeof core_err);
        cli_err(err, err_size, "GET /attestation answered %s%s%s", code_s, core_err[0] ? " " : "",
                core_err);
        ok = false;
    }
done:
    cl_crypto_openssl_free(&c);
    return ok;
}
