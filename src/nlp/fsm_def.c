/*
 * fsm_def.c -- compiles the `fsm:` section of a bot definition (docs/fsm.md)
 * from a libyaml document into an immutable ef_fsm_def.
 *
 * Everything that can be checked before the first message is checked here,
 * so that ef_fsm_step() never meets a dangling name: state names, intents,
 * entity types, slot prompts, template placeholders, languages, button
 * payloads, reachability of every state and loops of on_filled gotos. The
 * first problem is reported as "path:line:column: reason" (1-based, from the
 * node's start mark). All strings are copied: the document may be deleted as
 * soon as loading returns.
 */
#include "nlp/fsm_int.h"
#include "nlp/yaml_int.h"

#include <stdio.h>
#include <string.h>

#define DEFAULT_INITIAL "initial"
#define DEFAULT_REPEATED_AFTER 2
#define DEFAULT_SLOT_RETRIES 2
#define MAX_SLOT_RETRIES 20
#define MAX_REPEATED_AFTER 20
#define MAX_TIMEOUT_SECS (366LL * 24 * 3600)

typedef struct used_button {
    const char *payload; /* borrowed from the def */
    yaml_node_t *node;
} used_button;

typedef struct ld {
    ef_nlp__yaml y; /* the document, messages */
    const char *const *intents;
    size_t n_intents;
    const char *const *etypes;
    size_t n_etypes;
    ef_fsm_def *def;
    bool langs_declared;
    yaml_node_t **state_keys; /* per state: its key node, for messages */
    used_button *used;
    size_t n_used;
    size_t cap_used;
} ld;

/* ---- small helpers (the YAML ones are in yaml.c) ------------------------ */

/* A non-empty string scalar without NUL bytes. */
static int get_str(ld *l, yaml_node_t *n, const char *what, const char **out)
{
    int rc = ef_nlp__yaml_want_string(&l->y, n, what);
    if (rc)
        return rc;
    *out = ef_nlp__yaml_sval(n);
    return 0;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] && !strcmp(list[i], s))
            return true;
    }
    return false;
}

static long find_state(const ef_fsm_def *def, const char *name)
{
    for (size_t i = 0; i < def->n_states; i++) {
        if (!strcmp(def->states[i].name, name))
            return (long)i;
    }
    return -1;
}

/* ---- name checks ---------------------------------------------------------- */

static bool key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

typedef int (*name_check_fn)(ld *l, yaml_node_t *n, const char *v);

static int check_ctx_key(ld *l, yaml_node_t *n, const char *v)
{
    if (v[0] == '_')
        return ef_nlp__yaml_fail(&l->y, n,
                                 "context key '%s': keys starting with '_' belong to the FSM", v);
    for (const char *c = v; *c; c++) {
        if (!key_char(*c))
            return ef_nlp__yaml_fail(
                &l->y, n,
                "context key '%s': use letters, digits, '_' and '-' so templates "
                "can refer to it",
                v);
    }
    return 0;
}

static int check_intent(ld *l, yaml_node_t *n, const char *v)
{
    if (!strcmp(v, "fallback"))
        return ef_nlp__yaml_fail(
            &l->y, n,
            "'fallback' is what the matcher says when nothing matched: use the "
            "`fallback:` key of the state or of fsm instead");
    if (!in_list(v, l->intents, l->n_intents))
        return ef_nlp__yaml_fail(&l->y, n,
                                 "unknown intent '%s' (the bot file defines no such intent)", v);
    return 0;
}

static int check_entity(ld *l, yaml_node_t *n, const char *v)
{
    if (!in_list(v, l->etypes, l->n_etypes))
        return ef_nlp__yaml_fail(&l->y, n, "unknown entity type '%s'", v);
    return 0;
}

static int check_payload(ld *l, yaml_node_t *n, const char *v)
{
    if (strlen(v) > EF_FSM__PAYLOAD_MAX)
        return ef_nlp__yaml_fail(&l->y, n,
                                 "button payload '%s' is longer than %d bytes (Telegram's limit)",
                                 v, EF_FSM__PAYLOAD_MAX);
    return 0;
}

static int check_action(ld *l, yaml_node_t *n, const char *v)
{
    if (strcmp(v, "escalate") && strcmp(v, "close"))
        return ef_nlp__yaml_fail(&l->y, n, "unknown action '%s' (expected: escalate, close)", v);
    return 0;
}

/* A language tag: 2-3 lowercase letters, then optional "-XX" parts. */
static bool lang_ok(const char *s)
{
    size_t i = 0;
    while (s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return false;
    while (s[i] == '-') {
        size_t j = ++i;
        while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
               (s[i] >= '0' && s[i] <= '9'))
            i++;
        if (i == j)
            return false;
    }
    return s[i] == '\0';
}

/* A scalar or a sequence of scalars, each checked, copied into *out. */
static int parse_names(ld *l, yaml_node_t *n, const char *what, name_check_fn check, char ***out,
                       size_t *nout)
{
    if (ef_nlp__yaml_is_scalar(n)) {
        const char *v;
        int rc = get_str(l, n, what, &v);
        if (!rc && check)
            rc = check(l, n, v);
        if (rc)
            return rc;
        *out = ef_calloc(1, sizeof(char *));
        (*out)[0] = ef_strdup(v);
        *nout = 1;
        return 0;
    }
    if (!ef_nlp__yaml_is_seq(n) || ef_nlp__yaml_seq_len(n) == 0)
        return ef_nlp__yaml_fail(&l->y, n, "%s must be a name or a non-empty list of names", what);
    *out = ef_calloc(ef_nlp__yaml_seq_len(n), sizeof(char *));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = ef_nlp__yaml_node(&l->y, *it);
        const char *v;
        int rc = get_str(l, item, what, &v);
        if (!rc && check)
            rc = check(l, item, v);
        if (rc)
            return rc;
        for (size_t i = 0; i < *nout; i++) {
            if (!strcmp((*out)[i], v))
                return ef_nlp__yaml_fail(&l->y, item, "'%s' is listed twice in %s", v, what);
        }
        (*out)[(*nout)++] = ef_strdup(v);
    }
    return 0;
}

/* ---- texts ------------------------------------------------------------------ */

