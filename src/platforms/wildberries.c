/*
 * wildberries.c -- a Wildberries shop as a channel: its seller API token
 * (open), the credentials check, and the FBS order sync (Marketplace API
 * v3). Buyer chats are in wildberries_chat.c.
 *
 * Credentials: {"api_token": "<JWT from the seller's cabinet>"}, sent as
 * "Authorization: Bearer <token>". Settings: "api_url" (replaces every
 * Wildberries host below; WILDBERRIES_API_URL sets it for every shop),
 * "page_size" (orders per page, 1..1000, default 1000), "chats" (off: no
 * buyer-chat polling, for a basic token's 1 request per hour),
 * "chat_poll_ms" (between event polls when idle, default 2000),
 * "sync_interval_minutes" (read by the gateway's scheduler).
 *
 * Hosts (api_url unset): marketplace-api.wildberries.ru (/ping,
 * /api/v3/orders, /api/v3/orders/status), buyer-chat-api.wildberries.ru
 * (/api/v1/seller/...).
 *
 * Order sync: GET /api/v3/orders?limit&next&dateFrom&dateTo (Unix seconds,
 * at most 30 days; the answer's "next" is the following page's cursor; a
 * page shorter than limit is the last), then POST /api/v3/orders/status
 * {"orders":[ids <= 1000]} for the listed orders and for the stored ones not
 * yet final (the list has no status and lists by creation date).
 */
#include "platforms/channel_int.h"
#include "platforms/market.h"
#include "platforms/wildberries_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WB_MARKETPLACE "https://marketplace-api.wildberries.ru"
#define WB_CHAT "https://buyer-chat-api.wildberries.ru"
#define WB_WINDOW_S (30 * 86400)
#define WB_STATUS_BATCH 1000

enum { ST_LIST = 0, ST_STATUS, ST_DONE };

static void wb_close(void *p)
{
    wb_cfg *c = p;
    if (!c)
        return;
    ef_free(c->mkt);
    ef_free(c->chat);
    if (c->auth)
        memset(c->auth, 0, strlen(c->auth));
    ef_free(c->auth);
    ef_free(c);
}

static int wb_settings(json_object *settings, ef_platform_policy *policy, int *page, char *err,
                       size_t errlen)
{
    int rc = ef_chan__common(&ef_platform_wildberries, settings, policy, err, errlen);
    if (rc)
        return rc;
    const char *chats = ef_chan__str(settings, "chats");
    if (chats && strcmp(chats, "off") == 0)
        policy->receive_poll = false; /* a basic token: 1 chat request per hour */
    int64_t n = ef_chan__int(settings, "page_size", 1000);
    int64_t every = ef_chan__int(settings, "sync_interval_minutes", 60);
    if (n < 1 || n > 1000) {
        ef_errf(err, errlen, "settings: page_size must be 1..1000");
        return EF_EINVAL;
    }
    if (every < 1 || every > 10080) {
        ef_errf(err, errlen, "settings: sync_interval_minutes must be 1..10080");
        return EF_EINVAL;
    }
    int64_t poll_ms = ef_chan__int(settings, "chat_poll_ms", 2000);
    if (poll_ms < 100 || poll_ms > 3600000) {
        ef_errf(err, errlen, "settings: chat_poll_ms must be 100..3600000");
        return EF_EINVAL;
    }
    *page = (int)n;
    return 0;
}

