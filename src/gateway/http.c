/*
 * http.c -- the libwebsockets HTTP server. See http.h for the contract.
 *
 * Life of a webhook request:
 *   LWS_CALLBACK_HTTP            route, method and secret checks (before any
 *                                body byte is read); Content-Length > limit
 *                                is refused without buffering
 *   LWS_CALLBACK_HTTP_BODY       body appended to a bounded buffer
 *   LWS_CALLBACK_HTTP_BODY_COMPLETION
 *                                strict JSON parse, normalization, then the
 *                                job goes to the pipeline; nothing is
 *                                written yet
 *   (worker thread commits)      done callback queues the request and calls
 *                                lws_cancel_service()
 *   LWS_CALLBACK_EVENT_WAIT_CANCELLED
 *                                finished requests get their status; ask
 *                                for a writable callback
 *   LWS_CALLBACK_HTTP_WRITEABLE  headers + body, transaction completed
 *
 * A request whose connection closes, or that the timeout sweep answers
 * 503, while its job is in flight is kept until the job finishes; the job
 * is abandoned (ef_job_abandon): events no worker has taken yet are
 * dropped, a commit under way completes (the platform's redelivery is then
 * answered as a duplicate). Nothing answered 2xx is ever dropped.
 *
 * Backpressure: while the pipeline holds EF_QUEUE_MAX events, webhooks are
 * answered 503 with Retry-After: 1 at once, before their bodies are parsed.
 *
 * /api/v1 requests (api.h) take the same path: headers and query copied
 * into an ef_api_call on LWS_CALLBACK_HTTP, the bounded body read, then
 * ef_api_call_start(); work that blocks runs on the API's work pool, whose
 * done callback queues the request on the same done list.
 */
#include "gateway/http.h"

#include "base/crypto.h"
#include "gateway/api.h"
#include "gateway/bootstrap.h"
#include "gateway/channels.h"
#include "gateway/config.h"
#include "gateway/metrics.h"
#include "gateway/static.h"
#include "gateway/ws.h"
#include "platforms/platform.h"

#include <ev.h>
#include <json-c/json.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_US (100 * LWS_US_PER_MS)

typedef enum route {
    R_NONE = 0,
    R_LIVEZ,
    R_HEALTHZ,
    R_METRICS,
    R_WEBHOOK,   /* POST on an adapter's webhook path */
    R_HANDSHAKE, /* GET on it: the platform's subscription check */
    R_API,       /* anything under /api/v1 */
    R_STATIC,    /* GET under /console: static.h */
    R_NOT_FOUND,
    R_BAD_METHOD
} route;

typedef struct req req;
struct req {
    ef_server *srv;
    struct lws *wsi; /* NULL once the connection closed */
    route route;
    const ef_platform_ops *platform;
    ef_channel *ch; /* the channel the route names (a reference), or NULL */
    char *auth;     /* the value of platform->auth_header */
    char sub[128];  /* what follows the webhook path ("" or "/<integration id>") */
    ef_buf body;
    bool too_large;
    bool rejected;      /* status decided before the body (answered unread, then closed) */
    bool body_expected; /* a POST with a body: answer only after reading it */
    bool body_done;
    bool close_after;   /* answered before its body was read: Connection: close */
    int64_t read_by_ms; /* headers and body complete by then, or 408 */
    /* The response, once decided. */
    int status;
    const char *ctype;
    const char *allow;                /* Allow: header for 405 */
    const char *hdr_name, *hdr_value; /* one more header (API: Retry-After, ...) */
    char *resp;                       /* LWS_PRE bytes of headroom, then resp_len bytes */
    size_t resp_len;
    bool ready;
    /* Pipeline state (webhooks) or the API call. */
    ef_job *job;
    ef_api_call *call;
    /* R_STATIC: the file, for its ETag and caching headers. */
    const ef_static_file *file;
    bool api_started; /* lws may still report a body completion for an empty body */
    bool job_pending;
    int64_t deadline_ms;
    int64_t started_us; /* monotonic, when its headers came (ef_now_us) */
    char what[64];
    int64_t update_id;
    req *next_done;
    req *prev_wait, *next_wait;
};

/* Per HTTP transaction state (lws session data, bound at the first
 * request's headers). */
typedef struct pss {
    req *r; /* the request under way; NULL: the connection is idle */
} pss;

/* One per accepted connection, from its accept to its close (lws opaque
 * user data: lws binds session data only once headers are complete). */
typedef struct conn conn;
struct conn {
    struct lws *wsi;
    pss *ps;           /* NULL until the first request, and once dropped */
    conn *prev, *next; /* the server's connections, oldest first */
    bool counted;      /* in srv->conns and its address's count */
    bool requested;    /* the first request's headers arrived */
    bool killed;       /* closed for its deadline, lws closes it soon */
    bool ws;           /* upgraded to a WebSocket (ws.c): never idle, no deadline */
    int64_t accepted_ms;
    char ip[48];
};

typedef struct ip_count {
    char ip[48];
    size_t n;
} ip_count;

struct ef_server {
    ef_server_opts opts;
    struct lws_protocols protocols[4]; /* http, then the WebSockets (ws.h) */
    struct lws_context *ctx;
    struct ev_loop *loop; /* libev's: epoll, not lws's poll() of every connection */
    struct lws_vhost *vhost;
    int port;
    lws_sorted_usec_list_t tick;
    /* Finished jobs, handed over by worker threads. */
    pthread_mutex_t done_lock;
    req *done_head;
    /* Requests waiting for their commit, for the timeout sweep. */
    req *wait_head;
    size_t in_flight; /* webhooks whose commit is under way */
    size_t active;    /* requests on open connections not answered yet */
    /* Open connections, oldest first, and how many per client address. */
    conn *conn_head, *conn_tail;
    size_t conns;
    ip_count *ips;
    size_t nips;
    bool draining;
    /* Webhooks refused because the pipeline was saturated, not logged yet
     * (one line a second at most). */
    size_t saturated_unlogged;
    int64_t saturated_log_ms;
};

/* ---- request lifetime --------------------------------------------------- */

static req *req_new(ef_server *srv, struct lws *wsi)
{
    req *r = ef_calloc(1, sizeof(*r));
    r->srv = srv;
    r->wsi = wsi;
    ef_buf_init(&r->body, srv->opts.max_body);
    r->started_us = ef_now_us();
    srv->active++;
    return r;
}

static void req_free(req *r)
{
    if (!r)
        return;
    ef_buf_cleanup(&r->body);
    ef_free(r->resp);
    ef_free(r->auth);
    ef_api_call_free(r->call);
    ef_channel_unref(r->ch);
    ef_free(r);
}

