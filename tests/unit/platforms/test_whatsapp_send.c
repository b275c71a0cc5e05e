/*
 * test_whatsapp_send.c -- the WhatsApp adapter's outbound half, through the
 * ops struct: a queued row -> ef_platform_whatsapp.build_send -> the Graph
 * API request (path + JSON body, parsed back with json-c and checked field
 * by field), and a Graph API answer -> .parse_send -> delivery outcome.
 * Bodies follow the Cloud API wire format (PLATFORMS.md B7-B9). To keep
 * literals readable, Q() turns the single quotes of a literal into double
 * quotes (no body here contains an apostrophe).
 */
#include "platforms/platform.h"

#define PNID "106540352242922"
#define IVAN "79161234567"
#define CHAT IVAN "@" PNID
#define WAMID "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUE2RTFBNDE2QzU3QjQ2MDBGMAA="
#define WAMID_OUT "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"

#define SEND_OPS ef_platform_whatsapp
#define SEND_CHANNEL PNID
#define SEND_CREDS                                                                                 \
    "{\"access_token\":\"EAAG-test\",\"app_secret\":\"0123456789abcdef0123\","                     \
    "\"phone_number_id\":\"" PNID "\"}"
#define SEND_SETTINGS "{\"api_url\":\"http://127.0.0.1:9\"}"
#include "send_fixture.h"

/* ---- helpers ------------------------------------------------------------ */

/* Code points in a valid UTF-8 string. */
static size_t cps(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xC0) != 0x80;
    return n;
}

/* A title the platform shows: valid UTF-8, a byte prefix of `full`, and
 * exactly `want` code points. */
static void assert_cut(const char *got, const char *full, size_t want)
{
    assert_true(ef_utf8_valid(got, strlen(got)));
    assert_true(strlen(got) <= strlen(full));
    assert_memory_equal(got, full, strlen(got));
    if (cps(got) != want)
        fail_msg("\"%s\" has %zu code points, expected %zu", got, cps(got), want);
}

/* A synchronous Graph error the way Meta sends it. */
static char *graph_error(int64_t code, const char *message, const char *details)
{
    return ef_asprintf("{'error':{'message':'%s','type':'OAuthException','code':%lld,"
                       "'error_data':{'messaging_product':'whatsapp','details':'%s'},"
                       "'fbtrace_id':'AbCdEfGhIjKlMnOpQrStUv'}}",
                       message, (long long)code, details);
}

/* ---- build: text -------------------------------------------------------- */

static const char RU_TEXT[] =
    "Иван, ваша запись на 12/06 в 15:30 подтверждена ✅ 🦷\n"
    "Адрес: ул. \"Ленина\", д. 5\\2 👩‍⚕️";

static void test_send_text(void **state)
{
    fx *f = *state;
    built(f, row(CHAT, RU_TEXT, NULL));
    assert_string_equal(f->req.path, "/" PNID "/messages");
    assert_string_equal(bstr(f, "messaging_product"), "whatsapp");
    assert_string_equal(bstr(f, "to"), IVAN);
    assert_string_equal(bstr(f, "type"), "text");
    struct json_object *b = jget(f->body, "text.body");
    assert_true(json_object_is_type(b, json_type_string));
    assert_int_equal((size_t)json_object_get_string_len(b), strlen(RU_TEXT));
    assert_memory_equal(json_object_get_string(b), RU_TEXT, strlen(RU_TEXT));
    struct json_object *pv = jget(f->body, "text.preview_url");
    assert_true(json_object_is_type(pv, json_type_boolean));
    assert_false(json_object_get_boolean(pv));
    assert_false(bhas(f, "context"));
    assert_false(bhas(f, "interactive"));
    assert_false(bhas(f, "template"));

    /* a second business number: the path follows the chat key */
    built(f, row("4915112345678@115168804832001", "Hallo", "{}"));
    assert_string_equal(f->req.path, "/115168804832001/messages");
    assert_string_equal(bstr(f, "to"), "4915112345678");
    assert_string_equal(bstr(f, "text.body"), "Hallo");
}

