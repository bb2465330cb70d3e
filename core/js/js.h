/*
 * core/js/js.h - the ECMAScript sandbox for rule conditions and
 * scripts (Duktape, compiled at build time from the source Debian's
 * duktape-dev ships, with the executor's interrupt counter and
 * DUK_USE_EXEC_TIMEOUT_CHECK enabled; see core/js/README.md).
 *
 * One sandbox per rule: its own Duktape heap behind a capped allocator
 * (limits.heap_bytes), so a memory bomb, prototype tampering or a broken
 * global in one rule cannot reach another. Compiled once per rule version.
 *
 * What a script sees (nothing else: no require, no print, no eval, no
 * Function constructor, no Duktape object, no I/O):
 *   event   {type, source, time, properties}  (built from CBOR; frozen,
 *           deeply; the sandbox keeps the object and updates it for the
 *           next event, which no call can observe: nothing survives a call)
 *   state   the rule's persistent object (kept in the heap between calls;
 *           exported/imported as CBOR for the sealed log). Scripts may
 *           change it; a condition sees a frozen copy (reading is fine,
 *           writing throws), so evaluating a condition never changes state
 *   emit(action, target, properties)   scripts only; queues an action:
 *           action  text (an action type name, 1..CL_JS_NAME_MAX bytes),
 *           target  number (client id, an integer >= 1) or text ("@group"),
 *           properties  a plain object (converted to CBOR; may be omitted)
 *   now()   the core's time in ms (also Date.now(), new Date())
 *   random() Math.random() too: from the core's RNG (a DRBG seeded from it)
 * The condition ("if") is one ECMAScript expression; its truthiness is the
 * result. The script is a function body; its return value is ignored. Both
 * are strict mode code. After compilation every object reachable from the
 * global object is frozen (the built-in prototypes included), so nothing a
 * call does survives it except through state: what is sealed is all there
 * is, and a rule behaves the same after a restart (core/js/README.md).
 *
 * Conversions: CBOR maps with text keys <-> plain objects, arrays, text,
 * integers and floats <-> numbers, booleans, null; byte strings become
 * Uint8Arrays in events (and Uint8Arrays/ArrayBuffers become byte strings in
 * emitted properties; state holds no bytes); tags are dropped (their
 * content is converted); nesting is bounded by CL_JS_MAX_DEPTH. Going back
 * to CBOR, properties whose value is undefined are left out (as
 * JSON.stringify does) and undefined array elements become null.
 *
 * Limits, each ending the evaluation with CL_ERR_LIMIT and a reason
 * ("time budget of 10 ms exceeded", "heap limit of 262144 bytes reached",
 * "too many emits (max 16)", "state larger than 4096 bytes", "call stack
 * too deep"); a thrown exception or syntax error is CL_ERR_BAD_INPUT with
 * the message ("TypeError: cannot read property 'x' of undefined").
 * After any failure the sandbox stays usable (the caller decides whether
 * to mark the rule failed). Values that cannot be converted (functions in
 * emitted properties or in state, cycles, NaN/Infinity) are errors too.
 * Errors raised by emit() (bad arguments, too many emits, a refusal of the
 * callback) fail the call even if the script catches them.
 *
 * Fatal errors: if Duktape itself fails (an internal error it cannot throw,
 * which it would normally answer with abort()), the call returns
 * CL_ERR_STATE ("ECMAScript engine failure (...)"), the heap is abandoned
 * (its memory freed by the sandbox's allocator, without asking Duktape) and
 * the next call builds a fresh heap: the sources are compiled again and
 * state is restored from its last committed value. Only if that fails too
 * do calls keep returning CL_ERR_STATE.
 *
 * Time budget: the executor calls the timeout check every
 * CL_JS_INTERRUPT_INSTRUCTIONS bytecode instructions; the check asks
 * env.clock_us (a monotonic microsecond clock) and also counts
 * instructions, so a budget holds even where no clock is available
 * (clock_us == NULL: instruction budget only, CL_JS_INSTR_PER_MS
 * instructions per ms of budget). Allocations count as work too (native
 * built-ins run no bytecode) and look at the clock every few calls. With a
 * clock, the instruction count is only a backstop (CL_JS_CLOCK_BACKSTOP
 * times the instruction budget) against a clock that stands still. The
 * clock is first read at the first check of a call (so the budget starts at
 * most one interval late), and a call that ends before it never reads it.
 *
 * Threads: a sandbox is used by one thread at a time; different sandboxes
 * are independent. The callbacks of env and emit must not call back into
 * the same sandbox (CL_ERR_STATE).
 */
#ifndef CLOISTER_CORE_JS_H
#define CLOISTER_CORE_JS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"

#define CL_JS_MAX_SOURCE 8192 /**< bytes of "if" or "script" */
#define CL_JS_DEFAULT_HEAP (256u * 1024u)
#define CL_JS_DEFAULT_BUDGET_MS 10
#define CL_JS_DEFAULT_MAX_EMIT 16
#define CL_JS_DEFAULT_MAX_STATE 4096
#define CL_JS_WHY_MAX 160
#define CL_JS_NAME_MAX 64         /**< bytes of an emitted action or group name */
#define CL_JS_MAX_DEPTH 16        /**< nesting of converted objects and arrays */
#define CL_JS_MAX_EMIT_PROPS 8192 /**< CBOR bytes of one emit's properties */
/** Bytecode instructions between two budget checks (duktape.c is patched for it). */
#define CL_JS_INTERRUPT_INSTRUCTIONS 8192
/** Instructions per ms of budget without a clock (measured: 11k..340k per ms
 *  in Release on a 2020s x86-64 core, depending on what the code does). */
