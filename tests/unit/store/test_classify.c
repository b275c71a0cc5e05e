/*
 * test_classify.c -- ef_store_classify: which failed statements are
 * outages (retry later, the store is down) and which are the data's or the
 * statement's fault (permanent for that item, the store stays up).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"

static void no_result_is_an_outage(void **state)
{
    (void)state;
    assert_int_equal(ef_store_classify(NULL), EF_EDB);
    /* Not a SQLSTATE at all: nothing to say it is the data's fault. */
    assert_int_equal(ef_store_classify(""), EF_EDB);
    assert_int_equal(ef_store_classify("0800"), EF_EDB);
    assert_int_equal(ef_store_classify("080060"), EF_EDB);
}

static void outages(void **state)
{
    (void)state;
    static const char *const codes[] = {
        "08000", "08003", "08006", "08001", "08P01", /* connection */
        "53000", "53100", "53200", "53300",          /* resources, too many connections */
        "57000", "57014", "57P01", "57P02", "57P03", /* cancel, admin shutdown, cannot connect */
        "58000", "58030",                            /* system, I/O */
        "40000", "40001", "40P01", "40003",          /* serialization, deadlock */
        "XX000", "XX001", "XX002",                   /* internal, corruption */
        "72000", "F0000",                            /* snapshot too old, config file */
        "25006",                                     /* read-only: a standby after failover */
        "55P03", "55006",                            /* lock not available, object in use */
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (ef_store_classify(codes[i]) != EF_EDB)
            fail_msg("%s should be an outage (EF_EDB)", codes[i]);
    }
}

static void data_and_statement_errors(void **state)
{
    (void)state;
    static const char *const codes[] = {
        "22001", "22003", "22007", "22008", "22012", "22021", "22P02", "22P05", /* data */
        "23502", "23503", "23505", "23514", "23P01",                            /* integrity */
        "42601", "42501", "42703", "42804", "42883", "42P01",                   /* syntax, access */
        "21000", "24000", "25P02", "27000", "2BP01", "2D000", "2F005",          /* 2x others */
        "0A000", "P0001", "P0002", "3F000", "44000", "55000",
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (ef_store_classify(codes[i]) != EF_EINVAL)
            fail_msg("%s should be the data's or the statement's fault (EF_EINVAL)", codes[i]);
    }
}

static void success_and_warnings_are_not_failures(void **state)
{
    (void)state;
    assert_int_equal(ef_store_classify("00000"), 0);
    assert_int_equal(ef_store_classify("01000"), 0);
    assert_int_equal(ef_store_classify("02000"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_result_is_an_outage),
        cmocka_unit_test(outages),
        cmocka_unit_test(data_and_statement_errors),
        cmocka_unit_test(success_and_warnings_are_not_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
