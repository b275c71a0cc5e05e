/*
 * poll.c -- Telegram getUpdates long polling. See poll.h.
 */
#include "gateway/poll.h"

#include "gateway/metrics.h"
#include "platforms/platform.h"
#include "store/store.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000

/* Every update type the gateway handles; chat_member and message_reaction
 * must be asked for explicitly (PLATFORMS.md A3). */
static const char *const allowed_updates =
    "[\"message\",\"edited_message\",\"channel_post\",\"edited_channel_post\","
    "\"business_connection\",\"business_message\",\"edited_business_message\","
    "\"deleted_business_messages\",\"message_reaction\",\"message_reaction_count\","
    "\"inline_query\",\"chosen_inline_result\",\"callback_query\",\"shipping_query\","
    "\"pre_checkout_query\",\"poll\",\"poll_answer\",\"my_chat_member\",\"chat_member\","
    "\"chat_join_request\",\"chat_boost\",\"removed_chat_boost\",\"purchased_paid_media\"]";

struct ef_poller {
    ef_poller_opts opts;
    char *api_url;
    char *token;
    char *bot_id;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool job_done;
    ef_store *store;
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

/* One getUpdates call. Returns the HTTP status (0 on a network error) with
 * the body in out. */
static long get_updates(ef_poller *p, int64_t offset, ef_buf *out, char *err, size_t errlen)
{
    char *url = ef_asprintf("%s/bot%s/getUpdates", p->api_url, p->token);
    char *body;
    if (offset > 0)
        body = ef_asprintf("{\"offset\":%lld,\"limit\":100,\"timeout\":%d,\"allowed_updates\":%s}",
                           (long long)offset, p->opts.timeout_s, allowed_updates);
    else
        body = ef_asprintf("{\"limit\":100,\"timeout\":%d,\"allowed_updates\":%s}",
                           p->opts.timeout_s, allowed_updates);
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)p->opts.timeout_s + 15L);
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
    ef_free(body);
    ef_free(url);
    return status;
}

static const char *describe(json_object *root)
{
    json_object *d;
    if (root && json_object_object_get_ex(root, "description", &d))
        return json_object_get_string(d);
    return "";
}

/* Hands the batch to the pipeline and waits for its commit. Returns 0 when
 * everything was committed (or was a duplicate, or had nothing to store). */
static int commit_batch(ef_poller *p, json_object *result, int64_t *max_id)
{
    ef_msg_list msgs;
    ef_msg_list_init(&msgs);
    size_t n = json_object_array_length(result);
    for (size_t i = 0; i < n; i++) {
        json_object *u = json_object_array_get_idx(result, i);
        ef_parse_info info;
        memset(&info, 0, sizeof(info));
        json_object *id;
        if (json_object_object_get_ex(u, "update_id", &id) && json_object_get_int64(id) > *max_id)
            *max_id = json_object_get_int64(id);
        size_t before = msgs.n;
        int rc = ef_platform_parse(&ef_platform_telegram, u, &msgs, &info);
        ef_metrics_add(EF_MP_TELEGRAM, EF_M_RECEIVED, 1);
        if (rc) {
            ef_metrics_reject(EF_MP_TELEGRAM, EF_REJ_BAD_PAYLOAD);
            EF_LOG(EF_LOG_WARN, EF_C_POLL, "update=%lld skipped, not a valid update: %s",
                   (long long)info.update_id, info.note);
        } else if (msgs.n == before) {
            ef_metrics_add(EF_MP_TELEGRAM, EF_M_IGNORED, 1);
            EF_LOG(EF_LOG_INFO, EF_C_POLL, "update=%lld what=%s ignored: %s",
                   (long long)info.update_id, info.what, info.note);
        }
    }
    pthread_mutex_lock(&p->lock);
    p->job_done = false;
    pthread_mutex_unlock(&p->lock);
    ef_job *job = ef_job_new(&msgs, job_done, p);
    ef_pipeline_submit(p->opts.pipe, job);
    pthread_mutex_lock(&p->lock);
    while (!p->job_done)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
    int status = ef_job_get_result(job)->status;
    ef_job_free(job);
    return status;
}

