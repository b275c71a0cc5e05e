/*
 * fsm.h -- the conversation state machine of a bot, as a pure function.
 *
 * What it does: the `fsm:` section of the bot definition (docs/fsm.md) is
 * compiled once at start into an immutable ef_fsm_def (fsm_def.c). Then, for
 * every customer message, ef_fsm_step() (fsm.c) takes the conversation's
 * current state, status and context plus what the matcher understood (intent,
 * entities, pressed button) and returns the new state, the context changes
 * (a patch the caller merges), the replies with their buttons (templates
 * rendered, in the conversation's language, template.c) and the actions
 * (escalate, close), with a one-line explanation of which transition fired.
 *
 * What it must never do: I/O of any kind (no network, no disk, no clock, no
 * logging from ef_fsm_step), globals, randomness. The same input always gives
 * the same output. It never replies in an escalated or paused conversation
 * (DESIGN.md invariant 6). It includes no lws/curl/libpq/hiredis header.
 *
 * Thread model: an ef_fsm_def is immutable once loaded and may be shared by
 * any number of threads; ef_fsm_step() only reads it. An ef_fsm_output
 * belongs to the thread that filled it.
 */
#ifndef EF_FSM_H
#define EF_FSM_H

#include "base/ef.h"

#include <yaml.h>

struct json_object;

typedef struct ef_fsm_def ef_fsm_def;

/* ---- loading (fsm_def.c) ---------------------------------------------- */

/* The longest state name, in characters: conversations.current_state is
 * VARCHAR(100) (sql/001_seed_schema.sql), so loading refuses a bot with a
 * longer one rather than failing on the first conversation that enters it. */
#define EF_FSM_STATE_NAME_MAX 100

/* Compiles the `fsm:` section of a bot definition.
 *
 * doc is the whole parsed bot file (borrowed; nothing of it is kept, so it may
 * be deleted right after) and fsm_node the value of its top-level `fsm` key.
 * The bot's languages are read from the document's `bot.languages` (a list,
 * the first is the default); when the file has none, they are the languages
 * the fsm's texts use, the first one met being the default.
 * path is the file name used in messages. intent_names / entity_types list
 * the intents and entity types the rest of the file defines (borrowed): every
 * name the fsm refers to must be one of them.
 *
 * Returns 0 and sets *out (owned by the caller, ef_fsm_def_free), or
 * EF_EINVAL with err set to "path:line:column: reason" (1-based) for the
 * first problem: unknown key, duplicate state or key, missing or unknown
 * initial state, goto to an unknown state, unknown intent or entity type,
 * slot without prompt, bad placeholder in a template, state unreachable from
 * the initial state, button whose payload no transition handles, and so on
 * (docs/fsm.md lists them). err is always NUL-terminated when errlen > 0. */
int ef_fsm_def_from_yaml(yaml_document_t *doc, yaml_node_t *fsm_node, const char *path,
                         const char *const *intent_names, size_t n_intents,
                         const char *const *entity_types, size_t n_entity_types, ef_fsm_def **out,
                         char *err, size_t errlen);

/* Frees a definition. ef_fsm_def_free(NULL) is a no-op. */
void ef_fsm_def_free(ef_fsm_def *def);

/* The name of the state a new conversation starts in (borrowed from def). */
const char *ef_fsm_def_initial(const ef_fsm_def *def);

/* The bot's default language (first of `languages`), borrowed from def. */
const char *ef_fsm_def_default_lang(const ef_fsm_def *def);

/* fsm.handoff in lang (else the default language's): the message a customer
 * gets when the conversation goes to an operator and nothing else was said
 * (an `escalate` block without a reply; an operator taking it over).
 * Default "Передаю вас оператору…" (English for other languages). A plain
 * text without placeholders; borrowed from def, never NULL. */
const char *ef_fsm_def_handoff(const ef_fsm_def *def, const char *lang);

/* True when def has a state with this name. */
bool ef_fsm_def_has_state(const ef_fsm_def *def, const char *name);

/* ---- one step (fsm.c) ------------------------------------------------- */

/* The conversation's status, as stored in conversations.status. */
typedef enum ef_fsm_status {
    EF_FSM_ACTIVE = 0, /* the bot answers */
    EF_FSM_ESCALATED,  /* an operator has it: the bot is silent */
    EF_FSM_PAUSED,     /* the bot is silent (e.g. the chat is undeliverable) */
    EF_FSM_CLOSED      /* finished: the next message opens a new conversation */
} ef_fsm_status;

/* "active", "escalated", "paused", "closed". Never NULL. */
const char *ef_fsm_status_name(ef_fsm_status st);
/* Parses one of the names above. EF_EINVAL for anything else. */
int ef_fsm_status_parse(const char *s, ef_fsm_status *out);

