/*
 * test_migrate.c -- schema migrations.
 *
 * Always: file discovery (numeric order, bad names, duplicate numbers),
 * checksums, error line numbers, where the sql/ directory is found, the
 * command line's argument handling, and that nothing secret is printed.
 *
 * With EF_TEST_DATABASE_URL (scripts/run-unit.sh points it at a fresh
 * database): the real thing, each test in its own schema so the tests can
 * run again on the same database -- apply, re-run, a changed file, a
 * missing file, a failing file, the command line's output, and several
 * migrators starting at once.
 *
 * Includes migrate.c to reach its file-level helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/migrate.c"

#include <fcntl.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

/* ---- helpers ----------------------------------------------------------- */

static char *make_tmpdir(void)
{
    char *d = ef_strdup("/tmp/ef-test-migrate-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void put_file(const char *dir, const char *name, const char *text)
{
    char *path = join_path(dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    ef_free(path);
}

static void drop_file(const char *dir, const char *name)
{
    char *path = join_path(dir, name);
    unlink(path);
    ef_free(path);
}

/* Removes dir and the plain files (and empty directories) in it. */
static void rm_tree(char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char *p = join_path(dir, de->d_name);
            if (is_dir(p))
                rm_tree(p);
            else
                unlink(p);
            ef_free(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static char *slurp(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = ef_malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Runs `easyflow migrate ARGS` with stdout and stderr captured; argv holds
 * the arguments after "migrate", as main passes them. */
static int run_cli(char **out, char **errout, int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    FILE *fo = tmpfile();
    FILE *fe = tmpfile();
    assert_non_null(fo);
    assert_non_null(fe);
    int so = dup(1);
    int se = dup(2);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    int code = ef_migrate_cli(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    *out = slurp(fo);
    *errout = slurp(fe);
    return code;
}

/* ---- pure parts -------------------------------------------------------- */

static void test_scan_order_and_ignored(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    put_file(dir, "100_c.sql", "SELECT 100;\n");
    put_file(dir, "002_a.sql", "SELECT 2;\n");
    put_file(dir, "1000_d.sql", "SELECT 1000;\n");
    put_file(dir, "010_b.sql", "SELECT 10;\n");
    put_file(dir, "README.md", "not a migration\n");
    put_file(dir, "003_x.sql.bak", "backup\n");
    put_file(dir, ".#004_lock.sql", "editor lock file\n");
    char *sub = join_path(dir, "005_dir.sql");
    assert_int_equal(mkdir(sub, 0700), 0);
    mig_set s = {0};
    char err[512] = "";
    assert_int_equal(scan_dir(dir, &s, err, sizeof(err)), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.files[0].version, 2);
    assert_int_equal(s.files[1].version, 10);
    assert_int_equal(s.files[2].version, 100);
    assert_int_equal(s.files[3].version, 1000);
    assert_string_equal(s.files[1].file, "010_b.sql");
    assert_string_equal(s.files[1].stem, "010_b");
    assert_string_equal(s.files[1].name, "b");
    char *want = join_path(dir, "010_b.sql");
    assert_string_equal(s.files[1].path, want);
    ef_free(want);
    set_free(&s);
    ef_free(sub);
    rm_tree(dir);
    ef_free(dir);
}

static void test_scan_bad_names(void **state)
{
    (void)state;
    static const char *const bad[] = {"1_a.sql",     "01_a.sql",    "001-a.sql",
                                      "001_A.sql",   "001_.sql",    "abc.sql",
                                      "001_a b.sql", "001_a.b.sql", "99999999999_big.sql"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *dir = make_tmpdir();
        put_file(dir, "001_ok.sql", "SELECT 1;\n");
        put_file(dir, bad[i], "SELECT 1;\n");
        mig_set s = {0};
        char err[512] = "";
        int rc = scan_dir(dir, &s, err, sizeof(err));
        char *path = join_path(dir, bad[i]);
        if (rc != EF_EINVAL || strncmp(err, path, strlen(path)) != 0)
            fail_msg("%s: rc=%d err=\"%s\"", bad[i], rc, err);
        ef_free(path);
        /* The public call refuses before it ever reaches a database. */
        rc = ef_migrate_run("postgresql://u:pw@127.0.0.1:1/none", dir, NULL, err, sizeof(err));
        assert_int_equal(rc, EF_EINVAL);
        rm_tree(dir);
        ef_free(dir);
    }
}

static void test_scan_duplicate_numbers(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    put_file(dir, "001_a.sql", "SELECT 1;\n");
    put_file(dir, "0001_b.sql", "SELECT 1;\n");
    mig_set s = {0};
    char err[512] = "";
    assert_int_equal(scan_dir(dir, &s, err, sizeof(err)), EF_EINVAL);
    char want[512];
    snprintf(want, sizeof(want), "%s/001_a.sql: number 1 is already used by %s/0001_b.sql", dir,
             dir);
    assert_string_equal(err, want);
    int applied = -1;
    assert_int_equal(
        ef_migrate_run("postgresql://127.0.0.1:1/none", dir, &applied, err, sizeof(err)),
        EF_EINVAL);
    assert_int_equal(applied, -1); /* out-params only on success */
    rm_tree(dir);
    ef_free(dir);
}

static void test_checksum(void **state)
{
    (void)state;
    char hex[65];
    assert_int_equal(sha256_hex("abc", 3, hex), 0);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    char *dir = make_tmpdir();
    put_file(dir, "001_empty.sql", "");
    put_file(dir, "002_abc.sql", "abc");
    put_file(dir, "003_abd.sql", "abd");
    mig_set s = {0};
    char err[512] = "";
    assert_int_equal(load_set(dir, &s, err, sizeof(err)), 0);
    assert_string_equal(s.files[0].sum,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(s.files[1].sum, hex);
    assert_string_not_equal(s.files[2].sum, hex);
    assert_string_equal(s.files[1].text, "abc");
    set_free(&s);

    /* A NUL byte cannot be sent as SQL text. */
    char *path = join_path(dir, "004_nul.sql");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite("SELECT\0 1;", 1, 10, f);
    fclose(f);
    assert_int_equal(load_set(dir, &s, err, sizeof(err)), EF_EINVAL);
    char want[512];
    snprintf(want, sizeof(want), "%s: contains a NUL byte", path);
    assert_string_equal(err, want);
    ef_free(path);
    rm_tree(dir);
    ef_free(dir);
}

static void test_missing_dir(void **state)
{
    (void)state;
    char err[512] = "";
    assert_int_equal(ef_migrate_run("postgresql://127.0.0.1:1/none", "/nonexistent/ef-sql", NULL,
                                    err, sizeof(err)),
                     EF_ENOTFOUND);
    assert_string_equal(err, "migrations directory /nonexistent/ef-sql: No such file or directory");
}

static void test_line_of(void **state)
{
    (void)state;
    const char *t = "CREATE TABLE a (x int);\n\nSELEC 1;\n";
    assert_int_equal(line_of(t, 1), 1);
    assert_int_equal(line_of(t, 24), 1); /* the '\n' itself */
    assert_int_equal(line_of(t, 25), 2);
    assert_int_equal(line_of(t, 26), 3);
    /* Positions count characters, not bytes: "é" is 2 bytes, 1 character. */
    const char *u = "-- caf\xc3\xa9\nSELEC 1;";
    assert_int_equal(line_of(u, 8), 1);
    assert_int_equal(line_of(u, 9), 2);
}

static void test_default_dir(void **state)
{
    (void)state;
    setenv("EF_SQL_DIR", "/srv/ef/sql", 1);
    char *d = ef_migrate_default_dir();
    assert_string_equal(d, "/srv/ef/sql");
    ef_free(d);
    unsetenv("EF_SQL_DIR");

    /* A build tree: build/easyflow next to sql/ holding migrations. */
    char *root = make_tmpdir();
    char real_root[PATH_MAX];
    assert_non_null(realpath(root, real_root));
    char *build = join_path(root, "build-address");
    char *sql = join_path(root, "sql");
    assert_int_equal(mkdir(build, 0700), 0);
    assert_int_equal(mkdir(sql, 0700), 0);
    char *exe = join_path(build, "easyflow");
    assert_null(dir_near_exe(exe)); /* sql/ without a .sql file does not count */
    put_file(sql, "001_x.sql", "SELECT 1;\n");
    d = dir_near_exe(exe);
    char *want = ef_asprintf("%s/sql", real_root);
    assert_string_equal(d, want);
    ef_free(d);
    ef_free(want);

    /* An installed tree: bin/easyflow next to share/easyflow/sql. */
    char *bin = join_path(root, "bin");
    assert_int_equal(mkdir(bin, 0700), 0);
    char *share = join_path(root, "share");
    char *share_ef = join_path(share, "easyflow");
    char *share_sql = join_path(share_ef, "sql");
    assert_int_equal(mkdir(share, 0700), 0);
    assert_int_equal(mkdir(share_ef, 0700), 0);
    assert_int_equal(mkdir(share_sql, 0700), 0);
    char *bin_exe = join_path(bin, "easyflow");
    drop_file(sql, "001_x.sql");
    rmdir(sql);
    d = dir_near_exe(bin_exe);
    want = ef_asprintf("%s/share/easyflow/sql", real_root);
    assert_string_equal(d, want);
    ef_free(d);
    ef_free(want);

    /* This test binary has neither: the compiled-in default. */
    d = ef_migrate_default_dir();
    assert_string_equal(d, EF_DEFAULT_SQL_DIR);
    ef_free(d);

    ef_free(bin_exe);
    ef_free(share_sql);
    ef_free(share_ef);
    ef_free(share);
    ef_free(bin);
    ef_free(exe);
    ef_free(sql);
    ef_free(build);
    rm_tree(root);
    ef_free(root);
}

static void test_cli_usage_and_unreachable(void **state)
{
    (void)state;
    char *out;
    char *errout;
    char *a1[] = {"--bogus"};
    assert_int_equal(run_cli(&out, &errout, 1, a1), 2);
    assert_string_equal(out, "");
    assert_non_null(strstr(errout, "easyflow migrate: unknown argument \"--bogus\""));
    assert_non_null(strstr(errout, "usage: easyflow migrate [--sql-dir DIR] [--status]"));
    ef_free(out);
    ef_free(errout);

    char *a2[] = {"--sql-dir"};
    assert_int_equal(run_cli(&out, &errout, 1, a2), 2);
    assert_non_null(strstr(errout, "--sql-dir needs a directory"));
    ef_free(out);
    ef_free(errout);

    char *a3[] = {"--help"};
    assert_int_equal(run_cli(&out, &errout, 1, a3), 0);
    assert_non_null(strstr(out, "usage: easyflow migrate"));
    ef_free(out);
    ef_free(errout);

    /* Nothing listens on port 1: a clear failure, and no password. */
    char *dir = make_tmpdir();
    put_file(dir, "001_a.sql", "SELECT 1;\n");
    char *saved = getenv("EF_DATABASE_URL") ? ef_strdup(getenv("EF_DATABASE_URL")) : NULL;
    setenv("EF_DATABASE_URL", "postgresql://ef:topsecret@127.0.0.1:1/easyflow", 1);
    char *a4[] = {"--sql-dir", dir};
    assert_int_equal(run_cli(&out, &errout, 2, a4), 1);
    assert_string_equal(out, "");
    assert_non_null(strstr(
        errout, "easyflow migrate: cannot connect to postgresql://ef:***@127.0.0.1:1/easyflow: "));
    assert_null(strstr(errout, "topsecret"));
    ef_free(out);
    ef_free(errout);
    char *a5[] = {"--status", "--sql-dir", dir};
    assert_int_equal(run_cli(&out, &errout, 3, a5), 1);
    assert_non_null(strstr(errout, "easyflow migrate: cannot connect to"));
    assert_null(strstr(errout, "topsecret"));
    ef_free(out);
    ef_free(errout);
    if (saved) {
        setenv("EF_DATABASE_URL", saved, 1);
        ef_free(saved);
    } else {
        unsetenv("EF_DATABASE_URL");
    }
    rm_tree(dir);
    ef_free(dir);
}

/* The statements next_statement() finds in text, joined by " | ". */
static char *split_all(const char *text)
{
    ef_buf b;
    ef_buf_init(&b, 1 << 16);
    size_t at = 0;
    size_t start = 0;
    size_t end = 0;
    size_t n = strlen(text);
    while (next_statement(text, n, &at, &start, &end)) {
        if (b.len)
            ef_buf_append(&b, " | ", 3);
        ef_buf_append(&b, text + start, end - start);
    }
    ef_buf_append(&b, "", 1);
    return ef_buf_steal(&b, NULL);
}

static void test_split_statements(void **state)
{
    (void)state;
    char *got =
        split_all("-- ef:no-transaction\n"
                  "CREATE INDEX CONCURRENTLY IF NOT EXISTS i1 ON t (a);\n"
                  ";; -- only a comment; here\n"
                  "/* a /* nested ; */ comment */ SELECT 'a;b', 'it''s;', E'x\\';y';\n"
                  "SELECT \"we;ird\" FROM t;"
                  "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
                  "DO $$ BEGIN PERFORM 1; END $$;\n"
                  "PREPARE p AS SELECT $1::int; SELECT a$b FROM t\n"
                  "-- trailing comment without a semicolon\n");
    assert_string_equal(got, "CREATE INDEX CONCURRENTLY IF NOT EXISTS i1 ON t (a) | "
                             "SELECT 'a;b', 'it''s;', E'x\\';y' | "
                             "SELECT \"we;ird\" FROM t | "
                             "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ "
                             "LANGUAGE sql | "
                             "DO $$ BEGIN PERFORM 1; END $$ | "
                             "PREPARE p AS SELECT $1::int | "
                             "SELECT a$b FROM t\n-- trailing comment without a semicolon\n");
    ef_free(got);
    got = split_all("  \n-- nothing\n/* at all */ ;\n");
    assert_string_equal(got, "");
    ef_free(got);
    got = split_all("SELECT 'unterminated; string");
    assert_string_equal(got, "SELECT 'unterminated; string");
    ef_free(got);
}

static void test_no_transaction_marker(void **state)
{
    (void)state;
    mig_file f = {0};
    const char *yes[] = {"-- ef:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
                         "-- ef:no-transaction  \r\nSELECT 1;", "-- ef:no-transaction"};
    const char *no[] = {"SELECT 1;\n-- ef:no-transaction\n", " -- ef:no-transaction\n",
                        "-- ef:no-transactions\n", "-- ef:no-transaction please\n", ""};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        f.text = (char *)yes[i];
        f.len = strlen(yes[i]);
        assert_true(no_transaction(&f));
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        f.text = (char *)no[i];
        f.len = strlen(no[i]);
        assert_false(no_transaction(&f));
    }
}

static void test_lock_timeout_env(void **state)
{
    (void)state;
    char err[256] = "";
    int ms = 0;
    unsetenv("EF_MIGRATE_LOCK_TIMEOUT_MS");
    assert_int_equal(lock_timeout_ms(&ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 5000);
    setenv("EF_MIGRATE_LOCK_TIMEOUT_MS", "250", 1);
    assert_int_equal(lock_timeout_ms(&ms, err, sizeof(err)), 0);
    assert_int_equal(ms, 250);
    const char *bad[] = {"0", "-5", "5s", "99999999999", "3600001"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("EF_MIGRATE_LOCK_TIMEOUT_MS", bad[i], 1);
        assert_int_equal(lock_timeout_ms(&ms, err, sizeof(err)), EF_EINVAL);
        assert_non_null(strstr(err, "EF_MIGRATE_LOCK_TIMEOUT_MS"));
    }
    /* a bad value stops the run before it touches anything */
    assert_int_equal(
        ef_migrate_run("postgresql://127.0.0.1:1/x", "/nonexistent", NULL, err, sizeof(err)),
        EF_EINVAL);
    unsetenv("EF_MIGRATE_LOCK_TIMEOUT_MS");
}

/* ---- against PostgreSQL (EF_TEST_DATABASE_URL) ------------------------- */

typedef struct dbfix {
    const char *base; /* EF_TEST_DATABASE_URL */
    char *schema;
    char *url; /* base + search_path=schema */
    char *dir; /* the migrations of this test */
} dbfix;

static PGconn *admin_conn(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to EF_TEST_DATABASE_URL: %s", PQerrorMessage(c));
    PQsetNoticeReceiver(c, notice_to_log, NULL);
    return c;
}

static void db_exec(const char *url, const char *sql)
{
    PGconn *c = admin_conn(url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
}

/* The first column of the first row, as text ("" for NULL). */
static char *db_value(const char *url, const char *sql)
{
    PGconn *c = admin_conn(url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    char *v = ef_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return v;
}

static void assert_value(const dbfix *fx, const char *sql, const char *want)
{
    char *v = db_value(fx->url, sql);
    if (strcmp(v, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", sql, v, want);
    ef_free(v);
}

static int db_setup(void **state)
{
    const char *base = getenv("EF_TEST_DATABASE_URL");
    if (!base || !*base) {
        *state = NULL;
        return 0;
    }
    static int seq;
    dbfix *fx = ef_calloc(1, sizeof(*fx));
    fx->base = base;
    fx->schema = ef_asprintf("ef_migtest_%ld_%ld_%d", (long)getpid(), (long)time(NULL), ++seq);
    char *sql = ef_asprintf("CREATE SCHEMA %s", fx->schema);
    db_exec(base, sql);
    ef_free(sql);
    fx->url = ef_asprintf("%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?",
                          fx->schema);
    fx->dir = make_tmpdir();
    *state = fx;
    return 0;
}

static int db_teardown(void **state)
{
    dbfix *fx = *state;
    if (!fx)
        return 0;
    char *sql = ef_asprintf("DROP SCHEMA %s CASCADE", fx->schema);
    db_exec(fx->base, sql);
    ef_free(sql);
    rm_tree(fx->dir);
    ef_free(fx->dir);
    ef_free(fx->url);
    ef_free(fx->schema);
    ef_free(fx);
    return 0;
}

#define NEED_DB(fx)                                                                                \
    do {                                                                                           \
        if (!(fx)) {                                                                               \
            print_message("EF_TEST_DATABASE_URL not set: skipped\n");                              \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static const char mig_a[] = "CREATE TABLE t1 (id int);\n";
static const char mig_b[] =
    "-- seed a row\nINSERT INTO t1 VALUES (1);\nCREATE TABLE t2 (x text);\n";
static const char mig_c[] = "CREATE TABLE IF NOT EXISTS t1 (id int); -- NOTICE: exists\n"
                            "CREATE INDEX ON t1 (id);\n";

static void test_db_lifecycle(void **state)
{
    dbfix *fx = *state;
    NEED_DB(fx);
    char err[1024] = "";
    put_file(fx->dir, "001_a.sql", mig_a);
    put_file(fx->dir, "002_b.sql", mig_b);
    put_file(fx->dir, "010_c.sql", mig_c);

    int pending = -1;
    assert_int_equal(ef_migrate_pending(fx->url, fx->dir, &pending, err, sizeof(err)), 0);
    assert_int_equal(pending, 3);

    /* First run: all three, and the server's NOTICE never reaches stderr
     * (the logger shows it only when pg is raised to DEBUG). */
    fflush(stderr);
    FILE *fe = tmpfile();
    int se = dup(2);
    dup2(fileno(fe), 2);
    int applied = -1;
    int rc = ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err));
    fflush(stderr);
    dup2(se, 2);
    close(se);
    char *errtext = slurp(fe);
    if (rc != 0)
        fail_msg("migrate: %s", err);
    assert_int_equal(applied, 3);
    assert_string_equal(errtext, "");
    ef_free(errtext);

    char sum_b[65];
    assert_int_equal(sha256_hex(mig_b, strlen(mig_b), sum_b), 0);
    assert_value(fx,
                 "SELECT string_agg(version || ':' || name, ',' ORDER BY version) "
                 "FROM schema_migrations",
                 "1:a,2:b,10:c");
    assert_value(fx, "SELECT checksum FROM schema_migrations WHERE version = 2", sum_b);
    assert_value(fx, "SELECT count(*) FROM t1", "1");
    assert_value(fx, "SELECT to_regclass('t2') IS NOT NULL", "t");

    /* Re-run: nothing to do. */
    applied = -1;
    assert_int_equal(ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(ef_migrate_pending(fx->url, fx->dir, &pending, err, sizeof(err)), 0);
    assert_int_equal(pending, 0);
    assert_value(fx, "SELECT count(*) FROM t1", "1");

    /* An applied file changed: refuse everything, apply nothing. */
    put_file(fx->dir, "002_b.sql", "INSERT INTO t1 VALUES (2);\nCREATE TABLE t2 (x text);\n");
    put_file(fx->dir, "011_d.sql", "CREATE TABLE t4 (x int);\n");
    mig_set now = {0};
    assert_int_equal(load_set(fx->dir, &now, err, sizeof(err)), 0);
    char want[1024];
    snprintf(want, sizeof(want),
             "%s/002_b.sql was changed after it was applied (checksum %.12s\u2026 recorded != "
             "%.12s\u2026 on disk); add a new migration instead",
             fx->dir, sum_b, now.files[1].sum);
    set_free(&now);
    applied = -1;
    assert_int_equal(ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)), EF_ECONFLICT);
    assert_string_equal(err, want);
    assert_int_equal(applied, -1);
    assert_value(fx, "SELECT to_regclass('t4') IS NULL", "t");
    assert_value(fx, "SELECT count(*) FROM schema_migrations", "3");
    assert_int_equal(ef_migrate_pending(fx->url, fx->dir, &pending, err, sizeof(err)),
                     EF_ECONFLICT);

    /* --status shows it, and says so in its exit code. */
    char *saved = getenv("EF_DATABASE_URL") ? ef_strdup(getenv("EF_DATABASE_URL")) : NULL;
    setenv("EF_DATABASE_URL", fx->url, 1);
    char *out;
    char *errout;
    char *st[] = {"--status", "--sql-dir", fx->dir};
    assert_int_equal(run_cli(&out, &errout, 3, st), 1);
    assert_non_null(strstr(out, "001_a  applied  2"));
    assert_non_null(strstr(out, "002_b  changed  (checksum "));
    assert_non_null(strstr(out, "010_c  applied  "));
    assert_non_null(strstr(out, "011_d  pending\n"));
    assert_non_null(strstr(errout, "1 applied migration is changed or missing"));
    ef_free(out);
    ef_free(errout);

    /* Restored, but an applied file is gone: refused too. */
    put_file(fx->dir, "002_b.sql", mig_b);
    drop_file(fx->dir, "001_a.sql");
    assert_int_equal(ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)), EF_ECONFLICT);
    snprintf(want, sizeof(want),
             "migration 1 (a) was applied but %s holds no file numbered 1; restore it", fx->dir);
    assert_string_equal(err, want);
    assert_value(fx, "SELECT to_regclass('t4') IS NULL", "t");
    assert_int_equal(run_cli(&out, &errout, 3, st), 1);
    assert_non_null(strstr(out, "1_a    missing  (applied "));
    ef_free(out);
    ef_free(errout);
    put_file(fx->dir, "001_a.sql", mig_a);

    /* A failing file: the ones before it stay applied, it leaves no trace. */
    put_file(fx->dir, "012_bad.sql",
             "CREATE TABLE t5 (x int);\n"
             "INSERT INTO t5 VALUES (1);\n"
             "\n"
             "SELEC 1;\n");
    applied = -1;
    assert_int_equal(ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)), EF_EDB);
    snprintf(want, sizeof(want), "%s/012_bad.sql: syntax error at or near \"SELEC\" (line 4)",
             fx->dir);
    assert_string_equal(err, want);
    assert_int_equal(applied, -1);
    assert_value(fx, "SELECT to_regclass('t4') IS NOT NULL", "t");
    assert_value(fx, "SELECT to_regclass('t5') IS NULL", "t");
    assert_value(fx,
                 "SELECT string_agg(version::text, ',' ORDER BY version) "
                 "FROM schema_migrations",
                 "1,2,10,11");

    /* The command line says what was applied before the failure. */
    drop_file(fx->dir, "012_bad.sql");
    put_file(fx->dir, "013_e.sql", "CREATE TABLE t6 (x int);\n");
    put_file(fx->dir, "014_div.sql", "SELECT 1;\nSELECT 1/0;\n");
    char *run_args[] = {"--sql-dir", fx->dir};
    assert_int_equal(run_cli(&out, &errout, 2, run_args), 1);
    assert_string_equal(out, "");
    snprintf(want, sizeof(want),
             "easyflow migrate: %s/014_div.sql: division by zero\n"
             "easyflow migrate: 1 migration was applied before that (013_e)\n",
             fx->dir);
    assert_string_equal(errout, want);
    ef_free(out);
    ef_free(errout);
    drop_file(fx->dir, "014_div.sql");
    assert_int_equal(run_cli(&out, &errout, 2, run_args), 0);
    assert_string_equal(out, "migrate: up to date (5 migrations)\n");
    ef_free(out);
    ef_free(errout);

    if (saved) {
        setenv("EF_DATABASE_URL", saved, 1);
        ef_free(saved);
    } else {
        unsetenv("EF_DATABASE_URL");
    }
}

static void test_db_cli_output_and_notices(void **state)
{
    dbfix *fx = *state;
    NEED_DB(fx);
    put_file(fx->dir, "001_a.sql", mig_a);
    put_file(fx->dir, "002_b.sql", mig_b);
    put_file(fx->dir, "010_c.sql", mig_c);
    char *saved = getenv("EF_DATABASE_URL") ? ef_strdup(getenv("EF_DATABASE_URL")) : NULL;
    setenv("EF_DATABASE_URL", fx->url, 1);
    int saved_pg = ef_log_levels[EF_C_PG];
    ef_log_levels[EF_C_PG] = EF_LOG_DEBUG;
    char *out;
    char *errout;
    char *args[] = {"--sql-dir", fx->dir};
    assert_int_equal(run_cli(&out, &errout, 2, args), 0);
    ef_log_levels[EF_C_PG] = saved_pg;
    assert_string_equal(out, "migrate: applied 3 migrations (001_a \u2026 010_c)\n");
    /* Notices come through the logger, one line each, component pg. */
    const char *n = strstr(errout, " DEBUG pg migrate server=NOTICE msg=\"relation \"t1\" already "
                                   "exists, skipping\"");
    assert_non_null(n);
    ef_free(out);
    ef_free(errout);
    /* No arguments: the directory comes from EF_SQL_DIR. */
    setenv("EF_SQL_DIR", fx->dir, 1);
    assert_int_equal(run_cli(&out, &errout, 0, NULL), 0);
    unsetenv("EF_SQL_DIR");
    assert_string_equal(out, "migrate: up to date (3 migrations)\n");
    assert_string_equal(errout, "");
    ef_free(out);
    ef_free(errout);
    put_file(fx->dir, "011_one.sql", "SELECT 1;\n");
    assert_int_equal(run_cli(&out, &errout, 2, args), 0);
    assert_string_equal(out, "migrate: applied 1 migration (011_one)\n");
    ef_free(out);
    ef_free(errout);
    if (saved) {
        setenv("EF_DATABASE_URL", saved, 1);
        ef_free(saved);
    } else {
        unsetenv("EF_DATABASE_URL");
    }
}

typedef struct racer {
    const dbfix *fx;
    int rc;
    int applied;
    char err[512];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    r->rc = ef_migrate_run(r->fx->url, r->fx->dir, &r->applied, r->err, sizeof(r->err));
    return NULL;
}

static void test_db_concurrent(void **state)
{
    dbfix *fx = *state;
    NEED_DB(fx);
    /* The first file holds the lock long enough for the others to queue. */
    put_file(fx->dir, "001_slow.sql",
             "CREATE TABLE c1 (n int);\n"
             "INSERT INTO c1 VALUES (1);\n"
             "SELECT pg_sleep(0.3);\n");
    put_file(fx->dir, "002_two.sql", "INSERT INTO c1 VALUES (2);\n");
    put_file(fx->dir, "003_three.sql", "INSERT INTO c1 VALUES (3);\n");
    enum { N = 4 };
    racer r[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        r[i].fx = fx;
        r[i].applied = -1;
        assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    int total = 0;
    int winners = 0;
    for (int i = 0; i < N; i++) {
        if (r[i].rc != 0)
            fail_msg("migrator %d: %s", i, r[i].err);
        total += r[i].applied;
        winners += r[i].applied == 3;
    }
    assert_int_equal(total, 3);
    assert_int_equal(winners, 1);
    assert_value(fx, "SELECT string_agg(n::text, ',' ORDER BY n) FROM c1", "1,2,3");
    assert_value(fx, "SELECT count(*) FROM schema_migrations", "3");

    /* Forked processes too: a fresh schema of its own. */
    char *schema2 = ef_asprintf("%s_p", fx->schema);
    char *sql = ef_asprintf("CREATE SCHEMA %s", schema2);
    db_exec(fx->base, sql);
    ef_free(sql);
    char *url2 = ef_asprintf("%s%soptions=-csearch_path%%3D%s", fx->base,
                             strchr(fx->base, '?') ? "&" : "?", schema2);
    pid_t pids[2];
    for (int i = 0; i < 2; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            int applied = -1;
            char err[512];
            int rc = ef_migrate_run(url2, fx->dir, &applied, err, sizeof(err));
            _exit(rc == 0 ? 10 + applied : 1);
        }
    }
    int codes = 0;
    for (int i = 0; i < 2; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        codes += WEXITSTATUS(status);
    }
    assert_int_equal(codes, 10 + 13); /* one applied 3, the other 0 */
    PGconn *c = admin_conn(url2);
    PGresult *res = PQexec(c, "SELECT string_agg(n::text, ',' ORDER BY n) FROM c1");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(res, 0, 0), "1,2,3");
    PQclear(res);
    PQfinish(c);
    sql = ef_asprintf("DROP SCHEMA %s CASCADE", schema2);
    db_exec(fx->base, sql);
    ef_free(sql);
    ef_free(url2);
    ef_free(schema2);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A table busy with traffic: a migration that needs its lock fails within
 * lock_timeout naming the file, instead of queueing (and making every later
 * query queue behind it); once the traffic is gone the same run applies. */
static void test_db_lock_timeout(void **state)
{
    dbfix *fx = *state;
    NEED_DB(fx);
    char err[1024] = "";
    put_file(fx->dir, "001_a.sql", mig_a);
    int applied = -1;
    if (ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)) != 0)
        fail_msg("migrate: %s", err);
    put_file(fx->dir, "002_alter.sql", "ALTER TABLE t1 ADD COLUMN y int;\n");
    PGconn *traffic = admin_conn(fx->url);
    PQclear(PQexec(traffic, "BEGIN"));
    PGresult *r = PQexec(traffic, "SELECT count(*) FROM t1");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);

    setenv("EF_MIGRATE_LOCK_TIMEOUT_MS", "300", 1);
    double t0 = mono_s();
    int rc = ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err));
    double dt = mono_s() - t0;
    assert_int_equal(rc, EF_EDB);
    if (!strstr(err, "002_alter.sql: could not get a lock in 300 ms: the table is busy; retry "
                     "when traffic is low"))
        fail_msg("unexpected error: %s", err);
    assert_true(dt < 3.0);
    assert_value(fx, "SELECT count(*) FROM schema_migrations", "1");

    /* The command line says the same, and --status still lists it pending. */
    char *out;
    char *errout;
    setenv("EF_DATABASE_URL", fx->url, 1);
    char *a1[] = {"--sql-dir", fx->dir};
    assert_int_equal(run_cli(&out, &errout, 2, a1), 1);
    assert_non_null(strstr(errout, "could not get a lock in 300 ms: the table is busy"));
    ef_free(out);
    ef_free(errout);
    char *a2[] = {"--status", "--sql-dir", fx->dir};
    assert_int_equal(run_cli(&out, &errout, 3, a2), 0);
    assert_non_null(strstr(out, "002_alter  pending\n"));
    ef_free(out);
    ef_free(errout);

    PQclear(PQexec(traffic, "COMMIT"));
    PQfinish(traffic);
    if (ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)) != 0)
        fail_msg("migrate after the traffic: %s", err);
    assert_int_equal(applied, 1);
    unsetenv("EF_MIGRATE_LOCK_TIMEOUT_MS");
    unsetenv("EF_DATABASE_URL");
}

