/*
 * js.c - the ECMAScript sandbox of rule conditions and scripts (js.h).
 *
 * What: one Duktape heap per sandbox behind a capped allocator; the
 * condition and the script compiled once into functions; every entry into
 * Duktape a protected call under a time budget and a setjmp() that catches
 * Duktape's fatal errors; events, state and emitted properties converted
 * between CBOR and JS values here, in C.
 *
 * Why each piece (core/js/README.md has the escape analysis):
 *  - the allocator prefixes each block with its size (for the cap) and its
 *    index in a table of live blocks: after a fatal error Duktape's heap is
 *    in an unknown state and must not be destroyed through Duktape, so the
 *    table is how its memory is freed;
 *  - everything that touches the heap runs inside duk_safe_call(): a
 *    Duktape error thrown outside one is fatal, and with a heap cap any
 *    allocation can throw;
 *  - after setup the global object and everything reachable from it is
 *    frozen, the condition gets a frozen copy of state and the state object
 *    is rebuilt from its CBOR after every run: the only thing that survives
 *    a call is state's CBOR, which is what the engine seals;
 *  - conversions never call into JS-visible machinery they do not have to:
 *    objects are built bare (no prototype, so no inherited setter or
 *    read-only property can interfere) and given Object.prototype at the
 *    end; reading values may run getters and Proxy traps, which is script
 *    code and runs under the budget like any other.
 *
 * No I/O: the clock, the time of day and randomness come from cl_js_env_t
 * (scripts/check-symbols.sh, allowlists core and duktape).
 */
#include "js.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/cbor.h"
#include "cloister/crypto.h"
#include "duktape.h"

#define CL_JS_STR_(x) #x
#define CL_JS_STR(x) CL_JS_STR_(x)

_Static_assert(CL_JS_INTERRUPT_INSTRUCTIONS == CL_DUK_INTERRUPT_INSTRUCTIONS,
               "js.h and cl_duk_overrides.h disagree on the interrupt interval");
_Static_assert(CL_JS_MAX_DEPTH <= CL_CBOR_MAX_DEPTH, "converted depth beyond the CBOR decoder's");

/* ------------------------------------------------------------------ */
/* Constants                                                           */
/* ------------------------------------------------------------------ */

/* Allocation header: block size and index in the table of live blocks.
 * 8 bytes keep Duktape's 8-byte alignment (x86-64 glibc returns 16). */
#define HDR 8u
/* what a block costs beyond its payload: header + its table slot */
#define BLOCK_OVERHEAD (HDR + sizeof(void *))
#define MAX_HEAP_CAP ((size_t)1 << 30)
#define MAX_BUDGET_MS 60000u
#define MAX_STATE_CAP ((size_t)1 << 20)
/* slack beyond a conversion limit: each open map reserves a 9-byte head */
#define ENC_SLACK (CL_CBOR_MAX_HEAD * (CL_JS_MAX_DEPTH + 1))

/* The condition: compiled twice, once with each bracket. An expression can
 * only leave its wrapper through an unmatched ')' in the first or ']' in
 * the second, never both, so a condition both accept is exactly one
 * expression (README.md, "Escape analysis"). Only the first is kept. */
static const char COND_PRE[] = "function (event, state) {\"use strict\"; return (";
static const char COND_POST[] = "\n);}";
static const char COND_PRE_CHECK[] = "function (event, state) {\"use strict\"; return [";
static const char COND_POST_CHECK[] = "\n];}";
/* The script: a function body. Duktape's function compiler stops at the
 * brace that closes the function and ignores what follows, so a body with an
 * unmatched '}' would be cut short silently; the probe below returns whether
 * the function it compiled still contains the declaration placed after the
 * body (it returns before the body, which therefore never runs). */
static const char SCRIPT_PRE[] = "function (event, state, emit) {\"use strict\"; ";
static const char SCRIPT_POST[] = "\n}";
#define PROBE_PRE                                                                                  \
    "function (event, state, emit) {\"use strict\"; return typeof %s === \"function\"; "
#define PROBE_POST "\nfunction %s() {}\n}"

/* Removes what a rule must not have (README.md, "Escape analysis"), then
 * freezes everything reachable from its arguments: values and accessors of
 * every own property (symbols included) and prototypes. Runs once, right
 * after setup, before any rule code has run; strict mode, so a deletion that
 * does not happen throws and the sandbox is not made. */
static const char LOCKDOWN_SRC[] =
    "function (roots) {\n"
    "  \"use strict\";\n"
    "  var O = Object, g = roots[0], todo = roots.slice(), o, ks, i, d;\n"
    "  delete O.getPrototypeOf(function () {}).constructor;\n" /* Function */
    "  delete g.Function;\n"
    "  delete g.eval;\n"
    "  delete g.Duktape;\n" /* .fin, .act, .gc, .errCreate, .Thread, .enc */
    "  while (todo.length > 0) {\n"
    "    o = todo.pop();\n"
    "    if (o === null || (typeof o !== \"object\" && typeof o !== \"function\") || "
    "O.isFrozen(o))\n"
    "      continue;\n"
    "    O.freeze(o);\n"
    "    todo.push(O.getPrototypeOf(o));\n"
    "    ks = O.getOwnPropertyNames(o).concat(O.getOwnPropertySymbols(o));\n"
    "    for (i = 0; i < ks.length; i++) {\n"
    "      d = O.getOwnPropertyDescriptor(o, ks[i]);\n"
    "      if (d === undefined) continue;\n"
    "      if (\"value\" in d) todo.push(d.value); else { todo.push(d.get); todo.push(d.set); }\n"
    "    }\n"
    "  }\n"
    "}";

/* Duktape's RangeError messages that mean "too deep" (duktape.c DUK_STR_*). */
static const char *const DEPTH_ERRORS[] = {
    "callstack limit",
    "C stack depth limit",
    "valstack limit",
    "compiler recursion limit",
    "regexp compiler recursion limit",
    "regexp executor recursion limit",
    "decode recursion limit", /* JSON.parse, CBOR.decode */
    "encode recursion limit", /* JSON.stringify, CBOR.encode */
    "prototype chain limit",
    "function call bound chain limit",
};

/* The event cache (push_event): properties maps up to EVC_KEYS keys and
 * EVC_KEY_BYTES bytes of keys keep their object, CBOR up to EVC_RAW_MAX bytes
 * that did not change is not converted again. */
#define EVC_KEYS 16
#define EVC_KEY_BYTES 256
#define EVC_RAW_MAX 256
#define EVC_TYPE_MAX 64

/* Keys the event conversion pushes on every call, interned once. */
enum { K_TYPE, K_SOURCE, K_TIME, K_PROPERTIES, K_COUNT };
static const char *const KEY_NAMES[K_COUNT] = {"type", "source", "time", "properties"};

/* ------------------------------------------------------------------ */
/* The sandbox                                                         */
/* ------------------------------------------------------------------ */

/* ChaCha20 in fast-key-erasure mode: each block yields the next key and
 * four 64-bit outputs, so past outputs cannot be recomputed from the state. */
typedef struct drbg {
    uint32_t key[8];
    uint64_t ctr;
    uint64_t out[4];
    unsigned avail;
} drbg_t;

struct cl_js {
    cl_duk_udata_t u; /* first member: Duktape's heap udata is the sandbox */
    duk_context *ctx;
    cl_js_env_t env;
    size_t heap_cap;
    uint32_t budget_ms;
    uint32_t max_emit;
    size_t max_state;

    /* the allocator: live blocks (payload + BLOCK_OVERHEAD each) */
    size_t used;
    uint8_t **blocks;
    uint32_t n_blocks, cap_blocks;
    bool oom;  /* an allocation was refused at the cap during this entry */
    bool wipe; /* heap being destroyed: wipe what is freed */
    bool init; /* duk_create_heap running: counted, not capped (see build) */

    /* the current entry */
    jmp_buf *jmp;
    bool busy;
    bool dead; /* heap abandoned after a fatal error, or never built */
    char fatal_msg[96];
    cl_status_t own_st; /* first error raised by the sandbox itself (sticky) */
    char own_why[CL_JS_WHY_MAX];

    /* sources, kept to rebuild the heap after a fatal error */
    char *cond;
    size_t cond_len;
    char *script;
    size_t script_len;
    char end_name[32]; /* the script probe's declaration: random per sandbox */

    /* heap objects, reachable from the global stash */
    void *fn_cond, *fn_script, *fn_emit;
    void *state;      /* the live state object */
    void *cond_state; /* its frozen copy for conditions; NULL: build on demand */
    void *obj_proto;  /* Object.prototype */
    void *keys[K_COUNT];

    /* The event object, kept between calls and updated in place: nothing a
     * call does survives it (README.md), so no call can tell. */
    struct {
        void *obj;   /* {type, source, time, properties}, frozen; NULL: make it */
        void *props; /* its properties object, frozen */
        bool have;   /* type/source/time/raw below describe obj */
        char type[EVC_TYPE_MAX];
        size_t type_len;
        uint32_t source;
        int64_t time_ms;
        uint8_t raw[EVC_RAW_MAX]; /* the CBOR props was made from */
        size_t raw_len;           /* SIZE_MAX: props does not match raw */
        uint32_t n_keys;          /* its keys, in order, when <= EVC_KEYS */
        uint16_t key_off[EVC_KEYS], key_len[EVC_KEYS];
        void *key_ptr[EVC_KEYS];
        uint8_t key_bytes[EVC_KEY_BYTES];
    } evc;
    bool dec_mutable; /* the last conversion made an object that cannot be frozen */

