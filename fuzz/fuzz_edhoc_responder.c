/*
 * fuzz_edhoc_responder.c - libFuzzer harness for a long-lived EDHOC
 * responder (lib/edhoc.c) driven by a sequence of messages.
 *
 * One responder configuration for the whole process (edhoc_fuzz_common.h):
 * suites 0 and 2, four credentials (RFC 9529 trace 1 Ed25519/x5t and trace 2
 * P-256 static DH/kid, plus our X25519 static DH and P-256 signature ones, so
 * that every method works in both suites) and a peer-credential callback
 * that knows the four matching initiators. Key generation is deterministic
 * (checking provider), so every input replays identically.
 *
 * The input is a sequence of chunks, each a 2-byte big-endian header (top 2
 * bits: kind, low 14 bits: body length, clipped to what is left) and a body.
 * A session is started with the current connection identifier, and each
 * chunk acts on its next expected step (process_message_1, then message_2
 * is written; process_message_3, then message_4 is written); after a
 * failure or completion the session is freed and a new one starts.
 *
 *   kind 0  raw: the body is the next message for the responder.
 *   kind 1  a real initiator: body[0] = profile (bits 0-1 method, bits 2-4
 *           initiator suite list EF_ILIST_n, bits 5-7 index of the selected
 *           suite in it, 7 = negotiated from the last error 2), body[1] =
 *           EAD choice, body[2..] = byte-mutation records (ef_mutate). When
 *           the responder waits for message_1, a new initiator writes one;
 *           when it waits for message_3 and our initiator accepted its
 *           message_2, the initiator writes message_3 (else: as kind 0).
 *           The (mutated) message goes to the responder, the responder's
 *           answers (message_2, message_4, or its error message) go back to
 *           the initiator, and the initiator's error message to the responder.
 *   kind 2  control: body[0] callback behaviour (EF_CB_*), body[1] fail the
 *           provider call that many calls from now (0: none), body[2] EAD
 *           choice for EAD_2/EAD_4, body[3] / body[4] C_R / C_I for the next
 *           sessions (one byte; 0xfe empty, 0xff unchanged). The current
 *           session is abandoned (freed mid-handshake).
 *   kind 3  abandon the current session and start a new one.
 *
 * Invariants (abort() on violation):
 *  - an initiator's unmutated message_1 is accepted exactly when its
 *    SUITES_I fits the responder (else CL_ERR_UNSUPPORTED and error 2 with
 *    SUITES_R = [0, 2], after which the negotiated retry succeeds) and its
 *    EAD_1 is acceptable; message_2 must then be written, accepted by the
 *    initiator, and so on to matching PRK_out, exporter and OSCORE
 *    parameters on both sides (unless a fault was injected or the callback
 *    refuses, and then with the documented status);
 *  - transcript binding: when a mutated message_1 is accepted, the
 *    initiator must refuse the resulting message_2; a mutated message_3 is
 *    never accepted; a raw message_3 is only accepted if it is exactly what
 *    our initiator would send;
 *  - after any failure the session is aborted (ef_check_aborted) and its
 *    error message is well formed and understood by the peer
 *    (peer_err / SUITES_R);
 *  - no key handle is leaked or destroyed twice (checking provider), and
 *    freeing a session at any point is clean (LeakSanitizer, ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "edhoc_fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CHUNKS 64
#define MAX_MSG 2048

/* EAD choices for the messages we write (both sides). */
static const uint8_t EAD_PAD[] = {0x00};
static const uint8_t EAD_OK[] = {0x18, 0x2a, 0x42, 0x01, 0x02}; /* 42: h'0102' */
static const uint8_t EAD_NC[] = {0x17};                         /* 23: not understood */
static const uint8_t EAD_CRIT[] = {0x36};                       /* -23: critical, unknown */
static const uint8_t EAD_REFUSED[] = {0x0d, 0x40};              /* 13: h'' refused by hook */
static const uint8_t EAD_NEG[] = {0x38, 0x29, 0x00};            /* -42 (no value), padding */
static uint8_t EAD_BIG[4 + 300];                                /* padding with a value */
#define N_EAD 8
static cl_buf_t g_ead[N_EAD];

enum { STEP_M1, STEP_M3 };
enum { I_WAIT_M2, I_HAVE_M2, I_WAIT_M4 };

