/*
 * test_fsm.c -- the conversation state machine (src/nlp/fsm.c, fsm_def.c,
 * template.c), driven the way the gateway drives it: load the `fsm:`
 * section of a bot file, then feed messages one by one, merging each step's
 * context patch back into the conversation.
 *
 * Fixtures live in tests/unit/nlp/fixtures/ (found next to this file, so run
 * the binary from the repository root, as make does). fsm_shop.yaml is a
 * small Russian/English shop bot; each fsm_err_*.yaml is a broken bot whose
 * first line says which "line:column: reason" the loader must report.
 */
#include "nlp/fsm.h"
#include "nlp/fsm_int.h"
#include "nlp/nlp.h"

#include <json-c/json.h>
#include <yaml.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static const char *const INTENTS[] = {"greeting",     "goodbye",  "thanks",
                                      "order_status", "delivery", "returns",
                                      "cancel_order", "operator", "opening_hours"};
static const char *const ENTITIES[] = {"order_number", "phone", "email", "date", "money"};
#define N_INTENTS (sizeof(INTENTS) / sizeof(INTENTS[0]))
#define N_ENTITIES (sizeof(ENTITIES) / sizeof(ENTITIES[0]))

/* ---- loading helpers ------------------------------------------------------- */

static char *fixture_path(const char *name)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dirlen = slash ? (int)(slash - file) : 1;
    return ef_asprintf("%.*s/fixtures/%s", dirlen, slash ? file : ".", name);
}

static yaml_node_t *fsm_node_of(yaml_document_t *doc)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    assert_non_null(root);
    assert_int_equal(root->type, YAML_MAPPING_NODE);
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, "fsm"))
            return yaml_document_get_node(doc, p->value);
    }
    fail_msg("the document has no fsm key");
    return NULL;
}

/* Parses YAML text (or a file when path is given) and loads its fsm. */
static int load(const char *path, const char *text, ef_fsm_def **out, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    FILE *f = NULL;
    assert_true(yaml_parser_initialize(&parser));
    if (path) {
        f = fopen(path, "rb");
        if (!f)
            fail_msg("cannot open fixture %s (run from the repository root)", path);
        yaml_parser_set_input_file(&parser, f);
    } else {
        yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    }
    if (!yaml_parser_load(&parser, &doc))
        fail_msg("YAML error in %s: %s at line %zu", path ? path : "inline text", parser.problem,
                 parser.problem_mark.line + 1);
    int rc = ef_fsm_def_from_yaml(&doc, fsm_node_of(&doc), path ? path : "inline.yaml", INTENTS,
                                  N_INTENTS, ENTITIES, N_ENTITIES, out, err, errlen);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (f)
        fclose(f);
    return rc;
}

static ef_fsm_def *load_ok(const char *path, const char *text)
{
    char err[512];
    ef_fsm_def *def = NULL;
    int rc = load(path, text, &def, err, sizeof(err));
    if (rc)
        fail_msg("loading failed: %s", err);
    assert_non_null(def);
    return def;
}

static ef_fsm_def *shop(void)
{
    char *path = fixture_path("fsm_shop.yaml");
    ef_fsm_def *def = load_ok(path, NULL);
    ef_free(path);
    return def;
}

/* ---- a conversation, kept the way the gateway keeps it ---------------------- */

typedef struct conv {
    const ef_fsm_def *def;
    ef_fsm_def *own_def; /* the def when this conversation loaded it */
    char *state;
    ef_fsm_status status;
    struct json_object *ctx;
    const char *client_lang;
    ef_fsm_output out;
} conv;

typedef struct msg {
    const char *intent;
    const char *etype; /* one entity, when etype is set */
    const char *evalue;
    const char *button;
    int64_t idle;
} msg;

static conv *conv_new(const char *state, const char *ctx_json)
{
    conv *c = ef_calloc(1, sizeof(*c));
    c->own_def = shop();
    c->def = c->own_def;
    c->state = ef_strdup(state);
    c->ctx = ctx_json ? json_tokener_parse(ctx_json) : json_object_new_object();
    assert_non_null(c->ctx);
    return c;
}

static void conv_free(conv *c)
{
    ef_fsm_output_cleanup(&c->out);
    ef_fsm_def_free(c->own_def);
    ef_free(c->state);
    json_object_put(c->ctx);
    ef_free(c);
}

/* Merges a context patch the way the store does: null deletes. */
static void merge(struct json_object *ctx, struct json_object *patch)
{
    struct json_object_iterator it = json_object_iter_begin(patch);
    struct json_object_iterator end = json_object_iter_end(patch);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *k = json_object_iter_peek_name(&it);
        struct json_object *v = json_object_iter_peek_value(&it);
        if (v)
            json_object_object_add(ctx, k, json_object_get(v));
        else
            json_object_object_del(ctx, k);
    }
}

static const ef_fsm_output *say(conv *c, msg m)
{
    ef_fsm_output_cleanup(&c->out);
    ef_fsm_entity ent = {m.etype, m.evalue};
    ef_fsm_input in = {.state = c->state,
                       .status = c->status,
                       .context = c->ctx,
                       .lang = c->client_lang,
                       .intent = m.intent,
                       .confidence = m.intent ? 0.9 : 0.0,
                       .entities = m.etype ? &ent : NULL,
                       .n_entities = m.etype ? 1 : 0,
                       .button = m.button,
                       .idle_seconds = m.idle};
    int rc = ef_fsm_step(c->def, &in, &c->out);
    assert_int_equal(rc, 0);
    assert_non_null(c->out.state);
    assert_non_null(c->out.context_patch);
    assert_non_null(c->out.why);
    merge(c->ctx, c->out.context_patch);
    ef_free(c->state);
    c->state = ef_strdup(c->out.state);
    if (c->out.status_changed)
        c->status = c->out.status;
    return &c->out;
}

