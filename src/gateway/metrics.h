/*
 * metrics.h -- process-wide counters and histograms, rendered as Prometheus
 * text on GET /metrics.
 *
 * Every function is lock-free (C11 atomics) and may be called from any
 * thread. Platforms are few and fixed, so counters are plain arrays.
 */
#ifndef EF_METRICS_H
#define EF_METRICS_H

#include "base/ef.h"

typedef enum ef_metric_platform {
    EF_MP_TELEGRAM = 0,
    EF_MP_WHATSAPP,
    EF_MP_WEBCHAT,
    EF_MP__COUNT
} ef_metric_platform;

typedef enum ef_metric_counter {
    EF_M_RECEIVED = 0, /* webhook bodies / polled updates accepted for processing */
    EF_M_STORED,       /* events committed */
    EF_M_DUPLICATE,    /* redeliveries of committed events */
    EF_M_IGNORED,      /* genuine events with nothing to store (200 + log) */
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
    EF_REJ__COUNT
} ef_reject_reason;

/* "telegram" -> EF_MP_TELEGRAM; unknown names count as webchat. */
ef_metric_platform ef_metrics_platform(const char *name);
void ef_metrics_add(ef_metric_platform p, ef_metric_counter c, uint64_t n);
void ef_metrics_reject(ef_metric_platform p, ef_reject_reason r);
/* HTTP responses by status code class, for the request counter. */
void ef_metrics_http(int status);
/* One batch commit: its duration and its number of events. */
void ef_metrics_commit(double seconds, size_t batch_size);
/* Appends the Prometheus text exposition to b. */
int ef_metrics_render(ef_buf *b);

#endif /* EF_METRICS_H */
