/*
 * fsm.c -- one step of the conversation state machine:
 * (state, status, context, match) -> (state, context patch, replies, actions).
 *
 * Pure: everything comes from the definition and the input, everything goes
 * to the output. The working context is the input context seen through the
 * patch being built, so later parts of one step see earlier changes (a slot
 * filled by this message is already visible to on_filled's reply).
 *
 * The order in which one message is handled is described in fsm.h and in
 * docs/fsm.md; process() below follows it line by line.
 */
#include "nlp/fsm_int.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define WHY_MAX 1024

/* How a block that does not leave the state ends. */
enum {
    M_PLAIN = 0, /* nothing more */
    M_REMIND,    /* ask the first missing slot again (a transition stayed) */
    M_TIMEOUT    /* entering a state on timeout: the message comes after */
};

typedef struct run {
    const ef_fsm_def *def;
    const ef_fsm_input *in;
    struct json_object *base; /* borrowed input context, may be NULL */
    bool base_lang_only;      /* a closed conversation: only "lang" survives */
    struct json_object *patch;
    size_t state;
    ef_fsm_reply *replies;
    size_t n_replies;
    size_t cap_replies;
    bool status_changed;
    ef_fsm_status status;
    bool escalate;
    bool close;
    bool stop; /* escalated or closed: nothing more happens */
    int hops;
    int rc;
    ef_buf why;
    char key[EF_FSM__NAME_MAX + 1]; /* scratch for template lookups */
} run;

const char *ef_fsm_status_name(ef_fsm_status st)
{
    switch (st) {
    case EF_FSM_ACTIVE:
        return "active";
    case EF_FSM_ESCALATED:
        return "escalated";
    case EF_FSM_PAUSED:
        return "paused";
    case EF_FSM_CLOSED:
        return "closed";
    }
    return "active";
}

int ef_fsm_status_parse(const char *s, ef_fsm_status *out)
{
    static const ef_fsm_status all[] = {EF_FSM_ACTIVE, EF_FSM_ESCALATED, EF_FSM_PAUSED,
                                        EF_FSM_CLOSED};
    if (!s)
        return EF_EINVAL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (!strcmp(s, ef_fsm_status_name(all[i]))) {
            *out = all[i];
            return 0;
        }
    }
    return EF_EINVAL;
}

/* ---- the working context ---------------------------------------------------- */

static bool base_has(const run *r, const char *key)
{
    return r->base && json_object_object_get_ex(r->base, key, NULL);
}

/* The current value of key, or NULL when it has none (absent or JSON null). */
static struct json_object *ctx_get(const run *r, const char *key)
{
    struct json_object *v = NULL;
    if (json_object_object_get_ex(r->patch, key, &v))
        return v;
    if (!r->base || (r->base_lang_only && strcmp(key, "lang")))
        return NULL;
    if (json_object_object_get_ex(r->base, key, &v))
        return v;
    return NULL;
}

/* A value counts as filled when it is there and not an empty string. */
static bool ctx_filled(const run *r, const char *key)
{
    struct json_object *v = ctx_get(r, key);
    if (!v)
        return false;
    return !json_object_is_type(v, json_type_string) || json_object_get_string_len(v) > 0;
}

static void ctx_put(run *r, const char *key, struct json_object *v)
{
    json_object_object_add(r->patch, key, v);
}

static void ctx_del(run *r, const char *key)
{
    if (base_has(r, key))
        json_object_object_add(r->patch, key, NULL);
    else
        json_object_object_del(r->patch, key);
}

static int64_t ctx_int(const run *r, const char *key)
{
    struct json_object *v = ctx_get(r, key);
    if (!v)
        return 0;
    if (json_object_is_type(v, json_type_int))
        return json_object_get_int64(v);
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        int64_t n = 0;
        bool neg = *s == '-';
        s += neg;
        while (*s >= '0' && *s <= '9' && n < INT64_MAX / 10 - 10)
            n = n * 10 + (*s++ - '0');
        return *s ? 0 : neg ? -n : n;
    }
    return 0;
}

/* ---- explanations ------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void why(run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char line[256];
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        (void)ef_buf_append(&r->why, line, strlen(line)); /* a full buffer just truncates */
}

static const char *state_name(const run *r, size_t s)
{
    return r->def->states[s].name;
}

