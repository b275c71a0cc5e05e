/*
 * pipeline.c -- worker threads that commit events in batches.
 *
 * See pipeline.h for the contract. Inside: one FIFO per worker guarded by
 * the worker's mutex; each queued entry is (job, event index). A job keeps
 * an atomic count of events still in flight; whichever worker finishes the
 * last one runs the job's callback.
 */
#include "gateway/pipeline.h"

#include "base/hash.h"
#include "base/json.h"

#include "gateway/decide.h"
#include "gateway/metrics.h"
#include "store/store.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct ef_job {
    ef_msg_list msgs;
    ef_job_done_cb cb;
    void *ud;
    atomic_size_t remaining;
    atomic_bool abandoned; /* the request is answered or gone: drop untaken events */
    pthread_mutex_t lock;  /* guards result */
    ef_job_result result;
};

typedef struct entry {
    ef_job *job;
    size_t idx;
} entry;

typedef struct worker {
    ef_pipeline *p;
    int id;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    entry *q; /* ring buffer */
    size_t q_head, q_len, q_cap;
    bool stop;
    /* Owned by the worker thread. */
    ef_store *store;
    ef_kv *kv;
    ef_decider *decider;
    int64_t last_pg_log_ms;
    int64_t last_kv_log_ms;
    int64_t last_drop_log_ms;
    size_t dropped_unlogged; /* events dropped since the last drop log line */
} worker;

struct ef_pipeline {
    ef_pipeline_opts opts;
    char *pg_url;
    char *redis_url;
    worker *workers;
    int n_workers;
    atomic_size_t pending;
    atomic_bool pg_up;
    atomic_bool redis_up;
    pthread_t monitor;
    pthread_mutex_t mon_lock;
    pthread_cond_t mon_cond;
    bool mon_stop;
    bool probed; /* the monitor's first probe is done (mon_lock) */
    bool started;
};

/* ---- jobs --------------------------------------------------------------- */

ef_job *ef_job_new(ef_msg_list *msgs, ef_job_done_cb cb, void *ud)
{
    ef_job *job = ef_calloc(1, sizeof(*job));
    job->msgs = *msgs;
    ef_msg_list_init(msgs);
    job->cb = cb;
    job->ud = ud;
    atomic_init(&job->remaining, job->msgs.n);
    atomic_init(&job->abandoned, false);
    pthread_mutex_init(&job->lock, NULL);
    return job;
}

void ef_job_free(ef_job *job)
{
    if (!job)
        return;
    ef_msg_list_cleanup(&job->msgs);
    pthread_mutex_destroy(&job->lock);
    ef_free(job);
}

void ef_job_abandon(ef_job *job)
{
    if (job)
        atomic_store(&job->abandoned, true);
}

const ef_job_result *ef_job_get_result(const ef_job *job)
{
    return &job->result;
}

size_t ef_job_count(const ef_job *job)
{
    return job->msgs.n;
}

const ef_msg *ef_job_msg(const ef_job *job, size_t i)
{
    return i < job->msgs.n ? job->msgs.items[i] : NULL;
}

static void job_finish_one(ef_job *job, ef_ingest_status st, const char *why)
{
    pthread_mutex_lock(&job->lock);
    switch (st) {
    case EF_ING_REJECTED:
        if (!job->result.rejected++)
            snprintf(job->result.reason, sizeof(job->result.reason), "%s", why);
        break;
    case EF_ING_STORED:
        job->result.stored++;
        break;
    case EF_ING_DUPLICATE:
        job->result.duplicate++;
        break;
    case EF_ING_IGNORED:
        job->result.ignored++;
        break;
    default:
        job->result.failed++;
        job->result.status = EF_EDB;
        break;
    }
    pthread_mutex_unlock(&job->lock);
    if (atomic_fetch_sub(&job->remaining, 1) == 1)
        job->cb(job, job->ud);
}

/* ---- queues ------------------------------------------------------------- */

static uint64_t chat_hash(const ef_msg *m)
{
    return ef_fnv1a64(m->chat_id, ef_fnv1a64(m->integration_id, EF_FNV1A64_INIT));
}

