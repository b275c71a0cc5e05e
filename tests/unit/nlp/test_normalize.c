/*
 * test_normalize.c -- the repair stage (src/nlp/normalize.c): keyboard
 * layout, transliteration and spelling repair, each explained in the
 * result, with offsets into the message as sent; what must stay as it is
 * (English words, correct Russian words the bot does not know, clean
 * messages); and that EF_NLP_NO_REPAIR turns it off.
 *
 * Uses the demo bot (bots/demo.yaml, bot.dictionary: ru_RU, en_US: needs
 * the hunspell-ru and hunspell-en-us packages). Run from the repository
 * root, as make does.
 */
#include "nlp/nlp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define FX_BOT "../../../bots/demo.yaml"
#include "nlp_fixture.h"

#define NOW FX_NOW

/* text is understood as intent, and its first repair reads `from` as `to`
 * for reason `kind`. */
static void expect_repair(fx *f, const char *text, const char *intent, const char *from,
                          const char *to, const char *kind)
{
    ef_nlu_result r = fx_run(f, text);
    if (strcmp(r.intent, intent) != 0)
        fail_msg("'%s': want %s, got %s", text, intent, r.intent);
    for (size_t i = 0; i < r.n_repairs; i++)
        if (strcmp(r.repairs[i].from, from) == 0) {
            assert_string_equal(r.repairs[i].to, to);
            assert_string_equal(r.repairs[i].kind, kind);
            return;
        }
    fail_msg("'%s': no repair of '%s' (%zu repairs)", text, from, r.n_repairs);
}

static void test_layout(void **state)
{
    fx *f = *state;
    expect_repair(f, "ljcnfdrf", "delivery", "ljcnfdrf", "доставка", "layout");
    expect_repair(f, "cgfcb,j", "thanks", "cgfcb,j", "спасибо", "layout");
    expect_repair(f, "ult vjq pfrfp", "order_status", "ult", "где", "layout");
    /* the repair's offsets are those of the word in the message as sent */
    ef_nlu_result r = fx_run(f, "  ljcnfdrf");
    assert_int_equal(r.n_repairs, 1);
    assert_int_equal(r.repairs[0].start, 2);
    assert_int_equal(r.repairs[0].end, 10);
}

static void test_translit(void **state)
{
    fx *f = *state;
    expect_repair(f, "vernite dengi", "returns", "vernite", "верните", "translit");
    expect_repair(f, "vernite dengi", "returns", "dengi", "деньги", "translit");
    /* 4 as ч, j as ж, w as щ, an apostrophe as ь */
    expect_repair(f, "4to s moim zakazom", "order_status", "4to", "что", "translit");
    expect_repair(f, "jdu posylku uje nedelu", "order_status", "jdu", "жду", "translit");
    expect_repair(f, "vewi ne podoshli", "returns", "vewi", "вещи", "translit");
    expect_repair(f, "kur'er ne priehal", "order_status", "kur'er", "курьер", "translit");
    /* the bot's own Latin word, in a message read as transliterated */
    expect_repair(f, "gde moi shtany", "order_status", "gde", "где", "translit");
    /* sch as сч, -tsya as -тся; a Latin message none of whose words was
     * transliterated first is read again when two or more are Latin */
    expect_repair(f, "schet ne oplachivaetsya", "payment_problem", "schet", "счет", "translit");
    expect_repair(f, "net spasibo ne nado", "deny", "net", "нет", "translit");
    /* a whole word with the soft sign left out wins over a stem's reading */
    expect_repair(f, "kurtka malenkaya, hochu pomenyat", "returns", "pomenyat", "поменять",
                  "translit");
    /* a digit between digits is no letter; English stays English, also
     * when one of its words reads as Russian ("kazakhstan") */
    const char *english[] = {"where is my order 4411", "do you ship to kazakhstan"};
    for (size_t k = 0; k < sizeof(english) / sizeof(english[0]); k++) {
        ef_nlu_result r = fx_run(f, english[k]);
        for (size_t i = 0; i < r.n_repairs; i++)
            if (strcmp(r.repairs[i].from, "do") == 0 || strcmp(r.repairs[i].from, "to") == 0 ||
                strcmp(r.repairs[i].from, "my") == 0 || strcmp(r.repairs[i].from, "is") == 0)
                fail_msg("'%s': repaired '%s' -> '%s'", english[k], r.repairs[i].from,
                         r.repairs[i].to);
    }
}

