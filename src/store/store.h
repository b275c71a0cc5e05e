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
    EF_ING_FAILED,    /* the store could not commit: retry later (503) */
    EF_ING_REJECTED,  /* the data cannot be stored (too long, NULL key, ...): permanent,
                         this item only; error says why (4xx to the sender); written to
                         dead_letters (dead_lettered) */
    EF_ING_STALE      /* the decision was made from a stale session (the conversation's
                         id or version in PostgreSQL differs from base_*): nothing of the
                         event was written; decide again from PostgreSQL and resubmit */
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
    /* The session the decision was made from, checked against the locked
     * conversation row when has_base (else not checked): its conversation
     * (NULL: none yet, the decision starts a new one) and version. */
    bool has_base;
    const char *base_conversation_id;
    int64_t base_version;

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
    int64_t version;         /* the conversation's version after the commit (sessions keep it) */
    bool replies_queued;     /* the commit put replies into the outbox */
    char error[200];         /* EF_ING_REJECTED: the database's reason, one line, no data */
    bool dead_lettered;      /* EF_ING_REJECTED: the event is in dead_letters */
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
 * the inbound row (deduplicated on (integration, platform,
 * platform_message_id)), edits, reactions, blocks, migrations, conversation
 * counters. Each item gets its status and the conversation's committed
 * state. Every event is scoped by its msg->integration_id.
 * Errors are classified (ef_store_classify): when the database refuses the
 * batch for its DATA (a value too long, a NULL key, a check or syntax
 * error), the batch is retried one item per transaction, in order, so only
 * the bad items end EF_ING_REJECTED (with item->error) and the others
 * commit; the call then returns 0. On an outage (connection lost, server
 * shutting down, too many connections, deadlock retries exhausted) it
 * returns EF_EDB: nothing was committed and every item is EF_ING_FAILED.
 * A class 42 error (undefined function or table, privilege: the schema is
 * not what this code expects, e.g. migrations not applied) is no item's
 * fault either: EF_EDB and EF_ING_FAILED, though ef_store_ok() stays true.
 * An outage during the item-by-item retry returns EF_EDB too: the items
 * before it keep their status (committed; a redelivery finds them
 * duplicate), the rest are EF_ING_FAILED.
 * Rejected items are then written to dead_letters (integration, platform,
 * the event as JSON, the reason) in one transaction of their own; an item
 * that could not be (outage) keeps dead_lettered false and the call still
 * returns 0.
 * PostgreSQL is the truth for a conversation: a decision (fsm_json) is
 * applied only to an active conversation (escalated or paused: the inbound
 * row is stored with its intent, no reply, state or status change, and
 * metadata.decision.skipped says why); an item with has_base whose base
 * differs from the locked row ends EF_ING_STALE with nothing written, and
 * so does every later item of the same chat (integration, platform, chat
 * id) in the call. */
int ef_store_ingest(ef_store *st, ef_ingest_item *items, size_t n);

/* What a failed statement means, from its SQLSTATE (NULL: no result at all,
 * i.e. the connection is gone): EF_EDB for an outage worth retrying
 * (classes 08 connection, 53 resources, 57 operator intervention incl.
 * admin shutdown, 58 system, 40 transaction rollback incl. deadlock and
 * serialization, XX internal, 72 snapshot, F0 config file, and 25006
 * read-only session, 55P03 lock timeout, 55006 object in use), EF_EINVAL
 * for an error in the data or the statement that repeating cannot fix (22
 * data exception, 23 integrity constraint, 42 syntax/access, 2x others,
 * anything else), 0 for classes 00-02 (not failures). Pure; unit-tested. */
int ef_store_classify(const char *sqlstate);

/* The conversation behind a session, for rebuilding a lost Redis session:
 * *out_json is {"session_id","conversation_id","user_id","platform",
 * "chat_id","status","state","context","created_at","version"} or
 * EF_ENOTFOUND. */
int ef_store_session_load(ef_store *st, const char *session_id, char **out_json);
/* The sessions of n chats (ef_chat_session for each) in one statement:
 * out[i] owned by the caller, NULL for a chat without an open
 * conversation. EF_EDB (every out[i] NULL) when PostgreSQL cannot tell. */
