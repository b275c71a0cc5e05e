/*
 * entity_expect.h -- what the entity tests share (test_entities.c,
 * test_entities_v4.c, test_entities_v5.c): their bot and scratch, reading a
 * text with a bot and asserting the entities it holds, dumping them when an
 * assertion fails. Include after <cmocka.h> and "nlp_fixture.h".
 */
#ifndef EF_TEST_NLP_ENTITY_EXPECT_H
#define EF_TEST_NLP_ENTITY_EXPECT_H

#include "nlp/nlp.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The entity tests' bot (fixtures/entities_bot.yaml) and its scratch, made
 * and freed once per file: cmocka_run_group_tests(tests, ent_setup,
 * ent_teardown). */
static ef_bot *ent_bot;
static ef_nlp_scratch *ent_sc;

__attribute__((unused)) static int ent_setup(void **state)
{
    (void)state;
    ent_bot = load("fixtures/entities_bot.yaml");
    ent_sc = ef_nlp_scratch_new(ent_bot);
    return 0;
}

__attribute__((unused)) static int ent_teardown(void **state)
{
    (void)state;
    ef_nlp_scratch_free(ent_sc);
    ef_bot_free(ent_bot);
    return 0;
}

/* The result of reading text with b at now; the test fails when matching
 * does. */
__attribute__((unused)) static ef_nlu_result ent_run(ef_bot *b, ef_nlp_scratch *s, int64_t now,
                                                     const char *text)
{
    ef_nlu_result r;
    if (ef_nlp_match(b, s, text, strlen(text), now, &r) != 0)
        fail_msg("ef_nlp_match(%s) failed", text);
    return r;
}

/* Every entity of r on stderr, to explain a failed assertion. */
__attribute__((unused)) static void ent_dump(const char *text, const ef_nlu_result *r)
{
    fprintf(stderr, "  entities of \"%s\":\n", text);
    for (size_t i = 0; i < r->n_entities; i++)
        fprintf(stderr, "    %s %s [%zu, %zu)\n", r->entities[i].type, r->entities[i].value,
                r->entities[i].start, r->entities[i].end);
}

/* Whether r holds an entity of type with value; with span (not NULL), one
 * covering exactly the first occurrence of span in text (byte offsets). */
__attribute__((unused)) static bool ent_has(const ef_nlu_result *r, const char *text,
                                            const char *type, const char *value, const char *span)
{
    size_t start = 0, end = 0;
    if (span) {
        const char *at = strstr(text, span);
        if (!at)
            fail_msg("test bug: \"%s\" not in \"%s\"", span, text);
        start = (size_t)(at - text);
        end = start + strlen(span);
    }
    for (size_t i = 0; i < r->n_entities; i++) {
        const ef_nlu_entity *e = &r->entities[i];
        if (strcmp(e->type, type) == 0 && strcmp(e->value, value) == 0 &&
            (!span || (e->start == start && e->end == end)))
            return true;
    }
    return false;
}

/* text, read with b, must hold an entity of type with value (at span when
 * span is not NULL). */
__attribute__((unused)) static void ent_expect(ef_bot *b, ef_nlp_scratch *s, int64_t now,
                                               const char *text, const char *type,
                                               const char *value, const char *span)
{
    ef_nlu_result r = ent_run(b, s, now, text);
    if (!ent_has(&r, text, type, value, span)) {
        ent_dump(text, &r);
        fail_msg("\"%s\": want %s %s%s%s", text, type, value, span ? " at " : "", span ? span : "");
    }
}

/* text, read with b, must hold no entity of type. */
__attribute__((unused)) static void ent_expect_none(ef_bot *b, ef_nlp_scratch *s, int64_t now,
                                                    const char *text, const char *type)
{
    ef_nlu_result r = ent_run(b, s, now, text);
    for (size_t i = 0; i < r.n_entities; i++) {
        if (strcmp(r.entities[i].type, type) == 0) {
            ent_dump(text, &r);
            fail_msg("\"%s\": want no %s", text, type);
        }
    }
}

#endif