static void wait_unlink(ef_server *srv, req *r)
{
    if (r->prev_wait)
        r->prev_wait->next_wait = r->next_wait;
    else if (srv->wait_head == r)
        srv->wait_head = r->next_wait;
    if (r->next_wait)
        r->next_wait->prev_wait = r->prev_wait;
    r->prev_wait = r->next_wait = NULL;
}

/* Decides the response and asks lws for a writable callback. */
static void respond(req *r, int status, const char *ctype, const char *body, size_t len)
{
    if (r->ready)
        return;
    r->status = status;
    r->ctype = ctype;
    r->resp = ef_malloc(LWS_PRE + len + 1);
    memcpy(r->resp + LWS_PRE, body, len);
    r->resp_len = len;
    r->ready = true;
    ef_metrics_http(status);
    /* Decided before its body was read (401, 404, 405, 413, 503, 408...):
     * answered now and the connection closed, the body never read. */
    if (r->body_expected && !r->body_done)
        r->close_after = true;
    if (r->wsi)
        lws_callback_on_writable(r->wsi);
}

static void respond_json(req *r, int status, const char *json)
{
    respond(r, status, "application/json", json, strlen(json));
}

/* One log line per refused request, without secrets or message text. */
static void reject(req *r, int status, ef_reject_reason reason, const char *why)
{
    char body[512];
    const char *path = r->platform ? r->platform->webhook_path : "-";
    EF_LOG(EF_LOG_WARN, EF_C_HTTP, "status=%d path=%s%.100s reason=\"%s\"", status, path, r->sub,
           why);
    if (r->platform)
        ef_metrics_reject(ef_metrics_platform(r->platform->name), reason);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(why));
    snprintf(body, sizeof(body), "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    if (status == 503) { /* the platform comes back soon, as for the other 503s */
        r->hdr_name = "retry-after:";
        r->hdr_value = "1";
    }
    respond_json(r, status, body);
}

/* The pipeline holds EF_QUEUE_MAX events: refuse at once, before the
 * body is parsed, with Retry-After so the platform comes back soon. One
 * log line a second at most (a saturated gateway gets many of these). */
static bool refuse_if_saturated(req *r)
{
    ef_server *srv = r->srv;
    if (!ef_pipeline_saturated(srv->opts.pipe))
        return false;
    srv->saturated_unlogged++;
    int64_t now = ef_now_ms();
    if (now - srv->saturated_log_ms >= 1000) {
        EF_LOG(EF_LOG_WARN, EF_C_HTTP,
               "status=503 path=%s reason=\"pipeline saturated (%zu events pending)\" "
               "refused=%zu",
               r->platform ? r->platform->webhook_path : "-", ef_pipeline_pending(srv->opts.pipe),
               srv->saturated_unlogged);
        srv->saturated_unlogged = 0;
        srv->saturated_log_ms = now;
    }
    if (r->platform)
        ef_metrics_reject(ef_metrics_platform(r->platform->name), EF_REJ_SATURATED);
    r->rejected = true;
    r->hdr_name = "retry-after:";
    r->hdr_value = "1";
    respond_json(r, 503, "{\"ok\":false,\"error\":\"overloaded, retry later\"}");
    return true;
}

/* ---- routes ------------------------------------------------------------- */

/* Readiness (/readyz, /healthz): PostgreSQL answering and not draining.
 * Redis is a cache: down, it makes the answer "degraded", still 200. The
 * outbox figures (the sampler's last reading, as in /metrics; null before
 * the first) are information only: they never change the status. */
static void serve_healthz(req *r)
{
    ef_server *srv = r->srv;
    bool pg = ef_pipeline_pg_up(srv->opts.pipe);
    bool rd = ef_pipeline_redis_up(srv->opts.pipe);
    char outbox[160];
    char body[480];
    bool ok = pg && !srv->draining;
    const char *status = !ok ? "unavailable" : rd ? "ok" : "degraded";
    const char *reason = srv->draining ? ",\"reason\":\"draining\""
                         : !pg         ? ",\"reason\":\"postgres down\""
                                       : "";
    ef_metrics_outbox_json(outbox, sizeof(outbox));
    snprintf(body, sizeof(body),
             "{\"status\":\"%s\",\"postgres\":\"%s\",\"redis\":\"%s\",\"pending\":%zu,"
             "\"outbox\":%s%s%s}",
             status, pg ? "ok" : "down", rd ? "ok" : "down", ef_pipeline_pending(srv->opts.pipe),
             outbox, reason, srv->draining ? ",\"draining\":true" : "");
    respond_json(r, ok ? 200 : 503, body);
}

static void serve_metrics(req *r)
{
    ef_buf b;
    ef_buf_init(&b, 1 << 20);
    ef_metrics_render(&b);
    respond(r, 200, "text/plain; version=0.0.4", b.data ? b.data : "", b.len);
    ef_buf_cleanup(&b);
}

static const char *query_arg(void *ud, const char *name, char *buf, size_t buflen)
{
    char key[80];
    snprintf(key, sizeof(key), "%s=", name);
    return lws_get_urlarg_by_name((struct lws *)ud, key, buf, (int)buflen);
}

/* A webhook of a platform that no integration here serves at all: 404
 * saying what is missing (the variables, or `integration add`), instead
 * of a signature or verification failure. True when answered. */
static bool refuse_unconfigured(ef_server *srv, req *r)
{
    if (!ef_channels_ready(srv->opts.channels))
        return false;
    ef_channel **list = NULL;
    size_t n = ef_channels_list(srv->opts.channels, r->platform, &list);
    ef_channels_list_free(list, n);
    if (n > 0)
        return false;
    const char *vars = ef_bootstrap_env_hint(r->platform);
    char why[400];
    snprintf(why, sizeof(why),
             "%s is not configured here: no enabled %s integration (%s%s%sadd one with "
             "`easyflow integration add %s`)",
             r->platform->name, r->platform->name, vars ? "set " : "", vars ? vars : "",
             vars ? ", or " : "", r->platform->name);
    r->rejected = true;
    reject(r, 404, EF_REJ_NO_CHANNEL, why);
    return true;
}

/* A GET on a webhook path: the platform's subscription check, answered by
 * whichever of its channels recognizes it. */
