/*
 * test_vindex.c -- the repair vocabulary's indexes (src/nlp/vindex.c): the
 * known-word table answers as the vocabulary does, and the deletion
 * indexes never miss an entry within the edit bound (the spelling repair's
 * picks rest on that: it ranks only the listed candidates).
 *
 * Uses the demo bot (bots/demo.yaml). Run from the repository root.
 */
#include "nlp/nlp_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nlp_fixture.h"

typedef struct fx {
    ef_bot *bot;
    uint32_t *stamp, *out;
    uint32_t now;
} fx;

static int setup(void **state)
{
    fx *f = ef_calloc(1, sizeof(*f));
    f->bot = load("../../../bots/demo.yaml");
    f->stamp = ef_calloc(f->bot->vocab.n, sizeof(uint32_t));
    f->out = ef_calloc(f->bot->vocab.n, sizeof(uint32_t));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    ef_free(f->stamp);
    ef_free(f->out);
    ef_bot_free(f->bot);
    ef_free(f);
    return 0;
}

/* The optimal-string-alignment distance (unit costs) of a and b. */
static size_t osa(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    size_t d[EF_NLP__QUERY_MAXCP + 3][EF_NLP__QUERY_MAXCP + 3];
    for (size_t i = 0; i <= na; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            size_t v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            v = d[i - 1][j] + 1 < v ? d[i - 1][j] + 1 : v;
            v = d[i][j - 1] + 1 < v ? d[i][j - 1] + 1 : v;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[na][nb];
}

static uint64_t rng = 88172645463325252ULL;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* Applies `edits` random edits (substitution, insertion, deletion, adjacent
 * transposition) to w[0..*n). */
static void perturb(uint32_t *w, size_t *n, unsigned edits)
{
    for (unsigned k = 0; k<edits && * n> 1; k++) {
        size_t i = next() % *n;
        uint32_t c = 0x430 + next() % 32;
        switch (next() % 4) {
        case 0:
            w[i] = c;
            break;
        case 1:
            if (*n < EF_NLP__QUERY_MAXCP) {
                memmove(w + i + 1, w + i, (*n - i) * sizeof(uint32_t));
                w[i] = c;
                (*n)++;
            }
            break;
        case 2:
            memmove(w + i, w + i + 1, (*n - i - 1) * sizeof(uint32_t));
            (*n)--;
            break;
        default:
            if (i + 1 < *n) {
                uint32_t t = w[i];
                w[i] = w[i + 1];
                w[i + 1] = t;
            }
        }
    }
}

static bool listed(fx *f, const uint32_t *a, size_t na, unsigned e, size_t entry)
{
    f->now++;
    size_t n = ef_nlp__vocab_candidates(&f->bot->vocab, a, na, e, f->stamp, f->now, f->out);
    assert_true(n != SIZE_MAX);
    for (size_t k = 0; k < n; k++)
        if (f->out[k] == entry)
            return true;
    return false;
}

/* Every Cyrillic word of the vocabulary, edited up to e times, still lists
 * it when it stays within e edits. */
static void test_words_never_missed(void **state)
{
    fx *f = *state;
    const ef_nlp__vocab *v = &f->bot->vocab;
    size_t checked = 0;
    for (size_t i = 0; i < v->n; i++) {
        const ef_nlp__ventry *e = &v->e[i];
        if ((e->flags & 4) || !(e->flags & 1) || e->ncp < 4 || e->ncp > EF_NLP__IDX_MAXCP)
            continue;
        for (unsigned edits = 0; edits <= EF_NLP__DEL_MAX; edits++)
            for (int t = 0; t < 6; t++) {
                uint32_t a[EF_NLP__QUERY_MAXCP];
                size_t na = e->ncp;
                memcpy(a, e->cp, na * sizeof(uint32_t));
                perturb(a, &na, edits);
                size_t d = osa(a, na, e->cp, e->ncp);
                if (na == 0 || d > EF_NLP__DEL_MAX)
                    continue;
                if (!listed(f, a, na, (unsigned)d, i))
                    fail_msg("word entry %s not listed at distance %zu", e->w, d);
                checked++;
            }
    }
    assert_true(checked > 1000);
}

/* Every Cyrillic stem, edited and given an ending, still lists it when the
 * edited stem is within e edits: the query is the whole word. */
static void test_stems_never_missed(void **state)
{
    fx *f = *state;
    const ef_nlp__vocab *v = &f->bot->vocab;
    static const uint32_t endings[][3] = {
        {0}, {0x430}, {0x443}, {0x43e, 0x439}, {0x430, 0x43c, 0x438}};
    static const size_t ending_len[] = {0, 1, 1, 2, 3};
    size_t checked = 0;
    for (size_t i = 0; i < v->n; i++) {
        const ef_nlp__ventry *e = &v->e[i];
        if ((e->flags & 4) || !(e->flags & 2) || e->ncp < 4 || e->ncp > EF_NLP__IDX_MAXCP)
            continue;
        for (unsigned edits = 0; edits <= EF_NLP__DEL_MAX; edits++)
            for (int t = 0; t < 10; t++) {
                uint32_t a[EF_NLP__QUERY_MAXCP];
                size_t na = e->ncp;
                memcpy(a, e->cp, na * sizeof(uint32_t));
                perturb(a, &na, edits);
                size_t d = osa(a, na, e->cp, e->ncp);
                size_t k = t % 5;
                if (na == 0 || d > EF_NLP__DEL_MAX || na + ending_len[k] > EF_NLP__QUERY_MAXCP)
                    continue;
                memcpy(a + na, endings[k], ending_len[k] * sizeof(uint32_t));
                if (!listed(f, a, na + ending_len[k], (unsigned)d, i))
                    fail_msg("stem entry %s not listed at distance %zu", e->w, d);
                checked++;
            }
    }
    assert_true(checked > 500);
}

/* The known-word table answers as the sorted vocabulary does. */
static void test_known_words(void **state)
{
    fx *f = *state;
    const ef_nlp__vocab *v = &f->bot->vocab;
    for (size_t i = 0; i < v->n; i++) {
        unsigned want = 0;
        for (size_t k = 0; k < v->n; k++)
            if (strcmp(v->e[k].w, v->e[i].w) == 0)
                want |= v->e[k].flags;
        assert_int_equal(ef_nlp__vocab_flags(v, v->e[i].w, strlen(v->e[i].w)), want);
    }
    assert_int_equal(ef_nlp__vocab_flags(v, "абырвалг", strlen("абырвалг")), 0);
    /* a word, a word starting with a stem, neither */
    assert_true(ef_nlp__vocab_knows(v, "заказ", strlen("заказ"), false, 8));
    assert_true(ef_nlp__vocab_knows(v, "доставкой", strlen("доставкой"), false, 8));
    assert_false(ef_nlp__vocab_knows(v, "абырвалг", strlen("абырвалг"), false, 8));
    assert_false(ef_nlp__vocab_knows(v, "заказ", strlen("заказ"), true, 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_never_missed),
        cmocka_unit_test(test_stems_never_missed),
        cmocka_unit_test(test_known_words),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
