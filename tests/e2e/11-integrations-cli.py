"""11-integrations-cli: `easyflow integration add|list|disable|enable|
rotate-key` as an operator uses them: add prints the id and the webhook URL
to register, list shows every bot with its status and never a credential,
bad input is refused with a message naming the problem and stores nothing,
rotate-key re-encrypts every row, and the database never holds a credential
in clear."""

import re

from eftest import (assert_eq, assert_status, count, fail, fresh_db, pg_dump, post_ok,
                    tg_message, tg_user)
from integration_helpers import (KEY, KEY_2, SECRET_A, SECRET_B, STATUSES, TOKEN_A, TOKEN_B, UUID,
                                 add_telegram, bot_file, cli, creds, integration_status,
                                 integrations, integrations_gateway, post_to, two_bot_fake,
                                 wait_reply)


def test_add_prints_the_id_and_the_webhook_url_and_list_shows_it():
    db = fresh_db()
    r = cli(db, "add", "telegram", "--name", "shop-bot", "--bot", bot_file("бот А"),
            stdin=creds(TOKEN_A, SECRET_A))
    assert_eq(r.code, 0, "exit code of integration add (stderr %r)" % r.err)
    lines = r.out.splitlines()
    iid = lines[0].strip() if lines else ""
    if not UUID.match(iid):
        fail("the first stdout line is not the new id alone: %r" % r.out)
    if len(lines) < 2 or not lines[1].startswith("webhook: POST ") or \
            not lines[1].endswith("/webhook/telegram/" + iid):
        fail("second line is not `webhook: POST <base>/webhook/telegram/%s`: %r" % (iid, r.out))
    r = cli(db, "list")
    assert_eq(r.code, 0, "exit code of integration list")
    if len(r.out.splitlines()) != 2:
        fail("integration list: expected a header and one line, got %r" % r.out)
    row = integrations(db)[iid]
    assert_eq((row["platform"], row["name"]), ("telegram", "shop-bot"), "listed platform, name")
    if row["status"] not in STATUSES:
        fail("status %r is none of %s" % (row["status"], "|".join(STATUSES)))
    for secret in (TOKEN_A, TOKEN_A.split(":")[1], SECRET_A):
        if secret in r.out + r.err:
            fail("integration list shows a credential: %r" % r.out)


def test_bad_input_is_refused_naming_the_problem_and_stores_nothing():
    db = fresh_db()
    good = creds(TOKEN_A, SECRET_A)
    cases = [
        # (what, args, stdin, environment changes, words one of which the
        # message on stderr must contain)
        ("unknown platform", ["add", "viber", "--name", "x"], good, {}, ("viber", "platform")),
        ("no --name", ["add", "telegram"], good, {}, ("name",)),
        ("credentials not JSON", ["add", "telegram", "--name", "x"], "bot_token=1", {},
         ("json",)),
        ("no bot_token", ["add", "telegram", "--name", "x"],
         '{"secret_token": "%s"}' % SECRET_A, {}, ("bot_token", "bot token")),
        ("secret_token of 15 characters", ["add", "telegram", "--name", "x"],
         creds(TOKEN_A, "fifteen-chars-x"), {}, ("secret_token", "secret token")),
        ("EF_SECRET_KEY unset", ["add", "telegram", "--name", "x"], good,
         {"EF_SECRET_KEY": None}, ("EF_SECRET_KEY",)),
        ("EF_SECRET_KEY not 64 hex digits", ["add", "telegram", "--name", "x"], good,
         {"EF_SECRET_KEY": "00ff"}, ("EF_SECRET_KEY",)),
    ]
    wrong = []
    for what, args, stdin, env, words in cases:
        r = cli(db, *args, stdin=stdin, env=env)
        if r.code == 0 or not any(w.lower() in r.err.lower() for w in words):
            wrong.append("%s: exit %d, stderr %r" % (what, r.code, r.err[-300:]))
        if TOKEN_A in r.out + r.err or SECRET_A in r.out + r.err:
            wrong.append("%s: a credential was echoed back" % what)
    if wrong:
        fail("bad input not refused as it should be:\n  " + "\n  ".join(wrong))
    assert_eq(integrations(db), {}, "integrations listed after refused input")
    assert_eq(count(db, "integrations"), 0, "integration rows after refused input")