static void test_send_reply_context(void **state)
{
    fx *f = *state;
    built(f, row(CHAT, "Да, конечно", "{'reply_to':'" WAMID "'}"));
    assert_string_equal(bstr(f, "context.message_id"), WAMID);
    assert_string_equal(bstr(f, "type"), "text");

    /* not a WhatsApp message id: no context at all */
    built(f, row(CHAT, "Да, конечно", "{'reply_to':'5012345678:5231'}"));
    assert_false(bhas(f, "context"));
    built(f, row(CHAT, "Да, конечно", "{'reply_to':'wamid'}"));
    assert_false(bhas(f, "context"));
    built(f, row(CHAT, "Да, конечно", "{'reply_to':null}"));
    assert_false(bhas(f, "context"));
}

/* ---- build: buttons and lists ------------------------------------------- */

static void test_send_reply_buttons(void **state)
{
    fx *f = *state;
    built(f, row(CHAT, "Подтвердите запись",
                 "{'reply_to':'" WAMID "','buttons':[{'title':'Да ✅','payload':'confirm:1842'},"
                 "{'title':'Перенести','payload':'reschedule:1842'},{'title':'Отменить'}]}"));
    assert_string_equal(f->req.path, "/" PNID "/messages");
    assert_string_equal(bstr(f, "to"), IVAN);
    assert_string_equal(bstr(f, "type"), "interactive");
    assert_string_equal(bstr(f, "context.message_id"), WAMID);
    assert_string_equal(bstr(f, "interactive.type"), "button");
    assert_string_equal(bstr(f, "interactive.body.text"), "Подтвердите запись");
    assert_false(bhas(f, "text"));
    assert_int_equal(blen(f, "interactive.action.buttons"), 3);
    for (int i = 0; i < 3; i++) {
        char p[64];
        snprintf(p, sizeof(p), "interactive.action.buttons[%d].type", i);
        assert_string_equal(bstr(f, p), "reply");
    }
    assert_string_equal(bstr(f, "interactive.action.buttons[0].reply.id"), "confirm:1842");
    assert_string_equal(bstr(f, "interactive.action.buttons[0].reply.title"), "Да ✅");
    assert_string_equal(bstr(f, "interactive.action.buttons[1].reply.id"), "reschedule:1842");
    assert_string_equal(bstr(f, "interactive.action.buttons[1].reply.title"), "Перенести");
    /* no payload: the title comes back as the reply id */
    assert_string_equal(bstr(f, "interactive.action.buttons[2].reply.id"), "Отменить");
    assert_string_equal(bstr(f, "interactive.action.buttons[2].reply.title"), "Отменить");

    /* one button is a button message too */
    built(f, row(CHAT, "Готово?", "{'buttons':[{'title':'Да','payload':'yes'}]}"));
    assert_string_equal(bstr(f, "interactive.type"), "button");
    assert_int_equal(blen(f, "interactive.action.buttons"), 1);
}

/* Titles are cut to 20 characters (code points), never bytes. */
static void test_button_titles_cut_by_characters(void **state)
{
    fx *f = *state;
    /* 27 Cyrillic characters, 2 bytes each */
    static const char longru[] = "Записаться на приём к врачу";
    /* 19 characters, then a 4-byte emoji as the 20th, then more */
    static const char emoji20[] = "Стоматолог-терапевт🦷 завтра";
    /* exactly 20 characters: kept whole */
    static const char exact20[] = "Перенести на неделю!";
    assert_int_equal(cps(longru), 27);
    assert_int_equal(cps(emoji20), 27);
    assert_int_equal(cps(exact20), 20);
    char *meta = ef_asprintf("{'buttons':[{'title':'%s','payload':'book'},"
                             "{'title':'%s','payload':'dentist'},{'title':'%s'}]}",
                             longru, emoji20, exact20);
    built(f, row(CHAT, "Что дальше?", meta));
    ef_free(meta);
    assert_string_equal(bstr(f, "interactive.type"), "button");

    const char *t = bstr(f, "interactive.action.buttons[0].reply.title");
    assert_cut(t, longru, 20);
    assert_int_equal(strlen(t), 3 + 2 * 17); /* 3 spaces, 17 Cyrillic letters */
    assert_string_equal(t, "Записаться на приём ");

    t = bstr(f, "interactive.action.buttons[1].reply.title");
    assert_cut(t, emoji20, 20);
    assert_string_equal(t, "Стоматолог-терапевт🦷");

    t = bstr(f, "interactive.action.buttons[2].reply.title");
    assert_string_equal(t, exact20);
    /* the id is what comes back: never cut */
    assert_string_equal(bstr(f, "interactive.action.buttons[2].reply.id"), exact20);
    assert_string_equal(bstr(f, "interactive.action.buttons[0].reply.id"), "book");
}

