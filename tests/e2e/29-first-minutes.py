"""29-first-minutes: what a newcomer meets in the first ten minutes, each
item of issue 9's list as they would try it. /healthz shows the outbox as
/metrics does (queued, sending, failed, oldest queued age) without changing
readiness; a web chat visitor over EF_WEBCHAT_RATE_PER_MIN is refused with a
429 nack and one log line while another visitor goes on, and a text over the
limit is refused for good; a repeated update is answered and logged as a
duplicate; EF_LOG_REPLIES logs each queued reply (chat, first characters);
a mysql:// database URL is refused by its scheme (migrate and serve); a busy
port names EF_LISTEN without libwebsockets' raw lines; a bot without fsm:
is warned about; /webhook/whatsapp without WhatsApp says which variables are
missing; docs/fsm.md's complete example loads as written and plays its
conversation table; README and docs cite only files that exist; the state
folder of a clone under a private folder works (PostgreSQL's files go where
its user can reach them, and the start says where), and `make services-stop`
honours EF_STATE_DIR and EF_TEST_STATE."""

import fcntl
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import eftest
from eftest import (REPO, Gateway, assert_eq, assert_status, fail, free_port, post_ok,
                    register, run_bin, tg_message, tg_user, wait_until)
from lib.ws import WS
from reply_helpers import demo_gateway, limited_telegram, texts

CHAT = ("/ws/chat", "ef.chat.v1")
DEMO_BOT = str(REPO / "bots" / "demo.yaml")


class TempDir:
    def __init__(self, prefix="ef-29-", mode=None):
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        if mode is not None:
            os.chmod(self.path, mode)
        register(self)

    def cleanup(self, ok):
        shutil.rmtree(self.path, ignore_errors=True)


# ---- /healthz shows the outbox ---------------------------------------------------


def _outbox(gw, path="/healthz"):
    r = gw.get(path)
    return r.status, r.json()


def test_healthz_shows_the_outbox_like_metrics():
    # No bot token: the demo bot's replies stay queued.
    with Gateway(env={"EF_BOT_FILE": DEMO_BOT}) as gw:
        post_ok(gw, tg_message(1, "Привет"))
        post_ok(gw, tg_message(2, "где мой заказ?"))

        def queued():
            st, body = _outbox(gw)
            ob = body.get("outbox")
            return body if st == 200 and ob and ob.get("queued", 0) >= 2 else None

        body = wait_until(queued, timeout=20, what="/healthz outbox.queued >= 2")
        ob = body["outbox"]
        assert_eq(sorted(ob), ["failed", "oldest_queued_age_s", "queued", "sending"],
                  "outbox keys in /healthz")
        assert_eq((body["status"], body["postgres"], body["redis"]), ("ok", "ok", "ok"),
                  "readiness unchanged by a queued outbox")
        # /readyz is the same answer; /metrics has the same figures.
        st, ready = _outbox(gw, "/readyz")
        assert_eq(st, 200, "/readyz")
        if "outbox" not in ready:
            fail("/readyz without the outbox: %r" % ready)
        m = gw.metrics()
        for key, name in (("queued", "ef_outbox_queued"), ("failed", "ef_outbox_failed")):
            if (name, ()) not in m:
                fail("/metrics lacks %s" % name)
        if m[("ef_outbox_queued", ())] < 2:
            fail("/metrics ef_outbox_queued %r, /healthz %r" % (m[("ef_outbox_queued", ())], ob))


def test_healthz_outbox_with_redis_down_is_still_degraded_200():
    with Gateway(redis_url="redis://127.0.0.1:%d/0" % free_port()) as gw:
        def degraded():
            st, body = _outbox(gw)
            return body if st == 200 and body.get("redis") == "down" and \
                isinstance(body.get("outbox"), dict) else None

        body = wait_until(degraded, timeout=15, what="/healthz 200 degraded with the outbox")
        assert_eq(body["status"], "degraded", "status with Redis down")


# ---- the web chat: a rate per visitor, a size cap ------------------------------------