static void test_spelling(void **state)
{
    fx *f = *state;
    expect_repair(f, "где пасылка", "order_status", "пасылка", "посылка", "spelling");
    expect_repair(f, "атмените заказ", "cancel_order", "атмените", "отмените", "spelling");
    expect_repair(f, "када приедет заказ", "order_status", "када", "когда", "spelling");
    /* a slip that starts with a stem of the bot (достав~) is still a slip
     * of another of its entries when no dictionary knows it */
    expect_repair(f, "посылка не доставелн", "order_status", "доставелн", "доставлен", "spelling");
    /* a word glued to the next: "не" is never dropped ("непроходит" had
     * been read as "проходит") */
    expect_repair(f, "заказ непришел", "order_status", "непришел", "не пришел", "spelling");
    expect_repair(f, "гдемой заказ", "order_status", "гдемой", "где мой", "spelling");
    expect_repair(f, "курьер неприехал", "order_status", "неприехал", "не приехал", "spelling");
    /* a real word read by a stem is left alone */
    ef_nlu_result r = fx_run(f, "доставщик нагрубил");
    for (size_t i = 0; i < r.n_repairs; i++)
        fail_msg("repaired '%s' -> '%s'", r.repairs[i].from, r.repairs[i].to);
}

static void test_left_alone(void **state)
{
    fx *f = *state;
    /* English words and correct Russian words are never repaired */
    ef_nlu_result r = fx_run(f, "it cost 20 dollars");
    for (size_t i = 0; i < r.n_repairs; i++)
        fail_msg("repaired '%s' -> '%s'", r.repairs[i].from, r.repairs[i].to);
    r = fx_run(f, "у меня кот заболел");
    assert_string_equal(r.intent, "fallback");
    assert_int_equal(r.n_repairs, 0);
    /* a clean message is matched once, as written */
    r = fx_run(f, "где мой заказ");
    assert_string_equal(r.intent, "order_status");
    assert_int_equal(r.n_repairs, 0);
}

/* An e-mail address or a URL is the customer's own text: no word of it is
 * repaired ("ghbdtn" in the address would read as a greeting), while the
 * same word outside it still is. */
static void test_addresses_are_never_repaired(void **state)
{
    fx *f = *state;
    static const char *const texts[] = {"ghbdtn@yandex.ru это моя почта",
                                        "моя почта ivan.petrov@mail.ru", "почта ivan@почта.рф",
                                        "зайдите на https://ghbdtn.ru/ljcnfdrf"};
    for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
        ef_nlu_result r = fx_run(f, texts[t]);
        for (size_t i = 0; i < r.n_repairs; i++)
            fail_msg("'%s': repaired '%s' -> '%s'", texts[t], r.repairs[i].from, r.repairs[i].to);
        assert_string_not_equal(r.intent, "greeting");
    }
    expect_repair(f, "ghbdtn, моя почта ghbdtn@yandex.ru", "greeting", "ghbdtn", "привет",
                  "layout");
    ef_nlu_result r = fx_run(f, "ghbdtn, моя почта ghbdtn@yandex.ru");
    assert_int_equal(r.n_repairs, 1);
}

static void test_json_lists_repairs(void **state)
{
    fx *f = *state;
    ef_nlu_result r = fx_run(f, "ljcnfdrf");
    char *j = ef_nlu_result_json(&r);
    assert_non_null(strstr(j, "\"repairs\": [{\"from\": \"ljcnfdrf\", \"to\": \"доставка\", "
                              "\"kind\": \"layout\", \"start\": 0, \"end\": 8}]"));
    ef_free(j);
    r = fx_run(f, "где мой заказ");
    j = ef_nlu_result_json(&r);
    assert_null(strstr(j, "repairs"));
    ef_free(j);
}

static void test_no_repair_option(void **state)
{
    fx *f = *state;
    ef_nlp_scratch_set_options(f->sc, EF_NLP_NO_REPAIR);
    ef_nlu_result r = fx_run(f, "ljcnfdrf");
    assert_string_equal(r.intent, "fallback");
    assert_int_equal(r.n_repairs, 0);
    ef_nlp_scratch_set_options(f->sc, 0);
}

/* The dictionary answers a scratch remembers (and forgets when its memo
 * fills up) change nothing: every message reads as it does when the
 * dictionaries are asked each time. */
