"""22-api-admin: what admins manage over /api/v1. Every route (all of
/api/v1 but login and refresh) answers 401 without a token and with a
wrong one, and every admin route 403 to an operator. Admins list, add,
disable and enable operator accounts (never a password hash in any
answer; a disabled account cannot log in or refresh, its conversations go
back to the queue; an admin cannot disable themself) and integrations
(listed with status and status_message; added with credentials that are
checked, sealed and never returned; disabled and enabled, which the
running gateway follows: a disabled bot's webhook is refused)."""

import json
import re
from pathlib import Path

import eftest
from api_helpers import PASSWORD, add_operator, call, escalated_chat, expect, login
from eftest import assert_eq, fail, psql, psql1, wait_until
from integration_helpers import SECRET_A, TOKEN_A, two_bot_fake
from reply_helpers import demo_gateway, limited_telegram

NOID = "00000000-0000-4000-8000-000000000000"
CONV = "/conversations/" + NOID
# Every /api/v1 route that needs a token: (method, path, admin only).
ROUTES = [
    ("POST", "/auth/logout", False), ("POST", "/auth/logout-all", False),
    ("GET", "/conversations", False), ("GET", CONV, False),
    ("POST", CONV + "/claim", False), ("POST", CONV + "/release", False),
    ("POST", CONV + "/close", False), ("POST", CONV + "/escalate", False),
    ("POST", CONV + "/messages", False), ("GET", CONV + "/notes", False),
    ("POST", CONV + "/notes", False), ("GET", "/quick-replies", False),
    ("GET", "/metrics", False),
    ("POST", "/quick-replies", True), ("PUT", "/quick-replies/1", True),
    ("DELETE", "/quick-replies/1", True),
    ("GET", "/operators", True), ("POST", "/operators", True),
    ("POST", "/operators/%s/disable" % NOID, True), ("POST", "/operators/%s/enable" % NOID, True),
    ("GET", "/integrations", True), ("POST", "/integrations", True),
    ("POST", "/integrations/%s/disable" % NOID, True),
    ("POST", "/integrations/%s/enable" % NOID, True),
]
FORGED = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5"
          "OTk5OTk5OTk5fQ.c2lnbmF0dXJlLW9mLWFub3RoZXIta2V5LXh4eHh4eHh4eHh4eA")


def _no_secret(body, *secrets):
    text = json.dumps(body, ensure_ascii=False)
    for s in secrets:
        if s in text:
            fail("a secret came back in an answer: %r" % text[:300])
    if "$argon2" in text or "pbkdf2" in text or "password_hash" in text:
        fail("a password hash came back: %r" % text[:300])


def _table_routes():
    """(method, pattern, role) of every row of api.c's route table."""
    src = (Path(__file__).resolve().parents[2] / "src" / "gateway" / "api.c").read_text()
    return re.findall(r'\{"(GET|POST|PUT|PATCH|DELETE)", "([^"]+)", \w+, (API_\w+)', src)


def _pattern(path):
    """The table's pattern of a probed path."""
    return path.replace(NOID, "{id}").replace("/quick-replies/1", "/quick-replies/{id}")


def test_every_route_401_without_or_with_wrong_credentials_and_403_for_operators():
    # The probe covers the whole table: a new route must be added here too.
    table = _table_routes()
    if len(table) < 20:
        fail("could not read api.c's route table: %r" % table)
    probed = {(m, _pattern(p)): admin for m, p, admin in ROUTES}
    for method, pattern, role in table:
        if role == "API_PUBLIC":
            continue
        if (method, pattern) not in probed:
            fail("route %s %s is not probed by this test" % (method, pattern))
        assert_eq(probed[(method, pattern)], role == "API_ADMIN",
                  "admin only: %s %s" % (method, pattern))
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        op = login(gw, "olga@shop.example")["access_token"]
        for method, path, admin in ROUTES:
            body = {} if method in ("POST", "PUT") else None
            what = "%s %s" % (method, path)
            expect(call(gw, method, path, body), 401, what + " without a token")
            expect(call(gw, method, path, body, token=FORGED), 401, what + " forged token")
            expect(call(gw, method, path, body, headers={"Authorization": "Basic b2xnYTp4"}),
                   401, what + " Basic credentials")
            expect(call(gw, method, path, body, token=op[:-4] + "AAAA"), 401,
                   what + " altered token")
            if admin:
                got = expect(call(gw, method, path, body, token=op), 403, what + " operator")
                assert_eq(got["error"], "admins only", what + " 403 reason")
        # Public routes refuse a wrong password / refresh token with 401.
        expect(call(gw, "POST", "/auth/login", {"email": "olga@shop.example",
                                                "password": "wrong password"}), 401, "login")
        expect(call(gw, "POST", "/auth/refresh", {"refresh_token": "x" * 43}), 401, "refresh")


