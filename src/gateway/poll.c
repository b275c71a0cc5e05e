/*
 * poll.c -- long polling for channels that poll instead of receiving
 * webhooks. See poll.h.
 */
#include "gateway/poll.h"

#include "gateway/metrics.h"
#include "store/store.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define CONFLICT_WAIT_MS 10000

struct ef_poller {
    ef_poller_opts opts;
    ef_channel *ch; /* referenced until the poller is freed */
    pthread_t thread;
    atomic_bool stop;
    atomic_bool done; /* the thread left its loop (stopped, or the channel failed) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool job_done;
    ef_store *store;
    char cursor[64];
    int64_t backoff;
};

static void job_done(ef_job *job, void *ud)
{
    ef_poller *p = ud;
    (void)job;
    pthread_mutex_lock(&p->lock);
    p->job_done = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

/* Sleeps up to ms, returning early when asked to stop. */
static void nap(ef_poller *p, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    while (!atomic_load(&p->stop)) {
        if (pthread_cond_timedwait(&p->cond, &p->lock, &ts) != 0)
            break;
    }
    pthread_mutex_unlock(&p->lock);
}

static void back_off(ef_poller *p, int64_t wait)
{
    nap(p, wait > 0 ? wait : p->backoff);
    p->backoff = p->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : p->backoff * 2;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    ef_buf *b = ud;
    size_t n = size * nmemb;
    return ef_buf_append(b, ptr, n) == 0 ? n : 0;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    ef_poller *p = ud;
    (void)a, (void)b, (void)c, (void)d;
    return atomic_load(&p->stop) ? 1 : 0;
}

/* Makes the adapter's poll request. Returns the HTTP status (0 on a
 * network error, with the reason in err) and the body in out. */
static long perform(ef_poller *p, const ef_out_req *rq, ef_buf *out, char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    char ctype[160];
    snprintf(ctype, sizeof(ctype), "Content-Type: %s",
             rq->content_type ? rq->content_type : "application/json");
    struct curl_slist *hdrs = curl_slist_append(NULL, ctype);
    if (rq->header)
        hdrs = curl_slist_append(hdrs, rq->header);
    if (rq->header2)
        hdrs = curl_slist_append(hdrs, rq->header2);
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    if (rq->body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)p->ch->policy.poll_timeout_s + 15L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "easyflow/" EF_VERSION);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errlen, "%s", curl_err[0] ? curl_err : curl_easy_strerror(rc));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return status;
}

/* Hands the batch to the pipeline and waits for its commit. Returns 0 when
 * everything was committed (or was a duplicate, ignored, or refused for
 * good as the sender's error). */
static int commit_batch(ef_poller *p, ef_msg_list *msgs)
{
    ef_metric_platform mp = ef_metrics_platform(p->ch->ops->name);
    ef_metrics_add(mp, EF_M_RECEIVED, msgs->n);
    for (size_t i = 0; i < msgs->n; i++) {
        ef_msg *m = msgs->items[i];
        ef_free(m->integration_id);
        m->integration_id = ef_strdup(p->ch->id);
        m->read_receipt = p->ch->policy.read_receipts;
    }
    pthread_mutex_lock(&p->lock);
    p->job_done = false;
    pthread_mutex_unlock(&p->lock);
    ef_job *job = ef_job_new(msgs, job_done, p);
    ef_pipeline_submit(p->opts.pipe, job);
    pthread_mutex_lock(&p->lock);
    while (!p->job_done)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    const ef_job_result *res = ef_job_get_result(job);
    if (res->rejected)
        EF_LOG(EF_LOG_WARN, EF_C_POLL, "integration=%s %zu update(s) refused, not stored: %s",
               p->ch->id, res->rejected, res->reason);
    int status = res->status;
    ef_job_free(job);
    return status;
}

static void load_cursor(ef_poller *p)
{
    while (!atomic_load(&p->stop)) {
        char *c = NULL;
        int rc = ef_store_cursor_get(p->store, p->ch->id, &c);
        if (rc == 0 || rc == EF_ENOTFOUND) {
            snprintf(p->cursor, sizeof(p->cursor), "%s", c ? c : "");
            ef_free(c);
            return;
        }
        EF_LOG(EF_LOG_WARN, EF_C_POLL, "integration=%s cannot read the saved cursor, retrying: %s",
               p->ch->id, ef_store_errmsg(p->store));
        back_off(p, 0);
    }
}

/* The answer carried updates (or moved the cursor): commit, then save the
 * cursor; never the cursor before the commit. */