/* ---- languages and templates --------------------------------------------- */

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* "en-US" / "en_us" / "EN" against a bot language code "en". */
static bool lang_matches(const char *tag, const char *code)
{
    size_t i = 0;
    while (tag[i] && code[i] && lower(tag[i]) == lower(code[i]))
        i++;
    return !code[i] && (!tag[i] || tag[i] == '-' || tag[i] == '_');
}

/* The bot language the conversation speaks: the context's "lang", else the
 * client's language, when either is one of the bot's; else the default. */
static const char *conv_lang(const run *r)
{
    const ef_fsm_def *d = r->def;
    const char *cand[2] = {NULL, r->in->lang};
    struct json_object *v = ctx_get(r, "lang");
    if (v && json_object_is_type(v, json_type_string))
        cand[0] = json_object_get_string(v);
    for (size_t c = 0; c < 2; c++) {
        if (!cand[c] || !*cand[c])
            continue;
        for (size_t i = 0; i < d->n_langs; i++) {
            if (lang_matches(cand[c], d->langs[i]))
                return d->langs[i];
        }
    }
    return d->langs[0];
}

/* The conversation keeps the first bot language a message names: a later
 * "A-1042" (no words to tell a language by) is still answered in it. */
static void remember_lang(run *r)
{
    const ef_fsm_def *d = r->def;
    if (!r->in->lang || ctx_get(r, "lang"))
        return;
    for (size_t i = 0; i < d->n_langs; i++) {
        if (lang_matches(r->in->lang, d->langs[i])) {
            ctx_put(r, "lang", json_object_new_string(d->langs[i]));
            return;
        }
    }
}

static const char *pick(const run *r, const ef_fsm__text *t)
{
    if (t->n == 1 && !t->lang[0])
        return t->tpl[0];
    const char *want = conv_lang(r);
    for (size_t i = 0; i < t->n; i++) {
        if (t->lang[i] && !strcmp(t->lang[i], want))
            return t->tpl[i];
    }
    for (size_t i = 0; i < t->n; i++) { /* the loader made sure it is there */
        if (t->lang[i] && !strcmp(t->lang[i], r->def->langs[0]))
            return t->tpl[i];
    }
    return t->tpl[0];
}

static const char *entity_value(const run *r, const char *type)
{
    for (size_t i = 0; i < r->in->n_entities; i++) {
        const ef_fsm_entity *e = &r->in->entities[i];
        if (e->type && e->value && *e->value && !strcmp(e->type, type))
            return e->value;
    }
    return NULL;
}

static bool is_slot_name(const ef_fsm_def *d, const char *name)
{
    for (size_t i = 0; i < d->n_slot_names; i++) {
        if (!strcmp(d->slot_names[i], name))
            return true;
    }
    return false;
}

static const char *json_text(struct json_object *v)
{
    return v ? json_object_get_string(v) : NULL;
}

/* {order_number}: a slot's value lives in the context under the slot's name;
 * an entity that is no slot comes from this message first. */
static const char *tpl_lookup(void *ud, const char *name, size_t len, bool is_context)
{
    run *r = ud;
    if (len >= sizeof(r->key))
        return NULL;
    memcpy(r->key, name, len);
    r->key[len] = '\0';
    if (is_context || is_slot_name(r->def, r->key)) {
        const char *v = json_text(ctx_get(r, r->key));
        return (v && *v) || is_context ? v : entity_value(r, r->key);
    }
    const char *v = entity_value(r, r->key);
    return v ? v : json_text(ctx_get(r, r->key));
}

/* Renders a template into a new string, or NULL with r->rc set. */
static char *render(run *r, const char *tpl)
{
    ef_buf b;
    ef_buf_init(&b, EF_FSM__TEXT_MAX);
    int rc = ef_fsm__tpl_render(tpl, tpl_lookup, r, &b);
    if (!rc)
        rc = ef_buf_append(&b, "", 0); /* data is non-NULL even when empty */
    if (rc) {
        ef_buf_cleanup(&b);
        r->rc = rc;
        return NULL;
    }
    return ef_buf_steal(&b, NULL);
}

/* ---- what a block does ---------------------------------------------------- */

static void add_reply(run *r, char *text, ef_fsm_button *buttons, size_t n_buttons)
{
    if (r->n_replies == r->cap_replies) {
        r->cap_replies = r->cap_replies ? 2 * r->cap_replies : 4;
        r->replies = ef_realloc(r->replies, r->cap_replies * sizeof(ef_fsm_reply));
    }
    ef_fsm_reply *rep = &r->replies[r->n_replies++];
    rep->text = text;
    rep->buttons = buttons;
    rep->n_buttons = n_buttons;
}

