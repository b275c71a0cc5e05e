"""11-integrations-routing: two Telegram bots served by one gateway, each on
its own URL with its own secret, bot file and token; the variables of today
still serve the default bot on /webhook/telegram; a bot added or disabled with
the CLI is served (or not) by the running gateway within seconds; a revoked
token takes only its own bot down, with a status an operator can read."""

import time

import eftest
from eftest import (assert_eq, assert_status, fail, fresh_db, lit, post_ok, psql, tg_message,
                    tg_user)
from integration_helpers import (SECRET_A, SECRET_B, TOKEN_A, TOKEN_B, add_telegram, bot_file,
                                 cli, integration_status, integrations,
                                 integrations_gateway, post_to, texts_of, two_bot_fake,
                                 wait_reply)

UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def _two_bots(db, poll_a=False):
    a = add_telegram(db, "bot-a", TOKEN_A, SECRET_A, bot=bot_file("бот А"),
                     settings=["mode=poll"] if poll_a else ())
    b = add_telegram(db, "bot-b", TOKEN_B, SECRET_B, bot=bot_file("бот Б"))
    return a, b


def _has(texts, part, what):
    if not any(part in (t or "") for t in texts):
        fail("%s: no reply containing %r in %r" % (what, part, texts))


def test_two_bots_each_answer_with_their_own_bot_token_and_secret():
    tg = two_bot_fake()
    db = fresh_db()
    a, b = _two_bots(db)
    user = tg_user(uid=8400000001)
    with integrations_gateway(tg, db=db) as gw:
        # The same customer (same chat id) writes to both bots.
        assert_status(post_to(gw, a, tg_message(1, "привет", user=user), SECRET_A), 200, "bot A")
        assert_status(post_to(gw, b, tg_message(1, "привет", user=user), SECRET_B), 200, "bot B")
        _has(wait_reply(tg, TOKEN_A, user["id"]), "бот А", "bot A's reply")
        _has(wait_reply(tg, TOKEN_B, user["id"]), "бот Б", "bot B's reply")
        for t in texts_of(tg, TOKEN_A, user["id"]):
            if "бот Б" in t:
                fail("bot A answered with bot B's words: %r" % t)
        # Each URL checks its own secret.
        upd = tg_message(2, "чужой секрет", user=user)
        for iid, bad in ((a, SECRET_B), (b, SECRET_A), (a, None), (b, None), (a, "x" * 20)):
            assert_status(post_to(gw, iid, upd, bad), 401, "secret %r on %s" % (bad, iid))
        assert_status(post_to(gw, UNKNOWN_ID, upd, SECRET_A), 404, "an unknown integration id")
    # Two conversations for one chat id, every row tagged with its bot.
    convs = psql(db, "SELECT integration_id FROM conversations WHERE chat_id = %s "
                     "ORDER BY integration_id" % lit(str(user["id"])))
    assert_eq(sorted(r[0] for r in convs), sorted([a, b]), "conversations of the chat, by bot")
    untagged = psql(db, "SELECT count(*) FROM messages WHERE integration_id IS NULL")
    assert_eq(untagged, [["0"]], "messages without integration_id")
    inbound = psql(db, "SELECT integration_id, count(*) FROM messages WHERE direction = "
                       "'inbound' GROUP BY 1 ORDER BY 1")
    assert_eq(inbound, sorted([[a, "1"], [b, "1"]]), "inbound messages per bot (the refused "
              "ones not among them)")


def test_environment_variables_still_serve_the_default_bot():
    tg = two_bot_fake()
    db = fresh_db()
    env = {"TELEGRAM_BOT_TOKEN": TOKEN_A, "EF_BOT_FILE": bot_file("бот А")}
    user = tg_user(uid=8400000002)
    gw = integrations_gateway(tg, db=db, env=env, secret=SECRET_A)
    post_ok(gw, tg_message(1, "привет", user=user))
    _has(wait_reply(tg, TOKEN_A, user["id"]), "бот А", "the default bot's reply")
    gw.restart()  # start again: the default integration is updated, not duplicated
    post_ok(gw, tg_message(2, "привет", user=user))
    wait_reply(tg, TOKEN_A, user["id"], n=2)
    gw.stop()
    rows = [r for r in integrations(db).values() if r["platform"] == "telegram"]
    assert_eq([r["name"] for r in rows], ["default"], "telegram integrations after two starts")


