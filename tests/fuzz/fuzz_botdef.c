/*
 * fuzz_botdef.c -- libFuzzer target: any bytes as a bot definition file ->
 * ef_bot_load() (libyaml, the bot/intents/entities sections, PCRE2
 * compiles, the fsm: section's compiler), then one match with what it
 * built.
 *
 * ef_bot_load reads a path, so each input is written to one unlinked
 * temporary file, loaded through /proc/self/fd/<n>. Hunspell dictionaries
 * are out of scope (EF_DICT_DIR points where there are none: a
 * "dictionary:" key fails as "not found", quickly).
 *
 * Checked on every input: the result is 0, EF_EINVAL or EF_ELIMIT; on
 * failure no bot and one NUL-terminated line "<path>:..." in err; on
 * success a name, 1+ languages, thresholds in [0, 1], a UTC offset within
 * +-18 h, intents with non-empty unique names, the built-in entity types
 * first, every example readable (and example i == count refused), all as
 * valid UTF-8; and matching two fixed messages gives an intent the bot
 * knows (or fallback) with a confidence in [0, 1].
 */
#include "nlp/nlp.h"

#include "base/ef.h"
#include "base/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char tmpl[] = "/tmp/fuzz_botdef.XXXXXX";
    fd = mkstemp(tmpl);
    if (fd < 0 || unlink(tmpl) != 0)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    setenv("EF_DICT_DIR", "/nonexistent/fuzz-no-dictionaries", 1);
    return 0;
}

static void text_ok(const char *s)
{
    if (!s || !ef_utf8_valid(s, strlen(s)))
        abort();
}

static bool known_intent(const ef_bot *bot, const char *name)
{
    if (strcmp(name, EF_NLP_FALLBACK) == 0)
        return true;
    for (size_t i = 0; i < ef_bot_intent_count(bot); i++)
        if (strcmp(ef_bot_intent_name(bot, i), name) == 0)
            return true;
    return false;
}

static void check_match(const ef_bot *bot, ef_nlp_scratch *sc, const char *text)
{
    ef_nlu_result r;
    if (ef_nlp_match(bot, sc, text, strlen(text), 1767225600, &r) != 0)
        abort();
    if (!r.intent || !known_intent(bot, r.intent) || !(r.confidence >= 0 && r.confidence <= 1))
        abort();
    ef_nlu_result_cleanup(&r);
}

static void check_bot(const ef_bot *bot)
{
    text_ok(ef_bot_name(bot));
    size_t nl = ef_bot_language_count(bot);
    if (nl == 0)
        abort();
    for (size_t i = 0; i < nl; i++)
        text_ok(ef_bot_language(bot, i));
    text_ok(ef_bot_timezone(bot));
    double f = ef_bot_fallback_threshold(bot), m = ef_bot_model_threshold(bot);
    if (!(f >= 0 && f <= 1) || !(m >= 0 && m <= 1))
        abort();
    int32_t off = ef_bot_utc_offset(bot, 1767225600);
    if (off < -18 * 3600 || off > 18 * 3600)
        abort();
    size_t ni = ef_bot_intent_count(bot);
    for (size_t i = 0; i < ni; i++) {
        const char *a = ef_bot_intent_name(bot, i);
        text_ok(a);
        if (!*a || strcmp(a, EF_NLP_FALLBACK) == 0)
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(a, ef_bot_intent_name(bot, k)) == 0)
                abort();
    }
    size_t nt = ef_bot_entity_type_count(bot);
    if (nt < 7 || strcmp(ef_bot_entity_type(bot, 0), "phone") != 0)
        abort();
    for (size_t i = 0; i < nt; i++)
        text_ok(ef_bot_entity_type(bot, i));
    size_t ne = ef_bot_example_count(bot);
    for (size_t i = 0; i < ne; i++) {
        ef_bot_example ex;
        if (ef_bot_example_get(bot, i, &ex) != 0 || !known_intent(bot, ex.intent) || ex.line < 1 ||
            ex.column < 1)
            abort();
        text_ok(ex.text);
        if (ex.lang)
            text_ok(ex.lang);
    }
    ef_bot_example ex;
    if (ef_bot_example_get(bot, ne, &ex) != EF_EINVAL)
        abort();
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    check_match(bot, sc, "Здравствуйте, где мой заказ 123456?");
    check_match(bot, sc, "hello, order status please +7 916 123-45-67");
    ef_nlp_scratch_free(sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        abort();
    ef_bot *bot = NULL;
    char err[512];
    memset(err, 'x', sizeof(err));
    int rc = ef_bot_load(path, &bot, err, sizeof(err));
    if (strnlen(err, sizeof(err)) == sizeof(err))
        abort();
    if (rc != 0) {
        if ((rc != EF_EINVAL && rc != EF_ELIMIT) || bot || strncmp(err, path, strlen(path)) != 0 ||
            strchr(err, '\n'))
            abort();
        return 0;
    }
    if (!bot)
        abort();
    check_bot(bot);
    ef_bot_free(bot);
    return 0;
}
