/*
 * telegram.c -- the Telegram Bot API adapter: inbound normalization of every
 * Update type into ef_msg's (see platform.h for the contract, PLATFORMS.md
 * part A for the wire format).
 *
 * Rules kept here:
 *  - every id is read as int64 (ef_pj_int64 refuses anything wider) and
 *    stored as a decimal string; no id ever passes through int or double;
 *  - text is copied byte-exact with its JSON length;
 *  - a payload whose required fields have the wrong JSON type is refused
 *    (EF_EPROTO, field path in info->note) and leaves no partial event;
 *    payloads we do not store (inline queries, polls, unknown new types)
 *    are accepted with a note, so Telegram is never asked to retry them;
 *    an update type this file does not know also sets info->unknown_type
 *    (info->what names it) for the gateway's metrics;
 *  - no event leaves with a NULL key the store needs (ef_ad__check_keys):
 *    a reaction with neither user nor actor_chat is EF_EPROTO;
 *  - entity offsets are UTF-16 code units; bad ones are dropped, counted,
 *    and never fail the update.
 *
 * What the events look like (ids are decimal int64 strings):
 *  - chat_id "<chat.id>", or "<chat.id>@<business_connection_id>" for
 *    business chats; message_id "<chat_id>:<message_id>"; EDIT and REACTION
 *    carry the acted-upon message as target_id in the same form;
 *  - CALLBACK: message_id "callback:<query id>", callback_id the query id,
 *    text the callback data, date 0 (Telegram gives no press time);
 *  - MIGRATE: chat_id the old group id, target_id the new supergroup id,
 *    from either service message;
 *  - BLOCKED / UNBLOCKED from my_chat_member; REACTION status is a JSON
 *    array of emoji strings ("custom:<id>", "paid");
 *  - everything else worth keeping goes to meta_json (compact, raw UTF-8),
 *    always with update_id and update_type.
 *
 * Thread model: pure functions over a borrowed json-c tree; no globals.
 */
#include "platforms/platform.h"

#include "platforms/adapter.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entity texts copied into meta_json stop being copied beyond this many
 * bytes per update (start/end still locate them in ef_msg.text): hostile
 * input with thousands of entities spanning a long text stays linear. */
#define ENTITY_TEXT_BUDGET (64 * 1024)

static const char PLATFORM[] = "telegram";

/* One update being parsed. */
typedef struct upd {
    int64_t update_id;
    const char *key; /* the payload key ("message") */
    ef_msg_kind kind;
    ef_parse_info *info;
} upd;

/* ---- payload descriptions ---------------------------------------------- */

static const ef_pj_field message_fields[] = {
    {"message_id", EF_PJ_INT64, true},
    {"chat", EF_PJ_OBJECT, true},
    {"date", EF_PJ_INT64, true},
    {"from", EF_PJ_OBJECT, false},
    {"sender_chat", EF_PJ_OBJECT, false},
    {"edit_date", EF_PJ_INT64, false},
    {"message_thread_id", EF_PJ_INT64, false},
    {"is_topic_message", EF_PJ_BOOL, false},
    {"media_group_id", EF_PJ_STRING, false},
    {"business_connection_id", EF_PJ_STRING, false},
    {"text", EF_PJ_STRING, false},
    {"caption", EF_PJ_STRING, false},
    {"entities", EF_PJ_ARRAY, false},
    {"caption_entities", EF_PJ_ARRAY, false},
    {"migrate_to_chat_id", EF_PJ_INT64, false},
    {"migrate_from_chat_id", EF_PJ_INT64, false},
    {"reply_to_message", EF_PJ_OBJECT, false},
    {"external_reply", EF_PJ_OBJECT, false},
    {"quote", EF_PJ_OBJECT, false},
    {"forward_origin", EF_PJ_OBJECT, false},
    {"via_bot", EF_PJ_OBJECT, false},
    {"photo", EF_PJ_ARRAY, false},
    {"animation", EF_PJ_OBJECT, false},
    {"video", EF_PJ_OBJECT, false},
    {"video_note", EF_PJ_OBJECT, false},
    {"voice", EF_PJ_OBJECT, false},
    {"audio", EF_PJ_OBJECT, false},
    {"document", EF_PJ_OBJECT, false},
    {"sticker", EF_PJ_OBJECT, false},
    {"location", EF_PJ_OBJECT, false},
    {"venue", EF_PJ_OBJECT, false},
    {"contact", EF_PJ_OBJECT, false},
    {"dice", EF_PJ_OBJECT, false},
    {"poll", EF_PJ_OBJECT, false},
    {"story", EF_PJ_OBJECT, false},
    {"paid_media", EF_PJ_OBJECT, false},
    {"checklist", EF_PJ_OBJECT, false},
};

static const ef_pj_field chat_fields[] = {
    {"id", EF_PJ_INT64, true},           {"type", EF_PJ_STRING, true},
    {"title", EF_PJ_STRING, false},      {"username", EF_PJ_STRING, false},
    {"first_name", EF_PJ_STRING, false}, {"last_name", EF_PJ_STRING, false},
};

static const ef_pj_field user_fields[] = {
    {"id", EF_PJ_INT64, true},           {"is_bot", EF_PJ_BOOL, false},
    {"first_name", EF_PJ_STRING, false}, {"last_name", EF_PJ_STRING, false},
    {"username", EF_PJ_STRING, false},   {"language_code", EF_PJ_STRING, false},
};

static const ef_pj_field entity_fields[] = {
    {"type", EF_PJ_STRING, true},
    {"offset", EF_PJ_INT64, true},
    {"length", EF_PJ_INT64, true},
    {"url", EF_PJ_STRING, false},
    {"user", EF_PJ_OBJECT, false},
    {"language", EF_PJ_STRING, false},
    {"custom_emoji_id", EF_PJ_STRING, false},
    {"unix_time", EF_PJ_INT64, false},
};

/* PhotoSize, Animation, Audio, Document, Video, VideoNote, Voice, Sticker. */
static const ef_pj_field file_fields[] = {
    {"file_id", EF_PJ_STRING, true},    {"file_unique_id", EF_PJ_STRING, false},
    {"file_name", EF_PJ_STRING, false}, {"mime_type", EF_PJ_STRING, false},
    {"file_size", EF_PJ_INT64, false},  {"width", EF_PJ_INT64, false},
    {"height", EF_PJ_INT64, false},     {"length", EF_PJ_INT64, false},
    {"duration", EF_PJ_INT64, false},   {"performer", EF_PJ_STRING, false},
    {"title", EF_PJ_STRING, false},     {"emoji", EF_PJ_STRING, false},
    {"set_name", EF_PJ_STRING, false},  {"type", EF_PJ_STRING, false},
    {"is_animated", EF_PJ_BOOL, false}, {"is_video", EF_PJ_BOOL, false},
};

static const ef_pj_field location_fields[] = {
    {"latitude", EF_PJ_NUMBER, true},
    {"longitude", EF_PJ_NUMBER, true},
    {"horizontal_accuracy", EF_PJ_NUMBER, false},
    {"live_period", EF_PJ_INT64, false},
    {"heading", EF_PJ_INT64, false},
    {"proximity_alert_radius", EF_PJ_INT64, false},
};

static const ef_pj_field venue_fields[] = {
    {"location", EF_PJ_OBJECT, true},
    {"title", EF_PJ_STRING, true},
    {"address", EF_PJ_STRING, true},
    {"foursquare_id", EF_PJ_STRING, false},
    {"foursquare_type", EF_PJ_STRING, false},
    {"google_place_id", EF_PJ_STRING, false},
    {"google_place_type", EF_PJ_STRING, false},
};

