/*
 * bench_common.h - helpers shared by the benchmarks: OpenSSL allocation
 * counting (installed with CRYPTO_set_mem_functions before any OpenSSL use),
 * the comparator for medians, and the CPU model for the report header.
 */
#ifndef CLOISTER_BENCH_COMMON_H
#define CLOISTER_BENCH_COMMON_H

#include <stddef.h>

/* Allocations made through OpenSSL's allocator since start-up. */
extern unsigned long long bench_allocs;
/* Installs the counting allocator; returns 0 when OpenSSL refused (already in use). */
int bench_count_allocations(void);
/* qsort comparator for doubles (ascending). */
int bench_cmp_double(const void *a, const void *b);
/* "model name" from /proc/cpuinfo, or "unknown". */
void bench_cpu_model(char *out, size_t size);

#endif
