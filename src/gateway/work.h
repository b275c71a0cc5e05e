/*
 * work.h -- a small pool of worker threads for the blocking work of the
 * operator API: PostgreSQL queries, Redis calls and password hashing, so
 * that the lws event loop never waits (DESIGN invariant 4).
 *
 * A task is two functions: run(c, ud) on a worker, with that worker's own
 * connections (c), then done(ud) on the same worker, which only hands the
 * result back to its owner's thread (http.c queues the request on its done
 * list and calls lws_cancel_service, as for webhooks). Tasks run in
 * submission order across the pool (FIFO queue), several at a time.
 *
 * Must never: touch lws, or drop a task: every submitted task gets run and
 * done exactly once. At stop, tasks still queued run with c == NULL
 * ("shutting down": answer 503) instead of touching the network.
 *
 * Thread model: ef_work_submit from any thread (the lws thread in
 * practice); run/done on worker threads; new/stop/free on the owner's.
 */
#ifndef EF_GATEWAY_WORK_H
#define EF_GATEWAY_WORK_H

#include "base/ef.h"
#include "store/store.h"

/* A worker's connections, owned by the worker. */
typedef struct ef_work_conn {
    ef_store *st;
    ef_kv *kv;
} ef_work_conn;

typedef void (*ef_work_run_fn)(ef_work_conn *c, void *ud);
typedef void (*ef_work_done_fn)(void *ud);

typedef struct ef_work_opts {
    const char *pg_url;
    const char *redis_url;
    int threads;      /* 1..16 */
    size_t max_queue; /* tasks waiting at most; more are refused */
} ef_work_opts;

typedef struct ef_work ef_work;

/* Starts the threads (connections open lazily on first use). */
ef_work *ef_work_new(const ef_work_opts *opts);
/* Queues a task. EF_ELIMIT when the queue is full, EF_EINVAL after stop:
 * then neither function ever runs. */
int ef_work_submit(ef_work *w, ef_work_run_fn run, ef_work_done_fn done, void *ud);
/* Runs what is queued with c == NULL, joins the threads. Idempotent. */
void ef_work_stop(ef_work *w);
/* Stops when needed and frees. NULL is a no-op. */
void ef_work_free(ef_work *w);

#endif /* EF_GATEWAY_WORK_H */
