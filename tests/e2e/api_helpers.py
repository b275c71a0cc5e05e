"""api_helpers.py -- what the operator API tests (14-api-*) share: accounts
made with `easyflow operator add`, JSON calls to /api/v1 with or without a
Bearer token, and a conversation escalated through the demo bot over the
Telegram webhook."""

import json

import eftest
from eftest import assert_eq, fail, post_ok, psql1, tg_message, tg_user
from reply_helpers import demo_gateway, limited_telegram, wait_texts  # noqa: F401

PASSWORD = "correct horse battery staple"
UUID_RX = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def add_operator(db, email, name="Оператор", password=PASSWORD, role="operator"):
    r = eftest.run_cli(["operator", "add", email, "--name", name, "--role", role],
                       env={"EF_DATABASE_URL": db}, stdin=password + "\n")
    assert_eq(r.code, 0, "operator add %s (%s)" % (email, r.err))


def call(gw, method, path, body=None, token=None, headers=None, raw=None):
    """One /api/v1 call; returns the Response (its .json() for the body)."""
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    if raw is not None:
        h.setdefault("Content-Type", "application/json")
        return gw.request(method, "/api/v1" + path, raw, h)
    return gw.request(method, "/api/v1" + path, body, h)


def expect(resp, status, what):
    """resp has this status and a JSON body; returns the body."""
    if resp.status != status:
        fail("%s: expected HTTP %d, got %d: %r" % (what, status, resp.status, resp.body[:300]))
    try:
        return resp.json()
    except ValueError:
        fail("%s: the body is not JSON: %r" % (what, resp.body[:300]))


def login(gw, email, password=PASSWORD, headers=None):
    """Logs in; returns the token answer."""
    return expect(call(gw, "POST", "/auth/login", {"email": email, "password": password},
                       headers=headers), 200, "login of %s" % email)


def escalated_chat(gw, fake, uid, first="Анна", lang="ru", text="позовите оператора"):
    """A Telegram customer greets the demo bot and asks for a human; returns
    (user, conversation id) once the conversation is escalated."""
    u = tg_user(uid=uid, first=first, last=None, username="u%d" % uid, lang=lang)
    post_ok(gw, tg_message(1, "Привет" if lang == "ru" else "Hello", user=u))
    post_ok(gw, tg_message(2, text, user=u))
    wait_texts(fake, uid, 2)
    cid = conversation_id(gw.db, uid)
    status = psql1(gw.db, "SELECT status FROM conversations WHERE id = '%s'" % cid)
    if status != "escalated":
        fail("chat %d did not escalate (status %r)" % (uid, status))
    return u, cid


def conversation_id(db, chat_id):
    return psql1(db, "SELECT id FROM conversations WHERE chat_id = '%s' AND status <> 'closed' "
                     "ORDER BY created_at DESC LIMIT 1" % chat_id)


def dumps(o):
    return json.dumps(o, ensure_ascii=False)
