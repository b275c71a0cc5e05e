"""23-api-notes-quick: what operators keep beside a conversation and the
replies a platform allows. Internal notes are stored with their author,
shown in the conversation view, audited, and never sent to the customer.
Quick replies are read by every operator and managed by admins only
(titles unique, partial updates, delete). On WhatsApp an operator reply
after the 24-hour window is refused up front (422 outside_reply_window,
with the approved template offered), the template goes instead when
asked for, and a reply the platform refuses shows as failed with the
reason. /metrics shows the outbox."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from api_helpers import add_operator, call, conversation_id, escalated_chat, expect, login
from eftest import (assert_contains, assert_eq, fail, lit, log_dir, post_ok, psql, psql1,
                    tg_message, tg_user, wait_until)
from reply_helpers import DEMO_BOT, demo_gateway, limited_telegram, sends, wait_texts
from wa_helpers import contact, fake_graph, inbound, post_wa, text, wa_gateway

ANNA = "79161234567"


def test_notes_are_kept_shown_audited_and_never_sent():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        tok = login(gw, "olga@shop.example")["access_token"]
        u, cid = escalated_chat(gw, fake, 8230000001)
        n_sent = len(sends(fake, u["id"]))
        got = expect(call(gw, "POST", "/conversations/%s/notes" % cid,
                          {"body": "Клиент VIP, заказ A-1042 — проверить склад"}, token=tok),
                     201, "add a note")
        note = got["note"]
        assert_eq((note["body"], note["author"]["name"]),
                  ("Клиент VIP, заказ A-1042 — проверить склад", "Ольга"), "the note")
        expect(call(gw, "POST", "/conversations/%s/notes" % cid, {"body": "второй"}, token=tok),
               201, "a second note")
        got = expect(call(gw, "GET", "/conversations/%s/notes" % cid, token=tok), 200, "notes")
        assert_eq([n["body"] for n in got["notes"]],
                  ["Клиент VIP, заказ A-1042 — проверить склад", "второй"], "oldest first")
        view = expect(call(gw, "GET", "/conversations/" + cid, token=tok), 200, "view")
        assert_eq(len(view["notes"]), 2, "notes in the conversation view")
        assert_eq([e["action"] for e in view["events"]][-2:], ["note", "note"], "audited")
        time.sleep(1.0)
        assert_eq(len(sends(fake, u["id"])), n_sent, "nothing sent to the customer")
        assert_eq(psql1(gw.db, "SELECT count(*) FROM messages WHERE conversation_id = '%s' "
                               "AND content LIKE '%%VIP%%'" % cid), "0", "no message row")
        for bad, status in (({}, 400), ({"body": 5}, 400), ({"body": "  \n "}, 422),
                            ({"body": "x" * 4097}, 422)):
            expect(call(gw, "POST", "/conversations/%s/notes" % cid, bad, token=tok), status,
                   "bad note %r" % (bad,))
        nid = "00000000-0000-4000-8000-000000000000"
        expect(call(gw, "POST", "/conversations/%s/notes" % nid, {"body": "x"}, token=tok), 404,
               "unknown conversation")
        expect(call(gw, "GET", "/conversations/%s/notes" % nid, token=tok), 404, "unknown list")
        expect(call(gw, "GET", "/conversations/nope/notes", token=tok), 400, "not a uuid")


def test_quick_replies_read_by_operators_managed_by_admins():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "root@shop.example", "Админ", role="admin")
        add_operator(gw.db, "olga@shop.example", "Ольга")
        adm = login(gw, "root@shop.example")["access_token"]
        op = login(gw, "olga@shop.example")["access_token"]
        got = expect(call(gw, "GET", "/quick-replies", token=op), 200, "empty list")
        assert_eq(got["quick_replies"], [], "none yet")
        a = expect(call(gw, "POST", "/quick-replies",
                        {"title": "Приветствие", "body": "Здравствуйте! Меня зовут Ольга.",
                         "lang": "ru", "position": 1}, token=adm), 201, "add")["quick_reply"]
        b = expect(call(gw, "POST", "/quick-replies",
                        {"title": "Доставка", "body": "Доставка занимает 2–5 дней."},
                        token=adm), 201, "add 2")["quick_reply"]
        expect(call(gw, "POST", "/quick-replies", {"title": "Доставка", "body": "x"}, token=adm),
               409, "the same title")
        expect(call(gw, "POST", "/quick-replies", {"title": "x", "body": "y"}, token=op), 403,
               "an operator cannot add")
        got = expect(call(gw, "GET", "/quick-replies", token=op), 200, "list")
        assert_eq([q["title"] for q in got["quick_replies"]], ["Доставка", "Приветствие"],
                  "by position, then title")
        got = expect(call(gw, "PUT", "/quick-replies/%d" % a["id"],
                          {"body": "Здравствуйте! Чем помочь?", "position": -1}, token=adm),
                     200, "update")
        assert_eq((got["quick_reply"]["title"], got["quick_reply"]["body"],
                   got["quick_reply"]["lang"]),
                  ("Приветствие", "Здравствуйте! Чем помочь?", "ru"), "partial update")
        expect(call(gw, "PUT", "/quick-replies/%d" % a["id"], {"title": "Доставка"}, token=adm),
               409, "rename onto another title")
        expect(call(gw, "PUT", "/quick-replies/999999", {"body": "x"}, token=adm), 404,
               "update unknown")
        expect(call(gw, "PUT", "/quick-replies/abc", {"body": "x"}, token=adm), 404, "bad id")
        for bad, status in (({"title": "t"}, 400), ({"title": "t", "body": ""}, 422),
                            ({"title": "t", "body": "b", "lang": "ru ru"}, 400),
                            ({"title": "t", "body": "b", "position": "1"}, 400),
                            ({"title": "x" * 101, "body": "b"}, 422)):
            expect(call(gw, "POST", "/quick-replies", bad, token=adm), status, "bad %r" % bad)
        expect(call(gw, "DELETE", "/quick-replies/%d" % b["id"], token=op), 403, "op delete")
        expect(call(gw, "DELETE", "/quick-replies/%d" % b["id"], token=adm), 200, "delete")
        expect(call(gw, "DELETE", "/quick-replies/%d" % b["id"], token=adm), 404, "again")
        got = expect(call(gw, "GET", "/quick-replies", token=op), 200, "list after")
        assert_eq([q["title"] for q in got["quick_replies"]], ["Приветствие"], "one left")


def _say(gw, frm, body):
    m = text(frm, body)
    r = post_wa(gw, inbound([m], [contact(frm, "Анна")]))
    assert_eq(r.status, 200, "webhook " + body)


def _conversation(gw):
    return psql1(gw.db, "SELECT id FROM conversations WHERE platform = 'whatsapp' "
                        "ORDER BY created_at DESC LIMIT 1")


def test_whatsapp_24h_window_refused_up_front_template_offered_and_failures_shown():
    graph = fake_graph()
    with wa_gateway(graph, bot=DEMO_BOT, template="reengage:ru") as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        tok = login(gw, "olga@shop.example")["access_token"]
        _say(gw, ANNA, "позовите оператора")
        cid = wait_until(lambda: _conversation(gw), what="the conversation")
        view = expect(call(gw, "GET", "/conversations/" + cid, token=tok), 200, "view")
        w = view["reply_window"]
        assert_eq((w["limit_s"], w["open"]), (86400, True), "the window is open")
        # The bot's own answer to Anna goes out first (a dispatcher that just
        # took the lease holds message sends for a second, START_HOLD_MS in
        # dispatch.c, so the answer can still be queued here), so that the
        # refusal below meets the operator's reply and nothing else.
        wait_until(lambda: psql1(gw.db, "SELECT count(*) = 0 FROM messages WHERE "
                                        "conversation_id = '%s' AND delivery_status = 'queued'"
                                 % cid) == "t", timeout=15, what="the bot's replies sent")
        # Inside the window a reply goes out; one the platform refuses is
        # failed with the reason, never shown as sent.
        graph.fail_next(131026, to=ANNA)
        got = expect(call(gw, "POST", "/conversations/%s/messages" % cid,
                          {"text": "Здравствуйте, это Ольга"}, token=tok), 201, "reply")
        mid = got["message"]["id"]

        def settled():
            v = expect(call(gw, "GET", "/conversations/" + cid, token=tok), 200, "view")
            m = [x for x in v["messages"] if x["id"] == mid][0]
            return m["delivery_status"] != "queued" and m
        m = wait_until(settled, timeout=15, what="the reply settled")
        assert_eq(m["delivery_status"], "failed", "refused by the platform")
        assert_contains(m["failed_reason"], "131026", what="the reason shown")
        # 25 hours later: refused before anything is queued, the template offered.
        psql(gw.db, "UPDATE conversations SET last_inbound_at = now() - interval '25 hours', "
                    "undeliverable = false WHERE id = %s" % lit(cid))
        n_rows = psql1(gw.db, "SELECT count(*) FROM messages WHERE conversation_id = '%s'" % cid)
        got = expect(call(gw, "POST", "/conversations/%s/messages" % cid,
                          {"text": "Вы ещё здесь?"}, token=tok), 422, "outside the window")
        assert_eq(got["error"], "outside_reply_window", "error")
        assert_contains(got["reason"], "24 hours", what="reason")
        assert_eq(got["reply_window"]["templates"], [{"name": "reengage", "language": "ru"}],
                  "the approved template offered")
        assert_eq(psql1(gw.db, "SELECT count(*) FROM messages WHERE conversation_id = '%s'"
                               % cid), n_rows, "nothing queued")
        view = expect(call(gw, "GET", "/conversations/" + cid, token=tok), 200, "view")
        assert_eq(view["reply_window"]["open"], False, "the view says closed")
        expect(call(gw, "POST", "/conversations/%s/messages" % cid, {"template": "other"},
                    token=tok), 422, "an unknown template")
        n = len(graph.messages(to=ANNA))
        got = expect(call(gw, "POST", "/conversations/%s/messages" % cid, {"template": "reengage"},
                          token=tok), 201, "the template")
        graph.wait_for(lambda: len(graph.messages(to=ANNA)) > n, timeout=15,
                       what="the template sent")
        b = graph.messages(to=ANNA)[-1].body
        assert_eq((b.get("type"), b["template"]["name"]), ("template", "reengage"),
                  "sent as the template")


_HANDOFF_BOT = """bot:
  name: handoff-test
  languages: [ru, en]

