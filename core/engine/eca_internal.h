/*
 * core/engine/eca_internal.h - what the files of the ECA engine share:
 * the compiled rule, CBOR value semantics (value.c), rule compilation
 * (rule.c), placeholders and templates (template.c). Never seen outside
 * core/engine; eca.h is the interface.
 *
 * A compiled rule keeps a private copy of its document; every text it needs
 * at run time (type names, path segments, group names, JS sources, template
 * bytes) is an (offset, length) pair into that copy, so compiling copies
 * nothing but the document and one pool of small arrays sized exactly.
 */
#ifndef CLOISTER_CORE_ECA_INTERNAL_H
#define CLOISTER_CORE_ECA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/cbor.h"
#include "eca.h"

/* Bounds of a rule document (eca.h describes them to rule authors). */
#define ECA_MAX_TYPES 16  /* "on": [type, ...] */
#define ECA_MAX_CONDS 16  /* "when.all" */
#define ECA_MAX_THEN 16   /* "then" */
#define ECA_MAX_SRC 16    /* items of a source filter */
#define ECA_MAX_SEGS CL_CBOR_MAX_DEPTH /* a deeper path can never match */
#define ECA_PATH_MAX 128  /* bytes of a dotted path */
#define ECA_IN_MAX 64     /* items of an "in" array */
#define ECA_TYPE_MAX 64   /* bytes of an event or action type name */
#define ECA_DESC_MAX 256
#define ECA_EVERY_MIN 10
#define ECA_EVERY_MAX 31536000u
#define ECA_FOR_MIN 1
#define ECA_PROPS_TABLE 64 /* top-level event properties indexed per event */

/** A text inside the rule's document copy (documents are <= 16384 bytes). */
typedef struct eca_str {
    uint16_t off;
    uint16_t len;
} eca_str_t;

/** A number as rules compare it: exact integer when integral and in int64 range. */
typedef struct eca_num {
    bool is_int;
    int64_t i; /* when is_int */
    double d;  /* always (the value as a double) */
} eca_num_t;

typedef enum eca_op {
    ECA_EQ,
    ECA_NE,
    ECA_LT,
    ECA_LE,
    ECA_GT,
    ECA_GE,
    ECA_IN,
    ECA_EXISTS,
    ECA_CHANGED,
} eca_op_t;

/* How a condition's value was pre-decoded. */
typedef enum eca_vkind {
    ECA_V_NONE,  /* changed */
    ECA_V_NUM,   /* lt le gt ge eq ne on a number */
    ECA_V_TEXT,  /* lt le gt ge eq ne on a text (val = the text's bytes) */
    ECA_V_BOOL,  /* exists (b) */
    ECA_V_RAW,   /* eq ne on anything else, in (val = the raw CBOR item) */
} eca_vkind_t;

typedef struct eca_cond {
    uint8_t op;    /* eca_op_t */
    uint8_t vkind; /* eca_vkind_t */
    uint8_t nseg;
    uint8_t chg;  /* changed: index of its hash in a memory entry */
    uint16_t seg; /* first segment in rule->segs */
    bool b;
    eca_str_t val;
    eca_num_t num;
} eca_cond_t;

/** A source filter ("when.source", "on.absent.source"). */
typedef struct eca_src {
    bool present; /* absent filter: every source */
    bool any;     /* "*" */
    uint8_t n_ids;
    uint8_t n_groups;
    uint32_t *ids;     /* into the rule's pool */
    eca_str_t *groups; /* names without the '@' */
} eca_src_t;

typedef enum eca_tkind { ECA_T_ACTION, ECA_T_EVENT } eca_tkind_t;
typedef enum eca_tgt { ECA_TGT_NONE, ECA_TGT_ID, ECA_TGT_GROUP, ECA_TGT_SOURCE } eca_tgt_t;

