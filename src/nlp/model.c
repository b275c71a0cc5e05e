/*
 * model.c -- the statistical second opinion: a character n-gram naive Bayes
 * classifier trained at load from the bot's own examples.
 *
 * What it is for: a customer who describes a situation ("пришла не та
 * куртка", "шов разошелся") names no keyword a pattern could wait for. The
 * bot's examples say how such messages look; a linear model over the
 * characters of the examples generalizes from them a little. The model is
 * asked only when no rule gave an intent (ef_nlp_match(), after the
 * repaired reading), and its answer is taken only at or above
 * bot.model_threshold; an author's pattern always wins.
 *
 * Features: the message folded as the matcher folds it (base/utf8.h),
 * every character that is not a letter or digit read as a space, digits as
 * '0', one space at both ends; then every run of 3, 4 and 5 characters
 * inside one word (with its edge spaces), hashed (FNV-1a over code points)
 * to 32 bits. A message with Latin letters whose n-grams the examples do
 * not know well enough is read transliterated (latin_to_cyr(): "kurtka
 * malenkaya" as "куртка маленкая") and classified so: a customer
 * who types Russian in Latin letters, in a scheme or with words the repair
 * stage could not read, still shares n-grams with the Cyrillic examples
 * (examples are trained as written). Classes: the intents, and more
 * that mean "something else": the out_of_scope examples (one class for the
 * untopiced ones and one per topic of out_of_scope.topics, the best of
 * them standing for all: other_topics_out()), and every intent's negative
 * examples, so a message that looks like them stays a fallback. The
 * out_of_scope classes alone may also veto a weak rule answer
 * (ef_nlp__model_other(), match.c veto_weak()).
 *
 * Model: multinomial naive Bayes, add-alpha smoothing, uniform class
 * priors (intents with many examples do not win by their number). Features
 * never seen in training are ignored, but a message whose n-grams are
 * mostly unknown to the intents (under MIN_COVERAGE of them seen in any
 * intent's example) gets no opinion: it speaks of something the intents'
 * examples never did (what the out-of-scope examples add makes "something
 * else" likelier, never an opinion more frequent). The probability reported is a
 * softmax of each class's mean log-likelihood per known feature times a
 * sharpness constant (a calibration, tuned on the dev set, not on the
 * held-out set): plain naive Bayes posteriors are near 0 or 1 and say
 * nothing.
 *
 * Cost: training is one sort of (feature, class) pairs, milliseconds for a
 * bot of hundreds of examples. Classifying is one hash probe per n-gram
 * and a multiply-add per class for the known ones: a few microseconds,
 * paid only by messages that fell back.
 *
 * Thread model: built once at load, read-only afterwards; the scores are
 * written into the caller's scratch.
 */
#include "nlp/nlp_int.h"

#include "base/utf8.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NGRAM_MIN 3
#define NGRAM_MAX 5
#define MAX_CHARS 512    /* code points of a message the model reads */
#define ALPHA 0.1        /* add-alpha smoothing */
#define SHARPNESS 12.0   /* softmax of mean log-likelihoods times this */
#define MIN_KNOWN 4      /* fewer known n-grams: no opinion */
#define MIN_COVERAGE 0.7 /* fewer of the message's n-grams known: no opinion */
#define LATIN_KNOWN 0.6  /* this many known as written: no transliterated reading */

static bool model_alnum(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    return (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) || (c >= 0x400 && c <= 0x4FF);
}

/* What the model reads for code point cp: its fold, '0' for a digit, ' '
 * for anything but a letter or digit, EF_UTF8_DROP for an invisible one. */
static uint32_t model_char(uint32_t cp)
{
    uint32_t f = ef_utf8_fold(cp);
    if (f == EF_UTF8_DROP)
        return f;
    if (f >= '0' && f <= '9')
        return '0';
    if (f == EF_UTF8_SPACE || !model_alnum(f))
        return ' ';
    return f;
}

/* model_char() of ASCII and of U+0400..U+047F (two-byte Cyrillic, lead
 * byte 0xD0 or 0xD1), computed once: nearly every character of a message. */
static uint32_t model_ascii[128], model_cyr[128];
static pthread_once_t model_once = PTHREAD_ONCE_INIT;

static void lat_index(void);

static void model_tables(void)
{
    for (uint32_t c = 0; c < 128; c++) {
        model_ascii[c] = model_char(c);
        model_cyr[c] = model_char(0x400 + c);
    }
    lat_index();
}

/* The character at u[*i] as the model reads it (model_char()), *i moved
 * past it; false when u is not valid UTF-8 there. The tables must be made. */