typedef struct run {
    cl_edhoc_t r, i;
    bool r_live, i_live;
    int step, i_state;
    bool sent_genuine; /* the initiator's last message reached the responder unmutated */
    size_t ead_i;      /* EAD choice of the initiator's last message */
    bool accepts;      /* the responder must accept the initiator's suite selection */
    uint8_t m3[MAX_MSG];
    size_t m3_len;     /* the message_3 our initiator wrote */
    /* settings for new sessions */
    uint8_t c_i[CL_EDHOC_MAX_CID], c_r[CL_EDHOC_MAX_CID];
    size_t c_i_len, c_r_len, ead_r;
    cl_edhoc_t parked; /* an initiator that received error 2, kept for cl_edhoc_restart */
    bool parked_live;
} run_t;
static run_t g;

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

static void setup(void)
{
    static bool ready;
    if (ready)
        return;
    ef_world();
    EAD_BIG[0] = 0x00;
    EAD_BIG[1] = 0x59;
    EAD_BIG[2] = 0x01;
    EAD_BIG[3] = 0x2c; /* bstr of 300 bytes */
    memset(EAD_BIG + 4, 0xee, 300);
    cl_buf_t e[N_EAD] = {{NULL, 0},
                         {EAD_PAD, sizeof EAD_PAD},
                         {EAD_OK, sizeof EAD_OK},
                         {EAD_NC, sizeof EAD_NC},
                         {EAD_CRIT, sizeof EAD_CRIT},
                         {EAD_REFUSED, sizeof EAD_REFUSED},
                         {EAD_NEG, sizeof EAD_NEG},
                         {EAD_BIG, sizeof EAD_BIG}};
    memcpy(g_ead, e, sizeof e);
    ready = true;
}

static bool ead_ok(size_t k)
{
    return ef_ref_ead_ok(g_ead[k].p, g_ead[k].len);
}

static void end_session(void)
{
    if (g.r_live)
        cl_edhoc_free(&g.r);
    if (g.i_live)
        cl_edhoc_free(&g.i);
    g.r_live = g.i_live = false;
}

static void new_session(void)
{
    end_session();
    EF_CHECK(cl_edhoc_init(&g.r, &ef_w()->resp, CL_EDHOC_RESPONDER, g.c_r, g.c_r_len) == CL_OK);
    g.r_live = true;
    g.step = STEP_M1;
    ef_p()->fired = false; /* an injected fault only excuses failures of its own session */
}

static void drop_initiator(cl_status_t st, const uint8_t *msg, size_t len)
{
    ef_check_aborted(&g.i, st, msg, len);
    cl_edhoc_free(&g.i);
    g.i_live = false;
}

/* Our initiator receives an error message while it waits for message_2 or message_4. */
static void error_to_initiator(const uint8_t *err, size_t err_len)
{
    cl_status_t st;
    if (!g.i_live || (g.i_state != I_WAIT_M2 && g.i_state != I_WAIT_M4))
        return;
    if (g.i_state == I_WAIT_M2)
        ARMED(st, cl_edhoc_process_message_2(&g.i, err, err_len));
    else
        ARMED(st, cl_edhoc_process_message_4(&g.i, err, err_len));
    EF_CHECK(st == CL_ERR_PEER_ERROR);
    ef_check_peer_error(&g.i, st, err, err_len);
    ef_check_aborted(&g.i, st, err, err_len);
    if (g.i.peer_err == CL_EDHOC_ERR_WRONG_SUITE) {
        /* our responder's SUITES_R: the initiator is kept for a negotiated retry */
        EF_CHECK(g.i.n_suites_peer == 2 && g.i.suites_peer[0] == 0 && g.i.suites_peer[1] == 2);
        if (g.parked_live)
            cl_edhoc_free(&g.parked);
        g.parked = g.i;
        g.parked_live = true;
    } else {
        cl_edhoc_free(&g.i);
    }
    g.i_live = false;
}

