"""01-webhook-duplicates: Telegram retries; a retried update must be answered
200 and leave exactly one row (DESIGN invariant 2)."""

import threading

import eftest
from eftest import (Gateway, assert_eq, assert_status, conversations, count, fail, parallel,
                    tg_message, tg_user)

PLAT = {"platform": "telegram"}


def test_same_update_five_times_sequentially():
    upd = tg_message(42, "Где мой заказ? 📦", user=tg_user(uid=6100000001))
    with Gateway() as gw:
        stored0 = gw.metric("ef_updates_stored_total", **PLAT)
        dup0 = gw.metric("ef_updates_duplicate_total", **PLAT)
        for i in range(5):
            assert_status(gw.post_update(upd), 200, "delivery %d" % (i + 1))
        assert_eq(count(gw.db, "messages WHERE platform_message_id = '6100000001:42'"), 1, "rows")
        assert_eq(conversations(gw.db)[0]["messages_count"], 1, "messages_count")
        assert_eq(gw.metric("ef_updates_stored_total", **PLAT) - stored0, 1, "stored counter")
        assert_eq(gw.metric("ef_updates_duplicate_total", **PLAT) - dup0, 4, "duplicate counter")


def test_same_update_ten_times_concurrently():
    upd = tg_message(43, "Повтор, повтор, повтор", user=tg_user(uid=6100000002))
    with Gateway() as gw:
        barrier = threading.Barrier(10)

        def send(_):
            barrier.wait(10)
            return gw.post_update(upd).status
        statuses = parallel(send, range(10), workers=10)
        assert_eq(statuses, [200] * 10, "every delivery answered 200")
        assert_eq(count(gw.db, "messages WHERE platform_message_id = '6100000002:43'"), 1, "rows")
        convs = conversations(gw.db)
        assert_eq(len(convs), 1, "conversations")
        assert_eq(convs[0]["messages_count"], 1, "messages_count")
        assert_eq(count(gw.db, "users WHERE platform = 'telegram'"), 1, "users")
        assert_eq(gw.metric("ef_updates_stored_total", **PLAT) +
                  gw.metric("ef_updates_duplicate_total", **PLAT), 10, "stored + duplicates")
        assert_eq(gw.metric("ef_updates_stored_total", **PLAT), 1, "stored")


def test_same_message_under_another_update_id_is_one_row():
    user = tg_user(uid=6100000003)
    a = tg_message(7, "одно и то же сообщение", user=user)
    b = dict(a, update_id=eftest.next_update_id())
    with Gateway() as gw:
        assert_status(gw.post_update(a), 200)
        assert_status(gw.post_update(b), 200)
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 1, "rows")
        assert_eq(conversations(gw.db)[0]["messages_count"], 1, "messages_count")


def test_duplicates_after_restart_still_one_row():
    upd = tg_message(8, "до перезапуска", user=tg_user(uid=6100000004))
    with Gateway() as gw:
        assert_status(gw.post_update(upd), 200)
        gw.restart()
        assert_status(gw.post_update(upd), 200, "redelivery after restart")
        eftest.redis(gw.redis_url, "FLUSHDB")
        assert_status(gw.post_update(upd), 200, "redelivery after Redis lost its keys")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 1, "rows")


def test_concurrent_first_messages_of_a_chat_share_one_conversation():
    user = tg_user(uid=6100000005)
    updates = [tg_message(100 + i, "сообщение %d" % i, user=user) for i in range(12)]
    with Gateway() as gw:
        barrier = threading.Barrier(12)

        def send(u):
            barrier.wait(10)
            return gw.post_update(u).status
        assert_eq(parallel(send, updates, workers=12), [200] * 12)
        convs = conversations(gw.db)
        assert_eq(len(convs), 1, "one conversation for concurrent first messages")
        assert_eq(convs[0]["messages_count"], 12, "messages_count")
        assert_eq(count(gw.db, "users WHERE platform = 'telegram'"), 1, "one user")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 12, "rows")
        if count(gw.db, "messages WHERE conversation_id <> %s" % eftest.lit(convs[0]["id"])):
            fail("messages outside the chat's conversation")
