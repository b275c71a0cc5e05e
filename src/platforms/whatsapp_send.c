/*
 * whatsapp_send.c -- the WhatsApp adapter's outbound half: queued rows to
 * Graph API requests (text, reply buttons, lists, templates, mark-as-read)
 * and Graph API answers to delivery outcomes.
 *
 * Pure functions: no I/O, no globals. The dispatcher prefixes the path with
 * WHATSAPP_API_URL and adds the Bearer token.
 *
 * Error codes (PLATFORMS.md B7): 130429 / 131056 / 80007 / 4 are throughput
 * limits (retry later); 131000 / 131016 / 131057 / 1 / 2 are transient;
 * 131047 means the 24-hour window is closed; 131026 means the customer
 * cannot be reached; any other code is transient on 5xx, a throttle on
 * HTTP 429 and permanent on any other 4xx.
 */
#include "platforms/platform.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WA_MAX_BUTTONS 3
#define WA_MAX_ROWS 10
#define WA_BUTTON_TITLE 20
#define WA_ROW_TITLE 24
#define WA_BODY_MAX 4096

/* The first max characters (code points) of s, never cutting one in two. */
static json_object *utf8_prefix(const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, chars = 0;
    while (p[i] && chars < max) {
        unsigned c = p[i];
        size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        for (size_t k = 1; k < len; k++)
            if (!p[i + k])
                return json_object_new_string_len(s, (int)i);
        i += len;
        chars++;
    }
    return json_object_new_string_len(s, (int)i);
}

/* "<customer>@<phone_number_id>" -> customer, and the number. */
static int split_chat(const char *chat_id, char **to, const char **number)
{
    const char *at = chat_id ? strchr(chat_id, '@') : NULL;
    if (!at || at == chat_id || !at[1])
        return EF_EINVAL;
    *to = ef_strndup(chat_id, (size_t)(at - chat_id));
    *number = at + 1;
    return 0;
}

static const char *str_of(json_object *o, const char *key)
{
    json_object *v;
    if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

/* Whether s has a Cyrillic letter (U+0400..U+04FF: lead bytes 0xD0-0xD3). */
static bool has_cyrillic(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0xD0 && *p <= 0xD3 && (p[1] & 0xC0) == 0x80)
            return true;
    return false;
}

static json_object *interactive(const char *text, json_object *buttons, const char *lang)
{
    size_t n = json_object_array_length(buttons);
    json_object *ia = json_object_new_object();
    json_object *body = json_object_new_object();
    json_object_object_add(body, "text", utf8_prefix(text, 1024));
    json_object_object_add(ia, "body", body);
    json_object *action = json_object_new_object();
    if (n <= WA_MAX_BUTTONS) {
        json_object_object_add(ia, "type", json_object_new_string("button"));
        json_object *arr = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
            json_object *b = json_object_array_get_idx(buttons, i);
            const char *title = str_of(b, "title");
            const char *payload = str_of(b, "payload");
            json_object *reply = json_object_new_object();
            json_object_object_add(reply, "id",
                                   json_object_new_string(payload ? payload
                                                          : title ? title
                                                                  : ""));
            json_object_object_add(reply, "title",
                                   utf8_prefix(title ? title : "", WA_BUTTON_TITLE));
            json_object *btn = json_object_new_object();
            json_object_object_add(btn, "type", json_object_new_string("reply"));
            json_object_object_add(btn, "reply", reply);
            json_object_array_add(arr, btn);
        }
        json_object_object_add(action, "buttons", arr);
    } else {
        /* More options than reply buttons allow: a list message. Its
         * labels speak the reply's language: the one the row names, else
         * the one its text is written in. */
        json_object_object_add(ia, "type", json_object_new_string("list"));
        bool ru = lang ? strncmp(lang, "en", 2) != 0 : has_cyrillic(text);
        json_object_object_add(action, "button", json_object_new_string(ru ? "Выбрать" : "Choose"));
        json_object *rows = json_object_new_array();
        for (size_t i = 0; i < n && i < WA_MAX_ROWS; i++) {
            json_object *b = json_object_array_get_idx(buttons, i);
            const char *title = str_of(b, "title");
            const char *payload = str_of(b, "payload");
            json_object *row = json_object_new_object();
            json_object_object_add(row, "id",
                                   json_object_new_string(payload ? payload
                                                          : title ? title
                                                                  : ""));
            json_object_object_add(row, "title", utf8_prefix(title ? title : "", WA_ROW_TITLE));
            json_object_array_add(rows, row);
        }
        json_object *section = json_object_new_object();
        json_object_object_add(section, "title",
                               json_object_new_string(ru ? "Варианты" : "Options"));
        json_object_object_add(section, "rows", rows);
        json_object *sections = json_object_new_array();
        json_object_array_add(sections, section);
        json_object_object_add(action, "sections", sections);
    }
    json_object_object_add(ia, "action", action);
    return ia;
}

