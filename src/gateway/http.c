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
 * A request whose connection closes while its job is in flight is kept
 * until the job finishes (the commit still happens; the platform's
 * redelivery will then be answered as a duplicate).
 */
#include "gateway/http.h"

#include "base/crypto.h"
#include "gateway/config.h"
#include "gateway/metrics.h"
#include "platforms/platform.h"

#include <json-c/json.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_SECRET_HEADER "x-telegram-bot-api-secret-token:"
#define TICK_US (100 * LWS_US_PER_MS)

typedef enum route {
    R_NONE = 0,
    R_HEALTHZ,
    R_METRICS,
    R_TG_WEBHOOK,
    R_WA_WEBHOOK,
    R_WA_VERIFY,
    R_NOT_FOUND,
    R_BAD_METHOD
} route;

typedef struct req req;
struct req {
    ef_server *srv;
    struct lws *wsi; /* NULL once the connection closed */
    route route;
    const ef_platform_ops *platform;
    ef_buf body;
    bool too_large;
    bool rejected;      /* status decided before the body (drained, then answered) */
    bool body_expected; /* a POST with a body: answer only after reading it */
    bool body_done;
    /* The response, once decided. */
    int status;
    const char *ctype;
    const char *allow; /* Allow: header for 405 */
    char *resp;        /* LWS_PRE bytes of headroom, then resp_len bytes */
    size_t resp_len;
    bool ready;
    /* Pipeline state. */
    ef_job *job;
    bool job_pending;
    int64_t deadline_ms;
    int64_t started_ms;
    char what[64];
    int64_t update_id;
    req *next_done;
    req *prev_wait, *next_wait;
    char *signature; /* the signature header's value, checked after the body */
};

typedef struct pss {
    req *r;
} pss;

struct ef_server {
    ef_server_opts opts;
    char *tg_secret;
    char *wa_app_secret;
    char *wa_verify_token;
    char **wa_numbers; /* NULL-terminated */
    struct lws_context *ctx;
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
    bool draining;
};

/* ---- request lifetime --------------------------------------------------- */

static req *req_new(ef_server *srv, struct lws *wsi)
{
    req *r = ef_calloc(1, sizeof(*r));
    r->srv = srv;
    r->wsi = wsi;
    ef_buf_init(&r->body, srv->opts.max_body);
    r->started_ms = ef_now_ms();
    srv->active++;
    return r;
}

static void req_free(req *r)
{
    if (!r)
        return;
    ef_buf_cleanup(&r->body);
    ef_free(r->resp);
    ef_free(r->signature);
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
    if (r->wsi && (!r->body_expected || r->body_done))
        lws_callback_on_writable(r->wsi);
}

static void respond_json(req *r, int status, const char *json)
{
    respond(r, status, "application/json", json, strlen(json));
}

/* One log line per refused request, without secrets or message text. */
static void reject(req *r, int status, ef_reject_reason reason, const char *why)
{
    char body[320];
    const char *path = r->platform ? r->platform->webhook_path : "-";
    EF_LOG(EF_LOG_WARN, EF_C_HTTP, "status=%d path=%s reason=\"%s\"", status, path, why);
    if (r->platform)
        ef_metrics_reject(ef_metrics_platform(r->platform->name), reason);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(0));
    json_object_object_add(o, "error", json_object_new_string(why));
    snprintf(body, sizeof(body), "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    respond_json(r, status, body);
}

/* ---- routes ------------------------------------------------------------- */

