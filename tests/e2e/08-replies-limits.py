"""08-replies-limits: replies reach many customers at once without breaking
Telegram's limits (1 message/s per chat, 30/s per bot, 20/min per group),
each exactly once and in order per chat; 429 retry_after is honoured, 5xx
and network errors are retried, 400/403 fail the reply with its reason.
(Replies queued across a restart: 08-replies-restart.)

The limits are checked on the arrival times of every sendMessage the fake
received (accepted or not), not on how many 429s it answered."""

import time

import eftest
from eftest import assert_eq, fail, lit, parallel, post_ok, psql, tg_message, tg_user
from reply_helpers import (JITTER, assert_quiet, check_limits, conversation, demo_gateway,
                           limited_telegram, outbound_rows, replies, sends, texts, wait_texts)


def _script(n):
    """Three messages and the reply each must get: the order number is the
    chat's own, so a reply in the wrong chat shows."""
    num = "A-%d" % (1000 + n)
    return [("Привет", "Здравствуйте! 👋"), ("где мой заказ", "номер заказа"),
            (num, "Заказ %s" % num)]


def _check_chat(fake, chat_id, expected, exact=True):
    got = texts(fake, chat_id)
    if exact and len(got) != len(expected):
        fail("chat %s: expected %d replies, got %d: %r" % (chat_id, len(expected), len(got), got))
    for i, (t, want) in enumerate(zip(got, expected)):
        if want not in t:
            fail("chat %s reply %d: expected %r in %r (replies: %r)" % (chat_id, i + 1, want, t,
                                                                         got))


GROUP = -1001987654321


def _queue_group_announcements(gw, n):
    """The bot answers no group itself: an operator's announcements queued
    for a group (n rows put in the outbox, as the console would)."""
    admin = tg_user(uid=8200005001, first="Админ", last=None, username=None, lang="ru")
    post_ok(gw, tg_message(1, "Всем привет", user=admin, chat_id=GROUP))
    conv = psql(gw.db, "SELECT id, session_id, user_id, chat_type FROM conversations WHERE "
                       "chat_id = %s" % lit(str(GROUP)))
    assert_eq(len(conv), 1, "group conversation")
    cid, sid, uid, ctype = conv[0]
    assert_eq(ctype, "supergroup", "chat_type")
    values = ",".join(
        "(%s, %s, %s, %s, 'operator', 'outbound', 'telegram', '{}', 'queued', now(), "
        "clock_timestamp() + interval '%d milliseconds')" %
        (lit(cid), lit(sid), lit(uid), lit("Объявление №%d" % (i + 1)), i)
        for i in range(n))
    psql(gw.db, "INSERT INTO messages (conversation_id, session_id, user_id, content, role, "
                "direction, platform, metadata, delivery_status, next_attempt_at, created_at) "
                "VALUES " + values)


def test_forty_chats_and_a_group_at_once_each_reply_once_in_order_within_limits():
    fake = limited_telegram()
    users = [tg_user(uid=8200000000 + i, first="Клиент%d" % i, last=None, username=None,
                     lang="ru") for i in range(40)]
    with demo_gateway(fake) as gw:
        _queue_group_announcements(gw, 24)

        def customer(i):
            u = users[i]
            for k, (text, _) in enumerate(_script(i)):
                r = gw.post_update(tg_message(k + 1, text, user=u))
                if r.status != 200:
                    return "chat %d message %d: HTTP %d" % (u["id"], k + 1, r.status)
            return None
        t0 = time.monotonic()
        errs = [e for e in parallel(customer, range(40), workers=20) if e]
        if errs:
            fail("webhooks refused: %r" % errs[:5])
        fake.wait_for(lambda: len(sends(fake)) - len(sends(fake, GROUP)) >= 120, timeout=40,
                      what="120 replies (have %d)" % len(sends(fake)))
        took = time.monotonic() - t0
        time.sleep(1.5)  # nothing more may come: no reply twice
        for i, u in enumerate(users):
            _check_chat(fake, u["id"], [want for _, want in _script(i)])
        rows = replies(gw.db)
        assert_eq(len(rows), 120, "reply rows")
        assert_eq(sorted(set(r["delivery_status"] for r in rows)), ["sent"], "delivery statuses")
        pmids = [r["platform_message_id"] for r in rows]
        assert_eq(len(set(pmids)), 120, "distinct platform_message_ids")
        # 120 replies (and the group's) at <= 30/s need at least ~4 s.
        if took < 120 / 30.0 - 1.0:
            fail("120 replies delivered in %.2f s: faster than 30/s" % took)
        check_limits(fake)

        # The group: one per second, so the 20th leaves ~19 s after the
        # first; the 21st may not leave before a minute has passed.
        fake.wait_for(lambda: len(sends(fake, GROUP)) >= 20, timeout=35, what="20 announcements")
        first = sends(fake, GROUP)[0].time
        twentieth = sends(fake, GROUP)[19].time
        while time.monotonic() < twentieth + 2.5:
            time.sleep(0.2)
        assert_eq(texts(fake, GROUP), ["Объявление №%d" % (i + 1) for i in range(20)],
                  "announcements in the first minute")
        attempts = check_limits(fake)
        group_attempts = [r for r in fake.calls("sendMessage")
                          if str(r.params["chat_id"]) == str(GROUP)]
        assert_eq(len(group_attempts), 20, "attempts to the group (none refused by the fake)")
        rows = outbound_rows(gw.db, GROUP)
        assert_eq([r["delivery_status"] for r in rows], ["sent"] * 20 + ["queued"] * 4,
                  "group rows after %.0f s" % (time.monotonic() - first))
        # The dispatcher forgets a chat once it has nothing to send and its
        # 1/s limit has run out: the 40 private chats are gone from its
        # memory, the group (4 replies waiting for the next minute) stays.
        m = gw.metrics()
        assert_eq(m.get(("ef_dispatcher_chats", ())), 1.0, "chats in the dispatcher's memory")
        assert_eq(m.get(("ef_dispatcher_rows", ())), 4.0, "rows in the dispatcher's memory")
        print("40 chats + group: %d attempts for %d messages; 120 replies in %.2f s" %
              (attempts, len(sends(fake)), took))


