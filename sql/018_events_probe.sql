-- 018_events_probe.sql -- the live events of new messages probe each
-- message's conversation by its key (issue 8, speed).
--
-- 017's statement-level trigger filtered the inserted rows with
-- EXISTS (... c.status <> 'active') inside an OR; the planner made it a
-- hashed subplan, which reads every conversation that is not active once
-- per statement: under make bench's load (thousands escalated or closed)
-- 171 us of PostgreSQL per update, a third of the ingest statement. A
-- LATERAL probe with LIMIT 1 is not pulled up into a join: one primary-key
-- lookup per inserted row whatever the statistics say.

CREATE OR REPLACE FUNCTION ef_event_messages_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- In the order the rows were made (created_at is clock_timestamp()).
    PERFORM pg_notify('ef_events', json_build_object(
                'k', 'm', 'c', n.conversation_id, 'm', n.id, 'i', n.integration_id,
                'r', n.role, 'd', n.direction)::text)
       FROM (SELECT a.* FROM added a
              LEFT JOIN LATERAL (SELECT c.status FROM conversations c
                                  WHERE c.id = a.conversation_id LIMIT 1) c ON true
              WHERE (a.role <> 'system' OR a.direction = 'inbound')
                AND (a.platform IS NOT DISTINCT FROM 'webchat'
                     OR a.role IS NOT DISTINCT FROM 'operator'
                     OR c.status <> 'active')
              ORDER BY a.created_at, a.id) n;
    RETURN NULL;
END $$;