static void serve_handshake(ef_server *srv, struct lws *wsi, req *r)
{
    if (refuse_unconfigured(srv, r))
        return;
    ef_http_req hr = {.post = false, .arg = query_arg, .arg_ud = wsi};
    ef_channel **list = NULL;
    size_t n = ef_channels_list(srv->opts.channels, r->platform, &list);
    ef_buf out;
    ef_buf_init(&out, 4096);
    bool ok = false;
    for (size_t i = 0; i < n && !ok; i++) {
        ef_buf_reset(&out);
        ok = r->platform->handshake(list[i]->cfg, &hr, &out) == 0;
    }
    ef_channels_list_free(list, n);
    if (ok) {
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "%s webhook verification accepted", r->platform->name);
        respond(r, 200, "text/plain", out.data ? out.data : "", out.len);
    } else {
        EF_LOG(EF_LOG_WARN, EF_C_HTTP, "status=403 path=%s reason=\"verification refused\"",
               r->platform->webhook_path);
        respond(r, 403, "text/plain", "forbidden", 9);
    }
    ef_buf_cleanup(&out);
}

/* Any thread: hands a finished request back to the service thread (the
 * done list) and wakes it. Only the request that finds the list empty
 * wakes it: the wake of an earlier one is still to come or under way, and
 * drain_done takes the whole list under the same lock (a worker's batch
 * of requests costs the service thread one wake, not one a request). */
static void queue_done(req *r)
{
    ef_server *srv = r->srv;
    pthread_mutex_lock(&srv->done_lock);
    bool wake = srv->done_head == NULL;
    r->next_done = srv->done_head;
    srv->done_head = r;
    pthread_mutex_unlock(&srv->done_lock);
    if (wake)
        lws_cancel_service(srv->ctx);
}

static void job_done(ef_job *job, void *ud)
{
    (void)job;
    queue_done(ud);
}

static void finish_webhook(req *r)
{
    const ef_job_result *res = ef_job_get_result(r->job);
    int64_t ms = (ef_now_us() - r->started_us) / 1000;
    if (res->status == 0 && res->rejected) {
        if (r->platform)
            ef_metrics_reject(ef_metrics_platform(r->platform->name), EF_REJ_UNSTORABLE);
        EF_LOG(EF_LOG_WARN, EF_C_HTTP,
               "status=422 update=%lld what=%s stored=%zu rejected=%zu reason=\"%s\" ms=%lld",
               (long long)r->update_id, r->what, res->stored, res->rejected, res->reason,
               (long long)ms);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ok", json_object_new_boolean(0));
        json_object_object_add(o, "error", json_object_new_string(res->reason));
        respond_json(r, 422, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else if (res->status == 0 && res->duplicate > 0 && res->stored == 0) {
        /* A redelivery: said once in the log and in the answer. */
        EF_LOG(EF_LOG_INFO, EF_C_HTTP,
               "status=200 update=%lld what=%s duplicate: stored before, not handled again "
               "ms=%lld",
               (long long)r->update_id, r->what, (long long)ms);
        respond_json(r, 200, "{\"ok\":true,\"duplicate\":true}");
    } else if (res->status == 0) {
        EF_LOG(EF_LOG_DEBUG, EF_C_HTTP,
               "status=200 update=%lld what=%s stored=%zu duplicate=%zu ignored=%zu ms=%lld",
               (long long)r->update_id, r->what, res->stored, res->duplicate, res->ignored,
               (long long)ms);
        respond_json(r, 200, "{\"ok\":true}");
    } else {
        if (r->platform)
            ef_metrics_reject(ef_metrics_platform(r->platform->name), EF_REJ_UNAVAILABLE);
        EF_LOG(EF_LOG_WARN, EF_C_HTTP,
               "status=503 update=%lld what=%s reason=\"store unavailable\" ms=%lld",
               (long long)r->update_id, r->what, (long long)ms);
        r->hdr_name = "retry-after:";
        r->hdr_value = "1";
        respond_json(r, 503, "{\"ok\":false,\"error\":\"store unavailable, retry later\"}");
    }
}

/* Whether channel c's webhook secret also verifies this body (the events
 * of one app's webhook must belong to that app's channels). */
static bool same_app(const req *r, const ef_channel *c)
{
    if (c == r->ch || !r->platform->verify_needs_body)
        return true;
    ef_http_req hr = {.post = true, .auth = r->auth, .body = r->body.data, .len = r->body.len};
    return ef_platform_verify(c->ops, c->cfg, &hr) == 0;
}

/* Stamps every event with its integration: the route's channel, or for a
 * platform whose one URL serves many channels, the channel each event
 * names. Returns false (with why) when an event names a channel nobody
 * serves here: the request is refused, never acknowledged and dropped. */
static bool route_events(ef_server *srv, req *r, ef_msg_list *msgs, char *why, size_t whylen)
{
    for (size_t i = 0; i < msgs->n; i++) {
        ef_msg *m = msgs->items[i];
        ef_channel *c = r->platform->policy.route_by_key
                            ? ef_channels_by_key(srv->opts.channels, r->platform, m->channel_id)
                            : ef_channel_ref(r->ch);
        if (!c || !same_app(r, c)) {
            snprintf(why, whylen,
                     "%s %.64s is not configured here (add it with `easyflow "
                     "integration add %s`)",
                     r->platform->name, m->channel_id ? m->channel_id : "(none)",
                     r->platform->name);
            ef_channel_unref(c);
            return false;
        }
        ef_free(m->integration_id);
        m->integration_id = ef_strdup(c->id);
        m->read_receipt = c->policy.read_receipts;
        ef_channel_unref(c);
    }
    return true;
}

/* Verification that needs the raw body (an HMAC): the route's channel,
 * else (one URL for many channels) the first channel whose secret signs
 * it; r->ch gets that channel. */
static bool verify_body(ef_server *srv, req *r)
{
    ef_http_req hr = {.post = true, .auth = r->auth, .body = r->body.data, .len = r->body.len};
    if (r->ch)
        return ef_platform_verify(r->platform, r->ch->cfg, &hr) == 0;
    ef_channel **list = NULL;
    size_t n = ef_channels_list(srv->opts.channels, r->platform, &list);
    for (size_t i = 0; i < n && !r->ch; i++)
        if (ef_platform_verify(r->platform, list[i]->cfg, &hr) == 0)
            r->ch = ef_channel_ref(list[i]);
    ef_channels_list_free(list, n);
    return r->ch != NULL;
}

static void webhook_body_done(req *r)
{
    ef_server *srv = r->srv;
    const ef_platform_ops *p = r->platform;
    ef_metric_platform mp = ef_metrics_platform(p->name);
    if (r->too_large) {
        reject(r, 413, EF_REJ_TOO_LARGE, "body larger than the limit");
        return;
    }
    if (refuse_if_saturated(r))
        return;
    /* Signed platforms: the signature covers the raw bytes as received, so
     * it is checked before anything is parsed. */
    if (p->verify_needs_body && !verify_body(srv, r)) {
        char why[160];
        snprintf(why, sizeof(why), "%s %s", r->auth ? "the body does not match" : "missing",
                 p->auth_header);
        reject(r, 401, EF_REJ_BAD_SIGNATURE, why);
        return;
    }
    char err[160] = "";
    json_object *root = NULL;
    int rc = ef_json_parse_limits(r->body.data ? r->body.data : "", r->body.len, &srv->opts.json,
                                  &root, err, sizeof(err));
    if (rc == EF_EUTF8) {
        reject(r, 400, EF_REJ_BAD_UTF8, err[0] ? err : "invalid UTF-8");
        return;
    }
    if (rc == EF_ELIMIT) {
        reject(r, 400, EF_REJ_TOO_DEEP, err[0] ? err : "JSON beyond the size limits");
        return;
    }
    if (rc) {
        reject(r, 400, EF_REJ_BAD_JSON, err[0] ? err : "invalid JSON");
        return;
    }
    ef_msg_list msgs;
    ef_msg_list_init(&msgs);
    ef_parse_info info;
    memset(&info, 0, sizeof(info));
    rc = ef_platform_parse(p, root, &msgs, &info);
    json_object_put(root);
    if (rc) {
        char why[400];
        snprintf(why, sizeof(why), "not a %s update: %s", p->name,
                 info.note[0] ? info.note : "malformed payload");
        reject(r, 400, EF_REJ_BAD_PAYLOAD, why);
        ef_msg_list_cleanup(&msgs);
        return;
    }
    char why[300];
    if (!route_events(srv, r, &msgs, why, sizeof(why))) {
        reject(r, 422, EF_REJ_NO_CHANNEL, why);
        ef_msg_list_cleanup(&msgs);
        return;
    }
    ef_buf_cleanup(&r->body);
    snprintf(r->what, sizeof(r->what), "%s", info.what[0] ? info.what : "-");
    r->update_id = info.update_id;
    ef_metrics_add(mp, EF_M_RECEIVED, 1);
    if (msgs.n == 0 && info.refused) {
        snprintf(why, sizeof(why), "%zu event(s) refused: %.200s", info.refused, info.note);
        reject(r, 422, EF_REJ_BAD_PAYLOAD, why);
        ef_msg_list_cleanup(&msgs);
        return;
    }
    if (info.refused)
        EF_LOG(EF_LOG_WARN, EF_C_HTTP, "update=%lld %zu event(s) refused, the others go on: %s",
               (long long)info.update_id, info.refused, info.note);
    if (msgs.n == 0) {
        ef_metrics_add(mp, info.unknown_type ? EF_M_UNKNOWN_TYPE : EF_M_IGNORED, 1);
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "status=200 update=%lld what=%s ignored: %s",
               (long long)info.update_id, r->what, info.note[0] ? info.note : "nothing to store");
        ef_msg_list_cleanup(&msgs);
        respond_json(r, 200, "{\"ok\":true}");
        return;
    }
    r->job = ef_job_new(&msgs, job_done, r);
    r->job_pending = true;
    r->deadline_ms = ef_now_ms() + srv->opts.request_timeout_ms;
    r->next_wait = srv->wait_head;
    if (srv->wait_head)
        srv->wait_head->prev_wait = r;
    srv->wait_head = r;
    srv->in_flight++;
    /* Keep lws from timing the connection out while the commit runs. */
    if (r->wsi)
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, srv->opts.request_timeout_ms / 1000 + 5);
    ef_pipeline_submit(srv->opts.pipe, r->job);
}