static const char *ctx_str(conv *c, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(c->ctx, key, &v) || !v)
        return NULL;
    return json_object_get_string(v);
}

static int64_t ctx_int(conv *c, const char *key)
{
    struct json_object *v = NULL;
    if (!json_object_object_get_ex(c->ctx, key, &v) || !v)
        return -1;
    return json_object_get_int64(v);
}

static void expect_replies(const ef_fsm_output *o, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    if (o->n_replies != n) {
        for (size_t i = 0; i < o->n_replies; i++)
            print_message("  reply %zu: %s\n", i, o->replies[i].text);
        print_message("  why: %s\n", o->why);
    }
    assert_int_equal(o->n_replies, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(o->replies[i].text, va_arg(ap, const char *));
    va_end(ap);
}

static void expect_patch(const ef_fsm_output *o, const char *json)
{
    assert_string_equal(
        json_object_to_json_string_ext(o->context_patch,
                                       JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
        json);
}

/* ---- conversations ---------------------------------------------------------- */

static void test_greeting_ru(void **state)
{
    (void)state;
    conv *c = conv_new(NULL, NULL); /* a new conversation */
    const ef_fsm_output *o = say(c, (msg){.intent = "greeting"});
    expect_replies(o, 1, "Здравствуйте, друг! Чем помочь?");
    assert_string_equal(o->state, "initial");
    assert_int_equal(o->replies[0].n_buttons, 0);
    assert_false(o->status_changed);
    assert_false(o->escalate);
    assert_false(o->close);
    expect_patch(o, "{}");
    conv_free(c);
}

static void test_greeting_en_uses_context_name(void **state)
{
    (void)state;
    conv *c = conv_new("initial", "{\"lang\":\"en\",\"name\":\"Anna\"}");
    expect_replies(say(c, (msg){.intent = "greeting"}), 1, "Hello, Anna! How can I help?");
    conv_free(c);
}

static void test_order_status_asks_then_fills_slot_ru(void **state)
{
    (void)state;
    conv *c = conv_new("initial", NULL);
    const ef_fsm_output *o = say(c, (msg){.intent = "order_status"});
    expect_replies(o, 1, "Назовите, пожалуйста, номер заказа (например, A-1042).");
    assert_string_equal(o->state, "ask_order");

    /* The customer answers with the number alone: no intent, one entity. */
    o = say(c, (msg){.etype = "order_number", .evalue = "A-1042"});
    expect_replies(o, 1, "Заказ A-1042 передан в доставку, ожидайте 2–3 дня.");
    assert_string_equal(o->state, "initial");
    assert_string_equal(ctx_str(c, "order_number"), "A-1042");
    assert_non_null(strstr(o->why, "state=ask_order"));
    assert_non_null(strstr(o->why, "slot order_number filled"));
    assert_non_null(strstr(o->why, "enter initial"));
    assert_null(strstr(o->why, "A-1042")); /* explanations never carry values */
    conv_free(c);
}

static void test_order_status_with_number_answers_at_once_en(void **state)
{
    (void)state;
    conv *c = conv_new(NULL, NULL);
    c->client_lang = "en";
    const ef_fsm_output *o = say(
        c, (msg){.intent = "order_status", .etype = "order_number", .evalue = "87654321-0012-1"});
    expect_replies(o, 1, "Order 87654321-0012-1 is out for delivery, expect it in 2-3 days.");
    assert_string_equal(o->state, "initial");
    expect_patch(o, "{\"lang\":\"en\",\"order_number\":\"87654321-0012-1\"}");
    conv_free(c);
}

static void test_slot_asked_afresh_on_each_entry(void **state)
{
    (void)state;
    conv *c = conv_new("initial", "{\"order_number\":\"A-1\"}");
    /* An old number in the context is not reused: the slot is asked again. */
    const ef_fsm_output *o = say(c, (msg){.intent = "order_status"});
    expect_replies(o, 1, "Назовите, пожалуйста, номер заказа (например, A-1042).");
    assert_null(ctx_str(c, "order_number"));
    o = say(c, (msg){.etype = "order_number", .evalue = "A-2"});
    expect_replies(o, 1, "Заказ A-2 передан в доставку, ожидайте 2–3 дня.");
    conv_free(c);
}

static void test_slot_reasked_on_unrelated_message(void **state)
{
    (void)state;
    conv *c = conv_new("initial", NULL);
    say(c, (msg){.intent = "order_status"});
    /* "доставка?" -- understood, but nothing here or globally handles it. */
    const ef_fsm_output *o = say(c, (msg){.intent = "delivery"});
    expect_replies(o, 1, "Не вижу номера заказа. Он выглядит так: A-1042.");
    assert_string_equal(o->state, "ask_order");
    assert_int_equal(ctx_int(c, "_retries"), 1);
    o = say(c, (msg){.intent = NULL});
    expect_replies(o, 1, "Не вижу номера заказа. Он выглядит так: A-1042.");
    assert_int_equal(ctx_int(c, "_retries"), 2);
    /* retries: 2 used up -> the bot's repeated_fallback: offer a human. */
    o = say(c, (msg){.intent = "fallback"});
    expect_replies(o, 1, "Похоже, я не могу помочь. Позвать оператора?");
    assert_int_equal(o->replies[0].n_buttons, 1);
    assert_string_equal(o->replies[0].buttons[0].payload, "operator");
    assert_int_equal(ctx_int(c, "_retries"), -1);
    assert_string_equal(o->state, "ask_order");
    /* The number still fills the slot afterwards. */
    o = say(c, (msg){.etype = "order_number", .evalue = "A-1042"});
    expect_replies(o, 1, "Заказ A-1042 передан в доставку, ожидайте 2–3 дня.");
    conv_free(c);
}

static void test_cancel_confirm_with_buttons_ru(void **state)
{
    (void)state;
    conv *c = conv_new("initial", NULL);
    const ef_fsm_output *o = say(c, (msg){.intent = "cancel_order"});
    expect_replies(o, 2, "Оформим отмену.", "Какой заказ отменить?");
    assert_string_equal(o->state, "cancel_ask");
    o = say(c, (msg){.etype = "order_number", .evalue = "A-7"});
    expect_replies(o, 1, "Отменить заказ A-7?");
    assert_string_equal(o->state, "cancel_confirm");
    assert_int_equal(o->replies[0].n_buttons, 2);
    assert_string_equal(o->replies[0].buttons[0].title, "Да, отменить");
    assert_string_equal(o->replies[0].buttons[0].payload, "cancel_yes");
    assert_string_equal(o->replies[0].buttons[1].title, "Нет");
    assert_string_equal(o->replies[0].buttons[1].payload, "cancel_no");
    o = say(c, (msg){.button = "cancel_yes"});
    expect_replies(o, 1, "Заказ A-7 отменён.");
    assert_string_equal(o->state, "initial");
    assert_string_equal(ctx_str(c, "last_cancelled"), "A-7");
    assert_non_null(strstr(o->why, "state button cancel_yes"));
    conv_free(c);
}

static void test_cancel_no_button_en(void **state)
{
    (void)state;
    conv *c = conv_new("initial", "{\"lang\":\"en\"}");
    const ef_fsm_output *o =
        say(c, (msg){.intent = "cancel_order", .etype = "order_number", .evalue = "A-7"});
    expect_replies(o, 2, "Let's cancel it.", "Cancel order A-7?");
    assert_string_equal(o->replies[1].buttons[0].title, "Yes, cancel");
    assert_string_equal(o->replies[1].buttons[1].title, "No");
    o = say(c, (msg){.button = "cancel_no", .intent = "greeting"});
    expect_replies(o, 1, "OK, the order stays.");
    assert_null(ctx_str(c, "order_number"));
    conv_free(c);
}

static void test_unknown_button_falls_back_to_intent(void **state)
{
    (void)state;
    conv *c = conv_new("initial", NULL);
    /* A stale keyboard: the payload matches nothing, the matcher's intent
     * (from the button's text) still counts. */
    const ef_fsm_output *o = say(c, (msg){.button = "old\npayload", .intent = "greeting"});
    expect_replies(o, 1, "Здравствуйте, друг! Чем помочь?");
    assert_non_null(strstr(o->why, "button=(unknown)"));
    assert_null(strchr(o->why, '\n'));
    conv_free(c);
}

static void test_slot_on_fail_escalates(void **state)
{
    (void)state;
    conv *c = conv_new("initial", NULL);
    say(c, (msg){.intent = "cancel_order"});
    const ef_fsm_output *o = say(c, (msg){.intent = NULL}); /* retries: 0 */
    expect_replies(o, 1, "Давайте я позову оператора.");
    assert_true(o->escalate);
    assert_true(o->status_changed);
    assert_int_equal(o->status, EF_FSM_ESCALATED);
    conv_free(c);
}

static void test_fallback_once_then_twice_offers_human_ru(void **state)
{
    (void)state;
    conv *c = conv_new("initial", NULL);
    const ef_fsm_output *o = say(c, (msg){.intent = NULL});
    expect_replies(o, 1, "Извините, я не понял. Переформулируйте, пожалуйста.");
    assert_int_equal(o->replies[0].n_buttons, 0);
    expect_patch(o, "{\"_fallbacks\":1}");
    o = say(c, (msg){.intent = "fallback"});
    expect_replies(o, 1, "Похоже, я не могу помочь. Позвать оператора?");
    assert_int_equal(o->replies[0].n_buttons, 1);
    assert_string_equal(o->replies[0].buttons[0].title, "Позвать оператора");
    assert_string_equal(o->replies[0].buttons[0].payload, "operator");
    assert_false(o->escalate);
    assert_non_null(strstr(o->why, "fallback 2 in a row -> repeated_fallback"));
    /* Pressing the offered button hands the conversation to a human. */
    o = say(c, (msg){.button = "operator"});
    expect_replies(o, 1, "Соединяю с оператором, он ответит здесь же.");
    assert_true(o->escalate);
    assert_int_equal(c->status, EF_FSM_ESCALATED);
    /* After the operator hands it back, the bot starts without a streak. */
    c->status = EF_FSM_ACTIVE;
    expect_replies(say(c, (msg){0}), 1, "Извините, я не понял. Переформулируйте, пожалуйста.");
    conv_free(c);
}

static void test_fallback_streak_resets_when_understood_en(void **state)
{
    (void)state;
    conv *c = conv_new("initial", "{\"lang\":\"en\"}");
    expect_replies(say(c, (msg){0}), 1, "Sorry, I didn't get that. Could you rephrase?");
    const ef_fsm_output *o = say(c, (msg){.intent = "greeting"});
    expect_patch(o, "{\"_fallbacks\":null}");
    expect_replies(say(c, (msg){0}), 1, "Sorry, I didn't get that. Could you rephrase?");
    o = say(c, (msg){0});
    expect_replies(o, 1, "It looks like I can't help. Shall I call an operator?");
    assert_string_equal(o->replies[0].buttons[0].title, "Talk to a human");
    conv_free(c);
}

static void test_operator_escalates(void **state)
{
    (void)state;
    conv *c = conv_new("ask_order", NULL);
    const ef_fsm_output *o = say(c, (msg){.intent = "operator"});
    expect_replies(o, 1, "Соединяю с оператором, он ответит здесь же.");
    assert_true(o->escalate);
    assert_false(o->close);
    assert_true(o->status_changed);
    assert_int_equal(o->status, EF_FSM_ESCALATED);
    assert_string_equal(o->state, "initial"); /* where the bot resumes after hand-back */
    char *json = ef_fsm_output_json(o);
    assert_string_equal(json,
                        "{\"state\":\"initial\",\"status\":\"escalated\",\"context_patch\":{},"
                        "\"replies\":[{\"text\":\"Соединяю с оператором, он ответит здесь "
                        "же.\",\"buttons\":[]}],\"actions\":[\"escalate\"]}");
    ef_free(json);
    conv_free(c);
}

static void test_escalated_conversation_gets_no_reply(void **state)
{
    (void)state;
    const msg inputs[] = {
        {.intent = "greeting"},
        {.intent = "operator"},
        {.intent = "goodbye"},
        {.button = "operator"},
        {.button = "cancel_yes"},
        {.intent = NULL},
        {.intent = NULL},
        {.intent = NULL},
        {.etype = "order_number", .evalue = "A-1042"},
        {.intent = "thanks", .idle = 100000},
    };
    ef_fsm_status silent[] = {EF_FSM_ESCALATED, EF_FSM_PAUSED};
    for (size_t s = 0; s < 2; s++) {
        conv *c = conv_new("ask_order", "{\"name\":\"Анна\",\"_fallbacks\":1}");
        c->status = silent[s];
        for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
            const ef_fsm_output *o = say(c, inputs[i]);
            assert_int_equal(o->n_replies, 0);
            assert_false(o->escalate);
            assert_false(o->close);
            assert_false(o->status_changed);
            assert_string_equal(o->state, "ask_order");
            expect_patch(o, "{}");
            assert_non_null(strstr(o->why, "silent"));
            char *json = ef_fsm_output_json(o);
            assert_string_equal(json, "{\"state\":\"ask_order\",\"status\":null,"
                                      "\"context_patch\":{},\"replies\":[],\"actions\":[]}");
            ef_free(json);
        }
        assert_int_equal(c->status, silent[s]);
        conv_free(c);
    }
}

static void test_close_then_next_message_starts_over(void **state)
{
    (void)state;
    conv *c = conv_new("initial", "{\"name\":\"Анна\",\"lang\":\"ru\",\"order_number\":\"A-5\"}");
    const ef_fsm_output *o = say(c, (msg){.intent = "goodbye"});
    expect_replies(o, 1, "До свидания, Анна!");
    assert_true(o->close);
    assert_false(o->escalate);
    assert_true(o->status_changed);
    assert_int_equal(o->status, EF_FSM_CLOSED);
    char *json = ef_fsm_output_json(o);
    assert_string_equal(json, "{\"state\":\"initial\",\"status\":\"closed\",\"context_patch\":{},"
                              "\"replies\":[{\"text\":\"До свидания, Анна!\",\"buttons\":[]}],"
                              "\"actions\":[\"close\"]}");
    ef_free(json);
    /* Given a closed conversation, the FSM starts a new one: initial state,
     * empty context (the language stays), status active. */
    o = say(c, (msg){.intent = "greeting"});
    expect_replies(o, 1, "Здравствуйте, друг! Чем помочь?");
    assert_true(o->status_changed);
    assert_int_equal(o->status, EF_FSM_ACTIVE);
    assert_null(ctx_str(c, "name"));
    assert_null(ctx_str(c, "order_number"));
    assert_string_equal(ctx_str(c, "lang"), "ru");
    conv_free(c);
}

static void test_timeout_state_local(void **state)
{
    (void)state;
    conv *c = conv_new("cancel_confirm", "{\"order_number\":\"A-7\"}");
    /* Under ten minutes: still waiting for Yes/No. */
    const ef_fsm_output *o = say(c, (msg){.intent = "greeting", .idle = 599});
    expect_replies(o, 1, "Нажмите «Да» или «Нет».");
    assert_string_equal(o->state, "cancel_confirm");
    /* After ten minutes the state's own timeout (not the global 30m) takes
     * the conversation back to initial first; then the message is handled. */
    o = say(c, (msg){.intent = "greeting", .idle = 600});
    expect_replies(o, 1, "Здравствуйте, друг! Чем помочь?");
    assert_string_equal(o->state, "initial");
    assert_null(ctx_str(c, "order_number"));
    assert_non_null(strstr(o->why, "timeout 600s"));
    conv_free(c);
}

static void test_timeout_global_then_local_precedence(void **state)
{
    (void)state;
    conv *c = conv_new("ask_order", NULL);
    /* 29 minutes: still in ask_order; "спасибо" is global there, and the bot
     * reminds what it waits for. */
    const ef_fsm_output *o = say(c, (msg){.intent = "thanks", .idle = 1799});
    expect_replies(o, 2, "Пожалуйста!", "Назовите, пожалуйста, номер заказа (например, A-1042).");
    assert_string_equal(o->state, "ask_order");
    /* 30 minutes: the global timeout replies and goes to initial, where the
     * state's own "thanks" wins over the global one. */
    o = say(c, (msg){.intent = "thanks", .idle = 1800});
    expect_replies(o, 2, "С возвращением!", "Рады помочь! Что-нибудь ещё?");
    assert_string_equal(o->state, "initial");
    /* No previous message: no timeout. */
    o = say(c, (msg){.intent = "thanks", .idle = -1});
    expect_replies(o, 1, "Рады помочь! Что-нибудь ещё?");
    conv_free(c);
}

static void test_entity_transition_and_counter(void **state)
{
    (void)state;
    conv *c = conv_new("initial", NULL);
    const ef_fsm_output *o = say(c, (msg){.etype = "phone", .evalue = "+79161234567"});
    expect_replies(o, 1, "Записал телефон +79161234567.");
    assert_string_equal(ctx_str(c, "phone"), "+79161234567");
    assert_int_equal(ctx_int(c, "phones_given"), 1);
    say(c, (msg){.etype = "phone", .evalue = "+79160000000"});
    assert_int_equal(ctx_int(c, "phones_given"), 2);
    assert_string_equal(ctx_str(c, "phone"), "+79160000000");
    conv_free(c);
}

static void test_several_replies_in_order(void **state)
{
    (void)state;
    conv *c = conv_new("initial", NULL);
    expect_replies(say(c, (msg){.intent = "delivery"}), 2, "Доставляем за 2–5 дней.",
                   "Курьером или в пункт выдачи.");
    conv_free(c);
}

static void test_language_selection(void **state)
{
    (void)state;
    struct {
        const char *ctx;
        const char *client;
        const char *want;
    } cases[] = {
        {NULL, NULL, "Здравствуйте, друг! Чем помочь?"}, /* default: first language */
        {"{\"lang\":\"en\"}", NULL, "Hello, friend! How can I help?"},
        {NULL, "en-US", "Hello, friend! How can I help?"}, /* client's language */
        {NULL, "EN_gb", "Hello, friend! How can I help?"},
        {"{\"lang\":\"ru\"}", "en", "Здравствуйте, друг! Чем помочь?"}, /* context wins */
        {NULL, "de", "Здравствуйте, друг! Чем помочь?"},                /* not a bot language */
        {"{\"lang\":\"de\"}", "en", "Hello, friend! How can I help?"},
        {"{\"lang\":42}", NULL, "Здравствуйте, друг! Чем помочь?"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conv *c = conv_new("initial", cases[i].ctx);
        c->client_lang = cases[i].client;
        expect_replies(say(c, (msg){.intent = "greeting"}), 1, cases[i].want);
        conv_free(c);
    }
}

static void test_conversation_keeps_its_language(void **state)
{
    (void)state;
    conv *c = conv_new(NULL, NULL);
    c->client_lang = "en";
    const ef_fsm_output *o = say(c, (msg){.intent = "order_status"});
    expect_replies(o, 1, "Please tell me your order number (e.g. A-1042).");
    assert_string_equal(ctx_str(c, "lang"), "en");
    /* "A-1042" carries no words: the matcher's guess is the default
     * language, but the conversation stays in English. */
    c->client_lang = "ru";
    o = say(c, (msg){.etype = "order_number", .evalue = "A-1042"});
    expect_replies(o, 1, "Order A-1042 is out for delivery, expect it in 2-3 days.");
    assert_null(strstr(json_object_to_json_string(o->context_patch), "lang"));
    /* A language the bot does not speak is not remembered. */
    conv *d = conv_new(NULL, NULL);
    d->client_lang = "de";
    expect_patch(say(d, (msg){.intent = "greeting"}), "{}");
    conv_free(d);
    conv_free(c);
}

static void test_unknown_state_restarts_in_initial(void **state)
{
    (void)state;
    conv *c = conv_new("state_removed_from_bot", NULL);
    const ef_fsm_output *o = say(c, (msg){.intent = "greeting"});
    expect_replies(o, 1, "Здравствуйте, друг! Чем помочь?");
    assert_string_equal(o->state, "initial");
    assert_non_null(strstr(o->why, "unknown state 'state_removed_from_bot'"));
    conv_free(c);
}

static void test_input_context_is_not_modified(void **state)
{
    (void)state;
    ef_fsm_def *def = shop();
    struct json_object *ctx = json_tokener_parse("{\"name\":\"Анна\",\"_fallbacks\":1}");
    char *before = ef_strdup(json_object_to_json_string(ctx));
    ef_fsm_entity e = {"order_number", "A-9"};
    ef_fsm_input in = {.state = "initial",
                       .context = ctx,
                       .intent = "order_status",
                       .entities = &e,
                       .n_entities = 1};
    ef_fsm_output a = {0}, b = {0};
    assert_int_equal(ef_fsm_step(def, &in, &a), 0);
    assert_int_equal(ef_fsm_step(def, &in, &b), 0);
    assert_string_equal(json_object_to_json_string(ctx), before);
    /* Deterministic: the same input, the same output. */
    char *ja = ef_fsm_output_json(&a), *jb = ef_fsm_output_json(&b);
    assert_string_equal(ja, jb);
    assert_string_equal(ja, "{\"state\":\"initial\",\"status\":null,\"context_patch\":{"
                            "\"_fallbacks\":null,\"order_number\":\"A-9\"},\"replies\":[{\"text\":"
                            "\"Заказ A-9 передан в доставку, ожидайте 2–3 дня.\",\"buttons\":[]}],"
                            "\"actions\":[]}");
    assert_string_equal(a.why, b.why);
    ef_free(ja);
    ef_free(jb);
    ef_free(before);
    ef_fsm_output_cleanup(&a);
    ef_fsm_output_cleanup(&a); /* twice is fine */
    ef_fsm_output_cleanup(&b);
    json_object_put(ctx);
    ef_fsm_def_free(def);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    ef_fsm_def *def = shop();
    ef_fsm_output out = {0};
    ef_fsm_input in = {.state = "initial", .intent = "greeting"};
    assert_int_equal(ef_fsm_step(NULL, &in, &out), EF_EINVAL);
    assert_int_equal(ef_fsm_step(def, NULL, &out), EF_EINVAL);
    assert_int_equal(ef_fsm_step(def, &in, NULL), EF_EINVAL);
    in.n_entities = 1;
    assert_int_equal(ef_fsm_step(def, &in, &out), EF_EINVAL);
    in.n_entities = 0;
    in.context = json_object_new_array();
    assert_int_equal(ef_fsm_step(def, &in, &out), EF_EINVAL);
    assert_null(out.state); /* untouched on error */
    json_object_put(in.context);
    assert_null(ef_fsm_output_json(NULL));
    ef_fsm_def_free(NULL);
    ef_fsm_def_free(def);
}

static void test_rendered_text_is_bounded(void **state)
{
    (void)state;
    conv *c = conv_new("initial", NULL);
    size_t n = 70 * 1024;
    char *huge = ef_malloc(n + 1);
    memset(huge, 'a', n);
    huge[n] = '\0';
    json_object_object_add(c->ctx, "name", json_object_new_string(huge));
    ef_fsm_input in = {.state = "initial", .context = c->ctx, .intent = "greeting"};
    ef_fsm_output out = {0};
    assert_int_equal(ef_fsm_step(c->def, &in, &out), EF_ELIMIT);
    assert_null(out.state);
    assert_null(out.replies);
    /* A name that fits renders normally. */
    huge[1000] = '\0';
    json_object_object_add(c->ctx, "name", json_object_new_string(huge));
    assert_int_equal(ef_fsm_step(c->def, &in, &out), 0);
    assert_int_equal(strlen(out.replies[0].text), strlen("Здравствуйте, ! Чем помочь?") + 1000);
    ef_fsm_output_cleanup(&out);
    ef_free(huge);
    conv_free(c);
}

static void test_status_names(void **state)
{
    (void)state;
    ef_fsm_status st = EF_FSM_ACTIVE;
    assert_int_equal(ef_fsm_status_parse("escalated", &st), 0);
    assert_int_equal(st, EF_FSM_ESCALATED);
    assert_int_equal(ef_fsm_status_parse("closed", &st), 0);
    assert_int_equal(st, EF_FSM_CLOSED);
    assert_int_equal(ef_fsm_status_parse("paused", &st), 0);
    assert_int_equal(st, EF_FSM_PAUSED);
    assert_int_equal(ef_fsm_status_parse("active", &st), 0);
    assert_int_equal(st, EF_FSM_ACTIVE);
    assert_int_equal(ef_fsm_status_parse("open", &st), EF_EINVAL);
    assert_int_equal(ef_fsm_status_parse(NULL, &st), EF_EINVAL);
    assert_string_equal(ef_fsm_status_name(EF_FSM_ESCALATED), "escalated");
}

/* ---- the shipped demo bot (bots/demo.yaml) ------------------------------------ */

/* The demo's fsm, loaded the way the gateway loads it; messages are given as
 * what the matcher understood, so these tests only depend on the fsm. */
/* Loaded once (compiling the bot's regexes is the slow part), freed by the
 * group teardown. */
static ef_bot *demo_bot;

static int free_demo_bot(void **state)
{
    (void)state;
    ef_bot_free(demo_bot);
    demo_bot = NULL;
    return 0;
}

static conv *demo_conv(const char *client_lang)
{
    if (!demo_bot) {
        const char *file = __FILE__; /* tests/unit/nlp/test_fsm.c */
        const char *tail = strstr(file, "tests/unit/nlp/");
        char *path = ef_asprintf("%.*sbots/demo.yaml", tail ? (int)(tail - file) : 0, file);
        char err[512];
        if (ef_bot_load(path, &demo_bot, err, sizeof(err)))
            fail_msg("cannot load %s: %s", path, err);
        ef_free(path);
    }
    conv *c = ef_calloc(1, sizeof(*c));
    c->def = ef_bot_fsm(demo_bot);
    assert_non_null(c->def);
    c->ctx = json_object_new_object();
    c->client_lang = client_lang;
    return c;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_demo_order_status_ru(void **state)
{
    (void)state;
    conv *c = demo_conv("ru");
    const ef_fsm_output *o = say(c, (msg){.intent = "greeting"});
    assert_int_equal(o->n_replies, 1);
    assert_true(starts_with(o->replies[0].text, "Здравствуйте! 👋"));
    assert_true(o->replies[0].n_buttons >= 3);
    o = say(c, (msg){.intent = "order_status"});
    assert_int_equal(o->n_replies, 1);
    assert_true(starts_with(o->replies[0].text, "Подскажите, пожалуйста, номер заказа"));
    o = say(c, (msg){.intent = "thanks"}); /* answered, and the question repeated */
    assert_int_equal(o->n_replies, 2);
    assert_true(starts_with(o->replies[1].text, "Подскажите, пожалуйста, номер заказа"));
    o = say(c, (msg){.intent = "order_status", .etype = "order_number", .evalue = "A-1042"});
    assert_int_equal(o->n_replies, 1);
    assert_true(starts_with(o->replies[0].text, "Заказ A-1042 "));
    assert_string_equal(o->state, ef_fsm_def_initial(c->def));
    /* "нет" instead of a number drops the question. */
    say(c, (msg){.intent = "order_status"});
    o = say(c, (msg){.intent = "deny"});
    assert_string_equal(o->state, "initial");
    conv_free(c);
}

static void test_demo_cancel_with_buttons_en(void **state)
{
    (void)state;
    conv *c = demo_conv("en");
    const ef_fsm_output *o = say(c, (msg){.intent = "cancel_order"});
    assert_true(starts_with(o->replies[0].text, "Which order would you like to cancel?"));
    o = say(c, (msg){.etype = "order_number", .evalue = "87654321-0012-1"});
    assert_int_equal(o->n_replies, 1);
    assert_string_equal(o->replies[0].text, "Cancel order 87654321-0012-1?");
    assert_int_equal(o->replies[0].n_buttons, 2);
    assert_string_equal(o->replies[0].buttons[0].payload, "cancel_yes");
    o = say(c, (msg){.button = "cancel_yes"});
    assert_true(starts_with(o->replies[0].text, "Done: the cancellation of order 87654321-0012-1"));
    assert_string_equal(ctx_str(c, "cancelled_order"), "87654321-0012-1");
    conv_free(c);
}

static void test_demo_fallbacks_then_yes_escalates_and_bot_is_silent(void **state)
{
    (void)state;
    conv *c = demo_conv(NULL);
    const ef_fsm_output *o = say(c, (msg){.intent = "fallback"});
    assert_true(starts_with(o->replies[0].text, "Извините, я не совсем понял"));
    o = say(c, (msg){.intent = "fallback"});
    assert_true(starts_with(o->replies[0].text, "Кажется, я не могу помочь"));
    assert_string_equal(o->replies[0].buttons[0].payload, "operator");
    o = say(c, (msg){.intent = "affirm"}); /* "да" to the offer */
    assert_true(o->escalate);
    assert_int_equal(c->status, EF_FSM_ESCALATED);
    o = say(c, (msg){.intent = "greeting"});
    assert_int_equal(o->n_replies, 0);
    conv_free(c);
}

static void test_demo_operator_complaint_goodbye(void **state)
{
    (void)state;
    const char *intents[] = {"operator", "complaint", "goodbye"};
    for (size_t i = 0; i < 3; i++) {
        conv *c = demo_conv(NULL);
        const ef_fsm_output *o = say(c, (msg){.intent = intents[i]});
        assert_int_equal(o->n_replies, 1);
        assert_true(o->status_changed);
        assert_int_equal(o->status, i < 2 ? EF_FSM_ESCALATED : EF_FSM_CLOSED);
        conv_free(c);
    }
}

/* ---- templates ------------------------------------------------------------------ */

static const char TPL_BOT[] =
    "bot: {languages: [ru, en]}\n"
    "fsm:\n"
    "  fallback: \"[{context.missing}] [{context.name|гость}] [{{x}}] [{phone}] "
    "[{order_number|нет}] [{context.n}] [{email|—}]\"\n"
    "  repeated_fallback: {ru: \"оператор?\", en: \"operator?\"}\n"
    "  states:\n"
    "    initial:\n"
    "      slots: [{entity: order_number, prompt: \"номер?\", keep: true}]\n"
    "      on_filled: \"ok {order_number}\"\n";

static void test_template_placeholders_and_missing_keys(void **state)
{
    (void)state;
    ef_fsm_def *def = load_ok(NULL, TPL_BOT);
    struct json_object *ctx =
        json_tokener_parse("{\"name\":\"Анна\",\"n\":3,\"order_number\":\"A-1\",\"_fallbacks\":0}");
    ef_fsm_entity e = {"phone", "+79161234567"};
    ef_fsm_input in = {.state = "initial", .context = ctx, .entities = &e, .n_entities = 1};
    ef_fsm_output o = {0};
    assert_int_equal(ef_fsm_step(def, &in, &o), 0);
    /* Missing keys render empty unless they have a |default. */
    expect_replies(&o, 1, "[] [Анна] [{x}] [+79161234567] [A-1] [3] [—]");
    ef_fsm_output_cleanup(&o);
    json_object_object_del(ctx, "name");
    json_object_object_add(ctx, "order_number", json_object_new_string(""));
    in.n_entities = 0;
    assert_int_equal(ef_fsm_step(def, &in, &o), 0);
    expect_replies(&o, 1, "номер?"); /* "" does not fill a slot: asked again */
    ef_fsm_output_cleanup(&o);
    json_object_put(ctx);
    ef_fsm_def_free(def);
}

static void test_template_check(void **state)
{
    (void)state;
    const char *const slots[] = {"order_number", "city"};
    struct {
        const char *tpl;
        bool ok;
        size_t at;
    } cases[] = {
        {"Заказ {order_number} в пути", true, 0},
        {"{city|Москва} {context.x-y_1|} {{}} }}{{", true, 0},
        {"{phone}{email}", true, 0},
        {"Заказ {order} в пути", false, 11},
        {"Привет {", false, 13},
        {"Привет }", false, 13},
        {"{ context.name }", false, 0},
        {"{}", false, 0},
        {"{context.}", false, 0},
        {"{a{b}", false, 0},
        {"x "
         "{context."
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}",
         false, 2},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t at = 999;
        char why[200] = "";
        int rc =
            ef_fsm__tpl_check(cases[i].tpl, ENTITIES, N_ENTITIES, slots, 2, &at, why, sizeof(why));
        if (cases[i].ok != (rc == 0))
            fail_msg("template '%s': rc=%d why=%s", cases[i].tpl, rc, why);
        if (!cases[i].ok) {
            assert_int_equal(at, cases[i].at);
            assert_true(why[0] != '\0');
        }
    }
}

/* ---- definitions ------------------------------------------------------------------- */

static void test_def_accessors(void **state)
{
    (void)state;
    ef_fsm_def *def = shop();
    assert_string_equal(ef_fsm_def_initial(def), "initial");
    assert_string_equal(ef_fsm_def_default_lang(def), "ru");
    assert_true(ef_fsm_def_has_state(def, "cancel_confirm"));
    assert_false(ef_fsm_def_has_state(def, "nope"));
    assert_false(ef_fsm_def_has_state(def, NULL));
    ef_fsm_def_free(def);
}

static void test_def_languages_from_texts(void **state)
{
    (void)state;
    /* No `bot.languages`: the first language a text uses is the
     * default. A custom initial state name works too. */
    static const char bot[] = "fsm:\n"
                              "  initial: start\n"
                              "  fallback: {en: \"Sorry?\", ru: \"Не понял.\"}\n"
                              "  repeated_fallback: {en: \"Operator?\", ru: \"Оператор?\"}\n"
                              "  states:\n"
                              "    start: {}\n";
    ef_fsm_def *def = load_ok(NULL, bot);
    assert_string_equal(ef_fsm_def_default_lang(def), "en");
    assert_string_equal(ef_fsm_def_initial(def), "start");
    ef_fsm_input in = {.state = "initial", .lang = "fr"};
    ef_fsm_output o = {0};
    assert_int_equal(ef_fsm_step(def, &in, &o), 0);
    expect_replies(&o, 1, "Sorry?");
    assert_string_equal(o.state, "start");
    ef_fsm_output_cleanup(&o);
    in.lang = "ru-RU";
    assert_int_equal(ef_fsm_step(def, &in, &o), 0);
    expect_replies(&o, 1, "Не понял.");
    ef_fsm_output_cleanup(&o);
    ef_fsm_def_free(def);
}

static void test_def_errors_from_fixtures(void **state)
{
    (void)state;
    static const char *const files[] = {
        "fsm_err_unknown_state.yaml",        "fsm_err_unknown_intent.yaml",
        "fsm_err_unknown_entity.yaml",       "fsm_err_missing_prompt.yaml",
        "fsm_err_unreachable.yaml",          "fsm_err_no_initial.yaml",
        "fsm_err_bad_initial.yaml",          "fsm_err_duplicate_state.yaml",
        "fsm_err_unknown_key.yaml",          "fsm_err_placeholder.yaml",
        "fsm_err_unclosed_brace.yaml",       "fsm_err_language.yaml",
        "fsm_err_missing_default_lang.yaml", "fsm_err_button_unhandled.yaml",
        "fsm_err_filled_loop.yaml",          "fsm_err_no_fallback.yaml",
        "fsm_err_both_actions.yaml",         "fsm_err_goto_in_on_enter.yaml",
        "fsm_err_reserved_key.yaml",         "fsm_err_bad_timeout.yaml",
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *path = fixture_path(files[i]);
        /* The first line says what the loader must report. */
        FILE *f = fopen(path, "rb");
        if (!f)
            fail_msg("cannot open %s (run from the repository root)", path);
        char line[512];
        assert_non_null(fgets(line, sizeof(line), f));
        fclose(f);
        line[strcspn(line, "\n")] = '\0';
        const char *prefix = "# expect: ";
        assert_int_equal(strncmp(line, prefix, strlen(prefix)), 0);
        char *want = ef_asprintf("%s:%s", path, line + strlen(prefix));

        char err[512] = "";
        ef_fsm_def *def = NULL;
        int rc = load(path, NULL, &def, err, sizeof(err));
        if (rc != EF_EINVAL || strncmp(err, want, strlen(want)) != 0)
            fail_msg("%s:\n  want: %s...\n  got:  rc=%d %s", files[i], want, rc, err);
        assert_null(def);
        ef_free(want);
        ef_free(path);
    }
}

static void test_def_error_message_fits_small_buffer(void **state)
{
    (void)state;
    char *path = fixture_path("fsm_err_unknown_state.yaml");
    char err[16];
    memset(err, 'x', sizeof(err));
    ef_fsm_def *def = NULL;
    assert_int_equal(load(path, NULL, &def, err, sizeof(err)), EF_EINVAL);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_null(def);
    ef_free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greeting_ru),
        cmocka_unit_test(test_greeting_en_uses_context_name),
        cmocka_unit_test(test_order_status_asks_then_fills_slot_ru),
        cmocka_unit_test(test_order_status_with_number_answers_at_once_en),
        cmocka_unit_test(test_slot_asked_afresh_on_each_entry),
        cmocka_unit_test(test_slot_reasked_on_unrelated_message),
        cmocka_unit_test(test_cancel_confirm_with_buttons_ru),
        cmocka_unit_test(test_cancel_no_button_en),
        cmocka_unit_test(test_unknown_button_falls_back_to_intent),
        cmocka_unit_test(test_slot_on_fail_escalates),
        cmocka_unit_test(test_fallback_once_then_twice_offers_human_ru),
        cmocka_unit_test(test_fallback_streak_resets_when_understood_en),
        cmocka_unit_test(test_operator_escalates),
        cmocka_unit_test(test_escalated_conversation_gets_no_reply),
        cmocka_unit_test(test_close_then_next_message_starts_over),
        cmocka_unit_test(test_timeout_state_local),
        cmocka_unit_test(test_timeout_global_then_local_precedence),
        cmocka_unit_test(test_entity_transition_and_counter),
        cmocka_unit_test(test_several_replies_in_order),
        cmocka_unit_test(test_language_selection),
        cmocka_unit_test(test_conversation_keeps_its_language),
        cmocka_unit_test(test_unknown_state_restarts_in_initial),
        cmocka_unit_test(test_input_context_is_not_modified),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_rendered_text_is_bounded),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_demo_order_status_ru),
        cmocka_unit_test(test_demo_cancel_with_buttons_en),
        cmocka_unit_test(test_demo_fallbacks_then_yes_escalates_and_bot_is_silent),
        cmocka_unit_test(test_demo_operator_complaint_goodbye),
        cmocka_unit_test(test_template_placeholders_and_missing_keys),
        cmocka_unit_test(test_template_check),
        cmocka_unit_test(test_def_accessors),
        cmocka_unit_test(test_def_languages_from_texts),
        cmocka_unit_test(test_def_errors_from_fixtures),
        cmocka_unit_test(test_def_error_message_fits_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, free_demo_bot);
}