static void take_batch(ef_poller *p, ef_msg_list *msgs, const ef_poll_result *res)
{
    if (res->skipped)
        EF_LOG(EF_LOG_WARN, EF_C_POLL, "integration=%s %zu update(s) skipped: %s", p->ch->id,
               res->skipped, res->reason);
    if (msgs->n && commit_batch(p, msgs) != 0) {
        EF_LOG(EF_LOG_WARN, EF_C_POLL,
               "integration=%s batch not committed (store unavailable); retrying cursor=%s in "
               "%lld ms",
               p->ch->id, p->cursor[0] ? p->cursor : "-", (long long)p->backoff);
        back_off(p, 0);
        return;
    }
    p->backoff = BACKOFF_MIN_MS;
    if (!res->next_cursor[0] || strcmp(res->next_cursor, p->cursor) == 0)
        return;
    snprintf(p->cursor, sizeof(p->cursor), "%s", res->next_cursor);
    if (ef_store_cursor_set(p->store, p->ch->id, p->cursor) != 0)
        EF_LOG(EF_LOG_WARN, EF_C_POLL, "integration=%s cursor=%s not saved: %s", p->ch->id,
               p->cursor, ef_store_errmsg(p->store));
}

/* A refused or failed poll. Returns false when the poller must stop. */
static bool take_fault(ef_poller *p, const ef_poll_result *res, const char *neterr)
{
    switch (res->fault) {
    case EF_EAUTH:
        ef_channels_fail(p->ch, p->store, res->reason);
        return false;
    case EF_ECONFLICT:
        EF_LOG(EF_LOG_ERROR, EF_C_POLL, "integration=%s %s", p->ch->id, res->reason);
        nap(p, CONFLICT_WAIT_MS);
        return true;
    default:
        EF_LOG(EF_LOG_WARN, EF_C_POLL, "integration=%s %s%s%s; retrying in %lld ms", p->ch->id,
               res->reason, neterr[0] ? ": " : "", neterr,
               (long long)(res->retry_after_ms ? res->retry_after_ms : p->backoff));
        back_off(p, res->retry_after_ms);
        return true;
    }
}

static void *poll_main(void *arg)
{
    ef_poller *p = arg;
    const ef_platform_ops *ops = p->ch->ops;
    load_cursor(p);
    EF_LOG(EF_LOG_INFO, EF_C_POLL, "integration=%s %s long polling key=%s cursor=%s timeout=%ds",
           p->ch->id, ops->name, p->ch->key, p->cursor[0] ? p->cursor : "-",
           p->ch->policy.poll_timeout_s);
    ef_buf body;
    ef_buf_init(&body, p->opts.max_body * 16);
    bool go = true;
    while (go && !atomic_load(&p->stop) && !ef_channel_failed(p->ch)) {
        char err[CURL_ERROR_SIZE + 64] = "";
        ef_out_req rq;
        ops->poll_request(p->ch->cfg, p->cursor, p->ch->policy.poll_timeout_s, &rq);
        ef_buf_reset(&body);
        long status = perform(p, &rq, &body, err, sizeof(err));
        ef_out_req_cleanup(&rq);
        if (atomic_load(&p->stop))
            break;
        ef_msg_list msgs;
        ef_msg_list_init(&msgs);
        ef_poll_result res;
        ops->poll_response(p->ch->cfg, p->cursor, status, body.data, body.len,
                           p->opts.json_max_depth, &msgs, &res);
        if (res.fault)
            go = take_fault(p, &res, err);
        else
            take_batch(p, &msgs, &res);
        /* A short-polling API paces its polls (its rate limit is policy data). */
        if (!res.fault && res.retry_after_ms > 0)
            nap(p, res.retry_after_ms);
        ef_msg_list_cleanup(&msgs);
    }
    ef_buf_cleanup(&body);
    atomic_store(&p->done, true);
    return NULL;
}

ef_poller *ef_poller_start(ef_channel *ch, const ef_poller_opts *opts)
{
    ef_poller *p = ef_calloc(1, sizeof(*p));
    p->opts = *opts;
    p->ch = ef_channel_ref(ch);
    p->store = ef_store_new(opts->pg_url);
    p->opts.pg_url = NULL;
    p->backoff = BACKOFF_MIN_MS;
    atomic_init(&p->stop, false);
    atomic_init(&p->done, false);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, poll_main, p) != 0)
        EF_PANIC("cannot start the poller thread");
    return p;
}

const ef_channel *ef_poller_channel(const ef_poller *p)
{
    return p->ch;
}

bool ef_poller_done(const ef_poller *p)
{
    return atomic_load(&((ef_poller *)p)->done);
}

void ef_poller_stop(ef_poller *p)
{
    if (!p)
        return;
    atomic_store(&p->stop, true);
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    ef_store_free(p->store);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    ef_channel_unref(p->ch);
    ef_free(p);
}
