"""14-api-conversations: operators work the escalation queue over /api/v1
against real Telegram conversations with the demo bot: the list filters by
status, searches names and texts and pages newest first; a conversation
shows its messages with intents; one operator at a time holds it (409 for
the other, also when both claim at once); the operator's reply is stored
as role 'operator' and delivered through the fake Bot API while the bot
stays silent; release hands it back (the bot answers again), close ends
it, escalate takes an active one out of the bot's hands; every change is
an audited event."""

import threading
import time

from api_helpers import (add_operator, call, conversation_id, escalated_chat, expect, login)
from eftest import assert_eq, fail, post_ok, psql, psql1, tg_message, tg_user
from reply_helpers import assert_quiet, demo_gateway, limited_telegram, sends, wait_texts


def _ops(db):
    add_operator(db, "olga@shop.example", "Ольга")
    add_operator(db, "ivan@shop.example", "Иван")


def _status(db, cid):
    return psql1(db, "SELECT status FROM conversations WHERE id = '%s'" % cid)


def test_list_filter_search_pages_and_view():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        _ops(gw.db)
        tok = login(gw, "olga@shop.example")["access_token"]
        _, c1 = escalated_chat(gw, fake, 8140000001, first="Анна")
        _, c2 = escalated_chat(gw, fake, 8140000002, first="Борис")
        u3 = tg_user(uid=8140000003, first="Вера", last=None, username="vera", lang="ru")
        post_ok(gw, tg_message(1, "где мой заказ A-1042", user=u3))
        wait_texts(fake, u3["id"], 1)
        c3 = conversation_id(gw.db, u3["id"])

        got = expect(call(gw, "GET", "/conversations?status=escalated", token=tok), 200, "list")
        ids = [c["id"] for c in got["conversations"]]
        assert_eq(sorted(ids), sorted([c1, c2]), "escalated conversations")
        assert_eq(ids[0], c2, "newest activity first")
        one = got["conversations"][0]
        assert_eq(one["customer"]["name"], "Борис", "customer name")
        assert_eq((one["platform"], one["chat_id"]), ("telegram", "8140000002"), "chat")
        if not one["escalated_at"] or not one["last_message"]:
            fail("escalated_at / last_message missing: %r" % one)
        got = expect(call(gw, "GET", "/conversations?status=active", token=tok), 200, "active")
        assert_eq([c["id"] for c in got["conversations"]], [c3], "active conversations")
        # Search: a customer's name, then a word of a message (Cyrillic, URL-encoded).
        got = expect(call(gw, "GET", "/conversations?q=%D0%B0%D0%BD%D0%BD%D0%B0", token=tok),
                     200, "search by name")
        assert_eq([c["id"] for c in got["conversations"]], [c1], "search 'анна'")
        got = expect(call(gw, "GET", "/conversations?q=A-1042", token=tok), 200, "search text")
        assert_eq([c["id"] for c in got["conversations"]], [c3], "search 'A-1042'")
        got = expect(call(gw, "GET", "/conversations?q=%25", token=tok), 200, "search '%'")
        assert_eq(got["conversations"], [], "'%' is a literal, not a wildcard")
        # Pages of one.
        seen, before = [], None
        for _ in range(4):
            path = "/conversations?limit=1" + ("&before=" + before if before else "")
            page = expect(call(gw, "GET", path, token=tok), 200, "page")
            seen += [c["id"] for c in page["conversations"]]
            before = page["next_before"]
            if not before:
                break
        assert_eq(seen, [c3, c2, c1], "pages of one, newest activity first, each once")

        # One conversation: its messages in order, intents shown.
        conv = expect(call(gw, "GET", "/conversations/" + c1, token=tok), 200, "view")
        msgs = conv["messages"]
        assert_eq([(m["role"], m["direction"]) for m in msgs],
                  [("user", "inbound"), ("assistant", "outbound"), ("user", "inbound"),
                   ("assistant", "outbound")], "message roles")
        assert_eq([m["intent"] for m in msgs if m["role"] == "user"], ["greeting", "operator"],
                  "intents")
        if msgs[0]["confidence"] is None or msgs[1]["delivery_status"] not in ("queued", "sent"):
            fail("confidence or delivery_status missing: %r" % msgs[:2])
        for k in ("content", "failed_reason", "created_at"):
            if k not in msgs[1]:
                fail("message lacks %s: %r" % (k, msgs[1]))
        assert_eq(conv["status"], "escalated", "status")


