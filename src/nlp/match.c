/*
 * match.c -- one message in, intent + confidence + entities out.
 *
 * The steps, all in memory the per-thread scratch already holds:
 *  1. Normalize with the one fold of base/utf8.h (ef_utf8_fold), which
 *     pattern text goes through too: lowercase ASCII and Cyrillic, ё -> е
 *     (also the rarer code points PCRE2 treats as case variants: K-sign,
 *     long s, old Cyrillic letter forms), typographic quotes and dashes to
 *     ASCII, every run of whitespace (NBSP and thin spaces included) to one
 *     space, zero-width characters dropped, ends trimmed. Every normalized byte remembers the
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

#include "base/utf8.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

/* The normalizer's running state over one message. */
typedef struct nz {
    ef_nlp_scratch *sc;
    const uint32_t *ms, *me;   /* when set: original ranges per input byte */
    size_t n;                  /* normalized bytes written */
    uint32_t acnt;             /* letters and digits written */
    bool pending;              /* a space is owed before the next character */
    uint32_t sp_start, sp_end; /* the original bytes of that space */
    size_t ncyr, nlat;
    bool digit, ascii_digit, at, sign, stop;
    unsigned seen; /* FC_* of the fast path's characters (see fast_char) */
} nz;

/* Whitespace at original bytes [i, end): remembered, written as one space
 * before the next character (never at the start, dropped at the end). */
static inline void nz_space(nz *z, size_t i, size_t end)
{
    if (z->n == 0)
        return;
    if (!z->pending)
        z->sp_start = z->ms ? z->ms[i] : (uint32_t)i;
    z->pending = true;
    z->sp_end = z->me ? z->me[end - 1] : (uint32_t)end;
}

/* Updates the letter counts and the cheap entity gates for folded
 * character f; returns whether it is a letter or digit. */
static inline bool nz_classify(nz *z, uint32_t f)
{
    if (f < 0x80) {
        bool lower = f >= 'a' && f <= 'z', dig = f >= '0' && f <= '9';
        z->nlat += lower;
        z->ascii_digit = z->ascii_digit || dig;
        z->at = z->at || f == '@';
        z->sign = z->sign || f == '$';
        z->stop = z->stop || f == '.' || f == '!' || f == '?';
        return lower || dig;
    }
    bool alnum = cp_alnum(f);
    if (alnum && f >= 0x0400 && f <= 0x04FF)
        z->ncyr++;
    z->digit = z->digit || maybe_digit(f);
    z->sign = z->sign || (f >= 0x20A0 && f <= 0x20BF);
    return alnum;
}

/* Writes the space owed before the next character, if any. */
static inline void nz_flush_space(nz *z)
{
    if (!z->pending)
        return;
    ef_nlp_scratch *sc = z->sc;
    sc->norm[z->n] = ' ';
    sc->src[z->n] = z->sp_start;
    sc->srcend[z->n] = z->sp_end;
    sc->alnum[z->n] = z->acnt;
    z->n++;
    z->pending = false;
}

/* Writes folded character f, which stands for original bytes [i, end). */
static inline void nz_put(nz *z, uint32_t f, size_t i, size_t end)
{
    ef_nlp_scratch *sc = z->sc;
    nz_flush_space(z);
    bool alnum = nz_classify(z, f);
    size_t bl = 1;
    if (f < 0x80)
        sc->norm[z->n] = (char)f;
    else
        bl = ef_utf8_encode(f, sc->norm + z->n);
    uint32_t os = z->ms ? z->ms[i] : (uint32_t)i, oe = z->me ? z->me[end - 1] : (uint32_t)end;
    for (size_t k = 0; k < bl; k++) {
        sc->src[z->n + k] = os;
        sc->srcend[z->n + k] = oe;
        sc->alnum[z->n + k] = z->acnt;
    }
    z->n += bl;
    z->acnt += alnum;
}

/* ---- the fast path: ASCII and two-byte Cyrillic ------------------------------ */

/* What a character of the fast path becomes, computed once from the same
 * functions the general path calls (ef_utf8_fold, cp_alnum, maybe_digit),
 * so that both give the same bytes and counts: its folded UTF-8 (one byte
 * for ASCII, two for Cyrillic) and what nz_classify() would record. len 0:
 * not a plain character (whitespace, invisible, or a fold leaving the
 * block): the general path takes it. */
typedef struct fast_char {
    uint8_t len;
    uint8_t b[2];
    uint16_t flags;
    uint64_t counts; /* added to the letter counts: Latin | Cyrillic << 32 */
} fast_char;

