-- 006_outbox.sql -- the outbox reads only what is due, and one dispatcher at
-- a time holds a lease on sending (issue 8: robustness, several gateways).
--
-- Nothing here names a platform.

-- ---- the due rows ---------------------------------------------------------

-- The dispatcher's fetch (ef_store_outbox_fetch_due, src/store/outbox.c):
--   SELECT .. FROM messages m JOIN conversations c ..
--    WHERE m.direction = 'outbound' AND m.delivery_status = 'queued'
--      AND m.next_attempt_at <= now()
--      AND (m.next_attempt_at, m.created_at) > ($cursor_at, $cursor_created)
--    ORDER BY m.next_attempt_at, m.created_at LIMIT $n
-- It takes only rows that are due, in the order of idx_messages_outbox
-- (002: (next_attempt_at, created_at) WHERE outbound AND queued), which
-- serves exactly that query: a wake with nothing due reads one index page,
-- and rows that cannot move yet (backing off) sort after the newer rows
-- that can. A row without next_attempt_at would never be due: queued rows
-- get one (their created_at) and must keep one.
UPDATE messages SET next_attempt_at = created_at
 WHERE direction = 'outbound' AND delivery_status = 'queued' AND next_attempt_at IS NULL;
ALTER TABLE messages ADD CONSTRAINT messages_queued_has_next_attempt CHECK (
    delivery_status IS DISTINCT FROM 'queued' OR next_attempt_at IS NOT NULL);
COMMENT ON INDEX idx_messages_outbox IS
    'Serves ef_store_outbox_fetch_due: queued outbound rows with next_attempt_at <= now(), '
    'ORDER BY next_attempt_at, created_at, after a (next_attempt_at, created_at) cursor.';

-- The seed's idx_messages_created_at served only the dispatcher's old fetch
-- (every queued row ORDER BY created_at, which walked this index over all of
-- messages and discarded what was not queued). No statement of the gateway
-- orders or filters messages by created_at alone any more (conversation
-- histories go through idx_messages_conversation_id), and every message
-- insert paid for it.
DROP INDEX IF EXISTS idx_messages_created_at;

-- ---- one dispatcher sends at a time: a lease ------------------------------

-- One row. A gateway's dispatcher sends only while it holds the lease
-- (holder = its id, until in the future) and renews it well before it
-- runs out; it stops starting sends at its own deadline, which is never
-- later than `until`. Another gateway takes the lease only once `until`
-- has passed (or the holder released it at shutdown), so two gateways
-- never send at once, and epoch grows whenever the lease changes hands or
-- lapsed: a dispatcher that sees a new epoch re-reads the outbox instead of
-- trusting what it had in memory. Serves ef_store_outbox_lease and
-- ef_store_outbox_lease_release (by primary key).
CREATE TABLE outbox_lease (
    id BOOLEAN PRIMARY KEY DEFAULT true CONSTRAINT outbox_lease_one_row CHECK (id),
    holder TEXT NOT NULL DEFAULT '',
    until TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT '-infinity',
    epoch BIGINT NOT NULL DEFAULT 0
);
INSERT INTO outbox_lease (id) VALUES (true);
