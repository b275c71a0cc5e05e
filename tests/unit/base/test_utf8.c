/*
 * test_utf8.c -- the strict UTF-8 decoder, encoder and validator, UTF-16
 * offsets, and the one fold table (src/base/utf8.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "base/err.h"
#include "base/utf8.h"

/* Decodes the C string literal lit at offset 0: the return code, and on
 * success the code point and the length. */
static int dec(const char *lit, size_t n, uint32_t *cp, size_t *len)
{
    size_t i = 0;
    *cp = 0xDEADu;
    int rc = ef_utf8_decode(lit, n, &i, cp);
    *len = i;
    return rc;
}
#define DEC(lit, cp, len) dec((lit), sizeof(lit) - 1, (cp), (len))

static void test_decode_valid(void **state)
{
    (void)state;
    uint32_t cp;
    size_t len;
    assert_int_equal(DEC("a", &cp, &len), 0);
    assert_int_equal(cp, 'a');
    assert_int_equal(len, 1);
    assert_int_equal(DEC("\xD0\x81", &cp, &len), 0); /* Ё */
    assert_int_equal(cp, 0x0401);
    assert_int_equal(len, 2);
    assert_int_equal(DEC("\xE2\x80\xA8", &cp, &len), 0); /* U+2028 */
    assert_int_equal(cp, 0x2028);
    assert_int_equal(len, 3);
    assert_int_equal(DEC("\xF0\x9F\x98\xA1", &cp, &len), 0); /* 😡 */
    assert_int_equal(cp, 0x1F621);
    assert_int_equal(len, 4);
    assert_int_equal(DEC("\xF4\x8F\xBF\xBF", &cp, &len), 0); /* U+10FFFF */
    assert_int_equal(cp, 0x10FFFF);
    assert_int_equal(DEC("\xC2\x80", &cp, &len), 0); /* smallest 2-byte */
    assert_int_equal(cp, 0x80);
    assert_int_equal(DEC("\xEF\xBB\xBF", &cp, &len), 0); /* BOM */
    assert_int_equal(cp, 0xFEFF);

    /* walks a string, advancing the offset */
    const char s[] = "я\xE2\x80\xA8z";
    size_t i = 0;
    uint32_t got[3];
    for (int k = 0; k < 3; k++)
        assert_int_equal(ef_utf8_decode(s, sizeof(s) - 1, &i, &got[k]), 0);
    assert_int_equal(got[0], 0x044F);
    assert_int_equal(got[1], 0x2028);
    assert_int_equal(got[2], 'z');
    assert_int_equal(i, sizeof(s) - 1);
    assert_int_equal(ef_utf8_decode(s, sizeof(s) - 1, &i, &got[0]), EF_EINVAL); /* at the end */
    assert_int_equal(i, sizeof(s) - 1);
}

static void test_decode_invalid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {"\x80", 1},             /* stray continuation */
        {"\xBF", 1},             /* stray continuation */
        {"\xC0\xAF", 2},         /* overlong '/' */
        {"\xC1\xBF", 2},         /* overlong */
        {"\xE0\x80\xAF", 3},     /* overlong */
        {"\xE0\x9F\xBF", 3},     /* overlong U+07FF */
        {"\xF0\x8F\xBF\xBF", 4}, /* overlong U+FFFF */
        {"\xED\xA0\x80", 3},     /* surrogate U+D800 */
        {"\xED\xBF\xBF", 3},     /* surrogate U+DFFF */
        {"\xF4\x90\x80\x80", 4}, /* U+110000 */
        {"\xF5\x80\x80\x80", 4}, /* lead byte beyond F4 */
        {"\xFF", 1},
        {"\xD0", 1},         /* truncated */
        {"\xE2\x80", 2},     /* truncated */
        {"\xF0\x9F\x98", 3}, /* truncated */
        {"\xD0\x41", 2},     /* continuation missing */
        {"\xE2\x28\xA1", 3}, /* continuation missing */
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        size_t i = 0;
        uint32_t cp = 7;
        if (ef_utf8_decode(bad[k].s, bad[k].n, &i, &cp) != EF_EINVAL)
            fail_msg("case %zu decoded", k);
        assert_int_equal(i, 0);
        assert_int_equal(cp, 7);
        assert_false(ef_utf8_valid(bad[k].s, bad[k].n));
    }
    /* the length limits the decoder, not the NUL */
    size_t i = 0;
    uint32_t cp;
    assert_int_equal(ef_utf8_decode("\xD0\x81", 1, &i, &cp), EF_EINVAL);
}

