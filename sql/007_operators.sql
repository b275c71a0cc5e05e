-- 007_operators.sql -- what the operator API (/api/v1) needs: refresh tokens
-- (the seed design's refresh_tokens, with rotation families), the audit
-- trail of conversation status changes, and the statements the API runs
-- (src/store/operators.c calls them; each is one round trip).

-- The seed's refresh_tokens (SEED-SCHEMA.md, second design), adapted:
-- user_id is a UUID like users.id; `token` holds the SHA-256 (hex) of the
-- token, never the token itself, so a database leak gives no sessions.
-- Rotation: each refresh replaces the token by a new one of the same
-- family (one login = one family); presenting a token already rotated away
-- is a theft signal and revokes the whole family.
CREATE TABLE refresh_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token VARCHAR(500) NOT NULL UNIQUE,

    expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    revoked BOOLEAN DEFAULT FALSE,

    -- Security metadata
    ip_address INET,
    user_agent TEXT,

    -- Rotation (beyond the seed)
    family_id UUID NOT NULL,
    rotated_at TIMESTAMP WITH TIME ZONE,   -- replaced by a newer token of its family
    revoked_at TIMESTAMP WITH TIME ZONE,
    revoked_reason VARCHAR(32)              -- logout | logout_all | reuse | inactive
);

CREATE INDEX idx_refresh_tokens_user ON refresh_tokens(user_id);
CREATE INDEX idx_refresh_tokens_token ON refresh_tokens(token) WHERE NOT revoked;
CREATE INDEX idx_refresh_tokens_expiry ON refresh_tokens(expires_at) WHERE NOT revoked;
CREATE INDEX idx_refresh_tokens_family ON refresh_tokens(family_id);