static int64_t load_offset(ef_poller *p)
{
    int64_t backoff = BACKOFF_MIN_MS;
    while (!atomic_load(&p->stop)) {
        int64_t off = 0;
        int rc = ef_store_poll_offset_get(p->store, p->bot_id, &off);
        if (rc == 0)
            return off;
        if (rc == EF_ENOTFOUND)
            return 0;
        EF_LOG(EF_LOG_WARN, EF_C_POLL, "cannot read the saved offset, retrying: %s",
               ef_store_errmsg(p->store));
        nap(p, backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    return 0;
}

static void *poll_main(void *arg)
{
    ef_poller *p = arg;
    int64_t offset = load_offset(p);
    int64_t backoff = BACKOFF_MIN_MS;
    EF_LOG(EF_LOG_INFO, EF_C_POLL, "long polling getUpdates bot=%s offset=%lld timeout=%ds",
           p->bot_id, (long long)offset, p->opts.timeout_s);
    ef_buf body;
    ef_buf_init(&body, p->opts.max_body * 16);
    while (!atomic_load(&p->stop)) {
        char err[CURL_ERROR_SIZE + 64] = "";
        ef_buf_reset(&body);
        long status = get_updates(p, offset, &body, err, sizeof(err));
        if (atomic_load(&p->stop))
            break;
        json_object *root = NULL;
        if (status) {
            char perr[128];
            if (ef_json_parse(body.data ? body.data : "", body.len, p->opts.json_max_depth, &root,
                              perr, sizeof(perr)) != 0)
                root = NULL;
        }
        json_object *ok = NULL, *result = NULL;
        if (status == 200 && root && json_object_object_get_ex(root, "ok", &ok) &&
            json_object_get_boolean(ok) && json_object_object_get_ex(root, "result", &result) &&
            json_object_is_type(result, json_type_array)) {
            if (json_object_array_length(result) > 0) {
                int64_t max_id = offset - 1;
                if (commit_batch(p, result, &max_id) == 0) {
                    offset = max_id + 1;
                    if (ef_store_poll_offset_set(p->store, p->bot_id, offset) != 0)
                        EF_LOG(EF_LOG_WARN, EF_C_POLL, "offset=%lld not saved: %s",
                               (long long)offset, ef_store_errmsg(p->store));
                    backoff = BACKOFF_MIN_MS;
                } else {
                    EF_LOG(
                        EF_LOG_WARN, EF_C_POLL,
                        "batch not committed (store unavailable); retrying offset=%lld in %lld ms",
                        (long long)offset, (long long)backoff);
                    nap(p, backoff);
                    backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
                }
            } else {
                backoff = BACKOFF_MIN_MS;
            }
        } else {
            int64_t wait = backoff;
            if (status == 401) {
                EF_LOG(EF_LOG_ERROR, EF_C_POLL,
                       "getUpdates: 401 Unauthorized: the bot token is wrong or revoked "
                       "(check TELEGRAM_BOT_TOKEN)");
                wait = BACKOFF_MAX_MS;
            } else if (status == 409) {
                EF_LOG(EF_LOG_ERROR, EF_C_POLL,
                       "getUpdates: 409 Conflict: %s -- a webhook is set for this bot or "
                       "another poller runs; call deleteWebhook or use TELEGRAM_MODE=webhook",
                       describe(root));
                wait = BACKOFF_MAX_MS / 3;
            } else if (status == 429) {
                json_object *params, *ra;
                wait = 5000;
                if (root && json_object_object_get_ex(root, "parameters", &params) &&
                    json_object_object_get_ex(params, "retry_after", &ra))
                    wait = json_object_get_int64(ra) * 1000;
                EF_LOG(EF_LOG_WARN, EF_C_POLL, "getUpdates: 429, waiting %lld ms", (long long)wait);
            } else if (status == 0) {
                EF_LOG(EF_LOG_WARN, EF_C_POLL, "getUpdates failed: %s; retrying in %lld ms", err,
                       (long long)wait);
            } else {
                EF_LOG(EF_LOG_WARN, EF_C_POLL, "getUpdates: HTTP %ld %s; retrying in %lld ms",
                       status, describe(root), (long long)wait);
            }
            nap(p, wait);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        }
        json_object_put(root);
    }
    ef_buf_cleanup(&body);
    return NULL;
}

ef_poller *ef_poller_start(const ef_poller_opts *opts, char *err, size_t errlen)
{
    if (!opts->token || !*opts->token) {
        snprintf(err, errlen, "TELEGRAM_MODE=poll needs TELEGRAM_BOT_TOKEN");
        return NULL;
    }
    const char *colon = strchr(opts->token, ':');
    if (!colon || colon == opts->token) {
        snprintf(err, errlen, "TELEGRAM_BOT_TOKEN does not look like <bot id>:<secret>");
        return NULL;
    }
    ef_poller *p = ef_calloc(1, sizeof(*p));
    p->opts = *opts;
    p->api_url = ef_strdup(opts->api_url);
    size_t n = strlen(p->api_url);
    while (n && p->api_url[n - 1] == '/')
        p->api_url[--n] = '\0';
    p->token = ef_strdup(opts->token);
    p->bot_id = ef_strndup(opts->token, (size_t)(colon - opts->token));
    p->store = ef_store_new(opts->pg_url);
    atomic_init(&p->stop, false);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    if (pthread_create(&p->thread, NULL, poll_main, p) != 0)
        EF_PANIC("cannot start the poller thread");
    return p;
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
    ef_free(p->api_url);
    ef_free(p->token);
    ef_free(p->bot_id);
    ef_free(p);
}
