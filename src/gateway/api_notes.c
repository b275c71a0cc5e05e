/*
 * api_notes.c -- internal notes on a conversation (operators write them,
 * the console shows them in the history; they are never queued or sent to
 * the customer, and each is an audited event) and the quick replies the
 * console offers in its reply box (every operator reads them, admins
 * manage them).
 */
#include "gateway/api_int.h"

#include "base/json.h"
#include "base/utf8.h"
#include "store/console.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_MAX_CHARS 4096
#define TITLE_MAX_CHARS 100
#define LANG_MAX 10

/* Characters of valid UTF-8 s; -1 when it is not valid UTF-8. */
static long chars_of(const char *s)
{
    size_t n = strlen(s);
    if (!ef_utf8_valid(s, n))
        return -1;
    long k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\n' && *s != '\r' && *s != '\t')
            return false;
    return true;
}

/* A required (or, on update, optional) text member: 0, or answered. */
static int check_field(ef_api_call *c, const char *key, long max, bool required, const char **out)
{
    json_object *v = NULL;
    *out = NULL;
    bool present = c->json && json_object_object_get_ex(c->json, key, &v);
    if (!present || v == NULL) {
        if (!required)
            return 0;
        char why[80];
        snprintf(why, sizeof(why), "\"%s\" string is required", key);
        ef_api__error(c, 400, why);
        return 400;
    }
    if (!json_object_is_type(v, json_type_string)) {
        char why[80];
        snprintf(why, sizeof(why), "\"%s\" must be a string", key);
        ef_api__error(c, 400, why);
        return 400;
    }
    const char *s = json_object_get_string(v);
    long n = chars_of(s);
    if (n < 0 || blank(s) || n > max) {
        char why[120];
        snprintf(why, sizeof(why), "\"%s\" must be 1..%ld characters of text", key, max);
        ef_api__error(c, 422, why);
        return 422;
    }
    *out = s;
    return 0;
}

/* The store's {"result":..} answer: "ok" -> status with member key's value
 * (or the whole answer when key is NULL); else 404/409 answered. */
static void answer(ef_api_call *c, ef_work_conn *conn, int rc, char *text, int status,
                   const char *key, const char *what)
{
    if (rc != 0) {
        ef_api__store_error(c, rc, what, ef_store_errmsg(conn->st));
        return;
    }
    json_object *res = NULL, *v = NULL;
    char err[80];
    const char *result = NULL;
    if (ef_json_parse(text, strlen(text), 16, &res, err, sizeof(err)) != 0) {
        ef_api__error(c, 500, "unreadable store answer");
    } else if (ef_pj_str(res, "result", true, &result, NULL, NULL, NULL) != 1 || !result) {
        ef_api__error(c, 500, "unexpected store answer");
    } else if (strcmp(result, "notfound") == 0) {
        char why[80];
        snprintf(why, sizeof(why), "%s not found", what);
        ef_api__error(c, 404, why);
    } else if (strcmp(result, "exists") == 0) {
        ef_api__error(c, 409, "a quick reply with this title exists");
    } else if (strcmp(result, "ok") != 0) {
        ef_api__error(c, 500, "unexpected store answer");
    } else {
        json_object *o = json_object_new_object();
        if (key && json_object_object_get_ex(res, key, &v))
            json_object_object_add(o, key, json_object_get(v));
        ef_api__reply(c, status, o);
    }
    if (res)
        json_object_put(res);
    ef_free(text);
}

/* ---- notes ------------------------------------------------------------------ */

void ef_api__notes_list(ef_api_call *c, ef_work_conn *conn)
{
    char *json = NULL;
    int rc = ef_store_notes(conn->st, c->id, &json);
    if (rc != 0) {
        ef_api__store_error(c, rc, "conversation", ef_store_errmsg(conn->st));
        return;
    }
    ef_api__reply_text(c, 200, json);
}

int ef_api__note_body(ef_api_call *c, const char **body)
{
    return check_field(c, "body", NOTE_MAX_CHARS, true, body);
}

