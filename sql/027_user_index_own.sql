-- ef:no-transaction
-- 027_user_index_own.sql -- an inbound row names its sender, and only
-- customers' own messages are indexed by customer (issue 8, speed; personal
-- data).
--
-- Every message row carried its conversation's customer as user_id: in a
-- group chat, whose conversation belongs to its first writer, the other
-- members' messages were filed under that writer, and forgetting a member
-- left their messages in place. Now an inbound row's user_id is its sender
-- (026 for the batch path, ef_insert_inbound below for the per-event one;
-- rows stored before keep what they had). A reply still carries its
-- conversation's customer, so a customer's replies are found through their
-- conversations, and only inbound rows need the index by customer:
-- ef_customer_forget deletes a customer's own messages by it and asks, like
-- ef_retention_batch, whether any is left before a customer row goes.
-- The index's predicate is role = 'user' (what a customer's message is),
-- not direction = 'inbound': the ingest path's look-ups of an inbound row
-- by its platform id name the direction, and on a database without
-- statistics the planner took an index whose predicate they imply for a
-- walk of every inbound row (make bench: 362 updates/s, 4 ms of
-- PostgreSQL an update). No look-up of that path names the role.
-- idx_messages_user_id (001) had an entry for every row, replies included;
-- a reply now enters one index less when it is queued, and again when it
-- is sent (that update cannot be HOT): callgrind
-- (tests/bench/ingest_cost.py), 16 known chats 787 k -> 775 k instructions
-- an event, 16 replies recorded as sent 228 k -> 185 k a reply. Built
-- CONCURRENTLY, the functions then ask for inbound rows, and the old index
-- is dropped CONCURRENTLY; safe to run again. If a concurrent build fails
-- it leaves an invalid index: drop idx_messages_user_own and run
-- easyflow migrate again.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_messages_user_own
    ON messages(user_id) WHERE role = 'user';
COMMENT ON INDEX idx_messages_user_own IS
    'Serves ef_customer_forget and ef_retention_batch (a customer''s own messages).';

-- As in 005, the row's customer is its sender outside private chats.
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
    v_sender uuid; -- who wrote it: the conversation's customer, or a group's member
