"""19-personal-data: personal data (issue 11). `easyflow customer forget`
erases one customer's messages and identity from every table and their
Redis keys, records the erasure without the id in clear, and leaves other
customers alone; EF_RETENTION_DAYS deletes conversations idle for longer;
INFO logs carry no message text."""

import time

import eftest
from eftest import (Gateway, assert_eq, conversations, count, fail, lit, pg_dump, post_ok, psql,
                    run_cli, tg_message, tg_user)
from reply_helpers import demo_gateway, texts, wait_texts

A_UID = 7719000001
B_UID = 7719000002
A_WORDS = ["ЖИРАФОВЫЙПАРОЛЬ", "КАРАКАТИЦА42", "секретныйадрес"]
B_WORD = "БЕГЕМОТОВЫЙЗАКАЗ"


def forget(gw, *args, redis_url=None):
    env = {"EF_DATABASE_URL": gw.db, "EF_REDIS_URL": redis_url or gw.redis_url}
    return run_cli(["customer", "forget"] + list(args), env=env, timeout=60)


def keys(gw):
    return sorted(eftest.redis(gw.redis_url, "KEYS", "*") or [])


def redis_keys_of(gw, convs):
    """The session and chat keys of the given conversations that exist."""
    out = []
    for k in keys(gw):
        k = k.decode() if isinstance(k, bytes) else k
        for c in convs:
            if k == "session:" + c["session_id"] or (k.startswith("chat:") and
                                                      k.endswith(":" + str(c["chat_id"]))):
                out.append(k)
    return out


def two_customers(gw):
    """A with messages in two conversations (the first closed), B with one."""
    a = tg_user(uid=A_UID, first="Анастасия", last="Секретова", username="secret_anastasia")
    b = tg_user(uid=B_UID, first="Борис", last="Открытов", username="open_boris")
    post_ok(gw, tg_message(1, "первое " + A_WORDS[0], user=a))
    post_ok(gw, tg_message(2, "второе " + A_WORDS[1], user=a))
    psql(gw.db, "UPDATE conversations SET status = 'closed', closed_at = now() "
                "WHERE chat_id = %s" % lit(str(A_UID)))
    post_ok(gw, tg_message(3, "третье " + A_WORDS[2], user=a))
    post_ok(gw, tg_message(4, "мой " + B_WORD, user=b))
    eftest.wait_until(lambda: count(gw.db, "messages WHERE direction = 'inbound'") == 4,
                      what="4 inbound messages stored")
    return a, b


def test_forget_erases_one_customer_everywhere():
    fake = eftest.fake_telegram()
    with demo_gateway(fake) as gw:
        two_customers(gw)
        wait_texts(fake, A_UID, 3)
        gw.wait_log(r"reply row=\S+ sent id=")
        a_convs = conversations(gw.db, "chat_id = %s" % lit(str(A_UID)))
        assert_eq(len(a_convs), 2, "A has two conversations")
        eftest.wait_until(lambda: redis_keys_of(gw, a_convs), what="A's session in Redis")
        # A dead letter naming A (as the store writes them).
        psql(gw.db, "INSERT INTO dead_letters (platform, payload, error) VALUES ('telegram', "
                    "jsonb_build_object('chat_id', %s, 'sender', jsonb_build_object('id', %s), "
                    "'text', %s), 'test')" % (lit(str(A_UID)), lit(str(A_UID)),
                                              lit(A_WORDS[0])))
        log = gw.log_text()
        for w in A_WORDS + [B_WORD] + [t[:20] for t in texts(fake, A_UID) if t]:
            if w in log:
                fail("the gateway log (INFO) carries message text %r" % w)
    b_before = count(gw.db, "messages m JOIN users u ON u.id = m.user_id "
                            "WHERE u.platform_user_id = %s" % lit(str(B_UID)))
    r = forget(gw, "telegram", str(A_UID))
    assert_eq(r.code, 0, "customer forget exit code (%r)" % r)
    if "erased in PostgreSQL" not in r.out or "conversations=2" not in r.out:
        fail("customer forget does not print what it erased: %r" % r.out)
    # No row names A or carries their words.
    dump = pg_dump(gw.db)
    for needle in A_WORDS + [str(A_UID), "secret_anastasia", "Секретова", "Анастасия"]:
        if needle in dump:
            i = dump.index(needle)
            fail("pg_dump still contains %r: %r" % (needle, dump[max(0, i - 300):i + 100]))
    assert_eq(count(gw.db, "users WHERE platform_user_id = %s" % lit(str(A_UID))), 0, "A's row")
    assert_eq(count(gw.db, "dead_letters"), 0, "dead letter naming A")
    assert_eq(redis_keys_of(gw, a_convs), [], "A's Redis keys")
    # The erasure is recorded, with the id only as its SHA-256.
    rows = psql(gw.db, "SELECT platform, user_hash, erased->>'messages', "
                       "user_hash = encode(sha256(%s::bytea), 'hex') FROM data_erasures"
                % lit(str(A_UID)))
    assert_eq(len(rows), 1, "data_erasures rows")
    assert_eq((rows[0][0], rows[0][3]), ("telegram", "t"), "platform and hash of the record")
    if int(rows[0][2]) < 3:
        fail("data_erasures counts %r messages, expected at least A's 3" % rows[0][2])
    # B untouched.
    assert_eq(count(gw.db, "messages m JOIN users u ON u.id = m.user_id "
                           "WHERE u.platform_user_id = %s" % lit(str(B_UID))), b_before,
              "B's messages")
    if B_WORD not in dump or "open_boris" not in dump:
        fail("B's data was erased too")
    # Again: nothing matches -> exit 1, clear message, no second record.
    r = forget(gw, "telegram", str(A_UID))
    assert_eq(r.code, 1, "second forget exit code (%r)" % r)
    if "nothing erased" not in r.err:
        fail("no clear message when nothing matches: %r" % r.err)
    assert_eq(count(gw.db, "data_erasures"), 1, "records after a no-op forget")


