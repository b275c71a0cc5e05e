/*
 * entities.c -- built-in and custom entities, normalized.
 *
 * Every recognizer reads the normalized message (lowercase, ё -> е, one
 * space between words, typographic dashes as '-': see match.c) and adds
 * candidates with offsets into it; match.c maps them back to byte offsets
 * of the original text. Overlaps are then resolved: the longer candidate
 * wins, and on equal length the more specific type (custom, email, phone,
 * order_number, money, date, time, number, in that order), so a phone
 * number is never also three numbers and "1 500 ₽" is one money entity.
 *
 * Normalized values:
 *   phone         E.164: "+79161234567" (Russian +7 / 8 / 7 forms with
 *                 spaces, dashes, brackets; other countries need a '+')
 *   email         lowercased
 *   order_number  uppercased, spaces removed, Cyrillic letters that look
 *                 Latin written Latin ("а-1042" -> "A-1042")
 *   money         "1500.00 RUB", "20.00 USD", "15.00 EUR"
 *   date          ISO "2026-03-12", relative words resolved in the bot's
 *                 timezone; a plain weekday is the next such day, today
 *                 included ("в пятницу" on a Friday is today); with
 *                 "следующий" / "next" it is that weekday of next week
 *                 (Monday to Sunday), with "прошлый" / "last" of the
 *                 previous week; a date without a year is in the current
 *                 year; a week or a month named ("на следующей неделе",
 *                 "в прошлом месяце") is its first day (Monday, the 1st),
 *                 and a weekday in a week named is that week's ("во
 *                 вторник на следующей неделе")
 *   time          "18:30" (24-hour, zero-padded)
 *   number        digits with an optional decimal part: "42", "1.5", "-3"
 *
 * Cost: every recognizer is gated by a byte test done in one pass (a digit,
 * '@', a currency sign) or by the prefilter's word gate (a date or time
 * keyword occurs), so a message without any of them costs one scan.
 *
 * Thread model: the keyword table is built once (pthread_once) and read-only
 * afterwards; everything else lives in the caller's scratch.
 */
#include "nlp/nlp_int.h"

#include "base/time.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const ef_nlp__builtin_names[EF_NLP__ENT__BUILTIN] = {
    "phone", "email", "order_number", "money", "date", "time", "number"};

enum {
    RANK_CUSTOM = 0,
    RANK_EMAIL,
    RANK_PHONE,
    RANK_ORDER,
    RANK_MONEY,
    RANK_DATE,
    RANK_TIME,
    RANK_NUMBER
};

/* ---- keywords ----------------------------------------------------------- */

enum {
    KW_RELDAY = 1, /* value: days from today */
    KW_WEEKDAY,    /* 0 = Monday .. 6 = Sunday */
    KW_MONTH,      /* 1..12 */
    KW_NEXT,
    KW_LAST,
    KW_THIS,
    KW_DAYPART, /* 1 morning, 2 afternoon, 3 evening, 4 night */
    KW_NOON,
    KW_MIDNIGHT,
    KW_HOUR, /* "часов" */
    KW_AMPM, /* 0 am, 1 pm */
    KW_PREP, /* a preposition that announces a time: в, к, до, at, by */
    KW_CUR,  /* 0 RUB, 1 USD, 2 EUR */
    KW_MULT, /* 1000, 1000000 */
    KW_OF,
    KW_ORD,   /* ordinal suffix: st nd rd th го е */
    KW_SHIFT, /* "через" / "спустя" (+1), "назад" (-1) */
    KW_UNIT, /* a span of days: день 1, неделя 7, месяц 30 (months counted as such) */
    KW_NUMW,    /* a number word: "два" 2, "сто" 100; "полтора" NUMW_HALF */
    KW_DAYW,    /* "числа" after a day of the month */
    KW_WDABBR,  /* "пн", "пт": a weekday abbreviated, only after в/до/к... */
    KW_PERIOD,  /* "неделе" 7, "месяце" 30: "на следующей неделе" */
    KW_THAT,    /* "той": "на той неделе", the tense decides which */
    KW_ORDW,    /* the stem of a day's ordinal word: "пятнадцат" 15 */
    KW_WEEKEND, /* "выходные": the weekend, read as its Saturday */
    KW_LAST2,   /* "позапрошлый": the week (month) before the last */
    KW_KINDS    /* how many kinds there are (plus one: they start at 1) */
};

#define NUMW_HALF (-15) /* "полтора", "полторы": one and a half */
#define NUMW_POL (-5)   /* "пол": a half, as in "пол тысячи" */
#define UNIT_MONTH 30
#define UNIT_YEAR 365

typedef struct kwdef {
    const char *w;
    int kind;
    int val;
} kwdef;

static const kwdef keywords[] = {
    {"сегодня", KW_RELDAY, 0},
    {"седня", KW_RELDAY, 0},
    {"завтра", KW_RELDAY, 1},
    {"вчера", KW_RELDAY, -1},
    {"послезавтра", KW_RELDAY, 2},
    {"позавчера", KW_RELDAY, -2},
    /* the slips customers make in them most */
    {"завтро", KW_RELDAY, 1},
    {"послезавтро", KW_RELDAY, 2},
    {"вчира", KW_RELDAY, -1},
    {"позавчира", KW_RELDAY, -2},
    {"сегоня", KW_RELDAY, 0},
    {"сегодя", KW_RELDAY, 0},
    {"today", KW_RELDAY, 0},
    {"tonight", KW_RELDAY, 0},
    {"tomorrow", KW_RELDAY, 1},
    {"tmrw", KW_RELDAY, 1},
    {"yesterday", KW_RELDAY, -1},
    {"segodnya", KW_RELDAY, 0},
    {"segodnia", KW_RELDAY, 0},
    {"zavtra", KW_RELDAY, 1},
    {"vchera", KW_RELDAY, -1},
    {"poslezavtra", KW_RELDAY, 2},
    {"pozavchera", KW_RELDAY, -2},

    {"понедельник", KW_WEEKDAY, 0},
    {"вторник", KW_WEEKDAY, 1},
    {"среда", KW_WEEKDAY, 2},
    {"среду", KW_WEEKDAY, 2},
    {"четверг", KW_WEEKDAY, 3},
    {"пятница", KW_WEEKDAY, 4},
    {"пятницу", KW_WEEKDAY, 4},
    {"суббота", KW_WEEKDAY, 5},
    {"субботу", KW_WEEKDAY, 5},
    {"воскресенье", KW_WEEKDAY, 6},
    /* the other cases: "к понедельнику", "до пятницы", "о среде" */
    {"понедельнику", KW_WEEKDAY, 0},
    {"понедельника", KW_WEEKDAY, 0},
    {"понедельнике", KW_WEEKDAY, 0},
    {"вторнику", KW_WEEKDAY, 1},
    {"вторника", KW_WEEKDAY, 1},
    {"вторнике", KW_WEEKDAY, 1},
    {"среде", KW_WEEKDAY, 2},
    {"среды", KW_WEEKDAY, 2},
    {"четвергу", KW_WEEKDAY, 3},
    {"четверга", KW_WEEKDAY, 3},
    {"четверге", KW_WEEKDAY, 3},
    {"пятнице", KW_WEEKDAY, 4},
    {"пятницы", KW_WEEKDAY, 4},
    {"субботе", KW_WEEKDAY, 5},
    {"субботы", KW_WEEKDAY, 5},
    {"воскресенью", KW_WEEKDAY, 6},
    {"воскресенья", KW_WEEKDAY, 6},
    {"monday", KW_WEEKDAY, 0},
    {"tuesday", KW_WEEKDAY, 1},
    {"wednesday", KW_WEEKDAY, 2},
    {"thursday", KW_WEEKDAY, 3},
    {"friday", KW_WEEKDAY, 4},
    {"saturday", KW_WEEKDAY, 5},
    {"sunday", KW_WEEKDAY, 6},
    {"выходные", KW_WEEKEND, 5},
    {"выходных", KW_WEEKEND, 5},
    {"выходным", KW_WEEKEND, 5},
    {"weekend", KW_WEEKEND, 5},
    {"пн", KW_WDABBR, 0},
    {"вт", KW_WDABBR, 1},
    {"ср", KW_WDABBR, 2},
    {"чт", KW_WDABBR, 3},
    {"пт", KW_WDABBR, 4},
    {"сб", KW_WDABBR, 5},
    {"вс", KW_WDABBR, 6},

    {"следующий", KW_NEXT, 0},
    {"следующую", KW_NEXT, 0},
    {"следующее", KW_NEXT, 0},
    {"следующей", KW_NEXT, 0},
    {"следующему", KW_NEXT, 0},
    {"следующих", KW_NEXT, 0},
    {"прошлых", KW_LAST, 0},
    {"этих", KW_THIS, 0},
    {"эти", KW_THIS, 0},
    {"ближайших", KW_THIS, 0},
    {"ближайшие", KW_THIS, 0},
    {"следующего", KW_NEXT, 0},
    {"следующая", KW_NEXT, 0},
    {"следующем", KW_NEXT, 0},
    {"след", KW_NEXT, 0},
    {"грядущий", KW_NEXT, 0},
    {"грядущей", KW_NEXT, 0},
    {"next", KW_NEXT, 0},
    {"позапрошлый", KW_LAST2, 0},
    {"позапрошлую", KW_LAST2, 0},
    {"позапрошлое", KW_LAST2, 0},
    {"позапрошлой", KW_LAST2, 0},
    {"позапрошлом", KW_LAST2, 0},
    {"позапрошлого", KW_LAST2, 0},
    {"позапрошлых", KW_LAST2, 0},
    {"прошлый", KW_LAST, 0},
    {"прошлую", KW_LAST, 0},
    {"прошлое", KW_LAST, 0},
    {"прошлой", KW_LAST, 0},
    {"прошедший", KW_LAST, 0},
    {"прошедшую", KW_LAST, 0},
    {"прошедшей", KW_LAST, 0},
    {"прошедшем", KW_LAST, 0},
    {"прошлому", KW_LAST, 0},
    {"прошлого", KW_LAST, 0},
    {"прошлая", KW_LAST, 0},
    {"прошлом", KW_LAST, 0},
    {"last", KW_LAST, 0},
    {"этот", KW_THIS, 0},
    {"эту", KW_THIS, 0},
    {"это", KW_THIS, 0},
    {"эта", KW_THIS, 0},
    {"этой", KW_THIS, 0},
    {"этом", KW_THIS, 0},
    {"этому", KW_THIS, 0},
    {"этого", KW_THIS, 0},
    {"текущей", KW_THIS, 0},
    {"текущем", KW_THIS, 0},
    {"ближайшей", KW_THIS, 0},
    {"ближайшем", KW_THIS, 0},
    {"той", KW_THAT, 0},
    {"тот", KW_THAT, 0},
    {"неделе", KW_PERIOD, 7},
    {"неделю", KW_PERIOD, 7},
    {"недели", KW_PERIOD, 7},
    {"week", KW_PERIOD, 7},
    {"месяце", KW_PERIOD, UNIT_MONTH},
    {"месяц", KW_PERIOD, UNIT_MONTH},
    {"месяца", KW_PERIOD, UNIT_MONTH},
    {"month", KW_PERIOD, UNIT_MONTH},
    {"ближайший", KW_THIS, 0},
    {"ближайшую", KW_THIS, 0},
    {"ближайшее", KW_THIS, 0},
    {"this", KW_THIS, 0},
    {"coming", KW_THIS, 0},

    {"январь", KW_MONTH, 1},
    {"января", KW_MONTH, 1},
    {"январе", KW_MONTH, 1},
    {"янв", KW_MONTH, 1},
    {"февраль", KW_MONTH, 2},
    {"февраля", KW_MONTH, 2},
    {"феврале", KW_MONTH, 2},
    {"фев", KW_MONTH, 2},
    {"февр", KW_MONTH, 2},
    {"март", KW_MONTH, 3},
    {"марта", KW_MONTH, 3},
    {"марте", KW_MONTH, 3},
    {"мар", KW_MONTH, 3},
    {"апрель", KW_MONTH, 4},
    {"апреля", KW_MONTH, 4},
    {"апреле", KW_MONTH, 4},
    {"апр", KW_MONTH, 4},
    {"май", KW_MONTH, 5},
    {"мая", KW_MONTH, 5},
    {"мае", KW_MONTH, 5},
    {"июнь", KW_MONTH, 6},
    {"июня", KW_MONTH, 6},
    {"июне", KW_MONTH, 6},
    {"июн", KW_MONTH, 6},
    {"июль", KW_MONTH, 7},
    {"июля", KW_MONTH, 7},
    {"июле", KW_MONTH, 7},
    {"июл", KW_MONTH, 7},
    {"август", KW_MONTH, 8},
    {"августа", KW_MONTH, 8},
    {"августе", KW_MONTH, 8},
    {"авг", KW_MONTH, 8},
    {"сентябрь", KW_MONTH, 9},
    {"сентября", KW_MONTH, 9},
    {"сентябре", KW_MONTH, 9},
    {"сен", KW_MONTH, 9},
    {"сент", KW_MONTH, 9},
    {"октябрь", KW_MONTH, 10},
    {"октября", KW_MONTH, 10},
    {"октябре", KW_MONTH, 10},
    {"окт", KW_MONTH, 10},
    {"ноябрь", KW_MONTH, 11},
    {"ноября", KW_MONTH, 11},
    {"ноябре", KW_MONTH, 11},
    {"ноя", KW_MONTH, 11},
    {"нояб", KW_MONTH, 11},
    {"декабрь", KW_MONTH, 12},
    {"декабря", KW_MONTH, 12},
    {"декабре", KW_MONTH, 12},
    {"дек", KW_MONTH, 12},
    {"january", KW_MONTH, 1},
    {"jan", KW_MONTH, 1},
    {"february", KW_MONTH, 2},
    {"feb", KW_MONTH, 2},
    {"march", KW_MONTH, 3},
    {"mar", KW_MONTH, 3},
    {"april", KW_MONTH, 4},
    {"apr", KW_MONTH, 4},
    {"may", KW_MONTH, 5},
    {"june", KW_MONTH, 6},
    {"jun", KW_MONTH, 6},
    {"july", KW_MONTH, 7},
    {"jul", KW_MONTH, 7},
    {"august", KW_MONTH, 8},
    {"aug", KW_MONTH, 8},
    {"september", KW_MONTH, 9},
    {"sep", KW_MONTH, 9},
    {"sept", KW_MONTH, 9},
    {"october", KW_MONTH, 10},
    {"oct", KW_MONTH, 10},
    {"november", KW_MONTH, 11},
    {"nov", KW_MONTH, 11},
    {"december", KW_MONTH, 12},
    {"dec", KW_MONTH, 12},

    {"утра", KW_DAYPART, 1},
    {"дня", KW_DAYPART, 2},
    {"вечера", KW_DAYPART, 3},
    {"ночи", KW_DAYPART, 4},
    {"полдень", KW_NOON, 0},
    {"noon", KW_NOON, 0},
    {"полночь", KW_MIDNIGHT, 0},
    {"midnight", KW_MIDNIGHT, 0},
    {"час", KW_HOUR, 0},
    {"часа", KW_HOUR, 0},
    {"часов", KW_HOUR, 0},
    {"часам", KW_HOUR, 0},
    {"ч", KW_HOUR, 0},
    {"am", KW_AMPM, 0},
    {"pm", KW_AMPM, 1},

    {"в", KW_PREP, 0},
    {"во", KW_PREP, 0},
    {"к", KW_PREP, 0},
    {"ко", KW_PREP, 0},
    {"до", KW_PREP, 0},
    {"после", KW_PREP, 0},
    {"с", KW_PREP, 0},
    {"со", KW_PREP, 0},
    {"около", KW_PREP, 0},
    {"at", KW_PREP, 0},
    {"by", KW_PREP, 0},
    {"until", KW_PREP, 0},
    {"till", KW_PREP, 0},
    {"before", KW_PREP, 0},
    {"after", KW_PREP, 0},
    {"around", KW_PREP, 0},
    {"from", KW_PREP, 0},

    {"руб", KW_CUR, 0},
    {"рубль", KW_CUR, 0},
    {"рубля", KW_CUR, 0},
    {"рублей", KW_CUR, 0},
    {"р", KW_CUR, 0},
    {"rub", KW_CUR, 0},
    {"rur", KW_CUR, 0},
    {"ruble", KW_CUR, 0},
    {"rubles", KW_CUR, 0},
    {"rouble", KW_CUR, 0},
    {"roubles", KW_CUR, 0},
    {"доллар", KW_CUR, 1},
    {"доллара", KW_CUR, 1},
    {"долларов", KW_CUR, 1},
    {"бакс", KW_CUR, 1},
    {"бакса", KW_CUR, 1},
    {"баксов", KW_CUR, 1},
    {"usd", KW_CUR, 1},
    {"dollar", KW_CUR, 1},
    {"dollars", KW_CUR, 1},
    {"bucks", KW_CUR, 1},
    {"евро", KW_CUR, 2},
    {"eur", KW_CUR, 2},
    {"euro", KW_CUR, 2},
    {"euros", KW_CUR, 2},

    {"тыс", KW_MULT, 1000},
    {"тысяча", KW_MULT, 1000},
    {"тысячи", KW_MULT, 1000},
    {"тысяч", KW_MULT, 1000},
    {"тыщ", KW_MULT, 1000},
    {"тыщи", KW_MULT, 1000},
    {"тыщу", KW_MULT, 1000},
    {"тыща", KW_MULT, 1000},
    {"тысячу", KW_MULT, 1000},
    {"тысячей", KW_MULT, 1000},
    {"тысячами", KW_MULT, 1000},
    {"полтыщи", KW_MULT, 500},
    {"пятихатка", KW_MULT, 500},
    {"пятихатку", KW_MULT, 500},
    {"пятихатки", KW_MULT, 500},
    {"пятихаток", KW_MULT, 500},
    {"полтысячи", KW_MULT, 500},
    {"пол-тыщи", KW_MULT, 500},
    {"пол-тысячи", KW_MULT, 500},
    {"косарь", KW_MULT, 1000},
    {"косаря", KW_MULT, 1000},
    {"косарей", KW_MULT, 1000},
    {"k", KW_MULT, 1000},
    {"к", KW_MULT, 1000},
    {"thousand", KW_MULT, 1000},
    {"млн", KW_MULT, 1000000},
    {"миллион", KW_MULT, 1000000},
    {"миллиона", KW_MULT, 1000000},
    {"миллионов", KW_MULT, 1000000},
    {"mln", KW_MULT, 1000000},
    {"million", KW_MULT, 1000000},

    {"of", KW_OF, 0},
    {"st", KW_ORD, 0},
    {"nd", KW_ORD, 0},
    {"rd", KW_ORD, 0},
    {"th", KW_ORD, 0},
    {"го", KW_ORD, 0},
    {"е", KW_ORD, 0},
    {"ое", KW_ORD, 0},
    {"ого", KW_ORD, 0},
    {"му", KW_ORD, 1},
    {"ому", KW_ORD, 1},

    {"через", KW_SHIFT, 1},
    {"спустя", KW_SHIFT, 1},
    {"назад", KW_SHIFT, -1},
    {"день", KW_UNIT, 1},
    {"дня", KW_UNIT, 1},
    {"дней", KW_UNIT, 1},
    {"денек", KW_UNIT, 1},
    {"денька", KW_UNIT, 1},
    {"деньков", KW_UNIT, 1},
    {"сутки", KW_UNIT, 1},
    {"суток", KW_UNIT, 1},
    {"неделю", KW_UNIT, 7},
    {"недели", KW_UNIT, 7},
    {"недель", KW_UNIT, 7},
    {"неделька", KW_UNIT, 7},
    {"недельку", KW_UNIT, 7},
    {"месяц", KW_UNIT, UNIT_MONTH},
    {"месяца", KW_UNIT, UNIT_MONTH},
    {"месяцев", KW_UNIT, UNIT_MONTH},
    {"год", KW_UNIT, UNIT_YEAR},
    {"года", KW_UNIT, UNIT_YEAR},
    {"лет", KW_UNIT, UNIT_YEAR},
    {"day", KW_UNIT, 1},
    {"days", KW_UNIT, 1},
    {"week", KW_UNIT, 7},
    {"weeks", KW_UNIT, 7},
    {"month", KW_UNIT, UNIT_MONTH},
    {"months", KW_UNIT, UNIT_MONTH},
    {"in", KW_SHIFT, 1},
    {"ago", KW_SHIFT, -1},
    {"числа", KW_DAYW, 0},
    {"числу", KW_DAYW, 0},
    {"число", KW_DAYW, 0},

    {"один", KW_NUMW, 1},
    {"одна", KW_NUMW, 1},
    {"одну", KW_NUMW, 1},
    {"одни", KW_NUMW, 1},
    {"два", KW_NUMW, 2},
    {"две", KW_NUMW, 2},
    {"двух", KW_NUMW, 2},
    {"пару", KW_NUMW, 2},
    {"пара", KW_NUMW, 2},
    {"три", KW_NUMW, 3},
    {"трех", KW_NUMW, 3},
    {"четыре", KW_NUMW, 4},
    {"четырех", KW_NUMW, 4},
    {"пять", KW_NUMW, 5},
    {"пяти", KW_NUMW, 5},
    {"шесть", KW_NUMW, 6},
    {"шести", KW_NUMW, 6},
    {"семь", KW_NUMW, 7},
    {"семи", KW_NUMW, 7},
    {"восемь", KW_NUMW, 8},
    {"восьми", KW_NUMW, 8},
    {"девять", KW_NUMW, 9},
    {"девяти", KW_NUMW, 9},
    {"десять", KW_NUMW, 10},
    {"десяти", KW_NUMW, 10},
    {"одиннадцать", KW_NUMW, 11},
    {"двенадцать", KW_NUMW, 12},
    {"тринадцать", KW_NUMW, 13},
    {"четырнадцать", KW_NUMW, 14},
    {"пятнадцать", KW_NUMW, 15},
    {"шестнадцать", KW_NUMW, 16},
    {"семнадцать", KW_NUMW, 17},
    {"восемнадцать", KW_NUMW, 18},
    {"девятнадцать", KW_NUMW, 19},
    {"двадцать", KW_NUMW, 20},
    {"тридцать", KW_NUMW, 30},
    {"сорок", KW_NUMW, 40},
    {"пятьдесят", KW_NUMW, 50},
    {"шестьдесят", KW_NUMW, 60},
    {"семьдесят", KW_NUMW, 70},
    {"восемьдесят", KW_NUMW, 80},
    {"девяносто", KW_NUMW, 90},
    {"сто", KW_NUMW, 100},
    {"двести", KW_NUMW, 200},
    {"триста", KW_NUMW, 300},
    {"четыреста", KW_NUMW, 400},
    {"пятьсот", KW_NUMW, 500},
    {"шестьсот", KW_NUMW, 600},
    {"семьсот", KW_NUMW, 700},
    {"восемьсот", KW_NUMW, 800},
    {"девятьсот", KW_NUMW, 900},
    {"полтора", KW_NUMW, NUMW_HALF},
    {"полторы", KW_NUMW, NUMW_HALF},
    {"пол", KW_NUMW, NUMW_POL},
    {"one", KW_NUMW, 1},
    {"two", KW_NUMW, 2},
    {"three", KW_NUMW, 3},
    {"four", KW_NUMW, 4},
    {"five", KW_NUMW, 5},

    /* ordinal words of a day, without their ending (ordinal_word()) */
    {"перв", KW_ORDW, 1},
    {"втор", KW_ORDW, 2},
    {"трет", KW_ORDW, 3},
    {"четверт", KW_ORDW, 4},
    {"пят", KW_ORDW, 5},
    {"шест", KW_ORDW, 6},
    {"седьм", KW_ORDW, 7},
    {"восьм", KW_ORDW, 8},
    {"девят", KW_ORDW, 9},
    {"десят", KW_ORDW, 10},
    {"одиннадцат", KW_ORDW, 11},
    {"двенадцат", KW_ORDW, 12},
    {"тринадцат", KW_ORDW, 13},
    {"четырнадцат", KW_ORDW, 14},
    {"пятнадцат", KW_ORDW, 15},
    {"шестнадцат", KW_ORDW, 16},
    {"семнадцат", KW_ORDW, 17},
    {"восемнадцат", KW_ORDW, 18},
    {"девятнадцат", KW_ORDW, 19},
    {"двадцат", KW_ORDW, 20},
    {"тридцат", KW_ORDW, 30},
};

