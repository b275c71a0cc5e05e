/*
 * console.h -- what the operator console stores beyond operators.c
 * (sql/010_console.sql): internal notes on conversations, quick replies,
 * admin changes to operator accounts, and the outbox figures /metrics
 * shows.
 *
 * Most calls answer with JSON text made by the database, which the API
 * passes on (*out_json owned by the caller). A value the database refuses
 * (an id that is not a UUID or a number) is EF_EINVAL, an outage EF_EDB,
 * as everywhere in store.h.
 *
 * Must never: return a password hash or sealed credentials.
 *
 * Thread model: as store.h (one ef_store, one thread at a time).
 */
#ifndef EF_STORE_CONSOLE_H
#define EF_STORE_CONSOLE_H

#include "store/store.h"

/* A note by operator_id on conversation id, audited as an event 'note'.
 * {"result":"ok","note":{...}} or {"result":"notfound"}. */
int ef_store_note_add(ef_store *st, const char *id, const char *operator_id, const char *body,
                      char **out_json);
/* {"notes":[{"id","body","created_at","author":{"id","name"}}]}, oldest
 * first; EF_ENOTFOUND when there is no such conversation. */
int ef_store_notes(ef_store *st, const char *id, char **out_json);
/* ef_store_conversation_get (operators.c) plus the conversation's
 * "notes". */
int ef_store_conversation_full(ef_store *st, const char *id, int msg_limit, char **out_json);

/* What the API needs to know about a conversation's channel. */
typedef struct ef_conversation_channel {
    char *integration_id;   /* owned; NULL for a row stored before integrations */
    int64_t last_inbound_s; /* Unix time of the last inbound message (0: none) */
    char status[16];        /* active | escalated | paused | closed */
    char lang[16];          /* the conversation's language (context lang, else the
                               customer's app language; "" : unknown) */
} ef_conversation_channel;
/* EF_ENOTFOUND when there is no such conversation; free with
 * ef_conversation_channel_cleanup. */
int ef_store_conversation_channel(ef_store *st, const char *id, ef_conversation_channel *out);
void ef_conversation_channel_cleanup(ef_conversation_channel *c);
/* Queues the bot's hand-off message (role assistant, metadata handoff)
 * in the conversation's outbox, before anything queued later. */
int ef_store_conversation_handoff(ef_store *st, const char *id, const char *text);

/* {"quick_replies":[{"id","title","body","lang","position","updated_at"}]}. */
int ef_store_quick_replies(ef_store *st, char **out_json);
/* Creates (id NULL) or updates one; a NULL field keeps its value on update
 * (lang "" clears it; position NULL: 0 or kept). {"result":"ok",
 * "quick_reply"} or "notfound", "exists" (another has the title). */
int ef_store_quick_reply_put(ef_store *st, const char *id, const char *title, const char *body,
                             const char *lang, const char *position, const char *operator_id,
                             char **out_json);
/* Deletes one: 0, or EF_ENOTFOUND. */
int ef_store_quick_reply_delete(ef_store *st, const char *id);

/* A new operator or admin (never overwrites one): {"result":"ok",
 * "operator"} or {"result":"exists"}. password_hash as ef_password_hash. */
int ef_store_operator_add(ef_store *st, const char *email, const char *name, const char *role,
                          const char *password_hash, char **out_json);
/* Enables or disables one account; disabling revokes its refresh tokens
 * and unassigns its conversations. by: the admin. {"result":"ok",
 * "changed","released"} or "notfound", "self" (an admin disabling
 * themself). */
int ef_store_operator_set_active(ef_store *st, const char *id, bool active, const char *by,
                                 char **out_json);

/* The outbox as /metrics shows it (sql/010 ef_outbox_figures). */
typedef struct ef_outbox_figures {
    int64_t queued;          /* rows waiting to be sent */
    int64_t due;             /* queued rows whose time has come (sending or next) */
    int64_t failed;          /* rows refused for good */
    int64_t oldest_queued_s; /* age of the oldest queued row; 0: none */
} ef_outbox_figures;
int ef_store_outbox_figures(ef_store *st, ef_outbox_figures *out);

#endif /* EF_STORE_CONSOLE_H */
