/*
 * prefilter.c -- pattern rewriting (stems, ё/е) and the literal prefilter.
 *
 * Why a prefilter. A bot has dozens of intents with several patterns each,
 * and a message is short. Running every regex on every message makes the
 * cost grow with the number of patterns. Instead, when the bot is loaded,
 * each pattern is analysed for the literal text any match must contain
 * ("где мой заказ~" needs "заказ"; "(привет|здравствуй~)" needs "привет" or
 * "здравствуй"). All these literals go into one index keyed by their first 2
 * or 4 bytes. A message is scanned once, position by position, with one bit
 * test per key length (a 64 Kbit bitmap each, which stays in L1 cache); only
 * the patterns whose literal occurs at some position become candidates, and
 * only candidates run their JIT-compiled regex. The scan costs O(message
 * length) whatever the number of intents, and a typical message wakes up a
 * handful of patterns.
 *
 * We chose this over one combined alternation with (*MARK:name) because a
 * combined regex reports only the leftmost match, while scoring needs every
 * intent that matches (coverage, runners-up, priorities); it also keeps each
 * pattern's compile errors and explanations its own.
 *
 * The analysis is conservative: anything it does not follow (backreferences,
 * inline options, \Q..\E, verbs, escapes that produce characters) makes the
 * pattern "always run", and every literal is folded exactly as the matcher
 * folds the message: both use ef_utf8_fold (base/utf8.h; ASCII and Cyrillic
 * to lower case, ё -> е, the few code points PCRE2 also treats as case
 * variants of them, quotes, dashes, spaces, invisible characters). So
 * skipping a pattern never loses a match; the tests and the fuzzer check
 * that results with and without the prefilter are equal.
 */
#include "nlp/nlp_int.h"

#include "base/utf8.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 and the fold ------------------------------------------------ */

/* The character at s (n > 0 bytes left) and its length. A byte that does
 * not start valid UTF-8 stands for itself (pcre2_compile rejects the
 * pattern later with a precise offset). */
static uint32_t dec(const unsigned char *s, size_t n, size_t *len)
{
    size_t i = 0;
    uint32_t cp;
    if (ef_utf8_decode((const char *)s, n, &i, &cp) != 0) {
        *len = 1;
        return s[0];
    }
    *len = i;
    return cp;
}

/* The fold of base/utf8.h (the one messages go through) as pattern text
 * needs it: everything ef_utf8_fold does except plain case, which stays for
 * PCRE2_CASELESS or ef_nlp__pattern_lower (lowering letters here would turn
 * a range like [Ѐ-Я] into the invalid [ѐ-я]). Returns a code point,
 * EF_UTF8_SPACE or EF_UTF8_DROP. */
static uint32_t pattern_fold(uint32_t cp)
{
    uint32_t f = ef_utf8_fold(cp);
    return f == ef_utf8_lower(cp) ? cp : f;
}

/* ---- rewriting -------------------------------------------------------- */

typedef struct rw {
    char *out;
    uint32_t *map;
    size_t n, cap;
} rw;

static void rw_put(rw *w, const char *p, size_t n, uint32_t from)
{
    if (w->n + n + 1 > w->cap) {
        while (w->n + n + 1 > w->cap)
            w->cap = w->cap ? w->cap * 2 : 64;
        w->out = ef_realloc(w->out, w->cap);
        w->map = ef_realloc(w->map, w->cap * sizeof(uint32_t));
    }
    memcpy(w->out + w->n, p, n);
    for (size_t i = 0; i < n; i++)
        w->map[w->n + i] = from;
    w->n += n;
}

/* Copies one character of src at *i, folded like message text. Invisible
 * characters disappear, except inside a class (where dropping one could
 * make a range of its neighbours; as a member it can never match a folded
 * message anyway); whitespace becomes a space. An escaped character
 * (escaped: a backslash before it, not yet written) keeps its backslash
 * unless it folds to an ASCII letter or digit, where "\k" would mean
 * something else. */
static void rw_char(rw *w, const char *src, size_t n, size_t *i, bool in_class, bool escaped)
{
    size_t at = *i, len;
    uint32_t cp = dec((const unsigned char *)src + at, n - at, &len);
    *i += len;
    if (len == 1) {
        if (escaped)
            rw_put(w, "\\", 1, (uint32_t)at);
        rw_put(w, src + at, 1, (uint32_t)at);
        return;
    }
    uint32_t f = pattern_fold(cp);
    if (f == EF_UTF8_DROP) {
        if (!in_class)
            return;
        f = cp;
    }
    if (f == EF_UTF8_SPACE)
        f = ' ';
    bool alnum = (f >= 'a' && f <= 'z') || (f >= 'A' && f <= 'Z') || (f >= '0' && f <= '9');
    if (escaped && !alnum)
        rw_put(w, "\\", 1, (uint32_t)at);
    char b[4];
    rw_put(w, b, ef_utf8_encode(f, b), (uint32_t)at);
}

char *ef_nlp__pattern_rewrite(const char *src, size_t n, size_t *outlen, uint32_t **map)
{
    rw w = {0};
    bool in_class = false, quoted = false;
    size_t i = 0;
    while (i < n) {
        char c = src[i];
        if (quoted) {
            if (c == '\\' && i + 1 < n && src[i + 1] == 'E') {
                quoted = false;
                rw_put(&w, src + i, 2, (uint32_t)i);
                i += 2;
            } else {
                rw_char(&w, src, n, &i, in_class, false);
            }
            continue;
        }
        if (c == '\\') {
            i++;
            if (i >= n) {
                rw_put(&w, "\\", 1, (uint32_t)(i - 1));
                continue;
            }
            if (src[i] == 'Q' && !in_class)
                quoted = true;
            rw_char(&w, src, n, &i, in_class, true);
            continue;
        }
        if (in_class) {
            if (c == '[' && i + 1 < n && src[i + 1] == ':') {
                const char *e = NULL;
                for (size_t k = i + 2; k + 1 < n; k++) {
                    if (src[k] == ':' && src[k + 1] == ']') {
                        e = src + k + 2;
                        break;
                    }
                }
                if (e) {
                    rw_put(&w, src + i, (size_t)(e - (src + i)), (uint32_t)i);
                    i = (size_t)(e - src);
                    continue;
                }
            }
            if (c == ']')
                in_class = false;
            rw_char(&w, src, n, &i, true, false);
            continue;
        }
        if (c == '[') {
            in_class = true;
            rw_put(&w, src + i, 1, (uint32_t)i);
            i++;
            if (i < n && src[i] == '^') {
                rw_put(&w, src + i, 1, (uint32_t)i);
                i++;
            }
            if (i < n && src[i] == ']') { /* a leading ] is a member */
                rw_put(&w, src + i, 1, (uint32_t)i);
                i++;
            }
            continue;
        }
        if (c == '~') {
            rw_put(&w, EF_NLP__STEM_ENDING, sizeof EF_NLP__STEM_ENDING - 1, (uint32_t)i);
            i++;
            continue;
        }
        rw_char(&w, src, n, &i, false, false);
    }
    rw_put(&w, "", 0, (uint32_t)n);
    if (!w.out) {
        w.out = ef_malloc(1);
        w.map = ef_malloc(sizeof(uint32_t));
    }
    w.out[w.n] = '\0';
    w.map[w.n] = (uint32_t)n;
    *outlen = w.n;
    *map = w.map;
    return w.out;
}

/* ---- lowering: compiling without PCRE2_CASELESS ------------------------ */

/* The matcher lowercases messages (ASCII and basic Cyrillic, with every
 * code point PCRE2 treats as their case variant) before matching, so a
 * pattern compiled with PCRE2_CASELESS gives the same answers as the same
 * pattern lowercased and compiled without it -- and the second is 5 to 20
 * times faster in the JIT for Cyrillic text. ef_nlp__pattern_lower makes
 * that second form, exactly: literal letters are lowercased, character
 * classes get the lowercase twin of every uppercase member or range, and
 * anything whose case behaviour it does not model (letters of other
 * scripts, \x and other escapes that produce characters, inline options,
 * verbs, back references, [:upper:]) makes it give up, so that pattern
 * keeps PCRE2_CASELESS. */