static void free_buttons(ef_fsm_button *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ef_free(b[i].title);
        ef_free(b[i].payload);
    }
    ef_free(b);
}

/* Sends the block's replies, its buttons on the last one. A reply whose text
 * renders empty is not sent (a platform would refuse it). */
static void emit_replies(run *r, const ef_fsm__block *b)
{
    for (size_t i = 0; i < b->n_replies && !r->rc; i++) {
        char *text = render(r, pick(r, &b->replies[i]));
        if (!text)
            return;
        ef_fsm_button *btns = NULL;
        size_t n_btns = 0;
        if (i + 1 == b->n_replies && b->n_buttons) {
            btns = ef_calloc(b->n_buttons, sizeof(ef_fsm_button));
            for (; n_btns < b->n_buttons; n_btns++) {
                btns[n_btns].title = render(r, pick(r, &b->buttons[n_btns].title));
                if (!btns[n_btns].title)
                    break;
                btns[n_btns].payload = ef_strdup(b->buttons[n_btns].payload);
            }
        }
        if (r->rc || !*text) {
            ef_free(text);
            free_buttons(btns, n_btns);
            continue;
        }
        add_reply(r, text, btns, n_btns);
    }
}

/* set (values rendered against the context before the block), clear, incr. */
static void apply_ctx(run *r, const ef_fsm__block *b)
{
    if (r->rc)
        return;
    char **vals = b->n_set ? ef_calloc(b->n_set, sizeof(char *)) : NULL;
    for (size_t i = 0; i < b->n_set; i++) {
        vals[i] = render(r, b->set[i].tpl);
        if (!vals[i])
            break;
    }
    for (size_t i = 0; i < b->n_set && !r->rc; i++)
        ctx_put(r, b->set[i].key, json_object_new_string(vals[i]));
    for (size_t i = 0; i < b->n_set; i++)
        ef_free(vals[i]);
    ef_free(vals);
    if (r->rc)
        return;
    for (size_t i = 0; i < b->n_clear; i++)
        ctx_del(r, b->clear[i]);
    for (size_t i = 0; i < b->n_incr; i++)
        ctx_put(r, b->incr[i], json_object_new_int64(ctx_int(r, b->incr[i]) + 1));
}

static const ef_fsm__slot *first_missing(const run *r, const ef_fsm__state *st)
{
    for (size_t i = 0; i < st->n_slots; i++) {
        if (!ctx_filled(r, st->slots[i].name))
            return &st->slots[i];
    }
    return NULL;
}

static void ask(run *r, const ef_fsm__slot *s, bool again)
{
    const ef_fsm__block *b = again && s->reprompt.present ? &s->reprompt : &s->prompt;
    why(r, "; ask slot %s%s", s->name, again ? " again" : "");
    emit_replies(r, b);
}

/* Fills the state's missing slots from the message's entities. */
static size_t fill_slots(run *r, const ef_fsm__state *st)
{
    size_t filled = 0;
    for (size_t i = 0; i < st->n_slots; i++) {
        const ef_fsm__slot *s = &st->slots[i];
        if (ctx_filled(r, s->name))
            continue;
        const char *v = entity_value(r, s->entity);
        if (!v)
            continue;
        ctx_put(r, s->name, json_object_new_string(v));
        why(r, "; slot %s filled", s->name);
        filled++;
    }
    return filled;
}

static void run_block(run *r, const ef_fsm__block *b, int mode);

/* All slots there: on_filled. Else ask for the first missing one. */
static void after_slots(run *r, const ef_fsm__state *st)
{
    const ef_fsm__slot *m = first_missing(r, st);
    if (m) {
        ask(r, m, false);
        return;
    }
    why(r, "; all slots filled -> on_filled (line %d)", st->on_filled.line);
    run_block(r, &st->on_filled, M_PLAIN);
}

static void enter(run *r, size_t s, bool from_message)
{
    if (++r->hops > EF_FSM__MAX_HOPS) {
        r->rc = EF_ELIMIT;
        return;
    }
    const ef_fsm__state *st = &r->def->states[s];
    r->state = s;
    why(r, "; enter %s", st->name);
    ctx_del(r, EF_FSM__KEY_RETRIES);
    /* Slots are asked afresh on every entry, unless they keep their value. */
    for (size_t i = 0; i < st->n_slots; i++) {
        if (!st->slots[i].keep)
            ctx_del(r, st->slots[i].name);
    }
    if (st->on_enter.present)
        run_block(r, &st->on_enter, M_PLAIN);
    if (!from_message || !st->n_slots || r->rc)
        return;
    fill_slots(r, st);
    after_slots(r, st);
}