static int check_tpl(ld *l, yaml_node_t *n, const char *tpl, const char *what)
{
    size_t at = 0;
    char why[256];
    const ef_fsm_def *d = l->def;
    int rc = ef_fsm__tpl_check(tpl, l->etypes, l->n_etypes, (const char *const *)d->slot_names,
                               d->n_slot_names, &at, why, sizeof(why));
    if (rc) {
        size_t ch = 0; /* characters, not bytes: "Заказ {x}" is at character 7 */
        for (size_t i = 0; i < at; i++)
            ch += ((unsigned char)tpl[i] & 0xC0) != 0x80;
        return ef_nlp__yaml_fail(&l->y, n, "%s: %s (at character %zu of the text)", what, why,
                                 ch + 1);
    }
    return 0;
}

static void add_lang(ef_fsm_def *d, const char *code)
{
    for (size_t i = 0; i < d->n_langs; i++) {
        if (!strcmp(d->langs[i], code))
            return;
    }
    d->langs = ef_realloc(d->langs, (d->n_langs + 1) * sizeof(char *));
    d->langs[d->n_langs++] = ef_strdup(code);
}

/* A plain string (every language) or a map language -> string. */
static int parse_text(ld *l, yaml_node_t *n, ef_fsm__text *t, const char *what)
{
    ef_fsm_def *d = l->def;
    if (ef_nlp__yaml_is_scalar(n)) {
        const char *v;
        int rc = get_str(l, n, what, &v);
        if (!rc)
            rc = check_tpl(l, n, v, what);
        if (rc)
            return rc;
        t->lang = ef_calloc(1, sizeof(char *));
        t->tpl = ef_calloc(1, sizeof(char *));
        t->tpl[0] = ef_strdup(v);
        t->n = 1;
        return 0;
    }
    if (!ef_nlp__yaml_is_map(n) || ef_nlp__yaml_map_len(n) == 0)
        return ef_nlp__yaml_fail(
            &l->y, n, "%s must be a text or a map of language -> text (ru: ..., en: ...)", what);
    int rc = ef_nlp__yaml_check_keys(&l->y, n, NULL, what);
    if (rc)
        return rc;
    size_t cnt = ef_nlp__yaml_map_len(n);
    t->lang = ef_calloc(cnt, sizeof(char *));
    t->tpl = ef_calloc(cnt, sizeof(char *));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key);
        yaml_node_t *v = ef_nlp__yaml_node(&l->y, p->value);
        const char *code = ef_nlp__yaml_sval(k);
        if (!lang_ok(code))
            return ef_nlp__yaml_fail(
                &l->y, k, "'%s' in %s is neither a known key nor a language code", code, what);
        if (l->langs_declared && !in_list(code, (const char *const *)d->langs, d->n_langs)) {
            char langs[128];
            ef_nlp__yaml_join(langs, sizeof(langs), (const char *const *)d->langs, d->n_langs);
            return ef_nlp__yaml_fail(&l->y, k, "'%s' in %s is not one of the bot's languages (%s)",
                                     code, what, langs);
        }
        const char *s;
        rc = get_str(l, v, what, &s);
        if (!rc)
            rc = check_tpl(l, v, s, what);
        if (rc)
            return rc;
        if (!l->langs_declared)
            add_lang(d, code);
        t->lang[t->n] = ef_strdup(code);
        t->tpl[t->n] = ef_strdup(s);
        t->n++;
    }
    if (!in_list(d->langs[0], (const char *const *)t->lang, t->n))
        return ef_nlp__yaml_fail(&l->y, n, "%s has no '%s' version (the bot's default language)",
                                 what, d->langs[0]);
    return 0;
}

/* ---- blocks ----------------------------------------------------------------- */

enum {
    B_GOTO = 1,    /* may go to another state */
    B_ACTIONS = 2, /* may escalate / close */
    B_CTX = 4,     /* may set / clear / incr context keys */
    B_SHORT = 8    /* may be written as just a text */
};

static const char *const block_keys[] = {"reply", "buttons", "goto",   "set",
                                         "clear", "incr",    "actions"};
#define N_BLOCK_KEYS (sizeof(block_keys) / sizeof(block_keys[0]))

static void block_init(ef_fsm__block *b)
{
    memset(b, 0, sizeof(*b));
    b->go = -1;
}

static bool key_permitted(const char *key, unsigned flags)
{
    if (!strcmp(key, "goto"))
        return flags & B_GOTO;
    if (!strcmp(key, "actions"))
        return flags & B_ACTIONS;
    if (!strcmp(key, "set") || !strcmp(key, "clear") || !strcmp(key, "incr"))
        return flags & B_CTX;
    return true;
}

static bool has_any_key(ld *l, yaml_node_t *map, const char *const *extra, size_t n_extra)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key);
        if (ef_nlp__yaml_is_scalar(k) && (in_list(ef_nlp__yaml_sval(k), block_keys, N_BLOCK_KEYS) ||
                                          in_list(ef_nlp__yaml_sval(k), extra, n_extra)))
            return true;
    }
    return false;
}

static int parse_replies(ld *l, yaml_node_t *n, ef_fsm__block *b, const char *what)
{
    if (ef_nlp__yaml_is_seq(n)) {
        if (ef_nlp__yaml_seq_len(n) == 0)
            return ef_nlp__yaml_fail(&l->y, n, "%s: reply list is empty", what);
        b->replies = ef_calloc(ef_nlp__yaml_seq_len(n), sizeof(ef_fsm__text));
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            int rc =
                parse_text(l, ef_nlp__yaml_node(&l->y, *it), &b->replies[b->n_replies++], what);
            if (rc)
                return rc;
        }
        return 0;
    }
    b->replies = ef_calloc(1, sizeof(ef_fsm__text));
    b->n_replies = 1;
    return parse_text(l, n, &b->replies[0], what);
}

static void note_used_button(ld *l, const char *payload, yaml_node_t *n)
{
    if (l->n_used == l->cap_used) {
        l->cap_used = l->cap_used ? 2 * l->cap_used : 16;
        l->used = ef_realloc(l->used, l->cap_used * sizeof(used_button));
    }
    l->used[l->n_used].payload = payload;
    l->used[l->n_used].node = n;
    l->n_used++;
}

