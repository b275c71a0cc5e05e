/*
 * test_entities.c -- built-in and custom entities (src/nlp/entities.c):
 * normalized values and byte offsets into the original text, in Russian and
 * English, with emoji and odd spaces around them.
 *
 * "Now" is fixed at 2026-03-10T12:00:00+03:00, a Tuesday, in the bots'
 * timezone Europe/Moscow. Fixtures: tests/unit/nlp/fixtures/entities_*.yaml.
 */
#include "nlp/nlp.h"
#include "nlp/nlp_int.h"

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

static int64_t now = NOW;

static int setup(void **state)
{
    now = NOW;
    return ent_setup(state);
}

static ef_nlu_result run(const char *text)
{
    return ent_run(ent_bot, ent_sc, now, text);
}

/* text must hold an entity of type with value, covering exactly the first
 * occurrence of span in text (byte offsets). */
static void expect(const char *text, const char *type, const char *value, const char *span)
{
    ent_expect(ent_bot, ent_sc, now, text, type, value, span);
}

/* text must hold exactly this one entity and nothing else. */
static void expect_only(const char *text, const char *type, const char *value, const char *span)
{
    expect(text, type, value, span);
    ef_nlu_result r = run(text);
    if (r.n_entities != 1) {
        ent_dump(text, &r);
        fail_msg("\"%s\": want only %s, got %zu entities", text, type, r.n_entities);
    }
}

static void expect_none(const char *text, const char *type)
{
    ent_expect_none(ent_bot, ent_sc, now, text, type);
}

/* ---- phone ---------------------------------------------------------------- */

static void test_phone(void **state)
{
    (void)state;
    expect_only("📞 +7 916 123-45-67", "phone", "+79161234567", "+7 916 123-45-67");
    expect_only("звоните 8 (916) 123 45 67!", "phone", "+79161234567", "8 (916) 123 45 67");
    expect_only("мой номер 89161234567", "phone", "+79161234567", "89161234567");
    expect_only("+7(916)1234567", "phone", "+79161234567", "+7(916)1234567");
    expect_only("😊 7 916 1234567 это я", "phone", "+79161234567", "7 916 1234567");
    expect_only("Горячая линия: 8-800-555-35-35", "phone", "+78005553535", "8-800-555-35-35");
    expect_only("London +44 20 7946 0958", "phone", "+442079460958", "+44 20 7946 0958");
    expect_only("call me at +1 (202) 555-0123", "phone", "+12025550123", "+1 (202) 555-0123");
    /* a phone and a date side by side stay two entities */
    expect("+7 916 123 45 67 12 марта", "phone", "+79161234567", "+7 916 123 45 67");
    expect("+7 916 123 45 67 12 марта", "date", "2026-03-12", "12 марта");
    /* too short, too long, not a phone */
    expect_none("+7 916 123", "phone");
    expect_none("891612345678", "phone");
    expect_none("+7916123456789", "phone");
    expect_none("+1234567890123456", "phone");
    expect_none("12345678901", "phone");
    expect_none("80012345678", "phone"); /* 8 0.. is no Russian area code */
    /* a Russian mobile number without +7 or 8 */
    expect_only("мой номер 9161234567", "phone", "+79161234567", "9161234567");
    expect_only("перезвоните 916 123 45 67", "phone", "+79161234567", "916 123 45 67");
    expect_only("тел. 916-123-45-67", "phone", "+79161234567", "916-123-45-67");
    expect_none("4951234567", "phone");  /* not a mobile number: a number */
    expect_none("91612345678", "phone"); /* 11 digits without 7 or 8 */
    expect_none("916123456", "phone");   /* 9 digits */
    /* after "заказ" or "№" ten digits are an order number */
    expect_only("заказ 9161234567", "order_number", "9161234567", "9161234567");
}

/* ---- email -------------------------------------------------------------------- */

