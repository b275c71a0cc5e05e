/*
 * store_int.h -- what the PostgreSQL files of src/store share (pg.c,
 * integrations.c). Private to src/store and its tests.
 *
 * Thread model: as store.h (one ef_store, one thread at a time).
 */
#ifndef EF_STORE_INT_H
#define EF_STORE_INT_H

#include "store/store.h"

#include <libpq-fe.h>

struct ef_store {
    char *url;
    PGconn *conn;
    bool ok;                 /* the last call reached the server (no outage) */
    bool listening;          /* LISTEN ef_integrations holds on this connection */
    int64_t next_connect_ms; /* do not hammer a server that is down */
    int last_error;          /* the last failed statement: EF_EDB or EF_EINVAL */
    char sqlstate[6];        /* its SQLSTATE ("" when there was no result) */
    char reason[200];        /* its one-line reason without data (see ef_store__reason) */
    char errmsg[512];
};

/* Connects when needed; EF_EDB when the server cannot be reached. */
int ef_store__connect(ef_store *st);
/* Runs one parameterized statement (text parameters, text results; a NULL
 * value is SQL NULL). Returns the result for the caller to PQclear, or NULL
 * with st->last_error (ef_store_classify of the SQLSTATE), st->sqlstate,
 * st->reason and the errmsg filled; only an outage clears st->ok and a
 * broken connection is dropped. Deadlocks and serialization failures are
 * retried (every statement of the store is idempotent). */
PGresult *ef_store__exec(ef_store *st, const char *sql, int n, const char *const *vals);
/* The same, for statements that return nothing the caller needs: 0, or
 * st->last_error. */
int ef_store__exec_simple(ef_store *st, const char *sql, int n, const char *const *vals);
/* The connection was lost outside a statement (LISTEN wait): drops it. */
void ef_store__lost(ef_store *st, const char *what);

/* A copy of s cut to at most max bytes of strict UTF-8 (a cut never splits a
 * character; a byte that is not UTF-8 becomes '?'), so that no text column
 * refuses it. NULL stays NULL. Owned by the caller. */
char *ef_store__clip_utf8(const char *s, size_t max);
/* Column value as an owned string, NULL for SQL NULL. */
char *ef_store__col_str(PGresult *r, int row, int col);
/* One row, one column: *out gets a copy of the value (owned); EF_ENOTFOUND
 * when there is no row or the value is NULL; else the classified error. */
int ef_store__value(ef_store *st, const char *sql, int n, const char *const *vals, char **out);

#endif /* EF_STORE_INT_H */