static void push(worker *w, ef_job *job, size_t idx)
{
    pthread_mutex_lock(&w->lock);
    if (w->q_len == w->q_cap) {
        size_t cap = w->q_cap ? w->q_cap * 2 : 256;
        entry *q = ef_calloc(cap, sizeof(*q));
        for (size_t i = 0; i < w->q_len; i++)
            q[i] = w->q[(w->q_head + i) % w->q_cap];
        ef_free(w->q);
        w->q = q;
        w->q_cap = cap;
        w->q_head = 0;
    }
    w->q[(w->q_head + w->q_len) % w->q_cap] = (entry){job, idx};
    w->q_len++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

void ef_pipeline_submit(ef_pipeline *p, ef_job *job)
{
    size_t n = job->msgs.n;
    if (n == 0) {
        job->cb(job, job->ud);
        return;
    }
    atomic_fetch_add(&p->pending, n);
    for (size_t i = 0; i < n; i++) {
        worker *w = &p->workers[chat_hash(job->msgs.items[i]) % (uint64_t)p->n_workers];
        push(w, job, i);
    }
}

/* ---- the worker --------------------------------------------------------- */

/* The session as Redis keeps it: the committed conversation plus its
 * context, so a lost Redis is rebuilt from exactly what PostgreSQL has. */
static char *session_json(const ef_ingest_item *it)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "session_id", json_object_new_string(it->session_id));
    if (it->conversation_id)
        json_object_object_add(o, "conversation_id", json_object_new_string(it->conversation_id));
    if (it->user_id)
        json_object_object_add(o, "user_id", json_object_new_string(it->user_id));
    json_object_object_add(o, "platform", json_object_new_string(it->msg->platform));
    if (it->msg->integration_id)
        json_object_object_add(o, "integration_id",
                               json_object_new_string(it->msg->integration_id));
    json_object_object_add(o, "chat_id",
                           json_object_new_string(it->msg->chat_id ? it->msg->chat_id : ""));
    json_object_object_add(o, "status",
                           json_object_new_string(it->conv_status ? it->conv_status : "active"));
    json_object_object_add(o, "state", json_object_new_string(it->state ? it->state : "initial"));
    json_object *ctx = it->context_json ? json_tokener_parse(it->context_json) : NULL;
    json_object_object_add(o, "context", ctx ? ctx : json_object_new_object());
    if (it->created_at)
        json_object_object_add(o, "created_at", json_object_new_string(it->created_at));
    json_object_object_add(o, "last_message_at", json_object_new_int64(it->last_message_at));
    /* The commit checks a decision's session against the row by this. */
    json_object_object_add(o, "version", json_object_new_int64(it->version));
    char *s = ef_strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}

/* What goes back to Redis after a commit: each chat's session as the commit
 * left it and the stored count. Built before the batch's requests are
 * answered and sent after, so that no answer waits for Redis; it copies
 * what it needs of the events, which the answered jobs own. */
typedef struct write_back {
    size_t k;         /* sessions in s */
    ef_kv_session *s; /* session_id points into the items (freed after) */
    char **owned;     /* 3 per session: json, scope, chat_id */
    size_t stored;    /* events stored, for the messages_received counter */
    char *platform;   /* of the first event: the counter's key */
} write_back;

static write_back write_back_prepare(const ef_ingest_item *items, size_t n)
{
    write_back wb = {.s = ef_calloc(n ? n : 1, sizeof(ef_kv_session)),
                     .owned = ef_calloc(3 * (n ? n : 1), sizeof(char *))};
    for (size_t i = 0; i < n; i++) {
        const ef_ingest_item *it = &items[i];
        if (it->status == EF_ING_STORED)
            wb.stored++;
        if (!it->session_id || (it->status != EF_ING_STORED && it->status != EF_ING_DUPLICATE))
            continue;
        /* Only the chat's last event in this batch carries the state that
         * counts; earlier ones would be overwritten at once. */
        bool later = false;
        for (size_t j = i + 1; j < n && !later; j++)
            later = items[j].session_id && strcmp(items[j].session_id, it->session_id) == 0;
        if (later)
            continue;
        char **o = &wb.owned[3 * wb.k];
        o[0] = session_json(it);
        o[1] = ef_strdup(it->msg->integration_id ? it->msg->integration_id : "-");
        o[2] = it->msg->chat_id ? ef_strdup(it->msg->chat_id) : NULL;
        wb.s[wb.k++] = (ef_kv_session){
            .session_id = it->session_id, .json = o[0], .scope = o[1], .chat_id = o[2]};
    }
    if (n)
        wb.platform = ef_strdup(items[0].msg->platform);
    return wb;
}