    /* state's last committed value (what a failed run rolls back to) */
    uint8_t *snap;
    size_t snap_len;

    /* JS -> CBOR output */
    uint8_t *buf;
    size_t buf_size;

    /* during cl_js_run */
    cl_js_emit_fn emit;
    void *emit_arg;
    uint32_t n_emits;
    bool in_run;
    bool in_emit;

    drbg_t rng;
};

/* What an operation inside duk_safe_call needs and returns. */
typedef struct op {
    cl_js_t *js;
    const cl_js_event_t *ev;
    const uint8_t *cbor;
    size_t cbor_len;
    bool result;
    bool changed;
} op_t;

typedef struct enc {
    cl_cbor_enc_t e;
    size_t limit;
    const char *what;
    bool state; /* byte strings are refused in state */
    void *path[CL_JS_MAX_DEPTH];
} enc_t;

/* ------------------------------------------------------------------ */
/* Reasons                                                             */
/* ------------------------------------------------------------------ */

/* Length of the longest prefix of s[0..len) that does not end inside a
 * UTF-8 sequence (bytes that are not UTF-8 are left to the reader). */
static size_t utf8_prefix(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && (p[i - 1] & 0xc0u) == 0x80u) {
        i--;
        back++;
    }
    if (i == 0)
        return len;
    unsigned lead = p[i - 1];
    size_t need = lead >= 0xf0u ? 4 : lead >= 0xe0u ? 3 : lead >= 0xc0u ? 2 : 1;
    return back + 1 >= need ? len : i - 1;
}

/* Copies s[0..len) into why, truncated at a character boundary, NUL-terminated. */
static void why_copy(char *why, size_t why_size, const char *s, size_t len)
{
    if (why == NULL || why_size == 0)
        return;
    if (len > why_size - 1)
        len = utf8_prefix(s, why_size - 1);
    memcpy(why, s, len);
    why[len] = '\0';
}

static void why_vset(char *why, size_t why_size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void why_vset(char *why, size_t why_size, const char *fmt, va_list ap)
{
    char tmp[2 * CL_JS_WHY_MAX];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    if (n < 0)
        n = 0;
    size_t len = (size_t)n < sizeof tmp ? (size_t)n : utf8_prefix(tmp, sizeof tmp - 1);
    why_copy(why, why_size, tmp, len);
}

static void why_set(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    why_vset(why, why_size, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ */
/* Random numbers                                                      */
/* ------------------------------------------------------------------ */

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d)                                                                             \
    do {                                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL(d, 16);                                                                           \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL(b, 12);                                                                           \
        a += b;                                                                                    \
        d ^= a;                                                                                    \
        d = ROTL(d, 8);                                                                            \
        c += d;                                                                                    \
        b ^= c;                                                                                    \
        b = ROTL(b, 7);                                                                            \
    } while (0)

static void drbg_refill(drbg_t *r)
{
    uint32_t x[16], in[16] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u};
    memcpy(in + 4, r->key, sizeof r->key);
    in[12] = (uint32_t)r->ctr;
    in[13] = (uint32_t)(r->ctr >> 32);
    in[14] = in[15] = 0;
    r->ctr++;
    memcpy(x, in, sizeof x);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++)
        x[i] += in[i];
    memcpy(r->key, x, sizeof r->key);
    for (int i = 0; i < 4; i++)
        r->out[i] = (uint64_t)x[8 + 2 * i] | (uint64_t)x[9 + 2 * i] << 32;
    r->avail = 4;
    cl_wipe(x, sizeof x);
    cl_wipe(in, sizeof in);
}

static uint64_t drbg_u64(drbg_t *r)
{
    if (r->avail == 0)
        drbg_refill(r);
    uint64_t v = r->out[--r->avail];
    r->out[r->avail] = 0;
    return v;
}

