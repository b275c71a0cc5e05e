/*
 * base/err.h -- errors: EF_E* codes and their names.
 */
#ifndef EF_BASE_ERR_H
#define EF_BASE_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* ---- errors ----------------------------------------------------------- */

enum {
    EF_OK = 0,
    EF_ENOMEM = -1,    /* out of memory (normally we abort instead) */
    EF_EINVAL = -2,    /* bad argument or bad input */
    EF_EPROTO = -3,    /* payload does not follow the platform's protocol */
    EF_EIO = -4,       /* I/O or network failure */
    EF_ETIMEDOUT = -5, /* a deadline passed */
    EF_ENOTFOUND = -6, /* no such object */
    EF_EDB = -7,       /* the database refused or is unreachable */
    EF_ELIMIT = -8,    /* a configured bound was exceeded */
    EF_EUTF8 = -9,     /* text is not valid UTF-8 */
    EF_EAUTH = -10,    /* authentication failed */
    EF_ECONFLICT = -11 /* state conflicts with the request (e.g. checksum) */
};

/* Short human text for an EF_E* code ("out of memory"). Never NULL. */
const char *ef_strerror(int err);
/* Symbolic name for an EF_E* code ("EF_ENOMEM"). Never NULL. */
const char *ef_errname(int err);

/* printf into a caller's error buffer (err may be NULL or errlen 0). */
void ef_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif /* EF_BASE_ERR_H */
