/*
 * test_botdef.c -- loading bot definitions (src/nlp/botdef.c, tz.c).
 *
 * Fixtures live in tests/unit/nlp/fixtures/ (found next to this file, so run
 * the binary from the repository root, as make does). Each botdef_err_*.yaml
 * is a broken bot whose first line says which "line:column: reason" the
 * loader must report; botdef_ok.yaml and botdef_fsm.yaml load.
 */
#include "nlp/fsm.h"
#include "nlp/nlp.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char *fixture_path(const char *name)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dirlen = slash ? (int)(slash - file) : 1;
    return ef_asprintf("%.*s/fixtures/%s", dirlen, slash ? file : ".", name);
}

static char *repo_path(const char *rel)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dirlen = slash ? (int)(slash - file) : 1;
    return ef_asprintf("%.*s/../../../%s", dirlen, slash ? file : ".", rel);
}

static ef_bot *load_ok(const char *name)
{
    char *path = fixture_path(name);
    char err[1024];
    ef_bot *bot = NULL;
    int rc = ef_bot_load(path, &bot, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s: %s", name, err);
    ef_free(path);
    return bot;
}

static void test_ok_defaults_and_accessors(void **state)
{
    (void)state;
    ef_bot *bot = load_ok("botdef_ok.yaml");
    assert_string_equal(ef_bot_name(bot), "test-bot");
    assert_int_equal(ef_bot_language_count(bot), 2);
    assert_string_equal(ef_bot_language(bot, 0), "ru");
    assert_string_equal(ef_bot_language(bot, 1), "en");
    assert_null(ef_bot_language(bot, 2));
    assert_string_equal(ef_bot_timezone(bot), "Europe/Moscow");
    assert_true(ef_bot_fallback_threshold(bot) == 0.5);
    assert_null(ef_bot_fsm(bot));

    assert_int_equal(ef_bot_intent_count(bot), 2);
    assert_string_equal(ef_bot_intent_name(bot, 0), "greeting");
    assert_string_equal(ef_bot_intent_name(bot, 1), "order_status");

    /* built-ins first, in their fixed order, then the bot's own */
    static const char *const types[] = {"phone", "email",  "order_number", "money", "date",
                                        "time",  "number", "marketplace",  "sku"};
    assert_int_equal(ef_bot_entity_type_count(bot), 9);
    for (size_t i = 0; i < 9; i++)
        assert_string_equal(ef_bot_entity_type(bot, i), types[i]);

    /* examples: intent by intent, positives then negatives, with positions */
    assert_int_equal(ef_bot_example_count(bot), 4);
    ef_bot_example ex;
    assert_int_equal(ef_bot_example_get(bot, 0, &ex), 0);
    assert_string_equal(ex.intent, "greeting");
    assert_string_equal(ex.text, "Привет");
    assert_string_equal(ex.lang, "ru");
    assert_false(ex.negative);
    assert_int_equal(ex.line, 11);
    assert_int_equal(ex.column, 12);
    assert_int_equal(ef_bot_example_get(bot, 1, &ex), 0);
    assert_string_equal(ex.lang, "en");
    assert_int_equal(ef_bot_example_get(bot, 2, &ex), 0);
    assert_true(ex.negative);
    assert_string_equal(ex.text, "пока");
    assert_null(ex.lang);
    assert_int_equal(ef_bot_example_get(bot, 3, &ex), 0);
    assert_string_equal(ex.intent, "order_status");
    assert_int_equal(ef_bot_example_get(bot, 4, &ex), EF_EINVAL);

    /* Moscow is UTC+3 all year */
    assert_int_equal(ef_bot_utc_offset(bot, 1773133200), 3 * 3600);
    assert_int_equal(ef_bot_utc_offset(bot, 1784000000), 3 * 3600);
    ef_bot_free(bot);
}

static void test_fsm_section_is_compiled(void **state)
{
    (void)state;
    ef_bot *bot = load_ok("botdef_fsm.yaml");
    assert_non_null(ef_bot_fsm(bot));
    ef_bot_free(bot);
}

/* A bot with one extra state named name (reachable from initial), written
 * to a temporary file; returns ef_bot_load's code, err gets the message. */
static int load_with_state(const char *name, char *err, size_t errlen, char **path_out)
{
    char *path = ef_strdup("/tmp/ef_test_botdef_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fprintf(f,
            "bot: {name: long-state, languages: [ru]}\n"
            "intents:\n"
            "  greeting: {patterns: ['\\bпривет']}\n"
            "fsm:\n"
            "  fallback: \"Не понял.\"\n"
            "  repeated_fallback: \"Позвать оператора?\"\n"
            "  states:\n"
            "    initial:\n"
            "      transitions:\n"
            "        - {intent: greeting, reply: \"Здравствуйте!\", goto: %s}\n"
            "    %s: {}\n",
            name, name);
    fclose(f);
    ef_bot *bot = NULL;
    int rc = ef_bot_load(path, &bot, err, errlen);
    ef_bot_free(bot);
    unlink(path);
    *path_out = path;
    return rc;
}

/* conversations.current_state is VARCHAR(100) (sql/001_seed_schema.sql):
 * a state name that cannot be stored is refused at load, where it is
 * written; the limit counts characters, as PostgreSQL does. */
static void test_state_name_must_fit_the_database(void **state)
{
    (void)state;
    char err[1024], name[512];
    char *path;
    memset(name, 'a', EF_FSM_STATE_NAME_MAX);
    name[EF_FSM_STATE_NAME_MAX] = '\0';
    assert_int_equal(EF_FSM_STATE_NAME_MAX, 100);
    if (load_with_state(name, err, sizeof(err), &path) != 0)
        fail_msg("a %d-character state name must load: %s", EF_FSM_STATE_NAME_MAX, err);
    ef_free(path);

    /* 100 Cyrillic letters are 200 bytes but 100 characters: they fit */
    for (int i = 0; i < EF_FSM_STATE_NAME_MAX; i++)
        memcpy(name + 2 * i, "я", 2);
    name[2 * EF_FSM_STATE_NAME_MAX] = '\0';
    if (load_with_state(name, err, sizeof(err), &path) != 0)
        fail_msg("100 Cyrillic letters must load: %s", err);
    ef_free(path);

    memset(name, 'a', EF_FSM_STATE_NAME_MAX + 1);
    name[EF_FSM_STATE_NAME_MAX + 1] = '\0';
    assert_int_equal(load_with_state(name, err, sizeof(err), &path), EF_EINVAL);
    char *want = ef_asprintf("%s:11:5: state name 'aaaa", path);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("want %s..., got %s", want, err);
    assert_non_null(strstr(err, "101 characters"));
    assert_non_null(strstr(err, "at most 100"));
    ef_free(want);
    ef_free(path);
}

static void test_demo_bot_loads(void **state)
{
    (void)state;
    char *path = repo_path("bots/demo.yaml");
    char err[1024];
    ef_bot *bot = NULL;
    int rc = ef_bot_load(path, &bot, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    assert_true(ef_bot_intent_count(bot) >= 20);
    static const char *const required[] = {"greeting",
                                           "goodbye",
                                           "thanks",
                                           "order_status",
                                           "delivery",
                                           "returns",
                                           "payment_problem",
                                           "cancel_order",
                                           "change_address",
                                           "opening_hours",
                                           "operator",
                                           "complaint",
                                           "product_availability",
                                           "promo"};
    for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++) {
        bool found = false;
        for (size_t i = 0; i < ef_bot_intent_count(bot); i++)
            found = found || strcmp(ef_bot_intent_name(bot, i), required[k]) == 0;
        if (!found)
            fail_msg("the demo bot lacks intent %s", required[k]);
    }
    size_t positives = 0;
    for (size_t i = 0; i < ef_bot_example_count(bot); i++) {
        ef_bot_example ex;
        assert_int_equal(ef_bot_example_get(bot, i, &ex), 0);
        positives += !ex.negative;
    }
    assert_true(positives >= 300);
    ef_bot_free(bot);
    ef_free(path);
}

/* Every broken fixture is refused with exactly the position and reason on
 * its first line ("# expect: LINE:COL: reason"). */
static void test_errors_from_fixtures(void **state)
{
    (void)state;
    static const char *const names[] = {"botdef_err_regex.yaml",
                                        "botdef_err_regex_plain.yaml",
                                        "botdef_err_unknown_key.yaml",
                                        "botdef_err_unknown_top.yaml",
                                        "botdef_err_unknown_bot_key.yaml",
                                        "botdef_err_priority.yaml",
                                        "botdef_err_patterns_type.yaml",
                                        "botdef_err_dup_intent.yaml",
                                        "botdef_err_yaml.yaml",
                                        "botdef_err_fallback.yaml",
                                        "botdef_err_builtin_entity.yaml",
                                        "botdef_err_timezone.yaml",
                                        "botdef_err_lang.yaml",
                                        "botdef_err_empty_match.yaml",
                                        "botdef_err_threshold.yaml",
                                        "botdef_err_entity_both.yaml",
                                        "botdef_err_plain_colon.yaml",
                                        "botdef_err_no_patterns.yaml",
                                        "botdef_err_order_pattern.yaml",
                                        "botdef_err_fsm.yaml",
                                        "botdef_err_no_name.yaml",
                                        "botdef_err_bad_name.yaml",
                                        "botdef_err_oos_key.yaml",
                                        "botdef_err_oos_topic_name.yaml",
                                        "botdef_err_oos_topic_empty.yaml"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *path = fixture_path(names[i]);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        char first[512];
        assert_non_null(fgets(first, sizeof(first), f));
        fclose(f);
        first[strcspn(first, "\n")] = '\0';
        const char *prefix = "# expect: ";
        assert_int_equal(strncmp(first, prefix, strlen(prefix)), 0);
        char *want = ef_asprintf("%s:%s", path, first + strlen(prefix));

        char err[1024];
        ef_bot *bot = (ef_bot *)0x1;
        int rc = ef_bot_load(path, &bot, err, sizeof(err));
        if (rc == 0)
            fail_msg("%s loaded, but should fail with %s", names[i], want);
        assert_int_equal(rc, EF_EINVAL);
        assert_ptr_equal(bot, (ef_bot *)0x1); /* out untouched on failure */
        if (strncmp(err, want, strlen(want)) != 0)
            fail_msg("%s:\n  want %s\n  got  %s", names[i], want, err);
        ef_free(want);
        ef_free(path);
    }
}

static void test_missing_file(void **state)
{
    (void)state;
    char err[256];
    ef_bot *bot = NULL;
    assert_int_equal(ef_bot_load("/nonexistent/bot.yaml", &bot, err, sizeof(err)), EF_EIO);
    assert_null(bot);
    assert_string_equal(err, "/nonexistent/bot.yaml: No such file or directory");
    /* a tiny error buffer is still NUL-terminated */
    char small[8];
    assert_int_equal(ef_bot_load("/nonexistent/bot.yaml", &bot, small, sizeof(small)), EF_EIO);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(ef_bot_load(NULL, &bot, err, sizeof(err)), EF_EINVAL);
}

/* A bot in a zone with daylight saving time resolves offsets from the zone
 * file, including instants after its last transition (the POSIX rule). */
static void test_timezone_with_dst(void **state)
{
    (void)state;
    char path[] = "/tmp/ef_test_botdef_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *yaml = "bot: {name: berlin, timezone: Europe/Berlin}\n"
                       "intents: {greeting: {patterns: ['\\bhallo\\b']}}\n";
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    char err[512];
    ef_bot *bot = NULL;
    int rc = ef_bot_load(path, &bot, err, sizeof(err));
    unlink(path);
    if (rc)
        fail_msg("%s", err);
    /* 2026-03-29 00:59:59Z is CET, 01:00:00Z is CEST */
    assert_int_equal(ef_bot_utc_offset(bot, 1774745999), 3600);
    assert_int_equal(ef_bot_utc_offset(bot, 1774746000), 7200);
    /* 2026-10-25 00:59:59Z still CEST, 01:00:00Z CET again */
    assert_int_equal(ef_bot_utc_offset(bot, 1792889999), 7200);
    assert_int_equal(ef_bot_utc_offset(bot, 1792890000), 3600);
    /* 2045-07-01 and 2045-12-01: beyond any table, from the TZ rule */
    assert_int_equal(ef_bot_utc_offset(bot, 2382480000), 7200);
    assert_int_equal(ef_bot_utc_offset(bot, 2395699200), 3600);
    ef_bot_free(bot);
}

static void test_free_null(void **state)
{
    (void)state;
    ef_bot_free(NULL);
    ef_nlp_scratch_free(NULL);
    assert_null(ef_nlp_scratch_new(NULL));
    assert_null(ef_bot_name(NULL));
    assert_int_equal(ef_bot_intent_count(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_defaults_and_accessors),
        cmocka_unit_test(test_fsm_section_is_compiled),
        cmocka_unit_test(test_demo_bot_loads),
        cmocka_unit_test(test_state_name_must_fit_the_database),
        cmocka_unit_test(test_errors_from_fixtures),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_timezone_with_dst),
        cmocka_unit_test(test_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
