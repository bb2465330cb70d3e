/*
 * core/core_internal.h - the trusted core's internal structures (never seen
 * by the host): the model state kept in enclave memory, sessions, and the
 * instance that ties them to the platform and the host's ocall table.
 */
#ifndef CLOISTER_CORE_INTERNAL_H
#define CLOISTER_CORE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/cbor.h"
#include "cloister/coap.h"
#include "cloister/core.h"
#include "cloister/crypto.h"
#include "cloister/edhoc.h"
#include "cloister/oscore.h"
#include "sealed_log.h"

/* ---- roles ---- */
typedef enum cl_role {
    CL_ROLE_NONE = 0,
    CL_ROLE_OWNER = 1,
    CL_ROLE_ADMIN = 2,
    CL_ROLE_USER = 3,
    CL_ROLE_DEVICE = 4,
    CL_ROLE_SERVICE = 5,
    CL_ROLE_ENROLLEE = 6, /* key proved in EDHOC, no certificate yet */
} cl_role_t;

const char *cl_role_name(int role);
/** Role from its name, for the roles a token may carry; CL_ROLE_NONE if unknown. */
int cl_role_parse(const char *s, size_t len);

/* ---- model state (state.c) ---- */
typedef enum cl_phase {
    CL_PHASE_FRESH = 0,
    CL_PHASE_CLAIMED = 1,
    CL_PHASE_PROVISIONED = 2,
} cl_phase_t;

#define CL_NAME_MAX 64
#define CL_PKI_MAX_CERT_BYTES 2048   /* = CL_PKI_MAX_CERT (core/pki/pki.h) */
#define CL_STATE_MAX_ENTRIES 100000u /* clients, tokens */
#define CL_OWNER_ID 0u

/*
 * Per-client permissions: which event types a client may publish, as a CBOR
 * array of 1..16 text strings (1..64 printable ASCII bytes each; "*" = any).
 * Set from the enrollment token, changed by admins (POST /clients/{id}/permissions).
 */
#define CL_PERMS_MAX 1100
#define CL_PERMS_MAX_ITEMS 16
#define CL_PERMS_MAX_TYPE 64

typedef struct cl_client {
    uint32_t id;
    uint8_t role;
    bool revoked;
    uint16_t perms_len;
    uint8_t perms[CL_PERMS_MAX];
    char name[CL_NAME_MAX];
    uint8_t x5t[8];
    uint8_t cert_hash[32];
    uint8_t *cert; /* DER, heap */
    size_t cert_len;
    uint8_t *groups; /* CBOR array of 0..16 group names (heap; NULL = none) */
    size_t groups_len;
} cl_client_t;

typedef struct cl_token {
    uint32_t id;
    uint8_t role;
    bool used;
    uint16_t perms_len;
    uint8_t perms[CL_PERMS_MAX]; /* given to the client it enrolls */
    int64_t expires_ms;
    uint8_t hash[32]; /* SHA-256 of the token; the token itself is never stored */
    char name[CL_NAME_MAX];
} cl_token_t;

/* An event type: events of unknown types are refused; history is per type. */
#define CL_EVTYPE_MAX_NAME 64
#define CL_EVTYPE_MAX_DESC 128
#define CL_EVTYPE_MAX 256
typedef struct cl_evtype {
    char name[CL_EVTYPE_MAX_NAME + 1];
    char desc[CL_EVTYPE_MAX_DESC + 1];
    uint8_t history_roles; /* bit (1 << role) may read its history; the owner always may */
    uint64_t version;
    uint8_t *schema; /* CBOR JSON-Schema subset for properties (heap; NULL = any map) */
    size_t schema_len;
    char scenario[CL_NAME_MAX + 1]; /* the scenario instance that created it, or "" */
} cl_evtype_t;

/*
 * Model objects (docs/model.md) other than clients and event types: their
 * validated CBOR documents with a version each. Rules carry their status
 * and their script state (the engine holds the compiled form).
 */
typedef enum cl_mkind {
    CL_MK_ACTTYPE = 1,
    CL_MK_RULE = 2,
    CL_MK_PUBLISHER = 3,
    CL_MK_SCENARIO = 4,
} cl_mkind_t;

