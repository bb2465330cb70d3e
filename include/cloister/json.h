/*
 * cloister/json.h - strict JSON (RFC 8259) <-> CBOR (RFC 8949) conversion,
 * zero allocation, no I/O (part of the portable protocol library).
 *
 * The model's documents (rules, action types, scenario templates...) are
 * written by people as JSON and kept by the core as CBOR; this is the one
 * converter both the core (scenario templates arrive as signed JSON bytes)
 * and the CLI use.
 *
 * JSON -> CBOR (cl_json_to_cbor):
 *   - input must be UTF-8 (no BOM), exactly one value, surrounded by optional
 *     whitespace; anything else is CL_ERR_BAD_INPUT with *err_off set to the
 *     byte offset of the problem;
 *   - objects -> maps (keys are text strings; duplicate keys are refused);
 *     arrays -> arrays; strings -> tstr (escapes decoded, \u surrogate pairs
 *     combined, lone surrogates and control characters refused);
 *     true/false/null -> simple values;
 *   - numbers: an integer literal (no fraction, no exponent) in the int64
 *     range -> CBOR int; any other number -> float64 (cl_cbor_enc_double's
 *     shortest form); non-finite results (1e999) are refused;
 *   - nesting deeper than CL_JSON_MAX_DEPTH is CL_ERR_LIMIT;
 *   - definite lengths only: the converter makes two passes over the text
 *     (count, then emit) and needs no heap.
 *   Output that does not fit: CL_ERR_BUFFER_TOO_SMALL, nothing written, and
 *   *out_len is the size needed. out may be NULL (out_size is then ignored)
 *   to learn the size: CL_OK with the size in *out_len. err_off may be NULL;
 *   it is only written on CL_ERR_BAD_INPUT / CL_ERR_LIMIT (for LIMIT: the
 *   bracket that opens level CL_JSON_MAX_DEPTH + 1). When the text ends too
 *   early, *err_off is len.
 *
 * CBOR -> JSON (cl_cbor_to_json): the inverse for the subset above (maps
 * with text keys, arrays, text, ints, floats, bools, null). Byte strings are
 * written as base64url strings without padding; tags, undefined and other
 * simple values, NaN and infinities, and map keys that are not text are
 * CL_ERR_UNSUPPORTED; malformed CBOR, text that is not UTF-8, duplicate map
 * keys and bytes after the one item are CL_ERR_BAD_INPUT; nesting deeper
 * than CL_JSON_MAX_DEPTH is CL_ERR_LIMIT. Integers are printed exactly
 * (also beyond int64, which JSON -> CBOR then reads as floats); floats are
 * printed in the shortest form that reads back as the same double, always
 * with a '.' or an exponent ("1.0", "-0.0", "1e21"), so JSON -> CBOR ->
 * JSON -> CBOR gives the same CBOR. Output is compact (no spaces),
 * NUL-terminated; *out_len excludes the NUL. Sizes work as above: out ==
 * NULL asks for the length (out_size must then be at least *out_len + 1);
 * a refusal or a short buffer writes nothing.
 */
#ifndef CLOISTER_JSON_H
#define CLOISTER_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CL_JSON_MAX_DEPTH 32
/** Members of one object (more: CL_ERR_LIMIT; bounds the duplicate-key check). */
#define CL_JSON_MAX_MEMBERS 1024

cl_status_t cl_json_to_cbor(const char *json, size_t len, uint8_t *out, size_t out_size,
                            size_t *out_len, size_t *err_off) CL_MUST_CHECK;

cl_status_t cl_cbor_to_json(const uint8_t *cbor, size_t len, char *out, size_t out_size,
                            size_t *out_len) CL_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
