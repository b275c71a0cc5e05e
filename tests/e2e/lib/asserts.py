"""lib/asserts.py -- checks a test makes: assertions, and the queries of
what the store holds that tests assert on.

  assert_eq / assert_status / assert_contains
  post_ok(gw, update)         a Telegram update posted and answered 200
  message_rows / message_by_pmid / content_bytes / count / conversations
  outbound_rows(url, chat_id, platform)   the bot's and operators' sends
  nothing_stored(url)         no message, customer or conversation
"""

import json

from .stack import Response, fail, lit, psql, psql1

MSG_COLS = ("id, conversation_id, session_id, user_id, content, role, direction, platform, "
            "platform_message_id, metadata, created_at")


def message_rows(url, where="true"):
    """Inbound Telegram rows as dicts (metadata parsed)."""
    rows = psql(url, "SELECT %s FROM messages WHERE platform = 'telegram' AND (%s) "
                     "ORDER BY created_at, platform_message_id" % (MSG_COLS, where))
    out = []
    keys = [k.strip() for k in MSG_COLS.split(",")]
    for r in rows:
        d = dict(zip(keys, r))
        d["metadata"] = json.loads(d["metadata"]) if d["metadata"] else None
        out.append(d)
    return out


def message_by_pmid(url, pmid):
    rows = message_rows(url, "platform_message_id = %s AND direction = 'inbound'" % lit(pmid))
    if len(rows) != 1:
        fail("expected exactly one inbound row with platform_message_id %r, found %d" %
             (pmid, len(rows)))
    return rows[0]


def content_bytes(url, pmid):
    """The stored content's exact bytes (hex through PostgreSQL, so no client
    re-encoding can hide a difference)."""
    h = psql1(url, "SELECT encode(convert_to(content, 'UTF8'), 'hex') FROM messages WHERE "
                   "platform = 'telegram' AND direction = 'inbound' AND platform_message_id = %s"
                   % lit(pmid))
    if h is None:
        fail("no inbound row %r" % pmid)
    return bytes.fromhex(h)


def count(url, sql_from_where):
    return int(psql1(url, "SELECT count(*) FROM " + sql_from_where))


def conversations(url, where="true"):
    rows = psql(url, "SELECT id, chat_id, status, session_id, messages_count, undeliverable, "
                     "user_id, context_data, updated_at, current_state FROM conversations "
                     "WHERE platform = 'telegram' AND (%s) ORDER BY created_at" % where)
    keys = ["id", "chat_id", "status", "session_id", "messages_count", "undeliverable",
            "user_id", "context_data", "updated_at", "current_state"]
    out = []
    for r in rows:
        d = dict(zip(keys, r))
        d["messages_count"] = int(d["messages_count"]) if d["messages_count"] is not None else None
        d["undeliverable"] = d["undeliverable"] == "t"
        d["context_data"] = json.loads(d["context_data"]) if d["context_data"] else None
        out.append(d)
    return out


def assert_eq(actual, expected, what=""):
    if actual != expected:
        fail("%s: expected %r, got %r" % (what or "value", expected, actual))


def assert_status(resp, expected, what=""):
    st = resp.status if isinstance(resp, Response) else resp
    ok = st in expected if isinstance(expected, (tuple, list, set)) else st == expected
    if not ok:
        body = resp.body[:300] if isinstance(resp, Response) else b""
        fail("%s: expected HTTP %s, got %s %r" % (what or "status", expected, st, body))


def assert_contains(text, *parts, what="reply"):
    """Every one of parts occurs in text."""
    for p in parts:
        if p not in (text or ""):
            fail("%s: expected %r in %r" % (what, p, text))


def post_ok(gw, update, what="update"):
    """Posts a Telegram update to the gateway's webhook; it must answer 200."""
    r = gw.post_update(update)
    assert_status(r, 200, what)
    return r


def nothing_stored(url, what="bad input"):
    """No message, no customer and no conversation in the database."""
    n = (count(url, "messages"), count(url, "users WHERE role = 'customer'"),
         count(url, "conversations"))
    assert_eq(n, (0, 0, 0), "%s: (messages, customers, conversations)" % what)


def outbound_rows(url, chat_id=None, platform="telegram"):
    """Outbound rows (oldest first) as dicts, metadata parsed."""
    where = "m.direction = 'outbound' AND m.platform = %s" % lit(platform)
    if chat_id is not None:
        where += " AND c.chat_id = %s" % lit(str(chat_id))
    rows = psql(url, "SELECT m.id, m.role, m.content, m.delivery_status, m.platform_message_id, "
                     "m.retry_count, m.failed_reason, m.metadata, c.chat_id, m.sent_at "
                     "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                     "WHERE %s ORDER BY m.created_at, m.id" % where)
    keys = ["id", "role", "content", "delivery_status", "platform_message_id", "retry_count",
            "failed_reason", "metadata", "chat_id", "sent_at"]
    out = []
    for r in rows:
        d = dict(zip(keys, r))
        d["metadata"] = json.loads(d["metadata"]) if d["metadata"] else {}
        d["retry_count"] = int(d["retry_count"])
        out.append(d)
    return out
