/*
 * test_telegram.c -- the Telegram adapter's inbound normalization, through
 * the public API: body -> ef_json_parse -> ef_platform_parse -> ef_msg.
 * Payloads follow the Bot API wire format (PLATFORMS.md part A).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "platforms/platform.h"

/* ---- fixture and helpers ------------------------------------------------ */

typedef struct fx {
    ef_msg_list out;
    ef_parse_info info;
    struct json_object *meta; /* parsed meta_json of the last one() */
} fx;

static int setup(void **state)
{
    fx *f = ef_calloc(1, sizeof(*f));
    ef_msg_list_init(&f->out);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ef_msg_list_cleanup(&f->out);
    json_object_put(f->meta);
    ef_free(f);
    return 0;
}

/* Parses body and runs the adapter on it; resets the fixture first. */
static int run(fx *f, const char *body)
{
    struct json_object *root = NULL;
    char err[128];
    ef_msg_list_cleanup(&f->out);
    json_object_put(f->meta);
    f->meta = NULL;
    int rc = ef_json_parse(body, strlen(body), 64, &root, err, sizeof(err));
    if (rc != 0)
        fail_msg("test body does not parse: %s", err);
    rc = ef_platform_parse(&ef_platform_telegram, root, &f->out, &f->info);
    json_object_put(root);
    return rc;
}

/* Runs body, expects exactly one event, and parses its meta_json. */
static ef_msg *one(fx *f, const char *body)
{
    int rc = run(f, body);
    if (rc != 0)
        fail_msg("parse failed: %s (%s)", ef_errname(rc), f->info.note);
    assert_int_equal(f->out.n, 1);
    ef_msg *m = f->out.items[0];
    char err[128];
    assert_non_null(m->meta_json);
    assert_int_equal(
        ef_json_parse(m->meta_json, strlen(m->meta_json), 64, &f->meta, err, sizeof(err)), 0);
    assert_true(json_object_is_type(f->meta, json_type_object));
    return m;
}

/* Runs body, expects success with nothing to store. */
static void none(fx *f, const char *body)
{
    int rc = run(f, body);
    if (rc != 0)
        fail_msg("parse failed: %s (%s)", ef_errname(rc), f->info.note);
    assert_int_equal(f->out.n, 0);
    assert_true(f->info.note[0] != '\0');
}

/* Runs body, expects EF_EPROTO naming `field` in the note, nothing stored. */
static void refused(fx *f, const char *body, const char *note)
{
    int rc = run(f, body);
    if (rc != EF_EPROTO)
        fail_msg("expected EF_EPROTO, got %s (note: %s)", ef_errname(rc), f->info.note);
    assert_int_equal(f->out.n, 0);
    if (strstr(f->info.note, note) == NULL)
        fail_msg("note \"%s\" does not contain \"%s\"", f->info.note, note);
}

/* meta lookup by "a.b[2].c"; NULL when absent. */
static struct json_object *mget(fx *f, const char *path)
{
    struct json_object *o = f->meta;
    const char *p = path;
    while (o && *p) {
        char part[64];
        size_t n = strcspn(p, ".[");
        assert_true(n < sizeof(part));
        memcpy(part, p, n);
        part[n] = '\0';
        p += n;
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, part, &v))
            return NULL;
        o = v;
        if (*p == '[') {
            char *end = NULL;
            size_t idx = (size_t)strtoul(p + 1, &end, 10);
            assert_true(*end == ']');
            p = end + 1;
            if (!json_object_is_type(o, json_type_array) || idx >= json_object_array_length(o))
                return NULL;
            o = json_object_array_get_idx(o, idx);
        }
        if (*p == '.')
            p++;
    }
    return o;
}

static const char *mstr(fx *f, const char *path)
{
    struct json_object *v = mget(f, path);
    if (!json_object_is_type(v, json_type_string))
        fail_msg("meta %s is not a string", path);
    return json_object_get_string(v);
}

static int64_t mint(fx *f, const char *path)
{
    struct json_object *v = mget(f, path);
    if (!json_object_is_type(v, json_type_int))
        fail_msg("meta %s is not an integer", path);
    return json_object_get_int64(v);
}

static double mnum(fx *f, const char *path)
{
    struct json_object *v = mget(f, path);
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        fail_msg("meta %s is not a number", path);
    return json_object_get_double(v);
}

static bool mbool(fx *f, const char *path)
{
    struct json_object *v = mget(f, path);
    if (!json_object_is_type(v, json_type_boolean))
        fail_msg("meta %s is not a boolean", path);
    return json_object_get_boolean(v);
}

/* The entity substring of m->text as the byte offsets say. */
static void assert_entity(fx *f, const ef_msg *m, int i, int64_t off16, int64_t len16,
                          int64_t start, int64_t end, const char *text)
{
    char p[64];
    snprintf(p, sizeof(p), "entities[%d].offset16", i);
    assert_int_equal(mint(f, p), off16);
    snprintf(p, sizeof(p), "entities[%d].length16", i);
    assert_int_equal(mint(f, p), len16);
    snprintf(p, sizeof(p), "entities[%d].start", i);
    assert_int_equal(mint(f, p), start);
    snprintf(p, sizeof(p), "entities[%d].end", i);
    assert_int_equal(mint(f, p), end);
    snprintf(p, sizeof(p), "entities[%d].text", i);
    assert_string_equal(mstr(f, p), text);
    assert_true((size_t)end <= m->text_len);
    assert_int_equal(strlen(text), (size_t)(end - start));
    assert_memory_equal(m->text + start, text, (size_t)(end - start));
}

/* ---- message ------------------------------------------------------------ */

static const char RU_TEXT[] = "Привет 👋 мой номер +7 916 123-45-67";

static void test_message_private_text(void **state)
{
    fx *f = *state;
    ef_msg *m = one(
        f, "{\"update_id\":912345678,\"message\":{\"message_id\":5231,"
           "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\","
           "\"last_name\":\"Смирнова\",\"username\":\"anna_smirnova\",\"language_code\":\"ru\"},"
           "\"chat\":{\"id\":5012345678,\"first_name\":\"Анна\",\"last_name\":\"Смирнова\","
           "\"username\":\"anna_smirnova\",\"type\":\"private\"},\"date\":1718000000,"
           "\"text\":\"Привет 👋 мой номер +7 916 123-45-67\","
           "\"entities\":[{\"offset\":20,\"length\":16,\"type\":\"phone_number\"}]}}");
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->platform, "telegram");
    assert_string_equal(m->chat_id, "5012345678");
    assert_string_equal(m->chat_type, "private");
    assert_string_equal(m->message_id, "5012345678:5231");
    assert_string_equal(m->sender_id, "5012345678");
    assert_string_equal(m->sender_name, "Анна Смирнова");
    assert_string_equal(m->sender_username, "anna_smirnova");
    assert_string_equal(m->sender_lang, "ru");
    assert_false(m->sender_is_bot);
    assert_int_equal(m->text_len, sizeof(RU_TEXT) - 1);
    assert_memory_equal(m->text, RU_TEXT, m->text_len);
    assert_string_equal(m->content_type, "text");
    assert_int_equal(m->date, 1718000000);
    assert_int_equal(m->update_id, 912345678);
    assert_null(m->target_id);
    assert_null(m->thread_id);
    assert_null(m->callback_id);
    assert_null(m->status);
    assert_null(m->channel_id);

    assert_int_equal(f->info.update_id, 912345678);
    assert_string_equal(f->info.what, "message");
    assert_int_equal(mint(f, "update_id"), 912345678);
    assert_string_equal(mstr(f, "update_type"), "message");
    assert_string_equal(mstr(f, "chat.id"), "5012345678");
    assert_string_equal(mstr(f, "chat.type"), "private");
    assert_string_equal(mstr(f, "entities[0].type"), "phone_number");
    /* the emoji counts 2 UTF-16 units and 4 bytes, Cyrillic 1 unit and 2 bytes */
    assert_entity(f, m, 0, 20, 16, 36, 52, "+7 916 123-45-67");
    assert_null(mget(f, "command"));
    assert_null(mget(f, "entities_dropped"));
}