/* The responder failed: check it, send its error message to our initiator, start over. */
static void responder_failed(cl_status_t st, const uint8_t *msg, size_t len)
{
    uint8_t err[256];
    size_t err_len;
    ef_check_aborted(&g.r, st, msg, len);
    if (st == CL_ERR_PEER_ERROR) { /* an error received is not answered (section 6) */
        EF_CHECK(cl_edhoc_error_message(&g.r, st, err, sizeof err, &err_len) == CL_ERR_STATE);
    } else {
        EF_CHECK(cl_edhoc_error_message(&g.r, st, err, sizeof err, &err_len) == CL_OK);
        error_to_initiator(err, err_len);
    }
    new_session();
}

/* Our initiator failed on the responder's message: its error message goes to the responder. */
static void initiator_failed(cl_status_t st, const uint8_t *msg, size_t len)
{
    uint8_t err[256];
    size_t err_len;
    cl_status_t rst;
    ef_check_aborted(&g.i, st, msg, len);
    if (st == CL_ERR_PEER_ERROR) {
        EF_CHECK(cl_edhoc_error_message(&g.i, st, err, sizeof err, &err_len) == CL_ERR_STATE);
        err_len = 0;
    } else {
        EF_CHECK(cl_edhoc_error_message(&g.i, st, err, sizeof err, &err_len) == CL_OK);
    }
    cl_edhoc_free(&g.i);
    g.i_live = false;
    if (g.step == STEP_M3 && err_len > 0) {
        ARMED(rst, cl_edhoc_process_message_3(&g.r, err, err_len));
        EF_CHECK(rst == CL_ERR_PEER_ERROR);
        ef_check_peer_error(&g.r, rst, err, err_len);
        ef_check_aborted(&g.r, rst, err, err_len);
    }
    new_session();
}

/* ---- the responder's steps ---- */

static void feed_m1(const uint8_t *msg, size_t len)
{
    uint8_t out[MAX_MSG];
    size_t out_len;
    cl_status_t st;
    bool from_i = g.i_live, genuine = from_i && g.sent_genuine;

    ARMED(st, cl_edhoc_process_message_1(&g.r, msg, len));
    if (genuine && !fired()) {
        if (!g.accepts)
            EF_CHECK(st == CL_ERR_UNSUPPORTED);
        else if (!ead_ok(g.ead_i))
            EF_CHECK(st == CL_ERR_CRITICAL || st == CL_ERR_AUTH);
        else
            EF_CHECK(st == CL_OK);
    }
    if (st != CL_OK) {
        responder_failed(st, msg, len);
        return;
    }
    const cl_buf_t *e2 = &g_ead[g.ead_r];
    st = ef_message_2(&g.r, e2->p, e2->len, out, sizeof out, &out_len);
    if (genuine && !fired())
        EF_CHECK(st == CL_OK);
    if (st != CL_OK) {
        responder_failed(st, NULL, 0);
        return;
    }
    g.step = STEP_M3;
    if (!from_i)
        return;
    ARMED(st, cl_edhoc_process_message_2(&g.i, out, out_len));
    if (st == CL_OK)
        EF_CHECK(genuine); /* TH_2 covers message_1: a changed one cannot verify */
    if (genuine && !fired()) {
        if (!ead_ok(g.ead_r))
            EF_CHECK(st == CL_ERR_CRITICAL || st == CL_ERR_AUTH);
        else
            EF_CHECK(st == ef_cb_status());
    }
    if (st != CL_OK) {
        initiator_failed(st, out, out_len);
        return;
    }
    EF_CHECK(g.i.eph == CL_KEY_NONE);
    g.i_state = I_HAVE_M2;
}

/* Would our initiator (at HAVE_M2) write exactly msg as message_3, with some EAD choice? */
static bool initiator_would_send(const uint8_t *msg, size_t len)
{
    for (size_t k = 0; k < N_EAD; k++) {
        cl_edhoc_t c = g.i; /* no key handle at this point: a plain copy is safe */
        uint8_t out[MAX_MSG];
        size_t out_len;
        bool same = cl_edhoc_message_3(&c, g_ead[k].p, g_ead[k].len, out, sizeof out,
                                       &out_len) == CL_OK &&
                    ef_eq(out, out_len, msg, len);
        cl_edhoc_free(&c);
        if (same)
            return true;
    }
    return false;
}

