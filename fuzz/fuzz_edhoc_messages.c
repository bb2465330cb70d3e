/*
 * fuzz_edhoc_messages.c - libFuzzer harness for EDHOC message parsing
 * (lib/edhoc.c): message_1 to message_4, error messages and the CoAP
 * framing of Appendix A.2, each received by a session in exactly the state
 * of an RFC 9529 trace (edhoc_fuzz_common.h holds the credentials, the
 * checking crypto provider and the checks).
 *
 * At startup both traces are run byte for byte (trace 1: method 0, suite 0,
 * Ed25519 + x5t; trace 2: method 3, suite 2, P-256 static DH + kid, SUITES_I
 * [6, 2]) with the RFC's ephemeral keys injected, and the session states are
 * kept: initiator waiting for message_2, responder waiting for message_3,
 * initiator waiting for message_4. Every input works on a copy of one of
 * them (with a fresh handle of the same ephemeral key), so runs are
 * reproducible and cheap.
 *
 * Byte 0 selects what to do:
 *   bits 0-2  target:
 *               0 message_1: a fresh responder (suites 0 and 2, all four
 *                 responder credentials, C_R and ephemeral key of the trace
 *                 whose curve the message selects) processes it; when it is
 *                 accepted, message_2 must be written or fail cleanly, and
 *                 the trace's message_3 must then be accepted exactly when
 *                 message_1 was the trace's (transcript binding);
 *               1 message_2 / error: the trace initiator after its message_1;
 *                 an error 2 is followed by the negotiated retry, whose
 *                 message_1 is predicted byte for byte;
 *               2 message_3 / error: the trace responder after its message_2;
 *               3 message_4 / error: the trace initiator after its message_3;
 *               4 cl_edhoc_split_request on a CoAP payload (prefix round
 *                 trip with cl_edhoc_encode_cid; a message_1 found there is
 *                 then processed as in target 0);
 *               5 message_1 to a minimal responder (suite 2 only, trace 2's
 *                 static DH credential only): refused suites give error 2
 *                 with a single SUITES_R, methods 0 and 2 (responder
 *                 signature) error 1;
 *               6, 7 as 1, 2.
 *   bit 3     trace 1 (0) or trace 2 (1)
 *   bits 4-5  mode: 0 raw (the rest is the message); 1 the trace's message
 *             for the target with byte-mutation records (op, pos, val)
 *             from the rest; 2 the trace's PLAINTEXT_2/3/4 mutated by the
 *             records and encrypted with the trace keys (so mutations reach
 *             the parsers behind the keystream / AEAD); 3 the rest is the
 *             plaintext, encrypted likewise (modes 2, 3 are mode 1 for the
 *             message_1 and framing targets)
 *   bit 6     the next byte n: the provider fails its (n+1)-th call
 *   bit 7     the next byte picks the peer-credential callback behaviour
 *             (unknown, untrusted, wrong key, oversized CRED, no CRED)
 *
 * Invariants (abort() on violation):
 *  - message_2/3/4 are authenticated: CL_OK only for the trace's exact bytes
 *    (or, with the plaintext modes, the trace's exact plaintext; for
 *    message_4 any plaintext the EAD reference model accepts), and the
 *    trace's bytes must succeed unless a fault was injected or the callback
 *    was told to refuse (then the status is the documented one);
 *  - after success, the next message written is the trace's one and the
 *    results (PRK_out, OSCORE Master Secret / Salt) are the trace's;
 *  - after any failure the session is aborted: ephemeral key destroyed,
 *    PRKs wiped, every protocol call CL_ERR_STATE, no exporter, and
 *    cl_edhoc_error_message gives a well-formed (ERR_CODE, ERR_INFO);
 *  - a received error message sets peer_err to its code (and SUITES_R);
 *  - no key handle is leaked or destroyed twice (checking provider).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edhoc_fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { TGT_M1, TGT_M2, TGT_M3, TGT_M4, TGT_SPLIT, TGT_M1_MIN, N_TGT };
enum { MODE_RAW, MODE_BYTES, MODE_PLAIN_MUT, MODE_PLAIN };

#define MAX_MSG 4200

typedef struct snap {
    cl_edhoc_t i_m2; /* initiator, message_1 sent; eph: the setup's handle of x */
    cl_edhoc_t r_m3; /* responder, message_2 sent; eph: the setup's handle of y */
    cl_edhoc_t i_m4; /* initiator, message_3 sent (no ephemeral key left) */
} snap_t;
static snap_t g_snap[2];

