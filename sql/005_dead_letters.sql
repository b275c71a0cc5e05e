-- 005_dead_letters.sql -- the ingest path made robust (issue 8, robustness):
--
-- 1. PostgreSQL is the truth for a conversation's status and state. Every
--    conversation has a version; the gateway's decision names the session
--    (conversation id and version) it was based on, and the commit checks it
--    against the locked row: a stale session (Redis kept old data, a
--    write-back failed, an operator changed the row) is refused as "stale"
--    and nothing of the event is written, so the gateway decides again from
--    PostgreSQL. Whatever the decision says, a conversation that is not
--    active (escalated, paused) gets no bot replies and no state change.
-- 2. One bad item never stalls the rest: an event the database refuses for
--    its data is written to dead_letters (by src/store/pg.c, after the
--    item-by-item retry) instead of failing its batch.
-- 3. A customer who writes is deliverable again (undeliverable cleared).

-- ---- conversation versions -------------------------------------------------

-- Bumped by one for every stored message that carried a decision (its
-- commit sets it), and by the trigger below for any other change of what a
-- decision depends on (status, current_state, context_data): an operator
-- handing back, a console edit, a manual UPDATE. Not indexed (HOT updates).
ALTER TABLE conversations ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION ef_conversation_bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END $$;

-- Fires only when the updater did not set the version itself and a field a
-- decision reads changed; the ingest's own updates set it or change none.
CREATE TRIGGER trg_conversations_version BEFORE UPDATE ON conversations
FOR EACH ROW
WHEN (NEW.version = OLD.version
      AND (NEW.status, NEW.current_state, NEW.context_data)
          IS DISTINCT FROM (OLD.status, OLD.current_state, OLD.context_data))
EXECUTE FUNCTION ef_conversation_bump_version();

-- Results now carry the conversation's version (the session keeps it).
CREATE OR REPLACE FUNCTION ef_result(p_result text, c conversations, p_row uuid) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'result', p_result,
        'conversation_id', c.id,
        'session_id', c.session_id,
        'user_id', c.user_id,
        'message_row_id', p_row,
        'state', c.current_state,
        'status', c.status,
        'context', c.context_data,
        'messages_count', c.messages_count,
        'created_at', c.created_at,
        'version', c.version,
        'last_message_at', floor(extract(epoch FROM c.updated_at))::bigint)
$$;

CREATE OR REPLACE FUNCTION ef_session_json(c conversations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'session_id', c.session_id,
        'conversation_id', c.id,
        'user_id', c.user_id,
        'integration_id', c.integration_id,
        'platform', c.platform,
        'chat_id', c.chat_id,
        'status', c.status,
        'state', c.current_state,
        'context', c.context_data,
        'created_at', c.created_at,
        'version', c.version,
        'last_message_at', floor(extract(epoch FROM c.updated_at))::bigint)
$$;

-- Whether the event's decision was made from the conversation as it is now
-- (c is locked). The event's "base" is {"conversation_id", "version"} of
-- the session the gateway decided from; conversation_id null means it
-- started a new conversation, which matches one nothing was decided on yet
-- (version 0). An event without a decision or without a base is not
-- checked.
CREATE FUNCTION ef_base_matches(ev jsonb, c conversations) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT ev->'fsm' IS NULL OR jsonb_typeof(ev->'base') IS DISTINCT FROM 'object'
        OR ((ev->'base'->>'conversation_id' IS NULL
             OR ev->'base'->>'conversation_id' = c.id::text)
            AND (ev->'base'->>'version')::bigint = c.version)
$$;

-- Inserts one inbound row and moves the conversation on (as in 004), with
-- three changes: a decision is applied only to an active conversation
-- (otherwise metadata.decision.skipped says why, and no reply, state,
-- status or context change is written); every stored decision bumps the
-- version; a message from the customer clears undeliverable.
CREATE OR REPLACE FUNCTION ef_insert_inbound(ev jsonb, c conversations, p_meta jsonb) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    p_row uuid;
    f jsonb := ev->'fsm';
    n jsonb := ev->'nlp';
    e jsonb; -- the decision's effects: f, or NULL when they are refused
    r jsonb;
    v_skip text;
    v_replies int := 0;
    v_customer boolean := NOT coalesce((ev->'sender'->>'is_bot')::boolean, false);
