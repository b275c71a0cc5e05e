/*
 * ws.c -- /ws/console and /ws/chat. See ws.h and docs/websocket.md.
 *
 * Life of a visitor's message:
 *   RECEIVE (lws)        frame assembled (bounded), JSON parsed strictly,
 *                        "visitor" set from the socket's verified id, the
 *                        adapter's parse -> ef_msg, stamped with the channel
 *   ef_pipeline_submit   like a webhook; the socket holds a reference
 *   (worker commits)     job_done queues the item on the inbox, wakes lws
 *   inbox (lws)          ack / nack to the socket if it is still open
 * Life of a reply:
 *   dispatcher           the adapter needs no request: the row is "sent"
 *   NOTIFY ef_events     {"k":"d","s":"sent",...} reaches every gateway
 *   inbox (lws)          a web chat conversation with visitors here: the
 *                        row is looked up on a worker, then pushed to every
 *                        socket of that visitor
 */
#include "gateway/ws.h"

#include "base/hash.h"
#include "base/json.h"
#include "gateway/api_token.h"
#include "gateway/work.h"
#include "platforms/platform.h"
#include "store/events.h"

#include <json-c/json.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define QUEUE_FRAMES 256                  /* per socket, then it is dropped */
#define QUEUE_BYTES ((size_t)1024 * 1024) /* the same, in bytes */
#define PING_EVERY_MS 20000
#define SILENT_MAX_MS 60000      /* nothing received (pong included) for this long: closed */
#define HELLO_WITHIN_MS 10000    /* auth (console) or hello (chat) */
#define PENDING_MAX 32           /* a visitor's messages waiting for their commit */
#define RATE_SLOTS 1024          /* hash slots of the visitors' rate buckets */
#define RATE_VISITORS_MAX 100000 /* buckets at most; beyond, new visitors go unlimited */
#define HISTORY_MAX 50
#define LOOKUP_WORKERS 2
#define LISTEN_SLICE_MS 500
/* The kernel's send buffer of a socket, bounded too (autotuning would let it
 * hold megabytes for a client that does not read). */
#define SOCKET_SNDBUF (32 * 1024)

enum { K_CONSOLE = 0, K_CHAT = 1 };

typedef struct frame frame;
struct frame {
    frame *next;
    size_t len;
    unsigned char data[]; /* LWS_PRE bytes of headroom, then len bytes */
};

typedef struct wsconn wsconn;
struct wsconn {
    ef_ws *ws;
    struct lws *wsi; /* NULL once closed */
    int kind;
    int refs; /* the socket + items in flight that name it */
    wsconn *prev, *next;
    int64_t opened_ms, last_rx_ms, last_ping_ms;
    bool ping_due;
    bool closing;
    int close_code;
    char close_reason[64];
    ef_buf rx; /* a frame arriving in fragments */
    frame *q_head, *q_tail;
    size_t q_n, q_bytes;
    /* console */
    bool authed;
    int64_t auth_exp_s;
    /* chat */
    ef_channel *ch; /* a reference */
    char visitor[96];
    char chat_id[40]; /* "" until hello */
    int pending;
};

/* A visitor's token bucket (all of its sockets on this gateway): lws
 * thread only. Dropped by the sweep once full again. */
typedef struct rate_entry rate_entry;
struct rate_entry {
    rate_entry *next;
    char chat_id[40];
    double tokens;
    int64_t at_ms;
    bool limited; /* refused since its last accepted message (logged once) */
};

typedef enum item_kind { IT_EVENT, IT_HISTORY, IT_LOOKUP, IT_JOB } item_kind;

typedef struct item item;
struct item {
    item *next;
    item_kind kind;
    ef_ws *ws;
    wsconn *c;     /* IT_HISTORY, IT_JOB: a reference */
    char *payload; /* IT_EVENT */
    /* IT_HISTORY, IT_LOOKUP: the question and the answer */
    char *integration_id, *chat_id, *conversation_id, *message_id;
    char ev; /* IT_LOOKUP: the event kind ('m', 'd', 'c') */
    char *result;
    /* IT_JOB */
    ef_job *job;
    char client_id[72];
};

struct ef_ws {
    ef_ws_opts opts;
    uint8_t token_key[32];
    bool have_key;
    const ef_platform_ops *chat_ops; /* the adapter serving /ws/chat, or NULL */
    ef_work *work;
    /* the inbox, filled by other threads */
    pthread_mutex_t lock;
    struct lws_context *ctx;
    item *in_head, *in_tail;
    /* the LISTEN thread */
    pthread_t listener;
    bool listener_started;
    atomic_bool stop;
    bool stopped;
    /* lws thread only */
    wsconn *conns;
    size_t n[2];
    int64_t last_sweep_ms;
    rate_entry *rate[RATE_SLOTS]; /* visitors' buckets (EF_WEBCHAT_RATE_PER_MIN) */
    size_t rate_n;
};

/* ---- inbox --------------------------------------------------------------- */

