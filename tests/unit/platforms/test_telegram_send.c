/*
 * test_telegram_send.c -- the Telegram adapter's outbound half, through the
 * ops struct: a queued row -> ef_platform_telegram.build_send -> the Bot API
 * request (path + JSON body, parsed back with json-c and checked field by
 * field), and a Bot API answer -> .parse_send -> delivery outcome.
 * Bodies follow the Bot API wire format (PLATFORMS.md A1, A10, A11). To keep
 * literals readable, Q() turns the single quotes of a literal into double
 * quotes (no body here contains an apostrophe).
 */
#include "platforms/platform.h"

#define SEND_OPS ef_platform_telegram
#define SEND_CHANNEL NULL
#define SEND_CREDS "{\"bot_token\":\"123456:TEST-token\",\"secret_token\":\"0123456789abcdef\"}"
#define SEND_SETTINGS "{\"api_url\":\"http://127.0.0.1:9\"}"
#include "send_fixture.h"

#define ANNA "5012345678"              /* a private chat id beyond 2^32 */
#define GROUP "-1001234567890"         /* a supergroup id */
#define NEWGROUP "-1001987654321"      /* where an old group migrated to */
#define BCID "BQADBAADrwgAAjn8EwY1JVi" /* a business connection id */

/* ---- build: sendMessage ------------------------------------------------- */

/* Cyrillic, emoji (astral: a surrogate pair in UTF-16), a ZWJ sequence,
 * quotes, a backslash, a slash, a tab and a newline. */
static const char RU_TEXT[] =
    "Здравствуйте, Анна! 👋 Запись на 12/06 в 15:30 подтверждена ✅\n"
    "Адрес: ул. \"Ленина\", д. 5\\2\t👩‍⚕️ врач Иванова";

static void test_send_private_text(void **state)
{
    fx *f = *state;
    built(f, row(ANNA, RU_TEXT, NULL));
    assert_string_equal(f->req.path, "/sendMessage");
    struct json_object *id = jget(f->body, "chat_id");
    assert_true(json_object_is_type(id, json_type_int));
    assert_int_equal(json_object_get_int64(id), INT64_C(5012345678));
    struct json_object *t = jget(f->body, "text");
    assert_true(json_object_is_type(t, json_type_string));
    assert_int_equal((size_t)json_object_get_string_len(t), strlen(RU_TEXT));
    assert_memory_equal(json_object_get_string(t), RU_TEXT, strlen(RU_TEXT));
    assert_false(bhas(f, "reply_markup"));
    assert_false(bhas(f, "message_thread_id"));
    assert_false(bhas(f, "business_connection_id"));

    /* meta without any of the optional keys changes nothing */
    built(f, row(ANNA, "ok", "{'reply_to':'" ANNA ":5231','buttons':[]}"));
    assert_string_equal(bstr(f, "text"), "ok");
    assert_false(bhas(f, "reply_markup"));
}

static void test_send_ids_stay_exact(void **state)
{
    fx *f = *state;
    built(f, row(GROUP, "в группу", NULL));
    assert_int_equal(bint(f, "chat_id"), INT64_C(-1001234567890));

    /* 2^53 + 1: lost if the id ever passes through a double */
    built(f, row("9007199254740993", "x", NULL));
    assert_int_equal(bint(f, "chat_id"), INT64_C(9007199254740993));

    built(f, row("-9007199254740993", "x", NULL));
    assert_int_equal(bint(f, "chat_id"), INT64_C(-9007199254740993));

    built(f, row("9223372036854775807", "x", NULL));
    assert_int_equal(bint(f, "chat_id"), INT64_MAX);
}

