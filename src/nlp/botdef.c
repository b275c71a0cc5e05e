/*
 * botdef.c -- loading a bot definition (docs/bot-definition.md).
 *
 * The file is YAML, parsed with libyaml's document API (yaml_parser_load)
 * so that every node keeps its line and column: each problem is reported as
 * "path:line:column: reason" on the node at fault. The schema is strict:
 * unknown keys, wrong types and duplicate keys are errors, so a typo never
 * silently disables part of a bot.
 *
 * Loading order (independent of the order of keys in the file): `bot`
 * (languages are needed to check language-tagged lists), `intents`,
 * `entities`, the order_number pattern, then the literal prefilter over all
 * patterns, then the `fsm` section, compiled by fsm_def.c with the names of
 * every intent and entity type.
 */
#include "nlp/nlp_int.h"
#include "nlp/yaml_int.h"

#include "nlp/fsm.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define BOT_FILE_MAX (16 * 1024 * 1024)
#define MAX_NODE_VISITS 2000000
#define MAX_PATTERN_LEN 8192
#define MAX_NAME_LEN 64
#define DEFAULT_TIMEZONE "Europe/Moscow"
#define DEFAULT_MODEL_THRESHOLD 0.8
#define DEFAULT_THRESHOLD 0.5

typedef struct ld {
    ef_nlp__yaml y; /* the document, messages, visits */
    ef_bot *bot;
    size_t cap_pats, cap_examples;
    ef_nlp__lits *lits; /* per pattern, until the prefilter is built */
    ef_nlp__lits *also; /* per pattern: a second required set (n 0: none) */
    bool *has_lits;
    yaml_node_t *dict_node; /* bot.dictionary, or NULL */
} ld;

/* ---- names ------------------------------------------------------------------ */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME_LEN || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* 0 when name is one (name_ok), else the loader's error at k, saying what
 * it names ("intent", "entity", "out_of_scope topic"). */
static int name_check(ld *l, const yaml_node_t *k, const char *what, const char *name)
{
    if (name_ok(name))
        return 0;
    return ef_nlp__yaml_fail(&l->y, k,
                             "%s '%s': names are lowercase letters, digits and _, starting with a "
                             "letter, at most %d characters",
                             what, name, MAX_NAME_LEN);
}

/* ---- patterns ------------------------------------------------------------------ */

/* Column (1-based) of byte off of a scalar's value, when the scalar sits on
 * one line in plain or quoted style; else the scalar's own column. */
static size_t value_column(const yaml_node_t *n, const char *v, size_t off)
{
    size_t col = EF_NLP__YAML_COL(n);
    if (!n || n->start_mark.line != n->end_mark.line)
        return col;
    yaml_scalar_style_t st = n->data.scalar.style;
    if (st != YAML_PLAIN_SCALAR_STYLE && st != YAML_SINGLE_QUOTED_SCALAR_STYLE &&
        st != YAML_DOUBLE_QUOTED_SCALAR_STYLE)
        return col;
    if (st != YAML_PLAIN_SCALAR_STYLE)
        col++;
    for (size_t i = 0; i < off; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c & 0xC0) == 0x80)
            continue;
        col++;
        if (st == YAML_SINGLE_QUOTED_SCALAR_STYLE && c == '\'')
            col++;
        if (st == YAML_DOUBLE_QUOTED_SCALAR_STYLE && (c == '"' || c == '\\'))
            col++;
    }
    return col;
}

static pcre2_code *compile(const char *p, size_t n, int *ec, PCRE2_SIZE *eo)
{
    return pcre2_compile((PCRE2_SPTR)p, n, PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, ec, eo, NULL);
}

/* What actually runs: the lowered form without PCRE2_CASELESS when the
 * pattern allows it (same answers on normalized text, much faster JIT),
 * else the pattern itself with PCRE2_CASELESS. NULL when neither compiles. */
static pcre2_code *compile_fast(const char *p, size_t n)
{
    int ec;
    PCRE2_SIZE eo;
    size_t ll;
    char *lower = ef_nlp__pattern_lower(p, n, &ll);
    if (lower) {
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)lower, ll, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
        ef_free(lower);
        if (c)
            return c;
    }
    return compile(p, n, &ec, &eo);
}

/* Compiles the core of intent branch rw[0..rl) (ef_nlp__pattern_core),
 * if it has one. */
static void add_core(ef_nlp__pat *p, const char *rw, size_t rl)
{
    size_t co, cl;
    if (!ef_nlp__pattern_core(rw, rl, &co, &cl))
        return;
    p->core = compile_fast(rw + co, cl);
    p->core_jit = p->core && pcre2_jit_compile(p->core, PCRE2_JIT_COMPLETE) == 0;
}

/* Appends one compiled pattern (or branch, rw[0..rl)) to bot->pats and
 * takes ownership of code. */
static void push_pat(ld *l, pcre2_code *code, const char *rw, size_t rl, ef_nlp__pat_kind kind,
                     uint32_t owner, const char *lang, char *source, int line, uint32_t group)
{
    ef_bot *bot = l->bot;
    if (bot->n_pats == l->cap_pats) {
        l->cap_pats = l->cap_pats ? l->cap_pats * 2 : 64;
        bot->pats = ef_realloc(bot->pats, l->cap_pats * sizeof(*bot->pats));
        l->lits = ef_realloc(l->lits, l->cap_pats * sizeof(*l->lits));
        l->also = ef_realloc(l->also, l->cap_pats * sizeof(*l->also));
        l->has_lits = ef_realloc(l->has_lits, l->cap_pats * sizeof(*l->has_lits));
    }
    ef_nlp__pat *p = &bot->pats[bot->n_pats];
    memset(p, 0, sizeof(*p));
    p->code = code;
    p->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    p->kind = kind;
    p->owner = owner;
    p->lang = lang;
    p->source = source;
    p->line = line;
    p->group = group;
    uint32_t groups = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (groups > bot->max_groups)
        bot->max_groups = groups;
    if (kind == EF_NLP__PAT_ENTITY || kind == EF_NLP__PAT_ORDER) {
        int g = pcre2_substring_number_from_name(code, (PCRE2_SPTR) "value");
        p->value_group = g > 0 ? (uint32_t)g : 0;
    }
    memset(&l->lits[bot->n_pats], 0, sizeof(l->lits[0]));
    memset(&l->also[bot->n_pats], 0, sizeof(l->also[0]));
    l->has_lits[bot->n_pats] = ef_nlp__required_literals(
        rw, rl, &l->lits[bot->n_pats], kind == EF_NLP__PAT_INTENT ? &l->also[bot->n_pats] : NULL);
    p->always = !l->has_lits[bot->n_pats];
    if (kind == EF_NLP__PAT_INTENT)
        add_core(p, rw, rl);
    bot->n_pats++;
}

