/*
 * migrate.c -- applies sql/NNN_name.sql in order, each exactly once.
 *
 * A migration is a file named NNN_name.sql (3 or more digits, '_', then
 * [a-z0-9_]+). Its number is its identity; the SHA-256 of its bytes is
 * recorded with it in schema_migrations, so a file edited after it was
 * applied is caught before anything else runs (merged migrations are never
 * edited: STYLE.md section 1).
 *
 * Concurrency: the whole run holds a session-level advisory lock, taken
 * before schema_migrations is even created, so several processes starting
 * at once apply each file once; the later ones find everything applied.
 * They wait for it by trying again every 100 ms, never inside an open
 * transaction (take_run_lock: a CREATE INDEX CONCURRENTLY waits for those).
 *
 * Each pending file runs in its own transaction together with its
 * schema_migrations row: a file is either applied and recorded, or neither.
 *
 * A live database: every statement waits at most lock_timeout for a lock
 * (EF_MIGRATE_LOCK_TIMEOUT_MS, default 5000; set after the advisory lock so
 * a second migrator still queues behind the first). A migration that would
 * queue behind traffic (an ALTER TABLE waiting for a long SELECT, with every
 * later query queued behind the ALTER) fails instead, naming the file: "could
 * not get a lock in N ms: the table is busy; retry when traffic is low".
 *
 * A file whose first line is "-- ef:no-transaction" runs its statements one
 * by one outside any transaction (CREATE INDEX CONCURRENTLY cannot run in
 * one), then records its row. Such a file must be safe to run again (IF NOT
 * EXISTS): when statement k fails, the ones before it stay applied.
 *
 * Synchronous libpq: this runs from the command line, never on the event
 * loop. Thread model: no shared state; concurrent calls are safe (each uses
 * its own connection).
 */
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <libpq-fe.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef EF_DEFAULT_SQL_DIR
#define EF_DEFAULT_SQL_DIR "/usr/local/share/easyflow/sql"
#endif

/* pg_advisory_lock key of the migration run: "efmigrat" in ASCII. */
#define MIG_LOCK_KEY 0x65666d6967726174LL
/* A migration file larger than this is refused (bounded reads). */
#define MIG_FILE_MAX (16u * 1024u * 1024u)
#define MIG_DEFAULT_URL "postgresql://127.0.0.1:5432/easyflow"
/* lock_timeout of every migration statement, in ms (EF_MIGRATE_LOCK_TIMEOUT_MS). */
#define MIG_LOCK_TIMEOUT_DEFAULT_MS 5000
#define MIG_LOCK_TIMEOUT_MAX_MS 3600000
/* The first line of a file whose statements run outside a transaction. */
#define MIG_NO_TX_MARKER "-- ef:no-transaction"

typedef struct mig_file {
    int64_t version;
    char *file; /* "002_x.sql" */
    char *stem; /* "002_x" */
    char *name; /* "x" (schema_migrations.name) */
    char *path; /* "<dir>/002_x.sql" */
    char *text; /* the file's bytes, NUL-terminated */
    size_t len;
    char sum[65]; /* SHA-256, lowercase hex */
} mig_file;

typedef struct mig_set {
    mig_file *files; /* sorted by version */
    size_t n;
} mig_set;

typedef struct mig_row {
    int64_t version;
    char *name;
    char *checksum;
    char *applied_at; /* UTC, "YYYY-MM-DD HH:MM:SSZ" */
} mig_row;

typedef struct mig_rows {
    mig_row *rows; /* sorted by version */
    size_t n;
} mig_rows;

/* What one run did, for the command line's summary. */
typedef struct mig_report {
    int applied;
    size_t total; /* migrations in the directory */
    char *first;  /* stem of the first file applied */
    char *last;   /* stem of the last file applied */
} mig_report;

/* ---- the files ---------------------------------------------------------- */

static void set_free(mig_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        ef_free(s->files[i].file);
        ef_free(s->files[i].stem);
        ef_free(s->files[i].name);
        ef_free(s->files[i].path);
        ef_free(s->files[i].text);
    }
    ef_free(s->files);
    s->files = NULL;
    s->n = 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "NNN_name.sql" -> version and name. False for anything else. */
static bool parse_name(const char *file, int64_t *version, const char **name, size_t *namelen)
{
    const char *p = file;
    int64_t v = 0;
    size_t digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (v <= INT32_MAX)
            v = v * 10 + (*p - '0');
        digits++;
        p++;
    }
    if (digits < 3 || *p != '_')
        return false;
    const char *n = ++p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
        p++;
    if (p == n || strcmp(p, ".sql") != 0)
        return false;
    *version = v;
    *name = n;
    *namelen = (size_t)(p - n);
    return true;
}

