/*
 * cli_nlp.c -- `easyflow nlu` and `easyflow bot check` (see cli_nlp.h).
 */
#include "gateway/cli_nlp.h"

#include "base/ef.h"
#include "base/time.h"
#include "nlp/fsm.h"
#include "nlp/nlp.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_MAX 1024

static void nlu_usage(void)
{
    fprintf(stderr, "usage: easyflow nlu [--bot FILE] [--now ISO8601] [--] TEXT...\n"
                    "       easyflow nlu [--bot FILE] [--now ISO8601] --lines < MESSAGES\n"
                    "  --bot FILE  the bot definition (default: $EF_BOT_FILE)\n"
                    "  --lines     read one message per line from standard input and print\n"
                    "              one JSON object per line (the bot is compiled once)\n"
                    "  --now TIME  the current time for relative dates, e.g.\n"
                    "              2026-03-10T12:00:00+03:00, 2026-03-10T09:00:00Z,\n"
                    "              2026-03-10 12:00 (bot's timezone), 2026-03-10, @1773133200\n"
                    "Prints {\"intent\", \"confidence\", \"entities\", \"ranked\"} as JSON,\n"
                    "with \"repairs\" when words were read otherwise than written and\n"
                    "\"model\" when the statistical second opinion was asked.\n");
}

static void check_usage(void)
{
    fprintf(stderr,
            "usage: easyflow bot check [--eval FILE.jsonl] [--now ISO8601] [--no-repair]\n"
            "                          [--no-model] [FILE]\n"
            "  Loads the bot definition (default: $EF_BOT_FILE), runs every example\n"
            "  and negative example, prints precision/recall per intent and the\n"
            "  confusions; exits 1 when any example fails.\n"
            "  --eval FILE  also evaluate the bot on a tagged set: one JSON object a\n"
            "               line, {\"text\", \"intent\" (or \"fallback\", or null for\n"
            "               entities only), \"family\", \"entities\": [{\"type\", \"value\"}]};\n"
            "               prints intent accuracy, fallback precision and entity\n"
            "               recall by family (never changes the exit status)\n"
            "  --now TIME   the current time for relative dates (as for nlu)\n"
            "  --no-repair  read messages only as written: no layout, transliteration\n"
            "               or spelling repair (to measure what the repairs bring)\n"
            "  --no-model   no statistical second opinion on messages no rule\n"
            "               understood (to measure what the model brings)\n"
            "  Answers that came from the model are marked [model P] in the\n"
            "  confusions and misses and counted in the model column.\n");
}

/* ---- --now ---------------------------------------------------------------------- */

/* Reads exactly n digits at *s. */
static bool digits(const char **s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*s)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *s += n;
    *out = v;
    return true;
}

static int parse_now(const char *s, const ef_bot *bot, int64_t *out)
{
    if (s[0] == '@') {
        char *end;
        long long v = strtoll(s + 1, &end, 10);
        if (end == s + 1 || *end)
            return EF_EINVAL;
        *out = v;
        return 0;
    }
    int y, mo, d, h = 12, mi = 0, se = 0;
    if (!digits(&s, 4, &y) || *s++ != '-' || !digits(&s, 2, &mo) || *s++ != '-' ||
        !digits(&s, 2, &d))
        return EF_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return EF_EINVAL;
    bool local = true;
    int off = 0;
    if (*s == 'T' || *s == ' ') {
        s++;
        if (!digits(&s, 2, &h) || *s++ != ':' || !digits(&s, 2, &mi))
            return EF_EINVAL;
        if (*s == ':') {
            s++;
            if (!digits(&s, 2, &se))
                return EF_EINVAL;
            if (*s == '.' || *s == ',') {
                s++;
                while (*s >= '0' && *s <= '9')
                    s++;
            }
        }
        if (h > 23 || mi > 59 || se > 60)
            return EF_EINVAL;
        if (*s == 'Z' || *s == 'z') {
            local = false;
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s == '-' ? -1 : 1, oh, om = 0;
            s++;
            if (!digits(&s, 2, &oh))
                return EF_EINVAL;
            if (*s == ':')
                s++;
            if (*s && !digits(&s, 2, &om))
                return EF_EINVAL;
            if (oh > 18 || om > 59)
                return EF_EINVAL;
            off = sign * (oh * 3600 + om * 60);
            local = false;
        }
    }
    if (*s)
        return EF_EINVAL;
    int64_t naive =
        ef_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
    if (local) {
        int64_t guess = naive - ef_bot_utc_offset(bot, naive);
        *out = naive - ef_bot_utc_offset(bot, guess);
    } else {
        *out = naive - off;
    }
    return 0;
}

