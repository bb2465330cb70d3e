/*
 * core/engine/eca.h - the Event-Condition-Action engine (iFLUX model) that
 * runs inside the core. Pure computation over compiled rules: no I/O, no
 * durability of its own. The core feeds it events and time, and turns what
 * it reports (actions, state changes, failures) into sealed log records and
 * notifications.
 *
 * ---- A rule (CBOR map; written as JSON by people, docs/model.md) ----
 *   "name":        text, 1..64 of [A-Za-z0-9._-]          (required; the id)
 *   "description": text <= 256                              (optional)
 *   "enabled":     bool, default true
 *   "on":          exactly one trigger:
 *       [type, ...]                 1..16 event type names: the rule runs on
 *                                   events of these types ("*": every type)
 *     | {"every": s}                a schedule: every s seconds (10..31536000),
 *                                   first at the first tick >= start + s;
 *                                   periods missed (no tick) fire once
 *     | {"absent": {"type": T, "source": S, "for": s}}
 *                                   "no event of type T from S for s seconds"
 *                                   (T may be "*"; S as in "when.source"
 *                                   below, required; s 1..31536000; each
 *                                   matching source has its own timer; fires
 *                                   once per silence, re-armed by an event).
 *                                   Named clients and the members of named
 *                                   groups (at put_rule, up to 256 a group)
 *                                   are watched from start_ms, any other
 *                                   matching source from its first event;
 *                                   the core (source 0) never. At most
 *                                   CL_ECA_ABSENT_MAX sources a rule (when
 *                                   full, a source already reported silent
 *                                   is forgotten, else a new one is not
 *                                   watched).
 *   Timer firings run their rule alone on a synthetic event:
 *     schedule: type "schedule", source 0, properties {"every": s}
 *     absence:  type "absent", source = the silent client, properties
 *               {"type": T, "for": s, "since": ms of its last event (or
 *               start_ms)}
 *   "when" applies to them as to any event (so a schedule with a
 *   "when.source" other than "*" never fires).
 *   "when":        declarative conditions, all must hold (optional):
 *       "source": 17 | "*" | "@group" | [those...]   who sent the event
 *       "all": [cond, ...]  up to 16; cond := {"prop": path, "op": op,
 *                                              "value": v}
 *           path  dotted path into event.properties ("a.b"), 1..128 bytes
 *           op    "eq" "ne" "lt" "le" "gt" "ge"  (numbers compare as
 *                 numbers, 1 == 1.0; text compares bytewise; lt/le/gt/ge
 *                 on mixed kinds are false; eq/ne on any CBOR value:
 *                 arrays item by item, maps by key - up to 64 pairs,
 *                 larger ones pair by pair in order). Every comparison,
 *                 "ne" and "in" included, is false when the property is
 *                 absent: test that with "exists".
 *                 "in"      value is an array; the property equals one item
 *                 "exists"  value is true (present) or false (absent)
 *                 "changed" no value: the property differs from the one in
 *                           the previous event of this type from this source
 *                           seen by this rule (the first one counts as
 *                           changed; remembered in memory, not across a
 *                           restart). "Seen": the event reached the rule and
 *                           passed "when.source"; the memory is updated then,
 *                           whatever the other conditions say. Values are
 *                           remembered as a 64-bit hash of their semantic
 *                           form (1 and 1.0 alike, maps by key; absent is a
 *                           value too), for at most CL_ECA_CHANGED_MAX
 *                           (source, type) pairs a rule: the least recently
 *                           seen is forgotten (and counts as changed again).
 *   "if":          text, one ECMAScript expression (js.h), optional
 *   "script":      text, an ECMAScript function body (js.h), optional; it
 *                  may read/write `state` and call emit()
 *   "then":        [template, ...] up to 16, optional:
 *       {"action": name, "target": 17 | "@group" | "{{event.source}}",
 *        "properties": map}          ("properties" optional: {})
 *       {"event": type, "properties": map}   a derived event: processed
 *                  by the rules like a published one (source 0 = the core),
 *                  at chain depth + 1 (see CL_ECA_MAX_CHAIN)
 *       Text values in "properties" (at any depth) may hold placeholders
 *       {{event.type}} {{event.source}} {{event.time}} {{event.properties.P}}
 *       {{state.P}} {{rule.name}}: a text that is exactly one placeholder is
 *       replaced by the value with its type (number stays number); inside a
 *       longer text the value is formatted as text (numbers in decimal,
 *       non-integral floats with %.15g, true/false/null; a map, array or
 *       byte string cannot be). A missing value fails the rule's firing
 *       with a reason ("{{event.properties.x}}: no such property").
 *       Placeholders are checked with the rule (unknown ones, and "{{" that
 *       is not one, are refused: there is no escape), may not appear in
 *       keys, and {{state.P}} needs a "script".
 * A rule needs at least one of "then" and "script". Unknown fields are
 * refused everywhere (a misspelt "tehn" must not make a silent rule). The
 * "if" runs only when "on" and "when" matched; the "script" and then
 * "then" run only if the condition held (that is a firing: "fired").
 *
 * ---- Semantics ----
 *   - Matching goes through an index: event type -> rules (plus the "*"
 *     list); declarative conditions never touch JS.
 *   - Rules run in name order for one event; events are processed in the
 *     order given (per-source order is the caller's arrival order).
 *   - Derived events are queued and processed after the current event,
 *     depth-first is never used; depth > CL_ECA_MAX_CHAIN is dropped and
 *     reported as a failure of the rule that emitted it ("action chain
 *     deeper than 8"), so rules that trigger each other cannot loop.
 *   - A rule whose JS fails (exception, limit) is marked failed with the
 *     reason; a failed rule does not run again until it is replaced or
 *     re-enabled (cl_eca_set_enabled true clears the failure). Its actions
 *     from that firing are discarded; other rules are unaffected.
 *     The same holds for every other failure of a firing: a placeholder
 *     without a value, a target that is the core, the chain limit, more
 *     than CL_ECA_MAX_ACTIONS_PER_EVENT actions or
 *     CL_ECA_MAX_DERIVED_PER_EVENT derived events for one event (across
 *     all rules and depths), and a refusal by host.action. A firing's
 *     actions and derived events are collected first and handed over only
 *     when it succeeded; if host.action then refuses one, the rule fails
 *     with the host's reason and the actions after it are dropped (those
 *     before it were accepted). State a script changed before a later step
 *     failed stays changed (and is reported).
 *   - Group targets expand through host.group_members at emission time
 *     (an empty group: no action, not a failure); source filters ask
 *     host.in_group (never for source 0).
 *   - An event's properties must be one well-formed CBOR map (none: {});
 *     otherwise cl_eca_event returns CL_ERR_BAD_INPUT and no rule runs.
 *   - Not re-entrant: the host callbacks must not call the engine (every
 *     entry point answers CL_ERR_STATE while one runs).
 */