static int cmp_file(const void *a, const void *b)
{
    const mig_file *x = a;
    const mig_file *y = b;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return strcmp(x->file, y->file);
}

static char *join_path(const char *dir, const char *file)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return ef_asprintf("%.*s/%s", (int)n, dir, file);
}

/* Lists the migrations of dir, sorted by number. Hidden files, directories
 * and names not ending in .sql are ignored; any other .sql name, or two
 * files with one number, is EF_EINVAL naming the file. */
static int scan_dir(const char *dir, mig_set *out, char *err, size_t errlen)
{
    mig_set s = {0};
    size_t cap = 0;
    int rc = 0;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        ef_errf(err, errlen, "migrations directory %s: %s", dir, strerror(e));
        return e == ENOENT ? EF_ENOTFOUND : EF_EIO;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *fn = de->d_name;
        if (fn[0] == '.' || !ends_with(fn, ".sql"))
            continue;
        char *path = join_path(dir, fn);
        struct stat st;
        if (stat(path, &st) != 0 || S_ISDIR(st.st_mode)) {
            ef_free(path);
            continue;
        }
        int64_t version;
        const char *name;
        size_t namelen;
        if (!parse_name(fn, &version, &name, &namelen)) {
            ef_errf(err, errlen,
                    "%s: not a migration name (expected NNN_name.sql: 3 or more digits, '_', "
                    "then a-z 0-9 _)",
                    path);
            ef_free(path);
            rc = EF_EINVAL;
            goto fail;
        }
        if (version > INT32_MAX) {
            ef_errf(err, errlen, "%s: migration number too large (at most %d)", path, INT32_MAX);
            ef_free(path);
            rc = EF_EINVAL;
            goto fail;
        }
        if (s.n == cap) {
            cap = cap ? cap * 2 : 16;
            s.files = ef_realloc(s.files, cap * sizeof(*s.files));
        }
        mig_file *f = &s.files[s.n++];
        memset(f, 0, sizeof(*f));
        f->version = version;
        f->file = ef_strdup(fn);
        f->stem = ef_strndup(fn, strlen(fn) - 4);
        f->name = ef_strndup(name, namelen);
        f->path = path;
    }
    if (s.n > 0)
        qsort(s.files, s.n, sizeof(*s.files), cmp_file);
    for (size_t i = 1; i < s.n; i++) {
        if (s.files[i].version == s.files[i - 1].version) {
            ef_errf(err, errlen, "%s: number %lld is already used by %s", s.files[i].path,
                    (long long)s.files[i].version, s.files[i - 1].path);
            rc = EF_EINVAL;
            goto fail;
        }
    }
    closedir(d);
    *out = s;
    return 0;
fail:
    closedir(d);
    set_free(&s);
    return rc;
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return EF_EIO;
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

/* Reads f's bytes (bounded) and computes their checksum. */
static int read_file(mig_file *f, char *err, size_t errlen)
{
    int rc = 0;
    ef_buf b;
    ef_buf_init(&b, MIG_FILE_MAX);
    FILE *fp = fopen(f->path, "rb");
    if (!fp) {
        ef_errf(err, errlen, "%s: %s", f->path, strerror(errno));
        return EF_EIO;
    }
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (ef_buf_append(&b, chunk, n) != 0) {
            ef_errf(err, errlen, "%s: larger than %u bytes", f->path, MIG_FILE_MAX);
            rc = EF_ELIMIT;
            goto fail;
        }
    }
    if (ferror(fp)) {
        ef_errf(err, errlen, "%s: read error", f->path);
        rc = EF_EIO;
        goto fail;
    }
    if (b.len > 0 && memchr(b.data, '\0', b.len)) {
        ef_errf(err, errlen, "%s: contains a NUL byte", f->path);
        rc = EF_EINVAL;
        goto fail;
    }
    rc = sha256_hex(b.data ? b.data : "", b.len, f->sum);
    if (rc) {
        ef_errf(err, errlen, "%s: SHA-256 failed", f->path);
        goto fail;
    }
    f->text = ef_buf_steal(&b, &f->len);
fail:
    ef_buf_cleanup(&b);
    fclose(fp);
    return rc;
}