#define N_KEYWORDS (sizeof(keywords) / sizeof(keywords[0]))
#define KW_SLOTS 1024

static uint16_t kw_table[KW_SLOTS]; /* index + 1 into keywords, 0 = empty */
static uint8_t kw_len[N_KEYWORDS];  /* strlen of each keyword (all under 256) */
/* Per kind, a bit for each kw_sig() a keyword of that kind has: a word
 * whose bit is clear is none of them, without hashing it. */
static uint64_t kw_sigs[KW_KINDS][8];
static pthread_once_t kw_once = PTHREAD_ONCE_INIT;

static inline uint32_t kw_hash(const unsigned char *w, size_t n, int kind)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;
    for (size_t i = 0; i < n; i++)
        h = (h ^ w[i]) * 16777619u;
    return h;
}

/* A word's signature for kw_sigs: its length and two of its bytes (the
 * second, which tells Cyrillic letters apart, and the last). */
static inline uint32_t kw_sig(const unsigned char *w, size_t n)
{
    return ((uint32_t)w[n > 1] * 7u + (uint32_t)w[n - 1] * 31u + (uint32_t)n * 131u) & 511u;
}

static void ordinal_gates_build(void);

static void kw_build(void)
{
    ordinal_gates_build();
    for (size_t i = 0; i < N_KEYWORDS; i++) {
        const char *w = keywords[i].w;
        kw_len[i] = (uint8_t)strlen(w);
        uint32_t h = kw_hash((const unsigned char *)w, kw_len[i], keywords[i].kind);
        while (kw_table[h & (KW_SLOTS - 1)])
            h++;
        kw_table[h & (KW_SLOTS - 1)] = (uint16_t)(i + 1);
        uint32_t g = kw_sig((const unsigned char *)w, kw_len[i]);
        kw_sigs[keywords[i].kind][g >> 6] |= (uint64_t)1 << (g & 63);
    }
}

#define KW_NONE INT_MIN

/* The value of word w[0..n) as a keyword of this kind, or KW_NONE. */
static int kw_find(const unsigned char *w, size_t n, int kind)
{
    if (n == 0 || n > 24)
        return KW_NONE;
    uint32_t g = kw_sig(w, n);
    if (!(kw_sigs[kind][g >> 6] >> (g & 63) & 1))
        return KW_NONE;
    uint32_t h = kw_hash(w, n, kind);
    for (;;) {
        uint16_t e = kw_table[h & (KW_SLOTS - 1)];
        if (!e)
            return KW_NONE;
        const kwdef *k = &keywords[e - 1];
        if (k->kind == kind && kw_len[e - 1] == n && memcmp(k->w, w, n) == 0)
            return k->val;
        h++;
    }
}

size_t ef_nlp__keywords_missed(void)
{
    pthread_once(&kw_once, kw_build);
    size_t missed = 0;
    for (size_t i = 0; i < N_KEYWORDS; i++)
        missed +=
            kw_find((const unsigned char *)keywords[i].w, kw_len[i], keywords[i].kind) == KW_NONE;
    return missed;
}

/* Stems that wake the word pass up in a message without a digit: shifts
 * ("через два дня", "неделю назад") and amounts in words: every
 * thousands word money_words_at() counts ("пять тысяч", "тыщу", "два млн",
 * "two thousand") and every currency word but the one-letter "р" ("сто
 * рублей", "сто руб", "пятьсот евро", "сто долларов"); a week or a month
 * after the ending of a word that names which ("на следующей неделе", "в
 * прошлом месяце", "эту неделю"); a weekday abbreviated after the
 * prepositions that announce a day ("в пт", "до пн": the abbreviation
 * alone would wake the pass on every "что"); English units after a word
 * ("in 2 days", "two weeks ago"). The prefilter finds them
 * anywhere in a word, so each is as selective as it can be. */
static const char *const gate_stems[] = {
    "через",        "спустя",       "назад",        "тыс",          "тыщ",
    "косар",        "млн",          "миллион",      "million",      "thousand",
    "полтор",       "руб",          "rub",          "rur",          "roubl",
    "доллар",       "бакс",         "usd",          "dollar",       "buck",
    "евро",         "eur",          " day",         " week",        " month",
    "пятихат",      "конца недел",  "концу недел",  "конце недел",  "конца месяц",
    "концу месяц",  "конце месяц",  "начала недел", "началу недел", "начале недел",
    "начала месяц", "началу месяц", "начале месяц", "выходны",      "weekend",
    "ей недел",     "ой недел",     "ую недел",     "ту недел",     "ем месяц",
    "ом месяц",     "ий месяц",     "ый месяц",     "от месяц",     "его месяц",
    "ого месяц",    "next week",    "last week",    "this week",    "next month",
    "last month",   "в пн",         "в вт",         "во вт",        "в ср",
    "в чт",         "в пт",         "в сб",         "в вс",         "до пн",
    "до вт",        "до ср",        "до чт",        "до пт",        "до сб",
    "до вс",        "к пн",         "ко вт",        "к вт",         "к ср",
    "к чт",         "к пт",         "к сб",         "к вс",         "на пн",
    "на вт",        "на ср",        "на чт",        "на пт",        "на сб",
    "на вс",        "цатому",       "цатого",       "десятому",     "десятого",
    "к двадцать ",  "до двадцать ", "к тридцать ",  "до тридцать ", NULL};

/* A day's ordinal word before a month or "числа" ("пятнадцатого марта",
 * "к пятому числу", "третьего апреля"): its ending, a space and the start
 * of the next word, built once (ordinal_gate). */
static const char *const ord_endings[] = {"ого ", "его ", "ому ", "ему ", "ое ", "ье "};
static const char *const ord_next[] = {"янв", "фев", "мар", "апр", "мая", "июн", "июл",
                                       "авг", "сен", "окт", "ноя", "дек", "числ"};
/* A month's start or end: "до конца февраля", "в начале апреля". */
static const char *const edge_words[] = {"конца ", "концу ", "конце ", "начала ", "начале "};
#define N_ORD_GATES                                                                                \
    (sizeof(ord_endings) / sizeof(ord_endings[0]) * sizeof(ord_next) / sizeof(ord_next[0]) +       \
     sizeof(edge_words) / sizeof(edge_words[0]) * (sizeof(ord_next) / sizeof(ord_next[0]) - 1))
static char ord_gates[N_ORD_GATES][24];

static void ordinal_gates_build(void)
{
    size_t k = 0, ne = sizeof(ord_endings) / sizeof(ord_endings[0]);
    size_t nn = sizeof(ord_next) / sizeof(ord_next[0]);
    for (size_t e = 0; e < ne; e++)
        for (size_t m = 0; m < nn; m++, k++)
            snprintf(ord_gates[k], sizeof(ord_gates[k]), "%s%s", ord_endings[e], ord_next[m]);
    for (size_t e = 0; e < sizeof(edge_words) / sizeof(edge_words[0]); e++)
        for (size_t m = 0; m + 1 < nn; m++, k++) /* the months, not "числ" */
            snprintf(ord_gates[k], sizeof(ord_gates[k]), "%s%s", edge_words[e], ord_next[m]);
}