#define CL_MNAME_MAX 129 /* rules of scenarios: "<instance>.<name>" */
#define CL_MODEL_MAX_OBJECTS 20000
#define CL_MODEL_MAX_DOC 32768
#define CL_MODEL_WHY_MAX 160

typedef struct cl_mobj {
    uint8_t kind;
    bool enabled; /* rules */
    bool failed;  /* rules: stopped by a script failure until enabled again */
    char name[CL_MNAME_MAX + 1];
    uint64_t version;
    uint8_t *doc; /* heap */
    size_t doc_len;
    uint8_t *state; /* rules: the script state (CBOR map), heap, or NULL */
    size_t state_len;
    char reason[CL_MODEL_WHY_MAX]; /* rules: why it failed */
    char scenario[CL_NAME_MAX + 1]; /* the scenario instance that created it, or "" */
} cl_mobj_t;

/* A queued action for one client (docs/model.md "Actions and their delivery"). */
#define CL_ACTIONS_MAX 100000
#define CL_ACTIONS_PER_TARGET 1000
#define CL_ACTION_TTL_MS 3600000
typedef struct cl_action {
    uint64_t id;
    uint32_t target;
    int64_t time_ms;
    int64_t expires_ms;
    char type[CL_NAME_MAX + 1];
    char rule[CL_MNAME_MAX + 1];
    uint8_t *props; /* CBOR map, heap */
    size_t props_len;
} cl_action_t;

typedef struct cl_state {
    bool have_keys;
    uint8_t phase;
    uint8_t identity_priv[32];
    uint8_t ca_priv[32];
    uint8_t archive_key[16];
    uint8_t tag_key[32];
    uint8_t identity_pub[65];
    uint8_t ca_pub[65];
    uint8_t *owner_cert;
    size_t owner_len;
    uint8_t owner_hash[32];
    uint8_t owner_x5t[8];
    uint8_t *ca_cert;
    size_t ca_len;
    uint8_t *id_cert;
    size_t id_len;
    uint32_t next_client_id;
    uint32_t next_token_id;
    uint64_t next_serial;
    int64_t clock_ms; /* latest time the core accepted (monotonic inside the core) */
    cl_client_t *clients;
    size_t n_clients, cap_clients;
    cl_token_t *tokens;
    size_t n_tokens, cap_tokens;
    cl_evtype_t *evtypes;
    size_t n_evtypes, cap_evtypes;
    cl_mobj_t *objs; /* sorted by (kind, name) */
    size_t n_objs, cap_objs;
    cl_action_t *actions; /* the delivery queue, by increasing id */
    size_t n_actions, cap_actions;
    uint64_t next_action_id;
} cl_state_t;

/* Record opcodes (the first array element of a state record). */
enum {
    CL_REC_KEYS = 1,
    CL_REC_OWNER = 2,
    CL_REC_PROVISION = 3,
    CL_REC_TOKEN = 4,
    CL_REC_ENROLL = 5,
    CL_REC_REVOKE = 6,
    CL_REC_PERMS = 7,
    CL_REC_CLOCK = 8,
    CL_REC_EVTYPE = 9,
    CL_REC_GROUPS = 10,
    CL_REC_MODEL = 11,
    CL_REC_RULE_FLAGS = 12,
    CL_REC_EFFECTS = 13,
    CL_REC_DONE = 14,
    CL_REC_SCENARIO = 15,
    CL_REC_SCENARIO_DEL = 16,
    CL_REC_EVTYPE_DEL = 17,
};

#define CL_STATE_SNAPSHOT_VERSION 2

