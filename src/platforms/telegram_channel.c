/*
 * telegram_channel.c -- one Telegram bot as a channel: its credentials and
 * settings (open), the secret-token check of its webhook, getUpdates long
 * polling, and the Bot API base its sends go to. The update parser is in
 * telegram.c, the send requests in telegram_send.c.
 *
 * Credentials: {"bot_token": "<id>:<secret>", "secret_token": "..."}
 * (secret_token required in webhook mode: Telegram sends it back in
 * X-Telegram-Bot-Api-Secret-Token, and a webhook without it would accept
 * forged updates). A webhook channel without bot_token only receives: its
 * replies wait, queued, until a token is configured. Settings: "mode" (webhook | poll), "api_url"
 * (default the public Bot API), "rate_per_sec" (30), "group_per_min" (20), "chat_interval_ms"
 * (1000), "poll_timeout" (seconds).
 */
#include "platforms/channel_int.h"

#include "base/crypto.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define TG_DEFAULT_API "https://api.telegram.org"

typedef struct tg_cfg {
    char *bot_id; /* the numeric part of the token: not secret */
    char *base;   /* <api>/bot<token>: holds the credential, never logged */
    char *secret; /* webhook secret token; NULL in poll mode */
} tg_cfg;

/* Every update type the gateway handles; chat_member and message_reaction
 * must be asked for explicitly (PLATFORMS.md A3). */
static const char *const allowed_updates =
    "[\"message\",\"edited_message\",\"channel_post\",\"edited_channel_post\","
    "\"business_connection\",\"business_message\",\"edited_business_message\","
    "\"deleted_business_messages\",\"message_reaction\",\"message_reaction_count\","
    "\"inline_query\",\"chosen_inline_result\",\"callback_query\",\"shipping_query\","
    "\"pre_checkout_query\",\"poll\",\"poll_answer\",\"my_chat_member\",\"chat_member\","
    "\"chat_join_request\",\"chat_boost\",\"removed_chat_boost\",\"purchased_paid_media\"]";

static void tg_close(void *p)
{
    tg_cfg *c = p;
    if (!c)
        return;
    ef_free(c->bot_id);
    ef_free(c->base);
    ef_free(c->secret);
    ef_free(c);
}

static int check_token(const char *token, char *err, size_t errlen)
{
    const char *colon = strchr(token, ':');
    bool ok = colon && colon > token && colon[1];
    for (const char *p = token; ok && p < colon; p++)
        ok = *p >= '0' && *p <= '9';
    if (!ok)
        ef_errf(err, errlen, "credentials: \"bot_token\" does not look like <bot id>:<secret>");
    return ok ? 0 : EF_EINVAL;
}

static int tg_settings(json_object *settings, ef_platform_policy *policy, char *err, size_t errlen)
{
    int rc = ef_chan__common(&ef_platform_telegram, settings, policy, err, errlen);
    if (rc)
        return rc;
    int64_t group = ef_chan__int(settings, "group_per_min", 0);
    int64_t interval = ef_chan__int(settings, "chat_interval_ms", 0);
    if (group < 0 || interval < 0) {
        ef_errf(err, errlen, "settings: group_per_min and chat_interval_ms must be positive");
        return EF_EINVAL;
    }
    int64_t poll_timeout = ef_chan__int(settings, "poll_timeout", 25);
    if (poll_timeout < 0 || poll_timeout > 50) {
        ef_errf(err, errlen, "settings: poll_timeout must be 0..50 seconds");
        return EF_EINVAL;
    }
    policy->poll_timeout_s = (int)poll_timeout;
    if (group > 0)
        policy->per_group = (ef_rate){(int)group, 60000};
    if (interval > 0)
        policy->per_chat = (ef_rate){1, (int)interval};
    return 0;
}