BEGIN
    IF ev->>'message_id' IS NULL THEN
        RAISE EXCEPTION 'inbound event without message_id' USING ERRCODE = 'not_null_violation';
    END IF;
    IF ev->>'chat_type' IS DISTINCT FROM 'private' THEN
        SELECT u.id INTO v_sender FROM users u
         WHERE u.platform = ev->>'platform' AND u.platform_user_id = ev->'sender'->>'id';
    END IF;
    v_sender := coalesce(v_sender, c.user_id);
    IF f IS NOT NULL AND c.status IS DISTINCT FROM 'active' THEN
        v_skip := 'conversation ' || coalesce(c.status::text, 'without status');
    ELSE
        e := f;
    END IF;
    INSERT INTO messages (conversation_id, session_id, user_id, integration_id, content, role,
                          direction, platform, platform_message_id, intent, entities,
                          confidence, metadata, created_at)
    VALUES (c.id, c.session_id, v_sender, c.integration_id, coalesce(ev->>'text', ''), 'user',
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

-- As in 008, a customer's own messages are those they wrote (role 'user').
CREATE OR REPLACE FUNCTION ef_customer_forget(p_platform text, p_uid text, p_integration uuid)
    RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_user uuid;
    v_convs uuid[];
    v_sessions jsonb;
    v_chats jsonb;
    v_chat_ids text[];
    n_msgs bigint := 0;
    n_conv_msgs bigint := 0;
    n_convs bigint := 0;
    n_events bigint := 0;
    n_dead bigint := 0;
    n_users bigint := 0;
    v_erased jsonb;
BEGIN
    SELECT id INTO v_user FROM users
     WHERE platform = p_platform AND platform_user_id = p_uid AND role = 'customer'
     FOR UPDATE;
    IF v_user IS NULL THEN
        RETURN jsonb_build_object('result', 'notfound');
    END IF;
    SELECT coalesce(array_agg(id), '{}'),
           coalesce(jsonb_agg(session_id), '[]'),
           coalesce(jsonb_agg(jsonb_build_array(coalesce(integration_id::text, '-'), chat_id))
                        FILTER (WHERE chat_id IS NOT NULL), '[]'),
           coalesce(array_agg(chat_id) FILTER (WHERE chat_id IS NOT NULL), '{}')
      INTO v_convs, v_sessions, v_chats, v_chat_ids
      FROM (SELECT id, session_id, integration_id, chat_id FROM conversations
             WHERE user_id = v_user
               AND (p_integration IS NULL OR integration_id = p_integration)
             FOR UPDATE) c;
    -- Their own messages, wherever they are (a group chat's conversation
    -- belongs to whoever wrote first). A reply carries its conversation's
    -- customer, so theirs go with their conversations below.
    DELETE FROM messages
     WHERE user_id = v_user AND role = 'user'
       AND (p_integration IS NULL OR integration_id = p_integration);
    GET DIAGNOSTICS n_msgs = ROW_COUNT;
    DELETE FROM messages WHERE conversation_id = ANY (v_convs);
    GET DIAGNOSTICS n_conv_msgs = ROW_COUNT;
    DELETE FROM conversation_events WHERE conversation_id = ANY (v_convs);
    GET DIAGNOSTICS n_events = ROW_COUNT;
    DELETE FROM conversations WHERE id = ANY (v_convs);
    GET DIAGNOSTICS n_convs = ROW_COUNT;
    -- Dead letters: the normalized event names the sender and the chat; a
    -- payload jsonb refused is kept as text ("unparsed").
    DELETE FROM dead_letters d
     WHERE d.platform = p_platform
       AND (p_integration IS NULL OR d.integration_id IS NULL OR d.integration_id = p_integration)
       AND (d.payload->'sender'->>'id' = p_uid
            OR d.payload->>'chat_id' = ANY (v_chat_ids)
            OR strpos(d.payload->>'unparsed', '"' || p_uid || '"') > 0);
    GET DIAGNOSTICS n_dead = ROW_COUNT;
    IF NOT EXISTS (SELECT 1 FROM conversations WHERE user_id = v_user)
       AND NOT EXISTS (SELECT 1 FROM messages WHERE user_id = v_user AND role = 'user') THEN
        DELETE FROM users WHERE id = v_user;
        GET DIAGNOSTICS n_users = ROW_COUNT;
    END IF;
    v_erased := jsonb_build_object('messages', n_msgs + n_conv_msgs, 'conversations', n_convs,
                                   'conversation_events', n_events, 'dead_letters', n_dead,
                                   'users', n_users, 'user_kept', n_users = 0);
    INSERT INTO data_erasures (platform, user_hash, integration_id, erased)
    VALUES (p_platform, ef_sha256_hex(p_uid), p_integration, v_erased);
    RETURN jsonb_build_object('result', 'erased', 'erased', v_erased,
                              'sessions', v_sessions, 'chats', v_chats);
END $$;

-- As in 008, the customers left without conversations or messages of
-- their own.
CREATE OR REPLACE FUNCTION ef_retention_batch(p_days int, p_limit int) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_cut timestamptz := now() - make_interval(days => p_days);
    n_msgs bigint := 0;
    n_convs bigint := 0;
    n_users bigint := 0;
    n_dead bigint := 0;
BEGIN
    DELETE FROM messages WHERE id IN (
        SELECT m.id FROM conversations c JOIN messages m ON m.conversation_id = c.id
         WHERE c.updated_at < v_cut OR (c.status = 'closed' AND c.closed_at < v_cut)
         LIMIT p_limit FOR UPDATE OF m SKIP LOCKED);
    GET DIAGNOSTICS n_msgs = ROW_COUNT;
    IF n_msgs = 0 THEN
        DELETE FROM conversations WHERE id IN (
            SELECT c.id FROM conversations c
             WHERE (c.updated_at < v_cut OR (c.status = 'closed' AND c.closed_at < v_cut))
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id)
             LIMIT p_limit FOR UPDATE SKIP LOCKED);
        GET DIAGNOSTICS n_convs = ROW_COUNT;
    END IF;
    IF n_msgs = 0 AND n_convs = 0 THEN
        DELETE FROM users WHERE id IN (
            SELECT u.id FROM users u
             WHERE u.role = 'customer' AND coalesce(u.updated_at, u.created_at) < v_cut
               AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.user_id = u.id)
               AND NOT EXISTS (SELECT 1 FROM messages m
                                WHERE m.user_id = u.id AND m.role = 'user')
             LIMIT p_limit FOR UPDATE SKIP LOCKED);
        GET DIAGNOSTICS n_users = ROW_COUNT;
        DELETE FROM dead_letters WHERE id IN (
            SELECT id FROM dead_letters WHERE created_at < v_cut
             LIMIT p_limit FOR UPDATE SKIP LOCKED);
        GET DIAGNOSTICS n_dead = ROW_COUNT;
    END IF;
    RETURN jsonb_build_object('messages', n_msgs, 'conversations', n_convs,
                              'users', n_users, 'dead_letters', n_dead);
END $$;

DROP INDEX CONCURRENTLY IF EXISTS idx_messages_user_id;