/* Sends wb to Redis (the sessions and the hour's counter, one round trip)
 * and frees it. A failure is logged (at most every 5 s): PostgreSQL keeps
 * the state and the next miss reads it from there. */
static void write_back_send(worker *w, write_back *wb)
{
    ef_kv_count count = {
        .platform = wb->platform, .field = "messages_received", .by = (long long)wb->stored};
    if (ef_kv_write_back(w->kv, wb->k, wb->s, w->p->opts.session_ttl, &count) != 0) {
        int64_t now = ef_now_ms();
        if (now - w->last_kv_log_ms > 5000) {
            EF_LOG(EF_LOG_WARN, EF_C_REDIS,
                   "worker=%d session write-back failed, PostgreSQL keeps the state: %s", w->id,
                   ef_kv_errmsg(w->kv));
            w->last_kv_log_ms = now;
        }
    }
    for (size_t i = 0; i < 3 * wb->k; i++)
        ef_free(wb->owned[i]);
    ef_free(wb->owned);
    ef_free(wb->s);
    ef_free(wb->platform);
}

/* Each event's channel (a reference held for the batch) and its bot. */
static ef_channel **batch_channels(worker *w, ef_ingest_item *items, size_t n, const ef_bot **bots)
{
    ef_channel **chs = ef_calloc(n, sizeof(*chs));
    for (size_t i = 0; i < n; i++) {
        const char *id = items[i].msg->integration_id;
        for (size_t j = 0; j < i && !chs[i]; j++)
            if (chs[j] && id && strcmp(chs[j]->id, id) == 0)
                chs[i] = ef_channel_ref(chs[j]);
        if (!chs[i])
            chs[i] = ef_channels_get(w->p->opts.channels, id);
        bots[i] = chs[i] ? chs[i]->bot : NULL;
    }
    return chs;
}

/* Attempts at committing a batch whose decisions were made from stale
 * sessions; the last one is not checked (the commit still refuses replies
 * to a conversation that is not active). */
#define COMMIT_ATTEMPTS 3

/* Indices of items[0..n) that came back EF_ING_STALE; returns how many. */
static size_t stale_items(const ef_ingest_item *items, size_t n, size_t *idx)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (items[i].status == EF_ING_STALE)
            idx[k++] = i;
    return k;
}

/* Decides the stale items again from PostgreSQL and commits them: each
 * attempt on a copy of just those items (in batch order), copied back. */
static int commit_again(worker *w, ef_ingest_item *items, const ef_bot **bots, size_t n,
                        int attempt)
{
    size_t *idx = ef_calloc(n, sizeof(*idx));
    size_t k = stale_items(items, n, idx);
    int rc = 0;
    if (k > 0) {
        ef_ingest_item *sub = ef_calloc(k, sizeof(*sub));
        const ef_bot **sub_bots = ef_calloc(k, sizeof(*sub_bots));
        for (size_t i = 0; i < k; i++) {
            sub[i] = items[idx[i]];
            sub_bots[i] = bots[idx[i]];
        }
        EF_LOG(EF_LOG_INFO, EF_C_PIPE,
               "worker=%d %zu event(s) decided from a stale session, deciding again from "
               "PostgreSQL (attempt %d)",
               w->id, k, attempt + 1);
        rc = ef_decider_rerun(w->decider, w->store, sub, sub_bots, k);
        if (rc == 0 && attempt == COMMIT_ATTEMPTS - 1)
            for (size_t i = 0; i < k; i++)
                sub[i].has_base = false;
        if (rc == 0)
            rc = ef_store_ingest(w->store, sub, k);
        else
            for (size_t i = 0; i < k; i++)
                sub[i].status = EF_ING_FAILED;
        for (size_t i = 0; i < k; i++)
            items[idx[i]] = sub[i];
        ef_free(sub_bots);
        ef_free(sub);
    }
    ef_free(idx);
    return rc;
}