/** One "then" item. */
typedef struct eca_tmpl {
    uint8_t kind; /* eca_tkind_t */
    uint8_t tgt;  /* eca_tgt_t */
    bool has_ph;  /* properties hold a placeholder (else copied verbatim) */
    uint32_t id;
    eca_str_t name;  /* action or event type */
    eca_str_t group; /* without the '@' */
    eca_str_t props; /* the raw properties map; len 0 = {} */
} eca_tmpl_t;

typedef enum eca_trig {
    ECA_TRIG_TYPES,  /* "on": [type, ...] */
    ECA_TRIG_ANY,    /* "on": ["*"] */
    ECA_TRIG_EVERY,  /* "on": {"every": s} */
    ECA_TRIG_ABSENT, /* "on": {"absent": {...}} */
} eca_trig_t;

/*
 * "changed" memory: one entry per (source, event type) the rule has seen,
 * sorted by key = source << 32 | 32-bit hash of the type; each entry is
 * 2 + n_chg words: key, last use (for LRU eviction), one value hash per
 * "changed" condition. At most CL_ECA_CHANGED_MAX entries per rule.
 */
typedef struct eca_chg {
    uint64_t *w;
    uint32_t n, cap;
    uint64_t clock;
} eca_chg_t;

/* Absence timers: one per source, sorted by source. */
typedef struct eca_abs_ent {
    uint32_t source;
    bool fired; /* fired for the current silence */
    int64_t last_ms;
} eca_abs_ent_t;

typedef struct eca_abs {
    eca_abs_ent_t *v;
    uint32_t n, cap;
} eca_abs_t;

typedef struct eca_rule {
    char name[CL_ECA_NAME_MAX + 1];
    uint8_t name_len;
    uint16_t name_off; /* of the name's bytes in the document */
    uint8_t trig; /* eca_trig_t */
    uint8_t n_types;
    uint8_t n_conds;
    uint8_t n_chg;
    uint8_t n_then;
    bool doc_enabled; /* "enabled" of the document */
    bool enabled;
    bool failed;
    bool fail_pending;  /* a failure not yet reported by take_effects */
    bool state_dirty;   /* state changed since take_effects */
    bool uses_state;    /* a template reads {{state.…}} */
    uint32_t rank;      /* position in name order */
    uint8_t *doc;
    size_t doc_len;
    size_t pool_len;
    void *pool; /* types, conds, segs, then, source ids and groups */
    eca_str_t *types;
    eca_cond_t *conds;
    eca_str_t *segs;
    eca_tmpl_t *then;
    eca_src_t when_src;
    eca_src_t abs_src;
    eca_str_t abs_type; /* may be "*" */
    uint32_t period_s;  /* every / for */
    int64_t next_due;   /* every */
    eca_str_t js_if, js_script;
    cl_js_t *js;
    char *reason; /* when failed (heap) */
    uint64_t fired, matched;
    eca_chg_t chg;
    eca_abs_t abs;
} eca_rule_t;

/* ---- rule.c ---- */

/**
 * Parses and checks a rule document; on success *out is a new compiled rule
 * holding a copy of doc (no sandbox yet; js_env NULL = only check the JS:
 * compile it in a throw-away sandbox). why names the field on failure.
 */
cl_status_t cl_eca_rule_compile(const uint8_t *doc, size_t len, const cl_js_env_t *js_env,
                             const cl_js_limits_t *js_limits, eca_rule_t **out, char *why,
                             size_t why_size) CL_MUST_CHECK;
