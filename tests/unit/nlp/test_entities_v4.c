/*
 * test_entities_v4.c -- the entity forms of issue 12's fourth round
 * (src/nlp/entities.c): order numbers after "N", "No", a colon or a dash and
 * in lists, phones with an area code after a phone's word, amounts with "с
 * половиной", "пол тысячи" and a rest after the thousands, weeks and months
 * ("на следующей неделе"), weekday abbreviations, days as ordinal words and
 * "к 25 числу", and that a repaired word never changes an e-mail address
 * or an order code.
 *
 * "Now" is 2026-03-10T12:00:00+03:00, a Tuesday, in Europe/Moscow. The
 * sentences are this file's own (not lines of the evaluation sets).
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
#include <unistd.h>

#include <cmocka.h>

#include "nlp_fixture.h"

#include "entity_expect.h"

#define NOW 1773133200 /* 2026-03-10T12:00:00+03:00, Tuesday */

static ef_nlu_result run_with(ef_bot *b, ef_nlp_scratch *s, const char *text)
{
    return ent_run(b, s, NOW, text);
}

/* text (read by the entity test bot) holds an entity of type with value. */
static void expect(const char *text, const char *type, const char *value)
{
    ent_expect(ent_bot, ent_sc, NOW, text, type, value, NULL);
}

static void expect_none(const char *text, const char *type)
{
    ent_expect_none(ent_bot, ent_sc, NOW, text, type);
}

/* ---- order numbers ---------------------------------------------------------------- */

static void test_order_cues(void **state)
{
    (void)state;
    expect("заказ N 558812 не пришел", "order_number", "558812");
    expect("Заказ No. 44120", "order_number", "44120");
    expect("номер заказа: 3321190", "order_number", "3321190");
    expect("заказ - 7781230 отмените", "order_number", "7781230");
    expect("заказ — 7781231", "order_number", "7781231"); /* an em dash */
    expect("заказ №: 99120", "order_number", "99120");
    expect("заказ под номером 661020", "order_number", "661020");
    expect("order number 55012", "order_number", "55012");
    /* a list after one cue */
    expect("заказы 400100, 400101 и 400102", "order_number", "400100");
    expect("заказы 400100, 400101 и 400102", "order_number", "400101");
    expect("заказы 400100, 400101 и 400102", "order_number", "400102");
    expect("по заказам 7001 / 7002", "order_number", "7002");
    /* no cue, or not an order's number */
    expect_none("купила 3 штуки и 123456 раз пожалела", "order_number");
    expect_none("под 12345 ничего нет", "order_number");
    expect_none("телефон 89161234567 и 89161234568", "order_number");
    expect_none("дом 12, кв 345", "order_number");
}

/* ---- phones ------------------------------------------------------------------------- */

static void test_phone_area_codes(void **state)
{
    (void)state;
    expect("рабочий телефон (495) 111-22-33", "phone", "+74951112233");
    expect("тел. 3452 12 34 56", "phone", "+73452123456");
    expect("звоните 8432001122", "phone", "+78432001122");
    expect("контакты: 499 123-45-67", "phone", "+74991234567");
    expect("WhatsApp: 9035551122", "phone", "+79035551122");
    /* without a phone's word ten digits of an area code are no phone */
    expect_none("артикул 4951234567", "phone");
    expect_none("4951234567", "phone");
    /* after "заказ" they are the order's number */
    expect_none("номер заказа 4951234567", "phone");
}

/* ---- money ------------------------------------------------------------------------- */

static void test_money_halves_and_rests(void **state)
{
    (void)state;
    expect("отдал три с половиной тысячи", "money", "3500.00 RUB");
    expect("стоит 6 с половиной тыс", "money", "6500.00 RUB");
    expect("пол тысячи за доставку", "money", "500.00 RUB");
    expect("еще полтысячи сверху", "money", "500.00 RUB");
    expect("списали 3 тысячи 200 рублей", "money", "3200.00 RUB");
    expect("итого 2 тыс 750", "money", "2750.00 RUB");
    expect("1 тысяча 990 р", "money", "1990.00 RUB");
    /* a half alone, a rest that is something else */
    expect_none("через 2 с половиной часа", "money");
    expect_none("упало на пол", "money");
    expect("5 тысяч 12 марта", "money", "5000.00 RUB");
    expect("5 тысяч 12 марта", "date", "2026-03-12");
}

