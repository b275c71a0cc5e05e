/*
 * outbox.c -- queued outbound rows (messages, direction outbound, status
 * queued) and their delivery outcomes, for the dispatcher; and the lease
 * that lets one dispatcher send at a time (sql/006). See store.h.
 *
 * Every outcome is written so that it cannot fail on its data: reasons are
 * cut to what the column keeps, UTF-8-safe (ef_store__clip_utf8); a data
 * error is still reported as EF_EINVAL so the caller fails the row instead
 * of retrying it forever.
 */
#include "store/store_int.h"

#include <json-c/json.h>
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

/* The walk of the due rows is served by idx_messages_outbox (sql/006
 * names this query there), the only index in its order; with no cursor,
 * $2 IS NULL folds away in the plan made for these parameters. The LATERAL
 * finds the row queued before each in its conversation, so that the
 * dispatcher keeps the chat's order when that one is not among the rows it
 * holds; it is served by idx_messages_queued_chat (sql/023) and by
 * construction can never walk the queued rows of every chat: it names
 * delivery_status = 'queued' without direction = 'outbound' (the same rows:
 * only outbound rows have a delivery status), so it does not imply
 * idx_messages_outbox's predicate and that index cannot serve it whatever
 * the statistics say (without any, the planner walked it: 9 s a fetch with
 * 75,000 queued). Keep direction out of it. */
static const char FETCH_DUE_SQL[] =
    "WITH t AS (SELECT (now() - interval '250 milliseconds')::text AS at), d AS ("
    "SELECT m.id, m.conversation_id, c.platform, c.chat_id, c.chat_type, m.content, "
    "m.metadata::text, m.retry_count, c.undeliverable, c.undeliverable_reason, "
    "(extract(epoch FROM m.next_attempt_at) * 1000)::bigint, "
    "(extract(epoch FROM c.last_inbound_at) * 1000)::bigint, c.integration_id, "
    "greatest(0, (extract(epoch FROM now() - m.created_at) * 1000)::bigint), "
    "m.next_attempt_at::text, m.created_at::text, p.id, p.next_attempt_at <= now() "
    "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
    "LEFT JOIN LATERAL (SELECT q.id, q.next_attempt_at FROM messages q "
    "WHERE q.conversation_id = m.conversation_id AND q.delivery_status = 'queued' "
    "AND q.created_at < m.created_at "
    "ORDER BY q.created_at DESC LIMIT 1) p ON true "
    "WHERE m.direction = 'outbound' AND m.delivery_status = 'queued' "
    "AND m.next_attempt_at <= now() "
    "AND ($2::timestamptz IS NULL OR (m.next_attempt_at, m.created_at) > "
    "($2::timestamptz, $3::timestamptz)) "
    "AND ($4::uuid[] IS NULL OR m.integration_id IS NULL OR m.integration_id <> ALL ($4::uuid[])) "
    "ORDER BY m.next_attempt_at, m.created_at LIMIT $1::int) "
    "SELECT d.*, t.at FROM t LEFT JOIN d ON true";

const char *ef_store_outbox_fetch_sql(void)
{
    return FETCH_DUE_SQL;
}

/* Queued rows recorded sent ($1: a JSON array of {id, pmid, tpl}), planned
 * at each call for the table as it is then:
 * - not a prepared statement: its generic plan is made once, at its sixth
 *   run. Session 7 prepared it; a dispatcher started on a young database
 *   kept the plan made for a few hundred rows (a hash join over a walk of
 *   messages) while the table grew, and with 236,000 rows each call took
 *   50-115 ms of PostgreSQL's CPU (make bench, session 8: half of
 *   PostgreSQL's time at a steady 2,000/s);
 * - the ids also as an array (`m.id = ANY (...)`): jsonb_to_recordset is
 *   estimated at 100 rows whatever it holds, so without it the planner
 *   walks a table of up to ~50,000 rows rather than probe it 100 times;
 *   with it the primary key is probed for the ids the call has.
 * Planning costs ~400,000 instructions a call, small beside a send. */
