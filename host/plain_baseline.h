/*
 * host/plain_baseline.h - the daemon benchmark's like-for-like baseline:
 * plain, UNPROTECTED CoAP `POST /events` answered by the host itself.
 * UNTRUSTED HOST SIDE. INSECURE BY DESIGN: benchmark only.
 *
 * Why: issue 5 asks for "plain unprotected CoAP through the same daemon" as
 * the baseline of the secure event path. Refusing plain requests (what the
 * core does: 4.01) measures only the transport. With `cloisterd
 * --bench-plain-events` (loopback only, a warning at start) a batch made
 * entirely of plain POST /events is handled here instead of by the core:
 * each request's payload is archived AS IS through the same storage ops
 * (same archive, same group commit / commit pipeline: durable before the
 * answer) and answered 2.04 {"accepted": 1}. What the secure path adds on
 * top is exactly the security: EDHOC-established OSCORE, the core crossing,
 * per-event tagging and encryption. Any other batch goes to the core as
 * usual. Payloads are stored, never parsed or logged.
 */
#ifndef CLOISTER_HOST_PLAIN_BASELINE_H
#define CLOISTER_HOST_PLAIN_BASELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"
#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** True when every item of the batch is a CoAP CON/NON POST to /events without OSCORE. */
bool cl_plain_batch(const uint8_t *in, size_t in_len);

/**
 * Archives each request's payload (one archive_put per request: tag from the
 * peer id, bucket = now_ms / 3,600,000) and writes the positional answers
 * (ACK for a CON, NON for a NON: 2.04, same token, {"accepted": 1}; 5.03 when
 * the archive refused it) into out as a batch.
 */
cl_status_t cl_plain_handle(const cl_host_ops_t *ops, int64_t now_ms, const uint8_t *in,
                            size_t in_len, uint8_t *out, size_t out_size,
                            size_t *out_len) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
