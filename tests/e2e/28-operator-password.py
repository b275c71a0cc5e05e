"""28-operator-password: `easyflow operator add` on a terminal asks for the
password twice without echo (two different answers: refused, nothing
stored); from a pipe it reads one line as before. An existing account is
never overwritten without --reset-password (a clear message, exit 1,
nothing changed); a reset replaces the password, revokes every refresh
token of the account and writes an operator_audit row naming who, what
and when."""

import json
import os
import select
import subprocess
import time

import eftest
from api_helpers import PASSWORD, add_operator, call, expect, login
from eftest import Gateway, assert_eq, fail, fresh_db, psql, psql1

NEW_PASSWORD = "новый пароль оператора 2"


def _on_terminal(db, args, answers, timeout=60):
    """Runs `easyflow operator ARGS` with a pseudo-terminal as stdin, stdout
    and stderr; each answer is typed after the next prompt ("...: ").
    Returns (exit code, everything the terminal showed)."""
    master, slave = os.openpty()
    env = eftest._clean_env()
    env["EF_DATABASE_URL"] = db
    p = subprocess.Popen(eftest.wrap_cmd() + [eftest.ef_bin(), "operator"] + list(args),
                         stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True)
    os.close(slave)
    shown, pending = b"", list(answers)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
                if pending and shown.count(b": ") > len(answers) - len(pending):
                    os.write(master, (pending.pop(0) + "\n").encode("utf-8"))
            elif p.poll() is not None:
                break
        else:
            p.kill()
            fail("operator %r did not finish; the terminal showed %r" % (args, shown))
        code = p.wait(30)
    finally:
        os.close(master)
    return code, shown.decode("utf-8", "replace")


def _hash(db, email):
    return psql1(db, "SELECT password_hash FROM users WHERE email = '%s'" % email)


def test_terminal_asks_twice_without_echo():
    db = fresh_db()
    code, shown = _on_terminal(db, ["add", "anna@shop.example", "--name", "Анна"],
                               [PASSWORD, PASSWORD + "x"])
    assert_eq(code, 1, "two different answers are refused (%r)" % shown)
    if "do not match" not in shown:
        fail("no clear message for different answers: %r" % shown)
    assert_eq(psql1(db, "SELECT count(*) FROM users WHERE role <> 'customer'"), "0",
              "nothing stored")
    code, shown = _on_terminal(db, ["add", "anna@shop.example", "--name", "Анна"],
                               [PASSWORD, PASSWORD])
    assert_eq(code, 0, "the same answer twice (%r)" % shown)
    assert_eq(shown.count("Password"), 2, "asked twice: %r" % shown)
    if PASSWORD in shown or "horse" in shown:
        fail("the password was echoed on the terminal: %r" % shown)
    if "added" not in shown:
        fail("no confirmation: %r" % shown)
    if not _hash(db, "anna@shop.example").startswith("$argon2id$"):
        fail("not stored as an Argon2id hash")