/* The decided batch into PostgreSQL; decisions the commit found stale are
 * made again from PostgreSQL and committed (at most COMMIT_ATTEMPTS in
 * all). 0, or EF_EDB. */
static int commit(worker *w, ef_ingest_item *items, const ef_bot **bots, size_t n)
{
    int rc = ef_store_ingest(w->store, items, n);
    for (int attempt = 1; rc == 0 && attempt < COMMIT_ATTEMPTS; attempt++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            k += items[i].status == EF_ING_STALE;
        if (k == 0)
            break;
        rc = commit_again(w, items, bots, n, attempt);
    }
    return rc;
}

/* One WARN line per event the database refused for its data; counted
 * once it is in dead_letters. */
static void log_rejected(ef_metric_platform mp, const ef_ingest_item *it)
{
    const ef_msg *m = it->msg;
    if (it->dead_lettered)
        ef_metrics_dead_letter(mp);
    EF_LOG(EF_LOG_WARN, EF_C_PIPE, "%s %s event integration=%s chat=%s refused, %s: %s",
           m->platform, ef_msg_kind_name(m->kind), m->integration_id ? m->integration_id : "-",
           m->chat_id ? m->chat_id : "-",
           it->dead_lettered ? "kept in dead_letters" : "not stored (dead_letters unavailable)",
           it->error);
}

#define LOG_REPLY_CHARS 40 /* EF_LOG_REPLIES: the start of each reply's text */

/* The first LOG_REPLY_CHARS characters of text on one line (control
 * characters as spaces, double quotes as single ones) into out. */
static void reply_head(const char *text, char *out, size_t n)
{
    size_t o = 0, chars = 0;
    for (size_t i = 0; text[i] && chars < LOG_REPLY_CHARS && o + 5 < n; chars++) {
        unsigned char ch = (unsigned char)text[i];
        out[o++] = ch < 0x20 ? ' ' : ch == '"' ? '\'' : (char)ch;
        for (i++; ((unsigned char)text[i] & 0xC0) == 0x80 && o + 1 < n; i++)
            out[o++] = text[i];
    }
    if (chars == LOG_REPLY_CHARS && o + 4 < n) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* EF_LOG_REPLIES: one INFO line per reply a committed decision queued. */
static void log_replies(const ef_ingest_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (items[i].status != EF_ING_STORED || !items[i].replies_queued || !items[i].fsm_json)
            continue;
        json_object *root = NULL, *reps = NULL;
        char err[80];
        const char *fj = items[i].fsm_json;
        if (ef_json_parse(fj, strlen(fj), 16, &root, err, sizeof(err)) == 0 &&
            json_object_object_get_ex(root, "replies", &reps) &&
            json_object_is_type(reps, json_type_array))
            for (size_t k = 0; k < json_object_array_length(reps); k++) {
                json_object *text = NULL;
                if (!json_object_object_get_ex(json_object_array_get_idx(reps, k), "text", &text))
                    continue;
                char head[LOG_REPLY_CHARS * 4 + 8];
                reply_head(json_object_get_string(text), head, sizeof(head));
                const ef_msg *m = items[i].msg;
                EF_LOG(EF_LOG_INFO, EF_C_PIPE, "reply queued %s chat=%s intent=%s text=\"%s\"",
                       m->platform, m->chat_id ? m->chat_id : "-",
                       items[i].intent ? items[i].intent : "-", head);
            }
        json_object_put(root);
    }
}

/* Drops the entries whose job was abandoned (their request was answered
 * 503 or closed before this worker took them): nobody can be acknowledged
 * for them, the platform redelivers. Returns how many entries are left,
 * kept in order at the front of batch. */
