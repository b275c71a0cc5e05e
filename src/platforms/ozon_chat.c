/*
 * ozon_chat.c -- Ozon buyer chats (Seller API chat methods; Premium Plus
 * and Pro for sending): polling, messages to ef_msg, replies, read marks.
 *
 * One poll is one request, so the cursor walks a small state machine
 * (<= 63 bytes):
 *   "" | "L:<last chat>"   POST /v3/chat/list {"filter":{"chat_status":
 *                          "Opened","unread_only":true},"limit":100} ->
 *                          the next unread Buyer_Seller chat after <last
 *                          chat> (round robin) -> "H:<chat>:<first unread>"
 *   "H:<chat>:<from>"      POST /v3/chat/history {"chat_id","direction":
 *                          "Forward","from_message_id","limit":100} -> the
 *                          Customer's messages (data[] joined, context.
 *                          order_number kept as order_ref) -> "H:<chat>:<last>"
 *                          while has_next, else "L:<chat>"
 * A handled message is marked read (the read_receipts policy queues a
 * markRead row: POST /v2/chat/read {"chat_id","from_message_id"}), so the
 * chat leaves the unread list; a message read twice is stored once (its
 * message_id is the platform id).
 *
 * Replies: POST /v1/chat/send/message {"chat_id","text"} (1..1000
 * characters). Ozon refuses replies outside its windows (FBO 48 h after the
 * buyer's last message; FBS/rFBS until 72 h after delivery) and without a
 * Premium subscription: such a reply is failed with Ozon's reason.
 */
#include "platforms/channel_int.h"
#include "platforms/ozon_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAT_ID_MAX 40 /* a UUID; longer ids do not fit the cursor */

/* ---- messages ------------------------------------------------------------ */

static char *text_of(json_object *data, size_t *len)
{
    ef_buf b;
    ef_buf_init(&b, 64 * 1024);
    size_t n = json_object_is_type(data, json_type_array) ? json_object_array_length(data) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(data, i);
        if (!json_object_is_type(s, json_type_string))
            continue;
        if (b.len)
            ef_buf_append(&b, "\n", 1);
        ef_buf_append(&b, json_object_get_string(s), (size_t)json_object_get_string_len(s));
    }
    return ef_buf_steal(&b, len);
}

/* A message id member: Ozon sends a uint64, as a number or a string. */
static bool id_at(json_object *o, const char *key, char *buf, size_t len)
{
    json_object *v = ef_ad__jget(o, key);
    if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0 &&
        (size_t)json_object_get_string_len(v) < len) {
        snprintf(buf, len, "%s", json_object_get_string(v));
        return true;
    }
    if (json_object_is_type(v, json_type_int)) {
        snprintf(buf, len, "%llu", (unsigned long long)json_object_get_uint64(v));
        return true;
    }
    return false;
}

static bool id_of(json_object *msg, char *buf, size_t len)
{
    return id_at(msg, "message_id", buf, len);
}

static ef_msg *message_msg(json_object *root, const char *chat, const char *id, json_object *user)
{
    ef_msg *m = ef_msg_new(EF_MSG_NEW, "ozon");
    m->chat_id = ef_strdup(chat);
    m->chat_type = ef_strdup("private");
    m->message_id = ef_strdup(id);
    json_object *uid = ef_ad__jget(user, "id");
    m->sender_id = ef_strdup(uid ? json_object_get_string(uid) : chat);
    m->text = text_of(ef_ad__jget(root, "data"), &m->text_len);
    m->content_type = ef_strdup(ef_ad__jtrue(root, "is_image") ? "photo" : "text");
    m->date = ef_mkt__time(ef_ad__jstr(root, "created_at", NULL));
    json_object *meta = json_object_new_object();
    json_object *ctx = ef_ad__jget(root, "context");
    ef_ad__copy_str(meta, "order_ref", ctx, "order_number");
    ef_ad__copy_raw(meta, "sku", ctx, "sku");
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    return m;
}

int ef_oz__parse(json_object *root, ef_msg_list *out, ef_parse_info *info)
{
    char id[32];
    const char *chat = ef_ad__jstr(root, "chat_id", NULL);
    json_object *user = ef_ad__jget(root, "user");
    if (!json_object_is_type(root, json_type_object) || !ef_ad__nonempty(chat) ||
        !id_of(root, id, sizeof(id))) {
        ef_ad__note(info, "message: no chat_id or message_id");
        return EF_EPROTO;
    }
    const char *type = ef_ad__jstr(user, "type", NULL);
    if (!type || strcmp(type, "Customer") != 0) {
        ef_ad__note(info, "message %s: not the buyer's (user.type %s)", id, type ? type : "-");
        return 0;
    }
    ef_msg *m = message_msg(root, chat, id, user);
    if (ef_ad__check_keys(m, info, "message") != 0) {
        ef_msg_free(m);
        return EF_EPROTO;
    }
    ef_msg_list_push(out, m);
    return 0;
}

/* ---- the cursor ------------------------------------------------------------ */

