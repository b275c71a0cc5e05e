"""09-whatsapp-replies: the demo bot answers on WhatsApp as on Telegram:
the same conversation, replies through the Graph API in order, on the
business number the customer wrote to, read receipts first; buttons become
reply buttons (up to 3) or a list; Graph errors are retried, failed or
answered with the re-engagement template as WhatsApp requires, and the
24-hour window is respected."""

import time

from eftest import assert_contains, assert_eq, assert_status, fail, lit, psql, psql1
from reply_helpers import DEMO_BOT, JITTER, max_in_window
from wa_helpers import (DISPLAY_A, PNID_A, PNID_B, chat_key, contact, fake_graph, inbound,
                        message, post_wa, text, wa_gateway, wa_outbound)

ANNA = "79161234567"
JOHN = "447700900123"
BSUID = "US.13491208655302741918"


def _say(gw, frm, body, pnid=PNID_A, name="Анна", user_id=None):
    """The customer writes; returns the message's wamid."""
    m = text(frm, body, from_user_id=user_id) if user_id else text(frm, body)
    assert_status(post_wa(gw, inbound([m], [contact(frm, name, user_id=user_id)], pnid=pnid)),
                  200, body)
    return m["id"]


def _tap(gw, frm, kind, rid, title, ctx_id, pnid=PNID_A):
    obj = {"type": kind, kind: {"id": rid, "title": title}}
    m = message("interactive", frm, obj, context={"from": DISPLAY_A, "id": ctx_id})
    assert_status(post_wa(gw, inbound([m], [contact(frm, "Анна")], pnid=pnid)), 200, title)
    return m["id"]


def _body_text(req):
    b = req.body
    if b.get("type") == "text":
        return b["text"]["body"]
    if b.get("type") == "interactive":
        return b["interactive"]["body"]["text"]
    return None


def _wait_msgs(graph, to, n, timeout=15):
    graph.wait_for(lambda: len(graph.messages(to=to)) >= n, timeout=timeout,
                   what="%d messages to %s (have %r)" % (n, to, [_body_text(r) for r in
                                                                 graph.messages(to=to)]))
    return graph.messages(to=to)


def test_demo_bot_conversation_over_whatsapp_on_two_numbers():
    graph = fake_graph(numbers=[PNID_A, PNID_B])
    with wa_gateway(graph, bot=DEMO_BOT) as gw:
        w1 = _say(gw, ANNA, "Привет")
        w2 = _say(gw, ANNA, "где мой заказ")
        w3 = _say(gw, ANNA, "A-1042")
        w4 = _say(gw, ANNA, "позовите оператора")
        j1 = _say(gw, JOHN, "Hello", pnid=PNID_B, name="John Smith")
        j2 = _say(gw, JOHN, "where is my order?", pnid=PNID_B, name="John Smith")
        got = _wait_msgs(graph, ANNA, 4)
        jgot = _wait_msgs(graph, JOHN, 2)
        texts = [_body_text(r) for r in got]
        assert_contains(texts[0], "Здравствуйте! 👋", what="greeting")
        assert_contains(texts[1], "номер заказа", what="order number prompt")
        assert_contains(texts[2], "Заказ A-1042", what="order answer")
        assert_contains(texts[3], "оператор", what="operator")
        assert_contains(_body_text(jgot[0]), "Hello! 👋", what="English greeting")
        assert_contains(_body_text(jgot[1]), "order number", what="English prompt")
        assert_eq({r.number for r in got}, {PNID_A}, "Anna's replies leave from number A")
        assert_eq({r.number for r in jgot}, {PNID_B}, "John's replies leave from number B")
        assert_eq({r.version for r in got + jgot}, {"v25.0"}, "Graph API version")
        # Each reply answers the customer's message it replies to.
        assert_eq([r.body.get("context", {}).get("message_id") for r in got], [w1, w2, w3, w4],
                  "context.message_id of the replies")

        # The menu (5 buttons) is a list message; its rows are the buttons.
        menu = got[0].body
        assert_eq((menu.get("type"), menu["interactive"].get("type")), ("interactive", "list"),
                  "the 5-button menu")
        rows = [r for s in menu["interactive"]["action"]["sections"] for r in s["rows"]]
        assert_eq([(r["id"], r["title"]) for r in rows],
                  [("menu_order_status", "Статус заказа"), ("menu_delivery", "Доставка"),
                   ("menu_returns", "Возврат"), ("menu_cancel", "Отменить заказ"),
                   ("operator", "Оператор")], "list rows")
        jmenu = jgot[0].body["interactive"]
        assert_eq([r["title"] for s in jmenu["action"]["sections"] for r in s["rows"]],
                  ["Order status", "Delivery", "Returns", "Cancel an order", "Operator"],
                  "English list rows")
        if any("\u0400" <= ch <= "\u04ff" for ch in jmenu["action"]["button"]):
            fail("the English list's button is in Russian: %r" % jmenu["action"]["button"])
        assert_eq(got[1].body.get("type"), "text", "a reply without buttons is text")

        # Read receipts: every message read, before its reply.
        reads = graph.reads()
        assert_eq(sorted(r.body["message_id"] for r in reads), sorted([w1, w2, w3, w4, j1, j2]),
                  "mark-as-read for every message")
        for w, reply in zip([w1, w2, w3, w4], got):
            rd = [r for r in reads if r.body["message_id"] == w][0]
            if rd.time > reply.time:
                fail("the reply to %s went before its read receipt" % w)
        assert_eq(psql1(gw.db, "SELECT status FROM conversations WHERE chat_id = %s" %
                        lit(chat_key(ANNA))), "escalated", "Anna's conversation")

        # Escalated: read, but no more bot replies.
        w5 = _say(gw, ANNA, "алло?")
        graph.wait_for(lambda: any(r.body["message_id"] == w5 for r in graph.reads()),
                       timeout=10, what="the read receipt of a message to an operator")
        time.sleep(1.5)
        assert_eq(len(graph.messages(to=ANNA)), 4, "no bot reply once escalated")

        # Replies stored with their wamid, as sent.
        stored = [r for r in wa_outbound(gw.db, chat_key(ANNA)) if r["role"] == "assistant"]
        assert_eq([(r["delivery_status"], r["platform_message_id"]) for r in stored],
                  [("sent", r.wamid) for r in got], "Anna's reply rows")
        jstored = [r for r in wa_outbound(gw.db, chat_key(JOHN, PNID_B))
                   if r["role"] == "assistant"]
        assert_eq([r["platform_message_id"] for r in jstored], [r.wamid for r in jgot],
                  "John's reply rows")


