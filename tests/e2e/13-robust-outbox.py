"""13-robust-outbox: the outbox never loops on a poison reply, never sends a
reply late, and two gateways on one database send every reply exactly once.

- A chat the Bot API refuses (400, a long Cyrillic description cut by the
  adapter) and replies whose outcome cannot be recorded (the database
  refuses the "sent" update with a data error: a trigger added by the test
  stands for any such error) fail with their reasons, each attempted once;
  the later replies of other chats and of the same chat go out.
- With the Bot API down longer than EF_REPLY_TTL_S, the waiting reply fails
  as expired and is never sent when the API comes back.
- Two `easyflow serve` on one database and one fake Bot API, messages of the
  same chats posted to both alternately, then the sending gateway stopped
  mid-stream: every reply delivered exactly once, in order per chat.
"""

import time

from eftest import assert_eq, fail, post_ok, psql, psql1, tg_message, tg_user
from reply_helpers import LimitedTelegram, demo_gateway, replies, sends, texts, wait_texts

import eftest

GREETING = "Здравствуйте! 👋"
ASK_ORDER = "номер заказа"
LONG_REFUSAL = "Bad Request: " + "сообщение не может быть доставлено получателю, " * 12


class ScriptedTelegram(LimitedTelegram):
    """refuse_forever[chat] = description: every sendMessage to chat gets 400.
    refuse_once[chat] = [description, ...]: the next sends get 400, one each.
    down: every sendMessage gets 502 (the API is unreachable)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.refuse_forever = {}
        self.refuse_once = {}
        self.down = False

    def _m_sendmessage(self, params, bot):
        chat_key = str(params.get("chat_id"))
        with self.cond:
            if self.down:
                return self._error(502, "Bad Gateway")
            if chat_key in self.refuse_forever:
                return self._error(400, self.refuse_forever[chat_key])
            q = self.refuse_once.get(chat_key)
            if q:
                return self._error(400, q.pop(0))
        return super()._m_sendmessage(params, bot)


def scripted_telegram(**kw):
    return eftest.closed_at_end(ScriptedTelegram(**kw))


# Marking a reply of one chat sent fails with a data error (SQLSTATE 22001),
# as a value too long for its column would.
POISON_TRIGGER = """
CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.delivery_status = 'sent' AND EXISTS (SELECT 1 FROM conversations c
            WHERE c.id = NEW.conversation_id AND c.chat_id = '%d') THEN
        RAISE EXCEPTION 'value too long for type character varying(255)'
            USING ERRCODE = '22001';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER test_poison BEFORE UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION test_poison();