/* "H:<chat>:<from>" into chat and from; false for any other cursor. */
static bool history_cursor(const char *cursor, char *chat, size_t clen, char *from, size_t flen)
{
    if (!cursor || strncmp(cursor, "H:", 2) != 0)
        return false;
    const char *sep = strrchr(cursor + 2, ':');
    if (!sep || (size_t)(sep - cursor - 2) >= clen || strlen(sep + 1) >= flen)
        return false;
    snprintf(chat, clen, "%.*s", (int)(sep - cursor - 2), cursor + 2);
    snprintf(from, flen, "%s", sep + 1);
    return chat[0] && from[0];
}

int ef_oz__poll_request(const void *cfg, const char *cursor, int timeout_s, ef_out_req *rq)
{
    const oz_cfg *c = cfg;
    (void)timeout_s;
    memset(rq, 0, sizeof(*rq));
    char chat[CHAT_ID_MAX + 1], from[24];
    json_object *b = json_object_new_object();
    if (history_cursor(cursor, chat, sizeof(chat), from, sizeof(from))) {
        rq->url = ef_asprintf("%s/v3/chat/history", c->base);
        json_object_object_add(b, "chat_id", json_object_new_string(chat));
        json_object_object_add(b, "direction", json_object_new_string("Forward"));
        json_object_object_add(b, "from_message_id",
                               json_object_new_uint64(strtoull(from, NULL, 10)));
        json_object_object_add(b, "limit", json_object_new_int(100));
    } else {
        json_object *f = json_object_new_object();
        rq->url = ef_asprintf("%s/v3/chat/list", c->base);
        json_object_object_add(f, "chat_status", json_object_new_string("Opened"));
        json_object_object_add(f, "unread_only", json_object_new_boolean(true));
        json_object_object_add(b, "filter", f);
        json_object_object_add(b, "limit", json_object_new_int(100));
    }
    rq->body = ef_strdup(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN));
    json_object_put(b);
    rq->header = ef_asprintf("Client-Id: %s", c->client_id);
    rq->header2 = ef_asprintf("Api-Key: %s", c->api_key);
    return 0;
}

/* ---- answers ---------------------------------------------------------------- */

static void poll_fault(const char *what, long status, json_object *root, ef_poll_result *res)
{
    ef_mkt_result mr;
    memset(&mr, 0, sizeof(mr));
    ef_mkt__fault(what, status, ef_oz__message(root), &mr);
    res->fault = mr.fault == EF_EAUTH || mr.fault == EF_EPROTO ? mr.fault : EF_EIO;
    if (mr.fault == EF_ELIMIT)
        res->retry_after_ms = 1000;
    snprintf(res->reason, sizeof(res->reason), "%s", mr.reason);
}

/* The first unread buyer chat after last (in the list's order, wrapping). */
static void take_list(const oz_cfg *c, const char *last, json_object *root, ef_poll_result *res)
{
    json_object *chats = ef_ad__jget(root, "chats");
    size_t n = json_object_is_type(chats, json_type_array) ? json_object_array_length(chats) : 0;
    const char *pick = NULL;
    char pick_from[32] = "";
    bool after = !last || !*last;
    for (size_t pass = 0; pass < 2 && !pick; pass++) {
        for (size_t i = 0; i < n && !pick; i++) {
            json_object *it = json_object_array_get_idx(chats, i);
            json_object *chat = ef_ad__jget(it, "chat");
            const char *id = ef_ad__jstr(chat, "chat_id", NULL);
            const char *type = ef_ad__jstr(chat, "chat_type", NULL);
            int64_t unread = 0;
            ef_ad__jint(it, "unread_count", &unread);
            if (pass == 0 && id && last && strcmp(id, last) == 0) {
                after = true; /* the chats after it first, then from the top */
                continue;
            }
            char from[32];
            if (after && id && strlen(id) <= CHAT_ID_MAX && unread > 0 && type &&
                strcmp(type, "Buyer_Seller") == 0 &&
                id_at(it, "first_unread_message_id", from, sizeof(from))) {
                pick = id;
                snprintf(pick_from, sizeof(pick_from), "%s", from);
            }
        }
        after = true;
    }
    if (pick)
        snprintf(res->next_cursor, sizeof(res->next_cursor), "H:%s:%s", pick, pick_from);
    else
        res->retry_after_ms = c->chat_idle_ms;
}

static void take_history(const oz_cfg *c, const char *chat, json_object *root, ef_msg_list *out,
                         ef_poll_result *res)
{
    json_object *msgs = ef_ad__jget(root, "messages");
    size_t n = json_object_is_type(msgs, json_type_array) ? json_object_array_length(msgs) : 0;
    char last[32] = "";
    for (size_t i = 0; i < n; i++) {
        json_object *msg = json_object_array_get_idx(msgs, i);
        ef_parse_info info;
        memset(&info, 0, sizeof(info));
        if (!json_object_is_type(msg, json_type_object)) {
            /* json_object_object_add asserts on anything else (the process
             * would abort on one bad element of Ozon's answer) */
            res->skipped++;
            snprintf(res->reason, sizeof(res->reason), "message skipped: not an object");
            continue;
        }
        json_object_object_add(msg, "chat_id", json_object_new_string(chat));
        if (ef_oz__parse(msg, out, &info) != 0) {
            res->skipped++;
            snprintf(res->reason, sizeof(res->reason), "message skipped: %.200s", info.note);
        }
        id_of(msg, last, sizeof(last));
    }
    if (ef_ad__jtrue(root, "has_next") && last[0])
        snprintf(res->next_cursor, sizeof(res->next_cursor), "H:%s:%s", chat, last);
    else
        snprintf(res->next_cursor, sizeof(res->next_cursor), "L:%s", chat);
    res->retry_after_ms = c->chat_busy_ms;
}

