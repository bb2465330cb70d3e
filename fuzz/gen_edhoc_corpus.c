/*
 * gen_edhoc_corpus.c - writes the seed corpora of fuzz_edhoc_messages and
 * fuzz_edhoc_responder (fuzz/corpus/fuzz_edhoc_{messages,responder}/).
 *
 * Not built by CMake (and not a harness: no fuzz_ prefix). Build and run by
 * hand, see fuzz/README.md:
 *
 *   cmake --build build --target cloister_lib cloister_crypto_openssl
 *   cc -std=c11 -D_POSIX_C_SOURCE=200809L -Iinclude -Ifuzz fuzz/gen_edhoc_corpus.c \
 *      build/lib/libcloister_crypto_openssl.a build/lib/libcloister_lib.a -lcrypto \
 *      -o /tmp/gen_edhoc_corpus
 *   /tmp/gen_edhoc_corpus fuzz/corpus
 *
 * The seeds follow the input layouts described at the top of each harness.
 * fuzz_edhoc_messages: every message of RFC 9529 traces 1 and 2 for its
 * target, a CoAP payload, the error messages (error 2 of the trace 2
 * negotiation, error 3, error 1 with a diagnostic) and the suite-6
 * message_1 that provokes error 2 at the suite-2-only responder, the 15
 * invalid messages of RFC 9529
 * section 4, and a truncated and an extended variant. fuzz_edhoc_responder:
 * chunk sequences for full handshakes with a real initiator in every method
 * and both suites, the negotiation round trip, EAD items, refusing
 * callbacks, a fault, equal connection identifiers, raw trace messages,
 * invalid messages, mutated messages and an abandoned session.
 *
 * The invalid messages are checked first against the harness configuration
 * (each must be refused where RFC 9529 says); the generator exits non-zero
 * otherwise. Existing files are overwritten, others (crash-*, the found_*
 * inputs kept from fuzzing runs) left alone.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "edhoc_fuzz_common.h"

static char g_dir[4096];

static void put(const char *name, const uint8_t *p, size_t n)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        fprintf(stderr, "gen: cannot write %s\n", path);
        exit(1);
    }
}

/* selector byte + parts */
static void put_sel(const char *name, uint8_t sel, const uint8_t *a, size_t a_len,
                    const uint8_t *b, size_t b_len)
{
    uint8_t buf[1024];
    size_t n = 0;
    buf[n++] = sel;
    if (a_len) {
        memcpy(buf + n, a, a_len);
        n += a_len;
    }
    if (b_len) {
        memcpy(buf + n, b, b_len);
        n += b_len;
    }
    put(name, buf, n);
}

static void check_invalid(const ef_invalid_t *c)
{
    const ef_trace_t *t = &EF_TRACES[1];
    ef_world_t *w = ef_world();
    cl_edhoc_t s;
    uint8_t m[512];
    size_t len;
    cl_status_t st;
    if (strcmp(c->item, "message_1") == 0) {
        EF_CHECK(cl_edhoc_init(&s, &w->resp, CL_EDHOC_RESPONDER, t->c_r.p, t->c_r.len) == CL_OK);
        st = cl_edhoc_process_message_1(&s, c->bytes, c->len);
        if (st == CL_OK) /* point errors surface when G_X is used */
            st = cl_edhoc_message_2(&s, NULL, 0, m, sizeof m, &len);
    } else {
        EF_CHECK(cl_edhoc_init(&s, &w->init[t->ilist], CL_EDHOC_INITIATOR, t->c_i.p,
                               t->c_i.len) == CL_OK);
        EF_CHECK(cl_edhoc_test_set_ephemeral(&s, ef_import_priv(t->dh, CL_KEY_USAGE_ECDH, t->x.p,
                                                                t->x.len)) == CL_OK);
        EF_CHECK(cl_edhoc_message_1(&s, t->method, t->suite, NULL, 0, m, sizeof m, &len) == CL_OK);
        EF_CHECK(ef_eq(m, len, t->m[1].p, t->m[1].len));
        if (strcmp(c->item, "message_2") == 0) {
            st = cl_edhoc_process_message_2(&s, c->bytes, c->len);
        } else {
            len = ef_seal_m2(t, c->bytes, c->len, m, sizeof m);
            st = cl_edhoc_process_message_2(&s, m, len);
        }
    }
    cl_edhoc_free(&s);
    if (st == CL_OK) {
        fprintf(stderr, "gen: invalid message '%s' was accepted\n", c->name);
        exit(1);
    }
    printf("  %-12s %-48s %s\n", c->item, c->name, cl_status_str(st));
}

/* ---- fuzz_edhoc_messages ---- */