/* ---- dates ------------------------------------------------------------------------- */

static void test_weeks_and_months(void **state)
{
    (void)state;
    /* the first day of the week (Monday) or month named */
    expect("привезите на следующей неделе", "date", "2026-03-16");
    expect("на прошлой неделе звонила", "date", "2026-03-02");
    expect("на этой неделе успеете?", "date", "2026-03-09");
    expect("до следующей недели", "date", "2026-03-16");
    expect("на той неделе заказывала", "date", "2026-03-02");
    expect("в следующем месяце", "date", "2026-04-01");
    expect("в прошлом месяце купила", "date", "2026-02-01");
    /* a weekday in the week named */
    expect("в четверг на следующей неделе", "date", "2026-03-19");
    expect("в среду следующей недели", "date", "2026-03-18");
    expect("на следующей неделе во вторник", "date", "2026-03-17");
    expect("в понедельник на прошлой неделе отправили", "date", "2026-03-02");
    expect("в пятницу на этой неделе", "date", "2026-03-13");
    /* a week that is a count is a shift, not a period */
    expect("через неделю", "date", "2026-03-17");
    expect("две недели назад", "date", "2026-02-24");
}

static void test_weekday_words(void **state)
{
    (void)state;
    expect("в сб привезите", "date", "2026-03-14");
    expect("до пн подождите", "date", "2026-03-16");
    expect("во вт заказала", "date", "2026-03-03");
    expect("к следующему четвергу", "date", "2026-03-19");
    expect("в след. пятницу", "date", "2026-03-20");
    expect("в прошлом четверге дело", "date", "2026-03-05");
    expect("ко следующей среде", "date", "2026-03-18");
    /* an abbreviation alone is a word: "ср" and "вс" are also short words */
    expect_none("ср пн", "date");
    expect_none("что пт", "date");
    /* the slips customers make in the day words */
    expect("привезите завтро", "date", "2026-03-11");
    expect("послезавтро удобно", "date", "2026-03-12");
    expect("вчира пришло", "date", "2026-03-09");
}

static void test_days_of_month(void **state)
{
    (void)state;
    expect("к 28 числу", "date", "2026-03-28");
    expect("до 3-го числа", "date", "2026-04-03");
    expect("к 12-му", "date", "2026-03-12");
    expect("к 12-му числу", "date", "2026-03-12");
    expect("привезите 12-ого", "date", "2026-03-12");
    expect("оплатила 5-ого", "date", "2026-03-05");
    expect("оплатила 14-ого", "date", "2026-02-14"); /* the last 14th */
    expect_none("ко 2-му подъезду", "date");
    /* ordinal words */
    expect("седьмого апреля", "date", "2026-04-07");
    expect("двадцать третьего февраля заказала", "date", "2026-02-23");
    expect("тридцатого числа", "date", "2026-03-30");
    expect("к восьмому числу", "date", "2026-04-08");
    expect("первого числа оплатила", "date", "2026-03-01");
    expect_none("второго размера нет, марта", "date");
    /* numeric with dashes only with the year */
    expect("14-03-2026", "date", "2026-03-14");
    expect_none("14-03", "date");
    /* a count after its unit */
    expect("недели две назад", "date", "2026-02-24");
    expect("дней пять назад", "date", "2026-03-05");
}

static void test_time_hours(void **state)
{
    (void)state;
    expect("к 16 часам", "time", "16:00");
    expect("до 9 часам", "time", "09:00");
    /* a dash between hour and minutes, after a preposition */
    expect("в 19-30 буду дома", "time", "19:30");
    expect("с 9-00 до 13-00", "time", "13:00");
    expect_none("19-30", "time");
    expect_none("в 12-03-2026", "time"); /* a date */
}

