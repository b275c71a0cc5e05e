/*
 * match.c -- one message in, intent + confidence + entities out.
 *
 * The steps, all in memory the per-thread scratch already holds:
 *  1. Normalize: lowercase ASCII and Cyrillic, ё -> е (also the rarer code
 *     points PCRE2 treats as case variants: K-sign, long s, old Cyrillic
 *     letter forms), typographic quotes and dashes to ASCII, every run of
 *     whitespace (NBSP and thin spaces included) to one space, zero-width
 *     characters dropped, ends trimmed. Every normalized byte remembers the
 *     byte range of the original text it came from, so entity offsets point
 *     into the message exactly as the customer sent it.
 *  2. Prefilter (prefilter.c): one pass over the normalized text finds the
 *     patterns that can possibly match.
 *  3. Entities (entities.c), gated by cheap byte tests.
 *  4. Candidate intent patterns run their JIT-compiled regex.
 *  5. Score every intent that matched and rank them.
 *
 * Scoring, so that every decision can be explained:
 *   coverage   = letters and digits of the message inside the intent's
 *                matched spans or inside recognized entities, divided by all
 *                letters and digits of the message (1 when it has none);
 *   confidence = 0.5 + 0.4 * coverage
 *                + 0.05 per additional matching pattern of the intent (max 2)
 *                + 0.05 * priority,  clamped to [0, 1].
 * Any pattern match is thus worth at least 0.5 (with priority 0): a pattern
 * is a rule the bot's author wrote, and the rest measures how much of the
 * message it explains. Intents are ranked by confidence, then priority, then
 * the number of matching patterns, then file order. The best one wins when
 * its confidence reaches bot.fallback_threshold; otherwise the result is
 * "fallback".
 */
#include "nlp/nlp_int.h"

#include <math.h>
#include <stdio.h>
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
    sc->acc = ef_calloc(bot->n_intents ? bot->n_intents : 1, sizeof(ef_nlp__acc));
    sc->touched = ef_calloc(bot->n_intents ? bot->n_intents : 1, sizeof(uint32_t));
    sc->cands = ef_calloc(EF_NLP__MAX_CANDS, sizeof(ef_nlp__cand));
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
    ef_free(sc->acc);
    ef_free(sc->touched);
    ef_free(sc->cands);
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

/* ---- normalization -------------------------------------------------------- */

static void grow(ef_nlp_scratch *sc, size_t n)
{
#ifdef EF_FUZZING
    /* exact sizes, so that AddressSanitizer sees any read past the text */
    size_t cap = n + 1;
    if (cap == sc->cap)
        return;
#else
    if (n + 1 <= sc->cap)
        return;
    size_t cap = sc->cap ? sc->cap : 256;
    while (cap < n + 1)
        cap *= 2;
#endif
    sc->norm = ef_realloc(sc->norm, cap);
    sc->src = ef_realloc(sc->src, cap * sizeof(uint32_t));
    sc->srcend = ef_realloc(sc->srcend, cap * sizeof(uint32_t));
    sc->alnum = ef_realloc(sc->alnum, cap * sizeof(uint32_t));
    sc->cap = cap;
}

enum { F_KEEP = 0, F_SPACE, F_DROP };

/* Folds one non-ASCII code point of a message. Returns F_SPACE for
 * whitespace, F_DROP for invisible characters, else F_KEEP with *cp
 * possibly replaced. */