/* ---- /api/v1 ------------------------------------------------------------ */

static void finish_api(req *r)
{
    ef_api_out o = ef_api_call_result(r->call);
    r->hdr_name = o.header_name;
    r->hdr_value = o.header_value;
    respond(r, o.status, "application/json", o.body, o.len);
}

/* Runs on a work-pool thread: like job_done. */
static void api_done(void *ud)
{
    queue_done(ud);
}

/* The body is complete (or there is none): the API decides now, or later
 * through api_done. */
static void api_start(req *r)
{
    ef_server *srv = r->srv;
    if (r->api_started)
        return;
    r->api_started = true;
    if (srv->draining) {
        r->rejected = true;
        respond_json(r, 503, "{\"error\":\"shutting down\"}");
        return;
    }
    if (ef_api_call_start(r->call, r->body.data ? r->body.data : "", r->body.len, r->too_large,
                          api_done, r) == 1) {
        finish_api(r);
        return;
    }
    r->job_pending = true;
    r->deadline_ms = ef_now_ms() + srv->opts.request_timeout_ms;
    r->next_wait = srv->wait_head;
    if (srv->wait_head)
        srv->wait_head->prev_wait = r;
    srv->wait_head = r;
    srv->in_flight++;
    if (r->wsi)
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, srv->opts.request_timeout_ms / 1000 + 5);
}

static const char *method_name(int method)
{
    switch (method) {
    case LWSHUMETH_GET:
        return "GET";
    case LWSHUMETH_POST:
        return "POST";
    case LWSHUMETH_PUT:
        return "PUT";
    case LWSHUMETH_PATCH:
        return "PATCH";
    case LWSHUMETH_DELETE:
        return "DELETE";
    case LWSHUMETH_OPTIONS:
        return "OPTIONS";
    case LWSHUMETH_HEAD:
        return "HEAD";
    default:
        return "OTHER";
    }
}

/* A header's value as a new string (NULL: absent or longer than max). */
static char *header_dup(struct lws *wsi, enum lws_token_indexes h, int max)
{
    int n = lws_hdr_total_length(wsi, h);
    if (n <= 0 || n > max)
        return NULL;
    char *v = ef_malloc((size_t)n + 1);
    if (lws_hdr_copy(wsi, v, n + 1, h) < 0) {
        ef_free(v);
        return NULL;
    }
    return v;
}

/* Copies what the API needs of the request into r->call. */
static void api_begin(ef_server *srv, struct lws *wsi, req *r, int method, const char *uri)
{
    char frags[16][512];
    const char *args[16];
    size_t nargs = 0;
    for (int i = 0; nargs < 16; i++) {
        int n =
            lws_hdr_copy_fragment(wsi, frags[nargs], sizeof(frags[0]), WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        args[nargs] = frags[nargs];
        nargs++;
    }
    char ip[64] = "";
    lws_get_peer_simple(wsi, ip, sizeof(ip));
    char *authz = header_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, 2048);
    char *ua = header_dup(wsi, WSI_TOKEN_HTTP_USER_AGENT, 512);
    ef_api_in in = {.method = method_name(method),
                    .path = uri,
                    .args = args,
                    .nargs = nargs,
                    .authorization = authz,
                    .ip = ip,
                    .user_agent = ua};
    r->call = ef_api_call_new(srv->opts.api, &in);
    ef_free(authz);
    ef_free(ua);
    ef_buf_cleanup(&r->body);
    ef_buf_init(&r->body, EF_API_MAX_BODY);
}