/* scan_dir + every file's bytes and checksum. */
static int load_set(const char *dir, mig_set *out, char *err, size_t errlen)
{
    mig_set s = {0};
    int rc = scan_dir(dir, &s, err, errlen);
    if (rc)
        return rc;
    for (size_t i = 0; i < s.n; i++) {
        rc = read_file(&s.files[i], err, errlen);
        if (rc) {
            set_free(&s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

/* ---- the database ------------------------------------------------------- */

static void rows_free(mig_rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        ef_free(r->rows[i].name);
        ef_free(r->rows[i].checksum);
        ef_free(r->rows[i].applied_at);
    }
    ef_free(r->rows);
    r->rows = NULL;
    r->n = 0;
}

/* Server notices ("extension ... already exists, skipping") go to the log
 * at DEBUG; warnings at WARN. Nothing reaches stderr directly. */
static void notice_to_log(void *arg, const PGresult *res)
{
    (void)arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (!msg)
        msg = PQresultErrorMessage(res);
    int n = (int)strcspn(msg, "\n");
    if (sev && strcmp(sev, "WARNING") == 0)
        EF_LOG(EF_LOG_WARN, EF_C_PG, "migrate server=WARNING msg=\"%.*s\"", n, msg);
    else
        EF_LOG(EF_LOG_DEBUG, EF_C_PG, "migrate server=%s msg=\"%.*s\"", sev ? sev : "NOTICE", n,
               msg);
}

static int first_line_len(const char *s)
{
    size_t n = strcspn(s, "\n");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\r'))
        n--;
    return (int)n;
}

/* connect_timeout=5 and client_encoding=UTF8 come before the URL, so the
 * URL's own settings win (libpq applies the arrays in order). */
static PGconn *connect_db(const char *url, char *err, size_t errlen)
{
    const char *const kw[] = {"connect_timeout", "client_encoding", "fallback_application_name",
                              "dbname", NULL};
    const char *const val[] = {"5", "UTF8", "easyflow-migrate", url, NULL};
    PGconn *conn = PQconnectdbParams(kw, val, 1);
    if (!conn) {
        ef_errf(err, errlen, "cannot connect: libpq out of memory");
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char *shown = ef_redact_url(url);
        const char *msg = PQerrorMessage(conn);
        ef_errf(err, errlen, "cannot connect to %s: %.*s", shown, first_line_len(msg), msg);
        ef_free(shown);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeReceiver(conn, notice_to_log, NULL);
    return conn;
}

/* Runs one statement that returns nothing of interest. */
static int exec_simple(PGconn *conn, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return 0;
    }
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg)
        msg = PQerrorMessage(conn);
    ef_errf(err, errlen, "%s: %.*s", what, first_line_len(msg), msg);
    PQclear(r);
    return EF_EDB;
}

/* Takes the run's advisory lock, waiting as long as another run holds it.
 * Not pg_advisory_lock(): a migrator blocked in it sits in an open
 * transaction, and a CREATE INDEX CONCURRENTLY of the run holding the lock
 * waits for every open transaction to end -- a deadlock PostgreSQL breaks
 * by failing the waiting migrator. Each try here is a transaction of its
 * own that ends at once. */
static int take_run_lock(PGconn *conn, char *err, size_t errlen)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%lld)", (long long)MIG_LOCK_KEY);
    for (bool said = false;; said = true) {
        PGresult *r = PQexec(conn, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
            if (!msg)
                msg = PQerrorMessage(conn);
            ef_errf(err, errlen, "taking the migration lock: %.*s", first_line_len(msg), msg);
            PQclear(r);
            return EF_EDB;
        }
        bool got = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (got)
            return 0;
        if (!said)
            EF_LOG(EF_LOG_INFO, EF_C_PG, "migrate: another migration run holds the lock, waiting");
        usleep(100 * 1000);
    }
}

static const char create_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       " version INTEGER PRIMARY KEY,"
                                       " name TEXT NOT NULL,"
                                       " checksum TEXT NOT NULL,"
                                       " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

/* The applied rows, oldest first; none when the table does not exist. */
static int read_rows(PGconn *conn, mig_rows *out, char *err, size_t errlen)
{
    mig_rows rows = {0};
    PGresult *r = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *msg = PQerrorMessage(conn);
        ef_errf(err, errlen, "reading schema_migrations: %.*s", first_line_len(msg), msg);
        PQclear(r);
        return EF_EDB;
    }
    bool exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    if (!exists) {
        *out = rows;
        return 0;
    }
    r = PQexec(conn, "SELECT version, name, checksum,"
                     " to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS\"Z\"')"
                     " FROM schema_migrations ORDER BY version");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *msg = PQerrorMessage(conn);
        ef_errf(err, errlen, "reading schema_migrations: %.*s", first_line_len(msg), msg);
        PQclear(r);
        return EF_EDB;
    }
    int n = PQntuples(r);
    rows.rows = ef_calloc((size_t)n, sizeof(*rows.rows));
    for (int i = 0; i < n; i++) {
        mig_row *row = &rows.rows[rows.n++];
        row->version = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        row->name = ef_strdup(PQgetvalue(r, i, 1));
        row->checksum = ef_strdup(PQgetvalue(r, i, 2));
        row->applied_at = ef_strdup(PQgetvalue(r, i, 3));
    }
    PQclear(r);
    *out = rows;
    return 0;
}

