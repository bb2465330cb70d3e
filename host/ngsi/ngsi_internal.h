/*
 * host/ngsi/ngsi_internal.h - what the files of the NGSI-v2 facade share
 * (not installed, not used outside host/ngsi/, tests and the fuzz harness).
 *
 *   ngsi_doc.c    JSON parsing (cJSON behind a bounded pre-scan), Orion's
 *                 validation rules, the normalized stored document, query
 *                 parameters, tenancy headers, bounded idPattern, rendering,
 *                 subscription documents. Pure: no I/O, no threads.
 *   ngsi_store*.c the store behind ngsi_store.h (SQLite, PostgreSQL).
 *   ngsi_writer.c the group-commit writer: applies queued operations in one
 *                 transaction per batch.
 *   ngsi_subs.c   the subscription registry, matching, the notifier thread.
 *   ngsi_http.c   libmicrohttpd, routes, the public API of ngsi.h.
 */
#ifndef CLOISTER_HOST_NGSI_INTERNAL_H
#define CLOISTER_HOST_NGSI_INTERNAL_H

#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "ngsi.h"

#define NGSI_MAX_NAME 256      /* ids, types, attribute / metadata names and types */
#define NGSI_MAX_SERVICE 50    /* Fiware-Service */
#define NGSI_MAX_LEVELS 10     /* Fiware-ServicePath levels */
#define NGSI_MAX_LEVEL 50      /* characters per level */
#define NGSI_PATH_SIZE 520     /* "/" + 10 x (50 + "/") + "#" + NUL fits */
#define NGSI_MAX_QUERY_PATHS 10
#define NGSI_MAX_LIST 100      /* items of id=, type=, attrs= and of subscription lists */
#define NGSI_MAX_PATTERN 256   /* idPattern / typePattern length */
#define NGSI_DEFAULT_LIMIT 20
#define NGSI_MAX_LIMIT 1000
#define NGSI_CORR_SIZE 65      /* Fiware-Correlator, NUL included */
#define NGSI_DESC_SIZE 384
#define NGSI_MAX_URL 2048      /* notification URL */
#define NGSI_MAX_DESCRIPTION 1024
#define NGSI_SUB_ID_LEN 24
#define NGSI_NODE_COST 96      /* bytes charged per parsed JSON value (cJSON node + malloc) */
#define NGSI_ORION_VERSION "3.10.1"

/* ------------------------------------------------------------ limits, errors */

typedef struct ngsi_limits {
    size_t max_body;
    unsigned max_depth;
    unsigned max_attrs;
    unsigned max_metadata;
    unsigned max_batch_entities;
    size_t max_entity_bytes;
} ngsi_limits_t;

void ngsi_limits_default(ngsi_limits_t *l);

/* An Orion error: HTTP status, "error" name and "description". */
typedef struct ngsi_err {
    unsigned status;
    const char *error; /* static string */
    char desc[NGSI_DESC_SIZE];
} ngsi_err_t;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
void ngsi_err_set(ngsi_err_t *e, unsigned status, const char *error, const char *fmt, ...);

/* ------------------------------------------------------------ growable text */

typedef struct ngsi_buf {
    char *p;
    size_t len, cap, max; /* max: refuse to grow past it (failed = true) */
    bool failed;
} ngsi_buf_t;

void nb_init(ngsi_buf_t *b, size_t max);
void nb_free(ngsi_buf_t *b);
void nb_put(ngsi_buf_t *b, const char *s, size_t n);
void nb_puts(ngsi_buf_t *b, const char *s);
void nb_putc(ngsi_buf_t *b, char c);
/* s as a JSON string literal, quotes included */
void nb_json_str(ngsi_buf_t *b, const char *s);
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void nb_printf(ngsi_buf_t *b, const char *fmt, ...);
/* NUL-terminates and hands the text over (NULL when failed); b is reset. */
char *nb_take(ngsi_buf_t *b, size_t *len);

/* ------------------------------------------------------------ JSON */

/*
 * Parses one JSON document: a bounded pre-scan (UTF-8, no control bytes or
 * \u0000 in strings, depth <= max_depth) and then cJSON (the pre-scan also
 * counts values, so *cost estimates the memory the tree takes). NULL with
 * *err set (400 ParseError) on any problem. Thread-safe.
 */
cJSON *ngsi_json_parse(const char *p, size_t n, unsigned max_depth, size_t *cost, ngsi_err_t *err);
/* cJSON_PrintUnformatted (NULL on allocation failure); free with cJSON_free. */
char *ngsi_json_print(const cJSON *j, size_t *len);

/* ------------------------------------------------------------ names, tenancy */

