/*
 * dispatch.c -- the outbox dispatcher. See dispatch.h for the contract.
 *
 * One thread. In memory: a hash table of chats, each with the FIFO of its
 * queued rows (oldest first) and at most one request in flight; sliding
 * windows for the per-bot, per-group and per-number limits. Requests go
 * through one curl multi handle, so slow answers for one chat do not hold
 * up the others. PostgreSQL is the source of truth: the periodic fetch
 * picks up rows committed since, and a restart starts from what is queued.
 *
 * The platforms count requests when they arrive, which is some time after
 * we start them (connection set-up, curl's scheduling). So a window counts
 * a request as in flight from its start and then by the time its answer
 * came back: a new request starts only when the window's limit holds even
 * if every earlier one arrived at the very end of its flight. After a
 * start, message sends wait one window length: a previous instance may
 * have sent to the same chats a moment ago.
 *
 * A row whose outcome could not be recorded (PostgreSQL down right after
 * the platform accepted it) stays in memory with that outcome and is
 * recorded on a later pass; it is never sent twice by one process.
 */
#include "gateway/dispatch.h"

#include "base/hash.h"
#include "gateway/ratelimit.h"

#include "platforms/platform.h"
#include "store/store.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS 4096
#define FETCH_LIMIT 2000
#define FETCH_EVERY_MS 1000
#define STANDBY_EVERY_MS 5000
#define MAX_ATTEMPTS 12
#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS 60000
#define RESP_MAX (1 << 20)
#define STOP_GRACE_MS 5000
#define START_HOLD_MS 1000 /* the per-second windows of a previous instance */

typedef enum record_state { REC_NONE = 0, REC_SENT, REC_FAILED } record_state;

typedef struct out_row out_row;
struct out_row {
    ef_outbox_row r;
    out_row *next;
    record_state rec; /* an outcome still to be written to PostgreSQL */
    bool as_template; /* WhatsApp window closed: send the re-engagement template */
    char *rec_pmid;
    char rec_reason[256];
    bool rec_undeliverable;
};

typedef struct chat chat;
struct chat {
    char *key; /* integration|chat_id */
    out_row *head, *tail;
    bool in_flight;
    int64_t next_ms; /* earliest time of this chat's next send */
    ef_window group; /* groups only */
    chat *hnext;
};

typedef struct channel_window {
    char *key; /* the channel's integration id: its per-account limit */
    ef_window w;
    struct channel_window *next;
} channel_window;

typedef struct flight flight;
struct flight {
    flight *prev, *next; /* every request in flight */
    chat *c;
    out_row *row;
    CURL *easy;
    struct curl_slist *hdrs;
    ef_buf resp;
    ef_out_req rq;
    ef_channel *ch; /* referenced while in flight */
    ef_out_msg m;
    bool counted;  /* charged to the windows below until answered */
    ef_window *cw; /* the channel's per-account window, or NULL */
};

struct ef_dispatcher {
    ef_dispatch_opts opts;
    pthread_t thread;
    atomic_bool stop;
    atomic_bool woken;
    CURLM *multi;
    ef_store *store;
    chat *buckets[N_BUCKETS];
    channel_window *channels;
    flight *flist;
    size_t flights;
    bool leader;
    int64_t hold_until_ms; /* no message sends before (START_HOLD_MS) */
    int64_t last_db_log_ms;
    int64_t last_token_log_ms;
};

/* ---- small pieces --------------------------------------------------------- */

static bool is_method_call(const out_row *row)
{
    /* API calls that are not messages (answerCallbackQuery) do not count
     * against a chat's message limits. */
    return row->r.meta_json && strstr(row->r.meta_json, "\"method\"") != NULL;
}

/* The channel's per-account window (its policy's rate; a new policy
 * resizes it), or NULL when it has no such limit. */
static ef_window *channel_window_for(ef_dispatcher *d, const ef_channel *ch)
{
    ef_rate rate = ch->policy.per_account;
    if (rate.n <= 0 || rate.per_ms <= 0)
        return NULL;
    channel_window *c = d->channels;
    while (c && strcmp(c->key, ch->id) != 0)
        c = c->next;
    if (c && (c->w.cap != rate.n || c->w.span_ms != rate.per_ms) && c->w.pending == 0) {
        ef_window_cleanup(&c->w);
        ef_window_init(&c->w, rate.n, rate.per_ms);
    }
    if (c)
        return &c->w;
    c = ef_calloc(1, sizeof(*c));
    c->key = ef_strdup(ch->id);
    ef_window_init(&c->w, rate.n, rate.per_ms);
    c->next = d->channels;
    d->channels = c;
    return &c->w;
}