static void gen_messages(void)
{
    static const char *const step[5] = {"", "m1", "m2", "m3", "m4"};
    char name[128];
    for (int tr = 0; tr < 2; tr++) {
        const ef_trace_t *t = &EF_TRACES[tr];
        for (int k = 1; k <= 4; k++) {
            snprintf(name, sizeof name, "trace%d_%s", tr + 1, step[k]);
            put_sel(name, (uint8_t)((k - 1) | tr << 3), t->m[k].p, t->m[k].len, NULL, 0);
        }
    }
    const ef_trace_t *t1 = &EF_TRACES[0], *t2 = &EF_TRACES[1];
    /* CoAP payload of the forward flow: true + message_1 */
    put_sel("split_true_m1", 0x04, (const uint8_t *)"\xf5", 1, t1->m[1].p, t1->m[1].len);
    /* error messages: 2 with SUITES_R (trace 2 negotiation) to the initiator, which then
     * retries; 3 (unknown credential) to the responder; 1 with a diagnostic */
    put_sel("err2_suites_to_i", 0x09, EF_T2_ERROR_2, sizeof EF_T2_ERROR_2, NULL, 0);
    put_sel("err3_to_r", 0x02, (const uint8_t *)"\x03\xf5", 2, NULL, 0);
    put_sel("err1_tstr_to_i_m4", 0x03, (const uint8_t *)"\x01\x64oops", 6, NULL, 0);
    /* trace 2's first message_1 selects suite 6: the minimal responder (target 5, suite 2
     * only, as in RFC 9529) answers error 2 with SUITES_R = 2 */
    put_sel("neg_first_m1_suite6", 0x0d, EF_T2_FIRST_MESSAGE_1, sizeof EF_T2_FIRST_MESSAGE_1,
            NULL, 0);
    /* RFC 9529 section 4 */
    for (size_t i = 0; i < EF_N_INVALID; i++) {
        const ef_invalid_t *c = &EF_INVALID[i];
        uint8_t sel = strcmp(c->item, "message_1") == 0   ? 0x08 /* raw, trace 2 responder */
                      : strcmp(c->item, "message_2") == 0 ? 0x09 /* raw, trace 2 initiator */
                                                          : 0x39; /* plaintext, sealed */
        check_invalid(c);
        snprintf(name, sizeof name, "rfc9529_invalid_%02zu", i + 1);
        put_sel(name, sel, c->bytes, c->len, NULL, 0);
    }
    /* message_3 of trace 1 truncated to 60 bytes (record: truncate, pos 60) */
    put_sel("trace1_m3_truncated", 0x12, (const uint8_t *)"\x04\x3c\x00", 3, NULL, 0);
    /* PLAINTEXT_2 of trace 2 extended with a padding EAD item (record: append 0x00) */
    put_sel("trace2_pt2_extended", 0x29, (const uint8_t *)"\x05\x00\x00", 3, NULL, 0);
    (void)t2;
}

/* ---- fuzz_edhoc_responder ---- */

typedef struct seq {
    uint8_t b[1024];
    size_t n;
} seq_t;

static void chunk(seq_t *s, unsigned kind, const uint8_t *body, size_t len)
{
    EF_CHECK(s->n + 2 + len <= sizeof s->b && len < 0x4000);
    s->b[s->n++] = (uint8_t)(kind << 6 | len >> 8);
    s->b[s->n++] = (uint8_t)len;
    if (len)
        memcpy(s->b + s->n, body, len);
    s->n += len;
}

/* kind 1: profile = method | list << 2 | selected index << 5, EAD choice, records */
static void ini(seq_t *s, int method, int list, int sel, int ead, const uint8_t *rec, size_t n)
{
    uint8_t b[64];
    b[0] = (uint8_t)(method | list << 2 | sel << 5);
    b[1] = (uint8_t)ead;
    if (n)
        memcpy(b + 2, rec, n);
    chunk(s, 1, b, 2 + n);
}

/* kind 2: callback mode, fault distance, EAD for message_2/4, C_R, C_I */
static void ctl(seq_t *s, int cb, int fault, int ead, int c_r, int c_i)
{
    uint8_t b[5] = {(uint8_t)cb, (uint8_t)fault, (uint8_t)ead, (uint8_t)c_r, (uint8_t)c_i};
    chunk(s, 2, b, sizeof b);
}

static void put_seq(const char *name, const seq_t *s)
{
    put(name, s->b, s->n);
}

