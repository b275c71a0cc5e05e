"""05-store-migrate: `easyflow migrate` brings an empty database to the schema,
is a no-op when up to date, refuses a changed applied file, applies new files,
is safe when two deployments run it at once, gives up on a
busy table within EF_MIGRATE_LOCK_TIMEOUT_MS, and runs "-- ef:no-transaction"
files (CREATE INDEX CONCURRENTLY) outside a transaction."""

import re
import shutil
import tempfile
import threading
from pathlib import Path

import eftest
from eftest import SQL_DIR, assert_eq, fail, fresh_db, migrate, psql, psql1

UP_TO_DATE = re.compile(r"up[ -]to[ -]date", re.I)


def sql_files():
    return sorted(p.name for p in SQL_DIR.glob("*.sql"))


def applied(url):
    return psql(url, "SELECT version::text, name, checksum FROM schema_migrations "
                     "ORDER BY schema_migrations.version")


def copy_sql():
    d = Path(tempfile.mkdtemp(prefix="sql-", dir=str(eftest.log_dir())))
    for f in SQL_DIR.glob("*.sql"):
        shutil.copy(f, d / f.name)
    return d


def test_migrate_empty_database():
    url = fresh_db(migrated=False)
    rc, out = migrate(url)
    assert_eq(rc, 0, "exit code of migrate (output: %s)" % out.strip()[-500:])
    rows = applied(url)
    files = sql_files()
    assert_eq(len(rows), len(files), "schema_migrations rows vs sql/*.sql")
    for (version, name, checksum), f in zip(rows, files):
        num = int(f.split("_", 1)[0])
        assert_eq(int(version), num, "version of %s" % f)
        if name not in (f, f[:-4], f.split("_", 1)[1][:-4]):
            fail("schema_migrations.name %r does not name %s" % (name, f))
        if not checksum or len(checksum) < 16:
            fail("checksum of %s: %r" % (f, checksum))
    if psql1(url, "SELECT count(*) FROM schema_migrations WHERE applied_at IS NULL") != "0":
        fail("applied_at missing")
    for table in ("users", "conversations", "messages", "platforms", "poll_offsets"):
        if psql1(url, "SELECT to_regclass('public.%s') IS NOT NULL" % table) != "t":
            fail("table %s missing after migrate" % table)
    # The seed data of the schema is there.
    assert_eq(psql1(url, "SELECT count(*) FROM platforms WHERE id = 'telegram'"), "1")


def test_second_run_is_a_noop():
    url = fresh_db(migrated=False)
    rc, _ = migrate(url)
    assert_eq(rc, 0)
    before = psql(url, "SELECT version, applied_at FROM schema_migrations ORDER BY 1")
    rc, out = migrate(url)
    assert_eq(rc, 0, "exit code of a second migrate")
    if not UP_TO_DATE.search(out):
        fail("a second migrate does not say it is up to date: %r" % out)
    assert_eq(psql(url, "SELECT version, applied_at FROM schema_migrations ORDER BY 1"), before,
              "schema_migrations after a no-op")


def test_changed_applied_file_refused():
    url = fresh_db(migrated=False)
    d = copy_sql()
    rc, _ = migrate(url, sql_dir=d)
    assert_eq(rc, 0)
    victim = sorted(d.glob("*.sql"))[0]
    with open(victim, "a") as f:
        f.write("\n-- an innocent-looking edit after deployment\n")
    before = applied(url)
    rc, out = migrate(url, sql_dir=d)
    if rc == 0:
        fail("migrate accepted a changed, already applied file; output: %r" % out)
    num = victim.name.split("_", 1)[0]
    if victim.name not in out and not re.search(r"\b0*%d\b" % int(num), out):
        fail("the message does not name the changed file %s: %r" % (victim.name, out))
    if not re.search(r"checksum|changed|modified|differs", out, re.I):
        fail("the message does not say the file changed: %r" % out)
    assert_eq(applied(url), before, "schema_migrations untouched")


def test_new_file_applied_then_noop():
    url = fresh_db(migrated=False)
    d = copy_sql()
    rc, _ = migrate(url, sql_dir=d)
    assert_eq(rc, 0)
    last = max(int(p.name.split("_", 1)[0]) for p in d.glob("*.sql"))
    new = d / ("%03d_e2e_extra.sql" % (last + 1))
    new.write_text("CREATE TABLE e2e_extra (id int PRIMARY KEY, note text);\n"
                   "INSERT INTO e2e_extra VALUES (1, 'применено');\n")
    rc, out = migrate(url, sql_dir=d)
    assert_eq(rc, 0, "migrate with a new file (output %r)" % out[-300:])
    assert_eq(psql1(url, "SELECT note FROM e2e_extra"), "применено")
    assert_eq(psql1(url, "SELECT count(*) FROM schema_migrations WHERE version = %d" %
                    (last + 1)), "1")
    rc, out = migrate(url, sql_dir=d)
    assert_eq(rc, 0)
    if not UP_TO_DATE.search(out):
        fail("not up to date after applying the new file: %r" % out)
    assert_eq(psql1(url, "SELECT count(*) FROM e2e_extra"), "1", "the new file ran once")