static void inbox_push(ef_ws *ws, item *it)
{
    pthread_mutex_lock(&ws->lock);
    it->next = NULL;
    if (ws->in_tail)
        ws->in_tail->next = it;
    else
        ws->in_head = it;
    ws->in_tail = it;
    if (ws->ctx)
        lws_cancel_service(ws->ctx);
    pthread_mutex_unlock(&ws->lock);
}

static item *inbox_take(ef_ws *ws)
{
    pthread_mutex_lock(&ws->lock);
    item *list = ws->in_head;
    ws->in_head = ws->in_tail = NULL;
    pthread_mutex_unlock(&ws->lock);
    return list;
}

/* ---- connections ---------------------------------------------------------- */

static void conn_unref(wsconn *c)
{
    if (!c || --c->refs > 0)
        return;
    for (frame *f = c->q_head; f;) {
        frame *n = f->next;
        ef_free(f);
        f = n;
    }
    ef_buf_cleanup(&c->rx);
    ef_channel_unref(c->ch);
    ef_free(c);
}

static void item_free(item *it)
{
    if (!it)
        return;
    if (it->c)
        conn_unref(it->c);
    if (it->job)
        ef_job_free(it->job);
    ef_free(it->payload);
    ef_free(it->integration_id);
    ef_free(it->chat_id);
    ef_free(it->conversation_id);
    ef_free(it->message_id);
    ef_free(it->result);
    ef_free(it);
}

/* Closes c with code once what is queued is written. */
static void conn_close(wsconn *c, int code, const char *reason)
{
    if (!c->wsi || c->closing)
        return;
    c->closing = true;
    c->close_code = code;
    snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
    lws_callback_on_writable(c->wsi);
}

/* Drops c at once (a client too slow to read: nothing more is written). */
static void conn_kill(wsconn *c, const char *why)
{
    if (!c->wsi || c->closing)
        return;
    EF_LOG(EF_LOG_WARN, EF_C_HTTP, "ws %s socket dropped: %s",
           c->kind == K_CHAT ? "chat" : "console", why);
    c->closing = true;
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* Queues one text frame; a full queue drops the socket. */
static void send_text(wsconn *c, const char *s, size_t len)
{
    if (!c->wsi || c->closing)
        return;
    if (c->q_n >= QUEUE_FRAMES || c->q_bytes + len > QUEUE_BYTES) {
        conn_kill(c, "too slow (send queue full)");
        return;
    }
    frame *f = ef_malloc(sizeof(*f) + LWS_PRE + len);
    f->next = NULL;
    f->len = len;
    memcpy(f->data + LWS_PRE, s, len);
    if (c->q_tail)
        c->q_tail->next = f;
    else
        c->q_head = f;
    c->q_tail = f;
    c->q_n++;
    c->q_bytes += len;
    lws_callback_on_writable(c->wsi);
}

/* Sends o and releases it. */
static void send_obj(wsconn *c, json_object *o)
{
    const char *s =
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    send_text(c, s, strlen(s));
    json_object_put(o);
}

static json_object *obj_type(const char *type)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string(type));
    return o;
}

static void put_s(json_object *o, const char *k, const char *v)
{
    json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void send_error(wsconn *c, const char *error, int close_code)
{
    json_object *o = obj_type("error");
    put_s(o, "error", error);
    send_obj(c, o);
    if (close_code)
        conn_close(c, close_code, error);
}

/* One queued frame (or the ping, or the close) per writable callback. */
static int on_writable(wsconn *c)
{
    if (c->ping_due) {
        unsigned char buf[LWS_PRE + 4];
        c->ping_due = false;
        if (lws_write(c->wsi, buf + LWS_PRE, 0, LWS_WRITE_PING) < 0)
            return -1;
        if (c->q_head || c->closing)
            lws_callback_on_writable(c->wsi);
        return 0;
    }
    frame *f = c->q_head;
    if (!f) {
        if (c->closing) {
            lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                             (unsigned char *)c->close_reason, strlen(c->close_reason));
            return -1;
        }
        return 0;
    }
    if (lws_write(c->wsi, f->data + LWS_PRE, f->len, LWS_WRITE_TEXT) < (int)f->len)
        return -1;
    c->q_head = f->next;
    if (!c->q_head)
        c->q_tail = NULL;
    c->q_n--;
    c->q_bytes -= f->len;
    ef_free(f);
    if (c->q_head || c->closing)
        lws_callback_on_writable(c->wsi);
    return 0;
}

/* ---- helpers over JSON ----------------------------------------------------- */

static const char *jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static bool jbool(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

/* ---- /ws/console ---------------------------------------------------------- */

static void console_auth(wsconn *c, json_object *root)
{
    ef_ws *ws = c->ws;
    const char *tok = jstr(root, "token");
    ef_api_claims cl;
    int64_t now = (int64_t)time(NULL);
    if (!ws->have_key || !tok || strlen(tok) > EF_API_TOKEN_MAX ||
        ef_api_token_verify(ws->token_key, tok, strlen(tok), now, &cl) != 0) {
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "ws console refused: %s",
               ws->have_key ? "bad or expired token" : "no EF_SECRET_KEY to check tokens");
        send_error(c, "unauthorized", 4401);
        return;
    }
    c->authed = true;
    c->auth_exp_s = cl.exp;
    json_object *o = obj_type("ready");
    put_s(o, "user", cl.sub);
    put_s(o, "role", cl.role);
    json_object_object_add(o, "expires_at", json_object_new_int64(cl.exp));
    send_obj(c, o);
}

