/*
 * normalize.c -- the repair stage: words read otherwise than written.
 *
 * After the fold (base/utf8.h, applied by match.c to messages and by
 * prefilter.c to patterns) a message that no rule understands well is given
 * a second reading in which each word may be repaired:
 *  - layout: a Latin-letter word typed with the keyboard left on English
 *    ("ljcnfdrf", "cgfcb,j") is mapped key by key through ЙЦУКЕН and kept
 *    when the result is a known Russian word ("доставка", "спасибо");
 *  - translit: a Latin word that is not in the bot's Latin vocabulary is
 *    transliterated (the common schemes: zh/ch/sh/shch/sch, kh/h, ya/ja/ia,
 *    yu/ju/iu, yo/jo, ts/tz, y as ы or й, ' as ь) and kept when the result,
 *    or its nearest spelling, is a word of the bot's vocabulary;
 *  - spelling: a Cyrillic word of four letters or more that neither the bot
 *    nor the Russian dictionary knows is replaced by the nearest word or
 *    stem of the bot's vocabulary, by an edit distance where a keyboard
 *    neighbour, a reduced vowel (а/о, е/и) or a doubled letter costs less
 *    than an arbitrary edit, within a bound that grows with the word's
 *    length; a handful of spoken forms ("када", "скока") are read directly.
 * The vocabulary is built at load from the bot itself: the words of every
 * example, pattern (a word followed by ~ is a stem: any ending) and synonym.
 * The dictionaries (hunspell, bot.dictionary: ru_RU, en_US) only say
 * whether a word exists, so that a correct word the bot does not know, in
 * Russian or in English, is never "repaired".
 *
 * The matcher runs this only when the first reading fell back or explained
 * little of the message, and keeps the second reading only when it is
 * better; clean messages never get here.
 *
 * Cost: the vocabulary is indexed at load (vindex.c: a known-word table,
 * deletion indexes for the spelling search), so a known word is a probe or
 * two and a spelling repair ranks a handful of candidates; nothing is
 * written for a message until a word is repaired.
 *
 * Thread model: the vocabulary and its indexes are immutable after load;
 * hunspell's checker keeps state while it checks a word, so the one handle
 * of a bot is used under the bot's lock, and only for a word the scratch
 * (one per thread) has not asked about before (dict_knows).
 */
#include "nlp/nlp_int.h"

#include "base/utf8.h"

#include <hunspell.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CP 40        /* longer words are left alone */
#define MIN_SPELL 4      /* shortest Cyrillic word spelling repair touches */
#define MIN_STEM 4       /* shortest stem that makes a word known */
#define MIN_STEM_SPELL 7 /* shortest word read by a stem that may still be a slip */
#define MIN_LAYOUT 3     /* shortest Latin word read through the layout */

enum { V_WORD = 1, V_STEM = 2, V_LATIN = 4 };

/* ---- the vocabulary ---------------------------------------------------------- */

static int ventry_cmp(const void *a, const void *b)
{
    const ef_nlp__ventry *x = a, *y = b;
    int c = strcmp(x->w, y->w);
    return c ? c : (int)x->flags - (int)y->flags;
}

static bool is_cyr(uint32_t c)
{
    return c >= 0x0430 && c <= 0x044F;
}

static bool is_lat(uint32_t c)
{
    return c >= 'a' && c <= 'z';
}

static uint32_t letter_mask(const uint32_t *cp, size_t n)
{
    uint32_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (cp[i] >= 0x0430 && cp[i] <= 0x044F)
            m |= 1u << (cp[i] - 0x0430);
    return m;
}

static void vocab_push(ef_nlp__vocab *v, const char *w, size_t n, unsigned flags)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 1024;
        v->e = ef_realloc(v->e, v->cap * sizeof(*v->e));
    }
    ef_nlp__ventry *e = &v->e[v->n++];
    e->w = ef_malloc(n + 1);
    memcpy(e->w, w, n);
    e->w[n] = '\0';
    e->flags = (uint8_t)flags;
    e->ncp = 0;
    size_t i = 0;
    uint32_t cp;
    while (i < n && e->ncp < MAX_CP && ef_utf8_decode(w, n, &i, &cp) == 0)
        e->cp[e->ncp++] = cp;
    e->mask = letter_mask(e->cp, e->ncp);
}

/* Adds the words of plain text (an example, a synonym): folded runs of one
 * script's letters, two letters or more. */
static void vocab_add_text(ef_nlp__vocab *v, const char *s)
{
    size_t n = strlen(s), i = 0;
    char w[MAX_CP * 2 + 4];
    size_t wl = 0, ncp = 0;
    int script = 0; /* 1 Cyrillic, 2 Latin */
    for (;;) {
        uint32_t cp = 0;
        bool end = i >= n;
        if (!end && ef_utf8_decode(s, n, &i, &cp) != 0)
            return;
        uint32_t f = end ? ' ' : ef_utf8_fold(cp);
        int sc = is_cyr(f) ? 1 : is_lat(f) ? 2 : 0;
        if (sc && sc == script && ncp < MAX_CP) {
            wl += ef_utf8_encode(f, w + wl);
            ncp++;
            continue;
        }
        if (script && ncp >= 2)
            vocab_push(v, w, wl, V_WORD | (script == 2 ? V_LATIN : 0));
        wl = ncp = 0;
        script = sc;
        if (sc) {
            wl = ef_utf8_encode(f, w);
            ncp = 1;
        }
        if (end)
            return;
    }
}

/* Adds the literal words of a pattern as written: a run of letters followed
 * by ~, ( or [ is a stem, one after a quantifier or a group is a fragment
 * (skipped), a letter after a backslash is an escape. */
static void vocab_add_pattern(ef_nlp__vocab *v, const char *s)
{
    size_t n = strlen(s), i = 0;
    char w[MAX_CP * 2 + 4];
    size_t wl = 0, ncp = 0;
    int script = 0;
    uint32_t before = 0, prev = 0;
    for (;;) {
        uint32_t cp = 0;
        bool end = i >= n;
        if (!end && ef_utf8_decode(s, n, &i, &cp) != 0)
            return;
        uint32_t f = end ? ' ' : ef_utf8_fold(cp);
        if (prev == '\\') { /* an escape: \b, \p{L}, \d, ... */
            prev = f == '\\' ? 0 : 1;
            script = 0;
            wl = ncp = 0;
            continue;
        }
        int sc = is_cyr(f) ? 1 : is_lat(f) ? 2 : 0;
        if (sc && sc == script && ncp < MAX_CP) {
            wl += ef_utf8_encode(f, w + wl);
            ncp++;
            prev = f;
            continue;
        }
        bool fragment = before == ')' || before == ']' || before == '?' || before == '*' ||
                        before == '+' || before == '}' || before == 1;
        bool stem = f == '~' || f == '(' || f == '[';
        if (script && !fragment && ncp >= (stem ? MIN_STEM : 2))
            vocab_push(v, w, wl, (stem ? V_STEM : V_WORD) | (script == 2 ? V_LATIN : 0));
        wl = ncp = 0;
        script = sc;
        if (sc) {
            before = prev;
            wl = ef_utf8_encode(f, w);
            ncp = 1;
        }
        prev = f;
        if (end)
            return;
    }
}