static void test_email(void **state)
{
    (void)state;
    expect_only("✉️ Ivan.Petrov@Mail.RU", "email", "ivan.petrov@mail.ru",
                "Ivan.Petrov@Mail.RU");
    expect_only("почта: anna_k+shop@yandex.ru.", "email", "anna_k+shop@yandex.ru",
                "anna_k+shop@yandex.ru");
    expect_only("пишите на info@магазин.рф", "email", "info@магазин.рф", "info@магазин.рф");
    expect_none("@username", "email");
    expect_none("a@b", "email");
    expect_none("test@localhost", "email");
    expect_none("x@y.z1", "email");
}

/* ---- order numbers -------------------------------------------------------------- */

static void test_order_number(void **state)
{
    (void)state;
    /* Cyrillic А typed on a Russian keyboard comes out Latin */
    expect_only("🛍 заказ А-1042", "order_number", "A-1042", "А-1042");
    expect_only("order a-1042 please", "order_number", "A-1042", "a-1042");
    expect_only("B77001", "order_number", "B77001", "B77001");
    expect_only("📦87654321-0012-1", "order_number", "87654321-0012-1", "87654321-0012-1");
    expect_only("отправление 87654321-0012", "order_number", "87654321-0012", "87654321-0012");
    expect_none("A-12", "order_number");
    expect_none("ABC-1042", "order_number");
    expect_none("87654321-0012-123", "order_number");
    /* bare digits after заказ (any form), №, # or номер */
    expect_only("Где мой заказ 123456?", "order_number", "123456", "123456");
    expect_only("заказ 1042 где он", "order_number", "1042", "1042");
    expect_only("по заказу № 44190 вопрос", "order_number", "44190", "44190");
    expect_only("где мой №58213", "order_number", "58213", "58213");
    expect_only("заказ номер 7734521 не пришел", "order_number", "7734521", "7734521");
    expect_only("номер заказа 5512093", "order_number", "5512093", "5512093");
    expect_only("заказ #123456", "order_number", "123456", "123456");
    expect_none("заказ 42", "order_number");           /* too short */
    expect_none("заказ 12.03 пришел", "order_number"); /* a date */
    expect_none("заказ на 500 рублей", "order_number");
    expect_none("купил 123456 штук", "order_number");   /* no cue */
    expect_none("заказ 1234567890123", "order_number"); /* too long */

    /* bot.order_number_pattern replaces the default */
    ef_bot *custom = load("fixtures/entities_order.yaml");
    ef_nlp_scratch *csc = ef_nlp_scratch_new(custom);
    const char *t = "🙂 Заказ № WB1234567 не пришел, A-1042";
    ef_nlu_result r;
    assert_int_equal(ef_nlp_match(custom, csc, t, strlen(t), NOW, &r), 0);
    const ef_nlu_entity *e = ef_nlu_result_entity(&r, "order_number");
    assert_non_null(e);
    assert_string_equal(e->value, "WB1234567");
    assert_int_equal(e->start, strstr(t, "Заказ") - t);
    assert_int_equal(e->end, strstr(t, " не") - t);
    assert_int_equal(r.n_entities, 2); /* and A-1042 is now just a number */
    assert_string_equal(r.entities[1].type, "number");
    assert_string_equal(r.entities[1].value, "1042");
    ef_nlp_scratch_free(csc);
    ef_bot_free(custom);
}

/* ---- money ---------------------------------------------------------------------- */