#define SENT_SQL                                                                                   \
    "UPDATE messages m SET delivery_status = 'sent', platform_message_id = s.pmid, "               \
    "sent_at = now(), updated_at = now(), failed_reason = NULL, "                                  \
    "metadata = CASE WHEN s.tpl THEN m.metadata || '{\"sent_as\": \"template\"}'::jsonb "          \
    "ELSE m.metadata END "                                                                         \
    "FROM jsonb_to_recordset($1::jsonb) AS s(id uuid, pmid text, tpl bool) "                       \
    "WHERE m.id = s.id AND m.delivery_status = 'queued' "                                          \
    "AND m.id = ANY (ARRAY(SELECT (e->>'id')::uuid FROM jsonb_array_elements($1::jsonb) e))"

const char *ef_store_outbox_sent_sql(void)
{
    return SENT_SQL;
}

static void read_row(PGresult *r, int k, ef_outbox_row *o)
{
    o->row_id = col_str(r, k, 0);
    o->conversation_id = col_str(r, k, 1);
    o->platform = col_str(r, k, 2);
    o->chat_id = col_str(r, k, 3);
    o->chat_type = col_str(r, k, 4);
    o->text = col_str(r, k, 5);
    o->meta_json = col_str(r, k, 6);
    o->retry_count = (int)col_int64(r, k, 7);
    o->undeliverable = PQgetvalue(r, k, 8)[0] == 't';
    o->undeliverable_reason = col_str(r, k, 9);
    o->due_ms = col_int64(r, k, 10);
    o->last_inbound_ms = col_int64(r, k, 11);
    o->integration_id = col_str(r, k, 12);
    o->age_ms = col_int64(r, k, 13);
    o->prev_row_id = col_str(r, k, 16);
    o->prev_due = PQgetvalue(r, k, 17)[0] == 't';
}

int ef_store_outbox_fetch_due_skip(ef_store *st, ef_outbox_cursor *cur, size_t limit,
                                   const char *skip, ef_outbox_row **rows, size_t *n)
{
    char lim[32];
    snprintf(lim, sizeof(lim), "%zu", limit);
    bool from_start = !cur || !cur->at[0] || !cur->created[0];
    const char *vals[4] = {lim, from_start ? NULL : cur->at, from_start ? NULL : cur->created,
                           skip};
    PGresult *r = ef_store__exec(st, FETCH_DUE_SQL, 4, vals);
    if (!r)
        return st->last_error;
    /* Always one row at least: with no due row, one of NULLs but for the
     * statement's now() less 250 ms (the last column). */
    size_t rows_n = (size_t)PQntuples(r), cnt = 0;
    ef_outbox_row *out = ef_calloc(rows_n ? rows_n : 1, sizeof(*out));
    for (size_t i = 0; i < rows_n; i++)
        if (!PQgetisnull(r, (int)i, 0))
            read_row(r, (int)i, &out[cnt++]);
    if (cnt && cur) {
        snprintf(cur->at, sizeof(cur->at), "%s", PQgetvalue(r, (int)cnt - 1, 14));
        snprintf(cur->created, sizeof(cur->created), "%s", PQgetvalue(r, (int)cnt - 1, 15));
    }
    if (skip && cur && cnt < limit && rows_n > 0) {
        /* Every due row after the cursor was read, and the ones left out
         * belong to bots whose share is full: the next fetch starts from
         * the statement's time rather than walk them all again (a backlog
         * of 30,000 at every wake: a third of PostgreSQL's time in make
         * bench). 250 ms before it, for rows of transactions still open
         * then; their rows come back with the next walk from the start
         * (ef_dispatch: when a bot's share frees, and every 10 s). */
        const char *now = PQgetvalue(r, (int)rows_n - 1, 18);
        snprintf(cur->at, sizeof(cur->at), "%s", now);
        snprintf(cur->created, sizeof(cur->created), "%s", now);
    }
    PQclear(r);
    *rows = out;
    *n = cnt;
    return 0;
}

int ef_store_outbox_fetch_due(ef_store *st, ef_outbox_cursor *cur, size_t limit,
                              ef_outbox_row **rows, size_t *n)
{
    return ef_store_outbox_fetch_due_skip(st, cur, limit, NULL, rows, n);
}

