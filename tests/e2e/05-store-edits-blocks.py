"""05-store-edits-blocks: what happens to stored conversations after the first
message: edits (with history), the customer blocking and unblocking the bot,
a group becoming a supergroup, reactions, button presses."""

import json

import eftest
from eftest import (Gateway, assert_eq, conversations, count, fail, message_by_pmid,
                    post_ok, tg_message, tg_user)


def edit(mid, text, user, edit_date, chat_id=None, **kw):
    u = tg_message(mid, text, user=user, chat_id=chat_id, **kw)
    m = u.pop("message")
    m["edit_date"] = edit_date
    u["edited_message"] = m
    return u


def history_texts(meta):
    return [h.get("text") for h in (meta.get("edit_history") or [])]


def test_edit_keeps_history():
    user = tg_user(uid=7500000001)
    with Gateway() as gw:
        post_ok(gw, tg_message(5, "Хочу 2 пиццы", user=user, date=1700000000))
        e1 = edit(5, "Хочу 3 пиццы 🍕", user, 1700000060)
        post_ok(gw, e1, "first edit")
        row = message_by_pmid(gw.db, "7500000001:5")
        assert_eq(row["content"], "Хочу 3 пиццы 🍕", "content after the edit")
        assert_eq(history_texts(row["metadata"]), ["Хочу 2 пиццы"], "edit_history")
        for h in row["metadata"]["edit_history"]:
            if "edit_date" not in h:
                fail("edit_history entry without edit_date: %r" % h)
        e2 = edit(5, "Хочу 3 пиццы 🍕 и колу", user, 1700000120)
        post_ok(gw, e2, "second edit")
        post_ok(gw, e2, "the second edit redelivered")
        post_ok(gw, e1, "the first edit redelivered late")
        row = message_by_pmid(gw.db, "7500000001:5")
        assert_eq(row["content"], "Хочу 3 пиццы 🍕 и колу", "content after two edits")
        assert_eq(history_texts(row["metadata"]), ["Хочу 2 пиццы", "Хочу 3 пиццы 🍕"],
                  "edit_history after two edits and redeliveries")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 1, "edits add no rows")
        assert_eq(conversations(gw.db)[0]["messages_count"], 1, "edits do not count as messages")


def test_edited_caption():
    user = tg_user(uid=7500000002)
    photo = [{"file_id": "AgACcap", "file_unique_id": "AQcap", "width": 1, "height": 1}]
    with Gateway() as gw:
        post_ok(gw, tg_message(1, None, user=user, photo=photo, caption="старая подпись"))
        upd = tg_message(1, None, user=user, photo=photo, caption="новая подпись ✍")
        m = upd.pop("message")
        m["edit_date"] = 1700000100
        upd["edited_message"] = m
        post_ok(gw, upd)
        row = message_by_pmid(gw.db, "7500000002:1")
        assert_eq(row["content"], "новая подпись ✍")
        assert_eq(history_texts(row["metadata"]), ["старая подпись"])


def test_edit_of_business_message():
    user = tg_user(uid=7500000003)
    with Gateway() as gw:
        post_ok(gw, tg_message(3, "бизнес: вопрос", user=user, kind="business_message",
                            business_connection_id="BCedit"))
        post_ok(gw, tg_message(3, "обычный чат: вопрос", user=user))
        e = tg_message(3, "бизнес: уточнённый вопрос", user=user,
                       kind="edited_business_message", business_connection_id="BCedit")
        e["edited_business_message"]["edit_date"] = 1700000200
        post_ok(gw, e)
        assert_eq(message_by_pmid(gw.db, "7500000003@BCedit:3")["content"],
                  "бизнес: уточнённый вопрос")
        assert_eq(message_by_pmid(gw.db, "7500000003:3")["content"], "обычный чат: вопрос",
                  "the bot chat's message with the same id is untouched")