static int wb_open(const char *creds_json, const char *settings_json, void **out,
                   ef_platform_policy *policy, char *err, size_t errlen)
{
    json_object *creds = NULL, *settings = NULL;
    const char *token = NULL;
    int page = 1000;
    int rc = ef_chan__object(creds_json, "credentials", &creds, err, errlen);
    if (!rc)
        rc = ef_chan__object(settings_json, "settings", &settings, err, errlen);
    if (!rc)
        rc = wb_settings(settings, policy, &page, err, errlen);
    if (!rc)
        rc = ef_chan__need(creds, "credentials", "api_token", &token, err, errlen);
    if (!rc && (strlen(token) < 16 || strpbrk(token, " \r\n\t"))) {
        ef_errf(err, errlen, "credentials: \"api_token\" does not look like a seller API token");
        rc = EF_EINVAL;
    }
    if (!rc) {
        wb_cfg *c = ef_calloc(1, sizeof(*c));
        const char *api = ef_chan__str(settings, "api_url");
        c->mkt = ef_chan__base_url(api, WB_MARKETPLACE);
        c->chat = ef_chan__base_url(api, WB_CHAT);
        c->auth = ef_asprintf("Authorization: Bearer %s", token);
        c->page = page;
        c->chat_idle_ms = (int)ef_chan__int(settings, "chat_poll_ms", 2000);
        c->chat_busy_ms = c->chat_idle_ms < 1000 ? c->chat_idle_ms : 1000;
        *out = c;
    }
    json_object_put(creds);
    json_object_put(settings);
    return rc;
}

static const char *wb_key(const void *cfg)
{
    (void)cfg;
    return "";
}

/* ---- the credentials check ------------------------------------------------ */

static void wb_check_request(const void *cfg, ef_mkt_req *rq)
{
    const wb_cfg *c = cfg;
    memset(rq, 0, sizeof(*rq));
    rq->url = ef_asprintf("%s/ping", c->mkt);
    rq->headers[0] = ef_strdup(c->auth);
    rq->what = "ping";
}

static void wb_check_response(long status, const char *body, size_t len, ef_mkt_result *res)
{
    memset(res, 0, sizeof(*res));
    json_object *root = ef_mkt__parse(body, len);
    if (status != 200)
        ef_mkt__fault("ping", status, ef_wb__message(root), res);
    json_object_put(root);
}

/* ---- order sync ----------------------------------------------------------- */

static bool list_request(const wb_cfg *c, ef_sync_state *st, ef_mkt_req *rq)
{
    int64_t from = st->since;
    if (from < st->until - WB_WINDOW_S + 60)
        from = st->until - WB_WINDOW_S + 60;
    rq->url =
        ef_asprintf("%s/api/v3/orders?limit=%d&next=%s&dateFrom=%lld&dateTo=%lld", c->mkt, c->page,
                    st->cursor[0] ? st->cursor : "0", (long long)from, (long long)st->until);
    rq->what = "orders";
    return true;
}

/* The next batch of ids whose status to ask: the listed orders first, then
 * the stored open ones the list did not bring. */
static bool status_request(const wb_cfg *c, ef_sync_state *st, ef_mkt_req *rq)
{
    json_object *ids = json_object_new_array();
    size_t npend = st->pending ? json_object_array_length(st->pending) : 0;
    size_t pos = st->check_pos;
    for (; pos < npend && json_object_array_length(ids) < WB_STATUS_BATCH; pos++) {
        json_object *id = ef_ad__jget(json_object_array_get_idx(st->pending, pos), "id");
        json_object_array_add(ids, json_object_new_int64(json_object_get_int64(id)));
    }
    for (; pos >= npend && pos - npend < st->n_check &&
           json_object_array_length(ids) < WB_STATUS_BATCH;
         pos++) {
        const char *s = st->check[pos - npend];
        char *end;
        long long v = strtoll(s, &end, 10);
        if (*s && !*end && !ef_wb__pending_has(st->pending, v))
            json_object_array_add(ids, json_object_new_int64(v));
    }
    if (json_object_array_length(ids) == 0) {
        json_object_put(ids);
        st->stage = ST_DONE;
        return false;
    }
    json_object *body = json_object_new_object();
    json_object_object_add(body, "orders", ids);
    rq->url = ef_asprintf("%s/api/v3/orders/status", c->mkt);
    rq->body = ef_strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
    json_object_put(body);
    rq->what = "orders/status";
    st->offset = (int64_t)pos; /* where this batch ends: committed by the response */
    return true;
}