int ef_store_chat_sessions(ef_store *st, size_t n, const char *const *integration_ids,
                           const char *const *platforms, const char *const *chat_ids, char **out);

/* The chat's open conversation under one integration as a session JSON (the
 * shape Redis keeps: session_id, conversation_id, user_id, integration_id,
 * platform, chat_id, status, state, context, created_at, last_message_at,
 * version);
 * EF_ENOTFOUND when it has none; EF_EINVAL when integration_id is not a
 * UUID. A NULL integration_id means rows stored before integrations. */
int ef_store_chat_session(ef_store *st, const char *integration_id, const char *platform,
                          const char *chat_id, char **out_json);

/* Long-poll cursor of one integration (Telegram: the next update_id, as
 * text), advanced only after the batch it follows committed.
 * EF_ENOTFOUND when none was saved; *cursor owned by the caller. */
int ef_store_cursor_get(ef_store *st, const char *integration_id, char **cursor);
int ef_store_cursor_set(ef_store *st, const char *integration_id, const char *cursor);

/* ---- the outbox (outbox.c): queued outbound rows and their delivery ---- */

/* One queued outbound row with what the dispatcher needs of its
 * conversation. All strings owned (ef_outbox_rows_free). */
typedef struct ef_outbox_row {
    char *row_id;
    char *conversation_id;
    char *integration_id; /* the conversation's integration (NULL: legacy row) */
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
    int64_t age_ms;          /* how long ago it was queued, by the database's clock */
    char *prev_row_id;       /* the row queued just before it in its conversation, still
                                queued (NULL: none): it must go first */
    bool prev_due;           /* that row is due too */
} ef_outbox_row;

/* Where a walk through the due rows stands: the (next_attempt_at,
 * created_at) of the last row read, as the database wrote them. Zeroed:
 * from the first due row. */
typedef struct ef_outbox_cursor {
    char at[64];
    char created[64];
} ef_outbox_cursor;

/* Every call below returns EF_EINVAL when the database refuses the data (a
 * row id that is not a UUID, a platform message id longer than its column):
 * the caller fails the row instead of retrying it; EF_EDB on an outage.
 * outbox_retry and outbox_failed cut reason to at most 1000 bytes of valid
 * UTF-8 (a byte that is not UTF-8 becomes '?'), so failing a row cannot
 * fail on its reason. */

/* Queued rows that are due (next_attempt_at <= now()), in the order of
 * (next_attempt_at, created_at) -- a chat's rows in the order they were
 * queued, since a retry moves the chat's later rows along with it -- after
 * *cur, at most limit; *cur moves to the last row returned. One
 * statement: the walk is served by idx_messages_outbox (sql/006): nothing
 * due costs one index probe; each row's prev_row_id by an index probe of
 * its chat in idx_messages_queued_chat (sql/023), which no statistics (nor
 * their absence) can turn into a walk of every queued row. */
int ef_store_outbox_fetch_due(ef_store *st, ef_outbox_cursor *cur, size_t limit,
                              ef_outbox_row **rows, size_t *n);
/* The same without the rows of the integrations in skip (a PostgreSQL uuid[]
 * literal such as "{id1,id2}"; NULL: none): the dispatcher passes the bots
 * whose share of its memory is full, so that one flooded bot cannot hold
 * back the replies of the others. */
int ef_store_outbox_fetch_due_skip(ef_store *st, ef_outbox_cursor *cur, size_t limit,
                                   const char *skip, ef_outbox_row **rows, size_t *n);
/* The same from the first due row. */
int ef_store_outbox_fetch(ef_store *st, size_t limit, ef_outbox_row **rows, size_t *n);
/* The fetch's statement ($1 limit, $2 and $3 the cursor or NULL, $4 the
 * skipped integrations or NULL), for EXPLAIN: tests check its plan. */
const char *ef_store_outbox_fetch_sql(void);
/* The sent record's statement ($1 the rows as JSON), for EXPLAIN. */
const char *ef_store_outbox_sent_sql(void);
void ef_outbox_rows_free(ef_outbox_row *rows, size_t n);
/* Frees one row's strings (the struct itself is the caller's). */
void ef_outbox_row_cleanup(ef_outbox_row *r);
/* queued -> sent, with the platform's id for the message. as_template: what
 * went out was the re-engagement template, not the row's text (recorded in
 * metadata.sent_as so operators can see it). */
