/*
 * test_kv.c -- a batch's sessions through Redis in one round trip each
 * way: what ef_kv_sessions_put writes, ef_kv_sessions_get finds, per chat
 * and per integration; a chat without a session is a miss; a Redis that
 * cannot be reached fails the call without blocking. Needs
 * EF_TEST_REDIS_URL (scripts/run-unit.sh starts one); skipped without it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/mem.h"
#include "base/time.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *redis_url(void)
{
    const char *u = getenv("EF_TEST_REDIS_URL");
    return u && *u ? u : NULL;
}

static void batch_put_then_get(void **state)
{
    (void)state;
    if (!redis_url())
        skip();
    ef_kv *kv = ef_kv_new(redis_url());
    char run[32];
    snprintf(run, sizeof(run), "t%lld", (long long)ef_now_ms());
    char sid1[64], sid2[64], scope_a[48], scope_b[48];
    snprintf(sid1, sizeof(sid1), "%s-s1", run);
    snprintf(sid2, sizeof(sid2), "%s-s2", run);
    snprintf(scope_a, sizeof(scope_a), "%s-a", run);
    snprintf(scope_b, sizeof(scope_b), "%s-b", run);
    ef_kv_session s[2] = {
        {.session_id = sid1, .json = "{\"state\":\"меню\"}", .scope = scope_a, .chat_id = "42"},
        {.session_id = sid2, .json = "{\"state\":\"b\"}", .scope = scope_b, .chat_id = "42"},
    };
    assert_int_equal(ef_kv_sessions_put(kv, 2, s, 60), 0);

    const char *scopes[4] = {scope_b, scope_a, scope_a, "-"};
    const char *chats[4] = {"42", "42", "43", "42"};
    char *out[4];
    assert_int_equal(ef_kv_sessions_get(kv, 4, scopes, chats, out), 0);
    assert_string_equal(out[0], "{\"state\":\"b\"}");
    assert_string_equal(out[1], "{\"state\":\"меню\"}");
    assert_null(out[2]); /* no chat key */
    assert_null(out[3]);
    for (int i = 0; i < 4; i++)
        ef_free(out[i]);

    /* A chat key whose session expired or was deleted is a miss too. */
    assert_int_equal(ef_kv_session_del(kv, sid1), 0);
    assert_int_equal(ef_kv_sessions_get(kv, 2, scopes, chats, out), 0);
    assert_non_null(out[0]);
    assert_null(out[1]);
    ef_free(out[0]);
    ef_kv_free(kv);
}

static void unreachable_redis_fails_at_once(void **state)
{
    (void)state;
    ef_kv *kv = ef_kv_new("redis://127.0.0.1:1/0");
    const char *scopes[1] = {"-"};
    const char *chats[1] = {"1"};
    char *out[1] = {(char *)"sentinel"};
    assert_int_equal(ef_kv_sessions_get(kv, 1, scopes, chats, out), EF_EIO);
    assert_null(out[0]);
    ef_kv_session s = {.session_id = "x", .json = "{}", .scope = "-", .chat_id = "1"};
    int64_t t0 = ef_now_ms();
    assert_int_equal(ef_kv_sessions_put(kv, 1, &s, 60), EF_EIO); /* backing off: no connect */
    assert_true(ef_now_ms() - t0 < 100);
    assert_int_equal(ef_kv_sessions_put(kv, 0, &s, 60), 0); /* nothing to write */
    ef_kv_free(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_put_then_get),
        cmocka_unit_test(unreachable_redis_fails_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