static void test_word_memo_same_results(void **state)
{
    fx *f = *state;
    ef_nlp_scratch *cold = ef_nlp_scratch_new(f->bot);
    ef_nlp_scratch_set_options(cold, EF_NLP_NO_WORD_MEMO);
    static const char *const texts[] = {
        "ljcnfdrf",
        "vernite dengi",
        "где пасылка",
        "атмените заказ",
        "хочу аформить вазврат",
        "не праходит аплата",
        "asdfgh",
        "а вы с какого города отправляете",
        "tomorrow at 6pm works",
    };
    char text[128];
    for (int round = 0; round < 3000; round++) {
        /* made-up words fill the memo past its size (it empties itself) */
        if (round % 2)
            snprintf(text, sizeof(text), "закак%d привет%d qwe%d", round, round * 7, round * 3);
        else
            snprintf(text, sizeof(text), "%s", texts[round % 9]);
        ef_nlu_result a, b;
        assert_int_equal(ef_nlp_match(f->bot, f->sc, text, strlen(text), NOW, &a), 0);
        assert_int_equal(ef_nlp_match(f->bot, cold, text, strlen(text), NOW, &b), 0);
        char *ja = ef_nlu_result_json(&a), *jb = ef_nlu_result_json(&b);
        assert_string_equal(ja, jb);
        ef_free(ja);
        ef_free(jb);
    }
    ef_nlp_scratch_free(cold);
}

/* Every field of two results, the explanation included. */
static void assert_same_result(const char *text, const ef_nlu_result *a, const ef_nlu_result *b)
{
    char *ja = ef_nlu_result_json(a), *jb = ef_nlu_result_json(b);
    if (strcmp(ja, jb) != 0)
        fail_msg("'%s':\n%s\n%s", text, ja, jb);
    ef_free(ja);
    ef_free(jb);
    assert_true(a->confidence == b->confidence);
    assert_int_equal(a->n_ranked, b->n_ranked);
    for (size_t i = 0; i < a->n_ranked; i++) {
        assert_true(a->ranked[i].confidence == b->ranked[i].confidence);
        assert_ptr_equal(a->ranked[i].pattern, b->ranked[i].pattern);
        assert_int_equal(a->ranked[i].line, b->ranked[i].line);
    }
    assert_ptr_equal(a->lang, b->lang);
    assert_true(a->model_confidence == b->model_confidence);
}

/* What the repair stage's first pass made of each word (kept as written,
 * or repaired: its kind and reading), remembered per scratch
 * (EF_NLP__KWORDS slots, a later word taking an earlier one's slot): a
 * message of words seen before reads exactly as with a scratch that
 * remembers nothing (EF_NLP_NO_WORD_MEMO), whichever words were kept,
 * repaired by layout, transliteration or spelling, split, or counted as
 * English or as Russian in Latin letters ("spasibo", "gde"). Messages are
 * made of a few words drawn from a list (a fixed sequence), so that words
 * come back in other company. */
static void test_kept_word_memo_same_results(void **state)
{
    fx *f = *state;
    ef_nlp_scratch *cold = ef_nlp_scratch_new(f->bot);
    ef_nlp_scratch_set_options(cold, EF_NLP_NO_WORD_MEMO);
    static const char *const words[] = {
        "где",          "мой",      "заказ",       "пасылка",  "посылка",   "когда",
        "придет",       "верните",  "деньги",      "vernite",  "dengi",     "gde",
        "moy",          "zakaz",    "spasibo",     "hello",    "where",     "is",
        "my",           "order",    "ljcnfdrf",    "cgfcb,j",  "ult",       "vjq",
        "pfrfp",        "атмените", "хочу",        "аформить", "вазврат",   "не",
        "праходит",     "аплата",   "net",         "est",      "sposibo",   "kogda",
        "pridet",       "posylka",  "холодильник", "сломался", "у",         "меня",
        "размер",       "подошел",  "непришел",    "скока",    "стоит",     "доставка",
        "ivan@mail.ru", "12",       "4to",         "xo4u",     "доставелн", "privet",
        "zdravstvuyte",
    };
    const size_t nw = sizeof(words) / sizeof(words[0]);
    uint32_t seed = 12345;
    char text[256];
    for (int round = 0; round < 4000; round++) {
        size_t o = 0, k = 1 + round % 4;
        for (size_t j = 0; j < k; j++) {
            seed = seed * 1103515245u + 12345u;
            o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s", j ? " " : "",
                                  words[(seed >> 16) % nw]);
        }
        ef_nlu_result a, b;
        assert_int_equal(ef_nlp_match(f->bot, f->sc, text, strlen(text), NOW, &a), 0);
        assert_int_equal(ef_nlp_match(f->bot, cold, text, strlen(text), NOW, &b), 0);
        assert_same_result(text, &a, &b);
    }
    ef_nlp_scratch_free(cold);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_translit),
        cmocka_unit_test(test_spelling),
        cmocka_unit_test(test_left_alone),
        cmocka_unit_test(test_addresses_are_never_repaired),
        cmocka_unit_test(test_json_lists_repairs),
        cmocka_unit_test(test_no_repair_option),
        cmocka_unit_test(test_word_memo_same_results),
        cmocka_unit_test(test_kept_word_memo_same_results),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
