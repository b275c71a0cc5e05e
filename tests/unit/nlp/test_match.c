/*
 * test_match.c -- the intent matcher (src/nlp/match.c, prefilter.c).
 *
 * Uses tests/unit/nlp/fixtures/match_bot.yaml (one intent per behaviour),
 * match_strict.yaml (a high fallback threshold) and the demo bot
 * bots/demo.yaml. Run from the repository root, as make does.
 */
#include "nlp/nlp.h"
#include "nlp/nlp_int.h" /* the lowering equivalence test compiles patterns itself */

#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define FX_BOT "fixtures/match_bot.yaml"
#include "nlp_fixture.h"

#define NOW FX_NOW

static void expect_intent(fx *f, const char *text, const char *intent)
{
    ef_nlu_result r = fx_run(f, text);
    if (strcmp(r.intent, intent) != 0)
        fail_msg("\"%s\": want %s, got %s (%.4f)", text, intent, r.intent, r.confidence);
}

static void expect_conf(fx *f, const char *text, const char *intent, double conf)
{
    ef_nlu_result r = fx_run(f, text);
    if (strcmp(r.intent, intent) != 0 || fabs(r.confidence - conf) > 1e-9)
        fail_msg("\"%s\": want %s %.4f, got %s %.4f", text, intent, conf, r.intent, r.confidence);
}

static void test_cyrillic_caseless_and_boundaries(void **state)
{
    fx *f = *state;
    expect_intent(f, "ЗАКАЗ", "order");
    expect_intent(f, "ЗаКаЗоМ", "order");
    expect_intent(f, "хочу Заказать", "order");
    expect_intent(f, "проказа", EF_NLP_FALLBACK); /* \b before the stem */
    expect_intent(f, "Новое слово", "word");      /* \w matches Cyrillic */
    expect_intent(f, "НОВОЕ СЛОВО", "word");
    expect_intent(f, "new слово", EF_NLP_FALLBACK);
}

static void test_yo_and_ye_are_one_letter(void **state)
{
    fx *f = *state;
    expect_intent(f, "елка", "tree"); /* pattern ёлк~, text е */
    expect_intent(f, "Ёлки-палки", "tree");
    expect_intent(f, "ЁЖ", "tree"); /* pattern еж, text Ё */
    expect_intent(f, "ёж", "tree");
    expect_intent(f, "ужи", EF_NLP_FALLBACK);
}

