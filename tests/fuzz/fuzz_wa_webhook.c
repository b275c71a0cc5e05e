/*
 * fuzz_wa_webhook.c -- libFuzzer target: any bytes -> ef_json_parse() ->
 * the WhatsApp adapter's parse.
 *
 * Besides "no crash, no leak, no sanitizer report", it checks the adapter's
 * contract on every input and aborts when one breaks:
 *  - on error nothing was appended;
 *  - on success nothing was skipped silently: one event per messages[] and
 *    statuses[] item of every "messages" change, counted here independently
 *    of the adapter, less the messages refused one by one (info.refused,
 *    with a note); every message whose type names a missing object
 *    ("type":"text" without "text") is among those refused;
 *  - every event has platform "whatsapp", a channel_id (the business
 *    number), chat_id "<someone>@<channel_id>", message_id, sender_id,
 *    content_type, and text (byte length text_len, valid UTF-8, no NUL);
 *    never a callback_id or an update_id;
 *  - STATUS, REACTION, EDIT and IDENTITY events name their target; a
 *    status's message_id is "<target>:<status>";
 *  - meta_json (and a reaction's status) is itself strict JSON that
 *    ef_json_parse accepts.
 *
 * Build (seeds in tests/fuzz/corpus/wa_webhook/):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DEF_FUZZING \
 *     -Isrc/gateway -Isrc/platforms $(pkg-config --cflags json-c) \
 *     tests/fuzz/fuzz_wa_webhook.c <libef.a built with the same sanitizers> \
 *     $(pkg-config --libs json-c) -lcrypto
 */
#include "platforms/platform.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_json(const char *s)
{
    struct json_object *o = NULL;
    char err[128];
    if (!s || ef_json_parse(s, strlen(s), 64, &o, err, sizeof(err)) != 0)
        abort();
    json_object_put(o);
}

static bool nonempty(const char *s)
{
    return s && *s;
}

static void check_msg(const ef_msg *m)
{
    if (!m || !m->platform || strcmp(m->platform, "whatsapp") != 0)
        abort();
    if (m->kind < 0 || m->kind >= EF_MSG__COUNT)
        abort();
    if (!nonempty(m->channel_id) || !nonempty(m->chat_id) || !nonempty(m->message_id) ||
        !nonempty(m->sender_id) || !nonempty(m->content_type) || !nonempty(m->chat_type))
        abort();
    size_t cl = strlen(m->chat_id), nl = strlen(m->channel_id);
    if (cl < nl + 2 || m->chat_id[cl - nl - 1] != '@' ||
        strcmp(m->chat_id + cl - nl, m->channel_id))
        abort();
    if (!m->text || strlen(m->text) != m->text_len || !ef_utf8_valid(m->text, m->text_len))
        abort();
    if (m->callback_id || m->update_id != 0)
        abort();
    check_json(m->meta_json);
    switch (m->kind) {
    case EF_MSG_STATUS: {
        if (!nonempty(m->target_id) || !nonempty(m->status))
            abort();
        size_t tl = strlen(m->target_id);
        if (strncmp(m->message_id, m->target_id, tl) != 0 || m->message_id[tl] != ':' ||
            strcmp(m->message_id + tl + 1, m->status) != 0)
            abort();
        break;
    }
    case EF_MSG_REACTION:
        if (!nonempty(m->target_id))
            abort();
        check_json(m->status);
        break;
    case EF_MSG_EDIT:
    case EF_MSG_IDENTITY:
        if (!nonempty(m->target_id))
            abort();
        break;
    case EF_MSG_NEW:
        if (m->target_id || m->status)
            abort();
        break;
    default:
        abort(); /* the adapter makes no other kind */
    }
}

static size_t arr_len(struct json_object *o, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_array))
        return 0;
    return json_object_array_length(v);
}

/* Message types whose content sits in an object named like the type. */
static bool names_object(const char *type)
{
    static const char *const types[] = {
        "text",        "image",  "video", "audio",  "document", "sticker", "location", "contacts",
        "interactive", "button", "order", "revoke", "reaction", "edit",    "system"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(type, types[i]) == 0)
            return true;
    return false;
}

/* messages[] items whose type names an object they lack. */
static size_t missing_objects(struct json_object *value)
{
    struct json_object *msgs = NULL;
    size_t n = 0;
    if (!json_object_object_get_ex(value, "messages", &msgs) ||
        !json_object_is_type(msgs, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(msgs); i++) {
        struct json_object *m = json_object_array_get_idx(msgs, i), *type = NULL, *obj = NULL;
        if (json_object_object_get_ex(m, "type", &type) &&
            json_object_is_type(type, json_type_string) &&
            names_object(json_object_get_string(type)) &&
            (!json_object_object_get_ex(m, json_object_get_string(type), &obj) || !obj))
            n++;
    }
    return n;
}

/* messages[] + statuses[] of every "messages" change, counted the plain
 * way, and (*missing) the messages among them that lack their type's
 * object; only meaningful when parse succeeded (the shape is then valid). */
static size_t expected_events(struct json_object *root, size_t *missing)
{
    size_t total = 0;
    *missing = 0;
    struct json_object *entries = NULL;
    if (!json_object_object_get_ex(root, "entry", &entries))
        return 0;
    for (size_t i = 0; i < json_object_array_length(entries); i++) {
        struct json_object *changes = NULL;
        if (!json_object_object_get_ex(json_object_array_get_idx(entries, i), "changes", &changes))
            continue;
        for (size_t j = 0; j < json_object_array_length(changes); j++) {
            struct json_object *ch = json_object_array_get_idx(changes, j);
            struct json_object *field = NULL, *value = NULL;
            if (!json_object_object_get_ex(ch, "field", &field) ||
                strcmp(json_object_get_string(field), "messages") != 0 ||
                !json_object_object_get_ex(ch, "value", &value))
                continue;
            total += arr_len(value, "messages") + arr_len(value, "statuses");
            *missing += missing_objects(value);
        }
    }
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct json_object *root = NULL;
    char err[128];
    if (ef_json_parse((const char *)data, size, 64, &root, err, sizeof(err)) != 0)
        return 0;

    ef_msg_list out;
    ef_parse_info info;
    ef_msg_list_init(&out);
    int rc = ef_platform_parse(&ef_platform_whatsapp, root, &out, &info);
    if (rc < 0 && out.n != 0)
        abort();
    size_t missing = 0, expected = expected_events(root, &missing);
    if (rc == 0 && (info.refused < missing || info.refused > expected ||
                    out.n != expected - info.refused || (info.refused > 0 && !info.note[0])))
        abort();
    if (memchr(info.note, '\0', sizeof(info.note)) == NULL ||
        memchr(info.what, '\0', sizeof(info.what)) == NULL)
        abort();
    json_object_put(root);
    /* Events own their strings: checked after the tree is gone. */
    for (size_t i = 0; i < out.n; i++)
        check_msg(out.items[i]);

    ef_msg_list_cleanup(&out);
    return 0;
}