int ef_store_outbox_sent(ef_store *st, const char *row_id, const char *platform_message_id,
                         bool as_template);
/* Several sent outcomes in one statement, so one commit (one WAL flush)
 * records them all: a dispatcher sending for many bots records each
 * outcome otherwise with a commit of its own, which caps its sends at the
 * disk's flush rate (~270/s here). 0; EF_EINVAL when the database refuses
 * one of them, and then none is recorded (record them one at a time to
 * find it); EF_EDB on an outage. */
typedef struct ef_outbox_sent {
    const char *row_id;
    const char *platform_message_id;
    bool as_template;
} ef_outbox_sent;
int ef_store_outbox_sent_many(ef_store *st, const ef_outbox_sent *s, size_t n);
/* Stays queued, next attempt after delay_ms; counts an attempt when asked.
 * The later queued rows of its conversation are moved to no earlier than
 * that, so that the due rows keep each chat's order. */
int ef_store_outbox_retry(ef_store *st, const char *row_id, int64_t delay_ms, const char *reason,
                          bool count_attempt);
/* queued -> failed with the reason; mark_undeliverable also flags the
 * conversation (the customer blocked us). */
int ef_store_outbox_failed(ef_store *st, const char *row_id, const char *reason,
                           bool mark_undeliverable);
/* The chat moved (Telegram group -> supergroup): the row's conversation
 * follows it. */
int ef_store_outbox_migrate(ef_store *st, const char *row_id, const char *new_chat_id);

/* The sending lease (sql/006 outbox_lease): one dispatcher sends at a time
 * across gateways. Takes or renews it for holder (a name unique to the
 * process) for lease_ms from the database's now(): 0 with *epoch, which
 * changes whenever the lease changed hands or lapsed since (then what the
 * holder kept in memory may be stale: re-read the outbox);
 * EF_ECONFLICT while another holder's lease runs. The holder must stop
 * starting sends lease_ms after it SENT this call (its clock), which is
 * never later than the lease's end in the database. */
int ef_store_outbox_lease(ef_store *st, const char *holder, int64_t lease_ms, int64_t *epoch);
/* Gives the lease up now (shutdown), when holder has it. */
int ef_store_outbox_lease_release(ef_store *st, const char *holder);

/* ---- integrations (integrations.c): connected bots, numbers, shops ------ */

/* One integrations row. Credentials stay sealed here: the gateway opens
 * them with its key ring (base/crypto.h). All strings owned. */
typedef struct ef_integration_row {
    char *id;
    char *platform;
    char *name;
    char *external_id; /* the channel key: bot id, phone_number_id, ... (NULL: none) */
    char *status;      /* pending | connected | error | disconnected */
    char *status_message;
    char *settings_json; /* JSON object ("{}" when none) */
    char *source;        /* config | cli | api */
    bool enabled;
    bool is_default; /* the platform's default (served on its bare webhook path) */
    uint8_t *sealed; /* credentials_encrypted; NULL when none */
    size_t sealed_len;
    char *key_id; /* encryption_key_id: the sealing key's fingerprint */
} ef_integration_row;

/* What a new or updated integration is made of; strings borrowed. */
typedef struct ef_integration_in {
    const char *id; /* NULL: a new random one (the id credentials are sealed for) */
    const char *platform;
    const char *name;
    const char *external_id;
    const char *settings_json; /* NULL: "{}" */
    const char *source;        /* config | cli | api */
    bool is_default;
    const uint8_t *sealed;
    size_t sealed_len;
    const char *key_id;
} ef_integration_in;

/* Every integration (disabled ones too when include_disabled), default
 * ones first, then by creation time. */
int ef_store_integrations_list(ef_store *st, bool include_disabled, ef_integration_row **rows,
                               size_t *n);
