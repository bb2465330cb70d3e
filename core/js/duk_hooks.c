/*
 * duk_hooks.c - the functions Duktape's configuration (cl_duk_overrides.h)
 * calls instead of the operating system: the execution timeout check, the
 * clock for Date and performance.now(), Math.random() and the fatal error
 * handler.
 *
 * Linked into cloister_duktape (compiled with the project's full warnings,
 * unlike duktape.c) so that the Duktape archive references nothing of the
 * sandbox: everything goes through the heap udata (cl_duk_udata_t), plain
 * data and function pointers filled in by js.c.
 *
 * The budget: Duktape calls cl_duk_exec_timeout every
 * CL_DUK_INTERRUPT_INSTRUCTIONS bytecode instructions; each call charges
 * that many work units and, when the environment has a clock, compares it
 * with the deadline. Native built-ins (a regexp, JSON.stringify, a string
 * concatenation) execute no bytecode, so a loop of them would see the
 * check rarely; they allocate, though, and the sandbox's allocator charges
 * CL_DUK_ALLOC_WORK units per allocation through cl_duk_charge and looks
 * at the clock every CL_DUK_ALLOC_CLOCK_EVERY allocations, refusing memory
 * once the budget is gone. Once exceeded, the budget stays exceeded until
 * the sandbox disarms it: Duktape requires the timeout check to keep
 * saying so until the error has bubbled out of every catch and finally.
 *
 * The clock is first read at the first check of an entry, not when the
 * sandbox arms the budget: most conditions end before any check and never
 * pay for a clock read (an OCALL in an enclave). The budget therefore starts
 * at most CL_DUK_INTERRUPT_INSTRUCTIONS instructions or
 * CL_DUK_ALLOC_CLOCK_EVERY allocations late, which the work count covers.
 */
#include <stddef.h>

#include "cl_duk_overrides.h"

/* Reads the clock (when there is one) and the work count; sticky. */
static int budget_over(cl_duk_udata_t *u)
{
    if (u->expired)
        return 1;
    if (!u->armed)
        return 0;
    if (u->work >= u->work_limit) {
        u->expired = 1;
        return 1;
    }
    if (u->clock_us != NULL) {
        uint64_t now = u->clock_us(u->arg);
        if (!u->started) {
            /* the first check of this entry starts the clock: a call that
             * ends before it (most conditions) never reads it */
            u->started = 1;
            u->deadline_us = now + u->budget_us;
        } else if (now >= u->deadline_us) {
            u->expired = 1;
            return 1;
        }
    }
    return 0;
}

int cl_duk_exec_timeout(void *udata)
{
    cl_duk_udata_t *u = udata;
    if (u == NULL)
        return 0;
    if (u->armed)
        u->work += CL_DUK_INTERRUPT_INSTRUCTIONS;
    u->allocs = 0; /* the clock was just read: allocations start a new round */
    return budget_over(u);
}

int cl_duk_charge(cl_duk_udata_t *u, uint64_t units)
{
    if (u->expired)
        return 1;
    if (!u->armed)
        return 0;
    u->work += units;
    if (u->work >= u->work_limit) {
        u->expired = 1;
        return 1;
    }
    if (++u->allocs < CL_DUK_ALLOC_CLOCK_EVERY)
        return 0;
    u->allocs = 0;
    return budget_over(u);
}

double cl_duk_date_now(void *udata)
{
    cl_duk_udata_t *u = udata;
    if (u == NULL || u->now_ms == NULL)
        return 0.0;
    return (double)u->now_ms(u->arg);
}

double cl_duk_monotonic_ms(void *udata)
{
    cl_duk_udata_t *u = udata;
    if (u != NULL && u->clock_us != NULL)
        return (double)u->clock_us(u->arg) / 1000.0;
    return cl_duk_date_now(udata);
}

double cl_duk_random(void *udata)
{
    cl_duk_udata_t *u = udata;
    if (u == NULL || u->random == NULL)
        return 0.0;
    return u->random(u);
}

void cl_duk_fatal(void *udata, const char *msg)
{
    cl_duk_udata_t *u = udata;
    if (u != NULL && u->fatal != NULL)
        u->fatal(u, msg); /* longjmps back into the sandbox */
    /* Every heap is created by js.c with its udata and handler, so this is
     * unreachable; Duktape must not continue after a fatal error, and the
     * core has no abort(): trap. */
    __builtin_trap();
}