#define MAX_BRANCHES 64

/* Compiles one pattern and appends it to bot->pats. n (the YAML scalar)
 * may be NULL for built-in patterns. An intent pattern with a top-level
 * alternation becomes one entry per branch (see ef_nlp__top_branches). */
static int add_pattern(ld *l, const yaml_node_t *n, const char *src, size_t len,
                       ef_nlp__pat_kind kind, uint32_t owner, const char *lang, const char *what)
{
    ef_bot *bot = l->bot;
    if (len > MAX_PATTERN_LEN)
        return ef_nlp__yaml_fail(&l->y, n, "%s: pattern longer than %d bytes", what,
                                 MAX_PATTERN_LEN);
    size_t rl;
    uint32_t *map;
    char *rw = ef_nlp__pattern_rewrite(src, len, &rl, &map);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = compile(rw, rl, &ec, &eo);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        size_t off = map[eo <= rl ? eo : rl];
        ef_free(rw);
        ef_free(map);
        if (!n)
            return ef_nlp__yaml_fail_at(&l->y, 1, 1, "%s: bad pattern: %s at offset %zu", what,
                                        (char *)msg, off);
        return ef_nlp__yaml_fail_at(&l->y, EF_NLP__YAML_LINE(n), value_column(n, src, off),
                                    "%s: bad pattern: %s at offset %zu in '%s'", what, (char *)msg,
                                    off, src);
    }
    ef_free(map);
    if (kind == EF_NLP__PAT_INTENT) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
        int mrc = md ? pcre2_match(code, (PCRE2_SPTR) "", 0, 0, 0, md, NULL) : -1;
        pcre2_match_data_free(md);
        if (mrc >= 0) {
            pcre2_code_free(code);
            ef_free(rw);
            return ef_nlp__yaml_fail(
                &l->y, n,
                "%s: pattern '%s' matches an empty message, so it would match every "
                "message",
                what, src);
        }
    }
    char *source = ef_strndup(src, len);
    int line = n ? (int)EF_NLP__YAML_LINE(n) : 0;
    uint32_t group = (uint32_t)bot->n_pats;
    size_t off[MAX_BRANCHES], blen[MAX_BRANCHES];
    size_t nb =
        kind == EF_NLP__PAT_INTENT ? ef_nlp__top_branches(rw, rl, off, blen, MAX_BRANCHES) : 1;
    /* The caseless compile above validated the pattern and found its
     * errors; what runs is compile_fast's form, branch by branch. */
    pcre2_code *branch[MAX_BRANCHES];
    size_t ok = 0;
    if (nb >= 2) {
        for (; ok < nb; ok++) {
            branch[ok] = compile_fast(rw + off[ok], blen[ok]);
            if (!branch[ok])
                break;
        }
    }
    if (nb >= 2 && ok == nb) {
        pcre2_code_free(code);
        for (size_t i = 0; i < nb; i++)
            push_pat(l, branch[i], rw + off[i], blen[i], kind, owner, lang, i == 0 ? source : NULL,
                     line, group);
        for (size_t i = 1; i < nb; i++)
            bot->pats[group + i].source = source; /* shared, owned by the first */
    } else {
        for (size_t i = 0; i < ok; i++)
            pcre2_code_free(branch[i]);
        pcre2_code *fast = compile_fast(rw, rl);
        if (fast) {
            pcre2_code_free(code);
            code = fast;
        }
        push_pat(l, code, rw, rl, kind, owner, lang, source, line, group);
    }
    ef_free(rw);
    return 0;
}

/* Calls fn for each string of a list, or of a mapping language -> list.
 * lang passed to fn is borrowed from bot->langs. */
typedef int (*item_fn)(ld *l, const yaml_node_t *item, const char *lang, void *ud);

static int each_string(ld *l, const yaml_node_t *n, const char *what, item_fn fn, void *ud)
{
    if (ef_nlp__yaml_is_null(n))
        return 0;
    if (n->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            yaml_node_t *item = ef_nlp__yaml_node(&l->y, *it);
            if (!item || ef_nlp__yaml_want_string(&l->y, item, what) || fn(l, item, NULL, ud))
                return l->y.rc ? l->y.rc : EF_EINVAL;
            if (l->y.visits > MAX_NODE_VISITS)
                return ef_nlp__yaml_fail(&l->y, item, "too many nodes (aliases expanding?)");
        }
        return 0;
    }
    if (n->type != YAML_MAPPING_NODE)
        return ef_nlp__yaml_fail(
            &l->y, n, "%s: expected a list of strings or a mapping language -> list, got %s", what,
            ef_nlp__yaml_kind(n));
    if (ef_nlp__yaml_check_keys(&l->y, n, NULL, what))
        return l->y.rc;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key), *v = ef_nlp__yaml_node(&l->y, p->value);
        const char *lang = NULL;
        for (size_t i = 0; i < l->bot->n_langs; i++)
            if (strcmp(l->bot->langs[i], ef_nlp__yaml_sval(k)) == 0)
                lang = l->bot->langs[i];
        if (!lang)
            return ef_nlp__yaml_fail(&l->y, k, "%s: language '%s' is not listed in bot.languages",
                                     what, ef_nlp__yaml_sval(k));
        if (!v || v->type != YAML_SEQUENCE_NODE) {
            if (v && ef_nlp__yaml_is_null(v))
                continue;
            return ef_nlp__yaml_fail(&l->y, v ? v : k, "%s.%s: expected a list of strings, got %s",
                                     what, lang, v ? ef_nlp__yaml_kind(v) : "nothing");
        }
        for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
             it++) {
            yaml_node_t *item = ef_nlp__yaml_node(&l->y, *it);
            if (!item || ef_nlp__yaml_want_string(&l->y, item, what) || fn(l, item, lang, ud))
                return l->y.rc ? l->y.rc : EF_EINVAL;
            if (l->y.visits > MAX_NODE_VISITS)
                return ef_nlp__yaml_fail(&l->y, item, "too many nodes (aliases expanding?)");
        }
    }
    return 0;
}

