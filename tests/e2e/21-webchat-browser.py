"""21-webchat-browser: the web chat with an operator. Over the socket: a
visitor who asks for a human is escalated and the bot goes quiet; an
operator claims (the visitor's socket hears "operator joined"), replies (the
reply is pushed to every socket of the visitor, also one held by another
gateway on the same database) and hands back (the bot answers again); the
console socket (/ws/console, first-frame auth) hears the escalation, the
messages and the deliveries. Then the same flow in headless Chromium on
/chat at a phone's width (tests/browser/chat.test.mjs).

Without chromium, node or npm the browser part is skipped with a message on
stderr (scripts/deps.sh installs them)."""

import os
import subprocess
import sys
import time
from pathlib import Path

from lib import browser
from api_helpers import PASSWORD, add_operator, call, expect, login
from eftest import Gateway, assert_eq, fail, psql1, wait_until
from lib.ws import WS, Closed
from reply_helpers import DEMO_BOT, demo_gateway, limited_telegram

HERE = Path(__file__).resolve().parent
BROWSER_DIR = browser.BROWSER_DIR
SHOTS = HERE / ".logs"


def chat(gw, visitor=None):
    ws = WS(gw.port, "/ws/chat", "ef.chat.v1")
    ws.send_json({"type": "hello"} if visitor is None else {"type": "hello", "visitor": visitor})
    w = ws.wait_for(lambda o: o.get("type") == "welcome", what="welcome")
    return ws, w


def say(ws, cid, text):
    ws.send_json({"type": "message", "id": cid, "text": text})
    ack = ws.wait_for(lambda o: o.get("type") in ("ack", "nack") and o.get("id") == cid,
                      what="ack of %s" % cid)
    assert_eq(ack["type"], "ack", "ack of %s" % cid)


def is_bot(o):
    return o.get("type") == "message" and o.get("from") == "bot"


def bot_says(ws, what):
    return heard(ws, what, is_bot)


def heard(ws, what, pred):
    """The frame pred matches, received already (kept while waiting for
    others) or still to come."""
    for o in getattr(ws, "seen", []):
        if pred(o):
            ws.seen.remove(o)
            return o
    return ws.wait_for(pred, what=what)


def console(gw, token):
    ws = WS(gw.port, "/ws/console", "ef.console.v1")
    ws.send_json({"type": "auth", "token": token})
    r = ws.wait_for(lambda o: o.get("type") in ("ready", "error"), what="ready")
    assert_eq(r["type"], "ready", "console auth")
    return ws


def test_console_socket_needs_a_token():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        for frame in ({"type": "auth", "token": "nope"}, {"type": "ping"}):
            ws = WS(gw.port, "/ws/console", "ef.console.v1")
            ws.send_json(frame)
            try:
                o = ws.wait_for(lambda o: True, what="an answer")
                assert_eq(o, {"type": "error", "error": "unauthorized"}, "refused %r" % frame)
                ws.recv_json(5)
                fail("still open after %r" % frame)
            except Closed as e:
                assert_eq(e.code, 4401, "close code")


