/*
 * operators.c -- what the operator API (/api/v1) stores: operator accounts
 * as the login sees them, refresh tokens (kept hashed, rotated in
 * families), and the console's conversation queries and actions with
 * their audit trail.
 *
 * The statements live in sql/007_operators.sql as functions (one round
 * trip each, row locks taken in the same statement); most return their
 * answer as JSON text, which the API passes on. A value the database
 * refuses (an id that is not a UUID, a bad cursor) is EF_EINVAL, an outage
 * EF_EDB (store.h).
 *
 * Thread model: as store.h (one ef_store, one thread at a time: the API's
 * work pool).
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ef_operator_cleanup(ef_operator *op)
{
    if (!op)
        return;
    ef_free(op->id);
    ef_free(op->name);
    ef_free(op->email);
    ef_free(op->role);
    if (op->password_hash)
        memset(op->password_hash, 0, strlen(op->password_hash));
    ef_free(op->password_hash);
    memset(op, 0, sizeof(*op));
}

int ef_store_operator_by_email(ef_store *st, const char *email, ef_operator *out)
{
    const char *vals[1] = {email};
    PGresult *r = ef_store__exec(st,
                                 "SELECT id, name, email, role, password_hash, "
                                 "coalesce(is_active, true) FROM users "
                                 "WHERE email = lower($1) AND role <> 'customer'",
                                 1, vals);
    if (!r)
        return st->last_error;
    int rc = EF_ENOTFOUND;
    if (PQntuples(r) == 1) {
        out->id = ef_store__col_str(r, 0, 0);
        out->name = ef_store__col_str(r, 0, 1);
        out->email = ef_store__col_str(r, 0, 2);
        out->role = ef_store__col_str(r, 0, 3);
        out->password_hash = ef_store__col_str(r, 0, 4);
        out->active = PQgetvalue(r, 0, 5)[0] == 't';
        rc = 0;
    }
    PQclear(r);
    return rc;
}

int ef_store_operator_reset_password(ef_store *st, const char *email, const char *name,
                                     const char *role, const char *password_hash, const char *actor,
                                     char **out_json)
{
    const char *vals[5] = {email, name, role, password_hash, actor};
    return ef_store__value(st, "SELECT ef_operator_reset_password($1, $2, $3, $4, $5)::text", 5,
                           vals, out_json);
}

int ef_store_login_ok(ef_store *st, const char *user_id, const char *token_hash, const char *ip,
                      const char *user_agent, int ttl_s, const char *rehash)
{
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    const char *vals[6] = {user_id, token_hash, ip, user_agent, ttl, rehash};
    return ef_store__exec_simple(st, "SELECT ef_api_login_ok($1::uuid, $2, $3, $4, $5::int, $6)", 6,
                                 vals);
}

int ef_store_refresh_rotate(ef_store *st, const char *old_hash, const char *new_hash,
                            const char *ip, const char *user_agent, int ttl_s, char **out_json)
{
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", ttl_s);
    const char *vals[5] = {old_hash, new_hash, ip, user_agent, ttl};
    return ef_store__value(st, "SELECT ef_api_refresh($1, $2, $3, $4, $5::int)::text", 5, vals,
                           out_json);
}

static int count_result(ef_store *st, const char *sql, int n, const char *const *vals, long *count)
{
    PGresult *r = ef_store__exec(st, sql, n, vals);
    if (!r)
        return st->last_error;
    if (count)
        *count = strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

int ef_store_refresh_revoke(ef_store *st, const char *user_id, const char *token_hash, long *n)
{
    const char *vals[2] = {user_id, token_hash};
    return count_result(st,
                        "UPDATE refresh_tokens SET revoked = true, revoked_at = now(), "
                        "revoked_reason = 'logout' "
                        "WHERE NOT revoked AND family_id = (SELECT family_id FROM refresh_tokens "
                        "WHERE token = $2 AND user_id = $1::uuid)",
                        2, vals, n);
}

int ef_store_refresh_revoke_all(ef_store *st, const char *user_id, long *n)
{
    const char *vals[1] = {user_id};
    return count_result(st,
                        "UPDATE refresh_tokens SET revoked = true, revoked_at = now(), "
                        "revoked_reason = 'logout_all' WHERE user_id = $1::uuid AND NOT revoked",
                        1, vals, n);
}

int ef_store_conversations_list(ef_store *st, const char *status, const char *q, int limit,
                                const char *before, char **out_json)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    const char *vals[4] = {status, q, lim, before};
    return ef_store__value(st, "SELECT ef_api_conversations($1, $2, $3::int, $4)::text", 4, vals,
                           out_json);
}

int ef_store_conversation_get(ef_store *st, const char *id, int msg_limit, char **out_json)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", msg_limit);
    const char *vals[2] = {id, lim};
    return ef_store__value(st, "SELECT ef_api_conversation($1::uuid, $2::int)::text", 2, vals,
                           out_json);
}

int ef_store_conversation_act(ef_store *st, const char *id, const char *operator_id,
                              const char *action, bool admin, char **out_json)
{
    const char *vals[4] = {id, operator_id, action, admin ? "true" : "false"};
    return ef_store__value(
        st, "SELECT ef_api_conversation_act($1::uuid, $2::uuid, $3, $4::boolean)::text", 4, vals,
        out_json);
}

int ef_store_conversation_reply(ef_store *st, const char *id, const char *operator_id,
                                const char *text, bool admin, char **out_json)
{
    const char *vals[4] = {id, operator_id, text, admin ? "true" : "false"};
    return ef_store__value(
        st, "SELECT ef_api_conversation_reply($1::uuid, $2::uuid, $3, $4::boolean)::text", 4, vals,
        out_json);
}

int ef_store_operators_list(ef_store *st, char **out_json)
{
    return ef_store__value(
        st,
        "SELECT jsonb_build_object('operators', coalesce(jsonb_agg(jsonb_build_object("
        "'id', id, 'email', email, 'name', name, 'role', role, "
        "'active', coalesce(is_active, true), 'last_login_at', last_login_at, "
        "'created_at', created_at) ORDER BY email), '[]'::jsonb))::text "
        "FROM users WHERE role <> 'customer'",
        0, NULL, out_json);
}
