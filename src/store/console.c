/*
 * console.c -- notes, quick replies, admin account changes and the outbox
 * figures (console.h). The statements are functions in
 * sql/010_console.sql, one round trip each.
 */
#include "store/console.h"
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ef_store_note_add(ef_store *st, const char *id, const char *operator_id, const char *body,
                      char **out_json)
{
    const char *vals[3] = {id, operator_id, body};
    return ef_store__value(st, "SELECT ef_api_note_add($1::uuid, $2::uuid, $3)::text", 3, vals,
                           out_json);
}

int ef_store_notes(ef_store *st, const char *id, char **out_json)
{
    const char *vals[1] = {id};
    return ef_store__value(st, "SELECT ef_api_notes($1::uuid)::text", 1, vals, out_json);
}

int ef_store_conversation_full(ef_store *st, const char *id, int msg_limit, char **out_json)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", msg_limit);
    const char *vals[2] = {id, lim};
    return ef_store__value(st, "SELECT ef_api_conversation_full($1::uuid, $2::int)::text", 2, vals,
                           out_json);
}

int ef_store_conversation_channel(ef_store *st, const char *id, ef_conversation_channel *out)
{
    const char *vals[1] = {id};
    PGresult *r = ef_store__exec(
        st,
        "SELECT c.integration_id, "
        "coalesce(floor(extract(epoch FROM c.last_inbound_at))::bigint, 0), c.status, "
        "left(coalesce(c.context_data->>'lang', u.language_code, ''), 15) "
        "FROM conversations c LEFT JOIN users u ON u.id = c.user_id WHERE c.id = $1::uuid",
        1, vals);
    if (!r)
        return st->last_error;
    int rc = EF_ENOTFOUND;
    memset(out, 0, sizeof(*out));
    if (PQntuples(r) == 1) {
        out->integration_id = PQgetisnull(r, 0, 0) ? NULL : ef_store__col_str(r, 0, 0);
        out->last_inbound_s = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        snprintf(out->status, sizeof(out->status), "%s", PQgetvalue(r, 0, 2));
        snprintf(out->lang, sizeof(out->lang), "%s", PQgetvalue(r, 0, 3));
        rc = 0;
    }
    PQclear(r);
    return rc;
}

void ef_conversation_channel_cleanup(ef_conversation_channel *c)
{
    if (!c)
        return;
    ef_free(c->integration_id);
    memset(c, 0, sizeof(*c));
}

int ef_store_conversation_handoff(ef_store *st, const char *id, const char *text)
{
    const char *vals[2] = {id, text};
    return ef_store__exec_simple(
        st,
        "WITH c AS (UPDATE conversations SET messages_count = messages_count + 1, "
        "updated_at = now() WHERE id = $1::uuid RETURNING *) "
        "INSERT INTO messages (conversation_id, session_id, user_id, integration_id, content, "
        "role, direction, platform, metadata, delivery_status, next_attempt_at, created_at) "
        "SELECT id, session_id, user_id, integration_id, $2, 'assistant', 'outbound', platform, "
        "'{\"handoff\": true}', 'queued', now(), clock_timestamp() FROM c",
        2, vals);
}

int ef_store_quick_replies(ef_store *st, char **out_json)
{
    return ef_store__value(st, "SELECT ef_api_quick_replies()::text", 0, NULL, out_json);
}

int ef_store_quick_reply_put(ef_store *st, const char *id, const char *title, const char *body,
                             const char *lang, const char *position, const char *operator_id,
                             char **out_json)
{
    const char *vals[6] = {id, title, body, lang, position, operator_id};
    return ef_store__value(
        st, "SELECT ef_api_quick_reply_put($1::bigint, $2, $3, $4, $5::int, $6::uuid)::text", 6,
        vals, out_json);
}

int ef_store_quick_reply_delete(ef_store *st, const char *id)
{
    const char *vals[1] = {id};
    PGresult *r = ef_store__exec(st, "DELETE FROM quick_replies WHERE id = $1::bigint", 1, vals);
    if (!r)
        return st->last_error;
    int rc = strcmp(PQcmdTuples(r), "0") == 0 ? EF_ENOTFOUND : 0;
    PQclear(r);
    return rc;
}

int ef_store_operator_add(ef_store *st, const char *email, const char *name, const char *role,
                          const char *password_hash, char **out_json)
{
    const char *vals[4] = {email, name, role, password_hash};
    return ef_store__value(st, "SELECT ef_api_operator_add($1, $2, $3, $4)::text", 4, vals,
                           out_json);
}

int ef_store_operator_set_active(ef_store *st, const char *id, bool active, const char *by,
                                 char **out_json)
{
    const char *vals[3] = {id, active ? "true" : "false", by};
    return ef_store__value(
        st, "SELECT ef_api_operator_set_active($1::uuid, $2::boolean, $3::uuid)::text", 3, vals,
        out_json);
}

int ef_store_outbox_figures(ef_store *st, ef_outbox_figures *out)
{
    PGresult *r = ef_store__exec(
        st, "SELECT queued, due, failed, oldest_queued_s FROM ef_outbox_figures()", 0, NULL);
    if (!r)
        return st->last_error;
    int rc = EF_EDB;
    if (PQntuples(r) == 1) {
        out->queued = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        out->due = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        out->failed = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
        out->oldest_queued_s = strtoll(PQgetvalue(r, 0, 3), NULL, 10);
        rc = 0;
    }
    PQclear(r);
    return rc;
}
