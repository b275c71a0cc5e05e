"""05-store-migrate: `easyflow migrate` brings an empty database to the schema,
is a no-op when up to date, refuses a changed applied file, applies new files,
and is safe when two deployments run it at once."""

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
                     "ORDER BY version")


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