def _hello(gw):
    ws = WS(gw.port, *CHAT)
    ws.send_json({"type": "hello"})
    w = ws.wait_for(lambda o: o.get("type") in ("welcome", "error"), what="welcome")
    if w["type"] != "welcome":
        fail("hello refused: %r" % w)
    return ws, w["visitor"]


def _answer(ws, cid):
    return ws.wait_for(lambda o: o.get("type") in ("ack", "nack") and o.get("id") == cid,
                       what="the answer to %s" % cid)


def test_webchat_rate_per_visitor():
    fake = limited_telegram()
    with demo_gateway(fake, env={"EF_WEBCHAT_RATE_PER_MIN": "3"}) as gw:
        a, va = _hello(gw)
        b, vb = _hello(gw)
        answers = []
        for i in range(5):
            a.send_json({"type": "message", "id": "a-%d" % i, "text": "сообщение %d" % i})
        for i in range(5):
            answers.append(_answer(a, "a-%d" % i))
        assert_eq([x["type"] for x in answers], ["ack", "ack", "ack", "nack", "nack"],
                  "visitor A's 5 messages at 3 a minute")
        n = answers[3]
        assert_eq((n.get("code"), n.get("retry")), (429, True), "the refusal: %r" % n)
        if not (isinstance(n.get("retry_after_s"), int) and 1 <= n["retry_after_s"] <= 20):
            fail("retry_after_s %r (a token every 20 s)" % n.get("retry_after_s"))
        if "too many messages" not in n.get("error", ""):
            fail("the refusal does not say why: %r" % n)
        # Refused messages are not stored.
        chat = va.split(".")[1]
        assert_eq(eftest.psql1(gw.db, "SELECT count(*) FROM messages WHERE platform = 'webchat' "
                                      "AND role = 'user' AND platform_message_id LIKE '%s:%%'" % chat),
                  "3",
                  "visitor A's stored messages")
        # Another visitor is not affected.
        b.send_json({"type": "message", "id": "b-1", "text": "Привет"})
        assert_eq(_answer(b, "b-1")["type"], "ack", "visitor B while A is limited")
        # A's sockets share its bucket: a second socket of A is refused too.
        a2 = WS(gw.port, *CHAT)
        a2.send_json({"type": "hello", "visitor": va})
        a2.wait_for(lambda o: o.get("type") == "welcome", what="A's second socket")
        a2.send_json({"type": "message", "id": "a-9", "text": "ещё"})
        assert_eq(_answer(a2, "a-9").get("code"), 429, "A's second socket")
        # One log line for A's burst.
        lines = [ln for ln in gw.log_text().splitlines() if "EF_WEBCHAT_RATE_PER_MIN" in ln]
        assert_eq(len(lines), 1, "log lines for A's refusals: %r" % lines)
        if va in lines[0]:
            fail("the log names the signed visitor id: %r" % lines[0])
        # A size cap: a text over 4096 bytes is refused for good (and costs
        # B a token, not a crash).
        b.send_json({"type": "message", "id": "b-2", "text": "я" * 2100})
        big = _answer(b, "b-2")
        assert_eq((big["type"], big.get("retry")), ("nack", False), "a 4200-byte text: %r" % big)
        for ws in (a, a2, b):
            ws.close()


def test_webchat_rate_zero_is_unlimited():
    fake = limited_telegram()
    with demo_gateway(fake, env={"EF_WEBCHAT_RATE_PER_MIN": "0"}) as gw:
        a, _ = _hello(gw)
        # Over the default 30 a minute, under the 32 waiting for their commit.
        for i in range(31):
            a.send_json({"type": "message", "id": "u-%d" % i, "text": "сообщение %d" % i})
        got = [_answer(a, "u-%d" % i) for i in range(31)]
        assert_eq([x for x in got if x["type"] != "ack"], [], "31 messages without a limit")
        a.close()


# ---- duplicates, the reply log ------------------------------------------------------