static void test_entities_utf16(void **state)
{
    fx *f = *state;
    /* "😀 @anna_smirnova, привет! /help https://пример.рф/путь 👍🏽
     * конец"
     */
    ef_msg *m = one(
        f,
        "{\"update_id\":10,\"message\":{\"message_id\":1,\"chat\":{\"id\":42,\"type\":\"private\"},"
        "\"from\":{\"id\":42,\"is_bot\":false,\"first_name\":\"Ivan\"},\"date\":1718000000,"
        "\"text\":\"😀 @anna_smirnova, привет! /help https://пример.рф/путь "
        "👍🏽 "
        "конец\","
        "\"entities\":["
        "{\"offset\":3,\"length\":14,\"type\":\"mention\"},"
        "{\"offset\":19,\"length\":6,\"type\":\"bold\"},"
        "{\"offset\":27,\"length\":5,\"type\":\"bot_command\"},"
        "{\"offset\":33,\"length\":22,\"type\":\"url\"},"
        "{\"offset\":56,\"length\":4,\"type\":\"custom_emoji\",\"custom_emoji_id\":\"5368\"},"
        "{\"offset\":61,\"length\":5,\"type\":\"text_link\",\"url\":\"https://t.me/x\"},"
        "{\"offset\":1,\"length\":2,\"type\":\"italic\"},"
        "{\"offset\":57,\"length\":1,\"type\":\"italic\"},"
        "{\"offset\":60,\"length\":10,\"type\":\"underline\"},"
        "{\"offset\":5,\"length\":-1,\"type\":\"code\"},"
        "{\"offset\":9223372036854775807,\"length\":9223372036854775807,\"type\":\"code\"}"
        "]}}");
    assert_int_equal(m->text_len, 95);
    assert_entity(f, m, 0, 3, 14, 5, 19, "@anna_smirnova");
    assert_entity(f, m, 1, 19, 6, 21, 33, "привет");
    assert_entity(f, m, 2, 27, 5, 35, 40, "/help");
    assert_entity(f, m, 3, 33, 22, 41, 75, "https://пример.рф/путь");
    assert_entity(f, m, 4, 56, 4, 76, 84, "👍🏽");
    assert_entity(f, m, 5, 61, 5, 85, 95, "конец");
    assert_string_equal(mstr(f, "entities[4].custom_emoji_id"), "5368");
    assert_string_equal(mstr(f, "entities[5].url"), "https://t.me/x");
    /* inside a surrogate pair (twice), past the end, negative, overflowing */
    assert_int_equal(json_object_array_length(mget(f, "entities")), 6);
    assert_int_equal(mint(f, "entities_dropped"), 5);
    /* a bot_command that is not at offset 0 is no command */
    assert_null(mget(f, "command"));
}

/* Monotonic seconds, for the complexity bound below. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * A hostile body: 100,000 emoji (200,000 UTF-16 units, 400 KB) and 9,999
 * entities (ef_json_parse caps an array at 10,000 entries), a third valid, a
 * third splitting a surrogate pair, a third past the end. The conversion used
 * to rescan the text from the last good position for every bad one (~6,700
 * scans of up to 400 KB: seconds of CPU); it is one walk of the text now.
 * The 2 s bound is generous (ASan, a shared machine): the point is the
 * complexity, the linear walk takes milliseconds.
 */
static void test_entities_hostile_linear(void **state)
{
    fx *f = *state;
    enum { EMOJI = 100000, ENTS = 9999 };
    size_t cap = 256 + (size_t)EMOJI * 4 + (size_t)ENTS * 64;
    char *body = ef_calloc(cap, 1);
    size_t n = (size_t)snprintf(body, cap,
                                "{\"update_id\":11,\"message\":{\"message_id\":1,"
                                "\"chat\":{\"id\":42,\"type\":\"private\"},\"date\":1718000000,"
                                "\"text\":\"");
    for (int i = 0; i < EMOJI; i++) {
        memcpy(body + n, "\xF0\x9F\x98\x80", 4);
        n += 4;
    }
    n += (size_t)snprintf(body + n, cap - n, "\",\"entities\":[");
    for (int i = 0; i < ENTS; i++) {
        int64_t off;
        if (i % 3 == 0)
            off = 2 * (int64_t)(i % EMOJI); /* valid: one emoji */
        else if (i % 3 == 1)
            off = 2 * (int64_t)(i % EMOJI) + 1; /* inside a surrogate pair */
        else
            off = 2 * (int64_t)EMOJI + (int64_t)i; /* past the end */
        n += (size_t)snprintf(body + n, cap - n,
                              "%s{\"offset\":%lld,\"length\":2,\"type\":\"bold\"}", i ? "," : "",
                              (long long)off);
    }
    n += (size_t)snprintf(body + n, cap - n, "]}}");
    assert_true(n < cap);
    double t0 = now_s();
    int rc = run(f, body);
    double dt = now_s() - t0;
    ef_free(body);
    assert_int_equal(rc, 0);
    assert_int_equal(f->out.n, 1);
    ef_msg *m = f->out.items[0];
    char err[128];
    assert_int_equal(
        ef_json_parse(m->meta_json, strlen(m->meta_json), 64, &f->meta, err, sizeof(err)), 0);
    assert_int_equal(m->text_len, (size_t)EMOJI * 4);
    size_t valid = (ENTS + 2) / 3;
    assert_int_equal(json_object_array_length(mget(f, "entities")), valid);
    assert_int_equal(mint(f, "entities_dropped"), ENTS - (int64_t)valid);
    /* entity 3 is the 4th emoji: bytes 12..16 */
    assert_int_equal(mint(f, "entities[1].offset16"), 6);
    assert_int_equal(mint(f, "entities[1].start"), 12);
    assert_int_equal(mint(f, "entities[1].end"), 16);
    if (dt > 2.0)
        fail_msg("100,000 entities took %.2f s: the offset conversion is not linear", dt);
}

static void test_ids_beyond_32_bits(void **state)
{
    fx *f = *state;
    ef_msg *m =
        one(f, "{\"update_id\":9007199254740993,\"message\":{\"message_id\":4294967297,"
               "\"message_thread_id\":4294967300,"
               "\"from\":{\"id\":9007199254740991,\"is_bot\":false,\"first_name\":\"Big\"},"
               "\"chat\":{\"id\":-1001234567890,\"title\":\"Поддержка\",\"type\":\"supergroup\"},"
               "\"date\":1718000000,\"text\":\"ок\","
               "\"reply_to_message\":{\"message_id\":4294967296,\"chat\":{\"id\":-1001234567890,"
               "\"type\":\"supergroup\"},\"date\":1718000000}}}");
    assert_string_equal(m->chat_id, "-1001234567890");
    assert_string_equal(m->chat_type, "supergroup");
    assert_string_equal(m->message_id, "-1001234567890:4294967297");
    assert_string_equal(m->sender_id, "9007199254740991");
    assert_string_equal(m->thread_id, "4294967300");
    assert_true(m->update_id == 9007199254740993LL);
    assert_true(f->info.update_id == 9007199254740993LL);
    assert_string_equal(mstr(f, "chat.id"), "-1001234567890");
    assert_string_equal(mstr(f, "chat.title"), "Поддержка");
    assert_true(mint(f, "reply_to.message_id") == 4294967296LL);
    assert_string_equal(mstr(f, "reply_to.platform_message_id"), "-1001234567890:4294967296");
    assert_true(mint(f, "message_thread_id") == 4294967300LL);
}

static void test_ids_overflow_refused(void **state)
{
    fx *f = *state;
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":9223372036854775808,\"type\":\"private\"},\"text\":\"x\"}}",
            "message.chat.id: integer out of int64 range");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":1e30,\"type\":\"private\"},\"text\":\"x\"}}",
            "message.chat.id: expected integer");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":-9223372036854775809,\"type\":\"private\"},\"text\":\"x\"}}",
            "message.chat.id: integer out of int64 range");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":99999999999999999999,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"text\":\"x\"}}",
            "message.message_id: integer out of int64 range");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"from\":{\"id\":1e30,\"is_bot\":false,\"first_name\":\"A\"},"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"text\":\"x\"}}",
            "message.from.id: expected integer");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},"
            "\"contact\":{\"phone_number\":\"+7\",\"first_name\":\"A\","
            "\"user_id\":18446744073709551616}}}",
            "message.contact.user_id: integer out of int64 range");
    refused(f, "{\"update_id\":9223372036854775808,\"message\":{}}",
            "update_id: integer out of int64 range");
    refused(f, "{\"update_id\":1e30}", "update_id: expected integer");
}

