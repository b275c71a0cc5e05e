/*
 * base/utf8.h -- UTF-8 encoding, strict validation and UTF-16 offsets.
 */
#ifndef EF_BASE_UTF8_H
#define EF_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes code point cp (<= U+10FFFF) as UTF-8 into out (room for 4 bytes);
 * returns the number of bytes written. */
size_t ef_utf8_encode(uint32_t cp, char *out);
/* Strict UTF-8 check: no overlongs, no surrogates, nothing above U+10FFFF. */
bool ef_utf8_valid(const char *s, size_t n);
/* Converts a UTF-16 code unit offset into a byte offset within the UTF-8
 * string s of n bytes. Returns EF_EINVAL when off lies beyond the string or
 * in the middle of a surrogate pair. */
int ef_utf16_to_byte(const char *s, size_t n, int64_t off16, size_t *out);

#endif /* EF_BASE_UTF8_H */