-- Every change an operator makes to a conversation's status or owner:
-- who, when, from, to (issue 9: "every status change is an audited event").
CREATE TABLE conversation_events (
    id BIGSERIAL PRIMARY KEY,
    conversation_id UUID NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    operator_id UUID REFERENCES users(id) ON DELETE SET NULL,
    action VARCHAR(20) NOT NULL,            -- claim | release | close | escalate | reply
    from_status conversation_status,
    to_status conversation_status NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX idx_conversation_events_conversation ON conversation_events(conversation_id, id);

-- The console's queue and list: newest activity first.
CREATE INDEX idx_conversations_activity ON conversations(updated_at DESC, id DESC);

-- ---- accounts ------------------------------------------------------------

-- A successful login: a new refresh token family, last_login_at, and the
-- upgraded password hash when the old one needed a rehash (p_rehash).
CREATE FUNCTION ef_api_login_ok(p_user uuid, p_token text, p_ip text, p_ua text, p_ttl_s int,
                                p_rehash text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO refresh_tokens (user_id, token, expires_at, ip_address, user_agent, family_id)
    VALUES (p_user, p_token, now() + make_interval(secs => p_ttl_s), p_ip::inet,
            left(p_ua, 512), gen_random_uuid());
    UPDATE users
       SET last_login_at = now(),
           password_hash = coalesce(p_rehash, password_hash),
           updated_at = CASE WHEN p_rehash IS NULL THEN updated_at ELSE now() END
     WHERE id = p_user;
END $$;

-- Refresh: the old token (hash p_old) is rotated to p_new in its family.
-- Result: {"result": "ok", "user_id", "role", "name"} or "unknown"
-- (no such token), "expired", "revoked" (logged out), "reuse" (a rotated
-- token came back: the whole family is revoked now), "inactive".
CREATE FUNCTION ef_api_refresh(p_old text, p_new text, p_ip text, p_ua text, p_ttl_s int)
    RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t refresh_tokens;
    u users;
BEGIN
    SELECT * INTO t FROM refresh_tokens WHERE token = p_old FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('result', 'unknown');
    END IF;
    IF t.revoked THEN
        RETURN jsonb_build_object('result', 'revoked', 'user_id', t.user_id);
    END IF;
    IF t.rotated_at IS NOT NULL THEN
        UPDATE refresh_tokens
           SET revoked = true, revoked_at = now(), revoked_reason = 'reuse'
         WHERE family_id = t.family_id AND NOT revoked;
        RETURN jsonb_build_object('result', 'reuse', 'user_id', t.user_id);
    END IF;
    IF t.expires_at <= now() THEN
        RETURN jsonb_build_object('result', 'expired', 'user_id', t.user_id);
    END IF;
    SELECT * INTO u FROM users WHERE id = t.user_id;
    IF NOT FOUND OR NOT coalesce(u.is_active, true) OR u.role = 'customer' THEN
        UPDATE refresh_tokens
           SET revoked = true, revoked_at = now(), revoked_reason = 'inactive'
         WHERE family_id = t.family_id AND NOT revoked;
        RETURN jsonb_build_object('result', 'inactive', 'user_id', t.user_id);
    END IF;
    UPDATE refresh_tokens SET rotated_at = now() WHERE id = t.id;
    INSERT INTO refresh_tokens (user_id, token, expires_at, ip_address, user_agent, family_id)
    VALUES (t.user_id, p_new, now() + make_interval(secs => p_ttl_s), p_ip::inet,
            left(p_ua, 512), t.family_id);
    RETURN jsonb_build_object('result', 'ok', 'user_id', u.id, 'role', u.role, 'name', u.name);
END $$;

-- ---- conversations -------------------------------------------------------

-- One conversation as the API shows it (without its messages).
CREATE FUNCTION ef_api_conversation_json(c conversations) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', c.id,
        'status', c.status,
        'platform', c.platform,
        'integration_id', c.integration_id,
        'chat_id', c.chat_id,
        'state', c.current_state,
        'messages_count', c.messages_count,
        'undeliverable', c.undeliverable,
        'customer', (SELECT jsonb_build_object('id', u.id, 'name', u.name,
                                               'username', u.username,
                                               'language', u.language_code)
                       FROM users u WHERE u.id = c.user_id),
        'assigned_operator', (SELECT jsonb_build_object('id', o.id, 'name', o.name,
                                                        'email', o.email)
                                FROM users o WHERE o.id = c.assigned_operator_id),
        'last_message', (SELECT jsonb_build_object('role', m.role, 'direction', m.direction,
                                                   'content', left(m.content, 200),
                                                   'created_at', m.created_at)
                           FROM messages m
                          WHERE m.conversation_id = c.id AND m.role <> 'system'
                          ORDER BY m.created_at DESC LIMIT 1),
        'escalated_at', c.escalated_at,
        'last_inbound_at', c.last_inbound_at,
        'created_at', c.created_at,
        'updated_at', c.updated_at,
        'closed_at', c.closed_at)
$$;

-- The list: status filter (NULL: all), text search over the customer's
-- name/username/chat id and the messages (NULL: none), newest activity
-- first, limit rows before the cursor p_before ("<unix microseconds>_<id>"
-- of the last row of the previous page; NULL: from the top).
-- {"conversations": [...], "next_before": cursor or null}
CREATE FUNCTION ef_api_conversations(p_status text, p_q text, p_limit int, p_before text)
    RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- Case-insensitive for every script (the database's collation may be
    -- "C", whose lower() folds ASCII only): ICU's root locale folds both
    -- sides. % and _ in the text are literal.
    v_pat text := CASE WHEN p_q IS NULL OR p_q = '' THEN NULL
                       ELSE '%' || replace(replace(replace(lower(p_q COLLATE "und-x-icu"), '\',
                                                           '\\'), '%', '\%'), '_', '\_')
                            || '%' END;
    v_us bigint;
    v_id uuid;
    v_out jsonb;
BEGIN
    IF p_before IS NOT NULL THEN
        IF p_before !~ '^[0-9]{1,20}_[0-9a-fA-F-]{36}$' THEN
            RAISE EXCEPTION 'bad cursor' USING ERRCODE = '22023';
        END IF;
        v_us := split_part(p_before, '_', 1)::bigint;
        v_id := split_part(p_before, '_', 2)::uuid;
    END IF;
    WITH page AS (
        SELECT c, c.updated_at AS ts, c.id AS cid
          FROM conversations c
         WHERE (p_status IS NULL OR c.status = p_status::conversation_status)
           AND (v_us IS NULL
                OR (floor(extract(epoch FROM c.updated_at) * 1000000)::bigint, c.id) < (v_us, v_id))
           AND (v_pat IS NULL
                OR c.chat_id LIKE v_pat
                OR EXISTS (SELECT 1 FROM users u WHERE u.id = c.user_id
                              AND (lower(u.name COLLATE "und-x-icu") LIKE v_pat
                                   OR lower(u.username COLLATE "und-x-icu") LIKE v_pat))
                OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id
                              AND m.role <> 'system'
                              AND lower(m.content COLLATE "und-x-icu") LIKE v_pat))
         ORDER BY c.updated_at DESC, c.id DESC
         LIMIT p_limit)
    SELECT jsonb_build_object(
        'conversations', coalesce(jsonb_agg(ef_api_conversation_json(p.c)
                                            ORDER BY p.ts DESC, p.cid DESC), '[]'::jsonb),
        'next_before', CASE WHEN count(*) < p_limit THEN NULL
                            ELSE (SELECT (floor(extract(epoch FROM l.ts) * 1000000))::bigint::text
                                         || '_' || l.cid
                                    FROM page l ORDER BY l.ts, l.cid LIMIT 1) END)
      INTO v_out FROM page p;
    RETURN v_out;
