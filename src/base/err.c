/*
 * err.c -- EF_E* names and texts; the error-buffer printf.
 */
#include "base/err.h"

#include <stdio.h>

static const struct {
    int code;
    const char *name;
    const char *text;
} errors[] = {
    {EF_OK, "EF_OK", "success"},
    {EF_ENOMEM, "EF_ENOMEM", "out of memory"},
    {EF_EINVAL, "EF_EINVAL", "invalid argument"},
    {EF_EPROTO, "EF_EPROTO", "protocol error"},
    {EF_EIO, "EF_EIO", "input/output error"},
    {EF_ETIMEDOUT, "EF_ETIMEDOUT", "timed out"},
    {EF_ENOTFOUND, "EF_ENOTFOUND", "not found"},
    {EF_EDB, "EF_EDB", "database error"},
    {EF_ELIMIT, "EF_ELIMIT", "limit exceeded"},
    {EF_EUTF8, "EF_EUTF8", "invalid UTF-8"},
    {EF_EAUTH, "EF_EAUTH", "authentication failed"},
    {EF_ECONFLICT, "EF_ECONFLICT", "conflict"},
};

const char *ef_strerror(int err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].text;
    return "unknown error";
}

const char *ef_errname(int err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].name;
    return "EF_E?";
}

void ef_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}
