/*
 * metrics.c -- counters and histograms for GET /metrics (Prometheus text).
 */
#include "gateway/metrics.h"

#include "platforms/platform.h"

#include <stdatomic.h>
#include <string.h>

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
static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
#define N_BATCH (sizeof(batch_bounds) / sizeof(batch_bounds[0]))

static atomic_uint_fast64_t counters[EF_MP_MAX][EF_M__COUNT];
static atomic_uint_fast64_t rejects[EF_MP_MAX][EF_REJ__COUNT];
static atomic_uint_fast64_t dead_letters[EF_MP_MAX];
static atomic_uint_fast64_t http_codes[6];
static atomic_uint_fast64_t commit_buckets[N_COMMIT + 1];
static atomic_uint_fast64_t commit_sum_us;
static atomic_uint_fast64_t batch_buckets[N_BATCH + 1];
static atomic_uint_fast64_t batch_sum;

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
        rc = histogram(b, "ef_store_batch_size", "Events per batch commit.", batch_bounds, N_BATCH,
                       batch_buckets, (double)atomic_load(&batch_sum));
    return rc;
}