END $$;

-- One conversation with its messages (oldest first, at most the last
-- p_limit) and its audit trail; NULL when there is none.
CREATE FUNCTION ef_api_conversation(p_id uuid, p_limit int) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT ef_api_conversation_json(c) || jsonb_build_object(
        'messages', (SELECT coalesce(jsonb_agg(x.j ORDER BY x.created_at, x.id), '[]'::jsonb)
                       FROM (SELECT m.id, m.created_at, jsonb_build_object(
                                 'id', m.id, 'role', m.role, 'direction', m.direction,
                                 'content', m.content, 'intent', m.intent,
                                 'entities', m.entities, 'confidence', m.confidence,
                                 'delivery_status', m.delivery_status,
                                 'failed_reason', m.failed_reason,
                                 'retry_count', m.retry_count,
                                 'operator_id', m.metadata->>'operator_id',
                                 'created_at', m.created_at, 'sent_at', m.sent_at,
                                 'failed_at', m.failed_at) AS j
                               FROM messages m
                              WHERE m.conversation_id = c.id AND m.role <> 'system'
                              ORDER BY m.created_at DESC, m.id DESC
                              LIMIT p_limit) x),
        'events', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'action', e.action, 'operator_id', e.operator_id,
                              'from', e.from_status, 'to', e.to_status,
                              'created_at', e.created_at) ORDER BY e.id), '[]'::jsonb)
                     FROM conversation_events e WHERE e.conversation_id = c.id))
      FROM conversations c WHERE c.id = p_id
$$;

-- claim | release | close | escalate by operator p_op (p_admin: an admin,
-- who may release, close or escalate a conversation another operator
-- holds). Locks the row; records an event when the status or the owner
-- changes. {"result": "ok", "changed", "session_id", "conversation"} or
-- "notfound", "closed" (nothing can be done to a closed conversation),
-- "held" (another operator holds it: "holder").
CREATE FUNCTION ef_api_conversation_act(p_id uuid, p_op uuid, p_action text, p_admin boolean)
    RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    c conversations;
    v_to conversation_status;
    v_owner uuid;
