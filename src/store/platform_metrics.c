/*
 * platform_metrics.c -- hourly rollups, their read, a conversation's
 * orders. See platform_metrics.h; the SQL functions are in
 * sql/015_metrics_rollup.sql.
 */
#include "store/platform_metrics.h"

#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>

int ef_store_metrics_rollup(ef_store *st, int64_t hour_s, int *written)
{
    char hour[24];
    snprintf(hour, sizeof(hour), "%lld", (long long)hour_s);
    const char *vals[1] = {hour};
    char *v = NULL;
    int rc = ef_store__value(st, "SELECT ef_metrics_rollup(to_timestamp($1::bigint))::text", 1,
                             vals, &v);
    if (!rc)
        *written = (int)strtol(v, NULL, 10);
    ef_free(v);
    return rc;
}

int ef_store_metrics_range(ef_store *st, int64_t from_s, int64_t to_s, const char *platform,
                           char **json)
{
    char from[24], to[24];
    snprintf(from, sizeof(from), "%lld", (long long)from_s);
    snprintf(to, sizeof(to), "%lld", (long long)to_s);
    const char *vals[3] = {from, to, platform};
    return ef_store__value(st,
                           "SELECT ef_api_metrics(to_timestamp($1::bigint), "
                           "to_timestamp($2::bigint), $3)::text",
                           3, vals, json);
}

int ef_store_conversation_orders(ef_store *st, const char *id, char **json)
{
    const char *vals[1] = {id};
    return ef_store__value(st, "SELECT ef_api_conversation_orders($1::uuid)::text", 1, vals, json);
}
