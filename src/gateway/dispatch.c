/*
 * dispatch.c -- the outbox dispatcher. See dispatch.h for the contract.
 *
 * Two threads. The sending thread (dispatch_main) owns what is in memory:
 * a hash table of chats, each with the FIFO of its queued rows (oldest
 * first) and at most one request in flight; every row it holds, by id
 * (rows); sliding windows for the per-bot, per-group and per-number
 * limits. Requests go through one curl multi handle, so slow answers for
 * one chat do not hold up the others. It never calls PostgreSQL: each
 * decided outcome becomes a job for the store thread (store_main), which
 * owns the connection, records jobs in order, takes and renews the sending
 * lease and fetches the rows that are due, handing results back through a
 * second queue. PostgreSQL is the source of truth: a restart starts from
 * what is queued.
 *
 * A row leaves memory only once its outcome is recorded, so the fetch never
 * hands it out again to this process while the record waits (the rows set
 * skips what is known); a row whose outcome could not be recorded at all
 * (a data error, even failing it) stays in memory, dead, never sent again.
 * A retry keeps its chat waiting until it is recorded: the due rows of the
 * chat must not overtake it in the database either.
 *
 * The fetch walks the due rows with a cursor ((next_attempt_at,
 * created_at) of the last row read), so a backlog held in memory is not
 * read again on every wake; it starts again from the first due row every
 * RESCAN_EVERY_MS (a row whose transaction committed after the cursor had
 * passed its time), after a chat migration and when the lease was regained.
 *
 * The platforms count requests when they arrive, which is some time after
 * we start them (connection set-up, curl's scheduling). So a window counts
 * a request as in flight from its start and then by the time its answer
 * came back: a new request starts only when the window's limit holds even
 * if every earlier one arrived at the very end of its flight. After taking
 * the lease, message sends wait one window length: a previous instance may
 * have sent to the same chats a moment ago.
 */
#include "gateway/dispatch.h"

#include "base/hash.h"
#include "gateway/metrics.h"
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
#include <time.h>
#include <unistd.h>

#define N_BUCKETS 4096
#define ROW_BUCKETS 4096
#define FETCH_LIMIT 500
/* Sent outcomes recorded in one statement, at most. */
#define SENT_BATCH 256
/* Rows held in memory (about a minute of one bot at 30/s): the fetch pauses
 * above. Each costs ~5 KB with its text and metadata. */
#define MEM_MAX 2000
/* Rows of one bot held in memory at most (20 s of sending at Telegram's
 * 30/s): beyond it the fetch skips that bot's rows, so that a bot with a
 * backlog of thousands cannot fill MEM_MAX and hold back the others'. */
#define BOT_MEM_MAX 600
#define FETCH_EVERY_MS 1000   /* rows of other gateways, rows coming due */
#define FETCH_GAP_MS 20       /* wakes closer together share one fetch */
#define RESCAN_EVERY_MS 10000 /* the cursor starts again from the first due row */
#define STANDBY_EVERY_MS 2000
#define LEASE_MS 5000
#define RENEW_EVERY_MS 1500
#define DB_RETRY_MS 1000
#define MAX_ATTEMPTS 12
#define BACKOFF_BASE_MS 1000
#define BACKOFF_MAX_MS 60000
#define RESP_MAX (1 << 20)
/* How long one request may take (curl). Not a setting: it bounds one
 * chat's wait only (requests share a curl multi handle), the chat's next
 * reply must wait for this one's outcome whatever the bound, and a request
 * cut short may still have been delivered (it is retried: a duplicate), so
 * a shorter bound buys duplicates, not speed. What a platform needs would
 * belong in its channel policy (platforms/platform.h), beside its rate
 * limits, not in one global variable. */
#define CONNECT_TIMEOUT_S 10L
#define SEND_TIMEOUT_S 30L
#define STOP_GRACE_MS 5000
#define START_HOLD_MS 1000  /* the per-second windows of a previous instance */
#define WAIT_NOTE_MS 600000 /* "replies wait" is said once per integration, then this often */
#define LOG_TEXT_CHARS 40   /* the start of a sent reply's text in its log line */

typedef struct chat chat;

/* When "replies for this integration wait" was last said. */
typedef struct wait_note {
    char *key; /* the integration id ("-": a legacy row) */
    int64_t said_ms;
    struct wait_note *next;
} wait_note;

/* A row in memory: queued in its chat's FIFO, or (pending) out of it with
 * its outcome handed to the store thread, or dead. Sending thread. */
typedef struct out_row out_row;
struct out_row {
    ef_outbox_row r;
    out_row *next;      /* in the chat's FIFO */
    out_row *rnext;     /* in the rows set */
    chat *c;            /* NULL once out of the FIFO */
    bool recording;     /* a retry is being recorded: the chat waits */
    bool dead;          /* its outcome could not be recorded: never sent again */
    bool as_template;   /* reply window closed: send the channel's re-engagement template */
    bool method;        /* an API call, not a message (is_method_call) */
    int64_t expires_ms; /* monotonic; 0: never */
};

/* A chat is in the buckets (found by key) from its first row until it is
 * idle: no row, nothing in flight and no limit of its own still running;
 * then start_ready frees it, so that a gateway serving millions of chats
 * keeps only those with something to send. While it has rows it is also
 * on the active list, which start_ready walks in turn (a chat that starts
 * a send goes to the back: chats take turns). */
struct chat {
    char *key; /* integration|chat_id */
    out_row *head, *tail;
    bool in_flight;
    bool active;     /* on the active list */
    int64_t next_ms; /* earliest time of this chat's next send */
    ef_window group; /* groups only */
    chat *hnext;
    chat *aprev, *anext; /* the active list */
};

/* Rows in memory per integration (sending thread). */
typedef struct bot_rows {
    char *key; /* the integration id */
    size_t n;
    bool full; /* at BOT_MEM_MAX; until it is back at half of it */
    struct bot_rows *next;
} bot_rows;

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

/* An outcome to record, from the sending thread to the store thread and
 * back (with result). */
typedef enum job_kind { JOB_SENT, JOB_FAILED, JOB_RETRY, JOB_MIGRATE, JOB_AUTH } job_kind;
typedef enum job_result { RES_RECORDED = 0, RES_FAILED_INSTEAD, RES_GAVE_UP } job_result;