static int fold_cp(uint32_t *cp)
{
    uint32_t c = *cp;
    if (c >= 0x0400 && c <= 0x040F)
        c += 0x50;
    else if (c >= 0x0410 && c <= 0x042F)
        c += 0x20;
    if (c == 0x0451) {
        *cp = 0x0435;
        return F_KEEP;
    }
    if (c >= 0x1C80 && c <= 0x1C86) {
        static const uint32_t old[7] = {0x0432, 0x0434, 0x043E, 0x0441, 0x0442, 0x0442, 0x044A};
        *cp = old[c - 0x1C80];
        return F_KEEP;
    }
    switch (c) {
    case 0x212A:
        *cp = 'k';
        return F_KEEP;
    case 0x017F:
        *cp = 's';
        return F_KEEP;
    case 0x2018:
    case 0x2019:
        *cp = '\'';
        return F_KEEP;
    case 0x2212:
        *cp = '-';
        return F_KEEP;
    case 0x00A0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0x0085:
        return F_SPACE;
    case 0x00AD:
    case 0x200B:
    case 0x2060:
    case 0xFEFF:
        return F_DROP;
    default:
        break;
    }
    if (c >= 0x2000 && c <= 0x200A)
        return F_SPACE;
    if (c >= 0x2010 && c <= 0x2015) {
        *cp = '-';
        return F_KEEP;
    }
    *cp = c;
    return F_KEEP;
}

/* Letters and digits, for coverage: ASCII alnum and the letter blocks of
 * the BMP and beyond (emoji, symbols and punctuation do not count). */
static bool cp_alnum(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (c < 0xC0 || c == 0xD7 || c == 0xF7)
        return false;
    if (c < 0x2000)
        return true;
    if (c < 0x2C00)
        return false;
    if (c < 0x2E00)
        return true;
    if (c < 0x2E80 || (c >= 0x3000 && c < 0x3040))
        return false;
    if (c < 0xD800)
        return true;
    if (c < 0xF900)
        return false;
    if (c < 0xFE00)
        return true;
    if (c >= 0xFF10 && c <= 0xFF5A)
        return true;
    if (c < 0x10000)
        return false;
    return c >= 0x20000;
}

/* Decodes one non-ASCII character, strictly (no overlongs, surrogates or
 * code points above U+10FFFF). Returns its length, 0 when invalid. */
static size_t decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned c = s[0];
    size_t len;
    uint32_t v;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
    } else {
        return 0;
    }
    if (len > avail)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[k] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && v < 0x10000) || v > 0x10FFFF ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

/* May this character be a decimal digit for PCRE2's \d (UCP)? ASCII
 * digits, and every other Unicode decimal digit lies at or above U+0660
 * outside the symbol and emoji blocks (checked against PCRE2). */
static inline bool maybe_digit(uint32_t cp)
{
    if (cp < 0x80)
        return cp >= '0' && cp <= '9';
    return cp >= 0x0660 && !(cp >= 0x2000 && cp <= 0x2BFF) && !(cp >= 0xFE00 && cp <= 0xFE0F) &&
           !(cp >= 0x1F000 && cp <= 0x1FAFF);
}

/* Normalizes text into sc->norm, validating it as UTF-8 on the way (false
 * when it is not valid); counts Cyrillic and Latin letters for the language
 * guess. */
