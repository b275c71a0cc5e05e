/*
 * nlp_fixture.h -- what the matcher and entity tests share: paths relative
 * to this folder (fixtures/, ../../../bots/) and loading a bot that must
 * load.
 */
#ifndef EF_TEST_NLP_FIXTURE_H
#define EF_TEST_NLP_FIXTURE_H

#include "nlp/nlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A path relative to tests/unit/nlp/, owned by the caller. */
__attribute__((unused)) static char *path_of(const char *rel)
{
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dirlen = slash ? (int)(slash - file) : 1;
    return ef_asprintf("%.*s/%s", dirlen, slash ? file : ".", rel);
}

/* The bot at rel (relative to tests/unit/nlp/); the test fails when it does
 * not load. */
__attribute__((unused)) static ef_bot *load(const char *rel)
{
    char *path = path_of(rel);
    char err[1024];
    ef_bot *b = NULL;
    if (ef_bot_load(path, &b, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    ef_free(path);
    return b;
}

/* The bot whose definition is yaml (written to a temporary file, loaded,
 * the file removed); the test fails when it does not load. */
__attribute__((unused)) static ef_bot *load_text(const char *yaml)
{
    char path[] = "/tmp/ef_test_bot_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        fail_msg("mkstemp failed");
    size_t n = strlen(yaml);
    bool written = write(fd, yaml, n) == (ssize_t)n;
    close(fd);
    char err[1024];
    ef_bot *b = NULL;
    int rc = written ? ef_bot_load(path, &b, err, sizeof(err)) : -1;
    unlink(path);
    if (!written)
        fail_msg("cannot write %s", path);
    if (rc != 0)
        fail_msg("%s", err);
    return b;
}

/* A bot and its scratch, for a test group: FX_BOT names the bot file
 * (relative to tests/unit/nlp/) before this header is included, and the
 * group runs with fx_setup/fx_teardown. */
#ifdef FX_BOT
#ifndef FX_NOW
#define FX_NOW 1773133200 /* 2026-03-10T12:00:00+03:00, a Tuesday */
#endif

typedef struct fx {
    ef_bot *bot;
    ef_nlp_scratch *sc;
} fx;

__attribute__((unused)) static int fx_setup(void **state)
{
    fx *f = ef_calloc(1, sizeof(*f));
    f->bot = load(FX_BOT);
    f->sc = ef_nlp_scratch_new(f->bot);
    *state = f;
    return 0;
}

__attribute__((unused)) static int fx_teardown(void **state)
{
    fx *f = *state;
    ef_nlp_scratch_free(f->sc);
    ef_bot_free(f->bot);
    ef_free(f);
    return 0;
}

/* What the bot makes of text at FX_NOW; the test fails on an error. */
__attribute__((unused)) static ef_nlu_result fx_run(fx *f, const char *text)
{
    ef_nlu_result r;
    int rc = ef_nlp_match(f->bot, f->sc, text, strlen(text), FX_NOW, &r);
    if (rc)
        fail_msg("ef_nlp_match(%s) = %d", text, rc);
    return r;
}
#endif

#endif /* EF_TEST_NLP_FIXTURE_H */
