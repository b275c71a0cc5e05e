"""12-robust-ingest: the ingest path keeps its promises when Redis lies or
one event cannot be stored (issue 8, robustness).

- PostgreSQL is the truth for a conversation: a Redis session left stale by
  a failed write-back (Redis refusing writes while the conversation
  escalated) never gets an escalated conversation a bot reply, a session
  that claims "active" against PostgreSQL does not either, and handing the
  conversation back in PostgreSQL takes effect on the next message.
- One bad event (an id too long for its column) is refused alone (422 for
  its webhook), kept in dead_letters and counted in /metrics; the events
  committed with it in the same batch are stored and /healthz stays 200.
- In a long-poll batch the bad update is dead-lettered, the good ones are
  stored and the cursor moves past all of them."""

import json
import threading
import time

import eftest
from eftest import (Gateway, PrivateRedis, assert_eq, assert_status, count, fail, lit,
                    next_update_id, poll_env, post_ok, psql, psql1, tg_message, tg_user,
                    wait_offset)
from reply_helpers import (assert_quiet, conversation, demo_gateway, inbound_row,
                           limited_telegram, wait_texts)

LONG_ID = "q" * 300  # callback_query id: platform_message_id "callback:<id>" is VARCHAR(255)


def _session(gw, redis_url, chat_id):
    """The chat's session as Redis holds it (None when absent)."""
    integ = psql1(gw.db, "SELECT integration_id FROM conversations WHERE chat_id = %s "
                         "ORDER BY created_at DESC LIMIT 1" % lit(str(chat_id)))
    sid = eftest.redis(redis_url, "GET", "chat:%s:%s" % (integ, chat_id))
    raw = eftest.redis(redis_url, "GET", "session:%s" % sid) if sid else None
    return json.loads(raw) if raw else None


def _version(gw, chat_id):
    return int(psql1(gw.db, "SELECT version FROM conversations WHERE chat_id = %s AND "
                            "status <> 'closed'" % lit(str(chat_id))))


def _callback(user, qid, data="menu_delivery"):
    return {"update_id": next_update_id(), "callback_query": {
        "id": qid, "from": user, "chat_instance": "-53901172918", "data": data,
        "message": {"message_id": 1, "date": 1700000000,
                    "chat": {"id": user["id"], "type": "private",
                             "first_name": user["first_name"]},
                    "text": "Меню"}}}


def test_stale_redis_session_never_answers_an_escalated_conversation():
    r = PrivateRedis()
    u = tg_user(uid=8120000001, first="Анна", last=None, username=None, lang="ru")
    chat = u["id"]
    fake = limited_telegram()
    with demo_gateway(fake, redis_url=r.url) as gw:
        post_ok(gw, tg_message(1, "Привет", user=u))
        wait_texts(fake, chat, 1)
        eftest.wait_until(lambda: _session(gw, r.url, chat), what="the Redis session")

        # Redis refuses every write while the customer asks for a human.
        assert_eq(eftest.redis(r.url, "CONFIG", "SET", "maxmemory-policy", "noeviction"), "OK")
        assert_eq(eftest.redis(r.url, "CONFIG", "SET", "maxmemory", "1"), "OK")
        try:
            post_ok(gw, tg_message(2, "позовите оператора", user=u))
            got = wait_texts(fake, chat, 2)
            gw.wait_log(r"session write-back failed", timeout=10)
        finally:
            eftest.redis(r.url, "CONFIG", "SET", "maxmemory", "0")
        assert_eq(conversation(gw.db, chat)["status"], "escalated", "status in PostgreSQL")
        if "оператор" not in got[1]:
            fail("the escalation reply: %r" % got[1])
        stale = _session(gw, r.url, chat)
        assert_eq(stale["status"], "active", "Redis kept the stale session")
        if stale["version"] >= _version(gw, chat):
            fail("the stale session's version %r is not behind PostgreSQL's %r" %
                 (stale["version"], _version(gw, chat)))

        # The next message: Redis says active, PostgreSQL escalated.
        post_ok(gw, tg_message(3, "где мой заказ A-1042", user=u))
        assert_quiet(fake, chat, 2, 2.5)
        row = inbound_row(gw.db, "%d:3" % chat)
        assert_eq(row["intent"], "order_status", "the message is still understood")
        assert_eq(conversation(gw.db, chat)["status"], "escalated", "still escalated")
        fresh = _session(gw, r.url, chat)
        assert_eq((fresh["status"], fresh["version"]), ("escalated", _version(gw, chat)),
                  "Redis rewritten from PostgreSQL")

        # A session that claims "active" at PostgreSQL's own version: the
        # commit still refuses the bot's reply, and says why.
        forged = dict(fresh, status="active", state="initial")
        eftest.redis(r.url, "SET", "session:" + fresh["session_id"], json.dumps(forged))
        post_ok(gw, tg_message(4, "Привет", user=u))
        assert_quiet(fake, chat, 2, 2.5)
        decision = inbound_row(gw.db, "%d:4" % chat)["metadata"].get("decision") or {}
        assert_eq(decision.get("skipped"), "conversation escalated", "decision.skipped")
        assert_eq(count(gw.db, "messages WHERE role = 'assistant'"), 2, "bot replies stored")

        # The operator hands the conversation back in PostgreSQL only.
        psql(gw.db, "UPDATE conversations SET status = 'active' WHERE chat_id = %s AND "
                    "status = 'escalated'" % lit(str(chat)))
        assert_eq(_session(gw, r.url, chat)["status"], "escalated", "Redis still escalated")
        post_ok(gw, tg_message(5, "где мой заказ", user=u))
        got = wait_texts(fake, chat, 3)
        if "номер заказа" not in got[2]:
            fail("the answer after the hand-back: %r" % got[2])
        assert_eq(_session(gw, r.url, chat)["status"], "active", "Redis after the hand-back")
        gw.wait_log(r"stale session", timeout=5)