/* "-- ef:no-transaction": CREATE INDEX CONCURRENTLY runs (it cannot in a
 * transaction), statement by statement; --status says so before it runs;
 * a failing statement names the file and says what stayed applied. */
static void test_db_no_transaction(void **state)
{
    dbfix *fx = *state;
    NEED_DB(fx);
    char err[1024] = "";
    put_file(fx->dir, "001_a.sql", "CREATE TABLE t1 (id int, note text);\n");
    put_file(fx->dir, "002_idx.sql",
             "-- ef:no-transaction\n"
             "CREATE INDEX CONCURRENTLY IF NOT EXISTS t1_id ON t1 (id);\n"
             "INSERT INTO t1 VALUES (1, 'a;b');\n"
             "CREATE OR REPLACE FUNCTION f1() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n");
    char *out;
    char *errout;
    setenv("EF_DATABASE_URL", fx->url, 1);
    char *a1[] = {"--status", "--sql-dir", fx->dir};
    assert_int_equal(run_cli(&out, &errout, 3, a1), 0);
    assert_non_null(strstr(out, "001_a    pending\n"));
    assert_non_null(
        strstr(out, "002_idx  pending  (statements one by one, outside a transaction)\n"));
    ef_free(out);
    ef_free(errout);

    int applied = -1;
    if (ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)) != 0)
        fail_msg("migrate: %s", err);
    assert_int_equal(applied, 2);
    assert_value(fx,
                 "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                 " WHERE c.relname = 't1_id' AND c.relnamespace = current_schema()::regnamespace",
                 "t");
    assert_value(fx, "SELECT note FROM t1", "a;b");
    assert_value(fx, "SELECT f1()", "1");
    assert_value(fx, "SELECT count(*) FROM schema_migrations", "2");

    /* Without the marker the same index cannot be built. */
    put_file(fx->dir, "003_in_tx.sql", "CREATE INDEX CONCURRENTLY t1_note ON t1 (note);\n");
    assert_int_equal(ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)), EF_EDB);
    assert_non_null(strstr(err, "003_in_tx.sql: CREATE INDEX CONCURRENTLY cannot run inside a "
                                "transaction block"));
    drop_file(fx->dir, "003_in_tx.sql");

    /* Statement 2 fails: the first stayed, the file is not recorded. */
    put_file(fx->dir, "004_bad.sql",
             "-- ef:no-transaction\n"
             "CREATE TABLE IF NOT EXISTS t4 (x int);\n"
             "\n"
             "INSERT INTO nope VALUES (1);\n");
    assert_int_equal(ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)), EF_EDB);
    if (!strstr(err, "004_bad.sql: relation \"nope\" does not exist (line 4); the 1 statement "
                     "before it stayed applied"))
        fail_msg("unexpected error: %s", err);
    assert_value(fx, "SELECT to_regclass('t4') IS NOT NULL", "t");
    assert_value(fx, "SELECT count(*) FROM schema_migrations", "2");

    /* BEGIN in a no-transaction file is refused and rolled back. */
    put_file(fx->dir, "004_bad.sql",
             "-- ef:no-transaction\nBEGIN;\nCREATE TABLE t5 (x int);\nCOMMIT;\n");
    assert_int_equal(ef_migrate_run(fx->url, fx->dir, &applied, err, sizeof(err)), EF_EDB);
    assert_non_null(strstr(err, "004_bad.sql: BEGIN in a -- ef:no-transaction file"));
    assert_value(fx, "SELECT to_regclass('t5') IS NULL", "t");
    unsetenv("EF_DATABASE_URL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_order_and_ignored),
        cmocka_unit_test(test_scan_bad_names),
        cmocka_unit_test(test_scan_duplicate_numbers),
        cmocka_unit_test(test_checksum),
        cmocka_unit_test(test_missing_dir),
        cmocka_unit_test(test_line_of),
        cmocka_unit_test(test_default_dir),
        cmocka_unit_test(test_cli_usage_and_unreachable),
        cmocka_unit_test(test_split_statements),
        cmocka_unit_test(test_no_transaction_marker),
        cmocka_unit_test(test_lock_timeout_env),
        cmocka_unit_test_setup_teardown(test_db_lifecycle, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_db_cli_output_and_notices, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_db_concurrent, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_db_lock_timeout, db_setup, db_teardown),
        cmocka_unit_test_setup_teardown(test_db_no_transaction, db_setup, db_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
