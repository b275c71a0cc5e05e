/*
 * test_entities_v5.c -- the entity forms of issue 12's sixth session
 * (src/nlp/entities.c): order numbers typed in groups after an order's cue,
 * the first end of ranges of days, amounts and hours, and a day's ordinal
 * word alone after a preposition ("к двадцатому").
 *
 * "Now" is 2026-03-10T12:00:00+03:00, a Tuesday, in Europe/Moscow. The
 * sentences are this file's own (not lines of the evaluation sets).
 */
#include "nlp/nlp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nlp_fixture.h"

#include "entity_expect.h"

#define NOW 1773133200 /* 2026-03-10T12:00:00+03:00, Tuesday */

static void expect(const char *text, const char *type, const char *value, const char *span)
{
    ent_expect(ent_bot, ent_sc, NOW, text, type, value, span);
}

static void expect_none(const char *text, const char *type)
{
    ent_expect_none(ent_bot, ent_sc, NOW, text, type);
}

static void test_grouped_order_numbers(void **state)
{
    (void)state;
    expect("заказ № 31 07 442 потерялся", "order_number", "3107442", "31 07 442");
    expect("по заказу 5 120 330 ничего", "order_number", "5120330", "5 120 330");
    expect("#12 34 56 где", "order_number", "123456", "12 34 56");
    expect("заказ номер 40 50 60 70", "order_number", "40506070", "40 50 60 70");
    /* "номер" alone is also a phone's word; an amount or a count is longer */
    expect("мой номер 916 222 33 44", "phone", "+79162223344", NULL);
    expect_none("мой номер 916 222 33 44", "order_number");
    expect("по заказу 2 500 рублей вернули", "money", "2500.00 RUB", NULL);
    expect_none("по заказу 2 500 рублей вернули", "order_number");
    expect_none("заказ 12 марта", "order_number");
    expect_none("заказала 3 44 штуки", "order_number");
}

static void test_ranges(void **state)
{
    (void)state;
    /* days: the month (and year) of the second end */
    expect("в отпуске с 16 по 22 марта", "date", "2026-03-16", "16");
    expect("в отпуске с 16 по 22 марта", "date", "2026-03-22", NULL);
    expect("дома 7-9 апреля", "date", "2026-04-07", "7");
    expect("с 29 по 2 апреля", "date", "2026-03-29", "29");
    expect_none("с 5 по 10 пункт", "date");
    /* amounts: the currency or the thousands of the second */
    expect("платье за 2500-3500 руб", "money", "2500.00 RUB", "2500");
    expect("от 700 до 900 рублей", "money", "700.00 RUB", "700");
    expect("бюджет 4–6 тыс", "money", "4000.00 RUB", "4");
    expect_none("размеры 44-46 есть", "money");
    /* hours said without a word for the hour */
    expect("буду дома с 11 до 14", "time", "11:00", "11");
    expect("буду дома с 11 до 14", "time", "14:00", "14");
    expect("с 7 до 10 вечера", "time", "19:00", "7");
    expect_none("детям с 3 до 7 лет", "time");
    expect("с 14 до 10", "number", "14", "14"); /* no range: the first is no hour */
}

static void test_ordinal_alone(void **state)
{
    (void)state;
    expect("к двадцатому успеете?", "date", "2026-03-20", NULL);
    expect("до тридцатого можно вернуть", "date", "2026-03-30", NULL);
    expect("к двадцать третьему", "date", "2026-03-23", NULL);
    expect("до двадцать восьмого ждать?", "date", "2026-03-28", NULL);
    expect("ко двенадцатому", "date", "2026-03-12", NULL);
    /* before a noun that agrees with it, the word is no day */
    expect_none("к двадцатому дому", "date");
    expect_none("до десятого этажа", "date");
    expect_none("двадцатому клиенту скидка", "date");
}

static void test_kopecks_weeks_months_phones(void **state)
{
    (void)state;
    /* kopecks after rubles; a lone "к" before a word is the preposition */
    expect("вернули 99 руб 50 коп", "money", "99.50 RUB", "99 руб 50 коп");
    expect("списали 1299 р 90 к", "money", "1299.90 RUB", NULL);
    expect("1299 р 90 к оплате", "money", "1299.00 RUB", NULL);
    /* the week or month before the last */
    expect("в позапрошлый вторник заказала", "date", "2026-02-24", NULL);
    expect("на позапрошлой неделе", "date", "2026-02-23", NULL);
    /* a month's end or start: the next such month, or the last one in the past */
    expect("до конца марта успеете?", "date", "2026-03-31", NULL);
    expect("в начале апреля приеду", "date", "2026-04-01", NULL);
    expect("в конце января заказывала", "date", "2026-01-31", NULL);
    expect_none("до конца света", "date");
    /* the year's letter glued on */
    expect("12.03.2026г заказала", "date", "2026-03-12", "12.03.2026г");
    /* a whole hour said bare at the end of a phrase or before a word that
     * goes with a time; not before a noun */
    expect("привезите завтра в 10", "time", "10:00", "10");
    expect("работаете до 18?", "time", "18:00", "18");
    expect("после 19 удобно", "time", "19:00", "19");
    expect_none("в 10 раз дороже", "time");
    expect_none("в 2 экземплярах", "time");
    expect_none("заказала в 2023", "time");
    /* dots between a phone's digits */
    expect("тел 8.916.123.45.67", "phone", "+79161234567", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grouped_order_numbers),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_ordinal_alone),
        cmocka_unit_test(test_kopecks_weeks_months_phones),
    };
    return cmocka_run_group_tests(tests, ent_setup, ent_teardown);
}
