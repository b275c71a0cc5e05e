"""02-poll-restart: the long-poll offset survives restarts: a restart neither
loses updates (queued while the gateway was down) nor fetches confirmed ones
again; even a crash (SIGKILL) leaves every update stored exactly once."""

import random
import time

import eftest
from eftest import Gateway, assert_eq, count, fail, poll_env, psql, tg_message, tg_user, wait_offset


def offsets(tg, since=0.0):
    return [eftest.fake_telegram_offset(r) for r in tg.calls("getUpdates") if r.time >= since]


def handed_out(tg, since=0.0):
    """update_ids answered to getUpdates calls made since then."""
    return [u["update_id"] for r in tg.calls("getUpdates") if r.status == 200 and r.time >= since
            for u in (r.result or [])]


def test_restart_neither_loses_nor_repeats():
    tg = eftest.fake_telegram()
    user = tg_user(uid=7300000001)
    batch1 = tg.push_updates([tg_message(i, "до перезапуска %d" % i, user=user)
                              for i in range(1, 6)])
    gw = Gateway(env=poll_env(tg))
    wait_offset(tg, batch1[-1] + 1)
    gw.stop()
    # Customers keep writing while the gateway is down.
    batch2 = tg.push_updates([tg_message(i, "пока шёл перезапуск %d" % i, user=user)
                              for i in range(6, 11)])
    restarted_at = time.monotonic()
    gw.start()
    wait_offset(tg, batch2[-1] + 1)
    first_after = offsets(tg, restarted_at)[0]
    assert_eq(first_after, batch1[-1] + 1,
              "offset of the first getUpdates after the restart (read back from PostgreSQL)")
    again = sorted(set(handed_out(tg, restarted_at)) & set(batch1))
    if again:
        fail("updates confirmed before the restart fetched again after it: %r" % again)
    if not set(batch2) <= set(handed_out(tg, restarted_at)):
        fail("updates queued during the restart were not fetched")
    assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 10, "rows")
    rows = psql(gw.db, "SELECT platform_message_id FROM messages ORDER BY 1")
    assert_eq(sorted(r[0] for r in rows), sorted("7300000001:%d" % i for i in range(1, 11)))
    gw.stop()


def test_crash_mid_stream_loses_nothing():
    tg = eftest.fake_telegram()
    users = [tg_user(uid=7300001000 + i) for i in range(5)]
    ids = []
    gw = Gateway(env=poll_env(tg))
    rnd = random.Random(7)
    total = 0
    for round_ in range(3):
        batch = []
        for i in range(40):
            u = users[i % 5]
            total += 1
            batch.append(tg_message(1000 * round_ + i + 1, "сообщение %d/%d" % (round_, i),
                                    user=u))
        ids += tg.push_updates(batch)
        # Kill at some point while the batch is being fetched and committed.
        time.sleep(rnd.uniform(0.0, 0.3))
        gw.kill()
        gw.start()
    wait_offset(tg, ids[-1] + 1, timeout=60)
    rows = psql(gw.db, "SELECT platform_message_id, count(*) FROM messages WHERE direction = "
                       "'inbound' GROUP BY 1")
    dup = [r for r in rows if r[1] != "1"]
    if dup:
        fail("stored more than once: %r" % dup)
    assert_eq(len(rows), total, "every update stored")
    assert_eq(sum(c["messages_count"] for c in eftest.conversations(gw.db)), total,
              "messages_count over conversations")
    if tg.pending():
        fail("updates never confirmed: %r" % [u["update_id"] for u in tg.pending()])
    gw.stop()