typedef struct job job;
struct job {
    job *next;
    job_kind kind; /* what is written now (JOB_FAILED after a data error) */
    job_kind orig; /* what the sending thread asked for */
    char *row_id;
    char *pmid;
    char *new_chat_id;
    ef_channel *ch; /* JOB_AUTH: referenced */
    bool as_template, undeliverable, count_attempt;
    bool fallback; /* already the failure that replaces an unrecordable outcome */
    int64_t delay_ms;
    job_result result;
    char reason[512];
};

/* From the store thread to the sending thread. */
typedef enum back_kind { BACK_DONE, BACK_ROWS, BACK_LEAD } back_kind;
typedef struct back back;
struct back {
    back *next;
    back_kind kind;
    job *j;              /* BACK_DONE */
    ef_outbox_row *rows; /* BACK_ROWS */
    size_t n;
    int64_t at_ms; /* BACK_ROWS: when fetched (monotonic) */
    bool leader;   /* BACK_LEAD */
};

struct ef_dispatcher {
    ef_dispatch_opts opts;
    pthread_t thread, db_thread;
    atomic_bool stop;
    CURLM *multi;
    /* sending thread */
    chat *buckets[N_BUCKETS];
    chat *active_head, *active_tail;
    size_t nchats;
    out_row *rows[ROW_BUCKETS];
    size_t nrows;
    bot_rows *bots;
    channel_window *channels;
    flight *flist;
    size_t flights;
    bool leader;
    int64_t hold_until_ms; /* no message sends before (START_HOLD_MS) */
    wait_note *waits;
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *jobs, *jobs_tail;
    back *backs, *backs_tail;
    bool db_stop;
    bool woken;
    atomic_llong lease_until; /* monotonic ms: sends may start before it */
    atomic_size_t in_memory;
    atomic_bool rescan; /* the sending thread misses a row behind the cursor */
    char *skip;         /* under mu: the bots whose share is full, "{id,...}"; NULL: none */
    /* store thread */
    ef_store *store;
    char holder[96];
    bool db_leader;
    int64_t epoch;
    ef_outbox_cursor cursor;
    int64_t slow_noted_ms; /* the last slow fetch said (0: never) */
    int64_t last_db_log_ms;
};

/* ---- small pieces --------------------------------------------------------- */

/* API calls that are not messages (answerCallbackQuery) do not count
 * against a chat's message limits. Decided once, when the row arrives. */
static bool names_method(const ef_outbox_row *r)
{
    return r->meta_json && strstr(r->meta_json, "\"method\"") != NULL;
}

static bool is_method_call(const out_row *row)
{
    return row->method;
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
    d->nchats++;
    return c;
}

static void active_unlink(ef_dispatcher *d, chat *c)
{
    if (!c->active)
        return;
    if (c->aprev)
        c->aprev->anext = c->anext;
    else
        d->active_head = c->anext;
    if (c->anext)
        c->anext->aprev = c->aprev;
    else
        d->active_tail = c->aprev;
    c->aprev = c->anext = NULL;
    c->active = false;
}

/* Puts c at the back of the active list (taking it out first if on it). */
static void active_push_back(ef_dispatcher *d, chat *c)
{
    active_unlink(d, c);
    c->aprev = d->active_tail;
    if (d->active_tail)
        d->active_tail->anext = c;
    else
        d->active_head = c;
    d->active_tail = c;
    c->active = true;
}

static void chat_free(chat *c)
{
    ef_window_cleanup(&c->group);
    ef_free(c->key);
    ef_free(c);
}

/* Whether c holds nothing: no row, no request, no limit of its own that a
 * new row would still have to respect. */
static bool chat_idle(const chat *c, int64_t now)
{
    return !c->head && !c->in_flight && c->next_ms <= now && ef_window_idle(&c->group, now);
}

/* Takes an idle chat out of the buckets and the active list and frees it. */
static void chat_drop(ef_dispatcher *d, chat *c)
{
    active_unlink(d, c);
    chat **p = &d->buckets[ef_fnv1a64(c->key, EF_FNV1A64_INIT) % N_BUCKETS];
    while (*p && *p != c)
        p = &(*p)->hnext;
    if (*p) {
        *p = c->hnext;
        d->nchats--;
    }
    chat_free(c);
}

/* ---- pure pieces (dispatch.h) ---------------------------------------------- */

size_t ef_dispatch_copy_reason(char *dst, size_t n, const char *src)
{
    if (!n)
        return 0;
    size_t len = src ? strlen(src) : 0;
    if (len > n - 1)
        len = n - 1;
    memcpy(dst, src ? src : "", len);
    /* A cut (ours or the adapter's, which cut by bytes) may end inside a
     * character: drop the incomplete tail. */
    size_t k = len;
    for (size_t t = 1; t <= 4 && t <= len; t++) {
        unsigned char c = (unsigned char)dst[len - t];
        if ((c & 0xC0) == 0x80)
            continue; /* a continuation byte: look further back */
        size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
        if (c >= 0x80 && need > t)
            k = len - t;
        break;
    }
    dst[k] = '\0';
    return k;
}

int64_t ef_dispatch_expires_at(int64_t fetched_ms, int64_t age_ms, int ttl_s)
{
    if (ttl_s <= 0)
        return 0;
    int64_t at = fetched_ms - (age_ms > 0 ? age_ms : 0) + (int64_t)ttl_s * 1000;
    return at ? at : 1;
}

/* ---- the rows in memory (sending thread) ------------------------------------ */

static size_t row_bucket(const char *id)
{
    return (size_t)(ef_fnv1a64(id, EF_FNV1A64_INIT) % ROW_BUCKETS);
}

static out_row *row_find(ef_dispatcher *d, const char *id)
{
    for (out_row *o = d->rows[row_bucket(id)]; o; o = o->rnext)
        if (strcmp(o->r.row_id, id) == 0)
            return o;
    return NULL;
}