/* [0, 1) with 53 random bits (Math.random(), random()). */
static double js_random(cl_duk_udata_t *u)
{
    cl_js_t *js = (cl_js_t *)u;
    return (double)(drbg_u64(&js->rng) >> 11) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------------ */
/* The capped allocator                                                */
/* ------------------------------------------------------------------ */

static uint32_t blk_size(const uint8_t *b)
{
    uint32_t v;
    memcpy(&v, b, 4);
    return v;
}

static uint32_t blk_slot(const uint8_t *b)
{
    uint32_t v;
    memcpy(&v, b + 4, 4);
    return v;
}

static void blk_set(uint8_t *b, uint32_t size, uint32_t slot)
{
    memcpy(b, &size, 4);
    memcpy(b + 4, &slot, 4);
}

/* Can `more` payload bytes (one new block when `block`) be had under the cap? */
static bool cap_allows(cl_js_t *js, size_t more, bool block)
{
    size_t cost = more + (block ? BLOCK_OVERHEAD : 0);
    if (!js->init &&
        (more > js->heap_cap || js->used > js->heap_cap || cost > js->heap_cap - js->used)) {
        js->oom = true;
        return false;
    }
    if (block && js->n_blocks == js->cap_blocks) {
        uint32_t ncap = js->cap_blocks ? js->cap_blocks * 2 : 256;
        uint8_t **nb = realloc(js->blocks, (size_t)ncap * sizeof *nb);
        if (nb == NULL) {
            js->oom = true;
            return false;
        }
        js->blocks = nb;
        js->cap_blocks = ncap;
    }
    return true;
}

static void *js_alloc(void *udata, duk_size_t size)
{
    cl_js_t *js = udata;
    /* size 0 gets a block of its own, as from glibc's malloc: NULL would be
     * allowed, but it is a path of Duktape's that is little used */
    if (cl_duk_charge(&js->u, CL_DUK_ALLOC_WORK) || !cap_allows(js, size, true))
        return NULL;
    uint8_t *b = malloc(HDR + size);
    if (b == NULL) {
        js->oom = true;
        return NULL;
    }
    blk_set(b, (uint32_t)size, js->n_blocks);
    js->blocks[js->n_blocks++] = b;
    js->used += size + BLOCK_OVERHEAD;
    return b + HDR;
}

static void js_free(void *udata, void *ptr)
{
    cl_js_t *js = udata;
    if (ptr == NULL)
        return;
    uint8_t *b = (uint8_t *)ptr - HDR;
    uint32_t size = blk_size(b), slot = blk_slot(b);
    uint8_t *last = js->blocks[--js->n_blocks];
    js->blocks[slot] = last;
    blk_set(last, blk_size(last), slot);
    js->used -= size + BLOCK_OVERHEAD;
    if (js->wipe)
        cl_wipe(b, HDR + size);
    free(b);
}

static void *js_realloc(void *udata, void *ptr, duk_size_t size)
{
    cl_js_t *js = udata;
    if (ptr == NULL)
        return js_alloc(udata, size);
    if (size == 0) {
        js_free(udata, ptr);
        return NULL;
    }
    uint8_t *b = (uint8_t *)ptr - HDR;
    uint32_t old = blk_size(b), slot = blk_slot(b);
    if (size > old &&
        (cl_duk_charge(&js->u, CL_DUK_ALLOC_WORK) || !cap_allows(js, size - old, false)))
        return NULL;
    uint8_t *nb = realloc(b, HDR + size);
    if (nb == NULL) {
        js->oom = true;
        return NULL;
    }
    blk_set(nb, (uint32_t)size, slot);
    js->blocks[slot] = nb;
    js->used = js->used - old + size;
    return nb + HDR;
}

/* Frees every block of an abandoned heap without asking Duktape. */
static void abandon_heap(cl_js_t *js)
{
    for (uint32_t i = 0; i < js->n_blocks; i++) {
        cl_wipe(js->blocks[i], HDR + blk_size(js->blocks[i]));
        free(js->blocks[i]);
    }
    js->n_blocks = 0;
    js->used = 0;
    js->ctx = NULL;
    js->dead = true;
    js->fn_cond = js->fn_script = js->fn_emit = NULL;
    js->state = js->cond_state = js->obj_proto = NULL;
    memset(&js->evc, 0, sizeof js->evc);
}

/* ------------------------------------------------------------------ */
/* Fatal errors and entries into Duktape                               */
/* ------------------------------------------------------------------ */

static void js_fatal_msg(cl_js_t *js, const char *msg)
{
    if (msg == NULL)
        msg = "no message";
    why_copy(js->fatal_msg, sizeof js->fatal_msg, msg, strlen(msg));
    if (js->jmp != NULL)
        longjmp(*js->jmp, 1);
    /* Only reachable if Duktape failed outside enter()/build(): every call
     * into it is made from inside one. There is no way to continue. */
    __builtin_trap();
}

static void js_fatal_udata(cl_duk_udata_t *u, const char *msg)
{
    js_fatal_msg((cl_js_t *)u, msg);
}

static void js_fatal_heap(void *udata, const char *msg)
{
    js_fatal_msg(udata, msg);
}

static void arm(cl_js_t *js, bool budget)
{
    cl_duk_udata_t *u = &js->u;
    u->expired = 0;
    u->work = 0;
    u->allocs = 0;
    u->armed = budget ? 1 : 0;
    if (!budget)
        return;
    uint64_t instr = (uint64_t)js->budget_ms * CL_JS_INSTR_PER_MS;
    u->work_limit = u->clock_us != NULL ? instr * CL_JS_CLOCK_BACKSTOP : instr;
    u->budget_us = (uint64_t)js->budget_ms * 1000u;
    u->deadline_us = 0;
    u->started = 0; /* the clock is read at the first check (duk_hooks.c) */
}

static void disarm(cl_js_t *js)
{
    js->u.armed = 0;
    js->u.expired = 0;
}

static cl_js_t *sandbox_of(duk_context *ctx)
{
    duk_memory_functions mf;
    duk_get_memory_functions(ctx, &mf);
    return mf.udata;
}

/* Throws the sandbox's own error into the script (no file name: the path of
 * this source is nobody's business). */
static void rethrow_own(duk_context *ctx, const cl_js_t *js) __attribute__((noreturn));
static void rethrow_own(duk_context *ctx, const cl_js_t *js)
{
    duk_error_raw(ctx, DUK_ERR_ERROR, NULL, 0, "%s", js->own_why);
    __builtin_unreachable(); /* duk_error_raw longjmps (duk_config.h may not say noreturn) */
}

/* Raises an error of the sandbox's own: remembered (the first one wins and
 * survives a catch in the script) and thrown into the script. */
static void own_error(cl_js_t *js, duk_context *ctx, cl_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
static void own_error(cl_js_t *js, duk_context *ctx, cl_status_t st, const char *fmt, ...)
{
    if (js->own_st == CL_OK) {
        va_list ap;
        va_start(ap, fmt);
        why_vset(js->own_why, sizeof js->own_why, fmt, ap);
        va_end(ap);
        js->own_st = st;
    }
    rethrow_own(ctx, js);
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* The reason for the error at the top of the stack (budget still armed:
 * turning a thrown value into a string may run script code). */
static cl_status_t classify(cl_js_t *js, char *why, size_t why_size)
{
    if (js->u.expired) {
        why_set(why, why_size, "time budget of %u ms exceeded", (unsigned)js->budget_ms);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    if (js->own_st != CL_OK) {
        why_copy(why, why_size, js->own_why, strlen(js->own_why));
        return js->own_st;
    }
    if (js->oom) {
        why_set(why, why_size, "heap limit of %zu bytes reached", js->heap_cap);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    duk_size_t len = 0;
    const char *msg = duk_safe_to_lstring(js->ctx, -1, &len);
    if (msg == NULL) {
        msg = "Error";
        len = 5;
    }
    if (js->u.expired) { /* a toString() that did not end */
        why_set(why, why_size, "time budget of %u ms exceeded", (unsigned)js->budget_ms);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    if (js->oom) {
        why_set(why, why_size, "heap limit of %zu bytes reached", js->heap_cap);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    static const char range[] = "RangeError: ";
    if (starts_with(msg, len, range)) {
        const char *m = msg + sizeof range - 1;
        size_t mlen = len - (sizeof range - 1);
        for (size_t i = 0; i < sizeof DEPTH_ERRORS / sizeof DEPTH_ERRORS[0]; i++)
            if (starts_with(m, mlen, DEPTH_ERRORS[i])) {
                why_set(why, why_size, "call stack too deep (%s)", DEPTH_ERRORS[i]);
                return CL_FAIL(CL_ERR_LIMIT);
            }
        if (starts_with(m, mlen, "regexp step limit")) {
            why_set(why, why_size, "regular expression too complex (more than %ld steps)",
                    (long)CL_DUK_REGEXP_STEPS);
            return CL_FAIL(CL_ERR_LIMIT);
        }
    }
    why_copy(why, why_size, msg, len);
    return CL_FAIL(CL_ERR_BAD_INPUT);
}

/*
 * Runs fn(op) as a protected call, under the time budget when `budget`;
 * a fatal error inside ends here with the heap abandoned. Every call into
 * Duktape after the heap exists goes through here.
 */
static cl_status_t enter(cl_js_t *js, duk_safe_call_function fn, op_t *op, bool budget, char *why,
                         size_t why_size)
{
    jmp_buf jb;
    js->jmp = &jb;
    if (setjmp(jb) != 0) {
        js->jmp = NULL;
        js->in_run = js->in_emit = false;
        disarm(js);
        abandon_heap(js);
        why_set(why, why_size,
                "ECMAScript engine failure (%s); the sandbox restarts on its next call",
                js->fatal_msg);
        return CL_FAIL(CL_ERR_STATE);
    }
    js->own_st = CL_OK;
    js->own_why[0] = '\0';
    js->oom = false;
    arm(js, budget);
    cl_status_t st = CL_OK;
    duk_int_t rc = duk_safe_call(js->ctx, fn, op, 0, 1);
    js->in_run = js->in_emit = false; /* a toString() run by classify() must not emit */
    if (rc != DUK_EXEC_SUCCESS) {
        st = classify(js, why, why_size);
    } else if (js->own_st != CL_OK) {
        /* raised by emit(), caught by the script: the call fails all the same */
        why_copy(why, why_size, js->own_why, strlen(js->own_why));
        st = js->own_st;
    }
    duk_pop(js->ctx);
    disarm(js);
    if (st != CL_OK) {
        /* A failed call may leave a grown value stack and garbage in cycles
         * (a memory bomb, deep recursion): give it back now, so that what
         * cl_js_heap_used reports is what the rule keeps. Failures only. */
        duk_gc(js->ctx, DUK_GC_COMPACT);
    }
    js->jmp = NULL;
    return st;
}

/* ------------------------------------------------------------------ */
/* CBOR -> JS                                                          */
/* ------------------------------------------------------------------ */

static void dec_fail(cl_js_t *js, duk_context *ctx, const char *what, const char *detail)
    __attribute__((noreturn));
static void dec_fail(cl_js_t *js, duk_context *ctx, const char *what, const char *detail)
{
    own_error(js, ctx, CL_ERR_BAD_INPUT, "%s: %s", what, detail);
}

/* Pushes the value at d (throws on what cannot be converted). `freeze`
 * freezes every object and array made; `bytes` allows byte strings
 * (events; state holds none). */
static void dec_value(cl_js_t *js, duk_context *ctx, cl_cbor_dec_t *d, unsigned depth, bool freeze,
                      bool bytes, const char *what)
{
    cl_cbor_type_t t;
    if (cl_cbor_dec_peek(d, &t) != CL_OK) {
        dec_fail(js, ctx, what, "malformed CBOR");
        return;
    }
    duk_require_stack(ctx, 4);
    switch (t) {
    case CL_CBOR_UINT:
    case CL_CBOR_NINT: {
        int64_t v;
        uint64_t u;
        const uint8_t *raw;
        size_t rlen;
        if (t == CL_CBOR_UINT && cl_cbor_dec_uint(d, &u) == CL_OK) {
            duk_push_number(ctx, (double)u);
        } else if (t == CL_CBOR_NINT && cl_cbor_dec_int(d, &v) == CL_OK) {
            duk_push_number(ctx, (double)v);
        } else if (t == CL_CBOR_NINT && cl_cbor_dec_raw(d, &raw, &rlen) == CL_OK && rlen == 9) {
            /* below -2^63: -1 - n with n from the 8-byte argument, as a double */
            uint64_t n = 0;
            for (size_t i = 1; i < 9; i++)
                n = n << 8 | raw[i];
            duk_push_number(ctx, -1.0 - (double)n);
        } else {
            dec_fail(js, ctx, what, "malformed CBOR");
        }
        return;
    }
    case CL_CBOR_TSTR: {
        const char *p;
        size_t len;
        if (cl_cbor_dec_tstr(d, &p, &len) != CL_OK || !cl_cbor_utf8_valid((const uint8_t *)p, len))
            dec_fail(js, ctx, what, "text is not valid UTF-8");
        duk_push_lstring(ctx, p, len);
        return;
    }
    case CL_CBOR_BSTR: {
        const uint8_t *p;
        size_t len;
        if (!bytes)
            dec_fail(js, ctx, what, "byte strings are not supported here");
        if (cl_cbor_dec_bstr(d, &p, &len) != CL_OK)
            dec_fail(js, ctx, what, "malformed CBOR");
        void *b = duk_push_fixed_buffer(ctx, len);
        if (len > 0)
            memcpy(b, p, len);
        duk_push_buffer_object(ctx, -1, 0, len, DUK_BUFOBJ_UINT8ARRAY);
        duk_remove(ctx, -2);
        js->dec_mutable = true; /* a typed array with elements cannot be frozen */
        return;
    }
    case CL_CBOR_ARRAY:
    case CL_CBOR_MAP: {
        size_t n;
        if (depth >= CL_JS_MAX_DEPTH)
            dec_fail(js, ctx, what, "nested deeper than " CL_JS_STR(CL_JS_MAX_DEPTH) " levels");
        if (t == CL_CBOR_ARRAY) {
            if (cl_cbor_dec_array(d, &n) != CL_OK || n > cl_cbor_dec_remaining(d))
                dec_fail(js, ctx, what, "malformed CBOR");
            duk_push_array(ctx);
            for (size_t i = 0; i < n; i++) {
                dec_value(js, ctx, d, depth + 1, freeze, bytes, what);
                duk_put_prop_index(ctx, -2, (duk_uarridx_t)i);
            }
        } else {
            if (cl_cbor_dec_map(d, &n) != CL_OK || n > cl_cbor_dec_remaining(d) / 2)
                dec_fail(js, ctx, what, "malformed CBOR");
            /* bare: no inherited setter (__proto__) or read-only property
             * (Object.prototype is frozen) applies while it is filled */
            duk_push_bare_object(ctx);
            for (size_t i = 0; i < n; i++) {
                const char *k;
                size_t klen;
                if (cl_cbor_dec_tstr(d, &k, &klen) != CL_OK)
                    dec_fail(js, ctx, what, "map keys must be text");
                if (!cl_cbor_utf8_valid((const uint8_t *)k, klen))
                    dec_fail(js, ctx, what, "text is not valid UTF-8");
                duk_push_lstring(ctx, k, klen);
                dec_value(js, ctx, d, depth + 1, freeze, bytes, what);
                duk_put_prop(ctx, -3);
            }
            duk_push_heapptr(ctx, js->obj_proto);
            duk_set_prototype(ctx, -2);
        }
        if (freeze)
            duk_freeze(ctx, -1);
        return;
    }
    case CL_CBOR_TAG: {
        uint64_t tag;
        if (cl_cbor_dec_tag(d, &tag) != CL_OK)
            dec_fail(js, ctx, what, "malformed CBOR");
        if (depth >= CL_JS_MAX_DEPTH)
            dec_fail(js, ctx, what, "nested deeper than " CL_JS_STR(CL_JS_MAX_DEPTH) " levels");
        dec_value(js, ctx, d, depth + 1, freeze, bytes, what); /* the tag is dropped */
        return;
    }
    case CL_CBOR_SIMPLE:
    default: {
        bool b;
        double v;
        uint8_t sv;
        if (cl_cbor_dec_bool(d, &b) == CL_OK)
            duk_push_boolean(ctx, b);
        else if (cl_cbor_dec_null(d) == CL_OK)
            duk_push_null(ctx);
        else if (cl_cbor_dec_double(d, &v) == CL_OK)
            duk_push_number(ctx, v);
        else if (cl_cbor_dec_undefined(d) == CL_OK || cl_cbor_dec_simple(d, &sv) == CL_OK)
            duk_push_undefined(ctx);
        else
            dec_fail(js, ctx, what, "malformed CBOR");
        return;
    }
    }
}

/* Pushes the object a whole CBOR map makes (an empty one for len == 0). */
static void dec_map(cl_js_t *js, duk_context *ctx, const uint8_t *p, size_t len, bool freeze,
                    bool bytes, const char *what)
{
    cl_cbor_dec_t d;
    cl_cbor_type_t t;
    if (len == 0) {
        duk_push_object(ctx);
        if (freeze)
            duk_freeze(ctx, -1);
        return;
    }
    cl_cbor_dec_init(&d, p, len);
    if (cl_cbor_dec_peek(&d, &t) != CL_OK || t != CL_CBOR_MAP)
        dec_fail(js, ctx, what, "not a CBOR map");
    dec_value(js, ctx, &d, 0, freeze, bytes, what);
    if (!cl_cbor_dec_at_end(&d))
        dec_fail(js, ctx, what, "bytes after the map");
}

/* ------------------------------------------------------------------ */
/* JS -> CBOR                                                          */
/* ------------------------------------------------------------------ */

static void enc_fail(cl_js_t *js, duk_context *ctx, const enc_t *x, const char *detail)
    __attribute__((noreturn));
static void enc_fail(cl_js_t *js, duk_context *ctx, const enc_t *x, const char *detail)
{
    own_error(js, ctx, CL_ERR_BAD_INPUT, "%s: %s", x->what, detail);
}

static void enc_too_large(cl_js_t *js, duk_context *ctx, const enc_t *x) __attribute__((noreturn));
static void enc_too_large(cl_js_t *js, duk_context *ctx, const enc_t *x)
{
    own_error(js, ctx, CL_ERR_LIMIT, "%s larger than %zu bytes", x->what, x->limit);
}

static void enc_check(cl_js_t *js, duk_context *ctx, const enc_t *x)
{
    if (x->e.status != CL_OK || x->e.len > x->limit)
        enc_too_large(js, ctx, x);
}

/* Duktape's strings are CESU-8 with extensions (lone surrogates, code
 * points beyond U+10FFFF); CBOR text is UTF-8. Valid UTF-8 goes as it is;
 * otherwise surrogate pairs are joined and everything else that is not a
 * character becomes U+FFFD, as TextEncoder does. */
static void enc_text(cl_js_t *js, duk_context *ctx, enc_t *x, const char *s, size_t len)
{
    if (len > x->limit)
        enc_too_large(js, ctx, x);
    if (cl_cbor_utf8_valid((const uint8_t *)s, len)) {
        cl_cbor_enc_tstr(&x->e, s, len);
        enc_check(js, ctx, x);
        return;
    }
    const uint8_t *p = (const uint8_t *)s;
    uint8_t *out = duk_push_fixed_buffer(ctx, 3 * len);
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n;
        uint8_t c = p[i];
        if (c < 0x80u) {
            cp = c;
            n = 1;
        } else if (c >= 0xc0u && c < 0xfeu) {
            n = c < 0xe0u ? 2 : c < 0xf0u ? 3 : c < 0xf8u ? 4 : c < 0xfcu ? 5 : 6;
            cp = c & (0x7fu >> n);
            if (i + n > len) {
                n = 1;
                cp = 0xfffdu;
            } else {
                for (size_t k = 1; k < n; k++) {
                    if ((p[i + k] & 0xc0u) != 0x80u) {
                        n = 1;
                        cp = 0xfffdu;
                        break;
                    }
                    cp = (cp << 6) | (p[i + k] & 0x3fu);
                }
            }
        } else {
            cp = 0xfffdu;
            n = 1;
        }
        i += n;
        if (cp >= 0xd800u && cp < 0xdc00u && i + 3 <= len && p[i] == 0xedu &&
            (p[i + 1] & 0xf0u) == 0xb0u && (p[i + 2] & 0xc0u) == 0x80u) {
            uint32_t lo = 0xd000u | ((uint32_t)(p[i + 1] & 0x3fu) << 6) | (p[i + 2] & 0x3fu);
            cp = 0x10000u + ((cp - 0xd800u) << 10) + (lo - 0xdc00u);
            i += 3;
        } else if ((cp >= 0xd800u && cp < 0xe000u) || cp > 0x10ffffu) {
            cp = 0xfffdu;
        }
        if (cp < 0x80u) {
            out[o++] = (uint8_t)cp;
        } else if (cp < 0x800u) {
            out[o++] = (uint8_t)(0xc0u | (cp >> 6));
            out[o++] = (uint8_t)(0x80u | (cp & 0x3fu));
        } else if (cp < 0x10000u) {
            out[o++] = (uint8_t)(0xe0u | (cp >> 12));
            out[o++] = (uint8_t)(0x80u | ((cp >> 6) & 0x3fu));
            out[o++] = (uint8_t)(0x80u | (cp & 0x3fu));
        } else {
            out[o++] = (uint8_t)(0xf0u | (cp >> 18));
            out[o++] = (uint8_t)(0x80u | ((cp >> 12) & 0x3fu));
            out[o++] = (uint8_t)(0x80u | ((cp >> 6) & 0x3fu));
            out[o++] = (uint8_t)(0x80u | (cp & 0x3fu));
        }
    }
    cl_cbor_enc_tstr(&x->e, (const char *)out, o);
    duk_pop(ctx);
    enc_check(js, ctx, x);
}

static void enc_number(enc_t *x, double v)
{
    /* integral and inside int64: an integer (-0 too); else the shortest float */
    if (v >= -9223372036854775808.0 && v < 9223372036854775808.0) {
        int64_t i = (int64_t)v;
        if ((double)i == v) {
            cl_cbor_enc_int(&x->e, i);
            return;
        }
    }
    cl_cbor_enc_double(&x->e, v);
}

static void enc_value(cl_js_t *js, duk_context *ctx, enc_t *x, duk_idx_t idx, unsigned depth);

/* A plain object as a map. Its pair count is known only at the end (values
 * that are undefined are left out), so 9 bytes are reserved for the head
 * and the pairs moved down behind the real one. */
static void enc_object(cl_js_t *js, duk_context *ctx, enc_t *x, duk_idx_t idx, unsigned depth)
{
    size_t start = x->e.len;
    if (x->e.size - x->e.len < CL_CBOR_MAX_HEAD)
        enc_too_large(js, ctx, x);
    x->e.len += CL_CBOR_MAX_HEAD;
    uint64_t pairs = 0;
    duk_enum(ctx, idx, DUK_ENUM_OWN_PROPERTIES_ONLY);
    while (duk_next(ctx, -1, 1)) {
        if (duk_is_undefined(ctx, -1)) {
            duk_pop_2(ctx);
            continue;
        }
        duk_size_t klen;
        const char *k = duk_get_lstring(ctx, -2, &klen);
        enc_text(js, ctx, x, k, klen);
        enc_value(js, ctx, x, -1, depth + 1);
        pairs++;
        duk_pop_2(ctx);
    }
    duk_pop(ctx);
    uint8_t head[CL_CBOR_MAX_HEAD];
    cl_cbor_enc_t h;
    size_t hlen;
    cl_cbor_enc_init(&h, head, sizeof head);
    cl_cbor_enc_map(&h, (size_t)pairs);
    if (cl_cbor_enc_finish(&h, &hlen) != CL_OK)
        enc_too_large(js, ctx, x);
    size_t body = x->e.len - start - CL_CBOR_MAX_HEAD;
    memmove(x->e.buf + start + hlen, x->e.buf + start + CL_CBOR_MAX_HEAD, body);
    memcpy(x->e.buf + start, head, hlen);
    x->e.len = start + hlen + body;
}

static void enc_value(cl_js_t *js, duk_context *ctx, enc_t *x, duk_idx_t idx, unsigned depth)
{
    idx = duk_normalize_index(ctx, idx);
    duk_require_stack(ctx, 8);
    switch (duk_get_type(ctx, idx)) {
    case DUK_TYPE_UNDEFINED: /* only reached in arrays (maps leave it out) */
    case DUK_TYPE_NULL: cl_cbor_enc_null(&x->e); break;
    case DUK_TYPE_BOOLEAN: cl_cbor_enc_bool(&x->e, duk_get_boolean(ctx, idx) != 0); break;
    case DUK_TYPE_NUMBER: {
        double v = duk_get_number(ctx, idx);
        if (v != v || v - v != 0.0)
            enc_fail(js, ctx, x, "NaN and Infinity cannot be converted");
        enc_number(x, v);
        break;
    }
    case DUK_TYPE_STRING: {
        if (duk_is_symbol(ctx, idx))
            enc_fail(js, ctx, x, "a Symbol cannot be converted");
        duk_size_t len;
        const char *s = duk_get_lstring(ctx, idx, &len);
        enc_text(js, ctx, x, s, len);
        return;
    }
    case DUK_TYPE_BUFFER:
    case DUK_TYPE_OBJECT: {
        if (duk_is_function(ctx, idx))
            enc_fail(js, ctx, x, "a function cannot be converted");
        if (duk_is_buffer_data(ctx, idx)) {
            if (x->state)
                enc_fail(js, ctx, x, "byte arrays cannot be kept (use text or numbers)");
            duk_size_t len = 0;
            const void *p = duk_get_buffer_data(ctx, idx, &len);
            if (len > x->limit)
                enc_too_large(js, ctx, x);
            cl_cbor_enc_bstr(&x->e, p != NULL ? p : "", len);
            break;
        }
        void *h = duk_get_heapptr(ctx, idx);
        for (unsigned i = 0; i < depth && i < CL_JS_MAX_DEPTH; i++)
            if (x->path[i] == h)
                enc_fail(js, ctx, x, "a cycle cannot be converted");
        if (depth >= CL_JS_MAX_DEPTH)
            enc_fail(js, ctx, x, "nested deeper than " CL_JS_STR(CL_JS_MAX_DEPTH) " levels");
        x->path[depth] = h;
        if (duk_is_array(ctx, idx)) {
            duk_size_t n = duk_get_length(ctx, idx);
            /* every element takes a byte at least: a huge sparse array ends here */
            if (n > x->limit)
                enc_too_large(js, ctx, x);
            cl_cbor_enc_array(&x->e, (size_t)n);
            for (duk_size_t i = 0; i < n; i++) {
                duk_get_prop_index(ctx, idx, (duk_uarridx_t)i);
                enc_value(js, ctx, x, -1, depth + 1);
                duk_pop(ctx);
            }
            break;
        }
        duk_get_prototype(ctx, idx);
        void *proto = duk_get_heapptr(ctx, -1);
        duk_pop(ctx);
        if (proto != NULL && proto != js->obj_proto)
            enc_fail(js, ctx, x, "only plain objects and arrays can be converted");
        enc_object(js, ctx, x, idx, depth);
        break;
    }
    default: /* lightfunc (not used: built-ins are real functions), pointer */
        enc_fail(js, ctx, x, "a function cannot be converted");
    }
    enc_check(js, ctx, x);
}

/* Converts the value at idx into js->buf (at most limit bytes); *len is its length. */
static void encode(cl_js_t *js, duk_context *ctx, duk_idx_t idx, size_t limit, const char *what,
                   bool state, size_t *len)
{
    if (js->buf == NULL || js->buf_size < limit + ENC_SLACK) {
        uint8_t *nb = malloc(limit + ENC_SLACK);
        if (nb == NULL)
            own_error(js, ctx, CL_ERR_FULL, "%s: out of memory", what);
        if (js->buf != NULL) {
            cl_wipe(js->buf, js->buf_size);
            free(js->buf);
        }
        js->buf = nb;
        js->buf_size = limit + ENC_SLACK;
    }
    enc_t x;
    cl_cbor_enc_init(&x.e, js->buf, js->buf_size);
    x.limit = limit;
    x.what = what;
    x.state = state;
    enc_value(js, ctx, &x, idx, 0);
    *len = x.e.len;
}

/* ------------------------------------------------------------------ */
/* The stash                                                           */
/* ------------------------------------------------------------------ */

/* Keeps the value at the top reachable under `key` and returns its heap
 * pointer (the value stays on the stack). */
static void *stash(duk_context *ctx, const char *key)
{
    void *h = duk_get_heapptr(ctx, -1);
    duk_push_global_stash(ctx);
    duk_dup(ctx, -2);
    duk_put_prop_string(ctx, -2, key);
    duk_pop(ctx);
    return h;
}

/* Replaces the state object with the one made from CBOR p[0..len); when
 * its value changed, the conditions' frozen copy is made again when next
 * needed. */
static void set_state(cl_js_t *js, duk_context *ctx, const uint8_t *p, size_t len, bool changed)
{
    dec_map(js, ctx, p, len, false, false, "state");
    js->state = stash(ctx, "state");
    duk_pop(ctx);
    if (!changed)
        return;
    duk_push_global_stash(ctx);
    duk_del_prop_string(ctx, -1, "cond_state");
    duk_pop(ctx);
    js->cond_state = NULL;
}

/* Makes p[0..len) the committed state (a copy), or fails with the old one kept. */
static void commit_snap(cl_js_t *js, duk_context *ctx, const uint8_t *p, size_t len)
{
    uint8_t *s = malloc(len);
    if (s == NULL)
        own_error(js, ctx, CL_ERR_FULL, "state: out of memory");
    memcpy(s, p, len);
    if (js->snap != NULL) {
        cl_wipe(js->snap, js->snap_len);
        free(js->snap);
    }
    js->snap = s;
    js->snap_len = len;
}

/* ------------------------------------------------------------------ */
/* Native functions                                                    */
/* ------------------------------------------------------------------ */

static duk_ret_t nat_now(duk_context *ctx)
{
    cl_js_t *js = sandbox_of(ctx);
    duk_push_number(ctx, js->env.now_ms != NULL ? (double)js->env.now_ms(js->env.arg) : 0.0);
    return 1;
}

static duk_ret_t nat_random(duk_context *ctx)
{
    duk_push_number(ctx, js_random(&sandbox_of(ctx)->u));
    return 1;
}

static bool name_ok(const char *s, size_t len)
{
    return len >= 1 && len <= CL_JS_NAME_MAX && cl_cbor_utf8_valid((const uint8_t *)s, len);
}

/* emit(action, target, properties) */
static duk_ret_t nat_emit(duk_context *ctx)
{
    cl_js_t *js = sandbox_of(ctx);
    if (!js->in_run || js->emit == NULL)
        own_error(js, ctx, CL_ERR_STATE, "emit: only while the script runs");
    if (js->in_emit)
        own_error(js, ctx, CL_ERR_STATE, "emit: called while converting an emit's properties");
    if (js->own_st != CL_OK) /* an earlier emit failed: so do all after it */
        rethrow_own(ctx, js);
    if (js->n_emits >= js->max_emit)
        own_error(js, ctx, CL_ERR_LIMIT, "too many emits (max %u)", (unsigned)js->max_emit);

    cl_js_emit_t e;
    memset(&e, 0, sizeof e);
    duk_size_t len = 0;
    if (!duk_is_string(ctx, 0) || duk_is_symbol(ctx, 0) ||
        (e.action = duk_get_lstring(ctx, 0, &len), !name_ok(e.action, len)))
        own_error(js, ctx, CL_ERR_BAD_INPUT, "emit: the action must be a text of 1 to %d bytes",
                  CL_JS_NAME_MAX);
    e.action_len = len;

    if (duk_is_number(ctx, 1)) {
        double id = duk_get_number(ctx, 1);
        if (!(id >= 1.0 && id <= 4294967295.0) || (double)(uint32_t)id != id)
            own_error(js, ctx, CL_ERR_BAD_INPUT,
                      "emit: a target client id must be an integer from 1 to 4294967295");
        e.target_id = (uint32_t)id;
    } else if (duk_is_string(ctx, 1) && !duk_is_symbol(ctx, 1)) {
        const char *g = duk_get_lstring(ctx, 1, &len);
        if (len < 2 || g[0] != '@' || !name_ok(g + 1, len - 1))
            own_error(js, ctx, CL_ERR_BAD_INPUT,
                      "emit: a target group must be \"@\" and a name of 1 to %d bytes",
                      CL_JS_NAME_MAX);
        e.target_is_group = true;
        e.target_group = g + 1;
        e.target_group_len = len - 1;
    } else {
        own_error(js, ctx, CL_ERR_BAD_INPUT,
                  "emit: the target must be a client id (an integer >= 1) or \"@group\"");
    }

    static const uint8_t empty_map[1] = {0xa0};
    if (duk_is_undefined(ctx, 2)) {
        e.props = empty_map;
        e.props_len = 1;
    } else {
        if (!duk_is_object(ctx, 2) || duk_is_array(ctx, 2) || duk_is_function(ctx, 2) ||
            duk_is_buffer_data(ctx, 2))
            own_error(js, ctx, CL_ERR_BAD_INPUT, "emit: the properties must be an object");
        js->in_emit = true; /* getters run while converting: no emit from there */
        size_t plen;
        encode(js, ctx, 2, CL_JS_MAX_EMIT_PROPS, "emit: properties", false, &plen);
        js->in_emit = false;
        e.props = js->buf;
        e.props_len = plen;
    }
    js->n_emits++;
    cl_status_t st = js->emit(js->emit_arg, &e);
    if (st != CL_OK)
        own_error(js, ctx, st, "emit: refused (%s)", cl_status_str(st));
    return 0;
}

/* ------------------------------------------------------------------ */
/* Building a heap                                                     */
/* ------------------------------------------------------------------ */

/* [ ... ] -> [ ... function ]: compiles pre + src + post (a function expression). */
static void compile(duk_context *ctx, const char *pre, const char *src, size_t len,
                    const char *post, const char *name)
{
    duk_push_string(ctx, pre);
    duk_push_lstring(ctx, src, len);
    duk_push_string(ctx, post);
    duk_concat(ctx, 3);
    duk_push_string(ctx, name);
    duk_compile(ctx, DUK_COMPILE_FUNCTION | DUK_COMPILE_STRICT);
}

static duk_ret_t sc_setup(duk_context *ctx, void *udata)
{
    op_t *op = udata;
    cl_js_t *js = op->js;

    duk_push_object(ctx);
    duk_get_prototype(ctx, -1);
    js->obj_proto = stash(ctx, "object_prototype");
    duk_pop_2(ctx);
    for (int i = 0; i < K_COUNT; i++) {
        duk_push_string(ctx, KEY_NAMES[i]);
        duk_push_global_stash(ctx);
        duk_dup(ctx, -2);
        duk_put_prop_index(ctx, -2, (duk_uarridx_t)i);
        duk_pop(ctx);
        js->keys[i] = duk_get_heapptr(ctx, -1);
        duk_pop(ctx);
    }

    /* now() and random(); what a rule must not have goes in the lockdown */
    duk_push_global_object(ctx);
    duk_push_c_function(ctx, nat_now, 0);
    duk_put_prop_string(ctx, -2, "now");
    duk_push_c_function(ctx, nat_random, 0);
    duk_put_prop_string(ctx, -2, "random");
    duk_pop(ctx);

    duk_push_c_function(ctx, nat_emit, 3);
    js->fn_emit = stash(ctx, "emit");
    duk_pop(ctx);

    if (js->cond != NULL) {
        compile(ctx, COND_PRE_CHECK, js->cond, js->cond_len, COND_POST_CHECK, "if");
        duk_pop(ctx);
        compile(ctx, COND_PRE, js->cond, js->cond_len, COND_POST, "if");
        js->fn_cond = stash(ctx, "cond");
        duk_pop(ctx);
    }
    if (js->script != NULL) {
        char pre[sizeof PROBE_PRE + sizeof js->end_name],
            post[sizeof PROBE_POST + sizeof js->end_name];
        snprintf(pre, sizeof pre, PROBE_PRE, js->end_name);
        snprintf(post, sizeof post, PROBE_POST, js->end_name);
        compile(ctx, pre, js->script, js->script_len, post, "script");
        duk_call(ctx, 0); /* returns before the body: runs nothing of the rule's */
        if (!duk_get_boolean(ctx, -1))
            own_error(js, ctx, CL_ERR_BAD_INPUT,
                      "SyntaxError: unbalanced '}' (the script ends before its end)");
        duk_pop(ctx);
        compile(ctx, SCRIPT_PRE, js->script, js->script_len, SCRIPT_POST, "script");
        js->fn_script = stash(ctx, "script");
        duk_pop(ctx);
    }

    /* freeze the world: globals, built-ins, prototypes, emit */
    compile(ctx, "", LOCKDOWN_SRC, strlen(LOCKDOWN_SRC), "", "lockdown");
    duk_push_array(ctx);
    duk_push_global_object(ctx);
    duk_put_prop_index(ctx, -2, 0);
    duk_push_heapptr(ctx, js->fn_emit);
    duk_put_prop_index(ctx, -2, 1);
    if (js->fn_cond != NULL) {
        duk_push_heapptr(ctx, js->fn_cond);
        duk_put_prop_index(ctx, -2, 2);
    }
    if (js->fn_script != NULL) {
        duk_push_heapptr(ctx, js->fn_script);
        duk_put_prop_index(ctx, -2, 3);
    }
    duk_call(ctx, 1);
    duk_pop(ctx);

    set_state(js, ctx, js->snap, js->snap_len, true);
    return 0;
}

static void kill_heap(cl_js_t *js);

/*
 * Builds the heap: Duktape, the globals, the compiled sources, the
 * lockdown, state from js->snap. On failure the heap is gone again.
 */
static cl_status_t build(cl_js_t *js, char *why, size_t why_size)
{
    jmp_buf jb;
    js->jmp = &jb;
    if (setjmp(jb) != 0) {
        js->jmp = NULL;
        abandon_heap(js);
        why_set(why, why_size, "ECMAScript engine failure (%s)", js->fatal_msg);
        return CL_FAIL(CL_ERR_STATE);
    }
    js->oom = false;
    /* Duktape cannot fail cleanly while it creates its built-ins (an
     * allocation error there recurses until the C stack is gone), so the
     * cap is checked after duk_create_heap rather than during it. */
    js->init = true;
    js->ctx = duk_create_heap(js_alloc, js_realloc, js_free, js, js_fatal_heap);
    js->init = false;
    js->jmp = NULL;
    if (js->ctx == NULL) {
        abandon_heap(js); /* whatever a failed init left behind */
        why_set(why, why_size, "out of memory");
        return CL_FAIL(CL_ERR_FULL);
    }
    js->dead = false;
    if (js->used > js->heap_cap) {
        size_t need = js->used;
        kill_heap(js);
        why_set(why, why_size, "heap limit of %zu bytes reached (the engine alone takes %zu)",
                js->heap_cap, need);
        return CL_FAIL(CL_ERR_LIMIT);
    }
    op_t op = {.js = js};
    cl_status_t st = enter(js, sc_setup, &op, false, why, why_size);
    if (st == CL_OK) {
        duk_gc(js->ctx, 0); /* what setup left behind */
        duk_gc(js->ctx, 0);
        return CL_OK;
    }
    if (!js->dead) {
        js->wipe = true;
        duk_destroy_heap(js->ctx);
        js->wipe = false;
        abandon_heap(js); /* nothing left: resets the pointers */
    }
    return st;
}

/* Brings a sandbox whose heap was abandoned back (state from its snapshot). */
static cl_status_t ready(cl_js_t *js, char *why, size_t why_size)
{
    if (!js->dead)
        return CL_OK;
    char w[CL_JS_WHY_MAX];
    cl_status_t st = build(js, w, sizeof w);
    if (st != CL_OK) {
        why_set(why, why_size, "the sandbox failed and cannot be rebuilt: %s", w);
        return CL_FAIL(CL_ERR_STATE);
    }
    return CL_OK;
}

/* Destroys a consistent heap (a failed rollback): the next call rebuilds it. */
static void kill_heap(cl_js_t *js)
{
    jmp_buf jb;
    js->jmp = &jb;
    if (setjmp(jb) == 0) {
        js->wipe = true;
        duk_destroy_heap(js->ctx);
    }
    js->wipe = false;
    js->jmp = NULL;
    abandon_heap(js);
}

/* ------------------------------------------------------------------ */
/* API                                                                 */
/* ------------------------------------------------------------------ */

static cl_status_t copy_source(const char *src, size_t len, const char *name, char **out, char *why,
                               size_t why_size)
{
    *out = NULL;
    if (src == NULL)
        return CL_OK;
    if (len == 0) {
        why_set(why, why_size, "the %s is empty", name);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (len > CL_JS_MAX_SOURCE) {
        why_set(why, why_size, "the %s is longer than %d bytes", name, CL_JS_MAX_SOURCE);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if (!cl_cbor_utf8_valid((const uint8_t *)src, len)) {
        why_set(why, why_size, "the %s is not valid UTF-8 text", name);
        return CL_FAIL(CL_ERR_BAD_INPUT);
    }
    if ((*out = malloc(len)) == NULL) {
        why_set(why, why_size, "out of memory");
        return CL_FAIL(CL_ERR_FULL);
    }
    memcpy(*out, src, len);
    return CL_OK;
}

cl_status_t cl_js_create(cl_js_t **out, const cl_js_env_t *env, const cl_js_limits_t *limits,
                         const char *cond, size_t cond_len, const char *script, size_t script_len,
                         char *why, size_t why_size)
{
    if (why != NULL && why_size > 0)
        why[0] = '\0';
    if (out == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out = NULL;
    if (env == NULL || env->rand == NULL || limits == NULL || (cond == NULL && script == NULL)) {
        why_set(why, why_size, "no environment, limits or source");
        return CL_FAIL(CL_ERR_INVALID_ARG);
    }
    cl_js_t *js = calloc(1, sizeof *js);
    if (js == NULL) {
        why_set(why, why_size, "out of memory");
        return CL_FAIL(CL_ERR_FULL);
    }
    js->env = *env;
    js->heap_cap = limits->heap_bytes ? limits->heap_bytes : CL_JS_DEFAULT_HEAP;
    js->budget_ms = limits->budget_ms ? limits->budget_ms : CL_JS_DEFAULT_BUDGET_MS;
    js->max_emit = limits->max_emit ? limits->max_emit : CL_JS_DEFAULT_MAX_EMIT;
    js->max_state = limits->max_state ? limits->max_state : CL_JS_DEFAULT_MAX_STATE;
    if (js->heap_cap > MAX_HEAP_CAP)
        js->heap_cap = MAX_HEAP_CAP;
    if (js->budget_ms > MAX_BUDGET_MS)
        js->budget_ms = MAX_BUDGET_MS;
    if (js->max_state > MAX_STATE_CAP)
        js->max_state = MAX_STATE_CAP;
    js->dead = true;
    js->u.arg = env->arg;
    js->u.clock_us = env->clock_us;
    js->u.now_ms = env->now_ms;
    js->u.random = js_random;
    js->u.fatal = js_fatal_udata;

    cl_status_t st;
    uint8_t seed[40];
    if ((st = env->rand(env->arg, seed, sizeof seed)) != CL_OK) {
        why_set(why, why_size, "no random numbers (%s)", cl_status_str(st));
        cl_js_free(js);
        return CL_FAIL(CL_ERR_CRYPTO);
    }
    memcpy(js->rng.key, seed, 32);
    memcpy(&js->rng.ctr, seed + 32, 8);
    cl_wipe(seed, sizeof seed);
    snprintf(js->end_name, sizeof js->end_name, "__cl_end_%016llx",
             (unsigned long long)drbg_u64(&js->rng));

    static const uint8_t empty_map[1] = {0xa0};
    if ((st = copy_source(cond, cond_len, "condition", &js->cond, why, why_size)) != CL_OK ||
        (st = copy_source(script, script_len, "script", &js->script, why, why_size)) != CL_OK ||
        (st = (js->snap = malloc(1)) != NULL ? CL_OK : CL_FAIL(CL_ERR_FULL)) != CL_OK) {
        if (st == CL_ERR_FULL)
            why_set(why, why_size, "out of memory");
        cl_js_free(js);
        return st;
    }
    js->cond_len = cond != NULL ? cond_len : 0;
    js->script_len = script != NULL ? script_len : 0;
    js->snap[0] = empty_map[0];
    js->snap_len = 1;
    if ((st = build(js, why, why_size)) != CL_OK) {
        cl_js_free(js);
        return st;
    }
    *out = js;
    return CL_OK;
}

void cl_js_free(cl_js_t *js)
{
    if (js == NULL)
        return;
    if (js->ctx != NULL)
        kill_heap(js);
    abandon_heap(js);
    free(js->blocks);
    if (js->snap != NULL) {
        cl_wipe(js->snap, js->snap_len);
        free(js->snap);
    }
    if (js->buf != NULL) {
        cl_wipe(js->buf, js->buf_size);
        free(js->buf);
    }
    free(js->cond);
    free(js->script);
    cl_wipe(js, sizeof *js);
    free(js);
}

/* [ ... key value ] -> [ ... ]: redefines the property of the frozen object
 * at idx (DUK_DEFPROP_FORCE may change what freezing fixed; the property
 * stays read-only and non-configurable). */
static void force_prop(duk_context *ctx, duk_idx_t idx)
{
    duk_def_prop(ctx, idx, DUK_DEFPROP_HAVE_VALUE | DUK_DEFPROP_FORCE);
}

/* A new frozen properties object from the map at d (positioned after its
 * head, n pairs), its keys remembered for the next event when they fit. */
static void props_fresh(cl_js_t *js, duk_context *ctx, cl_cbor_dec_t *d, size_t n)
{
    js->evc.n_keys = UINT32_MAX;
    duk_push_bare_object(ctx);
    size_t kb = 0;
    bool fit = n <= EVC_KEYS;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t klen;
        if (cl_cbor_dec_tstr(d, &k, &klen) != CL_OK)
            dec_fail(js, ctx, "event", "map keys must be text");
        if (!cl_cbor_utf8_valid((const uint8_t *)k, klen))
            dec_fail(js, ctx, "event", "text is not valid UTF-8");
        duk_push_lstring(ctx, k, klen);
        if (fit && klen <= EVC_KEY_BYTES - kb) {
            js->evc.key_off[i] = (uint16_t)kb;
            js->evc.key_len[i] = (uint16_t)klen;
            js->evc.key_ptr[i] = duk_get_heapptr(ctx, -1); /* kept alive by the object */
            memcpy(js->evc.key_bytes + kb, k, klen);
            kb += klen;
        } else {
            fit = false;
        }
        dec_value(js, ctx, d, 1, true, true, "event");
        duk_put_prop(ctx, -3);
    }
    duk_push_heapptr(ctx, js->obj_proto);
    duk_set_prototype(ctx, -2);
    duk_freeze(ctx, -1);
    js->evc.props = stash(ctx, "event_properties");
    if (fit)
        js->evc.n_keys = (uint32_t)n;
}

/* The same keys as the remembered properties object, in the same order? */
static bool props_same_keys(cl_js_t *js, cl_cbor_dec_t d, size_t n)
{
    if (js->evc.props == NULL || js->evc.n_keys != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *k;
        size_t klen;
        if (cl_cbor_dec_tstr(&d, &k, &klen) != CL_OK || klen != js->evc.key_len[i] ||
            memcmp(k, js->evc.key_bytes + js->evc.key_off[i], klen) != 0 ||
            cl_cbor_dec_skip(&d) != CL_OK)
            return false;
    }
    return true;
}

/*
 * Pushes the event object, brought up to date with ev. The object and its
 * properties object are kept between calls (frozen; only the sandbox
 * changes them, with DUK_DEFPROP_FORCE): a properties map with the keys of
 * the previous one gets new values in the same object, CBOR identical to the
 * previous one (the engine evaluates "if" and then runs "script" on the same
 * event) is not converted at all. Nested maps and arrays are made anew.
 */
static void push_event(cl_js_t *js, duk_context *ctx, const cl_js_event_t *ev)
{
    if (ev->type_len > 0 &&
        (ev->type == NULL || !cl_cbor_utf8_valid((const uint8_t *)ev->type, ev->type_len)))
        dec_fail(js, ctx, "event", "the type is not valid UTF-8");
    const uint8_t *raw = ev->props != NULL ? ev->props : (const uint8_t *)"";
    size_t raw_len = ev->props != NULL ? ev->props_len : 0;
    static const uint8_t empty_map[1] = {0xa0};
    if (raw_len == 0) {
        raw = empty_map;
        raw_len = 1;
    }

    if (js->evc.obj == NULL) {
        duk_push_bare_object(ctx);
        for (int i = 0; i < K_COUNT; i++) {
            duk_push_heapptr(ctx, js->keys[i]);
            duk_push_undefined(ctx);
            duk_put_prop(ctx, -3);
        }
        duk_push_heapptr(ctx, js->obj_proto);
        duk_set_prototype(ctx, -2);
        duk_freeze(ctx, -1);
        js->evc.obj = stash(ctx, "event");
        js->evc.have = false;
        js->evc.raw_len = SIZE_MAX;
        js->evc.n_keys = UINT32_MAX;
    } else {
        duk_push_heapptr(ctx, js->evc.obj);
    }
    duk_idx_t obj = duk_get_top_index(ctx);

    if (js->evc.raw_len != raw_len || memcmp(js->evc.raw, raw, raw_len) != 0) {
        js->evc.raw_len = SIZE_MAX; /* until props matches raw again */
        js->dec_mutable = false;
        cl_cbor_dec_t d;
        cl_cbor_type_t t;
        size_t n;
        cl_cbor_dec_init(&d, raw, raw_len);
        if (cl_cbor_dec_peek(&d, &t) != CL_OK || t != CL_CBOR_MAP ||
            cl_cbor_dec_map(&d, &n) != CL_OK || n > cl_cbor_dec_remaining(&d) / 2)
            dec_fail(js, ctx, "event", "the properties are not a CBOR map");
        duk_require_stack(ctx, 8);
        if (props_same_keys(js, d, n)) {
            duk_push_heapptr(ctx, js->evc.props);
            duk_idx_t pidx = duk_get_top_index(ctx);
            for (size_t i = 0; i < n; i++) {
                const char *k;
                size_t klen;
                if (cl_cbor_dec_tstr(&d, &k, &klen) != CL_OK)
                    dec_fail(js, ctx, "event", "malformed CBOR");
                duk_push_heapptr(ctx, js->evc.key_ptr[i]);
                dec_value(js, ctx, &d, 1, true, true, "event");
                force_prop(ctx, pidx);
            }
            duk_pop(ctx);
        } else {
            duk_push_heapptr(ctx, js->keys[K_PROPERTIES]);
            props_fresh(js, ctx, &d, n);
            force_prop(ctx, obj);
        }
        if (!cl_cbor_dec_at_end(&d))
            dec_fail(js, ctx, "event", "bytes after the properties map");
        /* a Uint8Array can be written to: such properties are made anew each time */
        if (!js->dec_mutable && raw_len <= EVC_RAW_MAX) {
            memcpy(js->evc.raw, raw, raw_len);
            js->evc.raw_len = raw_len;
        }
    }

    if (!js->evc.have || js->evc.type_len != ev->type_len ||
        (ev->type_len > 0 && memcmp(js->evc.type, ev->type, ev->type_len) != 0)) {
        js->evc.have = false;
        duk_push_heapptr(ctx, js->keys[K_TYPE]);
        duk_push_lstring(ctx, ev->type_len > 0 ? ev->type : "", ev->type_len);
        force_prop(ctx, obj);
        if (ev->type_len <= EVC_TYPE_MAX) {
            if (ev->type_len > 0)
                memcpy(js->evc.type, ev->type, ev->type_len);
            js->evc.type_len = ev->type_len;
        } else {
            js->evc.type_len = SIZE_MAX; /* never equal: defined every time */
        }
        duk_push_heapptr(ctx, js->keys[K_SOURCE]);
        duk_push_number(ctx, (double)ev->source);
        force_prop(ctx, obj);
        duk_push_heapptr(ctx, js->keys[K_TIME]);
        duk_push_number(ctx, (double)ev->time_ms);
        force_prop(ctx, obj);
        js->evc.source = ev->source;
        js->evc.time_ms = ev->time_ms;
        js->evc.have = true;
    } else {
        if (js->evc.source != ev->source) {
            duk_push_heapptr(ctx, js->keys[K_SOURCE]);
            duk_push_number(ctx, (double)ev->source);
            force_prop(ctx, obj);
            js->evc.source = ev->source;
        }
        if (js->evc.time_ms != ev->time_ms) {
            duk_push_heapptr(ctx, js->keys[K_TIME]);
            duk_push_number(ctx, (double)ev->time_ms);
            force_prop(ctx, obj);
            js->evc.time_ms = ev->time_ms;
        }
    }
}

static duk_ret_t sc_cond(duk_context *ctx, void *udata)
{
    op_t *op = udata;
    cl_js_t *js = op->js;
    duk_push_heapptr(ctx, js->fn_cond);
    push_event(js, ctx, op->ev);
    if (js->cond_state == NULL) {
        dec_map(js, ctx, js->snap, js->snap_len, true, false, "state");
        js->cond_state = stash(ctx, "cond_state");
    } else {
        duk_push_heapptr(ctx, js->cond_state);
    }
    duk_call(ctx, 2);
    op->result = duk_to_boolean(ctx, -1) != 0; /* ToBoolean runs no code */
    return 0;
}

static cl_status_t check_call(cl_js_t *js, const cl_js_event_t *ev, char *why, size_t why_size)
{
    if (why != NULL && why_size > 0)
        why[0] = '\0';
    if (js == NULL || ev == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (js->busy) {
        why_set(why, why_size, "the sandbox is already running (called back from a callback)");
        return CL_FAIL(CL_ERR_STATE);
    }
    return ready(js, why, why_size);
}

cl_status_t cl_js_cond(cl_js_t *js, const cl_js_event_t *ev, bool *result, char *why,
                       size_t why_size)
{
    if (result == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *result = false;
    cl_status_t st = check_call(js, ev, why, why_size);
    if (st != CL_OK)
        return st;
    if (js->fn_cond == NULL) {
        *result = true; /* no condition: it holds */
        return CL_OK;
    }
    op_t op = {.js = js, .ev = ev};
    js->busy = true;
    st = enter(js, sc_cond, &op, true, why, why_size);
    js->busy = false;
    if (st == CL_OK)
        *result = op.result;
    return st;
}

/* After a successful call: exports state, rebuilds it from the export (so
 * nothing that is not in the CBOR survives) and commits it. */
static void finish_state(cl_js_t *js, duk_context *ctx, op_t *op)
{
    size_t len;
    duk_push_heapptr(ctx, js->state);
    encode(js, ctx, -1, js->max_state, "state", true, &len);
    duk_pop(ctx);
    op->changed = len != js->snap_len || memcmp(js->buf, js->snap, len) != 0;
    set_state(js, ctx, js->buf, len, op->changed);
    if (op->changed)
        commit_snap(js, ctx, js->buf, len);
}

static duk_ret_t sc_run(duk_context *ctx, void *udata)
{
    op_t *op = udata;
    cl_js_t *js = op->js;
    duk_push_heapptr(ctx, js->fn_script);
    push_event(js, ctx, op->ev);
    duk_push_heapptr(ctx, js->state);
    duk_push_heapptr(ctx, js->fn_emit);
    js->in_run = true;
    duk_call(ctx, 3);
    js->in_run = false;
    duk_pop(ctx);
    if (js->own_st != CL_OK) /* an emit failed and the script caught it */
        return 0;
    finish_state(js, ctx, op);
    return 0;
}

/* Puts state back to js->snap after a failed call; a heap where even that
 * fails is destroyed and rebuilt by the next call. */
static duk_ret_t sc_rollback(duk_context *ctx, void *udata)
{
    op_t *op = udata;
    set_state(op->js, ctx, op->js->snap, op->js->snap_len, false); /* snap is unchanged */
    return 0;
}

static void rollback(cl_js_t *js)
{
    if (js->dead)
        return; /* a fresh heap starts from the snapshot anyway */
    op_t op = {.js = js};
    char w[CL_JS_WHY_MAX];
    if (enter(js, sc_rollback, &op, false, w, sizeof w) != CL_OK && !js->dead)
        kill_heap(js);
}

cl_status_t cl_js_run(cl_js_t *js, const cl_js_event_t *ev, cl_js_emit_fn emit, void *emit_arg,
                      bool *state_changed, char *why, size_t why_size)
{
    if (state_changed == NULL)
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *state_changed = false;
    cl_status_t st = check_call(js, ev, why, why_size);
    if (st != CL_OK)
        return st;
    if (js->fn_script == NULL)
        return CL_OK;
    op_t op = {.js = js, .ev = ev};
    js->busy = true;
    js->emit = emit;
    js->emit_arg = emit_arg;
    js->n_emits = 0;
    st = enter(js, sc_run, &op, true, why, why_size);
    js->emit = NULL;
    js->emit_arg = NULL;
    if (st != CL_OK)
        rollback(js);
    js->busy = false;
    if (st == CL_OK)
        *state_changed = op.changed;
    return st;
}

cl_status_t cl_js_state_get(cl_js_t *js, uint8_t *out, size_t out_size, size_t *out_len)
{
    if (js == NULL || out_len == NULL || (out == NULL && out_size > 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    *out_len = 0;
    /* always what the last successful call committed (and at most max_state) */
    if (js->snap_len > js->max_state)
        return CL_FAIL(CL_ERR_LIMIT);
    if (out_size < js->snap_len)
        return CL_FAIL(CL_ERR_BUFFER_TOO_SMALL);
    memcpy(out, js->snap, js->snap_len);
    *out_len = js->snap_len;
    return CL_OK;
}

static duk_ret_t sc_state_set(duk_context *ctx, void *udata)
{
    op_t *op = udata;
    cl_js_t *js = op->js;
    /* convert, then export again: the committed form is the canonical one */
    dec_map(js, ctx, op->cbor, op->cbor_len, false, false, "state");
    size_t len;
    encode(js, ctx, -1, js->max_state, "state", true, &len);
    duk_pop(ctx);
    set_state(js, ctx, js->buf, len, true);
    commit_snap(js, ctx, js->buf, len);
    return 0;
}

cl_status_t cl_js_state_set(cl_js_t *js, const uint8_t *cbor, size_t len)
{
    if (js == NULL || (cbor == NULL && len > 0))
        return CL_FAIL(CL_ERR_INVALID_ARG);
    if (js->busy)
        return CL_FAIL(CL_ERR_STATE);
    if (len > js->max_state)
        return CL_FAIL(CL_ERR_LIMIT);
    if (len == 0 || cl_cbor_validate_seq(cbor, len, NULL) != CL_OK)
        return CL_FAIL(CL_ERR_BAD_INPUT);
    char w[CL_JS_WHY_MAX];
    cl_status_t st = ready(js, w, sizeof w);
    if (st != CL_OK)
        return st;
    op_t op = {.js = js, .cbor = cbor, .cbor_len = len};
    js->busy = true;
    st = enter(js, sc_state_set, &op, true, w, sizeof w);
    if (st != CL_OK)
        rollback(js);
    js->busy = false;
    return st;
}

size_t cl_js_heap_used(const cl_js_t *js)
{
    return js != NULL ? js->used : 0;
}

static duk_ret_t sc_fatal(duk_context *ctx, void *udata)
{
    (void)udata;
    duk_fatal(ctx, "injected fatal error");
    return 0;
}

cl_status_t cl_js_inject_fatal(cl_js_t *js, char *why, size_t why_size)
{
    cl_status_t st = check_call(js, &(cl_js_event_t){0}, why, why_size);
    if (st != CL_OK)
        return st;
    op_t op = {.js = js};
    js->busy = true;
    st = enter(js, sc_fatal, &op, false, why, why_size);
    js->busy = false;
    return st;
}
