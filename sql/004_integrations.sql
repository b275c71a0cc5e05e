-- 004_integrations.sql -- every connected bot, number or shop is a row of
-- the seed's integrations table (ARCHITECTURE.md section 5, issue 7), and
-- everything stored from a platform records which integration it came
-- through: the same chat id under two bots is two conversations.
--
-- Nothing here names a platform except the webchat row of the platforms
-- table (data, like the seed's rows).

-- ---- integrations ---------------------------------------------------------

-- NULL user_id: the installation's own integration (configured by the
-- environment or the CLI), not one owned by a console user.
ALTER TABLE integrations ALTER COLUMN user_id DROP NOT NULL;
-- The seed allowed one integration per platform per owner; a business runs
-- several bots (or numbers, or shops) of one platform.
ALTER TABLE integrations DROP CONSTRAINT integrations_user_id_platform_id_key;

-- name: the operator's label, unique per platform (CLI and console use it).
-- Rows that predate it get a unique made-up one.
ALTER TABLE integrations ADD COLUMN name VARCHAR(255);
UPDATE integrations SET name = platform_id || '-' || left(id::text, 8) WHERE name IS NULL;
ALTER TABLE integrations ALTER COLUMN name SET NOT NULL;
-- external_id: the channel key the platform reports with each event (bot
-- id, phone_number_id, supplier id, ...). NULL when the platform has none.
ALTER TABLE integrations ADD COLUMN external_id VARCHAR(255);
-- Where the row came from: the environment at start (config), easyflow
-- integration add (cli), the console API (api).
ALTER TABLE integrations ADD COLUMN source VARCHAR(16) NOT NULL DEFAULT 'api'
    CONSTRAINT integrations_source_known CHECK (source IN ('config', 'cli', 'api'));
-- enabled=false: kept with its history, not served.
ALTER TABLE integrations ADD COLUMN enabled BOOLEAN NOT NULL DEFAULT true;
-- The platform's default: served on the bare webhook path.
ALTER TABLE integrations ADD COLUMN is_default BOOLEAN NOT NULL DEFAULT false;

-- Serves the lookup of an incoming event's integration by (platform,
-- channel key), and refuses a second row for the same bot or number. NULL
-- external ids do not collide (platforms without a channel key).
ALTER TABLE integrations ADD CONSTRAINT uq_integrations_platform_external
    UNIQUE (platform_id, external_id);
-- Serves `easyflow integration ... NAME` lookups; refuses duplicate names.
ALTER TABLE integrations ADD CONSTRAINT uq_integrations_platform_name UNIQUE (platform_id, name);
-- At most one default per platform; serves the bootstrap's upsert
-- (ON CONFLICT (platform_id) WHERE is_default) and the bare-path lookup.
CREATE UNIQUE INDEX uq_integrations_default ON integrations(platform_id) WHERE is_default;

-- The browser chat widget (transport: WebSocket) is a messaging platform.
INSERT INTO platforms (id, name, display_name, type, region, capabilities, required_credentials)
VALUES ('webchat', 'Web chat', 'Web chat', 'messaging', 'global',
        '{"text", "inline_keyboard"}', '{}')
ON CONFLICT (id) DO NOTHING;

-- ---- what was stored through which integration ---------------------------

-- ON DELETE RESTRICT, not SET NULL: NULL means "stored before integrations
-- existed" and is what the default integration adopts on creation
-- (ef_integration_upsert_default), so a deleted bot's conversations set to
-- NULL would later be merged into another bot's history, and two bots'
-- orphaned open conversations of one chat id would collide on
-- uq_conversations_open_chat and make the DELETE fail anyway. An
-- integration with history is disabled (enabled=false), not deleted.
ALTER TABLE conversations ADD COLUMN integration_id UUID
    REFERENCES integrations(id) ON DELETE RESTRICT;
ALTER TABLE messages ADD COLUMN integration_id UUID
    REFERENCES integrations(id) ON DELETE RESTRICT;

-- One open conversation per (integration, chat). Serves ef_open_conversation's
-- INSERT .. ON CONFLICT (integration_id, platform, chat_id) WHERE status <>
-- 'closed': concurrent first messages of a chat converge on one row. NULLS
-- NOT DISTINCT so that rows stored before integrations (NULL integration)
-- keep their old uniqueness. The lookups themselves match integration_id
-- with IS NOT DISTINCT FROM, which no index column serves: they go through
-- the seed's idx_conversations_platform_chat (platform, chat_id), a handful
-- of rows per chat.
DROP INDEX uq_conversations_open_chat;
CREATE UNIQUE INDEX uq_conversations_open_chat
    ON conversations(integration_id, platform, chat_id) NULLS NOT DISTINCT
    WHERE status <> 'closed';

