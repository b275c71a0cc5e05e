-- 003_ingest.sql -- the batch commit, as one server-side function.
--
-- The gateway commits every batch of normalized events with ONE statement,
-- `SELECT ef_ingest($1::jsonb)`: one round trip and one transaction per
-- batch, whatever its size, which is what lets throughput grow with load
-- (DESIGN invariants 1-3). Events are applied in array order, so per-chat
-- order is kept. Each event gets one result object, in the same order.
--
-- Event (built by src/store/pg.c from an ef_msg):
--   {"kind": "new|edit|callback|reaction|blocked|unblocked|migrate|status|identity",
--    "platform", "chat_id", "chat_type", "message_id", "target_id", "status",
--    "callback_id", "thread_id",
--    "sender": {"id","name","username","lang","is_bot"},
--    "text", "content_type", "date", "meta": {..},
--    "nlp": {"intent","entities","confidence"}            (optional)
--    "fsm": {"state","status","context_patch","replies"}  (optional)}
-- Result:
--   {"result": "stored|duplicate|ignored", "conversation_id", "session_id",
--    "user_id", "message_row_id", "state", "status", "context",
--    "messages_count", "created_at"}

-- The customer behind an event: one users row per (platform, platform user
-- id), created on first contact, its name/username/language kept current.
CREATE FUNCTION ef_upsert_customer(ev jsonb) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    s jsonb := ev->'sender';
    v_id uuid;
    v_name text := left(coalesce(nullif(s->>'name', ''), s->>'id'), 255);
BEGIN
    INSERT INTO users AS u (platform, platform_user_id, name, username, language_code, role)
    VALUES (ev->>'platform', s->>'id', v_name, left(s->>'username', 255),
            coalesce(left(s->>'lang', 10), 'ru'), 'customer')
    ON CONFLICT (platform, platform_user_id) WHERE platform_user_id IS NOT NULL
    DO UPDATE SET name = EXCLUDED.name,
                  username = coalesce(EXCLUDED.username, u.username),
                  language_code = coalesce(left(s->>'lang', 10), u.language_code),
                  updated_at = now()
        WHERE (u.name, u.username, u.language_code)
              IS DISTINCT FROM (EXCLUDED.name, coalesce(EXCLUDED.username, u.username),
                                coalesce(left(s->>'lang', 10), u.language_code))
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT id INTO v_id FROM users
         WHERE platform = ev->>'platform' AND platform_user_id = s->>'id';
    END IF;
    RETURN v_id;
END $$;

-- The chat's one open conversation, created when there is none. Concurrent
-- first messages of a chat converge on one row through the partial unique
-- index uq_conversations_open_chat. The row comes back locked.
CREATE FUNCTION ef_open_conversation(ev jsonb, p_user uuid) RETURNS conversations
LANGUAGE plpgsql AS $$
DECLARE
    c conversations;
BEGIN
    LOOP
        SELECT * INTO c FROM conversations
         WHERE platform = ev->>'platform' AND chat_id = ev->>'chat_id' AND status <> 'closed'
         FOR UPDATE;
        IF FOUND THEN
            RETURN c;
        END IF;
        INSERT INTO conversations (session_id, user_id, platform, chat_id, chat_type, context_data)
        VALUES (gen_random_uuid()::text, p_user, ev->>'platform', ev->>'chat_id',
                ev->>'chat_type',
                CASE WHEN ev->'sender'->>'lang' IS NOT NULL
                     THEN jsonb_build_object('lang', left(ev->'sender'->>'lang', 2))
                     ELSE '{}'::jsonb END)
        ON CONFLICT (platform, chat_id) WHERE status <> 'closed' DO NOTHING
        RETURNING * INTO c;
        IF FOUND THEN
            RETURN c;
        END IF;
        -- Lost the race to another transaction: loop and take its row.
    END LOOP;
END $$;

-- Delivery statuses only move forward: queued < sent < failed < delivered
-- < read. A late "delivered" after "read" changes nothing; "failed" does not
-- undo a delivery, but a "delivered" reported after "failed" (another of the
-- customer's devices) is believed. WhatsApp's "played" (voice) counts as read.
CREATE FUNCTION ef_status_rank(s text) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE s WHEN 'queued' THEN 0 WHEN 'sent' THEN 1 WHEN 'failed' THEN 2
                  WHEN 'delivered' THEN 3 WHEN 'read' THEN 4 WHEN 'played' THEN 4
                  ELSE -1 END
$$;

CREATE FUNCTION ef_result(p_result text, c conversations, p_row uuid) RETURNS jsonb
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
        'last_message_at', floor(extract(epoch FROM c.updated_at))::bigint)