def test_failing_file_rolled_back_and_reported():
    url = fresh_db(migrated=False)
    d = copy_sql()
    last = max(int(p.name.split("_", 1)[0]) for p in d.glob("*.sql"))
    bad = d / ("%03d_e2e_broken.sql" % (last + 1))
    bad.write_text("CREATE TABLE e2e_half (id int);\nSELECT no_such_function_e2e();\n")
    rc, out = migrate(url, sql_dir=d)
    if rc == 0:
        fail("migrate succeeded with a failing file: %r" % out)
    if bad.name not in out and "no_such_function_e2e" not in out:
        fail("the failure does not name the file or the error: %r" % out)
    # Earlier files stay applied; the failing one left nothing behind.
    assert_eq(len(applied(url)), last, "files applied before the failing one")
    assert_eq(psql1(url, "SELECT to_regclass('public.e2e_half') IS NULL"), "t",
              "the failing file was rolled back")
    # Fixed, it applies.
    bad.write_text("CREATE TABLE e2e_half (id int);\n")
    rc, out = migrate(url, sql_dir=d)
    assert_eq(rc, 0, "after fixing the file (%r)" % out[-300:])


def test_duplicate_version_refused():
    url = fresh_db(migrated=False)
    d = copy_sql()
    first = sorted(d.glob("*.sql"))[0]
    num = first.name.split("_", 1)[0]
    (d / ("%s_e2e_same_number.sql" % num)).write_text("SELECT 1;\n")
    rc, out = migrate(url, sql_dir=d)
    if rc == 0:
        fail("migrate accepted two files numbered %s: %r" % (num, out))
    assert_eq(psql1(url, "SELECT to_regclass('public.users') IS NULL"), "t",
              "nothing applied from a bad migrations folder")


def test_concurrent_runs_apply_each_file_once():
    for _ in range(2):
        url = fresh_db(migrated=False)
        results = []
        lock = threading.Lock()
        barrier = threading.Barrier(3)

        def run():
            barrier.wait(10)
            r = migrate(url)
            with lock:
                results.append(r)
        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        codes = [rc for rc, _ in results]
        if codes != [0, 0, 0]:
            fail("concurrent migrate exit codes %r; outputs: %r" %
                 (codes, [o[-300:] for _, o in results]))
        rows = psql(url, "SELECT version, count(*) FROM schema_migrations GROUP BY 1 ORDER BY 1")
        assert_eq([int(n) for _, n in rows], [1] * len(sql_files()), "rows per version")
        # the seed's four platforms and 004's webchat, each once
        assert_eq(psql1(url, "SELECT count(*) FROM platforms"), "5", "seed rows inserted once")


def test_unreachable_database_fails_fast():
    port = eftest.free_port()
    url = "postgresql://easyflow@127.0.0.1:%d/easyflow?connect_timeout=3" % port
    import time
    t0 = time.monotonic()
    rc, out = migrate(url, timeout=60)
    if rc == 0:
        fail("migrate succeeded without a database")
    if time.monotonic() - t0 > 30:
        fail("migrate took %.0fs to give up" % (time.monotonic() - t0))
    if not out.strip():
        fail("migrate failed silently")


def test_default_sql_dir_next_to_the_binary():
    """From a build tree (<bin>/../sql exists) no EF_SQL_DIR is needed."""
    b = Path(eftest.ef_bin()).resolve()
    if not (b.parent.parent / "sql").is_dir():
        # Built outside the tree (BUILDDIR=/tmp/...): nothing to find there.
        return
    url = fresh_db(migrated=False)
    rc, out = eftest.run_bin(["migrate"], env={"EF_DATABASE_URL": url})
    assert_eq(rc, 0, "migrate without EF_SQL_DIR (%r)" % out[-300:])
    assert_eq(len(applied(url)), len(sql_files()))


