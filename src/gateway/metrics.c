/*
 * metrics.c -- counters and histograms for GET /metrics (Prometheus text).
 */
#include "gateway/metrics.h"

#include "platforms/platform.h"
#include "store/console.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const counter_names[EF_M__COUNT] = {"received", "stored", "duplicate", "ignored",
                                                       "unknown_type"};
static const char *const counter_help[EF_M__COUNT] = {
    "Webhook bodies and polled updates accepted for processing.", "Events committed to PostgreSQL.",
    "Redeliveries of events already committed.",
    "Genuine events with nothing to store (answered 200 and logged).",
    "Genuine updates of a type the adapter does not know (answered 200, not stored)."};
static const char *const reject_names[EF_REJ__COUNT] = {
    "bad_secret", "bad_signature", "bad_json",    "bad_utf8", "too_large",
    "too_deep",   "bad_payload",   "unavailable", "timeout",  "unstorable",
    "no_channel", "saturated",     "abandoned"};

static const double commit_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
#define N_COMMIT (sizeof(commit_bounds) / sizeof(commit_bounds[0]))
/* Fine below 20 ms, where a steady rate's answers fall, so that a p99 read
 * from the buckets is within a millisecond there. */
static const double webhook_bounds[] = {0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.010,
                                        0.012, 0.015, 0.020, 0.025, 0.030, 0.040, 0.050, 0.075,
                                        0.1,   0.25,  0.5,   1.0,   2.5,   5.0,   10.0};
#define N_WEBHOOK (sizeof(webhook_bounds) / sizeof(webhook_bounds[0]))
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define N_BATCH (sizeof(batch_bounds) / sizeof(batch_bounds[0]))

static atomic_uint_fast64_t counters[EF_MP_MAX][EF_M__COUNT];
static atomic_uint_fast64_t rejects[EF_MP_MAX][EF_REJ__COUNT];
static atomic_uint_fast64_t dead_letters[EF_MP_MAX];
static atomic_uint_fast64_t http_codes[6];
static atomic_uint_fast64_t commit_buckets[N_COMMIT + 1];
static atomic_uint_fast64_t commit_sum_us;
static atomic_uint_fast64_t batch_buckets[N_BATCH + 1];
static atomic_uint_fast64_t webhook_buckets[N_WEBHOOK + 1];
static atomic_uint_fast64_t webhook_sum_us;
static atomic_uint_fast64_t batch_sum;
static atomic_uint_fast64_t dispatcher_chats, dispatcher_rows;

/* Slots: the registry's adapters, then "other". */
static int n_platforms(void)
{
    int n = 0;
    while (ef_platforms[n] && n < EF_MP_MAX - 1)
        n++;
    return n;
}

static const char *platform_name(int i)
{
    return i < n_platforms() ? ef_platforms[i]->name : "other";
}

ef_metric_platform ef_metrics_platform(const char *name)
{
    int n = n_platforms();
    for (int i = 0; i < n; i++)
        if (name && strcmp(name, ef_platforms[i]->name) == 0)
            return i;
    return n;
}

void ef_metrics_add(ef_metric_platform p, ef_metric_counter c, uint64_t n)
{
    atomic_fetch_add(&counters[p][c], n);
}

void ef_metrics_reject(ef_metric_platform p, ef_reject_reason r)
{
    atomic_fetch_add(&rejects[p][r], 1);
}

void ef_metrics_dead_letter(ef_metric_platform p)
{
    atomic_fetch_add(&dead_letters[p], 1);
}

void ef_metrics_http(int status)
{
    int cls = status / 100;
    if (cls < 1 || cls > 5)
        cls = 0;
    atomic_fetch_add(&http_codes[cls], 1);
}

void ef_metrics_commit(double seconds, size_t batch_size)
{
    size_t i = 0;
    while (i < N_COMMIT && seconds > commit_bounds[i])
        i++;
    atomic_fetch_add(&commit_buckets[i], 1);
    atomic_fetch_add(&commit_sum_us, (uint64_t)(seconds * 1e6));
    i = 0;
    while (i < N_BATCH && (double)batch_size > batch_bounds[i])
        i++;
    atomic_fetch_add(&batch_buckets[i], 1);
    atomic_fetch_add(&batch_sum, batch_size);
}

