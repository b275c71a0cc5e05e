/*
 * ratelimit.h -- a sliding window of request times: the dispatcher keeps
 * one per channel (its per-account rate) and one per group chat, sized
 * from the channel's policy (platforms/platform.h, ef_rate).
 *
 * The platforms count requests when they arrive, some time after we start
 * them. So a window counts a request as in flight from its start and then
 * by the time its answer came back: a new request starts only when the
 * limit holds even if every earlier one arrived at the very end of its
 * flight. Times are the caller's (monotonic ms), so tests drive a clock.
 *
 * Not thread-safe: a window belongs to the dispatcher thread.
 */
#ifndef EF_RATELIMIT_H
#define EF_RATELIMIT_H

#include "base/ef.h"

typedef struct ef_window {
    int64_t *ts; /* ring of answer times, oldest first; NULL: no limit */
    int cap;     /* requests per span */
    int head;
    int count;
    int pending; /* requests started, not answered yet */
    int64_t span_ms;
} ef_window;

/* cap requests per span_ms. A zeroed ef_window is "no limit". */
void ef_window_init(ef_window *w, int cap, int64_t span_ms);
void ef_window_cleanup(ef_window *w);
/* When the window admits one more request: now, the time it will, or
 * INT64_MAX while only answers can free a place. */
int64_t ef_window_ready_at(const ef_window *w, int64_t now);
/* Whether the window holds nothing that limits a request at now or later:
 * none in flight and every answer older than the span (then it may be
 * dropped and made again, empty, when needed). */
bool ef_window_idle(const ef_window *w, int64_t now);
/* A request starts (counted as in flight until ef_window_done). */
void ef_window_start(ef_window *w);
/* The request started with ef_window_start() was answered (or failed) at now. */
void ef_window_done(ef_window *w, int64_t now);

#endif /* EF_RATELIMIT_H */