"""


def _rows(db, chat_id):
    return psql(db, "SELECT m.delivery_status, m.failed_reason, m.content FROM messages m "
                    "JOIN conversations c ON c.id = m.conversation_id WHERE c.chat_id = %s "
                    "AND m.role = 'assistant' ORDER BY m.created_at" % eftest.lit(str(chat_id)))


def _wait_settled(gw, timeout=30.0):
    """Waits until no reply is queued any more."""
    eftest.wait_until(lambda: psql1(gw.db, "SELECT count(*) FROM messages WHERE "
                                           "delivery_status = 'queued'") == "0",
                      timeout=timeout, what="every reply sent or failed")


def _attempts(fake, chat_id):
    return [r for r in fake.calls("sendMessage") if str(r.params.get("chat_id")) == str(chat_id)]


def test_poison_replies_fail_with_their_reason_and_the_rest_go_out():
    fake = scripted_telegram()
    refused = tg_user(uid=8130000001, first="Анна", last=None, username=None, lang="ru")
    business = tg_user(uid=8130000002, first="Борис", last=None, username=None, lang="ru")
    once = tg_user(uid=8130000003, first="Вера", last=None, username=None, lang="ru")
    fine = tg_user(uid=8130000004, first="Глеб", last=None, username=None, lang="ru")
    fake.refuse_forever[str(refused["id"])] = LONG_REFUSAL
    fake.refuse_once[str(once["id"])] = ["Bad Request: message text is empty"]
    with demo_gateway(fake) as gw:
        psql(gw.db, POISON_TRIGGER % business["id"])
        for k, text in enumerate(["Привет", "где мой заказ"]):
            post_ok(gw, tg_message(k + 1, text, user=refused))
            post_ok(gw, tg_message(k + 1, text, user=business))
            post_ok(gw, tg_message(k + 1, text, user=once))
            post_ok(gw, tg_message(k + 1, text, user=fine))
        got = wait_texts(fake, fine["id"], 2)
        if GREETING not in got[0] or ASK_ORDER not in got[1]:
            fail("the healthy chat's replies: %r" % got)
        got = wait_texts(fake, once["id"], 1)
        if ASK_ORDER not in got[0]:
            fail("after its refused first reply, the chat's next reply: %r" % got)
        _wait_settled(gw)
        time.sleep(1.5)  # a looping row would be attempted again meanwhile

        # Refused forever: each reply attempted once, failed with the reason
        # (cut to valid UTF-8), the chat's later reply attempted too.
        rows = _rows(gw.db, refused["id"])
        assert_eq([r[0] for r in rows], ["failed", "failed"], "refused chat's statuses")
        for r in rows:
            if not r[1] or "Bad Request: сообщение не может" not in r[1] or "?" in r[1]:
                fail("failed_reason of a refused reply: %r" % r[1])
        assert_eq(len(_attempts(fake, refused["id"])), 2, "sends to the refused chat")

        # Not recordable: delivered once each, failed with the database's reason.
        rows = _rows(gw.db, business["id"])
        assert_eq([r[0] for r in rows], ["failed", "failed"], "unrecordable chat's statuses")
        for r in rows:
            if "not recordable" not in (r[1] or "") or "22001" not in r[1]:
                fail("failed_reason of an unrecordable reply: %r" % r[1])
        assert_eq(len(_attempts(fake, business["id"])), 2,
                  "sends of the unrecordable replies (once each, never looped)")

        # Refused once: that reply failed, the next one was sent.
        rows = _rows(gw.db, once["id"])
        assert_eq([r[0] for r in rows], ["failed", "sent"], "statuses after one refusal")
        assert_eq(rows[0][1], "400 Bad Request: message text is empty", "its failed_reason")
        rows = _rows(gw.db, fine["id"])
        assert_eq([r[0] for r in rows], ["sent", "sent"], "the healthy chat's statuses")
        if gw.log_text().count("outcome refused by the database") != 2:
            fail("expected two unrecordable outcomes in the log:\n%s" % gw.log_tail())


def test_reply_not_sent_within_the_ttl_expires():
    fake = scripted_telegram()
    u = tg_user(uid=8130000011, first="Дина", last=None, username=None, lang="ru")
    with demo_gateway(fake, env={"EF_REPLY_TTL_S": "3"}) as gw:
        fake.down = True
        post_ok(gw, tg_message(1, "Привет", user=u))
        fake.wait_for(lambda: len(_attempts(fake, u["id"])) >= 2, timeout=15,
                      what="attempts while the Bot API is down")
        time.sleep(4.0)  # down longer than the TTL
        fake.down = False
        eftest.wait_until(lambda: _rows(gw.db, u["id"])[0][0] == "failed", timeout=90,
                          what="the late reply failed")
        rows = _rows(gw.db, u["id"])
        if not rows[0][1].startswith("expired"):
            fail("failed_reason of the late reply: %r" % rows[0][1])
        # Back up: a new reply goes out, the expired one never does.
        post_ok(gw, tg_message(2, "где мой заказ", user=u))
        got = wait_texts(fake, u["id"], 1)
        if len(got) != 1 or ASK_ORDER not in got[0]:
            fail("after the outage the chat received %r (the expired greeting must not go)"
                 % got)
        time.sleep(1.0)
        assert_eq(len(texts(fake, u["id"])), 1, "replies delivered")


def _expect(fake, u, want):
    got = texts(fake, u["id"])
    if len(got) != len(want):
        fail("chat %s: expected %d replies exactly once, got %d: %r" %
             (u["id"], len(want), len(got), got))
    for t, w in zip(got, want):
        if w not in t:
            fail("chat %s: replies out of order or wrong: %r" % (u["id"], got))


def test_two_gateways_send_each_reply_once_in_order():
    fake = scripted_telegram()
    users = [tg_user(uid=8130000100 + i, first="Ю%d" % i, last=None, username=None, lang="ru")
             for i in range(6)]
    first = ["Привет", "где мой заказ", "A-4242"]
    first_want = [GREETING, ASK_ORDER, "Заказ A-4242"]
    a = demo_gateway(fake, name="gw-a")
    with a, demo_gateway(fake, db=a.db, redis_url=a.redis_url, name="gw-b") as b:
        gws = [a, b]
        # Each chat's messages alternate between the gateways.
        for k, text in enumerate(first):
            for i, u in enumerate(users):
                post_ok(gws[(i + k) % 2], tg_message(k + 1, text, user=u))
        for u in users:
            wait_texts(fake, u["id"], 3, timeout=30)
        time.sleep(1.5)
        for u in users:
            _expect(fake, u, first_want)
        leaders = [g for g in gws if "sending queued replies" in g.log_text()]
        assert_eq(len(leaders), 1, "gateways that sent")

        # The sender stops mid-stream; the other takes over from the rows
        # still queued, without repeating any.
        leader = leaders[0]
        other = b if leader is a else a
        second = ["спасибо", "пока"]
        for k, text in enumerate(second):
            for u in users:
                post_ok(other, tg_message(10 + k, text, user=u))
        fake.wait_for(lambda: len(sends(fake)) >= 18 + 2, timeout=20, what="the next replies")
        leader.stop()
        _wait_settled(other, timeout=40)
        time.sleep(1.5)
        for u in users:
            got = texts(fake, u["id"])
            if len(got) != 5 or len(set(got[3:])) != 2:
                fail("chat %s after the takeover: expected 5 replies once each, got %r" %
                     (u["id"], got))
        rows = replies(other.db)
        assert_eq(len(rows), 30, "reply rows")
        assert_eq(sorted(set(r["delivery_status"] for r in rows)), ["sent"], "statuses")
        if "sending queued replies" not in other.log_text():
            fail("the standby never took over:\n%s" % other.log_tail())