def test_buttons_and_list_choices_move_the_fsm():
    graph = fake_graph()
    with wa_gateway(graph, bot=DEMO_BOT) as gw:
        _say(gw, ANNA, "Добрый день")
        menu = _wait_msgs(graph, ANNA, 1)[0]
        # A list choice is a button press.
        _tap(gw, ANNA, "list_reply", "menu_delivery", "Доставка", menu.wamid)
        got = _wait_msgs(graph, ANNA, 2)
        assert_contains(_body_text(got[1]), "доставляем", what="delivery answer to the list choice")
        _say(gw, ANNA, "хочу отменить заказ")
        _say(gw, ANNA, "A-2077")
        got = _wait_msgs(graph, ANNA, 4)
        assert_contains(_body_text(got[2]), "Какой заказ нужно отменить", what="cancel prompt")
        confirm = got[3].body
        assert_contains(_body_text(got[3]), "Отменить заказ A-2077?", what="confirmation")
        assert_eq(confirm["interactive"]["type"], "button", "two choices are reply buttons")
        btns = confirm["interactive"]["action"]["buttons"]
        assert_eq([(b["type"], b["reply"]["id"], b["reply"]["title"]) for b in btns],
                  [("reply", "cancel_yes", "Да, отменить"),
                   ("reply", "cancel_no", "Нет, оставить")],
                  "reply buttons")
        _tap(gw, ANNA, "button_reply", "cancel_yes", "Да, отменить", got[3].wamid)
        got = _wait_msgs(graph, ANNA, 5)
        assert_contains(_body_text(got[4]), "A-2077", "отмен", what="cancellation confirmed")
        ctx = psql1(gw.db, "SELECT context_data->>'cancelled_order' FROM conversations")
        assert_eq(ctx, "A-2077", "context.cancelled_order")