static void test_money(void **state)
{
    (void)state;
    expect_only("💰 1 500 ₽", "money", "1500.00 RUB", "1 500 ₽");
    expect_only("итого 1\xC2\xA0"
                "500 ₽",
                "money", "1500.00 RUB",
                "1\xC2\xA0"
                "500 ₽");
    expect_only("1\xE2\x80\x89"
                "500 руб",
                "money", "1500.00 RUB",
                "1\xE2\x80\x89"
                "500 руб");
    expect_only("1500 руб.", "money", "1500.00 RUB", "1500 руб");
    expect_only("заплатил 1500 рублей", "money", "1500.00 RUB", "1500 рублей");
    expect_only("1500р", "money", "1500.00 RUB", "1500р");
    expect_only("1,5 тыс. рублей", "money", "1500.00 RUB", "1,5 тыс. рублей");
    expect_only("2 млн руб", "money", "2000000.00 RUB", "2 млн руб");
    expect_only("15к рублей", "money", "15000.00 RUB", "15к рублей");
    expect_only("99,90 ₽", "money", "99.90 RUB", "99,90 ₽");
    expect_only("it costs $20", "money", "20.00 USD", "$20");
    expect_only("20 долларов", "money", "20.00 USD", "20 долларов");
    expect_only("20$", "money", "20.00 USD", "20$");
    expect_only("$1,500.50", "money", "1500.50 USD", "$1,500.50");
    expect_only("$1.5k", "money", "1500.00 USD", "$1.5k");
    expect_only("€15", "money", "15.00 EUR", "€15");
    expect_only("15 евро", "money", "15.00 EUR", "15 евро");
    expect_only("20 bucks", "money", "20.00 USD", "20 bucks");
    expect_none("1500 рубашек", "money");
    expect_none("15 кг", "money");
}

/* The value of a money entity is the amount as "%lld.%02lld CODE" prints
 * it (entities.c writes the digits itself): amounts of every length, with
 * and without kopecks, up to the largest it reads. */
static void test_money_values(void **state)
{
    (void)state;
    static const long long units[] = {0,
                                      1,
                                      7,
                                      10,
                                      99,
                                      100,
                                      999,
                                      1000,
                                      12345,
                                      99999,
                                      100000,
                                      1234567,
                                      99999999,
                                      1000000000LL,
                                      123456789012LL,
                                      9999999999999LL};
    char text[64], want[64], span[64];
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        for (int k = 0; k < 3; k++) {
            static const int kop[] = {0, 5, 90};
            if (k == 0) {
                snprintf(text, sizeof(text), "итого %lld руб", units[i]);
                snprintf(span, sizeof(span), "%lld руб", units[i]);
            } else {
                snprintf(text, sizeof(text), "итого %lld,%02d руб", units[i], kop[k]);
                snprintf(span, sizeof(span), "%lld,%02d руб", units[i], kop[k]);
            }
            snprintf(want, sizeof(want), "%lld.%02lld RUB", units[i], (long long)kop[k]);
            expect_only(text, "money", want, span);
        }
    }
}

/* Amounts in words, and thousands without a currency word: rubles. */
static void test_money_words(void **state)
{
    (void)state;
    expect_only("отдала за платье 4к", "money", "4000.00 RUB", "4к");
    expect_only("стоит 7k", "money", "7000.00 RUB", "7k");
    expect_only("вернули 12 тыс", "money", "12000.00 RUB", "12 тыс");
    expect_only("за пальто отдал косарь", "money", "1000.00 RUB", "косарь");
    expect_only("дайте скидку хоть тысячу", "money", "1000.00 RUB", "тысячу");
    expect_only("списали три тысячи", "money", "3000.00 RUB", "три тысячи");
    expect_only("полторы тысячи за доставку", "money", "1500.00 RUB", "полторы тысячи");
    expect_only("двести рублей сверху", "money", "200.00 RUB", "двести рублей");
    expect_only("двадцать две тысячи пятьсот рублей", "money", "22500.00 RUB",
                "двадцать две тысячи пятьсот рублей");
    expect_none("приеду к 5 к пятнице", "money"); /* "к" is a preposition here */
    expect_none("две куртки и три шапки", "money");
}

