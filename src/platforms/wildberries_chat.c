/*
 * wildberries_chat.c -- Wildberries buyer chats (buyer-chat-api, polling
 * only): events to ef_msg, the events poll, and replies.
 *
 * GET /api/v1/seller/events?next=<ms> answers {"result":{"next", "totalEvents",
 * "events":[{"chatID", "eventID", "eventType", "isNewChat", "message":
 * {"text", "attachments":{"goodCard":{"rid", "nmID", ...}}}, "source",
 * "addTimestamp", "replySign", "sender":"client"|"seller", "clientID",
 * "clientName"}]}, "errors":[]}; the cursor is the answer's "next", kept
 * when totalEvents is 0. A buyer's message is one event (its eventID the
 * platform message id); the seller's own messages come back as events too
 * and are skipped. The chat's replySign is the chat key (and the event's
 * thread_id): every reply, the bot's or an operator's, carries it back; the
 * chatID stays in the message's meta.
 *
 * POST /api/v1/seller/message, multipart/form-data: replySign, message
 * (<= 1000 characters). 10 requests per 10 s per seller (personal and
 * service tokens): the policy keeps half for polls, half for replies.
 */
#include "platforms/channel_int.h"
#include "platforms/wildberries_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define BOUNDARY "easyflow-wb-7f3a9c1e5b2d40869e1c"

/* The linked order and the good, when the event names one. */
static void put_good(json_object *meta, json_object *message)
{
    json_object *good = ef_ad__jget(ef_ad__jget(message, "attachments"), "goodCard");
    if (!json_object_is_type(good, json_type_object))
        return;
    ef_ad__copy_str(meta, "order_ref", good, "rid");
    ef_ad__put_raw(meta, "good", good);
}

static ef_msg *event_msg(json_object *ev, const char *chat, const char *id)
{
    ef_msg *m = ef_msg_new(EF_MSG_NEW, "wildberries");
    json_object *message = ef_ad__jget(ev, "message");
    size_t len = 0;
    const char *text = ef_ad__jstr(message, "text", &len);
    /* The chat key is the chat's replySign (it names the chat, and every
     * reply needs it: an operator's from the console as well as the bot's),
     * the chatID when the event has none. */
    const char *sign = ef_ad__jstr(ev, "replySign", NULL);
    m->chat_id = ef_strdup(sign && *sign ? sign : chat);
    m->chat_type = ef_strdup("private");
    m->message_id = ef_strdup(id);
    const char *client = ef_ad__jstr(ev, "clientID", NULL);
    m->sender_id = ef_strdup(client && *client ? client : chat);
    m->sender_name = ef_ad__dup_or_null(ef_ad__jstr(ev, "clientName", NULL));
    m->text = ef_strndup(text ? text : "", text ? len : 0);
    m->text_len = text ? len : 0;
    m->content_type = ef_strdup(text && len ? "text" : "attachment");
    int64_t ms = 0;
    m->date = ef_ad__jint(ev, "addTimestamp", &ms) ? ms / 1000 : 0;
    m->thread_id = ef_ad__dup_or_null(ef_ad__jstr(ev, "replySign", NULL));
    json_object *meta = json_object_new_object();
    ef_ad__put_cstr(meta, "chat_id", chat);
    ef_ad__copy_str(meta, "source", ev, "source");
    ef_ad__copy_bool(meta, "is_new_chat", ev, "isNewChat");
    put_good(meta, message);
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    return m;
}

int ef_wb__parse(json_object *root, ef_msg_list *out, ef_parse_info *info)
{
    const char *chat = ef_ad__jstr(root, "chatID", NULL);
    const char *id = ef_ad__jstr(root, "eventID", NULL);
    if (!json_object_is_type(root, json_type_object) || !ef_ad__nonempty(chat) ||
        !ef_ad__nonempty(id)) {
        ef_ad__note(info, "event: no chatID or eventID");
        return EF_EPROTO;
    }
    const char *sender = ef_ad__jstr(root, "sender", NULL);
    const char *type = ef_ad__jstr(root, "eventType", NULL);
    if (!sender || strcmp(sender, "client") != 0 || (type && strcmp(type, "message") != 0)) {
        ef_ad__note(info, "event %s: not a buyer's message (sender %s)", id, sender ? sender : "-");
        return 0;
    }
    ef_msg *m = event_msg(root, chat, id);
    if (ef_ad__check_keys(m, info, "event") != 0) {
        ef_msg_free(m);
        return EF_EPROTO;
    }
    ef_msg_list_push(out, m);
    return 0;
}

/* ---- polling ------------------------------------------------------------- */

int ef_wb__poll_request(const void *cfg, const char *cursor, int timeout_s, ef_out_req *rq)
{
    const wb_cfg *c = cfg;
    (void)timeout_s;
    memset(rq, 0, sizeof(*rq));
    if (cursor && *cursor)
        rq->url = ef_asprintf("%s/api/v1/seller/events?next=%s", c->chat, cursor);
    else
        rq->url = ef_asprintf("%s/api/v1/seller/events", c->chat);
    rq->header = ef_strdup(c->auth);
    return 0;
}