void ef_metrics_webhook(double seconds)
{
    size_t i = 0;
    while (i < N_WEBHOOK && seconds > webhook_bounds[i])
        i++;
    atomic_fetch_add(&webhook_buckets[i], 1);
    atomic_fetch_add(&webhook_sum_us, (uint64_t)(seconds * 1e6));
}

static int histogram(ef_buf *b, const char *name, const char *help, const double *bounds, size_t n,
                     atomic_uint_fast64_t *buckets, double sum)
{
    int rc = ef_buf_appendf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        cum += atomic_load(&buckets[i]);
        rc = ef_buf_appendf(b, "%s_bucket{le=\"%g\"} %llu\n", name, bounds[i],
                            (unsigned long long)cum);
    }
    cum += atomic_load(&buckets[n]);
    if (!rc)
        rc = ef_buf_appendf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
                            (unsigned long long)cum, name, sum, name, (unsigned long long)cum);
    return rc;
}

static int render_outbox(ef_buf *b);
static int render_dispatcher(ef_buf *b);

int ef_metrics_render(ef_buf *b)
{
    int rc = 0;
    for (int c = 0; c < EF_M__COUNT && !rc; c++) {
        rc =
            ef_buf_appendf(b, "# HELP ef_updates_%s_total %s\n# TYPE ef_updates_%s_total counter\n",
                           counter_names[c], counter_help[c], counter_names[c]);
        for (int p = 0; p <= n_platforms() && !rc; p++)
            rc = ef_buf_appendf(b, "ef_updates_%s_total{platform=\"%s\"} %llu\n", counter_names[c],
                                platform_name(p), (unsigned long long)atomic_load(&counters[p][c]));
    }
    if (!rc)
        rc = ef_buf_appendf(b, "# HELP ef_updates_rejected_total Requests refused, by reason.\n"
                               "# TYPE ef_updates_rejected_total counter\n");
    for (int p = 0; p <= n_platforms() && !rc; p++)
        for (int r = 0; r < EF_REJ__COUNT && !rc; r++)
            rc = ef_buf_appendf(
                b, "ef_updates_rejected_total{platform=\"%s\",reason=\"%s\"} %llu\n",
                platform_name(p), reject_names[r], (unsigned long long)atomic_load(&rejects[p][r]));
    if (!rc)
        rc = ef_buf_appendf(b, "# HELP ef_dead_letters_total Events the database refused for "
                               "their data, kept in dead_letters.\n"
                               "# TYPE ef_dead_letters_total counter\n");
    for (int p = 0; p <= n_platforms() && !rc; p++)
        rc = ef_buf_appendf(b, "ef_dead_letters_total{platform=\"%s\"} %llu\n", platform_name(p),
                            (unsigned long long)atomic_load(&dead_letters[p]));
    if (!rc)
        rc = ef_buf_appendf(b, "# HELP ef_http_responses_total HTTP responses by status class.\n"
                               "# TYPE ef_http_responses_total counter\n");
    for (int i = 1; i <= 5 && !rc; i++)
        rc = ef_buf_appendf(b, "ef_http_responses_total{code=\"%dxx\"} %llu\n", i,
                            (unsigned long long)atomic_load(&http_codes[i]));
    if (!rc)
        rc = histogram(b, "ef_store_commit_seconds", "Duration of one batch commit.", commit_bounds,
                       N_COMMIT, commit_buckets, (double)atomic_load(&commit_sum_us) / 1e6);
    if (!rc)
        rc = histogram(b, "ef_webhook_seconds",
                       "Time from a webhook's headers to its answer written.", webhook_bounds,
                       N_WEBHOOK, webhook_buckets, (double)atomic_load(&webhook_sum_us) / 1e6);
    if (!rc)
        rc = histogram(b, "ef_store_batch_size", "Events per batch commit.", batch_bounds, N_BATCH,
                       batch_buckets, (double)atomic_load(&batch_sum));
    if (!rc)
        rc = render_dispatcher(b);
    if (!rc)
        rc = render_outbox(b);
    return rc;
}