static const ef_pj_field contact_fields[] = {
    {"phone_number", EF_PJ_STRING, true}, {"first_name", EF_PJ_STRING, true},
    {"last_name", EF_PJ_STRING, false},   {"user_id", EF_PJ_INT64, false},
    {"vcard", EF_PJ_STRING, false},
};

static const ef_pj_field dice_fields[] = {
    {"emoji", EF_PJ_STRING, true},
    {"value", EF_PJ_INT64, true},
};

static const ef_pj_field poll_fields[] = {
    {"id", EF_PJ_STRING, false},
    {"question", EF_PJ_STRING, true},
    {"type", EF_PJ_STRING, false},
};

static const ef_pj_field story_fields[] = {
    {"chat", EF_PJ_OBJECT, true},
    {"id", EF_PJ_INT64, true},
};

static const ef_pj_field paid_media_fields[] = {
    {"star_count", EF_PJ_INT64, true},
    {"paid_media", EF_PJ_ARRAY, false},
};

static const ef_pj_field checklist_fields[] = {
    {"title", EF_PJ_STRING, true},
    {"tasks", EF_PJ_ARRAY, false},
};

static const ef_pj_field reply_fields[] = {
    {"message_id", EF_PJ_INT64, true},
};

static const ef_pj_field external_reply_fields[] = {
    {"origin", EF_PJ_OBJECT, true},
    {"chat", EF_PJ_OBJECT, false},
    {"message_id", EF_PJ_INT64, false},
};

static const ef_pj_field quote_fields[] = {
    {"text", EF_PJ_STRING, true},
    {"position", EF_PJ_INT64, false},
    {"is_manual", EF_PJ_BOOL, false},
};

/* MessageOrigin: user / hidden_user / chat / channel. */
static const ef_pj_field origin_fields[] = {
    {"type", EF_PJ_STRING, true},         {"date", EF_PJ_INT64, true},
    {"sender_user", EF_PJ_OBJECT, false}, {"sender_user_name", EF_PJ_STRING, false},
    {"sender_chat", EF_PJ_OBJECT, false}, {"chat", EF_PJ_OBJECT, false},
    {"message_id", EF_PJ_INT64, false},   {"author_signature", EF_PJ_STRING, false},
};

static const ef_pj_field callback_fields[] = {
    {"id", EF_PJ_STRING, true},
    {"from", EF_PJ_OBJECT, true},
    {"message", EF_PJ_OBJECT, false},
    {"inline_message_id", EF_PJ_STRING, false},
    {"chat_instance", EF_PJ_STRING, false},
    {"data", EF_PJ_STRING, false},
    {"game_short_name", EF_PJ_STRING, false},
};

/* MaybeInaccessibleMessage: an InaccessibleMessage has only these, date 0. */
static const ef_pj_field callback_message_fields[] = {
    {"chat", EF_PJ_OBJECT, true},
    {"message_id", EF_PJ_INT64, true},
    {"date", EF_PJ_INT64, true},
    {"message_thread_id", EF_PJ_INT64, false},
    {"business_connection_id", EF_PJ_STRING, false},
};

static const ef_pj_field member_update_fields[] = {
    {"chat", EF_PJ_OBJECT, true},
    {"from", EF_PJ_OBJECT, true},
    {"date", EF_PJ_INT64, true},
    {"old_chat_member", EF_PJ_OBJECT, true},
    {"new_chat_member", EF_PJ_OBJECT, true},
};

static const ef_pj_field member_fields[] = {
    {"status", EF_PJ_STRING, true},
    {"user", EF_PJ_OBJECT, false},
};

static const ef_pj_field reaction_update_fields[] = {
    {"chat", EF_PJ_OBJECT, true},        {"message_id", EF_PJ_INT64, true},
    {"date", EF_PJ_INT64, true},         {"user", EF_PJ_OBJECT, false},
    {"actor_chat", EF_PJ_OBJECT, false}, {"old_reaction", EF_PJ_ARRAY, true},
    {"new_reaction", EF_PJ_ARRAY, true},
};

static const ef_pj_field reaction_type_fields[] = {
    {"type", EF_PJ_STRING, true},
    {"emoji", EF_PJ_STRING, false},
    {"custom_emoji_id", EF_PJ_STRING, false},
};

/* Message content fields in classification order: animation before
 * document and venue before location, because Telegram sets the latter of
 * each pair too for old clients. */
static const char *const content_keys[] = {
    "animation", "venue",    "photo",      "video",     "video_note", "voice",
    "audio",     "document", "sticker",    "location",  "contact",    "dice",
    "poll",      "story",    "paid_media", "checklist", "text",
};

/* Fields that make a message a service message (nothing to store). */
static const char *const service_keys[] = {
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "message_auto_delete_timer_changed",
    "pinned_message",
    "invoice",
    "successful_payment",
    "refunded_payment",
    "users_shared",
    "chat_shared",
    "gift",
    "unique_gift",
    "connected_website",
    "write_access_allowed",
    "passport_data",
    "proximity_alert_triggered",
    "boost_added",
    "chat_background_set",
    "checklist_tasks_done",
    "checklist_tasks_added",
    "direct_message_price_changed",
    "forum_topic_created",
    "forum_topic_edited",
    "forum_topic_closed",
    "forum_topic_reopened",
    "general_forum_topic_hidden",
    "general_forum_topic_unhidden",
    "giveaway_created",
    "giveaway",
    "giveaway_winners",
    "giveaway_completed",
    "paid_message_price_changed",
    "suggested_post_approved",
    "suggested_post_approval_failed",
    "suggested_post_declined",
    "suggested_post_paid",
    "suggested_post_refunded",
    "video_chat_scheduled",
    "video_chat_started",
    "video_chat_ended",
    "video_chat_participants_invited",
    "web_app_data",
};

/* ---- small helpers ------------------------------------------------------ */

static char *i64str(int64_t v)
{
    return ef_asprintf("%" PRId64, v);
}

/* The conversation key: a business chat is a different conversation from
 * the bot's own chat with the same id. */
static char *chat_key(int64_t chat_id, const char *business_connection_id)
{
    if (business_connection_id)
        return ef_asprintf("%" PRId64 "@%s", chat_id, business_connection_id);
    return i64str(chat_id);
}

static char *join_name(const char *first, const char *last)
{
    if (first && last)
        return ef_asprintf("%s %s", first, last);
    return ef_ad__dup_or_null(first ? first : last);
}

/* ---- meta_json building ------------------------------------------------- */

static struct json_object *chat_meta(struct json_object *chat)
{
    struct json_object *o = json_object_new_object();
    ef_ad__copy_id(o, "id", chat, "id");
    ef_ad__copy_str(o, "type", chat, "type");
    ef_ad__copy_str(o, "title", chat, "title");
    ef_ad__copy_str(o, "username", chat, "username");
    return o;
}

static struct json_object *meta_new(const upd *u)
{
    struct json_object *meta = json_object_new_object();
    ef_ad__put_int(meta, "update_id", u->update_id);
    ef_ad__put_cstr(meta, "update_type", u->key);
    return meta;
}

/* ---- senders ------------------------------------------------------------ */

static void sender_from_user(ef_msg *m, struct json_object *user)
{
    int64_t id;
    if (ef_ad__jint(user, "id", &id))
        m->sender_id = i64str(id);
    m->sender_name =
        join_name(ef_ad__jstr(user, "first_name", NULL), ef_ad__jstr(user, "last_name", NULL));
    m->sender_username = ef_ad__dup_or_null(ef_ad__jstr(user, "username", NULL));
    m->sender_lang = ef_ad__dup_or_null(ef_ad__jstr(user, "language_code", NULL));
    m->sender_is_bot = ef_ad__jtrue(user, "is_bot");
}

