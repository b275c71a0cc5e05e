/*
 * integrations.c -- the integrations table: one row per connected bot,
 * number or shop, its sealed credentials and status, and the
 * LISTEN/NOTIFY channel that tells running gateways about changes.
 *
 * Credentials stay sealed here (bytea, sent and read as hex text): the
 * gateway seals and opens them with its key ring. Every change a gateway
 * must act on sends NOTIFY ef_integrations '<id>' from the same statement,
 * so the notification goes out exactly when the change commits. Sync
 * bookkeeping (last_sync_at, ...) deliberately sends none.
 *
 * Thread model: as store.h. The LISTEN connection is a store of its own.
 */
#include "store/store_int.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTIFY_CHANNEL "ef_integrations"

/* The longest status_message kept (a platform's error text). */
#define STATUS_MESSAGE_MAX 500

#define ROW_COLUMNS                                                                                \
    "id, platform_id, name, external_id, status, status_message, "                                 \
    "coalesce(settings, '{}'::jsonb)::text, source, enabled, is_default, "                         \
    "credentials_encrypted, encryption_key_id"

/* "\x<hex>" for a bytea parameter, NULL for none. Owned by the caller. */
static char *hex_param(const uint8_t *p, size_t n)
{
    if (!p)
        return NULL;
    static const char digits[] = "0123456789abcdef";
    char *s = ef_malloc(2 + 2 * n + 1);
    s[0] = '\\';
    s[1] = 'x';
    for (size_t i = 0; i < n; i++) {
        s[2 + 2 * i] = digits[p[i] >> 4];
        s[3 + 2 * i] = digits[p[i] & 15];
    }
    s[2 + 2 * n] = '\0';
    return s;
}

static void read_sealed(PGresult *r, int row, int col, ef_integration_row *out)
{
    out->sealed = NULL;
    out->sealed_len = 0;
    if (PQgetisnull(r, row, col))
        return;
    size_t n = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n);
    if (!raw)
        return;
    out->sealed = ef_malloc(n ? n : 1);
    memcpy(out->sealed, raw, n);
    out->sealed_len = n;
    PQfreemem(raw);
}

static void read_row(PGresult *r, int k, ef_integration_row *out)
{
    memset(out, 0, sizeof(*out));
    out->id = ef_store__col_str(r, k, 0);
    out->platform = ef_store__col_str(r, k, 1);
    out->name = ef_store__col_str(r, k, 2);
    out->external_id = ef_store__col_str(r, k, 3);
    out->status = ef_store__col_str(r, k, 4);
    out->status_message = ef_store__col_str(r, k, 5);
    out->settings_json = ef_store__col_str(r, k, 6);
    out->source = ef_store__col_str(r, k, 7);
    out->enabled = PQgetvalue(r, k, 8)[0] == 't';
    out->is_default = PQgetvalue(r, k, 9)[0] == 't';
    read_sealed(r, k, 10, out);
    out->key_id = ef_store__col_str(r, k, 11);
}

void ef_integration_row_cleanup(ef_integration_row *row)
{
    if (!row)
        return;
    ef_free(row->id);
    ef_free(row->platform);
    ef_free(row->name);
    ef_free(row->external_id);
    ef_free(row->status);
    ef_free(row->status_message);
    ef_free(row->settings_json);
    ef_free(row->source);
    ef_free(row->sealed);
    ef_free(row->key_id);
    memset(row, 0, sizeof(*row));
}

void ef_integration_rows_free(ef_integration_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        ef_integration_row_cleanup(&rows[i]);
    ef_free(rows);
}

int ef_store_integrations_list(ef_store *st, bool include_disabled, ef_integration_row **rows,
                               size_t *n)
{
    const char *vals[1] = {include_disabled ? "t" : "f"};
    PGresult *r = ef_store__exec(st,
                                 "SELECT " ROW_COLUMNS " FROM integrations "
                                 "WHERE $1::bool OR enabled "
                                 "ORDER BY is_default DESC, created_at, id",
                                 1, vals);
    if (!r)
        return st->last_error;
    size_t cnt = (size_t)PQntuples(r);
    ef_integration_row *out = ef_calloc(cnt ? cnt : 1, sizeof(*out));
    for (size_t i = 0; i < cnt; i++)
        read_row(r, (int)i, &out[i]);
    PQclear(r);
    *rows = out;
    *n = cnt;
    return 0;
}

int ef_store_integration_get(ef_store *st, const char *id, ef_integration_row *row)
{
    const char *vals[1] = {id};
    PGresult *r =
        ef_store__exec(st, "SELECT " ROW_COLUMNS " FROM integrations WHERE id = $1::uuid", 1, vals);
    if (!r)
        return st->last_error; /* EF_EINVAL when id is not a UUID (22P02) */
    int rc = EF_ENOTFOUND;
    if (PQntuples(r) == 1) {
        read_row(r, 0, row);
        rc = 0;
    }
    PQclear(r);
    return rc;
}

/* A statement that returns the changed row's id in its first column: 0 and
 * *id_out (when asked), EF_ENOTFOUND without a row, EF_ECONFLICT on a
 * unique violation, else the classified error. */
