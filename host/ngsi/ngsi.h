/*
 * host/ngsi/ngsi.h - the NGSI-v2 facade: an untrusted, FIWARE-style context
 * broker inside cloisterd (docs/ngsi.md). UNTRUSTED HOST SIDE.
 *
 * Producers publish entities whose protected attributes are HPKE ciphertext
 * (type "HpkeCiphertext", value base64url, metadata kid/ts); the broker
 * stores and forwards them like any attribute and cannot read them. Plain
 * NGSI entities work as in Orion, for the subset in docs/ngsi.md:
 * /version, /v2/entities (+ /{id}, /{id}/attrs, /{id}/attrs/{name}),
 * /v2/op/update, /v2/subscriptions with HTTP notifications, tenancy by
 * Fiware-Service / Fiware-ServicePath, Orion's error shapes and limits.
 *
 * It is independent of the trusted core and of cloisterd's event loop: its
 * own listener (libmicrohttpd thread pool), its own store (SQLite
 * <data_dir>/ngsi.sqlite by default, or PostgreSQL tables ngsi_*), one
 * writer thread doing group commit (every 201/204 is durable before it is
 * sent) and one notifier thread sending notifications from a bounded queue.
 *
 * Thread safety: open/close from one thread; set_authorizer, get_stats and
 * metrics_text from any thread at any time.
 */
#ifndef CLOISTER_HOST_NGSI_H
#define CLOISTER_HOST_NGSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Same signature as cl_host_log_fn (storage.h): one structured line, no newline. */
typedef void (*cl_ngsi_log_fn)(void *ctx, int level, const char *line);

/* Defaults of the limits below (0 in the config = default). */
#define CL_NGSI_DEFAULT_THREADS 4
#define CL_NGSI_DEFAULT_MAX_CONNECTIONS 500 /* at most 125 per thread (ngsi_http.c) */
#define CL_NGSI_DEFAULT_TIMEOUT_S 30
#define CL_NGSI_DEFAULT_MAX_BODY (1024u * 1024u) /* Orion's default */
#define CL_NGSI_DEFAULT_MAX_DEPTH 32
#define CL_NGSI_DEFAULT_MAX_ATTRS 256
#define CL_NGSI_DEFAULT_MAX_METADATA 64
#define CL_NGSI_DEFAULT_MAX_ENTITY_BYTES (1024u * 1024u)
#define CL_NGSI_DEFAULT_MAX_BATCH_ENTITIES 1000
#define CL_NGSI_DEFAULT_MAX_SUBSCRIPTIONS 10000
#define CL_NGSI_DEFAULT_NOTIFY_QUEUE 10000
#define CL_NGSI_DEFAULT_NOTIFY_QUEUE_BYTES (64u * 1024u * 1024u)
#define CL_NGSI_DEFAULT_NOTIFY_TIMEOUT_MS 5000
#define CL_NGSI_DEFAULT_NOTIFY_PARALLEL 32
#define CL_NGSI_DEFAULT_INFLIGHT_BYTES (256u * 1024u * 1024u)
#define CL_NGSI_DEFAULT_BATCH_OPS 1024
#define CL_NGSI_DEFAULT_MAX_RESPONSE (32u * 1024u * 1024u)

typedef struct cl_ngsi_config {
    const char *listen;      /**< "127.0.0.1:1026"; port 0 = any (cl_ngsi_port) */
    bool bind_any;           /**< allow a non-loopback listen address */
    const char *data_dir;    /**< SQLite store <data_dir>/ngsi.sqlite (no pg_conninfo) */
    const char *pg_conninfo; /**< PostgreSQL store (tables ngsi_*); never logged */
    unsigned threads;        /**< libmicrohttpd thread pool size */
    unsigned max_connections; /**< capped at 125 x threads */
    unsigned per_ip_limit;      /**< connections per client address, 0 = no limit */
    unsigned timeout_s;         /**< idle connection timeout (slow clients dropped) */
    size_t max_body;            /**< request body (413 beyond) */
    unsigned max_depth;         /**< JSON nesting */
    unsigned max_attrs;         /**< attributes per entity */
    unsigned max_metadata;      /**< metadata per attribute */
    size_t max_entity_bytes;    /**< stored attributes document of one entity */
    unsigned max_batch_entities; /**< entities in one POST /v2/op/update */
    unsigned max_subscriptions;
    size_t notify_queue;        /**< notifications waiting (more: dropped, counted) */
    size_t notify_queue_bytes;  /**< their bodies, in bytes */
    unsigned notify_timeout_ms; /**< per notification (connect + send + answer) */
    unsigned notify_parallel;   /**< notifications in flight at once */
    size_t inflight_bytes;      /**< request bodies + parsed documents held (503 beyond) */
    unsigned batch_ops;         /**< requests per group commit at most */
    size_t max_response;        /**< response body (a larger page: 413, lower the limit) */
    cl_ngsi_log_fn log;         /**< NULL = no logs */
    void *log_ctx;
    bool log_debug;             /**< also debug lines (one per request): off = not even formatted */
} cl_ngsi_config_t;