static inline __attribute__((always_inline)) bool model_next(const unsigned char *u, size_t n,
                                                             size_t *i, uint32_t *f)
{
    size_t k = *i;
    if (u[k] < 0x80) {
        *f = model_ascii[u[k]];
        *i = k + 1;
    } else if ((u[k] == 0xD0 || u[k] == 0xD1) && k + 1 < n && (u[k + 1] & 0xC0) == 0x80) {
        *f = model_cyr[(u[k] & 1) << 6 | (u[k + 1] & 0x3F)]; /* always valid UTF-8 */
        *i = k + 2;
    } else {
        uint32_t cp;
        if (ef_utf8_decode((const char *)u, n, i, &cp) != 0)
            return false;
        *f = model_char(cp);
    }
    return true;
}

/* The folded characters of s[0..n) as the model reads them, with one space
 * at both ends and between words; returns their number. */
static size_t chars_of(const char *s, size_t n, uint32_t *out)
{
    const unsigned char *u = (const unsigned char *)s;
    pthread_once(&model_once, model_tables);
    size_t k = 0, i = 0;
    out[k++] = ' ';
    while (i < n && k < MAX_CHARS - 1) {
        uint32_t f;
        if (!model_next(u, n, &i, &f))
            break;
        if (f == EF_UTF8_DROP)
            continue;
        if (f == ' ' && out[k - 1] == ' ')
            continue;
        out[k++] = f;
    }
    if (out[k - 1] != ' ')
        out[k++] = ' ';
    return k;
}

/* Latin letters read as Cyrillic, so that a message typed in Latin letters
 * ("kurtka malenkaya") shares n-grams with the bot's Cyrillic examples: the
 * common transliteration, digraphs first (shch, sch, zh, kh, ch, sh, ts,
 * ya/ja, yu/ju, yo/jo), y as ы (й after a vowel), x as х. Rough on purpose:
 * the model only needs n-grams close to the Cyrillic word's ("маленкая"
 * shares most of "маленькая"'s); the repair stage (normalize.c) reads
 * words into the bot's exact vocabulary where it can. Only messages are
 * read so, never examples (best_reading()), so an English message still
 * meets the English examples as written. */
typedef struct lat_rule {
    char lat[5];
    uint8_t len; /* strlen(lat) */
    uint32_t cyr;
} lat_rule;

/* Grouped by first letter, each group longest first as the rules are
 * tried: the first rule of a letter's group that matches wins (rules of
 * other letters can never match there). ya/yu/yo never do: 'y' is read
 * before them (latin_to_cyr()), kept for the record. */
static const lat_rule lat_rules[] = {
    {"a", 1, 0x430},  {"b", 1, 0x431},  {"ch", 2, 0x447}, {"c", 1, 0x446},    {"d", 1, 0x434},
    {"e", 1, 0x435},  {"f", 1, 0x444},  {"g", 1, 0x433},  {"h", 1, 0x445},    {"i", 1, 0x438},
    {"ja", 2, 0x44F}, {"ju", 2, 0x44E}, {"jo", 2, 0x435}, {"j", 1, 0x439},    {"kh", 2, 0x445},
    {"k", 1, 0x43A},  {"l", 1, 0x43B},  {"m", 1, 0x43C},  {"n", 1, 0x43D},    {"o", 1, 0x43E},
    {"p", 1, 0x43F},  {"q", 1, 0x43A},  {"r", 1, 0x440},  {"shch", 4, 0x449}, {"sch", 3, 0x449},
    {"sh", 2, 0x448}, {"s", 1, 0x441},  {"ts", 2, 0x446}, {"t", 1, 0x442},    {"u", 1, 0x443},
    {"v", 1, 0x432},  {"w", 1, 0x432},  {"x", 1, 0x445},  {"ya", 2, 0x44F},   {"yu", 2, 0x44E},
    {"yo", 2, 0x435}, {"zh", 2, 0x436}, {"z", 1, 0x437},
};

/* lat_rules[lat_first[c - 'a'] .. lat_first[c - 'a' + 1]): the rules of
 * letter c (filled with the model's tables, once per process). */
static uint8_t lat_first[27];

static void lat_index(void)
{
    size_t n = sizeof(lat_rules) / sizeof(lat_rules[0]), k = 0;
    for (unsigned c = 0; c < 26; c++) {
        lat_first[c] = (uint8_t)k;
        while (k < n && (unsigned char)lat_rules[k].lat[0] == 'a' + c)
            k++;
    }
    lat_first[26] = (uint8_t)k;
}

static bool lat_letter(uint32_t c)
{
    return c >= 'a' && c <= 'z';
}