static void test_stems(void **state)
{
    fx *f = *state;
    const char *forms[] = {"заказ",  "заказа",  "заказу",   "заказом",
                           "заказы", "заказов", "заказчик", "Заказать"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        expect_intent(f, forms[i], "order");
    expect_intent(f, "за каз", EF_NLP_FALLBACK);
}

/* A stem's ending is an inflection, not the adjective or adverb another word
 * makes of it with -ск- / -ивн- (the "оператор" stems of a bot must not fire
 * on "оперативно" or "операторский"). */
static void test_stems_stay_in_their_word(void **state)
{
    fx *f = *state;
    const char *same[] = {"оператор", "оператора", "Операторы", "с оператором", "операторов"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
        expect_intent(f, same[i], "human");
    const char *other[] = {"оперативно", "Оперативный ответ", "операторский факультет",
                           "операторская", "оперативных"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        expect_intent(f, other[i], EF_NLP_FALLBACK);
    /* a noun ending in -ск- after the stem is still the stem's word */
    expect_intent(f, "заказчик", "order");
}

static void test_negative_patterns(void **state)
{
    fx *f = *state;
    expect_intent(f, "доставка завтра будет?", "ship");
    expect_intent(f, "доставка пиццы", EF_NLP_FALLBACK);
    expect_intent(f, "Доставка цветов есть?", EF_NLP_FALLBACK);
}

static void test_out_of_scope(void **state)
{
    fx *f = *state;
    expect_intent(f, "отмените пожалуйста", "cancel");
    /* out_of_scope explains the whole message, cancel only "отменили" */
    ef_nlu_result r = fx_run(f, "электричку опять отменили");
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
    assert_true(fabs(r.confidence - 0.9) < 1e-9); /* out_of_scope's own confidence */
    assert_int_equal(r.n_ranked, 1);              /* the intent it beat is still listed */
    assert_string_equal(r.ranked[0].intent, "cancel");
    expect_intent(f, "электричка", EF_NLP_FALLBACK);
    /* its examples are examples of fallback for `bot check` */
    bool found = false;
    for (size_t i = 0; i < ef_bot_example_count(f->bot); i++) {
        ef_bot_example ex;
        assert_int_equal(ef_bot_example_get(f->bot, i, &ex), 0);
        if (strcmp(ex.text, "электричку отменили") == 0) {
            assert_string_equal(ex.intent, EF_NLP_FALLBACK);
            assert_false(ex.negative);
            found = true;
        }
    }
    assert_true(found);
}

static void test_whitespace_and_invisible_characters(void **state)
{
    fx *f = *state;
    expect_intent(f, "где мой пакет", "where");
    expect_intent(f, "  где\xC2\xA0мой\t\n  пакет  ", "where"); /* NBSP, tab, newline */
    expect_intent(f, "где\xE2\x80\x89мой пакет", "where");      /* thin space */
    expect_intent(f,
                  "за\xE2\x80\x8B"
                  "каз",
                  "order"); /* zero-width space */
    expect_intent(f, "гдемой пакет", EF_NLP_FALLBACK);
}

/* confidence = 0.5 + 0.4 * coverage + 0.05 per extra pattern (max 2) +
 * 0.05 * priority, clamped */
static void test_confidence(void **state)
{
    fx *f = *state;
    expect_conf(f, "заказ", "order", 0.9);
    /* 5 of 24 letters covered */
    expect_conf(f, "заказ и еще много других слов", "order", 0.5 + 0.4 * 5 / 24);
    expect_conf(f, "красный синий", "colors", 0.95);
    expect_conf(f, "красный синий зеленый", "colors", 1.0);
    expect_conf(f, "привет", "hello", 0.85); /* priority -1 */
    /* nothing understood */
    ef_nlu_result r = fx_run(f, "абракадабра");
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
    assert_true(r.confidence == 1.0);
    assert_int_equal(r.n_ranked, 0);
    r = fx_run(f, "");
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
}

static void test_fallback_threshold(void **state)
{
    (void)state;
    ef_bot *bot = load("fixtures/match_strict.yaml");
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    ef_nlu_result r;
    const char *t = "заказ и еще много других слов";
    assert_int_equal(ef_nlp_match(bot, sc, t, strlen(t), NOW, &r), 0);
    /* 0.5833 < 0.8: fallback, but the candidate is still ranked */
    assert_string_equal(r.intent, EF_NLP_FALLBACK);
    assert_true(fabs(r.confidence - (1 - (0.5 + 0.4 * 5 / 24))) < 1e-9);
    assert_int_equal(r.n_ranked, 1);
    assert_string_equal(r.ranked[0].intent, "order");
    t = "заказ";
    assert_int_equal(ef_nlp_match(bot, sc, t, strlen(t), NOW, &r), 0);
    assert_string_equal(r.intent, "order"); /* 0.9 >= 0.8 */
    ef_nlp_scratch_free(sc);
    ef_bot_free(bot);
}

static void test_ranked(void **state)
{
    fx *f = *state;
    ef_nlu_result r = fx_run(f, "альфа бета гамма дельта эпсилон дзета омега");
    assert_int_equal(r.n_ranked, EF_NLU_MAX_RANKED);
    assert_string_equal(r.intent, r.ranked[0].intent);
    for (size_t i = 1; i < r.n_ranked; i++)
        assert_true(r.ranked[i - 1].confidence >= r.ranked[i].confidence);
    /* the longest words explain the most: эпсилон (7) first */
    assert_string_equal(r.ranked[0].intent, "r5");
    /* each ranked entry says which pattern fired, and where */
    assert_string_equal(r.ranked[0].pattern, "\\bэпсилон\\b");
    assert_int_equal(r.ranked[0].line, 35);
}

/* A long message is scored sentence by sentence: a request is judged by its
 * own sentence, and small talk (negative priority) never wins over it; the
 * small talk stays in the ranking. */
static void test_sentences(void **state)
{
    fx *f = *state;
    ef_nlu_result one = fx_run(f, "привет мы тут долго думали и решили что заказ");
    ef_nlu_result r = fx_run(f, "привет! мы тут долго думали и решили. заказ");
    assert_string_equal(r.intent, "order");
    assert_true(r.confidence > one.confidence); /* its sentence is all "заказ" */
    assert_true(r.confidence == 0.9);
    assert_int_equal(r.n_ranked, 2);
    assert_string_equal(r.ranked[1].intent, "hello");
    /* "привет!" alone explains its sentence fully (0.9 - 0.05), yet the
     * request wins; the ranking stays best first */
    assert_true(r.ranked[1].confidence <= r.ranked[0].confidence);
    r = fx_run(f, "Привет!!! Заказ?");
    assert_string_equal(r.intent, "order");
    /* a dot inside a word or a number is no sentence break */
    r = fx_run(f, "привет.заказ");
    assert_int_equal(r.n_ranked, 2);
    /* small talk alone still wins */
    r = fx_run(f, "Привет! Привет.");
    assert_string_equal(r.intent, "hello");
    /* a lead clause of small talk before a comma (match.c lead_clause())
     * is a sentence of its own for request_first(): the request after it
     * wins, the confidences stay the whole message's */
    r = fx_run(f, "привет hello заказ");
    assert_string_equal(r.intent, "hello");
    r = fx_run(f, "привет hello, заказ");
    assert_string_equal(r.intent, "order");
    assert_int_equal(r.n_ranked, 2);
    assert_string_equal(r.ranked[1].intent, "hello");
    assert_true(r.ranked[1].confidence <= r.ranked[0].confidence);
    /* not after a clause of more than three words, nor when small talk
     * matched after the comma too */
    r = fx_run(f, "привет hello привет hello, заказ");
    assert_string_equal(r.intent, "hello");
    r = fx_run(f, "привет, заказ hello");
    assert_string_equal(r.intent, "hello");
}

static void test_priority_and_ties(void **state)
{
    fx *f = *state;
    ef_nlu_result r = fx_run(f, "ничья");
    assert_string_equal(r.intent, "tie_a"); /* equal: file order */
    assert_int_equal(r.n_ranked, 2);
    assert_string_equal(r.ranked[1].intent, "tie_b");
    assert_true(r.ranked[0].confidence == r.ranked[1].confidence);
    r = fx_run(f, "супер");
    assert_string_equal(r.intent, "cap_hi"); /* both 1.0: priority 2 beats 0 */
    assert_string_equal(r.ranked[1].intent, "cap_lo");
    assert_true(r.ranked[0].confidence == 1.0 && r.ranked[1].confidence == 1.0);
    /* a negative priority loses against a real topic in the same message */
    r = fx_run(f, "привет, заказ");
    assert_string_equal(r.intent, "order");
}

static void test_language(void **state)
{
    fx *f = *state;
    ef_nlu_result r = fx_run(f, "привет");
    assert_string_equal(r.lang, "ru");
    r = fx_run(f, "hello");
    assert_string_equal(r.lang, "en"); /* the pattern is listed under en */
    r = fx_run(f, "bonjour tout le monde");
    assert_string_equal(r.lang, "en"); /* fallback: Latin script */
    r = fx_run(f, "абракадабра");
    assert_string_equal(r.lang, "ru");
    r = fx_run(f, "👍");
    assert_string_equal(r.lang, "ru"); /* no letters: the first language */
}

static void test_always_pattern(void **state)
{
    fx *f = *state;
    expect_intent(f, "123", "always");
    expect_intent(f, "1234", EF_NLP_FALLBACK);
}

static void test_json(void **state)
{
    fx *f = *state;
    ef_nlu_result r = fx_run(f, "Привет 👋 заказ A-1042");
    char *json = ef_nlu_result_json(&r);
    /* letters and digits: привет 6, заказ 5, A1042 5 = 16; order covers
     * 5 + 5 (the entity), hello 6 + 5 with priority -1 */
    assert_string_equal(json,
                        "{\"intent\": \"order\", \"confidence\": 0.75, \"entities\": [{\"type\": "
                        "\"order_number\", \"value\": \"A-1042\", \"start\": 29, \"end\": 35}], "
                        "\"ranked\": [{\"intent\": \"order\", \"confidence\": 0.75}, {\"intent\": "
                        "\"hello\", \"confidence\": 0.725}]}");
    ef_free(json);
    r = fx_run(f, "\"quoted\" \\ text");
    json = ef_nlu_result_json(&r);
    assert_string_equal(json, "{\"intent\": \"fallback\", \"confidence\": 1.0, \"entities\": [], "
                              "\"ranked\": []}");
    ef_free(json);
    ef_nlu_result empty;
    memset(&empty, 0, sizeof(empty));
    assert_null(ef_nlu_result_json(&empty));
    assert_null(ef_nlu_result_json(NULL));
}

static void test_bad_input(void **state)
{
    fx *f = *state;
    ef_nlu_result r;
    memset(&r, 0x5A, sizeof(r));
    ef_nlu_result before = r;
    assert_int_equal(ef_nlp_match(f->bot, f->sc, "\xff\xfe", 2, NOW, &r), EF_EUTF8);
    assert_int_equal(ef_nlp_match(f->bot, f->sc, "\xd0", 1, NOW, &r), EF_EUTF8);
    assert_memory_equal(&r, &before, sizeof(r)); /* untouched */
    assert_int_equal(ef_nlp_match(NULL, f->sc, "x", 1, NOW, &r), EF_EINVAL);
    assert_int_equal(ef_nlp_match(f->bot, NULL, "x", 1, NOW, &r), EF_EINVAL);
    assert_int_equal(ef_nlp_match(f->bot, f->sc, NULL, 1, NOW, &r), EF_EINVAL);
    assert_int_equal(ef_nlp_match(f->bot, f->sc, "x", 1, NOW, NULL), EF_EINVAL);
    /* a scratch belongs to the bot it was made for */
    ef_bot *other = load("fixtures/match_strict.yaml");
    assert_int_equal(ef_nlp_match(other, f->sc, "x", 1, NOW, &r), EF_EINVAL);
    ef_bot_free(other);
    /* NUL bytes inside the text are just characters */
    assert_int_equal(ef_nlp_match(f->bot, f->sc, "заказ\0x", 12, NOW, &r), 0);
    assert_string_equal(r.intent, "order");
}

static void test_long_text_is_cut(void **state)
{
    fx *f = *state;
    /* "1  " then "ж" (2 bytes) repeated: letters start at odd offsets, so the
     * limit (even) falls inside a letter and the cut must back up */
    size_t n = 3 + 2 * (EF_NLP_MAX_TEXT / 2 + 500);
    char *t = ef_malloc(n + 1);
    memcpy(t, "1  ", 3);
    for (size_t i = 3; i < n; i += 2) {
        t[i] = (char)0xD0;
        t[i + 1] = (char)0xB6;
    }
    t[n] = '\0';
    ef_nlu_result r;
    assert_int_equal(ef_nlp_match(f->bot, f->sc, t, n, NOW, &r), 0);
    assert_int_equal(r.n_entities, 1);
    assert_string_equal(r.entities[0].type, "number");
    assert_int_equal(r.entities[0].start, 0);
    assert_int_equal(r.entities[0].end, 1);
    ef_free(t);
}

static void test_options(void **state)
{
    fx *f = *state;
    ef_nlu_result r = fx_run(f, "заказ A-1042");
    assert_int_equal(r.n_entities, 1);
    ef_nlp_scratch_set_options(f->sc, EF_NLP_NO_ENTITIES);
    r = fx_run(f, "заказ A-1042");
    assert_int_equal(r.n_entities, 0);
    assert_string_equal(r.intent, "order");
    ef_nlp_scratch_set_options(f->sc, 0);
    ef_nlu_result empty;
    memset(&empty, 0, sizeof(empty));
    assert_null(ef_nlu_result_entity(&empty, "x"));
    r = fx_run(f, "заказ A-1042");
    const ef_nlu_entity *e = ef_nlu_result_entity(&r, "order_number");
    assert_non_null(e);
    assert_string_equal(e->value, "A-1042");
    assert_null(ef_nlu_result_entity(&r, "phone"));
    ef_nlu_result_cleanup(&r);
    assert_null(r.intent);
    assert_int_equal(r.n_entities, 0);
}

/* ---- the demo bot: prefilter equivalence and threads ------------------------ */

static bool same_result(const ef_nlu_result *a, const ef_nlu_result *b)
{
    if (strcmp(a->intent, b->intent) || a->confidence != b->confidence ||
        a->n_ranked != b->n_ranked || a->n_entities != b->n_entities)
        return false;
    for (size_t i = 0; i < a->n_ranked; i++)
        if (strcmp(a->ranked[i].intent, b->ranked[i].intent) ||
            a->ranked[i].confidence != b->ranked[i].confidence)
            return false;
    for (size_t i = 0; i < a->n_entities; i++)
        if (strcmp(a->entities[i].type, b->entities[i].type) ||
            strcmp(a->entities[i].value, b->entities[i].value) ||
            a->entities[i].start != b->entities[i].start ||
            a->entities[i].end != b->entities[i].end)
            return false;
    return true;
}

/* Pattern text goes through the same fold as message text (base/utf8.c):
 * a pattern written with U+2028, a soft hyphen, the Kelvin sign, a long s or
 * an old Cyrillic letter form matches what its plain form matches, with and
 * without the prefilter. */
static void test_patterns_fold_like_messages(void **state)
{
    (void)state;
    ef_bot *bot = load("fixtures/match_fold.yaml");
    ef_nlp_scratch *fast = ef_nlp_scratch_new(bot), *slow = ef_nlp_scratch_new(bot);
    ef_nlp_scratch_set_options(slow, EF_NLP_NO_PREFILTER);
    static const char *const cases[][2] = {
        {"где мой трек", "line_sep"},
        {"Где\xE2\x80\xA8мой\tтрек", "line_sep"}, /* U+2028 in the message too */
        {"где\xC2\xA0мой трек?", "line_sep"},
        {"гдемой трек", EF_NLP_FALLBACK},
        {"доставка", "shy"},
        {"ДО\xC2\xADСТАВКОЙ", "shy"}, /* soft hyphen in the message too */
        {"до ставка", EF_NLP_FALLBACK},
        {"kiwi", "kelvin"},
        {"KIWI", "kelvin"},
        {"\xE2\x84\xAAiwi", "kelvin"}, /* Kelvin sign in the message too */
        {"basket", "long_s"},
        {"BA\xC5\xBFKET", "long_s"},
        {"ковер", "old_cyr"},
        {"КОВЁР", "old_cyr"},
        {"зел ёный", "in_class"},
        {"зел_еный", "in_class"},
        {"зелёный", EF_NLP_FALLBACK},
        {"промо-код", "escaped"},
        {"промо+код", "escaped"},
        {"про\xC2\xADмо\xE2\x80\x90код", "escaped"},
        {"промокод", EF_NLP_FALLBACK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *t = cases[i][0];
        ef_nlu_result a, b;
        assert_int_equal(ef_nlp_match(bot, fast, t, strlen(t), NOW, &a), 0);
        assert_int_equal(ef_nlp_match(bot, slow, t, strlen(t), NOW, &b), 0);
        if (strcmp(a.intent, cases[i][1]) != 0)
            fail_msg("\"%s\": want %s, got %s", t, cases[i][1], a.intent);
        if (!same_result(&a, &b))
            fail_msg("prefilter changed the result of \"%s\"", t);
    }
    ef_nlp_scratch_free(fast);
    ef_nlp_scratch_free(slow);
    ef_bot_free(bot);
}

static bool lits_has(const ef_nlp__lits *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->len[i] == strlen(s) && memcmp(l->s[i], s, l->len[i]) == 0)
            return true;
    return false;
}

/* A sequence with two literal parts yields a second required set (the
 * prefilter then runs the pattern only when both occur); so do the parts of
 * a group when their strings are long enough to be rare; an alternation at
 * the top never does. */
static void test_second_required_literals(void **state)
{
    (void)state;
    ef_nlp__lits a = {0}, b = {0};
    const char *p = "\\b(?:где|когда)\\b.{0,30}\\bзаказ";
    assert_true(ef_nlp__required_literals(p, strlen(p), &a, &b));
    assert_int_equal(b.n > 0, 1);
    assert_true((lits_has(&a, "заказ") && lits_has(&b, "где") && lits_has(&b, "когда")) ||
                (lits_has(&b, "заказ") && lits_has(&a, "где") && lits_has(&a, "когда")));
    ef_nlp__lits_cleanup(&a);
    ef_nlp__lits_cleanup(&b);
    /* inside a group, a branch's other literal is the second set ("доставк~
     * еды", as rewritten, wakes up only with " еды" too); branches without
     * one bring their first */
    const char *g = "(?:\\S+ ){0,2}\\b(?:кафе|доставк\\p{L}* еды)\\b(?: \\S+){0,3}";
    assert_true(ef_nlp__required_literals(g, strlen(g), &a, &b));
    assert_true(lits_has(&a, "кафе") && lits_has(&a, "доставк"));
    assert_true(lits_has(&b, "кафе") && lits_has(&b, " еды") && !lits_has(&b, "доставк"));
    ef_nlp__lits_cleanup(&a);
    ef_nlp__lits_cleanup(&b);
    /* what follows a stem is a segment of its own: " из ..." is the
     * branch's other literal, so "заказ" alone no longer wakes the pattern */
    const char *s = "(?:\\S+ ){0,2}\\b(?:заказ\\p{L}* из (?:германи\\p{L}*|кита\\p{L}*)|"
                    "чайник\\p{L}*)\\b(?: \\S+){0,3}";
    assert_true(ef_nlp__required_literals(s, strlen(s), &a, &b));
    assert_true(lits_has(&a, "заказ") && lits_has(&a, "чайник"));
    assert_true(lits_has(&b, "чайник") && !lits_has(&b, "заказ"));
    assert_true(lits_has(&b, " из ") || (lits_has(&b, "германи") && lits_has(&b, "кита")));
    ef_nlp__lits_cleanup(&a);
    ef_nlp__lits_cleanup(&b);
    /* a word list both branches require is the second set, not the union
     * of every branch's second list */
    const char *d = "(?:\\S+ ){0,2}\\b(?:(?:отправ\\p{L}*|достав\\p{L}*) (?:\\S+ )?"
                    "(?:документ\\p{L}*|письм[оа])|(?:документ\\p{L}*|письм[оа]) (?:\\S+ )?"
                    "(?:курьер\\p{L}*|почт\\p{L}*))\\b";
    assert_true(ef_nlp__required_literals(d, strlen(d), &a, &b));
    assert_true(lits_has(&a, "достав") && lits_has(&a, "документ"));
    assert_true(lits_has(&b, "документ") && lits_has(&b, "письмо") && lits_has(&b, "письма"));
    assert_true(!lits_has(&b, "достав") && !lits_has(&b, "почт"));
    ef_nlp__lits_cleanup(&a);
    ef_nlp__lits_cleanup(&b);
    /* a requirement after a piece that requires nothing is found whole */
    const char *q = "(?:где.{0,30}заказ)?доставка";
    assert_true(ef_nlp__required_literals(q, strlen(q), &a, &b));
    assert_true(lits_has(&a, "доставка"));
    ef_nlp__lits_cleanup(&a);
    ef_nlp__lits_cleanup(&b);
    const char *h = "(?:где.{0,30}заказ)"; /* a group's segments, as the top level's */
    assert_true(ef_nlp__required_literals(h, strlen(h), &a, &b));
    assert_true((lits_has(&a, "заказ") && lits_has(&b, "где")) ||
                (lits_has(&a, "где") && lits_has(&b, "заказ")));
    ef_nlp__lits_cleanup(&a);
    ef_nlp__lits_cleanup(&b);
    static const char *const none[] = {"где.{0,30}заказ|доставка", "заказ (?:где|куда)", "заказ.*",
                                       "(?:да.{0,30}ок)"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        ef_nlp__lits x = {0}, y = {0};
        ef_nlp__required_literals(none[i], strlen(none[i]), &x, &y);
        size_t ny = y.n;
        ef_nlp__lits_cleanup(&x);
        ef_nlp__lits_cleanup(&y);
        if (ny != 0)
            fail_msg("\"%s\": a second set of %zu", none[i], ny);
    }
}

/* Where a literal must stand: right after \b (at a word start) or ^ (at
 * the start of the text); the prefilter then ignores occurrences elsewhere
 * ("да" inside "когда" does not wake "^(?:да|ок)"). */
static void test_literal_positions(void **state)
{
    (void)state;
    static const struct {
        const char *pat;
        unsigned at;
    } cases[] = {
        {"\\b(?:где|когда)\\b", EF_NLP__AT_WORD | EF_NLP__AT_MATCH},
        {"^(?:да+|ок)[!. ]*$", EF_NLP__AT_START | EF_NLP__AT_MATCH},
        {"^\\bда", EF_NLP__AT_START | EF_NLP__AT_WORD | EF_NLP__AT_MATCH},
        {"(?:\\S+ ){0,2}\\b(?:мтс|сотов~ связ~)", EF_NLP__AT_WORD},
        {"\\b(?:заказ~|посылк~)", EF_NLP__AT_WORD | EF_NLP__AT_MATCH},
        {"(?:\\bмой )?заказ", EF_NLP__AT_MATCH}, /* the assertion may be skipped */
        {"\\b(?:где|.{0,3}когда)", 0},           /* one branch's literal is not its start */
        {"(?:где|\\bкогда)", EF_NLP__AT_MATCH},
        {"x?\\bзаказ", EF_NLP__AT_MATCH}, /* the literals found are "xзаказ" and "заказ" */
        {".?\\bзаказ", EF_NLP__AT_WORD},
        {"заказ\\b", EF_NLP__AT_MATCH},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ef_nlp__lits a = {0}, b = {0};
        assert_true(ef_nlp__required_literals(cases[i].pat, strlen(cases[i].pat), &a, &b));
        if (a.at != cases[i].at)
            fail_msg("\"%s\": at %u, want %u", cases[i].pat, a.at, cases[i].at);
        ef_nlp__lits_cleanup(&a);
        ef_nlp__lits_cleanup(&b);
    }

    ef_nlp__prefilter pf;
    ef_nlp__pf_init(&pf, 4);
    ef_nlp__pf_add_at(&pf, "да", strlen("да"), 0, EF_NLP__AT_START);
    ef_nlp__pf_add_at(&pf, "да", strlen("да"), 1, EF_NLP__AT_WORD);
    ef_nlp__pf_add(&pf, "да", strlen("да"), 2);
    ef_nlp__pf_add_at(&pf, "№", strlen("№"), 3, EF_NLP__AT_WORD); /* not a word character */
    ef_nlp__pf_build(&pf);
    static const struct {
        const char *text;
        uint64_t bits;
    } probes[] = {
        {"да", 0x7},  {"когда", 0x4}, {"ну да", 0x6}, {"ну,да", 0x6}, {"xда", 0x4}, {"1да", 0x4},
        {"_да", 0x4}, {"😀да", 0x6},   {"ёда", 0x4},   {"a №", 0x8},   {"a№", 0x8},  {"", 0},
    };
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        uint64_t bits = 0;
        ef_nlp__pf_probe(&pf, probes[i].text, strlen(probes[i].text), false, &bits, NULL);
        if (bits != probes[i].bits)
            fail_msg("\"%s\": bits %#llx, want %#llx", probes[i].text, (unsigned long long)bits,
                     (unsigned long long)probes[i].bits);
    }
    ef_nlp__pf_cleanup(&pf);
}

static const char *const extra_texts[] = {
    "Здравствуйте! Где мой заказ А-1042? Жду с 12.03, тел +7 916 123-45-67",
    "верните 1 500 ₽ на карту, списали дважды 😡",
    "when will my order arrive? tomorrow at 6pm?",
    "ПОЗОВИТЕ ОПЕРАТОРА!!!",
    "можно доставку в пятницу в 6 вечера на ivan@mail.ru",
    "",
    "🙂🙂🙂",
    "qwertyuiop",
    /* amounts in words without a digit: the word pass must wake up */
    "сто долларов",
    "пять миллионов",
    "два млн",
    "сто руб",
    "two thousand dollars",
    "пятьсот евро",
    "$1,500.50 z\xD0\x83 млн руб",
};

static void test_prefilter_changes_nothing(void **state)
{
    (void)state;
    char *path = path_of("../../../bots/demo.yaml");
    char err[1024];
    ef_bot *bot = NULL;
    if (ef_bot_load(path, &bot, err, sizeof(err)))
        fail_msg("%s", err);
    ef_free(path);
    ef_nlp_scratch *fast = ef_nlp_scratch_new(bot), *slow = ef_nlp_scratch_new(bot);
    ef_nlp_scratch_set_options(slow, EF_NLP_NO_PREFILTER);
    size_t n = ef_bot_example_count(bot), total = n + sizeof(extra_texts) / sizeof(char *);
    for (size_t i = 0; i < total; i++) {
        const char *t;
        if (i < n) {
            ef_bot_example ex;
            ef_bot_example_get(bot, i, &ex);
            t = ex.text;
        } else {
            t = extra_texts[i - n];
        }
        ef_nlu_result a, b;
        assert_int_equal(ef_nlp_match(bot, fast, t, strlen(t), NOW, &a), 0);
        assert_int_equal(ef_nlp_match(bot, slow, t, strlen(t), NOW, &b), 0);
        if (!same_result(&a, &b))
            fail_msg("prefilter changed the result of \"%s\": %s vs %s", t, a.intent, b.intent);
    }
    ef_nlp_scratch_free(fast);
    ef_nlp_scratch_free(slow);
    ef_bot_free(bot);
}

typedef struct job {
    const ef_bot *bot;
    const ef_nlu_result *expect;
    size_t n;
    int failures;
} job;

static void *worker(void *arg)
{
    job *j = arg;
    ef_nlp_scratch *sc = ef_nlp_scratch_new(j->bot);
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < j->n; i++) {
            ef_nlu_result r;
            const char *t = extra_texts[i];
            if (ef_nlp_match(j->bot, sc, t, strlen(t), NOW, &r) || !same_result(&r, &j->expect[i]))
                j->failures++;
        }
    }
    ef_nlp_scratch_free(sc);
    return NULL;
}

