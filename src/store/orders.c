/*
 * orders.c -- orders and order sync runs. See orders.h; the SQL functions
 * are in sql/012_orders.sql.
 */
#include "store/orders.h"

#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOCK_KEY "hashtextextended('ef_sync_orders:' || $1, 0)"

int ef_store_orders_upsert(ef_store *st, const char *integration_id, const char *marketplace,
                           const char *orders_json, int *written)
{
    const char *vals[3] = {integration_id, marketplace, orders_json};
    char *v = NULL;
    int rc =
        ef_store__value(st, "SELECT ef_orders_upsert($1::uuid, $2, $3::jsonb)::text", 3, vals, &v);
    if (!rc)
        *written = (int)strtol(v, NULL, 10);
    ef_free(v);
    return rc;
}

/* Every row's first column as owned strings. */
static int strings(ef_store *st, const char *sql, int nv, const char *const *vals, char ***out,
                   size_t *n)
{
    *out = NULL;
    *n = 0;
    PGresult *r = ef_store__exec(st, sql, nv, vals);
    if (!r)
        return st->last_error;
    int rows = PQntuples(r);
    char **v = ef_calloc((size_t)rows + 1, sizeof(*v));
    for (int i = 0; i < rows; i++)
        v[i] = ef_store__col_str(r, i, 0);
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

int ef_store_orders_open(ef_store *st, const char *integration_id, size_t max, char ***out,
                         size_t *n)
{
    char lim[24];
    snprintf(lim, sizeof(lim), "%zu", max);
    const char *vals[2] = {integration_id, lim};
    return strings(st,
                   "SELECT order_number FROM orders WHERE integration_id = $1::uuid "
                   "AND status_rank < 3 ORDER BY updated_at DESC LIMIT $2::int",
                   2, vals, out, n);
}

void ef_store_strings_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        ef_free(v[i]);
    ef_free(v);
}

int ef_store_sync_lock(ef_store *st, const char *integration_id)
{
    const char *vals[1] = {integration_id};
    char *v = NULL;
    int rc = ef_store__value(st, "SELECT pg_try_advisory_lock(" LOCK_KEY ")::text", 1, vals, &v);
    if (!rc && strcmp(v, "true") != 0)
        rc = EF_ECONFLICT;
    ef_free(v);
    return rc;
}

void ef_store_sync_unlock(ef_store *st, const char *integration_id)
{
    const char *vals[1] = {integration_id};
    ef_store__exec_simple(st, "SELECT pg_advisory_unlock(" LOCK_KEY ")", 1, vals);
}

int ef_store_sync_begin(ef_store *st, const char *integration_id, char **log_id)
{
    const char *vals[1] = {integration_id};
    /* A run that never ended (the process was killed): the caller holds
     * the integration's lock, so no run of it is in progress. */
    int rc = ef_store__exec_simple(
        st,
        "UPDATE sync_logs SET status = 'failed', completed_at = now(), "
        "error_message = 'interrupted: the process stopped during the run' "
        "WHERE integration_id = $1::uuid AND sync_type = 'orders' AND status = 'running'",
        1, vals);
    if (rc)
        return rc;
    return ef_store__value(st,
                           "INSERT INTO sync_logs (integration_id, sync_type, status) "
                           "VALUES ($1::uuid, 'orders', 'running') RETURNING id::text",
                           1, vals, log_id);
}

int ef_store_sync_since(ef_store *st, const char *integration_id, int64_t *since)
{
    const char *vals[1] = {integration_id};
    char *v = NULL;
    int rc = ef_store__value(st,
                             "SELECT floor(extract(epoch FROM max(started_at)))::bigint::text "
                             "FROM sync_logs WHERE integration_id = $1::uuid "
                             "AND status = 'success' AND sync_type = 'orders'",
                             1, vals, &v);
    if (!rc)
        *since = strtoll(v, NULL, 10);
    ef_free(v);
    return rc;
}

int ef_store_sync_finish(ef_store *st, const char *log_id, const ef_sync_outcome *o)
{
    char req[16], syn[16], fai[16];
    snprintf(req, sizeof(req), "%d", o->requested);
    snprintf(syn, sizeof(syn), "%d", o->synced);
    snprintf(fai, sizeof(fai), "%d", o->failed);
    char *msg = ef_store__clip_utf8(o->message, 1000);
    char *fault = ef_store__clip_utf8(o->fault, 500);
    const char *vals[9] = {log_id, o->status,        req,  syn, fai, o->errors_json,
                           msg,    o->metadata_json, fault};
    int rc = ef_store__exec_simple(st,
                                   "SELECT ef_sync_finish($1::uuid, $2, $3::int, $4::int, "
                                   "$5::int, $6::jsonb, $7, $8::jsonb, $9)",
                                   9, vals);
    ef_free(msg);
    ef_free(fault);
    return rc;
}

/* integrations is a handful of rows: a sequential scan serves this. */
int ef_store_sync_due(ef_store *st, const char *platforms, char ***ids, size_t *n)
{
    const char *vals[1] = {platforms};
    return strings(st,
                   "SELECT id::text FROM integrations WHERE enabled "
                   "AND platform_id = ANY($1::text[]) "
                   "AND (next_sync_at IS NULL OR next_sync_at <= now()) ORDER BY next_sync_at "
                   "NULLS FIRST",
                   1, vals, ids, n);
}

int ef_store_sync_checked(ef_store *st, const char *integration_id, bool ok, const char *reason)
{
    return ef_store_integration_set_status(st, integration_id, ok ? "connected" : "error",
                                           ok ? NULL : reason);
}

int ef_store_order_lookup(ef_store *st, const char *integration_id, const char *number, char **json)
{
    const char *vals[2] = {integration_id, number};
    return ef_store__value(
        st,
        "SELECT jsonb_build_object('number', order_number, 'ref', order_ref, "
        "'marketplace', marketplace, 'status', status, 'status_raw', status_raw, "
        "'items', items, 'amount', amount, 'currency', currency, "
        "'ordered_at', floor(extract(epoch FROM ordered_at))::bigint, "
        "'status_changed_at', floor(extract(epoch FROM status_changed_at))::bigint)::text "
        "FROM orders WHERE integration_id IN (SELECT b.id FROM integrations a "
        "JOIN integrations b ON b.user_id IS NOT DISTINCT FROM a.user_id WHERE a.id = $1::uuid) "
        "AND (order_number = $2 OR order_ref = $2) "
        "ORDER BY ordered_at DESC NULLS LAST LIMIT 1",
        2, vals, json);
}