static void test_channel_post_without_from(void **state)
{
    fx *f = *state;
    ef_msg *m = one(f, "{\"update_id\":912345682,\"channel_post\":{\"message_id\":402,"
                       "\"sender_chat\":{\"id\":-1009876543210,\"title\":\"Новости магазина\","
                       "\"username\":\"shop_news\",\"type\":\"channel\"},"
                       "\"chat\":{\"id\":-1009876543210,\"title\":\"Новости магазина\","
                       "\"username\":\"shop_news\",\"type\":\"channel\"},\"date\":1718000300,"
                       "\"text\":\"Скидки до 50% 🔥 на всё!\"}}");
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->chat_id, "-1009876543210");
    assert_string_equal(m->chat_type, "channel");
    assert_string_equal(m->message_id, "-1009876543210:402");
    assert_string_equal(m->sender_id, "-1009876543210");
    assert_string_equal(m->sender_name, "Новости магазина");
    assert_string_equal(m->sender_username, "shop_news");
    assert_null(m->sender_lang);
    assert_string_equal(m->text, "Скидки до 50% 🔥 на всё!");
    assert_string_equal(f->info.what, "channel_post");
    assert_string_equal(mstr(f, "update_type"), "channel_post");
    assert_string_equal(mstr(f, "sender_chat.id"), "-1009876543210");
    assert_string_equal(mstr(f, "sender_chat.title"), "Новости магазина");

    /* neither from nor sender_chat: the chat itself is the sender */
    m = one(f, "{\"update_id\":912345683,\"channel_post\":{\"message_id\":403,"
               "\"chat\":{\"id\":-1009876543210,\"title\":\"Новости\",\"type\":\"channel\"},"
               "\"date\":1718000301,\"text\":\"x\"}}");
    assert_string_equal(m->sender_id, "-1009876543210");
    assert_string_equal(m->sender_name, "Новости");

    /* edited_channel_post is an edit */
    m = one(f, "{\"update_id\":912345684,\"edited_channel_post\":{\"message_id\":403,"
               "\"chat\":{\"id\":-1009876543210,\"title\":\"Новости\",\"type\":\"channel\"},"
               "\"date\":1718000301,\"edit_date\":1718000400,\"text\":\"y\"}}");
    assert_int_equal(m->kind, EF_MSG_EDIT);
    assert_string_equal(m->target_id, "-1009876543210:403");
    assert_int_equal(m->date, 1718000400);
}

/* ---- commands ----------------------------------------------------------- */

static void test_start_with_payload(void **state)
{
    fx *f = *state;
    ef_msg *m =
        one(f, "{\"update_id\":912345679,\"message\":{\"message_id\":1,"
               "\"from\":{\"id\":7123456789,\"is_bot\":false,\"first_name\":\"Dmitry\","
               "\"language_code\":\"en\"},"
               "\"chat\":{\"id\":7123456789,\"first_name\":\"Dmitry\",\"type\":\"private\"},"
               "\"date\":1718000100,\"text\":\"/start promo_2024-summer\","
               "\"entities\":[{\"offset\":0,\"length\":6,\"type\":\"bot_command\"}]}}");
    assert_string_equal(m->text, "/start promo_2024-summer");
    assert_string_equal(m->sender_name, "Dmitry");
    assert_string_equal(m->sender_lang, "en");
    assert_string_equal(mstr(f, "command"), "/start");
    assert_string_equal(mstr(f, "command_args"), "promo_2024-summer");
    assert_null(mget(f, "command_bot"));
    assert_entity(f, m, 0, 0, 6, 0, 6, "/start");

    /* no payload: no args */
    one(f, "{\"update_id\":912345680,\"message\":{\"message_id\":2,"
           "\"from\":{\"id\":7123456789,\"is_bot\":false,\"first_name\":\"Dmitry\"},"
           "\"chat\":{\"id\":7123456789,\"type\":\"private\"},\"date\":1718000100,"
           "\"text\":\"/"
           "start\",\"entities\":[{\"offset\":0,\"length\":6,\"type\":\"bot_command\"}]}}");
    assert_string_equal(mstr(f, "command"), "/start");
    assert_null(mget(f, "command_args"));
}

static void test_start_at_botname(void **state)
{
    fx *f = *state;
    ef_msg *m =
        one(f, "{\"update_id\":912345680,\"message\":{\"message_id\":88,\"message_thread_id\":77,"
               "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
               "\"chat\":{\"id\":-1001234567890,\"title\":\"Поддержка\",\"is_forum\":true,"
               "\"type\":\"supergroup\"},\"date\":1718000200,\"is_topic_message\":true,"
               "\"text\":\"/start@MyShopBot\","
               "\"entities\":[{\"offset\":0,\"length\":16,\"type\":\"bot_command\"}]}}");
    assert_string_equal(m->thread_id, "77");
    assert_string_equal(mstr(f, "command"), "/start");
    assert_string_equal(mstr(f, "command_bot"), "MyShopBot");
    assert_null(mget(f, "command_args"));
    assert_true(mbool(f, "is_topic_message"));
    assert_int_equal(mint(f, "message_thread_id"), 77);

    /* a command after a Cyrillic caption-less text with payload */
    one(f, "{\"update_id\":912345681,\"message\":{\"message_id\":89,"
           "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
           "\"chat\":{\"id\":-1001234567890,\"title\":\"Поддержка\",\"type\":\"supergroup\"},"
           "\"date\":1718000201,\"text\":\"/order@MyShopBot заказ №12345 срочно\","
           "\"entities\":[{\"offset\":0,\"length\":16,\"type\":\"bot_command\"}]}}");
    assert_string_equal(mstr(f, "command"), "/order");
    assert_string_equal(mstr(f, "command_args"), "заказ №12345 срочно");
}

/* ---- business ----------------------------------------------------------- */

static void test_business_message(void **state)
{
    fx *f = *state;
    ef_msg *m = one(f, "{\"update_id\":912345683,\"business_message\":{\"business_connection_id\":"
                       "\"AbCdEf0123456789\",\"message_id\":12,"
                       "\"from\":{\"id\":6011223344,\"is_bot\":false,\"first_name\":\"Олег\","
                       "\"language_code\":\"ru\"},"
                       "\"chat\":{\"id\":6011223344,\"first_name\":\"Олег\",\"type\":\"private\"},"
                       "\"date\":1718000400,\"text\":\"Здравствуйте, заказ готов?\"}}");
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->chat_id, "6011223344@AbCdEf0123456789");
    assert_string_equal(m->message_id, "6011223344@AbCdEf0123456789:12");
    assert_string_equal(m->channel_id, "AbCdEf0123456789");
    assert_string_equal(m->sender_id, "6011223344");
    assert_string_equal(m->text, "Здравствуйте, заказ готов?");
    assert_string_equal(mstr(f, "business_connection_id"), "AbCdEf0123456789");
    assert_string_equal(mstr(f, "chat.id"), "6011223344");

    m = one(f, "{\"update_id\":912345684,\"edited_business_message\":{\"business_connection_id\":"
               "\"AbCdEf0123456789\",\"message_id\":12,"
               "\"from\":{\"id\":6011223344,\"is_bot\":false,\"first_name\":\"Олег\"},"
               "\"chat\":{\"id\":6011223344,\"type\":\"private\"},"
               "\"date\":1718000400,\"edit_date\":1718000500,\"text\":\"Заказ готов?\"}}");
    assert_int_equal(m->kind, EF_MSG_EDIT);
    assert_string_equal(m->chat_id, "6011223344@AbCdEf0123456789");
    assert_string_equal(m->target_id, "6011223344@AbCdEf0123456789:12");
    assert_int_equal(m->date, 1718000500);

    refused(f,
            "{\"update_id\":912345685,\"business_message\":{\"message_id\":12,"
            "\"chat\":{\"id\":6011223344,\"type\":\"private\"},\"date\":1718000400,"
            "\"text\":\"x\"}}",
            "business_message.business_connection_id: missing");
}

static void test_guest_message(void **state)
{
    fx *f = *state;
    ef_msg *m = one(f, "{\"update_id\":77,\"guest_message\":{\"message_id\":5,"
                       "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
                       "\"chat\":{\"id\":-1001234567890,\"title\":\"Чат\",\"type\":\"supergroup\"},"
                       "\"date\":1718000400,\"text\":\"@MyShopBot цена?\"}}");
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->chat_id, "-1001234567890");
    assert_string_equal(m->message_id, "-1001234567890:5");
    assert_string_equal(mstr(f, "update_type"), "guest_message");
}

/* ---- callback_query ----------------------------------------------------- */