static int tg_open(const char *creds_json, const char *settings_json, void **out,
                   ef_platform_policy *policy, char *err, size_t errlen)
{
    json_object *creds = NULL, *settings = NULL;
    const char *token = NULL;
    int rc = ef_chan__object(creds_json, "credentials", &creds, err, errlen);
    if (!rc)
        rc = ef_chan__object(settings_json, "settings", &settings, err, errlen);
    if (!rc)
        rc = tg_settings(settings, policy, err, errlen);
    token = ef_chan__str(creds, "bot_token");
    if (!rc && (token || policy->receive_poll))
        rc = ef_chan__need(creds, "credentials", "bot_token", &token, err, errlen);
    if (!rc && token)
        rc = check_token(token, err, errlen);
    const char *secret = ef_chan__str(creds, "secret_token");
    if (!rc && policy->receive_webhook)
        rc = ef_chan__secret("credentials", "secret_token", secret, err, errlen);
    if (!rc) {
        tg_cfg *c = ef_calloc(1, sizeof(*c));
        if (token) {
            c->bot_id = ef_strndup(token, (size_t)(strchr(token, ':') - token));
            char *api = ef_chan__base_url(ef_chan__str(settings, "api_url"), TG_DEFAULT_API);
            c->base = ef_asprintf("%s/bot%s", api, token);
            ef_free(api);
        }
        policy->receive_only = !token;
        c->secret = secret && *secret ? ef_strdup(secret) : NULL;
        *out = c;
    }
    json_object_put(creds);
    json_object_put(settings);
    return rc;
}

static const char *tg_key(const void *cfg)
{
    const tg_cfg *c = cfg;
    return c->bot_id ? c->bot_id : "";
}

/* X-Telegram-Bot-Api-Secret-Token, before any body byte is read. */
static int tg_verify(const void *cfg, const ef_http_req *rq)
{
    const tg_cfg *c = cfg;
    if (!c->secret || !rq->auth)
        return EF_EAUTH;
    return ef_secure_equal(rq->auth, strlen(rq->auth), c->secret, strlen(c->secret)) ? 0 : EF_EAUTH;
}

/* ---- long polling ------------------------------------------------------- */

static int tg_poll_request(const void *cfg, const char *cursor, int timeout_s, ef_out_req *rq)
{
    const tg_cfg *c = cfg;
    memset(rq, 0, sizeof(*rq));
    rq->url = ef_asprintf("%s/getUpdates", c->base);
    if (cursor && *cursor)
        rq->body =
            ef_asprintf("{\"offset\":%s,\"limit\":100,\"timeout\":%d,\"allowed_updates\":%s}",
                        cursor, timeout_s, allowed_updates);
    else
        rq->body = ef_asprintf("{\"limit\":100,\"timeout\":%d,\"allowed_updates\":%s}", timeout_s,
                               allowed_updates);
    return 0;
}

static const char *describe(json_object *root)
{
    json_object *d;
    if (root && json_object_object_get_ex(root, "description", &d))
        return json_object_get_string(d);
    return "";
}

/* A refusal: what it means for the poller. */
static void poll_fault(long status, json_object *root, ef_poll_result *res)
{
    if (status == 401) {
        res->fault = EF_EAUTH;
        snprintf(res->reason, sizeof(res->reason),
                 "getUpdates: 401 Unauthorized: the bot token is wrong or revoked");
    } else if (status == 409) {
        res->fault = EF_ECONFLICT;
        snprintf(res->reason, sizeof(res->reason),
                 "getUpdates: 409 Conflict: %.150s -- a webhook is set for this bot or another "
                 "poller runs; call deleteWebhook or use mode=webhook",
                 describe(root));
    } else if (status == 429) {
        json_object *params, *ra;
        res->fault = EF_EIO;
        int64_t s = 0;
        if (root && json_object_object_get_ex(root, "parameters", &params) &&
            json_object_object_get_ex(params, "retry_after", &ra))
            s = json_object_get_int64(ra);
        /* 1 s .. a day, as for sends: never overflow, never a negative wait */
        res->retry_after_ms = s <= 0 ? 5000 : (s > 86400 ? 86400 : s) * 1000;
        snprintf(res->reason, sizeof(res->reason), "getUpdates: 429, waiting %lld ms",
                 (long long)res->retry_after_ms);
    } else {
        res->fault = status == 200 ? EF_EPROTO : EF_EIO;
        snprintf(res->reason, sizeof(res->reason), "getUpdates: HTTP %ld %.200s", status,
                 root ? describe(root) : "(not the Bot API's JSON)");
    }
}

/* Normalizes each update on its own: one bad update is skipped (counted
 * and named in res->reason), never a reason to fetch the batch again. */