/* ---- nlu ------------------------------------------------------------------------- */

/* --lines: one message per input line, one JSON object per output line; a
 * line that cannot be understood (not UTF-8) gets {"error": ...}. */
static int nlu_lines(const ef_bot *bot, ef_nlp_scratch *sc, int64_t now)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        ef_nlu_result r;
        int rc = ef_nlp_match(bot, sc, line, len, now, &r);
        if (rc) {
            printf("{\"error\": \"%s\"}\n", ef_strerror(rc));
            status = 1;
            continue;
        }
        char *json = ef_nlu_result_json(&r);
        printf("%s\n", json);
        ef_free(json);
    }
    ef_free(line); /* getline() allocated it with malloc; ef_free is free */
    return status;
}

int ef_nlu_cli(int argc, char **argv)
{
    const char *bot_path = NULL, *now_arg = NULL;
    /* Options may come anywhere before "--"; every other argument is a word
     * of the text (so "-5 градусов" is text, not an option). */
    ef_buf text;
    ef_buf_init(&text, EF_NLP_MAX_TEXT * 4);
    bool words = false, dashdash = false, lines = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = true;
            continue;
        }
        if (!dashdash && strcmp(a, "--lines") == 0) {
            lines = true;
            continue;
        }
        if (!dashdash && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
            nlu_usage();
            ef_buf_cleanup(&text);
            return 0;
        }
        if (!dashdash && (strncmp(a, "--bot", 5) == 0 || strncmp(a, "--now", 5) == 0) &&
            (a[5] == '\0' || a[5] == '=')) {
            const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                fprintf(stderr, "easyflow nlu: %s needs a value\n", a);
                nlu_usage();
                ef_buf_cleanup(&text);
                return 2;
            }
            if (a[2] == 'b')
                bot_path = v;
            else
                now_arg = v;
            continue;
        }
        if (!dashdash && a[0] == '-' && a[1] == '-' &&
            ((a[2] >= 'a' && a[2] <= 'z') || (a[2] >= 'A' && a[2] <= 'Z'))) {
            fprintf(stderr,
                    "easyflow nlu: unknown option %s (use -- before a text that "
                    "starts with --)\n",
                    a);
            nlu_usage();
            ef_buf_cleanup(&text);
            return 2;
        }
        if ((words && ef_buf_append(&text, " ", 1)) || ef_buf_append(&text, a, strlen(a))) {
            fprintf(stderr, "easyflow nlu: the text is too long\n");
            ef_buf_cleanup(&text);
            return 2;
        }
        words = true;
    }
    if (lines && words) {
        fprintf(stderr, "easyflow nlu: --lines reads the messages from standard input, not "
                        "from the command line\n");
        nlu_usage();
        ef_buf_cleanup(&text);
        return 2;
    }
    if (!words && !lines) {
        fprintf(stderr, "easyflow nlu: no text given\n");
        nlu_usage();
        ef_buf_cleanup(&text);
        return 2;
    }
    if (!bot_path) {
        bot_path = getenv("EF_BOT_FILE");
        if (!bot_path || !bot_path[0]) {
            fprintf(stderr, "easyflow nlu: no bot file (--bot FILE or EF_BOT_FILE)\n");
            nlu_usage();
            ef_buf_cleanup(&text);
            return 2;
        }
    }
    if (!lines && !ef_utf8_valid(text.data, text.len)) {
        fprintf(stderr, "easyflow nlu: the text is not valid UTF-8\n");
        ef_buf_cleanup(&text);
        return 2;
    }

    char err[ERR_MAX];
    ef_bot *bot = NULL;
    if (ef_bot_load(bot_path, &bot, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        ef_buf_cleanup(&text);
        return 1;
    }
    int64_t now = ef_wall_ms() / 1000;
    if (now_arg && parse_now(now_arg, bot, &now) != 0) {
        fprintf(stderr, "easyflow nlu: --now: '%s' is not an ISO 8601 time\n", now_arg);
        nlu_usage();
        ef_bot_free(bot);
        ef_buf_cleanup(&text);
        return 2;
    }
    ef_nlp_scratch *sc = ef_nlp_scratch_new(bot);
    ef_nlu_result r;
    if (lines) {
        int status = nlu_lines(bot, sc, now);
        ef_nlp_scratch_free(sc);
        ef_bot_free(bot);
        ef_buf_cleanup(&text);
        return status;
    }
    int rc = ef_nlp_match(bot, sc, text.data ? text.data : "", text.len, now, &r);
    int status = 0;
    if (rc) {
        fprintf(stderr, "easyflow nlu: %s\n", ef_strerror(rc));
        status = 2;
    } else {
        char *json = ef_nlu_result_json(&r);
        printf("%s\n", json);
        ef_free(json);
    }
    ef_nlp_scratch_free(sc);
    ef_bot_free(bot);
    ef_buf_cleanup(&text);
    return status;
}