/* Publishes the bots whose share is full for the store thread's fetch. */
static void publish_skip(ef_dispatcher *d)
{
    ef_buf b;
    ef_buf_init(&b, 1u << 20);
    int rc = 0;
    for (bot_rows *r = d->bots; r && !rc; r = r->next)
        if (r->full)
            rc = ef_buf_appendf(&b, "%s%s", b.len ? "," : "{", r->key);
    char *skip = NULL;
    if (b.len && !rc && ef_buf_append(&b, "}", 1) == 0)
        skip = ef_buf_steal(&b, NULL);
    ef_buf_cleanup(&b);
    pthread_mutex_lock(&d->mu);
    ef_free(d->skip);
    d->skip = skip;
    pthread_mutex_unlock(&d->mu);
}

/* Counts a row of o's bot in (+1) or out (-1) of memory; a bot reaching
 * its share is skipped by the fetch until half of it is left, and then its
 * rows are walked again from the first due one. Rows of no integration
 * (stored before integrations) are never skipped. */
static void bot_count(ef_dispatcher *d, const out_row *o, int delta)
{
    const char *key = o->r.integration_id;
    if (!key)
        return;
    bot_rows *r = d->bots;
    while (r && strcmp(r->key, key) != 0)
        r = r->next;
    if (!r) {
        if (delta < 0)
            return;
        r = ef_calloc(1, sizeof(*r));
        r->key = ef_strdup(key);
        r->next = d->bots;
        d->bots = r;
    }
    r->n = delta < 0 ? (r->n ? r->n - 1 : 0) : r->n + 1;
    if (!r->full && r->n >= BOT_MEM_MAX) {
        r->full = true;
        publish_skip(d);
    } else if (r->full && r->n <= BOT_MEM_MAX / 2) {
        r->full = false;
        publish_skip(d);
        atomic_store(&d->rescan, true); /* its rows behind the cursor */
    }
}

static void row_add(ef_dispatcher *d, out_row *o)
{
    bot_count(d, o, +1);
    size_t b = row_bucket(o->r.row_id);
    o->rnext = d->rows[b];
    d->rows[b] = o;
    d->nrows++;
    atomic_store(&d->in_memory, d->nrows);
}

/* Takes o out of the rows set and frees it (it is in no FIFO). */
static void row_forget(ef_dispatcher *d, out_row *o)
{
    out_row **p = &d->rows[row_bucket(o->r.row_id)];
    while (*p && *p != o)
        p = &(*p)->rnext;
    if (*p) {
        *p = o->rnext;
        d->nrows--;
        atomic_store(&d->in_memory, d->nrows);
        bot_count(d, o, -1);
    }
    ef_outbox_row_cleanup(&o->r);
    ef_free(o);
}

/* Takes o out of its chat's FIFO (it stays in the rows set). */
static void unlink_row(out_row *o)
{
    chat *c = o->c;
    if (!c)
        return;
    out_row **p = &c->head, *prev = NULL;
    while (*p && *p != o) {
        prev = *p;
        p = &(*p)->next;
    }
    if (*p) {
        *p = o->next;
        if (c->tail == o)
            c->tail = prev;
    }
    o->next = NULL;
    o->c = NULL;
}

static void append_row(ef_dispatcher *d, ef_outbox_row *src, int64_t fetched_ms)
{
    if (row_find(d, src->row_id))
        return; /* in memory already: queued, in flight or being recorded */
    if (src->prev_row_id && !row_find(d, src->prev_row_id)) {
        /* Its chat's previous reply is not here: not due yet (this one
         * comes again with the next walk from the start), or committed
         * after the cursor passed its time (walk again now). */
        if (src->prev_due) {
            atomic_store(&d->rescan, true);
            ef_dispatch_wake(d);
        }
        return;
    }
    chat *c = chat_get(d, src, true);
    out_row *o = ef_calloc(1, sizeof(*o));
    o->r = *src;
    memset(src, 0, sizeof(*src)); /* moved */
    o->c = c;
    o->method = names_method(&o->r);
    o->expires_ms = ef_dispatch_expires_at(fetched_ms, o->r.age_ms, d->opts.reply_ttl_s);
    if (c->tail)
        c->tail->next = o;
    else
        c->head = o;
    c->tail = o;
    if (!c->active)
        active_push_back(d, c);
    row_add(d, o);
}

/* The lease was lost or regained after a gap: what is queued in memory
 * may have been sent by another gateway meanwhile. Rows in flight or
 * being recorded stay (their outcome still gets written). */