void cl_state_free(cl_state_t *s);
/** Applies one record (from the sealed log or just appended); validates everything. */
cl_status_t cl_state_apply(cl_state_t *s, const uint8_t *rec, size_t len) CL_MUST_CHECK;
/** Replaces the state with a snapshot's contents. */
cl_status_t cl_state_restore(cl_state_t *s, const uint8_t *snap, size_t len) CL_MUST_CHECK;
/** Encodes a snapshot (heap buffer, caller frees with cl_wipe + free). */
cl_status_t cl_state_snapshot(const cl_state_t *s, uint8_t **out, size_t *out_len) CL_MUST_CHECK;
cl_client_t *cl_state_client(cl_state_t *s, uint32_t id);
cl_client_t *cl_state_client_by_x5t(cl_state_t *s, const uint8_t x5t[8]);
cl_client_t *cl_state_client_by_hash(cl_state_t *s, const uint8_t hash[32]);
cl_token_t *cl_state_token_by_hash(cl_state_t *s, const uint8_t hash[32]);
cl_evtype_t *cl_state_evtype(cl_state_t *s, const char *name, size_t len);
/** Creates or replaces an event type (its schema bytes are copied). */
cl_status_t cl_state_put_evtype(cl_state_t *s, const cl_evtype_t *t) CL_MUST_CHECK;
void cl_state_del_evtype(cl_state_t *s, const char *name, size_t len);
/* model_state.c: the model objects, the action queue and their records */
cl_mobj_t *cl_model_get(cl_state_t *s, int kind, const char *name, size_t len);
/** Applies a model record (op >= CL_REC_GROUPS); the caller decoded [op, t]. */
cl_status_t cl_model_apply(cl_state_t *s, uint64_t op, cl_cbor_dec_t *d, size_t n,
                           int64_t t) CL_MUST_CHECK;
void cl_model_free(cl_state_t *s);
/** The snapshot element holding the model (objects, queue, counters). */
void cl_model_encode(cl_cbor_enc_t *e, const cl_state_t *s);
cl_status_t cl_model_decode(cl_state_t *s, cl_cbor_dec_t *d) CL_MUST_CHECK;
/** A valid model name: 1..max bytes of [A-Za-z0-9._-]. */
bool cl_model_name_valid(const char *p, size_t len, size_t max);
/** Whether a client is in a group (by its groups list). */
bool cl_client_in_group(const cl_client_t *cl, const char *g, size_t len);
/** Pending actions of a target: index of the first at or after `from`, or s->n_actions. */
size_t cl_actions_next(const cl_state_t *s, uint32_t target, size_t from);
size_t cl_actions_count(const cl_state_t *s, uint32_t target);
cl_action_t *cl_action_get(cl_state_t *s, uint64_t id);

/** A valid event type name: 1..64 printable ASCII bytes, no spaces, not "*". */
bool cl_evtype_name_valid(const char *name, size_t len);
/** A well-formed permission list (see CL_PERMS_MAX). */
bool cl_perms_valid(const uint8_t *perms, size_t len);
/** Whether the list allows publishing events of this type. */
bool cl_perms_allow(const uint8_t *perms, size_t len, const char *type, size_t type_len);

/* ---- sessions (session.c) ---- */
typedef enum cl_sess_state {
    CL_SESS_FREE = 0,
    CL_SESS_HALF_OPEN = 1,
    CL_SESS_ESTABLISHED = 2,
} cl_sess_state_t;

#define CL_PEER_CRED_MAX 1200

typedef struct cl_session {
    uint8_t state;
    uint8_t role; /* cl_role_t of the authenticated peer */
    uint32_t client_id;
    uint8_t c_r[CL_EDHOC_MAX_CID];
    size_t c_r_len;
    int64_t created_ms, used_ms;
    uint8_t enrollee_pub[65]; /* the key an enrollee proved in EDHOC */
    cl_edhoc_t edhoc;
    cl_oscore_ctx_t oscore;
    /* the archive tag of the last event type this session published (its
     * source is the session's client): a steady publisher pays one HMAC */
    uint8_t tag_type_len; /* 0: none yet */
    char tag_type[CL_EVTYPE_MAX_NAME];
    uint8_t tag_val[16];
    /* the last large response, served block-wise (inner Block2, RFC 7959) */
    uint8_t *blk_body; /* heap, plaintext: wiped when replaced or freed */
    size_t blk_len;
    uint8_t blk_code;
    uint16_t blk_cf; /* its Content-Format */
    uint8_t blk_key[32]; /* SHA-256 of the request's path and queries */
    /* a request body arriving block-wise (inner Block1, RFC 7959), plaintext: wiped */
    uint8_t *b1_body;
    size_t b1_len;
    uint32_t b1_next; /* the block number expected next */
    uint8_t b1_szx;
    uint8_t b1_key[32]; /* SHA-256 of the request's method, path and queries */
    /* an observation of GET /actions (CoAP Observe) or a held long poll (HTTP) */
    bool obs_active;
    bool obs_oneshot; /* HTTP long poll: one answer, then over */
    uint8_t obs_token[8];
    uint8_t obs_tkl;
    uint16_t obs_transport;
    uint16_t obs_mid; /* of the last notification (an RST names it) */
    uint32_t obs_seq;
    uint64_t obs_peer;
    int64_t obs_sent_ms;   /* last notification */
    uint64_t obs_last_id;  /* newest action id notified */
    cl_oscore_req_t obs_req;
} cl_session_t;

