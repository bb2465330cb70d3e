/*
 * core_image.c - the one exported symbol of the core image
 * (libcloister_core.so): the runtime dlsym()s CL_CORE_ENTRY_SYMBOL and gets
 * the ecall table. Everything else is hidden (core_image.map,
 * -Wl,--exclude-libs,ALL).
 */
#include "cloister/core.h"

__attribute__((visibility("default"))) const cl_core_ecalls_t *cl_core_entry(void)
{
    return cl_core_ecall_table();
}