/* Runs on the service thread: hands finished jobs to their connections. */
static void drain_done(ef_server *srv)
{
    pthread_mutex_lock(&srv->done_lock);
    req *list = srv->done_head;
    srv->done_head = NULL;
    pthread_mutex_unlock(&srv->done_lock);
    while (list) {
        req *r = list;
        list = r->next_done;
        r->job_pending = false;
        wait_unlink(srv, r);
        srv->in_flight--;
        if (r->wsi && !r->ready && r->call)
            finish_api(r);
        else if (r->wsi && !r->ready)
            finish_webhook(r);
        ef_job_free(r->job);
        r->job = NULL;
        if (!r->wsi)
            req_free(r);
    }
}

static void sweep_timeouts(ef_server *srv)
{
    int64_t now = ef_now_ms();
    for (req *r = srv->wait_head; r; r = r->next_wait) {
        if (!r->ready && r->wsi && now > r->deadline_ms) {
            if (r->platform)
                ef_metrics_reject(ef_metrics_platform(r->platform->name), EF_REJ_TIMEOUT);
            if (r->call) {
                EF_LOG(EF_LOG_WARN, EF_C_HTTP, "status=503 api reason=\"no answer within %d ms\"",
                       srv->opts.request_timeout_ms);
                respond_json(r, 503, "{\"error\":\"store too slow, retry later\"}");
                continue;
            }
            EF_LOG(EF_LOG_WARN, EF_C_HTTP,
                   "status=503 update=%lld reason=\"commit took longer than %d ms\"",
                   (long long)r->update_id, srv->opts.request_timeout_ms);
            /* Nobody will be acknowledged for this job any more: events no
             * worker has taken yet are dropped, not committed for nothing. */
            ef_job_abandon(r->job);
            r->hdr_name = "retry-after:";
            r->hdr_value = "1";
            respond_json(r, 503, "{\"ok\":false,\"error\":\"store too slow, retry later\"}");
        }
    }
}

static void sweep_deadlines(ef_server *srv);

static void on_tick(lws_sorted_usec_list_t *sul)
{
    ef_server *srv = lws_container_of(sul, ef_server, tick);
    drain_done(srv);
    sweep_timeouts(srv);
    sweep_deadlines(srv);
    if (srv->opts.ws)
        ef_ws_tick(srv->opts.ws);
    lws_sul_schedule(srv->ctx, 0, &srv->tick, on_tick, TICK_US);
}

/* ---- /console (static.h) ------------------------------------------------ */

static void serve_static(ef_server *srv, struct lws *wsi, req *r, const char *uri)
{
    const ef_static_file *f = ef_static_find(srv->opts.web, uri);
    if (!f) {
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "status=404 path=\"%.100s\"", uri);
        respond(r, 404, "text/plain; charset=utf-8", "not found\n", 10);
        return;
    }
    r->file = f;
    char inm[256];
    if (lws_hdr_copy(wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0 &&
        ef_static_not_modified(f, inm)) {
        respond(r, 304, f->ctype, "", 0);
        return;
    }
    respond(r, 200, f->ctype, f->body, f->len);
}

static int static_headers(struct lws *wsi, const ef_static_file *f, unsigned char **p,
                          unsigned char *end)
{
    static const char *const fixed[][2] = {
        {"cache-control:", "no-cache"},
        {"x-content-type-options:", "nosniff"},
        {"content-security-policy:", "default-src 'self'; frame-ancestors 'none'"},
        {"referrer-policy:", "no-referrer"}};
    if (lws_add_http_header_by_name(wsi, (const unsigned char *)"etag:",
                                    (const unsigned char *)f->etag, (int)strlen(f->etag), p, end))
        return -1;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)fixed[i][0],
                                        (const unsigned char *)fixed[i][1],
                                        (int)strlen(fixed[i][1]), p, end))
            return -1;
    return 0;
}

/* ---- connections: caps and the request deadline ------------------------ */

static ip_count *ip_find(ef_server *srv, const char *ip)
{
    for (size_t i = 0; i < srv->nips; i++)
        if (strcmp(srv->ips[i].ip, ip) == 0)
            return &srv->ips[i];
    return NULL;
}

/* Forgets a counted connection (closed, or being closed for the cap). */
static void conn_uncount(ef_server *srv, conn *c)
{
    if (!c->counted)
        return;
    c->counted = false;
    srv->conns--;
    ip_count *n = ip_find(srv, c->ip);
    if (n && --n->n == 0)
        *n = srv->ips[--srv->nips];
}

/* The total cap is reached: the oldest idle connection (no request under
 * way: between keep-alive requests, or its headers not complete yet) is
 * closed to make room. true when one was found. */