static size_t drop_abandoned(worker *w, entry *batch, size_t n)
{
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < n; i++) {
        ef_job *job = batch[i].job;
        if (!atomic_load(&job->abandoned)) {
            batch[kept++] = batch[i];
            continue;
        }
        const ef_msg *m = job->msgs.items[batch[i].idx];
        ef_metrics_reject(ef_metrics_platform(m->platform), EF_REJ_ABANDONED);
        atomic_fetch_sub(&w->p->pending, 1);
        dropped++;
        job_finish_one(job, EF_ING_FAILED, "abandoned");
    }
    w->dropped_unlogged += dropped;
    int64_t now = ef_now_ms();
    if (w->dropped_unlogged && now - w->last_drop_log_ms > 1000) {
        EF_LOG(EF_LOG_WARN, EF_C_PIPE,
               "worker=%d dropped %zu event(s) whose request was already answered 503 or "
               "closed (the platform redelivers them)",
               w->id, w->dropped_unlogged);
        w->dropped_unlogged = 0;
        w->last_drop_log_ms = now;
    }
    return kept;
}

/* Counts an event's outcome in the metrics (and logs what was ignored). */
static void count_outcome(const ef_ingest_item *it)
{
    ef_metric_platform mp = ef_metrics_platform(it->msg->platform);
    if (it->status == EF_ING_STORED)
        ef_metrics_add(mp, EF_M_STORED, 1);
    else if (it->status == EF_ING_DUPLICATE)
        ef_metrics_add(mp, EF_M_DUPLICATE, 1);
    else if (it->status == EF_ING_REJECTED)
        log_rejected(mp, it);
    else if (it->status == EF_ING_IGNORED) {
        ef_metrics_add(mp, EF_M_IGNORED, 1);
        /* A status, reaction or remap for something never stored here
         * (a message sent by another system, a chat we never saw). */
        const ef_msg *m = it->msg;
        /* No chat id at INFO: on some platforms it is the customer's
         * phone (DEBUG has it). */
        EF_LOG(EF_LOG_INFO, EF_C_PIPE, "%s %s event ignored: nothing stored matches target=%s",
               m->platform, ef_msg_kind_name(m->kind), m->target_id ? m->target_id : "-");
        EF_LOG(EF_LOG_DEBUG, EF_C_PIPE, "ignored event target=%s chat=%s",
               m->target_id ? m->target_id : "-", m->chat_id ? m->chat_id : "-");
    }
}

/* The bot's decisions and the commit; 0 when committed. */
static int decide_and_commit(worker *w, ef_ingest_item *items, const ef_bot **bots, size_t n)
{
    int64_t t0 = ef_now_ms();
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    /* The bot decides before the commit, so that the message, the
     * conversation's new state and the replies are committed together. */
    int rc = ef_decider_run(w->decider, w->store, w->kv, items, bots, n);
    if (rc == 0)
        rc = commit(w, items, bots, n);
    else
        for (size_t i = 0; i < n; i++)
            items[i].status = EF_ING_FAILED;
    clock_gettime(CLOCK_MONOTONIC, &b);
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    if (rc) {
        if (t0 - w->last_pg_log_ms > 2000) {
            EF_LOG(EF_LOG_WARN, EF_C_PG, "worker=%d batch=%zu not committed, answering 503: %s",
                   w->id, n, ef_store_errmsg(w->store));
            w->last_pg_log_ms = t0;
        }
        atomic_store(&w->p->pg_up, false);
        return rc;
    }
    ef_metrics_commit(secs, n);
    EF_LOG(EF_LOG_DEBUG, EF_C_PIPE, "worker=%d batch=%zu committed in %.3f ms", w->id, n,
           secs * 1000);
    return 0;
}

/* One batch: decided, committed, answered, then the sessions written back
 * to Redis and the dispatcher woken. The requests are answered as soon as
 * the commit says what happened to their events: the write-back is a cache
 * refresh, and a chat's next event comes to this same worker (chat_hash),
 * which takes it only after the write-back. */