static const mig_row *find_row(const mig_rows *rows, int64_t version)
{
    for (size_t i = 0; i < rows->n; i++)
        if (rows->rows[i].version == version)
            return &rows->rows[i];
    return NULL;
}

static const mig_file *find_file(const mig_set *s, int64_t version)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->files[i].version == version)
            return &s->files[i];
    return NULL;
}

static void changed_msg(const mig_file *f, const mig_row *row, char *err, size_t errlen)
{
    ef_errf(err, errlen,
            "%s was changed after it was applied (checksum %.12s\u2026 recorded != %.12s\u2026 on "
            "disk); add a new migration instead",
            f->path, row->checksum, f->sum);
}

static void missing_msg(const char *dir, const mig_row *row, char *err, size_t errlen)
{
    ef_errf(err, errlen,
            "migration %lld (%s) was applied but %s holds no file numbered %lld; restore it",
            (long long)row->version, row->name, dir, (long long)row->version);
}

/* Every applied migration must still be there, byte for byte. */
static int check_applied(const char *dir, const mig_set *s, const mig_rows *rows, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < rows->n; i++) {
        const mig_row *row = &rows->rows[i];
        const mig_file *f = find_file(s, row->version);
        if (!f) {
            missing_msg(dir, row, err, errlen);
            return EF_ECONFLICT;
        }
        if (strcmp(f->sum, row->checksum) != 0) {
            changed_msg(f, row, err, errlen);
            return EF_ECONFLICT;
        }
    }
    return 0;
}

/* 1-based line of a 1-based character position in text (UTF-8). */
static int line_of(const char *text, long pos)
{
    int line = 1;
    long ch = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if ((*p & 0xC0) == 0x80)
            continue;
        if (++ch >= pos)
            break;
        if (*p == '\n')
            line++;
    }
    return line;
}

/* A file that starts COPY ... FROM STDIN / TO STDOUT leaves the connection
 * in copy mode: end it so ROLLBACK can run. */
static void end_copy(PGconn *conn, ExecStatusType st)
{
    if (st == PGRES_COPY_IN) {
        PQputCopyEnd(conn, "COPY FROM STDIN is not supported in migrations");
    } else if (st == PGRES_COPY_OUT) {
        char *buf = NULL;
        while (PQgetCopyData(conn, &buf, 0) > 0) {
            PQfreemem(buf);
            buf = NULL;
        }
    }
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL)
        PQclear(r);
}

/* ---- lock waits and statements outside a transaction ------------------ */

/* EF_MIGRATE_LOCK_TIMEOUT_MS, or the default; EF_EINVAL for anything but
 * a whole number of milliseconds in 1..MIG_LOCK_TIMEOUT_MAX_MS. */
static int lock_timeout_ms(int *out, char *err, size_t errlen)
{
    const char *v = getenv("EF_MIGRATE_LOCK_TIMEOUT_MS");
    if (!v || !*v) {
        *out = MIG_LOCK_TIMEOUT_DEFAULT_MS;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long ms = strtol(v, &end, 10);
    if (errno || *end != '\0' || ms < 1 || ms > MIG_LOCK_TIMEOUT_MAX_MS) {
        ef_errf(err, errlen, "EF_MIGRATE_LOCK_TIMEOUT_MS=\"%.32s\": expected 1..%d (milliseconds)",
                v, MIG_LOCK_TIMEOUT_MAX_MS);
        return EF_EINVAL;
    }
    *out = (int)ms;
    return 0;
}

/* SQLSTATE 55P03 lock_not_available: lock_timeout ran out. */
static bool lock_timed_out(const PGresult *r)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return st && strcmp(st, "55P03") == 0;
}

/* err = "<path>: <what went wrong> (line N)" for the failed result r of
 * a statement that starts at byte `base` of f's text. */
static void stmt_error(PGconn *conn, const PGresult *r, const mig_file *f, size_t base, int lock_ms,
                       char *err, size_t errlen)
{
    if (lock_timed_out(r)) {
        ef_errf(err, errlen,
                "%s: could not get a lock in %d ms: the table is busy; retry when traffic is low",
                f->path, lock_ms);
        return;
    }
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *pos = r ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;
    if (!msg)
        msg = PQerrorMessage(conn);
    long p = pos ? strtol(pos, NULL, 10) : 0;
    if (p > 0) {
        int line = line_of(f->text + base, p);
        for (size_t i = 0; i < base; i++)
            line += f->text[i] == '\n';
        ef_errf(err, errlen, "%s: %.*s (line %d)", f->path, first_line_len(msg), msg, line);
    } else {
        ef_errf(err, errlen, "%s: %.*s", f->path, first_line_len(msg), msg);
    }
}

