/*
 * channel_int.h -- what the adapters' open() functions share: reading the
 * credentials and settings JSON of an integration row, the checks every
 * channel makes, and the common settings. Private to src/platforms.
 */
#ifndef EF_PLATFORMS_CHANNEL_INT_H
#define EF_PLATFORMS_CHANNEL_INT_H

#include "platforms/platform.h"

/* Secrets shorter than this are refused: a guessable webhook secret is no
 * secret (issue 7, fail closed). */
#define EF_SECRET_MIN_LEN 16

/* Parses json (NULL or "" is an empty object) as a strict JSON object; what
 * names it in err ("credentials", "settings"). *out owned by the caller. */
int ef_chan__object(const char *json, const char *what, struct json_object **out, char *err,
                    size_t errlen);
/* A string member, or NULL when absent, null or not a string. */
const char *ef_chan__str(struct json_object *o, const char *key);
/* A required string member: EF_EINVAL naming it when absent or empty. */
int ef_chan__need(struct json_object *o, const char *what, const char *key, const char **out,
                  char *err, size_t errlen);
/* An integer member (a JSON integer or a decimal string), else dflt. */
int64_t ef_chan__int(struct json_object *o, const char *key, int64_t dflt);
/* A secret of at least EF_SECRET_MIN_LEN bytes: EF_EINVAL naming key. */
int ef_chan__secret(const char *what, const char *key, const char *value, char *err, size_t errlen);
/* url without trailing slashes (dflt when url is NULL or empty); owned. */
char *ef_chan__base_url(const char *url, const char *dflt);
/* The settings every platform shares: "mode" (webhook | poll, when the
 * platform can poll), "rate_per_sec" (per bot / number). EF_EINVAL for a
 * bad value. */
int ef_chan__common(const ef_platform_ops *ops, struct json_object *settings,
                    ef_platform_policy *policy, char *err, size_t errlen);
/* "method" in a row's meta: an API call that is not a message
 * (answerCallbackQuery, markRead), which does not count against limits. */
bool ef_chan__is_method(const char *meta_json);

#endif /* EF_PLATFORMS_CHANNEL_INT_H */