-- One stored row per platform message per integration (DESIGN invariant 2).
-- Serves ef_insert_inbound's INSERT .. ON CONFLICT (integration_id,
-- platform, platform_message_id) WHERE direction = 'inbound'. Lookups by
-- message id (duplicates, edits, reactions, statuses, ef_store_seen) go
-- through the seed's idx_messages_platform_message (platform,
-- platform_message_id) and filter on integration_id. ef_ingest refuses an
-- inbound event without a message id (SQLSTATE 23502), so NULLS NOT
-- DISTINCT never merges two real messages.
DROP INDEX uq_messages_inbound;
CREATE UNIQUE INDEX uq_messages_inbound
    ON messages(integration_id, platform, platform_message_id) NULLS NOT DISTINCT
    WHERE direction = 'inbound';

-- ---- long-poll cursors ----------------------------------------------------

-- One cursor per polling integration, opaque text (Telegram: the next
-- update_id; a marketplace: its own continuation token), advanced only after
-- the batch it follows committed. The primary key serves
-- ef_store_cursor_get/set. Replaces poll_offsets, which stays (read-only)
-- until the default integration of its platform adopts its row
-- (ef_integration_upsert_default moves it here); a later migration drops it.
CREATE TABLE poll_cursors (
    integration_id UUID PRIMARY KEY REFERENCES integrations(id) ON DELETE CASCADE,
    cursor TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);
COMMENT ON TABLE poll_offsets IS
    'Legacy (before 004): read only by ef_integration_upsert_default, which moves rows to poll_cursors.';

-- ---- the platform's configuration-sourced default integration ------------

-- Creates the platform's default integration, or updates it in place
-- (credentials, settings, external_id, source; status back to 'pending'
-- when credentials or external_id changed). The first time, it adopts what
-- was stored before integrations existed: the platform's conversations and
-- messages without an integration, and the poll_offsets row of its bot.
-- Returns the row's id and whether it was created. Two gateways starting at
-- once converge on one row through uq_integrations_default. The caller
-- sends the NOTIFY (src/store/integrations.c).
CREATE FUNCTION ef_integration_upsert_default(p_platform text, p_name text, p_external text,
                                              p_settings jsonb, p_source text, p_sealed bytea,
                                              p_key_id text,
                                              OUT o_id uuid, OUT o_created boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_old_external text;
BEGIN
    LOOP
        SELECT id, external_id INTO o_id, v_old_external FROM integrations
         WHERE platform_id = p_platform AND is_default
         FOR UPDATE;
        IF FOUND THEN
            UPDATE integrations i
               SET status = CASE WHEN i.credentials_encrypted IS DISTINCT FROM p_sealed
                                   OR i.encryption_key_id IS DISTINCT FROM p_key_id
                                   OR i.external_id IS DISTINCT FROM p_external
                                 THEN 'pending'::integration_status ELSE i.status END,
                   status_message = CASE WHEN i.credentials_encrypted IS DISTINCT FROM p_sealed
                                           OR i.encryption_key_id IS DISTINCT FROM p_key_id
                                           OR i.external_id IS DISTINCT FROM p_external
                                         THEN NULL ELSE i.status_message END,
                   credentials_encrypted = p_sealed,
                   encryption_key_id = p_key_id,
                   settings = coalesce(p_settings, '{}'::jsonb),
                   source = p_source,
                   external_id = p_external,
                   updated_at = now()
             WHERE i.id = o_id;
            IF v_old_external IS DISTINCT FROM p_external THEN
                -- Another bot behind the same default: its cursor means nothing.
                DELETE FROM poll_cursors WHERE integration_id = o_id;
            END IF;
            o_created := false;
            RETURN;
        END IF;
        INSERT INTO integrations (platform_id, name, external_id, settings, source,
                                  credentials_encrypted, encryption_key_id, is_default)
        VALUES (p_platform, p_name, p_external, coalesce(p_settings, '{}'::jsonb), p_source,
                p_sealed, p_key_id, true)
        ON CONFLICT (platform_id) WHERE is_default DO NOTHING
        RETURNING id INTO o_id;
        IF FOUND THEN
            EXIT;
        END IF;
        -- Lost the race to another starting gateway: update its row.
    END LOOP;
    o_created := true;
    UPDATE conversations SET integration_id = o_id
     WHERE integration_id IS NULL AND platform = p_platform;
    UPDATE messages SET integration_id = o_id
     WHERE integration_id IS NULL AND platform = p_platform;
    INSERT INTO poll_cursors (integration_id, cursor)
    SELECT o_id, next_offset::text FROM poll_offsets
     WHERE platform = p_platform AND bot_id = p_external
    ON CONFLICT (integration_id) DO NOTHING;
    DELETE FROM poll_offsets WHERE platform = p_platform AND bot_id = p_external;
END $$;

-- ---- ingest, scoped by integration ----------------------------------------
--
-- Events (sql/003_ingest.sql) gain "integration_id" (uuid text, absent for
-- an event of no integration) and "read_receipt" (true: the platform wants
-- a read receipt queued before the replies). Every lookup of conversations
-- or messages by (platform, chat_id) or (platform, platform_message_id)
-- also matches integration_id IS NOT DISTINCT FROM the event's, and every
-- row inserted records it.

-- The chat's one open conversation under the event's integration, created
-- when there is none (uq_conversations_open_chat). The row comes back
-- locked. An event without a chat id has no conversation: refused.
CREATE OR REPLACE FUNCTION ef_open_conversation(ev jsonb, p_user uuid) RETURNS conversations
LANGUAGE plpgsql AS $$
DECLARE
    c conversations;
    v_int uuid := (ev->>'integration_id')::uuid;
BEGIN
    IF ev->>'chat_id' IS NULL THEN
        RAISE EXCEPTION 'event without chat_id' USING ERRCODE = 'not_null_violation';
    END IF;
    LOOP
        SELECT * INTO c FROM conversations
         WHERE integration_id IS NOT DISTINCT FROM v_int
           AND platform = ev->>'platform' AND chat_id = ev->>'chat_id' AND status <> 'closed'
         FOR UPDATE;
        IF FOUND THEN
            RETURN c;
        END IF;
        INSERT INTO conversations (session_id, user_id, integration_id, platform, chat_id,
                                   chat_type, context_data)
        VALUES (gen_random_uuid()::text, p_user, v_int, ev->>'platform', ev->>'chat_id',
                ev->>'chat_type',
                CASE WHEN ev->'sender'->>'lang' IS NOT NULL
                     THEN jsonb_build_object('lang', left(ev->'sender'->>'lang', 2))
                     ELSE '{}'::jsonb END)
        ON CONFLICT (integration_id, platform, chat_id) WHERE status <> 'closed' DO NOTHING
        RETURNING * INTO c;
        IF FOUND THEN
            RETURN c;
        END IF;
        -- Lost the race to another transaction: loop and take its row.
    END LOOP;
END $$;

-- One queued outbound row of the conversation (replies, read receipts,
-- callback answers): the conversation's integration sends it.
CREATE FUNCTION ef_queue_outbound(c conversations, p_content text, p_role message_role,
                                  p_meta jsonb) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO messages (conversation_id, session_id, user_id, integration_id, content, role,
                          direction, platform, metadata, delivery_status, next_attempt_at,
                          created_at)
    VALUES (c.id, c.session_id, c.user_id, c.integration_id, p_content, p_role, 'outbound',
            c.platform, p_meta, 'queued', now(), clock_timestamp())
$$;

-- Inserts one inbound row and moves the conversation on (as in 003), under
-- the event's integration. Returns the new row's id, or NULL when the row
-- already exists (a redelivery that raced us).
CREATE OR REPLACE FUNCTION ef_insert_inbound(ev jsonb, c conversations, p_meta jsonb) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    p_row uuid;
    f jsonb := ev->'fsm';
    n jsonb := ev->'nlp';
    r jsonb;
    v_replies int := 0;
BEGIN
    IF ev->>'message_id' IS NULL THEN
        RAISE EXCEPTION 'inbound event without message_id' USING ERRCODE = 'not_null_violation';
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
                             'actions', f->'actions')))
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
    -- The platform shows the customer that the bot read the message (its
    -- policy, decided by the gateway), sent before the replies.
    IF coalesce((ev->>'read_receipt')::boolean, false) AND f IS NOT NULL THEN
        PERFORM ef_queue_outbound(c, '', 'system',
                                  jsonb_build_object('method', 'markRead',
                                                     'message_id', ev->>'message_id'));
    END IF;
    IF f IS NOT NULL AND jsonb_typeof(f->'replies') = 'array' THEN
        FOR r IN SELECT * FROM jsonb_array_elements(f->'replies') LOOP
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
           current_state = coalesce(f->>'state', current_state),
           status = coalesce((f->>'status')::conversation_status, status),
           escalated_at = CASE WHEN f->>'status' = 'escalated' THEN now() ELSE escalated_at END,
           closed_at = CASE WHEN f->>'status' = 'closed' THEN now() ELSE closed_at END,
           -- The patch sets keys; a JSON null in it deletes the key.
           context_data = CASE WHEN jsonb_typeof(f->'context_patch') = 'object'
                               THEN (coalesce(context_data, '{}'::jsonb) || (f->'context_patch'))
                                    - ARRAY(SELECT key FROM jsonb_each(f->'context_patch')
                                             WHERE value = 'null'::jsonb)
                               ELSE context_data END
     WHERE id = c.id;
    RETURN p_row;