static bool evict_oldest_idle(ef_server *srv)
{
    for (conn *o = srv->conn_head; o; o = o->next) {
        if (o->counted && !o->ws && (!o->ps || !o->ps->r)) {
            conn_uncount(srv, o);
            lws_set_timeout(o->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            return true;
        }
    }
    return false;
}

/* A new connection, just accepted. Caps: beyond EF_MAX_CONNECTIONS_PER_IP
 * from its address, the new connection is closed at once (nothing was read
 * yet, so there is nothing to answer); at EF_MAX_CONNECTIONS in total, the
 * oldest idle connection is closed first, and only when every connection
 * has a request under way is the new one closed. */
static int conn_open(ef_server *srv, struct lws *wsi)
{
    char ip[48] = "";
    lws_get_peer_simple(wsi, ip, sizeof(ip));
    ip_count *n = ip_find(srv, ip);
    if (n && n->n >= srv->opts.max_conns_per_ip) {
        EF_LOG(EF_LOG_WARN, EF_C_HTTP, "connection refused: %zu open from this address", n->n);
        return -1;
    }
    if (srv->conns >= srv->opts.max_conns && !evict_oldest_idle(srv)) {
        EF_LOG(EF_LOG_WARN, EF_C_HTTP, "connection refused: %zu open, none idle", srv->conns);
        return -1;
    }
    if (!n) {
        srv->ips = ef_realloc(srv->ips, (srv->nips + 1) * sizeof(*srv->ips));
        n = &srv->ips[srv->nips++];
        snprintf(n->ip, sizeof(n->ip), "%s", ip);
        n->n = 0;
    }
    n->n++;
    srv->conns++;
    conn *c = ef_calloc(1, sizeof(*c));
    c->wsi = wsi;
    c->counted = true;
    c->accepted_ms = ef_now_ms();
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    c->prev = srv->conn_tail;
    if (srv->conn_tail)
        srv->conn_tail->next = c;
    else
        srv->conn_head = c;
    srv->conn_tail = c;
    lws_set_opaque_user_data(wsi, c);
    return 0;
}

static void conn_close(ef_server *srv, struct lws *wsi)
{
    conn *c = lws_get_opaque_user_data(wsi);
    if (!c)
        return;
    lws_set_opaque_user_data(wsi, NULL);
    conn_uncount(srv, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conn_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        srv->conn_tail = c->prev;
    ef_free(c);
}

/* The session data lws binds (ps) or drops (NULL) for a connection. */
static void conn_bind(struct lws *wsi, pss *ps)
{
    conn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (c)
        c->ps = ps;
}

/* When a new request's headers and body must be complete: its
 * connection's accept plus the deadline for the first request; for a later
 * one on a kept-alive connection, its headers' arrival plus the deadline
 * (the headers then are bounded by lws's keep-alive timeout, the same
 * number of seconds). */
static void request_deadline(ef_server *srv, struct lws *wsi, req *r)
{
    conn *c = lws_get_opaque_user_data(wsi);
    int64_t from = c && !c->requested ? c->accepted_ms : r->started_us / 1000;
    if (c)
        c->requested = true;
    r->read_by_ms = from + srv->opts.request_deadline_ms;
}

/* One deadline per request, not per read (request_deadline): a
 * connection whose first request's headers have not arrived by then is
 * closed; a body not complete by then gets 408 and the connection is
 * closed. */
static void sweep_deadlines(ef_server *srv)
{
    int64_t now = ef_now_ms();
    for (conn *c = srv->conn_head; c; c = c->next) {
        if (!c->requested && !c->killed && now - c->accepted_ms > srv->opts.request_deadline_ms) {
            EF_LOG(EF_LOG_INFO, EF_C_HTTP, "closed: no request headers within %d ms",
                   srv->opts.request_deadline_ms);
            c->killed = true;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            continue;
        }
        req *r = c->ps ? c->ps->r : NULL;
        if (!r || r->ready || !r->body_expected || r->body_done || now <= r->read_by_ms)
            continue;
        EF_LOG(EF_LOG_WARN, EF_C_HTTP, "status=408 reason=\"body not complete within %d ms\"",
               srv->opts.request_deadline_ms);
        r->rejected = true;
        respond_json(r, 408, "{\"ok\":false,\"error\":\"request not complete in time\"}");
    }
}

/* ---- the lws callback --------------------------------------------------- */

/* The adapter whose webhook path uri is (or starts, with "/<id>"). */
static const ef_platform_ops *webhook_platform(const char *uri, const char **sub)
{
    for (const ef_platform_ops *const *p = ef_platforms; *p; p++) {
        if (!((*p)->supports & EF_PLAT_WEBHOOK))
            continue;
        size_t n = strlen((*p)->webhook_path);
        if (strncmp(uri, (*p)->webhook_path, n) == 0 && (uri[n] == '\0' || uri[n] == '/')) {
            *sub = uri + n;
            return *p;
        }
    }
    return NULL;
}

static route find_route(ef_server *srv, int method, const char *uri, req *r)
{
    if (strcmp(uri, "/livez") == 0)
        return method == LWSHUMETH_GET ? R_LIVEZ : R_BAD_METHOD;
    if (strcmp(uri, "/healthz") == 0 || strcmp(uri, "/readyz") == 0)
        return method == LWSHUMETH_GET ? R_HEALTHZ : R_BAD_METHOD;
    if (strcmp(uri, "/metrics") == 0)
        return method == LWSHUMETH_GET ? R_METRICS : R_BAD_METHOD;
    size_t api_len = strlen(EF_API_PREFIX);
    if (srv->opts.api && strncmp(uri, EF_API_PREFIX, api_len) == 0 &&
        (uri[api_len] == '\0' || uri[api_len] == '/'))
        return R_API;
    if (srv->opts.web && ef_static_handles(uri))
        return method == LWSHUMETH_GET ? R_STATIC : R_BAD_METHOD;
    const char *sub = "";
    r->platform = webhook_platform(uri, &sub);
    if (!r->platform)
        return R_NOT_FOUND;
    snprintf(r->sub, sizeof(r->sub), "%s", strcmp(sub, "/") == 0 ? "" : sub);
    if (method == LWSHUMETH_GET && r->platform->handshake && !r->sub[0])
        return R_HANDSHAKE;
    return method == LWSHUMETH_POST ? R_WEBHOOK : R_BAD_METHOD;
}

/* The request header the adapter verifies, as a new string (NULL: absent). */
static char *auth_header(struct lws *wsi, const char *name)
{
    char hname[80], val[512];
    snprintf(hname, sizeof(hname), "%s:", name);
    int n = lws_hdr_custom_length(wsi, hname, (int)strlen(hname));
    if (n <= 0 || n >= (int)sizeof(val) ||
        lws_hdr_custom_copy(wsi, val, sizeof(val), hname, (int)strlen(hname)) < 0)
        return NULL;
    return ef_strdup(val);
}

/* The channel a webhook request is for, and the checks that need no body:
 * 0, or the status it was refused with (answered already). */
static int webhook_begin(ef_server *srv, struct lws *wsi, req *r)
{
    const ef_platform_ops *p = r->platform;
    r->auth = auth_header(wsi, p->auth_header);
    if (!ef_channels_ready(srv->opts.channels)) {
        r->rejected = true;
        reject(r, 503, EF_REJ_UNAVAILABLE,
               "integrations not loaded yet (PostgreSQL unavailable), retry later");
        return 503;
    }
    if (!r->sub[0] && refuse_unconfigured(srv, r))
        return 404;
    if (!p->policy.route_by_key || r->sub[0]) {
        r->ch = ef_channels_route(srv->opts.channels, p, r->sub);
        if (!r->ch || !r->ch->policy.receive_webhook) {
            r->rejected = true;
            reject(r, 404, EF_REJ_NO_CHANNEL,
                   r->ch ? "this integration long-polls: its webhook is not served"
                         : "no enabled integration serves this webhook URL");
            return 404;
        }
    }
    if (!p->verify_needs_body) {
        ef_http_req hr = {.post = true, .auth = r->auth};
        if (ef_platform_verify(p, r->ch->cfg, &hr) != 0) {
            r->rejected = true;
            char why[160];
            snprintf(why, sizeof(why), "missing or wrong %s", p->auth_header);
            reject(r, 401, EF_REJ_BAD_SECRET, why);
            return 401;
        }
    }
    return 0;
}

/* How the body is framed: a Content-Length (*clen; 0: no body) or
 * nothing. Chunked or otherwise encoded bodies are refused with 411 (the
 * platforms send Content-Length), a malformed length with 400: true when
 * refused, answered at once and closed since the body cannot be skipped. */
static bool refuse_framing(struct lws *wsi, req *r, unsigned long long *clen)
{
    char cl[32];
    *clen = 0;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        r->body_expected = true;
        r->rejected = true;
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "status=411 reason=\"Transfer-Encoding body\"");
        respond_json(r, 411,
                     "{\"ok\":false,\"error\":\"chunked or encoded request bodies are not "
                     "accepted: send the body with a Content-Length\"}");
        return true;
    }
    int n = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n == 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) == 0)
        return false;
    char *end = NULL;
    if (n > 0 && cl[0] >= '0' && cl[0] <= '9')
        *clen = strtoull(cl, &end, 10);
    if (n <= 0 || !end || *end != '\0') {
        r->body_expected = true;
        r->rejected = true;
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "status=400 reason=\"malformed Content-Length\"");
        respond_json(r, 400, "{\"ok\":false,\"error\":\"malformed Content-Length\"}");
        return true;
    }
    r->body_expected = *clen > 0;
    return false;
}