def test_repeated_update_is_said_to_be_a_duplicate():
    with Gateway(env={"EF_BOT_FILE": DEMO_BOT}) as gw:
        u = tg_message(1, "Привет")
        r = post_ok(gw, u, "first delivery")
        assert_eq(r.json(), {"ok": True}, "first delivery's answer")
        r = post_ok(gw, u, "redelivery")
        assert_eq(r.json(), {"ok": True, "duplicate": True}, "redelivery's answer")
        gw.wait_log(r"INFO http status=200 update=%d .*duplicate" % u["update_id"])
        assert_eq(eftest.psql1(gw.db, "SELECT count(*) FROM messages WHERE role = 'user'"), "1",
                  "stored once")


def test_log_replies_names_chat_and_first_characters():
    with Gateway(env={"EF_BOT_FILE": DEMO_BOT, "EF_LOG_REPLIES": "1"}) as gw:
        user = tg_user(uid=4242)
        post_ok(gw, tg_message(1, "Привет", user=user))
        line = gw.wait_log(r"INFO pipe reply queued telegram chat=4242 intent=greeting "
                           r"text=\"[^\"]+\"")
        if "Здравствуйте" not in line:
            fail("the reply's first characters are not in %r" % line)
    with Gateway(env={"EF_BOT_FILE": DEMO_BOT}) as gw:
        post_ok(gw, tg_message(1, "Привет"))
        wait_until(lambda: eftest.psql1(gw.db, "SELECT count(*) FROM messages WHERE role = "
                                               "'assistant'") != "0", what="the reply queued")
        if "reply queued" in gw.log_text():
            fail("EF_LOG_REPLIES is off by default, yet a reply's text was logged")


# ---- start-up errors -----------------------------------------------------------------


def test_database_url_scheme_is_checked():
    env = {"EF_DATABASE_URL": "mysql://root@127.0.0.1/shop", "EF_SQL_DIR": str(REPO / "sql")}
    for args in (["migrate"], ["serve"], ["operator", "list"]):
        code, out = run_bin(args, env=env, timeout=30)
        if code == 0:
            fail("%s accepted a mysql:// URL:\n%s" % (" ".join(args), out))
        if "postgresql://" not in out or "socket" in out:
            fail("%s: no clear word on the URL's scheme:\n%s" % (" ".join(args), out))


def test_busy_port_names_ef_listen():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        code, out = run_bin(["serve"], env={"EF_LISTEN": "127.0.0.1:%d" % port,
                                            "EF_DATABASE_URL": eftest.fresh_db()}, timeout=30)
    finally:
        s.close()
    if code == 0:
        fail("serve started on a busy port:\n" + out)
    for want in ("EF_LISTEN", "in use", "127.0.0.1:%d" % port):
        if want not in out:
            fail("busy port: %r missing in:\n%s" % (want, out))
    if "lws:" in out or "binding fd" in out:
        fail("libwebsockets' raw lines shown:\n" + out)
    if "listening on" in out:
        fail("a start announced on a busy port:\n" + out)


def test_bot_without_fsm_is_warned_about():
    tmp = TempDir()
    bot = tmp.path / "nofsm.yaml"
    bot.write_text("bot: {name: understand-only}\nintents:\n  greeting:\n"
                   "    patterns: ['\\bпривет']\n    examples: [привет]\n")
    with Gateway(env={"EF_BOT_FILE": str(bot)}) as gw:
        gw.wait_log(r"WARN nlp bot \"understand-only\" has no fsm: section")


def test_whatsapp_webhook_without_whatsapp_says_what_is_missing():
    with Gateway() as gw:
        r = gw.post("/webhook/whatsapp", {"object": "whatsapp_business_account", "entry": []})
        assert_status(r, 404, "POST /webhook/whatsapp without WhatsApp")
        err = r.json().get("error", "")
        for want in ("WHATSAPP_APP_SECRET", "WHATSAPP_PHONE_NUMBER_ID", "integration add"):
            if want not in err:
                fail("the answer does not name %r: %r" % (want, err))
        r = gw.get("/webhook/whatsapp?hub.mode=subscribe&hub.verify_token=x&hub.challenge=7")
        assert_status(r, 404, "GET /webhook/whatsapp without WhatsApp")
        if "WHATSAPP_VERIFY_TOKEN" not in r.json().get("error", ""):
            fail("the GET check does not name WHATSAPP_VERIFY_TOKEN: %r" % r.body)
        gw.wait_log(r"status=404 path=/webhook/whatsapp reason=\"whatsapp is not configured")


