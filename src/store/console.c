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

int ef_store_conversation_channel(ef_store *st, const char *id, char **integration_id,
                                  int64_t *last_inbound_s)
{
    const char *vals[1] = {id};
    PGresult *r = ef_store__exec(st,
                                 "SELECT integration_id, "
                                 "coalesce(floor(extract(epoch FROM last_inbound_at))::bigint, 0) "
                                 "FROM conversations WHERE id = $1::uuid",
                                 1, vals);
    if (!r)
        return st->last_error;
    int rc = EF_ENOTFOUND;
    if (PQntuples(r) == 1) {
        *integration_id = PQgetisnull(r, 0, 0) ? NULL : ef_store__col_str(r, 0, 0);
        *last_inbound_s = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        rc = 0;
    }
    PQclear(r);
    return rc;
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