/* True when f's first line is the no-transaction marker. */
static bool no_transaction(const mig_file *f)
{
    size_t m = strlen(MIG_NO_TX_MARKER);
    if (f->len < m || strncmp(f->text, MIG_NO_TX_MARKER, m) != 0)
        return false;
    const char *p = f->text + m;
    while (*p == ' ' || *p == '\t' || *p == '\r')
        p++;
    return *p == '\n' || *p == '\0';
}

static bool ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           (unsigned char)c >= 0x80;
}

/* At s[i] == '$': the length of a dollar-quote tag ("$$", "$body$"), or 0
 * when this '$' opens none ($1 parameters, "a$b" identifiers). */
static size_t dollar_tag(const char *s, size_t n, size_t i)
{
    if (i > 0 && ident_char(s[i - 1]))
        return 0;
    size_t j = i + 1;
    if (j < n && s[j] >= '0' && s[j] <= '9')
        return 0;
    while (j < n && ident_char(s[j]) && s[j] != '$')
        j++;
    return j < n && s[j] == '$' ? j + 1 - i : 0;
}

/* The end of the quoted or commented token that starts at s[i], or i when
 * none starts there: '...' (E'' with backslashes), "...", $tag$...$tag$,
 * -- to the end of the line, nested slash-star comments. An unterminated
 * one runs to n (the server reports the error). */
static size_t skip_token(const char *s, size_t n, size_t i)
{
    char c = s[i];
    if (c == '-' && i + 1 < n && s[i + 1] == '-') {
        const char *nl = memchr(s + i, '\n', n - i);
        return nl ? (size_t)(nl - s) + 1 : n;
    }
    if (c == '/' && i + 1 < n && s[i + 1] == '*') {
        int depth = 0;
        for (size_t j = i; j + 1 < n; j++) {
            if (s[j] == '/' && s[j + 1] == '*') {
                depth++;
                j++;
            } else if (s[j] == '*' && s[j + 1] == '/') {
                j++;
                if (--depth == 0)
                    return j + 1;
            }
        }
        return n;
    }
    if (c == '\'' || c == '"') {
        bool esc = c == '\'' && i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
                   (i < 2 || !ident_char(s[i - 2]));
        for (size_t j = i + 1; j < n; j++) {
            if (esc && s[j] == '\\')
                j++;
            else if (s[j] == c)
                return j + 1; /* a doubled quote re-enters as a new token */
        }
        return n;
    }
    size_t tag = c == '$' ? dollar_tag(s, n, i) : 0;
    if (tag) {
        for (size_t j = i + tag; j + tag <= n; j++)
            if (s[j] == '$' && memcmp(s + j, s + i, tag) == 0)
                return j + tag;
        return n;
    }
    return i;
}

/* The next statement of s[*at..n): its bounds in [*start, *end) (the ';'
 * excluded); *at moves past it. False when only blanks and comments are
 * left. */
static bool next_statement(const char *s, size_t n, size_t *at, size_t *start, size_t *end)
{
    size_t i = *at;
    bool found = false;
    while (i < n) {
        if (s[i] == ';') {
            if (found)
                break;
            i++; /* an empty statement */
            continue;
        }
        size_t j = skip_token(s, n, i);
        bool comment = j > i && (s[i] == '-' || s[i] == '/');
        if (!found && !comment && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') {
            found = true;
            *start = i;
        }
        i = j > i ? j : i + 1;
    }
    *end = i;
    *at = i < n ? i + 1 : n;
    return found;
}

/* Runs one statement of a no-transaction file; err as stmt_error(). */
static int exec_statement(PGconn *conn, const mig_file *f, size_t start, size_t end, int lock_ms,
                          char *err, size_t errlen)
{
    char *sql = ef_strndup(f->text + start, end - start);
    PGresult *r = PQexec(conn, sql);
    ef_free(sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = 0;
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
        end_copy(conn, st);
        ef_errf(err, errlen, "%s: COPY from stdin / to stdout cannot run in a migration", f->path);
        rc = EF_EDB;
    } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        stmt_error(conn, r, f, start, lock_ms, err, errlen);
        rc = EF_EDB;
    } else if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        ef_errf(err, errlen,
                "%s: BEGIN in a %s file; remove the marker to run the file in one transaction",
                f->path, MIG_NO_TX_MARKER);
        rc = EF_EDB;
    }
    PQclear(r);
    if (rc && PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}

/* Appends to err that statements before the failing one stayed applied. */
static void note_partial(int done, char *err, size_t errlen)
{
    if (done == 0)
        return;
    size_t n = strlen(err);
    snprintf(err + n, errlen - n,
             "; the %d statement%s before it stayed applied (no transaction): make the file safe "
             "to run again (IF NOT EXISTS) and retry",
             done, done == 1 ? "" : "s");
}

