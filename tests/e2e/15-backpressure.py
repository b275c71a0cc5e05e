"""15-backpressure: a slow PostgreSQL or a hung Redis never makes the gateway
queue without bound nor time every webhook out (issue 8, robustness).

- PostgreSQL slow under load (a transaction holds the lock every commit
  needs, EF_QUEUE_MAX small): once the queue is full, webhooks are answered
  503 with Retry-After at once, without being queued; /healthz answers; the
  gateway's memory and pending count stay bounded; work whose request timed
  out is dropped (counted), and after the slowness ends every update,
  redelivered until answered 2xx, is stored exactly once.
- Redis that accepts connections and never answers (SIGSTOP): webhooks are
  still answered 200 within a short time and stored; after SIGCONT the
  sessions are written again."""

import os
import signal
import subprocess
import threading
import time

import eftest
from eftest import (Gateway, PrivateRedis, assert_eq, assert_status, count, fail, psql1,
                    tg_message, tg_user)

LOCK_SECONDS = 6
THREADS = 6
PER_THREAD = 20


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _hold_messages_lock(db, seconds):
    """A background transaction holding ACCESS EXCLUSIVE on messages (every
    ingest commit waits on it) for seconds; returns once it is granted."""
    sql = ("BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(%d); COMMIT;" %
           seconds)
    p = subprocess.Popen([eftest._psql_bin(), "-X", "-q", "-d", db, "-c", sql],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # pg_locks is the whole cluster's: other tests' databases, cloned from one
    # template, have a messages table of the same oid.
    eftest.wait_until(lambda: psql1(db, "SELECT count(*) FROM pg_locks WHERE relation = "
                                        "'messages'::regclass AND mode = 'AccessExclusiveLock' "
                                        "AND database = (SELECT oid FROM pg_database "
                                        "WHERE datname = current_database()) "
                                        "AND granted") == "1",
                      timeout=10, what="the lock on messages")
    return p


def _load(gw, updates, results):
    """Posts each update once; results gets (update, status, seconds, headers)."""
    for u in updates:
        t0 = time.monotonic()
        try:
            r = gw.post_update(u, timeout=15)
            results.append((u, r.status, time.monotonic() - t0, r.headers))
        except OSError:
            results.append((u, 0, time.monotonic() - t0, {}))


def test_slow_postgres_sheds_load_and_loses_nothing():
    # One event per batch: each worker holds one stuck event, so the others
    # stay queued (untaken) when their requests time out: they must be
    # dropped as abandoned (with bigger batches a worker may take them all).
    env = {"EF_QUEUE_MAX": "4", "EF_STORE_WORKERS": "2", "EF_BATCH_MAX": "1",
           "EF_REQUEST_TIMEOUT_MS": "1000"}
    with Gateway(env=env) as gw:
        warm = tg_message(1, "разогрев", user=tg_user(uid=7715000000))
        assert_status(gw.post_update(warm), 200)
        rss0 = _rss_kb(gw.proc.pid)
        updates = [[tg_message(1, "нагрузка %d-%d" % (t, i),
                               user=tg_user(uid=7715000001 + t * 1000 + i))
                    for i in range(PER_THREAD)] for t in range(THREADS)]
        locker = _hold_messages_lock(gw.db, LOCK_SECONDS)
        results = []
        threads = [threading.Thread(target=_load, args=(gw, us, results)) for us in updates]
        for th in threads:
            th.start()
        # While the load runs and PostgreSQL is stuck: /healthz answers and
        # the queue stays at its bound.
        pend_max = 0
        t_end = time.monotonic() + 2.0
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            h = gw.healthz()
            if time.monotonic() - t0 > 1.0:
                fail("/healthz took %.2fs while PostgreSQL was slow" % (time.monotonic() - t0))
            pend_max = max(pend_max, h.json().get("pending", 0))
            time.sleep(0.1)
        for th in threads:
            th.join(30)
        rss1 = _rss_kb(gw.proc.pid)
        if pend_max > 4 + THREADS:
            fail("pending reached %d with EF_QUEUE_MAX=4" % pend_max)
        if rss1 - rss0 > 150 * 1024:
            fail("RSS grew by %d kB under a slow PostgreSQL" % (rss1 - rss0))
        sat = [r for r in results if r[1] == 503 and r[3].get("retry-after") == "1"]
        fast = [r for r in sat if r[2] < 0.5]
        if len(fast) < len(results) // 2:
            fail("only %d of %d webhooks answered 503 + Retry-After within 0.5 s: %r" %
                 (len(fast), len(results), sorted(set((r[1], round(r[2], 1)) for r in results))))
        if any(200 <= r[1] < 300 for r in results):
            fail("a webhook was answered 2xx while its commit could not happen")
        if gw.metric("ef_updates_rejected_total", platform="telegram", reason="saturated") < 1:
            fail("saturated refusals not counted in /metrics")
        gw.assert_alive("the load")

        locker.wait(LOCK_SECONDS + 20)
        # The events queued behind the stuck batches whose requests had
        # timed out are dropped, not committed for nobody.
        eftest.wait_until(lambda: gw.healthz().json().get("pending", 1) == 0, timeout=20,
                          what="the queue drained")
        if gw.metric("ef_updates_rejected_total", platform="telegram", reason="abandoned") < 1:
            fail("no abandoned event was dropped (or none counted)")
        # The platform redelivers everything not acknowledged.
        for u, st, _, _ in results:
            r = gw.deliver(u, timeout=15, attempts=50, pause=0.2)
            assert_status(r, 200, "redelivery after the slowness")
        total = THREADS * PER_THREAD
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), total + 1,
                  "every update stored")
        assert_eq(count(gw.db, "conversations"), total + 1, "one conversation per chat")
        assert_eq(count(gw.db, "conversations WHERE messages_count <> 1"), 0,
                  "each update stored exactly once")


def test_hung_redis_does_not_stall_webhooks():
    r = PrivateRedis()
    env = {"EF_REDIS_TIMEOUT_MS": "200"}
    user = tg_user(uid=7715900001)
    with Gateway(redis_url=r.url, env=env) as gw:
        assert_status(gw.post_update(tg_message(1, "до зависания", user=user)), 200)
        os.kill(r.proc.pid, signal.SIGSTOP)
        try:
            worst = 0.0
            for mid in range(2, 12):
                u = user if mid % 2 else tg_user(uid=7715900001 + mid)
                t0 = time.monotonic()
                assert_status(gw.post_update(tg_message(mid, "Redis завис %d" % mid, user=u),
                                             timeout=10), 200, "update while Redis hangs")
                worst = max(worst, time.monotonic() - t0)
            if worst > 2.0:
                fail("an update took %.2fs with Redis hung" % worst)
            assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 11,
                      "stored while Redis hangs")
            h = gw.healthz()
            if h.status != 200 and h.json().get("postgres") != "ok":
                fail("healthz while Redis hangs: %r" % h.json())
        finally:
            os.kill(r.proc.pid, signal.SIGCONT)
        gw.wait_healthy(20)
        assert_status(gw.post_update(tg_message(20, "Redis ожил", user=user)), 200)
        sid = psql1(gw.db, "SELECT session_id FROM conversations WHERE chat_id = '%d'" % user["id"])
        eftest.wait_until(lambda: eftest.redis(r.url, "GET", "session:" + sid), timeout=10,
                          what="the session written back after SIGCONT")
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 12, "all stored")