static cl_key_t eph_of(int trace)
{
    const ef_trace_t *t = &EF_TRACES[trace];
    return ef_import_priv(t->dh, CL_KEY_USAGE_ECDH, t->x.p, t->x.len);
}

static cl_key_t reph_of(int trace)
{
    const ef_trace_t *t = &EF_TRACES[trace];
    return ef_import_priv(t->dh, CL_KEY_USAGE_ECDH, t->y.p, t->y.len);
}

static bool is(const uint8_t *m, size_t len, const cl_buf_t *b)
{
    return ef_eq(m, len, b->p, b->len);
}

static void setup_trace(int tr)
{
    const ef_trace_t *t = &EF_TRACES[tr];
    ef_world_t *w = ef_world();
    cl_edhoc_t i, r, i2, r2, i3;
    uint8_t m[1024];
    size_t len;

    EF_CHECK(cl_edhoc_init(&i, &w->init[t->ilist], CL_EDHOC_INITIATOR, t->c_i.p, t->c_i.len) ==
             CL_OK);
    EF_CHECK(cl_edhoc_test_set_ephemeral(&i, eph_of(tr)) == CL_OK);
    EF_CHECK(cl_edhoc_message_1(&i, t->method, t->suite, NULL, 0, m, sizeof m, &len) == CL_OK);
    EF_CHECK(is(m, len, &t->m[1]));
    g_snap[tr].i_m2 = i;

    EF_CHECK(cl_edhoc_init(&r, &w->resp, CL_EDHOC_RESPONDER, t->c_r.p, t->c_r.len) == CL_OK);
    EF_CHECK(cl_edhoc_test_set_ephemeral(&r, reph_of(tr)) == CL_OK);
    EF_CHECK(cl_edhoc_process_message_1(&r, t->m[1].p, t->m[1].len) == CL_OK);
    EF_CHECK(cl_edhoc_message_2(&r, NULL, 0, m, sizeof m, &len) == CL_OK);
    EF_CHECK(is(m, len, &t->m[2]));
    g_snap[tr].r_m3 = r;

    i2 = i;
    i2.eph = eph_of(tr);
    EF_CHECK(cl_edhoc_process_message_2(&i2, t->m[2].p, t->m[2].len) == CL_OK);
    EF_CHECK(cl_edhoc_message_3(&i2, NULL, 0, m, sizeof m, &len) == CL_OK);
    EF_CHECK(is(m, len, &t->m[3]));
    g_snap[tr].i_m4 = i2;

    r2 = r;
    r2.eph = reph_of(tr);
    EF_CHECK(cl_edhoc_process_message_3(&r2, t->m[3].p, t->m[3].len) == CL_OK);
    EF_CHECK(cl_edhoc_message_4(&r2, NULL, 0, m, sizeof m, &len) == CL_OK);
    EF_CHECK(is(m, len, &t->m[4]));
    i3 = i2;
    EF_CHECK(cl_edhoc_process_message_4(&i3, t->m[4].p, t->m[4].len) == CL_OK);
    EF_CHECK(ef_eq(i3.prk_out, 32, t->prk_out.p, t->prk_out.len));
    EF_CHECK(ef_eq(r2.prk_exporter, 32, t->prk_exporter.p, t->prk_exporter.len));
    ef_check_pair(&i3, &r2);
    ef_check_key_update(&i3, &r2);
    cl_edhoc_free(&r2);
    cl_edhoc_free(&i3);
}

static void setup(void)
{
    static bool ready;
    if (ready)
        return;
    ef_world();
    ef_input_begin(0);
    setup_trace(0);
    setup_trace(1);
    ef_p()->baseline = ef_p()->n_live; /* the snapshots' ephemeral keys */
    ready = true;
}

