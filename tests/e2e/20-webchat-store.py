"""20-webchat-store: the web chat (/ws/chat, the webchat adapter) goes through
the same pipeline, store and dispatcher as the messengers. A visitor says
hello and gets a signed visitor id; each message is acknowledged only once
committed (the row is there when the ack arrives), stored once whatever the
resends (the client's message id), in order; the bot's reply is pushed to
the socket once the dispatcher recorded it sent; a reload (a new socket with
the same id) gets the history; a forged or altered visitor id is refused;
an upgrade without the subprotocol or on the wrong path is refused."""

from eftest import assert_eq, fail, psql1, wait_until
from lib.ws import WS, Closed, Refused
from reply_helpers import demo_gateway, limited_telegram

CHAT = ("/ws/chat", "ef.chat.v1")


def hello(gw, visitor=None):
    ws = WS(gw.port, *CHAT)
    ws.send_json({"type": "hello"} if visitor is None else {"type": "hello", "visitor": visitor})
    w = ws.wait_for(lambda o: o.get("type") in ("welcome", "error"), what="welcome")
    if w["type"] != "welcome":
        fail("hello refused: %r" % w)
    return ws, w


def chat_id(visitor):
    return visitor.split(".")[1]


def stored(db, visitor, client_id):
    return int(psql1(db, "SELECT count(*) FROM messages WHERE platform = 'webchat' AND "
                         "platform_message_id = '%s:%s'" % (chat_id(visitor), client_id)))


def test_hello_message_ack_after_commit_reply_pushed():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        ws, w = hello(gw)
        v = w["visitor"]
        if not (v.startswith("v1.") and len(v.split(".")) == 3):
            fail("not a visitor id: %r" % v)
        assert_eq(w["messages"], [], "a new visitor has no history")
        ws.send_json({"type": "message", "id": "c-1", "text": "Привет"})
        ack = ws.wait_for(lambda o: o.get("type") in ("ack", "nack"), what="ack")
        assert_eq(ack, {"type": "ack", "id": "c-1", "duplicate": False}, "ack")
        # Acknowledged after the commit: the row is there already.
        assert_eq(stored(gw.db, v, "c-1"), 1, "stored when acknowledged")
        reply = ws.wait_for(lambda o: o.get("type") == "message" and o.get("from") == "bot",
                            what="the bot's reply")
        if not reply.get("text"):
            fail("empty reply: %r" % reply)
        st = psql1(gw.db, "SELECT delivery_status FROM messages WHERE id = '%s'" % reply["id"])
        assert_eq(st, "sent", "the reply was recorded sent by the dispatcher")
        # The page shows it: delivered, then read (as a messenger reports them).
        for status in ("delivered", "read"):
            ws.send_json({"type": "seen", "message": reply["id"], "status": status})
            wait_until(lambda: psql1(gw.db, "SELECT delivery_status FROM messages WHERE id = "
                                            "'%s'" % reply["id"]) == status,
                       what="the reply %s" % status)
        ws.send_json({"type": "seen", "message": "not-a-row", "status": "read"})
        err = ws.wait_for(lambda o: o.get("type") == "error", what="a bad seen refused")
        assert_eq("row id" in err["error"], True, "why: %r" % err)
        ws.close()
        # A reload: the read reply comes back marked read.
        ws, w = hello(gw, v)
        mine = [m for m in w["messages"] if m["id"] == reply["id"]]
        assert_eq(mine[0].get("read"), True, "read in the history")
        ws.close()


