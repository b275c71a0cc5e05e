/*
 * test_model.c -- the statistical second opinion (src/nlp/model.c and its
 * use in match.c): a character n-gram model trained at load from the bot's
 * examples, asked only when no rule gave an intent.
 *
 * Uses tests/unit/nlp/fixtures/model_bot.yaml. Run from the repository
 * root, as make does.
 */
#include "nlp/nlp.h"
#include "nlp/nlp_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define FX_BOT "fixtures/model_bot.yaml"
#include "nlp_fixture.h"

static ef_nlu_result run(fx *f, const char *text)
{
    ef_nlu_result r;
    if (ef_nlp_match(f->bot, f->sc, text, strlen(text), FX_NOW, &r) != 0)
        fail_msg("ef_nlp_match(%s) failed", text);
    return r;
}

/* A situation no pattern names gets the model's intent, marked as such. */
static void test_model_answers_a_situation(void **state)
{
    fx *f = *state;
    ef_nlu_result r = run(f, "на рукаве оторвалась пуговица");
    assert_string_equal(r.intent, "refund");
    assert_true(r.by_model);
    assert_string_equal(r.model_intent, "refund");
    assert_true(r.confidence == r.model_confidence);
    assert_true(r.confidence >= ef_bot_model_threshold(f->bot));
    assert_int_equal(r.n_ranked, 0); /* no pattern matched */
    char *js = ef_nlu_result_json(&r);
    assert_non_null(strstr(js, "\"model\": {\"intent\": \"refund\", \"confidence\": "));
    assert_non_null(strstr(js, "\"used\": true}"));
    ef_free(js);
    r = run(f, "жду посылку десять дней");
    assert_string_equal(r.intent, "late");
    assert_true(r.by_model);
}

/* Rules always win: a matching pattern is never asked about. */
static void test_rules_win(void **state)
{
    fx *f = *state;
    ef_nlu_result r = run(f, "где мой заказ, пуговица оторвалась");
    assert_string_equal(r.intent, "late");
    assert_false(r.by_model);
    assert_null(r.model_intent);
    char *js = ef_nlu_result_json(&r);
    assert_null(strstr(js, "\"model\""));
    ef_free(js);
}

/* Something the bot was never shown, or that looks like its out-of-scope
 * examples, stays a fallback. */
static void test_out_of_scope_stays_fallback(void **state)
{
    fx *f = *state;
    ef_nlu_result r = run(f, "какая погода будет завтра");
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
    assert_false(r.by_model);
    r = run(f, "квантовая хромодинамика");
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
    assert_null(r.model_intent); /* too little of it is known: no opinion */
    r = run(f, "");
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
}

/* EF_NLP_NO_MODEL: rules only. */
static void test_option_off(void **state)
{
    fx *f = *state;
    ef_nlp_scratch_set_options(f->sc, EF_NLP_NO_MODEL);
    ef_nlu_result r = run(f, "у куртки оторвалась пуговица");
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
    assert_null(r.model_intent);
    ef_nlp_scratch_set_options(f->sc, 0);
}

/* The classifier itself: deterministic, probabilities in (0, 1]. */
static void test_classify(void **state)
{
    fx *f = *state;
    const ef_bot *bot = f->bot;
    assert_non_null(bot->model.slots);
    assert_int_equal(bot->model.n_classes, bot->n_intents + 2);
    assert_int_equal(bot->model.n_trained, 4); /* refund, late, out of scope, negatives */
    float score[4];
    double p1, p2;
    uint32_t c1, c2;
    const char *t = "оторвалась подошва";
    assert_int_equal(ef_nlp__model_classify(&bot->model, t, strlen(t), score, NULL, &c1, &p1), 0);
    assert_int_equal(ef_nlp__model_classify(&bot->model, t, strlen(t), score, NULL, &c2, &p2), 0);
    assert_int_equal(c1, c2);
    assert_true(p1 == p2 && p1 > 0 && p1 <= 1);
    assert_int_equal(c1, 0); /* refund */
    /* n-grams only the out-of-scope examples have make no opinion: the
     * intents' examples never spoke of it */
    t = "рецепт пирога";
    assert_int_equal(ef_nlp__model_classify(&bot->model, t, strlen(t), score, NULL, &c1, &p1),
                     EF_ENOTFOUND);
    /* invalid UTF-8 is cut where it starts, never read past */
    assert_int_equal(ef_nlp__model_classify(&bot->model, "\xff\xfe", 2, score, NULL, &c1, &p1),
                     EF_ENOTFOUND);
}