/* Runs a library call with fault injection armed. */
#define ARMED(st, call)                                                                            \
    do {                                                                                           \
        ef_arm(true);                                                                              \
        (st) = (call);                                                                             \
        ef_arm(false);                                                                             \
        EF_TRACE(#call, st);                                                                       \
    } while (0)

static bool fired(void)
{
    return ef_p()->fired;
}

/* The OSCORE parameters of a finished trace session are the trace's. */
static void check_trace_results(const cl_edhoc_t *s, const ef_trace_t *t)
{
    uint8_t ms[16], salt[8];
    cl_oscore_params_t op;
    EF_CHECK(cl_edhoc_oscore_params(s, ms, salt, &op) == CL_OK);
    EF_CHECK(ef_eq(ms, 16, t->ms.p, t->ms.len) && ef_eq(salt, 8, t->salt.p, t->salt.len));
    EF_CHECK(ef_eq(s->prk_out, 32, t->prk_out.p, t->prk_out.len));
}

/*
 * After an error 2: cl_edhoc_restart keeps the configuration, C_I and the
 * responder's SUITES_R; message_1 with suite -1 then selects the first suite
 * of our list that the responder supports (our first when SUITES_R was
 * empty), and its bytes can be predicted.
 */
static void negotiate(int tr, cl_edhoc_t *s)
{
    const ef_trace_t *t = &EF_TRACES[tr];
    const cl_edhoc_config_t *cfg = &ef_w()->init[t->ilist];
    size_t sel = SIZE_MAX;
    int8_t peer[CL_EDHOC_MAX_SUITES];
    uint8_t n_peer = s->n_suites_peer;
    memcpy(peer, s->suites_peer, sizeof peer);
    if (n_peer == 0)
        sel = 0;
    for (size_t i = 0; i < cfg->n_suites && sel == SIZE_MAX; i++)
        for (size_t j = 0; j < n_peer; j++)
            if (cfg->suites[i] == peer[j])
                sel = i;
    uint8_t m[256], expect[64];
    size_t len, n = 0;
    cl_status_t st;
    EF_CHECK(cl_edhoc_restart(s) == CL_OK);
    EF_CHECK(s->cfg == cfg && s->role == CL_EDHOC_INITIATOR && s->eph == CL_KEY_NONE);
    EF_CHECK(ef_eq(s->c_i, s->c_i_len, t->c_i.p, t->c_i.len));
    EF_CHECK(s->n_suites_peer == n_peer && memcmp(s->suites_peer, peer, n_peer) == 0);
    EF_CHECK(ef_all_zero(s->prk_out, sizeof s->prk_out) && ef_all_zero(s->th, sizeof s->th));
    EF_CHECK(cl_edhoc_set_cid(s, t->c_i.p, t->c_i.len) == CL_OK); /* allowed before message_1 */
    /* the trace ephemeral key of the selected suite's curve */
    int key_trace = sel != SIZE_MAX && (cfg->suites[sel] == 2 || cfg->suites[sel] == 3) ? 1 : 0;
    if (sel != SIZE_MAX)
        EF_CHECK(cl_edhoc_test_set_ephemeral(s, eph_of(key_trace)) == CL_OK);
    ARMED(st, cl_edhoc_message_1(s, t->method, -1, NULL, 0, m, sizeof m, &len));
    if (sel == SIZE_MAX) {
        EF_CHECK(st == CL_ERR_UNSUPPORTED);
    } else if (st == CL_OK || !fired()) {
        EF_CHECK(st == CL_OK);
        expect[n++] = (uint8_t)t->method;
        if (sel == 0) {
            expect[n++] = (uint8_t)cfg->suites[0];
        } else {
            expect[n++] = (uint8_t)(0x80 | (sel + 1));
            for (size_t i = 0; i <= sel; i++)
                expect[n++] = (uint8_t)cfg->suites[i];
        }
        expect[n++] = 0x58;
        expect[n++] = 0x20;
        memcpy(expect + n, EF_TRACES[key_trace].g_x.p, 32);
        n += 32;
        expect[n++] = t->c_i.p[0];
        EF_CHECK(ef_eq(m, len, expect, n));
    }
}

/* The selected suite of a message_1 (the last of SUITES_I), -1 if it does not parse. */
static int peek_suite(const uint8_t *m, size_t len)
{
    cl_cbor_dec_t d;
    cl_cbor_type_t t;
    uint64_t method;
    int64_t v = -1;
    size_t n = 1;
    cl_cbor_dec_init(&d, m, len);
    if (cl_cbor_dec_uint(&d, &method) != CL_OK || cl_cbor_dec_peek(&d, &t) != CL_OK)
        return -1;
    if (t == CL_CBOR_ARRAY && (cl_cbor_dec_array(&d, &n) != CL_OK || n == 0 || n > 16))
        return -1;
    for (size_t i = 0; i < n; i++) /* suites before the selected one may be anything */
        if (cl_cbor_dec_int(&d, &v) != CL_OK)
            return -1;
    return v >= INT8_MIN && v <= INT8_MAX ? (int)v : -1;
}

/* ---- target 0: message_1 to a fresh responder ---- */

static void run_m1(int tr, const uint8_t *msg, size_t len, bool min)
{
    const ef_trace_t *t = &EF_TRACES[tr];
    ef_world_t *w = ef_world();
    const cl_edhoc_config_t *cfg = min ? &w->resp_min : &w->resp;
    /* the minimal responder only takes trace 2 (suite 2, method 3) */
    bool exact = is(msg, len, &t->m[1]) && (!min || tr == 1);
    cl_edhoc_t r;
    uint8_t out[1024];
    size_t out_len;
    cl_status_t st;

    EF_CHECK(cl_edhoc_init(&r, cfg, CL_EDHOC_RESPONDER, t->c_r.p, t->c_r.len) == CL_OK);
    int suite = peek_suite(msg, len);
    if (suite == 0 || suite == 2) /* the trace ephemeral key of that curve; else generated */
        EF_CHECK(cl_edhoc_test_set_ephemeral(&r, reph_of(suite == 2)) == CL_OK);
    ARMED(st, cl_edhoc_process_message_1(&r, msg, len));
    if (exact && !fired())
        EF_CHECK(st == CL_OK);
    if (min && is(msg, len, &EF_TRACES[0].m[1]) && !fired())
        EF_CHECK(st == CL_ERR_UNSUPPORTED); /* suite 0: error 2 with SUITES_R = 2 */
    if (min && st == CL_ERR_UNSUPPORTED && r.suite < 0) {
        /* the suite was refused: exactly the error of RFC 9529 3.2 */
        uint8_t err[16];
        size_t err_len;
        EF_CHECK(cl_edhoc_error_message(&r, st, err, sizeof err, &err_len) == CL_OK);
        EF_CHECK(ef_eq(err, err_len, EF_T2_ERROR_2, sizeof EF_T2_ERROR_2));
    }
    if (st != CL_OK) {
        ef_check_aborted(&r, st, t->m[1].p, t->m[1].len);
        cl_edhoc_free(&r);
        return;
    }
    EF_CHECK(suite == 2 || (suite == 0 && !min)); /* only supported suites are accepted */
    if (min) /* its only credential is a static DH one: methods 1 and 3 */
        EF_CHECK((r.method & 1) != 0);
    st = ef_message_2(&r, NULL, 0, out, sizeof out, &out_len);
    if (exact && !fired())
        EF_CHECK(st == CL_OK && is(out, out_len, &t->m[2]));
    if (st != CL_OK) {
        ef_check_aborted(&r, st, t->m[3].p, t->m[3].len);
        cl_edhoc_free(&r);
        return;
    }
    /* message_2 = bstr(G_Y || CIPHERTEXT_2), one item */
    {
        cl_cbor_dec_t d;
        const uint8_t *body;
        size_t body_len;
        cl_cbor_dec_init(&d, out, out_len);
        EF_CHECK(cl_cbor_dec_bstr(&d, &body, &body_len) == CL_OK && cl_cbor_dec_at_end(&d));
        EF_CHECK(body_len > 32);
    }
    /* The trace's message_3 is bound to the trace's message_1 (TH_2 hashes message_1). */
    ARMED(st, cl_edhoc_process_message_3(&r, t->m[3].p, t->m[3].len));
    if (st == CL_OK)
        EF_CHECK(exact);
    if (exact && !fired())
        EF_CHECK(st == ef_cb_status());
    if (st != CL_OK) {
        ef_check_aborted(&r, st, t->m[3].p, t->m[3].len);
        cl_edhoc_free(&r);
        return;
    }
    ARMED(st, cl_edhoc_message_4(&r, NULL, 0, out, sizeof out, &out_len));
    if (!fired())
        EF_CHECK(st == CL_OK && is(out, out_len, &t->m[4]));
    if (st == CL_OK) {
        check_trace_results(&r, t);
        ef_check_done(&r, t->m[3].p, t->m[3].len);
    } else {
        ef_check_aborted(&r, st, t->m[3].p, t->m[3].len);
    }
    cl_edhoc_free(&r);
}

/* ---- target 1: message_2 (or an error) to the trace initiator ---- */

static void run_m2(int tr, const uint8_t *msg, size_t len)
{
    const ef_trace_t *t = &EF_TRACES[tr];
    bool genuine = is(msg, len, &t->m[2]);
    cl_edhoc_t s = g_snap[tr].i_m2;
    uint8_t out[1024];
    size_t out_len;
    cl_status_t st;

    s.eph = eph_of(tr);
    ARMED(st, cl_edhoc_process_message_2(&s, msg, len));
    if (st == CL_OK)
        EF_CHECK(genuine); /* every byte of message_2 is authenticated */
    if (genuine && !fired())
        EF_CHECK(st == ef_cb_status());
    if (st != CL_OK) {
        ef_check_peer_error(&s, st, msg, len);
        ef_check_aborted(&s, st, t->m[2].p, t->m[2].len);
        if (st == CL_ERR_PEER_ERROR && s.peer_err == CL_EDHOC_ERR_WRONG_SUITE)
            negotiate(tr, &s);
        cl_edhoc_free(&s);
        return;
    }
    EF_CHECK(s.eph == CL_KEY_NONE); /* forward secrecy: X is gone */
    ARMED(st, cl_edhoc_message_3(&s, NULL, 0, out, sizeof out, &out_len));
    if (!fired())
        EF_CHECK(st == CL_OK && is(out, out_len, &t->m[3]));
    if (st != CL_OK) {
        ef_check_aborted(&s, st, t->m[4].p, t->m[4].len);
        cl_edhoc_free(&s);
        return;
    }
    ARMED(st, cl_edhoc_process_message_4(&s, t->m[4].p, t->m[4].len));
    if (!fired())
        EF_CHECK(st == CL_OK);
    if (st == CL_OK) {
        check_trace_results(&s, t);
        ef_check_done(&s, t->m[4].p, t->m[4].len);
    } else {
        ef_check_aborted(&s, st, t->m[4].p, t->m[4].len);
    }
    cl_edhoc_free(&s);
}

/* ---- target 2: message_3 (or an error) to the trace responder ---- */

static void run_m3(int tr, const uint8_t *msg, size_t len)
{
    const ef_trace_t *t = &EF_TRACES[tr];
    bool genuine = is(msg, len, &t->m[3]);
    cl_edhoc_t s = g_snap[tr].r_m3;
    uint8_t out[1024], out2[1024];
    size_t out_len, out2_len;
    cl_status_t st;

    s.eph = reph_of(tr);
    ARMED(st, cl_edhoc_process_message_3(&s, msg, len));
    if (st == CL_OK)
        EF_CHECK(genuine); /* every byte of message_3 is authenticated */
    if (genuine && !fired())
        EF_CHECK(st == ef_cb_status());
    if (st != CL_OK) {
        ef_check_peer_error(&s, st, msg, len);
        ef_check_aborted(&s, st, t->m[3].p, t->m[3].len);
        cl_edhoc_free(&s);
        return;
    }
    ARMED(st, cl_edhoc_message_4(&s, NULL, 0, out, sizeof out, &out_len));
    if (!fired())
        EF_CHECK(st == CL_OK && is(out, out_len, &t->m[4]));
    if (st != CL_OK) {
        ef_check_aborted(&s, st, t->m[3].p, t->m[3].len);
        cl_edhoc_free(&s);
        return;
    }
    /* message_4 is deterministic: asking again gives the same bytes */
    EF_CHECK(cl_edhoc_message_4(&s, NULL, 0, out2, sizeof out2, &out2_len) == CL_OK);
    EF_CHECK(ef_eq(out, out_len, out2, out2_len));
    check_trace_results(&s, t);
    ef_check_done(&s, t->m[3].p, t->m[3].len);
    cl_edhoc_free(&s);
}

/* ---- target 3: message_4 (or an error) to the trace initiator ---- */

static void run_m4(int tr, const uint8_t *msg, size_t len, bool ok_allowed, bool ok_required)
{
    const ef_trace_t *t = &EF_TRACES[tr];
    cl_edhoc_t s = g_snap[tr].i_m4;
    cl_status_t st;

    ARMED(st, cl_edhoc_process_message_4(&s, msg, len));
    if (st == CL_OK)
        EF_CHECK(ok_allowed);
    if (ok_required && !fired())
        EF_CHECK(st == CL_OK);
    if (st != CL_OK) {
        ef_check_peer_error(&s, st, msg, len);
        ef_check_aborted(&s, st, t->m[4].p, t->m[4].len);
        cl_edhoc_free(&s);
        return;
    }
    check_trace_results(&s, t);
    ef_check_done(&s, t->m[4].p, t->m[4].len);
    cl_edhoc_free(&s);
}

/* ---- target 4: CoAP framing ---- */

static void run_split(int tr, const uint8_t *payload, size_t len)
{
    bool m1 = false;
    uint8_t cid[CL_EDHOC_MAX_CID], enc[16];
    size_t cid_len = 99, enc_len, msg_len = 0;
    const uint8_t *msg = NULL;
    cl_status_t st = cl_edhoc_split_request(payload, len, &m1, cid, &cid_len, &msg, &msg_len);
    if (st == CL_OK) {
        EF_CHECK(msg > payload && msg_len >= 1 && msg + msg_len == payload + len);
        size_t prefix = (size_t)(msg - payload);
        if (m1) {
            EF_CHECK(payload[0] == 0xf5 && prefix == 1 && cid_len == 0);
        } else {
            EF_CHECK(cid_len <= CL_EDHOC_MAX_CID);
            EF_CHECK(cl_edhoc_encode_cid(cid, cid_len, enc, sizeof enc, &enc_len) == CL_OK);
            EF_CHECK(ef_eq(enc, enc_len, payload, prefix)); /* the prefix is canonical */
        }
    } else {
        EF_CHECK(st == CL_ERR_BAD_INPUT);
    }
    /* the other direction: any identifier up to 7 bytes survives encode + split */
    size_t n = len < CL_EDHOC_MAX_CID ? len : CL_EDHOC_MAX_CID;
    uint8_t req[24];
    EF_CHECK(cl_edhoc_encode_cid(payload, n, req, sizeof req - 1, &enc_len) == CL_OK);
    req[enc_len] = 0x58;
    EF_CHECK(cl_edhoc_split_request(req, enc_len + 1, &m1, cid, &cid_len, &msg, &msg_len) ==
             CL_OK);
    EF_CHECK(!m1 && ef_eq(cid, cid_len, payload, n) && msg_len == 1 && msg == req + enc_len);
    EF_CHECK(cl_edhoc_encode_cid(NULL, 0, enc, sizeof enc, &enc_len) == CL_OK);
    EF_CHECK(enc_len == 1 && enc[0] == 0xf5);
    if (st == CL_OK && len > 0 && payload[0] == 0xf5)
        run_m1(tr, payload + 1, len - 1, false);
}

/* ------------------------------------------------------------------ */

static void run(const uint8_t *data, size_t size)
{
    uint8_t sel = data[0];
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    /* 6 and 7 are two more message_2 / message_3 targets (the most parsing behind them) */
    int target = (sel & 7) == 6 ? TGT_M2 : (sel & 7) == 7 ? TGT_M3 : sel & 7, tr = (sel >> 3) & 1, mode = (sel >> 4) & 3;
    const ef_trace_t *t = &EF_TRACES[tr];
    uint32_t fail_at = 0;
    if ((sel & 0x40) && n > 0) {
        fail_at = (uint32_t)p[0] + 1;
        p++;
        n--;
    }
    ef_w()->cb_mode = EF_CB_NORMAL;
    if ((sel & 0x80) && n > 0) {
        ef_w()->cb_mode = p[0] % EF_N_CB;
        p++;
        n--;
    }
    ef_input_begin(fail_at);

    if (target == TGT_SPLIT && mode == MODE_RAW) {
        run_split(tr, p, n);
        return;
    }
    if (mode == MODE_RAW) {
        /* the input itself, so reads past the end hit the fuzzer's exact-size buffer */
        if (target == TGT_M1 || target == TGT_M1_MIN)
            run_m1(tr, p, n, target == TGT_M1_MIN);
        else if (target == TGT_M2)
            run_m2(tr, p, n);
        else if (target == TGT_M3)
            run_m3(tr, p, n);
        else
            run_m4(tr, p, n, is(p, n, &t->m[4]), is(p, n, &t->m[4]));
        return;
    }

    static uint8_t buf[MAX_MSG], msg[MAX_MSG];
    size_t len = 0, msg_len = 0;
    bool plain = target >= TGT_M2 && target <= TGT_M4 && mode >= MODE_PLAIN_MUT;
    if (plain && mode == MODE_PLAIN) {
        len = n < 2048 ? n : 2048;
        memcpy(buf, p, len);
    } else {
        const cl_buf_t *base;
        if (plain)
            base = target == TGT_M2 ? &t->pt2 : target == TGT_M3 ? &t->pt3 : NULL;
        else if (target == TGT_SPLIT)
            base = &t->m[tr == 0 ? 1 : 3];
        else if (target == TGT_M1_MIN)
            base = &t->m[1];
        else
            base = &t->m[target + 1];
        if (target == TGT_SPLIT) {
            /* a CoAP payload: `true` + message_1, or C_R + message_3 */
            if (tr == 0) {
                buf[len++] = 0xf5;
            } else {
                size_t l;
                EF_CHECK(cl_edhoc_encode_cid(t->c_r.p, t->c_r.len, buf, 16, &l) == CL_OK);
                len = l;
            }
        }
        if (base != NULL) {
            memcpy(buf + len, base->p, base->len);
            len += base->len;
        }
        ef_mutate(buf, &len, 2048, p, n);
    }

    if (plain) {
        if (target == TGT_M2)
            msg_len = ef_seal_m2(t, buf, len, msg, sizeof msg);
        else
            msg_len = ef_seal_m34(t, target == TGT_M3 ? 3 : 4, buf, len, msg, sizeof msg);
        if (msg_len == 0)
            return;
    } else {
        memcpy(msg, buf, len);
        msg_len = len;
    }
    /* exact-size copy so that over-reads are caught */
    uint8_t *m = malloc(msg_len ? msg_len : 1);
    EF_CHECK(m != NULL);
    memcpy(m, msg, msg_len);
    switch (target) {
    case TGT_M1:
    case TGT_M1_MIN:
        run_m1(tr, m, msg_len, target == TGT_M1_MIN);
        break;
    case TGT_M2:
        if (plain) /* our encryption is the trace's: same plaintext, same message */
            EF_CHECK(is(buf, len, &t->pt2) == is(m, msg_len, &t->m[2]));
        run_m2(tr, m, msg_len);
        break;
    case TGT_M3:
        if (plain)
            EF_CHECK(is(buf, len, &t->pt3) == is(m, msg_len, &t->m[3]));
        run_m3(tr, m, msg_len);
        break;
    case TGT_M4:
        if (plain) {
            bool ok = ef_ref_ead_ok(buf, len);
            run_m4(tr, m, msg_len, ok, ok && len <= CL_EDHOC_MAX_CRED);
        } else {
            run_m4(tr, m, msg_len, is(m, msg_len, &t->m[4]), is(m, msg_len, &t->m[4]));
        }
        break;
    default:
        run_split(tr, m, msg_len);
        break;
    }
    free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    run(data, size);
    ef_input_end();
    return 0;
}
