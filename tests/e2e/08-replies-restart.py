"""08-replies-restart: replies still queued when the gateway stops (SIGTERM)
or dies (SIGKILL) are delivered after the restart, in order per chat, none
lost; after SIGTERM none is sent twice, after SIGKILL at most the one in
flight per chat. The restarted dispatcher stays within the limits too."""

import time

from eftest import assert_eq, fail, post_ok, psql1, tg_message, tg_user
from reply_helpers import check_limits, demo_gateway, limited_telegram, replies, sends, texts


def _restart_case(kill):
    fake = limited_telegram()
    users = [tg_user(uid=8200004000 + i + (100 if kill else 0), first="Р%d" % i, last=None,
                     username=None, lang="ru") for i in range(5)]
    script = ["Привет", "где мой заказ", "A-4242"]
    expected = ["Здравствуйте! 👋", "номер заказа", "Заказ A-4242"]
    with demo_gateway(fake) as gw:
        for u in users:
            for k, text in enumerate(script):
                post_ok(gw, tg_message(k + 1, text, user=u))
        # 15 replies, at most one per second per chat: about 2 s. Stop early.
        fake.wait_for(lambda: len(sends(fake)) >= 4, timeout=15, what="the first replies")
        if kill:
            gw.kill()
        else:
            gw.stop()
        queued = int(psql1(gw.db, "SELECT count(*) FROM messages WHERE role = 'assistant' AND "
                                  "delivery_status = 'queued'"))
        if queued == 0:
            fail("nothing was left queued at the stop: the test did not test a restart")
        sent_before = len(sends(fake))
        if not kill:
            # What was sent is recorded as sent: the rows match the fake.
            n = int(psql1(gw.db, "SELECT count(*) FROM messages WHERE role = 'assistant' AND "
                                 "delivery_status = 'sent'"))
            assert_eq(n, sent_before, "rows recorded sent at SIGTERM vs replies accepted")
        gw.start()
        fake.wait_for(lambda: psql1(gw.db, "SELECT count(*) FROM messages WHERE role = "
                                           "'assistant' AND delivery_status = 'queued'") == "0",
                      timeout=30, what="the queue to drain after the restart")
        time.sleep(1.0)
        for u in users:
            got = texts(fake, u["id"])
            if kill:
                # At least once: a request in flight at SIGKILL may go twice.
                dedup = [t for i, t in enumerate(got) if i == 0 or t != got[i - 1]]
                if len(got) - len(dedup) > 1:
                    fail("chat %s: more than one reply repeated after SIGKILL: %r" %
                         (u["id"], got))
                got = dedup
            if len(got) != 3:
                fail("chat %s: expected 3 replies after the restart, got %r" % (u["id"], got))
            for t, want in zip(got, expected):
                if want not in t:
                    fail("chat %s: replies out of order or wrong: %r" % (u["id"], got))
        rows = replies(gw.db)
        assert_eq(len(rows), 15, "reply rows")
        assert_eq(sorted(set(r["delivery_status"] for r in rows)), ["sent"], "statuses")
        check_limits(fake)
        return sent_before


def test_sigterm_with_replies_queued_resumes_after_restart():
    _restart_case(kill=False)


def test_sigkill_with_replies_queued_resumes_after_restart():
    _restart_case(kill=True)
