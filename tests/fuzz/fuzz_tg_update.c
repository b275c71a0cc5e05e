/*
 * fuzz_tg_update.c -- libFuzzer target: any bytes -> ef_json_parse() ->
 * the Telegram adapter's parse.
 *
 * Besides "no crash, no leak, no sanitizer report", it checks the adapter's
 * contract on every input and aborts when one breaks:
 *  - on error nothing was appended; at most one event per update; an
 *    update of an unknown type (info.unknown_type) appends nothing and
 *    names its type in info.what;
 *  - every event has platform, chat_id, text (byte length text_len, valid
 *    UTF-8, no NUL) and content_type, and every key the store reads for
 *    its kind (sender of messages and reactions, message id, target);
 *  - meta_json (and a reaction's status) is itself strict JSON that
 *    ef_json_parse accepts.
 *
 * Build (seeds in tests/fuzz/corpus/tg_update/):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DEF_FUZZING \
 *     -Isrc/gateway -Isrc/platforms $(pkg-config --cflags json-c) \
 *     tests/fuzz/fuzz_tg_update.c <libef.a built with the same sanitizers> \
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

static void check_msg(const ef_msg *m)
{
    if (!m || !m->platform || !m->chat_id || !m->text || !m->content_type)
        abort();
    if (strlen(m->text) != m->text_len || !ef_utf8_valid(m->text, m->text_len))
        abort();
    if (m->kind < 0 || m->kind >= EF_MSG__COUNT)
        abort();
    bool has_sender = m->sender_id && *m->sender_id;
    switch (m->kind) {
    case EF_MSG_NEW:
    case EF_MSG_CALLBACK:
        if (!has_sender || !m->message_id)
            abort();
        break;
    case EF_MSG_EDIT:
        if (!has_sender || !m->message_id || !m->target_id)
            abort();
        break;
    case EF_MSG_REACTION:
        if (!has_sender || !m->target_id)
            abort();
        break;
    case EF_MSG_MIGRATE:
        if (!m->target_id)
            abort();
        break;
    default:
        break;
    }
    check_json(m->meta_json);
    if (m->status)
        check_json(m->status);
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
    int rc = ef_platform_parse(&ef_platform_telegram, root, &out, &info);
    if (rc < 0 && out.n != 0)
        abort();
    if (out.n > 1)
        abort();
    if (info.unknown_type && (rc != 0 || out.n != 0 || !info.what[0]))
        abort();
    for (size_t i = 0; i < out.n; i++)
        check_msg(out.items[i]);

    ef_msg_list_cleanup(&out);
    json_object_put(root);
    return 0;
}