static void test_send_buttons(void **state)
{
    fx *f = *state;
    built(f, row(ANNA, "Подтвердите запись",
                 "{'buttons':[{'title':'Да ✅','payload':'confirm:1842'},"
                 "{'title':'Перенести','payload':'reschedule:1842'},"
                 "{'title':'Отменить'}]}"));
    assert_string_equal(f->req.path, "/sendMessage");
    assert_string_equal(bstr(f, "text"), "Подтвердите запись");
    /* one button per row, in order */
    assert_int_equal(blen(f, "reply_markup.inline_keyboard"), 3);
    for (int i = 0; i < 3; i++) {
        char p[64];
        snprintf(p, sizeof(p), "reply_markup.inline_keyboard[%d]", i);
        assert_int_equal(blen(f, p), 1);
    }
    assert_string_equal(bstr(f, "reply_markup.inline_keyboard[0][0].text"), "Да ✅");
    assert_string_equal(bstr(f, "reply_markup.inline_keyboard[0][0].callback_data"),
                        "confirm:1842");
    assert_string_equal(bstr(f, "reply_markup.inline_keyboard[1][0].text"), "Перенести");
    assert_string_equal(bstr(f, "reply_markup.inline_keyboard[1][0].callback_data"),
                        "reschedule:1842");
    /* no payload: the title is what comes back when pressed */
    assert_string_equal(bstr(f, "reply_markup.inline_keyboard[2][0].text"), "Отменить");
    assert_string_equal(bstr(f, "reply_markup.inline_keyboard[2][0].callback_data"), "Отменить");
    /* exactly one action field per button */
    assert_int_equal(json_object_object_length(jget(f->body, "reply_markup.inline_keyboard[0][0]")),
                     2);
}

static void test_send_callback_data_64_bytes(void **state)
{
    fx *f = *state;
    /* 100 ASCII bytes: the first 64 */
    char ascii[101];
    for (int i = 0; i < 100; i++)
        ascii[i] = (char)('a' + i % 26);
    ascii[100] = '\0';
    char *meta = ef_asprintf("{'buttons':[{'title':'Длинный','payload':'%s'},"
                             "{'title':'Ровно','payload':'%.64s'}]}",
                             ascii, ascii);
    built(f, row(ANNA, "Выберите", meta));
    ef_free(meta);
    const char *cd = bstr(f, "reply_markup.inline_keyboard[0][0].callback_data");
    assert_int_equal(strlen(cd), 64);
    assert_memory_equal(cd, ascii, 64);
    cd = bstr(f, "reply_markup.inline_keyboard[1][0].callback_data");
    assert_int_equal(strlen(cd), 64);
    assert_memory_equal(cd, ascii, 64);

    /* "#" + Cyrillic: byte 64 falls inside a character. The data must stay
     * valid UTF-8 (build() parses the body strictly) and be the longest
     * whole-character prefix that fits. */
    static const char ru[] = "#записьнаприёмкстоматологутерапевтупервичная";
    assert_true(strlen(ru) > 64);
    meta = ef_asprintf("{'buttons':[{'title':'Терапия','payload':'%s'}]}", ru);
    built(f, row(ANNA, "Выберите", meta));
    ef_free(meta);
    cd = bstr(f, "reply_markup.inline_keyboard[0][0].callback_data");
    size_t n = strlen(cd);
    assert_true(ef_utf8_valid(cd, n));
    assert_int_equal(n, 63);
    assert_memory_equal(cd, ru, n);
    assert_string_equal(bstr(f, "reply_markup.inline_keyboard[0][0].text"), "Терапия");

    /* 4-byte characters: 16 emoji fit exactly, the 17th does not */
    meta = ef_asprintf("{'buttons':[{'title':'😀','payload':'%s'}]}", "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀");
    built(f, row(ANNA, "Выберите", meta));
    ef_free(meta);
    cd = bstr(f, "reply_markup.inline_keyboard[0][0].callback_data");
    assert_string_equal(cd, "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀");
}

static void test_send_thread_id(void **state)
{
    fx *f = *state;
    built(f, row(GROUP, "В тему", "{'thread_id':42}"));
    assert_int_equal(bint(f, "message_thread_id"), 42);
    assert_int_equal(bint(f, "chat_id"), INT64_C(-1001234567890));

    built(f, row(GROUP, "В тему", "{'thread_id':'17'}"));
    assert_int_equal(bint(f, "message_thread_id"), 17);

    built(f, row(GROUP, "В тему", "{'thread_id':5000000001}"));
    assert_int_equal(bint(f, "message_thread_id"), INT64_C(5000000001));

    built(f, row(GROUP, "Без темы", "{'thread_id':null}"));
    assert_false(bhas(f, "message_thread_id"));
}