void ef_integration_rows_free(ef_integration_row *rows, size_t n);
/* One row by id: EF_ENOTFOUND, or EF_EINVAL when id is not a UUID. */
int ef_store_integration_get(ef_store *st, const char *id, ef_integration_row *row);
void ef_integration_row_cleanup(ef_integration_row *row);
/* Inserts a new row (status pending, enabled) and NOTIFYs; *id_out owned.
 * EF_ECONFLICT when the platform already has that external_id or that name. */
int ef_store_integration_add(ef_store *st, const ef_integration_in *in, char **id_out);
/* The platform's configuration-sourced default (environment variables):
 * created, or updated in place (credentials, settings, external_id;
 * status back to pending when the credentials changed), and NOTIFYs. The
 * first time it also adopts what was stored before integrations existed:
 * conversations, messages and poll cursors of that platform with no
 * integration get this one. *id_out owned. in->id is the id the
 * credentials were sealed for: when the default exists under another id,
 * nothing is written and EF_ECONFLICT comes back with *id_out that id (seal
 * for it and call again). NULL in->id (nothing sealed): any row. */
int ef_store_integration_upsert_default(ef_store *st, const ef_integration_in *in, char **id_out);
/* A further configuration-sourced row (a second WhatsApp number of the
 * environment): created, or its credentials and settings updated, keyed by
 * (platform, external_id). NOTIFYs. in->id as for the default: EF_ECONFLICT
 * and *id_out the existing row's id when it is another. */
int ef_store_integration_upsert_config(ef_store *st, const ef_integration_in *in, char **id_out);
/* enabled=false: status disconnected, not served; true: status pending. NOTIFYs.
 * EF_ENOTFOUND for an unknown id. */
int ef_store_integration_set_enabled(ef_store *st, const char *id, bool enabled);
/* How many integrations (disabled ones too) hold sealed credentials, the
 * web chat's default aside (its key is made again at every start). */
int ef_store_integrations_sealed_count(ef_store *st, long *n);
/* Health as the gateway sees it (connected after a good call, error with a
 * readable message after e.g. a 401). Changes nothing and sends no NOTIFY
 * when status and message are already those. */
int ef_store_integration_set_status(ef_store *st, const char *id, const char *status,
                                    const char *message);
/* Replaces one row's sealed credentials (key rotation). NOTIFYs. */
/* Replaces the blob only while it is still old (n_old bytes): a legacy
 * blob re-sealed on open does not overwrite a newer one. 0 also when the
 * row changed meanwhile (nothing written). */
int ef_store_integration_upgrade_seal(ef_store *st, const char *id, const uint8_t *old,
                                      size_t n_old, const uint8_t *sealed, size_t n,
                                      const char *key_id);
int ef_store_integration_reseal(ef_store *st, const char *id, const uint8_t *sealed, size_t n,
                                const char *key_id);
/* LISTEN on the channel every change above NOTIFYs ("ef_integrations",
 * payload: the integration id), then wait: 1 when a notification came
 * (all pending ones are consumed), 0 after timeout_ms, EF_EDB when the
 * connection is lost (LISTEN again after a reconnect). */
int ef_store_integrations_listen(ef_store *st);
int ef_store_wait_notify(ef_store *st, int timeout_ms);

/* Creates or updates an operator/admin account (users.role), keyed by
 * e-mail. *created tells which. */
int ef_store_operator_upsert(ef_store *st, const char *email, const char *name, const char *role,
                             const char *password_hash, bool *created);

/* ---- operators and the console API (operators.c) ------------------------ */

/* An operator or admin account as the login sees it. Strings owned
 * (ef_operator_cleanup, which also wipes the hash). */
typedef struct ef_operator {
    char *id;
    char *name;
    char *email;
    char *role; /* operator | admin */
    char *password_hash;
    bool active;
} ef_operator;

void ef_operator_cleanup(ef_operator *op);
/* The operator or admin with this e-mail (compared lower-cased): 0, or
 * EF_ENOTFOUND (customers have no login). */
int ef_store_operator_by_email(ef_store *st, const char *email, ef_operator *out);
/* `operator add --reset-password` (sql/016): replaces the password, name
 * and role of the operator or admin with this e-mail, revokes all its
 * refresh tokens and records an operator_audit row naming actor, in one
 * transaction; creates the account when the e-mail has none. *out_json:
 * {"result":"reset","id","revoked"} | {"result":"created","id"} |
 * {"result":"customer"} (a customer's e-mail: nothing changed). */
