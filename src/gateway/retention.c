/*
 * retention.c -- the retention task. See retention.h.
 */
#include "gateway/retention.h"

#include "base/ef.h"
#include "gateway/periodic.h"
#include "store/store.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define BATCH_ROWS 500
#define LOCK_TIMEOUT_MS 1000
#define MAX_BATCHES 10000 /* one run's bound (5 million rows) */

struct ef_retention {
    int days;
    ef_periodic *task;
};

typedef struct {
    long long messages, conversations, users, dead_letters;
    int batches;
} run_counts;

static long long field(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

/* Adds one batch's counts; false when it deleted nothing (the run is done). */
static bool add_batch(run_counts *rc, const char *js)
{
    json_object *o = json_tokener_parse(js);
    long long m = field(o, "messages"), c = field(o, "conversations"), u = field(o, "users"),
              d = field(o, "dead_letters");
    json_object_put(o);
    rc->messages += m;
    rc->conversations += c;
    rc->users += u;
    rc->dead_letters += d;
    rc->batches++;
    return m + c + u + d > 0;
}

static void run_once(void *arg, ef_store *st, const ef_periodic *p)
{
    ef_retention *r = arg;
    run_counts rc = {0};
    int err = 0;
    int64_t t0 = ef_now_ms();
    while (!ef_periodic_stopping(p) && rc.batches < MAX_BATCHES) {
        char *js = NULL;
        err = ef_store_retention_batch(st, r->days, BATCH_ROWS, LOCK_TIMEOUT_MS, &js);
        bool more = err == 0 && add_batch(&rc, js);
        ef_free(js);
        if (!more)
            break;
    }
    if (err)
        EF_LOG(EF_LOG_WARN, EF_C_PG,
               "retention: run stopped after %d batches (next run retries): %s", rc.batches,
               ef_store_errmsg(st));
    EF_LOG(EF_LOG_INFO, EF_C_PG,
           "retention: older than %d days deleted conversations=%lld messages=%lld "
           "customers=%lld dead_letters=%lld in %d batches, %lld ms",
           r->days, rc.conversations, rc.messages, rc.users, rc.dead_letters, rc.batches,
           (long long)(ef_now_ms() - t0));
}

ef_retention *ef_retention_start(const ef_retention_opts *o)
{
    if (o->days <= 0 || !o->pg_url)
        return NULL;
    ef_retention *r = ef_calloc(1, sizeof(*r));
    r->days = o->days;
    int interval_s = o->interval_s > 0 ? o->interval_s : 3600;
    r->task = ef_periodic_start(&(ef_periodic_opts){.name = "retention",
                                                    .pg_url = o->pg_url,
                                                    .interval_s = interval_s,
                                                    .run = run_once,
                                                    .arg = r});
    if (!r->task) {
        ef_free(r);
        return NULL;
    }
    EF_LOG(EF_LOG_INFO, EF_C_MAIN, "retention: conversations older than %d days, every %d s",
           r->days, interval_s);
    return r;
}

void ef_retention_stop(ef_retention *r)
{
    if (!r)
        return;
    ef_periodic_stop(r->task);
    ef_free(r);
}
