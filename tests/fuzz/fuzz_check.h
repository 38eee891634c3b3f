/* fuzz_check.h: the invariant check shared by the fuzz targets: a violated condition is printed with its place, then
 * the process traps, so libFuzzer saves the input as a crash. */
#ifndef HY_FUZZ_CHECK_H
#define HY_FUZZ_CHECK_H

#include <stdio.h>

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond)) {                                                                                                             \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);                                         \
            __builtin_trap();                                                                                                      \
        }                                                                                                                          \
    } while (0)

#endif