#define CL_JS_INSTR_PER_MS 100000u
#define CL_JS_CLOCK_BACKSTOP 8u

typedef struct cl_js_limits {
    size_t heap_bytes;  /**< 0 = CL_JS_DEFAULT_HEAP */
    uint32_t budget_ms; /**< per evaluation; 0 = CL_JS_DEFAULT_BUDGET_MS */
    uint32_t max_emit;  /**< 0 = CL_JS_DEFAULT_MAX_EMIT */
    size_t max_state;   /**< CBOR bytes of state; 0 = CL_JS_DEFAULT_MAX_STATE */
} cl_js_limits_t;

typedef struct cl_js_env {
    void *arg;
    /** The core's time (ms since the epoch) for now() and Date.now(). */
    int64_t (*now_ms)(void *arg);
    /** Monotonic microseconds for the time budget; may be NULL. */
    uint64_t (*clock_us)(void *arg);
    /** Random bytes (the core's RNG) to seed random(). */
    cl_status_t (*rand)(void *arg, uint8_t *out, size_t len);
} cl_js_env_t;

/** The event as the engine hands it over (properties: a CBOR map). */
typedef struct cl_js_event {
    const char *type;
    size_t type_len;
    uint32_t source;
    int64_t time_ms;
    const uint8_t *props;
    size_t props_len;
} cl_js_event_t;

/** An action emitted by a script (pointers valid during the callback only). */
typedef struct cl_js_emit {
    const char *action;
    size_t action_len;
    bool target_is_group;
    uint32_t target_id;       /**< when !target_is_group */
    const char *target_group; /**< when target_is_group: the name without '@' */
    size_t target_group_len;
    const uint8_t *props; /**< CBOR map */
    size_t props_len;
} cl_js_emit_t;

/** Return non-OK to stop the script (the error is reported as its result). */
typedef cl_status_t (*cl_js_emit_fn)(void *arg, const cl_js_emit_t *e);

typedef struct cl_js cl_js_t;

/**
 * Creates a sandbox and compiles cond (an expression, may be NULL) and
 * script (a function body, may be NULL; at least one of the two). A syntax
 * error is CL_ERR_BAD_INPUT with the message in why (NUL-terminated).
 */
cl_status_t cl_js_create(cl_js_t **out, const cl_js_env_t *env, const cl_js_limits_t *limits,
                         const char *cond, size_t cond_len, const char *script, size_t script_len,
                         char *why, size_t why_size) CL_MUST_CHECK;
void cl_js_free(cl_js_t *js);

/** Evaluates the condition for an event: *result is its truthiness. */
cl_status_t cl_js_cond(cl_js_t *js, const cl_js_event_t *ev, bool *result, char *why,
                       size_t why_size) CL_MUST_CHECK;

/**
 * Runs the script for an event; emits go to emit(emit_arg, ...) as they
 * happen. *state_changed tells whether state may have changed (the caller
 * exports it then). On failure, emits already made must be discarded by
 * the caller (the engine does) and state is rolled back to its value
 * before the call.
 */
cl_status_t cl_js_run(cl_js_t *js, const cl_js_event_t *ev, cl_js_emit_fn emit, void *emit_arg,
                      bool *state_changed, char *why, size_t why_size) CL_MUST_CHECK;

/**
 * Exports state as CBOR (a map): the value the last successful call or
 * cl_js_state_set committed (nothing runs; never more than limits.max_state
 * bytes: a run that would make it larger fails). CL_ERR_BUFFER_TOO_SMALL
 * when out_size is short.
 */
cl_status_t cl_js_state_get(cl_js_t *js, uint8_t *out, size_t out_size,
                            size_t *out_len) CL_MUST_CHECK;
/**
 * Replaces state with a CBOR map (restore from the sealed log): CL_ERR_LIMIT
 * beyond limits.max_state, CL_ERR_BAD_INPUT for what is not a map of
 * convertible values (byte strings included); the old state stays then.
 */
cl_status_t cl_js_state_set(cl_js_t *js, const uint8_t *cbor, size_t len) CL_MUST_CHECK;

/**
 * Bytes the sandbox's heap currently holds (reported per rule): what Duktape
 * allocated plus the allocator's bookkeeping (16 bytes per block); this is
 * what limits.heap_bytes caps. A fresh sandbox holds about 63 KiB (Duktape's
 * own heap is about 62 KiB of it).
 */
size_t cl_js_heap_used(const cl_js_t *js);

/**
 * Makes Duktape raise a fatal error inside the sandbox, for tests and
 * fuzzing of the recovery path: returns CL_ERR_STATE like a real one, and
 * the next call runs in a fresh heap.
 */
cl_status_t cl_js_inject_fatal(cl_js_t *js, char *why, size_t why_size) CL_MUST_CHECK;

#endif
