"""11-integrations-strict: hostile or careless input is the sender's problem,
never the gateway's. A webhook without a secret is not served (fail closed);
a secret too short is refused at start; JSON with duplicate keys, a value
longer than its column and a WhatsApp message missing its object are refused
(4xx) while /healthz stays 200 and the next good update is stored; an update
of a type the gateway does not know is acknowledged, counted and not stored."""

import json
import re
import time

import eftest
from eftest import (DEFAULT_SECRET, Gateway, assert_eq, assert_status, fail, nothing_stored,
                    tg_message, tg_user)
from wa_helpers import (PNID_A, contact, fake_graph, inbound, message, post_wa, text, wa_count,
                        wa_gateway, wa_row)


def _tg_gateway(secret=DEFAULT_SECRET, start=True):
    """A gateway with the Telegram variables of today: bot token, secret,
    the fake Bot API."""
    tg = eftest.fake_telegram()
    env = {"TELEGRAM_BOT_TOKEN": tg.token, "TELEGRAM_API_URL": tg.url}
    return Gateway(env=env, secret=secret, start=start)


def _names_the_secret(gw, what):
    log = gw.log_text()
    if not re.search(r"TELEGRAM_SECRET_TOKEN|secret_token|secret token", log, re.I):
        fail("%s: the log does not say the secret is the problem:\n%s" % (what, gw.log_tail(5)))


def _still_serves(gw, mid, uid=6950000001):
    """/healthz is 200 and a good update is stored after the bad input."""
    gw.assert_alive("the bad input")
    gw.wait_healthy(5)
    upd = tg_message(mid, "всё ещё работает ✓", user=tg_user(uid=uid))
    assert_status(gw.post_update(upd), 200, "a good update after bad input")
    eftest.message_by_pmid(gw.db, "%d:%d" % (uid, mid))


def _refused(status, what):
    if status not in (400, 413, 422):
        fail("%s: answered %s, expected 400, 413 or 422" % (what, status))


def test_webhook_without_a_secret_is_not_served():
    """Either the gateway refuses to start, or it runs without serving
    /webhook/telegram; both say why. It never accepts an update."""
    gw = _tg_gateway(secret=None, start=False)
    rc = gw.exit_code_at_start(3)
    if rc is not None:
        if rc == 0:
            fail("the gateway exited 0 without a secret")
        _names_the_secret(gw, "refused to start")
        return
    gw.wait_ready()
    upd = tg_message(1, "поддельное обновление", user=tg_user(uid=6950000002))
    for h in ({}, {"X-Telegram-Bot-Api-Secret-Token": ""},
              {"X-Telegram-Bot-Api-Secret-Token": "anything-at-all-123"}):
        r = gw.post("/webhook/telegram", upd, h)
        if r.status not in (404, 503):
            fail("/webhook/telegram without a configured secret answered %d (headers %r)" %
                 (r.status, h))
    _names_the_secret(gw, "runs without a secret")
    nothing_stored(gw.db, "a webhook without a secret")
    gw.stop()


def test_secret_shorter_than_16_characters_is_refused_at_start():
    for secret in ("Short-Secret-15", "tiny-Secret"):
        gw = _tg_gateway(secret=secret, start=False)
        rc = gw.exit_code_at_start(15)
        if rc is None:
            fail("the gateway started with TELEGRAM_SECRET_TOKEN of %d characters" % len(secret))
        if rc == 0:
            fail("exit code 0 with a secret of %d characters" % len(secret))
        _names_the_secret(gw, "a secret of %d characters" % len(secret))
        if secret in gw.log_text():
            fail("the refusal prints the secret itself")


def test_duplicate_keys_are_refused():
    user = tg_user(uid=6950000003)
    good = tg_message(1, "один", user=user)
    raw = json.dumps(good, ensure_ascii=False)
    bodies = [
        # the update's own key twice
        '{"update_id": %d, "update_id": %d, %s' % (good["update_id"], good["update_id"] + 1,
                                                   raw[1:].split(",", 1)[1]),
        # a key twice inside the message: which text would be stored?
        raw.replace('"text": "один"', '"text": "один", "text": "два"'),
    ]
    with _tg_gateway() as gw:
        for b in bodies:
            assert_status(gw.post_update(b.encode("utf-8")), 400, "duplicate keys in %s" % b[:80])
        nothing_stored(gw.db, "duplicate keys")
        _still_serves(gw, 2)


def test_values_longer_than_their_column_are_the_senders_error():
    with _tg_gateway() as gw:
        # A 300-character username is a fine update.
        long_name = tg_user(uid=6950000004, username="u" * 300)
        assert_status(gw.post_update(tg_message(1, "длинное имя", user=long_name)), 200,
                      "a 300-character username")
        eftest.message_by_pmid(gw.db, "%d:1" % long_name["id"])
        # Refused (4xx, one log line): an id that cannot be stored.
        u = tg_message(2, "чат из ста цифр", user=tg_user(uid=6950000005))
        u["message"]["chat"]["id"] = int("9" * 100)
        lines = len(gw.log_text().splitlines())
        _refused(gw.post_update(u).status, "a chat id of 100 digits")
        gw.wait_healthy(5)
        if len(gw.log_text().splitlines()) == lines:
            fail("a chat id of 100 digits refused without a log line")
        # Stored or refused, never "store unavailable": strings over their
        # columns (users.language_code is 10 characters, users.name 255).
        for what, user in (("a language_code of 63 characters",
                            tg_user(uid=6950000006, lang="ru-" + "x" * 60)),
                           ("a first_name of 300 characters",
                            tg_user(uid=6950000007, first="Я" * 300))):
            st = gw.post_update(tg_message(3, what, user=user)).status
            if st != 200:
                _refused(st, what)
            gw.wait_healthy(5)
        _still_serves(gw, 5)


def test_unknown_update_type_is_acknowledged_counted_and_not_stored():
    def counted(gw):
        return sum(v for (name, labels), v in gw.metrics().items()
                   if "unknown" in name or "ignored" in name or
                   any("unknown" in lv for _, lv in labels))
    with _tg_gateway() as gw:
        before = counted(gw)
        upd = {"update_id": eftest.next_update_id(),
               "purchased_paid_media_v99": {"from": tg_user(uid=6950000008),
                                            "payload": "что-то новое"}}
        assert_status(gw.post_update(upd), 200, "an update of an unknown type")
        eftest.wait_until(lambda: counted(gw) >= before + 1, timeout=5,
                          what="the unknown update counted in /metrics")
        nothing_stored(gw.db, "an unknown update type")
        _still_serves(gw, 1)


def test_whatsapp_message_missing_its_object_is_refused_alone():
    anna, boris = "79161230001", "79161230002"
    good1 = text(anna, "первое")
    no_text = message("text", anna, None)  # "type": "text" without "text"
    no_image = message("image", boris, None)  # "type": "image" without "image"
    good2 = text(boris, "второе")
    with wa_gateway(fake_graph()) as gw:
        r = post_wa(gw, inbound([good1, no_text, no_image, good2],
                                [contact(anna, "Анна"), contact(boris, "Борис")], pnid=PNID_A))
        if r.status >= 500:
            fail("a webhook with two malformed messages answered %d" % r.status)
        time.sleep(0.5)
        for m in (good1, good2):
            wa_row(gw.db, m["id"])
        assert_eq(wa_count(gw.db), 2, "WhatsApp messages stored (the two good ones)")
        gw.wait_healthy(5)