static int on_http(ef_server *srv, struct lws *wsi, pss *ps)
{
    char *uri_ptr = NULL;
    int uri_len = 0;
    int method = lws_http_get_uri_and_method(wsi, &uri_ptr, &uri_len);
    char uri[256];
    snprintf(uri, sizeof(uri), "%.*s", uri_len > 0 ? uri_len : 0, uri_ptr ? uri_ptr : "");

    req *r = req_new(srv, wsi);
    ps->r = r;
    request_deadline(srv, wsi, r);
    r->route = find_route(srv, method, uri, r);
    unsigned long long clen = 0;
    if (refuse_framing(wsi, r, &clen))
        return 0;
    switch (r->route) {
    case R_LIVEZ:
        respond_json(r, 200, "{\"status\":\"ok\"}");
        return 0;
    case R_HEALTHZ:
        serve_healthz(r);
        return 0;
    case R_METRICS:
        serve_metrics(r);
        return 0;
    case R_HANDSHAKE:
        serve_handshake(srv, wsi, r);
        return 0;
    case R_STATIC:
        serve_static(srv, wsi, r, uri);
        return 0;
    case R_API:
        api_begin(srv, wsi, r, method, uri);
        if (clen > EF_API_MAX_BODY)
            r->too_large = true; /* 413 at once, the body unread */
        if (!r->body_expected || r->too_large)
            api_start(r);
        return 0;
    case R_NOT_FOUND:
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "status=404 path=\"%.100s\"", uri);
        r->rejected = true;
        respond_json(r, 404, "{\"ok\":false,\"error\":\"not found\"}");
        return 0;
    case R_BAD_METHOD:
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "status=405 path=\"%.100s\"", uri);
        r->allow = r->platform && r->platform->handshake ? "GET, POST"
                   : r->platform                         ? "POST"
                                                         : "GET";
        r->rejected = true;
        respond_json(r, 405, "{\"ok\":false,\"error\":\"method not allowed\"}");
        return 0;
    default:
        break;
    }
    /* A webhook. Checks that need no body come first. */
    if (webhook_begin(srv, wsi, r) != 0)
        return 0;
    if (srv->draining) {
        r->rejected = true;
        reject(r, 503, EF_REJ_UNAVAILABLE, "shutting down");
        return 0;
    }
    if (refuse_if_saturated(r))
        return 0;
    if (clen > srv->opts.max_body) {
        r->too_large = true;
        r->rejected = true;
        webhook_body_done(r); /* 413 at once, the body unread */
        return 0;
    }
    if (!r->body_expected)
        webhook_body_done(r); /* empty body: refused as invalid JSON */
    return 0;
}

static int on_writeable(struct lws *wsi, req *r)
{
    if (!r || !r->ready)
        return 0;
    unsigned char hdr[LWS_PRE + 1024];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
    if (lws_add_http_common_headers(wsi, (unsigned int)r->status, r->ctype, r->resp_len, &p, end))
        return -1;
    if (r->allow && lws_add_http_header_by_name(
                        wsi, (const unsigned char *)"allow:", (const unsigned char *)r->allow,
                        (int)strlen(r->allow), &p, end))
        return -1;
    if (r->hdr_name && r->hdr_value && r->hdr_value[0] &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)r->hdr_name,
                                    (const unsigned char *)r->hdr_value, (int)strlen(r->hdr_value),
                                    &p, end))
        return -1;
    if (r->file && static_headers(wsi, r->file, &p, end))
        return -1;
    if (r->close_after && lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                                      (const unsigned char *)"close", 5, &p, end))
        return -1;
    if (lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (r->resp_len && lws_write(wsi, (unsigned char *)r->resp + LWS_PRE, r->resp_len,
                                 LWS_WRITE_HTTP_FINAL) != (int)r->resp_len)
        return -1;
    return 1; /* transaction complete */
}

static void detach(ef_server *srv, pss *ps)
{
    if (!ps) /* lws closes connections that never got session data */
        return;
    req *r = ps->r;
    ps->r = NULL;
    if (!r)
        return;
    r->wsi = NULL;
    srv->active--;
    /* A webhook whose connection closed before its answer: nobody can be
     * acknowledged, so its untaken events are dropped (redelivered). */
    if (r->job_pending && r->job)
        ef_job_abandon(r->job);
    if (!r->job_pending)
        req_free(r);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    ef_server *srv = vh ? lws_get_vhost_user(vh) : NULL;
    pss *ps = user;

    switch (reason) {
    case LWS_CALLBACK_HTTP:
        if (!srv || !ps)
            return -1;
        if (ps->r) /* keep-alive: the previous transaction's leftovers */
            detach(srv, ps);
        conn_bind(wsi, ps);
        return on_http(srv, wsi, ps);

    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        return srv ? conn_open(srv, wsi) : 0;

    case LWS_CALLBACK_WSI_DESTROY:
        if (srv)
            conn_close(srv, wsi);
        return 0;

    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
        if (srv && ps)
            detach(srv, ps);
        conn_bind(wsi, NULL);
        break;

    case LWS_CALLBACK_HTTP_BODY:
        if (!ps || !ps->r || ps->r->rejected || ps->r->ready)
            return 0; /* answered already: the connection closes */
        if (ps->r->too_large)
            return 0;
        if (ef_buf_append(&ps->r->body, in, len) == EF_ELIMIT) {
            ps->r->too_large = true;
            ef_buf_cleanup(&ps->r->body);
        }
        return 0;

    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (!ps || !ps->r)
            return -1;
        ps->r->body_done = true;
        if (ps->r->ready) { /* decided before the body: send it now */
            lws_callback_on_writable(wsi);
            return 0;
        }
        if (ps->r->route == R_WEBHOOK)
            webhook_body_done(ps->r);
        else if (ps->r->route == R_API)
            api_start(ps->r);
        return 0;

    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!ps)
            return -1;
        int rc = on_writeable(wsi, ps->r);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            if (ps->r->route == R_WEBHOOK)
                ef_metrics_webhook((double)(ef_now_us() - ps->r->started_us) / 1e6);
            bool close_now = ps->r->close_after;
            detach(srv, ps);
            /* An unread body: close (lws shuts the socket down for
             * writing after the answer, then closes it). */
            if (close_now || lws_http_transaction_completed(wsi))
                return -1;
        }
        return 0;
    }

    case LWS_CALLBACK_CLOSED_HTTP:
        if (srv)
            detach(srv, ps);
        conn_bind(wsi, NULL);
        return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (srv)
            drain_done(srv);
        return 0;

    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return 1; /* an upgrade without one of our subprotocols (ws.h) */

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* The WebSocket protocols (ws.c): the connection bookkeeping stays here,
 * the rest is ws.c's. */