/* ---- the bot section ----------------------------------------------------------- */

static int parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0')
        return EF_EINVAL;
    *out = v;
    return 0;
}

/* bot.<key>: a plain number in [0, 1] into *out, when the key is there. */
static int read_fraction(ld *l, const yaml_node_t *n, const char *key, double *out)
{
    yaml_node_t *v = ef_nlp__yaml_get(&l->y, n, key, NULL);
    if (!v)
        return 0;
    double t;
    if (v->type != YAML_SCALAR_NODE || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
        parse_number(ef_nlp__yaml_sval(v), &t) || !(t >= 0 && t <= 1))
        return ef_nlp__yaml_fail(&l->y, v, "bot.%s: expected a number between 0 and 1, got %s", key,
                                 v->type == YAML_SCALAR_NODE ? ef_nlp__yaml_sval(v)
                                                             : ef_nlp__yaml_kind(v));
    *out = t;
    return 0;
}

static int load_bot_section(ld *l, const yaml_node_t *n, yaml_node_t **order_node)
{
    static const char *const keys[] = {
        "name",       "languages",       "timezone", "fallback_threshold", "order_number_pattern",
        "dictionary", "model_threshold", NULL};
    ef_bot *bot = l->bot;
    if (n->type != YAML_MAPPING_NODE)
        return ef_nlp__yaml_fail(&l->y, n, "bot: expected a mapping, got %s", ef_nlp__yaml_kind(n));
    if (ef_nlp__yaml_check_keys(&l->y, n, keys, "bot"))
        return l->y.rc;
    yaml_node_t *v = ef_nlp__yaml_get(&l->y, n, "name", NULL);
    if (!v)
        return ef_nlp__yaml_fail(&l->y, n, "bot: missing key 'name'");
    if (ef_nlp__yaml_want_string(&l->y, v, "bot.name"))
        return l->y.rc;
    bot->name = ef_strdup(ef_nlp__yaml_sval(v));

    v = ef_nlp__yaml_get(&l->y, n, "languages", NULL);
    if (v) {
        if (v->type != YAML_SEQUENCE_NODE ||
            v->data.sequence.items.top == v->data.sequence.items.start)
            return ef_nlp__yaml_fail(
                &l->y, v, "bot.languages: expected a non-empty list of language codes, got %s",
                ef_nlp__yaml_kind(v));
        size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        bot->langs = ef_calloc(cnt, sizeof(char *));
        for (size_t i = 0; i < cnt; i++) {
            yaml_node_t *it = ef_nlp__yaml_node(&l->y, v->data.sequence.items.start[i]);
            if (!it || ef_nlp__yaml_want_string(&l->y, it, "bot.languages"))
                return l->y.rc ? l->y.rc : EF_EINVAL;
            const char *c = ef_nlp__yaml_sval(it);
            size_t cl = strlen(c);
            bool ok = cl >= 2 && cl <= 3;
            for (size_t k = 0; k < cl; k++)
                ok = ok && c[k] >= 'a' && c[k] <= 'z';
            if (!ok)
                return ef_nlp__yaml_fail(
                    &l->y, it, "bot.languages: '%s' is not a language code such as ru or en", c);
            for (size_t k = 0; k < bot->n_langs; k++)
                if (strcmp(bot->langs[k], c) == 0)
                    return ef_nlp__yaml_fail(&l->y, it, "bot.languages: '%s' is listed twice", c);
            bot->langs[bot->n_langs++] = ef_strdup(c);
        }
    } else {
        bot->langs = ef_calloc(1, sizeof(char *));
        bot->langs[0] = ef_strdup("ru");
        bot->n_langs = 1;
    }
    bot->cyr_lang = -1;
    for (size_t i = 0; i < bot->n_langs && bot->cyr_lang < 0; i++)
        if (ef_nlp__lang_cyrillic(bot->langs[i]))
            bot->cyr_lang = (int)i;

    v = ef_nlp__yaml_get(&l->y, n, "timezone", NULL);
    if (v && ef_nlp__yaml_want_string(&l->y, v, "bot.timezone"))
        return l->y.rc;
    bot->tz_name = ef_strdup(v ? ef_nlp__yaml_sval(v) : DEFAULT_TIMEZONE);
    char why[256];
    if (ef_nlp__tz_load(&bot->tz, bot->tz_name, why, sizeof(why)) != 0) {
        if (v)
            return ef_nlp__yaml_fail(&l->y, v, "bot.timezone: unknown timezone '%s' (%s)",
                                     bot->tz_name, why);
        return ef_nlp__yaml_fail(&l->y, n, "bot: the default timezone %s cannot be loaded (%s)",
                                 bot->tz_name, why);
    }

    bot->threshold = DEFAULT_THRESHOLD;
    bot->model_threshold = DEFAULT_MODEL_THRESHOLD;
    if (read_fraction(l, n, "fallback_threshold", &bot->threshold) ||
        read_fraction(l, n, "model_threshold", &bot->model_threshold))
        return l->y.rc;
    l->dict_node = ef_nlp__yaml_get(&l->y, n, "dictionary", NULL);
    v = ef_nlp__yaml_get(&l->y, n, "order_number_pattern", NULL);
    if (v && ef_nlp__yaml_want_string(&l->y, v, "bot.order_number_pattern"))
        return l->y.rc;
    *order_node = v;
    return 0;
}

/* ---- intents ---------------------------------------------------------------------- */

typedef struct intent_ctx {
    uint32_t index;
    const char *what;
    bool negative;
    uint32_t topic; /* out_of_scope's examples: 0 untopiced, else 1 + the topic */
} intent_ctx;