/* One bot shared by four threads, each with its own scratch. */
static void test_threads_share_a_bot(void **state)
{
    (void)state;
    char *path = path_of("../../../bots/demo.yaml");
    char err[1024];
    ef_bot *bot = NULL;
    if (ef_bot_load(path, &bot, err, sizeof(err)))
        fail_msg("%s", err);
    ef_free(path);
    size_t n = sizeof(extra_texts) / sizeof(extra_texts[0]);
    ef_nlu_result expect[sizeof(extra_texts) / sizeof(extra_texts[0])];
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            ef_nlp_match(bot, sc, extra_texts[i], strlen(extra_texts[i]), NOW, &expect[i]), 0);
    ef_nlp_scratch_free(sc);
    pthread_t th[4];
    job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (job){bot, expect, n, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(jobs[i].failures, 0);
    }
    /* and the demo bot understands these the way a customer means them */
    assert_string_equal(expect[0].intent, "order_status");
    assert_string_equal(expect[3].intent, "operator");
    ef_bot_free(bot);
}

/* ---- lowering: compiled without PCRE2_CASELESS, same answers ------------------------ */

static pcre2_code *compile_with(const char *p, size_t n, uint32_t flags)
{
    int ec;
    PCRE2_SIZE eo;
    return pcre2_compile((PCRE2_SPTR)p, n, PCRE2_UTF | PCRE2_UCP | flags, &ec, &eo, NULL);
}

