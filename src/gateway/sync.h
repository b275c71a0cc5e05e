/*
 * sync.h -- the marketplace order sync (issue 10): a scheduler thread of its
 * own, never the event loop, with its own PostgreSQL connection. Every
 * tick it checks the credentials of each marketplace channel it has not
 * checked yet (one cheap call: integrations.status connected | error with
 * the platform's reason), then runs the syncs that are due
 * (integrations.next_sync_at: the interval after a success, a growing
 * backoff after a failure).
 *
 * One run (ef_sync_run) reads the shop's orders page by page through its
 * adapter's market ops (platforms/market.h), from the start of the last
 * successful run (minus an overlap) to now, waits out 429s (Retry-After /
 * X-Ratelimit-Retry), paces its requests by the API's published limit,
 * upserts each page as it arrives, and writes one sync_logs row (running ->
 * success | partial | failed). A session advisory lock keeps two runs of
 * one integration (two gateways, the CLI) apart.
 *
 * Thread model: ef_sync_start/stop on the main thread; ef_sync_run on any
 * thread with its own store.
 */
#ifndef EF_SYNC_H
#define EF_SYNC_H

#include "gateway/channels.h"
#include "platforms/market.h"

#include <stdatomic.h>

typedef struct ef_sync ef_sync;

typedef struct ef_sync_opts {
    const char *pg_url;
    ef_channels *channels;
    int tick_ms; /* between looks at the schedule; 0: 1000 */
} ef_sync_opts;

/* Starts the thread; NULL when no compiled-in platform syncs orders. */
ef_sync *ef_sync_start(const ef_sync_opts *o);
/* Stops it (a request in flight is abandoned, its run ends failed) and
 * frees; NULL is fine. */
void ef_sync_stop(ef_sync *s);

/* What one run did. */
typedef struct ef_sync_report {
    char status[16]; /* success | partial | failed | busy (another run holds the lock) */
    int requested, synced, failed;
    int64_t duration_ms;
    char reason[300]; /* the first error, "" when none */
} ef_sync_report;

/* One order sync of one channel now, on the caller's thread. stop (may be
 * NULL) abandons it. 0 (rep filled, whatever the run's status), or EF_EDB
 * when its sync_logs row could not be written. */
int ef_sync_run(ef_store *st, const char *integration_id, const ef_market_ops *m, const void *cfg,
                atomic_bool *stop, ef_sync_report *rep);

/* `easyflow integration sync ID`: opens the integration's credentials with
 * kr (its settings' api_url, else <PLATFORM>_API_URL from the environment),
 * runs one sync and prints its outcome. Exit code: 0 success or partial, 1
 * otherwise. */
int ef_sync_cli(ef_store *st, const ef_keyring *kr, const char *integration_id);

#endif /* EF_SYNC_H */