def test_rate_limit_errors_are_retried_then_delivered():
    graph = fake_graph()
    graph.fail_next(130429, to=ANNA)
    graph.fail_next(80007, to=ANNA)
    graph.fail_next(131000, to=ANNA)  # transient, HTTP 500
    with wa_gateway(graph, bot=DEMO_BOT) as gw:
        _say(gw, ANNA, "Привет")
        got = _wait_msgs(graph, ANNA, 1, timeout=20)
        graph.fail_next(131056, to=ANNA)
        _say(gw, ANNA, "где мой заказ")
        got = _wait_msgs(graph, ANNA, 2, timeout=20)
        assert_contains(_body_text(got[0]), "Здравствуйте", what="first reply")
        assert_contains(_body_text(got[1]), "номер заказа", what="second reply")
        calls = graph.calls("message", to=ANNA)
        assert_eq([(c.status, c.error_code) for c in calls],
                  [(400, 130429), (400, 80007), (500, 131000), (200, None), (400, 131056),
                   (200, None)], "attempts")
        gaps = [b.time - a.time for a, b in zip(calls[:3], calls[1:4])]
        if min(gaps) < 1.0 - JITTER:
            fail("errors retried after %r s (backoff expected)" % gaps)
        g3 = calls[5].time - calls[4].time
        if g3 < 6.0 - JITTER:
            fail("pair rate limit retried after %.3f s (one message per 6 s to a user)" % g3)
        rows = [r for r in wa_outbound(gw.db) if r["role"] == "assistant"]
        assert_eq([r["delivery_status"] for r in rows], ["sent", "sent"], "rows")
        assert_eq([r["platform_message_id"] for r in rows], [got[0].wamid, got[1].wamid], "wamids")
        assert_eq([r["retry_count"] for r in rows], [1, 0],
                  "retry_count: throttling is not a failed attempt, a 5xx is")


def test_throughput_per_number_is_limited():
    graph = fake_graph(rate_per_sec=5)
    customers = ["7916100%04d" % i for i in range(15)]
    with wa_gateway(graph, bot=DEMO_BOT, extra={"WHATSAPP_RATE_LIMIT": "5"}) as gw:
        for c in customers:
            _say(gw, c, "Привет")
        graph.wait_for(lambda: len(graph.messages()) >= 15, timeout=20, what="15 replies")
        time.sleep(0.5)
        sends = graph.calls("message")
        assert_eq(sorted(r.to for r in graph.messages()), sorted(customers), "one reply each")
        assert_eq([r.error_code for r in sends if r.error_code], [], "errors answered")
        n = max_in_window([r.time for r in sends], 1.0 - JITTER)
        if n > 5:
            fail("%d messages within one second from one number (WHATSAPP_RATE_LIMIT=5)" % n)


def test_reengagement_error_fails_with_reason_or_sends_the_template():
    for template in (None, "reengage:ru"):
        graph = fake_graph()
        graph.fail_next(131047, to=ANNA)
        with wa_gateway(graph, bot=DEMO_BOT, template=template) as gw:
            _say(gw, ANNA, "где мой заказ")
            if template is None:
                def failed():
                    rows = [r for r in wa_outbound(gw.db) if r["role"] == "assistant"]
                    return rows and rows[0]["delivery_status"] == "failed" and rows[0]
                row = graph.wait_for(failed, timeout=15, what="the reply failed")
                assert_contains(row["failed_reason"], "131047", "24 hours", what="failed_reason")
                time.sleep(1.0)
                assert_eq(len(graph.calls("message", to=ANNA)), 1, "131047 is not retried")
            else:
                got = _wait_msgs(graph, ANNA, 1)
                b = got[0].body
                assert_eq((b.get("type"), b["template"]["name"], b["template"]["language"]["code"]),
                          ("template", "reengage", "ru"), "the template sent instead")
                def recorded():
                    rows = [r for r in wa_outbound(gw.db) if r["role"] == "assistant"]
                    return rows and rows[0]["delivery_status"] != "queued" and rows
                rows = graph.wait_for(recorded, timeout=10, what="the row recorded")
                assert_eq((rows[0]["delivery_status"], rows[0]["platform_message_id"]),
                          ("sent", got[0].wamid), "row of the template")