static int parse_buttons(ld *l, yaml_node_t *n, ef_fsm__block *b)
{
    static const char *const keys[] = {"title", "payload", NULL};
    if (!ef_nlp__yaml_is_seq(n) || ef_nlp__yaml_seq_len(n) == 0)
        return ef_nlp__yaml_fail(&l->y, n, "buttons must be a non-empty list of {title, payload}");
    b->buttons = ef_calloc(ef_nlp__yaml_seq_len(n), sizeof(ef_fsm__button));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *bn = ef_nlp__yaml_node(&l->y, *it);
        if (!ef_nlp__yaml_is_map(bn))
            return ef_nlp__yaml_fail(&l->y, bn, "a button must be a mapping {title, payload}");
        int rc = ef_nlp__yaml_check_keys(&l->y, bn, keys, "button");
        if (rc)
            return rc;
        ef_fsm__button *btn = &b->buttons[b->n_buttons++];
        yaml_node_t *title = ef_nlp__yaml_get(&l->y, bn, "title", NULL);
        yaml_node_t *payload = ef_nlp__yaml_get(&l->y, bn, "payload", NULL);
        if (!title)
            return ef_nlp__yaml_fail(&l->y, bn, "button has no title");
        if (!payload)
            return ef_nlp__yaml_fail(&l->y, bn, "button has no payload");
        rc = parse_text(l, title, &btn->title, "button title");
        if (rc)
            return rc;
        const char *pv;
        rc = get_str(l, payload, "button payload", &pv);
        if (!rc)
            rc = check_payload(l, payload, pv);
        if (rc)
            return rc;
        btn->payload = ef_strdup(pv);
        note_used_button(l, btn->payload, payload);
    }
    return 0;
}

static int parse_set(ld *l, yaml_node_t *n, ef_fsm__block *b)
{
    if (!ef_nlp__yaml_is_map(n) || ef_nlp__yaml_map_len(n) == 0)
        return ef_nlp__yaml_fail(&l->y, n, "set must be a mapping of context key -> text");
    int rc = ef_nlp__yaml_check_keys(&l->y, n, NULL, "set");
    if (rc)
        return rc;
    b->set = ef_calloc(ef_nlp__yaml_map_len(n), sizeof(ef_fsm__kv));
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key);
        yaml_node_t *v = ef_nlp__yaml_node(&l->y, p->value);
        rc = check_ctx_key(l, k, ef_nlp__yaml_sval(k));
        if (rc)
            return rc;
        if (!ef_nlp__yaml_is_scalar(v) || strlen(ef_nlp__yaml_sval(v)) != v->data.scalar.length)
            return ef_nlp__yaml_fail(&l->y, v, "set: the value of '%s' must be a text",
                                     ef_nlp__yaml_sval(k));
        rc = check_tpl(l, v, ef_nlp__yaml_sval(v), "set");
        if (rc)
            return rc;
        b->set[b->n_set].key = ef_strdup(ef_nlp__yaml_sval(k));
        b->set[b->n_set].tpl = ef_strdup(ef_nlp__yaml_sval(v));
        b->n_set++;
    }
    return 0;
}

static int parse_actions(ld *l, yaml_node_t *n, ef_fsm__block *b)
{
    char **acts = NULL;
    size_t n_acts = 0;
    int rc = parse_names(l, n, "actions", check_action, &acts, &n_acts);
    for (size_t i = 0; i < n_acts; i++) {
        if (!strcmp(acts[i], "escalate"))
            b->escalate = true;
        else
            b->close = true;
        ef_free(acts[i]);
    }
    ef_free(acts);
    if (!rc && b->escalate && b->close)
        return ef_nlp__yaml_fail(&l->y, n, "actions escalate and close exclude each other");
    return rc;
}

/* Parses what a transition / on_enter / fallback / ... does. extra lists the
 * keys the caller handles itself (triggers, after). */
static int parse_block(ld *l, yaml_node_t *n, ef_fsm__block *b, unsigned flags,
                       const char *const *extra, size_t n_extra, const char *what)
{
    block_init(b);
    b->present = true;
    b->line = (int)n->start_mark.line + 1;
    if ((flags & B_SHORT) && ((ef_nlp__yaml_is_scalar(n) && !ef_nlp__yaml_is_null(n)) ||
                              (ef_nlp__yaml_is_map(n) && ef_nlp__yaml_map_len(n) &&
                               !has_any_key(l, n, extra, n_extra)))) {
        b->replies = ef_calloc(1, sizeof(ef_fsm__text));
        b->n_replies = 1;
        return parse_text(l, n, &b->replies[0], what);
    }
    if (!ef_nlp__yaml_is_map(n))
        return ef_nlp__yaml_fail(
            &l->y, n, "%s must be a mapping (reply, buttons, goto, set, clear, incr, actions)",
            what);
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key);
        const char *key;
        int rc = get_str(l, k, "a key", &key);
        if (rc)
            return rc;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p; q++) {
            if (!strcmp(ef_nlp__yaml_sval(ef_nlp__yaml_node(&l->y, q->key)), key))
                return ef_nlp__yaml_fail(&l->y, k, "duplicate key '%s' in %s", key, what);
        }
        if (in_list(key, extra, n_extra))
            continue;
        if (!in_list(key, block_keys, N_BLOCK_KEYS)) {
            const char *expected[N_BLOCK_KEYS + 4];
            size_t n_expected = 0;
            for (size_t i = 0; i < n_extra && n_expected < 4; i++)
                expected[n_expected++] = extra[i];
            for (size_t i = 0; i < N_BLOCK_KEYS; i++) {
                if (key_permitted(block_keys[i], flags))
                    expected[n_expected++] = block_keys[i];
            }
            char exp[256];
            ef_nlp__yaml_join(exp, sizeof(exp), expected, n_expected);
            return ef_nlp__yaml_fail(&l->y, k, "unknown key '%s' in %s (expected: %s)", key, what,
                                     exp);
        }
        if (!key_permitted(key, flags))
            return ef_nlp__yaml_fail(&l->y, k, "'%s' is not allowed in %s", key, what);
        yaml_node_t *v = ef_nlp__yaml_node(&l->y, p->value);
        if (!strcmp(key, "reply")) {
            rc = parse_replies(l, v, b, "reply");
        } else if (!strcmp(key, "buttons")) {
            rc = parse_buttons(l, v, b);
        } else if (!strcmp(key, "goto")) {
            const char *target;
            rc = get_str(l, v, "goto", &target);
            if (!rc) {
                b->go = find_state(l->def, target);
                if (b->go < 0)
                    rc = ef_nlp__yaml_fail(&l->y, v, "goto: unknown state '%s'", target);
            }
        } else if (!strcmp(key, "set")) {
            rc = parse_set(l, v, b);
        } else if (!strcmp(key, "clear")) {
            rc = parse_names(l, v, "clear", check_ctx_key, &b->clear, &b->n_clear);
        } else if (!strcmp(key, "incr")) {
            rc = parse_names(l, v, "incr", check_ctx_key, &b->incr, &b->n_incr);
        } else {
            rc = parse_actions(l, v, b);
        }
        if (rc)
            return rc;
    }
    if (b->n_buttons && !b->n_replies)
        return ef_nlp__yaml_fail(&l->y, n, "%s has buttons but no reply to attach them to", what);
    return 0;
}