static void test_send_business_connection(void **state)
{
    fx *f = *state;
    built(f, row(ANNA "@" BCID, "Ответ от имени бизнеса", "{'thread_id':null}"));
    assert_string_equal(f->req.path, "/sendMessage");
    assert_int_equal(bint(f, "chat_id"), INT64_C(5012345678));
    assert_string_equal(bstr(f, "business_connection_id"), BCID);
    assert_string_equal(bstr(f, "text"), "Ответ от имени бизнеса");

    built(f, row(ANNA, "Обычный чат", NULL));
    assert_false(bhas(f, "business_connection_id"));
}

/* ---- build: answerCallbackQuery ----------------------------------------- */

static void test_answer_callback_query(void **state)
{
    fx *f = *state;
    built(f, row(ANNA, "Принято 👍",
                 "{'method':'answerCallbackQuery','callback_query_id':'4382bfdwdsb323b2d9'}"));
    assert_string_equal(f->req.path, "/answerCallbackQuery");
    assert_string_equal(bstr(f, "callback_query_id"), "4382bfdwdsb323b2d9");
    assert_string_equal(bstr(f, "text"), "Принято 👍");
    assert_false(bhas(f, "chat_id"));
    assert_false(bhas(f, "reply_markup"));

    /* no text: just stop the spinner */
    built(f, row(ANNA, "",
                 "{'method':'answerCallbackQuery','callback_query_id':'4382bfdwdsb323b2d9'}"));
    assert_string_equal(f->req.path, "/answerCallbackQuery");
    assert_string_equal(bstr(f, "callback_query_id"), "4382bfdwdsb323b2d9");
    assert_false(bhas(f, "text"));

    refused(f, row(ANNA, "Принято", "{'method':'answerCallbackQuery'}"), "callback_query_id");
}

/* ---- build: refusals ---------------------------------------------------- */

static void test_build_refusals(void **state)
{
    fx *f = *state;
    refused(f, row(ANNA, "", NULL), "empty");
    refused(f, row(ANNA, NULL, NULL), "empty");
    refused(f, row(ANNA, "", "{'buttons':[{'title':'Да'}]}"), "empty");

    refused(f, row("", "Привет", NULL), "chat id");
    refused(f, row(NULL, "Привет", NULL), "chat id");
    refused(f, row("anna_smirnova", "Привет", NULL), "anna_smirnova");
    refused(f, row("5012345678x", "Привет", NULL), "chat id");
    refused(f, row("@" BCID, "Привет", NULL), "chat id");
    refused(f, row("79161234567:5231", "Привет", NULL), "chat id");

    refused(f, row(ANNA, "Привет", "{'method':'sendSticker'}"), "sendSticker");
    refused(f, row(ANNA, "Привет", "{'method':'deleteWebhook'}"), "unknown");
}

/* ---- parse_send --------------------------------------------------------- */

static void test_parse_ok(void **state)
{
    fx *f = *state;
    ef_send_result *r =
        answer(f, GROUP, 200,
               "{'ok':true,'result':{'message_id':5232,'from':{'id':7012345678,'is_bot':true,"
               "'first_name':'Клиника','username':'clinic_bot'},'chat':{'id':" GROUP
               ",'title':'Пациенты','type':'supergroup'},'date':1718000100,'text':'Привет'}}");
    assert_int_equal(r->outcome, EF_SEND_OK);
    assert_non_null(r->platform_message_id);
    assert_string_equal(r->platform_message_id, GROUP ":5232");
    assert_null(r->new_chat_id);
    assert_int_equal(r->retry_after_ms, 0);
    assert_false(r->undeliverable);

    /* a message id beyond 2^32 stays exact */
    r = answer(f, ANNA, 200,
               "{'ok':true,'result':{'message_id':4294967301,'chat':{'id':" ANNA
               ",'type':'private'},'date':1718000100,'text':'x'}}");
    assert_int_equal(r->outcome, EF_SEND_OK);
    assert_string_equal(r->platform_message_id, ANNA ":4294967301");

    /* answerCallbackQuery answers true: accepted, no message id */
    r = answer(f, ANNA, 200, "{'ok':true,'result':true}");
    assert_int_equal(r->outcome, EF_SEND_OK);
    assert_null(r->platform_message_id);
    assert_null(r->new_chat_id);
}