static void forget_queued(ef_dispatcher *d)
{
    for (size_t b = 0; b < N_BUCKETS; b++) {
        for (chat *c = d->buckets[b]; c; c = c->hnext) {
            out_row *o = c->head;
            if (o && (c->in_flight || o->recording))
                o = o->next;
            while (o) {
                out_row *next = o->next;
                unlink_row(o);
                row_forget(d, o);
                o = next;
            }
        }
    }
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

/* ---- handing over (any thread, under mu) ------------------------------------- */

static job *job_new(job_kind kind, const out_row *o)
{
    job *j = ef_calloc(1, sizeof(*j));
    j->kind = j->orig = kind;
    j->row_id = o ? ef_strdup(o->r.row_id) : NULL;
    return j;
}

static void job_free(job *j)
{
    ef_free(j->row_id);
    ef_free(j->pmid);
    ef_free(j->new_chat_id);
    ef_channel_unref(j->ch);
    ef_free(j);
}

static void post_job(ef_dispatcher *d, job *j)
{
    pthread_mutex_lock(&d->mu);
    if (d->jobs_tail)
        d->jobs_tail->next = j;
    else
        d->jobs = j;
    d->jobs_tail = j;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void post_back(ef_dispatcher *d, back *b)
{
    pthread_mutex_lock(&d->mu);
    if (d->backs_tail)
        d->backs_tail->next = b;
    else
        d->backs = b;
    d->backs_tail = b;
    pthread_mutex_unlock(&d->mu);
    curl_multi_wakeup(d->multi);
}

static void back_free(back *b)
{
    if (b->j)
        job_free(b->j);
    ef_outbox_rows_free(b->rows, b->n);
    ef_free(b);
}

/* The head row of c is done sending: out of the FIFO, its outcome to the
 * store thread; it stays in memory until recorded. */
static void finish_head(ef_dispatcher *d, chat *c, job *j)
{
    out_row *o = c->head;
    unlink_row(o);
    post_job(d, j);
}

/* ---- what the store thread sent back (sending thread) --------------------------- */

static void on_done(ef_dispatcher *d, job *j)
{
    out_row *o = j->row_id ? row_find(d, j->row_id) : NULL;
    if (!o)
        return;
    if (j->orig == JOB_RETRY) {
        o->recording = false;
        if (j->result == RES_RECORDED)
            return;
        unlink_row(o); /* failed instead: the chat goes on with its next row */
    }
    if (j->result == RES_GAVE_UP)
        o->dead = true; /* still queued in the database: never ours to send again */
    else
        row_forget(d, o);
}

static void drain_back(ef_dispatcher *d)
{
    pthread_mutex_lock(&d->mu);
    back *b = d->backs;
    d->backs = d->backs_tail = NULL;
    pthread_mutex_unlock(&d->mu);
    while (b) {
        back *next = b->next;
        switch (b->kind) {
        case BACK_DONE:
            on_done(d, b->j);
            break;
        case BACK_ROWS:
            for (size_t i = 0; i < b->n; i++)
                append_row(d, &b->rows[i], b->at_ms);
            break;
        case BACK_LEAD:
            forget_queued(d);
            d->leader = b->leader;
            if (b->leader)
                d->hold_until_ms = ef_now_ms() + START_HOLD_MS;
            break;
        }
        back_free(b);
        b = next;
    }
}

/* ---- the store thread -------------------------------------------------------- */

static void db_warn(ef_dispatcher *d, const char *what)
{
    int64_t now = ef_now_ms();
    if (now - d->last_db_log_ms > 5000) {
        EF_LOG(EF_LOG_WARN, EF_C_PG, "dispatcher: %s not recorded, will retry: %s", what,
               ef_store_errmsg(d->store));
        d->last_db_log_ms = now;
    }
}

static const char *job_what(job_kind k)
{
    switch (k) {
    case JOB_SENT:
        return "sent";
    case JOB_RETRY:
        return "retry";
    case JOB_MIGRATE:
        return "chat migration";
    case JOB_AUTH:
        return "credentials refused";
    case JOB_FAILED:
        break;
    }
    return "failure";
}

/* An outcome the database refuses for its data can never be written: the
 * row fails instead, with why (and what happened to it). */
static void fail_instead(ef_dispatcher *d, job *j)
{
    char why[sizeof(j->reason)], err[301], was[151];
    ef_dispatch_copy_reason(err, sizeof(err), ef_store_errmsg(d->store));
    ef_dispatch_copy_reason(was, sizeof(was), j->reason);
    if (j->kind == JOB_SENT)
        snprintf(why, sizeof(why), "delivered (platform id %.80s%s) but not recordable: %s",
                 j->pmid ? j->pmid : "-", j->pmid && strlen(j->pmid) > 80 ? "..." : "", err);
    else if (j->kind == JOB_MIGRATE)
        snprintf(why, sizeof(why), "the chat moved but the move is not recordable: %s", err);
    else if (j->kind == JOB_RETRY)
        snprintf(why, sizeof(why), "%s; the retry is not recordable: %s", was, err);
    else
        snprintf(why, sizeof(why), "the reason is not recordable: %s", err);
    EF_LOG(EF_LOG_WARN, EF_C_PIPE,
           "reply row=%s: %s outcome refused by the database, failing it: %s", j->row_id,
           job_what(j->kind), err);
    ef_dispatch_copy_reason(j->reason, sizeof(j->reason), why);
    j->kind = JOB_FAILED;
    j->fallback = true;
    j->undeliverable = false;
}

/* Writes one job: 0 (result set), or EF_EDB (an outage: try again later). */
static int record_one(ef_dispatcher *d, job *j)
{
    for (;;) {
        int rc = 0;
        switch (j->kind) {
        case JOB_SENT:
            rc = ef_store_outbox_sent(d->store, j->row_id, j->pmid, j->as_template);
            break;
        case JOB_FAILED:
            rc = ef_store_outbox_failed(d->store, j->row_id, j->reason, j->undeliverable);
            break;
        case JOB_RETRY:
            rc = ef_store_outbox_retry(d->store, j->row_id, j->delay_ms, j->reason,
                                       j->count_attempt);
            break;
        case JOB_MIGRATE:
            rc = ef_store_outbox_migrate(d->store, j->row_id, j->new_chat_id);
            if (rc == 0)
                memset(&d->cursor, 0, sizeof(d->cursor)); /* it comes back under its new chat */
            break;
        case JOB_AUTH:
            ef_channels_fail(j->ch, d->store, j->reason);
            break;
        }
        if (rc == 0) {
            j->result = j->fallback ? RES_FAILED_INSTEAD : RES_RECORDED;
            return 0;
        }
        if (rc == EF_EDB) {
            db_warn(d, job_what(j->kind));
            return EF_EDB;
        }
        if (j->fallback) {
            EF_LOG(EF_LOG_ERROR, EF_C_PIPE,
                   "reply row=%s: no outcome can be recorded (%s); it stays queued in the "
                   "database and this process will not send it again",
                   j->row_id, ef_store_errmsg(d->store));
            j->result = RES_GAVE_UP;
            return 0;
        }
        fail_instead(d, j);
    }
}

/* The run of sent outcomes at the head of list (at most SENT_BATCH) in one
 * statement. Returns how many it recorded (their results set), 0 when the
 * head is no such run, -1 on an outage; when the database refused the run's
 * data, 0 with *solo = its length: those are recorded one at a time, which
 * finds the row at fault. */
static int record_sent_run(ef_dispatcher *d, job *list, size_t *solo)
{
    ef_outbox_sent s[SENT_BATCH];
    size_t n = 0;
    for (job *j = list; j && n < SENT_BATCH && j->kind == JOB_SENT && !j->fallback; j = j->next)
        s[n++] = (ef_outbox_sent){j->row_id, j->pmid, j->as_template};
    if (n < 2)
        return 0;
    int rc = ef_store_outbox_sent_many(d->store, s, n);
    if (rc == EF_EDB) {
        db_warn(d, job_what(JOB_SENT));
        return -1;
    }
    if (rc != 0) {
        *solo = n;
        return 0;
    }
    job *j = list;
    for (size_t i = 0; i < n; i++, j = j->next)
        j->result = RES_RECORDED;
    return (int)n;
}

/* Records the jobs in order, a run of sent outcomes in one statement; on an
 * outage puts the rest back in front. */
static bool record_jobs(ef_dispatcher *d, job *list)
{
    size_t recorded = 0, solo = 0; /* jobs ahead already recorded / to record alone */
    while (list) {
        job *j = list;
        int rc = 0;
        if (recorded == 0 && solo == 0) {
            int got = record_sent_run(d, list, &solo);
            if (got < 0)
                rc = EF_EDB;
            recorded = got > 0 ? (size_t)got : 0;
        }
        if (recorded > 0)
            recorded--;
        else if (rc == 0) {
            rc = record_one(d, j);
            solo -= solo > 0;
        }
        if (rc == EF_EDB) {
            pthread_mutex_lock(&d->mu);
            job *last = list;
            while (last->next)
                last = last->next;
            last->next = d->jobs;
            if (!d->jobs)
                d->jobs_tail = last;
            d->jobs = list;
            pthread_mutex_unlock(&d->mu);
            return false;
        }
        list = j->next;
        j->next = NULL;
        if (j->orig == JOB_AUTH) {
            job_free(j);
            continue;
        }
        back *b = ef_calloc(1, sizeof(*b));
        b->kind = BACK_DONE;
        b->j = j;
        post_back(d, b);
    }
    return true;
}

static void lead_changed(ef_dispatcher *d, bool leader)
{
    d->db_leader = leader;
    memset(&d->cursor, 0, sizeof(d->cursor));
    back *b = ef_calloc(1, sizeof(*b));
    b->kind = BACK_LEAD;
    b->leader = leader;
    post_back(d, b);
    if (leader)
        EF_LOG(EF_LOG_INFO, EF_C_PIPE, "dispatcher: sending queued replies (lease epoch %lld)",
               (long long)d->epoch);
    else
        EF_LOG(EF_LOG_WARN, EF_C_PIPE, "dispatcher: standing by (another instance sends)");
}

/* Takes or renews the lease. Returns whether this process leads. */
static bool hold_lease(ef_dispatcher *d)
{
    int64_t t0 = ef_now_ms();
    int64_t epoch = 0;
    int rc = ef_store_outbox_lease(d->store, d->holder, LEASE_MS, &epoch);
    if (rc == 0) {
        atomic_store(&d->lease_until, t0 + LEASE_MS);
        if (!d->db_leader || epoch != d->epoch) {
            d->epoch = epoch;
            lead_changed(d, true);
        }
    } else if (rc == EF_ECONFLICT) {
        atomic_store(&d->lease_until, 0);
        if (d->db_leader)
            lead_changed(d, false);
    } else {
        db_warn(d, "sending lease"); /* the sends stop when it runs out */
    }
    return rc == 0;
}

/* A fetch this slow is said (at most every SLOW_NOTE_MS): its statement
 * is one walk of idx_messages_outbox from the cursor and an index probe of
 * one chat per row (store/outbox.c), which no statistics can make slow, so
 * a slow one means a database in trouble (I/O, locks, a backlog walked
 * from the start). Nothing is run to mend it: an ANALYZE here (session 5)
 * stopped the recording of outcomes for as long as it read the table. */
#define FETCH_SLOW_MS 1000
#define SLOW_NOTE_MS (10 * 60 * 1000)

static void note_slow_fetch(ef_dispatcher *d, int64_t took_ms, size_t n)
{
    int64_t now = ef_now_ms();
    if (took_ms < FETCH_SLOW_MS || (d->slow_noted_ms && now - d->slow_noted_ms < SLOW_NOTE_MS))
        return;
    d->slow_noted_ms = now;
    EF_LOG(EF_LOG_WARN, EF_C_PIPE, "dispatcher: an outbox fetch of %zu rows took %lld ms", n,
           (long long)took_ms);
}

/* Hands the next due rows to the sending thread; returns how many. */
static size_t fetch(ef_dispatcher *d)
{
    if (atomic_load(&d->in_memory) >= MEM_MAX)
        return 0;
    ef_outbox_row *rows = NULL;
    size_t n = 0;
    pthread_mutex_lock(&d->mu);
    char *skip = d->skip ? ef_strdup(d->skip) : NULL;
    pthread_mutex_unlock(&d->mu);
    int64_t t0 = ef_now_ms();
    int rc = ef_store_outbox_fetch_due_skip(d->store, &d->cursor, FETCH_LIMIT, skip, &rows, &n);
    ef_free(skip);
    if (rc == 0)
        note_slow_fetch(d, ef_now_ms() - t0, n);
    if (rc != 0) {
        db_warn(d, "outbox fetch");
        return 0;
    }
    if (!n) {
        ef_outbox_rows_free(rows, n);
        return 0;
    }
    back *b = ef_calloc(1, sizeof(*b));
    b->kind = BACK_ROWS;
    b->rows = rows;
    b->n = n;
    b->at_ms = ef_now_ms();
    post_back(d, b);
    return n;
}

typedef struct store_clock {
    int64_t next_fetch, last_fetch, last_lease, last_rescan, retry_at;
} store_clock;

/* Waits for jobs (unless the database is down), a wake, the next planned
 * fetch or the stop. Returns the jobs taken; *stopping says whether to end. */
static job *store_wait(ef_dispatcher *d, store_clock *k, bool *stopping)
{
    pthread_mutex_lock(&d->mu);
    for (;;) {
        int64_t now = ef_now_ms();
        if (d->woken) {
            d->woken = false;
            int64_t gap = d->db_leader ? FETCH_GAP_MS : RENEW_EVERY_MS;
            if (k->last_fetch + gap < k->next_fetch)
                k->next_fetch = k->last_fetch + gap;
        }
        bool jobs_ready = d->jobs && now >= k->retry_at;
        if (jobs_ready || d->db_stop || now >= k->next_fetch)
            break;
        int64_t until = k->next_fetch;
        if (d->jobs && k->retry_at < until)
            until = k->retry_at;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (until - now) * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&d->cv, &d->mu, &ts);
    }
    job *list = NULL;
    if (ef_now_ms() >= k->retry_at) {
        list = d->jobs;
        d->jobs = d->jobs_tail = NULL;
    }
    *stopping = d->db_stop;
    pthread_mutex_unlock(&d->mu);
    return list;
}

static void *store_main(void *arg)
{
    ef_dispatcher *d = arg;
    store_clock k = {0};
    int64_t stop_deadline = 0;
    for (;;) {
        bool stopping = false;
        job *list = store_wait(d, &k, &stopping);
        int64_t now = ef_now_ms();
        if (list && !record_jobs(d, list))
            k.retry_at = now + DB_RETRY_MS;
        if (stopping) {
            if (!stop_deadline)
                stop_deadline = now + STOP_GRACE_MS;
            pthread_mutex_lock(&d->mu);
            bool left = d->jobs != NULL;
            pthread_mutex_unlock(&d->mu);
            if (!left || now > stop_deadline)
                break;
            continue;
        }
        if (now < k.next_fetch)
            continue;
        k.last_fetch = now;
        bool lead = d->db_leader;
        if (!lead || now - k.last_lease >= RENEW_EVERY_MS) {
            k.last_lease = now;
            lead = hold_lease(d);
        }
        size_t got = 0;
        if (lead) {
            if (atomic_exchange(&d->rescan, false) || now - k.last_rescan >= RESCAN_EVERY_MS) {
                memset(&d->cursor, 0, sizeof(d->cursor));
                k.last_rescan = now;
            }
            got = fetch(d);
        }
        /* A full page: more are due behind it. */
        k.next_fetch = now + (got == FETCH_LIMIT ? FETCH_GAP_MS
                              : d->db_leader     ? FETCH_EVERY_MS
                                                 : STANDBY_EVERY_MS);
    }
    if (d->db_leader && ef_store_outbox_lease_release(d->store, d->holder) != 0)
        db_warn(d, "lease release");
    return NULL;
}

/* ---- sending ---------------------------------------------------------------- */

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    flight *f = ud;
    size_t n = size * nmemb;
    return ef_buf_append(&f->resp, ptr, n) == 0 ? n : 0;
}