$$;

-- Inserts one inbound row and moves the conversation on: counters, the
-- FSM's new state/context/status, and the FSM's replies as queued outbound
-- rows in the same transaction (invariant 5). Returns the new row's id, or
-- NULL when the row already exists (a redelivery that raced us).
CREATE FUNCTION ef_insert_inbound(ev jsonb, c conversations, p_meta jsonb) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    p_row uuid;
    f jsonb := ev->'fsm';
    n jsonb := ev->'nlp';
    r jsonb;
    v_replies int := 0;
BEGIN
    INSERT INTO messages (conversation_id, session_id, user_id, content, role, direction,
                          platform, platform_message_id, intent, entities, confidence,
                          metadata, created_at)
    VALUES (c.id, c.session_id, c.user_id, coalesce(ev->>'text', ''), 'user', 'inbound',
            ev->>'platform', ev->>'message_id', n->>'intent',
            coalesce(n->'entities', '{}'::jsonb), (n->>'confidence')::numeric(3,2),
            p_meta || jsonb_build_object('date', (ev->>'date')::bigint)
            || CASE WHEN f IS NOT NULL
                    THEN jsonb_build_object('decision', jsonb_strip_nulls(jsonb_build_object(
                             'state', f->'state', 'why', f->'why', 'ranked', f->'ranked',
                             'actions', f->'actions')))
                    ELSE '{}'::jsonb END,
            clock_timestamp())
    ON CONFLICT (platform, platform_message_id) WHERE direction = 'inbound' DO NOTHING
    RETURNING id INTO p_row;
    IF p_row IS NULL THEN
        RETURN NULL;
    END IF;
    -- A button press is answered (the customer's client shows a spinner
    -- until then) whatever the conversation's status.
    IF ev->>'callback_id' IS NOT NULL THEN
        INSERT INTO messages (conversation_id, session_id, user_id, content, role, direction,
                              platform, metadata, delivery_status, next_attempt_at, created_at)
        VALUES (c.id, c.session_id, c.user_id, '', 'system', 'outbound', ev->>'platform',
                jsonb_build_object('method', 'answerCallbackQuery',
                                   'callback_query_id', ev->>'callback_id'),
                'queued', now(), clock_timestamp());
    END IF;
    -- WhatsApp: the bot read the message (blue ticks), sent before replies.
    IF ev->>'platform' = 'whatsapp' AND f IS NOT NULL THEN
        INSERT INTO messages (conversation_id, session_id, user_id, content, role, direction,
                              platform, metadata, delivery_status, next_attempt_at, created_at)
        VALUES (c.id, c.session_id, c.user_id, '', 'system', 'outbound', ev->>'platform',
                jsonb_build_object('method', 'markRead', 'message_id', ev->>'message_id'),
                'queued', now(), clock_timestamp());
    END IF;
    IF f IS NOT NULL AND jsonb_typeof(f->'replies') = 'array' THEN
        FOR r IN SELECT * FROM jsonb_array_elements(f->'replies') LOOP
            INSERT INTO messages (conversation_id, session_id, user_id, content, role,
                                  direction, platform, metadata, delivery_status,
                                  next_attempt_at, created_at)
            VALUES (c.id, c.session_id, c.user_id, coalesce(r->>'text', ''), 'assistant',
                    'outbound', ev->>'platform',
                    (r - 'text') || jsonb_build_object('reply_to', ev->>'message_id',
                                                       'thread_id', ev->>'thread_id'),
                    'queued', now(), clock_timestamp());
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