def test_claim_reply_release_close_and_the_audit_trail():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        _ops(gw.db)
        olga = login(gw, "olga@shop.example")
        ivan = login(gw, "ivan@shop.example")
        ot, it = olga["access_token"], ivan["access_token"]
        u, cid = escalated_chat(gw, fake, 8140000011)
        chat = u["id"]

        r = expect(call(gw, "POST", "/conversations/%s/claim" % cid, token=ot), 200, "claim")
        assert_eq(r["conversation"]["assigned_operator"]["name"], "Ольга", "holder")
        expect(call(gw, "POST", "/conversations/%s/claim" % cid, token=ot), 200, "claim again")
        r = expect(call(gw, "POST", "/conversations/%s/claim" % cid, token=it), 409,
                   "another operator claims")
        assert_eq(r["holder"]["name"], "Ольга", "409 names the holder")
        expect(call(gw, "POST", "/conversations/%s/messages" % cid, {"text": "я тут"},
                    token=it), 409, "another operator replies")
        expect(call(gw, "POST", "/conversations/%s/release" % cid, token=it), 409,
               "another operator releases")
        for body, want in (({}, 400), ({"text": 5}, 400), ({"text": "  \n"}, 422),
                           ({"text": "я" * 4097}, 422)):
            expect(call(gw, "POST", "/conversations/%s/messages" % cid, body, token=ot), want,
                   "reply %r" % str(body)[:40])

        # The operator's reply reaches the customer's Telegram chat.
        r = expect(call(gw, "POST", "/conversations/%s/messages" % cid,
                        {"text": "Здравствуйте, я Ольга. Чем помочь?"}, token=ot), 201, "reply")
        assert_eq((r["message"]["role"], r["message"]["delivery_status"]),
                  ("operator", "queued"), "the new row")
        got = wait_texts(fake, chat, 3)
        assert_eq(got[2], "Здравствуйте, я Ольга. Чем помочь?", "delivered text")
        row = psql(gw.db, "SELECT role, direction, metadata->>'operator_id' FROM messages "
                          "WHERE content = 'Здравствуйте, я Ольга. Чем помочь?'")
        assert_eq(row, [["operator", "outbound", olga["user"]["id"]]], "stored reply")
        deadline = time.time() + 10
        while psql1(gw.db, "SELECT delivery_status FROM messages WHERE role = 'operator'") \
                != "sent":
            if time.time() > deadline:
                fail("the operator's reply never became sent")
            time.sleep(0.2)

        # While the operator holds it the bot stays silent.
        post_ok(gw, tg_message(3, "где мой заказ A-1042", user=u))
        assert_quiet(fake, chat, 3, 2.0)

        # Handed back: the bot answers again.
        r = expect(call(gw, "POST", "/conversations/%s/release" % cid, token=ot), 200, "release")
        assert_eq((r["conversation"]["status"], r["conversation"]["assigned_operator"]),
                  ("active", None), "after release")
        post_ok(gw, tg_message(4, "Привет", user=u))
        got = wait_texts(fake, chat, 4)
        if "Здравствуйте" not in got[3]:
            fail("the bot did not answer after the release: %r" % got[3:])

        # Escalated again by an operator, then closed.
        expect(call(gw, "POST", "/conversations/%s/escalate" % cid, token=it), 200, "escalate")
        assert_eq(_status(gw.db, cid), "escalated", "status after escalate")
        r = expect(call(gw, "POST", "/conversations/%s/close" % cid, token=it), 200, "close")
        assert_eq(r["conversation"]["status"], "closed", "closed")
        for a in ("claim", "release", "close", "escalate"):
            expect(call(gw, "POST", "/conversations/%s/%s" % (cid, a), token=ot), 409,
                   "%s on a closed conversation" % a)
        expect(call(gw, "POST", "/conversations/%s/messages" % cid, {"text": "ещё"}, token=ot),
               409, "reply to a closed conversation")

        ev = psql(gw.db, "SELECT e.action, u.email, e.from_status, e.to_status FROM "
                         "conversation_events e JOIN users u ON u.id = e.operator_id "
                         "WHERE e.conversation_id = '%s' ORDER BY e.id" % cid)
        assert_eq(ev, [["claim", "olga@shop.example", "escalated", "escalated"],
                       ["release", "olga@shop.example", "escalated", "active"],
                       ["escalate", "ivan@shop.example", "active", "escalated"],
                       ["close", "ivan@shop.example", "escalated", "closed"]], "audit trail")
        view = expect(call(gw, "GET", "/conversations/" + cid, token=ot), 200, "view")
        assert_eq([e["action"] for e in view["events"]], ["claim", "release", "escalate", "close"],
                  "events in the view")
        if not [m for m in view["messages"] if m["role"] == "operator"]:
            fail("the view lacks the operator's message")
        assert_eq(len(sends(fake, chat)), 4, "messages delivered in all")


def test_reply_takes_over_an_active_conversation():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        _ops(gw.db)
        tok = login(gw, "olga@shop.example")["access_token"]
        u = tg_user(uid=8140000021, first="Гена", last=None, username=None, lang="ru")
        post_ok(gw, tg_message(1, "Привет", user=u))
        wait_texts(fake, u["id"], 1)
        cid = conversation_id(gw.db, u["id"])
        expect(call(gw, "POST", "/conversations/%s/messages" % cid, {"text": "Это оператор"},
                    token=tok), 201, "reply to an active conversation")
        # Taken from the bot: its hand-off message (fsm.handoff), then the reply.
        got = wait_texts(fake, u["id"], 3)
        assert_eq(got[2], "Это оператор", "the reply after the hand-off message")
        assert_eq(_status(gw.db, cid), "escalated", "taken over")
        post_ok(gw, tg_message(2, "где мой заказ", user=u))
        assert_quiet(fake, u["id"], 3, 2.0)


def test_two_operators_claim_at_once_one_wins():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        _ops(gw.db)
        toks = [login(gw, e)["access_token"] for e in ("olga@shop.example", "ivan@shop.example")]
        for n in range(3):
            _, cid = escalated_chat(gw, fake, 8140000031 + n)
            results = [None, None]
            go = threading.Barrier(2)

            def claim(i, cid=cid, results=results, go=go):
                go.wait()
                results[i] = call(gw, "POST", "/conversations/%s/claim" % cid,
                                  token=toks[i]).status

            ts = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            assert_eq(sorted(results), [200, 409], "concurrent claims of %s" % cid)
            n_ev = int(psql1(gw.db, "SELECT count(*) FROM conversation_events WHERE "
                                    "conversation_id = '%s'" % cid))
            assert_eq(n_ev, 1, "one claim recorded")