/* The schema_migrations row of f, in the current transaction if any. */
static int record_row(PGconn *conn, const mig_file *f, int lock_ms, char *err, size_t errlen)
{
    char version[24];
    snprintf(version, sizeof(version), "%lld", (long long)f->version);
    const char *params[3] = {version, f->name, f->sum};
    PGresult *r = PQexecParams(
        conn, "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", 3,
        NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
        PQclear(r);
        return 0;
    }
    if (lock_timed_out(r)) {
        stmt_error(conn, r, f, 0, lock_ms, err, errlen);
    } else {
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (!msg)
            msg = PQerrorMessage(conn);
        ef_errf(err, errlen, "%s: recording it in schema_migrations: %.*s", f->path,
                first_line_len(msg), msg);
    }
    PQclear(r);
    return EF_EDB;
}

/* A "-- ef:no-transaction" file: each statement on its own, then its row. */
static int apply_no_tx(PGconn *conn, const mig_file *f, int lock_ms, char *err, size_t errlen)
{
    size_t at = 0;
    size_t start = 0;
    size_t end = 0;
    int done = 0;
    while (next_statement(f->text, f->len, &at, &start, &end)) {
        int rc = exec_statement(conn, f, start, end, lock_ms, err, errlen);
        if (rc) {
            note_partial(done, err, errlen);
            return rc;
        }
        done++;
    }
    int rc = record_row(conn, f, lock_ms, err, errlen);
    if (rc)
        note_partial(done, err, errlen);
    return rc;
}

/* BEGIN; the file; its schema_migrations row; COMMIT. On failure the
 * transaction is rolled back and err names the file and the line. */
static int apply_one(PGconn *conn, const mig_file *f, int lock_ms, char *err, size_t errlen)
{
    int rc = exec_simple(conn, "BEGIN", f->path, err, errlen);
    if (rc)
        return rc;
    PGresult *r = PQexec(conn, f->text);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
        PQclear(r);
        r = NULL;
        end_copy(conn, st);
        ef_errf(err, errlen, "%s: COPY from stdin / to stdout cannot run in a migration", f->path);
        rc = EF_EDB;
        goto fail;
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY) {
        stmt_error(conn, r, f, 0, lock_ms, err, errlen);
        rc = EF_EDB;
        goto fail;
    }
    PQclear(r);
    r = NULL;
    if (PQtransactionStatus(conn) != PQTRANS_INTRANS) {
        ef_errf(err, errlen,
                "%s: the file ends the migration's transaction itself (COMMIT or ROLLBACK "
                "inside a migration); remove it",
                f->path);
        rc = EF_EDB;
        goto fail;
    }
    rc = record_row(conn, f, lock_ms, err, errlen);
    if (rc)
        goto fail;
    r = PQexec(conn, "COMMIT");
    /* COMMIT of a failed transaction answers "ROLLBACK" with COMMAND_OK. */
    if (PQresultStatus(r) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        if (!msg)
            msg = "the transaction was rolled back";
        ef_errf(err, errlen, "%s: COMMIT failed: %.*s", f->path, first_line_len(msg), msg);
        PQclear(r);
        return EF_EDB;
    }
    PQclear(r);
    return 0;
fail:
    PQclear(r);
    if (PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}

static void report_free(mig_report *rep)
{
    ef_free(rep->first);
    ef_free(rep->last);
    rep->first = rep->last = NULL;
}