static void console_frame(wsconn *c, json_object *root)
{
    const char *type = jstr(root, "type");
    if (type && strcmp(type, "auth") == 0) {
        console_auth(c, root);
        return;
    }
    if (!c->authed) {
        send_error(c, "unauthorized", 4401);
        return;
    }
    if (type && strcmp(type, "ping") == 0) {
        send_obj(c, obj_type("pong"));
        return;
    }
    send_error(c, "unknown frame type", 0);
}

/* One ef_events payload as the console event it means (NULL: none). */
static json_object *console_event(json_object *ev)
{
    const char *k = jstr(ev, "k");
    if (!k)
        return NULL;
    json_object *o;
    if (strcmp(k, "c") == 0) {
        o = obj_type("conversation");
        put_s(o, "conversation_id", jstr(ev, "c"));
        put_s(o, "integration_id", jstr(ev, "i"));
        put_s(o, "status", jstr(ev, "s"));
        json_object_object_add(o, "assigned", json_object_new_boolean(jbool(ev, "o")));
        return o;
    }
    bool msg = strcmp(k, "m") == 0;
    if (!msg && strcmp(k, "d") != 0)
        return NULL;
    o = obj_type(msg ? "message" : "delivery");
    put_s(o, "conversation_id", jstr(ev, "c"));
    put_s(o, "message_id", jstr(ev, "m"));
    put_s(o, "integration_id", jstr(ev, "i"));
    if (msg) {
        put_s(o, "role", jstr(ev, "r"));
        put_s(o, "direction", jstr(ev, "d"));
    } else {
        put_s(o, "status", jstr(ev, "s"));
    }
    return o;
}

/* ---- /ws/chat: what a visitor sees of a row -------------------------------- */

/* A stored message as the chat shows it; NULL when the visitor does not
 * see it (system rows, replies not sent yet). */
static json_object *visitor_message(json_object *m)
{
    const char *role = jstr(m, "role"), *dir = jstr(m, "direction");
    const char *from = NULL;
    if (!role || !dir)
        return NULL;
    if (strcmp(dir, "inbound") == 0)
        from = "visitor";
    else if (strcmp(role, "assistant") == 0)
        from = "bot";
    else if (strcmp(role, "operator") == 0)
        from = "operator";
    if (!from)
        return NULL;
    json_object *o = obj_type("message");
    put_s(o, "id", jstr(m, "id"));
    put_s(o, "from", from);
    put_s(o, "text", jstr(m, "text"));
    put_s(o, "at", jstr(m, "at"));
    json_object *meta = NULL, *b = NULL;
    json_object_object_get_ex(m, "meta", &meta);
    if (strcmp(from, "visitor") == 0) {
        const char *cid = jstr(meta, "client_id");
        if (cid)
            put_s(o, "client_id", cid);
        const char *title = jstr(meta, "title");
        if (title) /* a pressed button shows its title, not its payload */
            put_s(o, "text", title);
    } else if (jstr(m, "delivery_status") && strcmp(jstr(m, "delivery_status"), "read") == 0) {
        json_object_object_add(o, "read", json_object_new_boolean(1));
    }
    if (strcmp(from, "visitor") != 0 && meta && json_object_object_get_ex(meta, "buttons", &b) &&
        json_object_is_type(b, json_type_array)) {
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < json_object_array_length(b); i++) {
            json_object *bi = json_object_array_get_idx(b, i);
            const char *t = jstr(bi, "title"), *p = jstr(bi, "payload");
            if (!t || !p)
                continue;
            json_object *x = json_object_new_object();
            put_s(x, "title", t);
            put_s(x, "payload", p);
            json_object_array_add(arr, x);
        }
        json_object_object_add(o, "buttons", arr);
    }
    return o;
}

/* ---- /ws/chat: hello and history ------------------------------------------- */

static void history_run(ef_work_conn *wc, void *ud)
{
    item *it = ud;
    if (!wc || !wc->st)
        return;
    if (ef_store_chat_history(wc->st, it->integration_id, it->chat_id, HISTORY_MAX, &it->result) ==
        EF_EDB)
        EF_LOG(EF_LOG_WARN, EF_C_HTTP, "ws chat history not loaded: %s", ef_store_errmsg(wc->st));
}

static void work_done(void *ud)
{
    item *it = ud;
    inbox_push(it->ws, it);
}

