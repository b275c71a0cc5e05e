/*
 * buf.c -- ef_buf, a growable byte buffer with a hard maximum (curl's dynbuf).
 */
#include "base/buf.h"

#include "base/err.h"
#include "base/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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
    ef_free(b->data);
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