def test_added_while_running_is_served_and_disabled_is_not():
    tg = two_bot_fake()
    db = fresh_db()
    a = add_telegram(db, "bot-a", TOKEN_A, SECRET_A, bot=bot_file("бот А"))
    user = tg_user(uid=8400000003)
    with integrations_gateway(tg, db=db) as gw:
        assert_status(post_to(gw, a, tg_message(1, "привет", user=user), SECRET_A), 200)
        b = add_telegram(db, "bot-b", TOKEN_B, SECRET_B, bot=bot_file("бот Б"))
        first = tg_message(1, "привет", user=user)
        t0 = time.monotonic()
        eftest.wait_until(lambda: post_to(gw, b, first, SECRET_B).status == 200, timeout=10,
                          interval=0.25, what="the new integration served without a restart")
        print("added integration served after %.1fs" % (time.monotonic() - t0))
        _has(wait_reply(tg, TOKEN_B, user["id"]), "бот Б", "the new bot's reply")
        assert_eq(cli(db, "disable", b).code, 0, "exit code of disable")
        eftest.wait_until(lambda: post_to(gw, b, first, SECRET_B).status == 404, timeout=10,
                          interval=0.25, what="the disabled integration's URL to answer 404")
        assert_status(post_to(gw, a, tg_message(2, "привет", user=user), SECRET_A), 200,
                      "the other bot while one is disabled")
        assert_eq(cli(db, "enable", b).code, 0, "exit code of enable")
        eftest.wait_until(lambda: post_to(gw, b, first, SECRET_B).status == 200, timeout=10,
                          interval=0.25, what="the enabled integration served again")


def _error_status(db, iid, timeout=20):
    """Waits until `integration list` shows iid in status error; returns its
    status_message."""
    row = eftest.wait_until(lambda: (lambda r: r if r["status"] == "error" else None)(
        integration_status(db, iid)), timeout=timeout, interval=0.5,
        what="integration %s in status error" % iid)
    msg = row["status_message"].strip()
    if len(msg) < 8 or TOKEN_A in msg or TOKEN_A.split(":")[1] in msg:
        fail("status_message is not a readable reason without the token: %r" % msg)
    return msg


def _quiet(tg, token, method, secs=3.0, meanwhile=None):
    """No new call with token for secs seconds (after meanwhile() was done)."""
    n = len(tg.calls(method, token=token))
    if meanwhile:
        meanwhile()
    time.sleep(secs)
    got = len(tg.calls(method, token=token))
    if got != n:
        fail("%d more %s calls with the revoked token within %.0fs" % (got - n, method, secs))


def test_revoked_token_marks_its_bot_error_and_the_other_keeps_answering():
    tg = two_bot_fake()
    db = fresh_db()
    a, b = _two_bots(db)
    user = tg_user(uid=8400000004)
    with integrations_gateway(tg, db=db) as gw:
        assert_status(post_to(gw, a, tg_message(1, "привет", user=user), SECRET_A), 200)
        wait_reply(tg, TOKEN_A, user["id"])
        tg.revoke(TOKEN_A)
        assert_status(post_to(gw, a, tg_message(2, "привет", user=user), SECRET_A), 200,
                      "an update for the revoked bot (stored, the reply cannot go)")
        print("status_message: %s" % _error_status(db, a))
        # Its sends stop (a new message to it gets no send attempt); the
        # other bot answers as before.
        _quiet(tg, TOKEN_A, "sendMessage", meanwhile=lambda: assert_status(
            post_to(gw, a, tg_message(3, "привет", user=user), SECRET_A), 200))
        assert_status(post_to(gw, b, tg_message(1, "привет", user=user), SECRET_B), 200)
        _has(wait_reply(tg, TOKEN_B, user["id"]), "бот Б", "the other bot's reply")
        gw.wait_healthy()
    assert_eq(integration_status(db, b)["status"] != "error", True, "the other bot not in error")


def test_revoked_token_stops_its_poller():
    tg = two_bot_fake()
    db = fresh_db()
    a, b = _two_bots(db, poll_a=True)
    user = tg_user(uid=8400000005)
    with integrations_gateway(tg, db=db) as gw:
        tg.push_update(tg_message(1, "привет", user=user), token=TOKEN_A)
        _has(wait_reply(tg, TOKEN_A, user["id"]), "бот А", "the polling bot's reply")
        tg.revoke(TOKEN_A)
        _error_status(db, a)
        _quiet(tg, TOKEN_A, "getUpdates")
        assert_status(post_to(gw, b, tg_message(1, "привет", user=user), SECRET_B), 200)
        _has(wait_reply(tg, TOKEN_B, user["id"]), "бот Б", "the webhook bot's reply")
    stored = psql(db, "SELECT integration_id FROM messages WHERE direction = 'inbound' "
                      "ORDER BY created_at")
    assert_eq([r[0] for r in stored], [a, b], "inbound messages: the polled one, then bot B's")
