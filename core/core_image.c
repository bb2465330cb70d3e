/*
 * core_image.c - the one exported symbol of the core image
 * (libcloister_core.so): the runtime dlsym()s CL_CORE_ENTRY_SYMBOL and gets
 * the ecall table. Everything else is hidden (core_image.map,
 * -Wl,--exclude-libs,ALL).
 */
#include "cloister/core.h"

/* A build-variant label inside the image: tests build a second image with
 * another label to get another MRENCLAVE from the same code and signer. */
#ifndef CL_CORE_IMAGE_VARIANT
#define CL_CORE_IMAGE_VARIANT "release"
#endif
__attribute__((used)) static const char image_variant[] =
    "cloister-core-image:" CL_CORE_IMAGE_VARIANT;

__attribute__((visibility("default"))) const cl_core_ecalls_t *cl_core_entry(void)
{
    return cl_core_ecall_table();
}