static void sender_from_chat(ef_msg *m, struct json_object *chat)
{
    int64_t id;
    if (ef_ad__jint(chat, "id", &id))
        m->sender_id = i64str(id);
    const char *title = ef_ad__jstr(chat, "title", NULL);
    m->sender_name = title ? ef_strdup(title)
                           : join_name(ef_ad__jstr(chat, "first_name", NULL),
                                       ef_ad__jstr(chat, "last_name", NULL));
    m->sender_username = ef_ad__dup_or_null(ef_ad__jstr(chat, "username", NULL));
}

/* ---- entities ----------------------------------------------------------- */

/* One UTF-16 offset to convert; `slot` is where the byte offset goes. */
typedef struct epos {
    int64_t off16;
    size_t *slot;
    bool *ok;
} epos;

static int epos_cmp(const void *a, const void *b)
{
    const epos *x = a;
    const epos *y = b;
    return (x->off16 > y->off16) - (x->off16 < y->off16);
}

typedef struct ent {
    struct json_object *obj;
    int64_t off16, len16;
    size_t start, end;
    bool start_ok, end_ok;
} ent;

/*
 * Converts every entity's UTF-16 start and end to byte offsets in one walk
 * of the text: the positions are sorted once, then a single cursor moves
 * forward through the text and never back, so the work is O(text + n log n)
 * however the offsets are chosen. A position that splits a surrogate pair
 * stays !ok and the cursor stays where it is; once the cursor reaches the
 * end of the text every remaining (larger) position is out of range and
 * stays !ok at O(1) each. Character lengths follow ef_utf16_to_byte().
 */
static void convert_offsets(ent *e, size_t n, const char *text, size_t tlen)
{
    epos *pos = ef_calloc(n > 0 ? 2 * n : 1, sizeof(*pos));
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].off16 < 0 || e[i].len16 < 0 || e[i].len16 > INT64_MAX - e[i].off16)
            continue;
        pos[np++] = (epos){e[i].off16, &e[i].start, &e[i].start_ok};
        pos[np++] = (epos){e[i].off16 + e[i].len16, &e[i].end, &e[i].end_ok};
    }
    qsort(pos, np, sizeof(*pos), epos_cmp);
    const unsigned char *s = (const unsigned char *)text;
    size_t at = 0;     /* byte offset of the cursor, a character boundary */
    int64_t units = 0; /* its UTF-16 offset */
    for (size_t i = 0; i < np; i++) {
        while (units < pos[i].off16) {
            unsigned c = at < tlen ? s[at] : 0;
            size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (at >= tlen || len > tlen - at)
                goto done; /* this position and all after it are past the end */
            units += len == 4 ? 2 : 1;
            at += len;
        }
        if (units != pos[i].off16)
            continue; /* splits a surrogate pair */
        *pos[i].slot = at;
        *pos[i].ok = true;
    }
done:
    ef_free(pos);
}

/* "/start@MyBot payload" -> command "/start", command_bot "MyBot",
 * command_args "payload" (everything after the first space). */
static void add_command(struct json_object *meta, const char *text, size_t tlen, size_t start,
                        size_t end)
{
    const char *cmd = text + start;
    size_t clen = end - start;
    if (clen < 2 || cmd[0] != '/')
        return;
    const char *at = memchr(cmd, '@', clen);
    if (at) {
        size_t blen = clen - (size_t)(at - cmd) - 1;
        if (blen > 0)
            ef_ad__put_str(meta, "command_bot", at + 1, blen);
        clen = (size_t)(at - cmd);
    }
    ef_ad__put_str(meta, "command", cmd, clen);
    const char *sp = memchr(text + end, ' ', tlen - end);
    if (sp && (size_t)(sp + 1 - text) < tlen)
        ef_ad__put_str(meta, "command_args", sp + 1, tlen - (size_t)(sp + 1 - text));
}

/*
 * meta[akey] = the entities of msg[akey] against text, with byte offsets.
 * Entities of the wrong JSON shape are a protocol error; entities whose
 * offsets do not fit the text are dropped and counted in *dropped.
 */
static int add_entities(const upd *u, struct json_object *msg, const char *akey, const char *text,
                        size_t tlen, bool want_command, struct json_object *meta, int64_t *dropped,
                        size_t *text_budget)
{
    struct json_object *arr = NULL;
    struct json_object *list = NULL;
    ent *e = NULL;
    char path[160];
    int rc = ef_pj_arr(msg, akey, false, &arr, u->info, u->key);
    if (rc <= 0)
        return rc;
    size_t n = json_object_array_length(arr);
    e = ef_calloc(n ? n : 1, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        struct json_object *user = NULL;
        e[i].obj = json_object_array_get_idx(arr, i);
        snprintf(path, sizeof(path), "%s.%s[%zu]", u->key, akey, i);
        rc = ef_pj_check(e[i].obj, entity_fields, EF_AD_COUNT(entity_fields), u->info, path);
        if (rc < 0)
            goto fail;
        rc = ef_ad__sub_obj(e[i].obj, "user", false, user_fields, EF_AD_COUNT(user_fields), path,
                            u->info, &user);
        if (rc < 0)
            goto fail;
        ef_ad__jint(e[i].obj, "offset", &e[i].off16);
        ef_ad__jint(e[i].obj, "length", &e[i].len16);
    }
    convert_offsets(e, n, text, tlen);

    bool have_command = false;
    list = json_object_new_array();
    for (size_t i = 0; i < n; i++) {
        if (!e[i].start_ok || !e[i].end_ok) {
            (*dropped)++;
            continue;
        }
        struct json_object *item = json_object_new_object();
        const char *type = ef_ad__jstr(e[i].obj, "type", NULL);
        size_t elen = e[i].end - e[i].start;
        ef_ad__put_cstr(item, "type", type);
        ef_ad__put_int(item, "offset16", e[i].off16);
        ef_ad__put_int(item, "length16", e[i].len16);
        ef_ad__put_int(item, "start", (int64_t)e[i].start);
        ef_ad__put_int(item, "end", (int64_t)e[i].end);
        if (elen <= *text_budget) {
            ef_ad__put_str(item, "text", text + e[i].start, elen);
            *text_budget -= elen;
        }
        ef_ad__copy_str(item, "url", e[i].obj, "url");
        struct json_object *user = ef_ad__jget(e[i].obj, "user");
        if (user)
            ef_ad__copy_id(item, "user_id", user, "id");
        ef_ad__copy_str(item, "language", e[i].obj, "language");
        ef_ad__copy_str(item, "custom_emoji_id", e[i].obj, "custom_emoji_id");
        ef_ad__copy_int(item, "unix_time", e[i].obj, "unix_time");
        json_object_array_add(list, item);
        if (want_command && !have_command && e[i].off16 == 0 && strcmp(type, "bot_command") == 0) {
            add_command(meta, text, tlen, e[i].start, e[i].end);
            have_command = true;
        }
    }
    json_object_object_add(meta, akey, list);
    ef_free(e);
    return 0;

fail:
    json_object_put(list);
    ef_free(e);
    return rc;
}

/* ---- message content ---------------------------------------------------- */

static const char *classify(struct json_object *msg)
{
    for (size_t i = 0; i < EF_AD_COUNT(content_keys); i++)
        if (ef_ad__jget(msg, content_keys[i]))
            return content_keys[i];
    return NULL;
}

static const char *service_field(struct json_object *msg)
{
    for (size_t i = 0; i < EF_AD_COUNT(service_keys); i++) {
        struct json_object *v = NULL;
        if (json_object_object_get_ex(msg, service_keys[i], &v))
            return service_keys[i];
    }
    return NULL;
}

static int64_t area(struct json_object *size)
{
    int64_t w = 0, h = 0;
    ef_ad__jint(size, "width", &w);
    ef_ad__jint(size, "height", &h);
    if (w <= 0 || h <= 0)
        return 0;
    if (w > INT64_MAX / h)
        return INT64_MAX;
    return w * h;
}

/* The PhotoSize to keep: the largest by width*height, else the last. */
static int pick_photo(const upd *u, struct json_object *photos, struct json_object **out)
{
    char path[160];
    struct json_object *best = NULL;
    int64_t best_area = -1;
    size_t n = json_object_array_length(photos);
    for (size_t i = 0; i < n; i++) {
        struct json_object *p = json_object_array_get_idx(photos, i);
        snprintf(path, sizeof(path), "%s.photo[%zu]", u->key, i);
        int rc = ef_pj_check(p, file_fields, EF_AD_COUNT(file_fields), u->info, path);
        if (rc < 0)
            return rc;
        int64_t a = area(p);
        if (a >= best_area) {
            best = p;
            best_area = a;
        }
    }
    *out = best;
    return 0;
}

static void add_file_meta(struct json_object *meta, const char *ctype, struct json_object *f)
{
    struct json_object *o = json_object_new_object();
    ef_ad__put_cstr(o, "type", ctype);
    ef_ad__copy_str(o, "file_id", f, "file_id");
    ef_ad__copy_str(o, "file_unique_id", f, "file_unique_id");
    ef_ad__copy_str(o, "file_name", f, "file_name");
    ef_ad__copy_str(o, "mime_type", f, "mime_type");
    ef_ad__copy_int(o, "file_size", f, "file_size");
    ef_ad__copy_int(o, "width", f, "width");
    ef_ad__copy_int(o, "height", f, "height");
    ef_ad__copy_int(o, "length", f, "length");
    ef_ad__copy_int(o, "duration", f, "duration");
    ef_ad__copy_str(o, "performer", f, "performer");
    ef_ad__copy_str(o, "title", f, "title");
    if (strcmp(ctype, "sticker") == 0) {
        ef_ad__copy_str(o, "emoji", f, "emoji");
        ef_ad__copy_str(o, "set_name", f, "set_name");
        ef_ad__copy_str(o, "sticker_type", f, "type");
        ef_ad__copy_bool(o, "is_animated", f, "is_animated");
        ef_ad__copy_bool(o, "is_video", f, "is_video");
    }
    json_object_object_add(meta, "media", o);
}

static struct json_object *location_meta(struct json_object *loc)
{
    struct json_object *o = json_object_new_object();
    ef_ad__copy_raw(o, "latitude", loc, "latitude");
    ef_ad__copy_raw(o, "longitude", loc, "longitude");
    ef_ad__copy_raw(o, "horizontal_accuracy", loc, "horizontal_accuracy");
    ef_ad__copy_int(o, "live_period", loc, "live_period");
    ef_ad__copy_int(o, "heading", loc, "heading");
    ef_ad__copy_int(o, "proximity_alert_radius", loc, "proximity_alert_radius");
    return o;
}

/* meta.media: a photo (its largest size) or one file object. 1 when ctype
 * is one of these, 0 when not, or EF_EPROTO. */
static int content_file(const upd *u, struct json_object *msg, const char *ctype,
                        struct json_object *meta)
{
    static const char *const file_types[] = {"animation", "video",    "video_note", "voice",
                                             "audio",     "document", "sticker"};
    struct json_object *o = NULL;
    int rc;

    if (strcmp(ctype, "photo") == 0) {
        rc = pick_photo(u, ef_ad__jget(msg, "photo"), &o);
        if (rc < 0)
            return rc;
        if (o)
            add_file_meta(meta, ctype, o);
        return 1;
    }
    for (size_t i = 0; i < EF_AD_COUNT(file_types); i++) {
        if (strcmp(ctype, file_types[i]) != 0)
            continue;
        rc = ef_ad__sub_obj(msg, ctype, true, file_fields, EF_AD_COUNT(file_fields), u->key,
                            u->info, &o);
        if (rc < 0)
            return rc;
        add_file_meta(meta, ctype, o);
        return 1;
    }
    return 0;
}

/* meta.location and meta.venue. */
static int content_place(const upd *u, struct json_object *msg, const char *ctype,
                         struct json_object *meta)
{
    const char *P = u->key;
    ef_parse_info *info = u->info;
    struct json_object *o = NULL;
    struct json_object *loc = NULL;
    int rc;

    /* location (also set on venues, where it duplicates venue.location) */
    rc = ef_ad__sub_obj(msg, "location", false, location_fields, EF_AD_COUNT(location_fields), P,
                        info, &loc);
    if (rc < 0)
        return rc;
    if (strcmp(ctype, "venue") == 0) {
        char path[160];
        struct json_object *vloc = NULL;
        rc = ef_ad__sub_obj(msg, "venue", true, venue_fields, EF_AD_COUNT(venue_fields), P, info,
                            &o);
        if (rc < 0)
            return rc;
        snprintf(path, sizeof(path), "%s.venue", P);
        rc = ef_ad__sub_obj(o, "location", true, location_fields, EF_AD_COUNT(location_fields),
                            path, info, &vloc);
        if (rc < 0)
            return rc;
        if (!loc)
            loc = vloc;
        struct json_object *v = json_object_new_object();
        ef_ad__copy_str(v, "title", o, "title");
        ef_ad__copy_str(v, "address", o, "address");
        ef_ad__copy_str(v, "foursquare_id", o, "foursquare_id");
        ef_ad__copy_str(v, "foursquare_type", o, "foursquare_type");
        ef_ad__copy_str(v, "google_place_id", o, "google_place_id");
        ef_ad__copy_str(v, "google_place_type", o, "google_place_type");
        json_object_object_add(meta, "venue", v);
    }
    if (loc)
        json_object_object_add(meta, "location", location_meta(loc));
    return 0;
}

/* meta.contact / dice / poll. */
static int content_card(const upd *u, struct json_object *msg, const char *ctype,
                        struct json_object *meta)
{
    const char *P = u->key;
    ef_parse_info *info = u->info;
    struct json_object *o = NULL;
    int rc;

    if (strcmp(ctype, "contact") == 0) {
        rc = ef_ad__sub_obj(msg, "contact", true, contact_fields, EF_AD_COUNT(contact_fields), P,
                            info, &o);
        if (rc < 0)
            return rc;
        struct json_object *c = json_object_new_object();
        ef_ad__copy_str(c, "phone_number", o, "phone_number");
        ef_ad__copy_str(c, "first_name", o, "first_name");
        ef_ad__copy_str(c, "last_name", o, "last_name");
        ef_ad__copy_id(c, "user_id", o, "user_id");
        ef_ad__copy_str(c, "vcard", o, "vcard");
        json_object_object_add(meta, "contact", c);
    } else if (strcmp(ctype, "dice") == 0) {
        rc = ef_ad__sub_obj(msg, "dice", true, dice_fields, EF_AD_COUNT(dice_fields), P, info, &o);
        if (rc < 0)
            return rc;
        struct json_object *d = json_object_new_object();
        ef_ad__copy_str(d, "emoji", o, "emoji");
        ef_ad__copy_int(d, "value", o, "value");
        json_object_object_add(meta, "dice", d);
    } else if (strcmp(ctype, "poll") == 0) {
        rc = ef_ad__sub_obj(msg, "poll", true, poll_fields, EF_AD_COUNT(poll_fields), P, info, &o);
        if (rc < 0)
            return rc;
        struct json_object *p = json_object_new_object();
        ef_ad__copy_str(p, "id", o, "id");
        ef_ad__copy_str(p, "question", o, "question");
        ef_ad__copy_str(p, "type", o, "type");
        json_object_object_add(meta, "poll", p);
    }
    return 0;
}

/* meta.story / paid_media / checklist. */
static int content_post(const upd *u, struct json_object *msg, const char *ctype,
                        struct json_object *meta)
{
    const char *P = u->key;
    ef_parse_info *info = u->info;
    struct json_object *o = NULL;
    int rc;

    if (strcmp(ctype, "story") == 0) {
        char path[160];
        struct json_object *schat = NULL;
        rc = ef_ad__sub_obj(msg, "story", true, story_fields, EF_AD_COUNT(story_fields), P, info,
                            &o);
        if (rc < 0)
            return rc;
        snprintf(path, sizeof(path), "%s.story", P);
        rc = ef_ad__sub_obj(o, "chat", true, chat_fields, EF_AD_COUNT(chat_fields), path, info,
                            &schat);
        if (rc < 0)
            return rc;
        struct json_object *s = json_object_new_object();
        ef_ad__copy_id(s, "chat_id", schat, "id");
        ef_ad__copy_int(s, "id", o, "id");
        json_object_object_add(meta, "story", s);
    } else if (strcmp(ctype, "paid_media") == 0) {
        rc = ef_ad__sub_obj(msg, "paid_media", true, paid_media_fields,
                            EF_AD_COUNT(paid_media_fields), P, info, &o);
        if (rc < 0)
            return rc;
        struct json_object *p = json_object_new_object();
        ef_ad__copy_int(p, "star_count", o, "star_count");
        struct json_object *items = ef_ad__jget(o, "paid_media");
        if (items)
            ef_ad__put_int(p, "count", (int64_t)json_object_array_length(items));
        json_object_object_add(meta, "paid_media", p);
    } else if (strcmp(ctype, "checklist") == 0) {
        rc = ef_ad__sub_obj(msg, "checklist", true, checklist_fields, EF_AD_COUNT(checklist_fields),
                            P, info, &o);
        if (rc < 0)
            return rc;
        struct json_object *c = json_object_new_object();
        ef_ad__copy_str(c, "title", o, "title");
        struct json_object *tasks = ef_ad__jget(o, "tasks");
        if (tasks)
            ef_ad__put_int(c, "task_count", (int64_t)json_object_array_length(tasks));
        json_object_object_add(meta, "checklist", c);
    }
    return 0;
}

/* meta.media / location / venue / contact / dice / poll / ... */
static int add_content(const upd *u, struct json_object *msg, const char *ctype,
                       struct json_object *meta)
{
    int rc = content_file(u, msg, ctype, meta);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    rc = content_place(u, msg, ctype, meta);
    if (rc == 0)
        rc = content_card(u, msg, ctype, meta);
    if (rc == 0)
        rc = content_post(u, msg, ctype, meta);
    return rc;
}

/* A MessageOrigin (forward_origin, external_reply.origin) for meta. */
static int origin_meta(const upd *u, struct json_object *origin, const char *path,
                       struct json_object **out)
{
    struct json_object *user = NULL;
    struct json_object *schat = NULL;
    struct json_object *chat = NULL;
    int rc = ef_pj_check(origin, origin_fields, EF_AD_COUNT(origin_fields), u->info, path);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(origin, "sender_user", false, user_fields, EF_AD_COUNT(user_fields), path,
                        u->info, &user);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(origin, "sender_chat", false, chat_fields, EF_AD_COUNT(chat_fields), path,
                        u->info, &schat);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(origin, "chat", false, chat_fields, EF_AD_COUNT(chat_fields), path, u->info,
                        &chat);
    if (rc < 0)
        return rc;
    struct json_object *o = json_object_new_object();
    ef_ad__copy_str(o, "type", origin, "type");
    ef_ad__copy_int(o, "date", origin, "date");
    if (user)
        ef_ad__copy_id(o, "sender_user_id", user, "id");
    ef_ad__copy_str(o, "sender_user_name", origin, "sender_user_name");
    if (schat)
        ef_ad__copy_id(o, "sender_chat_id", schat, "id");
    if (chat)
        ef_ad__copy_id(o, "chat_id", chat, "id");
    ef_ad__copy_int(o, "message_id", origin, "message_id");
    ef_ad__copy_str(o, "author_signature", origin, "author_signature");
    *out = o;
    return 0;
}

/* reply_to, external_reply, quote, forward_origin, via_bot, sender_chat. */
static int add_context(const upd *u, struct json_object *msg, const char *chat_id,
                       struct json_object *meta)
{
    const char *P = u->key;
    ef_parse_info *info = u->info;
    char path[160];
    struct json_object *o = NULL;
    struct json_object *sub = NULL;
    int rc;

    rc = ef_ad__sub_obj(msg, "reply_to_message", false, reply_fields, EF_AD_COUNT(reply_fields), P,
                        info, &o);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        int64_t rid = 0;
        ef_ad__jint(o, "message_id", &rid);
        struct json_object *r = json_object_new_object();
        ef_ad__put_int(r, "message_id", rid);
        char *pmid = ef_asprintf("%s:%" PRId64, chat_id, rid);
        ef_ad__put_cstr(r, "platform_message_id", pmid);
        ef_free(pmid);
        json_object_object_add(meta, "reply_to", r);
    }

    rc = ef_ad__sub_obj(msg, "external_reply", false, external_reply_fields,
                        EF_AD_COUNT(external_reply_fields), P, info, &o);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        struct json_object *chat = NULL;
        snprintf(path, sizeof(path), "%s.external_reply", P);
        rc = ef_ad__sub_obj(o, "chat", false, chat_fields, EF_AD_COUNT(chat_fields), path, info,
                            &chat);
        if (rc < 0)
            return rc;
        snprintf(path, sizeof(path), "%s.external_reply.origin", P);
        rc = origin_meta(u, ef_ad__jget(o, "origin"), path, &sub);
        if (rc < 0)
            return rc;
        struct json_object *x = json_object_new_object();
        json_object_object_add(x, "origin", sub);
        if (chat)
            ef_ad__copy_id(x, "chat_id", chat, "id");
        ef_ad__copy_int(x, "message_id", o, "message_id");
        json_object_object_add(meta, "external_reply", x);
    }

    rc = ef_ad__sub_obj(msg, "quote", false, quote_fields, EF_AD_COUNT(quote_fields), P, info, &o);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        struct json_object *q = json_object_new_object();
        ef_ad__copy_str(q, "text", o, "text");
        ef_ad__copy_int(q, "position", o, "position");
        ef_ad__copy_bool(q, "is_manual", o, "is_manual");
        json_object_object_add(meta, "quote", q);
    }

    o = ef_ad__jget(msg, "forward_origin");
    if (o) {
        snprintf(path, sizeof(path), "%s.forward_origin", P);
        rc = origin_meta(u, o, path, &sub);
        if (rc < 0)
            return rc;
        json_object_object_add(meta, "forward_origin", sub);
    }

    rc = ef_ad__sub_obj(msg, "via_bot", false, user_fields, EF_AD_COUNT(user_fields), P, info, &o);
    if (rc < 0)
        return rc;
    if (rc > 0) {
        struct json_object *b = json_object_new_object();
        ef_ad__copy_id(b, "id", o, "id");
        ef_ad__copy_str(b, "username", o, "username");
        json_object_object_add(meta, "via_bot", b);
    }

    o = ef_ad__jget(msg, "sender_chat"); /* validated by the caller */
    if (o)
        json_object_object_add(meta, "sender_chat", chat_meta(o));
    return 0;
}

/* ---- message, channel_post, business_message, guest_message, edits ------ */

/* migrate_to_chat_id (in the old group) and migrate_from_chat_id (in the
 * new supergroup) both become old -> new, whichever arrives first. */
