/*
 * ratelimit.c -- sliding windows of request times. See ratelimit.h.
 */
#include "gateway/ratelimit.h"

void ef_window_init(ef_window *w, int cap, int64_t span_ms)
{
    w->ts = ef_calloc((size_t)cap, sizeof(int64_t));
    w->cap = cap;
    w->head = 0;
    w->count = 0;
    w->pending = 0;
    w->span_ms = span_ms;
}

void ef_window_cleanup(ef_window *w)
{
    ef_free(w->ts);
    w->ts = NULL;
}

/* The requests in flight plus those answered within the last span must
 * stay below the cap. */
int64_t ef_window_ready_at(const ef_window *w, int64_t now)
{
    if (!w->ts)
        return now;
    int k = w->cap - w->pending; /* answers the span may still hold, plus this one */
    if (k <= 0)
        return INT64_MAX;
    if (w->count < k)
        return now;
    int64_t t = w->ts[(w->head + w->count - k) % w->cap]; /* the k-th newest answer */
    return t + w->span_ms > now ? t + w->span_ms : now;
}

bool ef_window_idle(const ef_window *w, int64_t now)
{
    if (!w->ts)
        return true;
    if (w->pending > 0)
        return false;
    if (w->count == 0)
        return true;
    int64_t newest = w->ts[(w->head + w->count - 1) % w->cap];
    return newest + w->span_ms <= now;
}

void ef_window_start(ef_window *w)
{
    if (w->ts)
        w->pending++;
}

void ef_window_done(ef_window *w, int64_t now)
{
    if (!w->ts)
        return;
    if (w->pending > 0)
        w->pending--;
    /* The clock counts whole milliseconds: the answer came back up to 1 ms
     * after the now it gives, and a request started a span after that now
     * could arrive less than a span after this one did (make bench saw one
     * 429 in 10,000 sends). */
    now++;
    if (w->count < w->cap) {
        w->ts[(w->head + w->count) % w->cap] = now;
        w->count++;
    } else {
        w->ts[w->head] = now;
        w->head = (w->head + 1) % w->cap;
    }
}
