/*
 * core/model/path.h - the "where" of a reason: a bounded dotted path such as
 * "rules[2].then[0].target" that schema.c and scenario.c build while they
 * walk a document, so every refusal names the field. Truncates, never
 * overflows.
 */
#ifndef CLOISTER_CORE_MODEL_PATH_H
#define CLOISTER_CORE_MODEL_PATH_H

#include <stdio.h>
#include <string.h>

#define CL_MPATH_MAX 128

typedef struct cl_mpath {
    char s[CL_MPATH_MAX + 1];
    size_t len;
} cl_mpath_t;

/** Appends ".seg" (or "seg" at the root); returns the old length for cl_mpath_pop. */
static inline size_t cl_mpath_push(cl_mpath_t *p, const char *seg, size_t len)
{
    size_t old = p->len, dot = p->len > 0 ? 1 : 0;
    if (CL_MPATH_MAX - p->len <= dot) /* keep what fits: reasons stay readable */
        return old;
    if (dot)
        p->s[p->len++] = '.';
    if (len > CL_MPATH_MAX - p->len)
        len = CL_MPATH_MAX - p->len;
    memcpy(p->s + p->len, seg, len);
    p->len += len;
    p->s[p->len] = 0;
    return old;
}

/** Appends "[i]"; returns the old length. */
static inline size_t cl_mpath_push_index(cl_mpath_t *p, size_t i)
{
    size_t old = p->len;
    char b[24];
    int k = snprintf(b, sizeof b, "[%zu]", i);
    if (k > 0 && (size_t)k <= CL_MPATH_MAX - p->len) {
        memcpy(p->s + p->len, b, (size_t)k);
        p->len += (size_t)k;
        p->s[p->len] = 0;
    }
    return old;
}

/** Back to a length cl_mpath_push returned (0: the root). */
static inline void cl_mpath_pop(cl_mpath_t *p, size_t old)
{
    p->len = old;
    p->s[old] = 0;
}

#endif