static ef_msg *migrate_msg(const upd *u, struct json_object *msg, struct json_object *chat,
                           int64_t chat_id, int64_t msg_id, int64_t date, bool from_form,
                           int64_t other)
{
    ef_msg *m = ef_msg_new(EF_MSG_MIGRATE, PLATFORM);
    struct json_object *meta = meta_new(u);
    m->chat_id = i64str(from_form ? other : chat_id);
    m->target_id = i64str(from_form ? chat_id : other);
    m->chat_type = ef_ad__dup_or_null(ef_ad__jstr(chat, "type", NULL));
    m->message_id = ef_asprintf("%" PRId64 ":%" PRId64, chat_id, msg_id);
    m->text = ef_strdup("");
    m->content_type = ef_strdup("migrate");
    m->date = date;
    m->update_id = u->update_id;
    struct json_object *from = ef_ad__jget(msg, "from");
    if (from)
        sender_from_user(m, from);
    json_object_object_add(meta, "chat", chat_meta(chat));
    ef_ad__put_id(meta, from_form ? "migrate_from_chat_id" : "migrate_to_chat_id", other);
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    return m;
}

static bool is_business_key(const char *key)
{
    return strcmp(key, "business_message") == 0 || strcmp(key, "edited_business_message") == 0;
}

/* What every event built from one message needs (borrowed from the tree). */
typedef struct msg_head {
    struct json_object *chat, *from, *schat;
    int64_t chat_id, msg_id, date;
    const char *bcid; /* business_connection_id or NULL */
} msg_head;

/* Step 1, header: the message's shape, its chat and sender objects, ids. */
static int msg_header(const upd *u, struct json_object *msg, msg_head *h)
{
    const char *P = u->key;
    ef_parse_info *info = u->info;
    int rc;

    *h = (msg_head){0};
    rc = ef_pj_check(msg, message_fields, EF_AD_COUNT(message_fields), info, P);
    if (rc < 0)
        return rc;
    rc =
        ef_ad__sub_obj(msg, "chat", true, chat_fields, EF_AD_COUNT(chat_fields), P, info, &h->chat);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(msg, "from", false, user_fields, EF_AD_COUNT(user_fields), P, info,
                        &h->from);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(msg, "sender_chat", false, chat_fields, EF_AD_COUNT(chat_fields), P, info,
                        &h->schat);
    if (rc < 0)
        return rc;
    ef_ad__jint(h->chat, "id", &h->chat_id);
    ef_ad__jint(msg, "message_id", &h->msg_id);
    ef_ad__jint(msg, "date", &h->date);
    h->bcid = ef_ad__jstr(msg, "business_connection_id", NULL);
    if (is_business_key(P) && !h->bcid) {
        ef_ad__note(info, "%s.business_connection_id: missing", P);
        return EF_EPROTO;
    }
    return 0;
}

/* Step 2, the event: keys, sender, text (or caption), date, thread. */
static ef_msg *msg_event(const upd *u, struct json_object *msg, const msg_head *h,
                         const char *ctype, struct json_object *meta, bool *is_caption)
{
    ef_msg *m = ef_msg_new(u->kind, PLATFORM);
    int64_t v;
    m->update_id = u->update_id;
    m->chat_id = chat_key(h->chat_id, h->bcid);
    m->chat_type = ef_ad__dup_or_null(ef_ad__jstr(h->chat, "type", NULL));
    m->message_id = ef_asprintf("%s:%" PRId64, m->chat_id, h->msg_id);
    if (u->kind == EF_MSG_EDIT)
        m->target_id = ef_strdup(m->message_id);
    m->channel_id = ef_ad__dup_or_null(h->bcid);
    if (h->from)
        sender_from_user(m, h->from);
    else if (h->schat)
        sender_from_chat(m, h->schat);
    else
        sender_from_chat(m, h->chat);

    size_t tlen = 0;
    const char *text = ef_ad__jstr(msg, "text", &tlen);
    *is_caption = false;
    if (!text) {
        text = ef_ad__jstr(msg, "caption", &tlen);
        *is_caption = text != NULL;
    }
    if (!text) {
        text = "";
        tlen = 0;
    }
    m->text = ef_strndup(text, tlen);
    m->text_len = tlen;
    m->content_type = ef_strdup(ctype);
    m->date = h->date;
    if (u->kind == EF_MSG_EDIT && ef_ad__jint(msg, "edit_date", &v)) {
        m->date = v;
        ef_ad__put_int(meta, "edit_date", v);
    }
    if (ef_ad__jint(msg, "message_thread_id", &v)) {
        m->thread_id = i64str(v);
        ef_ad__put_int(meta, "message_thread_id", v);
    }
    return m;
}

/* Step 3, meta: the chat and the message's own flags. */
static void msg_meta(struct json_object *msg, const msg_head *h, struct json_object *meta)
{
    json_object_object_add(meta, "chat", chat_meta(h->chat));
    ef_ad__copy_bool(meta, "is_topic_message", msg, "is_topic_message");
    ef_ad__copy_str(meta, "media_group_id", msg, "media_group_id");
    if (h->bcid)
        ef_ad__put_cstr(meta, "business_connection_id", h->bcid);
}

/* Step 4, entities: each indexes its own string (entities -> text,
 * caption_entities -> caption); a command counts only in the string the
 * event stores. */
static int msg_entities(const upd *u, struct json_object *msg, bool is_caption,
                        struct json_object *meta)
{
    int64_t dropped = 0;
    size_t budget = ENTITY_TEXT_BUDGET;
    size_t len;
    const char *s = ef_ad__jstr(msg, "text", &len);
    int rc = add_entities(u, msg, "entities", s ? s : "", s ? len : 0, !is_caption, meta, &dropped,
                          &budget);
    if (rc < 0)
        return rc;
    s = ef_ad__jstr(msg, "caption", &len);
    rc = add_entities(u, msg, "caption_entities", s ? s : "", s ? len : 0, is_caption, meta,
                      &dropped, &budget);
    if (rc < 0)
        return rc;
    if (dropped > 0)
        ef_ad__put_int(meta, "entities_dropped", dropped);
    return 0;
}

/* message, edited_message, channel_post, business and guest messages:
 * header, then a migration or a service message (nothing to store), else
 * the event with its content, context and entities. */
static int on_message(const upd *u, struct json_object *msg, ef_msg **out)
{
    msg_head h;
    int64_t v;
    int rc = msg_header(u, msg, &h);
    if (rc < 0)
        return rc;
    if (ef_ad__jint(msg, "migrate_to_chat_id", &v)) {
        *out = migrate_msg(u, msg, h.chat, h.chat_id, h.msg_id, h.date, false, v);
        return 0;
    }
    if (ef_ad__jint(msg, "migrate_from_chat_id", &v)) {
        *out = migrate_msg(u, msg, h.chat, h.chat_id, h.msg_id, h.date, true, v);
        return 0;
    }
    const char *ctype = classify(msg);
    if (!ctype) {
        const char *svc = service_field(msg);
        if (svc) {
            ef_ad__note(u->info, "service message %s", svc);
            *out = NULL;
            return 0;
        }
        ctype = "unknown";
    }

    bool is_caption = false;
    struct json_object *meta = meta_new(u);
    ef_msg *m = msg_event(u, msg, &h, ctype, meta, &is_caption);
    msg_meta(msg, &h, meta);
    rc = add_content(u, msg, ctype, meta);
    if (rc >= 0)
        rc = add_context(u, msg, m->chat_id, meta);
    if (rc >= 0)
        rc = msg_entities(u, msg, is_caption, meta);
    if (rc < 0) {
        json_object_put(meta);
        ef_msg_free(m);
        return rc;
    }
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    *out = m;
    return 0;
}

/* ---- callback_query ----------------------------------------------------- */