static void serve_healthz(req *r)
{
    ef_server *srv = r->srv;
    bool pg = ef_pipeline_pg_up(srv->opts.pipe);
    bool rd = ef_pipeline_redis_up(srv->opts.pipe);
    char body[256];
    bool ok = pg && rd && !srv->draining;
    snprintf(body, sizeof(body),
             "{\"status\":\"%s\",\"postgres\":\"%s\",\"redis\":\"%s\",\"pending\":%zu%s}",
             ok ? "ok" : "unavailable", pg ? "ok" : "down", rd ? "ok" : "down",
             ef_pipeline_pending(srv->opts.pipe), srv->draining ? ",\"draining\":true" : "");
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

/* Meta's subscription check: GET ?hub.mode=subscribe&hub.verify_token=..
 * &hub.challenge=.. answered with the challenge as text/plain. */
static void serve_wa_verify(ef_server *srv, struct lws *wsi, req *r)
{
    char mode[64], token[300], challenge[300];
    const char *m = lws_get_urlarg_by_name(wsi, "hub.mode=", mode, sizeof(mode));
    const char *t = lws_get_urlarg_by_name(wsi, "hub.verify_token=", token, sizeof(token));
    const char *c = lws_get_urlarg_by_name(wsi, "hub.challenge=", challenge, sizeof(challenge));
    if (m && t && c && strcmp(m, "subscribe") == 0 && srv->wa_verify_token &&
        ef_secure_equal(t, strlen(t), srv->wa_verify_token, strlen(srv->wa_verify_token))) {
        EF_LOG(EF_LOG_INFO, EF_C_WA, "webhook verification accepted");
        respond(r, 200, "text/plain", c, strlen(c));
        return;
    }
    EF_LOG(EF_LOG_WARN, EF_C_WA,
           "status=403 path=/webhook/whatsapp reason=\"verification refused\"");
    respond(r, 403, "text/plain", "forbidden", 9);
}

static void job_done(ef_job *job, void *ud)
{
    req *r = ud;
    (void)job;
    ef_server *srv = r->srv;
    pthread_mutex_lock(&srv->done_lock);
    r->next_done = srv->done_head;
    srv->done_head = r;
    pthread_mutex_unlock(&srv->done_lock);
    lws_cancel_service(srv->ctx);
}

static void finish_webhook(req *r)
{
    const ef_job_result *res = ef_job_get_result(r->job);
    int64_t ms = ef_now_ms() - r->started_ms;
    if (res->status == 0) {
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
        respond_json(r, 503, "{\"ok\":false,\"error\":\"store unavailable, retry later\"}");
    }
}

static bool number_served(const ef_server *srv, const char *id)
{
    for (char **n = srv->wa_numbers; n && *n; n++)
        if (id && strcmp(*n, id) == 0)
            return true;
    return false;
}

/* Events that arrived for a business number this gateway does not serve
 * are acknowledged and logged, never stored. */
static void drop_unserved(ef_server *srv, ef_msg_list *msgs)
{
    size_t k = 0;
    for (size_t i = 0; i < msgs->n; i++) {
        ef_msg *m = msgs->items[i];
        if (strcmp(m->platform, "whatsapp") == 0 && !number_served(srv, m->channel_id)) {
            EF_LOG(EF_LOG_WARN, EF_C_WA, "phone_number_id=%s is not served here; %s event dropped",
                   m->channel_id ? m->channel_id : "-", ef_msg_kind_name(m->kind));
            ef_msg_free(m);
            continue;
        }
        msgs->items[k++] = m;
    }
    msgs->n = k;
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
    /* Signed platforms: the signature covers the raw bytes as received, so
     * it is checked before anything is parsed. */
    if ((p->supports & EF_PLAT_SIGNED) &&
        ef_platform_verify(p, srv->wa_app_secret, r->signature, r->body.data ? r->body.data : "",
                           r->body.len) != 0) {
        reject(r, 401, EF_REJ_BAD_SIGNATURE,
               r->signature ? "X-Hub-Signature-256 does not match the body"
                            : "missing X-Hub-Signature-256");
        return;
    }
    char err[160] = "";
    json_object *root = NULL;
    int rc = ef_json_parse(r->body.data ? r->body.data : "", r->body.len, srv->opts.json_max_depth,
                           &root, err, sizeof(err));
    if (rc == EF_EUTF8) {
        reject(r, 400, EF_REJ_BAD_UTF8, err[0] ? err : "invalid UTF-8");
        return;
    }
    if (rc == EF_ELIMIT) {
        reject(r, 400, EF_REJ_TOO_DEEP, err[0] ? err : "JSON nested too deep");
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
    ef_buf_cleanup(&r->body);
    drop_unserved(srv, &msgs);
    snprintf(r->what, sizeof(r->what), "%s", info.what[0] ? info.what : "-");
    r->update_id = info.update_id;
    ef_metrics_add(mp, EF_M_RECEIVED, 1);
    if (msgs.n == 0) {
        ef_metrics_add(mp, EF_M_IGNORED, 1);
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
        if (r->wsi && !r->ready)
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
            EF_LOG(EF_LOG_WARN, EF_C_HTTP,
                   "status=503 update=%lld reason=\"commit took longer than %d ms\"",
                   (long long)r->update_id, srv->opts.request_timeout_ms);
            respond_json(r, 503, "{\"ok\":false,\"error\":\"store too slow, retry later\"}");
        }
    }
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
    ef_server *srv = lws_container_of(sul, ef_server, tick);
    drain_done(srv);
    sweep_timeouts(srv);
    lws_sul_schedule(srv->ctx, 0, &srv->tick, on_tick, TICK_US);
}

/* ---- the lws callback --------------------------------------------------- */

static route find_route(ef_server *srv, int method, const char *uri, const ef_platform_ops **pl)
{
    *pl = NULL;
    if (strcmp(uri, "/healthz") == 0)
        return method == LWSHUMETH_GET ? R_HEALTHZ : R_BAD_METHOD;
    if (strcmp(uri, "/metrics") == 0)
        return method == LWSHUMETH_GET ? R_METRICS : R_BAD_METHOD;
    if (srv->opts.tg_webhook && strcmp(uri, ef_platform_telegram.webhook_path) == 0) {
        *pl = &ef_platform_telegram;
        return method == LWSHUMETH_POST ? R_TG_WEBHOOK : R_BAD_METHOD;
    }
    if (srv->wa_app_secret && strcmp(uri, ef_platform_whatsapp.webhook_path) == 0) {
        *pl = &ef_platform_whatsapp;
        if (method == LWSHUMETH_GET)
            return R_WA_VERIFY;
        return method == LWSHUMETH_POST ? R_WA_WEBHOOK : R_BAD_METHOD;
    }
    return R_NOT_FOUND;
}

static bool secret_ok(ef_server *srv, struct lws *wsi)
{
    if (!srv->tg_secret)
        return true;
    char got[300];
    int n = lws_hdr_custom_length(wsi, TG_SECRET_HEADER, (int)strlen(TG_SECRET_HEADER));
    if (n <= 0 || n >= (int)sizeof(got))
        return false;
    if (lws_hdr_custom_copy(wsi, got, sizeof(got), TG_SECRET_HEADER,
                            (int)strlen(TG_SECRET_HEADER)) < 0)
        return false;
    return ef_secure_equal(got, strlen(got), srv->tg_secret, strlen(srv->tg_secret));
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
    r->route = find_route(srv, method, uri, &r->platform);
    char cl[32];
    unsigned long long clen = 0;
    if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
        char *end;
        clen = strtoull(cl, &end, 10);
        if (*end != '\0')
            clen = 0;
    }
    r->body_expected = clen > 0;
    switch (r->route) {
    case R_HEALTHZ:
        serve_healthz(r);
        return 0;
    case R_METRICS:
        serve_metrics(r);
        return 0;
    case R_WA_VERIFY:
        serve_wa_verify(srv, wsi, r);
        return 0;
    case R_NOT_FOUND:
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "status=404 path=\"%.100s\"", uri);
        r->rejected = true;
        respond_json(r, 404, "{\"ok\":false,\"error\":\"not found\"}");
        return 0;
    case R_BAD_METHOD:
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "status=405 path=\"%.100s\"", uri);
        r->allow = r->platform == &ef_platform_whatsapp ? "GET, POST"
                   : r->platform                        ? "POST"
                                                        : "GET";
        r->rejected = true;
        respond_json(r, 405, "{\"ok\":false,\"error\":\"method not allowed\"}");
        return 0;
    default:
        break;
    }
    /* A webhook. Checks that need no body come first. */
    if (r->route == R_WA_WEBHOOK) {
        const char *h = ef_platform_whatsapp.signature_header;
        char hname[64];
        snprintf(hname, sizeof(hname), "%s:", h);
        char sig[200];
        int n = lws_hdr_custom_length(wsi, hname, (int)strlen(hname));
        if (n > 0 && n < (int)sizeof(sig) &&
            lws_hdr_custom_copy(wsi, sig, sizeof(sig), hname, (int)strlen(hname)) >= 0)
            r->signature = ef_strdup(sig);
    } else if (!secret_ok(srv, wsi)) {
        r->rejected = true;
        reject(r, 401, EF_REJ_BAD_SECRET, "missing or wrong X-Telegram-Bot-Api-Secret-Token");
        return 0;
    }
    if (srv->draining) {
        r->rejected = true;
        reject(r, 503, EF_REJ_UNAVAILABLE, "shutting down");
        return 0;
    }
    if (clen > srv->opts.max_body)
        r->too_large = true;
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
        return on_http(srv, wsi, ps);

    case LWS_CALLBACK_HTTP_BODY:
        if (!ps || !ps->r || ps->r->rejected || ps->r->ready)
            return 0; /* draining a refused body */
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
        if (ps->r->route == R_TG_WEBHOOK || ps->r->route == R_WA_WEBHOOK)
            webhook_body_done(ps->r);
        return 0;

    case LWS_CALLBACK_HTTP_WRITEABLE: {
        if (!ps)
            return -1;
        int rc = on_writeable(wsi, ps->r);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            detach(srv, ps);
            if (lws_http_transaction_completed(wsi))
                return -1;
        }
        return 0;
    }

    case LWS_CALLBACK_CLOSED_HTTP:
        if (srv)
            detach(srv, ps);
        return 0;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (srv)
            drain_done(srv);
        return 0;

    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {{"http", callback, sizeof(pss), 0, 0, NULL, 0},
                                                 {NULL, NULL, 0, 0, 0, NULL, 0}};