/* Compiles `source` as the loader does, both ways, and compares the two on
 * the normalized form of every text. Returns false when the pattern cannot
 * be lowered (it then keeps PCRE2_CASELESS). */
static bool check_lowering(fx *f, const char *source, const char *const *texts, size_t nt)
{
    size_t rl, ll;
    uint32_t *map;
    char *rw = ef_nlp__pattern_rewrite(source, strlen(source), &rl, &map);
    ef_free(map);
    char *lower = ef_nlp__pattern_lower(rw, rl, &ll);
    if (!lower) {
        ef_free(rw);
        return false;
    }
    pcre2_code *a = compile_with(rw, rl, PCRE2_CASELESS), *b = compile_with(lower, ll, 0);
    if (!a || !b)
        fail_msg("'%s' -> '%s' does not compile", source, lower);
    pcre2_match_data *ma = pcre2_match_data_create(1, NULL), *mb = pcre2_match_data_create(1, NULL);
    for (size_t i = 0; i < nt; i++) {
        ef_nlu_result r;
        assert_int_equal(ef_nlp_match(f->bot, f->sc, texts[i], strlen(texts[i]), NOW, &r), 0);
        PCRE2_SPTR subj = (PCRE2_SPTR)f->sc->norm;
        for (size_t from = 0; from <= f->sc->n; from++) {
            int ra = pcre2_match(a, subj, f->sc->n, from, 0, ma, NULL);
            int rb = pcre2_match(b, subj, f->sc->n, from, 0, mb, NULL);
            PCRE2_SIZE *oa = pcre2_get_ovector_pointer(ma), *ob = pcre2_get_ovector_pointer(mb);
            if ((ra >= 0) != (rb >= 0) || (ra >= 0 && (oa[0] != ob[0] || oa[1] != ob[1])))
                fail_msg("'%s' (lowered '%s') on \"%s\" from %zu: caseless %d [%zu,%zu), "
                         "lowered %d [%zu,%zu)",
                         source, lower, f->sc->norm, from, ra, ra >= 0 ? (size_t)oa[0] : 0,
                         ra >= 0 ? (size_t)oa[1] : 0, rb, rb >= 0 ? (size_t)ob[0] : 0,
                         rb >= 0 ? (size_t)ob[1] : 0);
        }
    }
    pcre2_match_data_free(ma);
    pcre2_match_data_free(mb);
    pcre2_code_free(a);
    pcre2_code_free(b);
    ef_free(lower);
    ef_free(rw);
    return true;
}