static int on_intent_pattern(ld *l, const yaml_node_t *item, const char *lang, void *ud)
{
    const intent_ctx *ic = ud;
    return add_pattern(l, item, ef_nlp__yaml_sval(item), item->data.scalar.length,
                       EF_NLP__PAT_INTENT, ic->index, lang, ic->what);
}

static int on_example(ld *l, const yaml_node_t *item, const char *lang, void *ud)
{
    const intent_ctx *ic = ud;
    ef_bot *bot = l->bot;
    if (bot->n_examples == l->cap_examples) {
        l->cap_examples = l->cap_examples ? l->cap_examples * 2 : 256;
        bot->examples = ef_realloc(bot->examples, l->cap_examples * sizeof(*bot->examples));
    }
    ef_nlp__example *e = &bot->examples[bot->n_examples++];
    e->intent = ic->index;
    e->topic = ic->topic;
    e->text = ef_strdup(ef_nlp__yaml_sval(item));
    e->lang = lang;
    e->negative = ic->negative;
    e->line = (int)EF_NLP__YAML_LINE(item);
    e->column = (int)EF_NLP__YAML_COL(item);
    return 0;
}

/* An intent's negative_patterns: compiled like its patterns, after them,
 * and marked negative (a match takes the intent out of the candidates). */
static int load_negative_patterns(ld *l, const yaml_node_t *v, const intent_ctx *ic)
{
    ef_bot *bot = l->bot;
    yaml_node_t *f = ef_nlp__yaml_get(&l->y, v, "negative_patterns", NULL);
    size_t first = bot->n_pats;
    if (f && each_string(l, f, ic->what, on_intent_pattern, (void *)ic))
        return l->y.rc;
    for (size_t i = first; i < bot->n_pats; i++)
        bot->pats[i].negative = true;
    return 0;
}

static int load_intents(ld *l, const yaml_node_t *n)
{
    static const char *const keys[] = {
        "description", "priority",          "patterns", "negative_patterns",
        "examples",    "negative_examples", NULL};
    ef_bot *bot = l->bot;
    if (n->type != YAML_MAPPING_NODE)
        return ef_nlp__yaml_fail(&l->y, n, "intents: expected a mapping of intent names, got %s",
                                 ef_nlp__yaml_kind(n));
    if (ef_nlp__yaml_check_keys(&l->y, n, NULL, "intents"))
        return l->y.rc;
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (cnt == 0)
        return ef_nlp__yaml_fail(&l->y, n, "intents: the bot defines no intent");
    bot->intents = ef_calloc(cnt, sizeof(ef_nlp__intent));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key), *v = ef_nlp__yaml_node(&l->y, p->value);
        const char *name = ef_nlp__yaml_sval(k);
        if (name_check(l, k, "intent", name))
            return l->y.rc;
        if (strcmp(name, EF_NLP_FALLBACK) == 0)
            return ef_nlp__yaml_fail(
                &l->y, k,
                "intent 'fallback' is reserved: it is what the matcher answers "
                "when no intent matches");
        char what[MAX_NAME_LEN + 16];
        snprintf(what, sizeof(what), "intent '%s'", name);
        if (!v || v->type != YAML_MAPPING_NODE)
            return ef_nlp__yaml_fail(&l->y, v ? v : k,
                                     "%s: expected a mapping with patterns, got %s", what,
                                     v ? ef_nlp__yaml_kind(v) : "nothing");
        if (ef_nlp__yaml_check_keys(&l->y, v, keys, what))
            return l->y.rc;
        ef_nlp__intent *in = &bot->intents[bot->n_intents];
        in->name = ef_strdup(name);
        in->first_pat = (uint32_t)bot->n_pats;
        bot->n_intents++;
        yaml_node_t *f = ef_nlp__yaml_get(&l->y, v, "description", NULL);
        if (f && f->type != YAML_SCALAR_NODE)
            return ef_nlp__yaml_fail(&l->y, f, "%s.description: expected a string, got %s", what,
                                     ef_nlp__yaml_kind(f));
        f = ef_nlp__yaml_get(&l->y, v, "priority", NULL);
        if (f) {
            char *end;
            long pr = 0;
            bool ok = f->type == YAML_SCALAR_NODE &&
                      f->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ef_nlp__yaml_sval(f)[0];
            if (ok) {
                errno = 0;
                pr = strtol(ef_nlp__yaml_sval(f), &end, 10);
                ok = !errno && *end == '\0' && pr >= -10 && pr <= 10;
            }
            if (!ok)
                return ef_nlp__yaml_fail(
                    &l->y, f, "%s.priority: expected a whole number from -10 to 10, got %s", what,
                    f->type == YAML_SCALAR_NODE ? ef_nlp__yaml_sval(f) : ef_nlp__yaml_kind(f));
            in->priority = (int)pr;
        }
        intent_ctx ic = {(uint32_t)(bot->n_intents - 1), what, false, 0};
        f = ef_nlp__yaml_get(&l->y, v, "patterns", NULL);
        if (!f)
            return ef_nlp__yaml_fail(&l->y, v, "%s: missing key 'patterns'", what);
        if (each_string(l, f, what, on_intent_pattern, &ic))
            return l->y.rc;
        in->n_pats = (uint32_t)(bot->n_pats - in->first_pat);
        if (in->n_pats == 0)
            return ef_nlp__yaml_fail(&l->y, f, "%s: has no patterns", what);
        f = ef_nlp__yaml_get(&l->y, v, "examples", NULL);
        if (f && each_string(l, f, what, on_example, &ic))
            return l->y.rc;
        ic.negative = true;
        f = ef_nlp__yaml_get(&l->y, v, "negative_examples", NULL);
        if (f && each_string(l, f, what, on_example, &ic))
            return l->y.rc;
        if (load_negative_patterns(l, v, &ic))
            return l->y.rc;
    }
    bot->n_intent_pats = bot->n_pats;
    return 0;
}

/* out_of_scope.topics: a mapping topic name -> examples (a list, or a
 * mapping language -> list), each topic a class of its own in the model
 * (model.c); its examples are examples of fallback like the others. */
