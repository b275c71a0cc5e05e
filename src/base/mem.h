/*
 * base/mem.h -- the allocation wrappers: the only raw malloc/free is in mem.c.
 */
#ifndef EF_BASE_MEM_H
#define EF_BASE_MEM_H

#include <stddef.h>

/* ---- memory ----------------------------------------------------------- */

/* These abort the process (with a log line) when memory runs out, so callers
 * never check for NULL. ef_free(NULL) is a no-op. */
void *ef_malloc(size_t n);
void *ef_calloc(size_t n, size_t size);
void *ef_realloc(void *p, size_t n);
char *ef_strdup(const char *s);
char *ef_strndup(const char *s, size_t n);
void ef_free(void *p);
/* printf into a new heap string owned by the caller. */
char *ef_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* EF_BASE_MEM_H */
