"""08-replies-conversation: customers talk to the demo bot (bots/demo.yaml)
over the Telegram webhook and get the right answers, in their language, in
order, through a fake Bot API; a conversation handed to a human gets no more
bot replies; every decision is on the stored rows."""

from eftest import (assert_contains, assert_eq, fail, next_update_id, post_ok,
                    psql1, tg_message, tg_user)
from reply_helpers import (assert_quiet, conversation, inbound_row, limited_telegram,
                           demo_gateway, markup, replies, sends, texts, wait_texts)

MENU = [("Статус заказа", "menu_order_status"), ("Доставка", "menu_delivery"),
        ("Возврат", "menu_returns"), ("Отменить заказ", "menu_cancel"),
        ("Оператор", "operator")]


def _callback(user, sent_msg, data, qid):
    """A callback_query update for a press on a message the bot sent."""
    return {"update_id": next_update_id(), "callback_query": {
        "id": qid, "from": user,
        "message": {"message_id": sent_msg["message_id"], "from": sent_msg["from"],
                    "chat": dict(sent_msg["chat"], first_name=user["first_name"]),
                    "date": sent_msg["date"], "text": sent_msg["text"],
                    "reply_markup": sent_msg.get("reply_markup")},
        "chat_instance": "-5390117291826365471", "data": data}}


def _check_sent_rows(gw, fake, chat_id, n):
    """The chat's n replies are stored as sent, with the id the fake gave
    each (in the same order), and nothing of the chat is still queued."""
    rows = replies(gw.db, chat_id)
    assert_eq(len(rows), n, "reply rows of chat %s" % chat_id)
    got = sends(fake, chat_id)
    for row, req in zip(rows, got):
        assert_eq(row["delivery_status"], "sent", "delivery_status of %r" % row["content"][:40])
        assert_eq(row["content"], req.params["text"], "stored reply text vs the text sent")
        assert_eq(row["platform_message_id"], "%s:%d" % (chat_id, req.result["message_id"]),
                  "platform_message_id")
        if row["failed_reason"] is not None:
            fail("a sent reply keeps failed_reason %r" % row["failed_reason"])
    queued = int(psql1(gw.db, "SELECT count(*) FROM messages m JOIN conversations c ON "
                              "c.id = m.conversation_id WHERE c.chat_id = '%s' AND "
                              "m.delivery_status = 'queued'" % chat_id))
    assert_eq(queued, 0, "rows of chat %s still queued" % chat_id)