static void poll_fault(const char *what, long status, json_object *root, ef_poll_result *res)
{
    ef_mkt_result mr;
    memset(&mr, 0, sizeof(mr));
    json_object *errs = ef_ad__jget(root, "errors");
    const char *msg = ef_wb__message(root);
    if (!msg && json_object_is_type(errs, json_type_array) && json_object_array_length(errs))
        msg = json_object_get_string(json_object_array_get_idx(errs, 0));
    ef_mkt__fault(what, status, msg, &mr);
    res->fault = mr.fault == EF_EAUTH ? EF_EAUTH : mr.fault == EF_EPROTO ? EF_EPROTO : EF_EIO;
    if (mr.fault == EF_ELIMIT)
        res->retry_after_ms = 10000; /* the window of the chat methods' limit */
    snprintf(res->reason, sizeof(res->reason), "%s", mr.reason);
}

static void poll_events(const wb_cfg *c, json_object *result, ef_msg_list *out, ef_poll_result *res)
{
    json_object *events = ef_ad__jget(result, "events");
    int64_t next = 0, total = 0;
    ef_ad__jint(result, "totalEvents", &total);
    size_t n = json_object_is_type(events, json_type_array) ? json_object_array_length(events) : 0;
    for (size_t i = 0; i < n; i++) {
        ef_parse_info info;
        memset(&info, 0, sizeof(info));
        if (ef_wb__parse(json_object_array_get_idx(events, i), out, &info) != 0) {
            res->skipped++;
            snprintf(res->reason, sizeof(res->reason), "event skipped: %.200s", info.note);
        }
    }
    if (n && ef_ad__jint(result, "next", &next) && next > 0)
        snprintf(res->next_cursor, sizeof(res->next_cursor), "%lld", (long long)next);
    res->retry_after_ms = total > 0 ? c->chat_busy_ms : c->chat_idle_ms;
}

void ef_wb__poll_response(const void *cfg, const char *cursor, long status, const char *body,
                          size_t len, int max_depth, ef_msg_list *out, ef_poll_result *res)
{
    (void)cursor;
    memset(res, 0, sizeof(*res));
    json_object *root = NULL;
    char why[128];
    if (ef_json_parse(body ? body : "", len, max_depth, &root, why, sizeof(why)) != 0)
        root = NULL;
    json_object *result = ef_ad__jget(root, "result");
    if (status == 200 && json_object_is_type(result, json_type_object))
        poll_events(cfg, result, out, res);
    else
        poll_fault("seller/events", status, root, res);
    json_object_put(root);
}

/* ---- replies ------------------------------------------------------------- */

static void part(ef_buf *b, const char *name, const char *value)
{
    char head[160];
    int n = snprintf(head, sizeof(head),
                     "--" BOUNDARY "\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n", name);
    ef_buf_append(b, head, (size_t)n);
    ef_buf_append(b, value, strlen(value));
    ef_buf_append(b, "\r\n", 2);
}

/* The reply's replySign: the row's thread id (the buyer message it
 * answers), else the chat key (the sign itself, see event_msg). */
static const char *reply_sign(json_object *meta, const char *chat_key)
{
    const char *s = ef_ad__jstr(meta, "thread_id", NULL);
    if (s && *s)
        return s;
    return chat_key && *chat_key ? chat_key : NULL;
}

int ef_wb__build_send(const void *cfg, const ef_out_msg *m, ef_out_req *rq, char *err,
                      size_t errlen)
{
    const wb_cfg *c = cfg;
    memset(rq, 0, sizeof(*rq));
    if (ef_chan__is_method(m->meta_json)) {
        ef_errf(err, errlen,
                "wildberries: no API call for this (read receipts and button "
                "answers do not exist in buyer chats)");
        return EF_EINVAL;
    }
    json_object *meta = m->meta_json ? json_tokener_parse(m->meta_json) : NULL;
    const char *sign = reply_sign(meta, m->chat_id);
    int rc = 0;
    if (!sign) {
        ef_errf(err, errlen,
                "wildberries: the chat's replySign is unknown (no buyer message "
                "to answer)");
        rc = EF_EINVAL;
    } else if (!m->text || !*m->text || strstr(m->text, BOUNDARY)) {
        ef_errf(err, errlen, "wildberries: nothing to send");
        rc = EF_EINVAL;
    } else {
        ef_buf b;
        ef_buf_init(&b, 64 * 1024);
        part(&b, "replySign", sign);
        part(&b, "message", m->text);
        ef_buf_append(&b, "--" BOUNDARY "--\r\n", strlen("--" BOUNDARY "--\r\n"));
        rq->body = ef_buf_steal(&b, NULL);
        rq->url = ef_asprintf("%s/api/v1/seller/message", c->chat);
        rq->header = ef_strdup(c->auth);
        rq->content_type = "multipart/form-data; boundary=" BOUNDARY;
        rq->counted = true;
    }
    json_object_put(meta);
    return rc;
}

void ef_wb__parse_send(const void *cfg, const ef_out_msg *m, long status, const char *body,
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
    ef_poll_result pr;
    memset(&pr, 0, sizeof(pr));
    poll_fault("seller/message", status, root, &pr);
    json_object_put(root);
    snprintf(res->reason, sizeof(res->reason), "%s", pr.reason);
    if (status == 401)
        res->outcome = EF_SEND_AUTH;
    else if (status == 429) {
        res->outcome = EF_SEND_RATE;
        res->retry_after_ms = 10000;
    } else
        res->outcome = status == 0 || status >= 500 ? EF_SEND_RETRY : EF_SEND_FAIL;
}
