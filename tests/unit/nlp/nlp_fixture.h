/*
 * nlp_fixture.h -- what the matcher and entity tests share: paths relative
 * to this folder (fixtures/, ../../../bots/) and loading a bot that must
 * load.
 */
#ifndef EF_TEST_NLP_FIXTURE_H
#define EF_TEST_NLP_FIXTURE_H

#include "nlp/nlp.h"

#include <string.h>

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

#endif /* EF_TEST_NLP_FIXTURE_H */
