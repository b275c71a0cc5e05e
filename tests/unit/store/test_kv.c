/*
 * test_kv.c -- a batch's sessions through Redis in one round trip each
 * way: what ef_kv_write_back writes, ef_kv_sessions_get finds, per chat
 * and per integration; a chat without a session is a miss; a Redis that
 * cannot be reached fails the call without blocking. Needs
 * EF_TEST_REDIS_URL (scripts/run-unit.sh starts one); skipped without it.
 * The URL forms, rediss:// (TLS) among them, are read through kv.c's
 * statics; a TLS connect that fails says why (tests/e2e/30-redis-tls.py
 * runs a TLS Redis).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/mem.h"
#include "base/time.h"
#include "store/kv.c"

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
    assert_int_equal(ef_kv_write_back(kv, 2, s, 60, NULL), 0);

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

/* The write-back's counter rides in the sessions' round trip: the hour's
 * metrics hash gains `by` (twice 3 here, the second time with no session),
 * with its TTL, and a count of 0 adds nothing. */
static void write_back_adds_the_counter_with_the_sessions(void **state)
{
    (void)state;
    if (!redis_url())
        skip();
    ef_kv *kv = ef_kv_new(redis_url());
    char run[32], sid[64], scope[48], plat[48];
    snprintf(run, sizeof(run), "t%lld", (long long)ef_now_ms());
    snprintf(sid, sizeof(sid), "%s-wb", run);
    snprintf(scope, sizeof(scope), "%s-scope", run);
    snprintf(plat, sizeof(plat), "%s-plat", run);
    ef_kv_session s = {
        .session_id = sid, .json = "{\"state\":\"x\"}", .scope = scope, .chat_id = "7"};
    ef_kv_count c = {.platform = plat, .field = "messages_received", .by = 3};
    assert_int_equal(ef_kv_write_back(kv, 1, &s, 60, &c), 0);
    assert_int_equal(ef_kv_write_back(kv, 0, NULL, 60, &c), 0); /* the counter alone */
    c.by = 0;
    assert_int_equal(ef_kv_write_back(kv, 1, &s, 60, &c), 0); /* nothing to count */

    const char *scopes[1] = {scope};
    const char *chats[1] = {"7"};
    char *out[1];
    assert_int_equal(ef_kv_sessions_get(kv, 1, scopes, chats, out), 0);
    assert_string_equal(out[0], "{\"state\":\"x\"}");
    ef_free(out[0]);

    metric_cmds m;
    metric_cmds_init(&m, plat, "messages_received", 0);
    const char *hget[3] = {"HGET", m.key, "messages_received"};
    redisReply *r = command(kv, 3, hget, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "6");
    freeReplyObject(r);
    const char *ttl[2] = {"TTL", m.key};
    r = command(kv, 2, ttl, NULL);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_true(r->integer > 0 && r->integer <= KV_METRICS_TTL);
    freeReplyObject(r);
    const char *del[2] = {"DEL", m.key};
    r = command(kv, 2, del, NULL);
    if (r)
        freeReplyObject(r);
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
    assert_int_equal(ef_kv_write_back(kv, 1, &s, 60, NULL), EF_EIO); /* backing off: no connect */
    assert_true(ef_now_ms() - t0 < 100);
    assert_int_equal(ef_kv_write_back(kv, 0, &s, 60, NULL), 0); /* nothing to write */
    ef_kv_free(kv);
}

static void url_forms(void **state)
{
    (void)state;
    ef_kv *kv = ef_kv_new("rediss://:s3cret@cache.example.com:6380/3");
    assert_string_equal(ef_kv_errmsg(kv), "");
    assert_true(kv->tls);
    assert_string_equal(kv->host, "cache.example.com");
    assert_int_equal(kv->port, 6380);
    assert_int_equal(kv->db, 3);
    assert_string_equal(kv->password, "s3cret");
    ef_kv_free(kv);

    kv = ef_kv_new("rediss://user:pw@localhost");
    assert_true(kv->tls);
    assert_string_equal(kv->host, "localhost");
    assert_int_equal(kv->port, 6379);
    assert_int_equal(kv->db, 0);
    assert_string_equal(kv->password, "pw");
    ef_kv_free(kv);

    kv = ef_kv_new("redis://10.0.0.1:7000/2");
    assert_false(kv->tls);
    assert_string_equal(kv->host, "10.0.0.1");
    assert_int_equal(kv->port, 7000);
    assert_int_equal(kv->db, 2);
    assert_null(kv->password);
    ef_kv_free(kv);

    const char *bad[] = {"rediss://",    "redisss://h",      "rediss//h",        "http://h",
                         "rediss://h:0", "rediss://h:70000", "rediss://h:12x/0", "rediss://h/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kv = ef_kv_new(bad[i]);
        if (!strstr(ef_kv_errmsg(kv), "bad Redis URL (want redis[s]://"))
            fail_msg("%s accepted", bad[i]);
        assert_int_equal(ef_kv_ping(kv), EF_EIO);
        ef_kv_free(kv);
    }
}

/* Nothing listens: the TLS connect fails at once, saying where. */
static void rediss_unreachable_says_why(void **state)
{
    (void)state;
    ef_kv *kv = ef_kv_new("rediss://127.0.0.1:1/0");
    int64_t t0 = ef_now_ms();
    assert_int_equal(ef_kv_ping(kv), EF_EIO);
    assert_true(ef_now_ms() - t0 < 1000);
    assert_non_null(strstr(ef_kv_errmsg(kv), "Redis TLS: connect 127.0.0.1:1: "));
    assert_int_equal(ef_kv_ping(kv), EF_EIO); /* backing off */
    ef_kv_free(kv);
}

/* rediss:// to a Redis without TLS: the handshake fails, the kv is down,
 * nothing hangs. A missing CA file is named. */
static void rediss_to_plain_redis_fails_handshake(void **state)
{
    (void)state;
    if (!redis_url())
        skip();
    const char *hp = strstr(redis_url(), "://") + 3;
    char *url = ef_asprintf("rediss://%s", hp);
    ef_kv *kv = ef_kv_new(url);
    int64_t t0 = ef_now_ms();
    assert_int_equal(ef_kv_ping(kv), EF_EIO);
    assert_true(ef_now_ms() - t0 < 2000);
    if (strncmp(ef_kv_errmsg(kv), "Redis TLS: handshake", 20) != 0)
        fail_msg("errmsg: %s", ef_kv_errmsg(kv));
    ef_kv_free(kv);

    ef_kv_set_tls_files("/nonexistent/ca.pem", NULL, NULL);
    kv = ef_kv_new(url);
    assert_int_equal(ef_kv_ping(kv), EF_EIO);
    if (!strstr(ef_kv_errmsg(kv), "Redis TLS: CA file /nonexistent/ca.pem: "))
        fail_msg("errmsg: %s", ef_kv_errmsg(kv));
    ef_kv_free(kv);
    ef_kv_set_tls_files(NULL, NULL, NULL);
    ef_free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(batch_put_then_get),
        cmocka_unit_test(write_back_adds_the_counter_with_the_sessions),
        cmocka_unit_test(unreachable_redis_fails_at_once),
        cmocka_unit_test(url_forms),
        cmocka_unit_test(rediss_unreachable_says_why),
        cmocka_unit_test(rediss_to_plain_redis_fails_handshake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