const char *ef_nlp__gate_word(size_t i)
{
    pthread_once(&kw_once, kw_build);
    size_t seen = 0;
    for (size_t k = 0; k < N_KEYWORDS; k++) {
        int kind = keywords[k].kind;
        if (kind != KW_RELDAY && kind != KW_WEEKDAY && kind != KW_NOON && kind != KW_MIDNIGHT)
            continue;
        if (seen++ == i)
            return keywords[k].w;
    }
    for (size_t k = 0; gate_stems[k]; k++)
        if (seen++ == i)
            return gate_stems[k];
    if (i - seen < N_ORD_GATES)
        return ord_gates[i - seen];
    return NULL;
}

/* Whether one of the gate's literals lies inside [s, e) of the text: a
 * recognizer that reads words which are not gate words themselves
 * ("на следующей неделе", "в пт", "пятнадцатого марта") takes them only
 * then, so that what it finds never depends on which other words woke the
 * word pass up (fuzz_nlp_match compares with and without the prefilter). */
static bool holds(const unsigned char *t, size_t s, size_t e, const char *lit)
{
    size_t l = strlen(lit);
    for (size_t i = s; i + l <= e; i++)
        if (t[i] == (unsigned char)lit[0] && memcmp(t + i, lit, l) == 0)
            return true;
    return false;
}

static bool gated(const unsigned char *t, size_t s, size_t e)
{
    for (size_t k = 0; gate_stems[k]; k++)
        if (holds(t, s, e, gate_stems[k]))
            return true;
    for (size_t k = 0; k < N_ORD_GATES; k++)
        if (holds(t, s, e, ord_gates[k]))
            return true;
    return false;
}

/* ---- e-mail addresses and URLs as tokens ------------------------------------ */

static bool token_gap(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '<' || c == '>' || c == '(' ||
           c == ')' || c == '"' || c == '\'' || c == ',' || c == ';';
}

/* A top-level domain customers write without a scheme ("mail.ru",
 * "ozon.ru/t/x"): a layout-typed word with a '.' inside ("hf,jnf.n") must
 * not pass for a domain. */
static bool known_tld(const unsigned char *t, size_t l)
{
    static const char *const tlds[] = {"ru",   "com", "net", "org", "su",   "info",  "io",
                                       "me",   "by",  "kz",  "ua",  "shop", "store", "online",
                                       "site", "pro", "biz", "рф",  "рус",  NULL};
    for (size_t k = 0; tlds[k]; k++)
        if (strlen(tlds[k]) == l && memcmp(t, tlds[k], l) == 0)
            return true;
    return false;
}

static bool starts(const unsigned char *t, size_t l, const char *p)
{
    size_t pl = strlen(p);
    return l >= pl && memcmp(t, p, pl) == 0;
}

/* t[0..l) is an e-mail address (an '@' with a dotted domain after it) or a
 * URL (a scheme, "www.", or a host with a known top-level domain). */
static bool address_token(const unsigned char *t, size_t l)
{
    const unsigned char *at = memchr(t, '@', l);
    if (at && at > t) {
        const unsigned char *dot = memchr(at, '.', l - (size_t)(at - t));
        return dot && dot > at + 1 && (size_t)(dot - t) + 1 < l;
    }
    if (starts(t, l, "http://") || starts(t, l, "https://") || starts(t, l, "www."))
        return true;
    size_t host = 0; /* the host: up to '/', ':' or '?' */
    while (host < l && t[host] != '/' && t[host] != ':' && t[host] != '?')
        host++;
    size_t dot = host;
    while (dot > 0 && t[dot - 1] != '.')
        dot--;
    return dot > 1 && dot < host && known_tld(t + dot, host - dot);
}

size_t ef_nlp__address_end(const char *text, size_t n, size_t i)
{
    const unsigned char *s = (const unsigned char *)text;
    if (!s || i >= n || token_gap(s[i]))
        return 0;
    size_t a = i, b = i;
    while (a > 0 && !token_gap(s[a - 1]))
        a--;
    while (b < n && !token_gap(s[b]))
        b++;
    while (b > a && (s[b - 1] == '.' || s[b - 1] == '!' || s[b - 1] == '?' || s[b - 1] == ':'))
        b--; /* the sentence's own punctuation */
    if (i >= b || !address_token(s + a, b - a))
        return 0;
    return b;
}

/* ---- scanning helpers ------------------------------------------------------ */

typedef struct scan {
    const ef_bot *bot;
    ef_nlp_scratch *sc;
    const unsigned char *s;
    size_t n;
    int64_t now;
    bool have_today;
    int64_t today; /* days since 1970-01-01 in the bot's timezone */
} scan;

static inline bool dig(const scan *x, size_t i)
{
    return i < x->n && x->s[i] >= '0' && x->s[i] <= '9';
}

static inline bool lead_letter(unsigned char c, unsigned char c2)
{
    /* U+00C0..U+052F: Latin-1 letters up to Cyrillic Supplement */
    if (c == 0xC3)
        return c2 != 0x97 && c2 != 0xB7;
    return c >= 0xC4 && c <= 0xD4;
}

/* A letter starts at i. */
static inline bool letter_at(const scan *x, size_t i)
{
    if (i >= x->n)
        return false;
    unsigned char c = x->s[i];
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return i + 1 < x->n && lead_letter(c, x->s[i + 1]);
}

/* A letter ends just before i. */
static inline bool letter_before(const scan *x, size_t i)
{
    if (i == 0)
        return false;
    unsigned char c = x->s[i - 1];
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    size_t k = i - 1;
    while (k > 0 && (x->s[k] & 0xC0) == 0x80)
        k--;
    return letter_at(x, k);
}

static bool alnum_at(const scan *x, size_t i)
{
    return dig(x, i) || letter_at(x, i);
}

static bool alnum_before(const scan *x, size_t i)
{
    return (i > 0 && dig(x, i - 1)) || letter_before(x, i);
}

static inline size_t word_end(const scan *x, size_t i)
{
    while (i < x->n && letter_at(x, i))
        i += ef_nlp__u8len(x->s[i]);
    return i;
}

static size_t digits_end(const scan *x, size_t i)
{
    while (dig(x, i))
        i++;
    return i;
}

static int kw_at(const scan *x, size_t i, size_t e, int kind)
{
    return kw_find(x->s + i, e - i, kind);
}

static bool kw_is(const scan *x, size_t i, size_t e, int kind)
{
    return kw_find(x->s + i, e - i, kind) != KW_NONE;
}

/* The word that ends at i - 1 (one space before i), as [*ws, i - 1). */
static bool word_before(const scan *x, size_t i, size_t *ws, size_t *we)
{
    if (i < 2 || x->s[i - 1] != ' ' || !letter_before(x, i - 1))
        return false;
    size_t k = i - 1;
    while (k > 0 && letter_before(x, k)) {
        k--;
        while (k > 0 && (x->s[k] & 0xC0) == 0x80)
            k--;
    }
    *ws = k;
    *we = i - 1;
    return true;
}

/* What says that the digits at i are an order number: CUE_ORDER for
 * "заказ" in any form, "№" or "#" just before, or a list that one of them
 * starts ("заказы 112233 и 112234"); CUE_NUMBER for "номер"/"номера"
 * (also a phone's word); else CUE_NONE. Between the cue and the digits
 * customers put a colon, a dash, "N", "No", "номер", "под номером" or
 * "#": "Заказ N 661204", "номер заказа: 20451187", "заказ — 6650123". */
enum { CUE_NONE = 0, CUE_NUMBER, CUE_ORDER };

static bool word_is(const scan *x, size_t s, size_t e, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == e - s && memcmp(x->s + s, *list, e - s) == 0)
            return true;
    return false;
}

/* The letters that end just before k, as [*ws, k); false when none. */
static bool letters_before(const scan *x, size_t k, size_t *ws)
{
    if (!letter_before(x, k))
        return false;
    while (k > 0 && letter_before(x, k)) {
        k--;
        while (k > 0 && (x->s[k] & 0xC0) == 0x80)
            k--;
    }
    *ws = k;
    return true;
}

/* Skips back over the separators between a cue and its number. */
static size_t cue_gap(const scan *x, size_t k)
{
    for (size_t n = 0; k > 0 && n < 4; n++) {
        unsigned char c = x->s[k - 1];
        if (c != ' ' && c != ':' && c != '-' && c != '.')
            break;
        k--;
    }
    return k;
}

static int order_cue_depth(const scan *x, size_t i, int depth);

/* The digits at i follow a list separator (",", "и", "или", "/") after
 * another run of 3 to 12 digits: that run's cue, so that every number of
 * "заказы 123456, 123457 и 123458" is an order number. */
static int list_cue(const scan *x, size_t i, int depth)
{
    static const char *const joins[] = {"и", "или", "and", "or", NULL};
    size_t k = i > 0 && x->s[i - 1] == ' ' ? i - 1 : i, ws;
    if (k > 0 && (x->s[k - 1] == ',' || x->s[k - 1] == '/' || x->s[k - 1] == ';'))
        k--;
    else if (letters_before(x, k, &ws) && word_is(x, ws, k, joins))
        k = ws;
    else
        return CUE_NONE;
    if (k > 0 && x->s[k - 1] == ' ')
        k--;
    size_t e = k;
    while (k > 0 && dig(x, k - 1))
        k--;
    if (e - k < 3 || e - k > 12 || e == i)
        return CUE_NONE;
    return order_cue_depth(x, k, depth + 1);
}

static int order_cue_depth(const scan *x, size_t i, int depth)
{
    static const char *const order_words[] = {
        "заказ",   "заказа",  "заказу",  "заказе",   "заказом",  "заказик", "заказы",
        "заказов", "заказам", "заказах", "заказами", "заказика", "order",   "orders",
        "zakaz",   "zakaza",  "zakazu",  "zakaze",   "zakazy",   "zakazov", NULL};
    static const char *const number_words[] = {"номер",  "номера", "номеру", "номером",
                                               "number", "nomer",  "nomera", NULL};
    static const char *const marks[] = {"n", "no", "nr", "н", "нр", "под", NULL};
    bool number = false, mark = false;
    size_t k = i, ws;
    for (int step = 0; step < 5; step++) {
        k = cue_gap(x, k);
        if (k > 0 && x->s[k - 1] == '#') {
            k--;
            mark = true;
            continue;
        }
        if (k >= 3 && memcmp(x->s + k - 3, "\xE2\x84\x96", 3) == 0) { /* № */
            k -= 3;
            mark = true;
            continue;
        }
        if (!letters_before(x, k, &ws))
            break;
        if (word_is(x, ws, k, order_words))
            return CUE_ORDER;
        if (word_is(x, ws, k, number_words))
            number = true;
        else if (!word_is(x, ws, k, marks))
            break;
        k = ws;
    }
    if (mark)
        return CUE_ORDER;
    if (number)
        return CUE_NUMBER;
    return depth < 6 ? list_cue(x, i, depth) : CUE_NONE;
}

static int order_cue(const scan *x, size_t i)
{
    return order_cue_depth(x, i, 0);
}

static int64_t today(scan *x)
{
    if (!x->have_today) {
        int64_t t = x->now + ef_nlp__tz_offset(&x->bot->tz, x->now);
        x->today = t / 86400 - (t % 86400 < 0 ? 1 : 0);
        x->have_today = true;
    }
    return x->today;
}

static int64_t current_year(scan *x)
{
    int64_t y;
    unsigned m, d;
    ef_civil_from_days(today(x), &y, &m, &d);
    return y;
}

static bool leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool valid_date(int64_t y, int m, int d)
{
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2200 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= (m == 2 && leap(y) ? 29 : md[m - 1]);
}

static void add(scan *x, int type, int rank, size_t s, size_t e, const char *v, size_t vl)
{
    ef_nlp__cand_add(x->sc, ef_nlp__builtin_names[type], rank, s, e, v, vl);
}

/* Two digits of n (0..99) at v. snprintf costs about a thousand
 * instructions a call, and a date is formatted for most messages that
 * name one (profiled on the bench's clean mix: 3% of the matcher). */
static void put2(char *v, int n)
{
    v[0] = (char)('0' + n / 10);
    v[1] = (char)('0' + n % 10);
}

static void add_date(scan *x, size_t s, size_t e, int64_t y, int m, int d)
{
    char v[16];
    if (y < 0 || y > 9999) {
        int l = snprintf(v, sizeof(v), "%04d-%02d-%02d", (int)y, m, d);
        add(x, EF_NLP__ENT_DATE, RANK_DATE, s, e, v, (size_t)l);
        return;
    }
    put2(v, (int)(y / 100));
    put2(v + 2, (int)(y % 100));
    v[4] = '-';
    put2(v + 5, m);
    v[7] = '-';
    put2(v + 8, d);
    add(x, EF_NLP__ENT_DATE, RANK_DATE, s, e, v, 10);
}

static void add_days(scan *x, size_t s, size_t e, int64_t days)
{
    int64_t y;
    unsigned m, d;
    ef_civil_from_days(days, &y, &m, &d);
    add_date(x, s, e, y, (int)m, (int)d);
}

static void add_time(scan *x, size_t s, size_t e, int h, int mi)
{
    char v[8];
    if (h < 0 || h > 99 || mi < 0 || mi > 99) {
        int l = snprintf(v, sizeof(v), "%02d:%02d", h, mi);
        add(x, EF_NLP__ENT_TIME, RANK_TIME, s, e, v, (size_t)l);
        return;
    }
    put2(v, h);
    v[2] = ':';
    put2(v + 3, mi);
    add(x, EF_NLP__ENT_TIME, RANK_TIME, s, e, v, 5);
}

/* ---- what a repair must not change ------------------------------------------ */

/* In the repaired reading (match.c reads a weakly understood message a
 * second time with its unknown words repaired), an e-mail address or an
 * order code may hold a word the repair changed: "ivan@почта.рф" read as
 * "иван@почта.рф", "zakaz2024@mail.ru" as "заказ2024@mail.ru". True when a
 * repair touched the span [s, e) of the text being read; *os, *oe are then
 * its bytes in the message as sent, whose value is taken instead. */
static bool repaired_span(const scan *x, size_t s, size_t e, size_t *os, size_t *oe)
{
    const ef_nlp_scratch *sc = x->sc;
    if (!sc->read_repaired || !sc->text || e <= s)
        return false;
    size_t a = sc->src[s], b = sc->srcend[e - 1];
    for (size_t k = 0; k < sc->n_repairs; k++) {
        if (sc->repairs[k].start < b && sc->repairs[k].end > a) {
            *os = a;
            *oe = b;
            return true;
        }
    }
    return false;
}

/* The message's bytes [a, b) lowercased as the normalizer lowercases the
 * letters an address or a code holds (ASCII, Cyrillic, Ё as е) into v. */
static size_t fold_sent(const char *t, size_t a, size_t b, char *v, size_t cap)
{
    size_t n = 0;
    for (size_t i = a; i < b && n + 2 < cap;) {
        unsigned char c = (unsigned char)t[i], c2 = i + 1 < b ? (unsigned char)t[i + 1] : 0;
        if (c >= 'A' && c <= 'Z') {
            v[n++] = (char)(c + 32);
            i++;
        } else if ((c == 0xD0 && (c2 == 0x81 || c2 == 0xB5)) || (c == 0xD1 && c2 == 0x91)) {
            v[n++] = (char)0xD0; /* Ё, ё -> е */
            v[n++] = (char)0xB5;
            i += 2;
        } else if (c == 0xD0 && c2 >= 0x90 && c2 <= 0x9F) { /* А..П */
            v[n++] = (char)0xD0;
            v[n++] = (char)(c2 + 0x20);
            i += 2;
        } else if (c == 0xD0 && c2 >= 0xA0 && c2 <= 0xAF) { /* Р..Я */
            v[n++] = (char)0xD1;
            v[n++] = (char)(c2 - 0x20);
            i += 2;
        } else {
            size_t l = ef_nlp__u8len(c);
            if (n + l >= cap || i + l > b)
                break;
            memcpy(v + n, t + i, l);
            n += l;
            i += l;
        }
    }
    return n;
}

/* ---- phone ------------------------------------------------------------------ */

static bool phone_sep(unsigned char c)
{
    return c == ' ' || c == '-' || c == '(' || c == ')' || c == '.';
}