static int run(const char *pg_url, const char *dir, mig_report *rep, char *err, size_t errlen)
{
    mig_set s = {0};
    mig_rows rows = {0};
    PGconn *conn = NULL;
    bool locked = false;
    char lock_sql[96];
    int lock_ms = 0;
    int rc = lock_timeout_ms(&lock_ms, err, errlen);
    if (rc)
        return rc;
    rc = load_set(dir, &s, err, errlen);
    if (rc)
        return rc;
    conn = connect_db(pg_url, err, errlen);
    if (!conn) {
        rc = EF_EDB;
        goto fail;
    }
    rc = take_run_lock(conn, err, errlen);
    if (rc)
        goto fail;
    locked = true;
    rc = exec_simple(conn, create_table_sql, "creating schema_migrations", err, errlen);
    if (rc)
        goto fail;
    /* After the advisory lock: a second migrator queues behind the first. */
    snprintf(lock_sql, sizeof(lock_sql), "SET lock_timeout = %d", lock_ms);
    rc = exec_simple(conn, lock_sql, "setting lock_timeout", err, errlen);
    if (rc)
        goto fail;
    rc = read_rows(conn, &rows, err, errlen);
    if (rc)
        goto fail;
    rc = check_applied(dir, &s, &rows, err, errlen);
    if (rc)
        goto fail;
    rep->total = s.n;
    for (size_t i = 0; i < s.n; i++) {
        const mig_file *f = &s.files[i];
        if (find_row(&rows, f->version))
            continue;
        int64_t t0 = ef_now_ms();
        rc = no_transaction(f) ? apply_no_tx(conn, f, lock_ms, err, errlen)
                               : apply_one(conn, f, lock_ms, err, errlen);
        if (rc)
            goto fail;
        EF_LOG(EF_LOG_DEBUG, EF_C_PG, "migrate applied file=%s ms=%lld", f->file,
               (long long)(ef_now_ms() - t0));
        rep->applied++;
        if (!rep->first)
            rep->first = ef_strdup(f->stem);
        ef_free(rep->last);
        rep->last = ef_strdup(f->stem);
    }
fail:
    if (locked && PQstatus(conn) == CONNECTION_OK) {
        snprintf(lock_sql, sizeof(lock_sql), "SELECT pg_advisory_unlock(%lld)",
                 (long long)MIG_LOCK_KEY);
        PQclear(PQexec(conn, lock_sql));
    }
    PQfinish(conn);
    rows_free(&rows);
    set_free(&s);
    return rc;
}

int ef_migrate_run(const char *pg_url, const char *dir, int *applied, char *err, size_t errlen)
{
    mig_report rep = {0};
    int rc = run(pg_url, dir, &rep, err, errlen);
    if (rc == 0 && applied)
        *applied = rep.applied;
    report_free(&rep);
    return rc;
}

/* The files and the applied rows, read without the lock and without
 * creating anything. */
static int load_state(const char *pg_url, const char *dir, mig_set *s, mig_rows *rows, char *err,
                      size_t errlen)
{
    int rc = load_set(dir, s, err, errlen);
    if (rc)
        return rc;
    PGconn *conn = connect_db(pg_url, err, errlen);
    if (!conn) {
        set_free(s);
        return EF_EDB;
    }
    rc = read_rows(conn, rows, err, errlen);
    PQfinish(conn);
    if (rc)
        set_free(s);
    return rc;
}

int ef_migrate_pending(const char *pg_url, const char *dir, int *pending, char *err, size_t errlen)
{
    mig_set s = {0};
    mig_rows rows = {0};
    int rc = load_state(pg_url, dir, &s, &rows, err, errlen);
    if (rc)
        return rc;
    rc = check_applied(dir, &s, &rows, err, errlen);
    if (rc == 0) {
        int n = 0;
        for (size_t i = 0; i < s.n; i++)
            if (!find_row(&rows, s.files[i].version))
                n++;
        if (pending)
            *pending = n;
    }
    rows_free(&rows);
    set_free(&s);
    return rc;
}

/* ---- where the files are ------------------------------------------------ */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool holds_sql(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL)
        found = de->d_name[0] != '.' && ends_with(de->d_name, ".sql");
    closedir(d);
    return found;
}

/* Canonical form of an existing path (an owned copy of path if that fails). */
static char *canonical(const char *path)
{
    char buf[PATH_MAX];
    return ef_strdup(realpath(path, buf) ? buf : path);
}

/* The build tree's sql/ or the installed share/easyflow/sql next to the
 * executable at exe; NULL when neither is there. */
static char *dir_near_exe(const char *exe)
{
    const char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    char *bin = ef_strndup(exe, (size_t)(slash - exe));
    char *out = NULL;
    char *cand = ef_asprintf("%s/../sql", bin);
    if (holds_sql(cand)) {
        out = canonical(cand);
        goto done;
    }
    ef_free(cand);
    cand = ef_asprintf("%s/../share/easyflow/sql", bin);
    if (is_dir(cand))
        out = canonical(cand);
done:
    ef_free(cand);
    ef_free(bin);
    return out;
}

char *ef_migrate_default_dir(void)
{
    const char *env = getenv("EF_SQL_DIR");
    if (env && *env)
        return ef_strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *d = dir_near_exe(exe);
        if (d)
            return d;
    }
    return ef_strdup(EF_DEFAULT_SQL_DIR);
}

/* ---- easyflow migrate --------------------------------------------------- */

static const char usage[] =
    "usage: easyflow migrate [--sql-dir DIR] [--status]\n"
    "  Applies the pending sql/NNN_name.sql migrations to EF_DATABASE_URL.\n"
    "  --sql-dir DIR  where the migrations are (default: $EF_SQL_DIR, else\n"
    "                 the sql/ next to the binary, else the installed copy)\n"
    "  --status       list each migration as applied, pending or changed\n"
    "  Each statement waits at most EF_MIGRATE_LOCK_TIMEOUT_MS (default 5000) for\n"
    "  a lock, then the run fails rather than queue behind traffic. A file whose\n"
    "  first line is \"" MIG_NO_TX_MARKER "\" runs its statements one by one\n"
    "  outside a transaction (CREATE INDEX CONCURRENTLY).\n";