static void test_period_edges(void **state)
{
    (void)state;
    expect("к концу недели", "date", "2026-03-15");
    expect("до конца месяца", "date", "2026-03-31");
    expect("в конце следующей недели", "date", "2026-03-22");
    expect("в начале следующего месяца", "date", "2026-04-01");
    expect_none("в конце концов", "date");
    expect("за подъем взяли пятихатку", "money", "500.00 RUB");
}

/* What the word pass finds never depends on the prefilter: a form whose
 * words are no gate words themselves is read only with a gate literal
 * inside it. */
static void test_prefilter_changes_nothing(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "12 марта, следующую пт",
        "в пт привезите 5 штук",
        "следующую неделю 3 дня",
        "к двадцатому 15 марта",
        "пятнадцатого 12 шт",
        "на следующей неделе 7к",
        "в эти выходные 18:00",
        "к концу недели 2 шт",
        "эти недели 12.03",
        "третьего мая 2026",
        "следующая неделя 5",
        "во вт и в ср 10:00",
        "ср 12 пн 13",
        "тридцать первого числа",
        "до конца этого месяца",
        "in 2 days",
        "2 days ago",
        "in a week please",
        "in two weeks",
        "пол тысячи 5",
        "сто р",
    };
    ef_nlp_scratch *all = ef_nlp_scratch_new(ent_bot);
    ef_nlp_scratch_set_options(all, EF_NLP_NO_PREFILTER);
    const char *bad = NULL;
    for (size_t k = 0; k < sizeof(texts) / sizeof(texts[0]) && !bad; k++) {
        ef_nlu_result a = run_with(ent_bot, ent_sc, texts[k]), b = run_with(ent_bot, all, texts[k]);
        bool same = a.n_entities == b.n_entities;
        for (size_t i = 0; same && i < a.n_entities; i++)
            same = strcmp(a.entities[i].type, b.entities[i].type) == 0 &&
                   strcmp(a.entities[i].value, b.entities[i].value) == 0;
        if (!same) {
            ent_dump(texts[k], &a);
            ent_dump(texts[k], &b);
            bad = texts[k];
        }
    }
    ef_nlp_scratch_free(all);
    if (bad)
        fail_msg("\"%s\": entities differ with and without the prefilter", bad);
}

static void test_weekends(void **state)
{
    (void)state;
    /* the weekend is read as its Saturday, by the rules of a weekday */
    expect("привезите на выходных", "date", "2026-03-14");
    expect("в эти выходные", "date", "2026-03-14");
    expect("на следующих выходных", "date", "2026-03-21");
    expect("на выходных приходил курьер", "date", "2026-03-07");
    expect("на прошлых выходных", "date", "2026-03-07");
    expect_none("у вас выходной?", "date");
}

/* ---- a repair never changes an address or a code ----------------------------------- */

static const char repair_bot[] = "bot:\n"
                                 "  name: repair-entities\n"
                                 "  languages: [ru]\n"
                                 "intents:\n"
                                 "  greeting:\n"
                                 "    patterns: ['\\bпривет\\b']\n"
                                 "    examples: ['привет']\n"
                                 "  who:\n"
                                 "    patterns: ['\\bиван\\b', '\\bзаказ\\b', '\\bвб\\b']\n"
                                 "    examples: ['иван', 'заказ', 'вб']\n";