/* Orion's identifier rule: 1..256 printable ASCII, none of <>"'=;()&?/# or space. */
bool ngsi_name_ok(const char *s);
/* Orion's rule for string values: none of <>"'=;() */
bool ngsi_value_str_ok(const char *s);

/* Fiware-Service: NULL/"" = default tenant ""; <= 50 alnum/_; lower-cased into out. */
bool ngsi_service_parse(const char *hdr, char out[NGSI_MAX_SERVICE + 1], ngsi_err_t *err);

typedef struct ngsi_paths {
    size_t n; /* 0 = every path ("/#") */
    char p[NGSI_MAX_QUERY_PATHS][NGSI_PATH_SIZE];
    bool rec[NGSI_MAX_QUERY_PATHS]; /* "/A/#": /A and below */
} ngsi_paths_t;

/* One absolute path for updates (default "/"), no "#". */
bool ngsi_path_parse_update(const char *hdr, char out[NGSI_PATH_SIZE], ngsi_err_t *err);
/* Up to 10 comma-separated paths for queries (default "/#"), each may end in "/#". */
bool ngsi_path_parse_query(const char *hdr, ngsi_paths_t *out, ngsi_err_t *err);
/* One path for a subscription (default "/#"), may end in "/#" (stored as given). */
bool ngsi_path_parse_sub(const char *hdr, char out[NGSI_PATH_SIZE], ngsi_err_t *err);
/* Does entity path `path` fall under pattern `pat` ("/A", "/A/#", "/#")? */
bool ngsi_path_match(const char *pat, const char *path);
bool ngsi_paths_match(const ngsi_paths_t *ps, const char *path);

/* Bounded POSIX ERE (REG_EXTENDED | REG_NOSUB): refuses long or pathological patterns. */
bool ngsi_regex_compile(const char *pat, regex_t *re, ngsi_err_t *err);

/* 2 * nbytes random lowercase hex digits + NUL (subscription ids). */
void ngsi_random_hex(char *out, size_t nbytes);
/* Fiware-Correlator: a valid header value is copied, otherwise a new UUID-like one. */
void ngsi_correlator(const char *hdr, char out[NGSI_CORR_SIZE]);

/* ------------------------------------------------------------ options */

#define NGSI_OPT_KEYVALUES 0x01u
#define NGSI_OPT_COUNT 0x02u
#define NGSI_OPT_UPSERT 0x04u
#define NGSI_OPT_APPEND 0x08u
#define NGSI_OPT_OVERRIDE_METADATA 0x10u
#define NGSI_OPT_VALUES 0x20u
#define NGSI_OPT_IGNORED 0x40u /* forcedUpdate, flowControl, skipForwarding: accepted */

/* Comma-separated `options`; an option outside `allowed` is 400. */
bool ngsi_options_parse(const char *s, unsigned allowed, unsigned *out, ngsi_err_t *err);

/* ------------------------------------------------------------ entities */

#define NGSI_F_KEYVALUES 0x1u  /* attribute values are plain values */
#define NGSI_F_ATTRS_ONLY 0x2u /* an /attrs body: no id / type members */
#define NGSI_F_NAMES_ONLY 0x4u /* op delete: attribute bodies are not checked */
#define NGSI_F_OVERRIDE_MD 0x8u

/* A parsed entity (or /attrs body). */
typedef struct ngsi_ent_in {
    char *id;      /* owned, NULL for /attrs bodies */
    char *type;    /* owned, NULL = not given */
    cJSON *attrs;  /* owned object name -> {"type","value","metadata"} */
    unsigned nattrs;
} ngsi_ent_in_t;

/*
 * body (consumed where noted: values are moved out of it) -> *out. Entity
 * bodies need "id" (and no "idPattern"); every name, type and string value
 * follows Orion's rules; normalized attributes must be objects with
 * value/type/metadata only; counts are bounded by lim.
 */
bool ngsi_entity_parse(cJSON *body, unsigned flags, const ngsi_limits_t *lim, ngsi_ent_in_t *out,
                       ngsi_err_t *err);
void ngsi_ent_in_free(ngsi_ent_in_t *e);
/* A single attribute body (PUT /attrs/{name}) -> normalized attribute. */
cJSON *ngsi_attr_parse(const char *name, cJSON *body, unsigned flags, const ngsi_limits_t *lim,
                       ngsi_err_t *err);

typedef enum ngsi_action {
    NGSI_ACT_NONE = 0,
    NGSI_ACT_APPEND,
    NGSI_ACT_APPEND_STRICT,
    NGSI_ACT_UPDATE,
    NGSI_ACT_DELETE,
    NGSI_ACT_REPLACE,
} ngsi_action_t;