/* Loads hunspell dictionary `name` from $EF_DICT_DIR or /usr/share/hunspell. */
int ef_nlp__vocab_dictionary(ef_nlp__vocab *v, const char *name, char *why, size_t whylen)
{
    if (v->n_spellers == sizeof(v->spellers) / sizeof(v->spellers[0])) {
        snprintf(why, whylen, "at most 4 dictionaries");
        return EF_ELIMIT;
    }
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' || *p == '-')) {
            snprintf(why, whylen, "not a dictionary name such as ru_RU");
            return EF_EINVAL;
        }
    const char *dir = getenv("EF_DICT_DIR");
    if (!dir || !dir[0])
        dir = "/usr/share/hunspell";
    char aff[1024], dic[1024];
    snprintf(aff, sizeof(aff), "%s/%s.aff", dir, name);
    snprintf(dic, sizeof(dic), "%s/%s.dic", dir, name);
    FILE *f = fopen(dic, "rb");
    if (!f) {
        snprintf(why, whylen, "no hunspell dictionary %s (install hunspell-ru)", dic);
        return EF_ENOTFOUND;
    }
    fclose(f);
    Hunhandle *h = Hunspell_create(aff, dic);
    if (!h) {
        snprintf(why, whylen, "cannot load %s", dic);
        return EF_EINVAL;
    }
    if (v->n_spellers == 0)
        pthread_mutex_init(&v->lock, NULL);
    v->spellers[v->n_spellers++] = h;
    return 0;
}

void ef_nlp__vocab_build(ef_bot *bot)
{
    ef_nlp__vocab *v = &bot->vocab;
    for (size_t i = 0; i < bot->n_examples; i++)
        vocab_add_text(v, bot->examples[i].text);
    for (size_t i = 0; i < bot->n_pats; i++)
        if (bot->pats[i].group == i)
            vocab_add_pattern(v, bot->pats[i].source);
    for (size_t i = 0; i < bot->n_entities; i++)
        for (size_t k = 0; k < bot->entities[i].n_canon; k++)
            vocab_add_text(v, bot->entities[i].canon[k]);
    if (v->n)
        qsort(v->e, v->n, sizeof(*v->e), ventry_cmp);
    size_t o = 0; /* drop duplicates */
    for (size_t i = 0; i < v->n; i++) {
        if (o && strcmp(v->e[o - 1].w, v->e[i].w) == 0 && v->e[o - 1].flags == v->e[i].flags) {
            ef_free(v->e[i].w);
            continue;
        }
        v->e[o++] = v->e[i];
    }
    v->n = o;
    ef_nlp__vocab_index(v);
}

void ef_nlp__vocab_cleanup(ef_nlp__vocab *v)
{
    for (size_t i = 0; i < v->n; i++)
        ef_free(v->e[i].w);
    ef_free(v->e);
    ef_nlp__vocab_index_cleanup(v);
    for (size_t i = 0; i < v->n_spellers; i++)
        Hunspell_destroy(v->spellers[i]);
    if (v->n_spellers)
        pthread_mutex_destroy(&v->lock);
    memset(v, 0, sizeof(*v));
}

/* Is the word (UTF-8, folded) a word or starts with a stem of the bot? One
 * pass over its bytes and a probe of the known-word table (vindex.c) per
 * prefix that may be a stem. */
static bool bot_knows(const ef_nlp__vocab *v, const char *w, size_t n, bool latin)
{
    return ef_nlp__vocab_knows(v, w, n, latin, latin ? MIN_STEM : MIN_STEM * 2);
}

/* Asks the dictionaries (under the bot's lock: hunspell keeps state while
 * it checks a word). */
static bool dict_ask(const ef_bot *bot, const char *w)
{
    ef_nlp__vocab *v = (ef_nlp__vocab *)&bot->vocab;
    /* also as a name: "москву" is known as "Москву" */
    char cap[MAX_CP * 4 + 1];
    snprintf(cap, sizeof(cap), "%s", w);
    unsigned char *u = (unsigned char *)cap;
    if (u[0] == 0xD0 && u[1] >= 0xB0 && u[1] <= 0xBF)
        u[1] -= 0x20; /* а..п -> А..П */
    else if (u[0] == 0xD1 && u[1] >= 0x80 && u[1] <= 0x8F) {
        u[0] = 0xD0; /* р..я -> Р..Я */
        u[1] += 0x20;
    }
    int ok = 0;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < v->n_spellers && !ok; i++)
        ok = Hunspell_spell(v->spellers[i], w) ||
             (u[0] == 0xD0 && Hunspell_spell(v->spellers[i], cap));
    pthread_mutex_unlock(&v->lock);
    return ok != 0;
}

/* Does a dictionary know the word? The answers are remembered in the
 * scratch, which belongs to one thread, so a word seen before costs one
 * probe and no lock. Why not the alternatives (measured on this machine):
 * a hunspell check costs 1-12 us (ru_RU + en_US), more than a whole clean
 * message, so a hunspell handle per scratch (18 MB and 120 ms for ru_RU,
 * 7 MB and 60 ms for en_US, per worker thread and bot) would remove the
 * lock but not the cost; and a read-only set of every word form the
 * dictionaries accept cannot be built (hunspell does not list the forms its
 * affix rules make, Russian has millions). Customers' words repeat, so the
 * memo answers nearly every check; a miss takes the lock as before. The
 * memo is emptied when three quarters full. */
