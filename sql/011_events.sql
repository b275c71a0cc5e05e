-- 011_events.sql -- live events for the WebSockets (issue 9, docs/websocket.md).
--
-- Every commit that a console or a web chat visitor should see publishes a
-- small notification on the channel ef_events, from triggers, so that every
-- writer publishes alike (the pipeline's ingest, the API, the dispatcher,
-- the CLI) and only what is committed is ever published (NOTIFY is
-- delivered at commit; a rolled back transaction publishes nothing). Every
-- gateway LISTENs and pushes to its own sockets.
--
-- The payload carries ids only: no text, no chat ids (on some platforms a
-- chat id is a phone number).
--   {"k":"m","c":conversation,"m":message,"i":integration,"r":role,"d":direction}
--   {"k":"d","c":conversation,"m":message,"i":integration,"s":delivery_status}
--   {"k":"c","c":conversation,"i":integration,"s":status,"o":assigned}

CREATE FUNCTION ef_event_message() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
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

CREATE TRIGGER messages_events_insert AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.role <> 'system' OR NEW.direction = 'inbound')
    EXECUTE FUNCTION ef_event_message();

CREATE TRIGGER messages_events_delivery AFTER UPDATE OF delivery_status ON messages
    FOR EACH ROW WHEN (NEW.delivery_status IS DISTINCT FROM OLD.delivery_status
                       AND NEW.delivery_status IS NOT NULL
                       AND NEW.delivery_status <> 'queued')
    EXECUTE FUNCTION ef_event_message();

CREATE FUNCTION ef_event_conversation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ef_events', json_build_object(
        'k', 'c', 'c', NEW.id, 'i', NEW.integration_id, 's', NEW.status,
        'o', NEW.assigned_operator_id IS NOT NULL)::text);
    RETURN NULL;
END
$$;

CREATE TRIGGER conversations_events AFTER UPDATE OF status, assigned_operator_id ON conversations
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status
                       OR NEW.assigned_operator_id IS DISTINCT FROM OLD.assigned_operator_id)
    EXECUTE FUNCTION ef_event_conversation();
