"""31-outbox-fairness: one bot's backlog does not hold back another bot's
replies. Bot A has 3,000 replies queued (a broadcast, or an hour of traffic
behind Telegram's 30 messages/s per bot): they leave at 30/s for ~100 s. A
customer who writes to bot B meanwhile is answered within seconds, not after
A's backlog -- the dispatcher keeps at most BOT_MEM_MAX of one bot's rows in
memory and its fetch skips a bot whose share is full. A's backlog still
leaves at its limit, in order per chat."""

import time

from eftest import assert_eq, assert_status, fail, fresh_db, psql, tg_message, tg_user
from integration_helpers import (SECRET_B, TOKEN_A, TOKEN_B, SECRET_A, add_telegram, bot_file,
                                 integrations_gateway, post_to, two_bot_fake, wait_reply)

BACKLOG = 3000


def _queue_backlog(db, iid, n):
    """n conversations of bot `iid`, each with one reply queued (as the
    ingest path leaves them), oldest first."""
    psql(db, """
        WITH u AS (
            INSERT INTO users (platform, platform_user_id, name, role)
            SELECT 'telegram', (7300000000 + g)::text, 'Получатель ' || g, 'customer'
              FROM generate_series(1, %(n)d) g
            RETURNING id, platform_user_id
        ), c AS (
            INSERT INTO conversations (session_id, user_id, integration_id, platform, chat_id,
                                       chat_type, last_inbound_at)
            SELECT gen_random_uuid()::text, u.id, '%(iid)s', 'telegram', u.platform_user_id,
                   'private', now()
              FROM u
            RETURNING id, session_id, user_id, chat_id
        )
        INSERT INTO messages (conversation_id, session_id, user_id, integration_id, content, role,
                              direction, platform, metadata, delivery_status, next_attempt_at,
                              created_at)
        SELECT c.id, c.session_id, c.user_id, '%(iid)s', 'Рассылка для ' || c.chat_id,
               'assistant', 'outbound', 'telegram', '{}', 'queued', now(),
               now() - interval '1 minute' + (c.chat_id::bigint - 7300000000) * interval '1 ms'
          FROM c
    """ % {"n": n, "iid": iid})


def _sent(tg, token):
    return [r for r in tg.calls("sendMessage", token=token) if r.status == 200]


def test_a_flooded_bot_does_not_delay_another_bots_replies():
    tg = two_bot_fake()
    db = fresh_db()
    a = add_telegram(db, "bot-a", TOKEN_A, SECRET_A, bot=bot_file("бот А"))
    b = add_telegram(db, "bot-b", TOKEN_B, SECRET_B, bot=bot_file("бот Б"))
    _queue_backlog(db, a, BACKLOG)
    user = tg_user(uid=8410000001)
    with integrations_gateway(tg, db=db) as gw:
        tg.wait_for(lambda: len(_sent(tg, TOKEN_A)) >= 60, timeout=30,
                    what="bot A's backlog leaving")
        t0 = time.monotonic()
        assert_status(post_to(gw, b, tg_message(1, "привет", user=user), SECRET_B), 200, "bot B")
        texts = wait_reply(tg, TOKEN_B, user["id"], timeout=10.0)
        took = time.monotonic() - t0
        if not any("бот Б" in (t or "") for t in texts):
            fail("bot B's reply: %r" % texts)
        left = int(psql(db, "SELECT count(*) FROM messages WHERE integration_id = '%s' AND "
                            "delivery_status = 'queued'" % a)[0][0])
        if left < BACKLOG / 2:
            fail("bot A's backlog was mostly sent (%d left) before bot B's reply: the test "
                 "proves nothing" % left)
        # A goes on at its limit meanwhile: never more than 30 in a second.
        times = sorted(r.time for r in _sent(tg, TOKEN_A))
        worst = max(sum(1 for t in times if s <= t < s + 1.0) for s in times)
        if worst > 30:
            fail("bot A sent %d messages within one second" % worst)
        print("bot B answered in %.2f s with %d of bot A's %d replies still queued; bot A's "
              "busiest second: %d" % (took, left, BACKLOG, worst))
    # Every one of A's sends went to its own chat, once.
    chats = [str(r.params.get("chat_id")) for r in _sent(tg, TOKEN_A)]
    assert_eq(len(chats), len(set(chats)), "bot A's sends, one per chat")
