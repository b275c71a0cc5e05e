"""26-sealed-credentials: an integration's credentials are sealed bound to
its id (AES-256-GCM with the id as associated data, under a key derived from
EF_SECRET_KEY with HKDF). A sealed blob copied into another row with psql
does not open there: that integration reports an error naming the problem,
the gateway goes on serving the others, and no credential shows anywhere.
A blob in the format of before (the raw key, no associated data) still
opens and is re-sealed bound to its row, so nobody loses an integration on
upgrade; `integration rotate-key` re-seals such rows too."""

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from eftest import (assert_eq, assert_status, fail, fresh_db, psql, psql1, tg_message, tg_user,
                    wait_until)
from integration_helpers import (KEY, KEY_2, SECRET_A, SECRET_B, TOKEN_A, TOKEN_B, add_telegram,
                                 bot_file, cli, creds, integration_status, integrations_gateway,
                                 post_to, two_bot_fake, wait_reply)

SECRETS = (TOKEN_A, TOKEN_B, TOKEN_A.split(":")[1], TOKEN_B.split(":")[1], SECRET_A, SECRET_B,
           KEY, KEY_2)


def sealed_hex(db, iid):
    return psql1(db, "SELECT encode(credentials_encrypted, 'hex') FROM integrations "
                     "WHERE id = '%s'" % iid)


def legacy_blob(plain):
    """What the gateway sealed before: "EF1" | nonce | AES-256-GCM under the
    raw EF_SECRET_KEY, the magic as the only associated data."""
    nonce = os.urandom(12)
    return b"EF1" + nonce + AESGCM(bytes.fromhex(KEY)).encrypt(nonce, plain.encode(), b"EF1")


def no_secret_in(what, text):
    for s in SECRETS:
        if s in text:
            fail("%s shows a credential (%r...)" % (what, s[:10]))


def wait_status(db, iid, status, timeout=20.0):
    wait_until(lambda: integration_status(db, iid)["status"] == status, timeout=timeout,
                what="integration %s %s" % (iid, status))
    return integration_status(db, iid)


def test_a_blob_copied_to_another_row_does_not_open_there():
    db = fresh_db()
    a = add_telegram(db, "bot-a", TOKEN_A, SECRET_A, bot=bot_file("бот А"))
    b = add_telegram(db, "bot-b", TOKEN_B, SECRET_B, bot=bot_file("бот Б"))
    if not sealed_hex(db, a).startswith("454632"):  # "EF2"
        fail("integration add did not seal in the bound format: %r" % sealed_hex(db, a)[:6])
    psql(db, "UPDATE integrations SET credentials_encrypted = (SELECT credentials_encrypted "
             "FROM integrations WHERE id = '%s'), encryption_key_id = (SELECT encryption_key_id "
             "FROM integrations WHERE id = '%s') WHERE id = '%s'" % (a, a, b))
    tg = two_bot_fake()
    user = tg_user(uid=8326000001)
    with integrations_gateway(tg, db=db) as gw:
        st = wait_status(db, b, "error")
        msg = st["status_message"].lower()
        if "another integration" not in msg and "copied" not in msg:
            fail("bot B's error does not name the problem: %r" % st["status_message"])
        # Bot A still works; bot B is not served (its own secret is refused,
        # and A's secret on B's URL too: B does not become A).
        assert_status(post_to(gw, a, tg_message(1, "привет", user=user), SECRET_A), 200,
                      "an update for bot A")
        wait_reply(tg, TOKEN_A, user["id"])
        for secret in (SECRET_B, SECRET_A):
            r = post_to(gw, b, tg_message(2, "привет", user=user), secret)
            if r.status == 200:
                fail("bot B accepted an update with credentials copied from bot A")
        assert_status(gw.get("/livez"), 200, "/livez after a row that does not open")
        log = gw.log_text()
    no_secret_in("the gateway log", log)
    no_secret_in("bot B's status message", st["status_message"])
    # rotate-key cannot open it either: says so, names the row, crashes not.
    r = cli(db, "rotate-key", key=KEY_2, env={"EF_SECRET_KEY_OLD": KEY})
    if r.code == 0 or b not in r.err:
        fail("rotate-key over a copied blob: exit %d, stderr %r" % (r.code, r.err))
    no_secret_in("rotate-key's output", r.out + r.err)