/* "90", "90s", "30m", "2h", "1d" -> seconds. */
static int parse_duration(ld *l, yaml_node_t *n, const char *what, int64_t *out)
{
    const char *s;
    int rc = get_str(l, n, what, &s);
    if (rc)
        return rc;
    int64_t v = 0;
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9') {
        if (v > MAX_TIMEOUT_SECS)
            break;
        v = v * 10 + (s[i] - '0');
        i++;
    }
    int64_t mul = 1;
    if (s[i] == 's' || s[i] == 'm' || s[i] == 'h' || s[i] == 'd') {
        mul = s[i] == 's' ? 1 : s[i] == 'm' ? 60 : s[i] == 'h' ? 3600 : 86400;
        i++;
    }
    if (i == 0 || s[i] != '\0' || !(s[0] >= '0' && s[0] <= '9'))
        return ef_nlp__yaml_fail(&l->y, n, "%s: '%s' is not a duration (e.g. 90, 90s, 30m, 2h, 1d)",
                                 what, s);
    if (v <= 0 || v > MAX_TIMEOUT_SECS || v * mul > MAX_TIMEOUT_SECS)
        return ef_nlp__yaml_fail(&l->y, n, "%s: '%s' must be between 1 second and 366 days", what,
                                 s);
    *out = v * mul;
    return 0;
}

static int parse_int(ld *l, yaml_node_t *n, const char *what, int lo, int hi, int *out)
{
    const char *s;
    int rc = get_str(l, n, what, &s);
    if (rc)
        return rc;
    long v = 0;
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9' && v <= hi) {
        v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0 || s[i] != '\0' || v < lo || v > hi)
        return ef_nlp__yaml_fail(&l->y, n, "%s must be a whole number from %d to %d", what, lo, hi);
    *out = (int)v;
    return 0;
}

static int parse_bool(ld *l, yaml_node_t *n, const char *what, bool *out)
{
    const char *s;
    int rc = get_str(l, n, what, &s);
    if (rc)
        return rc;
    if (!strcmp(s, "true") || !strcmp(s, "yes")) {
        *out = true;
        return 0;
    }
    if (!strcmp(s, "false") || !strcmp(s, "no")) {
        *out = false;
        return 0;
    }
    return ef_nlp__yaml_fail(&l->y, n, "%s must be true or false", what);
}

static int parse_timeout(ld *l, yaml_node_t *n, ef_fsm__timeout *t, const char *what)
{
    static const char *const extra[] = {"after"};
    if (!ef_nlp__yaml_is_map(n))
        return ef_nlp__yaml_fail(&l->y, n, "%s must be a mapping with 'after' (e.g. after: 30m)",
                                 what);
    int rc = parse_block(l, n, &t->blk, B_GOTO | B_CTX, extra, 1, what);
    if (rc)
        return rc;
    yaml_node_t *after = ef_nlp__yaml_get(&l->y, n, "after", NULL);
    if (!after)
        return ef_nlp__yaml_fail(&l->y, n, "%s needs 'after' (seconds of inactivity, e.g. 30m)",
                                 what);
    return parse_duration(l, after, "after", &t->after);
}

/* ---- transitions, slots, states ------------------------------------------- */

static int parse_transitions(ld *l, yaml_node_t *n, ef_fsm__trans **out, size_t *nout,
                             const char *what)
{
    static const char *const triggers[] = {"intent", "entity", "button"};
    if (!ef_nlp__yaml_is_seq(n))
        return ef_nlp__yaml_fail(
            &l->y, n, "%s must be a list of transitions (- intent: ..., goto: ...)", what);
    *out = ef_calloc(ef_nlp__yaml_seq_len(n) ? ef_nlp__yaml_seq_len(n) : 1, sizeof(ef_fsm__trans));
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *tn = ef_nlp__yaml_node(&l->y, *it);
        ef_fsm__trans *t = &(*out)[(*nout)++];
        block_init(&t->blk);
        if (!ef_nlp__yaml_is_map(tn))
            return ef_nlp__yaml_fail(&l->y, tn,
                                     "a transition must be a mapping (intent/entity/button: ..., "
                                     "reply, goto, ...)");
        int rc = parse_block(l, tn, &t->blk, B_GOTO | B_ACTIONS | B_CTX, triggers, 3, "transition");
        if (rc)
            return rc;
        yaml_node_t *v = ef_nlp__yaml_get(&l->y, tn, "intent", NULL);
        if (v) {
            rc = parse_names(l, v, "intent", check_intent, &t->intents, &t->n_intents);
            if (rc)
                return rc;
        }
        v = ef_nlp__yaml_get(&l->y, tn, "entity", NULL);
        if (v) {
            rc = parse_names(l, v, "entity", check_entity, &t->entities, &t->n_entities);
            if (rc)
                return rc;
        }
        v = ef_nlp__yaml_get(&l->y, tn, "button", NULL);
        if (v) {
            rc = parse_names(l, v, "button", check_payload, &t->buttons, &t->n_buttons);
            if (rc)
                return rc;
        }
        if (!t->n_intents && !t->n_entities && !t->n_buttons)
            return ef_nlp__yaml_fail(&l->y, tn,
                                     "transition needs a trigger: intent, entity or button");
    }
    return 0;
}