/* ---- bot check --------------------------------------------------------------------- */

typedef struct stats {
    unsigned examples, negatives, tp, fn, fp, neg_fail;
} stats;

static void print_ratio(unsigned num, unsigned den)
{
    if (den == 0)
        printf("  %9s", "-");
    else
        printf("  %9.3f", (double)num / den);
}

/* What bot check verifies about the fsm section beyond loading it (which
 * already refuses unknown states, intents, entities and placeholders).
 * Returns the number of failed checks. */
static unsigned check_fsm(const ef_bot *bot)
{
    const ef_fsm_def *def = ef_bot_fsm(bot);
    if (!def) {
        printf("fsm: none (the bot only understands, it does not answer)\n");
        return 0;
    }
    printf("fsm: compiled; conversations start in state '%s', default language %s\n",
           ef_fsm_def_initial(def), ef_fsm_def_default_lang(def));
    return 0;
}

/* bot check's arguments. */
typedef struct check_opts {
    const char *path, *eval, *now;
    bool no_repair, no_model;
} check_opts;

/* Reads bot check's arguments into *o (the path: argument, else
 * $EF_BOT_FILE). Returns -1 when the command should go on, else the exit
 * status: 0 after --help, 2 after a usage error. */
static int check_args(int argc, char **argv, check_opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            check_usage();
            return 0;
        }
        if (strcmp(a, "--no-repair") == 0 || strcmp(a, "--no-model") == 0) {
            if (a[5] == 'r')
                o->no_repair = true;
            else
                o->no_model = true;
            continue;
        }
        if ((strcmp(a, "--eval") == 0 || strcmp(a, "--now") == 0) && i + 1 < argc) {
            if (a[2] == 'e')
                o->eval = argv[++i];
            else
                o->now = argv[++i];
            continue;
        }
        if (a[0] == '-' || o->path) {
            fprintf(stderr, "easyflow bot check: unexpected argument %s\n", a);
            check_usage();
            return 2;
        }
        o->path = a;
    }
    if (!o->path) {
        o->path = getenv("EF_BOT_FILE");
        if (!o->path || !o->path[0]) {
            fprintf(stderr, "easyflow bot check: no bot file given\n");
            check_usage();
            return 2;
        }
    }
    return -1;
}

