-- 010_console.sql -- what the operator console needs beyond 007: internal
-- notes on a conversation (never sent to the customer), quick replies that
-- admins manage, admin statements on operator accounts, and the outbox
-- figures /metrics shows. src/store/console.c calls these (one round trip
-- each).

-- An operator's note on a conversation: shown in the history next to the
-- messages, never queued, never sent. Each note is also an audited event
-- (conversation_events, action 'note').
CREATE TABLE conversation_notes (
    id BIGSERIAL PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    author_id UUID REFERENCES users(id) ON DELETE SET NULL,
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 4096),
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX idx_conversation_notes_conversation ON conversation_notes(conversation_id, id);

-- Canned answers offered in the console's reply box. lang NULL: every
-- language. Titles are unique (the console lists them by title).
CREATE TABLE quick_replies (
    id BIGSERIAL PRIMARY KEY,
    title VARCHAR(100) NOT NULL UNIQUE CHECK (length(title) >= 1),
    body TEXT NOT NULL CHECK (length(body) BETWEEN 1 AND 4096),
    lang VARCHAR(10),
    position INT NOT NULL DEFAULT 0,
    created_by UUID REFERENCES users(id) ON DELETE SET NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);

-- The outbox's failed rows, counted by the /metrics sampler without a scan
-- of every message.
CREATE INDEX idx_messages_outbound_failed ON messages(failed_at)
    WHERE direction = 'outbound' AND delivery_status = 'failed';

-- ---- notes ------------------------------------------------------------------

CREATE FUNCTION ef_api_note_json(n conversation_notes) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', n.id, 'body', n.body, 'created_at', n.created_at,
        'author', (SELECT jsonb_build_object('id', u.id, 'name', u.name)
                     FROM users u WHERE u.id = n.author_id))
$$;

