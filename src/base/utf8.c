/*
 * utf8.c -- UTF-8 decoding, encoding, strict validation, UTF-16 offsets and
 * the one fold table (see utf8.h for what it folds and why).
 */
#include "base/utf8.h"

#include "base/err.h"

int ef_utf8_decode(const char *str, size_t n, size_t *i, uint32_t *cp)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t at = *i;
    if (at >= n)
        return EF_EINVAL;
    unsigned c = s[at];
    if (c < 0x80) {
        *cp = c;
        *i = at + 1;
        return 0;
    }
    size_t len;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
    } else {
        return EF_EINVAL;
    }
    if (len > n - at)
        return EF_EINVAL;
    for (size_t k = 1; k < len; k++) {
        unsigned b = s[at + k];
        if ((b & 0xC0) != 0x80)
            return EF_EINVAL;
        v = (v << 6) | (b & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return EF_EINVAL;
    *cp = v;
    *i = at + len;
    return 0;
}

size_t ef_utf8_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

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

uint32_t ef_utf8_lower(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp >= 0x0400 && cp <= 0x040F) /* Ѐ..Џ -> ѐ..џ */
        return cp + 0x50;
    if (cp >= 0x0410 && cp <= 0x042F) /* А..Я -> а..я */
        return cp + 0x20;
    return cp;
}

/* Non-ASCII code points outside Cyrillic: compatibility forms, spaces and
 * invisible characters. */
static uint32_t fold_other(uint32_t c)
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

uint32_t ef_utf8__fold_wide(uint32_t cp)
{
    if (cp < 0x80)
        return ef_utf8_fold(cp);
    if (cp >= 0x0400 && cp <= 0x045F) {
        uint32_t l = ef_utf8_lower(cp);
        return l == 0x0451 ? 0x0435 : l; /* ё -> е */
    }
    return fold_other(cp);
}