intents:
  human:
    description: The customer asks for a human
    patterns:
      ru: ['\\bчеловек~']
    examples:
      ru: [позовите человека]

fsm:
  fallback: "Не понял"
  repeated_fallback: "Снова не понял"
  global:
    - intent: human
      actions: [escalate]
  states:
    initial: {}
"""


def test_handoff_message_when_an_operator_takes_over_or_an_escalation_says_nothing():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        tok = login(gw, "olga@shop.example")["access_token"]
        # The bot has it; the operator takes it over: the demo bot's
        # fsm.handoff goes first, then the operator's words.
        u = tg_user(uid=8230000010, first="Вера", last=None, username="vera", lang="ru")
        post_ok(gw, tg_message(1, "Привет", user=u))
        wait_texts(fake, u["id"], 1)
        cid = conversation_id(gw.db, u["id"])
        expect(call(gw, "POST", "/conversations/%s/messages" % cid,
                    {"text": "Здравствуйте, это Ольга"}, token=tok), 201, "reply to an active one")
        got = wait_texts(fake, u["id"], 3)
        assert_eq(got[1:], ["Передаю вас оператору… Он ответит здесь же.",
                            "Здравствуйте, это Ольга"], "hand-off, then the reply")
        # Claiming an already escalated one (the bot said its own words): nothing more.
        _, c2 = escalated_chat(gw, fake, 8230000011)
        n = len(sends(fake, 8230000011))
        expect(call(gw, "POST", "/conversations/%s/claim" % c2, token=tok), 200, "claim")
        time.sleep(1.0)
        assert_eq(len(sends(fake, 8230000011)), n, "no hand-off for an escalated one")
        # Escalate by the operator: the hand-off message.
        u3 = tg_user(uid=8230000012, first="Глеб", last=None, username="gleb", lang="en")
        post_ok(gw, tg_message(1, "Hello", user=u3))
        wait_texts(fake, u3["id"], 1)
        c3 = conversation_id(gw.db, u3["id"])
        expect(call(gw, "POST", "/conversations/%s/escalate" % c3, token=tok), 200, "escalate")
        got = wait_texts(fake, u3["id"], 2)
        assert_eq(got[1], "Transferring you to an operator… They will reply right here.",
                  "the English hand-off")
    # A bot whose escalation says nothing: the default hand-off message.
    path = log_dir() / "handoff-bot.yaml"
    path.write_text(_HANDOFF_BOT)
    fake = limited_telegram()
    with demo_gateway(fake, env={"EF_BOT_FILE": str(path)}) as gw:
        u = tg_user(uid=8230000013, first="Анна", last=None, username="anna", lang="ru")
        post_ok(gw, tg_message(1, "позовите человека", user=u))
        got = wait_texts(fake, u["id"], 1)
        assert_eq(got[0], "Передаю вас оператору…", "the default hand-off message")
        assert_eq(psql1(gw.db, "SELECT status FROM conversations WHERE chat_id = '%s'" % u["id"]),
                  "escalated", "escalated")


def _gauge(body, name):
    for line in body.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    return None


def test_metrics_show_the_outbox():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        u, cid = escalated_chat(gw, fake, 8230000002)
        # The replies the fake got are recorded sent a moment later: until
        # then a sample of /metrics counts them queued and due.
        wait_until(lambda: psql1(gw.db, "SELECT count(*) FROM messages WHERE conversation_id = "
                                        "%s AND delivery_status = 'queued'" % lit(cid)) == "0",
                   timeout=15, what="the chat's replies recorded sent")
        # One row waiting for a retry in an hour, queued two minutes ago,
        # and one the platform refused for good.
        psql(gw.db, "INSERT INTO messages (conversation_id, session_id, user_id, content, role, "
                    "direction, platform, metadata, delivery_status, next_attempt_at, "
                    "created_at) SELECT id, session_id, user_id, 'later', 'operator', "
                    "'outbound', platform, '{}', 'queued', now() + interval '1 hour', "
                    "now() - interval '2 minutes' FROM conversations WHERE id = %s" % lit(cid))
        psql(gw.db, "UPDATE messages SET delivery_status = 'failed', failed_at = now(), "
                    "failed_reason = 'test' WHERE id = (SELECT id FROM messages WHERE "
                    "conversation_id = %s AND role = 'assistant' LIMIT 1)" % lit(cid))

        def figures():
            body = gw.get("/metrics").body.decode()
            # Sampled every few seconds: wait for a sample after both rows.
            return (_gauge(body, "ef_outbox_queued") == 1 and
                    _gauge(body, "ef_outbox_failed") == 1 and body)
        body = wait_until(figures, timeout=15, what="outbox gauges in /metrics")
        for name in ("ef_outbox_queued", "ef_outbox_sending", "ef_outbox_failed",
                     "ef_outbox_oldest_queued_age_seconds"):
            if "# TYPE %s gauge" % name not in body:
                fail("/metrics lacks %s" % name)
        assert_eq((_gauge(body, "ef_outbox_sending"), _gauge(body, "ef_outbox_failed")), (0, 1),
                  "sending (due) and failed")
        age = _gauge(body, "ef_outbox_oldest_queued_age_seconds")
        if not 115 <= age <= 200:
            fail("oldest queued age %r, expected about 120 s" % age)


def _browser():
    """16-console-browser's harness (its module) and (chromium, node), or
    None when the browser tools are missing (said on stderr)."""
    spec = importlib.util.spec_from_file_location(
        "console_browser", Path(__file__).resolve().parent / "16-console-browser.py")
    cb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cb)
    tools = cb._tools()
    return (cb, tools) if tools else None


def _run_console(cb, env):
    r = subprocess.run([env["NODE"], str(cb.BROWSER_DIR / "console.test.mjs")], env=env,
                       capture_output=True, text=True, timeout=240)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        fail("console.test.mjs failed (screenshot in tests/e2e/.logs/):\n%s" %
             r.stderr.strip()[-2000:])


def test_console_reply_window_in_chromium():
    """The console on a WhatsApp conversation past the 24-hour window: the
    banner, the closed reply box, the template sent from its button."""
    got = _browser()
    if not got:
        return
    cb, (chromium, node) = got
    graph = fake_graph()
    with wa_gateway(graph, bot=DEMO_BOT, template="reengage:ru") as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        _say(gw, ANNA, "позовите оператора")
        cid = wait_until(lambda: psql1(gw.db, "SELECT id FROM conversations WHERE status = "
                                              "'escalated'"), timeout=15, what="escalated")
        graph.wait_for(lambda: len(graph.messages(to=ANNA)) >= 1, timeout=15, what="bot reply")
        psql(gw.db, "UPDATE conversations SET last_inbound_at = now() - interval '25 hours' "
                    "WHERE id = %s" % lit(cid))
        n = len(graph.messages(to=ANNA))
        cb.SHOTS.mkdir(exist_ok=True)
        _run_console(cb, dict(os.environ, EF_URL=gw.base, EF_EMAIL="olga@shop.example",
                              EF_PASSWORD=cb.PASSWORD, EF_CID=cid, EF_REPLY="-",
                              EF_WINDOW_TEMPLATE="reengage", EF_PREFIX="23w",
                              EF_SHOT_DIR=str(cb.SHOTS), CHROMIUM=chromium, NODE=node))
        graph.wait_for(lambda: len(graph.messages(to=ANNA)) > n, timeout=15,
                       what="the template sent")
        b = graph.messages(to=ANNA)[-1].body
        assert_eq((b.get("type"), b["template"]["name"]), ("template", "reengage"),
                  "the console's template button sent the template")


def test_console_notes_quick_replies_and_admin_pages_in_chromium():
    """console.test.mjs with a note, a quick reply and the admin pages
    (the same browser harness as 16-console-browser)."""
    got = _browser()
    if not got:
        return
    cb, (chromium, node) = got
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "root@shop.example", "Админ", role="admin")
        add_operator(gw.db, "olga@shop.example", "Ольга")
        adm = login(gw, "root@shop.example")["access_token"]
        expect(call(gw, "POST", "/quick-replies",
                    {"title": "Доставка", "body": "{name}, доставка занимает 2–5 дней."},
                    token=adm), 201, "a quick reply")
        u, cid = escalated_chat(gw, fake, 8230000003, first="Анна")
        _, other = escalated_chat(gw, fake, 8230000004, first="Борис")
        cb.SHOTS.mkdir(exist_ok=True)
        text = "Здравствуйте, я Ольга."
        note = "Клиент просит перезвонить"
        env = dict(os.environ, EF_URL=gw.base, EF_EMAIL="olga@shop.example",
                   EF_PASSWORD=cb.PASSWORD, EF_CID=cid, EF_REPLY=text, EF_NOTE=note,
                   EF_QUICK_TITLE="Доставка", EF_QUICK_BODY="{name}, доставка",
                   EF_ADMIN_EMAIL="root@shop.example", EF_PREFIX="23", EF_LIVE_CID=other,
                   EF_SHOT_DIR=str(cb.SHOTS), CHROMIUM=chromium)
        _run_console(cb, dict(env, NODE=node))
        assert_eq(psql1(gw.db, "SELECT body FROM conversation_notes WHERE conversation_id = "
                               "'%s'" % cid), note, "the note stored")
        time.sleep(0.5)
        sent = [s.params.get("text") for s in sends(fake, u["id"])]
        if note in sent:
            fail("the note was sent to the customer: %r" % sent)
        assert_eq(psql1(gw.db, "SELECT count(*) FROM quick_replies WHERE title = 'Спасибо'"), "1",
                  "the admin added a quick reply in the console")