static int load_oos_topics(ld *l, const yaml_node_t *n)
{
    ef_bot *bot = l->bot;
    if (n->type != YAML_MAPPING_NODE)
        return ef_nlp__yaml_fail(&l->y, n,
                                 "out_of_scope.topics: expected a mapping of topic names to "
                                 "examples, got %s",
                                 ef_nlp__yaml_kind(n));
    if (ef_nlp__yaml_check_keys(&l->y, n, NULL, "out_of_scope.topics"))
        return l->y.rc;
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (cnt > EF_NLP__MAX_TOPICS)
        return ef_nlp__yaml_fail(&l->y, n, "out_of_scope.topics: %zu topics, at most %d", cnt,
                                 EF_NLP__MAX_TOPICS);
    bot->oos_topics = ef_calloc(cnt ? cnt : 1, sizeof(char *));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key), *v = ef_nlp__yaml_node(&l->y, p->value);
        const char *name = ef_nlp__yaml_sval(k);
        if (name_check(l, k, "out_of_scope topic", name))
            return l->y.rc;
        char what[MAX_NAME_LEN + 32];
        snprintf(what, sizeof(what), "out_of_scope topic '%s'", name);
        bot->oos_topics[bot->n_oos_topics++] = ef_strdup(name);
        intent_ctx ic = {(uint32_t)bot->n_intents, what, false, bot->n_oos_topics};
        size_t before = bot->n_examples;
        if (!v || ef_nlp__yaml_is_null(v))
            return ef_nlp__yaml_fail(&l->y, k, "%s: has no examples", what);
        if (each_string(l, v, what, on_example, &ic))
            return l->y.rc;
        if (bot->n_examples == before)
            return ef_nlp__yaml_fail(&l->y, v, "%s: has no examples", what);
    }
    return 0;
}

/* The bot-level out_of_scope section: patterns and examples of messages
 * that are not for the bot. Its patterns join the intent patterns under
 * the hidden owner n_intents (match.c scores them like an intent's); its
 * examples, untopiced or by topic, are examples of fallback for `bot
 * check`. */
static int load_out_of_scope(ld *l, const yaml_node_t *n)
{
    static const char *const keys[] = {"description", "patterns", "examples", "topics", NULL};
    ef_bot *bot = l->bot;
    const char *what = "out_of_scope";
    if (n->type != YAML_MAPPING_NODE)
        return ef_nlp__yaml_fail(&l->y, n,
                                 "%s: expected a mapping with patterns and examples, got %s", what,
                                 ef_nlp__yaml_kind(n));
    if (ef_nlp__yaml_check_keys(&l->y, n, keys, what))
        return l->y.rc;
    intent_ctx ic = {(uint32_t)bot->n_intents, what, false, 0};
    size_t first = bot->n_pats;
    yaml_node_t *f = ef_nlp__yaml_get(&l->y, n, "patterns", NULL);
    if (f && each_string(l, f, what, on_intent_pattern, &ic))
        return l->y.rc;
    bot->n_oos_pats = (uint32_t)(bot->n_pats - first);
    f = ef_nlp__yaml_get(&l->y, n, "examples", NULL);
    if (f && each_string(l, f, what, on_example, &ic))
        return l->y.rc;
    f = ef_nlp__yaml_get(&l->y, n, "topics", NULL);
    if (f && load_oos_topics(l, f))
        return l->y.rc;
    bot->n_intent_pats = bot->n_pats;
    return 0;
}

/* ---- custom entities ------------------------------------------------------------- */

static int on_entity_regex(ld *l, const yaml_node_t *item, const char *lang, void *ud)
{
    const intent_ctx *ic = ud;
    (void)lang;
    return add_pattern(l, item, ef_nlp__yaml_sval(item), item->data.scalar.length,
                       EF_NLP__PAT_ENTITY, ic->index, NULL, ic->what);
}

/* Appends a synonym variant to the regex being built: literal text (regex
 * characters escaped, whitespace runs as one space), except that `~` keeps
 * its stem meaning. */
static void append_variant(ef_buf *b, const char *s, size_t n)
{
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = true;
            continue;
        }
        if (space && b->len > 0 && b->data[b->len - 1] != '(')
            ef_buf_append(b, " ", 1);
        space = false;
        if (strchr("\\^$.|?*+()[]{}#-/", c)) {
            char e[2] = {'\\', c};
            ef_buf_append(b, e, 2);
        } else {
            ef_buf_append(b, &c, 1);
        }
    }
}

/* Compiles one synonym variant (text[0..len)) of canonical value ci as its
 * own pattern: a whole word, so only the variants whose text occurs in a
 * message ever run. */
static int add_variant(ld *l, const yaml_node_t *node_of, const char *text, size_t len,
                       uint32_t entity, uint32_t ci, const char *what)
{
    static const char head[] = "(?<![\\p{L}\\p{N}_])(?:", tail[] = ")(?![\\p{L}\\p{N}_])";
    ef_buf b;
    ef_buf_init(&b, 64 * 1024);
    ef_buf_append(&b, head, sizeof(head) - 1);
    append_variant(&b, text, len);
    int rc = ef_buf_append(&b, tail, sizeof(tail) - 1);
    if (rc) {
        ef_buf_cleanup(&b);
        return ef_nlp__yaml_fail(&l->y, node_of, "%s.synonyms: variant too long", what);
    }
    rc = add_pattern(l, node_of, b.data, b.len, EF_NLP__PAT_SYNONYMS, entity, NULL, what);
    ef_buf_cleanup(&b);
    if (rc == 0)
        l->bot->pats[l->bot->n_pats - 1].canon = ci;
    return rc;
}