typedef struct cl_ngsi cl_ngsi_t;

/** What the authorization hook sees (all strings NUL-terminated, valid during the call). */
typedef struct cl_ngsi_authz_request {
    const char *method;        /**< "GET", "POST", ... */
    const char *path;          /**< URL path, e.g. "/v2/entities/Room1/attrs" */
    const char *service;       /**< Fiware-Service, validated and lower-cased; "" = default */
    const char *service_path;  /**< Fiware-ServicePath as received (validated), NULL if absent */
    const char *authorization; /**< Authorization header value, NULL if absent */
    const char *x_auth_token;  /**< X-Auth-Token header value (Keyrock/Wilma), NULL if absent */
} cl_ngsi_authz_request_t;

/** The hook's answer when it denies. */
typedef struct cl_ngsi_authz_result {
    unsigned status;            /**< 401 or 403 (anything else not 2xx is sent as is) */
    char www_authenticate[256]; /**< WWW-Authenticate value ("" = none) */
    char description[256];      /**< error description in the body ("" = default) */
} cl_ngsi_authz_result_t;

/**
 * Authorization hook (the OAuth2 policy enforcement point), called before any
 * handler runs, on a libmicrohttpd thread, for every request: returns true to
 * allow, false to deny with *res (zeroed before the call). Must be
 * thread-safe and should not block for long (it holds one server thread).
 */
typedef bool (*cl_ngsi_authz_fn)(void *ctx, const cl_ngsi_authz_request_t *req,
                                 cl_ngsi_authz_result_t *res);

/** Counters for /metrics (monotonic, except the *_queued gauges). */
typedef struct cl_ngsi_stats {
    uint64_t requests, responses_2xx, responses_4xx, responses_5xx;
    uint64_t rx_bytes, tx_bytes;
    uint64_t rejected_auth, rejected_too_large, rejected_busy, rejected_parse;
    uint64_t entities_created, entities_updated, entities_deleted;
    uint64_t commits, commit_ops, commit_failures;
    uint64_t queries;
    uint64_t subscriptions_created, subscriptions_deleted;
    uint64_t notifications_queued, notifications_sent, notifications_failed;
    uint64_t notifications_dropped_full, notifications_throttled, notifications_dropped_closing;
    uint64_t notify_queue_len; /**< gauge: notifications waiting now */
} cl_ngsi_stats_t;

/**
 * Opens the store (creating the schema), loads the subscriptions, starts the
 * writer, the notifier and the listener. Errors are logged; CL_ERR_INVALID_ARG
 * for a bad config or listen address (non-loopback without bind_any),
 * CL_ERR_PERSIST for store or socket failures.
 */
cl_status_t cl_ngsi_open(const cl_ngsi_config_t *cfg, cl_ngsi_t **out) CL_MUST_CHECK;

/**
 * Stops accepting, commits and answers what is queued, stops the threads
 * (notifications still queued are dropped and counted), closes the store.
 * NULL is a no-op.
 */
void cl_ngsi_close(cl_ngsi_t *ng);

/** The bound TCP port (after port 0). */
uint16_t cl_ngsi_port(const cl_ngsi_t *ng);

/** Installs (fn != NULL) or removes (NULL: allow all, the default) the hook. */
void cl_ngsi_set_authorizer(cl_ngsi_t *ng, cl_ngsi_authz_fn fn, void *ctx);

void cl_ngsi_get_stats(const cl_ngsi_t *ng, cl_ngsi_stats_t *out);

/**
 * Prometheus text of the counters (cloister_ngsi_*), NUL-terminated; returns
 * the length written (truncated to size - 1).
 */
size_t cl_ngsi_metrics_text(const cl_ngsi_t *ng, char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif
