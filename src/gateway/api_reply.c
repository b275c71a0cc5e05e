/*
 * api_reply.c -- the API's answers ({"error": ...} with one log line, JSON
 * bodies) and what handlers read of a request (query arguments, body
 * members). Used by api.c and every api_<resource>.c; uses none of them.
 */
#include "gateway/api_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static void set_out(ef_api_call *c, int status, char *text)
{
    ef_free(c->out);
    c->status = status;
    c->out = text;
    c->out_len = strlen(text);
}

void ef_api__reply_text(ef_api_call *c, int status, char *text)
{
    set_out(c, status, text);
    EF_LOG(EF_LOG_DEBUG, EF_C_HTTP, "status=%d %s %s ms=%lld", status, c->method, c->path,
           (long long)(ef_now_ms() - c->started_ms));
}

void ef_api__reply(ef_api_call *c, int status, json_object *o)
{
    char *text = ef_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    ef_api__reply_text(c, status, text);
}

void ef_api__error(ef_api_call *c, int status, const char *why)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(why));
    set_out(c, status, ef_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)));
    json_object_put(o);
    EF_LOG(status >= 500 ? EF_LOG_WARN : EF_LOG_INFO, EF_C_HTTP,
           "status=%d %s %.120s ip=%s user=%s reason=\"%s\"", status, c->method, c->path, c->ip,
           c->who.sub[0] ? c->who.sub : "-", why);
}

void ef_api__store_error(ef_api_call *c, int rc, const char *what, const char *detail)
{
    char why[200];
    if (rc == EF_ENOTFOUND) {
        snprintf(why, sizeof(why), "%s not found", what);
        ef_api__error(c, 404, why);
    } else if (rc == EF_EINVAL) {
        snprintf(why, sizeof(why), "bad %s", what);
        ef_api__error(c, 400, why);
    } else {
        EF_LOG(EF_LOG_WARN, EF_C_PG, "api %s: %s", what, detail ? detail : ef_strerror(rc));
        ef_api__error(c, 503, "store unavailable, retry later");
    }
}

const char *ef_api__arg(const ef_api_call *c, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < c->nargs; i++)
        if (strncmp(c->args[i], name, n) == 0 && c->args[i][n] == '=')
            return c->args[i] + n + 1;
    return NULL;
}

const char *ef_api__body_str(const ef_api_call *c, const char *key)
{
    json_object *v = NULL;
    if (!c->json || !json_object_object_get_ex(c->json, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

bool ef_api__is_admin(const ef_api_call *c)
{
    return strcmp(c->who.role, "admin") == 0;
}