static void poll_items(json_object *result, ef_msg_list *out, ef_poll_result *res)
{
    int64_t max_id = -1;
    size_t n = json_object_array_length(result);
    for (size_t i = 0; i < n; i++) {
        json_object *u = json_object_array_get_idx(result, i), *id;
        if (json_object_object_get_ex(u, "update_id", &id) &&
            json_object_is_type(id, json_type_int) && json_object_get_int64(id) > max_id &&
            json_object_get_int64(id) < INT64_MAX) /* max_id + 1 must fit */
            max_id = json_object_get_int64(id);
        ef_parse_info info;
        memset(&info, 0, sizeof(info));
        if (ef_platform_parse(&ef_platform_telegram, u, out, &info) != 0) {
            res->skipped++;
            snprintf(res->reason, sizeof(res->reason),
                     "update=%lld skipped, not a valid update: %.180s", (long long)info.update_id,
                     info.note);
        }
    }
    if (max_id >= 0)
        snprintf(res->next_cursor, sizeof(res->next_cursor), "%lld", (long long)max_id + 1);
}

static void tg_poll_response(const void *cfg, const char *cursor, long status, const char *body,
                             size_t len, int max_depth, ef_msg_list *out, ef_poll_result *res)
{
    (void)cfg;
    (void)cursor;
    memset(res, 0, sizeof(*res));
    if (status == 0) {
        res->fault = EF_EIO;
        snprintf(res->reason, sizeof(res->reason), "getUpdates: network error");
        return;
    }
    json_object *root = NULL, *ok, *result;
    char why[128];
    if (ef_json_parse(body ? body : "", len, max_depth, &root, why, sizeof(why)) != 0)
        root = NULL;
    if (status == 200 && root && json_object_object_get_ex(root, "ok", &ok) &&
        json_object_get_boolean(ok) && json_object_object_get_ex(root, "result", &result) &&
        json_object_is_type(result, json_type_array))
        poll_items(result, out, res);
    else
        poll_fault(status, root, res);
    json_object_put(root);
}

/* ---- sending ------------------------------------------------------------ */

static int tg_build_send(const void *cfg, const ef_out_msg *m, ef_out_req *rq, char *err,
                         size_t errlen)
{
    const tg_cfg *c = cfg;
    memset(rq, 0, sizeof(*rq));
    if (!c->base) {
        ef_errf(err, errlen, "no bot_token: this channel only receives");
        return EF_EINVAL;
    }
    int rc = ef_tg__build_send(m, rq, err, errlen);
    if (rc)
        return rc;
    rq->url = ef_asprintf("%s%s", c->base, rq->path);
    rq->counted = !ef_chan__is_method(m->meta_json);
    return 0;
}

static void tg_parse_send(const void *cfg, const ef_out_msg *m, long status, const char *body,
                          size_t len, ef_send_result *res)
{
    (void)cfg;
    ef_tg__parse_send(m, status, body, len, res);
    if (status == 401) {             /* the token was revoked: the channel's fault, not the row's */
        ef_send_result_cleanup(res); /* whatever else the body said (a migration) */
        res->outcome = EF_SEND_AUTH;
        snprintf(res->reason, sizeof(res->reason), "401 bot token rejected");
    }
}

const ef_platform_ops ef_platform_telegram = {
    .name = "telegram",
    .api_version = EF_PLATFORM_API_VERSION,
    .supports = EF_PLAT_WEBHOOK | EF_PLAT_POLL | EF_PLAT_BUTTONS | EF_PLAT_TYPING | EF_PLAT_SEND,
    .policy =
        {
            .per_account = {30, 1000},
            .per_chat = {1, 1000},
            .per_group = {20, 60000},
            .text_max = 4096,
            .receive_webhook = true,
        },
    .open = tg_open,
    .close = tg_close,
    .channel_key = tg_key,
    .webhook_path = "/webhook/telegram",
    .auth_header = "x-telegram-bot-api-secret-token",
    .verify_needs_body = false,
    .verify = tg_verify,
    .parse = ef_tg__parse,
    .poll_request = tg_poll_request,
    .poll_response = tg_poll_response,
    .build_send = tg_build_send,
    .parse_send = tg_parse_send,
};