static void print_bot_header(const ef_bot *bot, const char *path)
{
    printf("bot check: %s: bot '%s', %zu intents, %zu entity types, languages", path,
           ef_bot_name(bot), ef_bot_intent_count(bot), ef_bot_entity_type_count(bot));
    for (size_t i = 0; i < ef_bot_language_count(bot); i++)
        printf("%s%s", i ? ", " : " ", ef_bot_language(bot, i));
    printf(", timezone %s, fallback threshold %.2f, model threshold %.2f\n", ef_bot_timezone(bot),
           ef_bot_fallback_threshold(bot), ef_bot_model_threshold(bot));
}

/* One run of bot check over the examples. */
typedef struct check_run {
    const ef_bot *bot;
    const char *path;
    ef_nlp_scratch *sc;
    int64_t now;
    size_t n_int;
    stats *st; /* per intent, then one for the fallback */
    unsigned failed, passed, n_pos, n_neg;
    unsigned by_model; /* examples the model answered (no rule did) */
    ef_buf conf;       /* the confusion lines */
} check_run;

static size_t intent_index(const check_run *cr, const char *name)
{
    size_t k = 0;
    while (k < cr->n_int && strcmp(ef_bot_intent_name(cr->bot, k), name) != 0)
        k++;
    return k; /* n_int: the fallback */
}

/* Counts example ex, whose intent is want and which matched r; a failure
 * adds a confusion line. */
static void score_example(check_run *cr, const ef_bot_example *ex, size_t want,
                          const ef_nlu_result *r)
{
    size_t got = intent_index(cr, r->intent);
    stats *st = cr->st;
    cr->by_model += r->by_model;
    if (!ex->negative) {
        cr->n_pos++;
        st[want].examples++;
        if (got == want) {
            st[want].tp++;
            cr->passed++;
            return;
        }
        st[want].fn++;
        st[got].fp++;
        ef_buf_appendf(&cr->conf, "  %s:%d:%d: %s -> %s (%.2f): \"%s\"", cr->path, ex->line,
                       ex->column, ex->intent, r->intent, r->confidence, ex->text);
    } else {
        cr->n_neg++;
        st[want].negatives++;
        if (got != want) {
            cr->passed++;
            return;
        }
        st[want].fp++;
        st[want].neg_fail++;
        ef_buf_appendf(&cr->conf, "  %s:%d:%d: not %s -> %s (%.2f): \"%s\"", cr->path, ex->line,
                       ex->column, ex->intent, r->intent, r->confidence, ex->text);
    }
    cr->failed++;
    if (r->by_model)
        ef_buf_appendf(&cr->conf, "  [model %.2f: no pattern matched]\n", r->model_confidence);
    else if (r->n_ranked > 0 && strcmp(r->ranked[0].intent, r->intent) == 0)
        ef_buf_appendf(&cr->conf, "  [pattern at line %d: %s]\n", r->ranked[0].line,
                       r->ranked[0].pattern);
    else
        ef_buf_appendf(&cr->conf, "  [no pattern matched]\n");
}

static void run_examples(check_run *cr)
{
    size_t n_ex = ef_bot_example_count(cr->bot);
    for (size_t i = 0; i < n_ex; i++) {
        ef_bot_example ex;
        ef_nlu_result r;
        ef_bot_example_get(cr->bot, i, &ex);
        size_t want = intent_index(cr, ex.intent);
        if (ef_nlp_match(cr->bot, cr->sc, ex.text, strlen(ex.text), cr->now, &r) != 0) {
            ef_buf_appendf(&cr->conf, "  %s:%d:%d: %s: the example is not valid UTF-8\n", cr->path,
                           ex.line, ex.column, ex.intent);
            cr->failed++;
            continue;
        }
        score_example(cr, &ex, want, &r);
    }
}