static void test_callback_query(void **state)
{
    fx *f = *state;
    ef_msg *m = one(
        f, "{\"update_id\":912345687,\"callback_query\":{\"id\":\"4382bfdwdsb323b2d9\","
           "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\","
           "\"username\":\"anna_smirnova\",\"language_code\":\"ru\"},"
           "\"message\":{\"message_id\":5232,\"from\":{\"id\":7000000001,\"is_bot\":true,"
           "\"first_name\":\"Shop\",\"username\":\"MyShopBot\"},"
           "\"chat\":{\"id\":5012345678,\"first_name\":\"Анна\",\"type\":\"private\"},"
           "\"date\":1718000010,\"text\":\"Выберите размер\",\"reply_markup\":{\"inline_keyboard\":"
           "[[{\"text\":\"M\",\"callback_data\":\"size:M\"}]]}},"
           "\"chat_instance\":\"-8412345678901234567\",\"data\":\"size:M\"}}");
    assert_int_equal(m->kind, EF_MSG_CALLBACK);
    assert_string_equal(m->chat_id, "5012345678");
    assert_string_equal(m->chat_type, "private");
    assert_string_equal(m->message_id, "callback:4382bfdwdsb323b2d9");
    assert_string_equal(m->callback_id, "4382bfdwdsb323b2d9");
    assert_string_equal(m->text, "size:M");
    assert_int_equal(m->text_len, 6);
    assert_string_equal(m->content_type, "callback");
    assert_string_equal(m->target_id, "5012345678:5232");
    assert_string_equal(m->sender_id, "5012345678");
    assert_string_equal(m->sender_username, "anna_smirnova");
    assert_false(m->sender_is_bot);
    assert_int_equal(m->update_id, 912345687);
    assert_string_equal(mstr(f, "data"), "size:M");
    assert_string_equal(mstr(f, "chat_instance"), "-8412345678901234567");
    assert_int_equal(mint(f, "message_id"), 5232);
    assert_null(mget(f, "inaccessible"));
    assert_string_equal(mstr(f, "update_type"), "callback_query");
}

static void test_callback_inaccessible(void **state)
{
    fx *f = *state;
    ef_msg *m =
        one(f, "{\"update_id\":912345688,\"callback_query\":{\"id\":\"4382bfdwdsb323b2e0\","
               "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
               "\"message\":{\"chat\":{\"id\":-1001234567890,\"title\":\"Поддержка\","
               "\"type\":\"supergroup\"},\"message_id\":17,\"date\":0,\"message_thread_id\":77},"
               "\"chat_instance\":\"-8412345678901234567\",\"data\":\"order:cancel:991\"}}");
    assert_string_equal(m->chat_id, "-1001234567890");
    assert_string_equal(m->target_id, "-1001234567890:17");
    assert_string_equal(m->thread_id, "77");
    assert_string_equal(m->text, "order:cancel:991");
    assert_true(mbool(f, "inaccessible"));
    assert_int_equal(mint(f, "message_id"), 17);
}

static void test_callback_inline_and_business(void **state)
{
    fx *f = *state;
    /* inline message: no `message`; the private chat id is the user id */
    ef_msg *m = one(f, "{\"update_id\":5,\"callback_query\":{\"id\":\"77\","
                       "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
                       "\"inline_message_id\":\"BAAAAJ8nAABmcmnQk3RSJw\","
                       "\"chat_instance\":\"123\",\"game_short_name\":\"tetris\"}}");
    assert_string_equal(m->chat_id, "5012345678");
    assert_null(m->target_id);
    assert_string_equal(m->text, "tetris");
    assert_string_equal(mstr(f, "inline_message_id"), "BAAAAJ8nAABmcmnQk3RSJw");
    assert_string_equal(mstr(f, "game_short_name"), "tetris");

    /* neither data nor game: empty text */
    m = one(f, "{\"update_id\":6,\"callback_query\":{\"id\":\"78\","
               "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
               "\"chat_instance\":\"123\"}}");
    assert_string_equal(m->text, "");
    assert_int_equal(m->text_len, 0);

    /* a button under a business message */
    m = one(f, "{\"update_id\":7,\"callback_query\":{\"id\":\"79\","
               "\"from\":{\"id\":6011223344,\"is_bot\":false,\"first_name\":\"Олег\"},"
               "\"message\":{\"business_connection_id\":\"AbCdEf0123456789\",\"message_id\":13,"
               "\"chat\":{\"id\":6011223344,\"type\":\"private\"},\"date\":1718000400,"
               "\"text\":\"Готово?\"},\"chat_instance\":\"1\",\"data\":\"yes\"}}");
    assert_string_equal(m->chat_id, "6011223344@AbCdEf0123456789");
    assert_string_equal(m->target_id, "6011223344@AbCdEf0123456789:13");

    refused(f, "{\"update_id\":8,\"callback_query\":{\"from\":{\"id\":1,\"is_bot\":false}}}",
            "callback_query.id: missing");
    refused(f, "{\"update_id\":8,\"callback_query\":{\"id\":\"1\",\"from\":{\"id\":\"1\"}}}",
            "callback_query.from.id: expected integer");
}

/* ---- my_chat_member ----------------------------------------------------- */

static const char *member_update(char *buf, size_t n, const char *old_status,
                                 const char *new_status)
{
    snprintf(buf, n,
             "{\"update_id\":912345689,\"my_chat_member\":{\"chat\":{\"id\":5012345678,"
             "\"first_name\":\"Анна\",\"type\":\"private\"},\"from\":{\"id\":5012345678,"
             "\"is_bot\":false,\"first_name\":\"Анна\",\"language_code\":\"ru\"},"
             "\"date\":1718000800,\"old_chat_member\":{\"user\":{\"id\":7000000001,"
             "\"is_bot\":true,\"first_name\":\"Shop\",\"username\":\"MyShopBot\"},"
             "\"status\":\"%s\"},\"new_chat_member\":{\"user\":{\"id\":7000000001,"
             "\"is_bot\":true,\"first_name\":\"Shop\",\"username\":\"MyShopBot\"},"
             "\"status\":\"%s\",\"until_date\":0}}}",
             old_status, new_status);
    return buf;
}

static void test_blocked_unblocked(void **state)
{
    fx *f = *state;
    char buf[1024];
    ef_msg *m = one(f, member_update(buf, sizeof(buf), "member", "kicked"));
    assert_int_equal(m->kind, EF_MSG_BLOCKED);
    assert_string_equal(m->chat_id, "5012345678");
    assert_string_equal(m->chat_type, "private");
    assert_string_equal(m->sender_id, "5012345678");
    assert_string_equal(m->sender_lang, "ru");
    assert_int_equal(m->date, 1718000800);
    assert_string_equal(m->text, "");
    assert_string_equal(mstr(f, "old_status"), "member");
    assert_string_equal(mstr(f, "new_status"), "kicked");
    assert_string_equal(mstr(f, "chat_type"), "private");
    assert_string_equal(mstr(f, "update_type"), "my_chat_member");

    m = one(f, member_update(buf, sizeof(buf), "kicked", "member"));
    assert_int_equal(m->kind, EF_MSG_UNBLOCKED);
    assert_string_equal(m->chat_id, "5012345678");
    assert_string_equal(mstr(f, "old_status"), "kicked");

    m = one(f, member_update(buf, sizeof(buf), "administrator", "left"));
    assert_int_equal(m->kind, EF_MSG_BLOCKED);
    m = one(f, member_update(buf, sizeof(buf), "left", "administrator"));
    assert_int_equal(m->kind, EF_MSG_UNBLOCKED);

    /* promoted, not unblocked */
    none(f, member_update(buf, sizeof(buf), "member", "administrator"));
    assert_string_equal(f->info.what, "my_chat_member");
    assert_non_null(strstr(f->info.note, "member -> administrator"));
}

/* ---- migration ---------------------------------------------------------- */

static void test_migrate_both_forms(void **state)
{
    fx *f = *state;
    /* in the old group */
    ef_msg *m = one(f, "{\"update_id\":912345691,\"message\":{\"message_id\":3,"
                       "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
                       "\"chat\":{\"id\":-4012345678,\"title\":\"Команда\",\"type\":\"group\"},"
                       "\"date\":1718001000,\"migrate_to_chat_id\":-1002345678901}}");
    assert_int_equal(m->kind, EF_MSG_MIGRATE);
    assert_string_equal(m->chat_id, "-4012345678");
    assert_string_equal(m->target_id, "-1002345678901");
    assert_int_equal(m->date, 1718001000);
    assert_string_equal(mstr(f, "migrate_to_chat_id"), "-1002345678901");

    /* in the new supergroup: the same old -> new mapping */
    m = one(f,
            "{\"update_id\":912345692,\"message\":{\"message_id\":1,"
            "\"from\":{\"id\":1087968824,\"is_bot\":true,\"first_name\":\"Group\","
            "\"username\":\"GroupAnonymousBot\"},"
            "\"sender_chat\":{\"id\":-1002345678901,\"title\":\"Команда\",\"type\":\"supergroup\"},"
            "\"chat\":{\"id\":-1002345678901,\"title\":\"Команда\",\"type\":\"supergroup\"},"
            "\"date\":1718001000,\"migrate_from_chat_id\":-4012345678}}");
    assert_int_equal(m->kind, EF_MSG_MIGRATE);
    assert_string_equal(m->chat_id, "-4012345678");
    assert_string_equal(m->target_id, "-1002345678901");
    assert_string_equal(mstr(f, "migrate_from_chat_id"), "-4012345678");
}