/* One entity the matcher found, with its normalized value. */
typedef struct ef_fsm_entity {
    const char *type;  /* e.g. "order_number" */
    const char *value; /* e.g. "A-1042" */
} ef_fsm_entity;

/* Everything ef_fsm_step() looks at. All pointers are borrowed for the call
 * and never modified. */
typedef struct ef_fsm_input {
    /* conversations.current_state. NULL or "" for a new conversation; a name
     * the definition no longer has (the bot file changed) also restarts from
     * the initial state, and the explanation says so. */
    const char *state;
    ef_fsm_status status;
    /* conversations.context_data: a json-c object, or NULL for an empty
     * context. Keys starting with "_" belong to the FSM (counters). */
    struct json_object *context;
    /* The message's language (ef_nlu_result.lang), else the language tag the
     * customer's client reported (ef_msg.sender_lang), or NULL. The context's
     * "lang" key wins over it; when the context has no "lang" and this
     * names one of the bot's languages, the step stores it there (the
     * conversation keeps its language). Otherwise the bot's default
     * language is used. */
    const char *lang;
    /* The matcher's best intent, or NULL / "fallback" when nothing matched. */
    const char *intent;
    double confidence;
    const ef_fsm_entity *entities;
    size_t n_entities;
    /* Payload (callback data) of the button the customer pressed, or NULL. */
    const char *button;
    /* Seconds since the conversation's previous message; negative when there
     * was none (no inactivity timeout applies). */
    int64_t idle_seconds;
} ef_fsm_input;

typedef struct ef_fsm_button {
    char *title;   /* rendered, in the conversation's language */
    char *payload; /* callback data, at most 64 bytes */
} ef_fsm_button;

typedef struct ef_fsm_reply {
    char *text; /* rendered UTF-8, never empty */
    ef_fsm_button *buttons;
    size_t n_buttons;
} ef_fsm_reply;

/* What one step decided. Every member is owned by the output and released by
 * ef_fsm_output_cleanup(). */
typedef struct ef_fsm_output {
    char *state; /* the new current_state (may equal the old one) */
    bool status_changed;
    ef_fsm_status status; /* the new status; meaningful when status_changed */
    /* Context changes as a json-c object: key -> new value, or JSON null to
     * delete the key. Never NULL (an empty object when nothing changed). The
     * caller merges it into the stored context. */
    struct json_object *context_patch;
    ef_fsm_reply *replies; /* in the order they must be sent */
    size_t n_replies;
    bool escalate; /* the conversation goes to an operator */
    bool close;    /* the conversation is finished */
    /* Why: which transitions fired, e.g. "state=ask_order intent=order_status
     * entities=order_number; slot order_number filled; on_filled -> goto
     * initial". Never contains context or entity values. For logs and the
     * operator console. */
    char *why;
} ef_fsm_output;

/* Runs the state machine for one inbound message.
 *
 * Semantics (docs/fsm.md has the full rules): an escalated or paused
 * conversation gets no reply and no change at all; a closed one restarts
 * from the initial state with an empty context (status "active"). Otherwise
 * the inactivity timeout fires first when idle_seconds reaches it, then the
 * message is handled by, in order: a button transition (state, then global),
 * an intent transition of the state, filling the state's slots from the
 * message's entities, an entity transition of the state, a global intent
 * transition, a global entity transition, re-asking a missing slot, and
 * finally the fallback (two in a row -> `repeated_fallback`).
 *
 * Pure and deterministic; def and in are only read. Returns 0 and fills *out
 * (which the caller releases with ef_fsm_output_cleanup), EF_EINVAL when an
 * argument is NULL or in->entities is NULL with n_entities > 0, EF_ELIMIT
 * when a rendered text would exceed 64 KiB. On error *out is not touched. */
int ef_fsm_step(const ef_fsm_def *def, const ef_fsm_input *in, ef_fsm_output *out);

/* Releases everything an output owns and zeroes it. Safe on a zeroed output
 * and when called twice. */
void ef_fsm_output_cleanup(ef_fsm_output *out);

/* Serializes an output as one JSON object, exactly:
 *   {"state":"..","status":"escalated"|"closed"|"active"|null,
 *    "context_patch":{..},
 *    "replies":[{"text":"..","buttons":[{"title":"..","payload":".."}]}],
 *    "actions":["escalate"|"close"]}
 * status is null when unchanged. Returns a string owned by the caller
 * (ef_free), or NULL when out is NULL. */
char *ef_fsm_output_json(const ef_fsm_output *out);

#endif /* EF_FSM_H */