int ef_store_operator_reset_password(ef_store *st, const char *email, const char *name,
                                     const char *role, const char *password_hash, const char *actor,
                                     char **out_json);
/* A successful login: stores a new refresh token family (token_hash: the
 * SHA-256 hex of the token; ip may be NULL; expiry now + ttl_s), sets
 * last_login_at, and replaces the password hash by rehash when not NULL. */
int ef_store_login_ok(ef_store *st, const char *user_id, const char *token_hash, const char *ip,
                      const char *user_agent, int ttl_s, const char *rehash);
/* Rotates refresh token old_hash to new_hash (same family, expiry now +
 * ttl_s). *out_json: {"result":"ok","user_id","role","name"} or result
 * unknown | expired | revoked | inactive | reuse (a token already rotated
 * away came back: its whole family is revoked by this call). */
int ef_store_refresh_rotate(ef_store *st, const char *old_hash, const char *new_hash,
                            const char *ip, const char *user_agent, int ttl_s, char **out_json);
/* Logout: revokes the family of the user's token token_hash; *n (may be
 * NULL) gets how many tokens were revoked (0: unknown token). */
int ef_store_refresh_revoke(ef_store *st, const char *user_id, const char *token_hash, long *n);
/* Logout everywhere: revokes every token of the user. */
int ef_store_refresh_revoke_all(ef_store *st, const char *user_id, long *n);
/* Every operator and admin, by e-mail: {"operators":[{"id","email","name",
 * "role","active","last_login_at","created_at"}]} (never a hash). */
int ef_store_operators_list(ef_store *st, char **out_json);

/* The console's list, newest activity first: status (NULL: any), q
 * (NULL/"": no search; matched in names, chat ids and message texts),
 * at most limit rows before the cursor (NULL: the top). *out_json:
 * {"conversations":[...],"next_before":cursor|null}. EF_EINVAL for a bad
 * status or cursor. */
int ef_store_conversations_list(ef_store *st, const char *status, const char *q, int limit,
                                const char *before, char **out_json);
/* One conversation with its last msg_limit messages (without the
 * platform-internal 'system' rows) and its events; EF_ENOTFOUND, or
 * EF_EINVAL when id is not a UUID. */
int ef_store_conversation_get(ef_store *st, const char *id, int msg_limit, char **out_json);
/* claim | release | close | escalate by the operator, audited in
 * conversation_events when the status or owner changes. admin: may act on
 * a conversation another operator holds (except claim). *out_json:
 * {"result":"ok","changed","session_id","conversation"} or result
 * notfound | closed | held (with "holder"). */
int ef_store_conversation_act(ef_store *st, const char *id, const char *operator_id,
                              const char *action, bool admin, char **out_json);
/* The operator's reply, queued in the outbox (role operator, outbound,
 * delivery_status queued); takes the conversation over first when nobody
 * holds it. Results as ef_store_conversation_act plus "message". */
int ef_store_conversation_reply(ef_store *st, const char *id, const char *operator_id,
                                const char *text, bool admin, char **out_json);

/* ---- personal data (personal.c) --------------------------------------- */

/* Erases one customer (platform, platform user id; integration_id NULL:
 * every integration) in one transaction and records it in data_erasures
 * (sql/008_personal_data.sql). *out_json: {"result":"erased","erased":{counts},
 * "sessions":[session ids],"chats":[[scope, chat id]]} (the Redis keys to
 * delete). EF_ENOTFOUND when no such customer, EF_EINVAL for an
 * integration id that is not a UUID. */
int ef_store_customer_forget(ef_store *st, const char *platform, const char *platform_user_id,
                             const char *integration_id, char **out_json);
/* One retention batch (at most limit rows of one kind deleted, one
 * transaction, lock waits bounded by lock_timeout_ms): *out_json
 * {"messages","conversations","users","dead_letters"} deleted; all zero
 * when nothing older than days is left. */