/* No case variants at all (checked against PCRE2's caseless tables). */
static bool no_case(uint32_t cp)
{
    if (cp < 0x80)
        return !((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z'));
    return (cp >= 0xA0 && cp <= 0xBF && cp != 0xB5) || cp == 0xD7 || cp == 0xF7 ||
           (cp >= 0x2000 && cp <= 0x20FF) || (cp >= 0x2190 && cp <= 0x245F) ||
           (cp >= 0x2500 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0x1F000 && cp <= 0x1FAFF);
}

/* ASCII and basic Cyrillic letters: the matcher folds all their variants. */
static bool folded_letter(uint32_t cp)
{
    return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z') || (cp >= 0x0400 && cp <= 0x045F);
}

typedef struct lw {
    ef_buf b;
    const char *p, *end;
    bool bad;
} lw;

/* Appends to the output; running into the buffer's bound (it is sized for
 * the worst case, so this cannot happen) counts as "cannot lower". */
static void put(lw *w, const void *p, size_t n)
{
    if (ef_buf_append(&w->b, p, n) != 0)
        w->bad = true;
}

static void lw_cp(lw *w, uint32_t cp)
{
    char b[4];
    put(w, b, ef_utf8_encode(cp, b));
}

/* One member of a class, escaped when it is special there. */
static void lw_class_cp(lw *w, uint32_t cp)
{
    if (cp == '\\' || cp == ']' || cp == '[' || cp == '^' || cp == '-') {
        char e[2] = {'\\', (char)cp};
        put(w, e, 2);
        return;
    }
    lw_cp(w, cp);
}

static void lw_range(lw *w, uint32_t lo, uint32_t hi)
{
    lw_class_cp(w, lo);
    put(w, "-", 1);
    lw_class_cp(w, hi);
}

/* Adds the lowercase twins of the uppercase part of [lo, hi]. */
static void lw_twins(lw *w, uint32_t lo, uint32_t hi)
{
    static const uint32_t upper[3][2] = {{'A', 'Z'}, {0x0400, 0x040F}, {0x0410, 0x042F}};
    for (int k = 0; k < 3; k++) {
        uint32_t a = lo > upper[k][0] ? lo : upper[k][0];
        uint32_t b = hi < upper[k][1] ? hi : upper[k][1];
        if (a <= b)
            lw_range(w, ef_utf8_lower(a), ef_utf8_lower(b));
    }
}

static uint32_t lw_next_cp(lw *w)
{
    size_t l;
    uint32_t cp = dec((const unsigned char *)w->p, (size_t)(w->end - w->p), &l);
    w->p += l;
    return cp;
}

/* An escape inside a class: returns true with *cp for a literal character,
 * false after copying a class escape (\d, \p{..}, ...) verbatim. */
static bool lw_class_escape(lw *w, uint32_t *cp)
{
    const char *start = w->p;
    w->p++; /* backslash */
    if (w->p >= w->end) {
        w->bad = true;
        return false;
    }
    unsigned char c = (unsigned char)*w->p;
    if (c >= 0x80) {
        *cp = lw_next_cp(w);
        return true;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
        w->p++;
        *cp = c;
        return true;
    }
    w->p++;
    if (strchr("dDwWsShHvV", c)) {
        put(w, start, 2);
        return false;
    }
    if (c == 'p' || c == 'P') {
        if (w->p < w->end && *w->p == '{') {
            while (w->p < w->end && *w->p != '}')
                w->p++;
            if (w->p >= w->end) {
                w->bad = true;
                return false;
            }
            w->p++;
        } else if (w->p < w->end) {
            w->p++;
        }
        put(w, start, (size_t)(w->p - start));
        return false;
    }
    switch (c) { /* control characters: no case */
    case 'n':
        *cp = '\n';
        return true;
    case 't':
        *cp = '\t';
        return true;
    case 'r':
        *cp = '\r';
        return true;
    case 'f':
        *cp = '\f';
        return true;
    case 'e':
        *cp = 0x1B;
        return true;
    case 'a':
        *cp = 0x07;
        return true;
    case 'b':
        *cp = 0x08;
        return true;
    default:
        w->bad = true; /* \x \o \c \N digits \Q \E ... */
        return false;
    }
}

static void lw_class(lw *w)
{
    put(w, "[", 1);
    w->p++;
    if (w->p < w->end && *w->p == '^') {
        put(w, "^", 1);
        w->p++;
    }
    bool first = true;
    while (!w->bad) {
        if (w->p >= w->end) {
            w->bad = true;
            return;
        }
        if (*w->p == ']' && !first) {
            w->p++;
            put(w, "]", 1);
            return;
        }
        first = false;
        if (*w->p == '[' && w->p + 1 < w->end &&
            (w->p[1] == ':' || w->p[1] == '.' || w->p[1] == '=')) {
            const char *start = w->p;
            char term = w->p[1];
            w->p += 2;
            while (w->p + 1 < w->end && !(w->p[0] == term && w->p[1] == ']'))
                w->p++;
            if (w->p + 1 >= w->end || term != ':') {
                w->bad = true;
                return;
            }
            w->p += 2;
            size_t len = (size_t)(w->p - start);
            if ((len == 9 && memcmp(start, "[:upper:]", 9) == 0) ||
                (len == 9 && memcmp(start, "[:lower:]", 9) == 0) ||
                (len == 10 &&
                 (memcmp(start, "[:^upper:]", 10) == 0 || memcmp(start, "[:^lower:]", 10) == 0))) {
                w->bad = true;
                return;
            }
            put(w, start, len);
            continue;
        }
        uint32_t lo;
        if (*w->p == '\\') {
            if (!lw_class_escape(w, &lo))
                continue;
        } else {
            lo = lw_next_cp(w);
        }
        uint32_t hi = lo;
        if (w->p + 1 < w->end && *w->p == '-' && w->p[1] != ']') {
            w->p++;
            if (*w->p == '\\') {
                if (!lw_class_escape(w, &hi)) {
                    w->bad = true; /* [a-\d]: a literal '-', not modelled */
                    return;
                }
            } else if (*w->p == '[') {
                w->bad = true;
                return;
            } else {
                hi = lw_next_cp(w);
            }
        }
        if (hi < lo) {
            w->bad = true;
            return;
        }
        bool ascii = hi < 0x80, cyr = lo >= 0x0400 && hi <= 0x045F;
        bool inert = true;
        for (uint32_t c = lo; inert && c <= hi && c - lo < 0x20000; c++)
            inert = no_case(c);
        if (!ascii && !cyr && !inert) {
            w->bad = true; /* letters of other scripts: PCRE2 must fold them */
            return;
        }
        if (lo == hi)
            lw_class_cp(w, lo);
        else
            lw_range(w, lo, hi);
        lw_twins(w, lo, hi);
    }
}

char *ef_nlp__pattern_lower(const char *pat, size_t n, size_t *outlen)
{
    lw w;
    ef_buf_init(&w.b, 16 * n + 64);
    w.p = pat;
    w.end = pat + n;
    w.bad = false;
    while (!w.bad && w.p < w.end) {
        char c = *w.p;
        if (c == '\\') {
            const char *start = w.p;
            w.p++;
            if (w.p >= w.end) {
                w.bad = true;
                break;
            }
            unsigned char e = (unsigned char)*w.p;
            if (e >= 0x80) {
                uint32_t cp = lw_next_cp(&w);
                if (!folded_letter(cp) && !no_case(cp)) {
                    w.bad = true;
                    break;
                }
                put(&w, "\\", 1);
                lw_cp(&w, ef_utf8_lower(cp));
                continue;
            }
            w.p++;
            if (strchr("xocNgkQEK0123456789", (char)e)) {
                w.bad = true;
                break;
            }
            if ((e == 'p' || e == 'P') && w.p < w.end) {
                if (*w.p == '{') {
                    while (w.p < w.end && *w.p != '}')
                        w.p++;
                    if (w.p >= w.end) {
                        w.bad = true;
                        break;
                    }
                }
                w.p++;
            }
            put(&w, start, (size_t)(w.p - start));
            continue;
        }
        if (c == '[') {
            lw_class(&w);
            continue;
        }
        if (c == '(' && w.p + 1 < w.end && w.p[1] == '*') {
            w.bad = true;
            break;
        }
        if (c == '(' && w.p + 1 < w.end && w.p[1] == '?') {
            const char *start = w.p;
            char k = w.p + 2 < w.end ? w.p[2] : 0;
            if (k == ':' || k == '=' || k == '!' || k == '>' || k == '|') {
                w.p += 3;
            } else if (k == '<' && w.p + 3 < w.end && (w.p[3] == '=' || w.p[3] == '!')) {
                w.p += 4;
            } else if (k == '<' || k == '\'' || (k == 'P' && w.p + 3 < w.end && w.p[3] == '<')) {
                char close = k == '\'' ? '\'' : '>';
                w.p += k == 'P' ? 4 : 3;
                while (w.p < w.end && *w.p != close) /* group names keep their case */
                    w.p++;
                if (w.p >= w.end) {
                    w.bad = true;
                    break;
                }
                w.p++;
            } else {
                w.bad = true; /* inline options, comments, conditionals, ... */
                break;
            }
            put(&w, start, (size_t)(w.p - start));
            continue;
        }
        if ((unsigned char)c < 0x80) {
            char l = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            put(&w, &l, 1);
            w.p++;
            continue;
        }
        uint32_t cp = lw_next_cp(&w);
        if (!folded_letter(cp) && !no_case(cp)) {
            w.bad = true;
            break;
        }
        lw_cp(&w, ef_utf8_lower(cp));
    }
    if (w.bad) {
        ef_buf_cleanup(&w.b);
        return NULL;
    }
    return ef_buf_steal(&w.b, outlen);
}

/* ---- required literals ------------------------------------------------ */

#define LS_MAX_EXACT 16 /* strings an exact set may hold */
#define LS_MAX_REQ 256  /* strings a requirement may hold */
#define LS_MAX_LEN 64   /* bytes kept of one literal */
#define MAX_DEPTH 64

enum { I_NONE = 0, I_EXACT, I_REQ };

/* What a piece of a pattern tells about its matches:
 *  I_EXACT: it matches exactly one of the strings in set (maybe "");
 *  I_REQ:   every match contains at least one of the strings (none empty);
 *  I_NONE:  nothing useful is known.
 * set.at (EF_NLP__AT_*) says what holds where that occurrence starts (\b,
 * ^), whatever surrounds the piece; prefix, for I_REQ, that the occurrence
 * starts where the piece's match starts (always so for I_EXACT), which is
 * what lets a \b or ^ before the piece reach its literal. set2 (n 0: none),
 * for I_REQ: every match also contains one of these strings (another part
 * of the piece: "доставк~ еды" requires "доставк" and " еды"), which
 * survives an alternation as the union of each branch's set2 (or set). */
typedef struct info {
    int kind;
    ef_nlp__lits set;
    bool prefix;
    ef_nlp__lits set2;
} info;

#define MAX_SEGS 16     /* requirements kept of the top-level sequence's segments */
#define EXTRA_MIN_LEN 6 /* bytes: the shortest string of a second set from a group */

typedef struct parser {
    const unsigned char *p, *end;
    int depth;
    bool bail;
    /* The outermost sequence, cut at every piece that requires nothing
     * (".{0,30}", "\\p{L}*"): each segment's requirement (see
     * rank_segments()); top_alt when the pattern has a top-level
     * alternation, which makes them requirements of one branch only. */
    bool top_alt;
    size_t n_segs;
    ef_nlp__lits segs[MAX_SEGS];
} parser;

void ef_nlp__lits_cleanup(ef_nlp__lits *l)
{
    for (size_t i = 0; i < l->n; i++)
        ef_free(l->s[i]);
    ef_free(l->s);
    ef_free(l->len);
    l->s = NULL;
    l->len = NULL;
    l->n = 0;
    l->at = 0;
}

static void lits_add(ef_nlp__lits *l, const char *s, size_t n)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->len[i] == n && memcmp(l->s[i], s, n) == 0)
            return;
    l->s = ef_realloc(l->s, (l->n + 1) * sizeof(char *));
    l->len = ef_realloc(l->len, (l->n + 1) * sizeof(uint32_t));
    l->s[l->n] = ef_strndup(s, n);
    l->len[l->n] = (uint32_t)n;
    l->n++;
}