static bool dict_knows(const ef_bot *bot, ef_nlp_scratch *sc, const char *w)
{
    if (!bot->vocab.n_spellers)
        return false;
    if (sc->options & EF_NLP_NO_WORD_MEMO)
        return dict_ask(bot, w);
    size_t n = strlen(w);
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    for (size_t i = 0; i < n; i += 8) { /* eight bytes at a time */
        uint64_t x = 0;
        memcpy(&x, w + i, n - i < 8 ? n - i : 8);
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    h = (h | 2) & ~(uint64_t)1; /* bit 0: the answer; never 0 */
    size_t s = (h >> 2) & (EF_NLP__DMEMO - 1);
    for (; sc->dmemo[s]; s = (s + 1) & (EF_NLP__DMEMO - 1))
        if ((sc->dmemo[s] & ~(uint64_t)1) == h)
            return sc->dmemo[s] & 1;
    bool ok = dict_ask(bot, w);
    if (sc->dmemo_n >= EF_NLP__DMEMO * 3 / 4) {
        memset(sc->dmemo, 0, EF_NLP__DMEMO * sizeof(uint64_t));
        sc->dmemo_n = 0;
        s = (h >> 2) & (EF_NLP__DMEMO - 1);
    }
    sc->dmemo[s] = h | ok;
    sc->dmemo_n++;
    return ok;
}

/* ---- spoken forms, layout, transliteration ----------------------------------- */

typedef struct spoken_word {
    const char *from, *to;
    size_t len; /* bytes of from */
} spoken_word;

#define SPOKEN(a, b)                                                                               \
    {                                                                                              \
        a, b, sizeof(a) - 1                                                                        \
    }
static const spoken_word spoken[] = {
    SPOKEN("када", "когда"),       SPOKEN("кагда", "когда"),     SPOKEN("скока", "сколько"),
    SPOKEN("скоко", "сколько"),    SPOKEN("сколька", "сколько"), SPOKEN("щас", "сейчас"),
    SPOKEN("щаз", "сейчас"),       SPOKEN("тока", "только"),     SPOKEN("ваще", "вообще"),
    SPOKEN("пжлст", "пожалуйста"), SPOKEN("пжл", "пожалуйста"),  SPOKEN("плиз", "пожалуйста"),
    SPOKEN("чо", "что"),           SPOKEN("че", "что"),          SPOKEN("шо", "что"),
    SPOKEN("оч", "очень"),
};
#undef SPOKEN

/* Which lengths (bytes) and first letters (а..я: second UTF-8 byte + 0x10,
 * five bits) the spoken forms have. */
static uint32_t spoken_lens, spoken_firsts;
static pthread_once_t spoken_once = PTHREAD_ONCE_INIT;

static void spoken_init(void)
{
    for (size_t i = 0; i < sizeof(spoken) / sizeof(spoken[0]); i++) {
        spoken_lens |= 1u << spoken[i].len;
        spoken_firsts |= 1u << (((unsigned char)spoken[i].from[1] + 0x10) & 0x1F);
    }
}

/* The word a spoken form w[0..n) stands for, or NULL. */
static const char *spoken_form(const char *w, size_t n)
{
    /* a quick no for most words: the lengths and first letters in the table */
    pthread_once(&spoken_once, spoken_init);
    if (n < 2 || n > 31 || !(spoken_lens >> n & 1) ||
        !(spoken_firsts >> (((unsigned char)w[1] + 0x10) & 0x1F) & 1))
        return NULL;
    for (size_t i = 0; i < sizeof(spoken) / sizeof(spoken[0]); i++)
        if (spoken[i].len == n && memcmp(spoken[i].from, w, n) == 0)
            return spoken[i].to;
    return NULL;
}

/* The Cyrillic letter on the key of ASCII c in ЙЦУКЕН, or 0. */
static uint16_t layout_table[128];
static pthread_once_t layout_once = PTHREAD_ONCE_INIT;

static void layout_init(void)
{
    static const char en[] = "qwertyuiop[]asdfghjkl;'zxcvbnm,.`";
    static const uint16_t ru[] = {0x439, 0x446, 0x443, 0x43A, 0x435, 0x43D, 0x433, 0x448, 0x449,
                                  0x437, 0x445, 0x44A, 0x444, 0x44B, 0x432, 0x430, 0x43F, 0x440,
                                  0x43E, 0x43B, 0x434, 0x436, 0x44D, 0x44F, 0x447, 0x441, 0x43C,
                                  0x438, 0x442, 0x44C, 0x431, 0x44E, 0x435};
    for (size_t i = 0; en[i]; i++)
        layout_table[(unsigned char)en[i]] = ru[i];
}

static uint32_t layout_key(uint32_t c)
{
    pthread_once(&layout_once, layout_init);
    return c < 0x80 ? layout_table[c] : 0;
}

typedef struct tl_rule {
    const char *lat;
    const char *cyr;
} tl_rule;

/* Longest first; y, i and e are decided in translit() by their context. */
static const tl_rule tl_rules[] = {
    {"tsya", "тся"}, {"shch", "щ"}, {"sch", "щ"}, {"zh", "ж"},  {"kh", "х"}, {"ch", "ч"},
    {"sh", "ш"},     {"ts", "ц"},   {"tz", "ц"},  {"ya", "я"},  {"ja", "я"}, {"yu", "ю"},
    {"ju", "ю"},     {"yo", "е"},   {"jo", "е"},  {"ye", "е"},  {"je", "е"}, {"iy", "ий"},
    {"yy", "ый"},    {"yi", "ый"},  {"ij", "ий"}, {"ii", "ий"}, {"a", "а"},  {"b", "б"},
    {"c", "ц"},      {"d", "д"},    {"f", "ф"},   {"g", "г"},   {"h", "х"},  {"j", "й"},
    {"k", "к"},      {"l", "л"},    {"m", "м"},   {"n", "н"},   {"o", "о"},  {"p", "п"},
    {"q", "к"},      {"r", "р"},    {"s", "с"},   {"t", "т"},   {"u", "у"},  {"v", "в"},
    {"w", "в"},      {"x", "кс"},   {"z", "з"},   {"'", "ь"},   {"4", "ч"},
};

/* The second and third readings of the letters whose schemes disagree
 * most: j as ж ("jdu", "uje"), w as ш or щ ("wapka", "vewi"), x as х
 * ("xochu"). */
static const char *tl_alt(char c, int alt)
{
    if (c == 'j')
        return "ж";
    if (c == 'x')
        return "х";
    if (c == 'w')
        return alt == 1 ? "ш" : "щ";
    return NULL;
}

static bool lat_vowel(char c)
{
    return c && strchr("aeiouy", c) != NULL;
}

/* Appends the NUL-terminated s at out + o; returns its length. */
static size_t put(char *out, size_t o, const char *s)
{
    size_t l = strlen(s);
    memcpy(out + o, s, l);
    return l;
}

/* Transliterates the ASCII word w[0..n) into out (room for 4n+1 bytes);
 * alt 1 and 2 read j, w and x by tl_alt(). */
static size_t translit(const char *w, size_t n, char *out, int alt)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char c = w[i];
        bool start = i == 0, vow_before = i > 0 && lat_vowel(w[i - 1]);
        if (alt == 1 && c == 's' && i + 2 < n && w[i + 1] == 'c' && w[i + 2] == 'h' &&
            !(i + 3 < n && w[i + 3] == 'c')) { /* "schet": сч */
            o += put(out, o, "сч");
            i += 3;
            continue;
        }
        const char *a = alt ? tl_alt(c, alt) : NULL;
        if (a && !(c == 'w' && i + 1 < n && w[i + 1] == 'h')) {
            o += put(out, o, a);
            i++;
            continue;
        }
        if (c == 'e') { /* э at the start of a word, е elsewhere */
            o += put(out, o, start ? "э" : "е");
            i++;
            continue;
        }
        if ((c == 'y' || c == 'i') && i + 1 < n && w[i + 1] == 'a' && start) {
            o += put(out, o, "я");
            i += 2;
            continue;
        }
        if (c == 'y' && !(i + 1 < n && strchr("aueoi", w[i + 1]))) {
            o += put(out, o, vow_before ? "й" : "ы");
            i++;
            continue;
        }
        if (c == 'i') {
            o += put(out, o, "и");
            i++;
            continue;
        }
        size_t k = 0, best = 0;
        for (; k < sizeof(tl_rules) / sizeof(tl_rules[0]); k++) {
            if (tl_rules[k].lat[0] != c)
                continue; /* most rules: no need to measure them */
            size_t l = strlen(tl_rules[k].lat);
            if (l <= n - i && memcmp(w + i, tl_rules[k].lat, l) == 0) {
                best = k;
                break;
            }
        }
        if (k == sizeof(tl_rules) / sizeof(tl_rules[0])) {
            i++; /* not a letter we read */
            continue;
        }
        o += put(out, o, tl_rules[best].cyr);
        i += strlen(tl_rules[best].lat);
    }
    out[o] = '\0';
    return o;
}

/* ---- spelling: a weighted edit distance ----------------------------------------- */

/* Letters customers swap for one another: reduced vowels, voiced and
 * voiceless pairs, soft and hard signs. */
static bool similar(uint32_t a, uint32_t b)
{
    static const uint16_t pairs[][2] = {
        {0x430, 0x43E}, {0x435, 0x438}, {0x438, 0x44B}, {0x435, 0x44D}, {0x44F, 0x430},
        {0x44E, 0x443}, {0x437, 0x441}, {0x434, 0x442}, {0x431, 0x43F}, {0x432, 0x444},
        {0x433, 0x43A}, {0x436, 0x448}, {0x448, 0x449}, {0x44C, 0x44A}, {0x439, 0x438},
        {0x446, 0x441}, {0x447, 0x449}};
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        if ((pairs[i][0] == a && pairs[i][1] == b) || (pairs[i][0] == b && pairs[i][1] == a))
            return true;
    return false;
}

/* Row and column of a Cyrillic letter on the ЙЦУКЕН keyboard. */
static bool key_pos(uint32_t c, int *row, int *col)
{
    static const char *const rows[] = {"йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю"};
    char u[4];
    size_t l = ef_utf8_encode(c, u);
    for (int r = 0; r < 3; r++) {
        const char *p = rows[r];
        for (int k = 0; *p; k++, p += 2)
            if (l == 2 && p[0] == u[0] && p[1] == u[1]) {
                *row = r;
                *col = k;
                return true;
            }
    }
    return false;
}

static bool adjacent(uint32_t a, uint32_t b)
{
    int ra, ca, rb, cb;
    if (!key_pos(a, &ra, &ca) || !key_pos(b, &rb, &cb))
        return false;
    if (ra == rb)
        return ca - cb == 1 || cb - ca == 1;
    if (ra - rb != 1 && rb - ra != 1)
        return false;
    int d = ca - cb;
    return d >= -1 && d <= 1;
}

/* sub_cost of the 32 letters а..я, computed once. */
static float cyr_cost[32][32];
static pthread_once_t cyr_once = PTHREAD_ONCE_INIT;

static void cyr_cost_init(void)
{
    for (uint32_t a = 0; a < 32; a++)
        for (uint32_t b = 0; b < 32; b++) {
            uint32_t x = 0x430 + a, y = 0x430 + b;
            cyr_cost[a][b] = a == b ? 0 : similar(x, y) ? 0.5f : adjacent(x, y) ? 0.6f : 1.0f;
        }
}

static inline float sub_cost(uint32_t a, uint32_t b)
{
    if (a == b)
        return 0;
    if (is_cyr(a) && is_cyr(b))
        return cyr_cost[a - 0x430][b - 0x430];
    return 1.0f;
}

/* The cost of inserting or deleting c next to its neighbours: a doubled
 * letter or a soft/hard sign is a cheap slip. */
static float indel_cost(const uint32_t *s, size_t n, size_t i)
{
    uint32_t c = s[i];
    if (c == 0x44C || c == 0x44A)
        return 0.5f;
    if ((i > 0 && s[i - 1] == c) || (i + 1 < n && s[i + 1] == c))
        return 0.5f;
    return 1.0f;
}

/* The weighted Damerau-Levenshtein table of a (the message's word) against
 * b; returns D[na][nb], and in *best_prefix the cheapest D[j][nb] over
 * prefixes a[0..j) when prefix_j is not NULL (for stems). */
static float distance(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, float limit,
                      size_t *prefix_j, float *prefix_cost)
{
    float d[MAX_CP + 1][MAX_CP + 1], ia[MAX_CP], ib[MAX_CP];
    for (size_t i = 0; i < na; i++)
        ia[i] = indel_cost(a, na, i);
    for (size_t j = 0; j < nb; j++)
        ib[j] = indel_cost(b, nb, j);
    for (size_t i = 0; i <= na; i++)
        d[i][0] = i ? d[i - 1][0] + ia[i - 1] : 0;
    for (size_t j = 1; j <= nb; j++)
        d[0][j] = d[0][j - 1] + ib[j - 1];
    for (size_t i = 1; i <= na; i++) {
        float row_min = d[i][0];
        uint32_t ai = a[i - 1];
        float del_i = ia[i - 1];
        const float *row = is_cyr(ai) ? cyr_cost[ai - 0x430] : NULL;
        for (size_t j = 1; j <= nb; j++) {
            uint32_t bj = b[j - 1];
            float sc = row && is_cyr(bj) ? row[bj - 0x430] : sub_cost(ai, bj);
            float v = d[i - 1][j - 1] + sc;
            float del = d[i - 1][j] + del_i;
            float ins = d[i][j - 1] + ib[j - 1];
            v = del < v ? del : v;
            v = ins < v ? ins : v;
            if (i > 1 && j > 1 && ai == b[j - 2] && a[i - 2] == bj && d[i - 2][j - 2] + 0.7f < v)
                v = d[i - 2][j - 2] + 0.7f;
            d[i][j] = v;
            row_min = v < row_min ? v : row_min;
        }
        /* costs never decrease down the table: past the limit, give up
         * (the transposition looks two rows back, so allow one row) */
        if (row_min > limit + 0.7f) {
            if (prefix_j)
                *prefix_cost = 1e9f;
            return 1e9f;
        }
    }
    if (prefix_j) {
        *prefix_j = 0;
        *prefix_cost = 1e9f;
        for (size_t i = nb > 2 ? nb - 2 : 1; i <= na && i <= nb + 2; i++)
            if (d[i][nb] < *prefix_cost) {
                *prefix_cost = d[i][nb];
                *prefix_j = i;
            }
    }
    return d[na][nb];
}

/* The most a repair of a word of n letters may cost. */
static float bound(size_t n, bool have_dict)
{
    if (n < MIN_SPELL)
        return 0;
    if (!have_dict || n <= 5)
        return 1.0f;
    return n <= 7 ? 1.5f : 2.0f;
}