static bool is_group(const ef_outbox_row *r)
{
    return r->chat_type &&
           (strcmp(r->chat_type, "group") == 0 || strcmp(r->chat_type, "supergroup") == 0);
}

static chat *chat_get(ef_dispatcher *d, const ef_outbox_row *r, bool create)
{
    char *key = ef_asprintf("%s|%s", r->integration_id ? r->integration_id : r->platform,
                            r->chat_id ? r->chat_id : "");
    uint64_t b = ef_fnv1a64(key, EF_FNV1A64_INIT) % N_BUCKETS;
    for (chat *c = d->buckets[b]; c; c = c->hnext) {
        if (strcmp(c->key, key) == 0) {
            ef_free(key);
            return c;
        }
    }
    if (!create) {
        ef_free(key);
        return NULL;
    }
    chat *c = ef_calloc(1, sizeof(*c));
    c->key = key;
    c->hnext = d->buckets[b];
    d->buckets[b] = c;
    return c;
}

static bool row_known(ef_dispatcher *d, const ef_outbox_row *r)
{
    chat *c = chat_get(d, r, false);
    for (out_row *o = c ? c->head : NULL; o; o = o->next)
        if (strcmp(o->r.row_id, r->row_id) == 0)
            return true;
    return false;
}

static void row_free(out_row *o)
{
    ef_outbox_row_cleanup(&o->r);
    ef_free(o->rec_pmid);
    ef_free(o);
}

/* Removes the chat's head row (it is done). */
static void pop_head(chat *c)
{
    out_row *o = c->head;
    if (!o)
        return;
    c->head = o->next;
    if (!c->head)
        c->tail = NULL;
    row_free(o);
}

static int64_t backoff_ms(int attempts)
{
    int64_t ms = BACKOFF_BASE_MS;
    for (int i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > BACKOFF_MAX_MS)
        ms = BACKOFF_MAX_MS;
    return ms + (int64_t)(rand() % 250);
}

static void db_warn(ef_dispatcher *d, const char *what)
{
    int64_t now = ef_now_ms();
    if (now - d->last_db_log_ms > 5000) {
        EF_LOG(EF_LOG_WARN, EF_C_PG, "dispatcher: %s not recorded, will retry: %s", what,
               ef_store_errmsg(d->store));
        d->last_db_log_ms = now;
    }
}

/* Writes a decided outcome; on success the row leaves memory. */
static void record(ef_dispatcher *d, chat *c)
{
    out_row *o = c->head;
    int rc;
    if (o->rec == REC_SENT)
        rc = ef_store_outbox_sent(d->store, o->r.row_id, o->rec_pmid, o->as_template);
    else
        rc = ef_store_outbox_failed(d->store, o->r.row_id, o->rec_reason, o->rec_undeliverable);
    if (rc) {
        db_warn(d, "delivery outcome");
        return;
    }
    pop_head(c);
}

/* ---- fetching --------------------------------------------------------------- */

static void fetch(ef_dispatcher *d)
{
    if (ef_store_dispatch_lock(d->store) != 0) {
        if (d->leader)
            EF_LOG(EF_LOG_WARN, EF_C_PIPE, "dispatcher: standing by (another instance sends)");
        d->leader = false;
        return;
    }
    if (!d->leader)
        EF_LOG(EF_LOG_INFO, EF_C_PIPE, "dispatcher: sending queued replies");
    d->leader = true;
    ef_outbox_row *rows = NULL;
    size_t n = 0;
    if (ef_store_outbox_fetch(d->store, FETCH_LIMIT, &rows, &n) != 0) {
        db_warn(d, "outbox fetch");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (row_known(d, &rows[i]))
            continue;
        chat *c = chat_get(d, &rows[i], true);
        out_row *o = ef_calloc(1, sizeof(*o));
        o->r = rows[i];
        memset(&rows[i], 0, sizeof(rows[i])); /* moved */
        if (c->tail)
            c->tail->next = o;
        else
            c->head = o;
        c->tail = o;
    }
    ef_outbox_rows_free(rows, n);
}

/* ---- sending ---------------------------------------------------------------- */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    flight *f = ud;
    size_t n = size * nmemb;
    return ef_buf_append(&f->resp, ptr, n) == 0 ? n : 0;
}

static void fail_now(ef_dispatcher *d, chat *c, const char *reason, bool undeliverable)
{
    out_row *o = c->head;
    o->rec = REC_FAILED;
    snprintf(o->rec_reason, sizeof(o->rec_reason), "%s", reason);
    o->rec_undeliverable = undeliverable;
    EF_LOG(EF_LOG_WARN, EF_C_PIPE, "reply row=%s chat=%s failed: %s", o->r.row_id, c->key, reason);
    record(d, c);
}

