/*
 * state.c - the model the core keeps in enclave memory (keys, owner, the
 * core's certificates, enrollment tokens, clients) and its two encodings:
 * state records (one per mutation, appended to the sealed log) and the
 * snapshot (the whole state, sealed periodically).
 *
 * Every mutation goes record -> durable append -> cl_state_apply, and boot
 * replays the same records through the same function, so the live state
 * and the rebuilt state cannot diverge. Records come back from the host
 * sealed and chained (sealed_log.c), but apply still validates every field:
 * a bug or a future format must fail safe, not corrupt memory.
 *
 * Record := [op, time_ms, ...]   (CBOR array)
 *   KEYS      [1, t, id_priv 32, id_pub 65, ca_priv 32, ca_pub 65, archive_key 16, tag_key 32]
 *   OWNER     [2, t, owner_der, sha256 32, x5t 8]
 *   PROVISION [3, t, ca_der, identity_der]
 *   TOKEN     [4, t, id, sha256(token) 32, role, expires_ms, name, perms]
 *   ENROLL    [5, t, token_id, client_id, role, name, cert_der, sha256 32, x5t 8, serial, perms]
 *   REVOKE    [6, t, client_id]
 *   PERMS     [7, t, client_id, perms]
 *   CLOCK     [8, t]        (the core's clock moved on; t is all it carries)
 *   EVTYPE    [9, t, name, description, history_roles, schema | null, scenario]
 *             (create or update; the 5-element form of snapshot v1 logs has no schema)
 *   10..16    the model's records: model_state.c
 * perms = the permission list as a bstr holding its CBOR array (cl_perms_valid).
 */
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

static const char *const ROLE_NAMES[] = {"none",   "owner",   "admin",   "user",
                                         "device", "service", "enrollee"};

const char *cl_role_name(int role)
{
    return role >= 0 && role <= CL_ROLE_ENROLLEE ? ROLE_NAMES[role] : "?";
}

int cl_role_parse(const char *s, size_t len)
{
    for (int r = CL_ROLE_ADMIN; r <= CL_ROLE_SERVICE; r++)
        if (strlen(ROLE_NAMES[r]) == len && memcmp(ROLE_NAMES[r], s, len) == 0)
            return r;
    return CL_ROLE_NONE;
}

static void free_blob(uint8_t **p, size_t *len)
{
    if (*p != NULL) {
        cl_wipe(*p, *len);
        free(*p);
    }
    *p = NULL;
    *len = 0;
}

void cl_state_free(cl_state_t *s)
{
    free_blob(&s->owner_cert, &s->owner_len);
    free_blob(&s->ca_cert, &s->ca_len);
    free_blob(&s->id_cert, &s->id_len);
    for (size_t i = 0; i < s->n_clients; i++) {
        free_blob(&s->clients[i].cert, &s->clients[i].cert_len);
        free(s->clients[i].groups);
    }
    free(s->clients);
    if (s->tokens != NULL)
        cl_wipe(s->tokens, s->cap_tokens * sizeof *s->tokens);
    free(s->tokens);
    for (size_t i = 0; i < s->n_evtypes; i++)
        free(s->evtypes[i].schema);
    free(s->evtypes);
    cl_model_free(s);
    cl_wipe(s, sizeof *s);
}

static cl_status_t dup_blob(const uint8_t *p, size_t len, uint8_t **out, size_t *out_len)
{
    if (len == 0 || len > CL_PKI_MAX_CERT_BYTES)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    uint8_t *q = malloc(len);
    if (q == NULL)
        return CL_FAIL(CL_ERR_FULL);
    memcpy(q, p, len);
    free_blob(out, out_len);
    *out = q;
    *out_len = len;
    return CL_OK;
}

