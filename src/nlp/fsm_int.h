/*
 * fsm_int.h -- the compiled form of an fsm definition, shared by fsm_def.c
 * (which builds it), fsm.c (which runs it) and template.c (which renders its
 * texts). Private to the FSM: no other file includes it.
 *
 * What it must never do: be included outside src/nlp/fsm*.c and template.c,
 * or by anything that is not pure.
 *
 * Thread model: everything here is immutable after ef_fsm_def_from_yaml()
 * returns, so any thread may read it.
 */
#ifndef EF_FSM_INT_H
#define EF_FSM_INT_H

#include "nlp/fsm.h"

struct json_object;

/* Upper bound of one rendered text (reply, button title, set value). */
#define EF_FSM__TEXT_MAX (64 * 1024)
/* Longest placeholder name ({order_number}, {context.key}). */
#define EF_FSM__NAME_MAX 128
/* Telegram's callback_data holds 1..64 bytes. */
#define EF_FSM__PAYLOAD_MAX 64
/* How many states one message may enter through on_filled chains. The loader
 * refuses loops, so this is only a guard. */
#define EF_FSM__MAX_HOPS 32

/* Context keys the FSM keeps for itself. Authors may not set or clear keys
 * starting with "_". */
#define EF_FSM__KEY_FALLBACKS "_fallbacks"
#define EF_FSM__KEY_RETRIES "_retries"

/* One text in every language it was written in. n >= 1; lang[i] is NULL when
 * the text was a plain string (the same for every language). */
typedef struct ef_fsm__text {
    size_t n;
    char **lang;
    char **tpl; /* templates, validated at load */
} ef_fsm__text;

typedef struct ef_fsm__button {
    ef_fsm__text title;
    char *payload;
} ef_fsm__button;

typedef struct ef_fsm__kv {
    char *key;
    char *tpl;
} ef_fsm__kv;

/* What a transition (or on_enter, fallback, timeout, ...) does, in this
 * order: send replies (buttons on the last one), change the context, then
 * escalate / close, or go to a state. */
typedef struct ef_fsm__block {
    bool present;
    ef_fsm__text *replies;
    size_t n_replies;
    ef_fsm__button *buttons;
    size_t n_buttons;
    ef_fsm__kv *set;
    size_t n_set;
    char **clear;
    size_t n_clear;
    char **incr;
    size_t n_incr;
    long go; /* target state index, -1 to stay */
    bool escalate;
    bool close;
    int line; /* 1-based position in the bot file, for explanations */
} ef_fsm__block;

typedef struct ef_fsm__trans {
    char **intents;
    size_t n_intents;
    char **entities;
    size_t n_entities;
    char **buttons; /* payloads */
    size_t n_buttons;
    ef_fsm__block blk;
} ef_fsm__trans;

typedef struct ef_fsm__slot {
    char *name;   /* context key that receives the value */
    char *entity; /* entity type that fills it */
    ef_fsm__block prompt;
    ef_fsm__block reprompt; /* optional: used when asking again */
    int retries;            /* re-asks before on_fail */
    bool keep;              /* keep a value already in context */
    ef_fsm__block on_fail;  /* optional: else the bot's repeated_fallback */
} ef_fsm__slot;

typedef struct ef_fsm__timeout {
    int64_t after; /* seconds; 0 = none */
    ef_fsm__block blk;
} ef_fsm__timeout;

typedef struct ef_fsm__state {
    char *name;
    ef_fsm__block on_enter;
    ef_fsm__trans *trans;
    size_t n_trans;
    ef_fsm__slot *slots;
    size_t n_slots;
    ef_fsm__block on_filled;
    ef_fsm__block fallback;
    ef_fsm__timeout timeout;
} ef_fsm__state;

struct ef_fsm_def {
    char **langs; /* langs[0] is the default */
    size_t n_langs;
    ef_fsm__state *states;
    size_t n_states;
    size_t initial;
    ef_fsm__trans *global;
    size_t n_global;
    ef_fsm__block fallback;
    ef_fsm__block repeated;
    int repeated_after;
    ef_fsm__timeout timeout;
    ef_fsm__text handoff; /* fsm.handoff: said when the conversation goes to an
                             operator with nothing else said (default below) */
    char **slot_names;    /* every slot name of every state, for templates */
    size_t n_slot_names;
};

/* ---- templates (template.c) --------------------------------------------- */

/* Checks one template: "{name}" or "{name|default}" where name is an entity
 * type or a slot name, "{context.key}" / "{context.key|default}" for any
 * key, "{{" and "}}" for literal braces. Returns 0, or EF_EINVAL with a reason
 * in why and *at set to the byte offset of the problem. */
int ef_fsm__tpl_check(const char *tpl, const char *const *entity_types, size_t n_entity_types,
                      const char *const *slot_names, size_t n_slot_names, size_t *at, char *why,
                      size_t whylen);

/* Looks a placeholder name up; returns the value (borrowed, valid until the
 * next lookup or the end of the step) or NULL when it has none. */
typedef const char *(*ef_fsm__lookup_fn)(void *ud, const char *name, size_t len, bool is_context);

/* Renders a checked template into b, replacing each placeholder by what
 * lookup returns, else its default, else nothing. EF_ELIMIT when b is full. */
int ef_fsm__tpl_render(const char *tpl, ef_fsm__lookup_fn lookup, void *ud, ef_buf *b);

#endif /* EF_FSM_INT_H */