static bool wb_sync_request(const void *cfg, ef_sync_state *st, ef_mkt_req *rq)
{
    const wb_cfg *c = cfg;
    memset(rq, 0, sizeof(*rq));
    bool more = false;
    if (st->stage == ST_LIST)
        more = list_request(c, st, rq);
    else if (st->stage == ST_STATUS)
        more = status_request(c, st, rq);
    if (more)
        rq->headers[0] = ef_strdup(c->auth);
    return more;
}

static void list_response(const wb_cfg *c, ef_sync_state *st, json_object *root, ef_mkt_result *res)
{
    json_object *orders = ef_ad__jget(root, "orders"), *next = ef_ad__jget(root, "next");
    if (!json_object_is_type(orders, json_type_array) ||
        !json_object_is_type(next, json_type_int)) {
        res->fault = EF_EPROTO;
        snprintf(res->reason, sizeof(res->reason),
                 "orders: the answer has no \"orders\" array or \"next\" number");
        return;
    }
    if (!st->pending)
        st->pending = json_object_new_array();
    size_t n = json_object_array_length(orders);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(orders, i);
        if (json_object_is_type(ef_ad__jget(o, "id"), json_type_int))
            json_object_array_add(st->pending, json_object_get(o));
        else
            res->skipped++;
    }
    st->requested += n;
    snprintf(st->cursor, sizeof(st->cursor), "%lld", (long long)json_object_get_int64(next));
    if (n < (size_t)c->page || json_object_get_int64(next) == 0) {
        st->stage = ST_STATUS;
        st->check_pos = 0;
    }
}

static void status_response(ef_sync_state *st, json_object *root, ef_order_list *out,
                            ef_mkt_result *res)
{
    json_object *orders = ef_ad__jget(root, "orders");
    if (!json_object_is_type(orders, json_type_array)) {
        res->fault = EF_EPROTO;
        snprintf(res->reason, sizeof(res->reason), "orders/status: no \"orders\" array");
        return;
    }
    size_t n = json_object_array_length(orders);
    for (size_t i = 0; i < n; i++)
        if (ef_wb__order_status(json_object_array_get_idx(orders, i), st->pending, out) != 0)
            res->skipped++;
    st->check_pos = (size_t)st->offset;
}

static void wb_sync_response(const void *cfg, ef_sync_state *st, long status, const char *body,
                             size_t len, ef_order_list *out, ef_mkt_result *res)
{
    memset(res, 0, sizeof(*res));
    const char *what = st->stage == ST_LIST ? "orders" : "orders/status";
    json_object *root = ef_mkt__parse(body, len);
    if (status != 200 || !root)
        ef_mkt__fault(what, status, ef_wb__message(root), res);
    else if (st->stage == ST_LIST)
        list_response(cfg, st, root, res);
    else
        status_response(st, root, out, res);
    json_object_put(root);
}

const ef_market_ops ef_market_wildberries = {
    .platform = &ef_platform_wildberries,
    .orders_rate = {300, 60000},
    .check_request = wb_check_request,
    .check_response = wb_check_response,
    .sync_request = wb_sync_request,
    .sync_response = wb_sync_response,
};

const ef_platform_ops ef_platform_wildberries = {
    .name = "wildberries",
    .api_version = EF_PLATFORM_API_VERSION,
    .supports = EF_PLAT_POLL | EF_PLAT_SEND,
    .policy =
        {
            /* 10 chat requests per 10 s per seller: half for replies, the
             * polls paced at chat_poll_ms (2 s) use the rest. */
            .per_account = {5, 10000},
            .text_max = 1000,
            .receive_poll = true,
        },
    .open = wb_open,
    .close = wb_close,
    .channel_key = wb_key,
    .parse = ef_wb__parse,
    .poll_request = ef_wb__poll_request,
    .poll_response = ef_wb__poll_response,
    .build_send = ef_wb__build_send,
    .parse_send = ef_wb__parse_send,
};