static bool normalize(ef_nlp_scratch *sc, const char *text, size_t len, size_t *cyr, size_t *lat)
{
    const unsigned char *s = (const unsigned char *)text;
    grow(sc, len);
    char *o = sc->norm;
    uint32_t *src = sc->src, *srcend = sc->srcend, *an = sc->alnum;
    size_t n = 0, i = 0, ncyr = 0, nlat = 0;
    uint32_t acnt = 0;
    bool pending = false, digit = false, ascii_digit = false, at = false, sign = false;
    uint32_t sp_start = 0, sp_end = 0;
    while (i < len) {
        unsigned c = s[i];
        char b[4];
        size_t l, bl;
        uint32_t cp;
        bool alnum;
        if (c < 0x80) {
            l = 1;
            if (c == ' ' || (c >= '\t' && c <= '\r')) {
                if (n > 0) {
                    if (!pending)
                        sp_start = (uint32_t)i;
                    pending = true;
                    sp_end = (uint32_t)(i + 1);
                }
                i++;
                continue;
            }
            if (c >= 'A' && c <= 'Z')
                c += 32;
            b[0] = (char)c;
            bl = 1;
            cp = c;
            alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
            if (alnum && c >= 'a')
                nlat++;
            ascii_digit = ascii_digit || (c >= '0' && c <= '9');
            at = at || c == '@';
            sign = sign || c == '$';
        } else if ((c == 0xD0 || c == 0xD1) && i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
            /* basic Cyrillic, the common case: fold case and ё in place */
            unsigned c2 = s[i + 1];
            l = 2;
            bl = 2;
            if (c == 0xD0 && (c2 == 0x81)) { /* Ё */
                c2 = 0xB5;
            } else if (c == 0xD1 && c2 == 0x91) { /* ё */
                c = 0xD0;
                c2 = 0xB5;
            } else if (c == 0xD0 && c2 < 0x90) { /* Ѐ..Џ -> ѐ..џ */
                c = 0xD1;
                c2 += 0x10;
            } else if (c == 0xD0 && c2 < 0xA0) { /* А..П -> а..п */
                c2 += 0x20;
            } else if (c == 0xD0 && c2 < 0xB0) { /* Р..Я -> р..я */
                c = 0xD1;
                c2 -= 0x20;
            }
            b[0] = (char)c;
            b[1] = (char)c2;
            cp = 0x0400; /* any Cyrillic letter: for the counts below */
            alnum = true;
            ncyr++;
        } else {
            l = decode(s + i, len - i, &cp);
            if (l == 0)
                return false;
            int kind = fold_cp(&cp);
            if (kind == F_DROP) {
                i += l;
                continue;
            }
            if (kind == F_SPACE) {
                if (n > 0) {
                    if (!pending)
                        sp_start = (uint32_t)i;
                    pending = true;
                    sp_end = (uint32_t)(i + l);
                }
                i += l;
                continue;
            }
            bl = ef_utf8_encode(cp, b);
            alnum = cp_alnum(cp);
            if (alnum && cp >= 0x0400 && cp <= 0x04FF)
                ncyr++;
            else if (alnum && cp >= 'a' && cp <= 'z')
                nlat++;
            digit = digit || maybe_digit(cp);
            sign = sign || (cp >= 0x20A0 && cp <= 0x20BF);
        }
        if (pending) {
            o[n] = ' ';
            src[n] = sp_start;
            srcend[n] = sp_end;
            an[n] = acnt;
            n++;
            pending = false;
        }
        for (size_t k = 0; k < bl; k++) {
            o[n + k] = b[k];
            src[n + k] = (uint32_t)i;
            srcend[n + k] = (uint32_t)(i + l);
            an[n + k] = acnt;
        }
        n += bl;
        acnt += alnum;
        i += l;
    }
    o[n] = '\0';
    an[n] = acnt;
    src[n] = (uint32_t)len;
    srcend[n] = (uint32_t)len;
    sc->n = n;
    sc->maybe_digit = digit || ascii_digit;
    sc->has_digit = ascii_digit;
    sc->has_at = at;
    sc->has_sign = sign;
    *cyr = ncyr;
    *lat = nlat;
    return true;
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

/* ---- scoring -------------------------------------------------------------- */

typedef struct span {
    uint32_t s, e;
} span;

static int span_cmp(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->s < y->s ? -1 : x->s > y->s;
}

/* Letters and digits covered by the intent's spans and the entities. */
static uint32_t covered(const ef_nlp_scratch *sc, const ef_nlp__acc *a)
{
    span sp[EF_NLP__MAX_SPANS + EF_NLU_MAX_ENTITIES];
    size_t n = 0;
    for (uint32_t i = 0; i < a->n_spans; i++) {
        sp[n].s = a->span[i][0];
        sp[n].e = a->span[i][1];
        n++;
    }
    for (size_t i = 0; i < sc->n_cands && i < EF_NLU_MAX_ENTITIES; i++) {
        sp[n].s = sc->cands[i].start;
        sp[n].e = sc->cands[i].end;
        n++;
    }
    for (size_t i = 1; i < n; i++) { /* insertion sort: n is tiny */
        span v = sp[i];
        size_t k = i;
        while (k > 0 && span_cmp(&sp[k - 1], &v) > 0) {
            sp[k] = sp[k - 1];
            k--;
        }
        sp[k] = v;
    }
    uint32_t total = 0, cs = 0, ce = 0;
    bool open = false;
    for (size_t i = 0; i < n; i++) {
        if (open && sp[i].s <= ce) {
            if (sp[i].e > ce)
                ce = sp[i].e;
            continue;
        }
        if (open)
            total += sc->alnum[ce] - sc->alnum[cs];
        cs = sp[i].s;
        ce = sp[i].e;
        open = true;
    }
    if (open)
        total += sc->alnum[ce] - sc->alnum[cs];
    return total;
}

typedef struct scored {
    uint32_t intent;
    double conf;
    int priority;
    uint32_t n_matched;
} scored;

/* true when a ranks before b */
static bool before(const scored *a, const scored *b)
{
    if (a->conf != b->conf)
        return a->conf > b->conf;
    if (a->priority != b->priority)
        return a->priority > b->priority;
    if (a->n_matched != b->n_matched)
        return a->n_matched > b->n_matched;
    return a->intent < b->intent;
}

static const char *guess_lang(const ef_bot *bot, size_t cyr, size_t lat)
{
    if (bot->n_langs == 0)
        return NULL;
    if (cyr > lat && bot->cyr_lang >= 0)
        return bot->langs[bot->cyr_lang];
    if (lat > 0 && lat >= cyr) {
        for (size_t i = 0; i < bot->n_langs; i++)
            if (!ef_nlp__lang_cyrillic(bot->langs[i]))
                return bot->langs[i];
    }
    return bot->langs[0];
}

/* Counts the match [s, e) of intent pattern `group` for its intent. */
static void record(ef_nlp_scratch *sc, const ef_bot *bot, uint32_t group, uint32_t s, uint32_t e)
{
    uint32_t owner = bot->pats[group].owner;
    ef_nlp__acc *a = &sc->acc[owner];
    /* patterns are grouped by intent and visited in order, so a new owner
     * is always the last one touched */
    if (sc->n_touched == 0 || sc->touched[sc->n_touched - 1] != owner) {
        memset(a, 0, sizeof(*a));
        sc->touched[sc->n_touched++] = owner;
    }
    if (a->n_matched == 0 || e - s > a->best_len) {
        a->best_pat = group;
        a->best_len = e - s;
    }
    a->n_matched++;
    if (a->n_spans < EF_NLP__MAX_SPANS) {
        a->span[a->n_spans][0] = s;
        a->span[a->n_spans][1] = e;
        a->n_spans++;
    }
}

int ef_nlp_match(const ef_bot *bot, ef_nlp_scratch *sc, const char *text, size_t len,
                 int64_t now_unix, ef_nlu_result *out)
{
    if (!bot || !sc || !out || (!text && len) || sc->bot != bot)
        return EF_EINVAL;
    if (!text)
        text = "";
    if (len > EF_NLP_MAX_TEXT) {
        len = EF_NLP_MAX_TEXT;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;
    }
    size_t cyr, lat;
    if (!normalize(sc, text, len, &cyr, &lat))
        return EF_EUTF8;

    const ef_nlp__prefilter *pf = &bot->pf;
    if (sc->options & EF_NLP_NO_PREFILTER) {
        memset(sc->cand, 0xFF, pf->n_words * sizeof(uint64_t));
    } else {
        memcpy(sc->cand, pf->always, pf->n_words * sizeof(uint64_t));
        ef_nlp__pf_probe(pf, sc->norm, sc->n, sc->maybe_digit, sc->cand);
    }

    sc->n_cands = 0;
    sc->text = text;
    if (!(sc->options & EF_NLP_NO_ENTITIES))
        ef_nlp__entities_scan(bot, sc, now_unix);
    sc->text = NULL;

    /* intent patterns: the branches of one pattern (same group) are
     * contiguous, and the leftmost of their matches is the pattern's match
     * (the earlier branch on a tie), exactly as PCRE2 matches the whole */
    sc->n_touched = 0;
    size_t np = bot->n_intent_pats;
    uint32_t group = UINT32_MAX, gs = 0, ge = 0;
    bool have = false;
    for (size_t w = 0; w * 64 < np; w++) {
        uint64_t bits = sc->cand[w];
        if ((w + 1) * 64 > np)
            bits &= ((uint64_t)1 << (np - w * 64)) - 1;
        while (bits) {
            uint32_t b = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(bits));
            bits &= bits - 1;
            const ef_nlp__pat *p = &bot->pats[b];
            if (p->group != group) {
                if (have)
                    record(sc, bot, group, gs, ge);
                group = p->group;
                have = false;
            }
            if (ef_nlp__exec(sc, p, 0) < 0)
                continue;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
            uint32_t s = (uint32_t)ov[0], e = (uint32_t)ov[1];
            if (e < s) /* \K in a lookahead can do this */
                s = e;
            if (!have || s < gs) {
                gs = s;
                ge = e;
                have = true;
            }
        }
    }
    if (have)
        record(sc, bot, group, gs, ge);

    /* score and rank */
    uint32_t total = sc->alnum[sc->n];
    scored top[EF_NLU_MAX_RANKED];
    size_t n_top = 0;
    for (size_t k = 0; k < sc->n_touched; k++) {
        uint32_t ii = sc->touched[k];
        const ef_nlp__acc *a = &sc->acc[ii];
        double coverage = total ? (double)covered(sc, a) / total : 1.0;
        if (coverage > 1.0)
            coverage = 1.0;
        uint32_t extra = a->n_matched - 1 > 2 ? 2 : a->n_matched - 1;
        double conf = 0.5 + 0.4 * coverage + 0.05 * extra + 0.05 * bot->intents[ii].priority;
        conf = conf < 0 ? 0 : conf > 1 ? 1 : conf;
        scored cur = {ii, conf, bot->intents[ii].priority, a->n_matched};
        size_t pos = n_top;
        while (pos > 0 && before(&cur, &top[pos - 1]))
            pos--;
        if (pos >= EF_NLU_MAX_RANKED)
            continue;
        size_t last = n_top < EF_NLU_MAX_RANKED ? n_top : EF_NLU_MAX_RANKED - 1;
        memmove(&top[pos + 1], &top[pos], (last - pos) * sizeof(scored));
        top[pos] = cur;
        if (n_top < EF_NLU_MAX_RANKED)
            n_top++;
    }

    out->n_ranked = n_top;
    for (size_t k = 0; k < n_top; k++) {
        const ef_nlp__pat *p = &bot->pats[sc->acc[top[k].intent].best_pat];
        out->ranked[k].intent = bot->intents[top[k].intent].name;
        out->ranked[k].confidence = top[k].conf;
        out->ranked[k].pattern = p->source;
        out->ranked[k].line = p->line;
    }
    if (n_top > 0 && top[0].conf >= bot->threshold) {
        out->intent = bot->intents[top[0].intent].name;
        out->confidence = top[0].conf;
        const ef_nlp__pat *p = &bot->pats[sc->acc[top[0].intent].best_pat];
        out->lang = p->lang ? p->lang : guess_lang(bot, cyr, lat);
    } else {
        out->intent = EF_NLP_FALLBACK;
        out->confidence = n_top > 0 ? 1.0 - top[0].conf : 1.0;
        out->lang = guess_lang(bot, cyr, lat);
    }

    out->n_entities = 0;
    for (size_t k = 0; k < sc->n_cands && k < EF_NLU_MAX_ENTITIES; k++) {
        const ef_nlp__cand *c = &sc->cands[k];
        ef_nlu_entity *e = &out->entities[out->n_entities++];
        e->type = c->type;
        e->start = sc->src[c->start];
        e->end = sc->srcend[c->end - 1];
        memcpy(e->value, c->value, sizeof(e->value));
    }
    return 0;
}

