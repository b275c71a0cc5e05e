/*
 * utf8.c -- strict validation, UTF-16 offsets and the rare part of the one
 * fold table. The decoder, the encoder and the common part of the fold are
 * inline in utf8.h (the matcher runs them once per character); see there
 * for what the fold does and why.
 */
#include "base/utf8.h"

#include "base/err.h"

bool ef_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        if (ef_utf8_decode(str, n, &i, &cp) != 0)
            return false;
    }
    return true;
}

int ef_utf16_to_byte(const char *str, size_t n, int64_t off16, size_t *out)
{
    const unsigned char *s = (const unsigned char *)str;
    if (off16 < 0)
        return EF_EINVAL;
    int64_t units = 0;
    size_t i = 0;
    while (units < off16) {
        if (i >= n)
            return EF_EINVAL;
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i + len > n)
            return EF_EINVAL;
        units += len == 4 ? 2 : 1;
        i += len;
    }
    if (units != off16) /* the offset splits a surrogate pair */
        return EF_EINVAL;
    *out = i;
    return 0;
}

/* ---- the fold ------------------------------------------------------------ */

/* The rest of the fold table (utf8.h has ASCII and Cyrillic inline):
 * compatibility forms, punctuation, spaces and invisible characters. */
uint32_t ef_utf8__fold_rare(uint32_t c)
{
    if (c >= 0x1C80 && c <= 0x1C86) { /* old Cyrillic letter forms */
        static const uint32_t old[7] = {0x0432, 0x0434, 0x043E, 0x0441, 0x0442, 0x0442, 0x044A};
        return old[c - 0x1C80];
    }
    if (c >= 0x2000 && c <= 0x200A)
        return EF_UTF8_SPACE;
    if (c >= 0x2010 && c <= 0x2015)
        return '-';
    switch (c) {
    case 0x212A: /* KELVIN SIGN */
        return 'k';
    case 0x017F: /* LONG S */
        return 's';
    case 0x2018:
    case 0x2019:
        return '\'';
    case 0x2212:
        return '-';
    case 0x0085:
    case 0x00A0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return EF_UTF8_SPACE;
    case 0x00AD:
    case 0x200B:
    case 0x2060:
    case 0xFEFF:
        return EF_UTF8_DROP;
    default:
        return c;
    }
}
