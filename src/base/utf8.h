/*
 * base/utf8.h -- UTF-8 decoding, encoding, strict validation, UTF-16
 * offsets, and the one character fold every layer shares.
 *
 * What it must never do: allocate, or accept what is not strict UTF-8
 * (overlong forms, surrogates, code points above U+10FFFF, truncated
 * sequences).
 *
 * Thread model: pure functions, callable from any thread.
 */
#ifndef EF_BASE_UTF8_H
#define EF_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Decodes the character at byte offset *i of s (n bytes), strictly. On
 * success stores it in *cp, advances *i past it and returns 0. Returns
 * EF_EINVAL, leaving *i and *cp untouched, when *i >= n or the bytes at *i
 * are not one valid UTF-8 character (overlong, surrogate, above U+10FFFF,
 * stray continuation byte, or cut short by the end of s). */
static inline int ef_utf8_decode(const char *s, size_t n, size_t *i, uint32_t *cp);
/* Writes code point cp (<= U+10FFFF) as UTF-8 into out (room for 4 bytes);
 * returns the number of bytes written. */
static inline size_t ef_utf8_encode(uint32_t cp, char *out);
/* Strict UTF-8 check (the rules of ef_utf8_decode) over all n bytes. */
bool ef_utf8_valid(const char *s, size_t n);
/* Converts a UTF-16 code unit offset into a byte offset within the UTF-8
 * string s of n bytes. Returns EF_EINVAL when off lies beyond the string or
 * in the middle of a surrogate pair. */
int ef_utf16_to_byte(const char *s, size_t n, int64_t off16, size_t *out);

/* ---- the fold ------------------------------------------------------------
 *
 * How text is compared: the matcher folds every message character with
 * ef_utf8_fold, and pattern text goes through the same table, so a pattern
 * and a message that differ only in folded characters match alike. The
 * fold is (everything not listed maps to itself):
 *   - case: ASCII A-Z and basic Cyrillic U+0400-U+042F to lower case
 *     (ef_utf8_lower), and the code points PCRE2 treats as case variants of
 *     them: KELVIN SIGN U+212A -> k, LONG S U+017F -> s, the old Cyrillic
 *     letter forms U+1C80-U+1C86 -> в д о с т т ъ;
 *   - ё and Ё -> е;
 *   - typographic quotes U+2018/U+2019 -> ', dashes U+2010-U+2015 and the
 *     minus sign U+2212 -> -;
 *   - whitespace -> EF_UTF8_SPACE: ASCII space and \t \n \v \f \r, U+0085,
 *     NBSP U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F,
 *     U+3000;
 *   - invisible characters -> EF_UTF8_DROP: soft hyphen U+00AD, zero width
 *     space U+200B, word joiner U+2060, BOM U+FEFF.
 * The fold is idempotent: ef_utf8_fold(ef_utf8_fold(c)) == ef_utf8_fold(c)
 * for every code point (markers aside). */

/* Returned by ef_utf8_fold instead of a code point; both lie above U+10FFFF
 * so they never collide with a character. */
#define EF_UTF8_SPACE 0x110000u /* whitespace: part of one space */
#define EF_UTF8_DROP 0x110001u  /* invisible: remove it */

/* The folded form of code point cp, or EF_UTF8_SPACE / EF_UTF8_DROP
 * (inline: the matcher calls it once per character). */
static inline uint32_t ef_utf8_fold(uint32_t cp);
/* The case part of the fold alone: ASCII A-Z and U+0400-U+042F to their
 * lower case twins, every other code point unchanged (Ё -> ё, not е). The
 * pattern compiler uses it where it must lower case without folding. */
static inline uint32_t ef_utf8_lower(uint32_t cp);

/* ---- inline definitions: the matcher's hot path --------------------------- */

/* The fold of code points outside ASCII and U+0400-U+045F (utf8.c). */
uint32_t ef_utf8__fold_rare(uint32_t cp);

static inline int ef_utf8_decode(const char *str, size_t n, size_t *i, uint32_t *cp)
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

static inline size_t ef_utf8_encode(uint32_t cp, char *o)
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

static inline uint32_t ef_utf8_lower(uint32_t cp)
{
    if (cp >= 'A' && cp <= 'Z')
        return cp + 32;
    if (cp >= 0x0400 && cp <= 0x040F) /* Ѐ..Џ -> ѐ..џ */
        return cp + 0x50;
    if (cp >= 0x0410 && cp <= 0x042F) /* А..Я -> а..я */
        return cp + 0x20;
    return cp;
}

static inline uint32_t ef_utf8_fold(uint32_t cp)
{
    if (cp < 0x80) {
        if (cp == ' ' || (cp >= '\t' && cp <= '\r'))
            return EF_UTF8_SPACE;
        return ef_utf8_lower(cp);
    }
    if (cp >= 0x0400 && cp <= 0x045F) {
        uint32_t l = ef_utf8_lower(cp);
        return l == 0x0451 ? 0x0435 : l; /* ё -> е */
    }
    return ef_utf8__fold_rare(cp);
}

#endif /* EF_BASE_UTF8_H */