def test_russian_and_english_conversations():
    ru = tg_user(uid=8100000001, first="Анна", last="Иванова", username="anna_iv", lang="ru")
    en = tg_user(uid=8100000002, first="John", last="Smith", username="jsmith", lang="en")
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        ru_script = ["Привет", "где мой заказ", "A-1042", "позовите оператора"]
        en_script = ["Hi there", "where is my order?", "it's 87654321-0012-1", "thanks",
                     "I want to talk to a human"]
        # Both customers write at once; each chat's answers keep its order.
        for i in range(max(len(ru_script), len(en_script))):
            if i < len(ru_script):
                post_ok(gw, tg_message(10 + i, ru_script[i], user=ru))
            if i < len(en_script):
                post_ok(gw, tg_message(20 + i, en_script[i], user=en))
        got_ru = wait_texts(fake, ru["id"], 4)
        got_en = wait_texts(fake, en["id"], 5)

        assert_contains(got_ru[0], "Здравствуйте! 👋", "Чем могу помочь?", what="ru greeting")
        assert_contains(got_ru[1], "номер заказа", "A-1042", what="ru order number prompt")
        assert_contains(got_ru[2], "Заказ A-1042", "служб", what="ru order answer")
        assert_contains(got_ru[3], "оператор", what="ru operator")
        assert_contains(got_en[0], "Hello! 👋", "How can I help?", what="en greeting")
        assert_contains(got_en[1], "order number", what="en order number prompt")
        assert_contains(got_en[2], "Order 87654321-0012-1", what="en order answer")
        assert_contains(got_en[3], "You're welcome", what="en thanks")
        assert_contains(got_en[4], "operator", what="en operator")
        for t in got_ru:
            if "Hello" in t or "order number" in t:
                fail("an English reply in the Russian chat: %r" % t)

        # The greeting's menu is an inline keyboard of callback buttons.
        kb = markup(sends(fake, ru["id"])[0])
        if not kb or "inline_keyboard" not in kb:
            fail("the greeting has no inline keyboard: %r" % kb)
        flat = [b for row in kb["inline_keyboard"] for b in row]
        assert_eq([(b.get("text"), b.get("callback_data")) for b in flat], MENU, "menu buttons")
        en_kb = markup(sends(fake, en["id"])[0])
        assert_eq([b["text"] for row in en_kb["inline_keyboard"] for b in row],
                  ["Order status", "Delivery", "Returns", "Cancel an order", "Operator"],
                  "English menu buttons")
        if markup(sends(fake, ru["id"])[1]):
            fail("the order number prompt has buttons: %r" % markup(sends(fake, ru["id"])[1]))

        # "operator" escalated both conversations; the bot now stays silent.
        for u in (ru, en):
            c = conversation(gw.db, u["id"])
            assert_eq(c["status"], "escalated", "conversation status of %s" % u["id"])
        post_ok(gw, tg_message(14, "алло, вы тут?", user=ru))
        post_ok(gw, tg_message(15, "где мой заказ A-1042", user=ru))
        post_ok(gw, tg_message(25, "hello?", user=en))
        assert_quiet(fake, ru["id"], 4, 2.5)
        assert_eq(len(texts(fake, en["id"])), 5, "English chat after escalation")
        assert_eq(conversation(gw.db, ru["id"])["status"], "escalated", "still escalated")

        # The inbound rows explain each decision.
        r = inbound_row(gw.db, "%d:10" % ru["id"])
        assert_eq(r["intent"], "greeting", "intent of 'Привет'")
        if not 0.5 <= r["confidence"] <= 1.0:
            fail("confidence of 'Привет' %r" % r["confidence"])
        r = inbound_row(gw.db, "%d:12" % ru["id"])
        assert_eq((r["intent"], r["entities"]), ("order_status", {"order_number": "A-1042"}),
                  "intent and entities of 'A-1042'")
        r = inbound_row(gw.db, "%d:13" % ru["id"])
        assert_eq(r["intent"], "operator", "intent of 'позовите оператора'")
        if "escalate" not in (r["metadata"].get("decision") or {}).get("actions", []):
            fail("the decision of 'позовите оператора' does not record escalate: %r" %
                 r["metadata"].get("decision"))
        r = inbound_row(gw.db, "%d:22" % en["id"])
        assert_eq(r["entities"].get("order_number"), "87654321-0012-1", "Ozon posting number")
        r = inbound_row(gw.db, "%d:15" % ru["id"])
        assert_eq(r["intent"], "order_status", "an escalated chat's message is still understood")
        assert_eq(r["content"], "где мой заказ A-1042", "content")

        _check_sent_rows(gw, fake, ru["id"], 4)
        _check_sent_rows(gw, fake, en["id"], 5)


def test_button_presses_answered_and_move_the_fsm():
    u = tg_user(uid=8100000003, first="Мария", last=None, username="masha", lang="ru")
    chat = u["id"]
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        post_ok(gw, tg_message(1, "Добрый день", user=u))
        wait_texts(fake, chat, 1)
        menu = sends(fake, chat)[0].result
        # "Статус заказа" on the menu: the same as asking in words.
        post_ok(gw, _callback(u, menu, "menu_order_status", "4382bfdwdsb323b2d9"))
        got = wait_texts(fake, chat, 2)
        assert_contains(got[1], "номер заказа", what="prompt after the button")
        fake.wait_for(lambda: fake.calls("answerCallbackQuery"), timeout=10,
                      what="answerCallbackQuery")
        acq = fake.calls("answerCallbackQuery")
        assert_eq([c.params.get("callback_query_id") for c in acq], ["4382bfdwdsb323b2d9"],
                  "answerCallbackQuery calls")
        assert_eq(acq[0].status, 200, "answerCallbackQuery accepted")
        assert_eq(conversation(gw.db, chat)["state"], "ask_order", "state after the press")

        post_ok(gw, tg_message(2, "87654321-0012-1", user=u))
        got = wait_texts(fake, chat, 3)
        assert_contains(got[2], "87654321-0012-1", what="answer with the Ozon number")

        # Cancelling: the confirmation's Yes / No are buttons; Yes confirms.
        post_ok(gw, tg_message(3, "хочу отменить заказ", user=u))
        post_ok(gw, tg_message(4, "A-2077", user=u))
        got = wait_texts(fake, chat, 5)
        assert_contains(got[3], "Какой заказ нужно отменить", what="cancel prompt")
        assert_contains(got[4], "Отменить заказ A-2077?", what="cancel confirmation")
        confirm = sends(fake, chat)[4]
        flat = [b for row in markup(confirm)["inline_keyboard"] for b in row]
        assert_eq([b["callback_data"] for b in flat], ["cancel_yes", "cancel_no"],
                  "confirmation buttons")
        assert_eq(conversation(gw.db, chat)["state"], "cancel_confirm", "state before the press")
        post_ok(gw, _callback(u, confirm.result, "cancel_yes", "4382bfdwdsb323b2e0"))
        got = wait_texts(fake, chat, 6)
        assert_contains(got[5], "A-2077", "отмен", what="cancellation done")
        c = conversation(gw.db, chat)
        assert_eq(c["state"], "initial", "state after the confirmation")
        assert_eq(c["context"].get("cancelled_order"), "A-2077", "context.cancelled_order")
        fake.wait_for(lambda: len(fake.calls("answerCallbackQuery")) == 2, timeout=10,
                      what="the second answerCallbackQuery")
        assert_eq(fake.calls("answerCallbackQuery")[1].params.get("callback_query_id"),
                  "4382bfdwdsb323b2e0", "second press answered")

        # A press redelivered by Telegram is one press: no second answer.
        post_ok(gw, _callback(u, confirm.result, "cancel_yes", "4382bfdwdsb323b2e0"))
        assert_quiet(fake, chat, 6, 2.0)
        assert_eq(len(fake.calls("answerCallbackQuery")), 2,
                  "answerCallbackQuery after a redelivery")
        # The press rows: stored once each, answered.
        n = int(psql1(gw.db, "SELECT count(*) FROM messages WHERE direction = 'inbound' AND "
                             "platform_message_id LIKE 'callback:%'"))
        assert_eq(n, 2, "stored presses")
        n = int(psql1(gw.db, "SELECT count(*) FROM messages WHERE role = 'system' AND "
                             "delivery_status = 'sent' AND metadata->>'method' = "
                             "'answerCallbackQuery'"))
        assert_eq(n, 2, "answered presses recorded as sent")
        _check_sent_rows(gw, fake, chat, 6)