# ---- the docs ----------------------------------------------------------------------


def _fsm_example():
    text = (REPO / "docs" / "fsm.md").read_text()
    sec = text[text.index("## A complete example"):]
    m = re.search(r"```yaml\n(.*?)```", sec, re.S)
    if not m:
        fail("docs/fsm.md: no yaml block under 'A complete example'")
    return m.group(1)


def _callback(uid, data, message_id):
    user = tg_user(uid=uid)
    return {"update_id": eftest.next_update_id(),
            "callback_query": {"id": "cb%d" % message_id, "from": user, "chat_instance": "1",
                               "data": data,
                               "message": {"message_id": message_id, "date": 1700000000,
                                           "chat": {"id": uid, "type": "private"},
                                           "text": "Отменить?"}}}


def test_fsm_md_example_loads_and_plays_its_table():
    tmp = TempDir()
    bot = tmp.path / "shop.yaml"
    bot.write_text(_fsm_example())
    code, out = run_bin(["bot", "check", str(bot)])
    assert_eq(code, 0, "easyflow bot check on docs/fsm.md's example:\n" + out)
    fake = limited_telegram()
    uid = 5100000001
    user = tg_user(uid=uid)
    table = [
        ("Привет", "Здравствуйте! Чем могу помочь?"),
        ("где мой заказ?", "Назовите, пожалуйста, номер заказа — например, A-1042."),
        ("спасибо, сейчас", "Не вижу номера заказа. Он выглядит так: A-1042 или "
                            "87654321-0012-1."),
        ("A-1042", "Заказ A-1042 передан в доставку, ожидайте 2–3 дня."),
        ("хочу отменить заказ A-1042", "Отменить заказ A-1042?"),
        (None, "Заявка на отмену A-1042 принята."),  # presses «Да, отменить»
        ("позовите человека", "Соединяю с оператором, он ответит здесь же."),
    ]
    with demo_gateway(fake, env={"EF_BOT_FILE": str(bot)}) as gw:
        for i, (text, want) in enumerate(table, 1):
            before = len(texts(fake, uid))
            if text is None:
                post_ok(gw, _callback(uid, "cancel_yes", 100 + i))
            else:
                post_ok(gw, tg_message(i, text, user=user))
            got = wait_until(lambda: texts(fake, uid)[before:] or None, timeout=15,
                             what="the bot's answer to %r" % text)
            assert_eq(got[0], want, "answer to %r" % (text or "the button"))
        # Escalated: "алло?" gets nothing.
        post_ok(gw, tg_message(20, "алло?", user=user))
        n = len(texts(fake, uid))
        wait_until(lambda: eftest.psql1(gw.db, "SELECT count(*) FROM messages WHERE content = "
                                               "'алло?'") == "1", what="алло? stored")
        time.sleep(1.0)
        assert_eq(len(texts(fake, uid)), n, "replies after the escalation")
        assert_eq(eftest.psql1(gw.db, "SELECT status FROM conversations"), "escalated",
                  "the conversation's status")


PATH_RE = re.compile(r"(?<![\w./-])((?:src|tests|scripts|sql|bots|docs|web|\.ci)/"
                     r"[A-Za-z0-9_./<>*{}-]+)")


def _cited_exists(p):
    p = p.rstrip(".,:;")
    if any(c in p for c in "<>*{}"):
        return True  # a pattern (tests/unit/<layer>/), not a file
    if p in ("tests/e2e/NN-area-case.py",):
        return True  # the naming rule's example
    f = REPO / p
    if f.exists() or Path(str(f) + ".c").exists():  # a bench binary named by its source
        return True
    # A migration or file named by its number prefix: sql/013
    return any(x.name.startswith(f.name + "_") for x in f.parent.glob("*")) \
        if f.parent.is_dir() else False