static void history_done(wsconn *c, const char *result)
{
    json_object *h = result ? json_tokener_parse(result) : NULL;
    json_object *o = obj_type("welcome");
    put_s(o, "visitor", c->visitor);
    const char *status = jstr(h, "status");
    put_s(o, "status", status ? status : "active");
    json_object_object_add(o, "operator", json_object_new_boolean(jbool(h, "operator")));
    json_object *arr = json_object_new_array(), *ms = NULL;
    if (h && json_object_object_get_ex(h, "messages", &ms) &&
        json_object_is_type(ms, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(ms); i++) {
            json_object *v = visitor_message(json_object_array_get_idx(ms, i));
            if (v) {
                json_object_object_del(v, "type");
                json_object_array_add(arr, v);
            }
        }
    }
    json_object_object_add(o, "messages", arr);
    if (!result)
        json_object_object_add(o, "history_unavailable", json_object_new_boolean(1));
    json_object_put(h);
    send_obj(c, o);
}

static void chat_hello(wsconn *c, json_object *root)
{
    ef_ws *ws = c->ws;
    if (c->chat_id[0]) {
        send_error(c, "hello already said", 0);
        return;
    }
    const char *v = jstr(root, "visitor");
    if (v && *v) {
        ef_http_req hr = {.post = true, .auth = v};
        if (strlen(v) >= sizeof(c->visitor) ||
            ef_platform_verify(c->ch->ops, c->ch->cfg, &hr) != 0) {
            EF_LOG(EF_LOG_INFO, EF_C_HTTP, "ws chat refused: invalid visitor id");
            send_error(c, "invalid visitor id", 4403);
            return;
        }
        snprintf(c->visitor, sizeof(c->visitor), "%s", v);
    } else {
        ef_buf b;
        ef_buf_init(&b, sizeof(c->visitor) - 1);
        ef_http_req hr = {.post = false};
        if (!c->ch->ops->handshake || c->ch->ops->handshake(c->ch->cfg, &hr, &b) != 0 || !b.data) {
            ef_buf_cleanup(&b);
            send_error(c, "cannot issue a visitor id", 1011);
            return;
        }
        snprintf(c->visitor, sizeof(c->visitor), "%.*s", (int)b.len, b.data);
        ef_buf_cleanup(&b);
    }
    /* The chat id is the random part: "v1.<id>.<mac>". */
    const char *dot = strchr(c->visitor + 3, '.');
    size_t idlen = dot ? (size_t)(dot - (c->visitor + 3)) : 0;
    snprintf(c->chat_id, sizeof(c->chat_id), "%.*s", (int)idlen, c->visitor + 3);
    item *it = ef_calloc(1, sizeof(*it));
    it->kind = IT_HISTORY;
    it->ws = ws;
    it->c = c;
    c->refs++;
    it->integration_id = ef_strdup(c->ch->id);
    it->chat_id = ef_strdup(c->chat_id);
    if (ef_work_submit(ws->work, history_run, work_done, it) != 0)
        inbox_push(ws, it); /* answered without history */
}

/* ---- /ws/chat: each visitor's rate ------------------------------------------- */

/* Tokens up to the rate, refilled continuously (rate per minute). */
static void rate_refill(const ef_ws *ws, rate_entry *e, int64_t now)
{
    double cap = ws->opts.chat_rate_per_min;
    if (now > e->at_ms)
        e->tokens += (double)(now - e->at_ms) * cap / 60000.0;
    if (e->tokens > cap)
        e->tokens = cap;
    e->at_ms = now;
}

static rate_entry **rate_slot(ef_ws *ws, const char *chat_id)
{
    return &ws->rate[ef_fnv1a64(chat_id, EF_FNV1A64_INIT) % RATE_SLOTS];
}

/* One message of chat_id's visitor at now: 0 when within its rate (a
 * token taken), else the milliseconds until the next token. */
static int64_t rate_take(ef_ws *ws, const char *chat_id, int64_t now)
{
    if (ws->opts.chat_rate_per_min <= 0)
        return 0;
    rate_entry **slot = rate_slot(ws, chat_id);
    rate_entry *e = *slot;
    while (e && strcmp(e->chat_id, chat_id) != 0)
        e = e->next;
    if (!e) {
        if (ws->rate_n >= RATE_VISITORS_MAX)
            return 0;
        e = ef_calloc(1, sizeof(*e));
        snprintf(e->chat_id, sizeof(e->chat_id), "%s", chat_id);
        e->tokens = ws->opts.chat_rate_per_min;
        e->at_ms = now;
        e->next = *slot;
        *slot = e;
        ws->rate_n++;
    }
    rate_refill(ws, e, now);
    if (e->tokens >= 1.0) {
        e->tokens -= 1.0;
        e->limited = false;
        return 0;
    }
    /* Rounded up to the ms, not one more: a token every 20 s is at most
     * 20,000 ms away, so retry_after_s stays within 20 (a "+ 1" made it 21
     * when the refused message came in the same ms as the last one let in). */
    double need = (1.0 - e->tokens) * 60000.0 / ws->opts.chat_rate_per_min;
    int64_t wait = (int64_t)need;
    if ((double)wait < need || wait < 1)
        wait++;
    if (!e->limited) {
        e->limited = true;
        /* The chat id is the visitor id's random part, never the signed id. */
        EF_LOG(EF_LOG_WARN, EF_C_HTTP,
               "ws chat=%.8s... over EF_WEBCHAT_RATE_PER_MIN=%d: its messages are refused "
               "(429) until it slows down",
               chat_id, ws->opts.chat_rate_per_min);
    }
    return wait;
}

