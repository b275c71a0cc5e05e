/*
 * telegram_send.c -- the Telegram adapter's outbound half: queued rows to
 * Bot API calls (sendMessage, answerCallbackQuery) and Bot API answers to
 * delivery outcomes.
 *
 * Pure functions: no I/O, no globals. The dispatcher prefixes the path with
 * TELEGRAM_API_URL + "/bot<token>" and makes the request.
 */
#include "platforms/platform.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ef_send_result_cleanup(ef_send_result *r)
{
    ef_free(r->platform_message_id);
    ef_free(r->new_chat_id);
    r->platform_message_id = r->new_chat_id = NULL;
}

/* "<chat id>" or "<chat id>@<business connection id>" */
static int split_chat(const char *chat_key, int64_t *chat_id, const char **bcid)
{
    char *end;
    long long v = strtoll(chat_key, &end, 10);
    if (end == chat_key || (*end && *end != '@'))
        return EF_EINVAL;
    *chat_id = v;
    *bcid = *end == '@' ? end + 1 : NULL;
    return 0;
}

static json_object *keyboard(json_object *buttons)
{
    /* One button per row reads best on phones for the short option lists
     * bots offer; callback_data is limited to 64 bytes by Telegram. */
    json_object *rows = json_object_new_array();
    size_t n = json_object_array_length(buttons);
    for (size_t i = 0; i < n; i++) {
        json_object *b = json_object_array_get_idx(buttons, i), *t, *pl;
        if (!json_object_object_get_ex(b, "title", &t) || !json_object_is_type(t, json_type_string))
            continue;
        const char *payload = json_object_object_get_ex(b, "payload", &pl) &&
                                      json_object_is_type(pl, json_type_string)
                                  ? json_object_get_string(pl)
                                  : json_object_get_string(t);
        /* Cut at 64 bytes, but never inside a UTF-8 character: Telegram
         * refuses strings that are not valid UTF-8. */
        size_t cut = strlen(payload) > 64 ? 64 : strlen(payload);
        while (cut > 0 && ((unsigned char)payload[cut] & 0xC0) == 0x80)
            cut--;
        json_object *btn = json_object_new_object();
        json_object_object_add(btn, "text", json_object_new_string(json_object_get_string(t)));
        json_object_object_add(btn, "callback_data", json_object_new_string_len(payload, (int)cut));
        json_object *row = json_object_new_array();
        json_object_array_add(row, btn);
        json_object_array_add(rows, row);
    }
    json_object *markup = json_object_new_object();
    json_object_object_add(markup, "inline_keyboard", rows);
    return markup;
}

int ef_tg__build_send(const ef_out_msg *m, ef_out_req *out, char *err, size_t errlen)
{
    json_object *meta = m->meta_json ? json_tokener_parse(m->meta_json) : NULL;
    json_object *v;
    json_object *body = json_object_new_object();
    const char *method = "sendMessage";
    if (meta && json_object_object_get_ex(meta, "method", &v) &&
        json_object_is_type(v, json_type_string))
        method = json_object_get_string(v);

    if (strcmp(method, "answerCallbackQuery") == 0) {
        if (!meta || !json_object_object_get_ex(meta, "callback_query_id", &v) ||
            !json_object_is_type(v, json_type_string)) {
            snprintf(err, errlen, "answerCallbackQuery without callback_query_id");
            goto fail;
        }
        json_object_object_add(body, "callback_query_id",
                               json_object_new_string(json_object_get_string(v)));
        if (m->text && *m->text)
            json_object_object_add(body, "text", json_object_new_string(m->text));
    } else if (strcmp(method, "sendMessage") == 0) {
        int64_t chat_id;
        const char *bcid;
        if (!m->chat_id || split_chat(m->chat_id, &chat_id, &bcid)) {
            snprintf(err, errlen, "not a Telegram chat id: \"%.64s\"",
                     m->chat_id ? m->chat_id : "");
            goto fail;
        }
        if (!m->text || !*m->text) {
            snprintf(err, errlen, "empty message text");
            goto fail;
        }
        json_object_object_add(body, "chat_id", json_object_new_int64(chat_id));
        json_object_object_add(body, "text", json_object_new_string(m->text));
        if (bcid) {
            const char *at = strchr(bcid, '@');
            json_object_object_add(
                body, "business_connection_id",
                json_object_new_string_len(bcid, at ? (int)(at - bcid) : (int)strlen(bcid)));
        }
        if (meta && json_object_object_get_ex(meta, "thread_id", &v) &&
            !json_object_is_type(v, json_type_null)) {
            int64_t t = strtoll(json_object_get_string(v), NULL, 10);
            if (t > 0)
                json_object_object_add(body, "message_thread_id", json_object_new_int64(t));
        }
        if (meta && json_object_object_get_ex(meta, "buttons", &v) &&
            json_object_is_type(v, json_type_array) && json_object_array_length(v) > 0)
            json_object_object_add(body, "reply_markup", keyboard(v));
    } else {
        snprintf(err, errlen, "unknown Telegram method \"%.40s\"", method);
        goto fail;
    }
    out->path = ef_asprintf("/%s", method);
    out->body = ef_strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(body);
    json_object_put(meta);
    return 0;
fail:
    json_object_put(body);
    json_object_put(meta);
    return EF_EINVAL;
}

