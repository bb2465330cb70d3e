/*
 * host/ngsi/ngsi_server.h - the running facade's pieces and how they talk
 * (internal to host/ngsi/): the server struct, the operations the HTTP
 * threads hand to the writer thread, the writer and the subscription
 * registry with its notifier.
 *
 * Threads: libmicrohttpd's pool parses and validates requests and answers
 * reads directly from the store; every change becomes an ngsi_op_t queued
 * to the ONE writer thread (ngsi_writer.c), which applies a batch of them in
 * one transaction, commits, and only then completes them (op->done resumes
 * the suspended connection) and hands the notifications the batch caused to
 * the notifier thread (ngsi_subs.c).
 */
#ifndef CLOISTER_HOST_NGSI_SERVER_H
#define CLOISTER_HOST_NGSI_SERVER_H

#include <pthread.h>

#include "ngsi_internal.h"
#include "ngsi_store.h"

typedef struct ngsi_writer ngsi_writer_t;
typedef struct ngsi_subs ngsi_subs_t;
typedef struct ngsi_notif ngsi_notif_t;

struct cl_ngsi {
    cl_ngsi_config_t cfg; /* defaults applied; strings not owned */
    ngsi_limits_t lim;
    ngsi_store_t *store;
    ngsi_writer_t *writer;
    ngsi_subs_t *subs;
    struct MHD_Daemon *d;
    uint16_t port;
    int64_t start_ms;
    pthread_mutex_t authz_mu;
    cl_ngsi_authz_fn authz;
    void *authz_ctx;
    size_t budget_used; /* __atomic: bytes of bodies and trees held */
    size_t active;      /* __atomic: requests between first callback and completion */
    size_t waiting;     /* __atomic: requests queued to the writer, not answered yet */
    cl_ngsi_stats_t stats; /* __atomic counters */
    char machine[64];
};

#define NGSI_INC(ng, f) __atomic_fetch_add(&(ng)->stats.f, 1, __ATOMIC_RELAXED)
#define NGSI_ADD(ng, f, n) __atomic_fetch_add(&(ng)->stats.f, (uint64_t)(n), __ATOMIC_RELAXED)

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
void ngsi_log(const cl_ngsi_t *ng, int level, const char *fmt, ...);

/* The memory budget (cfg.inflight_bytes): false when n more would exceed it. */
bool ngsi_budget_take(cl_ngsi_t *ng, size_t n);
void ngsi_budget_give(cl_ngsi_t *ng, size_t n);

/* ------------------------------------------------------------ operations */

typedef enum ngsi_op_kind { NGSI_OP_ENTITIES, NGSI_OP_SUB_CREATE, NGSI_OP_SUB_DELETE } ngsi_op_kind_t;

typedef enum ngsi_verb {
    NGSI_V_CREATE,               /* POST /v2/entities */
    NGSI_V_UPSERT,               /* ... ?options=upsert, op append */
    NGSI_V_APPEND,               /* POST .../attrs (the entity must exist) */
    NGSI_V_APPEND_STRICT,        /* POST .../attrs?options=append */
    NGSI_V_APPEND_STRICT_CREATE, /* op appendStrict */
    NGSI_V_UPDATE,               /* PATCH .../attrs, PUT .../attrs/{name}, op update */
    NGSI_V_REPLACE,              /* PUT .../attrs, op replace */
    NGSI_V_DELETE,               /* DELETE entity (no attrs) or the listed attributes */
} ngsi_verb_t;

typedef struct ngsi_op {
    ngsi_op_kind_t kind;
    ngsi_verb_t verb;
    bool batch;       /* POST /v2/op/update: Orion's aggregated answer */
    bool single_attr; /* .../attrs/{name}: a missing attribute is 404 */
    bool override_md; /* options=overrideMetadata */
    size_t body_len;  /* the request body (bounds the growth of an entity) */
    char service[NGSI_MAX_SERVICE + 1];
    char path[NGSI_PATH_SIZE];
    char correlator[NGSI_CORR_SIZE];
    ngsi_ent_in_t *ents; /* owned */
    size_t nents;
    ngsi_sub_t *sub;     /* NGSI_OP_SUB_CREATE, owned until registered */
    char sub_id[NGSI_SUB_ID_LEN + 1];
    /* the result, written by the writer before done() */
    unsigned status;
    ngsi_err_t err; /* status >= 400 */
    char *location; /* 201: owned */
    /* completion (writer thread; the op is the caller's again afterwards) */
    void (*done)(struct ngsi_op *op, void *ctx);
    void *done_ctx;
    struct ngsi_op *next;
} ngsi_op_t;

void ngsi_op_clear(ngsi_op_t *op); /* frees what the op owns */

/* ------------------------------------------------------------ writer */

cl_status_t ngsi_writer_start(cl_ngsi_t *ng, ngsi_writer_t **out);
/*
 * Queues op unless the writer is closing (false: answer 503). before(),
 * when given, runs under the queue lock once the op is accepted - the
 * connection is suspended there, so done() can never come first.
 */
bool ngsi_writer_submit(ngsi_writer_t *w, ngsi_op_t *op, void (*before)(void *ctx), void *ctx);
/* Applies what is queued, refuses more, joins the thread. */
void ngsi_writer_stop(ngsi_writer_t *w);

/* ------------------------------------------------------------ subscriptions */

cl_status_t ngsi_subs_open(cl_ngsi_t *ng, ngsi_subs_t **out);
/* Drops queued notifications (counted), stops the notifier, frees the registry. */
void ngsi_subs_close(ngsi_subs_t *s);

size_t ngsi_subs_count(ngsi_subs_t *s);
bool ngsi_subs_exists(ngsi_subs_t *s, const char *id, const char *service);
void ngsi_subs_add(ngsi_subs_t *s, ngsi_sub_t *sub); /* takes ownership */
bool ngsi_subs_remove(ngsi_subs_t *s, const char *id, const char *service);

bool ngsi_subs_render_one(ngsi_subs_t *s, const char *id, const char *service, ngsi_buf_t *b);
void ngsi_subs_render_list(ngsi_subs_t *s, const char *service, const ngsi_paths_t *paths,
                           size_t offset, size_t limit, ngsi_buf_t *b, uint64_t *total);

/* Is any subscription registered for this service (cheap)? */
bool ngsi_subs_any(ngsi_subs_t *s, const char *service);
/*
 * An entity changed (created: every attribute): builds the notification of
 * every matching active subscription into *pending (not sent yet).
 */
void ngsi_subs_match(ngsi_subs_t *s, const char *service, const char *path, const char *id,
                     const char *type, const cJSON *attrs, const char *const *changed,
                     size_t nchanged, const char *correlator, ngsi_notif_t **pending);
/* After the commit: throttling, then the bounded queue of the notifier. */
void ngsi_subs_dispatch(ngsi_subs_t *s, ngsi_notif_t *pending);
void ngsi_notif_free_list(ngsi_notif_t *p);
/* Have counters changed since the last flush? */
bool ngsi_subs_dirty(ngsi_subs_t *s);
/* Writer thread, inside a transaction: persists the counters of changed subscriptions. */
cl_status_t ngsi_subs_flush(ngsi_subs_t *s, ngsi_store_t *st);

#endif