/* A phone's word among the few words before i: "телефон", "тел.",
 * "звоните", "номер", "whatsapp"... (by their start). */
static bool phone_cue(const scan *x, size_t i)
{
    static const char *const stems[] = {"тел",    "номер",  "звон",  "позвон", "перезвон",
                                        "набер",  "моб",    "сотов", "связ",   "контакт",
                                        "ватсап", "вотсап", "вацап", "вайбер", "whatsapp",
                                        "viber",  "phone",  "tel",   "call",   NULL};
    size_t k = i;
    for (int w = 0; w < 4; w++) {
        size_t n = 0;
        while (k > 0 && n < 4 && !letter_before(x, k)) {
            unsigned char c = x->s[k - 1];
            if (c != ' ' && c != ':' && c != '.' && c != '-' && c != '(' && c != ',')
                return false;
            k--;
            n++;
        }
        size_t ws;
        if (!letters_before(x, k, &ws))
            return false;
        for (size_t j = 0; stems[j]; j++) {
            size_t l = strlen(stems[j]);
            if (k - ws >= l && memcmp(x->s + ws, stems[j], l) == 0)
                return true;
        }
        k = ws;
    }
    return false;
}

static void phone_at(scan *x, size_t i)
{
    size_t j = i;
    bool plus = x->s[i] == '+';
    if (plus)
        j++;
    if (!dig(x, j) || alnum_before(x, i))
        return;
    char d[16];
    size_t nd = 0, last = j, limit = 15;
    while (j < x->n) {
        if (dig(x, j)) {
            d[nd++] = (char)x->s[j];
            j++;
            last = j;
            if (nd == 1)
                limit = (d[0] == '7' || (!plus && d[0] == '8')) ? 11 : 15;
            if (nd == limit)
                break;
            continue;
        }
        size_t k = j;
        while (k < x->n && k - j < 2 && phone_sep(x->s[k]))
            k++;
        if (k == j || !dig(x, k))
            break;
        j = k;
    }
    if (dig(x, last) || letter_at(x, last))
        return;
    if (last + 1 < x->n && (x->s[last] == '-' || x->s[last] == '.' || x->s[last] == '/') &&
        dig(x, last + 1))
        return; /* part of a longer code */
    char v[20];
    size_t vl;
    if ((d[0] == '7' && (plus || nd == 11)) || (!plus && d[0] == '8' && nd == 11)) {
        if (nd != 11)
            return;
        if (!plus && d[1] != '3' && d[1] != '4' && d[1] != '8' && d[1] != '9')
            return;
        v[0] = '+';
        v[1] = '7';
        memcpy(v + 2, d + 1, 10);
        vl = 12;
    } else if (plus && nd >= 9 && nd <= 15 && d[0] != '0') {
        v[0] = '+';
        memcpy(v + 1, d, nd);
        vl = nd + 1;
    } else if (!plus && nd == 10 && order_cue(x, i) != CUE_ORDER &&
               (d[0] == '9' || ((d[0] == '3' || d[0] == '4' || d[0] == '8') && phone_cue(x, i)))) {
        /* a Russian number without +7 or 8: a mobile 9xx xxx xx xx, or an
         * area code 3xx, 4xx, 8xx after a phone's word ("телефон (495)
         * 777-11-22"); after "заказ" or "№" the digits are an order number */
        v[0] = '+';
        v[1] = '7';
        memcpy(v + 2, d, 10);
        vl = 12;
    } else {
        return;
    }
    add(x, EF_NLP__ENT_PHONE, RANK_PHONE, i, last, v, vl);
}

/* ---- email ------------------------------------------------------------------ */

static bool local_ch(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '%' ||
           c == '+' || c == '-';
}

static bool domain_ch(const scan *x, size_t i)
{
    unsigned char c = x->s[i];
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
        return true;
    return (c == 0xD0 || c == 0xD1) && i + 1 < x->n; /* Cyrillic (.рф) */
}

/* A Cyrillic letter (а-я, ё folded to е) ends just before i: its length. */
static size_t cyr_before(const scan *x, size_t i)
{
    if (i < 2)
        return 0;
    unsigned char c = x->s[i - 2], c2 = x->s[i - 1];
    return (c == 0xD0 && c2 >= 0xB0 && c2 <= 0xBF) || (c == 0xD1 && c2 >= 0x80 && c2 <= 0x8F) ? 2
                                                                                              : 0;
}

static void email_at(scan *x, size_t a)
{
    size_t ls = a;
    for (;;) { /* the local part: ASCII, or Cyrillic as internationalized addresses allow */
        if (ls > 0 && local_ch(x->s[ls - 1]))
            ls--;
        else if (cyr_before(x, ls))
            ls -= 2;
        else
            break;
    }
    while (ls < a && x->s[ls] == '.')
        ls++;
    if (ls == a || x->s[a - 1] == '.')
        return;
    size_t j = a + 1, label = j, dots = 0, last_label = j;
    while (j < x->n) {
        if (domain_ch(x, j)) {
            j += ef_nlp__u8len(x->s[j]);
            continue;
        }
        if (x->s[j] == '.' && j > label && j + 1 < x->n && domain_ch(x, j + 1)) {
            dots++;
            j++;
            label = j;
            last_label = j;
            continue;
        }
        break;
    }
    size_t end = j;
    while (end > last_label && x->s[end - 1] == '-')
        end--;
    if (dots == 0 || end <= last_label)
        return;
    size_t letters = 0;
    for (size_t k = last_label; k < end; k += ef_nlp__u8len(x->s[k])) {
        if (!letter_at(x, k))
            return;
        letters++;
    }
    if (letters < 2)
        return;
    size_t os, oe;
    if (repaired_span(x, ls, end, &os, &oe)) {
        char v[EF_NLU_VALUE_MAX];
        size_t vl = fold_sent(x->sc->text, os, oe, v, sizeof(v));
        add(x, EF_NLP__ENT_EMAIL, RANK_EMAIL, ls, end, v, vl);
        return;
    }
    add(x, EF_NLP__ENT_EMAIL, RANK_EMAIL, ls, end, (const char *)x->s + ls, end - ls);
}

/* ---- money -------------------------------------------------------------------- */

/* Reads an amount at i (a digit): "1500", "1 500", "1,500", "1.5", "1,50".
 * Returns the end and the value in hundredths, or 0 when there is none. */
static size_t amount(const scan *x, size_t i, int64_t *cents)
{
    size_t j = i, nd = 0;
    int64_t v = 0;
    while (dig(x, j)) {
        if (++nd > 13)
            return 0;
        v = v * 10 + (x->s[j] - '0');
        j++;
    }
    if (nd <= 3) {
        for (;;) {
            unsigned char sep = j < x->n ? x->s[j] : 0;
            if ((sep == ' ' || sep == ',' || sep == '.') && dig(x, j + 1) && dig(x, j + 2) &&
                dig(x, j + 3) && !dig(x, j + 4) && nd + 3 <= 13) {
                v = v * 1000 + (x->s[j + 1] - '0') * 100 + (x->s[j + 2] - '0') * 10 +
                    (x->s[j + 3] - '0');
                nd += 3;
                j += 4;
            } else {
                break;
            }
        }
    }
    int64_t c = v * 100;
    if (j < x->n && (x->s[j] == ',' || x->s[j] == '.') && dig(x, j + 1)) {
        size_t fe = digits_end(x, j + 1);
        if (fe - (j + 1) <= 2) {
            c += (x->s[j + 1] - '0') * 10 + (fe - (j + 1) == 2 ? x->s[j + 2] - '0' : 0);
            j = fe;
        }
    }
    *cents = c;
    return j;
}

static const char *const cur_codes[3] = {"RUB", "USD", "EUR"};

/* A currency sign at i: returns its length and sets *cur, or 0. */
static size_t cur_sign(const scan *x, size_t i, int *cur)
{
    if (i >= x->n)
        return 0;
    if (x->s[i] == '$') {
        *cur = 1;
        return 1;
    }
    if (i + 2 < x->n && x->s[i] == 0xE2 && x->s[i + 1] == 0x82) {
        if (x->s[i + 2] == 0xBD) { /* ₽ */
            *cur = 0;
            return 3;
        }
        if (x->s[i + 2] == 0xAC) { /* € */
            *cur = 2;
            return 3;
        }
    }
    return 0;
}

/* After an amount: [space] multiplier[.] -- returns the new end, *mult. */
static size_t multiplier(const scan *x, size_t j, int64_t *mult)
{
    size_t k = j < x->n && x->s[j] == ' ' ? j + 1 : j;
    *mult = 1;
    if (!letter_at(x, k))
        return j;
    size_t we = word_end(x, k);
    int m = kw_at(x, k, we, KW_MULT);
    if (m == KW_NONE)
        return j;
    *mult = m;
    if (we < x->n && x->s[we] == '.')
        we++;
    return we;
}

/* Writes "units.cc CODE" of an amount in cents into v (48 bytes), exactly
 * as snprintf("%lld.%02lld %s") does, and returns its length: digits by
 * hand for the amounts the scanners read (0 to 1e15 cents; snprintf cost a
 * money entity ~1,500 instructions), snprintf for any other. */