BEGIN
    SELECT * INTO c FROM conversations WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('result', 'notfound');
    END IF;
    IF c.status = 'closed' THEN
        RETURN jsonb_build_object('result', 'closed');
    END IF;
    IF c.assigned_operator_id IS NOT NULL AND c.assigned_operator_id <> p_op
       AND (p_action = 'claim' OR NOT p_admin) THEN
        RETURN jsonb_build_object('result', 'held', 'holder',
            (SELECT jsonb_build_object('id', o.id, 'name', o.name)
               FROM users o WHERE o.id = c.assigned_operator_id));
    END IF;
    IF p_action = 'claim' THEN
        v_to := 'escalated';
        v_owner := p_op;
    ELSIF p_action = 'release' THEN
        v_to := 'active';
        v_owner := NULL;
    ELSIF p_action = 'close' THEN
        v_to := 'closed';
        v_owner := NULL;
    ELSIF p_action = 'escalate' THEN
        v_to := 'escalated';
        v_owner := c.assigned_operator_id;
    ELSE
        RAISE EXCEPTION 'unknown action %', p_action USING ERRCODE = '22023';
    END IF;
    IF v_to = c.status AND v_owner IS NOT DISTINCT FROM c.assigned_operator_id THEN
        RETURN jsonb_build_object('result', 'ok', 'changed', false, 'session_id', c.session_id,
                                  'conversation', ef_api_conversation_json(c));
    END IF;
    INSERT INTO conversation_events (conversation_id, operator_id, action, from_status, to_status)
    VALUES (c.id, p_op, p_action, c.status, v_to);
    UPDATE conversations
       SET status = v_to,
           assigned_operator_id = v_owner,
           escalated_at = CASE WHEN v_to = 'escalated' AND c.status <> 'escalated' THEN now()
                               ELSE escalated_at END,
           closed_at = CASE WHEN v_to = 'closed' THEN now() ELSE closed_at END,
           updated_at = now()
     WHERE id = c.id
    RETURNING * INTO c;
    RETURN jsonb_build_object('result', 'ok', 'changed', true, 'session_id', c.session_id,
                              'conversation', ef_api_conversation_json(c));
END $$;

-- An operator's reply: queued in the outbox (the dispatcher sends it
-- through the conversation's integration) as role 'operator'. Replying
-- takes the conversation over first when nobody holds it (escalated, owned
-- by p_op, audited as a claim), so the bot stays silent. Results as
-- ef_api_conversation_act, plus "message" (the new row).
CREATE FUNCTION ef_api_conversation_reply(p_id uuid, p_op uuid, p_text text, p_admin boolean)
    RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    v_act jsonb;
    c conversations;
    v_row uuid;
BEGIN
    SELECT * INTO c FROM conversations WHERE id = p_id FOR UPDATE;
    IF FOUND AND c.status <> 'closed' AND c.assigned_operator_id IS NOT NULL
       AND c.assigned_operator_id <> p_op AND p_admin THEN
        v_act := jsonb_build_object('result', 'ok', 'changed', false); -- an admin steps in
    ELSE
        v_act := ef_api_conversation_act(p_id, p_op, 'claim', p_admin);
        IF v_act->>'result' <> 'ok' THEN
            RETURN v_act;
        END IF;
        SELECT * INTO c FROM conversations WHERE id = p_id;
    END IF;
    INSERT INTO messages (conversation_id, session_id, user_id, integration_id, content, role,
                          direction, platform, metadata, delivery_status, next_attempt_at,
                          created_at)
    VALUES (c.id, c.session_id, c.user_id, c.integration_id, p_text, 'operator', 'outbound',
            c.platform, jsonb_build_object('operator_id', p_op), 'queued', now(),
            clock_timestamp())
    RETURNING id INTO v_row;
    UPDATE conversations SET messages_count = messages_count + 1, updated_at = now()
     WHERE id = c.id RETURNING * INTO c;
    RETURN jsonb_build_object(
        'result', 'ok', 'changed', coalesce((v_act->>'changed')::boolean, false),
        'session_id', c.session_id,
        'message', (SELECT jsonb_build_object('id', m.id, 'role', m.role,
                                              'direction', m.direction, 'content', m.content,
                                              'delivery_status', m.delivery_status,
                                              'operator_id', p_op, 'created_at', m.created_at)
                      FROM messages m WHERE m.id = v_row),
        'conversation', ef_api_conversation_json(c));
END $$;