/* The pick so far: the cheapest entry; at equal cost a word before a stem,
 * then the first in vocabulary order (what one pass over the sorted
 * vocabulary keeping the first strictly cheaper entry would pick). */
typedef struct pick {
    float cost;
    const ef_nlp__ventry *e;
    size_t idx, j;
    bool whole; /* only entries that differ from the word and read all of it */
} pick;

/* Ranks vocabulary entry idx against a[0..na) with the filters and the
 * weighted distance, and keeps it in *p when it is a better pick. */
static void spell_try(const ef_nlp__vocab *v, size_t idx, const uint32_t *a, size_t na, uint32_t am,
                      float limit, pick *p)
{
    const ef_nlp__ventry *e = &v->e[idx];
    if ((e->flags & V_LATIN) || e->ncp < MIN_SPELL)
        return;
    /* customers rarely miss the first letter: the same, a similar one or its
     * keyboard neighbour */
    if (sub_cost(e->cp[0], a[0]) >= 1.0f)
        return;
    /* every letter of the word the entry lacks costs at least half an edit
     * (a stem may lack the word's ending: only for words) */
    if ((e->flags & V_WORD) && 0.5f * (float)__builtin_popcount(am & ~e->mask) > limit)
        return;
    if (0.5f * (float)__builtin_popcount(e->mask & ~am) > limit)
        return;
    float c;
    size_t j = na;
    if (e->flags & V_WORD) {
        if ((size_t)e->ncp + 2 < na || na + 2 < e->ncp)
            return;
        c = distance(a, na, e->cp, e->ncp, limit, NULL, NULL);
    } else {
        if (e->ncp > na + 2)
            return;
        distance(a, na, e->cp, e->ncp, limit, &j, &c);
    }
    bool word = (e->flags & V_WORD) != 0;
    /* a word that starts with a stem of the bot is only repaired into an
     * entry it is not already read as: a word, or a stem that takes all its
     * letters ("доставелн" -> the stem "доставлен", not "достав" + "елн") */
    if (p->whole && (c <= 0 || (!word && j != na)))
        return;
    bool better = c < p->cost;
    if (c == p->cost && p->e) {
        bool pword = (p->e->flags & V_WORD) != 0;
        better = (word && !pword) || (word == pword && idx < p->idx);
    }
    if (better) {
        p->cost = c;
        p->e = e;
        p->idx = idx;
        p->j = j;
    }
}

/* Finds the bot's nearest Cyrillic word or stem to a[0..na) within limit;
 * writes the repaired word (UTF-8) into out and returns true. The deletion
 * index (vindex.c) names the few entries that can be within the limit
 * (every edit costs at least 0.5), so only those are ranked. */
static bool spell_fix(const ef_nlp__vocab *v, ef_nlp_scratch *sc, const uint32_t *a, size_t na,
                      float limit, bool whole, char *out, size_t outlen)
{
    if (limit < 0.5f || na == 0)
        return false; /* nothing but the word itself is that close */
    pthread_once(&cyr_once, cyr_cost_init);
    uint32_t am = letter_mask(a, na);
    pick p = {.cost = limit + 0.001f, .whole = whole};
    if (++sc->vnow == 0) { /* the stamps wrapped: forget them */
        memset(sc->vstamp, 0, (v->n ? v->n : 1) * sizeof(uint32_t));
        sc->vnow = 1;
    }
    unsigned edits = (unsigned)((limit + 0.001f) / 0.5f);
    size_t n = ef_nlp__vocab_candidates(v, a, na, edits, sc->vstamp, sc->vnow, sc->vcand);
    if (n == SIZE_MAX) {
        for (size_t i = 0; i < v->n; i++)
            spell_try(v, i, a, na, am, limit, &p);
    } else {
        for (size_t k = 0; k < n; k++)
            spell_try(v, sc->vcand[k], a, na, am, limit, &p);
    }
    if (!p.e || p.cost <= 0)
        return false;
    size_t o = (size_t)snprintf(out, outlen, "%s", p.e->w);
    if (p.e->flags & V_STEM)
        for (size_t k = p.j; k < na && o + 4 < outlen; k++)
            o += ef_utf8_encode(a[k], out + o);
    out[o < outlen ? o : outlen - 1] = '\0';
    return true;
}

/* ---- one word -------------------------------------------------------------------- */

typedef struct word {
    uint32_t cp[MAX_CP];
    size_t n;
    bool latin, cyr, punct; /* scripts seen; layout punctuation inside */
    bool other_punct;       /* layout punctuation other than an apostrophe */
    size_t u8n;             /* bytes of u8 */
    char u8[MAX_CP * 4 + 1];
} word;

enum { PASS_FIRST, PASS_LAYOUT, PASS_TRANSLIT };

/* Whether the Cyrillic t[0..n) ends in a consonant that may take a soft
 * sign ("ест" -> "есть", "ден" -> "день"). */
static bool soft_candidate(const char *t, size_t n)
{
    if (n < 4 || (unsigned char)t[n - 2] < 0xD0 || (unsigned char)t[n - 2] > 0xD1)
        return false;
    uint32_t c =
        ((uint32_t)((unsigned char)t[n - 2] & 0x1F) << 6) | ((unsigned char)t[n - 1] & 0x3F);
    switch (c) {
    case 0x431:
    case 0x432:
    case 0x434:
    case 0x436:
    case 0x437:
    case 0x43B:
    case 0x43C:
    case 0x43D:
    case 0x43F:
    case 0x440:
    case 0x441:
    case 0x442:
    case 0x444:
    case 0x447:
    case 0x448:
    case 0x449:
        return true;
    default:
        return false;
    }
}

/* out = t[0..n) and the NUL-terminated suffix, cut to outlen. */
static void copy_out(char *out, size_t outlen, const char *t, size_t n, const char *suffix)
{
    size_t sl = strlen(suffix);
    if (n + sl + 1 > outlen)
        n = sl + 1 > outlen ? 0 : outlen - sl - 1;
    memcpy(out, t, n);
    memcpy(out + n, suffix, n + sl + 1 <= outlen ? sl + 1 : 0);
    out[n + sl < outlen ? n + sl : outlen - 1] = '\0';
}

/* A Latin word read as Russian in Latin letters: the common scheme, then
 * j/w/x read otherwise (tl_alt); each reading taken when the bot knows it
 * (or with a soft sign the customer left out at the end: "est", "den"),
 * then its nearest spelling, then a word the dictionary knows. A word that
 * is English or the bot's own Latin word (only in a pass over a message
 * read as transliterated, `guarded`) is taken only when the bot knows the
 * reading. */