/* POST /v2/op/update body -> action + entities (owned array, free with ngsi_ents_free). */
bool ngsi_batch_parse(cJSON *body, unsigned flags, const ngsi_limits_t *lim, ngsi_action_t *act,
                      ngsi_ent_in_t **ents, size_t *n, ngsi_err_t *err);
void ngsi_ents_free(ngsi_ent_in_t *ents, size_t n);

/* ------------------------------------------------------------ queries */

typedef const char *(*ngsi_arg_fn)(void *ctx, const char *key);

typedef struct ngsi_list_q {
    size_t limit, offset;
    unsigned options;
    size_t nids, ntypes, nattrs;
    const char *ids[NGSI_MAX_LIST];
    const char *types[NGSI_MAX_LIST];
    const char *attrs[NGSI_MAX_LIST];
    bool has_idre, has_typere;
    regex_t idre, typere;
    char *store; /* owned: the list strings */
} ngsi_list_q_t;

#define NGSI_Q_LIST 0 /* GET /v2/entities, /v2/subscriptions */
#define NGSI_Q_ONE 1  /* GET /v2/entities/{id}[/attrs]: type, attrs, options only */

/* Query parameters through arg(key) -> *q (free with ngsi_list_q_free, also after failure). */
bool ngsi_list_q_parse(ngsi_arg_fn arg, void *ctx, int kind, ngsi_list_q_t *q, ngsi_err_t *err);
void ngsi_list_q_free(ngsi_list_q_t *q);

/* ------------------------------------------------------------ rendering */

typedef struct ngsi_render {
    bool keyvalues;
    bool with_id; /* false: the /attrs form (no id, type) */
    size_t nattrs;
    const char *const *attrs; /* only these (0 = all) */
} ngsi_render_t;

/* An entity from its stored document text (normalized attributes object). */
bool ngsi_render_entity(ngsi_buf_t *b, const char *id, const char *type, const char *doc,
                        size_t doc_len, const ngsi_render_t *r);
/* The same from a tree. */
void ngsi_render_entity_tree(ngsi_buf_t *b, const char *id, const char *type, const cJSON *attrs,
                             const ngsi_render_t *r);
/* {"error": ..., "description": ...} */
void ngsi_render_error(ngsi_buf_t *b, const ngsi_err_t *e);

/* ------------------------------------------------------------ time */

int64_t ngsi_now_ms(void);  /* wall clock */
int64_t ngsi_mono_ms(void); /* monotonic */
/* "2040-01-01T14:00:00.000Z" */
void ngsi_iso8601(int64_t ms, char out[32]);
/* YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM] -> ms since the epoch */
bool ngsi_parse_iso8601(const char *s, int64_t *ms);

/* ------------------------------------------------------------ subscriptions */

typedef struct ngsi_sub_ent {
    char *id;   /* id, or idPattern source when id_re */
    char *type; /* type, typePattern source when type_re, NULL = any */
    bool id_re, type_re;
    regex_t idre, typere;
} ngsi_sub_ent_t;

typedef struct ngsi_sub {
    char id[NGSI_SUB_ID_LEN + 1];
    char service[NGSI_MAX_SERVICE + 1];
    char path[NGSI_PATH_SIZE];
    char *description;
    size_t nents;
    ngsi_sub_ent_t *ents;
    size_t ncond;
    char **cond; /* condition.attrs */
    char *url;
    size_t nattrs;
    char **attrs; /* notification.attrs / exceptAttrs */
    bool except;
    bool keyvalues;
    bool inactive;
    int64_t expires_ms;  /* wall clock, 0 = never */
    int64_t throttling_s;
    unsigned timeout_ms; /* http.timeout, 0 = the default */
    /* state kept by the registry (its lock) */
    uint64_t times_sent, fails;
    int64_t last_notification, last_success, last_failure;
    long last_success_code;
    char last_failure_reason[128];
    int64_t last_sent_mono;
    bool sent_once;
    bool dirty;
    int64_t created_ms;
} ngsi_sub_t;

/*
 * A subscription body -> a new ngsi_sub_t (regexes compiled). from_store
 * also accepts the id, status and the counters (the stored form).
 */
ngsi_sub_t *ngsi_sub_parse(cJSON *body, bool from_store, const ngsi_limits_t *lim,
                           ngsi_err_t *err);
void ngsi_sub_free(ngsi_sub_t *s);
/* The Orion shape (also the stored form): with the counters and status at now_ms. */
void ngsi_sub_render(ngsi_buf_t *b, const ngsi_sub_t *s, int64_t now_ms);
bool ngsi_sub_matches(const ngsi_sub_t *s, const char *id, const char *type);

#endif