/* Evidence served block-wise by GET /attestation, per nonce (public data). */
#define CL_EVIDENCE_CACHE 4
typedef struct cl_evcache {
    uint8_t nonce[CL_CORE_NONCE_MAX];
    size_t nonce_len;
    uint8_t *ev;
    size_t ev_len;
} cl_evcache_t;

/* ---- the instance ---- */
typedef struct cl_core {
    uint64_t handle;
    cl_tee_platform_t platform;
    cl_host_ops_t host;
    cl_core_config_t cfg;
    cl_crypto_t crypto;
    bool crypto_ok;
    cl_slog_t log;
    bool log_open;
    cl_state_t st;
    cl_key_t identity_key; /* handles into crypto */
    cl_key_t ca_key;
    cl_key_t archive_aead;
    /* archive nonces: a random 64-bit prefix per boot (redrawn when the 32-bit
     * counter wraps) || counter - unique per key without a read_rand per event */
    uint8_t arch_nonce_prefix[8];
    uint32_t arch_nonce_ctr;
    bool arch_nonce_ready;
    /* archive rows of the current handle() batch, handed to the host in ONE
     * archive_put at its end (one ocall per batch, not per request) */
    bool arch_defer;   /* inside handle(): queue instead of putting */
    bool arch_failed;  /* a put of this batch failed: the batch fails */
    cl_archive_rec_t *arch_recs; /* data = offset into arch_buf until the flush */
    size_t arch_n, arch_cap;
    uint8_t *arch_buf;
    size_t arch_used, arch_buf_cap;
    /* EDHOC responder configuration */
    int suites[1];
    cl_edhoc_auth_t auth;
    uint8_t id_cred[CL_PEER_CRED_MAX * 2 + 16]; /* {33: [identity_cert, ca_cert]} */
    size_t id_cred_len;
    uint8_t cred[CL_PEER_CRED_MAX + 8]; /* bstr(identity_cert) */
    size_t cred_len;
    cl_edhoc_config_t edhoc_cfg;
    /* peer credential callback scratch */
    cl_session_t *cb_session;
    uint8_t peer_cred[CL_PEER_CRED_MAX + 8];
    cl_key_t peer_key;
    char why[96];
    /* sessions */
    cl_session_t *sessions;
    size_t n_sessions;
    uint16_t next_mid;
    cl_evcache_t evcache[CL_EVIDENCE_CACHE];
    unsigned evnext;
    int64_t now_ms;
    uint64_t stats_requests, stats_refused;
    /* the rules engine (core/engine) and what a batch of events caused */
    struct cl_eca *eca;
    struct cl_effects *fx;
    uint64_t stats_actions, stats_expired, stats_notified;
    int64_t next_retry_ms;
} cl_core_t;

/* session.c */
cl_status_t cl_sessions_init(cl_core_t *c) CL_MUST_CHECK;
void cl_sessions_free(cl_core_t *c);
/** Rebuilds the EDHOC credential once the core is provisioned. */
cl_status_t cl_sessions_set_identity(cl_core_t *c) CL_MUST_CHECK;
/** Handles one POST /.well-known/edhoc request; writes the CoAP response. */
cl_status_t cl_sessions_edhoc(cl_core_t *c, const cl_coap_msg_t *req, uint8_t *out, size_t out_size,
                              size_t *out_len);
cl_oscore_ctx_t *cl_sessions_lookup(void *arg, const uint8_t *kid, size_t kid_len,
                                    const uint8_t *kid_context, size_t kid_context_len,
                                    bool has_kid_context);
cl_session_t *cl_sessions_of_ctx(cl_core_t *c, const cl_oscore_ctx_t *ctx);
/** Drops every session of a client (revocation). */
void cl_sessions_drop_client(cl_core_t *c, uint32_t client_id);
void cl_sessions_expire(cl_core_t *c);
void cl_session_free(cl_session_t *x);