static void set_status(run *r, ef_fsm_status st)
{
    r->status = st;
    r->status_changed = true;
    r->stop = true;
}

static void run_block(run *r, const ef_fsm__block *b, int mode)
{
    if (r->rc)
        return;
    emit_replies(r, b);
    apply_ctx(r, b);
    if (r->rc)
        return;
    if (b->escalate || b->close) {
        if (b->go >= 0)
            r->state = (size_t)b->go;
        /* Going to an operator with nothing said: the hand-off message. */
        if (b->escalate && r->n_replies == 0 && r->def->handoff.n) {
            char *text = render(r, pick(r, &r->def->handoff));
            if (text && *text)
                add_reply(r, text, NULL, 0);
            else
                ef_free(text);
        }
        r->escalate = b->escalate;
        r->close = b->close;
        /* Whoever takes over next (an operator handing back, a new
         * conversation) starts without the bot's streaks. */
        ctx_del(r, EF_FSM__KEY_FALLBACKS);
        ctx_del(r, EF_FSM__KEY_RETRIES);
        why(r, "; %s", b->escalate ? "escalate" : "close");
        set_status(r, b->escalate ? EF_FSM_ESCALATED : EF_FSM_CLOSED);
        return;
    }
    if (b->go >= 0) {
        enter(r, (size_t)b->go, mode != M_TIMEOUT);
        return;
    }
    if (mode == M_REMIND) {
        const ef_fsm__slot *m = first_missing(r, &r->def->states[r->state]);
        if (m)
            ask(r, m, false);
    }
}

/* ---- handling one message ------------------------------------------------------ */

static bool listed(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(list[i], s))
            return true;
    }
    return false;
}

static const ef_fsm__trans *by_button(const ef_fsm__trans *t, size_t n, const char *payload)
{
    for (size_t i = 0; payload && i < n; i++) {
        if (listed(t[i].buttons, t[i].n_buttons, payload))
            return &t[i];
    }
    return NULL;
}

static const ef_fsm__trans *by_intent(const ef_fsm__trans *t, size_t n, const char *intent)
{
    for (size_t i = 0; intent && i < n; i++) {
        if (listed(t[i].intents, t[i].n_intents, intent))
            return &t[i];
    }
    return NULL;
}

static const ef_fsm__trans *by_entity(const run *r, const ef_fsm__trans *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < t[i].n_entities; k++) {
            if (entity_value(r, t[i].entities[k]))
                return &t[i];
        }
    }
    return NULL;
}

static void reset_fallbacks(run *r)
{
    ctx_del(r, EF_FSM__KEY_FALLBACKS);
}

static void fire(run *r, const ef_fsm__trans *t, const char *where, const char *kind,
                 const char *what)
{
    reset_fallbacks(r);
    why(r, "; %s %s %s (line %d)", where, kind, what, t->blk.line);
    run_block(r, &t->blk, M_REMIND);
}