/* Buckets full again are forgotten (lws thread; from the sweep). */
static void rate_sweep(ef_ws *ws, int64_t now)
{
    for (size_t i = 0; i < RATE_SLOTS && ws->rate_n > 0; i++) {
        rate_entry **pp = &ws->rate[i];
        while (*pp) {
            rate_entry *e = *pp;
            rate_refill(ws, e, now);
            if (e->tokens >= ws->opts.chat_rate_per_min) {
                *pp = e->next;
                ef_free(e);
                ws->rate_n--;
            } else {
                pp = &e->next;
            }
        }
    }
}

static void rate_free(ef_ws *ws)
{
    for (size_t i = 0; i < RATE_SLOTS; i++)
        while (ws->rate[i]) {
            rate_entry *e = ws->rate[i];
            ws->rate[i] = e->next;
            ef_free(e);
        }
    ws->rate_n = 0;
}

/* ---- /ws/chat: the visitor's messages --------------------------------------- */

static void nack_rate(wsconn *c, const char *id, int64_t wait_ms)
{
    json_object *o = obj_type("nack");
    put_s(o, "id", id);
    char why[120];
    snprintf(why, sizeof(why), "too many messages: at most %d a minute, send again later",
             c->ws->opts.chat_rate_per_min);
    put_s(o, "error", why);
    json_object_object_add(o, "retry", json_object_new_boolean(1));
    json_object_object_add(o, "code", json_object_new_int(429));
    json_object_object_add(o, "retry_after_s", json_object_new_int64((wait_ms + 999) / 1000));
    send_obj(c, o);
}

static void nack(wsconn *c, const char *id, const char *error, bool retry)
{
    json_object *o = obj_type("nack");
    put_s(o, "id", id);
    put_s(o, "error", error);
    json_object_object_add(o, "retry", json_object_new_boolean(retry));
    send_obj(c, o);
}

static void job_done(ef_job *job, void *ud)
{
    (void)job;
    item *it = ud;
    inbox_push(it->ws, it);
}

static void job_finished(wsconn *c, item *it)
{
    const ef_job_result *res = ef_job_get_result(it->job);
    c->pending--;
    if (!it->client_id[0]) /* a delivery status: nothing to answer */
        return;
    if (res->status == 0 && res->rejected) {
        nack(c, it->client_id, res->reason[0] ? res->reason : "cannot be stored", false);
        return;
    }
    if (res->status != 0) {
        nack(c, it->client_id, "store unavailable, send again later", true);
        return;
    }
    json_object *o = obj_type("ack");
    put_s(o, "id", it->client_id);
    json_object_object_add(o, "duplicate",
                           json_object_new_boolean(res->duplicate > 0 && res->stored == 0));
    send_obj(c, o);
}

/* A message or a button press: through the adapter into the pipeline. */
static void chat_message(wsconn *c, json_object *root)
{
    ef_ws *ws = c->ws;
    const char *cid = jstr(root, "id");
    char idbuf[72];
    snprintf(idbuf, sizeof(idbuf), "%s", cid ? cid : "");
    if (!c->chat_id[0]) {
        nack(c, idbuf, "say hello first", false);
        return;
    }
    bool seen = strcmp(jstr(root, "type"), "seen") == 0; /* no ack for these */
    if (c->pending >= PENDING_MAX || ef_pipeline_saturated(ws->opts.pipe)) {
        if (!seen)
            nack(c, idbuf, "busy, send again later", true);
        return;
    }
    /* Messages and button presses count against the visitor's rate;
     * delivery statuses ("seen") do not. */
    int64_t wait_ms = seen ? 0 : rate_take(ws, c->chat_id, ef_now_ms());
    if (wait_ms > 0) {
        nack_rate(c, idbuf, wait_ms);
        return;
    }
    json_object_object_add(root, "visitor", json_object_new_string(c->visitor));
    json_object_object_add(root, "date", json_object_new_int64((int64_t)time(NULL)));
    ef_msg_list msgs;
    ef_msg_list_init(&msgs);
    ef_parse_info info;
    memset(&info, 0, sizeof(info));
    if (ef_platform_parse(c->ch->ops, root, &msgs, &info) != 0 || msgs.n == 0) {
        if (seen)
            send_error(c, info.note[0] ? info.note : "not a delivery status", 0);
        else
            nack(c, idbuf, info.note[0] ? info.note : "not a message", false);
        ef_msg_list_cleanup(&msgs);
        return;
    }
    for (size_t i = 0; i < msgs.n; i++) {
        ef_free(msgs.items[i]->integration_id);
        msgs.items[i]->integration_id = ef_strdup(c->ch->id);
    }
    item *it = ef_calloc(1, sizeof(*it));
    it->kind = IT_JOB;
    it->ws = ws;
    it->c = c;
    c->refs++;
    c->pending++;
    snprintf(it->client_id, sizeof(it->client_id), "%s", seen ? "" : idbuf);
    it->job = ef_job_new(&msgs, job_done, it);
    ef_pipeline_submit(ws->opts.pipe, it->job);
}