void cl_eca_rule_free(eca_rule_t *r);
/** Bytes held for the rule (document, pool, memories, sandbox heap). */
size_t cl_eca_rule_mem(const eca_rule_t *r);
/** Sets why to a formatted message (why may be NULL). */
void cl_eca_why(char *why, size_t why_size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/** 1..64 bytes of printable ASCII without spaces (event and action types). */
bool cl_eca_type_name_ok(const char *s, size_t len);
/** 1..64 bytes of [A-Za-z0-9._-] (rule and group names). */
bool cl_eca_name_ok(const char *s, size_t len);

/* ---- value.c ---- */

/** The top-level properties of one event, indexed once per event. */
typedef struct eca_props {
    uint32_t n;                 /* entries in kv */
    uint32_t rest_pairs;        /* pairs after the table (more than ECA_PROPS_TABLE) */
    const uint8_t *rest, *end;  /* where they start; end of the map */
    struct {
        const uint8_t *k; /* key text */
        size_t klen;
        const uint8_t *v, *vend; /* the value item */
    } kv[ECA_PROPS_TABLE];
} eca_props_t;

/** Indexes p[0..len) (exactly one well-formed CBOR map). false: malformed. */
bool cl_eca_props_init(eca_props_t *pt, const uint8_t *p, size_t len) CL_MUST_CHECK;
/** Finds the value at a path (segments in text `base`): true and [*v, *vend) when present. */
bool cl_eca_props_get(const eca_props_t *pt, const char *base, const eca_str_t *segs, unsigned nseg,
                   const uint8_t **v, const uint8_t **vend);
/** The same for a dotted path given as text (placeholders), in a map item. */
bool cl_eca_map_path(const uint8_t *map, const uint8_t *end, const char *path, size_t len,
                  const uint8_t **v, const uint8_t **vend);
/** Like cl_eca_map_path for event properties (uses the table). */
bool cl_eca_props_path(const eca_props_t *pt, const char *path, size_t len, const uint8_t **v,
                    const uint8_t **vend);
/** Reads a number (int, float). */
bool cl_eca_num_get(const uint8_t *p, const uint8_t *end, eca_num_t *out);
/** Compares numbers: -1, 0, 1, or 2 when unordered (NaN). */
int cl_eca_num_cmp(const eca_num_t *a, const eca_num_t *b);
bool cl_eca_num_eq(const eca_num_t *a, const eca_num_t *b);
/** Semantic equality of two CBOR items (1 == 1.0; arrays in order; maps by key). */
bool cl_eca_val_eq(const uint8_t *a, const uint8_t *aend, const uint8_t *b, const uint8_t *bend);
/** A 64-bit hash consistent with cl_eca_val_eq (never 0; 0 stands for "absent"). */
uint64_t cl_eca_val_hash(const uint8_t *p, const uint8_t *end);
/** 32-bit hash of a type name. */
uint32_t cl_eca_hash32(const void *p, size_t len);
uint64_t cl_eca_hash64(const void *p, size_t len);

/* ---- template.c ---- */

typedef enum eca_ph_kind {
    ECA_PH_TYPE,
    ECA_PH_SOURCE,
    ECA_PH_TIME,
    ECA_PH_PROP,  /* event.properties.P */
    ECA_PH_STATE, /* state.P */
    ECA_PH_RULE,
} eca_ph_kind_t;

/**
 * Checks every placeholder of a text (template check): CL_OK, or
 * CL_ERR_BAD_INPUT with the problem in why ("unknown placeholder ...").
 * *uses_state is set when one reads state; *has_ph when any is present.
 */
cl_status_t cl_eca_ph_check_text(const char *s, size_t len, bool *has_ph, bool *uses_state,
                              char *why, size_t why_size) CL_MUST_CHECK;

/** What a firing's templates can read. */
typedef struct eca_tctx {
    const eca_rule_t *rule;
    const cl_eca_event_t *ev;
    const eca_props_t *props;
    const uint8_t *state; /* exported state (CBOR map), NULL when none */
    size_t state_len;
    char *tbuf; /* scratch for interpolated texts */
    size_t tbuf_size;
} eca_tctx_t;

/**
 * Expands a properties template (a CBOR map; len 0 = {}) into out. A
 * missing value or an output beyond the encoder's buffer fails with why.
 */
cl_status_t cl_eca_expand(const eca_tctx_t *x, const uint8_t *tmpl, size_t len, cl_cbor_enc_t *out,
                       char *why, size_t why_size) CL_MUST_CHECK;

#endif