static void process(run *r)
{
    const ef_fsm_def *d = r->def;
    const ef_fsm__state *st = &d->states[r->state];
    const char *button = r->in->button && *r->in->button ? r->in->button : NULL;
    const char *intent = r->in->intent;
    if (intent && (!*intent || !strcmp(intent, "fallback")))
        intent = NULL;

    /* 1. A pressed button: the state's, then a global one. */
    const ef_fsm__trans *t = by_button(st->trans, st->n_trans, button);
    if (t) {
        fire(r, t, "state", "button", button);
        return;
    }
    t = by_button(d->global, d->n_global, button);
    if (t) {
        fire(r, t, "global", "button", button);
        return;
    }
    /* 2. The state's own intent transitions. */
    t = by_intent(st->trans, st->n_trans, intent);
    if (t) {
        fire(r, t, "state", "intent", intent);
        return;
    }
    /* 3. The state's slots, from the message's entities. */
    if (first_missing(r, st) && fill_slots(r, st)) {
        reset_fallbacks(r);
        ctx_del(r, EF_FSM__KEY_RETRIES);
        after_slots(r, st);
        return;
    }
    /* 4. The state's entity transitions. */
    t = by_entity(r, st->trans, st->n_trans);
    if (t) {
        fire(r, t, "state", "entity", "transition");
        return;
    }
    /* 5. and 6. Global intent, then global entity transitions. */
    t = by_intent(d->global, d->n_global, intent);
    if (t) {
        fire(r, t, "global", "intent", intent);
        return;
    }
    t = by_entity(r, d->global, d->n_global);
    if (t) {
        fire(r, t, "global", "entity", "transition");
        return;
    }
    /* 7. A slot still missing: ask again, up to its retries. */
    const ef_fsm__slot *m = first_missing(r, st);
    if (m) {
        reset_fallbacks(r);
        int64_t tries = ctx_int(r, EF_FSM__KEY_RETRIES) + 1;
        if (tries <= m->retries) {
            ctx_put(r, EF_FSM__KEY_RETRIES, json_object_new_int64(tries));
            ask(r, m, true);
            return;
        }
        ctx_del(r, EF_FSM__KEY_RETRIES);
        const ef_fsm__block *b = m->on_fail.present ? &m->on_fail : &d->repeated;
        why(r, "; slot %s not given after %d re-asks -> %s (line %d)", m->name, m->retries,
            m->on_fail.present ? "on_fail" : "repeated_fallback", b->line);
        run_block(r, b, M_PLAIN);
        return;
    }
    /* 8. Nothing understood here: fallback, or the repeated fallback. */
    int64_t streak = ctx_int(r, EF_FSM__KEY_FALLBACKS) + 1;
    ctx_put(r, EF_FSM__KEY_FALLBACKS, json_object_new_int64(streak));
    if (streak >= d->repeated_after) {
        why(r, "; fallback %lld in a row -> repeated_fallback (line %d)", (long long)streak,
            d->repeated.line);
        run_block(r, &d->repeated, M_PLAIN);
        return;
    }
    const ef_fsm__block *fb = st->fallback.present ? &st->fallback : &d->fallback;
    why(r, "; %s fallback (line %d)", st->fallback.present ? "state" : "global", fb->line);
    run_block(r, fb, M_PLAIN);
}

static long find_state(const ef_fsm_def *d, const char *name)
{
    for (size_t i = 0; name && i < d->n_states; i++) {
        if (!strcmp(d->states[i].name, name))
            return (long)i;
    }
    return -1;
}

/* True when some transition of the bot handles this payload. */
static bool known_payload(const ef_fsm_def *d, const char *payload)
{
    if (by_button(d->global, d->n_global, payload))
        return true;
    for (size_t s = 0; s < d->n_states; s++) {
        if (by_button(d->states[s].trans, d->states[s].n_trans, payload))
            return true;
    }
    return false;
}

static void describe_match(run *r)
{
    const ef_fsm_input *in = r->in;
    /* A payload comes from the client and may be forged: only the bot's own
     * payloads are named in the explanation. */
    if (in->button && *in->button)
        why(r, " button=%s", known_payload(r->def, in->button) ? in->button : "(unknown)");
    if (in->intent && *in->intent && strcmp(in->intent, "fallback"))
        why(r, " intent=%s(%.2f)", in->intent, in->confidence);
    else
        why(r, " intent=none");
    for (size_t i = 0; i < in->n_entities; i++) {
        if (in->entities[i].type)
            why(r, "%s%s", i ? "," : " entities=", in->entities[i].type);
    }
}

/* A closed conversation starts over: every old key but "lang" goes. */
static void restart_closed(run *r)
{
    r->base_lang_only = true;
    if (!r->base)
        return;
    struct json_object_iterator it = json_object_iter_begin(r->base);
    struct json_object_iterator end = json_object_iter_end(r->base);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *k = json_object_iter_peek_name(&it);
        if (strcmp(k, "lang"))
            json_object_object_add(r->patch, k, NULL);
    }
}

static void free_replies(ef_fsm_reply *rep, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ef_free(rep[i].text);
        free_buttons(rep[i].buttons, rep[i].n_buttons);
    }
    ef_free(rep);
}