/* ---- message_reaction --------------------------------------------------- */

static void test_reaction(void **state)
{
    fx *f = *state;
    ef_msg *m =
        one(f, "{\"update_id\":912345690,\"message_reaction\":{\"chat\":{\"id\":-1001234567890,"
               "\"title\":\"Поддержка\",\"type\":\"supergroup\"},\"message_id\":88,"
               "\"user\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
               "\"date\":1718000900,\"old_reaction\":[{\"type\":\"emoji\",\"emoji\":\"❤\"}],"
               "\"new_reaction\":[{\"type\":\"emoji\",\"emoji\":\"👍\"},"
               "{\"type\":\"custom_emoji\",\"custom_emoji_id\":\"5368324170671202286\"},"
               "{\"type\":\"paid\"}]}}");
    assert_int_equal(m->kind, EF_MSG_REACTION);
    assert_string_equal(m->chat_id, "-1001234567890");
    assert_string_equal(m->target_id, "-1001234567890:88");
    assert_string_equal(m->sender_id, "5012345678");
    assert_int_equal(m->date, 1718000900);
    assert_string_equal(m->status, "[\"👍\",\"custom:5368324170671202286\",\"paid\"]");
    assert_string_equal(mstr(f, "old_reaction[0].emoji"), "❤");
    assert_string_equal(mstr(f, "new_reaction[1].custom_emoji_id"), "5368324170671202286");
    assert_int_equal(json_object_array_length(mget(f, "new_reaction")), 3);

    /* anonymous admin removes every reaction */
    m = one(f, "{\"update_id\":912345691,\"message_reaction\":{\"chat\":{\"id\":-1001234567890,"
               "\"type\":\"supergroup\"},\"message_id\":88,"
               "\"actor_chat\":{\"id\":-1001234567890,\"title\":\"Поддержка\","
               "\"type\":\"supergroup\"},\"date\":1718000901,"
               "\"old_reaction\":[{\"type\":\"emoji\",\"emoji\":\"👍\"}],\"new_reaction\":[]}}");
    assert_string_equal(m->status, "[]");
    assert_string_equal(m->sender_id, "-1001234567890");
    assert_string_equal(m->sender_name, "Поддержка");

    refused(f,
            "{\"update_id\":912345692,\"message_reaction\":{\"chat\":{\"id\":1,"
            "\"type\":\"private\"},\"message_id\":8,\"date\":1,\"old_reaction\":[],"
            "\"new_reaction\":[{\"type\":\"emoji\"}]}}",
            "message_reaction.new_reaction[0].emoji: missing");

    /* neither user nor actor_chat: the store could not key the reaction */
    refused(f,
            "{\"update_id\":912345694,\"message_reaction\":{\"chat\":{\"id\":1,"
            "\"type\":\"private\"},\"message_id\":8,\"date\":1,\"old_reaction\":[],"
            "\"new_reaction\":[{\"type\":\"emoji\",\"emoji\":\"👍\"}]}}",
            "message_reaction: neither user nor actor_chat");
    refused(f,
            "{\"update_id\":912345695,\"message_reaction\":{\"chat\":{\"id\":1,"
            "\"type\":\"private\"},\"message_id\":8,\"date\":1,\"user\":null,"
            "\"actor_chat\":null,\"old_reaction\":[],\"new_reaction\":[]}}",
            "message_reaction: neither user nor actor_chat");
}

/* ---- updates that store nothing ------------------------------------------ */

static void test_ignored_update_types(void **state)
{
    fx *f = *state;
    static const char *const keys[] = {
        "chat_member",
        "chat_join_request",
        "inline_query",
        "chosen_inline_result",
        "shipping_query",
        "pre_checkout_query",
        "poll",
        "poll_answer",
        "business_connection",
        "deleted_business_messages",
        "message_reaction_count",
        "chat_boost",
        "removed_chat_boost",
        "purchased_paid_media",
        "managed_bot",
    };
    char buf[512];
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        snprintf(buf, sizeof(buf),
                 "{\"update_id\":%zu,\"%s\":{\"id\":\"1\",\"from\":{\"id\":5012345678,"
                 "\"is_bot\":false,\"first_name\":\"Анна\"},\"query\":\"кроссовки\"}}",
                 i + 100, keys[i]);
        none(f, buf);
        assert_string_equal(f->info.what, keys[i]);
        assert_false(f->info.unknown_type);
        assert_int_equal(f->info.update_id, (int64_t)(i + 100));
    }
    none(f, "{\"update_id\":912345693,\"inline_query\":{\"id\":\"3456789012345678901\","
            "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
            "\"query\":\"кроссовки\",\"offset\":\"\"}}");
    assert_string_equal(f->info.note, "inline_query: not a conversation message");
}

static void test_unknown_update_type(void **state)
{
    fx *f = *state;
    none(f, "{\"update_id\":912345700,\"rich_story_reply\":{\"whatever\":[1,2,{\"x\":null}]}}");
    assert_string_equal(f->info.what, "rich_story_reply");
    assert_string_equal(f->info.note, "rich_story_reply: unknown update type");
    assert_int_equal(f->info.update_id, 912345700);
    assert_true(f->info.unknown_type);

    /* not even an object: still a genuine update of a type we do not know */
    none(f, "{\"update_id\":912345701,\"future_flag\":true}");
    assert_string_equal(f->info.what, "future_flag");
    assert_true(f->info.unknown_type);

    none(f, "{\"update_id\":912345702}");
    assert_string_equal(f->info.note, "no payload");
    assert_string_equal(f->info.what, "");
    assert_false(f->info.unknown_type);

    /* known types that store nothing are not unknown (see
     * test_ignored_update_types), nor is a stored one */
    none(f, "{\"update_id\":912345703,\"purchased_paid_media\":{\"from\":{\"id\":1,"
            "\"is_bot\":false,\"first_name\":\"A\"},\"paid_media_payload\":\"p\"}}");
    assert_false(f->info.unknown_type);
    assert_string_equal(f->info.what, "purchased_paid_media");
}

static void test_service_messages(void **state)
{
    fx *f = *state;
    none(f, "{\"update_id\":1,\"message\":{\"message_id\":10,"
            "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
            "\"chat\":{\"id\":-1001234567890,\"title\":\"Чат\",\"type\":\"supergroup\"},"
            "\"date\":1718000000,\"new_chat_members\":[{\"id\":6011223344,\"is_bot\":false,"
            "\"first_name\":\"Олег\"}],\"new_chat_member\":{\"id\":6011223344,\"is_bot\":false,"
            "\"first_name\":\"Олег\"},\"new_chat_participant\":{\"id\":6011223344,"
            "\"is_bot\":false,\"first_name\":\"Олег\"}}}");
    assert_string_equal(f->info.note, "service message new_chat_members");
    assert_string_equal(f->info.what, "message");

    none(f, "{\"update_id\":2,\"message\":{\"message_id\":11,"
            "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
            "\"chat\":{\"id\":-1001234567890,\"title\":\"Чат\",\"type\":\"supergroup\"},"
            "\"date\":1718000000,\"pinned_message\":{\"message_id\":9,"
            "\"chat\":{\"id\":-1001234567890,\"type\":\"supergroup\"},\"date\":1718000000,"
            "\"text\":\"Правила\"}}}");
    assert_string_equal(f->info.note, "service message pinned_message");

    none(f, "{\"update_id\":3,\"message\":{\"message_id\":1,"
            "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
            "\"chat\":{\"id\":-4012345678,\"title\":\"Новая\",\"type\":\"group\"},"
            "\"date\":1718000000,\"group_chat_created\":true}}");
    assert_string_equal(f->info.note, "service message group_chat_created");
}