static void process_batch(worker *w, entry *batch, size_t n)
{
    n = drop_abandoned(w, batch, n);
    if (n == 0)
        return;
    ef_ingest_item *items = ef_calloc(n, sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i].msg = batch[i].job->msgs.items[batch[i].idx];
    const ef_bot **bots = ef_calloc(n, sizeof(*bots));
    ef_channel **chs = batch_channels(w, items, n, bots);

    bool committed = decide_and_commit(w, items, bots, n) == 0;
    write_back wb = {0};
    bool replies = false;
    if (committed) {
        wb = write_back_prepare(items, n);
        if (w->p->opts.log_replies)
            log_replies(items, n);
        for (size_t i = 0; i < n; i++)
            replies = replies || items[i].replies_queued;
    }
    ef_decider_reset(w->decider);
    /* From here on an answered job may be freed, and the events it owns:
     * items[i].msg is not read after its job_finish_one. */
    for (size_t i = 0; i < n; i++) {
        count_outcome(&items[i]);
        ef_ingest_status st = items[i].status;
        char why[sizeof(items[i].error)];
        snprintf(why, sizeof(why), "%s", items[i].error);
        items[i].msg = NULL;
        ef_channel_unref(chs[i]);
        atomic_fetch_sub(&w->p->pending, 1);
        job_finish_one(batch[i].job, st, why);
    }
    if (committed) {
        write_back_send(w, &wb);
        if (replies && w->p->opts.on_replies)
            w->p->opts.on_replies(w->p->opts.on_replies_ud);
    }
    for (size_t i = 0; i < n; i++)
        ef_ingest_item_cleanup(&items[i]);
    ef_free(chs);
    ef_free(bots);
    ef_free(items);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    size_t max = (size_t)w->p->opts.batch_max;
    entry *batch = ef_calloc(max, sizeof(*batch));
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (w->q_len == 0 && !w->stop)
            pthread_cond_wait(&w->cond, &w->lock);
        if (w->q_len == 0 && w->stop) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        size_t n = 0;
        while (w->q_len > 0 && n < max) {
            batch[n++] = w->q[w->q_head];
            w->q_head = (w->q_head + 1) % w->q_cap;
            w->q_len--;
        }
        pthread_mutex_unlock(&w->lock);
        process_batch(w, batch, n);
    }
    ef_free(batch);
    return NULL;
}

/* ---- health monitor ----------------------------------------------------- */

static void *monitor_main(void *arg)
{
    ef_pipeline *p = arg;
    ef_store *st = ef_store_new(p->pg_url);
    ef_kv *kv = ef_kv_new(p->redis_url);
    bool pg_was = true, kv_was = true;
    pthread_mutex_lock(&p->mon_lock);
    while (!p->mon_stop) {
        pthread_mutex_unlock(&p->mon_lock);
        bool pg = ef_store_ping(st) == 0;
        bool rd = ef_kv_ping(kv) == 0;
        atomic_store(&p->pg_up, pg);
        atomic_store(&p->redis_up, rd);
        pthread_mutex_lock(&p->mon_lock);
        if (!p->probed) {
            p->probed = true;
            pthread_cond_broadcast(&p->mon_cond);
        }
        pthread_mutex_unlock(&p->mon_lock);
        if (pg != pg_was)
            EF_LOG(pg ? EF_LOG_INFO : EF_LOG_WARN, EF_C_PG, "postgres %s%s%s",
                   pg ? "reachable again" : "unreachable", pg ? "" : ": ",
                   pg ? "" : ef_store_errmsg(st));
        if (rd != kv_was)
            EF_LOG(rd ? EF_LOG_INFO : EF_LOG_WARN, EF_C_REDIS, "redis %s%s%s",
                   rd ? "reachable again" : "unreachable", rd ? "" : ": ",
                   rd ? "" : ef_kv_errmsg(kv));
        pg_was = pg;
        kv_was = rd;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_mutex_lock(&p->mon_lock);
        if (!p->mon_stop)
            pthread_cond_timedwait(&p->mon_cond, &p->mon_lock, &ts);
    }
    pthread_mutex_unlock(&p->mon_lock);
    ef_store_free(st);
    ef_kv_free(kv);
    return NULL;
}