static int load_synonyms(ld *l, const yaml_node_t *n, ef_nlp__entity *ent, uint32_t index,
                         const char *what)
{
    if (n->type != YAML_MAPPING_NODE)
        return ef_nlp__yaml_fail(
            &l->y, n,
            "%s.synonyms: expected a mapping canonical value -> list of variants, "
            "got %s",
            what, ef_nlp__yaml_kind(n));
    if (ef_nlp__yaml_check_keys(&l->y, n, NULL, what))
        return l->y.rc;
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (cnt == 0)
        return ef_nlp__yaml_fail(&l->y, n, "%s.synonyms: is empty", what);
    ent->canon = ef_calloc(cnt, sizeof(char *));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key), *v = ef_nlp__yaml_node(&l->y, p->value);
        if (ef_nlp__yaml_want_string(&l->y, k, what))
            return l->y.rc;
        if (v && !ef_nlp__yaml_is_null(v) && v->type != YAML_SEQUENCE_NODE)
            return ef_nlp__yaml_fail(&l->y, v,
                                     "%s.synonyms.%s: expected a list of variants, got %s", what,
                                     ef_nlp__yaml_sval(k), ef_nlp__yaml_kind(v));
        uint32_t ci = (uint32_t)ent->n_canon;
        ent->canon[ent->n_canon++] = ef_strdup(ef_nlp__yaml_sval(k));
        if (add_variant(l, k, ef_nlp__yaml_sval(k), k->data.scalar.length, index, ci, what))
            return l->y.rc;
        size_t nitems = v && v->type == YAML_SEQUENCE_NODE
                            ? (size_t)(v->data.sequence.items.top - v->data.sequence.items.start)
                            : 0;
        for (size_t i = 0; i < nitems; i++) {
            yaml_node_t *it = ef_nlp__yaml_node(&l->y, v->data.sequence.items.start[i]);
            if (!it || ef_nlp__yaml_want_string(&l->y, it, what))
                return l->y.rc ? l->y.rc : EF_EINVAL;
            if (strcmp(ef_nlp__yaml_sval(it), ef_nlp__yaml_sval(k)) == 0)
                continue; /* the canonical value is a variant already */
            if (add_variant(l, it, ef_nlp__yaml_sval(it), it->data.scalar.length, index, ci, what))
                return l->y.rc;
        }
    }
    return 0;
}

static int load_entities(ld *l, const yaml_node_t *n)
{
    static const char *const keys[] = {"description", "regex", "synonyms", NULL};
    ef_bot *bot = l->bot;
    if (ef_nlp__yaml_is_null(n))
        return 0;
    if (n->type != YAML_MAPPING_NODE)
        return ef_nlp__yaml_fail(&l->y, n, "entities: expected a mapping of entity names, got %s",
                                 ef_nlp__yaml_kind(n));
    if (ef_nlp__yaml_check_keys(&l->y, n, NULL, "entities"))
        return l->y.rc;
    size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    bot->entities = ef_calloc(cnt ? cnt : 1, sizeof(ef_nlp__entity));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key), *v = ef_nlp__yaml_node(&l->y, p->value);
        const char *name = ef_nlp__yaml_sval(k);
        if (name_check(l, k, "entity", name))
            return l->y.rc;
        for (size_t i = 0; i < EF_NLP__ENT__BUILTIN; i++)
            if (strcmp(name, ef_nlp__builtin_names[i]) == 0)
                return ef_nlp__yaml_fail(&l->y, k, "entity '%s' is built in%s", name,
                                         i == EF_NLP__ENT_ORDER
                                             ? " (change its pattern with bot.order_number_pattern)"
                                             : "");
        char what[MAX_NAME_LEN + 16];
        snprintf(what, sizeof(what), "entity '%s'", name);
        if (!v || v->type != YAML_MAPPING_NODE)
            return ef_nlp__yaml_fail(&l->y, v ? v : k,
                                     "%s: expected a mapping with regex or synonyms, got %s", what,
                                     v ? ef_nlp__yaml_kind(v) : "nothing");
        if (ef_nlp__yaml_check_keys(&l->y, v, keys, what))
            return l->y.rc;
        ef_nlp__entity *ent = &bot->entities[bot->n_entities];
        ent->name = ef_strdup(name);
        ent->first_pat = (uint32_t)bot->n_pats;
        bot->n_entities++;
        yaml_node_t *re = ef_nlp__yaml_get(&l->y, v, "regex", NULL),
                    *syn = ef_nlp__yaml_get(&l->y, v, "synonyms", NULL);
        if ((re != NULL) == (syn != NULL))
            return ef_nlp__yaml_fail(&l->y, v, "%s: needs exactly one of regex or synonyms", what);
        intent_ctx ic = {(uint32_t)(bot->n_entities - 1), what, false, 0};
        if (re) {
            if (re->type == YAML_SCALAR_NODE) {
                if (ef_nlp__yaml_want_string(&l->y, re, what) || on_entity_regex(l, re, NULL, &ic))
                    return l->y.rc;
            } else if (re->type == YAML_SEQUENCE_NODE) {
                if (each_string(l, re, what, on_entity_regex, &ic))
                    return l->y.rc;
            } else {
                return ef_nlp__yaml_fail(&l->y, re,
                                         "%s.regex: expected a string or a list of strings, got %s",
                                         what, ef_nlp__yaml_kind(re));
            }
        } else {
            ent->synonyms = true;
            if (load_synonyms(l, syn, ent, ic.index, what))
                return l->y.rc;
        }
        ent->n_pats = (uint32_t)(bot->n_pats - ent->first_pat);
        if (ent->n_pats == 0)
            return ef_nlp__yaml_fail(&l->y, re ? re : v, "%s: has no regex", what);
    }
    return 0;
}

/* ---- the prefilter ------------------------------------------------------------------ */

static void build_prefilter(ld *l)
{
    ef_bot *bot = l->bot;
    size_t n_also = 0;
    for (size_t i = 0; i < bot->n_pats; i++)
        n_also += l->also[i].n > 0;
    ef_nlp__pf_init(&bot->pf, bot->n_pats + 1 + n_also);
    uint32_t next = (uint32_t)bot->n_pats + 1; /* after the gate's bit */
    for (size_t i = 0; i < bot->n_pats; i++) {
        if (!l->has_lits[i]) {
            ef_nlp__pf_set_always(&bot->pf, (uint32_t)i);
            continue;
        }
        for (size_t k = 0; k < l->lits[i].n; k++)
            ef_nlp__pf_add_at(&bot->pf, l->lits[i].s[k], l->lits[i].len[k], (uint32_t)i,
                              l->lits[i].at);
        if (l->also[i].n == 0)
            continue;
        bot->pats[i].also = next++;
        for (size_t k = 0; k < l->also[i].n; k++)
            ef_nlp__pf_add_at(&bot->pf, l->also[i].s[k], l->also[i].len[k], bot->pats[i].also,
                              l->also[i].at);
    }
    for (size_t i = 0;; i++) {
        const char *w = ef_nlp__gate_word(i);
        if (!w)
            break;
        ef_nlp__pf_add(&bot->pf, w, strlen(w), EF_NLP__GATE_WORDS(bot));
    }
    ef_nlp__pf_build(&bot->pf);
}