static void feed_m3(const uint8_t *msg, size_t len, bool from_i)
{
    uint8_t out[MAX_MSG];
    size_t out_len;
    cl_status_t st;
    bool genuine = from_i && g.sent_genuine;

    ARMED(st, cl_edhoc_process_message_3(&g.r, msg, len));
    if (st == CL_OK) {
        /* only our initiator's message_3 can be valid */
        EF_CHECK(g.i_live);
        if (from_i)
            EF_CHECK(genuine);
        else if (g.i_state == I_WAIT_M4)
            EF_CHECK(ef_eq(msg, len, g.m3, g.m3_len));
        else
            EF_CHECK(g.i_state == I_HAVE_M2 && initiator_would_send(msg, len));
    }
    if (genuine && !fired()) {
        if (!ead_ok(g.ead_i))
            EF_CHECK(st == CL_ERR_CRITICAL || st == CL_ERR_AUTH);
        else
            EF_CHECK(st == ef_cb_status());
    }
    if (st != CL_OK) {
        ef_check_peer_error(&g.r, st, msg, len);
        responder_failed(st, msg, len);
        return;
    }
    const cl_buf_t *e4 = &g_ead[g.ead_r];
    ARMED(st, cl_edhoc_message_4(&g.r, e4->p, e4->len, out, sizeof out, &out_len));
    if (!fired())
        EF_CHECK(st == CL_OK);
    if (st != CL_OK) {
        responder_failed(st, msg, len);
        return;
    }
    ef_check_done(&g.r, msg, len);
    if (g.i_live && g.i_state == I_WAIT_M4) {
        ARMED(st, cl_edhoc_process_message_4(&g.i, out, out_len));
        if (!fired())
            EF_CHECK(ead_ok(g.ead_r) ? st == CL_OK : st != CL_OK);
        if (st == CL_OK) {
            ef_check_done(&g.i, out, out_len);
            ef_check_pair(&g.i, &g.r);
            ef_check_key_update(&g.i, &g.r);
        } else {
            drop_initiator(st, out, out_len);
        }
    }
    new_session();
}

/* ---- chunks ---- */

static void raw_chunk(const uint8_t *body, size_t len)
{
    /* exact-size copy so that over-reads are caught */
    uint8_t *m = malloc(len ? len : 1);
    EF_CHECK(m != NULL);
    if (len)
        memcpy(m, body, len);
    if (g.step == STEP_M1) {
        if (g.i_live) { /* cannot happen: initiators are created with their message_1 */
            cl_edhoc_free(&g.i);
            g.i_live = false;
        }
        feed_m1(m, len);
    } else {
        feed_m3(m, len, false);
    }
    free(m);
}

/* Sends `out` mutated by the records to the responder's current step. */
static void send_mutated(const uint8_t *out, size_t out_len, const uint8_t *rec, size_t n_rec)
{
    static uint8_t buf[MAX_MSG + 64];
    size_t len = out_len;
    memcpy(buf, out, out_len);
    ef_mutate(buf, &len, sizeof buf, rec, n_rec);
    g.sent_genuine = ef_eq(buf, len, out, out_len);
    uint8_t *m = malloc(len ? len : 1);
    EF_CHECK(m != NULL);
    if (len)
        memcpy(m, buf, len);
    if (g.step == STEP_M1)
        feed_m1(m, len);
    else
        feed_m3(m, len, true);
    free(m);
}