#ifndef CLOISTER_CORE_ECA_H
#define CLOISTER_CORE_ECA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"
#include "js.h" /* core/js */

#define CL_ECA_NAME_MAX 64
#define CL_ECA_MAX_RULE_DOC 16384
#define CL_ECA_MAX_RULES 10000
#define CL_ECA_MAX_CHAIN 8
#define CL_ECA_MAX_ACTIONS_PER_EVENT 256 /* across all rules and derived events */
#define CL_ECA_WHY_MAX 160
#define CL_ECA_MAX_DERIVED_PER_EVENT 64 /* derived events queued for one event, all depths */
#define CL_ECA_MAX_PROPS 8192           /* bytes of one expanded "properties" map */
#define CL_ECA_CHANGED_MAX 1024 /* (source, type) pairs a rule remembers for "changed" */
#define CL_ECA_ABSENT_MAX 4096  /* sources an absence rule watches */

/** An event given to the engine (properties: a CBOR map). */
typedef struct cl_eca_event {
    const char *type;
    size_t type_len;
    uint32_t source; /**< client id; 0 = the core (derived, timers) */
    int64_t time_ms;
    const uint8_t *props;
    size_t props_len;
} cl_eca_event_t;

/** An action to deliver (pointers valid during the callback only). */
typedef struct cl_eca_action {
    const char *rule; /**< NUL-terminated rule name */
    const char *type; /**< action type name */
    size_t type_len;
    uint32_t target; /**< one client (groups are already expanded) */
    const uint8_t *props; /**< CBOR map */
    size_t props_len;
    int64_t time_ms; /**< the triggering event's time */
} cl_eca_action_t;

/** What the engine needs from the core. */
typedef struct cl_eca_host {
    void *arg;
    /** Members of a group (client ids, ascending): count written to out (<= max). */
    size_t (*group_members)(void *arg, const char *group, size_t len, uint32_t *out, size_t max);
    /** Whether a client is in a group. */
    bool (*in_group)(void *arg, uint32_t client, const char *group, size_t len);
    /**
     * An action to deliver. Return non-OK to refuse it (e.g. unknown action
     * type, properties violate its schema, unknown target): the firing
     * fails with the reason written to why.
     */
    cl_status_t (*action)(void *arg, const cl_eca_action_t *a, char *why, size_t why_size);
    /** A derived event, after the rules that match it have run (archiving). May be NULL. */
    void (*derived)(void *arg, const cl_eca_event_t *e);
    /** Environment for the JS sandboxes (time, clock, randomness). */
    cl_js_env_t js_env;
    cl_js_limits_t js_limits;
} cl_eca_host_t;

typedef struct cl_eca cl_eca_t;

cl_status_t cl_eca_create(cl_eca_t **out, const cl_eca_host_t *host) CL_MUST_CHECK;
void cl_eca_free(cl_eca_t *e);

