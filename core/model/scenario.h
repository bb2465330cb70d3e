/*
 * core/model/scenario.h - scenario templates: a third party's whole
 * scenario (event types, action types, rule templates, parameters) that an
 * owner installs without giving the publisher access to any data.
 *
 * ---- The template (JSON file, converted with cl_json_to_cbor) ----
 * {
 *   "scenario":    "vacant-home-eco",          1..64 of [A-Za-z0-9._-]
 *   "version":     "1.0",                      text <= 32
 *   "publisher":   "acme-heating",             1..64 of [A-Za-z0-9._-]
 *                                              (optional; the signer's
 *                                              name when signed)
 *   "description": "...",                      text <= 512
 *   "parameters": {                            up to 32
 *     "phone":  {"type": "client", "description": "..."},
 *     "valves": {"type": "group", "default": "valves"},
 *     "eco":    {"type": "number", "default": 17, "minimum": 5, "maximum": 30},
 *     "ssid":   {"type": "string", "default": "home"},
 *     "notify": {"type": "boolean", "default": true}
 *   },
 *   "event_types":  [{"name", "description"?, "schema"?}, ...]   up to 32
 *   "action_types": [{"name", "description"?, "schema"?}, ...]   up to 32
 *   "rules":        [rule template, ...]                           up to 64
 * }
 * Parameter types: "client" (a client id: an integer >= 1), "group" (a
 * group name, 1..64 of [A-Za-z0-9._-]; "@valves" is taken as "valves"),
 * "number", "integer" (an integral number; 3.0 is one), "string" (<= 256
 * bytes, no "{{"), "boolean". A declaration is {"type", "description"?
 * (<= 256), "default"?, "minimum"?, "maximum"?} (bounds: number and integer
 * only); a parameter without "default" is required. Parameter names are
 * 1..64 of [A-Za-z0-9_-]. Type entries: "name" 1..64 of [A-Za-z0-9._-],
 * "description" <= 256 bytes (after substitution), "schema" (schema.h).
 * Every field above is checked; unknown fields are refused. "version" is
 * printable ASCII without spaces; "scenario", "version" are required, and
 * a template creates at least one object.
 *
 * Rule templates are rule documents (core/engine/eca.h) in which any text
 * value may contain {{param.NAME}}: a text that is exactly one such
 * placeholder becomes the parameter's typed value (a "client" parameter in
 * a "target" or "source" becomes the number; a "group" parameter written
 * as "@{{param.valves}}" becomes "@valves"); inside a longer text it is
 * formatted as text (numbers as the engine formats them: %.15g). In the
 * JavaScript fields "if" and "script" a placeholder becomes a JavaScript
 * literal instead, never code: numbers as numbers (negative ones in
 * parentheses, floats exact), texts and groups as quoted, escaped string
 * literals, booleans as true/false; so a script writes
 * `p.ssid === {{param.home_ssid}}` and `"@" + {{param.valves}}`.
 * Type descriptions take placeholders as text. Keys never hold
 * placeholders. Event-time placeholders ({{event.…}}, {{state.…}}) are left
 * for the engine. Rule names become "<instance>.<name>" (at most 64 bytes,
 * as every rule name) and so does the "name" field of the rule document;
 * rules of one template refer to each other only through event type names
 * (derived events), which are not renamed.
 *
 * ---- Signature ----
 * A signed template comes with a COSE_Sign1 (RFC 9052) whose payload is
 * detached (nil) and is the template file's exact bytes; protected header
 * {1: -7 (ES256)}, unprotected {4: kid = publisher name, a byte string};
 * external_aad empty; tagged (18) or not. The core checks it against the
 * publisher's P-256 key that the owner registered (PUT /publishers/{name});
 * the template's "publisher" must equal the kid.
 */
#ifndef CLOISTER_CORE_SCENARIO_H
#define CLOISTER_CORE_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/crypto.h"
#include "cloister/status.h"