BEGIN
    IF ev->>'message_id' IS NULL THEN
        RAISE EXCEPTION 'inbound event without message_id' USING ERRCODE = 'not_null_violation';
    END IF;
    IF f IS NOT NULL AND c.status IS DISTINCT FROM 'active' THEN
        v_skip := 'conversation ' || coalesce(c.status::text, 'without status');
    ELSE
        e := f;
    END IF;
    INSERT INTO messages (conversation_id, session_id, user_id, integration_id, content, role,
                          direction, platform, platform_message_id, intent, entities,
                          confidence, metadata, created_at)
    VALUES (c.id, c.session_id, c.user_id, c.integration_id, coalesce(ev->>'text', ''), 'user',
            'inbound', ev->>'platform', ev->>'message_id', n->>'intent',
            coalesce(n->'entities', '{}'::jsonb), (n->>'confidence')::numeric(3,2),
            p_meta || jsonb_build_object('date', (ev->>'date')::bigint)
            || CASE WHEN f IS NOT NULL
                    THEN jsonb_build_object('decision', jsonb_strip_nulls(jsonb_build_object(
                             'state', f->'state', 'why', f->'why', 'ranked', f->'ranked',
                             'actions', f->'actions', 'skipped', v_skip)))
                    ELSE '{}'::jsonb END,
            clock_timestamp())
    ON CONFLICT (integration_id, platform, platform_message_id) WHERE direction = 'inbound'
    DO NOTHING
    RETURNING id INTO p_row;
    IF p_row IS NULL THEN
        RETURN NULL;
    END IF;
    -- A button press is answered (the customer's client shows a spinner
    -- until then) whatever the conversation's status.
    IF ev->>'callback_id' IS NOT NULL THEN
        PERFORM ef_queue_outbound(c, '', 'system',
                                  jsonb_build_object('method', 'answerCallbackQuery',
                                                     'callback_query_id', ev->>'callback_id'));
    END IF;
    -- The platform shows the customer that the message was read (its
    -- policy, decided by the gateway), sent before the replies.
    IF coalesce((ev->>'read_receipt')::boolean, false) AND f IS NOT NULL THEN
        PERFORM ef_queue_outbound(c, '', 'system',
                                  jsonb_build_object('method', 'markRead',
                                                     'message_id', ev->>'message_id'));
    END IF;
    IF e IS NOT NULL AND jsonb_typeof(e->'replies') = 'array' THEN
        FOR r IN SELECT * FROM jsonb_array_elements(e->'replies') LOOP
            PERFORM ef_queue_outbound(c, coalesce(r->>'text', ''), 'assistant',
                                      (r - 'text') || jsonb_build_object(
                                          'reply_to', ev->>'message_id',
                                          'thread_id', ev->>'thread_id'));
            v_replies := v_replies + 1;
        END LOOP;
    END IF;
    UPDATE conversations
       SET messages_count = messages_count + 1 + v_replies,
           updated_at = now(),
           last_inbound_at = now(),
           version = version + CASE WHEN f IS NOT NULL THEN 1 ELSE 0 END,
           undeliverable = CASE WHEN v_customer THEN false ELSE undeliverable END,
           undeliverable_reason = CASE WHEN v_customer THEN NULL ELSE undeliverable_reason END,
           current_state = coalesce(e->>'state', current_state),
           status = coalesce((e->>'status')::conversation_status, status),
           escalated_at = CASE WHEN e->>'status' = 'escalated' THEN now() ELSE escalated_at END,
           closed_at = CASE WHEN e->>'status' = 'closed' THEN now() ELSE closed_at END,
           -- The patch sets keys; a JSON null in it deletes the key.
           context_data = CASE WHEN jsonb_typeof(e->'context_patch') = 'object'
                               THEN (coalesce(context_data, '{}'::jsonb) || (e->'context_patch'))
                                    - ARRAY(SELECT key FROM jsonb_each(e->'context_patch')
                                             WHERE value = 'null'::jsonb)
                               ELSE context_data END
     WHERE id = c.id;
    RETURN p_row;