static info none(void)
{
    info r = {I_NONE, {0}};
    return r;
}

static info exact1(const char *s, size_t n)
{
    info r = {I_EXACT, {0}};
    lits_add(&r.set, s, n);
    return r;
}

static void drop(info *a)
{
    ef_nlp__lits_cleanup(&a->set);
    ef_nlp__lits_cleanup(&a->set2);
    a->kind = I_NONE;
}

/* Turns a into a requirement (consumes a). */
static info to_req(info a)
{
    if (a.kind != I_EXACT)
        return a;
    for (size_t i = 0; i < a.set.n; i++) {
        if (a.set.len[i] == 0) {
            drop(&a);
            return none();
        }
        if (a.set.len[i] > LS_MAX_LEN)
            a.set.len[i] = LS_MAX_LEN; /* a prefix of a required string is required */
    }
    a.kind = I_REQ;
    a.prefix = true; /* an exact string starts where the piece does; so does its prefix */
    return a;
}

/* An exact piece that matches only the empty string (\b, ^, a lookahead):
 * what follows it starts where it does. */
static bool all_empty(const info *a)
{
    if (a->kind != I_EXACT || a->set.n == 0)
        return false;
    for (size_t i = 0; i < a->set.n; i++)
        if (a->set.len[i] != 0)
            return false;
    return true;
}

static uint32_t min_len(const info *a)
{
    uint32_t m = UINT32_MAX;
    for (size_t i = 0; i < a->set.n; i++)
        if (a->set.len[i] < m)
            m = a->set.len[i];
    return m;
}

/* Whether requirement b is the more selective of the two (kept by concat()). */
static bool prefers_b(const info *a, const info *b)
{
    if (a->kind == I_NONE)
        return true;
    if (b->kind == I_NONE)
        return false;
    uint32_t ma = min_len(a), mb = min_len(b);
    return mb > ma || (mb == ma && b->set.n < a->set.n);
}

static info copy(const info *a)
{
    info r = {a->kind, {0}, a->prefix};
    for (size_t i = 0; i < a->set.n; i++)
        lits_add(&r.set, a->set.s[i], a->set.len[i]);
    r.set.at = a->set.at;
    return r;
}

static info concat(info a, info b)
{
    if (a.kind == I_EXACT && b.kind == I_EXACT && a.set.n * b.set.n <= LS_MAX_EXACT) {
        info r = {I_EXACT, {0}};
        bool too_long = false;
        for (size_t i = 0; i < a.set.n; i++) {
            for (size_t j = 0; j < b.set.n; j++) {
                /* exact strings stay below 2 * LS_MAX_LEN; longer ones are
                 * cut and the set becomes a requirement (prefixes of
                 * required strings are required) */
                char buf[2 * LS_MAX_LEN];
                size_t la = a.set.len[i], lb = b.set.len[j];
                if (la > sizeof(buf))
                    la = sizeof(buf);
                if (lb > sizeof(buf) - la)
                    lb = sizeof(buf) - la;
                if (la + lb == sizeof(buf))
                    too_long = true;
                memcpy(buf, a.set.s[i], la);
                memcpy(buf + la, b.set.s[j], lb);
                lits_add(&r.set, buf, la + lb);
            }
        }
        /* the strings start where a's do: a's position, and b's too when
         * a matched nothing */
        r.set.at = a.set.at | (all_empty(&a) ? b.set.at : 0);
        drop(&a);
        drop(&b);
        return too_long ? to_req(r) : r;
    }
    if (all_empty(&a) && b.kind != I_NONE) {
        /* what better() would give (a's "" is no requirement), and b's
         * occurrence, when it starts b, also stands where a's assertions
         * held */
        unsigned at = a.set.at;
        drop(&a);
        b = to_req(b);
        if (b.kind == I_REQ && b.prefix)
            b.set.at |= at;
        return b;
    }
    a = to_req(a);
    b = to_req(b);
    if (prefers_b(&a, &b)) {
        drop(&a);
        b.prefix = false; /* b's occurrence is not where the sequence starts */
        return b;
    }
    drop(&b);
    return a;
}

/* Adds the strings of l to *out; false when that makes too many. */
static bool lits_union(ef_nlp__lits *out, const ef_nlp__lits *l)
{
    for (size_t i = 0; i < l->n; i++)
        lits_add(out, l->s[i], l->len[i]);
    return out->n <= LS_MAX_REQ;
}

static bool same_set(const ef_nlp__lits *a, const ef_nlp__lits *b);