void ef_metrics_dispatcher(size_t chats, size_t rows)
{
    atomic_store(&dispatcher_chats, chats);
    atomic_store(&dispatcher_rows, rows);
}

static int render_dispatcher(ef_buf *b)
{
    return ef_buf_appendf(
        b,
        "# HELP ef_dispatcher_chats Chats the dispatcher holds in memory (with replies to send "
        "or a limit still running).\n# TYPE ef_dispatcher_chats gauge\nef_dispatcher_chats %llu\n"
        "# HELP ef_dispatcher_rows Outbound rows the dispatcher holds in memory.\n"
        "# TYPE ef_dispatcher_rows gauge\nef_dispatcher_rows %llu\n",
        (unsigned long long)atomic_load(&dispatcher_chats),
        (unsigned long long)atomic_load(&dispatcher_rows));
}

/* ---- the outbox ------------------------------------------------------------ */

static atomic_bool outbox_seen;
static atomic_llong outbox_queued, outbox_due, outbox_failed, outbox_oldest_s;

size_t ef_metrics_outbox_json(char *buf, size_t n)
{
    int k =
        atomic_load(&outbox_seen)
            ? snprintf(buf, n,
                       "{\"queued\":%lld,\"sending\":%lld,\"failed\":%lld,"
                       "\"oldest_queued_age_s\":%lld}",
                       (long long)atomic_load(&outbox_queued), (long long)atomic_load(&outbox_due),
                       (long long)atomic_load(&outbox_failed),
                       (long long)atomic_load(&outbox_oldest_s))
            : snprintf(buf, n, "null");
    return k < 0 ? 0 : (size_t)k < n ? (size_t)k : n - 1;
}

static int render_outbox(ef_buf *b)
{
    if (!atomic_load(&outbox_seen))
        return 0;
    static const struct {
        const char *name, *help;
        atomic_llong *v;
    } g[] = {
        {"ef_outbox_queued", "Outbound rows waiting to be sent.", &outbox_queued},
        {"ef_outbox_sending", "Queued rows whose time has come (being sent or next in line).",
         &outbox_due},
        {"ef_outbox_failed", "Outbound rows the platform refused for good.", &outbox_failed},
        {"ef_outbox_oldest_queued_age_seconds", "Age of the oldest queued row (0: none).",
         &outbox_oldest_s},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]) && !rc; i++)
        rc = ef_buf_appendf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", g[i].name, g[i].help,
                            g[i].name, g[i].name, (long long)atomic_load(g[i].v));
    return rc;
}

struct ef_outbox_sampler {
    ef_store *st;
    int interval_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop; /* under lock */
};

static void sample(ef_outbox_sampler *s)
{
    ef_outbox_figures f;
    if (ef_store_outbox_figures(s->st, &f) != 0) {
        EF_LOG(EF_LOG_DEBUG, EF_C_PG, "outbox figures not read: %s", ef_store_errmsg(s->st));
        return;
    }
    atomic_store(&outbox_queued, f.queued);
    atomic_store(&outbox_due, f.due);
    atomic_store(&outbox_failed, f.failed);
    atomic_store(&outbox_oldest_s, f.oldest_queued_s);
    atomic_store(&outbox_seen, true);
}

static void *sampler_main(void *ud)
{
    ef_outbox_sampler *s = ud;
    pthread_mutex_lock(&s->lock);
    while (!s->stop) {
        pthread_mutex_unlock(&s->lock);
        sample(s);
        pthread_mutex_lock(&s->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += s->interval_ms / 1000;
        until.tv_nsec += (long)(s->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!s->stop && pthread_cond_timedwait(&s->cond, &s->lock, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

ef_outbox_sampler *ef_outbox_sampler_start(const char *pg_url, int interval_ms)
{
    ef_outbox_sampler *s = ef_calloc(1, sizeof(*s));
    s->st = ef_store_new(pg_url);
    s->interval_ms = interval_ms > 0 ? interval_ms : 5000;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    if (pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->lock);
        ef_store_free(s->st);
        ef_free(s);
        return NULL;
    }
    return s;
}

void ef_outbox_sampler_stop(ef_outbox_sampler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    ef_store_free(s->st);
    ef_free(s);
}