END $$;

-- The inbound row of the event's integration with that platform id (FOR
-- UPDATE when asked), or NULL.
CREATE FUNCTION ef_find_message(ev jsonb, p_id text, p_dir message_direction, p_lock boolean)
RETURNS messages
LANGUAGE plpgsql AS $$
DECLARE
    m messages;
BEGIN
    IF p_lock THEN
        SELECT * INTO m FROM messages
         WHERE integration_id IS NOT DISTINCT FROM (ev->>'integration_id')::uuid
           AND platform = ev->>'platform' AND platform_message_id = p_id AND direction = p_dir
         FOR UPDATE;
    ELSE
        SELECT * INTO m FROM messages
         WHERE integration_id IS NOT DISTINCT FROM (ev->>'integration_id')::uuid
           AND platform = ev->>'platform' AND platform_message_id = p_id AND direction = p_dir;
    END IF;
    RETURN m;
END $$;

-- new / callback / edit: the inbound message itself.
CREATE FUNCTION ef_ingest_message(ev jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_kind text := ev->>'kind';
    v_old messages;
    v_hist jsonb;
    v_row uuid;
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
        v_row := ef_insert_inbound(ev, c, coalesce(ev->'meta', '{}'::jsonb)
                                          || CASE WHEN v_kind = 'edit'
                                                  THEN '{"edited": true}'::jsonb
                                                  ELSE '{}'::jsonb END);
        SELECT * INTO c FROM conversations WHERE id = c.id;
        RETURN ef_result(CASE WHEN v_row IS NULL THEN 'duplicate' ELSE 'stored' END, c, v_row);
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

-- reaction / blocked / unblocked / migrate / identity: changes to what the
-- integration already stored.
CREATE FUNCTION ef_ingest_change(ev jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_kind text := ev->>'kind';
    v_int uuid := (ev->>'integration_id')::uuid;
    v_row uuid;
    v_n int;
    v_new_chat text;
    c conversations;
BEGIN
    IF v_kind = 'reaction' THEN
        UPDATE messages
           SET metadata = jsonb_set(metadata, '{reactions}',
                                    coalesce(metadata->'reactions', '{}'::jsonb)
                                    || jsonb_build_object(ev->'sender'->>'id',
                                                          coalesce(ev->'status', '[]'::jsonb))),
               updated_at = now()
         WHERE integration_id IS NOT DISTINCT FROM v_int
           AND platform = ev->>'platform' AND platform_message_id = ev->>'target_id'
         RETURNING id INTO v_row;
        IF v_row IS NULL THEN
            RETURN jsonb_build_object('result', 'ignored');
        END IF;
        SELECT * INTO c FROM conversations
         WHERE id = (SELECT conversation_id FROM messages WHERE id = v_row);
        RETURN ef_result('stored', c, v_row);

    ELSIF v_kind IN ('blocked', 'unblocked') THEN
        UPDATE conversations
           SET undeliverable = (v_kind = 'blocked'),
               undeliverable_reason = CASE WHEN v_kind = 'blocked'
                                           THEN coalesce(ev->'meta'->>'reason',
                                                         'customer blocked the bot')
                                           ELSE NULL END,
               updated_at = now()
         WHERE integration_id IS NOT DISTINCT FROM v_int
           AND platform = ev->>'platform' AND chat_id = ev->>'chat_id' AND status <> 'closed'
        RETURNING * INTO c;

    ELSIF v_kind = 'migrate' THEN
        -- Group -> supergroup: the conversation follows the chat to its new
        -- id, unless the new chat already has an open one.
        UPDATE conversations o
           SET chat_id = ev->>'target_id', chat_type = 'supergroup', updated_at = now()
         WHERE o.integration_id IS NOT DISTINCT FROM v_int
           AND o.platform = ev->>'platform' AND o.chat_id = ev->>'chat_id'
           AND (o.status = 'closed' OR NOT EXISTS (
                    SELECT 1 FROM conversations n
                     WHERE n.integration_id IS NOT DISTINCT FROM v_int
                       AND n.platform = o.platform AND n.chat_id = ev->>'target_id'
                       AND n.status <> 'closed'));
        GET DIAGNOSTICS v_n = ROW_COUNT;
        SELECT * INTO c FROM conversations
         WHERE integration_id IS NOT DISTINCT FROM v_int
           AND platform = ev->>'platform' AND chat_id = ev->>'target_id' AND status <> 'closed';
        IF v_n = 0 THEN
            c := NULL;
        END IF;

    ELSIF v_kind = 'identity' THEN
        -- The customer changed number: the same person (users are per
        -- platform) and conversation continue under the new id.
        UPDATE users u SET platform_user_id = ev->>'target_id', updated_at = now()
         WHERE u.platform = ev->>'platform' AND u.platform_user_id = ev->'sender'->>'id'
           AND NOT EXISTS (SELECT 1 FROM users n WHERE n.platform = u.platform
                              AND n.platform_user_id = ev->>'target_id');
        v_new_chat := (ev->>'target_id')
                      || coalesce(substring(ev->>'chat_id' FROM '@.*$'), '');
        UPDATE conversations o
           SET chat_id = v_new_chat, updated_at = now()
         WHERE o.integration_id IS NOT DISTINCT FROM v_int
           AND o.platform = ev->>'platform' AND o.chat_id = ev->>'chat_id'
           AND o.status <> 'closed'
           AND NOT EXISTS (SELECT 1 FROM conversations n
                            WHERE n.integration_id IS NOT DISTINCT FROM v_int
                              AND n.platform = o.platform AND n.status <> 'closed'
                              AND n.chat_id = v_new_chat)
        RETURNING * INTO c;
    ELSE
        RETURN jsonb_build_object('result', 'ignored');
    END IF;
    IF c.id IS NULL THEN
        RETURN jsonb_build_object('result', 'ignored');
    END IF;
    RETURN ef_result('stored', c, NULL);
END $$;

-- status: a delivery report for one of the integration's outbound rows.
CREATE FUNCTION ef_ingest_status(ev jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_old messages;
    c conversations;
BEGIN
    v_old := ef_find_message(ev, ev->>'target_id', 'outbound', true);
    IF v_old.id IS NULL OR ef_status_rank(ev->>'status') < 0 THEN
        RETURN jsonb_build_object('result', 'ignored');
    END IF;
    SELECT * INTO c FROM conversations WHERE id = v_old.conversation_id;
    IF ef_status_rank(ev->>'status')
       <= ef_status_rank(coalesce(v_old.delivery_status::text, 'queued')) THEN
        RETURN ef_result('duplicate', c, v_old.id);
    END IF;
    UPDATE messages
       SET delivery_status = (CASE ev->>'status' WHEN 'played' THEN 'read'
                              ELSE ev->>'status' END)::delivery_status,
           failed_reason = CASE WHEN ev->>'status' = 'failed'
               THEN coalesce(ev->'meta'->'errors'->0->>'code', '?') || ' '
                    || coalesce(ev->'meta'->'errors'->0->>'title', 'failed')
                    || coalesce(': ' || (ev->'meta'->'errors'->0->'error_data'->>'details'), '')
               ELSE failed_reason END,
           failed_at = CASE WHEN ev->>'status' = 'failed' THEN now() ELSE failed_at END,
           metadata = metadata || jsonb_build_object(
               'status_' || (ev->>'status') || '_at', (ev->>'date')::bigint),
           updated_at = now()
     WHERE id = v_old.id;
    RETURN ef_result('stored', c, v_old.id);
END $$;

CREATE OR REPLACE FUNCTION ef_ingest(batch jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    ev jsonb;
    res jsonb := '[]'::jsonb;
    v_kind text;
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
        res := res || jsonb_build_array(CASE
            WHEN v_kind IN ('new', 'callback', 'edit') THEN ef_ingest_message(ev)
            WHEN v_kind = 'status' THEN ef_ingest_status(ev)
            ELSE ef_ingest_change(ev) END);
    END LOOP;
    RETURN res;
END $$;

-- The session as Redis keeps it, now with the conversation's integration.
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
        'last_message_at', floor(extract(epoch FROM c.updated_at))::bigint)
$$;

-- The chat's open conversation under one integration (NULL: stored before
-- integrations) as a session, or NULL when it has none.
DROP FUNCTION ef_chat_session(text, text);
CREATE FUNCTION ef_chat_session(p_integration_id text, p_platform text, p_chat_id text)
RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT ef_session_json(c) FROM conversations c
     WHERE c.integration_id IS NOT DISTINCT FROM p_integration_id::uuid
       AND c.platform = p_platform AND c.chat_id = p_chat_id AND c.status <> 'closed'
$$;
