/* sort_util: the few sorts everybody needs, written once. */
#ifndef CONNFAULT_SORT_UTIL_H
#define CONNFAULT_SORT_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* qsort comparators, ascending. */
int cf_compare_u64(const void *a, const void *b);
int cf_compare_double(const void *a, const void *b);

/* Sorts items ascending and drops repeats in place; returns the new length. */
size_t cf_sort_unique_u64(uint64_t *items, size_t len);

/* The q-quantile (0..1, nearest rank below) of an ascending array; 0 when len is 0. */
uint64_t cf_quantile_u64(const uint64_t *sorted, size_t len, double q);

#endif