int ef_fsm_step(const ef_fsm_def *def, const ef_fsm_input *in, ef_fsm_output *out)
{
    if (!def || !in || !out || (in->n_entities && !in->entities))
        return EF_EINVAL;
    if (in->context && !json_object_is_type(in->context, json_type_object))
        return EF_EINVAL;
    run r = {.def = def, .in = in, .base = in->context, .status = in->status};
    r.patch = json_object_new_object();
    ef_buf_init(&r.why, WHY_MAX);
    const char *silent_state = NULL;
    long cur = (in->state && *in->state) ? find_state(def, in->state) : -1;

    if (in->status == EF_FSM_ESCALATED || in->status == EF_FSM_PAUSED) {
        /* Invariant 6: the bot says nothing and changes nothing. */
        silent_state = (in->state && *in->state) ? in->state : ef_fsm_def_initial(def);
        why(&r, "state=%s status=%s: the bot stays silent", silent_state,
            ef_fsm_status_name(in->status));
        goto done;
    }
    bool fresh = false;
    if (in->status == EF_FSM_CLOSED) {
        restart_closed(&r);
        r.state = def->initial;
        r.status = EF_FSM_ACTIVE;
        r.status_changed = true;
        fresh = true;
        why(&r, "conversation was closed: a new one starts in state=%s", state_name(&r, r.state));
    } else if (cur < 0) {
        r.state = def->initial;
        fresh = !(in->state && *in->state);
        if (fresh)
            why(&r, "new conversation: state=%s", state_name(&r, r.state));
        else
            why(&r, "unknown state '%s' (the bot changed?): restart in state=%s", in->state,
                state_name(&r, r.state));
    } else {
        r.state = (size_t)cur;
        why(&r, "state=%s", state_name(&r, r.state));
    }
    describe_match(&r);
    remember_lang(&r);

    /* The inactivity timeout comes first; the message is handled after it. */
    const ef_fsm__timeout *to = &def->states[r.state].timeout;
    if (!to->after)
        to = &def->timeout;
    if (!fresh && to->after && in->idle_seconds >= to->after) {
        why(&r, "; idle %llds >= timeout %llds (line %d)", (long long)in->idle_seconds,
            (long long)to->after, to->blk.line);
        run_block(&r, &to->blk, M_TIMEOUT);
    }
    if (!r.stop && !r.rc)
        process(&r);
    if (r.rc)
        goto fail;

done:
    memset(out, 0, sizeof(*out));
    out->state = ef_strdup(silent_state ? silent_state : state_name(&r, r.state));
    out->status_changed = r.status_changed;
    out->status = r.status_changed ? r.status : in->status;
    out->context_patch = r.patch;
    out->replies = r.replies;
    out->n_replies = r.n_replies;
    out->escalate = r.escalate;
    out->close = r.close;
    out->why = ef_buf_steal(&r.why, NULL);
    if (!out->why)
        out->why = ef_strdup("");
    return 0;
fail:
    json_object_put(r.patch);
    free_replies(r.replies, r.n_replies);
    ef_buf_cleanup(&r.why);
    return r.rc;
}

void ef_fsm_output_cleanup(ef_fsm_output *out)
{
    if (!out)
        return;
    ef_free(out->state);
    if (out->context_patch)
        json_object_put(out->context_patch);
    free_replies(out->replies, out->n_replies);
    ef_free(out->why);
    memset(out, 0, sizeof(*out));
}

char *ef_fsm_output_json(const ef_fsm_output *out)
{
    if (!out)
        return NULL;
    struct json_object *o = json_object_new_object();
    json_object_object_add(o, "state", json_object_new_string(out->state ? out->state : ""));
    json_object_object_add(
        o, "status",
        out->status_changed ? json_object_new_string(ef_fsm_status_name(out->status)) : NULL);
    json_object_object_add(o, "context_patch",
                           out->context_patch ? json_object_get(out->context_patch)
                                              : json_object_new_object());
    struct json_object *reps = json_object_new_array();
    for (size_t i = 0; i < out->n_replies; i++) {
        const ef_fsm_reply *rep = &out->replies[i];
        struct json_object *ro = json_object_new_object();
        json_object_object_add(ro, "text", json_object_new_string(rep->text));
        struct json_object *btns = json_object_new_array();
        for (size_t k = 0; k < rep->n_buttons; k++) {
            struct json_object *bo = json_object_new_object();
            json_object_object_add(bo, "title", json_object_new_string(rep->buttons[k].title));
            json_object_object_add(bo, "payload", json_object_new_string(rep->buttons[k].payload));
            json_object_array_add(btns, bo);
        }
        json_object_object_add(ro, "buttons", btns);
        json_object_array_add(reps, ro);
    }
    json_object_object_add(o, "replies", reps);
    struct json_object *acts = json_object_new_array();
    if (out->escalate)
        json_object_array_add(acts, json_object_new_string("escalate"));
    if (out->close)
        json_object_array_add(acts, json_object_new_string("close"));
    json_object_object_add(o, "actions", acts);
    char *s = ef_strdup(
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return s;
}
