/*
 * events.c -- LISTEN ef_events and the web chat's reads. See events.h.
 */
#include "store/events.h"

#include "store/store_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>

#define EVENTS_CHANNEL "ef_events"

int ef_store_events_listen(ef_store *st)
{
    int rc = ef_store__exec_simple(st, "LISTEN " EVENTS_CHANNEL, 0, NULL);
    if (rc == 0)
        st->listening = true;
    return rc;
}

/* Hands every notification libpq has read to fn: how many. */
static int deliver(ef_store *st, void (*fn)(const char *payload, void *ud), void *ud)
{
    int got = 0;
    PGnotify *n;
    while ((n = PQnotifies(st->conn)) != NULL) {
        got++;
        fn(n->extra ? n->extra : "", ud);
        PQfreemem(n);
    }
    return got;
}

int ef_store_events_wait(ef_store *st, int timeout_ms, void (*fn)(const char *payload, void *ud),
                         void *ud)
{
    if (!st->listening || !st->conn || PQstatus(st->conn) != CONNECTION_OK) {
        st->listening = false;
        return EF_EDB;
    }
    int got = deliver(st, fn, ud);
    if (got)
        return got;
    struct pollfd pfd = {.fd = PQsocket(st->conn), .events = POLLIN};
    if (pfd.fd < 0) {
        ef_store__lost(st, "listen");
        return EF_EDB;
    }
    int pr = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : 0);
    if (pr < 0 && errno != EINTR) {
        ef_store__lost(st, "listen");
        return EF_EDB;
    }
    if (pr > 0 && (!PQconsumeInput(st->conn) || PQstatus(st->conn) != CONNECTION_OK)) {
        ef_store__lost(st, "listen");
        return EF_EDB;
    }
    return deliver(st, fn, ud);
}

/* One message as the chat shows it (alias m). */
#define MSG_JSON                                                                                   \
    "json_build_object('id', m.id, 'role', m.role, 'direction', m.direction, 'text', m.content, "  \
    "'meta', m.metadata, 'pmid', m.platform_message_id, 'delivery_status', m.delivery_status, "    \
    "'at', m.created_at)"

int ef_store_event_lookup(ef_store *st, const char *conversation_id, const char *message_id,
                          char **out)
{
    const char *vals[2] = {conversation_id, message_id};
    return ef_store__value(
        st,
        "SELECT json_build_object('conversation_id', c.id, 'integration_id', c.integration_id, "
        "'chat_id', c.chat_id, 'status', c.status, "
        "'operator', c.assigned_operator_id IS NOT NULL, "
        "'message', (SELECT " MSG_JSON " FROM messages m "
        "            WHERE m.id = $2::uuid AND m.conversation_id = c.id))::text "
        "FROM conversations c WHERE c.id = $1::uuid",
        2, vals, out);
}

int ef_store_chat_history(ef_store *st, const char *integration_id, const char *chat_id, int limit,
                          char **out)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *vals[3] = {integration_id, chat_id, lim};
    return ef_store__value(
        st,
        "SELECT json_build_object('conversation_id', c.id, 'status', c.status, "
        "'operator', c.assigned_operator_id IS NOT NULL, "
        "'messages', coalesce((SELECT json_agg(x.j ORDER BY x.created_at, x.id) FROM ("
        "    SELECT " MSG_JSON " AS j, m.created_at, m.id FROM messages m "
        "    WHERE m.conversation_id = c.id AND m.role <> 'system' "
        "      AND (m.direction = 'inbound' OR m.delivery_status IN ('sent','delivered','read')) "
        "    ORDER BY m.created_at DESC, m.id DESC LIMIT $3::int) x), '[]'::json))::text "
        "FROM conversations c WHERE c.integration_id = $1::uuid AND c.chat_id = $2 "
        "ORDER BY c.updated_at DESC, c.id DESC LIMIT 1",
        3, vals, out);
}
