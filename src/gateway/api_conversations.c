/*
 * api_conversations.c -- /api/v1/conversations: the console's list and
 * view, and what an operator does to a conversation (claim, reply,
 * release, close, escalate).
 *
 * PostgreSQL is the truth for a conversation's status: every change is
 * made (and audited in conversation_events) there, in one statement that
 * locks the row; then the conversation's Redis session is deleted, so the
 * pipeline reads the new status from PostgreSQL on the next message. An
 * operator's reply is a queued outbox row (role operator); the dispatcher
 * is woken to send it through the conversation's integration.
 *
 * A channel with a reply window (WhatsApp: 24 hours after the customer's
 * last message) refuses free text once it closed: 422
 * {"error":"outside_reply_window", "reason", "reply_window"} before
 * anything is queued; {"template": NAME} then queues the integration's
 * approved template instead (the dispatcher sends it as one).
 */
#include "gateway/api_int.h"

#include "base/json.h"
#include "base/utf8.h"
#include "store/console.h"
#include "store/platform_metrics.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 50
#define LIST_MAX 200
#define Q_MAX 200
#define MESSAGES_MAX 500
#define REPLY_MAX_CHARS 4096

void ef_api__conv_list(ef_api_call *c, ef_work_conn *conn)
{
    const char *status = ef_api__arg(c, "status");
    const char *q = ef_api__arg(c, "q");
    const char *lim = ef_api__arg(c, "limit");
    const char *before = ef_api__arg(c, "before");
    if (status && strcmp(status, "escalated") != 0 && strcmp(status, "active") != 0 &&
        strcmp(status, "closed") != 0 && strcmp(status, "paused") != 0) {
        ef_api__error(c, 400, "status must be escalated, active, paused or closed");
        return;
    }
    long limit = LIST_DEFAULT;
    if (lim) {
        char *end = NULL;
        limit = strtol(lim, &end, 10);
        if (!*lim || *end || limit < 1 || limit > LIST_MAX) {
            ef_api__error(c, 400, "limit must be 1..200");
            return;
        }
    }
    if ((q && strlen(q) > Q_MAX) || (before && strlen(before) > 80)) {
        ef_api__error(c, 400, "q or before too long");
        return;
    }
    char *json = NULL;
    int rc = ef_store_conversations_list(conn->st, status, q && *q ? q : NULL, (int)limit,
                                         before && *before ? before : NULL, &json);
    if (rc != 0) {
        ef_api__store_error(c, rc, "list query (status, before)", ef_store_errmsg(conn->st));
        return;
    }
    ef_api__reply_text(c, 200, json);
}

/* The orders linked to the conversation (its business's only), as a JSON
 * array (new reference); [] when they cannot be read (logged). */
static json_object *linked_orders(ef_api_call *c, ef_work_conn *conn)
{
    char *json = NULL;
    json_object *a = NULL;
    char err[80];
    if (ef_store_conversation_orders(conn->st, c->id, &json) != 0)
        EF_LOG(EF_LOG_WARN, EF_C_PG, "conversation=%s orders not read: %s", c->id,
               ef_store_errmsg(conn->st));
    else if (ef_json_parse(json, strlen(json), 32, &a, err, sizeof(err)) != 0 ||
             !json_object_is_type(a, json_type_array)) {
        json_object_put(a);
        a = NULL;
    }
    ef_free(json);
    return a ? a : json_object_new_array();
}

void ef_api__conv_get(ef_api_call *c, ef_work_conn *conn)
{
    char *json = NULL;
    int rc = ef_store_conversation_full(conn->st, c->id, MESSAGES_MAX, &json);
    if (rc != 0) {
        ef_api__store_error(c, rc, "conversation", ef_store_errmsg(conn->st));
        return;
    }
    json_object *o = NULL;
    char err[80];
    if (ef_json_parse(json, strlen(json), 32, &o, err, sizeof(err)) != 0) {
        ef_api__reply_text(c, 200, json); /* as the store made it */
        return;
    }
    ef_free(json);
    api_window w;
    if (ef_api__window(c, conn, c->id, &w) == 0) /* else the view without its window */
        json_object_object_add(o, "reply_window", ef_api__window_json(&w));
    json_object_object_add(o, "orders", linked_orders(c, conn));
    ef_api__reply(c, 200, o);
}

/* The conversation's Redis session goes: the next message reads the
 * status from PostgreSQL. */
static void forget_session(ef_api_call *c, ef_work_conn *conn, json_object *res)
{
    const char *sid = NULL;
    if (ef_pj_str(res, "session_id", false, &sid, NULL, NULL, NULL) != 1 || !sid)
        return;
    if (ef_kv_session_del(conn->kv, sid) != 0)
        EF_LOG(EF_LOG_WARN, EF_C_REDIS, "conversation=%s session not deleted: %s", c->id,
               ef_kv_errmsg(conn->kv));
}