/* Relative dates: shifts, the tense of the clause, a day of the month. */
static void test_date_shifts_and_tense(void **state)
{
    (void)state; /* now: Tuesday 2026-03-10 */
    expect_only("верните через пять дней", "date", "2026-03-15", "через пять дней");
    expect_only("через 10 дней уже не нужно", "date", "2026-03-20", "через 10 дней");
    expect_only("через месяц", "date", "2026-04-10", "через месяц");
    expect_only("спустя две недели", "date", "2026-03-24", "спустя две недели");
    expect_only("4 дня назад", "date", "2026-03-06", "4 дня назад");
    expect_only("две недели назад получила", "date", "2026-02-24", "две недели назад");
    expect_only("месяц назад", "date", "2026-02-10", "месяц назад");
    expect_only("до среды успеете?", "date", "2026-03-11", "среды");
    expect_only("к четвергу", "date", "2026-03-12", "четвергу");
    /* a past-tense verb in the clause: the last such weekday */
    expect_only("в среду отправили", "date", "2026-03-04", "среду");
    expect_only("курьер приходил в субботу", "date", "2026-03-07", "субботу");
    expect_only("во вторник оформил", "date", "2026-03-03", "вторник");
    expect_only("в среду отправьте", "date", "2026-03-11", "среду");
    expect_only("в четверг, если можно", "date", "2026-03-12", "четверг");
    /* ... but not across a clause boundary */
    expect_only("заказала давно, привезите в субботу", "date", "2026-03-14", "субботу");
    /* a day of the month alone */
    expect_only("доставьте 25-го", "date", "2026-03-25", "25-го");
    expect_only("доставьте 3-го", "date", "2026-04-03", "3-го");
    expect_only("оплатила 5-го числа", "date", "2026-03-05", "5-го числа");
    expect_only("получила 28 числа", "date", "2026-02-28", "28 числа");
    expect_none("мне 25 лет", "date");
}

/* An e-mail at a Cyrillic domain with a Cyrillic local part. */
static void test_email_cyrillic(void **state)
{
    (void)state;
    expect_only("пишите: оля.смирнова@магазин.рф", "email", "оля.смирнова@магазин.рф",
                "оля.смирнова@магазин.рф");
}

/* ---- date ------------------------------------------------------------------------ */

static void test_date_relative(void **state)
{
    (void)state;
    expect_only("🗓 сегодня", "date", "2026-03-10", "сегодня");
    expect_only("Вчера", "date", "2026-03-09", "Вчера");
    expect_only("приеду завтра", "date", "2026-03-11", "завтра");
    expect_only("послезавтра", "date", "2026-03-12", "послезавтра");
    expect_only("позавчера", "date", "2026-03-08", "позавчера");
    expect_only("today", "date", "2026-03-10", "today");
    expect_only("Tomorrow please", "date", "2026-03-11", "Tomorrow");
    expect_only("yesterday", "date", "2026-03-09", "yesterday");
    expect_only("zavtra", "date", "2026-03-11", "zavtra");
}

static void test_date_absolute(void **state)
{
    (void)state;
    expect_only("12.03", "date", "2026-03-12", "12.03");
    expect_only("до 12.03.2026", "date", "2026-03-12", "12.03.2026");
    expect_only("12.03.26", "date", "2026-03-12", "12.03.26");
    expect_only("12/03/2026", "date", "2026-03-12", "12/03/2026");
    expect_only("2026-03-12", "date", "2026-03-12", "2026-03-12");
    expect_only("🎂 12 марта", "date", "2026-03-12", "12 марта");
    expect_only("12-го марта", "date", "2026-03-12", "12-го марта");
    expect_only("5 января 2027 года", "date", "2027-01-05", "5 января 2027");
    static const char *const months[12] = {"января",   "февраля", "марта",  "апреля",
                                           "мая",      "июня",    "июля",   "августа",
                                           "сентября", "октября", "ноября", "декабря"};
    for (int m = 0; m < 12; m++) {
        char text[64], want[16];
        snprintf(text, sizeof(text), "1 %s", months[m]);
        snprintf(want, sizeof(want), "2026-%02d-01", m + 1);
        expect_only(text, "date", want, text);
    }
    expect_only("3 апр", "date", "2026-04-03", "3 апр");
    expect_only("в марте, 7 март", "date", "2026-03-07", "7 март");
    expect_only("March 12", "date", "2026-03-12", "March 12");
    expect_only("on 12 March", "date", "2026-03-12", "12 March");
    expect_only("March 12th, 2027", "date", "2027-03-12", "March 12th, 2027");
    expect_only("the 1st of May", "date", "2026-05-01", "1st of May");
    expect_none("31.02.2026", "date");
    expect_none("32 марта", "date");
    expect_none("1.5 литра", "date");
}