static void test_parse_rate_limited(void **state)
{
    fx *f = *state;
    ef_send_result *r =
        answer(f, ANNA, 429,
               "{'ok':false,'error_code':429,'description':'Too Many Requests: retry after 41',"
               "'parameters':{'retry_after':41}}");
    assert_int_equal(r->outcome, EF_SEND_RATE);
    assert_int_equal(r->retry_after_ms, 41000);
    assert_false(r->undeliverable);
    assert_null(r->platform_message_id);
    assert_non_null(strstr(r->reason, "429"));

    /* older answers: the number only inside description */
    r = answer(f, ANNA, 429,
               "{'ok':false,'error_code':429,'description':'Too Many Requests: retry after 7'}");
    assert_int_equal(r->outcome, EF_SEND_RATE);
    assert_int_equal(r->retry_after_ms, 7000);

    /* mass-forwarding penalties run to hours: kept, not clamped to 0 */
    r = answer(f, ANNA, 429,
               "{'ok':false,'error_code':429,'description':'Too Many Requests: retry after "
               "35000','parameters':{'retry_after':35000}}");
    assert_int_equal(r->outcome, EF_SEND_RATE);
    assert_int_equal(r->retry_after_ms, INT64_C(35000000));

    /* no number anywhere: still rate limited, the caller backs off */
    r = answer(f, ANNA, 429, "{'ok':false,'error_code':429,'description':'Too Many Requests'}");
    assert_int_equal(r->outcome, EF_SEND_RATE);
    assert_int_equal(r->retry_after_ms, 0);
    r = answer(f, ANNA, 429, NULL);
    assert_int_equal(r->outcome, EF_SEND_RATE);
    assert_int_equal(r->retry_after_ms, 0);
}

static void test_parse_migrated(void **state)
{
    fx *f = *state;
    ef_send_result *r =
        answer(f, "-4012345678", 400,
               "{'ok':false,'error_code':400,'description':'Bad Request: group chat was upgraded "
               "to a supergroup chat','parameters':{'migrate_to_chat_id':" NEWGROUP "}}");
    assert_int_equal(r->outcome, EF_SEND_MIGRATED);
    assert_non_null(r->new_chat_id);
    assert_string_equal(r->new_chat_id, NEWGROUP);
    assert_null(r->platform_message_id);
    assert_false(r->undeliverable);
}

static void test_parse_blocked(void **state)
{
    fx *f = *state;
    ef_send_result *r = answer(
        f, ANNA, 403,
        "{'ok':false,'error_code':403,'description':'Forbidden: bot was blocked by the user'}");
    assert_int_equal(r->outcome, EF_SEND_FAIL);
    assert_true(r->undeliverable);
    assert_non_null(strstr(r->reason, "bot was blocked by the user"));

    r = answer(f, GROUP, 403,
               "{'ok':false,'error_code':403,'description':'Forbidden: bot was kicked from the "
               "group chat'}");
    assert_int_equal(r->outcome, EF_SEND_FAIL);
    assert_true(r->undeliverable);
    assert_non_null(strstr(r->reason, "kicked"));
}

static void test_parse_bad_request(void **state)
{
    fx *f = *state;
    ef_send_result *r =
        answer(f, ANNA, 400,
               "{'ok':false,'error_code':400,'description':'Bad Request: message text is empty'}");
    assert_int_equal(r->outcome, EF_SEND_FAIL);
    assert_false(r->undeliverable);
    assert_null(r->new_chat_id);
    assert_non_null(strstr(r->reason, "message text is empty"));

    r = answer(f, ANNA, 400,
               "{'ok':false,'error_code':400,'description':'Bad Request: chat not found'}");
    assert_int_equal(r->outcome, EF_SEND_FAIL);
    assert_non_null(strstr(r->reason, "chat not found"));
}