/* Answers a store result that is not "ok"; true when it was. */
static bool answer_refusal(ef_api_call *c, json_object *res)
{
    const char *result = NULL;
    ef_pj_str(res, "result", true, &result, NULL, NULL, NULL);
    if (result && strcmp(result, "ok") == 0)
        return false;
    if (result && strcmp(result, "notfound") == 0) {
        ef_api__error(c, 404, "conversation not found");
    } else if (result && strcmp(result, "closed") == 0) {
        ef_api__error(c, 409, "the conversation is closed");
    } else if (result && strcmp(result, "held") == 0) {
        json_object *holder = NULL;
        json_object_object_get_ex(res, "holder", &holder);
        ef_api__error(c, 409, "another operator holds this conversation");
        json_object *o = json_object_new_object();
        json_object_object_add(o, "error",
                               json_object_new_string("another operator holds this conversation"));
        if (holder)
            json_object_object_add(o, "holder", json_object_get(holder));
        ef_free(c->out);
        c->out = ef_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    } else {
        ef_api__error(c, 500, "unexpected store answer");
    }
    return true;
}

/* The store's JSON answer, parsed; NULL with the error answered. */
static json_object *parse_result(ef_api_call *c, ef_work_conn *conn, int rc, char *text)
{
    if (rc != 0) {
        ef_api__store_error(c, rc, "conversation", ef_store_errmsg(conn->st));
        ef_free(text);
        return NULL;
    }
    json_object *res = NULL;
    char err[80];
    if (ef_json_parse(text, strlen(text), 16, &res, err, sizeof(err)) != 0) {
        EF_LOG(EF_LOG_ERROR, EF_C_PG, "unreadable store answer: %s", err);
        ef_api__error(c, 500, "unreadable store answer");
    }
    ef_free(text);
    return res;
}

/* {"changed": bool, "conversation": {...}} plus extra (may be NULL). */
static void reply_result(ef_api_call *c, int status, json_object *res, const char *extra)
{
    json_object *o = json_object_new_object(), *v = NULL;
    if (json_object_object_get_ex(res, "changed", &v))
        json_object_object_add(o, "changed", json_object_get(v));
    if (extra && json_object_object_get_ex(res, extra, &v))
        json_object_object_add(o, extra, json_object_get(v));
    if (json_object_object_get_ex(res, "conversation", &v))
        json_object_object_add(o, "conversation", json_object_get(v));
    ef_api__reply(c, status, o);
}

/* Whether the bot had the conversation (so an operator taking it over
 * owes the customer the hand-off message). */
static bool bot_had_it(const api_window *w)
{
    return strcmp(w->status, "active") == 0 || strcmp(w->status, "paused") == 0;
}

/* An operator took the conversation from the bot: the bot's hand-off
 * message (fsm.handoff) is queued, before anything the operator says. */
static void handoff(ef_api_call *c, ef_work_conn *conn, const api_window *w, json_object *res)
{
    json_object *conv = NULL, *st = NULL;
    if (!w->handoff[0] || !bot_had_it(w) ||
        !json_object_object_get_ex(res, "conversation", &conv) ||
        !json_object_object_get_ex(conv, "status", &st) ||
        strcmp(json_object_get_string(st), "escalated") != 0)
        return;
    if (ef_store_conversation_handoff(conn->st, c->id, w->handoff) != 0) {
        EF_LOG(EF_LOG_WARN, EF_C_PG, "conversation=%s hand-off message not queued: %s", c->id,
               ef_store_errmsg(conn->st));
        return;
    }
    if (c->api->opts.wake)
        c->api->opts.wake(c->api->opts.wake_ud);
}

/* Runs action; true when it was done (res: the store's answer, owned by
 * the caller), false when answered already (refused or failed). */
static bool do_act(ef_api_call *c, ef_work_conn *conn, const char *action, const api_window *w,
                   json_object **res)
{
    char *text = NULL;
    int rc =
        ef_store_conversation_act(conn->st, c->id, c->who.sub, action, ef_api__is_admin(c), &text);
    *res = parse_result(c, conn, rc, text);
    if (!*res)
        return false;
    if (answer_refusal(c, *res)) {
        json_object_put(*res);
        *res = NULL;
        return false;
    }
    json_object *v = NULL;
    if (json_object_object_get_ex(*res, "changed", &v) && json_object_get_boolean(v)) {
        forget_session(c, conn, *res);
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "conversation=%s %s by operator=%s", c->id, action,
               c->who.sub);
        if (w)
            handoff(c, conn, w, *res);
    }
    return true;
}