/**
 * Checks a rule document without installing it (syntax of every field and
 * of the JS). CL_ERR_BAD_INPUT with a reason naming the field on failure.
 * *name receives a pointer into doc (the rule's name) when not NULL.
 */
cl_status_t cl_eca_check_rule(const uint8_t *doc, size_t len, const char **name, size_t *name_len,
                              char *why, size_t why_size) CL_MUST_CHECK;

/**
 * Installs or replaces a rule (compiles it once; its JS sandbox is new,
 * so its state starts empty unless cl_eca_set_state follows). start_ms is
 * when schedules and absence timers start counting. `enabled` overrides
 * the document's "enabled". A replaced rule keeps its counters (fired,
 * matched) and loses its failure, its "changed" memory and any effect not
 * yet taken. CL_ERR_FULL beyond CL_ECA_MAX_RULES.
 */
cl_status_t cl_eca_put_rule(cl_eca_t *e, const uint8_t *doc, size_t len, bool enabled,
                            int64_t start_ms, char *why, size_t why_size) CL_MUST_CHECK;
cl_status_t cl_eca_del_rule(cl_eca_t *e, const char *name, size_t len) CL_MUST_CHECK;
/** Enables/disables; enabling clears a failure. */
cl_status_t cl_eca_set_enabled(cl_eca_t *e, const char *name, size_t len,
                               bool enabled) CL_MUST_CHECK;
/** Marks a rule failed (restoring a failure from the sealed log). */
cl_status_t cl_eca_set_failed(cl_eca_t *e, const char *name, size_t len,
                              const char *reason) CL_MUST_CHECK;
/** Restores a rule's script state (CBOR map); CL_ERR_STATE without a "script". */
cl_status_t cl_eca_set_state(cl_eca_t *e, const char *name, size_t len, const uint8_t *state,
                             size_t state_len) CL_MUST_CHECK;

/** Status of a rule for listings. */
typedef struct cl_eca_rule_info {
    bool enabled;
    bool failed;
    char reason[CL_ECA_WHY_MAX]; /**< when failed */
    uint64_t fired;   /**< firings since boot (the condition held) */
    uint64_t matched; /**< events that reached the rule through the index */
    size_t js_heap;   /**< bytes held by its sandbox (0 = no JS) */
    size_t mem;       /**< bytes the engine holds for the rule, JS included */
} cl_eca_rule_info_t;
cl_status_t cl_eca_rule_info(const cl_eca_t *e, const char *name, size_t len,
                             cl_eca_rule_info_t *info) CL_MUST_CHECK;

/**
 * Processes one event: runs every matching rule and the derived events
 * they cause; actions go to host.action as they are emitted. Rule state
 * changes and failures are remembered until cl_eca_take_effects.
 */
cl_status_t cl_eca_event(cl_eca_t *e, const cl_eca_event_t *ev) CL_MUST_CHECK;

/** Time triggers (schedules, absence) due at now_ms. */
cl_status_t cl_eca_tick(cl_eca_t *e, int64_t now_ms) CL_MUST_CHECK;

/**
 * Reports what changed since the last call and clears it: for each rule
 * whose state changed, state(arg, name, cbor) with the exported state; for
 * each rule that failed, failed(arg, name, reason). Either callback may be
 * NULL. The core writes both into one sealed record per batch.
 */
cl_status_t cl_eca_take_effects(cl_eca_t *e,
                                void (*state)(void *arg, const char *name, const uint8_t *cbor,
                                              size_t len),
                                void (*failed)(void *arg, const char *name, const char *reason),
                                void *arg) CL_MUST_CHECK;

/**
 * Dry run: runs the rule `doc` (not installed, or an installed one's
 * document) on one event without side effects: no state is kept, no
 * "changed" memory is updated, nothing reaches host.action - the actions
 * go to action(arg, ...) instead, derived events are listed through
 * derived(arg, ...) but not processed. *matched tells whether on/when/if
 * held. A JS failure is returned with its reason in why.
 * The rule runs in a fresh sandbox; when a rule of the same name is
 * installed its script state is copied in, and when its document is the
 * same its "changed" memory is read (never written). For a schedule or an
 * absence rule the sample event stands for the synthetic one ("on" holds).
 * Groups expand through host.group_members. A refusal by action() ends the
 * run with its status. A malformed doc is CL_ERR_BAD_INPUT as in
 * cl_eca_check_rule; a failed firing returns its status (*matched true).
 */
cl_status_t cl_eca_dry_run(cl_eca_t *e, const uint8_t *doc, size_t len, const cl_eca_event_t *ev,
                           cl_status_t (*action)(void *arg, const cl_eca_action_t *a),
                           void (*derived)(void *arg, const cl_eca_event_t *d), void *arg,
                           bool *matched, char *why, size_t why_size) CL_MUST_CHECK;

/** Number of rules and bytes held (memory per rule is reported from it). */
void cl_eca_stats(const cl_eca_t *e, size_t *rules, size_t *bytes);

#endif