/* The row's channel (a reference), or NULL after arranging for the row to
 * wait: its integration is disabled, unknown or failed. Nothing is spent. */
static ef_channel *channel_for(ef_dispatcher *d, chat *c, int64_t now)
{
    out_row *o = c->head;
    ef_channel *ch = ef_channels_get(d->opts.channels, o->r.integration_id);
    if (ch && !ef_channel_failed(ch) && (ch->ops->supports & EF_PLAT_SEND) &&
        !ch->policy.receive_only)
        return ch;
    if (now - d->last_token_log_ms > 30000) {
        EF_LOG(EF_LOG_WARN, EF_C_PIPE, "replies for %s integration=%s wait: %s", o->r.platform,
               o->r.integration_id ? o->r.integration_id : "-",
               !ch                       ? "no enabled integration serves them"
               : ef_channel_failed(ch)   ? "its credentials were refused (status error)"
               : ch->policy.receive_only ? "no API credentials configured"
                                         : "this platform cannot send replies");
        d->last_token_log_ms = now;
    }
    ef_channel_unref(ch);
    c->next_ms = now + 5000;
    return NULL;
}

/* The channel's reply window closed: its template goes instead, or the
 * row fails. Returns false when the row was settled. */
static bool window_open_or_template(ef_dispatcher *d, chat *c, const ef_channel *ch)
{
    out_row *o = c->head;
    int64_t win = ch->policy.reply_window_ms;
    if (!win || !o->r.last_inbound_ms || o->as_template || is_method_call(o) ||
        ef_wall_ms() - o->r.last_inbound_ms <= win)
        return true;
    if (!ch->policy.window_template) {
        fail_now(d, c,
                 "outside the 24-hour customer service window: the customer has not written "
                 "for more than 24 hours and no re-engagement template is configured",
                 false);
        return false;
    }
    EF_LOG(EF_LOG_INFO, EF_C_PIPE,
           "reply row=%s chat=%s: reply window closed, sending the template instead", o->r.row_id,
           c->key);
    o->as_template = true;
    return true;
}

static void flight_begin(ef_dispatcher *d, flight *f)
{
    ef_buf_init(&f->resp, RESP_MAX);
    f->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (f->rq.header)
        f->hdrs = curl_slist_append(f->hdrs, f->rq.header);
    f->easy = curl_easy_init();
    curl_easy_setopt(f->easy, CURLOPT_URL, f->rq.url);
    curl_easy_setopt(f->easy, CURLOPT_POSTFIELDS, f->rq.body ? f->rq.body : "");
    curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->hdrs);
    curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(f->easy, CURLOPT_PRIVATE, f);
    curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(f->easy, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(f->easy, CURLOPT_USERAGENT, "easyflow/" EF_VERSION);
    curl_multi_add_handle(d->multi, f->easy);
    f->next = d->flist;
    if (d->flist)
        d->flist->prev = f;
    d->flist = f;
    f->c->in_flight = true;
    d->flights++;
    if (f->rq.counted) {
        f->counted = true;
        f->cw = channel_window_for(d, f->ch);
        ef_window_start(&f->c->group);
        if (f->cw)
            ef_window_start(f->cw);
    }
}

/* Starts the head row of chat c through its channel, or settles it
 * without a request. Takes over the reference on ch. */
static void start(ef_dispatcher *d, chat *c, ef_channel *ch)
{
    out_row *o = c->head;
    if (o->r.undeliverable) {
        char why[200];
        snprintf(why, sizeof(why), "undeliverable: %.150s",
                 o->r.undeliverable_reason ? o->r.undeliverable_reason
                                           : "customer blocked the bot");
        ef_channel_unref(ch);
        fail_now(d, c, why, false);
        return;
    }
    if (!window_open_or_template(d, c, ch)) {
        ef_channel_unref(ch);
        return;
    }
    flight *f = ef_calloc(1, sizeof(*f));
    f->c = c;
    f->row = o;
    f->ch = ch;
    f->m = (ef_out_msg){.row_id = o->r.row_id,
                        .chat_id = o->r.chat_id,
                        .chat_type = o->r.chat_type,
                        .channel_id = ch->key,
                        .text = o->r.text,
                        .meta_json = o->r.meta_json,
                        .as_template = o->as_template};
    char err[256] = "";
    if (ch->ops->build_send(ch->cfg, &f->m, &f->rq, err, sizeof(err)) != 0) {
        ef_out_req_cleanup(&f->rq);
        ef_channel_unref(ch);
        ef_free(f);
        fail_now(d, c, err[0] ? err : "cannot build the request", false);
        return;
    }
    flight_begin(d, f);
}

