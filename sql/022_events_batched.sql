-- 022_events_batched.sql -- the live events of a statement's new messages
-- go out as a few notifications, not one per message (issue 8, speed).
--
-- 018 sent one pg_notify per new message of a conversation someone watches
-- live (the web chat's, operators', those the bot does not handle alone):
-- in make bench, where a sixth of the chats are escalated and keep writing,
-- ~16 us of backend time per update (2.4-3.1 % of PostgreSQL's time), each
-- notification queued, checked against the transaction's others and
-- written to the queue at commit. Now the statement's events go out as
-- JSON arrays of at most 40 (a notification carries at most 8,000 bytes;
-- an event is ~200), in the order the rows were made; src/gateway/ws.c
-- reads an array as its events in turn.
CREATE OR REPLACE FUNCTION ef_event_messages_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ef_events', json_agg(e ORDER BY n)::text)
       FROM (SELECT row_number() OVER (ORDER BY a.created_at, a.id) AS n,
                    json_build_object('k', 'm', 'c', a.conversation_id, 'm', a.id,
                                      'i', a.integration_id, 'r', a.role,
                                      'd', a.direction) AS e
               FROM added a
               LEFT JOIN LATERAL (SELECT c.status FROM conversations c
                                   WHERE c.id = a.conversation_id LIMIT 1) c ON true
              WHERE (a.role <> 'system' OR a.direction = 'inbound')
                AND (a.platform IS NOT DISTINCT FROM 'webchat'
                     OR a.role IS NOT DISTINCT FROM 'operator'
                     OR c.status <> 'active')) x
      GROUP BY (n - 1) / 40
      ORDER BY (n - 1) / 40;
    RETURN NULL;
END $$;
