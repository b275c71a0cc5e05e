/*
 * sync.c -- the marketplace order sync: one run (ef_sync_run), the
 * scheduler thread and the CLI's `integration sync ID`. See sync.h.
 */
#include "gateway/sync.h"

#include "base/time.h"
#include "store/orders.h"

#include <ctype.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BODY_MAX (32u << 20)          /* one page of 1,000 orders is ~1 MB */
#define OVERLAP_S 600                 /* re-read before the last success: clocks differ */
#define FIRST_WINDOW_S (30LL * 86400) /* the first run reads the last 30 days */
#define OPEN_CHECK_MAX 5000           /* stored open orders re-asked per run */
#define RATE_WAITS_MAX 8              /* 429s waited out per request */
#define RATE_WAIT_MAX_MS 120000       /* the longest single wait */
#define IO_RETRIES 2                  /* network / 5xx retries per request */
#define REQUESTS_MAX 100000           /* a runaway cursor ends the run */

/* ---- HTTP -------------------------------------------------------------------- */

typedef struct http_out {
    ef_buf body;
    int64_t retry_after_ms; /* Retry-After / X-Ratelimit-Retry, seconds in the header */
} http_out;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    http_out *o = ud;
    size_t n = size * nmemb;
    return ef_buf_append(&o->body, ptr, n) == 0 ? n : 0;
}

/* "Name: 12\r\n" for the rate headers; other headers ignored. */
static size_t on_header(char *ptr, size_t size, size_t nitems, void *ud)
{
    http_out *o = ud;
    size_t n = size * nitems;
    static const char *const names[] = {"retry-after:", "x-ratelimit-retry:"};
    for (size_t i = 0; i < 2; i++) {
        size_t k = strlen(names[i]);
        if (n > k && strncasecmp(ptr, names[i], k) == 0) {
            char v[32];
            size_t len = n - k < sizeof(v) - 1 ? n - k : sizeof(v) - 1;
            memcpy(v, ptr + k, len);
            v[len] = '\0';
            char *end;
            double secs = strtod(v, &end);
            if (end != v && secs >= 0 && secs < 86400)
                o->retry_after_ms = (int64_t)(secs * 1000.0);
        }
    }
    return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    atomic_bool *stop = ud;
    (void)a, (void)b, (void)c, (void)d;
    return stop && atomic_load(stop) ? 1 : 0;
}

/* Makes one request: the HTTP status (0 on a network error, reason in err). */
static long perform(const ef_mkt_req *rq, atomic_bool *stop, http_out *out, char *err,
                    size_t errlen)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (rq->body)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    for (size_t i = 0; i < EF_MKT_MAX_HEADERS && rq->headers[i]; i++)
        hdrs = curl_slist_append(hdrs, rq->headers[i]);
    char curl_err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, rq->url);
    if (rq->body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, stop);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
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