def _post_async(gw, update, out, key):
    def run():
        try:
            out[key] = gw.post_update(update, timeout=60)
        except Exception as e:  # reported by the caller
            out[key] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_a_too_long_id_is_refused_alone_and_dead_lettered():
    # One store worker, and the messages table held by a lock while the
    # events queue: they are committed together, in one batch.
    with Gateway(env={"EF_STORE_WORKERS": "1"}) as gw:
        users = [tg_user(uid=8120000100 + i, first="Клиент%d" % i) for i in range(6)]
        bad_user = tg_user(uid=8120000199, first="Плохой")
        locker = threading.Thread(target=psql, daemon=True, args=(
            gw.db, "BEGIN; LOCK TABLE messages IN SHARE ROW EXCLUSIVE MODE; "
                   "SELECT pg_sleep(2); COMMIT"))
        locker.start()
        time.sleep(0.5)
        results, threads = {}, []
        threads.append(_post_async(gw, tg_message(1, "первый", user=users[0]), results, 0))
        time.sleep(0.3)  # its batch waits on the lock; the next ones queue
        for i in range(1, 6):
            threads.append(_post_async(gw, tg_message(1, "хороший %d" % i, user=users[i]),
                                       results, i))
            if i == 3:
                threads.append(_post_async(gw, _callback(bad_user, LONG_ID), results, "bad"))
        for t in threads:
            t.join(60)
        locker.join(10)
        for i in range(6):
            assert_status(results[i], 200, "good event %d" % i)
        assert_status(results["bad"], 422, "the event with a too-long id")
        if LONG_ID in results["bad"].body.decode():
            fail("the 422 answer quotes the id")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 6, "good events stored")
        buckets = gw.metrics()
        one = buckets.get(("ef_store_batch_size_bucket", (("le", "1"),)), 0)
        total = buckets.get(("ef_store_batch_size_count", ()), 0)
        if total - one < 1:
            fail("no batch held more than one event (batches %r, of one %r)" % (total, one))

        rows = psql(gw.db, "SELECT d.platform, d.error, d.payload->>'message_id', "
                           "d.integration_id = i.id FROM dead_letters d LEFT JOIN "
                           "integrations i ON i.is_default AND i.platform_id = d.platform")
        assert_eq(len(rows), 1, "dead letters")
        platform, error, mid, same_integration = rows[0]
        assert_eq((platform, mid, same_integration), ("telegram", "callback:" + LONG_ID, "t"),
                  "the dead letter")
        if "22001" not in error or LONG_ID[:20] in error:
            fail("dead letter error %r" % error)
        assert_eq(gw.metric("ef_dead_letters_total", platform="telegram"), 1.0,
                  "ef_dead_letters_total")
        assert_eq(gw.healthz().status, 200, "/healthz after a dead letter")
        gw.wait_log(r"(?=.*refused)(?=.*dead_letters)", timeout=5)
        # The sender redelivers: refused again, kept again, never a 503.
        assert_status(gw.post_update(_callback(bad_user, LONG_ID)), 422, "redelivered")
        assert_eq(count(gw.db, "dead_letters"), 2, "dead letters after the redelivery")


def test_a_bad_update_in_a_poll_batch_is_dead_lettered_and_the_cursor_moves():
    tg = eftest.fake_telegram()
    u = tg_user(uid=8120000201)
    bad = tg_user(uid=8120000202, first="Плохой")
    ids = tg.push_updates([tg_message(1, "до", user=u), _callback(bad, LONG_ID),
                           tg_message(2, "после", user=u)])
    with Gateway(env=poll_env(tg)) as gw:
        wait_offset(tg, ids[-1] + 1)
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 2, "good updates stored")
        assert_eq(eftest.message_by_pmid(gw.db, "%d:2" % u["id"])["content"], "после")
        assert_eq(count(gw.db, "dead_letters WHERE payload->>'message_id' = %s" %
                        lit("callback:" + LONG_ID)), 1, "the bad update's dead letter")
        stored = psql1(gw.db, "SELECT c.cursor FROM poll_cursors c JOIN integrations i "
                              "ON i.id = c.integration_id WHERE i.is_default")
        assert_eq(stored, str(ids[-1] + 1), "the saved cursor is past the bad update")
        assert_eq(gw.metric("ef_dead_letters_total", platform="telegram"), 1.0,
                  "ef_dead_letters_total")
        # Nothing is fetched again: the offset never went back.
        tg.push_update(tg_message(3, "ещё", user=u))
        eftest.wait_until(lambda: count(gw.db, "messages WHERE direction = 'inbound'") == 3,
                          timeout=20, what="the next update stored")
        assert_eq(count(gw.db, "dead_letters"), 1, "dead letters")