/* The head row of c fails for good with reason. */
static void fail_now(ef_dispatcher *d, chat *c, const char *reason, bool undeliverable)
{
    out_row *o = c->head;
    job *j = job_new(JOB_FAILED, o);
    ef_dispatch_copy_reason(j->reason, sizeof(j->reason), reason);
    j->undeliverable = undeliverable;
    EF_LOG(EF_LOG_WARN, EF_C_PIPE, "reply row=%s chat=%s failed: %s", o->r.row_id, c->key, reason);
    finish_head(d, c, j);
}

/* The head row stays queued, next attempt after wait_ms; the chat waits
 * for the record. */
static void retry_later(ef_dispatcher *d, chat *c, int64_t wait_ms, const char *reason,
                        bool count_attempt)
{
    out_row *o = c->head;
    job *j = job_new(JOB_RETRY, o);
    j->delay_ms = wait_ms;
    j->count_attempt = count_attempt;
    ef_dispatch_copy_reason(j->reason, sizeof(j->reason), reason);
    o->r.due_ms = ef_wall_ms() + wait_ms;
    c->next_ms = ef_now_ms() + wait_ms;
    o->recording = true;
    post_job(d, j);
}

/* True when "replies wait" is to be said for this integration now: the
 * first time, then at most every WAIT_NOTE_MS. */
