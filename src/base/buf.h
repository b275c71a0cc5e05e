/*
 * base/buf.h -- ef_buf, a growable byte buffer with a hard maximum.
 */
#ifndef EF_BASE_BUF_H
#define EF_BASE_BUF_H

#include <stddef.h>

/* ---- bounded buffer --------------------------------------------------- */

/* A growable byte buffer with a hard maximum (curl's dynbuf). The data is
 * always NUL-terminated so it can be used as a C string. */
typedef struct ef_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* ef_buf_append() fails with EF_ELIMIT beyond this */
} ef_buf;

void ef_buf_init(ef_buf *b, size_t max);
int ef_buf_append(ef_buf *b, const void *p, size_t n);
int ef_buf_appendf(ef_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ef_buf_reset(ef_buf *b);
void ef_buf_cleanup(ef_buf *b);
/* Hands the data to the caller (who frees it with ef_free) and resets b. */
char *ef_buf_steal(ef_buf *b, size_t *len);

#endif /* EF_BASE_BUF_H */