def test_undeliverable_customer():
    graph = fake_graph()
    graph.fail_next(131026, to=ANNA)
    with wa_gateway(graph, bot=DEMO_BOT) as gw:
        _say(gw, ANNA, "Привет")

        def failed():
            rows = [r for r in wa_outbound(gw.db) if r["role"] == "assistant"]
            return rows and rows[0]["delivery_status"] == "failed" and rows[0]
        row = graph.wait_for(failed, timeout=15, what="the reply failed")
        assert_contains(row["failed_reason"], "131026", what="failed_reason")
        und = psql(gw.db, "SELECT undeliverable, undeliverable_reason FROM conversations")
        assert_eq(und[0][0], "t", "conversation undeliverable")
        assert_contains(und[0][1], "131026", what="undeliverable_reason")
        n = len(graph.calls("message", to=ANNA))
        # While undeliverable, a reply queued for the chat (an operator's, a
        # late one) fails without a request.
        _queue_reply(gw, chat_key(ANNA), "Ваш заказ A-1042 прибыл")
        graph.wait_for(lambda: all(r["delivery_status"] == "failed" for r in wa_outbound(gw.db)
                                   if r["role"] == "assistant") and
                       len([r for r in wa_outbound(gw.db) if r["role"] == "assistant"]) == 2,
                       timeout=10, what="the queued reply failed too")
        assert_eq(len(graph.calls("message", to=ANNA)), n, "no request for an undeliverable chat")
        # The customer writes again: deliverable again, the bot's answer goes out.
        _say(gw, ANNA, "где мой заказ")
        graph.wait_for(lambda: len(graph.calls("message", to=ANNA)) > n, timeout=10,
                       what="a request after the customer wrote")
        und = psql(gw.db, "SELECT undeliverable, undeliverable_reason FROM conversations")
        assert_eq((und[0][0], und[0][1]), ("f", None), "deliverable again after writing")


def _queue_reply(gw, chat, content):
    """A reply queued for a conversation (as an operator's or a delayed one)."""
    cid, sid, uid = psql(gw.db, "SELECT id, session_id, user_id FROM conversations WHERE "
                                "chat_id = %s" % lit(chat))[0]
    psql(gw.db, "INSERT INTO messages (conversation_id, session_id, user_id, content, role, "
                "direction, platform, metadata, delivery_status, next_attempt_at, created_at) "
                "VALUES (%s, %s, %s, %s, 'assistant', 'outbound', 'whatsapp', '{}', 'queued', "
                "now(), clock_timestamp())" % (lit(cid), lit(sid), lit(uid), lit(content)))


def test_24_hour_window_closed_no_free_form_reply():
    for template in (None, "reengage:ru"):
        graph = fake_graph()
        with wa_gateway(graph, bot=DEMO_BOT, template=template) as gw:
            _say(gw, ANNA, "спасибо")
            _wait_msgs(graph, ANNA, 1)
            # The customer's last message is 25 hours old when the next reply is due.
            psql(gw.db, "UPDATE conversations SET last_inbound_at = now() - interval '25 hours'")
            _queue_reply(gw, chat_key(ANNA), "Ваш заказ A-1042 прибыл в пункт выдачи")

            def settled():
                rows = [r for r in wa_outbound(gw.db) if r["role"] == "assistant"]
                return len(rows) == 2 and rows[1]["delivery_status"] != "queued" and rows[1]
            row = graph.wait_for(settled, timeout=15, what="the late reply settled")
            late = graph.messages(to=ANNA)[1:]
            if template is None:
                assert_eq(row["delivery_status"], "failed", "outside the window")
                assert_contains(row["failed_reason"], "24-hour", what="failed_reason")
                time.sleep(0.5)
                assert_eq(len(graph.calls("message", to=ANNA)), 1, "no free-form send")
            else:
                assert_eq([r.body.get("type") for r in late], ["template"], "what was sent")
                assert_eq(late[0].body["template"]["name"], "reengage", "template name")
                assert_eq((row["delivery_status"], row["platform_message_id"]),
                          ("sent", late[0].wamid), "the row")
            # The customer writes again: the window is open, replies are free-form.
            have = len(graph.messages(to=ANNA))
            _say(gw, ANNA, "где мой заказ")
            got = _wait_msgs(graph, ANNA, have + 1)
            assert_eq(got[-1].body.get("type"), "text", "a reply once the customer wrote again")
            assert_contains(_body_text(got[-1]), "номер заказа", what="reply after the window reopened")


def test_bsuid_customer_gets_replies_by_bsuid():
    graph = fake_graph()
    with wa_gateway(graph, bot=DEMO_BOT) as gw:
        _say(gw, "", "Привет", name="Безномерный", user_id=BSUID)
        got = _wait_msgs(graph, BSUID, 1)
        assert_contains(_body_text(got[0]), "Здравствуйте", what="reply to a BSUID customer")
        assert_eq(got[0].response["contacts"][0].get("user_id"), BSUID, "sent to the BSUID")
