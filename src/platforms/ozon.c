/*
 * ozon.c -- an Ozon shop as a channel: its Seller API keys (open), the
 * credentials check, and the order sync (FBS and FBO postings). Postings to
 * ef_order are in ozon_orders.c.
 *
 * Buyer chats are in ozon_chat.c.
 *
 * Credentials: {"client_id": "...", "api_key": "..."}, sent as the Client-Id
 * and Api-Key headers. Settings: "api_url" (replaces
 * https://api-seller.ozon.ru; OZON_API_URL sets it for every shop),
 * "page_size" (postings per page, 1..100, default 100), "chats" (off: no
 * buyer-chat polling, for shops without Premium Plus / Pro),
 * "chat_poll_ms" (between chat-list polls when idle, default 2000),
 * "sync_interval_minutes" (read by the gateway's scheduler).
 *
 * Check: POST /v1/warehouse/list {} (cheap, every key may call it).
 * Order sync: POST /v4/posting/fbs/list {"cursor","limit","filter":{"since",
 * "to","last_changed_status_date":{"from","to"}}} until has_next is false
 * (postings whose status changed since the last success), then POST
 * /v3/posting/fbo/list {"dir":"ASC","filter":{"since","to"},"limit",
 * "offset"} over the last 30 days (FBO has no status-change filter; the
 * upsert makes the re-read idempotent).
 */
#include "platforms/ozon_int.h"

#include "platforms/channel_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define OZON_DEFAULT_API "https://api-seller.ozon.ru"
#define OZON_FBS_WINDOW_S (364LL * 86400)
#define OZON_FBO_WINDOW_S (30LL * 86400)

enum { ST_FBS = 0, ST_FBO, ST_DONE };

static void oz_close(void *p)
{
    oz_cfg *c = p;
    if (!c)
        return;
    ef_free(c->base);
    ef_free(c->client_id);
    if (c->api_key)
        memset(c->api_key, 0, strlen(c->api_key));
    ef_free(c->api_key);
    ef_free(c);
}

static int oz_settings(json_object *settings, ef_platform_policy *policy, int *page, char *err,
                       size_t errlen)
{
    int rc = ef_chan__common(&ef_platform_ozon, settings, policy, err, errlen);
    if (rc)
        return rc;
    const char *chats = ef_chan__str(settings, "chats");
    if (chats && strcmp(chats, "off") == 0)
        policy->receive_poll = false; /* chats need Premium Plus / Pro */
    int64_t poll_ms = ef_chan__int(settings, "chat_poll_ms", 2000);
    if (poll_ms < 100 || poll_ms > 3600000) {
        ef_errf(err, errlen, "settings: chat_poll_ms must be 100..3600000");
        return EF_EINVAL;
    }
    int64_t n = ef_chan__int(settings, "page_size", 100);
    int64_t every = ef_chan__int(settings, "sync_interval_minutes", 60);
    if (n < 1 || n > 100) {
        ef_errf(err, errlen, "settings: page_size must be 1..100");
        return EF_EINVAL;
    }
    if (every < 1 || every > 10080) {
        ef_errf(err, errlen, "settings: sync_interval_minutes must be 1..10080");
        return EF_EINVAL;
    }
    *page = (int)n;
    return 0;
}

static bool header_safe(const char *s)
{
    return !strpbrk(s, "\r\n");
}