static void test_unknown_content_is_stored(void **state)
{
    fx *f = *state;
    ef_msg *m =
        one(f, "{\"update_id\":4,\"message\":{\"message_id\":12,"
               "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
               "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000000,"
               "\"rich_message\":{\"blocks\":[{\"type\":\"heading\",\"text\":\"Привет\"}]}}}");
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->content_type, "unknown");
    assert_string_equal(m->text, "");
    assert_int_equal(m->text_len, 0);
    assert_string_equal(m->message_id, "5012345678:12");
}

/* ---- edits, albums, media ----------------------------------------------- */

static void test_edited_message(void **state)
{
    fx *f = *state;
    ef_msg *m =
        one(f, "{\"update_id\":912345681,\"edited_message\":{\"message_id\":5231,"
               "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\","
               "\"last_name\":\"Смирнова\",\"language_code\":\"ru\"},"
               "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000000,"
               "\"edit_date\":1718000060,\"text\":\"Привет 👋 мой номер +7 916 123-45-68\"}}");
    assert_int_equal(m->kind, EF_MSG_EDIT);
    assert_string_equal(m->message_id, "5012345678:5231");
    assert_string_equal(m->target_id, "5012345678:5231");
    assert_int_equal(m->date, 1718000060);
    assert_string_equal(m->text, "Привет 👋 мой номер +7 916 123-45-68");
    assert_int_equal(mint(f, "edit_date"), 1718000060);
    assert_string_equal(mstr(f, "update_type"), "edited_message");
    assert_string_equal(f->info.what, "edited_message");

    /* no edit_date: the message date */
    m = one(f, "{\"update_id\":912345682,\"edited_message\":{\"message_id\":5231,"
               "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000000,"
               "\"text\":\"x\"}}");
    assert_int_equal(m->date, 1718000000);
    assert_null(mget(f, "edit_date"));
}

static const char *album_part(char *buf, size_t n, int message_id, const char *caption)
{
    snprintf(
        buf, n,
        "{\"update_id\":%d,\"message\":{\"message_id\":%d,"
        "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
        "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000500,"
        "\"media_group_id\":\"13727382943716245\",\"photo\":[{\"file_id\":\"AgAC-%d-s\","
        "\"file_unique_id\":\"AQAD%d\",\"file_size\":1234,\"width\":90,\"height\":67}]%s%s%s}}",
        900000 + message_id, message_id, message_id, message_id, caption ? ",\"caption\":\"" : "",
        caption ? caption : "", caption ? "\"" : "");
    return buf;
}

static void test_album(void **state)
{
    fx *f = *state;
    char buf[1024];
    ef_msg *m = one(f, album_part(buf, sizeof(buf), 900, "Вот так 📷 выглядит товар"));
    assert_string_equal(m->message_id, "5012345678:900");
    assert_string_equal(m->content_type, "photo");
    assert_string_equal(m->text, "Вот так 📷 выглядит товар");
    assert_string_equal(mstr(f, "media_group_id"), "13727382943716245");
    assert_string_equal(mstr(f, "media.file_id"), "AgAC-900-s");

    m = one(f, album_part(buf, sizeof(buf), 901, NULL));
    assert_string_equal(m->message_id, "5012345678:901");
    assert_string_equal(m->content_type, "photo");
    assert_string_equal(m->text, "");
    assert_string_equal(mstr(f, "media_group_id"), "13727382943716245");
    assert_string_equal(mstr(f, "media.file_id"), "AgAC-901-s");
}

static void test_photo_picks_largest(void **state)
{
    fx *f = *state;
    ef_msg *m =
        one(f, "{\"update_id\":912345684,\"message\":{\"message_id\":900,"
               "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
               "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000500,"
               "\"photo\":[{\"file_id\":\"small\",\"file_unique_id\":\"u1\",\"file_size\":1234,"
               "\"width\":90,\"height\":67},{\"file_id\":\"large\",\"file_unique_id\":\"u3\","
               "\"file_size\":3221225472,\"width\":1280,\"height\":960},{\"file_id\":\"medium\","
               "\"file_unique_id\":\"u2\",\"file_size\":23456,\"width\":320,\"height\":240}],"
               "\"caption\":\"Вот так 📷 выглядит товар\","
               "\"caption_entities\":[{\"offset\":0,\"length\":3,\"type\":\"bold\"},"
               "{\"offset\":8,\"length\":2,\"type\":\"italic\"}]}}");
    assert_string_equal(m->content_type, "photo");
    assert_string_equal(mstr(f, "media.type"), "photo");
    assert_string_equal(mstr(f, "media.file_id"), "large");
    assert_string_equal(mstr(f, "media.file_unique_id"), "u3");
    assert_true(mint(f, "media.file_size") == 3221225472LL);
    assert_int_equal(mint(f, "media.width"), 1280);
    assert_int_equal(mint(f, "media.height"), 960);
    /* caption entities index the caption */
    assert_int_equal(mint(f, "caption_entities[0].end"), 6);
    assert_string_equal(mstr(f, "caption_entities[0].text"), "Вот");
    assert_string_equal(mstr(f, "caption_entities[1].text"), "📷");
    assert_int_equal(mint(f, "caption_entities[1].start"), 14);

    /* no dimensions at all: the last size */
    one(f, "{\"update_id\":912345685,\"message\":{\"message_id\":901,"
           "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000500,"
           "\"photo\":[{\"file_id\":\"a\"},{\"file_id\":\"b\"},{\"file_id\":\"c\"}]}}");
    assert_string_equal(mstr(f, "media.file_id"), "c");
}

static void test_animation_vs_document(void **state)
{
    fx *f = *state;
    ef_msg *m =
        one(f, "{\"update_id\":912345685,\"message\":{\"message_id\":901,"
               "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
               "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000600,"
               "\"animation\":{\"file_name\":\"funny.mp4\",\"mime_type\":\"video\\/mp4\","
               "\"duration\":3,\"width\":320,\"height\":240,\"file_id\":\"CgACAnim\","
               "\"file_unique_id\":\"AgADanim\",\"file_size\":178342},"
               "\"document\":{\"file_name\":\"funny.mp4\",\"mime_type\":\"video\\/mp4\","
               "\"file_id\":\"CgACAnim\",\"file_unique_id\":\"AgADanim\",\"file_size\":178342}}}");
    assert_string_equal(m->content_type, "animation");
    assert_string_equal(mstr(f, "media.type"), "animation");
    assert_int_equal(mint(f, "media.duration"), 3);
    assert_string_equal(mstr(f, "media.mime_type"), "video/mp4");
    /* slashes are not escaped again in the stored JSON */
    assert_non_null(strstr(m->meta_json, "\"mime_type\":\"video/mp4\""));

    m = one(f, "{\"update_id\":912345686,\"message\":{\"message_id\":902,"
               "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
               "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000601,"
               "\"document\":{\"file_name\":\"Счёт №42.pdf\",\"mime_type\":\"application/pdf\","
               "\"file_id\":\"BQACDoc\",\"file_unique_id\":\"AgADdoc\",\"file_size\":48213},"
               "\"caption\":\"Счёт\"}}");
    assert_string_equal(m->content_type, "document");
    assert_string_equal(m->text, "Счёт");
    assert_string_equal(mstr(f, "media.type"), "document");
    assert_string_equal(mstr(f, "media.file_name"), "Счёт №42.pdf");
    assert_string_equal(mstr(f, "media.mime_type"), "application/pdf");
}

static void test_venue_vs_location(void **state)
{
    fx *f = *state;
    ef_msg *m = one(f, "{\"update_id\":912345686,\"message\":{\"message_id\":902,"
                       "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
                       "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000700,"
                       "\"location\":{\"latitude\":55.755826,\"longitude\":37.6173},"
                       "\"venue\":{\"location\":{\"latitude\":55.755826,\"longitude\":37.6173},"
                       "\"title\":\"Красная площадь\",\"address\":\"Москва, Россия\","
                       "\"foursquare_id\":\"4b5a5c6ef964a520a2c028e3\"}}}");
    assert_string_equal(m->content_type, "venue");
    assert_string_equal(mstr(f, "venue.title"), "Красная площадь");
    assert_string_equal(mstr(f, "venue.address"), "Москва, Россия");
    assert_string_equal(mstr(f, "venue.foursquare_id"), "4b5a5c6ef964a520a2c028e3");
    assert_true(mnum(f, "location.latitude") == 55.755826);
    assert_true(mnum(f, "location.longitude") == 37.6173);
    /* coordinates keep their source digits */
    assert_non_null(strstr(m->meta_json, "\"latitude\":55.755826"));

    m = one(f, "{\"update_id\":912345687,\"message\":{\"message_id\":903,"
               "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
               "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000701,"
               "\"location\":{\"latitude\":-33.8688,\"longitude\":151,\"live_period\":900,"
               "\"heading\":90,\"horizontal_accuracy\":12.5}}}");
    assert_string_equal(m->content_type, "location");
    assert_null(mget(f, "venue"));
    assert_true(mnum(f, "location.latitude") == -33.8688);
    assert_true(mnum(f, "location.longitude") == 151);
    assert_int_equal(mint(f, "location.live_period"), 900);
    assert_int_equal(mint(f, "location.heading"), 90);

    refused(f,
            "{\"update_id\":912345688,\"message\":{\"message_id\":904,"
            "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000701,"
            "\"location\":{\"latitude\":\"55.7\",\"longitude\":37.6}}}",
            "message.location.latitude: expected number");
}