static bool wait_note_due(ef_dispatcher *d, const char *integration_id, int64_t now)
{
    const char *key = integration_id ? integration_id : "-";
    wait_note *w = d->waits;
    while (w && strcmp(w->key, key) != 0)
        w = w->next;
    if (!w) {
        w = ef_calloc(1, sizeof(*w));
        w->key = ef_strdup(key);
        w->next = d->waits;
        d->waits = w;
    } else if (now - w->said_ms < WAIT_NOTE_MS) {
        return false;
    }
    w->said_ms = now;
    return true;
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
    if (wait_note_due(d, o->r.integration_id, now))
        EF_LOG(EF_LOG_WARN, EF_C_PIPE, "replies for %s integration=%s wait: %s", o->r.platform,
               o->r.integration_id ? o->r.integration_id : "-",
               !ch                       ? "no enabled integration serves them"
               : ef_channel_failed(ch)   ? "its credentials were refused (status error)"
               : ch->policy.receive_only ? "no API credentials configured"
                                         : "this platform cannot send replies");
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
    /* No chat id at INFO: on some platforms it is the customer's phone. */
    EF_LOG(EF_LOG_INFO, EF_C_PIPE,
           "reply row=%s: reply window closed, sending the template instead", o->r.row_id);
    o->as_template = true;
    return true;
}

static void flight_begin(ef_dispatcher *d, flight *f)
{
    ef_buf_init(&f->resp, RESP_MAX);
    char ctype[160];
    snprintf(ctype, sizeof(ctype), "Content-Type: %s",
             f->rq.content_type ? f->rq.content_type : "application/json");
    f->hdrs = curl_slist_append(NULL, ctype);
    if (f->rq.header)
        f->hdrs = curl_slist_append(f->hdrs, f->rq.header);
    if (f->rq.header2)
        f->hdrs = curl_slist_append(f->hdrs, f->rq.header2);
    f->easy = curl_easy_init();
    curl_easy_setopt(f->easy, CURLOPT_URL, f->rq.url);
    curl_easy_setopt(f->easy, CURLOPT_POSTFIELDS, f->rq.body ? f->rq.body : "");
    curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->hdrs);
    curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(f->easy, CURLOPT_PRIVATE, f);
    curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(f->easy, CURLOPT_TIMEOUT, SEND_TIMEOUT_S);
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

static void settle(ef_dispatcher *d, flight *f, long status);

/* Starts the head row of chat c through its channel, or settles it
 * without a request. Takes over the reference on ch. */