static int oz_open(const char *creds_json, const char *settings_json, void **out,
                   ef_platform_policy *policy, char *err, size_t errlen)
{
    json_object *creds = NULL, *settings = NULL;
    const char *id = NULL, *key = NULL;
    int page = 100;
    int rc = ef_chan__object(creds_json, "credentials", &creds, err, errlen);
    if (!rc)
        rc = ef_chan__object(settings_json, "settings", &settings, err, errlen);
    if (!rc)
        rc = oz_settings(settings, policy, &page, err, errlen);
    if (!rc)
        rc = ef_chan__need(creds, "credentials", "client_id", &id, err, errlen);
    if (!rc)
        rc = ef_chan__need(creds, "credentials", "api_key", &key, err, errlen);
    if (!rc && (!header_safe(id) || !header_safe(key) || strlen(key) < 16)) {
        ef_errf(err, errlen,
                "credentials: \"client_id\" / \"api_key\" do not look like Ozon "
                "Seller API keys");
        rc = EF_EINVAL;
    }
    if (!rc) {
        oz_cfg *c = ef_calloc(1, sizeof(*c));
        c->base = ef_chan__base_url(ef_chan__str(settings, "api_url"), OZON_DEFAULT_API);
        c->client_id = ef_strdup(id);
        c->api_key = ef_strdup(key);
        c->page = page;
        c->chat_idle_ms = (int)ef_chan__int(settings, "chat_poll_ms", 2000);
        c->chat_busy_ms = c->chat_idle_ms < 200 ? c->chat_idle_ms : 200;
        *out = c;
    }
    json_object_put(creds);
    json_object_put(settings);
    return rc;
}

/* The Client-Id: not secret, one shop per Client-Id. */
static const char *oz_key(const void *cfg)
{
    const oz_cfg *c = cfg;
    return c->client_id;
}

/* ---- the credentials check ------------------------------------------------ */

static void oz_check_request(const void *cfg, ef_mkt_req *rq)
{
    const oz_cfg *c = cfg;
    memset(rq, 0, sizeof(*rq));
    rq->url = ef_asprintf("%s/v1/warehouse/list", c->base);
    rq->body = ef_strdup("{}");
    ef_oz__headers(c, rq);
    rq->what = "warehouse/list";
}

static void oz_check_response(long status, const char *body, size_t len, ef_mkt_result *res)
{
    memset(res, 0, sizeof(*res));
    json_object *root = ef_mkt__parse(body, len);
    if (status != 200)
        ef_mkt__fault("warehouse/list", status, ef_oz__message(root), res);
    json_object_put(root);
}

/* ---- order sync ----------------------------------------------------------- */

static json_object *iso(int64_t t)
{
    char buf[32];
    ef_mkt__iso(t, buf, sizeof(buf));
    return json_object_new_string(buf);
}

static char *fbs_body(const oz_cfg *c, const ef_sync_state *st)
{
    json_object *b = json_object_new_object(), *f = json_object_new_object(),
                *ch = json_object_new_object();
    json_object_object_add(b, "cursor", json_object_new_string(st->cursor));
    json_object_object_add(b, "limit", json_object_new_int(c->page));
    json_object_object_add(f, "since", iso(st->until - OZON_FBS_WINDOW_S));
    json_object_object_add(f, "to", iso(st->until));
    json_object_object_add(ch, "from", iso(st->since));
    json_object_object_add(ch, "to", iso(st->until));
    json_object_object_add(f, "last_changed_status_date", ch);
    json_object_object_add(b, "filter", f);
    char *s = ef_strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
    json_object_put(b);
    return s;
}

static char *fbo_body(const oz_cfg *c, const ef_sync_state *st)
{
    json_object *b = json_object_new_object(), *f = json_object_new_object(),
                *with = json_object_new_object();
    json_object_object_add(b, "dir", json_object_new_string("ASC"));
    json_object_object_add(f, "since", iso(st->until - OZON_FBO_WINDOW_S));
    json_object_object_add(f, "to", iso(st->until));
    json_object_object_add(b, "filter", f);
    json_object_object_add(b, "limit", json_object_new_int(c->page));
    json_object_object_add(b, "offset", json_object_new_int64(st->offset));
    json_object_object_add(with, "financial_data", json_object_new_boolean(false));
    json_object_object_add(b, "with", with);
    char *s = ef_strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
    json_object_put(b);
    return s;
}

static bool oz_sync_request(const void *cfg, ef_sync_state *st, ef_mkt_req *rq)
{
    const oz_cfg *c = cfg;
    memset(rq, 0, sizeof(*rq));
    if (st->stage == ST_FBS) {
        rq->url = ef_asprintf("%s/v4/posting/fbs/list", c->base);
        rq->body = fbs_body(c, st);
        rq->what = "posting/fbs/list";
    } else if (st->stage == ST_FBO) {
        rq->url = ef_asprintf("%s/v3/posting/fbo/list", c->base);
        rq->body = fbo_body(c, st);
        rq->what = "posting/fbo/list";
    } else {
        return false;
    }
    ef_oz__headers(c, rq);
    return true;
}

