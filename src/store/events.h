/*
 * events.h -- live events (sql/011_events.sql) and the reads the WebSockets
 * need: LISTEN ef_events with the payloads handed over, one message or
 * conversation as the web chat shows it, a web chat visitor's history.
 *
 * Must never: name a platform (the web chat is a chat like any other here),
 * or return message text anywhere but to its own caller.
 *
 * Thread model: as store.h (one ef_store per thread). The LISTEN connection
 * is a store of its own that does nothing else.
 */
#ifndef EF_STORE_EVENTS_H
#define EF_STORE_EVENTS_H

#include "store/store.h"

/* LISTEN ef_events on st. 0 or EF_EDB. */
int ef_store_events_listen(ef_store *st);

/* Waits at most timeout_ms for notifications on a listening st and calls
 * fn(payload, ud) for each (payload borrowed for the call). Returns how
 * many were delivered (0 on timeout), or EF_EDB when the connection is
 * lost (listen again after reconnecting). */
int ef_store_events_wait(ef_store *st, int timeout_ms, void (*fn)(const char *payload, void *ud),
                         void *ud);

/* One conversation and, when message_id is not NULL, one of its messages,
 * as a JSON object: {"conversation_id","integration_id","chat_id","status",
 * "operator":bool, "message":{"id","role","direction","text","meta",
 * "pmid","delivery_status","at"}}. *out owned by the caller. 0,
 * EF_ENOTFOUND, or EF_EDB. */
int ef_store_event_lookup(ef_store *st, const char *conversation_id, const char *message_id,
                          char **out);

/* The newest conversation of chat_id under integration_id with its last
 * limit messages that the customer sees (inbound ones, and outbound ones
 * once sent), oldest first: {"conversation_id","status","operator",
 * "messages":[...as above...]}. EF_ENOTFOUND when the chat has none. */
int ef_store_chat_history(ef_store *st, const char *integration_id, const char *chat_id, int limit,
                          char **out);

#endif /* EF_STORE_EVENTS_H */