def test_resend_is_a_duplicate_and_order_is_kept():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        ws, w = hello(gw)
        v = w["visitor"]
        for i in range(1, 6):
            ws.send_json({"type": "message", "id": "m-%d" % i, "text": "сообщение %d" % i})
        acks = []
        while len(acks) < 5:
            o = ws.wait_for(lambda o: o.get("type") in ("ack", "nack"), what="5 acks")
            acks.append(o)
        assert_eq([a["type"] for a in acks], ["ack"] * 5, "all acknowledged")
        # The same message again (a reconnect after a lost ack): a duplicate.
        ws.send_json({"type": "message", "id": "m-3", "text": "сообщение 3"})
        dup = ws.wait_for(lambda o: o.get("type") in ("ack", "nack"), what="the resend's ack")
        assert_eq(dup, {"type": "ack", "id": "m-3", "duplicate": True}, "resend")
        for i in range(1, 6):
            assert_eq(stored(gw.db, v, "m-%d" % i), 1, "m-%d stored once" % i)
        order = psql1(gw.db, "SELECT string_agg(split_part(platform_message_id, ':', 2), ',' "
                             "ORDER BY created_at) FROM messages WHERE platform = 'webchat' "
                             "AND direction = 'inbound'")
        assert_eq(order, "m-1,m-2,m-3,m-4,m-5", "stored in the order sent")
        # A reload: the same visitor id gets the history back.
        ws.close()
        ws2, w2 = hello(gw, v)
        assert_eq(w2["visitor"], v, "the same visitor")
        mine = [m.get("client_id") for m in w2["messages"] if m["from"] == "visitor"]
        assert_eq(mine, ["m-%d" % i for i in range(1, 6)], "history after a reload")
        ws2.close()


def test_forged_visitor_and_bad_frames_refused():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        ws, w = hello(gw)
        v = w["visitor"]
        ws.close()
        other = v.split(".")
        forged = ["v1.%s.%s" % ("0" * 32, other[2]),             # another id, the same mac
                  "v1.%s.%s" % (other[1], other[2][:-1] + ("A" if other[2][-1] != "A" else "B")),
                  "v1.%s" % other[1], "garbage", "v2.%s.%s" % (other[1], other[2])]
        for f in forged:
            ws = WS(gw.port, *CHAT)
            ws.send_json({"type": "hello", "visitor": f})
            try:
                o = ws.wait_for(lambda o: o.get("type") in ("welcome", "error"), what="answer")
                assert_eq(o, {"type": "error", "error": "invalid visitor id"}, "forged %r" % f)
                ws.recv_json(5)
                fail("the socket stayed open after a forged id")
            except Closed as e:
                assert_eq(e.code, 4403, "close code for a forged id")
        # Nothing was stored for them.
        assert_eq(psql1(gw.db, "SELECT count(*) FROM messages WHERE platform = 'webchat'"), "0",
                  "no rows")
        # A message before hello, a bad client id, an empty text: refused for good.
        ws = WS(gw.port, *CHAT)
        ws.send_json({"type": "message", "id": "x", "text": "hi"})
        o = ws.wait_for(lambda o: o.get("type") == "nack", what="nack before hello")
        assert_eq(o["retry"], False, "before hello")
        ws.send_json({"type": "hello", "visitor": v})
        ws.wait_for(lambda o: o.get("type") == "welcome", what="welcome")
        for bad in ({"type": "message", "id": "a b", "text": "x"},
                    {"type": "message", "id": "ok-1", "text": ""},
                    {"type": "message", "id": "y" * 65, "text": "x"}):
            ws.send_json(bad)
            o = ws.wait_for(lambda o: o.get("type") == "nack", what="nack for %r" % bad)
            assert_eq(o["retry"], False, "refused for good: %r" % bad)
        ws.send_text("not json")
        o = ws.wait_for(lambda o: o.get("type") == "error", what="error for non-JSON")
        ws.close()
        # The upgrade needs the subprotocol and the right path.
        for path, proto in (("/ws/chat", None), ("/ws/console", "ef.chat.v1"),
                            ("/ws/chat", "other")):
            try:
                WS(gw.port, path, proto).close()
                fail("upgrade %s %s accepted" % (path, proto))
            except (Refused, Closed, ConnectionError):
                pass
        # The gateway still answers.
        assert_eq(gw.get("/healthz").status, 200, "healthz")

