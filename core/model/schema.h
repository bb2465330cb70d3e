/*
 * core/model/schema.h - a JSON Schema subset for event and action
 * properties, applied to CBOR values inside the core.
 *
 * A schema is a CBOR map (converted from JSON). Supported keywords:
 *   "type": "object" | "string" | "number" | "integer" | "boolean" |
 *           "array" | "null", or an array of these;
 *   "properties": {name: schema}, "required": [names],
 *   "additionalProperties": false | true (default true);
 *   "enum": [values] (ints, floats, text, bools, null; compared by value,
 *           1 == 1.0);
 *   "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum" (numbers);
 *   "minLength", "maxLength" (text, counted in code points);
 *   "items": schema, "minItems", "maxItems";
 *   "description", "title", "default", "$comment" (ignored).
 * Any other keyword is refused by cl_schema_check (a schema that silently
 * ignored "pattern" would accept what its author meant to refuse).
 *
 * Limits: schema nesting depth <= 8, schema size <= CL_SCHEMA_MAX bytes.
 * No allocation, no recursion deeper than the depth limit.
 */
#ifndef CLOISTER_CORE_SCHEMA_H
#define CLOISTER_CORE_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"

#define CL_SCHEMA_MAX 4096
#define CL_SCHEMA_MAX_DEPTH 8

/**
 * Checks that a schema is well formed and only uses supported keywords.
 * On failure: CL_ERR_BAD_INPUT (or CL_ERR_LIMIT) and a readable reason in
 * why (e.g. "properties.temp: unsupported keyword \"pattern\"").
 */
cl_status_t cl_schema_check(const uint8_t *schema, size_t len, char *why,
                            size_t why_size) CL_MUST_CHECK;

/**
 * Validates a CBOR value against a schema already accepted by
 * cl_schema_check. CL_OK or CL_ERR_BAD_INPUT with a reason naming the path,
 * e.g. "temp: must be <= 30", "mode: must be one of the enum values",
 * "missing required property \"ssid\"".
 */
cl_status_t cl_schema_validate(const uint8_t *schema, size_t schema_len, const uint8_t *value,
                               size_t value_len, char *why, size_t why_size) CL_MUST_CHECK;

#endif
