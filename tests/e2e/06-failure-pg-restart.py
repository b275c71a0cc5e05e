"""06-failure-pg-restart: PostgreSQL goes away and comes back while the
gateway keeps running. While it is down, webhooks are answered 503 (so
Telegram retries) and /healthz says so; once it is back, the redelivered
updates are stored exactly once -- without restarting the gateway."""

import threading
import time

import eftest
from eftest import (Gateway, PrivatePostgres, assert_eq, assert_status, count, fail, psql,
                    tg_message, tg_user)


def deliver_until_ok(gw, upd, timeout=60):
    """Telegram's behaviour: repeat the update until it is answered 2xx."""
    deadline = time.monotonic() + timeout
    statuses = []
    while True:
        try:
            st = gw.post_update(upd, timeout=30).status
        except OSError as e:
            st = repr(e)
        statuses.append(st)
        if st == 200:
            return statuses
        if isinstance(st, int) and st != 503:
            fail("update answered %s while PostgreSQL recovers (only 503 allowed): %r" %
                 (st, statuses))
        if time.monotonic() > deadline:
            fail("update not accepted within %ds after PostgreSQL came back: %r" %
                 (timeout, statuses[-5:]))
        time.sleep(0.25)


def test_postgres_down_503_then_redelivery_stored_once():
    pg = PrivatePostgres()
    pg.migrate()
    user = tg_user(uid=7600000001)
    with Gateway(db=pg.url) as gw:
        assert_status(gw.post_update(tg_message(1, "до аварии", user=user)), 200)
        pid = gw.proc.pid
        pg.stop(mode="immediate")
        down = [tg_message(i, "во время аварии %d" % i, user=user) for i in range(2, 6)]
        for u in down:
            t0 = time.monotonic()
            r = gw.post_update(u, timeout=40)
            assert_status(r, 503, "update while PostgreSQL is down")
            if time.monotonic() - t0 > 30:
                fail("503 took %.1fs" % (time.monotonic() - t0))
        h = eftest.wait_until(lambda: (lambda x: x if x.status == 503 else None)(gw.healthz()),
                              timeout=5, what="healthz 503 while PostgreSQL is down")
        body = h.json()
        if body.get("postgres") == "ok":
            fail("healthz says postgres ok while it is down: %r" % body)
        assert_eq(body.get("redis"), "ok", "healthz redis while only PostgreSQL is down")
        rejected = gw.metric("ef_updates_rejected_total", platform="telegram",
                             reason="unavailable")
        if rejected < len(down):
            fail("rejected{reason=unavailable} = %s after %d 503s" % (rejected, len(down)))
        pg.start()
        for u in down:
            deliver_until_ok(gw, u)
        # Telegram may also repeat the one acknowledged before the outage.
        assert_status(gw.post_update(tg_message(1, "до аварии", user=user)), 200)
        assert_eq(gw.proc.pid, pid, "the gateway was not restarted")
        rows = psql(pg.url, "SELECT platform_message_id, count(*) FROM messages GROUP BY 1 "
                            "ORDER BY 1")
        assert_eq(rows, [["7600000001:%d" % i, "1"] for i in range(1, 6)], "rows")
        gw.wait_healthy(20)
        assert_eq(eftest.conversations(pg.url)[0]["messages_count"], 5)


def test_postgres_killed_during_a_stream():
    """PostgreSQL dies while updates of several chats are in flight: every
    update is eventually acknowledged, none twice in the store, and whatever
    was acknowledged before the crash is there."""
    pg = PrivatePostgres()
    pg.migrate()
    users = [tg_user(uid=7600001000 + i) for i in range(6)]
    per_chat = {u["id"]: [tg_message(m, "поток %d/%d" % (u["id"] % 100, m), user=u)
                          for m in range(1, 26)] for u in users}
    acked_before = []
    lock = threading.Lock()
    crashed = threading.Event()
    with Gateway(db=pg.url) as gw:
        def chat_worker(uid):
            for upd in per_chat[uid]:
                statuses = deliver_until_ok(gw, upd, timeout=90)
                if statuses == [200] and not crashed.is_set():
                    with lock:
                        acked_before.append(upd["message"]["message_id"])
        threads = [threading.Thread(target=chat_worker, args=(u["id"],)) for u in users]
        for t in threads:
            t.start()
        time.sleep(0.5)
        pg.stop(mode="immediate")
        crashed.set()
        time.sleep(1.5)
        pg.start()
        for t in threads:
            t.join(120)
        total = sum(len(v) for v in per_chat.values())
        rows = psql(pg.url, "SELECT platform_message_id, count(*) FROM messages GROUP BY 1")
        dup = [r for r in rows if r[1] != "1"]
        if dup:
            fail("stored twice: %r" % dup)
        assert_eq(len(rows), total, "every update stored")
        assert_eq(count(pg.url, "conversations"), len(users), "conversations")
        for c in eftest.conversations(pg.url):
            assert_eq(c["messages_count"], 25, "messages_count of %s" % c["chat_id"])
        if not acked_before:
            fail("nothing was acknowledged before the crash: the test did not exercise it")


def test_postgres_down_at_start():
    """The gateway starts while PostgreSQL is down: /healthz answers 503,
    webhooks 503, and it recovers by itself once PostgreSQL starts."""
    pg = PrivatePostgres()
    pg.migrate()
    pg.stop()
    user = tg_user(uid=7600000002)
    with Gateway(db=pg.url) as gw:
        body = gw.stays_unhealthy()
        if body.get("postgres") == "ok" or body.get("redis") != "ok":
            fail("healthz with only PostgreSQL down from the start: %r" % body)
        assert_status(gw.post_update(tg_message(1, "рано", user=user), timeout=40), 503)
        pg.start()
        deliver_until_ok(gw, tg_message(1, "рано", user=user))
        assert_eq(count(pg.url, "messages"), 1)