def test_a_blob_of_the_old_format_opens_and_is_resealed():
    db = fresh_db()
    a = add_telegram(db, "bot-a", TOKEN_A, SECRET_A, bot=bot_file("бот А"))
    b = add_telegram(db, "bot-b", TOKEN_B, SECRET_B, bot=bot_file("бот Б"))
    for iid, token, secret in ((a, TOKEN_A, SECRET_A), (b, TOKEN_B, SECRET_B)):
        psql(db, "UPDATE integrations SET credentials_encrypted = '\\x%s'::bytea WHERE id = '%s'"
             % (legacy_blob(creds(token, secret)).hex(), iid))
    # The gateway opens the old blob of A and re-seals it bound to A.
    tg = two_bot_fake()
    user = tg_user(uid=8326000002)
    with integrations_gateway(tg, db=db) as gw:
        assert_status(post_to(gw, a, tg_message(1, "привет", user=user), SECRET_A), 200,
                      "an update for bot A sealed in the old format")
        wait_reply(tg, TOKEN_A, user["id"])
        wait_until(lambda: sealed_hex(db, a).startswith("454632"), timeout=20,
                    what="bot A's credentials re-sealed in the bound format")
        wait_until(lambda: sealed_hex(db, b).startswith("454632"), timeout=20,
                    what="bot B's credentials re-sealed in the bound format")
        no_secret_in("the gateway log", gw.log_text())
    # rotate-key re-seals an old blob as well (same key: only the format).
    psql(db, "UPDATE integrations SET credentials_encrypted = '\\x%s'::bytea WHERE id = '%s'"
         % (legacy_blob(creds(TOKEN_B, SECRET_B)).hex(), b))
    r = cli(db, "rotate-key")
    assert_eq(r.code, 0, "exit code of rotate-key (stderr %r)" % r.err)
    if not sealed_hex(db, b).startswith("454632"):
        fail("rotate-key left bot B's old-format blob as it was")
    if not sealed_hex(db, a).startswith("454632"):
        fail("rotate-key broke bot A's blob")


def _refused(gw, why):
    rc = gw.exit_code_at_start()
    if rc is None or rc == 0:
        fail("%s: the gateway started (exit %r) without EF_SECRET_KEY" % (why, rc))
    lines = [ln for ln in gw.log_text().splitlines() if "EF_SECRET_KEY is not set" in ln]
    if not lines:
        fail("%s: no line says EF_SECRET_KEY is not set:\n%s" % (why, gw.log_tail(5)))
    no_secret_in("the refusal", gw.log_text())


def test_the_key_is_required_as_soon_as_an_integration_holds_credentials():
    tg = two_bot_fake()
    # The web chat alone holds no credential of anyone's: it starts.
    db = fresh_db()
    with integrations_gateway(tg, db=db, env={"EF_SECRET_KEY": None}) as gw:
        assert_status(gw.get("/livez"), 200, "/livez of a gateway with the web chat alone")
    # A bot token in the environment: refused, one line naming the variable.
    gw = integrations_gateway(tg, db=fresh_db(), secret=SECRET_A, start=False,
                              env={"EF_SECRET_KEY": None, "TELEGRAM_BOT_TOKEN": TOKEN_A})
    _refused(gw, "TELEGRAM_BOT_TOKEN set")
    if "TELEGRAM_BOT_TOKEN" not in gw.log_text():
        fail("the refusal does not name TELEGRAM_BOT_TOKEN:\n%s" % gw.log_tail(5))
    # Sealed credentials in the database: refused (they would not open).
    add_telegram(db, "bot-a", TOKEN_A, SECRET_A, bot=bot_file("бот А"))
    gw = integrations_gateway(tg, db=db, start=False, env={"EF_SECRET_KEY": None})
    _refused(gw, "an integration with sealed credentials")