static int exec_returning_id(ef_store *st, const char *sql, int n, const char *const *vals,
                             char **id_out)
{
    PGresult *r = ef_store__exec(st, sql, n, vals);
    if (!r)
        return strcmp(st->sqlstate, "23505") == 0 ? EF_ECONFLICT : st->last_error;
    int rc = EF_ENOTFOUND;
    if (PQntuples(r) >= 1 && !PQgetisnull(r, 0, 0)) {
        if (id_out)
            *id_out = ef_strdup(PQgetvalue(r, 0, 0));
        rc = 0;
    }
    PQclear(r);
    return rc;
}

int ef_store_integration_add(ef_store *st, const ef_integration_in *in, char **id_out)
{
    char *sealed = hex_param(in->sealed, in->sealed_len);
    const char *vals[9] = {in->platform, in->name, in->external_id, in->settings_json,
                           in->source,   sealed,   in->key_id,      in->is_default ? "t" : "f",
                           in->id};
    int rc = exec_returning_id(
        st,
        "WITH i AS (INSERT INTO integrations (id, platform_id, name, external_id, settings, "
        "source, credentials_encrypted, encryption_key_id, is_default, status, enabled) "
        "VALUES (coalesce($9::uuid, gen_random_uuid()), $1, $2, $3, "
        "coalesce($4::jsonb, '{}'::jsonb), $5, $6::bytea, $7, $8::bool, 'pending', true) "
        "RETURNING id) "
        "SELECT id::text, pg_notify('" NOTIFY_CHANNEL "', id::text) FROM i",
        9, vals, id_out);
    ef_free(sealed);
    return rc;
}

/* The id of the row an upsert did not write (it exists under another id
 * than the one the credentials were sealed for): *id_out and EF_ECONFLICT,
 * so that the caller seals for it and calls again. */
static int other_id(ef_store *st, const char *sql, int n, const char *const *vals, char **id_out)
{
    char *id = NULL;
    int rc = exec_returning_id(st, sql, n, vals, &id);
    if (rc)
        return rc == EF_ENOTFOUND ? EF_EDB : rc;
    if (id_out)
        *id_out = id;
    else
        ef_free(id);
    return EF_ECONFLICT;
}