def test_disable_and_enable_show_in_the_list():
    db = fresh_db()
    iid = add_telegram(db, "bot-a", TOKEN_A, SECRET_A, bot=bot_file("бот А"))
    enabled = integration_status(db, iid)
    r = cli(db, "disable", iid)
    assert_eq(r.code, 0, "exit code of disable (stderr %r)" % r.err)
    disabled = integration_status(db, iid)  # still listed, not deleted
    if disabled == enabled:
        fail("`integration list` does not show that the bot is disabled: %r" % disabled)
    if disabled["status"] not in STATUSES:
        fail("status %r is none of %s" % (disabled["status"], "|".join(STATUSES)))
    r = cli(db, "enable", iid)
    assert_eq(r.code, 0, "exit code of enable (stderr %r)" % r.err)
    if integration_status(db, iid) == disabled:
        fail("`integration list` still shows the bot disabled after enable: %r" % disabled)
    r = cli(db, "disable", "00000000-0000-4000-8000-000000000000")
    if r.code == 0:
        fail("disable of an unknown id exited 0")


def test_rotate_key_rewrites_every_row_and_the_gateway_reads_them_with_the_new_key():
    db = fresh_db()
    a = add_telegram(db, "bot-a", TOKEN_A, SECRET_A, bot=bot_file("бот А"))
    add_telegram(db, "bot-b", TOKEN_B, SECRET_B, bot=bot_file("бот Б"))
    before = pg_dump(db)
    r = cli(db, "rotate-key", key=KEY_2, env={"EF_SECRET_KEY_OLD": KEY})
    assert_eq(r.code, 0, "exit code of rotate-key (stderr %r)" % r.err)
    if not re.search(r"\b2\b", r.out):
        fail("rotate-key does not say it rewrote 2 rows: %r" % r.out)
    if pg_dump(db) == before:
        fail("rotate-key left the database as it was")
    # Only the new key from now on: the gateway still serves bot A.
    tg = two_bot_fake()
    user = tg_user(uid=8300000001)
    with integrations_gateway(tg, db=db, env={"EF_SECRET_KEY": KEY_2}) as gw:
        assert_status(post_to(gw, a, tg_message(1, "привет", user=user), SECRET_A), 200,
                      "an update for bot A after the rotation")
        wait_reply(tg, TOKEN_A, user["id"])
    # Rotating again (the old key listed among several) rewrites both again,
    # and the web chat's default integration the gateway made at its start.
    r = cli(db, "rotate-key", key=KEY, env={"EF_SECRET_KEY_OLD": "%s,%s" % ("ab" * 32, KEY_2)})
    assert_eq(r.code, 0, "exit code of the second rotate-key (stderr %r)" % r.err)
    if not re.search(r"\b3\b", r.out):
        fail("the second rotate-key does not say it rewrote 3 rows: %r" % r.out)
    assert_eq(len(integrations(db, key=KEY)), 3, "integrations listed under the key of now")


def test_no_credential_in_clear_in_the_database_the_list_or_the_log():
    tg = two_bot_fake()
    db = fresh_db()
    a = add_telegram(db, "bot-a", TOKEN_A, SECRET_A, bot=bot_file("бот А"))
    user = tg_user(uid=8300000002)
    env = {"TELEGRAM_BOT_TOKEN": TOKEN_B, "EF_BOT_FILE": bot_file("бот Б")}
    with integrations_gateway(tg, db=db, env=env, secret=SECRET_B) as gw:
        # Both bots in use: the default one (environment) and the added one.
        assert_status(post_to(gw, a, tg_message(1, "привет", user=user), SECRET_A), 200)
        post_ok(gw, tg_message(2, "привет", user=user))
        wait_reply(tg, TOKEN_A, user["id"])
        wait_reply(tg, TOKEN_B, user["id"])
        log = gw.log_text()
    listed = cli(db, "list")
    dump = pg_dump(db)
    for name, text in (("pg_dump", dump), ("integration list", listed.out + listed.err),
                       ("the gateway log", log)):
        for secret in (TOKEN_A, TOKEN_B, TOKEN_A.split(":")[1], TOKEN_B.split(":")[1],
                       SECRET_A, SECRET_B):
            if secret in text:
                fail("%s contains the credential %r in clear" % (name, secret[:12] + "..."))
    bots = [i for i in integrations(db).values() if i["platform"] == "telegram"]
    if len(bots) != 2:
        fail("expected the added and the default integration listed: %r" % integrations(db))