int ef_store_outbox_fetch(ef_store *st, size_t limit, ef_outbox_row **rows, size_t *n)
{
    return ef_store_outbox_fetch_due(st, NULL, limit, rows, n);
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
    ef_free(r->prev_row_id);
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
    ef_outbox_sent one = {row_id, platform_message_id, as_template};
    return ef_store_outbox_sent_many(st, &one, 1);
}

int ef_store_outbox_sent_many(ef_store *st, const ef_outbox_sent *s, size_t n)
{
    if (n == 0)
        return 0;
    json_object *arr = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "id", json_object_new_string(s[i].row_id));
        json_object_object_add(
            o, "pmid",
            s[i].platform_message_id ? json_object_new_string(s[i].platform_message_id) : NULL);
        json_object_object_add(o, "tpl", json_object_new_boolean(s[i].as_template));
        json_object_array_add(arr, o);
    }
    const char *vals[1] = {json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE)};
    /* Every row at once: one statement, one commit (one WAL flush) for the
     * lot, planned at each call (SENT_SQL). */
    int rc = ef_store__exec_simple(st, SENT_SQL, 1, vals);
    json_object_put(arr);
    return rc;
}

int ef_store_outbox_retry(ef_store *st, const char *row_id, int64_t delay_ms, const char *reason,
                          bool count_attempt)
{
    char delay[32];
    snprintf(delay, sizeof(delay), "%lld", (long long)delay_ms);
    char *why = ef_store__clip_utf8(reason, OUTBOX_REASON_MAX);
    const char *vals[4] = {row_id, delay, why, count_attempt ? "1" : "0"};
    /* The chat's later rows may not become due before this one: the due
     * fetch would hand them out first. The row's conversation and times
     * come to the second UPDATE as values (sub-selects of r, run once), so
     * its look-up is an index probe of that one chat whatever the
     * statistics say; like the fetch's LATERAL it names delivery_status
     * without direction, so idx_messages_queued_chat (sql/023) serves it
     * and idx_messages_outbox cannot: joined to r, without statistics, it
     * was planned as a walk of every queued row (109 ms per retry with
     * 80,000 queued). */
    int rc = ef_store__exec_simple(
        st,
        "WITH r AS (UPDATE messages SET next_attempt_at = now() + ($2::bigint * interval "
        "'1 millisecond'), retry_count = retry_count + $4::int, "
        "failed_reason = $3, updated_at = now() "
        "WHERE id = $1 AND delivery_status = 'queued' "
        "RETURNING conversation_id, created_at, next_attempt_at) "
        "UPDATE messages m SET next_attempt_at = (SELECT next_attempt_at FROM r) "
        "WHERE m.conversation_id = (SELECT conversation_id FROM r) "
        "AND m.delivery_status = 'queued' AND m.created_at > (SELECT created_at FROM r) "
        "AND m.next_attempt_at < (SELECT next_attempt_at FROM r)",
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

int ef_store_outbox_lease(ef_store *st, const char *holder, int64_t lease_ms, int64_t *epoch)
{
    char ms[32];
    snprintf(ms, sizeof(ms), "%lld", (long long)lease_ms);
    const char *vals[2] = {holder, ms};
    /* SET reads the row as it was: the epoch moves when the lease changes
     * hands or had lapsed, even for the same holder. */
    PGresult *r =
        ef_store__exec(st,
                       "UPDATE outbox_lease SET epoch = CASE WHEN holder = $1 AND until > now() "
                       "THEN epoch ELSE epoch + 1 END, holder = $1, "
                       "until = now() + $2::bigint * interval '1 millisecond' "
                       "WHERE id AND (holder = $1 OR until <= now()) RETURNING epoch",
                       2, vals);
    if (!r)
        return st->last_error;
    int rc = EF_ECONFLICT;
    if (PQntuples(r) == 1) {
        *epoch = col_int64(r, 0, 0);
        rc = 0;
    }
    PQclear(r);
    return rc;
}

int ef_store_outbox_lease_release(ef_store *st, const char *holder)
{
    const char *vals[1] = {holder};
    return ef_store__exec_simple(
        st, "UPDATE outbox_lease SET until = now() WHERE id AND holder = $1 AND until > now()", 1,
        vals);
}