static void gen_responder(void)
{
    seq_t s;
    char name[64];
    /* a full handshake in each method and suite (list 0 = {0}, list 2 = {2}) */
    for (int list = 0; list <= 2; list += 2) {
        for (int method = 0; method < 4; method++) {
            memset(&s, 0, sizeof s);
            ini(&s, method, list, 0, 0, NULL, 0);
            ini(&s, method, list, 0, 0, NULL, 0);
            snprintf(name, sizeof name, "hs_method%d_suite%d", method, list);
            put_seq(name, &s);
        }
    }
    /* trace 2's SUITES_I [6, 2], method 3, then two handshakes in a row */
    memset(&s, 0, sizeof s);
    ini(&s, 3, 1, 1, 0, NULL, 0);
    ini(&s, 3, 1, 1, 0, NULL, 0);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    put_seq("hs_suites62_then_again", &s);
    /* negotiation: SUITES_I [2, 0] selecting 0 -> error 2 -> retry with the responder's list */
    memset(&s, 0, sizeof s);
    ini(&s, 1, 3, 1, 0, NULL, 0);
    ini(&s, 1, 3, 7, 0, NULL, 0);
    ini(&s, 1, 3, 7, 0, NULL, 0);
    put_seq("negotiation_20", &s);
    /* EAD items: accepted in every message, then a critical unknown one in message_1 */
    memset(&s, 0, sizeof s);
    ctl(&s, EF_CB_NORMAL, 0, 2, 0xff, 0xff);
    ini(&s, 0, 0, 0, 2, NULL, 0);
    ini(&s, 0, 0, 0, 6, NULL, 0);
    ini(&s, 2, 2, 0, 4, NULL, 0);
    put_seq("ead_ok_then_critical", &s);
    /* unknown initiator credential: error 3 back to the initiator */
    memset(&s, 0, sizeof s);
    ctl(&s, EF_CB_UNKNOWN, 0, 0, 0xff, 0xff);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    put_seq("cb_unknown", &s);
    /* wrong key: message_3 fails authentication */
    memset(&s, 0, sizeof s);
    ctl(&s, EF_CB_WRONG_KEY, 0, 0, 0xff, 0xff);
    ini(&s, 3, 2, 0, 0, NULL, 0);
    put_seq("cb_wrong_key", &s);
    /* a provider failure during the handshake */
    memset(&s, 0, sizeof s);
    ctl(&s, EF_CB_NORMAL, 9, 0, 0xff, 0xff);
    ini(&s, 1, 0, 0, 0, NULL, 0);
    ini(&s, 1, 0, 0, 0, NULL, 0);
    put_seq("fault_9", &s);
    /* equal connection identifiers C_I = C_R = h'18', empty C_R */
    memset(&s, 0, sizeof s);
    ctl(&s, EF_CB_NORMAL, 0, 0, 0x18, 0x18);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    ctl(&s, EF_CB_NORMAL, 0, 0, 0xfe, 0x2d);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    put_seq("cids_equal_and_empty", &s);
    /* raw trace messages: message_1 then message_3 (not valid here), for both traces */
    for (int tr = 0; tr < 2; tr++) {
        const ef_trace_t *t = &EF_TRACES[tr];
        memset(&s, 0, sizeof s);
        chunk(&s, 0, t->m[1].p, t->m[1].len);
        chunk(&s, 0, t->m[3].p, t->m[3].len);
        snprintf(name, sizeof name, "raw_trace%d_m1_m3", tr + 1);
        put_seq(name, &s);
    }
    /* the RFC 9529 invalid message_1s, one after the other */
    memset(&s, 0, sizeof s);
    for (size_t i = 0; i < EF_N_INVALID; i++)
        if (strcmp(EF_INVALID[i].item, "message_1") == 0)
            chunk(&s, 0, EF_INVALID[i].bytes, EF_INVALID[i].len);
    put_seq("raw_rfc9529_invalid_m1", &s);
    /* an error message instead of message_3 */
    memset(&s, 0, sizeof s);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    chunk(&s, 0, (const uint8_t *)"\x03\xf5", 2);
    put_seq("err3_instead_of_m3", &s);
    /* mutated message_1 (a byte of G_X) and mutated message_3 */
    memset(&s, 0, sizeof s);
    ini(&s, 0, 0, 0, 0, (const uint8_t *)"\x00\x05\x01", 3);
    ini(&s, 0, 0, 0, 0, NULL, 0);
    ini(&s, 0, 0, 0, 0, (const uint8_t *)"\x00\x10\x80", 3);
    put_seq("mutated_m1_m3", &s);
    /* truncated message_3 and extended message_1 */
    memset(&s, 0, sizeof s);
    ini(&s, 3, 2, 0, 0, (const uint8_t *)"\x05\x00\x00", 3);
    ini(&s, 3, 2, 0, 0, NULL, 0);
    ini(&s, 3, 2, 0, 0, (const uint8_t *)"\x04\x05\x00", 3);
    put_seq("extended_m1_truncated_m3", &s);
    /* a session abandoned after message_2 */
    memset(&s, 0, sizeof s);
    ini(&s, 2, 0, 0, 0, NULL, 0);
    chunk(&s, 3, NULL, 0);
    ini(&s, 2, 0, 0, 0, NULL, 0);
    ini(&s, 2, 0, 0, 0, NULL, 0);
    put_seq("abandoned_then_complete", &s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s fuzz/corpus\n", argv[0]);
        return 2;
    }
    ef_world();
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_edhoc_messages", argv[1]);
    mkdir(g_dir, 0777);
    gen_messages();
    snprintf(g_dir, sizeof g_dir, "%s/fuzz_edhoc_responder", argv[1]);
    mkdir(g_dir, 0777);
    gen_responder();
    printf("gen: EDHOC corpora written to %s\n", argv[1]);
    return 0;
}