static void test_send_list(void **state)
{
    fx *f = *state;
    /* 30 Cyrillic characters: cut to 24 in a list row */
    static const char longrow[] = "Профессиональная гигиена полости рта";
    assert_true(cps(longrow) > 24);
    char *meta =
        ef_asprintf("{'lang':'ru','buttons':[{'title':'Терапия','payload':'svc:1'},"
                    "{'title':'Хирургия','payload':'svc:2'},"
                    "{'title':'Ортодонтия','payload':'svc:3'},"
                    "{'title':'%s','payload':'svc:4'},{'title':'Детский приём 🧒'}]}",
                    longrow);
    built(f, row(CHAT, "Выберите услугу", meta));
    ef_free(meta);
    assert_string_equal(f->req.path, "/" PNID "/messages");
    assert_string_equal(bstr(f, "type"), "interactive");
    assert_string_equal(bstr(f, "interactive.type"), "list");
    assert_string_equal(bstr(f, "interactive.body.text"), "Выберите услугу");
    assert_false(bhas(f, "interactive.action.buttons"));
    const char *button = bstr(f, "interactive.action.button");
    assert_true(cps(button) >= 1 && cps(button) <= 20);

    size_t sections = blen(f, "interactive.action.sections");
    assert_true(sections >= 1 && sections <= 10);
    assert_int_equal(blen(f, "interactive.action.sections[0].rows"), 5);
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[0].id"), "svc:1");
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[0].title"), "Терапия");
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[2].id"), "svc:3");
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[2].title"), "Ортодонтия");
    const char *t = bstr(f, "interactive.action.sections[0].rows[3].title");
    assert_cut(t, longrow, 24);
    assert_string_equal(t, "Профессиональная гигиена");
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[3].id"), "svc:4");
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[4].id"),
                        "Детский приём 🧒");
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[4].title"),
                        "Детский приём 🧒");

    /* four is already too many for reply buttons */
    built(f, row(CHAT, "Когда удобно?",
                 "{'lang':'en','buttons':[{'title':'Mon'},{'title':'Tue'},{'title':'Wed'},"
                 "{'title':'Thu'}]}"));
    assert_string_equal(bstr(f, "interactive.type"), "list");
    assert_int_equal(blen(f, "interactive.action.sections[0].rows"), 4);
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[3].id"), "Thu");
}

static void test_send_list_at_most_10_rows(void **state)
{
    fx *f = *state;
    char buttons[2048] = "";
    size_t used = 0;
    for (int i = 1; i <= 13; i++) {
        int n =
            snprintf(buttons + used, sizeof(buttons) - used,
                     "%s{'title':'Слот %02d:00','payload':'slot:%d'}", i > 1 ? "," : "", i + 7, i);
        assert_true(n > 0 && (size_t)n < sizeof(buttons) - used);
        used += (size_t)n;
    }
    char *meta = ef_asprintf("{'buttons':[%s]}", buttons);
    built(f, row(CHAT, "Свободное время", meta));
    ef_free(meta);
    assert_string_equal(bstr(f, "interactive.type"), "list");
    size_t sections = blen(f, "interactive.action.sections");
    size_t total = 0;
    for (size_t s = 0; s < sections; s++) {
        char p[64];
        snprintf(p, sizeof(p), "interactive.action.sections[%zu].rows", s);
        total += blen(f, p);
    }
    assert_int_equal(total, 10);
    /* the first ten, in order */
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[0].id"), "slot:1");
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[0].title"), "Слот 08:00");
    assert_string_equal(bstr(f, "interactive.action.sections[0].rows[9].id"), "slot:10");
}

