/*
 * base/hex.h -- the one hex digit reader (JSON \u escapes, signature and
 * key hex strings).
 */
#ifndef EF_BASE_HEX_H
#define EF_BASE_HEX_H

/* The value of hex digit c (either case), or -1. */
static inline int ef_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif /* EF_BASE_HEX_H */