def test_retry_after_is_honoured_for_that_chat_only():
    fake = limited_telegram()
    slow = tg_user(uid=8200001001, first="Медленный", last=None, username=None, lang="ru")
    other = tg_user(uid=8200001002, first="Другой", last=None, username=None, lang="ru")
    fake.force_429(slow["id"], 2)
    with demo_gateway(fake) as gw:
        post_ok(gw, tg_message(1, "Привет", user=slow))
        post_ok(gw, tg_message(2, "где мой заказ", user=slow))
        first = fake.wait_for(lambda: fake.calls("sendMessage"), timeout=15,
                              what="the first attempt")[0]
        assert_eq((first.status, str(first.params["chat_id"])), (429, str(slow["id"])),
                  "the first attempt is refused with 429")
        # Another customer is answered meanwhile.
        post_ok(gw, tg_message(1, "Добрый вечер", user=other))
        wait_texts(fake, other["id"], 1, timeout=10)
        got = wait_texts(fake, slow["id"], 2, timeout=15)
        _check_chat(fake, slow["id"], ["Здравствуйте! 👋", "номер заказа"])
        attempts = [r for r in fake.calls("sendMessage")
                    if str(r.params["chat_id"]) == str(slow["id"])]
        assert_eq([r.status for r in attempts], [429, 200, 200], "attempts to the slow chat")
        wait = attempts[1].time - attempts[0].time
        if wait < 2.0 - JITTER:
            fail("retried %.3f s after a 429 with retry_after=2" % wait)
        if wait > 6.0:
            fail("retried only %.3f s after a 429 with retry_after=2" % wait)
        other_t = sends(fake, other["id"])[0].time
        if not attempts[0].time < other_t < attempts[1].time:
            fail("the other chat waited for the slow chat's retry_after")
        rows = replies(gw.db, slow["id"])
        assert_eq([r["delivery_status"] for r in rows], ["sent", "sent"], "slow chat rows")
        assert_eq(rows[0]["retry_count"], 0, "a 429 is not a failed attempt")
        assert_eq(got[0], rows[0]["content"], "the reply that waited is the first one")
        check_limits(fake)


def _episodes(attempts, gap=0.25):
    """Attempts grouped into the dispatcher's tries: libcurl itself resends
    at once a request whose reused connection died unanswered."""
    eps = []
    for r in attempts:
        if eps and r.time - eps[-1][-1].time < gap:
            eps[-1].append(r)
        else:
            eps.append([r])
    return eps


def test_server_errors_and_network_drops_are_retried():
    fake = limited_telegram()
    u = tg_user(uid=8200002001, first="Ольга", last=None, username=None, lang="ru")
    fake.fail_next(1, status=502, method="sendMessage")
    fake.fail_next(2, status="drop", method="sendMessage")
    with demo_gateway(fake) as gw:
        post_ok(gw, tg_message(1, "Здравствуйте", user=u))
        post_ok(gw, tg_message(2, "где мой заказ", user=u))
        wait_texts(fake, u["id"], 2, timeout=25)
        assert_quiet(fake, u["id"], 2, 0.6)
        _check_chat(fake, u["id"], ["Здравствуйте! 👋", "номер заказа"])
        attempts = fake.calls("sendMessage")
        assert_eq([r.status for r in attempts], [502, 0, 0, 200, 200], "attempts")
        eps = _episodes(attempts[:4])
        tries = len(eps)
        if tries < 3:
            fail("the failures were not retried by the dispatcher: %r" % eps)
        # Exponential backoff between the dispatcher's tries: ~1 s, ~2 s, ~4 s.
        for k in range(1, tries):
            g = eps[k][0].time - eps[k - 1][-1].time
            lo = 2.0 ** (k - 1)
            if g < lo - JITTER:
                fail("try %d came %.3f s after the failure (backoff >= %.1f s expected)" %
                     (k + 1, g, lo))
        rows = replies(gw.db, u["id"])
        assert_eq([r["delivery_status"] for r in rows], ["sent", "sent"], "rows")
        assert_eq(rows[0]["retry_count"], tries - 1, "retry_count of the reply that failed")
        assert_eq(rows[0]["failed_reason"], None, "failed_reason cleared once sent")
        assert_eq(rows[1]["retry_count"], 0, "retry_count of the next reply")


