/*
 * store.h -- everything easyflow keeps: PostgreSQL (pg.c), Redis (kv.c),
 * schema migrations (migrate.c).
 *
 * Calls are named by intent. SQL text lives only in src/store/ and sql/.
 *
 * Thread model: an ef_store / ef_kv is one connection and belongs to one
 * thread at a time (a pipeline worker). Calls block on the network: never
 * call them from the event-loop thread.
 *
 * Errors: functions return 0 or a negative EF_E*; the object keeps the last
 * detailed message (ef_store_errmsg / ef_kv_errmsg) for the caller to log.
 */
#ifndef EF_STORE_H
#define EF_STORE_H

#include "base/crypto.h"
#include "base/ef.h"

/* ---- migrations (migrate.c) ------------------------------------------- */

/* Applies every pending sql/NNN_name.sql in dir, in order, each in its own
 * transaction, recording (version, name, checksum) in schema_migrations.
 * Safe when several processes run it at once (advisory lock). Refuses with
 * EF_ECONFLICT when an applied file's checksum changed, EF_EINVAL when dir
 * holds a badly named or duplicate-numbered file, EF_EDB on SQL errors.
 * *applied gets how many files were applied (0 when up to date).
 * err gets a one-line reason on failure. */
int ef_migrate_run(const char *pg_url, const char *dir, int *applied, char *err, size_t errlen);
/* Counts migrations in dir not yet applied (EF_EDB when unreachable,
 * EF_ECONFLICT when an applied file changed or is missing, like
 * ef_migrate_run). Takes no lock and creates nothing. */
int ef_migrate_pending(const char *pg_url, const char *dir, int *pending, char *err, size_t errlen);
/* Where the migrations live: $EF_SQL_DIR, else <exe>/../sql when present
 * (a build tree), else <exe>/../share/easyflow/sql, else the compiled-in
 * default. Owned by the caller. */
char *ef_migrate_default_dir(void);
/* `easyflow migrate [--sql-dir DIR] [--status]`: argv holds the arguments
 * after "migrate" (argv[0] is the first option, if any). Reads
 * EF_DATABASE_URL from the environment (default
 * postgresql://127.0.0.1:5432/easyflow); the directory is --sql-dir, else
 * ef_migrate_default_dir(). Prints "migrate: applied N migrations (first …
 * last)" or "migrate: up to date (N migrations)" on stdout; --status prints
 * one line per file: applied (with its UTC time), pending, changed, or
 * missing (applied, file gone). Failures print "easyflow migrate: <reason>"
 * on stderr (URLs redacted). Returns the process exit code: 0; 1 on failure
 * or when --status finds a changed or missing migration; 2 on a usage
 * error. */
int ef_migrate_cli(int argc, char **argv);

/* ---- PostgreSQL (pg.c) ------------------------------------------------- */

typedef struct ef_store ef_store;

/* The outcome of one event in a batch. */
typedef enum ef_ingest_status {
    EF_ING_PENDING = 0,
    EF_ING_STORED,    /* committed now */
    EF_ING_DUPLICATE, /* already committed before */
    EF_ING_IGNORED,   /* nothing to do (e.g. reaction on an unknown message) */
    EF_ING_FAILED     /* the store could not commit: retry later (503) */
} ef_ingest_status;

/* One event going into a batch, with what the bot decided (issue 3) and,
 * after ef_store_ingest(), what was committed. */
typedef struct ef_ingest_item {
    const ef_msg *msg; /* borrowed */

    /* Filled by nlp/fsm before the commit; NULL when absent. */
    const char *intent;
    const char *entities_json; /* JSON object */
    double confidence;
    const char *fsm_json; /* {"state":..,"context":{..},"status":..,"replies":[..]} */

    /* Results, owned by the item (ef_ingest_item_cleanup). */
    ef_ingest_status status;
    char *conversation_id;
    char *session_id;
    char *user_id;
    char *row_id; /* messages.id of the inbound row */
    char *state;
    char *conv_status;
    char *context_json;
    char *created_at; /* conversation created_at, ISO 8601 */
    int64_t messages_count;
    int64_t last_message_at; /* Unix seconds of the conversation's last update */
    bool replies_queued;     /* the commit put replies into the outbox */
} ef_ingest_item;

void ef_ingest_item_cleanup(ef_ingest_item *it);

/* Connects (connect_timeout seconds); NULL never: a store that could not
 * connect reports EF_EDB on use and reconnects on the next call. */
ef_store *ef_store_new(const char *pg_url);
void ef_store_free(ef_store *st);
const char *ef_store_errmsg(const ef_store *st);
/* True when the last call reached the server. */
bool ef_store_ok(const ef_store *st);
/* SELECT 1; reconnects when needed. */
int ef_store_ping(ef_store *st);

/* Commits a batch in ONE transaction, in order: user + conversation upsert,
 * the inbound row (deduplicated on (platform, platform_message_id)), edits,
 * reactions, blocks, migrations, conversation counters. Each item gets its
 * status and the conversation's committed state. On EF_EDB nothing was
 * committed and every item is EF_ING_FAILED. */
