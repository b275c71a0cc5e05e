"""09-whatsapp-statuses: the bot's WhatsApp replies are stored with the wamid
the Graph API gave them, and Meta's status webhooks (sent, delivered, read,
failed -- out of order, duplicated, batched) move a reply's delivery_status
forward only; a failure keeps "code title: details"; a status for a message
we never sent is acknowledged and logged."""

from eftest import assert_eq, assert_status, count, fail
from reply_helpers import DEMO_BOT
from wa_helpers import (PNID_A, PNID_UNKNOWN, chat_key, contact, fake_graph, inbound,
                        post_wa, post_wa_ok, status, statuses_payload, text, wa_gateway, wa_outbound,
                        wamid)

ANNA = "79161234567"

REENGAGE = {"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message",
            "error_data": {"details": "Message failed to send because more than 24 hours have "
                                      "passed since the customer last replied to this number."},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/"
                    "error-codes/"}


def _replies(gw):
    return [r for r in wa_outbound(gw.db, chat_key(ANNA)) if r["role"] == "assistant"]


def _state(gw, mid):
    rows = [r for r in wa_outbound(gw.db) if r["platform_message_id"] == mid]
    if len(rows) != 1:
        fail("expected one outbound row with wamid %r, found %d" % (mid, len(rows)))
    return rows[0]


def _three_replies(gw, graph):
    """The customer asks three things; returns the three replies' rows once
    the fake Graph API accepted them."""
    c = [contact(ANNA, "Анна")]
    for t in ("Привет", "где мой заказ", "A-1042"):
        post_wa_ok(gw, inbound([text(ANNA, t)], c), t)
    graph.wait_for(lambda: len(graph.messages(to=ANNA)) >= 3, timeout=20, what="three replies")
    rows = []

    def all_sent():
        rows[:] = _replies(gw)
        return len(rows) == 3 and all(r["delivery_status"] == "sent" for r in rows)
    graph.wait_for(all_sent, timeout=10, what="three reply rows recorded as sent")
    return rows


def test_replies_carry_their_wamid_and_statuses_only_move_forward():
    graph = fake_graph()
    with wa_gateway(graph, bot=DEMO_BOT) as gw:
        rows = _three_replies(gw, graph)
        accepted = graph.messages(to=ANNA)
        assert_eq([r["platform_message_id"] for r in rows], [a.wamid for a in accepted],
                  "each reply stored with the wamid the Graph API answered")
        for r, a in zip(rows, accepted):
            body = a.body.get("text", {}).get("body") or \
                a.body.get("interactive", {}).get("body", {}).get("text")
            assert_eq(body, r["content"], "the reply sent is the reply stored")
        m1, m2, m3 = (r["platform_message_id"] for r in rows)
        inbound_before = count(gw.db, "messages WHERE direction = 'inbound'")

        # m1: sent (again), delivered, read, then a late delivered and a duplicate read.
        post_wa_ok(gw, statuses_payload([status(m1, "sent", ANNA, ts="1731705700")]))
        assert_eq(_state(gw, m1)["delivery_status"], "sent", "m1 after sent")
        post_wa_ok(gw, statuses_payload([status(m1, "delivered", ANNA, ts="1731705701")]))
        assert_eq(_state(gw, m1)["delivery_status"], "delivered", "m1 after delivered")
        post_wa_ok(gw, statuses_payload([status(m1, "read", ANNA, ts="1731705702")]))
        read = _state(gw, m1)
        assert_eq(read["delivery_status"], "read", "m1 after read")
        post_wa_ok(gw, statuses_payload([status(m1, "delivered", ANNA, ts="1731705703")]))
        post_wa_ok(gw, statuses_payload([status(m1, "read", ANNA, ts="1731705709")]))
        post_wa_ok(gw, statuses_payload([status(m1, "sent", ANNA, ts="1731705710")]))
        after = _state(gw, m1)
        assert_eq(after["delivery_status"], "read", "m1 after a late delivered, read, sent")
        assert_eq(after["metadata"], read["metadata"], "m1 unchanged by the late statuses")
        assert_eq(after["failed_reason"], None, "m1 failed_reason")

        # m2: one batch, out of order: read, sent, delivered -> read.
        post_wa_ok(gw, statuses_payload([status(m2, "read", ANNA, ts="1731705722"),
                                  status(m2, "sent", ANNA, ts="1731705720"),
                                  status(m2, "delivered", ANNA, ts="1731705721")]))
        assert_eq(_state(gw, m2)["delivery_status"], "read", "m2 after read, sent, delivered")

        # m3: failed keeps code, title and details; duplicates and a late sent change nothing.
        post_wa_ok(gw, statuses_payload([status(m3, "failed", ANNA, ts="1731705730",
                                         errors=[REENGAGE])]))
        failed = _state(gw, m3)
        assert_eq(failed["delivery_status"], "failed", "m3 after failed")
        want = "131047 Re-engagement message: Message failed to send because more than 24 hours " \
               "have passed since the customer last replied to this number."
        assert_eq(failed["failed_reason"], want, "failed_reason = code title: details")
        post_wa_ok(gw, statuses_payload([status(m3, "failed", ANNA, ts="1731705731",
                                         errors=[dict(REENGAGE, code=131026,
                                                      title="Message undeliverable")])]))
        post_wa_ok(gw, statuses_payload([status(m3, "sent", ANNA, ts="1731705732")]))
        again = _state(gw, m3)
        assert_eq((again["delivery_status"], again["failed_reason"]), ("failed", want),
                  "m3 after a second failed and a late sent")

        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), inbound_before,
                  "statuses are not messages")


def test_statuses_for_unknown_messages_are_acknowledged_and_logged():
    graph = fake_graph()
    with wa_gateway(graph, bot=DEMO_BOT) as gw:
        stranger = wamid("15550783881")
        post_wa_ok(gw, statuses_payload([status(stranger, "delivered", ANNA)]), "unknown wamid")
        gw.wait_log(r"ignored.*" + stranger.replace("+", r"\+").replace(".", r"\."), timeout=5)
        # A BSUID recipient (empty recipient_id), and another number's status.
        bs = wamid("0")
        post_wa_ok(gw, statuses_payload([status(bs, "read", "",
                                         recipient_user_id="US.13491208655302741918")]),
            "BSUID recipient")
        # another number's status: refused (no integration serves it), not dropped
        assert_status(post_wa(gw, statuses_payload([status(wamid(), "read", ANNA)],
                                                   pnid=PNID_UNKNOWN)), 422, "another number")
        assert_eq(count(gw.db, "messages"), 0, "nothing stored")
        # A real reply and an unknown status in one batch: the real one applies.
        post_wa_ok(gw, inbound([text(ANNA, "спасибо")], [contact(ANNA, "Анна")]))
        graph.wait_for(lambda: graph.messages(to=ANNA), timeout=15, what="the reply")
        mid = graph.messages(to=ANNA)[0].wamid
        graph.wait_for(lambda: _replies(gw) and _replies(gw)[0]["platform_message_id"] == mid,
                       timeout=10, what="the reply's wamid stored")
        post_wa_ok(gw, statuses_payload([status(stranger, "read", ANNA), status(mid, "delivered", ANNA)]))
        assert_eq(_state(gw, mid)["delivery_status"], "delivered", "the known one applied")
        assert_eq(_state(gw, mid)["chat_id"], chat_key(ANNA, PNID_A), "the reply's conversation")