/* ---- lifecycle ---------------------------------------------------------- */

ef_pipeline *ef_pipeline_new(const ef_pipeline_opts *opts)
{
    ef_pipeline *p = ef_calloc(1, sizeof(*p));
    p->opts = *opts;
    p->pg_url = ef_strdup(opts->pg_url);
    p->redis_url = ef_strdup(opts->redis_url);
    p->opts.pg_url = p->pg_url;
    p->opts.redis_url = p->redis_url;
    if (p->opts.workers < 1)
        p->opts.workers = 1;
    if (p->opts.batch_max < 1)
        p->opts.batch_max = 1;
    p->n_workers = p->opts.workers;
    p->workers = ef_calloc((size_t)p->n_workers, sizeof(worker));
    for (int i = 0; i < p->n_workers; i++) {
        worker *w = &p->workers[i];
        w->p = p;
        w->id = i;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        w->store = ef_store_new(p->pg_url);
        w->kv = ef_kv_new(p->redis_url);
        w->decider = ef_decider_new();
    }
    atomic_init(&p->pending, 0);
    atomic_init(&p->pg_up, false);
    atomic_init(&p->redis_up, false);
    pthread_mutex_init(&p->mon_lock, NULL);
    pthread_cond_init(&p->mon_cond, NULL);
    return p;
}

int ef_pipeline_start(ef_pipeline *p)
{
    for (int i = 0; i < p->n_workers; i++)
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0)
            EF_PANIC("cannot start pipeline worker %d", i);
    if (pthread_create(&p->monitor, NULL, monitor_main, p) != 0)
        EF_PANIC("cannot start health monitor");
    p->started = true;
    /* /healthz should tell the truth from the first request: wait (a few
     * seconds at most) for the first probe of PostgreSQL and Redis. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    pthread_mutex_lock(&p->mon_lock);
    while (!p->probed)
        if (pthread_cond_timedwait(&p->mon_cond, &p->mon_lock, &ts) != 0)
            break;
    pthread_mutex_unlock(&p->mon_lock);
    return 0;
}

void ef_pipeline_stop(ef_pipeline *p)
{
    if (!p || !p->started)
        return;
    for (int i = 0; i < p->n_workers; i++) {
        worker *w = &p->workers[i];
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
    }
    for (int i = 0; i < p->n_workers; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_lock(&p->mon_lock);
    p->mon_stop = true;
    pthread_cond_signal(&p->mon_cond);
    pthread_mutex_unlock(&p->mon_lock);
    pthread_join(p->monitor, NULL);
    p->started = false;
}

void ef_pipeline_free(ef_pipeline *p)
{
    if (!p)
        return;
    ef_pipeline_stop(p);
    for (int i = 0; i < p->n_workers; i++) {
        worker *w = &p->workers[i];
        ef_store_free(w->store);
        ef_kv_free(w->kv);
        ef_decider_free(w->decider);
        ef_free(w->q);
        pthread_mutex_destroy(&w->lock);
        pthread_cond_destroy(&w->cond);
    }
    ef_free(p->workers);
    pthread_mutex_destroy(&p->mon_lock);
    pthread_cond_destroy(&p->mon_cond);
    ef_free(p->pg_url);
    ef_free(p->redis_url);
    ef_free(p);
}

bool ef_pipeline_saturated(const ef_pipeline *p)
{
    size_t max = p->opts.queue_max;
    return max > 0 && atomic_load(&((ef_pipeline *)p)->pending) >= max;
}

bool ef_pipeline_pg_up(const ef_pipeline *p)
{
    return atomic_load(&((ef_pipeline *)p)->pg_up);
}

bool ef_pipeline_redis_up(const ef_pipeline *p)
{
    return atomic_load(&((ef_pipeline *)p)->redis_up);
}

size_t ef_pipeline_pending(const ef_pipeline *p)
{
    return atomic_load(&((ef_pipeline *)p)->pending);
}