def test_docs_cite_only_files_in_the_repo():
    missing = []
    for doc in [REPO / "README.md"] + sorted((REPO / "docs").glob("*.md")):
        for n, line in enumerate(doc.read_text().splitlines(), 1):
            for m in PATH_RE.finditer(line):
                if not _cited_exists(m.group(1)):
                    missing.append("%s:%d: %s" % (doc.relative_to(REPO), n, m.group(1)))
            for m in re.finditer(r"\]\((?!https?:)([^)#]+)", line):  # relative links
                if not (doc.parent / m.group(1)).exists():
                    missing.append("%s:%d: link %s" % (doc.relative_to(REPO), n, m.group(1)))
    if missing:
        fail("cited but not in the repo:\n  " + "\n  ".join(missing))


# ---- the state folder ----------------------------------------------------------------


def _services(cmd, state, env_extra=None, services="pg redis"):
    env = dict(os.environ, EF_SERVICES=services)
    env.pop("EF_STATE_DIR", None)
    env.update(env_extra or {})
    args = [str(REPO / "scripts" / "services.sh"), cmd] + ([str(state)] if state else [])
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=180)


class StateServices:
    """Stops what a test started in its own state folder."""

    def __init__(self, state):
        self.state = state
        register(self)

    def cleanup(self, ok):
        _services("stop", self.state)
        home = self.state / "pg.home"
        if home.exists():
            shutil.rmtree(home.read_text().strip(), ignore_errors=True)


def test_state_under_a_private_folder_works_and_says_where():
    if os.geteuid() != 0:
        return  # only root runs PostgreSQL as another user
    tmp = TempDir(mode=0o700)  # like a clone under /root
    state = tmp.path / "state"
    StateServices(state)
    p = _services("start", None, {"EF_STATE_DIR": str(state)})
    assert_eq(p.returncode, 0, "services.sh start under a private folder:\n%s%s" %
              (p.stdout, p.stderr))
    home = (state / "pg.home").read_text().strip()
    if home not in p.stderr or str(state) not in p.stderr:
        fail("the start does not say where PostgreSQL's files went:\n" + p.stderr)
    if "could not change directory" in p.stdout + p.stderr:
        fail("a warning about the private folder:\n" + p.stdout + p.stderr)
    env = _services("env", None, {"EF_STATE_DIR": str(state)})
    url = re.search(r"EF_DATABASE_URL=(\S+)", env.stdout).group(1)
    assert_eq(eftest.psql1(url, "SELECT 1"), "1", "the private state's PostgreSQL answers")
    # `make services-stop` honours EF_STATE_DIR (and leaves the test state
    # alone: EF_TEST_STATE points at an empty folder here).
    empty = TempDir()
    m = subprocess.run(["make", "-s", "--no-print-directory", "services-stop"], cwd=str(REPO),
                       capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, EF_STATE_DIR=str(state),
                                EF_TEST_STATE=str(empty.path / "none")))
    assert_eq(m.returncode, 0, "make services-stop:\n" + m.stdout + m.stderr)
    st = _services("status", None, {"EF_STATE_DIR": str(state)})
    if st.returncode == 0 or "stopped" not in st.stdout:
        fail("still running after make services-stop:\n" + st.stdout)