static void test_other_content_types(void **state)
{
    fx *f = *state;
    static const struct {
        const char *field;
        const char *value;
        const char *meta_path;
        const char *meta_value;
    } cases[] = {
        {"voice",
         "{\"duration\":4,\"mime_type\":\"audio/ogg\",\"file_id\":\"AwACvoice\","
         "\"file_unique_id\":\"v1\",\"file_size\":12345}",
         "media.file_id", "AwACvoice"},
        {"audio",
         "{\"duration\":200,\"performer\":\"Кино\",\"title\":\"Группа крови\","
         "\"file_id\":\"CQACaudio\",\"file_unique_id\":\"a1\"}",
         "media.performer", "Кино"},
        {"video",
         "{\"duration\":10,\"width\":1920,\"height\":1080,\"file_id\":\"BAACvideo\","
         "\"file_unique_id\":\"vd1\",\"mime_type\":\"video/mp4\"}",
         "media.mime_type", "video/mp4"},
        {"video_note",
         "{\"duration\":5,\"length\":240,\"file_id\":\"DQACnote\","
         "\"file_unique_id\":\"n1\"}",
         "media.file_id", "DQACnote"},
        {"sticker",
         "{\"width\":512,\"height\":512,\"emoji\":\"😂\",\"set_name\":\"HotCherry\","
         "\"is_animated\":true,\"is_video\":false,\"type\":\"regular\","
         "\"file_id\":\"CAACsticker\",\"file_unique_id\":\"s1\"}",
         "media.emoji", "😂"},
        {"contact",
         "{\"phone_number\":\"+79161234567\",\"first_name\":\"Иван\","
         "\"last_name\":\"Петров\",\"user_id\":6543210987}",
         "contact.user_id", "6543210987"},
        {"dice", "{\"emoji\":\"🎲\",\"value\":6}", "dice.emoji", "🎲"},
        {"poll",
         "{\"id\":\"5785\",\"question\":\"Какой размер?\",\"options\":[],"
         "\"type\":\"regular\"}",
         "poll.question", "Какой размер?"},
        {"story", "{\"chat\":{\"id\":-1009876543210,\"type\":\"channel\"},\"id\":12}",
         "story.chat_id", "-1009876543210"},
        {"paid_media", "{\"star_count\":50,\"paid_media\":[{\"type\":\"preview\"}]}", NULL, NULL},
        {"checklist", "{\"title\":\"Покупки\",\"tasks\":[{\"id\":1,\"text\":\"Хлеб\"}]}",
         "checklist.title", "Покупки"},
    };
    char buf[1024];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf),
                 "{\"update_id\":%zu,\"message\":{\"message_id\":%zu,"
                 "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
                 "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000000,"
                 "\"%s\":%s}}",
                 i + 1, i + 1, cases[i].field, cases[i].value);
        ef_msg *m = one(f, buf);
        assert_string_equal(m->content_type, cases[i].field);
        if (cases[i].meta_path)
            assert_string_equal(mstr(f, cases[i].meta_path), cases[i].meta_value);
    }
    /* the last loop iteration parsed checklist; check a few typed fields */
    assert_int_equal(mint(f, "checklist.task_count"), 1);
    one(f, "{\"update_id\":50,\"message\":{\"message_id\":50,"
           "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000000,"
           "\"paid_media\":{\"star_count\":50,\"paid_media\":[{\"type\":\"preview\"}]}}}");
    assert_int_equal(mint(f, "paid_media.star_count"), 50);
    one(f, "{\"update_id\":51,\"message\":{\"message_id\":51,"
           "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000000,"
           "\"sticker\":{\"emoji\":\"😂\",\"set_name\":\"HotCherry\",\"is_animated\":true,"
           "\"type\":\"regular\",\"file_id\":\"CAAC\",\"file_unique_id\":\"s1\"}}}");
    assert_string_equal(mstr(f, "media.set_name"), "HotCherry");
    assert_true(mbool(f, "media.is_animated"));
    assert_string_equal(mstr(f, "media.sticker_type"), "regular");
    ef_msg *m = one(f, "{\"update_id\":52,\"message\":{\"message_id\":52,"
                       "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000000,"
                       "\"contact\":{\"phone_number\":\"+79161234567\",\"first_name\":\"Иван\","
                       "\"vcard\":\"BEGIN:VCARD\\nFN:Иван\\nEND:VCARD\"}}}");
    assert_string_equal(m->content_type, "contact");
    assert_string_equal(mstr(f, "contact.phone_number"), "+79161234567");
    assert_string_equal(mstr(f, "contact.vcard"), "BEGIN:VCARD\nFN:Иван\nEND:VCARD");
    assert_null(mget(f, "contact.user_id"));
}

static void test_reply_quote_forward(void **state)
{
    fx *f = *state;
    one(f, "{\"update_id\":912345692,\"message\":{\"message_id\":950,"
           "\"from\":{\"id\":5012345678,\"is_bot\":false,\"first_name\":\"Анна\"},"
           "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718001100,"
           "\"forward_origin\":{\"type\":\"channel\",\"chat\":{\"id\":-1009876543210,"
           "\"title\":\"Новости\",\"type\":\"channel\"},\"message_id\":402,\"date\":1718000300},"
           "\"reply_to_message\":{\"message_id\":5232,\"from\":{\"id\":7000000001,"
           "\"is_bot\":true,\"first_name\":\"Shop\"},\"chat\":{\"id\":5012345678,"
           "\"type\":\"private\"},\"date\":1718000010,\"text\":\"Выберите размер\"},"
           "\"quote\":{\"text\":\"размер\",\"position\":9},"
           "\"via_bot\":{\"id\":7000000002,\"is_bot\":true,\"first_name\":\"Gif\","
           "\"username\":\"gif\"},"
           "\"text\":\"А где размер XL?\"}}");
    assert_int_equal(mint(f, "reply_to.message_id"), 5232);
    assert_string_equal(mstr(f, "reply_to.platform_message_id"), "5012345678:5232");
    assert_string_equal(mstr(f, "quote.text"), "размер");
    assert_int_equal(mint(f, "quote.position"), 9);
    assert_string_equal(mstr(f, "forward_origin.type"), "channel");
    assert_string_equal(mstr(f, "forward_origin.chat_id"), "-1009876543210");
    assert_int_equal(mint(f, "forward_origin.message_id"), 402);
    assert_int_equal(mint(f, "forward_origin.date"), 1718000300);
    assert_string_equal(mstr(f, "via_bot.id"), "7000000002");
    assert_string_equal(mstr(f, "via_bot.username"), "gif");

    one(f, "{\"update_id\":912345693,\"message\":{\"message_id\":951,"
           "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718001100,"
           "\"forward_origin\":{\"type\":\"user\",\"sender_user\":{\"id\":6543210987,"
           "\"is_bot\":false,\"first_name\":\"Иван\"},\"date\":1718000000},"
           "\"external_reply\":{\"origin\":{\"type\":\"hidden_user\","
           "\"sender_user_name\":\"Скрытый Пользователь\",\"date\":1717000000},"
           "\"chat\":{\"id\":-1001111111111,\"type\":\"supergroup\"},\"message_id\":77},"
           "\"text\":\"Смотри\"}}");
    assert_string_equal(mstr(f, "forward_origin.type"), "user");
    assert_string_equal(mstr(f, "forward_origin.sender_user_id"), "6543210987");
    assert_string_equal(mstr(f, "external_reply.origin.type"), "hidden_user");
    assert_string_equal(mstr(f, "external_reply.origin.sender_user_name"), "Скрытый Пользователь");
    assert_string_equal(mstr(f, "external_reply.chat_id"), "-1001111111111");
    assert_int_equal(mint(f, "external_reply.message_id"), 77);
}