def test_escalation_operator_reply_and_hand_back_over_sockets():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        tok = login(gw, "olga@shop.example")["access_token"]
        con = console(gw, tok)
        ws, w = chat(gw)
        v = w["visitor"]
        say(ws, "c-1", "Привет")
        bot_says(ws, "the greeting's answer")
        say(ws, "c-2", "Позовите оператора, пожалуйста")
        st = heard(ws, "escalated status", lambda o: o.get("type") == "status")
        assert_eq(st["status"], "escalated", "status pushed to the visitor")
        chat_id = v.split(".")[1]
        cid = psql1(gw.db, "SELECT id FROM conversations WHERE platform = 'webchat' AND "
                           "chat_id = '%s'" % chat_id)
        heard(con, "the escalation on the console",
              lambda o: o.get("type") == "conversation" and o.get("status") == "escalated" and
              o.get("conversation_id") == cid)
        heard(con, "the visitor's message on the console",
              lambda o: o.get("type") == "message" and o.get("direction") == "inbound" and
              o.get("conversation_id") == cid)
        bot_says(ws, "the bot's hand-over message")
        # Escalated: the bot says nothing more.
        ws.seen = []
        say(ws, "c-3", "Алло?")
        try:
            o = ws.wait_for(is_bot, timeout=2.0, what="no bot reply")
            fail("the bot answered while escalated: %r" % o)
        except TimeoutError:
            pass
        if any(is_bot(o) for o in ws.seen):
            fail("the bot answered while escalated: %r" % ws.seen)
        # A second gateway on the same database holds another tab of the visitor.
        with Gateway(env={"EF_BOT_FILE": DEMO_BOT, "TELEGRAM_BOT_TOKEN": fake.token,
                          "TELEGRAM_API_URL": fake.url}, db=gw.db, redis_url=gw.redis_url,
                     name="gateway-b") as gw2:
            ws2, w2 = chat(gw2, v)
            assert_eq(w2["status"], "escalated", "the other tab sees the status")
            expect(call(gw, "POST", "/conversations/%s/claim" % cid, token=tok), 200, "claim")
            for s in (ws, ws2):
                j = heard(s, "operator joined",
                          lambda o: o.get("type") == "status" and o.get("operator"))
                assert_eq(j["status"], "escalated", "still escalated, with an operator")
            text = "Здравствуйте, я Ольга. Чем помочь?"
            t0 = time.time()
            expect(call(gw, "POST", "/conversations/%s/messages" % cid, {"text": text},
                        token=tok), 201, "operator reply")
            for s in (ws, ws2):
                m = heard(s, "the operator's reply",
                          lambda o: o.get("type") == "message" and o.get("from") == "operator")
                assert_eq(m["text"], text, "the reply's text")
            if time.time() - t0 > 3.0:
                fail("the reply took %.1f s to reach the sockets" % (time.time() - t0))
            heard(con, "the delivery on the console",
                  lambda o: o.get("type") == "delivery" and o.get("status") == "sent" and
                  o.get("conversation_id") == cid and o.get("message_id") == m["id"])
            assert_eq(psql1(gw.db, "SELECT delivery_status FROM messages WHERE id = '%s'" %
                            m["id"]), "sent", "recorded sent")
            ws2.close()
        expect(call(gw, "POST", "/conversations/%s/release" % cid, token=tok), 200, "release")
        back = heard(ws, "handed back",
                     lambda o: o.get("type") == "status" and o.get("status") == "active")
        assert_eq(back["operator"], False, "no operator any more")
        say(ws, "c-4", "Привет")
        bot_says(ws, "the bot again after the hand-back")
        ws.close()
        con.close()


def _tools():
    return browser.tools("21-webchat-browser")


def test_chat_page_in_headless_chromium():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        r = gw.get("/chat")
        assert_eq(r.status, 200, "GET /chat")
        if b"/chat/chat.js" not in r.body:
            fail("the page does not load chat.js: %r" % r.body[:200])
        assert_eq(gw.get("/chat/style.css").status, 200, "style.css")
        for bad in ("/chat/nope.js", "/chat/.hidden.js", "/chat/x/y.js", "/chats"):
            assert_eq(gw.get(bad).status, 404, bad)
        tools = _tools()
        if not tools:
            return
        chromium, node = tools
        add_operator(gw.db, "olga@shop.example", "Ольга")
        SHOTS.mkdir(exist_ok=True)
        text = "Здравствуйте! Я Ольга, сейчас всё проверю."
        env = dict(os.environ, EF_URL=gw.base, EF_EMAIL="olga@shop.example",
                   EF_PASSWORD=PASSWORD, EF_REPLY=text, EF_SHOT_DIR=str(SHOTS),
                   CHROMIUM=chromium)
        r = subprocess.run([node, str(BROWSER_DIR / "chat.test.mjs")], env=env,
                           capture_output=True, text=True, timeout=180)
        sys.stderr.write(r.stderr)
        if r.returncode != 0:
            fail("chat.test.mjs failed (screenshot in tests/e2e/.logs/):\n%s" %
                 r.stderr.strip()[-2000:])
        assert_eq(psql1(gw.db, "SELECT status FROM conversations WHERE platform = 'webchat'"),
                  "active", "handed back to the bot")
        n = psql1(gw.db, "SELECT count(*) FROM messages WHERE role = 'operator' AND "
                         "content = '%s'" % text)
        assert_eq(n, "1", "the operator's reply stored once")
        # The page showed it in front: the console's ticks say read.
        wait_until(lambda: psql1(gw.db, "SELECT delivery_status FROM messages WHERE role = "
                                        "'operator' AND content = '%s'" % text) == "read",
                   what="the operator's reply read on the page")
