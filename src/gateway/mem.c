/*
 * mem.c -- the only place that calls malloc/free directly.
 *
 * Every allocation in easyflow goes through these wrappers. Running out of
 * memory is not a condition the gateway can recover from in a useful way, so
 * the wrappers log once and abort (Redis zmalloc does the same).
 */
#include "ef.h"

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

/* ---- bounded buffer ---------------------------------------------------- */

void ef_buf_init(ef_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int buf_reserve(ef_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return EF_ELIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    b->data = ef_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int ef_buf_append(ef_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int ef_buf_appendf(ef_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return EF_EINVAL;
    int rc = buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void ef_buf_reset(ef_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void ef_buf_cleanup(ef_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *ef_buf_steal(ef_buf *b, size_t *len)
{
    char *d = b->data ? b->data : ef_strdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}