/* Sleeps ms in slices, returning early when asked to stop. */
static void nap(atomic_bool *stop, int64_t ms)
{
    int64_t end = ef_now_ms() + ms;
    while (!(stop && atomic_load(stop))) {
        int64_t left = end - ef_now_ms();
        if (left <= 0)
            return;
        struct timespec ts = {0, (long)(left > 100 ? 100 : left) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- one run ----------------------------------------------------------------- */

typedef struct run {
    ef_store *st;
    const char *id;
    const ef_market_ops *m;
    const void *cfg;
    atomic_bool *stop;
    ef_sync_state state;
    json_object *errors; /* [{request, status, message}] */
    int synced, failed, pages;
    int64_t last_request_ms;
    int fault; /* what ended the run early; 0: it completed */
    char reason[300];
} run;

static void record_error(run *r, const char *what, long status, const char *message)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "request", json_object_new_string(what ? what : "?"));
    json_object_object_add(e, "status", json_object_new_int64(status));
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_array_add(r->errors, e);
    if (!r->reason[0])
        snprintf(r->reason, sizeof(r->reason), "%s", message);
}

/* Waits until the API's published rate allows the next request. */
static void pace(run *r)
{
    ef_rate rate = r->m->orders_rate;
    int64_t gap = rate.n > 0 ? rate.per_ms / rate.n : 0;
    int64_t wait = r->last_request_ms + gap - ef_now_ms();
    if (r->last_request_ms && wait > 0)
        nap(r->stop, wait);
    r->last_request_ms = ef_now_ms();
}

static char *orders_json(const ef_order_list *l)
{
    json_object *arr = json_object_new_array();
    for (size_t i = 0; i < l->n; i++) {
        const ef_order *o = &l->items[i];
        json_object *j = json_object_new_object();
        json_object_object_add(j, "number", json_object_new_string(o->number));
        if (o->order_ref)
            json_object_object_add(j, "ref", json_object_new_string(o->order_ref));
        json_object_object_add(j, "scheme", json_object_new_string(o->scheme));
        json_object_object_add(j, "status", json_object_new_string(o->status));
        json_object_object_add(j, "rank", json_object_new_int(ef_order_rank(o->status)));
        json_object_object_add(j, "raw_status", json_object_new_string(o->status_raw));
        if (o->items_json) {
            json_object *items = json_tokener_parse(o->items_json);
            json_object_object_add(j, "items", items ? items : json_object_new_array());
            json_object *raw = o->raw_json ? json_tokener_parse(o->raw_json) : NULL;
            if (raw)
                json_object_object_add(j, "raw", raw);
        }
        if (o->amount_minor >= 0)
            json_object_object_add(j, "amount_minor", json_object_new_int64(o->amount_minor));
        if (o->currency[0])
            json_object_object_add(j, "currency", json_object_new_string(o->currency));
        if (o->created_at)
            json_object_object_add(j, "ordered_at", json_object_new_int64(o->created_at));
        if (o->status_at)
            json_object_object_add(j, "status_at", json_object_new_int64(o->status_at));
        json_object_array_add(arr, j);
    }
    char *s = ef_strdup(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
                                                                JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(arr);
    return s;
}

/* Stores one page. False when the store refused it (the run stops). */
static bool store_page(run *r, const ef_order_list *orders)
{
    if (!orders->n)
        return true;
    char *json = orders_json(orders);
    int written = 0;
    int rc = ef_store_orders_upsert(r->st, r->id, r->m->platform->name, json, &written);
    ef_free(json);
    if (rc) {
        r->fault = EF_EDB;
        record_error(r, "store", 0, ef_store_errmsg(r->st));
        return false;
    }
    r->synced += written;
    return true;
}

/* One request made until it is answered, waiting out 429s and retrying
 * network errors a little. Returns the final result in res and the page's
 * orders in orders. */
static void exchange(run *r, const ef_mkt_req *rq, ef_order_list *orders, ef_mkt_result *res)
{
    int waits = 0, retries = 0;
    http_out out;
    ef_buf_init(&out.body, BODY_MAX);
    for (;;) {
        char err[CURL_ERROR_SIZE + 8] = "";
        pace(r);
        ef_buf_reset(&out.body);
        out.retry_after_ms = -1;
        long status = perform(rq, r->stop, &out, err, sizeof(err));
        if (r->stop && atomic_load(r->stop)) {
            memset(res, 0, sizeof(*res));
            res->fault = EF_EIO;
            snprintf(res->reason, sizeof(res->reason), "%s: stopped (gateway shutting down)",
                     rq->what);
            break;
        }
        r->m->sync_response(r->cfg, &r->state, status, out.body.data, out.body.len, orders, res);
        if (status == 0 && err[0])
            snprintf(res->reason, sizeof(res->reason), "%s: network error: %s", rq->what, err);
        int64_t wait = res->retry_after_ms       ? res->retry_after_ms
                       : out.retry_after_ms >= 0 ? out.retry_after_ms
                                                 : 1000;
        if (res->fault == EF_ELIMIT && waits++ < RATE_WAITS_MAX) {
            wait = wait > RATE_WAIT_MAX_MS ? RATE_WAIT_MAX_MS : wait;
            EF_LOG(EF_LOG_INFO, EF_C_MAIN, "sync integration=%s %s; waiting %lld ms", r->id,
                   res->reason, (long long)wait);
            nap(r->stop, wait);
            continue;
        }
        if (res->fault == EF_EIO && retries++ < IO_RETRIES) {
            nap(r->stop, 1000LL << retries);
            continue;
        }
        break;
    }
    ef_buf_cleanup(&out.body);
}

/* Every request of the run, each page stored as it arrives. */
static void pages(run *r)
{
    for (int n = 0; n < REQUESTS_MAX; n++) {
        ef_mkt_req rq;
        if (!r->m->sync_request(r->cfg, &r->state, &rq))
            return;
        ef_order_list orders;
        ef_order_list_init(&orders);
        ef_mkt_result res;
        exchange(r, &rq, &orders, &res);
        if (res.skipped) {
            r->failed += (int)res.skipped;
            record_error(r, rq.what, 200, "orders that could not be read were skipped");
        }
        bool go = !res.fault;
        if (res.fault) {
            r->fault = res.fault;
            record_error(r, rq.what, 0, res.reason);
        } else {
            r->pages++;
            go = store_page(r, &orders);
        }
        ef_order_list_cleanup(&orders);
        ef_mkt_req_cleanup(&rq);
        if (!go)
            return;
    }
    r->fault = EF_ELIMIT;
    record_error(r, "run", 0, "too many requests in one run: the cursor does not advance");
}

/* The window and the stored open orders to ask about again. */
static void prepare(run *r, char ***open, size_t *n_open)
{
    int64_t now = (ef_wall_ms() + 999) / 1000, since = 0; /* "to" includes this second */
    r->state.until = now;
    if (ef_store_sync_since(r->st, r->id, &since) == 0 && since > 0)
        r->state.since = since - OVERLAP_S;
    else
        r->state.since = now - FIRST_WINDOW_S;
    *open = NULL;
    *n_open = 0;
    if (ef_store_orders_open(r->st, r->id, OPEN_CHECK_MAX, open, n_open) == 0) {
        r->state.check = (const char *const *)*open;
        r->state.n_check = *n_open;
    }
}

static void finish(run *r, const char *log_id, int64_t started, ef_sync_report *rep)
{
    const char *status = !r->fault && !r->failed ? "success"
                         : r->fault && !r->pages ? "failed"
                                                 : "partial";
    char meta[160];
    snprintf(meta, sizeof(meta), "{\"pages\":%d,\"window_from\":%lld,\"window_to\":%lld}", r->pages,
             (long long)r->state.since, (long long)r->state.until);
    ef_sync_outcome o = {
        .status = status,
        .requested = (int)r->state.requested,
        .synced = r->synced,
        .failed = r->failed,
        .errors_json = json_object_to_json_string_ext(r->errors, JSON_C_TO_STRING_PLAIN),
        .message = r->reason[0] ? r->reason : NULL,
        .metadata_json = meta,
        .fault = r->reason[0] ? r->reason : status,
    };
    if (ef_store_sync_finish(r->st, log_id, &o) != 0)
        EF_LOG(EF_LOG_WARN, EF_C_PG, "sync integration=%s sync_logs not completed: %s", r->id,
               ef_store_errmsg(r->st));
    snprintf(rep->status, sizeof(rep->status), "%s", status);
    rep->requested = o.requested;
    rep->synced = r->synced;
    rep->failed = r->failed;
    rep->duration_ms = ef_now_ms() - started;
    snprintf(rep->reason, sizeof(rep->reason), "%s", r->reason);
}

int ef_sync_run(ef_store *st, const char *integration_id, const ef_market_ops *m, const void *cfg,
                atomic_bool *stop, ef_sync_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    int rc = ef_store_sync_lock(st, integration_id);
    if (rc == EF_ECONFLICT) {
        snprintf(rep->status, sizeof(rep->status), "busy");
        snprintf(rep->reason, sizeof(rep->reason), "another sync of this integration is running");
        return 0;
    }
    char *log_id = NULL;
    if (rc || ef_store_sync_begin(st, integration_id, &log_id) != 0) {
        if (!rc)
            ef_store_sync_unlock(st, integration_id);
        return EF_EDB;
    }
    int64_t started = ef_now_ms();
    run r = {.st = st, .id = integration_id, .m = m, .cfg = cfg, .stop = stop};
    r.errors = json_object_new_array();
    char **open = NULL;
    size_t n_open = 0;
    prepare(&r, &open, &n_open);
    pages(&r);
    finish(&r, log_id, started, rep);
    EF_LOG(r.fault ? EF_LOG_WARN : EF_LOG_INFO, EF_C_MAIN,
           "sync integration=%s %s orders: %s listed=%d written=%d failed=%d %lld ms%s%s",
           integration_id, m->platform->name, rep->status, rep->requested, rep->synced, rep->failed,
           (long long)rep->duration_ms, r.reason[0] ? ": " : "", r.reason);
    ef_sync_state_cleanup(&r.state);
    ef_store_strings_free(open, n_open);
    json_object_put(r.errors);
    ef_free(log_id);
    ef_store_sync_unlock(st, integration_id);
    return 0;
}

/* ---- the credentials check ------------------------------------------------------- */

/* One cheap call; status connected, or error with the platform's reason. A
 * network failure decides nothing (false: check again later). */
static bool check_channel(ef_store *st, const ef_channel *ch, const ef_market_ops *m,
                          atomic_bool *stop)
{
    ef_mkt_req rq;
    m->check_request(ch->cfg, &rq);
    http_out out;
    ef_buf_init(&out.body, 1u << 20);
    char err[CURL_ERROR_SIZE] = "";
    long status = perform(&rq, stop, &out, err, sizeof(err));
    ef_mkt_result res;
    m->check_response(status, out.body.data, out.body.len, &res);
    ef_buf_cleanup(&out.body);
    ef_mkt_req_cleanup(&rq);
    if (res.fault == EF_EIO || res.fault == EF_ELIMIT) {
        EF_LOG(EF_LOG_WARN, EF_C_MAIN, "sync integration=%s credentials not checked: %s%s%s",
               ch->id, res.reason, err[0] ? ": " : "", err);
        return false;
    }
    if (ef_store_sync_checked(st, ch->id, res.fault == 0, res.reason) != 0)
        return false;
    EF_LOG(res.fault ? EF_LOG_WARN : EF_LOG_INFO, EF_C_MAIN,
           "sync integration=%s name=\"%s\" %s credentials %s%s%s", ch->id, ch->name, ch->ops->name,
           res.fault ? "refused" : "accepted", res.fault ? ": " : "", res.fault ? res.reason : "");
    return true;
}

/* ---- the scheduler ------------------------------------------------------------ */

#define CHECK_RETRY_MS 60000 /* a check the network prevented is tried again */

typedef struct checked {
    char *id;
    uint64_t version;
    int64_t retry_at_ms; /* 0: done for this version; else when to try again */
} checked;

struct ef_sync {
    ef_sync_opts opts;
    char *pg_url;
    char platforms[256]; /* "{wildberries,ozon}" */
    ef_store *st;
    pthread_t thread;
    atomic_bool stop;
    checked *done;
    size_t n_done;
};

/* Whether ch needs no check now (done for its version, or a failed try
 * waits for its retry time). */
static bool was_checked(ef_sync *s, const ef_channel *ch)
{
    for (size_t i = 0; i < s->n_done; i++)
        if (strcmp(s->done[i].id, ch->id) == 0 && s->done[i].version == ch->version)
            return s->done[i].retry_at_ms == 0 || ef_now_ms() < s->done[i].retry_at_ms;
    return false;
}

static void mark_checked(ef_sync *s, const ef_channel *ch, bool done)
{
    int64_t retry = done ? 0 : ef_now_ms() + CHECK_RETRY_MS;
    for (size_t i = 0; i < s->n_done; i++)
        if (strcmp(s->done[i].id, ch->id) == 0) {
            s->done[i].version = ch->version;
            s->done[i].retry_at_ms = retry;
            return;
        }
    s->done = ef_realloc(s->done, (s->n_done + 1) * sizeof(*s->done));
    s->done[s->n_done++] = (checked){ef_strdup(ch->id), ch->version, retry};
}

static void check_new(ef_sync *s)
{
    ef_channel **chs = NULL;
    size_t n = ef_channels_list(s->opts.channels, NULL, &chs);
    for (size_t i = 0; i < n && !atomic_load(&s->stop); i++) {
        const ef_market_ops *m = ef_market_of(chs[i]->ops);
        if (m && !was_checked(s, chs[i]))
            mark_checked(s, chs[i], check_channel(s->st, chs[i], m, &s->stop));
    }
    ef_channels_list_free(chs, n);
}

static void run_due(ef_sync *s)
{
    char **ids = NULL;
    size_t n = 0;
    if (ef_store_sync_due(s->st, s->platforms, &ids, &n) != 0)
        return;
    for (size_t i = 0; i < n && !atomic_load(&s->stop); i++) {
        ef_channel *ch = ef_channels_get(s->opts.channels, ids[i]);
        const ef_market_ops *m = ch ? ef_market_of(ch->ops) : NULL;
        ef_sync_report rep;
        if (m && ef_sync_run(s->st, ch->id, m, ch->cfg, &s->stop, &rep) != 0)
            EF_LOG(EF_LOG_WARN, EF_C_PG, "sync integration=%s not started: %s", ids[i],
                   ef_store_errmsg(s->st));
        ef_channel_unref(ch);
    }
    ef_store_strings_free(ids, n);
}

static void *sync_main(void *arg)
{
    ef_sync *s = arg;
    while (!atomic_load(&s->stop)) {
        if (ef_channels_ready(s->opts.channels)) {
            check_new(s);
            run_due(s);
        }
        nap(&s->stop, s->opts.tick_ms);
    }
    return NULL;
}

ef_sync *ef_sync_start(const ef_sync_opts *o)
{
    ef_sync *s = ef_calloc(1, sizeof(*s));
    s->opts = *o;
    s->opts.tick_ms = o->tick_ms > 0 ? o->tick_ms : 1000;
    size_t len = 0, markets = 0;
    s->platforms[len++] = '{';
    for (size_t i = 0; ef_platforms[i]; i++) {
        if (!ef_market_of(ef_platforms[i]))
            continue;
        len += (size_t)snprintf(s->platforms + len, sizeof(s->platforms) - len, "%s%s",
                                markets++ ? "," : "", ef_platforms[i]->name);
    }
    snprintf(s->platforms + len, sizeof(s->platforms) - len, "}");
    if (!markets) {
        ef_free(s);
        return NULL;
    }
    s->pg_url = ef_strdup(o->pg_url);
    s->opts.pg_url = s->pg_url;
    s->st = ef_store_new(s->pg_url);
    atomic_init(&s->stop, false);
    if (pthread_create(&s->thread, NULL, sync_main, s) != 0)
        EF_PANIC("cannot start the order sync thread");
    return s;
}

void ef_sync_stop(ef_sync *s)
{
    if (!s)
        return;
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    ef_store_free(s->st);
    for (size_t i = 0; i < s->n_done; i++)
        ef_free(s->done[i].id);
    ef_free(s->done);
    ef_free(s->pg_url);
    ef_free(s);
}

/* ---- `easyflow integration sync ID` -------------------------------------------- */

/* The row's settings with <PLATFORM>_API_URL from the environment under
 * them (the row's own api_url wins). Owned. */
static char *cli_settings(const ef_platform_ops *ops, const char *row_settings)
{
    char key[64];
    snprintf(key, sizeof(key), "%s_API_URL", ops->name);
    for (char *p = key; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    const char *url = getenv(key);
    json_object *o = NULL;
    char why[128];
    if (!row_settings ||
        ef_json_parse(row_settings, strlen(row_settings), 16, &o, why, sizeof(why)) != 0 ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        o = json_object_new_object();
    }
    json_object *v;
    if (url && *url && !json_object_object_get_ex(o, "api_url", &v))
        json_object_object_add(o, "api_url", json_object_new_string(url));
    char *s = ef_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return s;
}

/* The row's adapter configuration (owned by *cfg), or 1 with the reason printed. */
static int cli_open(const ef_keyring *kr, const ef_integration_row *row, const ef_platform_ops *ops,
                    void **cfg)
{
    char *plain = NULL;
    size_t plen = 0;
    if (!row->sealed || ef_keyring_open(kr, row->key_id, row->id, row->sealed, row->sealed_len,
                                        &plain, &plen, NULL) != 0) {
        fprintf(stderr,
                "easyflow integration sync: the credentials of %s do not open with "
                "EF_SECRET_KEY\n",
                row->id);
        return 1;
    }
    char *settings = cli_settings(ops, row->settings_json);
    ef_platform_policy pol;
    char err[400];
    int rc = ops->open(plain, settings, cfg, &pol, err, sizeof(err));
    memset(plain, 0, plen);
    ef_free(plain);
    ef_free(settings);
    if (rc)
        fprintf(stderr, "easyflow integration sync: %s\n", err);
    return rc ? 1 : 0;
}

int ef_sync_cli(ef_store *st, const ef_keyring *kr, const char *integration_id)
{
    ef_integration_row row;
    int rc = ef_store_integration_get(st, integration_id, &row);
    if (rc == EF_ENOTFOUND || rc == EF_EINVAL) {
        fprintf(stderr, "easyflow integration sync: no integration %.60s\n", integration_id);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "easyflow integration sync: %s\n", ef_store_errmsg(st));
        return 1;
    }
    const ef_platform_ops *ops = ef_platform_find(row.platform);
    const ef_market_ops *m = ef_market_of(ops);
    void *cfg = NULL;
    int out = 1;
    if (!m)
        fprintf(stderr, "easyflow integration sync: %s integrations have no orders to sync\n",
                row.platform);
    else if (cli_open(kr, &row, ops, &cfg) == 0) {
        ef_sync_report rep;
        if (ef_sync_run(st, row.id, m, cfg, NULL, &rep) != 0) {
            fprintf(stderr, "easyflow integration sync: %s\n", ef_store_errmsg(st));
        } else {
            printf("sync %s: %d orders listed, %d written, %d failed, %lld ms%s%s\n", rep.status,
                   rep.requested, rep.synced, rep.failed, (long long)rep.duration_ms,
                   rep.reason[0] ? ": " : "", rep.reason);
            out = strcmp(rep.status, "success") == 0 || strcmp(rep.status, "partial") == 0 ? 0 : 1;
        }
        ops->close(cfg);
    }
    ef_integration_row_cleanup(&row);
    return out;
}