int ef_store_integration_upsert_default(ef_store *st, const ef_integration_in *in, char **id_out)
{
    char *sealed = hex_param(in->sealed, in->sealed_len);
    const char *vals[8] = {in->platform, in->name, in->external_id, in->settings_json,
                           in->source,   sealed,   in->key_id,      in->id};
    PGresult *r = ef_store__exec(st,
                                 "SELECT o_id::text, o_applied, CASE WHEN o_applied THEN "
                                 "pg_notify('" NOTIFY_CHANNEL "', o_id::text) END "
                                 "FROM ef_integration_upsert_default($1, $2, $3, $4::jsonb, $5, "
                                 "$6::bytea, $7, $8::uuid)",
                                 8, vals);
    ef_free(sealed);
    if (!r)
        return st->last_error;
    int rc = EF_EDB;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
        rc = PQgetvalue(r, 0, 1)[0] == 't' ? 0 : EF_ECONFLICT;
        if (id_out)
            *id_out = ef_strdup(PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    return rc;
}

int ef_store_integration_upsert_config(ef_store *st, const ef_integration_in *in, char **id_out)
{
    char *sealed = hex_param(in->sealed, in->sealed_len);
    const char *vals[7] = {in->platform, in->name,   in->external_id, in->settings_json,
                           sealed,       in->key_id, in->id};
    int rc = exec_returning_id(
        st,
        "WITH i AS (INSERT INTO integrations (id, platform_id, name, external_id, settings, "
        "source, credentials_encrypted, encryption_key_id, is_default, status, enabled) "
        "VALUES (coalesce($7::uuid, gen_random_uuid()), $1, $2, $3, "
        "coalesce($4::jsonb, '{}'::jsonb), 'config', $5::bytea, $6, false, 'pending', true) "
        "ON CONFLICT (platform_id, external_id) DO UPDATE SET "
        "settings = EXCLUDED.settings, credentials_encrypted = EXCLUDED.credentials_encrypted, "
        "encryption_key_id = EXCLUDED.encryption_key_id, updated_at = now(), "
        "status = CASE WHEN integrations.credentials_encrypted IS DISTINCT FROM "
        "EXCLUDED.credentials_encrypted THEN 'pending'::integration_status "
        "ELSE integrations.status END "
        "WHERE $7::uuid IS NULL OR integrations.id = $7::uuid "
        "RETURNING id) "
        "SELECT id::text, pg_notify('" NOTIFY_CHANNEL "', id::text) FROM i",
        7, vals, id_out);
    if (rc == EF_ENOTFOUND) { /* the row exists under another id: nothing written */
        const char *key[2] = {in->platform, in->external_id};
        rc = other_id(st,
                      "SELECT id::text FROM integrations WHERE platform_id = $1 AND "
                      "external_id = $2",
                      2, key, id_out);
    }
    ef_free(sealed);
    return rc;
}

int ef_store_integration_set_enabled(ef_store *st, const char *id, bool enabled)
{
    const char *vals[2] = {id, enabled ? "t" : "f"};
    return exec_returning_id(
        st,
        "WITH u AS (UPDATE integrations SET enabled = $2::bool, "
        "status = CASE WHEN $2::bool THEN 'pending' ELSE 'disconnected' END::integration_status, "
        "status_message = NULL, updated_at = now() WHERE id = $1::uuid RETURNING id) "
        "SELECT id::text, pg_notify('" NOTIFY_CHANNEL "', id::text) FROM u",
        2, vals, NULL);
}

int ef_store_integration_set_status(ef_store *st, const char *id, const char *status,
                                    const char *message)
{
    char *msg = ef_store__clip_utf8(message, STATUS_MESSAGE_MAX);
    const char *vals[3] = {id, status, msg};
    int rc = exec_returning_id(
        st,
        "WITH u AS (UPDATE integrations SET status = $2::integration_status, "
        "status_message = $3, updated_at = now() WHERE id = $1::uuid "
        "AND (status, status_message) IS DISTINCT FROM ($2::integration_status, $3) "
        "RETURNING id) "
        "SELECT id::text, pg_notify('" NOTIFY_CHANNEL "', id::text) FROM u",
        3, vals, NULL);
    ef_free(msg);
    /* Nothing changed (already so, or no such row): not an error. */
    return rc == EF_ENOTFOUND ? 0 : rc;
}

int ef_store_integration_reseal(ef_store *st, const char *id, const uint8_t *sealed, size_t n,
                                const char *key_id)
{
    char *hex = hex_param(sealed, n);
    const char *vals[3] = {id, hex, key_id};
    int rc = exec_returning_id(
        st,
        "WITH u AS (UPDATE integrations SET credentials_encrypted = $2::bytea, "
        "encryption_key_id = $3, updated_at = now() WHERE id = $1::uuid RETURNING id) "
        "SELECT id::text, pg_notify('" NOTIFY_CHANNEL "', id::text) FROM u",
        3, vals, NULL);
    ef_free(hex);
    return rc;
}

int ef_store_integrations_sealed_count(ef_store *st, long *n)
{
    *n = 0;
    PGresult *r = ef_store__exec(st,
                                 "SELECT count(*) FROM integrations WHERE credentials_encrypted "
                                 "IS NOT NULL AND NOT (platform_id = 'webchat' AND is_default)",
                                 0, NULL);
    if (!r)
        return st->last_error;
    *n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

int ef_store_integration_upgrade_seal(ef_store *st, const char *id, const uint8_t *old,
                                      size_t n_old, const uint8_t *sealed, size_t n,
                                      const char *key_id)
{
    char *hex_old = hex_param(old, n_old);
    char *hex = hex_param(sealed, n);
    const char *vals[4] = {id, hex, key_id, hex_old};
    int rc =
        exec_returning_id(st,
                          "WITH u AS (UPDATE integrations SET credentials_encrypted = $2::bytea, "
                          "encryption_key_id = $3, updated_at = now() WHERE id = $1::uuid "
                          "AND credentials_encrypted = $4::bytea RETURNING id) "
                          "SELECT id::text, pg_notify('" NOTIFY_CHANNEL "', id::text) FROM u",
                          4, vals, NULL);
    ef_free(hex);
    ef_free(hex_old);
    return rc == EF_ENOTFOUND ? 0 : rc;
}

/* ---- LISTEN ------------------------------------------------------------- */

int ef_store_integrations_listen(ef_store *st)
{
    int rc = ef_store__exec_simple(st, "LISTEN " NOTIFY_CHANNEL, 0, NULL);
    if (rc == 0)
        st->listening = true;
    return rc;
}

/* Consumes every notification libpq has read: true when there was one. */
static bool drain(ef_store *st)
{
    bool got = false;
    PGnotify *n;
    while ((n = PQnotifies(st->conn)) != NULL) {
        got = true;
        PQfreemem(n);
    }
    return got;
}

int ef_store_wait_notify(ef_store *st, int timeout_ms)
{
    if (!st->listening || !st->conn || PQstatus(st->conn) != CONNECTION_OK) {
        st->listening = false;
        return EF_EDB;
    }
    if (drain(st))
        return 1;
    int64_t deadline = ef_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int64_t left = deadline - ef_now_ms();
        if (left < 0)
            left = 0;
        struct pollfd pfd = {.fd = PQsocket(st->conn), .events = POLLIN};
        if (pfd.fd < 0) {
            ef_store__lost(st, "listen");
            return EF_EDB;
        }
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno != EINTR) {
            ef_store__lost(st, "listen");
            return EF_EDB;
        }
        if (pr > 0) {
            if (!PQconsumeInput(st->conn) || PQstatus(st->conn) != CONNECTION_OK) {
                ef_store__lost(st, "listen");
                return EF_EDB;
            }
            if (drain(st))
                return 1;
        }
        if (left == 0)
            return 0;
    }
}