/* Whether every string of x is one of y. */
static bool lits_within(const ef_nlp__lits *x, const ef_nlp__lits *y)
{
    for (size_t i = 0; i < x->n; i++) {
        bool found = false;
        for (size_t k = 0; k < y->n && !found; k++)
            found = x->len[i] == y->len[k] && memcmp(x->s[i], y->s[k], x->len[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* The second set of alternatives a and b (requirements): the union of one
 * set of each (a.set or a.set2 with b.set or b.set2) other than their
 * first sets' union. Each branch's second set when it has one, else its
 * first; another choice only when it is surely more selective: its
 * shortest string longer, or a part of the first choice ("(?:отправ~|...)
 * (?:документ~|...)|(?:документ~|...) (?:курьер~|...)": the word list of
 * "документ", which both branches require). Empty when there is none. */
static ef_nlp__lits second_of_alt(const info *a, const info *b)
{
    const ef_nlp__lits *xa[2] = {&a->set, a->set2.n ? &a->set2 : NULL};
    const ef_nlp__lits *xb[2] = {&b->set, b->set2.n ? &b->set2 : NULL};
    static const int order[3][2] = {{1, 1}, {1, 0}, {0, 1}};
    ef_nlp__lits main = {0};
    info best = none();
    if (!lits_union(&main, &a->set) || !lits_union(&main, &b->set)) {
        ef_nlp__lits_cleanup(&main);
        return best.set;
    }
    for (int k = 0; k < 3; k++) {
        const ef_nlp__lits *x = xa[order[k][0]], *y = xb[order[k][1]];
        if (!x || !y)
            continue;
        info u = {I_REQ, {0}};
        bool keep = lits_union(&u.set, x) && lits_union(&u.set, y) && !same_set(&u.set, &main) &&
                    (best.kind != I_REQ || min_len(&u) > min_len(&best) ||
                     (u.set.n < best.set.n && lits_within(&u.set, &best.set)));
        if (!keep) {
            drop(&u);
            continue;
        }
        drop(&best);
        best = u;
    }
    ef_nlp__lits_cleanup(&main);
    return best.set;
}

/* Either a or b (consumes both): what both guarantee. */
static info alt(info a, info b)
{
    if (a.kind == I_EXACT && b.kind == I_EXACT && a.set.n + b.set.n <= LS_MAX_EXACT) {
        for (size_t i = 0; i < b.set.n; i++)
            lits_add(&a.set, b.set.s[i], b.set.len[i]);
        a.set.at &= b.set.at;
        drop(&b);
        return a;
    }
    a = to_req(a);
    b = to_req(b);
    if (a.kind == I_NONE || b.kind == I_NONE || a.set.n + b.set.n > LS_MAX_REQ) {
        drop(&a);
        drop(&b);
        return none();
    }
    /* a match is one branch's: it holds one of that branch's sets, first
     * or second, whichever is taken for each branch; the union of the
     * choice that is the most selective and not the first sets' union
     * becomes the second set ("(?:отправ~|...) (?:документ~|...)|(?:документ~|...)
     * (?:курьер~|...)": "документ" and its words, in both branches) */
    ef_nlp__lits s2 = second_of_alt(&a, &b);
    ef_nlp__lits_cleanup(&a.set2);
    a.set2 = s2;
    for (size_t i = 0; i < b.set.n; i++)
        lits_add(&a.set, b.set.s[i], b.set.len[i]);
    a.set.at &= b.set.at;
    a.prefix = a.prefix && b.prefix;
    drop(&b);
    return a;
}

/* Folds a literal code point as the matcher folds message text
 * (ef_utf8_fold); returns 0 when the folded character is outside the
 * alphabet literals are made of (ASCII and basic Cyrillic), so it cannot be
 * part of a literal. */
static uint32_t lit_fold(uint32_t cp)
{
    if (cp < 0x20 || cp == 0x7F)
        return 0;
    if (cp == ' ')
        return ' ';
    uint32_t f = ef_utf8_fold(cp); /* the markers fall through to 0 */
    if (f < 0x80 || (f >= 0x0430 && f <= 0x045F))
        return f;
    /* symbols and emoji: no case variants, untouched by the matcher's folds
     * (checked against PCRE2's caseless tables) */
    if ((f >= 0x20A0 && f <= 0x20CF) || f == 0x2116 || (f >= 0x2190 && f <= 0x21FF) ||
        (f >= 0x2300 && f <= 0x23FF) || (f >= 0x2500 && f <= 0x27BF) ||
        (f >= 0x2B00 && f <= 0x2BFF) || (f >= 0x1F000 && f <= 0x1FAFF))
        return f;
    return 0;
}

/* \d under PCRE2_UCP is any Unicode decimal digit. It is no literal, but a
 * requirement the prefilter can test: the pseudo-literal DIGIT is "found"
 * when the message may contain a digit (see ef_nlp__pf_probe). It is only
 * ever a requirement, never part of an exact string. */
#define DIGIT "\x01"

static info digit_req(void)
{
    info r = {I_REQ, {0}, true};
    lits_add(&r.set, DIGIT, 1);
    return r;
}

static info lit_char(uint32_t cp)
{
    uint32_t f = lit_fold(cp);
    if (!f)
        return none();
    char b[4];
    size_t n = ef_utf8_encode(f, b);
    return exact1(b, n);
}

static bool at(const parser *ps, char c)
{
    return ps->p < ps->end && *ps->p == (unsigned char)c;
}

static info parse_alt(parser *ps);

/* A character class; ps->p is just past '['. */
static info parse_class(parser *ps)
{
    bool simple = true;
    ef_nlp__lits members = {0};
    const unsigned char *start = ps->p;
    if (at(ps, '^')) {
        simple = false;
        ps->p++;
    }
    bool first = true;
    for (;;) {
        if (ps->p >= ps->end) {
            ps->bail = true;
            break;
        }
        unsigned char c = *ps->p;
        if (c == ']' && !first) {
            ps->p++;
            break;
        }
        first = false;
        if (c == '\\') {
            simple = false;
            ps->p++;
            if (ps->p >= ps->end || *ps->p == 'Q' || *ps->p == 'E') {
                ps->bail = true;
                break;
            }
            if (*ps->p == 'p' || *ps->p == 'P' || *ps->p == 'x' || *ps->p == 'o' || *ps->p == 'N') {
                ps->p++;
                if (at(ps, '{')) {
                    while (ps->p < ps->end && *ps->p != '}')
                        ps->p++;
                    if (ps->p >= ps->end) {
                        ps->bail = true;
                        break;
                    }
                    ps->p++;
                } else if (ps->p < ps->end) {
                    size_t l;
                    dec(ps->p, (size_t)(ps->end - ps->p), &l);
                    ps->p += l;
                }
                continue;
            }
            size_t l;
            dec(ps->p, (size_t)(ps->end - ps->p), &l);
            ps->p += l;
            continue;
        }
        if (c == '[' && ps->p + 1 < ps->end &&
            (ps->p[1] == ':' || ps->p[1] == '.' || ps->p[1] == '=')) {
            unsigned char term = ps->p[1];
            simple = false;
            ps->p += 2;
            while (ps->p + 1 < ps->end && !(ps->p[0] == term && ps->p[1] == ']'))
                ps->p++;
            if (ps->p + 1 >= ps->end) {
                ps->bail = true;
                break;
            }
            ps->p += 2;
            continue;
        }
        if (c == '-' && ps->p + 1 < ps->end && ps->p[1] != ']' && members.n > 0)
            simple = false; /* a range */
        size_t l;
        uint32_t cp = dec(ps->p, (size_t)(ps->end - ps->p), &l);
        ps->p += l;
        uint32_t f = lit_fold(cp);
        if (!f) {
            simple = false;
            continue;
        }
        char b[4];
        size_t bl = ef_utf8_encode(f, b);
        lits_add(&members, b, bl);
    }
    if (!ps->bail && ps->p - start == 4 && memcmp(start, "0-9]", 4) == 0) {
        ef_nlp__lits_cleanup(&members);
        return digit_req();
    }
    if (!simple || ps->bail || members.n == 0 || members.n > 8) {
        ef_nlp__lits_cleanup(&members);
        return none();
    }
    info r = {I_EXACT, members};
    return r;
}

/* A group; ps->p is just past '('. */
static info parse_group(parser *ps)
{
    bool zero_width = false;
    if (at(ps, '*')) {
        ps->bail = true; /* (*VERB) */
        return none();
    }
    if (at(ps, '?')) {
        ps->p++;
        if (ps->p >= ps->end) {
            ps->bail = true;
            return none();
        }
        unsigned char c = *ps->p;
        if (c == ':' || c == '|' || c == '>') {
            ps->p++;
        } else if (c == '=' || c == '!') {
            zero_width = true;
            ps->p++;
        } else if (c == '<' && ps->p + 1 < ps->end && (ps->p[1] == '=' || ps->p[1] == '!')) {
            zero_width = true;
            ps->p += 2;
        } else if (c == '<' || c == '\'' || (c == 'P' && ps->p + 1 < ps->end && ps->p[1] == '<')) {
            unsigned char close = c == '\'' ? '\'' : '>';
            ps->p += c == 'P' ? 2 : 1;
            while (ps->p < ps->end && *ps->p != close) {
                unsigned char k = *ps->p;
                if (!((k >= 'a' && k <= 'z') || (k >= 'A' && k <= 'Z') || (k >= '0' && k <= '9') ||
                      k == '_')) {
                    ps->bail = true;
                    return none();
                }
                ps->p++;
            }
            if (ps->p >= ps->end) {
                ps->bail = true;
                return none();
            }
            ps->p++;
        } else {
            ps->bail = true; /* options, comments, conditionals, recursion */
            return none();
        }
    }
    info in = parse_alt(ps);
    if (!at(ps, ')')) {
        ps->bail = true;
        drop(&in);
        return none();
    }
    ps->p++;
    if (zero_width) {
        drop(&in);
        return exact1("", 0);
    }
    return in;
}

static info parse_escape(parser *ps)
{
    ps->p++; /* the backslash */
    if (ps->p >= ps->end) {
        ps->bail = true;
        return none();
    }
    unsigned char c = *ps->p;
    if (c >= 0x80) {
        size_t l;
        uint32_t cp = dec(ps->p, (size_t)(ps->end - ps->p), &l);
        ps->p += l;
        return lit_char(cp);
    }
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum) {
        ps->p++;
        return lit_char(c);
    }
    ps->p++;
    switch (c) {
    case 'b': {
        info r = exact1("", 0);
        r.set.at = EF_NLP__AT_WORD;
        return r;
    }
    case 'A': {
        info r = exact1("", 0);
        r.set.at = EF_NLP__AT_START;
        return r;
    }
    case 'B':
    case 'z':
    case 'Z':
    case 'G':
        return exact1("", 0);
    case 'd':
        return digit_req();
    case 'D':
    case 'w':
    case 'W':
    case 's':
    case 'S':
    case 'h':
    case 'H':
    case 'v':
    case 'V':
    case 'R':
    case 'X':
    case 'C':
        return none();
    case 'N':
        if (at(ps, '{')) {
            ps->bail = true;
            return none();
        }
        return none();
    case 'p':
    case 'P':
        if (at(ps, '{')) {
            while (ps->p < ps->end && *ps->p != '}')
                ps->p++;
            if (ps->p >= ps->end) {
                ps->bail = true;
                return none();
            }
            ps->p++;
        } else if (ps->p < ps->end) {
            ps->p++;
        }
        return none();
    default:
        ps->bail = true; /* \x \o \c \e \n \t \g \k \K \Q \E, digits, ... */
        return none();
    }
}

/* Applies a quantifier at ps->p, if any, to a. */
static info quantify(parser *ps, info a)
{
    if (ps->p >= ps->end)
        return a;
    unsigned char c = *ps->p;
    unsigned long lo, hi;
    if (c == '*') {
        lo = 0;
        hi = 2;
        ps->p++;
    } else if (c == '+') {
        lo = 1;
        hi = 2;
        ps->p++;
    } else if (c == '?') {
        lo = 0;
        hi = 1;
        ps->p++;
    } else if (c == '{') {
        const unsigned char *q = ps->p + 1;
        lo = 0;
        bool digits = false;
        while (q < ps->end && *q >= '0' && *q <= '9') {
            lo = lo * 10 + (*q - '0');
            if (lo > 65535) {
                ps->bail = true;
                return a;
            }
            q++;
            digits = true;
        }
        if (!digits) {
            ps->bail = true; /* "{" as a literal, or {,n}: not followed */
            return a;
        }
        hi = lo;
        if (q < ps->end && *q == ',') {
            q++;
            hi = 2; /* "many", unless digits follow */
            if (q < ps->end && *q >= '0' && *q <= '9') {
                hi = 0;
                while (q < ps->end && *q >= '0' && *q <= '9') {
                    hi = hi * 10 + (*q - '0');
                    if (hi > 65535) {
                        ps->bail = true;
                        return a;
                    }
                    q++;
                }
            } else if (lo >= 2) {
                hi = lo + 1;
            }
        }
        if (q >= ps->end || *q != '}') {
            ps->bail = true;
            return a;
        }
        ps->p = q + 1;
    } else {
        return a;
    }
    if (at(ps, '?') || at(ps, '+'))
        ps->p++; /* lazy / possessive: same set of matches */
    if (lo == 0) {
        if (hi == 1 && a.kind == I_EXACT && a.set.n + 1 <= LS_MAX_EXACT) {
            lits_add(&a.set, "", 0);
            a.set.at = 0; /* skipped, its assertions were never tested */
            return a;
        }
        drop(&a);
        return none();
    }
    if (lo == 1 && hi == 1)
        return a;
    return to_req(a);
}

/* Keeps the requirement of a finished top-level segment (consumes seg). */
static void seg_keep(parser *ps, info seg)
{
    ef_nlp__lits_cleanup(&seg.set2);
    seg = to_req(seg);
    if (seg.kind != I_REQ || seg.set.n == 0 || seg.set.n > LS_MAX_REQ || min_len(&seg) < 1 ||
        ps->n_segs == MAX_SEGS) {
        drop(&seg);
        return;
    }
    ps->segs[ps->n_segs++] = seg.set;
}

static bool same_set(const ef_nlp__lits *a, const ef_nlp__lits *b);

/* A finished segment (consumed): kept among the top-level sequence's, or,
 * inside a group, in best[0..1], the two most selective so far. */
static void seg_done(parser *ps, bool top, info seg, info best[2])
{
    if (top) {
        seg_keep(ps, seg);
        return;
    }
    seg = to_req(seg);
    if (seg.kind != I_REQ || seg.set.n == 0 || seg.set.n > LS_MAX_REQ || min_len(&seg) < 1) {
        drop(&seg);
    } else if (prefers_b(&best[0], &seg)) {
        drop(&best[1]);
        best[1] = best[0];
        best[0] = seg;
    } else if (prefers_b(&best[1], &seg)) {
        drop(&best[1]);
        best[1] = seg;
    } else {
        drop(&seg);
    }
}

static info parse_seq(parser *ps)
{
    info cur = exact1("", 0);
    unsigned pending = 0; /* EF_NLP__AT_* of the assertions just before */
    bool top = ps->depth == 0;
    info seg = exact1("", 0);
    info best[2] = {none(), none()}; /* inside a group: its most selective segments */
    while (!ps->bail && ps->p < ps->end && *ps->p != '|' && *ps->p != ')') {
        unsigned char c = *ps->p;
        info atom;
        if (c == '(') {
            if (++ps->depth > MAX_DEPTH) {
                ps->bail = true;
                break;
            }
            ps->p++;
            atom = parse_group(ps);
            ps->depth--;
        } else if (c == '[') {
            ps->p++;
            atom = parse_class(ps);
        } else if (c == '\\') {
            atom = parse_escape(ps);
        } else if (c == '.') {
            ps->p++;
            atom = none();
        } else if (c == '^' || c == '$') {
            ps->p++;
            atom = exact1("", 0);
            /* patterns are compiled without PCRE2_MULTILINE: ^ is the
             * start of the text */
            atom.set.at = c == '^' ? EF_NLP__AT_START : 0;
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            ps->bail = true;
            break;
        } else {
            size_t l;
            uint32_t cp = dec(ps->p, (size_t)(ps->end - ps->p), &l);
            ps->p += l;
            atom = lit_char(cp);
        }
        if (ps->bail) {
            drop(&atom);
            break;
        }
        atom = quantify(ps, atom);
        /* assertions right before a piece hold where its literal starts,
         * whatever came before them (cur may already be I_NONE) */
        if (all_empty(&atom)) {
            pending |= atom.set.at;
        } else {
            if ((atom.kind == I_EXACT || (atom.kind == I_REQ && atom.prefix)) && atom.set.n > 0)
                atom.set.at |= pending;
            pending = 0;
        }
        if (atom.kind == I_NONE) {
            seg_done(ps, top, seg, best);
            seg = exact1("", 0);
        } else if (atom.kind == I_REQ) {
            /* what follows is not next to its strings ("заказ~ из
             * германи~": the stem's ending lies between): a segment of its
             * own starts after it, so that " из германи" is found and not
             * compared letter by letter with "заказ" */
            seg_done(ps, top, concat(seg, copy(&atom)), best);
            seg = exact1("", 0);
        } else {
            seg = concat(seg, copy(&atom));
        }
        cur = concat(cur, atom);
    }
    if (!ps->bail)
        seg_done(ps, top, seg, best);
    else
        drop(&seg);
    if (ps->bail)
        drop(&cur);
    /* a requirement of another segment than cur's holds too: the second
     * set ("доставк~ еды": " еды" beside "доставк") */
    for (int k = 0; k < 2; k++) {
        if (cur.kind == I_REQ && cur.set2.n == 0 && best[k].kind == I_REQ &&
            !same_set(&best[k].set, &cur.set)) {
            cur.set2 = best[k].set;
            cur.set2.at = 0;
            memset(&best[k].set, 0, sizeof(best[k].set));
        }
        drop(&best[k]);
    }
    return cur;
}

static info parse_alt(parser *ps)
{
    info cur = parse_seq(ps);
    while (!ps->bail && at(ps, '|')) {
        ps->p++;
        ps->top_alt = ps->top_alt || ps->depth == 0;
        cur = alt(cur, parse_seq(ps));
    }
    if (ps->bail)
        drop(&cur);
    return cur;
}

static bool same_set(const ef_nlp__lits *a, const ef_nlp__lits *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        bool found = false;
        for (size_t k = 0; k < b->n && !found; k++)
            found = a->len[i] == b->len[k] && memcmp(a->s[i], b->s[k], a->len[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* Whether requirement b is more selective than a (as prefers_b() judges). */
static bool beats(const info *b, const info *a)
{
    if (a->kind != I_REQ)
        return true;
    uint32_t ma = min_len(a), mb = min_len(b);
    return mb > ma || (mb == ma && b->set.n < a->set.n);
}

/* Ranks the segments' requirements (consumed) against *first, the
 * requirement found for the whole pattern: the most selective becomes
 * *first, the next different one *second. The whole pattern's requirement
 * alone stops at the first piece that requires nothing ("где .{0,30}
 * заказ~" gave "г"-like single letters after it); a segment's runs on. */
static void rank_segments(parser *ps, info *first, info *second)
{
    for (size_t i = 0; i < ps->n_segs; i++) {
        info seg = {I_REQ, ps->segs[i]};
        if (same_set(&seg.set, &first->set) ||
            (second->kind == I_REQ && same_set(&seg.set, &second->set))) {
            drop(&seg);
        } else if (beats(&seg, first)) {
            drop(second);
            *second = *first;
            *first = seg;
        } else if (beats(&seg, second)) {
            drop(second);
            *second = seg;
        } else {
            drop(&seg);
        }
    }
    ps->n_segs = 0;
}

bool ef_nlp__required_literals(const char *pat, size_t n, ef_nlp__lits *out, ef_nlp__lits *also)
{
    parser ps = {
        (const unsigned char *)pat, (const unsigned char *)pat + n, 0, false, false, 0, {{0}}};
    info r = parse_alt(&ps);
    bool parsed = !ps.bail && ps.p == ps.end;
    if (!parsed) {
        drop(&r);
        r = none();
    }
    r = to_req(r);
    if (r.kind != I_REQ || r.set.n == 0 || r.set.n > LS_MAX_REQ || min_len(&r) < 1) {
        drop(&r);
        r = none();
    }
    if (!parsed || ps.top_alt) { /* the segments are not the whole pattern's */
        for (size_t i = 0; i < ps.n_segs; i++)
            ef_nlp__lits_cleanup(&ps.segs[i]);
        ps.n_segs = 0;
    }
    /* the whole pattern's literals start its every match: kept as the
     * first set, they say where the regex may start */
    if (r.kind == I_REQ && r.prefix)
        r.set.at |= EF_NLP__AT_MATCH;
    info extra = {r.set2.n ? I_REQ : I_NONE, r.set2}; /* the whole pattern's set2 */
    memset(&r.set2, 0, sizeof(r.set2));
    info second = none();
    rank_segments(&ps, &r, &second);
    if (r.kind != I_REQ) {
        drop(&second);
        drop(&extra);
        return false;
    }
    /* no second set from the segments: the one found inside a group, when
     * its strings are long enough to be rare (short ones occur in most
     * messages and would cost the probe more than the regex runs they
     * save) */
    if (second.kind != I_REQ && extra.kind == I_REQ && min_len(&extra) >= EXTRA_MIN_LEN &&
        !same_set(&extra.set, &r.set)) {
        second = extra;
        memset(&extra, 0, sizeof(extra));
    }
    drop(&extra);
    second.set.at &= ~EF_NLP__AT_MATCH; /* a second set only has to occur */
    *out = r.set;
    if (also && second.kind == I_REQ)
        *also = second.set;
    else
        drop(&second);
    return true;
}

/* ---- top-level branches ------------------------------------------------ */

/* Constructs whose meaning could change when a branch is compiled alone:
 * inline options such as (?i) (they reach into later branches), verbs,
 * recursion, back references and subroutine calls. */
static bool splittable(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++) {
        if (p[i] == '\\') {
            char c = p[i + 1];
            if ((c >= '0' && c <= '9') || c == 'g' || c == 'k' || c == 'G' || c == 'K' || c == 'Q')
                return false;
            i++;
            continue;
        }
        if (p[i] == '(' && p[i + 1] == '*')
            return false;
        if (p[i] == '(' && p[i + 1] == '?') {
            char c = i + 2 < n ? p[i + 2] : 0;
            if (!(c == ':' || c == '<' || c == '=' || c == '!' || c == '>' || c == '|' ||
                  c == '\''))
                return false;
        }
    }
    return true;
}

/* p[i] is '\\' or '[': the index of the escape's or the character class's
 * last byte (the escaped byte, the class's closing ']', a POSIX class
 * "[:...:]" inside it skipped whole), n when the class does not close. */
static size_t escape_or_class_last(const char *p, size_t n, size_t i)
{
    if (p[i] == '\\')
        return i + 1;
    if (i + 1 < n && p[i + 1] == '^')
        i++;
    if (i + 1 < n && p[i + 1] == ']')
        i++;
    for (i++; i < n; i++) {
        if (p[i] == '\\') {
            i++;
        } else if (p[i] == '[' && i + 1 < n && p[i + 1] == ':') {
            for (i += 2; i + 1 < n && !(p[i] == ':' && p[i + 1] == ']'); i++)
                ;
            i++;
        } else if (p[i] == ']') {
            return i;
        }
    }
    return n;
}

size_t ef_nlp__top_branches(const char *p, size_t n, size_t *off, size_t *len, size_t max)
{
    if (!splittable(p, n))
        return 1;
    size_t count = 0, start = 0;
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' || c == '[') {
            i = escape_or_class_last(p, n, i);
        } else if (c == '(') {
            depth++;
        } else if (c == ')') {
            depth--;
        } else if (c == '|' && depth == 0) {
            if (count == max)
                return 0;
            off[count] = start;
            len[count] = i - start;
            count++;
            start = i + 1;
        }
    }
    if (count == 0)
        return 1;
    if (count == max)
        return 0;
    off[count] = start;
    len[count] = n - start;
    return count + 1;
}

/* ---- the core of a branch --------------------------------------------- */

/* Where the group or class that opens at p[i] ends (just past it), or 0
 * when it does not close. */
static size_t piece_close(const char *p, size_t n, size_t i)
{
    int depth = 0;
    for (; i < n; i++) {
        char c = p[i];
        if (c == '\\' || c == '[') {
            i = escape_or_class_last(p, n, i);
            if (c == '[' && depth == 0)
                return i < n ? i + 1 : 0;
        } else if (c == '(') {
            depth++;
        } else if (c == ')' && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

/* Where the atom at p[i] ends: a group, a class, an escape or one
 * character; 0 when it is not one this follows. */
static size_t atom_end(const char *p, size_t n, size_t i)
{
    if (p[i] == '(' || p[i] == '[')
        return piece_close(p, n, i);
    if (p[i] == ')' || p[i] == '|')
        return 0;
    if (p[i] != '\\')
        return i + ef_nlp__u8len((unsigned char)p[i]) <= n ? i + ef_nlp__u8len((unsigned char)p[i])
                                                           : 0;
    if (i + 1 >= n)
        return 0;
    char e = p[i + 1];
    if (e == 'p' || e == 'P') {
        if (i + 2 < n && p[i + 2] == '{') {
            const char *c = memchr(p + i + 2, '}', n - i - 2);
            return c ? (size_t)(c - p) + 1 : 0;
        }
        return i + 3 <= n ? i + 3 : 0;
    }
    if (strchr("xocN", e))
        return 0; /* escapes with arguments: not followed */
    size_t l = ef_nlp__u8len((unsigned char)e);
    return i + 1 + l <= n ? i + 1 + l : 0;
}

/* The quantifier at p[*i], if any: moves past it; *min0 when it allows
 * no repetition at all. false when a '{' is not a quantifier. */
static bool quantifier(const char *p, size_t n, size_t *i, bool *min0)
{
    *min0 = false;
    if (*i >= n)
        return true;
    char c = p[*i];
    if (c == '?' || c == '*' || c == '+') {
        *min0 = c != '+';
        (*i)++;
    } else if (c == '{') {
        size_t k = *i + 1;
        unsigned long lo = 0;
        bool digits = false;
        while (k < n && p[k] >= '0' && p[k] <= '9') {
            lo = lo * 10 + (unsigned long)(p[k++] - '0');
            digits = true;
        }
        if (k < n && p[k] == ',')
            for (k++; k < n && p[k] >= '0' && p[k] <= '9'; k++)
                ;
        if (!digits || k >= n || p[k] != '}')
            return false;
        *min0 = lo == 0;
        *i = k + 1;
    } else {
        return true;
    }
    if (*i < n && (p[*i] == '?' || p[*i] == '+'))
        (*i)++; /* lazy or possessive */
    return true;
}

#define CORE_MAX_PIECES 256

bool ef_nlp__pattern_core(const char *p, size_t n, size_t *off, size_t *len)
{
    if (!splittable(p, n))
        return false;
    size_t start[CORE_MAX_PIECES], end[CORE_MAX_PIECES];
    bool opt[CORE_MAX_PIECES];
    size_t np = 0;
    for (size_t i = 0; i < n;) {
        if (np == CORE_MAX_PIECES)
            return false;
        size_t e = atom_end(p, n, i);
        if (e == 0)
            return false;
        start[np] = i;
        i = e;
        if (!quantifier(p, n, &i, &opt[np]))
            return false;
        end[np++] = i;
    }
    size_t first = 0, last = np;
    while (first < np && opt[first])
        first++;
    while (last > first && opt[last - 1])
        last--;
    if (first == 0 || first == last)
        return false; /* nothing optional before it, or nothing left */
    *off = start[first];
    *len = end[last - 1] - start[first];
    return true;
}

/* ---- the index -------------------------------------------------------- */

struct ef_nlp__pfpend {
    char *s;
    uint32_t len;
    uint32_t bit;
    unsigned at;
};

/* pat_ids entries: the bit, and above it the EF_NLP__AT_* conditions an
 * occurrence of the literal must meet to count for it. */
#define PF_AT_SHIFT 30
#define PF_BIT_MASK ((1u << PF_AT_SHIFT) - 1)

void ef_nlp__pf_init(ef_nlp__prefilter *pf, size_t n_bits)
{
    memset(pf, 0, sizeof(*pf));
    if (n_bits > PF_BIT_MASK)
        EF_PANIC("nlp: %zu prefilter bits, more than the index can hold", n_bits);
    pf->n_bits = n_bits;
    pf->n_words = (n_bits + 63) / 64;
    pf->always = ef_calloc(pf->n_words ? pf->n_words : 1, sizeof(uint64_t));
    pf->on_digit = ef_calloc(pf->n_words ? pf->n_words : 1, sizeof(uint64_t));
    pf->from_first = ef_calloc(pf->n_words ? pf->n_words : 1, sizeof(uint64_t));
}

/* Whether the character starting s[0] is a word character for PCRE2 (\w
 * under PCRE2_UCP) -- asked of a literal's first character, which is folded:
 * ASCII letters, digits and '_', and the Cyrillic letters U+0400..U+045F.
 * false for anything else, which only keeps a literal's position unchecked. */
static bool word_char_at(const unsigned char *u, size_t n)
{
    if (n == 0)
        return false;
    if (u[0] < 0x80)
        return (u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z') ||
               (u[0] >= '0' && u[0] <= '9') || u[0] == '_';
    return n >= 2 && (u[0] == 0xD0 || u[0] == 0xD1) && (u[1] & 0xC0) == 0x80 &&
           !(u[0] == 0xD1 && u[1] > 0x9F);
}

void ef_nlp__pf_add(ef_nlp__prefilter *pf, const char *lit, size_t len, uint32_t bit)
{
    ef_nlp__pf_add_at(pf, lit, len, bit, 0);
}

void ef_nlp__pf_add_at(ef_nlp__prefilter *pf, const char *lit, size_t len, uint32_t bit,
                       unsigned at)
{
    if (len == 0)
        return;
    /* \b before the literal says "no word character before it" only when
     * the literal itself starts with one */
    if (!word_char_at((const unsigned char *)lit, len))
        at &= ~EF_NLP__AT_WORD;
    if (len == 1 && lit[0] == DIGIT[0]) {
        pf->on_digit[bit / 64] |= (uint64_t)1 << (bit % 64);
        return;
    }
    if (pf->n_pend == pf->cap_pend) {
        pf->cap_pend = pf->cap_pend ? pf->cap_pend * 2 : 64;
        pf->pend = ef_realloc(pf->pend, pf->cap_pend * sizeof(*pf->pend));
    }
    pf->pend[pf->n_pend].s = ef_strndup(lit, len);
    pf->pend[pf->n_pend].len = (uint32_t)len;
    pf->pend[pf->n_pend].bit = bit;
    pf->pend[pf->n_pend].at = at & (EF_NLP__AT_WORD | EF_NLP__AT_START | EF_NLP__AT_MATCH);
    pf->n_pend++;
}

void ef_nlp__pf_set_always(ef_nlp__prefilter *pf, uint32_t bit)
{
    pf->always[bit / 64] |= (uint64_t)1 << (bit % 64);
}

static int pend_cmp(const void *a, const void *b)
{
    const struct ef_nlp__pfpend *x = a, *y = b;
    uint32_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, m);
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->bit < y->bit ? -1 : x->bit > y->bit;
}

static inline uint64_t key_of(const char *s, uint32_t klen)
{
    const unsigned char *u = (const unsigned char *)s;
    uint64_t k = 0;
    for (uint32_t i = 0; i < klen; i++)
        k |= (uint64_t)u[i] << (8 * i);
    return k;
}

/* key_of(s, 8) in one load on little-endian machines. */
static inline uint64_t key8(const char *s)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t k;
    memcpy(&k, s, 8);
    return k;
#else
    return key_of(s, 8);
#endif
}

static inline uint32_t hash8(uint64_t k)
{
    return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 48);
}

static inline uint32_t hash4(uint32_t k)
{
    return (k * 0x9E3779B1u) >> 16;
}

static inline uint32_t hash2(uint32_t k)
{
    return (k * 0x9E3779B1u) >> 16;
}

/* pf->from_first: the bits all of whose literals carry EF_NLP__AT_MATCH,
 * and that no digit or "always" sets before the probe's first mark. */
static void build_from_first(ef_nlp__prefilter *pf)
{
    uint64_t *bad = ef_calloc(pf->n_words ? pf->n_words : 1, sizeof(uint64_t));
    for (size_t i = 0; i < pf->n_pend; i++) {
        uint32_t b = pf->pend[i].bit;
        uint64_t m = (uint64_t)1 << (b % 64);
        pf->from_first[b / 64] |= m;
        if (!(pf->pend[i].at & EF_NLP__AT_MATCH))
            bad[b / 64] |= m;
    }
    for (size_t w = 0; w < pf->n_words; w++)
        pf->from_first[w] &= ~(bad[w] | pf->on_digit[w] | pf->always[w]);
    ef_free(bad);
}

/* A literal of the index while it is built: its bytes (in pend) and its
 * patterns in pat_ids. */
typedef struct pf_unique {
    const char *s;
    uint32_t len, pats, npats;
} pf_unique;

/* Sorts the (literal, bit) pairs and makes one entry per literal, its
 * patterns in pf->pat_ids; returns the number of literals. */
static size_t unique_literals(ef_nlp__prefilter *pf, pf_unique *u)
{
    size_t n = 0, np = 0;
    for (size_t i = 0; i < pf->n_pend;) {
        size_t j = i;
        pf_unique *l = &u[n++];
        l->s = pf->pend[i].s;
        l->len = pf->pend[i].len;
        l->pats = (uint32_t)np;
        while (j < pf->n_pend && pf->pend[j].len == l->len &&
               memcmp(pf->pend[j].s, pf->pend[i].s, l->len) == 0) {
            unsigned where = pf->pend[j].at & (EF_NLP__AT_WORD | EF_NLP__AT_START);
            uint32_t e = pf->pend[j].bit | (uint32_t)where << PF_AT_SHIFT;
            if (j == i || pf->pend[j].bit != pf->pend[j - 1].bit)
                pf->pat_ids[np++] = e;
            else /* the same literal for the same bit twice: what both allow */
                pf->pat_ids[np - 1] &= e | PF_BIT_MASK;
            j++;
        }
        l->npats = (uint32_t)(np - l->pats);
        i = j;
    }
    return n;
}

/* The key of a literal of len bytes: 8, 4, 2 or 1 of its first bytes. */
static uint32_t key_len(uint32_t len)
{
    return len >= 8 ? 8 : len >= 4 ? 4 : len >= 2 ? 2 : 1;
}

/* The bucket (index into pf->start) of the literal with key k of klen
 * bytes, and its bit in the bloom filter of its key length. */
static size_t bucket_of(ef_nlp__prefilter *pf, uint64_t k, uint32_t klen)
{
    size_t base2 = 256, base4 = base2 + pf->mask2 + 1, base8 = base4 + pf->mask4 + 1;
    if (klen == 1)
        return (size_t)k;
    if (klen == 2) {
        pf->bloom2[k >> 6] |= (uint64_t)1 << (k & 63);
        return base2 + (hash2((uint32_t)k) & pf->mask2);
    }
    if (klen == 4) {
        uint32_t b = hash4((uint32_t)k);
        pf->bloom4[b >> 6] |= (uint64_t)1 << (b & 63);
        return base4 + (b & pf->mask4);
    }
    uint32_t b = hash8(k);
    pf->bloom8[b >> 6] |= (uint64_t)1 << (b & 63);
    return base8 + (b & pf->mask8);
}

/* The bucket table's sizes from the number of keys of each length. */
static void size_buckets(ef_nlp__prefilter *pf, const pf_unique *u, size_t n)
{
    size_t n2 = 0, n4 = 0, n8 = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t kl = key_len(u[i].len);
        n2 += kl == 2;
        n4 += kl == 4;
        n8 += kl == 8;
    }
    size_t s2 = 16, s4 = 16, s8 = 16;
    while (s2 < 2 * n2)
        s2 *= 2;
    while (s4 < 2 * n4)
        s4 *= 2;
    while (s8 < 2 * n8 && s8 < 65536)
        s8 *= 2;
    while (s4 > 65536)
        s4 /= 2;
    pf->mask2 = (uint32_t)(s2 - 1);
    pf->mask4 = (uint32_t)(s4 - 1);
    pf->mask8 = (uint32_t)(s8 - 1);
}

/* Lays the literals out bucket after bucket (a counting sort; within a
 * bucket in their sorted order), their bytes in the same order. */
static void place_literals(ef_nlp__prefilter *pf, const pf_unique *u, size_t n, size_t bytes)
{
    size_t nb = 256 + (size_t)pf->mask2 + 1 + pf->mask4 + 1 + pf->mask8 + 1;
    pf->start = ef_calloc(nb + 1, sizeof(uint32_t));
    size_t *bucket = ef_malloc((n ? n : 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        uint32_t kl = key_len(u[i].len);
        bucket[i] = bucket_of(pf, key_of(u[i].s, kl), kl);
        pf->start[bucket[i] + 1]++;
    }
    for (size_t b = 0; b < nb; b++)
        pf->start[b + 1] += pf->start[b];
    uint32_t *fill = ef_malloc(nb * sizeof(uint32_t));
    memcpy(fill, pf->start, nb * sizeof(uint32_t));
    pf->lits = ef_calloc(n ? n : 1, sizeof(*pf->lits));
    pf->lpats = ef_calloc(n ? n : 1, sizeof(*pf->lpats));
    pf->bytes = ef_malloc(bytes ? bytes : 1);
    pf->n_lits = n;
    for (size_t i = 0; i < n; i++) {
        uint32_t at = fill[bucket[i]]++;
        pf->lpats[at].pats = u[i].pats;
        pf->lpats[at].npats = u[i].npats;
        uint32_t need = UINT32_MAX;
        for (uint32_t k = 0; k < u[i].npats; k++)
            need &= pf->pat_ids[u[i].pats + k] >> PF_AT_SHIFT;
        pf->lpats[at].need = u[i].npats ? need : 0;
        pf->lits[at].len = u[i].len;
        pf->lits[at].key = key_of(u[i].s, key_len(u[i].len));
        bucket[i] = at; /* from here on: where literal i went */
    }
    size_t off = 0;
    for (size_t k = 0; k < n; k++) { /* the bytes in the literals' order */
        pf->lits[k].off = (uint32_t)off;
        off += pf->lits[k].len;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(pf->bytes + pf->lits[bucket[i]].off, u[i].s, u[i].len);
    pf->start1 = pf->start;
    pf->start2 = pf->start1 + 256;
    pf->start4 = pf->start2 + pf->mask2 + 1;
    pf->start8 = pf->start4 + pf->mask4 + 1;
    ef_free(fill);
    ef_free(bucket);
}

void ef_nlp__pf_build(ef_nlp__prefilter *pf)
{
    build_from_first(pf);
    qsort(pf->pend, pf->n_pend, sizeof(*pf->pend), pend_cmp);
    pf_unique *u = ef_malloc((pf->n_pend ? pf->n_pend : 1) * sizeof(*u));
    pf->pat_ids = ef_malloc((pf->n_pend ? pf->n_pend : 1) * sizeof(uint32_t));
    size_t n = unique_literals(pf, u), bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += u[i].len;
    size_buckets(pf, u, n);
    place_literals(pf, u, n, bytes);
    ef_free(u);
    for (size_t i = 0; i < pf->n_pend; i++)
        ef_free(pf->pend[i].s);
    ef_free(pf->pend);
    pf->pend = NULL;
    pf->n_pend = pf->cap_pend = 0;
}

/* The EF_NLP__AT_* conditions true at byte i of s (the start of a
 * character): the start of the text, and no word character right before it
 * (\b, for a literal that starts with one). Conservative: a character this
 * does not know (outside ASCII and Cyrillic) counts as a non-word one, which
 * only keeps a pattern a candidate. */
static inline unsigned at_here(const unsigned char *s, size_t i)
{
    if (i == 0)
        return EF_NLP__AT_START | EF_NLP__AT_WORD;
    unsigned char p = s[i - 1];
    if (p < 0x80)
        return word_char_at(&p, 1) ? 0 : EF_NLP__AT_WORD;
    /* a continuation byte (s is valid UTF-8): a word character when it
     * ends a letter of U+0400..U+045F */
    if (i >= 2 && (s[i - 2] == 0xD0 || (s[i - 2] == 0xD1 && p <= 0x9F)))
        return 0;
    return EF_NLP__AT_WORD;
}

/* Sets the bits of the patterns of literal l found at byte i of s (and
 * their first[], the first time). */
static inline void mark(const ef_nlp__prefilter *pf, uint32_t li, uint64_t *bits, uint32_t *first,
                        const unsigned char *s, size_t i)
{
    unsigned here = UINT_MAX;
    const ef_nlp__pfpats *l = &pf->lpats[li];
    if (l->need) { /* a \b or ^ all of them have before the literal */
        here = at_here(s, i);
        if (l->need & ~here)
            return;
    }
    for (uint32_t k = 0; k < l->npats; k++) {
        uint32_t e = pf->pat_ids[l->pats + k], b = e & PF_BIT_MASK, need = e >> PF_AT_SHIFT;
        if (need) {
            if (here == UINT_MAX)
                here = at_here(s, i);
            if (need & ~here)
                continue; /* this occurrence cannot be where the pattern has it */
        }
        uint64_t m = (uint64_t)1 << (b & 63);
        if (first && !(bits[b >> 6] & m))
            first[b] = (uint32_t)i;
        bits[b >> 6] |= m;
    }
}

/* Whether a[from..n) == b[from..n): the first `from` bytes are the
 * literal's key, equal already (from is 2 for literals under 4 bytes, 4
 * for those under 8, 8 for the others). Literals are short: inline loads
 * beat a call to memcmp, and the last bytes are one load that overlaps
 * what was compared already (never past a[n) or b[n)). */
static inline bool same(const char *a, const char *b, uint32_t from, uint32_t n)
{
    uint64_t x, y;
    if (n >= 8) {
        for (uint32_t i = from; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y)
                return false;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t x4, y4;
        memcpy(&x4, a + n - 4, 4);
        memcpy(&y4, b + n - 4, 4);
        return x4 == y4;
    }
    return n < 3 || a[2] == b[2];
}

/* The literals that start at byte i of s (a character's first byte).
 * full: i + 8 <= n, so every key can be read and needs no check of the
 * end (a constant in each caller: the compiler makes the loop of the
 * message's body without them and the one of its last bytes with them). */
static inline __attribute__((always_inline)) void probe_at(const ef_nlp__prefilter *pf,
                                                           const unsigned char *u, size_t n,
                                                           size_t i, bool full, uint64_t *bits,
                                                           uint32_t *first)
{
    const char *s = (const char *)u;
    unsigned c = u[i];
    if (c < 0x80)
        for (uint32_t k = pf->start1[c]; k < pf->start1[c + 1]; k++)
            mark(pf, k, bits, first, u, i);
    if (!full && i + 1 >= n)
        return;
    uint32_t k2 = (uint32_t)c | ((uint32_t)u[i + 1] << 8);
    if (pf->bloom2[k2 >> 6] & ((uint64_t)1 << (k2 & 63))) {
        uint32_t h = hash2(k2) & pf->mask2;
        for (uint32_t k = pf->start2[h]; k < pf->start2[h + 1]; k++) {
            const ef_nlp__pflit *l = &pf->lits[k];
            if (l->key == k2 && i + l->len <= n && same(s + i, pf->bytes + l->off, 2, l->len))
                mark(pf, k, bits, first, u, i);
        }
    }
    if (!full && i + 4 > n)
        return;
    uint64_t k8 = full ? key8(s + i) : key_of(s + i, (uint32_t)(n - i < 8 ? n - i : 8));
    uint32_t k4 = (uint32_t)k8;
    uint32_t b = hash4(k4);
    if (pf->bloom4[b >> 6] & ((uint64_t)1 << (b & 63))) {
        b &= pf->mask4;
        for (uint32_t k = pf->start4[b]; k < pf->start4[b + 1]; k++) {
            const ef_nlp__pflit *l = &pf->lits[k];
            if (l->key == k4 && i + l->len <= n && same(s + i, pf->bytes + l->off, 4, l->len))
                mark(pf, k, bits, first, u, i);
        }
    }
    if (!full && i + 8 > n)
        return;
    b = hash8(k8);
    if (pf->bloom8[b >> 6] & ((uint64_t)1 << (b & 63))) {
        b &= pf->mask8;
        for (uint32_t k = pf->start8[b]; k < pf->start8[b + 1]; k++) {
            const ef_nlp__pflit *l = &pf->lits[k];
            if (l->key == k8 && i + l->len <= n && same(s + i, pf->bytes + l->off, 8, l->len))
                mark(pf, k, bits, first, u, i);
        }
    }
}

void ef_nlp__pf_probe(const ef_nlp__prefilter *pf, const char *s, size_t n, bool maybe_digit,
                      uint64_t *bits, uint32_t *first)
{
    const unsigned char *u = (const unsigned char *)s;
    if (maybe_digit)
        for (size_t w = 0; w < pf->n_words; w++)
            bits[w] |= pf->on_digit[w];
    if (pf->n_lits == 0)
        return;
    /* literals start at a character: s is valid UTF-8 (normalized), so
     * the step is the length its lead byte gives */
    size_t i = 0;
    while (i + 8 <= n) {
        probe_at(pf, u, n, i, true, bits, first);
        i += ef_nlp__u8len(u[i]);
    }
    while (i < n) {
        probe_at(pf, u, n, i, false, bits, first);
        i += ef_nlp__u8len(u[i]);
    }
}

void ef_nlp__pf_cleanup(ef_nlp__prefilter *pf)
{
    for (size_t i = 0; i < pf->n_pend; i++)
        ef_free(pf->pend[i].s);
    ef_free(pf->pend);
    ef_free(pf->always);
    ef_free(pf->on_digit);
    ef_free(pf->from_first);
    ef_free(pf->start);
    ef_free(pf->lpats);
    ef_free(pf->lits);
    ef_free(pf->bytes);
    ef_free(pf->pat_ids);
    memset(pf, 0, sizeof(*pf));
}
