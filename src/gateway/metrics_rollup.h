/*
 * metrics_rollup.h -- the hourly rollup into platform_metrics
 * (EF_METRICS_ROLLUP_S): its own thread and PostgreSQL connection, off the
 * event loop. At start it computes the last 24 hours (what a stopped
 * gateway missed); then every interval the current hour and the two
 * before it (replies sent and operators answering after the hour ended),
 * and the last 6 hours whenever a new hour begins. Each hour is one
 * statement (ef_store_metrics_rollup) that rewrites only figures that
 * changed, so reruns, restarts and several gateways computing the same
 * hour agree.
 *
 * Must never: block the event loop or message handling (a failed run is
 * logged and tried again at the next interval).
 *
 * Thread model: start/stop on the owner's thread; the work on its own.
 */
#ifndef EF_GATEWAY_METRICS_ROLLUP_H
#define EF_GATEWAY_METRICS_ROLLUP_H

typedef struct ef_metrics_rollup ef_metrics_rollup;

typedef struct ef_metrics_rollup_opts {
    const char *pg_url;
    int interval_s; /* between runs; 0: no rollup (start returns NULL) */
} ef_metrics_rollup_opts;

/* NULL when interval_s is 0 or the thread cannot start. */
ef_metrics_rollup *ef_metrics_rollup_start(const ef_metrics_rollup_opts *o);
/* Stops (an hour in flight finishes) and frees; NULL is fine. */
void ef_metrics_rollup_stop(ef_metrics_rollup *r);

#endif /* EF_GATEWAY_METRICS_ROLLUP_H */
