"""02-poll-store: TELEGRAM_MODE=poll against a fake Bot API: updates fetched
with getUpdates are stored like webhook ones, and the offset confirms a batch
only after it was committed."""

import eftest
from eftest import (Gateway, assert_eq, count, fail, lit, poll_env, psql1, tg_message, tg_user,
                    wait_offset)


def poll_gateway(tg, **env):
    return Gateway(env=poll_env(tg, **env))


def test_polled_updates_are_stored():
    tg = eftest.fake_telegram()
    user = tg_user(uid=7100000001)
    first = [tg_message(1, "Здравствуйте! 👋", user=user),
             tg_message(2, None, user=user, photo=[{"file_id": "AgACphoto", "file_unique_id": "AQ",
                                                    "width": 10, "height": 10}],
                        caption="фото заказа"),
             tg_message(3, "в группе", user=user, chat_id=-1001555000111)]
    ids = tg.push_updates(first)
    with poll_gateway(tg) as gw:
        wait_offset(tg, ids[-1] + 1)
        # The batch was confirmed only after its commit: its rows are there now.
        assert_eq(eftest.message_by_pmid(gw.db, "7100000001:1")["content"], "Здравствуйте! 👋")
        assert_eq(eftest.message_by_pmid(gw.db, "7100000001:2")["content"], "фото заказа")
        eftest.message_by_pmid(gw.db, "-1001555000111:3")
        # New updates arriving during a long poll are picked up promptly.
        more = [tg_message(4, "ещё вопрос", user=user),
                {"edited_message": tg_message(4, "ещё вопрос, уточнение", user=user)["message"]},
                {"callback_query": {"id": "77001", "from": user, "chat_instance": "1",
                                    "data": "menu:main",
                                    "message": {"message_id": 9, "date": 1700000000,
                                                "chat": {"id": 7100000001, "type": "private"},
                                                "text": "Меню"}}}]
        ids2 = tg.push_updates(more)
        wait_offset(tg, ids2[-1] + 1)
        row = eftest.message_by_pmid(gw.db, "7100000001:4")
        assert_eq(row["content"], "ещё вопрос, уточнение", "edit applied")
        assert_eq(eftest.message_by_pmid(gw.db, "callback:77001")["content"], "menu:main")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 5, "rows")
        # Each update was handed out once: the offset never went backwards.
        handed = [u["update_id"] for r in tg.calls("getUpdates") if r.status == 200
                  for u in (r.result or [])]
        if len(handed) != len(set(handed)):
            fail("updates fetched more than once: %r" % handed)
        assert_eq(sorted(handed), sorted(ids + ids2), "every update fetched")
    if tg.token.split(":", 1)[1] in gw.log_text():
        fail("the bot token appears in the gateway log")


def test_get_updates_parameters():
    tg = eftest.fake_telegram()
    with poll_gateway(tg):
        tg.wait_for(lambda: tg.calls("getUpdates"), timeout=15, what="a getUpdates call")
        uid = tg.push_update(tg_message(1, "x", user=tg_user(uid=7100000002)))
        wait_offset(tg, uid + 1)
        calls = tg.calls("getUpdates")
        for r in calls:
            t = eftest.fake_telegram_int(r.params.get("timeout"))
            if t is None or t <= 0:
                fail("getUpdates without a positive long-poll timeout: %r" % r.params)
        allowed = tg.allowed_updates
        if not isinstance(allowed, list):
            fail("allowed_updates not sent: %r" % calls[0].params)
        for need in ("message", "edited_message", "callback_query", "my_chat_member",
                     "message_reaction", "chat_member", "business_message"):
            if need not in allowed:
                fail("allowed_updates lacks %r: %r" % (need, allowed))
        # Long polling: no busy loop while there is nothing to fetch.
        if len(calls) > 6:
            fail("%d getUpdates calls in a few seconds: not long polling" % len(calls))


def test_offset_persisted_after_commit():
    tg = eftest.fake_telegram()
    user = tg_user(uid=7100000003)
    ids = tg.push_updates([tg_message(i, "сообщение %d" % i, user=user) for i in range(1, 8)])
    with poll_gateway(tg) as gw:
        wait_offset(tg, ids[-1] + 1)
        stored = psql1(gw.db, "SELECT c.cursor FROM poll_cursors c JOIN integrations i "
                              "ON i.id = c.integration_id WHERE i.platform_id = 'telegram' "
                              "AND i.external_id = %s" % lit(tg.bot_id))
        assert_eq(stored, str(ids[-1] + 1), "poll_cursors.cursor of the bot's integration")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 7)
        if tg.pending():
            fail("updates left unconfirmed: %r" % [u["update_id"] for u in tg.pending()])


def test_large_batch_of_many_chats():
    tg = eftest.fake_telegram()
    updates = []
    for chat in range(20):
        u = tg_user(uid=7200000000 + chat)
        for mid in range(1, 11):
            updates.append(tg_message(mid, "чат %d сообщение %d" % (chat, mid), user=u))
    ids = tg.push_updates(updates)
    with poll_gateway(tg) as gw:
        wait_offset(tg, ids[-1] + 1, timeout=60)
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 200, "rows")
        assert_eq(count(gw.db, "conversations"), 20, "conversations")
        bad = psql1(gw.db, "SELECT count(*) FROM conversations WHERE messages_count <> 10")
        assert_eq(bad, "0", "conversations with messages_count != 10")
        # A limit above 100 is never asked for.
        for r in tg.calls("getUpdates"):
            lim = eftest.fake_telegram_int(r.params.get("limit"))
            if lim is not None and not 1 <= lim <= 100:
                fail("getUpdates limit %r" % lim)