static int parse_slot(ld *l, yaml_node_t *n, ef_fsm__slot *s, const ef_fsm__state *st)
{
    static const char *const keys[] = {"name",    "entity", "prompt",  "reprompt",
                                       "retries", "keep",   "on_fail", NULL};
    block_init(&s->prompt);
    block_init(&s->reprompt);
    block_init(&s->on_fail);
    s->retries = DEFAULT_SLOT_RETRIES;
    if (!ef_nlp__yaml_is_map(n))
        return ef_nlp__yaml_fail(&l->y, n, "a slot must be a mapping {name, entity, prompt}");
    int rc = ef_nlp__yaml_check_keys(&l->y, n, keys, "slot");
    if (rc)
        return rc;
    yaml_node_t *v = ef_nlp__yaml_get(&l->y, n, "entity", NULL);
    const char *str;
    if (!v)
        return ef_nlp__yaml_fail(&l->y, n, "slot needs 'entity' (the entity type that fills it)");
    rc = get_str(l, v, "entity", &str);
    if (!rc)
        rc = check_entity(l, v, str);
    if (rc)
        return rc;
    s->entity = ef_strdup(str);
    v = ef_nlp__yaml_get(&l->y, n, "name", NULL);
    if (v) {
        rc = get_str(l, v, "slot name", &str);
        if (rc)
            return rc;
    } else {
        str = s->entity;
        v = n;
    }
    rc = check_ctx_key(l, v, str);
    if (rc)
        return rc;
    for (size_t i = 0; st->slots + i < s; i++) {
        if (!strcmp(st->slots[i].name, str))
            return ef_nlp__yaml_fail(&l->y, v, "slot '%s' appears twice in state '%s'", str,
                                     st->name);
    }
    s->name = ef_strdup(str);
    v = ef_nlp__yaml_get(&l->y, n, "prompt", NULL);
    if (!v)
        return ef_nlp__yaml_fail(
            &l->y, n, "slot '%s' has no prompt (what to ask until it is filled)", s->name);
    rc = parse_block(l, v, &s->prompt, B_SHORT, NULL, 0, "prompt");
    if (!rc && !s->prompt.n_replies)
        rc = ef_nlp__yaml_fail(&l->y, v, "prompt of slot '%s' has no reply", s->name);
    if (rc)
        return rc;
    v = ef_nlp__yaml_get(&l->y, n, "reprompt", NULL);
    if (v) {
        rc = parse_block(l, v, &s->reprompt, B_SHORT, NULL, 0, "reprompt");
        if (!rc && !s->reprompt.n_replies)
            rc = ef_nlp__yaml_fail(&l->y, v, "reprompt of slot '%s' has no reply", s->name);
        if (rc)
            return rc;
    }
    v = ef_nlp__yaml_get(&l->y, n, "retries", NULL);
    if (v) {
        rc = parse_int(l, v, "retries", 0, MAX_SLOT_RETRIES, &s->retries);
        if (rc)
            return rc;
    }
    v = ef_nlp__yaml_get(&l->y, n, "keep", NULL);
    if (v) {
        rc = parse_bool(l, v, "keep", &s->keep);
        if (rc)
            return rc;
    }
    v = ef_nlp__yaml_get(&l->y, n, "on_fail", NULL);
    if (v) {
        rc = parse_block(l, v, &s->on_fail, B_GOTO | B_ACTIONS | B_CTX | B_SHORT, NULL, 0,
                         "on_fail");
        if (rc)
            return rc;
    }
    return 0;
}