/* Russian typed in Latin letters is also read transliterated: the examples
 * are Cyrillic, and the reading the intents know better is classified (as
 * written, Latin n-grams the examples never had, no opinion). */
static void test_latin_letters(void **state)
{
    fx *f = *state;
    const ef_bot *bot = f->bot;
    float score[4];
    double p, pc;
    uint32_t c, cc;
    const char *t = "otorvalas podoshva";
    assert_int_equal(ef_nlp__model_classify(&bot->model, t, strlen(t), score, NULL, &c, &p), 0);
    assert_int_equal(c, 0);               /* refund */
    const char *cy = "оторвалас подошва"; /* the same reading, in Cyrillic */
    assert_int_equal(ef_nlp__model_classify(&bot->model, cy, strlen(cy), score, NULL, &cc, &pc), 0);
    assert_int_equal(cc, c);
    assert_true(p == pc);
    t = "zhdu posylku desyat dney";
    assert_int_equal(ef_nlp__model_classify(&bot->model, t, strlen(t), score, NULL, &c, &p), 0);
    assert_int_equal(c, 1); /* late */
    /* through the matcher: the model's answer, marked as such */
    ef_nlu_result r = run(f, "na rukave dyrka");
    assert_string_equal(r.intent, "refund");
    assert_true(r.by_model);
    /* Latin letters that transliterate into nothing the examples know
     * still get no opinion */
    t = "quantum chromodynamics";
    assert_int_equal(ef_nlp__model_classify(&bot->model, t, strlen(t), score, NULL, &c, &p),
                     EF_ENOTFOUND);
}

/* The thread's word memo gives the answers of reading every word anew:
 * each text twice through one memo (the second time from it) against no
 * memo, for both questions, Latin letters (the transliterated reading),
 * invisible characters, punctuation, digits, invalid UTF-8, and a message
 * the model cuts (MAX_CHARS). */
static void test_word_memo(void **state)
{
    fx *f = *state;
    const ef_nlp__model *m = &f->bot->model;
    char long_text[1200];
    const char *piece = "оторвалась подошва жду посылку ";
    size_t pl = strlen(piece), ll = 0;
    while (ll + pl < sizeof(long_text)) {
        memcpy(long_text + ll, piece, pl);
        ll += pl;
    }
    long_text[ll] = '\0';
    const char *texts[] = {
        "оторвалась подошва",
        "otorvalas podoshva",
        "zhdu posylku desyat dney",
        "quantum chromodynamics",
        "рецепт пирога",
        "какая погода будет завтра",
        "\xff\xfe",
        "от\xc2\xadорвалась  подошва!!! 123, ok",
        "👍 жду посылку",
        "",
        "a",
        "поменяйте мне пуговицу yy",
        "оторвалась подошва \xff",
        long_text,
    };
    ef_nlp__mword *memo = ef_calloc(EF_NLP__MWORDS, sizeof(*memo));
    float score[4];
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
            const char *t = texts[i];
            uint32_t c0 = 99, c1 = 99;
            double p0 = -1, p1 = -1;
            int r0 = ef_nlp__model_classify(m, t, strlen(t), score, NULL, &c0, &p0);
            int r1 = ef_nlp__model_classify(m, t, strlen(t), score, memo, &c1, &p1);
            if (r0 != r1 || c0 != c1 || p0 != p1)
                fail_msg("classify '%s' (pass %d): %d %u %.17g, with the memo %d %u %.17g", t, pass,
                         r0, c0, p0, r1, c1, p1);
            p0 = p1 = -1;
            r0 = ef_nlp__model_other(m, t, strlen(t), score, NULL, &p0);
            r1 = ef_nlp__model_other(m, t, strlen(t), score, memo, &p1);
            if (r0 != r1 || p0 != p1)
                fail_msg("other '%s' (pass %d): %d %.17g, with the memo %d %.17g", t, pass, r0, p0,
                         r1, p1);
        }
    }
    ef_free(memo);
}

/* ef_nlp__model_other_than() answers as ef_nlp__model_other() whatever the
 * rival (and with the word memo as without): on demo.yaml (out-of-scope topics, dense rows), every
 * example of the bot and a few messages, each intent as the rival, the same code and the same
 * probability to the bit (the rival only lets it skip ranking the classes where no out-of-scope
 * class can win). */
