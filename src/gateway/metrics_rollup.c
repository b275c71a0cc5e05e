/*
 * metrics_rollup.c -- the hourly rollup thread. See metrics_rollup.h.
 */
#include "gateway/metrics_rollup.h"

#include "base/ef.h"
#include "store/platform_metrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define HOUR_S 3600
#define START_HOURS 24 /* recomputed at start: what a stopped gateway missed */
#define HOURLY_HOURS 6 /* recomputed when a new hour begins: late first responses */
#define RECENT_HOURS 3 /* recomputed every interval: this hour and two before */

struct ef_metrics_rollup {
    char *pg_url;
    int interval_s;
    int64_t full_hour; /* the hour of the last pass at a new hour; 0: none yet */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
};

static bool stopping(ef_metrics_rollup *r)
{
    pthread_mutex_lock(&r->lock);
    bool s = r->stop;
    pthread_mutex_unlock(&r->lock);
    return s;
}

/* Computes the hours from `hours - 1` before now's hour to now's, oldest
 * first; stops at the first store error (the next run tries again). */
static void run_once(ef_metrics_rollup *r, ef_store *st)
{
    int64_t now_hour = ef_wall_ms() / 1000 / HOUR_S * HOUR_S;
    bool full = now_hour != r->full_hour;
    int hours = !r->full_hour ? START_HOURS : full ? HOURLY_HOURS : RECENT_HOURS;
    int written = 0, done = 0;
    int64_t t0 = ef_now_ms();
    for (int i = hours - 1; i >= 0 && !stopping(r); i--) {
        int n = 0;
        if (ef_store_metrics_rollup(st, now_hour - (int64_t)i * HOUR_S, &n) != 0) {
            EF_LOG(EF_LOG_WARN, EF_C_PG, "metrics rollup: stopped after %d of %d hours: %s", done,
                   hours, ef_store_errmsg(st));
            return;
        }
        written += n;
        done++;
    }
    if (full && done == hours)
        r->full_hour = now_hour;
    EF_LOG(full || written ? EF_LOG_INFO : EF_LOG_DEBUG, EF_C_PG,
           "metrics rollup: %d hours, %d rows written, %lld ms", done, written,
           (long long)(ef_now_ms() - t0));
}

static void *rollup_main(void *arg)
{
    ef_metrics_rollup *r = arg;
    ef_store *st = ef_store_new(r->pg_url);
    for (;;) {
        run_once(r, st);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += r->interval_s;
        pthread_mutex_lock(&r->lock);
        while (!r->stop && pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0)
            ;
        bool s = r->stop;
        pthread_mutex_unlock(&r->lock);
        if (s)
            break;
    }
    ef_store_free(st);
    return NULL;
}

ef_metrics_rollup *ef_metrics_rollup_start(const ef_metrics_rollup_opts *o)
{
    if (o->interval_s <= 0 || !o->pg_url)
        return NULL;
    ef_metrics_rollup *r = ef_calloc(1, sizeof(*r));
    r->pg_url = ef_strdup(o->pg_url);
    r->interval_s = o->interval_s;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thread, NULL, rollup_main, r) != 0) {
        EF_LOG(EF_LOG_ERROR, EF_C_MAIN, "metrics rollup: cannot start its thread");
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        ef_free(r->pg_url);
        ef_free(r);
        return NULL;
    }
    EF_LOG(EF_LOG_INFO, EF_C_MAIN, "metrics rollup: hourly figures every %d s", r->interval_s);
    return r;
}

void ef_metrics_rollup_stop(ef_metrics_rollup *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    ef_free(r->pg_url);
    ef_free(r);
}