static void chat_frame(wsconn *c, json_object *root)
{
    const char *type = jstr(root, "type");
    if (!type) {
        send_error(c, "type missing", 0);
        return;
    }
    if (strcmp(type, "hello") == 0)
        chat_hello(c, root);
    else if (strcmp(type, "message") == 0 || strcmp(type, "button") == 0 ||
             strcmp(type, "seen") == 0)
        chat_message(c, root);
    else if (strcmp(type, "ping") == 0)
        send_obj(c, obj_type("pong"));
    else
        send_error(c, "unknown frame type", 0);
}

/* ---- events ------------------------------------------------------------------ */

static bool visitors_on(ef_ws *ws, const char *integration_id)
{
    for (wsconn *c = ws->conns; c; c = c->next)
        if (c->kind == K_CHAT && c->chat_id[0] && strcmp(c->ch->id, integration_id) == 0)
            return true;
    return false;
}

static void lookup_run(ef_work_conn *wc, void *ud)
{
    item *it = ud;
    if (!wc || !wc->st)
        return;
    if (ef_store_event_lookup(wc->st, it->conversation_id, it->message_id, &it->result) == EF_EDB)
        EF_LOG(EF_LOG_WARN, EF_C_HTTP, "ws event lookup failed: %s", ef_store_errmsg(wc->st));
}

/* A web chat event: which visitor, and the row, are looked up on a
 * worker when this gateway holds sockets of that integration. */
static void chat_event(ef_ws *ws, json_object *ev)
{
    const char *k = jstr(ev, "k"), *i = jstr(ev, "i"), *conv = jstr(ev, "c");
    if (!k || !i || !conv || !visitors_on(ws, i))
        return;
    bool wanted = (k[0] == 'm' && strcmp(jstr(ev, "d") ? jstr(ev, "d") : "", "inbound") == 0) ||
                  (k[0] == 'd' && strcmp(jstr(ev, "s") ? jstr(ev, "s") : "", "sent") == 0) ||
                  k[0] == 'c';
    if (!wanted)
        return;
    item *it = ef_calloc(1, sizeof(*it));
    it->kind = IT_LOOKUP;
    it->ws = ws;
    it->ev = k[0];
    it->integration_id = ef_strdup(i);
    it->conversation_id = ef_strdup(conv);
    it->message_id = jstr(ev, "m") ? ef_strdup(jstr(ev, "m")) : NULL;
    if (ef_work_submit(ws->work, lookup_run, work_done, it) != 0) {
        EF_LOG(EF_LOG_WARN, EF_C_HTTP, "ws event dropped: lookup queue full");
        item_free(it);
    }
}

static void lookup_done(ef_ws *ws, item *it)
{
    json_object *r = it->result ? json_tokener_parse(it->result) : NULL;
    const char *chat = jstr(r, "chat_id");
    json_object *push = NULL;
    if (chat && it->ev == 'c') {
        push = obj_type("status");
        put_s(push, "status", jstr(r, "status"));
        json_object_object_add(push, "operator", json_object_new_boolean(jbool(r, "operator")));
    } else if (chat) {
        json_object *m = NULL;
        json_object_object_get_ex(r, "message", &m);
        push = m ? visitor_message(m) : NULL;
    }
    if (push) {
        const char *s = json_object_to_json_string_ext(push, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
        for (wsconn *c = ws->conns; c; c = c->next)
            if (c->kind == K_CHAT && c->chat_id[0] && strcmp(c->chat_id, chat) == 0 &&
                strcmp(c->ch->id, it->integration_id) == 0)
                send_text(c, s, strlen(s));
        json_object_put(push);
    }
    json_object_put(r);
}

static void event_one(ef_ws *ws, json_object *ev)
{
    json_object *o = console_event(ev);
    if (o) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        for (wsconn *c = ws->conns; c; c = c->next)
            if (c->kind == K_CONSOLE && c->authed)
                send_text(c, s, strlen(s));
        json_object_put(o);
    }
    chat_event(ws, ev);
}

/* One notification: an event object, or an array of them (the new
 * messages of one statement, sql/022), in order. */
static void event_in(ef_ws *ws, const char *payload)
{
    json_object *ev = json_tokener_parse(payload);
    if (ev && json_object_is_type(ev, json_type_object)) {
        event_one(ws, ev);
    } else if (ev && json_object_is_type(ev, json_type_array)) {
        size_t n = json_object_array_length(ev);
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(ev, i);
            if (json_object_is_type(e, json_type_object))
                event_one(ws, e);
        }
    }
    json_object_put(ev);
}

