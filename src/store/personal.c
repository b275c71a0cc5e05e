/*
 * personal.c -- personal data: erasing one customer on request and the
 * retention batches (sql/008_personal_data.sql holds the statements; each
 * call is one round trip and one transaction).
 *
 * Thread model: as store.h (one ef_store, one thread at a time).
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int json_result(ef_store *st, PGresult *r, char **out_json)
{
    if (!r)
        return st->last_error;
    int rc = EF_EDB;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        *out_json = ef_store__col_str(r, 0, 0);
        rc = 0;
    }
    PQclear(r);
    return rc;
}

int ef_store_customer_forget(ef_store *st, const char *platform, const char *platform_user_id,
                             const char *integration_id, char **out_json)
{
    *out_json = NULL;
    const char *vals[3] = {platform, platform_user_id, integration_id};
    PGresult *r = ef_store__exec(st, "SELECT ef_customer_forget($1, $2, $3::uuid)", 3, vals);
    int rc = json_result(st, r, out_json);
    if (rc == 0 && strstr(*out_json, "\"notfound\"")) {
        ef_free(*out_json);
        *out_json = NULL;
        rc = EF_ENOTFOUND;
    }
    return rc;
}

int ef_store_retention_batch(ef_store *st, int days, int limit, int lock_timeout_ms,
                             char **out_json)
{
    *out_json = NULL;
    char lt[32], ds[16], ls[16];
    snprintf(lt, sizeof(lt), "%d", lock_timeout_ms);
    snprintf(ds, sizeof(ds), "%d", days);
    snprintf(ls, sizeof(ls), "%d", limit);
    /* Set on this connection before each batch: a reconnect loses it. */
    const char *tv[1] = {lt};
    int rc = ef_store__exec_simple(st, "SELECT set_config('lock_timeout', $1, false)", 1, tv);
    if (rc)
        return rc;
    const char *vals[2] = {ds, ls};
    PGresult *r = ef_store__exec(st, "SELECT ef_retention_batch($1::int, $2::int)", 2, vals);
    return json_result(st, r, out_json);
}