cl_client_t *cl_state_client(cl_state_t *s, uint32_t id)
{
    /* ids are handed out in increasing order and clients are only appended: binary search */
    size_t lo = 0, hi = s->n_clients;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->clients[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n_clients && s->clients[lo].id == id ? &s->clients[lo] : NULL;
}

cl_client_t *cl_state_client_by_x5t(cl_state_t *s, const uint8_t x5t[8])
{
    for (size_t i = 0; i < s->n_clients; i++)
        if (memcmp(s->clients[i].x5t, x5t, 8) == 0)
            return &s->clients[i];
    return NULL;
}

cl_client_t *cl_state_client_by_hash(cl_state_t *s, const uint8_t hash[32])
{
    for (size_t i = 0; i < s->n_clients; i++)
        if (memcmp(s->clients[i].cert_hash, hash, 32) == 0)
            return &s->clients[i];
    return NULL;
}

cl_token_t *cl_state_token_by_hash(cl_state_t *s, const uint8_t hash[32])
{
    for (size_t i = 0; i < s->n_tokens; i++)
        if (cl_ct_memcmp(s->tokens[i].hash, hash, 32) == 0)
            return &s->tokens[i];
    return NULL;
}

static cl_token_t *token_by_id(cl_state_t *s, uint32_t id)
{
    for (size_t i = 0; i < s->n_tokens; i++)
        if (s->tokens[i].id == id)
            return &s->tokens[i];
    return NULL;
}

bool cl_evtype_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > CL_EVTYPE_MAX_NAME || (len == 1 && name[0] == '*'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (name[i] <= 0x20 || name[i] >= 0x7f)
            return false;
    return true;
}

cl_evtype_t *cl_state_evtype(cl_state_t *s, const char *name, size_t len)
{
    for (size_t i = 0; i < s->n_evtypes; i++)
        if (strlen(s->evtypes[i].name) == len && memcmp(s->evtypes[i].name, name, len) == 0)
            return &s->evtypes[i];
    return NULL;
}

bool cl_perms_valid(const uint8_t *perms, size_t len)
{
    cl_cbor_dec_t d;
    size_t n;
    if (perms == NULL || len == 0 || len > CL_PERMS_MAX)
        return false;
    cl_cbor_dec_init(&d, perms, len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK || n == 0 || n > CL_PERMS_MAX_ITEMS)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t tl;
        if (cl_cbor_dec_tstr(&d, &t, &tl) != CL_OK || tl == 0 || tl > CL_PERMS_MAX_TYPE)
            return false;
        for (size_t k = 0; k < tl; k++)
            if (t[k] <= 0x20 || t[k] >= 0x7f)
                return false;
    }
    return cl_cbor_dec_at_end(&d);
}

bool cl_perms_allow(const uint8_t *perms, size_t len, const char *type, size_t type_len)
{
    cl_cbor_dec_t d;
    size_t n;
    cl_cbor_dec_init(&d, perms, len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *t;
        size_t tl;
        if (cl_cbor_dec_tstr(&d, &t, &tl) != CL_OK)
            return false;
        if ((tl == 1 && t[0] == '*') || (tl == type_len && memcmp(t, type, tl) == 0))
            return true;
    }
    return false;
}

/* ---- decoding helpers (each refuses anything but the exact shape) ---- */

static cl_status_t dec_fixed(cl_cbor_dec_t *d, uint8_t *out, size_t len)
{
    const uint8_t *p;
    size_t n;
    if (cl_cbor_dec_bstr(d, &p, &n) != CL_OK || n != len)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    memcpy(out, p, len);
    return CL_OK;
}