static const char *translit_word(const ef_bot *bot, ef_nlp_scratch *sc, const word *w, bool guarded,
                                 char *out, size_t outlen)
{
    const ef_nlp__vocab *v = &bot->vocab;
    char tl[3][MAX_CP * 4 + 8];
    size_t tn[3];
    bool alts = memchr(w->u8, 'j', w->u8n) || memchr(w->u8, 'w', w->u8n) ||
                memchr(w->u8, 'x', w->u8n) || strstr(w->u8, "sch");
    int nv = alts ? 3 : 1;
    for (int k = 0; k < nv; k++)
        tn[k] = translit(w->u8, w->u8n, tl[k], k);
    if (tn[0] == 0)
        return NULL;
    /* a whole word of the bot first, as read or with the soft sign left out
     * at the end ("pomenyat": поменять, not the stem's поменят), then a
     * word read by a stem of the bot */
    for (int stems = 0; stems < 2; stems++) {
        size_t min_stem = stems ? MIN_STEM * 2 : SIZE_MAX;
        for (int k = 0; k < nv; k++) {
            if (ef_nlp__vocab_knows(v, tl[k], tn[k], false, min_stem) ||
                (stems && spoken_form(tl[k], tn[k]))) {
                copy_out(out, outlen, tl[k], tn[k], "");
                return "translit";
            }
        }
        for (int k = 0; k < nv; k++) {
            if (!soft_candidate(tl[k], tn[k]))
                continue;
            memcpy(tl[k] + tn[k], "ь", 3);
            bool known = ef_nlp__vocab_knows(v, tl[k], tn[k] + 2, false, min_stem);
            tl[k][tn[k]] = '\0';
            if (known) {
                copy_out(out, outlen, tl[k], tn[k], "ь");
                return "translit";
            }
        }
    }
    if (guarded)
        return NULL;
    for (int k = 0; k < nv; k++) {
        word t = {.n = 0};
        size_t i = 0;
        uint32_t cp;
        while (i < tn[k] && t.n < MAX_CP && ef_utf8_decode(tl[k], tn[k], &i, &cp) == 0)
            t.cp[t.n++] = cp;
        if (spell_fix(v, sc, t.cp, t.n, bound(t.n, false), false, out, outlen))
            return "translit";
    }
    for (int k = 0; k < nv; k++) {
        if (v->n_spellers > 0 && tn[k] >= 2 * MIN_SPELL && dict_knows(bot, sc, tl[k])) {
            copy_out(out, outlen, tl[k], tn[k], "");
            return "translit";
        }
    }
    return NULL;
}

/* A word glued to the next one ("непришел", "незнаю", "гдемой"): "не"
 * and a word the bot or a dictionary knows, or a whole word of the bot of
 * three letters or more and a word the bot knows.
 * Writes "left right" into out. Only for a Cyrillic word no one knows. */
static bool split_word(const ef_bot *bot, ef_nlp_scratch *sc, const word *w, char *out,
                       size_t outlen)
{
    const ef_nlp__vocab *v = &bot->vocab;
    const char *s = w->u8;
    if (w->u8n != 2 * w->n || w->n < 5)
        return false; /* two bytes a letter: а..я */
    for (size_t k = 2; k + 3 <= w->n; k++) {
        size_t b = 2 * k, rn = w->u8n - b;
        bool ne = k == 2 && memcmp(s, "не", 4) == 0;
        if (!ne && (k < 3 || !ef_nlp__vocab_knows(v, s, b, false, SIZE_MAX)))
            continue; /* "атправили" is no "ат правили" */
        char right[MAX_CP * 4 + 1];
        memcpy(right, s + b, rn);
        right[rn] = '\0';
        if (bot_knows(v, right, rn, false) || (ne && dict_knows(bot, sc, right))) {
            snprintf(out, outlen, "%.*s %s", (int)b, s, right);
            return true;
        }
    }
    return false;
}

/* Decides how to read word w; writes the repaired text into out and returns
 * the repair's kind, or NULL to keep the word. */
static const char *repair_word(const ef_bot *bot, ef_nlp_scratch *sc, const word *w, int mode,
                               char *out, size_t outlen)
{
    bool force_layout = mode == PASS_LAYOUT, force_translit = mode == PASS_TRANSLIT;
    const ef_nlp__vocab *v = &bot->vocab;
    bool dict = v->n_spellers > 0;
    if (w->cyr && !w->latin) {
        const char *sp = spoken_form(w->u8, w->u8n);
        if (sp) {
            snprintf(out, outlen, "%s", sp);
            return "spelling";
        }
        if (w->n < MIN_SPELL || ef_nlp__vocab_knows(v, w->u8, w->u8n, false, SIZE_MAX))
            return NULL; /* a word of the bot as it is */
        /* a word that starts with a stem of the bot ("доставелн": достав~)
         * may still be a slip of another of its words: repaired when no
         * dictionary knows it, and only into a whole other entry */
        bool by_stem = bot_knows(v, w->u8, w->u8n, false);
        if ((by_stem && (!dict || w->n < MIN_STEM_SPELL)) || dict_knows(bot, sc, w->u8))
            return NULL;
        if (!by_stem && split_word(bot, sc, w, out, outlen))
            return "spelling";
        return spell_fix(v, sc, w->cp, w->n, bound(w->n, dict), by_stem, out, outlen) ? "spelling"
                                                                                      : NULL;
    }
    if (!w->latin || w->cyr || bot->cyr_lang < 0)
        return NULL;
    bool known_latin = !w->punct && bot_knows(v, w->u8, w->u8n, true);
    if (known_latin && !force_translit)
        return NULL;
    /* layout: a word of the bot's wins over an English word ("utl" is
     * "где"); then English words stay; then any Russian word. In a message
     * whose other words were all typed in the wrong layout, every word is. */
    char lay[MAX_CP * 4 + 1];
    size_t o = 0;
    bool all = true;
    for (size_t i = 0; i < w->n && all; i++) {
        uint32_t k = layout_key(w->cp[i]);
        all = k != 0;
        if (all)
            o += ef_utf8_encode(k, lay + o);
    }
    lay[o] = '\0';
    const char *sp = all ? spoken_form(lay, o) : NULL;
    bool english = !w->punct && dict_knows(bot, sc, w->u8);
    if (all && (force_layout || (w->n >= MIN_LAYOUT && (bot_knows(v, lay, o, false) || sp ||
                                                        (!english && dict_knows(bot, sc, lay)))))) {
        snprintf(out, outlen, "%s", sp ? sp : lay);
        return "layout";
    }
    if ((w->punct && w->other_punct) || w->n < 2 || (english && !force_translit))
        return NULL;
    return translit_word(bot, sc, w, english || known_latin, out, outlen);
}

/* ---- the pass over a message ---------------------------------------------------- */

static bool layout_punct(uint32_t c)
{
    return c == ',' || c == '.' || c == ';' || c == '\'' || c == '[' || c == ']' || c == '`';
}

/* Whether a layout key of a Russian letter at byte i starts a Latin word
 * (read_word() takes it in). */
static bool layout_start(const ef_nlp_scratch *sc, size_t i)
{
    return layout_punct((unsigned char)sc->norm[i]) && i + 1 < sc->n &&
           is_lat((unsigned char)sc->norm[i + 1]);
}