/* One line per file (and per applied version whose file is gone). Returns
 * the number of changed or missing migrations. */
static int print_status(const char *dir, const mig_set *s, const mig_rows *rows, FILE *out)
{
    int bad = 0;
    int width = 1;
    for (size_t i = 0; i < s->n; i++)
        if ((int)strlen(s->files[i].stem) > width)
            width = (int)strlen(s->files[i].stem);
    for (size_t i = 0; i < rows->n; i++) {
        int n = snprintf(NULL, 0, "%lld_%s", (long long)rows->rows[i].version, rows->rows[i].name);
        if (!find_file(s, rows->rows[i].version) && n > width)
            width = n;
    }
    for (size_t i = 0; i < s->n; i++) {
        const mig_file *f = &s->files[i];
        const mig_row *row = find_row(rows, f->version);
        if (!row) {
            fprintf(out, "%-*s  pending%s\n", width, f->stem,
                    no_transaction(f) ? "  (statements one by one, outside a transaction)" : "");
        } else if (strcmp(row->checksum, f->sum) != 0) {
            fprintf(out, "%-*s  changed  (checksum %.12s\u2026 recorded != %.12s\u2026 on disk)\n",
                    width, f->stem, row->checksum, f->sum);
            bad++;
        } else {
            fprintf(out, "%-*s  applied  %s\n", width, f->stem, row->applied_at);
        }
    }
    for (size_t i = 0; i < rows->n; i++) {
        const mig_row *row = &rows->rows[i];
        if (!find_file(s, row->version)) {
            char label[64];
            snprintf(label, sizeof(label), "%lld_%s", (long long)row->version, row->name);
            fprintf(out, "%-*s  missing  (applied %s, no file numbered %lld in %s)\n", width, label,
                    row->applied_at, (long long)row->version, dir);
            bad++;
        }
    }
    return bad;
}

int ef_migrate_cli(int argc, char **argv)
{
    const char *dir_arg = NULL;
    bool status = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--sql-dir") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                fprintf(stderr, "easyflow migrate: --sql-dir needs a directory\n%s", usage);
                return 2;
            }
            dir_arg = argv[++i];
        } else if (strncmp(argv[i], "--sql-dir=", 10) == 0 && argv[i][10] != '\0') {
            dir_arg = argv[i] + 10;
        } else if (strcmp(argv[i], "--status") == 0) {
            status = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "easyflow migrate: unknown argument \"%.64s\"\n%s", argv[i], usage);
            return 2;
        }
    }
    const char *url = getenv("EF_DATABASE_URL");
    if (!url || !*url)
        url = MIG_DEFAULT_URL;
    char *dir = dir_arg ? ef_strdup(dir_arg) : ef_migrate_default_dir();
    char err[1024] = "";
    int code = 0;
    if (status) {
        mig_set s = {0};
        mig_rows rows = {0};
        int rc = load_state(url, dir, &s, &rows, err, sizeof(err));
        if (rc) {
            fprintf(stderr, "easyflow migrate: %s\n", err);
            code = 1;
        } else {
            int bad = print_status(dir, &s, &rows, stdout);
            if (bad) {
                fprintf(stderr,
                        "easyflow migrate: %d applied migration%s changed or missing; "
                        "`easyflow migrate` will refuse to run\n",
                        bad, bad == 1 ? " is" : "s are");
                code = 1;
            }
            rows_free(&rows);
            set_free(&s);
        }
    } else {
        mig_report rep = {0};
        int rc = run(url, dir, &rep, err, sizeof(err));
        if (rc) {
            fprintf(stderr, "easyflow migrate: %s\n", err);
            if (rep.applied > 0)
                fprintf(stderr, "easyflow migrate: %d migration%s applied before that (%s%s%s)\n",
                        rep.applied, rep.applied == 1 ? " was" : "s were", rep.first,
                        rep.applied > 1 ? " \u2026 " : "", rep.applied > 1 ? rep.last : "");
            code = 1;
        } else if (rep.applied == 0) {
            printf("migrate: up to date (%zu migration%s)\n", rep.total, rep.total == 1 ? "" : "s");
        } else {
            printf("migrate: applied %d migration%s (%s%s%s)\n", rep.applied,
                   rep.applied == 1 ? "" : "s", rep.first, rep.applied > 1 ? " \u2026 " : "",
                   rep.applied > 1 ? rep.last : "");
        }
        report_free(&rep);
    }
    fflush(stdout);
    ef_free(dir);
    return code;
}