/* Whether the chat's head row may start now under its channel's limits. */
static bool limits_allow(ef_dispatcher *d, chat *c, const ef_channel *ch, int64_t now)
{
    out_row *o = c->head;
    if (is_method_call(o))
        return true;
    if (now < d->hold_until_ms)
        return false;
    ef_rate g = ch->policy.per_group;
    if (!c->group.ts && g.n > 0 && is_group(&o->r))
        ef_window_init(&c->group, g.n, g.per_ms);
    if (ef_window_ready_at(&c->group, now) > now)
        return false;
    ef_window *cw = channel_window_for(d, ch);
    return !cw || ef_window_ready_at(cw, now) <= now;
}

static void start_ready(ef_dispatcher *d, int64_t now)
{
    for (size_t b = 0; b < N_BUCKETS; b++) {
        for (chat *c = d->buckets[b]; c; c = c->hnext) {
            if (!c->head || c->in_flight)
                continue;
            out_row *o = c->head;
            if (o->rec != REC_NONE) {
                record(d, c);
                continue;
            }
            if (o->r.due_ms > ef_wall_ms() || c->next_ms > now)
                continue;
            ef_channel *ch = channel_for(d, c, now);
            if (!ch)
                continue;
            if (!limits_allow(d, c, ch, now)) {
                ef_channel_unref(ch);
                continue;
            }
            start(d, c, ch);
        }
    }
}

static void settle(ef_dispatcher *d, flight *f, long status)
{
    chat *c = f->c;
    out_row *o = f->row;
    int64_t now = ef_now_ms();
    ef_send_result res;
    f->ch->ops->parse_send(f->ch->cfg, &f->m, status, f->resp.data, f->resp.len, &res);
    ef_rate pc = f->ch->policy.per_chat;
    int64_t interval = f->counted && pc.n > 0 ? pc.per_ms / pc.n : 0;
    switch (res.outcome) {
    case EF_SEND_AUTH:
        /* The channel's credentials, not this row: it stays queued, its
         * attempts untouched, until the integration is fixed. */
        ef_channels_fail(f->ch, d->store, res.reason);
        c->next_ms = now + 5000;
        break;
    case EF_SEND_OK:
        EF_LOG(EF_LOG_DEBUG, EF_C_PIPE, "reply row=%s chat=%s sent id=%s", o->r.row_id, c->key,
               res.platform_message_id ? res.platform_message_id : "-");
        o->rec = REC_SENT;
        o->rec_pmid = res.platform_message_id;
        res.platform_message_id = NULL;
        c->next_ms = now + interval;
        record(d, c);
        break;
    case EF_SEND_RATE: {
        int64_t wait = res.retry_after_ms > 0 ? res.retry_after_ms : backoff_ms(1);
        EF_LOG(EF_LOG_WARN, EF_C_PIPE, "reply row=%s chat=%s rate limited, waiting %lld ms",
               o->r.row_id, c->key, (long long)wait);
        c->next_ms = now + wait;
        o->r.due_ms = ef_wall_ms() + wait;
        if (ef_store_outbox_retry(d->store, o->r.row_id, wait, res.reason, false) != 0)
            db_warn(d, "retry time");
        break;
    }
    case EF_SEND_RETRY: {
        o->r.retry_count++;
        if (o->r.retry_count >= MAX_ATTEMPTS) {
            char why[256];
            snprintf(why, sizeof(why), "gave up after %d attempts: %.180s", o->r.retry_count,
                     res.reason);
            fail_now(d, c, why, false);
            break;
        }
        int64_t wait = backoff_ms(o->r.retry_count);
        EF_LOG(EF_LOG_WARN, EF_C_PIPE,
               "reply row=%s chat=%s attempt %d failed (%s), retry in %lld ms", o->r.row_id, c->key,
               o->r.retry_count, res.reason, (long long)wait);
        o->r.due_ms = ef_wall_ms() + wait;
        c->next_ms = now + wait;
        if (ef_store_outbox_retry(d->store, o->r.row_id, wait, res.reason, true) != 0)
            db_warn(d, "retry time");
        break;
    }
    case EF_SEND_MIGRATED:
        EF_LOG(EF_LOG_INFO, EF_C_PIPE, "chat=%s migrated to %s; resending there", c->key,
               res.new_chat_id);
        if (ef_store_outbox_migrate(d->store, o->r.row_id, res.new_chat_id) != 0) {
            db_warn(d, "chat migration");
            c->next_ms = now + 1000;
        } else {
            pop_head(c); /* comes back under its new chat at the next fetch */
        }
        break;
    case EF_SEND_WINDOW:
        /* WhatsApp says the window is closed (131047) although our clock
         * thought it open: the template, when there is one, goes instead. */
        if (f->ch->policy.window_template && !o->as_template) {
            EF_LOG(EF_LOG_INFO, EF_C_PIPE, "reply row=%s chat=%s: %s; sending the template instead",
                   o->r.row_id, c->key, res.reason);
            o->as_template = true;
            c->next_ms = now;
            break;
        }
        fail_now(d, c, res.reason, res.undeliverable);
        break;
    case EF_SEND_FAIL:
        fail_now(d, c, res.reason, res.undeliverable);
        break;
    }
    ef_send_result_cleanup(&res);
}

