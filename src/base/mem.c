/*
 * mem.c -- the only place that calls malloc/free directly.
 *
 * Every allocation in easyflow goes through these wrappers. Running out of
 * memory is not a condition the gateway can recover from in a useful way, so
 * the wrappers log once and abort (Redis zmalloc does the same).
 */
#include "base/mem.h"

#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "FATAL out of memory allocating %zu bytes\n", n);
    abort();
}

void *ef_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *ef_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *ef_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *ef_strdup(const char *s)
{
    if (!s)
        return NULL;
    return ef_strndup(s, strlen(s));
}

char *ef_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *p = ef_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void ef_free(void *p)
{
    free(p);
}

char *ef_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return ef_strdup("");
    char *p = ef_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}