static void start(ef_dispatcher *d, chat *c, ef_channel *ch)
{
    out_row *o = c->head;
    if (o->r.undeliverable) {
        char was[151], why[200];
        ef_dispatch_copy_reason(was, sizeof(was),
                                o->r.undeliverable_reason ? o->r.undeliverable_reason
                                                          : "customer blocked the bot");
        snprintf(why, sizeof(why), "undeliverable: %s", was);
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
    if (!f->rq.url) { /* the gateway delivers it itself (EF_PLAT_SOCKET): no request */
        ef_buf_init(&f->resp, RESP_MAX);
        settle(d, f, 200);
        ef_buf_cleanup(&f->resp);
        ef_out_req_cleanup(&f->rq);
        ef_channel_unref(f->ch);
        ef_free(f);
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

/* A reply older than the TTL is worse than none: it fails as expired. */
static bool expired(ef_dispatcher *d, chat *c, int64_t now)
{
    out_row *o = c->head;
    if (!o->expires_ms || now < o->expires_ms)
        return false;
    char why[160];
    snprintf(why, sizeof(why),
             "expired: not sent within %d s of being queued (EF_REPLY_TTL_S), not sent late",
             d->opts.reply_ttl_s);
    fail_now(d, c, why, false);
    return true;
}

/* One pass of start_ready remembers, per integration, its channel and
 * whether the account's window is full, so that a backlog of thousands of
 * chats behind one bot costs a string compare per chat, not a channel
 * lookup (a lock) and a window walk each, at every wake. */
#define PASS_CHANNELS 8
typedef struct pass_channel {
    char integration_id[64]; /* a copy: the row it came from may settle */
    ef_channel *ch;          /* a reference, or NULL: not servable now */
    bool full;               /* the account's window allows nothing now */
} pass_channel;

typedef struct pass_cache {
    pass_channel e[PASS_CHANNELS];
    size_t n;
} pass_cache;

static bool account_full(ef_dispatcher *d, const ef_channel *ch, int64_t now)
{
    ef_window *cw = channel_window_for(d, ch);
    return cw && ef_window_ready_at(cw, now) > now;
}

/* The chat head's entry; NULL when the cache is full (then the caller looks
 * the channel up itself). */
static pass_channel *pass_lookup(ef_dispatcher *d, pass_cache *pc, chat *c, int64_t now)
{
    const char *iid = c->head->r.integration_id;
    if (!iid)
        return NULL;
    for (size_t i = 0; i < pc->n; i++)
        if (strcmp(pc->e[i].integration_id, iid) == 0)
            return &pc->e[i];
    if (pc->n == PASS_CHANNELS || strlen(iid) >= sizeof(pc->e[0].integration_id))
        return NULL;
    pass_channel *e = &pc->e[pc->n++];
    memcpy(e->integration_id, iid, strlen(iid) + 1);
    e->ch = channel_for(d, c, now);
    e->full = e->ch && account_full(d, e->ch, now);
    return e;
}

static void pass_cleanup(pass_cache *pc)
{
    for (size_t i = 0; i < pc->n; i++)
        ef_channel_unref(pc->e[i].ch);
}

/* The head row of chat c starts if its channel and limits allow it. */
static void try_start(ef_dispatcher *d, pass_cache *pc, chat *c, int64_t now)
{
    pass_channel *e = pass_lookup(d, pc, c, now);
    ef_channel *ch;
    if (e) {
        if (!e->ch) {
            c->next_ms = now + 5000; /* channel_for's wait, without its lookup */
            return;
        }
        if (e->full && !is_method_call(c->head))
            return;
        ch = ef_channel_ref(e->ch);
    } else if (!(ch = channel_for(d, c, now))) {
        return;
    }
    if (!limits_allow(d, c, ch, now)) {
        ef_channel_unref(ch);
        return;
    }
    start(d, c, ch);
    active_push_back(d, c); /* its turn is over: the others' next */
    if (e)
        e->full = account_full(d, e->ch, now);
}

static void start_ready(ef_dispatcher *d, int64_t now)
{
    if (now >= atomic_load(&d->lease_until))
        return; /* the lease is not confirmed: another gateway may take over */
    int64_t wall = ef_wall_ms();
    pass_cache pc = {.n = 0};
    chat *last = d->active_tail; /* chats moved behind it wait for the next pass */
    chat *next = d->active_head;
    for (chat *c = next; c; c = next) {
        next = c == last ? NULL : c->anext;
        while (c->head && !c->in_flight && !c->head->recording && expired(d, c, now))
            ;
        if (!c->head) {
            if (chat_idle(c, now))
                chat_drop(d, c);
            continue;
        }
        if (c->in_flight || c->head->recording)
            continue;
        if (c->head->r.due_ms > wall || c->next_ms > now)
            continue;
        try_start(d, &pc, c, now);
    }
    pass_cleanup(&pc);
    ef_metrics_dispatcher(d->nchats, d->nrows);
}

/* The first LOG_TEXT_CHARS characters of text (whole UTF-8 sequences) into
 * head; returns how many bytes of text they are. */
static size_t text_head(const char *text, char *head, size_t n)
{
    size_t len = 0, chars = 0;
    if (text)
        while (text[len] && len + 4 < n && chars < LOG_TEXT_CHARS) {
            len++;
            for (int k = 0; k < 3 && ((unsigned char)text[len] & 0xC0) == 0x80; k++)
                len++;
            chars++;
        }
    if (len > n - 1)
        len = n - 1;
    return ef_dispatch_copy_reason(head, len + 1, text);
}

static void settle_ok(ef_dispatcher *d, flight *f, ef_send_result *res, int64_t interval)
{
    chat *c = f->c;
    out_row *o = f->row;
    char head[LOG_TEXT_CHARS * 4 + 1];
    size_t cut = text_head(o->r.text, head, sizeof(head));
    /* Personal data (a chat id may be a phone number, the text is the
     * conversation) only at DEBUG; INFO says that a reply went out. */
    EF_LOG(EF_LOG_INFO, EF_C_PIPE, "reply row=%s sent id=%s", o->r.row_id,
           res->platform_message_id ? res->platform_message_id : "-");
    EF_LOG(EF_LOG_DEBUG, EF_C_PIPE, "reply row=%s chat=%s text=\"%s%s\"", o->r.row_id,
           o->r.chat_id ? o->r.chat_id : "-", head, o->r.text && o->r.text[cut] ? "..." : "");
    job *j = job_new(JOB_SENT, o);
    j->pmid = res->platform_message_id;
    res->platform_message_id = NULL;
    j->as_template = o->as_template;
    c->next_ms = ef_now_ms() + interval;
    finish_head(d, c, j);
}

static void settle_retry(ef_dispatcher *d, flight *f, ef_send_result *res)
{
    chat *c = f->c;
    out_row *o = f->row;
    o->r.retry_count++;
    if (o->r.retry_count >= MAX_ATTEMPTS) {
        char was[181], why[256];
        ef_dispatch_copy_reason(was, sizeof(was), res->reason);
        snprintf(why, sizeof(why), "gave up after %d attempts: %s", o->r.retry_count, was);
        fail_now(d, c, why, false);
        return;
    }
    int64_t wait = backoff_ms(o->r.retry_count);
    EF_LOG(EF_LOG_WARN, EF_C_PIPE, "reply row=%s chat=%s attempt %d failed (%s), retry in %lld ms",
           o->r.row_id, c->key, o->r.retry_count, res->reason, (long long)wait);
    retry_later(d, c, wait, res->reason, true);
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
    case EF_SEND_AUTH: {
        /* The channel's credentials, not this row: it stays queued, its
         * attempts untouched, until the integration is fixed. */
        job *j = job_new(JOB_AUTH, NULL);
        j->ch = ef_channel_ref(f->ch);
        ef_dispatch_copy_reason(j->reason, sizeof(j->reason), res.reason);
        post_job(d, j);
        c->next_ms = now + 5000;
        break;
    }
    case EF_SEND_OK:
        settle_ok(d, f, &res, interval);
        break;
    case EF_SEND_RATE: {
        int64_t wait = res.retry_after_ms > 0 ? res.retry_after_ms : backoff_ms(1);
        EF_LOG(EF_LOG_WARN, EF_C_PIPE, "reply row=%s chat=%s rate limited, waiting %lld ms",
               o->r.row_id, c->key, (long long)wait);
        retry_later(d, c, wait, res.reason, false);
        break;
    }
    case EF_SEND_RETRY:
        settle_retry(d, f, &res);
        break;
    case EF_SEND_MIGRATED: {
        EF_LOG(EF_LOG_INFO, EF_C_PIPE, "reply row=%s: the chat moved; resending there",
               o->r.row_id);
        EF_LOG(EF_LOG_DEBUG, EF_C_PIPE, "chat=%s migrated to %s", c->key, res.new_chat_id);
        job *j = job_new(JOB_MIGRATE, o);
        j->new_chat_id = res.new_chat_id;
        res.new_chat_id = NULL;
        finish_head(d, c, j); /* comes back under its new chat at the next fetch */
        break;
    }
    case EF_SEND_WINDOW:
        /* The platform says the reply window is closed although our clock
         * thought it open: the template, when there is one, goes instead. */
        if (f->ch->policy.window_template && !o->as_template) {
            EF_LOG(EF_LOG_INFO, EF_C_PIPE, "reply row=%s: %s; sending the template instead",
                   o->r.row_id, res.reason);
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
    int64_t stop_deadline = 0;
    for (;;) {
        int64_t now = ef_now_ms();
        drain_back(d);
        if (atomic_load(&d->stop)) {
            if (!stop_deadline)
                stop_deadline = now + STOP_GRACE_MS;
            if (d->flights == 0 || now > stop_deadline)
                break;
        } else if (d->leader) {
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
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(d->holder, sizeof(d->holder), "%.63s:%ld:%08x", host, (long)getpid(),
             (unsigned)(ef_now_ms() ^ (int64_t)(uintptr_t)d) & 0xffffffffu);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    atomic_init(&d->stop, false);
    atomic_init(&d->lease_until, 0);
    atomic_init(&d->in_memory, 0);
    atomic_init(&d->rescan, false);
    if (pthread_create(&d->db_thread, NULL, store_main, d) != 0 ||
        pthread_create(&d->thread, NULL, dispatch_main, d) != 0)
        EF_PANIC("cannot start the dispatcher threads");
    return d;
}

void ef_dispatch_wake(ef_dispatcher *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->woken = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void free_memory(ef_dispatcher *d)
{
    while (d->flist)
        flight_free(d, d->flist);
    for (size_t b = 0; b < ROW_BUCKETS; b++) {
        out_row *o = d->rows[b];
        while (o) {
            out_row *next = o->rnext;
            ef_outbox_row_cleanup(&o->r);
            ef_free(o);
            o = next;
        }
    }
    for (size_t b = 0; b < N_BUCKETS; b++) {
        chat *c = d->buckets[b];
        while (c) {
            chat *next = c->hnext;
            chat_free(c);
            c = next;
        }
    }
    while (d->waits) {
        wait_note *n = d->waits->next;
        ef_free(d->waits->key);
        ef_free(d->waits);
        d->waits = n;
    }
    while (d->bots) {
        bot_rows *n = d->bots->next;
        ef_free(d->bots->key);
        ef_free(d->bots);
        d->bots = n;
    }
    ef_free(d->skip);
    while (d->channels) {
        channel_window *n = d->channels->next;
        ef_window_cleanup(&d->channels->w);
        ef_free(d->channels->key);
        ef_free(d->channels);
        d->channels = n;
    }
    while (d->jobs) {
        job *n = d->jobs->next;
        job_free(d->jobs);
        d->jobs = n;
    }
    while (d->backs) {
        back *n = d->backs->next;
        back_free(d->backs);
        d->backs = n;
    }
}

void ef_dispatch_stop(ef_dispatcher *d)
{
    if (!d)
        return;
    /* The sends first (bounded), then the store thread records what they
     * decided (bounded) and gives the lease up. */
    atomic_store(&d->stop, true);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    pthread_mutex_lock(&d->mu);
    d->db_stop = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->db_thread, NULL);
    /* Requests still in flight after the grace period are abandoned; their
     * rows stay queued and go out after the restart (at least once). */
    free_memory(d);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    curl_multi_cleanup(d->multi);
    ef_store_free(d->store);
    ef_free(d);
}
