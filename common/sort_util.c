/* sort_util: see sort_util.h. */
#include "sort_util.h"

#include <stdlib.h>

int cf_compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int cf_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

size_t cf_sort_unique_u64(uint64_t *items, size_t len)
{
    if (len == 0)
        return 0;
    qsort(items, len, sizeof(*items), cf_compare_u64);
    size_t kept = 1;
    for (size_t i = 1; i < len; i++) {
        if (items[i] != items[kept - 1])
            items[kept++] = items[i];
    }
    return kept;
}

uint64_t cf_quantile_u64(const uint64_t *sorted, size_t len, double q)
{
    if (len == 0)
        return 0;
    if (q <= 0)
        return sorted[0];
    if (q >= 1)
        return sorted[len - 1];
    return sorted[(size_t)(q * (double)(len - 1))];
}