/* The precision/recall table, one line per intent and a macro average. */
static void print_table(const check_run *cr)
{
    printf("\n%-24s %8s %8s %5s %5s %5s  %9s  %9s  %9s\n", "intent", "examples", "negative", "tp",
           "fn", "fp", "precision", "recall", "f1");
    double sum_p = 0, sum_r = 0, sum_f = 0;
    unsigned n_rated = 0;
    for (size_t k = 0; k <= cr->n_int; k++) {
        const stats *s = &cr->st[k];
        const char *name = k < cr->n_int ? ef_bot_intent_name(cr->bot, k) : EF_NLP_FALLBACK;
        if (k == cr->n_int && s->fp == 0)
            continue;
        printf("%-24s %8u %8u %5u %5u %5u", name, s->examples, s->negatives, s->tp, s->fn, s->fp);
        print_ratio(s->tp, s->tp + s->fp);
        print_ratio(s->tp, s->tp + s->fn);
        if (s->tp + s->fp && s->tp + s->fn && s->tp) {
            double p = (double)s->tp / (s->tp + s->fp), rc = (double)s->tp / (s->tp + s->fn);
            double f = 2 * p * rc / (p + rc);
            printf("  %9.3f\n", f);
            sum_p += p;
            sum_r += rc;
            sum_f += f;
            n_rated++;
        } else {
            printf("  %9s\n", s->tp + s->fn ? "0.000" : "-");
            if (s->tp + s->fn)
                n_rated++;
        }
    }
    if (n_rated)
        printf("%-24s %8u %8u %5s %5s %5s  %9.3f  %9.3f  %9.3f\n", "(macro average)", cr->n_pos,
               cr->n_neg, "", "", "", sum_p / n_rated, sum_r / n_rated, sum_f / n_rated);
}

/* ---- bot check --eval: a tagged evaluation set ----------------------------------- */

#define EVAL_FAMILIES 32

/* The figures of one family (or of all). */
typedef struct fam_stats {
    char name[32];
    unsigned n, hits;          /* lines with an intent, understood right */
    unsigned answered, good;   /* answered (not fallback), of which deserved it */
    unsigned oos, oos_ok;      /* lines that must fall back, which did */
    unsigned ents, ents_found; /* entities wanted, found with their value */
    unsigned repaired;         /* lines the normalizer repaired */
    unsigned model;            /* lines the model answered (no rule did) */
} fam_stats;

typedef struct eval_run {
    fam_stats fam[EVAL_FAMILIES + 1]; /* the last: all families */
    size_t n_fam;
    ef_buf miss;
} eval_run;