/* Rewrites the Latin letters of c[0..n) as Cyrillic in place (a rule never
 * writes more code points than it reads); returns the new length. */
static size_t latin_to_cyr(uint32_t *c, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (!lat_letter(c[i])) {
            c[o++] = c[i++];
            continue;
        }
        if (c[i] == 'y') { /* ы, or й after a vowel */
            bool vow = o > 0 && (c[o - 1] == 0x430 || c[o - 1] == 0x435 || c[o - 1] == 0x438 ||
                                 c[o - 1] == 0x43E || c[o - 1] == 0x443 || c[o - 1] == 0x44B);
            c[o++] = vow ? 0x439 : 0x44B;
            i++;
            continue;
        }
        size_t k = lat_first[c[i] - 'a'], end = lat_first[c[i] - 'a' + 1];
        for (; k < end; k++) {
            size_t l = lat_rules[k].len, j = 1;
            while (j < l && i + j < n && c[i + j] == (uint32_t)lat_rules[k].lat[j])
                j++;
            if (j == l)
                break;
        }
        if (k == end) {
            c[o++] = c[i++]; /* every letter has a rule: not reached */
            continue;
        }
        c[o++] = lat_rules[k].cyr;
        i += lat_rules[k].len;
    }
    return o;
}

/* The n-gram hashes of text into out (at most cap); returns their number.
 * One FNV-1a pass from each position gives its 3-, 4- and 5-gram hashes on
 * the way (the length mixed in; 0 is reserved for empty slots). An n-gram
 * stays inside one word, its spaces at the ends only (" пр", "ка "): one
 * that spans two words is a feature of the word pair, and word pairs of a
 * new message are mostly new, so they only diluted the coverage gate
 * (measured on the dev set and fresh messages: situations 75% -> 81%,
 * out-of-scope 70% -> 75%, nothing lost). */
static size_t ngrams(const uint32_t *c, size_t nc, uint32_t *out, size_t cap)
{
    size_t nf = 0;
    if (nc < 3)
        return 0; /* nothing but spaces */
    /* unrolled (the loop's tests were half the model's cost on the clean
     * mix): at most three n-grams a character, and cap holds that many */
    for (size_t i = 0; i + NGRAM_MIN <= nc && nf + 3 <= cap; i++) {
        if (c[i + 1] == ' ')
            continue; /* " x " or "x  ": every n-gram from i spans two words */
        uint32_t h = ((2166136261u ^ c[i]) * 16777619u ^ c[i + 1]) * 16777619u;
        h = (h ^ c[i + 2]) * 16777619u;
        out[nf++] = ((h ^ 3u) * 2654435761u) | 1u;
        if (i + 4 > nc || c[i + 2] == ' ')
            continue;
        h = (h ^ c[i + 3]) * 16777619u;
        out[nf++] = ((h ^ 4u) * 2654435761u) | 1u;
        if (i + 5 > nc || c[i + 3] == ' ')
            continue;
        h = (h ^ c[i + 4]) * 16777619u;
        out[nf++] = ((h ^ 5u) * 2654435761u) | 1u;
    }
    return nf;
}

static size_t features(const char *text, size_t n, bool tl, uint32_t *out, size_t cap)
{
    uint32_t c[MAX_CHARS];
    size_t nc = chars_of(text, n, c);
    if (tl)
        nc = latin_to_cyr(c, nc);
    return ngrams(c, nc, out, cap);
}

#define MAX_FEATURES (MAX_CHARS * (NGRAM_MAX - NGRAM_MIN + 1))

static uint32_t slot_of(const ef_nlp__model *m, uint32_t h)
{
    uint32_t s = (h * 2654435761u) & m->mask;
    while (m->slots[s].key && m->slots[s].key != h)
        s = (s + 1) & m->mask;
    return s;
}

typedef struct pair {
    uint32_t h, cls;
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return x->cls < y->cls ? -1 : x->cls > y->cls;
}