static void drain_inbox(ef_ws *ws)
{
    item *list = inbox_take(ws);
    while (list) {
        item *it = list;
        list = it->next;
        bool open = it->c && it->c->wsi;
        switch (it->kind) {
        case IT_EVENT:
            event_in(ws, it->payload);
            break;
        case IT_HISTORY:
            if (open)
                history_done(it->c, it->result);
            break;
        case IT_LOOKUP:
            lookup_done(ws, it);
            break;
        case IT_JOB:
            if (open)
                job_finished(it->c, it);
            else if (it->c)
                it->c->pending--;
            break;
        }
        item_free(it);
    }
}

/* ---- the LISTEN thread ------------------------------------------------------- */

static void on_notify(const char *payload, void *ud)
{
    ef_ws *ws = ud;
    item *it = ef_calloc(1, sizeof(*it));
    it->kind = IT_EVENT;
    it->ws = ws;
    it->payload = ef_strdup(payload);
    inbox_push(ws, it);
}

static void *listen_main(void *arg)
{
    ef_ws *ws = arg;
    ef_store *st = ef_store_new(ws->opts.pg_url);
    bool listening = false;
    int64_t retry_at = 0;
    while (!atomic_load(&ws->stop)) {
        if (!listening) {
            if (ef_now_ms() < retry_at) {
                struct timespec ts = {0, 200 * 1000000L};
                nanosleep(&ts, NULL);
                continue;
            }
            listening = ef_store_events_listen(st) == 0;
            if (!listening) {
                retry_at = ef_now_ms() + 1000;
                continue;
            }
            EF_LOG(EF_LOG_DEBUG, EF_C_HTTP, "ws: listening on ef_events");
        }
        if (ef_store_events_wait(st, LISTEN_SLICE_MS, on_notify, ws) < 0) {
            EF_LOG(EF_LOG_WARN, EF_C_HTTP, "ws: event connection lost, listening again");
            listening = false;
            retry_at = ef_now_ms() + 1000;
        }
    }
    ef_store_free(st);
    return NULL;
}

/* ---- lws callback --------------------------------------------------------------- */

static bool path_is(struct lws *wsi, const char *want)
{
    char uri[128];
    if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
        return false;
    return strcmp(uri, want) == 0;
}

/* The upgrade: the protocol the client asked for must match the path. */
static int filter(ef_ws *ws, struct lws *wsi)
{
    const struct lws_protocols *p = lws_get_protocol(wsi);
    bool chat = p && strcmp(p->name, EF_WS_CHAT_PROTOCOL) == 0;
    if (!path_is(wsi, chat ? EF_WS_CHAT_PATH : EF_WS_CONSOLE_PATH))
        return 1;
    return chat && !ws->chat_ops ? 1 : 0;
}