static void test_parse_transient(void **state)
{
    fx *f = *state;
    ef_send_result *r =
        answer(f, ANNA, 500, "{'ok':false,'error_code':500,'description':'Internal Server Error'}");
    assert_int_equal(r->outcome, EF_SEND_RETRY);
    assert_false(r->undeliverable);
    assert_non_null(strstr(r->reason, "Internal Server Error"));

    r = answer(f, ANNA, 502, "<html><head><title>502 Bad Gateway</title></head></html>");
    assert_int_equal(r->outcome, EF_SEND_RETRY);
    assert_false(r->undeliverable);

    r = answer(f, ANNA, 0, NULL);
    assert_int_equal(r->outcome, EF_SEND_RETRY);
    assert_false(r->undeliverable);
    assert_true(r->reason[0] != '\0');

    /* a rejected token is the channel's problem, not the message's: the
     * channel goes to error, the message stays queued */
    r = answer(f, ANNA, 401, "{'ok':false,'error_code':401,'description':'Unauthorized'}");
    assert_int_equal(r->outcome, EF_SEND_AUTH);
    assert_false(r->undeliverable);
    assert_non_null(strstr(r->reason, "401"));
}

/* Every prefix of real answers, and answers with fields of the wrong type:
 * no crash, no read past len, a classified outcome and a terminated reason. */
static void test_parse_garbage(void **state)
{
    fx *f = *state;
    static const char *const bodies[] = {
        "{'ok':false,'error_code':429,'description':'Too Many Requests: retry after 41',"
        "'parameters':{'retry_after':41}}",
        "{'ok':false,'error_code':400,'description':'Bad Request: group chat was upgraded to a "
        "supergroup chat','parameters':{'migrate_to_chat_id':" NEWGROUP "}}",
        "{'ok':true,'result':{'message_id':5232,'chat':{'id':" ANNA ",'type':'private'}}}",
    };
    static const long statuses[] = {0, 200, 400, 401, 403, 429, 500};
    for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
        size_t n = strlen(bodies[b]);
        for (size_t cut = 0; cut < n; cut++) {
            char *part = ef_strndup(bodies[b], cut);
            for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
                ef_send_result *r = answer(f, ANNA, statuses[s], part);
                assert_true(r->outcome <= EF_SEND_AUTH);
                if (statuses[s] == 429)
                    assert_int_equal(r->outcome, EF_SEND_RATE);
                if (statuses[s] == 0 || statuses[s] == 500)
                    assert_int_equal(r->outcome, EF_SEND_RETRY);
                /* half an answer is not an accepted message */
                if (statuses[s] == 200)
                    assert_null(r->platform_message_id);
            }
            ef_free(part);
        }
    }

    static const char *const odd[] = {
        "[]",
        "null",
        "41",
        "'Too Many Requests: retry after 41'",
        "{'ok':'yes','result':[]}",
        "{'ok':true,'result':{'message_id':null}}",
        "{'ok':false,'description':null,'parameters':null}",
        "{'ok':false,'description':17,'parameters':[41]}",
        "{'ok':false,'description':{'x':1},'parameters':{'retry_after':'soon'}}",
        "{'ok':false,'parameters':{'migrate_to_chat_id':'nowhere'}}",
        "{\"ok\":false,\"description\":\"\\u0000\"}",
        "\xff\xfe{}",
    };
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
        for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
            ef_send_result *r = answer(f, ANNA, statuses[s], odd[i]);
            assert_true(r->outcome <= EF_SEND_AUTH);
            if (statuses[s] == 429)
                assert_int_equal(r->outcome, EF_SEND_RATE);
        }
}

/* ---- ops ---------------------------------------------------------------- */

static void test_ops(void **state)
{
    (void)state;
    char err[128];
    assert_non_null(ef_platform_telegram.build_send);
    assert_non_null(ef_platform_telegram.parse_send);
    assert_int_equal(ef_platform_check(&ef_platform_telegram, err, sizeof(err)), 0);
    ef_platform_ops half = ef_platform_telegram;
    half.parse_send = NULL;
    assert_int_equal(ef_platform_check(&half, err, sizeof(err)), EF_EINVAL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_send_private_text),
        T(test_send_ids_stay_exact),
        T(test_send_buttons),
        T(test_send_callback_data_64_bytes),
        T(test_send_thread_id),
        T(test_send_business_connection),
        T(test_answer_callback_query),
        T(test_build_refusals),
        T(test_parse_ok),
        T(test_parse_rate_limited),
        T(test_parse_migrated),
        T(test_parse_blocked),
        T(test_parse_bad_request),
        T(test_parse_transient),
        T(test_parse_garbage),
        T(test_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