static const char *const case_texts[] = {
    "ABC abc Abc",
    "Заказ ЗАКАЗ заказ зАкАз",
    "école ÉCOLE Ecole",
    "Ѐ ѐ Ђ ђ Џ џ",
    "k K \xE2\x84\xAA",
    "s S \xC5\xBF",
    "[-]а ]-[ ^",
    "ёЁ еЕ",
    "x y Z _ 9",
    "ΣΊΣΥΦΟΣ σίσυφος",
    "ᲀ ᲁ ᲂ Вдо",
    "Name NAME name",
    "Ǆ ǅ ǆ",
    "~!@#$%^&*()",
    "",
    "Ёлка 🎄 ЁЖ 👍",
    "ИНТЕРНЕТ-МАГАЗИН интернет магазин",
    "A-1042 а-1042 B77001",
};

static void test_lowering_is_exact(void **state)
{
    fx *f = *state;
    static const char *const lowered[] = {"[А-Я]+ка",
                                          "[^A-Z]x",
                                          "[A-Za-z0-9_]+",
                                          "[[:alpha:]]+",
                                          "[\\-\\]а]",
                                          "\\p{Lu}",
                                          "(?<Name>Заказ)",
                                          "[Ѐ-Я]+",
                                          "[!-~]+",
                                          "ЗАКАЗ~",
                                          "[^а-я ]+",
                                          "Ё[Ёё]",
                                          "\\bK\\b",
                                          "S+",
                                          "[^\\W\\d]+",
                                          "\\bИНТЕРНЕТ\\-МАГАЗИН\\b",
                                          "[A-Z]{1,2}-?\\d{3,9}",
                                          "(?:Вдо|ВДО)",
                                          "[🎄👍]",
                                          "[\\p{Lu}\\p{Ll}]+",
                                          "[a-c]|[X-Z]",
                                          "(?=Заказ)\\w+",
                                          "(?<!А)к"};
    for (size_t i = 0; i < sizeof(lowered) / sizeof(lowered[0]); i++)
        if (!check_lowering(f, lowered[i], case_texts, sizeof(case_texts) / sizeof(char *)))
            fail_msg("'%s' should be lowered", lowered[i]);
    /* these keep PCRE2_CASELESS: other scripts' letters, code escapes,
     * inline options, [:upper:] */
    static const char *const kept[] = {"ÉCOLE",       "\\x{41}", "(?i)ABC",   "(?-i)abc",
                                       "[[:upper:]]", "[é-ü]",   "σ",         "\\Qabc\\E",
                                       "(a)\\1",      "[a-я]",   "(*UCP)abc", "\\N{U+41}"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        if (check_lowering(f, kept[i], case_texts, sizeof(case_texts) / sizeof(char *)))
            fail_msg("'%s' should keep PCRE2_CASELESS", kept[i]);
}

/* Every pattern of the demo bot, on every example and some mixed-case text. */
static void test_demo_patterns_lowering_is_exact(void **state)
{
    fx *f = *state;
    char *path = path_of("../../../bots/demo.yaml");
    char err[1024];
    ef_bot *demo = NULL;
    if (ef_bot_load(path, &demo, err, sizeof(err)))
        fail_msg("%s", err);
    ef_free(path);
    size_t ne = ef_bot_example_count(demo), nt = ne + sizeof(case_texts) / sizeof(char *);
    const char **texts = ef_calloc(nt, sizeof(char *));
    for (size_t i = 0; i < ne; i++) {
        ef_bot_example ex;
        ef_bot_example_get(demo, i, &ex);
        texts[i] = ex.text;
    }
    for (size_t i = ne; i < nt; i++)
        texts[i] = case_texts[i - ne];
    size_t n_lowered = 0, n_split = 0;
    pcre2_match_data *md = pcre2_match_data_create(demo->max_groups + 1, NULL);
    for (size_t g = 0; g < demo->n_pats; g++) {
        if (demo->pats[g].group != g)
            continue; /* once per pattern as written */
        const char *src = demo->pats[g].source;
        n_lowered += check_lowering(f, src, texts, nt);
        /* its branches, leftmost first, match exactly like the whole */
        size_t end = g + 1;
        while (end < demo->n_pats && demo->pats[end].group == g)
            end++;
        n_split += end - g > 1;
        size_t rl;
        uint32_t *map;
        char *rw = ef_nlp__pattern_rewrite(src, strlen(src), &rl, &map);
        pcre2_code *whole = compile_with(rw, rl, PCRE2_CASELESS);
        for (size_t t = 0; t < nt; t++) {
            ef_nlu_result r;
            assert_int_equal(ef_nlp_match(f->bot, f->sc, texts[t], strlen(texts[t]), NOW, &r), 0);
            PCRE2_SPTR subj = (PCRE2_SPTR)f->sc->norm;
            int rw_rc = pcre2_match(whole, subj, f->sc->n, 0, 0, md, NULL);
            PCRE2_SIZE ws = rw_rc >= 0 ? pcre2_get_ovector_pointer(md)[0] : 0;
            PCRE2_SIZE we = rw_rc >= 0 ? pcre2_get_ovector_pointer(md)[1] : 0;
            bool have = false;
            PCRE2_SIZE bs = 0, be = 0;
            for (size_t j = g; j < end; j++) {
                if (pcre2_match(demo->pats[j].code, subj, f->sc->n, 0, 0, md, NULL) < 0)
                    continue;
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                if (!have || ov[0] < bs) {
                    bs = ov[0];
                    be = ov[1];
                    have = true;
                }
            }
            if (have != (rw_rc >= 0) || (have && (bs != ws || be != we)))
                fail_msg("'%s' on \"%s\": whole %d [%zu,%zu), branches %d [%zu,%zu)", src,
                         f->sc->norm, rw_rc, (size_t)ws, (size_t)we, have, (size_t)bs, (size_t)be);
        }
        pcre2_code_free(whole);
        ef_free(rw);
        ef_free(map);
    }
    pcre2_match_data_free(md);
    assert_true(n_lowered >= demo->n_intents); /* nearly all of them */
    assert_true(n_split > 10);
    ef_free(texts);
    ef_bot_free(demo);
}

/* The core of a branch (ef_nlp__pattern_core): what is left without the
 * optional pieces at its ends, only when one opens it. */
static void test_pattern_core(void **state)
{
    (void)state;
    static const struct {
        const char *pat, *core; /* core NULL: none */
    } cases[] = {
        {"(?:\\S+ ){0,2}\\b(?:мтс|сбер)\\b(?: \\S+){0,3}", "\\b(?:мтс|сбер)\\b"},
        {"(?:а )?(?:б|в)? ?где", "где"},
        {"x*[ab]{1,2}c?", "[ab]{1,2}"},
        {"(?:а )?\\p{L}+ (?=x)", "\\p{L}+ (?=x)"},
        {"\\bзаказ\\p{L}*", NULL}, /* nothing optional before it */
        {"(?:а )?(?:б )*", NULL},  /* nothing else */
        {"(?:a )?(x)\\1", NULL},   /* a back reference */
        {"(?i)(?:a )?b", NULL},    /* inline options */
        {"(?:a )?b{x}", NULL},     /* a brace that is no quantifier */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t off = 0, len = 0;
        bool has = ef_nlp__pattern_core(cases[i].pat, strlen(cases[i].pat), &off, &len);
        if (has != (cases[i].core != NULL) ||
            (has &&
             (len != strlen(cases[i].core) || memcmp(cases[i].pat + off, cases[i].core, len) != 0)))
            fail_msg("'%s': core %d '%.*s'", cases[i].pat, has, (int)len, cases[i].pat + off);
    }
}

/* Every demo intent branch with a core: where the core finds no match in a
 * message (the bot's examples, and some mixed-case text), the branch finds
 * none either -- the matcher skips the branch there. */
static void test_demo_cores_lose_nothing(void **state)
{
    fx *f = *state;
    char *path = path_of("../../../bots/demo.yaml");
    char err[1024];
    ef_bot *demo = NULL;
    if (ef_bot_load(path, &demo, err, sizeof(err)))
        fail_msg("%s", err);
    ef_free(path);
    size_t ne = ef_bot_example_count(demo), n_cores = 0, n_core_hits = 0;
    pcre2_match_data *md = pcre2_match_data_create(demo->max_groups + 1, NULL);
    for (size_t t = 0; t < ne + sizeof(case_texts) / sizeof(char *); t++) {
        ef_bot_example ex = {0};
        if (t < ne)
            ef_bot_example_get(demo, t, &ex);
        const char *text = t < ne ? ex.text : case_texts[t - ne];
        ef_nlu_result r;
        assert_int_equal(ef_nlp_match(f->bot, f->sc, text, strlen(text), NOW, &r), 0);
        PCRE2_SPTR subj = (PCRE2_SPTR)f->sc->norm;
        for (size_t j = 0; j < demo->n_intent_pats; j++) {
            if (!demo->pats[j].core)
                continue;
            n_cores += t == 0;
            bool core = pcre2_match(demo->pats[j].core, subj, f->sc->n, 0, 0, md, NULL) >= 0;
            bool whole = pcre2_match(demo->pats[j].code, subj, f->sc->n, 0, 0, md, NULL) >= 0;
            n_core_hits += core;
            if (whole && !core)
                fail_msg("line %d: the branch matches \"%s\", its core does not",
                         demo->pats[j].line, f->sc->norm);
        }
    }
    pcre2_match_data_free(md);
    assert_true(n_cores >= 20);
    assert_true(n_core_hits > 0);
    ef_bot_free(demo);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cyrillic_caseless_and_boundaries, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_yo_and_ye_are_one_letter, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stems, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_stems_stay_in_their_word, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_negative_patterns, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_out_of_scope, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_whitespace_and_invisible_characters, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_confidence, fx_setup, fx_teardown),
        cmocka_unit_test(test_fallback_threshold),
        cmocka_unit_test_setup_teardown(test_ranked, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_priority_and_ties, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_sentences, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_language, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_always_pattern, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_json, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_long_text_is_cut, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_options, fx_setup, fx_teardown),
        cmocka_unit_test(test_second_required_literals),
        cmocka_unit_test(test_literal_positions),
        cmocka_unit_test(test_prefilter_changes_nothing),
        cmocka_unit_test(test_patterns_fold_like_messages),
        cmocka_unit_test(test_threads_share_a_bot),
        cmocka_unit_test_setup_teardown(test_lowering_is_exact, fx_setup, fx_teardown),
        cmocka_unit_test(test_pattern_core),
        cmocka_unit_test_setup_teardown(test_demo_cores_lose_nothing, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_demo_patterns_lowering_is_exact, fx_setup,
                                        fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