static int established(ef_ws *ws, struct lws *wsi, wsconn **slot)
{
    const struct lws_protocols *p = lws_get_protocol(wsi);
    int kind = p && strcmp(p->name, EF_WS_CHAT_PROTOCOL) == 0 ? K_CHAT : K_CONSOLE;
    ef_channel *ch = NULL;
    if (kind == K_CHAT) {
        ch = ef_channels_route(ws->opts.channels, ws->chat_ops, "");
        if (!ch) {
            EF_LOG(EF_LOG_WARN, EF_C_HTTP, "ws chat refused: no enabled web chat integration");
            return -1;
        }
    }
    int fd = (int)lws_get_socket_fd(wsi);
    int sndbuf = SOCKET_SNDBUF;
    if (fd >= 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    wsconn *c = ef_calloc(1, sizeof(*c));
    c->ws = ws;
    c->wsi = wsi;
    c->kind = kind;
    c->refs = 1;
    c->ch = ch;
    c->opened_ms = c->last_rx_ms = c->last_ping_ms = ef_now_ms();
    ef_buf_init(&c->rx, EF_WS_FRAME_MAX);
    c->next = ws->conns;
    if (ws->conns)
        ws->conns->prev = c;
    ws->conns = c;
    ws->n[kind]++;
    *slot = c;
    return 0;
}

static void closed(ef_ws *ws, wsconn **slot)
{
    wsconn *c = *slot;
    if (!c)
        return;
    *slot = NULL;
    c->wsi = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        ws->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    ws->n[c->kind]--;
    conn_unref(c);
}

static void received(wsconn *c, struct lws *wsi, const void *in, size_t len)
{
    c->last_rx_ms = ef_now_ms();
    if (c->closing)
        return;
    if (lws_frame_is_binary(wsi)) {
        conn_close(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text frames only");
        return;
    }
    if (ef_buf_append(&c->rx, in, len) != 0) {
        conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "frame too large");
        return;
    }
    if (!lws_is_final_fragment(wsi))
        return;
    json_object *root = NULL;
    char err[160];
    ef_json_limits lim = {.max_depth = 8, .max_string = 8192, .max_array = 64, .max_keys = 32};
    int rc = ef_json_parse_limits(c->rx.data ? c->rx.data : "", c->rx.len, &lim, &root, err,
                                  sizeof(err));
    ef_buf_reset(&c->rx);
    if (rc != 0 || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        send_error(c, "a JSON object expected", 0);
        return;
    }
    if (c->kind == K_CHAT)
        chat_frame(c, root);
    else
        console_frame(c, root);
    json_object_put(root);
}

int ef_ws_callback(ef_ws *ws, struct lws *wsi, int reason, void *user, void *in, size_t len)
{
    wsconn **slot = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter(ws, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return slot ? established(ws, wsi, slot) : -1;
    case LWS_CALLBACK_RECEIVE:
        if (slot && *slot)
            received(*slot, wsi, in, len);
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (slot && *slot)
            (*slot)->last_rx_ms = ef_now_ms();
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return slot && *slot ? on_writable(*slot) : 0;
    case LWS_CALLBACK_CLOSED:
        if (slot)
            closed(ws, slot);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        drain_inbox(ws);
        return 0;
    default:
        return 0;
    }
}

/* Pings, and the sockets whose time is up. */
static void sweep(ef_ws *ws, int64_t now)
{
    int64_t now_s = (int64_t)time(NULL);
    for (wsconn *c = ws->conns; c; c = c->next) {
        if (c->closing)
            continue;
        if (now - c->last_rx_ms > SILENT_MAX_MS) {
            conn_kill(c, "silent for 60 s");
            continue;
        }
        bool greeted = c->kind == K_CHAT ? c->chat_id[0] != '\0' : c->authed;
        if (!greeted && now - c->opened_ms > HELLO_WITHIN_MS) {
            send_error(c, c->kind == K_CHAT ? "hello expected" : "unauthorized",
                       c->kind == K_CHAT ? 1008 : 4401);
            continue;
        }
        if (c->kind == K_CONSOLE && c->authed && now_s >= c->auth_exp_s) {
            send_error(c, "token expired", 4401);
            continue;
        }
        if (now - c->last_ping_ms >= PING_EVERY_MS) {
            c->last_ping_ms = now;
            c->ping_due = true;
            lws_callback_on_writable(c->wsi);
        }
    }
}

void ef_ws_tick(ef_ws *ws)
{
    drain_inbox(ws);
    int64_t now = ef_now_ms();
    if (now - ws->last_sweep_ms >= 1000) {
        ws->last_sweep_ms = now;
        sweep(ws, now);
        rate_sweep(ws, now);
    }
}

/* ---- lifecycle ------------------------------------------------------------------- */

ef_ws *ef_ws_new(const ef_ws_opts *opts)
{
    ef_ws *ws = ef_calloc(1, sizeof(*ws));
    ws->opts = *opts;
    pthread_mutex_init(&ws->lock, NULL);
    atomic_init(&ws->stop, false);
    if (opts->keys && opts->keys->n > 0 &&
        ef_api_token_key(opts->keys->keys[0], 32, ws->token_key) == 0)
        ws->have_key = true;
    else
        EF_LOG(EF_LOG_WARN, EF_C_HTTP,
               "ws: EF_SECRET_KEY unset, /ws/console refuses every token (the API signs "
               "with a key of its own)");
    for (size_t i = 0; ef_platforms[i]; i++)
        if (ef_platforms[i]->supports & EF_PLAT_SOCKET) {
            ws->chat_ops = ef_platforms[i];
            break;
        }
    ef_work_opts wo = {.pg_url = opts->pg_url,
                       .redis_url = opts->redis_url,
                       .threads = LOOKUP_WORKERS,
                       .max_queue = 4096};
    ws->work = ef_work_new(&wo);
    if (pthread_create(&ws->listener, NULL, listen_main, ws) == 0)
        ws->listener_started = true;
    else
        EF_LOG(EF_LOG_ERROR, EF_C_HTTP, "ws: cannot start the event listener");
    return ws;
}

void ef_ws_set_context(ef_ws *ws, struct lws_context *ctx)
{
    pthread_mutex_lock(&ws->lock);
    ws->ctx = ctx;
    pthread_mutex_unlock(&ws->lock);
}

void ef_ws_stop(ef_ws *ws)
{
    if (!ws || ws->stopped)
        return;
    ws->stopped = true;
    atomic_store(&ws->stop, true);
    if (ws->listener_started)
        pthread_join(ws->listener, NULL);
    ef_work_stop(ws->work);
}

size_t ef_ws_count(const ef_ws *ws, bool chat)
{
    return ws ? ws->n[chat ? K_CHAT : K_CONSOLE] : 0;
}

void ef_ws_free(ef_ws *ws)
{
    if (!ws)
        return;
    ef_ws_stop(ws);
    ef_ws_set_context(ws, NULL);
    item *list = inbox_take(ws);
    while (list) {
        item *it = list;
        list = it->next;
        item_free(it);
    }
    /* Sockets the server did not close (it closes every one when freed). */
    while (ws->conns) {
        wsconn *c = ws->conns;
        closed(ws, &c);
    }
    ef_work_free(ws->work);
    rate_free(ws);
    memset(ws->token_key, 0, sizeof(ws->token_key));
    pthread_mutex_destroy(&ws->lock);
    ef_free(ws);
}