/* Every (feature, class) of the examples, in *out; returns their number. */
static size_t collect(const ef_bot *bot, pair **out)
{
    size_t n = 0, cap = 1024;
    pair *p = ef_malloc(cap * sizeof(pair));
    uint32_t *f = ef_malloc(MAX_FEATURES * sizeof(uint32_t));
    uint32_t neg = (uint32_t)bot->n_intents + 1 + bot->n_oos_topics;
    for (size_t i = 0; i < bot->n_examples; i++) {
        const ef_nlp__example *e = &bot->examples[i];
        size_t nf = features(e->text, strlen(e->text), false, f, MAX_FEATURES);
        if (n + nf > cap) {
            while (n + nf > cap)
                cap *= 2;
            p = ef_realloc(p, cap * sizeof(pair));
        }
        for (size_t k = 0; k < nf; k++) {
            p[n].h = f[k];
            /* out_of_scope's examples are class n_intents (their intent
             * already) or, in a topic, n_intents + 1 + the topic's index;
             * every negative example ("not this intent") the last class:
             * both mean "something else", but negative
             * examples read like the shop's own business ("где мой
             * заказ" against returns), so only the first may veto a rule
             * (ef_nlp__model_other()) */
            p[n].cls = e->negative                             ? neg
                       : e->intent == (uint32_t)bot->n_intents ? e->intent + e->topic
                                                               : e->intent;
            n++;
        }
    }
    ef_free(f);
    *out = p;
    return n;
}

/* Turns the sorted pairs into the table: per n-gram, only the classes that
 * saw it, each with its smoothed log probability less the class's log
 * probability of an n-gram it never saw (most n-grams occur in one or two
 * classes, so a message touches a few hundred numbers, not n-grams times
 * classes). */
static void estimate(ef_nlp__model *m, const pair *p, size_t n, size_t uniq, uint32_t n_intents)
{
    uint32_t nc = m->n_classes;
    double *total = ef_calloc(nc, sizeof(double));
    size_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        total[p[i].cls] += 1.0;
        ne += i == 0 || p[i].h != p[i - 1].h || p[i].cls != p[i - 1].cls;
    }
    for (uint32_t c = 0; c < nc; c++) {
        m->trained[c] = total[c] > 0;
        m->n_trained += m->trained[c];
        m->unseen[c] = m->trained[c] ? (float)log(ALPHA / (total[c] + ALPHA * (double)uniq)) : 0.0f;
    }
    m->ent = ef_malloc(ne * sizeof(ef_nlp__ment));
    size_t e = 0;
    for (size_t i = 0; i < n;) {
        uint32_t h = p[i].h;
        ef_nlp__mslot *sl = &m->slots[slot_of(m, h)];
        size_t first = e;
        bool of_intent = false;
        while (i < n && p[i].h == h) {
            uint32_t c = p[i].cls;
            double cnt = 0;
            for (; i < n && p[i].h == h && p[i].cls == c; i++)
                cnt += 1.0;
            of_intent = of_intent || c < n_intents;
            if (e - first == 255)
                continue; /* see ef_nlp__mslot */
            m->ent[e].cls = c;
            m->ent[e].delta =
                (float)log((cnt + ALPHA) / (total[c] + ALPHA * (double)uniq)) - m->unseen[c];
            e++;
        }
        sl->key = h;
        sl->info = (uint32_t)first << 9 | (uint32_t)(e - first) << 1 | of_intent;
    }
    ef_free(total);
}

/* Turns the n-grams EF_NLP__DENSE_MIN classes or more saw into dense rows
 * (their slot's len becomes 0, start the row): a frequent n-gram (" по",
 * "ть ") is one vector add per four classes instead of one scattered add
 * per class. The sums are the same to the bit: a class that never saw the
 * n-gram adds 0, and each class still adds its deltas in the message's
 * order. */
static void densify(ef_nlp__model *m)
{
    if (m->n_classes > EF_NLP__DENSE_MAX)
        return;
    m->row_len = (m->n_classes + 3) & ~3u;
    for (uint32_t s = 0; s <= m->mask; s++)
        m->n_rows += m->slots[s].key && ((m->slots[s].info >> 1) & 0xFF) >= EF_NLP__DENSE_MIN;
    if (m->n_rows == 0)
        return;
    m->rows = ef_calloc((size_t)m->n_rows * m->row_len, sizeof(float));
    uint32_t r = 0;
    for (uint32_t s = 0; s <= m->mask; s++) {
        ef_nlp__mslot *sl = &m->slots[s];
        uint32_t len = (sl->info >> 1) & 0xFF;
        if (!sl->key || len < EF_NLP__DENSE_MIN)
            continue;
        const ef_nlp__ment *en = m->ent + (sl->info >> 9);
        float *row = m->rows + (size_t)r * m->row_len;
        for (uint32_t k = 0; k < len; k++)
            row[en[k].cls] = en[k].delta;
        sl->info = r << 9 | (sl->info & 1);
        r++;
    }
}

/* The delta of class c for slot sl, as add_deltas() adds it (0 when the
 * class never saw the n-gram). */