static cl_status_t dec_u32(cl_cbor_dec_t *d, uint32_t *v)
{
    uint64_t x;
    if (cl_cbor_dec_uint(d, &x) != CL_OK || x > UINT32_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *v = (uint32_t)x;
    return CL_OK;
}

static cl_status_t dec_name(cl_cbor_dec_t *d, char out[CL_NAME_MAX])
{
    const char *p;
    size_t n;
    if (cl_cbor_dec_tstr(d, &p, &n) != CL_OK || n >= CL_NAME_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    memcpy(out, p, n);
    out[n] = '\0';
    return CL_OK;
}

static cl_status_t dec_role(cl_cbor_dec_t *d, uint8_t *role)
{
    uint32_t r;
    if (dec_u32(d, &r) != CL_OK || r < CL_ROLE_ADMIN || r > CL_ROLE_SERVICE)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    *role = (uint8_t)r;
    return CL_OK;
}

static cl_status_t dec_blob(cl_cbor_dec_t *d, const uint8_t **p, size_t *n)
{
    if (cl_cbor_dec_bstr(d, p, n) != CL_OK || *n == 0 || *n > CL_PKI_MAX_CERT_BYTES)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return CL_OK;
}

/* perms: a bstr holding a valid permission list */
static cl_status_t dec_perms(cl_cbor_dec_t *d, uint8_t out[CL_PERMS_MAX], uint16_t *out_len)
{
    const uint8_t *p;
    size_t n;
    if (cl_cbor_dec_bstr(d, &p, &n) != CL_OK || !cl_perms_valid(p, n))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    memcpy(out, p, n);
    *out_len = (uint16_t)n;
    return CL_OK;
}

static cl_status_t grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return CL_OK;
    if (n >= CL_STATE_MAX_ENTRIES)
        return CL_FAIL(CL_ERR_FULL);
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = calloc(nc, elem);
    if (p == NULL)
        return CL_FAIL(CL_ERR_FULL);
    if (*arr != NULL) {
        memcpy(p, *arr, n * elem);
        cl_wipe(*arr, *cap * elem);
        free(*arr);
    }
    *arr = p;
    *cap = nc;
    return CL_OK;
}

/* [name, description, history_roles] into t */
static cl_status_t dec_evtype(cl_cbor_dec_t *d, cl_evtype_t *t);

/* schema | null, scenario (the EVTYPE record's tail); the schema points into the record. */
static cl_status_t dec_evtype_tail(cl_cbor_dec_t *d, cl_evtype_t *t)
{
    cl_cbor_type_t ty;
    const char *scn;
    size_t sl;
    if (cl_cbor_dec_peek(d, &ty) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (ty == CL_CBOR_MAP) {
        const uint8_t *p;
        size_t n;
        if (cl_cbor_dec_raw(d, &p, &n) != CL_OK || n > CL_MODEL_MAX_DOC)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        t->schema = (uint8_t *)(uintptr_t)p;
        t->schema_len = n;
    } else if (cl_cbor_dec_null(d) != CL_OK) {
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (cl_cbor_dec_tstr(d, &scn, &sl) != CL_OK ||
        (sl > 0 && !cl_model_name_valid(scn, sl, CL_NAME_MAX)))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    memcpy(t->scenario, scn, sl);
    return CL_OK;
}

static cl_status_t dec_evtype(cl_cbor_dec_t *d, cl_evtype_t *t)
{
    const char *p, *q;
    size_t pn, qn;
    uint64_t roles;
    memset(t, 0, sizeof *t);
    if (cl_cbor_dec_tstr(d, &p, &pn) != CL_OK || !cl_evtype_name_valid(p, pn) ||
        cl_cbor_dec_tstr(d, &q, &qn) != CL_OK || qn > CL_EVTYPE_MAX_DESC ||
        cl_cbor_dec_uint(d, &roles) != CL_OK || roles > 0xff)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    memcpy(t->name, p, pn);
    memcpy(t->desc, q, qn);
    t->history_roles = (uint8_t)roles;
    return CL_OK;
}

/*
 * Creates or replaces an event type; t->schema points at bytes the caller
 * owns (copied here). The version goes up by one on every change unless
 * t->version is set (snapshot restore).
 */
cl_status_t cl_state_put_evtype(cl_state_t *s, const cl_evtype_t *t)
{
    cl_evtype_t nt = *t;
    nt.schema = NULL;
    nt.schema_len = 0;
    if (t->schema != NULL) {
        if ((nt.schema = malloc(t->schema_len)) == NULL)
            return CL_FAIL(CL_ERR_FULL);
        memcpy(nt.schema, t->schema, t->schema_len);
        nt.schema_len = t->schema_len;
    }
    cl_evtype_t *old = cl_state_evtype(s, t->name, strlen(t->name));
    if (old != NULL) {
        if (nt.version == 0)
            nt.version = old->version + 1;
        free(old->schema);
        *old = nt;
        return CL_OK;
    }
    if (nt.version == 0)
        nt.version = 1;
    cl_status_t st = s->n_evtypes >= CL_EVTYPE_MAX ? CL_FAIL(CL_ERR_FULL) : CL_OK;
    void *arr = s->evtypes;
    if (st == CL_OK)
        st = grow(&arr, &s->cap_evtypes, s->n_evtypes, sizeof *s->evtypes);
    s->evtypes = arr;
    if (st != CL_OK) {
        free(nt.schema);
        return st;
    }
    s->evtypes[s->n_evtypes++] = nt;
    return CL_OK;
}

void cl_state_del_evtype(cl_state_t *s, const char *name, size_t len)
{
    cl_evtype_t *t = cl_state_evtype(s, name, len);
    if (t == NULL)
        return;
    size_t i = (size_t)(t - s->evtypes);
    free(t->schema);
    memmove(&s->evtypes[i], &s->evtypes[i + 1], (s->n_evtypes - i - 1) * sizeof *s->evtypes);
    s->n_evtypes--;
    memset(&s->evtypes[s->n_evtypes], 0, sizeof s->evtypes[s->n_evtypes]);
}

static cl_status_t add_token(cl_state_t *s, const cl_token_t *t)
{
    if (token_by_id(s, t->id) != NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    void *arr = s->tokens;
    cl_status_t st = grow(&arr, &s->cap_tokens, s->n_tokens, sizeof *s->tokens);
    s->tokens = arr;
    if (st != CL_OK)
        return st;
    s->tokens[s->n_tokens++] = *t;
    if (t->id >= s->next_token_id)
        s->next_token_id = t->id + 1;
    return CL_OK;
}

static cl_status_t add_client(cl_state_t *s, cl_client_t *c, const uint8_t *cert, size_t cert_len)
{
    if (c->id == CL_OWNER_ID || (s->n_clients > 0 && c->id <= s->clients[s->n_clients - 1].id) ||
        cl_state_client_by_hash(s, c->cert_hash) != NULL)
        return CL_FAIL(CL_ERR_BAD_INPUT); /* ids only increase: cl_state_client searches */
    void *arr = s->clients;
    cl_status_t st = grow(&arr, &s->cap_clients, s->n_clients, sizeof *s->clients);
    s->clients = arr;
    if (st != CL_OK)
        return st;
    c->cert = NULL;
    c->cert_len = 0;
    if ((st = dup_blob(cert, cert_len, &c->cert, &c->cert_len)) != CL_OK)
        return st;
    s->clients[s->n_clients++] = *c;
    if (c->id >= s->next_client_id)
        s->next_client_id = c->id + 1;
    return CL_OK;
}

/*
 * Applies one record atomically: every field is decoded and checked into
 * locals first (including "nothing after the record"), and the state is only
 * touched once the whole record is known good, so a refused record leaves
 * the state exactly as it was (fuzz_core_state checks this).
 */
cl_status_t cl_state_apply(cl_state_t *s, const uint8_t *rec, size_t len)
{
    cl_cbor_dec_t d;
    size_t n;
    uint64_t op;
    int64_t t;
    const uint8_t *p = NULL, *q = NULL;
    size_t pn = 0, qn = 0;
    cl_status_t st = CL_OK;

    cl_cbor_dec_init(&d, rec, len);
    if (cl_cbor_dec_array(&d, &n) != CL_OK || n < 2 || cl_cbor_dec_uint(&d, &op) != CL_OK ||
        cl_cbor_dec_int(&d, &t) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    switch (op) {
    case CL_REC_KEYS: {
        uint8_t ip[32], iq[65], cp[32], cq[65], ak[16], tk[32];
        if (n != 8 || s->have_keys || dec_fixed(&d, ip, 32) != CL_OK ||
            dec_fixed(&d, iq, 65) != CL_OK || dec_fixed(&d, cp, 32) != CL_OK ||
            dec_fixed(&d, cq, 65) != CL_OK || dec_fixed(&d, ak, 16) != CL_OK ||
            dec_fixed(&d, tk, 32) != CL_OK || !cl_cbor_dec_at_end(&d))
            st = CL_FAIL(CL_ERR_BAD_INPUT);
        if (st == CL_OK) {
            memcpy(s->identity_priv, ip, 32);
            memcpy(s->identity_pub, iq, 65);
            memcpy(s->ca_priv, cp, 32);
            memcpy(s->ca_pub, cq, 65);
            memcpy(s->archive_key, ak, 16);
            memcpy(s->tag_key, tk, 32);
            s->have_keys = true;
            if (s->next_client_id == 0)
                s->next_client_id = 1;
            if (s->next_token_id == 0)
                s->next_token_id = 1;
            if (s->next_serial == 0)
                s->next_serial = 1;
        }
        cl_wipe(ip, sizeof ip);
        cl_wipe(cp, sizeof cp);
        cl_wipe(ak, sizeof ak);
        cl_wipe(tk, sizeof tk);
        if (st != CL_OK)
            return st;
        break;
    }
    case CL_REC_OWNER: {
        uint8_t h[32], x5t[8];
        uint8_t *copy = NULL;
        size_t copy_len = 0;
        if (n != 5 || s->phase != CL_PHASE_FRESH || !s->have_keys ||
            dec_blob(&d, &p, &pn) != CL_OK || dec_fixed(&d, h, 32) != CL_OK ||
            dec_fixed(&d, x5t, 8) != CL_OK || !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if ((st = dup_blob(p, pn, &copy, &copy_len)) != CL_OK)
            return st;
        free_blob(&s->owner_cert, &s->owner_len);
        s->owner_cert = copy;
        s->owner_len = copy_len;
        memcpy(s->owner_hash, h, 32);
        memcpy(s->owner_x5t, x5t, 8);
        s->phase = CL_PHASE_CLAIMED;
        break;
    }
    case CL_REC_PROVISION: {
        uint8_t *ca = NULL, *id = NULL;
        size_t ca_len = 0, id_len = 0;
        if (n != 4 || s->phase != CL_PHASE_CLAIMED || dec_blob(&d, &p, &pn) != CL_OK ||
            dec_blob(&d, &q, &qn) != CL_OK || !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if ((st = dup_blob(p, pn, &ca, &ca_len)) != CL_OK ||
            (st = dup_blob(q, qn, &id, &id_len)) != CL_OK) {
            free_blob(&ca, &ca_len);
            return st;
        }
        free_blob(&s->ca_cert, &s->ca_len);
        free_blob(&s->id_cert, &s->id_len);
        s->ca_cert = ca;
        s->ca_len = ca_len;
        s->id_cert = id;
        s->id_len = id_len;
        s->phase = CL_PHASE_PROVISIONED;
        break;
    }
    case CL_REC_TOKEN: {
        cl_token_t tk;
        memset(&tk, 0, sizeof tk);
        if (n != 8 || s->phase != CL_PHASE_PROVISIONED || dec_u32(&d, &tk.id) != CL_OK ||
            dec_fixed(&d, tk.hash, 32) != CL_OK || dec_role(&d, &tk.role) != CL_OK ||
            cl_cbor_dec_int(&d, &tk.expires_ms) != CL_OK || dec_name(&d, tk.name) != CL_OK ||
            dec_perms(&d, tk.perms, &tk.perms_len) != CL_OK || !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if ((st = add_token(s, &tk)) != CL_OK) /* checks the id first; grows, then appends */
            return st;
        break;
    }
    case CL_REC_ENROLL: {
        cl_client_t c;
        uint32_t token_id;
        uint64_t serial;
        memset(&c, 0, sizeof c);
        if (n != 11 || s->phase != CL_PHASE_PROVISIONED || dec_u32(&d, &token_id) != CL_OK ||
            dec_u32(&d, &c.id) != CL_OK || dec_role(&d, &c.role) != CL_OK ||
            dec_name(&d, c.name) != CL_OK || dec_blob(&d, &p, &pn) != CL_OK ||
            dec_fixed(&d, c.cert_hash, 32) != CL_OK || dec_fixed(&d, c.x5t, 8) != CL_OK ||
            cl_cbor_dec_uint(&d, &serial) != CL_OK ||
            dec_perms(&d, c.perms, &c.perms_len) != CL_OK || !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        cl_token_t *tk = token_by_id(s, token_id);
        if (tk == NULL || tk->used)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if ((st = add_client(s, &c, p, pn)) != CL_OK) /* all checks before it appends */
            return st;
        tk->used = true;
        if (serial >= s->next_serial)
            s->next_serial = serial + 1;
        break;
    }
    case CL_REC_REVOKE: {
        uint32_t id;
        if (n != 3 || dec_u32(&d, &id) != CL_OK || !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        cl_client_t *c = cl_state_client(s, id);
        if (c == NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        c->revoked = true;
        break;
    }
    case CL_REC_PERMS: {
        uint32_t id;
        uint8_t perms[CL_PERMS_MAX];
        uint16_t perms_len;
        if (n != 4 || dec_u32(&d, &id) != CL_OK || dec_perms(&d, perms, &perms_len) != CL_OK ||
            !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        cl_client_t *c = cl_state_client(s, id);
        if (c == NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        memcpy(c->perms, perms, perms_len);
        c->perms_len = perms_len;
        break;
    }
    case CL_REC_CLOCK:
        if (n != 2 || !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        break;
    case CL_REC_EVTYPE: {
        cl_evtype_t et;
        if ((n != 5 && n != 7) || s->phase != CL_PHASE_PROVISIONED ||
            dec_evtype(&d, &et) != CL_OK || (n == 7 && dec_evtype_tail(&d, &et) != CL_OK) ||
            !cl_cbor_dec_at_end(&d))
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if ((st = cl_state_put_evtype(s, &et)) != CL_OK)
            return st;
        break;
    }
    default:
        if (op < CL_REC_GROUPS || (st = cl_model_apply(s, op, &d, n, t)) != CL_OK)
            return op < CL_REC_GROUPS ? CL_FAIL(CL_ERR_BAD_INPUT) : st;
        break;
    }
    if (t > s->clock_ms)
        s->clock_ms = t;
    return CL_OK;
}

/* ---- snapshot ---- */

static void enc_opt_blob(cl_cbor_enc_t *e, const uint8_t *p, size_t len)
{
    if (p == NULL)
        cl_cbor_enc_null(e);
    else
        cl_cbor_enc_bstr(e, p, len);
}

static void enc_state(cl_cbor_enc_t *e, const cl_state_t *s)
{
    cl_cbor_enc_array(e, 22);
    cl_cbor_enc_uint(e, CL_STATE_SNAPSHOT_VERSION);
    cl_cbor_enc_uint(e, s->phase);
    cl_cbor_enc_bool(e, s->have_keys);
    cl_cbor_enc_bstr(e, s->identity_priv, 32);
    cl_cbor_enc_bstr(e, s->identity_pub, 65);
    cl_cbor_enc_bstr(e, s->ca_priv, 32);
    cl_cbor_enc_bstr(e, s->ca_pub, 65);
    cl_cbor_enc_bstr(e, s->archive_key, 16);
    cl_cbor_enc_bstr(e, s->tag_key, 32);
    enc_opt_blob(e, s->owner_cert, s->owner_len);
    cl_cbor_enc_bstr(e, s->owner_hash, 32);
    cl_cbor_enc_bstr(e, s->owner_x5t, 8);
    enc_opt_blob(e, s->ca_cert, s->ca_len);
    enc_opt_blob(e, s->id_cert, s->id_len);
    cl_cbor_enc_uint(e, s->next_client_id);
    cl_cbor_enc_uint(e, s->next_token_id);
    cl_cbor_enc_uint(e, s->next_serial);
    cl_cbor_enc_int(e, s->clock_ms);
    cl_cbor_enc_array(e, s->n_tokens);
    for (size_t i = 0; i < s->n_tokens; i++) {
        const cl_token_t *t = &s->tokens[i];
        cl_cbor_enc_array(e, 7);
        cl_cbor_enc_uint(e, t->id);
        cl_cbor_enc_uint(e, t->role);
        cl_cbor_enc_bool(e, t->used);
        cl_cbor_enc_int(e, t->expires_ms);
        cl_cbor_enc_bstr(e, t->hash, 32);
        cl_cbor_enc_tstr_z(e, t->name);
        cl_cbor_enc_bstr(e, t->perms, t->perms_len);
    }
    cl_cbor_enc_array(e, s->n_clients);
    for (size_t i = 0; i < s->n_clients; i++) {
        const cl_client_t *c = &s->clients[i];
        cl_cbor_enc_array(e, 9);
        cl_cbor_enc_uint(e, c->id);
        cl_cbor_enc_uint(e, c->role);
        cl_cbor_enc_bool(e, c->revoked);
        cl_cbor_enc_tstr_z(e, c->name);
        cl_cbor_enc_bstr(e, c->x5t, 8);
        cl_cbor_enc_bstr(e, c->cert_hash, 32);
        cl_cbor_enc_bstr(e, c->cert, c->cert_len);
        cl_cbor_enc_bstr(e, c->perms, c->perms_len);
        enc_opt_blob(e, c->groups, c->groups_len);
    }
    cl_cbor_enc_array(e, s->n_evtypes);
    for (size_t i = 0; i < s->n_evtypes; i++) {
        const cl_evtype_t *t = &s->evtypes[i];
        cl_cbor_enc_array(e, 6);
        cl_cbor_enc_tstr_z(e, t->name);
        cl_cbor_enc_tstr_z(e, t->desc);
        cl_cbor_enc_uint(e, t->history_roles);
        if (t->schema != NULL)
            cl_cbor_enc_raw(e, t->schema, t->schema_len);
        else
            cl_cbor_enc_null(e);
        cl_cbor_enc_tstr_z(e, t->scenario);
        cl_cbor_enc_uint(e, t->version);
    }
    cl_model_encode(e, s);
}

cl_status_t cl_state_snapshot(const cl_state_t *s, uint8_t **out, size_t *out_len)
{
    cl_cbor_enc_t e;
    size_t len;
    cl_cbor_enc_init(&e, NULL, 0);
    enc_state(&e, s);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (len > CL_CORE_MAX_SNAPSHOT - 4096)
        return CL_FAIL(CL_ERR_LIMIT);
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return CL_FAIL(CL_ERR_FULL);
    cl_cbor_enc_init(&e, buf, len);
    enc_state(&e, s);
    if (cl_cbor_enc_finish(&e, &len) != CL_OK) {
        cl_wipe(buf, len);
        free(buf);
        return CL_FAIL(CL_ERR_INVALID_ARG);
    }
    *out = buf;
    *out_len = len;
    return CL_OK;
}

static cl_status_t dec_opt_blob(cl_cbor_dec_t *d, uint8_t **out, size_t *out_len)
{
    cl_cbor_type_t ty;
    const uint8_t *p;
    size_t n;
    if (cl_cbor_dec_peek(d, &ty) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (ty != CL_CBOR_BSTR)
        return cl_cbor_dec_null(d) == CL_OK ? CL_OK : CL_FAIL(CL_ERR_BAD_INPUT);
    if (dec_blob(d, &p, &n) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    return dup_blob(p, n, out, out_len);
}

static cl_status_t restore(cl_state_t *s, cl_cbor_dec_t *d)
{
    size_t n;
    uint64_t v, phase;
    cl_status_t st;

    size_t top;
    if (cl_cbor_dec_array(d, &top) != CL_OK || (top != 21 && top != 22) ||
        cl_cbor_dec_uint(d, &v) != CL_OK || v != (top == 21 ? 1u : CL_STATE_SNAPSHOT_VERSION) ||
        cl_cbor_dec_uint(d, &phase) != CL_OK ||
        phase > CL_PHASE_PROVISIONED || cl_cbor_dec_bool(d, &s->have_keys) != CL_OK ||
        dec_fixed(d, s->identity_priv, 32) != CL_OK || dec_fixed(d, s->identity_pub, 65) != CL_OK ||
        dec_fixed(d, s->ca_priv, 32) != CL_OK || dec_fixed(d, s->ca_pub, 65) != CL_OK ||
        dec_fixed(d, s->archive_key, 16) != CL_OK || dec_fixed(d, s->tag_key, 32) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    s->phase = (uint8_t)phase;
    if ((st = dec_opt_blob(d, &s->owner_cert, &s->owner_len)) != CL_OK ||
        dec_fixed(d, s->owner_hash, 32) != CL_OK || dec_fixed(d, s->owner_x5t, 8) != CL_OK ||
        (st = dec_opt_blob(d, &s->ca_cert, &s->ca_len)) != CL_OK ||
        (st = dec_opt_blob(d, &s->id_cert, &s->id_len)) != CL_OK)
        return st != CL_OK ? st : CL_FAIL(CL_ERR_BAD_INPUT);
    if (dec_u32(d, &s->next_client_id) != CL_OK || dec_u32(d, &s->next_token_id) != CL_OK ||
        cl_cbor_dec_uint(d, &s->next_serial) != CL_OK || cl_cbor_dec_int(d, &s->clock_ms) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    /* phase and contents must agree */
    if ((s->phase >= CL_PHASE_CLAIMED) != (s->owner_cert != NULL) ||
        (s->phase == CL_PHASE_PROVISIONED) != (s->ca_cert != NULL && s->id_cert != NULL) ||
        (s->phase != CL_PHASE_FRESH && !s->have_keys))
        return CL_FAIL(CL_ERR_BAD_INPUT);
    if (cl_cbor_dec_array(d, &n) != CL_OK || n > CL_STATE_MAX_ENTRIES)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < n; i++) {
        cl_token_t t;
        size_t m;
        uint64_t role;
        memset(&t, 0, sizeof t);
        if (cl_cbor_dec_array(d, &m) != CL_OK || m != 7 || dec_u32(d, &t.id) != CL_OK ||
            cl_cbor_dec_uint(d, &role) != CL_OK || role < CL_ROLE_ADMIN || role > CL_ROLE_SERVICE ||
            cl_cbor_dec_bool(d, &t.used) != CL_OK || cl_cbor_dec_int(d, &t.expires_ms) != CL_OK ||
            dec_fixed(d, t.hash, 32) != CL_OK || dec_name(d, t.name) != CL_OK ||
            dec_perms(d, t.perms, &t.perms_len) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        t.role = (uint8_t)role;
        if ((st = add_token(s, &t)) != CL_OK)
            return st;
    }
    if (cl_cbor_dec_array(d, &n) != CL_OK || n > CL_STATE_MAX_ENTRIES)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < n; i++) {
        cl_client_t c;
        size_t m, pn;
        uint64_t role;
        const uint8_t *p;
        memset(&c, 0, sizeof c);
        if (cl_cbor_dec_array(d, &m) != CL_OK || m != (v == 1 ? 8u : 9u) ||
            dec_u32(d, &c.id) != CL_OK ||
            cl_cbor_dec_uint(d, &role) != CL_OK || role < CL_ROLE_ADMIN || role > CL_ROLE_SERVICE ||
            cl_cbor_dec_bool(d, &c.revoked) != CL_OK || dec_name(d, c.name) != CL_OK ||
            dec_fixed(d, c.x5t, 8) != CL_OK || dec_fixed(d, c.cert_hash, 32) != CL_OK ||
            dec_blob(d, &p, &pn) != CL_OK || dec_perms(d, c.perms, &c.perms_len) != CL_OK)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        c.role = (uint8_t)role;
        const uint8_t *g = NULL;
        size_t gl = 0;
        cl_cbor_type_t gty;
        if (v != 1) {
            if (cl_cbor_dec_peek(d, &gty) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
            if (gty == CL_CBOR_BSTR ? cl_cbor_dec_bstr(d, &g, &gl) != CL_OK || gl > 2048
                                    : cl_cbor_dec_null(d) != CL_OK)
                return CL_FAIL(CL_ERR_BAD_INPUT);
        }
        if ((st = add_client(s, &c, p, pn)) != CL_OK)
            return st;
        if (g != NULL) {
            cl_client_t *nc = &s->clients[s->n_clients - 1];
            if ((nc->groups = malloc(gl)) == NULL)
                return CL_FAIL(CL_ERR_FULL);
            memcpy(nc->groups, g, gl);
            nc->groups_len = gl;
        }
    }
    if (cl_cbor_dec_array(d, &n) != CL_OK || n > CL_EVTYPE_MAX)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    for (size_t i = 0; i < n; i++) {
        cl_evtype_t t;
        size_t m;
        if (cl_cbor_dec_array(d, &m) != CL_OK || m != (v == 1 ? 3u : 6u) ||
            dec_evtype(d, &t) != CL_OK || (v != 1 && dec_evtype_tail(d, &t) != CL_OK) ||
            (v != 1 && (cl_cbor_dec_uint(d, &t.version) != CL_OK || t.version == 0)) ||
            cl_state_evtype(s, t.name, strlen(t.name)) != NULL)
            return CL_FAIL(CL_ERR_BAD_INPUT);
        if ((st = cl_state_put_evtype(s, &t)) != CL_OK)
            return st;
    }
    if (v != 1 && (st = cl_model_decode(s, d)) != CL_OK)
        return st;
    return cl_cbor_dec_at_end(d) ? CL_OK : CL_FAIL(CL_ERR_BAD_INPUT);
}

cl_status_t cl_state_restore(cl_state_t *s, const uint8_t *snap, size_t len)
{
    cl_cbor_dec_t d;
    cl_state_t tmp;
    memset(&tmp, 0, sizeof tmp);
    cl_cbor_dec_init(&d, snap, len);
    cl_status_t st = restore(&tmp, &d);
    if (st != CL_OK) {
        cl_state_free(&tmp);
        return st;
    }
    cl_state_free(s);
    *s = tmp;
    return CL_OK;
}