static void test_encode_roundtrip(void **state)
{
    (void)state;
    static const uint32_t cps[] = {0,      'a',    0x7F,   0x80,   0x7FF,   0x800,   0x0451,
                                   0x2028, 0xD7FF, 0xE000, 0xFFFF, 0x10000, 0x1F621, 0x10FFFF};
    static const size_t lens[] = {1, 1, 1, 2, 2, 3, 2, 3, 3, 3, 3, 4, 4, 4};
    for (size_t k = 0; k < sizeof(cps) / sizeof(cps[0]); k++) {
        char b[4];
        size_t n = ef_utf8_encode(cps[k], b);
        assert_int_equal(n, lens[k]);
        assert_true(ef_utf8_valid(b, n));
        size_t i = 0;
        uint32_t cp;
        assert_int_equal(ef_utf8_decode(b, n, &i, &cp), 0);
        assert_int_equal(cp, cps[k]);
        assert_int_equal(i, n);
    }
    char b[4];
    assert_int_equal(ef_utf8_encode(0x0435, b), 2);
    assert_memory_equal(b, "\xD0\xB5", 2);
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(ef_utf8_valid("", 0));
    assert_true(ef_utf8_valid("plain ascii", 11));
    const char ok[] = "Где мой заказ? 😡 \xE2\x80\xA8 ok";
    assert_true(ef_utf8_valid(ok, sizeof(ok) - 1));
    const char emoji[] = "ok \xF0\x9F\x98\xA1";
    assert_true(ef_utf8_valid(emoji, sizeof(emoji) - 1));
    assert_false(ef_utf8_valid(emoji, sizeof(emoji) - 2)); /* cuts the emoji short */
    const char nul[] = "a\0b";
    assert_true(ef_utf8_valid(nul, 3)); /* NUL is a valid character */
    assert_false(ef_utf8_valid("ok\xC0\xAF", 4));
}

static void test_utf16_offsets(void **state)
{
    (void)state;
    const char s[] = "aя😡b"; /* UTF-16 units: a=1 я=1 😡=2 b=1; bytes 1, 2, 4, 1 */
    size_t n = sizeof(s) - 1, out = 99;
    assert_int_equal(ef_utf16_to_byte(s, n, 0, &out), 0);
    assert_int_equal(out, 0);
    assert_int_equal(ef_utf16_to_byte(s, n, 1, &out), 0);
    assert_int_equal(out, 1);
    assert_int_equal(ef_utf16_to_byte(s, n, 2, &out), 0);
    assert_int_equal(out, 3);
    out = 99;
    assert_int_equal(ef_utf16_to_byte(s, n, 3, &out), EF_EINVAL); /* inside the pair */
    assert_int_equal(out, 99);
    assert_int_equal(ef_utf16_to_byte(s, n, 4, &out), 0);
    assert_int_equal(out, 7);
    assert_int_equal(ef_utf16_to_byte(s, n, 5, &out), 0);
    assert_int_equal(out, 8);
    assert_int_equal(ef_utf16_to_byte(s, n, 6, &out), EF_EINVAL); /* beyond */
    assert_int_equal(ef_utf16_to_byte(s, n, -1, &out), EF_EINVAL);
}