def test_services_stop_honours_ef_test_state():
    tmp = TempDir()
    state = tmp.path / "test-state"
    StateServices(state)
    p = _services("start", state, services="redis")
    assert_eq(p.returncode, 0, "redis in a test state:\n" + p.stdout + p.stderr)
    empty = TempDir()
    env = dict(os.environ, EF_STATE_DIR=str(empty.path / "dev"), EF_TEST_STATE=str(state),
               EF_SERVICES="redis")
    m = subprocess.run(["make", "-s", "--no-print-directory", "services-stop"], cwd=str(REPO),
                       capture_output=True, text=True, timeout=180, env=env)
    assert_eq(m.returncode, 0, "make services-stop:\n" + m.stdout + m.stderr)
    st = _services("status", state, services="redis")
    if st.returncode == 0:
        fail("Redis of EF_TEST_STATE still running after make services-stop:\n" + st.stdout)
    # While a test run holds the folder, it is left alone.
    p = _services("start", state, services="redis")
    with open(state / ".users", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        m = subprocess.run(["make", "-s", "--no-print-directory", "services-stop"],
                           cwd=str(REPO), capture_output=True, text=True, timeout=180, env=env)
        if "in use by a test run" not in m.stdout:
            fail("make services-stop did not leave a used test state alone:\n" + m.stdout)
    st = _services("status", state, services="redis")
    assert_eq(st.returncode, 0, "Redis of a test state in use still running")


# ---- the acceptance flow over WhatsApp (Telegram: 14-api-conversations) ---------------


def test_whatsapp_escalate_claim_reply_release_close():
    """Issue 9's "done when" over the WhatsApp webhook and the API: a customer
    escalates, an operator claims and replies (delivered to the fake Graph
    API and recorded sent), the bot stays silent, release hands it back (the
    bot answers again), close ends it; every change audited. The same over
    Telegram is 14-api-conversations; every route's 401/403 is 22-api-admin."""
    from api_helpers import add_operator, call, expect, login
    from wa_helpers import contact, fake_graph, inbound, post_wa, text, wa_gateway

    anna = "79161234568"
    graph = fake_graph()

    def say(body):
        r = post_wa(gw, inbound([text(anna, body)], [contact(anna, "Анна")]))
        assert_eq(r.status, 200, "webhook " + body)

    def sent():  # texts, and the body text of interactive (button) messages
        return [r.body.get("text", {}).get("body") or
                r.body.get("interactive", {}).get("body", {}).get("text")
                for r in graph.messages(to=anna)]

    def wait_sent(n, what):
        return wait_until(lambda: sent() if len(sent()) >= n else None, timeout=20, what=what)

    with wa_gateway(graph, bot=DEMO_BOT) as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        tok = login(gw, "olga@shop.example")["access_token"]
        say("Привет")
        wait_sent(1, "the bot's greeting")
        say("позовите оператора")
        wait_sent(2, "the hand-over message")
        cid = eftest.psql1(gw.db, "SELECT id FROM conversations WHERE platform = 'whatsapp'")
        assert_eq(eftest.psql1(gw.db, "SELECT status FROM conversations"), "escalated",
                  "escalated by the bot")
        r = expect(call(gw, "POST", "/conversations/%s/claim" % cid, token=tok), 200, "claim")
        assert_eq(r["conversation"]["assigned_operator"]["name"], "Ольга", "holder")
        expect(call(gw, "POST", "/conversations/%s/messages" % cid,
                    {"text": "Здравствуйте, это Ольга"}, token=tok), 201, "reply")
        got = wait_sent(3, "the operator's reply at the Graph API")
        assert_eq(got[2], "Здравствуйте, это Ольга", "delivered text")
        wait_until(lambda: eftest.psql1(gw.db, "SELECT delivery_status FROM messages WHERE "
                                               "role = 'operator'") == "sent",
                   what="the operator's reply recorded sent")
        say("где мой заказ A-1042")
        time.sleep(2.0)
        assert_eq(len(sent()), 3, "the bot is silent while an operator holds it")
        r = expect(call(gw, "POST", "/conversations/%s/release" % cid, token=tok), 200, "release")
        assert_eq(r["conversation"]["status"], "active", "after release")
        say("Привет")
        got = wait_sent(4, "the bot again after the release")
        if "Здравствуйте" not in got[3]:
            fail("the bot did not answer after the release: %r" % got[3:])
        r = expect(call(gw, "POST", "/conversations/%s/close" % cid, token=tok), 200, "close")
        assert_eq(r["conversation"]["status"], "closed", "closed")
        ev = eftest.psql(gw.db, "SELECT action, from_status, to_status FROM "
                                "conversation_events WHERE conversation_id = '%s' AND "
                                "operator_id IS NOT NULL ORDER BY id" % cid)
        assert_eq(ev, [["claim", "escalated", "escalated"], ["release", "escalated", "active"],
                       ["close", "active", "closed"]], "audit trail")
