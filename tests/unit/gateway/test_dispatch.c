/*
 * test_dispatch.c -- the dispatcher's pure pieces: reasons cut on UTF-8
 * character boundaries, and when a reply expires.
 */
#include "gateway/dispatch.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void reason_fits_whole(void **state)
{
    (void)state;
    char out[32];
    assert_int_equal(ef_dispatch_copy_reason(out, sizeof(out), "Bad Request"), 11);
    assert_string_equal(out, "Bad Request");
    assert_int_equal(ef_dispatch_copy_reason(out, sizeof(out), NULL), 0);
    assert_string_equal(out, "");
}

static void reason_cut_between_characters(void **state)
{
    (void)state;
    /* "жж" is 4 bytes: 5 bytes of room keep both, 4 keep one. */
    char out[5];
    assert_int_equal(ef_dispatch_copy_reason(out, sizeof(out), "жжж"), 4);
    assert_string_equal(out, "жж");
    char small[4];
    assert_int_equal(ef_dispatch_copy_reason(small, sizeof(small), "жж"), 2);
    assert_string_equal(small, "ж");
    /* A 3-byte and a 4-byte character cut after their first bytes. */
    char e[5];
    assert_int_equal(ef_dispatch_copy_reason(e, sizeof(e), "ab€"), 2);
    assert_string_equal(e, "ab");
    char g[6];
    assert_int_equal(ef_dispatch_copy_reason(g, sizeof(g), "abc😀"), 3);
    assert_string_equal(g, "abc");
}

static void reason_already_cut_by_the_adapter(void **state)
{
    (void)state;
    /* The source itself ends inside a character (cut by bytes upstream). */
    char out[64];
    assert_int_equal(ef_dispatch_copy_reason(out, sizeof(out), "400 сообще\xd0"), 16);
    assert_string_equal(out, "400 сообще");
    assert_int_equal(ef_dispatch_copy_reason(out, sizeof(out), "x\xe2\x82"), 1);
    assert_string_equal(out, "x");
    /* Complete characters at the end are kept. */
    assert_int_equal(ef_dispatch_copy_reason(out, sizeof(out), "x€"), 4);
    assert_int_equal(ef_dispatch_copy_reason(out, sizeof(out), "x😀"), 5);
}

static void expiry(void **state)
{
    (void)state;
    /* Fetched at 100 s, queued 30 s before, TTL 60 s: expires at 130 s. */
    assert_int_equal(ef_dispatch_expires_at(100000, 30000, 60), 130000);
    /* Already older than the TTL: expired at once. */
    assert_true(ef_dispatch_expires_at(100000, 90000, 60) <= 100000);
    /* A database clock ahead of ours (negative age) counts as new. */
    assert_int_equal(ef_dispatch_expires_at(100000, -5000, 60), 160000);
    /* TTL 0: never. */
    assert_int_equal(ef_dispatch_expires_at(100000, 30000, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reason_fits_whole),
        cmocka_unit_test(reason_cut_between_characters),
        cmocka_unit_test(reason_already_cut_by_the_adapter),
        cmocka_unit_test(expiry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
