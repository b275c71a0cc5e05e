"""07-metrics-healthz: what an operator's monitoring sees: /livez (the process
runs), /readyz and /healthz (the same readiness: PostgreSQL answers; Redis down
is "degraded", still 200) as JSON, and /metrics in the Prometheus text format,
with counters that add up to what was sent."""

import json
import re

import eftest
from eftest import Gateway, assert_eq, assert_status, fail, tg_message, tg_user

PLAT = (("platform", "telegram"),)


def _healthy(gw):
    """/healthz may answer from a probe made every second or so: a healthy
    gateway must say so within seconds of starting."""
    return gw.wait_healthy(5)


def test_healthz_ok():
    with Gateway() as gw:
        r = _healthy(gw)
        if not r.headers.get("content-type", "").startswith("application/json"):
            fail("healthz Content-Type %r" % r.headers.get("content-type"))
        body = r.json()
        assert_eq((body.get("status"), body.get("postgres"), body.get("redis")),
                  ("ok", "ok", "ok"), "healthz body %r" % body)


def test_livez_and_readyz():
    with Gateway() as gw:
        _healthy(gw)
        r = gw.get("/livez")
        assert_status(r, 200, "/livez")
        assert_eq(r.json().get("status"), "ok", "/livez body")
        r = gw.get("/readyz")
        assert_status(r, 200, "/readyz")
        body = r.json()
        assert_eq((body.get("status"), body.get("postgres"), body.get("redis")),
                  ("ok", "ok", "ok"), "readyz body %r" % body)
        for path in ("/livez", "/readyz", "/healthz"):
            assert_status(gw.request("POST", path, b"{}"), 405, "POST " + path)


def test_redis_down_is_degraded_not_unready():
    """Redis is a cache: a load balancer must not pull an instance whose
    webhooks still work."""
    with Gateway(redis_url="redis://127.0.0.1:%d/0" % eftest.free_port()) as gw:
        for path in ("/readyz", "/healthz"):
            r = eftest.wait_until(
                lambda p=path: (lambda x: x if x.status == 200 and
                                x.json().get("redis") == "down" else None)(gw.get(p)),
                timeout=5, what="%s 200 with redis down" % path)
            body = r.json()
            assert_eq((body.get("status"), body.get("postgres"), body.get("redis")),
                      ("degraded", "ok", "down"), "%s body %r" % (path, body))
        assert_status(gw.get("/livez"), 200, "/livez with Redis down")


def test_healthz_names_what_is_down():
    with Gateway(db="postgresql://easyflow@127.0.0.1:%d/nowhere?connect_timeout=2" %
                 eftest.free_port(),
                 redis_url="redis://127.0.0.1:%d/0" % eftest.free_port()) as gw:
        body = gw.stays_unhealthy()
        if body.get("postgres") == "ok" or body.get("redis") == "ok" or body.get("status") == "ok":
            fail("healthz with nothing reachable: %r" % body)
        if "postgres" not in body.get("reason", ""):
            fail("healthz 503 without a reason naming PostgreSQL: %r" % body)
        r = gw.get("/readyz")
        assert_status(r, 503, "/readyz with PostgreSQL down")
        assert_status(gw.get("/livez"), 200, "/livez with PostgreSQL down")


def _metric_text(gw):
    r = gw.get("/metrics")
    assert_status(r, 200, "/metrics")
    ctype = r.headers.get("content-type", "")
    if not ctype.startswith("text/plain"):
        fail("/metrics Content-Type %r" % ctype)
    return r.body.decode("utf-8")