def test_existing_account_needs_reset_password_which_revokes_and_audits():
    db = fresh_db()
    add_operator(db, "olga@shop.example", "Ольга")  # from a pipe, as before
    before = _hash(db, "olga@shop.example")
    with Gateway(db=db) as gw:
        sessions = [login(gw, "olga@shop.example") for _ in range(2)]
        # Without --reset-password: refused before any password is read.
        r = eftest.run_cli(["operator", "add", "OLGA@shop.example", "--name", "Другая",
                            "--role", "admin"], env={"EF_DATABASE_URL": db},
                           stdin=NEW_PASSWORD + "\n")
        assert_eq(r.code, 1, "overwrite refused (%r)" % r)
        if "already has an account" not in r.err or "--reset-password" not in r.err:
            fail("the refusal should say why and name --reset-password: %r" % r.err)
        assert_eq(psql(db, "SELECT name, role::text, password_hash FROM users "
                           "WHERE email = 'olga@shop.example'"),
                  [["Ольга", "operator", before]], "nothing changed")
        assert_eq(psql1(db, "SELECT count(*) FROM operator_audit"), "0", "no audit row")
        expect(call(gw, "POST", "/auth/refresh",
                    {"refresh_token": sessions[0]["refresh_token"]}), 200,
               "sessions untouched by the refused add")
        sessions[0] = None

        # With it, on a terminal.
        code, shown = _on_terminal(db, ["add", "olga@shop.example", "--name", "Ольга С.",
                                        "--role", "admin", "--reset-password"],
                                   [NEW_PASSWORD, NEW_PASSWORD])
        assert_eq(code, 0, "reset (%r)" % shown)
        if "password reset" not in shown or NEW_PASSWORD in shown:
            fail("reset output: %r" % shown)
        # Two families (one rotated once above: its old token too): all revoked.
        rows = psql(db, "SELECT count(*) FILTER (WHERE NOT revoked), "
                        "count(*) FILTER (WHERE revoked_reason = 'password_reset') "
                        "FROM refresh_tokens")
        assert_eq(rows, [["0", "3"]], "refresh tokens left live / revoked by the reset")
        expect(call(gw, "POST", "/auth/refresh",
                    {"refresh_token": sessions[1]["refresh_token"]}), 401,
               "an old session's refresh after the reset")
        expect(call(gw, "POST", "/auth/login", {"email": "olga@shop.example",
                                                "password": PASSWORD}), 401,
               "the old password")
        t = login(gw, "olga@shop.example", password=NEW_PASSWORD)
        assert_eq(t["user"]["role"], "admin", "role after the reset")

        audit = psql(db, "SELECT a.operator_id = u.id, a.email, a.action, a.actor, "
                         "a.details::text, a.created_at > now() - interval '5 minutes' "
                         "FROM operator_audit a, users u WHERE u.email = a.email")
        assert_eq(len(audit), 1, "one audit row: %r" % audit)
        same, email, action, actor, details, recent = audit[0]
        assert_eq((same, email, action, recent), ("t", "olga@shop.example", "password_reset",
                                                  "t"), "audit row (who, what, when)")
        if not actor.startswith("cli user=") or "uid=%d" % os.getuid() not in actor:
            fail("the audit row does not name who ran it: %r" % actor)
        d = json.loads(details)
        assert_eq((d["revoked_tokens"], d["role_before"], d["role_after"]),
                  (3, "operator", "admin"), "audit details")
        for text in (gw.log_text(), json.dumps(audit, ensure_ascii=False)):
            if NEW_PASSWORD in text or PASSWORD in text:
                fail("a password reached a log or the audit row")


def test_reset_of_a_missing_account_creates_it_and_a_customer_is_refused():
    db = fresh_db()
    r = eftest.run_cli(["operator", "add", "ivan@shop.example", "--name", "Иван",
                        "--reset-password"], env={"EF_DATABASE_URL": db}, stdin=PASSWORD)
    assert_eq(r.code, 0, "reset of a missing account (%r)" % r)
    if "added" not in r.out:
        fail("a missing account is added: %r" % r.out)
    assert_eq(psql1(db, "SELECT count(*) FROM operator_audit"), "0", "nothing reset")
    psql(db, "INSERT INTO users (email, name, role, platform, platform_user_id) "
             "VALUES ('c@shop.example', 'C', 'customer', 'telegram', '42')")
    for extra in ([], ["--reset-password"]):
        r = eftest.run_cli(["operator", "add", "c@shop.example", "--name", "C"] + extra,
                           env={"EF_DATABASE_URL": db}, stdin=PASSWORD + "\n")
        assert_eq(r.code, 1, "a customer's e-mail %r (%r)" % (extra, r))
    assert_eq(psql1(db, "SELECT role::text || coalesce(password_hash, '-') FROM users "
                        "WHERE email = 'c@shop.example'"), "customer-", "the customer untouched")