CREATE FUNCTION ef_ingest(batch jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    ev jsonb;
    res jsonb := '[]'::jsonb;
    v_kind text;
    v_user uuid;
    v_row uuid;
    v_old messages;
    v_hist jsonb;
    c conversations;
    v_n int;
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
        c := NULL;
        v_row := NULL;

        IF v_kind IN ('new', 'callback') THEN
            -- A redelivery of a committed message changes nothing.
            SELECT * INTO v_old FROM messages
             WHERE platform = ev->>'platform' AND platform_message_id = ev->>'message_id'
               AND direction = 'inbound';
            IF FOUND THEN
                SELECT * INTO c FROM conversations WHERE id = v_old.conversation_id;
                res := res || jsonb_build_array(ef_result('duplicate', c, v_old.id));
                CONTINUE;
            END IF;
            v_user := ef_upsert_customer(ev);
            c := ef_open_conversation(ev, v_user);
            v_row := ef_insert_inbound(ev, c, coalesce(ev->'meta', '{}'::jsonb));
            SELECT * INTO c FROM conversations WHERE id = c.id;
            res := res || jsonb_build_array(
                ef_result(CASE WHEN v_row IS NULL THEN 'duplicate' ELSE 'stored' END, c, v_row));

        ELSIF v_kind = 'edit' THEN
            SELECT * INTO v_old FROM messages
             WHERE platform = ev->>'platform' AND platform_message_id = ev->>'target_id'
               AND direction = 'inbound'
             FOR UPDATE;
            IF NOT FOUND THEN
                -- An edit of a message we never saw: the edited version is
                -- all there is, so it is stored as the message.
                v_user := ef_upsert_customer(ev);
                c := ef_open_conversation(ev, v_user);
                v_row := ef_insert_inbound(ev, c, coalesce(ev->'meta', '{}'::jsonb)
                                                  || '{"edited": true}'::jsonb);
                SELECT * INTO c FROM conversations WHERE id = c.id;
                res := res || jsonb_build_array(
                    ef_result(CASE WHEN v_row IS NULL THEN 'duplicate' ELSE 'stored' END,
                              c, v_row));
                CONTINUE;
            END IF;
            SELECT * INTO c FROM conversations WHERE id = v_old.conversation_id;
            -- The same edit redelivered (or an older one arriving late).
            IF coalesce((v_old.metadata->>'edit_date')::bigint, 0) >= (ev->>'date')::bigint THEN
                res := res || jsonb_build_array(ef_result('duplicate', c, v_old.id));
                CONTINUE;
            END IF;
            v_hist := coalesce(v_old.metadata->'edit_history', '[]'::jsonb)
                      || jsonb_build_array(jsonb_build_object(
                             'text', v_old.content,
                             'edit_date', coalesce(v_old.metadata->'edit_date',
                                                   v_old.metadata->'date')));
            UPDATE messages
               SET content = coalesce(ev->>'text', ''),
                   metadata = coalesce(ev->'meta', '{}'::jsonb)
                              || jsonb_build_object('edit_history', v_hist,
                                                    'edit_date', (ev->>'date')::bigint)
                              || CASE WHEN v_old.metadata ? 'reactions'
                                      THEN jsonb_build_object('reactions',
                                                              v_old.metadata->'reactions')
                                      ELSE '{}'::jsonb END,
                   updated_at = now()
             WHERE id = v_old.id;
            UPDATE conversations SET updated_at = now() WHERE id = c.id RETURNING * INTO c;
            res := res || jsonb_build_array(ef_result('stored', c, v_old.id));

        ELSIF v_kind = 'reaction' THEN
            UPDATE messages
               SET metadata = jsonb_set(metadata, '{reactions}',
                                        coalesce(metadata->'reactions', '{}'::jsonb)
                                        || jsonb_build_object(ev->'sender'->>'id',
                                                              coalesce(ev->'status', '[]'::jsonb))),
                   updated_at = now()
             WHERE platform = ev->>'platform' AND platform_message_id = ev->>'target_id'
             RETURNING id, conversation_id INTO v_row, v_user;
            IF v_row IS NULL THEN
                res := res || jsonb_build_array(jsonb_build_object('result', 'ignored'));
            ELSE
                SELECT * INTO c FROM conversations WHERE id = (
                    SELECT conversation_id FROM messages WHERE id = v_row);
                res := res || jsonb_build_array(ef_result('stored', c, v_row));
            END IF;

        ELSIF v_kind IN ('blocked', 'unblocked') THEN
            UPDATE conversations
               SET undeliverable = (v_kind = 'blocked'),
                   undeliverable_reason = CASE WHEN v_kind = 'blocked'
                                               THEN coalesce(ev->'meta'->>'reason',
                                                             'customer blocked the bot')
                                               ELSE NULL END,
                   updated_at = now()
             WHERE platform = ev->>'platform' AND chat_id = ev->>'chat_id'
               AND status <> 'closed'
            RETURNING * INTO c;
            IF c.id IS NULL THEN
                res := res || jsonb_build_array(jsonb_build_object('result', 'ignored'));
            ELSE
                res := res || jsonb_build_array(ef_result('stored', c, NULL));
            END IF;

        ELSIF v_kind = 'migrate' THEN
            -- Group -> supergroup: the conversation follows the chat to its
            -- new id, unless the new chat already has an open one.
            UPDATE conversations o
               SET chat_id = ev->>'target_id', chat_type = 'supergroup', updated_at = now()
             WHERE o.platform = ev->>'platform' AND o.chat_id = ev->>'chat_id'
               AND (o.status = 'closed' OR NOT EXISTS (
                        SELECT 1 FROM conversations n
                         WHERE n.platform = o.platform AND n.chat_id = ev->>'target_id'
                           AND n.status <> 'closed'));
            GET DIAGNOSTICS v_n = ROW_COUNT;
            SELECT * INTO c FROM conversations
             WHERE platform = ev->>'platform' AND chat_id = ev->>'target_id'
               AND status <> 'closed';
            IF v_n = 0 OR c.id IS NULL THEN
                res := res || jsonb_build_array(jsonb_build_object('result', 'ignored'));
            ELSE
                res := res || jsonb_build_array(ef_result('stored', c, NULL));
            END IF;

        ELSIF v_kind = 'status' THEN
            SELECT * INTO v_old FROM messages
             WHERE platform = ev->>'platform' AND platform_message_id = ev->>'target_id'
               AND direction = 'outbound'
             FOR UPDATE;
            IF NOT FOUND OR ef_status_rank(ev->>'status') < 0 THEN
                res := res || jsonb_build_array(jsonb_build_object('result', 'ignored'));
            ELSIF ef_status_rank(ev->>'status')
                  <= ef_status_rank(coalesce(v_old.delivery_status::text, 'queued')) THEN
                SELECT * INTO c FROM conversations WHERE id = v_old.conversation_id;
                res := res || jsonb_build_array(ef_result('duplicate', c, v_old.id));
            ELSE
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
                SELECT * INTO c FROM conversations WHERE id = v_old.conversation_id;
                res := res || jsonb_build_array(ef_result('stored', c, v_old.id));
            END IF;

        ELSIF v_kind = 'identity' THEN
            -- The customer changed number (WhatsApp system message): the
            -- same person and conversation continue under the new id.
            UPDATE users u SET platform_user_id = ev->>'target_id', updated_at = now()
             WHERE u.platform = ev->>'platform' AND u.platform_user_id = ev->'sender'->>'id'
               AND NOT EXISTS (SELECT 1 FROM users n WHERE n.platform = u.platform
                                  AND n.platform_user_id = ev->>'target_id');
            UPDATE conversations o
               SET chat_id = (ev->>'target_id') || coalesce(substring(o.chat_id FROM '@.*$'), ''),
                   updated_at = now()
             WHERE o.platform = ev->>'platform' AND o.chat_id = ev->>'chat_id'
               AND o.status <> 'closed'
               AND NOT EXISTS (SELECT 1 FROM conversations n
                                WHERE n.platform = o.platform AND n.status <> 'closed'
                                  AND n.chat_id = (ev->>'target_id')
                                                  || coalesce(substring(o.chat_id FROM '@.*$'), ''))
            RETURNING * INTO c;
            IF c.id IS NULL THEN
                res := res || jsonb_build_array(jsonb_build_object('result', 'ignored'));
            ELSE
                res := res || jsonb_build_array(ef_result('stored', c, NULL));
            END IF;

        ELSE
            res := res || jsonb_build_array(jsonb_build_object('result', 'ignored'));
        END IF;
    END LOOP;
    RETURN res;
END $$;

-- The session as Redis keeps it, built from the committed conversation: to
-- rebuild a Redis session that expired or was lost.
CREATE FUNCTION ef_session_json(c conversations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'session_id', c.session_id,
        'conversation_id', c.id,
        'user_id', c.user_id,
        'platform', c.platform,
        'chat_id', c.chat_id,
        'status', c.status,
        'state', c.current_state,
        'context', c.context_data,
        'created_at', c.created_at,
        'last_message_at', floor(extract(epoch FROM c.updated_at))::bigint)
$$;

CREATE FUNCTION ef_session(p_session_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT ef_session_json(c) FROM conversations c WHERE c.session_id = p_session_id
$$;

-- The chat's open conversation as a session, or NULL when it has none.
CREATE FUNCTION ef_chat_session(p_platform text, p_chat_id text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT ef_session_json(c) FROM conversations c
     WHERE c.platform = p_platform AND c.chat_id = p_chat_id AND c.status <> 'closed'
$$;
