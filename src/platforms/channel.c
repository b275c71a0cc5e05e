/*
 * channel.c -- helpers shared by the adapters' open(): see channel_int.h.
 */
#include "platforms/channel_int.h"

#include "base/url.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ef_chan__object(const char *json, const char *what, struct json_object **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (!json || !*json) {
        *out = json_object_new_object();
        return 0;
    }
    char why[160] = "";
    json_object *o = NULL;
    if (ef_json_parse(json, strlen(json), 16, &o, why, sizeof(why)) != 0) {
        ef_errf(err, errlen, "%s: not valid JSON (%s)", what, why);
        return EF_EINVAL;
    }
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        ef_errf(err, errlen, "%s: expected a JSON object", what);
        return EF_EINVAL;
    }
    *out = o;
    return 0;
}

const char *ef_chan__str(struct json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

int ef_chan__need(struct json_object *o, const char *what, const char *key, const char **out,
                  char *err, size_t errlen)
{
    const char *s = ef_chan__str(o, key);
    if (!s || !*s) {
        ef_errf(err, errlen, "%s: \"%s\" is missing", what, key);
        return EF_EINVAL;
    }
    *out = s;
    return 0;
}

int64_t ef_chan__int(struct json_object *o, const char *key, int64_t dflt)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v))
        return dflt;
    if (json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;
        long long n = strtoll(s, &end, 10);
        if (*s && *end == '\0')
            return n;
    }
    return dflt;
}

int ef_chan__secret(const char *what, const char *key, const char *value, char *err, size_t errlen)
{
    if (!value || strlen(value) < EF_SECRET_MIN_LEN) {
        ef_errf(err, errlen, "%s: \"%s\" must be at least %d characters", what, key,
                EF_SECRET_MIN_LEN);
        return EF_EINVAL;
    }
    return 0;
}

char *ef_chan__base_url(const char *url, const char *dflt)
{
    char *t = ef_strdup(url && *url ? url : dflt);
    size_t n = strlen(t);
    while (n && t[n - 1] == '/')
        t[--n] = '\0';
    return t;
}

/* The api_url setting carries the token to the platform: https://, or
 * http:// only on loopback (tests, a local proxy). */
static int check_api_url(const char *url, char *err, size_t errlen)
{
    if (!url || !*url || ef_url_https_or_loopback(url))
        return 0;
    ef_errf(err, errlen,
            "settings: \"api_url\" must be https:// (plain http:// only on a loopback address: "
            "127.0.0.0/8, ::1, localhost)");
    return EF_EINVAL;
}

int ef_chan__common(const ef_platform_ops *ops, struct json_object *settings,
                    ef_platform_policy *policy, char *err, size_t errlen)
{
    *policy = ops->policy;
    if (check_api_url(ef_chan__str(settings, "api_url"), err, errlen))
        return EF_EINVAL;
    const char *mode = ef_chan__str(settings, "mode");
    if (mode && strcmp(mode, "poll") == 0) {
        if (!(ops->supports & EF_PLAT_POLL)) {
            ef_errf(err, errlen, "settings: %s cannot long-poll (mode=poll)", ops->name);
            return EF_EINVAL;
        }
        policy->receive_poll = true;
        policy->receive_webhook = false;
    } else if (mode && strcmp(mode, "webhook") != 0) {
        ef_errf(err, errlen, "settings: mode must be webhook or poll, not \"%.40s\"", mode);
        return EF_EINVAL;
    }
    int64_t rate = ef_chan__int(settings, "rate_per_sec", 0);
    if (rate < 0) {
        ef_errf(err, errlen, "settings: rate_per_sec must be positive");
        return EF_EINVAL;
    }
    /* The account's own quota (WhatsApp numbers are raised from 80/s with
     * their tier; a shared bot may be given less). */
    if (rate > 0) {
        policy->per_account.n = (int)(rate > 100000 ? 100000 : rate);
        policy->per_account.per_ms = 1000;
    }
    return 0;
}

bool ef_chan__is_method(const char *meta_json)
{
    return meta_json && strstr(meta_json, "\"method\"") != NULL;
}

void ef_out_req_cleanup(ef_out_req *r)
{
    ef_free(r->path);
    ef_free(r->url);
    ef_free(r->body);
    ef_free(r->header);
    ef_free(r->header2);
    r->path = r->url = r->body = r->header = r->header2 = NULL;
}