static void test_fold_table(void **state)
{
    (void)state;
    static const uint32_t pairs[][2] = {
        /* case: ASCII and basic Cyrillic */
        {'A', 'a'},
        {'Z', 'z'},
        {'a', 'a'},
        {'0', '0'},
        {'@', '@'},
        {0x0410, 0x0430}, /* А */
        {0x042F, 0x044F}, /* Я */
        {0x0400, 0x0450}, /* Ѐ */
        {0x040F, 0x045F}, /* Џ */
        {0x0430, 0x0430},
        {0x045F, 0x045F},
        /* ё and Ё */
        {0x0401, 0x0435},
        {0x0451, 0x0435},
        /* PCRE2's extra case variants */
        {0x212A, 'k'},
        {0x017F, 's'},
        {0x1C80, 0x0432},
        {0x1C81, 0x0434},
        {0x1C82, 0x043E},
        {0x1C83, 0x0441},
        {0x1C84, 0x0442},
        {0x1C85, 0x0442},
        {0x1C86, 0x044A},
        {0x1C87, 0x1C87},
        /* punctuation */
        {0x2018, '\''},
        {0x2019, '\''},
        {0x2010, '-'},
        {0x2013, '-'},
        {0x2015, '-'},
        {0x2212, '-'},
        {0x2016, 0x2016},
        /* whitespace */
        {' ', EF_UTF8_SPACE},
        {'\t', EF_UTF8_SPACE},
        {'\n', EF_UTF8_SPACE},
        {'\v', EF_UTF8_SPACE},
        {'\f', EF_UTF8_SPACE},
        {'\r', EF_UTF8_SPACE},
        {0x0085, EF_UTF8_SPACE},
        {0x00A0, EF_UTF8_SPACE},
        {0x1680, EF_UTF8_SPACE},
        {0x2000, EF_UTF8_SPACE},
        {0x200A, EF_UTF8_SPACE},
        {0x2028, EF_UTF8_SPACE},
        {0x2029, EF_UTF8_SPACE},
        {0x202F, EF_UTF8_SPACE},
        {0x205F, EF_UTF8_SPACE},
        {0x3000, EF_UTF8_SPACE},
        /* invisible */
        {0x00AD, EF_UTF8_DROP},
        {0x200B, EF_UTF8_DROP},
        {0x2060, EF_UTF8_DROP},
        {0xFEFF, EF_UTF8_DROP},
        /* untouched */
        {0x00C9, 0x00C9}, /* É: other scripts keep their case */
        {0x0460, 0x0460},
        {0x200C, 0x200C},
        {0x20BD, 0x20BD}, /* ₽ */
        {0x1F621, 0x1F621},
        {0x10FFFF, 0x10FFFF},
    };
    for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
        uint32_t got = ef_utf8_fold(pairs[k][0]);
        if (got != pairs[k][1])
            fail_msg("fold(U+%04X) = U+%04X, want U+%04X", (unsigned)pairs[k][0], (unsigned)got,
                     (unsigned)pairs[k][1]);
    }
}

/* Over every code point: the fold is idempotent, never yields a surrogate
 * or anything beyond U+10FFFF except the two markers, and agrees with the
 * case part (fold(c) == fold(lower(c))). */
static void test_fold_properties(void **state)
{
    (void)state;
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        uint32_t f = ef_utf8_fold(c);
        if (f == EF_UTF8_SPACE || f == EF_UTF8_DROP)
            continue;
        if (f > 0x10FFFF || (f >= 0xD800 && f <= 0xDFFF && f != c))
            fail_msg("fold(U+%04X) = %X", (unsigned)c, (unsigned)f);
        if (ef_utf8_fold(f) != f)
            fail_msg("fold not idempotent at U+%04X", (unsigned)c);
        if (ef_utf8_fold(ef_utf8_lower(c)) != f)
            fail_msg("fold(lower(U+%04X)) differs", (unsigned)c);
    }
}

static void test_lower(void **state)
{
    (void)state;
    assert_int_equal(ef_utf8_lower('Q'), 'q');
    assert_int_equal(ef_utf8_lower('q'), 'q');
    assert_int_equal(ef_utf8_lower(' '), ' ');
    assert_int_equal(ef_utf8_lower(0x0401), 0x0451); /* Ё -> ё, not е */
    assert_int_equal(ef_utf8_lower(0x0416), 0x0436); /* Ж */
    assert_int_equal(ef_utf8_lower(0x212A), 0x212A); /* the compiler's business */
    assert_int_equal(ef_utf8_lower(0x00C9), 0x00C9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_valid),     cmocka_unit_test(test_decode_invalid),
        cmocka_unit_test(test_encode_roundtrip), cmocka_unit_test(test_valid),
        cmocka_unit_test(test_utf16_offsets),    cmocka_unit_test(test_fold_table),
        cmocka_unit_test(test_fold_properties),  cmocka_unit_test(test_lower),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