static fam_stats *eval_family(eval_run *ev, const char *name)
{
    for (size_t i = 0; i < ev->n_fam; i++)
        if (strcmp(ev->fam[i].name, name) == 0)
            return &ev->fam[i];
    if (ev->n_fam == EVAL_FAMILIES)
        return &ev->fam[EVAL_FAMILIES - 1];
    fam_stats *f = &ev->fam[ev->n_fam++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    return f;
}

static bool has_entity(const ef_nlu_result *r, const char *type, const char *value)
{
    for (size_t i = 0; i < r->n_entities; i++)
        if (strcmp(r->entities[i].type, type) == 0 && strcmp(r->entities[i].value, value) == 0)
            return true;
    return false;
}

/* Counts one line's intent into f and all. */
static void eval_intent(eval_run *ev, fam_stats *f, unsigned lineno, const char *text,
                        const char *want, const ef_nlu_result *r)
{
    fam_stats *all = &ev->fam[EVAL_FAMILIES];
    bool ok = strcmp(r->intent, want) == 0;
    bool want_fb = strcmp(want, EF_NLP_FALLBACK) == 0;
    bool answered = strcmp(r->intent, EF_NLP_FALLBACK) != 0;
    for (fam_stats *s = f; s; s = s == all ? NULL : all) {
        s->n++;
        s->hits += ok;
        s->answered += answered;
        s->good += answered && !want_fb;
        s->oos += want_fb;
        s->oos_ok += want_fb && !answered;
        s->repaired += r->n_repairs > 0;
        s->model += r->by_model;
    }
    if (!ok)
        ef_buf_appendf(&ev->miss, "  line %u [%s]: want %s, got %s (%s%.2f): \"%s\"\n", lineno,
                       f->name, want, r->intent, r->by_model ? "model " : "", r->confidence, text);
}

/* Counts one line's wanted entities. */
static void eval_entities(eval_run *ev, fam_stats *f, unsigned lineno, const char *text,
                          json_object *ents, const ef_nlu_result *r)
{
    fam_stats *all = &ev->fam[EVAL_FAMILIES];
    size_t n =
        ents && json_object_is_type(ents, json_type_array) ? json_object_array_length(ents) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(ents, i), *t, *v;
        if (!json_object_object_get_ex(e, "type", &t) || !json_object_object_get_ex(e, "value", &v))
            continue;
        bool found = has_entity(r, json_object_get_string(t), json_object_get_string(v));
        f->ents++;
        all->ents++;
        f->ents_found += found;
        all->ents_found += found;
        if (!found)
            ef_buf_appendf(&ev->miss, "  line %u [%s]: entity %s=%s not found: \"%s\"\n", lineno,
                           f->name, json_object_get_string(t), json_object_get_string(v), text);
    }
}

/* Evaluates one line of the set; false when it is not a JSON object with a
 * text. */
static bool eval_line(eval_run *ev, check_run *cr, unsigned lineno, const char *line)
{
    json_object *o = json_tokener_parse(line), *t, *in, *fa, *en;
    if (!o || !json_object_object_get_ex(o, "text", &t) ||
        !json_object_is_type(t, json_type_string)) {
        json_object_put(o);
        return false;
    }
    const char *text = json_object_get_string(t);
    const char *fam = "untagged";
    if (json_object_object_get_ex(o, "family", &fa) && json_object_is_type(fa, json_type_string))
        fam = json_object_get_string(fa);
    fam_stats *f = eval_family(ev, fam);
    ef_nlu_result r;
    if (ef_nlp_match(cr->bot, cr->sc, text, strlen(text), cr->now, &r) != 0) {
        json_object_put(o);
        return false;
    }
    if (json_object_object_get_ex(o, "intent", &in) && json_object_is_type(in, json_type_string))
        eval_intent(ev, f, lineno, text, json_object_get_string(in), &r);
    en = NULL;
    json_object_object_get_ex(o, "entities", &en);
    eval_entities(ev, f, lineno, text, en, &r);
    json_object_put(o);
    return true;
}

static void print_fraction(unsigned num, unsigned den)
{
    if (den == 0)
        printf("  %15s", "-");
    else
        printf("  %5.1f%% %3u/%-4u", 100.0 * num / den, num, den);
}

static void print_family(const fam_stats *f)
{
    printf("%-14s", f->name);
    print_fraction(f->hits, f->n);
    print_fraction(f->good, f->answered);
    print_fraction(f->oos_ok, f->oos);
    print_fraction(f->ents_found, f->ents);
    printf("  %8u  %5u\n", f->repaired, f->model);
}

/* Runs the set at path and prints the figures by family; returns 0, or 1
 * when the file cannot be read or a line is not understood. */
