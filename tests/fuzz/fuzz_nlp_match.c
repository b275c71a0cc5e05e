/*
 * fuzz_nlp_match.c -- libFuzzer target: any bytes as a customer message ->
 * ef_nlp_match() on the demo bot (or $EF_FUZZ_BOT).
 *
 * Besides "no crash, no leak, no sanitizer report, no hang", it checks the
 * matcher's contract on every input and aborts when one breaks:
 *  - invalid UTF-8 is refused with EF_EUTF8 and the result left untouched;
 *  - the prefilter changes nothing: the result equals the one of a scratch
 *    that runs every pattern (EF_NLP_NO_PREFILTER);
 *  - confidences are in [0, 1], ranked best first, the intent is ranked[0]
 *    or fallback (or the model's, when by_model says the second opinion
 *    gave it);
 *  - entities are in text order, non-overlapping, inside the examined text,
 *    on UTF-8 character boundaries, with a non-empty NUL-terminated value;
 *  - the JSON is produced.
 * The first two bytes of the input also move "now" across a year, so
 * relative dates are exercised on every weekday and around new year.
 *
 * Build (seeds in tests/fuzz/corpus/nlp_match/; run from the repository
 * root so bots/demo.yaml is found):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DEF_FUZZING \
 *     -Isrc/gateway -Isrc/nlp tests/fuzz/fuzz_nlp_match.c \
 *     <libef.a built with the same sanitizers> \
 *     $(pkg-config --libs libpcre2-8 yaml-0.1 json-c) -lcrypto -lpthread -lm
 */
#include "nlp/nlp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ef_bot *bot;
static ef_nlp_scratch *fast, *slow;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *path = getenv("EF_FUZZ_BOT");
    if (!path || !path[0])
        path = "bots/demo.yaml";
    char err[1024];
    if (ef_bot_load(path, &bot, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_nlp_match: %s\n", err);
        abort();
    }
    fast = ef_nlp_scratch_new(bot);
    slow = ef_nlp_scratch_new(bot);
    ef_nlp_scratch_set_options(slow, EF_NLP_NO_PREFILTER);
    return 0;
}

static bool same(const ef_nlu_result *a, const ef_nlu_result *b)
{
    if (strcmp(a->intent, b->intent) || a->confidence != b->confidence ||
        a->n_ranked != b->n_ranked || a->n_entities != b->n_entities || a->lang != b->lang)
        return false;
    for (size_t i = 0; i < a->n_ranked; i++)
        if (a->ranked[i].intent != b->ranked[i].intent ||
            a->ranked[i].confidence != b->ranked[i].confidence)
            return false;
    for (size_t i = 0; i < a->n_entities; i++)
        if (a->entities[i].type != b->entities[i].type ||
            strcmp(a->entities[i].value, b->entities[i].value) ||
            a->entities[i].start != b->entities[i].start ||
            a->entities[i].end != b->entities[i].end)
            return false;
    return true;
}

static void check(const ef_nlu_result *r, const uint8_t *data, size_t size)
{
    if (!r->intent || !(r->confidence >= 0 && r->confidence <= 1) ||
        r->n_ranked > EF_NLU_MAX_RANKED || r->n_entities > EF_NLU_MAX_ENTITIES || !r->lang)
        abort();
    for (size_t i = 0; i < r->n_ranked; i++) {
        if (!(r->ranked[i].confidence >= 0 && r->ranked[i].confidence <= 1) ||
            !r->ranked[i].pattern)
            abort();
        if (i > 0 && r->ranked[i].confidence > r->ranked[i - 1].confidence)
            abort();
    }
    if (strcmp(r->intent, EF_NLP_FALLBACK) != 0 && !r->by_model &&
        (r->n_ranked == 0 || strcmp(r->intent, r->ranked[0].intent) != 0))
        abort();
    if (r->by_model && (!r->model_intent || strcmp(r->intent, r->model_intent) != 0 ||
                        r->confidence != r->model_confidence))
        abort();
    size_t limit = size < EF_NLP_MAX_TEXT ? size : EF_NLP_MAX_TEXT, prev_end = 0;
    for (size_t i = 0; i < r->n_entities; i++) {
        const ef_nlu_entity *e = &r->entities[i];
        if (!e->type || e->start >= e->end || e->end > limit || e->start < prev_end)
            abort();
        if ((e->start < size && (data[e->start] & 0xC0) == 0x80) ||
            (e->end < size && (data[e->end] & 0xC0) == 0x80))
            abort(); /* offsets split a character */
        size_t vl = strnlen(e->value, sizeof(e->value));
        if (vl == 0 || vl == sizeof(e->value) || !ef_utf8_valid(e->value, vl))
            abort();
        prev_end = e->end;
    }
    char *json = ef_nlu_result_json(r);
    if (!json)
        abort();
    ef_free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int64_t now = 1767225600; /* 2026-01-01T00:00:00Z */
    if (size >= 2)
        now += (int64_t)((data[0] << 8) | data[1]) * 481; /* across a year */
    ef_nlu_result a, b;
    memset(&a, 0x5A, sizeof(a));
    int rc = ef_nlp_match(bot, fast, text, size, now, &a);
    size_t limit = size;
    if (limit > EF_NLP_MAX_TEXT) {
        limit = EF_NLP_MAX_TEXT;
        while (limit > 0 && (data[limit] & 0xC0) == 0x80)
            limit--;
    }
    bool valid = ef_utf8_valid(text, limit);
    if (!valid) {
        ef_nlu_result untouched;
        memset(&untouched, 0x5A, sizeof(untouched));
        if (rc != EF_EUTF8 || memcmp(&a, &untouched, sizeof(a)) != 0)
            abort();
        return 0;
    }
    if (rc != 0)
        abort();
    check(&a, data, size);
    if (ef_nlp_match(bot, slow, text, size, now, &b) != 0 || !same(&a, &b))
        abort();
    return 0;
}