/* resources.c */
/**
 * Archive rows: put at once outside handle(); inside it (c->arch_defer)
 * copied and queued for cl_archive_flush at the batch's end (flushed early
 * when the queue holds CL_ARCHIVE_QUEUE_BYTES). CL_ERR_PERSIST marks the batch
 * failed: none of its answers may leave (the host drops them, as for a
 * failed group commit).
 */
#define CL_ARCHIVE_QUEUE_BYTES (256u * 1024u)
cl_status_t cl_archive_queue(cl_core_t *c, const cl_archive_rec_t *recs, size_t n) CL_MUST_CHECK;
/** Hands the queued rows to the host in one archive_put; empties the queue. */
cl_status_t cl_archive_flush(cl_core_t *c) CL_MUST_CHECK;
/** Drops the queue (a failed batch) and frees its buffers when `release`. */
void cl_archive_discard(cl_core_t *c, bool release);
/** Handles one transport message; *out_len 0 = no answer (*flags: CL_BATCH_F_*). */
void cl_core_dispatch(cl_core_t *c, uint64_t peer, uint16_t transport, uint8_t *msg, size_t len,
                      uint8_t *out, size_t out_size, size_t *out_len, uint16_t *flags);
/** The evidence map for a nonce (attest ecall and GET /attestation). */
cl_status_t cl_core_evidence(cl_core_t *c, const uint8_t *nonce, size_t nonce_len, uint8_t *out,
                             size_t out_size, size_t *out_len) CL_MUST_CHECK;

/* core.c */
/** Appends a record durably, then applies it to the state. */
cl_status_t cl_core_commit(cl_core_t *c, const uint8_t *rec, size_t len) CL_MUST_CHECK;
/** Non-sensitive log line through the host. */
void cl_core_log(cl_core_t *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Current time: the host's clock, never going backwards inside the core. */
int64_t cl_core_now(cl_core_t *c);
/**
 * Makes the core's latest time durable (a CLOCK record) when it moved on by at
 * least `min_step_ms` since the last durable one, so a restarted core cannot be
 * sent back further than that (docs/sealed-state.md, untrusted time).
 */
void cl_core_persist_clock(cl_core_t *c, int64_t min_step_ms);
/** Loads the key handles from the state's key material. */
cl_status_t cl_core_load_keys(cl_core_t *c) CL_MUST_CHECK;
/** ES256 signing callback over the core's CA key (cl_pki_sign_fn). */
cl_status_t cl_core_ca_sign(void *arg, const uint8_t *tbs, size_t tbs_len, uint8_t sig[64]);

/* rules.c: the engine inside the core (events, effects, delivery) */
cl_status_t cl_rules_init(cl_core_t *c) CL_MUST_CHECK;
void cl_rules_free(cl_core_t *c);
/** (Re)loads one rule from the state into the engine (absent: removed). */
void cl_rules_sync(cl_core_t *c, const char *name, size_t len);
/** Loads every rule (boot). */
cl_status_t cl_rules_load_all(cl_core_t *c) CL_MUST_CHECK;
/** Runs the rules on a published event (after it was archived). */
void cl_rules_event(cl_core_t *c, const char *type, size_t type_len, uint32_t source,
                    int64_t time_ms, const uint8_t *props, size_t props_len);
/** Makes what the engine caused durable (one EFFECTS record), then notifies. */
cl_status_t cl_rules_commit(cl_core_t *c) CL_MUST_CHECK;
/** Timers: time triggers, notification retries, expiry. */
void cl_rules_tick(cl_core_t *c);
/** Notifies the observers of a client about its pending actions. */
void cl_rules_notify(cl_core_t *c, uint32_t client, bool force);
/** An RST from a peer: cancels the observation its notification belonged to. */
void cl_rules_rst(cl_core_t *c, uint64_t peer, uint16_t mid);
/** {"actions": [the client's oldest pending, <= 16]}; *newest: the last id listed. */
cl_status_t cl_rules_pending_body(cl_core_t *c, uint32_t client, uint8_t *out, size_t size,
                                  size_t *len, uint64_t *newest, size_t *count) CL_MUST_CHECK;
/** Encodes a pending action as {"id","action","properties","time","rule","expires"}. */
void cl_action_encode(cl_cbor_enc_t *e, const cl_action_t *a);

#endif
