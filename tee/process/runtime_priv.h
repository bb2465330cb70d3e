/*
 * runtime_priv.h - test hooks of the host-side runtime (runtime.c). Not part
 * of the public API (cloister/runtime.h); only tests/runtime uses it.
 */
#ifndef CLOISTER_TEE_PROCESS_RUNTIME_PRIV_H
#define CLOISTER_TEE_PROCESS_RUNTIME_PRIV_H

#include "cloister/runtime.h"

/**
 * Process runtime: how long the host waits for each frame from the core
 * process (default 30 s; -1 = forever). Lets a test of an unresponsive
 * child finish quickly. No effect on the in-process runtime.
 */
void cl_runtime_test_set_timeout(cl_runtime_t *rt, int timeout_ms);

#endif