/* Appends bytes with the original range [s, e) to the repaired text. */
static void emit(ef_nlp_scratch *sc, const char *b, size_t n, uint32_t s, uint32_t e)
{
    for (size_t k = 0; k < n; k++) {
        sc->rbuf[sc->rn] = b[k];
        sc->rsrc[sc->rn] = s;
        sc->rsrcend[sc->rn] = e;
        sc->rn++;
    }
}

static void rgrow(ef_nlp_scratch *sc, size_t need)
{
    if (need <= sc->rcap)
        return;
    size_t cap = sc->rcap ? sc->rcap : 256;
    while (cap < need)
        cap *= 2;
    sc->rbuf = ef_realloc(sc->rbuf, cap);
    sc->rsrc = ef_realloc(sc->rsrc, cap * sizeof(uint32_t));
    sc->rsrcend = ef_realloc(sc->rsrcend, cap * sizeof(uint32_t));
    sc->rcap = cap;
}

/* Whether the '4' at byte i of s is a letter of a Latin word: a Latin
 * letter next to it, no digit on either side. */
static bool tl_digit(const char *s, size_t n, size_t i)
{
    bool before = i > 0 && is_lat((unsigned char)s[i - 1]);
    bool after = i + 1 < n && is_lat((unsigned char)s[i + 1]);
    bool digits = (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') ||
                  (i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '9');
    return (before || after) && !digits;
}

/* Whether a word starts at byte i with the letter-digit '4' ("4to"). */
static bool digit_start(const ef_nlp_scratch *sc, size_t i)
{
    return sc->norm[i] == '4' &&
           (i == 0 || !((unsigned char)sc->norm[i - 1] >= 0x80 ||
                        ((sc->norm[i - 1] | 0x20) >= 'a' && (sc->norm[i - 1] | 0x20) <= 'z'))) &&
           tl_digit(sc->norm, sc->n, i);
}

/* Reads the word of sc->norm starting at byte i into w; returns its end. */
static size_t read_word(const ef_nlp_scratch *sc, size_t i, word *w)
{
    const char *s = sc->norm;
    size_t n = sc->n, end = i;
    w->n = 0;
    w->latin = w->cyr = w->punct = w->other_punct = false;
    while (end < n) {
        size_t at = end;
        uint32_t c;
        unsigned char b = (unsigned char)s[at];
        if (b < 0x80) { /* the two common cases inline: ASCII, а..я */
            c = b;
            at++;
        } else if ((b == 0xD0 || b == 0xD1) && at + 1 < n &&
                   ((unsigned char)s[at + 1] & 0xC0) == 0x80) {
            c = (uint32_t)(b & 0x1F) << 6 | ((unsigned char)s[at + 1] & 0x3F);
            at += 2;
        } else if (ef_utf8_decode(s, n, &at, &c) != 0) {
            break;
        }
        bool letter = is_cyr(c) || is_lat(c);
        /* a key of a Russian letter (,;.'[]`) between Latin letters or
         * before the first one: ";fkj,f" is "жалоба", "[jxe" is "хочу" */
        if (!letter && layout_punct(c) && (w->n == 0 || (w->latin && !w->cyr)) && at < n &&
            is_lat((uint8_t)s[at])) {
            w->punct = true;
            w->other_punct = w->other_punct || c != '\'' || w->n == 0;
        } else if (c == '4' && !w->cyr && tl_digit(s, n, at - 1)) {
            w->latin = true; /* "4to", "xo4u": 4 is ч */
        } else if (!letter) {
            break;
        }
        if (w->n < MAX_CP)
            w->cp[w->n] = c;
        w->n++;
        w->latin = w->latin || is_lat(c);
        w->cyr = w->cyr || is_cyr(c);
        end = at;
    }
    size_t len = end - i < sizeof(w->u8) - 1 ? end - i : 0;
    memcpy(w->u8, s + i, len);
    w->u8[len] = '\0';
    w->u8n = len;
    if (w->n > MAX_CP || len == 0)
        w->n = 0;
    return end;
}

static void note_repair(ef_nlp_scratch *sc, const char *kind, const word *w, const char *to,
                        uint32_t s, uint32_t e)
{
    if (sc->n_repairs >= EF_NLU_MAX_REPAIRS)
        return;
    ef_nlu_repair *r = &sc->repairs[sc->n_repairs++];
    r->kind = kind;
    r->start = s;
    r->end = e;
    size_t n = w->u8n < sizeof(r->from) - 1 ? w->u8n : sizeof(r->from) - 1;
    memcpy(r->from, w->u8, n); /* cut as snprintf would */
    r->from[n] = '\0';
    snprintf(r->to, sizeof(r->to), "%s", to);
}

/* Copies sc->norm[from..to), which holds no repaired word, to the repaired
 * text as repair_pass() would have: word bytes with their own ranges,
 * another character's bytes with the range of its first byte. */
static void copy_plain(ef_nlp_scratch *sc, size_t from, size_t to)
{
    size_t i = from;
    while (i < to) {
        unsigned char c = (unsigned char)sc->norm[i];
        bool start = c >= 0x80 || (c >= 'a' && c <= 'z') || layout_start(sc, i) ||
                     (c == '4' && digit_start(sc, i));
        if (!start) {
            emit(sc, sc->norm + i, 1, sc->src[i], sc->srcend[i]);
            i++;
            continue;
        }
        word w;
        size_t end = read_word(sc, i, &w);
        if (end == i) {
            size_t l = ef_nlp__u8len(c);
            emit(sc, sc->norm + i, l, sc->src[i], sc->srcend[i]);
            i += l;
            continue;
        }
        for (size_t k = i; k < end; k++)
            emit(sc, sc->norm + k, 1, sc->src[k], sc->srcend[k]);
        i = end;
    }
}

/* The memo slot of word w (the scratch's kword, made on first use), or
 * NULL when words are not remembered (EF_NLP_NO_WORD_MEMO) or w is too
 * long to be. */
static ef_nlp__kword *kept_slot(ef_nlp_scratch *sc, const word *w)
{
    if ((sc->options & EF_NLP_NO_WORD_MEMO) || w->u8n == 0 || w->u8n > EF_NLP__KWORD_BYTES)
        return NULL;
    if (!sc->kword)
        sc->kword = ef_calloc(EF_NLP__KWORDS, sizeof(ef_nlp__kword));
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ w->u8n;
    for (size_t i = 0; i < w->u8n; i += 8) {
        uint64_t x = 0;
        memcpy(&x, w->u8 + i, w->u8n - i < 8 ? w->u8n - i : 8);
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
    }
    return &sc->kword[(h ^ h >> 31) & (EF_NLP__KWORDS - 1)];
}

/* The repairs' kinds by their EF_NLP__KW_KIND bits (>> 2). */
static const char *const kinds[4] = {NULL, "layout", "translit", "spelling"};

/* Whether the first pass read w before (slot from kept_slot()): then
 * *kind and to (room for EF_NLP__KWORD_BYTES + 1) are its repair (*kind
 * NULL: kept as written) and *counts what the pass counted for it. */
static bool read_before(const ef_nlp__kword *slot, const word *w, const char **kind, char *to,
                        unsigned *counts)
{
    if (!slot || slot->len != w->u8n || memcmp(slot->w, w->u8, w->u8n) != 0)
        return false;
    *kind = kinds[(slot->flags & EF_NLP__KW_KIND) >> 2];
    *counts = slot->flags & (EF_NLP__KW_ENG | EF_NLP__KW_RULAT);
    if (*kind)
        memcpy(to, slot->to, (size_t)slot->to_len + 1);
    return true;
}

/* Remembers in slot (from kept_slot(), or NULL) what the first pass made
 * of w: its repair (kind, one of kinds[], and to) or, kept as written, its
 * counts. A reading too long for the slot leaves it as it was. */
static void remember(ef_nlp__kword *slot, const word *w, const char *kind, const char *to,
                     unsigned counts)
{
    size_t tl = kind ? strlen(to) : 0;
    unsigned k = 0; /* kinds[k]: 0 kept as written */
    while (kind && ++k < 4 && strcmp(kinds[k], kind) != 0)
        continue;
    if (!slot || tl > EF_NLP__KWORD_BYTES || k == 4)
        return;
    slot->len = (uint8_t)w->u8n;
    slot->flags = (uint8_t)(counts | k << 2);
    slot->to_len = (uint8_t)tl;
    memcpy(slot->w, w->u8, w->u8n);
    memcpy(slot->to, kind ? to : "", tl + 1);
}

/* What the first pass counts for a word it keeps: a Latin word a
 * dictionary knows (English), or else one of the bot's own Latin words
 * ("spasibo", "gde": Russian typed in Latin letters). */
static unsigned latin_counts(const ef_bot *bot, ef_nlp_scratch *sc, const word *w)
{
    if (w->n < 2 || !w->latin || w->cyr || w->punct)
        return 0;
    if (dict_knows(bot, sc, w->u8))
        return EF_NLP__KW_ENG;
    return bot_knows(&bot->vocab, w->u8, w->u8n, true) ? EF_NLP__KW_RULAT : 0;
}

/* One pass over sc->norm; counts Latin words and layout repairs. The
 * repaired text is written only from the first repair on (what precedes it
 * is copied then): a message without an unknown word costs the reading of
 * its words and nothing else. */
static void repair_pass(const ef_bot *bot, ef_nlp_scratch *sc, int mode, size_t *n_latin,
                        size_t *n_layout, size_t *n_translit, size_t *n_rulat, size_t *n_eng,
                        bool *cyr)
{
    sc->n_repairs = 0;
    sc->rn = 0;
    bool writing = false;
    /* An e-mail address or a URL is the customer's own text: never repaired
     * (a layout repair of "ivan.petrov@..." would make a greeting of it).
     * Each holds an '@', a '.' or a '/'. */
    bool addresses = memchr(sc->norm, '@', sc->n) || memchr(sc->norm, '.', sc->n) ||
                     memchr(sc->norm, '/', sc->n);
    size_t i = 0;
    while (i < sc->n) {
        unsigned char c = (unsigned char)sc->norm[i];
        bool start = c >= 0x80 || (c >= 'a' && c <= 'z') || layout_start(sc, i) ||
                     (c == '4' && digit_start(sc, i));
        if (!start) {
            if (writing)
                emit(sc, sc->norm + i, 1, sc->src[i], sc->srcend[i]);
            i++;
            continue;
        }
        size_t aend = addresses ? ef_nlp__address_end(sc->norm, sc->n, i) : 0;
        if (aend) {
            if (writing)
                for (size_t k = i; k < aend; k++)
                    emit(sc, sc->norm + k, 1, sc->src[k], sc->srcend[k]);
            i = aend;
            continue;
        }
        word w;
        size_t end = read_word(sc, i, &w);
        if (end == i) { /* another character: copy it whole */
            size_t l = ef_nlp__u8len(c);
            if (writing)
                emit(sc, sc->norm + i, l, sc->src[i], sc->srcend[i]);
            i += l;
            continue;
        }
        *n_latin += w.latin && !w.cyr;
        *cyr = *cyr || w.cyr;
        char to[MAX_CP * 4 + 8];
        ef_nlp__kword *slot = mode == PASS_FIRST && w.n ? kept_slot(sc, &w) : NULL;
        unsigned counts = 0;
        const char *kind = NULL;
        if (!read_before(slot, &w, &kind, to, &counts) && w.n) {
            kind = repair_word(bot, sc, &w, mode, to, sizeof(to));
            counts = !kind && mode == PASS_FIRST ? latin_counts(bot, sc, &w) : 0;
            remember(slot, &w, kind, to, counts);
        }
        uint32_t s = sc->src[i], e = sc->srcend[end - 1];
        if (kind && !writing) {
            writing = true;
            rgrow(sc, sc->n * 4 + 16);
            copy_plain(sc, 0, i);
        }
        if (kind) {
            *n_layout += kind[0] == 'l';
            *n_translit += kind[0] == 't';
            rgrow(sc, sc->rn + strlen(to) + (sc->n - end) * 4 + 16);
            emit(sc, to, strlen(to), s, e);
            note_repair(sc, kind, &w, to, s, e);
        } else {
            *n_eng += (counts & EF_NLP__KW_ENG) != 0;
            *n_rulat += (counts & EF_NLP__KW_RULAT) != 0;
            if (writing)
                for (size_t k = i; k < end; k++)
                    emit(sc, sc->norm + k, 1, sc->src[k], sc->srcend[k]);
        }
        i = end;
    }
}

size_t ef_nlp__repair(const ef_bot *bot, ef_nlp_scratch *sc)
{
    size_t n_latin = 0, n_layout = 0, n_tl = 0, n_rulat = 0, n_eng = 0;
    bool cyr = false;
    repair_pass(bot, sc, PASS_FIRST, &n_latin, &n_layout, &n_tl, &n_rulat, &n_eng, &cyr);
    size_t a = 0, b = 0, t = 0, r = 0, g = 0;
    size_t ru = n_tl + n_rulat;
    if (!cyr && n_layout > 0 && n_layout < n_latin && 3 * n_layout >= n_latin) {
        repair_pass(bot, sc, PASS_LAYOUT, &a, &b, &t, &r, &g, &cyr);
    } else if (!cyr && n_layout == 0 && n_tl < n_latin && ru > 0 && ru >= n_eng) {
        /* a message in Latin letters whose words are at least as often
         * Russian (read so, or the bot's own Latin words no dictionary
         * knows) as English: its
         * English-looking words ("est", "net", "opt") and the bot's own
         * Latin words ("gde") are read as Russian too when the bot knows
         * the reading */
        repair_pass(bot, sc, PASS_TRANSLIT, &a, &b, &t, &r, &g, &cyr);
    }
    return sc->n_repairs;
}