void ef_nlu_result_cleanup(ef_nlu_result *r)
{
    if (!r)
        return;
    r->intent = NULL;
    r->confidence = 0;
    r->lang = NULL;
    r->n_ranked = 0;
    r->n_entities = 0;
}

const ef_nlu_entity *ef_nlu_result_entity(const ef_nlu_result *r, const char *type)
{
    if (!r || !type)
        return NULL;
    for (size_t i = 0; i < r->n_entities; i++)
        if (strcmp(r->entities[i].type, type) == 0)
            return &r->entities[i];
    return NULL;
}

/* ---- JSON ------------------------------------------------------------------ */

static int json_str(ef_buf *b, const char *s)
{
    int rc = ef_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        unsigned char c = *p;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            rc = ef_buf_append(b, esc, 2);
        } else if (c < 0x20) {
            rc = ef_buf_appendf(b, "\\u%04x", c);
        } else {
            rc = ef_buf_append(b, p, 1);
        }
    }
    if (!rc)
        rc = ef_buf_append(b, "\"", 1);
    return rc;
}

/* Confidence rounded to 4 decimals, at least one decimal shown. */
static int json_conf(ef_buf *b, double c)
{
    long v = lround(c * 10000.0);
    if (v < 0)
        v = 0;
    char frac[8];
    snprintf(frac, sizeof(frac), "%04ld", v % 10000);
    size_t fl = 4;
    while (fl > 1 && frac[fl - 1] == '0')
        fl--;
    frac[fl] = '\0';
    return ef_buf_appendf(b, "%ld.%s", v / 10000, frac);
}