#define CL_SCN_MAX_TEMPLATE (64u * 1024u) /* JSON bytes (and its CBOR's) */
#define CL_SCN_MAX_PARAMS 32
#define CL_SCN_MAX_OBJECTS 128
#define CL_SCN_NAME_MAX 64
#define CL_SCN_WHY_MAX 160

typedef enum cl_scn_kind {
    CL_SCN_EVENT_TYPE = 1,
    CL_SCN_ACTION_TYPE = 2,
    CL_SCN_RULE = 3,
} cl_scn_kind_t;

/** One object the instance creates: its final CBOR document (heap). */
typedef struct cl_scn_object {
    uint8_t kind; /**< cl_scn_kind_t */
    char name[CL_SCN_NAME_MAX * 2 + 2]; /**< rules: "<instance>.<name>" */
    uint8_t *doc; /**< event/action type: {"name","description"?,"schema"?}; rule: the rule */
    size_t doc_len;
} cl_scn_object_t;

/** A parsed and instantiated template. */
typedef struct cl_scn_plan {
    char scenario[CL_SCN_NAME_MAX + 1];
    char version[33];
    char publisher[CL_SCN_NAME_MAX + 1]; /**< "" when the template names none */
    cl_scn_object_t objects[CL_SCN_MAX_OBJECTS];
    size_t n_objects;
    uint8_t *params; /**< CBOR map of every parameter's final value (heap) */
    size_t params_len;
} cl_scn_plan_t;

/**
 * Parses the template (CBOR of the JSON file), checks every field, applies
 * params (a CBOR map name -> value; defaults fill the rest; unknown or
 * ill-typed parameters are refused) and expands the rule templates for the
 * instance name. Every expanded rule is checked with cl_eca_check_rule and
 * every schema with cl_schema_check. On failure nothing is allocated and
 * why says what is wrong ("parameter \"eco\": must be <= 30").
 */
cl_status_t cl_scn_instantiate(const uint8_t *tmpl, size_t tmpl_len, const uint8_t *params,
                               size_t params_len, const char *instance, size_t instance_len,
                               cl_scn_plan_t *plan, char *why, size_t why_size) CL_MUST_CHECK;
void cl_scn_plan_free(cl_scn_plan_t *plan);

/**
 * Verifies a detached COSE_Sign1 over the template's JSON bytes with the
 * publisher's key (a handle; find it with cl_scn_sig_kid first).
 * CL_ERR_AUTH for a signature that does not verify; CL_ERR_BAD_INPUT for a
 * malformed one or one not made as described above (attached payload, alg
 * other than ES256 in the protected header, critical headers, no kid, a
 * signature that is not 64 bytes). why says which.
 */
cl_status_t cl_scn_verify(const cl_crypto_t *crypto, cl_key_t publisher_key,
                          const uint8_t *json, size_t json_len, const uint8_t *sig, size_t sig_len,
                          char *why, size_t why_size) CL_MUST_CHECK;
/**
 * The kid of a COSE_Sign1 (to find the publisher's key first): *kid points
 * into sig (not NUL-terminated), a publisher name (1..64 of [A-Za-z0-9._-]).
 * CL_ERR_BAD_INPUT when sig is no COSE_Sign1 or has no such kid.
 */
cl_status_t cl_scn_sig_kid(const uint8_t *sig, size_t sig_len, const char **kid,
                           size_t *kid_len) CL_MUST_CHECK;

/**
 * Signs a template file (the publisher's side; used by the CLI, never by the
 * core): writes the detached COSE_Sign1 described above, tagged (18), with
 * kid = the publisher's name, signed with priv (a P-256 private key handle).
 * out == NULL only sizes (*out_len); a buffer too small is
 * CL_ERR_BUFFER_TOO_SMALL with the size needed in *out_len. A kid that is
 * not a publisher name, or an empty or oversized template, is
 * CL_ERR_INVALID_ARG.
 */
cl_status_t cl_scn_sign(const cl_crypto_t *crypto, cl_key_t priv, const char *kid, size_t kid_len,
                        const uint8_t *json, size_t json_len, uint8_t *out, size_t out_size,
                        size_t *out_len) CL_MUST_CHECK;

#endif
