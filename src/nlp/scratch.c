/*
 * scratch.c -- the per-thread working memory of the matcher (ef_nlp_scratch)
 * and the two primitives match.c and entities.c share on it: running one
 * compiled pattern over the normalized text, and recording an entity
 * candidate. Kept apart so that neither of those files depends on the other.
 */
#include "nlp/nlp_int.h"

#include <string.h>

#define MATCH_LIMIT 1000000
#define JIT_STACK_MIN (32 * 1024)
#define JIT_STACK_MAX (1024 * 1024)

/* ---- scratch ------------------------------------------------------------ */

ef_nlp_scratch *ef_nlp_scratch_new(const ef_bot *bot)
{
    if (!bot)
        return NULL;
    ef_nlp_scratch *sc = ef_calloc(1, sizeof(*sc));
    sc->bot = bot;
    sc->md = pcre2_match_data_create(bot->max_groups + 1, NULL);
    sc->mctx = pcre2_match_context_create(NULL);
    sc->jit_stack = pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
    if (!sc->md || !sc->mctx || !sc->jit_stack)
        EF_PANIC("nlp: out of memory creating PCRE2 match data");
    pcre2_set_match_limit(sc->mctx, MATCH_LIMIT);
    pcre2_jit_stack_assign(sc->mctx, NULL, sc->jit_stack);
    sc->cand = ef_calloc(bot->pf.n_words ? bot->pf.n_words : 1, sizeof(uint64_t));
    sc->first = ef_calloc(bot->pf.n_bits ? bot->pf.n_bits : 1, sizeof(uint32_t));
    sc->acc = ef_calloc(bot->n_intents + 1, sizeof(ef_nlp__acc));
    sc->touched = ef_calloc(bot->n_intents + 1, sizeof(uint32_t));
    sc->cands = ef_calloc(EF_NLP__MAX_CANDS, sizeof(ef_nlp__cand));
    size_t nv = bot->vocab.n ? bot->vocab.n : 1;
    sc->vstamp = ef_calloc(nv, sizeof(uint32_t));
    sc->vcand = ef_calloc(nv, sizeof(uint32_t));
    sc->dmemo = ef_calloc(EF_NLP__DMEMO, sizeof(uint64_t));
    sc->mscore = ef_calloc(bot->model.n_classes ? bot->model.n_classes : 1, sizeof(float));
    return sc;
}

void ef_nlp_scratch_free(ef_nlp_scratch *sc)
{
    if (!sc)
        return;
    pcre2_match_data_free(sc->md);
    pcre2_match_context_free(sc->mctx);
    pcre2_jit_stack_free(sc->jit_stack);
    ef_free(sc->norm);
    ef_free(sc->src);
    ef_free(sc->srcend);
    ef_free(sc->alnum);
    ef_free(sc->cand);
    ef_free(sc->first);
    ef_free(sc->acc);
    ef_free(sc->touched);
    ef_free(sc->cands);
    ef_free(sc->rbuf);
    ef_free(sc->rsrc);
    ef_free(sc->rsrcend);
    ef_free(sc->vstamp);
    ef_free(sc->vcand);
    ef_free(sc->dmemo);
    ef_free(sc->kword);
    ef_free(sc->mscore);
    ef_free(sc->mword);
    ef_free(sc);
}

void ef_nlp_scratch_set_options(ef_nlp_scratch *sc, unsigned options)
{
    if (sc)
        sc->options = options;
}

int ef_nlp__exec(ef_nlp_scratch *sc, const ef_nlp__pat *p, size_t from)
{
    const PCRE2_SPTR s = (PCRE2_SPTR)sc->norm;
    if (p->jit)
        return pcre2_jit_match(p->code, s, sc->n, from, 0, sc->md, sc->mctx);
    return pcre2_match(p->code, s, sc->n, from, PCRE2_NO_UTF_CHECK, sc->md, sc->mctx);
}

int ef_nlp__exec_core(ef_nlp_scratch *sc, const ef_nlp__pat *p)
{
    const PCRE2_SPTR s = (PCRE2_SPTR)sc->norm;
    if (p->core_jit)
        return pcre2_jit_match(p->core, s, sc->n, 0, 0, sc->md, sc->mctx);
    return pcre2_match(p->core, s, sc->n, 0, PCRE2_NO_UTF_CHECK, sc->md, sc->mctx);
}

/* ---- entity candidates ---------------------------------------------------- */

void ef_nlp__cand_add(ef_nlp_scratch *sc, const char *type, int rank, size_t start, size_t end,
                      const char *value, size_t vlen)
{
    if (sc->n_cands >= EF_NLP__MAX_CANDS || end <= start)
        return;
    ef_nlp__cand *c = &sc->cands[sc->n_cands];
    c->seq = (uint32_t)sc->n_cands++;
    c->type = type;
    c->rank = rank;
    c->start = (uint32_t)start;
    c->end = (uint32_t)end;
    if (vlen >= EF_NLU_VALUE_MAX) {
        vlen = EF_NLU_VALUE_MAX - 1;
        while (vlen > 0 && ((unsigned char)value[vlen] & 0xC0) == 0x80)
            vlen--;
    }
    memcpy(c->value, value, vlen);
    c->value[vlen] = '\0';
}
