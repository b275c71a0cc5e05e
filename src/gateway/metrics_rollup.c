/*
 * metrics_rollup.c -- the hourly rollup thread. See metrics_rollup.h.
 */
#include "gateway/metrics_rollup.h"

#include "base/ef.h"
#include "gateway/periodic.h"
#include "store/platform_metrics.h"

#include <stdbool.h>
#include <stdint.h>

#define HOUR_S 3600
#define START_HOURS 24 /* recomputed at start: what a stopped gateway missed */
#define HOURLY_HOURS 6 /* recomputed when a new hour begins: late first responses */
#define RECENT_HOURS 3 /* recomputed every interval: this hour and two before */

struct ef_metrics_rollup {
    int64_t full_hour; /* the hour of the last pass at a new hour; 0: none yet */
    ef_periodic *task;
};

/* Computes the hours from `hours - 1` before now's hour to now's, oldest
 * first; stops at the first store error (the next run tries again). */
static void run_once(void *arg, ef_store *st, const ef_periodic *p)
{
    ef_metrics_rollup *r = arg;
    int64_t now_hour = ef_wall_ms() / 1000 / HOUR_S * HOUR_S;
    bool full = now_hour != r->full_hour;
    int hours = !r->full_hour ? START_HOURS : full ? HOURLY_HOURS : RECENT_HOURS;
    int written = 0, done = 0;
    int64_t t0 = ef_now_ms();
    for (int i = hours - 1; i >= 0 && !ef_periodic_stopping(p); i--) {
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

ef_metrics_rollup *ef_metrics_rollup_start(const ef_metrics_rollup_opts *o)
{
    if (o->interval_s <= 0 || !o->pg_url)
        return NULL;
    ef_metrics_rollup *r = ef_calloc(1, sizeof(*r));
    r->task = ef_periodic_start(&(ef_periodic_opts){.name = "metrics rollup",
                                                    .pg_url = o->pg_url,
                                                    .interval_s = o->interval_s,
                                                    .run = run_once,
                                                    .arg = r});
    if (!r->task) {
        ef_free(r);
        return NULL;
    }
    EF_LOG(EF_LOG_INFO, EF_C_MAIN, "metrics rollup: hourly figures every %d s", o->interval_s);
    return r;
}

void ef_metrics_rollup_stop(ef_metrics_rollup *r)
{
    if (!r)
        return;
    ef_periodic_stop(r->task);
    ef_free(r);
}