static void test_date_weekdays(void **state)
{
    (void)state;
    /* Tuesday 2026-03-10: a plain weekday is the next one, today included */
    expect_only("в понедельник", "date", "2026-03-16", "понедельник");
    expect_only("во вторник", "date", "2026-03-10", "вторник");
    expect_only("в среду", "date", "2026-03-11", "среду");
    expect_only("в четверг", "date", "2026-03-12", "четверг");
    expect_only("в пятницу", "date", "2026-03-13", "пятницу");
    expect_only("в субботу", "date", "2026-03-14", "субботу");
    expect_only("в воскресенье", "date", "2026-03-15", "воскресенье");
    /* next / last: that weekday of the next / previous week */
    expect_only("в следующую пятницу", "date", "2026-03-20", "следующую пятницу");
    expect_only("в прошлую пятницу", "date", "2026-03-06", "прошлую пятницу");
    expect_only("on Friday", "date", "2026-03-13", "Friday");
    expect_only("next monday", "date", "2026-03-16", "next monday");
    expect_only("last sunday", "date", "2026-03-08", "last sunday");
}

/* The local date comes from the bot's timezone: 22:30 UTC on the 10th is
 * already 01:30 on the 11th in Moscow. */
static void test_date_in_bot_timezone(void **state)
{
    (void)state;
    now = 1773181800; /* 2026-03-10T22:30:00Z */
    expect_only("сегодня", "date", "2026-03-11", "сегодня");
    expect_only("завтра", "date", "2026-03-12", "завтра");
    expect_only("в среду", "date", "2026-03-11", "среду");
    now = 1773176400; /* 2026-03-10T21:00:00Z = 2026-03-11T00:00:00+03:00 */
    expect_only("сегодня", "date", "2026-03-11", "сегодня");
    now = 1773176399; /* one second earlier: still the 10th */
    expect_only("сегодня", "date", "2026-03-10", "сегодня");
    now = NOW;
}

/* ---- time ------------------------------------------------------------------------ */

static void test_time(void **state)
{
    (void)state;
    expect_only("⏰ 18:30", "time", "18:30", "18:30");
    expect_only("в 18.30", "time", "18:30", "18.30");
    expect_only("приходите в 6 вечера", "time", "18:00", "6 вечера");
    expect_only("в 9 утра", "time", "09:00", "9 утра");
    expect_only("в полдень", "time", "12:00", "полдень");
    expect_only("в полночь", "time", "00:00", "полночь");
    expect_only("в 2 часа дня", "time", "14:00", "2 часа дня");
    expect_only("в 5 часов вечера", "time", "17:00", "5 часов вечера");
    expect_only("в 18 часов", "time", "18:00", "18 часов");
    expect_only("в 11 ночи", "time", "23:00", "11 ночи");
    expect_only("at 6pm", "time", "18:00", "6pm");
    expect_only("6 pm", "time", "18:00", "6 pm");
    expect_only("6:30 PM", "time", "18:30", "6:30 PM");
    expect_only("11 a.m.", "time", "11:00", "11 a.m.");
    expect_only("12am", "time", "00:00", "12am");
    expect_only("noon", "time", "12:00", "noon");
    expect(" с 10.00 до 18.00", "time", "10:00", "10.00");
    expect(" с 10.00 до 18.00", "time", "18:00", "18.00");
    expect_none("18.30", "time");          /* no preposition: a decimal */
    expect_none("доставка 2 дня", "time"); /* a duration */
    expect_none("25:00", "time");
    expect_none("через 18 часов", "time");
}