/* ---- build: template, markRead ------------------------------------------ */

static void test_send_template(void **state)
{
    fx *f = *state;
    static const char meta[] =
        "{'template':{'name':'visit_reminder','language':{'code':'ru'},'components':[{'type':"
        "'body','parameters':[{'type':'text','text':'Иван'},{'type':'text','text':'12.06 "
        "15:30'}]}]}}";
    /* the window is closed: no free text, the template alone */
    built(f, row(CHAT, "", meta));
    assert_string_equal(f->req.path, "/" PNID "/messages");
    assert_string_equal(bstr(f, "messaging_product"), "whatsapp");
    assert_string_equal(bstr(f, "to"), IVAN);
    assert_string_equal(bstr(f, "type"), "template");
    assert_string_equal(bstr(f, "template.name"), "visit_reminder");
    assert_string_equal(bstr(f, "template.language.code"), "ru");
    assert_string_equal(bstr(f, "template.components[0].type"), "body");
    assert_int_equal(blen(f, "template.components[0].parameters"), 2);
    assert_string_equal(bstr(f, "template.components[0].parameters[0].text"), "Иван");
    assert_string_equal(bstr(f, "template.components[0].parameters[1].text"), "12.06 15:30");
    assert_false(bhas(f, "text"));
    assert_false(bhas(f, "interactive"));

    /* text alongside a template is not sent as a second body */
    built(f, row(CHAT, "Напоминание", meta));
    assert_string_equal(bstr(f, "type"), "template");
    assert_false(bhas(f, "text"));
}

static void test_mark_read(void **state)
{
    fx *f = *state;
    built(f, row(CHAT, "", "{'method':'markRead','message_id':'" WAMID "'}"));
    assert_string_equal(f->req.path, "/" PNID "/messages");
    assert_string_equal(bstr(f, "messaging_product"), "whatsapp");
    assert_string_equal(bstr(f, "status"), "read");
    assert_string_equal(bstr(f, "message_id"), WAMID);
    assert_false(bhas(f, "type"));
    assert_false(bhas(f, "text"));

    refused(f, row(CHAT, "", "{'method':'markRead'}"), "message_id");
    refused(f, row(CHAT, "Привет", "{'method':'sendSticker'}"), "sendSticker");
}

static void test_build_refusals(void **state)
{
    fx *f = *state;
    refused(f, row(IVAN, "Привет", NULL), IVAN);
    refused(f, row("@" PNID, "Привет", NULL), "chat key");
    refused(f, row(IVAN "@", "Привет", NULL), "chat key");
    refused(f, row("", "Привет", NULL), "chat key");
    refused(f, row(NULL, "Привет", NULL), "chat key");

    refused(f, row(CHAT, "", NULL), "empty");
    refused(f, row(CHAT, NULL, NULL), "empty");
    refused(f, row(CHAT, "", "{'buttons':[{'title':'Да'}]}"), "empty");
    refused(f, row(CHAT, NULL, "{'reply_to':'" WAMID "'}"), "empty");
}

/* ---- parse_send --------------------------------------------------------- */

static void test_parse_ok(void **state)
{
    fx *f = *state;
    ef_send_result *r =
        answer(f, CHAT, 200,
               "{'messaging_product':'whatsapp','contacts':[{'input':'" IVAN "','wa_id':'" IVAN
               "'}],'messages':[{'id':'" WAMID_OUT "','message_status':'accepted'}]}");
    assert_int_equal(r->outcome, EF_SEND_OK);
    assert_non_null(r->platform_message_id);
    assert_string_equal(r->platform_message_id, WAMID_OUT);
    assert_null(r->new_chat_id);
    assert_int_equal(r->retry_after_ms, 0);
    assert_false(r->undeliverable);

    /* markRead answers {"success":true}: accepted, no id */
    r = answer(f, CHAT, 200, "{'success':true}");
    assert_int_equal(r->outcome, EF_SEND_OK);
    assert_null(r->platform_message_id);

    /* an error object overrides a 2xx status */
    char *e = graph_error(131047, "Re-engagement message",
                          "Message failed to send because more than 24 hours have passed");
    r = answer(f, CHAT, 200, e);
    ef_free(e);
    assert_int_equal(r->outcome, EF_SEND_WINDOW);
    assert_null(r->platform_message_id);
}

