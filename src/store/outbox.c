/*
 * outbox.c -- queued outbound rows (messages, direction outbound, status
 * queued) and their delivery outcomes, for the dispatcher; and the advisory
 * lock that lets one dispatcher send at a time. See store.h.
 *
 * Every outcome is written so that it cannot fail on its data: reasons are
 * cut to what the column keeps, UTF-8-safe (ef_store__clip_utf8); a data
 * error is still reported as EF_EINVAL so the caller fails the row instead
 * of retrying it forever.
 */
#include "store/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest reason the outbox keeps (failed_reason, undeliverable_reason). */
#define OUTBOX_REASON_MAX 1000

static int64_t col_int64(PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

#define col_str ef_store__col_str

int ef_store_outbox_fetch(ef_store *st, size_t limit, ef_outbox_row **rows, size_t *n)
{
    char lim[32];
    snprintf(lim, sizeof(lim), "%zu", limit);
    const char *vals[1] = {lim};
    PGresult *r = ef_store__exec(
        st,
        "SELECT m.id, m.conversation_id, c.platform, c.chat_id, c.chat_type, m.content, "
        "m.metadata::text, m.retry_count, c.undeliverable, c.undeliverable_reason, "
        "(extract(epoch FROM coalesce(m.next_attempt_at, m.created_at)) * 1000)::bigint, "
        "(extract(epoch FROM c.last_inbound_at) * 1000)::bigint, c.integration_id "
        "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "WHERE m.direction = 'outbound' AND m.delivery_status = 'queued' "
        "ORDER BY m.created_at LIMIT $1::int",
        1, vals);
    if (!r)
        return st->last_error;
    size_t cnt = (size_t)PQntuples(r);
    ef_outbox_row *out = ef_calloc(cnt ? cnt : 1, sizeof(*out));
    for (size_t i = 0; i < cnt; i++) {
        int k = (int)i;
        out[i].row_id = col_str(r, k, 0);
        out[i].conversation_id = col_str(r, k, 1);
        out[i].platform = col_str(r, k, 2);
        out[i].chat_id = col_str(r, k, 3);
        out[i].chat_type = col_str(r, k, 4);
        out[i].text = col_str(r, k, 5);
        out[i].meta_json = col_str(r, k, 6);
        out[i].retry_count = (int)col_int64(r, k, 7);
        out[i].undeliverable = PQgetvalue(r, k, 8)[0] == 't';
        out[i].undeliverable_reason = col_str(r, k, 9);
        out[i].due_ms = col_int64(r, k, 10);
        out[i].last_inbound_ms = col_int64(r, k, 11);
        out[i].integration_id = col_str(r, k, 12);
    }
    PQclear(r);
    *rows = out;
    *n = cnt;
    return 0;
}

void ef_outbox_row_cleanup(ef_outbox_row *r)
{
    ef_free(r->row_id);
    ef_free(r->conversation_id);
    ef_free(r->integration_id);
    ef_free(r->platform);
    ef_free(r->chat_id);
    ef_free(r->chat_type);
    ef_free(r->text);
    ef_free(r->meta_json);
    ef_free(r->undeliverable_reason);
    memset(r, 0, sizeof(*r));
}

void ef_outbox_rows_free(ef_outbox_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++)
        ef_outbox_row_cleanup(&rows[i]);
    ef_free(rows);
}

int ef_store_outbox_sent(ef_store *st, const char *row_id, const char *platform_message_id,
                         bool as_template)
{
    const char *vals[3] = {row_id, platform_message_id, as_template ? "t" : "f"};
    return ef_store__exec_simple(
        st,
        "UPDATE messages SET delivery_status = 'sent', platform_message_id = $2, "
        "sent_at = now(), updated_at = now(), failed_reason = NULL, "
        "metadata = CASE WHEN $3::bool THEN metadata || "
        "'{\"sent_as\": \"template\"}'::jsonb ELSE metadata END "
        "WHERE id = $1 AND delivery_status = 'queued'",
        3, vals);
}

int ef_store_outbox_retry(ef_store *st, const char *row_id, int64_t delay_ms, const char *reason,
                          bool count_attempt)
{
    char delay[32];
    snprintf(delay, sizeof(delay), "%lld", (long long)delay_ms);
    char *why = ef_store__clip_utf8(reason, OUTBOX_REASON_MAX);
    const char *vals[4] = {row_id, delay, why, count_attempt ? "1" : "0"};
    int rc = ef_store__exec_simple(
        st,
        "UPDATE messages SET next_attempt_at = now() + ($2::bigint * interval "
        "'1 millisecond'), retry_count = retry_count + $4::int, "
        "failed_reason = $3, updated_at = now() "
        "WHERE id = $1 AND delivery_status = 'queued'",
        4, vals);
    ef_free(why);
    return rc;
}

int ef_store_outbox_failed(ef_store *st, const char *row_id, const char *reason,
                           bool mark_undeliverable)
{
    /* The reason is cut to valid UTF-8 the columns take, so that failing a
     * row cannot itself fail on the reason's data. */
    char *why = ef_store__clip_utf8(reason, OUTBOX_REASON_MAX);
    const char *vals[3] = {row_id, why, mark_undeliverable ? "t" : "f"};
    int rc = ef_store__exec_simple(
        st,
        "WITH m AS (UPDATE messages SET delivery_status = 'failed', "
        "failed_reason = $2, failed_at = now(), updated_at = now() "
        "WHERE id = $1 AND delivery_status = 'queued' RETURNING conversation_id) "
        "UPDATE conversations SET undeliverable = true, "
        "undeliverable_reason = $2, updated_at = now() "
        "WHERE $3::bool AND id IN (SELECT conversation_id FROM m)",
        3, vals);
    ef_free(why);
    return rc;
}

int ef_store_outbox_migrate(ef_store *st, const char *row_id, const char *new_chat_id)
{
    const char *vals[2] = {row_id, new_chat_id};
    return ef_store__exec_simple(
        st,
        "UPDATE conversations o SET chat_id = $2, chat_type = 'supergroup', "
        "updated_at = now() "
        "WHERE o.id = (SELECT conversation_id FROM messages WHERE id = $1) "
        "AND NOT EXISTS (SELECT 1 FROM conversations n WHERE n.integration_id "
        "IS NOT DISTINCT FROM o.integration_id AND n.platform = o.platform "
        "AND n.chat_id = $2 AND n.status <> 'closed')",
        2, vals);
}

int ef_store_dispatch_lock(ef_store *st)
{
    /* Held locks survive while the session does; after a reconnect it is
     * taken again. This connection takes no other advisory lock. */
    PGresult *r =
        ef_store__exec(st,
                       "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                       "AND pid = pg_backend_pid()) "
                       "OR pg_try_advisory_lock(7310553102881624771)",
                       0, NULL);
    if (!r)
        return st->last_error;
    bool got = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return got ? 0 : EF_ECONFLICT;
}
