-- ef:no-transaction
-- 023_outbox_chat_plan_proof.sql -- the outbox's per-chat look-ups read the
-- chat index whatever the planner's statistics say (issue 8: robustness,
-- speed).
--
-- The dispatcher's fetch (FETCH_DUE_SQL, src/store/outbox.c) asks, for each
-- due row it returns, for the queued row before it in its conversation; a
-- retry (ef_store_outbox_retry) moves the chat's later queued rows. Both
-- named `direction = 'outbound' AND delivery_status = 'queued'`, which is
-- the predicate of idx_messages_outbox (002: next_attempt_at, created_at)
-- as well as of idx_messages_outbox_chat (009: conversation_id,
-- created_at), so the planner could serve a look-up of one chat by walking
-- every queued row of every chat. On a database filled faster than
-- autovacuum's first ANALYZE it did (both partial indexes estimated at one
-- row, a tie): one fetch took 9 s with 75,000 queued replies, and the
-- dispatcher stalled meanwhile.
--
-- The chat index below is partial on `delivery_status = 'queued'` alone --
-- the same rows, since only outbound rows have a delivery status (CHECK
-- messages_delivery_only_outbound, 002) -- and the look-ups name only that.
-- A partial index serves a query only when the query's WHERE implies its
-- predicate, and `delivery_status = 'queued'` does not imply `direction =
-- 'outbound'` (the planner does not read CHECK constraints for that): the
-- look-ups cannot use idx_messages_outbox at all. What is left to them is
-- this index (the chat's rows in created_at order: an equality, a range and
-- the order asked), idx_messages_conversation_id (the chat's messages, a
-- bounded walk), or a scan of the whole table, which no estimate makes
-- cheaper than an index probe by equality. The fetch's own walk still names
-- both conditions and is served by idx_messages_outbox (the only index in
-- its order).
--
-- Built CONCURRENTLY (the table is the largest there is), then the old one
-- dropped CONCURRENTLY; safe to run again. If a concurrent build fails it
-- leaves an invalid index: drop idx_messages_queued_chat and run easyflow
-- migrate again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_messages_queued_chat
    ON messages(conversation_id, created_at)
    WHERE delivery_status = 'queued' AND conversation_id IS NOT NULL;
COMMENT ON INDEX idx_messages_queued_chat IS
    'Serves FETCH_DUE_SQL''s LATERAL (the queued row before m in its conversation) and '
    'ef_store_outbox_retry (the chat''s later queued rows): both name delivery_status = '
    '''queued'' without direction, so idx_messages_outbox cannot serve them.';
DROP INDEX CONCURRENTLY IF EXISTS idx_messages_outbox_chat;