/* The page's postings (top level or under "result"; "result" itself an
 * array in the FBO list), its cursor and has_next. */
static json_object *page_of(json_object *root, const char **cursor, bool *has_next)
{
    json_object *res = ef_ad__jget(root, "result");
    if (json_object_is_type(res, json_type_array)) {
        *cursor = NULL;
        *has_next = false;
        return res;
    }
    json_object *where = json_object_is_type(res, json_type_object) ? res : root;
    json_object *postings = ef_ad__jget(where, "postings");
    if (!json_object_is_type(postings, json_type_array))
        return NULL;
    *cursor = ef_ad__jstr(where, "cursor", NULL);
    if (!*cursor)
        *cursor = ef_ad__jstr(root, "cursor", NULL);
    *has_next = ef_ad__jtrue(where, "has_next") || ef_ad__jtrue(root, "has_next");
    return postings;
}

static void take_page(const oz_cfg *c, ef_sync_state *st, json_object *root, ef_order_list *out,
                      ef_mkt_result *res)
{
    const char *cursor = NULL;
    bool has_next = false;
    json_object *postings = page_of(root, &cursor, &has_next);
    if (!postings) {
        res->fault = EF_EPROTO;
        snprintf(res->reason, sizeof(res->reason), "%s: the answer has no postings",
                 st->stage == ST_FBS ? "posting/fbs/list" : "posting/fbo/list");
        return;
    }
    size_t n = json_object_array_length(postings);
    for (size_t i = 0; i < n; i++)
        if (ef_oz__posting(json_object_array_get_idx(postings, i),
                           st->stage == ST_FBS ? "fbs" : "fbo", out) != 0)
            res->skipped++;
    st->requested += n;
    if (st->stage == ST_FBS) {
        bool more = has_next && cursor && *cursor && strcmp(cursor, st->cursor) != 0;
        snprintf(st->cursor, sizeof(st->cursor), "%s", more ? cursor : "");
        if (!more)
            st->stage = ST_FBO;
    } else {
        st->offset += (int64_t)n;
        if (!(has_next || n == (size_t)c->page) || n == 0)
            st->stage = ST_DONE;
    }
}

static void oz_sync_response(const void *cfg, ef_sync_state *st, long status, const char *body,
                             size_t len, ef_order_list *out, ef_mkt_result *res)
{
    memset(res, 0, sizeof(*res));
    json_object *root = ef_mkt__parse(body, len);
    if (status != 200 || !root)
        ef_mkt__fault(st->stage == ST_FBS ? "posting/fbs/list" : "posting/fbo/list", status,
                      ef_oz__message(root), res);
    else
        take_page(cfg, st, root, out, res);
    json_object_put(root);
}

const ef_market_ops ef_market_ozon = {
    .platform = &ef_platform_ozon,
    .orders_rate = {50, 1000},
    .check_request = oz_check_request,
    .check_response = oz_check_response,
    .sync_request = oz_sync_request,
    .sync_response = oz_sync_response,
};

const ef_platform_ops ef_platform_ozon = {
    .name = "ozon",
    .api_version = EF_PLATFORM_API_VERSION,
    .supports = EF_PLAT_POLL | EF_PLAT_SEND,
    .policy =
        {
            /* Per Client-Id limits; Ozon enforces its reply windows itself
             * and its refusal is the reply's failed_reason. */
            .per_account = {10, 1000},
            .text_max = 1000,
            .read_receipts = true,
            .receive_poll = true,
        },
    .open = oz_open,
    .close = oz_close,
    .channel_key = oz_key,
    .parse = ef_oz__parse,
    .poll_request = ef_oz__poll_request,
    .poll_response = ef_oz__poll_response,
    .build_send = ef_oz__build_send,
    .parse_send = ef_oz__parse_send,
};
