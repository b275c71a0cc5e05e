"""02-poll-errors: the poller rides out Bot API trouble: 5xx and dropped
connections are retried with backoff until updates flow again; a revoked
token (401) and an active webhook (409) are logged in words an operator can
act on, and the token itself never appears in the log."""

import time

import eftest
from eftest import Gateway, assert_eq, count, fail, poll_env, tg_message, tg_user


def wait_stored(gw, n, timeout=60):
    eftest.wait_until(lambda: count(gw.db, "messages WHERE direction = 'inbound'") >= n,
                      timeout=timeout, interval=0.2, what="%d stored messages" % n)


def _token_secret(token):
    return token.split(":", 1)[1]


def test_5xx_then_recovery_with_backoff():
    tg = eftest.fake_telegram()
    tg.fail_next(2, 502, method="getUpdates")
    tg.fail_next(1, 500, method="getUpdates")
    tg.fail_next(1, 503, method="getUpdates")
    user = tg_user(uid=7400000001)
    tg.push_updates([tg_message(i, "после сбоя %d" % i, user=user) for i in range(1, 4)])
    with Gateway(env=poll_env(tg)) as gw:
        wait_stored(gw, 3)
        calls = tg.calls("getUpdates")
        failed = [r for r in calls if (r.status or 0) >= 500]
        assert_eq(len(failed), 4, "failed getUpdates calls")
        ok = [r for r in calls if r.status == 200]
        if not ok or ok[0].time < failed[-1].time:
            fail("no successful getUpdates after the failures")
        # Backoff: the retries are spaced out, not a tight loop.
        gaps = [b.time - a.time for a, b in zip(failed, failed[1:] + [ok[0]])]
        if min(gaps) < 0.05 or sum(gaps) < 0.5:
            fail("retries after 5xx not backed off: gaps %r" % [round(g, 3) for g in gaps])
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 3, "rows")
        gw.assert_alive("Bot API 5xx")


def test_network_drops_then_recovery():
    tg = eftest.fake_telegram()
    tg.fail_next(3, "drop", method="getUpdates")
    user = tg_user(uid=7400000002)
    tg.push_updates([tg_message(i, "обрыв связи %d" % i, user=user) for i in range(1, 3)])
    with Gateway(env=poll_env(tg)) as gw:
        wait_stored(gw, 2)
        # A drop in the middle of a working stream is survived as well.
        tg.fail_next(2, "drop", method="getUpdates")
        tg.push_updates([tg_message(i, "снова обрыв %d" % i, user=user) for i in range(3, 5)])
        wait_stored(gw, 4)
        assert_eq(count(gw.db, "messages WHERE direction = 'inbound'"), 4, "rows")


def test_bot_api_unreachable_then_up():
    """The Bot API host refuses connections for a while (nothing listening)."""
    port = eftest.free_port()
    user = tg_user(uid=7400000003)
    env = {"TELEGRAM_MODE": "poll", "TELEGRAM_BOT_TOKEN": "123456789:AAHfake-Token_unreachable",
           "TELEGRAM_API_URL": "http://127.0.0.1:%d" % port}
    with Gateway(env=env) as gw:
        time.sleep(2)
        gw.assert_alive("the Bot API refusing connections")
        # Now the API comes up on that port.
        tg = eftest.fake_telegram(token=env["TELEGRAM_BOT_TOKEN"], port=port)
        tg.push_update(tg_message(1, "сервер вернулся", user=user))
        wait_stored(gw, 1, timeout=90)


def test_unauthorized_token_logged():
    tg = eftest.fake_telegram(token="987654321:AAHreal-token-of-another-bot_xyz")
    token = "123456789:AAHrevoked-Token_nobody-should-see-1"
    with Gateway(env=poll_env(tg, token=token)) as gw:
        tg.wait_for(lambda: [r for r in tg.calls("getUpdates") if r.status == 401], timeout=15,
                    what="a 401 from getUpdates")
        line = gw.wait_log(r"(?=.*401)(?=.*token)", timeout=10)
        if _token_secret(token) in line:
            fail("the token is in the log line: %s" % line)
        # It does not hammer the API with a token that cannot work.
        time.sleep(2)
        n = len(tg.calls("getUpdates"))
        if n > 10:
            fail("%d getUpdates calls within ~2s of a 401" % n)
        gw.assert_alive("a 401")
        assert_eq(gw.healthz().status in (200, 503), True, "healthz answers")
    if _token_secret(token) in gw.log_text():
        fail("the bot token appears in the gateway log")


def test_webhook_conflict_logged_and_recovers():
    tg = eftest.fake_telegram()
    tg.set_webhook_active()
    user = tg_user(uid=7400000004)
    tg.push_update(tg_message(1, "после удаления вебхука", user=user))
    with Gateway(env=poll_env(tg)) as gw:
        tg.wait_for(lambda: [r for r in tg.calls("getUpdates") if r.status == 409] or
                    tg.calls("deleteWebhook"), timeout=15, what="a 409 or a deleteWebhook")
        if not tg.calls("deleteWebhook"):
            gw.wait_log(r"(?=.*webhook)(?=.*(409|conflict|deletewebhook))", timeout=10)
            # The operator removes the webhook: polling resumes by itself.
            tg.webhook_url = ""
        wait_stored(gw, 1, timeout=90)
        assert_eq(eftest.message_by_pmid(gw.db, "7400000004:1")["content"],
                  "после удаления вебхука")
    if _token_secret(tg.token) in gw.log_text():
        fail("the bot token appears in the gateway log")
