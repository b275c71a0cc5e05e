-- 019_new_chat_lean.sql -- what a chat's first message pays for, cut to
-- what a query needs (issue 8, speed; docs/performance.md).
--
-- A business's traffic is many chats with few messages each: in make bench
-- about half the updates are a chat's first, and each wrote a customer
-- (six index entries), a conversation (eight) and ran four foreign-key
-- queries before its message was stored. pg_stat_statements (track = all)
-- showed two of those queries per new chat on the same integrations row
-- (the insert's check, and the update's in the same transaction: a row
-- inserted by the running transaction is checked again whatever changed),
-- each a SELECT ... FOR KEY SHARE of the one row every concurrent batch
-- locks, so their locks became multixacts: ~20 us of backend time each,
-- ~4 % of PostgreSQL's time under load.

-- ---- indexes no query needs ----------------------------------------------

-- The seed indexes users.email twice (the UNIQUE constraint's index
-- users_email_key and idx_users_email) and conversations.session_id twice
-- (conversations_session_id_key and idx_conversations_session_id): the
-- unique indexes serve every lookup (operator login by email, ef_session by
-- session id). is_active and created_at are read from rows found by key,
-- never searched.
DROP INDEX IF EXISTS idx_users_email;
DROP INDEX IF EXISTS idx_users_is_active;
DROP INDEX IF EXISTS idx_users_created_at;
DROP INDEX IF EXISTS idx_conversations_session_id;
COMMENT ON INDEX conversations_session_id_key IS 'Serves ef_session (session by id).';
COMMENT ON INDEX users_email_key IS 'Serves operator login and ef_operator_upsert (by e-mail).';

-- ---- references checked where they can break, not per row ------------------

-- conversations.integration_id: the ingest functions copy it from the
-- integration the event came through (src/gateway/channels.c resolves it
-- from a row they read), and integrations are never deleted by the gateway
-- or the console: one with history is disabled (004). What ON DELETE
-- RESTRICT did is a statement-level trigger: deleting an integration that
-- has conversations fails with the same SQLSTATE (23503). Integration ids
-- (uuid keys) are never updated.
ALTER TABLE conversations DROP CONSTRAINT IF EXISTS conversations_integration_id_fkey;
COMMENT ON COLUMN conversations.integration_id IS
    'integrations.id; no foreign key (019): deleting an integration with conversations is refused '
    'by trigger integrations_restrict_delete';

CREATE FUNCTION ef_integrations_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone g
                WHERE EXISTS (SELECT 1 FROM conversations c WHERE c.integration_id = g.id)) THEN
        RAISE EXCEPTION 'an integration with conversations cannot be deleted: disable it instead'
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER integrations_restrict_delete AFTER DELETE ON integrations
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION ef_integrations_deleted();

-- users.platform: a new customer's platform is the event's, which the
-- gateway takes from its own registry of platforms (the platforms rows are
-- seeded by the migrations, never deleted or renamed). The per-row check
-- locked the one platforms row every new customer shares. Deleting a
-- platform that has users fails (23503), as before.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_platform_fkey;
COMMENT ON COLUMN users.platform IS
    'platforms.id; no foreign key (019): deleting a platform with users is refused by trigger '
    'platforms_restrict_delete';

CREATE FUNCTION ef_platforms_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM gone g WHERE EXISTS (SELECT 1 FROM users u WHERE u.platform = g.id)) THEN
        RAISE EXCEPTION 'a platform with users cannot be deleted'
              USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER platforms_restrict_delete AFTER DELETE ON platforms
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION ef_platforms_deleted();

-- conversations.user_id keeps its foreign key: a customer being erased
-- (ef_customer_forget locks the user row) must not get a conversation
-- committed beside the erasure, and its check locks a row of that customer
-- only, which no other chat shares.

-- ---- the outbox figures of /metrics in one pass ------------------------------

-- 010 counted the queued rows three times (queued, due, the oldest), every
-- 5 s (src/gateway/metrics.c): with a backlog of 30,000 replies behind
-- Telegram's 30/s that was ~150 ms of backend time per sample. One scan of
-- the queued rows (idx_messages_outbox) gives all three.
CREATE OR REPLACE FUNCTION ef_outbox_figures() RETURNS TABLE (queued bigint, due bigint,
                                                              failed bigint,
                                                              oldest_queued_s bigint)
LANGUAGE sql STABLE AS $$
    SELECT q.n, q.due,
           (SELECT count(*) FROM messages
             WHERE direction = 'outbound' AND delivery_status = 'failed'),
           coalesce(floor(extract(epoch FROM now() - q.oldest))::bigint, 0)
      FROM (SELECT count(*) AS n,
                   count(*) FILTER (WHERE coalesce(next_attempt_at, created_at) <= now()) AS due,
                   min(created_at) AS oldest
              FROM messages
             WHERE direction = 'outbound' AND delivery_status = 'queued') q
$$;