static void act(ef_api_call *c, ef_work_conn *conn, const char *action)
{
    api_window w;
    bool takes_over = strcmp(action, "claim") == 0 || strcmp(action, "escalate") == 0;
    bool known = takes_over && ef_api__window(c, conn, c->id, &w) == 0;
    json_object *res = NULL;
    if (do_act(c, conn, action, known ? &w : NULL, &res)) {
        reply_result(c, 200, res, NULL);
        json_object_put(res);
    }
}

void ef_api__conv_claim(ef_api_call *c, ef_work_conn *conn)
{
    act(c, conn, "claim");
}

void ef_api__conv_release(ef_api_call *c, ef_work_conn *conn)
{
    act(c, conn, "release");
}

void ef_api__conv_close(ef_api_call *c, ef_work_conn *conn)
{
    act(c, conn, "close");
}

void ef_api__conv_escalate(ef_api_call *c, ef_work_conn *conn)
{
    act(c, conn, "escalate");
}

/* The reply text: 0, or answered 400/422. */
static int check_text(ef_api_call *c, const char *text)
{
    if (!text) {
        ef_api__error(c, 400, "\"text\" string is required");
        return 400;
    }
    size_t n = strlen(text), chars = 0;
    bool blank = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)text[i];
        chars += (ch & 0xC0) != 0x80;
        if (ch != ' ' && ch != '\n' && ch != '\r' && ch != '\t')
            blank = false;
    }
    if (blank) {
        ef_api__error(c, 422, "the text is empty");
        return 422;
    }
    if (chars > REPLY_MAX_CHARS || !ef_utf8_valid(text, n)) {
        ef_api__error(c, 422, "the text is longer than 4096 characters");
        return 422;
    }
    return 0;
}

/* 422 outside_reply_window with what the console needs to offer the
 * template. */
static void refuse_window(ef_api_call *c, const api_window *w)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string("outside_reply_window"));
    char why[200];
    snprintf(why, sizeof(why),
             "the customer's last message is older than %lld hours: this platform accepts "
             "only an approved template until the customer writes again",
             (long long)(w->limit_s / 3600));
    json_object_object_add(o, "reason", json_object_new_string(why));
    json_object_object_add(o, "reply_window", ef_api__window_json(w));
    ef_api__error(c, 422, "outside_reply_window"); /* the log line */
    ef_api__reply(c, 422, o);
}

int ef_api__reply_body(ef_api_call *c, const char **text, const char **tmpl)
{
    *text = ef_api__body_str(c, "text");
    *tmpl = ef_api__body_str(c, "template");
    return *tmpl ? 0 : check_text(c, *text);
}

/* What to queue: the text, or for a template "[template NAME]" (the
 * dispatcher sends the channel's template for it). NULL: answered. */
static char *reply_content(ef_api_call *c, ef_work_conn *conn, api_window *wp)
{
    const char *text = NULL, *tmpl = NULL;
    if (ef_api__reply_body(c, &text, &tmpl) != 0)
        return NULL;
    api_window w;
    int rc = ef_api__window(c, conn, c->id, &w);
    *wp = w;
    if (rc != 0) {
        ef_api__store_error(c, rc, "conversation", ef_store_errmsg(conn->st));
        return NULL;
    }
    if (!tmpl) {
        if (w.closed) {
            refuse_window(c, &w);
            return NULL;
        }
        return ef_strdup(text);
    }
    if (!w.closed) {
        ef_api__error(c, 422, "the reply window is open: send text, not a template");
        return NULL;
    }
    if (!w.template_[0] || strcmp(tmpl, w.template_) != 0) {
        ef_api__error(c, 422, "no such approved template for this conversation's integration");
        return NULL;
    }
    return ef_asprintf("[template %s]", w.template_);
}

void ef_api__conv_reply(ef_api_call *c, ef_work_conn *conn)
{
    api_window w;
    char *content = reply_content(c, conn, &w);
    if (!content)
        return;
    if (w.handoff[0] && bot_had_it(&w)) {
        /* Taken from the bot first, so the hand-off message goes before. */
        json_object *claimed = NULL;
        if (!do_act(c, conn, "claim", &w, &claimed)) {
            ef_free(content);
            return;
        }
        json_object_put(claimed);
    }
    char *out = NULL;
    int rc = ef_store_conversation_reply(conn->st, c->id, c->who.sub, content, ef_api__is_admin(c),
                                         &out);
    ef_free(content);
    json_object *res = parse_result(c, conn, rc, out);
    if (!res)
        return;
    if (!answer_refusal(c, res)) {
        json_object *v = NULL;
        if (json_object_object_get_ex(res, "changed", &v) && json_object_get_boolean(v))
            forget_session(c, conn, res);
        if (c->api->opts.wake)
            c->api->opts.wake(c->api->opts.wake_ud);
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "conversation=%s operator reply queued operator=%s", c->id,
               c->who.sub);
        reply_result(c, 201, res, "message");
    }
    json_object_put(res);
}
