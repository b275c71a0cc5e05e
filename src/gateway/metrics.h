/*
 * metrics.h -- process-wide counters and histograms, rendered as Prometheus
 * text on GET /metrics.
 *
 * Every function is lock-free (C11 atomics) and may be called from any
 * thread. Platforms are the compiled-in adapters (platforms/registry.c),
 * few and fixed, so counters are plain arrays indexed by registry position.
 */
#ifndef EF_METRICS_H
#define EF_METRICS_H

#include "base/ef.h"

/* A platform's position in ef_platforms[] (see ef_metrics_platform). */
typedef int ef_metric_platform;
#define EF_MP_MAX 16

typedef enum ef_metric_counter {
    EF_M_RECEIVED = 0, /* webhook bodies / polled updates accepted for processing */
    EF_M_STORED,       /* events committed */
    EF_M_DUPLICATE,    /* redeliveries of committed events */
    EF_M_IGNORED,      /* genuine events with nothing to store (200 + log) */
    EF_M_UNKNOWN_TYPE, /* genuine updates of a type the adapter does not know (200) */
    EF_M__COUNT
} ef_metric_counter;

typedef enum ef_reject_reason {
    EF_REJ_BAD_SECRET = 0,
    EF_REJ_BAD_SIGNATURE,
    EF_REJ_BAD_JSON,
    EF_REJ_BAD_UTF8,
    EF_REJ_TOO_LARGE,
    EF_REJ_TOO_DEEP,
    EF_REJ_BAD_PAYLOAD,
    EF_REJ_UNAVAILABLE,
    EF_REJ_TIMEOUT,
    EF_REJ_UNSTORABLE, /* the data cannot be stored (too long, NULL key): 422 */
    EF_REJ_NO_CHANNEL, /* no integration serves this route, number or key */
    EF_REJ_SATURATED,  /* the pipeline's queue is full: 503 + Retry-After at once */
    EF_REJ_ABANDONED,  /* an event dropped before its commit: its request had been
                          answered 503 (timeout) or closed; the platform redelivers */
    EF_REJ__COUNT
} ef_reject_reason;

/* A platform name -> its registry position; unknown names count under the
 * last slot ("other"). */
ef_metric_platform ef_metrics_platform(const char *name);
void ef_metrics_add(ef_metric_platform p, ef_metric_counter c, uint64_t n);
void ef_metrics_reject(ef_metric_platform p, ef_reject_reason r);
/* One event written to dead_letters (the database refused its data). */
void ef_metrics_dead_letter(ef_metric_platform p);
/* HTTP responses by status code class, for the request counter. */
void ef_metrics_http(int status);
/* One batch commit: its duration and its number of events. */
void ef_metrics_commit(double seconds, size_t batch_size);
/* One webhook answered: the time from its headers to its answer written
 * (what the platform waits for; queueing and the commit included). */
void ef_metrics_webhook(double seconds);
/* The dispatcher's memory: the chats and the outbound rows it holds now. */
void ef_metrics_dispatcher(size_t chats, size_t rows);
/* Appends the Prometheus text exposition to b. */
int ef_metrics_render(ef_buf *b);

/* ---- the outbox ---------------------------------------------------------
 * Its figures come from PostgreSQL (store/console.h ef_outbox_figures):
 * a sampler thread with its own connection reads them every interval, and
 * /metrics and /healthz show the last reading (never a query on the event
 * loop). "sending" is the queued rows whose time has come (being sent or
 * next in line); the rest of "queued" waits for a retry. */
typedef struct ef_outbox_sampler ef_outbox_sampler;
/* Starts the sampler (first reading at once); NULL when the thread cannot
 * start. pg_url is copied. */
ef_outbox_sampler *ef_outbox_sampler_start(const char *pg_url, int interval_ms);
/* Stops and frees it; NULL is a no-op. */
void ef_outbox_sampler_stop(ef_outbox_sampler *s);
/* {"queued":N,"sending":N,"failed":N,"oldest_queued_age_s":N} into buf
 * (NUL-terminated), or "null" before the first reading. Returns the
 * length written. */
size_t ef_metrics_outbox_json(char *buf, size_t n);

#endif /* EF_METRICS_H */