int ef_store_retention_batch(ef_store *st, int days, int limit, int lock_timeout_ms,
                             char **out_json);

/* ---- Redis (kv.c) ------------------------------------------------------ */

typedef struct ef_kv ef_kv;

/* redis://host:port/db, or rediss://host:port/db for TLS (the server's
 * certificate verified against the system CAs or ef_kv_set_tls_files' CA,
 * its name against host; a refusal is an error like any failed connect,
 * e.g. "Redis TLS: certificate verify failed: ..."). Connects lazily; every
 * connect and command is bounded by the timeout below (a TLS connect: the
 * TCP connect and the handshake each). After a failure (refused, timed out, the
 * connection lost) the kv is down: calls fail at once with EF_EIO, without
 * touching the network, for a backoff of 1 s that doubles while Redis stays
 * down (4 s at most), so a slow or hung Redis costs each thread one
 * timeout per backoff, never one per call. */
ef_kv *ef_kv_new(const char *redis_url);
/* The connect and command timeout of every kv, process-wide (default
 * 200 ms; EF_REDIS_TIMEOUT_MS). Set it before the kvs connect. */
void ef_kv_set_timeout_ms(int ms);
/* The TLS client files of every rediss:// kv, process-wide, copied: the
 * CA file trusted instead of the system store, and a client certificate
 * with its key (NULL or "" for none; EF_REDIS_TLS_*_FILE). Kvs read them
 * at each connect. */
void ef_kv_set_tls_files(const char *ca_file, const char *cert_file, const char *key_file);
void ef_kv_free(ef_kv *kv);
const char *ef_kv_errmsg(const ef_kv *kv);
int ef_kv_ping(ef_kv *kv);

/* session:{session_id} = JSON, with a TTL in seconds. */
int ef_kv_session_put(ef_kv *kv, const char *session_id, const char *json, int ttl);
/* EF_ENOTFOUND when absent; *out owned by the caller. */
int ef_kv_session_get(ef_kv *kv, const char *session_id, char **out);
/* chat:{scope}:{chat_id} -> session_id, same TTL as the session. scope is
 * the integration id (a chat id under two bots is two conversations). */
int ef_kv_chat_session_put(ef_kv *kv, const char *scope, const char *chat_id,
                           const char *session_id, int ttl);
int ef_kv_chat_session_get(ef_kv *kv, const char *scope, const char *chat_id, char **out);
/* Deletes session:{session_id} (a status changed in PostgreSQL: the next
 * message reads the truth from there). 0 also when it was absent. */
int ef_kv_session_del(ef_kv *kv, const char *session_id);
/* Deletes chat:{scope}:{chat_id} (a customer's data erased). 0 also when
 * it was absent. */
int ef_kv_chat_session_del(ef_kv *kv, const char *scope, const char *chat_id);
/* A batch's sessions: out[i] = session:{id} of chat:{scopes[i]}:{chat_ids[i]},
 * NULL when either is absent (owned by the caller). Two round trips (MGET
 * each way) whatever n. EF_EIO (every out[i] NULL) when Redis failed. */
int ef_kv_sessions_get(ef_kv *kv, size_t n, const char *const *scopes, const char *const *chat_ids,
                       char **out);
/* One session to write back: session:{session_id} = json, and when
 * chat_id is set chat:{scope}:{chat_id} = session_id. */
typedef struct ef_kv_session {
    const char *session_id, *json, *scope, *chat_id;
} ef_kv_session;
/* A counter to add with a write-back: HINCRBY
 * metrics:{platform}:{YYYY-MM-DD}:{HH} field by, and the key's TTL. */
typedef struct ef_kv_count {
    const char *platform, *field;
    long long by; /* 0: nothing to count */
} ef_kv_count;
/* A batch's write-back in one round trip: s[0..n) pipelined, each key with
 * the TTL, then, when count is given with by > 0, its counter. Fails
 * (EF_EIO, ef_kv_errmsg) when Redis cannot be reached or refuses a SET; a
 * refused counter is not a failure. */
int ef_kv_write_back(ef_kv *kv, size_t n, const ef_kv_session *s, int ttl,
                     const ef_kv_count *count);

#endif /* EF_STORE_H */