static void test_text_byte_exact(void **state)
{
    fx *f = *state;
    ef_msg *m = one(f, "{\"update_id\":1,\"message\":{\"message_id\":1,"
                       "\"chat\":{\"id\":5012345678,\"type\":\"private\"},\"date\":1718000000,"
                       "\"text\":\"\\ud83d\\ude00 \\u041f\\u0440\\u0438\\u0432\\u0435\\u0442 "
                       "\\\"q\\\" \\\\ \\/ tab\\t\\n\\u00e9\\u20ac\"}}");
    static const char expect[] = "\xF0\x9F\x98\x80 \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82"
                                 " \"q\" \\ / tab\t\n\xC3\xA9\xE2\x82\xAC";
    assert_int_equal(m->text_len, sizeof(expect) - 1);
    assert_memory_equal(m->text, expect, sizeof(expect) - 1);
    assert_int_equal(m->text[m->text_len], '\0');
    assert_memory_equal(m->text, "😀 Привет", strlen("😀 Привет"));
}

/* ---- malformed payloads --------------------------------------------------- */

static void test_malformed(void **state)
{
    fx *f = *state;
    refused(f, "[{\"update_id\":1}]", "update: expected object");
    refused(f, "{\"message\":{}}", "update_id: missing");
    refused(f, "{\"update_id\":0,\"message\":{}}", "update_id: must be positive");
    refused(f, "{\"update_id\":-5}", "update_id: must be positive");
    refused(f, "{\"update_id\":\"12\"}", "update_id: expected integer");
    refused(f, "{\"update_id\":1,\"message\":\"hi\"}", "message: expected object");
    refused(f, "{\"update_id\":1,\"inline_query\":[]}", "inline_query: expected object");
    refused(f, "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1}}",
            "message.chat: missing");
    refused(f, "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,\"chat\":{\"id\":5}}}",
            "message.chat.type: missing");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":\"1\",\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"}}}",
            "message.message_id: expected integer");
    refused(
        f,
        "{\"update_id\":1,\"message\":{\"message_id\":1,\"chat\":{\"id\":5,\"type\":\"private\"}}}",
        "message.date: missing");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"text\":42}}",
            "message.text: expected string");
    refused(f,
            "{\"update_id\":1,\"edited_message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"text\":\"x\",\"edit_date\":\"now\"}}",
            "edited_message.edit_date: expected integer");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"text\":\"x\","
            "\"entities\":[{\"offset\":\"0\",\"length\":1,\"type\":\"bold\"}]}}",
            "message.entities[0].offset: expected integer");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"text\":\"x\",\"entities\":{}}}",
            "message.entities: expected array");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"photo\":[{\"width\":1}]}}",
            "message.photo[0].file_id: missing");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"text\":\"x\","
            "\"reply_to_message\":{\"message_id\":1e3}}}",
            "message.reply_to_message.message_id: expected integer");
    refused(f,
            "{\"update_id\":1,\"message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"text\":\"x\"},"
            "\"edited_message\":{\"message_id\":1,\"date\":1,"
            "\"chat\":{\"id\":5,\"type\":\"private\"},\"text\":\"y\"}}",
            "update carries both message and edited_message");
    refused(f,
            "{\"update_id\":1,\"my_chat_member\":{\"chat\":{\"id\":5,\"type\":\"private\"},"
            "\"from\":{\"id\":5},\"date\":1,\"old_chat_member\":{\"status\":\"member\"},"
            "\"new_chat_member\":{}}}",
            "my_chat_member.new_chat_member.status: missing");
    refused(f,
            "{\"update_id\":1,\"message_reaction\":{\"chat\":{\"id\":5,\"type\":\"private\"},"
            "\"message_id\":1,\"date\":1,\"new_reaction\":[]}}",
            "message_reaction.old_reaction: missing");
}

/* ---- ops and registry ----------------------------------------------------- */

static void test_ops_and_registry(void **state)
{
    (void)state;
    char err[128];
    const ef_platform_ops *tg = &ef_platform_telegram;
    assert_string_equal(tg->name, "telegram");
    assert_int_equal(tg->api_version, EF_PLATFORM_API_VERSION);
    assert_true(tg->supports & EF_PLAT_WEBHOOK);
    assert_true(tg->supports & EF_PLAT_POLL);
    assert_true(tg->supports & EF_PLAT_BUTTONS);
    assert_true(tg->supports & EF_PLAT_TYPING);
    assert_false(tg->supports & EF_PLAT_SIGNED);
    assert_string_equal(tg->webhook_path, "/webhook/telegram");
    assert_int_equal(ef_platform_check(tg, err, sizeof(err)), 0);
    assert_ptr_equal(ef_platform_find("telegram"), tg);
    assert_null(ef_platform_find("icq"));
    assert_null(ef_platform_find(NULL));

    bool found = false;
    for (size_t i = 0; ef_platforms[i]; i++) {
        assert_int_equal(ef_platform_check(ef_platforms[i], err, sizeof(err)), 0);
        found |= ef_platforms[i] == tg;
    }
    assert_true(found);

    ef_platform_ops broken = *tg;
    broken.parse = NULL;
    assert_int_equal(ef_platform_check(&broken, err, sizeof(err)), EF_EINVAL);
    assert_string_equal(err, "platform telegram: mandatory slot parse is missing");
    broken = *tg;
    broken.api_version = EF_PLATFORM_API_VERSION + 1;
    assert_int_equal(ef_platform_check(&broken, err, sizeof(err)), EF_EINVAL);
    assert_non_null(strstr(err, "platform telegram: api_version"));
    broken = *tg;
    broken.webhook_path = NULL;
    assert_int_equal(ef_platform_check(&broken, err, sizeof(err)), EF_EINVAL);
    assert_non_null(strstr(err, "webhook_path"));
    broken = *tg;
    broken.name = NULL;
    assert_int_equal(ef_platform_check(&broken, err, sizeof(err)), EF_EINVAL);
    assert_non_null(strstr(err, "slot name"));
    assert_int_equal(ef_platform_check(NULL, err, sizeof(err)), EF_EINVAL);
}

/* api_url carries the bot token: https://, or http:// on loopback only. */
static void test_api_url_https_or_loopback(void **state)
{
    (void)state;
    static const char creds[] = "{\"bot_token\":\"123456:ABC-DEF\",\"secret_token\":"
                                "\"a-long-enough-secret-token\"}";
    static const char *const ok[] = {"https://api.telegram.org", "http://127.0.0.1:9",
                                     "http://[::1]:9", "http://localhost"};
    static const char *const bad[] = {"http://api.telegram.org", "http://192.168.1.5:8081"};
    char settings[256], why[256];
    ef_platform_policy pol;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        void *cfg = NULL;
        snprintf(settings, sizeof(settings), "{\"api_url\":\"%s\"}", ok[i]);
        if (ef_platform_telegram.open(creds, settings, &cfg, &pol, why, sizeof(why)) != 0)
            fail_msg("api_url %s refused: %s", ok[i], why);
        ef_platform_telegram.close(cfg);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        void *cfg = NULL;
        snprintf(settings, sizeof(settings), "{\"api_url\":\"%s\"}", bad[i]);
        assert_int_equal(ef_platform_telegram.open(creds, settings, &cfg, &pol, why, sizeof(why)),
                         EF_EINVAL);
        assert_null(cfg);
        assert_non_null(strstr(why, "\"api_url\" must be https://"));
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_message_private_text),
        T(test_entities_utf16),
        T(test_entities_hostile_linear),
        T(test_ids_beyond_32_bits),
        T(test_ids_overflow_refused),
        T(test_channel_post_without_from),
        T(test_start_with_payload),
        T(test_start_at_botname),
        T(test_business_message),
        T(test_guest_message),
        T(test_callback_query),
        T(test_callback_inaccessible),
        T(test_callback_inline_and_business),
        T(test_blocked_unblocked),
        T(test_migrate_both_forms),
        T(test_reaction),
        T(test_ignored_update_types),
        T(test_unknown_update_type),
        T(test_service_messages),
        T(test_unknown_content_is_stored),
        T(test_edited_message),
        T(test_album),
        T(test_photo_picks_largest),
        T(test_animation_vs_document),
        T(test_venue_vs_location),
        T(test_other_content_types),
        T(test_reply_quote_forward),
        T(test_text_byte_exact),
        T(test_malformed),
        T(test_ops_and_registry),
        T(test_api_url_https_or_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