enum {
    FC_ALNUM = 1,   /* a letter or digit (coverage) */
    FC_LAT = 2,     /* an ASCII lower case letter (nz.nlat) */
    FC_CYR = 4,     /* a Cyrillic letter (nz.ncyr) */
    FC_DIGIT = 8,   /* an ASCII digit (nz.ascii_digit) */
    FC_MAYBE = 16,  /* maybe a digit beyond ASCII (nz.digit) */
    FC_AT = 32,     /* '@' */
    FC_SIGN = 64,   /* '$' or a currency sign */
    FC_SPACE = 128, /* ASCII whitespace (len 0): part of one space */
    FC_STOP = 256   /* '.', '!' or '?': the message may have several sentences */
};

static fast_char fast_ascii[128];
static fast_char fast_cyr[128]; /* U+0400..U+047F: lead byte 0xD0 or 0xD1 */
static pthread_once_t fast_once = PTHREAD_ONCE_INIT;

static fast_char fast_entry(uint32_t cp)
{
    fast_char e = {0};
    uint32_t f = ef_utf8_fold(cp);
    if (f == EF_UTF8_SPACE && cp < 0x80)
        e.flags = FC_SPACE;
    if (f == EF_UTF8_SPACE || f == EF_UTF8_DROP)
        return e;
    char buf[4];
    size_t bl = f < 0x80 ? (buf[0] = (char)f, 1) : ef_utf8_encode(f, buf);
    if (bl != (cp < 0x80 ? 1u : 2u))
        return e;
    nz z = {0};
    bool alnum = nz_classify(&z, f);
    e.len = (uint8_t)bl;
    memcpy(e.b, buf, bl);
    e.flags = (uint16_t)((alnum ? FC_ALNUM : 0) | (z.nlat ? FC_LAT : 0) | (z.ncyr ? FC_CYR : 0) |
                         (z.ascii_digit ? FC_DIGIT : 0) | (z.digit ? FC_MAYBE : 0) |
                         (z.at ? FC_AT : 0) | (z.sign ? FC_SIGN : 0) | (z.stop ? FC_STOP : 0));
    e.counts = (uint64_t)z.nlat | (uint64_t)z.ncyr << 32;
    return e;
}

static void fast_init(void)
{
    for (uint32_t c = 0; c < 128; c++) {
        fast_ascii[c] = fast_entry(c);
        fast_cyr[c] = fast_entry(0x400 + c);
    }
}

/* The fast path: writes the plain characters and ASCII whitespace from
 * s[i] on, as nz_put() and nz_space() would, and returns where the first
 * character it does not know starts (len at the end). mapped says whether
 * z->ms/z->me give the original ranges (the repaired reading) or the text
 * is the message as sent (the first reading); it is a constant in each
 * caller, so the compiler makes one loop for each. The state lives in
 * locals, and the scratch's arrays are written through local pointers (a
 * byte store could otherwise alias them). */
static inline __attribute__((always_inline)) size_t fast_run(nz *z, const unsigned char *s,
                                                             size_t i, size_t len, bool mapped)
{
    ef_nlp_scratch *sc = z->sc;
    char *norm = sc->norm;
    uint32_t *src = sc->src, *srcend = sc->srcend, *alnum = sc->alnum;
    const uint32_t *ms = z->ms, *me = z->me;
    size_t n = z->n;
    uint64_t counts = 0; /* Latin | Cyrillic << 32: a message has under 2^32 letters */
    uint32_t acnt = z->acnt, sp_start = z->sp_start, sp_end = z->sp_end;
    unsigned seen = z->seen;
    bool pending = z->pending;
    while (i < len) {
        unsigned c = s[i];
        const fast_char *e;
        if (c < 0x80)
            e = &fast_ascii[c];
        else if (i + 1 < len && ((c | (unsigned)s[i + 1] << 8) & 0xC0FE) == 0x80D0)
            e = &fast_cyr[(c & 1) << 6 | (s[i + 1] & 0x3F)]; /* 0xD0 or 0xD1, continued */
        else
            break;
        unsigned fl = e->flags, el = e->len;
        if (el == 0) {
            if (!(fl & FC_SPACE))
                break;
            if (n != 0) { /* as nz_space(): never at the start */
                if (!pending)
                    sp_start = mapped ? ms[i] : (uint32_t)i;
                pending = true;
                sp_end = mapped ? me[i] : (uint32_t)i + 1;
            }
            i++;
            continue;
        }
        if (pending) {
            norm[n] = ' ';
            src[n] = sp_start;
            srcend[n] = sp_end;
            alnum[n] = acnt;
            n++;
            pending = false;
        }
        counts += e->counts;
        seen |= fl; /* the gates, turned into nz's flags at the end */
        uint32_t os = mapped ? ms[i] : (uint32_t)i;
        uint32_t oe = mapped ? me[i + el - 1] : (uint32_t)(i + el);
        /* both bytes and both entries of each array, whatever the length:
         * a one-byte character's second ones are overwritten next (or lie
         * past the end: n + 1 <= i + 1 <= len, and the arrays hold len + 1) */
        memcpy(norm + n, e->b, 2);
        uint64_t pair = (uint64_t)os | (uint64_t)os << 32;
        memcpy(src + n, &pair, 8);
        pair = (uint64_t)oe | (uint64_t)oe << 32;
        memcpy(srcend + n, &pair, 8);
        pair = (uint64_t)acnt | (uint64_t)acnt << 32;
        memcpy(alnum + n, &pair, 8);
        n += el;
        i += el;
        acnt += fl & FC_ALNUM;
    }
    z->n = n;
    z->nlat += (size_t)(counts & UINT32_MAX);
    z->ncyr += (size_t)(counts >> 32);
    z->acnt = acnt;
    z->sp_start = sp_start;
    z->sp_end = sp_end;
    z->seen = seen;
    z->pending = pending;
    return i;
}

