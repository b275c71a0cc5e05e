-- 013_events_lean.sql -- live events only where someone watches live
-- (issue 8, speed; the events of 011).
--
-- 011 published a NOTIFY for every message row: on the ingest path two
-- notifications per update (the customer's message and the bot's reply),
-- each a JSON payload queued for every listening gateway, and a
-- transaction that notifies takes a database-wide lock at commit
-- (PreCommit_Notify) held until its commit record is flushed, so the
-- pipeline's committing batches waited for each other's fsync.
--
-- What the live feeds show (docs/websocket.md):
--   * the web chat: every message and delivery of its own conversations
--     (the page echoes them across tabs and pushes replies when sent);
--   * the console: escalations and claims (conversation events, unchanged),
--     operators' messages, and every message of a conversation the bot does
--     not handle alone (escalated, paused, closed: the ones operators work).
-- A message of an active conversation on a messenger -- the bot's own
-- traffic, nearly all of it -- publishes nothing; the console's lists
-- refresh through the API (the console reloads every 30 s and on every
-- conversation event).

CREATE OR REPLACE FUNCTION ef_event_message() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_status conversation_status;
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- The web chat's pages and operators' own messages always; others
        -- when the conversation is an operator's (one index probe of a row
        -- this transaction holds already).
        IF NEW.platform IS DISTINCT FROM 'webchat' AND NEW.role IS DISTINCT FROM 'operator' THEN
            SELECT status INTO v_status FROM conversations WHERE id = NEW.conversation_id;
            IF v_status IS NULL OR v_status = 'active' THEN
                RETURN NULL;
            END IF;
        END IF;
        PERFORM pg_notify('ef_events', json_build_object(
            'k', 'm', 'c', NEW.conversation_id, 'm', NEW.id, 'i', NEW.integration_id,
            'r', NEW.role, 'd', NEW.direction)::text);
    ELSE
        PERFORM pg_notify('ef_events', json_build_object(
            'k', 'd', 'c', NEW.conversation_id, 'm', NEW.id, 'i', NEW.integration_id,
            's', NEW.delivery_status)::text);
    END IF;
    RETURN NULL;
END
$$;