def test_blocked_customer_fails_with_reason_and_is_undeliverable():
    fake = limited_telegram()
    blocked = tg_user(uid=8200003001, first="Заблокировал", last=None, username=None, lang="ru")
    fine = tg_user(uid=8200003002, first="Нормальный", last=None, username=None, lang="ru")
    fake.blocked_chats.add(str(blocked["id"]))
    with demo_gateway(fake) as gw:
        post_ok(gw, tg_message(1, "Привет", user=blocked))
        post_ok(gw, tg_message(2, "где мой заказ", user=blocked))
        post_ok(gw, tg_message(1, "Привет", user=fine))
        wait_texts(fake, fine["id"], 1)

        def settled():
            rows = replies(gw.db, blocked["id"])
            return len(rows) == 2 and all(r["delivery_status"] == "failed" for r in rows)
        eftest.wait_until(settled, timeout=15, what="both replies of the blocked chat failed")
        for r in replies(gw.db, blocked["id"]):
            if "bot was blocked by the user" not in (r["failed_reason"] or ""):
                fail("failed_reason %r does not say why" % r["failed_reason"])
        c = conversation(gw.db, blocked["id"])
        assert_eq(c["undeliverable"], True, "conversation undeliverable")
        if "blocked" not in (c["undeliverable_reason"] or ""):
            fail("undeliverable_reason %r" % c["undeliverable_reason"])
        # A 403 is final: never retried.
        time.sleep(1.0)
        n = len([r for r in fake.calls("sendMessage")
                 if str(r.params["chat_id"]) == str(blocked["id"])])
        if n > 2:
            fail("%d attempts for the blocked chat's 2 replies: a 403 was retried" % n)
        assert_eq(conversation(gw.db, fine["id"])["undeliverable"], False, "other chat")
        # While undeliverable, a reply queued for the chat (an operator's, a
        # late one) fails without a request.
        before = len(fake.calls("sendMessage"))
        cid, sid, uid = psql(gw.db, "SELECT id, session_id, user_id FROM conversations WHERE "
                                    "chat_id = %s" % lit(str(blocked["id"])))[0]
        psql(gw.db, "INSERT INTO messages (conversation_id, session_id, user_id, content, role, "
                    "direction, platform, metadata, delivery_status, next_attempt_at, "
                    "created_at) VALUES (%s, %s, %s, 'Заказ в пути', 'assistant', 'outbound', "
                    "'telegram', '{}', 'queued', now(), clock_timestamp())" %
             (lit(cid), lit(sid), lit(uid)))

        def later_failed():
            rows = replies(gw.db, blocked["id"])[2:]
            return rows and all(r["delivery_status"] == "failed" for r in rows) and rows
        for r in eftest.wait_until(later_failed, timeout=10, what="the later replies failed"):
            if "undeliverable" not in (r["failed_reason"] or ""):
                fail("later reply's failed_reason %r" % r["failed_reason"])
        assert_eq(len(fake.calls("sendMessage")), before, "requests for an undeliverable chat")
        # The customer writes again: deliverable again (who can write has
        # unblocked the bot), so the answer is tried (this fake still refuses).
        post_ok(gw, tg_message(3, "спасибо", user=blocked))
        fake.wait_for(lambda: len(fake.calls("sendMessage")) > before, timeout=10,
                      what="a request after the customer wrote")


def test_bad_request_fails_the_reply_and_the_next_one_goes_on():
    fake = limited_telegram()
    u = tg_user(uid=8200003501, first="Bad", last=None, username=None, lang="ru")
    fake.fail_next(1, status=400, method="sendMessage")
    with demo_gateway(fake) as gw:
        post_ok(gw, tg_message(1, "Привет", user=u))
        post_ok(gw, tg_message(2, "где мой заказ", user=u))
        wait_texts(fake, u["id"], 1, timeout=10)
        assert_quiet(fake, u["id"], 1, 1.5)
        _check_chat(fake, u["id"], ["номер заказа"])
        rows = replies(gw.db, u["id"])
        assert_eq([r["delivery_status"] for r in rows], ["failed", "sent"], "rows")
        if not (rows[0]["failed_reason"] or "").startswith("400"):
            fail("failed_reason of a 400: %r" % rows[0]["failed_reason"])
        assert_eq(conversation(gw.db, u["id"])["undeliverable"], False,
                  "a 400 does not make the chat undeliverable")