def _hold_lock(url, sql):
    """A psql session that runs sql in an open transaction and keeps it
    open (traffic holding a lock) until the returned process's stdin is
    closed."""
    import os
    import subprocess
    env = dict(os.environ, PGCLIENTENCODING="UTF8", PGCONNECT_TIMEOUT="10")
    p = subprocess.Popen([eftest._psql_bin(), "-X", "-q", "-A", "-t", "-d", url],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env, text=True)
    p.stdin.write("BEGIN;\n%s;\nSELECT 'e2e-locked';\n" % sql)
    p.stdin.flush()
    seen = []
    for _ in range(20):  # the output of sql, then the marker
        line = p.stdout.readline()
        seen.append(line)
        if "e2e-locked" in line or not line:
            break
    if "e2e-locked" not in seen[-1]:
        p.kill()
        fail("the lock holder did not start: %r" % seen)
    return p


def _release(p):
    p.stdin.write("COMMIT;\n")
    p.stdin.close()
    p.wait(30)


def test_held_lock_fails_fast_with_a_clear_message():
    """Traffic holds a lock on a table: the migration that needs it fails
    within EF_MIGRATE_LOCK_TIMEOUT_MS naming the file, instead of queueing
    behind the traffic (and every later query behind it)."""
    import time
    url = fresh_db(migrated=False)
    d = copy_sql()
    rc, _ = migrate(url, sql_dir=d)
    assert_eq(rc, 0)
    last = max(int(p.name.split("_", 1)[0]) for p in d.glob("*.sql"))
    new = d / ("%03d_e2e_alter_users.sql" % (last + 1))
    new.write_text("ALTER TABLE users ADD COLUMN e2e_flag int;\n")
    holder = _hold_lock(url, "SELECT count(*) FROM users")
    try:
        env = {"EF_DATABASE_URL": url, "EF_SQL_DIR": str(d), "EF_MIGRATE_LOCK_TIMEOUT_MS": "400"}
        t0 = time.monotonic()
        rc, out = eftest.run_bin(["migrate"], env=env, timeout=60)
        dt = time.monotonic() - t0
        if rc == 0:
            fail("migrate succeeded while the table was locked: %r" % out)
        want = ("%s: could not get a lock in 400 ms: the table is busy; "
                "retry when traffic is low" % new.name)
        if want not in out:
            fail("the message does not say what happened: %r" % out[-500:])
        if dt > 10:
            fail("migrate took %.1fs to give up on the lock" % dt)
        assert_eq(len(applied(url)), last, "the blocked file is not recorded")
        rc, out = eftest.run_bin(["migrate", "--status"], env=env, timeout=60)
        assert_eq(rc, 0, "--status (%r)" % out[-300:])
        if not re.search(r"%s\s+pending" % re.escape(new.stem), out):
            fail("--status does not list the blocked file as pending: %r" % out[-500:])
    finally:
        _release(holder)
    rc, out = migrate(url, sql_dir=d)
    assert_eq(rc, 0, "migrate once the traffic is gone (%r)" % out[-300:])
    assert_eq(psql1(url, "SELECT count(*) FROM information_schema.columns "
                         "WHERE table_name = 'users' AND column_name = 'e2e_flag'"), "1")


def test_no_transaction_file_builds_an_index_concurrently():
    url = fresh_db(migrated=False)
    d = copy_sql()
    rc, _ = migrate(url, sql_dir=d)
    assert_eq(rc, 0)
    last = max(int(p.name.split("_", 1)[0]) for p in d.glob("*.sql"))
    new = d / ("%03d_e2e_index.sql" % (last + 1))
    new.write_text("-- ef:no-transaction\n"
                   "CREATE INDEX CONCURRENTLY IF NOT EXISTS e2e_users_created "
                   "ON users (created_at);\n"
                   "COMMENT ON INDEX e2e_users_created IS 'built; concurrently';\n")
    env = {"EF_DATABASE_URL": url, "EF_SQL_DIR": str(d)}
    rc, out = eftest.run_bin(["migrate", "--status"], env=env, timeout=60)
    assert_eq(rc, 0, "--status (%r)" % out[-300:])
    if not re.search(r"%s\s+pending\s+\(statements one by one, outside a transaction\)" %
                     re.escape(new.stem), out):
        fail("--status does not say the file runs outside a transaction: %r" % out[-500:])
    rc, out = migrate(url, sql_dir=d)
    assert_eq(rc, 0, "migrate with a CONCURRENTLY file (%r)" % out[-300:])
    assert_eq(psql1(url, "SELECT i.indisvalid FROM pg_index i JOIN pg_class c "
                         "ON c.oid = i.indexrelid WHERE c.relname = 'e2e_users_created'"), "t")
    assert_eq(psql1(url, "SELECT obj_description('e2e_users_created'::regclass)"),
              "built; concurrently")
    rc, out = migrate(url, sql_dir=d)
    assert_eq(rc, 0)
    if not UP_TO_DATE.search(out):
        fail("not up to date after the no-transaction file: %r" % out)
