-- 017_ingest_no_row_triggers.sql -- no per-row trigger work when messages
-- are inserted (issue 8, speed; docs/performance.md).
--
-- perf on the store worker's backend (batches of 16 updates, two rows per
-- update) found 17 % of its CPU in after-row triggers: 12 % the foreign
-- key check of messages.conversation_id (a SELECT ... FOR KEY SHARE per
-- row, of a conversation row the same transaction holds locked already)
-- and 5 % the live-event trigger of 013 (a PL/pgSQL call per row).
--
-- 1. messages.conversation_id keeps its meaning without the per-row check.
--    Every writer takes the id from a conversation row it has read and
--    locked in the same transaction (ef_ingest_first's locking statement,
--    the per-event functions, the API's reply and hand-off, dead letters);
--    a conversation that is being deleted is locked by the delete, and a
--    writer waiting for it finds it gone and writes nothing. What the
--    foreign key's ON DELETE CASCADE did is a statement-level trigger on
--    conversations: deleting conversations deletes their messages, once per
--    statement (forget and retention delete the messages first anyway).
-- 2. The live events of new messages are one statement-level trigger over
--    the inserted rows (a transition table), with 013's filter: the web
--    chat's messages, operators' messages, and messages of conversations
--    the bot does not handle alone.

ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey;
COMMENT ON COLUMN messages.conversation_id IS
    'conversations.id; no foreign key (017): writers hold the conversation row locked, '
    'deleting conversations deletes their messages (trigger conversations_delete_messages)';

CREATE FUNCTION ef_conversations_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM messages m USING gone g WHERE m.conversation_id = g.id;
    RETURN NULL;
END $$;

CREATE TRIGGER conversations_delete_messages AFTER DELETE ON conversations
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION ef_conversations_deleted();

CREATE FUNCTION ef_event_messages_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- In the order the rows were made (created_at is clock_timestamp()).
    PERFORM pg_notify('ef_events', json_build_object(
                'k', 'm', 'c', n.conversation_id, 'm', n.id, 'i', n.integration_id,
                'r', n.role, 'd', n.direction)::text)
       FROM (SELECT n.* FROM added n
              WHERE (n.role <> 'system' OR n.direction = 'inbound')
                AND (n.platform IS NOT DISTINCT FROM 'webchat'
                     OR n.role IS NOT DISTINCT FROM 'operator'
                     OR EXISTS (SELECT 1 FROM conversations c
                                 WHERE c.id = n.conversation_id AND c.status <> 'active'))
              ORDER BY n.created_at, n.id) n;
    RETURN NULL;
END $$;

DROP TRIGGER messages_events_insert ON messages;
CREATE TRIGGER messages_events_insert AFTER INSERT ON messages
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION ef_event_messages_inserted();
