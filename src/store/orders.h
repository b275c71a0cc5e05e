/*
 * orders.h -- a shop's marketplace orders and the bookkeeping of each order
 * sync run (sql/012_orders.sql): the orders upsert, sync_logs rows, the
 * schedule (integrations.next_sync_at) and the lookup the bot's order
 * answers use. Platform-blind: orders arrive as JSON the gateway built from
 * the adapters' normalized orders.
 *
 * Thread model: as store.h (one ef_store, one thread at a time).
 */
#ifndef EF_STORE_ORDERS_H
#define EF_STORE_ORDERS_H

#include "store/store.h"

/* Upserts one page of orders (a JSON array, see ef_orders_upsert in
 * sql/012) of one integration; *written: rows inserted or changed (a
 * re-sync of the same page writes 0). 0, or the classified error. */
int ef_store_orders_upsert(ef_store *st, const char *integration_id, const char *marketplace,
                           const char *orders_json, int *written);

/* The order numbers of the integration's stored orders not yet final
 * (new, assembling, shipped), most recently changed first, at most max.
 * *out (an array of owned strings) freed with ef_store_strings_free. */
int ef_store_orders_open(ef_store *st, const char *integration_id, size_t max, char ***out,
                         size_t *n);
void ef_store_strings_free(char **v, size_t n);

/* Takes the integration's sync lock on this connection (a session advisory
 * lock): 0, or EF_ECONFLICT when another run (a gateway, the CLI) holds
 * it. ef_store_sync_unlock releases it. */
int ef_store_sync_lock(ef_store *st, const char *integration_id);
void ef_store_sync_unlock(ef_store *st, const char *integration_id);

/* A new sync_logs row (sync_type orders, status running): *log_id owned.
 * Rows of the integration left running by a run that never ended become
 * failed ("interrupted"); call it with the sync lock held. */
int ef_store_sync_begin(ef_store *st, const char *integration_id, char **log_id);
/* The start of the integration's last successful orders sync (Unix
 * seconds): EF_ENOTFOUND when it never had one. */
int ef_store_sync_since(ef_store *st, const char *integration_id, int64_t *since);

/* How a run ended. Strings borrowed; errors_json a JSON array (never a
 * credential), metadata_json an object, fault the integration's
 * status_message after a failure. */
typedef struct ef_sync_outcome {
    const char *status; /* success | partial | failed */
    int requested, synced, failed;
    const char *errors_json;
    const char *message;
    const char *metadata_json;
    const char *fault;
} ef_sync_outcome;

/* Ends the run: the sync_logs row, and the integration's status,
 * last_sync_at and next_sync_at (interval, or backoff after a failure). */
int ef_store_sync_finish(ef_store *st, const char *log_id, const ef_sync_outcome *o);

/* Integrations of the given platforms (a PostgreSQL array literal,
 * "{wildberries,ozon}"), enabled, whose next sync is due. *ids owned. */
int ef_store_sync_due(ef_store *st, const char *platforms, char ***ids, size_t *n);

/* The credentials check's outcome: status connected (message NULL) or
 * error with the platform's reason; only when it changed. */
int ef_store_sync_checked(ef_store *st, const char *integration_id, bool ok, const char *reason);

/* One order for the bot's answer, among the orders of the business that
 * owns integration_id (every integration with the same owner: an order of
 * another shop is never found): the one whose number or reference is
 * number (the marketplace's order / posting number, or what the buyer
 * sees). *json: {number, ref, marketplace, status, status_raw, items,
 * amount, currency, ordered_at, status_changed_at (Unix seconds)} (owned);
 * EF_ENOTFOUND when none. */
int ef_store_order_lookup(ef_store *st, const char *integration_id, const char *number,
                          char **json);

#endif /* EF_STORE_ORDERS_H */