static void initiator_chunk(const uint8_t *body, size_t len)
{
    uint8_t out[MAX_MSG];
    size_t out_len;
    cl_status_t st;
    uint8_t profile = len > 0 ? body[0] : 0;
    size_t ead = len > 1 ? body[1] % N_EAD : 0;
    const uint8_t *rec = len > 2 ? body + 2 : body;
    size_t n_rec = len > 2 ? len - 2 : 0;

    if (g.step == STEP_M3) {
        if (!g.i_live || g.i_state != I_HAVE_M2) {
            raw_chunk(body, len);
            return;
        }
        ARMED(st, cl_edhoc_message_3(&g.i, g_ead[ead].p, g_ead[ead].len, out, sizeof out,
                                     &out_len));
        if (!fired())
            EF_CHECK(st == CL_OK);
        if (st != CL_OK) {
            drop_initiator(st, NULL, 0); /* the responder keeps waiting */
            return;
        }
        g.i_state = I_WAIT_M4;
        memcpy(g.m3, out, out_len);
        g.m3_len = out_len;
        g.ead_i = ead;
        send_mutated(out, out_len, rec, n_rec);
        return;
    }

    /*
     * A new initiator and its message_1; with selection 7 the suite is
     * negotiated (-1): by the initiator parked after an error 2, restarted
     * in place, or else by a new one (its first suite).
     */
    const ef_world_t *w = ef_world();
    int method = profile & 3, suite;
    size_t sel = SIZE_MAX;
    if ((profile >> 5) == 7 && g.parked_live) {
        g.i = g.parked;
        g.parked_live = false;
        EF_CHECK(cl_edhoc_restart(&g.i) == CL_OK);
        EF_CHECK(g.i.eph == CL_KEY_NONE && g.i.peer_err == 0 && g.i.n_suites_peer == 2);
    } else {
        EF_CHECK(cl_edhoc_init(&g.i, &w->init[(profile >> 2) & 7], CL_EDHOC_INITIATOR, g.c_i,
                               g.c_i_len) == CL_OK);
    }
    g.i_live = true;
    const cl_edhoc_config_t *cfg = g.i.cfg;
    if ((profile >> 5) == 7) {
        suite = -1;
        if (g.i.n_suites_peer == 0)
            sel = 0;
        for (size_t i = 0; i < cfg->n_suites && sel == SIZE_MAX; i++)
            for (size_t j = 0; j < g.i.n_suites_peer; j++)
                if (cfg->suites[i] == g.i.suites_peer[j])
                    sel = i;
    } else {
        sel = (size_t)(profile >> 5) % cfg->n_suites;
        suite = cfg->suites[sel];
    }
    ARMED(st, cl_edhoc_message_1(&g.i, method, suite, g_ead[ead].p, g_ead[ead].len, out,
                                 sizeof out, &out_len));
    if (sel == SIZE_MAX)
        EF_CHECK(st == CL_ERR_UNSUPPORTED);
    else if (!fired())
        EF_CHECK(st == CL_OK); /* every method and suite has a credential */
    if (st != CL_OK) {
        cl_edhoc_free(&g.i);
        g.i_live = false;
        return;
    }
    EF_CHECK(g.i.suite == cfg->suites[sel]);
    g.i_state = I_WAIT_M2;
    g.accepts = ef_resp_accepts(cfg->suites, sel);
    g.ead_i = ead;
    send_mutated(out, out_len, rec, n_rec);
}

static void set_cid(uint8_t *cid, size_t *len, uint8_t b)
{
    if (b == 0xff)
        return;
    *len = b == 0xfe ? 0 : 1;
    cid[0] = b;
}

static void control_chunk(const uint8_t *body, size_t len)
{
    ef_prov_t *p = ef_p();
    if (len > 0)
        ef_w()->cb_mode = body[0] % EF_N_CB;
    if (len > 1)
        p->fail_at = body[1] ? p->n_ops + body[1] : 0;
    if (len > 2)
        g.ead_r = body[2] % N_EAD;
    if (len > 3)
        set_cid(g.c_r, &g.c_r_len, body[3]);
    if (len > 4)
        set_cid(g.c_i, &g.c_i_len, body[4]);
    new_session();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    ef_input_begin(0);
    ef_w()->cb_mode = EF_CB_NORMAL;
    memset(&g, 0, sizeof g);
    g.c_r[0] = 0x18; /* trace 1's identifiers */
    g.c_r_len = 1;
    g.c_i[0] = 0x2d;
    g.c_i_len = 1;
    new_session();
    size_t pos = 0;
    for (int chunks = 0; chunks < MAX_CHUNKS && size - pos >= 2; chunks++) {
        unsigned hdr = (unsigned)data[pos] << 8 | data[pos + 1];
        pos += 2;
        size_t len = hdr & 0x3fffu;
        if (len > size - pos)
            len = size - pos;
        const uint8_t *body = data + pos;
        pos += len;
        switch (hdr >> 14) {
        case 0:
            raw_chunk(body, len);
            break;
        case 1:
            initiator_chunk(body, len);
            break;
        case 2:
            control_chunk(body, len);
            break;
        default:
            new_session();
            break;
        }
    }
    end_session();
    if (g.parked_live)
        cl_edhoc_free(&g.parked);
    ef_input_end();
    return 0;
}
