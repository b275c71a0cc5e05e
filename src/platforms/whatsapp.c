/*
 * whatsapp.c -- the WhatsApp Business Cloud API adapter, inbound half:
 * X-Hub-Signature-256 verification and normalization of webhook payloads
 * into ef_msg's (see platform.h for the contract, PLATFORMS.md part B for
 * the wire format).
 *
 * Rules kept here:
 *  - the signature is an HMAC-SHA256 of the raw body bytes exactly as
 *    received (Meta escapes non-ASCII as \uXXXX and '/' as \/, so any
 *    re-serialized copy would fail); it is compared in constant time, and
 *    the caller checks it before anything is parsed;
 *  - every entry, change, message and status is normalized, in payload
 *    order; one message or one status gives exactly one event, or is
 *    refused with a note, so nothing is ever skipped silently;
 *  - ids (wamid, wa_id, BSUID, phone_number_id, WABA id) stay strings;
 *    timestamps are decimal strings and must be exactly that;
 *  - a structurally broken payload (wrong JSON types, a message without id,
 *    sender or type) is refused with EF_EPROTO (field path in info->note)
 *    and leaves nothing in out; other `field`s and unknown message types
 *    are accepted (a note, or an event keeping the raw body), because Meta
 *    retries any non-2xx answer for days;
 *  - a message whose type names an object that is missing ("type":"text"
 *    without "text", an interactive button_reply without its object, an
 *    edit without a new type) is refused by itself: not stored, counted in
 *    info->refused, the reason appended to info->note; the other messages
 *    of the webhook still go through.
 *
 * Conversation key: "<customer>@<phone_number_id>" -- a customer writing to
 * two of the business's numbers has two conversations. The customer is the
 * phone-number wa_id (`from`) when WhatsApp gives one, else the
 * business-scoped user id (`from_user_id`); two BSUID-only customers are
 * never merged.
 *
 * Thread model: pure functions over a borrowed json-c tree and borrowed
 * bytes; no globals.
 */
#include "platforms/platform.h"

#include "platforms/adapter.h"

#include "base/crypto.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static const char PLATFORM[] = "whatsapp";
static const char OBJECT_NAME[] = "whatsapp_business_account";

/* Joined texts (contact cards) stop growing beyond this many bytes. */
#define JOIN_MAX (64 * 1024)

/* ---- X-Hub-Signature-256 ------------------------------------------------ */

#define SIG_PREFIX "sha256="
#define SIG_PREFIX_LEN (sizeof(SIG_PREFIX) - 1)

