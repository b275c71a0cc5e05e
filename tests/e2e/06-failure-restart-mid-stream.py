"""06-failure-restart-mid-stream: the gateway is killed (SIGKILL: a crash, an
OOM kill) in the middle of a stream of webhooks. Telegram redelivers every
update it has no 2xx for; after a restart each customer message is stored
exactly once and nothing acknowledged was lost."""

import threading
import time

import eftest
from eftest import Gateway, assert_eq, fail, psql, tg_message, tg_user

CHATS = 10
PER_CHAT = 30


def test_sigkill_mid_stream_then_redelivery():
    users = [tg_user(uid=7800000000 + i) for i in range(CHATS)]
    streams = {u["id"]: [tg_message(m, "заказ %d, сообщение %d ✓" % (u["id"] % 100, m), user=u)
                         for m in range(1, PER_CHAT + 1)] for u in users}
    acked = {uid: 0 for uid in streams}  # how many of each chat's updates got a 200
    lock = threading.Lock()
    total_acked = [0]

    with Gateway() as gw:
        def phase1(uid):
            for upd in streams[uid]:
                try:
                    st = gw.post_update(upd, timeout=10).status
                except OSError:
                    return  # the gateway died under us: Telegram would retry later
                if st != 200:
                    return
                with lock:
                    acked[uid] += 1
                    total_acked[0] += 1
        threads = [threading.Thread(target=phase1, args=(uid,)) for uid in streams]
        for t in threads:
            t.start()
        eftest.wait_until(lambda: total_acked[0] >= CHATS * PER_CHAT // 3, timeout=60,
                          interval=0.005, what="a third of the stream acknowledged")
        gw.kill()
        for t in threads:
            t.join(30)
        acked_before = sum(acked.values())
        if acked_before >= CHATS * PER_CHAT:
            fail("the whole stream was acknowledged before the kill: nothing was in flight")
        before = {r[0] for r in psql(gw.db, "SELECT platform_message_id FROM messages")}
        for uid, n in acked.items():
            for m in range(1, n + 1):
                if "%d:%d" % (uid, m) not in before:
                    fail("acknowledged update %d:%d lost in the crash" % (uid, m))

        gw.start()

        def phase2(uid):
            # Telegram resends the first unacknowledged update of the chat, then the rest.
            for upd in streams[uid][acked[uid]:]:
                for _ in range(50):
                    try:
                        st = gw.post_update(upd, timeout=30).status
                    except OSError:
                        st = None
                    if st == 200:
                        break
                    time.sleep(0.2)
                else:
                    raise AssertionError("update %s never acknowledged" % upd["update_id"])
        eftest.parallel(phase2, list(streams), workers=8)

        rows = psql(gw.db, "SELECT platform_message_id, count(*) FROM messages WHERE "
                           "direction = 'inbound' GROUP BY 1")
        dup = [r for r in rows if r[1] != "1"]
        if dup:
            fail("stored more than once: %r" % dup[:10])
        assert_eq(len(rows), CHATS * PER_CHAT, "every update stored")
        for c in eftest.conversations(gw.db):
            assert_eq(c["messages_count"], PER_CHAT, "messages_count of %s" % c["chat_id"])
        assert_eq(len(eftest.conversations(gw.db, "status <> 'closed'")), CHATS,
                  "one open conversation per chat")
        # Per chat, messages are in order.
        for uid in streams:
            got = psql(gw.db, "SELECT split_part(platform_message_id, ':', 2)::int FROM messages "
                              "WHERE platform_message_id LIKE '%d:%%' ORDER BY created_at, "
                              "split_part(platform_message_id, ':', 2)::int" % uid)
            order = [int(r[0]) for r in got]
            assert_eq(order, sorted(order), "order of chat %d by created_at" % uid)
