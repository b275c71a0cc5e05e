"""00-harness-selftest: the harness itself (services, psql/redis clients, the
fake Bot API), so that a failing product test can be trusted to be about the
product. Needs no easyflow binary."""

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import eftest
from eftest import assert_eq, fail


def _call(url, method="GET", params=None, body=None, ctype=None, timeout=10):
    if params:
        url += "?" + urllib.parse.urlencode(params)
    req = urllib.request.Request(url, data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_psql_roundtrip_is_exact():
    url = eftest.fresh_db(migrated=False)
    text = "Привет 👋\nвторая строка\tтаб 'кавычка' \\ обратная"
    eftest.psql(url, "CREATE TABLE t (id int, s text)",
                "INSERT INTO t VALUES (1, %s), (2, NULL), (3, '')" % eftest.lit(text))
    rows = eftest.psql(url, "SELECT id, s FROM t ORDER BY id")
    assert_eq(rows, [["1", text], ["2", None], ["3", ""]], "rows")
    assert_eq(eftest.psql1(url, "SELECT ''"), "", "one empty value")
    assert_eq(eftest.psql1(url, "SELECT NULL"), None, "one NULL")
    assert_eq(eftest.psql(url, "SELECT 1 WHERE false"), [], "no rows")
    assert_eq(eftest.psql(url, "SELECT E'a\\n(1 row)\\n', 2", "SELECT 3"),
              [["a\n(1 row)\n", "2"], ["3"]], "a value that looks like a footer")
    try:
        eftest.psql(url, "SELECT * FROM no_such_table")
    except eftest.SQLError as e:
        assert "no_such_table" in str(e)
    else:
        fail("an SQL error must raise")
    other = eftest.fresh_db(migrated=False)
    if other == url:
        fail("fresh_db returned the same database twice")
    assert_eq(eftest.psql(other, "SELECT count(*) FROM pg_tables WHERE tablename = 't'"),
              [["0"]], "a fresh database is empty")


def test_redis_client_and_isolated_databases():
    a = eftest.fresh_redis_db()
    b = eftest.fresh_redis_db()
    if a == b:
        fail("fresh_redis_db returned the same database twice")
    assert_eq(eftest.redis(a, "SET", "k", "значение ✓"), "OK")
    assert_eq(eftest.redis(a, "GET", "k"), "значение ✓")
    assert_eq(eftest.redis(b, "GET", "k"), None, "other database")
    eftest.redis(a, "EXPIRE", "k", 100)
    ttl = eftest.redis(a, "TTL", "k")
    if not 0 < ttl <= 100:
        fail("TTL %r" % ttl)
    try:
        eftest.redis(a, "NOSUCHCOMMAND")
    except eftest.RedisError:
        pass
    else:
        fail("an error reply must raise")


def test_private_redis_stops_and_starts():
    r = eftest.PrivateRedis()
    assert_eq(eftest.redis(r.url, "PING"), "PONG")
    r.stop()
    try:
        eftest.redis(r.url, "PING", timeout=1)
        fail("stopped Redis still answers")
    except OSError:
        pass
    r.start()
    assert_eq(eftest.redis(r.url, "PING"), "PONG")


def test_private_postgres_stops_and_starts():
    pg = eftest.PrivatePostgres()
    assert_eq(eftest.psql1(pg.url, "SELECT current_database()"), "easyflow")
    pg.stop()
    try:
        eftest.psql(pg.url, "SELECT 1", timeout=20)
        fail("stopped PostgreSQL still answers")
    except eftest.SQLError:
        pass
    pg.start()
    assert_eq(eftest.psql1(pg.url, "SELECT 1"), "1")


def test_fake_telegram_wire_format():
    with eftest.FakeTelegram() as tg:
        base = "%s/bot%s" % (tg.url, tg.token)
        st, body = _call(base + "/getMe")
        assert_eq((st, body["ok"], body["result"]["id"]), (200, True, int(tg.bot_id)))
        st, body = _call(base + "/GETME", method="POST")  # case-insensitive, POST
        assert_eq(st, 200)
        st, body = _call("%s/bot%s/getMe" % (tg.url, "1:wrong"))
        assert_eq((st, body), (401, {"ok": False, "error_code": 401,
                                     "description": "Unauthorized"}))
        st, body = _call(base + "/noSuchMethod")
        assert_eq((st, body["ok"], body["error_code"]), (404, False, 404))
        # sendMessage: JSON, form and query parameters; increasing ids.
        st, m1 = _call(base + "/sendMessage", "POST",
                       body=json.dumps({"chat_id": 5000000001, "text": "один"}).encode(),
                       ctype="application/json")
        assert_eq(st, 200)
        time.sleep(1.05)
        st, m2 = _call(base + "/sendMessage", "POST",
                       body=urllib.parse.urlencode({"chat_id": 5000000001,
                                                    "text": "два"}).encode(),
                       ctype="application/x-www-form-urlencoded")
        assert_eq(st, 200)
        assert_eq(m2["result"]["message_id"], m1["result"]["message_id"] + 1, "message_id")
        assert_eq(m2["result"]["chat"]["id"], 5000000001)
        assert_eq(m2["result"]["text"], "два")
        # The per-chat limit: an immediate second message is refused.
        st, body = _call(base + "/sendMessage", params={"chat_id": 5000000001, "text": "три"})
        assert_eq(st, 429)
        assert_eq(body["error_code"], 429)
        if body["parameters"]["retry_after"] < 1 or "retry after" not in body["description"]:
            fail("429 body %r" % body)
        assert_eq(len(tg.sent), 2, "sent messages")
        assert_eq([r.method for r in tg.calls("sendmessage")], ["sendmessage"] * 3)
        assert_eq(tg.calls("sendmessage")[1].params["text"], "два")


def test_fake_telegram_two_bots_and_a_revoked_token():
    with eftest.FakeTelegram() as tg:
        other = tg.add_bot("987654321:BBHsecond-Bot_token_for_easyflow_tests_99")
        for tok in (tg.token, other):
            st, body = _call("%s/bot%s/sendMessage" % (tg.url, tok),
                             params={"chat_id": 5000000002, "text": "привет"})
            assert_eq((st, body["result"]["message_id"], body["result"]["from"]["id"]),
                      (200, 1, int(tok.split(":")[0])), "each bot numbers its own messages")
        tg.push_update({"message": {"text": "to the second bot"}}, token=other)
        st, body = _call("%s/bot%s/getUpdates" % (tg.url, tg.token))
        assert_eq((st, body["result"]), (200, []), "the first bot's queue")
        st, body = _call("%s/bot%s/getUpdates" % (tg.url, other))
        assert_eq(len(body["result"]), 1, "the second bot's queue")
        tg.revoke(other)
        st, body = _call("%s/bot%s/getMe" % (tg.url, other))
        assert_eq((st, body), (401, {"ok": False, "error_code": 401,
                                     "description": "Unauthorized"}), "a revoked token")
        assert_eq(_call("%s/bot%s/getMe" % (tg.url, tg.token))[0], 200, "the other bot")
        assert_eq(len(tg.calls("getMe", token=other)), 1, "calls with the revoked token")


def test_fake_telegram_global_rate_limit():
    with eftest.FakeTelegram(global_per_sec=5) as tg:
        base = "%s/bot%s" % (tg.url, tg.token)
        codes = [_call(base + "/sendMessage", params={"chat_id": 100 + i, "text": "x"})[0]
                 for i in range(8)]
        assert_eq(codes, [200] * 5 + [429] * 3, "global limit")


def test_fake_telegram_get_updates_semantics():
    with eftest.FakeTelegram() as tg:
        base = "%s/bot%s" % (tg.url, tg.token)
        ids = tg.push_updates([{"message": {"message_id": i, "date": 1,
                                            "chat": {"id": 1, "type": "private"}, "text": str(i)}}
                               for i in range(5)])
        st, body = _call(base + "/getUpdates", params={"limit": 2})
        assert_eq([u["update_id"] for u in body["result"]], ids[:2], "limit")
        # offset confirms everything below it
        st, body = _call(base + "/getUpdates", params={"offset": ids[3]})
        assert_eq([u["update_id"] for u in body["result"]], ids[3:], "offset")
        st, body = _call(base + "/getUpdates", params={"offset": 0})
        assert_eq([u["update_id"] for u in body["result"]], ids[3:], "confirmed are gone")
        # allowed_updates as a JSON-serialized string (query/form) and as JSON
        _call(base + "/getUpdates", params={"offset": ids[4] + 1,
                                            "allowed_updates": '["message","chat_member"]'})
        assert_eq(tg.allowed_updates, ["message", "chat_member"])
        _call(base + "/getUpdates", "POST", body=json.dumps(
            {"offset": ids[4] + 1, "allowed_updates": ["message_reaction"]}).encode(),
            ctype="application/json")
        assert_eq(tg.allowed_updates, ["message_reaction"])
        assert_eq(tg.pending(), [], "all confirmed")
        # long poll: times out empty after ~timeout, returns early on an update
        t0 = time.monotonic()
        st, body = _call(base + "/getUpdates", params={"offset": ids[4] + 1, "timeout": 1})
        dt = time.monotonic() - t0
        assert_eq(body["result"], [])
        if not 0.9 <= dt < 3:
            fail("long poll took %.2fs for timeout=1" % dt)
        threading.Timer(0.3, lambda: tg.push_update({"message": {
            "message_id": 9, "date": 1, "chat": {"id": 1, "type": "private"}, "text": "x"}})).start()
        t0 = time.monotonic()
        st, body = _call(base + "/getUpdates", params={"offset": ids[4] + 1, "timeout": 20})
        dt = time.monotonic() - t0
        assert_eq(len(body["result"]), 1)
        if dt > 3:
            fail("long poll did not return early (%.2fs)" % dt)


def test_fake_telegram_scripted_failures():
    with eftest.FakeTelegram() as tg:
        base = "%s/bot%s" % (tg.url, tg.token)
        tg.fail_next(1, 502)
        tg.fail_next(1, "drop")
        st, body = _call(base + "/getUpdates")
        assert_eq((st, body["ok"], body["error_code"]), (502, False, 502))
        try:
            _call(base + "/getUpdates")
            fail("a dropped connection answered")
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            if isinstance(e, urllib.error.HTTPError):
                raise
        st, body = _call(base + "/getUpdates")
        assert_eq(st, 200, "after the scripted failures")
        assert_eq([r.status for r in tg.calls("getUpdates")], [502, 0, 200])
        tg.set_webhook_active()
        st, body = _call(base + "/getUpdates")
        assert_eq(st, 409)
        if "webhook is active" not in body["description"]:
            fail(body)
        _call(base + "/deleteWebhook")
        st, body = _call(base + "/getUpdates")
        assert_eq(st, 200, "after deleteWebhook")
        # Two concurrent long polls: the older ends with 409.
        res = {}
        t = threading.Thread(target=lambda: res.update(
            first=_call(base + "/getUpdates", params={"timeout": 10})))
        t.start()
        time.sleep(0.3)
        threading.Timer(0.3, lambda: tg.push_update({"message": {
            "message_id": 1, "date": 1, "chat": {"id": 1, "type": "private"}}})).start()
        second = _call(base + "/getUpdates", params={"timeout": 10})
        t.join(10)
        assert_eq(res["first"][0], 409, "older concurrent poll")
        if "terminated by other getUpdates" not in res["first"][1]["description"]:
            fail(res["first"])
        assert_eq(second[0], 200)