void ef_oz__poll_response(const void *cfg, const char *cursor, long status, const char *body,
                          size_t len, int max_depth, ef_msg_list *out, ef_poll_result *res)
{
    memset(res, 0, sizeof(*res));
    char chat[CHAT_ID_MAX + 1], from[24];
    bool history = history_cursor(cursor, chat, sizeof(chat), from, sizeof(from));
    json_object *root = NULL;
    char why[128];
    if (ef_json_parse(body ? body : "", len, max_depth, &root, why, sizeof(why)) != 0)
        root = NULL;
    if (status != 200 || !json_object_is_type(root, json_type_object))
        poll_fault(history ? "chat/history" : "chat/list", status, root, res);
    else if (history)
        take_history(cfg, chat, root, out, res);
    else
        take_list(cfg, cursor && strncmp(cursor, "L:", 2) == 0 ? cursor + 2 : NULL, root, res);
    json_object_put(root);
}

/* ---- replies and read marks ------------------------------------------------- */

static char *body_of(json_object *b)
{
    char *s = ef_strdup(
        json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(b);
    return s;
}

int ef_oz__build_send(const void *cfg, const ef_out_msg *m, ef_out_req *rq, char *err,
                      size_t errlen)
{
    const oz_cfg *c = cfg;
    memset(rq, 0, sizeof(*rq));
    json_object *meta = m->meta_json ? json_tokener_parse(m->meta_json) : NULL;
    const char *method = ef_ad__jstr(meta, "method", NULL);
    json_object *b = json_object_new_object();
    int rc = 0;
    json_object_object_add(b, "chat_id", json_object_new_string(m->chat_id ? m->chat_id : ""));
    if (method && strcmp(method, "markRead") == 0) {
        const char *id = ef_ad__jstr(meta, "message_id", NULL);
        json_object_object_add(b, "from_message_id",
                               json_object_new_uint64(id ? strtoull(id, NULL, 10) : 0));
        rq->url = ef_asprintf("%s/v2/chat/read", c->base);
    } else if (method) {
        ef_errf(err, errlen, "ozon: no API call for %s", method);
        rc = EF_EINVAL;
    } else if (!m->text || !*m->text) {
        ef_errf(err, errlen, "ozon: nothing to send");
        rc = EF_EINVAL;
    } else {
        json_object_object_add(b, "text", json_object_new_string(m->text));
        rq->url = ef_asprintf("%s/v1/chat/send/message", c->base);
        rq->counted = true;
    }
    json_object_put(meta);
    if (rc) {
        json_object_put(b);
        return rc;
    }
    rq->body = body_of(b);
    rq->header = ef_asprintf("Client-Id: %s", c->client_id);
    rq->header2 = ef_asprintf("Api-Key: %s", c->api_key);
    return 0;
}

/* Whether an error message is about the Api-Key (any case). */
static bool mentions_key(const char *msg)
{
    char low[256];
    size_t i = 0;
    for (; msg && msg[i] && i < sizeof(low) - 1; i++)
        low[i] = (char)(msg[i] >= 'A' && msg[i] <= 'Z' ? msg[i] + 32 : msg[i]);
    low[i] = '\0';
    return strstr(low, "api-key") || strstr(low, "api key");
}

void ef_oz__parse_send(const void *cfg, const ef_out_msg *m, long status, const char *body,
                       size_t len, ef_send_result *res)
{
    (void)cfg;
    (void)m;
    memset(res, 0, sizeof(*res));
    if (status == 200) {
        res->outcome = EF_SEND_OK;
        return;
    }
    json_object *root = ef_mkt__parse(body, len);
    const char *msg = ef_oz__message(root);
    snprintf(res->reason, sizeof(res->reason), "ozon: HTTP %ld %.200s", status,
             msg ? msg : "(no message)");
    /* A key Ozon no longer knows is the channel's fault; a 403 for a
     * method the subscription lacks (Premium) is this reply's. */
    bool key = status == 401 || (status == 403 && mentions_key(msg));
    json_object_put(root);
    if (key)
        res->outcome = EF_SEND_AUTH;
    else if (status == 429) {
        res->outcome = EF_SEND_RATE;
        res->retry_after_ms = 1000;
    } else
        res->outcome = status == 0 || status >= 500 ? EF_SEND_RETRY : EF_SEND_FAIL;
}