static int on_callback(const upd *u, struct json_object *cb, ef_msg **out)
{
    const char *P = u->key;
    ef_parse_info *info = u->info;
    char path[160];
    struct json_object *from = NULL;
    struct json_object *msg = NULL;
    struct json_object *chat = NULL;
    int rc;

    rc = ef_pj_check(cb, callback_fields, EF_AD_COUNT(callback_fields), info, P);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(cb, "from", true, user_fields, EF_AD_COUNT(user_fields), P, info, &from);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(cb, "message", false, callback_message_fields,
                        EF_AD_COUNT(callback_message_fields), P, info, &msg);
    if (rc < 0)
        return rc;
    if (msg) {
        snprintf(path, sizeof(path), "%s.message", P);
        rc = ef_ad__sub_obj(msg, "chat", true, chat_fields, EF_AD_COUNT(chat_fields), path, info,
                            &chat);
        if (rc < 0)
            return rc;
    }

    ef_msg *m = ef_msg_new(EF_MSG_CALLBACK, PLATFORM);
    struct json_object *meta = meta_new(u);
    const char *id = ef_ad__jstr(cb, "id", NULL);
    int64_t v = 0;
    m->update_id = u->update_id;
    m->callback_id = ef_strdup(id);
    m->message_id = ef_asprintf("callback:%s", id);
    m->content_type = ef_strdup("callback");
    sender_from_user(m, from);
    if (msg) {
        int64_t chat_id = 0, msg_id = 0, date = 0;
        ef_ad__jint(chat, "id", &chat_id);
        ef_ad__jint(msg, "message_id", &msg_id);
        ef_ad__jint(msg, "date", &date);
        const char *bcid = ef_ad__jstr(msg, "business_connection_id", NULL);
        m->chat_id = chat_key(chat_id, bcid);
        m->chat_type = ef_ad__dup_or_null(ef_ad__jstr(chat, "type", NULL));
        m->target_id = ef_asprintf("%s:%" PRId64, m->chat_id, msg_id);
        m->channel_id = ef_ad__dup_or_null(bcid);
        if (ef_ad__jint(msg, "message_thread_id", &v))
            m->thread_id = i64str(v);
        ef_ad__put_int(meta, "message_id", msg_id);
        if (date == 0)
            json_object_object_add(meta, "inaccessible", json_object_new_boolean(1));
        json_object_object_add(meta, "chat", chat_meta(chat));
        if (bcid)
            ef_ad__put_cstr(meta, "business_connection_id", bcid);
    } else {
        /* An inline message: the user's private chat has the user's id. */
        ef_ad__jint(from, "id", &v);
        m->chat_id = i64str(v);
        m->chat_type = ef_strdup("private");
    }

    size_t len = 0;
    const char *text = ef_ad__jstr(cb, "data", &len);
    if (!text)
        text = ef_ad__jstr(cb, "game_short_name", &len);
    if (!text) {
        text = "";
        len = 0;
    }
    m->text = ef_strndup(text, len);
    m->text_len = len;

    ef_ad__copy_str(meta, "data", cb, "data");
    ef_ad__copy_str(meta, "game_short_name", cb, "game_short_name");
    ef_ad__copy_str(meta, "chat_instance", cb, "chat_instance");
    ef_ad__copy_str(meta, "inline_message_id", cb, "inline_message_id");
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    *out = m;
    return 0;
}

/* ---- my_chat_member ----------------------------------------------------- */

static bool status_gone(const char *s)
{
    return strcmp(s, "kicked") == 0 || strcmp(s, "left") == 0;
}

static bool status_present(const char *s)
{
    return strcmp(s, "member") == 0 || strcmp(s, "administrator") == 0 ||
           strcmp(s, "creator") == 0 || strcmp(s, "restricted") == 0;
}

static int on_my_chat_member(const upd *u, struct json_object *cmu, ef_msg **out)
{
    const char *P = u->key;
    ef_parse_info *info = u->info;
    struct json_object *chat = NULL, *from = NULL, *oldm = NULL, *newm = NULL;
    int rc;

    rc = ef_pj_check(cmu, member_update_fields, EF_AD_COUNT(member_update_fields), info, P);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(cmu, "chat", true, chat_fields, EF_AD_COUNT(chat_fields), P, info, &chat);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(cmu, "from", true, user_fields, EF_AD_COUNT(user_fields), P, info, &from);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(cmu, "old_chat_member", true, member_fields, EF_AD_COUNT(member_fields), P,
                        info, &oldm);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(cmu, "new_chat_member", true, member_fields, EF_AD_COUNT(member_fields), P,
                        info, &newm);
    if (rc < 0)
        return rc;

    const char *old_status = ef_ad__jstr(oldm, "status", NULL);
    const char *new_status = ef_ad__jstr(newm, "status", NULL);
    ef_msg_kind kind;
    if (status_gone(new_status)) {
        kind = EF_MSG_BLOCKED;
    } else if (status_present(new_status) && status_gone(old_status)) {
        kind = EF_MSG_UNBLOCKED;
    } else {
        ef_ad__note(info, "my_chat_member: %s -> %s changes nothing", old_status, new_status);
        *out = NULL;
        return 0;
    }

    ef_msg *m = ef_msg_new(kind, PLATFORM);
    struct json_object *meta = meta_new(u);
    int64_t chat_id = 0, date = 0;
    ef_ad__jint(chat, "id", &chat_id);
    ef_ad__jint(cmu, "date", &date);
    m->update_id = u->update_id;
    m->chat_id = i64str(chat_id);
    m->chat_type = ef_ad__dup_or_null(ef_ad__jstr(chat, "type", NULL));
    m->text = ef_strdup("");
    m->content_type = ef_strdup("member_status");
    m->date = date;
    sender_from_user(m, from);
    ef_ad__put_cstr(meta, "old_status", old_status);
    ef_ad__put_cstr(meta, "new_status", new_status);
    ef_ad__copy_str(meta, "chat_type", chat, "type");
    json_object_object_add(meta, "chat", chat_meta(chat));
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    *out = m;
    return 0;
}

/* ---- message_reaction --------------------------------------------------- */

/* A reaction's status: the new reactions (arr, validated here) as a
 * compact JSON array of strings: the emoji, "custom:<id>", or the type's
 * name ("paid"). *out is a new array owned by the caller. */
static int reaction_status(const upd *u, struct json_object *arr, struct json_object **out)
{
    const char *P = u->key;
    ef_parse_info *info = u->info;
    char path[160];
    int rc = 0;
    struct json_object *status = json_object_new_array();
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        struct json_object *it = json_object_array_get_idx(arr, i);
        snprintf(path, sizeof(path), "%s.new_reaction[%zu]", P, i);
        rc = ef_pj_check(it, reaction_type_fields, EF_AD_COUNT(reaction_type_fields), info, path);
        if (rc < 0)
            break;
        const char *type = ef_ad__jstr(it, "type", NULL);
        const char *s;
        size_t len;
        if (strcmp(type, "emoji") == 0) {
            rc = ef_pj_str(it, "emoji", true, &s, &len, info, path);
            if (rc < 0)
                break;
            json_object_array_add(status, json_object_new_string_len(s, (int)len));
        } else if (strcmp(type, "custom_emoji") == 0) {
            rc = ef_pj_str(it, "custom_emoji_id", true, &s, &len, info, path);
            if (rc < 0)
                break;
            char *c = ef_asprintf("custom:%s", s);
            json_object_array_add(status, json_object_new_string(c));
            ef_free(c);
        } else {
            /* "paid", and any type added later, by name. */
            json_object_array_add(status, json_object_new_string(type));
        }
    }
    if (rc < 0) {
        json_object_put(status);
        return rc;
    }
    *out = status;
    return 0;
}

