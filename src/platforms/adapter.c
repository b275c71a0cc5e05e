/*
 * adapter.c -- helpers shared by the inbound adapters (see adapter.h): one
 * copy of what telegram.c and whatsapp.c used to define each.
 */
#include "platforms/adapter.h"

#include "base/ef.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- notes -------------------------------------------------------------- */

void ef_ad__note(ef_parse_info *info, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(info->note, sizeof(info->note), fmt, ap);
    va_end(ap);
}

void ef_ad__add_note(ef_parse_info *info, const char *fmt, ...)
{
    size_t used = strlen(info->note);
    size_t room = sizeof(info->note) - used;
    if (used > 0) {
        if (room <= 3)
            return;
        memcpy(info->note + used, "; ", 3);
        used += 2;
        room -= 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(info->note + used, room, fmt, ap);
    va_end(ap);
}

/* ---- lookups ------------------------------------------------------------ */

struct json_object *ef_ad__jget(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (!o || !json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

const char *ef_ad__jstr(struct json_object *o, const char *key, size_t *len)
{
    const char *s = NULL;
    if (!o || ef_pj_str(o, key, false, &s, len, NULL, NULL) <= 0)
        return NULL;
    return s;
}

bool ef_ad__jint(struct json_object *o, const char *key, int64_t *out)
{
    return o && ef_pj_int64(o, key, false, out, NULL, NULL) > 0;
}

bool ef_ad__jtrue(struct json_object *o, const char *key)
{
    bool b = false;
    return o && ef_pj_bool(o, key, false, &b, NULL, NULL) > 0 && b;
}

bool ef_ad__nonempty(const char *s)
{
    return s && *s;
}

char *ef_ad__dup_or_null(const char *s)
{
    return s ? ef_strdup(s) : NULL;
}

int ef_ad__sub_obj(struct json_object *parent, const char *key, bool required, const ef_pj_field *t,
                   size_t n, const char *ppath, ef_parse_info *info, struct json_object **out)
{
    struct json_object *o = NULL;
    int rc = ef_pj_obj(parent, key, required, &o, info, ppath);
    if (rc <= 0)
        return rc;
    char path[192];
    /* A path too long for the buffer is cut, which only shortens a note. */
    if (snprintf(path, sizeof(path), "%s.%s", ppath, key) < 0)
        path[0] = '\0';
    rc = ef_pj_check(o, t, n, info, path);
    if (rc < 0)
        return rc;
    *out = o;
    return 1;
}

/* ---- meta_json building ------------------------------------------------- */

void ef_ad__put_str(struct json_object *dst, const char *key, const char *s, size_t len)
{
    json_object_object_add(dst, key, json_object_new_string_len(s, (int)len));
}

void ef_ad__put_cstr(struct json_object *dst, const char *key, const char *s)
{
    if (s)
        json_object_object_add(dst, key, json_object_new_string(s));
}

void ef_ad__put_int(struct json_object *dst, const char *key, int64_t v)
{
    json_object_object_add(dst, key, json_object_new_int64(v));
}

void ef_ad__put_id(struct json_object *dst, const char *key, int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, v);
    json_object_object_add(dst, key, json_object_new_string(buf));
}

void ef_ad__put_raw(struct json_object *dst, const char *key, struct json_object *v)
{
    struct json_object *c = NULL;
    if (!v || json_object_deep_copy(v, &c, NULL) != 0)
        return;
    json_object_object_add(dst, key, c);
}

void ef_ad__copy_str(struct json_object *dst, const char *dkey, struct json_object *src,
                     const char *skey)
{
    size_t len;
    const char *s = ef_ad__jstr(src, skey, &len);
    if (s)
        ef_ad__put_str(dst, dkey, s, len);
}

void ef_ad__copy_int(struct json_object *dst, const char *dkey, struct json_object *src,
                     const char *skey)
{
    int64_t v;
    if (ef_ad__jint(src, skey, &v))
        ef_ad__put_int(dst, dkey, v);
}

void ef_ad__copy_id(struct json_object *dst, const char *dkey, struct json_object *src,
                    const char *skey)
{
    int64_t v;
    if (ef_ad__jint(src, skey, &v))
        ef_ad__put_id(dst, dkey, v);
}

void ef_ad__copy_bool(struct json_object *dst, const char *dkey, struct json_object *src,
                      const char *skey)
{
    bool b;
    if (src && ef_pj_bool(src, skey, false, &b, NULL, NULL) > 0)
        json_object_object_add(dst, dkey, json_object_new_boolean(b));
}

void ef_ad__copy_raw(struct json_object *dst, const char *dkey, struct json_object *src,
                     const char *skey)
{
    ef_ad__put_raw(dst, dkey, ef_ad__jget(src, skey));
}

char *ef_ad__meta_string(struct json_object *meta)
{
    const char *s = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        EF_PANIC("json_object_to_json_string_ext failed");
    return ef_strdup(s);
}

/* ---- events ------------------------------------------------------------- */

enum { K_CHAT = 1, K_SENDER = 2, K_MESSAGE = 4, K_TARGET = 8, K_STATUS = 16 };

/* What the store reads of each kind (sql/003_ingest.sql, ef_ingest):
 * customers are keyed on the sender, messages on the message id, and the
 * acted-upon message or chat on target_id. */
static const unsigned needs[EF_MSG__COUNT] = {
    [EF_MSG_NEW] = K_CHAT | K_SENDER | K_MESSAGE,
    [EF_MSG_EDIT] = K_CHAT | K_SENDER | K_MESSAGE | K_TARGET,
    [EF_MSG_CALLBACK] = K_CHAT | K_SENDER | K_MESSAGE,
    [EF_MSG_REACTION] = K_CHAT | K_SENDER | K_TARGET,
    [EF_MSG_BLOCKED] = K_CHAT,
    [EF_MSG_UNBLOCKED] = K_CHAT,
    [EF_MSG_MIGRATE] = K_CHAT | K_TARGET,
    [EF_MSG_STATUS] = K_TARGET | K_STATUS,
    [EF_MSG_IDENTITY] = K_CHAT | K_SENDER | K_TARGET,
};

int ef_ad__check_keys(const ef_msg *m, ef_parse_info *info, const char *path)
{
    static const struct {
        unsigned bit;
        const char *name;
    } keys[] = {{K_CHAT, "a chat id"},
                {K_SENDER, "a sender id"},
                {K_MESSAGE, "a message id"},
                {K_TARGET, "a target id"},
                {K_STATUS, "a status"}};
    if (m->kind < 0 || m->kind >= EF_MSG__COUNT) {
        ef_ad__note(info, "%s: event of no known kind", path);
        return EF_EPROTO;
    }
    const char *have[] = {m->chat_id, m->sender_id, m->message_id, m->target_id, m->status};
    for (size_t i = 0; i < EF_AD_COUNT(keys); i++) {
        if ((needs[m->kind] & keys[i].bit) && !ef_ad__nonempty(have[i])) {
            ef_ad__note(info, "%s: %s event without %s", path, ef_msg_kind_name(m->kind),
                        keys[i].name);
            return EF_EPROTO;
        }
    }
    return 0;
}