/* "Too Many Requests: retry after 41" -- older answers had no parameters. */
static int64_t retry_from_description(const char *d)
{
    const char *p = d ? strstr(d, "retry after ") : NULL;
    return p ? strtoll(p + 12, NULL, 10) : 0;
}

void ef_tg__parse_send(const ef_out_msg *m, long http_status, const char *body, size_t len,
                       ef_send_result *res)
{
    memset(res, 0, sizeof(*res));
    json_object *root = NULL;
    if (body && len) {
        json_tokener *tok = json_tokener_new_ex(32);
        root = json_tokener_parse_ex(tok, body, (int)len);
        json_tokener_free(tok);
    }
    if (root && !json_object_is_type(root, json_type_object)) {
        /* "123 garbage" parses as 123: no Bot API answer either */
        json_object_put(root);
        root = NULL;
    }
    json_object *v, *params = NULL, *result = NULL;
    const char *desc = root && json_object_object_get_ex(root, "description", &v) &&
                               json_object_is_type(v, json_type_string)
                           ? json_object_get_string(v)
                           : "";
    bool ok = root && json_object_object_get_ex(root, "ok", &v) && json_object_get_boolean(v);
    if (root)
        json_object_object_get_ex(root, "parameters", &params);

    if (http_status == 200 && (ok || !root)) {
        /* A 200 whose body was cut off was almost surely delivered: sending
         * it again would duplicate it, so it counts as sent (without id). */
        res->outcome = EF_SEND_OK;
        if (json_object_object_get_ex(root, "result", &result) &&
            json_object_is_type(result, json_type_object) &&
            json_object_object_get_ex(result, "message_id", &v) && m->chat_id)
            res->platform_message_id =
                ef_asprintf("%s:%lld", m->chat_id, (long long)json_object_get_int64(v));
    } else if (http_status == 429) {
        res->outcome = EF_SEND_RATE;
        int64_t s = 0;
        if (params && json_object_object_get_ex(params, "retry_after", &v))
            s = json_object_get_int64(v);
        if (s <= 0)
            s = retry_from_description(desc);
        if (s > 86400) /* a day at most: never overflow, never park forever */
            s = 86400;
        res->retry_after_ms = s > 0 ? s * 1000 : 0;
        snprintf(res->reason, sizeof(res->reason), "429 %.200s", desc);
    } else if (params && json_object_object_get_ex(params, "migrate_to_chat_id", &v)) {
        res->outcome = EF_SEND_MIGRATED;
        res->new_chat_id = ef_asprintf("%lld", (long long)json_object_get_int64(v));
        snprintf(res->reason, sizeof(res->reason), "chat migrated to %s", res->new_chat_id);
    } else if (http_status == 0 || http_status >= 500) {
        res->outcome = EF_SEND_RETRY;
        snprintf(res->reason, sizeof(res->reason), "%s %.200s",
                 http_status ? "server error" : "network error", desc);
    } else if (http_status == 403) {
        res->outcome = EF_SEND_FAIL;
        res->undeliverable = true;
        snprintf(res->reason, sizeof(res->reason), "403 %.200s", desc[0] ? desc : "Forbidden");
    } else if (http_status == 401) {
        /* A bad token is the operator's problem, not the message's: keep it
         * queued so it goes out once the token is fixed. */
        res->outcome = EF_SEND_RETRY;
        snprintf(res->reason, sizeof(res->reason), "401 bot token rejected");
    } else {
        res->outcome = EF_SEND_FAIL;
        snprintf(res->reason, sizeof(res->reason), "%ld %.200s", http_status,
                 desc[0] ? desc : "rejected");
    }
    json_object_put(root);
}