def _member_update(user, status, bot_id=123456789):
    bot = {"id": bot_id, "is_bot": True, "first_name": "Bot", "username": "easyflow_test_bot"}
    old = "member" if status == "kicked" else "kicked"
    return {"update_id": eftest.next_update_id(), "my_chat_member": {
        "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
        "from": user, "date": 1700000300,
        "old_chat_member": {"user": bot, "status": old},
        "new_chat_member": dict({"user": bot, "status": status},
                                **({"until_date": 0} if status == "kicked" else {}))}}


def test_block_and_unblock():
    user = tg_user(uid=7500000004)
    chat = "7500000004"
    with Gateway() as gw:
        post_ok(gw, tg_message(1, "Здравствуйте", user=user))
        assert_eq(conversations(gw.db)[0]["undeliverable"], False)
        blocked = _member_update(user, "kicked")
        post_ok(gw, blocked, "blocked the bot")
        assert_eq(conversations(gw.db, "chat_id = '%s'" % chat)[0]["undeliverable"], True,
                  "undeliverable after the customer blocked the bot")
        post_ok(gw, blocked, "the block redelivered")
        assert_eq(conversations(gw.db, "chat_id = '%s'" % chat)[0]["undeliverable"], True)
        post_ok(gw, _member_update(user, "member"), "unblocked the bot")
        c = conversations(gw.db, "chat_id = '%s'" % chat)
        assert_eq(len(c), 1, "the same conversation continues")
        assert_eq(c[0]["undeliverable"], False, "deliverable again after unblocking")
        post_ok(gw, tg_message(2, "Я снова здесь", user=user))
        assert_eq(conversations(gw.db, "chat_id = '%s'" % chat)[0]["messages_count"], 2)
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 2,
                  "membership changes are not customer messages")


def test_group_migrates_to_supergroup():
    old, new = -4005550001, -1004005550001
    user = tg_user(uid=7500000005)
    with Gateway() as gw:
        post_ok(gw, tg_message(10, "первое в группе", user=user, chat_id=old))
        post_ok(gw, tg_message(11, "второе в группе", user=user, chat_id=old))
        conv_id = conversations(gw.db)[0]["id"]
        post_ok(gw, tg_message(12, None, user=user, chat_id=old, migrate_to_chat_id=new),
             "migrate_to_chat_id")
        convs = conversations(gw.db, "status <> 'closed'")
        assert_eq([c["chat_id"] for c in convs], [str(new)], "the conversation moved to the new id")
        assert_eq(convs[0]["id"], conv_id, "the same conversation, not a new one")
        # Telegram also sends migrate_from_chat_id in the new supergroup.
        anon = {"id": 1087968824, "is_bot": True, "first_name": "Group",
                "username": "GroupAnonymousBot"}
        post_ok(gw, tg_message(1, None, user=anon, chat_id=new, migrate_from_chat_id=old),
             "migrate_from_chat_id")
        post_ok(gw, tg_message(2, "уже в супергруппе 🎉", user=user, chat_id=new))
        convs = conversations(gw.db, "status <> 'closed'")
        assert_eq(len(convs), 1, "one open conversation for the migrated chat")
        assert_eq((convs[0]["id"], convs[0]["chat_id"]), (conv_id, str(new)))
        assert_eq(message_by_pmid(gw.db, "%d:2" % new)["conversation_id"], conv_id)
        message_by_pmid(gw.db, "%d:10" % old)  # history kept
        assert_eq(convs[0]["messages_count"], 3, "messages_count across the migration")


def test_migrate_from_alone_moves_the_conversation():
    old, new = -4005550002, -1004005550002
    user = tg_user(uid=7500000006)
    with Gateway() as gw:
        post_ok(gw, tg_message(1, "в старой группе", user=user, chat_id=old))
        conv_id = conversations(gw.db)[0]["id"]
        anon = {"id": 1087968824, "is_bot": True, "first_name": "Group"}
        post_ok(gw, tg_message(1, None, user=anon, chat_id=new, migrate_from_chat_id=old))
        post_ok(gw, tg_message(2, "в новой", user=user, chat_id=new))
        convs = conversations(gw.db, "status <> 'closed'")
        assert_eq([(c["id"], c["chat_id"]) for c in convs], [(conv_id, str(new))])