static size_t money_value(char *v, int64_t cents, const char *code)
{
    if (cents < 0 || cents / 100 > (int64_t)1e13)
        return (size_t)snprintf(v, 48, "%lld.%02lld %s", (long long)(cents / 100),
                                (long long)(cents % 100), code);
    char d[20];
    size_t nd = 0, l = 0;
    int64_t u = cents / 100;
    do {
        d[nd++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    while (nd > 0)
        v[l++] = d[--nd];
    v[l++] = '.';
    v[l++] = (char)('0' + cents % 100 / 10);
    v[l++] = (char)('0' + cents % 10);
    v[l++] = ' ';
    size_t cl = strlen(code);
    memcpy(v + l, code, cl + 1);
    return l + cl;
}

static void add_money(scan *x, size_t s, size_t e, int64_t cents, int64_t mult, int cur)
{
    if (mult > 1 && cents > INT64_MAX / mult)
        return;
    cents *= mult;
    if (cents / 100 > (int64_t)1e13)
        return;
    char v[48];
    size_t l = money_value(v, cents, cur_codes[cur]);
    add(x, EF_NLP__ENT_MONEY, RANK_MONEY, s, e, v, l);
}

/* An amount at i read with a thousands word that ends at j and no currency
 * ("3к", "2 тыс", "5 тысяч"): the shop's currency is meant. A lone "к"
 * after a space is a preposition when a word follows ("2 к пятнице"). */
static bool thousands_alone(const scan *x, size_t i, size_t j)
{
    if (dig(x, j) || letter_at(x, j))
        return false;
    size_t ws = j;
    while (ws > i && x->s[ws - 1] != ' ' && !dig(x, ws - 1))
        ws--;
    if (j - ws > 2 || ws == i || dig(x, ws - 1))
        return true; /* a word ("тыс", "тысяч") or a glued "3к" */
    return !(j + 1 < x->n && x->s[j] == ' ' && letter_at(x, j + 1));
}

/* " с половиной" at j (after a count): its end, or 0. */
static size_t half_after(const scan *x, size_t j)
{
    static const char s_half[] = " с половиной";
    size_t l = sizeof(s_half) - 1;
    if (j + l > x->n || memcmp(x->s + j, s_half, l) != 0 || letter_at(x, j + l))
        return 0;
    return j + l;
}

/* A currency right after j ([space] sign or word): its end and *cur, or 0. */
static size_t currency_after(const scan *x, size_t j, int *cur)
{
    size_t k = j < x->n && x->s[j] == ' ' ? j + 1 : j;
    size_t sl = cur_sign(x, k, cur);
    if (sl)
        return k + sl;
    if (!letter_at(x, k))
        return 0;
    size_t we = word_end(x, k);
    *cur = kw_at(x, k, we, KW_CUR);
    return *cur == KW_NONE ? 0 : we;
}

/* What is left after a thousands word: "2 тысячи 500 рублей", "3 тыс 200".
 * The rest (under one thousand) counts when a currency or the end of the
 * phrase follows it; returns its end (j when there is none) and *rest. */
static size_t money_rest(const scan *x, size_t j, int64_t mult, int64_t *rest)
{
    *rest = 0;
    if (j + 1 >= x->n || x->s[j] != ' ' || !dig(x, j + 1))
        return j;
    int64_t r;
    size_t e = amount(x, j + 1, &r);
    if (!e || r <= 0 || r >= mult * 100)
        return j;
    int cur;
    if (!currency_after(x, e, &cur) &&
        (alnum_at(x, e) || (e + 1 < x->n && x->s[e] == ' ' && alnum_at(x, e + 1))))
        return j;
    *rest = r;
    return e;
}

/* Kopecks after rubles ending at j: "99 руб 50 коп", "1299 р 90 к" --
 * returns their end and *kop, or j. */
static size_t kopecks_after(const scan *x, size_t j, int64_t *kop)
{
    size_t k = j < x->n && x->s[j] == '.' ? j + 1 : j;
    if (k + 1 >= x->n || x->s[k] != ' ' || !dig(x, k + 1))
        return j;
    size_t de = digits_end(x, k + 1);
    if (de - k - 1 > 2)
        return j;
    size_t w = de < x->n && x->s[de] == ' ' ? de + 1 : de;
    if (!letter_at(x, w))
        return j;
    size_t we = word_end(x, w);
    static const char s_kop[] = "коп", s_k[] = "к";
    bool kopw = we - w >= sizeof(s_kop) - 1 && memcmp(x->s + w, s_kop, sizeof(s_kop) - 1) == 0;
    bool k1 = we - w == sizeof(s_k) - 1 && memcmp(x->s + w, s_k, sizeof(s_k) - 1) == 0 &&
              !(we + 1 < x->n && x->s[we] == ' ' && letter_at(x, we + 1));
    if (!kopw && !k1)
        return j;
    *kop = x->s[k + 1] - '0';
    if (de - k - 1 == 2)
        *kop = *kop * 10 + (x->s[k + 2] - '0');
    return we < x->n && x->s[we] == '.' ? we + 1 : we;
}

/* "1 500 ₽", "1500 руб.", "1,5 тыс. рублей", "20$", "4 с половиной тыс",
 * "2 тысячи 500 рублей", "99 руб 50 коп" -- amount at i. */
static void money_suffix_at(scan *x, size_t i)
{
    if (letter_before(x, i))
        return;
    int64_t cents, mult, rest = 0;
    size_t j = amount(x, i, &cents);
    if (!j)
        return;
    size_t h = half_after(x, j), jm = multiplier(x, h ? h : j, &mult);
    if (h && mult > 1)
        cents += 50; /* "4 с половиной тысячи" */
    else if (h)
        jm = multiplier(x, j, &mult);
    j = jm;
    if (mult > 1 && cents > INT64_MAX / mult)
        return;
    size_t e = mult > 1 ? money_rest(x, j, mult, &rest) : j;
    int cur;
    size_t ce = currency_after(x, e, &cur);
    if (ce) {
        int64_t kop = 0;
        size_t ke = cur == 0 && mult == 1 && cents % 100 == 0 ? kopecks_after(x, ce, &kop) : ce;
        add_money(x, i, ke, cents * mult + rest + kop, 1, cur);
        return;
    }
    if (mult > 1 && rest)
        add_money(x, i, e, cents * mult + rest, 1, 0);
    else if (mult > 1 && thousands_alone(x, i, j))
        add_money(x, i, j, cents, mult, 0);
}

/* The separator of a range after an amount or a day at j: "-", "–", " - ",
 * " до ", " по " (days only); returns where the second starts, or 0. */
static size_t range_sep(const scan *x, size_t j, bool days)
{
    size_t k = j < x->n && x->s[j] == ' ' ? j + 1 : j;
    if (k < x->n && x->s[k] == '-')
        k++;
    else if (k + 2 < x->n && memcmp(x->s + k, "\xE2\x80\x93", 3) == 0) /* – */
        k += 3;
    else if (k > j && k + 5 <= x->n && memcmp(x->s + k, "до ", 5) == 0)
        k += 5;
    else if (days && k > j && k + 5 <= x->n && memcmp(x->s + k, "по ", 5) == 0)
        k += 5;
    else
        return 0;
    if (k < x->n && x->s[k] == ' ')
        k++;
    return dig(x, k) ? k : 0;
}

/* The first amount of a range whose second names the currency or the
 * thousands: "3000-5000 руб", "от 2000 до 4000 рублей", "3-5 тыс" -- the
 * amount at i, which has neither itself. */
static void money_range_at(scan *x, size_t i)
{
    int64_t c1, c2, mult;
    size_t j = amount(x, i, &c1);
    if (!j || letter_at(x, j))
        return;
    size_t k = range_sep(x, j, false);
    if (!k)
        return;
    size_t e2 = amount(x, k, &c2);
    if (!e2 || c2 <= c1)
        return;
    size_t m2 = multiplier(x, e2, &mult);
    int cur = 0;
    if (!currency_after(x, m2, &cur) && (mult == 1 || !thousands_alone(x, k, m2)))
        return;
    add_money(x, i, j, c1, mult, cur);
}

/* "$20", "€15", "₽ 1 500", "$1.5k" -- sign at i. */
static void money_prefix_at(scan *x, size_t i)
{
    int cur;
    size_t sl = cur_sign(x, i, &cur);
    if (!sl)
        return;
    size_t j = i + sl;
    if (j < x->n && x->s[j] == ' ')
        j++;
    if (!dig(x, j))
        return;
    int64_t cents, mult;
    size_t e = amount(x, j, &cents);
    if (!e)
        return;
    e = multiplier(x, e, &mult);
    if (letter_at(x, e) || dig(x, e))
        return;
    add_money(x, i, e, cents, mult, cur);
}

/* ---- date ---------------------------------------------------------------------- */

/* Skips an ordinal suffix right after a day number: "12th", "12-го", "12го". */
static size_t ordinal(const scan *x, size_t j)
{
    size_t k = j < x->n && x->s[j] == '-' ? j + 1 : j;
    if (!letter_at(x, k))
        return j;
    size_t we = word_end(x, k);
    return kw_is(x, k, we, KW_ORD) ? we : j;
}

/* A 4-digit year after a space at j: returns the end or 0. */
static size_t year_after(const scan *x, size_t j, int64_t *y)
{
    if (j >= x->n || x->s[j] != ' ' || !dig(x, j + 1))
        return 0;
    size_t e = digits_end(x, j + 1);
    if (e - (j + 1) != 4 || letter_at(x, e))
        return 0;
    *y = (x->s[j + 1] - '0') * 1000 + (x->s[j + 2] - '0') * 100 + (x->s[j + 3] - '0') * 10 +
         (x->s[j + 4] - '0');
    return e;
}

/* Numeric dates at i (a digit, not glued to a letter or digit before):
 * 2026-03-12, 12.03.2026, 12.03.26, 12/03/2026, 12.03. */
static void date_numeric_at(scan *x, size_t i)
{
    if (i >= 2 && (x->s[i - 1] == '.' || x->s[i - 1] == '/' || x->s[i - 1] == '-') && dig(x, i - 2))
        return;
    size_t e1 = digits_end(x, i), l1 = e1 - i;
    if (l1 == 4 && e1 < x->n && x->s[e1] == '-') {
        size_t e2 = digits_end(x, e1 + 1);
        if (e2 - e1 - 1 != 2 || e2 >= x->n || x->s[e2] != '-')
            return;
        size_t e3 = digits_end(x, e2 + 1);
        if (e3 - e2 - 1 != 2 || alnum_at(x, e3) ||
            (e3 + 1 < x->n && x->s[e3] == '-' && dig(x, e3 + 1)))
            return;
        int64_t y = (x->s[i] - '0') * 1000 + (x->s[i + 1] - '0') * 100 + (x->s[i + 2] - '0') * 10 +
                    (x->s[i + 3] - '0');
        int m = (x->s[e1 + 1] - '0') * 10 + (x->s[e1 + 2] - '0');
        int d = (x->s[e2 + 1] - '0') * 10 + (x->s[e2 + 2] - '0');
        if (valid_date(y, m, d))
            add_date(x, i, e3, y, m, d);
        return;
    }
    if (l1 < 1 || l1 > 2 || e1 >= x->n || (x->s[e1] != '.' && x->s[e1] != '/' && x->s[e1] != '-'))
        return; /* 12.03, 12/03; 12-03-2026 only with its year */
    unsigned char sep = x->s[e1];
    size_t e2 = digits_end(x, e1 + 1), l2 = e2 - e1 - 1;
    if (l2 < 1 || l2 > 2)
        return;
    int d = l1 == 1 ? x->s[i] - '0' : (x->s[i] - '0') * 10 + (x->s[i + 1] - '0');
    int m = l2 == 1 ? x->s[e1 + 1] - '0' : (x->s[e1 + 1] - '0') * 10 + (x->s[e1 + 2] - '0');
    int64_t y;
    size_t end;
    if (e2 < x->n && x->s[e2] == sep && dig(x, e2 + 1)) {
        size_t e3 = digits_end(x, e2 + 1), l3 = e3 - e2 - 1;
        if (l3 == 4)
            y = (x->s[e2 + 1] - '0') * 1000 + (x->s[e2 + 2] - '0') * 100 +
                (x->s[e2 + 3] - '0') * 10 + (x->s[e2 + 4] - '0');
        else if (l3 == 2 && sep != '-')
            y = 2000 + (x->s[e2 + 1] - '0') * 10 + (x->s[e2 + 2] - '0');
        else
            return;
        end = e3;
        /* "12.03.2026г", "12.03.26г.": the year's letter glued on */
        if (end + 1 < x->n && x->s[end] == 0xD0 && x->s[end + 1] == 0xB3 && !letter_at(x, end + 2))
            end += end + 2 < x->n && x->s[end + 2] == '.' ? 3 : 2;
    } else {
        if (l2 != 2 || sep == '-') /* "1.5" is a number; "1.05" and "12.03" are dates */
            return;
        y = current_year(x);
        end = e2;
    }
    if (alnum_at(x, end) ||
        (end + 1 < x->n &&
         (x->s[end] == '.' || x->s[end] == ',' || x->s[end] == '/' || x->s[end] == ':') &&
         dig(x, end + 1)))
        return;
    if (valid_date(y, m, d))
        add_date(x, i, end, y, m, d);
}

/* "12 марта", "12-го марта 2026", "12 March", "12th of March" -- day at i. */
static void date_day_month_at(scan *x, size_t i)
{
    size_t e1 = digits_end(x, i);
    if (e1 - i > 2)
        return;
    int d = e1 - i == 1 ? x->s[i] - '0' : (x->s[i] - '0') * 10 + (x->s[i + 1] - '0');
    size_t j = ordinal(x, e1);
    if (j >= x->n || x->s[j] != ' ')
        return;
    size_t k = j + 1;
    if (!letter_at(x, k))
        return;
    size_t we = word_end(x, k);
    if (kw_is(x, k, we, KW_OF) && we < x->n && x->s[we] == ' ' && letter_at(x, we + 1)) {
        k = we + 1;
        we = word_end(x, k);
    }
    int m = kw_at(x, k, we, KW_MONTH);
    if (m == KW_NONE)
        return;
    int64_t y;
    size_t end = we;
    size_t ye = year_after(x, we, &y);
    if (ye)
        end = ye;
    else
        y = current_year(x);
    if (valid_date(y, m, d))
        add_date(x, i, end, y, m, d);
}

/* "March 12", "march 12th, 2026" -- an English month word at w. */
static void date_month_day_at(scan *x, size_t w, size_t we, int m)
{
    size_t j = we;
    if (j < x->n && x->s[j] == '.')
        j++;
    if (j >= x->n || x->s[j] != ' ' || !dig(x, j + 1))
        return;
    size_t ds = j + 1, de = digits_end(x, ds);
    if (de - ds > 2 || x->s[ds] == '0')
        return;
    int d = de - ds == 1 ? x->s[ds] - '0' : (x->s[ds] - '0') * 10 + (x->s[ds + 1] - '0');
    size_t end = ordinal(x, de);
    if (alnum_at(x, end) || (end < x->n && x->s[end] == ':'))
        return;
    int64_t y;
    size_t k = end < x->n && x->s[end] == ',' ? end + 1 : end;
    size_t ye = year_after(x, k, &y);
    if (ye)
        end = ye;
    else
        y = current_year(x);
    if (valid_date(y, m, d))
        add_date(x, w, end, y, m, d);
}

/* The first day of a range whose second names the month: "с 15 по 20
 * марта", "5-10 апреля", "с 28 по 3 апреля" (the month before) -- the day
 * at i. */
static void date_range_at(scan *x, size_t i)
{
    size_t e1 = digits_end(x, i);
    if (e1 - i > 2)
        return;
    int d1 = e1 - i == 1 ? x->s[i] - '0' : (x->s[i] - '0') * 10 + (x->s[i + 1] - '0');
    size_t k = range_sep(x, e1, true);
    if (!k)
        return;
    size_t e2 = digits_end(x, k);
    if (e2 - k > 2)
        return;
    int d2 = e2 - k == 1 ? x->s[k] - '0' : (x->s[k] - '0') * 10 + (x->s[k + 1] - '0');
    size_t j = ordinal(x, e2);
    if (j + 1 >= x->n || x->s[j] != ' ' || !letter_at(x, j + 1))
        return;
    size_t we = word_end(x, j + 1);
    int m = kw_at(x, j + 1, we, KW_MONTH);
    if (m == KW_NONE || d1 < 1 || d2 < 1)
        return;
    int64_t y;
    if (!year_after(x, we, &y))
        y = current_year(x);
    if (d1 >= d2 && --m == 0) {
        m = 12;
        y--;
    }
    if (valid_date(y, m, d1))
        add_date(x, i, e1, y, m, d1);
}

/* ---- tense: is the clause around a date about the past? ------------------------------ */

static bool clause_end(unsigned char c)
{
    return c == ',' || c == '.' || c == '!' || c == '?' || c == ';' || c == ':' || c == '(' ||
           c == ')';
}

/* The next word at or after p in the same clause, as [*a, *b). */
static bool next_word(const scan *x, size_t p, size_t *a, size_t *b)
{
    while (p < x->n && !letter_at(x, p)) {
        if (clause_end(x->s[p]))
            return false;
        p += ef_nlp__u8len(x->s[p]);
    }
    if (p >= x->n)
        return false;
    *a = p;
    *b = word_end(x, p);
    return true;
}

/* The word that ends at or before p in the same clause, as [*a, *b). */
static bool prev_word(const scan *x, size_t p, size_t *a, size_t *b)
{
    while (p > 0 && !letter_before(x, p)) {
        if (clause_end(x->s[p - 1]))
            return false;
        p--;
        while (p > 0 && (x->s[p] & 0xC0) == 0x80)
            p--;
    }
    if (p == 0)
        return false;
    *b = p;
    while (p > 0 && letter_before(x, p)) {
        p--;
        while (p > 0 && (x->s[p] & 0xC0) == 0x80)
            p--;
    }
    *a = p;
    return true;
}

static bool ends_with(const unsigned char *w, size_t n, const char *suf)
{
    size_t l = strlen(suf);
    return n >= l && memcmp(w + n - l, suf, l) == 0;
}

/* A Russian past-tense verb: "заказала", "пришел", "привезли", "оплатил",
 * "потерялась" -- at least four letters ending in -л, -ла, -ло, -ли (or
 * -лся, -лась, -лось, -лись), not one of the common nouns and particles
 * that end so. */
static bool past_verb(const scan *x, size_t a, size_t b)
{
    static const char *const endings[] = {"л",    "ла",   "ло",   "ли", "лся",
                                          "лась", "лось", "лись", NULL};
    static const char *const not_verbs[] = {
        "если",  "или",     "модели",  "недели",   "мебели", "цели",   "земли",  "мысли",
        "числа", "число",   "дела",    "дело",     "тело",   "село",   "масло",  "кресло",
        "тепло", "мало",    "стол",    "стола",    "угол",   "угла",   "школа",  "школы",
        "сила",  "правило", "правила", "материал", "журнал", "канал",  "сигнал", "вокзал",
        "финал", "пола",    "зала",    "весла",    "одеяло", "начала", "начало", NULL};
    const unsigned char *w = x->s + a;
    size_t n = b - a;
    if (n < 8 || (w[0] != 0xD0 && w[0] != 0xD1))
        return false; /* four Cyrillic letters at least */
    bool end = false;
    for (size_t k = 0; endings[k] && !end; k++)
        end = ends_with(w, n, endings[k]);
    return end && !word_is(x, a, b, not_verbs);
}

/* Does the clause around the date at [s, e) speak of the past: a
 * past-tense verb among the three words before or after it. */
static bool past_near(const scan *x, size_t s, size_t e)
{
    size_t a, b, p = s;
    for (int k = 0; k < 3 && prev_word(x, p, &a, &b); k++) {
        if (past_verb(x, a, b))
            return true;
        p = a;
    }
    p = e;
    for (int k = 0; k < 3 && next_word(x, p, &a, &b); k++) {
        if (past_verb(x, a, b))
            return true;
        p = b;
    }
    return false;
}

/* The kinds of word that say which week or which one: "следующий",
 * "прошлую", "эту", "той". */
static int modifier(const scan *x, size_t a, size_t b)
{
    static const int kinds[] = {KW_NEXT, KW_LAST, KW_THIS, KW_THAT, KW_LAST2};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (kw_is(x, a, b, kinds[k]))
            return kinds[k];
    return KW_NONE;
}

/* The modifier just before w ("следующий вторник", "след. вторник"): its
 * kind, *ps its start; KW_NONE when there is none. */
static int modifier_before(const scan *x, size_t w, size_t *ps)
{
    size_t a, b;
    if (word_before(x, w, &a, &b)) {
        /* a word right before */
    } else if (w >= 3 && x->s[w - 1] == ' ' && x->s[w - 2] == '.' && letters_before(x, w - 2, &a)) {
        b = w - 2; /* an abbreviation: "след." */
    } else {
        return KW_NONE;
    }
    int kind = modifier(x, a, b);
    if (kind != KW_NONE)
        *ps = a;
    return kind;
}

/* A preposition that announces a day or a time ("в", "до", "к") before i. */
static bool prep_before_kw(const scan *x, size_t i)
{
    size_t ps, pe;
    return word_before(x, i, &ps, &pe) && kw_is(x, ps, pe, KW_PREP);
}

static bool word_eq(const scan *x, size_t a, size_t b, const char *w)
{
    return strlen(w) == b - a && memcmp(x->s + a, w, b - a) == 0;
}

/* "[на] следующей неделе", "следующей недели", "на той неделе" from p on,
 * in the same clause: the modifier's kind and *end; KW_NONE. */
static int week_after(const scan *x, size_t p, size_t *end)
{
    size_t a, b;
    if (!next_word(x, p, &a, &b))
        return KW_NONE;
    if ((word_eq(x, a, b, "на") || word_eq(x, a, b, "в")) && !next_word(x, b, &a, &b))
        return KW_NONE;
    int kind = modifier(x, a, b);
    if (kind == KW_NONE || !next_word(x, b, &a, &b) || kw_at(x, a, b, KW_PERIOD) != 7)
        return KW_NONE;
    *end = b;
    return kind;
}

/* "на следующей неделе [в|во]" before p, in the same clause: the kind and
 * *start; KW_NONE. */
static int week_before(const scan *x, size_t p, size_t *start)
{
    size_t a, b;
    if (!prev_word(x, p, &a, &b))
        return KW_NONE;
    if ((word_eq(x, a, b, "в") || word_eq(x, a, b, "во") || word_eq(x, a, b, "на")) &&
        !prev_word(x, a, &a, &b))
        return KW_NONE;
    if (kw_at(x, a, b, KW_PERIOD) != 7 || !prev_word(x, a, &a, &b))
        return KW_NONE;
    int kind = modifier(x, a, b);
    if (kind != KW_NONE)
        *start = a;
    return kind;
}

/* The direction a modifier gives: 1 next, -1 last, 0 this; "той" by the
 * clause's tense. */
static int direction(const scan *x, int kind, size_t s, size_t e)
{
    if (kind == KW_NEXT)
        return 1;
    if (kind == KW_LAST)
        return -1;
    if (kind == KW_LAST2)
        return -2;
    if (kind == KW_THAT)
        return past_near(x, s, e) ? -1 : 1;
    return 0;
}

/* "конца", "концу", "конце" (1: the period's last day) or "начала",
 * "началу", "начале" (0: its first day) at [a, b); -1 for another word. */
static int period_edge(const scan *x, size_t a, size_t b)
{
    static const char *const ends[] = {"конца", "концу", "конце", NULL};
    static const char *const starts_w[] = {"начала", "началу", "начале", NULL};
    return word_is(x, a, b, ends) ? 1 : word_is(x, a, b, starts_w) ? 0 : -1;
}

/* "на следующей неделе", "в прошлом месяце", "на этой неделе", "к концу
 * недели", "в начале следующего месяца" -- the period's word at [w, we):
 * the first day of that week (Monday) or month, or its last day (Sunday,
 * the month's last) after "конца"/"концу". */
static void date_period_at(scan *x, size_t w, size_t we)
{
    unsigned char c = x->s[w], c2 = w + 1 < x->n ? x->s[w + 1] : 0;
    if (!(c == 0xD0 && (c2 == 0xBD || c2 == 0xBC)) && c != 'w' && c != 'm')
        return; /* неделе, месяце, week, month */
    int unit = kw_at(x, w, we, KW_PERIOD);
    if (unit == KW_NONE)
        return;
    size_t ps = w, es, ee;
    int kind = modifier_before(x, w, &ps), edge = -1;
    if (word_before(x, ps, &es, &ee) && (edge = period_edge(x, es, ee)) >= 0)
        ps = es; /* "к концу [этой] недели" */
    if ((kind == KW_NONE && edge < 0) || !gated(x->s, ps, we))
        return;
    int dir = kind == KW_NONE ? 0 : direction(x, kind, ps, we);
    int64_t t = today(x);
    if (unit == 7) {
        int cur = (int)(((t % 7) + 7 + 3) % 7);
        add_days(x, ps, we, t - cur + 7 * dir + (edge == 1 ? 6 : 0));
        return;
    }
    int64_t y;
    unsigned m, d;
    ef_civil_from_days(t, &y, &m, &d);
    int64_t mm = y * 12 + (m - 1) + dir + (edge == 1 ? 1 : 0);
    if (edge == 1) /* the day before the next month's first */
        add_days(x, ps, we, ef_days_from_civil(mm / 12, (unsigned)(mm % 12) + 1, 1) - 1);
    else
        add_date(x, ps, we, mm / 12, (int)(mm % 12) + 1, 1);
}

/* "завтра", "в пятницу", "next monday", "в пт", "во вторник на следующей
 * неделе" -- a keyword word at [w, we). */
static void date_word_at(scan *x, size_t w, size_t we)
{
    int rel = kw_at(x, w, we, KW_RELDAY);
    if (rel != KW_NONE) {
        add_days(x, w, we, today(x) + rel);
        return;
    }
    size_t start = w, end = we;
    int wd = kw_at(x, w, we, KW_WEEKDAY), kind;
    if (wd != KW_NONE) {
        kind = modifier_before(x, w, &start);
    } else if (we - w == 16 || we - w == 7) {
        /* "на выходных", "в эти выходные", "на следующих выходных": the
         * weekend's Saturday, by the same rules as a weekday */
        wd = kw_at(x, w, we, KW_WEEKEND);
        if (wd == KW_NONE)
            return;
        kind = modifier_before(x, w, &start);
    } else {
        /* "в пт", "до пн", "след. вт": an abbreviation (two Cyrillic or
         * three Latin letters) after a word that announces a day ("ср"
         * alone is also "среди", "вс" "все") */
        if (we - w != 4 && we - w != 3)
            return;
        wd = kw_at(x, w, we, KW_WDABBR);
        if (wd == KW_NONE)
            return;
        size_t ps, pe;
        if (!word_before(x, w, &ps, &pe) || !kw_is(x, ps, pe, KW_PREP) || !gated(x->s, ps, we))
            return; /* "в пт", "до пн": the gate's very words */
        kind = KW_NONE;
    }
    int64_t t = today(x);
    int cur = (int)(((t % 7) + 7 + 3) % 7); /* 1970-01-01 was a Thursday; 0 = Monday */
    bool week = false; /* the week is named: "во вторник на следующей неделе" */
    if (kind == KW_NONE || kind == KW_THAT) {
        size_t ws = start, e2;
        int k2 = week_after(x, we, &e2);
        if (k2 != KW_NONE) {
            end = e2;
        } else {
            k2 = week_before(x, w, &ws);
            start = k2 != KW_NONE ? ws : start;
        }
        week = k2 != KW_NONE;
        kind = week ? k2 : kind;
    }
    int mode = kind == KW_NONE || kind == KW_THIS ? 0 : direction(x, kind, start, end);
    int64_t day;
    if (week) /* that weekday in the week named */
        day = t - cur + 7 * mode + wd;
    else if (mode == 0 && past_near(x, start, end)) /* "в пятницу заказала": the last one */
        day = t - ((cur - wd + 6) % 7 + 1);
    else if (mode == 0)
        day = t + (wd - cur + 7) % 7;
    else /* that weekday in the next (previous) Monday-to-Sunday week */
        day = t - cur + 7 * mode + wd;
    add_days(x, start, end, day);
}

/* today + sign * n units (days, weeks; months and years by the calendar,
 * the day clamped to the month's length). */
static void add_shift(scan *x, size_t s, size_t e, int sign, int64_t n, int unit)
{
    if (n <= 0 || n > 1000)
        return;
    int64_t t = today(x);
    if (unit != UNIT_MONTH && unit != UNIT_YEAR) {
        add_days(x, s, e, t + sign * n * unit);
        return;
    }
    int64_t y;
    unsigned m, d;
    ef_civil_from_days(t, &y, &m, &d);
    int64_t months = y * 12 + (m - 1) + sign * n * (unit == UNIT_YEAR ? 12 : 1);
    y = months / 12;
    m = (unsigned)(months % 12) + 1;
    while (d > 28 && !valid_date(y, (int)m, (int)d))
        d--;
    if (valid_date(y, (int)m, (int)d))
        add_date(x, s, e, y, (int)m, (int)d);
}

/* A count at [a, ...): digits (up to 3) or number words ("два", "двадцать
 * пять", "пару"). Returns its end, or a when there is none. */
static size_t count_at(const scan *x, size_t a, int64_t *n)
{
    if (dig(x, a)) {
        size_t e = digits_end(x, a);
        if (e - a > 3 || letter_at(x, e))
            return a;
        *n = 0;
        for (size_t k = a; k < e; k++)
            *n = *n * 10 + (x->s[k] - '0');
        return e;
    }
    size_t e = a, k = a;
    int64_t v = 0;
    while (letter_at(x, k)) {
        size_t we = word_end(x, k);
        int w = kw_at(x, k, we, KW_NUMW);
        if (w == KW_NONE || w < 0)
            break;
        v += w;
        e = we;
        if (we >= x->n || x->s[we] != ' ')
            break;
        k = we + 1;
    }
    *n = v;
    return e;
}

/* "через два дня", "через неделю", "спустя 3 дня", "in 2 days" -- the
 * shift word at [w, we). */
static void date_after_at(scan *x, size_t w, size_t we)
{
    if (we >= x->n || x->s[we] != ' ')
        return;
    int64_t n = 1;
    size_t k = we + 1, ce = count_at(x, k, &n);
    if (ce > k) {
        if (ce >= x->n || x->s[ce] != ' ')
            return;
        k = ce + 1;
    } else {
        n = 1;
    }
    if (!letter_at(x, k))
        return;
    size_t ue = word_end(x, k);
    int unit = kw_at(x, k, ue, KW_UNIT);
    if (unit != KW_NONE)
        add_shift(x, w, ue, 1, n, unit);
}

/* "3 дня назад", "неделю назад", "пять дней назад", "2 days ago" -- the
 * word "назад" at [w, we): a unit before it, and a count before that. */
static void date_ago_at(scan *x, size_t w, size_t we)
{
    size_t us, ue;
    if (!word_before(x, w, &us, &ue))
        return;
    int unit = kw_at(x, us, ue, KW_UNIT);
    if (unit == KW_NONE) {
        /* "дня три назад", "недели две назад": the count after its unit */
        int nw = kw_at(x, us, ue, KW_NUMW);
        size_t vs, ve;
        if (nw <= 0 || !word_before(x, us, &vs, &ve))
            return;
        unit = kw_at(x, vs, ve, KW_UNIT);
        if (unit != KW_NONE)
            add_shift(x, vs, we, -1, nw, unit);
        return;
    }
    size_t start = us;
    int64_t n = 1;
    if (us >= 2 && x->s[us - 1] == ' ' && dig(x, us - 2)) {
        size_t ds = us - 1;
        while (ds > 0 && dig(x, ds - 1))
            ds--;
        if (ds > 0 && alnum_before(x, ds))
            return;
        if (count_at(x, ds, &n) != us - 1)
            return;
        start = ds;
    } else {
        size_t ns, ne;
        int64_t v = 0;
        size_t p = us;
        while (word_before(x, p, &ns, &ne)) { /* "двадцать пять дней" */
            int nw = kw_at(x, ns, ne, KW_NUMW);
            if (nw == KW_NONE || nw < 0)
                break;
            v += nw;
            start = ns;
            p = ns;
        }
        if (v > 0)
            n = v;
    }
    add_shift(x, start, we, -1, n, unit);
}

/* A weak ordinal ("-му") followed by another word of its clause. */
static bool weak_ends_badly(const scan *x, bool weak, size_t end)
{
    return weak && end + 1 < x->n && x->s[end] == ' ' && alnum_at(x, end + 1);
}

/* The day d of the month said alone at [s, e): the next such day (this
 * month or the next), or the last one when the clause speaks of the past
 * ("15-го заказала"). */
static void day_of_month(scan *x, size_t s, size_t e, int d)
{
    int64_t y;
    unsigned m, td;
    ef_civil_from_days(today(x), &y, &m, &td);
    int step = past_near(x, s, e) ? -1 : 1;
    int64_t mm = y * 12 + (m - 1);
    if ((step > 0 && (unsigned)d < td) || (step < 0 && (unsigned)d > td))
        mm += step;
    for (int k = 0; k < 3; k++, mm += step) { /* "31-го" skips a 30-day month */
        if (valid_date(mm / 12, (int)(mm % 12) + 1, d)) {
            add_date(x, s, e, mm / 12, (int)(mm % 12) + 1, d);
            return;
        }
    }
}

/* A day's ordinal word at [a, b): "пятнадцатого" 15, "третьему" 3, or
 * KW_NONE. */
static int ordinal_word(const scan *x, size_t a, size_t b)
{
    static const char *const endings[] = {"ьего", "ьему", "ого", "ому", "ое", "ье", NULL};
    for (size_t k = 0; endings[k]; k++) {
        size_t l = strlen(endings[k]);
        if (b - a > l && ends_with(x->s + a, b - a, endings[k]))
            return kw_at(x, a, b - l, KW_ORDW);
    }
    return KW_NONE;
}

/* Whether the word at [a, b) ends in а, я, у or ю: a noun that agrees with
 * an ordinal before it ("к пятому подъезду", "до десятого этажа"). */
static bool agreeing_noun(const scan *x, size_t a, size_t b)
{
    if (b - a < 4)
        return false;
    unsigned char l1 = x->s[b - 2], l2 = x->s[b - 1];
    return (l1 == 0xD0 && l2 == 0xB0) || (l1 == 0xD1 && (l2 == 0x8F || l2 == 0x83 || l2 == 0x8E));
}

/* A day's ordinal word alone after к/ко/до/по at [w, we) with no month or
 * "числа": "к двадцатому", "до тридцатого можно", "к двадцать пятому".
 * The word (or "двадцать пятому") starts at ws. Only with a gate literal
 * inside (the tens' ordinals, "к двадцать "), and not before a noun that
 * agrees with it ("к десятому дому"). */
static void date_ordinal_alone(scan *x, size_t ws, size_t we, int d)
{
    size_t ps, pe, a, b;
    if (!word_before(x, ws, &ps, &pe) || pe - ps > 4 ||
        !(word_eq(x, ps, pe, "к") || word_eq(x, ps, pe, "ко") || word_eq(x, ps, pe, "до") ||
          word_eq(x, ps, pe, "по")))
        return;
    if (!gated(x->s, ps, we))
        return;
    if (next_word(x, we, &a, &b) && agreeing_noun(x, a, b))
        return;
    day_of_month(x, ps, we, d);
}

/* "до конца февраля", "в начале апреля", "к концу марта" -- an edge word
 * at [w, we) before a month: its last or first day, the next such month
 * (this one included), or the last one when the clause speaks of the past.
 * Only with a gate literal inside (the edge and the month's start). */
static void date_month_edge_at(scan *x, size_t w, size_t we)
{
    if (we - w < 10 || (x->s[w + 1] != 0xBA && x->s[w + 1] != 0xBD))
        return; /* конца..., начала... */
    int edge = period_edge(x, w, we);
    size_t a, b;
    if (edge < 0 || we >= x->n || x->s[we] != ' ' || !next_word(x, we, &a, &b) || a != we + 1)
        return;
    int m = kw_at(x, a, b, KW_MONTH);
    if (m == KW_NONE || !gated(x->s, w, b))
        return;
    int64_t y;
    unsigned cm, cd;
    ef_civil_from_days(today(x), &y, &cm, &cd);
    if (past_near(x, w, b) ? (unsigned)m > cm : (unsigned)m < cm)
        y += past_near(x, w, b) ? -1 : 1;
    if (edge == 1)
        add_days(x, w, b,
                 ef_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1u : (unsigned)m + 1, 1) - 1);
    else
        add_date(x, w, b, y, m, 1);
}

/* "пятнадцатого марта", "двадцать пятого числа", "к пятому числу" -- a
 * day's ordinal word (after "двадцать" / "тридцать") at [w, we): with a
 * month, that date; with "числа", the day of the month; alone after a
 * preposition, date_ordinal_alone. */
static void date_ordinal_at(scan *x, size_t w, size_t we)
{
    size_t ws = w;
    if (we - w < 6)
        return;
    unsigned char l1 = x->s[we - 2], l2 = x->s[we - 1]; /* the last letter: о, у, е or ь */
    bool ending = (l1 == 0xD0 && (l2 == 0xBE || l2 == 0xB5)) || (l1 == 0xD1 && l2 == 0x83);
    int d = ending ? ordinal_word(x, w, we) : KW_NONE;
    if (d == KW_NONE) {
        if (we - w != 16) /* "двадцать", "тридцать" */
            return;
        int tens = kw_at(x, w, we, KW_NUMW);
        if ((tens != 20 && tens != 30) || we + 1 >= x->n || x->s[we] != ' ')
            return;
        size_t e2 = word_end(x, we + 1);
        int o = ordinal_word(x, we + 1, e2);
        if (o == KW_NONE || o > 9)
            return;
        d = tens + o;
        we = e2;
    }
    if (d < 1 || d > 31)
        return;
    if (we + 1 >= x->n || x->s[we] != ' ' || !letter_at(x, we + 1)) {
        date_ordinal_alone(x, ws, we, d);
        return;
    }
    size_t k = we + 1, e2 = word_end(x, k);
    if (!gated(x->s, w, e2)) { /* the ending and the month's or "числа"'s start */
        date_ordinal_alone(x, ws, we, d);
        return;
    }
    int m = kw_at(x, k, e2, KW_MONTH);
    if (m != KW_NONE) {
        int64_t y;
        size_t ye = year_after(x, e2, &y);
        if (!ye)
            y = current_year(x);
        if (valid_date(y, m, d))
            add_date(x, w, ye ? ye : e2, y, m, d);
        return;
    }
    if (kw_is(x, k, e2, KW_DAYW))
        day_of_month(x, w, e2, d);
    else
        date_ordinal_alone(x, ws, we, d);
}

/* "15-го", "20 числа", "15-го числа", "к 25 числу", "к 20-му" -- a day of
 * the month alone at i. A dative ending ("-му") names a day only before
 * "числу" or at the end of the phrase: "к 3-му подъезду" is no date. */
static void date_day_only_at(scan *x, size_t i)
{
    size_t e1 = digits_end(x, i);
    if (e1 - i > 2 || alnum_before(x, i))
        return;
    int d = e1 - i == 1 ? x->s[i] - '0' : (x->s[i] - '0') * 10 + (x->s[i + 1] - '0');
    if (d < 1 || d > 31)
        return;
    size_t end = ordinal(x, e1);
    bool ord = end > e1;
    size_t os = e1 < x->n && x->s[e1] == '-' ? e1 + 1 : e1;
    bool weak = ord && kw_at(x, os, end, KW_ORD) == 1;
    if (end < x->n && x->s[end] == ' ' && letter_at(x, end + 1)) {
        size_t we = word_end(x, end + 1);
        if (kw_is(x, end + 1, we, KW_DAYW)) {
            end = we;
            ord = true;
            weak = false;
        }
    }
    if (!ord || weak_ends_badly(x, weak, end) || alnum_at(x, end))
        return;
    day_of_month(x, i, end, d);
}

/* ---- money in words ----------------------------------------------------------------- */

/* A multiplier written as a word ("тысячи", "тыщу", "млн"), not "к". */
static int mult_word(const scan *x, size_t a, size_t b)
{
    if (b - a < 4)
        return KW_NONE;
    return kw_at(x, a, b, KW_MULT);
}

/* "пять тысяч рублей", "полторы тысячи", "тыщу", "сто рублей", "две тысячи
 * триста" -- number words from w. Money when a currency word follows or a
 * thousands word was said (the shop's currency, rubles, is meant). */
static void money_words_at(scan *x, size_t w)
{
    size_t ps, pe;
    if (word_before(x, w, &ps, &pe) &&
        (kw_is(x, ps, pe, KW_NUMW) || mult_word(x, ps, pe) != KW_NONE))
        return; /* not the first word of the amount */
    if (w >= 2 && x->s[w - 1] == ' ' && dig(x, w - 2))
        return; /* "2 тысячи": the digits' own reading */
    int64_t total = 0, cur = 0;
    bool mult = false;
    size_t k = w, end = w;
    while (letter_at(x, k)) {
        size_t we = word_end(x, k);
        int v = kw_at(x, k, we, KW_NUMW);
        int m = v == KW_NONE ? mult_word(x, k, we) : KW_NONE;
        if (v == KW_NONE && m == KW_NONE)
            break;
        size_t h = v != KW_NONE && v >= 0 ? half_after(x, we) : 0;
        if (v == NUMW_HALF)
            cur += 150;
        else if (v == NUMW_POL)
            cur += 50; /* "пол тысячи" */
        else if (v != KW_NONE)
            cur += (int64_t)v * 100 + (h ? 50 : 0); /* "две с половиной тысячи" */
        else {
            total += (cur ? cur : 100) * m;
            cur = 0;
            mult = true;
        }
        if (h)
            we = h;
        end = we;
        if (we >= x->n || x->s[we] != ' ' || total > (int64_t)1e15)
            break;
        k = we + 1;
    }
    if (end == w)
        return;
    total += cur;
    size_t c = end < x->n && x->s[end] == ' ' ? end + 1 : end;
    int curr = KW_NONE;
    if (letter_at(x, c)) {
        size_t ce = word_end(x, c);
        curr = kw_at(x, c, ce, KW_CUR);
        if (curr != KW_NONE)
            end = ce;
    }
    if ((curr == KW_NONE && !mult) || !gated(x->s, w, end))
        return; /* "сто р": the one-letter "р" is no gate word, so it is read
                 * only with a digit ("100 р") */
    add_money(x, w, end, total, 1, curr == KW_NONE ? 0 : curr);
}

/* ---- time ------------------------------------------------------------------------ */

static bool prep_before(const scan *x, size_t i)
{
    return prep_before_kw(x, i);
}

/* Applies a day part or am/pm to an hour; -1 when they do not fit. */
static int hour_with(int h, int daypart, int ampm)
{
    if (ampm >= 0) {
        if (h < 1 || h > 12)
            return -1;
        return ampm ? (h == 12 ? 12 : h + 12) : (h == 12 ? 0 : h);
    }
    switch (daypart) {
    case 1: /* утра */
        return h >= 1 && h <= 11 ? h : -1;
    case 2: /* дня */
        return h == 12 ? 12 : (h >= 1 && h <= 6 ? h + 12 : -1);
    case 3: /* вечера */
        return h >= 4 && h <= 11 ? h + 12 : -1;
    case 4: /* ночи */
        return h == 12 ? 0 : (h >= 1 && h <= 5 ? h : (h >= 9 && h <= 11 ? h + 12 : -1));
    default:
        return h;
    }
}

/* What follows an hour (or hh:mm) at j: [space] am|pm|a.m.|p.m., or
 * [space] [часов] [space] утра|дня|вечера|ночи. Sets *end past it. */
static void time_suffix(const scan *x, size_t j, size_t *end, int *daypart, int *ampm,
                        bool *hour_word)
{
    *daypart = 0;
    *ampm = -1;
    *hour_word = false;
    *end = j;
    size_t k = j < x->n && x->s[j] == ' ' ? j + 1 : j;
    if (k + 2 < x->n && (x->s[k] == 'a' || x->s[k] == 'p') && x->s[k + 1] == '.' &&
        x->s[k + 2] == 'm') {
        size_t e = k + 3;
        if (e < x->n && x->s[e] == '.')
            e++;
        if (!alnum_at(x, e)) {
            *ampm = x->s[k] == 'p';
            *end = e;
        }
        return;
    }
    if (!letter_at(x, k))
        return;
    size_t we = word_end(x, k);
    int v = kw_at(x, k, we, KW_AMPM);
    if (v != KW_NONE) {
        *ampm = v;
        *end = we;
        return;
    }
    if (kw_is(x, k, we, KW_HOUR)) {
        *hour_word = true;
        *end = we;
        if (we < x->n && x->s[we] == '.')
            we++;
        if (we < x->n && x->s[we] == ' ' && letter_at(x, we + 1)) {
            size_t k2 = we + 1, we2 = word_end(x, k2);
            v = kw_at(x, k2, we2, KW_DAYPART);
            if (v != KW_NONE) {
                *daypart = v;
                *end = we2;
            }
        }
        return;
    }
    v = kw_at(x, k, we, KW_DAYPART);
    if (v != KW_NONE) {
        *daypart = v;
        *end = we;
    }
}

/* "18:30", "18.30" after в/к/до, "6pm", "в 6 вечера", "в 18 часов" -- at i. */
/* A whole hour said bare after в/к/до/после at the end of a phrase or
 * before a word that goes with a time ("завтра в 10", "работаете до
 * 18?", "после 19 удобно"): 7 to 23 only, and not before a noun ("в 10
 * раз", "в 2 экземплярах"). */
static bool bare_hour(const scan *x, size_t i, size_t e1, int h)
{
    static const char *const preps[] = {"в", "во", "к", "ко", "до", "после", NULL};
    static const char *const fits[] = {"удобно",     "можно",     "будет",   "будете",  "буду",
                                       "подойдет",   "сможете",   "успеете", "устроит", "или",
                                       "пожалуйста", "нормально", "ок",      "часа",    NULL};
    size_t ps, pe, a, b;
    if (h < 7 || h > 23 || !word_before(x, i, &ps, &pe) || !word_is(x, ps, pe, preps))
        return false;
    if (e1 < x->n && (x->s[e1] == '-' || x->s[e1] == ':' || x->s[e1] == '.') && dig(x, e1 + 1))
        return false;
    size_t k = e1;
    while (k < x->n && x->s[k] == ' ')
        k++;
    if (k >= x->n || clause_end(x->s[k]))
        return true;
    return letter_at(x, k) && next_word(x, k, &a, &b) && word_is(x, a, b, fits);
}

static void time_at(scan *x, size_t i)
{
    if (i >= 2 && (x->s[i - 1] == '.' || x->s[i - 1] == ':' || x->s[i - 1] == ',') && dig(x, i - 2))
        return;
    size_t e1 = digits_end(x, i);
    if (e1 - i > 2)
        return;
    int h = e1 - i == 1 ? x->s[i] - '0' : (x->s[i] - '0') * 10 + (x->s[i + 1] - '0');
    int mi = 0;
    size_t j = e1;
    bool colon = false, dotted = false;
    /* "18:30"; "18.30" and "18-30" (the customer's own way of writing it)
     * only after a preposition or before "утра/вечера" */
    if (j + 2 < x->n && (x->s[j] == ':' || x->s[j] == '.' || x->s[j] == '-') && dig(x, j + 1) &&
        dig(x, j + 2) && !dig(x, j + 3) &&
        !(x->s[j] == '-' && j + 4 < x->n && x->s[j + 3] == '-' && dig(x, j + 4))) {
        mi = (x->s[j + 1] - '0') * 10 + (x->s[j + 2] - '0');
        colon = x->s[j] == ':';
        dotted = !colon;
        j += 3;
        if (colon && j + 2 < x->n && x->s[j] == ':' && dig(x, j + 1) && dig(x, j + 2) &&
            !dig(x, j + 3))
            j += 3; /* seconds */
        if (mi > 59)
            return;
    }
    size_t end;
    int daypart, ampm;
    bool hour_word;
    time_suffix(x, j, &end, &daypart, &ampm, &hour_word);
    if (end == j &&
        (alnum_at(x, j) || (j < x->n && (x->s[j] == ':' || x->s[j] == '.') && dig(x, j + 1))))
        return;
    bool suffix = daypart > 0 || ampm >= 0;
    bool prep = prep_before(x, i);
    if (!colon && !dotted && !suffix && !hour_word && bare_hour(x, i, e1, h)) {
        add_time(x, i, e1, h, 0);
        return;
    }
    if (colon || dotted) {
        if (dotted && !suffix && !prep)
            return;
    } else if (!suffix && !(hour_word && prep)) {
        return;
    } else if ((daypart == 2 || daypart == 4) && !hour_word && !prep) {
        return; /* "2 дня" and "2 ночи" are mostly durations: want "в" or "часа" */
    }
    int hh = hour_with(h, daypart, ampm);
    if (hh < 0 && colon && h > 12 && h <= 23) { /* "18:30 вечера" */
        hh = h;
    }
    if (hh < 0 || hh > 23)
        return;
    add_time(x, i, end, hh, mi);
}

/* Whole hours of a range said without a word for the hour: "с 10 до 12",
 * "звоните с 9 до 18", "от 9 до 18" -- the first at i, after с/со/от.
 * Not before a month, a currency, a thousands word or a unit that makes
 * the numbers ages, sizes or counts ("с 3 до 5 лет"). */
static void time_range_at(scan *x, size_t i)
{
    static const char *const units[] = {"лет",     "года", "год",       "дней",    "дня", "недель",
                                        "месяцев", "шт",   "штук",      "см",      "кг",  "числа",
                                        "размер",  "раз",  "процентов", "человек", NULL};
    size_t e1 = digits_end(x, i), ps, pe;
    if (e1 - i > 2 || !word_before(x, i, &ps, &pe) ||
        !(word_eq(x, ps, pe, "с") || word_eq(x, ps, pe, "со") || word_eq(x, ps, pe, "от")))
        return;
    size_t k = range_sep(x, e1, false);
    if (!k)
        return;
    size_t e2 = digits_end(x, k);
    if (e2 - k > 2 || (e2 < x->n && (x->s[e2] == ':' || x->s[e2] == '.' || x->s[e2] == '-')))
        return;
    int h1 = e1 - i == 1 ? x->s[i] - '0' : (x->s[i] - '0') * 10 + (x->s[i + 1] - '0');
    int h2 = e2 - k == 1 ? x->s[k] - '0' : (x->s[k] - '0') * 10 + (x->s[k + 1] - '0');
    if (h1 >= h2 || h2 > 23 || alnum_at(x, e2))
        return;
    size_t a, b;
    bool word = next_word(x, e2, &a, &b);
    int daypart = word ? kw_at(x, a, b, KW_DAYPART) : KW_NONE;
    if (daypart != KW_NONE) { /* "с 6 до 9 вечера": the second is time_at's */
        int hh = hour_with(h1, daypart, -1);
        if (hh >= 0 && hh <= 23 && a == e2 + 1)
            add_time(x, i, e1, hh, 0);
        return;
    }
    if (word && (word_is(x, a, b, units) || kw_at(x, a, b, KW_MONTH) != KW_NONE ||
                 kw_at(x, a, b, KW_CUR) != KW_NONE || kw_at(x, a, b, KW_MULT) != KW_NONE ||
                 kw_at(x, a, b, KW_UNIT) != KW_NONE))
        return;
    add_time(x, i, e1, h1, 0);
    add_time(x, k, e2, h2, 0);
}

/* ---- number ------------------------------------------------------------------------- */

static void number_at(scan *x, size_t i)
{
    if (letter_before(x, i))
        return;
    if (i >= 2 && (x->s[i - 1] == '.' || x->s[i - 1] == ',' || x->s[i - 1] == ':') && dig(x, i - 2))
        return;
    size_t s = i;
    bool neg = i >= 1 && x->s[i - 1] == '-' && (i == 1 || x->s[i - 2] == ' ');
    if (neg)
        s = i - 1;
    size_t e = digits_end(x, i);
    size_t fs = 0, fe = 0;
    if (e + 1 < x->n && (x->s[e] == '.' || x->s[e] == ',') && dig(x, e + 1)) {
        fs = e + 1;
        fe = digits_end(x, fs);
        e = fe;
    }
    char v[EF_NLU_VALUE_MAX];
    size_t vl = 0;
    if (neg)
        v[vl++] = '-';
    size_t ip = i, ie = fs ? fs - 1 : e;
    while (ip + 1 < ie && x->s[ip] == '0')
        ip++;
    for (size_t k = ip; k < ie && vl < sizeof(v) - 2; k++)
        v[vl++] = (char)x->s[k];
    if (fs) {
        v[vl++] = '.';
        for (size_t k = fs; k < fe && vl < sizeof(v) - 1; k++)
            v[vl++] = (char)x->s[k];
    }
    add(x, EF_NLP__ENT_NUMBER, RANK_NUMBER, s, e, v, vl);
}

/* ---- order numbers and custom entities ------------------------------------------------ */

/* Uppercases an order number: ASCII, and Cyrillic letters that look Latin
 * become Latin (customers type "А-1042" on a Russian keyboard). */
static size_t order_value(const unsigned char *s, size_t n, char *v, size_t cap)
{
    static const struct {
        unsigned char b2;
        char latin;
    } look[] = {{0xB0, 'A'}, {0xB2, 'B'}, {0xB5, 'E'}, {0xBA, 'K'},
                {0xBC, 'M'}, {0xBD, 'H'}, {0xBE, 'O'}};
    size_t vl = 0;
    for (size_t i = 0; i < n && vl + 2 < cap;) {
        unsigned char c = s[i];
        if (c == ' ') {
            i++;
            continue;
        }
        if (c >= 'a' && c <= 'z') {
            v[vl++] = (char)(c - 32);
            i++;
            continue;
        }
        if (c == 0xD0 && i + 1 < n) {
            unsigned char c2 = s[i + 1];
            char lat = 0;
            for (size_t k = 0; k < sizeof(look) / sizeof(look[0]); k++)
                if (look[k].b2 == c2)
                    lat = look[k].latin;
            if (lat) {
                v[vl++] = lat;
            } else if (c2 >= 0xB0 && c2 <= 0xBF) { /* а..п -> А..П */
                v[vl++] = (char)0xD0;
                v[vl++] = (char)(c2 - 0x20);
            } else {
                v[vl++] = (char)c;
                v[vl++] = (char)c2;
            }
            i += 2;
            continue;
        }
        if (c == 0xD1 && i + 1 < n) {
            unsigned char c2 = s[i + 1];
            char lat = c2 == 0x80   ? 'P'
                       : c2 == 0x81 ? 'C'
                       : c2 == 0x82 ? 'T'
                       : c2 == 0x83 ? 'Y'
                       : c2 == 0x85 ? 'X'
                                    : 0;
            if (lat) {
                v[vl++] = lat;
            } else if (c2 >= 0x80 && c2 <= 0x8F) { /* р..я -> Р..Я */
                v[vl++] = (char)0xD0;
                v[vl++] = (char)(c2 + 0x20);
            } else {
                v[vl++] = (char)c;
                v[vl++] = (char)c2;
            }
            i += 2;
            continue;
        }
        size_t l = ef_nlp__u8len(c);
        if (vl + l >= cap)
            break;
        memcpy(v + vl, s + i, l);
        vl += l;
        i += l;
    }
    return vl;
}

/* The built-in order numbers, around the run of digits at i: the demo
 * shop's "A-1042" (one or two letters, an optional dash, 3 to 9 digits) and
 * Ozon posting numbers "87654321-0012-1" (6-10 digits, dash, 4 digits,
 * optionally dash and 1-2 digits), standing alone: no letter, digit, '_' or
 * '-' just before, no letter, digit, '_' or "-digit" just after. This is
 * the regex (?<![\p{L}\p{N}_-])(?:[a-zа-я]{1,2}-?\d{3,9}|\d{6,10}-\d{4}(?:-\d{1,2})?)
 * (?![\p{L}\p{N}_]|-\d) written out by hand: it runs on every message
 * with a digit, and a scan costs a fraction of a regex with lookarounds. */
static bool order_end_ok(const scan *x, size_t e)
{
    if (alnum_at(x, e) || (e < x->n && x->s[e] == '_'))
        return false;
    return !(e + 1 < x->n && x->s[e] == '-' && dig(x, e + 1));
}

static bool order_start_ok(const scan *x, size_t k)
{
    return !alnum_before(x, k) && !(k > 0 && (x->s[k - 1] == '_' || x->s[k - 1] == '-'));
}

/* [a-zа-я] ending just before k: its length, or 0. */
static size_t order_letter_before(const scan *x, size_t k)
{
    if (k >= 1 && x->s[k - 1] >= 'a' && x->s[k - 1] <= 'z')
        return 1;
    if (k >= 2 && ((x->s[k - 2] == 0xD0 && x->s[k - 1] >= 0xB0 && x->s[k - 1] <= 0xBF) ||
                   (x->s[k - 2] == 0xD1 && x->s[k - 1] >= 0x80 && x->s[k - 1] <= 0x8F)))
        return 2;
    return 0;
}

/* Digits [i, e) alone after "заказ", "№", "#" or "номер": 3 to 12 digits,
 * not the start of a decimal, date or posting number ("заказ 1042",
 * "заказ № 58213", "номер заказа 5512093"). The value is the digits. */
static bool bare_order_at(scan *x, size_t i, size_t e)
{
    size_t nd = e - i;
    if (nd < 3 || nd > 12 || !order_start_ok(x, i) || !order_end_ok(x, e))
        return false;
    if (e + 1 < x->n && (x->s[e] == '.' || x->s[e] == ',' || x->s[e] == '/') && dig(x, e + 1))
        return false;
    if (order_cue(x, i) == CUE_NONE)
        return false;
    add(x, EF_NLP__ENT_ORDER, RANK_ORDER, i, e, (const char *)x->s + i, nd);
    return true;
}

/* An order number typed in groups after "заказ", "№" or "#" ("№ 88 21
 * 345", "заказ 4 567 890"): a first group of 1 to 4 digits, then groups of
 * 2 to 4 after single spaces, 5 to 12 digits in all. Only with an order's
 * cue ("номер" alone is also a phone's word); the value is the digits. A
 * group that starts an amount or a date ("заказ 2 500 рублей") loses to
 * that longer candidate. */
static bool grouped_order_at(scan *x, size_t i, size_t e)
{
    size_t nd = e - i, end = e, groups = 1;
    if (nd > 4 || !order_start_ok(x, i))
        return false;
    char v[EF_NLU_VALUE_MAX];
    memcpy(v, x->s + i, nd);
    while (end + 1 < x->n && x->s[end] == ' ' && dig(x, end + 1)) {
        size_t ge = digits_end(x, end + 1), gl = ge - end - 1;
        if (gl < 2 || gl > 4 || nd + gl > 12)
            break;
        memcpy(v + nd, x->s + end + 1, gl);
        nd += gl;
        end = ge;
        groups++;
    }
    if (groups < 2 || nd < 5 || !order_end_ok(x, end) ||
        (end + 1 < x->n && (x->s[end] == '.' || x->s[end] == ',' || x->s[end] == '/') &&
         dig(x, end + 1)))
        return false;
    if (order_cue(x, i) != CUE_ORDER)
        return false;
    add(x, EF_NLP__ENT_ORDER, RANK_ORDER, i, end, v, nd);
    return true;
}

static void order_at(scan *x, size_t i)
{
    size_t e = digits_end(x, i), nd = e - i;
    char v[EF_NLU_VALUE_MAX];
    /* letters, optional dash, 3..9 digits */
    size_t k = i > 0 && x->s[i - 1] == '-' ? i - 1 : i, letters = 0;
    for (;;) {
        size_t l = order_letter_before(x, k);
        if (l == 0 || letters == 3)
            break;
        k -= l;
        letters++;
    }
    if (letters >= 1 && letters <= 2 && nd >= 3 && nd <= 9 && order_start_ok(x, k) &&
        order_end_ok(x, e)) {
        size_t os, oe, vl;
        char sent[EF_NLU_VALUE_MAX];
        if (repaired_span(x, k, e, &os, &oe)) /* "wb-44821" read as "вб-44821" */
            vl = order_value((const unsigned char *)sent,
                             fold_sent(x->sc->text, os, oe, sent, sizeof(sent)), v, sizeof(v));
        else
            vl = order_value(x->s + k, e - k, v, sizeof(v));
        add(x, EF_NLP__ENT_ORDER, RANK_ORDER, k, e, v, vl);
        return;
    }
    if (grouped_order_at(x, i, e) || bare_order_at(x, i, e))
        return;
    /* 6..10 digits - 4 digits [- 1..2 digits] */
    if (nd < 6 || nd > 10 || !order_start_ok(x, i) || e >= x->n || x->s[e] != '-')
        return;
    size_t e2 = digits_end(x, e + 1);
    if (e2 - e - 1 != 4)
        return;
    size_t end = e2;
    if (e2 + 1 < x->n && x->s[e2] == '-' && dig(x, e2 + 1)) {
        size_t e3 = digits_end(x, e2 + 1);
        if (e3 - e2 - 1 > 2)
            return;
        end = e3;
    }
    if (!order_end_ok(x, end))
        return;
    size_t vl = order_value(x->s + i, end - i, v, sizeof(v));
    add(x, EF_NLP__ENT_ORDER, RANK_ORDER, i, end, v, vl);
}

/* Runs pattern p over the whole text, calling back for every match. */
static void each_match(scan *x, const ef_nlp__pat *p,
                       void (*fn)(scan *x, const ef_nlp__pat *p, const PCRE2_SIZE *ov, int rc))
{
    size_t from = 0;
    while (from <= x->n && x->sc->n_cands < EF_NLP__MAX_CANDS) {
        int rc = ef_nlp__exec(x->sc, p, from);
        if (rc < 0)
            return;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(x->sc->md);
        if (ov[1] > ov[0])
            fn(x, p, ov, rc);
        if (ov[1] > from) {
            from = ov[1];
        } else {
            from++;
            while (from < x->n && (x->s[from] & 0xC0) == 0x80)
                from++;
        }
    }
}

/* The span of the group "value" when it took part, else of the match. */
static void value_span(const ef_nlp__pat *p, const PCRE2_SIZE *ov, int rc, size_t *vs, size_t *ve)
{
    *vs = ov[0];
    *ve = ov[1];
    if (p->value_group && (int)p->value_group < rc && ov[2 * p->value_group] != PCRE2_UNSET &&
        ov[2 * p->value_group + 1] > ov[2 * p->value_group]) {
        *vs = ov[2 * p->value_group];
        *ve = ov[2 * p->value_group + 1];
    }
}

static void on_order(scan *x, const ef_nlp__pat *p, const PCRE2_SIZE *ov, int rc)
{
    size_t vs, ve;
    value_span(p, ov, rc, &vs, &ve);
    char v[EF_NLU_VALUE_MAX];
    size_t vl = order_value(x->s + vs, ve - vs, v, sizeof(v));
    if (vl)
        add(x, EF_NLP__ENT_ORDER, RANK_ORDER, ov[0], ov[1], v, vl);
}

static void on_regex(scan *x, const ef_nlp__pat *p, const PCRE2_SIZE *ov, int rc)
{
    size_t vs, ve;
    value_span(p, ov, rc, &vs, &ve);
    /* the value is the customer's own text, as written (case, ё) */
    const ef_nlp_scratch *sc = x->sc;
    size_t os = sc->src[vs], oe = sc->srcend[ve - 1];
    ef_nlp__cand_add(x->sc, x->bot->entities[p->owner].name, RANK_CUSTOM, ov[0], ov[1],
                     sc->text + os, oe - os);
}

static void on_synonym(scan *x, const ef_nlp__pat *p, const PCRE2_SIZE *ov, int rc)
{
    (void)rc;
    const ef_nlp__entity *ent = &x->bot->entities[p->owner];
    const char *v = ent->canon[p->canon];
    ef_nlp__cand_add(x->sc, ent->name, RANK_CUSTOM, ov[0], ov[1], v, strlen(v));
}

/* The word-led entities that need no digit: shifts, "назад", amounts. */
static void word_entities_at(scan *x, size_t w, size_t we)
{
    int sh = kw_at(x, w, we, KW_SHIFT);
    if (sh == 1)
        date_after_at(x, w, we);
    else if (sh == -1)
        date_ago_at(x, w, we);
    else
        money_words_at(x, w);
    date_period_at(x, w, we);
    date_ordinal_at(x, w, we);
    date_month_edge_at(x, w, we);
}

/* ---- overlaps ------------------------------------------------------------------------- */

/* The order candidates are kept in: longer first, then by rank, position
 * and discovery (seq is unique: a total order). */
static int cand_pref(const ef_nlp__cand *x, const ef_nlp__cand *y)
{
    uint32_t lx = x->end - x->start, ly = y->end - y->start;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void resolve(ef_nlp_scratch *sc)
{
    size_t n = sc->n_cands;
    if (n <= 1)
        return;
    /* insertion sorts: a message has a handful of candidates, and qsort's
     * calls through a comparison pointer cost more than the sorting */
    ef_nlp__cand *order[EF_NLP__MAX_CANDS];
    for (size_t i = 0; i < n; i++) {
        ef_nlp__cand *c = &sc->cands[i];
        size_t k = i;
        for (; k > 0 && cand_pref(order[k - 1], c) > 0; k--)
            order[k] = order[k - 1];
        order[k] = c;
    }
    bool keep[EF_NLP__MAX_CANDS];
    memset(keep, 0, n * sizeof(keep[0]));
    for (size_t i = 0; i < n; i++) {
        const ef_nlp__cand *c = order[i];
        bool clash = false;
        for (size_t k = 0; k < i && !clash; k++) {
            const ef_nlp__cand *o = order[k];
            if (keep[o - sc->cands] && c->start < o->end && o->start < c->end)
                clash = true;
        }
        if (!clash)
            keep[c - sc->cands] = true;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (!keep[i])
            continue;
        if (w != i)
            sc->cands[w] = sc->cands[i];
        w++;
    }
    sc->n_cands = w;
    /* by position: kept candidates do not overlap, so their starts differ */
    for (size_t i = 1; i < w; i++) {
        if (sc->cands[i - 1].start < sc->cands[i].start)
            continue;
        ef_nlp__cand c = sc->cands[i];
        size_t k = i;
        for (; k > 0 && sc->cands[k - 1].start > c.start; k--)
            sc->cands[k] = sc->cands[k - 1];
        sc->cands[k] = c;
    }
}

/* ---- the pass ---------------------------------------------------------------------------- */

static inline bool bit(const uint64_t *b, uint32_t i)
{
    return (b[i >> 6] >> (i & 63)) & 1;
}

void ef_nlp__entities_scan(const ef_bot *bot, ef_nlp_scratch *sc, int64_t now_unix)
{
    pthread_once(&kw_once, kw_build);
    scan x = {bot, sc, (const unsigned char *)sc->norm, sc->n, now_unix, false, 0};
    /* what can start an entity at all was noted while normalizing */
    bool has_digit = sc->has_digit, has_at = sc->has_at, has_sign = sc->has_sign;

    for (size_t i = 0; (has_digit || has_at || has_sign) && i < x.n; i++) {
        unsigned char c = x.s[i];
        if (c >= '0' && c <= '9') {
            if (i > 0 && dig(&x, i - 1))
                continue; /* not the start of a run of digits */
            if (bot->order_pat == UINT32_MAX)
                order_at(&x, i);
            phone_at(&x, i);
            date_numeric_at(&x, i);
            date_day_month_at(&x, i);
            date_day_only_at(&x, i);
            time_at(&x, i);
            money_suffix_at(&x, i);
            money_range_at(&x, i);
            date_range_at(&x, i);
            time_range_at(&x, i);
            number_at(&x, i);
        } else if (c == '+' && has_digit) {
            phone_at(&x, i);
        } else if (c == '@' && has_at) {
            email_at(&x, i);
        } else if (has_sign && (c == '$' || c == 0xE2)) {
            money_prefix_at(&x, i);
        }
    }

    bool words = bit(sc->cand, EF_NLP__GATE_WORDS(bot));
    if (words || has_digit) {
        for (size_t i = 0; i < x.n;) {
            if (!letter_at(&x, i) || letter_before(&x, i)) {
                i += ef_nlp__u8len(x.s[i]);
                continue;
            }
            size_t we = word_end(&x, i);
            if (words) {
                date_word_at(&x, i, we);
                word_entities_at(&x, i, we);
            }
            if (words && kw_is(&x, i, we, KW_NOON))
                add_time(&x, i, we, 12, 0);
            else if (words && kw_is(&x, i, we, KW_MIDNIGHT))
                add_time(&x, i, we, 0, 0);
            if (has_digit && x.s[i] < 0x80) {
                int m = kw_at(&x, i, we, KW_MONTH);
                if (m != KW_NONE)
                    date_month_day_at(&x, i, we, m);
            }
            i = we;
        }
    }

    if (bot->order_pat != UINT32_MAX && bit(sc->cand, bot->order_pat))
        each_match(&x, &bot->pats[bot->order_pat], on_order);

    /* the bot's own entities: only the patterns the prefilter woke up */
    for (size_t w = bot->n_intent_pats / 64; w * 64 < bot->n_pats; w++) {
        uint64_t bits = sc->cand[w];
        while (bits) {
            size_t k = w * 64 + (size_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            if (k < bot->n_intent_pats || k >= bot->n_pats)
                continue;
            const ef_nlp__pat *p = &bot->pats[k];
            if (p->kind != EF_NLP__PAT_ORDER)
                each_match(&x, p, p->kind == EF_NLP__PAT_SYNONYMS ? on_synonym : on_regex);
        }
    }

    resolve(sc);
}
