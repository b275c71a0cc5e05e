-- ef:no-transaction
-- 021_platform_message_index_lean.sql -- a queued reply is not in the index
-- of platform message ids until it has one (issue 8, speed).
--
-- idx_messages_platform_message (001: platform, platform_message_id) serves
-- the lookups of a message by the id the platform gave it: ef_find_message
-- (duplicates and edits of inbound messages, delivery statuses and
-- reactions of outbound ones) and ef_ingest_change's reaction update. Each
-- of them asks platform_message_id = <id>, which implies NOT NULL, so the
-- index needs no row without an id -- and every reply is written without
-- one (it gets it once sent): one index entry per reply less on the ingest
-- path, and an index half the size. Built CONCURRENTLY (the table is the
-- largest there is), then the old one dropped CONCURRENTLY; safe to run
-- again. If a concurrent build fails it leaves an invalid index: drop
-- idx_messages_platform_message_id and run easyflow migrate again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_messages_platform_message_id
    ON messages(platform, platform_message_id) WHERE platform_message_id IS NOT NULL;
COMMENT ON INDEX idx_messages_platform_message_id IS
    'Serves ef_find_message and ef_ingest_change (a message by the id its platform gave it).';
DROP INDEX CONCURRENTLY IF EXISTS idx_messages_platform_message;