static int parse_state(ld *l, yaml_node_t *n, ef_fsm__state *st)
{
    static const char *const keys[] = {"on_enter", "transitions", "slots", "on_filled",
                                       "fallback", "timeout",     NULL};
    if (ef_nlp__yaml_is_null(n))
        return 0;
    if (!ef_nlp__yaml_is_map(n))
        return ef_nlp__yaml_fail(
            &l->y, n, "state '%s' must be a mapping (on_enter, transitions, slots, ...)", st->name);
    int rc = ef_nlp__yaml_check_keys(&l->y, n, keys, "state");
    if (rc)
        return rc;
    yaml_node_t *v = ef_nlp__yaml_get(&l->y, n, "on_enter", NULL);
    if (v) {
        rc = parse_block(l, v, &st->on_enter, B_CTX | B_SHORT, NULL, 0, "on_enter");
        if (rc)
            return rc;
    }
    v = ef_nlp__yaml_get(&l->y, n, "transitions", NULL);
    if (v) {
        rc = parse_transitions(l, v, &st->trans, &st->n_trans, "transitions");
        if (rc)
            return rc;
    }
    yaml_node_t *slots = ef_nlp__yaml_get(&l->y, n, "slots", NULL);
    if (slots) {
        if (!ef_nlp__yaml_is_seq(slots) || ef_nlp__yaml_seq_len(slots) == 0)
            return ef_nlp__yaml_fail(&l->y, slots,
                                     "slots must be a non-empty list of {name, entity, prompt}");
        st->slots = ef_calloc(ef_nlp__yaml_seq_len(slots), sizeof(ef_fsm__slot));
        for (yaml_node_item_t *it = slots->data.sequence.items.start;
             it < slots->data.sequence.items.top; it++) {
            ef_fsm__slot *s = &st->slots[st->n_slots++];
            rc = parse_slot(l, ef_nlp__yaml_node(&l->y, *it), s, st);
            if (rc)
                return rc;
        }
    }
    v = ef_nlp__yaml_get(&l->y, n, "on_filled", NULL);
    if (v && !slots)
        return ef_nlp__yaml_fail(&l->y, v, "on_filled in state '%s', which has no slots", st->name);
    if (slots && !v)
        return ef_nlp__yaml_fail(&l->y, slots,
                                 "state '%s' has slots but no on_filled (what to do once filled)",
                                 st->name);
    if (v) {
        rc = parse_block(l, v, &st->on_filled, B_GOTO | B_ACTIONS | B_CTX | B_SHORT, NULL, 0,
                         "on_filled");
        if (rc)
            return rc;
    }
    v = ef_nlp__yaml_get(&l->y, n, "fallback", NULL);
    if (v) {
        rc = parse_block(l, v, &st->fallback, B_GOTO | B_ACTIONS | B_CTX | B_SHORT, NULL, 0,
                         "fallback");
        if (rc)
            return rc;
    }
    v = ef_nlp__yaml_get(&l->y, n, "timeout", NULL);
    if (v) {
        rc = parse_timeout(l, v, &st->timeout, "timeout");
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- first pass: names ------------------------------------------------------ */

/* A state name must fit conversations.current_state (EF_FSM_STATE_NAME_MAX
 * characters; PostgreSQL counts characters, not bytes). */
static int check_state_name(ld *l, yaml_node_t *k)
{
    const unsigned char *name = (const unsigned char *)ef_nlp__yaml_sval(k);
    size_t chars = 0, shown = 0; /* bytes of the first 40 characters */
    for (size_t i = 0; name[i]; i++) {
        if ((name[i] & 0xC0) == 0x80)
            continue;
        if (chars++ == 40)
            shown = i;
    }
    if (chars <= EF_FSM_STATE_NAME_MAX)
        return 0;
    return ef_nlp__yaml_fail(&l->y, k,
                             "state name '%.*s...' is %zu characters long; conversations store "
                             "at most %d (conversations.current_state)",
                             (int)shown, (const char *)name, chars, EF_FSM_STATE_NAME_MAX);
}

static int collect_states(ld *l, yaml_node_t *states)
{
    ef_fsm_def *d = l->def;
    if (!ef_nlp__yaml_is_map(states) || ef_nlp__yaml_map_len(states) == 0)
        return ef_nlp__yaml_fail(&l->y, states,
                                 "states must be a non-empty mapping of state name -> state");
    int rc = ef_nlp__yaml_check_keys(&l->y, states, NULL, "states");
    if (rc)
        return rc;
    d->states = ef_calloc(ef_nlp__yaml_map_len(states), sizeof(ef_fsm__state));
    l->state_keys = ef_calloc(ef_nlp__yaml_map_len(states), sizeof(yaml_node_t *));
    for (yaml_node_pair_t *p = states->data.mapping.pairs.start; p < states->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = ef_nlp__yaml_node(&l->y, p->key);
        rc = check_state_name(l, k);
        if (rc)
            return rc;
        ef_fsm__state *st = &d->states[d->n_states];
        block_init(&st->on_enter);
        block_init(&st->on_filled);
        block_init(&st->fallback);
        block_init(&st->timeout.blk);
        st->name = ef_strdup(ef_nlp__yaml_sval(k));
        l->state_keys[d->n_states] = k;
        d->n_states++;
    }
    return 0;
}

/* Slot names are needed before any template is checked ({order_number}). A
 * malformed slot is skipped here and reported by parse_slot. */
static void collect_slot_names(ld *l, yaml_node_t *states)
{
    ef_fsm_def *d = l->def;
    for (yaml_node_pair_t *p = states->data.mapping.pairs.start; p < states->data.mapping.pairs.top;
         p++) {
        yaml_node_t *st = ef_nlp__yaml_node(&l->y, p->value);
        yaml_node_t *slots =
            ef_nlp__yaml_is_map(st) ? ef_nlp__yaml_get(&l->y, st, "slots", NULL) : NULL;
        if (!ef_nlp__yaml_is_seq(slots))
            continue;
        for (yaml_node_item_t *it = slots->data.sequence.items.start;
             it < slots->data.sequence.items.top; it++) {
            yaml_node_t *sn = ef_nlp__yaml_node(&l->y, *it);
            if (!ef_nlp__yaml_is_map(sn))
                continue;
            yaml_node_t *name = ef_nlp__yaml_get(&l->y, sn, "name", NULL);
            if (!name)
                name = ef_nlp__yaml_get(&l->y, sn, "entity", NULL);
            if (!ef_nlp__yaml_is_scalar(name) || ef_nlp__yaml_is_null(name) ||
                in_list(ef_nlp__yaml_sval(name), (const char *const *)d->slot_names,
                        d->n_slot_names))
                continue;
            d->slot_names = ef_realloc(d->slot_names, (d->n_slot_names + 1) * sizeof(char *));
            d->slot_names[d->n_slot_names++] = ef_strdup(ef_nlp__yaml_sval(name));
        }
    }
}

/* The bot's languages live outside the fsm section, in `bot: {languages:
 * [ru, en]}` (docs/bot-definition.md); the first is the default. */
static int collect_langs(ld *l)
{
    yaml_node_t *root = yaml_document_get_root_node(l->y.doc);
    yaml_node_t *bot =
        ef_nlp__yaml_is_map(root) ? ef_nlp__yaml_get(&l->y, root, "bot", NULL) : NULL;
    yaml_node_t *v =
        ef_nlp__yaml_is_map(bot) ? ef_nlp__yaml_get(&l->y, bot, "languages", NULL) : NULL;
    if (!v)
        return 0;
    char **codes = NULL;
    size_t n = 0;
    int rc = parse_names(l, v, "languages", NULL, &codes, &n);
    for (size_t i = 0; !rc && i < n; i++) {
        if (!lang_ok(codes[i]))
            rc = ef_nlp__yaml_fail(
                &l->y, v, "languages: '%s' is not a language code (ru, en, pt-BR, ...)", codes[i]);
    }
    if (rc) {
        for (size_t i = 0; i < n; i++)
            ef_free(codes[i]);
        ef_free(codes);
        return rc;
    }
    l->def->langs = codes;
    l->def->n_langs = n;
    l->langs_declared = true;
    return 0;
}

/* ---- whole-definition checks ---------------------------------------------- */

static bool trans_handles(const ef_fsm__trans *t, size_t n, const char *payload)
{
    for (size_t i = 0; i < n; i++) {
        if (in_list(payload, (const char *const *)t[i].buttons, t[i].n_buttons))
            return true;
    }
    return false;
}

static int check_buttons_handled(ld *l)
{
    const ef_fsm_def *d = l->def;
    for (size_t u = 0; u < l->n_used; u++) {
        const char *p = l->used[u].payload;
        bool ok = trans_handles(d->global, d->n_global, p);
        for (size_t s = 0; !ok && s < d->n_states; s++)
            ok = trans_handles(d->states[s].trans, d->states[s].n_trans, p);
        if (!ok)
            return ef_nlp__yaml_fail(
                &l->y, l->used[u].node,
                "button payload '%s' is handled by no transition (add `- button: %s` "
                "to a state or to global)",
                p, p);
    }
    return 0;
}

static void reach(bool *seen, const ef_fsm__block *b)
{
    if (b->present && b->go >= 0)
        seen[b->go] = true;
}

static void reach_state(bool *seen, const ef_fsm__state *st)
{
    for (size_t i = 0; i < st->n_trans; i++)
        reach(seen, &st->trans[i].blk);
    for (size_t i = 0; i < st->n_slots; i++)
        reach(seen, &st->slots[i].on_fail);
    reach(seen, &st->on_filled);
    reach(seen, &st->fallback);
    reach(seen, &st->timeout.blk);
}

static int check_reachable(ld *l)
{
    const ef_fsm_def *d = l->def;
    bool *seen = ef_calloc(d->n_states, sizeof(bool));
    bool *done = ef_calloc(d->n_states, sizeof(bool));
    seen[d->initial] = true;
    for (size_t i = 0; i < d->n_global; i++)
        reach(seen, &d->global[i].blk);
    reach(seen, &d->fallback);
    reach(seen, &d->repeated);
    reach(seen, &d->timeout.blk);
    bool grew = true;
    while (grew) {
        grew = false;
        for (size_t s = 0; s < d->n_states; s++) {
            if (seen[s] && !done[s]) {
                done[s] = true;
                grew = true;
                reach_state(seen, &d->states[s]);
            }
        }
    }
    int rc = 0;
    for (size_t s = 0; s < d->n_states && !rc; s++) {
        if (!seen[s])
            rc =
                ef_nlp__yaml_fail(&l->y, l->state_keys[s],
                                  "state '%s' is unreachable: no goto leads to it from the initial "
                                  "state '%s'",
                                  d->states[s].name, d->states[d->initial].name);
    }
    ef_free(seen);
    ef_free(done);
    return rc;
}

/* Entering a state with slots may fill them from the same message and run
 * on_filled at once; a loop of such gotos would never end. */
static int check_filled_loops(ld *l)
{
    const ef_fsm_def *d = l->def;
    for (size_t s = 0; s < d->n_states; s++) {
        size_t cur = s;
        for (size_t hop = 0; hop < d->n_states; hop++) {
            const ef_fsm__state *st = &d->states[cur];
            const ef_fsm__block *b = &st->on_filled;
            if (!st->n_slots || !b->present || b->go < 0 || b->escalate || b->close)
                break;
            cur = (size_t)b->go;
            if (cur == s)
                return ef_nlp__yaml_fail(
                    &l->y, l->state_keys[s],
                    "on_filled gotos starting at state '%s' lead back to it: one "
                    "message could loop through them forever",
                    d->states[s].name);
        }
    }
    return 0;
}

/* ---- entry point -------------------------------------------------------------- */

/* The languages, the states (names first, so that any goto can be
 * resolved) and the initial state. */
static int load_states(ld *l, yaml_node_t *fsm_node)
{
    ef_fsm_def *d = l->def;
    int rc = collect_langs(l);
    if (rc)
        return rc;
    yaml_node_t *states = ef_nlp__yaml_get(&l->y, fsm_node, "states", NULL);
    if (!states)
        return ef_nlp__yaml_fail(&l->y, fsm_node, "fsm has no states");
    rc = collect_states(l, states);
    if (rc)
        return rc;
    collect_slot_names(l, states);
    const char *initial = DEFAULT_INITIAL;
    yaml_node_t *initial_node = ef_nlp__yaml_get(&l->y, fsm_node, "initial", NULL);
    if (initial_node) {
        rc = get_str(l, initial_node, "initial", &initial);
        if (rc)
            return rc;
    }
    long init_idx = find_state(d, initial);
    if (init_idx < 0)
        return initial_node
                   ? ef_nlp__yaml_fail(&l->y, initial_node,
                                       "initial state '%s' is not among the states", initial)
                   : ef_nlp__yaml_fail(
                         &l->y, states,
                         "no initial state: add a state named 'initial' or set fsm.initial");
    d->initial = (size_t)init_idx;
    return 0;
}

/* One top-level section of fsm (key: its name, v: its value). */
/* fsm.handoff: a text (or language map) without placeholders: an operator
 * taking a conversation over sends it as is. */
static int parse_handoff(ld *l, yaml_node_t *v)
{
    ef_fsm__text *t = &l->def->handoff;
    int rc = parse_text(l, v, t, "handoff");
    for (size_t i = 0; !rc && i < t->n; i++)
        if (strpbrk(t->tpl[i], "{}"))
            rc = ef_nlp__yaml_fail(&l->y, v, "handoff is sent as is: no {placeholders}");
    return rc;
}

/* No fsm.handoff: the default in each of the bot's languages. */
static void default_handoff(ef_fsm_def *d)
{
    ef_fsm__text *t = &d->handoff;
    if (t->n)
        return;
    t->lang = ef_calloc(d->n_langs ? d->n_langs : 1, sizeof(char *));
    t->tpl = ef_calloc(d->n_langs ? d->n_langs : 1, sizeof(char *));
    for (size_t i = 0; i < d->n_langs; i++) {
        t->lang[i] = ef_strdup(d->langs[i]);
        t->tpl[i] = ef_strdup(strcmp(d->langs[i], "ru") ? "Transferring you to an operator…"
                                                        : "Передаю вас оператору…");
    }
    t->n = d->n_langs;
}

static int parse_section(ld *l, const char *key, yaml_node_t *v)
{
    static const char *const after_key[] = {"after"};
    ef_fsm_def *d = l->def;
    int rc = 0;
    if (!strcmp(key, "global")) {
        rc = parse_transitions(l, v, &d->global, &d->n_global, "global");
    } else if (!strcmp(key, "fallback")) {
        rc = parse_block(l, v, &d->fallback, B_GOTO | B_ACTIONS | B_CTX | B_SHORT, NULL, 0,
                         "fallback");
    } else if (!strcmp(key, "repeated_fallback")) {
        rc = parse_block(l, v, &d->repeated, B_GOTO | B_ACTIONS | B_CTX | B_SHORT, after_key, 1,
                         "repeated_fallback");
        yaml_node_t *after =
            ef_nlp__yaml_is_map(v) ? ef_nlp__yaml_get(&l->y, v, "after", NULL) : NULL;
        if (!rc && after)
            rc = parse_int(l, after, "repeated_fallback.after", 1, MAX_REPEATED_AFTER,
                           &d->repeated_after);
    } else if (!strcmp(key, "timeout")) {
        rc = parse_timeout(l, v, &d->timeout, "timeout");
    } else if (!strcmp(key, "handoff")) {
        rc = parse_handoff(l, v);
    } else if (!strcmp(key, "states")) {
        size_t i = 0;
        for (yaml_node_pair_t *sp = v->data.mapping.pairs.start;
             sp < v->data.mapping.pairs.top && !rc; sp++, i++)
            rc = parse_state(l, ef_nlp__yaml_node(&l->y, sp->value), &d->states[i]);
    }
    return rc;
}

/* Texts are checked in file order so the first error is the first one a
 * reader meets. Languages declared nowhere are learnt from the texts, so
 * the default language is the one the first text starts with. */
static int parse_sections(ld *l, yaml_node_t *fsm_node)
{
    for (yaml_node_pair_t *p = fsm_node->data.mapping.pairs.start;
         p < fsm_node->data.mapping.pairs.top; p++) {
        const char *key = ef_nlp__yaml_sval(ef_nlp__yaml_node(&l->y, p->key));
        int rc = parse_section(l, key, ef_nlp__yaml_node(&l->y, p->value));
        if (rc)
            return rc;
    }
    return 0;
}

/* What the whole definition must have once every section is read. */
static int check_complete(ld *l, yaml_node_t *fsm_node)
{
    const ef_fsm_def *d = l->def;
    if (!d->fallback.present)
        return ef_nlp__yaml_fail(&l->y, fsm_node,
                                 "fsm has no fallback (what to say when nothing matched)");
    if (!d->repeated.present)
        return ef_nlp__yaml_fail(&l->y, fsm_node,
                                 "fsm has no repeated_fallback (what to do after %d fallbacks in "
                                 "a row, e.g. offer an operator)",
                                 DEFAULT_REPEATED_AFTER);
    if (d->n_langs == 0)
        return ef_nlp__yaml_fail(&l->y, fsm_node,
                                 "the bot has no language: add `bot: {languages: [ru, en]}`");
    int rc = check_buttons_handled(l);
    if (!rc)
        rc = check_reachable(l);
    if (!rc)
        rc = check_filled_loops(l);
    return rc;
}

int ef_fsm_def_from_yaml(yaml_document_t *doc, yaml_node_t *fsm_node, const char *path,
                         const char *const *intent_names, size_t n_intents,
                         const char *const *entity_types, size_t n_entity_types, ef_fsm_def **out,
                         char *err, size_t errlen)
{
    static const char *const top_keys[] = {"initial",           "states",  "global",  "fallback",
                                           "repeated_fallback", "timeout", "handoff", NULL};
    if (err && errlen)
        err[0] = '\0';
    ld l = {.y = {.doc = doc, .path = path, .err = err, .errlen = errlen},
            .intents = intent_names,
            .n_intents = intent_names ? n_intents : 0,
            .etypes = entity_types,
            .n_etypes = entity_types ? n_entity_types : 0};
    if (!doc || !fsm_node || !out)
        return ef_nlp__yaml_fail(&l.y, fsm_node, "no fsm section given");
    ef_fsm_def *d = ef_calloc(1, sizeof(*d));
    l.def = d;
    block_init(&d->fallback);
    block_init(&d->repeated);
    block_init(&d->timeout.blk);
    d->repeated_after = DEFAULT_REPEATED_AFTER;
    int rc;
    if (!ef_nlp__yaml_is_map(fsm_node))
        rc = ef_nlp__yaml_fail(&l.y, fsm_node,
                               "fsm must be a mapping (initial, states, global, fallback, ...)");
    else
        rc = ef_nlp__yaml_check_keys(&l.y, fsm_node, top_keys, "fsm");
    if (!rc)
        rc = load_states(&l, fsm_node);
    if (!rc)
        rc = parse_sections(&l, fsm_node);
    if (!rc)
        rc = check_complete(&l, fsm_node);
    if (!rc)
        default_handoff(d);
    ef_free(l.used);
    ef_free(l.state_keys);
    if (rc) {
        ef_fsm_def_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* ---- freeing and accessors ------------------------------------------------ */

static void free_strs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ef_free(v[i]);
    ef_free(v);
}

static void free_text(ef_fsm__text *t)
{
    free_strs(t->lang, t->n);
    free_strs(t->tpl, t->n);
}

static void free_block(ef_fsm__block *b)
{
    for (size_t i = 0; i < b->n_replies; i++)
        free_text(&b->replies[i]);
    ef_free(b->replies);
    for (size_t i = 0; i < b->n_buttons; i++) {
        free_text(&b->buttons[i].title);
        ef_free(b->buttons[i].payload);
    }
    ef_free(b->buttons);
    for (size_t i = 0; i < b->n_set; i++) {
        ef_free(b->set[i].key);
        ef_free(b->set[i].tpl);
    }
    ef_free(b->set);
    free_strs(b->clear, b->n_clear);
    free_strs(b->incr, b->n_incr);
}

static void free_trans(ef_fsm__trans *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free_strs(t[i].intents, t[i].n_intents);
        free_strs(t[i].entities, t[i].n_entities);
        free_strs(t[i].buttons, t[i].n_buttons);
        free_block(&t[i].blk);
    }
    ef_free(t);
}

void ef_fsm_def_free(ef_fsm_def *def)
{
    if (!def)
        return;
    free_text(&def->handoff);
    for (size_t s = 0; s < def->n_states; s++) {
        ef_fsm__state *st = &def->states[s];
        ef_free(st->name);
        free_block(&st->on_enter);
        free_trans(st->trans, st->n_trans);
        for (size_t i = 0; i < st->n_slots; i++) {
            ef_free(st->slots[i].name);
            ef_free(st->slots[i].entity);
            free_block(&st->slots[i].prompt);
            free_block(&st->slots[i].reprompt);
            free_block(&st->slots[i].on_fail);
        }
        ef_free(st->slots);
        free_block(&st->on_filled);
        free_block(&st->fallback);
        free_block(&st->timeout.blk);
    }
    ef_free(def->states);
    free_trans(def->global, def->n_global);
    free_block(&def->fallback);
    free_block(&def->repeated);
    free_block(&def->timeout.blk);
    free_strs(def->langs, def->n_langs);
    free_strs(def->slot_names, def->n_slot_names);
    ef_free(def);
}

const char *ef_fsm_def_initial(const ef_fsm_def *def)
{
    return def->states[def->initial].name;
}

const char *ef_fsm_def_default_lang(const ef_fsm_def *def)
{
    return def->langs[0];
}

bool ef_fsm_def_has_state(const ef_fsm_def *def, const char *name)
{
    return def && name && find_state(def, name) >= 0;
}

const char *ef_fsm_def_handoff(const ef_fsm_def *def, const char *lang)
{
    const ef_fsm__text *t = &def->handoff;
    for (size_t i = 0; lang && i < t->n; i++)
        if (t->lang[i] && !strcmp(t->lang[i], lang))
            return t->tpl[i];
    for (size_t i = 0; def->n_langs && i < t->n; i++)
        if (t->lang[i] && !strcmp(t->lang[i], def->langs[0]))
            return t->tpl[i];
    return t->n ? t->tpl[0] : "Передаю вас оператору…";
}
