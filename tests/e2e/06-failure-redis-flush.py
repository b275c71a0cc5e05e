"""06-failure-redis-flush: Redis is a cache of live sessions, PostgreSQL the
truth. Lost keys are rebuilt from PostgreSQL; with Redis down entirely,
messages are still stored and /healthz names Redis."""

import json
import time

import eftest
from eftest import (Gateway, PrivateRedis, assert_eq, assert_status, conversations, count, fail,
                    tg_message, tg_user)


def session_json(gw, session_id, timeout=5):
    raw = eftest.wait_until(lambda: eftest.redis(gw.redis_url, "GET", "session:" + session_id),
                            timeout=timeout, what="Redis key session:" + session_id)
    return json.loads(raw)


def test_flushall_recreates_session_from_postgres():
    r = PrivateRedis()
    user = tg_user(uid=7700000001)
    with Gateway(redis_url=r.url) as gw:
        assert_status(gw.post_update(tg_message(1, "привет", user=user)), 200)
        conv = conversations(gw.db)[0]
        before = session_json(gw, conv["session_id"])
        assert_eq(eftest.redis(r.url, "FLUSHALL"), "OK")
        assert_eq(eftest.redis(r.url, "DBSIZE"), 0)
        assert_status(gw.post_update(tg_message(2, "вы тут?", user=user)), 200)
        convs = conversations(gw.db)
        assert_eq(len(convs), 1, "still one conversation after Redis lost everything")
        conv = convs[0]
        after = session_json(gw, conv["session_id"])
        assert_eq(after["session_id"], before["session_id"], "session_id kept")
        assert_eq(after["conversation_id"], conv["id"], "conversation_id")
        assert_eq(after["context"], conv["context_data"],
                  "rebuilt context equals PostgreSQL's context_data")
        assert_eq(after["created_at"], before["created_at"], "created_at kept")
        assert_eq(conv["messages_count"], 2)
        ttl = eftest.redis(r.url, "TTL", "session:" + conv["session_id"])
        if not 0 < ttl <= 86400:
            fail("rebuilt session TTL %r" % ttl)


def test_redis_down_messages_still_stored():
    r = PrivateRedis()
    user = tg_user(uid=7700000002)
    with Gateway(redis_url=r.url) as gw:
        assert_status(gw.post_update(tg_message(1, "до", user=user)), 200)
        r.stop()
        for mid in (2, 3, 4):
            t0 = time.monotonic()
            assert_status(gw.post_update(tg_message(mid, "Redis лежит %d" % mid, user=user)), 200,
                          "update while Redis is down")
            if time.monotonic() - t0 > 10:
                fail("update took %.1fs with Redis down" % (time.monotonic() - t0))
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 4,
                  "stored while Redis is down")
        # /healthz may report from a probe a second old; it must turn within seconds.
        # Redis is a cache: down, /healthz is 200 "degraded" (DESIGN.md).
        h = eftest.wait_until(lambda: (lambda x: x if x.status == 200 and
                                       x.json().get("redis") == "down" else None)(gw.healthz()),
                              timeout=5, what="healthz 200 degraded while Redis is down")
        body = h.json()
        assert_eq(body.get("status"), "degraded", "status in healthz")
        assert_eq(body.get("postgres"), "ok", "postgres in healthz")
        r.start()
        eftest.wait_until(lambda: gw.healthz().json().get("redis") == "ok", timeout=20,
                          what="healthz redis ok again")
        assert_status(gw.post_update(tg_message(5, "Redis вернулся", user=user)), 200)
        conv = conversations(gw.db)[0]
        s = session_json(gw, conv["session_id"])
        assert_eq(s["conversation_id"], conv["id"])
        assert_eq(conv["messages_count"], 5)


def test_redis_down_at_start():
    r = PrivateRedis()
    r.stop()
    user = tg_user(uid=7700000003)
    with Gateway(redis_url=r.url) as gw:
        body = eftest.wait_until(lambda: (lambda x: x.json() if x.status == 200 and
                                          x.json().get("redis") == "down" else None)(gw.healthz()),
                                 timeout=5, what="healthz 200 degraded with Redis down")
        if body.get("status") != "degraded" or body.get("postgres") != "ok":
            fail("healthz with only Redis down from the start: %r" % body)
        assert_status(gw.post_update(tg_message(1, "без Redis", user=user)), 200)
        eftest.message_by_pmid(gw.db, "7700000003:1")
