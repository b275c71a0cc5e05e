-- 008_personal_data.sql -- personal data (issue 11): customers' messages and
-- identities are personal data (152-FZ, GDPR).
--
-- 1. `easyflow customer forget PLATFORM USER_ID` runs ef_customer_forget in
--    one transaction: the customer's messages, their conversations (with
--    every message in them, the bot's replies included, and their audit
--    events), the dead letters naming them and their users row are deleted.
--    What a business may keep is kept only as counts, in data_erasures.
-- 2. EF_RETENTION_DAYS: ef_retention_batch deletes conversations closed or
--    idle for longer than that, a bounded batch per call (the gateway runs
--    it with a short lock_timeout, one transaction per batch).

-- The record that an erasure was done. user_hash is the SHA-256 (hex) of the
-- platform user id, never the id itself: it lets an auditor check that a
-- given request was honoured without the table being personal data again.
-- (A short numeric id can be found again by hashing candidates: the record
-- proves an erasure, it does not hide who asked.)
CREATE TABLE data_erasures (
    id BIGSERIAL PRIMARY KEY,
    platform VARCHAR(50) NOT NULL,
    user_hash CHAR(64) NOT NULL,
    integration_id UUID,                    -- NULL: every integration
    erased JSONB NOT NULL,                  -- counts per table
    erased_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);
-- No index: read by auditors, a few rows a year.

CREATE FUNCTION ef_sha256_hex(p text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT encode(sha256(convert_to(p, 'UTF8')), 'hex')
$$;

-- Erases one customer (p_integration NULL: in every integration). Result:
-- {"result": "erased", "erased": {counts}, "sessions": [session ids],
--  "chats": [["integration id or -", "chat id"]]} (the Redis keys to
-- delete), or {"result": "notfound"}. With an integration, the users row is
-- deleted only when nothing else references it (otherwise "user_kept").
CREATE FUNCTION ef_customer_forget(p_platform text, p_uid text, p_integration uuid)
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
    -- belongs to whoever wrote first).
    DELETE FROM messages
     WHERE user_id = v_user AND (p_integration IS NULL OR integration_id = p_integration);
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
       AND NOT EXISTS (SELECT 1 FROM messages WHERE user_id = v_user) THEN
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

-- One retention batch: at most p_limit rows of one kind are deleted per
-- call, oldest first, skipping rows another transaction holds (the gateway
-- calls it until it returns zeros, each call its own short transaction
-- under lock_timeout). Order: messages of expired conversations, then the
-- conversations themselves (their audit events with them), then customers
-- left without conversations or messages, then old dead letters. A
-- conversation has expired when it was closed, or has been idle (no
-- update), for longer than p_days. Result: {"messages", "conversations",
-- "users", "dead_letters"} deleted by this call.
CREATE FUNCTION ef_retention_batch(p_days int, p_limit int) RETURNS jsonb
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
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.user_id = u.id)
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