int ef_store_ingest(ef_store *st, ef_ingest_item *items, size_t n);

/* The conversation behind a session, for rebuilding a lost Redis session:
 * *out_json is {"session_id","conversation_id","user_id","platform",
 * "chat_id","status","state","context","created_at"} or EF_ENOTFOUND. */
int ef_store_session_load(ef_store *st, const char *session_id, char **out_json);

/* The chat's open conversation as a session JSON (the shape Redis keeps:
 * session_id, conversation_id, user_id, platform, chat_id, status, state,
 * context, created_at, last_message_at); EF_ENOTFOUND when it has none. */
int ef_store_chat_session(ef_store *st, const char *platform, const char *chat_id, char **out_json);
/* Marks seen[i] for each inbound event of msgs already stored (same
 * platform_message_id), so redeliveries never reach the bot again. */
int ef_store_seen(ef_store *st, const ef_msg *const *msgs, size_t n, bool *seen);

/* Long-poll offset persistence: the next update_id to ask for. */
int ef_store_poll_offset_get(ef_store *st, const char *bot_id, int64_t *offset);
int ef_store_poll_offset_set(ef_store *st, const char *bot_id, int64_t offset);

/* ---- the outbox (pg.c): queued outbound rows and their delivery -------- */

/* One queued outbound row with what the dispatcher needs of its
 * conversation. All strings owned (ef_outbox_rows_free). */
typedef struct ef_outbox_row {
    char *row_id;
    char *conversation_id;
    char *platform;
    char *chat_id;
    char *chat_type;
    char *text;
    char *meta_json;
    int retry_count;
    bool undeliverable;
    char *undeliverable_reason;
    int64_t due_ms;          /* next_attempt_at, Unix ms */
    int64_t last_inbound_ms; /* the customer's last message, Unix ms (0 = never) */
} ef_outbox_row;

/* Queued outbound rows, oldest first, at most limit. */
int ef_store_outbox_fetch(ef_store *st, size_t limit, ef_outbox_row **rows, size_t *n);
void ef_outbox_rows_free(ef_outbox_row *rows, size_t n);
/* Frees one row's strings (the struct itself is the caller's). */
void ef_outbox_row_cleanup(ef_outbox_row *r);
/* queued -> sent, with the platform's id for the message. as_template: what
 * went out was the re-engagement template, not the row's text (recorded in
 * metadata.sent_as so operators can see it). */
int ef_store_outbox_sent(ef_store *st, const char *row_id, const char *platform_message_id,
                         bool as_template);
/* Stays queued, next attempt after delay_ms; counts an attempt when asked. */
int ef_store_outbox_retry(ef_store *st, const char *row_id, int64_t delay_ms, const char *reason,
                          bool count_attempt);
/* queued -> failed with the reason; mark_undeliverable also flags the
 * conversation (the customer blocked us). */
int ef_store_outbox_failed(ef_store *st, const char *row_id, const char *reason,
                           bool mark_undeliverable);
/* The chat moved (Telegram group -> supergroup): the row's conversation
 * follows it. */
int ef_store_outbox_migrate(ef_store *st, const char *row_id, const char *new_chat_id);
/* Only one dispatcher may send at a time: a session advisory lock.
 * Returns 0 when this store holds it, EF_ECONFLICT when another does. */
int ef_store_dispatch_lock(ef_store *st);

/* Creates or updates an operator/admin account (users.role), keyed by
 * e-mail. *created tells which. */
int ef_store_operator_upsert(ef_store *st, const char *email, const char *name, const char *role,
                             const char *password_hash, bool *created);

/* ---- Redis (kv.c) ------------------------------------------------------ */

typedef struct ef_kv ef_kv;

/* redis://host:port/db. Connects lazily with a short timeout; a kv that is
 * down reports EF_EIO and retries the connection at most once a second. */
ef_kv *ef_kv_new(const char *redis_url);
void ef_kv_free(ef_kv *kv);
const char *ef_kv_errmsg(const ef_kv *kv);
int ef_kv_ping(ef_kv *kv);

/* session:{session_id} = JSON, with a TTL in seconds. */
int ef_kv_session_put(ef_kv *kv, const char *session_id, const char *json, int ttl);
/* EF_ENOTFOUND when absent; *out owned by the caller. */
int ef_kv_session_get(ef_kv *kv, const char *session_id, char **out);
/* chat:{platform}:{chat_id} -> session_id, same TTL as the session. */
int ef_kv_chat_session_put(ef_kv *kv, const char *platform, const char *chat_id,
                           const char *session_id, int ttl);
int ef_kv_chat_session_get(ef_kv *kv, const char *platform, const char *chat_id, char **out);
/* HINCRBY metrics:{platform}:{YYYY-MM-DD}:{HH} field by. */
int ef_kv_metric_incr(ef_kv *kv, const char *platform, const char *field, long long by);

#endif /* EF_STORE_H */