int ef_wa__build_send(const ef_out_msg *m, ef_out_req *out, char *err, size_t errlen)
{
    char *to = NULL;
    const char *number = NULL;
    if (split_chat(m->chat_id, &to, &number)) {
        snprintf(err, errlen, "not a WhatsApp chat key: \"%.64s\"", m->chat_id ? m->chat_id : "");
        return EF_EINVAL;
    }
    json_object *meta = m->meta_json ? json_tokener_parse(m->meta_json) : NULL;
    json_object *body = json_object_new_object();
    json_object_object_add(body, "messaging_product", json_object_new_string("whatsapp"));
    const char *method = str_of(meta, "method");
    if (method && strcmp(method, "markRead") == 0) {
        const char *wamid = str_of(meta, "message_id");
        if (!wamid) {
            snprintf(err, errlen, "markRead without message_id");
            goto fail;
        }
        json_object_object_add(body, "status", json_object_new_string("read"));
        json_object_object_add(body, "message_id", json_object_new_string(wamid));
    } else if (method) {
        snprintf(err, errlen, "unknown WhatsApp method \"%.40s\"", method);
        goto fail;
    } else {
        json_object_object_add(body, "recipient_type", json_object_new_string("individual"));
        json_object_object_add(body, "to", json_object_new_string(to));
        const char *reply_to = str_of(meta, "reply_to");
        if (reply_to && strncmp(reply_to, "wamid.", 6) == 0) {
            json_object *ctx = json_object_new_object();
            json_object_object_add(ctx, "message_id", json_object_new_string(reply_to));
            json_object_object_add(body, "context", ctx);
        }
        json_object *tmpl = NULL, *buttons = NULL;
        if (meta && json_object_object_get_ex(meta, "template", &tmpl) &&
            json_object_is_type(tmpl, json_type_object)) {
            json_object_object_add(body, "type", json_object_new_string("template"));
            json_object_object_add(body, "template", json_object_get(tmpl));
        } else if (!m->text || !*m->text) {
            snprintf(err, errlen, "empty message text");
            goto fail;
        } else if (meta && json_object_object_get_ex(meta, "buttons", &buttons) &&
                   json_object_is_type(buttons, json_type_array) &&
                   json_object_array_length(buttons) > 0) {
            json_object_object_add(body, "type", json_object_new_string("interactive"));
            json_object_object_add(body, "interactive",
                                   interactive(m->text, buttons, str_of(meta, "lang")));
        } else {
            json_object *t = json_object_new_object();
            json_object_object_add(t, "preview_url", json_object_new_boolean(0));
            json_object_object_add(t, "body", utf8_prefix(m->text, WA_BODY_MAX));
            json_object_object_add(body, "type", json_object_new_string("text"));
            json_object_object_add(body, "text", t);
        }
    }
    out->path = ef_asprintf("/%s/messages", number);
    out->body = ef_strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(body);
    json_object_put(meta);
    ef_free(to);
    return 0;
fail:
    json_object_put(body);
    json_object_put(meta);
    ef_free(to);
    return EF_EINVAL;
}

void ef_wa__parse_send(const ef_out_msg *m, long http_status, const char *body, size_t len,
                       ef_send_result *res)
{
    (void)m;
    memset(res, 0, sizeof(*res));
    json_object *root = NULL;
    if (body && len) {
        json_tokener *tok = json_tokener_new_ex(32);
        root = json_tokener_parse_ex(tok, body, (int)len);
        json_tokener_free(tok);
    }
    json_object *error = NULL, *v;
    if (root)
        json_object_object_get_ex(root, "error", &error);
    if (http_status >= 200 && http_status < 300 && !error) {
        res->outcome = EF_SEND_OK;
        json_object *msgs;
        if (root && json_object_object_get_ex(root, "messages", &msgs) &&
            json_object_is_type(msgs, json_type_array) && json_object_array_length(msgs) > 0) {
            const char *id = str_of(json_object_array_get_idx(msgs, 0), "id");
            /* The body is read leniently (a cut-off 2xx still counts as
             * sent): an id that is not UTF-8 text is no id the store takes. */
            if (id && ef_utf8_valid(id, strlen(id)))
                res->platform_message_id = ef_strdup(id);
        }
        json_object_put(root);
        return;
    }
    if (http_status == 0) {
        res->outcome = EF_SEND_RETRY;
        snprintf(res->reason, sizeof(res->reason), "network error");
        json_object_put(root);
        return;
    }
    int64_t code = 0;
    const char *msg = NULL, *details = NULL;
    if (error) {
        if (json_object_object_get_ex(error, "code", &v))
            code = json_object_get_int64(v);
        msg = str_of(error, "message");
        json_object *ed;
        if (json_object_object_get_ex(error, "error_data", &ed))
            details = str_of(ed, "details");
    }
    snprintf(res->reason, sizeof(res->reason), "%lld %.120s%s%.100s", (long long)code,
             msg ? msg : "error", details ? ": " : "", details ? details : "");
    switch (code) {
    case 130429: /* throughput of the business number */
    case 131056: /* pair rate: too many to this customer */
    case 80007:  /* WABA rate limit */
    case 4:      /* app rate limit */
        res->outcome = EF_SEND_RATE;
        res->retry_after_ms = code == 131056 ? 6000 : 0;
        break;
    case 131047:
        res->outcome = EF_SEND_WINDOW;
        break;
    case 131026:
        res->outcome = EF_SEND_FAIL;
        res->undeliverable = true;
        break;
    case 131000:
    case 131016:
    case 131057:
    case 1:
    case 2:
        res->outcome = EF_SEND_RETRY;
        break;
    default:
        res->outcome = http_status >= 500   ? EF_SEND_RETRY
                       : http_status == 429 ? EF_SEND_RATE
                                            : EF_SEND_FAIL;
        break;
    }
    json_object_put(root);
}
