"""20-ws-slow-client: a WebSocket client that does not read is dropped, not
buffered without bound: a console socket that never reads while hundreds of
events are published is closed by the gateway (its send queue is bounded),
one WARN line says so, and a console that reads keeps getting every event;
the gateway's memory stays bounded and it keeps answering."""

import time

from api_helpers import add_operator, login
from eftest import assert_eq, fail, post_ok, tg_message, tg_user
from lib.ws import WS, Closed
from reply_helpers import demo_gateway, limited_telegram

N = 400  # messages: each publishes 2-3 console events


def console(gw, token, **kw):
    ws = WS(gw.port, "/ws/console", "ef.console.v1", **kw)
    ws.send_json({"type": "auth", "token": token})
    r = ws.wait_for(lambda o: o.get("type") in ("ready", "error"), what="ready")
    assert_eq(r["type"], "ready", "console auth")
    return ws


def test_a_console_that_does_not_read_is_dropped():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        tok = login(gw, "olga@shop.example")["access_token"]
        slow = console(gw, tok, rcvbuf=4096)
        fast = console(gw, tok)
        escalations = 0
        for i in range(N):
            u = tg_user(uid=8200000000 + i, username=None)
            # An escalation publishes its conversation event (messages of
            # conversations the bot handles alone publish none: 013).
            post_ok(gw, tg_message(1, "позовите оператора, это сообщение номер %d" % i,
                                   user=u))
            # The fast console reads as it goes.
            try:
                while True:
                    o = fast.recv_json(0.01)
                    if o.get("type") == "conversation" and o.get("status") == "escalated":
                        escalations += 1
            except TimeoutError:
                pass
        deadline = time.time() + 20
        while escalations < N and time.time() < deadline:
            try:
                o = fast.recv_json(1)
                if o.get("type") == "conversation" and o.get("status") == "escalated":
                    escalations += 1
            except TimeoutError:
                pass
        assert_eq(escalations, N, "the reading console got every escalation event")
        gw.wait_log("too slow", timeout=10)
        # The slow one: what the kernel buffered, then the end (never a close
        # handshake the gateway had to buffer for it).
        got = 0
        try:
            while True:
                slow.recv_json(5)
                got += 1
        except (Closed, ConnectionError, OSError):
            pass
        except TimeoutError:
            fail("the slow console is still open after %d frames" % got)
        if got >= 3 * N:
            fail("the slow console got everything (%d frames): it was not dropped" % got)
        assert_eq(gw.get("/healthz").status, 200, "still serving")
        fast.close()