int ef_wa_verify_signature(const char *app_secret, const char *header_value, const char *body,
                           size_t len)
{
    if (!app_secret || !*app_secret || !header_value || (!body && len > 0))
        return EF_EAUTH;
    if (strncmp(header_value, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
        return EF_EAUTH;
    const char *hex = header_value + SIG_PREFIX_LEN;
    if (!ef_hmac_sha256_hex_equal(app_secret, strlen(app_secret), body, len, hex, strlen(hex)))
        return EF_EAUTH;
    return 0;
}

/* ---- payload descriptions ---------------------------------------------- */

static const ef_pj_field root_fields[] = {
    {"object", EF_PJ_STRING, true},
    {"entry", EF_PJ_ARRAY, true},
};

static const ef_pj_field entry_fields[] = {
    {"id", EF_PJ_STRING, true},
    {"changes", EF_PJ_ARRAY, true},
};

static const ef_pj_field change_fields[] = {
    {"field", EF_PJ_STRING, true},
};

static const ef_pj_field value_fields[] = {
    {"messaging_product", EF_PJ_STRING, false}, {"metadata", EF_PJ_OBJECT, false},
    {"contacts", EF_PJ_ARRAY, false},           {"messages", EF_PJ_ARRAY, false},
    {"statuses", EF_PJ_ARRAY, false},           {"errors", EF_PJ_ARRAY, false},
};

static const ef_pj_field metadata_fields[] = {
    {"phone_number_id", EF_PJ_STRING, true},
    {"display_phone_number", EF_PJ_STRING, false},
};

/* value.contacts[]: the customers this value speaks about. */
static const ef_pj_field contact_fields[] = {
    {"profile", EF_PJ_OBJECT, false},      {"wa_id", EF_PJ_STRING, false},
    {"user_id", EF_PJ_STRING, false},      {"parent_user_id", EF_PJ_STRING, false},
    {"country_code", EF_PJ_STRING, false}, {"identity_key_hash", EF_PJ_STRING, false},
};

static const ef_pj_field profile_fields[] = {
    {"name", EF_PJ_STRING, false},
    {"username", EF_PJ_STRING, false},
    {"country_code", EF_PJ_STRING, false},
};

static const ef_pj_field message_fields[] = {
    {"id", EF_PJ_STRING, true},
    {"type", EF_PJ_STRING, true},
    {"timestamp", EF_PJ_STRING, true},
    {"from", EF_PJ_STRING, false},
    {"from_user_id", EF_PJ_STRING, false},
    {"group_id", EF_PJ_STRING, false},
    {"context", EF_PJ_OBJECT, false},
    {"referral", EF_PJ_OBJECT, false},
    {"errors", EF_PJ_ARRAY, false},
    {"identity", EF_PJ_OBJECT, false},
};

static const ef_pj_field context_fields[] = {
    {"from", EF_PJ_STRING, false},
    {"id", EF_PJ_STRING, false},
    {"forwarded", EF_PJ_BOOL, false},
    {"frequently_forwarded", EF_PJ_BOOL, false},
    {"referred_product", EF_PJ_OBJECT, false},
};

static const ef_pj_field text_fields[] = {
    {"body", EF_PJ_STRING, false},
};

/* image, video, audio, document, sticker. */
static const ef_pj_field media_fields[] = {
    {"id", EF_PJ_STRING, false},       {"mime_type", EF_PJ_STRING, false},
    {"sha256", EF_PJ_STRING, false},   {"caption", EF_PJ_STRING, false},
    {"filename", EF_PJ_STRING, false}, {"voice", EF_PJ_BOOL, false},
    {"animated", EF_PJ_BOOL, false},   {"url", EF_PJ_STRING, false},
};

static const ef_pj_field location_fields[] = {
    {"latitude", EF_PJ_NUMBER, true}, {"longitude", EF_PJ_NUMBER, true},
    {"name", EF_PJ_STRING, false},    {"address", EF_PJ_STRING, false},
    {"url", EF_PJ_STRING, false},
};

/* messages[].contacts[]: shared contact cards. */
static const ef_pj_field card_fields[] = {
    {"name", EF_PJ_OBJECT, false},
};

static const ef_pj_field card_name_fields[] = {
    {"formatted_name", EF_PJ_STRING, false},
};

static const ef_pj_field interactive_fields[] = {
    {"type", EF_PJ_STRING, true},
    {"button_reply", EF_PJ_OBJECT, false},
    {"list_reply", EF_PJ_OBJECT, false},
    {"nfm_reply", EF_PJ_OBJECT, false},
};

/* button_reply, list_reply. */
static const ef_pj_field reply_fields[] = {
    {"id", EF_PJ_STRING, true},
    {"title", EF_PJ_STRING, false},
    {"description", EF_PJ_STRING, false},
};

static const ef_pj_field nfm_fields[] = {
    {"response_json", EF_PJ_STRING, false},
    {"body", EF_PJ_STRING, false},
    {"name", EF_PJ_STRING, false},
};

static const ef_pj_field button_fields[] = {
    {"payload", EF_PJ_STRING, false},
    {"text", EF_PJ_STRING, false},
};

static const ef_pj_field order_fields[] = {
    {"catalog_id", EF_PJ_STRING, false},
    {"text", EF_PJ_STRING, false},
    {"product_items", EF_PJ_ARRAY, false},
};

static const ef_pj_field reaction_fields[] = {
    {"message_id", EF_PJ_STRING, true},
    {"emoji", EF_PJ_STRING, false},
};

static const ef_pj_field system_fields[] = {
    {"body", EF_PJ_STRING, false},    {"type", EF_PJ_STRING, false},
    {"wa_id", EF_PJ_STRING, false},   {"new_wa_id", EF_PJ_STRING, false},
    {"user_id", EF_PJ_STRING, false}, {"previous_user_id", EF_PJ_STRING, false},
};

static const ef_pj_field edit_fields[] = {
    {"original_message_id", EF_PJ_STRING, true},
    {"message", EF_PJ_OBJECT, false},
};

/* edit.message: a message body without id, sender or timestamp. */
static const ef_pj_field inner_fields[] = {
    {"type", EF_PJ_STRING, false},
};

static const ef_pj_field revoke_fields[] = {
    {"original_message_id", EF_PJ_STRING, true},
};

static const ef_pj_field status_fields[] = {
    {"id", EF_PJ_STRING, true},
    {"status", EF_PJ_STRING, true},
    {"timestamp", EF_PJ_STRING, true},
    {"recipient_id", EF_PJ_STRING, false},
    {"recipient_user_id", EF_PJ_STRING, false},
    {"recipient_type", EF_PJ_STRING, false},
    {"biz_opaque_callback_data", EF_PJ_STRING, false},
    {"errors", EF_PJ_ARRAY, false},
    {"conversation", EF_PJ_OBJECT, false},
    {"pricing", EF_PJ_OBJECT, false},
};

/* Message types whose object is a media descriptor. */
static const char *const media_types[] = {"image", "video", "audio", "document", "sticker"};

/* ---- one change being normalized ---------------------------------------- */

/* Everything borrowed from the tree; valid while the change is parsed. */
typedef struct wctx {
    ef_parse_info *info;
    const char *waba_id;              /* entry.id */
    const char *pnid;                 /* value.metadata.phone_number_id */
    const char *display;              /* value.metadata.display_phone_number */
    struct json_object *contacts;     /* value.contacts (validated) or NULL */
    struct json_object *value_errors; /* value.errors or NULL */
} wctx;

/* ---- small helpers ------------------------------------------------------ */

/* Field paths for notes ("entry[0].changes[1].value.messages[2]"); a path
 * too long for its buffer is cut, which only shortens a note. */
static void path_fmt(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void path_fmt(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

/* "path.key: what", EF_EPROTO. */
static int refuse(ef_parse_info *info, const char *path, const char *key, const char *what)
{
    ef_ad__note(info, "%s.%s: %s", path, key, what);
    return EF_EPROTO;
}

/* Strict Unix seconds: one or more ASCII digits, nothing else, fits int64. */
static bool parse_ts(const char *s, size_t len, int64_t *out)
{
    if (!s || len == 0)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A required, non-empty string member of an already validated object. */
static int need_str(struct json_object *o, const char *key, const char *path, ef_parse_info *info,
                    const char **out, size_t *len)
{
    size_t l = 0;
    const char *s = ef_ad__jstr(o, key, &l);
    if (!s)
        return refuse(info, path, key, "missing");
    if (l == 0)
        return refuse(info, path, key, "empty");
    *out = s;
    if (len)
        *len = l;
    return 0;
}

/* A message refused by itself: not stored, the others of the webhook
 * still are. Positive, unlike the EF_E* codes, and distinct from the 1
 * ("present") of the content_ functions. */
#define REFUSED 2

/* Message types whose content sits in an object named like the type. */
static const char *const object_types[] = {
    "text",        "image",  "video", "audio",  "document", "sticker", "location", "contacts",
    "interactive", "button", "order", "revoke", "reaction", "edit",    "system",
};

static bool names_object(const char *type)
{
    for (size_t i = 0; i < EF_AD_COUNT(object_types); i++)
        if (strcmp(type, object_types[i]) == 0)
            return true;
    return false;
}

/* "path: type T without its T object, not stored"; REFUSED. */
static int missing_object(ef_parse_info *info, const char *path, const char *type)
{
    ef_ad__add_note(info, "%s: type %.32s without its %.32s object, not stored", path, type, type);
    return REFUSED;
}

/* ---- meta_json building ------------------------------------------------- */

static struct json_object *meta_new(const wctx *c)
{
    struct json_object *meta = json_object_new_object();
    ef_ad__put_cstr(meta, "phone_number_id", c->pnid);
    ef_ad__put_cstr(meta, "display_phone_number", c->display);
    ef_ad__put_cstr(meta, "waba_id", c->waba_id);
    return meta;
}

/* ---- customers ---------------------------------------------------------- */

/* The value.contacts[] item for a customer: wa_id == wa_id, or user_id ==
 * user_id (BSUID). Empty ids never match. */
static struct json_object *find_contact(const wctx *c, const char *wa_id, const char *user_id)
{
    if (!c->contacts)
        return NULL;
    size_t n = json_object_array_length(c->contacts);
    for (size_t i = 0; i < n; i++) {
        struct json_object *ct = json_object_array_get_idx(c->contacts, i);
        const char *cw = ef_ad__jstr(ct, "wa_id", NULL);
        const char *cu = ef_ad__jstr(ct, "user_id", NULL);
        if (ef_ad__nonempty(wa_id) && ef_ad__nonempty(cw) && strcmp(cw, wa_id) == 0)
            return ct;
        if (ef_ad__nonempty(user_id) && ef_ad__nonempty(cu) && strcmp(cu, user_id) == 0)
            return ct;
    }
    return NULL;
}

/*
 * Sender, chat and channel of an event: sender id, display name (profile
 * name, else the id), username; chat "<group or customer>@<phone_number_id>".
 */
static void set_party(ef_msg *m, const wctx *c, const char *id, const char *group_id,
                      struct json_object *contact, struct json_object *meta)
{
    struct json_object *profile = ef_ad__jget(contact, "profile");
    const char *name = ef_ad__jstr(profile, "name", NULL);
    const char *username = ef_ad__jstr(profile, "username", NULL);

    m->sender_id = ef_strdup(id);
    m->sender_name = ef_strdup(ef_ad__nonempty(name) ? name : id);
    m->sender_username = ef_ad__nonempty(username) ? ef_strdup(username) : NULL;
    m->chat_type = ef_strdup(group_id ? "group" : "private");
    m->chat_id = ef_asprintf("%s@%s", group_id ? group_id : id, c->pnid);
    m->channel_id = ef_strdup(c->pnid);

    if (!contact)
        return;
    struct json_object *o = json_object_new_object();
    ef_ad__copy_str(o, "wa_id", contact, "wa_id");
    ef_ad__copy_str(o, "user_id", contact, "user_id");
    ef_ad__copy_str(o, "parent_user_id", contact, "parent_user_id");
    ef_ad__copy_str(o, "country_code", contact, "country_code");
    ef_ad__copy_str(o, "identity_key_hash", contact, "identity_key_hash");
    ef_ad__copy_str(o, "name", profile, "name");
    ef_ad__copy_str(o, "username", profile, "username");
    if (!ef_ad__jget(o, "country_code"))
        ef_ad__copy_str(o, "country_code", profile, "country_code");
    json_object_object_add(meta, "contact", o);
}

/* ---- message content ---------------------------------------------------- */

static bool is_media(const char *type)
{
    for (size_t i = 0; i < EF_AD_COUNT(media_types); i++)
        if (strcmp(type, media_types[i]) == 0)
            return true;
    return false;
}

/* "a, b" from the non-empty ones of a and b ("" when neither). */
static char *join2(const char *a, const char *b)
{
    if (ef_ad__nonempty(a) && ef_ad__nonempty(b))
        return ef_asprintf("%s, %s", a, b);
    if (ef_ad__nonempty(a))
        return ef_strdup(a);
    if (ef_ad__nonempty(b))
        return ef_strdup(b);
    return ef_strdup("");
}

static int content_media(const wctx *c, struct json_object *msg, const char *type, const char *path,
                         struct json_object *meta, char **text, size_t *tlen)
{
    struct json_object *o = NULL;
    int rc = ef_ad__sub_obj(msg, type, false, media_fields, EF_AD_COUNT(media_fields), path,
                            c->info, &o);
    if (rc <= 0)
        return rc;
    struct json_object *md = json_object_new_object();
    ef_ad__put_cstr(md, "type", type);
    ef_ad__copy_str(md, "id", o, "id");
    ef_ad__copy_str(md, "mime_type", o, "mime_type");
    ef_ad__copy_str(md, "sha256", o, "sha256");
    ef_ad__copy_str(md, "filename", o, "filename");
    ef_ad__copy_bool(md, "voice", o, "voice");
    ef_ad__copy_bool(md, "animated", o, "animated");
    ef_ad__copy_str(md, "url", o, "url");
    json_object_object_add(meta, "media", md);
    size_t len = 0;
    const char *caption = ef_ad__jstr(o, "caption", &len);
    if (caption) {
        *text = ef_strndup(caption, len);
        *tlen = len;
    }
    return 1;
}

static int content_location(const wctx *c, struct json_object *msg, const char *path,
                            struct json_object *meta, char **text, size_t *tlen)
{
    struct json_object *o = NULL;
    int rc = ef_ad__sub_obj(msg, "location", false, location_fields, EF_AD_COUNT(location_fields),
                            path, c->info, &o);
    if (rc <= 0)
        return rc;
    struct json_object *l = json_object_new_object();
    ef_ad__copy_raw(l, "latitude", o, "latitude");
    ef_ad__copy_raw(l, "longitude", o, "longitude");
    ef_ad__copy_str(l, "name", o, "name");
    ef_ad__copy_str(l, "address", o, "address");
    ef_ad__copy_str(l, "url", o, "url");
    json_object_object_add(meta, "location", l);
    *text = join2(ef_ad__jstr(o, "name", NULL), ef_ad__jstr(o, "address", NULL));
    *tlen = strlen(*text);
    return 1;
}

/* messages[].contacts: the cards' formatted names, joined with ", ". */
static int content_contacts(const wctx *c, struct json_object *msg, const char *path,
                            struct json_object *meta, char **text, size_t *tlen)
{
    struct json_object *arr = NULL;
    char p[192];
    int rc = ef_pj_arr(msg, "contacts", false, &arr, c->info, path);
    if (rc <= 0)
        return rc;
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        struct json_object *card = json_object_array_get_idx(arr, i);
        struct json_object *name = NULL;
        path_fmt(p, sizeof(p), "%s.contacts[%zu]", path, i);
        rc = ef_pj_check(card, card_fields, EF_AD_COUNT(card_fields), c->info, p);
        if (rc < 0)
            return rc;
        rc = ef_ad__sub_obj(card, "name", false, card_name_fields, EF_AD_COUNT(card_name_fields), p,
                            c->info, &name);
        if (rc < 0)
            return rc;
    }
    ef_buf b;
    ef_buf_init(&b, JOIN_MAX);
    for (size_t i = 0; i < n; i++) {
        struct json_object *name = ef_ad__jget(json_object_array_get_idx(arr, i), "name");
        const char *fn = ef_ad__jstr(name, "formatted_name", NULL);
        if (!ef_ad__nonempty(fn))
            continue;
        /* All or nothing per name, so the text never ends mid-character. */
        if (ef_buf_appendf(&b, "%s%s", b.len ? ", " : "", fn) < 0)
            break;
    }
    *text = ef_buf_steal(&b, tlen);
    ef_ad__put_raw(meta, "contacts", arr);
    return 1;
}

static int content_interactive(const wctx *c, struct json_object *msg, const char *path,
                               struct json_object *meta, char **text, size_t *tlen)
{
    struct json_object *o = NULL;
    struct json_object *r = NULL;
    char p[192];
    int rc = ef_ad__sub_obj(msg, "interactive", false, interactive_fields,
                            EF_AD_COUNT(interactive_fields), path, c->info, &o);
    if (rc <= 0)
        return rc;
    path_fmt(p, sizeof(p), "%s.interactive", path);
    const char *itype = ef_ad__jstr(o, "type", NULL);
    const char *s = NULL;
    if (!itype)
        return refuse(c->info, p, "type", "missing");
    size_t len = 0;

    if (strcmp(itype, "button_reply") == 0 || strcmp(itype, "list_reply") == 0) {
        rc = ef_ad__sub_obj(o, itype, false, reply_fields, EF_AD_COUNT(reply_fields), p, c->info,
                            &r);
        if (rc < 0)
            return rc;
        if (!r)
            return missing_object(c->info, p, itype);
        struct json_object *im = json_object_new_object();
        ef_ad__put_cstr(im, "type", itype);
        ef_ad__copy_str(im, "id", r, "id");
        ef_ad__copy_str(im, "title", r, "title");
        ef_ad__copy_str(im, "description", r, "description");
        ef_ad__copy_str(meta, "payload", r, "id");
        s = ef_ad__jstr(r, "title", &len);
        json_object_object_add(meta, "interactive", im);
    } else if (strcmp(itype, "nfm_reply") == 0) {
        rc = ef_ad__sub_obj(o, "nfm_reply", false, nfm_fields, EF_AD_COUNT(nfm_fields), p, c->info,
                            &r);
        if (rc < 0)
            return rc;
        if (!r)
            return missing_object(c->info, p, itype);
        struct json_object *im = json_object_new_object();
        ef_ad__put_cstr(im, "type", itype);
        ef_ad__copy_str(im, "name", r, "name");
        ef_ad__copy_str(im, "body", r, "body");
        ef_ad__copy_str(im, "response_json", r, "response_json");
        s = ef_ad__jstr(r, "body", &len);
        json_object_object_add(meta, "interactive", im);
    } else {
        /* A newer interactive kind: keep it whole. */
        ef_ad__put_raw(meta, "interactive", o);
    }
    if (s) {
        *text = ef_strndup(s, len);
        *tlen = len;
    }
    return 1;
}

/* Template quick-reply tap: the payload the template defined, for the FSM
 * (callback_id stays NULL: there is nothing to answer on WhatsApp). */
static int content_button(const wctx *c, struct json_object *msg, const char *path,
                          struct json_object *meta, char **text, size_t *tlen)
{
    struct json_object *o = NULL;
    int rc = ef_ad__sub_obj(msg, "button", false, button_fields, EF_AD_COUNT(button_fields), path,
                            c->info, &o);
    if (rc <= 0)
        return rc;
    struct json_object *b = json_object_new_object();
    ef_ad__copy_str(b, "payload", o, "payload");
    ef_ad__copy_str(b, "text", o, "text");
    json_object_object_add(meta, "button", b);
    ef_ad__copy_str(meta, "payload", o, "payload");
    size_t len = 0;
    const char *s = ef_ad__jstr(o, "text", &len);
    if (s) {
        *text = ef_strndup(s, len);
        *tlen = len;
    }
    return 1;
}

static int content_order(const wctx *c, struct json_object *msg, const char *path,
                         struct json_object *meta, char **text, size_t *tlen)
{
    struct json_object *o = NULL;
    int rc = ef_ad__sub_obj(msg, "order", false, order_fields, EF_AD_COUNT(order_fields), path,
                            c->info, &o);
    if (rc <= 0)
        return rc;
    ef_ad__put_raw(meta, "order", o);
    size_t len = 0;
    const char *s = ef_ad__jstr(o, "text", &len);
    if (s) {
        *text = ef_strndup(s, len);
        *tlen = len;
    }
    return 1;
}

/*
 * The text and meta of a message body of `type` (a customer message, or an
 * edit's new version). *text is owned by the caller ("" when the type has
 * none). A known type whose object is missing is REFUSED (noted, *text
 * NULL); an unknown type keeps the whole body as meta.raw.
 */
static int add_content(const wctx *c, struct json_object *msg, const char *type, const char *path,
                       struct json_object *meta, char **text, size_t *tlen)
{
    ef_parse_info *info = c->info;
    struct json_object *o = NULL;
    int rc;

    *text = NULL;
    *tlen = 0;
    if (strcmp(type, "text") == 0) {
        rc = ef_ad__sub_obj(msg, "text", false, text_fields, EF_AD_COUNT(text_fields), path, info,
                            &o);
        if (rc > 0) {
            size_t len = 0;
            const char *s = ef_ad__jstr(o, "body", &len);
            if (s) {
                *text = ef_strndup(s, len);
                *tlen = len;
            }
        }
    } else if (is_media(type)) {
        rc = content_media(c, msg, type, path, meta, text, tlen);
    } else if (strcmp(type, "location") == 0) {
        rc = content_location(c, msg, path, meta, text, tlen);
    } else if (strcmp(type, "contacts") == 0) {
        rc = content_contacts(c, msg, path, meta, text, tlen);
    } else if (strcmp(type, "interactive") == 0) {
        rc = content_interactive(c, msg, path, meta, text, tlen);
    } else if (strcmp(type, "button") == 0) {
        rc = content_button(c, msg, path, meta, text, tlen);
    } else if (strcmp(type, "order") == 0) {
        rc = content_order(c, msg, path, meta, text, tlen);
    } else if (strcmp(type, "revoke") == 0) {
        /* The customer deleted a message; what to do with the stored copy
         * is the store's decision: record which one. */
        rc = ef_ad__sub_obj(msg, "revoke", false, revoke_fields, EF_AD_COUNT(revoke_fields), path,
                            info, &o);
        if (rc > 0)
            ef_ad__copy_str(meta, "original_message_id", o, "original_message_id");
    } else {
        /* unsupported, unknown, and types newer than this file. */
        ef_ad__put_raw(meta, "raw", msg);
        rc = 1;
    }
    if (rc == 0)
        rc = missing_object(info, path, type);
    if (rc < 0 || rc == REFUSED) {
        ef_free(*text);
        *text = NULL;
        return rc;
    }
    if (!*text) {
        *text = ef_strdup("");
        *tlen = 0;
    }
    return 0;
}

/* meta.context and meta.reply_to. */
static void add_context(struct json_object *ctx, struct json_object *meta)
{
    struct json_object *o = json_object_new_object();
    ef_ad__copy_str(o, "from", ctx, "from");
    ef_ad__copy_str(o, "id", ctx, "id");
    ef_ad__copy_bool(o, "forwarded", ctx, "forwarded");
    ef_ad__copy_bool(o, "frequently_forwarded", ctx, "frequently_forwarded");
    ef_ad__copy_raw(o, "referred_product", ctx, "referred_product");
    json_object_object_add(meta, "context", o);
    size_t len = 0;
    const char *id = ef_ad__jstr(ctx, "id", &len);
    if (ef_ad__nonempty(id)) {
        struct json_object *r = json_object_new_object();
        ef_ad__put_str(r, "platform_message_id", id, len);
        json_object_object_add(meta, "reply_to", r);
    }
}

/* ---- messages[] --------------------------------------------------------- */

static bool streq(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

/* One messages[] item as the steps below read it (borrowed from the tree). */
typedef struct wmsg {
    const char *id, *type;
    size_t idlen;
    int64_t date;
    const char *from, *from_uid, *group_id; /* non-empty or NULL */
    const char *sender;                     /* from, else from_user_id */
    ef_msg_kind kind;
    const char *target; /* REACTION/EDIT/IDENTITY: what the event acts on */
    struct json_object *ctx, *sys, *react, *edit, *inner;
} wmsg;

static const char *nonempty_or_null(const char *s)
{
    return ef_ad__nonempty(s) ? s : NULL;
}

/* Step 1, header: shape, id, type, timestamp, context and the sender. */
static int msg_header(const wctx *c, struct json_object *msg, const char *path, wmsg *w)
{
    ef_parse_info *info = c->info;
    size_t tslen = 0;
    int rc;

    *w = (wmsg){.kind = EF_MSG_NEW};
    rc = ef_pj_check(msg, message_fields, EF_AD_COUNT(message_fields), info, path);
    if (rc < 0)
        return rc;
    rc = need_str(msg, "id", path, info, &w->id, &w->idlen);
    if (rc < 0)
        return rc;
    rc = need_str(msg, "type", path, info, &w->type, NULL);
    if (rc < 0)
        return rc;
    const char *ts = ef_ad__jstr(msg, "timestamp", &tslen);
    if (!parse_ts(ts, tslen, &w->date))
        return refuse(info, path, "timestamp", "not a decimal number of seconds");
    rc = ef_ad__sub_obj(msg, "context", false, context_fields, EF_AD_COUNT(context_fields), path,
                        info, &w->ctx);
    if (rc < 0)
        return rc;
    w->from = nonempty_or_null(ef_ad__jstr(msg, "from", NULL));
    w->from_uid = nonempty_or_null(ef_ad__jstr(msg, "from_user_id", NULL));
    w->group_id = nonempty_or_null(ef_ad__jstr(msg, "group_id", NULL));
    w->sender = w->from ? w->from : w->from_uid;
    return 0;
}

/* A system message: a customer changing number or BSUID is an IDENTITY
 * event old -> new; any other is stored as a message. */
static int msg_system(const wctx *c, struct json_object *msg, const char *path, wmsg *w)
{
    int rc = ef_ad__sub_obj(msg, "system", false, system_fields, EF_AD_COUNT(system_fields), path,
                            c->info, &w->sys);
    if (rc < 0)
        return rc;
    const char *stype = ef_ad__jstr(w->sys, "type", NULL);
    const char *target = NULL;
    if (streq(stype, "user_changed_number") || streq(stype, "customer_changed_number")) {
        /* old number -> new number (legacy payloads: new_wa_id) */
        target = ef_ad__jstr(w->sys, "wa_id", NULL);
        if (!ef_ad__nonempty(target))
            target = ef_ad__jstr(w->sys, "new_wa_id", NULL);
    } else if (streq(stype, "user_changed_user_id")) {
        /* old BSUID -> new BSUID; such payloads may carry no `from`. */
        target = ef_ad__jstr(w->sys, "user_id", NULL);
        const char *prev = ef_ad__jstr(w->sys, "previous_user_id", NULL);
        if (ef_ad__nonempty(prev))
            w->sender = prev;
        else if (w->from_uid)
            w->sender = w->from_uid;
    }
    if (ef_ad__nonempty(target)) {
        w->kind = EF_MSG_IDENTITY;
        w->target = target;
    }
    return 0;
}

/* Step 2, kind: system (identity), reaction and edit act on something
 * else; everything else is a NEW message. */
static int msg_kind(const wctx *c, struct json_object *msg, const char *path, wmsg *w)
{
    ef_parse_info *info = c->info;
    char p[192];
    int rc = 0;

    if (strcmp(w->type, "system") == 0) {
        rc = msg_system(c, msg, path, w);
    } else if (strcmp(w->type, "reaction") == 0) {
        rc = ef_ad__sub_obj(msg, "reaction", false, reaction_fields, EF_AD_COUNT(reaction_fields),
                            path, info, &w->react);
        if (rc > 0) {
            path_fmt(p, sizeof(p), "%s.reaction", path);
            rc = need_str(w->react, "message_id", p, info, &w->target, NULL);
            w->kind = EF_MSG_REACTION;
        }
    } else if (strcmp(w->type, "edit") == 0) {
        rc = ef_ad__sub_obj(msg, "edit", false, edit_fields, EF_AD_COUNT(edit_fields), path, info,
                            &w->edit);
        if (rc > 0) {
            path_fmt(p, sizeof(p), "%s.edit", path);
            rc = need_str(w->edit, "original_message_id", p, info, &w->target, NULL);
            if (rc == 0)
                rc = ef_ad__sub_obj(w->edit, "message", false, inner_fields,
                                    EF_AD_COUNT(inner_fields), p, info, &w->inner);
            w->kind = EF_MSG_EDIT;
        }
    }
    if (rc < 0)
        return rc;
    if (!w->sender)
        return refuse(info, path, "from", "missing or empty, and no from_user_id");
    return 0;
}

/* Step 3, the event: ids, party, and the meta every kind carries. */
static ef_msg *msg_event(const wctx *c, struct json_object *msg, const wmsg *w,
                         struct json_object *meta)
{
    ef_msg *m = ef_msg_new(w->kind, PLATFORM);
    m->message_id = ef_strndup(w->id, w->idlen);
    m->date = w->date;
    m->target_id = w->target ? ef_strdup(w->target) : NULL;
    set_party(m, c, w->sender, w->group_id, find_contact(c, w->from, w->from_uid), meta);
    ef_ad__put_cstr(meta, "type", w->type);
    ef_ad__put_cstr(meta, "from_user_id", w->from_uid);
    ef_ad__put_cstr(meta, "group_id", w->group_id);
    if (w->ctx)
        add_context(w->ctx, meta);
    ef_ad__copy_raw(meta, "referral", msg, "referral");
    ef_ad__copy_raw(meta, "identity", msg, "identity");
    if (ef_ad__jget(msg, "errors"))
        ef_ad__copy_raw(meta, "errors", msg, "errors");
    else if (c->value_errors)
        ef_ad__put_raw(meta, "errors", c->value_errors);
    return m;
}

/* A reaction's status: the reaction now set, [] when it was removed. */
static void body_reaction(const wmsg *w, ef_msg *m, struct json_object *meta, char **text)
{
    struct json_object *st = json_object_new_array();
    size_t elen = 0;
    const char *emoji = ef_ad__jstr(w->react, "emoji", &elen);
    if (ef_ad__nonempty(emoji))
        json_object_array_add(st, json_object_new_string_len(emoji, (int)elen));
    m->status = ef_ad__meta_string(st);
    json_object_put(st);
    struct json_object *r = json_object_new_object();
    ef_ad__copy_str(r, "message_id", w->react, "message_id");
    ef_ad__copy_str(r, "emoji", w->react, "emoji");
    json_object_object_add(meta, "reaction", r);
    *text = ef_strdup("");
    m->content_type = ef_strdup("reaction");
}

/* An edit: the stored message takes the new version's type and text. */
static int body_edit(const wctx *c, const wmsg *w, const char *path, ef_msg *m,
                     struct json_object *meta, char **text, size_t *tlen)
{
    char p[192];
    const char *itype = ef_ad__jstr(w->inner, "type", NULL);
    struct json_object *e = json_object_new_object();
    ef_ad__copy_str(e, "original_message_id", w->edit, "original_message_id");
    ef_ad__put_cstr(e, "type", itype);
    json_object_object_add(meta, "edit", e);
    if (!ef_ad__nonempty(itype)) {
        /* Storing it would blank the stored message's text. */
        ef_ad__add_note(c->info, "%s.edit: no message type, not stored", path);
        return REFUSED;
    }
    path_fmt(p, sizeof(p), "%s.edit.message", path);
    int rc = add_content(c, w->inner, itype, p, meta, text, tlen);
    if (rc != 0)
        return rc;
    m->content_type = ef_strdup(itype);
    return 0;
}

/* Step 4, content: text, content_type and the kind's own meta. */
static int msg_body(const wctx *c, struct json_object *msg, const char *path, const wmsg *w,
                    ef_msg *m, struct json_object *meta)
{
    char *text = NULL;
    size_t tlen = 0;
    int rc = 0;

    if (w->kind == EF_MSG_REACTION) {
        body_reaction(w, m, meta, &text);
    } else if (w->kind == EF_MSG_EDIT) {
        rc = body_edit(c, w, path, m, meta, &text, &tlen);
    } else if (strcmp(w->type, "system") == 0) {
        size_t blen = 0;
        const char *body = ef_ad__jstr(w->sys, "body", &blen);
        if (body) {
            text = ef_strndup(body, blen);
            tlen = blen;
        }
        ef_ad__put_raw(meta, "system", w->sys);
        m->content_type = ef_strdup(w->type);
    } else {
        rc = add_content(c, msg, w->type, path, meta, &text, &tlen);
        m->content_type = ef_strdup(w->type);
    }
    if (rc != 0) {
        ef_free(text);
        return rc;
    }
    if (!text) {
        text = ef_strdup("");
        tlen = 0;
    }
    m->text = text;
    m->text_len = tlen;
    return 0;
}

/* One messages[] item: header, kind, event, content. 0 with *out set,
 * REFUSED (this message is not stored: info->note says why), or EF_EPROTO
 * (the payload is broken). */
static int on_message(const wctx *c, struct json_object *msg, const char *path, ef_msg **out)
{
    wmsg w;
    int rc = msg_header(c, msg, path, &w);
    if (rc == 0)
        rc = msg_kind(c, msg, path, &w);
    if (rc < 0)
        return rc;
    if (names_object(w.type) && !ef_ad__jget(msg, w.type))
        return missing_object(c->info, path, w.type);
    struct json_object *meta = meta_new(c);
    ef_msg *m = msg_event(c, msg, &w, meta);
    rc = msg_body(c, msg, path, &w, m, meta);
    if (rc == 0)
        rc = ef_ad__check_keys(m, c->info, path);
    if (rc != 0) {
        json_object_put(meta);
        ef_msg_free(m);
        return rc;
    }
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    *out = m;
    return 0;
}

/* ---- statuses[] --------------------------------------------------------- */

static int on_status(const wctx *c, struct json_object *st, const char *path, ef_msg **out)
{
    ef_parse_info *info = c->info;
    const char *id, *status, *ts;
    size_t idlen = 0, slen = 0, tslen = 0;
    int64_t date = 0;
    int rc;

    rc = ef_pj_check(st, status_fields, EF_AD_COUNT(status_fields), info, path);
    if (rc < 0)
        return rc;
    rc = need_str(st, "id", path, info, &id, &idlen);
    if (rc < 0)
        return rc;
    rc = need_str(st, "status", path, info, &status, &slen);
    if (rc < 0)
        return rc;
    ts = ef_ad__jstr(st, "timestamp", &tslen);
    if (!parse_ts(ts, tslen, &date))
        return refuse(info, path, "timestamp", "not a decimal number of seconds");
    const char *rid = ef_ad__jstr(st, "recipient_id", NULL);
    const char *ruid = ef_ad__jstr(st, "recipient_user_id", NULL);
    const char *who = ef_ad__nonempty(rid) ? rid : ef_ad__nonempty(ruid) ? ruid : NULL;
    if (!who)
        return refuse(info, path, "recipient_id", "missing or empty, and no recipient_user_id");
    bool group = streq(ef_ad__jstr(st, "recipient_type", NULL), "group");

    ef_msg *m = ef_msg_new(EF_MSG_STATUS, PLATFORM);
    struct json_object *meta = meta_new(c);
    m->target_id = ef_strndup(id, idlen);
    m->status = ef_strndup(status, slen);
    /* One row per (wamid, status): redeliveries dedupe, transitions don't. */
    m->message_id = ef_asprintf("%s:%s", m->target_id, m->status);
    m->date = date;
    m->text = ef_strdup("");
    m->text_len = 0;
    m->content_type = ef_strdup("status");
    set_party(m, c, who, group ? who : NULL, find_contact(c, rid, ruid), meta);
    ef_ad__copy_raw(meta, "errors", st, "errors");
    ef_ad__copy_raw(meta, "pricing", st, "pricing");
    ef_ad__copy_raw(meta, "conversation", st, "conversation");
    ef_ad__copy_str(meta, "recipient_id", st, "recipient_id");
    ef_ad__copy_str(meta, "recipient_user_id", st, "recipient_user_id");
    ef_ad__copy_str(meta, "recipient_type", st, "recipient_type");
    ef_ad__copy_str(meta, "biz_opaque_callback_data", st, "biz_opaque_callback_data");
    m->meta_json = ef_ad__meta_string(meta);
    json_object_put(meta);
    *out = m;
    return 0;
}

/* ---- entry[].changes[].value -------------------------------------------- */

/* "code title" of value.errors[0] for the note. */
static void note_errors(ef_parse_info *info, const char *path, struct json_object *errors)
{
    struct json_object *e = json_object_array_get_idx(errors, 0);
    int64_t code = 0;
    const char *title = NULL;
    if (json_object_is_type(e, json_type_object)) {
        if (ef_pj_int64(e, "code", false, &code, NULL, NULL) <= 0)
            code = 0;
        title = ef_ad__jstr(e, "title", NULL);
    }
    ef_ad__add_note(info, "%s: errors only: %" PRId64 " %.96s", path, code, title ? title : "");
}

static int on_value(wctx *c, struct json_object *value, const char *path, ef_msg_list *tmp)
{
    ef_parse_info *info = c->info;
    struct json_object *md = NULL;
    char p[192];
    int rc;

    rc = ef_pj_check(value, value_fields, EF_AD_COUNT(value_fields), info, path);
    if (rc < 0)
        return rc;
    rc = ef_ad__sub_obj(value, "metadata", false, metadata_fields, EF_AD_COUNT(metadata_fields),
                        path, info, &md);
    if (rc < 0)
        return rc;
    struct json_object *msgs = ef_ad__jget(value, "messages");
    struct json_object *sts = ef_ad__jget(value, "statuses");
    size_t nm = msgs ? json_object_array_length(msgs) : 0;
    size_t ns = sts ? json_object_array_length(sts) : 0;
    c->pnid = ef_ad__jstr(md, "phone_number_id", NULL);
    c->display = ef_ad__jstr(md, "display_phone_number", NULL);
    c->contacts = ef_ad__jget(value, "contacts");
    c->value_errors = ef_ad__jget(value, "errors");
    if (nm + ns > 0) {
        /* Events are routed by the business number they arrived on. */
        if (!md)
            return refuse(info, path, "metadata", "missing");
        if (!ef_ad__nonempty(c->pnid)) {
            path_fmt(p, sizeof(p), "%s.metadata", path);
            return refuse(info, p, "phone_number_id", "empty");
        }
    }
    size_t nc = c->contacts ? json_object_array_length(c->contacts) : 0;
    for (size_t i = 0; i < nc; i++) {
        struct json_object *ct = json_object_array_get_idx(c->contacts, i);
        struct json_object *profile = NULL;
        path_fmt(p, sizeof(p), "%s.contacts[%zu]", path, i);
        rc = ef_pj_check(ct, contact_fields, EF_AD_COUNT(contact_fields), info, p);
        if (rc < 0)
            return rc;
        rc = ef_ad__sub_obj(ct, "profile", false, profile_fields, EF_AD_COUNT(profile_fields), p,
                            info, &profile);
        if (rc < 0)
            return rc;
    }

    for (size_t i = 0; i < nm; i++) {
        ef_msg *m = NULL;
        path_fmt(p, sizeof(p), "%s.messages[%zu]", path, i);
        rc = on_message(c, json_object_array_get_idx(msgs, i), p, &m);
        if (rc < 0)
            return rc;
        if (rc == REFUSED) {
            c->info->refused++;
            continue;
        }
        ef_msg_list_push(tmp, m);
    }
    for (size_t i = 0; i < ns; i++) {
        ef_msg *m = NULL;
        path_fmt(p, sizeof(p), "%s.statuses[%zu]", path, i);
        rc = on_status(c, json_object_array_get_idx(sts, i), p, &m);
        if (rc < 0)
            return rc;
        ef_msg_list_push(tmp, m);
    }
    if (nm + ns == 0) {
        if (c->value_errors && json_object_array_length(c->value_errors) > 0)
            note_errors(info, path, c->value_errors);
        else
            ef_ad__add_note(info, "%s: no messages or statuses", path);
    }
    return 0;
}

int ef_wa__parse(struct json_object *root, ef_msg_list *out, ef_parse_info *info)
{
    ef_parse_info scratch;
    ef_msg_list tmp;
    char path[192];
    int rc;

    if (!info)
        info = &scratch;
    memset(info, 0, sizeof(*info));
    if (!out) {
        ef_ad__note(info, "no output list");
        return EF_EINVAL;
    }
    if (!json_object_is_type(root, json_type_object)) {
        ef_ad__note(info, "payload: expected object");
        return EF_EPROTO;
    }
    rc = ef_pj_check(root, root_fields, EF_AD_COUNT(root_fields), info, NULL);
    if (rc < 0)
        return rc;
    const char *object = ef_ad__jstr(root, "object", NULL);
    if (!object || strcmp(object, OBJECT_NAME) != 0) {
        ef_ad__note(info, "object: \"%.64s\" is not %s", object ? object : "", OBJECT_NAME);
        return EF_EPROTO;
    }

    ef_msg_list_init(&tmp);
    struct json_object *entries = ef_ad__jget(root, "entry");
    size_t ne = json_object_array_length(entries);
    if (ne == 0)
        ef_ad__add_note(info, "entry: empty");
    for (size_t i = 0; i < ne; i++) {
        struct json_object *entry = json_object_array_get_idx(entries, i);
        path_fmt(path, sizeof(path), "entry[%zu]", i);
        rc = ef_pj_check(entry, entry_fields, EF_AD_COUNT(entry_fields), info, path);
        if (rc < 0)
            goto fail;
        struct json_object *changes = ef_ad__jget(entry, "changes");
        size_t nch = json_object_array_length(changes);
        if (nch == 0)
            ef_ad__add_note(info, "%s.changes: empty", path);
        for (size_t j = 0; j < nch; j++) {
            struct json_object *change = json_object_array_get_idx(changes, j);
            struct json_object *value = NULL;
            path_fmt(path, sizeof(path), "entry[%zu].changes[%zu]", i, j);
            rc = ef_pj_check(change, change_fields, EF_AD_COUNT(change_fields), info, path);
            if (rc < 0)
                goto fail;
            const char *field = ef_ad__jstr(change, "field", NULL);
            if (!field) {
                rc = refuse(info, path, "field", "missing");
                goto fail;
            }
            if (!info->what[0])
                snprintf(info->what, sizeof(info->what), "%s", field);
            if (strcmp(field, "messages") != 0) {
                /* account_update, message_template_status_update,
                 * user_preferences, calls, ...: acknowledged, not stored. */
                ef_ad__add_note(info, "%s: field %.48s not handled", path, field);
                continue;
            }
            rc = ef_pj_obj(change, "value", true, &value, info, path);
            if (rc < 0)
                goto fail;
            wctx c = {.info = info, .waba_id = ef_ad__jstr(entry, "id", NULL)};
            path_fmt(path, sizeof(path), "entry[%zu].changes[%zu].value", i, j);
            rc = on_value(&c, value, path, &tmp);
            if (rc < 0)
                goto fail;
        }
    }

    for (size_t i = 0; i < tmp.n; i++)
        ef_msg_list_push(out, tmp.items[i]);
    tmp.n = 0;
    ef_msg_list_cleanup(&tmp);
    return 0;

fail:
    ef_msg_list_cleanup(&tmp);
    return rc;
}