def test_admin_manages_operators():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "root@shop.example", "Админ", role="admin")
        add_operator(gw.db, "olga@shop.example", "Ольга")
        adm = login(gw, "root@shop.example")
        tok = adm["access_token"]
        got = expect(call(gw, "GET", "/operators", token=tok), 200, "list")
        assert_eq([o["email"] for o in got["operators"]], ["olga@shop.example", "root@shop.example"],
                  "operators by e-mail")
        _no_secret(got)
        # Add one; the same e-mail again is a conflict, never an overwrite.
        new = {"email": "Ivan@Shop.example", "name": "Иван", "role": "operator",
               "password": "another long password"}
        got = expect(call(gw, "POST", "/operators", new, token=tok), 201, "add")
        _no_secret(got, new["password"])
        ivan = got["operator"]
        assert_eq((ivan["email"], ivan["role"], ivan["active"]),
                  ("ivan@shop.example", "operator", True), "added")
        expect(call(gw, "POST", "/operators", dict(new, password="third password!"), token=tok),
               409, "the same e-mail again")
        login(gw, "ivan@shop.example", "another long password")
        for bad, status in (({"email": "nope", "name": "x", "password": PASSWORD}, 400),
                            ({"email": "a@b.example", "name": "", "password": PASSWORD}, 400),
                            ({"email": "a@b.example", "name": "x", "role": "root",
                              "password": PASSWORD}, 400),
                            ({"email": "a@b.example", "name": "x", "password": "short"}, 422)):
            expect(call(gw, "POST", "/operators", bad, token=tok), status, "bad add %r" % bad)
        # Ivan holds a conversation; disabling him hands it back to the queue.
        _, cid = escalated_chat(gw, fake, 8220000001)
        itok = login(gw, "ivan@shop.example", "another long password")
        expect(call(gw, "POST", "/conversations/%s/claim" % cid, token=itok["access_token"]), 200,
               "ivan claims")
        got = expect(call(gw, "POST", "/operators/%s/disable" % ivan["id"], token=tok), 200,
                     "disable")
        assert_eq((got["changed"], got["released"]), (True, 1), "disabled, one released")
        assert_eq(psql1(gw.db, "SELECT status || '/' || coalesce(assigned_operator_id::text, '-') "
                               "FROM conversations WHERE id = '%s'" % cid),
                  "escalated/-", "back in the queue")
        expect(call(gw, "POST", "/auth/login", {"email": "ivan@shop.example",
                                                "password": "another long password"}), 401,
               "a disabled account cannot log in")
        expect(call(gw, "POST", "/auth/refresh", {"refresh_token": itok["refresh_token"]}), 401,
               "nor refresh")
        got = expect(call(gw, "POST", "/operators/%s/disable" % ivan["id"], token=tok), 200,
                     "disable again")
        assert_eq(got["changed"], False, "nothing changed")
        got = expect(call(gw, "POST", "/operators/%s/enable" % ivan["id"], token=tok), 200,
                     "enable")
        assert_eq(got["changed"], True, "enabled")
        login(gw, "ivan@shop.example", "another long password")
        me = adm["user"]["id"]
        expect(call(gw, "POST", "/operators/%s/disable" % me, token=tok), 409, "disable self")
        expect(call(gw, "POST", "/operators/%s/disable" % NOID, token=tok), 404, "unknown")
        expect(call(gw, "POST", "/operators/not-a-uuid/enable", token=tok), 404, "not a uuid")
        events = psql(gw.db, "SELECT action FROM conversation_events WHERE conversation_id = "
                             "'%s' ORDER BY id" % cid)
        assert_eq([e[0] for e in events][-1:], ["unassign"], "the hand-back is audited")