static void test_repair_keeps_addresses(void **state)
{
    (void)state;
    ef_bot *b = load_text(repair_bot);
    ef_nlp_scratch *s = ef_nlp_scratch_new(b);
    static const struct {
        const char *text, *type, *value, *repaired;
    } cases[] = {
        /* the message is understood through a repair of the same word */
        {"ghbdtn@yandex.ru ghbdtn", "email", "ghbdtn@yandex.ru", "привет"},
        {"ivan@почта.рф ivan", "email", "ivan@почта.рф", "иван"},
        {"Zakaz2024@Mail.ru zakaz", "email", "zakaz2024@mail.ru", "заказ"},
        {"wb-44821 wb", "order_number", "WB-44821", "вб"},
    };
    size_t bad = SIZE_MAX;
    bool repaired = true;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && bad == SIZE_MAX; i++) {
        ef_nlu_result r = run_with(b, s, cases[i].text);
        repaired = false;
        for (size_t k = 0; k < r.n_repairs; k++)
            repaired = repaired || strcmp(r.repairs[k].to, cases[i].repaired) == 0;
        if (!repaired || !ent_has(&r, cases[i].text, cases[i].type, cases[i].value, NULL)) {
            ent_dump(cases[i].text, &r);
            bad = i;
        }
    }
    ef_nlp_scratch_free(s);
    ef_bot_free(b);
    if (bad != SIZE_MAX && !repaired)
        fail_msg("\"%s\": the test wants a repair to %s", cases[bad].text, cases[bad].repaired);
    if (bad != SIZE_MAX)
        fail_msg("\"%s\": want %s %s as written", cases[bad].text, cases[bad].type,
                 cases[bad].value);
}

/* ef_nlp__address_end(): the tokens the repair stage must leave alone. */
static void test_address_tokens(void **state)
{
    (void)state;
    static const struct {
        const char *text, *at, *token; /* token NULL: at is in none */
    } cases[] = {
        {"пишите на ivan.petrov@mail.ru пожалуйста", "petrov", "ivan.petrov@mail.ru"},
        {"почта ivan@почта.рф.", "ivan", "ivan@почта.рф"},
        {"ссылка https://www.wildberries.ru/catalog/vozvrat/detail.aspx тут", "vozvrat",
         "https://www.wildberries.ru/catalog/vozvrat/detail.aspx"},
        {"www.ozon.ru/t/abc", "ozon", "www.ozon.ru/t/abc"},
        {"смотрите ozon.ru/t/zakaz", "zakaz", "ozon.ru/t/zakaz"},
        {"(anna@mail.ru)", "anna", "anna@mail.ru"},
        {"ghbdtn vjq pfrfp", "pfrfp", NULL},
        {"hf,jnf.n lj crjkmrj", "jnf", NULL}, /* layout: "работают до скольки" */
        {"привет.как дела", "как", NULL},
        {"@username", "username", NULL},
        {"a@b", "b", NULL},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const char *t = cases[k].text;
        size_t i = (size_t)(strstr(t, cases[k].at) - t);
        size_t end = ef_nlp__address_end(t, strlen(t), i);
        if (!cases[k].token) {
            if (end != 0)
                fail_msg("\"%s\": \"%s\" is in no address, got end %zu", t, cases[k].at, end);
            continue;
        }
        size_t want = (size_t)(strstr(t, cases[k].token) - t) + strlen(cases[k].token);
        if (end != want)
            fail_msg("\"%s\": want the address to end at %zu, got %zu", t, want, end);
    }
    assert_int_equal(ef_nlp__address_end("x y", 3, 1), 0); /* a space */
    assert_int_equal(ef_nlp__address_end(NULL, 0, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_cues),
        cmocka_unit_test(test_phone_area_codes),
        cmocka_unit_test(test_money_halves_and_rests),
        cmocka_unit_test(test_weeks_and_months),
        cmocka_unit_test(test_weekday_words),
        cmocka_unit_test(test_days_of_month),
        cmocka_unit_test(test_time_hours),
        cmocka_unit_test(test_weekends),
        cmocka_unit_test(test_period_edges),
        cmocka_unit_test(test_prefilter_changes_nothing),
        cmocka_unit_test(test_repair_keeps_addresses),
        cmocka_unit_test(test_address_tokens),
    };
    return cmocka_run_group_tests(tests, ent_setup, ent_teardown);
}