-- A note by p_op on conversation p_id, audited. {"result": "ok", "note"}
-- or "notfound".
CREATE FUNCTION ef_api_note_add(p_id uuid, p_op uuid, p_body text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    c conversations;
    n conversation_notes;
BEGIN
    SELECT * INTO c FROM conversations WHERE id = p_id FOR SHARE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('result', 'notfound');
    END IF;
    INSERT INTO conversation_notes (conversation_id, author_id, body)
    VALUES (p_id, p_op, p_body) RETURNING * INTO n;
    INSERT INTO conversation_events (conversation_id, operator_id, action, from_status, to_status)
    VALUES (p_id, p_op, 'note', c.status, c.status);
    RETURN jsonb_build_object('result', 'ok', 'note', ef_api_note_json(n));
END $$;

-- The notes of a conversation, oldest first; NULL when there is no such
-- conversation.
CREATE FUNCTION ef_api_notes(p_id uuid) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('notes',
        (SELECT coalesce(jsonb_agg(ef_api_note_json(n) ORDER BY n.id), '[]'::jsonb)
           FROM conversation_notes n WHERE n.conversation_id = c.id))
      FROM conversations c WHERE c.id = p_id
$$;

-- 007's conversation view plus its notes; NULL when there is none.
CREATE FUNCTION ef_api_conversation_full(p_id uuid, p_limit int) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT v || ef_api_notes(p_id)
      FROM ef_api_conversation(p_id, p_limit) v
     WHERE v IS NOT NULL
$$;

-- ---- quick replies ----------------------------------------------------------

CREATE FUNCTION ef_api_quick_reply_json(q quick_replies) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('id', q.id, 'title', q.title, 'body', q.body, 'lang', q.lang,
                              'position', q.position, 'updated_at', q.updated_at)
$$;

CREATE FUNCTION ef_api_quick_replies() RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('quick_replies',
        coalesce(jsonb_agg(ef_api_quick_reply_json(q) ORDER BY q.position, q.title, q.id),
                 '[]'::jsonb))
      FROM quick_replies q
$$;

-- Creates (p_id NULL) or updates a quick reply; a NULL field keeps its
-- value on update (p_lang '' clears the language).
-- {"result": "ok", "quick_reply"} or "notfound", "exists" (the title).
CREATE FUNCTION ef_api_quick_reply_put(p_id bigint, p_title text, p_body text, p_lang text,
                                       p_position int, p_op uuid) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    q quick_replies;
BEGIN
    IF p_id IS NULL THEN
        INSERT INTO quick_replies (title, body, lang, position, created_by)
        VALUES (p_title, p_body, nullif(p_lang, ''), coalesce(p_position, 0), p_op)
        RETURNING * INTO q;
    ELSE
        UPDATE quick_replies
           SET title = coalesce(p_title, title),
               body = coalesce(p_body, body),
               lang = CASE WHEN p_lang IS NULL THEN lang ELSE nullif(p_lang, '') END,
               position = coalesce(p_position, position),
               updated_at = now()
         WHERE id = p_id
        RETURNING * INTO q;
        IF NOT FOUND THEN
            RETURN jsonb_build_object('result', 'notfound');
        END IF;
    END IF;
    RETURN jsonb_build_object('result', 'ok', 'quick_reply', ef_api_quick_reply_json(q));
EXCEPTION WHEN unique_violation THEN
    RETURN jsonb_build_object('result', 'exists');
END $$;

-- ---- operator accounts (admins) ---------------------------------------------

-- A new operator or admin; never overwrites an existing account.
-- {"result": "ok", "operator"} or "exists".
CREATE FUNCTION ef_api_operator_add(p_email text, p_name text, p_role text, p_hash text)
    RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    u users;
BEGIN
    INSERT INTO users (email, name, role, password_hash)
    VALUES (lower(p_email), p_name, p_role::user_role, p_hash)
    ON CONFLICT (email) DO NOTHING
    RETURNING * INTO u;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('result', 'exists');
    END IF;
    RETURN jsonb_build_object('result', 'ok', 'operator', jsonb_build_object(
        'id', u.id, 'email', u.email, 'name', u.name, 'role', u.role, 'active', true,
        'created_at', u.created_at));
END $$;

-- Enables or disables an operator or admin. Disabling revokes every
-- refresh token of the account (its access tokens expire within minutes)
-- and hands the conversations it holds back to the queue (still
-- escalated, nobody holding them). p_by: the admin (an admin cannot
-- disable themself). {"result": "ok", "changed", "released"} or
-- "notfound", "self".
CREATE FUNCTION ef_api_operator_set_active(p_id uuid, p_active boolean, p_by uuid)
    RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    u users;
    v_released int := 0;
BEGIN
    IF p_id = p_by AND NOT p_active THEN
        RETURN jsonb_build_object('result', 'self');
    END IF;
    SELECT * INTO u FROM users WHERE id = p_id AND role <> 'customer' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('result', 'notfound');
    END IF;
    IF coalesce(u.is_active, true) = p_active THEN
        RETURN jsonb_build_object('result', 'ok', 'changed', false, 'released', 0);
    END IF;
    UPDATE users SET is_active = p_active, updated_at = now() WHERE id = p_id;
    IF NOT p_active THEN
        UPDATE refresh_tokens
           SET revoked = true, revoked_at = now(), revoked_reason = 'inactive'
         WHERE user_id = p_id AND NOT revoked;
        WITH held AS (
            UPDATE conversations SET assigned_operator_id = NULL, updated_at = now()
             WHERE assigned_operator_id = p_id AND status <> 'closed'
            RETURNING id, status)
        , ev AS (
            INSERT INTO conversation_events (conversation_id, operator_id, action, from_status,
                                             to_status)
            SELECT id, p_by, 'unassign', status, status FROM held
            RETURNING 1)
        SELECT count(*) INTO v_released FROM ev;
    END IF;
    RETURN jsonb_build_object('result', 'ok', 'changed', true, 'released', v_released);
END $$;

-- ---- the outbox, for /metrics and /healthz ------------------------------------

-- queued: every row waiting to be sent; due: the queued rows whose time has
-- come (being sent or next in line; the rest wait for a retry); failed:
-- rows the platform refused for good; oldest_queued_s: the age of the
-- oldest queued row in seconds (0 when none).
CREATE FUNCTION ef_outbox_figures() RETURNS TABLE (queued bigint, due bigint, failed bigint,
                                                   oldest_queued_s bigint)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT count(*) FROM messages
             WHERE direction = 'outbound' AND delivery_status = 'queued'),
           (SELECT count(*) FROM messages
             WHERE direction = 'outbound' AND delivery_status = 'queued'
               AND coalesce(next_attempt_at, created_at) <= now()),
           (SELECT count(*) FROM messages
             WHERE direction = 'outbound' AND delivery_status = 'failed'),
           (SELECT coalesce(floor(extract(epoch FROM now() - min(created_at)))::bigint, 0)
              FROM messages WHERE direction = 'outbound' AND delivery_status = 'queued')
$$;