void ef_api__notes_add(ef_api_call *c, ef_work_conn *conn)
{
    const char *body = NULL;
    if (ef_api__note_body(c, &body) != 0)
        return;
    char *text = NULL;
    int rc = ef_store_note_add(conn->st, c->id, c->who.sub, body, &text);
    if (rc == 0)
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "conversation=%s note by operator=%s", c->id, c->who.sub);
    answer(c, conn, rc, text, 201, "note", "conversation");
}

/* ---- quick replies -------------------------------------------------------------- */

void ef_api__quick_list(ef_api_call *c, ef_work_conn *conn)
{
    char *json = NULL;
    int rc = ef_store_quick_replies(conn->st, &json);
    if (rc != 0) {
        ef_api__store_error(c, rc, "quick replies", ef_store_errmsg(conn->st));
        return;
    }
    ef_api__reply_text(c, 200, json);
}

/* lang (a short tag or "" to clear) and position (an integer), both
 * optional: 0, or answered 400. */
static int optional_fields(ef_api_call *c, const char **lang, char *pos, size_t poslen)
{
    json_object *v = NULL;
    *lang = NULL;
    pos[0] = '\0';
    if (json_object_object_get_ex(c->json, "lang", &v) && v) {
        const char *l = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        bool ok = json_object_is_type(v, json_type_string) && strlen(l) <= LANG_MAX;
        for (const char *p = l; ok && *p; p++)
            ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '-';
        if (!ok) {
            ef_api__error(c, 400, "\"lang\" must be a language tag such as \"ru\" (or \"\")");
            return 400;
        }
        *lang = l;
    }
    if (json_object_object_get_ex(c->json, "position", &v) && v) {
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < -100000 ||
            json_object_get_int64(v) > 100000) {
            ef_api__error(c, 400, "\"position\" must be an integer (-100000..100000)");
            return 400;
        }
        snprintf(pos, poslen, "%lld", (long long)json_object_get_int64(v));
    }
    return 0;
}

int ef_api__quick_body(ef_api_call *c, bool create, api_quick_in *q)
{
    memset(q, 0, sizeof(*q));
    int rc = check_field(c, "title", TITLE_MAX_CHARS, create, &q->title);
    if (!rc)
        rc = check_field(c, "body", NOTE_MAX_CHARS, create, &q->body);
    if (!rc)
        rc = optional_fields(c, &q->lang, q->pos, sizeof(q->pos));
    return rc;
}

static void quick_put(ef_api_call *c, ef_work_conn *conn, const char *id)
{
    api_quick_in q;
    bool create = id == NULL;
    if (ef_api__quick_body(c, create, &q) != 0)
        return;
    char *text = NULL;
    int rc = ef_store_quick_reply_put(conn->st, id, q.title, q.body, q.lang,
                                      q.pos[0] ? q.pos : NULL, c->who.sub, &text);
    if (rc == 0)
        EF_LOG(EF_LOG_INFO, EF_C_HTTP, "quick reply %s by admin=%s", create ? "added" : "changed",
               c->who.sub);
    answer(c, conn, rc, text, create ? 201 : 200, "quick_reply", "quick reply");
}

/* The {id} of a quick reply is a positive number: true, or answered 404. */
static bool numeric_id(ef_api_call *c)
{
    char *end = NULL;
    long long v = strtoll(c->id, &end, 10);
    if (!c->id[0] || *end || v <= 0 || strlen(c->id) > 18) {
        ef_api__error(c, 404, "quick reply not found");
        return false;
    }
    return true;
}

void ef_api__quick_add(ef_api_call *c, ef_work_conn *conn)
{
    quick_put(c, conn, NULL);
}

void ef_api__quick_update(ef_api_call *c, ef_work_conn *conn)
{
    if (numeric_id(c))
        quick_put(c, conn, c->id);
}

void ef_api__quick_delete(ef_api_call *c, ef_work_conn *conn)
{
    if (!numeric_id(c))
        return;
    int rc = ef_store_quick_reply_delete(conn->st, c->id);
    if (rc != 0) {
        ef_api__store_error(c, rc, "quick reply", ef_store_errmsg(conn->st));
        return;
    }
    EF_LOG(EF_LOG_INFO, EF_C_HTTP, "quick reply %s deleted by admin=%s", c->id, c->who.sub);
    json_object *o = json_object_new_object();
    json_object_object_add(o, "ok", json_object_new_boolean(1));
    ef_api__reply(c, 200, o);
}
