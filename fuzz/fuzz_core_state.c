/*
 * fuzz_core_state.c - libFuzzer harness for the trusted core's model state
 * (core/state.c): the state records replayed from the sealed log
 * (cl_state_apply) and the snapshot decoder (cl_state_restore). Both read
 * bytes that were sealed by the core, but state.c promises to validate every
 * field anyway (a bug or a future format must fail safe).
 *
 * Input: a sequence of chunks, each a 2-byte big-endian length (clipped to
 * what is left) and a body. Chunk 0 goes to cl_state_restore on an empty
 * state; every later chunk goes to cl_state_apply on the state so far (the
 * restored one, or the empty one if the restore failed).
 *
 * Invariants checked with abort():
 * - a failed restore leaves the state as it was (snapshot unchanged);
 * - whatever state was reached (after every step, accepted or refused)
 *   snapshots, restores into a fresh state, and snapshots again to the
 *   identical bytes; restoring it into a non-empty state replaces it;
 * - the state stays consistent: counts within capacity and limits, unique
 *   client ids and token ids, client lookups by id and by certificate hash
 *   find every client, roles in range, names terminated, phase and
 *   certificates agree;
 * - an accepted record never moves the clock backwards;
 * - a refused snapshot or record leaves the state unchanged (cl_state_apply
 *   decodes a whole record before it touches the state).
 * Everything is freed (LeakSanitizer checks it).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define MAX_CHUNKS 64

typedef struct snap {
    uint8_t *p;
    size_t len;
} snap_t;

static snap_t take(const cl_state_t *s)
{
    snap_t x = {NULL, 0};
    CHECK(cl_state_snapshot(s, &x.p, &x.len) == CL_OK && x.p != NULL && x.len > 0);
    return x;
}

static void drop(snap_t *x)
{
    cl_wipe(x->p, x->len);
    free(x->p);
    x->p = NULL;
    x->len = 0;
}

static bool same(const snap_t *a, const snap_t *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

static void check_consistent(cl_state_t *s)
{
    CHECK(s->n_clients <= s->cap_clients && s->n_tokens <= s->cap_tokens);
    CHECK(s->n_clients <= CL_STATE_MAX_ENTRIES && s->n_tokens <= CL_STATE_MAX_ENTRIES);
    CHECK((s->n_clients == 0 || s->clients != NULL) && (s->n_tokens == 0 || s->tokens != NULL));
    CHECK(s->phase <= CL_PHASE_PROVISIONED);
    CHECK((s->phase >= CL_PHASE_CLAIMED) == (s->owner_cert != NULL));
    CHECK((s->phase == CL_PHASE_PROVISIONED) == (s->ca_cert != NULL && s->id_cert != NULL));
    CHECK(s->phase == CL_PHASE_FRESH || s->have_keys);
    CHECK((s->owner_cert == NULL) == (s->owner_len == 0));
    CHECK((s->ca_cert == NULL) == (s->ca_len == 0) && (s->id_cert == NULL) == (s->id_len == 0));
    CHECK(s->owner_len <= CL_PKI_MAX_CERT_BYTES && s->ca_len <= CL_PKI_MAX_CERT_BYTES &&
          s->id_len <= CL_PKI_MAX_CERT_BYTES);
    for (size_t i = 0; i < s->n_clients; i++) {
        cl_client_t *c = &s->clients[i];
        CHECK(c->id != CL_OWNER_ID);
        CHECK(cl_state_client(s, c->id) == c);
        CHECK(cl_state_client_by_hash(s, c->cert_hash) == c);
        CHECK(c->role >= CL_ROLE_ADMIN && c->role <= CL_ROLE_SERVICE);
        CHECK(c->cert != NULL && c->cert_len > 0 && c->cert_len <= CL_PKI_MAX_CERT_BYTES);
        CHECK(memchr(c->name, '\0', sizeof c->name) != NULL);
    }
    for (size_t i = 0; i < s->n_tokens; i++) {
        cl_token_t *t = &s->tokens[i];
        CHECK(t->role >= CL_ROLE_ADMIN && t->role <= CL_ROLE_SERVICE);
        CHECK(memchr(t->name, '\0', sizeof t->name) != NULL);
        for (size_t j = 0; j < i; j++)
            CHECK(s->tokens[j].id != t->id);
        /* lookup by hash finds a token with that hash (hashes may repeat) */
        cl_token_t *f = cl_state_token_by_hash(s, t->hash);
        CHECK(f != NULL && memcmp(f->hash, t->hash, 32) == 0);
    }
}

/* snapshot -> restore (fresh, and over a non-empty state) -> snapshot: identical. */
static void check_round_trip(cl_state_t *s)
{
    cl_state_t t, u;
    snap_t a = take(s), b, c;

    check_consistent(s);
    memset(&t, 0, sizeof t);
    CHECK(cl_state_restore(&t, a.p, a.len) == CL_OK);
    check_consistent(&t);
    b = take(&t);
    CHECK(same(&a, &b));
    /* restore replaces a non-empty state (u starts as a copy of t) */
    memset(&u, 0, sizeof u);
    CHECK(cl_state_restore(&u, b.p, b.len) == CL_OK);
    CHECK(cl_state_restore(&u, a.p, a.len) == CL_OK);
    c = take(&u);
    CHECK(same(&a, &c));
    /* a truncated snapshot is refused and changes nothing */
    CHECK(cl_state_restore(&u, a.p, a.len - 1) != CL_OK);
    drop(&c);
    c = take(&u);
    CHECK(same(&a, &c));
    drop(&a);
    drop(&b);
    drop(&c);
    cl_state_free(&t);
    cl_state_free(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cl_state_t s;
    size_t pos = 0;
    memset(&s, 0, sizeof s);

    for (int k = 0; k < MAX_CHUNKS && size - pos >= 2; k++) {
        size_t len = (size_t)data[pos] << 8 | data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = size - pos;
        /* exact-size copy so that over-reads are caught */
        uint8_t *chunk = malloc(len ? len : 1);
        CHECK(chunk != NULL);
        if (len)
            memcpy(chunk, data + pos, len);
        pos += len;

        snap_t before = take(&s);
        int64_t clock = s.clock_ms;
        cl_status_t st = k == 0 ? cl_state_restore(&s, chunk, len) : cl_state_apply(&s, chunk, len);
        if (st == CL_OK) {
            if (k > 0)
                CHECK(s.clock_ms >= clock);
        } else {
            CHECK(st == CL_ERR_BAD_INPUT || st == CL_ERR_FULL);
            {
                snap_t after = take(&s);
                CHECK(same(&before, &after));
                drop(&after);
            }
        }
        drop(&before);
        check_round_trip(&s);
        cl_wipe(chunk, len);
        free(chunk);
    }
    cl_state_free(&s);
    return 0;
}