static float delta_of(const ef_nlp__model *m, const ef_nlp__mslot *sl, uint32_t c)
{
    uint32_t len = (sl->info >> 1) & 0xFF;
    if (len == 0 && m->rows)
        return m->rows[(size_t)(sl->info >> 9) * m->row_len + c];
    const ef_nlp__ment *en = m->ent + (sl->info >> 9);
    float d = 0;
    for (uint32_t k = 0; k < len; k++)
        if (en[k].cls == c)
            d += en[k].delta;
    return d;
}

/* m->oos_max: per slot, the largest delta of an out_of_scope class (the
 * upper bound oos_cannot_win() sums). */
static void oos_bounds(ef_nlp__model *m)
{
    uint32_t oos = m->n_classes - 1 - m->n_oos;
    m->oos_max = ef_calloc((size_t)m->mask + 1, sizeof(float));
    m->oos_unseen = -FLT_MAX;
    for (uint32_t c = oos; c < oos + m->n_oos; c++)
        if (m->trained[c]) {
            m->oos_unseen = fmaxf(m->oos_unseen, m->unseen[c]);
            m->oos_unseen_mag = fmaxf(m->oos_unseen_mag, fabsf(m->unseen[c]));
        }
    for (uint32_t s = 0; s <= m->mask; s++) {
        if (!m->slots[s].key)
            continue;
        float top = 0;
        for (uint32_t c = oos; c < oos + m->n_oos; c++)
            top = fmaxf(top, delta_of(m, &m->slots[s], c));
        m->oos_max[s] = top;
    }
}

void ef_nlp__model_train(ef_bot *bot)
{
    ef_nlp__model *m = &bot->model;
    memset(m, 0, sizeof(*m));
    pair *p = NULL;
    size_t n = collect(bot, &p);
    if (n == 0) {
        ef_free(p);
        return;
    }
    qsort(p, n, sizeof(pair), pair_cmp);
    size_t uniq = 0;
    for (size_t i = 0; i < n; i++)
        uniq += i == 0 || p[i].h != p[i - 1].h;
    size_t cap = 64;
    while (cap < uniq + uniq / 2) /* at most two thirds full */
        cap *= 2;
    if (n >= (size_t)1 << 23) { /* entries must fit info's 23 bits */
        ef_free(p);
        return;
    }
    m->n_oos = 1 + bot->n_oos_topics;
    m->n_classes = (uint32_t)bot->n_intents + m->n_oos + 1;
    m->mask = (uint32_t)(cap - 1);
    m->slots = ef_calloc(cap, sizeof(ef_nlp__mslot));
    m->trained = ef_calloc(m->n_classes, sizeof(bool));
    m->unseen = ef_calloc(m->n_classes, sizeof(float));
    m->n_features = (uint32_t)uniq;
    estimate(m, p, n, uniq, (uint32_t)bot->n_intents);
    ef_free(p);
    densify(m);
    oos_bounds(m);
    /* one class is no choice: the model has nothing to say */
    if (m->n_trained < 2)
        ef_nlp__model_cleanup(m);
}

void ef_nlp__model_cleanup(ef_nlp__model *m)
{
    ef_free(m->slots);
    ef_free(m->trained);
    ef_free(m->unseen);
    ef_free(m->ent);
    ef_free(m->rows);
    ef_free(m->oos_max);
    memset(m, 0, sizeof(*m));
}

/* The known n-grams of text (transliterated when tl): their slots in f
 * (overwritten), their number in *known, how many an intent's example has
 * in *of_intent; returns the number of the message's n-grams. */
static size_t known_slots(const ef_nlp__model *m, const char *text, size_t n, bool tl, uint32_t *f,
                          size_t *known, size_t *of_intent)
{
    size_t nf = features(text, n, tl, f, MAX_FEATURES);
    *known = *of_intent = 0;
    for (size_t i = 0; i < nf; i++) {
        uint32_t s = slot_of(m, f[i]);
        if (!m->slots[s].key)
            continue;
        f[(*known)++] = s;
        *of_intent += m->slots[s].info & 1;
    }
    return nf;
}

/* ---- the word memo ------------------------------------------------------- */

/* Running counts of known_words(). */
typedef struct kcount {
    uint32_t *f;
    size_t nf, known, of_intent;
} kcount;

/* One word's part of known_slots(): c[0..nc) is " w " (the word between
 * its spaces) read from the bytes w[0..len) of the message; its known slots
 * are appended to k->f, from the memo when the thread met the word before
 * (same bytes, same reading), else looked up and remembered. */
