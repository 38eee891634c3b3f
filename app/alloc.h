/* alloc.h: allocation helpers that abort with the caller's __FILE__:__LINE__ when memory runs out. */
#ifndef HY_ALLOC_H
#define HY_ALLOC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- implementation (call through the macros below) ------------------------------------------------------------------ */

/* Reports the allocation site on stderr and aborts. Never returns. */
static inline void hy_alloc_fail_(const char *file, int line)
{
    fprintf(stderr, "%s:%d: out of memory\n", file, line);
    abort();
}

static inline void *hy_xmalloc_(size_t size, const char *file, int line)
{
    void *p = malloc(size != 0 ? size : 1);
    if (p == NULL)
        hy_alloc_fail_(file, line);
    return p;
}

static inline void *hy_xcalloc_(size_t n, size_t size, const char *file, int line)
{
    void *p = calloc(n != 0 ? n : 1, size != 0 ? size : 1);
    if (p == NULL)
        hy_alloc_fail_(file, line);
    return p;
}

static inline void *hy_xreallocarray_(void *old, size_t n, size_t size, const char *file, int line)
{
    if (size != 0 && n > SIZE_MAX / size)
        hy_alloc_fail_(file, line);
    void *p = realloc(old, n * size != 0 ? n * size : 1);
    if (p == NULL)
        hy_alloc_fail_(file, line);
    return p;
}

static inline char *hy_xmemdup_(const void *src, size_t len, const char *file, int line)
{
    if (len == SIZE_MAX)
        hy_alloc_fail_(file, line);
    char *p = (char *)hy_xmalloc_(len + 1, file, line);
    if (len != 0)
        memcpy(p, src, len);
    p[len] = '\0';
    return p;
}

/* ---- the helpers ------------------------------------------------------------------------------------------------------- */

/* Each returns memory owned by the caller (free() it) and never returns NULL: allocation failure aborts. */
#define hy_xmalloc(size) hy_xmalloc_((size), __FILE__, __LINE__)
#define hy_xcalloc(n, size) hy_xcalloc_((n), (size), __FILE__, __LINE__)
/* Resizes `old` to n * size bytes, aborting on overflow of the product too. */
#define hy_xreallocarray(old, n, size) hy_xreallocarray_((old), (n), (size), __FILE__, __LINE__)
/* Copies `len` bytes (which may include NUL bytes) and adds a terminating NUL. */
#define hy_xmemdup(src, len) hy_xmemdup_((src), (len), __FILE__, __LINE__)
#define hy_xstrdup(s) hy_xmemdup_((s), strlen(s), __FILE__, __LINE__)

#endif