def test_metrics_format_and_types():
    with Gateway() as gw:
        gw.post_update(tg_message(1, "для метрик", user=tg_user(uid=7950000001)))
        text = _metric_text(gw)
        m = eftest.parse_prometheus(text)
        types = dict(re.findall(r"(?m)^# TYPE (\S+) (\S+)$", text))
        for name in ("ef_updates_received_total", "ef_updates_stored_total",
                     "ef_updates_duplicate_total", "ef_updates_ignored_total",
                     "ef_updates_rejected_total"):
            assert_eq(types.get(name), "counter", "# TYPE of %s" % name)
        for name in ("ef_store_commit_seconds", "ef_store_batch_size", "ef_webhook_seconds"):
            assert_eq(types.get(name), "histogram", "# TYPE of %s" % name)
            buckets = sorted(((float(dict(k[1])["le"].replace("+Inf", "inf")), v)
                              for k, v in m.items() if k[0] == name + "_bucket"))
            if not buckets or buckets[-1][0] != float("inf"):
                fail("%s has no +Inf bucket" % name)
            values = [v for _, v in buckets]
            if values != sorted(values):
                fail("%s buckets not cumulative: %r" % (name, buckets))
            cnt = [v for k, v in m.items() if k[0] == name + "_count"]
            sm = [v for k, v in m.items() if k[0] == name + "_sum"]
            if len(cnt) != 1 or len(sm) != 1:
                fail("%s needs one _count and one _sum" % name)
            assert_eq(buckets[-1][1], cnt[0], "%s +Inf bucket == _count" % name)
            if cnt[0] < 1 or sm[0] <= 0:
                fail("%s recorded nothing after a stored update: count %r sum %r" %
                     (name, cnt[0], sm[0]))


def test_counters_add_up():
    user = tg_user(uid=7950000002)
    with Gateway(env={"EF_MAX_BODY": "65536"}) as gw:
        m0 = gw.metrics()

        def delta(name, labels=PLAT):
            return gw.metrics().get((name, labels), 0) - m0.get((name, labels), 0)
        good = [tg_message(i, "сообщение %d" % i, user=user) for i in range(1, 4)]
        for u in good:
            assert_status(gw.post_update(u), 200)
        for _ in range(2):
            assert_status(gw.post_update(good[0]), 200)
        assert_status(gw.post_update({"update_id": eftest.next_update_id(),
                                      "inline_query": {"id": "1", "from": user, "query": "q",
                                                       "offset": ""}}), 200)
        assert_status(gw.post_update(good[1], secret="nope"), 401)
        assert_status(gw.post_update(b"{oops"), 400)
        assert_status(gw.post_update(b'{"update_id": 5, "x": "\xff"}'), 400)
        assert_status(gw.post_update(b'{"update_id": 6, "x": "' + b"a" * 70000 + b'"}'), 413)
        assert_status(gw.post_update(b'{"update_id": 7, "x": ' + b"[" * 100 + b"]" * 100 + b"}"),
                      400)
        assert_status(gw.post_update({"update_id": "8"}), 400)
        assert_eq(delta("ef_updates_stored_total"), 3, "stored")
        assert_eq(delta("ef_updates_duplicate_total"), 2, "duplicate")
        assert_eq(delta("ef_updates_ignored_total"), 1, "ignored")
        for reason in ("bad_secret", "bad_json", "bad_utf8", "too_large", "too_deep",
                       "bad_payload"):
            assert_eq(delta("ef_updates_rejected_total", PLAT + (("reason", reason),)), 1,
                      "rejected{reason=%s}" % reason)
        # Every webhook answered is timed, refused ones included.
        assert_eq(delta("ef_webhook_seconds_count", ()), 12, "ef_webhook_seconds_count")
        received = delta("ef_updates_received_total")
        if received < 6:
            fail("received %r < 6 accepted updates" % received)
        m = gw.metrics()
        batch = [v for k, v in m.items() if k[0] == "ef_store_batch_size_sum"]
        if not batch or batch[0] < 3:
            fail("ef_store_batch_size_sum %r < 3 stored events" % batch)


def test_metrics_and_healthz_never_need_the_secret():
    with Gateway(secret="only-telegram-knows-this") as gw:
        assert_status(gw.get("/metrics"), 200)
        _healthy(gw)
        text = _metric_text(gw)
        if "only-telegram-knows-this" in text:
            fail("the webhook secret appears in /metrics")
        body = json.dumps(gw.healthz().json())
        if "only-telegram-knows-this" in body:
            fail("the webhook secret appears in /healthz")
