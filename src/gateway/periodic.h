/*
 * periodic.h -- a task run on its own thread every interval, with its own
 * PostgreSQL connection, off the event loop (retention, the metrics
 * rollup). The first run starts at once; each next one `interval_s` after
 * the previous one ended. Stopping wakes the thread from its wait; a run
 * in progress sees ef_periodic_stopping() and ends early at its next step.
 *
 * Thread model: start/stop on the owner's thread; the task on its own.
 */
#ifndef EF_GATEWAY_PERIODIC_H
#define EF_GATEWAY_PERIODIC_H

#include "store/store.h"

#include <stdbool.h>

typedef struct ef_periodic ef_periodic;

/* One run. st is the task's own connection (it reconnects by itself after
 * an outage); p answers ef_periodic_stopping(). */
typedef void (*ef_periodic_fn)(void *arg, ef_store *st, const ef_periodic *p);

typedef struct ef_periodic_opts {
    const char *name; /* for the log lines ("retention"); borrowed, must outlive the task */
    const char *pg_url;
    int interval_s; /* > 0 */
    ef_periodic_fn run;
    void *arg; /* owned by the caller, freed after ef_periodic_stop */
} ef_periodic_opts;

/* NULL (and an ERROR line) when the thread cannot start. */
ef_periodic *ef_periodic_start(const ef_periodic_opts *o);
/* Whether the owner asked the task to stop. */
bool ef_periodic_stopping(const ef_periodic *p);
/* Stops (a run in progress ends first) and frees; NULL is fine. */
void ef_periodic_stop(ef_periodic *p);

#endif /* EF_GATEWAY_PERIODIC_H */
