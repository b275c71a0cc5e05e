/*
 * pg_fixture.h -- unit tests against a real PostgreSQL: with
 * EF_TEST_DATABASE_URL (scripts/run-unit.sh points it at a fresh database)
 * each test migrates sql/ into a schema of its own, so tests never see each
 * other's rows; without it they are skipped (NEED_DB). Included after
 * cmocka.h by one test file each.
 */
#ifndef EF_TEST_PG_FIXTURE_H
#define EF_TEST_PG_FIXTURE_H

#include "base/ef.h"
#include "store/store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FX_PG_UNUSED __attribute__((unused))

typedef struct fixture {
    const char *base;
    char *schema;
    char *url;
    PGconn *admin; /* search_path = schema */
    ef_store *st;
} fixture;

FX_PG_UNUSED static void admin_exec(fixture *fx, const char *sql)
{
    PGresult *r = PQexec(fx->admin, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
}

/* The single value of a query, as an owned string ("" for NULL). */
FX_PG_UNUSED static char *admin_value(fixture *fx, const char *sql)
{
    PGresult *r = PQexec(fx->admin, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        fail_msg("%s: %s (%d rows)", sql, PQresultErrorMessage(r), PQntuples(r));
    char *v = ef_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

FX_PG_UNUSED static long admin_count(fixture *fx, const char *sql)
{
    char *v = admin_value(fx, sql);
    long n = strtol(v, NULL, 10);
    ef_free(v);
    return n;
}

static int setup(void **state)
{
    const char *base = getenv("EF_TEST_DATABASE_URL");
    if (!base || !*base) {
        *state = NULL;
        return 0;
    }
    static int seq;
    fixture *fx = ef_calloc(1, sizeof(*fx));
    fx->base = base;
    fx->schema = ef_asprintf("ef_pgtest_%ld_%ld_%d", (long)getpid(), (long)time(NULL), ++seq);
    PGconn *c = PQconnectdb(base);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to EF_TEST_DATABASE_URL: %s", PQerrorMessage(c));
    char *sql = ef_asprintf("CREATE SCHEMA %s", fx->schema);
    PQclear(PQexec(c, sql));
    ef_free(sql);
    PQfinish(c);
    fx->url = ef_asprintf("%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?",
                          fx->schema);
    const char *dir = getenv("EF_SQL_DIR") ? getenv("EF_SQL_DIR") : "sql";
    int applied = 0;
    char err[512] = "";
    if (ef_migrate_run(fx->url, dir, &applied, err, sizeof(err)) != 0)
        fail_msg("migrate: %s", err);
    fx->admin = PQconnectdb(fx->url);
    assert_int_equal(PQstatus(fx->admin), CONNECTION_OK);
    fx->st = ef_store_new(fx->url);
    *state = fx;
    return 0;
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    if (!fx)
        return 0;
    ef_store_free(fx->st);
    PQfinish(fx->admin);
    PGconn *c = PQconnectdb(fx->base);
    PQsetNoticeProcessor(c, quiet, NULL); /* "drop cascades to ..." */
    char *sql = ef_asprintf("DROP SCHEMA %s CASCADE", fx->schema);
    PQclear(PQexec(c, sql));
    ef_free(sql);
    PQfinish(c);
    ef_free(fx->schema);
    ef_free(fx->url);
    ef_free(fx);
    return 0;
}

#define NEED_DB(fx)                                                                                \
    fixture *fx = *state;                                                                          \
    do {                                                                                           \
        if (!fx) {                                                                                 \
            print_message("EF_TEST_DATABASE_URL not set: skipped\n");                              \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

#endif /* EF_TEST_PG_FIXTURE_H */