def test_admin_manages_integrations_credentials_never_returned():
    fake = two_bot_fake()
    with demo_gateway(limited_telegram()) as gw:
        add_operator(gw.db, "root@shop.example", "Админ", role="admin")
        tok = login(gw, "root@shop.example")["access_token"]
        creds = {"bot_token": TOKEN_A, "secret_token": SECRET_A}
        body = {"platform": "telegram", "name": "Второй бот", "credentials": creds,
                "settings": {"api_url": fake.url, "mode": "webhook"}}
        got = expect(call(gw, "POST", "/integrations", body, token=tok), 201, "add")
        _no_secret(got, TOKEN_A, SECRET_A)
        it = got["integration"]
        assert_eq((it["platform"], it["name"], it["enabled"], it["has_credentials"],
                   it["source"]), ("telegram", "Второй бот", True, True, "api"), "added row")
        if not it["webhook_path"].endswith(it["id"]):
            fail("webhook_path: %r" % it)
        for secret in (TOKEN_A, SECRET_A):
            found = psql1(gw.db, "SELECT position(convert_to('%s', 'UTF8') IN "
                                 "credentials_encrypted) FROM integrations WHERE id = '%s'"
                          % (secret, it["id"]))
            assert_eq(found, "0", "credentials sealed, not stored in the clear")
        got = expect(call(gw, "GET", "/integrations", token=tok), 200, "list")
        _no_secret(got, TOKEN_A, SECRET_A)
        mine = [i for i in got["integrations"] if i["id"] == it["id"]]
        assert_eq(len(mine), 1, "listed")
        for k in ("status", "status_message", "enabled", "platform", "name"):
            if k not in mine[0]:
                fail("list lacks %s: %r" % (k, mine[0]))
        expect(call(gw, "POST", "/integrations", body, token=tok), 409, "the same again")
        for bad, status in (({"platform": "fax", "name": "x", "credentials": {}}, 400),
                            ({"platform": "telegram", "name": "x"}, 400),
                            ({"platform": "telegram", "name": "x", "credentials": "t"}, 400),
                            ({"platform": "telegram", "name": "y",
                              "credentials": {"bot_token": "nope"}}, 422),
                            ({"platform": "telegram", "name": "z", "credentials": creds,
                              "settings": {"mode": 1}}, 400),
                            ({"platform": "telegram", "name": "z", "credentials": creds,
                              "settings": {"bot_file": "/nonexistent/bot.yaml"}}, 422)):
            got = expect(call(gw, "POST", "/integrations", bad, token=tok), status,
                         "bad add %r" % bad)
            _no_secret(got, TOKEN_A, SECRET_A)
        # The running gateway follows: a disabled integration's webhook is refused.
        hook = "/webhook/telegram/" + it["id"]
        upd = {"update_id": 1, "message": {"message_id": 1, "date": 1700000000,
                                           "chat": {"id": 8220000009, "type": "private"},
                                           "from": {"id": 8220000009, "first_name": "A"},
                                           "text": "привет"}}
        hdr = {"X-Telegram-Bot-Api-Secret-Token": SECRET_A}
        wait_until(lambda: gw.post(hook, upd, hdr).status == 200, timeout=10,
                    what="the new integration serves its webhook")
        got = expect(call(gw, "POST", "/integrations/%s/disable" % it["id"], token=tok), 200,
                     "disable")
        assert_eq((got["integration"]["enabled"], got["integration"]["status"]),
                  (False, "disconnected"), "disabled")
        _no_secret(got, TOKEN_A, SECRET_A)
        wait_until(lambda: gw.post(hook, dict(upd, update_id=2), hdr).status == 404,
                    timeout=10, what="the disabled integration's webhook refused")
        got = expect(call(gw, "POST", "/integrations/%s/enable" % it["id"], token=tok), 200,
                     "enable")
        assert_eq(got["integration"]["enabled"], True, "enabled")
        expect(call(gw, "POST", "/integrations/%s/enable" % NOID, token=tok), 404, "unknown")
        expect(call(gw, "POST", "/integrations/xyz/disable", token=tok), 404, "not a uuid")


def test_operator_cli_list_disable_enable():
    fake = limited_telegram()
    with demo_gateway(fake) as gw:
        add_operator(gw.db, "olga@shop.example", "Ольга")
        add_operator(gw.db, "root@shop.example", "Админ", role="admin")
        tok = login(gw, "olga@shop.example")

        def cli(*args):
            return eftest.run_cli(["operator"] + list(args), env={"EF_DATABASE_URL": gw.db})
        r = cli("list")
        assert_eq(r.code, 0, "operator list (%s)" % r.err)
        lines = r.out.strip().splitlines()
        assert_eq(lines, ["EMAIL\tROLE\tSTATUS\tNAME",
                          "olga@shop.example\toperator\tactive\tОльга",
                          "root@shop.example\tadmin\tactive\tАдмин"], "the list")
        r = cli("disable", "Olga@Shop.example")
        assert_eq((r.code, r.out.strip()), (0, "operator Olga@Shop.example disabled"), r.err)
        expect(call(gw, "POST", "/auth/refresh", {"refresh_token": tok["refresh_token"]}), 401,
               "sessions revoked")
        expect(call(gw, "POST", "/auth/login", {"email": "olga@shop.example",
                                                "password": PASSWORD}), 401, "no login")
        assert_eq(cli("list").out.strip().splitlines()[1],
                  "olga@shop.example\toperator\tdisabled\tОльга", "listed disabled")
        assert_eq(cli("enable", "olga@shop.example").code, 0, "enable")
        login(gw, "olga@shop.example")
        r = cli("disable", "nobody@shop.example")
        assert_eq(r.code, 1, "unknown account")
        if "no operator" not in r.err:
            fail("unknown account message: %r" % r.err)