END $$;

-- new / callback / edit (as in 004), refusing a decision made from a stale
-- session: the result is "stale" and nothing of the event is written (the
-- conversation may have been opened: the next attempt finds it). A stored
-- message's result says "skipped": true when its decision was not applied
-- (the conversation is not active).
CREATE OR REPLACE FUNCTION ef_ingest_message(ev jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_kind text := ev->>'kind';
    v_old messages;
    v_hist jsonb;
    v_row uuid;
    v_skipped boolean;
    c conversations;
BEGIN
    IF v_kind IN ('new', 'callback') THEN
        -- A redelivery of a committed message changes nothing.
        v_old := ef_find_message(ev, ev->>'message_id', 'inbound', false);
        IF v_old.id IS NOT NULL THEN
            SELECT * INTO c FROM conversations WHERE id = v_old.conversation_id;
            RETURN ef_result('duplicate', c, v_old.id);
        END IF;
    ELSE
        v_old := ef_find_message(ev, ev->>'target_id', 'inbound', true);
    END IF;
    IF v_old.id IS NULL THEN
        -- New, or an edit of a message we never saw: the edited version is
        -- all there is, so it is stored as the message.
        c := ef_open_conversation(ev, ef_upsert_customer(ev));
        IF NOT ef_base_matches(ev, c) THEN
            RETURN ef_result('stale', c, NULL);
        END IF;
        -- ef_insert_inbound refuses the decision's effects unless active.
        v_skipped := ev->'fsm' IS NOT NULL AND c.status IS DISTINCT FROM 'active';
        v_row := ef_insert_inbound(ev, c, coalesce(ev->'meta', '{}'::jsonb)
                                          || CASE WHEN v_kind = 'edit'
                                                  THEN '{"edited": true}'::jsonb
                                                  ELSE '{}'::jsonb END);
        SELECT * INTO c FROM conversations WHERE id = c.id;
        RETURN ef_result(CASE WHEN v_row IS NULL THEN 'duplicate' ELSE 'stored' END, c, v_row)
               || jsonb_build_object('skipped', v_skipped);
    END IF;
    SELECT * INTO c FROM conversations WHERE id = v_old.conversation_id;
    -- The same edit redelivered (or an older one arriving late).
    IF coalesce((v_old.metadata->>'edit_date')::bigint, 0) >= (ev->>'date')::bigint THEN
        RETURN ef_result('duplicate', c, v_old.id);
    END IF;
    v_hist := coalesce(v_old.metadata->'edit_history', '[]'::jsonb)
              || jsonb_build_array(jsonb_build_object(
                     'text', v_old.content,
                     'edit_date', coalesce(v_old.metadata->'edit_date', v_old.metadata->'date')));
    UPDATE messages
       SET content = coalesce(ev->>'text', ''),
           metadata = coalesce(ev->'meta', '{}'::jsonb)
                      || jsonb_build_object('edit_history', v_hist,
                                            'edit_date', (ev->>'date')::bigint)
                      || CASE WHEN v_old.metadata ? 'reactions'
                              THEN jsonb_build_object('reactions', v_old.metadata->'reactions')
                              ELSE '{}'::jsonb END,
           updated_at = now()
     WHERE id = v_old.id;
    UPDATE conversations SET updated_at = now() WHERE id = c.id RETURNING * INTO c;
    RETURN ef_result('stored', c, v_old.id);
END $$;

-- The batch (as in 004). Once an event of a chat came back stale, every
-- later event of that chat in the batch is stale too (its decision, or its
-- order, depended on the refused one) and is not applied: the gateway
-- decides them again, in order. Results are collected in an array (no
-- quadratic jsonb concatenation).
CREATE OR REPLACE FUNCTION ef_ingest(batch jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    ev jsonb;
    res jsonb[] := '{}';
    r jsonb;
    v_kind text;
    v_key text;
    v_stale text[] := '{}';
BEGIN
    -- Customers first, in one global order: two batches that share
    -- customers then lock their rows in the same order and cannot deadlock.
    FOR ev IN SELECT DISTINCT ON (e->>'platform', e->'sender'->>'id') e
                FROM jsonb_array_elements(batch) e
               WHERE e->>'kind' IN ('new', 'callback', 'edit') AND e->'sender'->>'id' IS NOT NULL
               ORDER BY e->>'platform', e->'sender'->>'id' LOOP
        PERFORM ef_upsert_customer(ev);
    END LOOP;

    FOR ev IN SELECT * FROM jsonb_array_elements(batch) LOOP
        v_kind := ev->>'kind';
        v_key := coalesce(ev->>'integration_id', '-') || ' ' || coalesce(ev->>'platform', '')
                 || ' ' || coalesce(ev->>'chat_id', '');
        IF v_key = ANY (v_stale) THEN
            r := jsonb_build_object('result', 'stale');
        ELSE
            r := CASE
                WHEN v_kind IN ('new', 'callback', 'edit') THEN ef_ingest_message(ev)
                WHEN v_kind = 'status' THEN ef_ingest_status(ev)
                ELSE ef_ingest_change(ev) END;
            IF r->>'result' = 'stale' THEN
                v_stale := v_stale || v_key;
            END IF;
        END IF;
        res := array_append(res, r);
    END LOOP;
    RETURN to_jsonb(res);
END $$;

-- ---- dead letters ----------------------------------------------------------

-- Events the database refused for their data (a value too long for its
-- column, a NULL key, a state name longer than current_state): kept with
-- the reason, for admins, instead of failing their batch. payload is the
-- normalized event as src/store/pg.c builds it (customer data, like
-- messages.content); error is PostgreSQL's reason without the values it
-- quotes (SQLSTATE and message). integration_id has no foreign key: a dead
-- letter must never be refused itself (its id may name nothing, or not be
-- a UUID at all: then NULL, and the payload keeps the text).
CREATE TABLE dead_letters (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    integration_id UUID,
    platform TEXT NOT NULL,
    payload JSONB NOT NULL,
    error TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
-- Serves listing the newest first (/metrics counts, the console lists).
CREATE INDEX idx_dead_letters_created_at ON dead_letters(created_at DESC);

-- Writes the dead letters of one batch: items is a JSON array of
-- {"integration_id", "platform", "payload" (the event as JSON text),
-- "error"}; returns their ids in the same order. Never refuses an item: an
-- integration id that is not a UUID becomes NULL, a payload that is not
-- valid jsonb (e.g. \u0000, which jsonb refuses) is kept as a string.
CREATE FUNCTION ef_dead_letters_add(items jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    it jsonb;
    v_int uuid;
    v_payload jsonb;
    v_id uuid;
    res jsonb[] := '{}';
BEGIN
    FOR it IN SELECT * FROM jsonb_array_elements(items) LOOP
        v_int := NULL;
        IF it->>'integration_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
        THEN
            v_int := (it->>'integration_id')::uuid;
        END IF;
        BEGIN
            v_payload := (it->>'payload')::jsonb;
        EXCEPTION WHEN others THEN
            v_payload := jsonb_build_object('unparsed', it->>'payload');
        END;
        INSERT INTO dead_letters (integration_id, platform, payload, error)
        VALUES (v_int, coalesce(it->>'platform', '?'), coalesce(v_payload, 'null'::jsonb),
                coalesce(it->>'error', '?'))
        RETURNING id INTO v_id;
        res := array_append(res, to_jsonb(v_id));
    END LOOP;
    RETURN to_jsonb(res);
END $$;