/* The general path: the character at text[*i], whatever it is; false
 * when it is not valid UTF-8. */
static bool slow_char(nz *z, const char *text, size_t len, size_t *i)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t start = *i;
    uint32_t cp;
    if (s[start] < 0x80)
        cp = s[(*i)++];
    else if (ef_utf8_decode(text, len, i, &cp) != 0)
        return false;
    uint32_t f = ef_utf8_fold(cp);
    if (f == EF_UTF8_DROP)
        return true;
    if (f == EF_UTF8_SPACE)
        nz_space(z, start, *i);
    else
        nz_put(z, f, start, *i);
    return true;
}

/* Normalizes text into sc->norm with the fold of base/utf8.h, validating
 * it as UTF-8 on the way (false when it is not valid); counts Cyrillic and
 * Latin letters for the language guess. A folded character is never longer
 * than the original, so len + 1 bytes always suffice. */
static bool normalize(ef_nlp_scratch *sc, const char *text, size_t len, const uint32_t *ms,
                      const uint32_t *me, size_t *cyr, size_t *lat)
{
    const unsigned char *s = (const unsigned char *)text;
    pthread_once(&fast_once, fast_init); /* the tables, once per process: one load after */
    grow(sc, len);
    nz z = {.sc = sc, .ms = ms, .me = me};
    size_t i = 0;
    for (;;) {
        i = ms ? fast_run(&z, s, i, len, true) : fast_run(&z, s, i, len, false);
        if (i >= len)
            break;
        if (!slow_char(&z, text, len, &i))
            return false;
    }
    z.ascii_digit |= (z.seen & FC_DIGIT) != 0;
    z.digit |= (z.seen & FC_MAYBE) != 0;
    z.at |= (z.seen & FC_AT) != 0;
    z.sign |= (z.seen & FC_SIGN) != 0;
    z.stop |= (z.seen & FC_STOP) != 0;
    sc->norm[z.n] = '\0';
    sc->alnum[z.n] = z.acnt;
    uint32_t olen = ms ? (len ? me[len - 1] : 0) : (uint32_t)len;
    sc->src[z.n] = olen;
    sc->srcend[z.n] = olen;
    sc->n = z.n;
    sc->maybe_digit = z.digit || z.ascii_digit;
    sc->has_digit = z.ascii_digit;
    sc->has_at = z.at;
    sc->has_sign = z.sign;
    sc->has_stop = z.stop;
    *cyr = z.ncyr;
    *lat = z.nlat;
    return true;
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

/* Adds [s, e) clipped to the window [ws, we) to sp. */
static inline void span_add(span *sp, size_t *n, uint32_t s, uint32_t e, uint32_t ws, uint32_t we)
{
    s = s < ws ? ws : s;
    e = e > we ? we : e;
    if (s < e) {
        sp[*n].s = s;
        sp[*n].e = e;
        (*n)++;
    }
}

/* Letters and digits inside the window [ws, we) of the normalized text
 * covered by the intent's spans and the entities. */
static uint32_t covered(const ef_nlp_scratch *sc, const ef_nlp__acc *a, uint32_t ws, uint32_t we)
{
    span sp[EF_NLP__MAX_SPANS + EF_NLU_MAX_ENTITIES];
    size_t n = 0;
    for (uint32_t i = 0; i < a->n_spans; i++)
        span_add(sp, &n, a->span[i][0], a->span[i][1], ws, we);
    for (size_t i = 0; i < sc->n_cands && i < EF_NLU_MAX_ENTITIES; i++)
        span_add(sp, &n, sc->cands[i].start, sc->cands[i].end, ws, we);
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
    double conf;  /* the better of the whole message's and its best sentence's */
    double whole; /* over the whole message */
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
    if (bot->pats[group].negative) {
        a->vetoed = true;
        return;
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

/* Whether a pattern of intent `owner` has matched so far. An intent's
 * negative patterns come after all its patterns (botdef.c), and the group
 * before the one being visited is recorded already, so at a negative
 * pattern this is the final word: when false, the intent is not scored
 * whatever the negative pattern does, and it need not run. */
static inline bool positive_so_far(const ef_nlp_scratch *sc, uint32_t owner)
{
    return sc->n_touched > 0 && sc->touched[sc->n_touched - 1] == owner &&
           sc->acc[owner].n_matched > 0;
}

/* An intent's confidence from what its patterns explain in the window
 * [ws, we) of the message (see docs/bot-definition.md, "How a message is
 * scored"). */
static double confidence(const ef_nlp_scratch *sc, const ef_nlp__acc *a, int priority, uint32_t ws,
                         uint32_t we)
{
    uint32_t total = sc->alnum[we] - sc->alnum[ws];
    double coverage = total ? (double)covered(sc, a, ws, we) / total : 1.0;
    if (coverage > 1.0)
        coverage = 1.0;
    uint32_t extra = a->n_matched - 1 > 2 ? 2 : a->n_matched - 1;
    double conf = 0.5 + 0.4 * coverage + 0.05 * extra + 0.05 * priority;
    return conf < 0 ? 0 : conf > 1 ? 1 : conf;
}

/* ---- sentences ---------------------------------------------------------------- */

#define MAX_SENTENCES 16

/* The sentences of a long message: [s[k], e[k]) of the normalized text. */
typedef struct sentences {
    size_t n;
    uint32_t s[MAX_SENTENCES], e[MAX_SENTENCES];
} sentences;

/* Splits the normalized text after '.', '!', '?' (or a run of them, "...",
 * "?!") followed by a space; a piece without a letter or digit joins the
 * one before it. One sentence when there is no such break. */
static void split_sentences(const ef_nlp_scratch *sc, sentences *st)
{
    const char *t = sc->norm;
    uint32_t start = 0;
    st->n = 0;
    for (size_t i = 0; i < sc->n; i++) {
        char c = t[i];
        if (c != '.' && c != '!' && c != '?')
            continue;
        size_t j = i + 1;
        while (j < sc->n && (t[j] == '.' || t[j] == '!' || t[j] == '?'))
            j++;
        if (j >= sc->n || t[j] != ' ')
            continue;
        if (sc->alnum[j] > sc->alnum[start] && st->n + 1 < MAX_SENTENCES) {
            st->s[st->n] = start;
            st->e[st->n] = (uint32_t)j;
            st->n++;
            start = (uint32_t)j + 1;
        }
        i = j;
    }
    if (st->n > 0 && sc->alnum[sc->n] == sc->alnum[start]) {
        st->e[st->n - 1] = (uint32_t)sc->n; /* a tail without words */
        return;
    }
    st->s[st->n] = start;
    st->e[st->n] = (uint32_t)sc->n;
    st->n++;
}

/* Words of at most this many a lead clause may have (lead_clause()). */
#define LEAD_WORDS 3

/* Words the rest after a lead clause needs for the model to read it: the
 * model is sure of itself on a word or two it half knows ("как дела",
 * "разобралась"), which a request rarely is. */
#define LEAD_REST_WORDS 3

/* The words (runs between spaces with a letter or digit) of the
 * normalized text from position s to its end. */
static uint32_t words_from(const ef_nlp_scratch *sc, uint32_t s)
{
    uint32_t words = 0;
    size_t ws = s;
    for (size_t i = s; i <= sc->n; i++) {
        if (i < sc->n && sc->norm[i] != ' ')
            continue;
        words += sc->alnum[i] > sc->alnum[ws];
        ws = i + 1;
    }
    return words;
}

/* Whether every span of intent ii lies inside [s, e) of the normalized
 * text. */
static bool spans_inside(const ef_nlp_scratch *sc, uint32_t ii, uint32_t s, uint32_t e)
{
    const ef_nlp__acc *a = &sc->acc[ii];
    for (uint32_t i = 0; i < a->n_spans; i++)
        if (a->span[i][0] < s || a->span[i][1] > e)
            return false;
    return true;
}

/* A voice-style message puts its greeting or thanks before a comma and
 * goes on without a full stop ("Здравствуйте, подскажите, что ты можешь",
 * "Спасибо, а где второй заказ"). When small talk (intent ii) won a
 * message of one sentence and all it matched is in a lead clause of at
 * most LEAD_WORDS words ending in a comma, returns where the rest starts
 * (after the comma's space), 0 otherwise: the rest is then a request as a
 * sentence after the small talk would be (request_first(), and the model
 * reads it when no pattern did). The confidences stay the whole
 * message's: the lead clause is not scored alone. */
static uint32_t lead_clause(const ef_nlp_scratch *sc, uint32_t ii)
{
    const char *t = sc->norm;
    uint32_t words = 1;
    for (uint32_t i = 0; i + 2 < sc->n && words <= LEAD_WORDS; i++) {
        if (t[i] == ' ') {
            words++;
            continue;
        }
        if (t[i] != ',' || t[i + 1] != ' ')
            continue;
        if (sc->alnum[i] == 0 || sc->alnum[sc->n] == sc->alnum[i + 2] ||
            !spans_inside(sc, ii, 0, i + 1))
            return 0;
        return i + 2;
    }
    return 0;
}

/* The intent's best confidence over the sentences its spans touch: in a
 * long message a request is judged by its own sentence, not diluted by a
 * greeting or a story around it. */
static double sentence_confidence(const ef_nlp_scratch *sc, const ef_nlp__acc *a, int prio,
                                  const sentences *st)
{
    double best = 0;
    for (size_t k = 0; k < st->n; k++) {
        bool touches = false;
        for (uint32_t i = 0; i < a->n_spans && !touches; i++)
            touches = a->span[i][0] < st->e[k] && a->span[i][1] > st->s[k];
        if (!touches)
            continue;
        double c = confidence(sc, a, prio, st->s[k], st->e[k]);
        if (c > best)
            best = c;
    }
    return best;
}

/* Small talk (an intent with a negative priority: greeting, thanks,
 * goodbye) never wins a message of several sentences over a request that
 * reached the threshold: "Здравствуйте! Где мой заказ?" is about the order.
 * The small talk stays in the ranking, second, its confidence capped at
 * the request's. */
static void request_first(scored *top, size_t n_top, double threshold)
{
    if (n_top < 2 || top[0].priority >= 0)
        return;
    for (size_t k = 1; k < n_top; k++) {
        if (top[k].priority >= 0 && top[k].conf >= threshold) {
            scored req = top[k];
            memmove(&top[1], &top[0], k * sizeof(scored));
            top[0] = req;
            /* what ranked above it was small talk only (an intent of
             * priority 0 or more above it would have been taken): capped,
             * so that the ranking stays best first */
            for (size_t j = 1; j <= k; j++)
                if (top[j].conf > req.conf)
                    top[j].conf = req.conf;
            return;
        }
    }
}

/* A message of several sentences that small talk won ("Привет. Оформлял
 * заказ неделю назад, где он?"): the request may be in a sentence no
 * pattern understood. Keeps in sc->rest_s/rest_e the text from the first
 * sentence the small talk did not touch to the last one, for the model
 * (ef_nlp_match()); empty when every sentence is small talk. */
static void untouched_rest(ef_nlp_scratch *sc, const ef_nlp__acc *a, const sentences *st)
{
    bool any = false;
    for (size_t k = 0; k < st->n; k++) {
        bool touches = false;
        for (uint32_t i = 0; i < a->n_spans && !touches; i++)
            touches = a->span[i][0] < st->e[k] && a->span[i][1] > st->s[k];
        if (touches)
            continue;
        if (!any)
            sc->rest_s = st->s[k];
        sc->rest_e = st->e[k];
        any = true;
    }
}

/* Matches the normalized message in sc (text: the message as sent, for
 * entity values) into *out. */
static void match_normalized(const ef_bot *bot, ef_nlp_scratch *sc, const char *text,
                             int64_t now_unix, size_t cyr, size_t lat, ef_nlu_result *out)
{
    const ef_nlp__prefilter *pf = &bot->pf;
    if (sc->options & EF_NLP_NO_PREFILTER) {
        memset(sc->cand, 0xFF, pf->n_words * sizeof(uint64_t));
    } else {
        memcpy(sc->cand, pf->always, pf->n_words * sizeof(uint64_t));
        ef_nlp__pf_probe(pf, sc->norm, sc->n, sc->maybe_digit, sc->cand, sc->first);
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
            if (p->also && !(sc->cand[p->also / 64] >> (p->also % 64) & 1))
                continue; /* its second required literal is absent */
            if (p->negative && !positive_so_far(sc, p->owner))
                continue; /* it could only veto an intent that did not match */
            if (p->core && !(sc->options & EF_NLP_NO_PREFILTER) && ef_nlp__exec_core(sc, p) < 0)
                continue; /* no match of its core, so none of its own */
            /* no match starts before the first of its literals that the
             * probe found (EF_NLP__AT_MATCH): the leftmost match is the
             * same from there, and the positions before are not tried */
            size_t from = 0;
            if (!(sc->options & EF_NLP_NO_PREFILTER) && (pf->from_first[b / 64] >> (b % 64) & 1))
                from = sc->first[b];
            if (ef_nlp__exec(sc, p, from) < 0)
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
    scored top[EF_NLU_MAX_RANKED];
    size_t n_top = 0;
    double oos = -1; /* out_of_scope's confidence, -1: it did not match */
    sentences st;
    st.n = 0;
    if (sc->n_touched > 0 && sc->has_stop) {
        split_sentences(sc, &st);
    } else if (sc->n_touched > 0) { /* no '.', '!' or '?': what split_sentences() finds */
        st.n = 1;
        st.s[0] = 0;
        st.e[0] = (uint32_t)sc->n;
    }
    for (size_t k = 0; k < sc->n_touched; k++) {
        uint32_t ii = sc->touched[k];
        const ef_nlp__acc *a = &sc->acc[ii];
        if (a->vetoed || a->n_matched == 0)
            continue;
        int prio = ii < bot->n_intents ? bot->intents[ii].priority : 0;
        double whole = confidence(sc, a, prio, 0, (uint32_t)sc->n), conf = whole;
        if (ii == bot->n_intents) {
            oos = whole;
            continue;
        }
        if (st.n > 1) {
            double sent = sentence_confidence(sc, a, prio, &st);
            conf = sent > conf ? sent : conf;
        }
        scored cur = {ii, conf, whole, prio, a->n_matched};
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

    uint32_t lead = 0;
    if (st.n == 1 && n_top > 0 && top[0].priority < 0)
        lead = lead_clause(sc, top[0].intent);
    if (st.n > 1 || lead)
        request_first(top, n_top, bot->threshold);
    sc->rest_s = sc->rest_e = 0;
    if (st.n > 1 && n_top > 0 && top[0].priority < 0) {
        untouched_rest(sc, &sc->acc[top[0].intent], &st);
    } else if (lead && top[0].priority < 0 && words_from(sc, lead) >= LEAD_REST_WORDS) {
        sc->rest_s = lead;
        sc->rest_e = (uint32_t)sc->n;
    }

    out->n_ranked = n_top;
    for (size_t k = 0; k < n_top; k++) {
        const ef_nlp__pat *p = &bot->pats[sc->acc[top[k].intent].best_pat];
        out->ranked[k].intent = bot->intents[top[k].intent].name;
        out->ranked[k].confidence = top[k].conf;
        out->ranked[k].pattern = p->source;
        out->ranked[k].line = p->line;
    }
    /* out of scope against the whole message: a sentence about something
     * else does not silence a request in another one; matched alone (no
     * intent's pattern did), it is the rules' verdict too, which neither
     * the repaired reading nor the model overrules ("автобус не пришел":
     * the model would have read "не пришел" as an order) */
    sc->oos = oos >= 0 && (n_top == 0 || oos >= top[0].whole);
    if (n_top > 0 && top[0].conf >= bot->threshold && !sc->oos) {
        out->intent = bot->intents[top[0].intent].name;
        out->confidence = top[0].conf;
        const ef_nlp__pat *p = &bot->pats[sc->acc[top[0].intent].best_pat];
        out->lang = p->lang ? p->lang : guess_lang(bot, cyr, lat);
    } else {
        out->intent = EF_NLP_FALLBACK;
        out->confidence = sc->oos ? oos : n_top > 0 ? 1.0 - top[0].conf : 1.0;
        out->lang = guess_lang(bot, cyr, lat);
    }

    out->n_repairs = 0;
    out->n_entities = 0;
    for (size_t k = 0; k < sc->n_cands && k < EF_NLU_MAX_ENTITIES; k++) {
        const ef_nlp__cand *c = &sc->cands[k];
        ef_nlu_entity *e = &out->entities[out->n_entities++];
        e->type = c->type;
        e->start = sc->src[c->start];
        e->end = sc->srcend[c->end - 1];
        memcpy(e->value, c->value, sizeof(e->value));
    }
}

/* A first reading below this confidence (one pattern explaining less than
 * two thirds of the message) gets a second, repaired reading. */
#define REPAIR_BELOW 0.77

/* The second reading: the message with its unknown words repaired
 * (normalize.c), kept when it understands the message better. */
static void match_repaired(const ef_bot *bot, ef_nlp_scratch *sc, const char *text,
                           int64_t now_unix, size_t cyr, size_t lat, ef_nlu_result *out)
{
    if (ef_nlp__repair(bot, sc) == 0)
        return;
    size_t c2, l2;
    if (!normalize(sc, sc->rbuf, sc->rn, sc->rsrc, sc->rsrcend, &c2, &l2))
        return;
    sc->read_repaired = true;
    ef_nlu_result *alt = &sc->alt;
    match_normalized(bot, sc, text, now_unix, cyr, lat, alt);
    bool first_fb = strcmp(out->intent, EF_NLP_FALLBACK) == 0;
    bool alt_fb = strcmp(alt->intent, EF_NLP_FALLBACK) == 0;
    if (alt_fb || (!first_fb && alt->confidence <= out->confidence))
        return;
    /* the entities of the reading that found more (a repair may have
     * turned a currency word into something else) */
    if (alt->n_entities < out->n_entities) {
        alt->n_entities = out->n_entities;
        memcpy(alt->entities, out->entities, out->n_entities * sizeof(ef_nlu_entity));
    }
    *out = *alt;
    out->n_repairs = sc->n_repairs;
    memcpy(out->repairs, sc->repairs, sc->n_repairs * sizeof(ef_nlu_repair));
}

/* The scratch's memo of the words the model read, made the first time the
 * model is asked (the gateway makes a scratch per batch, and most batches
 * never ask it), or NULL when the dictionaries' memo is off too
 * (EF_NLP_NO_WORD_MEMO: the cost of words a worker has never seen). */
static ef_nlp__mword *model_memo(ef_nlp_scratch *sc)
{
    if (sc->options & EF_NLP_NO_WORD_MEMO)
        return NULL;
    if (!sc->mword)
        sc->mword = ef_calloc(EF_NLP__MWORDS, sizeof(ef_nlp__mword));
    return sc->mword;
}

/* Whether the model's probability p is taken: from bot.model_threshold
 * on, never when it is 1 (a probability can round to 1.0: the setting
 * means "off"). */
static bool taken(const ef_bot *bot, double p)
{
    return bot->model_threshold < 1.0 && p >= bot->model_threshold;
}

/* The second opinion on a message no rule understood (model.c): the
 * bot's examples as a character n-gram model, read on the repaired text
 * when there is one (its repairs then explain the answer). Taken from
 * bot.model_threshold on; a rule's out-of-scope verdict is never
 * overruled. */
static void ask_model(const ef_bot *bot, ef_nlp_scratch *sc, ef_nlu_result *out)
{
    uint32_t cls;
    double p;
    if (ef_nlp__model_classify(&bot->model, sc->norm, sc->n, sc->mscore, model_memo(sc), &cls,
                               &p) != 0)
        return;
    bool oos = cls >= bot->n_intents;
    out->model_intent = oos ? EF_NLP_FALLBACK : bot->intents[cls].name;
    out->model_confidence = p;
    if (oos || !taken(bot, p))
        return;
    out->intent = out->model_intent;
    out->confidence = p;
    out->by_model = true;
    if (sc->read_repaired && out->n_repairs == 0) {
        out->n_repairs = sc->n_repairs;
        memcpy(out->repairs, sc->repairs, sc->n_repairs * sizeof(ef_nlu_repair));
    }
}

/* Small talk won a message of several sentences, and the other sentences
 * (sc->rest_s/rest_e) reached no pattern: the model reads them, and an
 * intent it names at bot.model_threshold or more wins (the small talk stays
 * ranked first, as the rules saw it). request_first() does the same for a
 * request a pattern found. */
static void ask_model_rest(const ef_bot *bot, ef_nlp_scratch *sc, ef_nlu_result *out)
{
    uint32_t cls;
    double p;
    if (sc->rest_e <= sc->rest_s ||
        ef_nlp__model_classify(&bot->model, sc->norm + sc->rest_s, sc->rest_e - sc->rest_s,
                               sc->mscore, model_memo(sc), &cls, &p) != 0)
        return;
    bool oos = cls >= bot->n_intents;
    out->model_intent = oos ? EF_NLP_FALLBACK : bot->intents[cls].name;
    out->model_confidence = p;
    if (oos || !taken(bot, p) || bot->intents[cls].priority < 0)
        return;
    out->intent = out->model_intent;
    out->confidence = p;
    out->by_model = true;
}

/* A rule answered, but weakly (its pattern explains under REPAIR_BELOW of
 * the message: "у меня сломался холодильник" has one returns word): when
 * the model takes the whole message for one of the bot's out-of-scope or
 * negative examples at bot.model_threshold or more, the message is closer
 * to what the bot must not answer than to the intent, and falls back. The
 * rule's intent stays ranked; "model" says why. */
static void veto_weak(const ef_bot *bot, ef_nlp_scratch *sc, ef_nlu_result *out)
{
    double p;
    if (out->confidence >= REPAIR_BELOW)
        return;
    /* the rule's intent as the model's rival: where its score alone is
     * above every out-of-scope class's, the model need not rank them all */
    uint32_t rival = UINT32_MAX;
    for (size_t k = 0; k < bot->n_intents && rival == UINT32_MAX; k++)
        if (bot->intents[k].name == out->intent)
            rival = (uint32_t)k;
    if (ef_nlp__model_other_than(&bot->model, sc->norm, sc->n, sc->mscore, model_memo(sc), rival,
                                 &p) != 0 ||
        !taken(bot, p))
        return;
    out->model_intent = EF_NLP_FALLBACK;
    out->model_confidence = p;
    out->intent = EF_NLP_FALLBACK;
    out->confidence = p;
    out->by_model = true;
}

/* Rule answers this close to the best one are the model's to choose from
 * (arbitrate()). */
#define ARBITRATE_MARGIN 0.1

/* A rule answered weakly (under REPAIR_BELOW) and other intents' patterns
 * matched nearly as well (within ARBITRATE_MARGIN, at the threshold or
 * more): the words the patterns waited for are in the message, but which
 * of them it is about is a matter of the rest of it ("промокод так и не
 * пришел": promo or an order). When the model, which reads every word,
 * names one of those intents (not small talk), that one wins: the answer
 * is still an intent a pattern found, never one the rules did not name;
 * "model" says it chose. */
static void arbitrate(const ef_bot *bot, ef_nlp_scratch *sc, ef_nlu_result *out)
{
    double top = out->ranked[0].confidence;
    uint32_t cls;
    double p;
    if (out->n_ranked < 2 || out->confidence >= REPAIR_BELOW ||
        out->intent != out->ranked[0].intent || out->ranked[1].confidence < bot->threshold ||
        out->ranked[1].confidence < top - ARBITRATE_MARGIN ||
        ef_nlp__model_classify(&bot->model, sc->norm, sc->n, sc->mscore, model_memo(sc), &cls,
                               &p) != 0)
        return;
    out->model_intent = cls < bot->n_intents ? bot->intents[cls].name : EF_NLP_FALLBACK;
    out->model_confidence = p;
    if (cls >= bot->n_intents || bot->intents[cls].priority < 0)
        return;
    for (size_t k = 1; k < out->n_ranked; k++) {
        ef_nlu_ranked chosen = out->ranked[k];
        if (chosen.confidence < bot->threshold || chosen.confidence < top - ARBITRATE_MARGIN)
            return;
        if (chosen.intent != bot->intents[cls].name)
            continue;
        memmove(&out->ranked[1], &out->ranked[0], k * sizeof(ef_nlu_ranked));
        out->ranked[0] = chosen;
        out->intent = chosen.intent;
        out->confidence = chosen.confidence;
        out->by_model = true;
        return;
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
    if (!normalize(sc, text, len, NULL, NULL, &cyr, &lat))
        return EF_EUTF8;
    sc->read_repaired = false;
    match_normalized(bot, sc, text, now_unix, cyr, lat, out);
    out->model_intent = NULL;
    out->model_confidence = 0;
    out->by_model = false;
    bool weak =
        !sc->oos && (strcmp(out->intent, EF_NLP_FALLBACK) == 0 || out->confidence < REPAIR_BELOW);
    if (weak && bot->vocab.n && !(sc->options & EF_NLP_NO_REPAIR))
        match_repaired(bot, sc, text, now_unix, cyr, lat, out);
    if (!sc->oos && strcmp(out->intent, EF_NLP_FALLBACK) == 0 && bot->model.slots &&
        !(sc->options & EF_NLP_NO_MODEL))
        ask_model(bot, sc, out);
    else if (!sc->oos && sc->rest_e > sc->rest_s && bot->model.slots &&
             !(sc->options & EF_NLP_NO_MODEL))
        ask_model_rest(bot, sc, out);
    else if (!sc->oos && bot->model.slots && !(sc->options & EF_NLP_NO_MODEL)) {
        arbitrate(bot, sc, out);
        veto_weak(bot, sc, out);
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
    r->n_repairs = 0;
    r->model_intent = NULL;
    r->model_confidence = 0;
    r->by_model = false;
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
    rc = rc ? rc : ef_buf_append(&b, "]", 1);
    for (size_t i = 0; !rc && i < r->n_repairs; i++) {
        const ef_nlu_repair *p = &r->repairs[i];
        const char *open = i ? ", {\"from\": " : ", \"repairs\": [{\"from\": ";
        rc = ef_buf_append(&b, open, strlen(open));
        rc = rc ? rc : json_str(&b, p->from);
        rc = rc ? rc : ef_buf_append(&b, ", \"to\": ", 8);
        rc = rc ? rc : json_str(&b, p->to);
        rc = rc ? rc : ef_buf_append(&b, ", \"kind\": ", 10);
        rc = rc ? rc : json_str(&b, p->kind);
        rc = rc ? rc : ef_buf_appendf(&b, ", \"start\": %zu, \"end\": %zu}", p->start, p->end);
        rc = rc ? rc : (i + 1 == r->n_repairs ? ef_buf_append(&b, "]", 1) : 0);
    }
    if (!rc && r->model_intent) {
        rc = ef_buf_append(&b, ", \"model\": {\"intent\": ", 22);
        rc = rc ? rc : json_str(&b, r->model_intent);
        rc = rc ? rc : ef_buf_append(&b, ", \"confidence\": ", 16);
        rc = rc ? rc : json_conf(&b, r->model_confidence);
        rc = rc ? rc : ef_buf_appendf(&b, ", \"used\": %s}", r->by_model ? "true" : "false");
    }
    rc = rc ? rc : ef_buf_append(&b, "}", 1);
    if (rc) {
        ef_buf_cleanup(&b);
        return NULL;
    }
    return ef_buf_steal(&b, NULL);
}