/* lws logs through EF_LOG (component http). */
static void lws_emit(int level, const char *line)
{
    ef_log_level l = level == LLL_ERR    ? EF_LOG_ERROR
                     : level == LLL_WARN ? EF_LOG_WARN
                                         : EF_LOG_DEBUG;
    EF_LOG(l, EF_C_HTTP, "lws: %.*s", (int)strcspn(line, "\n"), line);
}

/* ---- lifecycle ---------------------------------------------------------- */

static char **split_csv(const char *csv)
{
    size_t n = 0, cap = 4;
    char **out = ef_calloc(cap, sizeof(char *));
    const char *p = csv;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (*p == ' ')) {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len) {
            if (n + 1 >= cap) {
                cap *= 2;
                out = ef_realloc(out, cap * sizeof(char *));
            }
            out[n++] = ef_strndup(p, len);
        }
        p = e ? e + 1 : NULL;
    }
    out[n] = NULL;
    return out;
}

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
    srv->tg_secret = opts->tg_secret && *opts->tg_secret ? ef_strdup(opts->tg_secret) : NULL;
    srv->opts.tg_secret = srv->tg_secret;
    srv->wa_app_secret =
        opts->wa_app_secret && *opts->wa_app_secret ? ef_strdup(opts->wa_app_secret) : NULL;
    srv->wa_verify_token =
        opts->wa_verify_token && *opts->wa_verify_token ? ef_strdup(opts->wa_verify_token) : NULL;
    srv->wa_numbers = split_csv(opts->wa_numbers);
    srv->opts.wa_app_secret = srv->opts.wa_verify_token = srv->opts.wa_numbers = NULL;
    pthread_mutex_init(&srv->done_lock, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = port;
    info.iface = host;
    info.protocols = protocols;
    info.user = srv;
    info.options = LWS_SERVER_OPTION_DISABLE_IPV6 | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    info.max_http_header_data = 8192;
    info.max_http_header_pool = 1024;
    info.timeout_secs = 20;
    info.keepalive_timeout = 75;
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
        if (lws_service(srv->ctx, 0) < 0)
            break;
    }
    /* Give the answers just decided a moment to reach their sockets. */
    int64_t flush_until = ef_now_ms() + 300;
    while (ef_now_ms() < flush_until)
        lws_service(srv->ctx, 0);
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
    if (srv->ctx)
        lws_context_destroy(srv->ctx);
    /* Jobs still in flight belong to the pipeline, which the caller stops
     * (running their callbacks) before freeing us; what is left here are
     * finished requests whose connections are gone. */
    drain_done(srv);
    pthread_mutex_destroy(&srv->done_lock);
    ef_free(srv->tg_secret);
    ef_free(srv->wa_app_secret);
    ef_free(srv->wa_verify_token);
    for (char **n = srv->wa_numbers; n && *n; n++)
        ef_free(*n);
    ef_free(srv->wa_numbers);
    ef_free(srv);
}