typedef struct code_case {
    int64_t code;
    long status;
    ef_send_outcome outcome;
    int64_t retry_after_ms;
    bool undeliverable;
} code_case;

static void test_parse_error_codes(void **state)
{
    fx *f = *state;
    static const code_case cases[] = {
        {130429, 429, EF_SEND_RATE, 0, false},   {131056, 400, EF_SEND_RATE, 6000, false},
        {80007, 400, EF_SEND_RATE, 0, false},    {4, 400, EF_SEND_RATE, 0, false},
        {131047, 400, EF_SEND_WINDOW, 0, false}, {131026, 400, EF_SEND_FAIL, 0, true},
        {131000, 500, EF_SEND_RETRY, 0, false},  {131016, 503, EF_SEND_RETRY, 0, false},
        {131057, 400, EF_SEND_RETRY, 0, false},  {100, 400, EF_SEND_FAIL, 0, false},
        {131009, 400, EF_SEND_FAIL, 0, false},   {131021, 400, EF_SEND_FAIL, 0, false},
        {132001, 404, EF_SEND_FAIL, 0, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const code_case *c = &cases[i];
        char *e = graph_error(c->code, "Some error", "some details");
        ef_send_result *r = answer(f, CHAT, c->status, e);
        ef_free(e);
        if (r->outcome != c->outcome)
            fail_msg("code %lld: outcome %d, expected %d (%s)", (long long)c->code, r->outcome,
                     c->outcome, r->reason);
        assert_int_equal(r->retry_after_ms, c->retry_after_ms);
        assert_int_equal(r->undeliverable, c->undeliverable);
        assert_null(r->platform_message_id);
        assert_null(r->new_chat_id);
        char code[32];
        snprintf(code, sizeof(code), "%lld", (long long)c->code);
        if (strstr(r->reason, code) == NULL)
            fail_msg("reason \"%s\" does not name code %s", r->reason, code);
    }
}

static void test_parse_permanent_reason(void **state)
{
    fx *f = *state;
    char *e = graph_error(100, "(#100) Invalid parameter", "Param text.body is required");
    ef_send_result *r = answer(f, CHAT, 400, e);
    ef_free(e);
    assert_int_equal(r->outcome, EF_SEND_FAIL);
    assert_false(r->undeliverable);
    assert_string_equal(r->reason, "100 (#100) Invalid parameter: Param text.body is required");

    e = graph_error(131009, "(#131009) Parameter value is not valid",
                    "Interactive button title is too long");
    r = answer(f, CHAT, 400, e);
    ef_free(e);
    assert_int_equal(r->outcome, EF_SEND_FAIL);
    assert_string_equal(r->reason, "131009 (#131009) Parameter value is not valid: Interactive "
                                   "button title is too long");

    /* the undeliverable customer's reason says why too */
    e = graph_error(131026, "Message undeliverable", "Recipient is not a WhatsApp user");
    r = answer(f, CHAT, 400, e);
    ef_free(e);
    assert_string_equal(r->reason,
                        "131026 Message undeliverable: Recipient is not a WhatsApp user");
}

static void test_parse_transient(void **state)
{
    fx *f = *state;
    ef_send_result *r = answer(f, CHAT, 500, "<html><body>Internal Server Error</body></html>");
    assert_int_equal(r->outcome, EF_SEND_RETRY);
    assert_false(r->undeliverable);
    r = answer(f, CHAT, 502, NULL);
    assert_int_equal(r->outcome, EF_SEND_RETRY);
    r = answer(f, CHAT, 503, "{}");
    assert_int_equal(r->outcome, EF_SEND_RETRY);
    /* Graph's generic 5xx shape, unknown code */
    r = answer(f, CHAT, 500,
               "{'error':{'message':'An unknown error has occurred.','type':"
               "'OAuthException','code':999999,'is_transient':true}}");
    assert_int_equal(r->outcome, EF_SEND_RETRY);

    r = answer(f, CHAT, 0, NULL);
    assert_int_equal(r->outcome, EF_SEND_RETRY);
    assert_false(r->undeliverable);
    assert_true(r->reason[0] != '\0');

    /* HTTP 429 is a throttle whatever the body says (a proxy's page, or a
     * Graph rate-limit code not in the table): never a permanent failure */
    r = answer(f, CHAT, 429, "<html><body>Too Many Requests</body></html>");
    assert_int_equal(r->outcome, EF_SEND_RATE);
    assert_false(r->undeliverable);
    r = answer(f, CHAT, 429,
               "{'error':{'message':'(#613) Calls to this API have exceeded the rate "
               "limit.','type':'OAuthException','code':613}}");
    assert_int_equal(r->outcome, EF_SEND_RATE);
}

/* Every prefix of real answers, and answers with fields of the wrong type:
 * no crash, no read past len, a classified outcome and a terminated reason. */
static void test_parse_garbage(void **state)
{
    fx *f = *state;
    char *bodies[3];
    bodies[0] = Q("{'messaging_product':'whatsapp','contacts':[{'input':'" IVAN "','wa_id':'" IVAN
                  "'}],'messages':[{'id':'" WAMID_OUT "'}]}");
    bodies[1] = graph_error(131056,
                            "(#131056) (Business Account, Consumer Account) pair rate "
                            "limit hit",
                            "Message failed to send because there were too many messages");
    bodies[2] = graph_error(131026, "Message undeliverable", "Recipient is not a WhatsApp user");
    static const long statuses[] = {0, 200, 400, 429, 500};
    for (size_t b = 0; b < 3; b++) {
        size_t n = strlen(bodies[b]);
        for (size_t cut = 0; cut < n; cut++) {
            char *part = ef_strndup(bodies[b], cut);
            for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
                ef_send_result *r = answer(f, CHAT, statuses[s], part);
                assert_true(r->outcome <= EF_SEND_AUTH);
                if (statuses[s] == 0 || statuses[s] == 500)
                    assert_int_equal(r->outcome, EF_SEND_RETRY);
                /* half an answer names no message */
                assert_null(r->platform_message_id);
            }
            ef_free(part);
        }
        ef_free(bodies[b]);
    }

    static const char *const odd[] = {
        "[]",
        "null",
        "131047",
        "'error'",
        "{'error':null}",
        "{'error':'Service unavailable'}",
        "{'error':{'code':'131047','message':7,'error_data':'x'}}",
        "{'error':{'code':null,'message':null,'error_data':{'details':null}}}",
        "{'error':{'code':1e300}}",
        "{'error':{'code':99999999999999999999999}}",
        "{'messages':{'id':'wamid.x'}}",
        "{'messages':[null,{'id':'wamid.x'}]}",
        "{'messages':[{'id':42}]}",
        "\xff\xfe{}",
    };
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
        for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
            ef_send_result *r = answer(f, CHAT, statuses[s], odd[i]);
            assert_true(r->outcome <= EF_SEND_AUTH);
            if (statuses[s] == 0)
                assert_int_equal(r->outcome, EF_SEND_RETRY);
        }
}

/* ---- ops ---------------------------------------------------------------- */

static void test_ops(void **state)
{
    (void)state;
    char err[128];
    assert_non_null(ef_platform_whatsapp.build_send);
    assert_non_null(ef_platform_whatsapp.parse_send);
    assert_int_equal(ef_platform_check(&ef_platform_whatsapp, err, sizeof(err)), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_send_text),
        T(test_send_reply_context),
        T(test_send_reply_buttons),
        T(test_button_titles_cut_by_characters),
        T(test_send_list),
        T(test_send_list_at_most_10_rows),
        T(test_send_template),
        T(test_mark_read),
        T(test_build_refusals),
        T(test_parse_ok),
        T(test_parse_error_codes),
        T(test_parse_permanent_reason),
        T(test_parse_transient),
        T(test_parse_garbage),
        T(test_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