def _reaction(chat_id, mid, user, emojis, old=()):
    return {"update_id": eftest.next_update_id(), "message_reaction": {
        "chat": {"id": chat_id, "type": "private"}, "message_id": mid, "user": user,
        "date": 1700000400,
        "old_reaction": [{"type": "emoji", "emoji": e} for e in old],
        "new_reaction": [{"type": "emoji", "emoji": e} for e in emojis]}}


def test_reactions_recorded_on_the_message():
    user = tg_user(uid=7500000007)
    with Gateway() as gw:
        post_ok(gw, tg_message(1, "Ваш заказ готов?", user=user))
        post_ok(gw, _reaction(7500000007, 1, user, ["👍"]))
        meta = message_by_pmid(gw.db, "7500000007:1")["metadata"]
        r = json.dumps(meta.get("reactions"), ensure_ascii=False)
        if "👍" not in r:
            fail("reaction not recorded: %s" % r)
        post_ok(gw, _reaction(7500000007, 1, user, ["❤", "🔥"], old=["👍"]))
        r = json.dumps(message_by_pmid(gw.db, "7500000007:1")["metadata"].get("reactions"),
                       ensure_ascii=False)
        if "❤" not in r or "🔥" not in r or "👍" in r:
            fail("reactions not replaced: %s" % r)
        post_ok(gw, _reaction(7500000007, 1, user, [], old=["❤", "🔥"]))
        r = json.dumps(message_by_pmid(gw.db, "7500000007:1")["metadata"].get("reactions"),
                       ensure_ascii=False)
        if "❤" in r or "🔥" in r:
            fail("removed reactions still recorded: %s" % r)
        # A reaction to a message we never stored: accepted, nothing created.
        post_ok(gw, _reaction(7500000007, 999, user, ["👎"]))
        assert_eq(count(gw.db, "messages"), 1, "rows")
        assert_eq(conversations(gw.db)[0]["messages_count"], 1, "reactions are not messages")


def test_callback_query_stored():
    user = tg_user(uid=7500000008)
    bot = {"id": 123456789, "is_bot": True, "first_name": "Bot"}
    cq = {"update_id": eftest.next_update_id(), "callback_query": {
        "id": "5539017714450192312", "from": user, "chat_instance": "-7000000000000000001",
        "data": "size:XL|color:синий",
        "message": {"message_id": 44, "from": bot, "date": 1700000500,
                    "chat": {"id": 7500000008, "type": "private"}, "text": "Выберите размер"}}}
    with Gateway() as gw:
        post_ok(gw, tg_message(1, "Хочу футболку", user=user))
        post_ok(gw, cq)
        post_ok(gw, cq, "redelivered")
        row = message_by_pmid(gw.db, "callback:5539017714450192312")
        assert_eq(row["content"], "size:XL|color:синий", "callback data")
        assert_eq(row["metadata"].get("content_type"), "callback")
        assert_eq((row["role"], row["direction"]), ("user", "inbound"))
        conv = conversations(gw.db)
        assert_eq(len(conv), 1, "the press belongs to the chat's conversation")
        assert_eq(row["conversation_id"], conv[0]["id"])
        # A press on a message Telegram no longer has (date 0) is still the customer's.
        cq2 = {"update_id": eftest.next_update_id(), "callback_query": {
            "id": "5539017714450192399", "from": user, "chat_instance": "-7000000000000000001",
            "data": "reorder",
            "message": {"message_id": 3, "date": 0,
                        "chat": {"id": 7500000008, "type": "private"}}}}
        post_ok(gw, cq2, "callback on an inaccessible message")
        assert_eq(message_by_pmid(gw.db, "callback:5539017714450192399")["content"], "reorder")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 3)
