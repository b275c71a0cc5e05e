/*
 * platform_metrics.h -- the hourly figures of the seed's platform_metrics
 * table (sql/015_metrics_rollup.sql): the rollup that computes one hour
 * from the stored rows, the API's read of a range of hours, and the orders
 * the console shows beside a conversation.
 *
 * Must never: write a figure that did not change (a rollup of the same
 * hour over the same data writes nothing), or show an order of another
 * business.
 *
 * Thread model: as store.h (one ef_store, one thread at a time).
 */
#ifndef EF_STORE_PLATFORM_METRICS_H
#define EF_STORE_PLATFORM_METRICS_H

#include "store/store.h"

#include <stdint.h>

/* Computes the hour that holds hour_s (Unix seconds; truncated to the UTC
 * hour) for every integration with activity in it and upserts its rows
 * (ef_metrics_rollup). *written: rows inserted, changed or deleted (0 when
 * the hour was already up to date). 0, or the classified error. */
int ef_store_metrics_rollup(ef_store *st, int64_t hour_s, int *written);

/* The hourly rows whose hour starts in [from_s, to_s), of platform (NULL:
 * all), as the API's JSON answer (ef_api_metrics; *json owned). */
int ef_store_metrics_range(ef_store *st, int64_t from_s, int64_t to_s, const char *platform,
                           char **json);

/* The orders linked to conversation id (a JSON array, newest first; owned):
 * the orders its customer named in it, among the orders of the
 * conversation's business only. "[]" when none or no such conversation. */
int ef_store_conversation_orders(ef_store *st, const char *id, char **json);

#endif /* EF_STORE_PLATFORM_METRICS_H */
