"""05-store-operator: `easyflow operator add` creates the accounts operators
log into the console with: the password comes on standard input and is kept
only as an Argon2id hash; bad input gets a message and a non-zero exit
with nothing stored; `--config FILE` works for operator and migrate as for
serve."""

import subprocess
import tempfile

import eftest
from eftest import assert_eq, fail, fresh_db, psql


def _operator(db, args, password, extra_env=None):
    env = eftest._clean_env()
    if db is not None:
        env["EF_DATABASE_URL"] = db
    env.update(extra_env or {})
    p = subprocess.run(eftest.wrap_cmd() + [eftest.ef_bin(), "operator"] + list(args),
                       input=password.encode("utf-8"), capture_output=True, env=env, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def _accounts(db):
    return psql(db, "SELECT email, name, role, password_hash FROM users "
                    "WHERE role <> 'customer' ORDER BY email")


def test_add_then_update_operator():
    db = fresh_db()
    code, out = _operator(db, ["add", "Olga@Shop.example", "--name", "Ольга Смирнова"],
                          "пароль-оператора-1\n")
    assert_eq(code, 0, "exit code (%s)" % out)
    if "added" not in out:
        fail("no confirmation printed: %r" % out)
    rows = _accounts(db)
    assert_eq(len(rows), 1, "accounts")
    email, name, role, hash1 = rows[0]
    assert_eq(email, "olga@shop.example", "e-mail is stored lowercased")
    assert_eq(name, "Ольга Смирнова", "name")
    assert_eq(role, "operator", "default role")
    if not hash1.startswith("$argon2id$") or "пароль" in hash1:
        fail("password not stored as an Argon2id hash: %r" % hash1)
    if "пароль" in out:
        fail("the password was echoed: %r" % out)

    code, out = _operator(db, ["add", "olga@shop.example", "--name", "Ольга", "--role",
                               "admin"], "другой-пароль-2\n")
    assert_eq(code, 1, "re-adding without --reset-password is refused (%s)" % out)
    if "--reset-password" not in out:
        fail("the refusal should name --reset-password: %r" % out)
    assert_eq(_accounts(db)[0][3], hash1, "nothing changed by the refused add")
    code, out = _operator(db, ["add", "olga@shop.example", "--name", "Ольга", "--role",
                               "admin", "--reset-password"], "другой-пароль-2\n")
    assert_eq(code, 0, "exit code (%s)" % out)
    if "reset" not in out:
        fail("--reset-password should reset: %r" % out)
    rows = _accounts(db)
    assert_eq(len(rows), 1, "still one account")
    assert_eq(rows[0][1:3], ["Ольга", "admin"], "name and role updated")
    if rows[0][3] == hash1:
        fail("the password hash did not change")


def test_bad_input_refused_nothing_stored():
    db = fresh_db()
    cases = [
        (["add", "not-an-email", "--name", "X"], "password-123\n", 2),
        (["add", "a@b.example"], "password-123\n", 2),  # no --name
        (["add", "a@b.example", "--name", "X", "--role", "root"], "password-123\n", 2),
        (["add", "a@b.example", "--name", "X"], "short\n", 1),
        (["add", "a@b.example", "--name", "X"], "", 1),
        (["remove", "a@b.example"], "password-123\n", 2),
    ]
    for args, pw, want in cases:
        code, out = _operator(db, args, pw)
        assert_eq(code, want, "exit code of %r (%s)" % (args, out))
        if not out.strip():
            fail("no message for %r" % (args,))
    assert_eq(_accounts(db), [], "nothing stored after refused input")


def test_config_file_for_operator_and_migrate():
    db = fresh_db(migrated=False)
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write("# easyflow settings\nEF_DATABASE_URL = %s\nEF_SQL_DIR = %s\n"
                % (db, eftest.SQL_DIR))
        conf = f.name
    code, out = eftest.run_bin(["migrate", "--config", conf])
    assert_eq(code, 0, "migrate --config (%s)" % out)
    if "applied" not in out:
        fail("migrate did not apply through the config file: %r" % out)
    code, out = _operator(None, ["add", "ivan@shop.example", "--name", "Иван", "--config", conf],
                          "secret-pass-3\n")
    assert_eq(code, 0, "operator --config (%s)" % out)
    assert_eq(len(_accounts(db)), 1, "account stored in the configured database")
    code, out = eftest.run_bin(["migrate", "--config", "/nonexistent/easyflow.conf"])
    if code == 0 or "nonexistent" not in out:
        fail("a missing config file must fail clearly: %d %r" % (code, out))