static void known_word(const ef_nlp__model *m, ef_nlp__mword *memo, const char *w, size_t len,
                       uint32_t *c, size_t nc, bool tl, kcount *k)
{
    ef_nlp__mword *e = NULL;
    if (len <= EF_NLP__MWORD_BYTES) {
        uint64_t h = 1469598103934665603ull ^ tl;
        for (size_t i = 0; i < len; i++)
            h = (h ^ (unsigned char)w[i]) * 1099511628211ull;
        /* two places a word may be in (its own, then its neighbour): two
         * words of a message that hash to one place both stay */
        size_t at = (h ^ h >> 29) & (EF_NLP__MWORDS - 1);
        for (size_t j = 0; j < 2; j++) {
            const ef_nlp__mword *x = &memo[at ^ j];
            if (x->len == len && x->tl == tl && memcmp(x->w, w, len) == 0) {
                memcpy(k->f + k->known, x->slot, x->known * sizeof(uint32_t));
                k->known += x->known;
                k->of_intent += x->of_intent;
                k->nf += x->nf;
                return;
            }
        }
        /* a new word takes its own place unless that is taken and the
         * neighbour free */
        e = memo[at].len && !memo[at ^ 1].len ? &memo[at ^ 1] : &memo[at];
    }
    uint32_t g[MAX_FEATURES];
    size_t ng = ngrams(c, tl ? latin_to_cyr(c, nc) : nc, g, MAX_FEATURES);
    size_t known = 0, of_intent = 0;
    for (size_t i = 0; i < ng; i++) {
        uint32_t s = slot_of(m, g[i]);
        if (!m->slots[s].key)
            continue;
        k->f[k->known + known++] = s;
        of_intent += m->slots[s].info & 1;
    }
    if (e && known <= EF_NLP__MWORD_SLOTS) {
        e->len = (uint8_t)len;
        e->tl = tl;
        e->known = (uint8_t)known;
        e->of_intent = (uint8_t)of_intent;
        e->nf = (uint16_t)ng;
        memcpy(e->w, w, len);
        memcpy(e->slot, k->f + k->known, known * sizeof(uint32_t));
    }
    k->known += known;
    k->of_intent += of_intent;
    k->nf += ng;
}

/* known_slots() word by word with the thread's memo: an n-gram never spans
 * two words (features()), and a word's n-grams and their slots depend on
 * its characters only (the transliteration too: no rule crosses a space),
 * so the message's known slots are its words', in order. Messages the
 * model would cut (MAX_CHARS) take known_slots(). */
static size_t known_words(const ef_nlp__model *m, ef_nlp__mword *memo, const char *text, size_t n,
                          bool tl, uint32_t *f, size_t *known, size_t *of_intent)
{
    if (!memo || n >= MAX_CHARS - 1)
        return known_slots(m, text, n, tl, f, known, of_intent);
    const unsigned char *u = (const unsigned char *)text;
    pthread_once(&model_once, model_tables);
    uint32_t c[MAX_CHARS];
    kcount k = {f, 0, 0, 0};
    size_t nc = 1, i = 0, ws = 0, we = 0;
    c[0] = ' ';
    bool valid = true;
    while (i < n && valid) {
        size_t at = i;
        uint32_t ch;
        valid = model_next(u, n, &i, &ch);
        if (!valid || ch == EF_UTF8_DROP)
            continue;
        if (ch != ' ') {
            if (nc == 1)
                ws = at;
            c[nc++] = ch;
            we = i;
            continue;
        }
        if (nc > 1) {
            c[nc++] = ' ';
            known_word(m, memo, text + ws, we - ws, c, nc, tl, &k);
            nc = 1;
        }
    }
    if (nc > 1) {
        c[nc++] = ' ';
        known_word(m, memo, text + ws, we - ws, c, nc, tl, &k);
    }
    *known = k.known;
    *of_intent = k.of_intent;
    return k.nf;
}

static bool has_latin(const char *text, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (text[i] >= 'a' && text[i] <= 'z')
            return true;
    return false;
}

/* One reading of a message: its known slots and coverage counts. */
typedef struct reading {
    uint32_t f[MAX_FEATURES];
    size_t nf, known, of_intent;
} reading;

/* Whether reading r passes the coverage gate: at least MIN_KNOWN known
 * n-grams, and MIN_COVERAGE of its n-grams known to an intent's example
 * (by_intent) or to any class's. */
static bool covered(const reading *r, bool by_intent)
{
    size_t k = by_intent ? r->of_intent : r->known;
    return r->known >= MIN_KNOWN && (double)k >= MIN_COVERAGE * (double)r->nf;
}