static int on_reaction(const upd *u, struct json_object *r, ef_msg **out)
{
    const char *P = u->key;
    ef_parse_info *info = u->info;
    struct json_object *chat = NULL, *user = NULL, *actor = NULL;
    struct json_object *status = NULL;
    struct json_object *copy = NULL;
    int rc;

    rc = ef_pj_check(r, reaction_update_fields, EF_AD_COUNT(reaction_update_fields), info, P);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(r, "chat", true, chat_fields, EF_AD_COUNT(chat_fields), P, info, &chat);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(r, "user", false, user_fields, EF_AD_COUNT(user_fields), P, info, &user);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(r, "actor_chat", false, chat_fields, EF_AD_COUNT(chat_fields), P, info,
                        &actor);
    if (rc < 0)
        return rc;

    rc = reaction_status(u, ef_ad__jget(r, "new_reaction"), &status);
    if (rc < 0)
        return rc;
    if (!user && !actor) {
        /* The store keys reactions on who reacted. */
        ef_ad__note(info, "%s: neither user nor actor_chat", P);
        json_object_put(status);
        return EF_EPROTO;
    }
    ef_msg *m = ef_msg_new(EF_MSG_REACTION, PLATFORM);
    struct json_object *meta = meta_new(u);
    int64_t chat_id = 0, msg_id = 0, date = 0;
    ef_ad__jint(chat, "id", &chat_id);
    ef_ad__jint(r, "message_id", &msg_id);
    ef_ad__jint(r, "date", &date);
    m->update_id = u->update_id;
    m->chat_id = i64str(chat_id);
    m->chat_type = ef_ad__dup_or_null(ef_ad__jstr(chat, "type", NULL));
    m->target_id = ef_asprintf("%s:%" PRId64, m->chat_id, msg_id);
    m->text = ef_strdup("");
    m->content_type = ef_strdup("reaction");
    m->date = date;
    m->status = ef_ad__meta_string(status);
    if (user)
        sender_from_user(m, user);
    else if (actor)
        sender_from_chat(m, actor);
    ef_ad__put_int(meta, "message_id", msg_id);
    json_object_object_add(meta, "chat", chat_meta(chat));
    if (json_object_deep_copy(ef_ad__jget(r, "old_reaction"), &copy, NULL) == 0)
        json_object_object_add(meta, "old_reaction", copy);
    copy = NULL;
    if (json_object_deep_copy(ef_ad__jget(r, "new_reaction"), &copy, NULL) == 0)
        json_object_object_add(meta, "new_reaction", copy);
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    json_object_put(status);
    *out = m;
    return 0;
}

/* ---- routing ------------------------------------------------------------ */

typedef int (*handler_fn)(const upd *u, struct json_object *payload, ef_msg **out);

static const struct route {
    const char *key;
    handler_fn fn;
    ef_msg_kind kind;
    const char *skip; /* why nothing is stored, when fn is NULL */
} routes[] = {
    {"message", on_message, EF_MSG_NEW, NULL},
    {"edited_message", on_message, EF_MSG_EDIT, NULL},
    {"channel_post", on_message, EF_MSG_NEW, NULL},
    {"edited_channel_post", on_message, EF_MSG_EDIT, NULL},
    {"business_message", on_message, EF_MSG_NEW, NULL},
    {"edited_business_message", on_message, EF_MSG_EDIT, NULL},
    {"guest_message", on_message, EF_MSG_NEW, NULL},
    {"callback_query", on_callback, EF_MSG_CALLBACK, NULL},
    {"my_chat_member", on_my_chat_member, EF_MSG_BLOCKED, NULL},
    {"message_reaction", on_reaction, EF_MSG_REACTION, NULL},
    {"chat_member", NULL, 0, "another member's status, not a conversation message"},
    {"chat_join_request", NULL, 0, "join request, not a conversation message"},
    {"inline_query", NULL, 0, "not a conversation message"},
    {"chosen_inline_result", NULL, 0, "not a conversation message"},
    {"shipping_query", NULL, 0, "payments are not handled"},
    {"pre_checkout_query", NULL, 0, "payments are not handled"},
    {"poll", NULL, 0, "poll state, not a conversation message"},
    {"poll_answer", NULL, 0, "poll answer, not a conversation message"},
    {"business_connection", NULL, 0, "business connection state, not a message"},
    {"deleted_business_messages", NULL, 0, "deletions are not stored"},
    {"message_reaction_count", NULL, 0, "anonymous reaction counts are not stored"},
    {"chat_boost", NULL, 0, "boosts are not stored"},
    {"removed_chat_boost", NULL, 0, "boosts are not stored"},
    {"purchased_paid_media", NULL, 0, "paid media purchase, not a conversation message"},
    {"managed_bot", NULL, 0, "managed bot state, not a conversation message"},
};

static const struct route *find_route(const char *key)
{
    for (size_t i = 0; i < EF_AD_COUNT(routes); i++)
        if (strcmp(routes[i].key, key) == 0)
            return &routes[i];
    return NULL;
}

int ef_tg__parse(struct json_object *root, ef_msg_list *out, ef_parse_info *info)
{
    ef_parse_info scratch;
    if (!info)
        info = &scratch;
    memset(info, 0, sizeof(*info));
    if (!out) {
        ef_ad__note(info, "no output list");
        return EF_EINVAL;
    }
    if (!json_object_is_type(root, json_type_object)) {
        ef_ad__note(info, "update: expected object");
        return EF_EPROTO;
    }
    int64_t update_id = 0;
    int rc = ef_pj_int64(root, "update_id", true, &update_id, info, NULL);
    if (rc < 0)
        return rc;
    if (update_id <= 0) {
        ef_ad__note(info, "update_id: must be positive");
        return EF_EPROTO;
    }
    info->update_id = update_id;

    /* Route by the payload key present. A key we do not know is a newer
     * update type: accepted and skipped. Two known keys are ambiguous. */
    const struct route *r = NULL;
    const char *unknown = NULL;
    size_t payloads = 0;
    json_object_object_foreach(root, k, val)
    {
        (void)val;
        if (strcmp(k, "update_id") == 0)
            continue;
        payloads++;
        const struct route *f = find_route(k);
        if (!f) {
            if (!unknown)
                unknown = k;
            continue;
        }
        if (r) {
            snprintf(info->what, sizeof(info->what), "%s", r->key);
            ef_ad__note(info, "update carries both %s and %s", r->key, f->key);
            return EF_EPROTO;
        }
        r = f;
    }
    if (payloads == 0) {
        ef_ad__note(info, "no payload");
        return 0;
    }
    if (!r) {
        /* what names the type: an empty key is shown quoted, not as no
         * type at all */
        snprintf(info->what, sizeof(info->what), "%s", *unknown ? unknown : "\"\"");
        ef_ad__note(info, "%s: unknown update type", unknown);
        info->unknown_type = true;
        return 0;
    }
    snprintf(info->what, sizeof(info->what), "%s", r->key);
    struct json_object *payload = ef_ad__jget(root, r->key);
    if (!json_object_is_type(payload, json_type_object)) {
        ef_ad__note(info, "%s: expected object", r->key);
        return EF_EPROTO;
    }
    if (!r->fn) {
        ef_ad__note(info, "%s: %s", r->key, r->skip);
        return 0;
    }

    upd u = {.update_id = update_id, .key = r->key, .kind = r->kind, .info = info};
    ef_msg *m = NULL;
    rc = r->fn(&u, payload, &m);
    if (rc < 0)
        return rc;
    if (m && ef_ad__check_keys(m, info, r->key) < 0) {
        ef_msg_free(m);
        return EF_EPROTO;
    }
    if (m)
        ef_msg_list_push(out, m);
    return 0;
}