static int eval_set(check_run *cr, const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "easyflow bot check: %s: cannot read\n", path);
        return 1;
    }
    eval_run *ev = ef_calloc(1, sizeof(*ev));
    snprintf(ev->fam[EVAL_FAMILIES].name, sizeof(ev->fam[0].name), "all");
    ef_buf_init(&ev->miss, 64 * 1024 * 1024);
    char *line = NULL;
    size_t cap = 0;
    unsigned lineno = 0, bad = 0;
    while (getline(&line, &cap, fp) >= 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        if (!eval_line(ev, cr, lineno, line)) {
            fprintf(stderr, "%s:%u: not a JSON object with a valid UTF-8 \"text\"\n", path, lineno);
            bad++;
        }
    }
    ef_free(line); /* getline() allocated it with malloc; ef_free is free() */
    fclose(fp);
    printf("\nevaluation: %s\n%-14s  %15s  %15s  %15s  %15s  %8s  %5s\n", path, "family",
           "intent accuracy", "fallback prec.", "out-of-scope", "entity recall", "repaired",
           "model");
    for (size_t i = 0; i < ev->n_fam; i++)
        print_family(&ev->fam[i]);
    print_family(&ev->fam[EVAL_FAMILIES]);
    if (ev->miss.len) {
        printf("\nmisses:\n");
        fwrite(ev->miss.data, 1, ev->miss.len, stdout);
    }
    const fam_stats *a = &ev->fam[EVAL_FAMILIES];
    printf("eval: intent_accuracy %.4f fallback_precision %.4f entity_recall %.4f\n",
           a->n ? (double)a->hits / a->n : 1.0, a->answered ? (double)a->good / a->answered : 1.0,
           a->ents ? (double)a->ents_found / a->ents : 1.0);
    ef_buf_cleanup(&ev->miss);
    ef_free(ev);
    return bad ? 1 : 0;
}

int ef_bot_check_cli(int argc, char **argv)
{
    check_opts o = {0};
    int code = check_args(argc, argv, &o);
    if (code >= 0)
        return code;
    const char *path = o.path;
    char err[ERR_MAX];
    ef_bot *bot = NULL;
    if (ef_bot_load(path, &bot, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    print_bot_header(bot, path);
    check_run cr = {.bot = bot, .path = path, .now = ef_wall_ms() / 1000};
    if (o.now && parse_now(o.now, bot, &cr.now) != 0) {
        fprintf(stderr, "easyflow bot check: --now: '%s' is not an ISO 8601 time\n", o.now);
        ef_bot_free(bot);
        return 2;
    }
    cr.n_int = ef_bot_intent_count(bot);
    cr.st = ef_calloc(cr.n_int + 1, sizeof(stats));
    cr.sc = ef_nlp_scratch_new(bot);
    ef_nlp_scratch_set_options(cr.sc, (o.no_repair ? EF_NLP_NO_REPAIR : 0) |
                                          (o.no_model ? EF_NLP_NO_MODEL : 0));
    ef_buf_init(&cr.conf, 64 * 1024 * 1024);
    run_examples(&cr);
    print_table(&cr);
    if (cr.conf.len) {
        printf("\nconfusions (expected -> got):\n");
        fwrite(cr.conf.data, 1, cr.conf.len, stdout);
    }
    printf("\n");
    unsigned fsm_failed = check_fsm(bot);
    printf("summary: %u examples, %u negative examples: %u passed, %u failed%s\n", cr.n_pos,
           cr.n_neg, cr.passed, cr.failed, fsm_failed ? "; fsm checks failed" : "");
    if (cr.by_model)
        printf("model: %u examples answered by the statistical second opinion (no pattern "
               "matched; it learned from these very examples, so they prove little: "
               "give those intents patterns)\n",
               cr.by_model);
    if (cr.n_pos + cr.n_neg == 0)
        printf("note: the bot has no examples; add some under each intent's examples:\n");
    int eval_failed = o.eval ? eval_set(&cr, o.eval) : 0;
    ef_buf_cleanup(&cr.conf);
    ef_nlp_scratch_free(cr.sc);
    ef_free(cr.st);
    ef_bot_free(bot);
    return cr.failed || fsm_failed || eval_failed ? 1 : 0;
}