/* The message as written; when that is not covered and it has Latin
 * letters, their transliteration (a customer who typed Russian in Latin
 * letters the repair stage could not read word by word: the examples are
 * Cyrillic). NULL when no reading is covered (the model does not guess).
 * A message the written reading covers costs no second reading: English
 * messages meet the English examples as written. */
static const reading *best_reading(const ef_nlp__model *m, ef_nlp__mword *memo, const char *text,
                                   size_t n, bool by_intent, reading *r)
{
    r[0].nf = known_words(m, memo, text, n, false, r[0].f, &r[0].known, &r[0].of_intent);
    if (covered(&r[0], by_intent))
        return &r[0];
    /* Latin letters whose n-grams the examples mostly know (English that
     * is just not covered enough) are not Russian in disguise */
    if ((double)r[0].known >= LATIN_KNOWN * (double)r[0].nf || !has_latin(text, n))
        return NULL;
    r[1].nf = known_words(m, memo, text, n, true, r[1].f, &r[1].known, &r[1].of_intent);
    return covered(&r[1], by_intent) ? &r[1] : NULL;
}

typedef float v4f __attribute__((vector_size(16)));

/* Adds the deltas of the known slots f[0..known) to score[0..n_classes),
 * in order: an n-gram's entries one class at a time, a dense row
 * (densify()) four classes at a time, in a copy of the scores padded to
 * row_len floats. */
static void add_deltas(const ef_nlp__model *m, const uint32_t *f, size_t known, float *score)
{
    float a[EF_NLP__DENSE_MAX] __attribute__((aligned(16)));
    uint32_t nv = m->row_len / 4;
    memset(a, 0, sizeof(a));
    memcpy(a, score, m->n_classes * sizeof(float));
    for (size_t i = 0; i < known; i++) {
        uint32_t info = m->slots[f[i]].info, len = (info >> 1) & 0xFF;
        if (len == 0) {
            const float *row = m->rows + (size_t)(info >> 9) * m->row_len;
            for (uint32_t v = 0; v < nv; v++) {
                v4f x, y;
                memcpy(&x, row + 4 * v, sizeof(x));
                memcpy(&y, a + 4 * v, sizeof(y));
                y += x;
                memcpy(a + 4 * v, &y, sizeof(y));
            }
            continue;
        }
        const ef_nlp__ment *en = m->ent + (info >> 9);
        for (uint32_t k = 0; k < len; k++)
            a[en[k].cls] += en[k].delta;
    }
    memcpy(score, a, m->n_classes * sizeof(float));
}

/* The out_of_scope classes (from n_classes - 1 - n_oos: the untopiced
 * examples, then one per topic of the bot's author) are one answer, "out
 * of scope": the best-scored of them stands for it and the others are
 * left out of the softmax (their scores set to -FLT_MAX), so a message
 * like one topic's examples is out of scope as surely as the one pooled
 * class made it, without the other topics' words joining in (the pooled
 * class vetoed "курьер до квартиры поднимается?" for "ремонт квартир").
 * Called only when there are topics. */
static void other_topics_out(const ef_nlp__model *m, float *score)
{
    uint32_t oos = m->n_classes - 1 - m->n_oos, top = UINT32_MAX;
    for (uint32_t c = oos; c < oos + m->n_oos; c++)
        if (m->trained[c] && (top == UINT32_MAX || score[c] > score[top]))
            top = c;
    for (uint32_t c = oos; c < oos + m->n_oos; c++)
        if (c != top)
            score[c] = -FLT_MAX;
}

/* Naive Bayes over the known slots f[0..known): the best class and its
 * softmax probability (*p only when the best class is `only`, or when only
 * is UINT32_MAX: the softmax costs a few exps per class). An out_of_scope
 * topic's class is reported as the first out_of_scope class. */
static void rank_classes(const ef_nlp__model *m, const uint32_t *f, size_t known, float *score,
                         uint32_t only, uint32_t *cls, double *p)
{
    uint32_t nc = m->n_classes;
    for (uint32_t c = 0; c < nc; c++)
        score[c] = (float)known * m->unseen[c];
    if (m->rows) {
        add_deltas(m, f, known, score);
    } else {
        for (size_t i = 0; i < known; i++) {
            uint32_t info = m->slots[f[i]].info, len = (info >> 1) & 0xFF;
            const ef_nlp__ment *en = m->ent + (info >> 9);
            for (uint32_t k = 0; k < len; k++)
                score[en[k].cls] += en[k].delta;
        }
    }
    uint32_t best = UINT32_MAX;
    for (uint32_t c = 0; c < nc; c++) {
        if (!m->trained[c])
            continue;
        score[c] = (float)(score[c] / (double)known * SHARPNESS);
        if (best == UINT32_MAX || score[c] > score[best])
            best = c;
    }
    /* the best class, when a topic, is the best topic: it stays */
    uint32_t oos = nc - 1 - m->n_oos;
    if (m->n_oos > 1)
        other_topics_out(m, score);
    *cls = best > oos && best < oos + m->n_oos ? oos : best;
    if (only != UINT32_MAX && *cls != only)
        return; /* the caller wants no probability of another class */
    /* a class 30 below the best adds under 1e-13 to the sum: nothing the
     * four decimals of a confidence show; expf, since the scores are
     * floats (the exps were a fifth of the model's cost) */
    float sum = 0;
    for (uint32_t c = 0; c < nc; c++)
        if (m->trained[c] && score[c] > score[best] - 30.0f)
            sum += expf(score[c] - score[best]);
    *p = 1.0 / sum;
}