def test_goodbye_closes_and_next_message_opens_a_new_conversation():
    u = tg_user(uid=8100000004, first="Олег", last=None, username=None, lang="ru")
    chat = u["id"]
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        post_ok(gw, tg_message(1, "здравствуйте", user=u))
        post_ok(gw, tg_message(2, "спасибо, пока", user=u))
        got = wait_texts(fake, chat, 2)
        assert_contains(got[1], "Хорошего дня", what="goodbye")
        n = int(psql1(gw.db, "SELECT count(*) FROM conversations WHERE chat_id = '%d' AND "
                             "status = 'closed'" % chat))
        assert_eq(n, 1, "closed conversations")
        post_ok(gw, tg_message(3, "Привет снова", user=u))
        got = wait_texts(fake, chat, 3)
        assert_contains(got[2], "Здравствуйте! 👋", what="greeting in the new conversation")
        n = int(psql1(gw.db, "SELECT count(*) FROM conversations WHERE chat_id = '%d'" % chat))
        assert_eq(n, 2, "conversations of the chat")
        assert_eq(conversation(gw.db, chat)["status"], "active", "the new conversation")


def test_private_topic_reply_keeps_the_thread():
    u = tg_user(uid=8100000005, first="Ivan", last=None, username="ivan", lang="en")
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        post_ok(gw, tg_message(7, "what are your opening hours", user=u, message_thread_id=4242,
                             is_topic_message=True))
        wait_texts(fake, u["id"], 1)
        req = sends(fake, u["id"])[0]
        assert_contains(req.params.get("text"), "9:00", "21:00", what="opening hours")
        assert_eq(str(req.params.get("message_thread_id")), "4242", "message_thread_id kept")
        assert_eq(inbound_row(gw.db, "%d:7" % u["id"])["intent"], "opening_hours", "intent")


def test_fallback_twice_offers_a_human():
    u = tg_user(uid=8100000006, first="Пётр", last=None, username=None, lang="ru")
    chat = u["id"]
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        post_ok(gw, tg_message(1, "фыва олдж", user=u))
        post_ok(gw, tg_message(2, "кукареку трам пам", user=u))
        got = wait_texts(fake, chat, 2)
        assert_contains(got[0], "не совсем понял", what="first fallback")
        assert_contains(got[1], "Позвать оператора?", what="second fallback offers a human")
        flat = [b for row in markup(sends(fake, chat)[1])["inline_keyboard"] for b in row]
        assert_eq([b["callback_data"] for b in flat], ["operator", "offer_no"], "offer buttons")
        r = inbound_row(gw.db, "%d:1" % chat)
        assert_eq(r["intent"], "fallback", "intent of gibberish")
        post_ok(gw, tg_message(3, "да", user=u))
        got = wait_texts(fake, chat, 3)
        assert_contains(got[2], "Соединяю вас с оператором", what="yes -> operator")
        assert_eq(conversation(gw.db, chat)["status"], "escalated", "status after yes")