char *ef_nlu_result_json(const ef_nlu_result *r)
{
    if (!r || !r->intent)
        return NULL;
    ef_buf b;
    ef_buf_init(&b, 1 << 20);
    int rc = ef_buf_append(&b, "{\"intent\": ", 11);
    rc = rc ? rc : json_str(&b, r->intent);
    rc = rc ? rc : ef_buf_append(&b, ", \"confidence\": ", 16);
    rc = rc ? rc : json_conf(&b, r->confidence);
    rc = rc ? rc : ef_buf_append(&b, ", \"entities\": [", 15);
    for (size_t i = 0; !rc && i < r->n_entities; i++) {
        const ef_nlu_entity *e = &r->entities[i];
        rc = ef_buf_append(&b, i ? ", {\"type\": " : "{\"type\": ", i ? 11 : 9);
        rc = rc ? rc : json_str(&b, e->type);
        rc = rc ? rc : ef_buf_append(&b, ", \"value\": ", 11);
        rc = rc ? rc : json_str(&b, e->value);
        rc = rc ? rc : ef_buf_appendf(&b, ", \"start\": %zu, \"end\": %zu}", e->start, e->end);
    }
    rc = rc ? rc : ef_buf_append(&b, "], \"ranked\": [", 14);
    for (size_t i = 0; !rc && i < r->n_ranked; i++) {
        rc = ef_buf_append(&b, i ? ", {\"intent\": " : "{\"intent\": ", i ? 13 : 11);
        rc = rc ? rc : json_str(&b, r->ranked[i].intent);
        rc = rc ? rc : ef_buf_append(&b, ", \"confidence\": ", 16);
        rc = rc ? rc : json_conf(&b, r->ranked[i].confidence);
        rc = rc ? rc : ef_buf_append(&b, "}", 1);
    }
    rc = rc ? rc : ef_buf_append(&b, "]}", 2);
    if (rc) {
        ef_buf_cleanup(&b);
        return NULL;
    }
    return ef_buf_steal(&b, NULL);
}