/* ---- load ---------------------------------------------------------------------------- */

static int read_document(ld *l, FILE *f, yaml_document_t *doc, bool *have_doc)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        EF_PANIC("nlp: out of memory initializing libyaml");
    yaml_parser_set_input_file(&parser, f);
    int rc = 0;
    if (!yaml_parser_load(&parser, doc)) {
        char where[64] = "";
        if (parser.context)
            snprintf(where, sizeof(where), " (which started at %zu:%zu)",
                     parser.context_mark.line + 1, parser.context_mark.column + 1);
        rc = ef_nlp__yaml_fail_at(
            &l->y, parser.problem_mark.line + 1, parser.problem_mark.column + 1, "YAML: %s%s%s%s",
            parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
            parser.context ? parser.context : "", where);
        yaml_parser_delete(&parser);
        return rc;
    }
    *have_doc = true;
    yaml_document_t extra;
    if (yaml_parser_load(&parser, &extra)) {
        yaml_node_t *r = yaml_document_get_root_node(&extra);
        if (r)
            rc = ef_nlp__yaml_fail(&l->y, r, "the file holds more than one YAML document");
        yaml_document_delete(&extra);
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* bot.dictionary: one hunspell dictionary name or a list of them. */
static int load_dictionaries(ld *l, yaml_node_t *n)
{
    char why[512];
    if (n->type == YAML_SCALAR_NODE) {
        if (ef_nlp__vocab_dictionary(&l->bot->vocab, ef_nlp__yaml_sval(n), why, sizeof(why)))
            return ef_nlp__yaml_fail(&l->y, n, "bot.dictionary: %s", why);
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return ef_nlp__yaml_fail(&l->y, n,
                                 "bot.dictionary: expected a name such as ru_RU or a "
                                 "list of names, got %s",
                                 ef_nlp__yaml_kind(n));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *d = ef_nlp__yaml_node(&l->y, *it);
        if (!d || ef_nlp__yaml_want_string(&l->y, d, "bot.dictionary"))
            return l->y.rc ? l->y.rc : EF_EINVAL;
        if (ef_nlp__vocab_dictionary(&l->bot->vocab, ef_nlp__yaml_sval(d), why, sizeof(why)))
            return ef_nlp__yaml_fail(&l->y, d, "bot.dictionary: %s", why);
    }
    return 0;
}

static int load(ld *l, yaml_node_t *root)
{
    static const char *const keys[] = {"bot", "intents", "out_of_scope", "entities", "fsm", NULL};
    ef_bot *bot = l->bot;
    if (root->type != YAML_MAPPING_NODE)
        return ef_nlp__yaml_fail(&l->y, root,
                                 "the bot file must be a mapping with the keys bot, intents, "
                                 "entities and fsm; got %s",
                                 ef_nlp__yaml_kind(root));
    if (ef_nlp__yaml_check_keys(&l->y, root, keys, "bot file"))
        return l->y.rc;
    yaml_node_t *b = ef_nlp__yaml_get(&l->y, root, "bot", NULL),
                *in = ef_nlp__yaml_get(&l->y, root, "intents", NULL);
    yaml_node_t *en = ef_nlp__yaml_get(&l->y, root, "entities", NULL),
                *fsm = ef_nlp__yaml_get(&l->y, root, "fsm", NULL);
    if (!b)
        return ef_nlp__yaml_fail_at(&l->y, 1, 1, "missing top-level key 'bot'");
    if (!in)
        return ef_nlp__yaml_fail_at(&l->y, 1, 1, "missing top-level key 'intents'");
    yaml_node_t *order_node = NULL;
    if (load_bot_section(l, b, &order_node) || load_intents(l, in))
        return l->y.rc;
    yaml_node_t *oos = ef_nlp__yaml_get(&l->y, root, "out_of_scope", NULL);
    if (oos && load_out_of_scope(l, oos))
        return l->y.rc;
    if (en && load_entities(l, en))
        return l->y.rc;
    bot->order_pat = UINT32_MAX;
    if (order_node) {
        bot->order_pat = (uint32_t)bot->n_pats;
        if (add_pattern(l, order_node, ef_nlp__yaml_sval(order_node),
                        order_node->data.scalar.length, EF_NLP__PAT_ORDER, 0, NULL,
                        "bot.order_number_pattern"))
            return l->y.rc;
    }
    build_prefilter(l);
    ef_nlp__vocab_build(bot);
    ef_nlp__model_train(bot);
    if (l->dict_node && load_dictionaries(l, l->dict_node))
        return l->y.rc;

    bot->intent_names = ef_calloc(bot->n_intents + 1, sizeof(char *));
    for (size_t i = 0; i < bot->n_intents; i++)
        bot->intent_names[i] = bot->intents[i].name;
    bot->intent_names[bot->n_intents] = EF_NLP_FALLBACK;
    bot->n_entity_types = EF_NLP__ENT__BUILTIN + bot->n_entities;
    bot->entity_types = ef_calloc(bot->n_entity_types, sizeof(char *));
    for (size_t i = 0; i < EF_NLP__ENT__BUILTIN; i++)
        bot->entity_types[i] = ef_nlp__builtin_names[i];
    for (size_t i = 0; i < bot->n_entities; i++)
        bot->entity_types[EF_NLP__ENT__BUILTIN + i] = bot->entities[i].name;

    if (fsm) {
        int rc = ef_fsm_def_from_yaml(l->y.doc, fsm, l->y.path, bot->intent_names,
                                      bot->n_intents + 1, bot->entity_types, bot->n_entity_types,
                                      &bot->fsm, l->y.err, l->y.errlen);
        if (rc) {
            l->y.rc = rc;
            return rc;
        }
    }
    return 0;
}

/* The last ef_bot_serial handed out. */
static atomic_uint_fast64_t bot_serials;

int ef_bot_load(const char *path, ef_bot **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!path || !out) {
        if (err && errlen)
            snprintf(err, errlen, "ef_bot_load: no path");
        return EF_EINVAL;
    }
    char dummy[1];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof(dummy);
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return EF_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size > BOT_FILE_MAX) {
        fclose(f);
        snprintf(err, errlen, "%s: larger than %d MiB", path, BOT_FILE_MAX >> 20);
        return EF_ELIMIT;
    }
    ld l;
    memset(&l, 0, sizeof(l));
    l.y.path = path;
    l.y.err = err;
    l.y.errlen = errlen;
    l.bot = ef_calloc(1, sizeof(ef_bot));
    l.bot->path = ef_strdup(path);
    l.bot->cyr_lang = -1;
    yaml_document_t doc;
    bool have_doc = false;
    l.y.doc = &doc;
    int rc = read_document(&l, f, &doc, &have_doc);
    fclose(f);
    if (!rc) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        rc = root ? load(&l, root) : ef_nlp__yaml_fail_at(&l.y, 1, 1, "the file is empty");
    }
    if (!rc && l.y.visits > MAX_NODE_VISITS) {
        snprintf(err, errlen, "%s: too many nodes (aliases expanding?)", path);
        rc = EF_ELIMIT;
    }
    if (have_doc)
        yaml_document_delete(&doc);
    for (size_t i = 0; i < l.bot->n_pats; i++)
        if (l.has_lits && l.has_lits[i])
            ef_nlp__lits_cleanup(&l.lits[i]);
    for (size_t i = 0; l.also && i < l.bot->n_pats; i++)
        ef_nlp__lits_cleanup(&l.also[i]);
    ef_free(l.lits);
    ef_free(l.also);
    ef_free(l.has_lits);
    if (rc) {
        ef_bot_free(l.bot);
        return rc;
    }
    l.bot->serial = (uint64_t)atomic_fetch_add(&bot_serials, 1) + 1;
    *out = l.bot;
    return 0;
}

