/*
 * pipeline.h -- from normalized events to committed rows, in batches.
 *
 * A job is what one webhook request (or one getUpdates response) carried:
 * zero or more ef_msg events. Each event goes to the worker that owns its
 * chat (hash of integration + chat id), so one chat's events are handled in
 * arrival order while different chats proceed in parallel. A worker takes
 * everything queued for it (up to EF_BATCH_MAX) and commits it in ONE
 * PostgreSQL transaction; the busier the gateway, the bigger the batches.
 * After the commit the worker writes the sessions back to Redis and bumps
 * the realtime counters; then the job's callback runs, once, and only then
 * may the caller acknowledge the platform (DESIGN invariant 1).
 *
 * Must never: run on the event-loop thread (workers block on libpq/hiredis),
 * acknowledge anything not committed, or lose an event it accepted (a failed
 * commit reports EF_EDB to the job; the platform redelivers).
 *
 * Backpressure: the queues are bounded by opts.queue_max events (the HTTP
 * server refuses webhooks at once while ef_pipeline_saturated()), and a
 * job abandoned by its request (ef_job_abandon) has its untaken events
 * dropped, so a slow PostgreSQL never makes the gateway do work nobody
 * waits for, nor grow without bound.
 *
 * Thread model: ef_pipeline_submit() may be called from any thread. Done
 * callbacks run on a worker thread; they must only hand the job back to its
 * owner's thread (e.g. queue it and wake the event loop).
 */
#ifndef EF_PIPELINE_H
#define EF_PIPELINE_H

#include "base/ef.h"
#include "gateway/channels.h"
#include "nlp/nlp.h"
#include "platforms/platform.h"

typedef struct ef_pipeline ef_pipeline;
typedef struct ef_job ef_job;

/* Runs exactly once per submitted job, on a worker thread. */
typedef void (*ef_job_done_cb)(ef_job *job, void *ud);

typedef struct ef_pipeline_opts {
    const char *pg_url;
    const char *redis_url;
    int workers;           /* worker threads, each with its own connections */
    int batch_max;         /* events per commit at most */
    int session_ttl;       /* seconds a Redis session lives */
    size_t queue_max;      /* events waiting for their commit at most (0: no bound);
                              see ef_pipeline_saturated() */
    ef_channels *channels; /* borrowed: each event's integration, and its bot */
    /* Called on a worker thread after a commit that queued replies. */
    void (*on_replies)(void *ud);
    void *on_replies_ud;
    /* EF_LOG_REPLIES: each queued reply at INFO with its chat and first
     * characters (message text is personal data: `make run` only). */
    bool log_replies;
} ef_pipeline_opts;

/* Outcome counts of one job, valid in and after its done callback. */
typedef struct ef_job_result {
    int status; /* 0, or EF_EDB when any event could not be committed (retry) */
    size_t stored;
    size_t duplicate;
    size_t ignored;
    size_t failed;
    size_t rejected;  /* events whose data cannot be stored (permanent) */
    char reason[200]; /* the first rejected event's reason */
} ef_job_result;

ef_pipeline *ef_pipeline_new(const ef_pipeline_opts *opts);
/* Starts the worker and health threads. */
int ef_pipeline_start(ef_pipeline *p);
/* Finishes every queued job (their callbacks run), then joins the threads. */
void ef_pipeline_stop(ef_pipeline *p);
void ef_pipeline_free(ef_pipeline *p);

/* A job owning the events of msgs (the list is emptied). */
ef_job *ef_job_new(ef_msg_list *msgs, ef_job_done_cb cb, void *ud);
void ef_job_free(ef_job *job);
const ef_job_result *ef_job_get_result(const ef_job *job);
size_t ef_job_count(const ef_job *job);
/* The job's events, borrowed. */
const ef_msg *ef_job_msg(const ef_job *job, size_t i);

/* Queues the job. A job without events completes at once (its callback
 * runs on the calling thread). After this call the job belongs to the
 * pipeline until its callback runs. */
void ef_pipeline_submit(ef_pipeline *p, ef_job *job);

/* Marks the job abandoned: its request was answered (503) or its
 * connection closed, so nobody can be acknowledged for it any more. Events
 * a worker has not taken yet are dropped (the platform redelivers them);
 * a batch already being committed completes. Any thread. The job's
 * callback still runs exactly once (its result is EF_EDB if anything was
 * dropped). */
void ef_job_abandon(ef_job *job);

/* Whether the queues hold queue_max events or more: new webhooks should be
 * refused (503 + Retry-After) before their bodies are parsed. The bound is
 * checked on admission, so it can be exceeded by the events of requests
 * admitted at the same moment, never by an unbounded amount. */
bool ef_pipeline_saturated(const ef_pipeline *p);

/* Health as last seen by the monitor thread (pings every second). */
bool ef_pipeline_pg_up(const ef_pipeline *p);
bool ef_pipeline_redis_up(const ef_pipeline *p);
/* Events queued and not yet committed. */
size_t ef_pipeline_pending(const ef_pipeline *p);

#endif /* EF_PIPELINE_H */