static void flight_free(ef_dispatcher *d, flight *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        d->flist = f->next;
    if (f->next)
        f->next->prev = f->prev;
    curl_multi_remove_handle(d->multi, f->easy);
    curl_easy_cleanup(f->easy);
    curl_slist_free_all(f->hdrs);
    ef_buf_cleanup(&f->resp);
    ef_out_req_cleanup(&f->rq);
    ef_channel_unref(f->ch);
    ef_free(f);
}

static void reap(ef_dispatcher *d)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        flight *f = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
        long status = 0;
        if (msg->data.result == CURLE_OK)
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        f->c->in_flight = false;
        d->flights--;
        if (f->counted) {
            int64_t now = ef_now_ms();
            ef_window_done(&f->c->group, now);
            if (f->cw)
                ef_window_done(f->cw, now);
        }
        settle(d, f, status);
        flight_free(d, f);
    }
}

static void *dispatch_main(void *arg)
{
    ef_dispatcher *d = arg;
    int64_t next_fetch = 0;
    int64_t stop_deadline = 0;
    for (;;) {
        int64_t now = ef_now_ms();
        bool stopping = atomic_load(&d->stop);
        if (stopping) {
            if (!stop_deadline)
                stop_deadline = now + STOP_GRACE_MS;
            if (d->flights == 0 || now > stop_deadline)
                break;
        } else {
            if (atomic_exchange(&d->woken, false) || now >= next_fetch) {
                fetch(d);
                next_fetch = now + (d->leader ? FETCH_EVERY_MS : STANDBY_EVERY_MS);
            }
            if (d->leader)
                start_ready(d, now);
        }
        int running = 0;
        curl_multi_perform(d->multi, &running);
        reap(d);
        curl_multi_poll(d->multi, NULL, 0, 50, NULL);
    }
    return NULL;
}

/* ---- lifecycle -------------------------------------------------------------- */

ef_dispatcher *ef_dispatch_start(const ef_dispatch_opts *opts)
{
    ef_dispatcher *d = ef_calloc(1, sizeof(*d));
    d->opts = *opts;
    d->opts.pg_url = NULL; /* borrowed strings are not kept */
    d->hold_until_ms = ef_now_ms() + START_HOLD_MS;
    d->store = ef_store_new(opts->pg_url);
    d->multi = curl_multi_init();
    atomic_init(&d->stop, false);
    atomic_init(&d->woken, true);
    if (pthread_create(&d->thread, NULL, dispatch_main, d) != 0)
        EF_PANIC("cannot start the dispatcher thread");
    return d;
}

void ef_dispatch_wake(ef_dispatcher *d)
{
    if (!d)
        return;
    atomic_store(&d->woken, true);
    curl_multi_wakeup(d->multi);
}

void ef_dispatch_stop(ef_dispatcher *d)
{
    if (!d)
        return;
    atomic_store(&d->stop, true);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    /* Requests still in flight after the grace period are abandoned; their
     * rows stay queued and go out after the restart (at least once). */
    while (d->flist)
        flight_free(d, d->flist);
    for (size_t b = 0; b < N_BUCKETS; b++) {
        chat *c = d->buckets[b];
        while (c) {
            chat *next = c->hnext;
            while (c->head)
                pop_head(c);
            ef_window_cleanup(&c->group);
            ef_free(c->key);
            ef_free(c);
            c = next;
        }
    }
    while (d->channels) {
        channel_window *n = d->channels->next;
        ef_window_cleanup(&d->channels->w);
        ef_free(d->channels->key);
        ef_free(d->channels);
        d->channels = n;
    }
    curl_multi_cleanup(d->multi);
    ef_store_free(d->store);
    ef_free(d);
}