static void test_other_than_same(void **state)
{
    (void)state;
    const char *file = __FILE__, *slash = strrchr(file, '/');
    char *path = ef_asprintf("%.*s/../../../bots/demo.yaml", slash ? (int)(slash - file) : 1,
                             slash ? file : ".");
    ef_bot *bot = NULL;
    char err[512];
    if (ef_bot_load(path, &bot, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    ef_free(path);
    const ef_nlp__model *m = &bot->model;
    assert_true(m->n_oos > 1 && m->rows);
    float *score = ef_calloc(m->n_classes, sizeof(float));
    /* with the word memo (thousands of words in its places and their
     * neighbours: it must answer as the n-gram table) */
    ef_nlp__mword *memo = ef_calloc(EF_NLP__MWORDS, sizeof(*memo));
    static const char *const extra[] = {"у меня сломался холодильник",
                                        "курьер до квартиры поднимается?",
                                        "какая погода будет завтра", "где мой заказ", ""};
    size_t n_ex = ef_bot_example_count(bot), n = n_ex + sizeof(extra) / sizeof(extra[0]),
           skipped = 0;
    for (size_t i = 0; i < n; i++) {
        ef_bot_example ex = {0};
        if (i < n_ex)
            assert_int_equal(ef_bot_example_get(bot, i, &ex), 0);
        const char *t = i < n_ex ? ex.text : extra[i - n_ex];
        double p0 = -1;
        int r0 = ef_nlp__model_other(m, t, strlen(t), score, NULL, &p0);
        for (uint32_t rival = 0; rival <= bot->n_intents; rival++) {
            double p1 = -1;
            uint32_t r = rival < bot->n_intents ? rival : UINT32_MAX;
            int r1 = ef_nlp__model_other_than(m, t, strlen(t), score, memo, r, &p1);
            if (r0 != r1 || (r0 == 0 && p0 != p1))
                fail_msg("'%s', rival %u: %d %.17g, alone %d %.17g", t, rival, r1, p1, r0, p0);
            skipped += r0 != 0;
        }
    }
    assert_true(skipped > 0);
    ef_free(memo);
    ef_free(score);
    ef_bot_free(bot);
}

/* The out-of-scope class alone: a message like the out-of-scope examples
 * is "something else"; one like an intent's, or like a negative example
 * (which reads like the shop's business), is not. */
static void test_other(void **state)
{
    fx *f = *state;
    const ef_bot *bot = f->bot;
    float score[4];
    double p;
    const char *t = "какая погода будет завтра";
    assert_int_equal(ef_nlp__model_other(&bot->model, t, strlen(t), score, NULL, &p), 0);
    assert_true(p > 0.5 && p <= 1);
    t = "оторвалась подошва";
    assert_int_equal(ef_nlp__model_other(&bot->model, t, strlen(t), score, NULL, &p), EF_ENOTFOUND);
    t = "поменяйте мне пуговицу";
    assert_int_equal(ef_nlp__model_other(&bot->model, t, strlen(t), score, NULL, &p), EF_ENOTFOUND);
}

/* A weak rule answer (one pattern word in a message about something else)
 * falls back when the model takes the message for an out-of-scope example;
 * the rule's intent stays ranked and "model" says why. A strong one stays. */
static void test_weak_rule_vetoed(void **state)
{
    fx *f = *state;
    ef_nlu_result r = run(f, "сколько стоит возврат билета на поезд");
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
    assert_true(r.by_model);
    assert_string_equal(r.model_intent, EF_NLP_FALLBACK);
    assert_true(r.model_confidence >= ef_bot_model_threshold(f->bot));
    assert_true(r.n_ranked >= 1);
    assert_string_equal(r.ranked[0].intent, "refund");
    r = run(f, "возврат товара");
    assert_string_equal(r.intent, "refund");
    assert_false(r.by_model);
    ef_nlp_scratch_set_options(f->sc, EF_NLP_NO_MODEL);
    r = run(f, "сколько стоит возврат билета на поезд");
    assert_string_equal(r.intent, "refund");
    ef_nlp_scratch_set_options(f->sc, 0);
}

/* A message of several sentences that small talk won: the model reads the
 * sentences the small talk did not touch, and the request it finds wins. */
static void test_request_after_small_talk(void **state)
{
    (void)state;
    ef_bot *bot = load_text(
        "bot: {name: talk, languages: [ru]}\n"
        "intents:\n"
        "  hello: {priority: -1, patterns: ['\\bпривет~'], examples: ['привет']}\n"
        "  late: {patterns: ['\\bгде заказ\\b'], examples: ['где заказ',\n"
        "         'жду посылку уже третью неделю', 'посылка до сих пор едет',\n"
        "         'жду уже десять дней, ничего нет', 'посылку так и не привезли']}\n"
        "  refund: {patterns: ['\\bвозврат~'], examples: ['возврат',\n"
        "         'пуговица оторвалась в первый же день', 'ткань порвалась на локте']}\n");
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    ef_nlu_result r;
    const char *t = "Привет! Жду посылку уже десять дней, ничего нет.";
    assert_int_equal(ef_nlp_match(bot, sc, t, strlen(t), FX_NOW, &r), 0);
    assert_string_equal(r.intent, "late");
    assert_true(r.by_model);
    assert_int_equal(r.n_ranked, 1);
    assert_string_equal(r.ranked[0].intent, "hello"); /* as the rules saw it */
    t = "Привет! Как дела?";
    assert_int_equal(ef_nlp_match(bot, sc, t, strlen(t), FX_NOW, &r), 0);
    assert_string_equal(r.intent, "hello");
    assert_false(r.by_model);
    ef_nlp_scratch_free(sc);
    ef_bot_free(bot);
}

/* Two intents' patterns matched about as well (arbitrate() in match.c):
 * the model picks among them, never an intent no pattern named. */
static void test_model_arbitrates_close_rules(void **state)
{
    (void)state;
    ef_bot *bot =
        load_text("bot: {name: arb, languages: [ru]}\n"
                  "intents:\n"
                  "  late: {patterns: ['\\bпришел\\b'], examples: ['не пришел',\n"
                  "         'жду посылку уже третью неделю', 'посылка до сих пор едет',\n"
                  "         'жду уже десять дней, ничего нет', 'посылку так и не привезли']}\n"
                  "  refund: {patterns: ['\\bзаказ~'], examples: ['возврат заказа',\n"
                  "         'пуговица оторвалась в первый же день', 'ткань порвалась на локте',\n"
                  "         'на рукаве дырка и пятно', 'пуговицы отвалились после стирки']}\n"
                  "  other: {patterns: ['\\bрукав~'], examples: ['рукав']}\n");
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    ef_nlu_result r;
    const char *t = "пришел заказ, пуговица оторвалась и дырка";
    ef_nlp_scratch_set_options(sc, EF_NLP_NO_MODEL);
    assert_int_equal(ef_nlp_match(bot, sc, t, strlen(t), FX_NOW, &r), 0);
    assert_string_equal(r.intent, "late"); /* "пришел" explains a letter more */
    double late = r.confidence;
    ef_nlp_scratch_set_options(sc, 0);
    assert_int_equal(ef_nlp_match(bot, sc, t, strlen(t), FX_NOW, &r), 0);
    assert_string_equal(r.intent, "refund");
    assert_true(r.by_model);
    assert_string_equal(r.model_intent, "refund");
    assert_true(r.confidence < late); /* the rule's own confidence */
    assert_int_equal(r.n_ranked, 2);
    assert_string_equal(r.ranked[0].intent, "refund");
    assert_string_equal(r.ranked[1].intent, "late");
    /* the rules' answer stands when it is clear: "пришел" and its
     * examples' words explain far more than "заказ" */
    t = "не пришел заказ";
    assert_int_equal(ef_nlp_match(bot, sc, t, strlen(t), FX_NOW, &r), 0);
    assert_string_equal(r.intent, "late");
    ef_nlp_scratch_free(sc);
    ef_bot_free(bot);
}

/* out_of_scope.topics: each topic is a class of the model, and the best of
 * the out-of-scope classes stands for "out of scope" (the others are left
 * out of the softmax). All examples in one topic answer exactly as the
 * same examples untopiced; with two topics, a message like one topic's
 * examples is still out of scope, and an intent's situation is not. */
#define TOPIC_BOT_HEAD                                                                                              \
    "bot: {name: topics, languages: [ru]}\n"                                                                        \
    "intents:\n"                                                                                                    \
    "  late: {patterns: ['\\bгде\\b'], examples: ['жду посылку уже третью неделю',\n"   \
    "         'посылка до сих пор едет', 'курьер так и не привез']}\n"         \
    "  refund: {patterns: ['\\bвозврат~'], examples: ['пуговица оторвалась сразу',\n" \
    "         'на рукаве дырка и пятно', 'прислали не тот цвет']}\n"            \
    "out_of_scope:\n"
#define TOPIC_TRAINS "'электричку опять отменили', 'поезд опаздывает на час'"
#define TOPIC_BANKS "'банк заблокировал карту', 'приложение банка не открывается'"

static void test_out_of_scope_topics(void **state)
{
    (void)state;
    ef_bot *pooled = load_text(TOPIC_BOT_HEAD "  examples: [" TOPIC_TRAINS ", " TOPIC_BANKS "]\n");
    ef_bot *one =
        load_text(TOPIC_BOT_HEAD "  topics:\n    all: [" TOPIC_TRAINS ", " TOPIC_BANKS "]\n");
    ef_bot *two = load_text(TOPIC_BOT_HEAD "  topics:\n    trains: [" TOPIC_TRAINS
                                           "]\n    banks: [" TOPIC_BANKS "]\n");
    assert_int_equal(pooled->model.n_classes, 2 + 1 + 1);
    assert_int_equal(one->model.n_classes, 2 + 2 + 1);
    assert_int_equal(two->model.n_classes, 2 + 3 + 1);
    assert_int_equal(two->n_oos_topics, 2);
    assert_string_equal(two->oos_topics[1], "banks");
    float score[8];
    static const char *const msgs[] = {"электричку отменили опять", "банк не открывается",
                                       "посылка едет третью неделю", "пуговица оторвалась",
                                       "поезд и банк"};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        const char *t = msgs[i];
        uint32_t c1, c2;
        double p1 = -1, p2 = -2;
        int r1 = ef_nlp__model_classify(&pooled->model, t, strlen(t), score, NULL, &c1, &p1);
        int r2 = ef_nlp__model_classify(&one->model, t, strlen(t), score, NULL, &c2, &p2);
        assert_int_equal(r1, r2);
        if (r1 == 0 && (c1 != c2 || p1 != p2))
            fail_msg("'%s': pooled %u %.6f, one topic %u %.6f", t, c1, p1, c2, p2);
    }
    uint32_t cls;
    double p;
    /* (classify() wants the intents' examples to know the message: the
     * "something else" answer is model_other()'s) */
    const char *t = "банк не открывается";
    assert_int_equal(ef_nlp__model_other(&two->model, t, strlen(t), score, NULL, &p), 0);
    assert_true(p > 0.5);
    t = "электричку отменили опять";
    assert_int_equal(ef_nlp__model_other(&two->model, t, strlen(t), score, NULL, &p), 0);
    t = "посылка до сих пор едет";
    assert_int_equal(ef_nlp__model_classify(&two->model, t, strlen(t), score, NULL, &cls, &p), 0);
    assert_int_equal(cls, 0);
    assert_int_equal(ef_nlp__model_other(&two->model, t, strlen(t), score, NULL, &p), EF_ENOTFOUND);
    /* a topic's examples are examples of fallback for bot check */
    ef_bot_example ex;
    size_t n = ef_bot_example_count(two);
    assert_int_equal(n, 6 + 4);
    assert_int_equal(ef_bot_example_get(two, n - 1, &ex), 0);
    assert_string_equal(ex.intent, EF_NLP_FALLBACK);
    ef_bot_free(pooled);
    ef_bot_free(one);
    ef_bot_free(two);
}

/* A bot with model_threshold 1 never takes the model's word. */
static void test_threshold(void **state)
{
    (void)state;
    char path[] = "/tmp/ef_model_off_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    assert_non_null(fp);
    fputs("bot: {name: off, languages: [ru], model_threshold: 1}\n"
          "intents:\n"
          "  a: {patterns: ['\\bааа\\b'], examples: ['ааа', 'пуговица оторвалась']}\n"
          "  b: {patterns: ['\\bббб\\b'], examples: ['ббб', 'посылка едет долго']}\n",
          fp);
    fclose(fp);
    char err[1024];
    ef_bot *bot = NULL;
    int rc = ef_bot_load(path, &bot, err, sizeof(err));
    remove(path);
    if (rc != 0)
        fail_msg("%s", err);
    assert_true(ef_bot_model_threshold(bot) == 1.0);
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    ef_nlu_result r;
    const char *t = "пуговица оторвалась у пальто";
    assert_int_equal(ef_nlp_match(bot, sc, t, strlen(t), FX_NOW, &r), 0);
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
    assert_false(r.by_model);
    ef_nlp_scratch_free(sc);
    ef_bot_free(bot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_model_answers_a_situation, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rules_win, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_out_of_scope_stays_fallback, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_option_off, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_classify, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_latin_letters, fx_setup, fx_teardown),
        cmocka_unit_test(test_threshold),
        cmocka_unit_test(test_model_arbitrates_close_rules),
        cmocka_unit_test_setup_teardown(test_other, fx_setup, fx_teardown),
        cmocka_unit_test(test_other_than_same),
        cmocka_unit_test_setup_teardown(test_word_memo, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_weak_rule_vetoed, fx_setup, fx_teardown),
        cmocka_unit_test(test_request_after_small_talk),
        cmocka_unit_test(test_out_of_scope_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