def test_forget_with_redis_down_still_erases_postgres():
    with Gateway() as gw:
        post_ok(gw, tg_message(1, "текст " + A_WORDS[0], user=tg_user(uid=A_UID)))
        eftest.wait_until(lambda: count(gw.db, "messages") >= 1, what="stored")
    r = forget(gw, "telegram", str(A_UID), redis_url="redis://127.0.0.1:%d/0" % eftest.free_port())
    assert_eq(r.code, 0, "forget with Redis down (%r)" % r)
    if "expire by their TTL" not in r.err:
        fail("the CLI does not say the Redis keys expire by their TTL: %r" % r.err)
    assert_eq(count(gw.db, "users WHERE platform_user_id = %s" % lit(str(A_UID))), 0, "A's row")
    if A_WORDS[0] in pg_dump(gw.db):
        fail("A's text is still in the database")


def test_retention_deletes_old_conversations():
    old = tg_user(uid=7719000011, username="old_customer")
    closed = tg_user(uid=7719000012, username="closed_customer")
    fresh = tg_user(uid=7719000013, username="fresh_customer")
    with Gateway(env={"EF_RETENTION_DAYS": "30", "EF_RETENTION_INTERVAL_S": "1"}) as gw:
        post_ok(gw, tg_message(1, "давнее сообщение", user=old))
        post_ok(gw, tg_message(2, "закрытый разговор", user=closed))
        post_ok(gw, tg_message(3, "свежее сообщение", user=fresh))
        eftest.wait_until(lambda: count(gw.db, "messages WHERE direction = 'inbound'") == 3,
                          what="3 inbound messages stored")
        gw.wait_log(r"retention: older than 30 days deleted", timeout=10)
    # A retention of 1 day, with two conversations moved into the past.
    psql(gw.db, "UPDATE conversations SET updated_at = now() - interval '3 days' "
                "WHERE chat_id = %s" % lit(str(old["id"])))
    psql(gw.db, "UPDATE conversations SET status = 'closed', closed_at = now() - interval "
                "'2 days', updated_at = now() - interval '2 days' WHERE chat_id = %s"
         % lit(str(closed["id"])))
    psql(gw.db, "UPDATE users SET created_at = now() - interval '3 days', updated_at = now() - "
                "interval '3 days' WHERE platform_user_id IN (%s, %s)"
         % (lit(str(old["id"])), lit(str(closed["id"]))))
    with Gateway(db=gw.db, env={"EF_RETENTION_DAYS": "1", "EF_RETENTION_INTERVAL_S": "1"}) as gw2:
        eftest.wait_until(lambda: count(gw2.db, "conversations") == 1, timeout=15,
                          what="the two old conversations deleted")
        line = gw2.wait_log(r"retention: older than 1 days deleted conversations=[1-9]")
        if "conversations=2" not in gw2.log_text():
            fail("no run line counts the two conversations: %r" % line)
        time.sleep(1.5)
    left = conversations(gw.db)
    assert_eq([c["chat_id"] for c in left], [str(fresh["id"])], "the fresh conversation left")
    dump = pg_dump(gw.db)
    for needle in ("давнее сообщение", "закрытый разговор", "old_customer", "closed_customer"):
        if needle in dump:
            fail("retention left %r in the database" % needle)
    if "свежее сообщение" not in dump:
        fail("retention deleted the fresh conversation's message")
    assert_eq(count(gw.db, "users WHERE role = 'customer'"), 1, "customers left")