void ef_bot_free(ef_bot *bot)
{
    if (!bot)
        return;
    ef_fsm_def_free(bot->fsm);
    for (size_t i = 0; i < bot->n_pats; i++) {
        pcre2_code_free(bot->pats[i].code);
        pcre2_code_free(bot->pats[i].core);
        if (bot->pats[i].group == i)
            ef_free(bot->pats[i].source);
    }
    ef_free(bot->pats);
    for (size_t i = 0; i < bot->n_intents; i++)
        ef_free(bot->intents[i].name);
    ef_free(bot->intents);
    for (size_t i = 0; i < bot->n_entities; i++) {
        ef_nlp__entity *e = &bot->entities[i];
        ef_free(e->name);
        for (size_t k = 0; k < e->n_canon; k++)
            ef_free(e->canon[k]);
        ef_free(e->canon);
    }
    ef_free(bot->entities);
    for (size_t i = 0; i < bot->n_examples; i++)
        ef_free(bot->examples[i].text);
    ef_free(bot->examples);
    for (size_t i = 0; i < bot->n_oos_topics; i++)
        ef_free(bot->oos_topics[i]);
    ef_free(bot->oos_topics);
    for (size_t i = 0; i < bot->n_langs; i++)
        ef_free(bot->langs[i]);
    ef_free(bot->langs);
    ef_free(bot->intent_names);
    ef_free(bot->entity_types);
    ef_nlp__pf_cleanup(&bot->pf);
    ef_nlp__vocab_cleanup(&bot->vocab);
    ef_nlp__model_cleanup(&bot->model);
    ef_nlp__tz_cleanup(&bot->tz);
    ef_free(bot->tz_name);
    ef_free(bot->name);
    ef_free(bot->path);
    ef_free(bot);
}

/* ---- accessors ------------------------------------------------------------------------ */

uint64_t ef_bot_serial(const ef_bot *bot)
{
    return bot ? bot->serial : 0;
}

const char *ef_bot_name(const ef_bot *bot)
{
    return bot ? bot->name : NULL;
}

const char *ef_bot_path(const ef_bot *bot)
{
    return bot ? bot->path : NULL;
}

size_t ef_bot_language_count(const ef_bot *bot)
{
    return bot ? bot->n_langs : 0;
}

const char *ef_bot_language(const ef_bot *bot, size_t i)
{
    return bot && i < bot->n_langs ? bot->langs[i] : NULL;
}

const char *ef_bot_timezone(const ef_bot *bot)
{
    return bot ? bot->tz_name : NULL;
}

int32_t ef_bot_utc_offset(const ef_bot *bot, int64_t unix_time)
{
    return bot ? ef_nlp__tz_offset(&bot->tz, unix_time) : 0;
}

double ef_bot_model_threshold(const ef_bot *bot)
{
    return bot ? bot->model_threshold : DEFAULT_MODEL_THRESHOLD;
}

double ef_bot_fallback_threshold(const ef_bot *bot)
{
    return bot ? bot->threshold : DEFAULT_THRESHOLD;
}

const ef_fsm_def *ef_bot_fsm(const ef_bot *bot)
{
    return bot ? bot->fsm : NULL;
}

size_t ef_bot_intent_count(const ef_bot *bot)
{
    return bot ? bot->n_intents : 0;
}

const char *ef_bot_intent_name(const ef_bot *bot, size_t i)
{
    return bot && i < bot->n_intents ? bot->intents[i].name : NULL;
}

size_t ef_bot_entity_type_count(const ef_bot *bot)
{
    return bot ? bot->n_entity_types : 0;
}

const char *ef_bot_entity_type(const ef_bot *bot, size_t i)
{
    return bot && i < bot->n_entity_types ? bot->entity_types[i] : NULL;
}

size_t ef_bot_example_count(const ef_bot *bot)
{
    return bot ? bot->n_examples : 0;
}

int ef_bot_example_get(const ef_bot *bot, size_t i, ef_bot_example *out)
{
    if (!bot || !out || i >= bot->n_examples)
        return EF_EINVAL;
    const ef_nlp__example *e = &bot->examples[i];
    out->intent = e->intent < bot->n_intents ? bot->intents[e->intent].name : EF_NLP_FALLBACK;
    out->text = e->text;
    out->lang = e->lang;
    out->negative = e->negative;
    out->line = e->line;
    out->column = e->column;
    return 0;
}