static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct lws_vhost *vh = lws_get_vhost(wsi);
    ef_server *srv = vh ? lws_get_vhost_user(vh) : NULL;
    if (!srv || !srv->opts.ws)
        return reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION ? 1 : 0;
    if (reason == LWS_CALLBACK_WSI_DESTROY) {
        conn_close(srv, wsi);
        return 0;
    }
    if (reason == LWS_CALLBACK_ESTABLISHED) {
        conn *c = lws_get_opaque_user_data(wsi);
        if (c) {
            c->requested = true;
            c->ws = true;
        }
    }
    return ef_ws_callback(srv->opts.ws, wsi, (int)reason, user, in, len);
}

static void protocols_init(ef_server *srv)
{
    srv->protocols[0] = (struct lws_protocols){"http", callback, sizeof(pss), 0, 0, NULL, 0};
    if (srv->opts.ws) {
        srv->protocols[1] = (struct lws_protocols){
            EF_WS_CONSOLE_PROTOCOL, ws_callback, sizeof(void *), EF_WS_FRAME_MAX, 0, NULL, 0};
        srv->protocols[2] = (struct lws_protocols){
            EF_WS_CHAT_PROTOCOL, ws_callback, sizeof(void *), EF_WS_FRAME_MAX, 0, NULL, 0};
    }
}

/* lws logs through EF_LOG (component http). */
static void lws_emit(int level, const char *line)
{
    ef_log_level l = level == LLL_ERR    ? EF_LOG_ERROR
                     : level == LLL_WARN ? EF_LOG_WARN
                                         : EF_LOG_DEBUG;
    EF_LOG(l, EF_C_HTTP, "lws: %.*s", (int)strcspn(line, "\n"), line);
}

/* ---- lifecycle ---------------------------------------------------------- */

ef_server *ef_server_new(const ef_server_opts *opts, char *err, size_t errlen)
{
    char host[128];
    int port;
    if (ef_config_parse_listen(opts->listen, host, sizeof(host), &port)) {
        snprintf(err, errlen, "EF_LISTEN: expected host:port, got \"%s\"", opts->listen);
        return NULL;
    }
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_emit);

    ef_server *srv = ef_calloc(1, sizeof(*srv));
    srv->opts = *opts;
    pthread_mutex_init(&srv->done_lock, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = port;
    info.iface = host;
    protocols_init(srv);
    info.protocols = srv->protocols;
    info.user = srv;
    srv->loop = ev_loop_new(EVFLAG_AUTO);
    if (!srv->loop) {
        snprintf(err, errlen, "cannot create the event loop");
        goto fail;
    }
    void *loops[1] = {srv->loop};
    info.foreign_loops = loops;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_LIBEV;
    info.max_http_header_data = 8192;
    info.max_http_header_pool = 1024;
    /* lws's own timeouts (headers, per read) no longer than the request
     * deadline, which sweep_deadlines enforces for the body as a whole. */
    info.timeout_secs = (unsigned int)(opts->request_deadline_ms + 999) / 1000;
    info.keepalive_timeout = (int)info.timeout_secs;
    srv->ctx = lws_create_context(&info);
    if (!srv->ctx) {
        snprintf(err, errlen, "cannot create the HTTP server context");
        goto fail;
    }
    srv->vhost = lws_create_vhost(srv->ctx, &info);
    if (!srv->vhost) {
        snprintf(err, errlen, "cannot listen on %s (address in use or not available)",
                 opts->listen);
        goto fail;
    }
    srv->port = lws_get_vhost_listen_port(srv->vhost);
    if (opts->ws)
        ef_ws_set_context(opts->ws, srv->ctx);
    lws_sul_schedule(srv->ctx, 0, &srv->tick, on_tick, TICK_US);
    return srv;
fail:
    ef_server_free(srv);
    return NULL;
}

int ef_server_port(const ef_server *srv)
{
    return srv->port;
}

int ef_server_run(ef_server *srv, volatile sig_atomic_t *stop, int drain_timeout_ms)
{
    int64_t drain_deadline = 0;
    for (;;) {
        if (*stop && !srv->draining) {
            srv->draining = true;
            drain_deadline = ef_now_ms() + drain_timeout_ms;
            EF_LOG(EF_LOG_INFO, EF_C_MAIN, "draining in_flight=%zu active=%zu", srv->in_flight,
                   srv->active);
        }
        if (srv->draining) {
            drain_done(srv);
            /* Done when no commit is under way and every request that had
             * started (a body still arriving included) got its answer. */
            if ((srv->in_flight == 0 && srv->active == 0) || ef_now_ms() > drain_deadline)
                break;
        }
        ev_run(srv->loop, EVRUN_ONCE);
    }
    /* Give the answers just decided a moment to reach their sockets. */
    int64_t flush_until = ef_now_ms() + 300;
    while (ef_now_ms() < flush_until)
        ev_run(srv->loop, EVRUN_ONCE);
    if (srv->in_flight || srv->active)
        EF_LOG(EF_LOG_WARN, EF_C_MAIN,
               "drain timed out: %zu commits under way, %zu requests unanswered", srv->in_flight,
               srv->active);
    return 0;
}

void ef_server_free(ef_server *srv)
{
    if (!srv)
        return;
    if (srv->opts.ws)
        ef_ws_set_context(srv->opts.ws, NULL);
    if (srv->ctx)
        lws_context_destroy(srv->ctx);
    if (srv->loop)
        ev_loop_destroy(srv->loop);
    /* Jobs still in flight belong to the pipeline, which the caller stops
     * (running their callbacks) before freeing us; what is left here are
     * finished requests whose connections are gone. */
    drain_done(srv);
    pthread_mutex_destroy(&srv->done_lock);
    ef_free(srv->ips);
    ef_free(srv);
}