/* ---- numbers and overlaps ----------------------------------------------------------- */

static void test_number(void **state)
{
    (void)state;
    expect_only("42", "number", "42", "42");
    expect_only("🔥 3,5 кг", "number", "3.5", "3,5");
    expect_only("-7 градусов", "number", "-7", "-7");
    expect_only("007", "number", "7", "007");
    expect_only("купил 2 футболки", "number", "2", "2");
    ef_nlu_result r = run("размеры 42 44 46");
    assert_int_equal(r.n_entities, 3);
    expect_none("iphone15", "number");
}

static void test_overlaps(void **state)
{
    (void)state;
    /* longer and more specific wins: none of these is also numbers */
    expect_only("+7 916 123-45-67", "phone", "+79161234567", "+7 916 123-45-67");
    expect_only("12.03.2026", "date", "2026-03-12", "12.03.2026");
    expect_only("1 500 ₽", "money", "1500.00 RUB", "1 500 ₽");
    expect_only("12.03 руб", "money", "12.03 RUB", "12.03 руб");
    /* several entities in one message, in text order, offsets past emoji */
    const char *t =
        "🔥 Заказ А-1042 на 1 500 ₽, тел +7 916 123-45-67, завтра в 18:30 "
        "📦";
    ef_nlu_result r = run(t);
    static const char *const types[] = {"order_number", "money", "phone", "date", "time"};
    assert_int_equal(r.n_entities, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(r.entities[i].type, types[i]);
    expect(t, "time", "18:30", "18:30");
    expect(t, "date", "2026-03-11", "завтра");
}

/* ---- custom entities -------------------------------------------------------------------- */

static void test_custom_entities(void **state)
{
    (void)state;
    expect_only("заказала на ВБ 🛒", "marketplace", "wildberries", "ВБ");
    expect_only("на Вайлдберриз", "marketplace", "wildberries", "Вайлдберриз");
    expect_only("купил на озоне", "marketplace", "ozon", "озоне"); /* stem озон~ */
    expect_only("есть на Яндекс  Маркет?", "marketplace", "yandex market", "Яндекс  Маркет");
    expect_none("вбить гвоздь", "marketplace");
    /* regex: the group "value", as the customer wrote it */
    expect_only("😍 артикул 1234567", "sku", "1234567", "артикул 1234567");
    expect_only("арт. 55555 есть?", "sku", "55555", "арт. 55555");
    expect_only("доставка в г. Москва", "city", "г. Москва", "г. Москва");
    expect_only("живу в Питере", "city", "Питере", "Питере");
    expect_only("г. Орёл", "city", "г. Орёл", "г. Орёл"); /* matched as орел, kept as written */
    /* the custom entity is longer than the number inside it */
    expect_none("арт. 55555", "number");
}

/* Every keyword the scanner knows is found by its look-up: the map of
 * signatures that rejects most words before they are hashed never rejects
 * one of them. */
static void test_keywords_found(void **state)
{
    (void)state;
    assert_int_equal(ef_nlp__keywords_missed(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_order_number),
        cmocka_unit_test(test_money),
        cmocka_unit_test(test_money_values),
        cmocka_unit_test(test_money_words),
        cmocka_unit_test(test_date_shifts_and_tense),
        cmocka_unit_test(test_email_cyrillic),
        cmocka_unit_test(test_date_relative),
        cmocka_unit_test(test_date_absolute),
        cmocka_unit_test(test_date_weekdays),
        cmocka_unit_test(test_date_in_bot_timezone),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_number),
        cmocka_unit_test(test_overlaps),
        cmocka_unit_test(test_custom_entities),
        cmocka_unit_test(test_keywords_found),
    };
    return cmocka_run_group_tests(tests, setup, ent_teardown);
}
