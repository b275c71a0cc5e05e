/*
 * adapter.h -- helpers the inbound adapters share (telegram.c, whatsapp.c):
 * notes, borrowed lookups of already validated fields, meta_json building,
 * and the check that an event carries every key the store needs.
 * Private to src/platforms (and its tests).
 *
 * Lookups borrow from the json-c tree; they tolerate a NULL object (absent
 * parent) and treat a JSON null like an absent field. The put_ and copy_
 * helpers add to a meta object and skip what is absent.
 *
 * Thread model: pure functions; any thread.
 */
#ifndef EF_PLATFORMS_ADAPTER_H
#define EF_PLATFORMS_ADAPTER_H

#include "base/json.h"
#include "base/msg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

#define EF_AD_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- notes -------------------------------------------------------------- */

/* Replaces info->note (errors). */
void ef_ad__note(ef_parse_info *info, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends to info->note, "; "-separated, as far as it has room (things
 * accepted but not stored). */
void ef_ad__add_note(ef_parse_info *info, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- lookups ------------------------------------------------------------ */

/* Borrowed member, NULL when o is NULL, the member absent or JSON null. */
struct json_object *ef_ad__jget(struct json_object *o, const char *key);
/* A string member, NULL when absent or not a string; *len (if len is not
 * NULL) its exact length. */
const char *ef_ad__jstr(struct json_object *o, const char *key, size_t *len);
/* An int64 member: true when present and exact (*out written). */
bool ef_ad__jint(struct json_object *o, const char *key, int64_t *out);
/* A boolean member that is present and true. */
bool ef_ad__jtrue(struct json_object *o, const char *key);
bool ef_ad__nonempty(const char *s);
/* A copy of s (owned by the caller), or NULL when s is NULL. */
char *ef_ad__dup_or_null(const char *s);

/* Looks up parent[key] as an object and validates it against the table t
 * of n fields (ef_pj_check); the note path is "<ppath>.<key>". Returns 1
 * (present, *out set), 0 (absent and optional) or EF_EPROTO. */
int ef_ad__sub_obj(struct json_object *parent, const char *key, bool required, const ef_pj_field *t,
                   size_t n, const char *ppath, ef_parse_info *info, struct json_object **out);

/* ---- meta_json building ------------------------------------------------- */

void ef_ad__put_str(struct json_object *dst, const char *key, const char *s, size_t len);
/* Skipped when s is NULL. */
void ef_ad__put_cstr(struct json_object *dst, const char *key, const char *s);
void ef_ad__put_int(struct json_object *dst, const char *key, int64_t v);
/* An id as a decimal string (ids never pass through double). */
void ef_ad__put_id(struct json_object *dst, const char *key, int64_t v);
/* dst[key] = a deep copy of v (numbers keep their source text); skipped
 * when v is NULL. */
void ef_ad__put_raw(struct json_object *dst, const char *key, struct json_object *v);

/* dst[dkey] = src[skey] when present with the right type. */
void ef_ad__copy_str(struct json_object *dst, const char *dkey, struct json_object *src,
                     const char *skey);
void ef_ad__copy_int(struct json_object *dst, const char *dkey, struct json_object *src,
                     const char *skey);
void ef_ad__copy_id(struct json_object *dst, const char *dkey, struct json_object *src,
                    const char *skey);
void ef_ad__copy_bool(struct json_object *dst, const char *dkey, struct json_object *src,
                      const char *skey);
void ef_ad__copy_raw(struct json_object *dst, const char *dkey, struct json_object *src,
                     const char *skey);

/* meta as compact JSON text with raw UTF-8 and unescaped '/' (owned). */
char *ef_ad__meta_string(struct json_object *meta);

/* ---- events ------------------------------------------------------------- */

/* Whether m carries every key the store needs for its kind (chat id,
 * sender id, message id, target, status: see the table in adapter.c).
 * 0, or EF_EPROTO with info->note "<path>: <kind> event without <key>";
 * an adapter never hands on an event with a NULL key. */
int ef_ad__check_keys(const ef_msg *m, ef_parse_info *info, const char *path);

#endif /* EF_PLATFORMS_ADAPTER_H */