int ef_nlp__model_classify(const ef_nlp__model *m, const char *text, size_t n, float *score,
                           ef_nlp__mword *memo, uint32_t *cls, double *p)
{
    if (!m->slots)
        return EF_ENOTFOUND;
    reading r[2];
    /* a message mostly made of n-grams no intent's example has is about
     * something the bot was never shown: the model does not guess */
    const reading *b = best_reading(m, memo, text, n, true, r);
    if (!b)
        return EF_ENOTFOUND;
    rank_classes(m, b->f, b->known, score, UINT32_MAX, cls, p);
    return 0;
}

/* Whether class rival (trained, under the out_of_scope classes) surely
 * scores above every out_of_scope class over the known slots f[0..known),
 * so that rank_classes() cannot name out_of_scope: the rival's sum is
 * computed as rank_classes() computes it (the same float additions in the
 * same order, so the same float), the out_of_scope classes' only bounded
 * from above (the largest starting score plus each slot's largest delta,
 * in double) with a margin far above the rounding of a float sum of at
 * most MAX_FEATURES + 1 terms (relative 1e-3 of its magnitude against
 * under 1e-4). A rival above every out_of_scope class also keeps the best
 * out of them on a tie after the scaling: it comes first. */
static bool oos_cannot_win(const ef_nlp__model *m, const uint32_t *f, size_t known, uint32_t rival)
{
    uint32_t oos = m->n_classes - 1 - m->n_oos;
    if (!m->oos_max || rival >= oos || !m->trained[rival])
        return false;
    if (m->oos_unseen == -FLT_MAX)
        return true; /* no out_of_scope class can win: none is trained */
    float a = (float)known * m->unseen[rival];
    double bound = (double)known * m->oos_unseen, mag = (double)known * m->oos_unseen_mag;
    for (size_t i = 0; i < known; i++) {
        const ef_nlp__mslot *sl = &m->slots[f[i]];
        uint32_t len = (sl->info >> 1) & 0xFF;
        if (len == 0 && m->rows) {
            a += m->rows[(size_t)(sl->info >> 9) * m->row_len + rival];
        } else {
            /* an n-gram's entries go up by class (estimate()) */
            const ef_nlp__ment *en = m->ent + (sl->info >> 9);
            for (uint32_t k = 0; k < len && en[k].cls <= rival; k++)
                if (en[k].cls == rival)
                    a += en[k].delta;
        }
        bound += m->oos_max[f[i]];
        mag += m->oos_max[f[i]];
    }
    return (double)a > bound + 1e-3 * mag + 1e-6;
}

int ef_nlp__model_other(const ef_nlp__model *m, const char *text, size_t n, float *score,
                        ef_nlp__mword *memo, double *p)
{
    return ef_nlp__model_other_than(m, text, n, score, memo, UINT32_MAX, p);
}

int ef_nlp__model_other_than(const ef_nlp__model *m, const char *text, size_t n, float *score,
                             ef_nlp__mword *memo, uint32_t rival, double *p)
{
    uint32_t oos = m->n_classes - 1 - m->n_oos;
    bool trained = false;
    for (uint32_t c = oos; m->slots && c < oos + m->n_oos; c++)
        trained = trained || m->trained[c];
    if (!trained)
        return EF_ENOTFOUND;
    reading r[2];
    /* the same gate over every class's n-grams: out-of-scope examples must
     * know the message as well as intents' examples would have to */
    const reading *b = best_reading(m, memo, text, n, false, r);
    if (!b || oos_cannot_win(m, b->f, b->known, rival))
        return EF_ENOTFOUND;
    uint32_t cls;
    rank_classes(m, b->f, b->known, score, oos, &cls, p);
    return cls == oos ? 0 : EF_ENOTFOUND;
}
